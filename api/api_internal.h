/*
 * api_internal.h - what api.c (dispatch, errors, replies, log) and
 * routes.c (the route table and its handlers) share; not for other layers.
 */
#ifndef API_INTERNAL_H
#define API_INTERNAL_H

#include "api.h"

#include <jansson.h>
#include <sodium.h>
#include <stdatomic.h>
#include <time.h>

/* Largest JSON request body, whatever --max-body says. */
#define API_JSON_MAX (64 * 1024)

/*
 * Largest buffered body (a record a cluster's leader sends a follower,
 * with the pages it changes), whatever --max-body says.
 */
#define API_BUFFER_MAX (32 * 1024 * 1024)
/* Buffered bodies of all requests together, at most (503 too_busy). */
#define API_BUFFERED_MAX (2 * API_BUFFER_MAX)

/* Path parameters of one route: {mod}, {sid}, {commit}, {index}. */
#define API_MAX_PARAMS 3

/*
 * The one path parameter that is not an id: its text is kept as it came
 * (r->param) for the handler to parse; every other {x} is an id.
 */
#define API_TEXT_PARAM "{index}"

/* Block size asked of libmicrohttpd for streamed session memory. */
#define API_READ_BLOCK (64 * 1024)

/* A session read up to this size is copied into its answer whole. */
#define API_READ_SMALL (16 * 1024)

/*
 * Ranges one Range header of a memory read may ask for (ranges.c); a
 * header with more is ignored (the whole memory).
 */
#define API_MAX_RANGES 1024

/* Room for the route table in the metrics; routes.c checks it. */
#define API_MAX_ROUTES 32

/* Statuses counted by name; any other is counted as "other". */
#define API_NSTATUS 18

/* Upper bounds (seconds) of the duration histograms, +Inf excluded. */
#define API_NBUCKETS 14

/* A duration histogram: per-bucket counts (not cumulative), sum in ns. */
struct api_hist {
	atomic_uint_least64_t bucket[API_NBUCKETS + 1]; /* last: +Inf */
	atomic_uint_least64_t sum_ns;
	atomic_uint_least64_t count;
};

/*
 * The figures of GET /metrics: lock-free counters updated as requests
 * complete. Index API_MAX_ROUTES of requests[] counts the requests that
 * matched no route.
 */
struct api_metrics {
	atomic_uint_least64_t requests[API_MAX_ROUTES + 1][API_NSTATUS + 1];
	struct api_hist request_seconds;
	struct api_hist commit_seconds;
	atomic_uint_least64_t bytes_received; /* request bodies */
	atomic_uint_least64_t bytes_sent;     /* answer bodies */
};

struct api {
	struct api_options o; /* o.token, o.read_token are not kept: hashes */
	int has_token;
	unsigned char token_hash[crypto_generichash_BYTES];
	int has_read_token; /* GET and HEAD only */
	unsigned char read_token_hash[crypto_generichash_BYTES];
	atomic_uint inflight; /* requests between first call and completion */
	atomic_uint_least64_t buffered; /* bytes of API_BODY_BUFFER bodies */
	atomic_int closing;		/* api_begin_shutdown() was called */
	struct api_metrics m;
};

/* The statuses counted by name, and the histograms' bucket bounds. */
extern const unsigned int api_statuses[API_NSTATUS];
extern const double api_buckets[API_NBUCKETS];

/* Add one observation of ns nanoseconds to h. */
void api_hist_observe(struct api_hist *h, uint64_t ns);

/* Nanoseconds since start (CLOCK_MONOTONIC). */
uint64_t api_elapsed_ns(const struct timespec *start);

struct api_request;

/*
 * A route's callbacks. begin runs once the headers are in and the path ids
 * are valid, before any body: it checks the query and what can be checked
 * early, and returns -1 after api_fail() to answer at once. chunk receives
 * each piece of a streamed body (API_BODY_STREAM); it reports a failure
 * with api_fail() and is not called again. handler runs when the whole
 * request is in and queues the answer with one of the api_reply_*().
 */
typedef int (*api_begin_fn)(struct api_request *r);
typedef void (*api_chunk_fn)(struct api_request *r, const char *data,
			     size_t len);
typedef enum MHD_Result (*api_handler_fn)(struct api_request *r);

enum api_body {
	API_BODY_NONE = 0, /* a body is read and ignored */
	API_BODY_JSON,	   /* buffered (at most API_JSON_MAX) into r->buf */
	API_BODY_STREAM,   /* passed chunk by chunk to route->chunk */
	API_BODY_BUFFER,   /* buffered (at most API_BUFFER_MAX) into r->buf */
};

enum api_route_flags {
	API_ROUTE_PUBLIC = 1 << 0, /* no token needed */
	API_ROUTE_PEER = 1 << 1,   /* between nodes: never redirected */
};

struct api_route {
	const char *method;
	const char *pattern; /* "/sessions/{sid}/commit": {x} is an id */
	api_handler_fn handler;
	api_begin_fn begin; /* may be NULL */
	api_chunk_fn chunk; /* API_BODY_STREAM only */
	enum api_body body;
	unsigned int flags;
};

/* The route table (routes.c). */
extern const struct api_route api_routes[];
extern const size_t api_nroutes;

