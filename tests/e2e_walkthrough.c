/*
 * e2e_walkthrough.c - the seed's walkthrough over HTTP (deploy two modules,
 * commit, commit again, persist, restore the first commit), checking after
 * each step the exact names of the state directory, the content of every
 * file, and every id recomputed here from the bytes written.
 */
#include "e2e.h"
#include "store.h"
#include "storetest.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEM 65536

static struct e2e_daemon d;

struct mod {
	struct store_id id;
	char hex[STORE_HEX_LEN + 1];
	unsigned char mem[MEM]; /* what its memory should be */
	struct store_id mc;	/* its module commit id (recomputed) */
};

static struct mod m1, m2;

static void deploy(struct mod *m, const char *code)
{
	struct e2e_resp r;
	struct store_id want;

	e2e_post(&d, "/modules", code, &r);
	E2E_STATUS(&r, 201);
	store_module_id(code, strlen(code), &want);
	CHECK(e2e_str(&r, "id") &&
	      store_id_parse(&m->id, e2e_str(&r, "id"), 64) == STORE_OK &&
	      store_id_equal(&m->id, &want));
	store_id_hex(&m->id, m->hex);
	memset(m->mem, 0, sizeof(m->mem));
	e2e_resp_release(&r);
}

/* The plain names of the state directory are exactly these. */
static void names_are(const char *const *want)
{
	struct st_names got, exp;

	CHECK(st_names_list(d.dir, ST_PLAIN, &got) == 0);
	CHECK(st_names_from(&exp, want) == 0);
	if (!st_names_equal(&got, &exp)) {
		CHECK(!"directory names as expected");
		st_names_diff("on disk", &got, "expected", &exp);
	} else {
		CHECK(1);
	}
	st_names_release(&got);
	st_names_release(&exp);
}

static void name_of(char *buf, size_t size, const struct mod *m,
		    const char *suffix)
{
	snprintf(buf, size, "%s%s", m->hex, suffix);
}

static void commit_name(char *buf, size_t size, const struct mod *m,
			const struct store_id *mc)
{
	char h[STORE_HEX_LEN + 1];

	store_id_hex(mc, h);
	snprintf(buf, size, "%s_%s", m->hex, h);
}

/* The directory's state, recomputed from its files, matches root. */
static void disk_state_is(const struct store_id *root)
{
	struct st_state st;
	struct e2e_resp r;
	struct store_id got;
	int problems = st_state_read(d.dir, &st);

	CHECK(problems == 0);
	CHECK(store_id_equal(&st.root, root));
	st_state_release(&st);
	e2e_get(&d, "/root", &r);
	E2E_STATUS(&r, 200);
	CHECK(e2e_str(&r, "root") &&
	      store_id_parse(&got, e2e_str(&r, "root"), 64) == STORE_OK &&
	      store_id_equal(&got, root));
	e2e_resp_release(&r);
}

/* MOD, and MOD_last when committed, hold exactly m->mem; so does GET. */
static void memory_is(const struct mod *m, int committed)
{
	char name[200];
	unsigned char *buf = NULL;
	size_t len = 0;
	struct e2e_resp r;

	CHECK(st_read(d.dir, m->hex, &buf, &len) == 0 && len == MEM &&
	      !memcmp(buf, m->mem, MEM));
	free(buf);
	buf = NULL;
	if (committed) {
		name_of(name, sizeof(name), m, "_last");
		CHECK(st_read(d.dir, name, &buf, &len) == 0 && len == MEM &&
		      !memcmp(buf, m->mem, MEM));
		free(buf);
		buf = NULL;
		name_of(name, sizeof(name), m, "_last_id");
		CHECK(st_read(d.dir, name, &buf, &len) == 0 &&
		      len == STORE_HEX_LEN + 1);
		if (buf && len == STORE_HEX_LEN + 1) {
			char h[STORE_HEX_LEN + 1];

			store_id_hex(&m->mc, h);
			CHECK(!memcmp(buf, h, STORE_HEX_LEN) &&
			      buf[STORE_HEX_LEN] == '\n');
		}
		free(buf);
	}
	snprintf(name, sizeof(name), "/modules/%s/memory", m->hex);
	e2e_get(&d, name, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == MEM && !memcmp(r.body, m->mem, MEM));
	e2e_resp_release(&r);
}

