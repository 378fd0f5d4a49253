/*
 * unit_sessions.c - sessions: isolation, explicit bases, growth, ranges,
 * drop, expiry, limits, If-Match, deduplication of unchanged memory, late
 * modules, and many threads committing and reading at once.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

#define MAXMOD (64 * STORE_PAGE_SIZE)

struct fx {
	char *dir;
	struct store *s;
};

static int fx_open(struct fx *f, const char *tag, uint64_t max,
		   unsigned int max_sessions)
{
	struct store_options o;

	memset(f, 0, sizeof(*f));
	f->dir = t_tmpdir(tag);
	if (!f->dir)
		return -1;
	memset(&o, 0, sizeof(o));
	o.dir = f->dir;
	o.max_module_size = max;
	o.max_sessions = max_sessions;
	CHECK_ERR(store_open(&f->s, &o), STORE_OK);
	return f->s ? 0 : -1;
}

static void fx_close(struct fx *f)
{
	store_close(f->s);
	t_rmrf(f->dir);
	free(f->dir);
}

static int byte_at(struct store *s, const struct store_id *sid,
		   const struct store_id *mod, uint64_t off)
{
	unsigned char b;

	if (store_session_read(s, sid, mod, off, &b, 1) != STORE_OK)
		return -1;
	return b;
}

/* The module commit id of mod in a commit_info, or zeros. */
static struct store_id pair_of(const struct store_commit_info *ci,
			       const struct store_id *mod)
{
	struct store_id none;
	size_t i;

	for (i = 0; i < ci->n; i++)
		if (store_id_equal(&ci->pairs[i].module, mod))
			return ci->pairs[i].commit;
	memset(&none, 0, sizeof(none));
	return none;
}

static size_t count_plain(const char *dir)
{
	struct st_names n;
	size_t k;

	if (st_names_list(dir, ST_PLAIN, &n))
		return 0;
	k = n.n;
	st_names_release(&n);
	return k;
}

static void test_isolation(void)
{
	struct fx f;
	struct store_id a, b, sid, c0, c1, c2, root, want;
	struct store_session_info sa, sb, sc;
	struct store_commit_info ci;
	struct store_module_info info;
	unsigned char buf[8192];
	int fd = -1;

	memset(&ci, 0, sizeof(ci));
	if (fx_open(&f, "sess-isolation", 0, 0))
		goto out;
	CHECK_ERR(st_deploy(f.s, "iso a", 8192, &a), STORE_OK);
	CHECK_ERR(st_deploy(f.s, "iso b", 8192, &b), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 0, 1, 1), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c0), STORE_OK);

	CHECK_ERR(store_session_begin(f.s, NULL, &sa), STORE_OK);
	CHECK_ERR(store_session_begin(f.s, NULL, &sb), STORE_OK);
	CHECK(sa.has_base && sb.has_base);
	CHECK_ID(&sa.base, &c0);
	CHECK(!store_id_equal(&sa.id, &sb.id));
	CHECK_ERR(st_fill(f.s, &sa.id, &a, 100, 0xAA, 10), STORE_OK);
	CHECK(byte_at(f.s, &sa.id, &a, 100) == 0xAA);
	CHECK(byte_at(f.s, &sa.id, &a, 0) == 1);
	CHECK(byte_at(f.s, &sb.id, &a, 100) == 0);
	/* the current state does not see it */
	root = st_root(f.s);
	CHECK_ID(&root, &c0);
	CHECK_ERR(store_module_open(f.s, &a, &fd, &info), STORE_OK);
	if (fd >= 0) {
		CHECK(pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
		CHECK(buf[0] == 1 && buf[100] == 0);
		close(fd);
		fd = -1;
	}
	/* b commits; a began before and keeps its base */
	CHECK_ERR(st_fill(f.s, &sb.id, &b, 0, 0xBB, 1), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sb.id, &c1), STORE_OK);
	CHECK(byte_at(f.s, &sa.id, &b, 0) == 0);
	CHECK(byte_at(f.s, &sa.id, &a, 100) == 0xAA);
	CHECK_ERR(store_session_begin(f.s, NULL, &sc), STORE_OK);
	CHECK_ID(&sc.base, &c1);
	CHECK(byte_at(f.s, &sc.id, &b, 0) == 0xBB);
	CHECK(byte_at(f.s, &sc.id, &a, 100) == 0);
	/* a's commit is its base plus its writes: b's write is not in it */
	CHECK_ERR(store_session_commit(f.s, &sa.id, NULL, &ci), STORE_OK);
	c2 = ci.id;
	CHECK(ci.has_base);
	CHECK_ID(&ci.base, &c0);
	memset(buf, 0, sizeof(buf));
	buf[0] = 1;
	memset(buf + 100, 0xAA, 10);
	st_ref_memory_id(buf, sizeof(buf), &want);
	root = pair_of(&ci, &a);
	CHECK_ID(&root, &want);
	memset(buf, 0, sizeof(buf));
	st_ref_memory_id(buf, sizeof(buf), &want);
	root = pair_of(&ci, &b);
	CHECK_ID(&root, &want);
	store_commit_info_release(&ci);
	ST_CHECK_STORE(f.s, f.dir, &root);
	CHECK_ID(&root, &c2);
	/* sc still sees c1 */
	CHECK(byte_at(f.s, &sc.id, &b, 0) == 0xBB);
	CHECK(byte_at(f.s, &sc.id, &a, 100) == 0);
	ST_CHECK_COMMITS(f.s, f.dir);
	CHECK(store_commits_count(f.s) == 3);
