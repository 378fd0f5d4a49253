/*
 * unit_cluster.c - the pure and store parts of cluster mode, no etcd, no
 * HTTP:
 *
 * - records: every kind survives text and back; malformed text refused;
 * - the fold: a commit's pairs from its base and the differing pairs,
 *   deletes, restores, persists; a commit record against an unknown base
 *   is refused (and a full one is not);
 * - log_commit_record() keeps only the pairs that differ from the base;
 * - store_commit_file_import(): a file whose Merkle id is not its name is
 *   refused and leaves nothing; a right one is kept, alone or with others
 *   (store_commit_files_import); a second store on a
 *   copy of the files then adds the commit (store_commit_add), refuses a
 *   commit whose id is not the root of its pairs or whose file is missing,
 *   and restores it to the same root;
 * - store_patch_*(): a commit file made from a local one and the pages a
 *   diff lists is byte-identical to the leader's, grown or shrunk; the
 *   pages the base's tree says are zero stay holes; a wrong page, a diff
 *   that leaves a changed page out, a base that is not here or a list
 *   out of bounds keep nothing; a write off the listed pages is refused;
 * - a record with the pages it changes (push.c): its body parsed back,
 *   the pages laid over a follower's file of the base make the leader's
 *   bytes; a spoiled page or a body cut short make nothing;
 * - the TLS text a node shows its peers (peer.c): libcurl takes a node's
 *   certificate, key and CA; a certificate that is not PEM or a key not
 *   the certificate's is refused as the certificate, a CA that is not PEM
 *   as the CAs, each before any byte is sent.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"
#include "log.h"
#include "peer.h"
#include "push.h"
#include "store.h"
#include "storetest.h"
#include "t.h"

#define PAGE STORE_PAGE_SIZE

static struct store_id idn(unsigned char v)
{
	struct store_id id;

	memset(&id, v, sizeof(id));
	return id;
}

static void test_records(void)
{
	struct store_pair pairs[2] = {{idn(1), idn(2)}, {idn(3), idn(4)}};
	struct log_record r = {0}, back;
	enum log_op ops[] = {LOG_DEPLOY, LOG_COMMIT,  LOG_RESTORE,
			     LOG_DELETE, LOG_PERSIST, LOG_GC};
	size_t i;
	char *text;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.op = ops[i];
		r.id = idn(9);
		r.size = 65536;
		r.bytecode = 1;
		r.has_base = 1;
		r.base = idn(8);
		r.pairs = pairs;
		r.n = 2;
		r.fence = 77;
		text = log_record_text(&r);
		CHECK(text != NULL);
		if (!text)
			continue;
		CHECK(log_record_parse(text, strlen(text), &back) == 0);
		CHECK(back.op == r.op && back.fence == 77);
		if (r.op == LOG_DEPLOY)
			CHECK(store_id_equal(&back.id, &r.id) &&
			      back.size == 65536 && back.bytecode);
		if (r.op == LOG_COMMIT)
			CHECK(back.n == 2 && back.has_base &&
			      store_id_equal(&back.base, &r.base) &&
			      store_id_equal(&back.pairs[1].commit,
					     &pairs[1].commit));
		if (r.op == LOG_RESTORE || r.op == LOG_DELETE)
			CHECK(store_id_equal(&back.id, &r.id));
		log_record_release(&back);
		free(text);
	}
	CHECK(log_record_parse("{\"op\":\"nope\"}", 13, &back) < 0);
	CHECK(log_record_parse("{\"op\":\"commit\"}", 15, &back) < 0);
	CHECK(log_record_parse("not json", 8, &back) < 0);
	CHECK(log_record_parse("{\"op\":\"delete\",\"commit\":\"12\"}", 29,
			       &back) < 0);
}

static void test_fold(void)
{
	struct store_pair a[2] = {{idn(1), idn(10)}, {idn(2), idn(20)}};
	struct store_pair b[1] = {{idn(2), idn(21)}};
	struct log_fold f = {0};
	struct log_record r = {0};
	const struct log_commit *c;

	r.op = LOG_DEPLOY;
	r.id = idn(1);
	CHECK(log_fold_add(&f, &r) == 0);
	CHECK(log_fold_add(&f, &r) == 0); /* the same module once */
	CHECK(f.nmods == 1 && f.seq == 2);
	r.op = LOG_COMMIT;
	r.id = idn(100);
	r.pairs = a;
	r.n = 2;
	CHECK(log_fold_add(&f, &r) == 0);
	/* commit 101 on 100: module 2 changed */
	r.id = idn(101);
	r.has_base = 1;
	r.base = idn(100);
	r.pairs = b;
	r.n = 1;
	CHECK(log_fold_add(&f, &r) == 0);
	c = log_fold_commit(&f, &r.id);
	CHECK(c && c->n == 2 &&
	      store_id_equal(&c->pairs[0].commit, &a[0].commit) &&
	      store_id_equal(&c->pairs[1].commit, &b[0].commit));
	CHECK(f.has_current && store_id_equal(&f.current, &r.id));
	/* a base the fold does not know: refused, unless full */
	r.id = idn(102);
	r.base = idn(99);
	CHECK(log_fold_add(&f, &r) < 0);
	CHECK(f.seq == 4);
	r.full = 1;
	CHECK(log_fold_add(&f, &r) == 0);
	c = log_fold_commit(&f, &r.id);
	CHECK(c && c->n == 1);
	/* restore, delete, persist */
	memset(&r, 0, sizeof(r));
	r.op = LOG_RESTORE;
	r.id = idn(100);
	CHECK(log_fold_add(&f, &r) == 0);
	CHECK(store_id_equal(&f.current, &r.id));
	r.op = LOG_DELETE;
	CHECK(log_fold_add(&f, &r) == 0);
	c = log_fold_commit(&f, &r.id);
	CHECK(c && !c->live);
	CHECK(store_id_equal(&f.current, &r.id)); /* the state stays */
	r.op = LOG_PERSIST;
	CHECK(log_fold_add(&f, &r) == 0);
	CHECK(f.persists == 1 && f.seq == 8);
	/* the record of a commit on 101: only the differing pairs */
	{
		struct store_pair full[2] = {{idn(1), idn(11)},
					     {idn(2), idn(21)}};
		struct store_id base = idn(101), id = idn(103);

		CHECK(log_commit_record(&f, &id, 1, &base, full, 2, &r) == 0);
		CHECK(r.n == 1 && !r.full &&
		      store_id_equal(&r.pairs[0].commit, &full[0].commit));
		log_record_release(&r);
		base = idn(55);
		CHECK(log_commit_record(&f, &id, 1, &base, full, 2, &r) == 0);
		CHECK(r.n == 2 && r.full);
		log_record_release(&r);
		/* a deleted base is no base (a snapshot may drop it) */
		base = idn(100);
		CHECK(log_commit_record(&f, &id, 1, &base, full, 2, &r) == 0);
		CHECK(r.n == 2 && r.full);
		log_record_release(&r);
	}
	/* the snapshot: text and back, the deleted non-current dropped */
	{
		struct log_fold g;
		char *text;

		memset(&r, 0, sizeof(r));
		r.op = LOG_DELETE;
		r.id = idn(102);
		CHECK(log_fold_add(&f, &r) == 0);
		text = log_fold_text(&f);
		CHECK(text != NULL);
		/* 101 holds 100's modules: only its changed pair is written */
		CHECK(text && strstr(text, "\"onprev\":true") != NULL);
		CHECK(text && log_fold_parse(text, strlen(text), &g) == 0);
		CHECK(g.seq == f.seq && g.persists == 1 && g.nmods == 1 &&
		      g.has_current && store_id_equal(&g.current, &f.current));
		CHECK(g.nc == 2 && !log_fold_commit(&g, &r.id));
		c = log_fold_commit(&g, &f.current); /* 100: deleted, current */
		CHECK(c && !c->live && c->n == 2);
		c = log_fold_commit(&g, &(struct store_id){0});
		CHECK(!c);
		r.id = idn(101);
		c = log_fold_commit(&g, &r.id);
		CHECK(c && c->live && c->n == 2 &&
		      store_id_equal(&c->pairs[1].commit, &b[0].commit));
		/* the fold goes on from the snapshot */
		r.op = LOG_GC;
		CHECK(log_fold_add(&g, &r) == 0 && g.seq == f.seq + 1);
		log_fold_release(&g);
		free(text);
		CHECK(log_fold_parse("{\"seq\":1}", 9, &g) < 0);
		CHECK(log_fold_parse("nope", 4, &g) < 0);
	}
	log_fold_release(&f);
}

