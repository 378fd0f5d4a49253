/*
 * commits_file.c - the file `commits`: the JSON object {"COMMIT": {"MOD":
 * "MODCOMMIT", ...}, ...} of the seed's design. The store does not link a
 * JSON library; the format is fixed and small, so it is written and parsed
 * here, strictly.
 */
#include "commits_file.h"
#include "fs.h"
#include "ids.h"
#include "store_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Append "HEX" (quoted) at p; the end of it. */
static char *put_id(char *p, const struct store_id *id)
{
	*p++ = '"';
	store_id_hex(id, p);
	p += STORE_HEX_LEN;
	*p++ = '"';
	return p;
}

size_t commits_file_entry_room(size_t n)
{
	/* "HEX":{ } ; per pair "HEX":"HEX", */
	return STORE_HEX_LEN + 8 + n * (2 * STORE_HEX_LEN + 8);
}

size_t commits_file_entry(char *p, const struct store_id *id,
			  const struct store_pair *pairs, size_t n)
{
	char *start = p;
	size_t k;

	p = put_id(p, id);
	*p++ = ':';
	*p++ = '{';
	for (k = 0; k < n; k++) {
		if (k)
			*p++ = ',';
		p = put_id(p, &pairs[k].module);
		*p++ = ':';
		p = put_id(p, &pairs[k].commit);
	}
	*p++ = '}';
	return (size_t)(p - start);
}

/* --- a strict parser for exactly that shape ------------------------------ */

struct parser {
	const char *p, *end;
	struct fs_map *map; /* pages before p are given back (or NULL) */
};

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' ||
				   *ps->p == '\t' || *ps->p == '\r'))
		ps->p++;
}

static int expect(struct parser *ps, char c)
{
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == c) {
		ps->p++;
		return 1;
	}
	return 0;
}

static int peek(struct parser *ps, char c)
{
	skip_ws(ps);
	return ps->p < ps->end && *ps->p == c;
}

static int parse_id(struct parser *ps, struct store_id *id)
{
	if (!expect(ps, '"') || ps->end - ps->p < STORE_HEX_LEN + 1)
		return 0;
	if (store_id_parse(id, ps->p, STORE_HEX_LEN) != STORE_OK)
		return 0;
	ps->p += STORE_HEX_LEN;
	return expect(ps, '"');
}

/* One commit: "ID":{"MOD":"MC",...}, checked, given to fn. */
static enum store_err parse_entry(struct parser *ps, struct store_pair **pairs,
				  size_t *cap, commits_file_fn fn, void *ctx)
{
	struct store_id id, check;
	enum store_err err;
	size_t n = 0, i;

	if (!parse_id(ps, &id) || !expect(ps, ':') || !expect(ps, '{'))
		return STORE_ECORRUPT;
	if (!peek(ps, '}')) {
		do {
			if (n == *cap) {
				size_t c2 = *cap ? *cap * 2 : 64;
				struct store_pair *p2 =
				    realloc(*pairs, c2 * sizeof(*p2));

				if (!p2)
					return STORE_ENOMEM;
				*pairs = p2;
				*cap = c2;
			}
			if (!parse_id(ps, &(*pairs)[n].module) ||
			    !expect(ps, ':') ||
			    !parse_id(ps, &(*pairs)[n].commit))
				return STORE_ECORRUPT;
			n++;
		} while (expect(ps, ','));
	}
	if (!expect(ps, '}'))
		return STORE_ECORRUPT;
	if (n)
		qsort(*pairs, n, sizeof(**pairs), ids_pair_cmp);
	for (i = 1; i < n; i++)
		if (!ids_pair_cmp(&(*pairs)[i - 1], &(*pairs)[i]))
			return STORE_ECORRUPT;
	err = store_state_id(*pairs, n, &check);
	if (err)
		return err;
	if (!store_id_equal(&check, &id))
		return STORE_ECORRUPT; /* the id does not match its modules */
	return fn(ctx, &id, *pairs, n);
}

/* After the object: nothing, or the cut tail of an append. */
static enum store_err parse_end(struct parser *ps, const char *buf,
				struct commits_file_parse_info *info)
{
	info->close = (uint64_t)(ps->p - 1 - buf);
	skip_ws(ps);
	info->end = (uint64_t)(ps->p - buf);
	if (ps->p == ps->end)
		return STORE_OK;
	if (*ps->p == ',' || *ps->p == '\0') {
		info->tail = 1;
		return STORE_OK;
	}
	return STORE_ECORRUPT;
}

