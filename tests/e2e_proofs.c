/*
 * e2e_proofs.c - page proofs, diffs and partial reads through the real
 * daemon and bin/modstore ($MODSTORE_CLI):
 *
 * - a state directory made to hold the commit of tests/proof-vectors.json:
 *   GET .../pages/{index} answers exactly each vector's proof, `modstore
 *   prove` checks each one (exit 0), `modstore prove --file` passes each
 *   vector and fails (exit 1) each of its must_fail cases;
 * - every error of the proof and diff routes: unknown commit, module not in
 *   the commit, index not a decimal number, index past the end (also past
 *   2^64), a malformed id, ?pages= that is neither 0 nor 1;
 * - GET /commits/{commit}/modules/{mod}/memory: ETag "MC", Accept-Ranges,
 *   Range 206 and Content-Range, If-Range, 416;
 * - diffs of commits of growing memories and of a module missing on one
 *   side, against a brute-force compare of the memories downloaded;
 *   ?pages=0;
 * - `modstore pull` end to end: the file becomes byte for byte TO's
 *   memory, growing and shrinking, from a commit without the module, and
 *   the bytes the daemon sent (GET /metrics) are the changed pages plus
 *   the small JSON answers;
 * - the bounds: --tree-cache-size (diffs of many old commits keep
 *   modstore_tree_cache_bytes within it), --max-diff-pages (413, and
 *   ?pages=0 still answers), and a proof's size;
 * - a commit file damaged on disk: 500 corrupt_state when its tree is
 *   rebuilt.
 */
#include "e2e.h"
#include "proofvec.h"
#include "store.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG STORE_PAGE_SIZE

static const char *cli_path;
static char tmproot[512];

/* --- the CLI ---------------------------------------------------------------
 */

struct run {
	int status;
	char out[8192];
	char err[4096];
};

/* Run the CLI against url with the arguments (NULL-terminated). */
static void cli(struct run *r, const char *url, ...)
{
	const char *argv[16];
	struct e2e_cmd er;
	va_list ap;
	size_t n = 0;

	argv[n++] = cli_path;
	va_start(ap, url);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	e2e_cmd_run(tmproot, url, NULL, NULL, argv, &er);
	r->status = er.status;
	snprintf(r->out, sizeof(r->out), "%s", er.out ? er.out : "");
	snprintf(r->err, sizeof(r->err), "%s", er.err ? er.err : "");
	e2e_cmd_release(&er);
	if (r->status != 0 && getenv("CLI_VERBOSE"))
		fprintf(stderr, "cli %s: exit %d: %s%s", argv[1], r->status,
			r->out, r->err);
}

/* --- helpers ---------------------------------------------------------------
 */

static const char *hex(const struct store_id *id, char buf[STORE_HEX_LEN + 1])
{
	store_id_hex(id, buf);
	return buf;
}

static int id_of(const struct e2e_resp *r, const char *key,
		 struct store_id *out)
{
	const char *s = e2e_str(r, key);

	return s && store_id_parse(out, s, strlen(s)) == STORE_OK ? 0 : -1;
}

static int deploy(const struct e2e_daemon *d, const char *code, uint64_t size,
		  struct store_id *mod)
{
	char path[64];
	struct e2e_resp r;
	int ret;

	snprintf(path, sizeof(path), "/modules?size=%llu",
		 (unsigned long long)size);
	if (e2e_request(d, "POST", path, code, strlen(code), NULL, &r) < 0)
		return -1;
	ret = r.status == 201 || r.status == 200 ? id_of(&r, "id", mod) : -1;
	e2e_resp_release(&r);
	return ret;
}

struct write {
	const struct store_id *mod;
	uint64_t off;
	const void *buf;
	size_t len;
};

/* One session with the writes, committed: the commit id. */
static int commit_writes(const struct e2e_daemon *d, const struct write *w,
			 size_t n, struct store_id *commit)
{
	char path[256], h1[STORE_HEX_LEN + 1], h2[STORE_HEX_LEN + 1];
	struct store_id sid;
	struct e2e_resp r;
	size_t i;
	int ok;

	if (e2e_post(d, "/sessions", NULL, &r) < 0)
		return -1;
	ok = r.status == 201 && id_of(&r, "id", &sid) == 0;
	e2e_resp_release(&r);
	for (i = 0; ok && i < n; i++) {
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=%llu",
			 hex(&sid, h1), hex(w[i].mod, h2),
			 (unsigned long long)w[i].off);
		ok = e2e_request(d, "PUT", path, w[i].buf, w[i].len, NULL,
				 &r) == 0 &&
		     r.status == 204;
		e2e_resp_release(&r);
	}
	snprintf(path, sizeof(path), "/sessions/%s/commit", hex(&sid, h1));
	ok = ok && e2e_post(d, path, NULL, &r) == 0;
	ok = ok && r.status == 201 && id_of(&r, "commit", commit) == 0;
	e2e_resp_release(&r);
	CHECK(ok);
	return ok ? 0 : -1;
}

