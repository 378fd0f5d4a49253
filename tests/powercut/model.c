/*
 * model.c - the power-cut model of a directory (see model.h): a current
 * and a durable image, and the changes between them.
 */
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/* The bytes of a file: exactly size of them. */
struct bytes {
	unsigned char *b;
	uint64_t size;
};

/* A change of a file's data not yet durable: a write, or a new size. */
struct dchange {
	int is_write;
	uint64_t off; /* write: where */
	uint64_t len;
	unsigned char *bytes;
	uint64_t size; /* the file's size after the change */
};

struct file {
	mode_t mode;
	struct bytes cur, dur;
	struct dchange *dc;
	size_t ndc, cap;
};

struct dent {
	char *name;
	uint64_t ino;
};

/* A directory's names, sorted. */
struct dir {
	struct dent *v;
	size_t n, cap;
};

enum nkind { N_LINK, N_UNLINK, N_RENAME };

/* A change of names not yet durable. */
struct nchange {
	enum nkind kind;
	char *a, *b;  /* LINK: b; UNLINK: a; RENAME: a to b */
	uint64_t ino; /* the file named, unlinked or moved */
};

struct pcm {
	struct file **files; /* by ino; NULL: none (0 and the directory) */
	size_t nfiles;	     /* slots */
	uint64_t next_ino;
	struct dir cur, dur;
	struct nchange *nc;
	size_t nnc, cap;
	const char **names; /* pcm_names() */
	uint64_t *inos;
};

/* --- memory --------------------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "powercut model: out of memory\n");
		abort();
	}
	return p;
}

static void *xmemdup(const void *p, size_t n)
{
	void *q = xrealloc(NULL, n);

	if (n)
		memcpy(q, p, n);
	return q;
}

static char *xstrdup(const char *s)
{
	return xmemdup(s, strlen(s) + 1);
}

#define GROW(v, n, cap)                                                        \
	do {                                                                   \
		if ((n) == (cap)) {                                            \
			(cap) = (cap) ? 2 * (cap) : 8;                         \
			(v) = xrealloc((v), (cap) * sizeof(*(v)));             \
		}                                                              \
	} while (0)

static void bytes_copy(struct bytes *to, const struct bytes *from)
{
	to->b = xmemdup(from->b, (size_t)from->size);
	to->size = from->size;
}

static void bytes_resize(struct bytes *x, uint64_t size)
{
	x->b = xrealloc(x->b, (size_t)size);
	if (size > x->size)
		memset(x->b + x->size, 0, (size_t)(size - x->size));
	x->size = size;
}

static void dchanges_clear(struct file *f)
{
	size_t i;

	for (i = 0; i < f->ndc; i++)
		free(f->dc[i].bytes);
	f->ndc = 0;
}

static void file_free(struct file *f)
{
	if (!f)
		return;
	dchanges_clear(f);
	free(f->dc);
	free(f->cur.b);
	free(f->dur.b);
	free(f);
}

static void dir_release(struct dir *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static void dir_copy(struct dir *to, const struct dir *from)
{
	size_t i;

	to->n = to->cap = from->n;
	to->v = xrealloc(NULL, from->n * sizeof(*to->v));
	for (i = 0; i < from->n; i++) {
		to->v[i].name = xstrdup(from->v[i].name);
		to->v[i].ino = from->v[i].ino;
	}
}

static void nchanges_clear(struct pcm *m)
{
	size_t i;

	for (i = 0; i < m->nnc; i++) {
		free(m->nc[i].a);
		free(m->nc[i].b);
	}
	m->nnc = 0;
}

struct pcm *pcm_new(void)
{
	struct pcm *m = xrealloc(NULL, sizeof(*m));

	memset(m, 0, sizeof(*m));
	m->next_ino = PCM_ROOT + 1;
	return m;
}

void pcm_free(struct pcm *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->nfiles; i++)
		file_free(m->files[i]);
	free(m->files);
	dir_release(&m->cur);
	dir_release(&m->dur);
	nchanges_clear(m);
	free(m->nc);
	free(m->names);
	free(m->inos);
	free(m);
}

struct pcm *pcm_copy(const struct pcm *m)
{
	struct pcm *c = pcm_new();
	size_t i, j;

	c->next_ino = m->next_ino;
	c->nfiles = m->nfiles;
	c->files = xrealloc(NULL, m->nfiles * sizeof(*c->files));
	for (i = 0; i < m->nfiles; i++) {
		const struct file *f = m->files[i];
		struct file *g;

		c->files[i] = NULL;
		if (!f)
			continue;
		g = xrealloc(NULL, sizeof(*g));
		memset(g, 0, sizeof(*g));
		g->mode = f->mode;
		bytes_copy(&g->cur, &f->cur);
		bytes_copy(&g->dur, &f->dur);
		g->ndc = g->cap = f->ndc;
		g->dc = xrealloc(NULL, f->ndc * sizeof(*g->dc));
		for (j = 0; j < f->ndc; j++) {
			g->dc[j] = f->dc[j];
			g->dc[j].bytes =
			    f->dc[j].is_write
				? xmemdup(f->dc[j].bytes, (size_t)f->dc[j].len)
				: NULL;
		}
		c->files[i] = g;
	}
	dir_copy(&c->cur, &m->cur);
	dir_copy(&c->dur, &m->dur);
	c->nnc = c->cap = m->nnc;
	c->nc = xrealloc(NULL, m->nnc * sizeof(*c->nc));
	for (i = 0; i < m->nnc; i++) {
		c->nc[i] = m->nc[i];
		c->nc[i].a = m->nc[i].a ? xstrdup(m->nc[i].a) : NULL;
		c->nc[i].b = m->nc[i].b ? xstrdup(m->nc[i].b) : NULL;
	}
	return c;
}

/* --- names ---------------------------------------------------------------- */

