/*
 * storetest.c - helpers shared by the store's unit tests (see storetest.h).
 */
#include "storetest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"

/* --- checks -------------------------------------------------------------- */

void st_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	t_failed++;
	fprintf(stderr, "%s:%d: FAIL ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void st_pass(void)
{
	t_passed++;
}

void st_check_id(const char *file, int line, const char *an,
		 const struct store_id *a, const char *bn,
		 const struct store_id *b)
{
	char ah[STORE_HEX_LEN + 1], bh[STORE_HEX_LEN + 1];

	if (!memcmp(a->b, b->b, STORE_ID_BYTES)) {
		st_pass();
		return;
	}
	st_fail(file, line, "%s != %s\n    %s\n    %s", an, bn, st_hex(a, ah),
		st_hex(b, bh));
}

/* --- ids ------------------------------------------------------------------ */

void st_h(const void *buf, size_t len, struct store_id *out)
{
	crypto_generichash(out->b, STORE_ID_BYTES, buf, len, NULL, 0);
}

static void node(const struct store_id *l, const struct store_id *r,
		 struct store_id *out)
{
	unsigned char in[1 + 2 * STORE_ID_BYTES];

	in[0] = 1;
	memcpy(in + 1, l->b, STORE_ID_BYTES);
	memcpy(in + 1 + STORE_ID_BYTES, r->b, STORE_ID_BYTES);
	st_h(in, sizeof(in), out);
}

/* MTH of n already-hashed leaves (RFC 6962 2.1). */
static void mth(const struct store_id *leaves, size_t n, struct store_id *out)
{
	struct store_id l, r;
	size_t k = 1;

	if (n == 0) {
		st_h("", 0, out);
		return;
	}
	if (n == 1) {
		*out = leaves[0];
		return;
	}
	while (k * 2 < n)
		k *= 2;
	mth(leaves, k, &l);
	mth(leaves + k, n - k, &r);
	node(&l, &r, out);
}

void st_ref_memory_id(const void *mem, size_t len, struct store_id *out)
{
	size_t n = len / STORE_PAGE_SIZE, i;
	struct store_id *leaves = malloc((n ? n : 1) * sizeof(*leaves));
	unsigned char *page = malloc(1 + STORE_PAGE_SIZE);
	const unsigned char *m = mem;

	if (!leaves || !page) {
		memset(out, 0, sizeof(*out));
		goto out;
	}
	page[0] = 0;
	for (i = 0; i < n; i++) {
		memcpy(page + 1, m + i * STORE_PAGE_SIZE, STORE_PAGE_SIZE);
		st_h(page, 1 + STORE_PAGE_SIZE, &leaves[i]);
	}
	mth(leaves, n, out);
out:
	free(leaves);
	free(page);
}

static int pair_cmp(const void *a, const void *b)
{
	const struct store_pair *x = a, *y = b;

	return memcmp(x->module.b, y->module.b, STORE_ID_BYTES);
}

int st_ref_state_id(const struct store_pair *pairs, size_t n,
		    struct store_id *out)
{
	struct store_pair *p = malloc((n ? n : 1) * sizeof(*p));
	struct store_id *leaves = malloc((n ? n : 1) * sizeof(*leaves));
	unsigned char in[1 + 2 * STORE_ID_BYTES];
	int ret = -1;
	size_t i;

	if (!p || !leaves)
		goto out;
	if (n)
		memcpy(p, pairs, n * sizeof(*p));
	qsort(p, n, sizeof(*p), pair_cmp);
	for (i = 0; i < n; i++) {
		in[0] = 0;
		memcpy(in + 1, p[i].module.b, STORE_ID_BYTES);
		memcpy(in + 1 + STORE_ID_BYTES, p[i].commit.b, STORE_ID_BYTES);
		st_h(in, sizeof(in), &leaves[i]);
	}
	mth(leaves, n, out);
	ret = 0;
out:
	free(p);
	free(leaves);
	return ret;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int st_parse(const char *hex, size_t len, struct store_id *out)
{
	size_t i;

	if (len != STORE_HEX_LEN)
		return -1;
	for (i = 0; i < STORE_ID_BYTES; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out->b[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

struct store_id st_id(const char *hex)
{
	struct store_id id;

	if (st_parse(hex, strlen(hex), &id)) {
		st_fail(__FILE__, __LINE__, "bad hex id in a test: %s", hex);
		memset(&id, 0, sizeof(id));
	}
	return id;
}

const char *st_hex(const struct store_id *id, char buf[STORE_HEX_LEN + 1])
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < STORE_ID_BYTES; i++) {
		buf[2 * i] = digits[id->b[i] >> 4];
		buf[2 * i + 1] = digits[id->b[i] & 15];
	}
	buf[STORE_HEX_LEN] = '\0';
	return buf;
}

const char *st_short(const struct store_id *id, char buf[9])
{
	char h[STORE_HEX_LEN + 1];

	st_hex(id, h);
	memcpy(buf, h, 8);
	buf[8] = '\0';
	return buf;
}

int st_is_hex64_upper(const char *s, size_t len)
{
	size_t i;

	if (len != STORE_HEX_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

/* --- files --------------------------------------------------------------- */

char *st_path(const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *p = malloc(len);

	if (p)
		snprintf(p, len, "%s/%s", dir, name);
	return p;
}

void st_mod_name(char *buf, size_t size, const struct store_id *mod,
		 const char *suffix)
{
	char h[STORE_HEX_LEN + 1];

	snprintf(buf, size, "%s%s", st_hex(mod, h), suffix ? suffix : "");
}

void st_commit_name(char *buf, size_t size, const struct store_id *mod,
		    const struct store_id *mc)
{
	char a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1];

	snprintf(buf, size, "%s_%s", st_hex(mod, a), st_hex(mc, b));
}

int st_read(const char *dir, const char *name, unsigned char **buf, size_t *len)
{
	char *path = st_path(dir, name);
	unsigned char *b = NULL;
	struct stat sb;
	size_t got = 0;
	int fd = -1, ret = -1;

	*buf = NULL;
	*len = 0;
	if (!path)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0)
		goto out;
	b = malloc((size_t)sb.st_size + 1);
	if (!b)
		goto out;
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, b + got, (size_t)sb.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
	b[got] = '\0';
	*buf = b;
	*len = got;
	b = NULL;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(b);
	free(path);
	return ret;
}

int st_write(const char *dir, const char *name, const void *buf, size_t len)
{
	char *path = st_path(dir, name);
	const unsigned char *p = buf;
	int fd = -1, ret = -1;

	if (!path)
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out;
		p += w;
		len -= (size_t)w;
	}
	ret = 0;
out:
	if (fd >= 0 && close(fd) < 0)
		ret = -1;
	free(path);
	return ret;
}

int st_exists(const char *dir, const char *name)
{
	char *path = st_path(dir, name);
	struct stat sb;
	int ret;

	if (!path)
		return 0;
	ret = lstat(path, &sb) == 0;
	free(path);
	return ret;
}

static int str_cmp(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;

	return strcmp(*x, *y);
}

int st_names_add(struct st_names *names, const char *name)
{
	char **v = realloc(names->v, (names->n + 1) * sizeof(*v));
	char *c;

	if (!v)
		return -1;
	names->v = v;
	c = strdup(name);
	if (!c)
		return -1;
	v[names->n++] = c;
	qsort(v, names->n, sizeof(*v), str_cmp);
	return 0;
}

int st_names_list(const char *dir, enum st_which which, struct st_names *out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;

	out->v = NULL;
	out->n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		int dot = e->d_name[0] == '.';

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((which == ST_PLAIN && dot) || (which == ST_DOT && !dot))
			continue;
		if (st_names_add(out, e->d_name)) {
			ret = -1;
			break;
		}
	}
	closedir(d);
	return ret;
}

void st_names_release(struct st_names *names)
{
	size_t i;

	for (i = 0; i < names->n; i++)
		free(names->v[i]);
	free(names->v);
	names->v = NULL;
	names->n = 0;
}

int st_names_has(const struct st_names *names, const char *name)
{
	size_t i;

	for (i = 0; i < names->n; i++)
		if (!strcmp(names->v[i], name))
			return 1;
	return 0;
}

int st_names_equal(const struct st_names *a, const struct st_names *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return 0;
	return 1;
}

void st_names_diff(const char *an, const struct st_names *a, const char *bn,
		   const struct st_names *b)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (!st_names_has(b, a->v[i]))
			fprintf(stderr, "    only in %s: %s\n", an, a->v[i]);
	for (i = 0; i < b->n; i++)
		if (!st_names_has(a, b->v[i]))
			fprintf(stderr, "    only in %s: %s\n", bn, b->v[i]);
}

