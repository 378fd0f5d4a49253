/*
 * e2e_bounds.c - every resource bounded:
 *
 * - --max-module-size takes a multiple of 4096 from 4096 to 64G (the
 *   store's limit) and nothing else, with exit status 2 and a message
 *   naming the option (or its variable) and the value; a daemon at either
 *   end of the range serves up to its limit and refuses a byte more.
 */
#include "e2e.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define KIB 1024ULL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define CAP (64 * GIB) /* the largest --max-module-size */

#define RUN_MS	E2E_WAIT_MS
#define POLL_MS 100

static const char *daemon_path(void)
{
	const char *p = getenv("MODSTORED");

	return p && *p ? p : "bin/modstored";
}

/*
 * Run the daemon with args, env ("NAME=VALUE" or NULL) added to its
 * environment; its standard error into err. Its exit status, or -1.
 */
static int run_err(const char *const *args, const char *env, char *err,
		   size_t size)
{
	char *argv[16];
	size_t n = 0, have = 0, i;
	int p[2], st, waited = 0;
	ssize_t got;
	pid_t pid;

	err[0] = '\0';
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	argv[n++] = strdup(daemon_path());
	for (i = 0; args[i] && n < 15; i++)
		argv[n++] = strdup(args[i]);
	argv[n] = NULL;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 1);
		dup2(p[1], 2);
		if (env)
			putenv(strdup(env));
		execv(argv[0], argv);
		_exit(127);
	}
	for (i = 0; i < n; i++)
		free(argv[i]);
	if (pid < 0)
		return -1;
	close(p[1]);
	for (;;) {
		struct pollfd pfd = {p[0], POLLIN, 0};

		if (have + 1 >= size || waited >= RUN_MS)
			break;
		if (poll(&pfd, 1, POLL_MS) == 0) {
			waited += POLL_MS;
			continue;
		}
		got = read(p[0], err + have, size - 1 - have);
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	err[have] = '\0';
	close(p[0]);
	if (waited >= RUN_MS)
		kill(pid, SIGKILL); /* still running: it was not meant to */
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A bad value: exit status 2, a message naming where it came from and it. */
static void check_refused(const char *value)
{
	const char *const args[] = {"--max-module-size", value, NULL};
	char out[4096], err[4096], env[128], want[256];

	CHECK(e2e_run(args, out, sizeof(out)) == 2);
	CHECK(run_err(args, NULL, err, sizeof(err)) == 2);
	snprintf(
	    want, sizeof(want),
	    "modstored: invalid value '%s' for --max-module-size: ", value);
	if (!strstr(err, want) || !strstr(err, "4096") || !strstr(err, "64G")) {
		CHECK(!"the message names the option, the value, the range");
		fprintf(stderr, "  got: %s", err);
	}

	snprintf(env, sizeof(env), "MODSTORE_MAX_MODULE_SIZE=%s", value);
	CHECK(run_err((const char *const[]){NULL}, env, err, sizeof(err)) == 2);
	snprintf(want, sizeof(want),
		 "invalid value '%s' for MODSTORE_MAX_MODULE_SIZE: ", value);
	if (!strstr(err, want)) {
		CHECK(!"the message names the variable and the value");
		fprintf(stderr, "  got: %s", err);
	}
}

/* A good value: --help after it is reached, so the daemon exits 0. */
static void check_accepted(const char *value)
{
	const char *const args[] = {"--max-module-size", value, "--help", NULL};
	char out[8192];

	CHECK(e2e_run(args, out, sizeof(out)) == 0);
	CHECK(strstr(out, "--max-module-size") != NULL);
}

static void test_option_values(void)
{
	static const char *const bad[] = {
	    "4097",	   "0",	  "18446744073709551615",
	    "2T",	   "abc", "65G",
	    "68719480832", /* the cap and a page */
	    "4095",	   "1G1", "",
	};
	static const char *const good[] = {"4096", "1G", "64G", "68719476736"};
	const char *const threads[] = {"--threads", "abc", NULL};
	char err[4096];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_refused(bad[i]);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		check_accepted(good[i]);

	/* The option is named, not its value. */
	CHECK(run_err(threads, NULL, err, sizeof(err)) == 2);
	if (!strstr(err, "invalid value 'abc' for --threads: ")) {
		CHECK(!"--threads abc names --threads");
		fprintf(stderr, "  got: %s", err);
	}
}

static void expect(const struct e2e_daemon *d, const char *method,
		   const char *path, const char *body, long status,
		   const char *code)
{
	struct e2e_resp r;

	e2e_request(d, method, path, body, body ? strlen(body) : 0, NULL, &r);
	if (code)
		E2E_ERROR(&r, status, code);
	else
		E2E_STATUS(&r, status);
	e2e_resp_release(&r);
}

/* POST path, the member "id" of the answer into id (empty on failure). */
static void post_id(const struct e2e_daemon *d, const char *path,
		    const char *body, char *id, size_t size)
{
	struct e2e_resp r;

	e2e_post(d, path, body, &r);
	E2E_STATUS(&r, 201);
	snprintf(id, size, "%s", e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);
}

/* A daemon at each end of the range serves up to it, and not a byte more. */
static void test_limits(struct e2e_tmp *tmp)
{
	const char *const at_page[] = {"--max-module-size", "4096", NULL};
	const char *const at_cap[] = {"--max-module-size", "64G", NULL};
	char mod[65], sid[65], path[400];
	struct e2e_daemon d;

	if (e2e_start(&d, tmp->state, tmp->log, at_page) < 0) {
		CHECK(!"daemon started at --max-module-size 4096");
		return;
	}
	expect(&d, "POST", "/modules", "one page too many", 413, "too_large");
	post_id(&d, "/modules?size=4096", "one page", mod, sizeof(mod));
	post_id(&d, "/sessions", NULL, sid, sizeof(sid));
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=4095", sid, mod);
	expect(&d, "PUT", path, "x", 204, NULL);
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=4096", sid, mod);
	expect(&d, "PUT", path, "x", 413, "too_large");
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	if (e2e_start(&d, tmp->state, tmp->log, at_cap) < 0) {
		CHECK(!"daemon started at --max-module-size 64G");
		return;
	}
	snprintf(path, sizeof(path), "/modules?size=%llu", CAP + 4096);
	expect(&d, "POST", path, "one page too many", 413, "too_large");
	post_id(&d, "/sessions", NULL, sid, sizeof(sid));
	/* The last byte of 64 GiB: the memory grows to the cap exactly. */
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=%llu", sid, mod,
		 CAP - 1);
	expect(&d, "PUT", path, "x", 204, NULL);
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=%llu", sid, mod, CAP);
	expect(&d, "PUT", path, "x", 413, "too_large");
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=%llu", sid, mod,
		 CAP - 4);
	expect(&d, "PUT", path, "12345", 413, "too_large"); /* one too many */
	snprintf(path, sizeof(path), "/sessions/%s", sid);
	expect(&d, "DELETE", path, NULL, 204, NULL);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
}

int main(void)
{
	struct e2e_tmp tmp;

	if (e2e_tmp_make(&tmp, "bounds") < 0)
		return 1;
	test_option_values();
	test_limits(&tmp);
	e2e_tmp_done(&tmp);
	return t_done();
}
