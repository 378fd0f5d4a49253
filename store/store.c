/*
 * store.c - opening a state directory, modules, states, persist, restore.
 * Sessions and commits are in session.c, the switch of names in journal.c.
 */
#include "store.h"
#include "store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *name;
	const char *text;
} errs[STORE_ERR_COUNT] = {
    [STORE_OK] = {"ok", "success"},
    [STORE_EINVAL] = {"invalid_argument", "invalid argument"},
    [STORE_ENOMODULE] = {"module_not_found", "no such module"},
    [STORE_ENOSESSION] = {"session_not_found", "no such session"},
    [STORE_ENOCOMMIT] = {"commit_not_found", "no such commit"},
    [STORE_ETOOBIG] = {"too_large",
		       "memory would exceed the maximum module size"},
    [STORE_ERANGE] = {"range_not_satisfiable", "read past the end of memory"},
    [STORE_EBUSY] = {"too_many_sessions", "too many open sessions"},
    [STORE_EMISMATCH] = {"root_mismatch",
			 "the current root is not the expected one"},
    [STORE_ENOSPC] = {"disk_full", "no space left on the state disk"},
    [STORE_ENOMEM] = {"out_of_memory", "out of memory"},
    [STORE_EIO] = {"io_error", "input/output error on the state directory"},
    [STORE_ECORRUPT] = {"corrupt_state",
			"a file of the state directory is malformed"},
    [STORE_ELOCKED] = {"locked",
		       "the state directory is in use by another process"},
};

const char *store_strerror(enum store_err err)
{
	if ((unsigned)err >= STORE_ERR_COUNT)
		return "unknown error";
	return errs[err].text;
}

const char *store_errname(enum store_err err)
{
	if ((unsigned)err >= STORE_ERR_COUNT)
		return "unknown";
	return errs[err].name;
}

/* --- ids ----------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

enum store_err store_id_parse(struct store_id *out, const char *hex, size_t len)
{
	size_t i;
	int hi, lo;

	if (!hex || len != STORE_HEX_LEN)
		return STORE_EINVAL;
	for (i = 0; i < STORE_ID_BYTES; i++) {
		hi = hexval(hex[2 * i]);
		lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return STORE_EINVAL;
		out->b[i] = (unsigned char)(hi << 4 | lo);
	}
	return STORE_OK;
}

void store_id_hex(const struct store_id *id, char out[STORE_HEX_LEN + 1])
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < STORE_ID_BYTES; i++) {
		out[2 * i] = hex[id->b[i] >> 4];
		out[2 * i + 1] = hex[id->b[i] & 15];
	}
	out[STORE_HEX_LEN] = '\0';
}

int store_id_equal(const struct store_id *a, const struct store_id *b)
{
	return memcmp(a->b, b->b, STORE_ID_BYTES) == 0;
}

void store_module_id(const void *code, size_t len, struct store_id *out)
{
	crypto_generichash(out->b, STORE_ID_BYTES, code, len, NULL, 0);
}

void store_memory_id(const void *mem, size_t len, struct store_id *out)
{
	/*
	 * RFC 6962 MTH streamed over the pages with a stack of perfect
	 * subtrees (no allocation): equal sizes merge as they come, and what
	 * remains folds from the right.
	 */
	struct store_id stack[64];
	size_t size[64], top = 0, n = len / STORE_PAGE_SIZE, i;
	const unsigned char *p = mem;

	if (n == 0) {
		hash_empty(out);
		return;
	}
	for (i = 0; i < n; i++) {
		hash_leaf_page(p + i * STORE_PAGE_SIZE, &stack[top]);
		size[top++] = 1;
		while (top >= 2 && size[top - 1] == size[top - 2]) {
			hash_node(&stack[top - 2], &stack[top - 1],
				  &stack[top - 2]);
			size[top - 2] *= 2;
			top--;
		}
	}
	while (top >= 2) {
		hash_node(&stack[top - 2], &stack[top - 1], &stack[top - 2]);
		top--;
	}
	*out = stack[0];
}

static int pair_cmp(const void *a, const void *b)
{
	const struct store_pair *x = a, *y = b;

	return memcmp(x->module.b, y->module.b, STORE_ID_BYTES);
}

enum store_err store_state_id(const struct store_pair *pairs, size_t n,
			      struct store_id *out)
{
	struct store_pair *sorted = NULL;
	struct store_id *leaves = NULL;
	size_t i;

