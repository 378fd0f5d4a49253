/*
 * unit_errors.c - every error the API can return: bad arguments, unknown
 * ids, a second process on the directory, malformed files, and I/O
 * failures at each step of deploy, commit, persist and restore through the
 * fault hook (the state must be the one before, and the store usable).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

static void test_names(void)
{
	int e, k;

	for (e = 0; e < STORE_ERR_COUNT; e++) {
		const char *msg = store_strerror((enum store_err)e);
		const char *name = store_errname((enum store_err)e);
		const char *p;

		CHECK(msg && *msg);
		CHECK(name && *name);
		if (!name)
			continue;
		for (p = name; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || *p == '_' ||
			      (*p >= '0' && *p <= '9')))
				break;
		CHECK(*p == '\0');
		for (k = 0; k < e; k++) {
			const char *other = store_errname((enum store_err)k);

			CHECK(!other || strcmp(other, name));
		}
	}
	CHECK(!strcmp(store_errname(STORE_ENOMODULE), "module_not_found"));
	CHECK(!strcmp(store_errname(STORE_ENOSPC), "disk_full"));
	CHECK(store_strerror(STORE_ERR_COUNT) != NULL);
	CHECK(store_errname(STORE_ERR_COUNT) != NULL);
	CHECK(store_strerror((enum store_err)1000) != NULL);
	CHECK(store_errname((enum store_err)1000) != NULL);
}

static void test_arguments(void)
{
	char *dir = t_tmpdir("errors-args");
	struct store_options o;
	struct store *s = NULL;
	struct store_module_info info;
	struct store_session_info si;
	struct store_id unknown, mod, sid, commit;
	struct store_pair *pairs = NULL;
	struct st_names names;
	unsigned char buf[8];
	uint64_t size;
	size_t n;
	int fd = -1, created = -1;
	enum store_err err;

	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.max_module_size = 16 * STORE_PAGE_SIZE;
	CHECK_ERR(store_open(&s, &o), STORE_OK);
	if (!s)
		goto out;
	memset(&unknown, 0x3C, sizeof(unknown));
	/* sizes */
	CHECK_ERR(store_deploy(s, "x", 1, 0, &info, &created), STORE_EINVAL);
	CHECK_ERR(store_deploy(s, "x", 1, 4095, &info, &created), STORE_EINVAL);
	CHECK_ERR(store_deploy(s, "x", 1, 4097, &info, &created), STORE_EINVAL);
	CHECK_ERR(store_deploy(s, "x", 1, 6000, &info, &created), STORE_EINVAL);
	err = store_deploy(s, "x", 1, 17 * STORE_PAGE_SIZE, &info, &created);
	CHECK(err == STORE_EINVAL || err == STORE_ETOOBIG);
	err = store_deploy(s, "x", 1, UINT64_MAX - 4095, &info, &created);
	CHECK(err == STORE_EINVAL || err == STORE_ETOOBIG);
	CHECK_ERR(store_deploy_id(s, &unknown, 0, &info, &created),
		  STORE_EINVAL);
	CHECK_ERR(store_deploy_id(s, &unknown, 100, &info, &created),
		  STORE_EINVAL);
	err =
	    store_deploy_id(s, &unknown, 32 * STORE_PAGE_SIZE, &info, &created);
	CHECK(err == STORE_EINVAL || err == STORE_ETOOBIG);
	/* empty code */
	CHECK_ERR(store_deploy(s, "", 0, 4096, &info, &created), STORE_EINVAL);
	/* nothing was deployed by any of these */
	CHECK(st_names_list(dir, ST_PLAIN, &names) == 0 && names.n == 0);
	st_names_release(&names);
	{
		struct store_module_info *list = NULL;

		CHECK_ERR(store_module_list(s, &list, &n), STORE_OK);
		CHECK(n == 0);
		free(list);
	}
	/* the maximum itself is fine; NULL info and created too */
	CHECK_ERR(store_deploy(s, "x", 1, 16 * STORE_PAGE_SIZE, NULL, NULL),
		  STORE_OK);
	st_h("x", 1, &mod);

	/* unknown module */
	CHECK_ERR(store_module_get(s, &unknown, &info), STORE_ENOMODULE);
	CHECK_ERR(store_module_open(s, &unknown, &fd, &info), STORE_ENOMODULE);
	CHECK(fd == -1);
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(store_session_size(s, &sid, &unknown, &size),
		  STORE_ENOMODULE);
	CHECK_ERR(store_session_read(s, &sid, &unknown, 0, buf, 1),
		  STORE_ENOMODULE);
	CHECK_ERR(store_session_write(s, &sid, &unknown, 0, buf, 1),
		  STORE_ENOMODULE);
	/* unknown session */
	CHECK_ERR(store_session_size(s, &unknown, &mod, &size),
		  STORE_ENOSESSION);
	CHECK_ERR(store_session_read(s, &unknown, &mod, 0, buf, 1),
		  STORE_ENOSESSION);
	CHECK_ERR(store_session_write(s, &unknown, &mod, 0, buf, 1),
		  STORE_ENOSESSION);
	CHECK_ERR(st_commit(s, &unknown, NULL), STORE_ENOSESSION);
	CHECK_ERR(store_session_drop(s, &unknown), STORE_ENOSESSION);
	/* unknown commit */
	CHECK_ERR(store_restore(s, &unknown), STORE_ENOCOMMIT);
	CHECK_ERR(store_commit_get(s, &unknown, &pairs, &n), STORE_ENOCOMMIT);
	CHECK_ERR(store_session_begin(s, &unknown, &si), STORE_ENOCOMMIT);
	CHECK_ERR(st_commit(s, &sid, &commit), STORE_OK);
	CHECK_ERR(store_restore(s, &unknown), STORE_ENOCOMMIT);
	CHECK_ERR(store_restore(s, &mod), STORE_ENOCOMMIT);
	CHECK_ERR(store_commit_get(s, &unknown, &pairs, &n), STORE_ENOCOMMIT);
	CHECK_ERR(store_restore(s, &commit), STORE_OK);
	ST_CHECK_STORE(s, dir, NULL);
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

