/*
 * e2e_cluster_tls.c - a cluster whose nodes serve HTTPS only and require
 * client certificates (--tls-cert, --tls-key, --tls-client-ca, all from
 * the cluster's CA) and a token (--token-file): 3 etcd members and 3
 * nodes, real processes, on loopback, every certificate made by certtool.
 *
 * - writes through the leader are acknowledged (--sync-replicas 1: a
 *   follower fetched or was sent the files over TLS) and every node
 *   converges: the same root, commits store and bytes of the commit files;
 * - a follower stopped during commits and started again catches up,
 *   fetching the files it lacks from its peers over TLS;
 * - a client without a certificate is refused by every node (the
 *   handshake fails), while one with a certificate reads the leader's
 *   root and last commit there;
 * - a node whose certificate another CA signed takes no part: its peers
 *   refuse its handshakes, so it fetches no file and stays behind (503
 *   behind), while the others go on writing and converging.
 */
#include "cluster.h"
#include "e2e.h"
#include "t.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NNODES	    3
#define MAX_COMMITS 64
#define CONVERGE_MS 20000
#define TOKEN	    "cluster-tls-token"

static struct cl_etcd etcd;
static struct cl_node nodes[NNODES + 1];
static char root[512], tlsdir[600], token_file[600];
static char module_id[65];
static char commits[MAX_COMMITS][65];
static int ncommits;
static unsigned long counter;

/* tlsdir/name into buf. */
static const char *cf(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tlsdir, name);
	return buf;
}

/*
 * Start node i with the node certificate cert (signed by ca or other-ca)
 * and its key, checking clients and peers against ca.pem, with the
 * token; the test talks to it trusting server_ca, with client.pem.
 */
static int node_start(int i, const char *cert, const char *server_ca)
{
	/* static: nodes[i].tls points here, across restarts */
	static char files[NNODES + 1][6][700];
	char(*f)[700] = files[i];
	const char *args[] = {"--lease-ttl",
			      "2",
			      "--sync-replicas",
			      "1",
			      "--token-file",
			      token_file,
			      "--tls-cert",
			      f[0],
			      "--tls-key",
			      f[1],
			      "--tls-client-ca",
			      cf(f[2], sizeof(f[2]), "ca.pem"),
			      NULL};

	snprintf(f[0], sizeof(f[0]), "%s/%s.pem", tlsdir, cert);
	snprintf(f[1], sizeof(f[1]), "%s/%s.key", tlsdir, cert);
	nodes[i].tls.cacert = cf(f[3], sizeof(f[3]), server_ca);
	nodes[i].tls.cert = cf(f[4], sizeof(f[4]), "client.pem");
	nodes[i].tls.key = cf(f[5], sizeof(f[5]), "client.key");
	if (cl_node_start(&nodes[i], &etcd, root, i, NULL, args) < 0)
		return -1;
	nodes[i].d.token = TOKEN;
	return 0;
}

/* The value of metric line name (with its labels) on node i, or -1. */
static long long metric_of(int i, const char *name)
{
	return cl_node_metric(&nodes[i], name);
}

/* Module commit files node i made from what it fetched from peers. */
static long long files_fetched(int i)
{
	return metric_of(
		   i, "modstore_cluster_files_fetched_total{how=\"whole\"}") +
	       metric_of(i,
			 "modstore_cluster_files_fetched_total{how=\"pages\"}");
}

/* The applied position of node i (GET /root), or -1. */
static long long applied_of(int i)
{
	struct e2e_resp r;
	long long v;

	if (e2e_get(&nodes[i].d, "/root", &r) < 0)
		return -1;
	v = cl_applied(&r);
	e2e_resp_release(&r);
	return v;
}

/* GET path on node i once it has applied seq; the answer in r. */
static int get_at(int i, const char *path, long long seq, struct e2e_resp *r)
{
	char h[64];
	const char *hdrs[] = {h, NULL};

	snprintf(h, sizeof(h), "Modstore-Min-Applied: %lld", seq);
	return e2e_request(&nodes[i].d, "GET", path, NULL, 0, hdrs, r);
}

/*
 * One commit of 64 new bytes on the leader l (session, write, commit);
 * kept in commits[]. The status of the commit, 0 when a request failed.
 */
