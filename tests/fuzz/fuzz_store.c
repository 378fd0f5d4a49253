/*
 * fuzz_store.c - sequences of store operations against an in-memory model.
 *
 * Each input is a little program: one byte picks an operation, the next
 * bytes its arguments (see the op_* functions; a missing byte reads as 0).
 * Every input gets a fresh store in a new directory under /dev/shm (tmpfs:
 * fsync is cheap), removed afterwards. Four fixed bytecodes give the
 * modules; the maximum module size is MAX_PAGES pages and at most
 * MAX_SESSIONS sessions may be open; the sessions' memory is 1 to 6 pages
 * (by the input's length), so overlays move from memory to files on the
 * way. A maximum module size that is not page-aligned or past
 * STORE_MAX_MODULE_LIMIT must be refused first.
 *
 * The model keeps every memory image as bytes and derives each id the way
 * a client would, with store_memory_id() and store_state_id(): a session
 * sees its base plus its own writes; a write past the end grows the memory
 * zero-filled to whole pages; a commit is base + writes for every module
 * deployed at that moment (a module unknown to the base starts from zeros
 * of its deployed size); restore puts every module of the commit back to
 * its module commit and every other one to its initial zeros; the commits
 * store lives in memory until persist, and after a reopen it is what was
 * last persisted, while the current state survives. The state directory
 * is checked too: exactly the names of the layout in store.h, each file
 * with the right bytes (.MOD_bytecode exactly for a module deployed by
 * its code at least once), and a descriptor from store_module_open() reading
 * the same memory whatever happens after. Any disagreement, on a result
 * code, an id, a size, a file or a single byte, is an abort() with a
 * message, which libFuzzer reports as a crash.
 *
 * FUZZ_TRACE=1 in the environment prints every operation to stderr, which
 * is how a crash file is read back as a story.
 */
#include "fuzz_dir.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE	     STORE_PAGE_SIZE
#define MAX_PAGES    11 /* not a power of two: odd Merkle shapes too */
#define MAX_SIZE     (MAX_PAGES * PAGE)
#define NMOD	     4
#define MAX_SESSIONS 4
#define NSLOT	     16	 /* sessions remembered per input, dead or alive */
#define MAX_OPS	     128 /* operations per input */
#define BUF_SIZE     (MAX_SIZE + 2 * PAGE)
#define MAX_HELD     4 /* descriptors kept open across operations */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- the model ----------------------------------------------------------- */

/* An immutable memory image, shared by every state holding it. */
struct mem {
	struct store_id mc; /* store_memory_id() of b */
	size_t size;
	unsigned char *b;
};

/* A state: per module its memory, or NULL for no module commit. */
struct pset {
	const struct mem *m[NMOD];
};

struct commit {
	struct store_id id;
	struct pset ps;
};

/* Commits in insertion order, as the store keeps them. */
struct clist {
	struct commit *v;
	size_t n, cap;
};

struct msess {
	int used, alive;
	struct store_id sid;
	int has_base;
	struct store_id base_id;
	struct pset base;
	unsigned char *ov[NMOD]; /* the module's view once written */
	size_t ovsize[NMOD];
};

struct model {
	int deployed[NMOD];
	int has_code[NMOD]; /* .MOD_bytecode: deployed by its code once */
	size_t init_size[NMOD];
	struct pset cur;
	struct clist mem;  /* the commits store of the open store */
	struct clist file; /* what the file `commits` holds */
	int file_exists;
	struct msess sess[NSLOT];
	struct mem **mems; /* every image seen; owned */
	size_t nmems, capmems;
	/* the module commit files MOD_MODCOMMIT: one per commit at most */
	const struct mem *files[NMOD][MAX_OPS + 1];
	size_t nfiles[NMOD];
};

/* A descriptor from store_module_open(): its bytes must never change. */
struct held {
	int fd;
	int mod;
	const struct mem *x;
};

struct fz {
	const uint8_t *p;
	size_t n;
	struct store *s;
	struct store_options opts;
	char dir[128];
	unsigned int step; /* operation number, for messages */
	struct model m;
	struct held held[MAX_HELD];
	size_t nheld;
};

/* Read-only after LLVMFuzzerInitialize(). */
static const char *const codes[NMOD] = {
    "(module $a (memory 1))",
    "(module $b (memory 2) (func $f))",
    "\x00\x61\x73\x6d\x01\x00\x00\x00 binary, NUL bytes and all",
    "(module $d)",
};
static size_t code_len[NMOD];
static struct store_id mod_id[NMOD];
static int order[NMOD]; /* module indices by ascending id */
static const char *base_dir;
static int trace;
static unsigned long counter;

/* Scratch buffers, too big for the stack. */
static unsigned char zeros[BUF_SIZE];
static unsigned char wbuf[BUF_SIZE];
static unsigned char rbuf[BUF_SIZE];

static void die(const struct fz *f, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_store: op %u: ", f->step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static void say(const char *fmt, ...)
{
	va_list ap;

	if (!trace)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static const char *hex8(const struct store_id *id, char out[9])
{
	char hex[STORE_HEX_LEN + 1];

	store_id_hex(id, hex);
	memcpy(out, hex, 8);
	out[8] = '\0';
	return out;
}

static void expect_err(const struct fz *f, const char *what, enum store_err got,
		       enum store_err want)
{
	say("  %s: %s\n", what, store_errname(got));
	if (got != want)
		die(f, "%s: got %s, want %s", what, store_errname(got),
		    store_errname(want));
}

static void expect_id(const struct fz *f, const char *what,
		      const struct store_id *got, const struct store_id *want)
{
	char a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1];

	if (store_id_equal(got, want))
		return;
	store_id_hex(got, a);
	store_id_hex(want, b);
	die(f, "%s: got %s, want %s", what, a, b);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p) {
		fputs("fuzz_store: out of memory\n", stderr);
		abort();
	}
	return p;
}

