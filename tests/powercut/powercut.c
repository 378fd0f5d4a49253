/*
 * powercut.c - the store against power cuts, on the model file system of
 * pcfs.h (FUSE in front of an in-memory disk that forgets what was not
 * flushed).
 *
 * A scenario is a list of operations (deploy, session begin, write, drop,
 * commit, restore, persist, delete, gc, open, close; retention through
 * store_options.keep_commits). Each life of the store, open to close, is
 * a process of its own, which may also die at a chosen step: a crash,
 * after which the page cache lives on. A scenario runs once whole (the
 * reference: what each operation answers and the state after it), then
 * again and again, each time cut:
 *
 *   at every step: the store's test hook ends the process just before
 *                  the Nth I/O step of the scenario, for every N, and
 *                  after the last operation answered;
 *   at a random event: the server kills the process at the Nth change or
 *                  flush it makes (between the system calls of a step).
 *
 * At each cut point the model drops what was volatile several ways, from
 * the same frozen moment: all of it, a random prefix of it (a journaling
 * file system), a random causal part of it (one that writes directory
 * blocks on their own); the last way also cuts again during or right
 * after the store's recovery on what survived. After each cut the store
 * opens what survived, and the check demands:
 *
 *   - the files hold one state, recomputed from them (st_state_read: the
 *     names, MOD = MOD_last = MOD_MODCOMMIT, every commit file's memory id
 *     equal to its name) and the store agrees with them;
 *   - that state is the one after the last answered operation, or one the
 *     operations in flight may have led to: its root, its modules, every
 *     commit persisted by an answered persist, none an answered delete
 *     removed;
 *   - every commit the store holds has all its files; no temporary is
 *     left; every module's initial file has its deployed size.
 *
 * Then each flush of the store is removed in turn (the hook answers
 * STORE_FAULT_SKIP for it) and the same cuts must find a loss.
 *
 * Two durability bugs of the store it found are not fixed yet; the
 * losses of their shapes are counted apart (KNOWN_CRASH_LEFTOVERS,
 * KNOWN_DELETE_REPLAYED, and README, "Power cuts").
 *
 * Operations live in one table (op_types): a new one is a row there, a
 * case in run_op() and, for random scenarios, a weight in gen_random().
 *
 * Environment: POWERCUT_SCALE (default 1; make torture raises it: more
 * random scenarios and events, and every removal run to the end),
 * POWERCUT_SEED (another draw of the random choices), POWERCUT_ONLY (the
 * store as it is, only scenarios whose name starts so), POWERCUT_SKIP
 * (removals only: a flush's name, "all", or "none" for no removal),
 * POWERCUT_VERBOSE (1: the store's complaints and the known losses; 2:
 * every cut).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pcfs.h"
#include "store.h"
#include "storetest.h"
#include "t.h"

#define PC_MAXOPS     96
#define PC_MAXMODS    8
#define PC_MAXSLOTS   4
#define PC_MAXCOMMITS 96

/* How a store process ended. */
#define EXIT_CRASH 10 /* a crash the scenario asked for: the cache lives on */
#define EXIT_CUT   11 /* the power cut at a step, or after the end */
#define EXIT_ERR   12

/* --- scenarios ------------------------------------------------------------ */

enum op_kind {
	OP_OPEN,
	OP_CLOSE,
	OP_DEPLOY,
	OP_BEGIN,
	OP_WRITE,
	OP_DROP,
	OP_COMMIT,
	OP_RESTORE,
	OP_PERSIST,
	OP_DELETE,
	OP_GC,
	OP_KINDS
};

struct op {
	enum op_kind kind;
	int slot;	   /* session: begin, write, drop, commit */
	int mod;	   /* module: deploy, write */
	uint64_t off;	   /* write */
	uint32_t len;	   /* write */
	int byte;	   /* write: the value written */
	uint64_t size;	   /* deploy */
	unsigned int pick; /* restore, delete: which commit of the store */
	/* the process dies just before this op's step `crash` (or, with
	 * fewer steps, right after it): a crash, the cache lives on */
	long crash;
};

struct scenario {
	char name[48];
	size_t n;
	struct op ops[PC_MAXOPS];
	uint64_t session_memory;   /* store_options.max_session_memory */
	unsigned int keep_commits; /* store_options.keep_commits */
	size_t cut_from; /* cut only at steps of ops from this one on */
};

/* Module m's bytecode and id. */
static void mod_code(int m, char *buf, size_t len)
{
	snprintf(buf, len, "powercut module %d", m);
}

static void mod_id(int m, struct store_id *id)
{
	char code[64];

	mod_code(m, code, sizeof(code));
	st_h(code, strlen(code), id);
}

static struct op *sc_add(struct scenario *sc, enum op_kind kind)
{
	struct op *op;