	if (n == 0) {
		hash_empty(out);
		return STORE_OK;
	}
	sorted = malloc(n * sizeof(*sorted));
	leaves = malloc(n * sizeof(*leaves));
	if (!sorted || !leaves) {
		free(sorted);
		free(leaves);
		return STORE_ENOMEM;
	}
	memcpy(sorted, pairs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), pair_cmp);
	for (i = 0; i < n; i++)
		hash_module_leaf(&sorted[i].module, &sorted[i].commit,
				 &leaves[i]);
	hash_mth(leaves, n, leaves, out);
	free(sorted);
	free(leaves);
	return STORE_OK;
}

/* --- names --------------------------------------------------------------- */

void name_commit(char out[NAME_LEN], const struct module *m,
		 const struct store_id *mc)
{
	char hex[STORE_HEX_LEN + 1];

	store_id_hex(mc, hex);
	snprintf(out, NAME_LEN, "%s_%s", m->hex, hex);
}

void name_suffix(char out[NAME_LEN], const struct module *m, const char *suffix)
{
	snprintf(out, NAME_LEN, "%s%s", m->hex, suffix);
}

void name_init(char out[NAME_LEN], const struct module *m)
{
	snprintf(out, NAME_LEN, ".%s_init", m->hex);
}

/* --- states -------------------------------------------------------------- */

struct state *state_new(size_t n)
{
	struct state *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	atomic_init(&st->refs, 1);
	if (n) {
		st->e = calloc(n, sizeof(*st->e));
		if (!st->e) {
			free(st);
			return NULL;
		}
	}
	st->n = n;
	return st;
}

struct state *state_ref(struct state *st)
{
	if (st)
		atomic_fetch_add(&st->refs, 1);
	return st;
}

void state_unref(struct state *st)
{
	size_t i;

	if (!st || atomic_fetch_sub(&st->refs, 1) != 1)
		return;
	for (i = 0; i < st->n; i++)
		tree_unref(st->e[i].tree);
	free(st->e);
	free(st);
}

static int entry_key_cmp(const void *key, const void *elem)
{
	const struct entry *e = elem;

	return memcmp(key, e->mod->id.b, STORE_ID_BYTES);
}

const struct entry *state_find(const struct state *st,
			       const struct store_id *mod)
{
	if (!st->n)
		return NULL;
	return bsearch(mod->b, st->e, st->n, sizeof(*st->e), entry_key_cmp);
}

enum store_err state_compute_root(struct state *st)
{
	struct store_id *leaves;
	size_t i;

	if (st->n == 0) {
		hash_empty(&st->root);
		return STORE_OK;
	}
	leaves = malloc(st->n * sizeof(*leaves));
	if (!leaves)
		return STORE_ENOMEM;
	for (i = 0; i < st->n; i++)
		hash_module_leaf(&st->e[i].mod->id, &st->e[i].mc, &leaves[i]);
	hash_mth(leaves, st->n, leaves, &st->root);
	free(leaves);
	return STORE_OK;
}

struct state *current_state(struct store *s)
{
	struct state *st;

	pthread_mutex_lock(&s->lock);
	st = state_ref(s->cur);
	pthread_mutex_unlock(&s->lock);
	return st;
}

/* Hash a whole memory file into a new tree of npages pages. */
static enum store_err tree_from_fd(int fd, size_t npages, struct tree **out)
{
	enum { CHUNK = 256 };
	struct tree *t;
	unsigned char *buf;
	size_t i, k, n;
	enum store_err err = STORE_OK;

	*out = NULL;
	t = tree_copy(NULL, npages);
	buf = malloc((size_t)CHUNK * STORE_PAGE_SIZE);
	if (!t || !buf) {
		err = STORE_ENOMEM;
		goto out;
	}
	for (i = 0; i < npages; i += n) {
		n = npages - i < CHUNK ? npages - i : CHUNK;
		err = read_all(fd, buf, n * STORE_PAGE_SIZE,
			       (uint64_t)i * STORE_PAGE_SIZE);
		if (err)
			goto out;
		for (k = 0; k < n; k++)
			hash_leaf_page(buf + k * STORE_PAGE_SIZE,
				       &t->lv[0][i + k]);
	}
	tree_update(t, NULL, 0, 1);
	*out = t;
	t = NULL;
out:
	tree_unref(t);
	free(buf);
	return err;
}

enum store_err entry_tree(struct store *s, struct entry *e, struct tree **out)
{
	char name[NAME_LEN];
	struct tree *t = NULL;
	struct store_id root;
	enum store_err err;
	int fd;

