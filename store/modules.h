/*
 * modules.h - the module table: every deployed module, sorted by id.
 * Modules are never removed, so a struct module pointer stays valid while
 * the store is open. Also the modules' bytecode: uploads (store_upload_*,
 * a temporary file each) and the files .MOD_bytecode they become.
 */
#ifndef STORE_MODULES_H
#define STORE_MODULES_H

#include "names.h"
#include "store.h"

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct module {
	struct store_id id;
	char hex[STORE_HEX_LEN + 1];
	uint64_t init_size; /* deployed memory size, the size of .MOD_init */
	struct store_id zero_mc; /* module commit id of that initial memory */
};

struct modules {
	struct module **v; /* sorted by id */
	size_t n, cap;
};

/*
 * An upload (store.h): the bytes so far in the temporary file tmp, open as
 * fd, their hash and their number. tmp is "" once a deploy has made the
 * file a .MOD_bytecode. The hash state wants 64-byte alignment, hence the
 * struct's, which store_upload_new() allocates with.
 */
struct store_upload {
	crypto_generichash_state hash;
	struct store *s;
	int fd;
	char tmp[TMP_NAME_LEN];
	uint64_t len;
	enum store_err err; /* the first failure of a write, then final */
};

/* The module of id, or NULL; the caller holds store.lock. */
struct module *modules_find_locked(struct store *s, const struct store_id *id);
/* The same, taking store.lock. */
struct module *modules_find(struct store *s, const struct store_id *id);

/* A copy of the table (caller frees *out); its length in *n. */
enum store_err modules_snapshot(struct store *s, struct module ***out,
				size_t *n);

/*
 * Find the modules of the directory at open: every name of 64 hex digits,
 * with the size of its .MOD_init (made from MOD's size for a directory
 * older than init files). Removes the .MOD_init and the .MOD_bytecode of
 * an unfinished deploy.
 */
enum store_err modules_scan(struct store *s);

/*
 * The module id of an upload's bytes: STORE_EINVAL when it holds none or
 * was kept already, the error of a failed write.
 */
enum store_err modules_upload_id(const struct store_upload *u,
				 struct store_id *id);

/*
 * Deploy module id with size bytes of zeros (checked by the caller): its
 * .MOD_bytecode from upload u (none when u is NULL), .MOD_init and MOD,
 * durable with one flush of the directory, then the table. *out is the
 * module, new (*created set) or deployed already; one deployed already
 * that has no .MOD_bytecode gets u's. u's bytes must hash to id. Takes
 * op_lock.
 */
enum store_err modules_deploy(struct store *s, const struct store_id *id,
			      uint64_t size, struct store_upload *u,
			      struct module **out, int *created);

void modules_release(struct store *s);

#endif /* STORE_MODULES_H */
