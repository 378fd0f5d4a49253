/*
 * proofvec.c - the proof vectors of tests/proof-vectors.json.
 */
#include "proofvec.h"

#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *pv_load(const char *argv0)
{
	const char *env = getenv("MODSTORE_PROOF_VECTORS");
	json_error_t jerr;
	json_t *v;
	char *copy, path[4096];

	if (env && *env)
		return json_load_file(env, 0, &jerr);
	v = json_load_file("tests/proof-vectors.json", 0, &jerr);
	if (v)
		return v;
	/* build/<variant>/tests/PROG -> tests/proof-vectors.json */
	copy = strdup(argv0);
	if (!copy)
		return NULL;
	snprintf(path, sizeof(path), "%s/../../../tests/proof-vectors.json",
		 dirname(copy));
	free(copy);
	v = json_load_file(path, 0, &jerr);
	if (!v)
		fprintf(stderr, "cannot load proof vectors: %s\n", jerr.text);
	return v;
}

static int id_of(const json_t *j, const char *key, struct store_id *out)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s && store_id_parse(out, s, strlen(s)) == STORE_OK ? 0 : -1;
}

static int path_of(const json_t *j, const char *key, struct store_id *out,
		   size_t *n)
{
	const json_t *a = json_object_get(j, key), *e;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) > STORE_PROOF_MAX_PATH)
		return -1;
	json_array_foreach(a, i, e)
	{
		const char *s = json_string_value(e);

		if (!s || store_id_parse(&out[i], s, strlen(s)) != STORE_OK)
			return -1;
	}
	*n = json_array_size(a);
	return 0;
}

static int u64_of(const json_t *j, const char *key, uint64_t *out)
{
	const json_t *v = json_object_get(j, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int pv_proof(const json_t *j, struct store_page_proof *p)
{
	const char *b64 = json_string_value(json_object_get(j, "page"));
	size_t len = 0;

	memset(p, 0, sizeof(*p));
	if (id_of(j, "commit", &p->commit) || id_of(j, "module", &p->module) ||
	    id_of(j, "module_commit", &p->module_commit) ||
	    u64_of(j, "page_index", &p->page_index) ||
	    u64_of(j, "page_count", &p->page_count) ||
	    u64_of(j, "module_index", &p->module_index) ||
	    u64_of(j, "module_count", &p->module_count) ||
	    path_of(j, "page_path", p->page_path, &p->page_path_len) ||
	    path_of(j, "module_path", p->module_path, &p->module_path_len) ||
	    !b64)
		return -1;
	if (sodium_base642bin(p->page, sizeof(p->page), b64, strlen(b64), NULL,
			      &len, NULL, sodium_base64_VARIANT_ORIGINAL) ||
	    len != STORE_PAGE_SIZE)
		return -1;
	return 0;
}

/* The pages of module mod found in the proofs: its size, its memory. */
static unsigned char *module_memory(const json_t *proofs,
				    const struct store_id *mod, uint64_t *size)
{
	struct store_page_proof p;
	unsigned char *mem = NULL;
	const json_t *j;
	size_t i;

	*size = 0;
	json_array_foreach(proofs, i, j)
	{
		if (pv_proof(j, &p) || !store_id_equal(&p.module, mod))
			continue;
		if (!mem) {
			*size = p.page_count * STORE_PAGE_SIZE;
			mem = calloc(1, *size);
			if (!mem)
				return NULL;
		}
		if (p.page_index < p.page_count)
			memcpy(mem + p.page_index * STORE_PAGE_SIZE, p.page,
			       STORE_PAGE_SIZE);
	}
	return mem;
}

int pv_make_state(const json_t *vectors, const char *dir,
		  struct store_id *commit)
{
	const json_t *proofs = json_object_get(vectors, "proofs"), *j;
	struct store_options o = {0};
	struct store_commit_info ci = {0};
	struct store_session_info si;
	struct store_page_proof p;
	struct store *s = NULL;
	enum store_err err;
	unsigned char *mem;
	uint64_t size;
	size_t i;
	int ret = -1;

	o.dir = dir;
	err = store_open(&s, &o);
	/* deploy every module first, then write them in one session */
	for (int pass = 0; pass < 2 && !err; pass++) {
		if (pass == 1)
			err = store_session_begin(s, NULL, &si);
		json_array_foreach(proofs, i, j)
		{
			if (err || pv_proof(j, &p) || p.page_index != 0)
				continue;
			mem = module_memory(proofs, &p.module, &size);
			if (!mem) {
				err = STORE_ENOMEM;
				break;
			}
			if (pass == 0)
				err = store_deploy_id(s, &p.module, size, NULL,
						      NULL);
			else
				err = store_session_write(s, &si.id, &p.module,
							  0, mem, size);
			free(mem);
		}
	}
	if (!err)
		err = store_session_commit(s, &si.id, NULL, &ci);
	if (!err)
		err = store_persist(s);
	if (err) {
		fprintf(stderr, "pv_make_state: %s\n", store_strerror(err));
		goto out;
	}
	*commit = ci.id;
	ret = 0;
out:
	store_commit_info_release(&ci);
	store_close(s);
	return ret;
}