out:
	fx_close(&f);
}

static void test_explicit_base(void)
{
	struct fx f;
	struct store_id a, sid, c0, c1, c2, bogus, root;
	struct store_session_info si;
	struct store_commit_info ci;

	memset(&ci, 0, sizeof(ci));
	if (fx_open(&f, "sess-base", 0, 0))
		goto out;
	CHECK_ERR(st_deploy(f.s, "base a", 4096, &a), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 0, 0x10, 1), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c0), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 0, 0x20, 1), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c1), STORE_OK);

	CHECK_ERR(store_session_begin(f.s, &c0, &si), STORE_OK);
	CHECK(si.has_base);
	CHECK_ID(&si.base, &c0);
	CHECK(byte_at(f.s, &si.id, &a, 0) == 0x10);
	CHECK_ERR(st_fill(f.s, &si.id, &a, 1, 0x30, 1), STORE_OK);
	CHECK_ERR(store_session_commit(f.s, &si.id, NULL, &ci), STORE_OK);
	c2 = ci.id;
	CHECK(ci.has_base);
	CHECK_ID(&ci.base, &c0);
	store_commit_info_release(&ci);
	ST_CHECK_STORE(f.s, f.dir, &root);
	CHECK_ID(&root, &c2);
	CHECK_ERR(store_session_begin(f.s, &c1, &si), STORE_OK);
	CHECK(byte_at(f.s, &si.id, &a, 0) == 0x20);
	CHECK(byte_at(f.s, &si.id, &a, 1) == 0);
	CHECK_ERR(store_session_begin(f.s, NULL, &si), STORE_OK);
	CHECK(byte_at(f.s, &si.id, &a, 0) == 0x10);
	CHECK(byte_at(f.s, &si.id, &a, 1) == 0x30);
	memset(&bogus, 0x5C, sizeof(bogus));
	CHECK_ERR(store_session_begin(f.s, &bogus, &si), STORE_ENOCOMMIT);
	/* the module id is not a commit id */
	CHECK_ERR(store_session_begin(f.s, &a, &si), STORE_ENOCOMMIT);
out:
	fx_close(&f);
}

