/*
 * e2e.h - helpers of the end-to-end tests: start the real modstored
 * ($MODSTORED, default bin/modstored) on a free loopback port, talk to it
 * with libcurl, stop it with a signal, measure it.
 *
 * Every daemon started here dies with the test (PR_SET_PDEATHSIG) and is
 * killed at exit if still running. Requests may be made from many threads
 * at once once e2e_start() has run in the main thread.
 */
#ifndef E2E_H
#define E2E_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "t.h"

struct e2e_daemon {
	pid_t pid;
	int port;
	char url[64];	   /* "http://127.0.0.1:PORT" */
	int out_fd;	   /* read end of its standard output */
	char dir[512];	   /* --dir */
	char log[512];	   /* its standard error, appended */
	const char *token; /* sent as Authorization: Bearer when set */
	/* HTTPS: set after e2e_start(); NULL for libcurl's defaults */
	const char *cacert; /* CA file that checks the daemon's certificate */
	const char *cert;   /* client certificate (PEM) */
	const char *key;    /* its private key (PEM) */
};

/* An answer. body is NUL-terminated; json is set when the body parses. */
struct e2e_resp {
	long status; /* 0 when the request failed (curl_err says why) */
	int curl_err;
	char *body;
	size_t len;
	char *headers; /* raw header block of the final answer */
	size_t hlen;
	json_t *json;
};

/*
 * Start the daemon on dir with --listen 127.0.0.1:0 and the extra
 * arguments args (NULL-terminated, may be NULL); its standard error goes
 * to log (appended). Waits for "listening on URL" on its standard output.
 * 0, or -1 with a message.
 */
int e2e_start(struct e2e_daemon *d, const char *dir, const char *log,
	      const char *const *args);

/* The same with environment variables "NAME=VALUE" (NULL-terminated). */
int e2e_start_env(struct e2e_daemon *d, const char *dir, const char *log,
		  const char *const *args, const char *const *env);

/*
 * Send sig and wait for the daemon: its exit status, 128 + signal when a
 * signal ended it, -1 on error.
 */
int e2e_stop(struct e2e_daemon *d, int sig);

/*
 * "LD_PRELOAD=$FAULTSHIM", an entry for e2e_start_env()'s env that loads
 * the fault shim (tests/shim/faultshim.c) into the daemon; NULL when
 * FAULTSHIM does not name a readable file. A static buffer.
 */
const char *e2e_shim_preload(void);

/* Run $MODSTORED with args and capture its standard output; exit status. */
int e2e_run(const char *const *args, char *out, size_t outsize);

/*
 * One request. path is appended to the URL; body may be NULL (no body);
 * headers is NULL or a NULL-terminated list of "Name: value". 0 when an
 * answer came (out->status), -1 otherwise. Release out.
 */
int e2e_request(const struct e2e_daemon *d, const char *method,
		const char *path, const void *body, size_t len,
		const char *const *headers, struct e2e_resp *out);

int e2e_get(const struct e2e_daemon *d, const char *path, struct e2e_resp *out);
int e2e_post(const struct e2e_daemon *d, const char *path, const char *body,
	     struct e2e_resp *out);

/* Fill buf with the bytes at offset off of a stream of the given seed. */
void e2e_pattern(uint64_t seed, uint64_t off, unsigned char *buf, size_t len);

/*
 * Stream len bytes of e2e_pattern(seed) as the body of a request, never
 * holding them whole.
 */
int e2e_upload(const struct e2e_daemon *d, const char *method, const char *path,
	       uint64_t seed, uint64_t len, struct e2e_resp *out);

/*
 * GET path, passing the body to fn chunk by chunk (not kept in out->body).
 * fn returns 0 to go on.
 */
typedef int (*e2e_sink_fn)(void *ctx, const unsigned char *data, size_t len);
int e2e_download(const struct e2e_daemon *d, const char *path, e2e_sink_fn fn,
		 void *ctx, struct e2e_resp *out);

/*
 * A keep-alive client: its requests go over one connection, which libcurl
 * opens again only when the daemon closed it. One thread at a time uses
 * it; d is borrowed and must outlive it. e2e_conn_new() needs e2e_start()
 * to have run (libcurl is set up there). Free with e2e_conn_free().
 */
