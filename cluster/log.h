/*
 * log.h - the records of a cluster's log (docs/cluster.md, "Records"):
 * their JSON text, and the fold of the log, in order, into the state it
 * describes (modules deployed, every commit with its whole map of pairs,
 * which of them are live, the current one). Pure: no I/O, no locks.
 */
#ifndef CLUSTER_LOG_H
#define CLUSTER_LOG_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

enum log_op {
	LOG_DEPLOY = 0,
	LOG_COMMIT,
	LOG_RESTORE,
	LOG_DELETE,
	LOG_PERSIST,
	LOG_GC,
};

struct log_record {
	enum log_op op;
	struct store_id id; /* the module (deploy) or the commit */
	uint64_t size;	    /* deploy: memory bytes */
	int bytecode;	    /* deploy: the module's bytecode is kept */
	int has_base;	    /* commit */
	struct store_id base;
	int full;		  /* commit: pairs are all of them */
	struct store_pair *pairs; /* commit: those differing from base */
	size_t n;
	int64_t fence; /* pending records: the leader key's create revision */
};

/* The record as JSON text (malloc'd, NUL-terminated), or NULL. */
char *log_record_text(const struct log_record *r);
/* Parse text; 0, or -1 when it is not a record. Release out. */
int log_record_parse(const char *text, size_t len, struct log_record *out);
void log_record_release(struct log_record *r);

struct log_module {
	struct store_id id;
	uint64_t size;
	int bytecode;
};

struct log_commit {
	struct store_id id;
	struct store_pair *pairs; /* all of them, sorted by module */
	size_t n;
	int live; /* in the commits store (not deleted since) */
};

struct log_fold {
	uint64_t seq; /* the last record folded */
	struct log_module *mods;
	size_t nmods, capmods;
	struct log_commit *c; /* in the order first added */
	size_t nc, capc;
	int has_current;
	struct store_id current;
	unsigned persists, gcs;
};

void log_fold_release(struct log_fold *f);
const struct log_module *log_fold_module(const struct log_fold *f,
					 const struct store_id *id);
const struct log_commit *log_fold_commit(const struct log_fold *f,
					 const struct store_id *id);
/*
 * The whole map of pairs of commit record r, against f (caller frees).
 * 0, or -1 when its base is not in f (or out of memory).
 */
int log_fold_pairs(const struct log_fold *f, const struct log_record *r,
		   struct store_pair **pairs, size_t *n);
/* Fold r as record number f->seq + 1. 0, or -1 (f unchanged). */
int log_fold_add(struct log_fold *f, const struct log_record *r);
/*
 * The fold as JSON text, a snapshot of the log up to f->seq (malloc'd),
 * or NULL; and back: 0, or -1 when text is not one (out released).
 */
char *log_fold_text(const struct log_fold *f);
int log_fold_parse(const char *text, size_t len, struct log_fold *out);
/*
 * The commit record of a commit whose whole map is pairs (sorted by
 * module): against its base in f when f has it, else full. Release out.
 */
int log_commit_record(const struct log_fold *f, const struct store_id *id,
		      int has_base, const struct store_id *base,
		      const struct store_pair *pairs, size_t n,
		      struct log_record *out);

#endif /* CLUSTER_LOG_H */
