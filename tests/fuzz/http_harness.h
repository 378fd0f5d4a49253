/*
 * http_harness.h - what the HTTP fuzz targets share (fuzz_http, fuzz_range,
 * fuzz_json, fuzz_query): a real store, the api and a libmicrohttpd daemon
 * driven by the fuzzer's own thread, one connection per input.
 *
 * Included by each target (the Makefile links each fuzz_*.c alone), so
 * everything here is static.
 *
 * The store lives in a directory under /dev/shm (or /tmp) named after the
 * pid, as tests/fuzz/run expects: three modules (A: 1 page, B: 3 pages,
 * both filled with a known pattern and committed once as commit C, then U:
 * 2 pages of zeros deployed after C, so without a commit), the commits
 * store persisted, a maximum module size of 64 KiB and at most 4 sessions.
 * Before each input a fresh session S is opened on C. After each input
 * every session is dropped, and when the input changed the store (a new
 * module, a new commit, another root) the whole store is built again, so
 * that every input starts from the same state and a crash replays alone.
 *
 * The daemon has no listening socket and no thread of its own
 * (MHD_USE_NO_LISTEN_SOCKET, external select): each input is one end of a
 * socketpair given to MHD_add_connection(); the harness writes the request
 * bytes, runs MHD_run() and reads the answer until nothing moves for a few
 * rounds, then closes its end and runs the daemon until the connection is
 * gone. All of it deterministic, with no timing in it.
 *
 * The access handler and completion callback wrap the api's, and record
 * for every request what the api answered (api_internal.h); hh_check()
 * then parses the answer stream and checks it against those records:
 *  - it is a sequence of "HTTP/1.1 NNN ..." answers, one per request the
 *    api answered, in order, with the status the api queued, each body
 *    complete (Content-Length; no body for HEAD);
 *  - an error (>= 400) of the api is application/json, a JSON object
 *    with string "error" and "message" and nothing else (412 also
 *    "root"); 401 has
 *    WWW-Authenticate, 405 Allow, 503 Retry-After, a 416 of a memory
 *    route Content-Range: bytes * / SIZE;
 *  - any JSON body parses and ends with a newline;
 *  - at most one more answer follows: an error of libmicrohttpd itself
 *    (malformed request, headers too large...), which is not JSON, and
 *    then the connection ends;
 *  - no request is left in flight, the connection closes.
 */
#ifndef HTTP_HARNESS_H
#define HTTP_HARNESS_H

#include "api.h"
#include "api_internal.h"
#include "fuzz_dir.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/sockios.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HH_PAGE	       STORE_PAGE_SIZE
#define HH_MAX_MODULE  (64 * 1024)
#define HH_MAX_SESSION 4U
#define HH_MAX_BODY    (256 * 1024)
#define HH_TOKEN       "fuzz-token"
#define HH_NMOD	       3 /* A, B (committed), U (never committed) */
#define HH_NREC	       4096
#define HH_IDLE_ROUNDS 4 /* rounds without progress: the exchange is over */
#define HH_MAX_ROUNDS  100000 /* more: the daemon hangs */
#define HH_MAX_OUT     ((size_t)64 * 1024 * 1024)

/* The api variants an input may pick: bit 0 token, bit 1 auto-persist. */
#define HH_NAPI 4

/* What the api did with one request, in the order they completed. */
struct hh_rec {
	int head;
	int answered;
	unsigned int status;
	int completed_ok;
	int has_range_size;
	uint64_t range_size;
	const struct api_route *route;
};

/* One parsed answer. */
struct hh_resp {
	unsigned int status;
	const char *hdr; /* the header lines, after the status line */
	size_t hdrlen;
	const unsigned char *body;
	size_t bodylen;
	int has_length;
	uint64_t length; /* Content-Length */
};

struct hh {
	const char *name; /* the target, for messages */
	const char *base_dir;
	char dir[128];
	unsigned long gen;
	struct store *store;
	struct api *apis[HH_NAPI];
	struct api *api; /* the one of this input */
	struct MHD_Daemon *d;

	/* The state every input starts from. */
	struct store_id mod[HH_NMOD];
	uint64_t size[HH_NMOD];
	int has_etag[HH_NMOD];
	char etag[HH_NMOD][STORE_HEX_LEN + 3]; /* "\"HEX\"" */
	struct store_id commit, root, sid;
	struct store_stats stats;

