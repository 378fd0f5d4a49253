/*
 * unit_walkthrough.c - the seed's walkthrough (on-disk-store.md) on disk:
 * deploy two modules, commit 1, commit 2, persist, restore 1, reopen,
 * restore 2, checking every file name and content after each step.
 */
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

#define MEM 65536

static const char *dir;
static struct store_id m1, m2;
/* expected memory of each module after commit 1 and 2 */
static unsigned char mem1[3][MEM], mem2[3][MEM];
static struct store_id mc1[3], mc2[3], c[3];

/* The exact set of plain names expected now. */
static struct st_names want;

static void want_add_mod(const struct store_id *mod, const char *suffix)
{
	char name[2 * STORE_HEX_LEN + 16];

	st_mod_name(name, sizeof(name), mod, suffix);
	CHECK(st_names_add(&want, name) == 0);
}

static void want_add_commit(const struct store_id *mod,
			    const struct store_id *mc)
{
	char name[2 * STORE_HEX_LEN + 16];

	st_commit_name(name, sizeof(name), mod, mc);
	CHECK(st_names_add(&want, name) == 0);
}

#define CHECK_NAMES(step) check_names(__LINE__, step)
static void check_names(int line, const char *step)
{
	struct st_names got;

	if (st_names_list(dir, ST_PLAIN, &got)) {
		st_fail(__FILE__, line, "%s: cannot list %s", step, dir);
		return;
	}
	if (st_names_equal(&got, &want)) {
		st_pass();
	} else {
		st_fail(__FILE__, line, "%s: directory names differ", step);
		st_names_diff("directory", &got, "expected", &want);
	}
	st_names_release(&got);
}

static int file_is(const char *name, const void *buf, size_t len)
{
	unsigned char *got;
	size_t n;
	int eq;

	if (st_read(dir, name, &got, &n))
		return 0;
	eq = n == len && !memcmp(got, buf, len);
	free(got);
	return eq;
}

/* MOD, MOD_last, MOD_last_id and MOD_MODCOMMIT for the current commit. */
#define CHECK_MODULE(mod, mc, mem) check_module(__LINE__, mod, mc, mem)
static void check_module(int line, const struct store_id *mod,
			 const struct store_id *mc, const unsigned char *mem)
{
	char name[2 * STORE_HEX_LEN + 16], h[STORE_HEX_LEN + 2];
	struct store_id got;

	st_mod_name(name, sizeof(name), mod, NULL);
	if (!file_is(name, mem, MEM))
		st_fail(__FILE__, line, "%s: not the expected memory", name);
	else
		st_pass();
	st_mod_name(name, sizeof(name), mod, "_last");
	if (!file_is(name, mem, MEM))
		st_fail(__FILE__, line, "%s: not the expected memory", name);
	else
		st_pass();
	st_commit_name(name, sizeof(name), mod, mc);
	if (!file_is(name, mem, MEM))
		st_fail(__FILE__, line, "%s: not the expected memory", name);
	else
		st_pass();
	st_mod_name(name, sizeof(name), mod, "_last_id");
	st_hex(mc, h);
	h[STORE_HEX_LEN] = '\n';
	if (!file_is(name, h, STORE_HEX_LEN + 1)) {
		st_fail(__FILE__, line, "%s: not \"%.64s\\n\"", name, h);
	} else {
		st_pass();
	}
	store_memory_id(mem, MEM, &got);
	CHECK_ID(&got, mc);
}

static struct store *s;

/* The string at key of object o, or "". */
static const char *jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? v : "";
}

static void want_remove(const char *name)
{
	size_t i;

	for (i = 0; i < want.n; i++)
		if (!strcmp(want.v[i], name)) {
			free(want.v[i]);
			memmove(want.v + i, want.v + i + 1,
				(want.n - i - 1) * sizeof(*want.v));
			want.n--;
			return;
		}
}

