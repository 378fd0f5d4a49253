/*
 * unit_reopen.c - what survives store_close() and store_open(): modules,
 * their current commits, the files and the root always; commit ids only
 * through store_persist() and the file `commits`, which restore merges.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

struct fixture {
	char *dir;
	struct store *s;
	struct store_id m1, m2, m3;
	struct store_id c1, c2;
};

/* Deploy m1 (64 KiB), m2 (8 KiB); commit c1 (m1 written), c2 (m2 grown). */
static int setup(struct fixture *f, const char *tag)
{
	struct store_id sid;

	memset(f, 0, sizeof(*f));
	f->dir = t_tmpdir(tag);
	if (!f->dir)
		return -1;
	CHECK_ERR(st_open(&f->s, f->dir, NULL), STORE_OK);
	if (!f->s)
		return -1;
	CHECK_ERR(st_deploy(f->s, "reopen one", 65536, &f->m1), STORE_OK);
	CHECK_ERR(st_deploy(f->s, "reopen two", 8192, &f->m2), STORE_OK);
	CHECK_ERR(st_begin(f->s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f->s, &sid, &f->m1, 1000, 0x11, 5000), STORE_OK);
	CHECK_ERR(st_commit(f->s, &sid, &f->c1), STORE_OK);
	CHECK_ERR(st_begin(f->s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f->s, &sid, &f->m2, 8190, 0x22, 10), STORE_OK);
	CHECK_ERR(st_commit(f->s, &sid, &f->c2), STORE_OK);
	return 0;
}

static void teardown(struct fixture *f)
{
	store_close(f->s);
	t_rmrf(f->dir);
	free(f->dir);
}

static int reopen(struct fixture *f)
{
	store_close(f->s);
	f->s = NULL;
	CHECK_ERR(st_open(&f->s, f->dir, NULL), STORE_OK);
	return f->s ? 0 : -1;
}

/* The module list, to compare before and after a reopen. */
static int same_modules(struct store_module_info *a, size_t na,
			struct store_module_info *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++) {
		if (!store_id_equal(&a[i].id, &b[i].id) ||
		    a[i].size != b[i].size ||
		    !a[i].has_commit != !b[i].has_commit)
			return 0;
		if (a[i].has_commit &&
		    !store_id_equal(&a[i].last_commit, &b[i].last_commit))
			return 0;
	}
	return 1;
}

