/*
 * proof.h - audit paths, their verification and the diff of two page
 * trees (pure: memory only). The public verification is in store.h
 * (store_proof_verify, store_page_proof_check).
 *
 * Trees are tree.h's, level by level with an odd last node promoted: node
 * j of level l covers leaves [j << l, min((j + 1) << l, npages)), which is
 * what lets two trees of different sizes be compared node by node.
 */
#ifndef STORE_PROOF_H
#define STORE_PROOF_H

#include "store.h"
#include "tree.h"

/*
 * The audit path PATH(index, D[npages]) of RFC 6962 section 2.1.1 in t,
 * nearest the leaf first, into path (room for STORE_PROOF_MAX_PATH); its
 * length. index < t->npages.
 */
size_t proof_path(const struct tree *t, size_t index, struct store_id *path);

/*
 * The pages to fetch to turn memory a into memory b: ascending indices of
 * the leaves of b beyond the end of a or different from a's, found by
 * descending only into nodes that differ. Appended to *pages (grown with
 * realloc; *n entries, *cap room) while *budget allows, each page taking
 * one from it. 0, -1 when out of memory, -2 when the budget is spent.
 */
int proof_diff(const struct tree *a, const struct tree *b, uint64_t **pages,
	       size_t *n, size_t *cap, uint64_t *budget);

/* Append the pages [first, end) in the same way. */
int proof_diff_range(uint64_t first, uint64_t end, uint64_t **pages, size_t *n,
		     size_t *cap, uint64_t *budget);

/* Bytes a tree takes in memory, for the tree cache's bound. */
uint64_t proof_tree_bytes(const struct tree *t);

#endif /* STORE_PROOF_H */