#define CHECK_MODULE_STORE(mod, mc, mem)                                       \
	check_store_module(__LINE__, mod, mc, mem)
static void check_store_module(int line, const struct store_id *mod,
			       const struct store_id *mc,
			       const unsigned char *mem)
{
	struct store_module_info info;
	unsigned char *buf = malloc(MEM + 1);
	enum store_err err;
	ssize_t r;
	int fd = -1;

	check_module(line, mod, mc, mem);
	err = store_module_get(s, mod, &info);
	if (err != STORE_OK || !info.has_commit || info.size != MEM ||
	    !store_id_equal(&info.last_commit, mc))
		st_fail(__FILE__, line, "store_module_get disagrees (%d)", err);
	else
		st_pass();
	err = store_module_open(s, mod, &fd, &info);
	if (err != STORE_OK || !buf) {
		st_fail(__FILE__, line, "store_module_open = %d", err);
		goto out;
	}
	r = pread(fd, buf, MEM + 1, 0);
	if (r != MEM || memcmp(buf, mem, MEM) || info.size != MEM ||
	    !info.has_commit || !store_id_equal(&info.last_commit, mc))
		st_fail(__FILE__, line, "store_module_open: wrong memory/info");
	else
		st_pass();
out:
	if (fd >= 0)
		close(fd);
	free(buf);
}

/* Module commit ids and the root, recomputed from the files. */
#define CHECK_ROOT(commit) check_root(__LINE__, commit)
static void check_root(int line, const struct store_id *commit)
{
	struct store_id root, files;

	if (store_root(s, &root) != STORE_OK ||
	    !store_id_equal(&root, commit)) {
		char h[STORE_HEX_LEN + 1];

		st_fail(__FILE__, line, "store_root is not %s",
			st_hex(commit, h));
	} else {
		st_pass();
	}
	st_check_store(__FILE__, line, s, dir, &files);
	if (!store_id_equal(&files, commit))
		st_fail(__FILE__, line, "root of the files is not the commit");
	else
		st_pass();
}

static enum store_err commit_both(const unsigned char *a,
				  const unsigned char *b,
				  const struct store_id *base,
				  struct store_id *out)
{
	struct store_session_info si;
	struct store_commit_info ci;
	struct store_pair want_pairs[2];
	struct store_id ref;
	enum store_err err;

	memset(&ci, 0, sizeof(ci));
	err = store_session_begin(s, NULL, &si);
	CHECK_ERR(err, STORE_OK);
	if (err)
		return err;
	CHECK(!!si.has_base == !!base);
	if (base && si.has_base)
		CHECK_ID(&si.base, base);
	/* whole pages written in small pieces and one big one */
	CHECK_ERR(store_session_write(s, &si.id, &m1, 0, a, 100), STORE_OK);
	CHECK_ERR(store_session_write(s, &si.id, &m1, 100, a + 100, MEM - 100),
		  STORE_OK);
	CHECK_ERR(store_session_write(s, &si.id, &m2, 0, b, MEM), STORE_OK);
	err = store_session_commit(s, &si.id, NULL, &ci);
	CHECK_ERR(err, STORE_OK);
	if (err)
		return err;
	*out = ci.id;
	CHECK(!!ci.has_base == !!base);
	if (base && ci.has_base)
		CHECK_ID(&ci.base, base);
	want_pairs[0].module = m1;
	store_memory_id(a, MEM, &want_pairs[0].commit);
	want_pairs[1].module = m2;
	store_memory_id(b, MEM, &want_pairs[1].commit);
	CHECK(ci.n == 2);
	if (ci.n == 2) {
		int swap = memcmp(m1.b, m2.b, STORE_ID_BYTES) > 0;

		CHECK_ID(&ci.pairs[swap].module, &m1);
		CHECK_ID(&ci.pairs[swap].commit, &want_pairs[0].commit);
		CHECK_ID(&ci.pairs[!swap].module, &m2);
		CHECK_ID(&ci.pairs[!swap].commit, &want_pairs[1].commit);
	}
	CHECK(st_ref_state_id(want_pairs, 2, &ref) == 0);
	CHECK_ID(&ci.id, &ref);
	store_commit_info_release(&ci);
	return STORE_OK;
}

