/*
 * import.c - what arrives from another node of a cluster: a module commit
 * file, checked against its Merkle id before it takes its name, either
 * whole (store_commit_file_import) or patched (store_patch_*: a local
 * module commit file of the module, copied, with the pages that differ
 * written over it); and a commit added to the commits store, checked
 * against its pairs.
 *
 * None changes the current state: a follower then calls store_restore()
 * (the journal's switch), as for a local restore.
 */
#include "commits.h"
#include "fs.h"
#include "ids.h"
#include "modules.h"
#include "names.h"
#include "state.h"
#include "store_internal.h"
#include "tree.h"
#include "treecache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The name of (mod, mc)'s module commit file, or ENOMODULE. */
static enum store_err commit_file_name(struct store *s,
				       const struct store_id *mod,
				       const struct store_id *mc,
				       char name[NAME_LEN])
{
	const struct module *m = modules_find(s, mod);

	if (!m)
		return STORE_ENOMODULE;
	names_commit(name, m->hex, mc);
	return STORE_OK;
}

/*
 * The temporary tmp (open as fd), checked, becomes name durably: flushed,
 * renamed (never over a file of that name: commit files are immutable, so
 * the one there is the same), the directory flushed. tmp is "" once it is
 * renamed.
 */
static enum store_err file_keep(struct store *s, int fd, char *tmp,
				const char *name)
{
	enum store_err err;
	int e;

	err = fs_fsync(&s->fs, fd, "import.fsync");
	if (err)
		return err;
	e = fs_rename(&s->fs, tmp, name, 1);
	if (e && e != EEXIST)
		return fs_err(e);
	if (e == EEXIST)
		return STORE_OK; /* the temporary goes with its owner */
	tmp[0] = '\0';
	return fs_fsync_dir(&s->fs);
}

int store_commit_file_exists(struct store *s, const struct store_id *mod,
			     const struct store_id *mc)
{
	char name[NAME_LEN];

	if (commit_file_name(s, mod, mc, name))
		return 0;
	return fs_exists(&s->fs, name, NULL) == 1;
}

/*
 * The bytes of u checked to be the module commit mc of mod, with the
 * file's name into name; *there when that file is here already (it is
 * immutable: the one there is the same).
 */
static enum store_err upload_check(struct store *s, const struct store_id *mod,
				   const struct store_id *mc,
				   const struct store_upload *u,
				   char name[NAME_LEN], int *there)
{
	struct fs_map map = {0};
	struct store_id got;
	enum store_err err;

	*there = 0;
	err = commit_file_name(s, mod, mc, name);
	if (err)
		return err;
	if (fs_exists(&s->fs, name, NULL) == 1) {
		*there = 1;
		return STORE_OK;
	}
	if (u->err)
		return u->err;
	if (!u->tmp[0] || !u->len || u->len % STORE_PAGE_SIZE ||
	    u->len > s->max_module_size)
		return STORE_EINVAL;
	err = fs_map(&s->fs, u->tmp, &map);
	if (err)
		return err;
	store_memory_id(map.p, map.len, &got);
	fs_unmap(&map);
	return store_id_equal(&got, mc) ? STORE_OK : STORE_EMISMATCH;
}

enum store_err store_commit_file_import(struct store *s,
					const struct store_id *mod,
					const struct store_id *mc,
					struct store_upload *u)
{
	char name[NAME_LEN];
	enum store_err err;
	int there;

	err = upload_check(s, mod, mc, u, name, &there);
	if (err || there)
		return err;
	return file_keep(s, u->fd, u->tmp, name);
}

/* The checked upload u takes its name (its data flushed already). */
static enum store_err upload_name(struct store *s, const struct store_pair *p,
				  struct store_upload *u)
{
	char name[NAME_LEN];
	int e;

	names_commit(name, modules_find(s, &p->module)->hex, &p->commit);
	e = fs_rename(&s->fs, u->tmp, name, 1);
	if (e && e != EEXIST)
		return fs_err(e);
	if (!e)
		u->tmp[0] = '\0';
	return STORE_OK;
}

