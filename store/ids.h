/*
 * ids.h - the hashes every id is made of, and the ids' text form (pure: no
 * state, no I/O). The public id functions are declared in store.h.
 *
 * H(x) = BLAKE2b-256(x); page leaf = H(0x00 || page); module leaf =
 * H(0x00 || module || module commit); inner node = H(0x01 || left ||
 * right); MTH as RFC 6962 section 2.1 (hashing.md).
 */
#ifndef STORE_IDS_H
#define STORE_IDS_H

#include "store.h"

#include <sodium.h>

void ids_leaf_page(const void *page, struct store_id *out);
/* The module id H(code) of code given in pieces: begin, add..., end. */
void ids_code_begin(crypto_generichash_state *st);
void ids_code_add(crypto_generichash_state *st, const void *code, size_t len);
void ids_code_end(crypto_generichash_state *st, struct store_id *out);

void ids_node(const struct store_id *l, const struct store_id *r,
	      struct store_id *out);
void ids_empty(struct store_id *out);
void ids_module_leaf(const struct store_id *mod, const struct store_id *mc,
		     struct store_id *out);

/* The leaf of an all-zero page. */
const struct store_id *ids_zero_leaf(void);

/*
 * One level of the tree up: n nodes of src into (n + 1) / 2 nodes of dst
 * (which may be src); an odd last node is promoted unchanged. The count.
 */
size_t ids_level_up(const struct store_id *src, size_t n, struct store_id *dst);

/* MTH over n leaves; scratch is n ids of workspace (may alias leaves). */
void ids_mth(const struct store_id *leaves, size_t n, struct store_id *scratch,
	     struct store_id *out);

/* MTH of npages all-zero pages, in O(log npages) without a tree. */
void ids_zero_root(uint64_t npages, struct store_id *out);

/* Order of pairs by module id, for qsort() and bsearch(). */
int ids_pair_cmp(const void *a, const void *b);

/* 1 if p holds n uppercase hex digits. */
int ids_is_upper_hex(const char *p, size_t n);

#endif /* STORE_IDS_H */
