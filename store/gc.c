/*
 * gc.c - delete, retention and gc: forgetting commits and removing the
 * module commit files nothing needs. The rule and why a crash cannot break
 * it are in gc.h.
 */
#include "gc.h"
#include "commits.h"
#include "commits_file.h"
#include "fs.h"
#include "ids.h"
#include "journal.h"
#include "names.h"
#include "session.h"
#include "state.h"
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

/* A set of (module, module commit) pairs, open addressing. */
struct pairset {
	struct store_pair *v;
	unsigned char *used;
	size_t cap, n;
};

static size_t pair_hash(const struct store_pair *p)
{
	size_t h;

	memcpy(&h, p->commit.b, sizeof(h)); /* a digest: uniform already */
	return h ^ (size_t)p->module.b[0] << 7;
}

static int pairs_equal(const struct store_pair *a, const struct store_pair *b)
{
	return !memcmp(a, b, sizeof(*a));
}

static size_t set_slot(const struct pairset *ps, const struct store_pair *p)
{
	size_t i = pair_hash(p) & (ps->cap - 1);

	while (ps->used[i] && !pairs_equal(&ps->v[i], p))
		i = (i + 1) & (ps->cap - 1);
	return i;
}

static int set_has(const struct pairset *ps, const struct store_pair *p)
{
	return ps->cap && ps->used[set_slot(ps, p)];
}

static enum store_err set_add(struct pairset *ps, const struct store_pair *p)
{
	size_t i;

	if ((ps->n + 1) * 2 > ps->cap) {
		struct pairset g = {0};

		g.cap = ps->cap ? ps->cap * 2 : 1024;
		g.v = malloc(g.cap * sizeof(*g.v));
		g.used = calloc(g.cap, 1);
		if (!g.v || !g.used) {
			free(g.v);
			free(g.used);
			return STORE_ENOMEM;
		}
		for (i = 0; i < ps->cap; i++) {
			if (!ps->used[i])
				continue;
			g.v[set_slot(&g, &ps->v[i])] = ps->v[i];
			g.used[set_slot(&g, &ps->v[i])] = 1;
			g.n++;
		}
		free(ps->v);
		free(ps->used);
		*ps = g;
	}
	i = set_slot(ps, p);
	if (!ps->used[i]) {
		ps->v[i] = *p;
		ps->used[i] = 1;
		ps->n++;
	}
	return STORE_OK;
}

static void set_release(struct pairset *ps)
{
	free(ps->v);
	free(ps->used);
	memset(ps, 0, sizeof(*ps));
}

static enum store_err set_add_state(struct pairset *ps, const struct state *st)
{
	enum store_err err = STORE_OK;
	struct store_pair p;
	size_t i;

	for (i = 0; i < st->n && !err; i++) {
		p.module = st->e[i].mod->id;
		p.commit = st->e[i].mc;
		err = set_add(ps, &p);
	}
	return err;
}

/* 1 when a commit of the commits store holds p (its file is durable). */
static int durable(struct store *s, const struct store_pair *p)
{
	int held;

	pthread_mutex_lock(&s->lock);
	held = commits_holds(&s->cs, p);
	pthread_mutex_unlock(&s->lock);
	return held;
}

/*
 * What holds files for now: the current state and the open sessions'
 * bases, which let go of them later.
 */
static enum store_err needed_sets(struct store *s, struct pairset *held)
{
	struct state **bases = NULL, *cur;
	enum store_err err;
	size_t nb = 0, i;

	err = session_bases(s, &bases, &nb);
	cur = state_current(s);
	if (!err)
		err = set_add_state(held, cur);
	state_unref(cur);
	for (i = 0; i < nb && !err; i++)
		err = set_add_state(held, bases[i]);
	for (i = 0; i < nb; i++)
		state_unref(bases[i]);
	free(bases);
	return err;
}

/* Remove MOD_MC; what it freed goes to the counts. */
static void remove_file(struct store *s, const struct store_pair *p,
			struct store_gc_info *info)
{
	char mod[STORE_HEX_LEN + 1], name[NAME_LEN];
	uint64_t freed = 0;

	store_id_hex(&p->module, mod);
	names_commit(name, mod, &p->commit);
	if (fs_remove(&s->fs, name, &freed) != STORE_OK)
		return;
	info->removed_files++;
	info->freed_bytes += freed;
}

static void count(struct store *s, const struct store_gc_info *info)
{
	pthread_mutex_lock(&s->lock);
	s->gc.files_removed += info->removed_files;
	s->gc.bytes_freed += info->freed_bytes;
	pthread_mutex_unlock(&s->lock);
}

/* Keep p for later: a session or the current state needs it. op_lock held. */
static enum store_err defer(struct store *s, const struct store_pair *p)
{
	struct gc_state *g = &s->gc;
	enum store_err err = STORE_OK;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < g->n; i++)
		if (pairs_equal(&g->deferred[i], p))
			goto out;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 16;
		struct store_pair *v = realloc(g->deferred, cap * sizeof(*v));

		err = STORE_ENOMEM;
		if (!v)
			goto out;
		g->deferred = v;
		g->cap = cap;
		err = STORE_OK;
	}
	g->deferred[g->n++] = *p;
out:
	pthread_mutex_unlock(&s->lock);
	return err;
}

/*
 * Of the candidate files, remove those nothing needs, defer those only a
 * session or the current state needs. Caller holds op_lock.
 */
