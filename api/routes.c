/*
 * routes.c - the route table of the v1 contract and its handlers. Each
 * handler turns path ids, query and body into store calls and the store's
 * answer into JSON or bytes; statuses of store errors come from
 * api_status_of() only.
 */
#include "api.h"
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* --- JSON of store objects ------------------------------------------------ */

static json_t *module_json(const struct store_module_info *mi)
{
	return json_pack("{s:o, s:I, s:o}", "id", api_json_id(&mi->id), "size",
			 (json_int_t)mi->size, "last_commit",
			 api_json_id_or_null(mi->has_commit, &mi->last_commit));
}

static json_t *session_json(const struct store_session_info *si)
{
	return json_pack("{s:o, s:o}", "id", api_json_id(&si->id), "base",
			 api_json_id_or_null(si->has_base, &si->base));
}

/* {MOD: MODCOMMIT, ...} */
static json_t *pairs_json(const struct store_pair *pairs, size_t n)
{
	char hex[STORE_HEX_LEN + 1];
	json_t *o = json_object();
	size_t i;

	for (i = 0; o && i < n; i++) {
		store_id_hex(&pairs[i].module, hex);
		if (json_object_set_new(o, hex,
					api_json_id(&pairs[i].commit))) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

/* The body of reply_commits(), read from the store piece by piece. */
static ssize_t commits_piece(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct store_commits_reader *rd = cls;
	size_t got = 0;

	(void)pos;
	if (store_commits_read(rd, buf, max, &got) != STORE_OK)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return got ? (ssize_t)got : MHD_CONTENT_READER_END_OF_STREAM;
}

static void commits_done(void *cls)
{
	store_commits_reader_close(cls);
}

/*
 * Answer the whole commits store: {COMMIT: {MOD: MODCOMMIT}}, the text of
 * the file `commits`, streamed (chunked): a large store is never held
 * whole in memory.
 */
static enum MHD_Result reply_commits(struct api_request *r)
{
	struct store_commits_reader *rd = NULL;
	struct MHD_Response *resp;
	enum store_err err;

	err = store_commits_reader_open(r->api->o.store, &rd);
	if (err != STORE_OK) {
		api_fail_store(r, err, "listing the commits");
		return api_reply_error(r);
	}
	resp = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, 64 * 1024, commits_piece, rd, commits_done);
	if (!resp) {
		store_commits_reader_close(rd);
		api_fail_store(r, STORE_ENOMEM, "listing the commits");
		return api_reply_error(r);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/json");
	return api_reply(r, MHD_HTTP_OK, resp, 0);
}

/* --- health, root, commits ------------------------------------------------ */

static enum MHD_Result health(struct api_request *r)
{
	return api_reply_json(r, MHD_HTTP_OK,
			      json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result root_get(struct api_request *r)
{
	struct store_id root;
	enum store_err err;
	char hex[STORE_HEX_LEN + 1], etag[STORE_HEX_LEN + 3];

	err = store_root(r->api->o.store, &root);
	if (err != STORE_OK) {
		api_fail_store(r, err, "computing the root");
		return api_reply_error(r);
	}
	store_id_hex(&root, hex);
	snprintf(etag, sizeof(etag), "\"%s\"", hex);
	return api_reply_json_hdr(r, MHD_HTTP_OK,
				  json_pack("{s:s}", "root", hex),
				  MHD_HTTP_HEADER_ETAG, etag);
}

static enum MHD_Result commits_list(struct api_request *r)
{
	return reply_commits(r);
}

static enum MHD_Result commit_get(struct api_request *r)
{
	struct store_pair *pairs = NULL;
	enum store_err err;
	size_t n = 0;
	json_t *j;

	err = store_commit_get(r->api->o.store, &r->ids[0], &pairs, &n);
	if (err != STORE_OK) {
		api_fail_store(r, err, "reading the commit");
		return api_reply_error(r);
	}
	j = pairs_json(pairs, n);
	free(pairs);
	return api_reply_json(r, MHD_HTTP_OK, j);
}

/* A change of the whole state (op), recorded in cluster mode. */
static int change_simple(struct api_request *r, enum api_change_op op,
			 enum store_err err)
{
	struct api_change c = {.op = op};

	if (r->nids)
		c.id = r->ids[0];
	return api_change_end(r, err ? NULL : &c);
}

static enum MHD_Result persist(struct api_request *r)
{
	enum store_err err;

	if (api_change_begin(r) < 0)
		return api_reply_error(r);
	err = store_persist(r->api->o.store);
	if (change_simple(r, API_CHANGE_PERSIST, err) < 0)
		return api_reply_error(r);
	if (err != STORE_OK) {
		api_fail_store(r, err, "persisting the commits store");
		return api_reply_error(r);
	}
	return reply_commits(r);
}

static enum MHD_Result restore(struct api_request *r)
{
	enum store_err err;

	if (api_change_begin(r) < 0)
		return api_reply_error(r);
	err = store_restore(r->api->o.store, &r->ids[0]);
	if (change_simple(r, API_CHANGE_RESTORE, err) < 0)
		return api_reply_error(r);
	if (err != STORE_OK) {
		api_fail_store(r, err, "restoring the commit");
		return api_reply_error(r);
	}
	return reply_commits(r);
}

/* DELETE /commits/{commit}: forgotten, and the files nothing needs go. */
static enum MHD_Result commit_delete(struct api_request *r)
{
	enum store_err err;

	if (api_change_begin(r) < 0)
		return api_reply_error(r);
	err = store_commit_delete(r->api->o.store, &r->ids[0]);
	if (change_simple(r, API_CHANGE_DELETE, err) < 0)
		return api_reply_error(r);
	if (err != STORE_OK) {
		api_fail_store(r, err, "deleting the commit");
		return api_reply_error(r);
	}
	return api_reply_empty(r, MHD_HTTP_NO_CONTENT);
}

/* POST /gc: the module commit files nothing needs are removed. */
static enum MHD_Result gc(struct api_request *r)
{
	struct store_gc_info info;
	enum store_err err;

	if (api_change_begin(r) < 0)
		return api_reply_error(r);
	err = store_gc(r->api->o.store, &info);
	if (change_simple(r, API_CHANGE_GC, err) < 0)
		return api_reply_error(r);
	if (err != STORE_OK) {
		api_fail_store(r, err, "collecting unneeded files");
		return api_reply_error(r);
	}
	return api_reply_json(r, MHD_HTTP_OK,
			      json_pack("{s:I, s:I}", "removed_files",
					(json_int_t)info.removed_files,
					"freed_bytes",
					(json_int_t)info.freed_bytes));
}

/* --- metrics -------------------------------------------------------------- */

static void metric_head(FILE *f, const char *name, const char *type,
			const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_hist(FILE *f, const char *name, const char *help,
			struct api_hist *h)
{
	uint64_t cum = 0;
	size_t i;

	metric_head(f, name, "histogram", help);
	for (i = 0; i <= API_NBUCKETS; i++) {
		cum += atomic_load(&h->bucket[i]);
		if (i < API_NBUCKETS)
			fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name,
				api_buckets[i], (unsigned long long)cum);
		else
			fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name,
				(unsigned long long)cum);
	}
	fprintf(f, "%s_sum %.9f\n", name,
		(double)atomic_load(&h->sum_ns) / 1e9);
	/* the count is the +Inf bucket, read once, so that they agree */
	fprintf(f, "%s_count %llu\n", name, (unsigned long long)cum);
}

static void metric_gauge(FILE *f, const char *name, const char *type,
			 const char *help, uint64_t v)
{
	metric_head(f, name, type, help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

/* GET /metrics: the Prometheus text format, version 0.0.4. */
/* modstore_http_requests_total, by method, route pattern and status. */
static void metric_requests(FILE *f, struct api_metrics *m)
{
	char status[16];
	size_t i, k;
	uint64_t v;

	metric_head(f, "modstore_http_requests_total", "counter",
		    "HTTP requests answered, by method, route pattern and "
		    "status.");
	for (i = 0; i <= api_nroutes; i++) {
		size_t ri = i < api_nroutes ? i : API_MAX_ROUTES;

		for (k = 0; k <= API_NSTATUS; k++) {
			v = atomic_load(&m->requests[ri][k]);
			if (!v)
				continue;
			if (k < API_NSTATUS)
				snprintf(status, sizeof(status), "%u",
					 api_statuses[k]);
			else
				snprintf(status, sizeof(status), "other");
			fprintf(f,
				"modstore_http_requests_total{method=\"%s\","
				"route=\"%s\",status=\"%s\"} %llu\n",
				i < api_nroutes ? api_routes[i].method : "",
				i < api_nroutes ? api_routes[i].pattern
						: "unmatched",
				status, (unsigned long long)v);
		}
	}
}

/* The figures of the store and the api, as Prometheus text into f. */
static void metrics_write(FILE *f, struct api_metrics *m,
			  const struct store_stats *st)
{
	metric_requests(f, m);
	metric_hist(f, "modstore_http_request_duration_seconds",
		    "Time from a request's first byte to its completion.",
		    &m->request_seconds);
	metric_hist(f, "modstore_commit_duration_seconds",
		    "Time of the store's commit of a session (durable on "
		    "return).",
		    &m->commit_seconds);
	metric_gauge(f, "modstore_http_received_bytes_total", "counter",
		     "Bytes of request bodies received.",
		     atomic_load(&m->bytes_received));
	metric_gauge(f, "modstore_http_sent_bytes_total", "counter",
		     "Bytes of answer bodies sent.",
		     atomic_load(&m->bytes_sent));
	metric_gauge(f, "modstore_written_bytes_total", "counter",
		     "Module memory written to disk by the store since it "
		     "opened.",
		     st->bytes_written);
	metric_gauge(f, "modstore_sessions_open", "gauge", "Sessions open now.",
		     st->sessions);
	metric_gauge(f, "modstore_session_memory_bytes", "gauge",
		     "Bytes of sessions' written pages held in memory.",
		     st->session_memory);
	metric_gauge(f, "modstore_modules", "gauge", "Modules deployed.",
		     st->modules);
	metric_gauge(f, "modstore_commits", "gauge",
		     "Commits in the commits store.", st->commits);
	metric_gauge(f, "modstore_commits_deleted_total", "counter",
		     "Commits deleted, by DELETE and --keep-commits, since the "
		     "store opened.",
		     st->commits_deleted);
	metric_gauge(f, "modstore_files_removed_total", "counter",
		     "Module commit files removed by delete and gc since the "
		     "store opened.",
		     st->files_removed);
	metric_gauge(f, "modstore_freed_bytes_total", "counter",
		     "Bytes the removed module commit files had allocated.",
		     st->bytes_freed);
	metric_head(f, "modstore_temp_files_total", "counter",
		    "Temporary files of commits and restores, by how they "
		    "came: named from the files made ahead, or made when "
		    "asked for.");
	fprintf(f, "modstore_temp_files_total{how=\"pool\"} %llu\n",
		(unsigned long long)st->tmp_pooled);
	fprintf(f, "modstore_temp_files_total{how=\"made\"} %llu\n",
		(unsigned long long)st->tmp_made);
	metric_gauge(f, "modstore_disk_bytes", "gauge",
		     "Bytes allocated on disk by the state directory.",
		     st->bytes_on_disk);
}

/* The tree cache of proofs and diffs (--tree-cache-size). */
static void metrics_tree_cache(FILE *f, struct store *s)
{
	struct store_tree_cache_stats tc;

	store_tree_cache_stats(s, &tc);
	metric_gauge(f, "modstore_tree_cache_bytes", "gauge",
		     "Bytes of page trees of older module commits kept for "
		     "proofs and diffs.",
		     tc.bytes);
	metric_gauge(f, "modstore_tree_cache_limit_bytes", "gauge",
		     "The bound on modstore_tree_cache_bytes "
		     "(--tree-cache-size).",
		     tc.limit);
	metric_gauge(f, "modstore_tree_cache_trees", "gauge",
		     "Page trees in the tree cache.", tc.trees);
	metric_gauge(f, "modstore_tree_rebuilds_total", "counter",
		     "Page trees rebuilt by hashing a commit file, since the "
		     "store opened.",
		     tc.builds);
}

static enum MHD_Result metrics(struct api_request *r)
{
	struct api_metrics *m = &r->api->m;
	struct MHD_Response *resp = NULL;
	struct store_stats st;
	enum store_err err;
	char *text = NULL;
	size_t len = 0;
	FILE *f = NULL;

	err = store_get_stats(r->api->o.store, &st);
	if (err != STORE_OK) {
		api_fail_store(r, err, "reading the store's figures");
		goto out;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		api_fail_store(r, STORE_ENOMEM, "building the metrics");
		goto out;
	}
	metrics_write(f, m, &st);
	metrics_tree_cache(f, r->api->o.store);
	api_cluster_metrics(r->api, f);
	if (fclose(f) != 0) {
		f = NULL;
		api_fail_store(r, STORE_ENOMEM, "building the metrics");
		goto out;
	}
	f = NULL;
	resp =
	    MHD_create_response_from_buffer_with_free_callback(len, text, free);
	if (!resp) {
		api_fail_store(r, STORE_ENOMEM, "building the metrics");
		goto out;
	}
	text = NULL; /* the response owns it */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
out:
	if (f)
		fclose(f);
	free(text);
	if (!resp)
		return api_reply_error(r);
	return api_reply(r, MHD_HTTP_OK, resp, len);
}

/* --- modules -------------------------------------------------------------- */

static enum MHD_Result modules_list(struct api_request *r)
{
	struct store_module_info *mods = NULL;
	enum store_err err;
	json_t *arr = NULL, *j = NULL;
	size_t i, n = 0;

	err = store_module_list(r->api->o.store, &mods, &n);
	if (err != STORE_OK) {
		api_fail_store(r, err, "listing the modules");
		return api_reply_error(r);
	}
	arr = json_array();
	for (i = 0; arr && i < n; i++) {
		if (json_array_append_new(arr, module_json(&mods[i]))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	if (arr)
		j = json_pack("{s:o}", "modules", arr);
	free(mods);
	return api_reply_json(r, MHD_HTTP_OK, j);
}

static int deploy_begin(struct api_request *r)
{
	enum store_err err;
	int present;

	if (api_query_u64(r, "size", &r->size, &present) < 0 ||
	    (present && (r->size == 0 || r->size % STORE_PAGE_SIZE))) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_size",
			 "size must be a positive multiple of %d",
			 STORE_PAGE_SIZE);
		return -1;
	}
	if (!present)
		r->size = STORE_DEFAULT_MEMORY;
	if (r->size > r->api->o.max_module_size) {
		api_fail(r, MHD_HTTP_CONTENT_TOO_LARGE,
			 store_errname(STORE_ETOOBIG),
			 "size %llu is above the maximum module size %llu",
			 (unsigned long long)r->size,
			 (unsigned long long)r->api->o.max_module_size);
		return -1;
	}
	/* the body goes to the store as it comes (at most --max-body) */
	err = store_upload_new(r->api->o.store, &r->upload);
	if (err != STORE_OK) {
		api_fail_store(r, err, "receiving the bytecode");
		return -1;
	}
	return 0;
}

static void deploy_chunk(struct api_request *r, const char *data, size_t len)
{
	enum store_err err = store_upload_write(r->upload, data, len);

	if (err != STORE_OK)
		api_fail_store(r, err, "receiving the bytecode");
}

/* POST /modules: the module of the body, which the store keeps. */
static enum MHD_Result deploy(struct api_request *r)
{
	struct api_change ch = {.op = API_CHANGE_DEPLOY};
	struct store_module_info info = {0};
	enum store_err err;
	int created = 0;

	if (!r->bytes_in) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_body",
			 "the body must be the module's bytecode (not empty)");
		return api_reply_error(r);
	}
	if (api_change_begin(r) < 0)
		return api_reply_error(r);
	err = store_deploy_upload(r->api->o.store, r->upload, r->size, &info,
				  &created);
	ch.id = info.id;
	ch.size = info.size;
	if (api_change_end(r, err || !created ? NULL : &ch) < 0)
		return api_reply_error(r);
	if (err != STORE_OK) {
		api_fail_store(r, err, "deploying the module");
		return api_reply_error(r);
	}
	return api_reply_json(r, created ? MHD_HTTP_CREATED : MHD_HTTP_OK,
			      module_json(&info));
}

static enum MHD_Result module_get(struct api_request *r)
{
	struct store_module_info info;
	enum store_err err;

	err = store_module_get(r->api->o.store, &r->ids[0], &info);
	if (err != STORE_OK) {
		api_fail_store(r, err, "reading the module");
		return api_reply_error(r);
	}
	return api_reply_json(r, MHD_HTTP_OK, module_json(&info));
}

/*
 * GET /modules/{mod}/bytecode: the bytes whose hash is the module id,
 * checked by the store, from their file (sendfile); ETag "MOD".
 */
static enum MHD_Result module_bytecode(struct api_request *r)
{
	struct MHD_Response *resp = NULL;
	enum store_err err;
	char hex[STORE_HEX_LEN + 1], etag[STORE_HEX_LEN + 3];
	uint64_t len = 0;
	int fd = -1;

	err = store_bytecode_open(r->api->o.store, &r->ids[0], &fd, &len);
	if (err != STORE_OK) {
		api_fail_store(r, err, "opening the module's bytecode");
		goto out;
	}
	resp = MHD_create_response_from_fd64(len, fd);
	if (!resp) {
		api_fail_store(r, STORE_ENOMEM, "serving the bytecode");
		goto out;
	}
	fd = -1; /* the response owns it */
	store_id_hex(&r->ids[0], hex);
	snprintf(etag, sizeof(etag), "\"%s\"", hex);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/octet-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
out:
	if (fd >= 0)
		close(fd);
	if (!resp)
		return api_reply_error(r);
	return api_reply(r, MHD_HTTP_OK, resp, len);
}

/* "\"HEX\"" of id into etag. */
static void etag_of(const struct store_id *id, char etag[STORE_HEX_LEN + 3])
{
	char hex[STORE_HEX_LEN + 1];

	store_id_hex(id, hex);
	snprintf(etag, STORE_HEX_LEN + 3, "\"%s\"", hex);
}

static enum MHD_Result module_memory(struct api_request *r)
{
	struct store_module_info info;
	enum store_err err;
	char etag[STORE_HEX_LEN + 3] = "";
	int fd = -1;

	err = store_module_open(r->api->o.store, &r->ids[0], &fd, &info);
	if (err != STORE_OK) {
		api_fail_store(r, err, "opening the module's memory");
		return api_reply_error(r);
	}
	if (info.has_commit)
		etag_of(&info.last_commit, etag);
	return api_reply_memory(r, fd, info.size, etag);
}

/*
 * GET /commits/{commit}/modules/{mod}/memory: the module's memory as the
 * commit holds it, from its commit file (sendfile), with ETag "MC" and
 * ranges as GET /modules/{mod}/memory.
 */
static enum MHD_Result commit_memory(struct api_request *r)
{
	struct store_id mc;
	enum store_err err;
	char etag[STORE_HEX_LEN + 3];
	uint64_t size = 0;
	int fd = -1;

	err = store_commit_module(r->api->o.store, &r->ids[0], &r->ids[1], &mc);
	if (err == STORE_OK)
		err = store_commit_open(r->api->o.store, &r->ids[0], &r->ids[1],
					&fd, &size);
	if (err != STORE_OK) {
		api_fail_store(r, err,
			       "opening the module's memory in the "
			       "commit");
		return api_reply_error(r);
	}
	etag_of(&mc, etag);
	return api_reply_memory(r, fd, size, etag);
}

/* --- proofs and diffs ----------------------------------------------------- */

/* Append the 64 hex digits of id, quoted. */
static char *put_id(char *p, const struct store_id *id)
{
	*p++ = '"';
	store_id_hex(id, p);
	p += STORE_HEX_LEN;
	*p++ = '"';
	return p;
}

/* Append ["HEX",...] of n ids. */
static char *put_ids(char *p, const struct store_id *ids, size_t n)
{
	size_t i;

	*p++ = '[';
	for (i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		p = put_id(p, &ids[i]);
	}
	*p++ = ']';
	return p;
}

/*
 * Standard base64 (RFC 4648, with padding) of len bytes into out, which
 * holds 4 * ((len + 2) / 3) bytes; the end. A page is not secret: no need
 * for sodium_bin2base64's constant time, which cost a tenth of a proof.
 */
static char *put_base64(char *out, const unsigned char *in, size_t len)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;
	uint32_t v;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		*out++ = t[v >> 18];
		*out++ = t[v >> 12 & 63];
		*out++ = t[v >> 6 & 63];
		*out++ = t[v & 63];
	}
	if (i < len) {
		v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		*out++ = t[v >> 18];
		*out++ = t[v >> 12 & 63];
		*out++ = i + 1 < len ? t[v >> 6 & 63] : '=';
		*out++ = '=';
	}
	return out;
}

/*
 * The proof as http-api.md gives it, written directly (a proof is at most
 * about 14 KiB: a page in base64 and two paths of at most 64 ids). NULL
 * when out of memory.
 */
static char *proof_text(const struct store_page_proof *pf, size_t *len)
{
	size_t b64 = sodium_base64_ENCODED_LEN(STORE_PAGE_SIZE,
					       sodium_base64_VARIANT_ORIGINAL);
	size_t cap =
	    512 + b64 +
	    (pf->page_path_len + pf->module_path_len) * (STORE_HEX_LEN + 3);
	char *b = malloc(cap), *p;

	if (!b)
		return NULL;
	p = b;
	p += sprintf(p, "{\"commit\":");
	p = put_id(p, &pf->commit);
	p += sprintf(p, ",\"module\":");
	p = put_id(p, &pf->module);
	p += sprintf(p, ",\"module_commit\":");
	p = put_id(p, &pf->module_commit);
	p += sprintf(p, ",\"page_index\":%llu,\"page_count\":%llu,\"page\":\"",
		     (unsigned long long)pf->page_index,
		     (unsigned long long)pf->page_count);
	p = put_base64(p, pf->page, STORE_PAGE_SIZE);
	p += sprintf(p, "\",\"page_path\":");
	p = put_ids(p, pf->page_path, pf->page_path_len);
	p += sprintf(p,
		     ",\"module_index\":%llu,\"module_count\":%llu,"
		     "\"module_path\":",
		     (unsigned long long)pf->module_index,
		     (unsigned long long)pf->module_count);
	p = put_ids(p, pf->module_path, pf->module_path_len);
	p += sprintf(p, "}\n");
	*len = (size_t)(p - b);
	return b;
}

/* GET /commits/{commit}/modules/{mod}/pages/{index}: a page and its proof. */
static enum MHD_Result page_proof(struct api_request *r)
{
	struct store_page_proof *pf = NULL;
	enum store_err err;
	uint64_t index;
	char *body = NULL;
	size_t len = 0;

	if (!r->param_digits) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_index",
			 "the page index must be a decimal number");
		goto out;
	}
	/* a number too large for 64 bits is past the end all the same */
	if (api_parse_u64(r->param,
			  r->param_len < sizeof(r->param) ? r->param_len
							  : sizeof(r->param),
			  &index) < 0)
		index = UINT64_MAX;
	pf = malloc(sizeof(*pf));
	if (!pf) {
		api_fail_store(r, STORE_ENOMEM, "proving the page");
		goto out;
	}
	err = store_page_proof(r->api->o.store, &r->ids[0], &r->ids[1], index,
			       pf);
	if (err == STORE_ERANGE) {
		api_fail(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, store_errname(err),
			 "page %s is past the end of the module's %llu pages",
			 r->param, (unsigned long long)pf->page_count);
		goto out;
	}
	if (err != STORE_OK) {
		api_fail_store(r, err, "proving the page");
		goto out;
	}
	body = proof_text(pf, &len);
	free(pf);
	return api_reply_json_text(r, MHD_HTTP_OK, body, len);
