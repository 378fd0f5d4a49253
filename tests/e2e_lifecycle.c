/*
 * e2e_lifecycle.c - the commit lifecycle through the real daemon: DELETE
 * /commits/{commit} (204, then 404 commit_not_found, a malformed id 400),
 * POST /gc and its counts, --keep-commits, the metrics of deleted commits
 * and freed bytes, and the CLI's delete and gc.
 */
#include "e2e.h"
#include "store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char mod[STORE_HEX_LEN + 1];

/* A session writing byte v at offset 0 of mod, committed; its id. */
static void commit_value(const struct e2e_daemon *d, int v,
			 char out[STORE_HEX_LEN + 1])
{
	char sid[STORE_HEX_LEN + 1], path[300], body[64];
	struct e2e_resp r;

	out[0] = '\0';
	e2e_post(d, "/sessions", NULL, &r);
	E2E_STATUS(&r, 201);
	snprintf(sid, sizeof(sid), "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);
	memset(body, v, sizeof(body));
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory?offset=0",
		 sid, mod);
	e2e_request(d, "PUT", path, body, sizeof(body), NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
	e2e_post(d, path, NULL, &r);
	E2E_STATUS(&r, 201);
	snprintf(out, STORE_HEX_LEN + 1, "%s",
		 e2e_str(&r, "commit") ? e2e_str(&r, "commit") : "");
	e2e_resp_release(&r);
}

static long commits_count(const struct e2e_daemon *d)
{
	struct e2e_resp r;
	long n = -1;

	e2e_get(d, "/commits", &r);
	E2E_STATUS(&r, 200);
	if (r.json)
		n = (long)json_object_size(r.json);
	e2e_resp_release(&r);
	return n;
}

/* The value of a metric without labels, or -1. */
static long long metric(const struct e2e_daemon *d, const char *name)
{
	struct e2e_resp r;
	char key[128];
	const char *p;
	long long v = -1;

	e2e_get(d, "/metrics", &r);
	snprintf(key, sizeof(key), "\n%s ", name);
	p = r.body ? strstr(r.body, key) : NULL;
	if (p)
		v = strtoll(p + strlen(key), NULL, 10);
	e2e_resp_release(&r);
	return v;
}

/* Run the CLI with args against d; its exit status, output in out. */
static int cli(const struct e2e_daemon *d, char *out, size_t size,
	       const char *a1, const char *a2)
{
	const char *cli = getenv("MODSTORE_CLI");
	char cmd[1024];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "%s --url %s %s %s 2>&1",
		 cli && *cli ? cli : "bin/modstore", d->url, a1, a2 ? a2 : "");
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_routes(const struct e2e_daemon *d)
{
	char c1[STORE_HEX_LEN + 1], c2[STORE_HEX_LEN + 1], path[200];
	char out[512];
	struct e2e_resp r;
	long long freed;

	commit_value(d, 1, c1);
	commit_value(d, 2, c2);
	CHECK(commits_count(d) == 2);
	snprintf(path, sizeof(path), "/commits/%s", c1);
	e2e_request(d, "DELETE", path, NULL, 0, NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	e2e_request(d, "DELETE", path, NULL, 0, NULL, &r);
	E2E_ERROR(&r, 404, "commit_not_found");
	e2e_resp_release(&r);
	e2e_request(d, "DELETE", "/commits/XYZ", NULL, 0, NULL, &r);
	CHECK(r.status == 400);
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/restore/%s", c1);
	e2e_post(d, path, NULL, &r);
	E2E_ERROR(&r, 404, "commit_not_found");
	e2e_resp_release(&r);
	CHECK(commits_count(d) == 1);
	CHECK(metric(d, "modstore_commits_deleted_total") == 1);
	CHECK(metric(d, "modstore_files_removed_total") == 1);
	freed = metric(d, "modstore_freed_bytes_total");
	CHECK(freed >= 4096);

	e2e_post(d, "/gc", NULL, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.json && json_integer_value(
			    json_object_get(r.json, "removed_files")) == 0);
	CHECK(r.json &&
	      json_is_integer(json_object_get(r.json, "freed_bytes")));
	e2e_resp_release(&r);

	/* the CLI */
	commit_value(d, 3, c1);
	CHECK(cli(d, out, sizeof(out), "delete", c2) == 0 &&
	      strstr(out, "deleted"));
	CHECK(cli(d, out, sizeof(out), "delete", c2) != 0 &&
	      strstr(out, "commit_not_found"));
	CHECK(cli(d, out, sizeof(out), "gc", NULL) == 0 &&
	      strstr(out, "removed 0 files"));
	CHECK(commits_count(d) == 1);
}

static void test_keep(const char *dir, const char *log)
{
	static const char *const args[] = {"--keep-commits", "3", NULL};
	char c[STORE_HEX_LEN + 1];
	struct e2e_daemon d;
	int i;

	if (e2e_start(&d, dir, log, args) < 0) {
		CHECK(!"daemon started with --keep-commits");
		return;
	}
	for (i = 0; i < 8; i++)
		commit_value(&d, 40 + i, c);
	CHECK(commits_count(&d) == 3);
	CHECK(metric(&d, "modstore_commits_deleted_total") >= 5);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
}

int main(void)
{
	struct e2e_tmp tmp;
	struct e2e_daemon d;
	struct e2e_resp r;

	if (e2e_tmp_make(&tmp, "lifecycle") < 0)
		return 1;
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"daemon started");
		return t_done();
	}
	e2e_post(&d, "/modules", "lifecycle module", &r);
	E2E_STATUS(&r, 201);
	snprintf(mod, sizeof(mod), "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);
	test_routes(&d);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	test_keep(tmp.state, tmp.log);
	e2e_tmp_done(&tmp);
	return t_done();
}
