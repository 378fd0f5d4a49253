/*
 * ids.c - errors, ids and the hashes they are made of. Pure: no state, no
 * I/O, safe from any thread.
 */
#include "ids.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	const char *text;
} errs[STORE_ERR_COUNT] = {
    [STORE_OK] = {"ok", "success"},
    [STORE_EINVAL] = {"invalid_argument", "invalid argument"},
    [STORE_ENOMODULE] = {"module_not_found", "no such module"},
    [STORE_ENOSESSION] = {"session_not_found", "no such session"},
    [STORE_ENOCOMMIT] = {"commit_not_found", "no such commit"},
    [STORE_ENOBYTECODE] = {"bytecode_not_found",
			   "the module was deployed before its bytecode was "
			   "kept"},
    [STORE_ETOOBIG] = {"too_large",
		       "memory would exceed the maximum module size"},
    [STORE_ERANGE] = {"range_not_satisfiable", "read past the end of memory"},
    [STORE_EBUSY] = {"too_many_sessions", "too many open sessions"},
    [STORE_EMISMATCH] = {"root_mismatch",
			 "the current root is not the expected one"},
    [STORE_ENOSPC] = {"disk_full", "no space left on the state disk"},
    [STORE_ENOMEM] = {"out_of_memory", "out of memory"},
    [STORE_EIO] = {"io_error", "input/output error on the state directory"},
    [STORE_ECORRUPT] = {"corrupt_state",
			"a file of the state directory is malformed"},
    [STORE_ELOCKED] = {"locked",
		       "the state directory is in use by another process"},
};

const char *store_strerror(enum store_err err)
{
	if ((unsigned)err >= STORE_ERR_COUNT)
		return "unknown error";
	return errs[err].text;
}

const char *store_errname(enum store_err err)
{
	if ((unsigned)err >= STORE_ERR_COUNT)
		return "unknown";
	return errs[err].name;
}

/* --- hashes -------------------------------------------------------------- */

void ids_leaf_page(const void *page, struct store_id *out)
{
	static const unsigned char zero = 0x00;
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, STORE_ID_BYTES);
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, page, STORE_PAGE_SIZE);
	crypto_generichash_final(&st, out->b, STORE_ID_BYTES);
}

void ids_code_begin(crypto_generichash_state *st)
{
	crypto_generichash_init(st, NULL, 0, STORE_ID_BYTES);
}

void ids_code_add(crypto_generichash_state *st, const void *code, size_t len)
{
	crypto_generichash_update(st, code, len);
}

void ids_code_end(crypto_generichash_state *st, struct store_id *out)
{
	crypto_generichash_final(st, out->b, STORE_ID_BYTES);
}

/* H(prefix || a || b): an inner node (0x01) or a module leaf (0x00). */
static void hash_pair(unsigned char prefix, const struct store_id *a,
		      const struct store_id *b, struct store_id *out)
{
	unsigned char buf[1 + 2 * STORE_ID_BYTES];

	buf[0] = prefix;
	memcpy(buf + 1, a->b, STORE_ID_BYTES);
	memcpy(buf + 1 + STORE_ID_BYTES, b->b, STORE_ID_BYTES);
	crypto_generichash(out->b, STORE_ID_BYTES, buf, sizeof(buf), NULL, 0);
}

void ids_node(const struct store_id *l, const struct store_id *r,
	      struct store_id *out)
{
	hash_pair(0x01, l, r, out);
}

void ids_empty(struct store_id *out)
{
	crypto_generichash(out->b, STORE_ID_BYTES, NULL, 0, NULL, 0);
}

void ids_module_leaf(const struct store_id *mod, const struct store_id *mc,
		     struct store_id *out)
{
	hash_pair(0x00, mod, mc, out);
}

const struct store_id *ids_zero_leaf(void)
{
	/* H(0x00 || 4096 zero bytes), fixed by hashing.md */
	static const struct store_id zl = {
	    {0x10, 0xE1, 0x7C, 0x01, 0x82, 0x97, 0x66, 0x1C, 0xC0, 0x4C, 0x84,
	     0x7E, 0x5A, 0x79, 0xBA, 0x3F, 0x91, 0xE1, 0x8D, 0xF2, 0x16, 0x76,
	     0x40, 0x88, 0x7F, 0x4F, 0x75, 0x70, 0x8C, 0xDE, 0x0D, 0x17}};
	return &zl;
}

size_t ids_level_up(const struct store_id *src, size_t n, struct store_id *dst)
{
	size_t j, m = (n + 1) / 2;

	for (j = 0; j < m; j++) {
		if (2 * j + 1 >= n)
			dst[j] = src[2 * j];
		else if (src != dst && j > 0 &&
			 !memcmp(&src[2 * j], &src[2 * j - 2],
				 2 * sizeof(*src)))
			dst[j] = dst[j - 1]; /* same pair, same parent */
		else
			ids_node(&src[2 * j], &src[2 * j + 1], &dst[j]);
	}
	return m;
}

