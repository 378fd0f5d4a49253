/*
 * unit_persist.c - persist writes what changed; a large file is read in
 * the background.
 *
 * - a persist after the first appends only the commits the file lacks: the
 *   bytes before the old final '}' stay as they were, the file grows by
 *   their text only, and it holds the commits store (ST_CHECK_COMMITS_FILE);
 *   a persist with nothing new leaves the file alone, or writes it whole
 *   when it was removed;
 * - a file replaced behind the store's back is written whole, not appended
 *   to;
 * - an append cut before its final flip (the tail after the object that
 *   starts with ',') opens as the old file, and the open cuts the tail off;
 *   a tail of anything else is a corrupt file;
 * - a delete rewrites the file without the commit, and appends go on after;
 * - with background_load_bytes below the file's size, open returns before
 *   the commits are read: the root answers, and store_commits_ready() then
 *   every call that needs the commits store finds them all; a damaged file
 *   read in the background makes those calls STORE_ECORRUPT while the
 *   state still answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

#define PAGE STORE_PAGE_SIZE

static struct store_id mods[3];

static void setup(struct store *s)
{
	char code[32];
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(code, sizeof(code), "persist module %d", i);
		CHECK_ERR(st_deploy(s, code, 4 * PAGE, &mods[i]), STORE_OK);
	}
}

static int made; /* commits made: each writes what none wrote before */

static void commit_some(struct store *s, int k, struct store_id *last)
{
	struct store_id sid;
	int i;

	for (i = made; i < made + k; i++) {
		CHECK_ERR(st_begin(s, &sid), STORE_OK);
		CHECK_ERR(st_fill(s, &sid, &mods[i % 3],
				  (uint64_t)(i % 4) * PAGE, 1 + i % 250, 7),
			  STORE_OK);
		CHECK_ERR(st_commit(s, &sid, last), STORE_OK);
	}
	made += k;
}

static size_t file_size(const char *dir)
{
	unsigned char *b = NULL;
	size_t len = 0;

	if (st_read(dir, "commits", &b, &len))
		return 0;
	free(b);
	return len;
}

static void test_append(void)
{
	char *dir = t_tmpdir("persist-append");
	unsigned char *a = NULL, *b = NULL;
	char *path;
	size_t la = 0, lb = 0, ls;
	struct store *s = NULL;
	struct store_id last;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	setup(s);
	commit_some(s, 5, &last);
	CHECK_ERR(store_persist(s), STORE_OK);
	CHECK(st_read(dir, "commits", &a, &la) == 0);
	/* nothing new: the file stays */
	CHECK_ERR(store_persist(s), STORE_OK);
	CHECK(file_size(dir) == la);
	/* nothing new, but the file is gone: written whole again */
	path = st_path(dir, "commits");
	CHECK(path && remove(path) == 0);
	free(path);
	CHECK_ERR(store_persist(s), STORE_OK);
	CHECK(file_size(dir) == la);
	ST_CHECK_COMMITS_FILE(s, dir);
	commit_some(s, 2, &last);
	CHECK_ERR(store_persist(s), STORE_OK);
	CHECK(st_read(dir, "commits", &b, &lb) == 0);
	/* the old text up to its final '}' is untouched; that '}' is a space */
	CHECK(a && b && lb > la && !memcmp(a, b, la - 2) && b[la - 2] == ' ');
	/* it grew by two commits' text: about 2/5 of the first five's */
	CHECK(lb - la < la / 2 + 64);
	ST_CHECK_COMMITS_FILE(s, dir);
	/* replaced behind the store's back: written whole */
	CHECK(st_write(dir, "commits", a, la) == 0);
	commit_some(s, 1, &last);
	CHECK_ERR(store_persist(s), STORE_OK);
	ST_CHECK_COMMITS_FILE(s, dir);
	/* a delete rewrites it; the next persist appends after that */
	CHECK_ERR(store_commit_delete(s, &last), STORE_OK);
	ST_CHECK_COMMITS_FILE(s, dir);
	ls = file_size(dir);
	commit_some(s, 1, &last);
	CHECK_ERR(store_persist(s), STORE_OK);
	CHECK(file_size(dir) > ls);
	ST_CHECK_COMMITS_FILE(s, dir);
	store_close(s);
	s = NULL;
	/* it reopens with all of them */
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	ST_CHECK_COMMITS_FILE(s, dir);
	CHECK(store_commits_count(s) == 8);
out:
	store_close(s);
	free(a);
	free(b);
	t_rmrf(dir);
	free(dir);
}