/* A second open of the same directory: in this process and in another. */
static void test_locked(void)
{
	char *dir = t_tmpdir("errors-lock");
	struct store *s = NULL, *s2 = NULL;
	pid_t pid;
	int status = 0;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(st_deploy(s, "locked", 4096, NULL), STORE_OK);
	CHECK_ERR(st_open(&s2, dir, NULL), STORE_ELOCKED);
	CHECK(s2 == NULL || (store_close(s2), 0));
	s2 = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct store *c = NULL;
		enum store_err err = st_open(&c, dir, NULL);

		_exit(err == STORE_ELOCKED ? 0 : 10 + (int)err);
	}
	CHECK(pid > 0);
	if (pid > 0) {
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		if (WIFEXITED(status) && WEXITSTATUS(status))
			fprintf(stderr, "child store_open = %d, want %d\n",
				WEXITSTATUS(status) - 10, STORE_ELOCKED);
	}
	/* the store is unharmed; after close the directory opens again */
	ST_CHECK_STORE(s, dir, NULL);
	store_close(s);
	s = NULL;
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	ST_CHECK_STORE(s, dir, NULL);
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

/* Malformed files of the state directory: ECORRUPT. */
static void test_corrupt(void)
{
	char *dir = t_tmpdir("errors-corrupt");
	struct store *s = NULL;
	struct store_id m, sid, c1, bogus;
	char name[2 * STORE_HEX_LEN + 16];
	unsigned char *saved = NULL, *lid = NULL;
	size_t len = 0, lidlen = 0;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(st_deploy(s, "corrupt", 4096, &m), STORE_OK);
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(st_commit(s, &sid, &c1), STORE_OK);
	CHECK_ERR(store_persist(s), STORE_OK);
	CHECK(st_read(dir, "commits", &saved, &len) == 0);
	/* restore of an unknown commit reads a malformed `commits` */
	CHECK(st_write(dir, "commits", "{\"nope\":", 8) == 0);
	memset(&bogus, 0x77, sizeof(bogus));
	CHECK_ERR(store_restore(s, &bogus), STORE_ECORRUPT);
	ST_CHECK_STORE(s, dir, NULL);
	store_close(s);
	s = NULL;
	/* open reads `commits` */
	CHECK_ERR(st_open(&s, dir, NULL), STORE_ECORRUPT);
	store_close(s);
	s = NULL;
	CHECK(st_write(dir, "commits", "[1,2,3]", 7) == 0);
	CHECK_ERR(st_open(&s, dir, NULL), STORE_ECORRUPT);
	store_close(s);
	s = NULL;
	CHECK(st_write(dir, "commits", saved, len) == 0);
	/* and the _last_id files */
	st_mod_name(name, sizeof(name), &m, "_last_id");
	CHECK(st_read(dir, name, &lid, &lidlen) == 0);
	CHECK(st_write(dir, name, "not an id\n", 10) == 0);
	CHECK_ERR(st_open(&s, dir, NULL), STORE_ECORRUPT);
	store_close(s);
	s = NULL;
	/* repaired, it opens */
	if (lid)
		CHECK(st_write(dir, name, lid, lidlen) == 0);
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	ST_CHECK_STORE(s, dir, NULL);
	CHECK(store_commits_count(s) == 1);
out:
	store_close(s);
	free(saved);
	free(lid);
	t_rmrf(dir);
	free(dir);
}

