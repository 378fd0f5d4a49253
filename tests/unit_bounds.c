/*
 * unit_bounds.c - what a client can make the engine hold stays bounded:
 *
 * - sessions' pages in memory: at most max_session_memory after every
 *   write, with six sessions growing a module at once; past it overlays
 *   move to files and read and commit the same bytes;
 * - a deployed module nothing has written costs no page tree: a commit of
 *   one byte beside sixteen modules of 1 GiB stays small, and the ids of
 *   the unwritten modules are those of their zero memory;
 * - no lock a session takes is held while persist writes, nor while a
 *   walk of the commits store calls back;
 * - max_module_size is a multiple of the page size up to 64 GiB, and a
 *   write at the end of that range fails cleanly.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

#define MIB	 ((uint64_t)1 << 20)
#define PAGE	 STORE_PAGE_SIZE
#define SESSIONS 6
#define GROW	 (16 * MIB) /* each session's writes: 96 MiB in all */
#define CHUNK	 (256 * 1024)

static uint64_t rss_kib(void)
{
	char line[256];
	unsigned long long v = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %llu", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* --- sessions' memory ---------------------------------------------------- */

struct grower {
	struct store *s;
	struct store_id mod, sid;
	int n;
	atomic_uint_fast64_t *peak;
	enum store_err err;
};

static void fill(unsigned char *buf, size_t len, uint64_t off, int n)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)((off + i) * 7 + (uint64_t)n * 31 + 1);
}

static void *grow_main(void *arg)
{
	struct grower *g = arg;
	struct store_stats st;
	unsigned char *buf = malloc(CHUNK);
	uint_fast64_t peak;
	uint64_t off;

	g->err = buf ? STORE_OK : STORE_ENOMEM;
	for (off = 0; !g->err && off < GROW; off += CHUNK) {
		fill(buf, CHUNK, off, g->n);
		g->err = store_session_write(g->s, &g->sid, &g->mod, off, buf,
					     CHUNK);
		if (!g->err)
			g->err = store_get_stats(g->s, &st);
		peak = atomic_load(g->peak);
		while (!g->err && st.session_memory > peak &&
		       !atomic_compare_exchange_weak(g->peak, &peak,
						     st.session_memory))
			;
	}
	free(buf);
	return NULL;
}

/* The session's view of mod equals its pattern; 1 if so. */
static int view_ok(struct store *s, const struct grower *g)
{
	unsigned char *want = malloc(CHUNK), *got = malloc(CHUNK);
	uint64_t off;
	int ok = want && got;

	for (off = 0; ok && off < GROW; off += CHUNK) {
		fill(want, CHUNK, off, g->n);
		ok = store_session_read(s, &g->sid, &g->mod, off, got, CHUNK) ==
			 STORE_OK &&
		     !memcmp(want, got, CHUNK);
	}
	free(want);
	free(got);
	return ok;
}

