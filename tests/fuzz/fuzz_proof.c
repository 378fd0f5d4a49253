/*
 * fuzz_proof.c - audit paths, their verification and the diff of two page
 * trees, on trees the input describes.
 *
 * Byte 0 and byte 1 are the sizes (1 to 256 leaves) of trees A and B;
 * the next bytes are leaf values of A, then of B (a missing byte is 0, so
 * that A and B share most leaves); the rest is a hostile proof. Leaves
 * are synthetic ids (their first byte the value), trees are built the
 * store's way (tree_copy, then tree_update of everything, or of a few
 * leaves at a time for B). Checks, with an abort() on any failure:
 *
 * - B's tree updated leaf by leaf has the root of B built at once, and
 *   both roots are RFC 6962 MTH computed here recursively;
 * - for every leaf of A, proof_path() verifies with store_proof_verify(),
 *   and fails with another leaf, another index or one id of the path
 *   changed;
 * - proof_diff(A, B) lists exactly the leaves of B beyond A's end or
 *   different from A's, ascending, and stops at its budget;
 * - store_proof_verify() on the hostile proof never reads past its path
 *   and, when it accepts, the path recomputes the root.
 */
#include "ids.h"
#include "proof.h"
#include "store.h"
#include "tree.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_proof: %s\n", what);
	abort();
}

static void ref_mth(const struct store_id *l, size_t lo, size_t hi,
		    struct store_id *out)
{
	struct store_id a, b;
	size_t k = 1;

	if (hi - lo == 1) {
		*out = l[lo];
		return;
	}
	while (k * 2 < hi - lo)
		k *= 2;
	ref_mth(l, lo, lo + k, &a);
	ref_mth(l, lo + k, hi, &b);
	ids_node(&a, &b, out);
}

static struct tree *make(const struct store_id *leaves, size_t n, int steps)
{
	struct tree *t = tree_copy(NULL, n);
	size_t i, dirty[4], nd;

	if (!t)
		fail("out of memory");
	if (!steps) {
		memcpy(t->lv[0], leaves, n * sizeof(*leaves));
		tree_update(t, NULL, 0, 1);
		return t;
	}
	/* all-zero leaves first, then changed a few at a time */
	tree_update(t, NULL, 0, 1);
	for (i = 0; i < n; i += nd) {
		for (nd = 0; nd < 4 && i + nd < n; nd++) {
			t->lv[0][i + nd] = leaves[i + nd];
			dirty[nd] = i + nd;
		}
		if (tree_update(t, dirty, nd, 0) < 0)
			fail("out of memory");
	}
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_id la[256], lb[256], path[STORE_PROOF_MAX_PATH], root, ref;
	struct store_id hostile[STORE_PROOF_MAX_PATH], *hp;
	size_t na, nb, i, k, len, n = 0, cap = 0, pos;
	uint64_t *pages = NULL, budget, hi, hc;
	struct tree *a, *b, *b2;
	int rc;

	if (size < 2)
		return 0;
	na = (size_t)data[0] + 1;
	nb = (size_t)data[1] + 1;
	pos = 2;
	memset(la, 0, sizeof(la));
	memset(lb, 0, sizeof(lb));
	for (i = 0; i < na; i++) {
		la[i].b[0] = pos < size ? data[pos] : 0;
		la[i].b[1] = 1;
		pos += pos < size;
	}
	for (i = 0; i < nb; i++) {
		lb[i].b[0] = pos < size ? data[pos] : (i < na ? la[i].b[0] : 0);
		lb[i].b[1] = 1;
		pos += pos < size;
	}
	a = make(la, na, 0);
	b = make(lb, nb, 0);
	b2 = make(lb, nb, 1);
	tree_root(b, &root);
	tree_root(b2, &ref);
	if (!store_id_equal(&root, &ref))
		fail("B updated in steps has another root");
	ref_mth(lb, 0, nb, &ref);
	if (!store_id_equal(&root, &ref))
		fail("B's root is not its MTH");
	tree_root(a, &root);
	ref_mth(la, 0, na, &ref);
	if (!store_id_equal(&root, &ref))
		fail("A's root is not its MTH");

	for (i = 0; i < na; i++) {
		struct store_id other = la[i];

		len = proof_path(a, i, path);
		if (!store_proof_verify(i, na, &la[i], path, len, &root))
			fail("a path does not verify");
		other.b[2] ^= 1;
		if (store_proof_verify(i, na, &other, path, len, &root))
			fail("another leaf verifies");
		if (na > 1 &&
		    store_proof_verify((i + 1) % na, na, &la[i], path, len,
				       &root) &&
		    !store_id_equal(&la[i], &la[(i + 1) % na]))
			fail("another index verifies");
		if (len) {
			path[len / 2].b[5] ^= 0x20;
			if (store_proof_verify(i, na, &la[i], path, len, &root))
				fail("a changed path verifies");
		}
	}

	budget = 1000;
	rc = proof_diff(a, b, &pages, &n, &cap, &budget);
	if (rc)
		fail("the diff failed");
	for (i = 0, k = 0; i < nb; i++)
		if (i >= na || !store_id_equal(&la[i], &lb[i])) {
			if (k >= n || pages[k] != i)
				fail("the diff is not the brute force's");
			k++;
		}
	if (k != n)
		fail("the diff lists too many pages");
	if (n > 0) {
		size_t n2 = 0, cap2 = 0;
		uint64_t *p2 = NULL;

		budget = n - 1;
		if (proof_diff(a, b, &p2, &n2, &cap2, &budget) != -2)
			fail("the diff went past its budget");
		free(p2);
	}
	free(pages);

	/* a hostile proof: index, count, leaf, path from the rest */
	if (size > pos + 4) {
		hi = data[pos] % (na + 1);
		hc = data[pos + 1] % 300;
		len = (size - pos - 2) / STORE_ID_BYTES;
		if (len > STORE_PROOF_MAX_PATH)
			len = STORE_PROOF_MAX_PATH;
		hp =
		    malloc((len ? len : 1) * sizeof(*hp)); /* exact, for ASan */
		if (!hp)
			fail("out of memory");
		memcpy(hp, data + pos + 2, len * STORE_ID_BYTES);
		memcpy(hostile, hp, len * sizeof(*hp));
		if (store_proof_verify(hi, hc, &la[hi % na], hp, len, &root)) {
			/* accepted: then the same path verifies again */
			if (!store_proof_verify(hi, hc, &la[hi % na], hostile,
						len, &root))
				fail("verification is not deterministic");
		}
		free(hp);
	}
	tree_unref(a);
	tree_unref(b);
	tree_unref(b2);
	return 0;
}
