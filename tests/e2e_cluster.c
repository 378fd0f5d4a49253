/*
 * e2e_cluster.c - cluster mode (docs/cluster.md) on loopback: 3 etcd
 * members and 3 nodes, real processes.
 *
 * - options: --etcd needs --node-id and --advertise; bad values refused;
 *   no etcd reachable: writes answer 503 no_leader with Retry-After;
 * - writes through any node (307 to the leader, same path and query),
 *   reads everywhere; Modstore-Applied on every answer; the route between
 *   nodes refuses what is not the leader's record to a follower;
 *   Modstore-Min-Applied waits and answers 503 behind;
 * - all nodes converge: the same root, the same commits store, byte-
 *   identical commit files; a restarted follower keeps the commit ids;
 * - rounds of SIGKILL of the leader at a random moment of a stream of
 *   commits, restores and deletes: a new leader within the lease TTL plus
 *   a margin, every acknowledged write on every live node;
 * - SIGSTOP of the leader past its lease, SIGCONT: none of its writes
 *   succeeds, it rejoins as a follower;
 * - SIGKILL of one etcd member during writes: writes go on;
 * - the log is compacted (--compact-after): a follower down while
 *   records past its position were removed from etcd comes back and
 *   converges, and so does one frozen past its lease meanwhile; a node
 *   joining with an empty directory after compaction
 *   catches up;
 * - catching up by pages: a follower frozen (SIGSTOP) during commits of a
 *   larger module, and one stopped and restarted, converge, and what
 *   each fetched from peers is about the changed pages, not whole files
 *   (modstore_cluster_fetched_bytes_total and _files_fetched_total).
 *
 * MODSTORE_CLUSTER_ROUNDS sets the SIGKILL rounds (default 4).
 */
#include "cluster.h"
#include "e2e.h"
#include "t.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TTL	       2
#define FAILOVER_LIMIT (TTL * 1000 + 3000) /* ms: the TTL plus a margin */
#define NNODES	       3
#define MAX_COMMITS    512

static struct cl_etcd etcd;
static struct cl_node nodes[NNODES + 1];
static int nnodes = NNODES;
static char root[512];
static char module_id[64 + 1];
static unsigned long counter;

/*
 * acknowledged commits, and whether an acknowledged delete removed them
 * (-1: a delete was sent and not answered, so either may hold)
 */
static char acked[MAX_COMMITS][65];
static int acked_deleted[MAX_COMMITS];
static int nacked;

#define COMPACT_AFTER 4
static const char *const node_args[] = {
    "--lease-ttl", "2", "--sync-replicas", "1", "--compact-after", "4", NULL};

/* --- helpers -------------------------------------------------------------- */

static int req(int i, const char *method, const char *path, const void *body,
	       size_t len, struct e2e_resp *r)
{
	return cl_request(nodes, nnodes, i, method, path, body, len, r);
}

/* A running node other than skip, or -1. */
static int some_node(int skip)
{
	int i;

	for (i = 0; i < nnodes; i++)
		if (nodes[i].running && i != skip)
			return i;
	return -1;
}

/*
 * One commit of 64 new bytes through node i (following 307s), directly
 * on node i when direct. Its id into out; the status of the commit (0
 * when a request failed).
 */
static long commit_once(int i, int direct, char out[65])
{
	struct e2e_resp r;
	char path[300], sid[65] = "", data[64];
	uint64_t off;
	long st = 0;
	int rc;

	out[0] = '\0';
	rc = direct ? e2e_request(&nodes[i].d, "POST", "/sessions", "{}", 2,
				  NULL, &r)
		    : req(i, "POST", "/sessions", "{}", 2, &r);
	if (rc < 0)
		return 0;
	if (r.status == 201 && e2e_str(&r, "id"))
		snprintf(sid, sizeof(sid), "%s", e2e_str(&r, "id"));
	st = r.status;
	e2e_resp_release(&r);
	if (!sid[0])
		return st == 201 ? 0 : st;
	counter++;
	memset(data, 0, sizeof(data));
	snprintf(data, sizeof(data), "write %lu", counter);
	off = (counter * 64) % (65536 - 64);
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=%llu", sid, module_id,
		 (unsigned long long)off);
	rc = direct ? e2e_request(&nodes[i].d, "PUT", path, data, sizeof(data),
				  NULL, &r)
		    : req(i, "PUT", path, data, sizeof(data), &r);
	if (rc < 0)
		return 0;
	st = r.status;
	e2e_resp_release(&r);
	if (st != 204 && st != 200)
		return st;
	snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
	rc = direct ? e2e_request(&nodes[i].d, "POST", path, NULL, 0, NULL, &r)
		    : req(i, "POST", path, NULL, 0, &r);
	if (rc < 0)
		return 0;
	st = r.status;
	if (st == 201 && e2e_str(&r, "commit"))
		snprintf(out, 65, "%s", e2e_str(&r, "commit"));
	e2e_resp_release(&r);
	return st;
}

