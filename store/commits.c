/*
 * commits.c - the commits store in memory: interned pairs, commits as
 * snapshots or deltas, an index by id. The sharing is described in
 * commits.h.
 */
#include "commits.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SLOTS 0x7fffffffu

static size_t id_hash(const struct store_id *id)
{
	size_t h;

	memcpy(&h, id->b, sizeof(h)); /* ids are digests: uniform already */
	return h;
}

static size_t pair_hash(const struct store_pair *p)
{
	size_t a, b;

	memcpy(&a, p->commit.b, sizeof(a));
	memcpy(&b, p->module.b + 8, sizeof(b));
	return a ^ (b * 0x9e3779b97f4a7c15ull);
}

/* --- the slots: every distinct pair once ---------------------------------- */

static int mod_cmp(const struct commits_pairs *p, uint32_t a, uint32_t b)
{
	return memcmp(&p->v[a & ~COMMITS_DEL].module,
		      &p->v[b & ~COMMITS_DEL].module, sizeof(struct store_id));
}

/* Where p is in the hash, or the empty place it would go. */
static size_t hash_place(const struct commits_pairs *t,
			 const struct store_pair *p)
{
	size_t mask = t->hcap - 1, i;

	for (i = pair_hash(p) & mask; t->hash[i]; i = (i + 1) & mask)
		if (!memcmp(&t->v[t->hash[i] - 1], p, sizeof(*p)))
			break;
	return i;
}

static long slot_find(const struct commits_pairs *t, const struct store_pair *p)
{
	size_t i;

	if (!t->hcap)
		return -1;
	i = hash_place(t, p);
	return t->hash[i] ? (long)t->hash[i] - 1 : -1;
}

static enum store_err hash_grow(struct commits_pairs *t, size_t want)
{
	size_t cap = t->hcap ? t->hcap : 1024, i;
	uint32_t *h, *old = t->hash;

	while (want * 2 > cap)
		cap *= 2;
	if (cap == t->hcap)
		return STORE_OK;
	h = calloc(cap, sizeof(*h));
	if (!h)
		return STORE_ENOMEM;
	t->hash = h;
	t->hcap = cap;
	for (i = 0; i < t->used; i++)
		if (t->arr[i] || t->live[i])
			t->hash[hash_place(t, &t->v[i])] = (uint32_t)i + 1;
	free(old);
	return STORE_OK;
}

static enum store_err slots_grow(struct commits_pairs *t, size_t want)
{
	size_t cap = t->cap ? t->cap : 1024;
	void *v, *a, *l, *f;

	if (want > MAX_SLOTS)
		return STORE_ENOMEM;
	while (cap < want)
		cap *= 2;
	if (cap == t->cap)
		return STORE_OK;
	v = realloc(t->v, cap * sizeof(*t->v));
	if (v)
		t->v = v;
	a = realloc(t->arr, cap * sizeof(*t->arr));
	if (a)
		t->arr = a;
	l = realloc(t->live, cap * sizeof(*t->live));
	if (l)
		t->live = l;
	f = realloc(t->freev, cap * sizeof(*t->freev));
	if (f)
		t->freev = f;
	if (!v || !a || !l || !f)
		return STORE_ENOMEM;
	t->cap = cap;
	return STORE_OK;
}

/* The slot of p, made when new (room reserved before). */
static uint32_t slot_intern(struct commits_pairs *t, const struct store_pair *p)
{
	size_t i = hash_place(t, p);
	uint32_t k;

	if (t->hash[i])
		return t->hash[i] - 1;
	k = t->nfree ? t->freev[--t->nfree] : (uint32_t)t->used++;
	t->v[k] = *p;
	t->arr[k] = 0;
	t->live[k] = 0;
	t->hash[i] = k + 1;
	return k;
}