static void write_at(const char *sid, struct mod *m, unsigned off,
		     const void *data, size_t len)
{
	struct e2e_resp r;
	char path[300];

	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory?offset=%u",
		 sid, m->hex, off);
	e2e_request(&d, "PUT", path, data, len, NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	memcpy(m->mem + off, data, len);
}

/* Open a session, write into both modules, commit; the commit id. */
static void session_commit(uint64_t seed, const struct store_id *base,
			   struct store_id *commit)
{
	unsigned char buf[5000];
	struct store_pair pairs[2];
	struct store_id want, got;
	struct e2e_resp r;
	char sid[STORE_HEX_LEN + 1], path[200], h[STORE_HEX_LEN + 1];
	json_t *mods;

	e2e_post(&d, "/sessions", NULL, &r);
	E2E_STATUS(&r, 201);
	snprintf(sid, sizeof(sid), "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	if (base) {
		store_id_hex(base, h);
		CHECK(e2e_str(&r, "base") && !strcmp(e2e_str(&r, "base"), h));
	} else {
		CHECK(json_is_null(json_object_get(r.json, "base")));
	}
	e2e_resp_release(&r);

	e2e_pattern(seed, 0, buf, sizeof(buf));
	write_at(sid, &m1, 0, buf, 100);
	write_at(sid, &m1, 4090, buf + 100, sizeof(buf) - 100); /* 2 pages */
	write_at(sid, &m2, MEM - 10, buf, 10);

	snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
	e2e_post(&d, path, NULL, &r);
	E2E_STATUS(&r, 201);
	store_memory_id(m1.mem, MEM, &m1.mc);
	store_memory_id(m2.mem, MEM, &m2.mc);
	pairs[0].module = m1.id;
	pairs[0].commit = m1.mc;
	pairs[1].module = m2.id;
	pairs[1].commit = m2.mc;
	CHECK(store_state_id(pairs, 2, &want) == STORE_OK);
	CHECK(e2e_str(&r, "commit") &&
	      store_id_parse(commit, e2e_str(&r, "commit"), 64) == STORE_OK &&
	      store_id_equal(commit, &want));
	mods = json_object_get(r.json, "modules");
	CHECK(json_object_size(mods) == 2);
	CHECK(json_string_value(json_object_get(mods, m1.hex)) &&
	      store_id_parse(&got,
			     json_string_value(json_object_get(mods, m1.hex)),
			     64) == STORE_OK &&
	      store_id_equal(&got, &m1.mc));
	CHECK(json_string_value(json_object_get(mods, m2.hex)) &&
	      store_id_parse(&got,
			     json_string_value(json_object_get(mods, m2.hex)),
			     64) == STORE_OK &&
	      store_id_equal(&got, &m2.mc));
	e2e_resp_release(&r);
}

/* The file `commits` says what GET /commits says: {C1: ..., C2: ...}. */
static void commits_file_is(const struct store_id *c1,
			    const struct store_id *c2)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	json_t *file;
	struct e2e_resp r;
	char h1[STORE_HEX_LEN + 1], h2[STORE_HEX_LEN + 1];

	store_id_hex(c1, h1);
	store_id_hex(c2, h2);
	CHECK(st_read(d.dir, "commits", &buf, &len) == 0);
	file = buf ? json_loadb((const char *)buf, len, 0, NULL) : NULL;
	CHECK(file && json_object_size(file) == 2 &&
	      json_object_get(file, h1) && json_object_get(file, h2));
	e2e_get(&d, "/commits", &r);
	E2E_STATUS(&r, 200);
	CHECK(file && r.json && json_equal(file, r.json));
	e2e_resp_release(&r);
	json_decref(file);
	free(buf);
}

