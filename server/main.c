/*
 * main.c - modstored: options, the store, the libmicrohttpd daemon, the
 * housekeeping thread (idle sessions, idle memory), signals and a clean
 * stop.
 *
 * Start: sodium_init(), json_object_seed(0), store_open(), the listening
 * socket, then the daemon (internal thread pool, poll). Stop on SIGTERM or
 * SIGINT: stop accepting, let requests in flight finish, stop the daemon,
 * close the store, exit 0.
 *
 * HTTPS (--tls-cert, --tls-key) is libmicrohttpd's GnuTLS, TLS 1.2 and 1.3
 * only; with --tls-client-ca every connection must present a certificate
 * that CA signed, checked during the handshake (tls_require_client_cert).
 * In cluster mode the same PEM text is the node's side of TLS to its
 * peers (cluster/peer.h), first checked with libcurl (tls_check_peers).
 */
#include "api.h"
#include "node.h"
#include "peer.h"
#include "store.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SERVER_VERSION "0.1.0"

/*
 * Fixed limits of the daemon (see --help). libmicrohttpd zeroes a
 * connection's whole buffer pool between two requests: at 256 KiB that was
 * 30% of the daemon's CPU time on a 64-byte read (bench/README.md); 64 KiB
 * still holds any sane header block.
 */
#define SERVER_CONN_TIMEOUT	   30U /* seconds of silence */
#define SERVER_CONN_LIMIT	   1000U
#define SERVER_PER_IP_LIMIT	   256U
#define SERVER_CONN_MEMORY	   ((size_t)64 * 1024)
#define SERVER_DRAIN_MS		   30000U /* grace for requests in flight */
#define SERVER_DEFAULT_MAX_BODY	   (64ULL * 1024 * 1024)
#define SERVER_DEFAULT_MAX_SESSION 64U
#define SERVER_DEFAULT_TIMEOUT	   600U
#define SERVER_TICK_SEC		   1		 /* housekeeping */
#define SERVER_TLS_FILE_MAX	   (1024 * 1024) /* a PEM file, bytes */
#define SERVER_TLS_PRIORITIES	   "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/*
 * --max-module-size goes up to the store's limit, 64 GiB: a module's size,
 * an offset in it and the end of a write are then at most 2^36, so no
 * round-up to a page (end + STORE_PAGE_SIZE - 1) can wrap. The usage text
 * and the messages say 64G.
 */
_Static_assert(STORE_MAX_MODULE_LIMIT == 64ULL << 30,
	       "--help and README.md say the limit is 64G");

struct server_config {
	const char *dir;
	const char *listen;
	unsigned int threads;
	unsigned int max_sessions;
	unsigned int keep_commits;
	unsigned int session_timeout;
	uint64_t max_module_size;
	uint64_t max_body;
	int auto_persist;
	const char *token_file;
	const char *read_token_file;
	const char *tls_cert, *tls_key, *tls_client_ca; /* files, or NULL */
	enum api_log_format log_format;
	unsigned int max_connections;
	unsigned int max_per_ip; /* 0: no limit per address */
	unsigned int conn_timeout;
	uint64_t tree_cache_size; /* 0: the store's default */
	uint64_t max_diff_pages;  /* 0: the store's default */
	/* cluster mode (docs/cluster.md): on when etcd is set */
	const char *etcd, *cluster, *node_id, *advertise;
	unsigned int sync_replicas, lease_ttl, compact_after;
};

/*
 * The housekeeping thread: drops idle sessions and gives the heap's free
 * memory back to the system once the daemon is idle.
 */
struct server_housekeeping {
	struct store *store; /* borrowed */
	struct api *api;     /* borrowed */
	unsigned int idle;   /* --session-timeout; 0: never drop */
	enum api_log_format log_format;
	atomic_ulong completed; /* requests completed so far */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	int started;
};

