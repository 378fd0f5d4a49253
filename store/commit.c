/*
 * commit.c - the commit of a session, in four phases:
 *
 *   commit_prepare  outside the store's locks: each module with dirty
 *                   pages gets its new page tree, id and commit file (a
 *                   temporary, flushed with the journal by the switch: J1);
 *   commit_plan     under op_lock: the new state, every module deployed
 *                   now, from the prepared modules and the session's base;
 *   commit_publish  the switch of names (journal.c), then the commits store;
 *   commit_finish   the answer, and the session ends.
 *
 * The invariants J1-J6 are stated in journal.c.
 */
#include "commits.h"
#include "fs.h"
#include "gc.h"
#include "ids.h"
#include "journal.h"
#include "names.h"
#include "session.h"
#include "state.h"
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

/* A changed module, prepared outside the store's locks. */
struct prep {
	struct smod *sm;
	struct store_id mc;
	struct tree *tree;
	struct tree *base;	/* the base's tree, while the file is written */
	char tmp[TMP_NAME_LEN]; /* the new commit file; "" once used */
};

struct commit {
	struct session *se;
	struct prep *preps; /* in module order */
	size_t np;
	struct state *st; /* the new state */
	struct jsrc *src; /* the new files, for the switch */
	size_t nsrc;
	struct store_pair *pairs;
	struct commits_entry *ce;
};

static void prep_release(struct store *s, struct prep *p)
{
	if (p->tmp[0])
		fs_unlink(&s->fs, p->tmp);
	p->tmp[0] = '\0';
	tree_unref(p->tree);
	tree_unref(p->base);
	p->tree = p->base = NULL;
}

/* --- prepare ---------------------------------------------------------------
 */

/* 1 if page of the base must be copied: not dirty, not all zero. */
static int base_page_kept(const struct prep *p, uint64_t page)
{
	return !session_is_dirty(p->sm, page) &&
	       !store_id_equal(&p->base->lv[0][page], ids_zero_leaf());
}

/*
 * Copy the base's pages the new file keeps, a run per call. Zero pages
 * stay holes and dirty pages are written next: the base's tree says which
 * is which, with no look at the file's extents.
 */
static enum store_err copy_base(struct store *s, const struct prep *p, int fd,
				uint64_t *copied)
{
	uint64_t n = p->sm->base_size / STORE_PAGE_SIZE, page, run;
	enum store_err err;

	for (page = 0; page < n; page += run) {
		run = 1;
		if (!base_page_kept(p, page))
			continue;
		while (page + run < n && base_page_kept(p, page + run))
			run++;
		err = fs_copy_bytes(&s->fs, p->sm->base_fd, fd,
				    page * STORE_PAGE_SIZE,
				    run * STORE_PAGE_SIZE);
		if (err)
			return err;
		*copied += run * STORE_PAGE_SIZE;
	}
	return STORE_OK;
}

/* 1 when a copy or a write ends at the last page: it gives the size. */
static int last_page_written(const struct prep *p)
{
	uint64_t last = p->sm->size / STORE_PAGE_SIZE - 1;

	if (session_is_dirty(p->sm, last))
		return 1;
	return p->sm->base_fd >= 0 &&
	       last < p->sm->base_size / STORE_PAGE_SIZE &&
	       base_page_kept(p, last);
}

/* Write the new commit file: the base's kept pages, then the dirty ones. */
static enum store_err prep_file(struct store *s, struct prep *p)
{
	struct smod *sm = p->sm;
	enum store_err err = STORE_OK;
	uint64_t copied = 0;
	int fd = -1;

	err = fs_tmp_create(&s->fs, p->tmp, &fd);
	if (err)
		return err;
	if (!sm->size || !last_page_written(p)) /* else no call needed */
		err = fs_truncate(&s->fs, fd, sm->size, "commit.truncate");
	if (!err && sm->base_fd >= 0)
		err = copy_base(s, p, fd, &copied);
	if (!err)
		err = session_write_dirty(s, sm, fd, &copied);
	if (!err)
		atomic_fetch_add(&s->bytes_written, copied);
	fs_close_fd(fd);
	return err;
}

/* The tree of sm's base: its entry's, or all-zero initial memory. */
static enum store_err base_tree(struct store *s, const struct smod *sm,
				struct tree **out)
{
	if (sm->be)
		return state_entry_tree(s, (struct entry *)(uintptr_t)sm->be,
					out);
	*out = tree_new_zero(sm->base_size / STORE_PAGE_SIZE);
	return *out ? STORE_OK : STORE_ENOMEM;
}