/* 1,000 modules, 50 live commits of 10 changed pairs: a small snapshot. */
static void test_snapshot_size(void)
{
	struct log_fold f = {0}, g;
	struct log_record r = {0};
	struct store_pair *p = calloc(1000, sizeof(*p));
	const struct log_commit *c;
	char *text;
	size_t i, k;

	CHECK(p != NULL);
	if (!p)
		return;
	for (i = 0; i < 1000; i++) {
		p[i].module.b[0] = (unsigned char)(i >> 8);
		p[i].module.b[1] = (unsigned char)i;
		p[i].commit.b[0] = 1;
	}
	r.op = LOG_COMMIT;
	r.pairs = p;
	for (k = 0; k < 50; k++) {
		r.id = idn((unsigned char)(k + 1));
		r.has_base = k > 0;
		r.base = idn((unsigned char)k);
		r.n = k ? 10 : 1000;
		for (i = 0; k && i < 10; i++) {
			p[i].module = p[(k * 10 + i) % 1000].module;
			p[i].commit.b[1] = (unsigned char)k;
		}
		CHECK(log_fold_add(&f, &r) == 0);
	}
	text = log_fold_text(&f);
	CHECK(text && strlen(text) < 300 * 1024);
	CHECK(text && log_fold_parse(text, strlen(text), &g) == 0);
	if (text && g.nc == 50) {
		for (k = 0; k < 50; k++) {
			c = log_fold_commit(&f, &f.c[k].id);
			CHECK(g.c[k].n == c->n &&
			      !memcmp(g.c[k].pairs, c->pairs,
				      c->n * sizeof(*c->pairs)));
		}
		log_fold_release(&g);
	} else {
		CHECK(0);
	}
	free(text);
	free(p);
	log_fold_release(&f);
}