	pthread_mutex_lock(&s->tree_lock);
	*out = tree_ref(e->tree);
	pthread_mutex_unlock(&s->tree_lock);
	if (*out)
		return STORE_OK;
	name_commit(name, e->mod, &e->mc);
	fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_ECORRUPT : err_from_errno(errno);
	err = tree_from_fd(fd, (size_t)(e->size / STORE_PAGE_SIZE), &t);
	close(fd);
	if (err)
		return err;
	tree_root(t, &root);
	if (!store_id_equal(&root, &e->mc)) {
		tree_unref(t); /* the file does not hold what its name says */
		return STORE_ECORRUPT;
	}
	pthread_mutex_lock(&s->tree_lock);
	if (e->tree) {
		tree_unref(t);
		t = e->tree;
	} else {
		e->tree = t;
	}
	*out = tree_ref(t);
	pthread_mutex_unlock(&s->tree_lock);
	return STORE_OK;
}

/* --- modules ------------------------------------------------------------- */

/* Index of id in s->mods, or where it would go (negative-encoded). */
static size_t module_pos(struct store *s, const struct store_id *id, int *found)
{
	size_t lo = 0, hi = s->nmods, mid;
	int c;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(id->b, s->mods[mid]->id.b, STORE_ID_BYTES);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

struct module *module_find(struct store *s, const struct store_id *id)
{
	int found;
	size_t i = module_pos(s, id, &found);

	return found ? s->mods[i] : NULL;
}

/* Insert m (which the table then owns); STORE_EINVAL if id is there. */
static enum store_err module_insert(struct store *s, struct module *m)
{
	int found;
	size_t i = module_pos(s, &m->id, &found);

	if (found)
		return STORE_EINVAL;
	if (s->nmods == s->capmods) {
		size_t cap = s->capmods ? s->capmods * 2 : 64;
		struct module **v = realloc(s->mods, cap * sizeof(*v));

		if (!v)
			return STORE_ENOMEM;
		s->mods = v;
		s->capmods = cap;
	}
	memmove(&s->mods[i + 1], &s->mods[i],
		(s->nmods - i) * sizeof(*s->mods));
	s->mods[i] = m;
	s->nmods++;
	return STORE_OK;
}

static struct module *module_new(const struct store_id *id, uint64_t size)
{
	struct module *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->id = *id;
	store_id_hex(id, m->hex);
	m->init_size = size;
	return m;
}

static void module_info(const struct module *m, const struct entry *e,
			struct store_module_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = m->id;
	info->size = e ? e->size : m->init_size;
	info->has_commit = e != NULL;
	if (e)
		info->last_commit = e->mc;
}

/* A sparse all-zero file of size bytes, fsynced, renamed to name. */
static enum store_err make_zero_file(struct store *s, const char *name,
				     uint64_t size)
{
	char tmp[TMP_NAME_LEN];
	enum store_err err;
	int fd = -1, e;

	err = tmp_create(s, tmp, &fd);
	if (err)
		return err;
	if ((e = fault_at(s, "deploy.truncate")) ||
	    ftruncate(fd, (off_t)size) < 0) {
		err = err_from_errno(e ? e : errno);
		goto fail;
	}
	err = fsync_fd(s, fd, "deploy.fsync");
	if (err)
		goto fail;
	if ((e = fault_at(s, "deploy.rename")) ||
	    renameat(s->dirfd, tmp, s->dirfd, name) < 0) {
		err = err_from_errno(e ? e : errno);
		goto fail;
	}
	close(fd);
	return STORE_OK;
fail:
	close(fd);
	unlinkat(s->dirfd, tmp, 0);
	return err;
}

static enum store_err check_size(struct store *s, uint64_t size)
{
	if (size == 0 || size % STORE_PAGE_SIZE)
		return STORE_EINVAL;
	if (size > s->max_module_size)
		return STORE_ETOOBIG;
	return STORE_OK;
}

enum store_err store_deploy_id(struct store *s, const struct store_id *mod,
			       uint64_t size, struct store_module_info *info,
			       int *created)
{
	struct store_module_info tmpinfo;
	struct module *m = NULL;
	char init[NAME_LEN], name[NAME_LEN];
	enum store_err err;
	int e;

	if (created)
		*created = 0;
	if (!info)
		info = &tmpinfo;
	pthread_mutex_lock(&s->op_lock);
	err = store_module_get(s, mod, info);
	if (err != STORE_ENOMODULE)
		goto out; /* deployed already, or a failure */
	err = check_size(s, size);
	if (err)
		goto out;
	m = module_new(mod, size);
	if (!m) {
		err = STORE_ENOMEM;
		goto out;
	}
	name_init(init, m);
	name_suffix(name, m, "");
	err = make_zero_file(s, init, size);
	if (err)
		goto fail;
	if ((e = fault_at(s, "deploy.link")) ||
	    linkat(s->dirfd, init, s->dirfd, name, 0) < 0) {
		err = err_from_errno(e ? e : errno);
		goto fail_init;
	}
	err = fsync_dir(s);
	if (err)
		goto fail_name;
	pthread_mutex_lock(&s->lock);
	err = module_insert(s, m);
	pthread_mutex_unlock(&s->lock);
	if (err)
		goto fail_name;
	module_info(m, NULL, info);
	if (created)
		*created = 1;
	goto out;
fail_name:
	unlinkat(s->dirfd, name, 0);
fail_init:
	unlinkat(s->dirfd, init, 0);
fail:
	free(m);
out:
	pthread_mutex_unlock(&s->op_lock);
	return err;
}

enum store_err store_deploy(struct store *s, const void *code, size_t len,
			    uint64_t size, struct store_module_info *info,
			    int *created)
{
	struct store_id id;

	if (!code || len == 0)
		return STORE_EINVAL;
	store_module_id(code, len, &id);
	return store_deploy_id(s, &id, size, info, created);
}

enum store_err store_module_get(struct store *s, const struct store_id *mod,
				struct store_module_info *info)
{
	struct module *m;
	enum store_err err = STORE_ENOMODULE;

	pthread_mutex_lock(&s->lock);
	m = module_find(s, mod);
	if (m) {
		module_info(m, state_find(s->cur, mod), info);
		err = STORE_OK;
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

enum store_err store_module_list(struct store *s,
				 struct store_module_info **out, size_t *n)
{
	struct store_module_info *v = NULL;
	size_t i;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	if (s->nmods) {
		v = malloc(s->nmods * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&s->lock);
			return STORE_ENOMEM;
		}
	}
	for (i = 0; i < s->nmods; i++)
		module_info(s->mods[i], state_find(s->cur, &s->mods[i]->id),
			    &v[i]);
	*n = s->nmods;
	pthread_mutex_unlock(&s->lock);
	*out = v;
	return STORE_OK;
}

enum store_err store_module_open(struct store *s, const struct store_id *mod,
				 int *fd, struct store_module_info *info)
{
	struct state *st = NULL;
	const struct entry *e;
	struct module *m;
	char name[NAME_LEN];

	*fd = -1;
	pthread_mutex_lock(&s->lock);
	m = module_find(s, mod);
	if (m)
		st = state_ref(s->cur);
	pthread_mutex_unlock(&s->lock);
	if (!m)
		return STORE_ENOMODULE;
	/* the state's files are immutable: no lock needed to open them */
	e = state_find(st, mod);
	if (e)
		name_commit(name, m, &e->mc);
	else
		name_init(name, m);
	if (info)
		module_info(m, e, info);
	state_unref(st);
	*fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return errno == ENOENT ? STORE_ECORRUPT : err_from_errno(errno);
	return STORE_OK;
}

enum store_err store_root(struct store *s, struct store_id *root)
{
	pthread_mutex_lock(&s->lock);
	*root = s->cur->root;
	pthread_mutex_unlock(&s->lock);
	return STORE_OK;
}

/* --- loading a directory ------------------------------------------------- */

static int is_upper_hex(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'A' && p[i] <= 'F')))
			return 0;
	return 1;
}