int st_names_from(struct st_names *out, const char *const *list)
{
	out->v = NULL;
	out->n = 0;
	for (; *list; list++)
		if (st_names_add(out, *list))
			return -1;
	return 0;
}

size_t st_count_tmp(const char *dir)
{
	struct st_names all;
	size_t i, n = 0;

	if (st_names_list(dir, ST_DOT, &all))
		return 0;
	for (i = 0; i < all.n; i++)
		if (!strncmp(all.v[i], ".tmp", 4))
			n++;
	st_names_release(&all);
	return n;
}

static const char *const st_journals[2] = {".journal", ".journal.1"};

/*
 * The seq of dir's journal slot k when it is live (v1: 0), and the text
 * after its seq line in *body (caller frees *buf); -1 if not live.
 */
static long long st_slot(const char *dir, int k, unsigned char **buf,
			 const char **body)
{
	static const char v1[] = "modstore-journal 1\n";
	static const char v2[] = "modstore-journal 2\nseq ";
	size_t len;
	char *end;
	long long seq = -1;

	*buf = NULL;
	if (!st_exists(dir, st_journals[k]) ||
	    st_read(dir, st_journals[k], buf, &len))
		return -1;
	if (len >= sizeof(v1) - 1 && !memcmp(*buf, v1, sizeof(v1) - 1)) {
		*body = (const char *)*buf + sizeof(v1) - 1;
		return 0;
	}
	if (len > sizeof(v2) - 1 && !memcmp(*buf, v2, sizeof(v2) - 1)) {
		seq = strtoll((const char *)*buf + sizeof(v2) - 1, &end, 10);
		if (*end == '\n') {
			*body = end + 1;
			return seq;
		}
	}
	free(*buf);
	*buf = NULL;
	return -1;
}