	if (sc->n == PC_MAXOPS) {
		fprintf(stderr, "powercut: scenario %s too long\n", sc->name);
		abort();
	}
	op = &sc->ops[sc->n++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	return op;
}

static void sc_deploy(struct scenario *sc, int mod, uint64_t pages)
{
	struct op *op = sc_add(sc, OP_DEPLOY);

	op->mod = mod;
	op->size = pages * STORE_PAGE_SIZE;
}

static void sc_session(struct scenario *sc, enum op_kind kind, int slot)
{
	sc_add(sc, kind)->slot = slot;
}

static void sc_write(struct scenario *sc, int slot, int mod, uint64_t off,
		     uint32_t len, int byte)
{
	struct op *op = sc_add(sc, OP_WRITE);

	op->slot = slot;
	op->mod = mod;
	op->off = off;
	op->len = len;
	op->byte = byte;
}

static void sc_pick(struct scenario *sc, enum op_kind kind, unsigned int pick)
{
	sc_add(sc, kind)->pick = pick;
}

static void sc_restore(struct scenario *sc, unsigned int pick)
{
	sc_pick(sc, OP_RESTORE, pick);
}

/* The last op crashes at its step n; the next process opens again. */
static void sc_crash(struct scenario *sc, long n)
{
	sc->ops[sc->n - 1].crash = n;
	sc_add(sc, OP_OPEN);
}

/* --- what the reference run found ----------------------------------------- */

/* A state of the store, as the checks compare it. */
struct expect {
	struct store_id root;
	size_t nmods;
	struct store_id mods[PC_MAXMODS]; /* sorted */
	size_t ncommits;		  /* the commits store */
	struct store_id commits[PC_MAXCOMMITS];
	size_t npersisted; /* in the file `commits` once answered */
	struct store_id persisted[PC_MAXCOMMITS];
	size_t ngone; /* taken out by an answered delete (or retention) */
	struct store_id gone[PC_MAXCOMMITS];
	/* of those, deleted while the journal of that process life still
	 * recorded their switch (KNOWN_DELETE_REPLAYED) */
	size_t nlive;
	struct store_id live[PC_MAXCOMMITS];
};

/* What a store process tells the driver, op by op. */
enum rec_kind { REC_DONE, REC_CRASH, REC_CUT, REC_SYNC };

struct rec {
	int kind;
	int op;
	int err;
	int has_result;
	long steps;	 /* the op's steps so far */
	long events;	 /* events since the reset, at the end of the op */
	long first_skip; /* step number of the op's first skipped flush */
	struct store_id result; /* commit: its id; restore: the target */
	char step[32]; /* REC_CUT, REC_CRASH: before which step (or flush) */
	int has_state;
	struct expect st;
};

struct reference {
	int answered[PC_MAXOPS];
	struct store_id result[PC_MAXOPS];
	long steps[PC_MAXOPS];	    /* steps of op i */
	long offset[PC_MAXOPS + 1]; /* steps before op i */
	long events[PC_MAXOPS];	    /* events at the end of op i */
	struct expect exp[PC_MAXOPS];
	long first_skip; /* global step of the first skipped flush; 0: none */
};

/* --- the flushes and the test hook ---------------------------------------- */

/*
 * Every flush of the store, by step name; dir.fsync has two callers,
 * told apart by the step before it.
 */
static const struct site {
	const char *name;
	const char *step;
	const char *after; /* the step just before, or NULL */
	int syncfs;	   /* a syncfs: the model learns of it from the hook */
	int redundant;	   /* with open.sync, removing it loses nothing */
	int proposed;	   /* a fix of a known bug adds it */
	int recovery;	   /* met in the recovery after a cut, not before */
} sites[] = {
    {"open.sync", "open.sync", NULL, 1, 0, 1, 0},
    {"delete.sync", "delete.sync", NULL, 1, 0, 1, 0},
    {"delete.fsync", "delete.fsync", NULL, 0, 0, 1, 0},
    {"switch.sync", "switch.sync", NULL, 1, 0, 0, 0},
    {"recover.sync", "recover.sync", NULL, 1, 0, 0, 1},
    {"close.sync", "close.sync", NULL, 1, 0, 0, 0},
    {"close.fsync", "close.fsync", NULL, 0, 1, 0, 0},
    {"file.fsync", "file.fsync", NULL, 0, 0, 0, 0},
    {"deploy.fsync", "deploy.fsync", NULL, 0, 0, 0, 0},
    {"bytecode.fsync", "bytecode.fsync", NULL, 0, 0, 0, 0},
    {"dir.fsync (write_atomic)", "dir.fsync", "file.rename", 0, 0, 0, 0},
    {"dir.fsync (deploy)", "dir.fsync", "deploy.link", 0, 0, 0, 0},
};
#define NSITES (sizeof(sites) / sizeof(sites[0]))

static const struct site *site_of(const char *step, const char *prev)
{
	size_t i;

	for (i = 0; i < NSITES; i++)
		if (!strcmp(sites[i].step, step) &&
		    (!sites[i].after || !strcmp(sites[i].after, prev)))
			return &sites[i];
	return NULL;
}

struct hook {
	int ctl;       /* connection to the server: PCFS_SYNC */
	long steps;    /* global step count */
	long cut_at;   /* power cut just before this step (0: never) */
	int op;	       /* the op running */
	long op_steps; /* its steps */
	long crash_at; /* its crash step (0: none) */
	const struct site *skip; /* the flush left out, or NULL */
	long first_skip;
	int rec_fd; /* where REC_CUT and REC_CRASH go (-1: none) */
	char prev[32];
};

static void rec_send(int fd, const struct rec *r)
{
	const char *p = (const char *)r;
	size_t left = sizeof(*r);

	while (fd >= 0 && left > 0) {
		ssize_t n = write(fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		left -= (size_t)n;
	}
}

static void hook_end(struct hook *h, int kind, const char *step, int code)
{
	struct rec r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.op = h->op;
	r.steps = h->op_steps;
	r.first_skip = h->first_skip;
	snprintf(r.step, sizeof(r.step), "%s", step);
	rec_send(h->rec_fd, &r);
	_exit(code);
}

static int pc_hook(void *ctx, const char *step)
{
	struct hook *h = ctx;
	const struct site *site = site_of(step, h->prev);
	const char *name = site ? site->name : step;

	h->steps++;
	h->op_steps++;
	if (h->cut_at && h->steps == h->cut_at)
		hook_end(h, REC_CUT, name, EXIT_CUT);
	if (h->crash_at && h->op_steps == h->crash_at)
		hook_end(h, REC_CRASH, name, EXIT_CRASH);
	snprintf(h->prev, sizeof(h->prev), "%s", step);
	if (site && site == h->skip) {
		if (!h->first_skip)
			h->first_skip = h->steps;
		return STORE_FAULT_SKIP;
	}
	/* FUSE never sees syncfs: tell the model, just before the call */
	if (site && site->syncfs) {
		struct rec r;

		if (pcfs_call(h->ctl, PCFS_SYNC, 0, 0, NULL))
			_exit(EXIT_ERR); /* killed there if it was the cut */
		memset(&r, 0, sizeof(r));
		r.kind = REC_SYNC;
		r.op = h->op;
		rec_send(h->rec_fd, &r);
	}
	return 0;
}

/* --- the store process ---------------------------------------------------- */

static struct pcfs pcfs;

struct child {
	const struct scenario *sc;
	struct store *s;
	struct hook h;
	struct store_id sid[PC_MAXSLOTS];
};

static enum store_err store_open_on(struct store **s, const struct scenario *sc,
				    struct hook *h)
{
	struct store_options o;

	memset(&o, 0, sizeof(o));
	o.dir = pcfs.mnt;
	o.max_session_memory = sc->session_memory;
	o.keep_commits = sc->keep_commits;
	o.fault = pc_hook;
	o.fault_ctx = h;
	return store_open(s, &o);
}

static int commit_collect(void *ctx, const struct store_id *commit,
			  const struct store_pair *pairs, size_t n)
{
	struct expect *e = ctx;

	(void)pairs;
	(void)n;
	if (e->ncommits < PC_MAXCOMMITS)
		e->commits[e->ncommits++] = *commit;
	return 0;
}

/* The state of an open store, through its API. */
static int state_of(struct store *s, struct expect *e)
{
	struct store_module_info *mods = NULL;
	size_t n = 0, i;

	memset(e, 0, sizeof(*e));
	if (store_root(s, &e->root) || store_module_list(s, &mods, &n) ||
	    n > PC_MAXMODS) {
		free(mods);
		return -1;
	}
	for (i = 0; i < n; i++)
		e->mods[i] = mods[i].id;
	e->nmods = n;
	free(mods);
	return store_commits_foreach(s, commit_collect, e) ? -1 : 0;
}

/*
 * The operations. Each returns the store's answer; *result gets the id it
 * answers with, if any. Add delete and gc here, in run_op and the table.
 */
static enum store_err run_op(struct child *c, const struct op *op,
			     struct store_id *result, int *has_result)
{
	struct store_session_info info;
	struct store_id mod;
	struct expect e;
	enum store_err err;
	char code[64];

	*has_result = 0;
	mod_id(op->mod, &mod);
	switch (op->kind) {
	case OP_OPEN:
		return store_open_on(&c->s, c->sc, &c->h);
	case OP_CLOSE:
		store_close(c->s);
		c->s = NULL;
		return STORE_OK;
	case OP_DEPLOY:
		mod_code(op->mod, code, sizeof(code));
		return store_deploy(c->s, code, strlen(code), op->size, NULL,
				    NULL);
	case OP_BEGIN:
		err = store_session_begin(c->s, NULL, &info);
		c->sid[op->slot] = info.id;
		return err;
	case OP_WRITE:
		return st_fill(c->s, &c->sid[op->slot], &mod, op->off, op->byte,
			       op->len);
	case OP_DROP:
		return store_session_drop(c->s, &c->sid[op->slot]);
	case OP_COMMIT:
		*has_result = 1;
		return st_commit(c->s, &c->sid[op->slot], result);
	case OP_RESTORE:
	case OP_DELETE:
		/* one of the commits the store holds; none: nothing to do */
		if (state_of(c->s, &e))
			return STORE_EIO;
		if (e.ncommits == 0)
			return STORE_OK;
		*result = e.commits[op->pick % e.ncommits];
		*has_result = 1;
		return op->kind == OP_RESTORE
			   ? store_restore(c->s, result)
			   : store_commit_delete(c->s, result);
	case OP_PERSIST:
		return store_persist(c->s);
	case OP_GC:
		return store_gc(c->s, NULL);
	case OP_KINDS:
		break;
	}
	return STORE_EINVAL;
}

/* The operations by kind: a new one (delete, gc) is a row here too. */
static const struct op_type {
	const char *name;
} op_types[OP_KINDS] = {
    [OP_OPEN] = {"open"},	[OP_CLOSE] = {"close"},
    [OP_DEPLOY] = {"deploy"},	[OP_BEGIN] = {"begin"},
    [OP_WRITE] = {"write"},	[OP_DROP] = {"drop"},
    [OP_COMMIT] = {"commit"},	[OP_RESTORE] = {"restore"},
    [OP_PERSIST] = {"persist"}, [OP_DELETE] = {"delete"},
    [OP_GC] = {"gc"},
};

struct plan {
	long cut_step; /* global step to cut before; 0: none */
	int end_cut;   /* cut after the last op */
	const struct site *skip;
	int reference; /* report each op's state and events */
};

/* Run ops from start on, one process's life; report each to fd. */
static void child_main(const struct scenario *sc, size_t start, long base,
		       const struct plan *p, int fd)
{
	struct child c;
	size_t i;

	memset(&c, 0, sizeof(c));
	c.sc = sc;
	alarm(60); /* a store process takes milliseconds: a hang fails */
	c.h.ctl = pcfs_connect(pcfs.sock);
	if (c.h.ctl < 0)
		_exit(EXIT_ERR);
	c.h.steps = base;
	c.h.cut_at = p->cut_step;
	c.h.skip = p->skip;
	c.h.rec_fd = fd;
	for (i = start; i < sc->n; i++) {
		const struct op *op = &sc->ops[i];
		struct rec r;
		struct pcfs_reply rep;

		if (op->kind == OP_OPEN && i != start)
			_exit(EXIT_CRASH); /* dies between two ops */
		c.h.op = (int)i;
		c.h.op_steps = 0;
		c.h.crash_at = op->crash;
		c.h.first_skip = 0;
		memset(&r, 0, sizeof(r));
		r.kind = REC_DONE;
		r.op = (int)i;
		r.err = (int)run_op(&c, op, &r.result, &r.has_result);
		c.h.crash_at = 0;
		r.steps = c.h.op_steps;
		r.first_skip = c.h.first_skip;
		if (p->reference) {
			if (pcfs_call(c.h.ctl, PCFS_EVENTS, 0, 0, &rep) == 0)
				r.events = (long)rep.a;
			if (c.s && !r.err)
				r.has_state = state_of(c.s, &r.st) == 0;
		}
		rec_send(fd, &r);
		if (r.err)
			_exit(EXIT_ERR);
		if (op->kind == OP_CLOSE)
			_exit(0);
	}
	_exit(p->end_cut ? EXIT_CUT : 0);
}

/* Read the records of a child until it closes the pipe. */
static size_t read_recs(int fd, struct rec *v, size_t max)
{
	size_t n = 0, got = 0;
	char *p = (char *)v;

	for (;;) {
		ssize_t r;

		if (n == max)
			return n;
		r = read(fd, p + got, sizeof(*v) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n;
		got += (size_t)r;
		if (got == sizeof(*v)) {
			n++;
			p += sizeof(*v);
			got = 0;
		}
	}
}

/* How one process's life ended. */
struct life {
	int status;
	size_t nrec;
	struct rec recs[PC_MAXOPS + 2];
};

static int spawn(const struct scenario *sc, size_t start, long base,
		 const struct plan *p, struct life *l)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(fds[0]);
		child_main(sc, start, base, p, fds[1]);
	}
	close(fds[1]);
	l->nrec = read_recs(fds[0], l->recs, PC_MAXOPS + 2);
	close(fds[0]);
	if (waitpid(pid, &l->status, 0) != pid)
		return -1;
	return 0;
}

/* --- the reference run ---------------------------------------------------- */

static int id_in(const struct store_id *id, const struct store_id *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (store_id_equal(id, &v[i]))
			return 1;
	return 0;
}

static void pc_reset(void)
{
	if (pcfs_call(pcfs.fd, PCFS_RESET, 0, 0, NULL)) {
		fprintf(stderr, "powercut: the model cannot remount\n");
		pcfs_stop(&pcfs);
		exit(1);
	}
}

static void expect_empty(struct expect *e)
{
	memset(e, 0, sizeof(*e));
	store_state_id(NULL, 0, &e->root);
}

static void set_del(struct store_id *v, size_t *n, const struct store_id *id)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (store_id_equal(&v[i], id))
			v[i--] = v[--*n];
}

