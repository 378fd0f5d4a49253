/*
 * e2e_sigterm.c - SIGTERM while the daemon is busy.
 *
 * A stream of commits from four clients (--auto-persist) when SIGTERM
 * comes: the daemon exits 0, and after a restart every commit that was
 * answered 201 is in the commits store with the same modules, its files
 * are on disk, and the state is one of the commits. A request in flight at
 * SIGTERM is finished while new connections are refused. Then rounds of
 * SIGTERM under load: 16 keep-alive clients opening sessions, writing,
 * reading back, committing and reading module memory. Each round
 * requests must be in flight when SIGTERM is sent, the daemon exits 0,
 * and every commit answered in any round is there after the restart; over
 * the rounds, the daemon must have answered some of them while it stopped
 * (with "Connection: close", which it says only then).
 */
#include "e2e.h"
#include "store.h"
#include "storetest.h"

#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENTS	    4
#define MAX_COMMITS 4096
#define STOP_AFTER  24 /* commits answered before SIGTERM */

static struct e2e_daemon d;
static char mod[STORE_HEX_LEN + 1];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *answered; /* {COMMIT: {MOD: MODCOMMIT}} of every 201 */
static atomic_int nanswered, unexpected, running = CLIENTS;

static void *client_main(void *arg)
{
	int t = (int)(intptr_t)arg, k;
	long status;
	unsigned char buf[64];
	struct e2e_resp r;
	char sid[STORE_HEX_LEN + 1], path[300];

	for (k = 0; k < MAX_COMMITS; k++) {
		e2e_post(&d, "/sessions", NULL, &r);
		if (r.status != 201) {
			if (r.status)
				atomic_fetch_add(&unexpected, 1);
			e2e_resp_release(&r);
			break;
		}
		snprintf(sid, sizeof(sid), "%s",
			 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
		e2e_resp_release(&r);
		e2e_pattern((uint64_t)(t * 100000 + k), 0, buf, sizeof(buf));
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=%d", sid, mod,
			 t * STORE_PAGE_SIZE);
		e2e_request(&d, "PUT", path, buf, sizeof(buf), NULL, &r);
		if (r.status != 204) {
			if (r.status)
				atomic_fetch_add(&unexpected, 1);
			e2e_resp_release(&r);
			break;
		}
		e2e_resp_release(&r);
		snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
		e2e_post(&d, path, NULL, &r);
		if (r.status == 201 && e2e_str(&r, "commit")) {
			pthread_mutex_lock(&lock);
			json_object_set(answered, e2e_str(&r, "commit"),
					json_object_get(r.json, "modules"));
			pthread_mutex_unlock(&lock);
			atomic_fetch_add(&nanswered, 1);
		} else if (r.status) {
			atomic_fetch_add(&unexpected, 1);
			fprintf(stderr, "commit: %ld %s\n", r.status, r.body);
		}
		status = r.status;
		e2e_resp_release(&r);
		if (!status)
			break; /* the daemon is gone */
	}
	atomic_fetch_sub(&running, 1);
	return NULL;
}

/* STOP_AFTER commits answered (or every client gave up). */
static int stream_going(void *ctx)
{
	(void)ctx;
	return atomic_load(&nanswered) >= STOP_AFTER || !atomic_load(&running);
}