/* The image of these bytes, from the table or added to it. */
static const struct mem *mem_get(struct fz *f, const unsigned char *b,
				 size_t size)
{
	struct model *m = &f->m;
	struct store_id mc;
	struct mem *x;
	size_t i;

	store_memory_id(b, size, &mc);
	for (i = 0; i < m->nmems; i++) {
		x = m->mems[i];
		if (!store_id_equal(&x->mc, &mc))
			continue;
		if (x->size != size || memcmp(x->b, b, size))
			die(f, "two memories with one id");
		return x;
	}
	if (m->nmems == m->capmems) {
		size_t cap = m->capmems ? m->capmems * 2 : 16;
		struct mem **v = realloc(m->mems, cap * sizeof(*v));

		if (!v)
			die(f, "out of memory");
		m->mems = v;
		m->capmems = cap;
	}
	x = xcalloc(1, sizeof(*x));
	x->mc = mc;
	x->size = size;
	x->b = xcalloc(size, 1);
	memcpy(x->b, b, size);
	m->mems[m->nmems++] = x;
	return x;
}

static const struct mem *mem_zero(struct fz *f, size_t size)
{
	return mem_get(f, zeros, size);
}

/* The current memory of deployed module i. */
static const struct mem *cur_mem(struct fz *f, int i)
{
	return f->m.cur.m[i] ? f->m.cur.m[i] : mem_zero(f, f->m.init_size[i]);
}

/* Pairs of a state sorted by module id; returns their number. */
static size_t pset_pairs(const struct pset *ps, struct store_pair *pairs)
{
	size_t n = 0;
	int k, i;

	for (k = 0; k < NMOD; k++) {
		i = order[k];
		if (!ps->m[i])
			continue;
		pairs[n].module = mod_id[i];
		pairs[n].commit = ps->m[i]->mc;
		n++;
	}
	return n;
}

static void pset_id(const struct fz *f, const struct pset *ps,
		    struct store_id *out)
{
	struct store_pair pairs[NMOD];
	size_t n = pset_pairs(ps, pairs);

	if (store_state_id(pairs, n, out) != STORE_OK)
		die(f, "store_state_id failed");
}

static int pset_empty(const struct pset *ps)
{
	int i;

	for (i = 0; i < NMOD; i++)
		if (ps->m[i])
			return 0;
	return 1;
}

static void model_root(const struct fz *f, struct store_id *out)
{
	pset_id(f, &f->m.cur, out);
}

static const struct commit *clist_find(const struct clist *cl,
				       const struct store_id *id)
{
	size_t i;

	for (i = 0; i < cl->n; i++)
		if (store_id_equal(&cl->v[i].id, id))
			return &cl->v[i];
	return NULL;
}

/* Append unless already there, as the store's commits_add() does. */
static void clist_add(struct fz *f, struct clist *cl, const struct commit *c)
{
	if (clist_find(cl, &c->id))
		return;
	if (cl->n == cl->cap) {
		size_t cap = cl->cap ? cl->cap * 2 : 16;
		struct commit *v = realloc(cl->v, cap * sizeof(*v));

		if (!v)
			die(f, "out of memory");
		cl->v = v;
		cl->cap = cap;
	}
	cl->v[cl->n++] = *c;
}

static void clist_copy(struct fz *f, struct clist *to, const struct clist *from)
{
	size_t i;

	to->n = 0;
	for (i = 0; i < from->n; i++)
		clist_add(f, to, &from->v[i]);
}

/* Module i now has the file of module commit x. */
static void files_add(struct fz *f, int i, const struct mem *x)
{
	size_t k;

	for (k = 0; k < f->m.nfiles[i]; k++)
		if (f->m.files[i][k] == x)
			return;
	if (f->m.nfiles[i] > MAX_OPS)
		die(f, "more module commits than commits");
	f->m.files[i][f->m.nfiles[i]++] = x;
}

static void sess_clear(struct msess *se)
{
	int i;

	for (i = 0; i < NMOD; i++) {
		free(se->ov[i]);
		se->ov[i] = NULL;
		se->ovsize[i] = 0;
	}
	se->alive = 0;
}

static void model_release(struct model *m)
{
	size_t i;

	for (i = 0; i < NSLOT; i++)
		sess_clear(&m->sess[i]);
	for (i = 0; i < m->nmems; i++) {
		free(m->mems[i]->b);
		free(m->mems[i]);
	}
	free(m->mems);
	free(m->mem.v);
	free(m->file.v);
	memset(m, 0, sizeof(*m));
}

/* The session's view of deployed module i. */
static void view(struct fz *f, struct msess *se, int i, const unsigned char **b,
		 size_t *size)
{
	const struct mem *x;

	if (se->ov[i]) {
		*b = se->ov[i];
		*size = se->ovsize[i];
		return;
	}
	x = se->base.m[i] ? se->base.m[i] : mem_zero(f, f->m.init_size[i]);
	*b = x->b;
	*size = x->size;
}

static size_t nalive(const struct fz *f)
{
	size_t i, n = 0;

	for (i = 0; i < NSLOT; i++)
		n += f->m.sess[i].alive;
	return n;
}

/* --- decoding the input -------------------------------------------------- */

