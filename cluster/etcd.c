/*
 * etcd.c - the v3 JSON gateway client of etcd.h. Every call is one POST
 * of a JSON body; int64 fields come back as strings; a field at its zero
 * value is left out of an answer (a failed txn has no "succeeded").
 */
#include "etcd.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define ETCD_MAX_URLS 16

struct etcd {
	char *urls[ETCD_MAX_URLS];
	size_t nurls, cur;
	long timeout_ms;
	CURL *curl;
	char *buf;
	size_t len, cap;
};

struct etcd_txn {
	json_t *cmp, *ops;
};

struct etcd *etcd_new(const char *urls, long timeout_ms)
{
	struct etcd *e = calloc(1, sizeof(*e));
	const char *p = urls, *comma;
	size_t len;

	if (!e)
		return NULL;
	while (p && *p && e->nurls < ETCD_MAX_URLS) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		while (len && p[len - 1] == '/')
			len--;
		if (len)
			e->urls[e->nurls++] = strndup(p, len);
		p = comma ? comma + 1 : NULL;
	}
	e->timeout_ms = timeout_ms;
	e->curl = curl_easy_init();
	if (!e->curl || !e->nurls) {
		etcd_free(e);
		return NULL;
	}
	return e;
}

void etcd_free(struct etcd *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->nurls; i++)
		free(e->urls[i]);
	if (e->curl)
		curl_easy_cleanup(e->curl);
	free(e->buf);
	free(e);
}

static size_t sink(char *data, size_t size, size_t nmemb, void *cls)
{
	struct etcd *e = cls;
	size_t n = size * nmemb, cap;
	char *b;

	if (e->len + n + 1 > e->cap) {
		cap = (e->len + n + 1) * 2;
		b = realloc(e->buf, cap);
		if (!b)
			return 0;
		e->buf = b;
		e->cap = cap;
	}
	memcpy(e->buf + e->len, data, n);
	e->len += n;
	e->buf[e->len] = '\0';
	return n;
}

/*
 * POST req (stolen) to path on a member; the answer (caller decrefs) or
 * NULL. A member that does not answer, or answers 5xx, passes the call to
 * the next one, each tried once.
 */
static json_t *call(struct etcd *e, const char *path, json_t *req)
{
	char url[512], *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_t *resp = NULL;
	long status = 0;
	size_t tries;
	CURLcode rc;

	json_decref(req);
	if (!body)
		return NULL;
	for (tries = 0; tries < e->nurls && !resp; tries++) {
		snprintf(url, sizeof(url), "%s%s", e->urls[e->cur], path);
		curl_easy_reset(e->curl);
		curl_easy_setopt(e->curl, CURLOPT_URL, url);
		curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, e);
		curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, e->timeout_ms);
		curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, 500L);
		curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
		e->len = 0;
		rc = curl_easy_perform(e->curl);
		if (rc == CURLE_OK)
			curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE,
					  &status);
		if (rc == CURLE_OK && status < 500 && e->buf)
			resp = json_loadb(e->buf, e->len, 0, NULL);
		if (!resp)
			e->cur = (e->cur + 1) % e->nurls;
	}
	free(body);
	return resp;
}

