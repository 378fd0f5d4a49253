/*
 * unit_vectors.c - every id of tests/vectors.json, computed by the id
 * functions and, for module commits, by the store itself (deploy, write in
 * a session, commit); id parsing and printing.
 */
#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

static json_t *load_vectors(const char *argv0)
{
	const char *env = getenv("MODSTORE_VECTORS");
	json_error_t jerr;
	json_t *v = NULL;
	char *copy, path[4096];

	if (env && *env)
		return json_load_file(env, 0, &jerr);
	v = json_load_file("tests/vectors.json", 0, &jerr);
	if (v)
		return v;
	/* build/<variant>/tests/unit_vectors -> tests/vectors.json */
	copy = strdup(argv0);
	if (!copy)
		return NULL;
	snprintf(path, sizeof(path), "%s/../../../tests/vectors.json",
		 dirname(copy));
	free(copy);
	v = json_load_file(path, 0, &jerr);
	if (!v)
		fprintf(stderr, "cannot load vectors: %s\n", jerr.text);
	return v;
}

/* Decode hex into a new buffer; NULL if malformed. */
static unsigned char *unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex), i;
	unsigned char *b;

	if (n % 2)
		return NULL;
	b = malloc(n / 2 + 1);
	if (!b)
		return NULL;
	for (i = 0; i < n / 2; i++) {
		unsigned int x;

		if (sscanf(hex + 2 * i, "%2x", &x) != 1) {
			free(b);
			return NULL;
		}
		b[i] = (unsigned char)x;
	}
	*len = n / 2;
	return b;
}

static void test_module_ids(json_t *vec)
{
	json_t *arr = json_object_get(vec, "module_ids"), *e;
	size_t i;

	CHECK(json_array_size(arr) > 0);
	json_array_foreach(arr, i, e)
	{
		const char *code =
		    json_string_value(json_object_get(e, "bytecode_hex"));
		struct store_id want =
		    st_id(json_string_value(json_object_get(e, "module_id")));
		struct store_id got, ref;
		unsigned char *b;
		size_t len = 0;

		b = code ? unhex(code, &len) : NULL;
		CHECK(b != NULL);
		if (!b)
			continue;
		store_module_id(b, len, &got);
		CHECK_ID(&got, &want);
		st_h(b, len, &ref);
		CHECK_ID(&ref, &want);
		free(b);
	}
}

struct memvec {
	const char *desc;
	unsigned char *mem;
	size_t len;
	int pattern;
	json_t *writes;
	struct store_id want;
};

/* "zeros N" / "pattern N" plus writes into mv->mem. */
static int memvec_build(json_t *e, struct memvec *mv)
{
	char kind[16];
	unsigned long long n;
	json_t *w;
	size_t i;

	memset(mv, 0, sizeof(*mv));
	mv->desc = json_string_value(json_object_get(e, "memory"));
	mv->want =
	    st_id(json_string_value(json_object_get(e, "module_commit_id")));
	if (!mv->desc || sscanf(mv->desc, "%15s %llu", kind, &n) != 2)
		return -1;
	mv->len = (size_t)n;
	mv->mem = calloc(1, mv->len ? mv->len : 1);
	if (!mv->mem)
		return -1;
	if (!strcmp(kind, "pattern")) {
		st_pattern(mv->mem, mv->len);
		mv->pattern = 1;
	} else if (strcmp(kind, "zeros")) {
		return -1;
	}
	mv->writes = json_object_get(e, "writes");
	json_array_foreach(mv->writes, i, w)
	{
		json_int_t off = json_integer_value(json_array_get(w, 0));
		unsigned char *b;
		size_t len;

		b = unhex(json_string_value(json_array_get(w, 1)), &len);
		if (!b || off < 0 || (size_t)off + len > mv->len) {
			free(b);
			return -1;
		}
		memcpy(mv->mem + off, b, len);
		free(b);
	}
	return 0;
}

