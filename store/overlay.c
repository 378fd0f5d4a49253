/*
 * overlay.c - a session's writes to one module, in memory or in a file.
 *
 * In memory, pages are found through blocks of OV_BLOCK page pointers, so
 * a write to a large module costs what it writes, not the module's size.
 * The sessions' memory (store.ov_mem) is reserved before each write; a
 * write that cannot reserve what its new pages need moves its overlay to a
 * file first (overlay_to_file).
 */
#include "overlay.h"
#include "fs.h"
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define OV_BLOCK 512 /* page pointers per block */
#define OV_IOV	 64  /* pages per write of a run */

void overlay_init(struct overlay *ov)
{
	memset(ov, 0, sizeof(*ov));
	ov->fd = -1;
}

/* Take bytes of the sessions' memory; 0 if that would pass the bound. */
static int mem_reserve(struct store *s, uint64_t bytes)
{
	uint_fast64_t cur = atomic_load(&s->ov_mem);

	do {
		if (cur + bytes > s->max_session_memory)
			return 0;
	} while (!atomic_compare_exchange_weak(&s->ov_mem, &cur, cur + bytes));
	return 1;
}

static void mem_unreserve(struct store *s, uint64_t bytes)
{
	atomic_fetch_sub(&s->ov_mem, bytes);
}

static void free_pages(struct overlay *ov)
{
	size_t b, k;

	for (b = 0; b < ov->nblk; b++) {
		if (!ov->blk[b])
			continue;
		for (k = 0; k < OV_BLOCK; k++)
			free(ov->blk[b][k]);
		free(ov->blk[b]);
	}
	free(ov->blk);
	ov->blk = NULL;
	ov->nblk = 0;
}

void overlay_release(struct store *s, struct overlay *ov)
{
	free_pages(ov);
	mem_unreserve(s, ov->held);
	fs_close_fd(ov->fd);
	free(ov->dirty);
	overlay_init(ov);
}

int overlay_is_dirty(const struct overlay *ov, uint64_t page)
{
	return page / 8 < ov->dirty_cap &&
	       (ov->dirty[page / 8] >> (page % 8) & 1);
}

/* The memory page of page, or NULL. */
static unsigned char *mem_page(const struct overlay *ov, uint64_t page)
{
	uint64_t b = page / OV_BLOCK;

	if (b >= ov->nblk || !ov->blk[b])
		return NULL;
	return ov->blk[b][page % OV_BLOCK];
}

/* The memory page of page, made if missing; NULL on allocation failure. */
static unsigned char *mem_page_make(struct overlay *ov, uint64_t page)
{
	uint64_t b = page / OV_BLOCK;
	unsigned char **slot;

	if (b >= ov->nblk) {
		size_t n = (size_t)b + 1;
		unsigned char ***v = realloc(ov->blk, n * sizeof(*v));

		if (!v)
			return NULL;
		memset(v + ov->nblk, 0, (n - ov->nblk) * sizeof(*v));
		ov->blk = v;
		ov->nblk = n;
	}
	if (!ov->blk[b]) {
		ov->blk[b] = calloc(OV_BLOCK, sizeof(**ov->blk));
		if (!ov->blk[b])
			return NULL;
	}
	slot = &ov->blk[b][page % OV_BLOCK];
	if (!*slot)
		*slot = malloc(STORE_PAGE_SIZE);
	return *slot;
}

/* Move the overlay's pages into a file; the memory they held is freed. */
static enum store_err overlay_to_file(struct store *s, struct overlay *ov,
				      uint64_t npages)
{
	enum store_err err;
	uint64_t unused = 0;
	int fd;

	err = fs_anon_create(&s->fs, &fd);
	if (err)
		return err;
	err = overlay_write_dirty(s, ov, npages, fd, &unused);
	if (err) {
		fs_close_fd(fd);
		return err;
	}
	free_pages(ov);
	mem_unreserve(s, ov->held);
	ov->held = 0;
	ov->fd = fd;
	return STORE_OK;
}

/* The bitmap grown to npages pages. */
static enum store_err dirty_grow(struct overlay *ov, uint64_t npages)
{
	size_t need = (size_t)((npages + 7) / 8);
	unsigned char *d;

	if (need <= ov->dirty_cap)
		return STORE_OK;
	d = realloc(ov->dirty, need);
	if (!d)
		return STORE_ENOMEM;
	memset(d + ov->dirty_cap, 0, need - ov->dirty_cap);
	ov->dirty = d;
	ov->dirty_cap = need;
	return STORE_OK;
}

static void mark_dirty(struct overlay *ov, uint64_t first, uint64_t last)
{
	uint64_t p;

	for (p = first; p <= last; p++) {
		if (!overlay_is_dirty(ov, p)) {
			ov->dirty[p / 8] |= (unsigned char)(1u << (p % 8));
			ov->ndirty++;
		}
	}
}

