/*
 * e2e_sigterm.c - SIGTERM in the middle of a stream of commits from four
 * clients (--auto-persist): the daemon exits 0, and after a restart every
 * commit that was answered 201 is in the commits store with the same
 * modules, its files are on disk, and the state is one of the commits.
 * Then: a request in flight at SIGTERM is finished while new connections
 * are refused, and a stop held halfway (through $FAULTSHIM) while clients
 * keep the HTTP workers busy still exits 0.
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

static atomic_int hammer_stop;

/* GET /health over one keep-alive connection until it closes. */
static void *hammer_main(void *arg)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[1024];
	int fd = connect_port((int)(intptr_t)arg);

	if (fd < 0)
		return NULL;
	while (!atomic_load(&hammer_stop)) {
		if (write(fd, req, sizeof(req) - 1) !=
		    (ssize_t)(sizeof(req) - 1))
			break;
		if (read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
	close(fd);
	return NULL;
}

/*
 * SIGTERM while 16 connections keep every HTTP worker awake, with the
 * main thread held 200 ms in each epoll_ctl(EPOLL_CTL_DEL) by the shim:
 * the stop must not race the workers for the listening socket (it once
 * aborted in libmicrohttpd's MHD_quiesce_daemon). Exit status 0.
 */
static void test_busy_stop(const char *dir, const char *log)
{
	const char *env[3] = {e2e_shim_preload(), "FAULTSHIM_EPOLL_DEL_MS=200",
			      NULL};
	pthread_t th[16];
	struct e2e_daemon dd;
	int i, rc;

	if (!env[0]) {
		fprintf(stderr, "FAULTSHIM must name the shim library\n");
		CHECK(!"FAULTSHIM set");
		return;
	}
	if (e2e_start_env(&dd, dir, log, NULL, env) < 0) {
		CHECK(!"daemon started");
		return;
	}
	atomic_store(&hammer_stop, 0);
	for (i = 0; i < 16; i++)
		pthread_create(&th[i], NULL, hammer_main,
			       (void *)(intptr_t)dd.port);
	usleep(100000);
	rc = e2e_stop(&dd, SIGTERM);
	atomic_store(&hammer_stop, 1);
	for (i = 0; i < 16; i++)
		pthread_join(th[i], NULL);
	CHECK(rc == 0);
	if (rc)
		fprintf(stderr, "busy stop: exit status %d\n", rc);
}

int main(void)
{
	static const char *const args[] = {"--auto-persist", NULL};
	pthread_t th[CLIENTS];
	struct e2e_tmp tmp;
	struct e2e_resp r;
	struct st_state st;
	const char *k;
	json_t *v;
	char h[STORE_HEX_LEN + 1], path[200];
	int i, missing = 0, differ = 0, rc;

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

	/* Restart: every answered commit is there, with its modules. */
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"daemon restarted");
		return t_done();
	}
	e2e_get(&d, "/commits", &r);
	E2E_STATUS(&r, 200);
	json_object_foreach(answered, k, v)
	{
		json_t *got = json_object_get(r.json, k);

		if (!got)
			missing++;
		else if (!json_equal(got, v))
			differ++;
	}
	CHECK(missing == 0);
	CHECK(differ == 0);
	e2e_resp_release(&r);
	json_object_foreach(answered, k, v)
	{
		snprintf(path, sizeof(path), "/commits/%s", k);
		e2e_get(&d, path, &r);
		if (r.status != 200 || !json_equal(r.json, v))
			missing++;
		e2e_resp_release(&r);
		if (missing)
			break;
	}
	CHECK(missing == 0);

	/* The directory is whole, and its state is a known commit. */
	CHECK(st_state_read(tmp.state, &st) == 0);
	store_id_hex(&st.root, h);
	st_state_release(&st);
	e2e_get(&d, "/root", &r);
	E2E_STATUS(&r, 200);
	CHECK(e2e_str(&r, "root") && !strcmp(e2e_str(&r, "root"), h));
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/commits/%s", h);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);

	CHECK(e2e_stop(&d, SIGTERM) == 0);
	test_drain(tmp.state, tmp.log);
	test_busy_stop(tmp.state, tmp.log);
	json_decref(answered);
	e2e_tmp_done(&tmp);
	return t_done();
}