static void test_session_memory(const char *dir)
{
	struct store_options o = {0};
	struct grower g[SESSIONS];
	pthread_t th[SESSIONS];
	atomic_uint_fast64_t peak;
	struct store_commit_info ci;
	struct store_stats st;
	struct store_id want;
	struct store *s = NULL;
	unsigned char *mem;
	uint64_t off;
	int i;

	o.dir = dir;
	CHECK_ERR(store_open(&s, &o), STORE_OK);
	if (!s)
		return;
	atomic_init(&peak, 0);
	for (i = 0; i < SESSIONS; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		g[i].s = s;
		g[i].n = i;
		g[i].peak = &peak;
		CHECK_ERR(st_deploy(s, "bounds: memory", PAGE, &g[i].mod),
			  STORE_OK);
		CHECK_ERR(st_begin(s, &g[i].sid), STORE_OK);
		CHECK_ERR(st_fill(s, &g[i].sid, &g[i].mod, 0, 1, 1), STORE_OK);
	}
	for (i = 0; i < SESSIONS; i++)
		pthread_create(&th[i], NULL, grow_main, &g[i]);
	for (i = 0; i < SESSIONS; i++) {
		pthread_join(th[i], NULL);
		CHECK_ERR(g[i].err, STORE_OK);
	}
	CHECK(store_get_stats(s, &st) == STORE_OK);
	fprintf(stderr,
		"sessions' memory: peak %llu KiB, now %llu KiB, "
		"bound %llu KiB, %d x %llu KiB written\n",
		(unsigned long long)atomic_load(&peak) / 1024,
		(unsigned long long)st.session_memory / 1024,
		(unsigned long long)STORE_DEFAULT_SESSION_MEMORY / 1024,
		SESSIONS, (unsigned long long)GROW / 1024);
	CHECK(atomic_load(&peak) <= STORE_DEFAULT_SESSION_MEMORY);
	CHECK(atomic_load(&peak) >= STORE_DEFAULT_SESSION_MEMORY / 2);
	for (i = 0; i < SESSIONS; i++)
		CHECK(view_ok(s, &g[i]));
	/* a session whose overlay went to a file commits the same bytes */
	mem = malloc(GROW);
	CHECK(mem != NULL);
	if (mem) {
		for (off = 0; off < GROW; off += CHUNK)
			fill(mem + off, CHUNK, off, SESSIONS - 1);
		st_ref_memory_id(mem, GROW, &want);
		CHECK_ERR(
		    store_session_commit(s, &g[SESSIONS - 1].sid, NULL, &ci),
		    STORE_OK);
		for (off = 0; off < ci.n; off++)
			if (store_id_equal(&ci.pairs[off].module,
					   &g[SESSIONS - 1].mod))
				CHECK_ID(&ci.pairs[off].commit, &want);
		store_commit_info_release(&ci);
		free(mem);
	}
	store_close(s); /* drops the other sessions */
}

/* --- unwritten modules -----------------------------------------------------
 */

static void test_unwritten_modules(const char *dir)
{
	struct store_options o = {0};
	struct store_commit_info ci;
	struct store_id big[16], small[40], sid, want;
	struct store *s = NULL;
	unsigned char *zeros = calloc(40, PAGE);
	uint64_t before, after;
	char code[64];
	size_t i, k;

	o.dir = dir;
	CHECK_ERR(store_open(&s, &o), STORE_OK);
	if (!s || !zeros)
		goto out;
	for (i = 0; i < 16; i++) {
		snprintf(code, sizeof(code), "bounds: big %zu", i);
		CHECK_ERR(st_deploy(s, code, 1024 * MIB, &big[i]), STORE_OK);
	}
	for (i = 0; i < 40; i++) {
		snprintf(code, sizeof(code), "bounds: small %zu", i);
		CHECK_ERR(st_deploy(s, code, (i + 1) * PAGE, &small[i]),
			  STORE_OK);
	}
	before = rss_kib();
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(st_fill(s, &sid, &big[0], 12345, 0x5a, 1), STORE_OK);
	CHECK_ERR(store_session_commit(s, &sid, NULL, &ci), STORE_OK);
	after = rss_kib();
	fprintf(stderr,
		"a commit of 1 byte beside 16 modules of 1 GiB: resident "
		"%llu KiB before, %llu KiB after\n",
		(unsigned long long)before, (unsigned long long)after);
	/* one tree of 1 GiB is 16 MiB; all sixteen would be 256 MiB */
	CHECK(after < before + 64 * 1024);
	CHECK(ci.n == 56);
	for (i = 0; i < 40; i++) {
		st_ref_memory_id(zeros, (i + 1) * PAGE, &want);
		for (k = 0; k < ci.n; k++)
			if (store_id_equal(&ci.pairs[k].module, &small[i]))
				CHECK_ID(&ci.pairs[k].commit, &want);
	}
	store_commit_info_release(&ci);
out:
	free(zeros);
	store_close(s);
}

/* --- no lock held across persist's write or a walk's callback ------------ */

struct side {
	struct store *s;
	struct store_id mod;
	int round; /* each session writes another byte: another commit */
	enum store_err err;
	atomic_int done;
};

/* A whole session: begin, write, commit. */
static void *side_main(void *arg)
{
	struct side *sd = arg;
	struct store_id sid;

	sd->err = st_begin(sd->s, &sid);
	if (!sd->err)
		sd->err =
		    st_fill(sd->s, &sid, &sd->mod, 0, 0x42 + sd->round, 100);
	if (!sd->err)
		sd->err = st_commit(sd->s, &sid, NULL);
	atomic_store(&sd->done, 1);
	return NULL;
}