/* The write into memory pages; their memory is reserved already. */
static enum store_err mem_write(struct overlay *ov, uint64_t off,
				const unsigned char *buf, size_t len,
				overlay_base_fn base, void *ctx)
{
	uint64_t page = off / STORE_PAGE_SIZE, end = off + len;
	enum store_err err;

	for (; off < end; page++) {
		size_t at = (size_t)(off % STORE_PAGE_SIZE);
		size_t n = STORE_PAGE_SIZE - at < end - off
			       ? STORE_PAGE_SIZE - at
			       : (size_t)(end - off);
		int dirty = overlay_is_dirty(ov, page);
		unsigned char *p = mem_page_make(ov, page);

		if (!p)
			return STORE_ENOMEM;
		if (!dirty && n < STORE_PAGE_SIZE) {
			err = base(ctx, page, p);
			if (err)
				return err;
		}
		memcpy(p + at, buf, n);
		buf += n;
		off += n;
	}
	return STORE_OK;
}

/* The write into the file: partly written pages copied in first. */
static enum store_err file_write(struct store *s, struct overlay *ov,
				 uint64_t off, const void *buf, size_t len,
				 overlay_base_fn base, void *ctx)
{
	unsigned char page[STORE_PAGE_SIZE];
	uint64_t first = off / STORE_PAGE_SIZE, end = off + len;
	uint64_t last = (end - 1) / STORE_PAGE_SIZE;
	enum store_err err = STORE_OK;

	if (!overlay_is_dirty(ov, first) &&
	    (off % STORE_PAGE_SIZE || end < (first + 1) * STORE_PAGE_SIZE)) {
		err = base(ctx, first, page);
		if (!err)
			err =
			    fs_write(&s->fs, ov->fd, page, sizeof(page),
				     first * STORE_PAGE_SIZE, "session.write");
	}
	if (!err && last != first && end % STORE_PAGE_SIZE &&
	    !overlay_is_dirty(ov, last)) {
		err = base(ctx, last, page);
		if (!err)
			err = fs_write(&s->fs, ov->fd, page, sizeof(page),
				       last * STORE_PAGE_SIZE, "session.write");
	}
	if (!err)
		err = fs_write(&s->fs, ov->fd, buf, len, off, "session.write");
	return err;
}

enum store_err overlay_write(struct store *s, struct overlay *ov,
			     uint64_t npages, uint64_t off, const void *buf,
			     size_t len, overlay_base_fn base, void *ctx)
{
	uint64_t first = off / STORE_PAGE_SIZE;
	uint64_t last = (off + len - 1) / STORE_PAGE_SIZE, p, added = 0;
	enum store_err err;

	err = dirty_grow(ov, npages);
	if (err)
		return err;
	for (p = first; p <= last; p++)
		added += !overlay_is_dirty(ov, p);
	added *= STORE_PAGE_SIZE;
	if (ov->fd < 0 && !mem_reserve(s, added)) {
		err = overlay_to_file(s, ov, npages);
		if (err)
			return err;
	}
	if (ov->fd < 0) {
		err = mem_write(ov, off, buf, len, base, ctx);
		if (err) {
			mem_unreserve(s, added);
			return err;
		}
		ov->held += added;
	} else {
		err = file_write(s, ov, off, buf, len, base, ctx);
		if (err)
			return err;
	}
	mark_dirty(ov, first, last);
	return STORE_OK;
}

enum store_err overlay_read(const struct overlay *ov, void *buf, size_t len,
			    uint64_t off)
{
	unsigned char *out = buf;

	if (ov->fd >= 0)
		return fs_read(ov->fd, buf, len, off);
	while (len > 0) {
		size_t at = (size_t)(off % STORE_PAGE_SIZE);
		size_t n =
		    STORE_PAGE_SIZE - at < len ? STORE_PAGE_SIZE - at : len;
		const unsigned char *p = mem_page(ov, off / STORE_PAGE_SIZE);

		if (!p)
			return STORE_ECORRUPT; /* not a dirty page */
		memcpy(out, p + at, n);
		out += n;
		off += n;
		len -= n;
	}
	return STORE_OK;
}

/* Write pages [page, page + run) from memory, OV_IOV pages a call. */
static enum store_err mem_write_run(struct store *s, const struct overlay *ov,
				    int fd, uint64_t page, uint64_t run)
{
	struct iovec iov[OV_IOV];
	enum store_err err;
	size_t k, n;

	while (run > 0) {
		n = run < OV_IOV ? (size_t)run : OV_IOV;
		for (k = 0; k < n; k++) {
			iov[k].iov_base = mem_page(ov, page + k);
			iov[k].iov_len = STORE_PAGE_SIZE;
		}
		err = fs_writev(&s->fs, fd, iov, n, page * STORE_PAGE_SIZE,
				"commit.write");
		if (err)
			return err;
		page += n;
		run -= n;
	}
	return STORE_OK;
}

enum store_err overlay_write_dirty(struct store *s, const struct overlay *ov,
				   uint64_t npages, int fd, uint64_t *written)
{
	uint64_t page, run;
	enum store_err err;

	for (page = 0; page < npages; page += run) {
		run = 1;
		if (!overlay_is_dirty(ov, page))
			continue;
		while (page + run < npages && overlay_is_dirty(ov, page + run))
			run++;
		err = ov->fd >= 0 ? fs_copy_bytes(&s->fs, ov->fd, fd,
						  page * STORE_PAGE_SIZE,
						  run * STORE_PAGE_SIZE)
				  : mem_write_run(s, ov, fd, page, run);
		if (err)
			return err;
		*written += run * STORE_PAGE_SIZE;
	}
	return STORE_OK;
}
