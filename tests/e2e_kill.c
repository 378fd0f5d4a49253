/*
 * e2e_kill.c - crash consistency of the real daemon under SIGKILL.
 *
 * Each round starts modstored on the same directory, drives concurrent
 * commits, persists, restores, deletes, gc and now and then a deploy (every
 * fourth round with --keep-commits 6), and kills it with
 * SIGKILL after a random delay. The next round first checks, from the
 * files alone, that the directory holds exactly one committed state: every
 * MOD, MOD_last and MOD_last_id agree, every commit file hashes to its
 * name, the root the restarted daemon reports is the one recomputed from
 * the files and is a root some acknowledged operation produced (or one in
 * flight at the kill), every acknowledged commit not deleted (or asked to
 * be) still has all its files,
 * every commit the daemon lists has all its files, and no temporary or
 * journal is left behind.
 *
 * MODSTORE_KILL_ROUNDS sets the number of rounds (default 50); `make
 * torture` runs thousands.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WRITERS	    3
#define MAX_ACKED   100000
#define MAX_MODULES 64

struct acked {
	char id[STORE_HEX_LEN + 1];
	size_t n;
	struct store_pair *pairs; /* NULL for a restore target */
	int deleted;   /* deleted, or may be: its files need not be there */
	int persisted; /* a persist answered after it: it outlives a kill */
};

static struct e2e_daemon d;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct acked *acked;
static size_t nacked;
static char mods[MAX_MODULES][STORE_HEX_LEN + 1];
static size_t nmods;
static atomic_int stop;
static atomic_int inflight; /* commits and restores sent, not answered */
static atomic_long ops;
static int auto_persist; /* this round's daemon persists every commit */
static int keeping;	 /* this round's daemon deletes old commits */

static unsigned rnd(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 8) & 0xffffff;
}

static void ack(const char *id, json_t *modules, int persisted)
{
	struct acked a;
	const char *k;
	json_t *v;
	size_t i = 0;

	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "%s", id);
	a.persisted = persisted;
	a.deleted = keeping; /* retention may take it */
	if (modules) {
		a.n = json_object_size(modules);
		a.pairs = calloc(a.n ? a.n : 1, sizeof(*a.pairs));
		json_object_foreach(modules, k, v)
		{
			if (!a.pairs || i >= a.n)
				break;
			a.pairs[i].module = st_id(k);
			a.pairs[i].commit = st_id(json_string_value(v));
			i++;
		}
	}
	pthread_mutex_lock(&lock);
	if (nacked < MAX_ACKED)
		acked[nacked++] = a;
	else
		free(a.pairs);
	pthread_mutex_unlock(&lock);
}

static int known_root(const char *root)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nacked && !found; i++)
		found = !strcmp(acked[i].id, root);
	pthread_mutex_unlock(&lock);
	return found;
}

/* A session, a few writes, a commit. */
static void *writer(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	struct e2e_resp r;
	char sid[STORE_HEX_LEN + 1], path[400];
	unsigned char buf[256];

	while (!atomic_load(&stop)) {
		int k, n = 1 + (int)(rnd(&seed) % 3), ok = 1;

		if (e2e_post(&d, "/sessions", NULL, &r) || r.status != 201 ||
		    !e2e_str(&r, "id")) {
			e2e_resp_release(&r);
			break;
		}
		snprintf(sid, sizeof(sid), "%s", e2e_str(&r, "id"));
		e2e_resp_release(&r);
		for (k = 0; k < n && ok; k++) {
			unsigned off = rnd(&seed) % 12288;
			size_t len = 1 + rnd(&seed) % sizeof(buf);
			char mod[STORE_HEX_LEN + 1];

			pthread_mutex_lock(&lock);
			memcpy(mod, mods[rnd(&seed) % nmods], sizeof(mod));
			pthread_mutex_unlock(&lock);
			randombytes_buf(buf, len);
			snprintf(path, sizeof(path),
				 "/sessions/%s/modules/%s/memory?offset=%u",
				 sid, mod, off);
			ok =
			    !e2e_request(&d, "PUT", path, buf, len, NULL, &r) &&
			    r.status == 204;
			e2e_resp_release(&r);
		}
		if (!ok)
			break;
		snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
		atomic_fetch_add(&inflight, 1);
		if (e2e_post(&d, path, NULL, &r)) {
			e2e_resp_release(&r);
			break; /* killed: stays in flight */
		}
		if (r.status == 201 && e2e_str(&r, "commit"))
			ack(e2e_str(&r, "commit"),
			    json_object_get(r.json, "modules"), auto_persist);
		atomic_fetch_sub(&inflight, 1);
		e2e_resp_release(&r);
		atomic_fetch_add(&ops, 1);
	}
	return NULL;
}

/* The commits acknowledged before a persist began are persisted. */
static void mark_persisted(size_t n)
{
	size_t i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < n && i < nacked; i++)
		acked[i].persisted = 1;
	pthread_mutex_unlock(&lock);
}