int st_journal_live(const char *dir)
{
	unsigned char *buf;
	const char *body;
	int k, live = 0;

	for (k = 0; k < 2; k++) {
		live |= st_slot(dir, k, &buf, &body) >= 0;
		free(buf);
	}
	return live;
}

int st_journal_ok(const char *dir, const struct store_id *root)
{
	unsigned char *buf[2];
	const char *body[2], *p;
	long long seq[2];
	struct store_id id;
	int k, r = -1;

	for (k = 0; k < 2; k++)
		seq[k] = st_slot(dir, k, &buf[k], &body[k]);
	if (seq[0] < 0 && seq[1] < 0)
		return 0;
	k = seq[1] > seq[0];
	p = body[k];
	if (!strncmp(p, "commit ", 7))
		p += 7;
	else if (!strncmp(p, "restore ", 8))
		p += 8;
	if (strlen(p) > STORE_HEX_LEN && p[STORE_HEX_LEN] == '\n' &&
	    store_id_parse(&id, p, STORE_HEX_LEN) == 0 &&
	    store_id_equal(&id, root))
		r = 1;
	free(buf[0]);
	free(buf[1]);
	return r;
}

/* --- the state on disk ------------------------------------------------- */

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_ID_BYTES);
}

#define PROBLEM(...)                                                           \
	do {                                                                   \
		fprintf(stderr, "    %s: ", dir);                              \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		problems++;                                                    \
	} while (0)

static int all_zero(const unsigned char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return 0;
	return 1;
}

