/*
 * api.c - the libmicrohttpd side of the api: per-request state, token,
 * route matching, incremental bodies, the store error table, answers and
 * the request log, and the counters of GET /metrics (atomics, updated as
 * each request completes). The routes themselves are in routes.c.
 *
 * Before any route is looked for, a request's framing is checked as RFC
 * 9112 section 6 wants it behind a proxy (framing_check): one
 * Content-Length at most, a plain decimal, never with Transfer-Encoding;
 * Transfer-Encoding only "chunked". Anything else is answered at once
 * with 400 invalid_framing or 501 unsupported_transfer_coding and
 * "Connection: close", the body unread. And a path is matched whole: one
 * whose raw form decodes to a NUL or any byte outside printable ASCII
 * (api_uri_log sees it before libmicrohttpd decodes it) matches no route.
 */
#include "api.h"
#include "api_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* --- the one table from store errors to statuses --------------------------
 */

static const unsigned int status_of[STORE_ERR_COUNT] = {
    [STORE_OK] = MHD_HTTP_OK,
    [STORE_EINVAL] = MHD_HTTP_BAD_REQUEST,
    [STORE_ENOMODULE] = MHD_HTTP_NOT_FOUND,
    [STORE_ENOSESSION] = MHD_HTTP_NOT_FOUND,
    [STORE_ENOCOMMIT] = MHD_HTTP_NOT_FOUND,
    [STORE_ENOBYTECODE] = MHD_HTTP_NOT_FOUND,
    [STORE_ETOOBIG] = MHD_HTTP_CONTENT_TOO_LARGE,
    [STORE_ERANGE] = MHD_HTTP_RANGE_NOT_SATISFIABLE,
    [STORE_EBUSY] = MHD_HTTP_SERVICE_UNAVAILABLE,
    [STORE_EMISMATCH] = MHD_HTTP_PRECONDITION_FAILED,
    [STORE_ENOSPC] = MHD_HTTP_INSUFFICIENT_STORAGE,
    [STORE_ENOMEM] = MHD_HTTP_INTERNAL_SERVER_ERROR,
    [STORE_EIO] = MHD_HTTP_INTERNAL_SERVER_ERROR,
    [STORE_ECORRUPT] = MHD_HTTP_INTERNAL_SERVER_ERROR,
    [STORE_ELOCKED] = MHD_HTTP_INTERNAL_SERVER_ERROR,
};

unsigned int api_status_of(enum store_err err)
{
	if ((unsigned int)err >= STORE_ERR_COUNT || !status_of[err])
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	return status_of[err];
}

/* --- metrics ------------------------------------------------------------- */

const unsigned int api_statuses[API_NSTATUS] = {
    200, 201, 204, 206, 400, 401, 404, 405, 412,
    413, 416, 500, 503, 507, 304, 408, 429, 501,
};

const double api_buckets[API_NBUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,	   1,	  2.5,	5,     10,
};

uint64_t api_elapsed_ns(const struct timespec *start)
{
	struct timespec now;
	int64_t ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (int64_t)(now.tv_sec - start->tv_sec) * 1000000000 +
	     (now.tv_nsec - start->tv_nsec);
	return ns > 0 ? (uint64_t)ns : 0;
}

void api_hist_observe(struct api_hist *h, uint64_t ns)
{
	double sec = (double)ns / 1e9;
	size_t i;

	for (i = 0; i < API_NBUCKETS && sec > api_buckets[i]; i++)
		;
	atomic_fetch_add(&h->bucket[i], 1);
	atomic_fetch_add(&h->sum_ns, ns);
	atomic_fetch_add(&h->count, 1);
}

static size_t status_index(unsigned int status)
{
	size_t i;

	for (i = 0; i < API_NSTATUS; i++)
		if (api_statuses[i] == status)
			return i;
	return API_NSTATUS;
}

static void metrics_count(struct api_request *r)
{
	struct api_metrics *m = &r->api->m;
	size_t route = API_MAX_ROUTES;

	if (r->route)
		route = (size_t)(r->route - api_routes);
	atomic_fetch_add(&m->requests[route][status_index(r->status)], 1);
	api_hist_observe(&m->request_seconds, api_elapsed_ns(&r->start));
	atomic_fetch_add(&m->bytes_received, r->bytes_in);
	atomic_fetch_add(&m->bytes_sent, r->bytes_out);
}

size_t api_route_count(void)
{
	return api_nroutes;
}

