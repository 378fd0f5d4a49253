/*
 * fuzz_journal.c - recovery from a hostile .journal.
 *
 * The journal ends with a checksum line, "end H(everything before)", which
 * random bytes never match; this target appends the right one to the input,
 * so the fuzzer reaches the parser and the replay behind it. Each input
 * gets a fresh state directory holding a real store (an empty commit C0,
 * modules a (1 page) and b (2 pages), C1 writing a, C2 growing b), closed;
 * the input plus its checksum line becomes .journal and the store is
 * opened again. store_open() must then either fail with an error code, and
 * fail the same way when tried again, or succeed with a store that holds
 * together:
 *
 *  - the journal is not live (gone, or marked carried out), until a
 *    commit leaves its own live;
 *  - every module's MOD file holds the memory whose id its _last_id names,
 *    and the root is the Merkle root of those module commits;
 *  - a new commit works and becomes the root, and a reopen keeps it.
 *
 * Nothing may crash or leak. With FUZZ_JOURNAL_SEED=DIR in the environment
 * the fuzzer first writes real journals to DIR (restore of C0, restore of
 * C1, a commit equal to C1), caught by failing the switch right after the
 * journal is written.
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

/* What setup() made, the same in every directory. */
struct fixture {
	struct store_id a, b;	/* modules */
	struct store_id c0, c1; /* commits */
	int armed;		/* fail the next switch step (seeding) */
};

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz_journal: ", stderr);
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

static void write_path(const char *path, const void *a, size_t alen,
		       const void *b, size_t blen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	if ((alen && write(fd, a, alen) != (ssize_t)alen) ||
	    (blen && write(fd, b, blen) != (ssize_t)blen))
		die("write %s: %s", path, strerror(errno));
	close(fd);
}

/* Read at most cap bytes of dir/name into buf; -1 if it is missing. */
static ssize_t read_name(const char *dir, const char *name, void *buf,
			 size_t cap)
{
	char path[300];
	ssize_t n, got = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((size_t)got < cap &&
	       (n = read(fd, (char *)buf + got, cap - (size_t)got)) > 0)
		got += n;
	close(fd);
	return got;
}

/* Seeding only: make the first step that moves a name fail. */
static int fail_switch(void *ctx, const char *step)
{
	struct fixture *fx = ctx;

	if (!fx->armed ||
	    (strcmp(step, "switch.rename") && strcmp(step, "switch.unlink") &&
	     strcmp(step, "switch.link")))
		return 0;
	fx->armed = 0;
	return EIO;
}

/* One session on base (NULL: current) writing len bytes of v, committed. */
static void commit_write(struct store *s, const struct store_id *base,
			 const struct store_id *mod, uint64_t off, size_t len,
			 int v, struct store_id *id)
{
	struct store_session_info si;
	struct store_commit_info ci;
	unsigned char buf[PAGE];

	memset(buf, v, sizeof(buf));
	must("begin", store_session_begin(s, base, &si));
	if (mod)
		must("write",
		     store_session_write(s, &si.id, mod, off, buf, len));
	must("commit", store_session_commit(s, &si.id, NULL, &ci));
	if (id)
		*id = ci.id;
	store_commit_info_release(&ci);
}

static void setup(const struct store_options *opts, struct fixture *fx,
		  struct store **out)
{
	struct store_module_info info;
	struct store *s;

	must("store_open", store_open(&s, opts));
	commit_write(s, NULL, NULL, 0, 0, 0, &fx->c0); /* no module yet */
	must("deploy", store_deploy(s, "a", 1, PAGE, &info, NULL));
	fx->a = info.id;
	must("deploy", store_deploy(s, "b", 1, 2 * PAGE, &info, NULL));
	fx->b = info.id;
	commit_write(s, NULL, &fx->a, 10, 100, 'a', &fx->c1);
	commit_write(s, NULL, &fx->b, 3 * PAGE - 1, 2, 'b', NULL); /* grows */
	must("persist", store_persist(s));
	*out = s;
}

/* The seq of a live journal of version 2 in buf (n bytes), or -1. */
static long long journal_seq_of(const char *buf, ssize_t n)
{
	static const char v2[] = "modstore-journal 2\nseq ";

	if (n <= (ssize_t)sizeof(v2) || memcmp(buf, v2, sizeof(v2) - 1))
		return -1;
	return strtoll(buf + sizeof(v2) - 1, NULL, 10);
}

/*
 * The newest journal as the store wrote it (of its two slots), without its
 * checksum line, to path.
 */
static void save_journal(const char *dir, const char *path)
{
	static char other[8192];
	char buf[8192];
	ssize_t n = read_name(dir, ".journal", buf, sizeof(buf) - 1);
	ssize_t m = read_name(dir, ".journal.1", other, sizeof(other) - 1);
	size_t end;

	if (m > 0 && journal_seq_of(other, m) > journal_seq_of(buf, n)) {
		memcpy(buf, other, (size_t)m);
		n = m;
	}

	if (n <= 0)
		die("no journal left behind to seed from");
	end = (size_t)n - 1; /* the final newline */
	while (end > 0 && buf[end - 1] != '\n')
		end--;
	write_path(path, buf, end, NULL, 0);
}

