/*
 * e2e_bytecode.c - the bytecode of modules through the real daemon:
 * POST /modules then GET /modules/{mod}/bytecode gives the same bytes,
 * with `Content-Type: application/octet-stream` and `ETag: "MOD"`, for a
 * small body and for bodies of many chunks (with a Content-Length and
 * chunked); a second deploy and a restart keep the file; 404
 * module_not_found and bytecode_not_found (a module whose file is gone, as
 * one deployed before bytecode was kept; deployed again, it has one); a
 * file whose bytes were changed on disk is 500 corrupt_state; bodies
 * refused leave no temporary; and `modstore bytecode` to standard output
 * and to a file, with its errors.
 */
#include "e2e.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_BODY    (4 * 1024 * 1024)
#define BIG_LEN	    (3 * 1024 * 1024 + 7) /* many of the daemon's chunks */
#define CHUNKED_LEN (1024 * 1024 + 4097)  /* sent without Content-Length */

static struct e2e_daemon d;
static struct e2e_tmp tmp;
static const char *const args[] = {"--max-body", "4M", NULL};

static const unsigned char small[] = "\0asm\x01\0\0\0(module $small)\0";

/* dir/.MOD_bytecode of module hex into buf. */
static const char *code_path(char *buf, size_t size, const char *hex)
{
	snprintf(buf, size, "%s/.%s_bytecode", tmp.state, hex);
	return buf;
}

/* The id of a deploy's answer, checking its status. */
static int deploy_answer(struct e2e_resp *r, long want,
			 const struct store_id *expect)
{
	const char *id = e2e_str(r, "id");
	struct store_id got;

	E2E_STATUS(r, want);
	if (!id || store_id_parse(&got, id, strlen(id)) != STORE_OK) {
		CHECK(!"the answer has an id");
		return -1;
	}
	CHECK(store_id_equal(&got, expect));
	return 0;
}

/* GET the bytecode of hex; 1 when it is exactly code, with the headers. */
static int bytecode_is(const char *hex, const void *code, size_t len)
{
	char path[160], buf[128], etag[STORE_HEX_LEN + 3];
	struct e2e_resp r;
	int ok;

	snprintf(path, sizeof(path), "/modules/%s/bytecode", hex);
	snprintf(etag, sizeof(etag), "\"%s\"", hex);
	if (e2e_get(&d, path, &r) < 0)
		return 0;
	ok = r.status == 200 && r.len == len && !memcmp(r.body, code, len);
	if (!ok)
		fprintf(stderr, "GET %s: %ld, %zu bytes (want %zu)\n", path,
			r.status, r.len, len);
	CHECK(e2e_header(&r, "Content-Type", buf, sizeof(buf)) &&
	      !strcmp(buf, "application/octet-stream"));
	CHECK(e2e_header(&r, "ETag", buf, sizeof(buf)) && !strcmp(buf, etag));
	e2e_resp_release(&r);
	return ok;
}

/* Hash of a download, chunk by chunk. */
struct hasher {
	crypto_generichash_state st;
	uint64_t len;
};

static int hash_sink(void *ctx, const unsigned char *data, size_t len)
{
	struct hasher *h = ctx;

	crypto_generichash_update(&h->st, data, len);
	h->len += len;
	return 0;
}

/* GET the bytecode of hex without keeping it: its hash and length. */
static void download_id(const char *hex, struct store_id *id, uint64_t *len,
			long *status)
{
	static struct hasher h; /* the state wants 64-byte alignment */
	char path[160];
	struct e2e_resp r;

	crypto_generichash_init(&h.st, NULL, 0, STORE_ID_BYTES);
	h.len = 0;
	snprintf(path, sizeof(path), "/modules/%s/bytecode", hex);
	*status = 0;
	if (e2e_download(&d, path, hash_sink, &h, &r) == 0)
		*status = r.status;
	e2e_resp_release(&r);
	crypto_generichash_final(&h.st, id->b, STORE_ID_BYTES);
	*len = h.len;
}

static int count_tmp(void *ctx)
{
	struct dirent *e;
	DIR *dir = opendir(tmp.state);
	int n = 0;

	(void)ctx;
	if (!dir)
		return 0;
	while ((e = readdir(dir)))
		n += !strncmp(e->d_name, ".tmp-", 5);
	closedir(dir);
	return n;
}