/* The memory of mod in commit, downloaded whole; caller frees. */
static unsigned char *commit_memory(const struct e2e_daemon *d,
				    const struct store_id *commit,
				    const struct store_id *mod, size_t *len)
{
	char path[256], h1[STORE_HEX_LEN + 1], h2[STORE_HEX_LEN + 1];
	struct e2e_resp r;
	unsigned char *m = NULL;

	*len = 0;
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/memory",
		 hex(commit, h1), hex(mod, h2));
	if (e2e_get(d, path, &r) < 0)
		return NULL;
	if (r.status == 200) {
		m = malloc(r.len ? r.len : 1);
		if (m)
			memcpy(m, r.body, r.len);
		*len = r.len;
	}
	e2e_resp_release(&r);
	return m;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(buf, 1, len, f) == len;

	if (f && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b = NULL;
	long n;

	*len = 0;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		b = malloc((size_t)n + 1);
		if (b && fread(b, 1, (size_t)n, f) == (size_t)n)
			*len = (size_t)n;
	}
	fclose(f);
	return b;
}

/* A sample of GET /metrics (no labels), or -1. */
static double metric(const struct e2e_daemon *d, const char *name)
{
	struct e2e_resp r;
	double v = -1;
	size_t n = strlen(name);
	const char *p;

	if (e2e_get(d, "/metrics", &r) < 0)
		return -1;
	for (p = r.body; p && *p;
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, name, n) && p[n] == ' ') {
			v = atof(p + n + 1);
			break;
		}
	e2e_resp_release(&r);
	return v;
}

/* --- the vectors ------------------------------------------------------------
 */

static void test_vectors(const json_t *v)
{
	const json_t *proofs = json_object_get(v, "proofs");
	const json_t *bad = json_object_get(v, "must_fail"), *j;
	struct e2e_daemon d;
	struct e2e_tmp tmp;
	struct store_page_proof p;
	struct store_id commit;
	struct e2e_resp r;
	struct run run;
	char path[256], file[600], h1[STORE_HEX_LEN + 1], h2[STORE_HEX_LEN + 1];
	char idx[32];
	size_t i;

	if (e2e_tmp_make(&tmp, "proofs-vec") < 0) {
		CHECK(!"tmp");
		return;
	}
	if (pv_make_state(v, tmp.state, &commit) < 0 ||
	    e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"the vectors' daemon started");
		e2e_tmp_done(&tmp);
		return;
	}
	CHECK(!strcmp(hex(&commit, h1),
		      json_string_value(json_object_get(v, "commit"))));
	json_array_foreach(proofs, i, j)
	{
		CHECK(pv_proof(j, &p) == 0);
		snprintf(path, sizeof(path),
			 "/commits/%s/modules/%s/pages/%llu",
			 hex(&p.commit, h1), hex(&p.module, h2),
			 (unsigned long long)p.page_index);
		CHECK(e2e_get(&d, path, &r) == 0);
		E2E_STATUS(&r, 200);
		/* the answer is the vector, member for member */
		CHECK(r.json && json_equal(r.json, (json_t *)(uintptr_t)j));
		CHECK(e2e_header(&r, "Content-Type", file, sizeof(file)) &&
		      !strcmp(file, "application/json"));
		e2e_resp_release(&r);
		snprintf(idx, sizeof(idx), "%llu",
			 (unsigned long long)p.page_index);
		cli(&run, d.url, "prove", h1, h2, idx, NULL);
		CHECK(run.status == 0 && strstr(run.out, "OK: page"));
		/* a saved proof, checked offline */
		snprintf(file, sizeof(file), "%s/proof-%zu.json", tmp.root, i);
		CHECK(json_dump_file(j, file, 0) == 0);
		cli(&run, d.url, "prove", "--file", file, NULL);
		CHECK(run.status == 0);
	}
	json_array_foreach(bad, i, j)
	{
		snprintf(file, sizeof(file), "%s/bad-%zu.json", tmp.root, i);
		CHECK(json_dump_file(j, file, 0) == 0);
		cli(&run, d.url, "prove", "--file", file, NULL);
		CHECK(run.status == 1 && strstr(run.out, "MISMATCH") &&
		      strstr(run.out, "FAILED"));
	}
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
}