static void test_import(void)
{
	char *d1 = t_tmpdir("cluster-a"), *d2 = t_tmpdir("cluster-b");
	struct store_options o1 = {0}, o2 = {0};
	struct store *s1 = NULL, *s2 = NULL;
	struct store_session_info si;
	struct store_commit_info ci = {0};
	struct store_module_info mi;
	struct store_upload *u = NULL;
	struct store_id wrong, root;
	unsigned char *mem = calloc(1, 2 * PAGE);
	struct store_pair bad;
	int fd = -1;
	uint64_t size = 0;

	o1.dir = d1;
	o2.dir = d2;
	CHECK(mem && store_open(&s1, &o1) == STORE_OK &&
	      store_open(&s2, &o2) == STORE_OK);
	if (!mem || !s1 || !s2)
		goto out;
	CHECK(store_deploy(s1, "code", 4, 2 * PAGE, &mi, NULL) == STORE_OK);
	CHECK(store_deploy(s2, "code", 4, 2 * PAGE, NULL, NULL) == STORE_OK);
	CHECK(store_session_begin(s1, NULL, &si) == STORE_OK);
	memcpy(mem + PAGE, "hello", 5);
	CHECK(store_session_write(s1, &si.id, &mi.id, PAGE, "hello", 5) ==
	      STORE_OK);
	CHECK(store_session_commit(s1, &si.id, NULL, &ci) == STORE_OK);
	CHECK(ci.n == 1);
	if (ci.n != 1)
		goto out;
	/* a file that does not match its name is refused */
	wrong = ci.pairs[0].commit;
	wrong.b[0] ^= 1;
	CHECK(store_upload_new(s2, &u) == STORE_OK);
	CHECK(store_upload_write(u, mem, 2 * PAGE) == STORE_OK);
	CHECK_ERR(store_commit_file_import(s2, &mi.id, &wrong, u),
		  STORE_EMISMATCH);
	CHECK(!store_commit_file_exists(s2, &mi.id, &wrong));
	/* not a whole number of pages */
	store_upload_free(u);
	CHECK(store_upload_new(s2, &u) == STORE_OK);
	CHECK(store_upload_write(u, mem, PAGE + 1) == STORE_OK);
	CHECK_ERR(store_commit_file_import(s2, &mi.id, &ci.pairs[0].commit, u),
		  STORE_EINVAL);
	store_upload_free(u);
	/* the commit cannot be added without its file */
	CHECK_ERR(store_commit_add(s2, &ci.id, ci.pairs, ci.n),
		  STORE_ENOCOMMIT);
	/* several at once: the wrong one refused, the right one kept */
	{
		struct store_upload *us[2] = {NULL, NULL};
		struct store_pair ps[2] = {{mi.id, wrong}, ci.pairs[0]};
		enum store_err errs[2];

		CHECK(store_upload_new(s2, &us[0]) == STORE_OK &&
		      store_upload_new(s2, &us[1]) == STORE_OK);
		CHECK(store_upload_write(us[0], mem, 2 * PAGE) == STORE_OK);
		CHECK(store_upload_write(us[1], mem, 2 * PAGE) == STORE_OK);
		CHECK_ERR(store_commit_files_import(s2, 2, ps, us, errs),
			  STORE_EMISMATCH);
		CHECK(errs[0] == STORE_EMISMATCH && errs[1] == STORE_OK);
		CHECK(!store_commit_file_exists(s2, &mi.id, &wrong));
		CHECK(
		    store_commit_file_exists(s2, &mi.id, &ci.pairs[0].commit));
		/* there already: nothing to do, no flush */
		CHECK_ERR(
		    store_commit_files_import(s2, 1, ps + 1, us + 1, errs),
		    STORE_OK);
		store_upload_free(us[0]);
		store_upload_free(us[1]);
		CHECK(st_count_tmp(d2) == 0);
	}
	/* the right bytes are kept (again: it is there) */
	CHECK(store_upload_new(s2, &u) == STORE_OK);
	CHECK(store_upload_write(u, mem, 2 * PAGE) == STORE_OK);
	CHECK_ERR(store_commit_file_import(s2, &mi.id, &ci.pairs[0].commit, u),
		  STORE_OK);
	store_upload_free(u);
	u = NULL;
	CHECK(store_commit_file_exists(s2, &mi.id, &ci.pairs[0].commit));
	CHECK(st_count_tmp(d2) == 0);
	/* a commit id that is not the root of its pairs */
	bad = ci.pairs[0];
	CHECK_ERR(store_commit_add(s2, &wrong, &bad, 1), STORE_EMISMATCH);
	CHECK_ERR(store_commit_add(s2, &ci.id, ci.pairs, ci.n), STORE_OK);
	CHECK_ERR(store_commit_add(s2, &ci.id, ci.pairs, ci.n), STORE_OK);
	CHECK(store_commits_count(s2) == 1);
	/* restored: the same root, the same bytes */
	CHECK_ERR(store_restore(s2, &ci.id), STORE_OK);
	CHECK(store_root(s2, &root) == STORE_OK &&
	      store_id_equal(&root, &ci.id));
	CHECK(store_commit_open(s2, &ci.id, &mi.id, &fd, &size) == STORE_OK);
	if (fd >= 0) {
		unsigned char got[8];

		CHECK(size == 2 * PAGE && pread(fd, got, 5, PAGE) == 5 &&
		      !memcmp(got, "hello", 5));
		close(fd);
	}
out:
	store_commit_info_release(&ci);
	store_upload_free(u);
	store_close(s1);
	store_close(s2);
	free(mem);
	if (!t_failed) {
		t_rmrf(d1);
		t_rmrf(d2);
	}
	free(d1);
	free(d2);
}

