/*
 * tree.c - the Merkle tree over a module's pages, level by level.
 */
#include "tree.h"
#include "ids.h"

#include <stdlib.h>
#include <string.h>

static struct tree *tree_alloc(size_t npages)
{
	struct tree *t;
	size_t total = 0, n = npages;
	unsigned int levels = 0, i;

	while (n > 0) {
		total += n;
		levels++;
		if (n == 1)
			break;
		n = (n + 1) / 2;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	t->npages = npages;
	t->nlevels = levels;
	if (levels == 0)
		return t;
	t->len = calloc(levels, sizeof(*t->len));
	t->lv = calloc(levels, sizeof(*t->lv));
	t->nodes = calloc(total, sizeof(*t->nodes));
	if (!t->len || !t->lv || !t->nodes) {
		free(t->len);
		free(t->lv);
		free(t->nodes);
		free(t);
		return NULL;
	}
	n = npages;
	total = 0;
	for (i = 0; i < levels; i++) {
		t->len[i] = n;
		t->lv[i] = t->nodes + total;
		total += n;
		n = (n + 1) / 2;
	}
	return t;
}

struct tree *tree_new_zero(size_t npages)
{
	struct tree *t = tree_alloc(npages);
	size_t i;

	if (!t)
		return NULL;
	for (i = 0; i < npages; i++)
		t->lv[0][i] = *ids_zero_leaf();
	tree_update(t, NULL, 0, 1);
	return t;
}

struct tree *tree_copy(const struct tree *old, size_t npages)
{
	struct tree *t = tree_alloc(npages);
	size_t i, keep;

	if (!t)
		return NULL;
	keep = old ? (old->npages < npages ? old->npages : npages) : 0;
	if (old && old->npages == npages && npages > 0) {
		memcpy(t->nodes, old->nodes,
		       (size_t)(t->lv[t->nlevels - 1] - t->nodes + 1) *
			   sizeof(*t->nodes));
		return t;
	}
	if (keep)
		memcpy(t->lv[0], old->lv[0], keep * sizeof(*t->nodes));
	for (i = keep; i < npages; i++)
		t->lv[0][i] = *ids_zero_leaf();
	return t;
}

int tree_update(struct tree *t, const size_t *dirty, size_t ndirty, int all)
{
	size_t *cur = NULL, n, k, j;
	unsigned int l;

	if (t->nlevels == 0)
		return 0;
	if (all) {
		for (l = 0; l + 1 < t->nlevels; l++)
			ids_level_up(t->lv[l], t->len[l], t->lv[l + 1]);
		return 0;
	}
	if (ndirty == 0)
		return 0;
	cur = malloc(ndirty * sizeof(*cur));
	if (!cur)
		return -1;
	memcpy(cur, dirty, ndirty * sizeof(*cur));
	n = ndirty;
	for (l = 0; l + 1 < t->nlevels; l++) {
		const struct store_id *src = t->lv[l];
		struct store_id *dst = t->lv[l + 1];
		size_t m = 0;

		for (k = 0; k < n; k++) {
			j = cur[k] / 2;
			if (m > 0 && cur[m - 1] == j)
				continue;
			if (2 * j + 1 >= t->len[l])
				dst[j] = src[2 * j];
			else
				ids_node(&src[2 * j], &src[2 * j + 1], &dst[j]);
			cur[m++] = j;
		}
		n = m;
	}
	free(cur);
	return 0;
}

void tree_root(const struct tree *t, struct store_id *out)
{
	if (t->nlevels == 0)
		ids_empty(out);
	else
		*out = t->lv[t->nlevels - 1][0];
}

struct tree *tree_ref(struct tree *t)
{
	if (t)
		atomic_fetch_add(&t->refs, 1);
	return t;
}

void tree_unref(struct tree *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	free(t->len);
	free(t->lv);
	free(t->nodes);
	free(t);
}