/* Index of name in d, or where it would go (*found says which). */
static size_t dir_find(const struct dir *d, const char *name, int *found)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(d->v[mid].name, name);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static uint64_t dir_get(const struct dir *d, const char *name)
{
	int found;
	size_t i = dir_find(d, name, &found);

	return found ? d->v[i].ino : 0;
}

/* Point name at ino, adding it or replacing what it named. */
static void dir_set(struct dir *d, const char *name, uint64_t ino)
{
	int found;
	size_t i = dir_find(d, name, &found);

	if (found) {
		d->v[i].ino = ino;
		return;
	}
	GROW(d->v, d->n, d->cap);
	memmove(&d->v[i + 1], &d->v[i], (d->n - i) * sizeof(*d->v));
	d->v[i].name = xstrdup(name);
	d->v[i].ino = ino;
	d->n++;
}

static void dir_del(struct dir *d, const char *name)
{
	int found;
	size_t i = dir_find(d, name, &found);

	if (!found)
		return;
	free(d->v[i].name);
	memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof(*d->v));
	d->n--;
}

/* Apply one change of names to a directory image. */
static void dir_apply(struct dir *d, const struct nchange *c)
{
	switch (c->kind) {
	case N_LINK:
		dir_set(d, c->b, c->ino);
		break;
	case N_UNLINK:
		dir_del(d, c->a);
		break;
	case N_RENAME:
		dir_del(d, c->a);
		dir_set(d, c->b, c->ino);
		break;
	}
}

/* Record a change of names and apply it to the current image. */
static void name_change(struct pcm *m, enum nkind kind, const char *a,
			const char *b, uint64_t ino)
{
	struct nchange *c;

	GROW(m->nc, m->nnc, m->cap);
	c = &m->nc[m->nnc++];
	c->kind = kind;
	c->a = a ? xstrdup(a) : NULL;
	c->b = b ? xstrdup(b) : NULL;
	c->ino = ino;
	dir_apply(&m->cur, c);
}

static unsigned int names_of(const struct dir *d, uint64_t ino)
{
	unsigned int n = 0;
	size_t i;

	for (i = 0; i < d->n; i++)
		n += d->v[i].ino == ino;
	return n;
}

static int valid_name(const char *name)
{
	return name && *name && !strchr(name, '/') && strcmp(name, ".") &&
	       strcmp(name, "..");
}

/* --- the running system's view -------------------------------------------- */

static struct file *file_get(const struct pcm *m, uint64_t ino)
{
	return ino < m->nfiles ? m->files[ino] : NULL;
}

