/*
 * e2e_faults.c - every file system step of commit, persist, restore and
 * delete of the real daemon made to fail in turn, through the LD_PRELOAD shim
 * ($FAULTSHIM, tests/shim/faultshim.c): each write, fsync, rename, link,
 * truncate and copy in the daemon fails once, with EIO and with ENOSPC.
 *
 * For each step: the request gets a JSON error (500 io_error or 507
 * disk_full); every file that was there before is there with the same
 * content; anything new is a complete commit file; no temporary or journal
 * is left; the root is unchanged; and the same request, made again, works.
 */
#include "e2e.h"
#include "store.h"
#include "storetest.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_STEPS 400

static struct e2e_daemon d;
static struct e2e_tmp tmp;
static char ctl[600], report[600];
static char mods[2][STORE_HEX_LEN + 1];
static char commits[2][STORE_HEX_LEN + 1];

static int read_report(char *buf, size_t size)
{
	FILE *f = fopen(report, "r");
	size_t n;

	buf[0] = '\0';
	if (!f)
		return 0;
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	return 1;
}

/* The shim's report, read until it starts with word. */
struct report_wait {
	const char *word;
	char buf[64];
};

static int report_says(void *ctx)
{
	struct report_wait *w = ctx;

	return read_report(w->buf, sizeof(w->buf)) &&
	       !strncmp(w->buf, w->word, strlen(w->word));
}

/* Arm the shim to fail step n with err; wait until it says it is armed. */
static int arm(long n, int err)
{
	struct report_wait w = {"armed", ""};
	FILE *f = fopen(ctl, "w");

	if (!f)
		return -1;
	fprintf(f, "%ld %d\n", n, err);
	fclose(f);
	unlink(report);
	kill(d.pid, SIGUSR1);
	return e2e_wait_until(report_says, &w, E2E_WAIT_MS) ? 0 : -1;
}

/* Disarm, waiting until it is; 1 when the failure fired since arming. */
static int disarm(void)
{
	struct report_wait w = {"disarmed", ""};

	kill(d.pid, SIGUSR2);
	if (!e2e_wait_until(report_says, &w, E2E_WAIT_MS)) {
		fprintf(stderr, "the shim did not disarm\n");
		CHECK(0);
		return 0;
	}
	return strstr(w.buf, "fired") != NULL;
}

static void text_of(struct e2e_resp *r, const char *key, char *out)
{
	const char *v = e2e_str(r, key);

	snprintf(out, STORE_HEX_LEN + 1, "%s", v ? v : "");
}

static void root(char out[STORE_HEX_LEN + 1])
{
	struct e2e_resp r;

	e2e_get(&d, "/root", &r);
	E2E_STATUS(&r, 200);
	text_of(&r, "root", out);
	e2e_resp_release(&r);
}

/* A session with a write into each module; its id. */
static void session_with_writes(char sid[STORE_HEX_LEN + 1], unsigned salt)
{
	struct e2e_resp r;
	char path[300];
	unsigned char buf[100];
	int m;

	e2e_post(&d, "/sessions", NULL, &r);
	E2E_STATUS(&r, 201);
	text_of(&r, "id", sid);
	e2e_resp_release(&r);
	for (m = 0; m < 2; m++) {
		memset(buf, (int)(salt * 2 + (unsigned)m + 1), sizeof(buf));
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=%u", sid,
			 mods[m], 4000 + salt * 3 + (unsigned)m * 5000);
		e2e_request(&d, "PUT", path, buf, sizeof(buf), NULL, &r);
		E2E_STATUS(&r, 204);
		e2e_resp_release(&r);
	}
}

enum op { OP_COMMIT, OP_PERSIST, OP_RESTORE };
static const char *const op_name[] = {"commit", "persist", "restore"};

/* Files before must be there after, unchanged; new ones only commits. */
static int same_but_new_commits(const struct st_snap *a,
				const struct st_snap *b)
{
	size_t i, k, bad = 0;

	for (i = 0; i < a->names.n; i++) {
		for (k = 0; k < b->names.n; k++)
			if (!strcmp(a->names.v[i], b->names.v[k]))
				break;
		if (k == b->names.n ||
		    !store_id_equal(&a->hash[i], &b->hash[k])) {
			fprintf(stderr, "changed or gone: %s\n", a->names.v[i]);
			bad++;
		}
	}
	for (k = 0; k < b->names.n; k++) {
		const char *nm = b->names.v[k];

		if (st_names_has(&a->names, nm))
			continue;
		if (strlen(nm) != 2 * STORE_HEX_LEN + 1 ||
		    nm[STORE_HEX_LEN] != '_') {
			fprintf(stderr, "new name: %s\n", nm);
			bad++;
		}
	}
	return bad == 0;
}

