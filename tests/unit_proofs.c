/*
 * unit_proofs.c - page proofs and diffs in the store, without HTTP:
 *
 * - every proof of tests/proof-vectors.json passes store_page_proof_check()
 *   and each of its must_fail cases fails there (and in store_proof_verify
 *   with the right step);
 * - a store made to hold the vectors' commit gives that commit id, and
 *   store_page_proof() gives, for every page, exactly the vectors' proof;
 *   its errors: unknown commit, module not in it, index past the end;
 * - RFC 6962 audit paths of trees of every size from 1 to 70 leaves verify
 *   for every leaf, and fail with a changed leaf, index, depth or path;
 * - store_commit_diff() against a brute-force page compare of random
 *   memories: sizes that grow and shrink, modules on one side only, and
 *   the bound on the pages a diff lists; the tree cache stays within its
 *   bound while trees of many commits are rebuilt;
 * - proofs and diffs of old commits from four threads while a fifth
 *   commits, with a cache of room for two trees (also run under TSan).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "proofvec.h"
#include "store.h"
#include "storetest.h"
#include "t.h"

#define PG STORE_PAGE_SIZE

static void test_vectors_pure(const json_t *v)
{
	const json_t *proofs = json_object_get(v, "proofs");
	const json_t *bad = json_object_get(v, "must_fail"), *j;
	struct store_page_proof p;
	size_t i;
	int step;

	CHECK(json_array_size(proofs) == 17);
	CHECK(json_array_size(bad) >= 1);
	json_array_foreach(proofs, i, j)
	{
		CHECK(pv_proof(j, &p) == 0);
		CHECK_ERR(store_page_proof_check(&p, &step), STORE_OK);
		CHECK(step == 0);
	}
	json_array_foreach(bad, i, j)
	{
		struct store_id leaf;

		CHECK(pv_proof(j, &p) == 0);
		CHECK_ERR(store_page_proof_check(&p, &step), STORE_EMISMATCH);
		CHECK(step == 1 || step == 2);
		store_page_leaf(p.page, &leaf);
		if (step == 1)
			CHECK(!store_proof_verify(
			    p.page_index, p.page_count, &leaf, p.page_path,
			    p.page_path_len, &p.module_commit));
	}
}

/* The store's proofs of the vectors' commit are the vectors' proofs. */
static void test_vectors_store(const json_t *v)
{
	const json_t *proofs = json_object_get(v, "proofs"), *j;
	struct store_page_proof want, got;
	struct store_id commit, want_commit, bogus;
	struct store *s = NULL;
	char *dir = t_tmpdir("proofs-vec");
	size_t i, k;

	CHECK(dir != NULL);
	if (!dir || pv_make_state(v, dir, &commit) < 0) {
		CHECK(!"the vectors' state was made");
		goto out;
	}
	want_commit = st_id(json_string_value(json_object_get(v, "commit")));
	CHECK_ID(&commit, &want_commit);
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	json_array_foreach(proofs, i, j)
	{
		CHECK(pv_proof(j, &want) == 0);
		memset(&got, 0xAA, sizeof(got));
		CHECK_ERR(store_page_proof(s, &want.commit, &want.module,
					   want.page_index, &got),
			  STORE_OK);
		CHECK_ID(&got.commit, &want.commit);
		CHECK_ID(&got.module_commit, &want.module_commit);
		CHECK(got.page_index == want.page_index);
		CHECK(got.page_count == want.page_count);
		CHECK(!memcmp(got.page, want.page, PG));
		CHECK(got.page_path_len == want.page_path_len);
		for (k = 0; k < want.page_path_len; k++)
			CHECK_ID(&got.page_path[k], &want.page_path[k]);
		CHECK(got.module_index == want.module_index);
		CHECK(got.module_count == want.module_count);
		CHECK(got.module_path_len == want.module_path_len);
		for (k = 0; k < want.module_path_len; k++)
			CHECK_ID(&got.module_path[k], &want.module_path[k]);
		CHECK_ERR(store_page_proof_check(&got, NULL), STORE_OK);
		/* index = page count: past the end */
		CHECK_ERR(store_page_proof(s, &want.commit, &want.module,
					   want.page_count, &got),
			  STORE_ERANGE);
	}
	memset(&bogus, 0x5A, sizeof(bogus));
	CHECK_ERR(store_page_proof(s, &bogus, &want.module, 0, &got),
		  STORE_ENOCOMMIT);
	CHECK_ERR(store_page_proof(s, &commit, &bogus, 0, &got),
		  STORE_ENOMODULE);
	CHECK_ERR(store_page_proof(s, &commit, &want.module, UINT64_MAX, &got),
		  STORE_ERANGE);
out:
	store_close(s);
	if (dir)
		t_rmrf(dir);
	free(dir);
}