out:
	free(pf);
	return api_reply_error(r);
}

/* Append an id or null. */
static char *put_id_or_null(char *p, int has, const struct store_id *id)
{
	if (has)
		return put_id(p, id);
	memcpy(p, "null", 4);
	return p + 4;
}

/* Append a size or null. */
static char *put_size_or_null(char *p, int has, uint64_t v)
{
	if (has)
		return p + sprintf(p, "%llu", (unsigned long long)v);
	memcpy(p, "null", 4);
	return p + 4;
}

/*
 * The diff as http-api.md gives it, written directly: its pages are at
 * most the store's max_diff_pages, 21 bytes each at most. NULL when out
 * of memory.
 */
static char *diff_text(const struct store_id *from, const struct store_id *to,
		       const struct store_diff *d, int pages, size_t *len)
{
	size_t cap = 256 + d->n * 512 + d->total_pages * 21, i, k;
	char *b = malloc(cap), *p;

	if (!b)
		return NULL;
	p = b;
	p += sprintf(p, "{\"from\":");
	p = put_id(p, from);
	p += sprintf(p, ",\"to\":");
	p = put_id(p, to);
	p += sprintf(p, ",\"modules\":[");
	for (i = 0; i < d->n; i++) {
		const struct store_diff_module *m = &d->m[i];

		if (i)
			*p++ = ',';
		p += sprintf(p, "{\"id\":");
		p = put_id(p, &m->module);
		p += sprintf(p, ",\"from\":");
		p = put_id_or_null(p, m->has_from, &m->from);
		p += sprintf(p, ",\"to\":");
		p = put_id_or_null(p, m->has_to, &m->to);
		p += sprintf(p, ",\"size_from\":");
		p = put_size_or_null(p, m->has_from, m->size_from);
		p += sprintf(p, ",\"size_to\":");
		p = put_size_or_null(p, m->has_to, m->size_to);
		if (pages) {
			p += sprintf(p, ",\"pages\":[");
			for (k = 0; k < m->npages; k++)
				p += sprintf(p, k ? ",%llu" : "%llu",
					     (unsigned long long)m->pages[k]);
			*p++ = ']';
		}
		*p++ = '}';
	}
	p += sprintf(p, "]}\n");
	*len = (size_t)(p - b);
	return b;
}

