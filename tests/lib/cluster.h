/*
 * cluster.h - helpers of the cluster tests: an etcd cluster of real
 * etcd processes ($ETCD, default /usr/bin/etcd) on free loopback ports in
 * a temporary directory, and modstored nodes in cluster mode on it.
 *
 * Every process started here dies with the test (PR_SET_PDEATHSIG) and is
 * killed at exit if still running.
 */
#ifndef CLUSTER_TEST_H
#define CLUSTER_TEST_H

#include "e2e.h"

#include <sys/types.h>

#define CL_MAX_ETCD  5
#define CL_MAX_NODES 8

struct cl_etcd {
	int n;
	pid_t pid[CL_MAX_ETCD];
	int client_port[CL_MAX_ETCD], peer_port[CL_MAX_ETCD];
	char urls[512]; /* every client URL, comma-separated */
	char root[512];
};

/*
 * A node served over HTTPS: its URL and --advertise are https://, and the
 * test's requests to it use these files (as struct e2e_daemon's).
 */
struct cl_tls {
	const char *cacert, *cert, *key;
};

struct cl_node {
	struct e2e_daemon d;
	struct cl_tls tls; /* set before the first start; cacert NULL: HTTP */
	int port;
	char id[32];
	char dir[512];
	char log[512];
	int running;
};

/* A free loopback TCP port (bound then released), or -1. */
int cl_free_port(void);

/*
 * Start n etcd members under root (their data in root/etcdI) and wait
 * until the cluster answers a put. 0, or -1 with a message.
 */
int cl_etcd_start(struct cl_etcd *e, const char *root, int n);
/* Send sig to member i (SIGKILL: it is waited for). */
void cl_etcd_signal(struct cl_etcd *e, int i, int sig);
void cl_etcd_stop(struct cl_etcd *e);
/* 1 when key is in etcd, 0 when not, -1 no member answered. */
int cl_etcd_has(const struct cl_etcd *e, const char *key);

/*
 * Start node "nI" on root/nI (or dir when not NULL) in cluster mode on e
 * with the extra arguments args (NULL-terminated, may be NULL), over
 * HTTPS when nd->tls.cacert is set (the TLS options are for args to
 * give). 0 or -1.
 */
int cl_node_start(struct cl_node *nd, const struct cl_etcd *e, const char *root,
		  int i, const char *dir, const char *const *args);
/* Send sig; SIGKILL and SIGTERM wait for the process. */
void cl_node_signal(struct cl_node *nd, int sig);

/* The value of the /metrics line name (labels included) of nd, or -1. */
long long cl_node_metric(struct cl_node *nd, const char *name);
/* 1 when node nd says it leads (GET /metrics), 0 not, -1 no answer. */
int cl_node_leads(struct cl_node *nd);
/* The index of the leader among the running nodes, waiting up to ms. */
int cl_wait_leader(struct cl_node *nodes, int n, int ms);
/* The Modstore-Applied of an answer, or -1. */
long long cl_applied(const struct e2e_resp *r);

/*
 * A request that follows 307 to the node the Location names (the same
 * method and body), up to 4 times. As e2e_request().
 */
int cl_request(struct cl_node *nodes, int n, int i, const char *method,
	       const char *path, const void *body, size_t len,
	       struct e2e_resp *out);

/* Milliseconds since an arbitrary start (CLOCK_MONOTONIC). */
long long cl_now_ms(void);

#endif /* CLUSTER_TEST_H */