/* --- I/O failures through the fault hook -----------------------------------
 */

struct ctx {
	char *dir;
	struct store *s;
	struct st_fault f;
	struct store_id m1, m2, m3, c1, c2, sid;
	int have_sid;
	int lost_sessions;
};

static enum store_err ctx_open(struct ctx *c)
{
	return st_open(&c->s, c->dir, &c->f);
}

/* m1, m2 deployed; c1 (m1 written), c2 (m2 written, m3 deployed). */
static int setup_common(struct ctx *c, const char *tag)
{
	struct store_id sid;

	memset(c, 0, sizeof(*c));
	c->dir = t_tmpdir(tag);
	if (!c->dir || ctx_open(c) != STORE_OK)
		return -1;
	if (st_deploy(c->s, "fault one", 8192, &c->m1) ||
	    st_deploy(c->s, "fault two", 4096, &c->m2) ||
	    st_begin(c->s, &sid) || st_fill(c->s, &sid, &c->m1, 5, 1, 3) ||
	    st_commit(c->s, &sid, &c->c1) ||
	    st_deploy(c->s, "fault three", 4096, &c->m3) ||
	    st_begin(c->s, &sid) || st_fill(c->s, &sid, &c->m2, 0, 2, 4096) ||
	    st_fill(c->s, &sid, &c->m3, 4000, 3, 10) ||
	    st_commit(c->s, &sid, &c->c2))
		return -1;
	return 0;
}

static void ctx_free(struct ctx *c)
{
	store_close(c->s);
	t_rmrf(c->dir);
	free(c->dir);
}

static int new_session(struct ctx *c)
{
	if (st_begin(c->s, &c->sid) ||
	    st_fill(c->s, &c->sid, &c->m1, 0, 0xA1, 4096) ||
	    st_fill(c->s, &c->sid, &c->m2, 4096 + 7, 0xA2, 1) ||
	    st_fill(c->s, &c->sid, &c->m3, 0, 3, 1))
		return -1;
	c->have_sid = 1;
	return 0;
}

static int setup_commit(struct ctx *c)
{
	if (setup_common(c, "errors-fault-commit"))
		return -1;
	return new_session(c);
}

static enum store_err op_commit(struct ctx *c)
{
	enum store_err err;