enum store_err store_commit_files_import(struct store *s, size_t n,
					 const struct store_pair *pairs,
					 struct store_upload **u,
					 enum store_err *errs)
{
	enum store_err err = STORE_OK, first = STORE_OK;
	char name[NAME_LEN];
	unsigned char *there = calloc(n ? n : 1, 1);
	size_t i, kept = 0;
	int t;

	if (!there)
		return STORE_ENOMEM;
	for (i = 0; i < n; i++) {
		errs[i] = upload_check(s, &pairs[i].module, &pairs[i].commit,
				       u[i], name, &t);
		there[i] = (unsigned char)t;
		kept += !errs[i] && !t;
	}
	/* one flush for every file's data, before any takes its name */
	if (kept)
		err = fs_sync(&s->fs, "import.sync");
	for (i = 0; i < n; i++) {
		if (!errs[i] && !there[i])
			errs[i] = err ? err : upload_name(s, &pairs[i], u[i]);
		if (errs[i] && !first)
			first = errs[i];
	}
	err = kept ? fs_fsync_dir(&s->fs) : STORE_OK;
	for (i = 0; err && i < n; i++)
		if (!errs[i] && !there[i])
			errs[i] = err; /* named, not durably */
	free(there);
	return first ? first : err;
}

/* --- a file patched from a local one ---------------------------------------
 */

struct store_patch {
	struct store *s;
	const struct module *m;
	char tmp[TMP_NAME_LEN]; /* "" once named */
	int fd;
	uint64_t size;
	size_t *changed, n; /* the pages written, ascending */
	struct tree *bt;    /* the base's tree when one was at hand */
	enum store_err err; /* the first failure of a write, then final */
};

/*
 * The page tree of (m, mc) if one is at hand, without reading the file:
 * the current state's, once built, or the tree cache's. A reference, or
 * NULL.
 */
static struct tree *tree_at_hand(struct store *s, const struct module *m,
				 const struct store_id *mc)
{
	const struct entry *e;
	struct state *st = state_current(s);
	struct tree *t = NULL;

	e = st ? state_find(st, &m->id) : NULL;
	if (e && store_id_equal(&e->mc, mc))
		t = state_entry_tree_ref(s, e);
	state_unref(st);
	return t ? t : treecache_get(&s->tc, &m->id, mc);
}