/* The same module commit id computed by the store: deploy, write, commit. */
static void memvec_store(const struct memvec *mv, size_t idx)
{
	char code[64], *dir = t_tmpdir("vectors");
	struct store *s = NULL;
	struct store_id mod, sid;
	struct store_commit_info ci;
	struct store_module_info info;
	enum store_err err;
	uint64_t size = 0;
	json_t *w;
	size_t i, found = 0;

	memset(&ci, 0, sizeof(ci));
	CHECK(dir != NULL);
	if (!dir)
		return;
	snprintf(code, sizeof(code), "vector module %zu", idx);
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(st_deploy(s, code, mv->len, &mod), STORE_OK);
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(store_session_size(s, &sid, &mod, &size), STORE_OK);
	CHECK(size == mv->len);
	if (mv->pattern)
		CHECK_ERR(
		    store_session_write(s, &sid, &mod, 0, mv->mem, mv->len),
		    STORE_OK);
	json_array_foreach(mv->writes, i, w)
	{
		json_int_t off = json_integer_value(json_array_get(w, 0));
		const char *hex = json_string_value(json_array_get(w, 1));
		unsigned char b[64];
		size_t len = strlen(hex) / 2, j;

		for (j = 0; j < len && j < sizeof(b); j++)
			b[j] = mv->mem[off + (json_int_t)j];
		CHECK_ERR(
		    store_session_write(s, &sid, &mod, (uint64_t)off, b, len),
		    STORE_OK);
	}
	err = store_session_commit(s, &sid, NULL, &ci);
	CHECK_ERR(err, STORE_OK);
	if (err == STORE_OK) {
		struct store_id root;

		for (i = 0; i < ci.n; i++)
			if (store_id_equal(&ci.pairs[i].module, &mod)) {
				CHECK_ID(&ci.pairs[i].commit, &mv->want);
				found++;
			}
		CHECK(found == 1 && ci.n == 1);
		CHECK(!ci.has_base);
		root = st_root(s);
		CHECK_ID(&root, &ci.id);
		store_commit_info_release(&ci);
	}
	CHECK_ERR(store_module_get(s, &mod, &info), STORE_OK);
	CHECK(info.has_commit && info.size == mv->len);
	CHECK_ID(&info.last_commit, &mv->want);
	ST_CHECK_STORE(s, dir, NULL);
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

static void test_module_commit_ids(json_t *vec)
{
	json_t *arr = json_object_get(vec, "module_commit_ids"), *e;
	size_t i;

	CHECK(json_array_size(arr) > 0);
	json_array_foreach(arr, i, e)
	{
		struct memvec mv;
		struct store_id got, ref;

		if (memvec_build(e, &mv)) {
			st_fail(__FILE__, __LINE__, "vector %zu unreadable", i);
			free(mv.mem);
			continue;
		}
		store_memory_id(mv.mem, mv.len, &got);
		CHECK_ID(&got, &mv.want);
		st_ref_memory_id(mv.mem, mv.len, &ref);
		CHECK_ID(&ref, &mv.want);
		if (mv.len) /* 'zeros 0' cannot be deployed */
			memvec_store(&mv, i);
		free(mv.mem);
	}
}

static void test_state_roots(json_t *vec)
{
	json_t *arr = json_object_get(vec, "state_roots"), *e, *mc;
	size_t i;

	CHECK(json_array_size(arr) > 0);
	json_array_foreach(arr, i, e)
	{
		json_t *mods = json_object_get(e, "modules");
		size_t n = json_object_size(mods), k = 0, j;
		struct store_pair *p = calloc(n + 1, sizeof(*p));
		struct store_pair *r = calloc(n + 1, sizeof(*r));
		struct store_id want =
		    st_id(json_string_value(json_object_get(e, "root")));
		struct store_id got, ref;
		const char *key;

		if (!p || !r) {
			free(p);
			free(r);
			CHECK(0);
			continue;
		}
		json_object_foreach(mods, key, mc)
		{
			p[k].module = st_id(key);
			p[k].commit = st_id(json_string_value(mc));
			k++;
		}
		CHECK_ERR(store_state_id(p, n, &got), STORE_OK);
		CHECK_ID(&got, &want);
		/* any order: reversed */
		for (j = 0; j < n; j++)
			r[j] = p[n - 1 - j];
		CHECK_ERR(store_state_id(r, n, &got), STORE_OK);
		CHECK_ID(&got, &want);
		CHECK(st_ref_state_id(p, n, &ref) == 0);
		CHECK_ID(&ref, &want);
		free(p);
		free(r);
	}
}

static void test_empty_hash(json_t *vec)
{
	struct store_id want =
	    st_id(json_string_value(json_object_get(vec, "empty_hash")));
	struct store_id got;
	unsigned char none[1] = {0};

	st_h("", 0, &got);
	CHECK_ID(&got, &want);
	store_module_id(none, 0, &got);
	CHECK_ID(&got, &want);
	store_memory_id(none, 0, &got);
	CHECK_ID(&got, &want);
	CHECK_ERR(store_state_id(NULL, 0, &got), STORE_OK);
	CHECK_ID(&got, &want);
}

/* The root of a fresh store (no commit) is H(""). */
static void test_empty_root(json_t *vec)
{
	struct store_id want =
	    st_id(json_string_value(json_object_get(vec, "empty_hash")));
	char *dir = t_tmpdir("vectors-empty");
	struct store *s = NULL;
	struct store_id root;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(store_root(s, &root), STORE_OK);
	CHECK_ID(&root, &want);
	CHECK_ERR(st_deploy(s, "empty root", 4096, NULL), STORE_OK);
	CHECK_ERR(store_root(s, &root), STORE_OK);
	CHECK_ID(&root, &want);
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

/* The id functions against the reference on sizes the vectors skip. */
static void test_against_reference(void)
{
	size_t pages, n, i;
	unsigned char *mem = malloc(40 * STORE_PAGE_SIZE);
	struct store_pair p[40];
	unsigned int seed = 12345;

	CHECK(mem != NULL);
	if (!mem)
		return;
	for (i = 0; i < 40 * STORE_PAGE_SIZE; i++) {
		seed = seed * 1103515245u + 12345u;
		mem[i] = (unsigned char)(seed >> 16);
	}
	for (pages = 1; pages <= 40; pages++) {
		struct store_id got, ref;

		store_memory_id(mem, pages * STORE_PAGE_SIZE, &got);
		st_ref_memory_id(mem, pages * STORE_PAGE_SIZE, &ref);
		CHECK_ID(&got, &ref);
	}
	for (i = 0; i < 40; i++) {
		st_h(mem + i * 64, 32, &p[i].module);
		st_h(mem + i * 64 + 32, 32, &p[i].commit);
	}
	for (n = 0; n <= 40; n++) {
		struct store_id got, ref;

		CHECK_ERR(store_state_id(p, n, &got), STORE_OK);
		CHECK(st_ref_state_id(p, n, &ref) == 0);
		CHECK_ID(&got, &ref);
	}
	free(mem);
}

static void test_parse_hex(void)
{
	static const char upper[] = "0E5751C026E543B2E8AB2EB06099DAA1"
				    "D1E5DF47778F7787FAAB45CDF12FE3A8";
	static const char lower[] = "0e5751c026e543b2e8ab2eb06099daa1"
				    "d1e5df47778f7787faab45cdf12fe3a8";
	static const char mixed[] = "0e5751C026e543B2E8ab2eb06099DAA1"
				    "d1E5DF47778f7787FAAB45cdf12fe3A8";
	static const char bad[] = "G g\n\0xZ-+";
	char buf[STORE_HEX_LEN + 2], out[STORE_HEX_LEN + 1];
	struct store_id a, b, c, ref;
	size_t i, k;

	CHECK(st_parse(upper, 64, &ref) == 0);
	CHECK_ERR(store_id_parse(&a, upper, 64), STORE_OK);
	CHECK_ERR(store_id_parse(&b, lower, 64), STORE_OK);
	CHECK_ERR(store_id_parse(&c, mixed, 64), STORE_OK);
	CHECK_ID(&a, &ref);
	CHECK_ID(&b, &ref);
	CHECK_ID(&c, &ref);
	CHECK(store_id_equal(&a, &b));
	c.b[31] ^= 1;
	CHECK(!store_id_equal(&a, &c));
	c.b[31] ^= 1;
	c.b[0] ^= 0x80;
	CHECK(!store_id_equal(&a, &c));

	/* lengths other than 64 */
	CHECK_ERR(store_id_parse(&a, upper, 63), STORE_EINVAL);
	CHECK_ERR(store_id_parse(&a, upper, 0), STORE_EINVAL);
	CHECK_ERR(store_id_parse(&a, upper, 62), STORE_EINVAL);
	memcpy(buf, upper, 64);
	buf[64] = '0';
	buf[65] = '\0';
	CHECK_ERR(store_id_parse(&a, buf, 65), STORE_EINVAL);
	CHECK_ERR(store_id_parse(&a, buf, 128), STORE_EINVAL);
	/* len governs, not the NUL */
	CHECK_ERR(store_id_parse(&a, buf, 64), STORE_OK);
	CHECK_ID(&a, &ref);

	/* a bad character anywhere */
	for (k = 0; k < sizeof(bad) - 1; k++)
		for (i = 0; i < 64; i += 7) {
			memcpy(buf, upper, 64);
			buf[i] = bad[k];
			CHECK_ERR(store_id_parse(&a, buf, 64), STORE_EINVAL);
		}
	memcpy(buf, upper, 64);
	buf[63] = 'g';
	CHECK_ERR(store_id_parse(&a, buf, 64), STORE_EINVAL);

	/* printing: uppercase, NUL-terminated, round trip */
	memset(out, 'x', sizeof(out));
	store_id_hex(&ref, out);
	CHECK(out[64] == '\0');
	CHECK(!strcmp(out, upper));
	for (i = 0; i < 256; i++) {
		struct store_id x, y;

		memset(x.b, (int)i, sizeof(x.b));
		x.b[0] = 0xAB;
		store_id_hex(&x, out);
		CHECK(st_is_hex64_upper(out, strlen(out)));
		CHECK_ERR(store_id_parse(&y, out, 64), STORE_OK);
		CHECK_ID(&y, &x);
	}
}

int main(int argc, char **argv)
{
	json_t *vec = load_vectors(argc > 0 ? argv[0] : "");

	(void)argc;
	CHECK(vec != NULL);
	if (vec) {
		test_module_ids(vec);
		test_module_commit_ids(vec);
		test_state_roots(vec);
		test_empty_hash(vec);
		test_empty_root(vec);
		json_decref(vec);
	}
	test_against_reference();
	test_parse_hex();
	return t_done();
}
