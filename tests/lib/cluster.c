/*
 * cluster.c - etcd members and cluster nodes for the tests (cluster.h).
 */
#include "cluster.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t tracked[64];

static void kill_tracked(void)
{
	size_t i;

	for (i = 0; i < sizeof(tracked) / sizeof(tracked[0]); i++)
		if (tracked[i] > 0)
			kill(tracked[i], SIGKILL);
}

static void track(pid_t add, pid_t del)
{
	static int registered;
	size_t i;

	if (!registered) {
		atexit(kill_tracked);
		registered = 1;
	}
	for (i = 0; i < sizeof(tracked) / sizeof(tracked[0]); i++) {
		if (del && tracked[i] == del) {
			tracked[i] = 0;
			return;
		}
		if (add && !tracked[i]) {
			tracked[i] = add;
			return;
		}
	}
}

long long cl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cl_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static pid_t spawn(const char *const *args, const char *log)
{
	pid_t pid = fork();
	char *argv[48];
	size_t i;
	int fd;

	if (pid != 0)
		return pid;
	for (i = 0; args[i] && i < 47; i++)
		argv[i] = strdup(args[i]);
	argv[i] = NULL;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execv(argv[0], argv);
	_exit(127);
}

static int etcd_member(struct cl_etcd *e, int i, const char *cluster)
{
	char name[16], dir[600], curl[64], purl[64], log[600];
	const char *bin = getenv("ETCD");
	const char *argv[] = {bin && *bin ? bin : "/usr/bin/etcd",
			      "--name",
			      name,
			      "--data-dir",
			      dir,
			      "--listen-client-urls",
			      curl,
			      "--advertise-client-urls",
			      curl,
			      "--listen-peer-urls",
			      purl,
			      "--initial-advertise-peer-urls",
			      purl,
			      "--initial-cluster",
			      cluster,
			      "--initial-cluster-state",
			      "new",
			      "--heartbeat-interval",
			      "50",
			      "--election-timeout",
			      "500",
			      "--log-level",
			      "warn",
			      NULL};

	snprintf(name, sizeof(name), "e%d", i);
	snprintf(dir, sizeof(dir), "%s/etcd%d", e->root, i);
	snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", e->client_port[i]);
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", e->peer_port[i]);
	snprintf(log, sizeof(log), "%s/etcd%d.log", e->root, i);
	e->pid[i] = spawn(argv, log);
	if (e->pid[i] < 0)
		return -1;
	track(e->pid[i], 0);
	return 0;
}

/* 1 when a put through member i's gateway succeeds. */
static int etcd_answers(struct cl_etcd *e, int i)
{
	static const char put[] =
	    "{\"key\":\"dGVzdA==\",\"value\":\"dGVzdA==\"}";
	struct e2e_daemon d;
	struct e2e_resp r;
	int ok;

	memset(&d, 0, sizeof(d));
	snprintf(d.url, sizeof(d.url), "http://127.0.0.1:%d",
		 e->client_port[i]);
	if (e2e_request(&d, "POST", "/v3/kv/put", put, sizeof(put) - 1, NULL,
			&r) < 0)
		return 0;
	ok = r.status == 200 && r.body && !strstr(r.body, "error");
	e2e_resp_release(&r);
	return ok;
}

static void b64(const char *in, char *out, size_t size)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";
	size_t len = strlen(in), i, k = 0;
	unsigned v;

	for (i = 0; i < len && k + 5 < size; i += 3) {
		v = (unsigned)(unsigned char)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)(unsigned char)in[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)in[i + 2];
		out[k++] = t[(v >> 18) & 63];
		out[k++] = t[(v >> 12) & 63];
		out[k++] = i + 1 < len ? t[(v >> 6) & 63] : '=';
		out[k++] = i + 2 < len ? t[v & 63] : '=';
	}
	out[k] = '\0';
}

int cl_etcd_has(const struct cl_etcd *e, const char *key)
{
	struct e2e_daemon d;
	struct e2e_resp r;
	char body[1024], enc[700];
	json_t *kvs;
	int i, got = -1;

	b64(key, enc, sizeof(enc));
	snprintf(body, sizeof(body), "{\"key\":\"%s\"}", enc);
	for (i = 0; i < e->n && got < 0; i++) {
		memset(&d, 0, sizeof(d));
		snprintf(d.url, sizeof(d.url), "http://127.0.0.1:%d",
			 e->client_port[i]);
		if (e2e_request(&d, "POST", "/v3/kv/range", body, strlen(body),
				NULL, &r) < 0)
			continue;
		if (r.status == 200 && r.json &&
		    json_object_get(r.json, "header")) {
			kvs = json_object_get(r.json, "kvs");
			got = json_array_size(kvs) > 0;
		}
		e2e_resp_release(&r);
	}
	return got;
}

int cl_etcd_start(struct cl_etcd *e, const char *root, int n)
{
	char cluster[1024];
	size_t len = 0;
	long long until;
	int i;

	memset(e, 0, sizeof(*e));
	e->n = n;
	snprintf(e->root, sizeof(e->root), "%s", root);
	cluster[0] = '\0';
	for (i = 0; i < n; i++) {
		e->client_port[i] = cl_free_port();
		e->peer_port[i] = cl_free_port();
		len += (size_t)snprintf(cluster + len, sizeof(cluster) - len,
					"%se%d=http://127.0.0.1:%d",
					i ? "," : "", i, e->peer_port[i]);
		snprintf(e->urls + strlen(e->urls),
			 sizeof(e->urls) - strlen(e->urls),
			 "%shttp://127.0.0.1:%d", i ? "," : "",
			 e->client_port[i]);
	}
	for (i = 0; i < n; i++)
		if (etcd_member(e, i, cluster) < 0)
			return -1;
	until = cl_now_ms() + 20000;
	while (cl_now_ms() < until) {
		if (etcd_answers(e, 0))
			return 0;
		usleep(50000);
	}
	fprintf(stderr, "cluster: etcd did not start (see %s/etcd0.log)\n",
		root);
	return -1;
}