uint64_t pcm_lookup(const struct pcm *m, const char *name)
{
	return dir_get(&m->cur, name);
}

int pcm_exists(const struct pcm *m, uint64_t ino)
{
	return ino == PCM_ROOT || file_get(m, ino) != NULL;
}

int pcm_attr(const struct pcm *m, uint64_t ino, mode_t *mode,
	     unsigned int *nlink, uint64_t *size)
{
	const struct file *f = file_get(m, ino);

	if (ino == PCM_ROOT) {
		*mode = S_IFDIR | 0700;
		*nlink = 2;
		*size = 0;
		return 0;
	}
	if (!f)
		return -1;
	*mode = f->mode;
	*nlink = names_of(&m->cur, ino);
	*size = f->cur.size;
	return 0;
}

size_t pcm_read(const struct pcm *m, uint64_t ino, void *buf, size_t len,
		uint64_t off)
{
	const struct file *f = file_get(m, ino);

	if (!f || off >= f->cur.size)
		return 0;
	if (len > f->cur.size - off)
		len = (size_t)(f->cur.size - off);
	memcpy(buf, f->cur.b + off, len);
	return len;
}

size_t pcm_names(const struct pcm *m, const char ***names, uint64_t **inos)
{
	struct pcm *w = (struct pcm *)(uintptr_t)m; /* the borrowed arrays */
	size_t i;

	w->names = xrealloc(w->names, m->cur.n * sizeof(*w->names));
	w->inos = xrealloc(w->inos, m->cur.n * sizeof(*w->inos));
	for (i = 0; i < m->cur.n; i++) {
		w->names[i] = m->cur.v[i].name;
		w->inos[i] = m->cur.v[i].ino;
	}
	*names = w->names;
	*inos = w->inos;
	return m->cur.n;
}

/* --- changes -------------------------------------------------------------- */

static void data_change(struct file *f, int is_write, const void *buf,
			uint64_t len, uint64_t off)
{
	struct dchange *c;

	GROW(f->dc, f->ndc, f->cap);
	c = &f->dc[f->ndc++];
	c->is_write = is_write;
	c->off = off;
	c->len = len;
	c->bytes = is_write ? xmemdup(buf, (size_t)len) : NULL;
	c->size = f->cur.size;
}

int pcm_create(struct pcm *m, const char *name, mode_t mode, uint64_t *ino)
{
	struct file *f;

	if (!valid_name(name))
		return EINVAL;
	if (dir_get(&m->cur, name))
		return EEXIST;
	if (m->next_ino >= m->nfiles) {
		size_t n = m->nfiles ? 2 * m->nfiles : 64;

		m->files = xrealloc(m->files, n * sizeof(*m->files));
		memset(m->files + m->nfiles, 0,
		       (n - m->nfiles) * sizeof(*m->files));
		m->nfiles = n;
	}
	f = xrealloc(NULL, sizeof(*f));
	memset(f, 0, sizeof(*f));
	f->mode = S_IFREG | (mode & 07777);
	*ino = m->next_ino++;
	m->files[*ino] = f;
	name_change(m, N_LINK, NULL, name, *ino);
	return 0;
}

int pcm_write(struct pcm *m, uint64_t ino, const void *buf, size_t len,
	      uint64_t off)
{
	struct file *f = file_get(m, ino);

	if (!f)
		return ino == PCM_ROOT ? EISDIR : ESTALE;
	if (len == 0)
		return 0;
	if (off + len > f->cur.size)
		bytes_resize(&f->cur, off + len);
	memcpy(f->cur.b + off, buf, len);
	data_change(f, 1, buf, len, off);
	return 0;
}

int pcm_truncate(struct pcm *m, uint64_t ino, uint64_t size)
{
	struct file *f = file_get(m, ino);

	if (!f)
		return ino == PCM_ROOT ? EISDIR : ESTALE;
	bytes_resize(&f->cur, size);
	data_change(f, 0, NULL, 0, 0);
	return 0;
}

int pcm_chmod(struct pcm *m, uint64_t ino, mode_t mode)
{
	struct file *f = file_get(m, ino);

	if (!f)
		return ino == PCM_ROOT ? 0 : ESTALE;
	f->mode = (f->mode & S_IFMT) | (mode & 07777);
	return 0;
}