void api_route_at(size_t i, const char **method, const char **pattern)
{
	*method = i < api_nroutes ? api_routes[i].method : NULL;
	*pattern = i < api_nroutes ? api_routes[i].pattern : NULL;
}

/* --- the api -------------------------------------------------------------- */

struct api *api_new(const struct api_options *opts)
{
	struct api *api = calloc(1, sizeof(*api));

	if (!api)
		return NULL;
	api->o = *opts;
	api->o.token = NULL;
	api->o.read_token = NULL;
	if (opts->token) {
		api->has_token = 1;
		crypto_generichash(api->token_hash, sizeof(api->token_hash),
				   (const unsigned char *)opts->token,
				   strlen(opts->token), NULL, 0);
	}
	if (opts->token && opts->read_token) {
		api->has_read_token = 1;
		crypto_generichash(api->read_token_hash,
				   sizeof(api->read_token_hash),
				   (const unsigned char *)opts->read_token,
				   strlen(opts->read_token), NULL, 0);
	}
	atomic_init(&api->inflight, 0);
	atomic_init(&api->closing, 0);
	return api;
}

void api_free(struct api *api)
{
	if (!api)
		return;
	sodium_memzero(api->token_hash, sizeof(api->token_hash));
	sodium_memzero(api->read_token_hash, sizeof(api->read_token_hash));
	free(api);
}

void api_begin_shutdown(struct api *api)
{
	atomic_store(&api->closing, 1);
}

unsigned int api_wait_idle(struct api *api, unsigned int timeout_ms)
{
	unsigned int waited = 0, n;

	while ((n = atomic_load(&api->inflight)) && waited < timeout_ms) {
		usleep(10 * 1000);
		waited += 10;
	}
	return n;
}

/* --- errors and answers --------------------------------------------------- */

void api_fail(struct api_request *r, unsigned int status, const char *code,
	      const char *fmt, ...)
{
	unsigned char *p;
	va_list ap;

	if (r->err_status)
		return;
	r->err_status = status;
	r->err_code = code;
	va_start(ap, fmt);
	vsnprintf(r->err_msg, sizeof(r->err_msg), fmt, ap);
	va_end(ap);
	/*
	 * The message may quote the request (a JSON parser's error names the
	 * bad bytes): keep it printable ASCII, which any JSON string holds.
	 */
	for (p = (unsigned char *)r->err_msg; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			*p = '?';
}

void api_fail_member(struct api_request *r, const char *name, json_t *value)
{
	if (!value)
		return;
	if (!r->err_extra)
		r->err_extra = json_object();
	if (!r->err_extra || json_object_set_new(r->err_extra, name, value))
		json_decref(value);
}

void api_fail_store(struct api_request *r, enum store_err err, const char *what)
{
	api_fail(r, api_status_of(err), store_errname(err), "%s: %s", what,
		 store_strerror(err));
}

static void add_header(struct MHD_Response *resp, const char *name,
		       const char *value)
{
	/* MHD_NO only when out of memory: the answer goes without it. */
	(void)MHD_add_response_header(resp, name, value);
}

/*
 * 1 when an If-None-Match list names etag: "*", or one of its entity tags
 * ("X" or W/"X", weak comparison, the hex digits in either case).
 */
static int etag_listed(const char *list, const char *etag)
{
	size_t n = strlen(etag);
	const char *p = list, *end;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		if (*p == '*')
			return 1;
		if (!strncmp(p, "W/", 2))
			p += 2;
		end = p;
		if (*end == '"') {
			end = strchr(p + 1, '"');
			end = end ? end + 1 : p + strlen(p);
		} else {
			end = p + strcspn(p, ", \t");
		}
		if ((size_t)(end - p) == n && strncasecmp(p, etag, n) == 0)
			return 1;
		p = end;
	}
	return 0;
}

/*
 * A GET or HEAD whose answer (200 or 206) carries an ETag that the
 * request's If-None-Match names is answered 304, without a body, with the
 * ETag: one place, so that every route with an ETag honours it.
 */