/* Temporaries go when the refused request completes, just after. */
static int no_tmp(void *ctx)
{
	return count_tmp(ctx) == 0;
}

static ino_t inode_of(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_ino : 0;
}

static void test_deploy_get(char small_hex[STORE_HEX_LEN + 1],
			    char big_hex[STORE_HEX_LEN + 1])
{
	char path[700], lower[STORE_HEX_LEN + 1], buf[128];
	unsigned char *big = NULL, *chunked = NULL;
	const char *const te[] = {"Transfer-Encoding: chunked", NULL};
	struct store_id id, got;
	struct e2e_resp r;
	struct stat sb;
	uint64_t len;
	long status;
	size_t i;

	/* a small binary body */
	store_module_id(small, sizeof(small), &id);
	store_id_hex(&id, small_hex);
	e2e_request(&d, "POST", "/modules?size=8192", small, sizeof(small),
		    NULL, &r);
	deploy_answer(&r, 201, &id);
	e2e_resp_release(&r);
	CHECK(bytecode_is(small_hex, small, sizeof(small)));
	CHECK(stat(code_path(path, sizeof(path), small_hex), &sb) == 0 &&
	      (size_t)sb.st_size == sizeof(small) &&
	      (sb.st_mode & 0777) == 0600);
	/* HEAD: the headers alone */
	snprintf(path, sizeof(path), "/modules/%s/bytecode", small_hex);
	e2e_request(&d, "HEAD", path, NULL, 0, NULL, &r);
	E2E_STATUS(&r, 200);
	CHECK(r.len == 0);
	CHECK(e2e_header(&r, "Content-Length", buf, sizeof(buf)) &&
	      strtoull(buf, NULL, 10) == sizeof(small));
	e2e_resp_release(&r);
	/* the id in lowercase names the same module; ETag in uppercase */
	for (i = 0; i <= STORE_HEX_LEN; i++)
		lower[i] = (char)(small_hex[i] >= 'A' && small_hex[i] <= 'F'
				      ? small_hex[i] - 'A' + 'a'
				      : small_hex[i]);
	snprintf(path, sizeof(path), "/modules/%s/bytecode", lower);
	e2e_get(&d, path, &r);
	E2E_STATUS(&r, 200);
	snprintf(path, sizeof(path), "\"%s\"", small_hex);
	CHECK(e2e_header(&r, "ETag", buf, sizeof(buf)) && !strcmp(buf, path));
	e2e_resp_release(&r);

	/* 3 MiB streamed with a Content-Length: many chunks */
	big = malloc(BIG_LEN);
	chunked = malloc(CHUNKED_LEN);
	if (!big || !chunked) {
		CHECK(!"out of memory");
		goto out;
	}
	e2e_pattern(11, 0, big, BIG_LEN);
	store_module_id(big, BIG_LEN, &id);
	store_id_hex(&id, big_hex);
	e2e_upload(&d, "POST", "/modules", 11, BIG_LEN, &r);
	deploy_answer(&r, 201, &id);
	e2e_resp_release(&r);
	download_id(big_hex, &got, &len, &status);
	CHECK(status == 200 && len == BIG_LEN && store_id_equal(&got, &id));
	CHECK(bytecode_is(big_hex, big, BIG_LEN));

	/* 1 MiB chunked: no Content-Length */
	e2e_pattern(12, 0, chunked, CHUNKED_LEN);
	store_module_id(chunked, CHUNKED_LEN, &id);
	e2e_request(&d, "POST", "/modules", chunked, CHUNKED_LEN, te, &r);
	deploy_answer(&r, 201, &id);
	e2e_resp_release(&r);
	store_id_hex(&id, buf);
	CHECK(bytecode_is(buf, chunked, CHUNKED_LEN));
	CHECK(e2e_wait_until(no_tmp, NULL, E2E_WAIT_MS));
out:
	free(big);
	free(chunked);
}