	struct hh_rec rec[HH_NREC];
	size_t nrec;
	int rec_overflow; /* more requests than that: not checked */
	unsigned char *out;
	size_t outlen, outcap;
	int closed_by_server;
	int trace; /* FUZZ_TRACE=1: print what each exchange did */
	/* called with each new request before the api sees it */
	void (*on_request)(struct MHD_Connection *conn);
};

static struct hh hh;

static const char *const hh_code[HH_NMOD] = {
    "(module $fuzz_a (memory 1))",
    "(module $fuzz_b (memory 3))",
    "(module $fuzz_u (memory 2))",
};
static const uint64_t hh_pages[HH_NMOD] = {1, 3, 2};

static void hh_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void hh_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", hh.name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (hh.outlen)
		fprintf(stderr, "%s: the answer (%zu bytes):\n%.*s\n", hh.name,
			hh.outlen, (int)(hh.outlen > 4096 ? 4096 : hh.outlen),
			(const char *)hh.out);
	abort();
}

static void hh_expect(enum store_err err, const char *what)
{
	if (err != STORE_OK)
		hh_die("setup: %s: %s", what, store_strerror(err));
}

/* Byte off of module m's memory in the state every input starts from. */
static unsigned char hh_byte(int m, uint64_t off)
{
	if (m == 0)
		return (unsigned char)(off * 7 + 1);
	if (m == 1)
		return (unsigned char)((off >> 8) * 31 + off * 13 + 5);
	return 0;
}

static void hh_hex(const struct store_id *id, char out[STORE_HEX_LEN + 1])
{
	store_id_hex(id, out);
}

/* --- the store ----------------------------------------------------------- */

static void hh_teardown_store(void)
{
	int i;

	for (i = 0; i < HH_NAPI; i++) {
		api_free(hh.apis[i]);
		hh.apis[i] = NULL;
	}
	hh.api = NULL;
	store_close(hh.store);
	hh.store = NULL;
	fuzz_remove_dir("http_harness", hh.dir);
}

static void hh_setup_store(void)
{
	static unsigned char buf[3 * HH_PAGE];
	struct store_options so;
	struct store_module_info info;
	struct store_session_info si;
	struct store_commit_info ci;
	struct api_options ao;
	char hex[STORE_HEX_LEN + 1];
	uint64_t k;
	int i, created;

	snprintf(hh.dir, sizeof(hh.dir), "%s/modstore-fuzz-%ld-%lu",
		 hh.base_dir, (long)getpid(), hh.gen++);
	memset(&so, 0, sizeof(so));
	so.dir = hh.dir;
	so.max_module_size = HH_MAX_MODULE;
	so.max_sessions = HH_MAX_SESSION;
	hh_expect(store_open(&hh.store, &so), "store_open");
	for (i = 0; i < 2; i++) {
		hh.size[i] = hh_pages[i] * HH_PAGE;
		hh_expect(store_deploy(hh.store, hh_code[i], strlen(hh_code[i]),
				       hh.size[i], &info, &created),
			  "store_deploy");
		hh.mod[i] = info.id;
	}
	hh_expect(store_session_begin(hh.store, NULL, &si), "begin");
	for (i = 0; i < 2; i++) {
		for (k = 0; k < hh.size[i]; k++)
			buf[k] = hh_byte(i, k);
		hh_expect(store_session_write(hh.store, &si.id, &hh.mod[i], 0,
					      buf, hh.size[i]),
			  "write");
	}
	hh_expect(store_session_commit(hh.store, &si.id, NULL, &ci), "commit");
	hh.commit = ci.id;
	store_commit_info_release(&ci);
	hh_expect(store_persist(hh.store), "persist");
	hh.size[2] = hh_pages[2] * HH_PAGE;
	hh_expect(store_deploy(hh.store, hh_code[2], strlen(hh_code[2]),
			       hh.size[2], &info, &created),
		  "store_deploy");
	hh.mod[2] = info.id;
	for (i = 0; i < HH_NMOD; i++) {
		hh_expect(store_module_get(hh.store, &hh.mod[i], &info),
			  "module_get");
		hh.has_etag[i] = info.has_commit;
		hh.etag[i][0] = '\0';
		if (info.has_commit) {
			hh_hex(&info.last_commit, hex);
			snprintf(hh.etag[i], sizeof(hh.etag[i]), "\"%s\"", hex);
		}
	}
	hh_expect(store_root(hh.store, &hh.root), "root");
	hh_expect(store_get_stats(hh.store, &hh.stats), "stats");
	for (i = 0; i < HH_NAPI; i++) {
		memset(&ao, 0, sizeof(ao));
		ao.store = hh.store;
		ao.max_module_size = HH_MAX_MODULE;
		ao.max_body = HH_MAX_BODY;
		ao.auto_persist = (i & 2) != 0;
		ao.token = (i & 1) ? HH_TOKEN : NULL;
		ao.log_format = API_LOG_NONE;
		hh.apis[i] = api_new(&ao);
		if (!hh.apis[i])
			hh_die("api_new failed");
	}
	hh.api = hh.apis[0];
}

