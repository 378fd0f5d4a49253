/*
 * e2e_concurrent.c - 16 clients at once, each opening sessions, writing
 * its own page, reading it back and committing with If-Match on the base
 * its session started from (retrying on 412). Every commit builds on the
 * previous one, so the final memory of every module is known: the test
 * recomputes every module commit id and the root from it and compares them
 * with the server's answers and with the files on disk.
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

#define CLIENTS 16
#define ROUNDS	3
#define MODS	4
#define PAGES	16 /* pages per module; client t owns page t */
#define MEM	(PAGES * STORE_PAGE_SIZE)

static struct e2e_daemon d;
static char mods[MODS][STORE_HEX_LEN + 1];
static atomic_int failures, retries, commits;

struct client {
	int t;
	pthread_t th;
	int ok;
};

static int fail(const char *what, const struct e2e_resp *r)
{
	fprintf(stderr, "client: %s: status %ld: %.200s\n", what, r->status,
		r->body ? r->body : "");
	atomic_fetch_add(&failures, 1);
	return -1;
}

/* One round of client t: until its commit is the next state. */
static int round_once(int t, int k)
{
	unsigned char page[STORE_PAGE_SIZE];
	struct e2e_resp r;
	char sid[STORE_HEX_LEN + 1], base[STORE_HEX_LEN + 1];
	char path[300], hdr[100];
	const char *mod = mods[t % MODS];
	int rc = -1;

	e2e_pattern((uint64_t)(t * 100 + k), 0, page, sizeof(page));
	for (int attempt = 0;; attempt++) {
		if (attempt == 10000) {
			fprintf(stderr, "client %d: no commit in %d tries\n", t,
				attempt);
			atomic_fetch_add(&failures, 1);
			return -1;
		}
		e2e_post(&d, "/sessions", NULL, &r);
		if (r.status != 201 || !e2e_str(&r, "id")) {
			fail("open a session", &r);
			e2e_resp_release(&r);
			return -1;
		}
		snprintf(sid, sizeof(sid), "%s", e2e_str(&r, "id"));
		if (e2e_str(&r, "base")) {
			snprintf(base, sizeof(base), "%s", e2e_str(&r, "base"));
		} else {
			struct store_id empty;

			crypto_generichash(empty.b, sizeof(empty.b), NULL, 0,
					   NULL, 0);
			store_id_hex(&empty, base);
		}
		e2e_resp_release(&r);

		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=%d", sid, mod,
			 t * STORE_PAGE_SIZE);
		e2e_request(&d, "PUT", path, page, sizeof(page), NULL, &r);
		if (r.status != 204) {
			fail("write", &r);
			goto out;
		}
		e2e_resp_release(&r);
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=%d&length=%d",
			 sid, mod, t * STORE_PAGE_SIZE, STORE_PAGE_SIZE);
		e2e_get(&d, path, &r);
		if (r.status != 200 || r.len != sizeof(page) ||
		    memcmp(r.body, page, sizeof(page))) {
			fail("read back", &r);
			goto out;
		}
		e2e_resp_release(&r);

		snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
		snprintf(hdr, sizeof(hdr), "If-Match: \"%s\"", base);
		{
			const char *const h[] = {hdr, NULL};

			e2e_request(&d, "POST", path, NULL, 0, h, &r);
		}
		if (r.status == 201) {
			atomic_fetch_add(&commits, 1);
			rc = 0;
			goto out;
		}
		if (r.status != 412) {
			fail("commit", &r);
			goto out;
		}
		/* Someone committed first: drop and start again. */
		e2e_resp_release(&r);
		atomic_fetch_add(&retries, 1);
		snprintf(path, sizeof(path), "/sessions/%s", sid);
		e2e_request(&d, "DELETE", path, NULL, 0, NULL, &r);
		if (r.status != 204) {
			fail("drop", &r);
			goto out;
		}
		e2e_resp_release(&r);
	}
out:
	e2e_resp_release(&r);
	return rc;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	int k;

	c->ok = 1;
	for (k = 0; k < ROUNDS; k++)
		if (round_once(c->t, k) < 0)
			c->ok = 0;
	return NULL;
}