static void test_growth_and_range(void)
{
	struct fx f;
	struct store_id g, sid, s2, c, mc;
	struct store_module_info info;
	unsigned char *want = calloc(1, MAXMOD), buf[16];
	uint64_t size = 0;
	size_t len;
	unsigned char *mem;

	if (!want || fx_open(&f, "sess-growth", MAXMOD, 0))
		goto out;
	CHECK_ERR(st_deploy(f.s, "grow", 4096, &g), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(store_session_size(f.s, &sid, &g, &size), STORE_OK);
	CHECK(size == 4096);
	/* reads: up to the end, not a byte past it */
	CHECK_ERR(store_session_read(f.s, &sid, &g, 4095, buf, 1), STORE_OK);
	CHECK_ERR(store_session_read(f.s, &sid, &g, 4096, buf, 0), STORE_OK);
	CHECK_ERR(store_session_read(f.s, &sid, &g, 4095, buf, 2),
		  STORE_ERANGE);
	CHECK_ERR(store_session_read(f.s, &sid, &g, 4096, buf, 1),
		  STORE_ERANGE);
	CHECK_ERR(store_session_read(f.s, &sid, &g, 5000, buf, 0),
		  STORE_ERANGE);
	CHECK_ERR(store_session_read(f.s, &sid, &g, UINT64_MAX, buf, 2),
		  STORE_ERANGE);
	CHECK_ERR(store_session_read(f.s, &sid, &g, UINT64_MAX - 1, buf, 16),
		  STORE_ERANGE);
	/* a write of zero bytes changes nothing (README), even past the end */
	CHECK_ERR(store_session_write(f.s, &sid, &g, 40000, buf, 0), STORE_OK);
	CHECK_ERR(store_session_size(f.s, &sid, &g, &size), STORE_OK);
	CHECK(size == 4096);
	/* a write past the end grows to whole pages, zero-filled */
	CHECK_ERR(st_fill(f.s, &sid, &g, 4096 + 10, 0x61, 5), STORE_OK);
	memset(want + 4106, 0x61, 5);
	CHECK_ERR(store_session_size(f.s, &sid, &g, &size), STORE_OK);
	CHECK(size == 8192);
	CHECK_ERR(store_session_read(f.s, &sid, &g, 8191, buf, 1), STORE_OK);
	CHECK_ERR(store_session_read(f.s, &sid, &g, 8192, buf, 1),
		  STORE_ERANGE);
	CHECK_ERR(st_fill(f.s, &sid, &g, 20000, 0x62, 1), STORE_OK);
	want[20000] = 0x62;
	CHECK_ERR(store_session_size(f.s, &sid, &g, &size), STORE_OK);
	CHECK(size == 20480);
	/* up to the maximum exactly */
	CHECK_ERR(st_fill(f.s, &sid, &g, MAXMOD - 1, 0x63, 1), STORE_OK);
	want[MAXMOD - 1] = 0x63;
	CHECK_ERR(store_session_size(f.s, &sid, &g, &size), STORE_OK);
	CHECK(size == MAXMOD);
	/* beyond: ETOOBIG, nothing written */
	CHECK_ERR(st_fill(f.s, &sid, &g, MAXMOD, 0x64, 1), STORE_ETOOBIG);
	CHECK_ERR(st_fill(f.s, &sid, &g, MAXMOD - 4, 0x65, 8), STORE_ETOOBIG);
	CHECK(byte_at(f.s, &sid, &g, MAXMOD - 4) == 0);
	CHECK(byte_at(f.s, &sid, &g, MAXMOD - 1) == 0x63);
	CHECK_ERR(store_session_size(f.s, &sid, &g, &size), STORE_OK);
	CHECK(size == MAXMOD);
	mem = st_session_mem(f.s, &sid, &g, &len);
	CHECK(mem && len == MAXMOD && !memcmp(mem, want, MAXMOD));
	free(mem);
	/* in a fresh session nothing grows on a refused write */
	CHECK_ERR(st_begin(f.s, &s2), STORE_OK);
	CHECK_ERR(st_fill(f.s, &s2, &g, MAXMOD - 4, 0x65, 8), STORE_ETOOBIG);
	CHECK_ERR(store_session_size(f.s, &s2, &g, &size), STORE_OK);
	CHECK(size == 4096);
	{
		enum store_err e = st_fill(f.s, &s2, &g, UINT64_MAX - 2, 1, 5);

		CHECK(e == STORE_ETOOBIG || e == STORE_EINVAL);
	}
	CHECK_ERR(store_session_size(f.s, &s2, &g, &size), STORE_OK);
	CHECK(size == 4096);
	CHECK_ERR(store_session_drop(f.s, &s2), STORE_OK);
	/* the grown memory is committed whole */
	CHECK_ERR(st_commit(f.s, &sid, &c), STORE_OK);
	CHECK_ERR(store_module_get(f.s, &g, &info), STORE_OK);
	CHECK(info.size == MAXMOD && info.has_commit);
	st_ref_memory_id(want, MAXMOD, &mc);
	CHECK_ID(&info.last_commit, &mc);
	ST_CHECK_STORE(f.s, f.dir, NULL);
	/* and a session on it sees the grown size */
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(store_session_size(f.s, &sid, &g, &size), STORE_OK);
	CHECK(size == MAXMOD);
	CHECK(byte_at(f.s, &sid, &g, 20000) == 0x62);
	/* unknown module in a session */
	CHECK_ERR(store_session_size(f.s, &sid, &c, &size), STORE_ENOMODULE);
	CHECK_ERR(store_session_read(f.s, &sid, &c, 0, buf, 1),
		  STORE_ENOMODULE);
	CHECK_ERR(st_fill(f.s, &sid, &c, 0, 1, 1), STORE_ENOMODULE);
out:
	free(want);
	fx_close(&f);
}

static void test_drop_and_end(void)
{
	struct fx f;
	struct store_id a, sid, c0, root;
	struct store_session_info *list = NULL;
	struct st_snap s1, s2;
	unsigned char buf[4];
	uint64_t size;
	size_t n = 0;

	if (fx_open(&f, "sess-drop", 0, 0))
		goto out;
	CHECK_ERR(st_deploy(f.s, "drop a", 4096, &a), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 0, 9, 4), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c0), STORE_OK);
	/* a commit ends the session */
	CHECK_ERR(store_session_read(f.s, &sid, &a, 0, buf, 1),
		  STORE_ENOSESSION);
	CHECK_ERR(st_fill(f.s, &sid, &a, 0, 1, 1), STORE_ENOSESSION);
	CHECK_ERR(store_session_size(f.s, &sid, &a, &size), STORE_ENOSESSION);
	CHECK_ERR(st_commit(f.s, &sid, NULL), STORE_ENOSESSION);
	CHECK_ERR(store_session_drop(f.s, &sid), STORE_ENOSESSION);
	CHECK_ERR(store_session_list(f.s, &list, &n), STORE_OK);
	CHECK(n == 0);
	free(list);
	/* a drop discards the writes */
	CHECK(st_snap_take(f.dir, &s1) == 0);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 0, 0x42, 4096), STORE_OK);
	CHECK_ERR(store_session_drop(f.s, &sid), STORE_OK);
	CHECK_ERR(store_session_read(f.s, &sid, &a, 0, buf, 1),
		  STORE_ENOSESSION);
	CHECK_ERR(st_commit(f.s, &sid, NULL), STORE_ENOSESSION);
	CHECK_ERR(store_session_drop(f.s, &sid), STORE_ENOSESSION);
	CHECK(st_snap_take(f.dir, &s2) == 0);
	CHECK(st_snap_equal("drop", &s1, &s2));
	st_snap_release(&s1);
	st_snap_release(&s2);
	root = st_root(f.s);
	CHECK_ID(&root, &c0);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK(byte_at(f.s, &sid, &a, 0) == 9);
out:
	fx_close(&f);
}