static struct MHD_Response *not_modified(struct api_request *r,
					 unsigned int *status,
					 struct MHD_Response *resp,
					 uint64_t *bytes)
{
	struct MHD_Response *nm;
	const char *inm, *etag;

	if ((*status != MHD_HTTP_OK && *status != MHD_HTTP_PARTIAL_CONTENT) ||
	    (strcmp(r->method, MHD_HTTP_METHOD_GET) != 0 &&
	     strcmp(r->method, MHD_HTTP_METHOD_HEAD) != 0))
		return resp;
	etag = MHD_get_response_header(resp, MHD_HTTP_HEADER_ETAG);
	if (!etag)
		return resp;
	inm = api_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (!inm || !etag_listed(inm, etag))
		return resp;
	nm = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!nm)
		return resp; /* out of memory: the full answer is right too */
	add_header(nm, MHD_HTTP_HEADER_ETAG, etag);
	MHD_destroy_response(resp);
	*status = MHD_HTTP_NOT_MODIFIED;
	*bytes = 0;
	return nm;
}

enum MHD_Result api_reply(struct api_request *r, unsigned int status,
			  struct MHD_Response *resp, uint64_t bytes)
{
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	resp = not_modified(r, &status, resp, &bytes);
	if (r->close || atomic_load(&r->api->closing))
		add_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	api_cluster_headers(r, resp);
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	if (ret == MHD_YES) {
		r->answered = 1;
		r->status = status;
		r->bytes_out = bytes;
	}
	return ret;
}

/* A JSON body: compact, with a final newline for terminals. */
static char *json_body(json_t *j, size_t *len)
{
	char *s = json_dumps(j, JSON_COMPACT);
	char *t;
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s);
	t = realloc(s, n + 2);
	if (!t) {
		free(s);
		return NULL;
	}
	t[n] = '\n';
	t[n + 1] = '\0';
	*len = n + 1;
	return t;
}

static struct MHD_Response *json_response(json_t *j, size_t *len)
{
	struct MHD_Response *resp = NULL;
	char *body = json_body(j, len);

	if (!body)
		goto out;
	resp = MHD_create_response_from_buffer_with_free_callback(*len, body,
								  free);
	if (!resp) {
		free(body);
		goto out;
	}
	add_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
out:
	return resp;
}

/* The last resort when even an error body cannot be built. */
static enum MHD_Result reply_static_error(struct api_request *r)
{
	static char body[] = "{\"error\":\"out_of_memory\","
			     "\"message\":\"out of memory\"}\n";
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(sizeof(body) - 1, body,
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	add_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return api_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, resp,
			 sizeof(body) - 1);
}

enum MHD_Result api_reply_error(struct api_request *r)
{
	struct MHD_Response *resp = NULL;
	json_t *j;
	size_t len = 0;
	char buf[64];

	if (!r->err_status)
		api_fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
			 "no answer");
	j = json_pack("{s:s, s:s}", "error", r->err_code, "message",
		      r->err_msg);
	if (j && r->err_extra)
		json_object_update_missing(j, r->err_extra);
	if (j)
		resp = json_response(j, &len);
	json_decref(j);
	if (!resp)
		return reply_static_error(r);
	switch (r->err_status) {
	case MHD_HTTP_UNAUTHORIZED:
		add_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
		break;
	case MHD_HTTP_FORBIDDEN:
		add_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			   "Bearer error=\"insufficient_scope\"");
		break;
	case MHD_HTTP_METHOD_NOT_ALLOWED:
		add_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
		break;
	case MHD_HTTP_SERVICE_UNAVAILABLE:
		add_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
		break;
	case MHD_HTTP_RANGE_NOT_SATISFIABLE:
		if (r->has_range_size) {
			snprintf(buf, sizeof(buf), "bytes */%llu",
				 (unsigned long long)r->range_size);
			add_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, buf);
		}
		break;
	default:
		break;
	}
	return api_reply(r, r->err_status, resp, len);
}

enum MHD_Result api_reply_json(struct api_request *r, unsigned int status,
			       json_t *j)
{
	return api_reply_json_hdr(r, status, j, NULL, NULL);
}

enum MHD_Result api_reply_json_hdr(struct api_request *r, unsigned int status,
				   json_t *j, const char *name,
				   const char *value)
{
	struct MHD_Response *resp;
	size_t len = 0;

	if (!j) {
		api_fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
			 store_errname(STORE_ENOMEM), "out of memory");
		return api_reply_error(r);
	}
	resp = json_response(j, &len);
	json_decref(j);
	if (!resp)
		return reply_static_error(r);
	if (name)
		add_header(resp, name, value);
	return api_reply(r, status, resp, len);
}

enum MHD_Result api_reply_json_text(struct api_request *r, unsigned int status,
				    char *body, size_t len)
{
	struct MHD_Response *resp;

	if (!body) {
		api_fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
			 store_errname(STORE_ENOMEM), "out of memory");
		return api_reply_error(r);
	}
	resp =
	    MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (!resp) {
		free(body);
		return reply_static_error(r);
	}
	add_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return api_reply(r, status, resp, len);
}

