/*
 * bench.c - the driver of `make bench` (issue #4): runs every scenario of
 * bench/README.md against bin/modstored and the peers a user would pick
 * instead (git, cp, nginx, etcd), started here on loopback ports with
 * temporary configurations, and prints one table row per figure.
 *
 * Every process it starts dies with it (PR_SET_PDEATHSIG) and is stopped by
 * pid at the end. Figures are medians, or counts that do not depend on
 * timing. Only measures: the tests check.
 *
 *   bench [SCENARIO...]     commit restore syscalls big disk hash wrk rss
 *                           start life keep cluster catchup (all)
 *   bench mkstart DIR       (internal) the state of the start scenario
 *   bench mklife DIR        (internal) the state of the life scenario
 */
#include "cluster.h"
#include "e2e.h"
#include "ids.h"
#include "tree.h"
#include "store.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NMOD	     1000
#define MODSIZE	     65536
#define WRITES	     10
#define NCOMMITS     100
#define NGIT	     20
#define NRESTORE     40
#define BIGSIZE	     (256ULL << 20)
#define BIGPAGES     (BIGSIZE / STORE_PAGE_SIZE)
#define BIGDIRTY     (BIGPAGES / 100)
#define BIGREPS	     5
#define RSS_MODSIZE  (1U << 20)
#define START_MODS   10000
#define START_COMMIT 10000
#define START_CMODS  10
#define WRK_SECONDS  "3s"
#define WRK_ROUNDS   3

static const char *self_path;
static char tmproot[256];
static const char *bench_dir; /* bench/ of the source tree */

/* --- small tools ---------------------------------------------------------- */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void rnd_bytes(unsigned char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)rnd();
}

static void die(const char *what)
{
	fprintf(stderr, "bench: %s\n", what);
	exit(1);
}

/* write_bytes of /proc/PID/io: bytes this process sent to storage. */
/* Bytes of disk allocated to the files of dir (st_blocks). */
static uint64_t dir_alloc_bytes(const char *dir)
{
	struct dirent *de;
	struct stat sb;
	uint64_t sum = 0;
	DIR *d = opendir(dir);

	if (!d)
		die("cannot list the state directory");
	while ((de = readdir(d)))
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) ==
			0 &&
		    S_ISREG(sb.st_mode))
			sum += (uint64_t)sb.st_blocks * 512;
	closedir(d);
	return sum;
}

static uint64_t proc_write_bytes(pid_t pid)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "write_bytes: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("no free port");
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* A child running argv (env added), output to log; dies with us. */
static pid_t spawn(const char *const *argv, const char *log, const char *env)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int fd = open(log ? log : "/dev/null",
			      O_WRONLY | O_CREAT | O_APPEND, 0600);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (env)
			putenv((char *)(uintptr_t)env);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	return pid;
}

static void stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

/* Run a shell command, its wall time in ms (negative on failure). */
static double timed_sh(const char *cmd)
{
	double t0 = now_ms();
	int st = system(cmd);

	if (st != 0) {
		fprintf(stderr, "bench: failed: %s\n", cmd);
		return -1;
	}
	return now_ms() - t0;
}

/* --- the table ------------------------------------------------------------ */

static int rows_met, rows_missed;

static void row(const char *scenario, const char *value, const char *peer,
		const char *ratio, const char *target, int met)
{
	printf("| %-34s | %-13s | %-26s | %-9s | %-22s | %-4s |\n", scenario,
	       value, peer, ratio, target,
	       met < 0	 ? "info"
	       : met > 0 ? "yes"
			 : "NO");
	fflush(stdout);
	if (met > 0)
		rows_met++;
	else if (met == 0)
		rows_missed++;
}

static void header(void)
{
	printf("| %-34s | %-13s | %-26s | %-9s | %-22s | %-4s |\n", "scenario",
	       "value", "peer or limit", "ratio", "target", "met");
	printf("|%s|%s|%s|%s|%s|%s|\n", "------------------------------------",
	       "---------------", "----------------------------", "-----------",
	       "------------------------", "------");
	fflush(stdout);
}

/* --- an HTTP client that keeps its connection ------------------------------
 */

struct cli {
	CURL *c;
	char url[128];
	char *body;
	size_t len, cap;
	json_t *json;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ctx)
{
	struct cli *k = ctx;
	size_t add = sz * n;

	if (k->len + add + 1 > k->cap) {
		size_t cap = (k->len + add + 1) * 2;
		char *b = realloc(k->body, cap);

		if (!b)
			return 0;
		k->body = b;
		k->cap = cap;
	}
	memcpy(k->body + k->len, p, add);
	k->len += add;
	k->body[k->len] = '\0';
	return add;
}

static const char *bench_cacert; /* CA of an https:// daemon, or NULL */

static void cli_init(struct cli *k, const char *url)
{
	memset(k, 0, sizeof(*k));
	k->c = curl_easy_init();
	if (!k->c)
		die("curl");
	snprintf(k->url, sizeof(k->url), "%s", url);
}

static void cli_done(struct cli *k)
{
	curl_easy_cleanup(k->c);
	free(k->body);
	json_decref(k->json);
}

