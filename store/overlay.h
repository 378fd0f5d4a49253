/*
 * overlay.h - a session's writes to one module: which pages are dirty, and
 * their bytes. An overlay keeps its pages in memory while the sessions'
 * overlays together hold at most the store's max_session_memory; a write
 * that would take them past it moves its overlay into an unlinked file of
 * the state directory first, so the bound holds after every write.
 */
#ifndef STORE_OVERLAY_H
#define STORE_OVERLAY_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

struct store;

struct overlay {
	int fd;		      /* the file, or -1 while in memory */
	unsigned char ***blk; /* in memory: blocks of page pointers */
	size_t nblk;
	unsigned char *dirty; /* bitmap of dirty pages */
	size_t dirty_cap;     /* bytes of the bitmap */
	size_t ndirty;
	uint64_t held; /* bytes of the sessions' memory held here */
};

void overlay_init(struct overlay *ov);
void overlay_release(struct store *s, struct overlay *ov);

int overlay_is_dirty(const struct overlay *ov, uint64_t page);

/* The bytes of a page before a partial write changes it. */
typedef enum store_err (*overlay_base_fn)(void *ctx, uint64_t page,
					  unsigned char *buf);

/*
 * Write len bytes at off, within npages pages (the view's size after the
 * write). Pages only partly written start from base(ctx, page). On failure
 * nothing the reader sees has changed.
 */
enum store_err overlay_write(struct store *s, struct overlay *ov,
			     uint64_t npages, uint64_t off, const void *buf,
			     size_t len, overlay_base_fn base, void *ctx);

/* Read len bytes at off, all of them in dirty pages. */
enum store_err overlay_read(const struct overlay *ov, void *buf, size_t len,
			    uint64_t off);

/*
 * Write every dirty page of the first npages into fd at its offset, a run
 * of pages per call; *written grows by the bytes written.
 */
enum store_err overlay_write_dirty(struct store *s, const struct overlay *ov,
				   uint64_t npages, int fd, uint64_t *written);

#endif /* STORE_OVERLAY_H */