static unsigned int u8(struct fz *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

static unsigned int u16(struct fz *f)
{
	unsigned int lo = u8(f);

	return lo | u8(f) << 8;
}

/* A session: one the model knows (maybe dead) or an id never handed out. */
static struct msess *pick_session(struct fz *f, struct store_id *sid)
{
	unsigned int b = u8(f), nused = 0, idx, i;

	for (i = 0; i < NSLOT; i++)
		nused += f->m.sess[i].used;
	idx = b % (nused + 1);
	for (i = 0; i < NSLOT; i++) {
		if (!f->m.sess[i].used)
			continue;
		if (idx-- == 0) {
			*sid = f->m.sess[i].sid;
			return &f->m.sess[i];
		}
	}
	/* session ids are 32 random bytes: this one is nobody's */
	memset(sid, 0, sizeof(*sid));
	sid->b[0] = (unsigned char)b;
	sid->b[31] = 0x5a;
	return NULL;
}

static uint64_t pick_off(struct fz *f)
{
	unsigned int b = u8(f);

	switch (b % 8) {
	case 5: /* a page boundary, up to two pages past the maximum */
		return (uint64_t)(u8(f) % (MAX_PAGES + 3)) * PAGE;
	case 6: /* just below the maximum */
		return MAX_SIZE - 1 - u8(f) % 64;
	case 7: /* overflows off + len */
		return UINT64_MAX - u8(f);
	default:
		return u16(f) % (MAX_SIZE + 2 * PAGE);
	}
}

static size_t pick_len(struct fz *f)
{
	unsigned int b = u8(f);

	switch (b % 4) {
	case 0:
		return u8(f) % 17;
	case 1:
		return (size_t)u16(f) % (MAX_SIZE + PAGE + 1);
	case 2: /* whole pages, maybe one more than the maximum */
		return (size_t)(u8(f) % (MAX_PAGES + 2)) * PAGE;
	default:
		return u8(f);
	}
}

/* Fill wbuf with len bytes v, v + step, ... (all zeros when both are 0). */
static void fill(struct fz *f, size_t len)
{
	unsigned int v = u8(f), step = u8(f);
	size_t i;

	for (i = 0; i < len; i++)
		wbuf[i] = (unsigned char)(v + i * step);
}

/* --- checks of the whole store ------------------------------------------- */

static void check_info(const struct fz *f, const char *what,
		       const struct store_module_info *info, int i,
		       const struct mem *x)
{
	const struct mem *c = f->m.cur.m[i];

	expect_id(f, what, &info->id, &mod_id[i]);
	if (info->size != x->size)
		die(f, "%s: module %d size %llu, want %zu", what, i,
		    (unsigned long long)info->size, x->size);
	if (info->has_commit != (c != NULL))
		die(f, "%s: module %d has_commit %d, want %d", what, i,
		    info->has_commit, c != NULL);
	if (c)
		expect_id(f, what, &info->last_commit, &c->mc);
}

static void check_root(struct fz *f)
{
	struct store_id root, want;

	expect_err(f, "store_root", store_root(f->s, &root), STORE_OK);
	model_root(f, &want);
	expect_id(f, "store_root", &root, &want);
}

/* Read a whole file of the state directory into rbuf; -1 if missing. */
static ssize_t read_name(struct fz *f, int dirfd, const char *name)
{
	ssize_t n, got = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno != ENOENT)
			die(f, "open %s: %s", name, strerror(errno));
		return -1;
	}
	while ((n = read(fd, rbuf + got, sizeof(rbuf) - (size_t)got)) > 0)
		got += n;
	if (n < 0)
		die(f, "read %s: %s", name, strerror(errno));
	close(fd);
	return got;
}

static void check_file(struct fz *f, int dirfd, const char *name,
		       const struct mem *x)
{
	ssize_t n = read_name(f, dirfd, name);

	if (n < 0)
		die(f, "%s: missing", name);
	if ((size_t)n != x->size || memcmp(rbuf, x->b, x->size))
		die(f, "%s: %zd bytes, not the %zu bytes of the model", name, n,
		    x->size);
}

static void check_modules(struct fz *f)
{
	struct store_module_info *list = NULL, info;
	size_t n = 0, k = 0, want = 0;
	enum store_err err;
	ssize_t got;
	int i, j, fd;

	expect_err(f, "store_module_list", store_module_list(f->s, &list, &n),
		   STORE_OK);
	for (j = 0; j < NMOD; j++)
		want += f->m.deployed[j];
	if (n != want)
		die(f, "store_module_list: %zu modules, want %zu", n, want);
	for (j = 0; j < NMOD; j++) {
		i = order[j];
		if (!f->m.deployed[i])
			continue;
		check_info(f, "store_module_list", &list[k++], i,
			   cur_mem(f, i));
	}
	free(list);
	for (i = 0; i < NMOD; i++) {
		err = store_module_get(f->s, &mod_id[i], &info);
		if (!f->m.deployed[i]) {
			expect_err(f, "store_module_get", err, STORE_ENOMODULE);
			err = store_module_open(f->s, &mod_id[i], &fd, &info);
			expect_err(f, "store_module_open", err,
				   STORE_ENOMODULE);
			continue;
		}
		expect_err(f, "store_module_get", err, STORE_OK);
		check_info(f, "store_module_get", &info, i, cur_mem(f, i));
		err = store_module_open(f->s, &mod_id[i], &fd, &info);
		expect_err(f, "store_module_open", err, STORE_OK);
		check_info(f, "store_module_open", &info, i, cur_mem(f, i));
		got = pread(fd, rbuf, sizeof(rbuf), 0);
		close(fd);
		if (got != (ssize_t)info.size ||
		    memcmp(rbuf, cur_mem(f, i)->b, info.size))
			die(f, "store_module_open: module %d: bytes differ", i);
	}
}