void ids_mth(const struct store_id *leaves, size_t n, struct store_id *scratch,
	     struct store_id *out)
{
	if (n == 0) {
		ids_empty(out);
		return;
	}
	if (n == 1) {
		*out = leaves[0];
		return;
	}
	n = ids_level_up(leaves, n, scratch);
	while (n > 1)
		n = ids_level_up(scratch, n, scratch);
	*out = scratch[0];
}

void ids_zero_root(uint64_t npages, struct store_id *out)
{
	/*
	 * MTH(n) = node(MTH(k), MTH(n - k)), k the largest power of two
	 * below n, and MTH(2^i) of zero pages is z[i]: the right part is
	 * folded from its lowest set bit up.
	 */
	struct store_id z[64], acc;
	unsigned int i, have = 0;

	if (npages == 0) {
		ids_empty(out);
		return;
	}
	z[0] = *ids_zero_leaf();
	for (i = 1; i < 64 && ((uint64_t)1 << i) <= npages; i++)
		ids_node(&z[i - 1], &z[i - 1], &z[i]);
	for (i = 0; i < 64; i++) {
		if (!(npages >> i & 1))
			continue;
		if (!have) {
			acc = z[i];
			have = 1;
		} else {
			ids_node(&z[i], &acc, &acc);
		}
	}
	*out = acc;
}

int ids_pair_cmp(const void *a, const void *b)
{
	const struct store_pair *x = a, *y = b;

	return memcmp(x->module.b, y->module.b, STORE_ID_BYTES);
}

int ids_is_upper_hex(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'A' && p[i] <= 'F')))
			return 0;
	return 1;
}

/* --- the public id functions ---------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

enum store_err store_id_parse(struct store_id *out, const char *hex, size_t len)
{
	size_t i;
	int hi, lo;

	if (!hex || len != STORE_HEX_LEN)
		return STORE_EINVAL;
	for (i = 0; i < STORE_ID_BYTES; i++) {
		hi = hexval(hex[2 * i]);
		lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return STORE_EINVAL;
		out->b[i] = (unsigned char)(hi << 4 | lo);
	}
	return STORE_OK;
}

void store_id_hex(const struct store_id *id, char out[STORE_HEX_LEN + 1])
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < STORE_ID_BYTES; i++) {
		out[2 * i] = hex[id->b[i] >> 4];
		out[2 * i + 1] = hex[id->b[i] & 15];
	}
	out[STORE_HEX_LEN] = '\0';
}

int store_id_equal(const struct store_id *a, const struct store_id *b)
{
	return memcmp(a->b, b->b, STORE_ID_BYTES) == 0;
}

void store_module_id(const void *code, size_t len, struct store_id *out)
{
	crypto_generichash(out->b, STORE_ID_BYTES, code, len, NULL, 0);
}

void store_memory_id(const void *mem, size_t len, struct store_id *out)
{
	/*
	 * RFC 6962 MTH streamed over the pages with a stack of perfect
	 * subtrees (no allocation): equal sizes merge as they come, and what
	 * remains folds from the right.
	 */
	struct store_id stack[64];
	size_t size[64], top = 0, n = len / STORE_PAGE_SIZE, i;
	const unsigned char *p = mem;

	if (n == 0) {
		ids_empty(out);
		return;
	}
	for (i = 0; i < n; i++) {
		ids_leaf_page(p + i * STORE_PAGE_SIZE, &stack[top]);
		size[top++] = 1;
		while (top >= 2 && size[top - 1] == size[top - 2]) {
			ids_node(&stack[top - 2], &stack[top - 1],
				 &stack[top - 2]);
			size[top - 2] *= 2;
			top--;
		}
	}
	while (top >= 2) {
		ids_node(&stack[top - 2], &stack[top - 1], &stack[top - 2]);
		top--;
	}
	*out = stack[0];
}

enum store_err store_state_id(const struct store_pair *pairs, size_t n,
			      struct store_id *out)
{
	struct store_pair *sorted = NULL;
	struct store_id *leaves = NULL;
	size_t i;

	if (n == 0) {
		ids_empty(out);
		return STORE_OK;
	}
	sorted = malloc(n * sizeof(*sorted));
	leaves = malloc(n * sizeof(*leaves));
	if (!sorted || !leaves) {
		free(sorted);
		free(leaves);
		return STORE_ENOMEM;
	}
	memcpy(sorted, pairs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), ids_pair_cmp);
	for (i = 0; i < n; i++)
		ids_module_leaf(&sorted[i].module, &sorted[i].commit,
				&leaves[i]);
	ids_mth(leaves, n, leaves, out);
	free(sorted);
	free(leaves);
	return STORE_OK;
}