/* Seeding: run op with the switch failing, and keep the journal. */
static void seed(const char *seeddir, const char *name, int op)
{
	struct store_options opts = {0};
	struct fixture fx;
	struct store *s;
	struct store_commit_info ci;
	struct store_session_info si;
	char dir[128], path[300];
	enum store_err err;

	snprintf(dir, sizeof(dir), "%s/modstore-fuzz-seed-%ld", base_dir,
		 (long)getpid());
	opts.dir = dir;
	opts.max_module_size = MAX_SIZE;
	opts.fault = fail_switch;
	opts.fault_ctx = &fx;
	memset(&fx, 0, sizeof(fx));
	setup(&opts, &fx, &s);
	fx.armed = 1;
	if (op == 0) {
		err = store_restore(s, &fx.c0);
	} else if (op == 1) {
		err = store_restore(s, &fx.c1);
	} else {
		must("begin", store_session_begin(s, &fx.c1, &si));
		err = store_session_commit(s, &si.id, NULL, &ci);
		store_commit_info_release(&ci);
	}
	if (err == STORE_OK)
		die("seed %s: the switch did not fail", name);
	store_close(s);
	snprintf(path, sizeof(path), "%s/%s", seeddir, name);
	save_journal(dir, path);
	fuzz_remove_dir("fuzz_journal", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeddir = getenv("FUZZ_JOURNAL_SEED");

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	base_dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	if (seeddir) {
		seed(seeddir, "restore_empty", 0);
		seed(seeddir, "restore", 1);
		seed(seeddir, "commit", 2);
	}
	return 0;
}

/* MOD holds the memory its _last_id names; the root is theirs. */
static void check_store(struct store *s, const char *dir, int opened)
{
	static unsigned char mem[MAX_SIZE + 1];
	struct store_module_info *v = NULL, info;
	struct store_pair pairs[8];
	struct store_id id, root;
	char hex[STORE_HEX_LEN + 1], name[100], line[STORE_HEX_LEN + 2];
	size_t n, i, np = 0;
	ssize_t got;
	int fd;

	for (i = 0; i < 2; i++) {
		got = read_name(dir, i ? ".journal.1" : ".journal", line, 19);
		if (opened && got == 19 &&
		    (!memcmp(line, "modstore-journal 1\n", 19) ||
		     !memcmp(line, "modstore-journal 2\n", 19)))
			die("a journal is still live after a clean open");
	}
	must("store_module_list", store_module_list(s, &v, &n));
	if (n > 8)
		die("%zu modules from two deploys", n);
	for (i = 0; i < n; i++) {
		must("store_module_open",
		     store_module_open(s, &v[i].id, &fd, &info));
		if (info.size != v[i].size ||
		    info.has_commit != v[i].has_commit)
			die("module %zu: open and list disagree", i);
		got = pread(fd, mem, sizeof(mem), 0);
		close(fd);
		if (got != (ssize_t)v[i].size)
			die("module %zu: %zd bytes, its size says %llu", i, got,
			    (unsigned long long)v[i].size);
		store_id_hex(&v[i].id, hex);
		snprintf(name, sizeof(name), "%s_last_id", hex);
		got = read_name(dir, name, line, sizeof(line));
		if (!v[i].has_commit) {
			if (got >= 0)
				die("%s exists, yet no module commit", name);
			continue;
		}
		store_memory_id(mem, v[i].size, &id);
		if (!store_id_equal(&id, &v[i].last_commit))
			die("module %zu: MOD does not hold its module commit",
			    i);
		store_id_hex(&id, hex);
		if (got != STORE_HEX_LEN + 1 ||
		    memcmp(line, hex, STORE_HEX_LEN))
			die("%s does not name the module commit", name);
		pairs[np].module = v[i].id;
		pairs[np++].commit = id;
	}
	free(v);
	must("store_state_id", store_state_id(pairs, np, &id));
	must("store_root", store_root(s, &root));
	if (!store_id_equal(&id, &root))
		die("the root is not that of the module commits");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_options opts = {0};
	struct fixture fx;
	struct store *s = NULL;
	struct store_id check, c, root;
	char dir[128], path[300], tail[STORE_HEX_LEN + 6];
	enum store_err err, again;

	snprintf(dir, sizeof(dir), "%s/modstore-fuzz-%ld-%lu", base_dir,
		 (long)getpid(), counter++);
	opts.dir = dir;
	opts.max_module_size = MAX_SIZE;
	memset(&fx, 0, sizeof(fx));
	setup(&opts, &fx, &s);
	store_close(s);
	s = NULL;

	crypto_generichash(check.b, STORE_ID_BYTES, data, size, NULL, 0);
	memcpy(tail, "end ", 4);
	store_id_hex(&check, tail + 4);
	tail[4 + STORE_HEX_LEN] = '\n';
	snprintf(path, sizeof(path), "%s/.journal", dir);
	write_path(path, data, size, tail, STORE_HEX_LEN + 5);

	err = store_open(&s, &opts);
	if ((unsigned)err >= STORE_ERR_COUNT)
		die("store_open returned %d", (int)err);
	if (err) {
		/* the journal stays: the next open replays it again */
		again = store_open(&s, &opts);
		if (again != err)
			die("store_open: %s, then %s", store_errname(err),
			    store_errname(again));
		goto out;
	}
	check_store(s, dir, 1);
	commit_write(s, NULL, &fx.a, 0, 1, 'z', &c);
	must("store_root", store_root(s, &root));
	if (!store_id_equal(&c, &root))
		die("the new commit is not the root");
	check_store(s, dir, 0); /* its journal stays live until a flush */
	store_close(s);
	s = NULL;
	must("store_open", store_open(&s, &opts));
	must("store_root", store_root(s, &root));
	if (!store_id_equal(&c, &root))
		die("the root did not survive a reopen");
	check_store(s, dir, 1);
out:
	store_close(s);
	fuzz_remove_dir("fuzz_journal", dir);
	return 0;
}
