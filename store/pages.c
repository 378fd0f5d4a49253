/*
 * pages.c - what a commit says of its pages: the proof of one page
 * (store_page_proof) and the pages that differ between two commits
 * (store_commit_diff).
 *
 * Both need the page trees of module commits. A tree comes from, in
 * order: the current state (the tree a commit keeps up to date, or built
 * once from its file), the tree cache (treecache.c), or a rebuild that
 * hashes the commit file MOD_MC once and is then kept in the cache. A
 * rebuild reads and hashes the whole memory (about a second per GiB); a
 * proof or a diff with the trees at hand costs O(log pages) per page.
 */
#include "fs.h"
#include "ids.h"
#include "names.h"
#include "proof.h"
#include "state.h"
#include "store_internal.h"
#include "treecache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Index of mod among pairs (sorted by module), or SIZE_MAX. */
static size_t pair_index(const struct store_pair *pairs, size_t n,
			 const struct store_id *mod)
{
	struct store_pair key;
	const struct store_pair *p;

	if (!n)
		return SIZE_MAX;
	key.module = *mod;
	p = bsearch(&key, pairs, n, sizeof(*pairs), ids_pair_cmp);
	return p ? (size_t)(p - pairs) : SIZE_MAX;
}

enum store_err store_commit_module(struct store *s,
				   const struct store_id *commit,
				   const struct store_id *mod,
				   struct store_id *mc)
{
	struct store_pair *pairs = NULL;
	enum store_err err;
	size_t n = 0, k;

	err = store_commit_get(s, commit, &pairs, &n);
	if (err)
		return err;
	k = pair_index(pairs, n, mod);
	if (k == SIZE_MAX)
		err = STORE_ENOMODULE;
	else
		*mc = pairs[k].commit;
	free(pairs);
	return err;
}

/* The module of a commit's pair: deployed, or the store is corrupt. */
static enum store_err pair_module(struct store *s, const struct store_id *mod,
				  struct module **m)
{
	*m = modules_find(s, mod);
	return *m ? STORE_OK : STORE_ECORRUPT;
}

/*
 * The size of the commit file of (m, mc). Gone (a delete and gc since the
 * commit was looked up): STORE_ENOCOMMIT.
 */
static enum store_err commit_file_size(struct store *s, const struct module *m,
				       const struct store_id *mc,
				       uint64_t *size)
{
	char name[NAME_LEN];
	int x;

	names_commit(name, m->hex, mc);
	x = fs_exists(&s->fs, name, size);
	if (x == 1)
		return STORE_OK;
	return x == 0 ? STORE_ENOCOMMIT : fs_err(errno);
}

/*
 * The page tree of module commit mc of m (size bytes), a reference: the
 * current state's, the cache's, or rebuilt from the commit file and cached.
 * With keep, a current state's tree is put in the cache too: a diff from a
 * commit to the next is asked again once the next one is current (a
 * cluster's follower asks it of every commit), and would otherwise hash
 * the older file, whose tree went with its state.
 */
static enum store_err page_tree(struct store *s, const struct module *m,
				const struct store_id *mc, uint64_t size,
				int keep, struct tree **out)
{
	const struct entry *ce;
	struct state *st;
	struct tree *t;
	enum store_err err = STORE_OK;

	*out = NULL;
	st = state_current(s);
	ce = st ? state_find(st, &m->id) : NULL;
	if (ce && store_id_equal(&ce->mc, mc)) {
		err = state_entry_tree(s, &st->e[ce - st->e], out);
		state_unref(st);
		/* shared, not copied: it outlives its state in the cache */
		if (!err && keep)
			treecache_add(&s->tc, &m->id, mc, *out);
		return err;
	}
	state_unref(st);
	t = treecache_get(&s->tc, &m->id, mc);
	if (!t) {
		/* one rebuild at a time; the one before may have been ours */
		pthread_mutex_lock(&s->tc.build_lock);
		t = treecache_get(&s->tc, &m->id, mc);
		if (!t) {
			err = state_build_tree(s, m, mc, size, 1, &t);
			if (!err)
				treecache_put(&s->tc, &m->id, mc, t);
		}
		pthread_mutex_unlock(&s->tc.build_lock);
	}
	if (!err && t->npages != size / STORE_PAGE_SIZE)
		err = STORE_ECORRUPT;
	if (err) {
		tree_unref(t);
		return err;
	}
	*out = t;
	return STORE_OK;
}

/* --- the proof of a page -------------------------------------------------- */

/* PATH(k, D[n]) over the module leaves of pairs; checked against commit. */
static enum store_err module_path(const struct store_pair *pairs, size_t n,
				  size_t k, const struct store_id *commit,
				  struct store_page_proof *out)
{
	struct tree *t = tree_copy(NULL, n);
	struct store_id root;
	size_t i;

	if (!t)
		return STORE_ENOMEM;
	for (i = 0; i < n; i++)
		ids_module_leaf(&pairs[i].module, &pairs[i].commit,
				&t->lv[0][i]);
	tree_update(t, NULL, 0, 1);
	tree_root(t, &root);
	out->module_index = k;
	out->module_count = n;
	out->module_path_len = proof_path(t, k, out->module_path);
	tree_unref(t);
	/* the commits store holds what its ids say */
	return store_id_equal(&root, commit) ? STORE_OK : STORE_ECORRUPT;
}