/* Mark every acknowledged commit that may be gone (retention). */
static void may_be_deleted(void)
{
	size_t i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nacked; i++)
		acked[i].deleted = 1;
	pthread_mutex_unlock(&lock);
}

/*
 * Delete an acknowledged commit: marked before the request, since a kill
 * may leave it done or not.
 */
static int delete_one(unsigned *seed)
{
	struct e2e_resp r;
	char path[200];
	size_t i;
	int failed;

	pthread_mutex_lock(&lock);
	if (!nacked) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	i = rnd(seed) % nacked;
	acked[i].deleted = 1;
	snprintf(path, sizeof(path), "/commits/%s", acked[i].id);
	pthread_mutex_unlock(&lock);
	failed = e2e_request(&d, "DELETE", path, NULL, 0, NULL, &r);
	if (!failed && r.status != 204 && r.status != 404) {
		fprintf(stderr, "DELETE %s: %ld\n", path, r.status);
		CHECK(0);
	}
	e2e_resp_release(&r);
	return failed;
}

/*
 * Persist, restore an acknowledged commit, delete one, gc, or deploy a new
 * module.
 */
static void *admin(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	struct e2e_resp r;
	char path[200], target[STORE_HEX_LEN + 1];

	while (!atomic_load(&stop)) {
		unsigned what = rnd(&seed) % 12;
		int failed;

		memset(&r, 0, sizeof(r));
		if (what == 10) {
			failed = delete_one(&seed);
		} else if (what == 11) {
			failed = e2e_post(&d, "/gc", NULL, &r);
			if (!failed && r.status != 200)
				CHECK(!"gc answered 200");
		} else if (what < 4) {
			size_t before;

			pthread_mutex_lock(&lock);
			before = nacked;
			pthread_mutex_unlock(&lock);
			failed = e2e_post(&d, "/persist", NULL, &r);
			if (!failed && r.status == 200)
				mark_persisted(before);
		} else if (what < 9) {
			target[0] = '\0';
			pthread_mutex_lock(&lock);
			if (nacked)
				snprintf(target, sizeof(target), "%s",
					 acked[rnd(&seed) % nacked].id);
			pthread_mutex_unlock(&lock);
			if (!target[0])
				continue;
			snprintf(path, sizeof(path), "/restore/%s", target);
			atomic_fetch_add(&inflight, 1);
			failed = e2e_post(&d, path, NULL, &r);
			if (!failed)
				atomic_fetch_sub(&inflight, 1);
		} else {
			char code[64];

			snprintf(code, sizeof(code), "kill-module-%u",
				 rnd(&seed));
			failed = e2e_post(&d, "/modules?size=8192", code, &r);
			if (!failed && r.status == 201 && e2e_str(&r, "id")) {
				pthread_mutex_lock(&lock);
				if (nmods < MAX_MODULES)
					snprintf(mods[nmods++], sizeof(mods[0]),
						 "%s", e2e_str(&r, "id"));
				pthread_mutex_unlock(&lock);
			}
		}
		e2e_resp_release(&r);
		if (failed)
			break;
		atomic_fetch_add(&ops, 1);
		usleep(2000); /* pacing: the writers' commits stay the bulk */
	}
	return NULL;
}

/* The checks after a restart. */

static void check_restart(const char *dir, int may_be_new, int round)
{
	struct st_state st;
	struct st_names names;
	struct e2e_resp r;
	char hex[STORE_HEX_LEN + 1], name[200];
	const char *root, *k, *mk;
	json_t *v, *mv, *list = NULL;
	size_t i, j, problems = 0;

	CHECK(st_state_read(dir, &st) == 0);
	CHECK(st_count_tmp(dir) == 0);
	CHECK(!st_journal_live(dir));
	e2e_get(&d, "/root", &r);
	E2E_STATUS(&r, 200);
	root = e2e_str(&r, "root");
	CHECK(root && !strcmp(root, st_hex(&st.root, hex)));
	if (root && st.npairs && !known_root(root) && !may_be_new) {
		fprintf(stderr, "round %d: root %s is no acknowledged state\n",
			round, root);
		CHECK(0);
	}
	if (root && st.npairs && !known_root(root))
		ack(root, NULL, 0); /* the commit in flight that made it */
	e2e_resp_release(&r);

	/* every commit the daemon lists has all its files */
	e2e_get(&d, "/commits", &r);
	E2E_STATUS(&r, 200);
	json_object_foreach(r.json, k, v)
	{
		json_object_foreach(v, mk, mv)
		{
			struct store_id mod = st_id(mk),
					mc = st_id(json_string_value(mv));

			st_commit_name(name, sizeof(name), &mod, &mc);
			problems += !st_exists(dir, name);
		}
		(void)k;
	}
	list = json_incref(r.json);
	e2e_resp_release(&r);
	CHECK(problems == 0);

	/*
	 * Every acknowledged commit persisted and not deleted is listed and
	 * has all its files. One not persisted is forgotten at a restart:
	 * from then on gc may take its files.
	 */
	problems = 0;
	pthread_mutex_lock(&lock);
	for (i = 0; i < nacked; i++) {
		int listed = list && json_object_get(list, acked[i].id);

		if (acked[i].deleted || !acked[i].pairs)
			continue;
		if (!listed && acked[i].persisted) {
			fprintf(stderr, "round %d: persisted %s is gone\n",
				round, acked[i].id);
			problems++;
		}
		if (!listed) {
			acked[i].deleted = 1;
			continue;
		}
		for (j = 0; j < acked[i].n; j++) {
			st_commit_name(name, sizeof(name),
				       &acked[i].pairs[j].module,
				       &acked[i].pairs[j].commit);
			problems += !st_exists(dir, name);
		}
	}
	pthread_mutex_unlock(&lock);
	json_decref(list);
	CHECK(problems == 0);

	/* the directory holds no stray names */
	if (st_names_list(dir, ST_DOT, &names) == 0) {
		for (i = 0; i < names.n; i++) {
			const char *nm = names.v[i];

			if (!strcmp(nm, ".lock") || !strcmp(nm, ".journal") ||
			    !strcmp(nm, ".journal.1") ||
			    (strlen(nm) == STORE_HEX_LEN + 6 &&
			     !strcmp(nm + 1 + STORE_HEX_LEN, "_init")) ||
			    (strlen(nm) == STORE_HEX_LEN + 10 &&
			     !strcmp(nm + 1 + STORE_HEX_LEN, "_bytecode")))
				continue;
			fprintf(stderr, "round %d: stray %s\n", round, nm);
			CHECK(0);
		}
		st_names_release(&names);
	}
	st_state_release(&st);
}