static void test_without_persist(void)
{
	struct fixture f;
	struct store_module_info *before = NULL, *after = NULL, info;
	struct store_session_info si, *sl = NULL;
	struct store_pair *pairs = NULL;
	struct st_snap s1, s2;
	struct store_stats stats;
	struct store_id root, sid, c3;
	size_t nb = 0, na = 0, n = 0;
	int created = -1;
	unsigned char buf[16];

	if (setup(&f, "reopen-nopersist"))
		goto out;
	CHECK_ERR(st_deploy(f.s, "reopen three", 4096, &f.m3), STORE_OK);
	/* an open session does not survive */
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &f.m1, 0, 0x77, 16), STORE_OK);
	CHECK(store_commits_count(f.s) == 2);
	CHECK_ERR(store_module_list(f.s, &before, &nb), STORE_OK);
	CHECK(nb == 3);
	root = st_root(f.s);
	CHECK_ID(&root, &f.c2);
	CHECK(st_snap_take(f.dir, &s1) == 0);

	if (reopen(&f))
		goto out;
	CHECK(st_snap_take(f.dir, &s2) == 0);
	CHECK(st_snap_equal("reopen", &s1, &s2));
	st_snap_release(&s1);
	st_snap_release(&s2);
	/* commits are gone */
	CHECK(store_commits_count(f.s) == 0);
	CHECK_ERR(store_commit_get(f.s, &f.c1, &pairs, &n), STORE_ENOCOMMIT);
	CHECK_ERR(store_commit_get(f.s, &f.c2, &pairs, &n), STORE_ENOCOMMIT);
	CHECK_ERR(store_session_begin(f.s, &f.c1, &si), STORE_ENOCOMMIT);
	CHECK_ERR(store_restore(f.s, &f.c1), STORE_ENOCOMMIT);
	CHECK(!st_exists(f.dir, "commits"));
	/* sessions are gone */
	CHECK_ERR(store_session_list(f.s, &sl, &n), STORE_OK);
	CHECK(n == 0);
	free(sl);
	CHECK_ERR(store_session_read(f.s, &sid, &f.m1, 0, buf, 1),
		  STORE_ENOSESSION);
	/* modules, their commits, the files and the root survive */
	CHECK_ERR(store_module_list(f.s, &after, &na), STORE_OK);
	CHECK(same_modules(before, nb, after, na));
	root = st_root(f.s);
	CHECK_ID(&root, &f.c2);
	ST_CHECK_STORE(f.s, f.dir, NULL);
	CHECK_ERR(store_get_stats(f.s, &stats), STORE_OK);
	CHECK(stats.modules == 3 && stats.commits == 0 && stats.sessions == 0);
	CHECK_ERR(store_module_get(f.s, &f.m2, &info), STORE_OK);
	CHECK(info.size == 12288 && info.has_commit);
	CHECK_ERR(store_module_get(f.s, &f.m3, &info), STORE_OK);
	CHECK(info.size == 4096 && !info.has_commit);

	/* deploying again: created 0, size ignored, info as it is */
	CHECK_ERR(store_deploy(f.s, "reopen one", 10, 4096, &info, &created),
		  STORE_OK);
	CHECK(created == 0);
	CHECK(info.size == 65536 && info.has_commit);
	CHECK_ID(&info.id, &f.m1);
	created = -1;
	CHECK_ERR(store_deploy_id(f.s, &f.m3, 8192, &info, &created), STORE_OK);
	CHECK(created == 0 && info.size == 4096 && !info.has_commit);

	/* a session starts from the surviving state and can commit */
	CHECK_ERR(store_session_begin(f.s, NULL, &si), STORE_OK);
	CHECK(si.has_base);
	CHECK_ID(&si.base, &f.c2);
	CHECK_ERR(store_session_read(f.s, &si.id, &f.m2, 8190, buf, 10),
		  STORE_OK);
	CHECK(buf[0] == 0x22 && buf[9] == 0x22);
	CHECK_ERR(store_session_read(f.s, &si.id, &f.m1, 999, buf, 2),
		  STORE_OK);
	CHECK(buf[0] == 0 && buf[1] == 0x11);
	CHECK_ERR(st_fill(f.s, &si.id, &f.m3, 0, 0x33, 1), STORE_OK);
	CHECK_ERR(st_commit(f.s, &si.id, &c3), STORE_OK);
	CHECK(store_commits_count(f.s) == 1);
	ST_CHECK_STORE(f.s, f.dir, &root);
	CHECK_ID(&root, &c3);
	ST_CHECK_COMMITS(f.s, f.dir);
out:
	free(before);
	free(after);
	teardown(&f);
}

