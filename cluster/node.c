/*
 * node.c - roles, lease, election, following and the write path of one
 * node (node.h; the design is docs/cluster.md).
 *
 * Threads: the lease thread renews the lease every TTL/3 and raises
 * lease_lost when etcd says it is gone; the loop thread, every
 * NODE_TICK_MS, reads the leader key, follows the log (as a follower),
 * campaigns, reconciles after a divergence and publishes nodes/ID. HTTP
 * threads call the api hooks: on the leader a change runs under
 * write_lock, which sends its record to the followers; on a follower the
 * record sent is held under write_lock, which the loop thread also takes
 * to apply records, so the fold (the log as this node has applied it) has
 * one writer at a time, and so has peer (its requests to other nodes).
 *
 * Locks: write_lock, then lock (the small fields below it).
 */
#include "node.h"

#include "catchup.h"
#include "etcd.h"
#include "log.h"
#include "peer.h"
#include "push.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NODE_TICK_MS	    10
#define NODE_PUBLISH_MS	    200
#define NODE_PEERS_MS	    1000 /* the other nodes' URLs read again */
#define NODE_PUSH_RETRY_MS  20	 /* a record sent again to followers */
#define NODE_PUSH_ROUND_MS  250	 /* ... and the nodes to send to, read */
#define CL_MAX_PUSH	    64	 /* followers a record is sent to */
#define NODE_HOLD_WAIT_MS   2000 /* a follower behind a record waits */
#define NODE_ACK_WAIT_MS    5000
#define NODE_LEASE_SLACK_MS 300 /* writes stop this long before expiry */
#define NODE_KEY_MAX	    512
#define NODE_PAGE	    500		  /* records read at once */
#define NODE_COMPACT_MS	    500		  /* the leader considers compacting */
#define NODE_SNAPSHOT_MAX   (1024 * 1024) /* etcd takes 1.5 MiB */

enum node_role { NODE_FOLLOWER = 0, NODE_LEADER = 1 };

struct cluster_node {
	struct cluster_options o; /* strings below are copies */
	char *etcd_urls, *name, *id, *url;
	char prefix[256]; /* "/modstore/NAME/" */
	struct store *store;
	struct api_cluster api;
	struct etcd *e_loop, *e_lease, *e_write;
	struct peer *peer; /* write_lock's */
	/* module commit files made: by the changed pages fetched, fetched
	 * whole, from the pages the leader sent with its record */
	atomic_uint_fast64_t files_patched, files_whole, files_pushed;
	atomic_uint_fast64_t held_bytes; /* bodies of records received */

	pthread_mutex_t write_lock; /* changes, applying records, fold */
	struct log_fold fold;

	pthread_mutex_t lock; /* the fields up to stop */
	pthread_cond_t cond;
	enum node_role role;
	int leader_known;
	char leader_url[256];
	int64_t lease, leader_rev;
	int64_t seen_rev; /* the leader key's create revision, as last read */
	uint64_t applied, head;
	uint64_t renewed_ms; /* when the last successful renewal was sent */
	int diverged, lease_lost, ready;
	char **peers; /* the other nodes' URLs (peers_refresh) */
	int stop;

	uint64_t peers_ms; /* when peers were read; the loop thread's */

	/* the record sent by the leader held last (write_lock's) */
	uint64_t held_seq;
	int64_t held_fence;
	int held_commit; /* it is a commit, held_id */
	struct store_id held_id;
	uint64_t failed_seq; /* the last one whose files could not be had */
	uint64_t published_ms;
	uint64_t compact_checked_ms; /* the loop thread's */
	uint64_t compacted_ms;	     /* the leader's last compaction turn */
	int compact_warned;
	uint64_t compact_big; /* the last position whose snapshot was too big */
	pthread_t loop_thread, lease_thread;
	int started;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(struct cluster_node *n, const char *level, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct cluster_node *n, const char *level, const char *f, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, f);
	vsnprintf(msg, sizeof(msg), f, ap);
	va_end(ap);
	api_log_message(n->o.log_format == API_LOG_NONE ? API_LOG_TEXT
							: n->o.log_format,
			level, msg);
}

static void key(struct cluster_node *n, char out[NODE_KEY_MAX], const char *fmt,
		...) __attribute__((format(printf, 3, 4)));

static void key(struct cluster_node *n, char out[NODE_KEY_MAX], const char *fmt,
		...)
{
	size_t len = strlen(n->prefix);
	va_list ap;

	memcpy(out, n->prefix, len + 1);
	va_start(ap, fmt);
	vsnprintf(out + len, NODE_KEY_MAX - len, fmt, ap);
	va_end(ap);
}

static void log_key(struct cluster_node *n, char out[NODE_KEY_MAX],
		    uint64_t seq)
{
	key(n, out, "log/%020" PRIu64, seq);
}

/* --- fetching from peers -------------------------------------------------- */

struct fetch {
	struct store_upload *u; /* a commit file */
	char *buf;		/* bytecode */
	size_t len, cap, max;
	int failed;
};

static int fetch_sink(void *cls, const char *data, size_t len)
{
	struct fetch *f = cls;
	size_t cap;
	char *b;

	if (f->u) {
		if (store_upload_write(f->u, data, len) != STORE_OK) {
			f->failed = 1;
			return -1;
		}
		return 0;
	}
	if (f->len + len > f->max) {
		f->failed = 1;
		return -1;
	}
	if (f->len + len > f->cap) {
		cap = (f->len + len) * 2;
		b = realloc(f->buf, cap);
		if (!b) {
			f->failed = 1;
			return -1;
		}
		f->buf = b;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, data, len);
	f->len += len;
	return 0;
}

/* GET base+path into f: 0 on a 200, -1 otherwise. */
static int fetch_get(struct cluster_node *n, const char *base, const char *path,
		     struct fetch *f)
{
	long status = peer_get(n->peer, base, path, fetch_sink, f);

	return status == 200 && !f->failed ? 0 : -1;
}

static void urls_free(char **v);

/* Read the other nodes' URLs from nodes/ into n->peers, with e: 0 or -1. */
static int peers_read(struct cluster_node *n, struct etcd *e)
{
	struct etcd_kv *kvs = NULL;
	char k[NODE_KEY_MAX], end[NODE_KEY_MAX], **v, **old;
	size_t i, nk = 0, m = 0;
	const char *u;
	json_t *j;

	key(n, k, "nodes/");
	etcd_prefix_end(k, end, sizeof(end));
	if (etcd_range(e, k, end, 0, &kvs, &nk) < 0)
		return -1;
	v = calloc(nk + 1, sizeof(*v));
	for (i = 0; v && i < nk; i++) {
		j = json_loads(kvs[i].value, 0, NULL);
		u = json_string_value(json_object_get(j, "url"));
		if (u && strcmp(u, n->url) != 0 && (v[m] = strdup(u)))
			m++;
		json_decref(j);
	}
	etcd_kvs_free(kvs, nk);
	if (!v)
		return -1;
	pthread_mutex_lock(&n->lock);
	old = n->peers;
	n->peers = v;
	pthread_mutex_unlock(&n->lock);
	urls_free(old);
	return 0;
}

/* peers_read() by the loop thread, at most every NODE_PEERS_MS. */
static void peers_refresh(struct cluster_node *n, int force)
{
	if (!force && now_ms() - n->peers_ms < NODE_PEERS_MS)
		return;
	if (peers_read(n, n->e_loop) == 0)
		n->peers_ms = now_ms();
}