enum MHD_Result api_reply_empty(struct api_request *r, unsigned int status)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return reply_static_error(r);
	return api_reply(r, status, resp, 0);
}

/* --- small parsers -------------------------------------------------------- */

static unsigned int hexval(unsigned char c)
{
	return c <= '9' ? (unsigned int)(c - '0')
			: (unsigned int)((c | 0x20) - 'a' + 10);
}

int api_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!s || !len || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned int d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned int)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int api_query_u64(struct api_request *r, const char *name, uint64_t *out,
		  int *present)
{
	const char *v;
	size_t vlen = 0;

	*present = 0;
	*out = 0;
	if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name,
					  strlen(name), &v, &vlen) != MHD_YES)
		return 0;
	*present = 1;
	if (!v)
		return -1;
	/* the decoded length: "5%00x" is not 5 */
	return api_parse_u64(v, vlen, out);
}

const char *api_header(struct api_request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

json_t *api_json_id(const struct store_id *id)
{
	char hex[STORE_HEX_LEN + 1];

	store_id_hex(id, hex);
	return json_stringn(hex, STORE_HEX_LEN);
}

json_t *api_json_id_or_null(int has, const struct store_id *id)
{
	return has ? api_json_id(id) : json_null();
}

/* --- the log -------------------------------------------------------------- */

static void log_time(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	if (!gmtime_r(&ts.tv_sec, &tm) ||
	    !strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, size, "-");
		return;
	}
	snprintf(buf, size, "%s.%03ldZ", sec, ts.tv_nsec / 1000000);
}

void api_log_message(enum api_log_format fmt, const char *level,
		     const char *msg)
{
	char when[48];
	json_t *j;
	char *s;

	if (fmt == API_LOG_NONE)
		return;
	log_time(when, sizeof(when));
	if (fmt == API_LOG_TEXT) {
		fprintf(stderr, "%s %s %s\n", when, level, msg);
		return;
	}
	j = json_pack("{s:s, s:s, s:s}", "time", when, "level", level, "msg",
		      msg);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (s)
		fprintf(stderr, "%s\n", s);
	free(s);
	json_decref(j);
}

static double elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static void log_request(const struct api_request *r,
			enum MHD_RequestTerminationCode toe)
{
	enum api_log_format fmt = r->api->o.log_format;
	const char *how = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK
			      ? ""
			      : " (connection closed early)";
	char when[48];
	double ms = elapsed_ms(&r->start);
	json_t *j;
	char *s;

	if (fmt == API_LOG_NONE)
		return;
	log_time(when, sizeof(when));
	if (fmt == API_LOG_TEXT) {
		fprintf(stderr, "%s %s %s %u %llu %.3fms%s\n", when, r->method,
			r->path ? r->path : "-", r->status,
			(unsigned long long)r->bytes_out, ms, how);
		return;
	}
	j = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I}", "time", when, "method",
		      r->method, "path", r->path ? r->path : "-", "status",
		      (int)r->status, "bytes", (json_int_t)r->bytes_out,
		      "bytes_in", (json_int_t)r->bytes_in);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	/* ms with three decimals, as the text log: not %.17g's 0.0899940...5 */
	if (s && *s)
		fprintf(stderr, "%.*s,\"ms\":%.3f,\"complete\":%s}\n",
			(int)strlen(s) - 1, s, ms,
			toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "true"
								   : "false");
	free(s);
	json_decref(j);
}

/* --- requests ------------------------------------------------------------- */

static void request_free(struct api_request *r)
{
	if (!r)
		return;
	free(r->path);
	free(r->buf);
	if (r->buffered)
		atomic_fetch_sub(&r->api->buffered, r->buffered);
	free(r->location);
	json_decref(r->err_extra);
	store_upload_free(r->upload);
	free(r);
}

void api_request_completed(void *cls, struct MHD_Connection *conn,
			   void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct api *api = cls;
	struct api_request *r = *req_cls;

	(void)conn;
	if (!r)
		return;
	/*
	 * A request the handler never saw (libmicrohttpd answered it, or
	 * the client left during its headers) is neither logged nor
	 * counted, as before api_uri_log made its state early.
	 */
	if (r->started) {
		log_request(r, toe);
		metrics_count(r);
		atomic_fetch_sub(&api->inflight, 1);
	}
	request_free(r);
	*req_cls = NULL;
}

