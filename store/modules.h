/*
 * modules.h - the module table: every deployed module, sorted by id.
 * Modules are never removed, so a struct module pointer stays valid while
 * the store is open.
 */
#ifndef STORE_MODULES_H
#define STORE_MODULES_H

#include "store.h"

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
 * older than init files). Removes the .MOD_init of an unfinished deploy.
 */
enum store_err modules_scan(struct store *s);

/*
 * Deploy module id with size bytes of zeros (checked by the caller): its
 * .MOD_init and MOD, durable, then the table. *out is the module, new
 * (*created set) or deployed already. Takes op_lock.
 */
enum store_err modules_deploy(struct store *s, const struct store_id *id,
			      uint64_t size, struct module **out, int *created);

void modules_release(struct store *s);

#endif /* STORE_MODULES_H */