/* Commit one write of len bytes of v at off into mod of s; its info. */
static void commit_write(struct store *s, const struct store_id *mod,
			 uint64_t off, int v, size_t len,
			 struct store_commit_info *ci)
{
	struct store_session_info si;
	unsigned char *b = malloc(len);

	memset(b, v, len);
	CHECK(store_session_begin(s, NULL, &si) == STORE_OK);
	CHECK(store_session_write(s, &si.id, mod, off, b, len) == STORE_OK);
	CHECK(store_session_commit(s, &si.id, NULL, ci) == STORE_OK);
	free(b);
}

/*
 * In s2, the file of to's module commit made from from's file (which s2
 * holds) and the pages store_commit_diff() of s1 lists, read from s1's
 * file; with spoil, one fetched page is wrong. The import's result.
 */
static enum store_err patch_from(struct store *s1, struct store *s2,
				 const struct store_id *mod,
				 const struct store_commit_info *from,
				 const struct store_commit_info *to, int spoil)
{
	unsigned char page[PAGE];
	struct store_patch *p = NULL;
	struct store_diff d;
	enum store_err err;
	uint64_t size = 0;
	size_t i;
	int fd = -1;

	CHECK(store_commit_diff(s1, &from->id, &to->id, 1, &d) == STORE_OK);
	CHECK(d.n == 1);
	CHECK(store_commit_open(s1, &to->id, mod, &fd, &size) == STORE_OK);
	err = store_patch_new(s2, mod, &d.m[0].from, d.m[0].size_to,
			      d.m[0].pages, d.m[0].npages, &p);
	for (i = 0; !err && i < d.m[0].npages; i++) {
		CHECK(pread(fd, page, PAGE, (off_t)(d.m[0].pages[i] * PAGE)) ==
		      PAGE);
		page[7] ^= spoil && i == 0;
		err = store_patch_write(p, d.m[0].pages[i] * PAGE, page, PAGE);
	}
	if (!err)
		err = store_patch_import(p, &d.m[0].to);
	store_patch_free(p);
	store_diff_release(&d);
	close(fd);
	return err;
}