/* Reference MTH of leaves [lo, hi), RFC 6962 2.1, recursively. */
static void ref_mth(const struct store_id *l, size_t lo, size_t hi,
		    struct store_id *out)
{
	unsigned char buf[1 + 2 * STORE_ID_BYTES];
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
	buf[0] = 1;
	memcpy(buf + 1, a.b, STORE_ID_BYTES);
	memcpy(buf + 1 + STORE_ID_BYTES, b.b, STORE_ID_BYTES);
	st_h(buf, sizeof(buf), out);
}

/* Reference PATH(m, D[lo:hi]) of RFC 6962 2.1.1, nearest the leaf first. */
static size_t ref_path(const struct store_id *l, size_t m, size_t lo, size_t hi,
		       struct store_id *out)
{
	size_t k = 1, n;

	if (hi - lo <= 1)
		return 0;
	while (k * 2 < hi - lo)
		k *= 2;
	if (m < k) {
		n = ref_path(l, m, lo, lo + k, out);
		ref_mth(l, lo + k, hi, &out[n]);
	} else {
		n = ref_path(l, m - k, lo + k, hi, out);
		ref_mth(l, lo, lo + k, &out[n]);
	}
	return n + 1;
}

/*
 * Proofs of the store against the reference, through a commit of one
 * module of n pages, for each n: every page verifies, and changing any
 * one input makes it fail.
 */
static void test_paths_all_sizes(void)
{
	char *dir = t_tmpdir("proofs-sizes");
	struct store *s = NULL;
	struct store_id mod, sid, leaves[70], ref[STORE_PROOF_MAX_PATH], root;
	struct store_commit_info ci = {0};
	struct store_page_proof *p = malloc(sizeof(*p));
	unsigned char *mem = malloc(70 * PG);
	char code[32];
	size_t n, i, k, len;

	CHECK(dir && p && mem);
	if (!dir || !p || !mem || st_open(&s, dir, NULL) != STORE_OK)
		goto out;
	for (n = 1; n <= 70; n++) {
		snprintf(code, sizeof(code), "sizes %zu", n);
		for (i = 0; i < n * PG; i++)
			mem[i] = (unsigned char)(i * 31 + n + i / PG);
		for (i = 0; i < n; i++)
			store_page_leaf(mem + i * PG, &leaves[i]);
		store_module_id(code, strlen(code), &mod);
		if (store_deploy(s, code, strlen(code), n * PG, NULL, NULL) ||
		    st_begin(s, &sid) ||
		    store_session_write(s, &sid, &mod, 0, mem, n * PG) ||
		    store_session_commit(s, &sid, NULL, &ci)) {
			CHECK(!"committed");
			break;
		}
		ref_mth(leaves, 0, n, &root);
		for (i = 0; i < n; i++) {
			CHECK_ERR(store_page_proof(s, &ci.id, &mod, i, p),
				  STORE_OK);
			CHECK_ID(&p->module_commit, &root);
			len = ref_path(leaves, i, 0, n, ref);
			CHECK(p->page_path_len == len);
			for (k = 0; k < len && k < p->page_path_len; k++)
				CHECK_ID(&p->page_path[k], &ref[k]);
			CHECK_ERR(store_page_proof_check(p, NULL), STORE_OK);
			CHECK(store_proof_verify(i, n, &leaves[i], p->page_path,
						 p->page_path_len, &root));
			/* a changed index, size, leaf, path or root fails */
			CHECK(!store_proof_verify(i ^ 1, n, &leaves[i],
						  p->page_path,
						  p->page_path_len, &root) ||
			      n == 1 || (i ^ 1) >= n);
			/* a size of another depth needs another path */
			CHECK(!store_proof_verify(i, 2 * n + 1, &leaves[i],
						  p->page_path,
						  p->page_path_len, &root));
			CHECK(!store_proof_verify(i, n, &leaves[(i + 1) % n],
						  p->page_path,
						  p->page_path_len, &root) ||
			      n == 1);
			if (p->page_path_len) {
				CHECK(!store_proof_verify(
				    i, n, &leaves[i], p->page_path,
				    p->page_path_len - 1, &root));
				p->page_path[0].b[0] ^= 1;
				CHECK_ERR(store_page_proof_check(p, NULL),
					  STORE_EMISMATCH);
			}
			CHECK(!store_proof_verify(n, n, &leaves[i],
						  p->page_path,
						  p->page_path_len, &root));
		}
		store_commit_info_release(&ci);
	}
out:
	store_commit_info_release(&ci);
	store_close(s);
	if (dir)
		t_rmrf(dir);
	free(dir);
	free(p);
	free(mem);
}