	if (c->have_sid) {
		err = st_commit(c->s, &c->sid, NULL);
		if (err != STORE_ENOSESSION) {
			if (err == STORE_OK)
				c->have_sid = 0;
			return err;
		}
		c->have_sid = 0;
		c->lost_sessions++;
	}
	if (new_session(c))
		return STORE_EIO;
	err = st_commit(c->s, &c->sid, NULL);
	if (err == STORE_OK)
		c->have_sid = 0;
	return err;
}

static int setup_deploy(struct ctx *c)
{
	return setup_common(c, "errors-fault-deploy");
}

static enum store_err op_deploy(struct ctx *c)
{
	int created = -1;
	enum store_err err;

	err = store_deploy(c->s, "fault four", 10, 3 * STORE_PAGE_SIZE, NULL,
			   &created);
	if (err == STORE_OK)
		CHECK(created == 1);
	return err;
}

static int setup_persist(struct ctx *c)
{
	struct store_id sid;

	if (setup_common(c, "errors-fault-persist"))
		return -1;
	if (store_persist(c->s) || st_begin(c->s, &sid) ||
	    st_fill(c->s, &sid, &c->m1, 8000, 9, 100) ||
	    st_commit(c->s, &sid, NULL))
		return -1;
	return 0;
}

static enum store_err op_persist(struct ctx *c)
{
	return store_persist(c->s);
}

static int setup_restore(struct ctx *c)
{
	return setup_common(c, "errors-fault-restore");
}

static enum store_err op_restore(struct ctx *c)
{
	return store_restore(c->s, &c->c1);
}

struct op {
	const char *name;
	int (*setup)(struct ctx *c);
	enum store_err (*run)(struct ctx *c);
};

static const struct op ops[] = {
    {"deploy", setup_deploy, op_deploy},
    {"commit", setup_commit, op_commit},
    {"persist", setup_persist, op_persist},
    {"restore", setup_restore, op_restore},
};

struct state {
	struct st_snap snap;
	struct store_id root;
	size_t commits;
};

static void state_take(struct ctx *c, struct state *st)
{
	CHECK(st_snap_take(c->dir, &st->snap) == 0);
	st->root = st_root(c->s);
	st->commits = store_commits_count(c->s);
}

/* What differs between a state and the files and store now. */
enum diff {
	D_ORPHAN = 1,	/* commit files added, nothing else */
	D_FILES = 2,	/* any other file added, removed or changed */
	D_MISMATCH = 4, /* the store disagrees with its files */
	D_ROOT = 8,	/* the root is another one */
	D_COMMITS = 16, /* the commits store has another size */
};

static int is_commit_name(const char *n)
{
	return strlen(n) == 2 * STORE_HEX_LEN + 1 && n[STORE_HEX_LEN] == '_' &&
	       st_is_hex64_upper(n, STORE_HEX_LEN) &&
	       st_is_hex64_upper(n + STORE_HEX_LEN + 1, STORE_HEX_LEN);
}

static int diff_state(struct ctx *c, const struct state *st, int quiet)
{
	struct st_snap now;
	struct store_id root;
	size_t i, j;
	int d = 0, saved = t_failed, savedp = t_passed;

	if (st_snap_take(c->dir, &now))
		return D_FILES;
	for (i = 0; i < now.names.n; i++) {
		for (j = 0; j < st->snap.names.n; j++)
			if (!strcmp(now.names.v[i], st->snap.names.v[j]))
				break;
		if (j == st->snap.names.n)
			d |=
			    is_commit_name(now.names.v[i]) ? D_ORPHAN : D_FILES;
		else if (!store_id_equal(&now.hash[i], &st->snap.hash[j]))
			d |= D_FILES;
	}
	for (j = 0; j < st->snap.names.n; j++)
		if (!st_names_has(&now.names, st->snap.names.v[j]))
			d |= D_FILES;
	if (!quiet && (d & D_FILES))
		st_snap_equal("files", &st->snap, &now);
	st_snap_release(&now);
	if (quiet) {
		struct st_state fs;

		if (st_state_read(c->dir, &fs) ||
		    store_root(c->s, &root) != STORE_OK ||
		    !store_id_equal(&root, &fs.root))
			d |= D_MISMATCH;
		else if (!store_id_equal(&root, &st->root))
			d |= D_ROOT;
		st_state_release(&fs);
	} else {
		if (st_check_store(__FILE__, __LINE__, c->s, c->dir, &root))
			d |= D_MISMATCH;
		if (!store_id_equal(&root, &st->root))
			d |= D_ROOT;
		/* these checks are counted by the caller */
		t_failed = saved;
		t_passed = savedp;
	}
	if (store_commits_count(c->s) != st->commits)
		d |= D_COMMITS;
	return d;
}

