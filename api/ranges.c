/*
 * ranges.c - memory answers and their byte ranges (RFC 9110 section 14):
 * the whole memory, one range (206 with Content-Range), or several in one
 * multipart/byteranges body (section 14.6), so that a client that wants
 * the pages a diff lists asks once, not once per run of pages.
 *
 * Bounds: a Range header holds at most API_MAX_RANGES ranges (the header
 * block itself is bounded by the connection's buffers); the ranges must
 * be in ascending order and may not overlap, so that an answer never
 * sends a byte twice and is at most the memory plus the parts' framing.
 * Any other Range is ignored, as RFC 9110 section 14.2 allows: the whole
 * memory, 200.
 */
#include "api.h"
#include "api_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* One satisfiable range: size bytes from off. */
struct range {
	uint64_t off, len;
};

/* A multipart/byteranges body being sent: its parts and where each is. */
struct multipart {
	int fd; /* the store's read-only descriptor, owned */
	uint64_t size;
	char boundary[48];
	size_t n;
	uint64_t total;	  /* bytes of the whole body */
	uint64_t *start;  /* where part i's header begins in the body */
	struct range r[]; /* n parts */
};

#define MP_CTYPE "application/octet-stream"

/* The header of part i (delimiter included) into buf; its length. */
static size_t part_header(const struct multipart *m, size_t i, char *buf,
			  size_t cap)
{
	int len = snprintf(buf, cap,
			   "%s--%s\r\nContent-Type: " MP_CTYPE
			   "\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
			   i ? "\r\n" : "", m->boundary,
			   (unsigned long long)m->r[i].off,
			   (unsigned long long)(m->r[i].off + m->r[i].len - 1),
			   (unsigned long long)m->size);

	return len < 0 ? 0 : (size_t)len;
}

/* The closing delimiter into buf; its length. */
static size_t part_close(const struct multipart *m, char *buf, size_t cap)
{
	int len = snprintf(buf, cap, "\r\n--%s--\r\n", m->boundary);

	return len < 0 ? 0 : (size_t)len;
}

/* --- parsing Range -------------------------------------------------------- */

static const char *skip_ows(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/*
 * One range-spec of [p, end) ("a-b", "a-" or "-n") against size: 1 with
 * *out when satisfiable, 0 when not (it is left out), -1 when malformed.
 */
static int spec_parse(const char *p, const char *end, uint64_t size,
		      struct range *out)
{
	const char *dash = memchr(p, '-', (size_t)(end - p));
	uint64_t a, b;

	if (!dash)
		return -1;
	if (dash == p) { /* suffix: the last n bytes */
		if (api_parse_u64(dash + 1, (size_t)(end - dash - 1), &b) < 0)
			return -1;
		if (b == 0 || size == 0)
			return 0;
		out->len = b > size ? size : b;
		out->off = size - out->len;
		return 1;
	}
	if (api_parse_u64(p, (size_t)(dash - p), &a) < 0)
		return -1;
	if (dash + 1 == end) {
		b = UINT64_MAX;
	} else if (api_parse_u64(dash + 1, (size_t)(end - dash - 1), &b) < 0 ||
		   b < a) {
		return -1;
	}
	if (a >= size)
		return 0;
	if (b >= size)
		b = size - 1;
	out->off = a;
	out->len = b - a + 1;
	return 1;
}

/*
 * Add r to the n ranges of out (at most max): adjacent to the last, it
 * joins it. 0, or -1 when it comes before the last one's end or there is
 * no room.
 */
static int range_add(struct range *out, size_t *n, size_t max,
		     const struct range *r)
{
	struct range *last = *n ? &out[*n - 1] : NULL;

	if (last && r->off < last->off + last->len)
		return -1; /* overlapping, or not ascending */
	if (last && r->off == last->off + last->len) {
		last->len += r->len;
		return 0;
	}
	if (*n == max)
		return -1;
	out[(*n)++] = *r;
	return 0;
}

/*
 * The ranges of a Range header v ("bytes=" and a list of range-specs,
 * RFC 9110 section 14.1.2) of size bytes into out (room for
 * API_MAX_RANGES), adjacent ones joined: 1 and *n when some are
 * satisfiable, -1 when none is, 0 when the header is to be ignored
 * (absent, malformed, overlapping or descending ranges, too many).
 */
static int ranges_parse(const char *v, uint64_t size, struct range *out,
			size_t *n)
{
	const char *p, *end, *comma, *e;
	struct range r;
	size_t specs = 0;
	int rc;

	*n = 0;
	if (!v || strncasecmp(v, "bytes=", 6) != 0)
		return 0;
	p = v + 6;
	end = v + strlen(v);
	for (;;) {
		p = skip_ows(p, end);
		if (p >= end)
			break;
		comma = memchr(p, ',', (size_t)(end - p));
		e = comma ? comma : end;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > p) { /* empty elements of a list are ignored */
			if (++specs > API_MAX_RANGES)
				return 0;
			rc = spec_parse(p, e, size, &r);
			if (rc < 0 ||
			    (rc > 0 && range_add(out, n, API_MAX_RANGES, &r)))
				return 0;
		}
		p = comma ? comma + 1 : end;
	}
	if (!specs)
		return 0;
	return *n ? 1 : -1;
}

/* 1 when an If-Range validator names etag (an empty etag never matches). */
static int if_range_ok(const char *v, const char *etag)
{
	return !v || (*etag && strcmp(v, etag) == 0);
}

/* --- the multipart body --------------------------------------------------- */

/* The part whose header or data holds body position pos (binary search). */
static size_t part_at(const struct multipart *m, uint64_t pos)
{
	size_t lo = 0, hi = m->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->start[mid] <= pos)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Up to max bytes of the body from pos: framing text, or the file's bytes. */