static enum store_err parse(const char *buf, size_t len, struct fs_map *map,
			    commits_file_fn fn, void *ctx,
			    struct commits_file_parse_info *info)
{
	struct parser ps = {buf, buf, map};
	struct store_pair *pairs = NULL;
	size_t cap = 0;
	enum store_err err = STORE_ECORRUPT;

	memset(info, 0, sizeof(*info));
	if (!len)
		return STORE_OK; /* an empty file (buf may be NULL) */
	ps.end = buf + len;
	skip_ws(&ps);
	if (ps.p == ps.end)
		return STORE_OK; /* an empty file: no commits */
	if (!expect(&ps, '{'))
		goto out;
	if (!expect(&ps, '}')) {
		do {
			err = parse_entry(&ps, &pairs, &cap, fn, ctx);
			if (err)
				goto out;
			info->entries++;
			if (ps.map)
				fs_map_drop(ps.map, (size_t)(ps.p - buf));
			err = STORE_ECORRUPT;
		} while (expect(&ps, ','));
		if (!expect(&ps, '}'))
			goto out;
	}
	err = parse_end(&ps, buf, info);
out:
	free(pairs);
	return err;
}

enum store_err commits_file_parse(const char *buf, size_t len,
				  commits_file_fn fn, void *ctx,
				  struct commits_file_parse_info *info)
{
	return parse(buf, len, NULL, fn, ctx, info);
}

/* The file as it is now, or as missing. */
static void describe(struct store *s, const struct commits_file_parse_info *in,
		     uint64_t ino, int exists)
{
	memset(&s->cf, 0, sizeof(s->cf));
	s->cf.known = 1;
	s->cf.exists = exists;
	if (!exists)
		return;
	s->cf.size = in->end;
	s->cf.close = in->close;
	s->cf.entries = in->entries;
	s->cf.ino = ino;
}

/* Cut an unfinished append off the file, durably. */
static enum store_err trim(struct store *s, uint64_t size)
{
	enum store_err err;
	int fd = -1, created = 0;

	err = fs_open_rw(&s->fs, COMMITS_FILE, &fd, &created);
	if (!err)
		err = fs_truncate(&s->fs, fd, size, "open.commits.trim");
	if (!err)
		err = fs_fdatasync(&s->fs, fd, "open.commits.trim.sync");
	fs_close_fd(fd);
	return err;
}

enum store_err commits_file_load(struct store *s, commits_file_fn fn, void *ctx,
				 int at_open)
{
	struct commits_file_parse_info info;
	struct fs_map m;
	enum store_err err;

	err = fs_map(&s->fs, COMMITS_FILE, &m);
	if (err == STORE_ENOCOMMIT) {
		if (at_open)
			describe(s, NULL, 0, 0);
		return STORE_OK;
	}
	if (err)
		return err;
	err = parse(m.p, m.len, &m, fn, ctx, &info);
	if (!err && at_open && info.tail)
		err = trim(s, info.end);
	if (!err && at_open && !info.entries && !info.end)
		info.end = m.len; /* blank: as if absent, but there */
	if (!err && at_open)
		describe(s, &info, m.ino, 1);
	fs_unmap(&m);
	return err;
}

enum store_err commits_file_write(struct store *s, fs_fill_fn fill, void *ctx,
				  uint64_t entries)
{
	struct commits_file_parse_info info = {0, 0, 0, 0};
	uint64_t written = 0, size, ino;
	enum store_err err;
	int fd = -1;

	s->cf.known = 0; /* until the file is known again */
	err = fs_write_atomic_fn(&s->fs, COMMITS_FILE, fill, ctx,
				 "persist.write", &written);
	if (!err)
		err = fs_open_ro(&s->fs, COMMITS_FILE, 0, &fd);
	if (!err)
		err = fs_identity(fd, &size, &ino);
	fs_close_fd(fd);
	if (err)
		return err;
	/* the text ends in "}\n" */
	info.close = written >= 2 ? written - 2 : 0;
	info.end = written;
	info.entries = entries;
	describe(s, &info, ino, 1);
	return STORE_OK;
}

/* 1 when the file is still what s->cf says: its size, inode, final '}'. */
static int as_known(struct store *s, int fd)
{
	uint64_t size, ino;
	char c;

	if (fs_identity(fd, &size, &ino) || size != s->cf.size ||
	    ino != s->cf.ino)
		return 0;
	return fs_read(fd, &c, 1, s->cf.close) == STORE_OK && c == '}';
}