static long commit_once(int l)
{
	struct e2e_resp r;
	char path[300], sid[65] = "", data[64];
	long st;

	if (e2e_post(&nodes[l].d, "/sessions", "{}", &r) < 0)
		return 0;
	if (r.status == 201 && e2e_str(&r, "id"))
		snprintf(sid, sizeof(sid), "%s", e2e_str(&r, "id"));
	st = r.status;
	e2e_resp_release(&r);
	if (!sid[0])
		return st;
	counter++;
	memset(data, 0, sizeof(data));
	snprintf(data, sizeof(data), "write %lu over TLS", counter);
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=%lu", sid, module_id,
		 (counter * 4096) % 65536);
	if (e2e_request(&nodes[l].d, "PUT", path, data, sizeof(data), NULL,
			&r) < 0)
		return 0;
	st = r.status;
	e2e_resp_release(&r);
	if (st != 204 && st != 200)
		return st;
	snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
	if (e2e_post(&nodes[l].d, path, NULL, &r) < 0)
		return 0;
	st = r.status;
	if (st == 201 && e2e_str(&r, "commit") && ncommits < MAX_COMMITS)
		snprintf(commits[ncommits++], 65, "%s", e2e_str(&r, "commit"));
	else
		fprintf(stderr, "commit on node %d: %ld %s\n", l, st,
			r.body ? r.body : "");
	e2e_resp_release(&r);
	return st;
}

/* n commits on the leader l, each acknowledged: 1, or 0. */
static int commit_n(int l, int n)
{
	int k;

	for (k = 0; k < n; k++)
		if (commit_once(l) != 201)
			return 0;
	return 1;
}

/* Node i holds the bytes a of commit c's module memory: 1, or 0. */
static int same_file(int i, const char *c, const struct e2e_resp *a)
{
	struct e2e_resp b;
	char path[300];
	int ok;

	snprintf(path, sizeof(path), "/commits/%.64s/modules/%s/memory", c,
		 module_id);
	if (e2e_get(&nodes[i].d, path, &b) < 0)
		return 0;
	ok = b.status == 200 && b.len == a->len &&
	     !memcmp(a->body, b.body, a->len);
	e2e_resp_release(&b);
	return ok;
}

/*
 * Nodes 0..n-1 (those running) have applied the leader's position and
 * hold its root, its commits store and the bytes of every commit file of
 * this test: 1, or 0.
 */
static int converged(int n, int l)
{
	struct e2e_resp ref, rc, r, a;
	char path[300];
	long long seq = applied_of(l);
	int i, k, ok = seq > 0;

	if (!ok || e2e_get(&nodes[l].d, "/root", &ref) < 0)
		return 0;
	if (e2e_get(&nodes[l].d, "/commits", &rc) < 0) {
		e2e_resp_release(&ref);
		return 0;
	}
	for (i = 0; i < n && ok; i++) {
		if (!nodes[i].running || i == l)
			continue;
		ok = get_at(i, "/root", seq, &r) == 0;
		if (ok) {
			ok = r.status == 200 && !strcmp(r.body, ref.body);
			e2e_resp_release(&r);
		}
		ok = ok && e2e_get(&nodes[i].d, "/commits", &r) == 0;
		if (ok) {
			ok = json_equal(r.json, rc.json);
			e2e_resp_release(&r);
		}
	}
	for (k = 0; k < ncommits && ok; k++) {
		snprintf(path, sizeof(path), "/commits/%.64s/modules/%s/memory",
			 commits[k], module_id);
		ok = e2e_get(&nodes[l].d, path, &a) == 0;
		if (!ok)
			break;
		for (i = 0; i < n && ok; i++)
			if (nodes[i].running && i != l)
				ok = same_file(i, commits[k], &a);
		e2e_resp_release(&a);
	}
	e2e_resp_release(&ref);
	e2e_resp_release(&rc);
	return ok;
}

/* converged(n, l) within CONVERGE_MS (polling): 1, or 0. */
static int wait_converged(int n, int l)
{
	long long until = cl_now_ms() + CONVERGE_MS;

	do {
		if (converged(n, l))
			return 1;
		usleep(50000);
	} while (cl_now_ms() < until);
	fprintf(stderr, "nodes 0..%d not converged on leader %d\n", n - 1, l);
	return 0;
}

/*
 * Stop node i with SIGTERM: 1 when it exits 0 (under a sanitizer, with
 * no report: no leak of its copies of the TLS text).
 */
static int node_stop(int i)
{
	int st = e2e_stop(&nodes[i].d, SIGTERM);

	nodes[i].running = 0;
	if (st != 0)
		fprintf(stderr, "node %d exited %d (see %s)\n", i, st,
			nodes[i].log);
	return st == 0;
}

/* --- the tests ------------------------------------------------------------ */

/* A deploy and commits through the leader; every node converges. */
static int test_replicates(void)
{
	struct e2e_resp r;
	int l = cl_wait_leader(nodes, NNODES, 15000);

	CHECK(l >= 0);
	if (l < 0)
		return -1;
	CHECK(e2e_request(&nodes[l].d, "POST", "/modules?size=65536", "tls", 3,
			  NULL, &r) == 0);
	E2E_STATUS(&r, 201);
	if (e2e_str(&r, "id"))
		snprintf(module_id, sizeof(module_id), "%s", e2e_str(&r, "id"));
	e2e_resp_release(&r);
	CHECK(commit_n(l, 3));
	CHECK(wait_converged(NNODES, l));
	return l;
}