void cl_etcd_signal(struct cl_etcd *e, int i, int sig)
{
	int st;

	if (e->pid[i] <= 0)
		return;
	kill(e->pid[i], sig);
	if (sig == SIGKILL || sig == SIGTERM) {
		waitpid(e->pid[i], &st, 0);
		track(0, e->pid[i]);
		e->pid[i] = 0;
	}
}

void cl_etcd_stop(struct cl_etcd *e)
{
	int i;

	for (i = 0; i < e->n; i++)
		cl_etcd_signal(e, i, SIGKILL);
}

int cl_node_start(struct cl_node *nd, const struct cl_etcd *e, const char *root,
		  int i, const char *dir, const char *const *args)
{
	char listen[64], adv[64];
	const char *argv[40];
	struct cl_tls tls = nd->tls;
	size_t k = 0, j;

	if (!nd->port) {
		memset(nd, 0, sizeof(*nd));
		nd->tls = tls;
		nd->port = cl_free_port();
	}
	snprintf(nd->id, sizeof(nd->id), "n%d", i);
	if (dir)
		snprintf(nd->dir, sizeof(nd->dir), "%s", dir);
	else
		snprintf(nd->dir, sizeof(nd->dir), "%s/n%d", root, i);
	snprintf(nd->log, sizeof(nd->log), "%s/n%d.log", root, i);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", nd->port);
	snprintf(adv, sizeof(adv), "%s://127.0.0.1:%d",
		 tls.cacert ? "https" : "http", nd->port);
	argv[k++] = "--listen";
	argv[k++] = listen;
	argv[k++] = "--etcd";
	argv[k++] = e->urls;
	argv[k++] = "--node-id";
	argv[k++] = nd->id;
	argv[k++] = "--advertise";
	argv[k++] = adv;
	for (j = 0; args && args[j] && k < 38; j++)
		argv[k++] = args[j];
	argv[k] = NULL;
	if (e2e_start(&nd->d, nd->dir, nd->log, argv) < 0)
		return -1;
	nd->d.cacert = tls.cacert;
	nd->d.cert = tls.cert;
	nd->d.key = tls.key;
	nd->running = 1;
	return 0;
}

void cl_node_signal(struct cl_node *nd, int sig)
{
	if (!nd->running)
		return;
	if (sig == SIGKILL || sig == SIGTERM) {
		e2e_stop(&nd->d, sig);
		nd->running = 0;
	} else {
		kill(nd->d.pid, sig);
	}
}

long long cl_node_metric(struct cl_node *nd, const char *name)
{
	struct e2e_resp r;
	long long v = -1;
	const char *p;
	size_t len = strlen(name);

	if (e2e_get(&nd->d, "/metrics", &r) < 0)
		return -1;
	for (p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : 0)
		if (!strncmp(p, name, len) && p[len] == ' ') {
			v = atoll(p + len + 1);
			break;
		}
	e2e_resp_release(&r);
	return v;
}

int cl_node_leads(struct cl_node *nd)
{
	struct e2e_resp r;
	char *p;
	int v = -1;

	if (!nd->running || e2e_get(&nd->d, "/metrics", &r) < 0)
		return -1;
	if (r.status == 200 && r.body &&
	    (p = strstr(r.body, "modstore_cluster_leader{")) &&
	    (p = strchr(p, '}')))
		v = atoi(p + 1);
	e2e_resp_release(&r);
	return v;
}

int cl_wait_leader(struct cl_node *nodes, int n, int ms)
{
	long long until = cl_now_ms() + ms;
	int i;

	do {
		for (i = 0; i < n; i++)
			if (nodes[i].running && cl_node_leads(&nodes[i]) == 1)
				return i;
		usleep(20000);
	} while (cl_now_ms() < until);
	return -1;
}

long long cl_applied(const struct e2e_resp *r)
{
	char buf[32];

	if (!e2e_header(r, "Modstore-Applied", buf, sizeof(buf)))
		return -1;
	return atoll(buf);
}

int cl_request(struct cl_node *nodes, int n, int i, const char *method,
	       const char *path, const void *body, size_t len,
	       struct e2e_resp *out)
{
	char loc[1024], p[1024];
	const char *at, *slash;
	int hop, j, port, rc;

	snprintf(p, sizeof(p), "%s", path);
	for (hop = 0; hop < 5; hop++) {
		rc = e2e_request(&nodes[i].d, method, p, body, len, NULL, out);
		if (rc < 0 || out->status != 307)
			return rc;
		/* http:// or https:// */
		if (!e2e_header(out, "Location", loc, sizeof(loc)) ||
		    !(at = strstr(loc, "://")) ||
		    sscanf(at, "://127.0.0.1:%d", &port) != 1 ||
		    !(slash = strchr(at + 3, '/')))
			return 0;
		for (j = 0; j < n; j++)
			if (nodes[j].running && nodes[j].port == port)
				break;
		if (j == n)
			return 0;
		snprintf(p, sizeof(p), "%s", slash);
		e2e_resp_release(out);
		i = j;
	}
	return 0;
}