struct walk {
	struct fz *f;
	size_t k;
};

static int walk_commit(void *ctx, const struct store_id *id,
		       const struct store_pair *pairs, size_t n)
{
	struct walk *w = ctx;
	struct fz *f = w->f;
	const struct commit *c;
	struct store_pair want[NMOD];
	size_t i, nw;

	if (w->k >= f->m.mem.n)
		die(f, "store_commits_foreach: more than %zu commits",
		    f->m.mem.n);
	c = &f->m.mem.v[w->k++];
	expect_id(f, "store_commits_foreach: id", id, &c->id);
	nw = pset_pairs(&c->ps, want);
	if (n != nw)
		die(f, "store_commits_foreach: %zu pairs, want %zu", n, nw);
	for (i = 0; i < n; i++) {
		expect_id(f, "store_commits_foreach: module", &pairs[i].module,
			  &want[i].module);
		expect_id(f, "store_commits_foreach: commit", &pairs[i].commit,
			  &want[i].commit);
	}
	return 0;
}

static void check_commits(struct fz *f)
{
	struct walk w = {f, 0};
	struct store_pair *pairs = NULL, want[NMOD];
	struct store_id unknown;
	size_t n, nw, i, k;

	n = store_commits_count(f->s);
	if (n != f->m.mem.n)
		die(f, "store_commits_count: %zu, want %zu", n, f->m.mem.n);
	expect_err(f, "store_commits_foreach",
		   store_commits_foreach(f->s, walk_commit, &w), STORE_OK);
	if (w.k != f->m.mem.n)
		die(f, "store_commits_foreach: %zu commits, want %zu", w.k,
		    f->m.mem.n);
	for (k = 0; k < f->m.mem.n; k++) {
		const struct commit *c = &f->m.mem.v[k];

		expect_err(f, "store_commit_get",
			   store_commit_get(f->s, &c->id, &pairs, &n),
			   STORE_OK);
		nw = pset_pairs(&c->ps, want);
		if (n != nw)
			die(f, "store_commit_get: %zu pairs, want %zu", n, nw);
		for (i = 0; i < n; i++) {
			expect_id(f, "store_commit_get: module",
				  &pairs[i].module, &want[i].module);
			expect_id(f, "store_commit_get: commit",
				  &pairs[i].commit, &want[i].commit);
		}
		free(pairs);
		pairs = NULL;
	}
	store_module_id("no such commit", 14, &unknown);
	expect_err(f, "store_commit_get of an unknown id",
		   store_commit_get(f->s, &unknown, &pairs, &n),
		   STORE_ENOCOMMIT);
	free(pairs);
}

static void check_sessions(struct fz *f)
{
	struct store_session_info *v = NULL;
	size_t n = 0, i, k = 0;

	expect_err(f, "store_session_list", store_session_list(f->s, &v, &n),
		   STORE_OK);
	if (n != nalive(f))
		die(f, "store_session_list: %zu sessions, want %zu", n,
		    nalive(f));
	/* the model's slots are not in age order: look each one up */
	for (i = 0; i < NSLOT; i++) {
		const struct msess *se = &f->m.sess[i];

		if (!se->alive)
			continue;
		for (k = 0; k < n; k++)
			if (store_id_equal(&v[k].id, &se->sid))
				break;
		if (k == n)
			die(f, "store_session_list: session %zu missing", i);
		if (v[k].has_base != se->has_base)
			die(f, "store_session_list: has_base %d, want %d",
			    v[k].has_base, se->has_base);
		if (se->has_base)
			expect_id(f, "store_session_list: base", &v[k].base,
				  &se->base_id);
	}
	free(v);
}

/* Whether name belongs in the state directory now (store.h, "Layout"). */
static int expected_name(const struct fz *f, const char *name)
{
	char hex[STORE_HEX_LEN + 1], mc[STORE_HEX_LEN + 1];
	const char *rest;
	size_t k;
	int i;

	if (!strcmp(name, ".") || !strcmp(name, "..") ||
	    !strcmp(name, ".lock") || !strcmp(name, ".journal") ||
	    !strcmp(name, ".journal.1"))
		return 1;
	if (!strcmp(name, "commits"))
		return f->m.file_exists;
	for (i = 0; i < NMOD; i++) {
		if (!f->m.deployed[i])
			continue;
		store_id_hex(&mod_id[i], hex);
		if (name[0] == '.' && !strncmp(name + 1, hex, STORE_HEX_LEN) &&
		    !strcmp(name + 1 + STORE_HEX_LEN, "_init"))
			return 1;
		if (name[0] == '.' && !strncmp(name + 1, hex, STORE_HEX_LEN) &&
		    !strcmp(name + 1 + STORE_HEX_LEN, "_bytecode"))
			return f->m.has_code[i];
		if (strncmp(name, hex, STORE_HEX_LEN))
			continue;
		rest = name + STORE_HEX_LEN;
		if (!*rest)
			return 1;
		if (!strcmp(rest, "_last") || !strcmp(rest, "_last_id"))
			return f->m.cur.m[i] != NULL;
		if (*rest++ != '_')
			return 0;
		for (k = 0; k < f->m.nfiles[i]; k++) {
			store_id_hex(&f->m.files[i][k]->mc, mc);
			if (!strcmp(rest, mc))
				return 1;
		}
		return 0;
	}
	return 0;
}

/*
 * The files of the layout in store.h: MOD is the current memory; MOD_last
 * and MOD_last_id ("MODCOMMIT\n") exist exactly when the module has a
 * module commit; every module commit made has its file (of the right
 * size), and no other file is there: no temporary, no second file for a
 * memory committed before.
 */