static void ack_commit(const char *id)
{
	if (nacked < MAX_COMMITS) {
		snprintf(acked[nacked], sizeof(acked[0]), "%s", id);
		acked_deleted[nacked++] = 0;
	}
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
 * Every running node has applied the leader's position and holds the same
 * root, the same commits store and the same bytes of every commit file.
 * The number of nodes compared, or -1.
 */
static int converged(void)
{
	struct e2e_resp r, ref_root = {0}, ref_commits = {0}, a, b;
	long long seq = -1;
	json_t *cj = NULL, *mods;
	const char *c, *m;
	char path[300];
	int i, first = -1, ok = 1, compared = 0, l;

	l = cl_wait_leader(nodes, nnodes, 15000);
	if (l < 0)
		return -1;
	seq = applied_of(l);
	for (i = 0; i < nnodes && ok; i++) {
		if (!nodes[i].running)
			continue;
		if (get_at(i, "/root", seq, &r) < 0 || r.status != 200) {
			fprintf(stderr, "node %d: /root at %lld: %ld\n", i, seq,
				r.status);
			ok = 0;
		} else if (first < 0) {
			first = i;
			ref_root = r;
			memset(&r, 0, sizeof(r));
			get_at(i, "/commits", seq, &ref_commits);
			cj = ref_commits.json;
		} else {
			ok = !strcmp(r.body, ref_root.body);
			if (!ok)
				fprintf(stderr, "node %d root %s vs %s", i,
					r.body, ref_root.body);
			e2e_get(&nodes[i].d, "/commits", &a);
			if (ok && !json_equal(a.json, cj)) {
				fprintf(stderr, "node %d: other commits\n", i);
				ok = 0;
			}
			e2e_resp_release(&a);
		}
		e2e_resp_release(&r);
		compared++;
	}
	/* byte-identical commit files */
	json_object_foreach(cj, c, mods)
	{
		json_t *mc;

		json_object_foreach(mods, m, mc)
		{
			snprintf(path, sizeof(path),
				 "/commits/%s/modules/%s/memory", c, m);
			if (e2e_get(&nodes[first].d, path, &a) < 0)
				continue;
			for (i = 0; i < nnodes && ok; i++) {
				if (!nodes[i].running || i == first)
					continue;
				if (e2e_get(&nodes[i].d, path, &b) < 0 ||
				    b.status != 200 || b.len != a.len ||
				    memcmp(a.body, b.body, a.len) != 0) {
					fprintf(stderr, "node %d: %s differs\n",
						i, path);
					ok = 0;
				}
				e2e_resp_release(&b);
			}
			e2e_resp_release(&a);
		}
	}
	/* every acknowledged write is there */
	for (i = 0; i < nacked && ok && cj; i++) {
		int has = json_object_get(cj, acked[i]) != NULL;

		if (acked_deleted[i] < 0)
			continue; /* a delete whose answer was lost */
		if (has == acked_deleted[i]) {
			fprintf(stderr, "acknowledged %s %s is %s\n",
				acked_deleted[i] ? "delete of" : "commit",
				acked[i], has ? "there" : "missing");
			ok = 0;
		}
	}
	e2e_resp_release(&ref_root);
	e2e_resp_release(&ref_commits);
	return ok ? compared : -1;
}

static int wait_converged(int want)
{
	long long until = cl_now_ms() + 20000;
	int got;

	do {
		got = converged();
		if (got == want)
			return 1;
		usleep(100000);
	} while (cl_now_ms() < until);
	fprintf(stderr, "not converged (%d of %d nodes)\n", got, want);
	return 0;
}

static int running_count(void)
{
	int i, k = 0;

	for (i = 0; i < nnodes; i++)
		k += nodes[i].running;
	return k;
}

/* --- the tests ------------------------------------------------------------ */

static void test_options(void)
{
	char out[32768];
	const char *no_id[] = {"--etcd", "http://127.0.0.1:1", "--advertise",
			       "http://127.0.0.1:2", NULL};
	const char *no_adv[] = {"--etcd", "http://127.0.0.1:1", "--node-id",
				"a", NULL};
	const char *bad_ttl[] = {"--lease-ttl", "0", NULL};
	const char *bad_url[] = {"--etcd", "127.0.0.1:1", NULL};
	const char *bad_id[] = {"--node-id", "a/b", NULL};
	const char *keep[] = {
	    "--etcd",	   "http://127.0.0.1:1", "--node-id",	   "a",
	    "--advertise", "http://127.0.0.1:2", "--keep-commits", "3",
	    NULL};
	const char *help[] = {"--help", NULL};

	CHECK(e2e_run(no_id, out, sizeof(out)) == 2);
	CHECK(e2e_run(no_adv, out, sizeof(out)) == 2);
	CHECK(e2e_run(bad_ttl, out, sizeof(out)) == 2);
	CHECK(e2e_run(bad_url, out, sizeof(out)) == 2);
	CHECK(e2e_run(bad_id, out, sizeof(out)) == 2);
	CHECK(e2e_run(keep, out, sizeof(out)) == 2);
	CHECK(e2e_run(help, out, sizeof(out)) == 0);
	CHECK(strstr(out, "--sync-replicas") && strstr(out, "MODSTORE_ETCD"));
}

/* A node whose etcd does not answer: no leader, writes 503. */
static void test_no_leader(void)
{
	struct cl_etcd dead;
	struct cl_node nd;
	struct e2e_resp r;
	char buf[32];

	memset(&dead, 0, sizeof(dead));
	snprintf(dead.urls, sizeof(dead.urls), "http://127.0.0.1:%d",
		 cl_free_port());
	memset(&nd, 0, sizeof(nd));
	CHECK(cl_node_start(&nd, &dead, root, 9, NULL, node_args) == 0);
	if (!nd.running)
		return;
	CHECK(e2e_post(&nd.d, "/persist", NULL, &r) == 0);
	E2E_ERROR(&r, 503, "no_leader");
	CHECK(e2e_header(&r, "Retry-After", buf, sizeof(buf)) != NULL);
	CHECK(cl_applied(&r) == 0);
	e2e_resp_release(&r);
	CHECK(e2e_get(&nd.d, "/root", &r) == 0);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	cl_node_signal(&nd, SIGTERM);
}

static void test_writes_anywhere(void)
{
	struct e2e_resp r;
	char buf[512], id[65];
	int l, f, i, ok;
	long long t0, seq;

	l = cl_wait_leader(nodes, nnodes, 15000);
	CHECK(l >= 0);
	if (l < 0)
		return;
	f = (l + 1) % nnodes;
	/* a follower redirects, same path and query (once it knows) */
	t0 = cl_now_ms();
	for (;;) {
		CHECK(e2e_request(&nodes[f].d, "POST", "/modules?size=65536",
				  "code-1", 6, NULL, &r) == 0);
		if (r.status != 503 || cl_now_ms() - t0 > 5000)
			break;
		e2e_resp_release(&r);
		usleep(20000);
	}
	E2E_STATUS(&r, 307);
	CHECK(e2e_header(&r, "Location", buf, sizeof(buf)) &&
	      strstr(buf, nodes[l].d.url) == buf &&
	      !strcmp(buf + strlen(nodes[l].d.url), "/modules?size=65536"));
	CHECK(cl_applied(&r) >= 0);
	e2e_resp_release(&r);
	/* deploy through the follower, following the 307 */
	CHECK(req(f, "POST", "/modules?size=65536", "code-1", 6, &r) == 0);
	E2E_STATUS(&r, 201);
	if (e2e_str(&r, "id"))
		snprintf(module_id, sizeof(module_id), "%s", e2e_str(&r, "id"));
	e2e_resp_release(&r);
	/* commits through every node */
	for (i = 0, ok = 1; i < 9; i++) {
		long st = commit_once(i % nnodes, 0, id);

		ok &= st == 201;
		if (st == 201)
			ack_commit(id);
	}
	CHECK(ok);
	/* a restore, a delete, a persist and a gc, each through a follower */
	snprintf(buf, sizeof(buf), "/restore/%s", acked[2]);
	CHECK(req(f, "POST", buf, NULL, 0, &r) == 0);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	snprintf(buf, sizeof(buf), "/commits/%s", acked[4]);
	CHECK(req(f, "DELETE", buf, NULL, 0, &r) == 0);
	E2E_STATUS(&r, 204);
	if (r.status == 204)
		acked_deleted[4] = 1;
	e2e_resp_release(&r);
	CHECK(req(f, "POST", "/persist", NULL, 0, &r) == 0);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	CHECK(req(f, "POST", "/gc", NULL, 0, &r) == 0);
	E2E_STATUS(&r, 200);
	seq = cl_applied(&r);
	CHECK(seq >= 14); /* deploy, 9 commits, restore, delete, persist, gc */
	e2e_resp_release(&r);
	CHECK(wait_converged(nnodes));
	/* the root after the restore is the restored commit */
	CHECK(get_at(f, "/root", seq, &r) == 0);
	CHECK(e2e_str(&r, "root") && !strcmp(e2e_str(&r, "root"), acked[2]));
	e2e_resp_release(&r);
	/* Modstore-Min-Applied beyond the log: 503 behind after 2 s */
	t0 = cl_now_ms();
	CHECK(get_at(f, "/root", seq + 1000, &r) == 0);
	E2E_ERROR(&r, 503, "behind");
	CHECK(cl_now_ms() - t0 >= 1900);
	e2e_resp_release(&r);
	/* a follower restarted keeps the commit ids (rebuilt from the log) */
	CHECK(e2e_get(&nodes[f].d, "/commits", &r) == 0);
	cl_node_signal(&nodes[f], SIGTERM);
	CHECK(cl_node_start(&nodes[f], &etcd, root, f, NULL, node_args) == 0);
	{
		struct e2e_resp r2;

		CHECK(get_at(f, "/commits", seq, &r2) == 0);
		CHECK(r2.status == 200 && json_equal(r.json, r2.json));
		e2e_resp_release(&r2);
	}
	e2e_resp_release(&r);
}

/*
 * POST /cluster/records/SEQ, between nodes: a leader is no follower; a
 * record whose fence is no leader's is refused; a body that is no record
 * is 400; the read token may not.
 */
static void test_records_route(void)
{
	static const char stale[] = "{\"op\":\"persist\",\"fence\":1}\n[]\n";
	struct e2e_resp r;
	int l, f;

	l = cl_wait_leader(nodes, nnodes, 15000);
	f = some_node(l);
	CHECK(l >= 0 && f >= 0);
	if (l < 0 || f < 0)
		return;
	CHECK(e2e_post(&nodes[l].d, "/cluster/records/999", stale, &r) == 0);
	E2E_ERROR(&r, 409, "not_a_follower");
	e2e_resp_release(&r);
	CHECK(e2e_post(&nodes[f].d, "/cluster/records/999", stale, &r) == 0);
	E2E_ERROR(&r, 409, "stale_leader");
	e2e_resp_release(&r);
	CHECK(e2e_post(&nodes[f].d, "/cluster/records/999", "{}", &r) == 0);
	E2E_ERROR(&r, 400, "invalid_body");
	e2e_resp_release(&r);
	CHECK(e2e_post(&nodes[f].d, "/cluster/records/x", stale, &r) == 0);
	E2E_ERROR(&r, 400, "invalid_index");
	e2e_resp_release(&r);
}

struct killer {
	pid_t pid;
	int delay_ms;
	long long at;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	usleep((useconds_t)k->delay_ms * 1000);
	k->at = cl_now_ms();
	kill(k->pid, SIGKILL);
	return NULL;
}

static void test_kill_rounds(void)
{
	const char *env = getenv("MODSTORE_CLUSTER_ROUNDS");
	int rounds = env ? atoi(env) : 4, round, l, i, op, survived = 0;
	long long worst = 0, took;
	struct killer k;
	pthread_t th;
	struct e2e_resp r;
	char id[65], path[200];
	long st;

	for (round = 0; round < rounds; round++) {
		l = cl_wait_leader(nodes, nnodes, 15000);
		CHECK(l >= 0);
		if (l < 0)
			return;
		k.pid = nodes[l].d.pid;
		k.delay_ms = 50 + rand() % 400;
		pthread_create(&th, NULL, killer_main, &k);
		/* a stream of commits, restores and deletes to the leader */
		for (op = 0; op < 200; op++) {
			if (op % 5 == 3 && nacked > 2) {
				i = rand() % nacked;
				if (acked_deleted[i])
					continue;
				snprintf(path, sizeof(path), "/restore/%s",
					 acked[i]);
				if (e2e_post(&nodes[l].d, path, NULL, &r) < 0)
					break;
				st = r.status;
				e2e_resp_release(&r);
			} else if (op % 5 == 4 && nacked > 3) {
				i = rand() % (nacked - 1);
				if (acked_deleted[i])
					continue;
				snprintf(path, sizeof(path), "/commits/%s",
					 acked[i]);
				/* unanswered, it may have been done: unknown */
				acked_deleted[i] = -1;
				if (e2e_request(&nodes[l].d, "DELETE", path,
						NULL, 0, NULL, &r) < 0)
					break;
				st = r.status;
				if (st == 204)
					acked_deleted[i] = 1;
				e2e_resp_release(&r);
			} else {
				st = commit_once(l, 1, id);
				if (st == 201)
					ack_commit(id);
			}
			if (st == 0)
				break; /* the leader is gone */
		}
		pthread_join(th, NULL);
		cl_node_signal(&nodes[l], SIGKILL); /* reaped */
		/* failover: the first acknowledged write on a new leader */
		do {
			st = commit_once(some_node(l), 0, id);
			if (st == 201)
				ack_commit(id);
			else
				usleep(20000);
			took = cl_now_ms() - k.at;
		} while (st != 201 && took < 20000);
		CHECK(st == 201);
		CHECK(took <= FAILOVER_LIMIT);
		if (took > worst)
			worst = took;
		printf("round %d: killed after %d ms, write on the new leader "
		       "%lld ms after the kill\n",
		       round, k.delay_ms, took);
		CHECK(wait_converged(running_count()));
		/* the killed node comes back with its directory */
		CHECK(cl_node_start(&nodes[l], &etcd, root, l, NULL,
				    node_args) == 0);
		if (wait_converged(running_count()))
			survived++;
	}
	CHECK(survived == rounds);
	printf("%d of %d SIGKILL rounds survived; worst failover %lld ms\n",
	       survived, rounds, worst);
}

static void test_sigstop(void)
{
	struct e2e_resp r;
	long long t0, took;
	char id[65];
	int l, nl, i, bad = 0, leads;
	long st;

	l = cl_wait_leader(nodes, nnodes, 15000);
	CHECK(l >= 0);
	if (l < 0)
		return;
	cl_node_signal(&nodes[l], SIGSTOP);
	nodes[l].running = 0; /* asked nothing while frozen */
	t0 = cl_now_ms();
	nl = cl_wait_leader(nodes, nnodes, FAILOVER_LIMIT + 5000);
	took = cl_now_ms() - t0;
	CHECK(nl >= 0 && nl != l);
	CHECK(took <= FAILOVER_LIMIT);
	printf("SIGSTOP: a new leader %lld ms after the freeze\n", took);
	st = commit_once(nl, 0, id);
	CHECK(st == 201);
	if (st == 201)
		ack_commit(id);
	usleep(500000);
	kill(nodes[l].d.pid, SIGCONT);
	nodes[l].running = 1;
	/* none of the woken node's writes succeeds */
	for (i = 0; i < 5; i++) {
		st = commit_once(l, 1, id);
		if (st >= 200 && st < 300)
			bad++;
		if (e2e_post(&nodes[l].d, "/persist", NULL, &r) == 0) {
			if (r.status >= 200 && r.status < 300)
				bad++;
			e2e_resp_release(&r);
		}
	}
	CHECK(bad == 0);
	/* it rejoins as a follower */
	t0 = cl_now_ms();
	do {
		leads = cl_node_leads(&nodes[l]);
		usleep(20000);
	} while (leads != 0 && cl_now_ms() - t0 < 10000);
	CHECK(leads == 0);
	CHECK(wait_converged(running_count()));
}

static void test_etcd_member_loss(void)
{
	char id[65];
	int ok = 0, tries = 0;
	long st;

	cl_etcd_signal(&etcd, 0, SIGKILL);
	while (ok < 10 && tries < 300) {
		st = commit_once(some_node(-1), 0, id);
		if (st == 201) {
			ack_commit(id);
			ok++;
		} else {
			usleep(50000);
		}
		tries++;
	}
	CHECK(ok == 10);
	CHECK(wait_converged(running_count()));
}

/* 1 when record seq is in etcd, 0 when not (compacted), -1 no answer. */
static int record_kept(unsigned long long seq)
{
	char k[128];

	snprintf(k, sizeof(k), "/modstore/modstore/log/%020llu", seq);
	return cl_etcd_has(&etcd, k);
}

/*
 * A follower down while the log is compacted past its position comes
 * back: it copies the state (the snapshot, the files from peers) and
 * follows; the same root, commits store and files as the others.
 */
static void test_compaction(void)
{
	long long pos, t0, start = cl_now_ms();
	char id[65], key[128];
	int l, f, i, ok = 1, kept = 1;

	l = cl_wait_leader(nodes, nnodes, 15000);
	CHECK(l >= 0);
	if (l < 0)
		return;
	f = some_node(l);
	CHECK(f >= 0 && wait_converged(running_count()));
	pos = applied_of(f);
	CHECK(pos > 0);
	cl_node_signal(&nodes[f], SIGTERM);
	for (i = 0; i < 3 * COMPACT_AFTER; i++) {
		long st = commit_once(l, 1, id);

		ok &= st == 201;
		if (st == 201)
			ack_commit(id);
	}
	CHECK(ok);
	/* the records after its position are gone from etcd, and record 1 */
	t0 = cl_now_ms();
	while (kept != 0 && cl_now_ms() - t0 < 5000) {
		kept = record_kept((unsigned long long)pos + 1);
		if (kept != 0)
			usleep(50000);
	}
	CHECK(kept == 0);
	CHECK(record_kept(1) == 0);
	printf("compaction: the log no longer holds record %lld, the first "
	       "one the stopped follower lacks\n",
	       pos + 1);
	CHECK(cl_node_start(&nodes[f], &etcd, root, f, NULL, node_args) == 0);
	CHECK(wait_converged(running_count()));
	/*
	 * A follower frozen past its lease (its nodes/ID gone, so compaction
	 * goes on without it) wakes behind the compacted start: it finds
	 * out, copies the state and follows.
	 */
	l = cl_wait_leader(nodes, nnodes, 15000);
	f = some_node(l);
	CHECK(l >= 0 && f >= 0);
	if (l < 0 || f < 0)
		return;
	pos = applied_of(f);
	cl_node_signal(&nodes[f], SIGSTOP);
	nodes[f].running = 0;
	snprintf(key, sizeof(key), "/modstore/modstore/nodes/%s", nodes[f].id);
	t0 = cl_now_ms();
	while (cl_etcd_has(&etcd, key) != 0 && cl_now_ms() - t0 < 3 * 2000)
		usleep(50000);
	CHECK(cl_etcd_has(&etcd, key) == 0);
	for (i = 0, ok = 1; i < 3 * COMPACT_AFTER; i++) {
		long st = commit_once(l, 1, id);

		ok &= st == 201;
		if (st == 201)
			ack_commit(id);
	}
	CHECK(ok);
	t0 = cl_now_ms();
	while ((kept = record_kept((unsigned long long)pos + 1)) != 0 &&
	       cl_now_ms() - t0 < 5000)
		usleep(50000);
	CHECK(kept == 0);
	kill(nodes[f].d.pid, SIGCONT);
	nodes[f].running = 1;
	CHECK(wait_converged(running_count()));
	printf("compaction: both recoveries in %lld ms\n", cl_now_ms() - start);
}

static void test_join_empty(void)
{
	char dir[600];

	/* the log the joiner finds is compacted: it cannot fold it all */
	CHECK(record_kept(1) == 0);

	snprintf(dir, sizeof(dir), "%s/empty", root);
	nnodes = NNODES + 1;
	CHECK(cl_node_start(&nodes[NNODES], &etcd, root, NNODES, dir,
			    node_args) == 0);
	CHECK(wait_converged(running_count()));
}

/* --- catching up by pages --------------------------------------------------
 */

#define CU_SIZE	  (2 << 20) /* above CATCHUP_MIN_SIZE */
#define CU_PAGES  (CU_SIZE / 4096)
#define CU_DIRTY  4 /* pages a commit changes, none adjacent */
#define CU_ROUNDS 6

static char cu_module[65];

/* The value of metric line name (with its labels) on node i, or -1. */
static long long metric_of(int i, const char *name)
{
	return cl_node_metric(&nodes[i], name);
}

/* Files node i made by pages: fetched, or sent with their record. */
static long long by_pages(int i)
{
	return metric_of(
		   i, "modstore_cluster_files_fetched_total{how=\"pages\"}") +
	       metric_of(
		   i, "modstore_cluster_files_fetched_total{how=\"pushed\"}");
}

/* One commit on the leader l of CU_DIRTY new pages of the big module. */
static long commit_pages(int l, int round)
{
	static unsigned char page[4096];
	struct e2e_resp r;
	char path[300], sid[65] = "", cid[65];
	long st;
	int j, k;

	if (e2e_request(&nodes[l].d, "POST", "/sessions", "{}", 2, NULL, &r) <
	    0)
		return 0;
	if (r.status == 201 && e2e_str(&r, "id"))
		snprintf(sid, sizeof(sid), "%s", e2e_str(&r, "id"));
	e2e_resp_release(&r);
	for (j = 0; j < CU_DIRTY && sid[0]; j++) {
		for (k = 0; k < (int)sizeof(page); k++)
			page[k] = (unsigned char)rand();
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=%d", sid,
			 cu_module, ((round * 37 + j * 101) % CU_PAGES) * 4096);
		if (e2e_request(&nodes[l].d, "PUT", path, page, sizeof(page),
				NULL, &r) < 0)
			return 0;
		e2e_resp_release(&r);
	}
	snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
	if (!sid[0] ||
	    e2e_request(&nodes[l].d, "POST", path, NULL, 0, NULL, &r) < 0)
		return 0;
	st = r.status;
	if (st == 201 && e2e_str(&r, "commit"))
		snprintf(cid, sizeof(cid), "%s", e2e_str(&r, "commit"));
	e2e_resp_release(&r);
	if (st == 201)
		ack_commit(cid);
	return st;
}