/* --- diffs ---------------------------------------------------------------- */

static uint64_t rng_state = 12345;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* The pages a holder of a (na pages) fetches to have b (nb pages). */
static size_t brute_diff(const unsigned char *a, size_t na,
			 const unsigned char *b, size_t nb, uint64_t *out)
{
	size_t i, n = 0;

	for (i = 0; i < nb; i++)
		if (i >= na || memcmp(a + i * PG, b + i * PG, PG))
			out[n++] = i;
	return n;
}

/* Commit mem (npages) as the memory of mod; the commit id. */
static struct store_id commit_mem(struct store *s, const struct store_id *mod,
				  const unsigned char *mem, size_t npages,
				  size_t old_pages)
{
	struct store_commit_info ci = {0};
	struct store_id sid, id = {{0}};

	if (st_begin(s, &sid))
		return id;
	/* a smaller memory: made from scratch in a session on no base */
	(void)old_pages;
	if (store_session_write(s, &sid, mod, 0, mem, npages * PG) ||
	    store_session_commit(s, &sid, NULL, &ci)) {
		CHECK(!"committed");
		return id;
	}
	id = ci.id;
	store_commit_info_release(&ci);
	return id;
}

static void check_diff(struct store *s, const struct store_id *a,
		       const struct store_id *b, const struct store_id *mod,
		       const unsigned char *ma, size_t na,
		       const unsigned char *mb, size_t nb)
{
	struct store_diff d;
	uint64_t *want = malloc((nb + 1) * sizeof(*want));
	size_t n, i;

	n = brute_diff(ma, na, mb, nb, want);
	CHECK_ERR(store_commit_diff(s, a, b, 1, &d), STORE_OK);
	if (n == 0 && na == nb) {
		CHECK(d.n == 0);
	} else {
		CHECK(d.n == 1);
		if (d.n == 1) {
			CHECK_ID(&d.m[0].module, mod);
			CHECK(d.m[0].has_from && d.m[0].has_to);
			CHECK(d.m[0].size_from == na * PG);
			CHECK(d.m[0].size_to == nb * PG);
			CHECK(d.m[0].npages == n);
			for (i = 0; i < n && i < d.m[0].npages; i++)
				CHECK(d.m[0].pages[i] == want[i]);
		}
	}
	store_diff_release(&d);
	free(want);
}

