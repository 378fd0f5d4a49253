/*
 * unit_openapi.c - docs/openapi.yaml ($OPENAPI, default docs/openapi.yaml)
 * and the router's table (api_route_count(), api_route_at()) name the same
 * routes and methods, each once. Also: every store error name and every
 * error code of the api is in the spec's ErrorCode enum, and every
 * operation answers a 2xx and, but /health, 401.
 *
 * No YAML library: the paths section is line-based, "  /path:" then
 * "    get:" lines, and the rest is found by indentation.
 */
#include "api.h"
#include "store.h"
#include "t.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPS 64

struct op {
	char method[8]; /* uppercase */
	char path[128];
	int has_2xx;
	int has_401;
	int seen; /* matched in the table */
};

static struct op ops[MAX_OPS];
static size_t nops;

static size_t indent_of(const char *s)
{
	size_t n = 0;

	while (s[n] == ' ')
		n++;
	return n;
}

static int is_method(const char *s, size_t n)
{
	static const char *const m[] = {"get",	 "put",	 "post",   "delete",
					"patch", "head", "options"};
	size_t i;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (strlen(m[i]) == n && strncmp(m[i], s, n) == 0)
			return 1;
	return 0;
}

/* Error codes the api answers with besides the store's names. */
static const char *const api_codes[] = {
    "invalid_id",	  "invalid_size",
    "invalid_offset",	  "invalid_length",
    "invalid_json",	  "invalid_body",
    "unauthorized",	  "not_found",
    "method_not_allowed", "body_too_large",
    "internal",		  "forbidden",
    "invalid_framing",	  "unsupported_transfer_coding",
    "invalid_request",	  "uri_too_long",
    "headers_too_large",  "http_version_not_supported",
};

static int enum_has(char **enums, size_t n, const char *code)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(enums[i], code) == 0)
			return 1;
	return 0;
}

int main(void)
{
	const char *spec = getenv("OPENAPI");
	char line[1024], cur[128] = "", *enums[64];
	size_t i, k, nenums = 0;
	int in_paths = 0, in_enum = 0, in_errcode = 0;
	struct op *op = NULL;
	FILE *f;

	if (!spec || !*spec)
		spec = "docs/openapi.yaml";
	f = fopen(spec, "r");
	if (!f) {
		perror(spec);
		CHECK(!"the spec opens");
		return t_done();
	}
	CHECK(fgets(line, sizeof(line), f) &&
	      strncmp(line, "openapi: 3.0.", 13) == 0);
	while (fgets(line, sizeof(line), f)) {
		size_t ind, n;
		char *s;

		line[strcspn(line, "\r\n")] = '\0';
		ind = indent_of(line);
		s = line + ind;
		if (!*s || *s == '#')
			continue;
		if (ind == 0) {
			in_paths = strcmp(s, "paths:") == 0;
			op = NULL;
		}
		/* components.schemas.ErrorCode.enum */
		if (ind == 4)
			in_errcode = strcmp(s, "ErrorCode:") == 0;
		if (in_errcode && ind == 6)
			in_enum = strcmp(s, "enum:") == 0;
		else if (in_errcode && in_enum && ind == 8 &&
			 strncmp(s, "- ", 2) == 0 &&
			 nenums < sizeof(enums) / sizeof(enums[0]))
			enums[nenums++] = strdup(s + 2);
		if (!in_paths)
			continue;
		n = strlen(s);
		if (ind == 2 && s[0] == '/' && s[n - 1] == ':') {
			snprintf(cur, sizeof(cur), "%.*s", (int)(n - 1), s);
			op = NULL;
		} else if (ind == 4 && n > 1 && s[n - 1] == ':' &&
			   is_method(s, n - 1)) {
			if (nops == MAX_OPS || !*cur) {
				CHECK(!"room for the operations");
				break;
			}
			op = &ops[nops++];
			for (k = 0; k < n - 1 && k < sizeof(op->method) - 1;
			     k++)
				op->method[k] =
				    (char)toupper((unsigned char)s[k]);
			snprintf(op->path, sizeof(op->path), "%s", cur);
		} else if (ind == 4) {
			op = NULL; /* path-level parameters: */
		} else if (op && ind == 8 && s[0] == '\'' && n == 6) {
			/* '200': a status of the operation's responses */
			if (s[1] == '2')
				op->has_2xx = 1;
			if (strncmp(s, "'401'", 5) == 0)
				op->has_401 = 1;
		}
	}
	fclose(f);

	/* every route of the table is in the spec, once */
	CHECK(api_route_count() > 0);
	for (i = 0; i < api_route_count(); i++) {
		const char *method, *pattern;
		int found = 0;

		api_route_at(i, &method, &pattern);
		for (k = 0; k < nops; k++) {
			if (strcmp(ops[k].method, method) == 0 &&
			    strcmp(ops[k].path, pattern) == 0) {
				found++;
				ops[k].seen++;
			}
		}
		if (found != 1)
			fprintf(stderr, "route %s %s: %d times in %s\n", method,
				pattern, found, spec);
		CHECK(found == 1);
	}
	/* every operation of the spec is a route */
	for (k = 0; k < nops; k++) {
		if (ops[k].seen != 1)
			fprintf(stderr, "%s %s of %s: %d routes\n",
				ops[k].method, ops[k].path, spec, ops[k].seen);
		CHECK(ops[k].seen == 1);
		if (!ops[k].has_2xx)
			fprintf(stderr, "%s %s: no 2xx answer\n", ops[k].method,
				ops[k].path);
		CHECK(ops[k].has_2xx);
		if (strcmp(ops[k].path, "/health") != 0) {
			if (!ops[k].has_401)
				fprintf(stderr, "%s %s: no 401 answer\n",
					ops[k].method, ops[k].path);
			CHECK(ops[k].has_401);
		}
	}
	CHECK(nops == api_route_count());

	/* every error code is in the ErrorCode enum */
	CHECK(nenums > 0);
	for (i = 1; i < STORE_ERR_COUNT; i++) {
		const char *name = store_errname((enum store_err)i);

		if (!enum_has(enums, nenums, name))
			fprintf(stderr, "error code %s not in the spec\n",
				name);
		CHECK(enum_has(enums, nenums, name));
	}
	for (i = 0; i < sizeof(api_codes) / sizeof(api_codes[0]); i++) {
		if (!enum_has(enums, nenums, api_codes[i]))
			fprintf(stderr, "error code %s not in the spec\n",
				api_codes[i]);
		CHECK(enum_has(enums, nenums, api_codes[i]));
	}
	for (i = 0; i < nenums; i++)
		free(enums[i]);
	printf("%zu routes, %zu operations in %s\n", api_route_count(), nops,
	       spec);
	return t_done();
}
