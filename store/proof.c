/*
 * proof.c - audit paths, RFC 9162 inclusion verification, and the diff of
 * two page trees. Pure: no state, no I/O, safe from any thread.
 */
#include "proof.h"
#include "ids.h"

#include <stdlib.h>
#include <string.h>

size_t proof_path(const struct tree *t, size_t index, struct store_id *path)
{
	size_t n = 0, j = index, sib;
	unsigned int l;

	/* level l's sibling of the path, unless the node was promoted */
	for (l = 0; l + 1 < t->nlevels && n < STORE_PROOF_MAX_PATH; l++) {
		sib = j ^ 1;
		if (sib < t->len[l])
			path[n++] = t->lv[l][sib];
		j >>= 1;
	}
	return n;
}

int store_proof_verify(uint64_t index, uint64_t count,
		       const struct store_id *leaf, const struct store_id *path,
		       size_t n, const struct store_id *root)
{
	struct store_id r;
	uint64_t fn, sn;
	size_t i;

	if (index >= count)
		return 0;
	fn = index;
	sn = count - 1;
	r = *leaf;
	for (i = 0; i < n; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			ids_node(&path[i], &r, &r);
			if (!(fn & 1))
				while (fn && !(fn & 1)) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			ids_node(&r, &path[i], &r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && store_id_equal(&r, root);
}

void store_page_leaf(const void *page, struct store_id *out)
{
	ids_leaf_page(page, out);
}

void store_module_leaf(const struct store_id *mod, const struct store_id *mc,
		       struct store_id *out)
{
	ids_module_leaf(mod, mc, out);
}

enum store_err store_page_proof_check(const struct store_page_proof *p,
				      int *step)
{
	struct store_id leaf;
	int bad = 0;

	store_page_leaf(p->page, &leaf);
	if (!store_proof_verify(p->page_index, p->page_count, &leaf,
				p->page_path, p->page_path_len,
				&p->module_commit))
		bad = 1;
	if (!bad) {
		ids_module_leaf(&p->module, &p->module_commit, &leaf);
		if (!store_proof_verify(p->module_index, p->module_count, &leaf,
					p->module_path, p->module_path_len,
					&p->commit))
			bad = 2;
	}
	if (step)
		*step = bad;
	return bad ? STORE_EMISMATCH : STORE_OK;
}

/* --- diff ----------------------------------------------------------------- */

struct diff_out {
	uint64_t **pages;
	size_t *n, *cap;
	uint64_t *budget;
};

static int diff_push(struct diff_out *o, uint64_t page)
{
	uint64_t *p;
	size_t cap;

	if (*o->budget == 0)
		return -2;
	if (*o->n == *o->cap) {
		cap = *o->cap ? *o->cap * 2 : 64;
		p = realloc(*o->pages, cap * sizeof(*p));
		if (!p)
			return -1;
		*o->pages = p;
		*o->cap = cap;
	}
	(*o->pages)[(*o->n)++] = page;
	(*o->budget)--;
	return 0;
}

int proof_diff_range(uint64_t first, uint64_t end, uint64_t **pages, size_t *n,
		     size_t *cap, uint64_t *budget)
{
	struct diff_out o = {pages, n, cap, budget};
	uint64_t i;
	int rc;

	if (end > first && end - first > *budget)
		return -2;
	for (i = first; i < end; i++)
		if ((rc = diff_push(&o, i)))
			return rc;
	return 0;
}

/* The end of the leaves node (l, j) covers in a tree of n leaves. */
static uint64_t node_end(unsigned int l, uint64_t j, uint64_t n)
{
	uint64_t end = (j + 1) << l;

	return end < n ? end : n;
}

/* Node (l, j) of t, or NULL when t has no such node. */
static const struct store_id *node_at(const struct tree *t, unsigned int l,
				      uint64_t j)
{
	if (l >= t->nlevels || j >= t->len[l])
		return NULL;
	return &t->lv[l][j];
}

/* The differing leaves below (l, j) within the first m leaves. */
static int diff_walk(const struct tree *a, const struct tree *b, unsigned int l,
		     uint64_t j, uint64_t m, struct diff_out *o)
{
	const struct store_id *x = node_at(a, l, j), *y = node_at(b, l, j);
	int rc;

	/* the same leaves under the same hash: nothing below differs */
	if (x && y && node_end(l, j, a->npages) == node_end(l, j, b->npages) &&
	    store_id_equal(x, y))
		return 0;
	if (l == 0)
		return diff_push(o, j);
	rc = diff_walk(a, b, l - 1, 2 * j, m, o);
	if (!rc && ((2 * j + 1) << (l - 1)) < m)
		rc = diff_walk(a, b, l - 1, 2 * j + 1, m, o);
	return rc;
}

int proof_diff(const struct tree *a, const struct tree *b, uint64_t **pages,
	       size_t *n, size_t *cap, uint64_t *budget)
{
	struct diff_out o = {pages, n, cap, budget};
	uint64_t m = a->npages < b->npages ? a->npages : b->npages;
	unsigned int top = a->nlevels > b->nlevels ? a->nlevels : b->nlevels;
	int rc = 0;

	if (m > 0)
		rc = diff_walk(a, b, top - 1, 0, m, &o);
	if (!rc && b->npages > a->npages)
		rc = proof_diff_range(a->npages, b->npages, pages, n, cap,
				      budget);
	return rc;
}

uint64_t proof_tree_bytes(const struct tree *t)
{
	uint64_t bytes = sizeof(*t);
	unsigned int l;

	for (l = 0; l < t->nlevels; l++)
		bytes += t->len[l] * sizeof(struct store_id) + sizeof(*t->len) +
			 sizeof(*t->lv);
	return bytes;
}