/* Take slot k out of the hash (linear probing, shifting back). */
static void hash_remove(struct commits_pairs *t, uint32_t k)
{
	size_t mask = t->hcap - 1, i = hash_place(t, &t->v[k]), j, home;

	t->hash[i] = 0;
	for (j = (i + 1) & mask; t->hash[j]; j = (j + 1) & mask) {
		home = pair_hash(&t->v[t->hash[j] - 1]) & mask;
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && home <= i && home > j)) {
			t->hash[i] = t->hash[j];
			t->hash[j] = 0;
			i = j;
		}
	}
}

static void slot_unhold(struct commits_pairs *t, uint32_t k)
{
	if (--t->arr[k] || t->live[k])
		return;
	hash_remove(t, k);
	t->freev[t->nfree++] = k;
}

/* --- entries ---------------------------------------------------------------
 */

struct commits_entry *commits_entry_new(const struct store_id *id,
					const struct store_pair *pairs,
					size_t n)
{
	struct commits_entry *c;

	if (n > MAX_SLOTS)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->id = *id;
	c->n = (uint32_t)n;
	c->full = malloc((n ? n : 1) * sizeof(*pairs));
	c->d = malloc((n ? n : 1) * sizeof(*c->d)); /* the slots, at insert */
	if (!c->full || !c->d) {
		commits_entry_free(c);
		return NULL;
	}
	if (n)
		memcpy(c->full, pairs, n * sizeof(*pairs));
	return c;
}

void commits_entry_free(struct commits_entry *c)
{
	if (!c)
		return;
	free(c->full);
	free(c->d);
	free(c);
}

/* Drop a reference; an entry nothing refers to gives its slots back. */
static void entry_unref(struct commits *cs, struct commits_entry *c)
{
	struct commits_entry *base;
	uint32_t i;

	while (c && --c->refs == 0) {
		base = c->base;
		for (i = 0; i < c->nd; i++)
			if (!(c->d[i] & COMMITS_DEL))
				slot_unhold(&cs->p, c->d[i]);
		commits_entry_free(c);
		c = base;
	}
}

static void tail_drop(struct commits *cs)
{
	if (cs->tail_owned)
		free(cs->tail_ix);
	cs->tail = NULL;
	cs->tail_ix = NULL;
	cs->tail_owned = 0;
}

void commits_release(struct commits *cs)
{
	size_t i;

	tail_drop(cs);
	for (i = 0; i < cs->n; i++)
		entry_unref(cs, cs->v[i]);
	free(cs->v);
	free(cs->index);
	free(cs->p.v);
	free(cs->p.arr);
	free(cs->p.live);
	free(cs->p.freev);
	free(cs->p.hash);
	memset(cs, 0, sizeof(*cs));
}

/* --- the index by id -------------------------------------------------------
 */

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

static void index_rebuild(struct commits *cs)
{
	size_t k;

	for (k = 0; k < cs->index_cap; k++)
		cs->index[k] = SIZE_MAX;
	for (k = 0; k < cs->n; k++)
		index_put(cs->index, cs->index_cap, &cs->v[k]->id, k);
}

static enum store_err index_grow(struct commits *cs)
{
	size_t cap = cs->index_cap ? cs->index_cap * 2 : 64;
	size_t *index = malloc(cap * sizeof(*index));

	if (!index)
		return STORE_ENOMEM;
	free(cs->index);
	cs->index = index;
	cs->index_cap = cap;
	index_rebuild(cs);
	return STORE_OK;
}

enum store_err commits_reserve(struct commits *cs, size_t n)
{
	struct commits_pairs *t = &cs->p;
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
	if (n > MAX_SLOTS - t->used)
		return STORE_ENOMEM;
	err = slots_grow(t, t->used + n);
	if (!err)
		err = hash_grow(t, t->used - t->nfree + n);
	return err;
}

/* --- insert: a snapshot or a delta against the tail ---------------------- */