/* --- the daemon ---------------------------------------------------------- */

static enum MHD_Result hh_access(void *cls, struct MHD_Connection *conn,
				 const char *url, const char *method,
				 const char *version, const char *upload_data,
				 size_t *upload_data_size, void **req_cls)
{
	(void)cls;
	if (!*req_cls && hh.on_request)
		hh.on_request(conn);
	return api_access_handler(hh.api, conn, url, method, version,
				  upload_data, upload_data_size, req_cls);
}

static void hh_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	const struct api_request *r = *req_cls;
	struct hh_rec *rec;

	(void)cls;
	if (r) {
		if (hh.nrec == HH_NREC) {
			hh.rec_overflow = 1; /* hh_check() gives up */
			goto out;
		}
		rec = &hh.rec[hh.nrec++];
		rec->head = strcmp(r->method, MHD_HTTP_METHOD_HEAD) == 0;
		rec->answered = r->answered;
		rec->status = r->status;
		rec->completed_ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
		rec->has_range_size = r->has_range_size;
		rec->range_size = r->range_size;
		rec->route = r->route;
	}
out:
	api_request_completed(hh.api, conn, req_cls, toe);
}

/* libmicrohttpd's own messages (MHD_USE_ERROR_LOG) are not wanted. */
static void hh_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)fmt;
	(void)ap;
}

/* At exit (libFuzzer's end of a run): no state directory left behind. */
static void hh_atexit(void)
{
	if (hh.d)
		MHD_stop_daemon(hh.d);
	hh.d = NULL;
	if (hh.store)
		hh_teardown_store();
	free(hh.out);
	hh.out = NULL;
}

static void hh_init(const char *name)
{
	const char *e;

	hh.name = name;
	e = getenv("FUZZ_TRACE");
	hh.trace = e && *e && strcmp(e, "0");
	if (sodium_init() < 0)
		hh_die("sodium_init failed");
	json_object_seed(1);
	signal(SIGPIPE, SIG_IGN);
	e = getenv("FUZZ_DIR");
	hh.base_dir = e && *e			      ? e
		      : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
						      : "/tmp";
	hh_setup_store();
	hh.d = MHD_start_daemon(
	    MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	    hh_access, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED, hh_completed, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, hh_mhd_log, NULL, MHD_OPTION_END);
	if (!hh.d)
		hh_die("MHD_start_daemon failed");
	atexit(hh_atexit);
}

/* Open the session S of this input on the api variant v. */
static void hh_begin(unsigned int v)
{
	struct store_session_info si;

	hh.api = hh.apis[v % HH_NAPI];
	hh_expect(store_session_begin(hh.store, &hh.commit, &si), "begin S");
	hh.sid = si.id;
}

/* After an input: drop every session; rebuild the store if it changed. */
static void hh_end(void)
{
	struct store_stats st;
	struct store_id root;
	size_t dropped;

	hh_expect(store_session_expire(hh.store, 0, &dropped), "expire");
	hh_expect(store_get_stats(hh.store, &st), "stats");
	hh_expect(store_root(hh.store, &root), "root");
	if (st.modules != hh.stats.modules || st.commits != hh.stats.commits ||
	    !store_id_equal(&root, &hh.root)) {
		hh_teardown_store();
		hh_setup_store();
	}
}

/* --- one exchange -------------------------------------------------------- */

static void hh_out_add(const void *p, size_t n)
{
	size_t cap;
	unsigned char *b;

	if (hh.outlen + n > hh.outcap) {
		cap = hh.outcap ? hh.outcap : 65536;
		while (cap < hh.outlen + n)
			cap *= 2;
		b = realloc(hh.out, cap);
		if (!b)
			hh_die("out of memory");
		hh.out = b;
		hh.outcap = cap;
	}
	memcpy(hh.out + hh.outlen, p, n);
	hh.outlen += n;
}