/* Check one module's files; fill its slot of st. */
static int check_module(const char *dir, struct st_state *st, size_t i)
{
	char name[2 * STORE_HEX_LEN + 16], h[STORE_HEX_LEN + 1];
	unsigned char *mem = NULL, *last = NULL, *lid = NULL, *cf = NULL;
	size_t memlen, lastlen, lidlen, cflen;
	struct store_id got;
	int problems = 0;

	st_hex(&st->mods[i], h);
	if (st_read(dir, h, &mem, &memlen)) {
		PROBLEM("%s: cannot read", h);
		goto out;
	}
	st->sizes[i] = memlen;
	if (memlen == 0 || memlen % STORE_PAGE_SIZE)
		PROBLEM("%s: size %zu is not a positive number of pages", h,
			memlen);
	st_mod_name(name, sizeof(name), &st->mods[i], "_last_id");
	if (!st_exists(dir, name)) {
		st_mod_name(name, sizeof(name), &st->mods[i], "_last");
		if (st_exists(dir, name))
			PROBLEM("%s exists without _last_id", name);
		if (!all_zero(mem, memlen))
			PROBLEM("%s: no commit but memory is not all zeros", h);
		goto out;
	}
	if (st_read(dir, name, &lid, &lidlen)) {
		PROBLEM("%s: cannot read", name);
		goto out;
	}
	if (lidlen != STORE_HEX_LEN + 1 || lid[STORE_HEX_LEN] != '\n' ||
	    !st_is_hex64_upper((const char *)lid, STORE_HEX_LEN)) {
		PROBLEM("%s: not 64 uppercase hex and a newline (%zu bytes)",
			name, lidlen);
		goto out;
	}
	st_parse((const char *)lid, STORE_HEX_LEN, &st->last[i]);
	st->has_commit[i] = 1;
	st->pairs[st->npairs].module = st->mods[i];
	st->pairs[st->npairs].commit = st->last[i];
	st->npairs++;
	st_mod_name(name, sizeof(name), &st->mods[i], "_last");
	if (st_read(dir, name, &last, &lastlen))
		PROBLEM("%s: missing", name);
	else if (lastlen != memlen || memcmp(last, mem, memlen))
		PROBLEM("%s: content differs from %s", name, h);
	st_commit_name(name, sizeof(name), &st->mods[i], &st->last[i]);
	if (st_read(dir, name, &cf, &cflen))
		PROBLEM("%s: commit file of _last_id missing", name);
	else if (cflen != memlen || memcmp(cf, mem, memlen))
		PROBLEM("%s: content differs from %s", name, h);
	store_memory_id(mem, memlen, &got);
	if (memcmp(got.b, st->last[i].b, STORE_ID_BYTES)) {
		char g[STORE_HEX_LEN + 1];

		PROBLEM("%s: memory id %s differs from its _last_id", h,
			st_hex(&got, g));
	}
out:
	free(mem);
	free(last);
	free(lid);
	free(cf);
	return problems;
}

/*
 * The dot-files of the layout that belong to a module: every .MOD_bytecode
 * of a module holds the bytes whose hash is MOD. One without its module
 * (a deploy in flight, or one a crash ended before open) is not checked.
 */
static int check_bytecode(const char *dir, const struct st_state *st)
{
	struct st_names dot;
	struct store_id id, got;
	size_t i, len, n = strlen("_bytecode");
	int problems = 0;

	if (st_names_list(dir, ST_DOT, &dot)) {
		PROBLEM("cannot list");
		return problems;
	}
	for (i = 0; i < dot.n; i++) {
		const char *nm = dot.v[i];
		unsigned char *buf;

		if (strlen(nm) != 1 + STORE_HEX_LEN + n ||
		    strcmp(nm + 1 + STORE_HEX_LEN, "_bytecode") ||
		    !st_is_hex64_upper(nm + 1, STORE_HEX_LEN))
			continue;
		st_parse(nm + 1, STORE_HEX_LEN, &id);
		if (!bsearch(&id, st->mods, st->nmods, sizeof(*st->mods),
			     id_cmp))
			continue;
		if (st_read(dir, nm, &buf, &len)) {
			PROBLEM("%s: cannot read", nm);
			continue;
		}
		st_h(buf, len, &got);
		if (memcmp(got.b, id.b, STORE_ID_BYTES))
			PROBLEM("%s: its bytes do not hash to the module id",
				nm);
		free(buf);
	}
	st_names_release(&dot);
	return problems;
}