/* 1 when s1 and s2 hold the same bytes of commit c's file of mod. */
static int same_file(struct store *s1, struct store *s2,
		     const struct store_id *c, const struct store_id *mod,
		     uint64_t *blocks)
{
	unsigned char a[PAGE], b[PAGE];
	uint64_t sa = 0, sb = 0, off;
	struct stat st;
	int fa = -1, fb = -1, same;

	if (store_commit_open(s1, c, mod, &fa, &sa) ||
	    store_commit_open(s2, c, mod, &fb, &sb))
		return 0;
	same = sa == sb;
	for (off = 0; same && off < sa; off += PAGE)
		same = pread(fa, a, PAGE, (off_t)off) == PAGE &&
		       pread(fb, b, PAGE, (off_t)off) == PAGE &&
		       !memcmp(a, b, PAGE);
	if (fstat(fb, &st) == 0)
		*blocks = (uint64_t)st.st_blocks * 512;
	close(fa);
	close(fb);
	return same;
}

/* s2 gets the file of c's module commit of mod whole, from s1. */
static void import_whole(struct store *s1, struct store *s2,
			 const struct store_id *mod,
			 const struct store_commit_info *c)
{
	struct store_upload *u = NULL;
	uint64_t size = 0;
	unsigned char *mem;
	int fd = -1;

	CHECK(store_commit_open(s1, &c->id, mod, &fd, &size) == STORE_OK);
	mem = malloc(size ? size : 1);
	CHECK(mem && pread(fd, mem, size, 0) == (ssize_t)size);
	close(fd);
	CHECK(store_upload_new(s2, &u) == STORE_OK);
	CHECK(store_upload_write(u, mem, size) == STORE_OK);
	CHECK(store_commit_file_import(s2, mod, &c->pairs[0].commit, u) ==
	      STORE_OK);
	store_upload_free(u);
	free(mem);
}