/* --- the routes ----------------------------------------------------------- */

static void expect(const struct e2e_daemon *d, const char *path, long status,
		   const char *code)
{
	struct e2e_resp r;

	if (e2e_get(d, path, &r) < 0) {
		CHECK(!"an answer");
		return;
	}
	if (code)
		E2E_ERROR(&r, status, code);
	else
		E2E_STATUS(&r, status);
	e2e_resp_release(&r);
}

/* Pages of b that a holder of a must fetch. */
static size_t brute(const unsigned char *a, size_t la, const unsigned char *b,
		    size_t lb, uint64_t *out)
{
	size_t i, n = 0;

	for (i = 0; i < lb / PG; i++)
		if (i >= la / PG || memcmp(a + i * PG, b + i * PG, PG))
			out[n++] = i;
	return n;
}

/* The diff entry of mod in a diff answer, or NULL. */
static json_t *diff_entry(const struct e2e_resp *r, const char *mod)
{
	json_t *m;
	size_t i;

	json_array_foreach(
	    json_object_get(r->json, "modules"), i,
	    m) if (!strcmp(json_string_value(json_object_get(m, "id")),
			   mod)) return m;
	return NULL;
}

static void check_diff(const struct e2e_daemon *d, const struct store_id *a,
		       const struct store_id *b, const struct store_id *mod)
{
	char path[256], h1[STORE_HEX_LEN + 1], h2[STORE_HEX_LEN + 1],
	    hm[STORE_HEX_LEN + 1];
	size_t la, lb, n, i;
	unsigned char *ma = commit_memory(d, a, mod, &la);
	unsigned char *mb = commit_memory(d, b, mod, &lb);
	uint64_t *want = malloc((lb / PG + 1) * sizeof(*want));
	struct e2e_resp r;
	json_t *e, *pages;

	hex(mod, hm);
	snprintf(path, sizeof(path), "/commits/%s/diff/%s", hex(a, h1),
		 hex(b, h2));
	CHECK(e2e_get(d, path, &r) == 0);
	E2E_STATUS(&r, 200);
	CHECK(r.json && !strcmp(e2e_str(&r, "from"), h1) &&
	      !strcmp(e2e_str(&r, "to"), h2));
	e = r.json ? diff_entry(&r, hm) : NULL;
	if (!ma && !mb) {
		CHECK(!e);
	} else if (!mb) { /* b does not hold it: no pages */
		CHECK(e && json_is_null(json_object_get(e, "to")) &&
		      json_is_null(json_object_get(e, "size_to")) &&
		      json_array_size(json_object_get(e, "pages")) == 0 &&
		      json_integer_value(json_object_get(e, "size_from")) ==
			  (json_int_t)la);
	} else if (want) {
		n = brute(ma ? ma : (const unsigned char *)"", ma ? la : 0, mb,
			  lb, want);
		if (ma && la == lb && !memcmp(ma, mb, la)) {
			CHECK(!e);
		} else {
			CHECK(e != NULL);
			pages = e ? json_object_get(e, "pages") : NULL;
			CHECK(json_array_size(pages) == n);
			for (i = 0; i < n && i < json_array_size(pages); i++)
				CHECK(json_integer_value(json_array_get(
					  pages, i)) == (json_int_t)want[i]);
			CHECK(e && json_integer_value(json_object_get(
				       e, "size_to")) == (json_int_t)lb);
			CHECK(e &&
			      (ma ? json_integer_value(json_object_get(
					e, "size_from")) == (json_int_t)la
				  : json_is_null(json_object_get(e, "from"))));
		}
	}
	e2e_resp_release(&r);
	/* ?pages=0: the same modules, no pages */
	strcat(path, "?pages=0");
	CHECK(e2e_get(d, path, &r) == 0);
	E2E_STATUS(&r, 200);
	e = r.json ? diff_entry(&r, hm) : NULL;
	CHECK(!e || !json_object_get(e, "pages"));
	e2e_resp_release(&r);
	free(ma);
	free(mb);
	free(want);
}

