/*
 * stats.c - the store's figures.
 */
#include "fs.h"
#include "store_internal.h"

#include <string.h>

enum store_err store_get_stats(struct store *s, struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	out->modules = s->mods.n;
	out->commits = s->cs.n;
	out->sessions = s->sess.n;
	out->commits_deleted = s->gc.commits_deleted;
	out->files_removed = s->gc.files_removed;
	out->bytes_freed = s->gc.bytes_freed;
	pthread_mutex_unlock(&s->lock);
	out->bytes_written = atomic_load(&s->bytes_written);
	out->session_memory = atomic_load(&s->ov_mem);
	out->tmp_pooled = atomic_load(&s->fs.tmp_pooled);
	out->tmp_made = atomic_load(&s->fs.tmp_made);
	return fs_bytes_on_disk(&s->fs, &out->bytes_on_disk);
}