static int connect_port(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 1 when a connection to the port ctx is refused. */
static int refused(void *ctx)
{
	int fd = connect_port(*(int *)ctx);

	if (fd < 0)
		return 1;
	close(fd);
	return 0;
}

/*
 * A deploy whose body is half sent when SIGTERM comes: new connections are
 * refused from then on, the request in flight still gets its 201, and the
 * daemon exits 0 after it.
 */
static void test_drain(const char *dir, const char *log)
{
	static const char head[] = "POST /modules HTTP/1.1\r\n"
				   "Host: x\r\nContent-Length: 10\r\n"
				   "Expect: 100-continue\r\n\r\n";
	struct e2e_daemon dd;
	char buf[1024];
	size_t have = 0;
	ssize_t n;
	int fd;

	if (e2e_start(&dd, dir, log, NULL) < 0) {
		CHECK(!"daemon started");
		return;
	}
	fd = connect_port(dd.port);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, head, sizeof(head) - 1) == (ssize_t)(sizeof(head) - 1));
	/* "100 Continue" means the handler has the request: it is in flight. */
	while (have < sizeof(buf) - 1 &&
	       (n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	buf[have] = '\0';
	CHECK(!strncmp(buf, "HTTP/1.1 100", 12));
	have = 0;
	kill(dd.pid, SIGTERM);
	/* It stops accepting: a new connection is refused. */
	CHECK(e2e_wait_until(refused, &dd.port, E2E_WAIT_MS));
	/* The request in flight completes. */
	CHECK(write(fd, "drain-body", 10) == 10);
	while (have < sizeof(buf) - 1 &&
	       (n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n") && strstr(buf, "}"))
			break;
	}
	buf[have] = '\0';
	CHECK(!strncmp(buf, "HTTP/1.1 201", 12));
	if (strncmp(buf, "HTTP/1.1 201", 12))
		fprintf(stderr, "in flight got: %.200s\n", buf);
	close(fd);
	CHECK(e2e_stop(&dd, SIGTERM) == 0);
}

/*
 * Restart the daemon on dir: every commit of want ({COMMIT: {MOD:
 * MODCOMMIT}}) is in the commits store with the same modules, the files
 * are whole, and the state is a commit of the store. Stops it again.
 */
static void check_restart(const char *dir, const char *log, json_t *want)
{
	struct e2e_daemon rd;
	struct e2e_resp r;
	struct st_state st;
	const char *k;
	json_t *v;
	char h[STORE_HEX_LEN + 1], path[200];
	int missing = 0, differ = 0;

	if (e2e_start(&rd, dir, log, NULL) < 0) {
		CHECK(!"daemon restarted");
		return;
	}
	e2e_get(&rd, "/commits", &r);
	E2E_STATUS(&r, 200);
	json_object_foreach(want, k, v)
	{
		json_t *got = json_object_get(r.json, k);

		if (!got)
			missing++;
		else if (!json_equal(got, v))
			differ++;
	}
	if (missing || differ)
		fprintf(stderr,
			"after restart: %d of %zu commits missing, "
			"%d differ\n",
			missing, json_object_size(want), differ);
	CHECK(missing == 0);
	CHECK(differ == 0);
	e2e_resp_release(&r);
	json_object_foreach(want, k, v)
	{
		snprintf(path, sizeof(path), "/commits/%s", k);
		e2e_get(&rd, path, &r);
		if (r.status != 200 || !json_equal(r.json, v))
			missing++;
		e2e_resp_release(&r);
		if (missing)
			break;
	}
	CHECK(missing == 0);

	/* The directory is whole, and its state is a known commit. */
	CHECK(st_state_read(dir, &st) == 0);
	store_id_hex(&st.root, h);
	st_state_release(&st);
	e2e_get(&rd, "/root", &r);
	E2E_STATUS(&r, 200);
	CHECK(e2e_str(&r, "root") && !strcmp(e2e_str(&r, "root"), h));
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/commits/%s", h);
	e2e_get(&rd, path, &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	CHECK(e2e_stop(&rd, SIGTERM) == 0);
}

/* --- SIGTERM under load --------------------------------------------------- */

#define BUSY_CLIENTS 16
#define BUSY_ROUNDS  5
#define BUSY_LOOPS   100000 /* a bound on a client, never reached */

static struct e2e_daemon bd;
static char bmod[STORE_HEX_LEN + 1];
static json_t *banswered;      /* every commit answered 201, all rounds */
static atomic_int signalled;   /* set just before SIGTERM is sent */
static atomic_int warm;	       /* clients with a commit answered */
static atomic_int bcommits;    /* commits answered 201 this round */
static atomic_int stopping;    /* answers received once signalled */
static atomic_int outstanding; /* sent before the signal, ended after */
static atomic_int closed;      /* answers of a stopping daemon */
static atomic_int held;	       /* of those, sent before the signal */
static atomic_int cut;	       /* in flight at the signal, unanswered */
static atomic_int bunexpected;
static atomic_long brequests, bconnects;

/*
 * One request of a busy client, expecting status want. Counts it: sent
 * before SIGTERM and answered or cut off after, it was in flight when the
 * signal was sent; an answer with "Connection: close" comes from a daemon
 * that has begun to stop (it says "close" only then), and is counted again
 * when the request was sent before SIGTERM. "close" before SIGTERM was
 * sent is wrong. 1 while the client goes on, 0 when the daemon is gone or
 * was wrong.
 */
static int busy_request(struct e2e_conn *c, const char *method,
			const char *path, const void *body, size_t len,
			long want, struct e2e_resp *r)
{
	int before = !atomic_load(&signalled), after, closing;
	char v[32];

	e2e_conn_request(c, method, path, body, len, r);
	after = atomic_load(&signalled);
	if (before && after)
		atomic_fetch_add(&outstanding, 1);
	if (!r->status && after) {
		/* stopped: the connection refused, or closed on the request */
		if (before)
			atomic_fetch_add(&cut, 1);
		return 0;
	}
	closing = e2e_header(r, "Connection", v, sizeof(v)) &&
		  !strcasecmp(v, "close");
	if (r->status != want || (closing && !after)) {
		atomic_fetch_add(&bunexpected, 1);
		fprintf(
		    stderr, "busy %s %s: %ld (curl %d)%s, want %ld: %.200s\n",
		    method, path, r->status, r->curl_err,
		    closing ? " closing" : "", want, r->body ? r->body : "");
		return 0;
	}
	atomic_fetch_add(&brequests, 1);
	if (after)
		atomic_fetch_add(&stopping, 1);
	if (closing)
		atomic_fetch_add(&closed, 1);
	if (before && closing)
		atomic_fetch_add(&held, 1);
	return 1;
}

/*
 * A keep-alive client until the daemon is gone: a session, a write to its
 * own page, the write read back, a commit, the module's memory and root.
 */
static void *busy_main(void *arg)
{
	int t = (int)(intptr_t)arg, k, warmed = 0, go = 1;
	struct e2e_conn *c = e2e_conn_new(&bd);
	unsigned char buf[64];
	struct e2e_resp r;
	char sid[STORE_HEX_LEN + 1], path[300];

	if (!c) {
		atomic_fetch_add(&bunexpected, 1);
		return NULL;
	}
	for (k = 0; k < BUSY_LOOPS && go; k++) {
		if (!busy_request(c, "POST", "/sessions", NULL, 0, 201, &r)) {
			e2e_resp_release(&r);
			break;
		}
		snprintf(sid, sizeof(sid), "%s",
			 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
		e2e_resp_release(&r);
		e2e_pattern((uint64_t)(t * 1000003 + k), 0, buf, sizeof(buf));
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=%d", sid, bmod,
			 t * STORE_PAGE_SIZE);
		go = busy_request(c, "PUT", path, buf, sizeof(buf), 204, &r);
		e2e_resp_release(&r);
		if (!go)
			break;
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=%d&length=%zu",
			 sid, bmod, t * STORE_PAGE_SIZE, sizeof(buf));
		go = busy_request(c, "GET", path, NULL, 0, 200, &r);
		if (go &&
		    (r.len != sizeof(buf) || memcmp(r.body, buf, r.len))) {
			fprintf(stderr, "busy read: not the bytes written\n");
			atomic_fetch_add(&bunexpected, 1);
			go = 0;
		}
		e2e_resp_release(&r);
		if (!go)
			break;
		snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
		go = busy_request(c, "POST", path, NULL, 0, 201, &r);
		if (go && e2e_str(&r, "commit")) {
			pthread_mutex_lock(&lock);
			json_object_set(banswered, e2e_str(&r, "commit"),
					json_object_get(r.json, "modules"));
			pthread_mutex_unlock(&lock);
			atomic_fetch_add(&bcommits, 1);
			if (!warmed++)
				atomic_fetch_add(&warm, 1);
		}
		e2e_resp_release(&r);
		if (!go)
			break;
		snprintf(path, sizeof(path), "/modules/%s/memory", bmod);
		go = busy_request(c, "GET", path, NULL, 0, 200, &r);
		e2e_resp_release(&r);
		if (!go)
			break;
		go = busy_request(c, "GET", "/root", NULL, 0, 200, &r);
		e2e_resp_release(&r);
	}
	atomic_fetch_add(&bconnects, e2e_conn_connects(c));
	e2e_conn_free(c);
	return NULL;
}

/* Every client has a commit answered, and the round's share is done. */
static int busy_going(void *ctx)
{
	int round = *(int *)ctx;

	return atomic_load(&warm) == BUSY_CLIENTS &&
	       atomic_load(&bcommits) >= BUSY_CLIENTS * (round + 1);
}

/*
 * Rounds of SIGTERM while 16 keep-alive clients keep the daemon busy, a
 * little later in each round. Requests must be in flight when the signal
 * is sent (a round whose clients were idle fails), the daemon exits 0,
 * and every commit answered so far is there after the restart. Over the
 * rounds the daemon must have answered some requests while it stopped.
 */
static void test_busy_stop(const char *root)
{
	static const char *const args[] = {"--auto-persist", NULL};
	pthread_t th[BUSY_CLIENTS];
	char dir[600], log[600];
	struct e2e_resp r;
	int round, i, rc, closing = 0;

	snprintf(dir, sizeof(dir), "%s/busy", root);
	snprintf(log, sizeof(log), "%s/busy.log", root);
	banswered = json_object();
	for (round = 0; round < BUSY_ROUNDS && !t_failed; round++) {
		if (e2e_start(&bd, dir, log, args) < 0) {
			CHECK(!"daemon started");
			break;
		}
		if (!round) {
			e2e_post(&bd, "/modules", "busy module", &r);
			E2E_STATUS(&r, 201);
			snprintf(bmod, sizeof(bmod), "%s",
				 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
			e2e_resp_release(&r);
		}
		atomic_store(&signalled, 0);
		atomic_store(&warm, 0);
		atomic_store(&bcommits, 0);
		atomic_store(&stopping, 0);
		atomic_store(&outstanding, 0);
		atomic_store(&closed, 0);
		atomic_store(&held, 0);
		atomic_store(&cut, 0);
		atomic_store(&brequests, 0);
		atomic_store(&bconnects, 0);
		for (i = 0; i < BUSY_CLIENTS; i++)
			pthread_create(&th[i], NULL, busy_main,
				       (void *)(intptr_t)i);
		CHECK(e2e_wait_until(busy_going, &round, E2E_WAIT_MS));
		atomic_store(&signalled, 1);
		rc = e2e_stop(&bd, SIGTERM);
		for (i = 0; i < BUSY_CLIENTS; i++)
			pthread_join(th[i], NULL);
		printf("busy stop %d: %d commits answered; %d requests in "
		       "flight at SIGTERM, %d of them never answered; %d "
		       "answers after it, %d by the stopping daemon, %d of "
		       "those sent before SIGTERM; %ld requests over %ld "
		       "connections; exit %d\n",
		       round, atomic_load(&bcommits), atomic_load(&outstanding),
		       atomic_load(&cut), atomic_load(&stopping),
		       atomic_load(&closed), atomic_load(&held),
		       atomic_load(&brequests), atomic_load(&bconnects), rc);
		CHECK(rc == 0);
		CHECK(atomic_load(&bunexpected) == 0);
		/* the signal was sent while the clients were at work */
		CHECK(atomic_load(&outstanding) > 0);
		closing += atomic_load(&closed);
		/* the clients kept their connections alive */
		CHECK(atomic_load(&bconnects) * 4 <= atomic_load(&brequests));
		check_restart(dir, log, banswered);
	}
	/*
	 * The daemon answered through its stop. Not in every round: it may
	 * react late and finish every request sent before the signal, or
	 * find none in its handlers at that instant (one round in a few
	 * hundred) and close the connections with their requests unread.
	 */
	CHECK(closing > 0);
	json_decref(banswered);
}

int main(void)
{
	static const char *const args[] = {"--auto-persist", NULL};
	pthread_t th[CLIENTS];
	struct e2e_tmp tmp;
	struct e2e_resp r;
	int i, rc;

	if (sodium_init() < 0 || e2e_tmp_make(&tmp, "sigterm") < 0)
		return 1;
	answered = json_object();
	if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
		CHECK(!"daemon started");
		return t_done();
	}
	e2e_post(&d, "/modules", "sigterm module", &r);
	E2E_STATUS(&r, 201);
	snprintf(mod, sizeof(mod), "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);

	for (i = 0; i < CLIENTS; i++)
		pthread_create(&th[i], NULL, client_main, (void *)(intptr_t)i);
	CHECK(e2e_wait_until(stream_going, NULL, E2E_WAIT_MS));
	rc = e2e_stop(&d, SIGTERM); /* while the clients go on */
	for (i = 0; i < CLIENTS; i++)
		pthread_join(th[i], NULL);
	CHECK(rc == 0);
	CHECK(atomic_load(&unexpected) == 0);
	printf("%d commits answered 201 before the daemon stopped\n",
	       atomic_load(&nanswered));
	CHECK(json_object_size(answered) >= STOP_AFTER);
	check_restart(tmp.state, tmp.log, answered);

	test_drain(tmp.state, tmp.log);
	test_busy_stop(tmp.root);
	json_decref(answered);
	e2e_tmp_done(&tmp);
	return t_done();
}