int main(void)
{
	struct e2e_tmp tmp;
	struct e2e_resp r;
	pthread_t th[WRITERS + 1];
	const char *env = getenv("MODSTORE_KILL_ROUNDS");
	int rounds = env ? atoi(env) : 50, round, i, killed = 0, new_root = 0;
	unsigned seed = (unsigned)time(NULL);
	long total_ops = 0;

	if (sodium_init() < 0 || e2e_tmp_make(&tmp, "kill"))
		return 1;
	acked = calloc(MAX_ACKED, sizeof(*acked));
	if (!acked)
		return 1;
	printf("seed %u, %d rounds\n", seed, rounds);
	for (round = 0; round < rounds; round++) {
		const char *auto_args[] = {"--auto-persist", NULL};
		const char *keep_args[] = {"--keep-commits", "6", NULL};
		int may_be_new = atomic_load(&inflight) > 0;
		const char *const *args = round % 4 == 3   ? keep_args
					  : round % 2 == 1 ? auto_args
							   : NULL;

		if (args == keep_args)
			may_be_deleted(); /* retention may take any of them */
		auto_persist = args == auto_args;
		keeping = args == keep_args;
		if (e2e_start(&d, tmp.state, tmp.log, args)) {
			CHECK(0);
			break;
		}
		if (round == 0) {
			for (i = 0; i < 4; i++) {
				char code[32];

				snprintf(code, sizeof(code), "kill-base-%d", i);
				e2e_post(&d, "/modules?size=16384", code, &r);
				E2E_STATUS(&r, 201);
				snprintf(mods[nmods++], sizeof(mods[0]), "%s",
					 e2e_str(&r, "id") ? e2e_str(&r, "id")
							   : "");
				e2e_resp_release(&r);
			}
		} else {
			check_restart(tmp.state, may_be_new, round);
		}
		atomic_store(&stop, 0);
		atomic_store(&inflight, 0);
		atomic_store(&ops, 0);
		for (i = 0; i < WRITERS; i++)
			pthread_create(
			    &th[i], NULL, writer,
			    (void *)(uintptr_t)(seed +
						7919u *
						    (unsigned)(round * 8 + i)));
		pthread_create(&th[WRITERS], NULL, admin,
			       (void *)(uintptr_t)(seed + (unsigned)round));
		usleep(20000 + rnd(&seed) % 250000); /* a random kill moment */
		killed += e2e_stop(&d, SIGKILL) == 128 + SIGKILL;
		atomic_store(&stop, 1);
		for (i = 0; i <= WRITERS; i++)
			pthread_join(th[i], NULL);
		total_ops += atomic_load(&ops);
		new_root += atomic_load(&inflight) > 0;
		if (t_failed)
			break;
	}
	/* a last start checks the last kill */
	if (!t_failed && e2e_start(&d, tmp.state, tmp.log, NULL) == 0) {
		check_restart(tmp.state, atomic_load(&inflight) > 0, round);
		CHECK(e2e_stop(&d, SIGTERM) == 0);
	}
	printf("kill rounds: %d killed with SIGKILL, %ld operations answered, "
	       "%zu commits and restores acknowledged, %d kills with an "
	       "operation in flight\n",
	       killed, total_ops, nacked, new_root);
	CHECK(killed == rounds);
	e2e_tmp_done(&tmp);
	return t_done();
}