static uint64_t rng = 99;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_routes(void)
{
	struct e2e_daemon d;
	struct e2e_tmp tmp;
	struct store_id m1, m2, m3, c[8], bogus;
	char path[512], h1[STORE_HEX_LEN + 1], h2[STORE_HEX_LEN + 1];
	char h3[STORE_HEX_LEN + 1], hb[STORE_HEX_LEN + 1], buf[256];
	unsigned char blob[3 * PG];
	struct write w[4];
	struct e2e_resp r;
	size_t i, j, k, nc = 0;
	static const char *const bad_index[] = {"x",	"-1",	"1.5",	"1e3",
						"%2B1", "0x10", "%201", "1%20"};

	if (e2e_tmp_make(&tmp, "proofs-routes") < 0) {
		CHECK(!"tmp");
		return;
	}
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"daemon started");
		e2e_tmp_done(&tmp);
		return;
	}
	memset(&bogus, 0x42, sizeof(bogus));
	hex(&bogus, hb);
	if (deploy(&d, "proofs one", 16 * PG, &m1) < 0 ||
	    deploy(&d, "proofs two", 4 * PG, &m2) < 0) {
		CHECK(!"deployed");
		goto out;
	}
	/* c0: m1 and m2 written */
	memset(blob, 1, sizeof(blob));
	w[0] = (struct write){&m1, 5, blob, 100};
	w[1] = (struct write){&m2, PG, blob, PG};
	commit_writes(&d, w, 2, &c[nc++]);
	/* c1..c5: m1 changed a little or a lot, growing */
	for (k = 1; k < 6; k++) {
		for (i = 0; i < sizeof(blob); i++)
			blob[i] = (unsigned char)rnd();
		w[0] = (struct write){&m1, (rnd() % (16 + 4 * k)) * PG + 7,
				      blob, 1 + rnd() % sizeof(blob)};
		w[1] = (struct write){&m1, rnd() % (8 * PG), blob + 11, 64};
		w[2] = (struct write){&m1, (16 + 3 * k) * PG + 1, blob, 10};
		commit_writes(&d, w, k % 2 ? 3 : 2, &c[nc++]);
	}
	/* c6: a third module, which c0..c5 do not hold */
	if (deploy(&d, "proofs three", 2 * PG, &m3) < 0) {
		CHECK(!"deployed");
		goto out;
	}
	w[0] = (struct write){&m3, 3, blob, 5};
	commit_writes(&d, w, 1, &c[nc++]);
	for (i = 0; i < nc; i++)
		for (j = 0; j < nc; j++) {
			check_diff(&d, &c[i], &c[j], &m1);
			check_diff(&d, &c[i], &c[j], &m3);
		}
	check_diff(&d, &c[0], &c[6], &m2); /* m2 the same: not listed */

	/* CLI diff */
	{
		struct run run;

		cli(&run, d.url, "diff", hex(&c[0], h1), hex(&c[6], h2), NULL);
		CHECK(run.status == 0 && strstr(run.out, hex(&m3, h3)) &&
		      strstr(run.out, "2 modules differ"));
		cli(&run, d.url, "diff", "--no-pages", h1, h2, NULL);
		CHECK(run.status == 0 && !strstr(run.out, "pages:"));
		cli(&run, d.url, "diff", hb, h2, NULL);
		CHECK(run.status == 3 && strstr(run.err, "commit_not_found"));
	}

	/* the proof route's errors */
	hex(&c[1], h1);
	hex(&m1, h2);
	hex(&m3, h3);
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/0", hb, h2);
	expect(&d, path, 404, "commit_not_found");
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/0", h1, h3);
	expect(&d, path, 404, "module_not_found"); /* deployed, not held */
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/0", h1, hb);
	expect(&d, path, 404, "module_not_found"); /* not deployed */
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/0", "ABC",
		 h2);
	expect(&d, path, 400, "invalid_id");
	for (i = 0; i < sizeof(bad_index) / sizeof(bad_index[0]); i++) {
		snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/%s",
			 h1, h2, bad_index[i]);
		expect(&d, path, 400, "invalid_index");
	}
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/", h1, h2);
	expect(&d, path, 404, "not_found");
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/1/x", h1,
		 h2);
	expect(&d, path, 404, "not_found");
	{
		size_t len;
		unsigned char *mem = commit_memory(&d, &c[1], &m1, &len);

		snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/%zu",
			 h1, h2, len / PG);
		expect(&d, path, 416, "range_not_satisfiable");
		snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/%zu",
			 h1, h2, len / PG - 1);
		CHECK(e2e_get(&d, path, &r) == 0);
		E2E_STATUS(&r, 200);
		/* a proof is small: the page and two short paths */
		CHECK(r.len < 16384);
		e2e_resp_release(&r);
		free(mem);
	}
	snprintf(path, sizeof(path),
		 "/commits/%s/modules/%s/pages/18446744073709551616", h1, h2);
	expect(&d, path, 416, "range_not_satisfiable");
	snprintf(path, sizeof(path),
		 "/commits/%s/modules/%s/pages/000000000000000000000000001", h1,
		 h2);
	expect(&d, path, 200, NULL);
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/0", h1, h2);
	CHECK(e2e_request(&d, "POST", path, NULL, 0, NULL, &r) == 0);
	E2E_ERROR(&r, 405, "method_not_allowed");
	e2e_resp_release(&r);

	/* the diff route's errors */
	snprintf(path, sizeof(path), "/commits/%s/diff/%s", hb, h1);
	expect(&d, path, 404, "commit_not_found");
	snprintf(path, sizeof(path), "/commits/%s/diff/%s", h1, hb);
	expect(&d, path, 404, "commit_not_found");
	snprintf(path, sizeof(path), "/commits/%s/diff/%s?pages=0", h1, hb);
	expect(&d, path, 404, "commit_not_found");
	snprintf(path, sizeof(path), "/commits/%s/diff/xyz", h1);
	expect(&d, path, 400, "invalid_id");
	snprintf(path, sizeof(path), "/commits/%s/diff/%s?pages=2", h1, h1);
	expect(&d, path, 400, "invalid_argument");
	snprintf(path, sizeof(path), "/commits/%s/diff/%s?pages=yes", h1, h1);
	expect(&d, path, 400, "invalid_argument");
	snprintf(path, sizeof(path), "/commits/%s/diff/%s?pages=1", h1, h1);
	CHECK(e2e_get(&d, path, &r) == 0);
	E2E_STATUS(&r, 200);
	CHECK(r.json &&
	      json_array_size(json_object_get(r.json, "modules")) == 0);
	e2e_resp_release(&r);

	/* the commit memory route: ETag, ranges */
	{
		const char *h_range[] = {"Range: bytes=4096-8191", NULL};
		const char *h_past[] = {"Range: bytes=99999999-", NULL};
		char etag[STORE_HEX_LEN + 3], ifr[STORE_HEX_LEN + 20];
		const char *h_ifr[] = {"Range: bytes=0-9", ifr, NULL};
		struct store_id mc;
		size_t len;
		unsigned char *mem = commit_memory(&d, &c[1], &m1, &len);

		snprintf(path, sizeof(path), "/commits/%s", h1);
		CHECK(e2e_get(&d, path, &r) == 0);
		CHECK(r.json && json_is_string(json_object_get(r.json, h2)));
		snprintf(etag, sizeof(etag), "\"%s\"",
			 r.json ? json_string_value(json_object_get(r.json, h2))
				: "");
		e2e_resp_release(&r);
		store_memory_id(mem, len, &mc);
		CHECK(!strncmp(etag + 1, hex(&mc, h3), STORE_HEX_LEN));
		snprintf(path, sizeof(path), "/commits/%s/modules/%s/memory",
			 h1, h2);
		CHECK(e2e_get(&d, path, &r) == 0);
		E2E_STATUS(&r, 200);
		CHECK(e2e_header(&r, "ETag", buf, sizeof(buf)) &&
		      !strcmp(buf, etag));
		CHECK(e2e_header(&r, "Accept-Ranges", buf, sizeof(buf)) &&
		      !strcmp(buf, "bytes"));
		e2e_resp_release(&r);
		CHECK(e2e_request(&d, "GET", path, NULL, 0, h_range, &r) == 0);
		E2E_STATUS(&r, 206);
		CHECK(r.len == PG && mem && !memcmp(r.body, mem + PG, PG));
		snprintf(ifr, sizeof(ifr), "bytes 4096-8191/%zu", len);
		CHECK(e2e_header(&r, "Content-Range", buf, sizeof(buf)) &&
		      !strcmp(buf, ifr));
		CHECK(e2e_header(&r, "ETag", buf, sizeof(buf)) &&
		      !strcmp(buf, etag));
		e2e_resp_release(&r);
		/* If-Range with the ETag: the range; with another: all */
		snprintf(ifr, sizeof(ifr), "If-Range: %s", etag);
		CHECK(e2e_request(&d, "GET", path, NULL, 0, h_ifr, &r) == 0);
		E2E_STATUS(&r, 206);
		CHECK(r.len == 10);
		e2e_resp_release(&r);
		snprintf(ifr, sizeof(ifr), "If-Range: \"%s\"", hb);
		CHECK(e2e_request(&d, "GET", path, NULL, 0, h_ifr, &r) == 0);
		E2E_STATUS(&r, 200);
		CHECK(r.len == len);
		e2e_resp_release(&r);
		CHECK(e2e_request(&d, "GET", path, NULL, 0, h_past, &r) == 0);
		E2E_ERROR(&r, 416, "range_not_satisfiable");
		snprintf(ifr, sizeof(ifr), "bytes */%zu", len);
		CHECK(e2e_header(&r, "Content-Range", buf, sizeof(buf)) &&
		      !strcmp(buf, ifr));
		e2e_resp_release(&r);
		snprintf(path, sizeof(path), "/commits/%s/modules/%s/memory",
			 hb, h2);
		expect(&d, path, 404, "commit_not_found");
		snprintf(path, sizeof(path), "/commits/%s/modules/%s/memory",
			 h1, hex(&m3, h3));
		expect(&d, path, 404, "module_not_found");
		free(mem);
	}

	/* pull: every pair of commits, both ways, byte for byte */
	{
		char file[600], hf[STORE_HEX_LEN + 1], ht[STORE_HEX_LEN + 1];
		struct run run;
		size_t la, lb, lf, changed;
		uint64_t *want = malloc(64 * sizeof(*want) * 16);
		double sent0, sent1;

		snprintf(file, sizeof(file), "%s/pulled", tmp.root);
		for (i = 0; want && i + 1 < nc; i++) {
			j = (i * 3 + 2) % (nc - 1);
			if (j == i)
				continue;
			unsigned char *ma = commit_memory(&d, &c[i], &m1, &la);
			unsigned char *mb = commit_memory(&d, &c[j], &m1, &lb);
			unsigned char *mf;

			if (!ma || !mb || write_file(file, ma, la) < 0) {
				CHECK(!"memories");
				free(ma);
				free(mb);
				break;
			}
			changed = brute(ma, la, mb, lb, want);
			sent0 = metric(&d, "modstore_http_sent_bytes_total");
			cli(&run, d.url, "pull", hex(&c[j], ht), h2, file,
			    "--from", hex(&c[i], hf), NULL);
			sent1 = metric(&d, "modstore_http_sent_bytes_total");
			CHECK(run.status == 0 && strstr(run.out, "OK: "));
			mf = read_file(file, &lf);
			CHECK(mf && lf == lb && !memcmp(mf, mb, lb));
			snprintf(buf, sizeof(buf), "%zu bytes of memory",
				 changed * PG);
			CHECK(strstr(run.out, buf) != NULL);
			/* what the daemon sent: the changed pages, the
			 * commit's and the diff's JSON, one /metrics */
			CHECK(sent1 - sent0 <= (double)changed * PG + 16384);
			CHECK(sent1 - sent0 >= (double)changed * PG);
			free(ma);
			free(mb);
			free(mf);
		}
		/* a module the FROM commit does not hold: from nothing */
		unlink(file);
		cli(&run, d.url, "pull", hex(&c[6], ht), hex(&m3, h3), file,
		    "--from", hex(&c[0], hf), NULL);
		CHECK(run.status == 0 && strstr(run.out, "fetched 2 pages"));
		{
			unsigned char *mb = commit_memory(&d, &c[6], &m3, &lb);
			unsigned char *mf = read_file(file, &lf);

			CHECK(mb && mf && lf == lb && !memcmp(mf, mb, lb));
			free(mb);
			free(mf);
		}
		/* TO without the module; a file that is not FROM's */
		cli(&run, d.url, "pull", hf, h3, file, "--from", ht, NULL);
		CHECK(run.status == 3 && strstr(run.err, "does not hold"));
		{
			unsigned char junk[PG * 2];

			memset(junk, 0xEE, sizeof(junk));
			CHECK(write_file(file, junk, sizeof(junk)) == 0);
		}
		cli(&run, d.url, "pull", hex(&c[2], ht), h2, file, "--from",
		    hex(&c[1], hf), NULL);
		CHECK(run.status == 1 && strstr(run.out, "MISMATCH"));
		cli(&run, d.url, "pull", ht, h2, file, NULL);
		CHECK(run.status == 2);
		cli(&run, d.url, "pull", "--help", NULL);
		CHECK(run.status == 0 && strstr(run.out, "--from FROM"));
		cli(&run, d.url, "prove", "--help", NULL);
		CHECK(run.status == 0 && strstr(run.out, "RFC 9162"));
		cli(&run, d.url, "diff", "--help", NULL);
		CHECK(run.status == 0 && strstr(run.out, "--no-pages"));
		cli(&run, d.url, "prove", hex(&c[1], h1), h2, "99999", NULL);
		CHECK(run.status == 3 && strstr(run.err, "416"));
		cli(&run, d.url, "prove", h1, h2, "abc", NULL);
		CHECK(run.status == 2);
		free(want);
	}
