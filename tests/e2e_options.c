/*
 * e2e_options.c - the daemon's options and their MODSTORE_* variables:
 * --help, --version, usage errors, --max-body, --max-sessions,
 * --auto-persist, --session-timeout (an idle session is dropped),
 * --log-format text|json (one line per request).
 */
#include "e2e.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char body2k[2049];

static void post_status(const struct e2e_daemon *d, const char *path,
			const char *body, long want, const char *code)
{
	struct e2e_resp r;

	e2e_post(d, path, body, &r);
	if (code)
		E2E_ERROR(&r, want, code);
	else
		E2E_STATUS(&r, want);
	e2e_resp_release(&r);
}

static void test_cli(const char *dir)
{
	char out[8192];
	const char *const version[] = {"--version", NULL};
	const char *const help[] = {"--help", NULL};
	const char *const bad[][8] = {
	    {"--bogus", NULL},
	    {"--threads", "0", NULL},
	    {"--log-format", "xml", NULL},
	    {"--max-body", "12Q", NULL},
	    {"--max-module-size", "100", NULL},
	    {"--session-timeout", "-1", NULL},
	    {"--dir", dir, "extra", NULL},
	};
	size_t i;

	CHECK(e2e_run(version, out, sizeof(out)) == 0);
	CHECK(!strcmp(out, "modstored 0.1.0\n"));
	CHECK(e2e_run(help, out, sizeof(out)) == 0);
	CHECK(strstr(out, "--max-body") && strstr(out, "MODSTORE_DIR") &&
	      strstr(out, "--log-format") && strstr(out, "--token-file") &&
	      strstr(out, "SIGTERM"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(e2e_run(bad[i], out, sizeof(out)) == 2);
	{
		const char *const a[] = {"--dir", dir, "--listen", "nohost",
					 NULL};

		CHECK(e2e_run(a, out, sizeof(out)) == 1);
	}
}

/* Lines of the log file that parse as JSON objects with every field. */
static int json_log_lines(const char *log, const char *path)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(log, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		json_t *j = json_loads(line, 0, NULL);
		const char *p = json_string_value(json_object_get(j, "path"));

		if (j && p && !strcmp(p, path) &&
		    json_is_string(json_object_get(j, "method")) &&
		    json_is_integer(json_object_get(j, "status")) &&
		    json_is_integer(json_object_get(j, "bytes")) &&
		    json_is_number(json_object_get(j, "ms")) &&
		    json_is_string(json_object_get(j, "time")))
			n++;
		json_decref(j);
	}
	fclose(f);
	return n;
}

static int log_has(const char *log, const char *text)
{
	char line[4096];
	int found = 0;
	FILE *f = fopen(log, "r");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, text) != NULL;
	fclose(f);
	return found;
}

/* 1 when the daemon ctx lists no open session. */
static int no_sessions(void *ctx)
{
	struct e2e_resp r;
	int none;

	e2e_get(ctx, "/sessions", &r);
	none = r.status == 200 &&
	       json_array_size(json_object_get(r.json, "sessions")) == 0;
	e2e_resp_release(&r);
	return none;
}

int main(void)
{
	struct e2e_tmp tmp;
	struct e2e_daemon d;
	struct e2e_resp r;
	struct stat st;
	char jlog[600], file[600], sid[65] = "", path[300];

	if (e2e_tmp_make(&tmp, "options") < 0)
		return 1;
	memset(body2k, 'b', sizeof(body2k) - 1);
	test_cli(tmp.state);

	/* Environment, and the command line over it. */
	{
		const char *const env[] = {"MODSTORE_MAX_BODY=1K",
					   "MODSTORE_MAX_SESSIONS=1",
					   "MODSTORE_AUTO_PERSIST=1", NULL};

		if (e2e_start_env(&d, tmp.state, tmp.log, NULL, env) < 0) {
			CHECK(!"daemon started");
			return t_done();
		}
		post_status(&d, "/modules", body2k, 413, "body_too_large");
		post_status(&d, "/modules", "small", 201, NULL);
		post_status(&d, "/sessions", NULL, 201, NULL);
		post_status(&d, "/sessions", NULL, 503, "too_many_sessions");
		e2e_get(&d, "/sessions", &r);
		{
			json_t *l = json_object_get(r.json, "sessions");
			const char *id = json_string_value(
			    json_object_get(json_array_get(l, 0), "id"));

			snprintf(sid, sizeof(sid), "%s", id ? id : "");
		}
		e2e_resp_release(&r);
		snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
		post_status(&d, path, NULL, 201, NULL);
		snprintf(file, sizeof(file), "%s/commits", tmp.state);
		CHECK(stat(file, &st) == 0); /* auto-persisted */
		CHECK(e2e_stop(&d, SIGTERM) == 0);
		CHECK(log_has(tmp.log, "POST /modules 413 "));
		CHECK(log_has(tmp.log, "GET /sessions 200 "));

		const char *const args[] = {"--max-body", "4K", NULL};

		if (e2e_start_env(&d, tmp.state, tmp.log, args, env) < 0) {
			CHECK(!"daemon started");
			return t_done();
		}
		post_status(&d, "/modules", body2k, 201, NULL);
		CHECK(e2e_stop(&d, SIGTERM) == 0);
	}

	/* JSON log lines, and an idle session dropped after 1 s. */
	snprintf(jlog, sizeof(jlog), "%s/json.log", tmp.root);
	{
		const char *const args[] = {"--log-format", "json",
					    "--session-timeout", "1", NULL};

		if (e2e_start(&d, tmp.state, jlog, args) < 0) {
			CHECK(!"daemon started");
			return t_done();
		}
	}
	post_status(&d, "/sessions", NULL, 201, NULL);
	CHECK(e2e_wait_until(no_sessions, &d, E2E_WAIT_MS));
	e2e_get(&d, "/health", &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	CHECK(json_log_lines(jlog, "/health") == 1);
	CHECK(json_log_lines(jlog, "/sessions") >= 2);

	e2e_tmp_done(&tmp);
	return t_done();
}
