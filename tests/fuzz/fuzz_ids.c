/*
 * fuzz_ids.c - store_id_parse() on arbitrary bytes.
 *
 * The input is copied into a buffer of exactly its length, so that
 * AddressSanitizer catches any read past len. The parser must accept
 * exactly 64 hex digits in either case and reject everything else; what it
 * accepts must round-trip through store_id_hex() as the same digits in
 * uppercase, and parse back to the same id. Every prefix length is tried
 * on inputs of up to 80 bytes (a 64-digit id with trailing bytes included),
 * and the whole input with its own length.
 */
#include "store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *buf, size_t len)
{
	fprintf(stderr, "fuzz_ids: %s (len %zu): \"%.*s\"\n", what, len,
		(int)(len > 100 ? 100 : len), buf);
	abort();
}

static int is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static char upper(char c)
{
	return c >= 'a' && c <= 'f' ? (char)(c - 'a' + 'A') : c;
}

/* Check one call on the first len bytes of a buffer of exactly len bytes. */
static void check(const char *src, size_t len)
{
	struct store_id id, again;
	char hex[STORE_HEX_LEN + 1], *buf;
	enum store_err err;
	int want = len == STORE_HEX_LEN;
	size_t i;

	/* malloc(0) may return NULL; give it one byte it must not read */
	buf = malloc(len ? len : 1);
	if (!buf)
		abort();
	if (len)
		memcpy(buf, src, len);
	for (i = 0; want && i < len; i++)
		want = is_hex((unsigned char)buf[i]);
	memset(&id, 0xA5, sizeof(id));
	err = store_id_parse(&id, buf, len);
	if (err != STORE_OK && err != STORE_EINVAL)
		fail("an error other than EINVAL", buf, len);
	if (want && err)
		fail("64 hex digits rejected", buf, len);
	if (!want && !err)
		fail("not 64 hex digits, yet accepted", buf, len);
	if (!err) {
		store_id_hex(&id, hex);
		if (hex[STORE_HEX_LEN] != '\0')
			fail("store_id_hex left no NUL", buf, len);
		for (i = 0; i < STORE_HEX_LEN; i++)
			if (hex[i] != upper(buf[i]))
				fail("does not round-trip in uppercase", buf,
				     len);
		if (store_id_parse(&again, hex, STORE_HEX_LEN) != STORE_OK ||
		    !store_id_equal(&id, &again))
			fail("store_id_hex output does not parse back", buf,
			     len);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_id id;
	size_t len;

	/* NULL is never an id, whatever the length */
	if (store_id_parse(&id, NULL, size) != STORE_EINVAL)
		fail("NULL accepted", "", 0);
	check((const char *)data, size);
	if (size <= 80)
		for (len = 0; len < size; len++)
			check((const char *)data, len);
	return 0;
}