int pcm_link(struct pcm *m, uint64_t ino, const char *name)
{
	if (!valid_name(name))
		return EINVAL;
	if (!file_get(m, ino))
		return ino == PCM_ROOT ? EPERM : ENOENT;
	if (dir_get(&m->cur, name))
		return EEXIST;
	name_change(m, N_LINK, NULL, name, ino);
	return 0;
}

int pcm_unlink(struct pcm *m, const char *name)
{
	uint64_t ino = dir_get(&m->cur, name);

	if (!ino)
		return ENOENT;
	name_change(m, N_UNLINK, name, NULL, ino);
	return 0;
}

int pcm_rename(struct pcm *m, const char *from, const char *to,
	       unsigned int flags)
{
	uint64_t ino = dir_get(&m->cur, from), old;

	if (flags & ~(unsigned int)RENAME_NOREPLACE)
		return EINVAL;
	if (!valid_name(to))
		return EINVAL;
	if (!ino)
		return ENOENT;
	old = dir_get(&m->cur, to);
	if (old && (flags & RENAME_NOREPLACE))
		return EEXIST;
	if (old == ino)
		return 0; /* two names of one file: POSIX says nothing moves */
	name_change(m, N_RENAME, from, to, ino);
	return 0;
}

/* --- flushes -------------------------------------------------------------- */

void pcm_fsync(struct pcm *m, uint64_t ino)
{
	struct file *f = file_get(m, ino);

	if (!f)
		return;
	free(f->dur.b);
	bytes_copy(&f->dur, &f->cur);
	dchanges_clear(f);
}

void pcm_fsyncdir(struct pcm *m)
{
	dir_release(&m->dur);
	dir_copy(&m->dur, &m->cur);
	nchanges_clear(m);
}

void pcm_syncfs(struct pcm *m)
{
	size_t i;

	for (i = 0; i < m->nfiles; i++)
		pcm_fsync(m, i);
	pcm_fsyncdir(m);
}

size_t pcm_pending(const struct pcm *m)
{
	size_t n = m->nnc, i;

	for (i = 0; i < m->nfiles; i++)
		if (m->files[i])
			n += m->files[i]->ndc;
	return n;
}

/* --- cuts ----------------------------------------------------------------- */

/* xorshift64*: the cut's random choices, from its seed alone. */
struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ULL;
}

/* Uniform in [0, n]. */
static uint64_t rng_upto(struct rng *r, uint64_t n)
{
	return rng_next(r) % (n + 1);
}

/* What a change of names touches: its names, and its file. */
struct keys {
	const char **names;
	uint64_t *inos;
	size_t nn, ni, capn, capi;
};

static int keys_hit(const struct keys *k, const struct nchange *c)
{
	size_t i;

	for (i = 0; i < k->ni; i++)
		if (k->inos[i] == c->ino)
			return 1;
	for (i = 0; i < k->nn; i++)
		if ((c->a && !strcmp(k->names[i], c->a)) ||
		    (c->b && !strcmp(k->names[i], c->b)))
			return 1;
	return 0;
}

static void keys_add(struct keys *k, const struct nchange *c)
{
	GROW(k->inos, k->ni, k->capi);
	k->inos[k->ni++] = c->ino;
	if (c->a) {
		GROW(k->names, k->nn, k->capn);
		k->names[k->nn++] = c->a;
	}
	if (c->b) {
		GROW(k->names, k->nn, k->capn);
		k->names[k->nn++] = c->b;
	}
}

/* The durable directory after the cut; *kept changes of names survived. */
static void cut_names(struct pcm *m, enum pcm_cut how, struct rng *r,
		      size_t *kept)
{
	struct keys dropped = {0};
	size_t i, upto = 0;
	uint64_t p = 0;

	*kept = 0;
	if (how == PCM_CUT_PREFIX)
		upto = (size_t)rng_upto(r, m->nnc);
	if (how == PCM_CUT_CAUSAL)
		p = rng_upto(r, 1000); /* per mille: how far writeback went */
	for (i = 0; i < m->nnc; i++) {
		const struct nchange *c = &m->nc[i];
		int keep = 0;

		if (how == PCM_CUT_PREFIX)
			keep = i < upto;
		else if (how == PCM_CUT_CAUSAL)
			keep = !keys_hit(&dropped, c) && rng_upto(r, 999) < p;
		if (!keep) {
			keys_add(&dropped, c);
			continue;
		}
		dir_apply(&m->dur, c);
		(*kept)++;
	}
	free(dropped.names);
	free(dropped.inos);
	nchanges_clear(m);
}

