/*
 * commits_file.c - the file `commits`: the JSON object {"COMMIT": {"MOD":
 * "MODCOMMIT", ...}, ...} of the seed's design. The store does not link a
 * JSON library; the format is fixed and small, so it is written and parsed
 * here, strictly.
 */
#include "commits_file.h"
#include "fs.h"
#include "ids.h"
#include "store_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Append "HEX" (quoted) at p; the end of it. */
static char *put_id(char *p, const struct store_id *id)
{
	*p++ = '"';
	store_id_hex(id, p);
	p += STORE_HEX_LEN;
	*p++ = '"';
	return p;
}

enum store_err commits_file_format(const struct commits_entry *const *v,
				   size_t n, char **out, size_t *len)
{
	size_t cap = 4, i, k, pairs = 0;
	char *buf, *p;

	for (i = 0; i < n; i++)
		pairs += v[i]->n;
	/* per commit: ,\n"HEX":{ } ; per pair "HEX":"HEX", */
	cap += n * (STORE_HEX_LEN + 8) + pairs * (2 * STORE_HEX_LEN + 8);
	buf = malloc(cap);
	if (!buf)
		return STORE_ENOMEM;
	p = buf;
	*p++ = '{';
	for (i = 0; i < n; i++) {
		const struct commits_entry *c = v[i];

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
	if (n)
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

enum store_err commits_file_parse(struct commits *cs, const char *buf,
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
			qsort(pairs, n, sizeof(*pairs), ids_pair_cmp);
		for (i = 1; i < n; i++)
			if (!ids_pair_cmp(&pairs[i - 1], &pairs[i]))
				goto out;
		err = store_state_id(pairs, n, &check);
		if (err)
			goto out;
		err = STORE_ECORRUPT;
		if (!store_id_equal(&check, &id))
			goto out; /* the id does not match its modules */
		err = commits_add(cs, &id, pairs, n, 1);
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

enum store_err commits_file_load(struct store *s, struct commits *into)
{
	enum store_err err;
	char *buf;
	size_t len;

	err = fs_read_file(&s->fs, COMMITS_FILE, &buf, &len, NULL);
	if (err == STORE_ENOCOMMIT)
		return STORE_OK;
	if (err)
		return err;
	err = commits_file_parse(into, buf, len);
	free(buf);
	return err;
}

enum store_err commits_file_write(struct store *s, const char *buf, size_t len)
{
	return fs_write_atomic(&s->fs, COMMITS_FILE, buf, len, "persist.write");
}