/* Fail each step of op in turn with err; the number of steps. */
static long fail_each(enum op op, int err)
{
	struct e2e_resp r;
	struct st_snap before, after;
	struct st_state st;
	char sid[STORE_HEX_LEN + 1], path[300], r0[STORE_HEX_LEN + 1],
	    r1[STORE_HEX_LEN + 1];
	long n;
	int fired, target = 0;

	for (n = 1; n < MAX_STEPS; n++) {
		path[0] = '\0';
		if (op == OP_COMMIT) {
			session_with_writes(sid, (unsigned)n);
			snprintf(path, sizeof(path), "/sessions/%s/commit",
				 sid);
		} else if (op == OP_PERSIST) {
			/* a new commit, so the file has something new */
			session_with_writes(sid, (unsigned)n + 1000);
			snprintf(path, sizeof(path), "/sessions/%s/commit",
				 sid);
			e2e_post(&d, path, NULL, &r);
			E2E_STATUS(&r, 201);
			e2e_resp_release(&r);
			snprintf(path, sizeof(path), "/persist");
		} else {
			root(r0); /* restore the commit that is not current */
			target = !strcmp(r0, commits[0]);
			snprintf(path, sizeof(path), "/restore/%s",
				 commits[target]);
		}
		root(r0);
		if (st_snap_take(tmp.state, &before)) {
			CHECK(0);
			return n;
		}
		if (arm(n, err)) {
			fprintf(stderr, "the shim did not arm\n");
			CHECK(0);
			st_snap_release(&before);
			return n;
		}
		e2e_post(&d, path, NULL, &r);
		fired = disarm();
		if (!fired) {
			/* every step passed: the operation is done */
			CHECK(r.status >= 200 && r.status < 300);
			e2e_resp_release(&r);
			st_snap_release(&before);
			return n - 1;
		}
		if (err == ENOSPC)
			E2E_ERROR(&r, 507, "disk_full");
		else
			E2E_ERROR(&r, 500, "io_error");
		e2e_resp_release(&r);
		root(r1);
		CHECK(!strcmp(r0, r1));
		CHECK(st_snap_take(tmp.state, &after) == 0);
		if (!same_but_new_commits(&before, &after)) {
			fprintf(stderr, "%s: step %ld failing with %s\n",
				op_name[op], n, strerror(err));
			CHECK(0);
		}
		CHECK(st_count_tmp(tmp.state) == 0);
		CHECK(st_state_read(tmp.state, &st) == 0);
		/* a journal left live leads to the state there now */
		CHECK(st_journal_ok(tmp.state, &st.root) >= 0);
		st_state_release(&st);
		st_snap_release(&after);
		st_snap_release(&before);
		/* the same request again works */
		e2e_post(&d, path, NULL, &r);
		CHECK(r.status >= 200 && r.status < 300);
		e2e_resp_release(&r);
		if (t_failed > 20)
			break;
	}
	return n;
}

/* 1 if GET /commits/{c} answers 200, 0 if 404, -1 else. */
static int commit_known(const char *c)
{
	struct e2e_resp r;
	char path[200];
	int known;

	snprintf(path, sizeof(path), "/commits/%s", c);
	e2e_get(&d, path, &r);
	known = r.status == 200 ? 1 : r.status == 404 ? 0 : -1;
	e2e_resp_release(&r);
	return known;
}

/*
 * Fail each step of a delete in turn. A failure before the commit is gone
 * durably answers an error and changes nothing: the commit is there with
 * all its files and the same delete works again. A failure after (removing
 * a file) still answers 204: the commit is gone, and the file nothing
 * needs is left for gc.
 */
