/*
 * push.h - a record as the leader sends it to its followers
 * (POST /cluster/records/SEQ, docs/cluster.md "The write path"): the
 * record's text, the pages each module of a commit changed, and those
 * pages' bytes, so that a follower holding the commit's base makes the
 * new files without fetching them.
 *
 * The body, in three parts: the record (its JSON, with its fence) and a
 * newline; a JSON array of the modules whose pages follow,
 * [{"id":M,"from":MC,"to":MC,"size":BYTES,"pages":[i,...]},...], and a
 * newline; then the bytes of those pages, module after module, page
 * after page, STORE_PAGE_SIZE each. A record without pages has "[]".
 */
#ifndef CLUSTER_PUSH_H
#define CLUSTER_PUSH_H

#include "log.h"
#include "store.h"

#include <stddef.h>

/* Pages a body carries at most (16 MiB); a commit with more, none. */
#define PUSH_MAX_PAGES 4096

/*
 * The body of record r (its fence set) for followers (malloc'd, *len):
 * with the pages of a commit against a base this store holds, read from
 * its files (the diff of the base and the commit), when they are at most
 * PUSH_MAX_PAGES (none without pages). NULL when out of memory.
 */
char *push_body(struct store *s, const struct log_record *r, int pages,
		size_t *len);

/* A body as a follower reads it; pages point into the body. */
struct push {
	struct log_record r;
	struct store_diff d; /* modules with their pages (from and to) */
	const char **data;   /* d.m[i]'s first page's bytes */
};

/* Parse body (len bytes, which must outlive p): 0, or -1. Release p. */
int push_parse(const char *body, size_t len, struct push *p);
void push_release(struct push *p);

/*
 * Of the n pairs (files this store lacks), make those whose module p
 * carries the pages of, from the file of its "from" here: patched and
 * made durable together (store_patches_import). done[i] set for each
 * made; the number made.
 */
size_t push_files(struct store *s, const struct push *p,
		  const struct store_pair *pairs, size_t n, int *done);

#endif /* CLUSTER_PUSH_H */