enum api_access {
	ACCESS_NONE = 0, /* no token, or a wrong one */
	ACCESS_READ,	 /* the read token: GET and HEAD */
	ACCESS_ALL,	 /* the token */
};

/*
 * What the request's bearer token allows. The token is hashed and the hash
 * compared with both in constant time, each comparison always made.
 */
static enum api_access token_access(struct api_request *r)
{
	unsigned char h[crypto_generichash_BYTES];
	const char *v = api_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
	int all, read;

	if (!v || strncasecmp(v, "Bearer ", 7) != 0)
		return ACCESS_NONE;
	v += 7;
	while (*v == ' ')
		v++;
	crypto_generichash(h, sizeof(h), (const unsigned char *)v, strlen(v),
			   NULL, 0);
	all = sodium_memcmp(h, r->api->token_hash, sizeof(h)) == 0;
	read = sodium_memcmp(h, r->api->read_token_hash, sizeof(h)) == 0 &&
	       r->api->has_read_token;
	sodium_memzero(h, sizeof(h));
	return all ? ACCESS_ALL : read ? ACCESS_READ : ACCESS_NONE;
}

/* The token check of request_begin: 0, or -1 after api_fail(). */
static int access_check(struct api_request *r, int found)
{
	enum api_access a;

	if (!r->api->has_token ||
	    (found == 0 && (r->route->flags & API_ROUTE_PUBLIC)))
		return found;
	a = token_access(r);
	if (a == ACCESS_NONE) {
		/* before anything else is looked at: no route listing */
		r->err_status = 0;
		api_fail(r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
			 "this server needs Authorization: Bearer <token>");
		return -1;
	}
	if (a == ACCESS_READ && strcmp(r->method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(r->method, MHD_HTTP_METHOD_HEAD) != 0) {
		r->err_status = 0;
		api_fail(r, MHD_HTTP_FORBIDDEN, "forbidden",
			 "the read token allows GET and HEAD only, not %s",
			 r->method);
		return -1;
	}
	return found;
}

/*
 * Match path against pattern segment by segment; the {x} segments are ids,
 * whose text goes to seg[] (at most API_MAX_PARAMS). 1 on a match.
 */
static int path_match(const char *pattern, const char *path, const char *seg[],
		      size_t seglen[], size_t *nseg)
{
	const char *p = pattern, *u = path;

	*nseg = 0;
	while (*p && *u) {
		const char *pe, *ue;

		if (*p != '/' || *u != '/')
			return 0;
		p++;
		u++;
		pe = strchrnul(p, '/');
		ue = strchrnul(u, '/');
		if (*p == '{') {
			if (ue == u || *nseg >= API_MAX_PARAMS)
				return 0;
			seg[*nseg] = u;
			seglen[*nseg] = (size_t)(ue - u);
			(*nseg)++;
		} else if ((size_t)(pe - p) != (size_t)(ue - u) ||
			   memcmp(p, u, (size_t)(pe - p)) != 0) {
			return 0;
		}
		p = pe;
		u = ue;
	}
	return !*p && !*u;
}

static int method_is(const char *method, const char *want)
{
	if (strcmp(method, want) == 0)
		return 1;
	/* HEAD is GET without the body; libmicrohttpd drops the body. */
	return strcmp(method, MHD_HTTP_METHOD_HEAD) == 0 &&
	       strcmp(want, MHD_HTTP_METHOD_GET) == 0;
}

static void allow_add(char *allow, size_t size, const char *method)
{
	size_t n = strlen(allow);

	if (strstr(allow, method))
		return;
	snprintf(allow + n, size - n, "%s%s", n ? ", " : "", method);
}

/* Position of API_TEXT_PARAM among the {x} segments of pattern, or -1. */
static long text_param_at(const char *pattern)
{
	const char *p = pattern;
	long k = 0;

	for (; (p = strchr(p, '{')); p++, k++)
		if (!strncmp(p, API_TEXT_PARAM, strlen(API_TEXT_PARAM)))
			return k;
	return -1;
}

/*
 * Keep the text of the API_TEXT_PARAM segment for the handler: a decimal
 * number without its leading zeros ("007" is 7), anything else as it is.
 */
static void text_param_set(struct api_request *r, const char *seg, size_t len)
{
	size_t i, n;

	r->param_digits = len > 0;
	for (i = 0; i < len; i++)
		if (seg[i] < '0' || seg[i] > '9')
			r->param_digits = 0;
	while (r->param_digits && len > 1 && *seg == '0') {
		seg++;
		len--;
	}
	n = len < sizeof(r->param) - 1 ? len : sizeof(r->param) - 1;
	memcpy(r->param, seg, n);
	r->param[n] = '\0';
	r->param_len = len;
}

/*
 * Find the route of the request: r->route, r->ids; or an error recorded
 * (404 not_found, 405 method_not_allowed with r->allow, 400 invalid_id).
 */
static int route_find(struct api_request *r, const char *url)
{
	const char *seg[API_MAX_PARAMS], *match_seg[API_MAX_PARAMS];
	size_t seglen[API_MAX_PARAMS], match_len[API_MAX_PARAMS];
	size_t i, k, nseg, match_n = 0;
	int path_known = 0;

	if (r->bad_path) {
		api_fail(r, MHD_HTTP_NOT_FOUND, "not_found",
			 "no route: the path holds a byte outside printable "
			 "ASCII");
		return -1;
	}
	for (i = 0; i < api_nroutes; i++) {
		const struct api_route *rt = &api_routes[i];

		if (!path_match(rt->pattern, url, seg, seglen, &nseg))
			continue;
		path_known = 1;
		allow_add(r->allow, sizeof(r->allow), rt->method);
		if (strcmp(rt->method, MHD_HTTP_METHOD_GET) == 0)
			allow_add(r->allow, sizeof(r->allow),
				  MHD_HTTP_METHOD_HEAD);
		if (!r->route && method_is(r->method, rt->method)) {
			r->route = rt;
			match_n = nseg;
			for (k = 0; k < nseg; k++) {
				match_seg[k] = seg[k];
				match_len[k] = seglen[k];
			}
		}
	}
	if (!path_known) {
		api_fail(r, MHD_HTTP_NOT_FOUND, "not_found", "no route %s",
			 url);
		return -1;
	}
	if (!r->route) {
		api_fail(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
			 "%s is not allowed here; allowed: %s", r->method,
			 r->allow);
		return -1;
	}
	for (k = 0; k < match_n; k++) {
		if ((long)k == text_param_at(r->route->pattern)) {
			text_param_set(r, match_seg[k], match_len[k]);
			continue;
		}
		if (store_id_parse(&r->ids[k], match_seg[k], match_len[k]) !=
		    STORE_OK) {
			api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_id",
				 "'%.*s' is not an id (64 hex digits)",
				 (int)(match_len[k] > 80 ? 80 : match_len[k]),
				 match_seg[k]);
			return -1;
		}
	}
	r->nids = match_n;
	return 0;
}