static void set_add(struct store_id *v, size_t *n, const struct store_id *id)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (store_id_equal(&v[i], id))
			return;
	if (*n < PC_MAXCOMMITS)
		v[(*n)++] = *id;
}

/*
 * What e, the state an op of kind reported, promises after prev: a persist
 * puts the commits store in the file; a commit that leaves the commits
 * store (delete, retention) is gone from it and from the file, unless an
 * open forgot it (not persisted: no delete); one there again is not gone.
 */
static void follow(const struct expect *prev, enum op_kind kind,
		   const struct store_id *live, struct expect *e)
{
	size_t i;

	e->npersisted = prev->npersisted;
	memcpy(e->persisted, prev->persisted, sizeof(e->persisted));
	e->ngone = prev->ngone;
	memcpy(e->gone, prev->gone, sizeof(e->gone));
	e->nlive = prev->nlive;
	memcpy(e->live, prev->live, sizeof(e->live));
	if (kind == OP_PERSIST) {
		e->npersisted = e->ncommits;
		memcpy(e->persisted, e->commits, sizeof(e->commits));
	}
	for (i = 0; kind != OP_OPEN && i < prev->ncommits; i++) {
		if (id_in(&prev->commits[i], e->commits, e->ncommits))
			continue;
		set_add(e->gone, &e->ngone, &prev->commits[i]);
		set_del(e->persisted, &e->npersisted, &prev->commits[i]);
		if (live && store_id_equal(live, &prev->commits[i]))
			set_add(e->live, &e->nlive, live);
	}
	for (i = 0; i < e->ncommits; i++) {
		set_del(e->gone, &e->ngone, &e->commits[i]);
		set_del(e->live, &e->nlive, &e->commits[i]);
	}
}

/*
 * Run sc whole (with the flush skip leaves out) and record, op by op, its
 * answer, steps, events and the state after it. -1 if it did not run.
 */
static int reference(const struct scenario *sc, const struct site *skip,
		     struct reference *ref)
{
	struct plan p = {0, 0, skip, 1};
	struct life l;
	size_t start = 0, i, k;
	struct expect prev;
	struct store_id live;
	int live_ok = 0;

	memset(ref, 0, sizeof(*ref));
	pc_reset();
	while (start < sc->n) {
		int code;

		if (spawn(sc, start, ref->offset[start], &p, &l) ||
		    !WIFEXITED(l.status)) {
			st_fail(__FILE__, __LINE__,
				"%s: reference process failed", sc->name);
			return -1;
		}
		code = WEXITSTATUS(l.status);
		for (k = 0; k < l.nrec; k++) {
			const struct rec *r = &l.recs[k];

			ref->steps[r->op] = r->steps;
			if (r->first_skip && !ref->first_skip)
				ref->first_skip = r->first_skip;
			if (r->kind != REC_DONE)
				continue;
			ref->answered[r->op] = 1;
			ref->result[r->op] = r->result;
			ref->events[r->op] = r->events;
			if (r->has_state)
				ref->exp[r->op] = r->st;
		}
		if (code != 0 && code != EXIT_CRASH) {
			st_fail(__FILE__, __LINE__,
				"%s: reference op %d failed (exit %d, err %d)",
				sc->name, l.nrec ? l.recs[l.nrec - 1].op : -1,
				code, l.nrec ? l.recs[l.nrec - 1].err : 0);
			return -1;
		}
		for (i = start; i < sc->n; i++)
			ref->offset[i + 1] = ref->offset[i] + ref->steps[i];
		if (l.nrec == 0)
			return -1;
		start = (size_t)l.recs[l.nrec - 1].op + 1;
		if (code == 0 && sc->ops[start - 1].kind != OP_CLOSE)
			break; /* the end */
		if (start < sc->n && sc->ops[start].kind != OP_OPEN) {
			st_fail(__FILE__, __LINE__,
				"%s: op %zu should open the store", sc->name,
				start);
			return -1;
		}
	}
	/*
	 * What each op leaves: the state the store reported, or ... The
	 * journal of a process life records the last switch: a commit's
	 * (live), a restore's (none), or what an open after a crash replayed.
	 */
	expect_empty(&prev);
	for (i = 0; i < sc->n; i++) {
		struct expect *e = &ref->exp[i];
		enum op_kind kind = sc->ops[i].kind;

		if (!ref->answered[i])
			continue;
		if (kind == OP_CLOSE)
			*e = prev;
		else
			follow(&prev, kind, live_ok ? &live : NULL, e);
		if (kind == OP_OPEN) {
			live_ok = i > 0 && sc->ops[i - 1].kind != OP_CLOSE;
			live = e->root;
		} else if (kind == OP_CLOSE) {
			live_ok = 0;
		} else if (!store_id_equal(&e->root, &prev.root)) {
			live_ok = kind == OP_COMMIT;
			live = e->root;
		}
		prev = *e;
	}
	/* ... a crashed op leaves what the next open found */
	for (i = sc->n; i-- > 0;)
		if (!ref->answered[i] && i + 1 < sc->n)
			ref->exp[i] = ref->exp[i + 1];
	return 0;
}

