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

enum store_err store_commit_file_import(struct store *s,
					const struct store_id *mod,
					const struct store_id *mc,
					struct store_upload *u)
{
	struct fs_map map = {0};
	struct store_id got;
	char name[NAME_LEN];
	enum store_err err;

	err = commit_file_name(s, mod, mc, name);
	if (err)
		return err;
	if (fs_exists(&s->fs, name, NULL) == 1)
		return STORE_OK; /* immutable: the one there is the same */
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
	if (!store_id_equal(&got, mc))
		return STORE_EMISMATCH;
	return file_keep(s, u->fd, u->tmp, name);
}

/* --- a file patched from a local one ---------------------------------------
 */

struct store_patch {
	struct store *s;
	const struct module *m;
	char tmp[TMP_NAME_LEN]; /* "" once named */
	int fd;
	uint64_t size;
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

/* 1 when page of the base is copied: not changed, not known to be zero. */
static int patch_keeps(const struct tree *bt, uint64_t page,
		       const uint64_t *changed, size_t n, size_t *k)
{
	while (*k < n && changed[*k] < page)
		(*k)++;
	if (*k < n && changed[*k] == page)
		return 0;
	return !bt || !store_id_equal(&bt->lv[0][page], ids_zero_leaf());
}

/*
 * Copy from base the pages below upto that p keeps, a run per call; the
 * others stay holes (zero) for the changed pages to be written into.
 */
static enum store_err patch_copy(struct store_patch *p, int base,
				 const struct tree *bt, uint64_t upto,
				 const uint64_t *changed, size_t n)
{
	uint64_t page, run;
	size_t k = 0, k2;
	enum store_err err;

	for (page = 0; page < upto; page += run) {
		run = 1;
		if (!patch_keeps(bt, page, changed, n, &k))
			continue;
		k2 = k;
		while (page + run < upto &&
		       patch_keeps(bt, page + run, changed, n, &k2))
			run++;
		err = fs_copy_bytes(&p->s->fs, base, p->fd,
				    page * STORE_PAGE_SIZE,
				    run * STORE_PAGE_SIZE);
		if (err)
			return err;
	}
	return STORE_OK;
}

/* 0 when changed is ascending, unique and below pages. */
static int pages_valid(const uint64_t *changed, size_t n, uint64_t pages)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (changed[i] >= pages || (i && changed[i] <= changed[i - 1]))
			return -1;
	return 0;
}

enum store_err store_patch_new(struct store *s, const struct store_id *mod,
			       const struct store_id *base, uint64_t size,
			       const uint64_t *changed, size_t n,
			       struct store_patch **out)
{
	struct store_patch *p;
	struct tree *bt = NULL;
	char name[NAME_LEN];
	uint64_t bsize = 0;
	enum store_err err;
	int bfd = -1;

	*out = NULL;
	if (!size || size % STORE_PAGE_SIZE || size > s->max_module_size ||
	    pages_valid(changed, n, size / STORE_PAGE_SIZE))
		return STORE_EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return STORE_ENOMEM;
	p->s = s;
	p->fd = -1;
	p->size = size;
	err = commit_file_name(s, mod, base, name);
	p->m = err ? NULL : modules_find(s, mod);
	if (!err)
		err = fs_open_ro(&s->fs, name, 1, &bfd);
	if (!err)
		err = fs_size(bfd, &bsize);
	if (!err)
		err = fs_tmp_create(&s->fs, p->tmp, &p->fd);
	if (!err)
		err = fs_truncate(&s->fs, p->fd, size, "patch.truncate");
	if (!err) {
		bt = tree_at_hand(s, p->m, base);
		if (bt && bt->npages != bsize / STORE_PAGE_SIZE) {
			tree_unref(bt);
			bt = NULL;
		}
		err = patch_copy(
		    p, bfd, bt, (bsize < size ? bsize : size) / STORE_PAGE_SIZE,
		    changed, n);
	}
	tree_unref(bt);
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
	if (p->err)
		return p->err;
	if (off > p->size || len > p->size - off)
		return p->err = STORE_EINVAL;
	if (len)
		p->err =
		    fs_write(&p->s->fs, p->fd, buf, len, off, "patch.write");
	return p->err;
}

enum store_err store_patch_import(struct store_patch *p,
				  const struct store_id *mc)
{
	struct store *s = p->s;
	struct store_id root;
	struct tree *t = NULL;
	char name[NAME_LEN];
	enum store_err err;

	if (p->err || !p->tmp[0])
		return p->err ? p->err : STORE_EINVAL;
	names_commit(name, p->m->hex, mc);
	/* the whole file is hashed: the copy is checked as well as the pages */
	err =
	    state_tree_from_fd(p->fd, (size_t)(p->size / STORE_PAGE_SIZE), &t);
	if (err)
		return err;
	tree_root(t, &root);
	err = store_id_equal(&root, mc) ? file_keep(s, p->fd, p->tmp, name)
					: STORE_EMISMATCH;
	/* the next patch of this module starts from this file */
	if (!err)
		treecache_put(&s->tc, &p->m->id, mc, t);
	tree_unref(t);
	return err;
}

void store_patch_free(struct store_patch *p)
{
	if (!p)
		return;
	if (p->tmp[0])
		fs_unlink(&p->s->fs, p->tmp);
	if (p->fd >= 0)
		fs_close_fd(p->fd);
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
