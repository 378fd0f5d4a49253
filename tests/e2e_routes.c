/*
 * e2e_routes.c - every route of the contract and every status it names,
 * with its error code, against the real daemon: 200 201 204 206 400 404
 * 405 412 413 416 503, and 507 and 500 through the I/O fault shim.
 * (401 is in e2e_token.)
 */
#include "e2e.h"
#include "store.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_MODULE (1024 * 1024)

static struct e2e_daemon d;

static void hex_of(const struct store_id *id, char hex[STORE_HEX_LEN + 1])
{
	store_id_hex(id, hex);
}

/* Deploy code with ?size (0: none); its id into mod. Checks want. */
static void deploy(const char *code, unsigned size, long want,
		   struct store_id *mod)
{
	struct e2e_resp r;
	char path[64];
	const char *id;

	if (size)
		snprintf(path, sizeof(path), "/modules?size=%u", size);
	else
		snprintf(path, sizeof(path), "/modules");
	e2e_post(&d, path, code, &r);
	E2E_STATUS(&r, want);
	id = e2e_str(&r, "id");
	CHECK(id && store_id_parse(mod, id, strlen(id)) == STORE_OK);
	e2e_resp_release(&r);
}

static void session_open(struct store_id *sid, char hex[STORE_HEX_LEN + 1])
{
	struct e2e_resp r;
	const char *id;

	e2e_post(&d, "/sessions", NULL, &r);
	E2E_STATUS(&r, 201);
	id = e2e_str(&r, "id");
	CHECK(id && strlen(id) == STORE_HEX_LEN);
	if (id) {
		store_id_parse(sid, id, strlen(id));
		hex_of(sid, hex);
		CHECK(strcmp(hex, id) == 0); /* uppercase out */
	}
	e2e_resp_release(&r);
}

static void root_now(struct store_id *root)
{
	struct e2e_resp r;
	const char *h;

	e2e_get(&d, "/root", &r);
	E2E_STATUS(&r, 200);
	h = e2e_str(&r, "root");
	CHECK(h && store_id_parse(root, h, strlen(h)) == STORE_OK);
	e2e_resp_release(&r);
}

static void test_health_root(void)
{
	struct e2e_resp r;
	struct store_id empty, root;
	char hex[STORE_HEX_LEN + 1], etag[80], want[80], ct[64];

	e2e_get(&d, "/health", &r);
	E2E_STATUS(&r, 200);
	CHECK(e2e_str(&r, "status") && !strcmp(e2e_str(&r, "status"), "ok"));
	CHECK(e2e_header(&r, "Content-Type", ct, sizeof(ct)) &&
	      !strcmp(ct, "application/json"));
	e2e_resp_release(&r);

	e2e_request(&d, "HEAD", "/health", NULL, 0, NULL, &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);

	/* No module has a commit: the root is H(""). */
	crypto_generichash(empty.b, sizeof(empty.b), NULL, 0, NULL, 0);
	hex_of(&empty, hex);
	e2e_get(&d, "/root", &r);
	E2E_STATUS(&r, 200);
	CHECK(e2e_str(&r, "root") && !strcmp(e2e_str(&r, "root"), hex));
	snprintf(want, sizeof(want), "\"%s\"", hex);
	CHECK(e2e_header(&r, "ETag", etag, sizeof(etag)) &&
	      !strcmp(etag, want));
	e2e_resp_release(&r);
	root_now(&root);
	CHECK(store_id_equal(&root, &empty));
}

static void test_unknown_routes(void)
{
	static const char *const notfound[] = {
	    "/",	"/nope",	"/modules/", "/root/x", "/sessions/x/y",
	    "/health/", "/commits/A/B", NULL};
	struct e2e_resp r;
	char allow[64];
	size_t i;

	for (i = 0; notfound[i]; i++) {
		e2e_get(&d, notfound[i], &r);
		E2E_ERROR(&r, 404, "not_found");
		e2e_resp_release(&r);
	}
	e2e_request(&d, "DELETE", "/root", NULL, 0, NULL, &r);
	E2E_ERROR(&r, 405, "method_not_allowed");
	CHECK(e2e_header(&r, "Allow", allow, sizeof(allow)) &&
	      !strcmp(allow, "GET, HEAD"));
	e2e_resp_release(&r);

	e2e_request(&d, "PATCH", "/sessions", NULL, 0, NULL, &r);
	E2E_ERROR(&r, 405, "method_not_allowed");
	CHECK(e2e_header(&r, "Allow", allow, sizeof(allow)) &&
	      strstr(allow, "POST") && strstr(allow, "GET"));
	e2e_resp_release(&r);

	e2e_post(&d, "/health", "x", &r);
	E2E_ERROR(&r, 405, "method_not_allowed");
	e2e_resp_release(&r);

	e2e_get(&d, "/persist", &r);
	E2E_ERROR(&r, 405, "method_not_allowed");
	CHECK(e2e_header(&r, "Allow", allow, sizeof(allow)) &&
	      !strcmp(allow, "POST"));
	e2e_resp_release(&r);
}

