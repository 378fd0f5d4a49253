/*
 * names.h - the names of the state directory's files (pure). MOD is a
 * module's 64 uppercase hex digits, MC a module commit's.
 *
 *   MOD  MOD_MC  MOD_last  MOD_last_id  .MOD_init  .MOD_bytecode
 *   .tmp-XXXXXXXXXXXXXXXX
 */
#ifndef STORE_NAMES_H
#define STORE_NAMES_H

#include "store.h"

#define TMP_PREFIX   ".tmp-"
#define TMP_NAME_LEN 32	 /* ".tmp-" + 16 hex + NUL, rounded up */
#define NAME_LEN     160 /* longest name: MOD_MODCOMMIT plus room */

/* "MOD_MC": the memory of one module commit. */
void names_commit(char out[NAME_LEN], const char *mod,
		  const struct store_id *mc);
/* "MOD" followed by suffix: "" (current), "_last", "_last_id". */
void names_suffix(char out[NAME_LEN], const char *mod, const char *suffix);
/* ".MOD_init": the initial memory. */
void names_init(char out[NAME_LEN], const char *mod);
/* ".MOD_bytecode": the module's bytecode. */
void names_bytecode(char out[NAME_LEN], const char *mod);
/* ".tmp-" and 16 lowercase hex digits of n. */
void names_tmp(char out[TMP_NAME_LEN], uint64_t n);

/* 1 if name is a temporary's: TMP_PREFIX and 16 lowercase hex digits. */
int names_is_tmp(const char *name, size_t len);
/* 1 if name is a module's current memory: 64 uppercase hex digits. */
int names_is_module(const char *name);
/* 1 if name is ".MOD_init"; mod gets MOD then. */
int names_is_init(const char *name, char mod[STORE_HEX_LEN + 1]);
/* 1 if name is ".MOD_bytecode"; mod gets MOD then. */
int names_is_bytecode(const char *name, char mod[STORE_HEX_LEN + 1]);

#endif /* STORE_NAMES_H */
