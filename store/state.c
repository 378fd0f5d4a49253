/*
 * state.c - immutable states and the current one; what the current state
 * says of a module (deploy, get, list, open, root).
 */
#include "state.h"
#include "fs.h"
#include "ids.h"
#include "names.h"
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct state *state_new(size_t n)
{
	struct state *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	atomic_init(&st->refs, 1);
	if (n) {
		st->e = calloc(n, sizeof(*st->e));
		if (!st->e) {
			free(st);
			return NULL;
		}
	}
	st->n = n;
	return st;
}

struct state *state_ref(struct state *st)
{
	if (st)
		atomic_fetch_add(&st->refs, 1);
	return st;
}

void state_unref(struct state *st)
{
	size_t i;

	if (!st || atomic_fetch_sub(&st->refs, 1) != 1)
		return;
	for (i = 0; i < st->n; i++)
		tree_unref(st->e[i].tree);
	tree_unref(st->rt);
	free(st->e);
	free(st);
}

static int entry_key_cmp(const void *key, const void *elem)
{
	const struct entry *e = elem;

	return memcmp(key, e->mod->id.b, STORE_ID_BYTES);
}

const struct entry *state_find(const struct state *st,
			       const struct store_id *mod)
{
	if (!st->n)
		return NULL;
	return bsearch(mod->b, st->e, st->n, sizeof(*st->e), entry_key_cmp);
}

/* 1 if a and b hold the same modules, in the same order. */
static int same_modules(const struct state *a, const struct state *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (a->e[i].mod != b->e[i].mod &&
		    !store_id_equal(&a->e[i].mod->id, &b->e[i].mod->id))
			return 0;
	return 1;
}

/* st->rt from ref's tree: the leaves that differ, and their paths. */
static enum store_err root_from_ref(struct state *st, const struct state *ref)
{
	size_t *dirty, nd = 0, i;
	int rc;

	dirty = malloc(st->n * sizeof(*dirty));
	st->rt = tree_copy(ref->rt, st->n);
	if (!dirty || !st->rt) {
		free(dirty);
		return STORE_ENOMEM;
	}
	for (i = 0; i < st->n; i++) {
		if (store_id_equal(&st->e[i].mc, &ref->e[i].mc))
			continue;
		ids_module_leaf(&st->e[i].mod->id, &st->e[i].mc,
				&st->rt->lv[0][i]);
		dirty[nd++] = i;
	}
	rc = tree_update(st->rt, dirty, nd, 0);
	free(dirty);
	return rc ? STORE_ENOMEM : STORE_OK;
}

enum store_err state_compute_root(struct state *st, const struct state *ref)
{
	enum store_err err = STORE_OK;
	size_t i;

	tree_unref(st->rt);
	st->rt = NULL;
	if (st->n == 0) {
		ids_empty(&st->root);
		return STORE_OK;
	}
	if (ref && ref->rt && same_modules(st, ref)) {
		err = root_from_ref(st, ref);
	} else {
		st->rt = tree_copy(NULL, st->n);
		if (!st->rt)
			return STORE_ENOMEM;
		for (i = 0; i < st->n; i++)
			ids_module_leaf(&st->e[i].mod->id, &st->e[i].mc,
					&st->rt->lv[0][i]);
		if (tree_update(st->rt, NULL, 0, 1))
			err = STORE_ENOMEM;
	}
	if (err) {
		tree_unref(st->rt);
		st->rt = NULL;
		return err;
	}
	tree_root(st->rt, &st->root);
	return STORE_OK;
}

enum store_err state_pairs(const struct state *st, struct store_pair **out)
{
	size_t i;

	*out = malloc((st->n ? st->n : 1) * sizeof(**out));
	if (!*out)
		return STORE_ENOMEM;
	for (i = 0; i < st->n; i++) {
		(*out)[i].module = st->e[i].mod->id;
		(*out)[i].commit = st->e[i].mc;
	}
	return STORE_OK;
}

struct state *state_current(struct store *s)
{
	struct state *st;

	pthread_mutex_lock(&s->lock);
	st = state_ref(s->cur);
	pthread_mutex_unlock(&s->lock);
	return st;
}