/* 1 if change c changes bytes of the sector at s. */
static int touches(const struct dchange *c, uint64_t s)
{
	uint64_t end = s + PCM_SECTOR;

	if (c->is_write)
		return c->off < end && c->off + c->len > s;
	return c->size < end; /* a size: what lies past it is gone */
}

/* Apply change c to the bytes of x within the sector at s. */
static void apply_in(struct bytes *x, const struct dchange *c, uint64_t s)
{
	uint64_t lo = s, hi = s + PCM_SECTOR;

	if (hi > x->size)
		hi = x->size;
	if (c->is_write) {
		if (lo < c->off)
			lo = c->off;
		if (hi > c->off + c->len)
			hi = c->off + c->len;
		memcpy(x->b + lo, c->bytes + (lo - c->off), (size_t)(hi - lo));
		return;
	}
	if (lo < c->size)
		lo = c->size;
	if (lo < hi)
		memset(x->b + lo, 0, (size_t)(hi - lo));
}

/* The durable bytes of f after the cut: see model.h. */
static void cut_data(struct file *f, enum pcm_cut how, struct rng *r)
{
	struct bytes x;
	uint64_t extent = f->dur.size, s, size;
	size_t i;
	int whole = 0;

	if (how == PCM_CUT_ALL || f->ndc == 0)
		goto done;
	/* a third of the files written back whole, a third not at all */
	switch (rng_upto(r, 2)) {
	case 0:
		goto done;
	case 1:
		whole = 1;
		break;
	}
	for (i = 0; i < f->ndc; i++) {
		const struct dchange *c = &f->dc[i];

		if (c->is_write && c->off + c->len > extent)
			extent = c->off + c->len;
		if (c->size > extent)
			extent = c->size;
	}
	x.b = NULL;
	x.size = 0;
	bytes_resize(&x, extent);
	memcpy(x.b, f->dur.b, (size_t)f->dur.size);
	for (s = 0; s < extent; s += PCM_SECTOR) {
		uint64_t n = 0, k;

		for (i = 0; i < f->ndc; i++)
			n += (uint64_t)touches(&f->dc[i], s);
		k = whole ? n : rng_upto(r, n);
		for (i = 0; i < f->ndc && k > 0; i++) {
			if (!touches(&f->dc[i], s))
				continue;
			apply_in(&x, &f->dc[i], s);
			k--;
		}
	}
	size = f->dur.size;
	i = whole ? f->ndc : (size_t)rng_upto(r, f->ndc);
	if (i > 0)
		size = f->dc[i - 1].size;
	bytes_resize(&x, size);
	free(f->dur.b);
	f->dur = x;
done:
	dchanges_clear(f);
	free(f->cur.b);
	bytes_copy(&f->cur, &f->dur);
}

void pcm_cut(struct pcm *m, enum pcm_cut how, uint64_t seed,
	     struct pcm_cut_stats *st)
{
	struct rng r = {seed * 0x9E3779B97F4A7C15ULL + 1};
	size_t i, kept;

	memset(st, 0, sizeof(*st));
	rng_next(&r);
	st->names_pending = m->nnc;
	for (i = 0; i < m->nfiles; i++)
		if (m->files[i])
			st->data_pending += m->files[i]->ndc;
	cut_names(m, how, &r, &kept);
	st->names_kept = kept;
	for (i = 0; i < m->nfiles; i++)
		if (m->files[i])
			cut_data(m->files[i], how, &r);
	/* the current image is the durable one; unnamed files are gone */
	for (i = 0; i < m->nfiles; i++) {
		if (!m->files[i] || names_of(&m->dur, i))
			continue;
		st->files_lost += names_of(&m->cur, i) > 0;
		file_free(m->files[i]);
		m->files[i] = NULL;
	}
	dir_release(&m->cur);
	dir_copy(&m->cur, &m->dur);
}
