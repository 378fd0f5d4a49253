/*
 * commits_file.h - the file `commits`, where persist writes the commits
 * store: {"COMMIT":{"MOD":"MODCOMMIT",...},...} and a newline.
 */
#ifndef STORE_COMMITS_FILE_H
#define STORE_COMMITS_FILE_H

#include "commits.h"
#include "store.h"

#define COMMITS_FILE "commits"

struct store;

/* The text of n entries, oldest first; caller frees *out. */
enum store_err commits_file_format(const struct commits_entry *const *v,
				   size_t n, char **out, size_t *len);
/* Parse that text, checking every id; merge each commit into cs. */
enum store_err commits_file_parse(struct commits *cs, const char *buf,
				  size_t len);
/* Merge the file into cs (not store.cs: cs is the caller's); none is OK. */
enum store_err commits_file_load(struct store *s, struct commits *cs);
/* Replace the file by buf, durably. */
enum store_err commits_file_write(struct store *s, const char *buf, size_t len);

#endif /* STORE_COMMITS_FILE_H */
