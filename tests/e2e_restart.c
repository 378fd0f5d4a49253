/*
 * e2e_restart.c - stop the daemon and start it again on the same
 * directory: the state (root, memories) survives; commit ids survive only
 * if persisted; a second daemon on a directory in use is refused.
 */
#include "e2e.h"
#include "store.h"
#include "storetest.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct e2e_daemon d;

static void deploy(const char *code, char hex[STORE_HEX_LEN + 1])
{
	struct e2e_resp r;

	e2e_post(&d, "/modules?size=8192", code, &r);
	E2E_STATUS(&r, 201);
	snprintf(hex, STORE_HEX_LEN + 1, "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);
}

/* A session writing text at off in module mod, committed; its id. */
static void commit_one(const char *mod, unsigned off, const char *text,
		       char commit[STORE_HEX_LEN + 1])
{
	struct e2e_resp r;
	char sid[STORE_HEX_LEN + 1], path[300];

	e2e_post(&d, "/sessions", NULL, &r);
	E2E_STATUS(&r, 201);
	snprintf(sid, sizeof(sid), "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory?offset=%u",
		 sid, mod, off);
	e2e_request(&d, "PUT", path, text, strlen(text), NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
	e2e_post(&d, path, NULL, &r);
	E2E_STATUS(&r, 201);
	snprintf(commit, STORE_HEX_LEN + 1, "%s",
		 e2e_str(&r, "commit") ? e2e_str(&r, "commit") : "");
	e2e_resp_release(&r);
}

static void root_is(const char *want)
{
	struct e2e_resp r;

	e2e_get(&d, "/root", &r);
	E2E_STATUS(&r, 200);
	CHECK(e2e_str(&r, "root") && !strcmp(e2e_str(&r, "root"), want));
	e2e_resp_release(&r);
}

static void status_of(const char *method, const char *path, const char *body,
		      long want, const char *code)
{
	struct e2e_resp r;

	e2e_request(&d, method, path, body, body ? strlen(body) : 0, NULL, &r);
	if (code)
		E2E_ERROR(&r, want, code);
	else
		E2E_STATUS(&r, want);
	e2e_resp_release(&r);
}

static void memory_has(const char *mod, unsigned off, const char *text)
{
	struct e2e_resp r;
	char path[200];

	snprintf(path, sizeof(path), "/modules/%s/memory", mod);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 8192 && !memcmp(r.body + off, text, strlen(text)));
	e2e_resp_release(&r);
}

int main(void)
{
	struct e2e_tmp tmp;
	struct e2e_resp r;
	struct e2e_daemon other;
	struct st_state st;
	char a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1];
	char c1[STORE_HEX_LEN + 1], c2[STORE_HEX_LEN + 1];
	char c3[STORE_HEX_LEN + 1], h[STORE_HEX_LEN + 1];
	char path[300], body[200], out[256];
	const char *args[] = {"--dir", NULL, "--listen", "127.0.0.1:0", NULL};

	if (sodium_init() < 0 || e2e_tmp_make(&tmp, "restart") < 0)
		return 1;
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"daemon started");
		return t_done();
	}
	deploy("restart-a", a);
	deploy("restart-b", b);
	commit_one(a, 10, "first", c1);
	status_of("POST", "/persist", NULL, 200, NULL);
	commit_one(b, 20, "second", c2);
	root_is(c2);

	/* A second daemon on the same directory is refused. */
	args[1] = tmp.state;
	CHECK(e2e_run(args, out, sizeof(out)) == 1);
	CHECK(e2e_start(&other, tmp.state, tmp.log, NULL) < 0);

	/* An open session does not survive either. */
	status_of("POST", "/sessions", NULL, 201, NULL);
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	/* Restart: the state is there, the unpersisted commit id is not. */
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"daemon restarted");
		return t_done();
	}
	CHECK(st_state_read(tmp.state, &st) == 0);
	store_id_hex(&st.root, h);
	CHECK(!strcmp(h, c2));
	st_state_release(&st);
	root_is(c2);
	memory_has(a, 10, "first");
	memory_has(b, 20, "second");
	e2e_get(&d, "/sessions", &r);
	E2E_STATUS(&r, 200);
	CHECK(json_array_size(json_object_get(r.json, "sessions")) == 0);
	e2e_resp_release(&r);
	e2e_get(&d, "/modules", &r);
	E2E_STATUS(&r, 200);
	CHECK(json_array_size(json_object_get(r.json, "modules")) == 2);
	e2e_resp_release(&r);

	e2e_get(&d, "/commits", &r);
	E2E_STATUS(&r, 200);
	CHECK(json_object_size(r.json) == 1 && json_object_get(r.json, c1));
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/commits/%s", c1);
	status_of("GET", path, NULL, 200, NULL);
	snprintf(path, sizeof(path), "/commits/%s", c2);
	status_of("GET", path, NULL, 404, "commit_not_found");
	snprintf(body, sizeof(body), "{\"base\":\"%s\"}", c2);
	status_of("POST", "/sessions", body, 404, "commit_not_found");
	snprintf(path, sizeof(path), "/restore/%s", c2);
	status_of("POST", path, NULL, 404, "commit_not_found");

	/* A session on the current state reports it as its base. */
	e2e_post(&d, "/sessions", NULL, &r);
	E2E_STATUS(&r, 201);
	CHECK(e2e_str(&r, "base") && !strcmp(e2e_str(&r, "base"), c2));
	e2e_resp_release(&r);

	/* The persisted commit restores, and the module goes back. */
	snprintf(path, sizeof(path), "/restore/%s", c1);
	status_of("POST", path, NULL, 200, NULL);
	root_is(c1);
	memory_has(a, 10, "first");
	snprintf(path, sizeof(path), "/modules/%s/memory", b);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 8192 && r.body[20] == 0);
	e2e_resp_release(&r);

	/* A session on c1, committed and persisted, survives a restart. */
	snprintf(body, sizeof(body), "{\"base\":\"%s\"}", c1);
	status_of("POST", "/sessions", body, 201, NULL);
	commit_one(a, 30, "third", c3);
	status_of("POST", "/persist", NULL, 200, NULL);
	CHECK(e2e_stop(&d, SIGINT) == 0);
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"daemon restarted twice");
		return t_done();
	}
	root_is(c3);
	e2e_get(&d, "/commits", &r);
	E2E_STATUS(&r, 200);
	CHECK(json_object_size(r.json) == 2 && json_object_get(r.json, c1) &&
	      json_object_get(r.json, c3));
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/restore/%s", c1);
	status_of("POST", path, NULL, 200, NULL);
	root_is(c1);
	CHECK(st_state_read(tmp.state, &st) == 0);
	store_id_hex(&st.root, h);
	CHECK(!strcmp(h, c1));
	st_state_release(&st);

	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
	return t_done();
}
