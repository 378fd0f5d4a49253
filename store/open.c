/*
 * open.c - opening a state directory and closing it: the lock, the modules,
 * the journal's replay, the temporaries, the current state and the commits
 * store; and letting go of all of it.
 */
#include "commits_file.h"
#include "fs.h"
#include "gc.h"
#include "journal.h"
#include "names.h"
#include "state.h"
#include "store_internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Remove the temporaries a crash left, once the journal no longer needs them.
 */
static enum store_err remove_tmp(void *ctx, const char *name)
{
	struct store *s = ctx;

	if (!strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)))
		fs_unlink(&s->fs, name);
	return STORE_OK;
}

static struct store *store_new(const struct store_options *opts)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fs.dirfd = s->fs.lockfd = -1;
	s->jrn.fd[0] = s->jrn.fd[1] = -1;
	s->jrn.last = -1;
	s->jrn.next_seq = 1;
	s->max_module_size = opts->max_module_size ? opts->max_module_size
						   : STORE_DEFAULT_MAX_MODULE;
	s->max_session_memory = opts->max_session_memory
				    ? opts->max_session_memory
				    : STORE_DEFAULT_SESSION_MEMORY;
	s->max_sessions = opts->max_sessions;
	s->keep_commits = opts->keep_commits;
	s->max_diff_pages = opts->max_diff_pages ? opts->max_diff_pages
						 : STORE_DEFAULT_MAX_DIFF_PAGES;
	treecache_init(&s->tc, opts->tree_cache_size
				   ? opts->tree_cache_size
				   : STORE_DEFAULT_TREE_CACHE);
	s->session_ended = gc_collect_deferred;
	atomic_init(&s->bytes_written, 0);
	atomic_init(&s->ov_mem, 0);
	pthread_mutex_init(&s->op_lock, NULL);
	pthread_mutex_init(&s->persist_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->tree_lock, NULL);
	pthread_cond_init(&s->load.cv, NULL);
	s->load.done = 1;
	return s;
}

enum store_err store_open(struct store **out, const struct store_options *opts)
{
	struct store *s;
	enum store_err err;

	*out = NULL;
	if (!opts || !opts->dir || !*opts->dir ||
	    opts->max_module_size % STORE_PAGE_SIZE ||
	    opts->max_module_size > STORE_MAX_MODULE_LIMIT)
		return STORE_EINVAL;
	if (sodium_init() < 0)
		return STORE_EIO;
	s = store_new(opts);
	if (!s)
		return STORE_ENOMEM;
	err = fs_open(&s->fs, opts->dir, opts->fault, opts->fault_ctx);
	/*
	 * What a crashed process left unflushed is in the page cache: flush
	 * it before trusting any of it (a journal not yet fdatasync'd, a name
	 * not yet fsync'd), so that a power cut during this open cannot take
	 * back what the open acts on.
	 */
	if (!err)
		err = fs_sync(&s->fs, "open.sync");
	if (!err)
		err = modules_scan(s);
	if (!err)
		err = journal_reload(s);
	if (!err)
		err = fs_each_name(&s->fs, remove_tmp, s);
	if (!err && opts->tmp_pool)
		fs_pool_start(&s->fs); /* after the leftovers went */
	if (!err)
		err = commits_file_open_load(
		    s, opts->background_load_bytes ? opts->background_load_bytes
						   : STORE_BACKGROUND_LOAD);
	if (err) {
		store_close(s);
		return err;
	}
	*out = s;
	return STORE_OK;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	commits_file_load_stop(s);
	session_free_all(s);
	state_publish(s, NULL);
	modules_release(s);
	commits_release(&s->cs);
	gc_release(s);
	fs_pool_stop(&s->fs);
	journal_close(s);
	fs_close(&s->fs);
	pthread_mutex_destroy(&s->op_lock);
	pthread_mutex_destroy(&s->persist_lock);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->tree_lock);
	treecache_release(&s->tc);
	pthread_cond_destroy(&s->load.cv);
	free(s);
}