struct e2e_conn;
struct e2e_conn *e2e_conn_new(const struct e2e_daemon *d);
void e2e_conn_free(struct e2e_conn *conn);

/* A request as e2e_request() makes it (no extra headers), over conn. */
int e2e_conn_request(struct e2e_conn *conn, const char *method,
		     const char *path, const void *body, size_t len,
		     struct e2e_resp *out);

/* The connections conn has opened so far (1 while it kept one alive). */
long e2e_conn_connects(const struct e2e_conn *conn);

void e2e_resp_release(struct e2e_resp *r);

/* A header of the answer (case-insensitive name) into buf, or NULL. */
const char *e2e_header(const struct e2e_resp *r, const char *name, char *buf,
		       size_t size);

/* A string member of the JSON answer, or NULL. */
const char *e2e_str(const struct e2e_resp *r, const char *key);

/*
 * Wait for a condition instead of sleeping a fixed time: call cond(ctx)
 * until it returns non-zero, pausing 1 ms between calls at first and up to
 * 20 ms later on, for at most timeout_ms milliseconds. 1 when the
 * condition held, 0 when the deadline came first (cond is called once
 * more at the deadline).
 */
typedef int (*e2e_cond_fn)(void *ctx);
int e2e_wait_until(e2e_cond_fn cond, void *ctx, int timeout_ms);

/*
 * The deadline of a wait for something that should happen at once: a
 * safety net against a hang, not a timing assertion, so generous enough
 * for sanitizers and valgrind.
 */
#define E2E_WAIT_MS 30000

/* A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"), or 0. */
uint64_t e2e_proc_kib(pid_t pid, const char *field);

/* 1 when process pid runs with a sanitizer runtime (its own allocator). */
int e2e_sanitized(pid_t pid);

/* The captured run of one command (the CLI). */
struct e2e_cmd {
	int status; /* exit status, 128 + signal, -1 when not run */
	char *out;  /* standard output, NUL-terminated */
	size_t outlen;
	char *err; /* standard error, NUL-terminated */
};
/* The CLI to test: $MODSTORE_CLI, else bin/modstore. */
const char *e2e_cli_bin(void);
/*
 * Run argv (NULL-terminated, argv[0] the program) with MODSTORE_URL url
 * and MODSTORE_TOKEN token (NULL: unset), standard input from in (NULL:
 * /dev/null), its output captured through files in dir. 0, or -1 when it
 * could not be run; r is then to be released either way.
 */
int e2e_cmd_run(const char *dir, const char *url, const char *token,
		const char *in, const char *const *argv, struct e2e_cmd *r);
void e2e_cmd_release(struct e2e_cmd *r);

/* CHECK the status, printing method, status and body when it differs. */
#define E2E_STATUS(r, want)                                                    \
	e2e_check_status(__FILE__, __LINE__, (r), (want), NULL)
/* CHECK status and error code of a JSON error answer. */
#define E2E_ERROR(r, want, code)                                               \
	e2e_check_status(__FILE__, __LINE__, (r), (want), (code))
int e2e_check_status(const char *file, int line, const struct e2e_resp *r,
		     long want, const char *code);

/*
 * Certificates for HTTPS tests, made with certtool (gnutls-bin) in dir:
 * ca.pem (ca.key), server.pem/server.key (127.0.0.1 and localhost,
 * signed by ca), client.pem/client.key (signed by ca), other-ca.pem and
 * other-client.pem/.key (a client signed by other-ca), expired-client.*
 * and expired-server.* (signed by ca, valid only in 2020), and the
 * certificates of cluster nodes, a server's (127.0.0.1, localhost) that
 * is also a client's: node.pem/.key (signed by ca) and other-node.pem/.key
 * (signed by other-ca). 0, or -1 with a message.
 */
int e2e_certs_make(const char *dir);

/* A temporary tree for one test: root/state and root/modstored.log. */
struct e2e_tmp {
	char *root;
	char state[512];
	char log[512];
};
int e2e_tmp_make(struct e2e_tmp *t, const char *tag);
/* Remove it when the test passed; keep it (and say where) when not. */
void e2e_tmp_done(struct e2e_tmp *t);

#endif /* E2E_H */