/* Errors without a body keep the connection: two requests, one socket. */
static void test_keep_alive(void)
{
	static const char reqs[] = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
				   "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	struct sockaddr_in sa;
	char buf[4096];
	size_t have = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)d.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(write(fd, reqs, sizeof(reqs) - 1) == (ssize_t)(sizeof(reqs) - 1));
	while (have < sizeof(buf) - 1 &&
	       (n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "{\"status\":\"ok\"}"))
			break;
	}
	buf[have] = '\0';
	CHECK(!strncmp(buf, "HTTP/1.1 404", 12));
	CHECK(strstr(buf, "HTTP/1.1 200") && strstr(buf, "\"ok\""));
	if (fd >= 0)
		close(fd);
}

static void test_deploy(struct store_id *a, struct store_id *b)
{
	struct e2e_resp r;
	struct store_id want, other;
	char hex[STORE_HEX_LEN + 1], path[200], *big;
	json_t *mods;

	deploy("code-a", 0, 201, a);
	store_module_id("code-a", 6, &want);
	CHECK(store_id_equal(a, &want));
	deploy("code-a", 0, 200, a); /* already deployed */
	deploy("code-b", 8192, 201, b);

	e2e_post(&d, "/modules?size=8192", "code-c-fresh", &r);
	E2E_STATUS(&r, 201);
	CHECK(json_integer_value(json_object_get(r.json, "size")) == 8192);
	CHECK(json_is_null(json_object_get(r.json, "last_commit")));
	e2e_resp_release(&r);

	static const char *const bad_sizes[] = {
	    "0",     "4097", "abc",
	    "-4096", "",     "+4096",
	    "4096x", "1e4",  "99999999999999999999999",
	    NULL};
	for (size_t i = 0; bad_sizes[i]; i++) {
		snprintf(path, sizeof(path), "/modules?size=%s", bad_sizes[i]);
		e2e_post(&d, path, "code-x", &r);
		E2E_ERROR(&r, 400, "invalid_size");
		e2e_resp_release(&r);
	}
	snprintf(path, sizeof(path), "/modules?size=%d", 2 * MAX_MODULE);
	e2e_post(&d, path, "code-x", &r);
	E2E_ERROR(&r, 413, "too_large");
	e2e_resp_release(&r);

	e2e_post(&d, "/modules", "", &r);
	E2E_ERROR(&r, 400, "invalid_body");
	e2e_resp_release(&r);

	/* A Content-Length above --max-body is refused before the body. */
	big = calloc(1, 2 * MAX_MODULE + 1);
	CHECK(big != NULL);
	if (big) {
		e2e_request(&d, "POST", "/modules", big, 2 * MAX_MODULE, NULL,
			    &r);
		E2E_ERROR(&r, 413, "body_too_large");
		e2e_resp_release(&r);
		free(big);
	}

	/* GET /modules: sorted by id. */
	e2e_get(&d, "/modules", &r);
	E2E_STATUS(&r, 200);
	mods = json_object_get(r.json, "modules");
	CHECK(json_array_size(mods) == 3);
	for (size_t i = 0; i + 1 < json_array_size(mods); i++) {
		const char *x = json_string_value(
		    json_object_get(json_array_get(mods, i), "id"));
		const char *y = json_string_value(
		    json_object_get(json_array_get(mods, i + 1), "id"));
		CHECK(x && y && strcmp(x, y) < 0);
	}
	e2e_resp_release(&r);

	/* GET /modules/{mod}, either case in, uppercase out. */
	hex_of(a, hex);
	for (char *p = hex; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'F' ? *p + 32 : *p);
	snprintf(path, sizeof(path), "/modules/%s", hex);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	hex_of(a, hex);
	CHECK(e2e_str(&r, "id") && !strcmp(e2e_str(&r, "id"), hex));
	CHECK(json_integer_value(json_object_get(r.json, "size")) == 65536);
	CHECK(json_is_null(json_object_get(r.json, "last_commit")));
	e2e_resp_release(&r);

	store_module_id("never deployed", 14, &other);
	hex_of(&other, hex);
	snprintf(path, sizeof(path), "/modules/%s", hex);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 404, "module_not_found");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/modules/%s/memory", hex);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 404, "module_not_found");
	e2e_resp_release(&r);

	static const char *const bad_ids[] = {
	    "/modules/zz", "/modules/0123",
	    "/modules/" /* 65 digits */
	    "00000000000000000000000000000000000000000000000000000000000000000",
	    "/modules/G000000000000000000000000000000000000000000000000000000"
	    "000000000/memory",
	    NULL};
	for (size_t i = 0; bad_ids[i]; i++) {
		e2e_get(&d, bad_ids[i], &r);
		E2E_ERROR(&r, 400, "invalid_id");
		e2e_resp_release(&r);
	}
}