static char *b64(const char *s, size_t len)
{
	size_t n =
	    sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *out = malloc(n);

	if (out)
		sodium_bin2base64(out, n, (const unsigned char *)s, len,
				  sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/* A base64 JSON string of s (a new reference). */
static json_t *jb64(const char *s)
{
	char *b = b64(s, strlen(s));
	json_t *j = b ? json_string(b) : NULL;

	free(b);
	return j;
}

static char *unb64(const char *s, size_t *len)
{
	size_t slen = strlen(s), n = 0;
	char *out = malloc(slen + 1);

	if (!out)
		return NULL;
	if (sodium_base642bin((unsigned char *)out, slen, s, slen, NULL, &n,
			      NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	if (len)
		*len = n;
	return out;
}

/* An int64 field (a string or a number), 0 when absent. */
static int64_t jint(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return json_integer_value(v);
	return 0;
}

void etcd_prefix_end(const char *prefix, char *out, size_t size)
{
	size_t n = strlen(prefix);

	snprintf(out, size, "%s", prefix);
	if (n && n < size)
		out[n - 1]++;
}

int etcd_range(struct etcd *e, const char *key, const char *end, long limit,
	       struct etcd_kv **kvs, size_t *n)
{
	json_t *req = json_object(), *resp, *arr, *kv;
	const char *k, *v;
	size_t i, cnt;

	*kvs = NULL;
	*n = 0;
	json_object_set_new(req, "key", jb64(key));
	if (end)
		json_object_set_new(req, "range_end", jb64(end));
	if (limit)
		json_object_set_new(req, "limit", json_integer(limit));
	resp = call(e, "/v3/kv/range", req);
	if (!resp || json_object_get(resp, "error")) {
		json_decref(resp);
		return -1;
	}
	arr = json_object_get(resp, "kvs");
	cnt = json_array_size(arr);
	if (cnt) {
		*kvs = calloc(cnt, sizeof(**kvs));
		if (!*kvs) {
			json_decref(resp);
			return -1;
		}
	}
	json_array_foreach(arr, i, kv)
	{
		k = json_string_value(json_object_get(kv, "key"));
		v = json_string_value(json_object_get(kv, "value"));
		(*kvs)[i].key = unb64(k ? k : "", NULL);
		(*kvs)[i].value = unb64(v ? v : "", &(*kvs)[i].vlen);
		(*kvs)[i].create_rev = jint(kv, "create_revision");
		(*kvs)[i].lease = jint(kv, "lease");
		if (!(*kvs)[i].key || !(*kvs)[i].value) {
			etcd_kvs_free(*kvs, i + 1);
			*kvs = NULL;
			json_decref(resp);
			return -1;
		}
	}
	*n = cnt;
	json_decref(resp);
	return 0;
}

void etcd_kvs_free(struct etcd_kv *kvs, size_t n)
{
	size_t i;

	for (i = 0; kvs && i < n; i++) {
		free(kvs[i].key);
		free(kvs[i].value);
	}
	free(kvs);
}

static json_t *put_req(const char *key, const char *value, int64_t lease)
{
	json_t *req = json_object();

	json_object_set_new(req, "key", jb64(key));
	json_object_set_new(req, "value", jb64(value));
	if (lease)
		json_object_set_new(req, "lease", json_integer(lease));
	return req;
}

static int ok_answer(json_t *resp)
{
	int ok = resp && !json_object_get(resp, "error");

	json_decref(resp);
	return ok ? 0 : -1;
}

int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease)
{
	return ok_answer(call(e, "/v3/kv/put", put_req(key, value, lease)));
}

int etcd_delete(struct etcd *e, const char *key, int prefix)
{
	json_t *req = json_object();
	char end[512];

	json_object_set_new(req, "key", jb64(key));
	if (prefix) {
		etcd_prefix_end(key, end, sizeof(end));
		json_object_set_new(req, "range_end", jb64(end));
	}
	return ok_answer(call(e, "/v3/kv/deleterange", req));
}

struct etcd_txn *etcd_txn_new(void)
{
	struct etcd_txn *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cmp = json_array();
	t->ops = json_array();
	return t;
}

void etcd_txn_create_rev(struct etcd_txn *t, const char *key, int64_t rev)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)rev);
	json_array_append_new(t->cmp, json_pack("{s:s, s:o, s:s, s:s}",
						"target", "CREATE", "key",
						jb64(key), "create_revision",
						buf, "result", "EQUAL"));
}

void etcd_txn_put(struct etcd_txn *t, const char *key, const char *value,
		  int64_t lease)
{
	json_array_append_new(t->ops, json_pack("{s:o}", "request_put",
						put_req(key, value, lease)));
}

void etcd_txn_delete(struct etcd_txn *t, const char *key)
{
	json_array_append_new(
	    t->ops,
	    json_pack("{s:{s:o}}", "request_delete_range", "key", jb64(key)));
}

void etcd_txn_delete_range(struct etcd_txn *t, const char *key, const char *end)
{
	json_array_append_new(
	    t->ops, json_pack("{s:{s:o, s:o}}", "request_delete_range", "key",
			      jb64(key), "range_end", jb64(end)));
}

int etcd_txn_run(struct etcd *e, struct etcd_txn *t)
{
	json_t *resp, *req;
	int ret;

	if (!t)
		return -1;
	req = json_pack("{s:o, s:o}", "compare", t->cmp, "success", t->ops);
	free(t);
	resp = call(e, "/v3/kv/txn", req);
	if (!resp || json_object_get(resp, "error"))
		ret = -1;
	else
		ret = json_is_true(json_object_get(resp, "succeeded"));
	json_decref(resp);
	return ret;
}

int64_t etcd_lease_grant(struct etcd *e, long ttl)
{
	json_t *resp = call(e, "/v3/lease/grant",
			    json_pack("{s:I}", "TTL", (json_int_t)ttl));
	int64_t id = resp ? jint(resp, "ID") : 0;

	json_decref(resp);
	return id;
}

long etcd_lease_keepalive(struct etcd *e, int64_t id)
{
	json_t *resp = call(e, "/v3/lease/keepalive",
			    json_pack("{s:I}", "ID", (json_int_t)id));
	long ttl;

	if (!resp)
		return -1;
	if (json_object_get(resp, "error")) {
		json_decref(resp);
		return -1;
	}
	ttl = (long)jint(json_object_get(resp, "result"), "TTL");
	json_decref(resp);
	return ttl;
}

void etcd_lease_revoke(struct etcd *e, int64_t id)
{
	json_decref(call(e, "/v3/lease/revoke",
			 json_pack("{s:I}", "ID", (json_int_t)id)));
}