/* GET /commits/{from}/diff/{to}[?pages=0]: the modules and pages that differ.
 */
static enum MHD_Result commit_diff(struct api_request *r)
{
	struct store_diff d;
	enum store_err err;
	uint64_t pages = 1;
	char *body;
	size_t len = 0;
	int present;

	if (api_query_u64(r, "pages", &pages, &present) < 0 || pages > 1) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, store_errname(STORE_EINVAL),
			 "pages must be 0 (leave the pages out) or 1");
		return api_reply_error(r);
	}
	if (!present)
		pages = 1;
	err = store_commit_diff(r->api->o.store, &r->ids[0], &r->ids[1],
				(int)pages, &d);
	if (err == STORE_ETOOBIG) {
		api_fail(r, MHD_HTTP_CONTENT_TOO_LARGE, store_errname(err),
			 "the diff lists more pages than the server's limit "
			 "(--max-diff-pages); ?pages=0 leaves them out");
		return api_reply_error(r);
	}
	if (err != STORE_OK) {
		api_fail_store(r, err, "comparing the commits");
		return api_reply_error(r);
	}
	body = diff_text(&r->ids[0], &r->ids[1], &d, (int)pages, &len);
	store_diff_release(&d);
	return api_reply_json_text(r, MHD_HTTP_OK, body, len);
}

