/*
 * e2e_security.c - the daemon's limits against hostile clients, with raw
 * sockets: an idle connection is closed after --connection-timeout; a
 * client that trickles its headers from one address holds at most
 * --max-connections-per-ip connections while others are served; when
 * --max-connections idle connections fill the daemon they time out and it
 * serves again; an oversize header block is refused and the daemon goes
 * on. The state directory is 0700 and every file in it 0600.
 */
#include "e2e.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct e2e_daemon d;

/* A TCP connection to the daemon from source address src (127.x.y.z). */
static int connect_from(const char *src)
{
	struct sockaddr_in a, b;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&b, 0, sizeof(b));
	b.sin_family = AF_INET;
	inet_pton(AF_INET, src, &b.sin_addr);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)d.port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (bind(fd, (struct sockaddr *)&b, sizeof(b)) < 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 1 when the daemon closed fd within ms milliseconds (EOF or reset). */
static int closed_within(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	char buf[4096];
	ssize_t n;

	while (ms > 0) {
		if (poll(&p, 1, 100) == 1) {
			n = recv(fd, buf, sizeof(buf), 0);
			if (n <= 0)
				return 1;
			continue; /* an answer; wait for the close */
		}
		ms -= 100;
	}
	return 0;
}

/* GET /health with a fresh connection: its status, 0 if none. */
static long health(void)
{
	struct e2e_resp r;
	long st;

	e2e_get(&d, "/health", &r);
	st = r.status;
	e2e_resp_release(&r);
	return st;
}

static int health_ok(void *ctx)
{
	(void)ctx;
	return health() == 200;
}

/* GET /health until it answers 200, for at most ms; 1 if it did. */
static int health_within(int ms)
{
	return e2e_wait_until(health_ok, NULL, ms);
}

static void test_permissions(void)
{
	struct stat st;
	struct dirent *de;
	char path[1200];
	DIR *dir;
	int files = 0, bad = 0;

	CHECK(stat(d.dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	dir = opendir(d.dir);
	CHECK(dir != NULL);
	while (dir && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", d.dir, de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		files++;
		if ((st.st_mode & 0777) != 0600) {
			fprintf(stderr, "%s has mode %o\n", path,
				st.st_mode & 0777);
			bad++;
		}
	}
	if (dir)
		closedir(dir);
	printf("permissions: %d files, %d not 0600\n", files, bad);
	CHECK(files > 4 && bad == 0);
}

static atomic_int trickle_stop;

struct trickler {
	int fd;
	int closed; /* the daemon closed it (seen by still_open()) */
	pthread_t th;
};

/* Send one header byte every 300 ms until told to stop. */
static void *trickle(void *arg)
{
	struct trickler *t = arg;
	static const char head[] =
	    "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
	char c = 'a';

	if (send(t->fd, head, sizeof(head) - 1, MSG_NOSIGNAL) < 0)
		return NULL;
	while (!atomic_load(&trickle_stop)) {
		if (send(t->fd, &c, 1, MSG_NOSIGNAL) < 0)
			break;
		usleep(300000); /* the slowness is the test, not a wait */
	}
	return NULL;
}

/* The tricklers the daemon has not closed (EOF or reset) so far. */
static int still_open(struct trickler *tr, int n)
{
	struct pollfd p;
	char buf[4096];
	int i, open = 0;

	for (i = 0; i < n; i++) {
		p.fd = tr[i].fd;
		p.events = POLLIN;
		p.revents = 0;
		while (!tr[i].closed && poll(&p, 1, 0) == 1)
			if (recv(tr[i].fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
				tr[i].closed = 1;
		open += !tr[i].closed;
	}
	return open;
}

static int at_most_4_open(void *ctx)
{
	return still_open(ctx, 10) <= 4;
}

int main(void)
{
	struct e2e_tmp tmp;
	struct e2e_resp r;
	struct trickler tr[12];
	char code[128], *big;
	const char *args[] = {"--connection-timeout",
			      "2",
			      "--max-connections-per-ip",
			      "4",
			      "--max-connections",
			      "12",
			      NULL};
	int fds[16], i, open_conns, slow_served;
	size_t bigsize = 300 * 1024;

	signal(SIGPIPE, SIG_IGN);
	if (e2e_tmp_make(&tmp, "security") ||
	    e2e_start(&d, tmp.state, tmp.log, args)) {
		CHECK(0);
		return t_done();
	}

	/* files of every kind exist, then their modes */
	e2e_post(&d, "/modules?size=8192", "security-module", &r);
	E2E_STATUS(&r, 201);
	e2e_resp_release(&r);
	e2e_post(&d, "/sessions", NULL, &r);
	E2E_STATUS(&r, 201);
	snprintf(code, sizeof(code), "/sessions/%.*s/commit", 64,
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);
	e2e_post(&d, code, NULL, &r);
	E2E_STATUS(&r, 201);
	e2e_resp_release(&r);
	e2e_post(&d, "/persist", NULL, &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	test_permissions();

	/* an idle connection is closed after the timeout */
	fds[0] = connect_from("127.0.0.3");
	CHECK(fds[0] >= 0);
	CHECK(closed_within(fds[0], 15000));
	close(fds[0]);

	/* one address trickling headers holds at most 4 connections */
	atomic_store(&trickle_stop, 0);
	for (i = 0; i < 10; i++) {
		tr[i].fd = connect_from("127.0.0.2");
		tr[i].closed = 0;
		CHECK(tr[i].fd >= 0);
		pthread_create(&tr[i].th, NULL, trickle, &tr[i]);
	}
	/* the daemon closes those beyond the 4 an address may hold */
	CHECK(e2e_wait_until(at_most_4_open, tr, 10000));
	open_conns = still_open(tr, 10);
	slow_served = health_within(5000);
	printf("trickling client: %d of 10 connections kept open; others "
	       "served: %s\n",
	       open_conns, slow_served ? "yes" : "no");
	CHECK(open_conns <= 4);
	CHECK(slow_served);
	atomic_store(&trickle_stop, 1);
	for (i = 0; i < 10; i++) {
		pthread_join(tr[i].th, NULL);
		close(tr[i].fd);
	}

	/* idle connections filling the daemon time out; it serves again */
	for (i = 0; i < 16; i++) {
		char src[32];

		snprintf(src, sizeof(src), "127.0.1.%d", i + 1);
		fds[i] = connect_from(src);
	}
	CHECK(health_within(15000));
	for (i = 0; i < 16; i++)
		if (fds[i] >= 0)
			close(fds[i]);

	/* an oversize header block is refused; the daemon goes on */
	big = malloc(bigsize + 1);
	if (big) {
		const char *hdrs[2];
		char *h = malloc(bigsize + 16);

		memset(big, 'x', bigsize);
		big[bigsize] = '\0';
		if (h) {
			snprintf(h, bigsize + 16, "X-Big: %s", big);
			hdrs[0] = h;
			hdrs[1] = NULL;
			e2e_request(&d, "GET", "/root", NULL, 0, hdrs, &r);
			printf("oversize header block: status %ld\n", r.status);
			CHECK(r.status == 431 || r.status == 413 ||
			      r.status == 400);
			e2e_resp_release(&r);
			free(h);
		}
		free(big);
	}
	CHECK(health() == 200);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
	return t_done();
}
