/*
 * hash.h - ids and the page-level Merkle tree (internal to store/).
 *
 * H(x) = BLAKE2b-256(x); page leaf = H(0x00 || page); inner node =
 * H(0x01 || left || right); MTH as RFC 6962 section 2.1. The tree is kept
 * level by level, bottom-up, with an odd last node promoted unchanged: that
 * is the same tree as RFC 6962's split at the largest power of two, and it
 * lets one changed leaf be rehashed along its path alone.
 */
#ifndef STORE_HASH_H
#define STORE_HASH_H

#include "store.h"

#include <stdatomic.h>

void hash_leaf_page(const void *page, struct store_id *out);
void hash_node(const struct store_id *l, const struct store_id *r,
	       struct store_id *out);
void hash_empty(struct store_id *out);
void hash_module_leaf(const struct store_id *mod, const struct store_id *mc,
		      struct store_id *out);

/* MTH over n leaves; scratch is n ids of workspace (may alias leaves). */
void hash_mth(const struct store_id *leaves, size_t n, struct store_id *scratch,
	      struct store_id *out);

/* The leaf of an all-zero page. */
const struct store_id *hash_zero_leaf(void);

struct tree {
	atomic_int refs;
	size_t npages;
	unsigned int nlevels;	/* 0 when npages == 0 */
	size_t *len;		/* nodes per level */
	struct store_id **lv;	/* lv[0] = leaves ... lv[nlevels-1][0] = root */
	struct store_id *nodes; /* one block holding every level */
};

/* A tree whose leaves are all the zero page. NULL on allocation failure. */
struct tree *tree_new_zero(size_t npages);

/*
 * A tree of npages pages copying the leaves of old (which may be NULL or
 * smaller: the new leaves are the zero page). Inner nodes are copied when
 * the size is unchanged and left for tree_update() otherwise.
 */
struct tree *tree_copy(const struct tree *old, size_t npages);

/*
 * Recompute the inner nodes above the leaves listed in dirty (ascending,
 * unique), or every inner node when all is set.
 */
int tree_update(struct tree *t, const size_t *dirty, size_t ndirty, int all);

void tree_root(const struct tree *t, struct store_id *out);
struct tree *tree_ref(struct tree *t);
void tree_unref(struct tree *t);

#endif /* STORE_HASH_H */