static enum store_err collect(struct store *s, const struct store_pair *cand,
			      size_t n, struct store_gc_info *info)
{
	struct pairset held = {0};
	enum store_err err;
	size_t i;

	err = needed_sets(s, &held);
	for (i = 0; i < n && !err; i++) {
		if (durable(s, &cand[i]))
			continue;
		if (set_has(&held, &cand[i]))
			err = defer(s, &cand[i]);
		else
			remove_file(s, &cand[i], info);
	}
	set_release(&held);
	count(s, info);
	return err;
}

void gc_collect_deferred(struct store *s)
{
	struct store_gc_info info = {0, 0};
	struct store_pair *v;
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->gc.n;
	pthread_mutex_unlock(&s->lock);
	if (!n)
		return; /* the common case: nothing waits for a session */
	pthread_mutex_lock(&s->op_lock);
	pthread_mutex_lock(&s->lock);
	v = s->gc.deferred;
	n = s->gc.n;
	s->gc.deferred = NULL;
	s->gc.n = s->gc.cap = 0;
	pthread_mutex_unlock(&s->lock);
	if (n)
		(void)collect(s, v, n,
			      &info); /* re-defers what is still held */
	pthread_mutex_unlock(&s->op_lock);
	free(v);
}

/* The file `commits` without c: the persisted commits of memory but c. */
static enum store_err file_without(struct store *s, const struct store_id *c)
{
	struct store_commits_reader *r = NULL;
	enum store_err err;

	err = commits_file_reader(s, COMMITS_READ_PERSISTED, c, &r);
	if (!err)
		err = commits_file_write(s, commits_file_reader_fill, r,
					 commits_file_reader_count(r));
	commits_file_reader_close(r);
	return err;
}

enum store_err store_commit_delete(struct store *s,
				   const struct store_id *commit)
{
	struct store_gc_info info = {0, 0};
	struct store_pair *pairs = NULL;
	const struct commits_entry *found;
	enum store_err err = STORE_OK;
	int in_file;
	size_t n = 0;

	err = store_commits_ready(s);
	if (err)
		return err;
	pthread_mutex_lock(&s->op_lock);
	pthread_mutex_lock(&s->persist_lock);
	pthread_mutex_lock(&s->lock);
	found = commits_find(&s->cs, commit);
	/* a file not known as it is may hold it (a failed append) */
	in_file = found && (found->persisted || !s->cf.known);
	pthread_mutex_unlock(&s->lock);
	if (!found) {
		err = STORE_ENOCOMMIT;
		goto out;
	}
	/* no replay may bring it back; gone durably, then its files */
	err = journal_settle(s, commit);
	if (!err && in_file && (s->cf.exists || !s->cf.known))
		err = file_without(s, commit);
	if (err)
		goto out;
	pthread_mutex_lock(&s->lock);
	err = commits_remove(&s->cs, commit, &pairs, &n);
	if (!err)
		s->gc.commits_deleted++;
	pthread_mutex_unlock(&s->lock);
	if (!err)
		err = collect(s, pairs, n, &info);
	free(pairs);
out:
	pthread_mutex_unlock(&s->persist_lock);
	pthread_mutex_unlock(&s->op_lock);
	return err;
}

/* One name of the directory: a module commit file nothing needs? */
struct sweep {
	struct store *s;
	struct pairset held;
	struct store_gc_info *info;
};

static enum store_err sweep_name(void *ctx, const char *name)
{
	struct sweep *w = ctx;
	struct store_pair p;

	if (strlen(name) != 2 * STORE_HEX_LEN + 1 ||
	    name[STORE_HEX_LEN] != '_' ||
	    !ids_is_upper_hex(name, STORE_HEX_LEN) ||
	    !ids_is_upper_hex(name + STORE_HEX_LEN + 1, STORE_HEX_LEN))
		return STORE_OK;
	store_id_parse(&p.module, name, STORE_HEX_LEN);
	store_id_parse(&p.commit, name + STORE_HEX_LEN + 1, STORE_HEX_LEN);
	if (!modules_find(w->s, &p.module))
		return STORE_OK; /* not a module of this store: not ours */
	if (set_has(&w->held, &p) || durable(w->s, &p))
		return STORE_OK;
	remove_file(w->s, &p, w->info);
	return STORE_OK;
}

enum store_err store_gc(struct store *s, struct store_gc_info *info)
{
	struct store_gc_info tmp;
	struct sweep w;
	enum store_err err;

	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	memset(&w, 0, sizeof(w));
	w.s = s;
	w.info = info;
	err = store_commits_ready(s);
	if (err)
		return err;
	pthread_mutex_lock(&s->op_lock);
	pthread_mutex_lock(&s->persist_lock);
	err = needed_sets(s, &w.held);
	if (!err)
		err = fs_each_name(&s->fs, sweep_name, &w);
	pthread_mutex_unlock(&s->persist_lock);
	pthread_mutex_unlock(&s->op_lock);
	count(s, info);
	set_release(&w.held);
	return err;
}

enum store_err gc_retain(struct store *s, unsigned int keep)
{
	enum store_err err = STORE_OK;
	struct store_id oldest;
	int more;

	err = store_commits_ready(s);
	while (keep && !err) {
		pthread_mutex_lock(&s->lock);
		more = s->cs.n > keep;
		if (more)
			oldest = s->cs.v[0]->id;
		pthread_mutex_unlock(&s->lock);
		if (!more)
			break;
		err = store_commit_delete(s, &oldest);
		if (err == STORE_ENOCOMMIT)
			err = STORE_OK; /* deleted meanwhile */
	}
	return err;
}

void gc_release(struct store *s)
{
	free(s->gc.deferred);
	memset(&s->gc, 0, sizeof(s->gc));
}
