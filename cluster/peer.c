/*
 * peer.c - GET requests to other nodes (peer.h), and the parsing of a
 * multipart/byteranges answer (RFC 9110 section 14.6) as it streams in:
 * the delimiter line, the part's header lines, then exactly as many bytes
 * as its Content-Range says, written at their offset. Nothing of a part
 * is trusted but its place: what was fetched is checked against its
 * Merkle id by the store before it is kept.
 */
#include "peer.h"

#include <curl/curl.h>
#include <errno.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PEER_LINE_MAX	512	/* a line of a part's header, at most */
#define PEER_TIMEOUT_MS 120000L /* one request, at most */

struct peer {
	CURL *curl;
	char *token;
	char *cert, *key, *ca; /* struct peer_tls's PEM text, or NULL */
	atomic_uint_fast64_t requests, body_bytes, header_bytes;
};

/* *out = a copy of s (NULL for NULL): 0, or -1 out of memory. */
static int copy_opt(const char *s, char **out)
{
	*out = s ? strdup(s) : NULL;
	return s && !*out ? -1 : 0;
}

/* Free a copy of a secret, wiped first (a store the compiler keeps). */
static void secret_free(char *s)
{
	if (!s)
		return;
	sodium_memzero(s, strlen(s));
	free(s);
}

/*
 * The TLS options of a request to a peer on h: cert and key (NULL: none)
 * as its client certificate; ca (NULL: the system's) alone to check the
 * peer's certificate, libcurl's default CA file and directory left out.
 * Verification stays as libcurl has it: peer and host name both checked.
 * The text is not copied by libcurl (CURL_BLOB_NOCOPY), so that struct
 * peer holds the one copy of the key, wiped at the end. CURLE_OK, or the
 * first option refused.
 */
static CURLcode tls_setup(CURL *h, const char *cert, const char *key,
			  const char *ca)
{
	struct curl_blob b = {NULL, 0, CURL_BLOB_NOCOPY};
	CURLcode rc = CURLE_OK;

	if (cert) {
		b.data = (void *)(uintptr_t)cert;
		b.len = strlen(cert);
		rc = curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
		if (!rc)
			rc = curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (cert && key && !rc) {
		b.data = (void *)(uintptr_t)key;
		b.len = strlen(key);
		rc = curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
		if (!rc)
			rc = curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (ca && !rc) {
		b.data = (void *)(uintptr_t)ca;
		b.len = strlen(ca);
		rc = curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
		if (!rc)
			rc = curl_easy_setopt(h, CURLOPT_CAINFO, (char *)NULL);
		if (!rc)
			rc = curl_easy_setopt(h, CURLOPT_CAPATH, (char *)NULL);
	}
	return rc;
}

struct peer *peer_new(const char *token, const struct peer_tls *tls)
{
	static const struct peer_tls none = {NULL, NULL, NULL};
	struct peer *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (!tls)
		tls = &none;
	p->curl = curl_easy_init();
	if (!p->curl || copy_opt(token, &p->token) < 0 ||
	    copy_opt(tls->cert, &p->cert) < 0 ||
	    copy_opt(tls->cert ? tls->key : NULL, &p->key) < 0 ||
	    copy_opt(tls->ca, &p->ca) < 0 ||
	    tls_setup(p->curl, p->cert, p->key, p->ca) != CURLE_OK) {
		peer_free(p);
		return NULL;
	}
	return p;
}

void peer_free(struct peer *p)
{
	if (!p)
		return;
	if (p->curl)
		curl_easy_cleanup(p->curl); /* before the text it points to */
	secret_free(p->token);
	secret_free(p->key);
	free(p->cert);
	free(p->ca);
	free(p);
}

/* --- the TLS options checked at startup ---------------------------------- */

/*
 * A request that goes as far as libcurl's loading of the certificate, key
 * and CAs into OpenSSL, and no further. The certificate and key are
 * loaded before CURLOPT_SSL_CTX_FUNCTION is called; the CAs before it
 * too, or (libcurl 7.88) right after the first write of the handshake.
 * It connects to a listening socket of this process with an abstract name
 * the kernel picks (AF_UNIX: no port taken, no network needed), never
 * accepted; the callback closes that socket, so that the write fails at
 * once (a broken pipe) instead of waiting for an answer, and nothing
 * leaves the process.
 */
struct probe {
	int fd;	   /* listening */
	int built; /* the TLS context was built */
};

static CURLcode probe_built(CURL *h, void *ssl_ctx, void *cls)
{
	struct probe *pr = cls;

	(void)h;
	(void)ssl_ctx;
	pr->built = 1;
	close(pr->fd); /* resets the connection waiting to be accepted */
	pr->fd = -1;
	return CURLE_OK;
}

/* A listening socket of an abstract name, into name: its fd, or -1. */
static int probe_listen(char *name, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len = offsetof(struct sockaddr_un, sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t n;

	/* bound with no name: the kernel picks one, NUL then 5 hex digits */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) < 0 ||
	    listen(fd, 1) < 0)
		goto fail;
	len = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    len <= offsetof(struct sockaddr_un, sun_path) + 1)
		goto fail;
	n = len - offsetof(struct sockaddr_un, sun_path) - 1;
	if (n >= size)
		goto fail;
	memcpy(name, sa.sun_path + 1, n);
	name[n] = '\0';
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

enum peer_tls_fault peer_tls_check(const struct peer_tls *tls, char *err,
				   size_t size)
{
	enum peer_tls_fault f = PEER_TLS_LIBCURL;
	char msg[CURL_ERROR_SIZE] = "", name[32]; /* 5 hex digits */
	CURL *h = curl_easy_init();
	struct probe pr = {-1, 0};
	CURLcode rc;

	snprintf(err, size, "out of memory");
	if (!h)
		goto out;
	if ((pr.fd = probe_listen(name, sizeof(name))) < 0) {
		snprintf(err, size, "a local socket: %s", strerror(errno));
		goto out;
	}
	if (tls_setup(h, tls->cert, tls->key, tls->ca) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, probe_built) !=
		CURLE_OK) {
		snprintf(err, size,
			 "this libcurl cannot take certificates as "
			 "PEM text (its TLS library is not OpenSSL)");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, &pr);
	curl_easy_setopt(h, CURLOPT_URL, "https://127.0.0.1/");
	curl_easy_setopt(h, CURLOPT_ABSTRACT_UNIX_SOCKET, name);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, msg);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	rc = curl_easy_perform(h);
	if (rc == CURLE_SSL_CERTPROBLEM)
		f = PEER_TLS_CERT;
	else if (rc == CURLE_SSL_CACERT_BADFILE)
		f = PEER_TLS_CA;
	else if (pr.built)
		f = PEER_TLS_OK; /* then the handshake failed, as it must */
	/* for the CAs, the message is of the write that failed after them */
	if (f == PEER_TLS_CA)
		snprintf(err, size, "OpenSSL takes no CA certificate of it");
	else if (f == PEER_TLS_OK)
		err[0] = '\0';
	else
		snprintf(err, size, "%s",
			 msg[0] ? msg : curl_easy_strerror(rc));