static void test_patch(void)
{
	char *d[3] = {t_tmpdir("patch-a"), t_tmpdir("patch-b"),
		      t_tmpdir("patch-c")};
	struct store_options o[3];
	struct store *s[3] = {NULL, NULL, NULL};
	struct store_commit_info c[3];
	struct store_module_info mi;
	struct store_patch *p = NULL;
	const uint64_t bad[2] = {3, 2};
	uint64_t blocks = 0;
	int i, ok = 1;

	memset(o, 0, sizeof(o));
	memset(c, 0, sizeof(c));
	for (i = 0; i < 3; i++) {
		o[i].dir = d[i];
		ok &= store_open(&s[i], &o[i]) == STORE_OK &&
		      store_deploy(s[i], "big", 3, 64 * PAGE, &mi, NULL) ==
			  STORE_OK;
	}
	CHECK(ok);
	if (!ok)
		goto out;
	commit_write(s[0], &mi.id, 0, 'a', 3 * PAGE, &c[0]);
	commit_write(s[0], &mi.id, 1 * PAGE + 9, 'b', 100, &c[1]);
	commit_write(s[0], &mi.id, 70 * PAGE, 'c', 10, &c[2]); /* grows */
	import_whole(s[0], s[1], &mi.id, &c[0]);
	/* a wrong page: nothing kept, no temporary left */
	CHECK_ERR(patch_from(s[0], s[1], &mi.id, &c[0], &c[1], 1),
		  STORE_EMISMATCH);
	CHECK(!store_commit_file_exists(s[1], &mi.id, &c[1].pairs[0].commit));
	CHECK(st_count_tmp(d[1]) == 0);
	/* bounds, and a base that is not here */
	CHECK_ERR(store_patch_new(s[1], &mi.id, &c[0].pairs[0].commit, PAGE + 1,
				  NULL, 0, &p),
		  STORE_EINVAL);
	CHECK_ERR(store_patch_new(s[1], &mi.id, &c[0].pairs[0].commit, 4 * PAGE,
				  bad, 2, &p),
		  STORE_EINVAL);
	CHECK_ERR(store_patch_new(s[1], &mi.id, &c[2].pairs[0].commit, 4 * PAGE,
				  NULL, 0, &p),
		  STORE_ENOCOMMIT);
	CHECK(p == NULL);
	/* a diff that leaves a changed page out, a write off its pages */
	CHECK_ERR(store_patch_new(s[1], &mi.id, &c[0].pairs[0].commit,
				  64 * PAGE, bad + 1, 1, &p),
		  STORE_OK);
	CHECK_ERR(store_patch_write(p, 1 * PAGE, "x", 1), STORE_EINVAL);
	store_patch_free(p);
	CHECK_ERR(store_patch_new(s[1], &mi.id, &c[0].pairs[0].commit,
				  64 * PAGE, NULL, 0, &p),
		  STORE_OK);
	CHECK_ERR(store_patch_import(p, &c[1].pairs[0].commit),
		  STORE_EMISMATCH);
	store_patch_free(p);
	p = NULL;
	/* each commit from the one before: the same bytes as the leader's */
	for (i = 1; i < 3; i++)
		CHECK_ERR(patch_from(s[0], s[1], &mi.id, &c[i - 1], &c[i], 0),
			  STORE_OK);
	for (i = 0; i < 3; i++) {
		CHECK_ERR(store_commit_add(s[1], &c[i].id, c[i].pairs, c[i].n),
			  STORE_OK);
		CHECK(same_file(s[0], s[1], &c[i].id, &mi.id, &blocks));
	}
	/* c[2] came from c[1], whose tree was at hand: zero pages are holes */
	CHECK(blocks <= 16 * PAGE);
	/* shrinking: c[0] (64 pages) from c[2] (72) */
	import_whole(s[0], s[2], &mi.id, &c[2]);
	CHECK_ERR(patch_from(s[0], s[2], &mi.id, &c[2], &c[0], 0), STORE_OK);
	CHECK_ERR(store_commit_add(s[2], &c[0].id, c[0].pairs, c[0].n),
		  STORE_OK);
	CHECK(same_file(s[0], s[2], &c[0].id, &mi.id, &blocks));
	CHECK(st_count_tmp(d[1]) == 0 && st_count_tmp(d[2]) == 0);
out:
	for (i = 0; i < 3; i++) {
		store_commit_info_release(&c[i]);
		store_close(s[i]);
		if (!t_failed)
			t_rmrf(d[i]);
		free(d[i]);
	}
}

