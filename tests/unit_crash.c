/*
 * unit_crash.c - crash points: a child process runs commit, restore,
 * persist, deploy, delete or gc with a fault hook that _exit()s at the Nth
 * step, for N = 1, 2, ... until the operation completes. After each crash the
 * directory is reopened and must hold exactly the state before or after
 * the operation, with every commit's files and no temporaries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

struct ctx {
	const char *dir;
	struct store *s;
	struct st_fault f;
	struct store_id m[5], c1, c2;
};

static int ctx_open(struct ctx *c)
{
	return st_open(&c->s, c->dir, &c->f) == STORE_OK ? 0 : -1;
}

/* m1, m2; c1 (m1 written); m3; c2 (m2, m3 written); persisted. */
static int setup_common(struct ctx *c)
{
	struct store_id sid;

	if (ctx_open(c) || st_deploy(c->s, "crash one", 8192, &c->m[1]) ||
	    st_deploy(c->s, "crash two", 4096, &c->m[2]) ||
	    st_begin(c->s, &sid) || st_fill(c->s, &sid, &c->m[1], 5, 1, 3) ||
	    st_commit(c->s, &sid, &c->c1) ||
	    st_deploy(c->s, "crash three", 4096, &c->m[3]) ||
	    st_begin(c->s, &sid) || st_fill(c->s, &sid, &c->m[2], 0, 2, 4096) ||
	    st_fill(c->s, &sid, &c->m[3], 4000, 3, 10) ||
	    st_commit(c->s, &sid, &c->c2) || store_persist(c->s))
		return -1;
	return 0;
}

static struct store_id sid_commit;

static int setup_commit(struct ctx *c)
{
	if (setup_common(c) || st_deploy(c->s, "crash four", 4096, &c->m[4]) ||
	    st_begin(c->s, &sid_commit) ||
	    st_fill(c->s, &sid_commit, &c->m[1], 9000, 0x41, 4000) ||
	    st_fill(c->s, &sid_commit, &c->m[2], 0, 0x42, 1) ||
	    st_fill(c->s, &sid_commit, &c->m[3], 4095, 0x43, 1))
		return -1;
	return 0;
}

static enum store_err op_commit(struct ctx *c)
{
	return st_commit(c->s, &sid_commit, NULL);
}

static enum store_err op_restore(struct ctx *c)
{
	return store_restore(c->s, &c->c1);
}

static int setup_persist(struct ctx *c)
{
	struct store_id sid;

	if (setup_common(c) || st_begin(c->s, &sid) ||
	    st_fill(c->s, &sid, &c->m[1], 0, 0x51, 100) ||
	    st_commit(c->s, &sid, NULL))
		return -1;
	return 0;
}

static enum store_err op_persist(struct ctx *c)
{
	return store_persist(c->s);
}

static enum store_err op_deploy(struct ctx *c)
{
	return st_deploy(c->s, "crash five", 3 * 4096, &c->m[4]);
}

/* The state of c1 current, c2 a persisted commit the delete forgets. */
static int setup_delete(struct ctx *c)
{
	return setup_common(c) || store_restore(c->s, &c->c1) ? -1 : 0;
}

static enum store_err op_delete(struct ctx *c)
{
	return store_commit_delete(c->s, &c->c2);
}

/* A commit forgotten at a reopen without persist: its 3 files are garbage. */
static int setup_gc(struct ctx *c)
{
	struct store_id sid;

	if (setup_common(c) || st_begin(c->s, &sid) ||
	    st_fill(c->s, &sid, &c->m[1], 0, 0x61, 5000) ||
	    st_fill(c->s, &sid, &c->m[2], 0, 0x62, 10) ||
	    st_fill(c->s, &sid, &c->m[3], 0, 0x63, 10) ||
	    st_commit(c->s, &sid, NULL) || store_restore(c->s, &c->c2))
		return -1;
	store_close(c->s);
	c->s = NULL;
	return ctx_open(c);
}

static enum store_err op_gc(struct ctx *c)
{
	struct store_gc_info info;
	enum store_err err = store_gc(c->s, &info);

	return err || info.removed_files ? err : STORE_EIO;
}

struct op {
	const char *name;
	int (*setup)(struct ctx *c);
	enum store_err (*run)(struct ctx *c);
};

static const struct op ops[] = {
    {"commit", setup_commit, op_commit},
    {"restore", setup_common, op_restore},
    {"persist", setup_persist, op_persist},
    {"deploy", setup_common, op_deploy},
    {"delete", setup_delete, op_delete},
    {"gc", setup_gc, op_gc},
};

struct state {
	struct st_snap snap;
	struct store_id root;
};