static int all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/*
 * A multipart/byteranges answer of n parts whose first two have the
 * Content-Range values first and second ("a-b/size"), each part holding
 * as many bytes as its range says, and the closing delimiter last.
 */
static int multipart_ok(const struct e2e_resp *r, const char *first,
			const char *second, int n)
{
	char ct[256], delim[300], want[64];
	const char *b, *p, *end = r->body + r->len;
	unsigned long long a, z;
	int parts = 0;

	if (!e2e_header(r, "Content-Type", ct, sizeof(ct)) ||
	    strncmp(ct, "multipart/byteranges; boundary=", 31) != 0)
		return 0;
	b = ct + 31;
	snprintf(delim, sizeof(delim), "--%s\r\n", b);
	for (p = r->body; p < end; parts++) {
		if (parts)
			p += 2; /* the CRLF before a delimiter */
		if (!strncmp(p, delim, strlen(delim) - 2) &&
		    !strncmp(p + strlen(delim) - 2, "--\r\n", 4))
			return parts == n && p + strlen(delim) + 2 == end;
		if (strncmp(p, delim, strlen(delim)) != 0)
			return 0;
		p = strstr(p, "Content-Range: bytes ");
		if (!p || sscanf(p + 21, "%llu-%llu", &a, &z) != 2)
			return 0;
		snprintf(want, sizeof(want), "%s", parts ? second : first);
		if (parts < 2 && strncmp(p + 21, want, strlen(want)) != 0)
			return 0;
		p = strstr(p, "\r\n\r\n");
		if (!p)
			return 0;
		p += 4 + (z - a + 1);
	}
	return 0;
}

/* 1024 ranges in one header are served; 1025 are ignored (the whole). */
static void test_many_ranges(const char *path)
{
	static char h[32768];
	const char *hdrs[] = {h, NULL};
	struct e2e_resp r;
	size_t len;
	int i;

	len = (size_t)snprintf(h, sizeof(h), "Range: bytes=");
	for (i = 0; i < 1025; i++)
		len += (size_t)snprintf(h + len, sizeof(h) - len, "%s%d-%d",
					i ? "," : "", i * 2, i * 2);
	e2e_request(&d, "GET", path, NULL, 0, hdrs, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 65536);
	e2e_resp_release(&r);
	*strrchr(h, ',') = '\0';
	e2e_request(&d, "GET", path, NULL, 0, hdrs, &r);
	E2E_STATUS(&r, 206);
	CHECK(multipart_ok(&r, "0-0/65536", "2-2/65536", 1024));
	e2e_resp_release(&r);
}

static void test_module_memory(const struct store_id *a)
{
	static const char *const r0[] = {"Range: bytes=0-99", NULL};
	static const char *const r1[] = {"Range: bytes=-10", NULL};
	static const char *const r2[] = {"Range: bytes=65530-", NULL};
	static const char *const r3[] = {"Range: bytes=65536-", NULL};
	static const char *const r4[] = {"Range: bytes=100-70000", NULL};
	static const char *const r5[] = {"Range: bytes=0-1, 5-6", NULL};
	static const char *const r6[] = {"Range: bytes=0-4,,5-9", NULL};
	static const char *const r7[] = {"Range: bytes=0-4,3-9", NULL};
	static const char *const r8[] = {"Range: bytes=10-14,0-4", NULL};
	static const char *const r9[] = {"Range: bytes=0-0,70000-", NULL};
	static const char *const r10[] = {"Range: bytes=70000-,-0", NULL};
	struct e2e_resp r;
	char hex[STORE_HEX_LEN + 1], path[200], h[128];

	hex_of(a, hex);
	snprintf(path, sizeof(path), "/modules/%s/memory", hex);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 65536 && all_zero(r.body, r.len));
	CHECK(!e2e_header(&r, "ETag", h, sizeof(h))); /* no commit yet */
	CHECK(e2e_header(&r, "Content-Type", h, sizeof(h)) &&
	      !strcmp(h, "application/octet-stream"));
	e2e_resp_release(&r);

	e2e_request(&d, "GET", path, NULL, 0, r0, &r);
	E2E_STATUS(&r, 206);
	CHECK(r.len == 100);
	CHECK(e2e_header(&r, "Content-Range", h, sizeof(h)) &&
	      !strcmp(h, "bytes 0-99/65536"));
	e2e_resp_release(&r);

	e2e_request(&d, "GET", path, NULL, 0, r1, &r);
	E2E_STATUS(&r, 206);
	CHECK(r.len == 10);
	CHECK(e2e_header(&r, "Content-Range", h, sizeof(h)) &&
	      !strcmp(h, "bytes 65526-65535/65536"));
	e2e_resp_release(&r);

	e2e_request(&d, "GET", path, NULL, 0, r2, &r);
	E2E_STATUS(&r, 206);
	CHECK(r.len == 6);
	e2e_resp_release(&r);

	e2e_request(&d, "GET", path, NULL, 0, r3, &r);
	E2E_ERROR(&r, 416, "range_not_satisfiable");
	CHECK(e2e_header(&r, "Content-Range", h, sizeof(h)) &&
	      !strcmp(h, "bytes */65536"));
	e2e_resp_release(&r);

	e2e_request(&d, "GET", path, NULL, 0, r4, &r);
	E2E_STATUS(&r, 206);
	CHECK(r.len == 65436);
	CHECK(e2e_header(&r, "Content-Range", h, sizeof(h)) &&
	      !strcmp(h, "bytes 100-65535/65536"));
	e2e_resp_release(&r);

	/* HEAD: the headers of GET, no body. */
	e2e_request(&d, "HEAD", path, NULL, 0, NULL, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 0 && e2e_header(&r, "Content-Length", h, sizeof(h)) &&
	      !strcmp(h, "65536"));
	e2e_resp_release(&r);

	/* Several ranges: one multipart/byteranges answer (RFC 9110). */
	e2e_request(&d, "GET", path, NULL, 0, r5, &r);
	E2E_STATUS(&r, 206);
	CHECK(multipart_ok(&r, "0-1/65536", "5-6/65536", 2));
	e2e_resp_release(&r);

	/* Adjacent ranges are one; overlapping or descending: the whole. */
	e2e_request(&d, "GET", path, NULL, 0, r6, &r);
	E2E_STATUS(&r, 206);
	CHECK(e2e_header(&r, "Content-Range", h, sizeof(h)) &&
	      !strcmp(h, "bytes 0-9/65536") && r.len == 10);
	e2e_resp_release(&r);
	e2e_request(&d, "GET", path, NULL, 0, r7, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 65536);
	e2e_resp_release(&r);
	e2e_request(&d, "GET", path, NULL, 0, r8, &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	/* the unsatisfiable ones are left out; none left: 416 */
	e2e_request(&d, "GET", path, NULL, 0, r9, &r);
	E2E_STATUS(&r, 206);
	CHECK(e2e_header(&r, "Content-Range", h, sizeof(h)) &&
	      !strcmp(h, "bytes 0-0/65536") && r.len == 1);
	e2e_resp_release(&r);
	e2e_request(&d, "GET", path, NULL, 0, r10, &r);
	E2E_ERROR(&r, 416, "range_not_satisfiable");
	e2e_resp_release(&r);
	test_many_ranges(path);
}