/* --- sessions ------------------------------------------------------------- */

static enum MHD_Result session_begin(struct api_request *r)
{
	struct store_session_info info;
	struct store_id base;
	const struct store_id *basep = NULL;
	enum store_err err;
	json_error_t jerr;
	json_t *body = NULL, *b;
	const char *hex;

	if (r->len) {
		body =
		    json_loadb(r->buf, r->len, JSON_REJECT_DUPLICATES, &jerr);
		if (!body) {
			api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_json",
				 "the body is not JSON: %s (line %d)",
				 jerr.text, jerr.line);
			goto fail;
		}
		if (!json_is_object(body)) {
			api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_json",
				 "the body must be a JSON object");
			goto fail;
		}
		b = json_object_get(body, "base");
		if (b && !json_is_null(b)) {
			hex = json_string_value(b);
			if (!hex ||
			    store_id_parse(&base, hex, json_string_length(b)) !=
				STORE_OK) {
				api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_id",
					 "base must be a commit id "
					 "(64 hex digits)");
				goto fail;
			}
			basep = &base;
		}
	}
	err = store_session_begin(r->api->o.store, basep, &info);
	if (err != STORE_OK) {
		api_fail_store(r, err, "opening a session");
		goto fail;
	}
	json_decref(body);
	return api_reply_json(r, MHD_HTTP_CREATED, session_json(&info));
