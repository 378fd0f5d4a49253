/*
 * unit_gc.c - the commit lifecycle in the store: delete, gc and retention
 * under the needed-files rule.
 *
 * - a deleted commit's files that nothing else needs are removed; those the
 *   current state or another commit needs stay;
 * - deleting the current state's commit keeps the state, and its files go
 *   when the state moves on;
 * - a persisted commit deleted is gone from the file `commits`, the rest of
 *   it stays;
 * - a session based on a deleted commit keeps its view and commits; the
 *   files it needed go once it has ended;
 * - gc removes the files of commits forgotten at a reopen without persist;
 * - keep_commits keeps the newest N.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

#define PAGE STORE_PAGE_SIZE

/* 1 if dir has the module commit file of mod as commit holds it. */
static int has_file(struct store *s, const char *dir,
		    const struct store_id *commit, const struct store_id *mod,
		    struct store_id *mc_out)
{
	struct store_pair *pairs = NULL;
	char name[200];
	size_t n = 0, i;
	int found = 0;

	if (store_commit_get(s, commit, &pairs, &n) != STORE_OK)
		return -1;
	for (i = 0; i < n; i++) {
		if (!store_id_equal(&pairs[i].module, mod))
			continue;
		if (mc_out)
			*mc_out = pairs[i].commit;
		st_commit_name(name, sizeof(name), mod, &pairs[i].commit);
		found = st_exists(dir, name);
	}
	free(pairs);
	return found;
}

static int exists_mc(const char *dir, const struct store_id *mod,
		     const struct store_id *mc)
{
	char name[200];

	st_commit_name(name, sizeof(name), mod, mc);
	return st_exists(dir, name);
}

/* A session on the current state writing value v at page 0; committed. */
static struct store_id commit_value(struct store *s, const struct store_id *m,
				    int v)
{
	struct store_id sid, c;

	memset(&c, 0, sizeof(c));
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(st_fill(s, &sid, m, 0, v, 100), STORE_OK);
	CHECK_ERR(st_commit(s, &sid, &c), STORE_OK);
	return c;
}

static void test_delete(const char *dir)
{
	struct store *s = NULL;
	struct store_id m, m2, c1, c2, c3, mc1, mc2, mc3, sid, cs;
	struct store_stats st;
	unsigned char *buf = NULL;
	size_t len = 0;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		return;
	CHECK_ERR(st_deploy(s, "gc: m", 4 * PAGE, &m), STORE_OK);
	CHECK_ERR(st_deploy(s, "gc: m2", 2 * PAGE, &m2), STORE_OK);
	c1 = commit_value(s, &m, 1);
	c2 = commit_value(s, &m, 2);
	CHECK(has_file(s, dir, &c1, &m, &mc1) == 1);
	CHECK(has_file(s, dir, &c2, &m, &mc2) == 1);
	CHECK_ERR(store_commit_delete(s, &c3), STORE_ENOCOMMIT);

	/* c1 alone needed mc1; m2's initial memory is needed by c2 */
	CHECK_ERR(store_commit_delete(s, &c1), STORE_OK);
	CHECK_ERR(store_commit_delete(s, &c1), STORE_ENOCOMMIT);
	CHECK(!exists_mc(dir, &m, &mc1));
	CHECK(exists_mc(dir, &m, &mc2));
	CHECK(store_commits_count(s) == 1);
	ST_CHECK_STORE(s, dir, NULL);

	/* persisted, then the current state's commit deleted: state stays */
	c3 = commit_value(s, &m, 3);
	CHECK(has_file(s, dir, &c3, &m, &mc3) == 1);
	CHECK_ERR(store_persist(s), STORE_OK);
	CHECK_ERR(store_commit_delete(s, &c3), STORE_OK);
	{
		struct store_id root = st_root(s);

		CHECK_ID(&root, &c3);
	}
	CHECK(exists_mc(dir, &m, &mc3)); /* the current state needs it */
	CHECK_ERR(store_restore(s, &c3), STORE_ENOCOMMIT);
	CHECK(st_read(dir, "commits", &buf, &len) == 0);
	if (buf) {
		char h2[STORE_HEX_LEN + 1], h3[STORE_HEX_LEN + 1];

		CHECK(strstr((char *)buf, st_hex(&c2, h2)) != NULL);
		CHECK(strstr((char *)buf, st_hex(&c3, h3)) == NULL);
		free(buf);
		buf = NULL;
	}
	CHECK_ERR(store_restore(s, &c2), STORE_OK);
	CHECK(!exists_mc(dir, &m, &mc3)); /* the state left it: it went */
	ST_CHECK_STORE(s, dir, NULL);

	/* a session on c2 outlives the delete of c2 */
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	c3 = commit_value(s, &m, 4); /* current moves on */
	CHECK_ERR(store_commit_delete(s, &c2), STORE_OK);
	CHECK(exists_mc(dir, &m, &mc2)); /* the session needs it */
	{
		unsigned char b[100], want[100];

		memset(want, 2, sizeof(want));
		CHECK_ERR(store_session_read(s, &sid, &m, 0, b, sizeof(b)),
			  STORE_OK);
		CHECK(!memcmp(b, want, sizeof(b)));
	}
	CHECK_ERR(st_fill(s, &sid, &m2, 0, 9, 10), STORE_OK);
	CHECK_ERR(st_commit(s, &sid, &cs), STORE_OK); /* on a deleted base */
	CHECK(exists_mc(dir, &m, &mc2));	      /* cs holds mc2 for m */
	CHECK_ERR(store_commit_delete(s, &cs), STORE_OK);
	CHECK(exists_mc(dir, &m, &mc2)); /* cs is the current state */
	CHECK_ERR(store_restore(s, &c3), STORE_OK);
	CHECK(!exists_mc(dir, &m, &mc2)); /* now nothing needs it */
	CHECK_ERR(store_get_stats(s, &st), STORE_OK);
	CHECK(st.commits_deleted == 4);
	CHECK(st.files_removed >= 3);
	CHECK(st.bytes_freed > 0);
	ST_CHECK_STORE(s, dir, NULL);
	store_close(s);
}