/* Reference state: setup (and the op if run_op), then closed. */
static int reference(const struct op *op, int run_op, struct state *st)
{
	struct ctx c;
	char *dir = t_tmpdir("crash-ref");
	int ret = -1;

	memset(&c, 0, sizeof(c));
	c.dir = dir;
	if (!dir || op->setup(&c))
		goto out;
	if (run_op && op->run(&c) != STORE_OK)
		goto out;
	store_close(c.s);
	c.s = NULL;
	if (st_snap_take(dir, &st->snap))
		goto out;
	if (st_open(&c.s, dir, NULL) != STORE_OK)
		goto out;
	st->root = st_root(c.s);
	ret = 0;
out:
	if (ret)
		st_fail(__FILE__, __LINE__, "%s: reference run failed",
			op->name);
	store_close(c.s);
	t_rmrf(dir);
	free(dir);
	return ret;
}

static int is_commit_name(const char *n)
{
	return strlen(n) == 2 * STORE_HEX_LEN + 1 && n[STORE_HEX_LEN] == '_' &&
	       st_is_hex64_upper(n, STORE_HEX_LEN) &&
	       st_is_hex64_upper(n + STORE_HEX_LEN + 1, STORE_HEX_LEN);
}

/*
 * 0: the files are exactly st's; 1: st's plus commit files no commit
 * uses (orphans); -1: anything else.
 */
static int compare(const struct st_snap *now, const struct state *st)
{
	size_t i, j;
	int orphans = 0;

	for (j = 0; j < st->snap.names.n; j++)
		if (!st_names_has(&now->names, st->snap.names.v[j]))
			return -1;
	for (i = 0; i < now->names.n; i++) {
		for (j = 0; j < st->snap.names.n; j++)
			if (!strcmp(now->names.v[i], st->snap.names.v[j]))
				break;
		if (j == st->snap.names.n) {
			if (!is_commit_name(now->names.v[i]))
				return -1;
			orphans = 1;
		} else if (!store_id_equal(&now->hash[i], &st->snap.hash[j])) {
			return -1;
		}
	}
	return orphans;
}

struct tally {
	long points;
	long before, after, orphans, bad;
	long recovery_points; /* crash points after which open recovers */
	long double_points;   /* crashes during that recovery */
};