static void test_sessions(struct store_id *s1, char s1hex[STORE_HEX_LEN + 1])
{
	struct e2e_resp r;
	struct store_id s2, s3, unknown;
	char s2hex[STORE_HEX_LEN + 1], s3hex[STORE_HEX_LEN + 1];
	char hex[STORE_HEX_LEN + 1], body[200], path[200], h[32];
	json_t *list;

	session_open(s1, s1hex);
	e2e_get(&d, "/sessions", &r);
	E2E_STATUS(&r, 200);
	list = json_object_get(r.json, "sessions");
	CHECK(json_array_size(list) == 1);
	CHECK(json_is_null(json_object_get(json_array_get(list, 0), "base")));
	e2e_resp_release(&r);

	static const char *const bad_json[] = {
	    "{", "[]", "\"x\"", "nul", "{\"base\":1}x", NULL};
	for (size_t i = 0; bad_json[i]; i++) {
		e2e_post(&d, "/sessions", bad_json[i], &r);
		E2E_ERROR(&r, 400, "invalid_json");
		e2e_resp_release(&r);
	}
	e2e_post(&d, "/sessions", "{\"base\":\"xyz\"}", &r);
	E2E_ERROR(&r, 400, "invalid_id");
	e2e_resp_release(&r);
	e2e_post(&d, "/sessions", "{\"base\":42}", &r);
	E2E_ERROR(&r, 400, "invalid_id");
	e2e_resp_release(&r);

	store_module_id("no such commit", 14, &unknown);
	hex_of(&unknown, hex);
	snprintf(body, sizeof(body), "{\"base\":\"%s\"}", hex);
	e2e_post(&d, "/sessions", body, &r);
	E2E_ERROR(&r, 404, "commit_not_found");
	e2e_resp_release(&r);

	/* {} and {"base": null} start from the current state. */
	e2e_post(&d, "/sessions", "{}", &r);
	E2E_STATUS(&r, 201);
	CHECK(e2e_str(&r, "id") &&
	      store_id_parse(&s2, e2e_str(&r, "id"), 64) == STORE_OK);
	hex_of(&s2, s2hex);
	e2e_resp_release(&r);
	e2e_post(&d, "/sessions", "{\"base\":null}", &r);
	E2E_STATUS(&r, 201);
	CHECK(e2e_str(&r, "id") &&
	      store_id_parse(&s3, e2e_str(&r, "id"), 64) == STORE_OK);
	hex_of(&s3, s3hex);
	e2e_resp_release(&r);

	/* --max-sessions 3: a fourth is 503 with Retry-After. */
	e2e_post(&d, "/sessions", NULL, &r);
	E2E_ERROR(&r, 503, "too_many_sessions");
	CHECK(e2e_header(&r, "Retry-After", h, sizeof(h)) && !strcmp(h, "1"));
	e2e_resp_release(&r);

	snprintf(path, sizeof(path), "/sessions/%s", s2hex);
	e2e_request(&d, "DELETE", path, NULL, 0, NULL, &r);
	E2E_STATUS(&r, 204);
	CHECK(r.len == 0);
	e2e_resp_release(&r);
	e2e_request(&d, "DELETE", path, NULL, 0, NULL, &r);
	E2E_ERROR(&r, 404, "session_not_found");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s", s3hex);
	e2e_request(&d, "DELETE", path, NULL, 0, NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	e2e_request(&d, "DELETE", "/sessions/123", NULL, 0, NULL, &r);
	E2E_ERROR(&r, 400, "invalid_id");
	e2e_resp_release(&r);
}

static void test_session_memory(const char *s, const struct store_id *a,
				const struct store_id *b)
{
	struct e2e_resp r;
	struct store_id unknown;
	char ahex[STORE_HEX_LEN + 1], bhex[STORE_HEX_LEN + 1];
	char uhex[STORE_HEX_LEN + 1], path[300], *big;

	hex_of(a, ahex);
	hex_of(b, bhex);
	store_module_id("unknown", 7, &unknown);
	hex_of(&unknown, uhex);

	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=100", s, ahex);
	e2e_request(&d, "PUT", path, "hello", 5, NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);

	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=98&length=9", s, ahex);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 9 && !memcmp(r.body, "\0\0hello\0\0", 9));
	e2e_resp_release(&r);

	/* Growth: one byte past the end adds a page. */
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=65536", s, ahex);
	e2e_request(&d, "PUT", path, "x", 1, NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory", s, ahex);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 65536 + 4096);
	CHECK(r.len > 65536 && r.body[65536] == 'x' &&
	      !memcmp(r.body + 100, "hello", 5));
	e2e_resp_release(&r);

	/* The module itself did not change (no commit yet). */
	snprintf(path, sizeof(path), "/modules/%s/memory", ahex);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 65536 && all_zero(r.body, r.len));
	e2e_resp_release(&r);

	/* Reads at and past the end. */
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=69632", s, ahex);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 0);
	e2e_resp_release(&r);
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=69633", s, ahex);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 416, "range_not_satisfiable");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=69000&length=633", s,
		 ahex);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 416, "range_not_satisfiable");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?length=69633", s, ahex);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 416, "range_not_satisfiable");
	e2e_resp_release(&r);

	/* Malformed numbers. */
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=abc", s, ahex);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 400, "invalid_offset");
	e2e_resp_release(&r);
	e2e_request(&d, "PUT", path, "x", 1, NULL, &r);
	E2E_ERROR(&r, 400, "invalid_offset");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory?length=-1",
		 s, ahex);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 400, "invalid_length");
	e2e_resp_release(&r);

	/* Beyond --max-module-size: 413, nothing written. */
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory?offset=%d",
		 s, bhex, MAX_MODULE);
	e2e_request(&d, "PUT", path, "x", 1, NULL, &r);
	E2E_ERROR(&r, 413, "too_large");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory?offset=%d",
		 s, bhex, MAX_MODULE - 2);
	e2e_request(&d, "PUT", path, "xyz", 3, NULL, &r);
	E2E_ERROR(&r, 413, "too_large");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory", s, bhex);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 8192 && all_zero(r.body, r.len));
	e2e_resp_release(&r);

	/* A body above --max-body (equal to the module maximum here). */
	big = calloc(1, MAX_MODULE + 1);
	if (big) {
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=0", s, bhex);
		e2e_request(&d, "PUT", path, big, MAX_MODULE + 1, NULL, &r);
		E2E_ERROR(&r, 413, "body_too_large");
		e2e_resp_release(&r);
		free(big);
	}

	/* Chunked bodies (no Content-Length) stream the same way. */
	{
		const char *const chunked[] = {"Transfer-Encoding: chunked",
					       NULL};

		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=200", s, ahex);
		e2e_request(&d, "PUT", path, "chunky", 6, chunked, &r);
		E2E_STATUS(&r, 204);
		e2e_resp_release(&r);
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=200&length=6",
			 s, ahex);
		e2e_get(&d, path, &r);
		E2E_STATUS(&r, 200);
		CHECK(r.len == 6 && !memcmp(r.body, "chunky", 6));
		e2e_resp_release(&r);
		/* Past the maximum while streaming: the store says 413. */
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=%d", s, bhex,
			 MAX_MODULE - 1);
		e2e_request(&d, "PUT", path, "xy", 2, chunked, &r);
		E2E_ERROR(&r, 413, "too_large");
		e2e_resp_release(&r);
		/* A chunked body past --max-body. */
		big = calloc(1, MAX_MODULE + 10);
		if (big) {
			e2e_request(&d, "POST", "/modules", big,
				    MAX_MODULE + 10, chunked, &r);
			E2E_ERROR(&r, 413, "body_too_large");
			e2e_resp_release(&r);
			free(big);
		}
	}

	/* Unknown session, unknown module. */
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory", uhex,
		 ahex);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 404, "session_not_found");
	e2e_resp_release(&r);
	e2e_request(&d, "PUT", path, "x", 1, NULL, &r);
	E2E_ERROR(&r, 404, "session_not_found");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory", s, uhex);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 404, "module_not_found");
	e2e_resp_release(&r);
	e2e_request(&d, "PUT", path, "x", 1, NULL, &r);
	E2E_ERROR(&r, 404, "module_not_found");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/modules/xx/memory", s);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 400, "invalid_id");
	e2e_resp_release(&r);
}

