/*
 * unit_alloc.c - out of memory: the program is linked with
 * --wrap=malloc,calloc,realloc, and the Nth allocation made inside a store
 * call fails, for N = 1, 2, ... until a whole scenario runs without
 * reaching it. Every call must then return STORE_ENOMEM (or succeed), never
 * crash, leave the store consistent and usable, and the directory must
 * reopen consistent.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static atomic_int counting; /* inside a store call */
static atomic_long seen;    /* allocations counted this run */
static long fail_at;	    /* 1-based; 0: never */
static int sticky;	    /* fail every allocation from fail_at on */
static atomic_int hit;

static int fail_now(void)
{
	long n;

	if (!atomic_load(&counting) || fail_at == 0)
		return 0;
	n = atomic_fetch_add(&seen, 1) + 1;
	if (n != fail_at && !(sticky && n > fail_at))
		return 0;
	atomic_store(&hit, 1);
	return 1;
}

void *__wrap_malloc(size_t size)
{
	return fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return fail_now() ? NULL : __real_realloc(p, size);
}

struct ctx {
	char *dir;
	struct store *s;
	struct store_id m1, m2, m3, s1, s2, c1, c2;
	int sessions_lost;
};

#define NSTEPS 25

static const char *const step_names[NSTEPS] = {
    "open",
    "deploy m1",
    "deploy m2",
    "begin s1",
    "write m1",
    "write m2 (grow)",
    "read m1",
    "size m2",
    "commit s1",
    "module_list",
    "begin s2",
    "write m1 page 1",
    "session_list",
    "commit s2 (If-Match)",
    "persist",
    "commit_get",
    "commits_foreach",
    "restore c1",
    "module_open",
    "get_stats",
    "deploy_id m3",
    "session_expire",
    "reopen",
    "restore c2",
    "root",
};

static int count_one(void *ctx, const struct store_id *commit,
		     const struct store_pair *pairs, size_t n)
{
	(void)commit;
	(void)pairs;
	(void)n;
	(*(size_t *)ctx)++;
	return 0;
}

static enum store_err call(struct ctx *c, int k)
{
	unsigned char buf[100];
	struct store_session_info si, *sl = NULL;
	struct store_module_info info, *ml = NULL;
	struct store_commit_info ci;
	struct store_pair *pairs = NULL;
	struct store_stats stats;
	struct store_id root;
	size_t n = 0;
	uint64_t size = 0;
	enum store_err err = STORE_OK;
	int fd = -1, created = -1;

	memset(buf, 0x5A, sizeof(buf));
	memset(&ci, 0, sizeof(ci));
	switch (k) {
	case 0:
		err = st_open(&c->s, c->dir, NULL);
		break;
	case 1:
		err = store_deploy(c->s, "alloc one", 9, 8192, &info, &created);
		break;
	case 2:
		err = store_deploy(c->s, "alloc two", 9, 4096, &info, &created);
		break;
	case 3:
		err = store_session_begin(c->s, NULL, &si);
		if (err == STORE_OK)
			c->s1 = si.id;
		break;
	case 4:
		err = store_session_write(c->s, &c->s1, &c->m1, 10, buf, 100);
		break;
	case 5:
		err = store_session_write(c->s, &c->s1, &c->m2, 4100, buf, 10);
		break;
	case 6:
		err = store_session_read(c->s, &c->s1, &c->m1, 0, buf, 100);
		if (err == STORE_OK)
			CHECK(buf[0] == 0 && buf[10] == 0x5A);
		break;
	case 7:
		err = store_session_size(c->s, &c->s1, &c->m2, &size);
		if (err == STORE_OK)
			CHECK(size == 8192);
		break;
	case 8:
		err = store_session_commit(c->s, &c->s1, NULL, &ci);
		if (err == STORE_OK)
			c->c1 = ci.id;
		break;
	case 9:
		err = store_module_list(c->s, &ml, &n);
		if (err == STORE_OK)
			CHECK(n == 2);
		break;
	case 10:
		err = store_session_begin(c->s, NULL, &si);
		if (err == STORE_OK)
			c->s2 = si.id;
		break;
	case 11:
		err = store_session_write(c->s, &c->s2, &c->m1, 4096, buf, 100);
		break;
	case 12:
		err = store_session_list(c->s, &sl, &n);
		if (err == STORE_OK)
			CHECK(n == 1);
		break;
	case 13:
		err = store_session_commit(c->s, &c->s2, &c->c1, &ci);
		if (err == STORE_OK)
			c->c2 = ci.id;
		break;
	case 14:
		err = store_persist(c->s);
		break;
	case 15:
		err = store_commit_get(c->s, &c->c1, &pairs, &n);
		if (err == STORE_OK)
			CHECK(n == 2);
		break;
	case 16:
		err = store_commits_foreach(c->s, count_one, &n);
		if (err == STORE_OK)
			CHECK(n == 2);
		break;
	case 17:
		err = store_restore(c->s, &c->c1);
		break;
	case 18:
		err = store_module_open(c->s, &c->m1, &fd, &info);
		if (err == STORE_OK)
			CHECK(info.has_commit && info.size == 8192);
		break;
	case 19:
		err = store_get_stats(c->s, &stats);
		break;
	case 20:
		err = store_deploy_id(c->s, &c->m3, 4096, &info, &created);
		break;
	case 21:
		err = store_session_expire(c->s, 3600, &n);
		break;
	case 22:
		store_close(c->s);
		c->s = NULL;
		err = st_open(&c->s, c->dir, NULL);
		break;
	case 23:
		err = store_restore(c->s, &c->c2);
		break;
	case 24:
		err = store_root(c->s, &root);
		if (err == STORE_OK)
			CHECK_ID(&root, &c->c2);
		break;
	}
	if (fd >= 0)
		close(fd);
	if (err == STORE_OK && (k == 8 || k == 13))
		store_commit_info_release(&ci);
	free(ml);
	free(sl);
	free(pairs);
	return err;
}