/*
 * A stream over the state directory, from a descriptor of its own: a dup of
 * dirfd would share its offset with every other reader. -1 (errno) on
 * failure.
 */
static int dir_stream(struct store *s, DIR **out)
{
	int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*out = fd < 0 ? NULL : fdopendir(fd);
	if (*out)
		return 0;
	if (fd >= 0) {
		int e = errno;

		close(fd);
		errno = e;
	}
	return -1;
}

/*
 * Find the modules: every name of 64 hex digits. Remove the .MOD_init of a
 * deploy that did not finish.
 */
static enum store_err scan_modules(struct store *s)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	enum store_err err = STORE_OK;
	struct store_id id;
	char init[NAME_LEN];
	size_t len;

	if (dir_stream(s, &d))
		return err_from_errno(errno);
	while ((de = readdir(d))) {
		len = strlen(de->d_name);
		if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			continue; /* a live journal may need it: see remove_tmps
				   */
		if (len == STORE_HEX_LEN + 6 && de->d_name[0] == '.' &&
		    !strcmp(de->d_name + 1 + STORE_HEX_LEN, "_init")) {
			/* an init file whose module name never appeared */
			char mod[STORE_HEX_LEN + 1];

			memcpy(mod, de->d_name + 1, STORE_HEX_LEN);
			mod[STORE_HEX_LEN] = '\0';
			if (fstatat(s->dirfd, mod, &st, 0) < 0 &&
			    errno == ENOENT)
				unlinkat(s->dirfd, de->d_name, 0);
			continue;
		}
		if (len != STORE_HEX_LEN ||
		    !is_upper_hex(de->d_name, STORE_HEX_LEN))
			continue;
		store_id_parse(&id, de->d_name, len);
		snprintf(init, sizeof(init), ".%.*s_init", STORE_HEX_LEN,
			 de->d_name);
		if (fstatat(s->dirfd, init, &st, 0) < 0) {
			/* a directory made before init files: use MOD's size */
			if (errno != ENOENT ||
			    fstatat(s->dirfd, de->d_name, &st, 0) < 0) {
				err = err_from_errno(errno);
				break;
			}
			err = make_zero_file(s, init, (uint64_t)st.st_size);
			if (err)
				break;
		}
		{
			struct module *m =
			    module_new(&id, (uint64_t)st.st_size);

			if (!m) {
				err = STORE_ENOMEM;
				break;
			}
			err = module_insert(s, m);
			if (err)
				free(m);
			if (err == STORE_EINVAL)
				err = STORE_OK; /* listed twice by readdir */
			if (err)
				break;
		}
	}
	closedir(d);
	return err;
}