/* Deployed again: 200, the file it had stays (the same inode). */
static void test_again(const char *small_hex)
{
	char path[700];
	struct store_id id;
	struct e2e_resp r;
	ino_t ino;

	code_path(path, sizeof(path), small_hex);
	ino = inode_of(path);
	CHECK(ino != 0);
	store_module_id(small, sizeof(small), &id);
	e2e_request(&d, "POST", "/modules?size=4096", small, sizeof(small),
		    NULL, &r);
	deploy_answer(&r, 200, &id);
	CHECK(json_integer_value(json_object_get(r.json, "size")) == 8192);
	e2e_resp_release(&r);
	CHECK(inode_of(path) == ino);
	CHECK(bytecode_is(small_hex, small, sizeof(small)));
	CHECK(e2e_wait_until(no_tmp, NULL, E2E_WAIT_MS));
}

static void test_errors(void)
{
	static const char unknown[] =
	    "00000000000000000000000000000000000000000000000000000000000000AA";
	char path[200], buf[64];
	unsigned char *over;
	const char *const te[] = {"Transfer-Encoding: chunked", NULL};
	struct e2e_resp r;

	snprintf(path, sizeof(path), "/modules/%s/bytecode", unknown);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 404, "module_not_found");
	e2e_resp_release(&r);
	e2e_get(&d, "/modules/XYZ/bytecode", &r);
	E2E_ERROR(&r, 400, "invalid_id");
	e2e_resp_release(&r);
	e2e_request(&d, "PUT", path, "x", 1, NULL, &r);
	E2E_ERROR(&r, 405, "method_not_allowed");
	CHECK(e2e_header(&r, "Allow", buf, sizeof(buf)) &&
	      !strcmp(buf, "GET, HEAD"));
	e2e_resp_release(&r);
	snprintf(path, sizeof(path), "/modules/%s/bytecode/x", unknown);
	e2e_get(&d, path, &r);
	E2E_ERROR(&r, 404, "not_found");
	e2e_resp_release(&r);

	/* refused bodies keep nothing */
	e2e_request(&d, "POST", "/modules", "", 0, NULL, &r);
	E2E_ERROR(&r, 400, "invalid_body");
	e2e_resp_release(&r);
	e2e_request(&d, "POST", "/modules?size=100", "code", 4, NULL, &r);
	E2E_ERROR(&r, 400, "invalid_size");
	e2e_resp_release(&r);
	over = calloc(1, MAX_BODY + 1);
	if (over) {
		e2e_request(&d, "POST", "/modules", over, MAX_BODY + 1, NULL,
			    &r);
		E2E_ERROR(&r, 413, "body_too_large");
		e2e_resp_release(&r);
		/* chunked: refused once past the limit, after some chunks */
		e2e_request(&d, "POST", "/modules", over, MAX_BODY + 1, te, &r);
		E2E_ERROR(&r, 413, "body_too_large");
		e2e_resp_release(&r);
		free(over);
	}
	CHECK(e2e_wait_until(no_tmp, NULL, E2E_WAIT_MS));
}

/* Changed on disk: never served. Put back: served again. */
static void test_corrupt(const char *small_hex)
{
	char path[700], route[160];
	unsigned char flipped[sizeof(small)];
	struct e2e_resp r;
	int fd;

	code_path(path, sizeof(path), small_hex);
	memcpy(flipped, small, sizeof(small));
	flipped[10] ^= 0x01;
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 &&
	      write(fd, flipped, sizeof(flipped)) == (ssize_t)sizeof(flipped));
	if (fd >= 0)
		close(fd);
	snprintf(route, sizeof(route), "/modules/%s/bytecode", small_hex);
	e2e_get(&d, route, &r);
	E2E_ERROR(&r, 500, "corrupt_state");
	e2e_resp_release(&r);
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 &&
	      write(fd, small, sizeof(small)) == (ssize_t)sizeof(small));
	if (fd >= 0)
		close(fd);
	CHECK(bytecode_is(small_hex, small, sizeof(small)));
}

/*
 * A restart keeps the files. A module whose file is gone (as one of a
 * directory older than bytecode files) is 404 bytecode_not_found, until it
 * is deployed again.
 */
