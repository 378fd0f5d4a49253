/*
 * treecache.h - page trees of module commits that are not the current
 * state's, kept for proofs and diffs under a bound in bytes
 * (store_options.tree_cache_size), least recently used out first.
 *
 * A tree is keyed by (module, module commit) and immutable, so a reader
 * holds a reference and needs no lock; an evicted tree lives on until its
 * last reader lets go. Rebuilds are made one at a time (build_lock), so
 * that a burst of requests for an old commit hashes its file once and the
 * memory of trees being built is one tree at most.
 */
#ifndef STORE_TREECACHE_H
#define STORE_TREECACHE_H

#include "store.h"
#include "tree.h"

#include <pthread.h>
#include <stdint.h>

/*
 * Trees kept at most, whatever their bytes: a lookup scans the entries, so
 * this bounds its cost (about 40 us) when the trees are many and small.
 */
#define TREECACHE_MAX_ENTRIES 4096

struct tree_cache_entry {
	struct store_id mod, mc;
	struct tree *tree; /* a reference */
	uint64_t bytes;
	uint64_t used; /* tick of the last use */
};

struct tree_cache {
	pthread_mutex_t lock;	    /* the fields below */
	pthread_mutex_t build_lock; /* one rebuild at a time */
	uint64_t limit, bytes, tick;
	uint64_t builds, hits;
	struct tree_cache_entry *v;
	size_t n, cap;
};

void treecache_init(struct tree_cache *tc, uint64_t limit);
void treecache_release(struct tree_cache *tc);

/* The tree of (mod, mc), a reference, or NULL. */
struct tree *treecache_get(struct tree_cache *tc, const struct store_id *mod,
			   const struct store_id *mc);

/*
 * Keep t (a new reference is taken) as the tree of (mod, mc), evicting the
 * least recently used trees to stay within the limit and within
 * TREECACHE_MAX_ENTRIES. A tree larger than
 * the whole limit is not kept. Counts a build.
 */
void treecache_put(struct tree_cache *tc, const struct store_id *mod,
		   const struct store_id *mc, struct tree *t);
/*
 * The same without counting a build: a tree that was not rebuilt from its
 * file (one a diff used from the current state, one a patch computed).
 */
void treecache_add(struct tree_cache *tc, const struct store_id *mod,
		   const struct store_id *mc, struct tree *t);

void treecache_stats(struct tree_cache *tc, struct store_tree_cache_stats *st);

#endif /* STORE_TREECACHE_H */
