/*
 * modules.c - the module table, deploy, the modules' bytecode, and finding
 * the modules of a directory at open.
 *
 * A deploy writes, in this order: the bytecode (a temporary, flushed,
 * renamed .MOD_bytecode), .MOD_init (the same), the link MOD; then one
 * flush of the directory makes the three names durable, and only then
 * does the module enter the table. A module is the name MOD: at open, a
 * .MOD_bytecode or .MOD_init without it is what an interrupted deploy
 * left, and is removed. A power cut can keep MOD without the bytecode's
 * name only on a file system that does not keep names in the order they
 * were made; the deploy was not answered then, and the same deploy again
 * gives the module its bytecode (a module deployed already that has no
 * .MOD_bytecode gets the one of the new deploy; one that has keeps it).
 * A .MOD_bytecode is never modified nor removed afterwards, so a
 * descriptor on it and a check that it exists stay true without a lock.
 */
#include "modules.h"
#include "fs.h"
#include "ids.h"
#include "names.h"
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Index of id in the table, or where it would go. Lock held. */
static size_t module_pos(const struct modules *t, const struct store_id *id,
			 int *found)
{
	size_t lo = 0, hi = t->n, mid;
	int c;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(id->b, t->v[mid]->id.b, STORE_ID_BYTES);
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

struct module *modules_find_locked(struct store *s, const struct store_id *id)
{
	int found;
	size_t i = module_pos(&s->mods, id, &found);

	return found ? s->mods.v[i] : NULL;
}

struct module *modules_find(struct store *s, const struct store_id *id)
{
	struct module *m;

	pthread_mutex_lock(&s->lock);
	m = modules_find_locked(s, id);
	pthread_mutex_unlock(&s->lock);
	return m;
}

enum store_err modules_snapshot(struct store *s, struct module ***out,
				size_t *n)
{
	struct module **v;

	pthread_mutex_lock(&s->lock);
	*n = s->mods.n;
	v = malloc((*n ? *n : 1) * sizeof(*v));
	if (v && *n)
		memcpy(v, s->mods.v, *n * sizeof(*v));
	pthread_mutex_unlock(&s->lock);
	*out = v;
	return v ? STORE_OK : STORE_ENOMEM;
}

/* Insert m (which the table then owns); STORE_EINVAL if id is there. */
static enum store_err module_insert(struct store *s, struct module *m)
{
	struct modules *t = &s->mods;
	enum store_err err = STORE_OK;
	int found;
	size_t i;

	pthread_mutex_lock(&s->lock);
	i = module_pos(t, &m->id, &found);
	if (found) {
		err = STORE_EINVAL;
		goto out;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct module **v = realloc(t->v, cap * sizeof(*v));

		if (!v) {
			err = STORE_ENOMEM;
			goto out;
		}
		t->v = v;
		t->cap = cap;
	}
	memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(*t->v));
	t->v[i] = m;
	t->n++;
out:
	pthread_mutex_unlock(&s->lock);
	return err;
}

static struct module *module_new(const struct store_id *id, uint64_t size)
{
	struct module *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->id = *id;
	store_id_hex(id, m->hex);
	m->init_size = size;
	ids_zero_root(size / STORE_PAGE_SIZE, &m->zero_mc);
	return m;
}

/* --- uploads and bytecode files ------------------------------------------ */

enum store_err store_upload_new(struct store *s, struct store_upload **out)
{
	struct store_upload *u;
	enum store_err err;

	*out = NULL;
	/* sizeof is a multiple of the alignment, as aligned_alloc wants */
	u = aligned_alloc(_Alignof(struct store_upload), sizeof(*u));
	if (!u)
		return STORE_ENOMEM;
	memset(u, 0, sizeof(*u));
	u->s = s;
	ids_code_begin(&u->hash);
	err = fs_tmp_create(&s->fs, u->tmp, &u->fd);
	if (err) {
		free(u);
		return err;
	}
	*out = u;
	return STORE_OK;
}

enum store_err store_upload_write(struct store_upload *u, const void *buf,
				  size_t len)
{
	if (u->err)
		return u->err;
	if (!u->tmp[0])
		return STORE_EINVAL; /* deployed already */
	if (!len)
		return STORE_OK;
	u->err = fs_write(&u->s->fs, u->fd, buf, len, u->len, "bytecode.write");
	if (u->err)
		return u->err;
	ids_code_add(&u->hash, buf, len);
	u->len += len;
	return STORE_OK;
}

