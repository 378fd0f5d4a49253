/*
 * peer.h - requests from one node to another (docs/cluster.md): the
 * files, bytecode, diffs and pages a follower fetches over the ordinary
 * read routes, one at a time or several at once, with the token, over a
 * new connection each time, and the bytes they cost. Over HTTPS a node
 * presents its own certificate to its peers and checks theirs against the
 * cluster's CA (struct peer_tls).
 *
 * One struct peer is used by one thread at a time (the node's loop
 * thread); its figures may be read from any thread.
 */
#ifndef CLUSTER_PEER_H
#define CLUSTER_PEER_H

#include <stddef.h>
#include <stdint.h>

/* Ranges one request asks for at most (the server's API_MAX_RANGES). */
#define PEER_MAX_RANGES 1024

struct peer;

/*
 * What a node shows and trusts on HTTPS to its peers, PEM text (the
 * bytes of the files --tls-cert, --tls-key and --tls-client-ca).
 */
struct peer_tls {
	const char *cert; /* the client certificate, its chain after it */
	const char *key;  /* its private key; with cert */
	const char *ca;	  /* the CAs of peers' certificates; NULL: system's */
};

/*
 * A peer client sending token (NULL: none) and showing tls (NULL, or
 * fields NULL: nothing); both copied, the copies of the token and the key
 * wiped when freed. NULL out of memory or when libcurl cannot take tls.
 */
struct peer *peer_new(const char *token, const struct peer_tls *tls);
void peer_free(struct peer *p);

enum peer_tls_fault {
	PEER_TLS_OK = 0,
	PEER_TLS_CERT,	 /* the certificate or the key was refused */
	PEER_TLS_CA,	 /* the CAs were refused (the system's, ca NULL) */
	PEER_TLS_LIBCURL /* libcurl could not (no OpenSSL, out of memory) */
};

/*
 * Whether libcurl's TLS library takes tls as it will on every request to
 * a peer, checked once at startup: a bad file is a startup error, not
 * handshakes failing later. What libcurl said into err (size bytes).
 */
enum peer_tls_fault peer_tls_check(const struct peer_tls *tls, char *err,
				   size_t size);

/* The body of an answer, piece by piece: 0 to go on, -1 to stop. */
typedef int (*peer_sink_fn)(void *ctx, const char *data, size_t len);

/*
 * GET base+path; the body to sink. The status of the answer, or 0 when
 * none came whole (no connection, a timeout, the sink stopped).
 */
long peer_get(struct peer *p, const char *base, const char *path,
	      peer_sink_fn sink, void *ctx);

/* Requests peer_run() makes at once, at most. */
#define PEER_PARALLEL 16

/* One request of several made at once: a GET, or a POST of body. */
struct peer_req {
	const char *base, *path;
	const char *body; /* NULL: a GET */
	size_t blen;
	const char *alt; /* a POST refused as too large (413): sent instead */
	size_t alt_len;
	peer_sink_fn sink; /* NULL: the body is read and dropped */
	void *ctx;
	long status; /* out: the answer's status, 0 when none came whole */
};

/*
 * The n requests at once (PEER_PARALLEL at a time, each on a new
 * connection), all within timeout_ms: until every one has ended, or want
 * of them (0: all) have answered 2xx, when the others are dropped (their
 * status 0). With retry_ms, one that ends without an answer, or with a
 * 409 or a 5xx (a peer not ready yet), is sent again retry_ms later,
 * until the time is up. The number answered 2xx.
 */
size_t peer_run(struct peer *p, struct peer_req *r, size_t n, size_t want,
		long timeout_ms, long retry_ms);

/* Bytes at an offset of the memory asked for: 0 to go on, -1 to stop. */
typedef int (*peer_put_fn)(void *ctx, uint64_t off, const char *data,
			   size_t len);

struct peer_range {
	uint64_t off, len; /* bytes */
};

/*
 * GET base+path (a memory route) with a Range of the n ranges r (at most
 * PEER_MAX_RANGES, ascending, not adjacent): every byte of the answer to
 * put at its offset, from a multipart/byteranges answer, a single range
 * (206 with Content-Range) or the whole memory (200, a peer that ignored
 * the Range). 0 when the answer was whole and held at least the bytes
 * asked for, -1 otherwise.
 */
int peer_get_ranges(struct peer *p, const char *base, const char *path,
		    const struct peer_range *r, size_t n, peer_put_fn put,
		    void *ctx);

struct peer_stats {
	uint64_t requests;     /* made, answered or not */
	uint64_t body_bytes;   /* of answers, as received (de-chunked) */
	uint64_t header_bytes; /* of answers: status lines and headers */
};

void peer_stats(struct peer *p, struct peer_stats *st);

#endif /* CLUSTER_PEER_H */
