/*
 * fuzz_query.c - the query strings of the routes that take numbers:
 * offset and length of GET /sessions/{sid}/modules/{mod}/memory, offset
 * of PUT on the same path, size of POST /modules.
 *
 * Byte 0 of the input: bits 0-1 the route (0 GET, 1 PUT, 2 POST /modules,
 * 3 GET), bit 2 module A (1 page) or B (3 pages) of the session S. The
 * rest is the query string (after '?'); inputs with a byte that would end
 * the request line (space, tab, CR, LF, NUL) are skipped.
 *
 * The values are taken as libmicrohttpd hands them to the api (decoded,
 * the first of each name), and the answer is checked against the contract
 * (http-api.md): a number is 1 to 20 decimal digits and fits 64 bits, else
 * 400 (invalid_offset, invalid_length, invalid_size). GET: offset past the
 * end, or offset + length past it, 416 with Content-Range: bytes * / SIZE;
 * else 200 with exactly those bytes (length defaults to the rest). PUT of
 * 10 bytes: past the 64 KiB maximum once grown to whole pages, 413; else
 * 204, and the session then reads back those bytes and has grown to whole
 * pages. POST /modules with the bytecode of A: size 0 or not a multiple of
 * the page 400, above the maximum 413, else 200 and A as it is (deployed
 * already: the size asked for does not change it).
 */
#include "http_harness.h"

#define WBYTES "0123456789"
#define WLEN   10

static char req[8192];

struct arg {
	int present, has_value;
	char v[4096];
	size_t n;
};

static struct arg a_offset, a_length, a_size;

static void get_arg(struct MHD_Connection *conn, const char *name,
		    struct arg *a)
{
	const char *v = NULL;
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	if (MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, name,
					  strlen(name), &v, &n) != MHD_YES)
		return;
	a->present = 1;
	if (!v)
		return;
	a->has_value = 1;
	a->n = n < sizeof(a->v) ? n : sizeof(a->v) - 1;
	memcpy(a->v, v, a->n);
}

static void on_request(struct MHD_Connection *conn)
{
	get_arg(conn, "offset", &a_offset);
	get_arg(conn, "length", &a_length);
	get_arg(conn, "size", &a_size);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	hh_init("fuzz_query");
	hh.on_request = on_request;
	return 0;
}

/* -1 malformed, 0 absent (*v = 0), 1 present. */
static int num(const struct arg *a, uint64_t *v)
{
	*v = 0;
	if (!a->present)
		return 0;
	if (!a->has_value || hh_u64(a->v, a->n, v) < 0)
		return -1;
	return 1;
}

static void want_status(const struct hh_resp *r, unsigned int st)
{
	if (r->status != st)
		hh_die("status %u, want %u (offset '%.*s' length '%.*s' size "
		       "'%.*s')",
		       r->status, st, (int)a_offset.n, a_offset.v,
		       (int)a_length.n, a_length.v, (int)a_size.n, a_size.v);
}

static void want_error(const struct hh_resp *r, const char *code)
{
	char want[64];
	int n = snprintf(want, sizeof(want), "{\"error\":\"%s\"", code);

	if (r->bodylen < (size_t)n || memcmp(r->body, want, (size_t)n) != 0)
		hh_die("status %u: error is not %s", r->status, code);
}

static void check_read(const struct hh_resp *r, int m)
{
	uint64_t size = hh.size[m], off, len;
	char want[64];
	int ho, hl;
	size_t i;

	ho = num(&a_offset, &off);
	hl = num(&a_length, &len);
	if (ho < 0 || hl < 0) {
		want_status(r, 400);
		want_error(r, ho < 0 ? "invalid_offset" : "invalid_length");
		return;
	}
	if (off > size || (hl && len > size - off)) {
		want_status(r, 416);
		snprintf(want, sizeof(want), "bytes */%llu",
			 (unsigned long long)size);
		if (!hh_header_is(r, "Content-Range", want))
			hh_die("416 without Content-Range: %s", want);
		return;
	}
	if (!hl)
		len = size - off;
	want_status(r, 200);
	if (r->bodylen != len)
		hh_die("%zu bytes read, want %llu", r->bodylen,
		       (unsigned long long)len);
	for (i = 0; i < len; i++)
		if (r->body[i] != hh_byte(m, off + i))
			hh_die("byte %llu read is %u, want %u",
			       (unsigned long long)(off + i), r->body[i],
			       hh_byte(m, off + i));
}