/* The expected commit of session s: module a as written, b and c zero. */
static void expected_commit(json_t *modules, struct store_id *commit)
{
	struct store_pair pairs[8];
	size_t n = 0;
	const char *k;
	json_t *v;

	json_object_foreach(modules, k, v)
	{
		if (n == 8)
			break;
		store_id_parse(&pairs[n].module, k, strlen(k));
		store_id_parse(&pairs[n].commit, json_string_value(v), 64);
		n++;
	}
	CHECK(store_state_id(pairs, n, commit) == STORE_OK);
}

static void test_commit(const char *s, const struct store_id *a,
			const struct store_id *b, struct store_id *c1,
			struct store_id *c2)
{
	struct e2e_resp r;
	struct store_id root, mc, want, got;
	char hex[STORE_HEX_LEN + 1], path[300], hdr[120], etag[80];
	unsigned char *mem;
	const char *v;
	json_t *mods;

	root_now(&root);
	snprintf(path, sizeof(path), "/sessions/%s/commit", s);

	/* Malformed If-Match: 400; another root: 412, the session stays. */
	{
		const char *const h[] = {"If-Match: \"nothex\"", NULL};

		e2e_request(&d, "POST", path, NULL, 0, h, &r);
		E2E_ERROR(&r, 400, "invalid_id");
		e2e_resp_release(&r);
	}
	{
		const char *const h[] = {
		    "If-Match: \"00000000000000000000000000000000000000000000"
		    "00000000000000000000\"",
		    NULL};

		e2e_request(&d, "POST", path, NULL, 0, h, &r);
		E2E_ERROR(&r, 412, "root_mismatch");
		e2e_resp_release(&r);
	}
	hex_of(&root, hex);
	snprintf(hdr, sizeof(hdr), "If-Match: \"%s\"", hex);
	{
		const char *const h[] = {hdr, NULL};

		e2e_request(&d, "POST", path, NULL, 0, h, &r);
	}
	E2E_STATUS(&r, 201);
	CHECK(json_is_null(json_object_get(r.json, "base")));
	mods = json_object_get(r.json, "modules");
	CHECK(json_object_size(mods) == 3);