void store_upload_free(struct store_upload *u)
{
	if (!u)
		return;
	if (u->tmp[0])
		fs_unlink(&u->s->fs, u->tmp);
	fs_close_fd(u->fd);
	free(u);
}

enum store_err modules_upload_id(const struct store_upload *u,
				 struct store_id *id)
{
	crypto_generichash_state st;

	if (u->err)
		return u->err;
	if (!u->tmp[0] || !u->len)
		return STORE_EINVAL;
	st = u->hash; /* a copy: the upload's own goes on */
	ids_code_end(&st, id);
	return STORE_OK;
}

/* u's file, flushed, becomes .MOD_bytecode (its name not yet durable). */
static enum store_err bytecode_keep(struct store *s, const struct module *m,
				    struct store_upload *u)
{
	char name[NAME_LEN];
	enum store_err err;
	int e;

	names_bytecode(name, m->hex);
	err = fs_fsync(&s->fs, u->fd, "bytecode.fsync");
	if (err)
		return err;
	if ((e = fs_fault(&s->fs, "bytecode.rename")) ||
	    (e = fs_rename(&s->fs, u->tmp, name, 0)))
		return fs_err(e);
	u->tmp[0] = '\0';
	return STORE_OK;
}

/* Take back the .MOD_bytecode a failed deploy made of u, which is spent. */
static void bytecode_undo(struct store *s, const struct module *m,
			  struct store_upload *u, enum store_err err)
{
	char name[NAME_LEN];

	names_bytecode(name, m->hex);
	fs_unlink(&s->fs, name);
	u->err = err;
}

/*
 * A module deployed already: u becomes its bytecode if it has none (one
 * deployed before bytecode was kept, or whose deploy a power cut tore).
 */
static enum store_err bytecode_complete(struct store *s, const struct module *m,
					struct store_upload *u)
{
	char name[NAME_LEN];
	enum store_err err;
	int x;

	names_bytecode(name, m->hex);
	x = fs_exists(&s->fs, name, NULL);
	if (x != 0)
		return x > 0 ? STORE_OK : fs_err(errno);
	err = bytecode_keep(s, m, u);
	if (err)
		return err;
	err = fs_fsync_dir(&s->fs);
	if (err)
		bytecode_undo(s, m, u, err);
	return err;
}

/* The module id of the len bytes of fd: H(bytes). */
static enum store_err bytecode_hash(int fd, uint64_t len, struct store_id *out)
{
	enum { CHUNK = 64 * 1024 };
	crypto_generichash_state st;
	enum store_err err = STORE_OK;
	unsigned char *buf;
	uint64_t off;
	size_t n;

	buf = malloc(CHUNK);
	if (!buf)
		return STORE_ENOMEM;
	ids_code_begin(&st);
	for (off = 0; off < len && !err; off += n) {
		n = len - off < CHUNK ? (size_t)(len - off) : CHUNK;
		err = fs_read(fd, buf, n, off);
		if (!err)
			ids_code_add(&st, buf, n);
	}
	ids_code_end(&st, out);
	free(buf);
	return err;
}

enum store_err store_bytecode_open(struct store *s, const struct store_id *mod,
				   int *fd, uint64_t *len)
{
	char name[NAME_LEN];
	struct store_id got;
	struct module *m;
	enum store_err err;

	*fd = -1;
	*len = 0;
	m = modules_find(s, mod);
	if (!m)
		return STORE_ENOMODULE;
	names_bytecode(name, m->hex);
	err = fs_open_ro(&s->fs, name, 1, fd);
	if (err == STORE_ENOCOMMIT)
		return STORE_ENOBYTECODE; /* deployed before bytecode was kept
					   */
	if (err)
		return err;
	err = fs_size(*fd, len);
	if (!err)
		err = bytecode_hash(*fd, *len, &got);
	if (!err && !store_id_equal(&got, mod))
		err = STORE_ECORRUPT; /* not the bytes whose hash is the id */
	if (err) {
		fs_close_fd(*fd);
		*fd = -1;
		*len = 0;
	}
	return err;
}

/* --- deploy --------------------------------------------------------------- */

/*
 * u's bytecode (when u is not NULL), .MOD_init and its link MOD, durable
 * with one flush of the directory.
 */
static enum store_err deploy_files(struct store *s, const struct module *m,
				   struct store_upload *u)
{
	char init[NAME_LEN], name[NAME_LEN];
	enum store_err err;
	int e;