static unsigned int hh_connections(void)
{
	const union MHD_DaemonInfo *di =
	    MHD_get_daemon_info(hh.d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	if (!di)
		hh_die("MHD_get_daemon_info failed");
	return di->num_connections;
}

/* Send req on a new connection; the answer goes to hh.out. */
static void hh_exchange(const void *req, size_t len)
{
	static char buf[65536];
	struct sockaddr_in sin;
	const char *p = req;
	size_t sent = 0;
	int sv[2], idle = 0, eof = 0, rounds = 0, lastq = -1, q, progress;
	ssize_t n;

	hh.nrec = 0;
	hh.rec_overflow = 0;
	hh.outlen = 0;
	hh.closed_by_server = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		hh_die("socketpair: %s", strerror(errno));
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
		hh_die("fcntl: %s", strerror(errno));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (MHD_add_connection(hh.d, sv[1], (const struct sockaddr *)&sin,
			       sizeof(sin)) != MHD_YES)
		hh_die("MHD_add_connection failed");
	while (!eof && idle < HH_IDLE_ROUNDS) {
		progress = 0;
		if (sent < len) {
			n = send(sv[0], p + sent, len - sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0) {
				sent += (size_t)n;
				progress = 1;
			} else if (n < 0 && errno != EAGAIN &&
				   errno != EWOULDBLOCK && errno != EINTR) {
				sent = len; /* the daemon closed: stop */
			}
		}
		MHD_run(hh.d);
		for (;;) {
			n = recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT);
			if (n > 0) {
				if (hh.outlen + (size_t)n <= HH_MAX_OUT)
					hh_out_add(buf, (size_t)n);
				progress = 1;
				continue;
			}
			if (n == 0 ||
			    (errno != EAGAIN && errno != EWOULDBLOCK &&
			     errno != EINTR)) {
				eof = 1;
				hh.closed_by_server = 1;
			}
			break;
		}
		/* bytes of the request the daemon has not read yet */
		if (ioctl(sv[0], SIOCOUTQ, &q) < 0)
			q = 0;
		if (q != lastq)
			progress = 1;
		lastq = q;
		idle = progress ? 0 : idle + 1;
		if (++rounds > HH_MAX_ROUNDS)
			hh_die("the daemon never stops answering");
	}
	close(sv[0]);
	for (rounds = 0; hh_connections() > 0; rounds++) {
		if (rounds > 1000)
			hh_die("the connection is not closed after the client "
			       "left");
		MHD_run(hh.d);
	}
	if (api_wait_idle(hh.api, 0) != 0)
		hh_die("a request is still in flight after its connection "
		       "closed");
}

/* --- parsing and checking answers ---------------------------------------- */

/* The value of header name in r (first one), or NULL; *vlen its length. */
static const char *hh_header(const struct hh_resp *r, const char *name,
			     size_t *vlen)
{
	const char *p = r->hdr, *end = r->hdr + r->hdrlen, *eol, *v;
	size_t nl = strlen(name);

	while (p < end) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && p[nl] == ':' &&
		    strncasecmp(p, name, nl) == 0) {
			v = p + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			return v;
		}
		p = eol + 2;
	}
	return NULL;
}

/* 1 when header name is value exactly. */
static int hh_header_is(const struct hh_resp *r, const char *name,
			const char *value)
{
	size_t n = 0;
	const char *v = hh_header(r, name, &n);

	return v && n == strlen(value) && memcmp(v, value, n) == 0;
}

/* A decimal number of exactly n bytes. */
static int hh_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!n || n > 20)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * Parse the answer at *pos of hh.out: 1 and r, *pos past it; 0 at the end
 * of the stream; -1 when malformed or cut short. head: no body follows.
 */