static void test_expect_root(void)
{
	struct fx f;
	struct store_id a, s1, s2, empty, c1, c2, root;
	struct store_session_info si;
	struct store_commit_info ci;

	memset(&ci, 0, sizeof(ci));
	if (fx_open(&f, "sess-ifmatch", 0, 0))
		goto out;
	st_h("", 0, &empty);
	CHECK_ERR(st_deploy(f.s, "match a", 4096, &a), STORE_OK);
	CHECK_ERR(store_session_begin(f.s, NULL, &si), STORE_OK);
	CHECK(!si.has_base);
	s1 = si.id;
	CHECK_ERR(st_begin(f.s, &s2), STORE_OK);
	CHECK_ERR(st_fill(f.s, &s1, &a, 0, 1, 1), STORE_OK);
	CHECK_ERR(st_fill(f.s, &s2, &a, 0, 2, 1), STORE_OK);
	/* the root of a store with no commit is H("") */
	CHECK_ERR(store_session_commit(f.s, &s1, &empty, &ci), STORE_OK);
	c1 = ci.id;
	CHECK(!ci.has_base);
	store_commit_info_release(&ci);
	/* s2's expectation is stale now */
	CHECK_ERR(store_session_commit(f.s, &s2, &empty, &ci), STORE_EMISMATCH);
	root = st_root(f.s);
	CHECK_ID(&root, &c1);
	ST_CHECK_STORE(f.s, f.dir, NULL);
	/* and the session is still there, writes and all */
	CHECK(byte_at(f.s, &s2, &a, 0) == 2);
	CHECK_ERR(st_fill(f.s, &s2, &a, 1, 3, 1), STORE_OK);
	CHECK_ERR(store_session_commit(f.s, &s2, &a, &ci), STORE_EMISMATCH);
	CHECK_ERR(store_session_commit(f.s, &s2, &c1, &ci), STORE_OK);
	c2 = ci.id;
	CHECK(!ci.has_base); /* its base had no commit */
	store_commit_info_release(&ci);
	root = st_root(f.s);
	CHECK_ID(&root, &c2);
	CHECK_ERR(st_begin(f.s, &s1), STORE_OK);
	CHECK(byte_at(f.s, &s1, &a, 0) == 2 && byte_at(f.s, &s1, &a, 1) == 3);
	ST_CHECK_STORE(f.s, f.dir, NULL);
out:
	fx_close(&f);
}

static void test_limits_and_expiry(void)
{
	struct fx f;
	struct store_id a, s[4], sid;
	struct store_session_info *list = NULL, si;
	struct store_stats st;
	struct store_commit_info ci;
	size_t n = 0, dropped = 99, i;
	unsigned char b;

	if (fx_open(&f, "sess-limits", 0, 3))
		goto out;
	CHECK_ERR(st_deploy(f.s, "limits a", 4096, &a), STORE_OK);
	for (i = 0; i < 3; i++)
		CHECK_ERR(st_begin(f.s, &s[i]), STORE_OK);
	CHECK_ERR(st_begin(f.s, &s[3]), STORE_EBUSY);
	CHECK_ERR(store_session_begin(f.s, NULL, &si), STORE_EBUSY);
	/* listed oldest first */
	CHECK_ERR(store_session_list(f.s, &list, &n), STORE_OK);
	CHECK(n == 3);
	for (i = 0; i < n && i < 3; i++)
		CHECK_ID(&list[i].id, &s[i]);
	free(list);
	list = NULL;
	CHECK_ERR(store_get_stats(f.s, &st), STORE_OK);
	CHECK(st.sessions == 3 && st.modules == 1);
	/* a drop frees a slot, and so does a commit */
	CHECK_ERR(store_session_drop(f.s, &s[1]), STORE_OK);
	CHECK_ERR(st_begin(f.s, &s[3]), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_EBUSY);
	CHECK_ERR(st_commit(f.s, &s[0], NULL), STORE_OK);
	CHECK_ERR(st_begin(f.s, &s[1]), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_EBUSY);
	/* an EMISMATCH leaves the session counted */
	memset(&ci, 0, sizeof(ci));
	CHECK_ERR(store_session_commit(f.s, &s[2], &a, &ci), STORE_EMISMATCH);
	CHECK_ERR(st_begin(f.s, &sid), STORE_EBUSY);
	/* expiry: nothing idle for an hour; everything idle for 0 s */
	CHECK_ERR(store_session_expire(f.s, 3600, &dropped), STORE_OK);
	CHECK(dropped == 0);
	CHECK_ERR(store_session_list(f.s, &list, &n), STORE_OK);
	CHECK(n == 3);
	free(list);
	list = NULL;
	CHECK_ERR(store_session_expire(f.s, 0, &dropped), STORE_OK);
	CHECK(dropped == 3);
	CHECK_ERR(store_session_list(f.s, &list, &n), STORE_OK);
	CHECK(n == 0);
	free(list);
	list = NULL;
	CHECK_ERR(store_session_read(f.s, &s[2], &a, 0, &b, 1),
		  STORE_ENOSESSION);
	for (i = 0; i < 3; i++)
		CHECK_ERR(st_begin(f.s, &s[i]), STORE_OK);
	CHECK_ERR(store_session_expire(f.s, 0, NULL), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(store_get_stats(f.s, &st), STORE_OK);
	CHECK(st.sessions == 1);
out:
	fx_close(&f);
	/* max_sessions 0: no limit */
	if (fx_open(&f, "sess-nolimit", 0, 0))
		goto done;
	for (i = 0; i < 200; i++)
		if (st_begin(f.s, &sid) != STORE_OK)
			break;
	CHECK(i == 200);
	CHECK_ERR(store_session_list(f.s, &list, &n), STORE_OK);
	CHECK(n == 200);
	free(list);
done:
	fx_close(&f);
}

static void test_dedup(void)
{
	struct fx f;
	struct store_id a, b, sid, c1, c2, c3, c4, root;
	struct store_module_info ia, ib, ja, jb;
	unsigned char page[4096];
	size_t n0, n1;

	if (fx_open(&f, "sess-dedup", 0, 0))
		goto out;
	CHECK_ERR(st_deploy(f.s, "dedup a", 8192, &a), STORE_OK);
	CHECK_ERR(st_deploy(f.s, "dedup b", 8192, &b), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 10, 0x01, 100), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c1), STORE_OK);
	CHECK_ERR(store_module_get(f.s, &a, &ia), STORE_OK);
	CHECK_ERR(store_module_get(f.s, &b, &ib), STORE_OK);
	n0 = count_plain(f.dir);
	CHECK(n0 == 2 * 4);

	/* no writes: same state, same id, no new file */
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c2), STORE_OK);
	CHECK_ID(&c2, &c1);
	CHECK(count_plain(f.dir) == n0);
	CHECK(store_commits_count(f.s) == 1);
	/* the same bytes written back: no new file either */
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(store_session_read(f.s, &sid, &a, 0, page, sizeof(page)),
		  STORE_OK);
	CHECK_ERR(store_session_write(f.s, &sid, &a, 0, page, sizeof(page)),
		  STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &b, 5000, 0, 100), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c3), STORE_OK);
	CHECK_ID(&c3, &c1);
	CHECK(count_plain(f.dir) == n0);
	CHECK_ERR(store_module_get(f.s, &a, &ja), STORE_OK);
	CHECK_ERR(store_module_get(f.s, &b, &jb), STORE_OK);
	CHECK_ID(&ja.last_commit, &ia.last_commit);
	CHECK_ID(&jb.last_commit, &ib.last_commit);
	/* written and written back within one session */
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 0, 0x7F, 4096), STORE_OK);
	CHECK_ERR(store_session_write(f.s, &sid, &a, 0, page, sizeof(page)),
		  STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c3), STORE_OK);
	CHECK_ID(&c3, &c1);
	CHECK(count_plain(f.dir) == n0);
	ST_CHECK_STORE(f.s, f.dir, &root);
	CHECK_ID(&root, &c1);
	/* a real change to a only: one new file, b keeps its commit */
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 4096, 0x02, 1), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c4), STORE_OK);
	n1 = count_plain(f.dir);
	CHECK(n1 == n0 + 1);
	CHECK_ERR(store_module_get(f.s, &b, &jb), STORE_OK);
	CHECK_ID(&jb.last_commit, &ib.last_commit);
	/* back to an earlier memory: its file is reused */
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 4096, 0, 1), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c3), STORE_OK);
	CHECK_ID(&c3, &c1);
	CHECK(count_plain(f.dir) == n1);
	ST_CHECK_STORE(f.s, f.dir, &root);
	CHECK_ID(&root, &c1);
	CHECK(store_commits_count(f.s) == 2);
	ST_CHECK_COMMITS(f.s, f.dir);
