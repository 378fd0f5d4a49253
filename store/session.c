/*
 * session.c - sessions: a base state plus private writes.
 *
 * A session holds a reference to its base state, whose files are never
 * modified, so it reads them without any lock of the store. Its writes go
 * page by page (copy on write) into an overlay per module (overlay.c), in
 * memory up to the store's bound on sessions' memory and in a file beyond.
 * The commit of a session is in commit.c.
 */
#include "session.h"
#include "commits.h"
#include "fs.h"
#include "names.h"
#include "state.h"
#include "store_internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec;
}

static void smod_free(struct store *s, struct smod *sm)
{
	if (!sm)
		return;
	fs_close_fd(sm->base_fd);
	overlay_release(s, &sm->ov);
	free(sm);
}

/* Drop what the session holds; it stays allocated until its last ref. */
static void session_release(struct store *s, struct session *se)
{
	size_t i;

	for (i = 0; i < se->nmods; i++)
		smod_free(s, se->mods[i]);
	free(se->mods);
	se->mods = NULL;
	se->nmods = se->cap = 0;
	state_unref(se->base);
	se->base = NULL;
	se->dead = 1;
}

static void session_put(struct store *s, struct session *se)
{
	if (!se || atomic_fetch_sub(&se->refs, 1) != 1)
		return;
	session_release(s, se);
	pthread_rwlock_destroy(&se->lock);
	free(se);
}