static void check_write(const struct hh_resp *r, int m)
{
	uint64_t off, size = 0, end, grown;
	unsigned char got[WLEN];
	int ho = num(&a_offset, &off);

	if (ho < 0) {
		want_status(r, 400);
		want_error(r, "invalid_offset");
		return;
	}
	if (off > HH_MAX_MODULE || WLEN > HH_MAX_MODULE - off) {
		want_status(r, 413);
		return;
	}
	end = off + WLEN;
	grown = (end + HH_PAGE - 1) / HH_PAGE * HH_PAGE;
	if (grown > HH_MAX_MODULE) {
		want_status(r, 413);
		return;
	}
	want_status(r, 204);
	hh_expect(store_session_size(hh.store, &hh.sid, &hh.mod[m], &size),
		  "session size");
	if (size != (grown > hh.size[m] ? grown : hh.size[m]))
		hh_die("size %llu after writing at %llu",
		       (unsigned long long)size, (unsigned long long)off);
	hh_expect(
	    store_session_read(hh.store, &hh.sid, &hh.mod[m], off, got, WLEN),
	    "session read");
	if (memcmp(got, WBYTES, WLEN) != 0)
		hh_die("the bytes written at %llu do not read back",
		       (unsigned long long)off);
}

static void check_deploy(const struct hh_resp *r)
{
	uint64_t size;
	int hs = num(&a_size, &size);
	char hex[STORE_HEX_LEN + 1], want[128];

	if (hs < 0 || (hs && (!size || size % HH_PAGE))) {
		want_status(r, 400);
		want_error(r, "invalid_size");
		return;
	}
	if (hs && size > HH_MAX_MODULE) {
		want_status(r, 413);
		return;
	}
	want_status(r, 200);
	hh_hex(&hh.mod[0], hex);
	snprintf(want, sizeof(want), "{\"id\":\"%s\",\"size\":%d,", hex,
		 HH_PAGE);
	if (r->bodylen < strlen(want) ||
	    memcmp(r->body, want, strlen(want)) != 0)
		hh_die("the module changed: %.*s", (int)r->bodylen,
		       (const char *)r->body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sid[STORE_HEX_LEN + 1], mod[STORE_HEX_LEN + 1];
	const char *code = "(module $fuzz_a (memory 1))";
	struct hh_resp r;
	unsigned int route;
	int m, n;
	size_t k;

	if (size < 1 || size > 4000)
		return 0;
	route = data[0] & 3;
	m = (data[0] >> 2) & 1;
	for (k = 1; k < size; k++)
		if (!data[k] || data[k] == ' ' || data[k] == '\t' ||
		    data[k] == '\r' || data[k] == '\n')
			return 0;
	hh_begin(0);
	hh_hex(&hh.sid, sid);
	hh_hex(&hh.mod[m], mod);
	if (route == 1)
		n = snprintf(req, sizeof(req),
			     "PUT /sessions/%s/modules/%s/memory?%.*s HTTP/1.1"
			     "\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s",
			     sid, mod, (int)(size - 1), (const char *)data + 1,
			     WLEN, WBYTES);
	else if (route == 2)
		n = snprintf(req, sizeof(req),
			     "POST /modules?%.*s HTTP/1.1\r\nHost: x\r\n"
			     "Content-Length: %zu\r\n\r\n%s",
			     (int)(size - 1), (const char *)data + 1,
			     strlen(code), code);
	else
		n = snprintf(req, sizeof(req),
			     "GET /sessions/%s/modules/%s/memory?%.*s HTTP/1.1"
			     "\r\nHost: x\r\n\r\n",
			     sid, mod, (int)(size - 1), (const char *)data + 1);
	if (n < 0 || (size_t)n >= sizeof(req))
		hh_die("request too long");
	hh_exchange(req, (size_t)n);
	if (hh_check(&r, 1) != 1) {
		/* libmicrohttpd refuses some request lines itself */
		if (!hh.outlen)
			hh_die("no answer at all");
		goto out;
	}
	if (route == 1)
		check_write(&r, m);
	else if (route == 2)
		check_deploy(&r);
	else
		check_read(&r, m);
out:
	hh_end();
	return 0;
}
