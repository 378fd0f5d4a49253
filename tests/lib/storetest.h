/*
 * storetest.h - helpers shared by the store's unit tests: ids computed
 * independently of the store, files of a state directory read back and
 * checked against the layout of store.h, snapshots, and a fault hook.
 *
 * Checks made here count in t.h's totals and name the caller's file and
 * line (the ST_* macros pass them).
 */
#ifndef STORETEST_H
#define STORETEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

/* Exit status of a child killed by the crash hook. */
#define ST_CRASH_EXIT 77

/* --- checks -------------------------------------------------------------- */

/* Record a failure at file:line with a printf message. */
void st_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void st_pass(void);

/* CHECK that two ids are equal, printing both in hex on failure. */
#define CHECK_ID(a, b) st_check_id(__FILE__, __LINE__, #a, (a), #b, (b))
void st_check_id(const char *file, int line, const char *an,
		 const struct store_id *a, const char *bn,
		 const struct store_id *b);

/* --- ids, computed without the store ---------------------------------------
 */

/* BLAKE2b-256 of buf. */
void st_h(const void *buf, size_t len, struct store_id *out);

/* Reference module commit id: RFC 6962 MTH over the page leaves. */
void st_ref_memory_id(const void *mem, size_t len, struct store_id *out);

/* Reference commit id of n pairs in any order; 0, or -1 out of memory. */
int st_ref_state_id(const struct store_pair *pairs, size_t n,
		    struct store_id *out);

/* Parse 64 hex digits (either case); 0 on success, -1 otherwise. */
int st_parse(const char *hex, size_t len, struct store_id *out);

/* Id of 64 hex digits; an all-zero id and a failed check when malformed. */
struct store_id st_id(const char *hex);

/* 64 uppercase hex digits of id into buf; returns buf. */
const char *st_hex(const struct store_id *id, char buf[STORE_HEX_LEN + 1]);

/* 1 when s is exactly 64 uppercase hex digits. */
int st_is_hex64_upper(const char *s, size_t len);

/* --- files --------------------------------------------------------------- */

/* dir/name; caller frees. */
char *st_path(const char *dir, const char *name);

/* The file names MOD, MOD_SUFFIX and MOD_MODCOMMIT into buf. */
void st_mod_name(char *buf, size_t size, const struct store_id *mod,
		 const char *suffix);
void st_commit_name(char *buf, size_t size, const struct store_id *mod,
		    const struct store_id *mc);

/* Whole file dir/name into *buf (caller frees); 0, or -1 (errno set). */
int st_read(const char *dir, const char *name, unsigned char **buf,
	    size_t *len);

/* Replace dir/name with buf; 0 or -1. */
int st_write(const char *dir, const char *name, const void *buf, size_t len);

int st_exists(const char *dir, const char *name);

/* Sorted names of a directory. */
struct st_names {
	char **v;
	size_t n;
};

enum st_which { ST_PLAIN, ST_DOT, ST_ALL };

/* Names of dir: not starting with '.', only those, or all (never . ..). */
int st_names_list(const char *dir, enum st_which which, struct st_names *out);
void st_names_release(struct st_names *names);
int st_names_has(const struct st_names *names, const char *name);
int st_names_equal(const struct st_names *a, const struct st_names *b);
/* Print to stderr what is only in a and only in b. */
void st_names_diff(const char *an, const struct st_names *a, const char *bn,
		   const struct st_names *b);
/* Names from a NULL-terminated list (copied). */
int st_names_from(struct st_names *out, const char *const *list);
int st_names_add(struct st_names *names, const char *name);
/* Number of names in dir starting with ".tmp". */
size_t st_count_tmp(const char *dir);
/* 1 if one of dir's journals (.journal, .journal.1) is live. */
int st_journal_live(const char *dir);
/*
 * 1 if dir's newest live journal leads to root: replaying it at the next
 * open gives the state that is there now. 0 if none is live, -1 otherwise.
 */
int st_journal_ok(const char *dir, const struct store_id *root);

/* --- the state on disk ------------------------------------------------- */

/* The state a directory holds, recomputed from its files. */
struct st_state {
	size_t nmods;		  /* every module (MOD file) */
	struct store_id *mods;	  /* sorted */
	uint64_t *sizes;	  /* bytes of MOD */
	int *has_commit;	  /* MOD_last_id present */
	struct store_id *last;	  /* its id when has_commit */
	size_t npairs;		  /* modules with a commit */
	struct store_pair *pairs; /* sorted by module */
	struct store_id root;	  /* store_state_id of pairs */
};