int main(void)
{
	struct store_id root, empty, m3, sid, c3, mc3;
	struct st_snap before, after;
	char *d = t_tmpdir("walkthrough");
	char name[2 * STORE_HEX_LEN + 16];
	struct store_module_info info;
	struct store_pair *pairs = NULL;
	unsigned char *buf;
	size_t n, i, len;
	int created = -1;

	CHECK(d != NULL);
	if (!d)
		return t_done();
	dir = d;
	for (i = 0; i < MEM; i++) {
		mem1[1][i] = (unsigned char)(i % 7 == 0 ? i / 7 : 0);
		mem2[1][i] = (unsigned char)(i < 4096 ? 0 : 0x5A);
		mem1[2][i] = (unsigned char)(i * 3 + 1);
		mem2[2][i] = (unsigned char)(i % 4096 == 17 ? 0xEE : 0);
	}
	for (i = 1; i <= 2; i++) {
		st_ref_memory_id(mem1[i], MEM, &mc1[i]);
		st_ref_memory_id(mem2[i], MEM, &mc2[i]);
	}
	st_h("", 0, &empty);

	/* initial state: two modules deployed */
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_NAMES("open");
	CHECK_ERR(store_deploy(s, "counter-bytecode", 16, MEM, &info, &created),
		  STORE_OK);
	CHECK(created == 1);
	m1 = info.id;
	CHECK(info.size == MEM && !info.has_commit);
	CHECK_ERR(store_deploy(s, "box-bytecode", 12, 0 + MEM, &info, &created),
		  STORE_OK);
	CHECK(created == 1);
	m2 = info.id;
	/* the vectors' module ids of these bytecodes */
	root = st_id("FC3389EE4A5140F2D72931D1688F54AC"
		     "4EF8534A15F0E32AFC17BB8952D41268");
	CHECK_ID(&m1, &root);
	root = st_id("82CC481587A2428FCAC3D1A695EF8721"
		     "2559E48778938D35C91623415DFA38DD");
	CHECK_ID(&m2, &root);
	want_add_mod(&m1, NULL);
	want_add_mod(&m2, NULL);
	CHECK_NAMES("deploy");
	st_mod_name(name, sizeof(name), &m1, NULL);
	CHECK(file_is(name, mem1[0], MEM));
	st_mod_name(name, sizeof(name), &m2, NULL);
	CHECK(file_is(name, mem2[0], MEM));
	CHECK_ROOT(&empty);
	CHECK(store_commits_count(s) == 0);

	/* session commit 1 */
	CHECK_ERR(commit_both(mem1[1], mem2[1], NULL, &c[1]), STORE_OK);
	want_add_commit(&m1, &mc1[1]);
	want_add_mod(&m1, "_last");
	want_add_mod(&m1, "_last_id");
	want_add_commit(&m2, &mc2[1]);
	want_add_mod(&m2, "_last");
	want_add_mod(&m2, "_last_id");
	CHECK_NAMES("commit 1");
	CHECK_MODULE_STORE(&m1, &mc1[1], mem1[1]);
	CHECK_MODULE_STORE(&m2, &mc2[1], mem2[1]);
	CHECK_ROOT(&c[1]);
	CHECK(store_commits_count(s) == 1);

	/* session commit 2 */
	CHECK_ERR(commit_both(mem1[2], mem2[2], &c[1], &c[2]), STORE_OK);
	want_add_commit(&m1, &mc1[2]);
	want_add_commit(&m2, &mc2[2]);
	CHECK_NAMES("commit 2");
	CHECK_MODULE_STORE(&m1, &mc1[2], mem1[2]);
	CHECK_MODULE_STORE(&m2, &mc2[2], mem2[2]);
	/* commit 1's files are untouched */
	st_commit_name(name, sizeof(name), &m1, &mc1[1]);
	CHECK(file_is(name, mem1[1], MEM));
	st_commit_name(name, sizeof(name), &m2, &mc2[1]);
	CHECK(file_is(name, mem2[1], MEM));
	CHECK_ROOT(&c[2]);
	CHECK(store_commits_count(s) == 2);
	CHECK_ERR(store_commit_get(s, &c[1], &pairs, &n), STORE_OK);
	CHECK(n == 2);
	free(pairs);
	pairs = NULL;
	ST_CHECK_COMMITS(s, dir);

	/* persist: only the file `commits` is added */
	CHECK(!st_exists(dir, "commits"));
	CHECK(st_snap_take(dir, &before) == 0);
	CHECK_ERR(store_persist(s), STORE_OK);
	CHECK(st_snap_take(dir, &after) == 0);
	CHECK(st_names_add(&want, "commits") == 0);
	CHECK_NAMES("persist");
	for (i = 0; i < before.names.n; i++) {
		size_t j;

		for (j = 0; j < after.names.n; j++)
			if (!strcmp(before.names.v[i], after.names.v[j]))
				CHECK_ID(&before.hash[i], &after.hash[j]);
	}
	st_snap_release(&before);
	st_snap_release(&after);
	ST_CHECK_COMMITS_FILE(s, dir);
	/* the file's shape, read directly */
	if (st_read(dir, "commits", &buf, &len) == 0) {
		json_t *j = json_loadb((const char *)buf, len, 0, NULL);
		char h1[STORE_HEX_LEN + 1], h2[STORE_HEX_LEN + 1];
		json_t *o;

		CHECK(json_is_object(j) && json_object_size(j) == 2);
		o = json_object_get(j, st_hex(&c[1], h1));
		CHECK(json_is_object(o) && json_object_size(o) == 2);
		CHECK(!strcmp(jstr(o, st_hex(&m1, h1)), st_hex(&mc1[1], h2)));
		CHECK(!strcmp(jstr(o, st_hex(&m2, h1)), st_hex(&mc2[1], h2)));
		o = json_object_get(j, st_hex(&c[2], h1));
		CHECK(json_is_object(o) && json_object_size(o) == 2);
		CHECK(!strcmp(jstr(o, st_hex(&m1, h1)), st_hex(&mc1[2], h2)));
		CHECK(!strcmp(jstr(o, st_hex(&m2, h1)), st_hex(&mc2[2], h2)));
		json_decref(j);
		free(buf);
	} else {
		CHECK(0);
	}
	CHECK_ROOT(&c[2]);

	/* restore commit 1 */
	CHECK_ERR(store_restore(s, &c[1]), STORE_OK);
	CHECK_NAMES("restore 1");
	CHECK_MODULE_STORE(&m1, &mc1[1], mem1[1]);
	CHECK_MODULE_STORE(&m2, &mc2[1], mem2[1]);
	st_commit_name(name, sizeof(name), &m1, &mc1[2]);
	CHECK(file_is(name, mem1[2], MEM));
	st_commit_name(name, sizeof(name), &m2, &mc2[2]);
	CHECK(file_is(name, mem2[2], MEM));
	CHECK_ROOT(&c[1]);
	CHECK(store_commits_count(s) == 2);

	/* close and reopen: state and (persisted) commits are back */
	store_close(s);
	s = NULL;
	CHECK_NAMES("close");
	CHECK_ERR(st_open(&s, dir, NULL), STORE_OK);
	if (!s)
		goto out;
	CHECK_NAMES("reopen");
	CHECK_ROOT(&c[1]);
	CHECK(store_commits_count(s) == 2);
	CHECK_MODULE_STORE(&m1, &mc1[1], mem1[1]);
	CHECK_MODULE_STORE(&m2, &mc2[1], mem2[1]);

	/* restore commit 2 */
	CHECK_ERR(store_restore(s, &c[2]), STORE_OK);
	CHECK_NAMES("restore 2");
	CHECK_MODULE_STORE(&m1, &mc1[2], mem1[2]);
	CHECK_MODULE_STORE(&m2, &mc2[2], mem2[2]);
	CHECK_ROOT(&c[2]);
	ST_CHECK_COMMITS(s, dir);

	/*
	 * Beyond the seed: a third module, absent from commits 1 and 2, gets
	 * a commit of its own, then goes back to its initial state when
	 * commit 1 is restored.
	 */
	CHECK_ERR(store_deploy(s, "third", 5, 8192, &info, &created), STORE_OK);
	CHECK(created == 1);
	m3 = info.id;
	want_add_mod(&m3, NULL);
	CHECK_NAMES("deploy 3");
	CHECK_ROOT(&c[2]); /* no commit: not in the root */
	CHECK_ERR(st_begin(s, &sid), STORE_OK);
	CHECK_ERR(st_fill(s, &sid, &m3, 4096, 0x33, 4096), STORE_OK);
	CHECK_ERR(st_commit(s, &sid, &c3), STORE_OK);
	buf = calloc(1, 8192);
	if (buf) {
		memset(buf + 4096, 0x33, 4096);
		st_ref_memory_id(buf, 8192, &mc3);
		want_add_commit(&m3, &mc3);
		want_add_mod(&m3, "_last");
		want_add_mod(&m3, "_last_id");
		CHECK_NAMES("commit 3");
		st_check_store(__FILE__, __LINE__, s, dir, &root);
		CHECK_ID(&root, &c3);
		/* m1, m2 unchanged: same module commits, no new files */
		CHECK_MODULE_STORE(&m1, &mc1[2], mem1[2]);
		CHECK_MODULE_STORE(&m2, &mc2[2], mem2[2]);
		free(buf);
	}
	CHECK_ERR(store_restore(s, &c[1]), STORE_OK);
	/* m3 back to its initial memory: no _last, no _last_id */
	st_mod_name(name, sizeof(name), &m3, "_last");
	want_remove(name);
	st_mod_name(name, sizeof(name), &m3, "_last_id");
	want_remove(name);
	CHECK_NAMES("restore 1 without module 3");
	CHECK_MODULE_STORE(&m1, &mc1[1], mem1[1]);
	CHECK_MODULE_STORE(&m2, &mc2[1], mem2[1]);
	st_check_store(__FILE__, __LINE__, s, dir, &root);
	CHECK_ID(&root, &c[1]);
	CHECK_ERR(store_module_get(s, &m3, &info), STORE_OK);
	CHECK(!info.has_commit && info.size == 8192);
	st_mod_name(name, sizeof(name), &m3, NULL);
	buf = calloc(1, 8192);
	CHECK(buf && file_is(name, buf, 8192));
	free(buf);
	st_commit_name(name, sizeof(name), &m3, &mc3);
	CHECK(st_exists(dir, name)); /* commit 3 keeps its files */
	CHECK_ERR(store_restore(s, &c3), STORE_OK);
	st_check_store(__FILE__, __LINE__, s, dir, &root);
	CHECK_ID(&root, &c3);
	ST_CHECK_COMMITS(s, dir);
	/* README: the directory is 0700 and every file 0600 */
	{
		struct st_names all;
		struct stat sb;

		CHECK(st_names_list(dir, ST_ALL, &all) == 0);
		for (i = 0; i < all.n; i++) {
			char *p = st_path(dir, all.v[i]);

			if (p && lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) &&
			    (sb.st_mode & 0077))
				st_fail(__FILE__, __LINE__, "%s: mode %o",
					all.v[i], sb.st_mode & 0777);
			free(p);
		}
		st_names_release(&all);
		CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	}
out:
	store_close(s);
	st_names_release(&want);
	t_rmrf(dir);
	free(d);
	return t_done();
}
