/*
 * unit_bytecode.c - the modules' bytecode in the store, .MOD_bytecode:
 *
 * - a deploy keeps it, by code (store_deploy) and by upload (pieces of any
 *   size), and store_bytecode_open() serves exactly those bytes;
 * - a second deploy keeps the first file (same inode); a reopen keeps it;
 *   delete and gc never remove it;
 * - a file whose bytes do not hash to the module id is corrupt_state;
 * - an unfinished deploy's file is removed at open, after a crash at each
 *   step of a deploy; a failed step leaves none behind, nor a temporary;
 * - a module with no file (deployed by id, or before bytecode was kept) is
 *   STORE_ENOBYTECODE until a deploy of its code gives it one;
 * - uploads: empty, spent, of another store, freed unused; concurrent
 *   deploys of the same code.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

#define PAGE STORE_PAGE_SIZE

/* ".MOD_bytecode" of mod into buf. */
static const char *code_name(char buf[STORE_HEX_LEN + 16],
			     const struct store_id *mod)
{
	char hex[STORE_HEX_LEN + 1];

	snprintf(buf, STORE_HEX_LEN + 16, ".%s_bytecode", st_hex(mod, hex));
	return buf;
}

/* 1 when dir's .MOD_bytecode holds exactly code. */
static int file_holds(const char *dir, const struct store_id *mod,
		      const void *code, size_t len)
{
	char name[STORE_HEX_LEN + 16];
	unsigned char *b = NULL;
	size_t n = 0;
	int ok;

	if (st_read(dir, code_name(name, mod), &b, &n))
		return 0;
	ok = n == len && !memcmp(b, code, len);
	free(b);
	return ok;
}

/* 1 when store_bytecode_open() gives a descriptor on exactly code. */
static int serves(struct store *s, const struct store_id *mod, const void *code,
		  size_t len)
{
	unsigned char *b = malloc(len + 1);
	uint64_t got = 0;
	int fd = -1, ok = 0;

	if (!b)
		return 0;
	if (store_bytecode_open(s, mod, &fd, &got) == STORE_OK && got == len &&
	    pread(fd, b, len + 1, 0) == (ssize_t)len && !memcmp(b, code, len))
		ok = 1;
	if (fd >= 0)
		close(fd);
	free(b);
	return ok;
}

static ino_t inode_of(const char *dir, const char *name)
{
	char *p = st_path(dir, name);
	struct stat sb;
	ino_t ino = 0;

	if (p && stat(p, &sb) == 0)
		ino = sb.st_ino;
	free(p);
	return ino;
}

/* Deploy code of len bytes in pieces of the given sizes, cycling. */
static enum store_err deploy_pieces(struct store *s, const unsigned char *code,
				    size_t len, const size_t *pieces,
				    size_t npieces, uint64_t size,
				    struct store_module_info *info,
				    int *created)
{
	struct store_upload *u = NULL;
	enum store_err err;
	size_t off = 0, k = 0, n;

	err = store_upload_new(s, &u);
	while (!err && off < len) {
		n = pieces[k++ % npieces];
		if (n > len - off)
			n = len - off;
		err = store_upload_write(u, code + off, n);
		off += n;
	}
	if (!err)
		err = store_deploy_upload(s, u, size, info, created);
	store_upload_free(u);
	return err;
}