/* Remove the temporaries a crash left, once the journal no longer needs them.
 */
static enum store_err remove_tmps(struct store *s)
{
	struct dirent *de;
	DIR *d;

	if (dir_stream(s, &d))
		return err_from_errno(errno);
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			unlinkat(s->dirfd, de->d_name, 0);
	closedir(d);
	return STORE_OK;
}

/* The current state from the _last_id files. */
static enum store_err load_state(struct store *s, struct state **out)
{
	struct state *st;
	struct stat sb;
	char name[NAME_LEN], *buf = NULL;
	size_t i, n = 0, len;
	enum store_err err = STORE_OK;

	*out = NULL;
	st = state_new(s->nmods);
	if (!st)
		return STORE_ENOMEM;
	for (i = 0; i < s->nmods; i++) {
		struct entry *e = &st->e[n];

		name_suffix(name, s->mods[i], "_last_id");
		err = read_file(s->dirfd, name, &buf, &len);
		if (err == STORE_ENOCOMMIT) {
			err = STORE_OK;
			continue; /* no commit yet */
		}
		if (err)
			goto fail;
		err = STORE_ECORRUPT;
		if (len != STORE_HEX_LEN + 1 || buf[STORE_HEX_LEN] != '\n' ||
		    store_id_parse(&e->mc, buf, STORE_HEX_LEN))
			goto fail;
		free(buf);
		buf = NULL;
		e->mod = s->mods[i];
		name_commit(name, e->mod, &e->mc);
		if (fstatat(s->dirfd, name, &sb, 0) < 0)
			goto fail; /* a module commit without its file */
		e->size = (uint64_t)sb.st_size;
		n++;
	}
	st->n = n;
	err = state_compute_root(st);
	if (err)
		goto fail;
	*out = st;
	return STORE_OK;
fail:
	free(buf);
	st->n = n;
	state_unref(st);
	return err;
}

static enum store_err load_commits_file(struct store *s, struct commits *into)
{
	enum store_err err;
	char *buf;
	size_t len;

	err = read_file(s->dirfd, "commits", &buf, &len);
	if (err == STORE_ENOCOMMIT)
		return STORE_OK;
	if (err)
		return err;
	err = commits_parse_merge(into, buf, len);
	free(buf);
	return err;
}

/*
 * After a switch failed half way, or at open: replay the journal and take
 * the current state from the files again. A commit that the journal
 * carried out is added to the commits store. Called with op_lock held.
 */
static enum store_err store_reload(struct store *s)
{
	struct journal j = {0};
	struct state *st = NULL, *old;
	struct store_pair *pairs = NULL;
	enum store_err err;
	int replayed = 0;
	size_t i;

	err = journal_recover(s, &j, &replayed);
	if (err)
		return err;
	err = load_state(s, &st);
	if (err)
		goto out;
	if (replayed && j.op == JOURNAL_COMMIT &&
	    store_id_equal(&j.root, &st->root)) {
		pairs = malloc((st->n ? st->n : 1) * sizeof(*pairs));
		if (!pairs) {
			err = STORE_ENOMEM;
			goto out;
		}
		for (i = 0; i < st->n; i++) {
			pairs[i].module = st->e[i].mod->id;
			pairs[i].commit = st->e[i].mc;
		}
		pthread_mutex_lock(&s->lock);
		err = commits_add(&s->cs, &st->root, pairs, st->n);
		pthread_mutex_unlock(&s->lock);
		if (err)
			goto out;
	}
	pthread_mutex_lock(&s->lock);
	old = s->cur;
	s->cur = st;
	s->wedged = 0;
	pthread_mutex_unlock(&s->lock);
	st = NULL;
	state_unref(old);
out:
	free(pairs);
	state_unref(st);
	journal_release(&j);
	return err;
}