int main(void)
{
	struct e2e_tmp tmp;
	struct store_id empty, c1, c2, m1c1, m2c1;
	unsigned char mem1[MEM], mem2[MEM];
	char n[12][200];
	struct e2e_resp r;
	char path[200];

	if (sodium_init() < 0 || e2e_tmp_make(&tmp, "walk") < 0)
		return 1;
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"daemon started");
		return t_done();
	}

	/* Initial state: two modules, their backing files only. */
	deploy(&m1, "ModId1 bytecode");
	deploy(&m2, "ModId2 bytecode");
	{
		const char *const want[] = {m1.hex, m2.hex, NULL};

		names_are(want);
	}
	crypto_generichash(empty.b, sizeof(empty.b), NULL, 0, NULL, 0);
	disk_state_is(&empty);
	memory_is(&m1, 0);
	memory_is(&m2, 0);

	/* After session commit 1. */
	session_commit(1, NULL, &c1);
	m1c1 = m1.mc;
	m2c1 = m2.mc;
	memcpy(mem1, m1.mem, MEM);
	memcpy(mem2, m2.mem, MEM);
	commit_name(n[0], sizeof(n[0]), &m1, &m1c1);
	name_of(n[1], sizeof(n[1]), &m1, "_last");
	name_of(n[2], sizeof(n[2]), &m1, "_last_id");
	commit_name(n[3], sizeof(n[3]), &m2, &m2c1);
	name_of(n[4], sizeof(n[4]), &m2, "_last");
	name_of(n[5], sizeof(n[5]), &m2, "_last_id");
	{
		const char *const want[] = {m1.hex, m2.hex, n[0], n[1], n[2],
					    n[3],   n[4],   n[5], NULL};

		names_are(want);
	}
	disk_state_is(&c1);
	memory_is(&m1, 1);
	memory_is(&m2, 1);

	/* After session commit 2: new commit files, _last moved. */
	session_commit(2, &c1, &c2);
	CHECK(!store_id_equal(&c1, &c2));
	commit_name(n[6], sizeof(n[6]), &m1, &m1.mc);
	commit_name(n[7], sizeof(n[7]), &m2, &m2.mc);
	{
		const char *const want[] = {m1.hex, m2.hex, n[0], n[1],
					    n[2],   n[3],   n[4], n[5],
					    n[6],   n[7],   NULL};

		names_are(want);
	}
	disk_state_is(&c2);
	memory_is(&m1, 1);
	memory_is(&m2, 1);

	/* After persist: the same plus `commits`. */
	e2e_post(&d, "/persist", NULL, &r);
	E2E_STATUS(&r, 200);
	CHECK(json_object_size(r.json) == 2);
	e2e_resp_release(&r);
	{
		const char *const want[] = {m1.hex, m2.hex, n[0],      n[1],
					    n[2],   n[3],   n[4],      n[5],
					    n[6],   n[7],   "commits", NULL};

		names_are(want);
	}
	disk_state_is(&c2);
	commits_file_is(&c1, &c2);

	/* After restore of commit 1: _last back on commit 1, no new file. */
	store_id_hex(&c1, path);
	{
		char p[300];

		snprintf(p, sizeof(p), "/restore/%s", path);
		e2e_post(&d, p, NULL, &r);
	}
	E2E_STATUS(&r, 200);
	CHECK(json_object_size(r.json) == 2);
	e2e_resp_release(&r);
	memcpy(m1.mem, mem1, MEM);
	memcpy(m2.mem, mem2, MEM);
	m1.mc = m1c1;
	m2.mc = m2c1;
	{
		const char *const want[] = {m1.hex, m2.hex, n[0],      n[1],
					    n[2],   n[3],   n[4],      n[5],
					    n[6],   n[7],   "commits", NULL};

		names_are(want);
	}
	disk_state_is(&c1);
	memory_is(&m1, 1);
	memory_is(&m2, 1);
	commits_file_is(&c1, &c2);

	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
	return t_done();
}