/* Rounds of commits on the leader l: 1 when each was acknowledged. */
static int commit_rounds(int l, int first, int n)
{
	int i, ok = 1;

	for (i = first; i < first + n; i++)
		ok &= commit_pages(l, i) == 201;
	return ok;
}

/*
 * What follower f fetched since (bytes b0, files whole w0, by pages or
 * from the pages the leader sent p0) for n commits of CU_DIRTY pages
 * each: every file by its pages, the bytes at most about the pages (and
 * far from one whole file). A frozen follower may still read, once it
 * wakes, the records the leader sent it meanwhile, with their pages:
 * those were sent while it slept (modstore_cluster_received_record_
 * bytes_total), and are not fetched.
 */
static void check_fetched(int f, long long b0, long long w0, long long p0,
			  int n, const char *what)
{
	long long b = metric_of(f, "modstore_cluster_fetched_bytes_total");
	long long w =
	    metric_of(f, "modstore_cluster_files_fetched_total{how=\"whole\"}");
	long long p = by_pages(f);
	long long pages = (long long)n * CU_DIRTY * 4096;

	printf("catch-up %s: %d commits of %d pages (%lld bytes): fetched "
	       "%lld bytes, %lld files by pages (fetched or sent), "
	       "%lld "
	       "whole\n",
	       what, n, CU_DIRTY, pages, b - b0, p - p0, w - w0);
	CHECK(b >= 0 && w >= 0 && p >= 0);
	CHECK(w - w0 == 0);
	CHECK(p - p0 == n);
	/* the pages, a diff and the parts' framing: 1.5 KiB a commit at most */
	CHECK(b - b0 <= pages + n * 1536LL);
	CHECK(b - b0 < CU_SIZE);
}

