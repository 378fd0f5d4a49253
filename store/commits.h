/*
 * commits.h - the commits store in memory: commit -> {module -> module
 * commit}, in insertion order with a hash index. Entries are immutable and
 * live as long as the store: a reader may keep a pointer to one after
 * letting go of store.lock. Every function here is called with store.lock
 * held.
 */
#ifndef STORE_COMMITS_H
#define STORE_COMMITS_H

#include "store.h"

#include <stddef.h>

struct commits_entry {
	struct store_id id;
	size_t n;
	struct store_pair *pairs; /* sorted by module id */
};

struct commits {
	struct commits_entry **v; /* insertion order */
	size_t n, cap;
	size_t *index; /* open addressing over v, SIZE_MAX = empty */
	size_t index_cap;
};

void commits_release(struct commits *cs);
const struct commits_entry *commits_find(const struct commits *cs,
					 const struct store_id *id);
/* Room for one more commit: commits_insert() then cannot fail. */
enum store_err commits_reserve(struct commits *cs);
/* A commit entry holding a copy of pairs (sorted by module). */
struct commits_entry *commits_entry_new(const struct store_id *id,
					const struct store_pair *pairs,
					size_t n);
void commits_entry_free(struct commits_entry *c);
/* Insert c after commits_reserve(); cs owns it (freed if id is known). */
void commits_insert(struct commits *cs, struct commits_entry *c);
/* Add a copy of pairs (sorted by module) under id unless already there. */
enum store_err commits_add(struct commits *cs, const struct store_id *id,
			   const struct store_pair *pairs, size_t n);
/* A copy of the pairs of commit id (caller frees *pairs); ENOCOMMIT. */
enum store_err commits_get_pairs(const struct commits *cs,
				 const struct store_id *id,
				 struct store_pair **pairs, size_t *n);
/*
 * The entries as they are now, oldest first: a copy of the pointers
 * (caller frees *out), to be read without the lock.
 */
enum store_err commits_snapshot(const struct commits *cs,
				const struct commits_entry ***out, size_t *n);

#endif /* STORE_COMMITS_H */