enum store_err store_page_proof(struct store *s, const struct store_id *commit,
				const struct store_id *mod, uint64_t index,
				struct store_page_proof *out)
{
	struct store_pair *pairs = NULL;
	struct module *m = NULL;
	struct tree *t = NULL;
	enum store_err err;
	char name[NAME_LEN];
	uint64_t size = 0;
	size_t n = 0, k;
	int fd = -1;

	err = store_commit_get(s, commit, &pairs, &n);
	if (err)
		goto out;
	k = pair_index(pairs, n, mod);
	if (k == SIZE_MAX) {
		err = STORE_ENOMODULE;
		goto out;
	}
	err = pair_module(s, mod, &m);
	if (err)
		goto out;
	out->commit = *commit;
	out->module = *mod;
	out->module_commit = pairs[k].commit;
	/* commit files are never modified: read without a lock */
	names_commit(name, m->hex, &pairs[k].commit);
	err = fs_open_ro(&s->fs, name, 1, &fd);
	if (!err)
		err = fs_size(fd, &size);
	if (err)
		goto out;
	out->page_count = size / STORE_PAGE_SIZE;
	out->page_index = index;
	if (index >= out->page_count) {
		err = STORE_ERANGE;
		goto out;
	}
	err = page_tree(s, m, &pairs[k].commit, size, 0, &t);
	if (!err)
		err = fs_read(fd, out->page, STORE_PAGE_SIZE,
			      index * STORE_PAGE_SIZE);
	if (err)
		goto out;
	/*
	 * The page is not hashed again here: the commit file was checked
	 * against its name when its tree was built, and a page damaged on
	 * disk since makes a proof that fails the client's check, which is
	 * what a proof is for (hashing it took a quarter of a proof's time).
	 */
	out->page_path_len = proof_path(t, (size_t)index, out->page_path);
	err = module_path(pairs, n, k, commit, out);
out:
	if (fd >= 0)
		fs_close_fd(fd);
	tree_unref(t);
	free(pairs);
	return err;
}

/* --- the diff of two commits ---------------------------------------------- */

static enum store_err diff_rc(int rc)
{
	return rc == 0 ? STORE_OK : rc == -1 ? STORE_ENOMEM : STORE_ETOOBIG;
}

/* Sizes and, with pages, the pages of one module of a diff. */
static enum store_err diff_module(struct store *s, struct store_diff_module *d,
				  int pages, uint64_t *budget)
{
	struct tree *ta = NULL, *tb = NULL;
	struct module *m;
	enum store_err err;
	size_t cap = 0;

	err = pair_module(s, &d->module, &m);
	if (!err && d->has_from)
		err = commit_file_size(s, m, &d->from, &d->size_from);
	if (!err && d->has_to)
		err = commit_file_size(s, m, &d->to, &d->size_to);
	if (err || !pages || !d->has_to)
		return err;
	if (!d->has_from)
		return diff_rc(proof_diff_range(0, d->size_to / STORE_PAGE_SIZE,
						&d->pages, &d->npages, &cap,
						budget));
	err = page_tree(s, m, &d->from, d->size_from, 1, &ta);
	if (!err)
		err = page_tree(s, m, &d->to, d->size_to, 1, &tb);
	if (!err)
		err = diff_rc(
		    proof_diff(ta, tb, &d->pages, &d->npages, &cap, budget));
	tree_unref(ta);
	tree_unref(tb);
	return err;
}

enum store_err store_commit_diff(struct store *s, const struct store_id *from,
				 const struct store_id *to, int pages,
				 struct store_diff *out)
{
	struct store_pair *a = NULL, *b = NULL;
	size_t na = 0, nb = 0, i = 0, j = 0;
	uint64_t budget = s->max_diff_pages;
	struct store_diff_module *d;
	enum store_err err;
	int c;

	memset(out, 0, sizeof(*out));
	err = store_commit_get(s, from, &a, &na);
	if (!err)
		err = store_commit_get(s, to, &b, &nb);
	if (err)
		goto out;
	out->m = calloc(na + nb ? na + nb : 1, sizeof(*out->m));
	if (!out->m) {
		err = STORE_ENOMEM;
		goto out;
	}
	/* both lists are sorted by module: merge them */
	while (!err && (i < na || j < nb)) {
		c = i == na ? 1
		    : j == nb
			? -1
			: memcmp(a[i].module.b, b[j].module.b, STORE_ID_BYTES);
		if (c == 0 && store_id_equal(&a[i].commit, &b[j].commit)) {
			i++;
			j++;
			continue;
		}
		d = &out->m[out->n++];
		d->module = c <= 0 ? a[i].module : b[j].module;
		if (c <= 0) {
			d->has_from = 1;
			d->from = a[i++].commit;
		}
		if (c >= 0) {
			d->has_to = 1;
			d->to = b[j++].commit;
		}
		err = diff_module(s, d, pages, &budget);
		out->total_pages += d->npages;
	}
out:
	free(a);
	free(b);
	if (err)
		store_diff_release(out);
	return err;
}

void store_diff_release(struct store_diff *d)
{
	size_t i;

	for (i = 0; d->m && i < d->n; i++)
		free(d->m[i].pages);
	free(d->m);
	memset(d, 0, sizeof(*d));
}

void store_tree_cache_stats(struct store *s, struct store_tree_cache_stats *st)
{
	treecache_stats(&s->tc, st);
}