/* --- the checks ----------------------------------------------------------- */

struct verdict {
	int loss;
	int deleted_back; /* the one problem: KNOWN_DELETE_REPLAYED's shape */
	char why[600];
};

static void lose(struct verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void lose(struct verdict *v, const char *fmt, ...)
{
	va_list ap;
	size_t len = strlen(v->why);

	if (v->loss++ && len < sizeof(v->why) - 2) {
		v->why[len++] = ';';
		v->why[len++] = ' ';
		v->why[len] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(v->why + len, sizeof(v->why) - len, fmt, ap);
	va_end(ap);
}

/* The deployed size of module id in sc; 0 if sc deploys no such module. */
static uint64_t deployed_size(const struct scenario *sc,
			      const struct store_id *id)
{
	struct store_id m;
	size_t i;

	for (i = 0; i < sc->n; i++) {
		if (sc->ops[i].kind != OP_DEPLOY)
			continue;
		mod_id(sc->ops[i].mod, &m);
		if (store_id_equal(&m, id))
			return sc->ops[i].size;
	}
	return 0;
}

/*
 * 1 if got is the state want: its root and modules, every commit want has
 * persisted, none it has deleted (but, with but_live, those want->live
 * names: a known bug's).
 */
static int state_is(const struct expect *got, const struct expect *want,
		    int but_live)
{
	size_t i;

	if (!store_id_equal(&got->root, &want->root) ||
	    got->nmods != want->nmods)
		return 0;
	for (i = 0; i < got->nmods; i++)
		if (!store_id_equal(&got->mods[i], &want->mods[i]))
			return 0;
	for (i = 0; i < want->npersisted; i++)
		if (!id_in(&want->persisted[i], got->commits, got->ncommits))
			return 0;
	for (i = 0; i < want->ngone; i++)
		if (id_in(&want->gone[i], got->commits, got->ncommits) &&
		    !(but_live &&
		      id_in(&want->gone[i], want->live, want->nlive)))
			return 0;
	return 1;
}

static int state_matches(const struct expect *got, const struct expect *want)
{
	return state_is(got, want, 0);
}

/* Every commit of the store: its id from its pairs, its files there. */
static int commits_whole(void *ctx, const struct store_id *commit,
			 const struct store_pair *pairs, size_t n)
{
	struct verdict *v = ctx;
	char name[2 * STORE_HEX_LEN + 8], h[9];
	struct store_id id;
	size_t i;

	if (st_ref_state_id(pairs, n, &id) || !store_id_equal(&id, commit))
		lose(v, "commit %s: its pairs give another id",
		     st_short(commit, h));
	for (i = 0; i < n; i++) {
		st_commit_name(name, sizeof(name), &pairs[i].module,
			       &pairs[i].commit);
		if (!st_exists(pcfs.mnt, name))
			lose(v, "commit %s: file %.12s..._%.8s... missing",
			     st_short(commit, h), name,
			     name + STORE_HEX_LEN + 1);
	}
	return 0;
}

/* What differs from want, the latest state allowed, in a few words. */
static const char *mismatch(const struct expect *got, const struct expect *want)
{
	size_t i;

	if (!store_id_equal(&got->root, &want->root))
		return ": another root";
	if (got->nmods != want->nmods)
		return ": other modules";
	static char buf[64];
	char h[9];

	for (i = 0; i < want->npersisted; i++)
		if (!id_in(&want->persisted[i], got->commits, got->ncommits)) {
			snprintf(buf, sizeof(buf),
				 ": persisted commit %s is missing",
				 st_short(&want->persisted[i], h));
			return buf;
		}
	for (i = 0; i < want->ngone; i++)
		if (id_in(&want->gone[i], got->commits, got->ncommits)) {
			snprintf(buf, sizeof(buf),
				 ": deleted commit %s is back",
				 st_short(&want->gone[i], h));
			return buf;
		}
	return "";
}

static void describe(char *buf, size_t len, const struct expect *e)
{
	char h[9];

	snprintf(buf, len, "root %s, %zu modules, %zu commits",
		 st_short(&e->root, h), e->nmods, e->ncommits);
}

/*
 * Open the store on what survived and check it against the states the
 * answered operations allow (allowed[0..n)). The store's own output of
 * problems goes to stderr unless quiet.
 */
static void check(const struct scenario *sc, const struct expect *allowed,
		  size_t n, struct verdict *v, int quiet)
{
	struct hook h;
	struct store *s = NULL;
	struct st_state st;
	struct expect got;
	struct store_id root;
	int saved = -1, problems, tp = t_passed, tf = t_failed;
	size_t i;
	char a[96], b[96];
	enum store_err err;

	memset(v, 0, sizeof(*v));
	memset(&h, 0, sizeof(h));
	memset(&st, 0, sizeof(st));
	h.ctl = pcfs.fd;
	h.rec_fd = -1;
	if (quiet) {
		int null = open("/dev/null", O_WRONLY);

		fflush(stderr);
		saved = dup(2);
		dup2(null, 2);
		close(null);
	}
	err = store_open_on(&s, sc, &h);
	if (err) {
		lose(v, "the store does not open: %s", store_strerror(err));
		goto out;
	}
	if (st_count_tmp(pcfs.mnt))
		lose(v, "temporaries left after open");
	problems = st_state_read(pcfs.mnt, &st);
	if (problems)
		lose(v, "%d problem(s) in the files", problems);
	if (state_of(s, &got)) {
		lose(v, "the store cannot say its state");
		goto out;
	}
	if (store_root(s, &root) || !store_id_equal(&root, &st.root))
		lose(v, "the store's root is not the files'");
	got.root = st.root;
	for (i = 0; i < st.nmods; i++) {
		char path[sizeof(pcfs.mnt) + STORE_HEX_LEN + 8];
		uint64_t want = deployed_size(sc, &st.mods[i]);
		struct stat sb;

		snprintf(path, sizeof(path), "%s/.%s_init", pcfs.mnt,
			 st_hex(&st.mods[i], a));
		if (stat(path, &sb) || (uint64_t)sb.st_size != want)
			lose(v, "module %.8s: initial file %s", a,
			     want ? "of the wrong size" : "of no deploy");
	}
	store_commits_foreach(s, commits_whole, v);
	for (i = 0; i < n; i++)
		if (state_matches(&got, &allowed[i]))
			break;
	if (i == n) {
		int others = v->loss;

		for (i = 0; i < n; i++)
			if (state_is(&got, &allowed[i], 1))
				break;
		v->deleted_back = i < n && !others;
		describe(a, sizeof(a), &got);
		describe(b, sizeof(b), &allowed[0]);
		for (i = n - 1; i > 0; i--)
			if (store_id_equal(&got.root, &allowed[i].root))
				break;
		lose(v, "state %s is none the answers allow (%s%s)%s", a, b,
		     n > 1 ? ", or the op in flight's" : "",
		     mismatch(&got, &allowed[i]));
	}
out:
	store_close(s);
	st_state_release(&st);
	if (saved >= 0) {
		fflush(stderr);
		dup2(saved, 2);
		close(saved);
	}
	t_passed = tp;
	t_failed = tf;
}

/* --- cuts ----------------------------------------------------------------- */

/*
 * A durability bug of the store this test found and that the store does
 * not fix yet (store/ is another change's; README, "Power cuts"): a store
 * process that crashed leaves in the page cache what it had not flushed
 * yet, and the next one trusts it as if it were on disk. It replays a
 * journal not yet flushed (moving names on its word), reuses a .journal
 * whose name was never flushed, or answers a deploy of a module whose
 * names a crashed deploy never flushed; a power cut before the next flush
 * of the file system then loses what it answered. Losses that fall in
 * that window (after a crash, before any syncfs) are counted apart while
 * this is 1. The fix, a syncfs at the start of store_open ("open.sync"),
 * closes the window: then set this to 0 (a full run fails while it is 1
 * and the window loses nothing).
 */
#define KNOWN_CRASH_LEFTOVERS 0

/*
 * A second one: a delete of the commit that the journal of its process
 * still records (its switch was the last one, or the open replayed it
 * after a crash) comes undone after a cut or a crash, for the next open
 * replays that journal and puts the commit back in the commits store
 * (journal.c, add_replayed). Losses whose one problem is such a commit
 * back are counted apart while this is 1. The fix: a delete first makes
 * the journal of its process carried out, durably (journal_settle():
 * "delete.sync" when the switch is not flushed yet, the idle mark, and
 * "delete.fsync"); then set this to 0.
 */
#define KNOWN_DELETE_REPLAYED 0

enum cut_kind { CUT_STEP, CUT_EVENT };

struct cutpoint {
	enum cut_kind kind;
	long at; /* step (the total + 1: after the end), or event */
};

/* Where a run stopped. */
struct stop {
	int ok;
	int answered;  /* last op answered, -1 none */
	int inflight;  /* op the cut fell in; == answered after the end */
	int leftovers; /* a process crashed, none flushed the file system since
			*/
	char where[96];
};

static unsigned long long rng_state = 0x2545F4914F6CDD1DULL;

static unsigned long long rnd64(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static long rnd(long n)
{
	return n > 0 ? (long)(rnd64() % (unsigned long long)n) : 0;
}

static const char *op_name(const struct scenario *sc, int i)
{
	return i >= 0 && i < (int)sc->n ? op_types[sc->ops[i].kind].name
					: "none";
}

/* Take a process's records into the stop. */
static void stop_recs(const struct scenario *sc, const struct reference *ref,
		      const struct life *l, struct stop *out)
{
	size_t k;

	for (k = 0; k < l->nrec; k++) {
		const struct rec *r = &l->recs[k];

		out->inflight = r->op + (r->kind == REC_DONE);
		if (r->kind == REC_DONE && !r->err) {
			out->answered = r->op;
			if (r->has_result &&
			    !store_id_equal(&r->result, &ref->result[r->op]))
				st_fail(__FILE__, __LINE__,
					"%s: op %d answered otherwise than in "
					"the reference",
					sc->name, r->op);
		}
		if (r->kind == REC_CRASH)
			out->leftovers = 1;
		if (r->kind == REC_SYNC)
			out->leftovers = 0;
		if (r->kind == REC_CUT)
			snprintf(out->where, sizeof(out->where),
				 "before %s of op %d (%s)", r->step, r->op,
				 op_name(sc, r->op));
	}
}

/* Run sc until the cut; the model is then frozen at it. */
static void run_to_cut(const struct scenario *sc, const struct reference *ref,
		       const struct cutpoint *cp, const struct site *skip,
		       struct stop *out)
{
	struct plan p;
	struct life l;
	size_t start = 0;
	long total = ref->offset[sc->n];

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	out->answered = -1;
	p.skip = skip;
	if (cp->kind == CUT_STEP && cp->at > total)
		p.end_cut = 1;
	else if (cp->kind == CUT_STEP)
		p.cut_step = cp->at;
	pc_reset();
	if (cp->kind == CUT_EVENT)
		pcfs_call(pcfs.fd, PCFS_ARM, cp->at, 0, NULL);
	while (!out->ok) {
		int code = -1;

		if (spawn(sc, start, ref->offset[start], &p, &l))
			break;
		out->inflight = (int)start;
		stop_recs(sc, ref, &l, out);
		if (WIFEXITED(l.status) && WEXITSTATUS(l.status) == EXIT_CRASH)
			out->leftovers = 1; /* died between two ops */
		if (WIFSIGNALED(l.status) && WTERMSIG(l.status) == SIGKILL) {
			snprintf(out->where, sizeof(out->where),
				 "at event %ld, in op %d (%s)", cp->at,
				 out->inflight, op_name(sc, out->inflight));
			out->ok = 1;
			break;
		}
		if (WIFEXITED(l.status))
			code = WEXITSTATUS(l.status);
		if (code == EXIT_CUT) {
			if (!out->where[0])
				out->inflight = out->answered;
			out->ok = 1;
			break;
		}
		if ((code != 0 && code != EXIT_CRASH) || l.nrec == 0) {
			st_fail(__FILE__, __LINE__,
				"%s: a store process failed (exit %d, status "
				"%d) cutting at %s %ld",
				sc->name, code, l.status,
				cp->kind == CUT_STEP ? "step" : "event",
				cp->at);
			return;
		}
		start = (size_t)l.recs[l.nrec - 1].op + 1;
		if (start >= sc->n) {
			/* the end, and the cut with it */
			if (cp->kind == CUT_STEP && !p.end_cut)
				st_fail(__FILE__, __LINE__,
					"%s: step %ld never came: the run "
					"differs from the reference",
					sc->name, cp->at);
			out->inflight = out->answered;
			out->ok = 1;
		}
	}
	if (out->ok && !out->where[0])
		snprintf(out->where, sizeof(out->where), "after the last op");
	pcfs_call(pcfs.fd, PCFS_FREEZE, 0, 0, NULL);
}

/* The tally of a set of cuts. */
struct tally {
	long points, cuts, losses;
	long leftovers, replayed; /* losses of the two known bugs */
	char first[2048];	  /* the first loss found */
};

static int verbose;

static const char *cut_name(enum pcm_cut how)
{
	return how == PCM_CUT_ALL      ? "all volatile dropped"
	       : how == PCM_CUT_PREFIX ? "a prefix kept"
				       : "a causal part kept";
}

static int model_cut(enum pcm_cut how, uint64_t seed, struct tally *t)
{
	if (pcfs_call(pcfs.fd, PCFS_CUT, how, (int64_t)seed, NULL)) {
		st_fail(__FILE__, __LINE__, "the model cannot cut");
		return -1;
	}
	t->cuts++;
	return 0;
}

/*
 * The store's recovery on what the last cut left, cut in turn: at a random
 * event of the open, or right after it answered (then *opened is its
 * state, and 1 is returned).
 */
static int recovery_cut(const struct scenario *sc, const struct site *skip,
			struct expect *opened)
{
	struct scenario *one = calloc(1, sizeof(*one));
	struct plan p = {0, 1, skip, 1};
	struct pcfs_reply ev;
	struct life l;
	int answered = 0;

	if (!one)
		return 0;
	snprintf(one->name, sizeof(one->name), "recovery");
	one->session_memory = sc->session_memory;
	one->keep_commits = sc->keep_commits;
	sc_add(one, OP_OPEN);
	pcfs_call(pcfs.fd, PCFS_EVENTS, 0, 0, &ev);
	pcfs_call(pcfs.fd, PCFS_ARM, ev.a + 1 + rnd(10), 0, NULL);
	if (spawn(one, 0, 0, &p, &l) == 0 && l.nrec &&
	    l.recs[0].kind == REC_DONE && !l.recs[0].err &&
	    l.recs[0].has_state) {
		answered = 1;
		*opened = l.recs[0].st;
	}
	pcfs_call(pcfs.fd, PCFS_FREEZE, 0, 0, NULL);
	free(one);
	return answered;
}

/* Count a cut's verdict; 1 if it found a loss. */
static int judge(const struct stop *stop, const struct site *skip,
		 const char *desc, const struct verdict *v, struct tally *t)
{
	if (verbose > 1)
		printf("    %s: %s\n", desc, v->loss ? v->why : "ok");
	if (!v->loss)
		return 0;
	if ((KNOWN_CRASH_LEFTOVERS && stop->leftovers) ||
	    (KNOWN_DELETE_REPLAYED && v->deleted_back)) {
		if (KNOWN_CRASH_LEFTOVERS && stop->leftovers)
			t->leftovers++;
		else
			t->replayed++;
		if (verbose)
			printf("    known: %s: %s\n", desc, v->why);
		return 0;
	}
	t->losses++;
	if (!t->first[0])
		snprintf(t->first, sizeof(t->first), "%s: %s", desc, v->why);
	if (!skip)
		st_fail(__FILE__, __LINE__, "LOSS %s: %s", desc, v->why);
	return 1;
}

/*
 * One cut of the frozen moment, checked; with again, the recovery on what
 * survived is cut too, in the other random way. 1 if it found a loss.
 */
static int cut_once(const struct scenario *sc, const struct stop *stop,
		    const struct expect *allowed, size_t n, enum pcm_cut how,
		    uint64_t seed, int again, const struct site *skip,
		    struct tally *t)
{
	struct verdict v;
	struct expect opened;
	char desc[sizeof(sc->name) + sizeof(stop->where) + 200];
	int answered = 0, len;
	size_t i;

	memset(&v, 0, sizeof(v));
	if (model_cut(how, seed, t))
		return 0;
	len =
	    snprintf(desc, sizeof(desc), "%s: cut %s, %s (seed %llu)", sc->name,
		     stop->where, cut_name(how), (unsigned long long)seed);
	if (again) {
		answered = recovery_cut(sc, skip, &opened);
		how = how == PCM_CUT_CAUSAL ? PCM_CUT_PREFIX : PCM_CUT_CAUSAL;
		if (model_cut(how, ++seed, t))
			return 0;
		snprintf(desc + len, sizeof(desc) - (size_t)len,
			 "; the open on it cut %s, %s",
			 answered ? "after it answered" : "during its recovery",
			 cut_name(how));
	}
	if (answered) {
		/* it opened one of the allowed states, which must stay */
		for (i = 0; i < n; i++)
			if (state_matches(&opened, &allowed[i]))
				break;
		if (i == n) {
			for (i = 0; i < n; i++)
				if (state_is(&opened, &allowed[i], 1))
					break;
			v.deleted_back = i < n;
			lose(&v, "the open after the cut found a state the "
				 "answers do not allow");
			return judge(stop, skip, desc, &v, t);
		}
		opened.npersisted = allowed[i].npersisted;
		memcpy(opened.persisted, allowed[i].persisted,
		       sizeof(opened.persisted));
		opened.ngone = allowed[i].ngone;
		memcpy(opened.gone, allowed[i].gone, sizeof(opened.gone));
		opened.nlive = allowed[i].nlive;
		memcpy(opened.live, allowed[i].live, sizeof(opened.live));
		check(sc, &opened, 1, &v, skip || !verbose);
	} else {
		check(sc, allowed, n, &v, skip || !verbose);
	}
	return judge(stop, skip, desc, &v, t);
}

/* Cut sc at cp in each way; the number of cuts that found a loss. */
static long cut_point(const struct scenario *sc, const struct reference *ref,
		      const struct cutpoint *cp, const struct site *skip,
		      struct tally *t)
{
	struct expect *allowed = calloc(PC_MAXOPS + 1, sizeof(*allowed));
	struct stop stop;
	size_t n = 0;
	long k, found = 0;
	uint64_t seed = (uint64_t)rnd64() >> 1;

	if (!allowed)
		return 0;
	run_to_cut(sc, ref, cp, skip, &stop);
	if (!stop.ok)
		goto out;
	t->points++;
	/*
	 * The last answered state, and every one the ops in flight lead to;
	 * their deletes may not be done yet (a commit is its switch, then
	 * the deletes of retention): only answered ones must be.
	 */
	if (stop.answered < 0)
		expect_empty(&allowed[n++]);
	for (k = stop.answered < 0 ? 0 : stop.answered; k <= stop.inflight;
	     k++) {
		allowed[n] = ref->exp[k];
		if (k > stop.answered) {
			allowed[n].ngone = allowed[0].ngone;
			memcpy(allowed[n].gone, allowed[0].gone,
			       sizeof(allowed[n].gone));
			allowed[n].nlive = allowed[0].nlive;
			memcpy(allowed[n].live, allowed[0].live,
			       sizeof(allowed[n].live));
		}
		n++;
	}
	found += cut_once(sc, &stop, allowed, n, PCM_CUT_ALL, seed, 0, skip, t);
	found += cut_once(sc, &stop, allowed, n, PCM_CUT_PREFIX, seed + 1, 0,
			  skip, t);
	found += cut_once(sc, &stop, allowed, n, PCM_CUT_CAUSAL, seed + 2, 1,
			  skip, t);
out:
	free(allowed);
	return found;
}

/*
 * Every cut point of sc: every step from sc->cut_from's on and after the
 * end, then nevents random events. With first_only, stop at a loss.
 */
static void cut_scenario(const struct scenario *sc, const struct site *skip,
			 long nevents, int first_only, struct tally *t)
{
	struct reference *ref = calloc(1, sizeof(*ref));
	struct cutpoint cp;
	long from, total, k, lo;

	if (!ref || reference(sc, skip, ref))
		goto out;
	total = ref->offset[sc->n];
	from = ref->offset[sc->cut_from] + 1;
	/* with a flush left out, cuts before it are cuts of the store */
	if (skip && !skip->recovery) {
		if (!ref->first_skip)
			goto out; /* this scenario never reaches that flush */
		if (ref->first_skip > from)
			from = ref->first_skip;
	}
	cp.kind = CUT_STEP;
	for (cp.at = from; cp.at <= total + 1; cp.at++)
		if (cut_point(sc, ref, &cp, skip, t) && first_only)
			goto out;
	cp.kind = CUT_EVENT;
	lo = sc->cut_from ? ref->events[sc->cut_from - 1] : 0;
	for (k = 0; k < nevents && ref->events[sc->n - 1] > lo; k++) {
		cp.at = lo + 1 + rnd(ref->events[sc->n - 1] - lo);
		if (cut_point(sc, ref, &cp, skip, t) && first_only)
			goto out;
	}
out:
	free(ref);
}

/* --- the scenarios -------------------------------------------------------- */

/* Every operation in turn, with no other session open at a commit. */
static void gen_walk(struct scenario *sc, long arg)
{
	(void)arg;
	snprintf(sc->name, sizeof(sc->name), "walk");
	sc_add(sc, OP_OPEN);
	sc_deploy(sc, 0, 2);
	sc_deploy(sc, 1, 1);
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 0, 100, 5000, 0x11);
	sc_write(sc, 0, 1, 0, 7, 0x12);
	sc_session(sc, OP_COMMIT, 0); /* C1 */
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 0, 9000, 100, 0x21); /* grows to 3 pages */
	sc_session(sc, OP_COMMIT, 0);	     /* C2 */
	sc_add(sc, OP_PERSIST);
	sc_restore(sc, 0); /* C1 */
	sc_deploy(sc, 2, 1);
	sc_session(sc, OP_BEGIN, 0);
	sc_session(sc, OP_COMMIT, 0); /* no new file: m2's initial memory */
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 1, 4000, 96, 0x31);
	sc_session(sc, OP_COMMIT, 0);
	sc_restore(sc, 1); /* C2 */
	sc_add(sc, OP_PERSIST);
	sc_add(sc, OP_CLOSE);
	sc_add(sc, OP_OPEN);
	sc_restore(sc, 2);
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 2, 10, 10, 0x41);
	sc_session(sc, OP_COMMIT, 0);
	sc_add(sc, OP_CLOSE);
}

