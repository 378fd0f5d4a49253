/*
 * e2e.c - the end-to-end helpers of e2e.h: the daemon as a child process,
 * libcurl requests, streamed bodies, /proc figures.
 */
#include "e2e.h"
#include "t.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define E2E_MAX_DAEMONS 16
#define E2E_START_MS	20000 /* a safety net, not a timing assertion */

static pid_t running[E2E_MAX_DAEMONS];
static int curl_ready;

static void kill_all(void)
{
	int i;

	for (i = 0; i < E2E_MAX_DAEMONS; i++) {
		if (running[i] > 0) {
			kill(running[i], SIGKILL);
			waitpid(running[i], NULL, 0);
			running[i] = 0;
		}
	}
}

static void track(pid_t pid, pid_t old)
{
	int i;

	for (i = 0; i < E2E_MAX_DAEMONS; i++) {
		if (running[i] == old) {
			running[i] = pid;
			return;
		}
	}
}

static void init_once(void)
{
	if (curl_ready)
		return;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	atexit(kill_all);
	signal(SIGPIPE, SIG_IGN);
	curl_ready = 1;
}

static const char *daemon_path(void)
{
	const char *p = getenv("MODSTORED");

	return p && *p ? p : "bin/modstored";
}

/* A child running the daemon with argv; stdout to pipe out, stderr to log. */
static pid_t spawn(char **argv, const char *log, const char *const *env,
		   int *out)
{
	int p[2] = {-1, -1};
	pid_t pid;
	size_t i;

	if (out && pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		if (out) {
			close(p[0]);
			close(p[1]);
		}
		return -1;
	}
	if (pid == 0) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out)
			dup2(p[1], 1);
		if (log) {
			fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (fd >= 0)
				dup2(fd, 2);
		}
		for (i = 0; env && env[i]; i++)
			putenv(strdup(env[i]));
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		fprintf(stderr, "e2e: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (out) {
		close(p[1]);
		*out = p[0];
	}
	return pid;
}

static char **make_argv(const char *const *pre, const char *const *args)
{
	size_t n = 0, i, k = 0;
	char **v;

	for (i = 0; pre && pre[i]; i++)
		n++;
	for (i = 0; args && args[i]; i++)
		n++;
	v = calloc(n + 2, sizeof(*v));
	if (!v)
		return NULL;
	v[k++] = strdup(daemon_path());
	for (i = 0; pre && pre[i]; i++)
		v[k++] = strdup(pre[i]);
	for (i = 0; args && args[i]; i++)
		v[k++] = strdup(args[i]);
	v[k] = NULL;
	return v;
}