void state_publish(struct store *s, struct state *st)
{
	struct state *old;

	pthread_mutex_lock(&s->lock);
	old = s->cur;
	s->cur = state_ref(st);
	pthread_mutex_unlock(&s->lock);
	/* only the current state's tree is wanted (op_lock held, see rt) */
	if (old && old != st) {
		tree_unref(old->rt);
		old->rt = NULL;
	}
	state_unref(old);
}

/* --- page trees ------------------------------------------------------------
 */

/*
 * The leaf of a page of a file being hashed whole. An all-zero page (the
 * holes of a sparse file: most of a large module's memory, often) has the
 * zero page's leaf, known: one pass of memcmp instead of BLAKE2b, some
 * ten times faster.
 */
static void page_leaf(const unsigned char *page, struct store_id *out)
{
	if (page[0] == 0 && !memcmp(page, page + 1, STORE_PAGE_SIZE - 1))
		*out = *ids_zero_leaf();
	else
		ids_leaf_page(page, out);
}

enum store_err state_tree_from_fd(int fd, size_t npages, struct tree **out)
{
	enum { CHUNK = 256 };
	struct tree *t;
	unsigned char *buf;
	size_t i, k, n;
	enum store_err err = STORE_OK;

	*out = NULL;
	t = tree_copy(NULL, npages);
	buf = malloc((size_t)CHUNK * STORE_PAGE_SIZE);
	if (!t || !buf) {
		err = STORE_ENOMEM;
		goto out;
	}
	for (i = 0; i < npages; i += n) {
		n = npages - i < CHUNK ? npages - i : CHUNK;
		err = fs_read(fd, buf, n * STORE_PAGE_SIZE,
			      (uint64_t)i * STORE_PAGE_SIZE);
		if (err)
			goto out;
		for (k = 0; k < n; k++)
			page_leaf(buf + k * STORE_PAGE_SIZE, &t->lv[0][i + k]);
	}
	tree_update(t, NULL, 0, 1);
	*out = t;
	t = NULL;
out:
	tree_unref(t);
	free(buf);
	return err;
}

/* The tree of e built from its file, or from nothing if all zero. */
static enum store_err entry_build_tree(struct store *s, const struct entry *e,
				       struct tree **out)
{
	return state_build_tree(s, e->mod, &e->mc, e->size, 0, out);
}

enum store_err state_build_tree(struct store *s, const struct module *m,
				const struct store_id *mc, uint64_t size,
				int missing_ok, struct tree **out)
{
	size_t npages = (size_t)(size / STORE_PAGE_SIZE);
	char name[NAME_LEN];
	struct store_id root;
	enum store_err err;
	int fd;

	ids_zero_root(npages, &root);
	if (store_id_equal(&root, mc)) {
		*out = tree_new_zero(npages);
		return *out ? STORE_OK : STORE_ENOMEM;
	}
	names_commit(name, m->hex, mc);
	err = fs_open_ro(&s->fs, name, missing_ok, &fd);
	if (err)
		return err;
	err = state_tree_from_fd(fd, npages, out);
	fs_close_fd(fd);
	if (err)
		return err;
	tree_root(*out, &root);
	if (!store_id_equal(&root, mc)) {
		tree_unref(
		    *out); /* the file does not hold what its name says */
		*out = NULL;
		return STORE_ECORRUPT;
	}
	return STORE_OK;
}

struct tree *state_entry_tree_ref(struct store *s, const struct entry *e)
{
	struct tree *t;

	pthread_mutex_lock(&s->tree_lock);
	t = tree_ref(e->tree);
	pthread_mutex_unlock(&s->tree_lock);
	return t;
}

enum store_err state_entry_tree(struct store *s, struct entry *e,
				struct tree **out)
{
	struct tree *t = NULL;
	enum store_err err;

	*out = state_entry_tree_ref(s, e);
	if (*out)
		return STORE_OK;
	err = entry_build_tree(s, e, &t);
	if (err)
		return err;
	pthread_mutex_lock(&s->tree_lock);
	if (e->tree) {
		tree_unref(t);
		t = e->tree;
	} else {
		e->tree = t;
	}
	*out = tree_ref(t);
	pthread_mutex_unlock(&s->tree_lock);
	return STORE_OK;
}

void state_initial_entry(struct module *m, struct entry *e)
{
	e->mod = m;
	e->size = m->init_size;
	e->tree = NULL;
	e->mc = m->zero_mc;
}

