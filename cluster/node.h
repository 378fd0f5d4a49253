/*
 * node.h - one node of a cluster (docs/cluster.md): its lease, the
 * election, the follower's loop (log, pending records, files from peers)
 * and the leader's write path, offered to the api as a struct
 * api_cluster.
 *
 * Usage (server/main.c): cluster_node_new() once the store is open;
 * cluster_node_api() into api_options.cluster; cluster_node_start() once
 * the HTTP daemon answers (peers fetch files from it); at the end
 * cluster_node_stop() before the daemon stops, cluster_node_free() after.
 */
#ifndef CLUSTER_NODE_H
#define CLUSTER_NODE_H

#include "api.h"
#include "store.h"

struct cluster_options {
	const char *etcd;      /* "URL[,URL...]" */
	const char *name;      /* keys under /modstore/NAME/ */
	const char *node_id;   /* unique, stable */
	const char *advertise; /* how peers and clients reach this node */
	unsigned int sync_replicas;
	unsigned int lease_ttl;	    /* seconds */
	unsigned int compact_after; /* records; 0: never compact */
	const char *token;	    /* sent to peers; NULL: none */
	/* PEM text (copied): the client certificate and key shown to peers,
	 * the CAs that check theirs (NULL: the system's); NULL: none */
	const char *tls_cert, *tls_key, *tls_ca;
	struct store *store; /* borrowed */
	enum api_log_format log_format;
};

struct cluster_node;

/* A node on o (strings copied); NULL out of memory or bad etcd URLs. */
struct cluster_node *cluster_node_new(const struct cluster_options *o);
/* The hooks the api calls; valid until cluster_node_free(). */
const struct api_cluster *cluster_node_api(struct cluster_node *n);
/* Start the lease and loop threads: 0, or -1. */
int cluster_node_start(struct cluster_node *n);
/* Stop the threads and give the lease back (leadership goes at once). */
void cluster_node_stop(struct cluster_node *n);
void cluster_node_free(struct cluster_node *n);

#endif /* CLUSTER_NODE_H */
