/*
 * e2e_framing.c - request framing and paths, with raw sockets, as a
 * smuggling proxy or a hostile client would send them.
 *
 * Content-Length with Transfer-Encoding, two Content-Length headers (equal
 * or not), a malformed one ("5, 5", "abc", past 2^64), Transfer-Encoding
 * other than a single final chunked ("gzip, chunked", "chunked, gzip",
 * "chunked, chunked"), Transfer-Encoding in HTTP/1.0: each gets exactly
 * one answer, a JSON 400 invalid_framing, 501 unsupported_transfer_coding
 * or 413 body_too_large with Connection: close, and then the connection
 * ends: the bytes after the headers never run as a request. The errors
 * libmicrohttpd answers itself (414, 431, 505, a malformed chunk, a chunk
 * too large, a malformed header line) are one well-formed answer each,
 * with Connection: close and the contract's JSON error body. A path holding a
 * NUL or a byte outside printable ASCII, encoded or raw, is 404 not_found and
 * never reaches a shorter route: DELETE /sessions/S%00/x keeps S, GET
 * /modules/M%00x is not M.
 */
#include "e2e.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static struct e2e_daemon d;

/* What came back on one connection. */
struct wire {
	char buf[256 * 1024];
	size_t len;
	int eof; /* the daemon closed the connection */
};

/* Send len bytes, then read until EOF or 5 s of silence. */
static void exchange(const void *req, size_t len, struct wire *w)
{
	struct sockaddr_in a;
	struct pollfd p;
	ssize_t n;
	size_t off = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(w, 0, sizeof(*w));
	if (fd < 0)
		return;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)d.port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto out;
	while (off < len) {
		n = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* the daemon may close before reading it all */
		off += (size_t)n;
	}
	p.fd = fd;
	p.events = POLLIN;
	while (w->len < sizeof(w->buf) - 1 && poll(&p, 1, 5000) == 1) {
		n = recv(fd, w->buf + w->len, sizeof(w->buf) - 1 - w->len, 0);
		if (n <= 0) {
			w->eof = 1;
			break;
		}
		w->len += (size_t)n;
	}
	w->buf[w->len] = '\0';
out:
	close(fd);
}

static void exchange_str(const char *req, struct wire *w)
{
	exchange(req, strlen(req), w);
}

/* Status lines in the bytes that came back. */
static int status_lines(const struct wire *w)
{
	const char *p = w->buf;
	int n = 0;

	while ((p = strstr(p, "HTTP/1.")) != NULL) {
		if (p == w->buf || (p >= w->buf + 2 && p[-1] == '\n'))
			n++;
		p++;
	}
	return n;
}

/* A header of the (first) answer into buf, or NULL. */
static const char *header(const struct wire *w, const char *name, char *buf,
			  size_t size)
{
	const char *end = strstr(w->buf, "\r\n\r\n"), *p = w->buf;
	size_t nlen = strlen(name);

	while (end && (p = strstr(p, "\r\n")) && p < end) {
		p += 2;
		if (!strncasecmp(p, name, nlen) && p[nlen] == ':') {
			const char *v = p + nlen + 1, *e = strstr(v, "\r\n");

			while (*v == ' ')
				v++;
			snprintf(buf, size, "%.*s", (int)(e - v), v);
			return buf;
		}
	}
	return NULL;
}

/* The body after the first header block, its length checked. */
static const char *body_of(const struct wire *w, size_t *blen)
{
	const char *end = strstr(w->buf, "\r\n\r\n");

	if (!end)
		return NULL;
	*blen = w->len - (size_t)(end + 4 - w->buf);
	return end + 4;
}

static int status_of(const struct wire *w)
{
	int st = 0;

	if (sscanf(w->buf, "HTTP/1.%*d %d", &st) != 1)
		return 0;
	return st;
}

/*
 * One answer, well-formed (its Content-Length is its body), status want,
 * Connection: close, then EOF; code: its JSON error code, or NULL for any
 * body.
 */
static void expect_closed(const char *what, const struct wire *w, int want,
			  const char *code)
{
	char conn[64], cl[64], ct[128];
	const char *b;
	size_t blen = 0;
	json_t *j = NULL;
	int ok;

	b = body_of(w, &blen);
	ok = status_lines(w) == 1 && status_of(w) == want && w->eof && b &&
	     header(w, "Connection", conn, sizeof(conn)) &&
	     !strcasecmp(conn, "close") &&
	     header(w, "Content-Length", cl, sizeof(cl)) &&
	     strtoull(cl, NULL, 10) == blen;
	if (ok && code) {
		j = json_loadb(b, blen, 0, NULL);
		ok =
		    j &&
		    !strcmp(json_string_value(json_object_get(j, "error"))
				? json_string_value(json_object_get(j, "error"))
				: "",
			    code) &&
		    json_is_string(json_object_get(j, "message")) &&
		    header(w, "Content-Type", ct, sizeof(ct)) &&
		    !strcmp(ct, "application/json");
		json_decref(j);
	}
	if (!ok)
		fprintf(stderr,
			"%s: want one %d%s%s and close, got (eof %d): "
			"%.600s\n",
			what, want, code ? " " : "", code ? code : "", w->eof,
			w->buf);
	CHECK(ok);
}