int st_state_read(const char *dir, struct st_state *st)
{
	struct st_names names;
	struct store_id id;
	size_t i, j;
	int problems = 0;

	memset(st, 0, sizeof(*st));
	if (st_names_list(dir, ST_PLAIN, &names)) {
		PROBLEM("cannot list");
		return problems;
	}
	st->mods = calloc(names.n + 1, sizeof(*st->mods));
	st->sizes = calloc(names.n + 1, sizeof(*st->sizes));
	st->has_commit = calloc(names.n + 1, sizeof(*st->has_commit));
	st->last = calloc(names.n + 1, sizeof(*st->last));
	st->pairs = calloc(names.n + 1, sizeof(*st->pairs));
	if (!st->mods || !st->sizes || !st->has_commit || !st->last ||
	    !st->pairs) {
		PROBLEM("out of memory");
		goto out;
	}
	/* names: MOD, MOD_last, MOD_last_id, MOD_MODCOMMIT, commits */
	for (i = 0; i < names.n; i++) {
		const char *n = names.v[i];
		size_t len = strlen(n);

		if (st_is_hex64_upper(n, len)) {
			st_parse(n, len, &st->mods[st->nmods++]);
			continue;
		}
		if (!strcmp(n, "commits"))
			continue;
		if (len > STORE_HEX_LEN &&
		    st_is_hex64_upper(n, STORE_HEX_LEN) &&
		    (!strcmp(n + STORE_HEX_LEN, "_last") ||
		     !strcmp(n + STORE_HEX_LEN, "_last_id") ||
		     (n[STORE_HEX_LEN] == '_' &&
		      st_is_hex64_upper(n + STORE_HEX_LEN + 1,
					len - STORE_HEX_LEN - 1)))) {
			char m[STORE_HEX_LEN + 1];

			memcpy(m, n, STORE_HEX_LEN);
			m[STORE_HEX_LEN] = '\0';
			if (!st_names_has(&names, m))
				PROBLEM("%s: no module file %s", n, m);
			continue;
		}
		PROBLEM("unexpected file %s", n);
	}
	qsort(st->mods, st->nmods, sizeof(*st->mods), id_cmp);
	for (i = 0; i < st->nmods; i++)
		problems += check_module(dir, st, i);
	problems += check_bytecode(dir, st);
	/* every commit file holds the memory its name says */
	for (i = 0; i < names.n; i++) {
		const char *n = names.v[i];
		size_t len = strlen(n), memlen;
		unsigned char *mem;
		char h[STORE_HEX_LEN + 1];

		if (len != 2 * STORE_HEX_LEN + 1 || n[STORE_HEX_LEN] != '_' ||
		    st_parse(n + STORE_HEX_LEN + 1, STORE_HEX_LEN, &id))
			continue;
		if (st_read(dir, n, &mem, &memlen)) {
			PROBLEM("%s: cannot read", n);
			continue;
		}
		if (memlen == 0 || memlen % STORE_PAGE_SIZE)
			PROBLEM("%s: size %zu", n, memlen);
		else {
			struct store_id got;

			store_memory_id(mem, memlen, &got);
			if (memcmp(got.b, id.b, STORE_ID_BYTES))
				PROBLEM("%s: content has memory id %s", n,
					st_hex(&got, h));
		}
		free(mem);
	}
	for (j = 0; j + 1 < st->npairs; j++)
		if (id_cmp(&st->pairs[j].module, &st->pairs[j + 1].module) >= 0)
			PROBLEM("pairs not sorted");
	if (store_state_id(st->pairs, st->npairs, &st->root) != STORE_OK)
		PROBLEM("store_state_id failed");
out:
	st_names_release(&names);
	return problems;
}

void st_state_release(struct st_state *st)
{
	free(st->mods);
	free(st->sizes);
	free(st->has_commit);
	free(st->last);
	free(st->pairs);
	memset(st, 0, sizeof(*st));
}

int st_check_store(const char *file, int line, struct store *s, const char *dir,
		   struct store_id *root)
{
	struct store_module_info *mods = NULL;
	struct st_state st;
	struct store_id r;
	size_t n = 0, i;
	int problems = st_state_read(dir, &st);
	enum store_err err;
	char h[STORE_HEX_LEN + 1];