out:
	if (h)
		curl_easy_cleanup(h);
	if (pr.fd >= 0)
		close(pr.fd);
	return f;
}

void peer_stats(struct peer *p, struct peer_stats *st)
{
	st->requests = atomic_load(&p->requests);
	st->body_bytes = atomic_load(&p->body_bytes);
	st->header_bytes = atomic_load(&p->header_bytes);
}

/* --- requests ------------------------------------------------------------ */

/* One request: its callbacks, headers and answer. */
struct call {
	struct peer *p;
	peer_sink_fn sink;
	void *ctx;
	size_t (*hdr)(char *, size_t, size_t, void *); /* may be NULL */
	void *hdr_ctx;
	const char *body; /* POST it when not NULL */
	size_t blen;
	struct curl_slist *hdrs;
	CURL *h;	/* of several at once, while it runs */
	int state;	/* of several at once: CALL_* */
	uint64_t again; /* ... when it is sent again */
	long status;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *cls)
{
	struct call *c = cls;
	size_t len = size * nmemb;

	atomic_fetch_add(&c->p->body_bytes, len);
	if (!c->sink)
		return len; /* the answer's body is not wanted */
	return c->sink(c->ctx, data, len) == 0 ? len : 0;
}

/*
 * h made ready for c: base+path, the TLS options, the token and extra
 * (NULL: none). 0, or -1 when the TLS options could not be set (out of
 * memory): not sent then, rather than checked against the system's CAs.
 */