/*
 * Sessions open across commits, each over the bound on sessions' memory
 * (overlays in files of the directory); commits of older bases.
 */
static void gen_sessions(struct scenario *sc, long arg)
{
	(void)arg;
	snprintf(sc->name, sizeof(sc->name), "sessions");
	sc->session_memory = STORE_PAGE_SIZE;
	sc_add(sc, OP_OPEN);
	sc_deploy(sc, 0, 2);
	sc_deploy(sc, 1, 2);
	sc_session(sc, OP_BEGIN, 0);
	sc_session(sc, OP_BEGIN, 1);
	sc_write(sc, 0, 0, 0, 6000, 0x51);
	sc_write(sc, 1, 1, 4096, 4096, 0x52);
	sc_session(sc, OP_BEGIN, 2);
	sc_write(sc, 2, 0, 8000, 200, 0x53);
	sc_session(sc, OP_COMMIT, 1); /* 0 and 2 open */
	sc_deploy(sc, 2, 1);
	sc_write(sc, 0, 2, 0, 4096, 0x54);
	sc_session(sc, OP_COMMIT, 0); /* base older than the state */
	sc_add(sc, OP_PERSIST);
	sc_session(sc, OP_BEGIN, 1);
	sc_write(sc, 1, 1, 0, 3, 0x55);
	sc_restore(sc, 0); /* with 1 and 2 open */
	sc_session(sc, OP_COMMIT, 2);
	sc_session(sc, OP_COMMIT, 1);
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 1, 100, 100, 0x56);
	sc_session(sc, OP_DROP, 0);
	sc_add(sc, OP_PERSIST);
	sc_restore(sc, 1);
}

