/*
 * e2e_tls.c - HTTPS: --tls-cert and --tls-key (and MODSTORE_TLS_*) serve
 * https:// only, TLS 1.2 and 1.3 and nothing older; a client that does not
 * trust the CA, or speaks plain HTTP, gets no answer; with --tls-client-ca
 * a client without a certificate, with one from another CA or an expired
 * one fails its handshake while a good one is served; an expired server
 * certificate is refused by clients. Files that cannot be used stop the
 * start with exit 2 and a message naming the option. The CLI talks HTTPS
 * with --cacert, --cert, --key and their MODSTORE_* variables. Every
 * certificate is made at run time with certtool.
 */
#include "e2e.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tls[600];

/* dir/name of the certificates into buf. */
static const char *cf(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tls, name);
	return buf;
}

static long health(const struct e2e_daemon *d, int *curl_err)
{
	struct e2e_resp r;
	long st;

	e2e_get(d, "/health", &r);
	st = r.status;
	if (curl_err)
		*curl_err = r.curl_err;
	e2e_resp_release(&r);
	return st;
}

/* Run sh -c cmd; its exit status, 128+N for a signal. */
static int sh(const char *cmd)
{
	int st = system(cmd);

	if (st < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Start modstored with extra (a shell fragment) and no chance to run: its
 * exit status, and its standard error in err.
 */
static int start_fails(const char *state, const char *extra, char *err,
		       size_t size)
{
	char cmd[4096], path[700];
	const char *bin = getenv("MODSTORED");
	FILE *f;
	size_t n = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/start.err", tls);
	snprintf(cmd, sizeof(cmd),
		 "timeout 20 %s --dir %s --listen 127.0.0.1:0 %s "
		 "</dev/null >/dev/null 2>%s",
		 bin && *bin ? bin : "bin/modstored", state, extra, path);
	rc = sh(cmd);
	err[0] = '\0';
	f = fopen(path, "r");
	if (f) {
		n = fread(err, 1, size - 1, f);
		err[n] = '\0';
		fclose(f);
	}
	return rc;
}

static void test_bad_files(const char *state)
{
	char a[700], b[700], c[700], extra[3000], err[4096];
	const char *garbage = cf(c, sizeof(c), "garbage.pem");
	FILE *f = fopen(garbage, "w");

	if (f) {
		fputs("not a certificate\n", f);
		fclose(f);
	}
	/* a missing certificate file */
	snprintf(extra, sizeof(extra), "--tls-cert %s/nope.pem --tls-key %s",
		 tls, cf(b, sizeof(b), "server.key"));
	CHECK(start_fails(state, extra, err, sizeof(err)) == 2);
	CHECK(strstr(err, "--tls-cert") && strstr(err, "nope.pem"));
	/* a certificate that is not PEM */
	snprintf(extra, sizeof(extra), "--tls-cert %s --tls-key %s", garbage,
		 cf(b, sizeof(b), "server.key"));
	CHECK(start_fails(state, extra, err, sizeof(err)) == 2);
	CHECK(strstr(err, "--tls-cert") != NULL);
	/* an unreadable key */
	snprintf(extra, sizeof(extra), "--tls-cert %s --tls-key %s/nope.key",
		 cf(a, sizeof(a), "server.pem"), tls);
	CHECK(start_fails(state, extra, err, sizeof(err)) == 2);
	CHECK(strstr(err, "--tls-key") && strstr(err, "nope.key"));
	/* a key that is not the certificate's */
	snprintf(extra, sizeof(extra), "--tls-cert %s --tls-key %s",
		 cf(a, sizeof(a), "server.pem"),
		 cf(b, sizeof(b), "client.key"));
	CHECK(start_fails(state, extra, err, sizeof(err)) == 2);
	CHECK(strstr(err, "--tls-key") && strstr(err, "does not go with"));
	/* a client CA that is not PEM */
	snprintf(extra, sizeof(extra),
		 "--tls-cert %s --tls-key %s --tls-client-ca %s",
		 cf(a, sizeof(a), "server.pem"), cf(b, sizeof(b), "server.key"),
		 garbage);
	CHECK(start_fails(state, extra, err, sizeof(err)) == 2);
	CHECK(strstr(err, "--tls-client-ca") != NULL);
	/* one of the pair alone; a client CA without them */
	snprintf(extra, sizeof(extra), "--tls-cert %s",
		 cf(a, sizeof(a), "server.pem"));
	CHECK(start_fails(state, extra, err, sizeof(err)) == 2);
	CHECK(strstr(err, "--tls-key") != NULL);
	snprintf(extra, sizeof(extra), "--tls-client-ca %s",
		 cf(a, sizeof(a), "ca.pem"));
	CHECK(start_fails(state, extra, err, sizeof(err)) == 2);
}

/* gnutls-cli limited to the versions of prio: its exit status. */
static int gnutls_cli(const struct e2e_daemon *d, const char *prio)
{
	char cmd[2048], ca[700];

	snprintf(cmd, sizeof(cmd),
		 "timeout 20 gnutls-cli --x509cafile %s --priority '%s' "
		 "--port %d 127.0.0.1 </dev/null >/dev/null 2>&1",
		 cf(ca, sizeof(ca), "ca.pem"), prio, d->port);
	return sh(cmd);
}

static void test_versions(const struct e2e_daemon *d)
{
	if (sh("command -v gnutls-cli >/dev/null 2>&1") != 0) {
		fprintf(stderr, "gnutls-cli is missing (gnutls-bin)\n");
		CHECK(!"gnutls-cli installed");
		return;
	}
	CHECK(gnutls_cli(d, "NORMAL:-VERS-ALL:+VERS-TLS1.2") == 0);
	CHECK(gnutls_cli(d, "NORMAL:-VERS-ALL:+VERS-TLS1.3") == 0);
	CHECK(gnutls_cli(d, "NORMAL:-VERS-ALL:+VERS-TLS1.1") != 0);
	CHECK(gnutls_cli(d, "NORMAL:-VERS-ALL:+VERS-TLS1.0") != 0);
}

/* The CLI against d: its exit status; env is "NAME=VALUE ..." or "". */
static int cli(const struct e2e_daemon *d, const char *env, const char *opts,
	       const char *cmd)
{
	char line[4096];
	const char *bin = getenv("MODSTORE_CLI");

	snprintf(line, sizeof(line),
		 "env %s timeout 20 %s --url %s %s %s >/dev/null 2>&1", env,
		 bin && *bin ? bin : "bin/modstore", d->url, opts, cmd);
	return sh(line);
}

int main(void)
{
	struct e2e_tmp tmp;
	struct e2e_daemon d;
	struct e2e_resp r;
	char ca[700], cert[700], key[700], ccert[700], ckey[700], env1[800],
	    env2[800], opts[3000];
	int err = 0;

	if (e2e_tmp_make(&tmp, "tls") < 0)
		return 1;
	snprintf(tls, sizeof(tls), "%s/tls", tmp.root);
	if (mkdir(tls, 0700) < 0 || e2e_certs_make(tls) < 0) {
		CHECK(!"certificates made");
		return t_done();
	}
	cf(ca, sizeof(ca), "ca.pem");
	cf(cert, sizeof(cert), "server.pem");
	cf(key, sizeof(key), "server.key");
	cf(ccert, sizeof(ccert), "client.pem");
	cf(ckey, sizeof(ckey), "client.key");

	test_bad_files(tmp.state);

	/* HTTPS with the certificate; the URL says https */
	{
		const char *args[] = {"--tls-cert", cert, "--tls-key", key,
				      NULL};

		if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
			CHECK(!"daemon started with --tls-cert");
			return t_done();
		}
	}
	CHECK(!strncmp(d.url, "https://127.0.0.1:", 18));
	/* a client that does not trust the CA gets nothing */
	CHECK(health(&d, &err) == 0 && err != 0);
	d.cacert = cf(env1, sizeof(env1), "other-ca.pem");
	CHECK(health(&d, &err) == 0 && err != 0);
	d.cacert = ca;
	CHECK(health(&d, NULL) == 200);
	e2e_post(&d, "/modules?size=4096", "tls module", &r);
	E2E_STATUS(&r, 201);
	e2e_resp_release(&r);
	/* plain HTTP to the HTTPS port: no answer */
	{
		struct e2e_daemon plain = d;

		snprintf(plain.url, sizeof(plain.url), "http://127.0.0.1:%d",
			 d.port);
		plain.cacert = NULL;
		CHECK(health(&plain, NULL) == 0);
	}
	test_versions(&d);
	/* the CLI: --cacert, or MODSTORE_CACERT; without, no answer (4) */
	snprintf(opts, sizeof(opts), "--cacert %s", ca);
	CHECK(cli(&d, "", opts, "health") == 0);
	snprintf(env1, sizeof(env1), "MODSTORE_CACERT=%s", ca);
	CHECK(cli(&d, env1, "", "health") == 0);
	CHECK(cli(&d, "", "", "health") == 4);
	CHECK(cli(&d, env1, "", "modules") == 0);
	CHECK(health(&d, NULL) == 200); /* still serving after the failures */
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	/* the same from the environment */
	snprintf(env1, sizeof(env1), "MODSTORE_TLS_CERT=%s", cert);
	snprintf(env2, sizeof(env2), "MODSTORE_TLS_KEY=%s", key);
	{
		const char *env[] = {env1, env2, NULL};

		if (e2e_start_env(&d, tmp.state, tmp.log, NULL, env) < 0) {
			CHECK(!"daemon started with MODSTORE_TLS_*");
			return t_done();
		}
	}
	CHECK(!strncmp(d.url, "https://", 8));
	d.cacert = ca;
	CHECK(health(&d, NULL) == 200);
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	/* client certificates */
	{
		const char *args[] = {"--tls-cert",	 cert, "--tls-key", key,
				      "--tls-client-ca", ca,   NULL};

		if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
			CHECK(!"daemon started with --tls-client-ca");
			return t_done();
		}
	}
	d.cacert = ca;
	/* none: the handshake fails */
	CHECK(health(&d, &err) == 0 && err != 0);
	/* one signed by another CA */
	d.cert = cf(env1, sizeof(env1), "other-client.pem");
	d.key = cf(env2, sizeof(env2), "other-client.key");
	CHECK(health(&d, &err) == 0 && err != 0);
	/* an expired one, signed by the right CA */
	d.cert = cf(env1, sizeof(env1), "expired-client.pem");
	d.key = cf(env2, sizeof(env2), "expired-client.key");
	CHECK(health(&d, &err) == 0 && err != 0);
	/* a good one */
	d.cert = ccert;
	d.key = ckey;
	CHECK(health(&d, NULL) == 200);
	e2e_get(&d, "/modules", &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	/* the CLI with --cert and --key, or their variables */
	snprintf(opts, sizeof(opts), "--cacert %s --cert %s --key %s", ca,
		 ccert, ckey);
	CHECK(cli(&d, "", opts, "health") == 0);
	snprintf(opts, sizeof(opts),
		 "MODSTORE_CACERT=%s MODSTORE_CERT=%s MODSTORE_KEY=%s", ca,
		 ccert, ckey);
	CHECK(cli(&d, opts, "", "modules") == 0);
	snprintf(opts, sizeof(opts), "--cacert %s", ca);
	CHECK(cli(&d, "", opts, "health") == 4);
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	/* an expired server certificate: the daemon warns, clients refuse */
	{
		char ecert[700], ekey[700];
		const char *args[] = {
		    "--tls-cert",
		    cf(ecert, sizeof(ecert), "expired-server.pem"), "--tls-key",
		    cf(ekey, sizeof(ekey), "expired-server.key"), NULL};

		if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
			CHECK(!"daemon started with an expired certificate");
			return t_done();
		}
	}
	d.cacert = ca;
	CHECK(health(&d, &err) == 0 && err != 0);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	{
		char cmd[1200];

		snprintf(cmd, sizeof(cmd), "grep -q 'has expired' '%s'",
			 tmp.log);
		CHECK(sh(cmd) == 0);
	}
	e2e_tmp_done(&tmp);
	return t_done();
}
