/*
 * etcd.h - a client of etcd's v3 JSON gateway (/v3/kv/range, put, txn,
 * deleterange; /v3/lease/grant, keepalive, revoke) over libcurl, with
 * Jansson. Keys and values are plain strings here and base64 on the wire.
 *
 * One struct etcd is used by one thread at a time (each of the node's
 * threads has its own). It keeps every URL of --etcd and moves to the next
 * one when a member does not answer.
 */
#ifndef CLUSTER_ETCD_H
#define CLUSTER_ETCD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct etcd;

/* One key-value of a range answer; key and value NUL-terminated, owned. */
struct etcd_kv {
	char *key;
	char *value;
	size_t vlen;
	int64_t create_rev;
	int64_t lease;
};

/* urls: "http://h:p[,http://h2:p2...]", copied. NULL out of memory. */
struct etcd *etcd_new(const char *urls, long timeout_ms);
void etcd_free(struct etcd *e);

/*
 * The keys from key up to (not including) end (NULL: key alone), at most
 * limit (0: all), sorted by key. *kvs (free with etcd_kvs_free) and *n.
 * 0, or -1 when etcd did not answer.
 */
int etcd_range(struct etcd *e, const char *key, const char *end, long limit,
	       struct etcd_kv **kvs, size_t *n);
/* The end of the range of every key starting with prefix, into out. */
void etcd_prefix_end(const char *prefix, char *out, size_t size);
void etcd_kvs_free(struct etcd_kv *kvs, size_t n);

/* Put key = value, bound to lease (0: none). 0 or -1. */
int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease);

/* Delete key (prefix=1: every key starting with it). 0 or -1. */
int etcd_delete(struct etcd *e, const char *key, int prefix);

/*
 * A transaction under construction: compares, then operations done when
 * all hold. etcd_txn_run: 1 when they held (done), 0 when not, -1 when
 * etcd did not answer. The txn is freed by run.
 */
struct etcd_txn;
struct etcd_txn *etcd_txn_new(void);
/* Compare the create revision of key with rev (0: the key is absent). */
void etcd_txn_create_rev(struct etcd_txn *t, const char *key, int64_t rev);
void etcd_txn_put(struct etcd_txn *t, const char *key, const char *value,
		  int64_t lease);
void etcd_txn_delete(struct etcd_txn *t, const char *key);
/* Delete every key from key up to (not including) end. */
void etcd_txn_delete_range(struct etcd_txn *t, const char *key,
			   const char *end);
int etcd_txn_run(struct etcd *e, struct etcd_txn *t);

/* A lease of ttl seconds: its id, or 0 when etcd did not answer. */
int64_t etcd_lease_grant(struct etcd *e, long ttl);
/* Renew: the seconds left (0: the lease is gone), -1 no answer. */
long etcd_lease_keepalive(struct etcd *e, int64_t id);
void etcd_lease_revoke(struct etcd *e, int64_t id);

#endif /* CLUSTER_ETCD_H */
