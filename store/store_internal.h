/*
 * store_internal.h - what the files of store/ share; not for other layers.
 */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include "store.h"
#include "hash.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#define TMP_PREFIX   ".tmp-"
#define TMP_NAME_LEN 32	 /* ".tmp-" + 16 hex + NUL, rounded up */
#define NAME_LEN     160 /* longest name: MOD_MODCOMMIT plus room */

/* A deployed module. Modules are never removed, so pointers stay valid. */
struct module {
	struct store_id id;
	char hex[STORE_HEX_LEN + 1];
	uint64_t init_size; /* deployed memory size, the size of .MOD_init */
};

/* One module with a module commit in a state. */
struct entry {
	struct module *mod;
	struct store_id mc;
	uint64_t size;
	struct tree *tree; /* NULL until needed; guarded by store.tree_lock */
};

/*
 * An immutable state: the modules that have a module commit, sorted by id,
 * and its root. The current state and every session's base are states.
 */
struct state {
	atomic_int refs;
	size_t n;
	struct entry *e;
	struct store_id root;
};

/* The commits store: commit -> {module -> module commit}. */
struct centry {
	struct store_id id;
	size_t n;
	struct store_pair *pairs; /* sorted by module id */
};

struct commits {
	struct centry **v; /* insertion order */
	size_t n, cap;
	size_t *index; /* open addressing over v, SIZE_MAX = empty */
	size_t index_cap;
};

struct session;

struct store {
	int dirfd;
	int lockfd;
	int jfd;  /* .journal, -1 until first used */
	int jnew; /* .journal made, its name not yet fsynced */
	/*
	 * The last switch's names are not known to be durable: the journal
	 * (live) still covers them, and is flushed before it is replaced.
	 * switch_seq counts switches, so that a flush started after one
	 * (a commit's, outside op_lock) is known to cover it.
	 */
	int jlive;
	atomic_uint switch_seq;
	uint64_t max_module_size;
	unsigned int max_sessions;
	store_fault_fn fault;
	void *fault_ctx;

	/*
	 * op_lock serialises what changes the directory: deploy, commit's
	 * switch, restore, persist. lock guards the fields below it and is
	 * held only for moments, never across I/O that waits on the disk.
	 * Order: session lock, op_lock, lock, tree_lock.
	 */
	pthread_mutex_t op_lock;
	pthread_mutex_t lock;
	pthread_mutex_t tree_lock;

	struct module **mods; /* sorted by id */
	size_t nmods, capmods;
	struct state *cur;
	struct session **sess; /* oldest first */
	size_t nsess, capsess;
	struct commits cs;
	int wedged; /* a switch failed half way: .journal must be replayed */

	atomic_uint_fast64_t bytes_written;
	atomic_uint_fast64_t ov_mem; /* dirty bytes in memory overlays */
};

/* Sessions' overlays are memory files while they hold less than this. */
#define OV_MEM_MAX ((uint64_t)64 << 20)

/* --- fs.c --------------------------------------------------------------- */

enum store_err err_from_errno(int e);

/* Run the fault hook for step; 0 or the errno it asks for. */
int fault_at(struct store *s, const char *step);

/* A new temporary name ".tmp-XXXXXXXXXXXXXXXX". */
void tmp_name(char out[TMP_NAME_LEN]);

/* Create a new temporary file (O_EXCL, 0600); its name in name. */
enum store_err tmp_create(struct store *s, char name[TMP_NAME_LEN], int *fd);

/* Create a temporary file already unlinked: only the descriptor remains. */
enum store_err anon_create(struct store *s, int *fd);

/* Write all of buf at off. */
enum store_err write_all(struct store *s, int fd, const void *buf, size_t len,
			 uint64_t off, const char *step);
enum store_err read_all(int fd, void *buf, size_t len, uint64_t off);

enum store_err fsync_fd(struct store *s, int fd, const char *step);
enum store_err fsync_dir(struct store *s);

/*
 * Copy len bytes at off from in to out at the same offset, skipping holes
 * of in (out must already be that long and read as zeros there).
 */
enum store_err copy_data(struct store *s, int in, int out, uint64_t off,
			 uint64_t len, uint64_t *copied);

/* Copy len bytes at off from in to out at the same offset, holes and all. */
enum store_err copy_bytes(struct store *s, int in, int out, uint64_t off,
			  uint64_t len);

/* Write a small file durably: temporary, fsync, rename, fsync directory. */
enum store_err write_file_atomic(struct store *s, const char *name,
				 const void *buf, size_t len, const char *step);

/*
 * Read a whole small file; *buf is NUL-terminated, caller frees.
 * STORE_ENOCOMMIT when the file does not exist.
 */
enum store_err read_file(int dirfd, const char *name, char **buf, size_t *len);

/* --- state.c ------------------------------------------------------------ */