/* --- states from pairs and from the directory ------------------------------
 */

/* Entry e of module commit mc: as in cur if it is there, else its file's. */
static enum store_err entry_from_pair(struct store *s, const struct state *cur,
				      const struct store_pair *p,
				      struct entry *e)
{
	const struct entry *ce;
	char name[NAME_LEN];
	int x;

	/* the module table only grows: a module found stays */
	e->mod = modules_find(s, &p->module);
	if (!e->mod)
		return STORE_ECORRUPT; /* a commit of an unknown module */
	e->mc = p->commit;
	ce = state_find(cur, &e->mod->id);
	if (ce && store_id_equal(&ce->mc, &e->mc)) {
		/* as it is now: size and tree known, file there */
		e->size = ce->size;
		e->tree = state_entry_tree_ref(s, ce);
		return STORE_OK;
	}
	names_commit(name, e->mod->hex, &e->mc);
	x = fs_exists(&s->fs, name, &e->size);
	if (x == 1)
		return STORE_OK;
	return x == 0 ? STORE_ECORRUPT : fs_err(errno);
}

enum store_err state_from_pairs(struct store *s, const struct store_pair *pairs,
				size_t n, struct state **out)
{
	struct state *st, *cur;
	enum store_err err = STORE_OK;
	size_t i;

	*out = NULL;
	st = state_new(n);
	if (!st)
		return STORE_ENOMEM;
	cur = state_current(s);
	for (i = 0; i < n && !err; i++)
		err = entry_from_pair(s, cur, &pairs[i], &st->e[i]);
	state_unref(cur);
	if (!err)
		err = state_compute_root(st, NULL);
	if (err) {
		state_unref(st);
		return err;
	}
	*out = st;
	return STORE_OK;
}

/*
 * Entry e from MOD_last_id: 1 when the module has a commit, 0 when not. A
 * _last_id sharing its inode (a link made by another version, while no
 * process had the directory) is replaced here, once: every switch after
 * it writes the _last_id files in place.
 */
static int entry_from_last_id(struct store *s, struct module *m,
			      struct entry *e, enum store_err *err)
{
	char name[NAME_LEN], *buf = NULL;
	unsigned long nlink = 1;
	size_t len;
	int x;

	names_suffix(name, m->hex, "_last_id");
	*err = fs_read_file(&s->fs, name, &buf, &len, &nlink);
	if (*err == STORE_ENOCOMMIT) {
		*err = STORE_OK;
		return 0; /* no commit yet */
	}
	if (*err)
		return 0;
	*err = STORE_ECORRUPT;
	if (len != STORE_HEX_LEN + 1 || buf[STORE_HEX_LEN] != '\n' ||
	    store_id_parse(&e->mc, buf, STORE_HEX_LEN))
		goto out;
	if (nlink > 1) {
		*err = fs_write_atomic(&s->fs, name, buf, len, "open.id_write");
		if (*err)
			goto out;
	}
	e->mod = m;
	names_commit(name, m->hex, &e->mc);
	x = fs_exists(&s->fs, name, &e->size);
	*err = x == 1 ? STORE_OK : x == 0 ? STORE_ECORRUPT : fs_err(errno);
out:
	free(buf);
	return *err == STORE_OK;
}

enum store_err state_load(struct store *s, struct state **out)
{
	struct module **mods = NULL;
	struct state *st = NULL;
	enum store_err err;
	size_t i, n, k = 0;

	*out = NULL;
	err = modules_snapshot(s, &mods, &n);
	if (err)
		return err;
	st = state_new(n);
	if (!st) {
		free(mods);
		return STORE_ENOMEM;
	}
	for (i = 0; i < n && !err; i++)
		k += (size_t)entry_from_last_id(s, mods[i], &st->e[k], &err);
	st->n = k;
	free(mods);
	if (!err)
		err = state_compute_root(st, NULL);
	if (err) {
		state_unref(st);
		return err;
	}
	*out = st;
	return STORE_OK;
}

/* --- what the current state says of a module -------------------------------
 */

static void module_info(const struct module *m, const struct entry *e,
			struct store_module_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = m->id;
	info->size = e ? e->size : m->init_size;
	info->has_commit = e != NULL;
	if (e)
		info->last_commit = e->mc;
}