out:
	fx_close(&f);
}

/* Modules with no writes in the first commit, and modules deployed late. */
static void test_late_and_first(void)
{
	struct fx f;
	struct store_id x, y, late, sid, s2, zeros8k, zeros4k, zeros64k, got;
	struct store_commit_info ci;
	struct store_module_info info;
	uint64_t size = 0;

	memset(&ci, 0, sizeof(ci));
	zeros4k = st_id("10E17C018297661CC04C847E5A79BA3F"
			"91E18DF2167640887F4F75708CDE0D17");
	zeros8k = st_id("17595D981E76A45299392B536634F58D"
			"138AAE25FAC437177357C1A7553E4204");
	zeros64k = st_id("9F0A025941F827B85DD44A05B490A8D9"
			 "F49DB75B9C5102CBBC0366EE67BF1E2C");
	if (fx_open(&f, "sess-late", 0, 0))
		goto out;
	CHECK_ERR(st_deploy(f.s, "first x", 8192, &x), STORE_OK);
	CHECK_ERR(st_deploy(f.s, "first y", 4096, &y), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_begin(f.s, &s2), STORE_OK);
	/* the first commit, no writes: every module gets a commit */
	CHECK_ERR(store_session_commit(f.s, &sid, NULL, &ci), STORE_OK);
	CHECK(ci.n == 2);
	got = pair_of(&ci, &x);
	CHECK_ID(&got, &zeros8k);
	got = pair_of(&ci, &y);
	CHECK_ID(&got, &zeros4k);
	store_commit_info_release(&ci);
	CHECK_ERR(store_module_get(f.s, &x, &info), STORE_OK);
	CHECK(info.has_commit);
	CHECK(count_plain(f.dir) == 2 * 4);
	ST_CHECK_STORE(f.s, f.dir, NULL);

	/* a module deployed after s2 began is in s2's commit, all zeros */
	CHECK_ERR(st_deploy(f.s, "late", 65536, &late), STORE_OK);
	CHECK_ERR(store_session_size(f.s, &s2, &late, &size), STORE_OK);
	CHECK(size == 65536);
	CHECK_ERR(st_fill(f.s, &s2, &x, 0, 0x11, 1), STORE_OK);
	CHECK_ERR(store_session_commit(f.s, &s2, NULL, &ci), STORE_OK);
	CHECK(ci.n == 3);
	got = pair_of(&ci, &late);
	CHECK_ID(&got, &zeros64k);
	got = pair_of(&ci, &y);
	CHECK_ID(&got, &zeros4k);
	store_commit_info_release(&ci);
	ST_CHECK_STORE(f.s, f.dir, NULL);
	CHECK_ERR(store_module_get(f.s, &late, &info), STORE_OK);
	CHECK(info.has_commit && info.size == 65536);
	CHECK_ID(&info.last_commit, &zeros64k);
	ST_CHECK_COMMITS(f.s, f.dir);
out:
	fx_close(&f);
}