/* The framing cases: each is followed by a request that must not run. */
static void test_framing(void)
{
	static const struct {
		const char *what, *head;
		int status;
		const char *code;
	} cases[] = {
	    {"CL+TE", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
	     400, "invalid_framing"},
	    {"TE+CL", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
	     400, "invalid_framing"},
	    {"two CL", "Content-Length: 5\r\nContent-Length: 6\r\n", 400,
	     "invalid_framing"},
	    {"two equal CL", "Content-Length: 5\r\nContent-Length: 5\r\n", 400,
	     "invalid_framing"},
	    {"CL 5, 5", "Content-Length: 5, 5\r\n", 400, "invalid_framing"},
	    {"CL abc", "Content-Length: abc\r\n", 400, "invalid_framing"},
	    {"CL -1", "Content-Length: -1\r\n", 400, "invalid_framing"},
	    {"CL +5", "Content-Length: +5\r\n", 400, "invalid_framing"},
	    {"CL 2^64", "Content-Length: 18446744073709551616\r\n", 413,
	     "body_too_large"},
	    {"TE gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n", 501,
	     "unsupported_transfer_coding"},
	    {"TE gzip + chunked lines",
	     "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501,
	     "unsupported_transfer_coding"},
	    {"TE chunked, gzip", "Transfer-Encoding: chunked, gzip\r\n", 400,
	     "invalid_framing"},
	    {"TE chunked, chunked", "Transfer-Encoding: chunked, chunked\r\n",
	     400, "invalid_framing"},
	    {"TE identity", "Transfer-Encoding: identity\r\n", 400,
	     "invalid_framing"},
	    {"TE empty element", "Transfer-Encoding: , chunked\r\n", 400,
	     "invalid_framing"},
	};
	char req[2048];
	struct wire *w = malloc(sizeof(*w));
	size_t i;

	if (!w)
		return;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/*
		 * The body, read one way or another, holds a whole request:
		 * a server that frames it differently answers twice.
		 */
		snprintf(req, sizeof(req),
			 "POST /sessions HTTP/1.1\r\nHost: x\r\n%s\r\n"
			 "0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
			 cases[i].head);
		exchange_str(req, w);
		expect_closed(cases[i].what, w, cases[i].status, cases[i].code);
	}
	/* Transfer-Encoding in HTTP/1.0 */
	exchange_str("POST /sessions HTTP/1.0\r\nTransfer-Encoding: chunked\r\n"
		     "\r\n0\r\n\r\n",
		     w);
	expect_closed("TE in HTTP/1.0", w, 400, "invalid_framing");
	/* a GET too: the framing is checked before the route */
	exchange_str("GET /root HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n"
		     "\r\nx",
		     w);
	expect_closed("GET with CL 1, 1", w, 400, "invalid_framing");
	/* sane framing still keeps the connection: two answers */
	exchange_str("POST /sessions HTTP/1.1\r\nHost: x\r\n"
		     "Transfer-Encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
		     "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		     "\r\n",
		     w);
	CHECK(status_lines(w) == 2 && status_of(w) == 201 &&
	      strstr(w->buf, "\"status\":\"ok\""));
	exchange_str("POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 2"
		     "\r\n\r\n{}GET /health HTTP/1.1\r\nHost: x\r\n"
		     "Connection: close\r\n\r\n",
		     w);
	CHECK(status_lines(w) == 2 && status_of(w) == 201);
	free(w);
}

/*
 * The answers libmicrohttpd makes itself: one each, well-formed, closed,
 * and JSON (the daemon replaces its HTML bodies).
 */
