/*
 * state.h - states: which module commit each module has. A state is
 * immutable once made and shared by reference: the current state and every
 * session's base are states, and their files are never modified, so
 * whoever holds a reference reads them without a lock.
 */
#ifndef STORE_STATE_H
#define STORE_STATE_H

#include "modules.h"
#include "store.h"
#include "tree.h"

#include <stdatomic.h>

struct store;

/* One module with a module commit in a state. */
struct entry {
	struct module *mod;
	struct store_id mc;
	uint64_t size;
	struct tree *tree; /* NULL until needed; guarded by store.tree_lock */
};

/* The modules that have a module commit, sorted by id, and its root. */
struct state {
	atomic_int refs;
	size_t n;
	struct entry *e;
	struct store_id root;
	/*
	 * The Merkle tree over the module leaves whose root is root, while
	 * the state is current or being made: the next commit rehashes only
	 * the leaves it changes. Read and written under op_lock only; freed
	 * when the state stops being current.
	 */
	struct tree *rt;
};

struct state *state_new(size_t n);
struct state *state_ref(struct state *st);
void state_unref(struct state *st);
const struct entry *state_find(const struct state *st,
			       const struct store_id *mod);
/*
 * Compute st->root (and st->rt) from its entries. When ref (may be NULL)
 * has its tree and holds the same modules in the same order, only the
 * leaves whose module commit differs are rehashed, with their paths: a
 * commit's cost follows what it changed, not how many modules there are.
 * op_lock held.
 */
enum store_err state_compute_root(struct state *st, const struct state *ref);
/* Its pairs, sorted by module (caller frees *out). */
enum store_err state_pairs(const struct state *st, struct store_pair **out);

/*
 * The page tree of entry e, a reference: shared if built, else made from
 * its file and checked against its id (an all-zero memory's tree is made
 * without reading anything). Stored in e for the next caller.
 */
enum store_err state_entry_tree(struct store *s, struct entry *e,
				struct tree **out);
/*
 * The page tree of module commit mc of m, whose memory is size bytes:
 * hashed from its file MOD_MC (or made without reading for an all-zero
 * memory) and checked against mc (STORE_ECORRUPT). A missing file is
 * STORE_ENOCOMMIT with missing_ok, else STORE_ECORRUPT. Caller unrefs.
 */
enum store_err state_build_tree(struct store *s, const struct module *m,
				const struct store_id *mc, uint64_t size,
				int missing_ok, struct tree **out);
/*
 * The page tree of the npages pages of the open file fd, hashed whole
 * (nothing is checked: the caller compares its root). Caller unrefs.
 */
enum store_err state_tree_from_fd(int fd, size_t npages, struct tree **out);
/* The tree pointer of e, a reference or NULL, read under tree_lock. */
struct tree *state_entry_tree_ref(struct store *s, const struct entry *e);

/* An entry of m's initial memory: its id without a tree. */
void state_initial_entry(struct module *m, struct entry *e);

/* The current state, referenced (caller unrefs). */
struct state *state_current(struct store *s);
/* Make st current (a new reference is taken); the old one is dropped. */
void state_publish(struct store *s, struct state *st);

/*
 * A state of the given pairs: sizes from the commit files, trees shared
 * with the current state where the module commit is the same.
 */
enum store_err state_from_pairs(struct store *s, const struct store_pair *pairs,
				size_t n, struct state **out);

/* The state the _last_id files name, at open or after a failed switch. */
enum store_err state_load(struct store *s, struct state **out);

#endif /* STORE_STATE_H */
