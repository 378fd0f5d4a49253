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
 *   refused and leaves nothing; a right one is kept; a second store on a
 *   copy of the files then adds the commit (store_commit_add), refuses a
 *   commit whose id is not the root of its pairs or whose file is missing,
 *   and restores it to the same root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
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
	/* the right bytes are kept */
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

int main(void)
{
	test_records();
	test_fold();
	test_snapshot_size();
	test_import();
	return t_done();
}