out:
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
}

/* --- the bounds ----------------------------------------------------------- */

static void test_bounds(void)
{
	static const char *const args[] = {"--tree-cache-size", "64K",
					   "--max-diff-pages", "50", NULL};
	struct e2e_daemon d;
	struct e2e_tmp tmp;
	struct store_id m, c[12];
	struct write w[2];
	char path[512], h1[STORE_HEX_LEN + 1], h2[STORE_HEX_LEN + 1];
	unsigned char blob[PG];
	struct e2e_resp r;
	size_t i, k;
	double rebuilds;

	if (e2e_tmp_make(&tmp, "proofs-bounds") < 0) {
		CHECK(!"tmp");
		return;
	}
	if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
		CHECK(!"daemon started");
		e2e_tmp_done(&tmp);
		return;
	}
	CHECK(metric(&d, "modstore_tree_cache_limit_bytes") == 65536);
	/* 400 pages: a tree of about 25 KiB; two fit in the cache */
	if (deploy(&d, "bounds", 400 * PG, &m) < 0) {
		CHECK(!"deployed");
		goto out;
	}
	memset(blob, 9, sizeof(blob));
	for (i = 0; i < 12; i++) {
		blob[0] = (unsigned char)i;
		w[0] = (struct write){&m, (i * 37 % 400) * PG, blob, PG};
		commit_writes(&d, w, 1, &c[i]);
	}
	/* diffs of old commits, all rebuilt: the cache stays bounded */
	for (k = 0; k < 3; k++)
		for (i = 0; i + 1 < 11; i++) {
			snprintf(path, sizeof(path), "/commits/%s/diff/%s",
				 hex(&c[i], h1), hex(&c[i + 1], h2));
			CHECK(e2e_get(&d, path, &r) == 0);
			E2E_STATUS(&r, 200);
			CHECK(r.body && strstr(r.body, "\"pages\":["));
			e2e_resp_release(&r);
			CHECK(metric(&d, "modstore_tree_cache_bytes") <= 65536);
		}
	rebuilds = metric(&d, "modstore_tree_rebuilds_total");
	CHECK(rebuilds >= 11);
	CHECK(metric(&d, "modstore_tree_cache_trees") >= 1);
	CHECK(metric(&d, "modstore_tree_cache_trees") <= 2);
	/* proofs of an old commit use the same cache */
	for (i = 0; i < 11; i++) {
		snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/%zu",
			 hex(&c[i], h1), hex(&m, h2), i * 37 % 400);
		CHECK(e2e_get(&d, path, &r) == 0);
		E2E_STATUS(&r, 200);
		e2e_resp_release(&r);
		CHECK(metric(&d, "modstore_tree_cache_bytes") <= 65536);
	}
	/* more than 50 pages: 413; without pages: 200 */
	if (deploy(&d, "bounds two", 60 * PG, &c[11]) == 0) {
		struct store_id big = c[11], cc;

		w[0] = (struct write){&big, 0, blob, 1};
		commit_writes(&d, w, 1, &cc);
		snprintf(path, sizeof(path), "/commits/%s/diff/%s",
			 hex(&c[10], h1), hex(&cc, h2));
		expect(&d, path, 413, "too_large");
		strcat(path, "?pages=0");
		expect(&d, path, 200, NULL);
		/* modstore pull then fetches all of the memory instead */
		{
			char file[600], hm[STORE_HEX_LEN + 1];
			struct run run;
			size_t lb, lf;
			unsigned char *mb = commit_memory(&d, &cc, &big, &lb);
			unsigned char *mf;

			snprintf(file, sizeof(file), "%s/big-pull", tmp.root);
			cli(&run, d.url, "pull", h2, hex(&big, hm), file,
			    "--from", h1, NULL);
			CHECK(run.status == 0 &&
			      strstr(run.err, "all of the memory") &&
			      strstr(run.out, "fetched 60 pages in 1 range"));
			mf = read_file(file, &lf);
			CHECK(mb && mf && lf == lb && !memcmp(mf, mb, lb));
			free(mb);
			free(mf);
		}
		/* 1 page of the 400: within the bound */
		snprintf(path, sizeof(path), "/commits/%s/diff/%s",
			 hex(&c[0], h1), hex(&c[1], h2));
		expect(&d, path, 200, NULL);
	} else {
		CHECK(!"deployed");
	}
