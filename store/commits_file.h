/*
 * commits_file.h - the file `commits`, where persist writes the commits
 * store: {"COMMIT":{"MOD":"MODCOMMIT",...},...} and a newline.
 *
 * A persist after the first writes only the commits the file does not
 * hold yet, appended in place (commits_file_append): their text goes past
 * the end of the file and is flushed, and only then the file's final '}'
 * becomes a space, a one-byte write that makes the file hold them. A cut
 * before that flip leaves the old object followed by an unfinished tail
 * that starts with ','; the parser takes the object, and the next open
 * cuts the tail off. The file is then still the seed's JSON object.
 */
#ifndef STORE_COMMITS_FILE_H
#define STORE_COMMITS_FILE_H

#include "commits.h"
#include "fs.h"
#include "store.h"

#include <pthread.h>
#include <stdint.h>

#define COMMITS_FILE "commits"

struct store;

/* What commits_file.c knows of the file; written under persist_lock. */
struct commits_file {
	int known;	  /* the fields below describe the file as it is */
	int exists;	  /* there is a file `commits` */
	uint64_t size;	  /* its bytes */
	uint64_t close;	  /* the offset of its final '}' */
	uint64_t entries; /* commits it holds */
	uint64_t ino;
};

/* A load of the file in the background; under store.lock. */
struct commits_load {
	pthread_t thread;
	int started, done, stop;
	enum store_err err;
	pthread_cond_t cv;
	uint64_t loaded; /* commits read so far */
};

/*
 * Load the file into s->cs at open: here, or when it is larger than
 * bytes, by a thread (store_commits_ready() waits for it).
 */
enum store_err commits_file_open_load(struct store *s, uint64_t bytes);
/* Stop and join a background load (store_close). */
void commits_file_load_stop(struct store *s);

/* Room for the text of one commit of n pairs. */
size_t commits_file_entry_room(size_t n);
/* "ID":{"MOD":"MC",...} of one commit at p; the bytes written. */
size_t commits_file_entry(char *p, const struct store_id *id,
			  const struct store_pair *pairs, size_t n);

/* Each commit of a parsed file: nonzero stops with that error. */
typedef enum store_err (*commits_file_fn)(void *ctx, const struct store_id *id,
					  const struct store_pair *pairs,
					  size_t n);
/* What a parse found: where the object ends, and a cut tail after it. */
struct commits_file_parse_info {
	uint64_t close, end; /* its final '}'; the bytes of the object */
	uint64_t entries;
	int tail; /* an unfinished append follows the object */
};
/*
 * Parse that text strictly, checking every id; fn gets each commit.
 * STORE_ECORRUPT on anything else.
 */
enum store_err commits_file_parse(const char *buf, size_t len,
				  commits_file_fn fn, void *ctx,
				  struct commits_file_parse_info *info);
/*
 * Read the file into fn (none is OK). With at_open, a cut tail is cut off
 * the file, and s->cf describes it after.
 */
enum store_err commits_file_load(struct store *s, commits_file_fn fn, void *ctx,
				 int at_open);
/* Replace the file by what fill gives, durably (entries: commits in it). */
enum store_err commits_file_write(struct store *s, fs_fill_fn fill, void *ctx,
				  uint64_t entries);
/*
 * Append what fill gives (the text of entries commits, each starting with
 * ",\n", then "\n}\n"), durably; with entries 0, nothing when the file is
 * as s->cf knows it. *whole is set (and nothing written) when the file is
 * not as s->cf knows it, or holds no commit: write it whole.
 */
enum store_err commits_file_append(struct store *s, fs_fill_fn fill, void *ctx,
				   uint64_t entries, int *whole);

/*
 * The text of the commits store, in pieces (store_commits_read() reads
 * it): every commit, those the file does not hold (as an append: no "{",
 * each after ",\n"), or those it holds but skip (may be NULL). The ids are
 * taken when it is made; formatted without store.lock.
 */
enum commits_read {
	COMMITS_READ_ALL,
	COMMITS_READ_UNPERSISTED,
	COMMITS_READ_PERSISTED
};
enum store_err commits_file_reader(struct store *s, enum commits_read what,
				   const struct store_id *skip,
				   struct store_commits_reader **r);
/* The commits it is to write. */
size_t commits_file_reader_count(const struct store_commits_reader *r);
/* fs_fill_fn over a reader. */
enum store_err commits_file_reader_fill(void *ctx, char *out, size_t cap,
					size_t *got);
/* Mark its commits held by the file (after writing them). */
void commits_file_reader_mark(const struct store_commits_reader *r);
void commits_file_reader_close(struct store_commits_reader *r);

#endif /* STORE_COMMITS_FILE_H */