static int call_setup(CURL *h, struct call *c, const char *base,
		      const char *path, const char *extra, long timeout_ms)
{
	struct peer *p = c->p;
	char url[1024], auth[1100];
	struct curl_slist *l;

	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_reset(h);
	if (tls_setup(h, p->cert, p->key, p->ca) != CURLE_OK)
		return -1;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_PRIVATE, c);
	if (c->hdr) {
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, c->hdr);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, c->hdr_ctx);
	}
	if (c->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)c->blen);
	}
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/*
	 * A new connection each time: libmicrohttpd's pool binds a
	 * connection to one worker, and a worker that waits (the leader's,
	 * for the acks of a write) would never serve a kept-alive one.
	 */
	curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	c->hdrs = curl_slist_append(NULL, "Expect:"); /* no 100-continue */
	if (c->p->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			 c->p->token);
		if ((l = curl_slist_append(c->hdrs, auth)))
			c->hdrs = l;
		sodium_memzero(auth, sizeof(auth));
	}
	if (extra && (l = curl_slist_append(c->hdrs, extra)))
		c->hdrs = l;
	if (c->hdrs)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdrs);
	atomic_fetch_add(&c->p->requests, 1);
	return 0;
}

/* c's answer once h is done with rc: its status (0: none came whole). */
static void call_done(CURL *h, struct call *c, CURLcode rc)
{
	long hsize = 0;

	if (curl_easy_getinfo(h, CURLINFO_HEADER_SIZE, &hsize) == CURLE_OK &&
	    hsize > 0)
		atomic_fetch_add(&c->p->header_bytes, (uint64_t)hsize);
	c->status = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
	curl_slist_free_all(c->hdrs);
	c->hdrs = NULL;
}

/* One request on the peer's handle; the status, or 0. */
static long request(struct call *c, const char *base, const char *path,
		    const char *extra)
{
	if (call_setup(c->p->curl, c, base, path, extra, PEER_TIMEOUT_MS) < 0) {
		c->status = 0;
		return 0;
	}
	call_done(c->p->curl, c, curl_easy_perform(c->p->curl));
	return c->status;
}

long peer_get(struct peer *p, const char *base, const char *path,
	      peer_sink_fn sink, void *ctx)
{
	struct call c = {.p = p, .sink = sink, .ctx = ctx};

	return request(&c, base, path, NULL);
}

/* --- several at once ------------------------------------------------------ */

/* Add the request r (its call c) to the multi handle m on a new handle. */
static int many_add(struct peer *p, CURLM *m, struct peer_req *r,
		    struct call *c, long timeout_ms)
{
	CURL *h = curl_easy_init();

	if (!h)
		return -1;
	*c = (struct call){.p = p,
			   .sink = r->sink,
			   .ctx = r->ctx,
			   .body = r->body,
			   .blen = r->blen};
	if (call_setup(h, c, r->base, r->path, NULL, timeout_ms) < 0 ||
	    curl_multi_add_handle(m, h) != CURLM_OK) {
		curl_slist_free_all(c->hdrs);
		c->hdrs = NULL;
		curl_easy_cleanup(h);
		return -1;
	}
	c->h = h;
	return 0;
}

enum { CALL_WAIT, CALL_RUN, CALL_DONE };

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The requests that ended, at now: their status into their peer_req; a
 * 2xx counts in *ok; no answer, a 409 or a 5xx waits retry_ms to be sent
 * again (0: it is done), any other is done. The number that ended.
 */
static size_t many_reap(CURLM *m, struct peer_req *r, struct call *calls,
			size_t *ok, uint64_t now, long retry_ms)
{
	struct call *c;
	CURLMsg *msg;
	size_t ended = 0;
	int left;

	while ((msg = curl_multi_info_read(m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &c);
		call_done(msg->easy_handle, c, msg->data.result);
		r[c - calls].status = c->status;
		curl_multi_remove_handle(m, c->h);
		curl_easy_cleanup(c->h);
		c->h = NULL;
		c->state = CALL_DONE;
		if (c->status >= 200 && c->status < 300) {
			(*ok)++;
		} else if (c->status == 413 && r[c - calls].alt) {
			/* too large for the peer: the smaller body, now */
			r[c - calls].body = r[c - calls].alt;
			r[c - calls].blen = r[c - calls].alt_len;
			r[c - calls].alt = NULL;
			c->state = CALL_WAIT;
			c->again = now;
		} else if (retry_ms && (c->status == 0 || c->status == 409 ||
					c->status >= 500)) {
			c->state = CALL_WAIT;
			c->again = now + (uint64_t)retry_ms;
		}
		ended++;
	}
	return ended;
}

/* Remove and free every handle of m still running. */
static void many_abort(CURLM *m, struct call *calls, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (calls[i].h) {
			curl_multi_remove_handle(m, calls[i].h);
			curl_easy_cleanup(calls[i].h);
			calls[i].h = NULL;
		}
		curl_slist_free_all(calls[i].hdrs);
		calls[i].hdrs = NULL;
	}
}