static void test_diff_random(void)
{
	char *dir = t_tmpdir("proofs-diff");
	struct store *s = NULL;
	struct store_id mod, c[12];
	size_t np[12], r, i, j;
	unsigned char *mem[12];
	const char code[] = "diff module";

	CHECK(dir != NULL);
	if (!dir || st_open(&s, dir, NULL) != STORE_OK)
		goto out;
	CHECK_ERR(st_deploy(s, code, 4 * PG, &mod), STORE_OK);
	for (r = 0; r < 12; r++) {
		/* memory only grows (a diff back from a later commit sees
		 * it shrink); few or many pages change */
		np[r] = r == 0 ? 4 : np[r - 1] + rnd() % (r % 2 ? 3 : 90);
		mem[r] = calloc(np[r], PG);
		if (!mem[r])
			goto out;
		if (r > 0)
			memcpy(mem[r], mem[r - 1],
			       (np[r] < np[r - 1] ? np[r] : np[r - 1]) * PG);
		for (i = 0; i < 1 + rnd() % (r % 3 ? 5 : 200); i++)
			mem[r][(rnd() % np[r]) * PG + rnd() % PG] ^=
			    (unsigned char)(1 + rnd() % 255);
		c[r] = commit_mem(s, &mod, mem[r], np[r], r ? np[r - 1] : 0);
	}
	/* every pair of commits, both ways, against the brute force */
	for (i = 0; i < 12; i++)
		for (j = 0; j < 12; j++)
			check_diff(s, &c[i], &c[j], &mod, mem[i], np[i], mem[j],
				   np[j]);
	for (r = 0; r < 12; r++)
		free(mem[r]);
out:
	store_close(s);
	if (dir)
		t_rmrf(dir);
	free(dir);
}