static void test_deploy_keeps(void)
{
	static const unsigned char bin[] = "\0asm\x01\0\0\0 NUL bytes\0and all";
	static const size_t pieces[] = {1, 7, 4096, 65536, 3, 100000};
	char *dir = t_tmpdir("bytecode-keeps");
	char name[STORE_HEX_LEN + 16], name2[STORE_HEX_LEN + 16];
	struct store_module_info info;
	struct store_id m1, m2;
	struct store *s = NULL;
	unsigned char *big = NULL;
	size_t big_len = 700 * 1024 + 13;
	struct stat sb;
	ino_t ino1, ino2;
	int created = -1;
	char *p;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	/* by code: binary, NULs included */
	CHECK_ERR(store_deploy(s, bin, sizeof(bin), 2 * PAGE, &info, &created),
		  STORE_OK);
	CHECK(created == 1 && info.size == 2 * PAGE && !info.has_commit);
	st_h(bin, sizeof(bin), &m1);
	CHECK_ID(&info.id, &m1);
	CHECK(file_holds(dir, &m1, bin, sizeof(bin)));
	CHECK(serves(s, &m1, bin, sizeof(bin)));
	p = st_path(dir, code_name(name, &m1));
	CHECK(p && stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	free(p);
	/* by upload, in pieces of every size: 700 KiB */
	big = malloc(big_len);
	if (!big) {
		CHECK(!"out of memory");
		goto out;
	}
	st_pattern(big, big_len);
	CHECK_ERR(deploy_pieces(s, big, big_len, pieces,
				sizeof(pieces) / sizeof(pieces[0]), PAGE, &info,
				&created),
		  STORE_OK);
	CHECK(created == 1 && info.size == PAGE);
	st_h(big, big_len, &m2);
	CHECK_ID(&info.id, &m2);
	CHECK(file_holds(dir, &m2, big, big_len));
	CHECK(serves(s, &m2, big, big_len));
	CHECK(st_count_tmp(dir) == 0);
	ST_CHECK_STORE(s, dir, NULL);

	/* deployed again, both ways, another size: the first file stays */
	ino1 = inode_of(dir, code_name(name, &m1));
	ino2 = inode_of(dir, code_name(name2, &m2));
	CHECK(ino1 && ino2);
	CHECK_ERR(store_deploy(s, bin, sizeof(bin), 5 * PAGE, &info, &created),
		  STORE_OK);
	CHECK(created == 0 && info.size == 2 * PAGE);
	CHECK_ERR(deploy_pieces(s, bin, sizeof(bin), pieces + 1, 1, 0, &info,
				&created),
		  STORE_OK);
	CHECK(created == 0 && info.size == 2 * PAGE);
	CHECK_ERR(deploy_pieces(s, big, big_len, pieces + 3, 1, PAGE, &info,
				&created),
		  STORE_OK);
	CHECK(created == 0);
	CHECK(inode_of(dir, name) == ino1 && inode_of(dir, name2) == ino2);
	CHECK(file_holds(dir, &m1, bin, sizeof(bin)));
	CHECK(st_count_tmp(dir) == 0);

	/* a reopen keeps both */
	store_close(s);
	s = NULL;
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK(serves(s, &m1, bin, sizeof(bin)));
	CHECK(serves(s, &m2, big, big_len));
	CHECK(inode_of(dir, name) == ino1 && inode_of(dir, name2) == ino2);
	ST_CHECK_STORE(s, dir, NULL);
out:
	store_close(s);
	free(big);
	t_rmrf(dir);
	free(dir);
}

/* Commits, a delete of each and a gc: the bytecode stays. */
static void test_delete_gc(void)
{
	static const char code[] = "kept through gc";
	char *dir = t_tmpdir("bytecode-gc");
	struct store_gc_info gi;
	struct store_id m, sid, c1, c2;
	struct store *s = NULL;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(st_deploy(s, code, PAGE, &m), STORE_OK);
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(st_fill(s, &sid, &m, 0, 1, 10), STORE_OK);
	CHECK_ERR(st_commit(s, &sid, &c1), STORE_OK);
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(st_fill(s, &sid, &m, 0, 2, 10), STORE_OK);
	CHECK_ERR(st_commit(s, &sid, &c2), STORE_OK);
	CHECK_ERR(store_restore(s, &c1), STORE_OK);
	CHECK_ERR(store_commit_delete(s, &c2), STORE_OK);
	CHECK_ERR(store_commit_delete(s, &c1), STORE_OK);
	CHECK_ERR(store_gc(s, &gi), STORE_OK);
	CHECK(file_holds(dir, &m, code, strlen(code)));
	CHECK(serves(s, &m, code, strlen(code)));
	ST_CHECK_STORE(s, dir, NULL);
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

/* Bytes that do not hash to the id are never served. */
static void test_tampered(void)
{
	static const char code[] = "(module $tampered)";
	char *dir = t_tmpdir("bytecode-tampered");
	char name[STORE_HEX_LEN + 16], bad[sizeof(code) + 1];
	struct store *s = NULL;
	struct store_id m;
	uint64_t len = 99;
	int fd = 99;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(st_deploy(s, code, PAGE, &m), STORE_OK);
	code_name(name, &m);
	/* one byte flipped, in place, while the store is open */
	memcpy(bad, code, sizeof(code));
	bad[3] ^= 0x20;
	CHECK(st_write(dir, name, bad, strlen(code)) == 0);
	CHECK_ERR(store_bytecode_open(s, &m, &fd, &len), STORE_ECORRUPT);
	CHECK(fd == -1 && len == 0);
	/* shorter, longer, empty */
	CHECK(st_write(dir, name, code, strlen(code) - 1) == 0);
	CHECK_ERR(store_bytecode_open(s, &m, &fd, &len), STORE_ECORRUPT);
	bad[3] ^= 0x20;
	bad[strlen(code)] = 'x';
	CHECK(st_write(dir, name, bad, strlen(code) + 1) == 0);
	CHECK_ERR(store_bytecode_open(s, &m, &fd, &len), STORE_ECORRUPT);
	CHECK(st_write(dir, name, "", 0) == 0);
	CHECK_ERR(store_bytecode_open(s, &m, &fd, &len), STORE_ECORRUPT);
	CHECK(fd == -1);
	/* also after a reopen; the right bytes again are served */
	store_close(s);
	s = NULL;
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(store_bytecode_open(s, &m, &fd, &len), STORE_ECORRUPT);
	CHECK(st_write(dir, name, code, strlen(code)) == 0);
	CHECK(serves(s, &m, code, strlen(code)));
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

/* No file: deployed by id, or in a directory older than bytecode files. */
static void test_no_bytecode(void)
{
	static const char code[] = "deployed by its id";
	static const char old[] = "deployed before bytecode";
	char *dir = t_tmpdir("bytecode-none");
	char name[STORE_HEX_LEN + 16];
	struct store_module_info info;
	struct store_id m, mo, unknown;
	struct store *s = NULL;
	uint64_t len = 99;
	int fd = 99, created = -1;

	memset(&unknown, 0x5A, sizeof(unknown));
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK(!strcmp(store_errname(STORE_ENOBYTECODE), "bytecode_not_found"));
	CHECK_ERR(store_bytecode_open(s, &unknown, &fd, &len), STORE_ENOMODULE);
	CHECK(fd == -1 && len == 0);
	st_h(code, strlen(code), &m);
	CHECK_ERR(store_deploy_id(s, &m, PAGE, &info, &created), STORE_OK);
	CHECK(created == 1);
	CHECK_ERR(store_bytecode_open(s, &m, &fd, &len), STORE_ENOBYTECODE);
	CHECK(fd == -1 && len == 0);
	CHECK(!st_exists(dir, code_name(name, &m)));
	/* a module of an older directory: its file removed while closed */
	CHECK_ERR(st_deploy(s, old, 2 * PAGE, &mo), STORE_OK);
	store_close(s);
	s = NULL;
	{
		char *p = st_path(dir, code_name(name, &mo));

		CHECK(p && (unlink(p) == 0 || errno == ENOENT));
		free(p);
	}
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(store_module_get(s, &mo, &info), STORE_OK);
	CHECK_ERR(store_bytecode_open(s, &mo, &fd, &len), STORE_ENOBYTECODE);
	CHECK_ERR(store_bytecode_open(s, &m, &fd, &len), STORE_ENOBYTECODE);
	ST_CHECK_STORE(s, dir, NULL);
	/* deployed by id again: still none */
	CHECK_ERR(store_deploy_id(s, &m, PAGE, &info, &created), STORE_OK);
	CHECK(created == 0);
	CHECK_ERR(store_bytecode_open(s, &m, &fd, &len), STORE_ENOBYTECODE);
	/* deployed by its code, or uploaded: then it has one */
	CHECK_ERR(store_deploy(s, code, strlen(code), 0, &info, &created),
		  STORE_OK);
	CHECK(created == 0 && info.size == PAGE);
	CHECK(serves(s, &m, code, strlen(code)));
	{
		static const size_t piece = 5;

		CHECK_ERR(deploy_pieces(s, (const unsigned char *)old,
					strlen(old), &piece, 1, PAGE, &info,
					&created),
			  STORE_OK);
		CHECK(created == 0 && info.size == 2 * PAGE);
	}
	CHECK(serves(s, &mo, old, strlen(old)));
	CHECK(st_count_tmp(dir) == 0);
	ST_CHECK_STORE(s, dir, NULL);
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

/* Uploads that deploy nothing. */
static void test_uploads(void)
{
	static const char code[] = "uploaded once";
	char *dir = t_tmpdir("bytecode-uploads");
	char *dir2 = t_tmpdir("bytecode-uploads-other");
	struct store_module_info info;
	struct store_upload *u = NULL;
	struct store *s = NULL, *s2 = NULL;
	struct st_names plain;
	int created = -1;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	CHECK_ERR(st_open(&s2, dir2, NULL), STORE_OK);
	if (!s || !s2)
		goto out;
	/* empty: nothing to deploy */
	CHECK_ERR(store_upload_new(s, &u), STORE_OK);
	CHECK(st_count_tmp(dir) == 1);
	CHECK_ERR(store_upload_write(u, "", 0), STORE_OK);
	CHECK_ERR(store_deploy_upload(s, u, PAGE, &info, &created),
		  STORE_EINVAL);
	CHECK(created == 0);
	store_upload_free(u);
	u = NULL;
	CHECK(st_count_tmp(dir) == 0);
	/* freed unused: its temporary goes */
	CHECK_ERR(store_upload_new(s, &u), STORE_OK);
	CHECK_ERR(store_upload_write(u, code, strlen(code)), STORE_OK);
	store_upload_free(u);
	u = NULL;
	CHECK(st_count_tmp(dir) == 0);
	/* of another store; a size refused: the upload is still usable */
	CHECK_ERR(store_upload_new(s, &u), STORE_OK);
	CHECK_ERR(store_upload_write(u, code, strlen(code)), STORE_OK);
	CHECK_ERR(store_deploy_upload(s2, u, PAGE, &info, &created),
		  STORE_EINVAL);
	CHECK_ERR(store_deploy_upload(s, u, 100, &info, &created),
		  STORE_EINVAL);
	CHECK_ERR(store_deploy_upload(s, u, 1024 * 1024 * 1024 + PAGE, &info,
				      &created),
		  STORE_ETOOBIG);
	CHECK(st_names_list(dir, ST_PLAIN, &plain) == 0 && plain.n == 0);
	st_names_release(&plain);
	/* deployed: spent */
	CHECK_ERR(store_deploy_upload(s, u, PAGE, NULL, NULL), STORE_OK);
	CHECK_ERR(store_deploy_upload(s, u, PAGE, &info, &created),
		  STORE_EINVAL);
	CHECK(created == 0);
	CHECK_ERR(store_upload_write(u, "x", 1), STORE_EINVAL);
	store_upload_free(u);
	u = NULL;
	store_upload_free(NULL);
	CHECK(st_count_tmp(dir) == 0 && st_count_tmp(dir2) == 0);
	{
		struct store_id m;

		st_h(code, strlen(code), &m);
		CHECK(serves(s, &m, code, strlen(code)));
	}
	/* store_deploy of no code */
	CHECK_ERR(store_deploy(s, NULL, 3, PAGE, &info, &created),
		  STORE_EINVAL);
	CHECK_ERR(store_deploy(s, code, 0, PAGE, &info, &created),
		  STORE_EINVAL);
out:
	store_upload_free(u);
	store_close(s);
	store_close(s2);
	t_rmrf(dir);
	t_rmrf(dir2);
	free(dir);
	free(dir2);
}

/* Each step of a deploy failing in turn: nothing of it stays. */
static void test_faults(void)
{
	static const char code[] = "failing deploy";
	static const int errs[] = {EIO, ENOSPC};
	char *dir = t_tmpdir("bytecode-faults");
	char name[STORE_HEX_LEN + 16], init[STORE_HEX_LEN + 16];
	char hex[STORE_HEX_LEN + 1];
	struct store_module_info info;
	struct st_fault f;
	struct store *s = NULL;
	struct store_id m;
	enum store_err err;
	long n, steps = 0;
	size_t k;
	int heal;

	memset(&f, 0, sizeof(f));
	st_h(code, strlen(code), &m);
	code_name(name, &m);
	snprintf(init, sizeof(init), ".%s_init", st_hex(&m, hex));
	/* heal 0: a new module; 1: one deployed by id, given its code */
	for (heal = 0; heal < 2; heal++) {
		for (k = 0; k < 2; k++) {
			for (n = 1; n < 100; n++) {
				t_rmrf(dir);
				CHECK_ERR(st_open(&s, dir, &f), STORE_OK);
				if (!s)
					goto out;
				if (heal)
					CHECK_ERR(store_deploy_id(s, &m, PAGE,
								  NULL, NULL),
						  STORE_OK);
				st_fault_arm(&f, n, errs[k], 0);
				err = store_deploy(s, code, strlen(code), PAGE,
						   &info, NULL);
				st_fault_disarm(&f);
				if (!f.hit) {
					CHECK_ERR(err, STORE_OK);
					steps += n - 1;
					store_close(s);
					s = NULL;
					break;
				}
				CHECK_ERR(err, errs[k] == ENOSPC ? STORE_ENOSPC
								 : STORE_EIO);
				CHECK(!st_exists(dir, name));
				CHECK(st_exists(dir, init) == heal);
				CHECK(st_count_tmp(dir) == 0);
				CHECK_ERR(store_module_get(s, &m, &info),
					  heal ? STORE_OK : STORE_ENOMODULE);
				/* and the same deploy then works */
				CHECK_ERR(store_deploy(s, code, strlen(code),
						       PAGE, &info, NULL),
					  STORE_OK);
				CHECK(serves(s, &m, code, strlen(code)));
				ST_CHECK_STORE(s, dir, NULL);
				store_close(s);
				s = NULL;
			}
		}
	}
	/* a new module takes 10 steps; giving one its bytecode, 5 */
	CHECK(steps == 2 * 10 + 2 * 5);
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

/*
 * A deploy crashed (_exit) at each of its steps: the reopened directory
 * has the module with its bytecode, or neither, and no orphan file.
 */
static void test_crash(void)
{
	static const char code[] = "crashing deploy";
	char *dir = t_tmpdir("bytecode-crash");
	char name[STORE_HEX_LEN + 16], init[STORE_HEX_LEN + 16];
	char hex[STORE_HEX_LEN + 1];
	struct store_module_info info;
	struct st_fault f;
	struct store *s = NULL;
	struct store_id m;
	enum store_err err;
	int status, before = 0, after = 0;
	pid_t pid;
	long n;

	memset(&f, 0, sizeof(f));
	st_h(code, strlen(code), &m);
	code_name(name, &m);
	snprintf(init, sizeof(init), ".%s_init", st_hex(&m, hex));
	for (n = 1; n < 100; n++) {
		t_rmrf(dir);
		fflush(NULL);
		pid = fork();
		if (pid < 0) {
			CHECK(!"fork");
			break;
		}
		if (pid == 0) {
			if (st_open(&s, dir, &f) != STORE_OK)
				_exit(1);
			st_fault_arm(&f, n, 0, 1);
			err = store_deploy(s, code, strlen(code), PAGE, NULL,
					   NULL);
			_exit(err == STORE_OK ? 0 : 2);
		}
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
		if (WEXITSTATUS(status) != ST_CRASH_EXIT) {
			CHECK(WEXITSTATUS(status) == 0);
			break;
		}
		CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
		if (!s)
			break;
		CHECK(st_count_tmp(dir) == 0);
		err = store_module_get(s, &m, &info);
		if (err == STORE_OK) {
			after++;
			CHECK(serves(s, &m, code, strlen(code)));
		} else {
			before++;
			CHECK_ERR(err, STORE_ENOMODULE);
			CHECK(!st_exists(dir, name) && !st_exists(dir, init));
		}
		ST_CHECK_STORE(s, dir, NULL);
		store_close(s);
		s = NULL;
	}
	printf("crash: deploy: %ld steps, state before %d, after %d\n", n - 1,
	       before, after);
	CHECK(n - 1 == 10 && before + after == 10);
	t_rmrf(dir);
	free(dir);
}

/* Orphans of a deploy a crash ended, and names that are not the store's. */
static void test_orphans(void)
{
	static const char code[] = "an orphan's bytecode";
	char *dir = t_tmpdir("bytecode-orphans");
	char name[STORE_HEX_LEN + 16], lower[STORE_HEX_LEN + 16];
	char hex[STORE_HEX_LEN + 1];
	struct store *s = NULL;
	struct store_id m, kept;
	size_t i;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(st_deploy(s, "a module that stays", PAGE, &kept), STORE_OK);
	store_close(s);
	s = NULL;
	st_h(code, strlen(code), &m);
	CHECK(st_write(dir, code_name(name, &m), code, strlen(code)) == 0);
	/* not a module id in uppercase hex: not the store's, left alone */
	st_hex(&m, hex);
	for (i = 0; hex[i]; i++)
		if (hex[i] >= 'A' && hex[i] <= 'F')
			hex[i] = (char)(hex[i] - 'A' + 'a');
	snprintf(lower, sizeof(lower), ".%s_bytecode", hex);
	CHECK(st_write(dir, lower, code, strlen(code)) == 0);
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK(!st_exists(dir, name));
	CHECK(st_exists(dir, lower));
	CHECK_ERR(store_module_get(s, &m, NULL), STORE_ENOMODULE);
	CHECK(file_holds(dir, &kept, "a module that stays", 19));
	ST_CHECK_STORE(s, dir, NULL);
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

/* Threads deploying the same code at once: one creates it, one file. */
struct racer {
	struct store *s;
	const char *code;
	int created;
	enum store_err err;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	static const size_t piece = 3;

	r->err =
	    deploy_pieces(r->s, (const unsigned char *)r->code, strlen(r->code),
			  &piece, 1, PAGE, NULL, &r->created);
	return NULL;
}

static void test_concurrent(void)
{
	enum { N = 8 };
	static const char code[] = "deployed by eight threads at once";
	char *dir = t_tmpdir("bytecode-race");
	struct racer r[N];
	pthread_t th[N];
	struct store *s = NULL;
	struct store_id m;
	int i, made = 0;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	for (i = 0; i < N; i++) {
		r[i].s = s;
		r[i].code = code;
		r[i].created = -1;
		CHECK(pthread_create(&th[i], NULL, race, &r[i]) == 0);
	}
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		CHECK_ERR(r[i].err, STORE_OK);
		made += r[i].created;
	}
	CHECK(made == 1);
	st_h(code, strlen(code), &m);
	CHECK(serves(s, &m, code, strlen(code)));
	CHECK(st_count_tmp(dir) == 0);
	ST_CHECK_STORE(s, dir, NULL);
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

int main(void)
{
	test_deploy_keeps();
	test_delete_gc();
	test_tampered();
	test_no_bytecode();
	test_uploads();
	test_faults();
	test_crash();
	test_orphans();
	test_concurrent();
	return t_done();
}