int main(void)
{
	static const char *const args[] = {"--max-sessions", "64", NULL};
	static unsigned char mem[MODS][MEM];
	struct client cl[CLIENTS];
	struct store_pair pairs[MODS];
	struct store_id root, got;
	struct e2e_tmp tmp;
	struct e2e_resp r;
	struct st_state st;
	char path[400], code[32], h[STORE_HEX_LEN + 1];
	int i, ok = 1;

	if (sodium_init() < 0 || e2e_tmp_make(&tmp, "concurrent") < 0)
		return 1;
	if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
		CHECK(!"daemon started");
		return t_done();
	}
	for (i = 0; i < MODS; i++) {
		snprintf(code, sizeof(code), "concurrent-%d", i);
		snprintf(path, sizeof(path), "/modules?size=%d", MEM);
		e2e_post(&d, path, code, &r);
		E2E_STATUS(&r, 201);
		snprintf(mods[i], sizeof(mods[i]), "%s",
			 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
		e2e_resp_release(&r);
	}

	for (i = 0; i < CLIENTS; i++) {
		cl[i].t = i;
		CHECK(pthread_create(&cl[i].th, NULL, client_main, &cl[i]) ==
		      0);
	}
	for (i = 0; i < CLIENTS; i++) {
		pthread_join(cl[i].th, NULL);
		ok &= cl[i].ok;
	}
	CHECK(ok);
	CHECK(atomic_load(&failures) == 0);
	CHECK(atomic_load(&commits) == CLIENTS * ROUNDS);
	printf("%d commits by %d clients, %d retries after 412\n",
	       atomic_load(&commits), CLIENTS, atomic_load(&retries));

	/* The final memory: each client's page as of its last round. */
	memset(mem, 0, sizeof(mem));
	for (i = 0; i < CLIENTS; i++)
		e2e_pattern((uint64_t)(i * 100 + ROUNDS - 1), 0,
			    mem[i % MODS] + i * STORE_PAGE_SIZE,
			    STORE_PAGE_SIZE);
	for (i = 0; i < MODS; i++) {
		CHECK(store_id_parse(&pairs[i].module, mods[i], 64) ==
		      STORE_OK);
		store_memory_id(mem[i], MEM, &pairs[i].commit);
		snprintf(path, sizeof(path), "/modules/%s", mods[i]);
		e2e_get(&d, path, &r);
		E2E_STATUS(&r, 200);
		store_id_hex(&pairs[i].commit, h);
		CHECK(e2e_str(&r, "last_commit") &&
		      !strcmp(e2e_str(&r, "last_commit"), h));
		e2e_resp_release(&r);
		snprintf(path, sizeof(path), "/modules/%s/memory", mods[i]);
		e2e_get(&d, path, &r);
		E2E_STATUS(&r, 200);
		CHECK(r.len == MEM && !memcmp(r.body, mem[i], MEM));
		e2e_resp_release(&r);
	}
	CHECK(store_state_id(pairs, MODS, &root) == STORE_OK);
	e2e_get(&d, "/root", &r);
	E2E_STATUS(&r, 200);
	CHECK(e2e_str(&r, "root") &&
	      store_id_parse(&got, e2e_str(&r, "root"), 64) == STORE_OK &&
	      store_id_equal(&got, &root));
	e2e_resp_release(&r);

	/* Every commit is in the commits store with its own id. */
	e2e_get(&d, "/commits", &r);
	E2E_STATUS(&r, 200);
	CHECK(json_object_size(r.json) == CLIENTS * ROUNDS);
	{
		const char *k;
		json_t *v;
		int bad = 0;

		json_object_foreach(r.json, k, v)
		{
			struct store_pair p[MODS];
			struct store_id cid, want;
			const char *mk;
			json_t *mv;
			size_t n = 0;

			json_object_foreach(v, mk, mv)
			{
				if (n < MODS) {
					store_id_parse(&p[n].module, mk, 64);
					store_id_parse(&p[n].commit,
						       json_string_value(mv),
						       64);
				}
				n++;
			}
			if (n != MODS || store_id_parse(&cid, k, 64) ||
			    store_state_id(p, n, &want) ||
			    !store_id_equal(&cid, &want))
				bad++;
		}
		CHECK(bad == 0);
	}
	e2e_resp_release(&r);

	/* The directory agrees: layout, commit files, root. */
	CHECK(st_state_read(tmp.state, &st) == 0);
	CHECK(store_id_equal(&st.root, &root));
	st_state_release(&st);

	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
	return t_done();
}