/*
 * Deletes of persisted and unpersisted commits, of the current state's
 * commit, with a session open on a deleted base; gc; a restart.
 */
static void gen_lifecycle(struct scenario *sc, long arg)
{
	(void)arg;
	snprintf(sc->name, sizeof(sc->name), "lifecycle");
	sc_add(sc, OP_OPEN);
	sc_deploy(sc, 0, 2);
	sc_deploy(sc, 1, 1);
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 0, 0, 5000, 0x81);
	sc_session(sc, OP_COMMIT, 0); /* C1 */
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 1, 0, 100, 0x82);
	sc_session(sc, OP_COMMIT, 0); /* C2 */
	sc_add(sc, OP_PERSIST);
	sc_pick(sc, OP_DELETE, 0); /* C1, persisted: the file rewritten */
	sc_add(sc, OP_GC);
	sc_session(sc, OP_BEGIN, 1); /* on C2 */
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 0, 4096, 10, 0x83);
	sc_session(sc, OP_COMMIT, 0); /* C3, not persisted */
	sc_pick(sc, OP_DELETE, 0);    /* C2: session 1's base */
	sc_pick(sc, OP_DELETE, 0);    /* C3: the current state's */
	sc_add(sc, OP_GC);
	sc_write(sc, 1, 1, 10, 10, 0x84);
	sc_session(sc, OP_COMMIT, 1); /* the deferred files may go */
	sc_add(sc, OP_PERSIST);
	sc_add(sc, OP_CLOSE);
	sc_add(sc, OP_OPEN);
	sc_pick(sc, OP_DELETE, 0);
	sc_add(sc, OP_GC);
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 0, 0, 1, 0x85);
	sc_session(sc, OP_COMMIT, 0);
}

