/*
 * commits.c - the commits store: commit -> {module -> module commit}, kept
 * in insertion order with a hash index, and its file format, the JSON
 * object {"COMMIT": {"MOD": "MODCOMMIT", ...}, ...}. The store does not
 * link a JSON library; the format is fixed and small, so it is written and
 * parsed here, strictly.
 */
#include "store_internal.h"

#include <stdint.h>
#include <stdio.h>
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
		centry_free(cs->v[i]);
	free(cs->v);
	free(cs->index);
	memset(cs, 0, sizeof(*cs));
}

const struct centry *commits_find(const struct commits *cs,
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
		struct centry **v = realloc(cs->v, cap * sizeof(*v));

		if (!v)
			return STORE_ENOMEM;
		cs->v = v;
		cs->cap = cap;
	}
	return STORE_OK;
}

struct centry *centry_new(const struct store_id *id,
			  const struct store_pair *pairs, size_t n)
{
	struct centry *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
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

void centry_free(struct centry *c)
{
	if (c) {
		free(c->pairs);
		free(c);
	}
}

void commits_insert(struct commits *cs, struct centry *c)
{
	if (commits_find(cs, &c->id)) {
		centry_free(c);
		return;
	}
	cs->v[cs->n] = c;
	index_put(cs->index, cs->index_cap, &c->id, cs->n);
	cs->n++;
}

enum store_err commits_add(struct commits *cs, const struct store_id *id,
			   const struct store_pair *pairs, size_t n)
{
	struct centry *c;
	enum store_err err;

	if (commits_find(cs, id))
		return STORE_OK;
	err = commits_reserve(cs);
	if (err)
		return err;
	c = centry_new(id, pairs, n);
	if (!c)
		return STORE_ENOMEM;
	commits_insert(cs, c);
	return STORE_OK;
}

/* Append "HEX" (quoted) at p; the end of it. */
static char *put_id(char *p, const struct store_id *id)
{
	*p++ = '"';
	store_id_hex(id, p);
	p += STORE_HEX_LEN;
	*p++ = '"';
	return p;
}

enum store_err commits_format(const struct commits *cs, char **out, size_t *len)
{
	size_t cap = 4, i, k, pairs = 0;
	char *buf, *p;

	for (i = 0; i < cs->n; i++)
		pairs += cs->v[i]->n;
	/* per commit: ,\n"HEX":{ } ; per pair "HEX":"HEX", */
	cap += cs->n * (STORE_HEX_LEN + 8) + pairs * (2 * STORE_HEX_LEN + 8);
	buf = malloc(cap);
	if (!buf)
		return STORE_ENOMEM;
	p = buf;
	*p++ = '{';
	for (i = 0; i < cs->n; i++) {
		const struct centry *c = cs->v[i];

		if (i)
			*p++ = ',';
		*p++ = '\n';
		p = put_id(p, &c->id);
		*p++ = ':';
		*p++ = '{';
		for (k = 0; k < c->n; k++) {
			if (k)
				*p++ = ',';
			p = put_id(p, &c->pairs[k].module);
			*p++ = ':';
			p = put_id(p, &c->pairs[k].commit);
		}
		*p++ = '}';
	}
	if (cs->n)
		*p++ = '\n';
	*p++ = '}';
	*p++ = '\n';
	*p = '\0';
	*out = buf;
	*len = (size_t)(p - buf);
	return STORE_OK;
}

/* --- a strict parser for exactly that shape ------------------------------ */

struct parser {
	const char *p, *end;
};

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' ||
				   *ps->p == '\t' || *ps->p == '\r'))
		ps->p++;
}

static int expect(struct parser *ps, char c)
{
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == c) {
		ps->p++;
		return 1;
	}
	return 0;
}

static int peek(struct parser *ps, char c)
{
	skip_ws(ps);
	return ps->p < ps->end && *ps->p == c;
}

static int parse_id(struct parser *ps, struct store_id *id)
{
	if (!expect(ps, '"') || ps->end - ps->p < STORE_HEX_LEN + 1)
		return 0;
	if (store_id_parse(id, ps->p, STORE_HEX_LEN) != STORE_OK)
		return 0;
	ps->p += STORE_HEX_LEN;
	return expect(ps, '"');
}

static int pair_cmp(const void *a, const void *b)
{
	const struct store_pair *x = a, *y = b;

	return memcmp(x->module.b, y->module.b, STORE_ID_BYTES);
}

enum store_err commits_parse_merge(struct commits *cs, const char *buf,
				   size_t len)
{
	struct parser ps = {buf, buf + len};
	struct store_pair *pairs = NULL;
	size_t n, cap = 0, i;
	struct store_id id, check;
	enum store_err err = STORE_ECORRUPT;

	skip_ws(&ps);
	if (ps.p == ps.end)
		return STORE_OK; /* an empty file: no commits */
	if (!expect(&ps, '{'))
		goto out;
	if (expect(&ps, '}'))
		goto done;
	do {
		if (!parse_id(&ps, &id) || !expect(&ps, ':') ||
		    !expect(&ps, '{'))
			goto out;
		n = 0;
		if (!peek(&ps, '}')) {
			do {
				if (n == cap) {
					size_t c2 = cap ? cap * 2 : 64;
					struct store_pair *p2 =
					    realloc(pairs, c2 * sizeof(*p2));

					if (!p2) {
						err = STORE_ENOMEM;
						goto out;
					}
					pairs = p2;
					cap = c2;
				}
				if (!parse_id(&ps, &pairs[n].module) ||
				    !expect(&ps, ':') ||
				    !parse_id(&ps, &pairs[n].commit))
					goto out;
				n++;
			} while (expect(&ps, ','));
		}
		if (!expect(&ps, '}'))
			goto out;
		if (n)
			qsort(pairs, n, sizeof(*pairs), pair_cmp);
		for (i = 1; i < n; i++)
			if (!pair_cmp(&pairs[i - 1], &pairs[i]))
				goto out;
		err = store_state_id(pairs, n, &check);
		if (err)
			goto out;
		err = STORE_ECORRUPT;
		if (!store_id_equal(&check, &id))
			goto out; /* the id does not match its modules */
		err = commits_add(cs, &id, pairs, n);
		if (err)
			goto out;
		err = STORE_ECORRUPT;
	} while (expect(&ps, ','));
	if (!expect(&ps, '}'))
		goto out;
done:
	skip_ws(&ps);
	err = ps.p == ps.end ? STORE_OK : STORE_ECORRUPT;
out:
	free(pairs);
	return err;
}