static const char usage_text[] =
    "NAME\n"
    "    modstored - serve versioned memory images of VM modules over HTTP\n"
    "\n"
    "SYNOPSIS\n"
    "    modstored [--dir DIR] [--listen HOST:PORT] [OPTION]...\n"
    "\n"
    "DESCRIPTION\n"
    "    modstored keeps the memory of deployed modules in the state\n"
    "    directory DIR and serves it over HTTP/1.1 as the v1 contract says:\n"
    "    deploy, sessions, commits, persist, restore, the state root.\n"
    "    It prints \"listening on http://HOST:PORT\" (https:// with\n"
    "    --tls-cert) on standard output once it accepts connections, and\n"
    "    one line per request on standard error. SIGTERM or SIGINT stop\n"
    "    it cleanly: it stops accepting, finishes the requests in flight,\n"
    "    closes the store and exits 0.\n"
    "\n"
    "OPTIONS\n"
    "    Each option can also be given in the environment variable shown;\n"
    "    the command line wins. SIZE is bytes, or a number with K, M or G\n"
    "    (powers of 1024).\n"
    "\n"
    "    -d, --dir DIR            MODSTORE_DIR\n"
    "        State directory, created 0700 if missing. Default ./state.\n"
    "    -l, --listen HOST:PORT   MODSTORE_LISTEN\n"
    "        Address to listen on (IPv6 as [ADDR]:PORT). Default\n"
    "        127.0.0.1:8080. Port 0 picks a free port; the URL printed\n"
    "        tells which.\n"
    "    -t, --threads N          MODSTORE_THREADS\n"
    "        Threads of the connection pool. Default: twice the number of\n"
    "        CPUs, at least 4.\n"
    "    --max-sessions N         MODSTORE_MAX_SESSIONS\n"
    "        Sessions open at once; one more is refused with 503 and\n"
    "        Retry-After. 0 means no limit. Default 64.\n"
    "    --keep-commits N         MODSTORE_KEEP_COMMITS\n"
    "        After each commit, delete the oldest commits beyond the newest\n"
    "        N (as DELETE /commits/{commit} does). 0 keeps all. Default 0.\n"
    "    --session-timeout SEC    MODSTORE_SESSION_TIMEOUT\n"
    "        A session idle for SEC seconds is dropped. 0 never drops.\n"
    "        Default 600.\n"
    "    --max-module-size SIZE   MODSTORE_MAX_MODULE_SIZE\n"
    "        Largest module memory (deploy size and growth by writes):\n"
    "        a multiple of 4096 from 4096 to 64G. Default 1G.\n"
    "    --max-body SIZE          MODSTORE_MAX_BODY\n"
    "        Largest request body; a larger Content-Length is refused at\n"
    "        once with 413. Default 64M.\n"
    "    --auto-persist           MODSTORE_AUTO_PERSIST=1\n"
    "        Persist the commits store before answering each commit.\n"
    "    --token-file FILE        MODSTORE_TOKEN_FILE\n"
    "        Every route but /health then needs \"Authorization: Bearer\n"
    "        TOKEN\", TOKEN being the first line of FILE.\n"
    "    --read-token-file FILE   MODSTORE_READ_TOKEN_FILE\n"
    "        A second token, the first line of FILE, that allows GET and\n"
    "        HEAD only (any other method is 403). Needs --token-file.\n"
    "    --tls-cert FILE          MODSTORE_TLS_CERT\n"
    "    --tls-key FILE           MODSTORE_TLS_KEY\n"
    "        Serve HTTPS only (TLS 1.2 and 1.3) with this certificate\n"
    "        (PEM, the chain after it) and its private key (PEM); the URL\n"
    "        printed is then https://HOST:PORT. Both or neither. In\n"
    "        cluster mode the node also presents them as its client\n"
    "        certificate to its peers.\n"
    "    --tls-client-ca FILE     MODSTORE_TLS_CLIENT_CA\n"
    "        With --tls-cert: a client must present a certificate signed\n"
    "        by a CA of FILE (PEM), valid now, or its handshake fails. In\n"
    "        cluster mode peers' certificates are checked against FILE\n"
    "        alone (without it, against the system's CAs).\n"
    "    --log-format text|json   MODSTORE_LOG_FORMAT\n"
    "        Format of the log on standard error. Default text.\n"
    "    --max-connections N      MODSTORE_MAX_CONNECTIONS\n"
    "        Connections open at once; more are closed at once.\n"
    "        Default 1000.\n"
    "    --max-connections-per-ip N   MODSTORE_MAX_CONNECTIONS_PER_IP\n"
    "        Connections from one client address; more are closed at\n"
    "        once, so one client cannot take them all. 0 means no limit.\n"
    "        Default 256.\n"
    "    --connection-timeout SEC MODSTORE_CONNECTION_TIMEOUT\n"
    "        A connection that sends nothing for SEC seconds (while it\n"
    "        sends its request or between requests) is closed. Default 30.\n"
    "    --tree-cache-size SIZE   MODSTORE_TREE_CACHE_SIZE\n"
    "        Page trees of older module commits kept for page proofs and\n"
    "        diffs (64 bytes per page; the current state's trees are not\n"
    "        counted). A tree not kept is rebuilt by hashing its commit\n"
    "        file. Default 256M.\n"
    "    --max-diff-pages N       MODSTORE_MAX_DIFF_PAGES\n"
    "        Pages one diff may list, in all; a larger one is refused with\n"
    "        413 (?pages=0 has no such limit). K, M, G allowed. Default\n"
    "        1M.\n"
    "    --etcd URL[,URL...]      MODSTORE_ETCD\n"
    "        etcd client URLs: cluster mode (docs/cluster.md). Writes go to\n"
    "        the leader (307 from followers); every node serves reads.\n"
    "    --cluster NAME           MODSTORE_CLUSTER\n"
    "        Keys under /modstore/NAME/ in etcd. Default modstore.\n"
    "    --node-id ID             MODSTORE_NODE_ID\n"
    "        This node's unique, stable name (letters, digits, . _ -);\n"
    "        required with --etcd.\n"
    "    --advertise URL          MODSTORE_ADVERTISE\n"
    "        How clients and peers reach this node (http://HOST:PORT,\n"
    "        https:// with --tls-cert); required with --etcd.\n"
    "    --sync-replicas K        MODSTORE_SYNC_REPLICAS\n"
    "        Followers that hold a write's files durably before it is\n"
    "        acknowledged; 0 = asynchronous. Default 1.\n"
    "    --lease-ttl SEC          MODSTORE_LEASE_TTL\n"
    "        The leadership lease, 1 to 3600 seconds. Default 5.\n"
    "    --compact-after N        MODSTORE_COMPACT_AFTER\n"
    "        Records every live node has applied that the leader removes\n"
    "        from etcd at once, leaving a snapshot; 0 = never. Default 1000.\n"
    "    -h, --help               This text.\n"
    "    -V, --version            The version.\n"
    "\n"
    "LIMITS\n"
    "    Connections as the options above say; 64 KiB of buffers per\n"
    "    connection, which bounds the request line and headers (a larger\n"
    "    header block is refused with 431). Bodies go to the store as they\n"
    "    arrive; a Content-Length above --max-body is refused at once.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 after a clean stop; 1 when the state directory, the address or\n"
    "    the token files cannot be used; 2 for a usage error, or TLS files\n"
    "    that cannot be read or do not match (the message names the\n"
    "    option).\n"
    "\n"
    "EXAMPLE\n"
    "    modstored --dir /var/lib/modstore --listen 127.0.0.1:8080\n"
    "    curl -s http://127.0.0.1:8080/root\n";

static void say(enum api_log_format fmt, const char *level, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static void say(enum api_log_format fmt, const char *level, const char *f, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, f);
	vsnprintf(msg, sizeof(msg), f, ap);
	va_end(ap);
	api_log_message(fmt == API_LOG_NONE ? API_LOG_TEXT : fmt, level, msg);
}

/* --- options -------------------------------------------------------------- */

/* "123", "64M", "1G", "1GiB": 0 and *out, or -1. */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	uint64_t mul = 1;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1024;
			break;
		case 'm':
		case 'M':
			mul = 1024 * 1024;
			break;
		case 'g':
		case 'G':
			mul = 1024ULL * 1024 * 1024;
			break;
		default:
			return -1;
		}
		end++;
		if (*end && strcasecmp(end, "iB") != 0 &&
		    strcasecmp(end, "B") != 0)
			return -1;
	}
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

static int parse_uint(const char *s, unsigned int *out)
{
	uint64_t v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > UINT_MAX)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "1") || !strcasecmp(s, "true") ||
	    !strcasecmp(s, "yes") || !strcasecmp(s, "on")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(s, "0") || !strcasecmp(s, "false") ||
	    !strcasecmp(s, "no") || !strcasecmp(s, "off") || !*s) {
		*out = 0;
		return 0;
	}
	return -1;
}

enum opt_id {
	OPT_DIR = 'd',
	OPT_LISTEN = 'l',
	OPT_THREADS = 't',
	OPT_HELP = 'h',
	OPT_VERSION = 'V',
	OPT_MAX_SESSIONS = 256,
	OPT_SESSION_TIMEOUT,
	OPT_MAX_MODULE_SIZE,
	OPT_MAX_BODY,
	OPT_AUTO_PERSIST,
	OPT_TOKEN_FILE,
	OPT_LOG_FORMAT,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_PER_IP,
	OPT_CONN_TIMEOUT,
	OPT_KEEP_COMMITS,
	OPT_TREE_CACHE_SIZE,
	OPT_MAX_DIFF_PAGES,
	OPT_READ_TOKEN_FILE,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CLIENT_CA,
	OPT_ETCD,
	OPT_CLUSTER,
	OPT_NODE_ID,
	OPT_ADVERTISE,
	OPT_SYNC_REPLICAS,
	OPT_LEASE_TTL,
	OPT_COMPACT_AFTER,
};

/* 1 when s is a name of 1 to 64 letters, digits, '.', '_' or '-'. */
static int name_ok(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
			     "WXYZ0123456789._-");

	return n && n <= 64 && !s[n];
}

/*
 * Apply one option's value; -1, with a message naming origin (the option
 * or its variable) and v, when it is invalid.
 */