struct state *state_new(size_t n);
struct state *state_ref(struct state *st);
void state_unref(struct state *st);
const struct entry *state_find(const struct state *st,
			       const struct store_id *mod);
/* Compute st->root from its entries. */
enum store_err state_compute_root(struct state *st);

/* The module's tree in entry e (built from its file if needed); a ref. */
enum store_err entry_tree(struct store *s, struct entry *e, struct tree **out);

struct module *module_find(struct store *s, const struct store_id *id);

/* Name helpers: "MOD", "MOD_MC", "MOD_last", "MOD_last_id", ".MOD_init". */
void name_commit(char out[NAME_LEN], const struct module *m,
		 const struct store_id *mc);
void name_suffix(char out[NAME_LEN], const struct module *m,
		 const char *suffix);
void name_init(char out[NAME_LEN], const struct module *m);

/* The current state, referenced (caller unrefs). */
struct state *current_state(struct store *s);

/*
 * A state of the given pairs: sizes from the commit files, trees shared
 * with the current state where the module commit is the same.
 */
enum store_err state_from_pairs(struct store *s, const struct store_pair *pairs,
				size_t n, struct state **out);

/* --- journal.c ---------------------------------------------------------- */

enum journal_op { JOURNAL_COMMIT = 1, JOURNAL_RESTORE = 2 };

/* Where a switch takes a new commit file from: a temporary, or .MOD_init. */
#define SRC_INIT "init"

/*
 * One module's change in a switch: to module commit mc, or to none. src,
 * if not "", names where the file MOD_MC comes from when it does not exist
 * yet: a complete, durable temporary renamed to it, or SRC_INIT, .MOD_init
 * linked to it.
 */
struct jentry {
	struct module *mod;
	int has_mc;
	struct store_id mc;
	char src[TMP_NAME_LEN];
	int made; /* switch_finish made MOD_MC */
};

/* A new commit file for store_switch: module m's comes from src. */
struct jsrc {
	const struct module *mod;
	char src[TMP_NAME_LEN];
};

struct journal {
	enum journal_op op;
	struct store_id root;
	size_t n;
	struct jentry *e;
};

/*
 * A switch moves the _last, _last_id and MOD names of every entry. It runs
 * as: journal_write (the intent, in place, flushed), switch_finish (new
 * commit files put in place, links, renames, and MOD_last_id written in
 * place). The journal stays live: the next
 * switch flushes the file system before it writes its own, and store_close()
 * flushes and clears it. After a crash, store_open() replays a live journal.
 */
enum store_err journal_write(struct store *s, const struct journal *j);
enum store_err switch_finish(struct store *s, struct journal *j);
/* Mark the journal carried out (not flushed). */
void journal_clear(struct store *s);
/* Flush the file system holding the state directory (syncfs). */
enum store_err sync_store(struct store *s, const char *step);
void journal_release(struct journal *j);

/*
 * Switch the directory from the current state to st (journal, prepare,
 * finish) and make st current. flushed, if not NULL, is the switch_seq
 * read before the caller's last sync_store(); src lists the new commit
 * files the switch puts in place. Called with op_lock held. On
 * failure before the journal is durable nothing changed; after it, the store is
 * wedged until store_unwedge() replays the journal.
 */
enum store_err store_switch(struct store *s, struct state *st,
			    enum journal_op op, const unsigned int *flushed,
			    const struct jsrc *src, size_t nsrc);
enum store_err store_unwedge(struct store *s);

/* Replay .journal if present; *replayed (may be NULL) is set if it was. */
enum store_err journal_recover(struct store *s, struct journal *out,
			       int *replayed);

/* --- commits.c ---------------------------------------------------------- */

void commits_release(struct commits *cs);
const struct centry *commits_find(const struct commits *cs,
				  const struct store_id *id);
/* Room for one more commit: commits_insert() then cannot fail. */
enum store_err commits_reserve(struct commits *cs);
/* A commit entry holding a copy of pairs (sorted by module). */
struct centry *centry_new(const struct store_id *id,
			  const struct store_pair *pairs, size_t n);
void centry_free(struct centry *c);
/* Insert c after commits_reserve(); cs owns it (freed if id is known). */
void commits_insert(struct commits *cs, struct centry *c);
/* Add a copy of pairs (sorted by module) under id unless already there. */
enum store_err commits_add(struct commits *cs, const struct store_id *id,
			   const struct store_pair *pairs, size_t n);
/* Serialise as JSON {"COMMIT":{"MOD":"MODCOMMIT",...},...}; caller frees. */
enum store_err commits_format(const struct commits *cs, char **out,
			      size_t *len);
/* Parse that JSON, checking every id; merge each commit into cs. */
enum store_err commits_parse_merge(struct commits *cs, const char *buf,
				   size_t len);

/* --- session.c ---------------------------------------------------------- */

void session_free_all(struct store *s);

#endif /* STORE_INTERNAL_H */