/* Undo what a failed step may have left so that it can be retried. */
static void before_retry(struct ctx *c, int k)
{
	struct store_id sid;

	if ((k == 8 || k == 13) &&
	    store_session_size(c->s, k == 8 ? &c->s1 : &c->s2, &c->m1,
			       &(uint64_t){0}) == STORE_ENOSESSION) {
		/* a failed commit took the session with it */
		c->sessions_lost++;
		if (st_begin(c->s, &sid) == STORE_OK) {
			unsigned char buf[100];

			memset(buf, 0x5A, sizeof(buf));
			if (k == 8) {
				c->s1 = sid;
				store_session_write(c->s, &sid, &c->m1, 10, buf,
						    100);
				store_session_write(c->s, &sid, &c->m2, 4100,
						    buf, 10);
			} else {
				c->s2 = sid;
				store_session_write(c->s, &sid, &c->m1, 4096,
						    buf, 100);
			}
		}
	}
}

struct tally {
	long injected, ignored, lost;
	int first_fail[NSTEPS];
};

/* One run failing allocation n; 1 if the failure was reached. */
static int run(long n, struct tally *t)
{
	struct ctx c;
	struct store_id before;
	int k, failed_step = -1, reached = 0;

	memset(&c, 0, sizeof(c));
	c.dir = t_tmpdir("alloc");
	if (!c.dir)
		return 0;
	st_h("alloc one", 9, &c.m1);
	st_h("alloc two", 9, &c.m2);
	st_h("alloc three", 11, &c.m3);
	fail_at = n;
	atomic_store(&seen, 0);
	atomic_store(&hit, 0);
	for (k = 0; k < NSTEPS; k++) {
		enum store_err err;
		int was_hit = atomic_load(&hit);

		if (c.s && store_root(c.s, &before) != STORE_OK)
			memset(&before, 0, sizeof(before));
		atomic_store(&counting, 1);
		err = call(&c, k);
		atomic_store(&counting, 0);
		if (err == STORE_OK)
			continue;
		/* with every allocation failing from N on, a failure an
		 * earlier step absorbed (a delta kept as a snapshot) makes
		 * this one fail too: that is ENOMEM, as it should be */
		if (err != STORE_ENOMEM || (was_hit && !sticky) ||
		    !atomic_load(&hit)) {
			st_fail(__FILE__, __LINE__,
				"allocation %ld: %s returned %s", n,
				step_names[k], store_errname(err));
			goto out;
		}
		st_pass();
		failed_step = k;
		t->first_fail[k]++;
		/* consistent and unchanged after the failure */
		if (c.s && k != 22) {
			struct store_id root;

			if (st_check_store(__FILE__, __LINE__, c.s, c.dir,
					   &root))
				fprintf(stderr, "    (allocation %ld, %s)\n", n,
					step_names[k]);
			if (!store_id_equal(&root, &before))
				st_fail(__FILE__, __LINE__,
					"allocation %ld: %s changed the root",
					n, step_names[k]);
		}
		/* and usable: the step succeeds on a second try */
		fail_at = 0;
		if (c.s)
			before_retry(&c, k);
		err = call(&c, k);
		if (err != STORE_OK) {
			st_fail(__FILE__, __LINE__,
				"allocation %ld: retry of %s = %s", n,
				step_names[k], store_errname(err));
			goto out;
		}
	}
	st_pass();
out:
	reached = atomic_load(&hit);
	if (reached) {
		t->injected++;
		if (failed_step < 0)
			t->ignored++;
	}
	t->lost += c.sessions_lost;
	fail_at = 0;
	/* the directory reopens consistent */
	store_close(c.s);
	c.s = NULL;
	if (st_open(&c.s, c.dir, NULL) != STORE_OK)
		st_fail(__FILE__, __LINE__, "allocation %ld: reopen failed", n);
	else if (st_check_store(__FILE__, __LINE__, c.s, c.dir, NULL))
		fprintf(stderr, "    (allocation %ld, reopened)\n", n);
	store_close(c.s);
	t_rmrf(c.dir);
	free(c.dir);
	return reached;
}

int main(void)
{
	struct tally t;
	long n;
	int k;

	for (sticky = 1; sticky >= 0; sticky--) {
		memset(&t, 0, sizeof(t));
		for (n = 1; n < 100000; n++)
			if (!run(n, &t))
				break;
		CHECK(t.injected > 0);
		printf(
		    "alloc: %s: %ld allocations failed in turn (%ld absorbed "
		    "without an error, %ld sessions lost with a failed "
		    "commit)\n",
		    sticky ? "from the Nth on" : "the Nth only", t.injected,
		    t.ignored, t.lost);
	}
	for (k = 0; k < NSTEPS; k++)
		if (t.first_fail[k])
			printf("alloc:   %-22s ENOMEM %d times\n",
			       step_names[k], t.first_fail[k]);
	return t_done();
}
