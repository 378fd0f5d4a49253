/*
 * session.c - sessions: a base state plus private writes.
 *
 * A session holds a reference to its base state, whose files are never
 * modified, so it reads them without any lock of the store. Its writes go
 * page by page (copy on write) into a sparse overlay file per module, with
 * a bitmap of dirty pages. The overlay is a memory file while the store's
 * overlays hold less than OV_MEM_MAX bytes, and an unlinked file in the
 * state directory beyond. The commit of a session is in commit.c.
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

/* Sessions' overlays are memory files while they hold less than this. */
#define OV_MEM_MAX ((uint64_t)64 << 20)

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
	fs_close_fd(sm->ov_fd);
	if (sm->ov_in_mem)
		atomic_fetch_sub(&s->sess.ov_mem,
				 (uint64_t)sm->ndirty * STORE_PAGE_SIZE);
	free(sm->dirty);
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
	return linked;
}

void session_free_all(struct store *s)
{
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
	sm->ov_fd = -1;
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
	return page / 8 < sm->dirty_cap &&
	       (sm->dirty[page / 8] >> (page % 8) & 1);
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
		err = dirty ? fs_read(sm->ov_fd, p, n, off)
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

static void mark_dirty(struct store *s, struct smod *sm, uint64_t first,
		       uint64_t last)
{
	uint64_t p, added = 0;

	for (p = first; p <= last; p++) {
		if (!session_is_dirty(sm, p)) {
			sm->dirty[p / 8] |= (unsigned char)(1u << (p % 8));
			added++;
		}
	}
	sm->ndirty += added;
	if (sm->ov_in_mem)
		atomic_fetch_add(&s->sess.ov_mem, added * STORE_PAGE_SIZE);
}

/* The overlay of sm: in memory while there is room, else on disk. */
static enum store_err overlay_create(struct store *s, struct smod *sm,
				     uint64_t size)
{
	if (atomic_load(&s->sess.ov_mem) + size <= OV_MEM_MAX &&
	    fs_memfd(&sm->ov_fd) == STORE_OK) {
		sm->ov_in_mem = 1;
		return STORE_OK;
	}
	return fs_anon_create(&s->fs, &sm->ov_fd);
}

/* Copy page into the overlay before a partial write changes it. */
static enum store_err cow_page(struct store *s, struct smod *sm, uint64_t page)
{
	unsigned char buf[STORE_PAGE_SIZE];
	enum store_err err;

	if (session_is_dirty(sm, page))
		return STORE_OK;
	err = read_base(sm, buf, sizeof(buf), page * STORE_PAGE_SIZE);
	if (!err)
		err = fs_write(&s->fs, sm->ov_fd, buf, sizeof(buf),
			       page * STORE_PAGE_SIZE, "session.write");
	return err;
}

enum store_err store_session_write(struct store *s, const struct store_id *sid,
				   const struct store_id *mod, uint64_t off,
				   const void *buf, size_t len)
{
	struct session *se;
	struct smod *sm;
	enum store_err err;
	uint64_t end, newsize, first, last;
	size_t need;

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
	if (sm->ov_fd < 0) {
		err = overlay_create(s, sm, newsize);
		if (err)
			goto out;
	}
	need = (size_t)((newsize / STORE_PAGE_SIZE + 7) / 8);
	if (need > sm->dirty_cap) {
		unsigned char *d = realloc(sm->dirty, need);

		err = STORE_ENOMEM;
		if (!d)
			goto out;
		memset(d + sm->dirty_cap, 0, need - sm->dirty_cap);
		sm->dirty = d;
		sm->dirty_cap = need;
	}
	first = off / STORE_PAGE_SIZE;
	last = (end - 1) / STORE_PAGE_SIZE;
	err = STORE_OK;
	if (off % STORE_PAGE_SIZE || end < (first + 1) * STORE_PAGE_SIZE)
		err = cow_page(s, sm, first);
	if (!err && last != first && end % STORE_PAGE_SIZE)
		err = cow_page(s, sm, last);
	if (!err)
		err =
		    fs_write(&s->fs, sm->ov_fd, buf, len, off, "session.write");
	if (err)
		goto out;
	mark_dirty(s, sm, first, last);
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
	return fs_read(sm->ov_fd, buf, STORE_PAGE_SIZE, page * STORE_PAGE_SIZE);
}

enum store_err session_write_dirty(struct store *s, const struct smod *sm,
				   int fd, uint64_t *written)
{
	uint64_t page, npages = sm->size / STORE_PAGE_SIZE, run;
	enum store_err err;

	for (page = 0; page < npages; page += run) {
		run = 1;
		if (!session_is_dirty(sm, page))
			continue;
		while (page + run < npages && session_is_dirty(sm, page + run))
			run++;
		err =
		    fs_copy_bytes(&s->fs, sm->ov_fd, fd, page * STORE_PAGE_SIZE,
				  run * STORE_PAGE_SIZE);
		if (err)
			return err;
		*written += run * STORE_PAGE_SIZE;
	}
	return STORE_OK;
}

void session_finish(struct store *s, struct session *se)
{
	session_release(s, se); /* ends it while its write lock is held */
	pthread_rwlock_unlock(&se->lock);
	if (session_unlink(s, se))
		session_put(s, se); /* the table's reference */
	session_put(s, se);
}