/* A follower stopped during commits and started again catches up. */
static void test_restart(int l)
{
	int f = (l + 1) % NNODES;

	CHECK(commit_n(l, 2));
	CHECK(node_stop(f));
	CHECK(commit_n(l, 3));
	CHECK(node_start(f, "node", "ca.pem") == 0);
	CHECK(commit_n(l, 2));
	CHECK(wait_converged(NNODES, l));
	/* what it lacked came from its peers, fetched over TLS */
	CHECK(files_fetched(f) > 0);
}

/* Every node refuses a client without a certificate. */
static void test_no_client_cert(int l)
{
	long long seq = applied_of(l);
	struct e2e_daemon bare;
	struct e2e_resp r, ref;
	char path[128];
	int i, rc;

	CHECK(e2e_get(&nodes[l].d, "/root", &ref) == 0);
	for (i = 0; i < NNODES; i++) {
		bare = nodes[i].d;
		bare.cert = NULL;
		bare.key = NULL;
		rc = e2e_get(&bare, "/health", &r);
		CHECK(rc < 0); /* no answer: the handshake failed */
		if (rc == 0)
			e2e_resp_release(&r);
		/* with one: served, at the leader's root and last commit */
		CHECK(get_at(i, "/root", seq, &r) == 0);
		CHECK(r.status == 200 && ref.body && !strcmp(r.body, ref.body));
		e2e_resp_release(&r);
		snprintf(path, sizeof(path), "/commits/%.64s",
			 ncommits ? commits[ncommits - 1] : "none");
		CHECK(get_at(i, path, seq, &r) == 0);
		E2E_STATUS(&r, 200);
		e2e_resp_release(&r);
	}
	e2e_resp_release(&ref);
}

/*
 * A node whose certificate another CA signed (and whose own CA is the
 * cluster's): the others refuse its handshakes as clients and as servers,
 * so it fetches nothing and stays behind; they go on.
 */
static void test_other_ca(int l)
{
	const int x = NNODES;
	struct e2e_resp r;
	long long seq;

	memset(&nodes[x], 0, sizeof(nodes[x]));
	CHECK(node_start(x, "other-node", "other-ca.pem") == 0);
	if (!nodes[x].running)
		return;
	CHECK(commit_n(l, 3));
	CHECK(wait_converged(NNODES, l));
	seq = applied_of(l);
	/* Modstore-Min-Applied: the node waits 2 s, then says it is behind */
	CHECK(get_at(x, "/root", seq, &r) == 0);
	E2E_ERROR(&r, 503, "behind");
	e2e_resp_release(&r);
	CHECK(applied_of(x) >= 0 && applied_of(x) < seq);
	CHECK(metric_of(x, "modstore_cluster_fetches_total") > 0);
	CHECK(files_fetched(x) == 0);
	CHECK(metric_of(x, "modstore_cluster_leader{node=\"n3\"}") == 0);
	/* and the cluster writes on without it */
	CHECK(commit_n(l, 1));
	CHECK(wait_converged(NNODES, l));
	CHECK(node_stop(x));
}

/* tlsdir with the certificates, token_file with the token: 0, or -1. */
static int setup_files(void)
{
	FILE *f;

	snprintf(tlsdir, sizeof(tlsdir), "%s/tls", root);
	snprintf(token_file, sizeof(token_file), "%s/token", root);
	if (mkdir(tlsdir, 0700) < 0 || e2e_certs_make(tlsdir) < 0)
		return -1;
	f = fopen(token_file, "w");
	if (!f)
		return -1;
	fputs(TOKEN "\n", f);
	return fclose(f) == 0 ? 0 : -1;
}

int main(void)
{
	struct e2e_tmp tmp;
	int i, l, ok = 1;

	if (access(getenv("ETCD") ? getenv("ETCD") : "/usr/bin/etcd", X_OK)) {
		fprintf(stderr, "no etcd: tools/install-deps installs it\n");
		CHECK(0);
		return t_done();
	}
	if (e2e_tmp_make(&tmp, "cluster-tls") < 0)
		return 1;
	snprintf(root, sizeof(root), "%s", tmp.root);
	CHECK(setup_files() == 0);
	CHECK(cl_etcd_start(&etcd, root, 3) == 0);
	for (i = 0; i < NNODES; i++)
		ok &= node_start(i, "node", "ca.pem") == 0;
	CHECK(ok);
	if (ok && (l = test_replicates()) >= 0) {
		test_restart(l);
		test_no_client_cert(l);
		test_other_ca(l);
	}
	for (i = 0; i < NNODES; i++)
		if (nodes[i].running)
			CHECK(node_stop(i));
	for (i = 0; i <= NNODES; i++)
		cl_node_signal(&nodes[i], SIGKILL);
	cl_etcd_stop(&etcd);
	e2e_tmp_done(&tmp);
	return t_done();
}