out:
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
}

/*
 * A commit file damaged on disk: the first proof or diff that rebuilds its
 * tree finds that it does not hash to its name, 500 corrupt_state, and
 * the daemon goes on.
 */
static void test_corrupt(void)
{
	struct e2e_daemon d;
	struct e2e_tmp tmp;
	struct store_id m, a, b, mc;
	struct write w[1];
	char path[700], h1[STORE_HEX_LEN + 1], h2[STORE_HEX_LEN + 1];
	char h3[STORE_HEX_LEN + 1];
	unsigned char blob[64];
	size_t len;
	unsigned char *mem;
	int fd;

	if (e2e_tmp_make(&tmp, "proofs-corrupt") < 0) {
		CHECK(!"tmp");
		return;
	}
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0 ||
	    deploy(&d, "corrupt", 8 * PG, &m) < 0) {
		CHECK(!"daemon started");
		e2e_tmp_done(&tmp);
		return;
	}
	memset(blob, 3, sizeof(blob));
	w[0] = (struct write){&m, 0, blob, sizeof(blob)};
	commit_writes(&d, w, 1, &a);
	w[0] = (struct write){&m, 3 * PG, blob, sizeof(blob)};
	commit_writes(&d, w, 1, &b);
	mem = commit_memory(&d, &a, &m, &len);
	CHECK(mem != NULL);
	if (mem) {
		store_memory_id(mem, len, &mc);
		free(mem);
	}
	/* a's file, MOD_MC: one byte of page 5 flipped */
	snprintf(path, sizeof(path), "%s/%s_%s", tmp.state, hex(&m, h1),
		 hex(&mc, h2));
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(pwrite(fd, "\x01", 1, 5 * PG + 9) == 1);
		close(fd);
	}
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/0",
		 hex(&a, h3), h1);
	expect(&d, path, 500, "corrupt_state");
	snprintf(path, sizeof(path), "/commits/%s/diff/%s", h3, hex(&b, h2));
	expect(&d, path, 500, "corrupt_state");
	/* the current commit's tree is at hand: still answered */
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/pages/0", h2, h1);
	expect(&d, path, 200, NULL);
	snprintf(path, sizeof(path), "/commits/%s/diff/%s?pages=0", h3, h2);
	expect(&d, path, 200, NULL);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
}

int main(int argc, char **argv)
{
	json_t *v;
	struct e2e_tmp tmp;

	cli_path = e2e_cli_bin();
	if (access(cli_path, X_OK) != 0) {
		fprintf(stderr, "e2e_proofs: no CLI at %s\n", cli_path);
		CHECK(!"the CLI exists");
		return t_done();
	}
	if (e2e_tmp_make(&tmp, "proofs-cli") < 0) {
		CHECK(!"tmp");
		return t_done();
	}
	snprintf(tmproot, sizeof(tmproot), "%s", tmp.root);
	v = pv_load(argc > 0 ? argv[0] : "e2e_proofs");
	CHECK(v != NULL);
	if (v)
		test_vectors(v);
	json_decref(v);
	test_routes();
	test_bounds();
	test_corrupt();
	e2e_tmp_done(&tmp);
	return t_done();
}