static enum store_err check_size(struct store *s, uint64_t size)
{
	if (size == 0 || size % STORE_PAGE_SIZE)
		return STORE_EINVAL;
	if (size > s->max_module_size)
		return STORE_ETOOBIG;
	return STORE_OK;
}

/*
 * Deploy mod, keeping u's bytes as its bytecode when u is not NULL (they
 * hash to mod). The size matters only to a new module.
 */
static enum store_err deploy(struct store *s, const struct store_id *mod,
			     struct store_upload *u, uint64_t size,
			     struct store_module_info *info, int *created)
{
	struct store_module_info tmpinfo;
	struct module *m;
	enum store_err err;
	int made = 0;

	if (created)
		*created = 0;
	if (!info)
		info = &tmpinfo;
	err = store_module_get(s, mod, info);
	if (err == STORE_ENOMODULE)
		err = check_size(s, size);
	if (err)
		return err;
	err = modules_deploy(s, mod, size, u, &m, &made);
	if (err)
		return err;
	if (!made)
		return store_module_get(s, mod, info);
	module_info(m, NULL, info);
	if (created)
		*created = 1;
	return STORE_OK;
}

enum store_err store_deploy_id(struct store *s, const struct store_id *mod,
			       uint64_t size, struct store_module_info *info,
			       int *created)
{
	return deploy(s, mod, NULL, size, info, created);
}

enum store_err store_deploy_upload(struct store *s, struct store_upload *u,
				   uint64_t size,
				   struct store_module_info *info, int *created)
{
	struct store_id id;
	enum store_err err;

	if (created)
		*created = 0;
	if (!u || u->s != s)
		return STORE_EINVAL;
	err = modules_upload_id(u, &id);
	if (err)
		return err;
	return deploy(s, &id, u, size, info, created);
}

enum store_err store_deploy(struct store *s, const void *code, size_t len,
			    uint64_t size, struct store_module_info *info,
			    int *created)
{
	struct store_upload *u = NULL;
	enum store_err err;

	if (created)
		*created = 0;
	if (!code || len == 0)
		return STORE_EINVAL;
	err = store_upload_new(s, &u);
	if (!err)
		err = store_upload_write(u, code, len);
	if (!err)
		err = store_deploy_upload(s, u, size, info, created);
	store_upload_free(u);
	return err;
}

enum store_err store_module_get(struct store *s, const struct store_id *mod,
				struct store_module_info *info)
{
	struct module *m;
	enum store_err err = STORE_ENOMODULE;

	pthread_mutex_lock(&s->lock);
	m = modules_find_locked(s, mod);
	if (m) {
		module_info(m, state_find(s->cur, mod), info);
		err = STORE_OK;
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

enum store_err store_module_list(struct store *s,
				 struct store_module_info **out, size_t *n)
{
	struct store_module_info *v = NULL;
	size_t i;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	if (s->mods.n) {
		v = malloc(s->mods.n * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&s->lock);
			return STORE_ENOMEM;
		}
	}
	for (i = 0; i < s->mods.n; i++)
		module_info(s->mods.v[i], state_find(s->cur, &s->mods.v[i]->id),
			    &v[i]);
	*n = s->mods.n;
	pthread_mutex_unlock(&s->lock);
	*out = v;
	return STORE_OK;
}

enum store_err store_module_open(struct store *s, const struct store_id *mod,
				 int *fd, struct store_module_info *info)
{
	struct state *st = NULL;
	const struct entry *e;
	struct module *m;
	char name[NAME_LEN];

	*fd = -1;
	pthread_mutex_lock(&s->lock);
	m = modules_find_locked(s, mod);
	if (m)
		st = state_ref(s->cur);
	pthread_mutex_unlock(&s->lock);
	if (!m)
		return STORE_ENOMODULE;
	/* the state's files are immutable: no lock needed to open them */
	e = state_find(st, mod);
	if (e)
		names_commit(name, m->hex, &e->mc);
	else
		names_init(name, m->hex);
	if (info)
		module_info(m, e, info);
	state_unref(st);
	return fs_open_ro(&s->fs, name, 0, fd);
}

enum store_err store_root(struct store *s, struct store_id *root)
{
	pthread_mutex_lock(&s->lock);
	*root = s->cur->root;
	pthread_mutex_unlock(&s->lock);
	return STORE_OK;
}
