/*
 * catchup.c - a follower's files by the pages that differ (catchup.h).
 *
 * Nothing a peer sends is trusted: a diff only says which pages to ask
 * for and which local file to start from; the file made is hashed whole
 * by the store and kept only if its Merkle id is the module commit the
 * log names. A diff that is wrong, or pages that do not make the file,
 * leave the pair to the whole-file fetch.
 */
#include "catchup.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A diff's answer, read whole (at most CATCHUP_DIFF_MAX bytes). */
struct text {
	char *b;
	size_t len, cap;
};

static int text_sink(void *ctx, const char *data, size_t len)
{
	struct text *t = ctx;
	size_t cap;
	char *b;

	if (len > CATCHUP_DIFF_MAX - t->len)
		return -1;
	if (t->len + len > t->cap) {
		cap = (t->len + len) * 2;
		b = realloc(t->b, cap);
		if (!b)
			return -1;
		t->b = b;
		t->cap = cap;
	}
	memcpy(t->b + t->len, data, len);
	t->len += len;
	return 0;
}

/* An id member of a JSON object into id: 0, or -1 (absent, null, bad). */
static int json_id(json_t *o, const char *name, struct store_id *id)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_string(v))
		return -1;
	return store_id_parse(id, json_string_value(v), json_string_length(v))
		   ? -1
		   : 0;
}

int catchup_module_parse(json_t *o, const char *size_key, size_t max_pages,
			 struct store_diff_module *m)
{
	json_t *pages = json_object_get(o, "pages"), *v;
	json_t *size = json_object_get(o, size_key);
	size_t i;

	memset(m, 0, sizeof(*m));
	if (json_id(o, "id", &m->module) || json_id(o, "from", &m->from) ||
	    json_id(o, "to", &m->to) || !json_is_integer(size) ||
	    json_integer_value(size) <= 0 || !json_is_array(pages) ||
	    json_array_size(pages) > max_pages)
		return -1;
	m->has_from = m->has_to = 1;
	m->size_to = (uint64_t)json_integer_value(size);
	m->npages = json_array_size(pages);
	m->pages = malloc((m->npages ? m->npages : 1) * sizeof(*m->pages));
	if (!m->pages)
		return -1;
	json_array_foreach(pages, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return -1;
		m->pages[i] = (uint64_t)json_integer_value(v);
	}
	return 0;
}

/*
 * The modules of a diff's answer that both commits hold into d (release
 * with store_diff_release): 0, or -1 when it is not a diff.
 */
static int diff_parse(const struct text *t, struct store_diff *d)
{
	json_t *j = json_loadb(t->b, t->len, 0, NULL), *mods, *o;
	size_t i;
	int ret = -1;

	memset(d, 0, sizeof(*d));
	mods = json_object_get(j, "modules");
	if (!json_is_array(mods))
		goto out;
	d->m = calloc(json_array_size(mods) + 1, sizeof(*d->m));
	if (!d->m)
		goto out;
	json_array_foreach(mods, i, o)
	{
		if (!json_is_string(json_object_get(o, "from")) ||
		    !json_is_string(json_object_get(o, "to")))
			continue; /* a module added or gone: files whole */
		if (catchup_module_parse(o, "size_to", SIZE_MAX, &d->m[d->n++]))
			goto out;
	}
	ret = 0;
out:
	json_decref(j);
	if (ret)
		store_diff_release(d);
	return ret;
}

/* GET url/commits/FROM/diff/TO into d: 0, or -1. */
static int diff_get(struct peer *p, const char *url,
		    const struct store_id *from, const struct store_id *to,
		    struct store_diff *d)
{
	char path[200], a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1];
	struct text t = {0};
	int ret = -1;

	store_id_hex(from, a);
	store_id_hex(to, b);
	snprintf(path, sizeof(path), "/commits/%s/diff/%s", a, b);
	if (peer_get(p, url, path, text_sink, &t) == 200)
		ret = diff_parse(&t, d);
	free(t.b);
	return ret;
}

/* --- one module ----------------------------------------------------------- */

static int put_patch(void *ctx, uint64_t off, const char *data, size_t len)
{
	return store_patch_write(ctx, off, data, len) == STORE_OK ? 0 : -1;
}