/* p->tree and p->mc: the base's tree with the dirty pages rehashed. */
static enum store_err prep_tree(struct store *s, struct prep *p)
{
	unsigned char page[STORE_PAGE_SIZE];
	const struct smod *sm = p->sm;
	struct tree *bt = NULL;
	size_t *dirty = NULL, nd = 0, npages = sm->size / STORE_PAGE_SIZE, i;
	enum store_err err;

	err = base_tree(s, sm, &bt);
	if (err)
		return err;
	p->tree = tree_copy(bt, npages);
	dirty = malloc((sm->ov.ndirty ? sm->ov.ndirty : 1) * sizeof(*dirty));
	err = STORE_ENOMEM;
	if (!p->tree || !dirty)
		goto out;
	for (i = 0; i < npages; i++) {
		if (!session_is_dirty(sm, i))
			continue;
		err = session_read_page(sm, i, page);
		if (err)
			goto out;
		ids_leaf_page(page, &p->tree->lv[0][i]);
		dirty[nd++] = i;
	}
	err = STORE_ENOMEM;
	if (tree_update(p->tree, dirty, nd, npages != bt->npages))
		goto out;
	tree_root(p->tree, &p->mc);
	p->base = bt;
	bt = NULL;
	err = STORE_OK;
out:
	free(dirty);
	tree_unref(bt);
	return err;
}

/* New id and file of a module with dirty pages; *changed unless the same. */
static enum store_err prep_module(struct store *s, struct smod *sm,
				  struct prep *p, int *changed)
{
	enum store_err err;

	*changed = 0;
	memset(p, 0, sizeof(*p));
	p->sm = sm;
	err = prep_tree(s, p);
	if (!err && !(sm->be && store_id_equal(&p->mc, &sm->be->mc))) {
		*changed = 1;
		/* whether MOD_MC exists already is the switch's to find */
		err = prep_file(s, p);
	}
	tree_unref(p->base);
	p->base = NULL;
	if (err || !*changed)
		prep_release(s, p);
	return err;
}

static enum store_err commit_prepare(struct store *s, struct commit *c)
{
	struct session *se = c->se;
	enum store_err err = STORE_OK;
	size_t i;
	int changed;

	c->preps = calloc(se->nmods ? se->nmods : 1, sizeof(*c->preps));
	if (!c->preps)
		return STORE_ENOMEM;
	for (i = 0; i < se->nmods && !err; i++) {
		if (!se->mods[i]->ov.ndirty)
			continue;
		err = prep_module(s, se->mods[i], &c->preps[c->np], &changed);
		c->np += (size_t)(!err && changed);
	}
	return err;
}

/* --- plan -------------------------------------------------------------------
 */

static void src_add(struct commit *c, const struct module *m, const char *src)
{
	struct jsrc *js = &c->src[c->nsrc++];

	js->mod = m;
	js->used = 0;
	memcpy(js->src, src, strlen(src) + 1);
}

/*
 * Entry e of module m in the new state: prepared, from the base (be, its
 * tree referenced under tree_lock, which the caller holds), or new.
 */
static void plan_entry(struct commit *c, struct module *m, const struct prep *p,
		       const struct entry *be, struct entry *e)
{
	if (p) {
		e->mod = m;
		e->mc = p->mc;
		e->size = p->sm->size;
		e->tree = tree_ref(p->tree);
		src_add(c, m, p->tmp);
	} else if (be) {
		e->mod = be->mod;
		e->mc = be->mc;
		e->size = be->size;
		e->tree = tree_ref(be->tree);
	} else {
		/* initial memory: its file, should it be missing, from init */
		state_initial_entry(m, e);
		src_add(c, m, SRC_INIT);
	}
}

/*
 * The entries of the new state, every module deployed now, from the preps
 * or the base: the modules, the preps and the base's entries are all in
 * module order, so one walk pairs them up.
 */
static void plan_entries(struct store *s, struct commit *c,
			 struct module **mods, size_t n)
{
	const struct state *base = c->se->base;
	size_t i, k = 0, b = 0;

	pthread_mutex_lock(&s->tree_lock);
	for (i = 0; i < n; i++) {
		const struct prep *p = NULL;
		const struct entry *be = NULL;

		if (k < c->np && c->preps[k].sm->mod == mods[i])
			p = &c->preps[k++];
		while (b < base->n && memcmp(base->e[b].mod->id.b,
					     mods[i]->id.b, STORE_ID_BYTES) < 0)
			b++;
		if (b < base->n &&
		    store_id_equal(&base->e[b].mod->id, &mods[i]->id))
			be = &base->e[b];
		plan_entry(c, mods[i], p, be, &c->st->e[i]);
	}
	pthread_mutex_unlock(&s->tree_lock);
}