/* One request; the status (0 when none came). Body in k->body/k->json. */
static long cli_req(struct cli *k, const char *method, const char *path,
		    const void *body, size_t len, int parse)
{
	struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
	char url[512];
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", k->url, path);
	k->len = 0;
	json_decref(k->json);
	k->json = NULL;
	curl_easy_reset(k->c);
	curl_easy_setopt(k->c, CURLOPT_URL, url);
	curl_easy_setopt(k->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k->c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(k->c, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(k->c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(k->c, CURLOPT_TIMEOUT, 600L);
	if (bench_cacert)
		curl_easy_setopt(k->c, CURLOPT_CAINFO, bench_cacert);
	if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(k->c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
		curl_easy_setopt(k->c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(k->c, CURLOPT_CUSTOMREQUEST, method);
	}
	if (curl_easy_perform(k->c) == CURLE_OK)
		curl_easy_getinfo(k->c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hl);
	if (parse && k->body)
		k->json = json_loads(k->body, 0, NULL);
	return status;
}

static void want(long got, long expect, const char *what, struct cli *k)
{
	if (got != expect) {
		fprintf(stderr, "bench: %s: status %ld, expected %ld: %s\n",
			what, got, expect, k->body ? k->body : "");
		exit(1);
	}
}

/* A string member of the last JSON answer, copied into out (65 bytes). */
static void member(struct cli *k, const char *key, char *out)
{
	const char *v = json_string_value(json_object_get(k->json, key));

	if (!v || strlen(v) != STORE_HEX_LEN)
		die("answer without an id");
	memcpy(out, v, STORE_HEX_LEN + 1);
}

static void deploy(struct cli *k, const char *code, uint64_t size, char *id)
{
	char path[64];
	long st;

	snprintf(path, sizeof(path), "/modules?size=%llu",
		 (unsigned long long)size);
	st = cli_req(k, "POST", path, code, strlen(code), 1);
	if (st != 200 && st != 201)
		want(st, 201, "deploy", k);
	member(k, "id", id);
}

static void session(struct cli *k, char *sid)
{
	want(cli_req(k, "POST", "/sessions", NULL, 0, 1), 201, "session", k);
	member(k, "id", sid);
}

static void put(struct cli *k, const char *sid, const char *mod, uint64_t off,
		const void *buf, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=%llu", sid, mod,
		 (unsigned long long)off);
	want(cli_req(k, "PUT", path, buf, len, 0), 204, "write", k);
}

static void commit(struct cli *k, const char *sid, char *cid)
{
	char path[128];

	snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
	/* the whole answer is read; parsed only when its id is wanted */
	want(cli_req(k, "POST", path, NULL, 0, cid != NULL), 201, "commit", k);
	if (cid)
		member(k, "commit", cid);
}

static int start_daemon(struct e2e_daemon *d, const char *tag,
			const char *const *args)
{
	char dir[512], log[512];

	snprintf(dir, sizeof(dir), "%s/%s", tmproot, tag);
	snprintf(log, sizeof(log), "%s/%s.log", tmproot, tag);
	return e2e_start(d, dir, log, args);
}

/* --- commit, restore and the git peer --------------------------------------
 */

struct wr {
	int mod;
	unsigned int off;
	unsigned char data[64];
};

static char (*mods)[STORE_HEX_LEN + 1];

/* n writes of 64 random bytes into n distinct random modules. */
static void pick_writes(struct wr *w, int n)
{
	int i, j;

	for (i = 0; i < n; i++) {
	again:
		w[i].mod = (int)(rnd() % NMOD);
		for (j = 0; j < i; j++)
			if (w[j].mod == w[i].mod)
				goto again;
		w[i].off = (unsigned int)(rnd() % (MODSIZE - 64));
		rnd_bytes(w[i].data, 64);
	}
}

/*
 * The state of the commit scenarios: NMOD modules of MODSIZE deployed, then
 * commit A, 64 random bytes (kept in first) at offset 0 of every module, so
 * that each has a commit. Its id into ca. The module ids into mods.
 */
static void deploy_modules(struct cli *k, unsigned char (*first)[64], char *ca)
{
	char sid[65];
	int i;

	for (i = 0; i < NMOD; i++) {
		char code[64];

		snprintf(code, sizeof(code), "bench module %d", i);
		deploy(k, code, MODSIZE, mods[i]);
	}
	session(k, sid);
	for (i = 0; i < NMOD; i++) {
		rnd_bytes(first[i], 64);
		put(k, sid, mods[i], 0, first[i], 64);
	}
	commit(k, sid, ca);
}

static double proofs_metric(struct cli *k, const char *name);

#define TMP_MADE   "modstore_temp_files_total{how=\"made\"}"
#define TMP_POOLED "modstore_temp_files_total{how=\"pool\"}"

static void scenario_commit_restore(int do_commit, int do_restore)
{
	static struct wr gw[NGIT][WRITES];
	static unsigned char first[NMOD][64];
	struct e2e_daemon d;
	struct cli k;
	char sid[65], ca[65], cb[65], path[160], v[64], p[64], r[32];
	double t[NCOMMITS > 2 * NRESTORE ? NCOMMITS : 2 * NRESTORE], med;
	uint64_t w0, w1, a0, a1;
	int i, j;

	mods = calloc(NMOD, sizeof(*mods));
	if (!mods || start_daemon(&d, "commit", NULL) < 0)
		die("cannot start modstored");
	cli_init(&k, d.url);
	deploy_modules(&k, first, ca);

	if (do_restore) {
		struct wr w[WRITES];

		session(&k, sid);
		pick_writes(w, WRITES);
		for (j = 0; j < WRITES; j++)
			put(&k, sid, mods[w[j].mod], w[j].off, w[j].data, 64);
		commit(&k, sid, cb);
		w0 = proc_write_bytes(d.pid);
		a0 = dir_alloc_bytes(d.dir);
		for (i = 0; i < 2 * NRESTORE; i++) {
			double t0 = now_ms();

			snprintf(path, sizeof(path), "/restore/%s",
				 i % 2 ? cb : ca);
			want(cli_req(&k, "POST", path, NULL, 0, 0), 200,
			     "restore", &k);
			t[i] = now_ms() - t0;
		}
		w1 = proc_write_bytes(d.pid);
		a1 = dir_alloc_bytes(d.dir);
		med = median(t, 2 * NRESTORE);
		snprintf(v, sizeof(v), "%.2f ms", med);
		snprintf(r, sizeof(r), "%.2f", med / 20);
		row("restore, 1,000 modules (10 differ)", v, "limit 20 ms", r,
		    "<= 20 ms", med <= 20);
		/*
		 * Memory copied would take new blocks in the state directory;
		 * the bytes the daemon dirtied (/proc/PID/io) are reported
		 * beside: directory and inode blocks of the links it moves.
		 */
		snprintf(v, sizeof(v), "%lld B",
			 (long long)(a1 - a0) / (2 * NRESTORE));
		snprintf(r, sizeof(r), "%.3f",
			 (double)((long long)(a1 - a0)) / (2 * NRESTORE) /
			     MODSIZE);
		row("restore, disk allocated per restore", v,
		    "one module: 65536 B", r, "no memory copied",
		    (long long)(a1 - a0) / (2 * NRESTORE) < MODSIZE);
		snprintf(v, sizeof(v), "%llu B",
			 (unsigned long long)((w1 - w0) / (2 * NRESTORE)));
		snprintf(r, sizeof(r), "%.3f",
			 (double)(w1 - w0) / (2 * NRESTORE) / MODSIZE);
		row("restore, bytes dirtied (metadata)", v,
		    "one module: 65536 B", r, "reported", -1);
		/* back to A for the commits below */
		snprintf(path, sizeof(path), "/restore/%s", ca);
		want(cli_req(&k, "POST", path, NULL, 0, 0), 200, "restore", &k);
	}

	if (do_commit) {
		char gdir[512], cmd[1024];
		unsigned char *zero;
		double g[NGIT], gmed, made, pooled;

		made = proofs_metric(&k, TMP_MADE);
		pooled = proofs_metric(&k, TMP_POOLED);
		for (i = 0; i < NCOMMITS; i++) {
			struct wr w[WRITES];
			double t0;

			pick_writes(w, WRITES);
			if (i < NGIT)
				memcpy(gw[i], w, sizeof(w));
			t0 = now_ms();
			session(&k, sid);
			for (j = 0; j < WRITES; j++)
				put(&k, sid, mods[w[j].mod], w[j].off,
				    w[j].data, 64);
			commit(&k, sid, NULL);
			t[i] = now_ms() - t0;
		}
		med = median(t, NCOMMITS);
		made = proofs_metric(&k, TMP_MADE) - made;
		pooled = proofs_metric(&k, TMP_POOLED) - pooled;

		/* git: the same files, the same 64-byte writes */
		snprintf(gdir, sizeof(gdir), "%s/git", tmproot);
		mkdir(gdir, 0700);
		zero = calloc(1, MODSIZE);
		if (!zero)
			die("out of memory");
		for (i = 0; i < NMOD; i++) {
			char f[600];
			int fd;

			snprintf(f, sizeof(f), "%s/%s", gdir, mods[i]);
			fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd < 0 || pwrite(fd, zero, MODSIZE, 0) != MODSIZE ||
			    pwrite(fd, first[i], 64, 0) != 64)
				die("git files");
			close(fd);
		}
		free(zero);
		snprintf(cmd, sizeof(cmd),
			 "cd %s && git init -q . && git config user.email "
			 "b@b && git config user.name bench && git add -A && "
			 "git commit -q -m base",
			 gdir);
		if (timed_sh(cmd) < 0)
			die("git");
		snprintf(cmd, sizeof(cmd),
			 "cd %s && git add -A && git commit -q -m c", gdir);
		for (i = 0; i < NGIT; i++) {
			for (j = 0; j < WRITES; j++) {
				char f[600];
				int fd;

				snprintf(f, sizeof(f), "%s/%s", gdir,
					 mods[gw[i][j].mod]);
				fd = open(f, O_WRONLY);
				if (fd < 0 || pwrite(fd, gw[i][j].data, 64,
						     gw[i][j].off) != 64)
					die("git write");
				close(fd);
			}
			g[i] = timed_sh(cmd);
		}
		gmed = median(g, NGIT);
		snprintf(v, sizeof(v), "%.2f ms", med);
		snprintf(r, sizeof(r), "%.2f", med / 10);
		row("commit over HTTP, 10 x 64 B", v, "limit 10 ms", r,
		    "<= 10 ms", med <= 10);
		snprintf(p, sizeof(p), "git add+commit %.1f ms", gmed);
		snprintf(r, sizeof(r), "%.1fx", gmed / med);
		row("commit vs git", v, p, r, ">= 20x faster (aim 40x)",
		    gmed / med >= 20);
		/* a file made during a commit waits for an inode (README) */
		snprintf(v, sizeof(v), "%.0f files", made);
		snprintf(p, sizeof(p), "from the pool %.0f", pooled);
		snprintf(r, sizeof(r), "%.3f",
			 made + pooled > 0 ? made / (made + pooled) : 0);
		row("commit: temporaries made at once", v, p, r, "reported",
		    -1);
	}
	cli_done(&k);
	e2e_stop(&d, SIGTERM);
	free(mods);
}

/* --- system calls of a commit, counted with strace ----------------------- */

/*
 * The commit scenario's state (NMOD modules, each with a commit), then
 * SC_COMMITS commits of 1, of 10 and of 20 changed modules (64 random bytes
 * each) with `strace -f -y` attached to the daemon. A commit's calls are
 * those of the thread serving the connection from the read of
 * `POST /sessions/{sid}/commit` up to the read of the next request; in that
 * window the calls on a socket, poll and the request log (stderr) are the
 * HTTP layer's, the rest the commit's own (store and answer); calls of the
 * daemon's other threads meanwhile are counted apart. Counts, not times:
 * the same on a busy machine as on a quiet one.
 */

#define SC_COMMITS 20
#define SC_SIZES   3
#define SC_MAXMODS 20
#define SC_NAMES   128

static const int sc_mods[SC_SIZES] = {1, WRITES, SC_MAXMODS};

enum sc_part { SC_OWN, SC_HTTP, SC_OTHER, SC_PARTS };

static const char *const sc_part_name[SC_PARTS] = {"commit", "http",
						   "other thread"};

struct sc_name {
	char name[32];
	enum sc_part part;
	unsigned long n[SC_SIZES]; /* over the SC_COMMITS windows of a size */
	unsigned long failed[SC_SIZES]; /* of them, returned -1 */
};

struct sc_count {
	struct sc_name names[SC_NAMES];
	size_t nnames;
	unsigned long win[SC_SIZES * SC_COMMITS][SC_PARTS];
	int windows; /* windows opened so far */
	int open;    /* the window open, -1 between them */
	long tid;    /* the thread of the open window */
};

/* An unfinished call of a thread, waiting for its resumed half. */
struct sc_pending {
	long tid;
	char *head;
};

static void sc_add(struct sc_count *c, const char *name, enum sc_part part,
		   int failed)
{
	int w = c->open, size = w % SC_SIZES;
	size_t i;

	c->win[w][part]++;
	for (i = 0; i < c->nnames; i++)
		if (c->names[i].part == part &&
		    strcmp(c->names[i].name, name) == 0)
			break;
	if (i == c->nnames) {
		if (c->nnames == SC_NAMES)
			die("strace: too many call names");
		snprintf(c->names[i].name, sizeof(c->names[i].name), "%s",
			 name);
		c->names[i].part = part;
		c->nnames++;
	}
	c->names[i].n[size]++;
	c->names[i].failed[size] += failed != 0;
}

/*
 * One whole call of thread tid as strace prints it with -y:
 * `name(7<socket:[123]>, "POST /sessions/..."..., 32768, 0) = 160`.
 */
static void sc_call(struct sc_count *c, long tid, const char *call)
{
	char name[32], fdpath[64] = "", *end;
	const char *p = call, *q, *eq;
	enum sc_part part = SC_OWN;
	size_t n = 0;
	long fd = -1, ret;
	int sock, is_recv;

	while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
	       *p == '_')
		if (n + 1 < sizeof(name))
			name[n++] = *p++;
		else
			p++;
	name[n] = '\0';
	if (n == 0 || *p != '(')
		return;
	p++;
	if (*p >= '0' && *p <= '9') {
		fd = strtol(p, &end, 10);
		q = end;
		if (*q == '<' && (p = strchr(q, '>')) != NULL) {
			n = (size_t)(p - q - 1) < sizeof(fdpath) - 1
				? (size_t)(p - q - 1)
				: sizeof(fdpath) - 1;
			memcpy(fdpath, q + 1, n);
			fdpath[n] = '\0';
			p++;
		} else {
			p = q;
		}
	}
	sock = strncmp(fdpath, "socket:", 7) == 0;
	is_recv =
	    sock && (strcmp(name, "recvfrom") == 0 ||
		     strcmp(name, "read") == 0 || strcmp(name, "recv") == 0);
	eq = strstr(call, ") = ");
	for (q = eq; q; q = strstr(q + 1, ") = "))
		eq = q;
	ret = eq ? strtol(eq + 4, NULL, 10) : -1;
	if (is_recv && ret > 0) {
		/* a request arrives: it ends the open window of this thread */
		if (c->open >= 0 && tid == c->tid)
			c->open = -1;
		if (strncmp(p, ", \"POST /sessions/", 18) == 0 &&
		    strstr(p, "/commit HTTP/") != NULL) {
			if (c->windows == SC_SIZES * SC_COMMITS)
				die("strace: more commits than made");
			c->open = c->windows++;
			c->tid = tid;
		}
	}
	if (c->open < 0)
		return;
	if (tid != c->tid)
		part = SC_OTHER;
	else if (sock || fd == 1 || fd == 2 || strcmp(name, "poll") == 0 ||
		 strcmp(name, "ppoll") == 0 || strcmp(name, "select") == 0 ||
		 strncmp(name, "epoll_", 6) == 0)
		part = SC_HTTP;
	sc_add(c, name, part, eq && ret < 0);
}

/* Count the calls of strace's output file (`strace -f -o FILE`). */
static void sc_parse(struct sc_count *c, const char *file)
{
	struct sc_pending pend[256];
	size_t npend = 0, cap = 0, i;
	char *line = NULL, *p;
	FILE *f = fopen(file, "r");

	if (!f)
		die("strace left no output");
	c->open = -1;
	while (getline(&line, &cap, f) > 0) {
		long tid = strtol(line, &p, 10);
		char *tail;

		while (*p == ' ')
			p++;
		p[strcspn(p, "\n")] = '\0';
		if (*p == '-' || *p == '+' || *p == '\0')
			continue; /* a signal, an exit */
		if ((tail = strstr(p, " <unfinished ...>")) != NULL) {
			*tail = '\0';
			if (npend == sizeof(pend) / sizeof(pend[0]))
				die("strace: too many threads");
			pend[npend].tid = tid;
			pend[npend++].head = strdup(p);
			continue;
		}
		if (strncmp(p, "<... ", 5) == 0 &&
		    (tail = strstr(p, " resumed>")) != NULL) {
			size_t hl, tl;
			char *whole;

			for (i = 0; i < npend && pend[i].tid != tid; i++)
				;
			if (i == npend)
				continue; /* began before the attach */
			tail += strlen(" resumed>");
			hl = strlen(pend[i].head);
			tl = strlen(tail);
			whole = malloc(hl + tl + 1);
			if (!whole)
				die("out of memory");
			memcpy(whole, pend[i].head, hl);
			memcpy(whole + hl, tail, tl + 1);
			free(pend[i].head);
			pend[i] = pend[--npend];
			sc_call(c, tid, whole);
			free(whole);
			continue;
		}
		sc_call(c, tid, p);
	}
	for (i = 0; i < npend; i++)
		free(pend[i].head);
	free(line);
	fclose(f);
}

/* Wait until every thread of pid is traced by tracer; -1 if it exited. */
static int wait_traced(pid_t pid, pid_t tracer)
{
	char path[64], line[128];
	int tries;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	for (tries = 0; tries < 2000; tries++) {
		struct dirent *de;
		DIR *d = opendir(path);
		int all = 1;

		if (!d || waitpid(tracer, NULL, WNOHANG) == tracer) {
			if (d)
				closedir(d);
			return -1;
		}
		while (all && (de = readdir(d))) {
			char st[400];
			int tp = 0;
			FILE *f;

			if (de->d_name[0] == '.')
				continue;
			snprintf(st, sizeof(st), "%s/%s/status", path,
				 de->d_name);
			f = fopen(st, "r");
			while (f && fgets(line, sizeof(line), f))
				if (sscanf(line, "TracerPid: %d", &tp) == 1)
					break;
			if (f)
				fclose(f);
			all = tp == (int)tracer;
		}
		closedir(d);
		if (all)
			return 0;
		usleep(5000);
	}
	return -1;
}

static int cmp_sc_name(const void *a, const void *b)
{
	const struct sc_name *x = a, *y = b;

	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	if (x->n[1] != y->n[1])
		return x->n[1] > y->n[1] ? -1 : 1;
	return strcmp(x->name, y->name);
}

static FILE *notes; /* printed after the table */

static void scenario_syscalls(void)
{
	static unsigned char first[NMOD][64];
	static struct sc_count c;
	struct e2e_daemon d;
	struct cli k;
	char ca[65], sid[65], file[600], log[600], pid[16], v[64], p[64];
	char r[32];
	const char *argv[] = {"strace", "-f", "-qq", "-y", "-s", "128",
			      "-o",	file, "-p",  pid,  NULL};
	double mean[SC_SIZES][SC_PARTS], slope, konst, hslope;
	unsigned long lo[SC_SIZES], hi[SC_SIZES];
	uint64_t saved = rng_state;
	pid_t tracer;
	int i, j, s, w, part;
	size_t n;

	/* the same writes on every run, whatever ran before */
	rng_state = 0x2545F4914F6CDD1DULL;
	mods = calloc(NMOD, sizeof(*mods));
	if (!mods || start_daemon(&d, "syscalls", NULL) < 0)
		die("cannot start modstored");
	cli_init(&k, d.url);
	deploy_modules(&k, first, ca);
	for (i = 0; i < 3; i++) { /* untraced: the traced follow others */
		struct wr wr[WRITES];

		pick_writes(wr, WRITES);
		session(&k, sid);
		for (j = 0; j < WRITES; j++)
			put(&k, sid, mods[wr[j].mod], wr[j].off, wr[j].data,
			    64);
		commit(&k, sid, NULL);
	}

	snprintf(file, sizeof(file), "%s/syscalls.strace", tmproot);
	snprintf(log, sizeof(log), "%s/strace.log", tmproot);
	snprintf(pid, sizeof(pid), "%d", (int)d.pid);
	tracer = spawn(argv, log, NULL);
	if (wait_traced(d.pid, tracer) < 0)
		die("strace cannot attach to modstored (is it installed? "
		    "ptrace allowed? see strace.log)");
	/* interleaved, so that each size meets the same history of writes */
	for (i = 0; i < SC_COMMITS; i++)
		for (s = 0; s < SC_SIZES; s++) {
			struct wr wr[SC_MAXMODS];

			pick_writes(wr, sc_mods[s]);
			session(&k, sid);
			for (j = 0; j < sc_mods[s]; j++)
				put(&k, sid, mods[wr[j].mod], wr[j].off,
				    wr[j].data, 64);
			commit(&k, sid, NULL);
		}
	/* the next request closes the last commit's window */
	want(cli_req(&k, "GET", "/root", NULL, 0, 0), 200, "root", &k);
	stop(tracer);
	cli_done(&k);
	e2e_stop(&d, SIGTERM);
	free(mods);
	rng_state = saved;

	sc_parse(&c, file);
	if (c.windows != SC_SIZES * SC_COMMITS) {
		fprintf(stderr, "bench: strace saw %d commits of %d\n",
			c.windows, SC_SIZES * SC_COMMITS);
		die("strace missed commits");
	}
	for (s = 0; s < SC_SIZES; s++) {
		lo[s] = (unsigned long)-1;
		hi[s] = 0;
		for (part = 0; part < SC_PARTS; part++)
			mean[s][part] = 0;
		for (w = s; w < SC_SIZES * SC_COMMITS; w += SC_SIZES) {
			unsigned long own = c.win[w][SC_OWN];

			lo[s] = own < lo[s] ? own : lo[s];
			hi[s] = own > hi[s] ? own : hi[s];
			for (part = 0; part < SC_PARTS; part++)
				mean[s][part] +=
				    (double)c.win[w][part] / SC_COMMITS;
		}
	}
	/* the line through 1 and 20 changed modules; 10 lies on it or not */
	slope = (mean[2][SC_OWN] - mean[0][SC_OWN]) / (sc_mods[2] - sc_mods[0]);
	konst = mean[0][SC_OWN] - slope * sc_mods[0];
	hslope =
	    (mean[2][SC_HTTP] - mean[0][SC_HTTP]) / (sc_mods[2] - sc_mods[0]);

	snprintf(v, sizeof(v), "%.1f calls", mean[1][SC_OWN]);
	snprintf(p, sizeof(p), "%.1f + %.2f per module", konst, slope);
	snprintf(r, sizeof(r), "%.2f", slope / 12);
	row("syscalls per commit, 10 x 64 B", v, p, r, "<= 12/module + const",
	    slope <= 12);
	snprintf(v, sizeof(v), "%.1f calls", mean[1][SC_HTTP]);
	snprintf(p, sizeof(p), "whole request %.1f",
		 mean[1][SC_OWN] + mean[1][SC_HTTP]);
	snprintf(r, sizeof(r), "%+.2f/mod", hslope);
	row("syscalls per commit, HTTP layer", v, p, r, "socket, poll, log",
	    -1);

	fprintf(notes,
		"\nSystem calls of one commit request over %d modules, by "
		"name: strace -f, mean of %d commits of each size; "
		"\"per module\" is (20 modules - 1 module) / 19.\n\n",
		NMOD, SC_COMMITS);
	fprintf(notes, "| %-16s | %-12s | %8s | %10s | %10s | %10s | %11s |\n",
		"call", "part", "1 module", "10 modules", "20 modules",
		"per module", "failed (10)");
	fprintf(notes, "|%s|%s|%s|%s|%s|%s|%s|\n", "------------------",
		"--------------", "----------", "------------", "------------",
		"------------", "-------------");
	qsort(c.names, c.nnames, sizeof(c.names[0]), cmp_sc_name);
	for (n = 0; n < c.nnames; n++) {
		const struct sc_name *e = &c.names[n];

		fprintf(notes,
			"| %-16s | %-12s | %8.2f | %10.2f | %10.2f | %10.2f | "
			"%11.2f |\n",
			e->name, sc_part_name[e->part],
			(double)e->n[0] / SC_COMMITS,
			(double)e->n[1] / SC_COMMITS,
			(double)e->n[2] / SC_COMMITS,
			((double)e->n[2] - (double)e->n[0]) / SC_COMMITS /
			    (sc_mods[2] - sc_mods[0]),
			(double)e->failed[1] / SC_COMMITS);
	}
	for (part = 0; part < SC_PARTS; part++)
		fprintf(notes,
			"| %-16s | %-12s | %8.2f | %10.2f | %10.2f | %10.2f | "
			"%11s |\n",
			"all", sc_part_name[part], mean[0][part], mean[1][part],
			mean[2][part],
			(mean[2][part] - mean[0][part]) /
			    (sc_mods[2] - sc_mods[0]),
			"");
	fprintf(notes,
		"\nThe commit's own calls (store and answer; the HTTP layer "
		"and other threads apart): %.1f + %.2f per changed module, "
		"through 1 and 20 modules (%.1f for 10; measured %.1f). "
		"Range over the %d commits: %lu-%lu (1 module), %lu-%lu (10), "
		"%lu-%lu (20). Target <= 12 per changed module plus a "
		"constant: %s.\n",
		konst, slope, konst + 10 * slope, mean[1][SC_OWN], SC_COMMITS,
		lo[0], hi[0], lo[1], hi[1], lo[2], hi[2],
		slope <= 12 ? "PASS" : "FAIL");
}

/* --- large module -----------------------------------------------------------
 */

/*
 * Deploy a module of BIGSIZE and commit it full of data (seed: the bytes),
 * so the copies the layout makes are real; its id into mod, the commit's
 * into cid (or NULL).
 */
static void big_module(struct e2e_daemon *d, struct cli *k, const char *code,
		       unsigned seed, char *mod, char *cid)
{
	struct e2e_resp resp;
	char sid[65], path[256];

	deploy(k, code, BIGSIZE, mod);
	session(k, sid);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory?offset=0",
		 sid, mod);
	if (e2e_upload(d, "PUT", path, seed, BIGSIZE, &resp) < 0 ||
	    resp.status != 204)
		die("upload of 256 MiB");
	e2e_resp_release(&resp);
	commit(k, sid, cid);
}