static int config_set(struct server_config *c, int id, const char *v,
		      const char *origin)
{
	const char *want = NULL;

	switch (id) {
	case OPT_DIR:
		c->dir = v;
		if (!*v)
			want = "a directory";
		break;
	case OPT_LISTEN:
		c->listen = v;
		break;
	case OPT_THREADS:
		if (parse_uint(v, &c->threads) < 0 || !c->threads ||
		    c->threads > 1024)
			want = "a number from 1 to 1024";
		break;
	case OPT_MAX_SESSIONS:
		if (parse_uint(v, &c->max_sessions) < 0)
			want = "a number, 0 for no limit";
		break;
	case OPT_KEEP_COMMITS:
		if (parse_uint(v, &c->keep_commits) < 0)
			want = "a number of commits, 0 to keep all";
		break;
	case OPT_SESSION_TIMEOUT:
		if (parse_uint(v, &c->session_timeout) < 0)
			want = "a number of seconds, 0 for never";
		break;
	case OPT_MAX_MODULE_SIZE:
		if (parse_size(v, &c->max_module_size) < 0 ||
		    c->max_module_size < STORE_PAGE_SIZE ||
		    c->max_module_size % STORE_PAGE_SIZE ||
		    c->max_module_size > STORE_MAX_MODULE_LIMIT)
			want = "a multiple of 4096 from 4096 to 64G";
		break;
	case OPT_MAX_BODY:
		if (parse_size(v, &c->max_body) < 0 || !c->max_body)
			want = "a size above 0";
		break;
	case OPT_AUTO_PERSIST:
		if (parse_bool(v, &c->auto_persist) < 0)
			want = "1, 0, true, false, yes, no, on or off";
		break;
	case OPT_TOKEN_FILE:
		c->token_file = *v ? v : NULL;
		break;
	case OPT_READ_TOKEN_FILE:
		c->read_token_file = *v ? v : NULL;
		break;
	case OPT_TLS_CERT:
		c->tls_cert = *v ? v : NULL;
		break;
	case OPT_TLS_KEY:
		c->tls_key = *v ? v : NULL;
		break;
	case OPT_TLS_CLIENT_CA:
		c->tls_client_ca = *v ? v : NULL;
		break;
	case OPT_MAX_CONNECTIONS:
		if (parse_uint(v, &c->max_connections) < 0 ||
		    !c->max_connections)
			want = "a number above 0";
		break;
	case OPT_MAX_PER_IP:
		if (parse_uint(v, &c->max_per_ip) < 0)
			want = "a number, 0 for no limit";
		break;
	case OPT_CONN_TIMEOUT:
		if (parse_uint(v, &c->conn_timeout) < 0 || !c->conn_timeout)
			want = "a number of seconds above 0";
		break;
	case OPT_TREE_CACHE_SIZE:
		if (parse_size(v, &c->tree_cache_size) < 0 ||
		    !c->tree_cache_size)
			want = "a size above 0";
		break;
	case OPT_MAX_DIFF_PAGES:
		if (parse_size(v, &c->max_diff_pages) < 0 || !c->max_diff_pages)
			want = "a number of pages above 0";
		break;
	case OPT_ETCD:
		c->etcd = *v ? v : NULL;
		if (c->etcd && strncmp(v, "http://", 7) != 0 &&
		    strncmp(v, "https://", 8) != 0)
			want = "etcd client URLs (http://HOST:PORT,...)";
		break;
	case OPT_CLUSTER:
		c->cluster = v;
		if (!name_ok(v))
			want = "a name of letters, digits, '.', '_', '-'";
		break;
	case OPT_NODE_ID:
		c->node_id = v;
		if (!name_ok(v))
			want = "a name of letters, digits, '.', '_', '-'";
		break;
	case OPT_ADVERTISE:
		c->advertise = v;
		if ((strncmp(v, "http://", 7) != 0 &&
		     strncmp(v, "https://", 8) != 0) ||
		    strlen(v) > 200 || v[strlen(v) - 1] == '/')
			want = "a URL http://HOST:PORT (no path)";
		break;
	case OPT_SYNC_REPLICAS:
		if (parse_uint(v, &c->sync_replicas) < 0 ||
		    c->sync_replicas > 64)
			want = "a number of followers from 0 to 64";
		break;
	case OPT_LEASE_TTL:
		if (parse_uint(v, &c->lease_ttl) < 0 || !c->lease_ttl ||
		    c->lease_ttl > 3600)
			want = "a number of seconds from 1 to 3600";
		break;
	case OPT_COMPACT_AFTER:
		if (parse_uint(v, &c->compact_after) < 0 ||
		    c->compact_after > 100000000)
			want = "a number of records from 0 to 100000000";
		break;
	case OPT_LOG_FORMAT:
		if (!strcmp(v, "text"))
			c->log_format = API_LOG_TEXT;
		else if (!strcmp(v, "json"))
			c->log_format = API_LOG_JSON;
		else
			want = "text or json";
		break;
	default:
		want = "a known option";
		break;
	}
	if (want)
		fprintf(stderr,
			"modstored: invalid value '%s' for %s: want %s\n", v,
			origin, want);
	return want ? -1 : 0;
}

static const struct option longopts[] = {
    {"dir", required_argument, NULL, OPT_DIR},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
    {"session-timeout", required_argument, NULL, OPT_SESSION_TIMEOUT},
    {"keep-commits", required_argument, NULL, OPT_KEEP_COMMITS},
    {"max-module-size", required_argument, NULL, OPT_MAX_MODULE_SIZE},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"auto-persist", no_argument, NULL, OPT_AUTO_PERSIST},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"read-token-file", required_argument, NULL, OPT_READ_TOKEN_FILE},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"max-connections-per-ip", required_argument, NULL, OPT_MAX_PER_IP},
    {"connection-timeout", required_argument, NULL, OPT_CONN_TIMEOUT},
    {"tree-cache-size", required_argument, NULL, OPT_TREE_CACHE_SIZE},
    {"max-diff-pages", required_argument, NULL, OPT_MAX_DIFF_PAGES},
    {"etcd", required_argument, NULL, OPT_ETCD},
    {"cluster", required_argument, NULL, OPT_CLUSTER},
    {"node-id", required_argument, NULL, OPT_NODE_ID},
    {"advertise", required_argument, NULL, OPT_ADVERTISE},
    {"sync-replicas", required_argument, NULL, OPT_SYNC_REPLICAS},
    {"lease-ttl", required_argument, NULL, OPT_LEASE_TTL},
    {"compact-after", required_argument, NULL, OPT_COMPACT_AFTER},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* "--NAME" of the option id into buf, as messages name it. */
static const char *opt_name(int id, char *buf, size_t size)
{
	size_t i;

	for (i = 0; longopts[i].name; i++)
		if (longopts[i].val == id)
			break;
	snprintf(buf, size, "--%s", longopts[i].name ? longopts[i].name : "?");
	return buf;
}

