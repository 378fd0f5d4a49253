/*
 * history.c - the commits store seen from outside: a commit's pairs and
 * files, the list, persist to the file `commits`, and restore.
 */
#include "commits.h"
#include "commits_file.h"
#include "fs.h"
#include "gc.h"
#include "ids.h"
#include "journal.h"
#include "names.h"
#include "state.h"
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

enum store_err store_commit_get(struct store *s, const struct store_id *commit,
				struct store_pair **pairs, size_t *n)
{
	enum store_err err;

	pthread_mutex_lock(&s->lock);
	err = commits_get_pairs(&s->cs, commit, pairs, n);
	pthread_mutex_unlock(&s->lock);
	return err;
}

/* The module commit of mod in commit, and its module. */
static enum store_err commit_member(struct store *s,
				    const struct store_id *commit,
				    const struct store_id *mod,
				    const struct module **m,
				    struct store_id *mc)
{
	const struct commits_entry *c;
	const struct store_pair *p = NULL;
	struct store_pair key;
	enum store_err err = STORE_ENOCOMMIT;

	key.module = *mod;
	pthread_mutex_lock(&s->lock);
	c = commits_find(&s->cs, commit);
	if (c) {
		p = c->n ? bsearch(&key, c->pairs, c->n, sizeof(*c->pairs),
				   ids_pair_cmp)
			 : NULL;
		err = STORE_ENOMODULE;
	}
	if (p) {
		*mc = p->commit;
		*m = modules_find_locked(s, mod);
		/* a commit of a module not deployed */
		err = *m ? STORE_OK : STORE_ECORRUPT;
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

enum store_err store_commit_open(struct store *s, const struct store_id *commit,
				 const struct store_id *mod, int *fd,
				 uint64_t *size)
{
	const struct module *m = NULL;
	struct store_id mc;
	enum store_err err;
	char name[NAME_LEN];

	*fd = -1;
	*size = 0;
	err = commit_member(s, commit, mod, &m, &mc);
	if (err)
		return err;
	/* commit files are written once and never modified: no lock */
	names_commit(name, m->hex, &mc);
	err = fs_open_ro(&s->fs, name, 0, fd);
	if (!err)
		err = fs_size(*fd, size);
	if (err && *fd >= 0) {
		fs_close_fd(*fd);
		*fd = -1;
	}
	return err;
}

/* The commits store's entries as they are now, read without the lock. */
static enum store_err snapshot(struct store *s, const struct commits_entry ***v,
			       size_t *n)
{
	enum store_err err;

	pthread_mutex_lock(&s->lock);
	err = commits_snapshot(&s->cs, v, n);
	pthread_mutex_unlock(&s->lock);
	return err;
}

enum store_err store_commits_foreach(struct store *s, store_commit_fn fn,
				     void *ctx)
{
	const struct commits_entry **v;
	enum store_err err;
	size_t i, n;

	err = snapshot(s, &v, &n);
	if (err)
		return err;
	for (i = 0; i < n; i++)
		if (fn(ctx, &v[i]->id, v[i]->pairs, v[i]->n))
			break;
	commits_snapshot_release(v, n);
	return STORE_OK;
}

enum store_err store_commits_text(struct store *s, char **out, size_t *len)
{
	const struct commits_entry **v;
	enum store_err err;
	size_t n;

	err = snapshot(s, &v, &n);
	if (err)
		return err;
	err = commits_file_format(v, n, out, len);
	commits_snapshot_release(v, n);
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

	const struct commits_entry **v = NULL;
	size_t n = 0, i;

	/* formatted and written without store.lock: sessions go on */
	pthread_mutex_lock(&s->persist_lock);
	err = snapshot(s, &v, &n);
	if (!err)
		err = commits_file_format(v, n, &buf, &len);
	if (!err)
		err = commits_file_write(s, buf, len);
	for (i = 0; !err && i < n; i++)
		atomic_store(
		    &((struct commits_entry *)(uintptr_t)v[i])->persisted, 1);
	pthread_mutex_unlock(&s->persist_lock);
	commits_snapshot_release(v, n);
	free(buf);
	return err;
}

/* Merge the file `commits` into the commits store. */
static enum store_err merge_commits_file(struct store *s)
{
	struct commits tmp = {0};
	enum store_err err;
	size_t i;

	err = commits_file_load(s, &tmp);
	if (err)
		goto out;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < tmp.n && !err; i++)
		err = commits_add(&s->cs, &tmp.v[i]->id, tmp.v[i]->pairs,
				  tmp.v[i]->n, 1);
	pthread_mutex_unlock(&s->lock);
out:
	commits_release(&tmp);
	return err;
}

enum store_err store_restore(struct store *s, const struct store_id *commit)
{
	struct store_pair *pairs = NULL;
	struct state *st = NULL;
	enum store_err err;
	size_t n;

	pthread_mutex_lock(&s->op_lock);
	err = journal_unwedge(s);
	if (err)
		goto out;
	err = store_commit_get(s, commit, &pairs, &n);
	if (err == STORE_ENOCOMMIT) {
		err = merge_commits_file(s);
		if (!err)
			err = store_commit_get(s, commit, &pairs, &n);
	}
	if (!err)
		err = state_from_pairs(s, pairs, n, &st);
	if (!err)
		err = journal_switch(s, st, JOURNAL_RESTORE, NULL, NULL, 0);
out:
	pthread_mutex_unlock(&s->op_lock);
	state_unref(st);
	free(pairs);
	if (!err)
		gc_collect_deferred(s); /* files the old state held may go */
	return err;
}
