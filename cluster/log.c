/*
 * log.c - records and the fold of a log (log.h).
 */
#include "log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {
    [LOG_DEPLOY] = "deploy",   [LOG_COMMIT] = "commit",
    [LOG_RESTORE] = "restore", [LOG_DELETE] = "delete",
    [LOG_PERSIST] = "persist", [LOG_GC] = "gc",
};

static json_t *jid(const struct store_id *id)
{
	char hex[STORE_HEX_LEN + 1];

	store_id_hex(id, hex);
	return json_string(hex);
}

static int pid(json_t *j, struct store_id *out)
{
	const char *s = json_string_value(j);

	return s && store_id_parse(out, s, strlen(s)) == STORE_OK ? 0 : -1;
}

char *log_record_text(const struct log_record *r)
{
	json_t *j = json_pack("{s:s}", "op", op_names[r->op]), *m;
	char hex[STORE_HEX_LEN + 1], *text;
	size_t i;

	if (!j)
		return NULL;
	switch (r->op) {
	case LOG_DEPLOY:
		json_object_set_new(j, "module", jid(&r->id));
		json_object_set_new(j, "size",
				    json_integer((json_int_t)r->size));
		json_object_set_new(j, "bytecode", json_boolean(r->bytecode));
		break;
	case LOG_COMMIT:
		json_object_set_new(j, "commit", jid(&r->id));
		json_object_set_new(j, "base",
				    r->has_base ? jid(&r->base) : json_null());
		if (r->full)
			json_object_set_new(j, "full", json_true());
		m = json_object();
		for (i = 0; i < r->n; i++) {
			store_id_hex(&r->pairs[i].module, hex);
			json_object_set_new(m, hex, jid(&r->pairs[i].commit));
		}
		json_object_set_new(j, "modules", m);
		break;
	case LOG_RESTORE:
	case LOG_DELETE:
		json_object_set_new(j, "commit", jid(&r->id));
		break;
	default:
		break;
	}
	if (r->fence)
		json_object_set_new(j, "fence", json_integer(r->fence));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

int log_record_parse(const char *text, size_t len, struct log_record *out)
{
	json_t *j = json_loadb(text, len, 0, NULL), *m, *v;
	const char *op, *key;
	size_t i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!j)
		return -1;
	op = json_string_value(json_object_get(j, "op"));
	for (i = 0; op && i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (!strcmp(op, op_names[i]))
			break;
	if (!op || i == sizeof(op_names) / sizeof(op_names[0]))
		goto out;
	out->op = (enum log_op)i;
	out->fence = json_integer_value(json_object_get(j, "fence"));
	switch (out->op) {
	case LOG_DEPLOY:
		if (pid(json_object_get(j, "module"), &out->id))
			goto out;
		out->size =
		    (uint64_t)json_integer_value(json_object_get(j, "size"));
		out->bytecode = json_is_true(json_object_get(j, "bytecode"));
		break;
	case LOG_COMMIT:
		if (pid(json_object_get(j, "commit"), &out->id))
			goto out;
		v = json_object_get(j, "base");
		out->has_base = v && !json_is_null(v);
		if (out->has_base && pid(v, &out->base))
			goto out;
		out->full = json_is_true(json_object_get(j, "full"));
		m = json_object_get(j, "modules");
		if (!json_is_object(m))
			goto out;
		out->pairs =
		    calloc(json_object_size(m) + 1, sizeof(*out->pairs));
		if (!out->pairs)
			goto out;
		json_object_foreach(m, key, v)
		{
			if (store_id_parse(&out->pairs[out->n].module, key,
					   strlen(key)) ||
			    pid(v, &out->pairs[out->n].commit))
				goto out;
			out->n++;
		}
		break;
	case LOG_RESTORE:
	case LOG_DELETE:
		if (pid(json_object_get(j, "commit"), &out->id))
			goto out;
		break;
	default:
		break;
	}
	ret = 0;
out:
	json_decref(j);
	if (ret)
		log_record_release(out);
	return ret;
}

void log_record_release(struct log_record *r)
{
	free(r->pairs);
	r->pairs = NULL;
	r->n = 0;
}

void log_fold_release(struct log_fold *f)
{
	size_t i;

	for (i = 0; i < f->nc; i++)
		free(f->c[i].pairs);
	free(f->c);
	free(f->mods);
	memset(f, 0, sizeof(*f));
}

const struct log_module *log_fold_module(const struct log_fold *f,
					 const struct store_id *id)
{
	size_t i;

	for (i = 0; i < f->nmods; i++)
		if (store_id_equal(&f->mods[i].id, id))
			return &f->mods[i];
	return NULL;
}

/* The index of commit id in f, or f->nc. */
static size_t commit_index(const struct log_fold *f, const struct store_id *id)
{
	size_t i;

	for (i = f->nc; i-- > 0;)
		if (store_id_equal(&f->c[i].id, id))
			return i;
	return f->nc;
}

const struct log_commit *log_fold_commit(const struct log_fold *f,
					 const struct store_id *id)
{
	size_t i = commit_index(f, id);

	return i < f->nc ? &f->c[i] : NULL;
}

static int pair_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct store_pair *)a)->module,
		      &((const struct store_pair *)b)->module,
		      sizeof(struct store_id));
}