/* Start the requests due at now, PEER_PARALLEL running at most. */
static void many_start(struct peer *p, CURLM *m, struct peer_req *r,
		       struct call *calls, size_t n, size_t *running,
		       uint64_t now, uint64_t deadline)
{
	size_t i;

	for (i = 0; i < n && *running < PEER_PARALLEL; i++) {
		if (calls[i].state != CALL_WAIT || calls[i].again > now)
			continue;
		calls[i].state = CALL_DONE;
		if (many_add(p, m, &r[i], &calls[i], (long)(deadline - now)) ==
		    0) {
			calls[i].state = CALL_RUN;
			(*running)++;
		}
	}
}

/* 1 while a request runs or waits to be sent again. */
static int many_left(const struct call *calls, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (calls[i].state != CALL_DONE)
			return 1;
	return 0;
}

size_t peer_run(struct peer *p, struct peer_req *r, size_t n, size_t want,
		long timeout_ms, long retry_ms)
{
	struct call *calls = calloc(n ? n : 1, sizeof(*calls));
	CURLM *m = curl_multi_init();
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms, now;
	size_t i, running = 0, ok = 0;
	int still;

	for (i = 0; i < n; i++)
		r[i].status = 0;
	if (!calls || !m)
		goto out;
	while ((now = mono_ms()) < deadline && many_left(calls, n)) {
		many_start(p, m, r, calls, n, &running, now, deadline);
		if (curl_multi_perform(m, &still) != CURLM_OK)
			break;
		running -= many_reap(m, r, calls, &ok, now, retry_ms);
		if (want && ok >= want)
			break;
		/* 10 ms at most: a request may be due to be sent again */
		if (curl_multi_poll(m, NULL, 0, running ? 10 : 1, NULL))
			break;
	}
out:
	if (m) {
		many_abort(m, calls, n);
		curl_multi_cleanup(m);
	}
	free(calls);
	return ok;
}

/* --- a ranges answer ------------------------------------------------------ */

enum rx_state { RX_DELIM, RX_HEAD, RX_DATA, RX_DONE };

/* A ranges answer being parsed. */
struct rx {
	struct peer *p;
	peer_put_fn put;
	void *ctx;
	/* from the answer's headers */
	long status;
	int multipart;
	char boundary[80];
	int ranged;	/* one range: its Content-Range */
	uint64_t at;	/* ... begins there */
	uint64_t pos;	/* body bytes so far, outside a multipart */
	uint64_t wrote; /* bytes put */
	enum rx_state st;
	char line[PEER_LINE_MAX];
	size_t ll;
	uint64_t off, left; /* the current part's data */
	int has_part_range;
	int failed;
};

/* "bytes A-B/..." of a Content-Range value: 0 with *off, *len, or -1. */
static int content_range(const char *v, uint64_t *off, uint64_t *len)
{
	unsigned long long a, b;
	char *e;

	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, "bytes ", 6) != 0)
		return -1;
	v += 6;
	a = strtoull(v, &e, 10);
	if (e == v || *e != '-')
		return -1;
	v = e + 1;
	b = strtoull(v, &e, 10);
	if (e == v || *e != '/' || b < a)
		return -1;
	*off = a;
	*len = b - a + 1;
	return 0;
}

/* The boundary parameter of a multipart/byteranges Content-Type. */
static int boundary_of(const char *v, char *out, size_t cap)
{
	const char *b = strcasestr(v, "boundary=");
	size_t n;

	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, "multipart/byteranges", 20) != 0 || !b)
		return -1;
	b += 9;
	if (*b == '"')
		b++;
	n = strcspn(b, "\";\r\n ");
	if (!n || n >= cap)
		return -1;
	memcpy(out, b, n);
	out[n] = '\0';
	return 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *cls)
{
	struct rx *x = cls;
	size_t len = size * nmemb;
	char line[PEER_LINE_MAX];
	uint64_t n;

	if (len >= sizeof(line))
		return len; /* no header of ours is that long */
	memcpy(line, data, len);
	line[len] = '\0';
	if (!strncmp(line, "HTTP/", 5)) { /* a new answer: forget the last */
		x->multipart = 0;
		x->ranged = 0;
	} else if (!strncasecmp(line, "Content-Type:", 13)) {
		x->multipart = boundary_of(line + 13, x->boundary,
					   sizeof(x->boundary)) == 0;
	} else if (!strncasecmp(line, "Content-Range:", 14)) {
		x->ranged = content_range(line + 14, &x->at, &n) == 0;
	}
	return len;
}