/* Run a session in another thread; 1 if it ended within 10 s. */
static int side_session(struct side *sd)
{
	struct timespec until;
	pthread_t th;
	int rc;

	atomic_store(&sd->done, 0);
	sd->round++;
	sd->err = STORE_EIO;
	if (pthread_create(&th, NULL, side_main, sd))
		return 0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	rc = pthread_timedjoin_np(th, NULL, &until);
	if (rc == ETIMEDOUT) {
		pthread_detach(th); /* it waits on a lock held here */
		return 0;
	}
	return atomic_load(&sd->done) && sd->err == STORE_OK;
}

struct persist_hook {
	struct side *sd;
	int ran, ok;
};

static int persist_step(void *ctx, const char *step)
{
	struct persist_hook *h = ctx;

	if (strcmp(step, "persist.write") || h->ran)
		return 0;
	h->ran = 1;
	h->ok = side_session(h->sd);
	return 0;
}

/* The first commit of a walk: a whole session meanwhile, then stop. */
static int walk_fn(void *ctx, const struct store_id *commit,
		   const struct store_pair *pairs, size_t n)
{
	struct side *sd = ctx;

	(void)commit;
	(void)pairs;
	(void)n;
	if (!side_session(sd))
		sd->err = STORE_EIO;
	return 1;
}

static void test_no_lock(const char *dir)
{
	struct store_options o = {0};
	struct persist_hook h = {0};
	struct side sd = {0};

	o.dir = dir;
	o.fault = persist_step;
	o.fault_ctx = &h;
	CHECK_ERR(store_open(&sd.s, &o), STORE_OK);
	if (!sd.s)
		return;
	h.sd = &sd;
	CHECK_ERR(st_deploy(sd.s, "bounds: locks", PAGE, &sd.mod), STORE_OK);
	CHECK(side_session(&sd));
	CHECK_ERR(store_persist(sd.s), STORE_OK);
	CHECK(h.ran && h.ok); /* a commit went through during the write */
	sd.err = STORE_OK;
	CHECK_ERR(store_commits_foreach(sd.s, walk_fn, &sd), STORE_OK);
	CHECK_ERR(sd.err, STORE_OK); /* and during the walk's callback */
	CHECK(store_commits_count(sd.s) == 3);
	if (h.ok && sd.err == STORE_OK)
		store_close(sd.s); /* else a thread may still wait in it */
}

/* --- max_module_size --------------------------------------------------------
 */

static void test_max_module_size(const char *dir)
{
	static const uint64_t bad[] = {1,
				       4097,
				       PAGE + 1,
				       STORE_MAX_MODULE_LIMIT + PAGE,
				       UINT64_MAX - PAGE + 1,
				       UINT64_MAX};
	struct store_options o = {0};
	struct store_id mod, sid;
	struct store *s = NULL;
	unsigned char b = 1;
	size_t i;

	o.dir = dir;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.max_module_size = bad[i];
		CHECK_ERR(store_open(&s, &o), STORE_EINVAL);
		CHECK(s == NULL);
	}
	o.max_module_size = STORE_MAX_MODULE_LIMIT;
	CHECK_ERR(store_open(&s, &o), STORE_OK);
	if (!s)
		return;
	CHECK_ERR(st_deploy(s, "bounds: size", PAGE, &mod), STORE_OK);
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(
	    store_session_write(s, &sid, &mod, STORE_MAX_MODULE_LIMIT, &b, 1),
	    STORE_ETOOBIG);
	CHECK_ERR(store_session_write(s, &sid, &mod, UINT64_MAX, &b, 1),
		  STORE_ETOOBIG);
	CHECK_ERR(store_session_write(s, &sid, &mod,
				      STORE_MAX_MODULE_LIMIT - PAGE, &b, 1),
		  STORE_OK);
	store_close(s);
}

int main(void)
{
	static const struct t_case tests[] = {
	    {"bounds-memory", test_session_memory},
	    {"bounds-unwritten", test_unwritten_modules},
	    {"bounds-locks", test_no_lock},
	    {"bounds-size", test_max_module_size},
	};

	t_run_each(tests, sizeof(tests) / sizeof(tests[0]));
	return t_done();
}
