/*
 * commits.c - the commits store in memory: commit -> {module -> module
 * commit}, in insertion order with a hash index.
 */
#include "commits.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t id_hash(const struct store_id *id)
{
	size_t h;

	memcpy(&h, id->b, sizeof(h)); /* ids are digests: uniform already */
	return h;
}

void commits_release(struct commits *cs)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		commits_entry_unref(cs->v[i]);
	free(cs->v);
	free(cs->index);
	memset(cs, 0, sizeof(*cs));
}

const struct commits_entry *commits_find(const struct commits *cs,
					 const struct store_id *id)
{
	size_t mask, i, k;

	if (!cs->index_cap)
		return NULL;
	mask = cs->index_cap - 1;
	for (i = id_hash(id) & mask;; i = (i + 1) & mask) {
		k = cs->index[i];
		if (k == SIZE_MAX)
			return NULL;
		if (store_id_equal(&cs->v[k]->id, id))
			return cs->v[k];
	}
}

static void index_put(size_t *index, size_t cap, const struct store_id *id,
		      size_t k)
{
	size_t mask = cap - 1, i;

	for (i = id_hash(id) & mask; index[i] != SIZE_MAX; i = (i + 1) & mask)
		;
	index[i] = k;
}

static enum store_err index_grow(struct commits *cs)
{
	size_t cap = cs->index_cap ? cs->index_cap * 2 : 64, i, *index;

	index = malloc(cap * sizeof(*index));
	if (!index)
		return STORE_ENOMEM;
	for (i = 0; i < cap; i++)
		index[i] = SIZE_MAX;
	for (i = 0; i < cs->n; i++)
		index_put(index, cap, &cs->v[i]->id, i);
	free(cs->index);
	cs->index = index;
	cs->index_cap = cap;
	return STORE_OK;
}

enum store_err commits_reserve(struct commits *cs)
{
	enum store_err err;

	if ((cs->n + 1) * 2 > cs->index_cap) {
		err = index_grow(cs);
		if (err)
			return err;
	}
	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? cs->cap * 2 : 16;
		struct commits_entry **v = realloc(cs->v, cap * sizeof(*v));

		if (!v)
			return STORE_ENOMEM;
		cs->v = v;
		cs->cap = cap;
	}
	return STORE_OK;
}

struct commits_entry *commits_entry_new(const struct store_id *id,
					const struct store_pair *pairs,
					size_t n)
{
	struct commits_entry *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	atomic_init(&c->persisted, 0);
	c->id = *id;
	c->n = n;
	if (n) {
		c->pairs = malloc(n * sizeof(*pairs));
		if (!c->pairs) {
			free(c);
			return NULL;
		}
		memcpy(c->pairs, pairs, n * sizeof(*pairs));
	}
	return c;
}

void commits_entry_unref(struct commits_entry *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	free(c->pairs);
	free(c);
}

void commits_insert(struct commits *cs, struct commits_entry *c)
{
	if (commits_find(cs, &c->id)) {
		commits_entry_unref(c);
		return;
	}
	cs->v[cs->n] = c;
	index_put(cs->index, cs->index_cap, &c->id, cs->n);
	cs->n++;
}

enum store_err commits_add(struct commits *cs, const struct store_id *id,
			   const struct store_pair *pairs, size_t n,
			   int persisted)
{
	struct commits_entry *c;
	enum store_err err;

	c = (struct commits_entry *)(uintptr_t)commits_find(cs, id);
	if (c) {
		if (persisted)
			atomic_store(&c->persisted, 1);
		return STORE_OK;
	}
	err = commits_reserve(cs);
	if (err)
		return err;
	c = commits_entry_new(id, pairs, n);
	if (!c)
		return STORE_ENOMEM;
	atomic_store(&c->persisted, persisted);
	commits_insert(cs, c);
	return STORE_OK;
}

enum store_err commits_snapshot(const struct commits *cs,
				const struct commits_entry ***out, size_t *n)
{
	const struct commits_entry **v;
	size_t i;

	v = malloc((cs->n ? cs->n : 1) * sizeof(*v));
	if (!v)
		return STORE_ENOMEM;
	for (i = 0; i < cs->n; i++) {
		atomic_fetch_add(&cs->v[i]->refs, 1);
		v[i] = cs->v[i];
	}
	*out = v;
	*n = cs->n;
	return STORE_OK;
}

void commits_snapshot_release(const struct commits_entry **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		commits_entry_unref((struct commits_entry *)(uintptr_t)v[i]);
	free(v);
}

struct commits_entry *commits_remove(struct commits *cs,
				     const struct store_id *id)
{
	struct commits_entry *c = NULL;
	size_t i, k;

	for (i = 0; i < cs->n; i++)
		if (store_id_equal(&cs->v[i]->id, id))
			break;
	if (i == cs->n)
		return NULL;
	c = cs->v[i];
	memmove(&cs->v[i], &cs->v[i + 1], (cs->n - i - 1) * sizeof(*cs->v));
	cs->n--;
	for (k = 0; k < cs->index_cap; k++)
		cs->index[k] = SIZE_MAX;
	for (k = 0; k < cs->n; k++)
		index_put(cs->index, cs->index_cap, &cs->v[k]->id, k);
	return c;
}

enum store_err commits_get_pairs(const struct commits *cs,
				 const struct store_id *id,
				 struct store_pair **pairs, size_t *n)
{
	const struct commits_entry *c = commits_find(cs, id);

	*pairs = NULL;
	*n = 0;
	if (!c)
		return STORE_ENOCOMMIT;
	*pairs = malloc((c->n ? c->n : 1) * sizeof(**pairs));
	if (!*pairs)
		return STORE_ENOMEM;
	if (c->n)
		memcpy(*pairs, c->pairs, c->n * sizeof(**pairs));
	*n = c->n;
	return STORE_OK;
}