/* A descriptor from store_module_open keeps its memory across commits. */
static void test_open_descriptor(void)
{
	struct fx f;
	struct store_id a, sid, c1, c2;
	struct store_module_info info;
	unsigned char buf[4096];
	int fd = -1, fd2 = -1;

	if (fx_open(&f, "sess-fd", 0, 0))
		goto out;
	CHECK_ERR(st_deploy(f.s, "fd a", 4096, &a), STORE_OK);
	CHECK_ERR(store_module_open(f.s, &a, &fd, &info), STORE_OK);
	CHECK(!info.has_commit && info.size == 4096);
	/* read-only: writing through it fails */
	CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
	CHECK(fd >= 0 && pwrite(fd, "x", 1, 0) == -1);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 0, 0x31, 4096), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c1), STORE_OK);
	CHECK_ERR(store_module_open(f.s, &a, &fd2, &info), STORE_OK);
	CHECK(info.has_commit);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &a, 0, 0x32, 4096), STORE_OK);
	CHECK_ERR(st_commit(f.s, &sid, &c2), STORE_OK);
	CHECK_ERR(store_restore(f.s, &c1), STORE_OK);
	if (fd >= 0) {
		CHECK(pread(fd, buf, sizeof(buf), 0) == 4096);
		CHECK(buf[0] == 0 && buf[4095] == 0);
		close(fd);
	}
	if (fd2 >= 0) {
		CHECK(pread(fd2, buf, sizeof(buf), 0) == 4096);
		CHECK(buf[0] == 0x31 && buf[4095] == 0x31);
		close(fd2);
	}
	CHECK_ERR(store_module_open(f.s, &a, &fd, &info), STORE_OK);
	if (fd >= 0) {
		struct store_id mc;

		CHECK(pread(fd, buf, sizeof(buf), 0) == 4096);
		st_ref_memory_id(buf, sizeof(buf), &mc);
		CHECK_ID(&info.last_commit, &mc);
		CHECK(buf[0] == 0x31);
		close(fd);
	}
out:
	fx_close(&f);
}

/* A big sparse module: a few bytes written far apart. */
static void test_big(void)
{
	struct fx f;
	const size_t big = 32u << 20;
	unsigned char *want = calloc(1, big);
	struct store_id m, sid, mc, root;
	struct store_module_info info;
	uint64_t size = 0;

	if (!want || fx_open(&f, "sess-big", 0, 0))
		goto out;
	CHECK_ERR(st_deploy(f.s, "big", big, &m), STORE_OK);
	CHECK_ERR(st_begin(f.s, &sid), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &m, big - 1, 0xEE, 1), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &m, big / 2 - 2, 0xDD, 4), STORE_OK);
	CHECK_ERR(st_fill(f.s, &sid, &m, big + 100, 0xCC, 1), STORE_OK);
	want[big - 1] = 0xEE;
	memset(want + big / 2 - 2, 0xDD, 4);
	CHECK_ERR(store_session_size(f.s, &sid, &m, &size), STORE_OK);
	CHECK(size == big + STORE_PAGE_SIZE);
	CHECK_ERR(st_commit(f.s, &sid, NULL), STORE_OK);
	{
		unsigned char *w2 = realloc(want, big + STORE_PAGE_SIZE);

		if (!w2)
			goto out;
		want = w2;
		memset(want + big, 0, STORE_PAGE_SIZE);
		want[big + 100] = 0xCC;
	}
	st_ref_memory_id(want, big + STORE_PAGE_SIZE, &mc);
	CHECK_ERR(store_module_get(f.s, &m, &info), STORE_OK);
	CHECK(info.size == big + STORE_PAGE_SIZE);
	CHECK_ID(&info.last_commit, &mc);
	ST_CHECK_STORE(f.s, f.dir, &root);
out:
	free(want);
	fx_close(&f);
}

/* --- threads -------------------------------------------------------------- */

#define NTHREADS 8
#define ROUNDS	 6
#define TMEM	 (4 * STORE_PAGE_SIZE)

struct shared {
	struct store *s;
	struct store_id mods[NTHREADS];
	atomic_int writers_left;
	atomic_int errors;
	int optimistic;
	struct store_id empty_root; /* the root before any commit */
};

struct writer {
	struct shared *sh;
	int idx;
	int last_round; /* last round committed */
	int retries;
};

/* Content of module m in round r (r >= 1): a header then a fill. */
static void fill_mem(unsigned char *buf, int m, int r)
{
	size_t i;

	for (i = 0; i < TMEM; i++)
		buf[i] = (unsigned char)(m * 37 + r * 11 + i * 7 + 1);
	buf[0] = 0xC0;
	buf[1] = (unsigned char)m;
	buf[2] = (unsigned char)r;
}