static void scenario_big(void)
{
	const char *args[] = {"--max-module-size", "1G", "--max-body", "1G",
			      NULL};
	struct e2e_daemon d;
	struct cli k;
	char mod[65], sid[65], file[600], copy[600], cmd[2048];
	char v[64], p[64], r[32];
	double t[BIGREPS], c[BIGREPS], med, cmed;
	uint64_t w[BIGREPS], wmed;
	size_t *pages;
	int i, rep;

	if (start_daemon(&d, "big", args) < 0)
		die("cannot start modstored");
	cli_init(&k, d.url);
	big_module(&d, &k, "bench big module", 7, mod, NULL);
	pages = calloc(BIGPAGES, sizeof(*pages));
	if (!pages)
		die("out of memory");
	snprintf(file, sizeof(file), "%s/%s", d.dir, mod);
	snprintf(copy, sizeof(copy), "%s/big-copy", tmproot);
	for (rep = 0; rep < BIGREPS; rep++) {
		uint64_t w0;
		double t0;

		/* BIGDIRTY distinct pages: a partial Fisher-Yates shuffle */
		for (i = 0; i < (int)BIGPAGES; i++)
			pages[i] = (size_t)i;
		for (i = 0; i < (int)BIGDIRTY; i++) {
			size_t j = (size_t)i + rnd() % (BIGPAGES - (size_t)i);
			size_t x = pages[i];

			pages[i] = pages[j];
			pages[j] = x;
		}
		session(&k, sid);
		for (i = 0; i < (int)BIGDIRTY; i++) {
			unsigned char b = (unsigned char)(rnd() | 1);

			put(&k, sid, mod,
			    pages[i] * STORE_PAGE_SIZE +
				rnd() % STORE_PAGE_SIZE,
			    &b, 1);
		}
		w0 = proc_write_bytes(d.pid);
		t0 = now_ms();
		commit(&k, sid, NULL);
		t[rep] = now_ms() - t0;
		w[rep] = proc_write_bytes(d.pid) - w0;
		/*
		 * The peer, right after, in the same conditions: cp of the
		 * module's file to a new file on the same filesystem, fsynced.
		 */
		/*
		 * Each copy to a new name, kept, as commit files are: the
		 * page cache of both is then fresh memory (on this VM, the
		 * first touch of a page costs as much as the copy itself).
		 */
		sync();
		snprintf(cmd, sizeof(cmd), "cp %s %s.%d && sync %s.%d", file,
			 copy, rep, copy, rep);
		c[rep] = timed_sh(cmd);
	}
	free(pages);
	for (rep = 0; rep < BIGREPS; rep++) {
		snprintf(cmd, sizeof(cmd), "%s.%d", copy, rep);
		unlink(cmd);
	}
	med = median(t, BIGREPS);
	cmed = median(c, BIGREPS);
	qsort(w, BIGREPS, sizeof(*w), cmp_u64);
	wmed = w[BIGREPS / 2];
	snprintf(v, sizeof(v), "%.0f ms", med);
	snprintf(p, sizeof(p), "cp+fsync 256 MiB %.0f ms", cmed);
	snprintf(r, sizeof(r), "%.2fx", med / cmed);
	row("large: commit 256 MiB, 1% dirty", v, p, r, "<= 2x the copy",
	    med <= 2 * cmed);
	snprintf(v, sizeof(v), "%.0f MiB", (double)wmed / (1 << 20));
	snprintf(r, sizeof(r), "%.2fx", (double)wmed / (double)BIGSIZE);
	row("large: bytes written by the commit", v, "file: 256 MiB", r,
	    "<= 2x the copy", wmed <= 2 * BIGSIZE);
	cli_done(&k);
	e2e_stop(&d, SIGTERM);
}

/* --- disk per commit: a loop-mounted XFS with reflinks, and $TMPDIR ------- */

/*
 * One module of DISK_SIZE, filled and committed (a dense base), then
 * DISK_COMMITS commits of DISK_DIRTY random whole pages each. The figure is
 * the disk the commits took, divided by DISK_COMMITS, against the bytes
 * they wrote. On XFS with reflinks the kept pages of a commit file are
 * extents shared with its base (copy_file_range), so a commit costs its
 * dirty pages and their metadata; on ext4 every commit file is a copy.
 */
#define DISK_SIZE    (16ULL << 20)
#define DISK_PAGES   (DISK_SIZE / STORE_PAGE_SIZE)
#define DISK_DIRTY   ((DISK_PAGES + 99) / 100) /* 1%, rounded up: 41 */
#define DISK_COMMITS 50
#define DISK_IMAGE   (1ULL << 30)
/* xfsprogs and mount live in sbin, which a PATH may lack */
#define SBIN "PATH=\"$PATH:/usr/sbin:/sbin\" "

/* The loop XFS: its image and mount point, released at exit too. */
static struct {
	char img[600];
	char mnt[600];
	int mounted;
	struct e2e_daemon *d; /* the daemon on it, while it runs */
} loopfs;

/*
 * Stop the daemon on the loop file system, unmount it, remove its image.
 * Safe to call again, and at exit (die() on the way).
 */
static void loopfs_release(void)
{
	if (loopfs.d) {
		e2e_stop(loopfs.d, SIGKILL);
		loopfs.d = NULL;
	}
	if (loopfs.mounted && umount2(loopfs.mnt, 0) < 0 &&
	    umount2(loopfs.mnt, MNT_DETACH) < 0)
		fprintf(stderr, "bench: cannot unmount %s: %s\n", loopfs.mnt,
			strerror(errno));
	loopfs.mounted = 0;
	if (loopfs.img[0])
		unlink(loopfs.img);
	loopfs.img[0] = '\0';
}

/* Bytes in use on the file system holding fd, after a flush. */
static uint64_t fs_used_bytes(int fd)
{
	struct statfs sf;

	if (syncfs(fd) < 0 || fstatfs(fd, &sf) < 0)
		die("cannot statfs the state directory");
	return (uint64_t)(sf.f_blocks - sf.f_bfree) * (uint64_t)sf.f_bsize;
}

/*
 * Bytes allocated to the files of the directory fd (st_blocks), each file
 * once however many names it has. Extents shared by reflinks are counted
 * in every file that holds them, as du does.
 */
