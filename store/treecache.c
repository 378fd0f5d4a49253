/*
 * treecache.c - the bounded cache of page trees of module commits.
 */
#include "treecache.h"
#include "proof.h"

#include <stdlib.h>
#include <string.h>

void treecache_init(struct tree_cache *tc, uint64_t limit)
{
	memset(tc, 0, sizeof(*tc));
	tc->limit = limit;
	pthread_mutex_init(&tc->lock, NULL);
	pthread_mutex_init(&tc->build_lock, NULL);
}

void treecache_release(struct tree_cache *tc)
{
	size_t i;

	for (i = 0; i < tc->n; i++)
		tree_unref(tc->v[i].tree);
	free(tc->v);
	tc->v = NULL;
	tc->n = tc->cap = 0;
	pthread_mutex_destroy(&tc->lock);
	pthread_mutex_destroy(&tc->build_lock);
}

static size_t find_locked(const struct tree_cache *tc,
			  const struct store_id *mod, const struct store_id *mc)
{
	size_t i;

	for (i = 0; i < tc->n; i++)
		if (store_id_equal(&tc->v[i].mc, mc) &&
		    store_id_equal(&tc->v[i].mod, mod))
			return i;
	return SIZE_MAX;
}

struct tree *treecache_get(struct tree_cache *tc, const struct store_id *mod,
			   const struct store_id *mc)
{
	struct tree *t = NULL;
	size_t i;

	pthread_mutex_lock(&tc->lock);
	i = find_locked(tc, mod, mc);
	if (i != SIZE_MAX) {
		tc->v[i].used = ++tc->tick;
		t = tree_ref(tc->v[i].tree);
		tc->hits++;
	}
	pthread_mutex_unlock(&tc->lock);
	return t;
}

/* Drop entry i (its reference; readers keep theirs). */
static void evict_locked(struct tree_cache *tc, size_t i)
{
	tc->bytes -= tc->v[i].bytes;
	tree_unref(tc->v[i].tree);
	tc->v[i] = tc->v[--tc->n];
}

void treecache_put(struct tree_cache *tc, const struct store_id *mod,
		   const struct store_id *mc, struct tree *t)
{
	pthread_mutex_lock(&tc->lock);
	tc->builds++;
	pthread_mutex_unlock(&tc->lock);
	treecache_add(tc, mod, mc, t);
}

void treecache_add(struct tree_cache *tc, const struct store_id *mod,
		   const struct store_id *mc, struct tree *t)
{
	uint64_t bytes = proof_tree_bytes(t);
	struct tree_cache_entry *v;
	size_t i, old;

	pthread_mutex_lock(&tc->lock);
	if (bytes > tc->limit || find_locked(tc, mod, mc) != SIZE_MAX)
		goto out;
	while (tc->n && (tc->bytes + bytes > tc->limit ||
			 tc->n >= TREECACHE_MAX_ENTRIES)) {
		old = 0;
		for (i = 1; i < tc->n; i++)
			if (tc->v[i].used < tc->v[old].used)
				old = i;
		evict_locked(tc, old);
	}
	if (tc->n == tc->cap) {
		size_t cap = tc->cap ? tc->cap * 2 : 16;

		v = realloc(tc->v, cap * sizeof(*v));
		if (!v)
			goto out; /* not kept: the caller has its reference */
		tc->v = v;
		tc->cap = cap;
	}
	v = &tc->v[tc->n++];
	v->mod = *mod;
	v->mc = *mc;
	v->tree = tree_ref(t);
	v->bytes = bytes;
	v->used = ++tc->tick;
	tc->bytes += bytes;
out:
	pthread_mutex_unlock(&tc->lock);
}

void treecache_stats(struct tree_cache *tc, struct store_tree_cache_stats *st)
{
	pthread_mutex_lock(&tc->lock);
	st->bytes = tc->bytes;
	st->limit = tc->limit;
	st->trees = tc->n;
	st->builds = tc->builds;
	st->hits = tc->hits;
	pthread_mutex_unlock(&tc->lock);
}