static int hh_parse(size_t *pos, int head, struct hh_resp *r)
{
	const char *s, *eol, *hend, *v;
	size_t left = hh.outlen - *pos, vlen = 0;

	memset(r, 0, sizeof(*r));
	if (!left)
		return 0;
	s = (const char *)hh.out + *pos;
	if (left < 13 || memcmp(s, "HTTP/1.1 ", 9) != 0 || s[9] < '1' ||
	    s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' ||
	    s[11] > '9' || s[12] != ' ')
		return -1;
	r->status = (unsigned int)((s[9] - '0') * 100 + (s[10] - '0') * 10 +
				   (s[11] - '0'));
	eol = memmem(s, left, "\r\n", 2);
	hend = memmem(s, left, "\r\n\r\n", 4);
	if (!eol || !hend)
		return -1;
	r->hdr = eol + 2;
	r->hdrlen = hend >= r->hdr ? (size_t)(hend - r->hdr) : 0;
	s = hend + 4;
	left = hh.outlen - (size_t)((const unsigned char *)s - hh.out);
	if (hh_header(r, "Transfer-Encoding", &vlen))
		return -1; /* every answer of the api has a known length */
	v = hh_header(r, "Content-Length", &vlen);
	if (v) {
		if (hh_u64(v, vlen, &r->length) < 0)
			return -1;
		r->has_length = 1;
	}
	r->body = (const unsigned char *)s;
	if (head || r->status / 100 == 1 || r->status == 204 ||
	    r->status == 304) {
		r->bodylen = 0;
	} else if (r->has_length) {
		if (r->length > left)
			return -1;
		r->bodylen = (size_t)r->length;
	} else {
		r->bodylen = left; /* to the end of the connection */
	}
	*pos = (size_t)(r->body + r->bodylen - hh.out);
	return 1;
}

/*
 * A JSON error body: {"error": "...", "message": "..."} and nothing else
 * (a 412 also has "root").
 */
static void hh_check_error_body(const struct hh_resp *r)
{
	json_error_t jerr;
	json_t *j, *e, *m;
	size_t members = 2;

	j = json_loadb((const char *)r->body, r->bodylen, 0, &jerr);
	if (!j)
		hh_die("status %u: the body is not JSON: %s", r->status,
		       jerr.text);
	e = json_object_get(j, "error");
	m = json_object_get(j, "message");
	/* a 412 names the current root too (contract v1.1) */
	if (r->status == 412) {
		json_t *root = json_object_get(j, "root");

		if (!json_is_string(root) ||
		    json_string_length(root) != STORE_HEX_LEN)
			hh_die("412 without the current root");
		members = 3;
	}
	if (!json_is_object(j) || json_object_size(j) != members ||
	    !json_is_string(e) || !json_string_length(e) || !json_is_string(m))
		hh_die("status %u: the body is not {\"error\": \"...\", "
		       "\"message\": \"...\"}",
		       r->status);
	json_decref(j);
}

/* One answer of the api, checked against what the api recorded. */
static void hh_check_api(const struct hh_rec *rec, const struct hh_resp *r)
{
	int is_json = hh_header_is(r, "Content-Type", "application/json");
	json_error_t jerr;
	json_t *j;
	size_t vlen = 0;
	const char *v;
	char want[64];

	if (r->status != rec->status)
		hh_die("the api answered %u, the client got %u", rec->status,
		       r->status);
	if (r->status != 204 && !r->has_length)
		hh_die("status %u without Content-Length", r->status);
	if (r->status >= 400 && !is_json)
		hh_die("status %u: error not application/json", r->status);
	if (is_json && !rec->head) {
		if (!r->bodylen || r->body[r->bodylen - 1] != '\n')
			hh_die("status %u: the JSON body does not end with a "
			       "newline",
			       r->status);
		j = json_loadb((const char *)r->body, r->bodylen, 0, &jerr);
		if (!j)
			hh_die("status %u: the body is not JSON: %s", r->status,
			       jerr.text);
		json_decref(j);
		if (r->status >= 400)
			hh_check_error_body(r);
	}
	switch (r->status) {
	case 401:
		if (!hh_header_is(r, "WWW-Authenticate", "Bearer"))
			hh_die("401 without WWW-Authenticate: Bearer");
		break;
	case 405:
		v = hh_header(r, "Allow", &vlen);
		if (!v || !vlen)
			hh_die("405 without Allow");
		break;
	case 503:
		if (!hh_header(r, "Retry-After", &vlen))
			hh_die("503 without Retry-After");
		break;
	case 416:
		if (!rec->has_range_size)
			break;
		snprintf(want, sizeof(want), "bytes */%llu",
			 (unsigned long long)rec->range_size);
		if (!hh_header_is(r, "Content-Range", want))
			hh_die("416 without Content-Range: %s", want);
		break;
	default:
		break;
	}
}

/*
 * Check the whole answer stream of the last exchange (see the top of the
 * file). The answers of the api are returned in resp[] (at most nresp),
 * in order; the number of them is returned.
 */