int log_fold_pairs(const struct log_fold *f, const struct log_record *r,
		   struct store_pair **pairs, size_t *n)
{
	const struct log_commit *b = NULL;
	struct store_pair *out, *hit;
	size_t i, k = 0, nb = 0;

	*pairs = NULL;
	*n = 0;
	if (r->has_base && !r->full) {
		b = log_fold_commit(f, &r->base);
		if (!b)
			return -1;
		nb = b->n;
	}
	out = malloc((nb + r->n + 1) * sizeof(*out));
	if (!out)
		return -1;
	if (b)
		memcpy(out, b->pairs, nb * sizeof(*out));
	k = nb;
	for (i = 0; i < r->n; i++) {
		hit =
		    nb ? bsearch(&r->pairs[i], out, nb, sizeof(*out), pair_cmp)
		       : NULL;
		if (hit)
			hit->commit = r->pairs[i].commit;
		else
			out[k++] = r->pairs[i];
	}
	qsort(out, k, sizeof(*out), pair_cmp);
	*pairs = out;
	*n = k;
	return 0;
}

static struct log_commit *commit_mut(struct log_fold *f,
				     const struct store_id *id)
{
	size_t i = commit_index(f, id);

	return i < f->nc ? &f->c[i] : NULL;
}

int log_fold_add(struct log_fold *f, const struct log_record *r)
{
	struct log_commit *c;
	struct store_pair *pairs = NULL;
	size_t n = 0;
	void *p;

	switch (r->op) {
	case LOG_DEPLOY:
		if (log_fold_module(f, &r->id))
			break;
		if (f->nmods == f->capmods) {
			p = realloc(f->mods,
				    (f->capmods * 2 + 16) * sizeof(*f->mods));
			if (!p)
				return -1;
			f->mods = p;
			f->capmods = f->capmods * 2 + 16;
		}
		f->mods[f->nmods].id = r->id;
		f->mods[f->nmods].size = r->size;
		f->mods[f->nmods].bytecode = r->bytecode;
		f->nmods++;
		break;
	case LOG_COMMIT:
		c = commit_mut(f, &r->id);
		if (!c) {
			if (log_fold_pairs(f, r, &pairs, &n))
				return -1;
			if (f->nc == f->capc) {
				p = realloc(f->c,
					    (f->capc * 2 + 16) * sizeof(*f->c));
				if (!p) {
					free(pairs);
					return -1;
				}
				f->c = p;
				f->capc = f->capc * 2 + 16;
			}
			c = &f->c[f->nc++];
			c->id = r->id;
			c->pairs = pairs;
			c->n = n;
		}
		c->live = 1;
		f->has_current = 1;
		f->current = r->id;
		break;
	case LOG_RESTORE:
		c = commit_mut(f, &r->id);
		if (c) {
			f->has_current = 1;
			f->current = r->id;
		}
		break;
	case LOG_DELETE:
		c = commit_mut(f, &r->id);
		if (c)
			c->live = 0;
		break;
	case LOG_PERSIST:
		f->persists++;
		break;
	case LOG_GC:
		f->gcs++;
		break;
	}
	f->seq++;
	return 0;
}