static void free_argv(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

int e2e_start_env(struct e2e_daemon *d, const char *dir, const char *log,
		  const char *const *args, const char *const *env)
{
	const char *pre[] = {"--dir", dir, "--listen", "127.0.0.1:0", NULL};
	char buf[1024], *nl, *at;
	size_t have = 0;
	char **argv;
	ssize_t n;
	int waited = 0, st;

	init_once();
	memset(d, 0, sizeof(*d));
	d->out_fd = -1;
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	snprintf(d->log, sizeof(d->log), "%s", log ? log : "");
	argv = make_argv(pre, args);
	if (!argv)
		return -1;
	d->pid = spawn(argv, log, env, &d->out_fd);
	free_argv(argv);
	if (d->pid < 0) {
		fprintf(stderr, "e2e: cannot start %s\n", daemon_path());
		return -1;
	}
	track(d->pid, 0);
	for (;;) {
		struct pollfd pfd = {d->out_fd, POLLIN, 0};

		buf[have] = '\0';
		at = strstr(buf, "listening on ");
		if (at && (nl = strchr(at, '\n'))) {
			*nl = '\0';
			snprintf(d->url, sizeof(d->url), "%s", at + 13);
			at = strrchr(d->url, ':');
			d->port = at ? atoi(at + 1) : 0;
			return d->port > 0 ? 0 : -1;
		}
		if (waited >= E2E_START_MS || have >= sizeof(buf) - 1)
			break;
		if (poll(&pfd, 1, 100) == 0) {
			waited += 100;
			continue;
		}
		n = read(d->out_fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	fprintf(stderr, "e2e: %s did not start (see %s)\n", daemon_path(),
		log ? log : "its stderr");
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	track(0, d->pid);
	d->pid = 0;
	close(d->out_fd);
	d->out_fd = -1;
	return -1;
}

int e2e_start(struct e2e_daemon *d, const char *dir, const char *log,
	      const char *const *args)
{
	return e2e_start_env(d, dir, log, args, NULL);
}

int e2e_stop(struct e2e_daemon *d, int sig)
{
	int st, rc = -1;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, sig);
	while (waitpid(d->pid, &st, 0) < 0) {
		if (errno != EINTR)
			goto out;
	}
	if (WIFEXITED(st))
		rc = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		rc = 128 + WTERMSIG(st);
out:
	track(0, d->pid);
	d->pid = 0;
	if (d->out_fd >= 0)
		close(d->out_fd);
	d->out_fd = -1;
	return rc;
}

const char *e2e_shim_preload(void)
{
	static char pre[1024];
	const char *shim = getenv("FAULTSHIM");

	if (!shim || access(shim, R_OK) != 0 ||
	    (size_t)snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", shim) >=
		sizeof(pre))
		return NULL;
	return pre;
}

int e2e_run(const char *const *args, char *out, size_t outsize)
{
	char **argv = make_argv(NULL, args);
	size_t have = 0;
	ssize_t n;
	int fd = -1, st;
	pid_t pid;

	init_once();
	if (!argv)
		return -1;
	pid = spawn(argv, "/dev/null", NULL, &fd);
	free_argv(argv);
	if (pid < 0)
		return -1;
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};

		if (have + 1 >= outsize)
			break;
		if (poll(&pfd, 1, E2E_START_MS) <= 0) {
			/* Still running: it was not meant to. */
			kill(pid, SIGKILL);
			break;
		}
		n = read(fd, out + have, outsize - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	if (outsize)
		out[have] = '\0';
	close(fd);
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* --- requests ------------------------------------------------------------- */

struct sink {
	char *buf;
	size_t len, cap;
	e2e_sink_fn fn;
	void *ctx;
};

static int sink_add(struct sink *s, const char *p, size_t n)
{
	char *b;

	if (s->len + n + 1 > s->cap) {
		size_t cap = (s->len + n + 1) * 2;

		b = realloc(s->buf, cap);
		if (!b)
			return -1;
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct sink *s = ctx;
	size_t n = size * nmemb;

	if (s->fn)
		return s->fn(s->ctx, (const unsigned char *)p, n) ? 0 : n;
	return sink_add(s, p, n) ? 0 : n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct sink *s = ctx;
	size_t n = size * nmemb;

	/* A new status line starts the headers of the next answer. */
	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0)
		s->len = 0;
	return sink_add(s, p, n) ? 0 : n;
}

struct source {
	uint64_t seed, off, len;
};

static size_t on_read(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct source *src = ctx;
	size_t n = size * nmemb;

	if (n > src->len - src->off)
		n = (size_t)(src->len - src->off);
	e2e_pattern(src->seed, src->off, (unsigned char *)p, n);
	src->off += n;
	return n;
}

struct e2e_conn {
	const struct e2e_daemon *d; /* borrowed */
	CURL *curl;		    /* kept between requests: its connection */
	long connects;
};

/*
 * One request, on conn's handle when conn is given (libcurl keeps its
 * connection alive between requests), else on a handle of its own.
 */
static int perform(const struct e2e_daemon *d, struct e2e_conn *conn,
		   const char *method, const char *path, const void *body,
		   size_t len, struct source *src, e2e_sink_fn fn, void *ctx,
		   const char *const *headers, struct e2e_resp *out)
{
	struct sink bs = {NULL, 0, 0, fn, ctx}, hs = {NULL, 0, 0, NULL, NULL};
	struct curl_slist *hl = NULL;
	char url[2048], auth[600];
	long connects = 0;
	CURLcode rc;
	CURL *c;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (conn) {
		c = conn->curl;
		curl_easy_reset(c); /* the options go, the connection stays */
	} else {
		c = curl_easy_init();
	}
	if (!c)
		return -1;
	snprintf(url, sizeof(url), "%s%s", d->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &bs);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
	for (i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	if (d->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			 d->token);
		hl = curl_slist_append(hl, auth);
	}
	if (src) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, src);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)src->len);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (body || !strcmp(method, "POST") || !strcmp(method, "PUT")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	if (hl)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	if (d->cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, d->cacert);
	if (d->cert)
		curl_easy_setopt(c, CURLOPT_SSLCERT, d->cert);
	if (d->key)
		curl_easy_setopt(c, CURLOPT_SSLKEY, d->key);
	rc = curl_easy_perform(c);
	out->curl_err = (int)rc;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	if (conn &&
	    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK)
		conn->connects += connects;
	if (!conn)
		curl_easy_cleanup(c);
	curl_slist_free_all(hl);
	out->body = bs.buf ? bs.buf : strdup("");
	out->len = bs.len;
	out->headers = hs.buf ? hs.buf : strdup("");
	out->hlen = hs.len;
	if (!fn && out->len)
		out->json = json_loadb(out->body, out->len, 0, NULL);
	if (rc != CURLE_OK && !out->status) {
		/* nothing came: nothing for the caller to release */
		e2e_resp_release(out);
		out->curl_err = (int)rc;
		return -1;
	}
	return 0;
}

int e2e_request(const struct e2e_daemon *d, const char *method,
		const char *path, const void *body, size_t len,
		const char *const *headers, struct e2e_resp *out)
{
	return perform(d, NULL, method, path, body, len, NULL, NULL, NULL,
		       headers, out);
}

int e2e_get(const struct e2e_daemon *d, const char *path, struct e2e_resp *out)
{
	return e2e_request(d, "GET", path, NULL, 0, NULL, out);
}

int e2e_post(const struct e2e_daemon *d, const char *path, const char *body,
	     struct e2e_resp *out)
{
	return e2e_request(d, "POST", path, body, body ? strlen(body) : 0, NULL,
			   out);
}

int e2e_upload(const struct e2e_daemon *d, const char *method, const char *path,
	       uint64_t seed, uint64_t len, struct e2e_resp *out)
{
	struct source src = {seed, 0, len};

	return perform(d, NULL, method, path, NULL, 0, &src, NULL, NULL, NULL,
		       out);
}

int e2e_download(const struct e2e_daemon *d, const char *path, e2e_sink_fn fn,
		 void *ctx, struct e2e_resp *out)
{
	return perform(d, NULL, "GET", path, NULL, 0, NULL, fn, ctx, NULL, out);
}

struct e2e_conn *e2e_conn_new(const struct e2e_daemon *d)
{
	struct e2e_conn *conn = calloc(1, sizeof(*conn));

	if (!conn)
		return NULL;
	conn->d = d;
	conn->curl = curl_easy_init();
	if (!conn->curl) {
		free(conn);
		return NULL;
	}
	return conn;
}

int e2e_conn_request(struct e2e_conn *conn, const char *method,
		     const char *path, const void *body, size_t len,
		     struct e2e_resp *out)
{
	return perform(conn->d, conn, method, path, body, len, NULL, NULL, NULL,
		       NULL, out);
}

long e2e_conn_connects(const struct e2e_conn *conn)
{
	return conn->connects;
}

void e2e_conn_free(struct e2e_conn *conn)
{
	if (!conn)
		return;
	curl_easy_cleanup(conn->curl);
	free(conn);
}

void e2e_pattern(uint64_t seed, uint64_t off, unsigned char *buf, size_t len)
{
	size_t i;

	/* Byte i of the stream: a mix of its index and the seed. */
	for (i = 0; i < len; i++) {
		uint64_t x = (off + i) / 8 * 0x9E3779B97F4A7C15ULL + seed;

		x ^= x >> 29;
		x *= 0xBF58476D1CE4E5B9ULL;
		x ^= x >> 32;
		buf[i] = (unsigned char)(x >> (8 * ((off + i) % 8)));
	}
}

void e2e_resp_release(struct e2e_resp *r)
{
	free(r->body);
	free(r->headers);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

const char *e2e_header(const struct e2e_resp *r, const char *name, char *buf,
		       size_t size)
{
	size_t nlen = strlen(name);
	const char *p = r->headers;

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		size_t l = eol ? (size_t)(eol - p) : strlen(p);

		if (l > nlen && p[nlen] == ':' &&
		    strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;

			while (*v == ' ')
				v++;
			snprintf(buf, size, "%.*s", (int)(l - (size_t)(v - p)),
				 v);
			return buf;
		}
		p = eol ? eol + 2 : NULL;
	}
	return NULL;
}

const char *e2e_str(const struct e2e_resp *r, const char *key)
{
	return json_string_value(json_object_get(r->json, key));
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int e2e_wait_until(e2e_cond_fn cond, void *ctx, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms, left;
	long step = 1;
	struct timespec ts;

	for (;;) {
		if (cond(ctx))
			return 1;
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		if (step > left)
			step = (long)left;
		ts.tv_sec = step / 1000;
		ts.tv_nsec = step % 1000 * 1000000;
		nanosleep(&ts, NULL); /* between two polls of the condition */
		step = step * 2 > 20 ? 20 : step * 2;
	}
}

uint64_t e2e_proc_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	uint64_t v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			v = strtoull(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

int e2e_check_status(const char *file, int line, const struct e2e_resp *r,
		     long want, const char *code)
{
	char ct[128];
	const char *got_code;
	int ok = r->status == want;

	if (ok && code) {
		got_code = e2e_str(r, "error");
		ok = got_code && !strcmp(got_code, code) &&
		     json_is_string(json_object_get(r->json, "message")) &&
		     e2e_header(r, "Content-Type", ct, sizeof(ct)) &&
		     !strcmp(ct, "application/json");
	}
	if (ok) {
		t_passed++;
		return 1;
	}
	t_failed++;
	fprintf(stderr,
		"%s:%d: FAIL status %ld (curl %d), want %ld%s%s: %.300s\n",
		file, line, r->status, r->curl_err, want, code ? " " : "",
		code ? code : "", r->body ? r->body : "");
	return 0;
}

/* Write text to dir/name. 0 or -1. */
static int write_text(const char *dir, const char *name, const char *text)
{
	char path[1024];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* certtool in dir with the arguments fmt says; 0 when it succeeded. */
static int certtool(const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int certtool(const char *dir, const char *fmt, ...)
{
	char args[1024], cmd[3072];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "cd '%s' && certtool %s >>certtool.log 2>&1",
		 dir, args);
	return system(cmd) == 0 ? 0 : -1;
}

int e2e_certs_make(const char *dir)
{
	static const char *const leaf[][3] = {
	    /* name, issuer, template */
	    {"server", "ca", "server.tmpl"},
	    {"client", "ca", "client.tmpl"},
	    {"other-client", "other-ca", "client.tmpl"},
	    {"expired-client", "ca", "expired-client.tmpl"},
	    {"expired-server", "ca", "expired-server.tmpl"},
	    {"node", "ca", "node.tmpl"},
	    {"other-node", "other-ca", "node.tmpl"},
	};
	static const char server[] = "cn = \"127.0.0.1\"\n"
				     "ip_address = \"127.0.0.1\"\n"
				     "dns_name = \"localhost\"\n"
				     "tls_www_server\nsigning_key\n";
	static const char client[] = "cn = \"modstore test client\"\n"
				     "tls_www_client\nsigning_key\n";
	static const char expired[] = "activation_date = \"2020-01-01 "
				      "00:00:00\"\n"
				      "expiration_date = \"2020-01-02 "
				      "00:00:00\"\n";
	char text[1024];
	size_t i;

	if (system("command -v certtool >/dev/null 2>&1") != 0) {
		fprintf(stderr, "e2e: certtool is missing (apt-get install "
				"gnutls-bin; make deps does)\n");
		return -1;
	}
	snprintf(text, sizeof(text), "%sexpiration_days = 2\n", server);
	if (write_text(dir, "server.tmpl", text) < 0)
		return -1;
	snprintf(text, sizeof(text), "%sexpiration_days = 2\n", client);
	if (write_text(dir, "client.tmpl", text) < 0)
		return -1;
	/* a cluster node's: the server's name, and a client's use too */
	snprintf(text, sizeof(text), "%stls_www_client\nexpiration_days = 2\n",
		 server);
	if (write_text(dir, "node.tmpl", text) < 0)
		return -1;
	snprintf(text, sizeof(text), "%s%s", client, expired);
	if (write_text(dir, "expired-client.tmpl", text) < 0)
		return -1;
	snprintf(text, sizeof(text), "%s%s", server, expired);
	if (write_text(dir, "expired-server.tmpl", text) < 0)
		return -1;
	if (write_text(dir, "ca.tmpl",
		       "cn = \"modstore test CA\"\nca\ncert_signing_key\n"
		       "expiration_days = 2\n") < 0 ||
	    write_text(dir, "other-ca.tmpl",
		       "cn = \"another CA\"\nca\ncert_signing_key\n"
		       "expiration_days = 2\n") < 0)
		return -1;
	for (i = 0; i < 2; i++) {
		const char *ca = i ? "other-ca" : "ca";

		if (certtool(dir,
			     "--generate-privkey --key-type=ecdsa "
			     "--outfile %s.key",
			     ca) < 0 ||
		    certtool(dir,
			     "--generate-self-signed --load-privkey %s.key "
			     "--template %s.tmpl --outfile %s.pem",
			     ca, ca, ca) < 0)
			goto fail;
	}
	for (i = 0; i < sizeof(leaf) / sizeof(leaf[0]); i++) {
		if (certtool(dir,
			     "--generate-privkey --key-type=ecdsa "
			     "--outfile %s.key",
			     leaf[i][0]) < 0 ||
		    certtool(dir,
			     "--generate-certificate --load-privkey %s.key "
			     "--load-ca-certificate %s.pem "
			     "--load-ca-privkey %s.key --template %s "
			     "--outfile %s.pem",
			     leaf[i][0], leaf[i][1], leaf[i][1], leaf[i][2],
			     leaf[i][0]) < 0)
			goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "e2e: certtool failed (see %s/certtool.log)\n", dir);
	return -1;
}

int e2e_tmp_make(struct e2e_tmp *t, const char *tag)
{
	memset(t, 0, sizeof(*t));
	t->root = t_tmpdir(tag);
	if (!t->root)
		return -1;
	snprintf(t->state, sizeof(t->state), "%s/state", t->root);
	snprintf(t->log, sizeof(t->log), "%s/modstored.log", t->root);
	return 0;
}

/*
 * The last 1 KiB of each *.log in dir on standard error, so that a failed
 * run's output (CI keeps nothing else) says how the daemon ended.
 */
static void print_log_tails(const char *dir)
{
	char path[1024], buf[1025];
	struct dirent *e;
	size_t n;
	DIR *d = opendir(dir);
	FILE *f;

	if (!d)
		return;
	while ((e = readdir(d))) {
		n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 4, ".log"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fseek(f, -1024, SEEK_END) < 0)
			rewind(f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		fprintf(stderr, "--- end of %s ---\n%s%s", path, buf,
			n && buf[n - 1] != '\n' ? "\n" : "");
	}
	closedir(d);
}

void e2e_tmp_done(struct e2e_tmp *t)
{
	if (!t->root)
		return;
	if (t_failed) {
		fprintf(stderr, "kept %s (daemon log: %s)\n", t->root, t->log);
		print_log_tails(t->root);
	} else {
		t_rmrf(t->root);
	}
	free(t->root);
	t->root = NULL;
}

int e2e_sanitized(pid_t pid)
{
	char path[64], line[512];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "libasan") || strstr(line, "libtsan");
	fclose(f);
	return found;
}

const char *e2e_cli_bin(void)
{
	const char *p = getenv("MODSTORE_CLI");

	return p && *p ? p : "bin/modstore";
}

static void run_setenv(const char *name, const char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
}

#define RUN_MAX_ARGS 32

int e2e_cmd_run(const char *dir, const char *url, const char *token,
		const char *in, const char *const *argv, struct e2e_cmd *r)
{
	char *cargv[RUN_MAX_ARGS + 1], outp[600], errp[600];
	size_t n, elen;
	pid_t pid;
	int st;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	for (n = 0; argv[n] && n < RUN_MAX_ARGS; n++)
		cargv[n] = (char *)(uintptr_t)argv[n]; /* execv's type */
	cargv[n] = NULL;
	snprintf(outp, sizeof(outp), "%s/run.out", dir);
	snprintf(errp, sizeof(errp), "%s/run.err", dir);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fi = open(in ? in : "/dev/null", O_RDONLY);
		int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fi < 0 || fo < 0 || fe < 0)
			_exit(127);
		dup2(fi, 0);
		dup2(fo, 1);
		dup2(fe, 2);
		run_setenv("MODSTORE_URL", url);
		run_setenv("MODSTORE_TOKEN", token);
		execv(cargv[0], cargv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r->out = t_slurp(outp, &r->outlen);
	r->err = t_slurp(errp, &elen);
	if (!r->out)
		r->out = strdup("");
	if (!r->err)
		r->err = strdup("");
	return 0;
}

void e2e_cmd_release(struct e2e_cmd *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}
