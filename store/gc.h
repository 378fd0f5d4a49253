/*
 * gc.h - forgetting commits and removing the files nothing needs.
 *
 * A module commit file MOD_MC is needed while a commit of the commits
 * store (which holds every commit of the file `commits`: it is loaded at
 * open, merged at restore, and a delete takes a commit out of both under
 * persist_lock), the current state, or an open session's base refers to
 * it. Nothing needed is ever removed; .MOD_init, .MOD_bytecode and MOD are
 * never touched here.
 *
 * Crash safety without a journal of its own: a delete first settles the
 * journal when it records the commit (journal_settle: a replay would add
 * it back), then makes the commit gone durably (the file `commits`
 * rewritten atomically, when it held it), and only then removes files,
 * each of which no durable commit, no current name and no session needs. A
 * crash at any point leaves every commit whole or gone; a file no longer needed
 * may remain until the next gc.
 */
#ifndef STORE_GC_H
#define STORE_GC_H

#include "store.h"

#include <stdint.h>

struct store;

/*
 * Files a delete kept for a session or the current state only, removed
 * once none needs them,
 * and the counts. Written under op_lock and store.lock both.
 */
struct gc_state {
	struct store_pair *deferred;
	size_t n, cap;
	uint64_t commits_deleted;
	uint64_t bytes_freed;
	uint64_t files_removed;
};

/*
 * Remove the deferred files nothing needs now: after a session ended, and
 * after a switch moved the current state. Takes op_lock.
 */
void gc_collect_deferred(struct store *s);

/* Delete the oldest commits beyond the newest keep (0: keep all). */
enum store_err gc_retain(struct store *s, unsigned int keep);

void gc_release(struct store *s);

#endif /* STORE_GC_H */
