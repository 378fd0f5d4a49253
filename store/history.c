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

	*pairs = NULL;
	*n = 0;
	err = store_commits_ready(s);
	if (err)
		return err;
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
	enum store_err err;

	pthread_mutex_lock(&s->lock);
	err = commits_member(&s->cs, commit, mod, mc);
	if (!err) {
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
	err = store_commits_ready(s);
	if (!err)
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

enum store_err store_commits_reader_open(struct store *s,
					 struct store_commits_reader **r)
{
	enum store_err err = store_commits_ready(s);

	*r = NULL;
	if (err)
		return err;
	return commits_file_reader(s, COMMITS_READ_ALL, NULL, r);
}

void store_commits_reader_close(struct store_commits_reader *r)
{
	commits_file_reader_close(r);
}

enum store_err store_commits_foreach(struct store *s, store_commit_fn fn,
				     void *ctx)
{
	struct commits_cursor cur = {0};
	const struct commits_entry *c;
	const struct store_pair *pairs = NULL;
	struct store_id *ids = NULL;
	enum store_err err;
	size_t i, n = 0, np = 0;

	err = store_commits_ready(s);
	if (err)
		return err;
	pthread_mutex_lock(&s->lock);
	err = commits_ids(&s->cs, 0, &ids, &n);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; !err && i < n; i++) {
		pthread_mutex_lock(&s->lock);
		c = commits_find(&s->cs, &ids[i]);
		if (c)
			err =
			    commits_cursor_pairs(&s->cs, &cur, c, &pairs, &np);
		pthread_mutex_unlock(&s->lock);
		if (!err && c && fn(ctx, &ids[i], pairs, np))
			break;
	}
	pthread_mutex_lock(&s->lock);
	commits_cursor_release(&s->cs, &cur);
	pthread_mutex_unlock(&s->lock);
	free(ids);
	return err;
}

enum store_err store_commits_text(struct store *s, char **out, size_t *len)
{
	struct store_commits_reader *r = NULL;
	enum store_err err;
	char *buf = NULL, *b;
	size_t cap = 0, got = 1;

	*out = NULL;
	*len = 0;
	err = store_commits_reader_open(s, &r);
	while (!err && got) {
		if (cap - *len < 65536) {
			cap = cap ? cap * 2 : 65536;
			b = realloc(buf, cap + 1);
			if (!b) {
				err = STORE_ENOMEM;
				break;
			}
			buf = b;
		}
		err = store_commits_read(r, buf + *len, cap - *len, &got);
		*len += got;
	}
	store_commits_reader_close(r);
	if (err) {
		free(buf);
		*len = 0;
		return err;
	}
	buf[*len] = '\0';
	*out = buf;
	return STORE_OK;
}

size_t store_commits_count(struct store *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->cs.n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* --- persist -------------------------------------------------------------- */

/* The commits the file does not hold, appended; *whole when it cannot. */
static enum store_err persist_append(struct store *s, int *whole)
{
	struct store_commits_reader *r = NULL;
	enum store_err err;

	*whole = 1;
	if (!s->cf.known || !s->cf.exists)
		return STORE_OK;
	err = commits_file_reader(s, COMMITS_READ_UNPERSISTED, NULL, &r);
	if (!err)
		err = commits_file_append(s, commits_file_reader_fill, r,
					  commits_file_reader_count(r), whole);
	if (!err && !*whole)
		commits_file_reader_mark(r);
	commits_file_reader_close(r);
	return err;
}

enum store_err store_persist(struct store *s)
{
	struct store_commits_reader *r = NULL;
	enum store_err err;
	int whole = 1;

	err = store_commits_ready(s);
	if (err)
		return err;
	/* formatted and written without store.lock: sessions go on */
	pthread_mutex_lock(&s->persist_lock);
	err = persist_append(s, &whole);
	if (!err && whole) {
		err = commits_file_reader(s, COMMITS_READ_ALL, NULL, &r);
		if (!err)
			err = commits_file_write(s, commits_file_reader_fill, r,
						 commits_file_reader_count(r));
		if (!err)
			commits_file_reader_mark(r);
	}
	pthread_mutex_unlock(&s->persist_lock);
	commits_file_reader_close(r);
	return err;
}

/* --- restore -------------------------------------------------------------- */

static enum store_err add_to(void *ctx, const struct store_id *id,
			     const struct store_pair *pairs, size_t n)
{
	return commits_add(ctx, id, pairs, n, 1);
}

/* Merge the file `commits` into the commits store. */
static enum store_err merge_commits_file(struct store *s)
{
	struct commits tmp = {0};
	struct commits_cursor cur = {0};
	const struct store_pair *pairs;
	enum store_err err;
	size_t i, n;

	err = commits_file_load(s, add_to, &tmp, 0);
	if (err)
		goto out;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < tmp.n && !err; i++) {
		err = commits_cursor_pairs(&tmp, &cur, tmp.v[i], &pairs, &n);
		if (!err)
			err = commits_add(&s->cs, &tmp.v[i]->id, pairs, n, 1);
	}
	pthread_mutex_unlock(&s->lock);
out:
	commits_cursor_release(&tmp, &cur);
	commits_release(&tmp);
	return err;
}

enum store_err store_restore(struct store *s, const struct store_id *commit)
{
	struct store_pair *pairs = NULL;
	struct state *st = NULL;
	enum store_err err;
	size_t n;

	err = store_commits_ready(s);
	if (err)
		return err;
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
		err = journal_switch(s, st, JOURNAL_RESTORE, NULL, 0);
out:
	pthread_mutex_unlock(&s->op_lock);
	state_unref(st);
	free(pairs);
	if (!err)
		gc_collect_deferred(s); /* files the old state held may go */
	return err;
}