	if (problems)
		st_fail(file, line, "%d problem(s) in the files of %s",
			problems, dir);
	else
		st_pass();
	if (root)
		*root = st.root;
	if (!s)
		goto out;
	err = store_root(s, &r);
	if (err != STORE_OK) {
		st_fail(file, line, "store_root = %d", err);
		problems++;
	} else if (memcmp(r.b, st.root.b, STORE_ID_BYTES)) {
		st_fail(file, line, "store_root %s differs from the files'",
			st_hex(&r, h));
		problems++;
	} else {
		st_pass();
	}
	err = store_module_list(s, &mods, &n);
	if (err != STORE_OK) {
		st_fail(file, line, "store_module_list = %d", err);
		problems++;
		goto out;
	}
	if (n != st.nmods) {
		st_fail(file, line,
			"store_module_list has %zu modules, %zu files", n,
			st.nmods);
		problems++;
		goto out;
	}
	for (i = 0; i < n; i++) {
		int bad = 0;

		if (memcmp(mods[i].id.b, st.mods[i].b, STORE_ID_BYTES))
			bad = 1;
		else if (mods[i].size != st.sizes[i] ||
			 !mods[i].has_commit != !st.has_commit[i])
			bad = 1;
		else if (mods[i].has_commit &&
			 memcmp(mods[i].last_commit.b, st.last[i].b,
				STORE_ID_BYTES))
			bad = 1;
		if (bad) {
			st_fail(file, line,
				"module %zu (%s): store says size %llu "
				"has_commit %d, files say %llu %d",
				i, st_hex(&mods[i].id, h),
				(unsigned long long)mods[i].size,
				mods[i].has_commit,
				(unsigned long long)st.sizes[i],
				st.has_commit[i]);
			problems++;
		}
	}
	if (!problems)
		st_pass();
out:
	free(mods);
	st_state_release(&st);
	return problems;
}

static int copy_one(void *ctx, const struct store_id *commit,
		    const struct store_pair *pairs, size_t n)
{
	struct st_commits *c = ctx;
	struct st_commit *v = realloc(c->v, (c->n + 1) * sizeof(*v));

	if (!v)
		return 1;
	c->v = v;
	v[c->n].id = *commit;
	v[c->n].n = n;
	v[c->n].pairs = malloc((n ? n : 1) * sizeof(*pairs));
	if (!v[c->n].pairs)
		return 1;
	if (n)
		memcpy(v[c->n].pairs, pairs, n * sizeof(*pairs));
	c->n++;
	return 0;
}

enum store_err st_commits_copy(struct store *s, struct st_commits *out)
{
	out->n = 0;
	out->v = NULL;
	return store_commits_foreach(s, copy_one, out);
}

void st_commits_release(struct st_commits *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->v[i].pairs);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

int st_check_commits(const char *file, int line, struct store *s,
		     const char *dir)
{
	struct st_commits c;
	char name[2 * STORE_HEX_LEN + 16], h[STORE_HEX_LEN + 1];
	struct store_id id;
	size_t i, j;
	int problems = 0;
	enum store_err err = st_commits_copy(s, &c);

	if (err != STORE_OK) {
		st_fail(file, line, "store_commits_foreach = %d", err);
		st_commits_release(&c);
		return 1;
	}
	if (c.n != store_commits_count(s)) {
		st_fail(file, line, "foreach gave %zu commits, count %zu", c.n,
			store_commits_count(s));
		problems++;
	}
	for (i = 0; i < c.n; i++) {
		st_ref_state_id(c.v[i].pairs, c.v[i].n, &id);
		if (memcmp(id.b, c.v[i].id.b, STORE_ID_BYTES)) {
			st_fail(file, line, "commit %s: pairs give another id",
				st_hex(&c.v[i].id, h));
			problems++;
		}
		for (j = 0; j < c.v[i].n; j++) {
			st_commit_name(name, sizeof(name),
				       &c.v[i].pairs[j].module,
				       &c.v[i].pairs[j].commit);
			if (!st_exists(dir, name)) {
				st_fail(file, line,
					"commit %s: file %s missing",
					st_hex(&c.v[i].id, h), name);
				problems++;
			}
			if (j && id_cmp(&c.v[i].pairs[j - 1].module,
					&c.v[i].pairs[j].module) >= 0) {
				st_fail(file, line,
					"commit %s: pairs not sorted",
					st_hex(&c.v[i].id, h));
				problems++;
			}
		}
	}
	if (!problems)
		st_pass();
	st_commits_release(&c);
	return problems;
}