	names_init(init, m->hex);
	names_suffix(name, m->hex, "");
	if (u && (err = bytecode_keep(s, m, u)))
		return err;
	err = fs_make_zero_file(&s->fs, init, m->init_size);
	if (err)
		goto fail_code;
	if ((e = fs_fault(&s->fs, "deploy.link")) ||
	    (e = fs_link(&s->fs, init, name))) {
		err = fs_err(e);
		goto fail_init;
	}
	err = fs_fsync_dir(&s->fs);
	if (!err)
		return STORE_OK;
	fs_unlink(&s->fs, name);
fail_init:
	fs_unlink(&s->fs, init);
fail_code:
	if (u)
		bytecode_undo(s, m, u, err);
	return err;
}

/* Take back the files of a deploy that could not enter the table. */
static void deploy_undo(struct store *s, const struct module *m,
			struct store_upload *u, enum store_err err)
{
	char name[NAME_LEN];

	names_suffix(name, m->hex, "");
	fs_unlink(&s->fs, name);
	names_init(name, m->hex);
	fs_unlink(&s->fs, name);
	if (u)
		bytecode_undo(s, m, u, err);
}

/* 1 when m is deployed and there is nothing of u to keep for it. */
static int deploy_done(struct store *s, const struct module *m,
		       const struct store_upload *u)
{
	char name[NAME_LEN];

	if (!m)
		return 0;
	if (!u)
		return 1;
	names_bytecode(name, m->hex);
	return fs_exists(&s->fs, name, NULL) == 1;
}

enum store_err modules_deploy(struct store *s, const struct store_id *id,
			      uint64_t size, struct store_upload *u,
			      struct module **out, int *created)
{
	struct module *m;
	enum store_err err = STORE_OK;

	*created = 0;
	/* deployed with its bytecode: nothing to wait for (it stays so) */
	*out = modules_find(s, id);
	if (deploy_done(s, *out, u))
		return STORE_OK;
	pthread_mutex_lock(&s->op_lock);
	*out = modules_find(s, id);
	if (*out) {
		if (u)
			err = bytecode_complete(s, *out, u);
		goto out;
	}
	m = module_new(id, size);
	if (!m) {
		err = STORE_ENOMEM;
		goto out;
	}
	err = deploy_files(s, m, u);
	if (err) {
		free(m);
		goto out;
	}
	err = module_insert(s, m);
	if (err) {
		deploy_undo(s, m, u, err);
		free(m);
		goto out;
	}
	*out = m;
	*created = 1;
out:
	pthread_mutex_unlock(&s->op_lock);
	return err;
}

/*
 * One name of the directory at open: a module, an orphan init or bytecode
 * file, or other.
 */
static enum store_err scan_name(void *ctx, const char *name)
{
	struct store *s = ctx;
	char mod[STORE_HEX_LEN + 1], init[NAME_LEN];
	struct store_id id;
	struct module *m;
	enum store_err err;
	uint64_t size;
	int x;

	if (names_is_init(name, mod) || names_is_bytecode(name, mod)) {
		/* a file of a deploy whose module name never appeared */
		if (fs_exists(&s->fs, mod, NULL) == 0)
			fs_unlink(&s->fs, name);
		return STORE_OK;
	}
	if (!names_is_module(name))
		return STORE_OK;
	store_id_parse(&id, name, STORE_HEX_LEN);
	names_init(init, name);
	x = fs_exists(&s->fs, init, &size);
	if (x == 0) {
		/* a directory made before init files: use MOD's size */
		if (fs_exists(&s->fs, name, &size) != 1)
			return fs_err(errno);
		err = fs_make_zero_file(&s->fs, init, size);
		if (err)
			return err;
	} else if (x < 0) {
		return fs_err(errno);
	}
	m = module_new(&id, size);
	if (!m)
		return STORE_ENOMEM;
	err = module_insert(s, m);
	if (err)
		free(m);
	return err == STORE_EINVAL ? STORE_OK : err; /* listed twice */
}

enum store_err modules_scan(struct store *s)
{
	return fs_each_name(&s->fs, scan_name, s);
}

void modules_release(struct store *s)
{
	size_t i;

	for (i = 0; i < s->mods.n; i++)
		free(s->mods.v[i]);
	free(s->mods.v);
	memset(&s->mods, 0, sizeof(s->mods));
}