static void test_session_drop(const char *dir)
{
	struct store *s = NULL;
	struct store_id m, c1, c2, mc1, sid;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		return;
	CHECK_ERR(st_deploy(s, "gc: drop", PAGE, &m), STORE_OK);
	c1 = commit_value(s, &m, 1);
	CHECK(has_file(s, dir, &c1, &m, &mc1) == 1);
	CHECK_ERR(st_begin(s, &sid), STORE_OK); /* on c1 */
	c2 = commit_value(s, &m, 2);
	(void)c2;
	CHECK_ERR(store_commit_delete(s, &c1), STORE_OK);
	CHECK(exists_mc(dir, &m, &mc1));
	CHECK_ERR(store_session_drop(s, &sid), STORE_OK);
	CHECK(!exists_mc(dir, &m, &mc1)); /* the last session ended */
	ST_CHECK_STORE(s, dir, NULL);
	store_close(s);
}

static void test_gc(const char *dir)
{
	struct store *s = NULL;
	struct store_id m, c1, c2, c3, mc1, mc2, mc3;
	struct store_gc_info info;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		return;
	CHECK_ERR(st_deploy(s, "gc: gc", 8 * PAGE, &m), STORE_OK);
	c1 = commit_value(s, &m, 1);
	CHECK_ERR(store_persist(s), STORE_OK);
	c2 = commit_value(s, &m, 2);
	c3 = commit_value(s, &m, 3);
	CHECK(has_file(s, dir, &c1, &m, &mc1) == 1);
	CHECK(has_file(s, dir, &c2, &m, &mc2) == 1);
	CHECK(has_file(s, dir, &c3, &m, &mc3) == 1);
	CHECK_ERR(store_gc(s, &info), STORE_OK); /* everything is needed */
	CHECK(info.removed_files == 0 && info.freed_bytes == 0);
	/* c2 is forgotten at the reopen: not persisted, not current */
	store_close(s);
	s = NULL;
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		return;
	CHECK_ERR(store_gc(s, &info), STORE_OK);
	CHECK(info.removed_files == 1);
	CHECK(info.freed_bytes >= PAGE);
	CHECK(exists_mc(dir, &m, &mc1)); /* in the file `commits` */
	CHECK(!exists_mc(dir, &m, &mc2));
	CHECK(exists_mc(dir, &m, &mc3)); /* the current state */
	CHECK_ERR(store_gc(s, &info), STORE_OK);
	CHECK(info.removed_files == 0);
	ST_CHECK_STORE(s, dir, NULL);
	store_close(s);
}

static void test_keep(const char *dir)
{
	struct store_options o = {0};
	struct store *s = NULL;
	struct store_id m, c[6], mc[6];
	int i;

	o.dir = dir;
	o.keep_commits = 2;
	CHECK_ERR(store_open(&s, &o), STORE_OK);
	if (!s)
		return;
	CHECK_ERR(st_deploy(s, "gc: keep", PAGE, &m), STORE_OK);
	for (i = 0; i < 6; i++) {
		c[i] = commit_value(s, &m, 10 + i);
		CHECK(has_file(s, dir, &c[i], &m, &mc[i]) == 1);
		CHECK(store_commits_count(s) == (size_t)(i < 2 ? i + 1 : 2));
	}
	for (i = 0; i < 4; i++) {
		CHECK(!exists_mc(dir, &m, &mc[i]));
		CHECK_ERR(store_restore(s, &c[i]), STORE_ENOCOMMIT);
	}
	CHECK_ERR(store_restore(s, &c[4]), STORE_OK);
	ST_CHECK_STORE(s, dir, NULL);
	store_close(s);
}

int main(void)
{
	static const struct t_case tests[] = {
	    {"gc-delete", test_delete},
	    {"gc-drop", test_session_drop},
	    {"gc-gc", test_gc},
	    {"gc-keep", test_keep},
	};

	t_run_each(tests, sizeof(tests) / sizeof(tests[0]));
	return t_done();
}