	/* Recompute module a's commit id from the memory written. */
	mem = calloc(1, 65536 + 4096);
	if (mem) {
		memcpy(mem + 100, "hello", 5);
		memcpy(mem + 200, "chunky", 6);
		mem[65536] = 'x';
		store_memory_id(mem, 65536 + 4096, &mc);
		hex_of(a, hex);
		v = json_string_value(json_object_get(mods, hex));
		CHECK(v && store_id_parse(&got, v, 64) == STORE_OK &&
		      store_id_equal(&got, &mc));
		memset(mem, 0, 8192);
		store_memory_id(mem, 8192, &mc);
		hex_of(b, hex);
		v = json_string_value(json_object_get(mods, hex));
		CHECK(v && store_id_parse(&got, v, 64) == STORE_OK &&
		      store_id_equal(&got, &mc));
		free(mem);
	}
	expected_commit(mods, &want);
	v = e2e_str(&r, "commit");
	CHECK(v && store_id_parse(c1, v, 64) == STORE_OK &&
	      store_id_equal(c1, &want));
	e2e_resp_release(&r);

	root_now(&root);
	CHECK(store_id_equal(&root, c1));

	/* The session is gone. */
	e2e_request(&d, "POST", path, NULL, 0, NULL, &r);
	E2E_ERROR(&r, 404, "session_not_found");
	e2e_resp_release(&r);