int st_check_commits_file(const char *file, int line, struct store *s,
			  const char *dir)
{
	unsigned char *buf = NULL;
	size_t len, i, j;
	struct st_commits c = {0, NULL};
	json_t *root = NULL, *mods, *mc;
	json_error_t jerr;
	const char *key, *mkey;
	char h[STORE_HEX_LEN + 1], m[STORE_HEX_LEN + 1];
	int problems = 0;

	if (st_read(dir, "commits", &buf, &len)) {
		st_fail(file, line, "%s/commits: cannot read", dir);
		return 1;
	}
	root = json_loadb((const char *)buf, len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		st_fail(file, line, "%s/commits: not a JSON object: %s", dir,
			root ? "" : jerr.text);
		problems++;
		goto out;
	}
	if (st_commits_copy(s, &c) != STORE_OK) {
		st_fail(file, line, "store_commits_foreach failed");
		problems++;
		goto out;
	}
	if (json_object_size(root) != c.n) {
		st_fail(file, line, "commits file has %zu commits, store %zu",
			json_object_size(root), c.n);
		problems++;
	}
	json_object_foreach(root, key, mods)
	{
		if (!st_is_hex64_upper(key, strlen(key)) ||
		    !json_is_object(mods)) {
			st_fail(file, line, "commits file: bad entry %s", key);
			problems++;
		}
		json_object_foreach(mods, mkey, mc)
		{
			if (!st_is_hex64_upper(mkey, strlen(mkey)) ||
			    !json_is_string(mc) ||
			    !st_is_hex64_upper(json_string_value(mc),
					       json_string_length(mc))) {
				st_fail(file, line,
					"commits file: bad pair in %s", key);
				problems++;
			}
		}
	}
	for (i = 0; i < c.n; i++) {
		st_hex(&c.v[i].id, h);
		mods = json_object_get(root, h);
		if (!mods) {
			st_fail(file, line, "commits file lacks %s", h);
			problems++;
			continue;
		}
		if (json_object_size(mods) != c.v[i].n) {
			st_fail(file, line, "commits file: %s has %zu modules",
				h, json_object_size(mods));
			problems++;
		}
		for (j = 0; j < c.v[i].n; j++) {
			st_hex(&c.v[i].pairs[j].module, m);
			mc = json_object_get(mods, m);
			st_hex(&c.v[i].pairs[j].commit, m);
			if (!json_is_string(mc) ||
			    strcmp(json_string_value(mc), m)) {
				st_fail(file, line,
					"commits file: %s pair %zu differs", h,
					j);
				problems++;
			}
		}
	}
	if (!problems)
		st_pass();
out:
	json_decref(root);
	st_commits_release(&c);
	free(buf);
	return problems;
}

int st_snap_take(const char *dir, struct st_snap *out)
{
	size_t i;

	out->hash = NULL;
	if (st_names_list(dir, ST_PLAIN, &out->names))
		return -1;
	out->hash = calloc(out->names.n + 1, sizeof(*out->hash));
	if (!out->hash)
		return -1;
	for (i = 0; i < out->names.n; i++) {
		unsigned char *buf;
		size_t len;

		if (st_read(dir, out->names.v[i], &buf, &len))
			return -1;
		st_h(buf, len, &out->hash[i]);
		free(buf);
	}
	return 0;
}

void st_snap_release(struct st_snap *snap)
{
	st_names_release(&snap->names);
	free(snap->hash);
	snap->hash = NULL;
}