/*
 * Recompute the state of dir from its files and check the layout: names,
 * MOD = MOD_last = MOD_<id of MOD_last_id>, "HEX\n" in _last_id, every
 * commit file's memory id equal to its name, modules with no commit all
 * zeros. Returns the number of problems (printed, not counted).
 */
int st_state_read(const char *dir, struct st_state *out);
void st_state_release(struct st_state *st);

/*
 * Check dir's layout, and that the store agrees with it: store_root equals
 * the recomputed root, store_module_list matches the files. The root goes
 * to *root when root is not NULL.
 */
#define ST_CHECK_STORE(s, dir, root)                                           \
	st_check_store(__FILE__, __LINE__, (s), (dir), (root))
int st_check_store(const char *file, int line, struct store *s, const char *dir,
		   struct store_id *root);

/* Check every commit of the commits store: id = state id, files present. */
#define ST_CHECK_COMMITS(s, dir)                                               \
	st_check_commits(__FILE__, __LINE__, (s), (dir))
int st_check_commits(const char *file, int line, struct store *s,
		     const char *dir);

/* Check that the file `commits` holds the commits store, as JSON. */
#define ST_CHECK_COMMITS_FILE(s, dir)                                          \
	st_check_commits_file(__FILE__, __LINE__, (s), (dir))
int st_check_commits_file(const char *file, int line, struct store *s,
			  const char *dir);

/* A copy of the commits store, oldest first. */
struct st_commit {
	struct store_id id;
	size_t n;
	struct store_pair *pairs;
};
struct st_commits {
	size_t n;
	struct st_commit *v;
};
enum store_err st_commits_copy(struct store *s, struct st_commits *out);
void st_commits_release(struct st_commits *c);

/* Plain files of a directory and a hash of each content. */
struct st_snap {
	struct st_names names;
	struct store_id *hash;
};
int st_snap_take(const char *dir, struct st_snap *out);
void st_snap_release(struct st_snap *snap);
/* 1 when equal; otherwise print the differences (prefixed with what). */
int st_snap_equal(const char *what, const struct st_snap *a,
		  const struct st_snap *b);

/* --- the store ------------------------------------------------------------ */

/*
 * Fault hook: while armed, counts steps and at the target-th one returns
 * err, or _exit(ST_CRASH_EXIT) when crash is set. Not thread-safe by
 * design: fault tests run one operation at a time.
 */
struct st_fault {
	int armed;
	long target; /* 1-based; 0: never fail */
	long calls;  /* steps seen while armed */
	int err;
	int crash;
	int hit;
	int log; /* print each step while armed */
	char step[64];
	char first[64]; /* first step seen while armed */
};
int st_fault_hook(void *ctx, const char *step);
void st_fault_arm(struct st_fault *f, long target, int err, int crash);
void st_fault_disarm(struct st_fault *f);

/* Open dir with the defaults and, if f is not NULL, the fault hook. */
enum store_err st_open(struct store **s, const char *dir, struct st_fault *f);

/* Deploy bytecode `code` (a string); its id goes to *mod if not NULL. */
enum store_err st_deploy(struct store *s, const char *code, uint64_t size,
			 struct store_id *mod);

/* Write len bytes of value c at off. */
enum store_err st_fill(struct store *s, const struct store_id *sid,
		       const struct store_id *mod, uint64_t off, int c,
		       size_t len);

/* Begin a session on the current state; id into *sid. */
enum store_err st_begin(struct store *s, struct store_id *sid);

/* Commit; the commit id into *commit if not NULL. */
enum store_err st_commit(struct store *s, const struct store_id *sid,
			 struct store_id *commit);

/* store_root, or an all-zero id (and a failed check) on error. */
struct store_id st_root(struct store *s);

/* Memory of a module in a session, read whole; caller frees. */
unsigned char *st_session_mem(struct store *s, const struct store_id *sid,
			      const struct store_id *mod, size_t *len);

/* Byte i = i mod 251 (the vectors' pattern), from offset 0. */
void st_pattern(unsigned char *buf, size_t len);

/* The first 8 hex digits of id, for logs; returns buf. */
const char *st_short(const struct store_id *id, char buf[9]);

#endif /* STORETEST_H */