static void test_with_persist(void)
{
	struct fixture f;
	struct store_session_info si;
	struct store_pair *p1 = NULL, *p2 = NULL;
	struct store_id root, sid, c3;
	size_t n1 = 0, n2 = 0, n;

	if (setup(&f, "reopen-persist"))
		goto out;
	CHECK_ERR(store_commit_get(f.s, &f.c1, &p1, &n1), STORE_OK);
	CHECK_ERR(store_commit_get(f.s, &f.c2, &p2, &n2), STORE_OK);
	CHECK_ERR(store_persist(f.s), STORE_OK);
	ST_CHECK_COMMITS_FILE(f.s, f.dir);
	/* a commit after persist is not in the file */
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &f.m1, 0, 0x44, 4096), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c3), STORE_OK);
	CHECK(store_commits_count(f.s) == 3);

	if (reopen(&f))
		goto out;
	CHECK(store_commits_count(f.s) == 2);
	ST_CHECK_COMMITS(f.s, f.dir);
	ST_CHECK_COMMITS_FILE(f.s, f.dir);
	root = st_root(f.s);
	CHECK_ID(&root, &c3); /* the state survives anyway */
	ST_CHECK_STORE(f.s, f.dir, NULL);
	if (p1) {
		struct store_pair *q = NULL;

		CHECK_ERR(store_commit_get(f.s, &f.c1, &q, &n), STORE_OK);
		CHECK(q && n == n1 && !memcmp(q, p1, n * sizeof(*q)));
		free(q);
	}
	if (p2) {
		struct store_pair *q = NULL;

		CHECK_ERR(store_commit_get(f.s, &f.c2, &q, &n), STORE_OK);
		CHECK(q && n == n2 && !memcmp(q, p2, n * sizeof(*q)));
		free(q);
	}
	{
		struct store_pair *q = NULL;

		CHECK_ERR(store_commit_get(f.s, &c3, &q, &n), STORE_ENOCOMMIT);
		free(q);
	}
	CHECK_ERR(store_restore(f.s, &c3), STORE_ENOCOMMIT);
	root = st_root(f.s);
	CHECK_ID(&root, &c3);
	/* a persisted commit is usable as a base and for restore */
	CHECK_ERR(store_session_begin(f.s, &f.c1, &si), STORE_OK);
	CHECK(si.has_base);
	CHECK_ID(&si.base, &f.c1);
	CHECK_ERR(store_session_drop(f.s, &si.id), STORE_OK);
	CHECK_ERR(store_restore(f.s, &f.c1), STORE_OK);
	ST_CHECK_STORE(f.s, f.dir, &root);
	CHECK_ID(&root, &f.c1);
	CHECK_ERR(store_restore(f.s, &f.c2), STORE_OK);
	ST_CHECK_STORE(f.s, f.dir, &root);
	CHECK_ID(&root, &f.c2);
out:
	free(p1);
	free(p2);
	teardown(&f);
}

/* A commit known only to the file `commits` is merged in by restore. */
static void test_restore_merges_file(void)
{
	struct fixture f;
	struct store_session_info si;
	struct store_pair *p = NULL;
	struct store_id root, sid, c3, bogus;
	unsigned char *saved = NULL;
	size_t len = 0, n;
	char *path = NULL;

	if (setup(&f, "reopen-merge"))
		goto out;
	CHECK_ERR(store_persist(f.s), STORE_OK);
	CHECK(st_read(f.dir, "commits", &saved, &len) == 0);
	store_close(f.s);
	f.s = NULL;
	path = st_path(f.dir, "commits");
	CHECK(path && remove(path) == 0);
	CHECK_ERR(st_open(&f.s, f.dir, NULL), STORE_OK);
	if (!f.s || !saved)
		goto out;
	CHECK(store_commits_count(f.s) == 0);
	/* a commit only in memory */
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &f.m2, 0, 0x55, 3), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c3), STORE_OK);
	CHECK(store_commits_count(f.s) == 1);
	/* the file comes back (as from a backup) */
	CHECK(st_write(f.dir, "commits", saved, len) == 0);
	/* session_begin does not consult the file */
	CHECK_ERR(store_session_begin(f.s, &f.c1, &si), STORE_ENOCOMMIT);
	/* still unknown after merging: ENOCOMMIT, nothing changes */
	memset(&bogus, 0xAB, sizeof(bogus));
	CHECK_ERR(store_restore(f.s, &bogus), STORE_ENOCOMMIT);
	root = st_root(f.s);
	CHECK_ID(&root, &c3);
	/* restore merges c1 and c2 in, keeping c3 */
	CHECK_ERR(store_restore(f.s, &f.c1), STORE_OK);
	CHECK(store_commits_count(f.s) == 3);
	ST_CHECK_STORE(f.s, f.dir, &root);
	CHECK_ID(&root, &f.c1);
	CHECK_ERR(store_commit_get(f.s, &f.c2, &p, &n), STORE_OK);
	free(p);
	p = NULL;
	CHECK_ERR(store_commit_get(f.s, &c3, &p, &n), STORE_OK);
	free(p);
	p = NULL;
	CHECK_ERR(store_session_begin(f.s, &f.c2, &si), STORE_OK);
	ST_CHECK_COMMITS(f.s, f.dir);
	CHECK_ERR(store_restore(f.s, &c3), STORE_OK);
	ST_CHECK_STORE(f.s, f.dir, &root);
	CHECK_ID(&root, &c3);