static void test_restart(const char *small_hex, const char *big_hex)
{
	char path[700], route[160];
	unsigned char *big = malloc(BIG_LEN);
	struct store_id id;
	struct e2e_resp r;

	CHECK(e2e_stop(&d, SIGTERM) == 0);
	CHECK(unlink(code_path(path, sizeof(path), small_hex)) == 0);
	if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
		CHECK(!"daemon restarted");
		free(big);
		return;
	}
	if (big) {
		e2e_pattern(11, 0, big, BIG_LEN);
		CHECK(bytecode_is(big_hex, big, BIG_LEN));
	}
	snprintf(route, sizeof(route), "/modules/%s/bytecode", small_hex);
	e2e_get(&d, route, &r);
	E2E_ERROR(&r, 404, "bytecode_not_found");
	e2e_resp_release(&r);
	snprintf(route, sizeof(route), "/modules/%s", small_hex);
	e2e_get(&d, route, &r);
	E2E_STATUS(&r, 200); /* the module itself is there */
	e2e_resp_release(&r);
	store_module_id(small, sizeof(small), &id);
	e2e_request(&d, "POST", "/modules", small, sizeof(small), NULL, &r);
	deploy_answer(&r, 200, &id);
	e2e_resp_release(&r);
	CHECK(bytecode_is(small_hex, small, sizeof(small)));
	free(big);
}

/* --- the CLI -------------------------------------------------------------- */

/* Run the CLI against the daemon with up to 6 arguments, NULL-ended. */
static void cli(struct e2e_cmd *r, ...)
{
	const char *argv[8];
	va_list ap;
	size_t n = 0;

	argv[n++] = e2e_cli_bin();
	va_start(ap, r);
	while (n < 7 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	(void)e2e_cmd_run(tmp.root, d.url, NULL, NULL, argv, r);
}

static void test_cli(const char *small_hex, const char *big_hex)
{
	static const char unknown[] =
	    "00000000000000000000000000000000000000000000000000000000000000AA";
	char file[600], *got, path[700];
	unsigned char *big = malloc(BIG_LEN);
	struct e2e_cmd r;
	size_t n;

	cli(&r, "bytecode", small_hex, NULL);
	CHECK(r.status == 0 && r.outlen == sizeof(small) &&
	      !memcmp(r.out, small, sizeof(small)));
	e2e_cmd_release(&r);
	snprintf(file, sizeof(file), "%s/code.bin", tmp.root);
	cli(&r, "bytecode", "-o", file, big_hex, NULL);
	CHECK(r.status == 0 && r.outlen == 0);
	e2e_cmd_release(&r);
	got = t_slurp(file, &n);
	if (big) {
		e2e_pattern(11, 0, big, BIG_LEN);
		CHECK(got && n == BIG_LEN && !memcmp(got, big, BIG_LEN));
	}
	free(got);
	cli(&r, "bytecode", "--help", NULL);
	CHECK(r.status == 0 && !strncmp(r.out, "usage: modstore bytecode", 24));
	e2e_cmd_release(&r);
	cli(&r, "--help", NULL);
	CHECK(r.status == 0 && strstr(r.out, "  bytecode MOD"));
	e2e_cmd_release(&r);
	cli(&r, "bytecode", NULL);
	CHECK(r.status == 2);
	e2e_cmd_release(&r);
	cli(&r, "bytecode", "not-an-id", NULL);
	CHECK(r.status == 2 && strstr(r.err, "not an id"));
	e2e_cmd_release(&r);
	cli(&r, "bytecode", unknown, NULL);
	CHECK(r.status == 3 && strstr(r.err, "module_not_found") &&
	      r.outlen == 0);
	e2e_cmd_release(&r);
	/* a module without its file */
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	CHECK(unlink(code_path(path, sizeof(path), small_hex)) == 0);
	if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
		CHECK(!"daemon restarted");
		free(big);
		return;
	}
	cli(&r, "bytecode", small_hex, NULL);
	CHECK(r.status == 3 && strstr(r.err, "404") &&
	      strstr(r.err, "bytecode_not_found") && r.outlen == 0);
	e2e_cmd_release(&r);
	free(big);
}

int main(void)
{
	char small_hex[STORE_HEX_LEN + 1], big_hex[STORE_HEX_LEN + 1];

	if (sodium_init() < 0 || e2e_tmp_make(&tmp, "bytecode") < 0)
		return 1;
	if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
		CHECK(!"daemon started");
		return t_done();
	}
	test_deploy_get(small_hex, big_hex);
	test_again(small_hex);
	test_errors();
	test_corrupt(small_hex);
	test_restart(small_hex, big_hex);
	test_cli(small_hex, big_hex);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
	return t_done();
}