enum store_err commits_file_append(struct store *s, fs_fill_fn fill, void *ctx,
				   uint64_t entries, int *whole)
{
	struct commits_file *cf = &s->cf;
	uint64_t written = 0;
	enum store_err err;
	int fd = -1, created = 0;

	*whole = 1;
	if (!cf->known || !cf->exists || (!cf->entries && entries))
		return STORE_OK;
	err = fs_open_rw(&s->fs, COMMITS_FILE, &fd, &created);
	if (err)
		return err;
	if (created) { /* gone meanwhile: not ours to append to */
		fs_close_fd(fd);
		(void)fs_unlink(&s->fs, COMMITS_FILE);
		return STORE_OK;
	}
	if (!as_known(s, fd) || !entries) {
		*whole = !entries ? !as_known(s, fd) : 1;
		fs_close_fd(fd);
		return STORE_OK; /* !entries: nothing to add to a file as known
				  */
	}
	*whole = 0;
	cf->known = 0; /* until the append is through */
	err = fs_append_fn(&s->fs, fd, cf->size, fill, ctx, "persist.append",
			   &written);
	if (!err)
		err = fs_fdatasync(&s->fs, fd, "persist.append.sync");
	/* the flip: the old final '}' becomes a space */
	if (!err)
		err = fs_write(&s->fs, fd, " ", 1, cf->close, "persist.close");
	if (!err)
		err = fs_fdatasync(&s->fs, fd, "persist.close.sync");
	if (err) { /* put the file back as it was; known again if that works */
		if (!fs_write(&s->fs, fd, "}", 1, cf->close, NULL) &&
		    !fs_truncate(&s->fs, fd, cf->size, NULL) &&
		    !fs_fdatasync(&s->fs, fd, NULL))
			cf->known = 1;
		fs_close_fd(fd);
		return err;
	}
	fs_close_fd(fd);
	cf->close = cf->size + written - 2;
	cf->size += written;
	cf->entries += entries;
	cf->known = 1;
	return STORE_OK;
}

/* --- the commits store as text, in pieces -------------------------------- */

struct store_commits_reader {
	struct store *s;
	struct store_id *ids;
	size_t n, next;
	uint64_t entries; /* written so far */
	int append;	  /* no "{"; every commit after ",\n" */
	int phase;	  /* 0: "{" next; 1: commits; 2: the end; 3: done */
	struct commits_cursor cur;
	char *buf;
	size_t len, off, cap;
};

/* The ids of what = COMMITS_READ_PERSISTED, but skip. store.lock held. */
static enum store_err persisted_ids(struct store *s,
				    const struct store_id *skip,
				    struct store_id **ids, size_t *n)
{
	const struct commits_entry *c;
	size_t i, k = 0;

	*ids = malloc((s->cs.n ? s->cs.n : 1) * sizeof(**ids));
	if (!*ids)
		return STORE_ENOMEM;
	for (i = 0; i < s->cs.n; i++) {
		c = s->cs.v[i];
		if (c->persisted && !(skip && store_id_equal(&c->id, skip)))
			(*ids)[k++] = c->id;
	}
	*n = k;
	return STORE_OK;
}

enum store_err commits_file_reader(struct store *s, enum commits_read what,
				   const struct store_id *skip,
				   struct store_commits_reader **out)
{
	struct store_commits_reader *r = calloc(1, sizeof(*r));
	enum store_err err;

	*out = NULL;
	if (!r)
		return STORE_ENOMEM;
	r->s = s;
	r->append = what == COMMITS_READ_UNPERSISTED;
	pthread_mutex_lock(&s->lock);
	if (what == COMMITS_READ_PERSISTED)
		err = persisted_ids(s, skip, &r->ids, &r->n);
	else
		err = commits_ids(&s->cs, r->append, &r->ids, &r->n);
	pthread_mutex_unlock(&s->lock);
	if (err) {
		free(r);
		return err;
	}
	*out = r;
	return STORE_OK;
}

size_t commits_file_reader_count(const struct store_commits_reader *r)
{
	return r->n;
}

void commits_file_reader_mark(const struct store_commits_reader *r)
{
	size_t i;

	pthread_mutex_lock(&r->s->lock);
	for (i = 0; i < r->n; i++)
		commits_set_persisted(&r->s->cs, &r->ids[i], 1);
	pthread_mutex_unlock(&r->s->lock);
}

void commits_file_reader_close(struct store_commits_reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->s->lock);
	commits_cursor_release(&r->s->cs, &r->cur);
	pthread_mutex_unlock(&r->s->lock);
	free(r->ids);
	free(r->buf);
	free(r);
}

static enum store_err reader_room(struct store_commits_reader *r, size_t n)
{
	char *b;

	if (n <= r->cap)
		return STORE_OK;
	b = realloc(r->buf, n);
	if (!b)
		return STORE_ENOMEM;
	r->buf = b;
	r->cap = n;
	return STORE_OK;
}