out:
	free(saved);
	free(path);
	teardown(&f);
}

/* Temporaries are removed by store_open. */
static void test_tmp_removed(void)
{
	struct fixture f;

	if (setup(&f, "reopen-tmp"))
		goto out;
	store_close(f.s);
	f.s = NULL;
	CHECK(st_write(f.dir, ".tmp-left-over", "x", 1) == 0);
	CHECK(st_count_tmp(f.dir) == 1);
	CHECK_ERR(st_open(&f.s, f.dir, NULL), STORE_OK);
	CHECK(st_count_tmp(f.dir) == 0);
	ST_CHECK_STORE(f.s, f.dir, NULL);
out:
	teardown(&f);
}

/* A directory that does not exist yet is created 0700. */
static void test_creates_dir(void)
{
	char *base = t_tmpdir("reopen-create");
	char *dir = base ? st_path(base, "a-state-dir") : NULL;
	struct store *s = NULL;
	struct st_names names;
	struct stat sb;

	if (!dir)
		goto out;
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	      (sb.st_mode & 0777) == 0700);
	CHECK(st_names_list(dir, ST_PLAIN, &names) == 0 && names.n == 0);
	st_names_release(&names);
	CHECK_ERR(st_deploy(s, "in a new dir", 4096, NULL), STORE_OK);
	store_close(s);
	s = NULL;
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	ST_CHECK_STORE(s, dir, NULL);
	store_close(s);
	store_close(NULL);
out:
	t_rmrf(base);
	free(base);
	free(dir);
}

struct walk {
	struct store_id seen[8];
	size_t n;
	int stop_after;
};

static int walk_one(void *ctx, const struct store_id *commit,
		    const struct store_pair *pairs, size_t n)
{
	struct walk *w = ctx;

	(void)pairs;
	(void)n;
	if (w->n < 8)
		w->seen[w->n] = *commit;
	w->n++;
	return w->stop_after && (int)w->n >= w->stop_after ? 42 : 0;
}

/* store_commits_foreach: oldest first; a nonzero return stops the walk. */
static void test_foreach(void)
{
	struct fixture f;
	struct store_id sid, c3;
	struct walk w;

	if (setup(&f, "reopen-foreach"))
		goto out;
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &f.m1, 0, 0x66, 1), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c3), STORE_OK);
	/* back to c1: its id is not added again, the order stays */
	CHECK_ERR(store_restore(f.s, &f.c1), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, NULL), STORE_OK);
	memset(&w, 0, sizeof(w));
	CHECK_ERR(store_commits_foreach(f.s, walk_one, &w), STORE_OK);
	CHECK(w.n == 3);
	if (w.n == 3) {
		CHECK_ID(&w.seen[0], &f.c1);
		CHECK_ID(&w.seen[1], &f.c2);
		CHECK_ID(&w.seen[2], &c3);
	}
	memset(&w, 0, sizeof(w));
	w.stop_after = 2;
	(void)store_commits_foreach(f.s, walk_one, &w);
	CHECK(w.n == 2);
out:
	teardown(&f);
}