/* Round of a valid memory of module m: 0 for zeros, -1 if torn. */
static int mem_round(const unsigned char *buf, size_t len, int m)
{
	unsigned char *want;
	int r, ok;

	if (len != TMEM)
		return -1;
	if (buf[0] == 0) {
		size_t i;

		for (i = 0; i < len; i++)
			if (buf[i])
				return -1;
		return 0;
	}
	if (buf[0] != 0xC0 || buf[1] != m)
		return -1;
	r = buf[2];
	want = malloc(TMEM);
	if (!want)
		return -1;
	fill_mem(want, m, r);
	ok = !memcmp(want, buf, TMEM);
	free(want);
	return ok ? r : -1;
}

#define TFAIL(sh, ...)                                                         \
	do {                                                                   \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		atomic_fetch_add(&(sh)->errors, 1);                            \
	} while (0)

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct shared *sh = w->sh;
	unsigned char *mine = malloc(TMEM), *view[NTHREADS] = {0};
	int r, j;

	if (!mine) {
		TFAIL(sh, "writer %d: no memory", w->idx);
		goto out;
	}
	for (r = 1; r <= ROUNDS; r++) {
		struct store_session_info si;
		struct store_commit_info ci;
		enum store_err err;
		struct store_id want;
		size_t len;

		memset(&ci, 0, sizeof(ci));
		err = store_session_begin(sh->s, NULL, &si);
		if (err != STORE_OK) {
			TFAIL(sh, "writer %d: begin = %d", w->idx, err);
			goto out;
		}
		for (j = 0; j < NTHREADS; j++) {
			free(view[j]);
			view[j] =
			    st_session_mem(sh->s, &si.id, &sh->mods[j], &len);
			if (!view[j] || mem_round(view[j], len, j) < 0)
				TFAIL(sh, "writer %d: module %d torn/unread",
				      w->idx, j);
		}
		fill_mem(mine, w->idx, r);
		err = store_session_write(sh->s, &si.id, &sh->mods[w->idx], 0,
					  mine, TMEM / 2);
		if (err == STORE_OK)
			err = store_session_write(sh->s, &si.id,
						  &sh->mods[w->idx], TMEM / 2,
						  mine + TMEM / 2, TMEM / 2);
		if (err != STORE_OK) {
			TFAIL(sh, "writer %d: write = %d", w->idx, err);
			goto out;
		}
		/* the session sees its own write and nobody else's */
		for (j = 0; j < NTHREADS; j++) {
			unsigned char *now =
			    st_session_mem(sh->s, &si.id, &sh->mods[j], &len);

			if (!now)
				TFAIL(sh, "writer %d: reread failed", w->idx);
			else if (j == w->idx && memcmp(now, mine, TMEM))
				TFAIL(sh, "writer %d: own write lost", w->idx);
			else if (j != w->idx && view[j] &&
				 memcmp(now, view[j], TMEM))
				TFAIL(sh, "writer %d: saw module %d change",
				      w->idx, j);
			free(now);
		}
		/*
		 * Optimistic: the root the session began from. A session
		 * without a base began before any commit, from the empty
		 * state; it must not overwrite commits made since.
		 */
		err = store_session_commit(sh->s, &si.id,
					   !sh->optimistic ? NULL
					   : si.has_base   ? &si.base
							   : &sh->empty_root,
					   &ci);
		if (err == STORE_EMISMATCH && sh->optimistic) {
			store_session_drop(sh->s, &si.id);
			w->retries++;
			r--;
			continue;
		}
		if (err != STORE_OK) {
			TFAIL(sh, "writer %d: commit = %d", w->idx, err);
			goto out;
		}
		/* the commit is the base plus this write, nothing else */
		for (j = 0; j < NTHREADS; j++) {
			struct store_id got = pair_of(&ci, &sh->mods[j]);

			if (view[j] && j != w->idx)
				store_memory_id(view[j], TMEM, &want);
			else
				store_memory_id(mine, TMEM, &want);
			if (!store_id_equal(&got, &want))
				TFAIL(sh, "writer %d: commit pair %d wrong",
				      w->idx, j);
		}
		if (store_state_id(ci.pairs, ci.n, &want) != STORE_OK ||
		    !store_id_equal(&want, &ci.id))
			TFAIL(sh, "writer %d: commit id != state id", w->idx);
		store_commit_info_release(&ci);
		w->last_round = r;
	}
out:
	for (j = 0; j < NTHREADS; j++)
		free(view[j]);
	free(mine);
	atomic_fetch_sub(&sh->writers_left, 1);
	return NULL;
}