/* The next commit's text into r->buf; r->len 0 when none is left. */
static enum store_err reader_commit(struct store_commits_reader *r)
{
	struct store *s = r->s;
	const struct commits_entry *c;
	const struct store_pair *pairs = NULL;
	const struct store_id *id;
	enum store_err err = STORE_OK;
	size_t n = 0;

	while (r->next < r->n) {
		id = &r->ids[r->next++];
		pthread_mutex_lock(&s->lock);
		c = commits_find(&s->cs, id);
		if (c) /* into the cursor's own memory: read after unlock */
			err = commits_cursor_pairs(&s->cs, &r->cur, c, &pairs,
						   &n);
		pthread_mutex_unlock(&s->lock);
		if (err)
			return err;
		if (!c)
			continue; /* deleted meanwhile */
		err = reader_room(r, 2 + commits_file_entry_room(n));
		if (err)
			return err;
		if (r->append || r->entries)
			r->buf[r->len++] = ',';
		r->buf[r->len++] = '\n';
		r->len += commits_file_entry(r->buf + r->len, id, pairs, n);
		r->entries++;
		return STORE_OK;
	}
	return STORE_OK;
}

/* Refill r->buf with the next piece of the text. */
static enum store_err reader_fill(struct store_commits_reader *r)
{
	enum store_err err;

	r->len = r->off = 0;
	err = reader_room(r, 4);
	if (err)
		return err;
	if (r->phase == 0) {
		r->phase = 1;
		if (!r->append) {
			r->buf[r->len++] = '{';
			return STORE_OK;
		}
	}
	if (r->phase == 1) {
		err = reader_commit(r);
		if (err || r->len)
			return err;
		r->phase = 2;
	}
	if (r->phase == 2) {
		r->phase = 3;
		if (r->append || r->entries)
			r->buf[r->len++] = '\n';
		memcpy(r->buf + r->len, "}\n", 2);
		r->len += 2;
	}
	return STORE_OK;
}

enum store_err store_commits_read(struct store_commits_reader *r, char *buf,
				  size_t cap, size_t *got)
{
	enum store_err err;
	size_t k;

	*got = 0;
	while (*got < cap) {
		if (r->off == r->len) {
			if (r->phase == 3)
				break;
			err = reader_fill(r);
			if (err)
				return err;
			continue;
		}
		k = r->len - r->off;
		if (k > cap - *got)
			k = cap - *got;
		memcpy(buf + *got, r->buf + r->off, k);
		r->off += k;
		*got += k;
	}
	return STORE_OK;
}

enum store_err commits_file_reader_fill(void *ctx, char *out, size_t cap,
					size_t *got)
{
	return store_commits_read(ctx, out, cap, got);
}

/* --- loading at open, here or in the background -------------------------- */

static enum store_err load_one(void *ctx, const struct store_id *id,
			       const struct store_pair *pairs, size_t n)
{
	struct store *s = ctx;
	enum store_err err = STORE_EIO;

	pthread_mutex_lock(&s->lock);
	if (!s->load.stop) {
		err = commits_add(&s->cs, id, pairs, n, 1);
		s->load.loaded++;
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

static void *load_thread(void *arg)
{
	struct store *s = arg;
	enum store_err err = commits_file_load(s, load_one, s, 1);

	pthread_mutex_lock(&s->lock);
	s->load.err = err;
	s->load.done = 1;
	pthread_cond_broadcast(&s->load.cv);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

enum store_err commits_file_open_load(struct store *s, uint64_t bytes)
{
	uint64_t size = 0;

	s->load.done = 1;
	if (!fs_exists(&s->fs, COMMITS_FILE, &size) || size <= bytes)
		return commits_file_load(s, load_one, s, 1);
	s->load.done = 0;
	if (pthread_create(&s->load.thread, NULL, load_thread, s)) {
		s->load.done = 1;
		return commits_file_load(s, load_one, s, 1);
	}
	s->load.started = 1;
	return STORE_OK;
}

enum store_err store_commits_ready(struct store *s)
{
	enum store_err err;

	pthread_mutex_lock(&s->lock);
	while (!s->load.done)
		pthread_cond_wait(&s->load.cv, &s->lock);
	err = s->load.err;
	pthread_mutex_unlock(&s->lock);
	return err;
}

void commits_file_load_stop(struct store *s)
{
	if (!s->load.started)
		return;
	pthread_mutex_lock(&s->lock);
	s->load.stop = 1;
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->load.thread, NULL);
	s->load.started = 0;
}