enum store_err store_unwedge(struct store *s)
{
	return s->wedged ? store_reload(s) : STORE_OK;
}

enum store_err store_open(struct store **out, const struct store_options *opts)
{
	struct store *s;
	enum store_err err;

	*out = NULL;
	if (!opts || !opts->dir || !*opts->dir)
		return STORE_EINVAL;
	if (sodium_init() < 0)
		return STORE_EIO;
	s = calloc(1, sizeof(*s));
	if (!s)
		return STORE_ENOMEM;
	s->dirfd = -1;
	s->lockfd = -1;
	s->jfd = -1;
	s->max_module_size = opts->max_module_size ? opts->max_module_size
						   : STORE_DEFAULT_MAX_MODULE;
	s->max_sessions = opts->max_sessions;
	s->fault = opts->fault;
	s->fault_ctx = opts->fault_ctx;
	atomic_init(&s->bytes_written, 0);
	pthread_mutex_init(&s->op_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->tree_lock, NULL);

	if (mkdir(opts->dir, 0700) < 0 && errno != EEXIST) {
		err = err_from_errno(errno);
		goto fail;
	}
	s->dirfd = open(opts->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		err = err_from_errno(errno);
		goto fail;
	}
	s->lockfd =
	    openat(s->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0) {
		err = err_from_errno(errno);
		goto fail;
	}
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? STORE_ELOCKED
					   : err_from_errno(errno);
		goto fail;
	}
	err = scan_modules(s);
	if (err)
		goto fail;
	err = store_reload(s);
	if (!err)
		err = remove_tmps(s);
	if (err)
		goto fail;
	err = load_commits_file(s, &s->cs);
	if (err)
		goto fail;
	*out = s;
	return STORE_OK;
fail:
	store_close(s);
	return err;
}

void store_close(struct store *s)
{
	size_t i;

	if (!s)
		return;
	session_free_all(s);
	state_unref(s->cur);
	for (i = 0; i < s->nmods; i++)
		free(s->mods[i]);
	free(s->mods);
	free(s->sess);
	commits_release(&s->cs);
	if (s->jfd >= 0) {
		/* flushed, the last switch needs no replay at the next open */
		if (s->jlive && !s->wedged &&
		    sync_store(s, "close.sync") == 0) {
			journal_clear(s);
			fdatasync(s->jfd);
		}
		close(s->jfd);
	}
	if (s->lockfd >= 0)
		close(s->lockfd); /* releases the flock */
	if (s->dirfd >= 0)
		close(s->dirfd);
	pthread_mutex_destroy(&s->op_lock);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->tree_lock);
	free(s);
}

/* --- the commits store --------------------------------------------------- */

enum store_err store_commit_get(struct store *s, const struct store_id *commit,
				struct store_pair **pairs, size_t *n)
{
	const struct centry *c;
	enum store_err err = STORE_ENOCOMMIT;