static void check_disk(struct fz *f)
{
	char hex[STORE_HEX_LEN + 1], mc[STORE_HEX_LEN + 1], name[200];
	struct dirent *de;
	struct stat sb;
	size_t k;
	ssize_t n;
	DIR *d;
	int i, dirfd;

	dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		die(f, "open %s: %s", f->dir, strerror(errno));
	for (i = 0; i < NMOD; i++) {
		const struct mem *c = f->m.cur.m[i];

		if (!f->m.deployed[i])
			continue;
		store_id_hex(&mod_id[i], hex);
		check_file(f, dirfd, hex, cur_mem(f, i));
		snprintf(name, sizeof(name), ".%s_bytecode", hex);
		n = read_name(f, dirfd, name);
		if (f->m.has_code[i] && (n != (ssize_t)code_len[i] ||
					 memcmp(rbuf, codes[i], code_len[i])))
			die(f, "%s does not hold the module's bytecode", name);
		snprintf(name, sizeof(name), "%s_last", hex);
		if (c) {
			check_file(f, dirfd, name, c);
		} else if (read_name(f, dirfd, name) >= 0) {
			die(f, "%s exists without a module commit", name);
		}
		snprintf(name, sizeof(name), "%s_last_id", hex);
		n = read_name(f, dirfd, name);
		if (!c) {
			if (n >= 0)
				die(f, "%s exists without a module commit",
				    name);
			continue;
		}
		store_id_hex(&c->mc, mc);
		if (n != STORE_HEX_LEN + 1 || memcmp(rbuf, mc, STORE_HEX_LEN) ||
		    rbuf[STORE_HEX_LEN] != '\n')
			die(f, "%s does not hold %s", name, mc);
	}
	for (i = 0; i < NMOD; i++) {
		for (k = 0; k < f->m.nfiles[i]; k++) {
			const struct mem *x = f->m.files[i][k];

			store_id_hex(&mod_id[i], hex);
			store_id_hex(&x->mc, mc);
			snprintf(name, sizeof(name), "%s_%s", hex, mc);
			if (fstatat(dirfd, name, &sb, 0) < 0)
				die(f, "commit file %s: %s", name,
				    strerror(errno));
			if ((size_t)sb.st_size != x->size)
				die(f, "commit file %s: %lld bytes, want %zu",
				    name, (long long)sb.st_size, x->size);
		}
	}
	d = fdopendir(dirfd);
	if (!d)
		die(f, "fdopendir: %s", strerror(errno));
	while ((de = readdir(d)))
		if (!expected_name(f, de->d_name))
			die(f, "%s in the state directory: %s", de->d_name,
			    strncmp(de->d_name, ".tmp-", 5)
				? "not a name of the layout"
				: "a temporary left behind");
	closedir(d);
}

/* Every descriptor held still reads the memory it was opened on. */
static void check_held(struct fz *f)
{
	struct stat sb;
	ssize_t got;
	size_t k;

	for (k = 0; k < f->nheld; k++) {
		const struct held *h = &f->held[k];

		if (fstat(h->fd, &sb) < 0)
			die(f, "fstat: %s", strerror(errno));
		got = pread(h->fd, rbuf, sizeof(rbuf), 0);
		if ((size_t)sb.st_size != h->x->size ||
		    got != (ssize_t)h->x->size ||
		    memcmp(rbuf, h->x->b, h->x->size))
			die(f,
			    "a descriptor of module %d opened earlier "
			    "no longer reads the same memory",
			    h->mod);
	}
}

static void check_all(struct fz *f)
{
	check_root(f);
	check_modules(f);
	check_commits(f);
	check_sessions(f);
	check_disk(f);
	check_held(f);
}

/* --- operations ---------------------------------------------------------- */

static const uint64_t deploy_sizes[8] = {
    PAGE, 2 * PAGE, 3 * PAGE, 4 * PAGE, 0, 100, MAX_SIZE + PAGE, MAX_SIZE,
};

/* Byte: module (2 bits), size (3 bits), how (3 bits: 6 by id, 7 no code). */
static void op_deploy(struct fz *f)
{
	unsigned int b = u8(f), how = b >> 5;
	int i = (int)(b & 3), created = -1;
	uint64_t size = deploy_sizes[(b >> 2) & 7];
	struct store_module_info info;
	enum store_err err, want;

	say("deploy module %d size %llu how %u\n", i, (unsigned long long)size,
	    how);
	if (how == 7) {
		err = store_deploy(f->s, codes[i], 0, size, &info, &created);
		expect_err(f, "store_deploy of no bytecode", err, STORE_EINVAL);
		return;
	}
	if (how == 6)
		err = store_deploy_id(f->s, &mod_id[i], size, &info, &created);
	else
		err = store_deploy(f->s, codes[i], code_len[i], size, &info,
				   &created);
	if (f->m.deployed[i])
		want = STORE_OK;
	else if (size == 0 || size % PAGE)
		want = STORE_EINVAL;
	else if (size > MAX_SIZE)
		want = STORE_ETOOBIG;
	else
		want = STORE_OK;
	expect_err(f, "store_deploy", err, want);
	if (err) {
		if (created != 0)
			die(f, "store_deploy failed with created %d", created);
		return;
	}
	if (created != !f->m.deployed[i])
		die(f, "store_deploy: created %d, module was %s", created,
		    f->m.deployed[i] ? "deployed" : "new");
	if (!f->m.deployed[i]) {
		f->m.deployed[i] = 1;
		f->m.init_size[i] = (size_t)size;
	}
	if (how != 6)
		f->m.has_code[i] = 1; /* kept, or there already */
	check_info(f, "store_deploy", &info, i, cur_mem(f, i));
}

