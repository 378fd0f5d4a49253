/*
 * tree.h - the Merkle tree over a module's pages (pure: memory only).
 *
 * The tree is kept level by level, bottom-up, with an odd last node
 * promoted unchanged: that is the same tree as RFC 6962's split at the
 * largest power of two, and it lets one changed leaf be rehashed along its
 * path alone. Trees are immutable once shared (tree_ref()); a commit copies
 * its base's tree and updates the copy.
 */
#ifndef STORE_TREE_H
#define STORE_TREE_H

#include "store.h"

#include <stdatomic.h>

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
 * unique), or every inner node when all is set. -1 on allocation failure.
 */
int tree_update(struct tree *t, const size_t *dirty, size_t ndirty, int all);

void tree_root(const struct tree *t, struct store_id *out);
struct tree *tree_ref(struct tree *t);
void tree_unref(struct tree *t);

#endif /* STORE_TREE_H */