static const struct {
	int id;
	const char *env;
} env_opts[] = {
    {OPT_DIR, "MODSTORE_DIR"},
    {OPT_LISTEN, "MODSTORE_LISTEN"},
    {OPT_THREADS, "MODSTORE_THREADS"},
    {OPT_MAX_SESSIONS, "MODSTORE_MAX_SESSIONS"},
    {OPT_SESSION_TIMEOUT, "MODSTORE_SESSION_TIMEOUT"},
    {OPT_KEEP_COMMITS, "MODSTORE_KEEP_COMMITS"},
    {OPT_MAX_MODULE_SIZE, "MODSTORE_MAX_MODULE_SIZE"},
    {OPT_MAX_BODY, "MODSTORE_MAX_BODY"},
    {OPT_AUTO_PERSIST, "MODSTORE_AUTO_PERSIST"},
    {OPT_TOKEN_FILE, "MODSTORE_TOKEN_FILE"},
    {OPT_READ_TOKEN_FILE, "MODSTORE_READ_TOKEN_FILE"},
    {OPT_TLS_CERT, "MODSTORE_TLS_CERT"},
    {OPT_TLS_KEY, "MODSTORE_TLS_KEY"},
    {OPT_TLS_CLIENT_CA, "MODSTORE_TLS_CLIENT_CA"},
    {OPT_LOG_FORMAT, "MODSTORE_LOG_FORMAT"},
    {OPT_MAX_CONNECTIONS, "MODSTORE_MAX_CONNECTIONS"},
    {OPT_MAX_PER_IP, "MODSTORE_MAX_CONNECTIONS_PER_IP"},
    {OPT_CONN_TIMEOUT, "MODSTORE_CONNECTION_TIMEOUT"},
    {OPT_TREE_CACHE_SIZE, "MODSTORE_TREE_CACHE_SIZE"},
    {OPT_MAX_DIFF_PAGES, "MODSTORE_MAX_DIFF_PAGES"},
    {OPT_ETCD, "MODSTORE_ETCD"},
    {OPT_CLUSTER, "MODSTORE_CLUSTER"},
    {OPT_NODE_ID, "MODSTORE_NODE_ID"},
    {OPT_ADVERTISE, "MODSTORE_ADVERTISE"},
    {OPT_SYNC_REPLICAS, "MODSTORE_SYNC_REPLICAS"},
    {OPT_LEASE_TTL, "MODSTORE_LEASE_TTL"},
    {OPT_COMPACT_AFTER, "MODSTORE_COMPACT_AFTER"},
};

/* What cluster mode needs together: 0, or 2 with a message. */
static int config_check_cluster(const struct server_config *c)
{
	const char *missing = NULL;

	if (!c->etcd)
		return 0;
	if (!c->node_id)
		missing = "--node-id (MODSTORE_NODE_ID)";
	else if (!c->advertise)
		missing = "--advertise (MODSTORE_ADVERTISE)";
	if (missing) {
		fprintf(stderr, "modstored: --etcd needs %s\n", missing);
		return 2;
	}
	if (c->keep_commits) {
		fprintf(stderr, "modstored: --keep-commits cannot be used with "
				"--etcd (deletes are records of the log)\n");
		return 2;
	}
	return 0;
}

/* 0 to run, 1 to exit 0 (help, version), 2 on a usage error. */
static int config_parse(struct server_config *c, int argc, char **argv)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	char name[64];
	const char *v;
	size_t i;
	int ch;

	memset(c, 0, sizeof(*c)); /* an option added later starts at 0 too */
	c->dir = "./state";
	c->listen = "127.0.0.1:8080";
	c->threads = ncpu > 2 ? (unsigned int)(2 * ncpu) : 4;
	if (c->threads > 64)
		c->threads = 64;
	c->max_sessions = SERVER_DEFAULT_MAX_SESSION;
	c->session_timeout = SERVER_DEFAULT_TIMEOUT;
	c->max_module_size = STORE_DEFAULT_MAX_MODULE;
	c->max_body = SERVER_DEFAULT_MAX_BODY;
	c->auto_persist = 0;
	c->token_file = NULL;
	c->log_format = API_LOG_TEXT;
	c->max_connections = SERVER_CONN_LIMIT;
	c->max_per_ip = SERVER_PER_IP_LIMIT;
	c->conn_timeout = SERVER_CONN_TIMEOUT;
	c->cluster = "modstore";
	c->sync_replicas = 1;
	c->lease_ttl = 5;
	c->compact_after = 1000;

	for (i = 0; i < sizeof(env_opts) / sizeof(env_opts[0]); i++) {
		v = getenv(env_opts[i].env);
		if (v && config_set(c, env_opts[i].id, v, env_opts[i].env) < 0)
			return 2;
	}
	while ((ch = getopt_long(argc, argv, "d:l:t:hV", longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 1;
		case OPT_VERSION:
			puts("modstored " SERVER_VERSION);
			return 1;
		case OPT_AUTO_PERSIST:
			c->auto_persist = 1;
			break;
		case '?':
			fprintf(stderr, "Try 'modstored --help'.\n");
			return 2;
		default:
			if (config_set(c, ch, optarg,
				       opt_name(ch, name, sizeof(name))) < 0)
				return 2;
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "modstored: unexpected argument '%s'\n",
			argv[optind]);
		return 2;
	}
	if (!c->tls_cert != !c->tls_key) {
		fprintf(stderr, "modstored: %s needs %s too\n",
			c->tls_cert ? "--tls-cert" : "--tls-key",
			c->tls_cert ? "--tls-key" : "--tls-cert");
		return 2;
	}
	if (c->tls_client_ca && !c->tls_cert) {
		fprintf(stderr, "modstored: --tls-client-ca needs --tls-cert "
				"and --tls-key\n");
		return 2;
	}
	if (c->read_token_file && !c->token_file) {
		fprintf(stderr, "modstored: --read-token-file needs "
				"--token-file (the token that may write)\n");
		return 2;
	}
	return config_check_cluster(c);
}

/* The first line of path, without surrounding blanks; caller frees. */
static char *token_read(const char *path)
{
	char buf[4096], *start, *end, *tok = NULL;
	size_t n;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "modstored: %s: %s\n", path, strerror(errno));
		goto out;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	start = buf;
	while (*start == ' ' || *start == '\t')
		start++;
	end = start + strcspn(start, "\r\n");
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end == start) {
		fprintf(stderr, "modstored: %s: no token in the file\n", path);
		goto out;
	}
	tok = strndup(start, (size_t)(end - start));
out:
	sodium_memzero(buf, sizeof(buf));
	if (f)
		fclose(f);
	return tok;
}

/* --- TLS ----------------------------------------------------------------- */

/* The PEM files of --tls-*, read whole and NUL-terminated. */
struct server_tls {
	char *cert, *key, *ca; /* NULL: not given */
};

/*
 * The whole of the file of option opt, NUL-terminated; caller frees. NULL
 * with a message naming the option.
 */