static void *reader_main(void *arg)
{
	struct shared *sh = arg;
	unsigned char *buf = malloc(TMEM + 1);
	long iter = 0;

	if (!buf)
		return NULL;
	while (atomic_load(&sh->writers_left) > 0 || iter < 10) {
		int j = (int)(iter++ % NTHREADS);
		struct store_module_info info;
		struct store_id id, root;
		int fd = -1;
		ssize_t n;

		if (store_root(sh->s, &root) != STORE_OK)
			TFAIL(sh, "reader: store_root failed");
		if (store_module_open(sh->s, &sh->mods[j], &fd, &info) !=
		    STORE_OK) {
			TFAIL(sh, "reader: module_open failed");
			continue;
		}
		n = pread(fd, buf, TMEM + 1, 0);
		close(fd);
		if (n != TMEM || info.size != TMEM ||
		    mem_round(buf, TMEM, j) < 0) {
			TFAIL(sh, "reader: module %d served torn memory", j);
			continue;
		}
		store_memory_id(buf, TMEM, &id);
		if (info.has_commit && !store_id_equal(&id, &info.last_commit))
			TFAIL(sh, "reader: module %d memory is not its ETag",
			      j);
	}
	free(buf);
	return NULL;
}

/* Deploys, restores and persists while the writers commit. */
static void *chaos_main(void *arg)
{
	struct shared *sh = arg;
	unsigned int seed = 7;
	int late = 0;

	while (atomic_load(&sh->writers_left) > 0) {
		struct st_commits c;
		enum store_err err;
		char code[32];

		seed = seed * 1103515245u + 12345u;
		switch ((seed >> 16) % 3) {
		case 0:
			if (late >= 6)
				break;
			snprintf(code, sizeof(code), "late module %d", late++);
			err = store_deploy(sh->s, code, strlen(code), TMEM,
					   NULL, NULL);
			if (err != STORE_OK)
				TFAIL(sh, "chaos: deploy = %d", err);
			break;
		case 1:
			if (st_commits_copy(sh->s, &c) != STORE_OK) {
				TFAIL(sh, "chaos: foreach failed");
				st_commits_release(&c);
				break;
			}
			if (c.n) {
				err = store_restore(sh->s,
						    &c.v[(seed >> 8) % c.n].id);
				if (err != STORE_OK)
					TFAIL(sh, "chaos: restore = %d", err);
			}
			st_commits_release(&c);
			break;
		case 2:
			err = store_persist(sh->s);
			if (err != STORE_OK)
				TFAIL(sh, "chaos: persist = %d", err);
			break;
		}
	}
	return NULL;
}

static void run_threads(int optimistic)
{
	struct fx f;
	struct shared sh;
	struct writer w[NTHREADS];
	pthread_t wt[NTHREADS], rt[2], ct;
	unsigned char *want = malloc(TMEM);
	int i, nw = 0, nr = 0, have_chaos = 0;
	char code[32];

	memset(&sh, 0, sizeof(sh));
	if (!want ||
	    fx_open(&f, optimistic ? "sess-threads-opt" : "sess-threads", 0, 0))
		goto out;
	sh.s = f.s;
	sh.optimistic = optimistic;
	CHECK_ERR(store_root(f.s, &sh.empty_root), STORE_OK);
	for (i = 0; i < NTHREADS; i++) {
		snprintf(code, sizeof(code), "thread module %d", i);
		CHECK_ERR(st_deploy(f.s, code, TMEM, &sh.mods[i]), STORE_OK);
	}
	atomic_store(&sh.writers_left, NTHREADS);
	for (i = 0; i < NTHREADS; i++) {
		w[i].sh = &sh;
		w[i].idx = i;
		w[i].last_round = 0;
		w[i].retries = 0;
		if (pthread_create(&wt[i], NULL, writer_main, &w[i]) == 0)
			nw++;
		else
			atomic_fetch_sub(&sh.writers_left, 1);
	}
	for (i = 0; i < 2; i++)
		if (pthread_create(&rt[i], NULL, reader_main, &sh) == 0)
			nr++;
	if (!optimistic)
		have_chaos = pthread_create(&ct, NULL, chaos_main, &sh) == 0;
	for (i = 0; i < nw; i++)
		pthread_join(wt[i], NULL);
	for (i = 0; i < nr; i++)
		pthread_join(rt[i], NULL);
	if (have_chaos)
		pthread_join(ct, NULL);
	CHECK(nw == NTHREADS && nr == 2);
	CHECK(optimistic || have_chaos);
	CHECK(atomic_load(&sh.errors) == 0);
	ST_CHECK_STORE(f.s, f.dir, NULL);
	ST_CHECK_COMMITS(f.s, f.dir);
	CHECK_ERR(store_persist(f.s), STORE_OK);
	ST_CHECK_COMMITS_FILE(f.s, f.dir);
	/* with If-Match, every writer's last round is in the final state */
	if (optimistic) {
		int retries = 0;

		for (i = 0; i < NTHREADS; i++) {
			struct store_module_info info;
			struct store_id mc;

			CHECK(w[i].last_round == ROUNDS);
			fill_mem(want, i, ROUNDS);
			store_memory_id(want, TMEM, &mc);
			CHECK_ERR(store_module_get(f.s, &sh.mods[i], &info),
				  STORE_OK);
			CHECK_ID(&info.last_commit, &mc);
			retries += w[i].retries;
		}
		printf("threads: %d commits, %d If-Match retries\n",
		       NTHREADS * ROUNDS, retries);
	}
out:
	free(want);
	fx_close(&f);
}

int main(void)
{
	test_isolation();
	test_explicit_base();
	test_growth_and_range();
	test_drop_and_end();
	test_expect_root();
	test_limits_and_expiry();
	test_dedup();
	test_late_and_first();
	test_open_descriptor();
	test_big();
	run_threads(0);
	run_threads(1);
	return t_done();
}