static size_t hh_check(struct hh_resp *resp, size_t nresp)
{
	struct hh_resp r;
	size_t pos = 0, i, k = 0, left;
	const char *tail;
	int rc;

	if (hh.rec_overflow)
		return 0;
	for (i = 0; i < hh.nrec; i++) {
		const struct hh_rec *rec = &hh.rec[i];

		if (!rec->answered)
			continue;
		do {
			rc = hh_parse(&pos, rec->head, &r);
		} while (rc > 0 && r.status / 100 == 1); /* 100 Continue */
		if (rc <= 0) {
			if (!rec->completed_ok)
				return k; /* the connection broke first */
			hh_die("answer %zu (status %u) is %s", k + 1,
			       rec->status,
			       rc ? "malformed or cut short" : "missing");
		}
		if (hh.trace)
			fprintf(stderr, "answer %zu of the api: %.*s\n", k + 1,
				(int)r.bodylen, (const char *)r.body);
		hh_check_api(rec, &r);
		/*
		 * libmicrohttpd 0.9.75 takes a method with a NUL in it, and
		 * hands the api the C string: "HEAD\0x" is HEAD to the api
		 * but not to libmicrohttpd, which sends the body.
		 */
		if (rec->head && r.has_length && hh.outlen - pos >= r.length &&
		    (hh.outlen - pos < 9 ||
		     memcmp(hh.out + pos, "HTTP/1.1 ", 9) != 0))
			pos += (size_t)r.length;
		if (k < nresp)
			resp[k] = r;
		k++;
	}
	/*
	 * Then maybe an error of libmicrohttpd itself, and the end. Only its
	 * start is checked: for a malformed Content-Length, 0.9.75 sends its
	 * header block twice, then the body once (modstored does the same).
	 */
	for (;;) { /* 100 Continue to a body that never came */
		size_t p0 = pos;

		if (hh_parse(&pos, 1, &r) <= 0 || r.status / 100 != 1) {
			pos = p0;
			break;
		}
	}
	if (hh.trace)
		fprintf(stderr, "%zu answer(s) of the api, then %zu bytes\n", k,
			hh.outlen - pos);
	if (pos < hh.outlen) {
		left = hh.outlen - pos;
		tail = (const char *)hh.out + pos;
		if (left < 13 || memcmp(tail, "HTTP/1.1 ", 9) != 0 ||
		    (tail[9] != '4' && tail[9] != '5'))
			hh_die("after the %zu answer(s) of the api, something "
			       "else than an error of libmicrohttpd",
			       k);
		if (memmem(tail, left, "application/json", 16))
			hh_die("a JSON answer that the api did not give");
	}
	return k;
}

/* --- requests from templates --------------------------------------------- */

/*
 * Append src to the request being built, replacing the placeholders by the
 * ids of the store: {A} {B} {U} modules, {C} the commit ({c} in lower
 * case), {R} the root, {S}
 * the session of this input, {T} the token.
 */
static size_t hh_expand(const uint8_t *src, size_t n, char *dst, size_t cap)
    __attribute__((unused));

static size_t hh_expand(const uint8_t *src, size_t n, char *dst, size_t cap)
{
	char hex[STORE_HEX_LEN + 1];
	const char *rep;
	size_t i = 0, o = 0, rl;

	while (i < n) {
		rep = NULL;
		if (i + 2 < n && src[i] == '{' && src[i + 2] == '}') {
			switch (src[i + 1]) {
			case 'A':
			case 'B':
			case 'U':
				hh_hex(&hh.mod[src[i + 1] == 'A'   ? 0
					       : src[i + 1] == 'B' ? 1
								   : 2],
				       hex);
				rep = hex;
				break;
			case 'C':
			case 'c':
				hh_hex(&hh.commit, hex);
				for (rl = 0; src[i + 1] == 'c' && hex[rl]; rl++)
					if (hex[rl] >= 'A' && hex[rl] <= 'F')
						hex[rl] = (char)(hex[rl] + 32);
				rep = hex;
				break;
			case 'R':
				hh_hex(&hh.root, hex);
				rep = hex;
				break;
			case 'S':
				hh_hex(&hh.sid, hex);
				rep = hex;
				break;
			case 'T':
				rep = HH_TOKEN;
				break;
			default:
				break;
			}
		}
		if (rep) {
			rl = strlen(rep);
			if (o + rl > cap)
				break;
			memcpy(dst + o, rep, rl);
			o += rl;
			i += 3;
		} else {
			if (o + 1 > cap)
				break;
			dst[o++] = (char)src[i++];
		}
	}
	return o;
}

#endif /* HTTP_HARNESS_H */