/* Retention: each commit deletes the oldest beyond the newest two. */
static void gen_retention(struct scenario *sc, long arg)
{
	int k;

	(void)arg;
	snprintf(sc->name, sizeof(sc->name), "retention");
	sc->keep_commits = 2;
	sc_add(sc, OP_OPEN);
	sc_deploy(sc, 0, 1);
	for (k = 0; k < 5; k++) {
		sc_session(sc, OP_BEGIN, 0);
		sc_write(sc, 0, 0, (uint64_t)k * 100, 50, 0x90 + k);
		sc_session(sc, OP_COMMIT, 0);
		if (k == 1 || k == 3)
			sc_add(sc, OP_PERSIST);
	}
	sc_add(sc, OP_CLOSE);
	sc_add(sc, OP_OPEN);
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 0, 4000, 96, 0x9F);
	sc_session(sc, OP_COMMIT, 0);
	sc_restore(sc, 0);
}

/*
 * The store process crashes just before step `step` of the first commit
 * (the page cache lives on); the next one opens, commits a session that
 * writes no file, deploys, commits and restores. Only cuts after the crash
 * are made: the ones before it are walk's.
 */
static void gen_crash_commit(struct scenario *sc, long step)
{
	snprintf(sc->name, sizeof(sc->name), "crash in commit at step %ld",
		 step);
	sc_add(sc, OP_OPEN);
	sc_deploy(sc, 0, 2);
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 0, 0, 5000, 0x61);
	sc_session(sc, OP_COMMIT, 0);
	sc_crash(sc, step);
	sc->cut_from = sc->n - 1;
	sc_session(sc, OP_BEGIN, 0);
	sc_session(sc, OP_COMMIT, 0);
	sc_deploy(sc, 1, 1);
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 1, 0, 1, 0x62);
	sc_session(sc, OP_COMMIT, 0);
	sc_restore(sc, 0);
}

/*
 * The store process crashes just before step `step` of a deploy; the next
 * one deploys the same module again, then commits into it.
 */
static void gen_crash_deploy(struct scenario *sc, long step)
{
	snprintf(sc->name, sizeof(sc->name), "crash in deploy at step %ld",
		 step);
	sc_add(sc, OP_OPEN);
	sc_deploy(sc, 0, 1);
	sc_deploy(sc, 1, 2);
	sc_crash(sc, step);
	sc->cut_from = sc->n - 1;
	sc_deploy(sc, 1, 2);
	sc_session(sc, OP_BEGIN, 0);
	sc_write(sc, 0, 1, 0, 4096, 0x71);
	sc_session(sc, OP_COMMIT, 0);
}

static long seed_base; /* POWERCUT_SEED: another draw of everything */

/* Random operations from seed, a process crash now and then. */
static void gen_random(struct scenario *sc, long seed)
{
	unsigned long long saved = rng_state;
	int open[PC_MAXSLOTS] = {0}, nmods = 0, i;

	seed += seed_base * 1000;
	rng_state = (unsigned long long)seed * 0x9E3779B97F4A7C15ULL | 1;
	snprintf(sc->name, sizeof(sc->name), "random %ld", seed);
	sc->session_memory = rnd(2) ? STORE_PAGE_SIZE : 0;
	sc_add(sc, OP_OPEN);
	while (nmods < 2)
		sc_deploy(sc, nmods++, 1 + (uint64_t)rnd(3));
	while (sc->n < 24) {
		long w = rnd(100);
		int slot = (int)rnd(PC_MAXSLOTS);

		if (w < 8 && nmods < PC_MAXMODS) {
			sc_deploy(sc, nmods++, 1 + (uint64_t)rnd(3));
		} else if (w < 45) {
			if (!open[slot])
				sc_session(sc, OP_BEGIN, slot);
			open[slot] = 1;
			sc_write(sc, slot, (int)rnd(nmods),
				 (uint64_t)rnd(4 * STORE_PAGE_SIZE),
				 1 + (uint32_t)rnd(5000), 1 + (int)rnd(255));
		} else if (w < 65) {
			if (!open[slot])
				sc_session(sc, OP_BEGIN, slot);
			sc_session(sc, OP_COMMIT, slot);
			open[slot] = 0;
		} else if (w < 70 && open[slot]) {
			sc_session(sc, OP_DROP, slot);
			open[slot] = 0;
		} else if (w < 77) {
			sc_restore(sc, (unsigned int)rnd(8));
		} else if (w < 81) {
			sc_pick(sc, OP_DELETE, (unsigned int)rnd(8));
		} else if (w < 83) {
			sc_add(sc, OP_GC);
		} else if (w < 88) {
			sc_add(sc, OP_PERSIST);
		} else if (w < 93) {
			sc_add(sc, OP_CLOSE);
			sc_add(sc, OP_OPEN);
			memset(open, 0, sizeof(open));
		} else if (sc->ops[sc->n - 1].kind != OP_OPEN) {
			/* a crash in the last op, or right after it */
			struct op last = sc->ops[sc->n - 1];

			sc_crash(sc, 1 + rnd(14));
			memset(open, 0, sizeof(open));
			if (last.kind == OP_DEPLOY) /* maybe not there */
				sc_deploy(sc, last.mod,
					  last.size / STORE_PAGE_SIZE);
		}
	}
	for (i = 0; i < PC_MAXSLOTS; i++)
		if (open[i])
			sc_session(sc, OP_COMMIT, i);
	rng_state = saved;
}