/* Bytes: kind (current, known commit, current root, unknown), index. */
static void op_begin(struct fz *f)
{
	unsigned int kind = u8(f) % 4, c = u8(f);
	struct store_session_info info;
	struct store_id id, *base = NULL;
	const struct commit *cm = NULL;
	struct msess *se = NULL;
	enum store_err err, want = STORE_OK;
	unsigned char cb = (unsigned char)c;
	char h[9];
	size_t i;

	if (kind == 1 && f->m.mem.n) {
		id = f->m.mem.v[c % f->m.mem.n].id;
		base = &id;
	} else if (kind == 2) {
		model_root(f, &id);
		base = &id;
	} else if (kind == 3) {
		store_module_id(&cb, 1, &id); /* no commit has this id */
		base = &id;
	}
	if (base) {
		cm = clist_find(&f->m.mem, base);
		if (!cm)
			want = STORE_ENOCOMMIT;
	}
	if (nalive(f) >= MAX_SESSIONS)
		want = STORE_EBUSY; /* checked before the base */
	say("begin base %s\n", base ? hex8(base, h) : "current");
	err = store_session_begin(f->s, base, &info);
	expect_err(f, "store_session_begin", err, want);
	if (err)
		return;
	/* a free slot, or the first dead one, forgotten */
	for (i = 0; i < NSLOT && !se; i++)
		if (!f->m.sess[i].used)
			se = &f->m.sess[i];
	for (i = 0; i < NSLOT && !se; i++)
		if (!f->m.sess[i].alive)
			se = &f->m.sess[i];
	if (!se)
		die(f, "more than %d sessions alive", NSLOT);
	for (i = 0; i < NSLOT; i++)
		if (f->m.sess[i].used &&
		    store_id_equal(&f->m.sess[i].sid, &info.id))
			die(f, "store_session_begin: a session id twice");
	sess_clear(se);
	se->used = se->alive = 1;
	se->sid = info.id;
	se->base = cm ? cm->ps : f->m.cur;
	se->has_base = !pset_empty(&se->base);
	pset_id(f, &se->base, &se->base_id);
	if (info.has_base != se->has_base)
		die(f, "store_session_begin: has_base %d, want %d",
		    info.has_base, se->has_base);
	if (se->has_base)
		expect_id(f, "store_session_begin: base", &info.base,
			  &se->base_id);
	say("  -> session %s\n", hex8(&se->sid, h));
}

/* Bytes: session, module, offset, length, fill value, fill step. */
static void op_write(struct fz *f)
{
	struct store_id sid;
	struct msess *se = pick_session(f, &sid);
	int i = (int)(u8(f) % NMOD);
	uint64_t off = pick_off(f), end;
	size_t len = pick_len(f), size;
	const unsigned char *cur;
	enum store_err err, want;
	char h[9];

	fill(f, len);
	say("write session %s module %d off %llu len %zu\n", hex8(&sid, h), i,
	    (unsigned long long)off, len);
	err = store_session_write(f->s, &sid, &mod_id[i], off, wbuf, len);
	if (!se || !se->alive)
		want = STORE_ENOSESSION;
	else if (!f->m.deployed[i])
		want = STORE_ENOMODULE;
	else if (len == 0)
		want = STORE_OK;
	else if (off > MAX_SIZE || len > MAX_SIZE - off)
		want = STORE_ETOOBIG;
	else
		want = STORE_OK;
	expect_err(f, "store_session_write", err, want);
	if (err || len == 0)
		return;
	if (!se->ov[i]) {
		view(f, se, i, &cur, &size);
		se->ov[i] = xcalloc(MAX_SIZE, 1);
		memcpy(se->ov[i], cur, size);
		se->ovsize[i] = size;
	}
	/* past the end: zero-filled (the buffer is) to whole pages */
	end = (off + len + PAGE - 1) / PAGE * PAGE;
	if (end > se->ovsize[i])
		se->ovsize[i] = (size_t)end;
	memcpy(se->ov[i] + off, wbuf, len);
}

/* Bytes: session, module, offset, length. */
static void op_read(struct fz *f)
{
	struct store_id sid;
	struct msess *se = pick_session(f, &sid);
	int i = (int)(u8(f) % NMOD);
	uint64_t off = pick_off(f), got_size = 0;
	size_t len = pick_len(f), size = 0, k;
	const unsigned char *cur = NULL;
	enum store_err err, want;
	char h[9];

	say("read session %s module %d off %llu len %zu\n", hex8(&sid, h), i,
	    (unsigned long long)off, len);
	if (!se || !se->alive)
		want = STORE_ENOSESSION;
	else if (!f->m.deployed[i])
		want = STORE_ENOMODULE;
	else
		want = STORE_OK;
	err = store_session_size(f->s, &sid, &mod_id[i], &got_size);
	expect_err(f, "store_session_size", err, want);
	if (!err) {
		view(f, se, i, &cur, &size);
		if (got_size != size)
			die(f, "store_session_size: %llu, want %zu",
			    (unsigned long long)got_size, size);
		if (off > size || len > size - off)
			want = STORE_ERANGE;
	}
	memset(rbuf, 0xee, len);
	err = store_session_read(f->s, &sid, &mod_id[i], off, rbuf, len);
	expect_err(f, "store_session_read", err, want);
	if (err)
		return;
	for (k = 0; k < len; k++)
		if (rbuf[k] != cur[off + k])
			die(f,
			    "store_session_read: module %d byte %llu is %u, "
			    "want %u",
			    i, (unsigned long long)(off + k), rbuf[k],
			    cur[off + k]);
}