/* store_deploy_id: a module known by its id only, then by its code. */
static void test_deploy_id(void)
{
	char *dir = t_tmpdir("reopen-deploy-id");
	struct store *s = NULL;
	struct store_module_info info;
	struct store_id id;
	unsigned char zeros[8192];
	char name[STORE_HEX_LEN + 1];
	int created = -1;

	memset(zeros, 0, sizeof(zeros));
	st_h("streamed code", 13, &id);
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_ERR(store_deploy_id(s, &id, 8192, &info, &created), STORE_OK);
	CHECK(created == 1 && info.size == 8192 && !info.has_commit);
	CHECK_ID(&info.id, &id);
	st_hex(&id, name);
	{
		unsigned char *b = NULL;
		size_t len = 0;

		CHECK(st_read(dir, name, &b, &len) == 0 && len == 8192 &&
		      !memcmp(b, zeros, len));
		free(b);
	}
	created = -1;
	CHECK_ERR(store_deploy(s, "streamed code", 13, 4096, &info, &created),
		  STORE_OK);
	CHECK(created == 0 && info.size == 8192);
	ST_CHECK_STORE(s, dir, NULL);
out:
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

/*
 * A switch rewrites MOD_last_id in place, except when that file shares its
 * inode with another name: then the other name keeps its content.
 */
static void test_last_id_shared(void)
{
	struct fixture f;
	char hex[STORE_HEX_LEN + 1], name[STORE_HEX_LEN + 9];
	char *a = NULL, *b = NULL;
	unsigned char *buf = NULL;
	struct stat sb;
	size_t len;

	if (setup(&f, "reopen-shared"))
		goto out;
	snprintf(name, sizeof(name), "%s_last_id", st_hex(&f.m1, hex));
	a = st_path(f.dir, name);
	b = st_path(f.dir, ".shared");
	/* the link is made while no process has the directory open */
	CHECK_ERR(store_persist(f.s), STORE_OK);
	store_close(f.s);
	f.s = NULL;
	CHECK(a && b && link(a, b) == 0);
	CHECK(reopen(&f) == 0);
	CHECK_ERR(store_restore(f.s, &f.c1), STORE_OK); /* m1 unchanged */
	CHECK_ERR(store_restore(f.s, &f.c2), STORE_OK);
	{
		struct store_id sid, c3;

		CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
		CHECK_ERR(st_fill(f.s, &sid, &f.m1, 0, 0x33, 100), STORE_OK);
		CHECK_ERR(st_commit(f.s, &sid, &c3), STORE_OK);
	}
	CHECK(st_read(f.dir, ".shared", &buf, &len) == 0);
	if (buf) { /* the old module commit id of m1, still */
		struct store_pair *pairs = NULL;
		size_t n = 0, i;

		CHECK_ERR(store_commit_get(f.s, &f.c1, &pairs, &n), STORE_OK);
		for (i = 0; i < n; i++)
			if (store_id_equal(&pairs[i].module, &f.m1))
				CHECK(len == STORE_HEX_LEN + 1 &&
				      !memcmp(buf,
					      st_hex(&pairs[i].commit, hex),
					      STORE_HEX_LEN));
		free(pairs);
	}
	CHECK(a && stat(a, &sb) == 0 && sb.st_nlink == 1);
	ST_CHECK_STORE(f.s, f.dir, NULL);
	CHECK(reopen(&f) == 0);
	ST_CHECK_STORE(f.s, f.dir, NULL);
out:
	free(buf);
	free(a);
	free(b);
	teardown(&f);
}

/*
 * Close f's store, put text as its .journal, open again: the journal moved
 * nothing, so open gives the state before and marks the journal carried
 * out.
 */
static void reopen_ignores_journal(struct fixture *f, const char *text,
				   size_t len)
{
	struct store_id root, after;

	CHECK_ERR(store_root(f->s, &root), STORE_OK);
	store_close(f->s);
	f->s = NULL;
	CHECK(st_write(f->dir, ".journal", text, len) == 0);
	CHECK(st_journal_live(f->dir));
	CHECK_ERR(st_open(&f->s, f->dir, NULL), STORE_OK);
	if (!f->s)
		return;
	CHECK(!st_journal_live(f->dir));
	CHECK_ERR(store_root(f->s, &after), STORE_OK);
	CHECK_ID(&after, &root);
	ST_CHECK_STORE(f->s, f->dir, NULL);
}

/* A journal cut short while it was written (no checksum line). */
static void test_torn_journal(void)
{
	static const char torn[] = "modstore-journal 1\ncommit 0123";
	struct fixture f;

	if (setup(&f, "reopen-torn") == 0)
		reopen_ignores_journal(&f, torn, sizeof(torn) - 1);
	teardown(&f);
}

/*
 * A journal naming a new commit file that is neither in place nor under
 * its temporary name: its commit failed at the journal and took the file
 * back, so no name moved.
 */
static void test_journal_without_file(void)
{
	struct fixture f;
	struct store_id root, check, mc;
	char buf[512], a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1],
	    c[STORE_HEX_LEN + 1];
	int n;

	if (setup(&f, "reopen-nofile"))
		goto out;
	CHECK_ERR(store_root(f.s, &root), STORE_OK);
	memset(mc.b, 0x5a, sizeof(mc.b));
	n = snprintf(
	    buf, sizeof(buf),
	    "modstore-journal 1\ncommit %s\n%s %s .tmp-0123456789abcdef\n",
	    st_hex(&root, a), st_hex(&f.m1, b), st_hex(&mc, c));
	st_h(buf, (size_t)n, &check);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "end %s\n",
		      st_hex(&check, a));
	reopen_ignores_journal(&f, buf, (size_t)n);