	/* The module's memory now has an ETag: its module commit. */
	hex_of(a, hex);
	snprintf(path, sizeof(path), "/modules/%s/memory", hex);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 65536 + 4096 && r.body[65536] == 'x');
	CHECK(e2e_header(&r, "ETag", etag, sizeof(etag)) && strlen(etag) == 66);
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/modules/%s", hex);
	e2e_get(&d, path, &r);
	v = e2e_str(&r, "last_commit");
	CHECK(v && strlen(etag) == 66 && !strncmp(etag + 1, v, 64));
	CHECK(json_integer_value(json_object_get(r.json, "size")) ==
	      65536 + 4096);
	e2e_resp_release(&r);

	/* A second commit with a bare If-Match; its base is c1. */
	{
		struct store_id sid;
		char sh[STORE_HEX_LEN + 1];

		session_open(&sid, sh);
		hex_of(b, hex);
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=4096", sh, hex);
		e2e_request(&d, "PUT", path, "b2", 2, NULL, &r);
		E2E_STATUS(&r, 204);
		e2e_resp_release(&r);
		hex_of(c1, hex);
		snprintf(hdr, sizeof(hdr), "If-Match: %s", hex);
		snprintf(path, sizeof(path), "/sessions/%s/commit", sh);
		{
			const char *const h[] = {hdr, NULL};

			e2e_request(&d, "POST", path, NULL, 0, h, &r);
		}
		E2E_STATUS(&r, 201);
		CHECK(e2e_str(&r, "base") && !strcmp(e2e_str(&r, "base"), hex));
		v = e2e_str(&r, "commit");
		CHECK(v && store_id_parse(c2, v, 64) == STORE_OK);
		e2e_resp_release(&r);
	}
	{
		/* If-Match: * commits whatever the root. */
		struct store_id sid;
		char sh[STORE_HEX_LEN + 1];
		const char *const h[] = {"If-Match: *", NULL};

		session_open(&sid, sh);
		snprintf(path, sizeof(path), "/sessions/%s/commit", sh);
		e2e_request(&d, "POST", path, NULL, 0, h, &r);
		E2E_STATUS(&r, 201);
		/* Nothing written: the same state, the same id. */
		CHECK(e2e_str(&r, "commit") &&
		      store_id_parse(&got, e2e_str(&r, "commit"), 64) ==
			  STORE_OK &&
		      store_id_equal(&got, c2));
		e2e_resp_release(&r);
	}
	e2e_request(&d, "POST", "/sessions/zz/commit", NULL, 0, NULL, &r);
	E2E_ERROR(&r, 400, "invalid_id");
	e2e_resp_release(&r);
}

static void test_commits(const struct store_id *c1, const struct store_id *c2)
{
	struct e2e_resp r;
	struct store_id unknown, root;
	char h1[STORE_HEX_LEN + 1], h2[STORE_HEX_LEN + 1], path[200];
	char uhex[STORE_HEX_LEN + 1], file[700];
	struct stat st;

	hex_of(c1, h1);
	hex_of(c2, h2);
	e2e_get(&d, "/commits", &r);
	E2E_STATUS(&r, 200);
	CHECK(json_object_size(r.json) == 2);
	CHECK(json_object_size(json_object_get(r.json, h1)) == 3);
	CHECK(json_object_size(json_object_get(r.json, h2)) == 3);
	e2e_resp_release(&r);

	snprintf(path, sizeof(path), "/commits/%s", h1);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(json_object_size(r.json) == 3);
	e2e_resp_release(&r);

	store_module_id("unknown commit", 14, &unknown);
	hex_of(&unknown, uhex);
	snprintf(path, sizeof(path), "/commits/%s", uhex);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 404, "commit_not_found");
	e2e_resp_release(&r);
	e2e_get(&d, "/commits/123", &r);
	E2E_ERROR(&r, 400, "invalid_id");
	e2e_resp_release(&r);

	snprintf(file, sizeof(file), "%s/commits", d.dir);
	CHECK(stat(file, &st) < 0); /* not before persist */
	e2e_post(&d, "/persist", NULL, &r);
	E2E_STATUS(&r, 200);
	CHECK(json_object_size(r.json) == 2);
	e2e_resp_release(&r);
	CHECK(stat(file, &st) == 0 && st.st_size > 0);

	snprintf(path, sizeof(path), "/restore/%s", h1);
	e2e_post(&d, path, NULL, &r);
	E2E_STATUS(&r, 200);
	CHECK(json_object_size(r.json) == 2 && json_object_get(r.json, h2));
	e2e_resp_release(&r);
	root_now(&root);
	CHECK(store_id_equal(&root, c1));

	snprintf(path, sizeof(path), "/restore/%s", uhex);
	e2e_post(&d, path, NULL, &r);
	E2E_ERROR(&r, 404, "commit_not_found");
	e2e_resp_release(&r);
	e2e_post(&d, "/restore/xyz", NULL, &r);
	E2E_ERROR(&r, 400, "invalid_id");
	e2e_resp_release(&r);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 405, "method_not_allowed");
	e2e_resp_release(&r);
}

/* Its report file (FAULTSHIM_REPORT), read until it starts with word. */
struct shim_wait {
	const char *report;
	const char *word;
};

static int shim_says(void *ctx)
{
	const struct shim_wait *w = ctx;
	char buf[64] = "";
	size_t n = 0;
	FILE *f = fopen(w->report, "r");

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return !strncmp(buf, w->word, strlen(w->word));
}