fail:
	json_decref(body);
	return api_reply_error(r);
}

static enum MHD_Result sessions_list(struct api_request *r)
{
	struct store_session_info *v = NULL;
	enum store_err err;
	json_t *arr, *j = NULL;
	size_t i, n = 0;

	err = store_session_list(r->api->o.store, &v, &n);
	if (err != STORE_OK) {
		api_fail_store(r, err, "listing the sessions");
		return api_reply_error(r);
	}
	arr = json_array();
	for (i = 0; arr && i < n; i++) {
		if (json_array_append_new(arr, session_json(&v[i]))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	if (arr)
		j = json_pack("{s:o}", "sessions", arr);
	free(v);
	return api_reply_json(r, MHD_HTTP_OK, j);
}

static enum MHD_Result session_drop(struct api_request *r)
{
	enum store_err err = store_session_drop(r->api->o.store, &r->ids[0]);

	if (err != STORE_OK) {
		api_fail_store(r, err, "dropping the session");
		return api_reply_error(r);
	}
	return api_reply_empty(r, MHD_HTTP_NO_CONTENT);
}

/* Session memory streamed to the client a block at a time. */
struct mem_reader {
	struct store *store;
	struct store_id sid, mod;
	uint64_t off, len;
};

static ssize_t mem_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct mem_reader *mr = cls;
	size_t n;

	if (pos >= mr->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = mr->len - pos < max ? (size_t)(mr->len - pos) : max;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	if (store_session_read(mr->store, &mr->sid, &mr->mod, mr->off + pos,
			       buf, n) != STORE_OK)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return (ssize_t)n;
}

static enum MHD_Result session_read(struct api_request *r)
{
	struct MHD_Response *resp = NULL;
	struct mem_reader *mr = NULL;
	enum store_err err;
	uint64_t size, off, len = 0;
	int has_off, has_len;

	err =
	    store_session_size(r->api->o.store, &r->ids[0], &r->ids[1], &size);
	if (err != STORE_OK) {
		api_fail_store(r, err, "reading the session's memory");
		goto out;
	}
	if (api_query_u64(r, "offset", &off, &has_off) < 0) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_offset",
			 "offset must be a decimal number of bytes");
		goto out;
	}
	if (api_query_u64(r, "length", &len, &has_len) < 0) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_length",
			 "length must be a decimal number of bytes");
		goto out;
	}
	if (off > size || (has_len && len > size - off)) {
		r->has_range_size = 1;
		r->range_size = size;
		api_fail(r, MHD_HTTP_RANGE_NOT_SATISFIABLE,
			 store_errname(STORE_ERANGE),
			 "offset %llu and length %llu go past the %llu bytes "
			 "of memory",
			 (unsigned long long)off, (unsigned long long)len,
			 (unsigned long long)size);
		goto out;
	}
	if (!has_len)
		len = size - off;
	if (!len) {
		resp = MHD_create_response_from_buffer(0, NULL,
						       MHD_RESPMEM_PERSISTENT);
	} else if (len <= API_READ_SMALL) {
		/*
		 * A small read is copied whole: libmicrohttpd then sends the
		 * headers and the body in one round (one writev, or two TLS
		 * records back to back) rather than a round for each.
		 */
		char *buf = malloc((size_t)len);

		if (!buf)
			goto nomem;
		err = store_session_read(r->api->o.store, &r->ids[0],
					 &r->ids[1], off, buf, (size_t)len);
		if (err != STORE_OK) {
			free(buf);
			api_fail_store(r, err, "reading the session's memory");
			goto out;
		}
		resp = MHD_create_response_from_buffer_with_free_callback(
		    (size_t)len, buf, free);
		if (!resp)
			free(buf);
	} else {
		/* Read from the store a block at a time as MHD sends. */
		mr = malloc(sizeof(*mr));
		if (!mr)
			goto nomem;
		mr->store = r->api->o.store;
		mr->sid = r->ids[0];
		mr->mod = r->ids[1];
		mr->off = off;
		mr->len = len;
		/*
		 * MHD callocs the block for every response: no larger than
		 * the read, or a 64-byte read zeroes 64 KiB (a fifth of the
		 * daemon's instructions per small read, bench/README.md).
		 */
		resp = MHD_create_response_from_callback(
		    len, len < API_READ_BLOCK ? (size_t)len : API_READ_BLOCK,
		    mem_read, mr, free);
		if (resp)
			mr = NULL; /* the response owns it */
	}
	if (!resp)
		goto nomem;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/octet-stream");
	goto out;