/* The limit on the body of this route. */
static uint64_t body_limit(const struct api_request *r)
{
	uint64_t max = r->api->o.max_body;

	if (r->route && r->route->body == API_BODY_JSON && max > API_JSON_MAX)
		max = API_JSON_MAX;
	if (r->route && r->route->body == API_BODY_BUFFER &&
	    max > API_BUFFER_MAX)
		max = API_BUFFER_MAX;
	return max;
}

/* Everything decided from the headers alone; -1 after api_fail(). */
static int request_begin(struct api_request *r, const char *url)
{
	const char *cl;
	uint64_t len;
	int found = route_find(r, url);

	/*
	 * Without the token, every answer but /health's is 401; with the
	 * read token, every method but GET and HEAD is 403.
	 */
	if (access_check(r, found) < 0 ||
	    (found == 0 && api_cluster_gate(r) < 0))
		return -1;
	cl = api_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && api_parse_u64(cl, strlen(cl), &len) == 0 &&
	    len > body_limit(r)) {
		api_fail(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
			 "body of %llu bytes; the limit is %llu",
			 (unsigned long long)len,
			 (unsigned long long)body_limit(r));
		return -1;
	}
	if (r->route->begin && r->route->begin(r) < 0)
		return -1;
	return 0;
}

/* A request's state from its first sight; NULL when out of memory. */
static struct api_request *request_new(struct api *api,
				       struct MHD_Connection *conn)
{
	struct api_request *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->api = api;
	r->conn = conn;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	snprintf(r->method, sizeof(r->method), "-"); /* until request_start */
	return r;
}

/* 1 when the raw path (up to '?') decodes to a byte outside 0x20-0x7e. */
static int raw_path_bad(const char *uri)
{
	const unsigned char *p = (const unsigned char *)uri;
	unsigned int c;

	for (; *p && *p != '?'; p++) {
		c = *p;
		if (c == '%' && isxdigit(p[1]) && isxdigit(p[2])) {
			c = (unsigned int)(hexval(p[1]) << 4 | hexval(p[2]));
			p += 2;
		}
		if (c < 0x20 || c > 0x7e)
			return 1;
	}
	return 0;
}