static void test_catchup_pages(void)
{
	static const char *const small_body[] = {"--lease-ttl",
						 "2",
						 "--sync-replicas",
						 "1",
						 "--compact-after",
						 "4",
						 "--max-body",
						 "8K",
						 NULL};
	struct e2e_resp r;
	long long b0, w0, p0, t0;
	int l, f, i;

	l = cl_wait_leader(nodes, nnodes, 15000);
	CHECK(l >= 0);
	if (l < 0)
		return;
	CHECK(e2e_request(&nodes[l].d, "POST", "/modules?size=2097152",
			  "catch-up", 8, NULL, &r) == 0);
	E2E_STATUS(&r, 201);
	if (e2e_str(&r, "id"))
		snprintf(cu_module, sizeof(cu_module), "%s", e2e_str(&r, "id"));
	e2e_resp_release(&r);
	CHECK(commit_rounds(l, 0, 1));
	CHECK(wait_converged(running_count()));
	/* frozen for less than its lease: it follows the log when it wakes */
	f = some_node(l);
	b0 = metric_of(f, "modstore_cluster_fetched_bytes_total");
	w0 =
	    metric_of(f, "modstore_cluster_files_fetched_total{how=\"whole\"}");
	p0 = by_pages(f);
	t0 = cl_now_ms();
	cl_node_signal(&nodes[f], SIGSTOP);
	nodes[f].running = 0;
	CHECK(commit_rounds(l, 1, CU_ROUNDS));
	printf("catch-up: %d commits while frozen in %lld ms\n", CU_ROUNDS,
	       cl_now_ms() - t0);
	kill(nodes[f].d.pid, SIGCONT);
	nodes[f].running = 1;
	CHECK(wait_converged(running_count()));
	check_fetched(f, b0, w0, p0, CU_ROUNDS, "after SIGSTOP");
	/*
	 * stopped and restarted: it reconciles, each commit from the last;
	 * with a --max-body smaller than a record with its pages
	 */
	cl_node_signal(&nodes[f], SIGTERM);
	CHECK(commit_rounds(l, 1 + CU_ROUNDS, CU_ROUNDS));
	CHECK(cl_node_start(&nodes[f], &etcd, root, f, NULL, small_body) == 0);
	CHECK(wait_converged(running_count()));
	check_fetched(f, 0, 0, 0, CU_ROUNDS, "after a restart");
	/* it alone can hold the next commit: sent again without its pages */
	for (i = 0; i < nnodes; i++)
		if (i != l && i != f && nodes[i].running)
			kill(nodes[i].d.pid, SIGSTOP);
	t0 = cl_now_ms();
	CHECK(commit_rounds(l, 1 + 2 * CU_ROUNDS, 1));
	printf("catch-up: a commit held by a follower whose --max-body is "
	       "below its record with pages took %lld ms\n",
	       cl_now_ms() - t0);
	for (i = 0; i < nnodes; i++)
		if (i != l && i != f && nodes[i].running)
			kill(nodes[i].d.pid, SIGCONT);
	CHECK(wait_converged(running_count()));
}