nomem:
	api_fail_store(r, STORE_ENOMEM, "reading memory");
out:
	free(mr);
	if (!resp)
		return api_reply_error(r);
	return api_reply(r, MHD_HTTP_OK, resp, len);
}

static int session_write_begin(struct api_request *r)
{
	const char *cl = api_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t max = r->api->o.max_module_size, len = 0, size, end;
	enum store_err err;
	int present;

	if (api_query_u64(r, "offset", &r->offset, &present) < 0) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_offset",
			 "offset must be a decimal number of bytes");
		return -1;
	}
	/* As store_session_write: the memory grows to whole pages. */
	if (cl && api_parse_u64(cl, strlen(cl), &len) == 0 && len &&
	    (r->offset > max || len > max - r->offset ||
	     (end = r->offset + len,
	      (end + STORE_PAGE_SIZE - 1) / STORE_PAGE_SIZE >
		  max / STORE_PAGE_SIZE))) {
		api_fail(r, MHD_HTTP_CONTENT_TOO_LARGE,
			 store_errname(STORE_ETOOBIG),
			 "writing %llu bytes at %llu would exceed the maximum "
			 "module size %llu",
			 (unsigned long long)len, (unsigned long long)r->offset,
			 (unsigned long long)max);
		return -1;
	}
	err =
	    store_session_size(r->api->o.store, &r->ids[0], &r->ids[1], &size);
	if (err != STORE_OK) {
		api_fail_store(r, err, "writing the session's memory");
		return -1;
	}
	return 0;
}