static uint64_t dir_file_bytes(int fd)
{
	struct dirent *de;
	struct stat sb;
	uint64_t sum = 0;
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);

	if (!dir)
		die("cannot list the state directory");
	while ((de = readdir(dir)))
		if (fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(sb.st_mode))
			sum += (uint64_t)sb.st_blocks * 512 /
			       (sb.st_nlink ? sb.st_nlink : 1);
	closedir(dir);
	return sum;
}

/* The name of the file system type of fd, for the rows. */
static const char *fs_type_name(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return "?";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53:
		return "ext4";
	case 0x58465342:
		return "XFS";
	case 0x9123683E:
		return "btrfs";
	case 0x01021994:
		return "tmpfs";
	default:
		return "other fs";
	}
}

/*
 * What the commits took, per commit: on the file system (the figure on the
 * loop XFS, which holds nothing else) and in the directory's files (the
 * figure on $TMPDIR, which other files share; exact where nothing is
 * shared). hint: the directory's CoW extent size hint, as xfs_io says it.
 */
struct disk_use {
	uint64_t fs;
	uint64_t dir;
	char hint[96];
};

/*
 * The scenario on a daemon with --dir dir. With loop, dir is on the loop
 * XFS, which is detached once the daemon holds it: it goes away with the
 * daemon and this process, however they end.
 */
static void disk_commits(const char *tag, const char *dir, int loop,
			 struct disk_use *u)
{
	static size_t pages[DISK_PAGES];
	unsigned char page[STORE_PAGE_SIZE];
	char log[600], mod[65], sid[65], path[256];
	struct e2e_daemon d;
	struct e2e_resp resp;
	struct cli k;
	uint64_t fs0, dir0;
	size_t i, j;
	int fd, c;

	snprintf(log, sizeof(log), "%s/%s.log", tmproot, tag);
	if (e2e_start(&d, dir, log, NULL) < 0)
		die("cannot start modstored");
	if (loop)
		loopfs.d = &d;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("cannot open the state directory");
	u->hint[0] = '\0';
	if (loop) {
		char cmd[1024];
		FILE *p;

		snprintf(cmd, sizeof(cmd),
			 SBIN "xfs_io -c cowextsize '%s' 2>&1", dir);
		p = popen(cmd, "r");
		if (p) {
			if (!fgets(u->hint, sizeof(u->hint), p))
				u->hint[0] = '\0';
			u->hint[strcspn(u->hint, " \n")] = '\0';
			pclose(p);
		}
		/* the daemon and fd hold it: unmounted when both are gone */
		if (umount2(loopfs.mnt, MNT_DETACH) == 0)
			loopfs.mounted = 0;
	}
	cli_init(&k, d.url);
	deploy(&k, "bench disk module", DISK_SIZE, mod);
	session(&k, sid);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory?offset=0",
		 sid, mod);
	if (e2e_upload(&d, "PUT", path, 11, DISK_SIZE, &resp) < 0 ||
	    resp.status != 204)
		die("upload of the disk module");
	e2e_resp_release(&resp);
	commit(&k, sid, NULL);
	fs0 = fs_used_bytes(fd);
	dir0 = dir_file_bytes(fd);
	for (c = 0; c < DISK_COMMITS; c++) {
		/* DISK_DIRTY distinct pages: a partial Fisher-Yates shuffle */
		for (i = 0; i < DISK_PAGES; i++)
			pages[i] = i;
		for (i = 0; i < DISK_DIRTY; i++) {
			size_t x = pages[i];

			j = i + rnd() % (DISK_PAGES - i);
			pages[i] = pages[j];
			pages[j] = x;
		}
		session(&k, sid);
		for (i = 0; i < DISK_DIRTY; i++) {
			rnd_bytes(page, sizeof(page));
			put(&k, sid, mod, pages[i] * STORE_PAGE_SIZE, page,
			    sizeof(page));
		}
		commit(&k, sid, NULL);
	}
	u->fs = (fs_used_bytes(fd) - fs0) / DISK_COMMITS;
	u->dir = (dir_file_bytes(fd) - dir0) / DISK_COMMITS;
	cli_done(&k);
	e2e_stop(&d, SIGTERM);
	loopfs.d = NULL;
	close(fd);
}

/* Make and mount the loop XFS; 0, or -1 with the reason in why. */
static int loopfs_make(char *why, size_t len)
{
	char cmd[2048];
	int fd;

	snprintf(loopfs.img, sizeof(loopfs.img), "%s/xfs.img", tmproot);
	snprintf(loopfs.mnt, sizeof(loopfs.mnt), "%s/xfs", tmproot);
	fd = open(loopfs.img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)DISK_IMAGE) < 0 ||
	    mkdir(loopfs.mnt, 0700) < 0) {
		snprintf(why, len, "cannot make the image: %s",
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 SBIN "mkfs.xfs -q -m reflink=1 -f '%s' >'%s/mkfs.log' 2>&1",
		 loopfs.img, tmproot);
	if (system(cmd) != 0) {
		snprintf(why, len, "mkfs.xfs failed (see mkfs.log)");
		return -1;
	}
	snprintf(cmd, sizeof(cmd),
		 SBIN "mount -o loop '%s' '%s' >>'%s/mkfs.log' 2>&1",
		 loopfs.img, loopfs.mnt, tmproot);
	if (system(cmd) != 0) {
		snprintf(why, len, "mount -o loop failed (see mkfs.log)");
		return -1;
	}
	loopfs.mounted = 1;
	return 0;
}

static void scenario_disk(void)
{
	const uint64_t dirty = DISK_DIRTY * STORE_PAGE_SIZE;
	struct disk_use x, t;
	char dir[700], why[256], v[64], p[64], r[32], name[64];
	const char *type;
	int fd;

	snprintf(p, sizeof(p), "dirty %llu KiB a commit",
		 (unsigned long long)dirty / 1024);
	why[0] = '\0';
	if (geteuid() != 0)
		snprintf(why, sizeof(why), "needs root (mkfs.xfs, mount)");
	else if (system(SBIN "command -v mkfs.xfs >/dev/null 2>&1") != 0)
		snprintf(why, sizeof(why),
			 "mkfs.xfs missing (xfsprogs, bench/install-peers)");
	else {
		atexit(loopfs_release);
		if (loopfs_make(why, sizeof(why)) == 0) {
			snprintf(dir, sizeof(dir), "%s/state", loopfs.mnt);
			disk_commits("disk-xfs", dir, 1, &x);
		}
		loopfs_release();
	}
	if (why[0]) {
		fprintf(stderr, "bench: disk on XFS skipped: %s\n", why);
		row("disk per commit, XFS reflink", "skipped",
		    "see the message above", "-", "<= 2x the dirty pages", -1);
	} else {
		snprintf(v, sizeof(v), "%.0f KiB", (double)x.fs / 1024);
		snprintf(r, sizeof(r), "%.2fx", (double)x.fs / (double)dirty);
		row("disk per commit, XFS reflink", v, p, r,
		    "<= 2x the dirty pages", x.fs <= 2 * dirty);
		fprintf(notes,
			"\ndisk on XFS: the state directory's hint: %s; "
			"its files' st_blocks grew by %.0f KiB a commit (the "
			"shared extents counted in each file, as du does); "
			"the file system's use by %.0f KiB.\n",
			x.hint, (double)x.dir / 1024, (double)x.fs / 1024);
	}
	snprintf(dir, sizeof(dir), "%s/disk-tmp", tmproot);
	disk_commits("disk-tmp", dir, 0, &t);
	fd = open(tmproot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	type = fd < 0 ? "?" : fs_type_name(fd);
	if (fd >= 0)
		close(fd);
	snprintf(name, sizeof(name), "disk per commit, %s ($TMPDIR)", type);
	snprintf(v, sizeof(v), "%.0f KiB", (double)t.dir / 1024);
	snprintf(r, sizeof(r), "%.2fx", (double)t.dir / (double)dirty);
	row(name, v, p, r, "reported", -1);
	if (!getenv("BENCH_KEEP")) { /* 800 MiB of copies */
		char cmd[800];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench: cannot remove %s\n", dir);
	}
}

/* --- hashing: full rehash against the path update of 1% dirty pages ------- */

static void scenario_hash(void)
{
	double full[3], part[5], fmed, pmed;
	struct store_id id;
	struct tree *tr;
	unsigned char *mem = malloc(BIGSIZE);
	size_t *dirty = malloc(BIGDIRTY * sizeof(size_t)), i, n;
	char v[64], p[64], r[32];
	int rep;

	if (!mem || !dirty)
		die("out of memory");
	for (i = 0; i < BIGSIZE / 8; i++) {
		uint64_t x = rnd();

		memcpy(mem + i * 8, &x, 8);
	}
	for (rep = 0; rep < 3; rep++) {
		double t0 = now_ms();

		store_memory_id(mem, BIGSIZE, &id);
		full[rep] = now_ms() - t0;
	}
	/* the store's own page tree, as a commit keeps it */
	tr = tree_new_zero(BIGPAGES);
	if (!tr)
		die("out of memory");
	for (i = 0; i < BIGPAGES; i++)
		ids_leaf_page(mem + i * STORE_PAGE_SIZE, &tr->lv[0][i]);
	tree_update(tr, NULL, 0, 1);
	for (rep = 0; rep < 5; rep++) {
		double t0;
		unsigned char *bits = calloc(BIGPAGES / 8, 1);

		if (!bits)
			die("out of memory");
		for (n = 0; n < BIGDIRTY;) {
			size_t pg = rnd() % BIGPAGES;

			if (bits[pg / 8] & (1u << (pg % 8)))
				continue;
			bits[pg / 8] |= (unsigned char)(1u << (pg % 8));
			mem[pg * STORE_PAGE_SIZE + rnd() % STORE_PAGE_SIZE]++;
			n++;
		}
		for (i = 0, n = 0; i < BIGPAGES; i++)
			if (bits[i / 8] & (1u << (i % 8)))
				dirty[n++] = i;
		free(bits);
		t0 = now_ms();
		for (i = 0; i < n; i++)
			ids_leaf_page(mem + dirty[i] * STORE_PAGE_SIZE,
				      &tr->lv[0][dirty[i]]);
		if (tree_update(tr, dirty, n, 0) < 0)
			die("out of memory");
		tree_root(tr, &id);
		part[rep] = now_ms() - t0;
	}
	tree_unref(tr);
	free(mem);
	free(dirty);
	fmed = median(full, 3);
	pmed = median(part, 5);
	snprintf(v, sizeof(v), "%.2f ms", pmed);
	snprintf(p, sizeof(p), "full rehash %.0f ms", fmed);
	snprintf(r, sizeof(r), "1/%.0f", fmed / pmed);
	row("large: hashing 1% dirty (in-proc)", v, p, r, "<= 1/20 of full",
	    pmed * 20 <= fmed);
}

/* --- wrk: reads against nginx and etcd ------------------------------------ */

static double wrk_rps(const char *url, const char *script, const char *what)
{
	char cmd[1024], line[512];
	double rps = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "wrk -t2 -c64 -d%s %s%s '%s' 2>&1",
		 WRK_SECONDS, script ? "-s " : "", script ? script : "", url);
	f = popen(cmd, "r");
	if (!f)
		die("wrk");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Requests/sec: %lf", &rps) == 1)
			continue;
		if (strstr(line, "Non-2xx") || strstr(line, "Socket errors"))
			fprintf(stderr, "bench: wrk %s: %s", what, line);
	}
	if (pclose(f) != 0 || rps < 0)
		die("wrk failed");
	return rps;
}

/* Wait for url to answer 200 (a POST with body when body is set). */
static void wait_ready(const char *url, const char *body)
{
	struct cli k;
	int i;

	cli_init(&k, url);
	for (i = 0; i < 3000; i++) {
		if (cli_req(&k, body ? "POST" : "GET", "", body,
			    body ? strlen(body) : 0, 0) == 200)
			break;
		usleep(10000);
	}
	cli_done(&k);
	if (i == 3000)
		die("a peer did not start");
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die("cannot write a temporary file");
}

