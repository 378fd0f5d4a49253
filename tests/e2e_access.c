/*
 * e2e_access.c - both bearer tokens on every route of the api's own route
 * table (api_route_at(), so a route added later is covered too), and the
 * conditional reads of contract v1.1.
 *
 * With --token-file and --read-token-file: no token or a wrong one is 401
 * on every route but /health; the read token passes GET and HEAD (the
 * same status as the token) and is 403 forbidden on every other method;
 * the token passes everything. MODSTORE_READ_TOKEN_FILE does the same; a
 * read token without --token-file, or equal to the token, is a usage
 * error.
 *
 * Every GET route that sends an ETag answers If-None-Match naming it (the
 * tag, W/ the tag, a list holding it, or *) with 304, no body and the
 * ETag, HEAD too, and another tag with 200. A 412 on commit carries the
 * current root.
 */
#include "api.h"
#include "e2e.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN  "full-token-0123456789"
#define RTOKEN "read-token-9876543210"

static char mod[65], sid[65], commit[65];

/* The pattern with its {x} segments filled in: a real path. */
static void fill(const char *pattern, char *out, size_t size)
{
	const char *p = pattern;
	size_t n = 0;

	while (*p && n + 80 < size) {
		if (*p == '{') {
			const char *e = strchr(p, '}');
			const char *v = "0";

			if (!e)
				break;
			if (!strncmp(p, "{mod}", 5))
				v = mod;
			else if (!strncmp(p, "{sid}", 5))
				v = sid;
			else if (!strncmp(p, "{commit}", 8) ||
				 !strncmp(p, "{from}", 6) ||
				 !strncmp(p, "{to}", 4))
				v = commit;
			n += (size_t)snprintf(out + n, size - n, "%s", v);
			p = e + 1;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = '\0';
}

static long call(const struct e2e_daemon *d, const char *method,
		 const char *path, const char *auth, struct e2e_resp *r)
{
	const char *const hdr[] = {auth, NULL};
	int body = !strcmp(method, "POST") || !strcmp(method, "PUT");

	e2e_request(d, method, path, body ? "x" : NULL, body ? 1 : 0,
		    auth ? hdr : NULL, r);
	return r->status;
}

static int is_read(const char *method)
{
	return !strcmp(method, "GET") || !strcmp(method, "HEAD");
}

static void test_tokens(const struct e2e_daemon *d)
{
	const char *method, *pattern;
	struct e2e_resp r;
	char path[512], h[128];
	size_t i, routes = 0;
	long full;

	for (i = 0; i < api_route_count(); i++) {
		const char *methods[2];
		size_t k;

		api_route_at(i, &method, &pattern);
		methods[0] = method;
		methods[1] = !strcmp(method, "GET") ? "HEAD" : NULL;
		fill(pattern, path, sizeof(path));
		for (k = 0; k < 2 && methods[k]; k++) {
			const char *m = methods[k];
			int public = !strcmp(pattern, "/health");

			routes++;
			/* no token, a wrong one */
			call(d, m, path, NULL, &r);
			if (public)
				E2E_STATUS(&r, 200);
			else if (strcmp(m, "HEAD"))
				E2E_ERROR(&r, 401, "unauthorized");
			else
				E2E_STATUS(&r, 401);
			e2e_resp_release(&r);
			call(d, m, path, "Authorization: Bearer " RTOKEN "x",
			     &r);
			E2E_STATUS(&r, public ? 200 : 401);
			e2e_resp_release(&r);
			/* the read token */
			call(d, m, path, "Authorization: Bearer " RTOKEN, &r);
			if (public || is_read(m)) {
				CHECK(r.status != 401 && r.status != 403 &&
				      r.status != 0);
			} else {
				E2E_ERROR(&r, 403, "forbidden");
				CHECK(e2e_header(&r, "WWW-Authenticate", h,
						 sizeof(h)) &&
				      strstr(h, "insufficient_scope"));
			}
			/* a read answers the same as with the token */
			if (is_read(m)) {
				struct e2e_resp f;

				full = call(d, m, path,
					    "Authorization: Bearer " TOKEN, &f);
				if (full != r.status)
					fprintf(stderr,
						"%s %s: read %ld, "
						"token %ld\n",
						m, path, r.status, full);
				CHECK(full == r.status);
				e2e_resp_release(&f);
			}
			e2e_resp_release(&r);
		}
	}
	printf("tokens: %zu method and route pairs of %zu routes\n", routes,
	       api_route_count());
	CHECK(routes > api_route_count());
	/* the token passes every method; destructive ones last */
	for (i = 0; i < api_route_count(); i++) {
		api_route_at(i, &method, &pattern);
		fill(pattern, path, sizeof(path));
		call(d, method, path, "Authorization: Bearer " TOKEN, &r);
		CHECK(r.status != 401 && r.status != 403 && r.status != 0);
		e2e_resp_release(&r);
	}
	/* a method no route has, with the read token: 403, not 405 */
	call(d, "PATCH", "/root", "Authorization: Bearer " RTOKEN, &r);
	E2E_ERROR(&r, 403, "forbidden");
	e2e_resp_release(&r);
	call(d, "PATCH", "/root", "Authorization: Bearer " TOKEN, &r);
	E2E_ERROR(&r, 405, "method_not_allowed");
	e2e_resp_release(&r);
}

/* Deploy, write and commit with the token: mod, sid (open), commit. */
static void setup(struct e2e_daemon *d)
{
	struct e2e_resp r;
	char path[256];

	d->token = TOKEN;
	e2e_post(d, "/modules?size=8192", "access module", &r);
	E2E_STATUS(&r, 201);
	snprintf(mod, sizeof(mod), "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);
	e2e_post(d, "/sessions", NULL, &r);
	snprintf(sid, sizeof(sid), "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory?offset=0",
		 sid, mod);
	e2e_request(d, "PUT", path, "hello", 5, NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
	e2e_post(d, path, NULL, &r);
	E2E_STATUS(&r, 201);
	snprintf(commit, sizeof(commit), "%s",
		 e2e_str(&r, "commit") ? e2e_str(&r, "commit") : "");
	e2e_resp_release(&r);
	e2e_post(d, "/sessions", NULL, &r);
	snprintf(sid, sizeof(sid), "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);
	d->token = NULL;
}

static void expect_304(const struct e2e_daemon *d, const char *method,
		       const char *path, const char *inm, const char *etag)
{
	struct e2e_resp r;
	char h[256], got[128];
	const char *const hdr[] = {h, NULL};

	snprintf(h, sizeof(h), "If-None-Match: %s", inm);
	e2e_request(d, method, path, NULL, 0, hdr, &r);
	E2E_STATUS(&r, 304);
	CHECK(r.len == 0);
	CHECK(e2e_header(&r, "ETag", got, sizeof(got)) && !strcmp(got, etag));
	e2e_resp_release(&r);
}

static void test_conditional(struct e2e_daemon *d)
{
	const char *method, *pattern;
	struct e2e_resp r, s;
	char path[512], etag[128], h[256], lower[128];
	const char *hdr[] = {h, NULL};
	size_t i, k, tagged = 0;

	d->token = TOKEN;
	for (i = 0; i < api_route_count(); i++) {
		api_route_at(i, &method, &pattern);
		if (strcmp(method, "GET"))
			continue;
		fill(pattern, path, sizeof(path));
		e2e_get(d, path, &r);
		if (r.status != 200 ||
		    !e2e_header(&r, "ETag", etag, sizeof(etag))) {
			e2e_resp_release(&r);
			continue;
		}
		tagged++;
		expect_304(d, "GET", path, etag, etag);
		expect_304(d, "HEAD", path, etag, etag);
		snprintf(h, sizeof(h), "W/%s", etag);
		expect_304(d, "GET", path, h, etag);
		snprintf(h, sizeof(h), "\"nope\", %s", etag);
		expect_304(d, "GET", path, h, etag);
		expect_304(d, "GET", path, "*", etag);
		for (k = 0; etag[k]; k++)
			lower[k] = (char)(etag[k] >= 'A' && etag[k] <= 'F'
					      ? etag[k] + 32
					      : etag[k]);
		lower[k] = '\0';
		expect_304(d, "GET", path, lower, etag);
		/* another tag: the whole answer */
		snprintf(h, sizeof(h), "If-None-Match: \"%064d\"", 0);
		e2e_request(d, "GET", path, NULL, 0, hdr, &s);
		E2E_STATUS(&s, 200);
		CHECK(s.len == r.len && !memcmp(s.body, r.body, r.len));
		e2e_resp_release(&s);
		e2e_resp_release(&r);
	}
	printf("conditional reads: %zu GET routes send an ETag\n", tagged);
	/* /root, module memory, bytecode, a commit's module memory */
	CHECK(tagged >= 4);

	/* the commit's memory: ETag "MC", ranges as the module's memory */
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/memory", commit,
		 mod);
	snprintf(h, sizeof(h), "Range: bytes=1-3");
	e2e_request(d, "GET", path, NULL, 0, hdr, &r);
	E2E_STATUS(&r, 206);
	CHECK(r.len == 3 && !memcmp(r.body, "ell", 3));
	CHECK(e2e_header(&r, "Content-Range", etag, sizeof(etag)) &&
	      !strcmp(etag, "bytes 1-3/8192"));
	CHECK(e2e_header(&r, "Accept-Ranges", etag, sizeof(etag)) &&
	      !strcmp(etag, "bytes"));
	CHECK(e2e_header(&r, "ETag", etag, sizeof(etag)) && strlen(etag) == 66);
	e2e_resp_release(&r);
	e2e_get(d, path, &r);
	CHECK(r.len == 8192);
	e2e_resp_release(&r);
	snprintf(h, sizeof(h), "Range: bytes=8192-");
	e2e_request(d, "GET", path, NULL, 0, hdr, &r);
	E2E_ERROR(&r, 416, "range_not_satisfiable");
	e2e_resp_release(&r);

	/* 412 names the current root */
	{
		char root[65] = "", cpath[256];

		e2e_get(d, "/root", &r);
		snprintf(root, sizeof(root), "%s",
			 e2e_str(&r, "root") ? e2e_str(&r, "root") : "");
		e2e_resp_release(&r);
		e2e_post(d, "/sessions", NULL, &r);
		snprintf(cpath, sizeof(cpath), "/sessions/%s/commit",
			 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
		e2e_resp_release(&r);
		snprintf(h, sizeof(h), "If-Match: \"%064d\"", 0);
		e2e_request(d, "POST", cpath, NULL, 0, hdr, &r);
		E2E_ERROR(&r, 412, "root_mismatch");
		CHECK(e2e_str(&r, "root") &&
		      !strcmp(e2e_str(&r, "root"), root));
		e2e_resp_release(&r);
	}
	d->token = NULL;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

int main(void)
{
	struct e2e_tmp tmp;
	struct e2e_daemon d;
	struct e2e_resp r;
	char tok[600], rtok[600], env[700], out[256];

	if (e2e_tmp_make(&tmp, "access") < 0)
		return 1;
	snprintf(tok, sizeof(tok), "%s/token", tmp.root);
	snprintf(rtok, sizeof(rtok), "%s/read-token", tmp.root);
	if (write_file(tok, TOKEN "\n") || write_file(rtok, RTOKEN "\n"))
		return 1;
	{
		const char *args[] = {"--token-file", tok, "--read-token-file",
				      rtok, NULL};

		if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
			CHECK(!"daemon started");
			return t_done();
		}
	}
	setup(&d);
	test_conditional(&d);
	test_tokens(&d);
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	/* MODSTORE_READ_TOKEN_FILE */
	snprintf(env, sizeof(env), "MODSTORE_READ_TOKEN_FILE=%s", rtok);
	{
		const char *args[] = {"--token-file", tok, NULL};
		const char *envs[] = {env, NULL};

		if (e2e_start_env(&d, tmp.state, tmp.log, args, envs) < 0) {
			CHECK(!"daemon started with MODSTORE_READ_TOKEN_FILE");
			return t_done();
		}
	}
	call(&d, "GET", "/root", "Authorization: Bearer " RTOKEN, &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	call(&d, "POST", "/sessions", "Authorization: Bearer " RTOKEN, &r);
	E2E_ERROR(&r, 403, "forbidden");
	e2e_resp_release(&r);
	call(&d, "POST", "/persist", "Authorization: Bearer " TOKEN, &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	/* a read token alone, or the token twice: usage errors */
	{
		const char *a1[] = {
		    "--dir",	   tmp.state,		"--listen",
		    "127.0.0.1:0", "--read-token-file", rtok,
		    NULL};
		const char *a2[] = {"--dir",
				    tmp.state,
				    "--listen",
				    "127.0.0.1:0",
				    "--token-file",
				    tok,
				    "--read-token-file",
				    tok,
				    NULL};

		CHECK(e2e_run(a1, out, sizeof(out)) == 2);
		CHECK(e2e_run(a2, out, sizeof(out)) == 2);
	}
	e2e_tmp_done(&tmp);
	return t_done();
}