static ssize_t mp_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct multipart *m = cls;
	char head[256];
	uint64_t at;
	size_t i, hl, k;
	ssize_t got;

	if (pos >= m->total)
		return MHD_CONTENT_READER_END_OF_STREAM;
	i = part_at(m, pos);
	at = pos - m->start[i];
	hl = part_header(m, i, head, sizeof(head));
	if (i + 1 == m->n && at >= hl + m->r[i].len) { /* the close */
		at -= hl + m->r[i].len;
		hl = part_close(m, head, sizeof(head));
		k = hl - (size_t)at < max ? hl - (size_t)at : max;
		memcpy(buf, head + at, k);
		return (ssize_t)k;
	}
	if (at < hl) {
		k = hl - (size_t)at < max ? hl - (size_t)at : max;
		memcpy(buf, head + at, k);
		return (ssize_t)k;
	}
	at -= hl;
	k = m->r[i].len - at < max ? (size_t)(m->r[i].len - at) : max;
	/* the store's descriptor, read as sendfile would read it */
	do
		got = pread(m->fd, buf, k, (off_t)(m->r[i].off + at));
	while (got < 0 && errno == EINTR);
	return got > 0 ? got : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void mp_free(void *cls)
{
	struct multipart *m = cls;

	close(m->fd);
	free(m->start);
	free(m);
}

/* A multipart of the n ranges of fd (taken over on success), or NULL. */
static struct multipart *mp_new(int fd, uint64_t size, const struct range *r,
				size_t n)
{
	struct multipart *m = malloc(sizeof(*m) + n * sizeof(*r));
	unsigned char rnd[16];
	char head[256];
	size_t i;

	if (!m)
		return NULL;
	m->start = malloc(n * sizeof(*m->start));
	if (!m->start) {
		free(m);
		return NULL;
	}
	/* random: it appears in no part, whatever the memory holds */
	randombytes_buf(rnd, sizeof(rnd));
	memcpy(m->boundary, "modstore-", 9);
	sodium_bin2hex(m->boundary + 9, sizeof(m->boundary) - 9, rnd,
		       sizeof(rnd));
	m->fd = fd;
	m->size = size;
	m->n = n;
	memcpy(m->r, r, n * sizeof(*r));
	m->total = 0;
	for (i = 0; i < n; i++) {
		m->start[i] = m->total;
		m->total += part_header(m, i, head, sizeof(head)) + r[i].len;
	}
	m->total += part_close(m, head, sizeof(head));
	return m;
}

/* --- the answer ----------------------------------------------------------- */

/* The answer of several ranges; fd is taken over in every case. */
static struct MHD_Response *multipart_response(int fd, uint64_t size,
					       const struct range *r, size_t n,
					       uint64_t *len)
{
	struct MHD_Response *resp;
	struct multipart *m = mp_new(fd, size, r, n);
	char ctype[96];

	if (!m) {
		close(fd);
		return NULL;
	}
	resp = MHD_create_response_from_callback(m->total, API_READ_BLOCK,
						 mp_read, m, mp_free);
	if (!resp) {
		mp_free(m);
		return NULL;
	}
	snprintf(ctype, sizeof(ctype), "multipart/byteranges; boundary=%s",
		 m->boundary);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	*len = m->total;
	return resp;
}

/* The answer of one range, or of the whole (sendfile); fd taken over. */
static struct MHD_Response *single_response(int fd, uint64_t size,
					    const struct range *r, int partial)
{
	struct MHD_Response *resp;
	char buf[96];

	resp = partial
		   ? MHD_create_response_from_fd_at_offset64(r->len, fd, r->off)
		   : MHD_create_response_from_fd64(size, fd);
	if (!resp) {
		close(fd);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/octet-stream");
	if (partial) {
		snprintf(buf, sizeof(buf), "bytes %llu-%llu/%llu",
			 (unsigned long long)r->off,
			 (unsigned long long)(r->off + r->len - 1),
			 (unsigned long long)size);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE,
					buf);
	}
	return resp;
}

enum MHD_Result api_reply_memory(struct api_request *r, int fd, uint64_t size,
				 const char *etag)
{
	struct MHD_Response *resp;
	struct range *rs = NULL, whole = {0, size};
	uint64_t len = size;
	size_t n = 0;
	int rng = 0;

	if (if_range_ok(api_header(r, MHD_HTTP_HEADER_IF_RANGE), etag) &&
	    api_header(r, MHD_HTTP_HEADER_RANGE)) {
		rs = malloc(API_MAX_RANGES * sizeof(*rs));
		if (!rs) {
			close(fd);
			api_fail_store(r, STORE_ENOMEM, "serving the memory");
			return api_reply_error(r);
		}
		rng = ranges_parse(api_header(r, MHD_HTTP_HEADER_RANGE), size,
				   rs, &n);
	}
	if (rng < 0) {
		close(fd);
		free(rs);
		r->has_range_size = 1;
		r->range_size = size;
		api_fail(r, MHD_HTTP_RANGE_NOT_SATISFIABLE,
			 store_errname(STORE_ERANGE),
			 "the range is outside the %llu bytes of memory",
			 (unsigned long long)size);
		return api_reply_error(r);
	}
	/* the response owns fd from here on */
	if (rng > 0 && n > 1)
		resp = multipart_response(fd, size, rs, n, &len);
	else if (rng > 0) {
		resp = single_response(fd, size, &rs[0], 1);
		len = rs[0].len;
	} else
		resp = single_response(fd, size, &whole, 0);
	free(rs);
	if (!resp) {
		api_fail_store(r, STORE_ENOMEM, "serving the memory");
		return api_reply_error(r);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (*etag)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	return api_reply(r, rng > 0 ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK,
			 resp, len);
}
