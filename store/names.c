/*
 * names.c - the names of the state directory's files.
 */
#include "names.h"
#include "ids.h"

#include <stdio.h>
#include <string.h>

void names_commit(char out[NAME_LEN], const char *mod,
		  const struct store_id *mc)
{
	char hex[STORE_HEX_LEN + 1];

	store_id_hex(mc, hex);
	snprintf(out, NAME_LEN, "%s_%s", mod, hex);
}

void names_suffix(char out[NAME_LEN], const char *mod, const char *suffix)
{
	snprintf(out, NAME_LEN, "%s%s", mod, suffix);
}

void names_init(char out[NAME_LEN], const char *mod)
{
	snprintf(out, NAME_LEN, ".%s_init", mod);
}

void names_bytecode(char out[NAME_LEN], const char *mod)
{
	snprintf(out, NAME_LEN, ".%s_bytecode", mod);
}

void names_tmp(char out[TMP_NAME_LEN], uint64_t n)
{
	snprintf(out, TMP_NAME_LEN, "%s%016llx", TMP_PREFIX,
		 (unsigned long long)n);
}

int names_is_tmp(const char *name, size_t len)
{
	size_t pl = strlen(TMP_PREFIX), k;

	if (len != pl + 16 || memcmp(name, TMP_PREFIX, pl))
		return 0;
	for (k = pl; k < len; k++)
		if (!((name[k] >= '0' && name[k] <= '9') ||
		      (name[k] >= 'a' && name[k] <= 'f')))
			return 0;
	return 1;
}

int names_is_module(const char *name)
{
	return strlen(name) == STORE_HEX_LEN &&
	       ids_is_upper_hex(name, STORE_HEX_LEN);
}

/* 1 if name is "." MOD suffix, MOD into mod. */
static int dot_name(const char *name, const char *suffix,
		    char mod[STORE_HEX_LEN + 1])
{
	if (strlen(name) != 1 + STORE_HEX_LEN + strlen(suffix) ||
	    name[0] != '.' || strcmp(name + 1 + STORE_HEX_LEN, suffix) ||
	    !ids_is_upper_hex(name + 1, STORE_HEX_LEN))
		return 0;
	memcpy(mod, name + 1, STORE_HEX_LEN);
	mod[STORE_HEX_LEN] = '\0';
	return 1;
}

int names_is_init(const char *name, char mod[STORE_HEX_LEN + 1])
{
	return dot_name(name, "_init", mod);
}

int names_is_bytecode(const char *name, char mod[STORE_HEX_LEN + 1])
{
	return dot_name(name, "_bytecode", mod);
}