/* The new state, and its root from the current state's tree. */
static enum store_err plan_state(struct store *s, struct commit *c)
{
	struct module **mods = NULL;
	struct state *cur = NULL;
	enum store_err err;
	size_t n;

	err = modules_snapshot(s, &mods, &n);
	if (err)
		return err;
	c->st = state_new(n);
	c->src = calloc(n + 1, sizeof(*c->src));
	err = STORE_ENOMEM;
	if (!c->st || !c->src)
		goto out;
	plan_entries(s, c, mods, n);
	cur = state_current(s);
	err = state_compute_root(c->st, cur);
out:
	state_unref(cur);
	free(mods);
	return err;
}

static enum store_err check_root(struct store *s, const struct store_id *want)
{
	struct store_id root;

	if (!want)
		return STORE_OK;
	store_root(s, &root);
	return store_id_equal(&root, want) ? STORE_OK : STORE_EMISMATCH;
}

/* Under op_lock: the new state, and room for it in the commits store. */
static enum store_err commit_plan(struct store *s, struct commit *c,
				  const struct store_id *expect_root)
{
	enum store_err err;

	err = journal_unwedge(s);
	if (!err)
		err = check_root(s, expect_root);
	if (!err)
		err = plan_state(s, c);
	if (!err)
		err = state_pairs(c->st, &c->pairs);
	if (err)
		return err;
	/* all that can fail for the commits store fails before the switch */
	c->ce = commits_entry_new(&c->st->root, c->pairs, c->st->n);
	if (!c->ce)
		return STORE_ENOMEM;
	pthread_mutex_lock(&s->lock);
	err = commits_reserve(&s->cs, c->st->n);
	pthread_mutex_unlock(&s->lock);
	return err;
}

/* --- publish and finish ------------------------------------------------------
 */

static enum store_err commit_publish(struct store *s, struct commit *c)
{
	enum store_err err;
	size_t i, k = 0;

	err = journal_switch(s, c->st, JOURNAL_COMMIT, c->src, c->nsrc);
	if (err)
		return err;
	/* the temporaries the switch named are in place, or gone */
	for (i = 0; i < c->nsrc; i++) {
		if (k < c->np && c->src[i].mod == c->preps[k].sm->mod) {
			if (c->src[i].used)
				c->preps[k].tmp[0] = '\0';
			k++;
		}
	}
	pthread_mutex_lock(&s->lock);
	commits_insert(&s->cs, c->ce);
	pthread_mutex_unlock(&s->lock);
	c->ce = NULL;
	return STORE_OK;
}

static void commit_finish(struct store *s, struct commit *c,
			  struct store_commit_info *out)
{
	struct session *se = c->se;

	out->id = c->st->root;
	out->has_base = se->has_base;
	out->base = se->base_id;
	out->n = c->st->n;
	out->pairs = c->pairs;
	c->pairs = NULL;
	session_finish(s, se);
	c->se = NULL;
}

static void commit_release(struct store *s, struct commit *c, int keep_tmps)
{
	size_t i;

	for (i = 0; i < c->np; i++) {
		if (keep_tmps)
			c->preps[i].tmp[0] = '\0';
		prep_release(s, &c->preps[i]);
	}
	free(c->preps);
	free(c->src);
	free(c->pairs);
	commits_entry_free(c->ce);
	state_unref(c->st);
	if (c->se)
		session_unlock(s, c->se);
}

void store_commit_info_release(struct store_commit_info *ci)
{
	if (!ci)
		return;
	free(ci->pairs);
	memset(ci, 0, sizeof(*ci));
}

enum store_err store_session_commit(struct store *s, const struct store_id *sid,
				    const struct store_id *expect_root,
				    struct store_commit_info *out)
{
	struct commit c = {0};
	enum store_err err;
	int wedged = 0;

	memset(out, 0, sizeof(*out));
	err = store_commits_ready(s); /* the commit goes after the file's */
	if (err)
		return err;
	err = session_lock(s, sid, 1, &c.se);
	if (err)
		return err;
	err = check_root(s, expect_root);
	if (!err)
		err = commit_prepare(s, &c);
	if (err)
		goto out;
	pthread_mutex_lock(&s->op_lock);
	err = commit_plan(s, &c, expect_root);
	if (!err)
		err = commit_publish(s, &c);
	/* a wedged store's journal may name the temporaries */
	wedged = err && journal_wedged(s);
	pthread_mutex_unlock(&s->op_lock);
	if (!err)
		commit_finish(s, &c, out);
out:
	commit_release(s, &c, wedged);
	if (!err && s->keep_commits)
		(void)gc_retain(s, s->keep_commits); /* the commit stands */
	if (!err)
		gc_collect_deferred(s); /* files the old state held may go */
	return err;
}