	*pairs = NULL;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	c = commits_find(&s->cs, commit);
	if (c) {
		err = STORE_OK;
		*pairs = malloc((c->n ? c->n : 1) * sizeof(**pairs));
		if (!*pairs)
			err = STORE_ENOMEM;
		else if (c->n)
			memcpy(*pairs, c->pairs, c->n * sizeof(**pairs));
		if (!err)
			*n = c->n;
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

enum store_err store_commit_open(struct store *s, const struct store_id *commit,
				 const struct store_id *mod, int *fd,
				 uint64_t *size)
{
	const struct centry *c;
	const struct module *m = NULL;
	struct store_id mc;
	struct stat sb;
	enum store_err err = STORE_ENOCOMMIT;
	char name[NAME_LEN];
	size_t i;

	*fd = -1;
	*size = 0;
	pthread_mutex_lock(&s->lock);
	c = commits_find(&s->cs, commit);
	if (c) {
		err = STORE_ENOMODULE;
		for (i = 0; i < c->n; i++) {
			if (store_id_equal(&c->pairs[i].module, mod)) {
				mc = c->pairs[i].commit;
				m = module_find(s, mod);
				/* a commit of a module not deployed */
				err = m ? STORE_OK : STORE_ECORRUPT;
				break;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (err != STORE_OK)
		goto out;
	/* commit files are written once and never modified: no lock */
	name_commit(name, m, &mc);
	*fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		err = errno == ENOENT ? STORE_ECORRUPT : err_from_errno(errno);
		goto out;
	}
	if (fstat(*fd, &sb) < 0) {
		err = err_from_errno(errno);
		close(*fd);
		*fd = -1;
		goto out;
	}
	*size = (uint64_t)sb.st_size;
out:
	return err;
}

enum store_err store_commits_foreach(struct store *s, store_commit_fn fn,
				     void *ctx)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->cs.n; i++)
		if (fn(ctx, &s->cs.v[i]->id, s->cs.v[i]->pairs, s->cs.v[i]->n))
			break;
	pthread_mutex_unlock(&s->lock);
	return STORE_OK;
}

enum store_err store_commits_text(struct store *s, char **out, size_t *len)
{
	enum store_err err;

	pthread_mutex_lock(&s->lock);
	err = commits_format(&s->cs, out, len);
	pthread_mutex_unlock(&s->lock);
	return err;
}

size_t store_commits_count(struct store *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->cs.n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

enum store_err store_persist(struct store *s)
{
	enum store_err err;
	char *buf = NULL;
	size_t len;

	pthread_mutex_lock(&s->op_lock);
	pthread_mutex_lock(&s->lock);
	err = commits_format(&s->cs, &buf, &len);
	pthread_mutex_unlock(&s->lock);
	if (!err)
		err =
		    write_file_atomic(s, "commits", buf, len, "persist.write");
	pthread_mutex_unlock(&s->op_lock);
	free(buf);
	return err;
}

/* Merge the file `commits` into the commits store. */
static enum store_err merge_commits_file(struct store *s)
{
	struct commits tmp = {0};
	enum store_err err;
	size_t i;

	err = load_commits_file(s, &tmp);
	if (err)
		goto out;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < tmp.n && !err; i++)
		err = commits_add(&s->cs, &tmp.v[i]->id, tmp.v[i]->pairs,
				  tmp.v[i]->n);
	pthread_mutex_unlock(&s->lock);
out:
	commits_release(&tmp);
	return err;
}

/* Called without locks: the module table only grows. */
enum store_err state_from_pairs(struct store *s, const struct store_pair *pairs,
				size_t n, struct state **out)
{
	struct state *st, *cur;
	struct stat sb;
	char name[NAME_LEN];
	enum store_err err = STORE_OK;
	size_t i;

	*out = NULL;
	st = state_new(n);
	if (!st)
		return STORE_ENOMEM;
	cur = current_state(s);
	for (i = 0; i < n; i++) {
		struct entry *e = &st->e[i];
		const struct entry *ce;

		pthread_mutex_lock(&s->lock);
		e->mod = module_find(s, &pairs[i].module);
		pthread_mutex_unlock(&s->lock);
		if (!e->mod) {
			err =
			    STORE_ECORRUPT; /* a commit of an unknown module */
			break;
		}
		e->mc = pairs[i].commit;
		ce = state_find(cur, &e->mod->id);
		if (ce && store_id_equal(&ce->mc, &e->mc)) {
			/* as it is now: size and tree known, file there */
			e->size = ce->size;
			pthread_mutex_lock(&s->tree_lock);
			e->tree = tree_ref(ce->tree);
			pthread_mutex_unlock(&s->tree_lock);
			continue;
		}
		name_commit(name, e->mod, &e->mc);
		if (fstatat(s->dirfd, name, &sb, 0) < 0) {
			err = errno == ENOENT ? STORE_ECORRUPT
					      : err_from_errno(errno);
			break;
		}
		e->size = (uint64_t)sb.st_size;
	}
	state_unref(cur);
	if (!err)
		err = state_compute_root(st);
	if (err) {
		state_unref(st);
		return err;
	}
	*out = st;
	return STORE_OK;
}

/*
 * Put back the names of the modules in j as they are in cur, after a switch
 * failed half way, with a journal of its own. 0 when it worked.
 */
static enum store_err switch_rollback(struct store *s, const struct journal *j,
				      const struct state *cur)
{
	struct journal r = {0};
	enum store_err err;
	size_t i;

	r.op = JOURNAL_RESTORE;
	r.root = cur->root;
	r.e = calloc(j->n ? j->n : 1, sizeof(*r.e));
	if (!r.e)
		return STORE_ENOMEM;
	for (i = 0; i < j->n; i++) {
		const struct entry *from = state_find(cur, &j->e[i].mod->id);

		r.e[i].mod = j->e[i].mod;
		r.e[i].has_mc = from != NULL;
		if (from)
			r.e[i].mc = from->mc;
	}
	r.n = j->n;
	err = journal_write(s, &r);
	if (!err)
		err = switch_finish(s, &r);
	if (!err) {
		s->jlive = 1;
		atomic_fetch_add(&s->switch_seq, 1);
	}
	journal_release(&r);
	return err;
}

enum store_err store_switch(struct store *s, struct state *st,
			    enum journal_op op, const unsigned int *flushed,
			    const struct jsrc *src, size_t nsrc)
{
	struct journal j = {0};
	struct state *cur, *old;
	enum store_err err;
	size_t i, k, n;
	char name[NAME_LEN];

	cur = current_state(s);
	j.op = op;
	j.root = st->root;
	j.e = calloc(s->nmods ? s->nmods : 1, sizeof(*j.e));
	err = STORE_ENOMEM;
	if (!j.e)
		goto out;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nmods; i++) {
		const struct entry *to = state_find(st, &s->mods[i]->id);
		const struct entry *from = state_find(cur, &s->mods[i]->id);

		if (!to && !from)
			continue;
		if (to && from && store_id_equal(&to->mc, &from->mc))
			continue;
		k = j.n++;
		j.e[k].mod = s->mods[i];
		j.e[k].has_mc = to != NULL;
		if (to)
			j.e[k].mc = to->mc;
		for (n = 0; to && n < nsrc; n++)
			if (src[n].mod == s->mods[i])
				memcpy(j.e[k].src, src[n].src, TMP_NAME_LEN);
	}
	pthread_mutex_unlock(&s->lock);

	err = STORE_OK;
	if (j.n == 0)
		goto publish; /* no name moves */
	/* the last switch durable before its journal is replaced */
	if (s->jlive && !(flushed && *flushed == atomic_load(&s->switch_seq))) {
		err = sync_store(s, "switch.flush");
		if (err)
			goto out;
	}
	s->jlive = 0;
	err = journal_write(s, &j);
	if (err) {
		/* it may have reached the disk before failing */
		journal_clear(s);
		goto out;
	}
	err = switch_finish(s, &j);
	if (err) {
		if (switch_rollback(s, &j, cur)) {
			pthread_mutex_lock(&s->lock);
			s->wedged = 1; /* the journal on disk decides */
			pthread_mutex_unlock(&s->lock);
			goto out;
		}
		/* rolled back: the files it made are named by nothing */
		for (i = 0; i < j.n; i++) {
			if (!j.e[i].made)
				continue;
			name_commit(name, j.e[i].mod, &j.e[i].mc);
			unlinkat(s->dirfd, name, 0);
		}
		goto out;
	}
	s->jlive = 1;
	atomic_fetch_add(&s->switch_seq, 1);
publish:
	pthread_mutex_lock(&s->lock);
	old = s->cur;
	s->cur = state_ref(st);
	pthread_mutex_unlock(&s->lock);
	state_unref(old);
out:
	state_unref(cur);
	journal_release(&j);
	return err;
}

enum store_err store_restore(struct store *s, const struct store_id *commit)
{
	struct store_pair *pairs = NULL;
	struct state *st = NULL;
	enum store_err err;
	size_t n;

