/*
 * modules.c - the module table, deploy, and finding the modules of a
 * directory at open.
 */
#include "modules.h"
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

/* .MOD_init and its link MOD, durable. */
static enum store_err deploy_files(struct store *s, const struct module *m)
{
	char init[NAME_LEN], name[NAME_LEN];
	enum store_err err;
	int e;

	names_init(init, m->hex);
	names_suffix(name, m->hex, "");
	err = fs_make_zero_file(&s->fs, init, m->init_size);
	if (err)
		return err;
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
	return err;
}

/* Take back the files of a deploy that could not enter the table. */
static void deploy_undo(struct store *s, const struct module *m)
{
	char name[NAME_LEN];

	names_suffix(name, m->hex, "");
	fs_unlink(&s->fs, name);
	names_init(name, m->hex);
	fs_unlink(&s->fs, name);
}

enum store_err modules_deploy(struct store *s, const struct store_id *id,
			      uint64_t size, struct module **out, int *created)
{
	struct module *m;
	enum store_err err = STORE_OK;

	*created = 0;
	pthread_mutex_lock(&s->op_lock);
	*out = modules_find(s, id);
	if (*out)
		goto out;
	m = module_new(id, size);
	if (!m) {
		err = STORE_ENOMEM;
		goto out;
	}
	err = deploy_files(s, m);
	if (err) {
		free(m);
		goto out;
	}
	err = module_insert(s, m);
	if (err) {
		deploy_undo(s, m);
		free(m);
		goto out;
	}
	*out = m;
	*created = 1;
out:
	pthread_mutex_unlock(&s->op_lock);
	return err;
}

/* One name of the directory at open: a module, an orphan init, or other. */
static enum store_err scan_name(void *ctx, const char *name)
{
	struct store *s = ctx;
	char mod[STORE_HEX_LEN + 1], init[NAME_LEN];
	struct store_id id;
	struct module *m;
	enum store_err err;
	uint64_t size;
	int x;

	if (names_is_init(name, mod)) {
		/* an init file whose module name never appeared */
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
