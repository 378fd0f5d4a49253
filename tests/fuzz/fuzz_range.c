/*
 * fuzz_range.c - the Range and If-Range headers of GET /modules/{mod}/memory.
 *
 * Byte 0 of the input: bits 0-1 the module (A: 1 page, B: 3 pages, both
 * with an ETag; U: 2 pages never committed, so no ETag; an unknown one),
 * bits 2-3 If-Range (none; the module's ETag, or A's for U; an HTTP date;
 * the bytes after the first newline of the input), bit 4 HEAD rather than
 * GET, bit 5 no Range header at all. The rest is the value of Range.
 * Inputs with a byte no header value can hold (NUL, CR, LF) are skipped.
 *
 * The answer is checked as http_harness.h says, and against the contract
 * of a single byte range (http-api.md), computed here from the header as
 * libmicrohttpd hands it over: a malformed header, a backwards range or
 * an If-Range that does not name the ETag give the whole memory (200);
 * several ranges give 200 or one multipart/byteranges answer whose every
 * part holds the bytes its Content-Range names; "bytes=a-b", "bytes=a-" and
 * "bytes=-n" give 206 with Content-Range "bytes first-last/SIZE" and exactly
 * those bytes of the module; a first byte at or past the end, or "bytes=-0",
 * give 416 with Content-Range "bytes * / SIZE". 200 and 206 carry Accept-Ranges
 * and the ETag when the module has one.
 */
#include "http_harness.h"

static char req[8192];
static char range_seen[4096], if_range_seen[4096];
static int has_range_seen, has_if_range_seen;

static void copy_header(struct MHD_Connection *conn, const char *name,
			char *out, size_t cap, int *has)
{
	const char *v = NULL;
	size_t n = 0;

	*has = MHD_lookup_connection_value_n(conn, MHD_HEADER_KIND, name,
					     strlen(name), &v, &n) == MHD_YES &&
	       v;
	if (!*has)
		return;
	if (n >= cap || memchr(v, 0, n))
		hh_die("header %s of %zu bytes", name, n);
	memcpy(out, v, n);
	out[n] = '\0';
}

static void on_request(struct MHD_Connection *conn)
{
	copy_header(conn, MHD_HTTP_HEADER_RANGE, range_seen, sizeof(range_seen),
		    &has_range_seen);
	copy_header(conn, MHD_HTTP_HEADER_IF_RANGE, if_range_seen,
		    sizeof(if_range_seen), &has_if_range_seen);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	hh_init("fuzz_range");
	hh.on_request = on_request;
	return 0;
}

static int digits(const char *s, size_t n, uint64_t *v)
{
	return hh_u64(s, n, v);
}

/* The contract: 0 whole, 1 [*off, *off + *len), -1 unsatisfiable. */
static int expect_range(const char *v, uint64_t size, uint64_t *off,
			uint64_t *len)
{
	size_t n;
	const char *dash;
	uint64_t a, b;

	if (strncasecmp(v, "bytes=", 6) != 0)
		return 0;
	v += 6;
	n = strlen(v);
	while (n && *v == ' ') {
		v++;
		n--;
	}
	while (n && v[n - 1] == ' ')
		n--;
	if (memchr(v, ',', n) || !(dash = memchr(v, '-', n)))
		return 0;
	if (dash == v) {
		if (digits(v + 1, n - 1, &b) < 0)
			return 0;
		if (!b)
			return -1;
		*len = b < size ? b : size;
		*off = size - *len;
		return 1;
	}
	if (digits(v, (size_t)(dash - v), &a) < 0)
		return 0;
	if ((size_t)(dash - v) + 1 == n) {
		b = size - 1;
	} else {
		if (digits(dash + 1, n - (size_t)(dash - v) - 1, &b) < 0 ||
		    b < a)
			return 0;
	}
	if (a >= size)
		return -1;
	if (b >= size)
		b = size - 1;
	*off = a;
	*len = b - a + 1;
	return 1;
}

/*
 * A multipart/byteranges answer to several ranges: every part's
 * Content-Range within the module, followed by exactly those bytes.
 */
static void check_parts(int m, const struct hh_resp *r, uint64_t msize)
{
	const char *p = (const char *)r->body, *end = p + r->bodylen, *q;
	unsigned long long a, b, sz;
	size_t parts = 0, i;

	while ((q = memmem(p, (size_t)(end - p), "Content-Range: bytes ",
			   21)) != NULL) {
		if (sscanf(q + 21, "%llu-%llu/%llu", &a, &b, &sz) != 3 ||
		    a > b || b >= msize || sz != msize)
			hh_die("a part's Content-Range is wrong");
		q = memmem(q, (size_t)(end - q), "\r\n\r\n", 4);
		if (!q || (uint64_t)(end - q - 4) < b - a + 1)
			hh_die("a part is cut short");
		q += 4;
		for (i = 0; i <= b - a; i++)
			if ((unsigned char)q[i] != hh_byte(m, a + i))
				hh_die("byte %llu of a part is wrong", a + i);
		p = q + (b - a + 1);
		parts++;
	}
	if (!parts)
		hh_die("a multipart answer without parts");
}

