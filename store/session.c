/*
 * session.c - sessions: a base state plus private writes, and commit.
 *
 * A session holds a reference to its base state, whose files are never
 * modified, so it reads them without any lock of the store. Its writes go
 * page by page (copy on write) into a sparse overlay file per module, with
 * a bitmap of dirty pages. The overlay is a memory file (memfd) while the
 * store's overlays hold less than OV_MEM_MAX bytes, and an unlinked file in
 * the state directory beyond: small sessions touch no disk until they
 * commit, and the memory they hold stays bounded whatever the writes. Commit
 * copies the base file (holes stay holes), lays the dirty pages over it and
 * rehashes only the dirty pages' paths in the module's Merkle tree. Only the
 * switch of names takes the store's op_lock.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct smod {
	struct module *mod;
	const struct entry *be; /* in the base state; NULL: initial memory */
	uint64_t base_size;
	uint64_t size;
	int base_fd;		      /* -1 for initial memory */
	int ov_fd;		      /* -1 until the first write */
	atomic_uint_fast64_t *ov_mem; /* store.ov_mem if ov_fd is a memfd */
	unsigned char *dirty;
	size_t dirty_cap; /* bytes of the bitmap */
	size_t ndirty;
};

struct session {
	struct store_id id;
	pthread_rwlock_t lock;
	atomic_int refs;
	int dead;
	struct state *base;
	int has_base;
	struct store_id base_id;
	struct smod **mods; /* sorted by module id */
	size_t nmods, cap;
	atomic_llong last_used; /* seconds, CLOCK_MONOTONIC */
};

static long long now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec;
}

static void smod_free(struct smod *sm)
{
	if (!sm)
		return;
	if (sm->base_fd >= 0)
		close(sm->base_fd);
	if (sm->ov_fd >= 0)
		close(sm->ov_fd);
	if (sm->ov_mem)
		atomic_fetch_sub(sm->ov_mem,
				 (uint64_t)sm->ndirty * STORE_PAGE_SIZE);
	free(sm->dirty);
	free(sm);
}

/* Drop what the session holds; it stays allocated until its last ref. */
static void session_release(struct session *se)
{
	size_t i;

	for (i = 0; i < se->nmods; i++)
		smod_free(se->mods[i]);
	free(se->mods);
	se->mods = NULL;
	se->nmods = se->cap = 0;
	state_unref(se->base);
	se->base = NULL;
	se->dead = 1;
}

static void session_put(struct session *se)
{
	if (!se || atomic_fetch_sub(&se->refs, 1) != 1)
		return;
	session_release(se);
	pthread_rwlock_destroy(&se->lock);
	free(se);
}

