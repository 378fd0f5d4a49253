/*
 * hash.c - ids and the page-level Merkle tree.
 */
#include "hash.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void hash_leaf_page(const void *page, struct store_id *out)
{
	static const unsigned char zero = 0x00;
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, STORE_ID_BYTES);
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, page, STORE_PAGE_SIZE);
	crypto_generichash_final(&st, out->b, STORE_ID_BYTES);
}

void hash_node(const struct store_id *l, const struct store_id *r,
	       struct store_id *out)
{
	unsigned char buf[1 + 2 * STORE_ID_BYTES];

	buf[0] = 0x01;
	memcpy(buf + 1, l->b, STORE_ID_BYTES);
	memcpy(buf + 1 + STORE_ID_BYTES, r->b, STORE_ID_BYTES);
	crypto_generichash(out->b, STORE_ID_BYTES, buf, sizeof(buf), NULL, 0);
}

void hash_empty(struct store_id *out)
{
	crypto_generichash(out->b, STORE_ID_BYTES, NULL, 0, NULL, 0);
}

void hash_module_leaf(const struct store_id *mod, const struct store_id *mc,
		      struct store_id *out)
{
	unsigned char buf[1 + 2 * STORE_ID_BYTES];

	buf[0] = 0x00;
	memcpy(buf + 1, mod->b, STORE_ID_BYTES);
	memcpy(buf + 1 + STORE_ID_BYTES, mc->b, STORE_ID_BYTES);
	crypto_generichash(out->b, STORE_ID_BYTES, buf, sizeof(buf), NULL, 0);
}

const struct store_id *hash_zero_leaf(void)
{
	/* H(0x00 || 4096 zero bytes), fixed by hashing.md */
	static const struct store_id zl = {
	    {0x10, 0xE1, 0x7C, 0x01, 0x82, 0x97, 0x66, 0x1C, 0xC0, 0x4C, 0x84,
	     0x7E, 0x5A, 0x79, 0xBA, 0x3F, 0x91, 0xE1, 0x8D, 0xF2, 0x16, 0x76,
	     0x40, 0x88, 0x7F, 0x4F, 0x75, 0x70, 0x8C, 0xDE, 0x0D, 0x17}};
	return &zl;
}

/* One level up: n nodes of src into (n + 1) / 2 nodes of dst. */
static size_t level_up(const struct store_id *src, size_t n,
		       struct store_id *dst)
{
	size_t j, m = (n + 1) / 2;

	for (j = 0; j < m; j++) {
		if (2 * j + 1 >= n)
			dst[j] = src[2 * j];
		else if (src != dst && j > 0 &&
			 !memcmp(&src[2 * j], &src[2 * j - 2],
				 2 * sizeof(*src)))
			dst[j] = dst[j - 1]; /* same pair, same parent */
		else
			hash_node(&src[2 * j], &src[2 * j + 1], &dst[j]);
	}
	return m;
}

void hash_mth(const struct store_id *leaves, size_t n, struct store_id *scratch,
	      struct store_id *out)
{
	if (n == 0) {
		hash_empty(out);
		return;
	}
	if (n == 1) {
		*out = leaves[0];
		return;
	}
	n = level_up(leaves, n, scratch);
	while (n > 1)
		n = level_up(scratch, n, scratch);
	*out = scratch[0];
}

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
		t->lv[0][i] = *hash_zero_leaf();
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
		t->lv[0][i] = *hash_zero_leaf();
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
			level_up(t->lv[l], t->len[l], t->lv[l + 1]);
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
				hash_node(&src[2 * j], &src[2 * j + 1],
					  &dst[j]);
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
		hash_empty(out);
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
