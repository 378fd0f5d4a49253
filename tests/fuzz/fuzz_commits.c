/*
 * fuzz_commits.c - the parser of the file `commits` with hostile bytes.
 *
 * Every input gets a fresh state directory holding a real store: an empty
 * commit made before any module existed, two modules (1 and 2 pages) and
 * two commits writing them, the current state restored to the first of
 * those, the commits store persisted. Then the input replaces the file
 * `commits`, and it is read both ways the store reads it:
 *
 *  1. merged into the open store by store_restore() of an unknown id: the
 *     answer is STORE_ENOCOMMIT if the file parses (the commits store may
 *     only grow), an error otherwise (and the commits store is unchanged);
 *  2. loaded by store_open(): it succeeds exactly when the merge did.
 *
 * When the file was accepted, its first and last commits are restored (an
 * error is fine: a commit may name a module or a file that does not exist;
 * success must make the root that commit's id), every commit listed must
 * carry the id of its pairs, and store_persist() followed by store_open()
 * must give the same number of commits and, persisted again, the same
 * bytes. Nothing may crash or leak.
 *
 * With FUZZ_COMMITS_SEED=DIR in the environment the fuzzer first writes
 * the real store's own `commits` file to DIR/valid (for the seed corpus).
 */
#include "fuzz_dir.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE	 STORE_PAGE_SIZE
#define MAX_SIZE (8 * PAGE)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *base_dir;
static unsigned long counter;
static int trace; /* FUZZ_TRACE=1: say what each input did */

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz_commits: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static void must(const char *what, enum store_err err)
{
	if (err != STORE_OK)
		die("%s: %s", what, store_errname(err));
}

/* Any answer but success must be a real error code. */
static void check_code(const char *what, enum store_err err)
{
	if ((unsigned)err >= STORE_ERR_COUNT)
		die("%s: returned %d, not an enum store_err", what, (int)err);
}

static void write_path(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	if (len && write(fd, buf, len) != (ssize_t)len)
		die("write %s: %s", path, strerror(errno));
	close(fd);
}

/* The whole file at path (malloc'd, caller frees); NULL if missing. */
static char *read_path(const char *path, size_t *len)
{
	char *buf = NULL;
	ssize_t n;
	size_t cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*len = 0;
	if (fd < 0)
		return NULL;
	do {
		if (*len == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (!buf)
				die("out of memory");
		}
		n = read(fd, buf + *len, cap - *len);
		if (n > 0)
			*len += (size_t)n;
	} while (n > 0);
	if (n < 0)
		die("read %s: %s", path, strerror(errno));
	close(fd);
	return buf;
}

/* One session writing len bytes of v at off of mod, committed. */
static void commit_write(struct store *s, const struct store_id *mod,
			 uint64_t off, size_t len, int v)
{
	struct store_session_info si;
	struct store_commit_info ci;
	unsigned char buf[PAGE];

	memset(buf, v, sizeof(buf));
	must("begin", store_session_begin(s, NULL, &si));
	if (mod)
		must("write",
		     store_session_write(s, &si.id, mod, off, buf, len));
	must("commit", store_session_commit(s, &si.id, NULL, &ci));
	store_commit_info_release(&ci);
}

/* The real store every input starts from; left open in *out. */
static void setup(const struct store_options *opts, struct store **out)
{
	struct store_module_info a, b;
	struct store_id first;
	struct store *s;

	must("store_open", store_open(&s, opts));
	commit_write(s, NULL, 0, 0, 0); /* no module yet: zero pairs */
	must("deploy", store_deploy(s, "a", 1, PAGE, &a, NULL));
	must("deploy", store_deploy(s, "b", 1, 2 * PAGE, &b, NULL));
	commit_write(s, &a.id, 10, 100, 'a');
	must("root", store_root(s, &first));
	commit_write(s, &b.id, 3 * PAGE - 1, 2, 'b'); /* grows b */
	must("persist", store_persist(s));
	must("restore", store_restore(s, &first));
	*out = s;
}

struct walk {
	struct store_id first, last;
	size_t n;
};

/* Each commit must be the Merkle root of its pairs, sorted and unique. */
static int walk_commit(void *ctx, const struct store_id *id,
		       const struct store_pair *pairs, size_t n)
{
	struct walk *w = ctx;
	struct store_id check;
	size_t i;

	for (i = 1; i < n; i++)
		if (memcmp(pairs[i - 1].module.b, pairs[i].module.b,
			   STORE_ID_BYTES) >= 0)
			die("commit %zu: modules not sorted and unique", w->n);
	must("store_state_id", store_state_id(pairs, n, &check));
	if (!store_id_equal(&check, id))
		die("commit %zu: id is not the root of its pairs", w->n);
	if (!w->n)
		w->first = *id;
	w->last = *id;
	w->n++;
	return 0;
}