/* Items of the delta from slots a (na) to b (nb), written to out if set. */
static size_t delta(const struct commits_pairs *t, const uint32_t *a, size_t na,
		    const uint32_t *b, size_t nb, uint32_t *out)
{
	size_t i = 0, j = 0, k = 0;
	int c;

	while (i < na || j < nb) {
		c = i == na ? 1 : j == nb ? -1 : mod_cmp(t, a[i], b[j]);
		if (c < 0) { /* only in a: gone */
			if (out)
				out[k] = a[i] | COMMITS_DEL;
			k++, i++;
		} else if (c > 0) { /* only in b: new */
			if (out)
				out[k] = b[j];
			k++, j++;
		} else {
			if (a[i] != b[j]) {
				if (out)
					out[k] = b[j];
				k++;
			}
			i++, j++;
		}
	}
	return k;
}

/* Make c a delta against the tail when that is small; 0 if not. */
static int make_delta(struct commits *cs, struct commits_entry *c, uint32_t *ix)
{
	struct commits_entry *t = cs->tail;
	size_t nd;
	uint32_t i;

	if (!t || t->depth + 1 > COMMITS_MAX_DEPTH)
		return 0;
	nd = delta(&cs->p, cs->tail_ix, t->n, ix, c->n, NULL);
	if (nd > c->n / 4 + 4)
		return 0;
	c->d = malloc((nd ? nd : 1) * sizeof(*c->d));
	if (!c->d)
		return 0; /* a snapshot then */
	c->nd = (uint32_t)delta(&cs->p, cs->tail_ix, t->n, ix, c->n, c->d);
	for (i = 0; i < c->nd; i++)
		if (!(c->d[i] & COMMITS_DEL))
			cs->p.arr[c->d[i]]++;
	c->base = t;
	t->refs++;
	c->depth = t->depth + 1;
	return 1;
}

void commits_insert(struct commits *cs, struct commits_entry *c)
{
	uint32_t *ix = c->d, i;

	if (commits_find(cs, &c->id)) {
		commits_entry_free(c);
		return;
	}
	for (i = 0; i < c->n; i++) {
		ix[i] = slot_intern(&cs->p, &c->full[i]);
		cs->p.live[ix[i]]++;
	}
	free(c->full);
	c->full = NULL;
	c->d = NULL;
	if (make_delta(cs, c, ix)) {
		tail_drop(cs);
		cs->tail_ix = ix;
		cs->tail_owned = 1;
	} else {
		c->d = ix;
		c->nd = c->n;
		for (i = 0; i < c->n; i++)
			cs->p.arr[ix[i]]++;
		tail_drop(cs);
		cs->tail_ix = ix;
	}
	cs->tail = c;
	c->refs = 1;
	c->in_store = 1;
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
			c->persisted = 1;
		return STORE_OK;
	}
	err = commits_reserve(cs, n);
	if (err)
		return err;
	c = commits_entry_new(id, pairs, n);
	if (!c)
		return STORE_ENOMEM;
	c->persisted = persisted ? 1 : 0;
	commits_insert(cs, c);
	return STORE_OK;
}

/* --- reading: an entry's slots from its chain ---------------------------- */

/* b = a with delta d applied; the count. */
static size_t apply(const struct commits_pairs *t, const uint32_t *a, size_t na,
		    const uint32_t *d, size_t nd, uint32_t *b)
{
	size_t i = 0, j = 0, k = 0;
	int c;

	while (i < na || j < nd) {
		c = i == na ? 1 : j == nd ? -1 : mod_cmp(t, a[i], d[j]);
		if (c < 0) {
			b[k++] = a[i++];
		} else {
			if (!(d[j] & COMMITS_DEL))
				b[k++] = d[j];
			i += c == 0;
			j++;
		}
	}
	return k;
}

static enum store_err cur_room(struct commits_cursor *cur, size_t n)
{
	uint32_t *a, *b;

	if (n <= cur->cap)
		return STORE_OK;
	a = realloc(cur->ix, n * sizeof(*a));
	if (a)
		cur->ix = a;
	b = realloc(cur->tmp, n * sizeof(*b));
	if (b)
		cur->tmp = b;
	if (!a || !b)
		return STORE_ENOMEM;
	cur->cap = n;
	return STORE_OK;
}