out:
	teardown(&f);
}

/* A journal of version 2 with its checksum line into buf; its length. */
static int journal_v2(char *buf, size_t cap, unsigned seq, const char *op,
		      const struct store_id *root, const char *lines)
{
	char a[STORE_HEX_LEN + 1];
	struct store_id check;
	int n;

	n = snprintf(buf, cap, "modstore-journal 2\nseq %u\n%s %s\n%s", seq, op,
		     st_hex(root, a), lines);
	st_h(buf, (size_t)n, &check);
	n += snprintf(buf + n, cap - (size_t)n, "end %s\n", st_hex(&check, a));
	return n;
}

/*
 * A journal naming a temporary that is there but does not hold the memory
 * its id names (its data not durable when the power went, before the
 * switch's flush): its switch never began.
 */
static void test_journal_torn_tmp(void)
{
	static unsigned char junk[65536];
	struct fixture f;
	struct store_id root, mc;
	char buf[1024], line[256], a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1];
	int n;

	if (setup(&f, "reopen-torntmp"))
		goto out;
	CHECK_ERR(store_root(f.s, &root), STORE_OK);
	memset(mc.b, 0x5a, sizeof(mc.b));
	memset(junk, 0x77, sizeof(junk));
	snprintf(line, sizeof(line), "%s %s .tmp-0123456789abcdef\n",
		 st_hex(&f.m1, a), st_hex(&mc, b));
	n = journal_v2(buf, sizeof(buf), 9, "commit", &root, line);
	CHECK(st_write(f.dir, ".tmp-0123456789abcdef", junk, sizeof(junk)) ==
	      0);
	reopen_ignores_journal(&f, buf, (size_t)n);
	CHECK(st_count_tmp(f.dir) == 0);
out:
	teardown(&f);
}

/*
 * c3 changes both modules; the state is back at c2. Slot 0 holds the
 * older journal (m2 to c3's), slot 1 the one after it (m1 to c3's), or
 * what the test puts there.
 */