int st_snap_equal(const char *what, const struct st_snap *a,
		  const struct st_snap *b)
{
	size_t i;
	int eq = 1;

	if (!st_names_equal(&a->names, &b->names)) {
		fprintf(stderr, "    %s: file names differ\n", what);
		st_names_diff("before", &a->names, "after", &b->names);
		return 0;
	}
	for (i = 0; i < a->names.n; i++)
		if (memcmp(a->hash[i].b, b->hash[i].b, STORE_ID_BYTES)) {
			fprintf(stderr, "    %s: %s changed\n", what,
				a->names.v[i]);
			eq = 0;
		}
	return eq;
}

/* --- the store ------------------------------------------------------------ */

int st_fault_hook(void *ctx, const char *step)
{
	struct st_fault *f = ctx;

	if (!f->armed)
		return 0;
	f->calls++;
	if (f->calls == 1)
		snprintf(f->first, sizeof(f->first), "%s", step);
	if (f->log)
		fprintf(stderr, "    step %ld: %s\n", f->calls, step);
	if (f->calls != f->target)
		return 0;
	f->hit = 1;
	snprintf(f->step, sizeof(f->step), "%s", step);
	if (f->crash)
		_exit(ST_CRASH_EXIT);
	return f->err;
}

void st_fault_arm(struct st_fault *f, long target, int err, int crash)
{
	f->target = target;
	f->calls = 0;
	f->err = err;
	f->crash = crash;
	f->hit = 0;
	f->step[0] = '\0';
	f->first[0] = '\0';
	f->armed = 1;
}

void st_fault_disarm(struct st_fault *f)
{
	f->armed = 0;
}

enum store_err st_open(struct store **s, const char *dir, struct st_fault *f)
{
	struct store_options o;

	memset(&o, 0, sizeof(o));
	o.dir = dir;
	if (f) {
		o.fault = st_fault_hook;
		o.fault_ctx = f;
	}
	return store_open(s, &o);
}

enum store_err st_deploy(struct store *s, const char *code, uint64_t size,
			 struct store_id *mod)
{
	struct store_module_info info;
	struct store_id want;
	enum store_err err;

	st_h(code, strlen(code), &want);
	if (mod)
		*mod = want;
	err = store_deploy(s, code, strlen(code), size, &info, NULL);
	if (err == STORE_OK)
		CHECK(!memcmp(info.id.b, want.b, STORE_ID_BYTES));
	return err;
}

enum store_err st_fill(struct store *s, const struct store_id *sid,
		       const struct store_id *mod, uint64_t off, int c,
		       size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	enum store_err err;

	if (!buf)
		return STORE_ENOMEM;
	memset(buf, c, len);
	err = store_session_write(s, sid, mod, off, buf, len);
	free(buf);
	return err;
}

enum store_err st_begin(struct store *s, struct store_id *sid)
{
	struct store_session_info info;
	enum store_err err = store_session_begin(s, NULL, &info);

	if (err == STORE_OK)
		*sid = info.id;
	return err;
}

enum store_err st_commit(struct store *s, const struct store_id *sid,
			 struct store_id *commit)
{
	struct store_commit_info ci;
	enum store_err err;

	memset(&ci, 0, sizeof(ci));
	err = store_session_commit(s, sid, NULL, &ci);
	if (err == STORE_OK) {
		if (commit)
			*commit = ci.id;
		store_commit_info_release(&ci);
	}
	return err;
}

struct store_id st_root(struct store *s)
{
	struct store_id r;
	enum store_err err = store_root(s, &r);

	if (err != STORE_OK) {
		st_fail(__FILE__, __LINE__, "store_root = %d", err);
		memset(&r, 0, sizeof(r));
	}
	return r;
}

unsigned char *st_session_mem(struct store *s, const struct store_id *sid,
			      const struct store_id *mod, size_t *len)
{
	uint64_t size = 0;
	unsigned char *buf;

	*len = 0;
	if (store_session_size(s, sid, mod, &size) != STORE_OK)
		return NULL;
	buf = malloc(size ? (size_t)size : 1);
	if (!buf)
		return NULL;
	if (store_session_read(s, sid, mod, 0, buf, (size_t)size) != STORE_OK) {
		free(buf);
		return NULL;
	}
	*len = (size_t)size;
	return buf;
}

void st_pattern(unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(i % 251);
}
