/*
 * journal.h - the journal and the switch of names: how a commit or a
 * restore moves the directory from one state to the next, and how an
 * interrupted one is carried out at the next open. journal.c states the
 * invariants.
 */
#ifndef STORE_JOURNAL_H
#define STORE_JOURNAL_H

#include "names.h"
#include "store.h"

#include <stdatomic.h>
#include <stdint.h>

struct store;
struct state;
struct module;

/* What journal.c keeps of .journal between switches. */
struct journal_state {
	int fd;	    /* .journal, -1 until first used */
	int fresh;  /* .journal made, its name not yet fsynced */
	int live;   /* the last switch's names not yet known durable */
	int wedged; /* a switch failed half way: the journal must be replayed */
	uint64_t size;	 /* bytes in .journal */
	atomic_uint seq; /* switches made */
	/* the last journal this process wrote or replayed, while its
	 * carried-out mark is not known durable (see journal_settle) */
	int recorded;
	int recorded_op;
	struct store_id recorded_root;
	/* MOD_last_id files kept open between switches (journal.c) */
	struct journal_idfd *idfd;
	size_t nidfd, maxidfd;
	uint64_t idtick;
};

/*
 * A switch writes MOD_last_id in place through a descriptor it keeps: at
 * most JOURNAL_ID_FDS of them (and a quarter of the process's limit on
 * open files), the least recently used closed first.
 */
#define JOURNAL_ID_FDS 1024
struct journal_idfd {
	const struct module *mod;
	int fd;
	uint64_t used;
};

enum journal_op { JOURNAL_COMMIT = 1, JOURNAL_RESTORE = 2 };

/* Where a switch takes a new commit file from: a temporary, or .MOD_init. */
#define SRC_INIT "init"

/* A new commit file for journal_switch(): module mod's comes from src. */
struct jsrc {
	const struct module *mod;
	char src[TMP_NAME_LEN];
	int used; /* set by a switch that named it: it is gone or in place */
};

/*
 * The number of switches made so far. A caller that reads it and then
 * flushes the file system (fs_sync) passes it to journal_switch() as
 * flushed: the switches before that flush need no flush of their own.
 */
unsigned int journal_seq(struct store *s);

/*
 * Switch the directory from the current state to st (journal, new files,
 * names) and make st current. src lists the new commit files (durable
 * already) the switch puts in place, where they are not there yet. Called
 * with op_lock held. On failure before the journal is durable nothing
 * changed; after it, the names are put back, or, should that fail too, the
 * store is wedged until journal_unwedge() replays the journal.
 */
enum store_err journal_switch(struct store *s, struct state *st,
			      enum journal_op op, const unsigned int *flushed,
			      struct jsrc *src, size_t nsrc);

/* 1 while a failed switch waits for its replay. op_lock held. */
int journal_wedged(struct store *s);

/*
 * Replay a live journal and take the current state from the files again.
 * A commit that the journal carried out is added to the commits store (not
 * to the file `commits`: persist decides that). At open, and after a
 * switch failed half way; op_lock held (or the store not yet shared).
 */
enum store_err journal_reload(struct store *s);

/* journal_reload() if the store is wedged. op_lock held. */
enum store_err journal_unwedge(struct store *s);

/*
 * Before commit is deleted: when the journal this process wrote or
 * replayed records commit as its commit, make its names durable and its
 * carried-out mark too, so no later replay brings the deleted commit
 * back. op_lock held.
 */
enum store_err journal_settle(struct store *s, const struct store_id *commit);

/* At close: flush, mark the journal carried out, close it. */
void journal_close(struct store *s);

#endif /* STORE_JOURNAL_H */