static int two_journals(struct fixture *f, struct store_id *c3,
			const char *slot1, size_t len1, int swap)
{
	struct store_pair *pairs = NULL;
	struct store_id sid;
	char buf[1024], line[256], a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1];
	size_t n = 0, i;
	int len;

	CHECK_ERR(st_begin(f->s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f->s, &sid, &f->m1, 0, 0x31, 10), STORE_OK);
	CHECK_ERR(st_fill(f->s, &sid, &f->m2, 0, 0x32, 10), STORE_OK);
	CHECK_ERR(st_commit(f->s, &sid, c3), STORE_OK);
	CHECK_ERR(store_restore(f->s, &f->c2), STORE_OK);
	CHECK_ERR(store_commit_get(f->s, c3, &pairs, &n), STORE_OK);
	store_close(f->s);
	f->s = NULL;
	for (i = 0; i < n; i++) {
		if (!store_id_equal(&pairs[i].module, &f->m2))
			continue;
		snprintf(line, sizeof(line), "%s %s\n", st_hex(&f->m2, a),
			 st_hex(&pairs[i].commit, b));
		len = journal_v2(buf, sizeof(buf), 7, "restore", c3, line);
		CHECK(st_write(f->dir, swap ? ".journal.1" : ".journal", buf,
			       (size_t)len) == 0);
	}
	for (i = 0; !slot1 && i < n; i++) {
		if (!store_id_equal(&pairs[i].module, &f->m1))
			continue;
		snprintf(line, sizeof(line), "%s %s\n", st_hex(&f->m1, a),
			 st_hex(&pairs[i].commit, b));
		len = journal_v2(buf, sizeof(buf), 8, "restore", c3, line);
		CHECK(st_write(f->dir, ".journal.1", buf, (size_t)len) == 0);
	}
	if (slot1)
		CHECK(st_write(f->dir, swap ? ".journal" : ".journal.1", slot1,
			       len1) == 0);
	free(pairs);
	CHECK_ERR(st_open(&f->s, f->dir, NULL), STORE_OK);
	return f->s ? 0 : -1;
}

/*
 * Both slots live: the newer journal is replayed with the modules of the
 * older one it does not list, whose names may not have been durable when
 * the newer was written. Without them the state would be neither c2 nor c3.
 */
static void test_two_journals_merge(void)
{
	struct fixture f;
	struct store_id c3, root;

	if (setup(&f, "reopen-merge") == 0 &&
	    two_journals(&f, &c3, NULL, 0, 0) == 0) {
		CHECK(!st_journal_live(f.dir));
		CHECK_ERR(store_root(f.s, &root), STORE_OK);
		CHECK_ID(&root, &c3);
		ST_CHECK_STORE(f.s, f.dir, NULL);
	}
	teardown(&f);
}

/*
 * An idle mark "done N" says every journal up to N is carried out and
 * durable: a live older journal that a cut kept while losing its own mark
 * is not replayed over the newer names.
 */
static void test_done_mark(void)
{
	static const char done[] = "modstore-journal 0\ndone 7\n";
	struct fixture f;
	struct store_id c3, root;

	if (setup(&f, "reopen-done") == 0 &&
	    two_journals(&f, &c3, done, sizeof(done) - 1, 0) == 0) {
		CHECK(!st_journal_live(f.dir));
		CHECK_ERR(store_root(f.s, &root), STORE_OK);
		CHECK_ID(&root, &f.c2);
		ST_CHECK_STORE(f.s, f.dir, NULL);
	}
	teardown(&f);
}

/*
 * The older journal's commit made a file whose link to its name was not
 * durable when the power went (it is there under its temporary name
 * only), and the newer journal, a restore, moves that module elsewhere:
 * the file still goes in place, for the commit, persisted, needs it.
 */