static void scenario_wrk(void)
{
	/* 64 bytes "aaa...": its base64 for etcd */
	static const char b64_64a[] =
	    "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh"
	    "YWFhYWFhYWFhYWFhYWFhYWFhYQ==";
	struct e2e_daemon d;
	struct cli k;
	char mod[65], sid[65], url[512], path[512], conf[2048], tmp[600];
	char etcd_url[64], peer_url[64], script[600], v[64], p[64], r[32];
	unsigned char *data = malloc(MODSIZE);
	double s_rps, m_rps, n_rps, n64k_rps, e_rps;
	double rn[WRK_ROUNDS], rs[WRK_ROUNDS], rn64k[WRK_ROUNDS];
	double rm[WRK_ROUNDS], re[WRK_ROUNDS];
	int round;
	pid_t nginx, etcd;
	int nport = free_port(), cport, pport;

	/* nginx: a 64-byte static file, access log to a file */
	snprintf(tmp, sizeof(tmp), "%s/www", tmproot);
	mkdir(tmp, 0755);
	snprintf(tmp, sizeof(tmp), "%s/www/f64", tmproot);
	write_file(tmp,
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaa\n");
	snprintf(tmp, sizeof(tmp), "%s/www/f64k", tmproot);
	{
		FILE *f = fopen(tmp, "w");
		unsigned char blk[MODSIZE];

		rnd_bytes(blk, sizeof(blk));
		if (!f || fwrite(blk, 1, sizeof(blk), f) != sizeof(blk) ||
		    fclose(f) != 0)
			die("cannot write a temporary file");
	}
	snprintf(tmp, sizeof(tmp), "%s/nginx-body", tmproot);
	mkdir(tmp, 0700);
	snprintf(conf, sizeof(conf),
		 "%sdaemon off;\nmaster_process on;\nworker_processes auto;\n"
		 "pid %s/nginx.pid;\nerror_log %s/nginx-error.log warn;\n"
		 "events { worker_connections 1024; }\n"
		 "http {\n  access_log %s/nginx-access.log;\n"
		 "  client_body_temp_path %s/nginx-body;\n"
		 "  server {\n    listen 127.0.0.1:%d;\n    root %s/www;\n"
		 "  }\n}\n",
		 geteuid() == 0 ? "user root;\n" : "", tmproot, tmproot,
		 tmproot, tmproot, nport, tmproot);
	snprintf(tmp, sizeof(tmp), "%s/nginx.conf", tmproot);
	write_file(tmp, conf);
	{
		char ep[600], log[600];
		const char *argv[] = {"nginx", "-p", tmproot, "-e",
				      ep,      "-c", tmp,     NULL};

		snprintf(ep, sizeof(ep), "%s/nginx-error.log", tmproot);
		snprintf(log, sizeof(log), "%s/nginx.out", tmproot);
		nginx = spawn(argv, log, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/f64", nport);
	wait_ready(url, NULL);

	/* etcd: one member, its v3 gRPC gateway over HTTP */
	cport = free_port();
	pport = free_port();
	snprintf(etcd_url, sizeof(etcd_url), "http://127.0.0.1:%d", cport);
	snprintf(peer_url, sizeof(peer_url), "http://127.0.0.1:%d", pport);
	{
		char ddir[600], cluster[128], log[600];
		const char *argv[] = {"etcd",	"--name",
				      "bench",	"--data-dir",
				      ddir,	"--listen-client-urls",
				      etcd_url, "--advertise-client-urls",
				      etcd_url, "--listen-peer-urls",
				      peer_url, "--initial-advertise-peer-urls",
				      peer_url, "--initial-cluster",
				      cluster,	"--log-level",
				      "error",	NULL};

		snprintf(ddir, sizeof(ddir), "%s/etcd", tmproot);
		snprintf(cluster, sizeof(cluster), "bench=%s", peer_url);
		snprintf(log, sizeof(log), "%s/etcd.log", tmproot);
		etcd = spawn(argv, log, NULL);
	}
	snprintf(url, sizeof(url), "%s/v3/kv/put", etcd_url);
	snprintf(conf, sizeof(conf), "{\"key\":\"YmVuY2g=\",\"value\":\"%s\"}",
		 b64_64a);
	wait_ready(url, conf);
	snprintf(script, sizeof(script), "%s/etcd-range.lua", bench_dir);

	/* modstored: a committed 64 KiB module and a session with a write */
	if (!data || start_daemon(&d, "wrk", NULL) < 0)
		die("cannot start modstored");
	cli_init(&k, d.url);
	deploy(&k, "bench read module", MODSIZE, mod);
	session(&k, sid);
	rnd_bytes(data, MODSIZE);
	put(&k, sid, mod, 0, data, MODSIZE);
	commit(&k, sid, NULL);
	session(&k, sid);
	put(&k, sid, mod, 0, data, 64);
	cli_done(&k);
	free(data);

	/*
	 * Rounds of every target in turn, a median of each: load from
	 * elsewhere on the machine then falls on all of them alike.
	 */
	for (round = 0; round < WRK_ROUNDS; round++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/f64", nport);
		rn[round] = wrk_rps(url, NULL, "nginx");
		snprintf(url, sizeof(url),
			 "%s/sessions/%s/modules/%s/memory?offset=0&length=64",
			 d.url, sid, mod);
		rs[round] = wrk_rps(url, NULL, "session read");
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/f64k", nport);
		rn64k[round] = wrk_rps(url, NULL, "nginx 64 KiB");
		snprintf(path, sizeof(path), "%s/modules/%s/memory", d.url,
			 mod);
		rm[round] = wrk_rps(path, NULL, "module memory");
		snprintf(url, sizeof(url), "%s/v3/kv/range", etcd_url);
		re[round] = wrk_rps(url, script, "etcd");
	}
	n_rps = median(rn, WRK_ROUNDS);
	s_rps = median(rs, WRK_ROUNDS);
	n64k_rps = median(rn64k, WRK_ROUNDS);
	m_rps = median(rm, WRK_ROUNDS);
	e_rps = median(re, WRK_ROUNDS);
	stop(nginx);
	stop(etcd);
	e2e_stop(&d, SIGTERM);

	snprintf(v, sizeof(v), "%.0f req/s", s_rps);
	snprintf(p, sizeof(p), "nginx 64 B %.0f req/s", n_rps);
	snprintf(r, sizeof(r), "%.2fx", s_rps / n_rps);
	row("read 64 B of a session (wrk)", v, p, r, ">= 0.8x nginx",
	    s_rps >= 0.8 * n_rps);
	snprintf(p, sizeof(p), "etcd range %.0f req/s", e_rps);
	snprintf(r, sizeof(r), "%.2fx", s_rps / e_rps);
	row("read 64 B of a session vs etcd", v, p, r, "peer, reported", -1);
	snprintf(v, sizeof(v), "%.0f req/s", m_rps);
	snprintf(p, sizeof(p), "nginx 64 B %.0f req/s", n_rps);
	snprintf(r, sizeof(r), "%.2fx", m_rps / n_rps);
	row("GET module memory 64 KiB (wrk)", v, p, r, ">= 0.8x nginx",
	    m_rps >= 0.8 * n_rps);
	snprintf(p, sizeof(p), "nginx 64 KiB %.0f req/s", n64k_rps);
	snprintf(r, sizeof(r), "%.2fx", m_rps / n64k_rps);
	row("GET module memory vs nginx 64 KiB", v, p, r, "peer, reported", -1);
	snprintf(p, sizeof(p), "etcd range %.0f req/s", e_rps);
	snprintf(r, sizeof(r), "%.2fx", m_rps / e_rps);
	row("GET module memory vs etcd", v, p, r, "peer, reported", -1);
}

/* --- proofs, diffs and pull of a 256 MiB module (issue #12) ----------------
 */

/* nginx serving root/www with a file f4k of 4 KiB; its port. */
static int proofs_nginx(pid_t *pid)
{
	char tmp[600], conf[2048], ep[600], log[600];
	unsigned char blk[STORE_PAGE_SIZE];
	int port = free_port();
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/www-proofs", tmproot);
	mkdir(tmp, 0755);
	snprintf(tmp, sizeof(tmp), "%s/www-proofs/f4k", tmproot);
	f = fopen(tmp, "w");
	rnd_bytes(blk, sizeof(blk));
	if (!f || fwrite(blk, 1, sizeof(blk), f) != sizeof(blk) ||
	    fclose(f) != 0)
		die("cannot write a temporary file");
	snprintf(tmp, sizeof(tmp), "%s/nginx-proofs-body", tmproot);
	mkdir(tmp, 0700);
	snprintf(conf, sizeof(conf),
		 "%sdaemon off;\nmaster_process on;\nworker_processes auto;\n"
		 "pid %s/nginx-proofs.pid;\n"
		 "error_log %s/nginx-proofs-error.log warn;\n"
		 "events { worker_connections 1024; }\n"
		 "http {\n  access_log %s/nginx-proofs-access.log;\n"
		 "  client_body_temp_path %s/nginx-proofs-body;\n"
		 "  server {\n    listen 127.0.0.1:%d;\n"
		 "    root %s/www-proofs;\n  }\n}\n",
		 geteuid() == 0 ? "user root;\n" : "", tmproot, tmproot,
		 tmproot, tmproot, port, tmproot);
	snprintf(tmp, sizeof(tmp), "%s/nginx-proofs.conf", tmproot);
	write_file(tmp, conf);
	{
		const char *argv[] = {"nginx", "-p", tmproot, "-e",
				      ep,      "-c", tmp,     NULL};

		snprintf(ep, sizeof(ep), "%s/nginx-proofs-error.log", tmproot);
		snprintf(log, sizeof(log), "%s/nginx-proofs.out", tmproot);
		*pid = spawn(argv, log, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	}
	snprintf(tmp, sizeof(tmp), "http://127.0.0.1:%d/f4k", port);
	wait_ready(tmp, NULL);
	return port;
}

/* A sample of GET /metrics without labels. */
static double proofs_metric(struct cli *k, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	want(cli_req(k, "GET", "/metrics", NULL, 0, 0), 200, "metrics", k);
	for (p = k->body; p && *p;
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, name, n) && p[n] == ' ')
			return atof(p + n + 1);
	die("a metric is missing");
	return 0;
}

/*
 * One module of 256 MiB, written full of data and committed (A), then 1%
 * of its pages changed by one byte each and committed (B, the current
 * state). Rows: proofs of random pages of B under wrk against nginx
 * serving a 4 KiB file; the diff A -> B, first (A's tree rebuilt from its
 * file) and then with both trees at hand; `modstore pull` of B from a file
 * holding A, the bytes the daemon sent against the changed pages.
 */
static void scenario_proofs(void)
{
	const char *args[] = {"--max-module-size", "1G", "--max-body", "1G",
			      NULL};
	struct e2e_daemon d;
	struct cli k;
	char mod[65], sid[65], ca[65], cb[65], path[512], url[600];
	char script[600], file[600], cmd[2048], v[64], p[64], r[32];
	double tw[20], rn[WRK_ROUNDS], rp[WRK_ROUNDS], cold, warm, t0;
	double n_rps, p_rps, sent0, sent1, changed;
	size_t *pages, i, npages = 0;
	pid_t nginx;
	int nport, round;
	const char *bin = getenv("MODSTORED");
	char cli_bin[600];

	if (start_daemon(&d, "proofs", args) < 0)
		die("cannot start modstored");
	cli_init(&k, d.url);
	big_module(&d, &k, "bench proofs module", 12, mod, ca);
	/* 1% of the pages, distinct: a partial Fisher-Yates shuffle */
	pages = calloc(BIGPAGES, sizeof(*pages));
	if (!pages)
		die("out of memory");
	for (i = 0; i < BIGPAGES; i++)
		pages[i] = i;
	for (i = 0; i < BIGDIRTY; i++) {
		size_t j = i + rnd() % (BIGPAGES - i), x = pages[i];

		pages[i] = pages[j];
		pages[j] = x;
	}
	session(&k, sid);
	for (i = 0; i < BIGDIRTY; i++) {
		uint64_t off = pages[i] * STORE_PAGE_SIZE + 17;
		unsigned char b;

		/* the byte of the upload's pattern, changed for sure */
		e2e_pattern(12, off, &b, 1);
		b ^= 0xFF;
		put(&k, sid, mod, off, &b, 1);
	}
	free(pages);
	commit(&k, sid, cb);

	/* the diff: the first rebuilds A's tree, later ones have both */
	snprintf(path, sizeof(path), "/commits/%s/diff/%s", ca, cb);
	t0 = now_ms();
	want(cli_req(&k, "GET", path, NULL, 0, 1), 200, "diff", &k);
	cold = now_ms() - t0;
	npages = json_array_size(json_object_get(
	    json_array_get(json_object_get(k.json, "modules"), 0), "pages"));
	if (npages != BIGDIRTY)
		die("the diff does not list the changed pages");
	for (i = 0; i < 20; i++) {
		t0 = now_ms();
		want(cli_req(&k, "GET", path, NULL, 0, 0), 200, "diff", &k);
		tw[i] = now_ms() - t0;
	}
	warm = median(tw, 20);

	/* pull: a file holding A becomes B */
	snprintf(file, sizeof(file), "%s/pull-file", tmproot);
	snprintf(cmd, sizeof(cmd),
		 "curl -sf -o '%s' '%s/commits/%s/modules/%s/memory'", file,
		 d.url, ca, mod);
	if (system(cmd) != 0)
		die("downloading commit A's memory");
	snprintf(cli_bin, sizeof(cli_bin), "%.*s/modstore",
		 (int)(strrchr(bin, '/') ? strrchr(bin, '/') - bin : 1),
		 strrchr(bin, '/') ? bin : ".");
	sent0 = proofs_metric(&k, "modstore_http_sent_bytes_total");
	snprintf(cmd, sizeof(cmd),
		 "MODSTORE_URL='%s' '%s' pull %s %s '%s' --from %s "
		 ">'%s/pull.out' 2>&1",
		 d.url, cli_bin, cb, mod, file, ca, tmproot);
	if (system(cmd) != 0)
		die("modstore pull failed");
	sent1 = proofs_metric(&k, "modstore_http_sent_bytes_total");
	changed = (double)BIGDIRTY * STORE_PAGE_SIZE;

	/* proofs of random pages under wrk, against nginx's 4 KiB file */
	nport = proofs_nginx(&nginx);
	snprintf(script, sizeof(script), "%s/proofs.lua", tmproot);
	snprintf(
	    cmd, sizeof(cmd),
	    "math.randomseed(12)\n"
	    "request = function()\n"
	    "  return wrk.format(\"GET\", \"/commits/%s/modules/%s/pages/\""
	    " .. math.random(0, %llu))\n"
	    "end\n",
	    cb, mod, (unsigned long long)(BIGPAGES - 1));
	write_file(script, cmd);
	for (round = 0; round < WRK_ROUNDS; round++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/f4k", nport);
		rn[round] = wrk_rps(url, NULL, "nginx 4 KiB");
		rp[round] = wrk_rps(d.url, script, "proofs");
	}
	n_rps = median(rn, WRK_ROUNDS);
	p_rps = median(rp, WRK_ROUNDS);
	stop(nginx);
	cli_done(&k);
	e2e_stop(&d, SIGTERM);

	snprintf(v, sizeof(v), "%.0f req/s", p_rps);
	snprintf(p, sizeof(p), "nginx 4 KiB %.0f req/s", n_rps);
	snprintf(r, sizeof(r), "%.2fx", p_rps / n_rps);
	row("proofs, random pages of 256 MiB", v, p, r, ">= 0.5x nginx",
	    p_rps >= 0.5 * n_rps);
	snprintf(v, sizeof(v), "%.2f ms", warm);
	snprintf(p, sizeof(p), "655 of 65536 pages");
	row("diff 256 MiB, 1% changed", v, p, "-", "<= 10 ms (trees at hand)",
	    warm <= 10);
	snprintf(v, sizeof(v), "%.0f ms", cold);
	row("diff 256 MiB, first (rebuild)", v, "hashes 256 MiB once", "-",
	    "reported", -1);
	snprintf(v, sizeof(v), "%.2f MiB", (sent1 - sent0) / (1 << 20));
	snprintf(p, sizeof(p), "changed %.2f MiB", changed / (1 << 20));
	snprintf(r, sizeof(r), "%.3fx", (sent1 - sent0) / changed);
	row("pull of that change: bytes sent", v, p, r, "<= 1.1x changed",
	    sent1 - sent0 <= 1.1 * changed);
	snprintf(path, sizeof(path), "%s/pull.out", tmproot);
	{
		FILE *f = fopen(path, "r");
		char line[512];

		while (f && fgets(line, sizeof(line), f))
			fprintf(notes, "proofs: modstore pull: %s", line);
		if (f)
			fclose(f);
	}
}

/*
 * BENCH=tls: a 64-byte session read over HTTPS against nginx serving a
 * 64-byte file over HTTPS with the same certificate (made with certtool),
 * TLS 1.2 and 1.3 on both, the wrk settings of scenario_wrk (keep-alive
 * connections: the handshakes are few, the records are what is measured).
 */
static void scenario_tls(void)
{
	struct e2e_daemon d;
	struct cli k;
	char mod[65], sid[65], url[512], conf[4096], tmp[600], tls[600];
	char cert[700], key[700], ca[700], v[64], p[64], r[32];
	double rn[WRK_ROUNDS], rs[WRK_ROUNDS], n_rps, s_rps;
	unsigned char data[64];
	int round, nport = free_port();
	pid_t nginx;

	snprintf(tls, sizeof(tls), "%s/tls", tmproot);
	mkdir(tls, 0700);
	if (e2e_certs_make(tls) < 0)
		die("cannot make the certificates (certtool)");
	snprintf(cert, sizeof(cert), "%s/server.pem", tls);
	snprintf(key, sizeof(key), "%s/server.key", tls);
	snprintf(ca, sizeof(ca), "%s/ca.pem", tls);

	snprintf(tmp, sizeof(tmp), "%s/www-tls", tmproot);
	mkdir(tmp, 0755);
	snprintf(tmp, sizeof(tmp), "%s/www-tls/f64", tmproot);
	write_file(tmp,
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaa\n");
	snprintf(tmp, sizeof(tmp), "%s/nginx-tls-body", tmproot);
	mkdir(tmp, 0700);
	snprintf(
	    conf, sizeof(conf),
	    "%sdaemon off;\nmaster_process on;\nworker_processes auto;\n"
	    "pid %s/nginx-tls.pid;\nerror_log %s/nginx-tls-error.log "
	    "warn;\nevents { worker_connections 1024; }\n"
	    "http {\n  access_log %s/nginx-tls-access.log;\n"
	    "  client_body_temp_path %s/nginx-tls-body;\n"
	    "  server {\n    listen 127.0.0.1:%d ssl;\n    root %s/www-tls;\n"
	    "    ssl_certificate %s;\n    ssl_certificate_key %s;\n"
	    "    ssl_protocols TLSv1.2 TLSv1.3;\n  }\n}\n",
	    geteuid() == 0 ? "user root;\n" : "", tmproot, tmproot, tmproot,
	    tmproot, nport, tmproot, cert, key);
	snprintf(tmp, sizeof(tmp), "%s/nginx-tls.conf", tmproot);
	write_file(tmp, conf);
	{
		char ep[600], log[600];
		const char *argv[] = {"nginx", "-p", tmproot, "-e",
				      ep,      "-c", tmp,     NULL};

		snprintf(ep, sizeof(ep), "%s/nginx-tls-error.log", tmproot);
		snprintf(log, sizeof(log), "%s/nginx-tls.out", tmproot);
		nginx = spawn(argv, log, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	}
	bench_cacert = ca;
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/f64", nport);
	wait_ready(url, NULL);

	/* modstored over HTTPS: a session that wrote 64 bytes */
	{
		const char *args[] = {"--tls-cert", cert, "--tls-key", key,
				      NULL};

		if (start_daemon(&d, "tls", args) < 0)
			die("cannot start modstored with --tls-cert");
	}
	cli_init(&k, d.url);
	deploy(&k, "bench tls module", MODSIZE, mod);
	session(&k, sid);
	rnd_bytes(data, sizeof(data));
	put(&k, sid, mod, 0, data, sizeof(data));
	cli_done(&k);

	for (round = 0; round < WRK_ROUNDS; round++) {
		snprintf(url, sizeof(url), "https://127.0.0.1:%d/f64", nport);
		rn[round] = wrk_rps(url, NULL, "nginx https");
		snprintf(url, sizeof(url),
			 "%s/sessions/%s/modules/%s/memory?offset=0&length=64",
			 d.url, sid, mod);
		rs[round] = wrk_rps(url, NULL, "session read https");
	}
	n_rps = median(rn, WRK_ROUNDS);
	s_rps = median(rs, WRK_ROUNDS);
	stop(nginx);
	e2e_stop(&d, SIGTERM);
	bench_cacert = NULL;

	snprintf(v, sizeof(v), "%.0f req/s", s_rps);
	snprintf(p, sizeof(p), "nginx https %.0f req/s", n_rps);
	snprintf(r, sizeof(r), "%.2fx", s_rps / n_rps);
	row("read 64 B of a session, HTTPS", v, p, r, ">= 0.8x nginx",
	    s_rps >= 0.8 * n_rps);
}

/* --- resident memory with 1 GiB in the state --------------------------------
 */

static void scenario_rss(void)
{
	struct e2e_daemon d;
	struct cli k;
	char(*ids)[STORE_HEX_LEN + 1] = calloc(NMOD, sizeof(*ids));
	unsigned char *data = malloc(RSS_MODSIZE);
	char sid[65], v[64], r[32];
	uint64_t kib;
	int i;

	if (!ids || !data || start_daemon(&d, "rss", NULL) < 0)
		die("cannot start modstored");
	cli_init(&k, d.url);
	rnd_bytes(data, RSS_MODSIZE);
	for (i = 0; i < NMOD; i++) {
		char code[64];

		snprintf(code, sizeof(code), "bench rss module %d", i);
		deploy(&k, code, RSS_MODSIZE, ids[i]);
	}
	for (i = 0; i < NMOD; i++) {
		if (i % 100 == 0)
			session(&k, sid);
		memcpy(data, &i, sizeof(i));
		put(&k, sid, ids[i], 0, data, RSS_MODSIZE);
		if (i % 100 == 99)
			commit(&k, sid, NULL);
	}
	want(cli_req(&k, "GET", "/modules", NULL, 0, 0), 200, "list", &k);
	want(cli_req(&k, "GET", "/root", NULL, 0, 0), 200, "root", &k);
	kib = e2e_proc_kib(d.pid, "VmRSS");
	cli_done(&k);
	e2e_stop(&d, SIGTERM);
	free(ids);
	free(data);
	snprintf(v, sizeof(v), "%.1f MiB", (double)kib / 1024);
	snprintf(r, sizeof(r), "%.2f", (double)kib / 1024 / 32);
	row("RSS, 1 GiB over 1,000 modules", v, "32 MiB + 0 in sessions", r,
	    "<= 32 MiB + sessions", kib <= 32 * 1024);
}

/* --- start on 10,000 modules and 10,000 persisted commits ----------------- */

static int mkstart(const char *dir)
{
	struct store_options o = {0};
	struct store *s;
	struct store_id m[START_CMODS], sid;
	struct store_session_info si;
	struct store_commit_info ci;
	char code[64];
	int i;

	o.dir = dir;
	if (store_open(&s, &o) != STORE_OK)
		return 1;
	for (i = 0; i < START_CMODS; i++) {
		snprintf(code, sizeof(code), "bench start module %d", i);
		if (store_deploy(s, code, strlen(code), MODSIZE, NULL, NULL))
			return 1;
		store_module_id(code, strlen(code), &m[i]);
	}
	for (i = 0; i < START_COMMIT; i++) {
		uint32_t x = (uint32_t)i + 1;

		if (store_session_begin(s, NULL, &si) != STORE_OK)
			return 1;
		sid = si.id;
		if (store_session_write(s, &sid, &m[i % START_CMODS],
					(uint64_t)(i / START_CMODS % 16) *
					    STORE_PAGE_SIZE,
					&x, sizeof(x)) != STORE_OK ||
		    store_session_commit(s, &sid, NULL, &ci) != STORE_OK)
			return 1;
		store_commit_info_release(&ci);
	}
	if (store_persist(s) != STORE_OK)
		return 1;
	for (i = START_CMODS; i < START_MODS; i++) {
		snprintf(code, sizeof(code), "bench start module %d", i);
		if (store_deploy(s, code, strlen(code), MODSIZE, NULL, NULL))
			return 1;
	}
	store_close(s);
	return 0;
}

static void scenario_start(void)
{
	char dir[512], env[600], log[600], port[32], v[64], r[32];
	double t[5], med, t0;
	int rep, st;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/start", tmproot);
	snprintf(env, sizeof(env), "LD_PRELOAD=%s/nofsync.so",
		 getenv("BENCH_LIB") ? getenv("BENCH_LIB") : ".");
	snprintf(log, sizeof(log), "%s/mkstart.log", tmproot);
	{
		const char *argv[] = {self_path, "mkstart", dir, NULL};

		/* a fixture: built without fsync, then synced once */
		t0 = now_ms();
		pid = spawn(argv, log, env);
		if (waitpid(pid, &st, 0) < 0 || st != 0)
			die("cannot build the start fixture (see mkstart.log)");
		sync();
		fprintf(stderr, "bench: start fixture built in %.1f s\n",
			(now_ms() - t0) / 1000);
	}
	for (rep = 0; rep < 5; rep++) {
		char listen[64], url[96], lg[600];
		const char *argv[] = {getenv("MODSTORED"), "--dir", dir,
				      "--listen",	   listen,  NULL};
		struct cli k;
		int i;

		snprintf(port, sizeof(port), "%d", free_port());
		snprintf(listen, sizeof(listen), "127.0.0.1:%s", port);
		snprintf(url, sizeof(url), "http://%s", listen);
		snprintf(lg, sizeof(lg), "%s/start.log", tmproot);
		cli_init(&k, url);
		t0 = now_ms();
		pid = spawn(argv, lg, NULL);
		for (i = 0; i < 100000; i++) {
			if (cli_req(&k, "GET", "/root", NULL, 0, 0) == 200)
				break;
			usleep(500);
		}
		t[rep] = now_ms() - t0;
		cli_done(&k);
		stop(pid);
	}
	med = median(t, 5);
	snprintf(v, sizeof(v), "%.0f ms", med);
	snprintf(r, sizeof(r), "%.2f", med / 1000);
	row("start: 10k modules, 10k commits", v, "limit 1000 ms", r,
	    "<= 1 s to first /root", med <= 1000);
}

/* --- the commits store at 10,000 commits, and retention ----------------- */

#define LIFE_MODS    1000
#define LIFE_COMMITS 10000
#define LIFE_CHANGED 10
#define KEEP_SIZE    (16ULL << 20)
#define KEEP_COMMITS 500
#define KEEP_N	     10

/* 10,000 commits over 1,000 one-page modules, 10 changed each; persisted. */
static int mklife(const char *dir)
{
	struct store_options o = {0};
	struct store *s;
	struct store_id *m = calloc(LIFE_MODS, sizeof(*m)), sid;
	struct store_session_info si;
	struct store_commit_info ci;
	char code[64];
	uint64_t x;
	int i, k;

	o.dir = dir;
	if (!m || store_open(&s, &o) != STORE_OK)
		return 1;
	for (i = 0; i < LIFE_MODS; i++) {
		snprintf(code, sizeof(code), "bench life module %d", i);
		if (store_deploy(s, code, strlen(code), STORE_PAGE_SIZE, NULL,
				 NULL))
			return 1;
		store_module_id(code, strlen(code), &m[i]);
	}
	for (i = 0; i < LIFE_COMMITS; i++) {
		if (store_session_begin(s, NULL, &si) != STORE_OK)
			return 1;
		sid = si.id;
		for (k = 0; k < LIFE_CHANGED; k++) {
			x = rnd();
			if (store_session_write(s, &sid, &m[rnd() % LIFE_MODS],
						0, &x, sizeof(x)) != STORE_OK)
				return 1;
		}
		if (store_session_commit(s, &sid, NULL, &ci) != STORE_OK)
			return 1;
		store_commit_info_release(&ci);
	}
	if (store_persist(s) != STORE_OK)
		return 1;
	store_close(s);
	free(m);
	return 0;
}

static size_t discard(char *p, size_t sz, size_t n, void *ctx)
{
	(void)p;
	*(uint64_t *)ctx += sz * n;
	return sz * n;
}

/*
 * POST or GET url+path, the body counted and dropped; the status, and in
 * *ttfb the ms to the first byte of the answer (a persist is durable
 * before its status line goes out; the body lists the store).
 */
static long timed_req(const char *url, const char *method, const char *path,
		      double *ttfb, double *total, uint64_t *bytes)
{
	CURL *c = curl_easy_init();
	char u[512];
	long status = 0;
	double t = 0, all = 0;

	*bytes = 0;
	snprintf(u, sizeof(u), "%s%s", url, path);
	curl_easy_setopt(c, CURLOPT_URL, u);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, bytes);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 1200L);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	}
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME, &t);
		curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &all);
	}
	curl_easy_cleanup(c);
	if (ttfb)
		*ttfb = t * 1000;
	if (total)
		*total = all * 1000;
	return status;
}