	pthread_mutex_lock(&s->op_lock);
	err = store_unwedge(s);
	if (err)
		goto out;
	err = store_commit_get(s, commit, &pairs, &n);
	if (err == STORE_ENOCOMMIT) {
		err = merge_commits_file(s);
		if (!err)
			err = store_commit_get(s, commit, &pairs, &n);
	}
	if (err)
		goto out;
	err = state_from_pairs(s, pairs, n, &st);
	if (err)
		goto out;
	err = store_switch(s, st, JOURNAL_RESTORE, NULL, NULL, 0);
out:
	pthread_mutex_unlock(&s->op_lock);
	state_unref(st);
	free(pairs);
	return err;
}

enum store_err store_get_stats(struct store *s, struct store_stats *out)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	out->modules = s->nmods;
	out->commits = s->cs.n;
	out->sessions = s->nsess;
	pthread_mutex_unlock(&s->lock);
	out->bytes_written = atomic_load(&s->bytes_written);
	out->session_memory = atomic_load(&s->ov_mem);
	if (dir_stream(s, &d))
		return err_from_errno(errno);
	while ((de = readdir(d)))
		if (fstatat(s->dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) ==
			0 &&
		    S_ISREG(sb.st_mode))
			out->bytes_on_disk += (uint64_t)sb.st_blocks * 512 /
					      (sb.st_nlink ? sb.st_nlink : 1);
	closedir(d);
	return STORE_OK;
}