static char *tls_file_read(const char *opt, const char *path)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "modstored: %s %s: %s\n", opt, path,
			strerror(errno));
		goto out;
	}
	buf = malloc(SERVER_TLS_FILE_MAX + 1);
	if (!buf) {
		fprintf(stderr, "modstored: out of memory\n");
		goto out;
	}
	n = fread(buf, 1, SERVER_TLS_FILE_MAX + 1, f);
	if (ferror(f) || n > SERVER_TLS_FILE_MAX || !n) {
		fprintf(stderr, "modstored: %s %s: %s\n", opt, path,
			ferror(f) ? strerror(errno)
			: n	  ? "larger than 1 MiB"
				  : "empty file");
		sodium_memzero(buf, SERVER_TLS_FILE_MAX + 1);
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
out:
	if (f)
		fclose(f);
	return buf;
}

static void tls_release(struct server_tls *t)
{
	free(t->cert);
	if (t->key) {
		sodium_memzero(t->key, strlen(t->key));
		free(t->key);
	}
	free(t->ca);
	memset(t, 0, sizeof(*t));
}

/* Warn when the first certificate of pem is not valid now. */
static void tls_check_dates(const struct server_config *c, const char *pem)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t d = {(unsigned char *)(uintptr_t)pem,
			    (unsigned int)strlen(pem)};
	time_t now = time(NULL);

	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) == 0) {
		if (gnutls_x509_crt_get_expiration_time(crt) < now)
			say(c->log_format, "warn",
			    "the certificate of --tls-cert %s has expired: "
			    "clients will refuse it",
			    c->tls_cert);
		else if (gnutls_x509_crt_get_activation_time(crt) > now)
			say(c->log_format, "warn",
			    "the certificate of --tls-cert %s is not valid "
			    "yet: clients will refuse it",
			    c->tls_cert);
	}
	gnutls_x509_crt_deinit(crt);
}

/*
 * Read and check the files of --tls-cert, --tls-key and --tls-client-ca
 * with GnuTLS, as libmicrohttpd will load them: 0, or -1 with a message
 * naming the option at fault (unreadable, not PEM, a key that is not the
 * certificate's).
 */
static int tls_load(const struct server_config *c, struct server_tls *t)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_x509_crt_t *crts = NULL;
	gnutls_x509_privkey_t key = NULL;
	gnutls_datum_t d;
	unsigned int ncrt = 0, i;
	int rc, ret = -1;

	memset(t, 0, sizeof(*t));
	if (!c->tls_cert)
		return 0;
	t->cert = tls_file_read("--tls-cert", c->tls_cert);
	t->key = t->cert ? tls_file_read("--tls-key", c->tls_key) : NULL;
	if (!t->key)
		goto out;
	if (c->tls_client_ca &&
	    !(t->ca = tls_file_read("--tls-client-ca", c->tls_client_ca)))
		goto out;

	d.data = (unsigned char *)t->cert;
	d.size = (unsigned int)strlen(t->cert);
	rc = gnutls_x509_crt_list_import2(&crts, &ncrt, &d, GNUTLS_X509_FMT_PEM,
					  0);
	if (rc < 0 || !ncrt) {
		fprintf(stderr,
			"modstored: --tls-cert %s: no PEM certificate: %s\n",
			c->tls_cert, rc < 0 ? gnutls_strerror(rc) : "none");
		goto out;
	}
	d.data = (unsigned char *)t->key;
	d.size = (unsigned int)strlen(t->key);
	if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
	    (rc = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM,
					      NULL, 0)) < 0) {
		fprintf(stderr,
			"modstored: --tls-key %s: no PEM private key (or one "
			"with a password): %s\n",
			c->tls_key, gnutls_strerror(rc));
		goto out;
	}
	if ((rc = gnutls_certificate_allocate_credentials(&cred)) < 0) {
		fprintf(stderr, "modstored: GnuTLS: %s\n", gnutls_strerror(rc));
		goto out;
	}
	rc = gnutls_certificate_set_x509_key(cred, crts, ncrt, key);
	if (rc < 0) {
		fprintf(stderr,
			"modstored: --tls-key %s does not go with the "
			"certificate of --tls-cert %s: %s\n",
			c->tls_key, c->tls_cert, gnutls_strerror(rc));
		goto out;
	}
	if (t->ca) {
		d.data = (unsigned char *)t->ca;
		d.size = (unsigned int)strlen(t->ca);
		rc = gnutls_certificate_set_x509_trust_mem(cred, &d,
							   GNUTLS_X509_FMT_PEM);
		if (rc <= 0) {
			fprintf(stderr,
				"modstored: --tls-client-ca %s: no PEM "
				"certificate: %s\n",
				c->tls_client_ca,
				rc < 0 ? gnutls_strerror(rc) : "none");
			goto out;
		}
	}
	tls_check_dates(c, t->cert);
	ret = 0;
out:
	if (cred)
		gnutls_certificate_free_credentials(cred);
	if (key)
		gnutls_x509_privkey_deinit(key);
	for (i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (ret < 0)
		tls_release(t);
	return ret;
}

/*
 * In cluster mode a node shows its certificate to its peers and checks
 * theirs against --tls-client-ca (docs/cluster.md), with libcurl and its
 * TLS library, OpenSSL, not the GnuTLS that tls_load() asked: what it
 * refuses stops the start too, naming the option, rather than every
 * request to a peer failing later. 0, or -1 with a message.
 */
static int tls_check_peers(const struct server_config *c,
			   const struct server_tls *t)
{
	struct peer_tls pt = {t->cert, t->key, t->ca};
	char err[512];

	if (!c->etcd || !t->cert)
		return 0;
	switch (peer_tls_check(&pt, err, sizeof(err))) {
	case PEER_TLS_OK:
		return 0;
	case PEER_TLS_CERT:
		fprintf(stderr,
			"modstored: --tls-cert %s and --tls-key %s cannot be "
			"shown to peers: %s\n",
			c->tls_cert, c->tls_key, err);
		break;
	case PEER_TLS_CA:
		if (c->tls_client_ca)
			fprintf(stderr,
				"modstored: --tls-client-ca %s cannot check "
				"peers: %s\n",
				c->tls_client_ca, err);
		else
			fprintf(stderr,
				"modstored: the system's CAs cannot check "
				"peers (give --tls-client-ca): %s\n",
				err);
		break;
	default:
		fprintf(stderr, "modstored: TLS to peers: %s\n", err);
		break;
	}
	return -1;
}

/*
 * MHD_OPTION_NOTIFY_CONNECTION with --tls-client-ca. libmicrohttpd only
 * asks for a client certificate (GNUTLS_CERT_REQUEST) and never checks
 * one; the session is made before this is called and its handshake starts
 * after, so here it is told to require one and to verify it against the
 * CA of --tls-client-ca (chain, dates) during the handshake, which fails
 * otherwise.
 */