static void session_write_chunk(struct api_request *r, const char *data,
				size_t len)
{
	/* bytes_in already counts this chunk. */
	uint64_t at = r->offset + (r->bytes_in - len);
	enum store_err err;

	err = store_session_write(r->api->o.store, &r->ids[0], &r->ids[1], at,
				  data, len);
	if (err != STORE_OK)
		api_fail_store(r, err, "writing the session's memory");
}

static enum MHD_Result session_write(struct api_request *r)
{
	return api_reply_empty(r, MHD_HTTP_NO_CONTENT);
}

/*
 * If-Match of a commit: "ROOT" (quoted or bare, either case), or * for no
 * check. 1 with *root set, 0 when there is nothing to check, -1 when
 * malformed.
 */
static int if_match_parse(const char *v, struct store_id *root)
{
	size_t n;

	if (!v)
		return 0;
	while (*v == ' ')
		v++;
	n = strlen(v);
	while (n && v[n - 1] == ' ')
		n--;
	if (n == 1 && *v == '*')
		return 0;
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	return store_id_parse(root, v, n) == STORE_OK ? 1 : -1;
}

/*
 * The answer to a commit, {"commit":C,"base":B,"modules":{MOD:MC,...}},
 * written directly: it names every module, and building it as Jansson
 * values cost more than the rest of a small commit. Ids are hex digits, so
 * nothing needs escaping. NULL when out of memory.
 */
static char *commit_text(const struct store_commit_info *ci, size_t *len)
{
	size_t cap = 64 + 3 * (STORE_HEX_LEN + 2) +
		     ci->n * (2 * (STORE_HEX_LEN + 2) + 2);
	char *b = malloc(cap), *p;
	size_t i;

	if (!b)
		return NULL;
	p = b;
	p += sprintf(p, "{\"commit\":\"");
	store_id_hex(&ci->id, p);
	p += STORE_HEX_LEN;
	p += sprintf(p, "\",\"base\":");
	if (ci->has_base) {
		*p++ = '"';
		store_id_hex(&ci->base, p);
		p += STORE_HEX_LEN;
		*p++ = '"';
	} else {
		p += sprintf(p, "null");
	}
	p += sprintf(p, ",\"modules\":{");
	for (i = 0; i < ci->n; i++) {
		if (i)
			*p++ = ',';
		*p++ = '"';
		store_id_hex(&ci->pairs[i].module, p);
		p += STORE_HEX_LEN;
		*p++ = '"';
		*p++ = ':';
		*p++ = '"';
		store_id_hex(&ci->pairs[i].commit, p);
		p += STORE_HEX_LEN;
		*p++ = '"';
	}
	p += sprintf(p, "}}\n");
	*len = (size_t)(p - b);
	return b;
}