static void test_push(void)
{
	char *d[2] = {t_tmpdir("push-a"), t_tmpdir("push-b")};
	struct store_options o[2];
	struct store *s[2] = {NULL, NULL};
	struct store_commit_info c[2];
	struct store_module_info mi;
	struct log_record r = {0};
	struct push p;
	uint64_t blocks = 0;
	size_t len = 0;
	char *body = NULL;
	int i, ok = 1, done = 0;

	memset(o, 0, sizeof(o));
	memset(c, 0, sizeof(c));
	for (i = 0; i < 2; i++) {
		o[i].dir = d[i];
		ok &= store_open(&s[i], &o[i]) == STORE_OK &&
		      store_deploy(s[i], "pushed", 6, 16 * PAGE, &mi, NULL) ==
			  STORE_OK;
	}
	CHECK(ok);
	if (!ok)
		goto out;
	commit_write(s[0], &mi.id, 0, 'a', PAGE, &c[0]);
	commit_write(s[0], &mi.id, 3 * PAGE + 5, 'b', 4 * PAGE, &c[1]);
	import_whole(s[0], s[1], &mi.id, &c[0]);
	r.op = LOG_COMMIT;
	r.id = c[1].id;
	r.has_base = 1;
	r.base = c[0].id;
	r.pairs = c[1].pairs;
	r.n = c[1].n;
	r.fence = 7;
	body = push_body(s[0], &r, 1, &len);
	CHECK(body != NULL);
	if (!body)
		goto out;
	/* cut short: refused */
	CHECK(push_parse(body, len - 1, &p) < 0);
	CHECK_ERR(push_parse(body, len, &p), 0);
	CHECK(p.r.fence == 7 && store_id_equal(&p.r.id, &c[1].id));
	CHECK(p.d.n == 1 && p.d.m[0].npages == 5 && p.d.m[0].pages[0] == 3);
	/* a spoiled page makes nothing */
	body[p.data[0] - body + 9] ^= 1;
	CHECK(push_files(s[1], &p, c[1].pairs, 1, &done) == 0 && !done);
	body[p.data[0] - body + 9] ^= 1;
	CHECK(push_files(s[1], &p, c[1].pairs, 1, &done) == 1 && done);
	push_release(&p);
	CHECK_ERR(store_commit_add(s[1], &c[0].id, c[0].pairs, c[0].n),
		  STORE_OK);
	CHECK_ERR(store_commit_add(s[1], &c[1].id, c[1].pairs, c[1].n),
		  STORE_OK);
	CHECK(same_file(s[0], s[1], &c[1].id, &mi.id, &blocks));
	CHECK(st_count_tmp(d[1]) == 0);
	/* no base: the record alone */
	free(body);
	r.has_base = 0;
	body = push_body(s[0], &r, 1, &len);
	CHECK(body && push_parse(body, len, &p) == 0 && p.d.n == 0);
	push_release(&p);
out:
	free(body);
	for (i = 0; i < 2; i++) {
		store_commit_info_release(&c[i]);
		store_close(s[i]);
		if (!t_failed)
			t_rmrf(d[i]);
		free(d[i]);
	}
}

/* The text of dir/name, NUL-terminated; caller frees. NULL on error. */
static char *slurp(const char *dir, const char *name)
{
	char path[700], *buf = calloc(1, 65536);
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f || !buf) {
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_peer_tls(void)
{
	char *d = t_tmpdir("peer-tls"), err[512];
	char *cert = NULL, *key = NULL, *ca = NULL, *other = NULL;
	struct peer_tls t;
	struct peer *p;

	CHECK(d && e2e_certs_make(d) == 0);
	if (!d || t_failed)
		goto out;
	cert = slurp(d, "node.pem");
	key = slurp(d, "node.key");
	ca = slurp(d, "ca.pem");
	other = slurp(d, "client.key");
	CHECK(cert && key && ca && other);
	if (!cert || !key || !ca || !other)
		goto out;
	t = (struct peer_tls){cert, key, ca};
	CHECK(peer_tls_check(&t, err, sizeof(err)) == PEER_TLS_OK);
	CHECK((p = peer_new("token", &t)) != NULL);
	peer_free(p);
	t = (struct peer_tls){"not a certificate\n", key, ca};
	CHECK(peer_tls_check(&t, err, sizeof(err)) == PEER_TLS_CERT);
	CHECK(err[0] != '\0');
	t = (struct peer_tls){cert, other, ca};
	CHECK(peer_tls_check(&t, err, sizeof(err)) == PEER_TLS_CERT);
	t = (struct peer_tls){cert, key, "not a CA\n"};
	CHECK(peer_tls_check(&t, err, sizeof(err)) == PEER_TLS_CA);
out:
	free(cert);
	free(key);
	free(ca);
	free(other);
	if (d && !t_failed)
		t_rmrf(d);
	free(d);
}

int main(void)
{
	test_records();
	test_fold();
	test_snapshot_size();
	test_import();
	test_patch();
	test_push();
	test_peer_tls();
	return t_done();
}