static struct session *session_get(struct store *s, const struct store_id *sid)
{
	struct session *se = NULL;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->sess.n; i++) {
		if (store_id_equal(&s->sess.v[i]->id, sid)) {
			se = s->sess.v[i];
			atomic_fetch_add(&se->refs, 1);
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (se)
		atomic_store(&se->last_used, now_seconds());
	return se;
}

/* Take se out of the table; 1 if it was there (its table ref passes on). */
static int session_unlink(struct store *s, struct session *se)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->sess.n; i++) {
		if (s->sess.v[i] == se) {
			memmove(&s->sess.v[i], &s->sess.v[i + 1],
				(s->sess.n - i - 1) * sizeof(*s->sess.v));
			s->sess.n--;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

/* Unlink, release and drop the table's reference; 0 if already gone. */
static int session_end(struct store *s, struct session *se)
{
	int linked = session_unlink(s, se);

	pthread_rwlock_wrlock(&se->lock);
	session_release(s, se);
	pthread_rwlock_unlock(&se->lock);
	if (linked)
		session_put(s, se);
	if (linked && s->session_ended)
		s->session_ended(s); /* files a deleted base kept may go */
	return linked;
}

enum store_err session_bases(struct store *s, struct state ***out, size_t *n)
{
	struct state **v;
	size_t i, k = 0;

	pthread_mutex_lock(&s->lock);
	v = malloc((s->sess.n ? s->sess.n : 1) * sizeof(*v));
	for (i = 0; v && i < s->sess.n; i++)
		if (s->sess.v[i]->base)
			v[k++] = state_ref(s->sess.v[i]->base);
	pthread_mutex_unlock(&s->lock);
	*out = v;
	*n = k;
	return v ? STORE_OK : STORE_ENOMEM;
}

void session_free_all(struct store *s)
{
	s->session_ended = NULL; /* closing: nothing to collect */
	while (s->sess.n > 0)
		session_end(s, s->sess.v[0]);
	free(s->sess.v);
	s->sess.v = NULL;
	s->sess.cap = 0;
}

enum store_err store_session_begin(struct store *s, const struct store_id *base,
				   struct store_session_info *info)
{
	struct store_pair *pairs = NULL;
	struct state *st = NULL;
	struct session *se = NULL;
	enum store_err err;
	size_t n;

	pthread_mutex_lock(&s->lock);
	err = s->max_sessions && s->sess.n >= s->max_sessions ? STORE_EBUSY
							      : STORE_OK;
	pthread_mutex_unlock(&s->lock);
	if (err)
		return err;
	if (base) {
		err = store_commits_ready(s);
		if (err)
			return err;
		pthread_mutex_lock(&s->lock);
		err = commits_get_pairs(&s->cs, base, &pairs, &n);
		pthread_mutex_unlock(&s->lock);
		if (!err)
			err = state_from_pairs(s, pairs, n, &st);
		free(pairs);
		if (err)
			return err;
	} else {
		st = state_current(s);
	}
	se = calloc(1, sizeof(*se));
	if (!se) {
		err = STORE_ENOMEM;
		goto fail;
	}
	if (pthread_rwlock_init(&se->lock, NULL)) {
		free(se);
		se = NULL;
		err = STORE_ENOMEM;
		goto fail;
	}
	atomic_init(&se->refs, 1);
	atomic_init(&se->last_used, now_seconds());
	randombytes_buf(se->id.b, sizeof(se->id.b));
	se->base = st;
	se->has_base = st->n > 0;
	se->base_id = st->root;
	st = NULL;

	pthread_mutex_lock(&s->lock);
	if (s->max_sessions && s->sess.n >= s->max_sessions) {
		err = STORE_EBUSY;
	} else if (s->sess.n == s->sess.cap) {
		size_t cap = s->sess.cap ? s->sess.cap * 2 : 16;
		struct session **v = realloc(s->sess.v, cap * sizeof(*v));

		if (!v) {
			err = STORE_ENOMEM;
		} else {
			s->sess.v = v;
			s->sess.cap = cap;
		}
	}
	if (!err)
		s->sess.v[s->sess.n++] = se;
	pthread_mutex_unlock(&s->lock);
	if (err)
		goto fail;
	memset(info, 0, sizeof(*info));
	info->id = se->id;
	info->has_base = se->has_base;
	if (se->has_base)
		info->base = se->base_id;
	return STORE_OK;
fail:
	session_put(s, se);
	state_unref(st);
	return err;
}

enum store_err store_session_list(struct store *s,
				  struct store_session_info **out, size_t *n)
{
	struct store_session_info *v = NULL;
	size_t i;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	if (s->sess.n) {
		v = calloc(s->sess.n, sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&s->lock);
			return STORE_ENOMEM;
		}
	}
	for (i = 0; i < s->sess.n; i++) {
		v[i].id = s->sess.v[i]->id;
		v[i].has_base = s->sess.v[i]->has_base;
		if (v[i].has_base)
			v[i].base = s->sess.v[i]->base_id;
	}
	*n = s->sess.n;
	pthread_mutex_unlock(&s->lock);
	*out = v;
	return STORE_OK;
}

/* --- a session's modules ------------------------------------------------- */

static struct smod *smod_find(struct session *se, const struct store_id *mod,
			      size_t *pos)
{
	size_t lo = 0, hi = se->nmods, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(mod->b, se->mods[mid]->mod->id.b, STORE_ID_BYTES);
		if (c == 0)
			return se->mods[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (pos)
		*pos = lo;
	return NULL;
}

/* The session's module, added on first use. Write lock held. */
static enum store_err smod_get(struct store *s, struct session *se,
			       const struct store_id *mod, struct smod **out)
{
	struct smod *sm;
	struct module *m;
	char name[NAME_LEN];
	size_t pos = 0;

	*out = smod_find(se, mod, &pos);
	if (*out)
		return STORE_OK;
	pthread_mutex_lock(&s->lock);
	m = modules_find_locked(s, mod);
	pthread_mutex_unlock(&s->lock);
	if (!m)
		return STORE_ENOMODULE;
	if (se->nmods == se->cap) {
		size_t cap = se->cap ? se->cap * 2 : 8;
		struct smod **v = realloc(se->mods, cap * sizeof(*v));

		if (!v)
			return STORE_ENOMEM;
		se->mods = v;
		se->cap = cap;
	}
	sm = calloc(1, sizeof(*sm));
	if (!sm)
		return STORE_ENOMEM;
	sm->mod = m;
	sm->base_fd = -1;
	overlay_init(&sm->ov);
	sm->be = state_find(se->base, mod);
	sm->base_size = sm->be ? sm->be->size : m->init_size;
	sm->size = sm->base_size;
	if (sm->be) {
		enum store_err err;

		names_commit(name, m->hex, &sm->be->mc);
		err = fs_open_ro(&s->fs, name, 0, &sm->base_fd);
		if (err) {
			free(sm);
			return err;
		}
	}
	memmove(&se->mods[pos + 1], &se->mods[pos],
		(se->nmods - pos) * sizeof(*se->mods));
	se->mods[pos] = sm;
	se->nmods++;
	*out = sm;
	return STORE_OK;
}

int session_is_dirty(const struct smod *sm, uint64_t page)
{
	return overlay_is_dirty(&sm->ov, page);
}

/* Read from the base (or zeros) for the part of [off, off+len) it covers. */
static enum store_err read_base(const struct smod *sm, void *buf, size_t len,
				uint64_t off)
{
	size_t from_file = 0;

	if (sm->base_fd >= 0 && off < sm->base_size)
		from_file = sm->base_size - off < len
				? (size_t)(sm->base_size - off)
				: len;
	if (from_file) {
		enum store_err err = fs_read(sm->base_fd, buf, from_file, off);

		if (err)
			return err;
	}
	memset((char *)buf + from_file, 0, len - from_file);
	return STORE_OK;
}

/* Read the view: runs of dirty pages from the overlay, the rest from base. */
static enum store_err smod_read(const struct smod *sm, void *buf, size_t len,
				uint64_t off)
{
	char *p = buf;
	enum store_err err;

	while (len > 0) {
		uint64_t page = off / STORE_PAGE_SIZE, end;
		int dirty = session_is_dirty(sm, page);
		size_t n;

		end = (page + 1) * STORE_PAGE_SIZE;
		while (end < off + len &&
		       session_is_dirty(sm, end / STORE_PAGE_SIZE) == dirty)
			end += STORE_PAGE_SIZE;
		n = end - off < len ? (size_t)(end - off) : len;
		err = dirty ? overlay_read(&sm->ov, p, n, off)
			    : read_base(sm, p, n, off);
		if (err)
			return err;
		p += n;
		off += n;
		len -= n;
	}
	return STORE_OK;
}

/* Look the session up and lock it; ENOSESSION when it is gone. */
enum store_err session_lock(struct store *s, const struct store_id *sid,
			    int write, struct session **out)
{
	struct session *se = session_get(s, sid);

	*out = NULL;
	if (!se)
		return STORE_ENOSESSION;
	if (write)
		pthread_rwlock_wrlock(&se->lock);
	else
		pthread_rwlock_rdlock(&se->lock);
	if (se->dead) {
		pthread_rwlock_unlock(&se->lock);
		session_put(s, se);
		return STORE_ENOSESSION;
	}
	*out = se;
	return STORE_OK;
}

void session_unlock(struct store *s, struct session *se)
{
	pthread_rwlock_unlock(&se->lock);
	session_put(s, se);
}

enum store_err store_session_size(struct store *s, const struct store_id *sid,
				  const struct store_id *mod, uint64_t *size)
{
	struct session *se;
	struct smod *sm;
	enum store_err err;

	err = session_lock(s, sid, 1, &se);
	if (err)
		return err;
	err = smod_get(s, se, mod, &sm);
	if (!err)
		*size = sm->size;
	session_unlock(s, se);
	return err;
}

enum store_err store_session_read(struct store *s, const struct store_id *sid,
				  const struct store_id *mod, uint64_t off,
				  void *buf, size_t len)
{
	struct session *se;
	struct smod *sm;
	enum store_err err;

	err = session_lock(s, sid, 0, &se);
	if (err)
		return err;
	sm = smod_find(se, mod, NULL);
	if (!sm) { /* first use: add it under the write lock */
		pthread_rwlock_unlock(&se->lock);
		pthread_rwlock_wrlock(&se->lock);
		err = se->dead ? STORE_ENOSESSION : smod_get(s, se, mod, &sm);
		if (err)
			goto out;
	}
	if (off > sm->size || len > sm->size - off)
		err = STORE_ERANGE;
	else
		err = smod_read(sm, buf, len, off);
out:
	session_unlock(s, se);
	return err;
}

/* The base of a page a write changes in part, for overlay_write(). */
static enum store_err base_page(void *ctx, uint64_t page, unsigned char *buf)
{
	return read_base(ctx, buf, STORE_PAGE_SIZE, page * STORE_PAGE_SIZE);
}

enum store_err store_session_write(struct store *s, const struct store_id *sid,
				   const struct store_id *mod, uint64_t off,
				   const void *buf, size_t len)
{
	struct session *se;
	struct smod *sm;
	enum store_err err;
	uint64_t end, newsize;

	err = session_lock(s, sid, 1, &se);
	if (err)
		return err;
	err = smod_get(s, se, mod, &sm);
	if (err || len == 0)
		goto out;
	err = STORE_ETOOBIG;
	if (off > s->max_module_size || len > s->max_module_size - off)
		goto out;
	end = off + len;
	newsize =
	    (end + STORE_PAGE_SIZE - 1) / STORE_PAGE_SIZE * STORE_PAGE_SIZE;
	if (newsize < sm->size)
		newsize = sm->size;
	if (newsize > s->max_module_size)
		goto out;
	err = overlay_write(s, &sm->ov, newsize / STORE_PAGE_SIZE, off, buf,
			    len, base_page, sm);
	if (err)
		goto out;
	sm->size = newsize;
out:
	session_unlock(s, se);
	return err;
}

enum store_err store_session_drop(struct store *s, const struct store_id *sid)
{
	struct session *se = session_get(s, sid);
	int linked;

	if (!se)
		return STORE_ENOSESSION;
	linked = session_end(s, se);
	session_put(s, se);
	return linked ? STORE_OK : STORE_ENOSESSION;
}

enum store_err store_session_expire(struct store *s, unsigned int idle_seconds,
				    size_t *dropped)
{
	long long now = now_seconds();
	struct session *se;
	size_t n = 0, i;

	for (;;) {
		se = NULL;
		pthread_mutex_lock(&s->lock);
		for (i = 0; i < s->sess.n; i++) {
			if (now - atomic_load(&s->sess.v[i]->last_used) >=
			    (long long)idle_seconds) {
				se = s->sess.v[i];
				atomic_fetch_add(&se->refs, 1);
				break;
			}
		}
		pthread_mutex_unlock(&s->lock);
		if (!se)
			break;
		session_end(s, se);
		session_put(s, se);
		n++;
	}
	if (dropped)
		*dropped = n;
	return STORE_OK;
}

enum store_err session_read_page(const struct smod *sm, uint64_t page,
				 void *buf)
{
	return overlay_read(&sm->ov, buf, STORE_PAGE_SIZE,
			    page * STORE_PAGE_SIZE);
}

enum store_err session_write_dirty(struct store *s, const struct smod *sm,
				   int fd, uint64_t *written)
{
	return overlay_write_dirty(s, &sm->ov, sm->size / STORE_PAGE_SIZE, fd,
				   written);
}

void session_finish(struct store *s, struct session *se)
{
	int linked;

	/*
	 * Out of the table first: a session in the table has its base, which
	 * session_bases() reads under store.lock. Then ended while its write
	 * lock is held.
	 */
	linked = session_unlink(s, se);
	session_release(s, se);
	pthread_rwlock_unlock(&se->lock);
	if (linked)
		session_put(s, se); /* the table's reference */
	session_put(s, se);
	if (linked && s->session_ended)
		s->session_ended(s);
}