static enum MHD_Result session_commit(struct api_request *r)
{
	struct api_change ch = {.op = API_CHANGE_COMMIT};
	struct store_commit_info ci = {0};
	struct timespec t0;
	struct store_id root;
	enum store_err err;
	char hex[STORE_HEX_LEN + 1], *body;
	size_t len = 0;
	int m;

	m = if_match_parse(api_header(r, MHD_HTTP_HEADER_IF_MATCH), &root);
	if (m < 0) {
		api_fail(r, MHD_HTTP_BAD_REQUEST, "invalid_id",
			 "If-Match must be \"ROOT\" (64 hex digits) or *");
		return api_reply_error(r);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (api_change_begin(r) < 0)
		return api_reply_error(r);
	err = store_session_commit(r->api->o.store, &r->ids[0],
				   m ? &root : NULL, &ci);
	ch.id = ci.id;
	ch.ci = &ci;
	if (api_change_end(r, err ? NULL : &ch) < 0) {
		store_commit_info_release(&ci);
		return api_reply_error(r);
	}
	if (err == STORE_OK)
		api_hist_observe(&r->api->m.commit_seconds,
				 api_elapsed_ns(&t0));
	if (err != STORE_OK) {
		api_fail_store(r, err, "committing the session");
		/* a 412 names the current root (contract v1.1) */
		if (err == STORE_EMISMATCH &&
		    store_root(r->api->o.store, &root) == STORE_OK)
			api_fail_member(r, "root", api_json_id(&root));
		return api_reply_error(r);
	}
	if (r->api->o.auto_persist) {
		err = store_persist(r->api->o.store);
		if (err != STORE_OK) {
			store_id_hex(&ci.id, hex);
			api_fail(r, api_status_of(err), store_errname(err),
				 "committed %s, but persisting the commits "
				 "store failed: %s",
				 hex, store_strerror(err));
			store_commit_info_release(&ci);
			return api_reply_error(r);
		}
	}
	body = commit_text(&ci, &len);
	store_commit_info_release(&ci);
	return api_reply_json_text(r, MHD_HTTP_CREATED, body, len);
}

/* --- the table ------------------------------------------------------------ */

#define GET    MHD_HTTP_METHOD_GET
#define POST   MHD_HTTP_METHOD_POST
#define PUT    MHD_HTTP_METHOD_PUT
#define DELETE MHD_HTTP_METHOD_DELETE

const struct api_route api_routes[] = {
    /* method  pattern                          handler  begin  chunk body */
    {GET, "/health", health, NULL, NULL, API_BODY_NONE, API_ROUTE_PUBLIC},
    {GET, "/root", root_get, NULL, NULL, API_BODY_NONE, 0},
    {GET, "/modules", modules_list, NULL, NULL, API_BODY_NONE, 0},
    {POST, "/modules", deploy, deploy_begin, deploy_chunk, API_BODY_STREAM, 0},
    {GET, "/modules/{mod}", module_get, NULL, NULL, API_BODY_NONE, 0},
    {GET, "/modules/{mod}/memory", module_memory, NULL, NULL, API_BODY_NONE, 0},
    {GET, "/modules/{mod}/bytecode", module_bytecode, NULL, NULL, API_BODY_NONE,
     0},
    {POST, "/sessions", session_begin, NULL, NULL, API_BODY_JSON, 0},
    {GET, "/sessions", sessions_list, NULL, NULL, API_BODY_NONE, 0},
    {DELETE, "/sessions/{sid}", session_drop, NULL, NULL, API_BODY_NONE, 0},
    {GET, "/sessions/{sid}/modules/{mod}/memory", session_read, NULL, NULL,
     API_BODY_NONE, 0},
    {PUT, "/sessions/{sid}/modules/{mod}/memory", session_write,
     session_write_begin, session_write_chunk, API_BODY_STREAM, 0},
    {POST, "/sessions/{sid}/commit", session_commit, NULL, NULL, API_BODY_NONE,
     0},
    {GET, "/commits", commits_list, NULL, NULL, API_BODY_NONE, 0},
    {GET, "/commits/{commit}", commit_get, NULL, NULL, API_BODY_NONE, 0},
    {DELETE, "/commits/{commit}", commit_delete, NULL, NULL, API_BODY_NONE, 0},
    {GET, "/commits/{commit}/modules/{mod}/memory", commit_memory, NULL, NULL,
     API_BODY_NONE, 0},
    {GET, "/commits/{commit}/modules/{mod}/pages/{index}", page_proof, NULL,
     NULL, API_BODY_NONE, 0},
    {GET, "/commits/{commit}/diff/{to}", commit_diff, NULL, NULL, API_BODY_NONE,
     0},
    {POST, "/persist", persist, NULL, NULL, API_BODY_NONE, 0},
    {POST, "/restore/{commit}", restore, NULL, NULL, API_BODY_NONE, 0},
    {POST, "/gc", gc, NULL, NULL, API_BODY_NONE, 0},
    {POST, "/cluster/records/{index}", api_cluster_record, NULL, NULL,
     API_BODY_BUFFER, API_ROUTE_PEER},
    {GET, "/metrics", metrics, NULL, NULL, API_BODY_NONE, 0},
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

_Static_assert(sizeof(api_routes) / sizeof(api_routes[0]) <= API_MAX_ROUTES,
	       "raise API_MAX_ROUTES: the metrics count every route");
