/*
 * api.h - the HTTP surface of modstore: libmicrohttpd callbacks that map
 * each route of the v1 contract (http-api.md) to store calls.
 *
 * The api layer never builds a file path and never touches the disk: every
 * byte it serves or receives goes through store.h. Its routes are one table
 * (method, pattern, handler) in routes.c, and one table maps each
 * enum store_err to an HTTP status (api_status_of()).
 *
 * Usage (server/main.c): api_new() once the store is open; pass
 * api_access_handler with the struct api as its closure to
 * MHD_start_daemon(), api_uri_log with the same closure as
 * MHD_OPTION_URI_LOG_CALLBACK, and api_request_completed as
 * MHD_OPTION_NOTIFY_COMPLETED. api_begin_shutdown() when the daemon
 * quiesces, api_wait_idle() to let requests in flight finish, then
 * MHD_stop_daemon(), api_free() and store_close().
 */
#ifndef API_H
#define API_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

struct api;

enum api_log_format {
	API_LOG_TEXT = 0, /* "TIME METHOD PATH STATUS BYTES MS" */
	API_LOG_JSON = 1, /* one JSON object per line */
	API_LOG_NONE = 2, /* no request log */
};

/*
 * Cluster mode (docs/cluster.md): what the api asks of the node
 * (cluster/node.c). Without it (api_options.cluster NULL) none applies.
 */
enum api_change_op {
	API_CHANGE_DEPLOY = 0,
	API_CHANGE_COMMIT,
	API_CHANGE_RESTORE,
	API_CHANGE_DELETE,
	API_CHANGE_PERSIST,
	API_CHANGE_GC,
};

/* A change of the state the store has just made, to be recorded. */
struct api_change {
	enum api_change_op op;
	struct store_id id; /* the module (deploy), the commit */
	uint64_t size;	    /* deploy: memory bytes */
	const struct store_commit_info *ci; /* commit: borrowed */
};

struct api_cluster {
	void *ctx;
	/*
	 * Where writes go: 0 here (this node leads), 1 to the leader, whose
	 * URL goes to url, -1 nowhere (no leader known).
	 */
	int (*leader)(void *ctx, char *url, size_t size);
	/* Take the write lock: 0, or -1 (not taken) when this node no
	 * longer leads. */
	int (*change_begin)(void *ctx);
	/*
	 * Record c (NULL: the store refused it, nothing to record), then
	 * release the lock. 0 when the change is acknowledged; -1 when not,
	 * *code naming why ("not_leader", "replication_failed").
	 */
	int (*change_end)(void *ctx, const struct api_change *c,
			  const char **code);
	uint64_t (*applied)(void *ctx); /* the last record applied */
	/* Wait until applied() >= seq, at most ms: 0 when it is. */
	int (*wait_applied)(void *ctx, uint64_t seq, unsigned int ms);
	void (*metrics)(void *ctx, FILE *f); /* Prometheus text lines */
	/*
	 * A follower is sent record seq by the leader (body, len bytes:
	 * docs/cluster.md, "The write path"): hold its files durably. The
	 * status of the answer: 200 when they are, else *code names why.
	 */
	unsigned int (*hold)(void *ctx, uint64_t seq, const char *body,
			     size_t len, const char **code);
};

struct api_options {
	struct store *store;	  /* borrowed; must outlive the api */
	uint64_t max_module_size; /* bytes; what the store was opened with */
	uint64_t max_body;	  /* largest accepted request body, bytes */
	int auto_persist;	  /* persist the commits store on each commit */
	const char *token;	  /* bearer token, copied; NULL: no auth */
	const char *read_token;	  /* GET and HEAD only, copied; needs token */
	enum api_log_format log_format;
	const struct api_cluster *cluster; /* borrowed; NULL: single node */
};

/* A new api on opts; NULL when out of memory. Free with api_free(). */
struct api *api_new(const struct api_options *opts);

/* Free the api (the store is not closed). NULL is a no-op. */
void api_free(struct api *api);

/* The MHD_AccessHandlerCallback; cls is the struct api. */
enum MHD_Result api_access_handler(void *cls, struct MHD_Connection *conn,
				   const char *url, const char *method,
				   const char *version, const char *upload_data,
				   size_t *upload_data_size, void **req_cls);

/*
 * The MHD_OPTION_URI_LOG_CALLBACK; cls is the struct api. It sees the
 * request-target before libmicrohttpd decodes it, and starts the request's
 * state (the req_cls of api_access_handler) with what only the raw target
 * tells: a path whose decoding holds a NUL or a byte outside printable
 * ASCII, which matches no route. Without it the api still works, but
 * cannot tell "/modules/M%00x" from "/modules/M".
 */
void *api_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);

/*
 * The MHD_RequestCompletedCallback: logs the request line and frees the
 * per-request state. cls is the struct api.
 */
void api_request_completed(void *cls, struct MHD_Connection *conn,
			   void **req_cls, enum MHD_RequestTerminationCode toe);

/*
 * From now on every answer carries "Connection: close", so that kept-alive
 * connections end after their current request.
 */
void api_begin_shutdown(struct api *api);

/*
 * Wait until no request is in flight, or at most timeout_ms milliseconds.
 * Returns the number of requests still in flight (0 when idle).
 */
unsigned int api_wait_idle(struct api *api, unsigned int timeout_ms);

/* The HTTP status of a store error (the one table of the api). */
unsigned int api_status_of(enum store_err err);

/*
 * Write one log line to stderr in the api's format: a message of the
 * server (startup, shutdown, expiry) rather than a request.
 */
void api_log_message(enum api_log_format fmt, const char *level,
		     const char *msg);

/*
 * The route table, read-only: the number of routes, and the method
 * ("GET"...) and pattern ("/sessions/{sid}/commit") of route i (i below
 * api_route_count()). Both strings are static.
 */
size_t api_route_count(void);
void api_route_at(size_t i, const char **method, const char **pattern);

#endif /* API_H */
