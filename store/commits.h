/*
 * commits.h - the commits store in memory: commit -> {module -> module
 * commit}, in insertion order with a hash index.
 *
 * What commits have in common is kept once, so a commit costs memory in
 * proportion to the modules it changed:
 *
 *  - every distinct (module, module commit) pair is interned once in a
 *    table of slots (struct commits_pairs), and commits hold 4-byte slot
 *    numbers;
 *  - a commit is either a snapshot (all its slots, ordered by module) or a
 *    delta against the commit inserted before it (its base): the slots
 *    that differ and the modules it no longer holds. A chain of deltas is
 *    at most COMMITS_MAX_DEPTH long; then, or when a delta would not be
 *    small, the commit is a snapshot.
 *
 * An entry taken out of the store (a delete) stays in memory while a later
 * delta is based on it; its pairs then no longer count as needed. Each slot
 * counts the commits of the store whose pairs hold it (live: what gc asks)
 * and the entries' arrays that name it (arr: its lifetime).
 *
 * Every function here is called with store.lock held.
 */
#ifndef STORE_COMMITS_H
#define STORE_COMMITS_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

#define COMMITS_MAX_DEPTH 32
#define COMMITS_DEL	  0x80000000u /* a delta item: the module is gone */

struct commits_entry {
	struct store_id id;
	struct commits_entry *base; /* NULL: a snapshot */
	uint32_t
	    *d; /* snapshot: n slots by module; delta: nd items by module */
	struct store_pair *full; /* from _new until _insert: the pairs */
	uint32_t n, nd, depth;
	uint32_t refs; /* 1 while in the store, +1 per delta based on it */
	unsigned in_store : 1;
	unsigned persisted : 1; /* the file `commits` holds it */
};

struct commits_pairs {
	struct store_pair *v;
	uint32_t *arr, *live, *freev;
	size_t used, cap, nfree;
	uint32_t *hash; /* open addressing: slot + 1, 0 = empty */
	size_t hcap;
};

struct commits {
	struct commits_entry **v; /* insertion order */
	size_t n, cap;
	size_t *index; /* open addressing over v, SIZE_MAX = empty */
	size_t index_cap;
	struct commits_pairs p;
	/* the last inserted entry and its slots: the base of the next delta */
	struct commits_entry *tail;
	uint32_t *tail_ix;
	int tail_owned;
};

/* A reader's place: the pairs of the last entry it read (see _cursor). */
struct commits_cursor {
	struct commits_entry *last; /* a reference */
	uint32_t *ix, *tmp;
	size_t n, cap;
	struct store_pair *pairs;
	size_t pcap;
};

void commits_release(struct commits *cs);
const struct commits_entry *commits_find(const struct commits *cs,
					 const struct store_id *id);
/* Room for one more commit of n pairs: commits_insert() then cannot fail. */
enum store_err commits_reserve(struct commits *cs, size_t n);
/* A commit entry holding a copy of pairs (sorted by module); no lock. */
struct commits_entry *commits_entry_new(const struct store_id *id,
					const struct store_pair *pairs,
					size_t n);
/* Free an entry that was not inserted; NULL is a no-op; no lock. */
void commits_entry_free(struct commits_entry *c);
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
/* The module commit of mod in commit id: ENOCOMMIT, ENOMODULE. */
enum store_err commits_member(const struct commits *cs,
			      const struct store_id *id,
			      const struct store_id *mod, struct store_id *mc);
/*
 * The ids of the commits, oldest first (caller frees *ids); with
 * unpersisted, only those the file `commits` does not hold.
 */
enum store_err commits_ids(const struct commits *cs, int unpersisted,
			   struct store_id **ids, size_t *n);
/* Mark commit id held by the file `commits` (when still there). */
void commits_set_persisted(struct commits *cs, const struct store_id *id,
			   int persisted);
/*
 * The pairs of entry c (valid until the next call or the release), fast
 * when c is based on the entry read before. ENOMEM.
 */
enum store_err commits_cursor_pairs(struct commits *cs,
				    struct commits_cursor *cur,
				    const struct commits_entry *c,
				    const struct store_pair **pairs, size_t *n);
void commits_cursor_release(struct commits *cs, struct commits_cursor *cur);
/*
 * Take commit id out of the store; its pairs (caller frees) or ENOCOMMIT,
 * ENOMEM (then nothing changed). O(commits): the index is rebuilt.
 */
enum store_err commits_remove(struct commits *cs, const struct store_id *id,
			      struct store_pair **pairs, size_t *n);
/* 1 when a commit of the store holds p. */
int commits_holds(const struct commits *cs, const struct store_pair *p);
/* Bytes the store holds in memory (entries, slots, indexes). */
uint64_t commits_memory(const struct commits *cs);

#endif /* STORE_COMMITS_H */
