/*
 * cluster.c - the api's side of cluster mode (docs/cluster.md): writes
 * on a follower go to the leader with 307, reads wait for
 * Modstore-Min-Applied, every answer says Modstore-Applied, and the
 * routes that change the state do it under the node's write lock and
 * are acknowledged only once their record is in the log. The node itself
 * (election, log, replication) is cluster/node.c, behind struct
 * api_cluster.
 */
#include "api_internal.h"

#include <stdlib.h>
#include <string.h>

/* How long a read waits for Modstore-Min-Applied (the contract's 2 s). */
#define API_MIN_APPLIED_MS 2000U

struct query_buf {
	char *p;
	size_t len, cap;
	int bad;
};

static void query_put(struct query_buf *q, const char *s, size_t n)
{
	char *b;

	if (q->bad)
		return;
	if (q->len + n + 1 > q->cap) {
		q->cap = (q->len + n + 1) * 2 + 64;
		b = realloc(q->p, q->cap);
		if (!b) {
			q->bad = 1;
			return;
		}
		q->p = b;
	}
	memcpy(q->p + q->len, s, n);
	q->len += n;
	q->p[q->len] = '\0';
}

static void query_escaped(struct query_buf *q, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];

	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == '~') {
			query_put(q, s, 1);
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		query_put(q, e, 3);
	}
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind,
				 const char *key, const char *value)
{
	struct query_buf *q = cls;

	(void)kind;
	query_put(q, q->len ? "&" : "?", 1);
	query_escaped(q, key);
	if (value) {
		query_put(q, "=", 1);
		query_escaped(q, value);
	}
	return MHD_YES;
}

/* The same URL on the leader: its base, the path, the query again. */
static int redirect(struct api_request *r, const char *base)
{
	struct query_buf q = {0};
	const char *url = r->path ? r->path : "/";
	size_t n;

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_arg,
				  &q);
	n = strlen(base) + strlen(url) + q.len + 1;
	free(r->location);
	r->location = q.bad ? NULL : malloc(n);
	if (r->location)
		snprintf(r->location, n, "%s%s%s", base, url, q.p ? q.p : "");
	free(q.p);
	if (!r->location) {
		api_fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
			 store_errname(STORE_ENOMEM), "out of memory");
		return -1;
	}
	api_fail(r, MHD_HTTP_TEMPORARY_REDIRECT, "not_leader",
		 "this node follows; the leader is at %s", base);
	return -1;
}

int api_cluster_gate(struct api_request *r)
{
	const struct api_cluster *c = r->api->o.cluster;
	const char *v;
	char url[512];
	uint64_t seq;
	int where;

	if (!c)
		return 0;
	if (strcmp(r->route->method, MHD_HTTP_METHOD_GET) != 0 &&
	    !(r->route->flags & API_ROUTE_PEER)) {
		where = c->leader(c->ctx, url, sizeof(url));
		if (where == 1)
			return redirect(r, url);
		if (where < 0) {
			api_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_leader",
				 "no leader is known; try again");
			return -1;
		}
		return 0;
	}
	v = api_header(r, "Modstore-Min-Applied");
	if (!v)
		return 0;
	if (api_parse_u64(v, strlen(v), &seq) < 0) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_header",
			 "Modstore-Min-Applied must be a position (digits)");
		return -1;
	}
	if (c->wait_applied(c->ctx, seq, API_MIN_APPLIED_MS) < 0) {
		api_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, "behind",
			 "this node has applied %llu, not yet %llu",
			 (unsigned long long)c->applied(c->ctx),
			 (unsigned long long)seq);
		return -1;
	}
	return 0;
}

int api_change_begin(struct api_request *r)
{
	const struct api_cluster *c = r->api->o.cluster;

	if (!c || c->change_begin(c->ctx) == 0)
		return 0;
	api_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, "not_leader",
		 "this node no longer leads; try again");
	return -1;
}

int api_change_end(struct api_request *r, const struct api_change *ch)
{
	const struct api_cluster *c = r->api->o.cluster;
	const char *code = "replication_failed";

	if (!c || c->change_end(c->ctx, ch, &code) == 0)
		return 0;
	api_fail(r, MHD_HTTP_SERVICE_UNAVAILABLE, code,
		 "the change was not acknowledged (%s): it may not be kept",
		 code);
	return -1;
}

void api_cluster_headers(struct api_request *r, struct MHD_Response *resp)
{
	const struct api_cluster *c = r->api->o.cluster;
	char buf[32];

	if (!c)
		return;
	snprintf(buf, sizeof(buf), "%llu",
		 (unsigned long long)c->applied(c->ctx));
	MHD_add_response_header(resp, "Modstore-Applied", buf);
	if (r->location)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
					r->location);
}

void api_cluster_metrics(struct api *api, FILE *f)
{
	const struct api_cluster *c = api->o.cluster;

	if (c && c->metrics)
		c->metrics(c->ctx, f);
}

/* What a follower's refusal of a record means, for its message. */
static const char *hold_why(const char *code)
{
	if (!strcmp(code, "not_a_follower"))
		return "this node does not follow a cluster's leader";
	if (!strcmp(code, "stale_leader"))
		return "the record is not the leader's this node knows";
	if (!strcmp(code, "invalid_body"))
		return "the body is not a record with its pages";
	if (!strcmp(code, "behind"))
		return "this node is behind the record's position";
	return "the record's files could not be held";
}

enum MHD_Result api_cluster_record(struct api_request *r)
{
	const struct api_cluster *c = r->api->o.cluster;
	const char *code = "not_a_follower";
	unsigned int status = MHD_HTTP_CONFLICT;
	uint64_t seq = 0;

	if (!r->param_digits ||
	    api_parse_u64(r->param, r->param_len, &seq) < 0 || !seq) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_index",
			 "the position must be a decimal number from 1");
		return api_reply_error(r);
	}
	if (c && c->hold)
		status =
		    c->hold(c->ctx, seq, r->buf ? r->buf : "", r->len, &code);
	if (status == MHD_HTTP_OK)
		return api_reply_json(
		    r, status, json_pack("{s:I}", "held", (json_int_t)seq));
	api_fail(r, status, code, "record %llu: %s", (unsigned long long)seq,
		 hold_why(code));
	return api_reply_error(r);
}