/* Append text to the file `commits`. */
static int add_tail(const char *dir, const char *tail)
{
	char *path = st_path(dir, "commits");
	FILE *f = path ? fopen(path, "ab") : NULL;
	int ok = f && fputs(tail, f) >= 0;

	if (f && fclose(f))
		ok = 0;
	free(path);
	return ok ? 0 : -1;
}

static void test_cut_tail(void)
{
	char *dir = t_tmpdir("persist-tail");
	unsigned char *a = NULL, *b = NULL;
	size_t la = 0, lb = 0;
	struct store *s = NULL;
	struct store_id last;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	setup(s);
	commit_some(s, 3, &last);
	CHECK_ERR(store_persist(s), STORE_OK);
	store_close(s);
	s = NULL;
	CHECK(st_read(dir, "commits", &a, &la) == 0);
	/* what a cut append leaves: its text in part, not yet flipped */
	CHECK(add_tail(dir, ",\n\"0123456789ABCDEF\":{\"01") == 0);
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	CHECK(store_commits_count(s) == 3);
	CHECK(st_read(dir, "commits", &b, &lb) == 0);
	CHECK(lb == la && a && b && !memcmp(a, b, la)); /* cut off */
	/* and appends go on from there */
	commit_some(s, 1, &last);
	CHECK_ERR(store_persist(s), STORE_OK);
	ST_CHECK_COMMITS_FILE(s, dir);
	store_close(s);
	s = NULL;
	/* anything else after the object is a damaged file */
	CHECK(add_tail(dir, "x") == 0);
	CHECK_ERR(st_open(&s, dir, NULL), STORE_ECORRUPT);
out:
	store_close(s);
	free(a);
	free(b);
	t_rmrf(dir);
	free(dir);
}

static enum store_err open_bg(struct store **s, const char *dir)
{
	struct store_options o = {0};

	o.dir = dir;
	o.background_load_bytes = 1; /* any file: in the background */
	return store_open(s, &o);
}

static void test_background(void)
{
	char *dir = t_tmpdir("persist-bg");
	struct store *s = NULL;
	struct store_pair *pairs = NULL;
	struct store_id last, root, sid;
	struct st_commits before = {0, NULL}, after = {0, NULL};
	size_t n = 0, i;
	int same;

	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	setup(s);
	commit_some(s, 40, &last);
	CHECK_ERR(store_persist(s), STORE_OK);
	CHECK_ERR(st_commits_copy(s, &before), STORE_OK);
	root = st_root(s);
	store_close(s);
	s = NULL;
	CHECK_ERR(open_bg(&s, dir), STORE_OK);
	if (!s)
		goto out;
	/* the state answers whether the commits are read yet or not */
	CHECK_ID(&root, &last);
	root = st_root(s);
	CHECK_ID(&root, &last);
	CHECK_ERR(store_commits_ready(s), STORE_OK);
	CHECK(store_commits_count(s) == 40);
	CHECK_ERR(st_commits_copy(s, &after), STORE_OK);
	same = before.n == after.n;
	for (i = 0; same && i < before.n; i++)
		same = store_id_equal(&before.v[i].id, &after.v[i].id);
	CHECK(same);
	/* a commit right after open goes after the file's */
	store_close(s);
	s = NULL;
	CHECK_ERR(open_bg(&s, dir), STORE_OK);
	if (!s)
		goto out;
	commit_some(s, 1, &last);
	CHECK(store_commits_count(s) == 41);
	CHECK_ERR(store_commit_get(s, &before.v[0].id, &pairs, &n), STORE_OK);
	free(pairs);
	CHECK_ERR(store_persist(s), STORE_OK);
	ST_CHECK_COMMITS_FILE(s, dir);
	store_close(s);
	s = NULL;
	/* a damaged file: the state answers, the commits store does not */
	CHECK(st_write(dir, "commits", "{\"nope\":{}}\n", 12) == 0);
	CHECK_ERR(open_bg(&s, dir), STORE_OK);
	if (!s)
		goto out;
	root = st_root(s);
	CHECK_ID(&root, &last);
	CHECK_ERR(store_commits_ready(s), STORE_ECORRUPT);
	CHECK_ERR(store_commit_get(s, &last, &pairs, &n), STORE_ECORRUPT);
	CHECK_ERR(store_persist(s), STORE_ECORRUPT);
	CHECK_ERR(store_restore(s, &last), STORE_ECORRUPT);
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(st_commit(s, &sid, NULL), STORE_ECORRUPT);
	/* and the damaged file is left as it is */
	CHECK(file_size(dir) == 12);
out:
	st_commits_release(&before);
	st_commits_release(&after);
	store_close(s);
	t_rmrf(dir);
	free(dir);
}

int main(void)
{
	test_append();
	test_cut_tail();
	test_background();
	return t_done();
}