static struct session *session_get(struct store *s, const struct store_id *sid)
{
	struct session *se = NULL;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nsess; i++) {
		if (store_id_equal(&s->sess[i]->id, sid)) {
			se = s->sess[i];
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
	for (i = 0; i < s->nsess; i++) {
		if (s->sess[i] == se) {
			memmove(&s->sess[i], &s->sess[i + 1],
				(s->nsess - i - 1) * sizeof(*s->sess));
			s->nsess--;
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
	session_release(se);
	pthread_rwlock_unlock(&se->lock);
	if (linked)
		session_put(se);
	return linked;
}

void session_free_all(struct store *s)
{
	while (s->nsess > 0)
		session_end(s, s->sess[0]);
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
	err = s->max_sessions && s->nsess >= s->max_sessions ? STORE_EBUSY
							     : STORE_OK;
	pthread_mutex_unlock(&s->lock);
	if (err)
		return err;
	if (base) {
		err = store_commit_get(s, base, &pairs, &n);
		if (!err)
			err = state_from_pairs(s, pairs, n, &st);
		free(pairs);
		if (err)
			return err;
	} else {
		st = current_state(s);
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
	if (s->max_sessions && s->nsess >= s->max_sessions) {
		err = STORE_EBUSY;
	} else if (s->nsess == s->capsess) {
		size_t cap = s->capsess ? s->capsess * 2 : 16;
		struct session **v = realloc(s->sess, cap * sizeof(*v));

		if (!v) {
			err = STORE_ENOMEM;
		} else {
			s->sess = v;
			s->capsess = cap;
		}
	}
	if (!err)
		s->sess[s->nsess++] = se;
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
	session_put(se);
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
	if (s->nsess) {
		v = calloc(s->nsess, sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&s->lock);
			return STORE_ENOMEM;
		}
	}
	for (i = 0; i < s->nsess; i++) {
		v[i].id = s->sess[i]->id;
		v[i].has_base = s->sess[i]->has_base;
		if (v[i].has_base)
			v[i].base = s->sess[i]->base_id;
	}
	*n = s->nsess;
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
	m = module_find(s, mod);
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
		name_commit(name, m, &sm->be->mc);
		sm->base_fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
		if (sm->base_fd < 0) {
			enum store_err err = errno == ENOENT
						 ? STORE_ECORRUPT
						 : err_from_errno(errno);
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

static int is_dirty(const struct smod *sm, uint64_t page)
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
		enum store_err err = read_all(sm->base_fd, buf, from_file, off);

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
		int dirty = is_dirty(sm, page);
		size_t n;

		end = (page + 1) * STORE_PAGE_SIZE;
		while (end < off + len &&
		       is_dirty(sm, end / STORE_PAGE_SIZE) == dirty)
			end += STORE_PAGE_SIZE;
		n = end - off < len ? (size_t)(end - off) : len;
		err = dirty ? read_all(sm->ov_fd, p, n, off)
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
static enum store_err session_lock(struct store *s, const struct store_id *sid,
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
		session_put(se);
		return STORE_ENOSESSION;
	}
	*out = se;
	return STORE_OK;
}

static void session_unlock(struct session *se)
{
	pthread_rwlock_unlock(&se->lock);
	session_put(se);
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
	session_unlock(se);
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
	session_unlock(se);
	return err;
}

static void mark_dirty(struct smod *sm, uint64_t first, uint64_t last)
{
	uint64_t p, added = 0;

	for (p = first; p <= last; p++) {
		if (!is_dirty(sm, p)) {
			sm->dirty[p / 8] |= (unsigned char)(1u << (p % 8));
			added++;
		}
	}
	sm->ndirty += added;
	if (sm->ov_mem)
		atomic_fetch_add(sm->ov_mem, added * STORE_PAGE_SIZE);
}

/* The overlay of sm: in memory while there is room, else on disk. */
static enum store_err overlay_create(struct store *s, struct smod *sm,
				     uint64_t size)
{
	if (atomic_load(&s->ov_mem) + size <= OV_MEM_MAX) {
		sm->ov_fd = memfd_create("modstore-overlay", MFD_CLOEXEC);
		if (sm->ov_fd >= 0) {
			sm->ov_mem = &s->ov_mem;
			return STORE_OK;
		}
	}
	return anon_create(s, &sm->ov_fd);
}

/* Copy page into the overlay before a partial write changes it. */
static enum store_err cow_page(struct store *s, struct smod *sm, uint64_t page)
{
	unsigned char buf[STORE_PAGE_SIZE];
	enum store_err err;

	if (is_dirty(sm, page))
		return STORE_OK;
	err = read_base(sm, buf, sizeof(buf), page * STORE_PAGE_SIZE);
	if (!err)
		err = write_all(s, sm->ov_fd, buf, sizeof(buf),
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
		err = write_all(s, sm->ov_fd, buf, len, off, "session.write");
	if (err)
		goto out;
	mark_dirty(sm, first, last);
	sm->size = newsize;
out:
	session_unlock(se);
	return err;
}

enum store_err store_session_drop(struct store *s, const struct store_id *sid)
{
	struct session *se = session_get(s, sid);
	int linked;

	if (!se)
		return STORE_ENOSESSION;
	linked = session_end(s, se);
	session_put(se);
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
		for (i = 0; i < s->nsess; i++) {
			if (now - atomic_load(&s->sess[i]->last_used) >=
			    (long long)idle_seconds) {
				se = s->sess[i];
				atomic_fetch_add(&se->refs, 1);
				break;
			}
		}
		pthread_mutex_unlock(&s->lock);
		if (!se)
			break;
		session_end(s, se);
		session_put(se);
		n++;
	}
	if (dropped)
		*dropped = n;
	return STORE_OK;
}

/* --- commit -------------------------------------------------------------- */

/* A changed module, prepared outside the store's locks. */
struct prep {
	struct smod *sm;
	struct store_id mc;
	struct tree *tree;
	char tmp[TMP_NAME_LEN]; /* the new commit file; "" once renamed */
};

static void prep_release(struct store *s, struct prep *p)
{
	if (p->tmp[0])
		unlinkat(s->dirfd, p->tmp, 0);
	p->tmp[0] = '\0';
	tree_unref(p->tree);
	p->tree = NULL;
}

/*
 * Write the new commit file, the base and then the dirty pages over it. The
 * commit's files are made durable together, by one flush of the file
 * system (sync_store), before they get their names.
 */
static enum store_err prep_file(struct store *s, struct prep *p)
{
	struct smod *sm = p->sm;
	enum store_err err;
	uint64_t page, npages = sm->size / STORE_PAGE_SIZE, run, copied = 0;
	int fd = -1, e;

	err = tmp_create(s, p->tmp, &fd);
	if (err) {
		p->tmp[0] = '\0';
		return err;
	}
	if ((e = fault_at(s, "commit.truncate")) ||
	    ftruncate(fd, (off_t)sm->size) < 0) {
		err = err_from_errno(e ? e : errno);
		goto out;
	}
	if (sm->base_fd >= 0) {
		err = copy_data(s, sm->base_fd, fd, 0, sm->base_size, &copied);
		if (err)
			goto out;
	}
	for (page = 0; page < npages; page += run) {
		run = 1;
		if (!is_dirty(sm, page))
			continue;
		while (page + run < npages && is_dirty(sm, page + run))
			run++;
		err = copy_bytes(s, sm->ov_fd, fd, page * STORE_PAGE_SIZE,
				 run * STORE_PAGE_SIZE);
		if (err)
			goto out;
		copied += run * STORE_PAGE_SIZE;
	}
	atomic_fetch_add(&s->bytes_written, copied);
out:
	close(fd);
	return err;
}

/* New id (and file, unless it exists) of a module with dirty pages. */
static enum store_err prep_module(struct store *s, struct smod *sm,
				  struct prep *p, int *changed)
{
	unsigned char page[STORE_PAGE_SIZE];
	struct tree *bt = NULL;
	size_t *dirty = NULL, nd = 0, npages = sm->size / STORE_PAGE_SIZE, i;
	enum store_err err;

	*changed = 0;
	memset(p, 0, sizeof(*p));
	p->sm = sm;
	if (sm->be) {
		err = entry_tree(s, (struct entry *)(uintptr_t)sm->be, &bt);
		if (err)
			return err;
	} else {
		bt = tree_new_zero(sm->base_size / STORE_PAGE_SIZE);
		if (!bt)
			return STORE_ENOMEM;
	}
	p->tree = tree_copy(bt, npages);
	dirty = malloc((sm->ndirty ? sm->ndirty : 1) * sizeof(*dirty));
	err = STORE_ENOMEM;
	if (!p->tree || !dirty)
		goto out;
	for (i = 0; i < npages; i++) {
		if (!is_dirty(sm, i))
			continue;
		err = read_all(sm->ov_fd, page, sizeof(page),
			       (uint64_t)i * STORE_PAGE_SIZE);
		if (err)
			goto out;
		hash_leaf_page(page, &p->tree->lv[0][i]);
		dirty[nd++] = i;
	}
	err = STORE_ENOMEM;
	if (tree_update(p->tree, dirty, nd, npages != bt->npages))
		goto out;
	tree_root(p->tree, &p->mc);
	err = STORE_OK;
	if (sm->be && store_id_equal(&p->mc, &sm->be->mc))
		goto out; /* the same bytes again: unchanged */
	*changed = 1;
	/*
	 * Written even when this memory was committed before: whether its
	 * file exists is decided under op_lock, where a failed commit can
	 * also take back the names it made without another depending on them.
	 */
	err = prep_file(s, p);
out:
	free(dirty);
	tree_unref(bt);
	if (err || !*changed)
		prep_release(s, p);
	return err;
}

static struct prep *prep_find(struct prep *v, size_t n, const struct module *m)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].sm->mod == m)
			return &v[i];
	return NULL;
}

/* The new commit files of a commit, for store_switch to put in place. */
struct srcs {
	size_t n;
	struct jsrc *v; /* room for every module */
};

static void src_add(struct srcs *sv, const struct module *m, const char *src)
{
	sv->v[sv->n].mod = m;
	snprintf(sv->v[sv->n].src, TMP_NAME_LEN, "%s", src);
	sv->n++;
}

/* 1 if the commit file of m and mc exists, 0 if not, -1 (errno) else. */
static int commit_file_exists(struct store *s, const struct module *m,
			      const struct store_id *mc)
{
	char name[NAME_LEN];
	struct stat sb;

	name_commit(name, m, mc);
	if (fstatat(s->dirfd, name, &sb, 0) == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

/* An entry of the initial memory of m; its file, if new, from .MOD_init. */
static enum store_err initial_entry(struct store *s, struct module *m,
				    struct entry *e, struct srcs *sv)
{
	int x;

	e->mod = m;
	e->size = m->init_size;
	e->tree = tree_new_zero((size_t)(m->init_size / STORE_PAGE_SIZE));
	if (!e->tree)
		return STORE_ENOMEM;
	tree_root(e->tree, &e->mc);
	x = commit_file_exists(s, m, &e->mc);
	if (x < 0)
		return err_from_errno(errno);
	if (x == 0)
		src_add(sv, m, SRC_INIT);
	return STORE_OK;
}

/* The new state: every module deployed now, from the preps or the base. */
static enum store_err build_state(struct store *s, struct session *se,
				  struct prep *preps, size_t np,
				  struct state **out, struct srcs *sv)
{
	struct module **mods = NULL;
	struct state *st = NULL;
	enum store_err err = STORE_ENOMEM;
	size_t n, i;

	*out = NULL;
	pthread_mutex_lock(&s->lock);
	n = s->nmods;
	mods = malloc((n ? n : 1) * sizeof(*mods));
	if (mods && n)
		memcpy(mods, s->mods, n * sizeof(*mods));
	pthread_mutex_unlock(&s->lock);
	if (!mods)
		goto out;
	st = state_new(n);
	if (!st)
		goto out;
	st->n = 0;
	for (i = 0; i < n; i++) {
		struct entry *e = &st->e[st->n];
		const struct prep *p = prep_find(preps, np, mods[i]);
		const struct entry *be = state_find(se->base, &mods[i]->id);

		if (p) {
			e->mod = mods[i];
			e->mc = p->mc;
			e->size = p->sm->size;
			e->tree = tree_ref(p->tree);
		} else if (be) {
			e->mod = be->mod;
			e->mc = be->mc;
			e->size = be->size;
			pthread_mutex_lock(
			    &s->tree_lock); /* be->tree may be set */
			e->tree = tree_ref(be->tree);
			pthread_mutex_unlock(&s->tree_lock);
		} else {
			err = initial_entry(s, mods[i], e, sv);
			if (err) {
				st->n++; /* so its tree is released */
				goto out;
			}
		}
		st->n++;
	}
	err = state_compute_root(st);
out:
	free(mods);
	if (err) {
		state_unref(st);
		st = NULL;
	}
	*out = st;
	return err;
}

static enum store_err check_root(struct store *s, const struct store_id *want)
{
	struct store_id root;

	if (!want)
		return STORE_OK;
	store_root(s, &root);
	return store_id_equal(&root, want) ? STORE_OK : STORE_EMISMATCH;
}

void store_commit_info_release(struct store_commit_info *ci)
{
	if (!ci)
		return;
	free(ci->pairs);
	memset(ci, 0, sizeof(*ci));
}

enum store_err store_session_commit(struct store *s, const struct store_id *sid,
				    const struct store_id *expect_root,
				    struct store_commit_info *out)
{
	struct session *se;
	struct prep *preps = NULL;
	struct state *st = NULL;
	struct store_pair *pairs = NULL;
	struct centry *ce = NULL;
	size_t np = 0, i;
	enum store_err err;
	struct srcs sv = {0, NULL};
	unsigned int flushed;
	int changed, op_locked = 0, keep = 0, x;

	memset(out, 0, sizeof(*out));
	err = session_lock(s, sid, 1, &se);
	if (err)
		return err;
	err = check_root(s, expect_root);
	if (err)
		goto out;
	preps = calloc(se->nmods ? se->nmods : 1, sizeof(*preps));
	err = STORE_ENOMEM;
	if (!preps)
		goto out;
	for (i = 0; i < se->nmods; i++) {
		if (!se->mods[i]->ndirty)
			continue;
		err = prep_module(s, se->mods[i], &preps[np], &changed);
		if (err)
			goto out;
		if (changed)
			np++;
	}
	/*
	 * The new files, under their temporary names, are durable before a
	 * journal names them: a name once made is only ever reused for the
	 * same bytes. This flush also makes the last switch durable.
	 */
	flushed = atomic_load(&s->switch_seq);
	if (np > 0) {
		err = sync_store(s, "commit.sync");
		if (err)
			goto out;
	}

	pthread_mutex_lock(&s->op_lock);
	op_locked = 1;
	err = store_unwedge(s);
	if (!err)
		err = check_root(s, expect_root);
	if (err)
		goto out;
	pthread_mutex_lock(&s->lock);
	sv.v = calloc(s->nmods + 1, sizeof(*sv.v));
	pthread_mutex_unlock(&s->lock);
	err = STORE_ENOMEM;
	if (!sv.v)
		goto out;
	/*
	 * Whether a file exists is decided under op_lock. A new one is put
	 * in place by the switch, under its journal; one that exists holds
	 * the same bytes.
	 */
	for (i = 0; i < np; i++) {
		x = commit_file_exists(s, preps[i].sm->mod, &preps[i].mc);
		if (x < 0) {
			err = err_from_errno(errno);
			goto out;
		}
		if (x == 0)
			src_add(&sv, preps[i].sm->mod, preps[i].tmp);
	}
	err = build_state(s, se, preps, np, &st, &sv);
	if (err)
		goto out;
	pairs = malloc((st->n ? st->n : 1) * sizeof(*pairs));
	err = STORE_ENOMEM;
	if (!pairs)
		goto out;
	for (i = 0; i < st->n; i++) {
		pairs[i].module = st->e[i].mod->id;
		pairs[i].commit = st->e[i].mc;
	}
	/* all that can fail for the commits store fails before the switch */
	ce = centry_new(&st->root, pairs, st->n);
	if (!ce)
		goto out;
	pthread_mutex_lock(&s->lock);
	err = commits_reserve(&s->cs);
	pthread_mutex_unlock(&s->lock);
	if (err)
		goto out;
	err = store_switch(s, st, JOURNAL_COMMIT, np > 0 ? &flushed : NULL,
			   sv.v, sv.n);
	if (err)
		goto out;
	pthread_mutex_lock(&s->lock);
	commits_insert(&s->cs, ce);
	pthread_mutex_unlock(&s->lock);
	ce = NULL;
	out->id = st->root;
	out->has_base = se->has_base;
	out->base = se->base_id;
	out->n = st->n;
	out->pairs = pairs;
	pairs = NULL;
	pthread_mutex_unlock(&s->op_lock);
	op_locked = 0;
	session_release(se); /* ends it while its write lock is held */
	pthread_rwlock_unlock(&se->lock);
	if (session_unlink(s, se))
		session_put(se); /* the table's reference */
	session_put(se);
	se = NULL;
out:
	if (op_locked) {
		/* a wedged store's journal may name the temporaries */
		keep = s->wedged;
		pthread_mutex_unlock(&s->op_lock);
	}
	free(sv.v);
	for (i = 0; i < np; i++) {
		if (keep)
			preps[i].tmp[0] = '\0';
		prep_release(s, &preps[i]);
	}
	free(preps);
	free(pairs);
	centry_free(ce);
	state_unref(st);
	if (se)
		session_unlock(se);
	return err;
}