static void tls_require_client_cert(void *cls, struct MHD_Connection *conn,
				    void **socket_context,
				    enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;

	(void)cls;
	(void)socket_context;
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;
	gnutls_certificate_server_set_request(ci->tls_session,
					      GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_cert(ci->tls_session, NULL, 0);
}

/*
 * MHD_OPTION_EXTERNAL_LOGGER: libmicrohttpd's own complaints (a failed TLS
 * handshake, a malformed request) as lines of the daemon's log, in its
 * format, rather than raw text in the middle of a JSON log. cls points to
 * the configured enum api_log_format.
 */
static void server_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void server_mhd_log(void *cls, const char *fmt, va_list ap)
{
	const enum api_log_format *lf = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	say(*lf, "warn", "libmicrohttpd: %s", msg);
}

/* --- libmicrohttpd 0.9.75 and a malformed Content-Length ---------------- */

/*
 * libmicrohttpd 0.9.75 answers a Content-Length it cannot parse ("5, 5",
 * "abc", a number past 2^64) itself, and then answers it a second time:
 * two status lines back to back on the wire, the second with its HTML
 * body (its state machine goes on after the error). Nothing in its API
 * comes before that parse but the lookup of the header, which it makes
 * through its PLT: the daemon's own MHD_lookup_connection_value_n()
 * preempts it. It hides from libmicrohttpd a Content-Length that is not a
 * plain decimal number of at most 20 digits, so that the request reaches
 * the api, whose framing check (api/api.c) sees every header line and
 * answers one JSON 400 (or 413) with Connection: close. Every other lookup
 * goes to libmicrohttpd's function unchanged.
 */
typedef enum MHD_Result (*server_lookup_fn)(struct MHD_Connection *,
					    enum MHD_ValueKind, const char *,
					    size_t, const char **, size_t *);
static server_lookup_fn server_real_lookup;

typedef struct MHD_Response *(*server_from_buffer_fn)(
    size_t, void *, enum MHD_ResponseMemoryMode);
typedef enum MHD_Result (*server_queue_fn)(struct MHD_Connection *,
					   unsigned int, struct MHD_Response *);
static server_from_buffer_fn server_real_from_buffer;
static server_queue_fn server_real_queue;

__attribute__((constructor)) static void server_lookup_init(void)
{
	server_real_lookup =
	    (server_lookup_fn)dlsym(RTLD_NEXT, "MHD_lookup_connection_value_n");
	server_real_from_buffer = (server_from_buffer_fn)dlsym(
	    RTLD_NEXT, "MHD_create_response_from_buffer");
	server_real_queue =
	    (server_queue_fn)dlsym(RTLD_NEXT, "MHD_queue_response");
}

enum MHD_Result MHD_lookup_connection_value_n(struct MHD_Connection *conn,
					      enum MHD_ValueKind kind,
					      const char *key, size_t key_size,
					      const char **value_ptr,
					      size_t *value_size_ptr)
{
	const char *v = NULL;
	size_t n = 0;
	enum MHD_Result rc;

	if (!server_real_lookup)
		return MHD_NO;
	rc = server_real_lookup(conn, kind, key, key_size, &v, &n);
	if (rc == MHD_YES && kind == MHD_HEADER_KIND && key &&
	    key_size == sizeof(MHD_HTTP_HEADER_CONTENT_LENGTH) - 1 &&
	    !strncasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH, key_size) &&
	    (!v || !n || n > 20 || strspn(v, "0123456789") != n ||
	     (n == 20 && strcmp(v, "18446744073709551615") > 0)))
		return MHD_NO;
	if (value_ptr)
		*value_ptr = v;
	if (value_size_ptr)
		*value_size_ptr = n;
	return rc;
}

/*
 * libmicrohttpd's own error answers (414, 431, 505, a malformed request
 * line, header or chunk, a chunk too large) have a fixed HTML body and no
 * hook; it makes each with MHD_create_response_from_buffer() of one of
 * its static "<html><head><title>" texts and queues it at once with
 * MHD_queue_response(), from the connection's thread, both through its
 * PLT. The daemon's own two functions preempt them: the response made from
 * such a text is remembered (per thread) and, when queued, replaced by
 * the contract's JSON error for its status, with Content-Type. The api
 * never makes an HTML answer, so nothing else is touched.
 */
static _Thread_local struct MHD_Response *server_html_error;

struct MHD_Response *
MHD_create_response_from_buffer(size_t size, void *buffer,
				enum MHD_ResponseMemoryMode mode)
{
	static const char html[] = "<html><head><title>";
	struct MHD_Response *resp;

	if (!server_real_from_buffer)
		return NULL;
	resp = server_real_from_buffer(size, buffer, mode);
	if (resp && mode == MHD_RESPMEM_PERSISTENT && buffer &&
	    size >= sizeof(html) - 1 && !memcmp(buffer, html, sizeof(html) - 1))
		server_html_error = resp;
	return resp;
}

/* The JSON error body that stands for libmicrohttpd's answer of status. */
static const char *server_mhd_error_body(unsigned int status)
{
	switch (status) {
	case MHD_HTTP_CONTENT_TOO_LARGE:
		return "{\"error\":\"body_too_large\",\"message\":\"a chunk "
		       "size or Content-Length beyond any limit\"}\n";
	case MHD_HTTP_URI_TOO_LONG:
		return "{\"error\":\"uri_too_long\",\"message\":\"the request "
		       "line is longer than a connection's 64 KiB of "
		       "buffers\"}\n";
	case MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE:
		return "{\"error\":\"headers_too_large\",\"message\":\"the "
		       "header block is larger than a connection's 64 KiB of "
		       "buffers\"}\n";
	case MHD_HTTP_HTTP_VERSION_NOT_SUPPORTED:
		return "{\"error\":\"http_version_not_supported\",\"message\":"
		       "\"this server speaks HTTP versions 1.0 and 1.1\"}\n";
	case MHD_HTTP_INTERNAL_SERVER_ERROR:
		return "{\"error\":\"internal\",\"message\":\"the request "
		       "could not be processed\"}\n";
	default:
		return "{\"error\":\"invalid_request\",\"message\":\"the "
		       "request line, a header line or a chunk of the body is "
		       "malformed\"}\n";
	}
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *conn,
				   unsigned int status,
				   struct MHD_Response *resp)
{
	struct MHD_Response *json;
	const char *body;
	enum MHD_Result rc;

	if (!server_real_queue)
		return MHD_NO;
	if (!resp || resp != server_html_error)
		return server_real_queue(conn, status, resp);
	server_html_error = NULL;
	body = server_mhd_error_body(status);
	json = server_real_from_buffer(strlen(body), (void *)(uintptr_t)body,
				       MHD_RESPMEM_PERSISTENT);
	if (!json) /* out of memory: libmicrohttpd's own is still right */
		return server_real_queue(conn, status, resp);
	MHD_add_response_header(json, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/json");
	/* the queue holds its reference; the caller destroys resp */
	rc = server_real_queue(conn, status, json);
	MHD_destroy_response(json);
	return rc;
}

/* --- the listening socket ------------------------------------------------- */

/*
 * Bind HOST:PORT ([HOST]:PORT for IPv6) and listen; the URL it is reachable
 * at goes to url. The socket, or -1 with a message.
 */
static int listen_open(const char *spec, const char *scheme, char *url,
		       size_t urlsize)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[256], port[16], nhost[NI_MAXHOST], nport[NI_MAXSERV];
	const char *colon, *h = spec;
	size_t hlen;
	int fd = -1, one = 1, rc;