/* cur->ix = the slots of c, from its snapshot through each delta. */
static enum store_err chain_slots(const struct commits *cs,
				  struct commits_cursor *cur,
				  const struct commits_entry *c)
{
	const struct commits_entry *chain[COMMITS_MAX_DEPTH + 1];
	size_t depth = 0, room = 0, n, i;
	uint32_t *swap;
	enum store_err err;

	for (; c->base; c = c->base) {
		chain[depth++] = c;
		room += c->nd;
	}
	room += c->n;
	err = cur_room(cur, room ? room : 1);
	if (err)
		return err;
	memcpy(cur->ix, c->d, c->n * sizeof(*cur->ix));
	n = c->n;
	for (i = depth; i-- > 0;) {
		n = apply(&cs->p, cur->ix, n, chain[i]->d, chain[i]->nd,
			  cur->tmp);
		swap = cur->ix;
		cur->ix = cur->tmp;
		cur->tmp = swap;
	}
	cur->n = n;
	return STORE_OK;
}

static enum store_err cursor_slots(struct commits *cs,
				   struct commits_cursor *cur,
				   const struct commits_entry *c)
{
	struct commits_entry *e = (struct commits_entry *)(uintptr_t)c;
	enum store_err err;
	uint32_t *swap;

	if (cur->last && c->base == cur->last) {
		err = cur_room(cur, cur->n + c->nd);
		if (err)
			return err;
		cur->n = apply(&cs->p, cur->ix, cur->n, c->d, c->nd, cur->tmp);
		swap = cur->ix;
		cur->ix = cur->tmp;
		cur->tmp = swap;
	} else if (cur->last != c) {
		err = chain_slots(cs, cur, c);
		if (err)
			return err;
	}
	if (cur->last != c) {
		e->refs++;
		if (cur->last)
			entry_unref(cs, cur->last);
		cur->last = e;
	}
	return STORE_OK;
}

enum store_err commits_cursor_pairs(struct commits *cs,
				    struct commits_cursor *cur,
				    const struct commits_entry *c,
				    const struct store_pair **pairs, size_t *n)
{
	enum store_err err;
	size_t i;

	err = cursor_slots(cs, cur, c);
	if (err)
		return err;
	if (cur->n > cur->pcap) {
		struct store_pair *p =
		    realloc(cur->pairs, cur->n * sizeof(*cur->pairs));

		if (!p)
			return STORE_ENOMEM;
		cur->pairs = p;
		cur->pcap = cur->n;
	}
	for (i = 0; i < cur->n; i++)
		cur->pairs[i] = cs->p.v[cur->ix[i]];
	*pairs = cur->pairs;
	*n = cur->n;
	return STORE_OK;
}

void commits_cursor_release(struct commits *cs, struct commits_cursor *cur)
{
	if (cur->last)
		entry_unref(cs, cur->last);
	free(cur->ix);
	free(cur->tmp);
	free(cur->pairs);
	memset(cur, 0, sizeof(*cur));
}

/* A copy of the pairs of c. */
static enum store_err entry_pairs(const struct commits *cs,
				  const struct commits_entry *c,
				  struct store_pair **pairs, size_t *n)
{
	struct commits_cursor cur = {0};
	enum store_err err;
	size_t i;

	*pairs = NULL;
	*n = 0;
	err = chain_slots(cs, &cur, c);
	if (!err) {
		*pairs = malloc((cur.n ? cur.n : 1) * sizeof(**pairs));
		err = *pairs ? STORE_OK : STORE_ENOMEM;
	}
	for (i = 0; !err && i < cur.n; i++)
		(*pairs)[i] = cs->p.v[cur.ix[i]];
	if (!err)
		*n = cur.n;
	free(cur.ix);
	free(cur.tmp);
	return err;
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
	return entry_pairs(cs, c, pairs, n);
}