/* Start modstored on dir; ms until its first answered GET /root. */
static double start_timed(struct e2e_daemon *d, const char *dir,
			  const char *log)
{
	const char *const args[] = {NULL};
	double t0 = now_ms();
	struct cli k;
	int i;

	if (e2e_start(d, dir, log, args) < 0)
		die("cannot start modstored");
	cli_init(&k, d->url);
	for (i = 0; i < 200000; i++) {
		if (cli_req(&k, "GET", "/root", NULL, 0, 0) == 200)
			break;
		usleep(200);
	}
	cli_done(&k);
	return now_ms() - t0;
}

static void life_commits(const char *url, int n)
{
	struct cli k;
	char sid[65], hex[STORE_HEX_LEN + 1];
	json_t *a;
	uint64_t x;
	int i;

	cli_init(&k, url);
	want(cli_req(&k, "GET", "/modules", NULL, 0, 1), 200, "modules", &k);
	a = json_incref(json_object_get(k.json, "modules"));
	if (!json_array_size(a))
		die("no module");
	for (i = 0; i < n; i++) {
		const char *id = json_string_value(json_object_get(
		    json_array_get(a, rnd() % json_array_size(a)), "id"));

		if (!id)
			die("no module id");
		snprintf(hex, sizeof(hex), "%s", id);
		session(&k, sid);
		x = rnd();
		put(&k, sid, hex, 0, &x, sizeof(x));
		commit(&k, sid, NULL);
	}
	json_decref(a);
	cli_done(&k);
}