/* Bytes: session, expected root (none, right, wrong, a commit), index. */
static void op_commit(struct fz *f)
{
	struct store_id sid, expect, root;
	struct msess *se = pick_session(f, &sid);
	unsigned int sel = u8(f) % 4, c = u8(f);
	struct store_id *exp = NULL;
	struct store_commit_info ci;
	struct store_pair want[NMOD];
	struct commit nc;
	const unsigned char *b;
	size_t size, n, k;
	enum store_err err, wanterr;
	char h[9], h2[9];
	int i;

	model_root(f, &root);
	if (sel == 1) {
		expect = root;
		exp = &expect;
	} else if (sel == 2) {
		expect = root;
		expect.b[c % STORE_ID_BYTES] ^= (unsigned char)(1 << (c % 8));
		exp = &expect;
	} else if (sel == 3 && f->m.mem.n) {
		expect = f->m.mem.v[c % f->m.mem.n].id;
		exp = &expect;
	}
	say("commit session %s expect %s\n", hex8(&sid, h),
	    exp ? hex8(exp, h2) : "-");
	err = store_session_commit(f->s, &sid, exp, &ci);
	if (!se || !se->alive)
		wanterr = STORE_ENOSESSION;
	else if (exp && !store_id_equal(exp, &root))
		wanterr = STORE_EMISMATCH; /* and the session stays */
	else
		wanterr = STORE_OK;
	expect_err(f, "store_session_commit", err, wanterr);
	if (err)
		return;
	/* base + writes for every module deployed now */
	memset(&nc, 0, sizeof(nc));
	for (i = 0; i < NMOD; i++) {
		if (!f->m.deployed[i])
			continue;
		view(f, se, i, &b, &size);
		nc.ps.m[i] = mem_get(f, b, size);
	}
	pset_id(f, &nc.ps, &nc.id);
	expect_id(f, "store_session_commit: id", &ci.id, &nc.id);
	if (ci.has_base != se->has_base)
		die(f, "store_session_commit: has_base %d, want %d",
		    ci.has_base, se->has_base);
	if (se->has_base)
		expect_id(f, "store_session_commit: base", &ci.base,
			  &se->base_id);
	n = pset_pairs(&nc.ps, want);
	if (ci.n != n)
		die(f, "store_session_commit: %zu modules, want %zu", ci.n, n);
	for (k = 0; k < n; k++) {
		expect_id(f, "store_session_commit: module",
			  &ci.pairs[k].module, &want[k].module);
		expect_id(f, "store_session_commit: module commit",
			  &ci.pairs[k].commit, &want[k].commit);
	}
	store_commit_info_release(&ci);
	say("  -> commit %s\n", hex8(&nc.id, h));
	f->m.cur = nc.ps;
	clist_add(f, &f->m.mem, &nc);
	for (i = 0; i < NMOD; i++)
		if (nc.ps.m[i])
			files_add(f, i, nc.ps.m[i]);
	sess_clear(se); /* one commit per session */
}

/* Bytes: session. */
static void op_drop(struct fz *f)
{
	struct store_id sid;
	struct msess *se = pick_session(f, &sid);
	char h[9];

	say("drop session %s\n", hex8(&sid, h));
	expect_err(f, "store_session_drop", store_session_drop(f->s, &sid),
		   se && se->alive ? STORE_OK : STORE_ENOSESSION);
	if (se)
		sess_clear(se);
}

/* Byte: odd expires every session (idle for >= 0 s), even none. */
static void op_expire(struct fz *f)
{
	int all = (int)(u8(f) & 1), i;
	size_t dropped = 99, want = all ? nalive(f) : 0;

	say("expire %s\n", all ? "all" : "none");
	expect_err(f, "store_session_expire",
		   store_session_expire(f->s, all ? 0 : UINT_MAX, &dropped),
		   STORE_OK);
	if (dropped != want)
		die(f, "store_session_expire: %zu dropped, want %zu", dropped,
		    want);
	if (all)
		for (i = 0; i < NSLOT; i++)
			sess_clear(&f->m.sess[i]);
}

/* Byte: module. Keep a descriptor on its current memory (at most 4). */
static void op_hold(struct fz *f)
{
	int i = (int)(u8(f) % NMOD), fd = -1;
	struct store_module_info info;
	enum store_err err;

	say("hold module %d\n", i);
	err = store_module_open(f->s, &mod_id[i], &fd, &info);
	expect_err(f, "store_module_open", err,
		   f->m.deployed[i] ? STORE_OK : STORE_ENOMODULE);
	if (err)
		return;
	check_info(f, "store_module_open", &info, i, cur_mem(f, i));
	if (f->nheld == MAX_HELD) {
		close(f->held[0].fd);
		memmove(&f->held[0], &f->held[1],
			(MAX_HELD - 1) * sizeof(f->held[0]));
		f->nheld--;
	}
	f->held[f->nheld].fd = fd;
	f->held[f->nheld].mod = i;
	f->held[f->nheld].x = cur_mem(f, i);
	f->nheld++;
	check_held(f);
}