void *api_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct api_request *r = request_new(cls, conn);

	if (r && uri) {
		r->bad_path = raw_path_bad(uri);
		r->raw_len = strlen(uri);
		r->has_raw = 1;
	}
	return r;
}

/*
 * 1 when the request line held a raw NUL in its target, which cut the
 * string api_uri_log saw. libmicrohttpd 0.9.75 decodes the target in
 * place and its version follows the target and one space in the same
 * buffer: the target was raw_len bytes long unless a NUL hid the rest.
 */
static int raw_nul(const struct api_request *r, const char *url,
		   const char *version)
{
	uintptr_t u = (uintptr_t)url, v = (uintptr_t)version;

	return r->has_raw && url && version && *version && v > u &&
	       v - u != r->raw_len + 1;
}

/* The first call: what the handler learns with the headers. */
static void request_start(struct api_request *r, const char *url,
			  const char *method)
{
	r->started = 1;
	/* in flight from its headers on, as the drain at a stop counts */
	atomic_fetch_add(&r->api->inflight, 1);
	snprintf(r->method, sizeof(r->method), "%s", method);
	/* The log's copy: no control character can break a log line. */
	r->path = strdup(url);
	for (char *p = r->path; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	for (char *p = r->method; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/*
 * Count len more bytes of buffered bodies (API_BODY_BUFFER): all the
 * requests' together stay within API_BUFFERED_MAX. -1 after api_fail().
 */
static int buffer_take(struct api_request *r, size_t len)
{
	uint_least64_t had = atomic_fetch_add(&r->api->buffered, len);

	r->buffered += len;
	if (had + len <= API_BUFFERED_MAX)
		return 0;
	api_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, "too_busy",
		 "the bodies being received hold %llu bytes; try again",
		 (unsigned long long)API_BUFFERED_MAX);
	return -1;
}

/* Take one piece of the body. */
static void request_body(struct api_request *r, const char *data, size_t len)
{
	uint64_t limit = body_limit(r);
	size_t cap;
	char *b;

	if (r->err_status)
		return;
	r->bytes_in += len;
	if (r->bytes_in > limit) {
		api_fail(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
			 "body larger than the limit of %llu bytes",
			 (unsigned long long)limit);
		return;
	}
	switch (r->route->body) {
	case API_BODY_NONE:
		break;
	case API_BODY_STREAM:
		r->route->chunk(r, data, len);
		break;
	case API_BODY_JSON:
	case API_BODY_BUFFER:
		if (r->route->body == API_BODY_BUFFER &&
		    buffer_take(r, len) < 0)
			return;
		if (r->len + len + 1 > r->cap) {
			/* doubling: a body of many pieces is copied O(1) times
			 */
			cap = r->len + len + 1;
			if (cap < 2 * r->cap)
				cap = 2 * r->cap;
			if (cap < 256)
				cap = 256;
			b = realloc(r->buf, cap);
			if (!b) {
				api_fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
					 store_errname(STORE_ENOMEM),
					 "out of memory");
				return;
			}
			r->buf = b;
			r->cap = cap;
		}
		memcpy(r->buf + r->len, data, len);
		r->len += len;
		r->buf[r->len] = '\0';
		break;
	}
}

/* --- framing -------------------------------------------------------------- */

struct framing {
	int ncl, nte;	 /* Content-Length and Transfer-Encoding lines */
	const char *cl;	 /* the first Content-Length */
	char te[128];	 /* the Transfer-Encoding lines, joined by ", " */
	int te_overflow; /* more than te holds */
};

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind,
				      const char *key, const char *value)
{
	struct framing *f = cls;
	size_t n;

	(void)kind;
	if (!key)
		return MHD_YES;
	if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
		if (!f->ncl++)
			f->cl = value ? value : "";
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		n = strlen(f->te);
		if ((size_t)snprintf(f->te + n, sizeof(f->te) - n, "%s%s",
				     f->nte ? ", " : "",
				     value ? value : "") >= sizeof(f->te) - n)
			f->te_overflow = 1;
		f->nte++;
	}
	return MHD_YES;
}

/*
 * The codings of a Transfer-Encoding list: 0 when it is exactly "chunked",
 * 501 when chunked comes last after codings the api does not know, 400
 * otherwise (chunked missing, not last, or twice; an empty element).
 */