static void scenario_life(void)
{
	char dir[512], log[600], env[600], v[64], r[32], p[600], peer[64];
	struct e2e_daemon d;
	double t0, first, ready, inc, full, tot, restart;
	uint64_t kib, bytes;
	int st;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/life", tmproot);
	snprintf(log, sizeof(log), "%s/life.log", tmproot);
	snprintf(env, sizeof(env), "LD_PRELOAD=%s/nofsync.so",
		 getenv("BENCH_LIB") ? getenv("BENCH_LIB") : ".");
	{
		const char *argv[] = {self_path, "mklife", dir, NULL};

		t0 = now_ms();
		pid = spawn(argv, log, env);
		if (waitpid(pid, &st, 0) < 0 || st != 0)
			die("cannot build the 10,000-commit fixture "
			    "(life.log)");
		sync();
		fprintf(stderr,
			"bench: 10,000-commit fixture built in %.1f s\n",
			(now_ms() - t0) / 1000);
	}
	first = start_timed(&d, dir, log);
	/* every commit read: a GET of the list waits for the load */
	t0 = now_ms();
	if (timed_req(d.url, "GET", "/commits", NULL, NULL, &bytes) != 200)
		die("GET /commits");
	ready = now_ms() - t0 + first;
	kib = e2e_proc_kib(d.pid, "VmRSS");
	snprintf(v, sizeof(v), "%.1f MiB", (double)kib / 1024);
	snprintf(r, sizeof(r), "%.2f", (double)kib / 1024 / 64);
	row("RSS, 10k commits x 1,000 modules", v, "limit 64 MiB", r,
	    "<= 64 MiB", kib <= 64 * 1024);
	fprintf(notes,
		"- life: the file `commits` of 10,000 commits is %.0f MB; "
		"all of it loaded %.0f ms after start\n",
		(double)bytes / 1e6, ready);
	life_commits(d.url, 10);
	if (timed_req(d.url, "POST", "/persist", &inc, &tot, &bytes) != 200)
		die("persist");
	/* no file: the next persist writes the whole store */
	snprintf(p, sizeof(p), "%s/commits", dir);
	if (unlink(p))
		die("unlink commits");
	if (timed_req(d.url, "POST", "/persist", &full, &tot, &bytes) != 200)
		die("persist");
	snprintf(v, sizeof(v), "%.1f ms", inc);
	snprintf(r, sizeof(r), "1/%.0f", full / (inc > 0 ? inc : 0.001));
	snprintf(peer, sizeof(peer), "full persist %.0f ms", full);
	row("persist after 10 more commits", v, peer, r, "<= 1/20 of full",
	    inc * 20 <= full);
	fprintf(notes,
		"- life: persist timed to its status line (durable by then); "
		"both answers then stream the same %.0f MB listing, %.0f ms "
		"in all for the full one\n",
		(double)bytes / 1e6, tot);
	e2e_stop(&d, SIGTERM);
	restart = start_timed(&d, dir, log);
	snprintf(v, sizeof(v), "%.0f ms", restart);
	snprintf(r, sizeof(r), "%.2f", restart / 2000);
	row("restart to first GET /root", v, "limit 2,000 ms", r, "<= 2 s",
	    restart <= 2000);
	e2e_stop(&d, SIGTERM);
}

static void scenario_keep(void)
{
	const char *const args[] = {"--keep-commits", "10", NULL};
	unsigned char *page = malloc(STORE_PAGE_SIZE);
	char mod[65], sid[65], v[64], r[32], dir[512];
	struct e2e_daemon d;
	struct cli k;
	uint64_t used, pages = KEEP_SIZE / STORE_PAGE_SIZE;
	int i, j;

	if (!page || start_daemon(&d, "keep", args) < 0)
		die("cannot start modstored");
	cli_init(&k, d.url);
	deploy(&k, "bench keep module", KEEP_SIZE, mod);
	for (i = 0; i < KEEP_COMMITS; i++) {
		session(&k, sid);
		for (j = 0; j < (int)(pages / 100); j++) {
			rnd_bytes(page, STORE_PAGE_SIZE);
			put(&k, sid, mod, rnd() % pages * STORE_PAGE_SIZE, page,
			    STORE_PAGE_SIZE);
		}
		commit(&k, sid, NULL);
	}
	cli_done(&k);
	snprintf(dir, sizeof(dir), "%s/keep", tmproot);
	{ /* each file once, whatever its names (MOD, MOD_last) */
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			die("cannot open the state directory");
		used = dir_file_bytes(fd);
		close(fd);
	}
	e2e_stop(&d, SIGTERM);
	free(page);
	snprintf(v, sizeof(v), "%.0f MiB", (double)used / (1 << 20));
	snprintf(r, sizeof(r), "%.2f", (double)used / (12.0 * KEEP_SIZE));
	row("500 commits of 16 MiB, keep 10", v, "limit 12 x 16 MiB", r,
	    "<= 192 MiB of disk", used <= 12 * KEEP_SIZE);
}

/* --- main -------------------------------------------------------------------
 */

/* --- BENCH=cluster: cluster mode on etcd (docs/cluster.md) ---------------
 */

/* The median of NCOMMITS commits of WRITES x 64 B over NMOD modules. */
static double cluster_commits(struct cli *k, struct cli *follower,
			      double *lag_med)
{
	static double t[NCOMMITS], lag[NCOMMITS];
	char sid[65], cid[65];
	struct wr w[WRITES];
	int i, j;

	for (i = 0; i < NCOMMITS; i++) {
		double t0, t1;

		pick_writes(w, WRITES);
		t0 = now_ms();
		session(k, sid);
		for (j = 0; j < WRITES; j++)
			put(k, sid, mods[w[j].mod], w[j].off, w[j].data, 64);
		commit(k, sid, cid);
		t1 = now_ms();
		t[i] = t1 - t0;
		if (!follower)
			continue;
		/* applied on the follower: its root is the commit */
		for (;;) {
			const char *r;

			cli_req(follower, "GET", "/root", NULL, 0, 1);
			r = json_string_value(
			    json_object_get(follower->json, "root"));
			if (r && !strcmp(r, cid))
				break;
			if (now_ms() - t1 > 10000)
				die("a follower did not apply a commit");
			usleep(200);
		}
		lag[i] = now_ms() - t1;
	}
	if (lag_med)
		*lag_med = median(lag, NCOMMITS);
	return median(t, NCOMMITS);
}