/* Bytes: which (in memory, in the file, unknown, current root), index. */
static void op_restore(struct fz *f)
{
	unsigned int sel = u8(f) % 4, c = u8(f);
	const struct commit *cm;
	unsigned char cb = (unsigned char)c;
	struct store_stats st0, st1;
	struct store_id id;
	enum store_err err;
	char h[9];
	size_t k;

	if (sel == 0 && f->m.mem.n)
		id = f->m.mem.v[c % f->m.mem.n].id;
	else if (sel == 1 && f->m.file.n)
		id = f->m.file.v[c % f->m.file.n].id;
	else if (sel == 3)
		model_root(f, &id);
	else
		store_module_id(&cb, 1, &id);
	say("restore %s\n", hex8(&id, h));
	expect_err(f, "store_get_stats", store_get_stats(f->s, &st0), STORE_OK);
	err = store_restore(f->s, &id);
	expect_err(f, "store_get_stats", store_get_stats(f->s, &st1), STORE_OK);
	if (st1.bytes_written != st0.bytes_written)
		die(f, "store_restore wrote %llu bytes of module memory",
		    (unsigned long long)(st1.bytes_written -
					 st0.bytes_written));
	cm = clist_find(&f->m.mem, &id);
	if (!cm && f->m.file_exists) {
		/* unknown in memory: the file is merged in first */
		for (k = 0; k < f->m.file.n; k++)
			clist_add(f, &f->m.mem, &f->m.file.v[k]);
		cm = clist_find(&f->m.mem, &id);
	}
	expect_err(f, "store_restore", err, cm ? STORE_OK : STORE_ENOCOMMIT);
	if (err)
		return;
	f->m.cur = cm->ps;
	check_root(f);
}

static void op_persist(struct fz *f)
{
	say("persist\n");
	expect_err(f, "store_persist", store_persist(f->s), STORE_OK);
	clist_copy(f, &f->m.file, &f->m.mem);
	f->m.file_exists = 1;
}

static void op_reopen(struct fz *f)
{
	int i;

	say("reopen\n");
	store_close(f->s);
	f->s = NULL;
	expect_err(f, "store_open", store_open(&f->s, &f->opts), STORE_OK);
	/* sessions vanish; the commits store is the file's */
	for (i = 0; i < NSLOT; i++)
		sess_clear(&f->m.sess[i]);
	f->m.mem.n = 0;
	if (f->m.file_exists)
		clist_copy(f, &f->m.mem, &f->m.file);
}

static void op_check(struct fz *f)
{
	struct store_stats st;
	size_t want = 0;
	int i;

	say("check\n");
	check_all(f);
	expect_err(f, "store_get_stats", store_get_stats(f->s, &st), STORE_OK);
	for (i = 0; i < NMOD; i++)
		want += f->m.deployed[i];
	if (st.modules != want || st.commits != f->m.mem.n ||
	    st.sessions != nalive(f))
		die(f,
		    "store_get_stats: %llu modules, %llu commits, %llu "
		    "sessions",
		    (unsigned long long)st.modules,
		    (unsigned long long)st.commits,
		    (unsigned long long)st.sessions);
}

/* The operation byte, weighted towards writes and reads. */
static void (*const ops[32])(struct fz *) = {
    op_deploy, op_deploy,  op_deploy,  op_begin,   op_begin,  op_begin,
    op_write,  op_write,   op_write,   op_write,   op_write,  op_write,
    op_write,  op_read,	   op_read,    op_read,	   op_read,   op_read,
    op_commit, op_commit,  op_commit,  op_commit,  op_drop,   op_drop,
    op_expire, op_restore, op_restore, op_persist, op_reopen, op_check,
    op_hold,   op_hold,
};

/* --- one input ----------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *e;
	int i, j, k;

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	e = getenv("FUZZ_TRACE");
	trace = e && *e && strcmp(e, "0");
	base_dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	for (i = 0; i < NMOD; i++) {
		/* codes[2] starts with the wasm header and its NUL bytes */
		code_len[i] =
		    i == 2 ? 8 + strlen(codes[i] + 8) : strlen(codes[i]);
		store_module_id(codes[i], code_len[i], &mod_id[i]);
		order[i] = i;
	}
	/* a bubble sort of four */
	for (i = 0; i < NMOD; i++)
		for (j = 0; j + 1 < NMOD - i; j++)
			if (memcmp(mod_id[order[j]].b, mod_id[order[j + 1]].b,
				   STORE_ID_BYTES) > 0) {
				k = order[j];
				order[j] = order[j + 1];
				order[j + 1] = k;
			}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	unsigned int op;

	memset(&f, 0, sizeof(f));
	f.p = data;
	f.n = size;
	snprintf(f.dir, sizeof(f.dir), "%s/modstore-fuzz-%ld-%lu", base_dir,
		 (long)getpid(), counter++);
	f.opts.dir = f.dir;
	f.opts.max_sessions = MAX_SESSIONS;
	/* a maximum not page-aligned, or past the limit, is refused */
	f.opts.max_module_size =
	    size % 2 ? MAX_SIZE + 1 + size % (PAGE - 1)
		     : STORE_MAX_MODULE_LIMIT + PAGE * (1 + size % 7);
	expect_err(&f, "store_open bad maximum", store_open(&f.s, &f.opts),
		   STORE_EINVAL);
	f.opts.max_module_size = MAX_SIZE;
	/* sessions' memory of 1 to 6 pages: overlays move to files often */
	f.opts.max_session_memory = PAGE * (1 + size % 6);
	say("--- %s\n", f.dir);
	expect_err(&f, "store_open", store_open(&f.s, &f.opts), STORE_OK);
	while (f.n > 0 && f.step < MAX_OPS) {
		op = u8(&f) % 32;
		f.step++;
		ops[op](&f);
	}
	/* whatever happened, the store must agree with the model, and again
	 * once reopened */
	f.step++;
	check_all(&f);
	op_reopen(&f);
	check_all(&f);
	store_close(f.s);
	while (f.nheld > 0)
		close(f.held[--f.nheld].fd);
	fuzz_remove_dir("fuzz_store", f.dir);
	model_release(&f.m);
	return 0;
}