static void test_older_file_placed(void)
{
	struct store_pair *pairs = NULL, *old = NULL;
	struct fixture f;
	struct store_id sid, c3, root;
	char buf[1024], lines[512], a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1],
	    name[STORE_HEX_LEN * 2 + 2];
	char *from = NULL, *to = NULL;
	size_t n = 0, no = 0, i;
	int len, pos = 0;

	if (setup(&f, "reopen-place"))
		goto out;
	CHECK_ERR(store_commit_get(f.s, &f.c2, &old, &no), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &f.m1, 0, 0x41, 10), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c3), STORE_OK);
	CHECK_ERR(store_persist(f.s), STORE_OK);
	CHECK_ERR(store_commit_get(f.s, &c3, &pairs, &n), STORE_OK);
	store_close(f.s);
	f.s = NULL;
	for (i = 0; i < n; i++) {
		if (!store_id_equal(&pairs[i].module, &f.m1))
			continue;
		snprintf(name, sizeof(name), "%s_%s", st_hex(&f.m1, a),
			 st_hex(&pairs[i].commit, b));
		from = st_path(f.dir, name);
		to = st_path(f.dir, ".tmp-00000000000000aa");
		CHECK(from && to && rename(from, to) == 0);
		pos += snprintf(lines + pos, sizeof(lines) - (size_t)pos,
				"%s %s .tmp-00000000000000aa\n", a, b);
	}
	len = journal_v2(buf, sizeof(buf), 7, "commit", &c3, lines);
	CHECK(st_write(f.dir, ".journal", buf, (size_t)len) == 0);
	for (i = 0, pos = 0; i < no; i++)
		if (store_id_equal(&old[i].module, &f.m1))
			pos += snprintf(
			    lines + pos, sizeof(lines) - (size_t)pos, "%s %s\n",
			    st_hex(&f.m1, a), st_hex(&old[i].commit, b));
	len = journal_v2(buf, sizeof(buf), 8, "restore", &f.c2, lines);
	CHECK(st_write(f.dir, ".journal.1", buf, (size_t)len) == 0);
	CHECK_ERR(st_open(&f.s, f.dir, NULL), STORE_OK);
	if (f.s) {
		CHECK(from && access(from, F_OK) == 0);
		CHECK_ERR(store_root(f.s, &root), STORE_OK);
		CHECK_ID(&root, &f.c2);
		ST_CHECK_STORE(f.s, f.dir, NULL);
	}
out:
	free(from);
	free(to);
	free(pairs);
	free(old);
	teardown(&f);
}

/*
 * At open, the slot with the newest record counts as the last switch's: a
 * commit then writes the other slot, so the "done" mark that retires the
 * stale journal there is not overwritten before the commit's flush (a cut
 * then would let that journal replay over newer names).
 */
static void test_first_switch_slot(void)
{
	static const char done[] = "modstore-journal 0\ndone 7\n";
	struct fixture f;
	struct store_id c3, sid, c4;
	unsigned char *buf = NULL;
	size_t len = 0;

	/* slot 0 holds the mark, slot 1 the stale journal 7 */
	if (setup(&f, "reopen-slot") == 0 &&
	    two_journals(&f, &c3, done, sizeof(done) - 1, 1) == 0) {
		CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
		CHECK_ERR(st_fill(f.s, &sid, &f.m1, 0, 0x51, 10), STORE_OK);
		CHECK_ERR(st_commit(f.s, &sid, &c4), STORE_OK);
		CHECK(st_read(f.dir, ".journal", &buf, &len) == 0);
		CHECK(buf && len >= sizeof(done) - 1 &&
		      !memcmp(buf, done, sizeof(done) - 1));
		CHECK(st_journal_ok(f.dir, &c4) == 1);
		ST_CHECK_STORE(f.s, f.dir, NULL);
	}
	free(buf);
	teardown(&f);
}

int main(void)
{
	test_without_persist();
	test_with_persist();
	test_restore_merges_file();
	test_tmp_removed();
	test_creates_dir();
	test_foreach();
	test_deploy_id();
	test_last_id_shared();
	test_torn_journal();
	test_journal_without_file();
	test_journal_torn_tmp();
	test_two_journals_merge();
	test_done_mark();
	test_older_file_placed();
	test_first_switch_slot();
	return t_done();
}