int log_commit_record(const struct log_fold *f, const struct store_id *id,
		      int has_base, const struct store_id *base,
		      const struct store_pair *pairs, size_t n,
		      struct log_record *out)
{
	const struct log_commit *b = has_base ? log_fold_commit(f, base) : NULL;
	struct store_pair *hit;
	size_t i;

	/*
	 * Against a live base only: a snapshot keeps no deleted commit (but
	 * the current one), so a later record must not need one.
	 */
	if (b && !b->live)
		b = NULL;

	memset(out, 0, sizeof(*out));
	out->op = LOG_COMMIT;
	out->id = *id;
	out->has_base = has_base;
	if (has_base)
		out->base = *base;
	out->full = has_base && !b;
	out->pairs = malloc((n + 1) * sizeof(*out->pairs));
	if (!out->pairs)
		return -1;
	for (i = 0; i < n; i++) {
		hit = b ? bsearch(&pairs[i], b->pairs, b->n, sizeof(*hit),
				  pair_cmp)
			: NULL;
		if (hit && store_id_equal(&hit->commit, &pairs[i].commit))
			continue;
		out->pairs[out->n++] = pairs[i];
	}
	return 0;
}

/* 1 when every module of b is in a (both sorted by module). */
static int covers(const struct log_commit *a, const struct log_commit *b)
{
	size_t i = 0, k;

	for (k = 0; k < b->n; k++) {
		while (i < a->n && pair_cmp(&a->pairs[i], &b->pairs[k]) < 0)
			i++;
		if (i == a->n || pair_cmp(&a->pairs[i], &b->pairs[k]))
			return 0;
	}
	return 1;
}