/* The state of one request, from its first call to its completion. */
struct api_request {
	struct api *api;
	struct MHD_Connection *conn;
	const struct api_route *route;
	char method[16];
	char *path; /* owned copy, for the log */
	struct timespec start;
	int started;	/* the access handler has seen the request */
	int bad_path;	/* the raw path decodes to a byte outside 0x20-0x7e */
	int has_raw;	/* api_uri_log saw the raw target... */
	size_t raw_len; /* ...of this length (up to a NUL) */
	int close;	/* answer with Connection: close (broken framing) */

	unsigned int status; /* answered with, 0 until then */
	uint64_t bytes_out;  /* body bytes of the answer */
	uint64_t bytes_in;   /* body bytes received */
	int answered;

	struct store_id ids[API_MAX_PARAMS]; /* path ids, in pattern order */
	size_t nids;
	/* API_TEXT_PARAM: its first bytes, its whole length, whether all
	 * of it is decimal digits */
	char param[24];
	size_t param_len;
	int param_digits;

	/* The error to answer with (the first one recorded wins). */
	unsigned int err_status;
	const char *err_code; /* static */
	char err_msg[256];
	json_t *err_extra;  /* more members of the error object, or NULL */
	char allow[64];	    /* for 405 */
	int has_range_size; /* for 416: Content-Range: bytes * / SIZE */
	uint64_t range_size;

	/* Route state. */
	uint64_t offset; /* PUT memory: where the body goes */
	uint64_t size;	 /* deploy: memory size */
	char *buf;	 /* API_BODY_JSON, _BUFFER: the body, NUL-terminated */
	size_t len, cap;
	uint64_t buffered;	     /* of api->buffered, this request's */
	struct store_upload *upload; /* deploy: the bytecode, in the store */
	char *location;		     /* 307: where to (cluster.c), owned */
};

/* Record an error to answer with; the first one recorded wins. */
void api_fail(struct api_request *r, unsigned int status, const char *code,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Add a member to the recorded error's JSON object (412's "root"); steals
 * value. Ignored when out of memory.
 */
void api_fail_member(struct api_request *r, const char *name, json_t *value);

/* Record a store error, prefixed with what was being done. */
void api_fail_store(struct api_request *r, enum store_err err,
		    const char *what);

/* Queue the recorded error. */
enum MHD_Result api_reply_error(struct api_request *r);

/* Queue a JSON answer; steals j (NULL answers 500 out_of_memory). */
enum MHD_Result api_reply_json(struct api_request *r, unsigned int status,
			       json_t *j);

/* The same with one more header (name NULL: none). */
enum MHD_Result api_reply_json_hdr(struct api_request *r, unsigned int status,
				   json_t *j, const char *name,
				   const char *value);

/*
 * Queue a JSON answer already serialised: body (malloc'd, ending in a
 * newline) is taken over. NULL answers 500 out_of_memory.
 */
enum MHD_Result api_reply_json_text(struct api_request *r, unsigned int status,
				    char *body, size_t len);

/*
 * Queue resp (which this destroys) with status, bytes being the size of its
 * body for the log. Adds the headers every answer carries.
 */
enum MHD_Result api_reply(struct api_request *r, unsigned int status,
			  struct MHD_Response *resp, uint64_t bytes);

/*
 * Queue the memory of fd (size bytes; taken over, closed in every case)
 * (ranges.c): 200 with sendfile, or 206 for the satisfiable ranges of a
 * "bytes=" Range: one range with Content-Range (sendfile), several as
 * multipart/byteranges; 416 with Content-Range when none is satisfiable.
 * Accept-Ranges, and etag ("\"HEX\"" or "" for none) as ETag, which
 * If-Range must name for Range to apply.
 */
enum MHD_Result api_reply_memory(struct api_request *r, int fd, uint64_t size,
				 const char *etag);

/* Queue an empty answer (204). */
enum MHD_Result api_reply_empty(struct api_request *r, unsigned int status);

/*
 * Parse a query argument as a decimal uint64: 0 and *present = 0 when
 * absent, 0 and *present = 1 when valid, -1 when malformed.
 */
int api_query_u64(struct api_request *r, const char *name, uint64_t *out,
		  int *present);

/* Parse a plain decimal uint64 of len bytes; -1 unless valid. */
int api_parse_u64(const char *s, size_t len, uint64_t *out);

/* A request header, or NULL. */
const char *api_header(struct api_request *r, const char *name);

/* JSON string of an id's 64 uppercase hex digits (NULL out of memory). */
json_t *api_json_id(const struct store_id *id);

/* The same, or JSON null when has is 0. */
json_t *api_json_id_or_null(int has, const struct store_id *id);

/* --- cluster mode (cluster.c) ------------------------------------------- */

/*
 * Once the route is known: a write on a follower is answered 307 to the
 * leader (or 503 no_leader); a read with Modstore-Min-Applied waits for
 * that position (503 behind after 2 s). -1 after api_fail().
 */
int api_cluster_gate(struct api_request *r);
/* Around a change of the state: -1 after api_fail() (answer it). */
int api_change_begin(struct api_request *r);
int api_change_end(struct api_request *r, const struct api_change *c);
/* Headers of every answer in cluster mode (Modstore-Applied, Location). */
void api_cluster_headers(struct api_request *r, struct MHD_Response *resp);
/* The cluster's lines of /metrics. */
void api_cluster_metrics(struct api *api, FILE *f);
/* POST /cluster/records/{index}: a record a leader sends (routes.c). */
enum MHD_Result api_cluster_record(struct api_request *r);

#endif /* API_INTERNAL_H */