/* Restore id if the store can; if it does, the root must be id. */
static void try_restore(struct store *s, const struct store_id *id)
{
	struct store_id root;
	enum store_err err = store_restore(s, id);

	check_code("store_restore", err);
	if (trace)
		fprintf(stderr, "restore: %s\n", store_errname(err));
	if (err)
		return;
	must("store_root", store_root(s, &root));
	if (!store_id_equal(&root, id))
		die("restore: the root is not the commit restored");
}

static void reopen(struct store **s, const struct store_options *opts)
{
	store_close(*s);
	*s = NULL;
	must("store_open", store_open(s, opts));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct store_options opts = {0};
	struct store *s = NULL;
	char dir[128], path[256], *buf;
	const char *seed = getenv("FUZZ_COMMITS_SEED");
	size_t len;

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	base_dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	trace = getenv("FUZZ_TRACE") && strcmp(getenv("FUZZ_TRACE"), "0");
	if (!seed)
		return 0;
	snprintf(dir, sizeof(dir), "%s/modstore-fuzz-seed-%ld", base_dir,
		 (long)getpid());
	opts.dir = dir;
	opts.max_module_size = MAX_SIZE;
	setup(&opts, &s);
	store_close(s);
	snprintf(path, sizeof(path), "%s/commits", dir);
	buf = read_path(path, &len);
	if (!buf)
		die("the store wrote no file commits");
	snprintf(path, sizeof(path), "%s/valid", seed);
	write_path(path, buf, len);
	free(buf);
	fuzz_remove_dir("fuzz_commits", dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_options opts = {0};
	struct store *s = NULL;
	struct store_id unknown;
	struct walk w = {0};
	char dir[128], path[256], *once = NULL, *twice = NULL;
	size_t n0, n1, n2, len1, len2;
	enum store_err err;
	int merged;

	snprintf(dir, sizeof(dir), "%s/modstore-fuzz-%ld-%lu", base_dir,
		 (long)getpid(), counter++);
	snprintf(path, sizeof(path), "%s/commits", dir);
	opts.dir = dir;
	opts.max_module_size = MAX_SIZE;
	setup(&opts, &s);
	write_path(path, data, size);

	/* 1: merged in by a restore of a commit the store does not know */
	n0 = store_commits_count(s);
	store_module_id("unknown", 7, &unknown);
	err = store_restore(s, &unknown);
	check_code("store_restore (merge)", err);
	merged = err == STORE_ENOCOMMIT;
	n1 = store_commits_count(s);
	if (merged ? n1 < n0 : n1 != n0)
		die("merge (%s): %zu commits before, %zu after",
		    store_errname(err), n0, n1);
	if (err == STORE_OK)
		die("restore of an unknown commit succeeded");
	if (trace)
		fprintf(stderr, "merge: %s, %zu commits before, %zu after\n",
			store_errname(err), n0, n1);

	/* 2: loaded by store_open() */
	store_close(s);
	s = NULL;
	err = store_open(&s, &opts);
	check_code("store_open", err);
	if ((err == STORE_OK) != merged)
		die("store_open says %s, the merge said %s", store_errname(err),
		    merged ? "fine" : "corrupt");
	if (err)
		goto out;
	must("store_commits_foreach",
	     store_commits_foreach(s, walk_commit, &w));
	n1 = store_commits_count(s);
	if (w.n != n1)
		die("store_commits_foreach saw %zu commits of %zu", w.n, n1);
	if (n1) {
		try_restore(s, &w.first);
		try_restore(s, &w.last);
	}
	if (trace)
		fprintf(stderr, "open: %zu commits\n", n1);
	try_restore(s, &unknown); /* merges the same file again */
	if (store_commits_count(s) != n1)
		die("merging the same file again added commits");

	/* what it loaded persists and loads back the same, byte for byte */
	must("store_persist", store_persist(s));
	once = read_path(path, &len1);
	reopen(&s, &opts);
	n2 = store_commits_count(s);
	if (n2 != n1)
		die("persist and reopen: %zu commits, then %zu", n1, n2);
	must("store_persist", store_persist(s));
	twice = read_path(path, &len2);
	if (!once || !twice || len1 != len2 || memcmp(once, twice, len1))
		die("persisting what was loaded changed the file");
out:
	free(once);
	free(twice);
	store_close(s);
	fuzz_remove_dir("fuzz_commits", dir);
	return 0;
}