/* Modules on one side only, ?pages=0, unknown commits, the bound. */
static void test_diff_sides_and_bound(void)
{
	char *dir = t_tmpdir("proofs-sides");
	struct store_options o = {0};
	struct store *s = NULL;
	struct store_id m1, m2, sid, c1, c2, bogus;
	struct store_commit_info ci = {0};
	struct store_diff d;
	struct store_tree_cache_stats ts;
	unsigned char page[PG];
	int a_first;
	size_t i, k;

	CHECK(dir != NULL);
	if (!dir)
		return;
	o.dir = dir;
	o.max_diff_pages = 10;
	o.tree_cache_size = 64 * 1024; /* room for trees of ~500 pages */
	CHECK_ERR(store_open(&s, &o), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(st_deploy(s, "one", 8 * PG, &m1), STORE_OK);
	memset(page, 7, sizeof(page));
	/* c1: m1 only (8 pages, page 0 written) */
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(store_session_write(s, &sid, &m1, 0, page, PG), STORE_OK);
	CHECK_ERR(store_session_commit(s, &sid, NULL, &ci), STORE_OK);
	c1 = ci.id;
	store_commit_info_release(&ci);
	/* c2: m1 as it is, m2 of 12 pages (12 > the bound of 10) */
	CHECK_ERR(st_deploy(s, "two", 12 * PG, &m2), STORE_OK);
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(store_session_write(s, &sid, &m2, 5 * PG, page, PG),
		  STORE_OK);
	CHECK_ERR(store_session_commit(s, &sid, NULL, &ci), STORE_OK);
	c2 = ci.id;
	store_commit_info_release(&ci);
	a_first = memcmp(m1.b, m2.b, STORE_ID_BYTES) < 0;
	(void)a_first;
	/* c1 -> c2: only m2, absent from c1: all its 12 pages, over 10 */
	CHECK_ERR(store_commit_diff(s, &c1, &c2, 1, &d), STORE_ETOOBIG);
	CHECK(d.n == 0 && d.m == NULL);
	CHECK_ERR(store_commit_diff(s, &c1, &c2, 0, &d), STORE_OK);
	CHECK(d.n == 1);
	if (d.n == 1) {
		CHECK_ID(&d.m[0].module, &m2);
		CHECK(!d.m[0].has_from && d.m[0].has_to);
		CHECK(d.m[0].size_to == 12 * PG && d.m[0].npages == 0 &&
		      !d.m[0].pages);
	}
	store_diff_release(&d);
	/* c2 -> c1: m2 goes (to null): listed, with no pages */
	CHECK_ERR(store_commit_diff(s, &c2, &c1, 1, &d), STORE_OK);
	CHECK(d.n == 1);
	if (d.n == 1) {
		CHECK_ID(&d.m[0].module, &m2);
		CHECK(d.m[0].has_from && !d.m[0].has_to);
		CHECK(d.m[0].size_from == 12 * PG && d.m[0].npages == 0);
	}
	store_diff_release(&d);
	CHECK_ERR(store_commit_diff(s, &c1, &c1, 1, &d), STORE_OK);
	CHECK(d.n == 0);
	store_diff_release(&d);
	memset(&bogus, 0x33, sizeof(bogus));
	CHECK_ERR(store_commit_diff(s, &bogus, &c1, 1, &d), STORE_ENOCOMMIT);
	CHECK_ERR(store_commit_diff(s, &c1, &bogus, 0, &d), STORE_ENOCOMMIT);

	/*
	 * The tree cache: 30 commits of m1 grown to 400 pages each (a tree
	 * of ~25 KiB), diffed from the first: trees are rebuilt, the cache
	 * never holds more than its 64 KiB.
	 */
	{
		struct store_id cs[30];
		unsigned char *mem = calloc(400, PG);

		if (!mem)
			goto out;
		for (i = 0; i < 30; i++) {
			mem[(i * 13 % 400) * PG] = (unsigned char)(i + 1);
			CHECK_ERR(st_begin(s, &sid), STORE_OK);
			CHECK_ERR(
			    store_session_write(s, &sid, &m1, 0, mem, 400 * PG),
			    STORE_OK);
			CHECK_ERR(store_session_commit(s, &sid, NULL, &ci),
				  STORE_OK);
			cs[i] = ci.id;
			store_commit_info_release(&ci);
		}
		for (k = 0; k < 2; k++)
			for (i = 1; i < 30; i++) {
				CHECK_ERR(store_commit_diff(s, &cs[i - 1],
							    &cs[i], 1, &d),
					  STORE_OK);
				CHECK(d.n == 1 && d.m && d.m[0].npages == 1);
				store_diff_release(&d);
				store_tree_cache_stats(s, &ts);
				CHECK(ts.bytes <= ts.limit);
				CHECK(ts.limit == 64 * 1024);
			}
		store_tree_cache_stats(s, &ts);
		CHECK(ts.builds >= 29);
		CHECK(ts.trees >= 1 && ts.trees < 29);
		free(mem);
	}
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

/* --- many threads at once ------------------------------------------------ */

#define CC_COMMITS 16
#define CC_THREADS 4
#define CC_ROUNDS  150

struct cc {
	struct store *s;
	struct store_id mod, c[CC_COMMITS];
	size_t want[CC_COMMITS][CC_COMMITS]; /* pages of each diff */
	int stop;
	unsigned int seed;
	long bad, good; /* of this thread (no shared counter) */
};

static void *cc_reader(void *arg)
{
	struct cc *x = arg;
	struct store_page_proof *p = malloc(sizeof(*p));
	struct store_diff d;
	unsigned int r = x->seed;
	size_t i, a, b;

	for (i = 0; p && i < CC_ROUNDS; i++) {
		r = r * 1103515245u + 12345u;
		a = (r >> 8) % CC_COMMITS;
		b = (r >> 16) % CC_COMMITS;
		if (store_page_proof(x->s, &x->c[a], &x->mod, (r >> 4) % 64,
				     p) != STORE_OK ||
		    store_page_proof_check(p, NULL) != STORE_OK)
			x->bad++;
		else
			x->good++;
		if (store_commit_diff(x->s, &x->c[a], &x->c[b], 1, &d) !=
			STORE_OK ||
		    (a == b ? d.n != 0
			    : d.n != 1 || d.total_pages != x->want[a][b]))
			x->bad++;
		else
			x->good++;
		store_diff_release(&d);
	}
	free(p);
	return NULL;
}

static void *cc_writer(void *arg)
{
	struct cc *x = arg;
	struct store_id sid;
	unsigned char b = 0;
	uint64_t off = 0;

	while (!__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE)) {
		b++;
		off = (off + 4099) % (64 * PG);
		if (st_begin(x->s, &sid) ||
		    store_session_write(x->s, &sid, &x->mod, off, &b, 1) ||
		    st_commit(x->s, &sid, NULL))
			x->bad++;
		else
			x->good++;
	}
	return NULL;
}

/*
 * Proofs and diffs of old commits from several threads while another
 * commits, with a cache of room for two trees: every answer right, the
 * cache within its bound.
 */
static void test_concurrent(void)
{
	char *dir = t_tmpdir("proofs-threads");
	struct store_options o = {0};
	static struct cc x[CC_THREADS + 1];
	pthread_t th[CC_THREADS + 1];
	struct store_tree_cache_stats ts;
	struct store_diff d;
	struct store_id sid;
	unsigned char page[PG];
	size_t i, j;

	CHECK(dir != NULL);
	if (!dir)
		return;
	o.dir = dir;
	o.tree_cache_size = 2 * 4500; /* a tree of 64 pages: about 4 KiB */
	CHECK_ERR(store_open(&x[0].s, &o), STORE_OK);
	if (!x[0].s)
		goto out;
	CHECK_ERR(st_deploy(x[0].s, "threads", 64 * PG, &x[0].mod), STORE_OK);
	memset(page, 0, sizeof(page));
	for (i = 0; i < CC_COMMITS; i++) {
		page[i] = (unsigned char)(i + 1);
		CHECK_ERR(st_begin(x[0].s, &sid), STORE_OK);
		/* commit i changes page 3 * i and page 63 */
		CHECK_ERR(store_session_write(x[0].s, &sid, &x[0].mod,
					      3 * i * PG, page, PG),
			  STORE_OK);
		CHECK_ERR(store_session_write(x[0].s, &sid, &x[0].mod, 63 * PG,
					      page, PG),
			  STORE_OK);
		CHECK_ERR(st_commit(x[0].s, &sid, &x[0].c[i]), STORE_OK);
	}
	for (i = 0; i < CC_COMMITS; i++)
		for (j = 0; j < CC_COMMITS; j++) {
			CHECK_ERR(store_commit_diff(x[0].s, &x[0].c[i],
						    &x[0].c[j], 1, &d),
				  STORE_OK);
			x[0].want[i][j] = d.total_pages;
			store_diff_release(&d);
		}
	for (i = 1; i <= CC_THREADS; i++) {
		x[i] = x[0];
		x[i].seed = (unsigned int)i * 7919u;
		x[i].bad = x[i].good = 0;
	}
	x[0].bad = x[0].good = 0;
	for (i = 1; i <= CC_THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, cc_reader, &x[i]) == 0);
	CHECK(pthread_create(&th[0], NULL, cc_writer, &x[0]) == 0);
	for (i = 1; i <= CC_THREADS; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&x[0].stop, 1, __ATOMIC_RELEASE);
	pthread_join(th[0], NULL);
	for (i = 0; i <= CC_THREADS; i++) {
		CHECK(x[i].bad == 0);
		CHECK(x[i].good > 0);
	}
	store_tree_cache_stats(x[0].s, &ts);
	CHECK(ts.bytes <= ts.limit);
	CHECK(ts.trees <= 2);
out:
	store_close(x[0].s);
	t_rmrf(dir);
	free(dir);
}

int main(int argc, char **argv)
{
	json_t *v = pv_load(argc > 0 ? argv[0] : "unit_proofs");

	(void)argc;
	CHECK(v != NULL);
	if (v) {
		test_vectors_pure(v);
		test_vectors_store(v);
	}
	json_decref(v);
	test_paths_all_sizes();
	test_diff_random();
	test_diff_sides_and_bound();
	test_concurrent();
	return t_done();
}