/* 1 when page is one of the ascending pages of p->changed. */
static int patch_changed(const struct store_patch *p, uint64_t page)
{
	size_t lo = 0, hi = p->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (p->changed[mid] == page)
			return 1;
		if (p->changed[mid] < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* 1 when page of the base is copied: not changed, not known to be zero. */
static int patch_keeps(const struct store_patch *p, uint64_t page)
{
	return !patch_changed(p, page) &&
	       (!p->bt ||
		!store_id_equal(&p->bt->lv[0][page], ids_zero_leaf()));
}

/*
 * Copy from base the pages below upto that p keeps, a run per call; the
 * others stay holes (zero) for the changed pages to be written into.
 */
static enum store_err patch_copy(struct store_patch *p, int base, uint64_t upto)
{
	uint64_t page, run;
	enum store_err err;

	for (page = 0; page < upto; page += run) {
		run = 1;
		if (!patch_keeps(p, page))
			continue;
		while (page + run < upto && patch_keeps(p, page + run))
			run++;
		err = fs_copy_bytes(&p->s->fs, base, p->fd,
				    page * STORE_PAGE_SIZE,
				    run * STORE_PAGE_SIZE);
		if (err)
			return err;
	}
	return STORE_OK;
}

/* p->changed: a copy of the n pages, ascending, unique, below pages. */
static enum store_err patch_pages(struct store_patch *p,
				  const uint64_t *changed, size_t n,
				  uint64_t pages)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (changed[i] >= pages || (i && changed[i] <= changed[i - 1]))
			return STORE_EINVAL;
	p->changed = malloc((n ? n : 1) * sizeof(*p->changed));
	if (!p->changed)
		return STORE_ENOMEM;
	for (i = 0; i < n; i++)
		p->changed[i] = (size_t)changed[i];
	p->n = n;
	return STORE_OK;
}

/* Open the base file of p (bfd, its size) and take its tree if at hand. */
static enum store_err patch_base(struct store_patch *p,
				 const struct store_id *mod,
				 const struct store_id *base, int *bfd,
				 uint64_t *bsize)
{
	char name[NAME_LEN];
	enum store_err err;

	err = commit_file_name(p->s, mod, base, name);
	if (err)
		return err;
	p->m = modules_find(p->s, mod);
	err = fs_open_ro(&p->s->fs, name, 1, bfd);
	if (!err)
		err = fs_size(*bfd, bsize);
	if (err)
		return err;
	p->bt = tree_at_hand(p->s, p->m, base);
	if (p->bt && p->bt->npages != *bsize / STORE_PAGE_SIZE) {
		tree_unref(p->bt);
		p->bt = NULL;
	}
	return STORE_OK;
}

enum store_err store_patch_new(struct store *s, const struct store_id *mod,
			       const struct store_id *base, uint64_t size,
			       const uint64_t *changed, size_t n,
			       struct store_patch **out)
{
	struct store_patch *p;
	uint64_t bsize = 0;
	enum store_err err;
	int bfd = -1;

	*out = NULL;
	if (!size || size % STORE_PAGE_SIZE || size > s->max_module_size)
		return STORE_EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return STORE_ENOMEM;
	p->s = s;
	p->fd = -1;
	p->size = size;
	err = patch_pages(p, changed, n, size / STORE_PAGE_SIZE);
	if (!err)
		err = patch_base(p, mod, base, &bfd, &bsize);
	if (!err)
		err = fs_tmp_create(&s->fs, p->tmp, &p->fd);
	if (!err)
		err = fs_truncate(&s->fs, p->fd, size, "patch.truncate");
	if (!err)
		err = patch_copy(
		    p, bfd, (bsize < size ? bsize : size) / STORE_PAGE_SIZE);
	if (bfd >= 0)
		fs_close_fd(bfd);
	if (err) {
		store_patch_free(p);
		return err;
	}
	*out = p;
	return STORE_OK;
}

enum store_err store_patch_write(struct store_patch *p, uint64_t off,
				 const void *buf, size_t len)
{
	uint64_t page;

	if (p->err || !len)
		return p->err;
	if (off > p->size || len > p->size - off)
		return p->err = STORE_EINVAL;
	/* only the changed pages: the others' leaves are the base's */
	for (page = off / STORE_PAGE_SIZE;
	     page <= (off + len - 1) / STORE_PAGE_SIZE; page++)
		if (!patch_changed(p, page))
			return p->err = STORE_EINVAL;
	p->err = fs_write(&p->s->fs, p->fd, buf, len, off, "patch.write");
	return p->err;
}

/*
 * The page tree of p's file. With the base's tree: that tree (checked
 * against its id when it was built, as a commit trusts its base's), the
 * leaves of the changed pages hashed from the file, zero leaves past the
 * base's end, which is what the file holds: the pages not changed were
 * copied from the base, or are holes where the base's are zero, and no
 * write reached them. Without it: the whole file read and hashed.
 */
static enum store_err patch_tree(struct store_patch *p, struct tree **out)
{
	unsigned char page[STORE_PAGE_SIZE];
	size_t npages = (size_t)(p->size / STORE_PAGE_SIZE), i;
	enum store_err err = STORE_OK;
	struct tree *t;

	if (!p->bt)
		return state_tree_from_fd(p->fd, npages, out);
	t = tree_copy(p->bt, npages);
	if (!t)
		return STORE_ENOMEM;
	for (i = 0; i < p->n && !err; i++) {
		err = fs_read(p->fd, page, sizeof(page),
			      (uint64_t)p->changed[i] * STORE_PAGE_SIZE);
		if (!err)
			ids_leaf_page(page, &t->lv[0][p->changed[i]]);
	}
	if (!err && tree_update(t, p->changed, p->n, npages != p->bt->npages))
		err = STORE_ENOMEM;
	if (err) {
		tree_unref(t);
		return err;
	}
	*out = t;
	return STORE_OK;
}

/* p's file checked to be mc: its tree into *t (caller unrefs). */
static enum store_err patch_check(struct store_patch *p,
				  const struct store_id *mc, struct tree **t)
{
	struct store_id root;
	enum store_err err;

	*t = NULL;
	if (p->err || !p->tmp[0])
		return p->err ? p->err : STORE_EINVAL;
	err = patch_tree(p, t);
	if (err)
		return err;
	tree_root(*t, &root);
	if (store_id_equal(&root, mc))
		return STORE_OK;
	tree_unref(*t);
	*t = NULL;
	return STORE_EMISMATCH;
}

enum store_err store_patch_import(struct store_patch *p,
				  const struct store_id *mc)
{
	struct tree *t = NULL;
	char name[NAME_LEN];
	enum store_err err;

	err = patch_check(p, mc, &t);
	if (err)
		return err;
	names_commit(name, p->m->hex, mc);
	err = file_keep(p->s, p->fd, p->tmp, name);
	/* the next patch of this module starts from this file */
	if (!err)
		treecache_add(&p->s->tc, &p->m->id, mc, t);
	tree_unref(t);
	return err;
}

enum store_err store_patches_import(struct store *s, size_t n,
				    struct store_patch **p,
				    const struct store_id *mc,
				    enum store_err *errs)
{
	enum store_err err = STORE_OK, first = STORE_OK;
	struct tree **t = calloc(n ? n : 1, sizeof(*t));
	char name[NAME_LEN];
	size_t i, kept = 0;
	int e;

	if (!t)
		return STORE_ENOMEM;
	for (i = 0; i < n; i++) {
		errs[i] = patch_check(p[i], &mc[i], &t[i]);
		kept += !errs[i];
	}
	/* one flush for every file's data, before any takes its name */
	if (kept)
		err = fs_sync(&s->fs, "import.sync");
	for (i = 0; i < n; i++) {
		if (!errs[i] && err)
			errs[i] = err;
		if (!errs[i]) {
			names_commit(name, p[i]->m->hex, &mc[i]);
			e = fs_rename(&s->fs, p[i]->tmp, name, 1);
			if (e && e != EEXIST)
				errs[i] = fs_err(e);
			else if (!e)
				p[i]->tmp[0] = '\0';
		}
		if (errs[i] && !first)
			first = errs[i];
	}
	err = kept ? fs_fsync_dir(&s->fs) : STORE_OK;
	for (i = 0; i < n; i++) {
		if (!errs[i] && err)
			errs[i] = err; /* named, not durably */
		if (!errs[i])
			treecache_add(&s->tc, &p[i]->m->id, &mc[i], t[i]);
		tree_unref(t[i]);
	}
	free(t);
	return first ? first : err;
}

void store_patch_free(struct store_patch *p)
{
	if (!p)
		return;
	if (p->tmp[0])
		fs_unlink(&p->s->fs, p->tmp);
	if (p->fd >= 0)
		fs_close_fd(p->fd);
	tree_unref(p->bt);
	free(p->changed);
	free(p);
}

enum store_err store_commit_add(struct store *s, const struct store_id *commit,
				const struct store_pair *pairs, size_t n)
{
	struct store_pair *sorted = NULL;
	struct store_id root;
	enum store_err err;
	size_t i;

	err = store_commits_ready(s);
	if (err)
		return err;
	err = store_state_id(pairs, n, &root);
	if (err)
		return err;
	if (!store_id_equal(&root, commit) || !n)
		return STORE_EMISMATCH;
	for (i = 0; i < n; i++)
		if (!store_commit_file_exists(s, &pairs[i].module,
					      &pairs[i].commit))
			return modules_find(s, &pairs[i].module)
				   ? STORE_ENOCOMMIT
				   : STORE_ENOMODULE;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return STORE_ENOMEM;
	memcpy(sorted, pairs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), ids_pair_cmp);
	pthread_mutex_lock(&s->lock);
	err = commits_add(&s->cs, commit, sorted, n, 0);
	pthread_mutex_unlock(&s->lock);
	free(sorted);
	return err;
}
