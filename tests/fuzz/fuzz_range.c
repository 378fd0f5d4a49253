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
 * The answer is checked as http_harness.h says, and against the ranges
 * of README.md ("Choices where the contract is silent"), computed here
 * from the header as libmicrohttpd hands it over: "bytes=" and a list of
 * "a-b", "a-" and "-n" (spaces and tabs around each, empty elements
 * ignored); a malformed header, more than 1,024 ranges, overlapping or
 * descending ones, or an If-Range that does not name the ETag give the
 * whole memory (200); unsatisfiable ranges are left out, and none left is
 * 416 with Content-Range "bytes * / SIZE"; adjacent ones are joined. One
 * range left: 206 with Content-Range "bytes first-last/SIZE" and exactly
 * those bytes; several: 206 multipart/byteranges, each part with its
 * Content-Type and Content-Range and exactly its bytes, in order, then the
 * closing delimiter. 200 and 206 carry Accept-Ranges and the ETag when the
 * module has one.
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

#define MAX_RANGES 1024

struct rg {
	uint64_t off, len;
};

static struct rg want_r[MAX_RANGES];

/* One range-spec of [v, v + n) against size: 1 kept, 0 left out, -1 bad. */
static int expect_spec(const char *v, size_t n, uint64_t size, struct rg *o)
{
	const char *dash = memchr(v, '-', n);
	uint64_t a, b;

	if (!dash)
		return -1;
	if (dash == v) {
		if (digits(v + 1, n - 1, &b) < 0)
			return -1;
		if (!b || !size)
			return 0;
		o->len = b < size ? b : size;
		o->off = size - o->len;
		return 1;
	}
	if (digits(v, (size_t)(dash - v), &a) < 0)
		return -1;
	if ((size_t)(dash - v) + 1 == n) {
		b = UINT64_MAX;
	} else if (digits(dash + 1, n - (size_t)(dash - v) - 1, &b) < 0 ||
		   b < a) {
		return -1;
	}
	if (a >= size)
		return 0;
	o->off = a;
	o->len = (b >= size ? size - 1 : b) - a + 1;
	return 1;
}

/*
 * The ranges into want_r (*n): 1 when some are kept, -1 when none is,
 * 0 for the whole memory.
 */
static int expect_range(const char *v, uint64_t size, size_t *n)
{
	const char *p, *e, *c;
	size_t specs = 0;
	struct rg o;
	int k;

	*n = 0;
	if (strncasecmp(v, "bytes=", 6) != 0)
		return 0;
	for (p = v + 6; *p;) {
		c = strchr(p, ',');
		e = c ? c : p + strlen(p);
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > p) {
			if (++specs > MAX_RANGES)
				return 0;
			k = expect_spec(p, (size_t)(e - p), size, &o);
			if (k < 0)
				return 0;
			if (k && *n &&
			    o.off < want_r[*n - 1].off + want_r[*n - 1].len)
				return 0;
			if (k && *n &&
			    o.off == want_r[*n - 1].off + want_r[*n - 1].len)
				want_r[*n - 1].len += o.len;
			else if (k)
				want_r[(*n)++] = o;
		}
		if (!c)
			break;
		p = c + 1;
	}
	if (!specs)
		return 0;
	return *n ? 1 : -1;
}

static void check_bytes(int m, const unsigned char *p, size_t len, uint64_t off)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != hh_byte(m, off + i))
			hh_die("byte %llu of the module is %u, want %u",
			       (unsigned long long)(off + i), p[i],
			       hh_byte(m, off + i));
}

/*
 * A multipart/byteranges answer of the n ranges of want_r of module m
 * (size bytes): its length, and with a body, every part.
 */
static void check_multipart(int m, const struct hh_resp *r, size_t n,
			    uint64_t size, int head)
{
	char bnd[128], part[400];
	const char *ct;
	size_t ctl, i, pl;
	uint64_t total = 0, at = 0;

	ct = hh_header(r, "Content-Type", &ctl);
	if (!ct || ctl <= 31 || ctl - 31 >= sizeof(bnd) ||
	    strncmp(ct, "multipart/byteranges; boundary=", 31) != 0)
		hh_die("several ranges, not multipart/byteranges");
	memcpy(bnd, ct + 31, ctl - 31);
	bnd[ctl - 31] = '\0';
	for (i = 0; i <= n; i++) {
		if (i < n)
			pl = (size_t)snprintf(
			    part, sizeof(part),
			    "%s--%s\r\nContent-Type: application/octet-stream"
			    "\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
			    i ? "\r\n" : "", bnd,
			    (unsigned long long)want_r[i].off,
			    (unsigned long long)(want_r[i].off + want_r[i].len -
						 1),
			    (unsigned long long)size);
		else
			pl = (size_t)snprintf(part, sizeof(part),
					      "\r\n--%s--\r\n", bnd);
		if (!head && (at + pl > r->bodylen ||
			      memcmp(r->body + at, part, pl) != 0))
			hh_die("part %zu of %zu: not its header", i, n);
		at += pl;
		if (i < n && !head) {
			if (at + want_r[i].len > r->bodylen)
				hh_die("part %zu cut short", i);
			check_bytes(m, r->body + at, (size_t)want_r[i].len,
				    want_r[i].off);
		}
		if (i < n)
			at += want_r[i].len;
	}
	total = at;
	if (r->length != total || (!head && r->bodylen != total))
		hh_die("multipart of %llu bytes, want %llu",
		       (unsigned long long)r->length,
		       (unsigned long long)total);
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
	size_t nr = 0;
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
			rng = expect_range(range_seen, msize, &nr);
		st = rng > 0 ? 206 : rng < 0 ? 416 : 200;
		off = 0;
		len = msize;
		if (rng > 0 && nr == 1) {
			off = want_r[0].off;
			len = want_r[0].len;
		}
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
	if (st == 206 && nr > 1) {
		check_multipart((int)m, &r, nr, msize, (int)head);
		if (!hh_header_is(&r, "Accept-Ranges", "bytes"))
			hh_die("no Accept-Ranges: bytes");
		if (hh_header(&r, "Content-Range", &k))
			hh_die("multipart with a Content-Range");
		hh_end();
		return 0;
	}
	if (st == 200 || st == 206) {
		if (r.length != len)
			hh_die("Content-Length %llu, want %llu",
			       (unsigned long long)r.length,
			       (unsigned long long)len);
		if (!head && r.bodylen != len)
			hh_die("a body of %zu bytes, want %llu", r.bodylen,
			       (unsigned long long)len);
		check_bytes((int)m, r.body, r.bodylen, off);
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
