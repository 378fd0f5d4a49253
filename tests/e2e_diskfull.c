/*
 * e2e_diskfull.c - the real daemon on a real full disk: an 8 MiB tmpfs
 * mounted as its state directory (the tests run as root), filled up by a
 * file of the test's.
 *
 * With the disk full, commit answers 507 disk_full with a JSON error and
 * the earlier commits stay intact and readable; once the filler is gone,
 * the same session commits.
 */
#include "e2e.h"
#include "store.h"
#include "storetest.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MEM (1024 * 1024)

static struct e2e_daemon d;
static char mod[STORE_HEX_LEN + 1];
static unsigned char model[MEM]; /* the module's memory, committed */

static void text_of(struct e2e_resp *r, const char *key, char *out)
{
	const char *v = e2e_str(r, key);

	snprintf(out, STORE_HEX_LEN + 1, "%s", v ? v : "");
}

static void new_session(char sid[STORE_HEX_LEN + 1])
{
	struct e2e_resp r;

	e2e_post(&d, "/sessions", NULL, &r);
	E2E_STATUS(&r, 201);
	text_of(&r, "id", sid);
	e2e_resp_release(&r);
}

static long put(const char *sid, size_t off, const void *buf, size_t len)
{
	struct e2e_resp r;
	char path[300];
	long st;

	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=%zu", sid, mod, off);
	e2e_request(&d, "PUT", path, buf, len, NULL, &r);
	st = r.status;
	e2e_resp_release(&r);
	return st;
}

static void commit(const char *sid, long want, char out[STORE_HEX_LEN + 1])
{
	struct e2e_resp r;
	char path[200];

	snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
	e2e_post(&d, path, NULL, &r);
	if (want == 507)
		E2E_ERROR(&r, 507, "disk_full");
	else
		E2E_STATUS(&r, want);
	if (out)
		text_of(&r, "commit", out);
	e2e_resp_release(&r);
}

/* The current memory of the module equals the model; the root is root. */
static void intact(const char *root)
{
	struct e2e_resp r;
	char path[200];

	e2e_get(&d, "/root", &r);
	E2E_STATUS(&r, 200);
	CHECK(e2e_str(&r, "root") && !strcmp(e2e_str(&r, "root"), root));
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/modules/%s/memory", mod);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == MEM && !memcmp(r.body, model, MEM));
	e2e_resp_release(&r);
}

/* Write a file until the disk is full; bytes written. */
static long long fill(const char *path)
{
	static unsigned char junk[65536];
	long long total = 0;
	ssize_t n;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return -1;
	memset(junk, 0xA5, sizeof(junk));
	for (;;) {
		n = write(fd, junk, sizeof(junk));
		if (n <= 0)
			break;
		total += n;
	}
	/* the last bytes: a page at a time */
	while (write(fd, junk, 1) == 1)
		total++;
	close(fd);
	return total;
}

int main(void)
{
	struct e2e_tmp tmp;
	struct e2e_resp r;
	struct st_state st;
	char mnt[600], state[700], filler[700], sid[STORE_HEX_LEN + 1],
	    c1[STORE_HEX_LEN + 1], c2[STORE_HEX_LEN + 1], c3[STORE_HEX_LEN + 1],
	    path[200];
	unsigned char *big;
	long long filled;
	int mounted = 0;

	if (sodium_init() < 0 || e2e_tmp_make(&tmp, "diskfull"))
		return 1;
	snprintf(mnt, sizeof(mnt), "%s/small", tmp.root);
	snprintf(state, sizeof(state), "%s/state", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	if (mkdir(mnt, 0700) ||
	    mount("tmpfs", mnt, "tmpfs", 0, "size=8m,mode=0700")) {
		fprintf(stderr,
			"cannot mount an 8 MiB tmpfs on %s: %s "
			"(this test needs root)\n",
			mnt, strerror(errno));
		CHECK(0);
		return t_done();
	}
	mounted = 1;
	if (e2e_start(&d, state, tmp.log, NULL)) {
		CHECK(0);
		goto out;
	}
	e2e_post(&d, "/modules?size=1048576", "disk-full-module", &r);
	E2E_STATUS(&r, 201);
	text_of(&r, "id", mod);
	e2e_resp_release(&r);

	/* two commits to keep */
	new_session(sid);
	memset(model + 1000, 0x11, 3000);
	CHECK(put(sid, 1000, model + 1000, 3000) == 204);
	commit(sid, 201, c1);
	new_session(sid);
	memset(model + 500000, 0x22, 70000);
	CHECK(put(sid, 500000, model + 500000, 70000) == 204);
	commit(sid, 201, c2);
	intact(c2);

	/* a session whose commit needs room, then a full disk */
	big = malloc(MEM);
	if (!big)
		goto out;
	randombytes_buf(big, MEM);
	new_session(sid);
	CHECK(put(sid, 0, big, MEM) == 204);
	filled = fill(filler);
	printf("filled the disk with %lld bytes\n", filled);
	CHECK(filled > 0);
	commit(sid, 507, NULL);
	commit(sid, 507, NULL); /* and again: still refused, still there */
	intact(c2);
	CHECK(st_state_read(state, &st) == 0);
	st_state_release(&st);

	/* the earlier commit is still in the commits store */
	snprintf(path, sizeof(path), "/commits/%s", c1);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);

	/* room again: the same session commits */
	CHECK(unlink(filler) == 0);
	commit(sid, 201, c3);
	memcpy(model, big, MEM);
	intact(c3);
	snprintf(path, sizeof(path), "/restore/%s", c1);
	e2e_post(&d, path, NULL, &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	memset(model, 0, MEM);
	memset(model + 1000, 0x11, 3000);
	intact(c1);
	CHECK(st_state_read(state, &st) == 0);
	st_state_release(&st);
	CHECK(st_count_tmp(state) == 0);
	free(big);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
out:
	if (d.pid > 0)
		e2e_stop(&d, SIGKILL);
	if (mounted && umount2(mnt, MNT_DETACH))
		fprintf(stderr, "umount %s: %s\n", mnt, strerror(errno));
	e2e_tmp_done(&tmp);
	return t_done();
}