/* Send sig to the shim and wait until its report says word; 0 or -1. */
static int shim_signal(pid_t pid, const char *report, int sig, const char *word)
{
	struct shim_wait w = {report, word};

	unlink(report);
	kill(pid, sig);
	return e2e_wait_until(shim_says, &w, E2E_WAIT_MS) ? 0 : -1;
}

/* Arm the shim: the next counted step fails. */
static int shim_arm(pid_t pid, const char *report)
{
	return shim_signal(pid, report, SIGUSR1, "armed");
}

/* Disarm it (it disarmed itself if the failure fired). */
static int shim_disarm(pid_t pid, const char *report)
{
	return shim_signal(pid, report, SIGUSR2, "disarmed");
}

/* 507 and 500: the disk fails under a commit and a persist. */
static void test_faults(const char *root)
{
	const char *pre = e2e_shim_preload();
	struct e2e_daemon f;
	struct e2e_resp r;
	struct store_id mod, sid, before, after;
	char dir[600], log[600], report[600], path[300];
	char mh[STORE_HEX_LEN + 1], sh[STORE_HEX_LEN + 1];
	const char *env[6];
	struct e2e_daemon saved = d;

	if (!pre) {
		printf("skip: FAULTSHIM not set, no 507/500 test\n");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/faults", root);
	snprintf(log, sizeof(log), "%s/faults.log", root);
	snprintf(report, sizeof(report), "%s/shim.report", root);
	char rep[700];
	snprintf(rep, sizeof(rep), "FAULTSHIM_REPORT=%s", report);
	env[0] = pre;
	env[1] = rep;
	env[2] = "FAULTSHIM_N=1";
	env[3] = "FAULTSHIM_ERRNO=ENOSPC";
	/* A sanitizer build wants its runtime first; the shim is not. */
	env[4] = "ASAN_OPTIONS=verify_asan_link_order=0";
	env[5] = NULL;
	if (e2e_start_env(&f, dir, log, NULL, env) < 0) {
		CHECK(!"daemon with the fault shim started");
		return;
	}
	d = f;
	deploy("fault-code", 0, 201, &mod);
	store_id_hex(&mod, mh);
	root_now(&before);

	session_open(&sid, sh);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory", sh, mh);
	e2e_request(&d, "PUT", path, "data", 4, NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/commit", sh);
	CHECK(shim_arm(f.pid, report) == 0);
	e2e_request(&d, "POST", path, NULL, 0, NULL, &r);
	E2E_ERROR(&r, 507, "disk_full");
	e2e_resp_release(&r);
	CHECK(shim_disarm(f.pid, report) == 0);
	root_now(&after);
	CHECK(store_id_equal(&before, &after)); /* nothing half done */

	CHECK(shim_arm(f.pid, report) == 0);
	e2e_post(&d, "/persist", NULL, &r);
	E2E_ERROR(&r, 507, "disk_full");
	e2e_resp_release(&r);
	CHECK(shim_disarm(f.pid, report) == 0);

	e2e_get(&d, "/health", &r);
	E2E_STATUS(&r, 200); /* still serving */
	e2e_resp_release(&r);
	CHECK(e2e_stop(&f, SIGTERM) == 0);

	/* EIO: 500 io_error. */
	env[3] = "FAULTSHIM_ERRNO=EIO";
	if (e2e_start_env(&f, dir, log, NULL, env) < 0) {
		CHECK(!"daemon with the fault shim restarted");
		d = saved;
		return;
	}
	d = f;
	session_open(&sid, sh);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory", sh, mh);
	e2e_request(&d, "PUT", path, "data", 4, NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/commit", sh);
	CHECK(shim_arm(f.pid, report) == 0);
	e2e_request(&d, "POST", path, NULL, 0, NULL, &r);
	E2E_ERROR(&r, 500, "io_error");
	e2e_resp_release(&r);
	CHECK(shim_disarm(f.pid, report) == 0);
	root_now(&after);
	CHECK(store_id_equal(&before, &after));
	e2e_get(&d, "/health", &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	CHECK(e2e_stop(&f, SIGTERM) == 0);
	d = saved;
}

int main(void)
{
	static const char *const args[] = {"--max-sessions",
					   "3",
					   "--max-module-size",
					   "1M",
					   "--max-body",
					   "1M",
					   NULL};
	struct store_id a, b, s1, c1, c2;
	char s1hex[STORE_HEX_LEN + 1];
	struct e2e_tmp tmp;

	if (sodium_init() < 0 || e2e_tmp_make(&tmp, "routes") < 0)
		return 1;
	if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
		CHECK(!"daemon started");
		return t_done();
	}
	test_health_root();
	test_unknown_routes();
	test_keep_alive();
	test_deploy(&a, &b);
	test_module_memory(&a);
	test_sessions(&s1, s1hex);
	test_session_memory(s1hex, &a, &b);
	test_commit(s1hex, &a, &b, &c1, &c2);
	test_commits(&c1, &c2);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	test_faults(tmp.root);
	e2e_tmp_done(&tmp);
	return t_done();
}