/*
 * The URLs to fetch from: the leader's first, then every other node's as
 * last read (NULL-terminated, caller frees each and the array).
 */
static char **peer_urls(struct cluster_node *n)
{
	char **v;
	size_t i, k = 0, m = 0;

	pthread_mutex_lock(&n->lock);
	while (n->peers && n->peers[k])
		k++;
	v = calloc(k + 2, sizeof(*v));
	if (v && n->leader_known && strcmp(n->leader_url, n->url) != 0)
		v[m++] = strdup(n->leader_url);
	for (i = 0; v && i < k; i++)
		if (!m || strcmp(n->peers[i], v[0]) != 0)
			v[m++] = strdup(n->peers[i]);
	pthread_mutex_unlock(&n->lock);
	return v;
}

static void urls_free(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/*
 * The module commit file of p, which commit holds, from the first peer
 * that has it; checked against its Merkle id and made durable by the
 * store (store_commit_file_import).
 */
static enum store_err fetch_commit_file(struct cluster_node *n, char **urls,
					const struct store_id *commit,
					const struct store_pair *p)
{
	char path[256], c[STORE_HEX_LEN + 1], m[STORE_HEX_LEN + 1];
	enum store_err err = STORE_EIO;
	struct fetch f;
	size_t i;

	store_id_hex(commit, c);
	store_id_hex(&p->module, m);
	snprintf(path, sizeof(path), "/commits/%s/modules/%s/memory", c, m);
	for (i = 0; urls && urls[i]; i++) {
		memset(&f, 0, sizeof(f));
		err = store_upload_new(n->store, &f.u);
		if (err)
			return err;
		if (fetch_get(n, urls[i], path, &f) == 0)
			err = store_commit_file_import(n->store, &p->module,
						       &p->commit, f.u);
		else
			err = STORE_EIO;
		store_upload_free(f.u);
		if (!err)
			return STORE_OK;
		if (err == STORE_EMISMATCH)
			say(n, "warn",
			    "cluster: a file from %s does not "
			    "match its id; not kept",
			    urls[i]);
	}
	return err;
}

/* Files fetched whole at once, and made durable together, at most. */
#define NODE_FETCH_BATCH 64

/*
 * The k (at most NODE_FETCH_BATCH) pairs of commit fetched whole from url
 * at once, then imported together (store_commit_files_import: one flush
 * for all); done[i] set for each kept.
 */
static void fetch_batch(struct cluster_node *n, const char *url,
			const struct store_id *commit,
			const struct store_pair *pairs, size_t k, int *done)
{
	struct fetch f[NODE_FETCH_BATCH];
	struct peer_req r[NODE_FETCH_BATCH];
	struct store_upload *u[NODE_FETCH_BATCH];
	struct store_pair got[NODE_FETCH_BATCH];
	enum store_err errs[NODE_FETCH_BATCH];
	char paths[NODE_FETCH_BATCH][200], c[STORE_HEX_LEN + 1];
	char m[STORE_HEX_LEN + 1];
	size_t i, nr = 0, ng = 0, at[NODE_FETCH_BATCH];

	store_id_hex(commit, c);
	for (i = 0; i < k; i++) {
		memset(&f[nr], 0, sizeof(f[nr]));
		if (store_upload_new(n->store, &f[nr].u) != STORE_OK)
			break;
		store_id_hex(&pairs[i].module, m);
		snprintf(paths[nr], sizeof(paths[nr]),
			 "/commits/%s/modules/%s/memory", c, m);
		r[nr] = (struct peer_req){.base = url,
					  .path = paths[nr],
					  .sink = fetch_sink,
					  .ctx = &f[nr]};
		at[nr++] = i;
	}
	peer_run(n->peer, r, nr, 0, 120000L, 0);
	for (i = 0; i < nr; i++)
		if (r[i].status == 200 && !f[i].failed) {
			got[ng] = pairs[at[i]];
			u[ng] = f[i].u;
			at[ng++] = at[i];
		}
	if (ng)
		store_commit_files_import(n->store, ng, got, u, errs);
	for (i = 0; i < ng; i++)
		if (errs[i] == STORE_OK) {
			done[at[i]] = 1;
			atomic_fetch_add(&n->files_whole, 1);
		}
	for (i = 0; i < nr; i++)
		store_upload_free(f[i].u);
}

/*
 * Every module commit file of commit (pairs) there. Those missing are made
 * from files here and the pages that differ when a peer's diff to commit
 * from one of the nf commits from allows (catchup.c), else fetched whole:
 * from the first peer, several at once; what that left, one by one from
 * any peer.
 */
static enum store_err ensure_files(struct cluster_node *n,
				   const struct store_id *commit,
				   const struct store_id *from, size_t nf,
				   const struct store_pair *pairs, size_t np)
{
	enum store_err err = STORE_OK;
	struct store_pair *miss;
	char **urls = NULL;
	size_t i, k = 0, made, b;
	int *done;

	miss = malloc((np ? np : 1) * sizeof(*miss));
	done = calloc(np ? np : 1, sizeof(*done));
	if (!miss || !done) {
		err = STORE_ENOMEM;
		goto out;
	}
	for (i = 0; i < np; i++)
		if (!store_commit_file_exists(n->store, &pairs[i].module,
					      &pairs[i].commit))
			miss[k++] = pairs[i];
	if (!k)
		goto out;
	urls = peer_urls(n);
	made = catchup_files(n->store, n->peer, urls, from, nf, commit, miss, k,
			     done);
	atomic_fetch_add(&n->files_patched, made);
	for (b = 0; made < k && urls && urls[0] && b < k; b += NODE_FETCH_BATCH)
		fetch_batch(n, urls[0], commit, miss + b,
			    k - b < NODE_FETCH_BATCH ? k - b : NODE_FETCH_BATCH,
			    done + b);
	for (i = 0; i < k && !err; i++) {
		if (done[i])
			continue;
		err = fetch_commit_file(n, urls, commit, &miss[i]);
		if (!err)
			atomic_fetch_add(&n->files_whole, 1);
	}
out:
	urls_free(urls);
	free(miss);
	free(done);
	return err;
}

/*
 * The commits a peer's diff may start from for the files of a commit:
 * first (when not NULL: the record's base, the commit applied before),
 * then the current state's. Their number, into from[2].
 */
static size_t diff_bases(struct cluster_node *n, const struct store_id *first,
			 struct store_id from[2])
{
	struct store_id root;
	size_t k = 0;

	if (first)
		from[k++] = *first;
	if (store_root(n->store, &root) == STORE_OK &&
	    (!k || !store_id_equal(&root, &from[0])))
		from[k++] = root;
	return k;
}

/* Module m deployed here, its bytecode fetched and checked if it has one. */
static enum store_err ensure_module(struct cluster_node *n,
				    const struct log_module *m)
{
	struct store_module_info info;
	char path[128], hex[STORE_HEX_LEN + 1], **urls;
	enum store_err err;
	struct store_id got;
	struct fetch f;
	size_t i;

	err = store_module_get(n->store, &m->id, &info);
	if (err != STORE_ENOMODULE)
		return err;
	if (!m->bytecode)
		return store_deploy_id(n->store, &m->id, m->size, NULL, NULL);
	store_id_hex(&m->id, hex);
	snprintf(path, sizeof(path), "/modules/%s/bytecode", hex);
	urls = peer_urls(n);
	err = STORE_EIO;
	for (i = 0; urls && urls[i] && err; i++) {
		memset(&f, 0, sizeof(f));
		f.max = 1ULL << 30;
		if (fetch_get(n, urls[i], path, &f) == 0 && f.len) {
			store_module_id(f.buf, f.len, &got);
			if (store_id_equal(&got, &m->id))
				err = store_deploy(n->store, f.buf, f.len,
						   m->size, NULL, NULL);
		}
		free(f.buf);
	}
	urls_free(urls);
	return err;
}

/* --- applying records ----------------------------------------------------- */

/* 1 when commit record r is against a base this node has applied. */
static int base_held(struct cluster_node *n, const struct log_record *r)
{
	const struct log_commit *c;

	if (!r->has_base || r->full)
		return 0;
	c = log_fold_commit(&n->fold, &r->base);
	return c && c->live;
}

/*
 * The files of r here, durably (what a record the leader sends needs
 * before this node answers that it holds it, and a record before it is
 * applied): made from the pages p carries (may be NULL) where they can
 * be, else fetched. base_ok: r's base is known to have its files here
 * (the record held before). write_lock held.
 */
static enum store_err prepare(struct cluster_node *n,
			      const struct log_record *r, const struct push *p,
			      int base_ok)
{
	struct log_module m;
	struct store_pair *pairs = NULL;
	struct store_id from[2];
	enum store_err err = STORE_OK;
	size_t np = 0, nf;
	int *done;

	if (r->op == LOG_DEPLOY) {
		m.id = r->id;
		m.size = r->size;
		m.bytecode = r->bytecode;
		return ensure_module(n, &m);
	}
	if (r->op != LOG_COMMIT)
		return STORE_OK;
	nf = diff_bases(n, r->has_base ? &r->base : NULL, from);
	/*
	 * Against a base this node holds (live in its fold: in its commits
	 * store, so every file of it here), only the pairs that differ can
	 * be missing: 10 looked at, not the 1,000 of every module.
	 */
	if (base_ok || base_held(n, r)) {
		np = r->n;
		pairs = malloc((np ? np : 1) * sizeof(*pairs));
		if (!pairs)
			return STORE_ENOMEM;
		if (np)
			memcpy(pairs, r->pairs, np * sizeof(*pairs));
	} else if (log_fold_pairs(&n->fold, r, &pairs, &np)) {
		return STORE_ENOCOMMIT;
	}
	done = p && p->d.n ? calloc(np ? np : 1, sizeof(*done)) : NULL;
	if (done)
		atomic_fetch_add(&n->files_pushed,
				 push_files(n->store, p, pairs, np, done));
	free(done);
	err = ensure_files(n, &r->id, from, nf, pairs, np);
	free(pairs);
	return err;
}

/* Make commit the current state (it may have been deleted meanwhile). */
static enum store_err make_current(struct cluster_node *n,
				   const struct log_commit *c)
{
	enum store_err err;
	struct store_id root, from[2];
	size_t nf;
	int added = 0;

	if (store_root(n->store, &root) == STORE_OK &&
	    store_id_equal(&root, &c->id))
		return STORE_OK;
	if (!c->live) {
		nf = diff_bases(n, NULL, from);
		err = ensure_files(n, &c->id, from, nf, c->pairs, c->n);
		if (!err)
			err =
			    store_commit_add(n->store, &c->id, c->pairs, c->n);
		if (err)
			return err;
		added = 1;
	}
	err = store_restore(n->store, &c->id);
	if (added)
		store_commit_delete(n->store, &c->id);
	return err;
}

/* Apply r, the record after n->fold.seq, through the store. write_lock. */
static enum store_err apply(struct cluster_node *n, const struct log_record *r)
{
	const struct log_commit *c;
	enum store_err err;

	err = prepare(n, r, NULL, 0);
	if (err)
		return err;
	switch (r->op) {
	case LOG_COMMIT:
		if (log_fold_add(&n->fold, r))
			return STORE_ENOMEM;
		c = log_fold_commit(&n->fold, &r->id);
		err = store_commit_add(n->store, &c->id, c->pairs, c->n);
		if (!err)
			err = store_restore(n->store, &c->id);
		if (err)
			n->fold.seq--; /* folded, not applied: again */
		return err;
	case LOG_RESTORE:
		err = store_restore(n->store, &r->id);
		break;
	case LOG_DELETE:
		err = store_commit_delete(n->store, &r->id);
		if (err == STORE_ENOCOMMIT)
			err = STORE_OK;
		break;
	case LOG_PERSIST:
		err = store_persist(n->store);
		break;
	case LOG_GC:
		err = store_gc(n->store, NULL);
		break;
	default:
		break;
	}
	if (!err && log_fold_add(&n->fold, r))
		err = STORE_ENOMEM;
	return err;
}

static void set_applied(struct cluster_node *n, uint64_t seq)
{
	pthread_mutex_lock(&n->lock);
	n->applied = seq;
	if (n->head < seq)
		n->head = seq;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
}

struct collect {
	struct store_id *v;
	size_t n, cap;
};

static int collect_commit(void *ctx, const struct store_id *commit,
			  const struct store_pair *pairs, size_t np)
{
	struct collect *c = ctx;
	void *p;

	(void)pairs;
	(void)np;
	if (c->n == c->cap) {
		p = realloc(c->v, (c->cap * 2 + 64) * sizeof(*c->v));
		if (!p)
			return 1;
		c->v = p;
		c->cap = c->cap * 2 + 64;
	}
	c->v[c->n++] = *commit;
	return 0;
}

/* The position the log is compacted to (0: never), -1 no answer. */
static int read_compacted(struct cluster_node *n, uint64_t *seq)
{
	struct etcd_kv *kvs = NULL;
	char k[NODE_KEY_MAX];
	size_t nk = 0;

	*seq = 0;
	key(n, k, "compacted");
	if (etcd_range(n->e_loop, k, NULL, 1, &kvs, &nk) < 0)
		return -1;
	if (nk)
		*seq = strtoull(kvs[0].value, NULL, 10);
	etcd_kvs_free(kvs, nk);
	return 0;
}

/*
 * The log folded into f, up to record upto (0: its end): from the
 * snapshot when the log is compacted, then every record kept after it.
 * 0, or -1 (etcd did not answer, or the log was compacted meanwhile).
 */
static int read_log(struct cluster_node *n, struct log_fold *f, uint64_t upto)
{
	struct etcd_kv *kvs = NULL;
	struct log_record r;
	char from[NODE_KEY_MAX], end[NODE_KEY_MAX], k[NODE_KEY_MAX];
	size_t i, nk;
	long page;
	int ret = 0;

	key(n, k, "snapshot");
	if (etcd_range(n->e_loop, k, NULL, 1, &kvs, &nk) < 0)
		return -1;
	if (nk) {
		log_fold_release(f);
		ret = log_fold_parse(kvs[0].value, kvs[0].vlen, f);
		if (ret)
			say(n, "error", "cluster: the snapshot is unreadable");
	}
	etcd_kvs_free(kvs, nk);
	if (ret || (upto && f->seq > upto))
		return -1;
	key(n, k, "log/");
	etcd_prefix_end(k, end, sizeof(end));
	for (;;) {
		if (upto && f->seq == upto)
			return 0;
		page = NODE_PAGE;
		if (upto && upto - f->seq < (uint64_t)page)
			page = (long)(upto - f->seq);
		log_key(n, from, f->seq + 1);
		if (etcd_range(n->e_loop, from, end, page, &kvs, &nk) < 0)
			return -1;
		for (i = 0; i < nk && !ret; i++) {
			log_key(n, k, f->seq + 1);
			if (strcmp(kvs[i].key, k) != 0 ||
			    log_record_parse(kvs[i].value, kvs[i].vlen, &r)) {
				ret = -1;
				break;
			}
			ret = log_fold_add(f, &r);
			log_record_release(&r);
		}
		etcd_kvs_free(kvs, nk);
		if (ret || nk < (size_t)page)
			return ret || (upto && f->seq != upto) ? -1 : 0;
	}
}

/*
 * Every live commit of f in the commits store, with its files: in the
 * order of the log, so that each one's files may come by the pages that
 * differ from the one before.
 */
static enum store_err add_live_commits(struct cluster_node *n,
				       const struct log_fold *f)
{
	const struct store_id *prev = NULL;
	struct store_id from[2];
	enum store_err err = STORE_OK;
	size_t i, nf;

	for (i = 0; i < f->nc && !err; i++) {
		if (!f->c[i].live)
			continue;
		nf = diff_bases(n, prev, from);
		err = ensure_files(n, &f->c[i].id, from, nf, f->c[i].pairs,
				   f->c[i].n);
		if (!err)
			err = store_commit_add(n->store, &f->c[i].id,
					       f->c[i].pairs, f->c[i].n);
		prev = &f->c[i].id;
	}
	return err;
}

/*
 * Make the store the state the whole log describes (docs/cluster.md,
 * "Reconcile"): at start, when joining empty, after a divergence.
 * write_lock held. 0, or -1 (try again later).
 */
static int reconcile(struct cluster_node *n)
{
	struct log_fold f = {0};
	struct collect have = {0};
	const struct log_commit *c;
	enum store_err err = STORE_OK;
	size_t i;

	if (read_log(n, &f, 0) < 0)
		goto fail;
	peers_refresh(n, 1);
	for (i = 0; i < f.nmods && !err; i++)
		err = ensure_module(n, &f.mods[i]);
	if (!err)
		err = store_commits_foreach(n->store, collect_commit, &have);
	for (i = 0; i < have.n && !err; i++) {
		c = log_fold_commit(&f, &have.v[i]);
		if (!c || !c->live) {
			err = store_commit_delete(n->store, &have.v[i]);
			if (err == STORE_ENOCOMMIT)
				err = STORE_OK;
		}
	}
	if (!err)
		err = add_live_commits(n, &f);
	if (!err && f.has_current)
		err = make_current(n, log_fold_commit(&f, &f.current));
	if (!err && f.persists)
		err = store_persist(n->store);
	if (!err && f.gcs)
		err = store_gc(n->store, NULL);
	if (err) {
		say(n, "warn", "cluster: reconciling with the log: %s",
		    store_strerror(err));
		goto fail;
	}
	log_fold_release(&n->fold);
	n->fold = f;
	n->held_seq = 0; /* what it held may have gone with a gc */
	free(have.v);
	set_applied(n, f.seq);
	return 0;
fail:
	log_fold_release(&f);
	free(have.v);
	return -1;
}

/* --- the follower's loop -------------------------------------------------- */

/*
 * 1 when the log was compacted past this node's position, which then
 * marks itself diverged: it reconciles from the snapshot (write_lock).
 */
static int behind_compaction(struct cluster_node *n)
{
	uint64_t c;

	n->compact_checked_ms = now_ms();
	if (read_compacted(n, &c) < 0 || c <= n->fold.seq)
		return 0;
	pthread_mutex_lock(&n->lock);
	n->diverged = 1;
	pthread_mutex_unlock(&n->lock);
	say(n, "info",
	    "cluster: %s is at %" PRIu64 ", the log is compacted to %" PRIu64
	    ": it copies the state",
	    n->id, n->fold.seq, c);
	return 1;
}

/* Apply the records after ours: 0, or -1 (again later). */
static int follow_log(struct cluster_node *n, int *caught_up)
{
	struct etcd_kv *kvs = NULL;
	struct log_record r;
	char from[NODE_KEY_MAX], end[NODE_KEY_MAX], k[NODE_KEY_MAX];
	enum store_err err = STORE_OK;
	size_t i, nk = 0;

	*caught_up = 0;
	key(n, k, "log/");
	etcd_prefix_end(k, end, sizeof(end));
	pthread_mutex_lock(&n->write_lock);
	log_key(n, from, n->fold.seq + 1);
	if (etcd_range(n->e_loop, from, end, NODE_PAGE, &kvs, &nk) < 0) {
		pthread_mutex_unlock(&n->write_lock);
		return -1;
	}
	if (nk) {
		pthread_mutex_lock(&n->lock);
		n->head = n->fold.seq + nk;
		pthread_mutex_unlock(&n->lock);
	}
	for (i = 0; i < nk && !err; i++) {
		log_key(n, k, n->fold.seq + 1);
		if (strcmp(kvs[i].key, k) != 0 && behind_compaction(n)) {
			err = STORE_EIO;
			break;
		}
		if (strcmp(kvs[i].key, k) != 0 ||
		    log_record_parse(kvs[i].value, kvs[i].vlen, &r)) {
			say(n, "error", "cluster: record %s is unreadable",
			    kvs[i].key);
			err = STORE_ECORRUPT;
			break;
		}
		err = apply(n, &r);
		log_record_release(&r);
		if (err && n->failed_seq != n->fold.seq + 1) {
			n->failed_seq = n->fold.seq + 1;
			say(n, "warn",
			    "cluster: record %" PRIu64 " cannot be "
			    "applied yet: %s",
			    n->failed_seq, store_strerror(err));
		}
		if (!err)
			set_applied(n, n->fold.seq);
	}
	*caught_up = !err && nk == 0;
	/* nothing after ours: is it because the log was compacted past? */
	if (*caught_up && now_ms() - n->compact_checked_ms >= NODE_PUBLISH_MS &&
	    behind_compaction(n))
		*caught_up = 0;
	pthread_mutex_unlock(&n->write_lock);
	etcd_kvs_free(kvs, nk);
	return err ? -1 : 0;
}

/*
 * The leader key, read with e: known, its URL, its create revision; -1 no
 * answer.
 */
static int read_leader(struct cluster_node *n, struct etcd *e, int64_t *rev)
{
	struct etcd_kv *kvs = NULL;
	char k[NODE_KEY_MAX];
	const char *u;
	size_t nk = 0;
	json_t *j;

	*rev = 0;
	key(n, k, "leader");
	if (etcd_range(e, k, NULL, 1, &kvs, &nk) < 0)
		return -1;
	pthread_mutex_lock(&n->lock);
	n->leader_known = 0;
	n->seen_rev = 0;
	if (nk) {
		j = json_loads(kvs[0].value, 0, NULL);
		u = json_string_value(json_object_get(j, "url"));
		if (u) {
			snprintf(n->leader_url, sizeof(n->leader_url), "%s", u);
			n->leader_known = 1;
			*rev = kvs[0].create_rev;
			n->seen_rev = *rev;
		}
		json_decref(j);
	}
	pthread_mutex_unlock(&n->lock);
	etcd_kvs_free(kvs, nk);
	return 0;
}

/* Try to become the leader (caught up, no leader): 1 when it did. */
static int campaign(struct cluster_node *n)
{
	struct etcd_txn *t;
	char k[NODE_KEY_MAX], next[NODE_KEY_MAX], *v;
	int64_t lease, rev = 0;
	json_t *j;
	uint64_t seq;
	int won, behind;

	pthread_mutex_lock(&n->lock);
	lease = n->lease;
	seq = n->applied;
	pthread_mutex_unlock(&n->lock);
	if (!lease)
		return 0;
	/* not behind the log's compacted start, whatever is kept after it */
	pthread_mutex_lock(&n->write_lock);
	behind = behind_compaction(n);
	pthread_mutex_unlock(&n->write_lock);
	t = behind ? NULL : etcd_txn_new();
	if (!t)
		return 0;
	j = json_pack("{s:s, s:s}", "id", n->id, "url", n->url);
	v = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	key(n, k, "leader");
	log_key(n, next, seq + 1);
	etcd_txn_create_rev(t, k, 0);
	etcd_txn_create_rev(t, next, 0);
	etcd_txn_put(t, k, v ? v : "{}", lease);
	free(v);
	won = etcd_txn_run(n->e_loop, t) == 1;
	if (!won || read_leader(n, n->e_loop, &rev) < 0 || !rev)
		return 0;
	pthread_mutex_lock(&n->lock);
	n->role = NODE_LEADER;
	n->leader_rev = rev;
	pthread_mutex_unlock(&n->lock);
	say(n, "info", "cluster: %s leads from position %" PRIu64, n->id, seq);
	return 1;
}

static void publish(struct cluster_node *n)
{
	char k[NODE_KEY_MAX], *v;
	int64_t lease;
	uint64_t applied;
	json_t *j;
	int role;

	pthread_mutex_lock(&n->lock);
	lease = n->lease;
	applied = n->applied;
	role = n->role;
	pthread_mutex_unlock(&n->lock);
	j = json_pack("{s:s, s:I, s:s}", "url", n->url, "applied",
		      (json_int_t)applied, "role",
		      role == NODE_LEADER ? "leader" : "follower");
	v = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	key(n, k, "nodes/%s", n->id);
	if (v && lease)
		etcd_put(n->e_loop, k, v, lease);
	free(v);
	n->published_ms = now_ms();
}

/* Leave the leader's role (the key too, when it is still ours). */
static void step_down(struct cluster_node *n, const char *why)
{
	struct etcd_txn *t;
	char k[NODE_KEY_MAX];
	int64_t rev;

	pthread_mutex_lock(&n->lock);
	rev = n->leader_rev;
	if (n->role != NODE_LEADER) {
		pthread_mutex_unlock(&n->lock);
		return;
	}
	n->role = NODE_FOLLOWER;
	n->leader_rev = 0;
	n->diverged = 1; /* reconcile before anything else */
	pthread_mutex_unlock(&n->lock);
	say(n, "warn", "cluster: %s steps down: %s", n->id, why);
	key(n, k, "leader");
	t = etcd_txn_new();
	if (t) {
		etcd_txn_create_rev(t, k, rev);
		etcd_txn_delete(t, k);
		etcd_txn_run(n->e_loop, t);
	}
}

static int64_t new_lease(struct cluster_node *n)
{
	int64_t id = etcd_lease_grant(n->e_loop, (long)n->o.lease_ttl);

	pthread_mutex_lock(&n->lock);
	n->lease = id;
	n->lease_lost = 0;
	if (id)
		n->renewed_ms = now_ms();
	pthread_mutex_unlock(&n->lock);
	return id;
}

/*
 * The leader's compaction (docs/cluster.md, "Compaction"): once every
 * live node has applied compact_after records past the compacted
 * position, write the snapshot of the log at the lowest position applied
 * and delete the records up to it, in one transaction fenced by the
 * leader key. Loop thread, no lock held.
 */
static void compact(struct cluster_node *n)
{
	struct etcd_kv *kvs = NULL;
	struct log_fold f = {0};
	struct etcd_txn *t;
	char k[NODE_KEY_MAX], end[NODE_KEY_MAX], *text = NULL;
	char cseq[32];
	uint64_t low = UINT64_MAX, done = 0, a;
	int64_t rev;
	size_t i, nk = 0;
	json_t *j, *v;

	if (!n->o.compact_after || now_ms() - n->compacted_ms < NODE_COMPACT_MS)
		return;
	n->compacted_ms = now_ms();
	pthread_mutex_lock(&n->lock);
	rev = n->leader_rev;
	a = n->applied;
	pthread_mutex_unlock(&n->lock);
	if (a < n->o.compact_after || read_compacted(n, &done) < 0 ||
	    a < done + n->o.compact_after)
		return;
	/* the lowest position a live node has applied (it published) */
	key(n, k, "nodes/");
	etcd_prefix_end(k, end, sizeof(end));
	if (etcd_range(n->e_loop, k, end, 0, &kvs, &nk) < 0)
		return;
	for (i = 0; i < nk; i++) {
		j = json_loads(kvs[i].value, 0, NULL);
		v = json_object_get(j, "applied");
		if (!json_is_integer(v))
			low = 0; /* not one we can read: keep everything */
		else if ((uint64_t)json_integer_value(v) < low)
			low = (uint64_t)json_integer_value(v);
		json_decref(j);
	}
	etcd_kvs_free(kvs, nk);
	if (!nk || low > a)
		low = a;
	/* a snapshot that was too big is tried again N records later */
	if (low < done + n->o.compact_after ||
	    (n->compact_big && low < n->compact_big + n->o.compact_after))
		return;
	/* the log's state at low: the snapshot and the records up to it */
	if (read_log(n, &f, low) < 0)
		goto out;
	text = log_fold_text(&f);
	if (!text)
		goto out;
	if (strlen(text) > NODE_SNAPSHOT_MAX) {
		if (!n->compact_warned)
			say(n, "warn",
			    "cluster: the snapshot would take %zu bytes, "
			    "more than etcd takes; the log is not compacted",
			    strlen(text));
		n->compact_warned = 1;
		n->compact_big = low;
		goto out;
	}
	t = etcd_txn_new();
	if (!t)
		goto out;
	key(n, k, "leader");
	etcd_txn_create_rev(t, k, rev);
	key(n, k, "snapshot");
	etcd_txn_put(t, k, text, 0);
	snprintf(cseq, sizeof(cseq), "%" PRIu64, low);
	key(n, k, "compacted");
	etcd_txn_put(t, k, cseq, 0);
	log_key(n, k, 1);
	log_key(n, end, low + 1);
	etcd_txn_delete_range(t, k, end);
	if (etcd_txn_run(n->e_loop, t) == 1)
		say(n, "info", "cluster: the log is compacted to %" PRIu64,
		    low);
out:
	free(text);
	log_fold_release(&f);
}

/* One turn of the loop thread. */
static void tick(struct cluster_node *n)
{
	int64_t rev = 0;
	int lost, diverged, ready, caught_up = 0, role;

	pthread_mutex_lock(&n->lock);
	lost = n->lease_lost || !n->lease;
	pthread_mutex_unlock(&n->lock);
	if (lost) {
		step_down(n, "its lease is gone");
		if (!new_lease(n))
			return;
		publish(n);
	}
	if (read_leader(n, n->e_loop, &rev) < 0)
		return;
	peers_refresh(n, 0);
	pthread_mutex_lock(&n->lock);
	role = n->role;
	pthread_mutex_unlock(&n->lock);
	if (role == NODE_LEADER && rev != n->leader_rev)
		step_down(n, "the leader key is not its own");
	pthread_mutex_lock(&n->lock);
	diverged = n->diverged;
	ready = n->ready;
	role = n->role;
	pthread_mutex_unlock(&n->lock);
	if (diverged || !ready) {
		pthread_mutex_lock(&n->write_lock);
		if (reconcile(n) == 0) {
			pthread_mutex_lock(&n->lock);
			n->diverged = 0;
			n->ready = 1;
			pthread_mutex_unlock(&n->lock);
			say(n, "info",
			    "cluster: %s holds the log's state at "
			    "position %" PRIu64,
			    n->id, n->fold.seq);
		}
		pthread_mutex_unlock(&n->write_lock);
		return;
	}
	if (role == NODE_FOLLOWER) {
		if (follow_log(n, &caught_up) == 0 && caught_up && !rev)
			campaign(n);
	} else if (role == NODE_LEADER) {
		compact(n);
	}
	if (now_ms() - n->published_ms >= NODE_PUBLISH_MS)
		publish(n);
}

static void *loop_main(void *arg)
{
	struct cluster_node *n = arg;
	struct timespec until;
	uint64_t t0;

	pthread_mutex_lock(&n->lock);
	while (!n->stop) {
		pthread_mutex_unlock(&n->lock);
		t0 = now_ms();
		tick(n);
		if (now_ms() - t0 > 1000)
			say(n, "warn",
			    "cluster: one turn of the loop took %llu ms",
			    (unsigned long long)(now_ms() - t0));
		pthread_mutex_lock(&n->lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += NODE_TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (!n->stop)
			pthread_cond_timedwait(&n->cond, &n->lock, &until);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

/* Renew the lease every TTL/3; lease_lost when etcd says it is gone. */
static void *lease_main(void *arg)
{
	struct cluster_node *n = arg;
	struct timespec until;
	uint64_t t0, every = n->o.lease_ttl * 1000ULL / 3;
	int64_t id;
	long ttl;

	if (every < 100)
		every = 100;
	pthread_mutex_lock(&n->lock);
	while (!n->stop) {
		id = n->lease;
		pthread_mutex_unlock(&n->lock);
		t0 = now_ms();
		ttl = id ? etcd_lease_keepalive(n->e_lease, id) : -1;
		pthread_mutex_lock(&n->lock);
		if (id && id == n->lease) {
			if (ttl > 0)
				n->renewed_ms = t0;
			else if (ttl == 0)
				n->lease_lost = 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)(every / 1000);
		until.tv_nsec += (long)(every % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		/* the cond is shared: other broadcasts do not renew */
		while (!n->stop && pthread_cond_timedwait(&n->cond, &n->lock,
							  &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

/* --- the api's hooks: the leader's write path ----------------------------- */

static int hook_leader(void *ctx, char *url, size_t size)
{
	struct cluster_node *n = ctx;
	int where;

	pthread_mutex_lock(&n->lock);
	if (n->role == NODE_LEADER)
		where = 0;
	else if (n->leader_known && strcmp(n->leader_url, n->url) != 0) {
		snprintf(url, size, "%s", n->leader_url);
		where = 1;
	} else
		where = -1;
	pthread_mutex_unlock(&n->lock);
	return where;
}

/* This node leads and may write now (lock held). */
static int leads_now(struct cluster_node *n)
{
	return n->role == NODE_LEADER && !n->diverged && !n->lease_lost &&
	       n->ready &&
	       now_ms() - n->renewed_ms + NODE_LEASE_SLACK_MS <
		   n->o.lease_ttl * 1000ULL;
}

static int hook_change_begin(void *ctx)
{
	struct cluster_node *n = ctx;
	int ok;

	pthread_mutex_lock(&n->write_lock);
	pthread_mutex_lock(&n->lock);
	ok = leads_now(n);
	pthread_mutex_unlock(&n->lock);
	if (!ok)
		pthread_mutex_unlock(&n->write_lock);
	return ok ? 0 : -1;
}

/* The record of change c; 0 or -1. */
static int record_of(struct cluster_node *n, const struct api_change *c,
		     struct log_record *r)
{
	const struct store_commit_info *ci = c->ci;

	memset(r, 0, sizeof(*r));
	switch (c->op) {
	case API_CHANGE_DEPLOY:
		r->op = LOG_DEPLOY;
		r->id = c->id;
		r->size = c->size;
		r->bytecode = 1;
		return 0;
	case API_CHANGE_COMMIT:
		return log_commit_record(&n->fold, &ci->id, ci->has_base,
					 &ci->base, ci->pairs, ci->n, r);
	case API_CHANGE_RESTORE:
		r->op = LOG_RESTORE;
		break;
	case API_CHANGE_DELETE:
		r->op = LOG_DELETE;
		break;
	case API_CHANGE_PERSIST:
		r->op = LOG_PERSIST;
		break;
	case API_CHANGE_GC:
		r->op = LOG_GC;
		break;
	}
	r->id = c->id;
	return 0;
}

/* The other nodes' URLs as last read (caller frees with urls_free). */
static char **other_urls(struct cluster_node *n)
{
	char **v;
	size_t i, k = 0;

	pthread_mutex_lock(&n->lock);
	while (n->peers && n->peers[k])
		k++;
	v = calloc(k + 1, sizeof(*v));
	for (i = 0; v && i < k; i++)
		v[i] = strdup(n->peers[i]);
	pthread_mutex_unlock(&n->lock);
	return v;
}

/* 1 when this node leads and may write now (takes lock). */
static int leads(struct cluster_node *n)
{
	int ok;

	pthread_mutex_lock(&n->lock);
	ok = leads_now(n);
	pthread_mutex_unlock(&n->lock);
	return ok;
}

/*
 * Send record seq to the followers until sync_replicas of them hold its
 * files durably (each answers 200 when it does), at most 5 s plus 20 ms
 * per module commit file: the body with the pages of a commit, or to a
 * follower whose --max-body refused it (413), the record alone (it
 * fetches the files). A follower that did not answer, or answered that
 * it is not ready, is asked again every NODE_PUSH_RETRY_MS; the list of
 * nodes (the loop thread reads it every second) is taken again every
 * NODE_PUSH_ROUND_MS, dropping the requests still running (a follower
 * goes on with what it was doing, and the next request finds it done).
 * 0 or -1. write_lock.
 */
static int replicate(struct cluster_node *n, const struct log_record *rec,
		     uint64_t seq)
{
	uint64_t deadline = now_ms() + NODE_ACK_WAIT_MS + 20 * (uint64_t)rec->n;
	struct peer_req r[CL_MAX_PUSH];
	struct timespec pause = {0, NODE_PUSH_RETRY_MS * 1000000L};
	char path[64], **urls = NULL, *held[CL_MAX_PUSH], *body, *alone;
	size_t ok = 0, i, m, nh = 0, k, len = 0, alen = 0;
	uint64_t round;

	body = push_body(n->store, rec, 1, &len);
	alone = push_body(n->store, rec, 0, &alen);
	snprintf(path, sizeof(path), "/cluster/records/%" PRIu64, seq);
	while (body && alone && ok < n->o.sync_replicas &&
	       now_ms() < deadline && leads(n)) {
		urls_free(urls);
		urls = other_urls(n);
		for (i = 0, m = 0; urls && urls[i] && m < CL_MAX_PUSH; i++) {
			for (k = 0; k < nh && strcmp(held[k], urls[i]); k++)
				;
			if (k == nh)
				r[m++] = (struct peer_req){.base = urls[i],
							   .path = path,
							   .body = body,
							   .blen = len,
							   .alt = alone,
							   .alt_len = alen};
		}
		/* in rounds: a node that appeared meanwhile is sent to */
		round = deadline - now_ms();
		if (round > NODE_PUSH_ROUND_MS)
			round = NODE_PUSH_ROUND_MS;
		ok += peer_run(n->peer, r, m, n->o.sync_replicas - ok,
			       (long)round + 1, NODE_PUSH_RETRY_MS);
		for (i = 0; i < m && nh < CL_MAX_PUSH; i++)
			if (r[i].status == 200)
				held[nh++] = strdup(r[i].base);
		if (ok < n->o.sync_replicas && !m)
			nanosleep(&pause, NULL);
	}
	for (k = 0; k < nh; k++)
		free(held[k]);
	urls_free(urls);
	free(body);
	free(alone);
	return ok >= n->o.sync_replicas ? 0 : -1;
}

/* Put log/SEQ = v, fenced by the leader key: 1 when done. */
static int fenced_append(struct cluster_node *n, uint64_t seq, const char *v)
{
	struct etcd_txn *t = etcd_txn_new();
	char lk[NODE_KEY_MAX], next[NODE_KEY_MAX];

	if (!t)
		return 0;
	key(n, lk, "leader");
	log_key(n, next, seq);
	etcd_txn_create_rev(t, lk, n->leader_rev);
	etcd_txn_create_rev(t, next, 0);
	etcd_txn_put(t, next, v, 0);
	return etcd_txn_run(n->e_write, t) == 1;
}

static int hook_change_end(void *ctx, const struct api_change *c,
			   const char **code)
{
	struct cluster_node *n = ctx;
	struct log_record r = {0};
	char *text = NULL;
	uint64_t seq = n->fold.seq + 1;
	int ret = -1;

	if (!c) {
		pthread_mutex_unlock(&n->write_lock);
		return 0;
	}
	*code = "replication_failed";
	if (record_of(n, c, &r) < 0)
		goto out;
	/* 2. the record and its pages to the followers, until K hold it */
	r.fence = n->leader_rev;
	if (n->o.sync_replicas && replicate(n, &r, seq) < 0)
		goto out;
	/* 3. the record, fenced */
	r.fence = 0;
	text = log_record_text(&r);
	if (!text)
		goto out;
	if (!fenced_append(n, seq, text)) {
		*code = "not_leader";
		goto out;
	}
	if (log_fold_add(&n->fold, &r) == 0) {
		set_applied(n, seq);
		ret = 0;
	}
out:
	if (ret) {
		pthread_mutex_lock(&n->lock);
		n->diverged = 1; /* the store holds what the log does not */
		pthread_mutex_unlock(&n->lock);
		say(n, "warn", "cluster: a change was not recorded (%s)",
		    *code);
	}
	free(text);
	log_record_release(&r);
	pthread_mutex_unlock(&n->write_lock);
	return ret;
}

static uint64_t hook_applied(void *ctx)
{
	struct cluster_node *n = ctx;
	uint64_t v;

	pthread_mutex_lock(&n->lock);
	v = n->applied;
	pthread_mutex_unlock(&n->lock);
	return v;
}

static int hook_wait_applied(void *ctx, uint64_t seq, unsigned int ms)
{
	struct cluster_node *n = ctx;
	struct timespec until;
	int ok;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&n->lock);
	while (n->applied < seq && !n->stop &&
	       pthread_cond_timedwait(&n->cond, &n->lock, &until) != ETIMEDOUT)
		;
	ok = n->applied >= seq;
	pthread_mutex_unlock(&n->lock);
	return ok ? 0 : -1;
}

/* --- the api's hooks: a follower holds the leader's records ------------- */

/* 1 when this node follows, ready (takes lock). */
static int follows(struct cluster_node *n)
{
	int ok;

	pthread_mutex_lock(&n->lock);
	ok = n->role == NODE_FOLLOWER && n->ready && !n->diverged;
	pthread_mutex_unlock(&n->lock);
	return ok;
}

/*
 * 1 when fence is the create revision of the leader key: as last read,
 * else as read again now (e_write: a follower's is idle; write_lock).
 */
static int fence_ok(struct cluster_node *n, int64_t fence)
{
	int64_t rev;
	int known;

	pthread_mutex_lock(&n->lock);
	rev = n->seen_rev;
	known = n->leader_known;
	pthread_mutex_unlock(&n->lock);
	return (known && fence == rev) ||
	       (read_leader(n, n->e_write, &rev) == 0 && rev && fence == rev);
}

enum hold_pos { HOLD_NOW, HOLD_WAIT, HOLD_DONE };

/*
 * Whether record seq (r) can be held now. Its files are made against
 * this node's state at seq - 1: the fold's, or, one record ahead of the
 * fold, the commit held last when it is r's base (its files were made
 * here, and only commits, which remove no file, are applied meanwhile:
 * a delete or a gc at seq - 1 would wait for the fold). A record that
 * needs no file of a commit can be held anywhere. *base_ok: r's base's
 * files are known to be here. write_lock held.
 */
static enum hold_pos hold_position(struct cluster_node *n, uint64_t seq,
				   const struct log_record *r, int *base_ok)
{
	*base_ok = 0;
	if (seq <= n->fold.seq)
		return HOLD_DONE; /* applied: its files are here */
	if (r->op != LOG_COMMIT || seq == n->fold.seq + 1)
		return HOLD_NOW;
	if (seq == n->fold.seq + 2 && n->held_seq == seq - 1 &&
	    n->held_fence == r->fence && n->held_commit && r->has_base &&
	    !r->full && store_id_equal(&r->base, &n->held_id)) {
		*base_ok = 1;
		return HOLD_NOW;
	}
	return HOLD_WAIT;
}

/* Let the loop thread apply the log for at most ms (write_lock held). */
static void hold_wait(struct cluster_node *n, unsigned int ms)
{
	struct timespec until;
	uint64_t seen;

	pthread_mutex_unlock(&n->write_lock);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += (long)ms * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&n->lock);
	seen = n->applied;
	while (n->applied == seen && !n->stop &&
	       pthread_cond_timedwait(&n->cond, &n->lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&n->lock);
	pthread_mutex_lock(&n->write_lock);
}

/* Hold record seq of p: the answer's status. write_lock held. */
static unsigned int hold(struct cluster_node *n, uint64_t seq,
			 const struct push *p, const char **code)
{
	uint64_t deadline = now_ms() + NODE_HOLD_WAIT_MS;
	enum hold_pos pos;
	enum store_err err;
	int base_ok;

	for (;;) {
		if (!follows(n)) {
			*code = "not_a_follower";
			return 409;
		}
		/* a former leader's record never becomes a record */
		if (!fence_ok(n, p->r.fence)) {
			*code = "stale_leader";
			return 409;
		}
		pos = hold_position(n, seq, &p->r, &base_ok);
		if (pos == HOLD_DONE)
			return 200;
		if (pos == HOLD_NOW)
			break;
		if (now_ms() >= deadline) {
			*code = "behind";
			return 503;
		}
		hold_wait(n, NODE_PUSH_RETRY_MS);
	}
	err = prepare(n, &p->r, p, base_ok);
	if (err) {
		if (n->failed_seq != seq)
			say(n, "warn",
			    "cluster: the files of record %" PRIu64
			    " the leader sent are not here: %s",
			    seq, store_strerror(err));
		n->failed_seq = seq;
		*code = "replication_failed";
		return 503;
	}
	n->held_seq = seq;
	n->held_fence = p->r.fence;
	n->held_commit = p->r.op == LOG_COMMIT;
	n->held_id = p->r.id;
	return 200;
}

static unsigned int hook_hold(void *ctx, uint64_t seq, const char *body,
			      size_t len, const char **code)
{
	struct cluster_node *n = ctx;
	unsigned int status;
	struct push p;

	atomic_fetch_add(&n->held_bytes, len);
	if (!follows(n)) { /* a leader's write_lock may be held long */
		*code = "not_a_follower";
		return 409;
	}
	if (push_parse(body, len, &p) < 0) {
		*code = "invalid_body";
		return 400;
	}
	pthread_mutex_lock(&n->write_lock);
	status = hold(n, seq, &p, code);
	pthread_mutex_unlock(&n->write_lock);
	push_release(&p);
	return status;
}

/* What this node fetched from peers, for /metrics. */
static void metrics_fetched(struct cluster_node *n, FILE *f)
{
	struct peer_stats ps;

	peer_stats(n->peer, &ps);
	fprintf(
	    f,
	    "# HELP modstore_cluster_fetches_total Requests made to "
	    "peers.\n"
	    "# TYPE modstore_cluster_fetches_total counter\n"
	    "modstore_cluster_fetches_total %" PRIu64 "\n"
	    "# HELP modstore_cluster_fetched_bytes_total Body bytes of "
	    "peers' answers (files, pages with their multipart framing, "
	    "diffs, bytecode), headers not included.\n"
	    "# TYPE modstore_cluster_fetched_bytes_total counter\n"
	    "modstore_cluster_fetched_bytes_total %" PRIu64 "\n"
	    "# HELP modstore_cluster_fetched_header_bytes_total Status "
	    "lines and headers of peers' answers.\n"
	    "# TYPE modstore_cluster_fetched_header_bytes_total counter\n"
	    "modstore_cluster_fetched_header_bytes_total %" PRIu64 "\n"
	    "# HELP modstore_cluster_files_fetched_total Module commit "
	    "files a follower made: from the changed pages it fetched, "
	    "fetched whole, or from the pages the leader sent with the "
	    "record.\n"
	    "# TYPE modstore_cluster_files_fetched_total counter\n"
	    "modstore_cluster_files_fetched_total{how=\"pages\"} %" PRIu64 "\n"
	    "modstore_cluster_files_fetched_total{how=\"whole\"} %" PRIu64 "\n"
	    "modstore_cluster_files_fetched_total{how=\"pushed\"} %" PRIu64 "\n"
	    "# HELP modstore_cluster_received_record_bytes_total Bytes of the "
	    "records (and their pages) the leader sent this node.\n"
	    "# TYPE modstore_cluster_received_record_bytes_total counter\n"
	    "modstore_cluster_received_record_bytes_total %" PRIu64 "\n",
	    ps.requests, ps.body_bytes, ps.header_bytes,
	    (uint64_t)atomic_load(&n->files_patched),
	    (uint64_t)atomic_load(&n->files_whole),
	    (uint64_t)atomic_load(&n->files_pushed),
	    (uint64_t)atomic_load(&n->held_bytes));
}

static void hook_metrics(void *ctx, FILE *f)
{
	struct cluster_node *n = ctx;
	uint64_t applied, head;
	int leader;

	pthread_mutex_lock(&n->lock);
	applied = n->applied;
	head = n->head;
	leader = n->role == NODE_LEADER;
	pthread_mutex_unlock(&n->lock);
	fprintf(f,
		"# HELP modstore_cluster_leader 1 when this node leads.\n"
		"# TYPE modstore_cluster_leader gauge\n"
		"modstore_cluster_leader{node=\"%s\"} %d\n"
		"# HELP modstore_cluster_applied The last log position "
		"applied here.\n"
		"# TYPE modstore_cluster_applied gauge\n"
		"modstore_cluster_applied %" PRIu64 "\n"
		"# HELP modstore_cluster_log_head The last log position "
		"this node has seen.\n"
		"# TYPE modstore_cluster_log_head gauge\n"
		"modstore_cluster_log_head %" PRIu64 "\n"
		"# HELP modstore_cluster_lag_records Records seen and not "
		"yet applied.\n"
		"# TYPE modstore_cluster_lag_records gauge\n"
		"modstore_cluster_lag_records %" PRIu64 "\n",
		n->id, leader, applied, head,
		head > applied ? head - applied : 0);
	metrics_fetched(n, f);
}

/* --- lifecycle ------------------------------------------------------------ */

struct cluster_node *cluster_node_new(const struct cluster_options *o)
{
	struct cluster_node *n = calloc(1, sizeof(*n));
	long timeout;

	if (!n)
		return NULL;
	n->o = *o;
	n->etcd_urls = strdup(o->etcd);
	n->name = strdup(o->name ? o->name : "modstore");
	n->id = strdup(o->node_id);
	n->url = strdup(o->advertise);
	n->store = o->store;
	snprintf(n->prefix, sizeof(n->prefix), "/modstore/%s/",
		 n->name ? n->name : "");
	/* a call to etcd never outlasts the lease it might renew */
	timeout = (long)o->lease_ttl * 1000 / 2;
	if (timeout < 500)
		timeout = 500;
	n->e_loop = etcd_new(o->etcd, timeout);
	n->e_lease = etcd_new(o->etcd, timeout);
	n->e_write = etcd_new(o->etcd, timeout);
	n->peer = peer_new(
	    o->token, &(struct peer_tls){o->tls_cert, o->tls_key, o->tls_ca});
	pthread_mutex_init(&n->write_lock, NULL);
	pthread_mutex_init(&n->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&n->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	n->api.ctx = n;
	n->api.leader = hook_leader;
	n->api.change_begin = hook_change_begin;
	n->api.change_end = hook_change_end;
	n->api.applied = hook_applied;
	n->api.wait_applied = hook_wait_applied;
	n->api.metrics = hook_metrics;
	n->api.hold = hook_hold;
	if (!n->etcd_urls || !n->name || !n->id || !n->url || !n->e_loop ||
	    !n->e_lease || !n->e_write || !n->peer) {
		cluster_node_free(n);
		return NULL;
	}
	return n;
}

const struct api_cluster *cluster_node_api(struct cluster_node *n)
{
	return &n->api;
}

int cluster_node_start(struct cluster_node *n)
{
	if (pthread_create(&n->loop_thread, NULL, loop_main, n) != 0)
		return -1;
	if (pthread_create(&n->lease_thread, NULL, lease_main, n) != 0) {
		pthread_mutex_lock(&n->lock);
		n->stop = 1;
		pthread_cond_broadcast(&n->cond);
		pthread_mutex_unlock(&n->lock);
		pthread_join(n->loop_thread, NULL);
		return -1;
	}
	n->started = 1;
	return 0;
}

void cluster_node_stop(struct cluster_node *n)
{
	int64_t lease;

	if (!n || !n->started)
		return;
	pthread_mutex_lock(&n->lock);
	n->stop = 1;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->loop_thread, NULL);
	pthread_join(n->lease_thread, NULL);
	n->started = 0;
	pthread_mutex_lock(&n->lock);
	lease = n->lease;
	n->role = NODE_FOLLOWER;
	n->lease = 0;
	pthread_mutex_unlock(&n->lock);
	if (lease)
		etcd_lease_revoke(n->e_loop, lease);
}

void cluster_node_free(struct cluster_node *n)
{
	if (!n)
		return;
	cluster_node_stop(n);
	etcd_free(n->e_loop);
	etcd_free(n->e_lease);
	etcd_free(n->e_write);
	peer_free(n->peer);
	log_fold_release(&n->fold);
	urls_free(n->peers);
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->write_lock);
	free(n->etcd_urls);
	free(n->name);
	free(n->id);
	free(n->url);
	free(n);
}
