/*
 * fuzz_http.c - whole raw requests to the api through libmicrohttpd.
 *
 * The first byte of the input picks the api: bit 0 a token is required
 * (Authorization: Bearer fuzz-token), bit 1 auto-persist. The rest is sent
 * as it is on one connection (one request, several pipelined, bodies of
 * any kind, garbage), after replacing the placeholders {A} {B} {U}
 * (modules), {C} (the commit), {R} (the root), {S} (a session opened for
 * this input) and {T} (the token), so that the fuzzer reaches the routes
 * with real ids. Every answer is checked as http_harness.h says.
 */
#include "http_harness.h"

#define MAX_REQ (1024 * 1024)

static char req[MAX_REQ];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	hh_init("fuzz_http");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;

	if (size < 1)
		return 0;
	hh_begin(data[0]);
	n = hh_expand(data + 1, size - 1, req, sizeof(req));
	hh_exchange(req, n);
	hh_check(NULL, 0);
	hh_end();
	return 0;
}
