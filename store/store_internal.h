/*
 * store_internal.h - struct store, the engine's central state, shared by
 * the files of store/ and by nothing else.
 *
 * Files, bottom up; each calls only those above it in this list:
 *
 *   ids.c           errors, ids, hashes (pure)
 *   tree.c          the Merkle tree over a module's pages (pure)
 *   names.c         the names of the directory's files (pure)
 *   fs.c            every file system call, on struct fs
 *   modules.c       the module table; deploy; bytecode; finding modules at
 *                   open
 *   state.c         immutable states, the current one; module queries
 *   commits.c       the commits store in memory
 *   commits_file.c  the file `commits`: its text, read and written
 *   journal.c       the journal and the switch of names; recovery
 *   overlay.c       a session's writes to one module, bounded in memory
 *   session.c       sessions
 *   gc.c            delete, retention and gc: the files nothing needs
 *   commit.c        the commit of a session: prepare, plan, publish, finish
 *   proof.c         audit paths, their verification, diffs of trees (pure)
 *   treecache.c     page trees of older module commits, bounded in bytes
 *   pages.c         proofs of pages and diffs of commits
 *   history.c       the commits store's queries, persist, restore
 *   import.c        module commit files and commits from another node
 *   stats.c         figures
 *   open.c          store_open(), store_close()
 *
 * Each field below is written by the one file named beside it. Locks:
 * op_lock serialises what changes the directory's names (deploy, the
 * switch of a commit or restore); persist_lock serialises persists; lock
 * guards the module table, the current state, the session table and the
 * commits store, and is held only for moments, never across I/O;
 * tree_lock guards entries' tree pointers. Order: a session's lock,
 * op_lock, persist_lock, lock, tree_lock.
 */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include "commits.h"
#include "commits_file.h"
#include "fs.h"
#include "gc.h"
#include "journal.h"
#include "modules.h"
#include "session.h"
#include "store.h"
#include "treecache.h"

#include <pthread.h>
#include <stdatomic.h>

struct state;

struct store {
	struct fs fs;		     /* fs.c */
	uint64_t max_module_size;    /* open.c, at open */
	uint64_t max_session_memory; /* open.c, at open */
	unsigned int max_sessions;   /* open.c, at open */
	unsigned int keep_commits;   /* open.c, at open */
	uint64_t max_diff_pages;     /* open.c, at open */
	/* open.c, at open: gc.c's gc_collect_deferred(), called by session.c
	 * when a session ends (the one call upward, through this pointer) */
	void (*session_ended)(struct store *s);
	pthread_mutex_t op_lock; /* open.c, at open, as the three below */
	pthread_mutex_t persist_lock;
	pthread_mutex_t lock;
	pthread_mutex_t tree_lock;

	struct modules mods;		    /* modules.c */
	struct state *cur;		    /* state.c */
	struct sessions sess;		    /* session.c */
	atomic_uint_fast64_t ov_mem;	    /* overlay.c: pages in memory */
	struct commits cs;		    /* commits.c */
	struct commits_file cf;		    /* commits_file.c */
	struct commits_load load;	    /* commits_file.c */
	struct journal_state jrn;	    /* journal.c */
	struct gc_state gc;		    /* gc.c */
	atomic_uint_fast64_t bytes_written; /* commit.c */
	struct tree_cache tc;		    /* treecache.c; pages.c fills it */
};

#endif /* STORE_INTERNAL_H */