	colon = strrchr(spec, ':');
	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof(port))
		goto bad;
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (!hlen || hlen >= sizeof(host))
		goto bad;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		fprintf(stderr, "modstored: %s: %s\n", spec, gai_strerror(rc));
		goto fail;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 256) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		fprintf(stderr, "modstored: cannot listen on %s: %s\n", spec,
			strerror(errno));
		goto fail;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sslen, nhost, sizeof(nhost),
			nport, sizeof(nport),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		fprintf(stderr, "modstored: getsockname: %s\n",
			strerror(errno));
		close(fd);
		fd = -1;
		goto fail;
	}
	if (ss.ss_family == AF_INET6)
		snprintf(url, urlsize, "%s://[%s]:%s", scheme, nhost, nport);
	else
		snprintf(url, urlsize, "%s://%s:%s", scheme, nhost, nport);
	goto out;
bad:
	fprintf(stderr, "modstored: --listen wants HOST:PORT, not '%s'\n",
		spec);
fail:
out:
	if (res)
		freeaddrinfo(res);
	return fd;
}

/* --- housekeeping: idle sessions, idle memory ---------------------------- */

/*
 * The MHD_RequestCompletedCallback: counts the request for housekeeping_trim
 * and hands it to the api. cls is the struct server_housekeeping.
 */
static void server_request_completed(void *cls, struct MHD_Connection *conn,
				     void **req_cls,
				     enum MHD_RequestTerminationCode toe)
{
	struct server_housekeeping *hk = cls;

	atomic_fetch_add(&hk->completed, 1);
	api_request_completed(hk->api, conn, req_cls, toe);
}

/*
 * Give the heap's free memory back to the system once per quiet spell: no
 * request in flight and none completed during the last tick, after some
 * did. seen is the count of completed requests at the previous tick,
 * trimmed the count at the last trim.
 *
 * A burst frees into the heap what it took there (a commit's page tree,
 * 16 MiB per GiB of module; sessions' pages, 4 KiB each), and glibc keeps
 * it: once a large block is freed, blocks up to its size no longer get
 * their own mmap, and a free top of the heap is returned only above twice
 * that size (up to 64 MiB). malloc_trim() returns the free pages of the
 * main arena, top included, but never the top of another arena (each
 * thread may get one); heap_setup() keeps a single arena, so this reaches
 * all of it. It costs about a millisecond, once per quiet spell.
 */
static void housekeeping_trim(struct server_housekeeping *hk,
			      unsigned long *seen, unsigned long *trimmed)
{
	unsigned long now = atomic_load(&hk->completed);

	if (now != *seen) {
		*seen = now;
		return;
	}
	if (now == *trimmed || api_wait_idle(hk->api, 0))
		return;
	malloc_trim(0);
	*trimmed = now;
}

/*
 * Every SERVER_TICK_SEC: the memory check; every idle/2 seconds (1 to 5):
 * drop the sessions idle for idle seconds.
 */
static void *housekeeping_main(void *arg)
{
	struct server_housekeeping *hk = arg;
	unsigned int every = hk->idle / 2, ticks = 0;
	unsigned long seen = 0, trimmed = 0;
	struct timespec until;
	size_t dropped;

	if (every < 1)
		every = 1;
	if (every > 5)
		every = 5;
	pthread_mutex_lock(&hk->lock);
	while (!hk->stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += SERVER_TICK_SEC;
		while (!hk->stop && pthread_cond_timedwait(&hk->cond, &hk->lock,
							   &until) != ETIMEDOUT)
			;
		if (hk->stop)
			break;
		pthread_mutex_unlock(&hk->lock);
		dropped = 0;
		if (hk->idle && (ticks += SERVER_TICK_SEC) >= every) {
			ticks = 0;
			if (store_session_expire(hk->store, hk->idle,
						 &dropped) == STORE_OK &&
			    dropped)
				say(hk->log_format, "info",
				    "dropped %zu session(s) idle for %us or "
				    "more",
				    dropped, hk->idle);
		}
		housekeeping_trim(hk, &seen, &trimmed);
		pthread_mutex_lock(&hk->lock);
	}
	pthread_mutex_unlock(&hk->lock);
	return NULL;
}

static int housekeeping_start(struct server_housekeeping *hk)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&hk->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hk->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&hk->thread, NULL, housekeeping_main, hk) != 0)
		return -1;
	hk->started = 1;
	return 0;
}

static void housekeeping_stop(struct server_housekeeping *hk)
{
	pthread_mutex_lock(&hk->lock);
	hk->stop = 1;
	pthread_cond_signal(&hk->cond);
	pthread_mutex_unlock(&hk->lock);
	if (hk->started)
		pthread_join(hk->thread, NULL);
	pthread_cond_destroy(&hk->cond);
	pthread_mutex_destroy(&hk->lock);
}

/*
 * One malloc arena for every thread, so that housekeeping_trim() can give
 * back all the free memory (see there). Before any thread starts. The
 * threads keep their own caches of small blocks (glibc's tcache), which
 * take no lock.
 */
static void heap_setup(void)
{
	mallopt(M_ARENA_MAX, 1);
}

/*
 * Connections, session overlays and served files all take descriptors: use
 * the hard limit rather than the usual soft 1024.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* --- cluster mode --------------------------------------------------------- */

/*
 * The node of cfg's cluster options on store, sending token and showing
 * the TLS files of tls to its peers; NULL with a message.
 */
static struct cluster_node *server_cluster_node(const struct server_config *cfg,
						struct store *store,
						const char *token,
						const struct server_tls *tls)
{
	struct cluster_options co;
	struct cluster_node *node;

	memset(&co, 0, sizeof(co));
	co.etcd = cfg->etcd;
	co.name = cfg->cluster;
	co.node_id = cfg->node_id;
	co.advertise = cfg->advertise;
	co.sync_replicas = cfg->sync_replicas;
	co.lease_ttl = cfg->lease_ttl;
	co.compact_after = cfg->compact_after;
	co.token = token;
	co.tls_cert = tls->cert;
	co.tls_key = tls->key;
	co.tls_ca = tls->ca;
	co.store = store;
	co.log_format = cfg->log_format;
	node = cluster_node_new(&co);
	if (!node)
		fprintf(stderr,
			"modstored: cannot set up the cluster node "
			"(--etcd %s)\n",
			cfg->etcd);
	return node;
}