static void check_bytes(int m, const struct hh_resp *r, uint64_t off)
{
	size_t i;

	for (i = 0; i < r->bodylen; i++)
		if (r->body[i] != hh_byte(m, off + i))
			hh_die("byte %llu of the module is %u, want %u",
			       (unsigned long long)(off + i), r->body[i],
			       hh_byte(m, off + i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char date[] = "Mon, 23 Nov 2026 22:00:00 GMT";
	struct hh_resp r;
	unsigned int b, m, ir, head, norange;
	const uint8_t *nl = NULL, *end = data + size;
	char hex[STORE_HEX_LEN + 1], want[96];
	const char *etag = "", *irv = NULL;
	size_t n = 0, irlen = 0, k;
	uint64_t msize = 0, off = 0, len = 0;
	int rng, st;

	if (size < 1)
		return 0;
	b = data[0];
	m = b & 3;
	ir = (b >> 2) & 3;
	head = (b >> 4) & 1;
	norange = (b >> 5) & 1;
	data++;
	if (ir == 3 && (nl = memchr(data, '\n', (size_t)(end - data)))) {
		irv = (const char *)nl + 1;
		irlen = (size_t)(end - nl - 1);
		end = nl;
	}
	for (k = 0; data + k < end; k++)
		if (!data[k] || data[k] == '\r' || data[k] == '\n')
			return 0;
	for (k = 0; k < irlen; k++)
		if (!irv[k] || irv[k] == '\r' || irv[k] == '\n')
			return 0;

	hh_begin(0);
	if (m < 3) {
		hh_hex(&hh.mod[m], hex);
		msize = hh.size[m];
		etag = hh.etag[m];
	} else {
		memset(hex, 'E', STORE_HEX_LEN);
		hex[STORE_HEX_LEN] = '\0';
	}
	n += (size_t)snprintf(req + n, sizeof(req) - n,
			      "%s /modules/%s/memory HTTP/1.1\r\nHost: x\r\n",
			      head ? "HEAD" : "GET", hex);
	if (!norange && (size_t)(end - data) + 32 < sizeof(req) - n) {
		n += (size_t)snprintf(req + n, sizeof(req) - n,
				      "Range: %.*s\r\n", (int)(end - data),
				      (const char *)data);
	}
	if (ir == 1)
		n += (size_t)snprintf(req + n, sizeof(req) - n,
				      "If-Range: %s\r\n",
				      m == 2 ? hh.etag[0] : etag);
	else if (ir == 2)
		n += (size_t)snprintf(req + n, sizeof(req) - n,
				      "If-Range: %s\r\n", date);
	else if (irv && irlen + 32 < sizeof(req) - n)
		n += (size_t)snprintf(req + n, sizeof(req) - n,
				      "If-Range: %.*s\r\n", (int)irlen, irv);
	if (n + 3 > sizeof(req))
		hh_die("request too long");
	memcpy(req + n, "\r\n", 2);
	n += 2;
	has_range_seen = has_if_range_seen = 0;
	hh_exchange(req, n);
	if (hh_check(&r, 1) != 1)
		hh_die("no answer of the api");

	/* what the contract says */
	if (m == 3) {
		st = 404;
	} else {
		rng = 0;
		if (has_range_seen &&
		    (!has_if_range_seen ||
		     (*etag && strcmp(if_range_seen, etag) == 0)))
			rng = expect_range(range_seen, msize, &off, &len);
		st = rng > 0 ? 206 : rng < 0 ? 416 : 200;
		if (!rng) {
			off = 0;
			len = msize;
		}
	}
	/*
	 * Several ranges: one multipart/byteranges answer (api/ranges.c), or
	 * the whole memory when they are not ascending and apart.
	 */
	if (st == 200 && has_range_seen && strchr(range_seen, ',') &&
	    r.status == 206) {
		const char *ct = hh_header(&r, "Content-Type", &k);

		if (!ct || k < 31 ||
		    strncmp(ct, "multipart/byteranges; boundary=", 31))
			hh_die("206 to several ranges, not multipart");
		if (!head)
			check_parts((int)m, &r, msize);
		hh_end();
		return 0;
	}
	if (r.status != (unsigned int)st)
		hh_die("Range '%s' If-Range '%s': status %u, want %d",
		       has_range_seen ? range_seen : "(none)",
		       has_if_range_seen ? if_range_seen : "(none)", r.status,
		       st);
	if (st == 416) {
		snprintf(want, sizeof(want), "bytes */%llu",
			 (unsigned long long)msize);
		if (!hh_header_is(&r, "Content-Range", want))
			hh_die("416 without Content-Range: %s", want);
	}
	if (st == 200 || st == 206) {
		if (r.length != len)
			hh_die("Content-Length %llu, want %llu",
			       (unsigned long long)r.length,
			       (unsigned long long)len);
		if (!head && r.bodylen != len)
			hh_die("a body of %zu bytes, want %llu", r.bodylen,
			       (unsigned long long)len);
		check_bytes((int)m, &r, off);
		if (!hh_header_is(&r, "Accept-Ranges", "bytes"))
			hh_die("no Accept-Ranges: bytes");
		if (*etag ? !hh_header_is(&r, "ETag", etag)
			  : hh_header(&r, "ETag", &k) != NULL)
			hh_die("wrong ETag");
		if (!hh_header_is(&r, "Content-Type",
				  "application/octet-stream"))
			hh_die("not application/octet-stream");
	}
	if (st == 206) {
		snprintf(want, sizeof(want), "bytes %llu-%llu/%llu",
			 (unsigned long long)off,
			 (unsigned long long)(off + len - 1),
			 (unsigned long long)msize);
		if (!hh_header_is(&r, "Content-Range", want))
			hh_die("206 without Content-Range: %s", want);
	} else if (st == 200 && hh_header(&r, "Content-Range", &k)) {
		hh_die("200 with a Content-Range");
	}
	hh_end();
	return 0;
}