char *log_fold_text(const struct log_fold *f)
{
	const struct log_commit *prev = NULL;
	json_t *j, *mods, *cs, *c, *m;
	char hex[STORE_HEX_LEN + 1], *text;
	size_t i, k, p;

	j = json_pack("{s:I, s:I, s:I}", "seq", (json_int_t)f->seq, "persists",
		      (json_int_t)f->persists, "gcs", (json_int_t)f->gcs);
	mods = json_array();
	cs = json_array();
	if (!j || !mods || !cs) {
		json_decref(j);
		json_decref(mods);
		json_decref(cs);
		return NULL;
	}
	json_object_set_new(j, "modules", mods);
	json_object_set_new(j, "commits", cs);
	json_object_set_new(j, "current",
			    f->has_current ? jid(&f->current) : json_null());
	for (i = 0; i < f->nmods; i++)
		json_array_append_new(
		    mods,
		    json_pack("{s:o, s:I, s:b}", "id", jid(&f->mods[i].id),
			      "size", (json_int_t)f->mods[i].size, "bytecode",
			      f->mods[i].bytecode));
	for (i = 0; i < f->nc; i++) {
		const struct log_commit *cur = &f->c[i];
		int delta;

		/* a deleted commit is no base of a later record (below) */
		if (!cur->live &&
		    !(f->has_current && store_id_equal(&cur->id, &f->current)))
			continue;
		/* against the commit before it here, when it holds its modules
		 */
		delta = prev && covers(cur, prev);
		m = json_object();
		for (k = 0, p = 0; m && k < cur->n; k++) {
			if (delta) {
				while (p < prev->n &&
				       pair_cmp(&prev->pairs[p],
						&cur->pairs[k]) < 0)
					p++;
				if (p < prev->n &&
				    !pair_cmp(&prev->pairs[p],
					      &cur->pairs[k]) &&
				    store_id_equal(&prev->pairs[p].commit,
						   &cur->pairs[k].commit))
					continue;
			}
			store_id_hex(&cur->pairs[k].module, hex);
			json_object_set_new(m, hex, jid(&cur->pairs[k].commit));
		}
		c = json_pack("{s:o, s:b, s:b, s:o}", "id", jid(&cur->id),
			      "live", cur->live, "onprev", delta, "modules",
			      m ? m : json_object());
		json_array_append_new(cs, c);
		prev = cur;
	}
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

int log_fold_parse(const char *text, size_t len, struct log_fold *out)
{
	json_t *j = json_loadb(text, len, 0, NULL), *mods, *cs, *v, *m, *mc;
	struct log_commit *c, *prev;
	const char *key;
	size_t i, np;
	int ret = -1, onprev;

	memset(out, 0, sizeof(*out));
	if (!j)
		return -1;
	mods = json_object_get(j, "modules");
	cs = json_object_get(j, "commits");
	if (!json_is_integer(json_object_get(j, "seq")) ||
	    !json_is_array(mods) || !json_is_array(cs))
		goto out;
	out->seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
	out->persists =
	    (unsigned)json_integer_value(json_object_get(j, "persists"));
	out->gcs = (unsigned)json_integer_value(json_object_get(j, "gcs"));
	v = json_object_get(j, "current");
	out->has_current = v && !json_is_null(v);
	if (out->has_current && pid(v, &out->current))
		goto out;
	out->mods = calloc(json_array_size(mods) + 1, sizeof(*out->mods));
	out->c = calloc(json_array_size(cs) + 1, sizeof(*out->c));
	if (!out->mods || !out->c)
		goto out;
	out->capmods = json_array_size(mods) + 1;
	out->capc = json_array_size(cs) + 1;
	json_array_foreach(mods, i, v)
	{
		if (pid(json_object_get(v, "id"), &out->mods[i].id))
			goto out;
		out->mods[i].size =
		    (uint64_t)json_integer_value(json_object_get(v, "size"));
		out->mods[i].bytecode =
		    json_is_true(json_object_get(v, "bytecode"));
		out->nmods++;
	}
	json_array_foreach(cs, i, v)
	{
		c = &out->c[out->nc];
		m = json_object_get(v, "modules");
		if (pid(json_object_get(v, "id"), &c->id) || !json_is_object(m))
			goto out;
		c->live = json_is_true(json_object_get(v, "live"));
		/* "onprev": only the pairs differing from the one before */
		onprev = json_is_true(json_object_get(v, "onprev"));
		prev = onprev && out->nc ? &out->c[out->nc - 1] : NULL;
		np = prev ? prev->n : 0;
		c->pairs =
		    calloc(np + json_object_size(m) + 1, sizeof(*c->pairs));
		out->nc++;
		if (!c->pairs || (onprev && !prev))
			goto out;
		if (np)
			memcpy(c->pairs, prev->pairs, np * sizeof(*c->pairs));
		c->n = np;
		json_object_foreach(m, key, mc)
		{
			struct store_pair q, *hit;

			if (store_id_parse(&q.module, key, strlen(key)) ||
			    pid(mc, &q.commit))
				goto out;
			hit =
			    np ? bsearch(&q, c->pairs, np, sizeof(q), pair_cmp)
			       : NULL;
			if (hit)
				hit->commit = q.commit;
			else
				c->pairs[c->n++] = q;
		}
		qsort(c->pairs, c->n, sizeof(*c->pairs), pair_cmp);
	}
	ret = 0;
out:
	json_decref(j);
	if (ret)
		log_fold_release(out);
	return ret;
}