/* --- main ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct server_config cfg;
	struct store_options so;
	struct api_options ao;
	struct server_housekeeping hk;
	struct server_tls tls = {NULL, NULL, NULL};
	struct store *store = NULL;
	struct cluster_node *node = NULL;
	struct api *api = NULL;
	struct MHD_Daemon *d = NULL;
	enum store_err err;
	sigset_t sigs;
	char url[NI_MAXHOST + NI_MAXSERV + 16], *token = NULL, *rtoken = NULL;
	unsigned int flags;
	int lfd = -1, sig = 0, ret = 1, rc;
	unsigned int left;
	MHD_socket qfd;

	rc = config_parse(&cfg, argc, argv);
	if (rc)
		return rc == 1 ? 0 : 2;
	memset(&hk, 0, sizeof(hk));
	atomic_init(&hk.completed, 0);

	if (!server_real_lookup || !server_real_from_buffer ||
	    !server_real_queue) {
		fprintf(stderr, "modstored: libmicrohttpd's "
				"MHD_lookup_connection_value_n, "
				"MHD_create_response_from_buffer or "
				"MHD_queue_response is missing\n");
		goto out;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "modstored: libsodium failed to start\n");
		goto out;
	}
	json_object_seed(0);

	/* Signals are taken by sigwait() below; every thread blocks them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	raise_fd_limit();
	/*
	 * Not with TLS: GnuTLS allocates a buffer for every record it sends
	 * or receives, too large for the threads' caches, and one arena's
	 * lock then serialised the threads (a 64-byte read over HTTPS went
	 * from 0.7x to 0.8-1.0x of nginx with the default arenas). The
	 * price: malloc_trim() reaches the main arena only.
	 */
	if (!cfg.tls_cert)
		heap_setup();
	if (cfg.token_file && !(token = token_read(cfg.token_file)))
		goto out;
	if (cfg.read_token_file && !(rtoken = token_read(cfg.read_token_file)))
		goto out;
	if (rtoken && !strcmp(rtoken, token)) {
		fprintf(stderr, "modstored: --read-token-file holds the token "
				"of --token-file\n");
		ret = 2;
		goto out;
	}
	if (cfg.tls_cert &&
	    MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		fprintf(stderr, "modstored: --tls-cert: this libmicrohttpd "
				"has no TLS\n");
		ret = 2;
		goto out;
	}
	if (tls_load(&cfg, &tls) < 0 || tls_check_peers(&cfg, &tls) < 0) {
		ret = 2;
		goto out;
	}

	memset(&so, 0, sizeof(so));
	so.dir = cfg.dir;
	so.max_module_size = cfg.max_module_size;
	so.max_sessions = cfg.max_sessions;
	so.keep_commits = cfg.keep_commits;
	so.tree_cache_size = cfg.tree_cache_size;
	so.max_diff_pages = cfg.max_diff_pages;
	so.tmp_pool = 1;
	err = store_open(&store, &so);
	if (err != STORE_OK) {
		fprintf(stderr, "modstored: cannot open the store in %s: %s\n",
			cfg.dir, store_strerror(err));
		goto out;
	}

	lfd = listen_open(cfg.listen, tls.cert ? "https" : "http", url,
			  sizeof(url));
	if (lfd < 0)
		goto out;

	memset(&ao, 0, sizeof(ao));
	ao.store = store;
	ao.max_module_size = cfg.max_module_size;
	ao.max_body = cfg.max_body;
	ao.auto_persist = cfg.auto_persist;
	ao.token = token;
	ao.read_token = rtoken;
	ao.log_format = cfg.log_format;
	if (cfg.etcd) {
		node = server_cluster_node(&cfg, store, token, &tls);
		if (!node)
			goto out;
		ao.cluster = cluster_node_api(node);
	}
	api = api_new(&ao);
	if (!api) {
		fprintf(stderr, "modstored: out of memory\n");
		goto out;
	}
	hk.api = api;

	/*
	 * poll(), not epoll: with a thread pool and epoll, libmicrohttpd
	 * 0.9.75's MHD_quiesce_daemon() and a worker that wakes at that
	 * moment both take the listening socket out of the worker's epoll
	 * set, and the loser aborts the process ("Failed to remove listen
	 * FD from epoll set"). With poll() a quiesce only raises a flag and
	 * wakes each worker through its ITC.
	 */
	/*
	 * The logger comes first (libmicrohttpd wants it so); the TLS
	 * options last, each MHD_OPTION_END when not wanted, so that the
	 * list stops there.
	 */
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
		MHD_USE_ERROR_LOG | (tls.cert ? MHD_USE_TLS : 0);
	d = MHD_start_daemon(
	    flags, 0, NULL, NULL, api_access_handler, api,
	    MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, &cfg.log_format,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)lfd,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg.threads,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg.conn_timeout,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg.max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)cfg.max_per_ip,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, server_request_completed, &hk,
	    MHD_OPTION_URI_LOG_CALLBACK, api_uri_log, api,
	    tls.cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, tls.cert,
	    MHD_OPTION_HTTPS_MEM_KEY, tls.key, MHD_OPTION_HTTPS_PRIORITIES,
	    SERVER_TLS_PRIORITIES,
	    tls.ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, tls.ca,
	    MHD_OPTION_NOTIFY_CONNECTION, tls_require_client_cert, NULL,
	    MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "modstored: the HTTP daemon failed to start\n");
		goto out;
	}

	hk.store = store;
	hk.idle = cfg.session_timeout;
	hk.log_format = cfg.log_format;
	if (housekeeping_start(&hk) < 0) {
		fprintf(stderr, "modstored: cannot start housekeeping\n");
		goto out;
	}

	if (node && cluster_node_start(node) < 0) {
		fprintf(stderr, "modstored: cannot start the cluster node\n");
		goto out;
	}
	printf("listening on %s\n", url);
	fflush(stdout);
	say(cfg.log_format, "info",
	    "modstored " SERVER_VERSION " listening on %s, state in %s, "
	    "%u threads%s%s",
	    url, cfg.dir, cfg.threads,
	    token ? (rtoken ? ", token required (and a read token)"
			    : ", token required")
		  : "",
	    cfg.auto_persist ? ", auto-persist" : "");

	do {
		rc = sigwait(&sigs, &sig);
	} while (rc == EINTR);
	say(cfg.log_format, "info", "%s: stopping",
	    sig == SIGINT ? "SIGINT" : "SIGTERM");
	ret = 0;

out:
	cluster_node_stop(node); /* leadership goes before the daemon */
	if (d) {
		api_begin_shutdown(api);
		qfd = MHD_quiesce_daemon(d);
		/*
		 * No thread polls the socket any more: shut it down so that
		 * new connections are refused at once rather than left in
		 * the backlog until the descriptor closes after the stop.
		 */
		if (qfd != MHD_INVALID_SOCKET)
			shutdown(qfd, SHUT_RDWR);
		left = api_wait_idle(api, SERVER_DRAIN_MS);
		if (left)
			say(cfg.log_format, "warn",
			    "%u request(s) still in flight; closing them",
			    left);
		MHD_stop_daemon(d);
		if (qfd != MHD_INVALID_SOCKET)
			lfd = qfd;
	}
	if (lfd >= 0)
		close(lfd);
	if (hk.store)
		housekeeping_stop(&hk);
	api_free(api);
	cluster_node_free(node);
	store_close(store);
	if (token) {
		sodium_memzero(token, strlen(token));
		free(token);
	}
	if (rtoken) {
		sodium_memzero(rtoken, strlen(rtoken));
		free(rtoken);
	}
	tls_release(&tls);
	if (!ret)
		say(cfg.log_format, "info", "stopped");
	return ret;
}