/* Run op in a child that dies at step n: 1 died, 0 finished, -1 error. */
static int child_op(const char *dir, const struct op *op, long n)
{
	struct ctx c;
	int status = 0;
	pid_t pid;

	memset(&c, 0, sizeof(c));
	c.dir = dir;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		enum store_err err;

		if (op->setup(&c))
			_exit(2);
		st_fault_arm(&c.f, n, 0, 1);
		err = op->run(&c);
		st_fault_disarm(&c.f);
		store_close(c.s);
		_exit(err == STORE_OK ? 0 : 3);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	if (WEXITSTATUS(status) == ST_CRASH_EXIT)
		return 1;
	return WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Open dir in a child that dies at step m of the recovery. */
static int child_open(const char *dir, long m)
{
	struct ctx c;
	int status = 0;
	pid_t pid;

	memset(&c, 0, sizeof(c));
	c.dir = dir;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		st_fault_arm(&c.f, m, 0, 1);
		if (ctx_open(&c))
			_exit(3);
		store_close(c.s);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	if (WEXITSTATUS(status) == ST_CRASH_EXIT)
		return 1;
	return WEXITSTATUS(status) == 0 ? 0 : -1;
}

/*
 * Reopen dir and check it holds the state before or after. Returns the
 * number of steps the reopen's recovery took, or -1.
 */
static long check_dir(const char *dir, const char *what, int died,
		      const struct state *before, const struct state *after,
		      struct tally *t)
{
	struct ctx c;
	struct st_snap now;
	struct store_id root;
	long steps = -1;
	int cb, ca;

	memset(&c, 0, sizeof(c));
	memset(&now, 0, sizeof(now));
	c.dir = dir;
	/* reopen, counting the recovery's own steps */
	st_fault_arm(&c.f, 0, 0, 0);
	if (ctx_open(&c)) {
		st_fail(__FILE__, __LINE__, "%s: reopen failed", what);
		t->bad++;
		goto out;
	}
	st_fault_disarm(&c.f);
	steps = c.f.calls;
	if (st_count_tmp(dir))
		st_fail(__FILE__, __LINE__, "%s: .tmp-* left after reopen",
			what);
	else
		st_pass();
	if (st_check_store(__FILE__, __LINE__, c.s, dir, &root))
		fprintf(stderr, "    (%s)\n", what);
	if (st_check_commits(__FILE__, __LINE__, c.s, dir))
		fprintf(stderr, "    (%s)\n", what);
	if (st_snap_take(dir, &now)) {
		st_fail(__FILE__, __LINE__, "%s: cannot read dir", what);
		goto out;
	}
	cb = compare(&now, before);
	ca = compare(&now, after);
	if (store_id_equal(&root, &before->root) && cb >= 0) {
		t->before += died;
		st_pass();
	} else if (store_id_equal(&root, &after->root) && ca >= 0) {
		t->after += died;
		st_pass();
	} else {
		t->bad++;
		st_fail(__FILE__, __LINE__,
			"%s: neither the state before nor after", what);
		fprintf(stderr, "    against before:\n");
		st_snap_equal(what, &before->snap, &now);
		fprintf(stderr, "    against after:\n");
		st_snap_equal(what, &after->snap, &now);
	}
	/*
	 * Commit files no commit uses are not part of the state: after a
	 * restart without persist, every forgotten commit leaves such files
	 * too, so they are counted, not failed.
	 */
	if ((store_id_equal(&root, &before->root) && cb == 1) ||
	    (store_id_equal(&root, &after->root) && ca == 1))
		t->orphans++;
	if (!died) {
		/* the completed run ends in the state after */
		CHECK_ID(&root, &after->root);
		CHECK(ca == 0);
	}
out:
	st_snap_release(&now);
	store_close(c.s);
	return steps;
}

/* Crash op at step n, then (m > 0) the recovery at its step m; check. */
static int crash_once(const struct op *op, long n, long m,
		      const struct state *before, const struct state *after,
		      struct tally *t, long *recovery)
{
	char *dir = t_tmpdir("crash");
	char what[160];
	int died = -1, died2 = 0;

	*recovery = 0;
	if (!dir)
		return -1;
	died = child_op(dir, op, n);
	if (died < 0 || (m > 0 && died == 0)) {
		st_fail(__FILE__, __LINE__, "%s: child at step %ld failed",
			op->name, n);
		died = -1;
		goto out;
	}
	if (m > 0) {
		struct tally td;

		died2 = child_open(dir, m);
		if (died2 < 0) {
			st_fail(__FILE__, __LINE__,
				"%s: step %ld: recovering child failed",
				op->name, n);
			died = -1;
			goto out;
		}
		memset(&td, 0, sizeof(td));
		snprintf(what, sizeof(what),
			 "%s: crash at step %ld, then at recovery step %ld",
			 op->name, n, m);
		check_dir(dir, what, 1, before, after, &td);
		t->bad += td.bad;
		t->orphans += td.orphans;
		died = died2;
		goto out;
	}
	if (died)
		snprintf(what, sizeof(what), "%s: crash at step %ld", op->name,
			 n);
	else
		snprintf(what, sizeof(what), "%s: no crash (%ld steps)",
			 op->name, n - 1);
	*recovery = check_dir(dir, what, died, before, after, t);
out:
	t_rmrf(dir);
	free(dir);
	return died;
}

int main(void)
{
	size_t i;
	const char *only = getenv("CRASH_OP");
	int full = getenv("CRASH_FULL") != NULL;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct state before, after;
		struct tally t;
		long n;

		if (only && strcmp(only, ops[i].name))
			continue;
		memset(&t, 0, sizeof(t));
		memset(&before, 0, sizeof(before));
		memset(&after, 0, sizeof(after));
		if (reference(&ops[i], 0, &before) ||
		    reference(&ops[i], 1, &after))
			goto next;
		CHECK(!store_id_equal(&before.root, &after.root) ||
		      ops[i].run == op_persist || ops[i].run == op_deploy ||
		      ops[i].run == op_delete || ops[i].run == op_gc);
		for (n = 1; n < 10000; n++) {
			long rec = 0, m;

			if (crash_once(&ops[i], n, 0, &before, &after, &t,
				       &rec) != 1)
				break;
			t.points++;
			if (rec <= 0)
				continue;
			t.recovery_points++;
			/*
			 * Crashing the recovery too is slow (a fresh setup per
			 * step); every 8th such point by default, all of them
			 * with CRASH_FULL=1.
			 */
			if (!full && t.recovery_points % 8 != 1)
				continue;
			for (m = 1; m < 10000; m++) {
				long unused;

				if (crash_once(&ops[i], n, m, &before, &after,
					       &t, &unused) != 1)
					break;
				t.double_points++;
			}
		}
		CHECK(t.points > 0);
		printf("crash: %s: %ld crash points covered (state before %ld, "
		       "after %ld, neither %ld; left unused commit files %ld); "
		       "%ld needed recovery, %ld crash points in recovery\n",
		       ops[i].name, t.points, t.before, t.after, t.bad,
		       t.orphans, t.recovery_points, t.double_points);
	next:
		st_snap_release(&before.snap);
		st_snap_release(&after.snap);
	}
	return t_done();
}