/* The item of d[0..nd) for module mod, or NULL. */
static const uint32_t *item_of(const struct commits_pairs *t, const uint32_t *d,
			       size_t nd, const struct store_id *mod)
{
	size_t lo = 0, hi = nd, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(mod, &t->v[d[mid] & ~COMMITS_DEL].module,
			   sizeof(*mod));
		if (!c)
			return &d[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

enum store_err commits_member(const struct commits *cs,
			      const struct store_id *id,
			      const struct store_id *mod, struct store_id *mc)
{
	const struct commits_entry *c = commits_find(cs, id);
	const uint32_t *it;

	if (!c)
		return STORE_ENOCOMMIT;
	for (; c; c = c->base) {
		it = item_of(&cs->p, c->d, c->nd, mod);
		if (it && (*it & COMMITS_DEL))
			return STORE_ENOMODULE;
		if (it) {
			*mc = cs->p.v[*it].commit;
			return STORE_OK;
		}
		if (!c->base)
			break;
	}
	return STORE_ENOMODULE;
}

enum store_err commits_ids(const struct commits *cs, int unpersisted,
			   struct store_id **ids, size_t *n)
{
	size_t i, k = 0;

	*ids = malloc((cs->n ? cs->n : 1) * sizeof(**ids));
	if (!*ids)
		return STORE_ENOMEM;
	for (i = 0; i < cs->n; i++)
		if (!unpersisted || !cs->v[i]->persisted)
			(*ids)[k++] = cs->v[i]->id;
	*n = k;
	return STORE_OK;
}

void commits_set_persisted(struct commits *cs, const struct store_id *id,
			   int persisted)
{
	struct commits_entry *c =
	    (struct commits_entry *)(uintptr_t)commits_find(cs, id);

	if (c)
		c->persisted = persisted ? 1 : 0;
}

enum store_err commits_remove(struct commits *cs, const struct store_id *id,
			      struct store_pair **pairs, size_t *n)
{
	struct commits_cursor cur = {0};
	struct commits_entry *c;
	enum store_err err;
	size_t i;

	*pairs = NULL;
	*n = 0;
	c = (struct commits_entry *)(uintptr_t)commits_find(cs, id);
	if (!c)
		return STORE_ENOCOMMIT;
	err = chain_slots(cs, &cur, c);
	if (!err) {
		*pairs = malloc((cur.n ? cur.n : 1) * sizeof(**pairs));
		err = *pairs ? STORE_OK : STORE_ENOMEM;
	}
	if (err)
		goto out;
	for (i = 0; i < cur.n; i++) {
		(*pairs)[i] = cs->p.v[cur.ix[i]];
		cs->p.live[cur.ix[i]]--; /* arrays still hold it: arr > 0 */
	}
	*n = cur.n;
	for (i = 0; i < cs->n && cs->v[i] != c; i++)
		;
	memmove(&cs->v[i], &cs->v[i + 1], (cs->n - i - 1) * sizeof(*cs->v));
	cs->n--;
	index_rebuild(cs);
	if (cs->tail == c)
		tail_drop(cs);
	c->in_store = 0;
	entry_unref(cs, c);
out:
	free(cur.ix);
	free(cur.tmp);
	return err;
}

int commits_holds(const struct commits *cs, const struct store_pair *p)
{
	long k = slot_find(&cs->p, p);

	return k >= 0 && cs->p.live[k] > 0;
}

uint64_t commits_memory(const struct commits *cs)
{
	uint64_t b = 0;
	size_t i;
	const struct commits_entry *c;

	b += cs->cap * sizeof(*cs->v) + cs->index_cap * sizeof(*cs->index);
	b += cs->p.cap * (sizeof(*cs->p.v) + 3 * sizeof(uint32_t));
	b += cs->p.hcap * sizeof(uint32_t);
	for (i = 0; i < cs->n; i++) {
		c = cs->v[i];
		b += sizeof(*c) + (uint64_t)c->nd * sizeof(uint32_t);
	}
	return b;
}