static const char *diff_text(int d)
{
	static char buf[160];

	snprintf(buf, sizeof(buf), "%s%s%s%s%s",
		 d & D_ORPHAN ? " orphan-commit-files" : "",
		 d & D_FILES ? " state-files-changed" : "",
		 d & D_MISMATCH ? " store-disagrees-with-files" : "",
		 d & D_ROOT ? " root-changed" : "",
		 d & D_COMMITS ? " commits-store-changed" : "");
	return buf;
}

static int verbose;

/* Check a state; each kind of difference is its own failed check. */
#define CHECK_STATE(c, st, what, tl) check_state(__LINE__, c, st, what, tl)
static int check_state(int line, struct ctx *c, const struct state *st,
		       const char *what, int *tally)
{
	int d = diff_state(c, st, !verbose), k;

	for (k = 0; k < 5; k++) {
		if ((d & (1 << k)) && (1 << k) == D_ORPHAN) {
			/* not the state; counted and reported, not failed */
			if (tally)
				tally[k]++;
		} else if (d & (1 << k)) {
			st_fail(__FILE__, line, "%s:%s", what,
				diff_text(1 << k));
			if (tally)
				tally[k]++;
		} else {
			st_pass();
		}
	}
	return d;
}

/* The state after op with no fault, for comparison. */
static int reference(const struct op *op, struct state *after, long *steps)
{
	struct ctx c;
	int ret = -1;

	if (op->setup(&c)) {
		st_fail(__FILE__, __LINE__, "%s: setup failed", op->name);
		goto out;
	}
	st_fault_arm(&c.f, 0, 0, 0);
	CHECK_ERR(op->run(&c), STORE_OK);
	st_fault_disarm(&c.f);
	*steps = c.f.calls;
	state_take(&c, after);
	ret = 0;
out:
	ctx_free(&c);
	return ret;
}

/*
 * Fail step n of op with err. reopen_first: close and reopen right after
 * the failure (the state must still be the one before), else retry in the
 * same process first. Returns 1 when the hook was hit.
 */
struct tally {
	int ignored;
	int lost;
	long covered;
	int before[5]; /* differences from the state before, in process */
	int reopen[5]; /* ... after a reopen */
	int after[5];  /* differences from the state after a retry */
};