/* The runs of adjacent pages of m as byte ranges into r; their number. */
static size_t page_runs(const struct store_diff_module *m, struct peer_range *r)
{
	size_t i, n = 0;

	for (i = 0; i < m->npages; i++) {
		if (n && m->pages[i] == m->pages[i - 1] + 1) {
			r[n - 1].len += STORE_PAGE_SIZE;
			continue;
		}
		r[n].off = m->pages[i] * STORE_PAGE_SIZE;
		r[n++].len = STORE_PAGE_SIZE;
	}
	return n;
}

/* The file of m's module commit m->to from the file of m->from and url. */
static enum store_err patch_module(struct store *s, struct peer *p,
				   const char *url,
				   const struct store_id *commit,
				   const struct store_diff_module *m)
{
	char path[256], c[STORE_HEX_LEN + 1], h[STORE_HEX_LEN + 1];
	struct store_patch *pt = NULL;
	struct peer_range *r;
	enum store_err err;
	size_t n, i, k;

	r = malloc((m->npages ? m->npages : 1) * sizeof(*r));
	if (!r)
		return STORE_ENOMEM;
	n = page_runs(m, r);
	store_id_hex(commit, c);
	store_id_hex(&m->module, h);
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/memory", c, h);
	err = store_patch_new(s, &m->module, &m->from, m->size_to, m->pages,
			      m->npages, &pt);
	for (i = 0; !err && i < n; i += k) {
		k = n - i < PEER_MAX_RANGES ? n - i : PEER_MAX_RANGES;
		if (peer_get_ranges(p, url, path, r + i, k, put_patch, pt))
			err = STORE_EIO;
	}
	if (!err)
		err = store_patch_import(pt, &m->to);
	store_patch_free(pt);
	free(r);
	return err;
}

/* --- the files of a commit ------------------------------------------------ */

/* 1 when one of the n pairs is of a module of CATCHUP_MIN_SIZE or more. */
static int worth_a_diff(struct store *s, const struct store_pair *pairs,
			size_t n)
{
	struct store_module_info mi;
	size_t i;

	for (i = 0; i < n; i++)
		if (store_module_get(s, &pairs[i].module, &mi) == STORE_OK &&
		    mi.size >= CATCHUP_MIN_SIZE)
			return 1;
	return 0;
}

/* The module of d that goes to pair's module commit from a file here. */
static const struct store_diff_module *module_of(struct store *s,
						 const struct store_diff *d,
						 const struct store_pair *pair)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (store_id_equal(&d->m[i].module, &pair->module))
			return store_id_equal(&d->m[i].to, &pair->commit) &&
				       store_commit_file_exists(
					   s, &pair->module, &d->m[i].from)
				   ? &d->m[i]
				   : NULL;
	return NULL;
}

/* The pairs not done that d and url make; the number made. */
static size_t patch_pairs(struct store *s, struct peer *p, const char *url,
			  const struct store_diff *d,
			  const struct store_id *commit,
			  const struct store_pair *pairs, size_t n, int *done)
{
	const struct store_diff_module *m;
	size_t i, made = 0;

	for (i = 0; i < n; i++) {
		if (done[i] || !(m = module_of(s, d, &pairs[i])))
			continue;
		if (patch_module(s, p, url, commit, m) == STORE_OK) {
			done[i] = 1;
			made++;
		}
	}
	return made;
}

size_t catchup_files(struct store *s, struct peer *p, char *const *urls,
		     const struct store_id *from, size_t nf,
		     const struct store_id *commit,
		     const struct store_pair *pairs, size_t n, int *done)
{
	struct store_diff d;
	size_t f, u, made = 0;

	if (!urls || !worth_a_diff(s, pairs, n))
		return 0;
	for (f = 0; f < nf && made < n; f++) {
		if (store_id_equal(&from[f], commit))
			continue;
		/* the first peer that answers the diff, which holds commit */
		for (u = 0; urls[u]; u++)
			if (diff_get(p, urls[u], &from[f], commit, &d) == 0)
				break;
		if (!urls[u])
			continue;
		made += patch_pairs(s, p, urls[u], &d, commit, pairs, n, done);
		store_diff_release(&d);
	}
	return made;
}
