/*
 * fuzz_json.c - the JSON body of POST /sessions, the api's one JSON body.
 *
 * Byte 0 of the input: bit 0 the body goes chunked (Transfer-Encoding)
 * rather than with a Content-Length, bits 1-3 the size of the chunks
 * (1 << n bytes), bit 4 "Expect: 100-continue". The rest is the body, with
 * the placeholders of http_harness.h ({C} the commit, {R} the root...)
 * replaced.
 *
 * The answer is checked as http_harness.h says, and against the contract:
 * no body, or a JSON object (duplicate keys refused) whose "base" is
 * absent or null, gives 201 and a session on the current state; a "base"
 * that is a commit id (64 hex digits, either case) of the commits store
 * gives 201 and a session on it, one unknown 404; any other "base" 400
 * invalid_id; a body that is not JSON, or not an object, 400 invalid_json;
 * more than 64 KiB 413. A 201 is {"id": SESSION, "base": ID} and the
 * session exists (it is dropped with store_session_drop); any other
 * answer leaves the sessions as they were.
 */
#include "http_harness.h"

#define MAX_BODY (256 * 1024)

static char body[MAX_BODY];
static char req[2 * MAX_BODY];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	hh_init("fuzz_json");
	return 0;
}

/* What the contract says of body: the status, and the base of a 201. */
static unsigned int expect(const char *b, size_t n, struct store_id *base)
{
	json_error_t jerr;
	json_t *j, *v;
	unsigned int st = 201;

	*base = hh.root;
	if (n > API_JSON_MAX)
		return 413;
	if (!n)
		return 201;
	j = json_loadb(b, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!j || !json_is_object(j)) {
		st = 400;
		goto out;
	}
	v = json_object_get(j, "base");
	if (!v || json_is_null(v))
		goto out;
	if (!json_is_string(v) ||
	    store_id_parse(base, json_string_value(v), json_string_length(v)))
		st = 400;
	else if (!store_id_equal(base, &hh.commit))
		st = 404;
out:
	json_decref(j);
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_stats st0, st1;
	struct store_id want_base, sid, got_base;
	struct hh_resp r;
	unsigned int b, want;
	size_t n, len = 0, chunk, k, off;
	json_error_t jerr;
	json_t *j = NULL, *id, *base;

	if (size < 1)
		return 0;
	b = data[0];
	hh_begin(0);
	n = hh_expand(data + 1, size - 1, body, sizeof(body));
	len += (size_t)snprintf(req, sizeof(req),
				"POST /sessions HTTP/1.1\r\nHost: x\r\n%s",
				b & 16 ? "Expect: 100-continue\r\n" : "");
	if (b & 1) {
		len += (size_t)snprintf(req + len, sizeof(req) - len,
					"Transfer-Encoding: chunked\r\n\r\n");
		chunk = (size_t)1 << ((b >> 1) & 7);
		for (off = 0; off < n; off += k) {
			k = n - off < chunk ? n - off : chunk;
			len += (size_t)snprintf(req + len, sizeof(req) - len,
						"%zx\r\n", k);
			memcpy(req + len, body + off, k);
			len += k;
			memcpy(req + len, "\r\n", 2);
			len += 2;
		}
		memcpy(req + len, "0\r\n\r\n", 5);
		len += 5;
	} else {
		len += (size_t)snprintf(req + len, sizeof(req) - len,
					"Content-Length: %zu\r\n\r\n", n);
		memcpy(req + len, body, n);
		len += n;
	}
	hh_expect(store_get_stats(hh.store, &st0), "stats");
	hh_exchange(req, len);
	if (hh_check(&r, 1) != 1)
		hh_die("no answer of the api");
	hh_expect(store_get_stats(hh.store, &st1), "stats");
	want = expect(body, n, &want_base);
	if (r.status != want)
		hh_die("status %u, want %u", r.status, want);
	if (want != 201) {
		if (st1.sessions != st0.sessions)
			hh_die("%u and a new session", r.status);
		goto out;
	}
	j = json_loadb((const char *)r.body, r.bodylen, 0, &jerr);
	id = json_object_get(j, "id");
	base = json_object_get(j, "base");
	if (!json_is_object(j) || json_object_size(j) != 2 ||
	    !json_is_string(id) || !json_is_string(base) ||
	    store_id_parse(&sid, json_string_value(id),
			   json_string_length(id)) ||
	    store_id_parse(&got_base, json_string_value(base),
			   json_string_length(base)))
		hh_die("201 is not {\"id\": SESSION, \"base\": ID}");
	if (!store_id_equal(&got_base, &want_base))
		hh_die("the session is not on the base asked for");
	if (store_session_drop(hh.store, &sid) != STORE_OK)
		hh_die("the session of the 201 does not exist");
out:
	json_decref(j);
	hh_end();
	return 0;
}
