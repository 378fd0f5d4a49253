/*
 * unit_fds.c - the descriptors a store keeps open stay within their bound.
 *
 * A switch keeps the MOD_last_id files it writes open, at most
 * JOURNAL_ID_FDS and a quarter of the limit on open files. With that limit
 * at 96, commits over 60 modules leave at most 24 of them open (the least
 * recently used closed first), every commit still lands, and the
 * MOD_last_id files say what the state says; a restore to a commit without
 * a module (its MOD_last_id goes) and a later commit of it (a new file)
 * are still written through fresh descriptors. After store_close() none is
 * left.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

#define PAGE  STORE_PAGE_SIZE
#define NMODS 60

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

int main(void)
{
	struct rlimit rl;
	char *dir = t_tmpdir("fds");
	struct store *s = NULL;
	struct store_id mods[NMODS], sid, first, root;
	char code[32];
	int i, k, base, most = 0;

	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	rl.rlim_cur = 96;
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	base = open_fds();
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	for (i = 0; i < NMODS; i++) {
		snprintf(code, sizeof(code), "fds module %d", i);
		CHECK_ERR(st_deploy(s, code, PAGE, &mods[i]), STORE_OK);
	}
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(st_fill(s, &sid, &mods[0], 0, 1, 8), STORE_OK);
	CHECK_ERR(st_commit(s, &sid, &first), STORE_OK);
	for (k = 0; k < 3; k++) {
		for (i = 0; i < NMODS; i += 6) {
			int j;

			CHECK_ERR(st_begin(s, &sid), STORE_OK);
			for (j = i; j < i + 6; j++)
				CHECK_ERR(st_fill(s, &sid, &mods[j], 0,
						  2 + k * NMODS + j, 8),
					  STORE_OK);
			CHECK_ERR(st_commit(s, &sid, NULL), STORE_OK);
			if (open_fds() - base > most)
				most = open_fds() - base;
		}
	}
	fprintf(stderr, "at most %d descriptors open beyond the start\n", most);
	/* 24 kept, and the directory, its lock and the two journals */
	CHECK(most <= 96 / 4 + 4);
	CHECK(most >= 96 / 4); /* it does keep them */
	ST_CHECK_STORE(s, dir, NULL);
	/* back to a commit of one module: the other _last_id files go */
	CHECK_ERR(store_restore(s, &first), STORE_OK);
	ST_CHECK_STORE(s, dir, NULL);
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(st_fill(s, &sid, &mods[NMODS - 1], 0, 0x77, 8), STORE_OK);
	CHECK_ERR(st_commit(s, &sid, NULL), STORE_OK);
	ST_CHECK_STORE(s, dir, &root);
	store_close(s);
	s = NULL;
	CHECK(open_fds() == base);
	/* and the files say what the state said */
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (s) {
		struct store_id again = st_root(s);

		CHECK_ID(&again, &root);
	}
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
	return t_done();
}
