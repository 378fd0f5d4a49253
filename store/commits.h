/*
 * commits.h - the commits store in memory: commit -> {module -> module
 * commit}, in insertion order with a hash index. Entries are immutable and
 * counted: a reader that took a reference (commits_snapshot) keeps one
 * after letting go of store.lock, and after a delete. Every function here
 * but commits_entry_unref() is called with store.lock held.
 */
#ifndef STORE_COMMITS_H
#define STORE_COMMITS_H

#include "store.h"

#include <stdatomic.h>
#include <stddef.h>

struct commits_entry {
	atomic_int refs;
	atomic_int persisted; /* the file `commits` holds it */
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
/* Drop a reference; the last one frees c. NULL is a no-op. */
void commits_entry_unref(struct commits_entry *c);
/* Insert c after commits_reserve(); cs owns it (freed if id is known). */
void commits_insert(struct commits *cs, struct commits_entry *c);
/*
 * Add a copy of pairs (sorted by module) under id unless already there;
 * with persisted, the entry (new or not) is marked held by the file.
 */
enum store_err commits_add(struct commits *cs, const struct store_id *id,
			   const struct store_pair *pairs, size_t n,
			   int persisted);
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
/* Drop the references of a snapshot and free it (no lock needed). */
void commits_snapshot_release(const struct commits_entry **v, size_t n);
/*
 * Take commit id out of the store; the entry (a reference, caller unrefs)
 * or NULL when unknown. O(commits): the order and the index are rebuilt.
 */
struct commits_entry *commits_remove(struct commits *cs,
				     const struct store_id *id);

#endif /* STORE_COMMITS_H */