static long fail_each_delete(int err)
{
	struct st_snap before, after;
	struct e2e_resp r;
	char sid[STORE_HEX_LEN + 1], path[300], c[STORE_HEX_LEN + 1];
	long n, failed = 0, after_gone = 0;
	int fired;

	for (n = 1; n < MAX_STEPS; n++) {
		/* a persisted commit that is not current: the file and a
		 * module commit file to remove */
		session_with_writes(sid, (unsigned)n + 3000);
		snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
		e2e_post(&d, path, NULL, &r);
		E2E_STATUS(&r, 201);
		text_of(&r, "commit", c);
		e2e_resp_release(&r);
		e2e_post(&d, "/persist", NULL, &r);
		E2E_STATUS(&r, 200);
		e2e_resp_release(&r);
		snprintf(path, sizeof(path), "/restore/%s", commits[0]);
		e2e_post(&d, path, NULL, &r);
		E2E_STATUS(&r, 200);
		e2e_resp_release(&r);
		CHECK(st_snap_take(tmp.state, &before) == 0);
		if (arm(n, err)) {
			CHECK(!"the shim armed");
			st_snap_release(&before);
			return n;
		}
		snprintf(path, sizeof(path), "/commits/%s", c);
		e2e_request(&d, "DELETE", path, NULL, 0, NULL, &r);
		fired = disarm();
		CHECK(st_snap_take(tmp.state, &after) == 0);
		if (!fired || r.status == 204) {
			E2E_STATUS(&r, 204);
			CHECK(commit_known(c) == 0);
			after_gone += fired;
		} else {
			if (err == ENOSPC)
				E2E_ERROR(&r, 507, "disk_full");
			else
				E2E_ERROR(&r, 500, "io_error");
			failed++;
			CHECK(commit_known(c) == 1);
			if (!same_but_new_commits(&before, &after)) {
				fprintf(stderr, "delete: step %ld failing\n",
					n);
				CHECK(0);
			}
			e2e_resp_release(&r);
			e2e_request(&d, "DELETE", path, NULL, 0, NULL, &r);
			E2E_STATUS(&r, 204);
		}
		e2e_resp_release(&r);
		CHECK(st_count_tmp(tmp.state) == 0);
		st_snap_release(&before);
		st_snap_release(&after);
		if (!fired)
			break;
	}
	/* what a failed removal left, gc takes */
	e2e_post(&d, "/gc", NULL, &r);
	E2E_STATUS(&r, 200);
	e2e_resp_release(&r);
	printf("delete: %ld steps failed in turn with %s: %ld answered an "
	       "error, %ld after the commit was gone\n",
	       n - 1, strerror(err), failed, after_gone);
	/* the shim fails no unlink: a removal that fails is unit_errors' */
	CHECK(failed > 0);
	return n - 1;
}

int main(void)
{
	char ctlenv[700], repenv[700], sid[STORE_HEX_LEN + 1];
	const char *env[4] = {e2e_shim_preload(), ctlenv, repenv, NULL};
	struct e2e_resp r;
	enum op op;
	int m, e;
	static const int errs[] = {EIO, ENOSPC};

	if (!env[0]) {
		fprintf(stderr, "FAULTSHIM must name the shim library\n");
		CHECK(0);
		return t_done();
	}
	if (sodium_init() < 0 || e2e_tmp_make(&tmp, "faults"))
		return 1;
	snprintf(ctl, sizeof(ctl), "%s/shim.ctl", tmp.root);
	snprintf(report, sizeof(report), "%s/shim.report", tmp.root);
	snprintf(ctlenv, sizeof(ctlenv), "FAULTSHIM_CTL=%s", ctl);
	snprintf(repenv, sizeof(repenv), "FAULTSHIM_REPORT=%s", report);
	if (e2e_start_env(&d, tmp.state, tmp.log, NULL, env)) {
		CHECK(0);
		return t_done();
	}
	for (m = 0; m < 2; m++) {
		char code[32];

		snprintf(code, sizeof(code), "faults-%d", m);
		e2e_post(&d, "/modules?size=16384", code, &r);
		E2E_STATUS(&r, 201);
		text_of(&r, "id", mods[m]);
		e2e_resp_release(&r);
	}
	for (m = 0; m < 2; m++) {
		char path[200];

		session_with_writes(sid, 500u + (unsigned)m);
		snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
		e2e_post(&d, path, NULL, &r);
		E2E_STATUS(&r, 201);
		text_of(&r, "commit", commits[m]);
		e2e_resp_release(&r);
	}
	for (op = OP_COMMIT; op <= OP_RESTORE; op++)
		for (e = 0; e < 2; e++) {
			long steps = fail_each(op, errs[e]);

			printf("%s: %ld steps failed in turn with %s\n",
			       op_name[op], steps, strerror(errs[e]));
			CHECK(steps > 0);
		}
	for (e = 0; e < 2; e++)
		CHECK(fail_each_delete(errs[e]) > 0);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
	return t_done();
}
