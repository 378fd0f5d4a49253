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

#include <stdint.h>

struct store;
struct state;
struct module;

/* What a journal slot held when this process last wrote or replayed it. */
struct journal_record {
	int valid; /* it may still be live on disk: its idle mark not durable */
	int op;
	struct store_id root;
};

/*
 * What journal.c keeps of its two files between switches: a switch writes
 * the slot the last one did not, so the journal before it stays on disk
 * until its names are durable.
 */
struct journal_state {
	int fd[2];	   /* .journal, .journal.1; -1 until first used */
	uint64_t size[2];  /* bytes in each */
	int last;	   /* the slot of the last switch, -1 none yet */
	uint64_t next_seq; /* the sequence number of the next journal */
	int live;	   /* the last switch's names not yet known durable */
	int wedged; /* a switch failed half way: the journal must be replayed */
	struct journal_record rec[2]; /* for journal_settle */
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
 * Switch the directory from the current state to st (journal, new files,
 * names) and make st current. src lists the new commit files, complete
 * temporaries not yet flushed: the switch's one flush makes them and its
 * journal durable together, before any name moves. Called with op_lock
 * held. On failure before the flush nothing changed; after it, the names
 * are put back, or, should that fail too, the store is wedged until
 * journal_unwedge() replays the journal.
 */
enum store_err journal_switch(struct store *s, struct state *st,
			      enum journal_op op, struct jsrc *src,
			      size_t nsrc);

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