int main(void)
{
	struct e2e_tmp tmp;
	int i, ok = 1;

	srand((unsigned)getpid());
	if (access(getenv("ETCD") ? getenv("ETCD") : "/usr/bin/etcd", X_OK)) {
		fprintf(stderr, "no etcd: tools/install-deps installs it\n");
		CHECK(0);
		return t_done();
	}
	if (e2e_tmp_make(&tmp, "cluster") < 0)
		return 1;
	snprintf(root, sizeof(root), "%s", tmp.root);
	test_options();
	test_no_leader();
	CHECK(cl_etcd_start(&etcd, root, 3) == 0);
	for (i = 0; i < NNODES; i++) {
		memset(&nodes[i], 0, sizeof(nodes[i]));
		ok &= cl_node_start(&nodes[i], &etcd, root, i, NULL,
				    node_args) == 0;
	}
	CHECK(ok);
	if (ok) {
		test_writes_anywhere();
		test_records_route();
		test_kill_rounds();
		test_sigstop();
		test_etcd_member_loss();
		test_compaction();
		test_join_empty();
		test_catchup_pages();
	}
	for (i = 0; i < nnodes; i++)
		cl_node_signal(&nodes[i], SIGKILL);
	cl_etcd_stop(&etcd);
	e2e_tmp_done(&tmp);
	return t_done();
}