static int rx_put(struct rx *x, uint64_t off, const char *data, size_t len)
{
	x->wrote += len;
	return x->put(x->ctx, off, data, len);
}

/* One whole line of a multipart body (CR LF or LF stripped). */
static int rx_line(struct rx *x)
{
	char *l = x->line;
	size_t bl = strlen(x->boundary);

	if (x->st == RX_DELIM) {
		if (l[0] == '-' && l[1] == '-' &&
		    !strncmp(l + 2, x->boundary, bl))
			x->st = !strcmp(l + 2 + bl, "--") ? RX_DONE : RX_HEAD;
		x->has_part_range = 0;
		return 0; /* the CR LF before a delimiter, or a preamble */
	}
	if (l[0]) { /* RX_HEAD: a header line of the part */
		if (!strncasecmp(l, "Content-Range:", 14))
			x->has_part_range =
			    content_range(l + 14, &x->off, &x->left) == 0;
		return 0;
	}
	if (!x->has_part_range)
		return -1; /* a part we cannot place */
	x->st = RX_DATA;
	return 0;
}

/* Feed len bytes of a multipart body. */
static int rx_multipart(struct rx *x, const char *data, size_t len)
{
	size_t k;

	while (len) {
		if (x->st == RX_DONE)
			return 0; /* the epilogue */
		if (x->st == RX_DATA) {
			k = x->left < len ? (size_t)x->left : len;
			if (rx_put(x, x->off, data, k))
				return -1;
			x->off += k;
			x->left -= k;
			data += k;
			len -= k;
			if (!x->left)
				x->st = RX_DELIM;
			continue;
		}
		if (*data == '\n') {
			if (x->ll && x->line[x->ll - 1] == '\r')
				x->ll--;
			x->line[x->ll] = '\0';
			x->ll = 0;
			if (rx_line(x))
				return -1;
		} else if (x->ll + 1 < sizeof(x->line)) {
			x->line[x->ll++] = *data;
		} else {
			return -1;
		}
		data++;
		len--;
	}
	return 0;
}

static int rx_sink(void *ctx, const char *data, size_t len)
{
	struct rx *x = ctx;
	uint64_t at;

	if (!x->status)
		curl_easy_getinfo(x->p->curl, CURLINFO_RESPONSE_CODE,
				  &x->status);
	if (x->status != 200 && x->status != 206)
		return 0; /* an error's body: read and dropped */
	if (x->status == 206 && x->multipart)
		return rx_multipart(x, data, len);
	if (x->status == 206 && !x->ranged)
		return -1;
	at = (x->status == 206 ? x->at : 0) + x->pos;
	x->pos += len;
	return rx_put(x, at, data, len);
}

/* "Range: bytes=a-b,c-d,..." of the n ranges; malloc'd, or NULL. */
static char *range_header(const struct peer_range *r, size_t n)
{
	size_t cap = 16 + n * 42, len, i;
	char *h = malloc(cap);

	if (!h)
		return NULL;
	len = (size_t)snprintf(h, cap, "Range: bytes=");
	for (i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(
		    h + len, cap - len, "%s%llu-%llu", i ? "," : "",
		    (unsigned long long)r[i].off,
		    (unsigned long long)(r[i].off + r[i].len - 1));
	return h;
}

int peer_get_ranges(struct peer *p, const char *base, const char *path,
		    const struct peer_range *r, size_t n, peer_put_fn put,
		    void *ctx)
{
	struct rx x;
	struct call c = {.p = p,
			 .sink = rx_sink,
			 .ctx = &x,
			 .hdr = on_header,
			 .hdr_ctx = &x};
	uint64_t want = 0;
	char *h;
	long st;
	size_t i;

	if (!n || n > PEER_MAX_RANGES)
		return -1;
	memset(&x, 0, sizeof(x));
	x.p = p;
	x.put = put;
	x.ctx = ctx;
	for (i = 0; i < n; i++)
		want += r[i].len;
	h = range_header(r, n);
	if (!h)
		return -1;
	st = request(&c, base, path, h);
	free(h);
	if (st == 206 && x.multipart && x.st != RX_DONE)
		return -1; /* cut short */
	return (st == 200 || st == 206) && x.wrote >= want ? 0 : -1;
}
