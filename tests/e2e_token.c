/*
 * e2e_token.c - --token-file: every route but /health needs
 * "Authorization: Bearer TOKEN" (401 unauthorized with WWW-Authenticate
 * otherwise, before anything else is looked at); without a token file no
 * header is needed. Also MODSTORE_TOKEN_FILE, and a token file that cannot
 * be used.
 */
#include "e2e.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "s3cret-token-0123456789"

static void expect(const struct e2e_daemon *d, const char *method,
		   const char *path, const char *body, const char *auth,
		   long want)
{
	struct e2e_resp r;
	char h[64];
	const char *const hdr[] = {auth, NULL};

	e2e_request(d, method, path, body, body ? strlen(body) : 0,
		    auth ? hdr : NULL, &r);
	if (want == 401) {
		E2E_ERROR(&r, 401, "unauthorized");
		CHECK(e2e_header(&r, "WWW-Authenticate", h, sizeof(h)) &&
		      !strcmp(h, "Bearer"));
	} else {
		E2E_STATUS(&r, want);
	}
	e2e_resp_release(&r);
}

int main(void)
{
	struct e2e_tmp tmp;
	struct e2e_daemon d;
	char tokfile[600], arg[700], out[256], empty[600];
	const char *args[] = {"--token-file", tokfile, NULL};
	FILE *f;

	if (e2e_tmp_make(&tmp, "token") < 0)
		return 1;
	snprintf(tokfile, sizeof(tokfile), "%s/token", tmp.root);
	f = fopen(tokfile, "w");
	if (!f)
		return 1;
	fprintf(f, "%s\n", TOKEN);
	fclose(f);

	/* Token on. */
	if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
		CHECK(!"daemon started");
		return t_done();
	}
	expect(&d, "GET", "/health", NULL, NULL, 200);
	expect(&d, "GET", "/root", NULL, NULL, 401);
	expect(&d, "GET", "/modules", NULL, NULL, 401);
	expect(&d, "POST", "/modules", "code", NULL, 401);
	expect(&d, "POST", "/sessions", NULL, NULL, 401);
	expect(&d, "GET", "/commits", NULL, NULL, 401);
	expect(&d, "POST", "/persist", NULL, NULL, 401);
	expect(&d, "GET", "/nope", NULL, NULL, 401); /* no route listing */
	expect(&d, "DELETE", "/root", NULL, NULL, 401);
	expect(&d, "GET", "/root", NULL, "Authorization: Bearer wrong", 401);
	expect(&d, "GET", "/root", NULL, "Authorization: Bearer " TOKEN "x",
	       401);
	expect(&d, "GET", "/root", NULL, "Authorization: Bearer s3cret", 401);
	expect(&d, "GET", "/root", NULL, "Authorization: Basic " TOKEN, 401);
	expect(&d, "GET", "/root", NULL, "Authorization: " TOKEN, 401);
	expect(&d, "GET", "/root", NULL, "Authorization: Bearer", 401);

	expect(&d, "GET", "/root", NULL, "Authorization: Bearer " TOKEN, 200);
	expect(&d, "GET", "/root", NULL, "Authorization: bearer " TOKEN, 200);
	expect(&d, "POST", "/modules", "code", "Authorization: Bearer " TOKEN,
	       201);
	expect(&d, "GET", "/nope", NULL, "Authorization: Bearer " TOKEN, 404);
	expect(&d, "DELETE", "/root", NULL, "Authorization: Bearer " TOKEN,
	       405);
	d.token = TOKEN; /* every request of the helpers carries it now */
	expect(&d, "POST", "/sessions", NULL, NULL, 201);
	expect(&d, "POST", "/persist", NULL, NULL, 200);
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	/* The same from the environment. */
	snprintf(arg, sizeof(arg), "MODSTORE_TOKEN_FILE=%s", tokfile);
	{
		const char *const env[] = {arg, NULL};

		if (e2e_start_env(&d, tmp.state, tmp.log, NULL, env) < 0) {
			CHECK(!"daemon started with MODSTORE_TOKEN_FILE");
			return t_done();
		}
	}
	expect(&d, "GET", "/root", NULL, NULL, 401);
	expect(&d, "GET", "/root", NULL, "Authorization: Bearer " TOKEN, 200);
	expect(&d, "GET", "/health", NULL, NULL, 200);
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	/* Token off: no header needed, any header ignored. */
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"daemon started without a token");
		return t_done();
	}
	expect(&d, "GET", "/root", NULL, NULL, 200);
	expect(&d, "GET", "/modules", NULL, "Authorization: Bearer junk", 200);
	expect(&d, "POST", "/sessions", NULL, NULL, 201);
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	/* A token file that is missing or empty stops the start (exit 1). */
	snprintf(empty, sizeof(empty), "%s/empty", tmp.root);
	f = fopen(empty, "w");
	if (f)
		fclose(f);
	{
		const char *const a1[] = {
		    "--dir",	    tmp.state, "--listen", "127.0.0.1:0",
		    "--token-file", empty,     NULL};
		const char *const a2[] = {
		    "--dir",	   tmp.state,	   "--listen",
		    "127.0.0.1:0", "--token-file", "/nonexistent/token",
		    NULL};

		CHECK(e2e_run(a1, out, sizeof(out)) == 1);
		CHECK(e2e_run(a2, out, sizeof(out)) == 1);
	}
	e2e_tmp_done(&tmp);
	return t_done();
}