static void test_mhd_errors(void)
{
	struct wire *w = malloc(sizeof(*w));
	size_t big = 100 * 1024, n;
	char *req = malloc(big + 256);

	if (!w || !req)
		goto out;
	/* 414: a request line longer than the connection's buffers */
	n = (size_t)snprintf(req, 16, "GET /");
	memset(req + n, 'a', big);
	n += big;
	n += (size_t)snprintf(req + n, 64, " HTTP/1.1\r\nHost: x\r\n\r\n");
	exchange(req, n, w);
	expect_closed("414", w, 414, "uri_too_long");
	/* 431: a header block too large */
	n = (size_t)snprintf(req, 64, "GET /root HTTP/1.1\r\nX-Big: ");
	memset(req + n, 'b', big);
	n += big;
	n += (size_t)snprintf(req + n, 64, "\r\n\r\n");
	exchange(req, n, w);
	expect_closed("431", w, 431, "headers_too_large");
	/* 505: HTTP/2.0 and HTTP/0.5 in a request line */
	exchange_str("GET /root HTTP/2.0\r\nHost: x\r\n\r\n", w);
	expect_closed("505", w, 505, "http_version_not_supported");
	exchange_str("GET /root HTTP/0.5\r\nHost: x\r\n\r\n", w);
	expect_closed("505 old", w, 505, "http_version_not_supported");
	/* 400: a malformed chunk; 413: a chunk size past 2^64 */
	exchange_str("POST /sessions HTTP/1.1\r\nHost: x\r\n"
		     "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
		     w);
	expect_closed("bad chunk", w, 400, "invalid_request");
	exchange_str("POST /sessions HTTP/1.1\r\nHost: x\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n"
		     "FFFFFFFFFFFFFFFFFFFF\r\n",
		     w);
	expect_closed("chunk too large", w, 413, "body_too_large");
	/* 400: a header line without a colon */
	exchange_str("GET /root HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", w);
	expect_closed("header without colon", w, 400, "invalid_request");
out:
	free(req);
	free(w);
}

static void expect_status(const char *method, const char *path, long want,
			  const char *code)
{
	struct e2e_resp r;

	e2e_request(&d, method, path, NULL, 0, NULL, &r);
	if (code)
		E2E_ERROR(&r, want, code);
	else
		E2E_STATUS(&r, want);
	e2e_resp_release(&r);
}

static void test_paths(void)
{
	struct e2e_resp r;
	struct wire *w = malloc(sizeof(*w));
	char mod[65] = "", sid[65] = "", path[512], req[1024];
	const char *bad[] = {"%00", "%01", "%1f", "%7f",
			     "%80", "%ff", "%0a", "%0d"};
	size_t i;

	if (!w)
		return;
	e2e_post(&d, "/modules?size=4096", "paths module", &r);
	E2E_STATUS(&r, 201);
	snprintf(mod, sizeof(mod), "%s", e2e_str(&r, "id") ?: "");
	e2e_resp_release(&r);
	e2e_post(&d, "/sessions", NULL, &r);
	E2E_STATUS(&r, 201);
	snprintf(sid, sizeof(sid), "%s", e2e_str(&r, "id") ?: "");
	e2e_resp_release(&r);

	/* the openings of the issue */
	snprintf(path, sizeof(path), "/sessions/%s%%00/whatever", sid);
	expect_status("DELETE", path, 404, "not_found");
	snprintf(path, sizeof(path), "/modules/%s%%00xyz", mod);
	expect_status("GET", path, 404, "not_found");
	/* S is still open, M still served */
	e2e_get(&d, "/sessions", &r);
	CHECK(r.status == 200 && strstr(r.body, sid));
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/modules/%s", mod);
	expect_status("GET", path, 200, NULL);
	/* every byte outside printable ASCII, on every kind of route */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "/modules/%s%s", mod, bad[i]);
		expect_status("GET", path, 404, "not_found");
		snprintf(path, sizeof(path), "/sessions/%s%s", sid, bad[i]);
		expect_status("DELETE", path, 404, "not_found");
		snprintf(path, sizeof(path), "/root%s", bad[i]);
		expect_status("GET", path, 404, "not_found");
		snprintf(path, sizeof(path), "/health%s", bad[i]);
		expect_status("GET", path, 404, "not_found");
	}
	/* raw bytes on the wire: a NUL and a byte of 0x80 or more */
	for (i = 0; i < 2; i++) {
		int n = snprintf(req, sizeof(req),
				 "DELETE /sessions/%s%cwhatever HTTP/1.1\r\n"
				 "Host: x\r\nConnection: close\r\n\r\n",
				 sid, i ? '\x80' : 'X');

		if (!i)
			req[strlen("DELETE /sessions/") + 64] = '\0';
		exchange(req, (size_t)n, w);
		CHECK(status_lines(w) == 1 && status_of(w) == 404 &&
		      strstr(w->buf, "\"not_found\""));
	}
	e2e_get(&d, "/sessions", &r);
	CHECK(r.status == 200 && strstr(r.body, sid));
	e2e_resp_release(&r);
	/* encoded printable bytes are fine: %2F is not a separator here */
	expect_status("GET", "/r%6Fot", 200, NULL);
	snprintf(path, sizeof(path), "/sessions/%s", sid);
	expect_status("DELETE", path, 204, NULL);
	free(w);
}

int main(void)
{
	struct e2e_tmp tmp;

	signal(SIGPIPE, SIG_IGN);
	if (e2e_tmp_make(&tmp, "framing") ||
	    e2e_start(&d, tmp.state, tmp.log, NULL)) {
		CHECK(0);
		return t_done();
	}
	test_framing();
	test_mhd_errors();
	test_paths();
	/* the daemon is fine after all that */
	expect_status("GET", "/health", 200, NULL);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
	return t_done();
}