static unsigned int te_verdict(const char *te)
{
	const char *p = te, *e;
	size_t n;
	int nchunked = 0, nother = 0, last_chunked = 0;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strcspn(p, ",");
		n = (size_t)(e - p);
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (!n)
			return MHD_HTTP_BAD_REQUEST;
		last_chunked = n == 7 && !strncasecmp(p, "chunked", 7);
		if (last_chunked)
			nchunked++;
		else
			nother++;
		if (!*e)
			break;
		p = e + 1;
	}
	if (nchunked == 1 && last_chunked)
		return nother ? MHD_HTTP_NOT_IMPLEMENTED : 0;
	return MHD_HTTP_BAD_REQUEST;
}

/*
 * RFC 9112 section 6 framing of the request: 0, or -1 after api_fail()
 * (400 invalid_framing, 501 unsupported_transfer_coding, 413 for a length
 * beyond any limit), with r->close set: a proxy in front may not have
 * framed the body as we would, so no byte after the headers can be
 * trusted to start a request.
 */
static int framing_check(struct api_request *r, const char *version)
{
	struct framing f;
	unsigned int v;
	uint64_t len;
	size_t n;

	memset(&f, 0, sizeof(f));
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, framing_header, &f);
	if (!f.ncl && !f.nte)
		return 0;
	r->close = 1;
	if (f.ncl && f.nte) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_framing",
			 "Content-Length and Transfer-Encoding together");
		return -1;
	}
	if (f.ncl > 1) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_framing",
			 "%d Content-Length headers; one at most", f.ncl);
		return -1;
	}
	if (f.ncl) {
		n = strlen(f.cl);
		if (n && n == strspn(f.cl, "0123456789") &&
		    api_parse_u64(f.cl, n, &len) < 0) {
			api_fail(
			    r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
			    "Content-Length %.40s is beyond any limit", f.cl);
			return -1;
		}
		if (api_parse_u64(f.cl, n, &len) < 0) {
			api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_framing",
				 "Content-Length '%.40s' is not a decimal "
				 "number",
				 f.cl);
			return -1;
		}
		r->close = 0;
		return 0;
	}
	if (version && !strcmp(version, MHD_HTTP_VERSION_1_0)) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_framing",
			 "Transfer-Encoding in an HTTP/1.0 request");
		return -1;
	}
	v = f.te_overflow ? MHD_HTTP_BAD_REQUEST : te_verdict(f.te);
	if (v == MHD_HTTP_NOT_IMPLEMENTED) {
		api_fail(r, MHD_HTTP_NOT_IMPLEMENTED,
			 "unsupported_transfer_coding",
			 "Transfer-Encoding '%.60s': only chunked is "
			 "supported",
			 f.te);
		return -1;
	}
	if (v) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_framing",
			 "Transfer-Encoding '%.60s' must be chunked, once "
			 "and last",
			 f.te);
		return -1;
	}
	r->close = 0;
	return 0;
}

/* 1 when the request announces a body. */
static int has_body(struct api_request *r)
{
	const char *cl = api_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (api_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return 1;
	return cl && strcmp(cl, "0") != 0;
}

enum MHD_Result api_access_handler(void *cls, struct MHD_Connection *conn,
				   const char *url, const char *method,
				   const char *version, const char *upload_data,
				   size_t *upload_data_size, void **req_cls)
{
	struct api *api = cls;
	struct api_request *r = *req_cls;

	if (!r) /* no api_uri_log (a test harness) */
		r = *req_cls = request_new(api, conn);
	if (!r)
		return MHD_NO; /* out of memory: drop the connection */
	if (!r->started) {
		r->conn = conn;
		request_start(r, url, method);
		if (raw_nul(r, url, version))
			r->bad_path = 1;
		/* Broken framing: answered at once, and the connection ends. */
		if (framing_check(r, version) < 0)
			return api_reply_error(r);
		/*
		 * An error known from the headers is answered at once when
		 * a body follows (libmicrohttpd then reads none of it and
		 * closes the connection); otherwise on the next call, which
		 * keeps the connection alive.
		 */
		if (request_begin(r, url) < 0 && has_body(r))
			return api_reply_error(r);
		return MHD_YES;
	}
	r->conn = conn;
	if (*upload_data_size) {
		if (!r->answered)
			request_body(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;
	if (r->err_status)
		return api_reply_error(r);
	return r->route->handler(r);
}