static void scenario_cluster(void)
{
	static unsigned char first[NMOD][64];
	const char *args[] = {"--lease-ttl", "2", "--sync-replicas", "1", NULL};
	struct cl_etcd etcd;
	struct cl_node nodes[3];
	struct e2e_daemon single;
	struct cli k, kf;
	struct e2e_resp r;
	char root[600], ca[65], v[64], p[64], ra[32];
	double one, three, lag, t0, took;
	int i, l, f, st = 0;

	mods = mods ? mods : calloc(NMOD, sizeof(*mods));
	if (!mods)
		die("out of memory");
	/* single node */
	if (start_daemon(&single, "cluster-single", NULL) < 0)
		die("cannot start modstored");
	cli_init(&k, single.url);
	deploy_modules(&k, first, ca);
	one = cluster_commits(&k, NULL, NULL);
	cli_done(&k);
	stop(single.pid);
	/* 3 etcd members, 3 nodes */
	snprintf(root, sizeof(root), "%s/cluster", tmproot);
	mkdir(root, 0700);
	if (cl_etcd_start(&etcd, root, 3) < 0)
		die("cannot start etcd");
	memset(nodes, 0, sizeof(nodes));
	for (i = 0; i < 3; i++)
		if (cl_node_start(&nodes[i], &etcd, root, i, NULL, args) < 0)
			die("cannot start a node");
	l = cl_wait_leader(nodes, 3, 20000);
	if (l < 0)
		die("no leader");
	f = (l + 1) % 3;
	cli_init(&k, nodes[l].d.url);
	cli_init(&kf, nodes[f].d.url);
	deploy_modules(&k, first, ca);
	three = cluster_commits(&k, &kf, &lag);
	cli_done(&k);
	cli_done(&kf);
	snprintf(v, sizeof(v), "%.2f ms", three);
	snprintf(p, sizeof(p), "single node %.2f ms", one);
	snprintf(ra, sizeof(ra), "%.2f", three / one);
	row("cluster commit, 10 x 64 B, K=1", v, p, ra, "<= 2x",
	    three <= 2 * one);
	snprintf(v, sizeof(v), "%.2f ms", lag);
	snprintf(ra, sizeof(ra), "%.2f", lag / 50);
	row("cluster follower lag (median)", v, "limit 50 ms", ra, "<= 50 ms",
	    lag <= 50);
	/* failover: SIGKILL the leader, the first acknowledged write after */
	t0 = now_ms();
	cl_node_signal(&nodes[l], SIGKILL);
	do {
		if (cl_request(nodes, 3, f, "POST", "/persist", NULL, 0, &r) ==
		    0) {
			st = (int)r.status;
			e2e_resp_release(&r);
		}
		if (st != 200)
			usleep(5000);
	} while (st != 200 && now_ms() - t0 < 30000);
	took = now_ms() - t0;
	snprintf(v, sizeof(v), "%.0f ms", took);
	snprintf(ra, sizeof(ra), "%.2f", took / 4000);
	row("cluster failover (TTL 2 s)", v, "limit TTL + 2 s", ra,
	    "<= 4000 ms", st == 200 && took <= 4000);
	fprintf(
	    notes,
	    "\ncluster: 3 etcd members and 3 nodes on loopback, "
	    "--sync-replicas 1 --lease-ttl 2; a commit is a session, 10 "
	    "writes of 64 B into distinct modules of 1,000 and the commit, "
	    "sent to the leader; lag is the commit's answer to the "
	    "follower's root being it; failover is the SIGKILL of the leader "
	    "to the first 200 of POST /persist sent to a follower "
	    "(following its 307). Catching up by pages: BENCH=catchup.\n");
	for (i = 0; i < 3; i++)
		cl_node_signal(&nodes[i], SIGKILL);
	cl_etcd_stop(&etcd);
}

/* --- BENCH=catchup: a follower catches up by the changed pages ----------
 */

#define CU_COMMITS 100

/* A figure of node k's /metrics (the line "name VALUE"), or 0. */
static uint64_t metric_value(struct cli *k, const char *name)
{
	const char *p;
	size_t len = strlen(name);

	if (cli_req(k, "GET", "/metrics", NULL, 0, 0) != 200 || !k->body)
		die("GET /metrics");
	for (p = k->body; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, len) && p[len] == ' ')
			return strtoull(p + len + 1, NULL, 10);
	return 0;
}

/* Wait until node k's root is cid: the milliseconds it took. */
static double wait_root(struct cli *k, const char *cid, double limit)
{
	double t0 = now_ms();
	const char *r;

	for (;;) {
		cli_req(k, "GET", "/root", NULL, 0, 1);
		r = json_string_value(json_object_get(k->json, "root"));
		if (r && !strcmp(r, cid))
			return now_ms() - t0;
		if (now_ms() - t0 > limit)
			die("a follower did not catch up");
		usleep(2000);
	}
}

/* What a follower fetched from peers, from its /metrics. */
struct fetched {
	uint64_t body, headers, requests, by_pages, whole;
	uint64_t received; /* records the leader sent, with their pages */
};

static void fetched_of(struct cli *k, struct fetched *f)
{
	f->body = metric_value(k, "modstore_cluster_fetched_bytes_total");
	f->received =
	    metric_value(k, "modstore_cluster_received_record_bytes_total");
	f->headers =
	    metric_value(k, "modstore_cluster_fetched_header_bytes_total");
	f->requests = metric_value(k, "modstore_cluster_fetches_total");
	f->by_pages =
	    metric_value(
		k, "modstore_cluster_files_fetched_total{how=\"pages\"}") +
	    metric_value(
		k, "modstore_cluster_files_fetched_total{how=\"pushed\"}");
	f->whole = metric_value(
	    k, "modstore_cluster_files_fetched_total{how=\"whole\"}");
}

/*
 * One commit on the leader k of new random bytes in each of the
 * BIGDIRTY pages of pages; its id into cid, its time in ms.
 */
static double catchup_commit(struct cli *k, const char *mod,
			     const size_t *pages, char *cid)
{
	static unsigned char page[STORE_PAGE_SIZE];
	double t0 = now_ms();
	char sid[65];
	size_t i;

	session(k, sid);
	for (i = 0; i < BIGDIRTY; i++) {
		rnd_bytes(page, sizeof(page));
		put(k, sid, mod, pages[i] * STORE_PAGE_SIZE, page,
		    sizeof(page));
	}
	commit(k, sid, cid);
	return now_ms() - t0;
}

static void catchup_rows(const struct fetched *a, const struct fetched *b,
			 double took, double commit_med)
{
	const double changed = (double)CU_COMMITS * BIGDIRTY * STORE_PAGE_SIZE;
	double body = (double)(b->body - a->body);
	double hdrs = (double)(b->headers - a->headers);
	char v[64], p[64], r[32];

	snprintf(v, sizeof(v), "%.1f MiB", body / 1048576);
	snprintf(p, sizeof(p), "changed pages %.1f MiB", changed / 1048576);
	snprintf(r, sizeof(r), "%.3fx", body / changed);
	row("catch-up, 100 x 1% of 256 MiB", v, p, r, "<= 1.1x",
	    body <= 1.1 * changed && b->whole == a->whole);
	snprintf(v, sizeof(v), "%.1f s", took / 1000);
	snprintf(p, sizeof(p), "%llu requests",
		 (unsigned long long)(b->requests - a->requests));
	row("catch-up, time to the last commit", v, p, "-", "reported", -1);
	fprintf(
	    notes,
	    "\ncatch-up: 3 etcd members and 3 nodes on loopback "
	    "(--sync-replicas 1), one module of 256 MiB; one follower "
	    "frozen (SIGSTOP) while the leader commits %d times, each "
	    "commit new random bytes in the same 655 scattered pages (1%%), "
	    "chosen once, so that every commit file stays sparse on any "
	    "file system (the leader's commit copies a base's pages but "
	    "its holes; the follower's patch does the same once it has a "
	    "page tree at hand); then SIGCONT and the time until its root "
	    "is the last commit. Fetched (modstore_cluster_fetched_bytes_"
	    "total of the follower, answer bodies: pages with their "
	    "multipart framing, and the diffs): %.0f bytes for %.0f bytes "
	    "of changed pages; with the answers' headers (%.0f bytes) "
	    "%.3fx; %llu files made by their pages, %llu fetched whole, in "
	    "%llu requests. Fetching each file whole would be %d x 256 "
	    "MiB. A commit of the leader meanwhile (655 PUTs and the "
	    "commit, the other follower acking): median %.0f ms. The "
	    "catch-up's time goes mostly to the peer's diffs of older "
	    "commits whose page trees its tree cache (--tree-cache-size %s) "
	    "no longer holds: each hashes a 256 MiB file. Besides, the "
	    "follower read %.0f bytes of records the leader had sent it "
	    "while it was frozen (modstore_cluster_received_record_bytes_"
	    "total: those whose whole body had reached it), sent during the "
	    "commits, not fetched.\n",
	    CU_COMMITS, body, changed, hdrs, (body + hdrs) / changed,
	    (unsigned long long)(b->by_pages - a->by_pages),
	    (unsigned long long)(b->whole - a->whole),
	    (unsigned long long)(b->requests - a->requests), CU_COMMITS,
	    commit_med,
	    getenv("MODSTORE_TREE_CACHE_SIZE")
		? getenv("MODSTORE_TREE_CACHE_SIZE")
		: "256M, the trees of some 60 "
		  "of these commits",
	    (double)(b->received - a->received));
}

static void scenario_catchup(void)
{
	static size_t pages[BIGPAGES];
	static double t[CU_COMMITS];
	const char *args[] = {"--lease-ttl", "2", "--sync-replicas", "1", NULL};
	struct cl_etcd etcd;
	struct cl_node nodes[3];
	struct fetched before, after;
	struct cli kl, kb;
	char root[600], mod[65], cid[65];
	double took;
	size_t i, j, x;
	int l, b, c;

	snprintf(root, sizeof(root), "%s/catchup", tmproot);
	mkdir(root, 0700);
	if (cl_etcd_start(&etcd, root, 3) < 0)
		die("cannot start etcd");
	memset(nodes, 0, sizeof(nodes));
	for (c = 0; c < 3; c++)
		if (cl_node_start(&nodes[c], &etcd, root, c, NULL, args) < 0)
			die("cannot start a node");
	l = cl_wait_leader(nodes, 3, 20000);
	if (l < 0)
		die("no leader");
	b = (l + 2) % 3;
	cli_init(&kl, nodes[l].d.url);
	cli_init(&kb, nodes[b].d.url);
	deploy(&kl, "bench catch-up module", BIGSIZE, mod);
	/* BIGDIRTY distinct pages: a partial Fisher-Yates shuffle */
	for (i = 0; i < BIGPAGES; i++)
		pages[i] = i;
	for (i = 0; i < BIGDIRTY; i++) {
		j = i + rnd() % (BIGPAGES - i);
		x = pages[i];
		pages[i] = pages[j];
		pages[j] = x;
	}
	catchup_commit(&kl, mod, pages, cid);
	wait_root(&kb, cid, 60000);
	fetched_of(&kb, &before);
	cl_node_signal(&nodes[b], SIGSTOP);
	for (c = 0; c < CU_COMMITS; c++)
		t[c] = catchup_commit(&kl, mod, pages, cid);
	kill(nodes[b].d.pid, SIGCONT);
	took = wait_root(&kb, cid, 600000);
	fetched_of(&kb, &after);
	catchup_rows(&before, &after, took, median(t, CU_COMMITS));
	cli_done(&kl);
	cli_done(&kb);
	for (c = 0; c < 3; c++)
		cl_node_signal(&nodes[c], SIGKILL);
	cl_etcd_stop(&etcd);
	if (!getenv("BENCH_KEEP")) { /* some 2 GB of commit files */
		char cmd[800];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "bench: cannot remove %s\n", root);
	}
}

static int wanted(int argc, char **argv, const char *name)
{
	int i;

	if (argc < 2)
		return 1;
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0 || strcmp(argv[i], "all") == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *t = getenv("TMPDIR");
	char cmd[600], *notes_text = NULL;
	size_t notes_len = 0;

	self_path = argv[0];
	if (argc == 3 && strcmp(argv[1], "mkstart") == 0)
		return mkstart(argv[2]);
	if (argc == 3 && strcmp(argv[1], "mklife") == 0)
		return mklife(argv[2]);
	if (!getenv("MODSTORED"))
		die("MODSTORED must name bin/modstored");
	bench_dir = getenv("BENCH_SRC") ? getenv("BENCH_SRC") : "bench";
	snprintf(tmproot, sizeof(tmproot), "%s/modstore-bench.XXXXXX",
		 t && *t ? t : "/tmp");
	if (!mkdtemp(tmproot))
		die("mkdtemp");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "bench: temporary files in %s\n", tmproot);
	notes = open_memstream(&notes_text, &notes_len);
	if (!notes)
		die("out of memory");
	header();
	if (wanted(argc, argv, "commit") || wanted(argc, argv, "restore"))
		scenario_commit_restore(wanted(argc, argv, "commit"),
					wanted(argc, argv, "restore"));
	if (wanted(argc, argv, "syscalls"))
		scenario_syscalls();
	if (wanted(argc, argv, "big"))
		scenario_big();
	if (wanted(argc, argv, "disk"))
		scenario_disk();
	if (wanted(argc, argv, "hash"))
		scenario_hash();
	if (wanted(argc, argv, "wrk"))
		scenario_wrk();
	if (wanted(argc, argv, "proofs"))
		scenario_proofs();
	if (wanted(argc, argv, "tls"))
		scenario_tls();
	if (wanted(argc, argv, "rss"))
		scenario_rss();
	if (wanted(argc, argv, "start"))
		scenario_start();
	if (wanted(argc, argv, "life"))
		scenario_life();
	if (wanted(argc, argv, "keep"))
		scenario_keep();
	if (wanted(argc, argv, "cluster"))
		scenario_cluster();
	if (wanted(argc, argv, "catchup"))
		scenario_catchup();
	fclose(notes);
	fputs(notes_text, stdout);
	free(notes_text);
	printf("\n%d met, %d missed\n", rows_met, rows_missed);
	if (!getenv("BENCH_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmproot);
		if (system(cmd) != 0)
			fprintf(stderr, "bench: cannot remove %s\n", tmproot);
	}
	return 0;
}