static int fault_once(const struct op *op, long n, int err, int reopen_first,
		      const struct state *after, struct tally *t)
{
	struct ctx c;
	struct state before;
	enum store_err got, want = err == ENOSPC ? STORE_ENOSPC : STORE_EIO;
	char what[128];
	int hit = 0, d;

	memset(&before, 0, sizeof(before));
	if (op->setup(&c)) {
		st_fail(__FILE__, __LINE__, "%s: setup failed", op->name);
		goto out;
	}
	state_take(&c, &before);
	st_fault_arm(&c.f, n, err, 0);
	got = op->run(&c);
	st_fault_disarm(&c.f);
	hit = c.f.hit;
	snprintf(what, sizeof(what), "%s: step %ld (%s) failing with %s",
		 op->name, n, c.f.step, strerror(err));
	if (!hit) {
		CHECK_ERR(got, STORE_OK);
		goto out;
	}
	if (got == STORE_OK) {
		/* the store went on without the step: must be complete */
		t->ignored++;
		fprintf(stderr, "note: %s: ignored, operation succeeded\n",
			what);
		CHECK_STATE(&c, after, what, t->after);
		goto out;
	}
	if (got != want)
		st_fail(__FILE__, __LINE__, "%s: returned %s, want %s", what,
			store_errname(got), store_errname(want));
	else
		st_pass();
	d = CHECK_STATE(&c, &before, what, t->before);
	if (d && !reopen_first)
		printf("fault: %s: in process:%s\n", what, diff_text(d));
	if (reopen_first) {
		store_close(c.s);
		c.s = NULL;
		c.have_sid = 0;
		CHECK_ERR(ctx_open(&c), STORE_OK);
		if (!c.s)
			goto out;
		if (st_count_tmp(c.dir))
			st_fail(__FILE__, __LINE__, "%s: .tmp-* after reopen",
				what);
		/* commit ids in memory are gone, as after any restart */
		before.commits = store_commits_count(c.s);
		d = CHECK_STATE(&c, &before, what, t->reopen);
		if (d)
			printf("fault: %s: after reopen:%s\n", what,
			       diff_text(d));
		if (op->run == op_persist || op->run == op_restore) {
			/* these need the commits of the setup in memory */
			goto out;
		}
	}
	/* usable: the same operation without the fault succeeds */
	got = op->run(&c);
	if (got != STORE_OK)
		st_fail(__FILE__, __LINE__, "%s: retry = %s", what,
			store_errname(got));
	else
		st_pass();
	if (!reopen_first)
		CHECK_STATE(&c, after, what, t->after);
	store_close(c.s);
	c.s = NULL;
	CHECK_ERR(ctx_open(&c), STORE_OK);
	if (c.s) {
		struct store_id root;

		st_check_store(__FILE__, __LINE__, c.s, c.dir, &root);
		if (!store_id_equal(&root, &after->root))
			st_fail(__FILE__, __LINE__,
				"%s: root after retry and reopen differs",
				what);
		else
			st_pass();
	}
out:
	t->lost += c.lost_sessions;
	st_snap_release(&before.snap);
	ctx_free(&c);
	return hit;
}

static void test_faults(void)
{
	static const int errs[] = {EIO, ENOSPC};
	size_t i, k;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct state after;
		struct tally t;
		long steps = 0, n;
		const char *only = getenv("FAULT_OP");
		int j;

		if (only && strcmp(only, ops[i].name))
			continue;
		memset(&t, 0, sizeof(t));
		memset(&after, 0, sizeof(after));
		if (reference(&ops[i], &after, &steps))
			continue;
		for (k = 0; k < 2; k++)
			for (n = 1; n < 10000; n++) {
				if (!fault_once(&ops[i], n, errs[k], 0, &after,
						&t))
					break;
				if (!fault_once(&ops[i], n, errs[k], 1, &after,
						&t))
					break;
				t.covered++;
			}
		printf("faults: %s: %ld steps, %ld failures injected (x2), "
		       "%d ignored, %d sessions lost on failure\n",
		       ops[i].name, steps, t.covered, t.ignored, t.lost);
		for (j = 0; j < 5; j++)
			if (t.before[j] || t.reopen[j] || t.after[j])
				printf("faults: %s:%s: %d in process, %d after "
				       "reopen, %d after retry\n",
				       ops[i].name, diff_text(1 << j),
				       t.before[j], t.reopen[j], t.after[j]);
		CHECK(steps > 0);
		st_snap_release(&after.snap);
	}
}

int main(void)
{
	verbose = getenv("FAULT_VERBOSE") != NULL;
	test_names();
	test_arguments();
	test_locked();
	test_corrupt();
	test_faults();
	return t_done();
}