/*
 * The families of scenarios: args from..to, and random events cut per
 * scenario. POWERCUT_SCALE multiplies what is marked scaled: the number of
 * random scenarios, the events of the fixed ones.
 */
static const struct family {
	const char *name;
	void (*gen)(struct scenario *sc, long arg);
	long from, to;
	int to_scaled;
	long events;
	int events_scaled;
} families[] = {
    {"walk", gen_walk, 0, 0, 0, 40, 1},
    {"sessions", gen_sessions, 0, 0, 0, 40, 1},
    {"lifecycle", gen_lifecycle, 0, 0, 0, 40, 1},
    {"retention", gen_retention, 0, 0, 0, 20, 1},
    {"crash in commit", gen_crash_commit, 1, 14, 0, 0, 0},
    {"crash in deploy", gen_crash_deploy, 1, 6, 0, 0, 0},
    {"random", gen_random, 1, 4, 1, 40, 0},
};
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

/* --- main ----------------------------------------------------------------- */

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 10) : def;
}

static void add_tally(struct tally *to, const struct tally *t)
{
	to->points += t->points;
	to->cuts += t->cuts;
	to->losses += t->losses;
	to->leftovers += t->leftovers;
	to->replayed += t->replayed;
	if (!to->first[0])
		memcpy(to->first, t->first, sizeof(to->first));
}

/* The store as it is, every family: no cut may find a loss. */
static void run_store(const char *only, long scale, struct tally *all)
{
	struct scenario *sc = calloc(1, sizeof(*sc));
	size_t f;
	long arg, to;

	for (f = 0; sc && f < NFAMILIES; f++) {
		const struct family *fam = &families[f];

		to = fam->to_scaled ? fam->to * scale : fam->to;
		for (arg = fam->from; arg <= to; arg++) {
			struct tally t;

			memset(sc, 0, sizeof(*sc));
			fam->gen(sc, arg);
			if (only && strncmp(sc->name, only, strlen(only)))
				continue;
			memset(&t, 0, sizeof(t));
			cut_scenario(sc, NULL,
				     fam->events *
					 (fam->events_scaled ? scale : 1),
				     0, &t);
			printf("powercut: %s: %ld cut points, %ld cuts, %ld "
			       "found a loss",
			       sc->name, t.points, t.cuts, t.losses);
			if (t.leftovers + t.replayed)
				printf(" (and %ld of known bugs)",
				       t.leftovers + t.replayed);
			printf("\n");
			fflush(stdout);
			add_tally(all, &t);
		}
	}
	free(sc);
}

/*
 * Each flush removed in turn: walk, lifecycle, then the crash scenarios,
 * must find a loss (all of them when scale > 1, else up to the first one).
 */
static void run_removals(const char *only, long scale, struct tally *all)
{
	struct scenario *sc = calloc(1, sizeof(*sc));
	size_t i;
	long k;

	for (i = 0; sc && i < NSITES; i++) {
		struct tally t;
		int redundant;

		if (only && strcmp(only, "all") && strcmp(only, sites[i].name))
			continue;
		memset(&t, 0, sizeof(t));
		memset(sc, 0, sizeof(*sc));
		gen_walk(sc, 0);
		cut_scenario(sc, &sites[i], 0, scale == 1, &t);
		if (scale > 1 || !t.losses) {
			memset(sc, 0, sizeof(*sc));
			gen_lifecycle(sc, 0);
			cut_scenario(sc, &sites[i], 0, scale == 1, &t);
		}
		for (k = 1; k <= 14 && (scale > 1 || !t.losses); k++) {
			memset(sc, 0, sizeof(*sc));
			gen_crash_commit(sc, k);
			cut_scenario(sc, &sites[i], 0, scale == 1, &t);
		}
		for (k = 1; k <= 6 && (scale > 1 || !t.losses); k++) {
			memset(sc, 0, sizeof(*sc));
			gen_crash_deploy(sc, k);
			cut_scenario(sc, &sites[i], 0, scale == 1, &t);
		}
		if (sites[i].proposed && !t.cuts) {
			printf("powercut: without %s: not in the store yet\n",
			       sites[i].name);
			continue;
		}
		redundant = sites[i].redundant && !KNOWN_CRASH_LEFTOVERS;
		printf("powercut: without %s: %ld cuts, %ld found a loss%s",
		       sites[i].name, t.cuts, t.losses,
		       t.losses	   ? ""
		       : redundant ? " (none expected: README)"
				   : " (NONE: the test is blind to it)");
		if (t.leftovers + t.replayed)
			printf(" (and %ld of known bugs)",
			       t.leftovers + t.replayed);
		printf("\n");
		if (t.losses)
			printf("    first: %s\n", t.first);
		fflush(stdout);
		CHECK(t.losses > 0 || redundant);
		add_tally(all, &t);
	}
	free(sc);
}

int main(void)
{
	long scale = env_long("POWERCUT_SCALE", 1);
	const char *only = getenv("POWERCUT_ONLY");
	const char *only_skip = getenv("POWERCUT_SKIP");
	char *tmp = t_tmpdir("powercut"), mnt[600], sock[600];
	struct tally store, removed;
	time_t t0 = time(NULL);

	verbose = (int)env_long("POWERCUT_VERBOSE", 0);
	seed_base = env_long("POWERCUT_SEED", 0);
	rng_state ^= (unsigned long long)seed_base << 1;
	if (!tmp)
		return 1;
	snprintf(mnt, sizeof(mnt), "%s/mnt", tmp);
	snprintf(sock, sizeof(sock), "%s/ctl", tmp);
	if (mkdir(mnt, 0700) || pcfs_start(&pcfs, mnt, sock)) {
		st_fail(__FILE__, __LINE__, "the power-cut model cannot start");
		t_rmrf(tmp);
		return t_done();
	}
	memset(&store, 0, sizeof(store));
	memset(&removed, 0, sizeof(removed));
	pcfs_selftest(&pcfs);
	if (!only_skip || !strcmp(only_skip, "none"))
		run_store(only, scale, &store);
	if (!only && (!only_skip || strcmp(only_skip, "none")))
		run_removals(only_skip, scale, &removed);
	pcfs_stop(&pcfs);
	t_rmrf(tmp);
	free(tmp);
	CHECK(store.losses == 0);
	/* a known bug that loses nothing is fixed: its mark must go */
	if (!only && !only_skip && KNOWN_CRASH_LEFTOVERS && !store.leftovers) {
		fprintf(stderr, "powercut: the known bug lost nothing: set "
				"KNOWN_CRASH_LEFTOVERS to 0\n");
		CHECK(store.leftovers > 0);
	}
	if (!only && !only_skip && KNOWN_DELETE_REPLAYED && !store.replayed) {
		fprintf(stderr, "powercut: the known bug lost nothing: set "
				"KNOWN_DELETE_REPLAYED to 0\n");
		CHECK(store.replayed > 0);
	}
	printf("powercut: %ld s; %ld cuts with one flush removed, %ld found "
	       "a loss\n",
	       (long)(time(NULL) - t0), removed.cuts, removed.losses);
	printf("powercut: %ld cuts of the store as it is (%ld cut points), "
	       "%ld found a loss",
	       store.cuts, store.points, store.losses);
	if (store.leftovers + store.replayed)
		printf(" (and %ld of the known bugs of README: %ld crash "
		       "leftovers, %ld deletes replayed)",
		       store.leftovers + store.replayed, store.leftovers,
		       store.replayed);
	printf("\n");
	return t_done();
}
