/*
 * e2e_cli.c - bin/modstore ($MODSTORE_CLI) against a real modstored: every
 * command, --help of each, exit codes, the token, and `verify` both on an
 * intact commit and on one whose module commit file has a flipped byte.
 * Expected ids are recomputed here with the store's pure id functions.
 */
#include "e2e.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLI_MAX_ARGS 16
#define TOKEN	     "cli-token-0123456789"

static const char *cli_path;
static char tmproot[512];

/*
 * Run the CLI with url (NULL: MODSTORE_URL unset), token (NULL: unset),
 * standard input from in (NULL: /dev/null) and the arguments that follow
 * (NULL-terminated).
 */
static int cli(struct e2e_cmd *r, const char *url, const char *token,
	       const char *in, ...)
{
	const char *argv[CLI_MAX_ARGS + 2];
	va_list ap;
	size_t n = 0;
	int rc;

	argv[n++] = cli_path;
	va_start(ap, in);
	while (n <= CLI_MAX_ARGS && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	rc = e2e_cmd_run(tmproot, url, token, in, argv, r);
	if (r->status != 0 && getenv("CLI_VERBOSE"))
		fprintf(stderr, "cli %s: exit %d: %s", argv[1], r->status,
			r->err ? r->err : "");
	return rc;
}

/* The first line of out, without its newline, into buf. */
static const char *line1(const struct e2e_cmd *r, char *buf, size_t size)
{
	size_t n = strcspn(r->out, "\n");

	if (n >= size)
		n = size - 1;
	memcpy(buf, r->out, n);
	buf[n] = '\0';
	return buf;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static void hex_of(const struct store_id *id, char hex[STORE_HEX_LEN + 1])
{
	store_id_hex(id, hex);
}

/* Every subcommand answers --help with its usage, exit 0. */
static void test_help(void)
{
	static const char *const cmds[] = {
	    "deploy",  "modules", "session", "read", "write",  "commit",
	    "commits", "persist", "restore", "root", "health", "verify"};
	char want[64];
	struct e2e_cmd r;
	size_t i;

	cli(&r, NULL, NULL, NULL, "--help", NULL);
	CHECK(r.status == 0 && strstr(r.out, "Exit status"));
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		CHECK(strstr(r.out, cmds[i]) != NULL);
	e2e_cmd_release(&r);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		snprintf(want, sizeof(want), "usage: modstore %s", cmds[i]);
		cli(&r, NULL, NULL, NULL, cmds[i], "--help", NULL);
		CHECK(r.status == 0);
		CHECK(strncmp(r.out, want, strlen(want)) == 0);
		e2e_cmd_release(&r);
		cli(&r, NULL, NULL, NULL, "help", cmds[i], NULL);
		CHECK(r.status == 0 && strncmp(r.out, want, strlen(want)) == 0);
		e2e_cmd_release(&r);
	}
	/* usage errors: 2 */
	cli(&r, NULL, NULL, NULL, NULL);
	CHECK(r.status == 2);
	e2e_cmd_release(&r);
	cli(&r, NULL, NULL, NULL, "frobnicate", NULL);
	CHECK(r.status == 2 && strstr(r.err, "frobnicate"));
	e2e_cmd_release(&r);
	cli(&r, NULL, NULL, NULL, "restore", "not-an-id", NULL);
	CHECK(r.status == 2 && strstr(r.err, "not an id"));
	e2e_cmd_release(&r);
	cli(&r, NULL, NULL, NULL, "root", "extra", NULL);
	CHECK(r.status == 2);
	e2e_cmd_release(&r);
	cli(&r, NULL, NULL, NULL, "session", "sideways", NULL);
	CHECK(r.status == 2);
	e2e_cmd_release(&r);
	cli(&r, NULL, NULL, NULL, "--version", NULL);
	CHECK(r.status == 0 && strncmp(r.out, "modstore ", 9) == 0);
	e2e_cmd_release(&r);
}

/* Flip one byte of every MOD_MODCOMMIT file of module hex in dir. */
static int flip_commit_files(const char *dir, const char *mod, off_t at)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	char path[1024];
	unsigned char b;
	int fd, n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (strlen(de->d_name) != 2 * STORE_HEX_LEN + 1 ||
		    strncmp(de->d_name, mod, STORE_HEX_LEN) != 0 ||
		    de->d_name[STORE_HEX_LEN] != '_')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		/* commit files are 0400/0600: the test runs as their owner */
		chmod(path, 0600);
		fd = open(path, O_RDWR);
		if (fd < 0)
			continue;
		if (pread(fd, &b, 1, at) == 1) {
			b ^= 0x01;
			if (pwrite(fd, &b, 1, at) == 1)
				n++;
		}
		close(fd);
	}
	closedir(d);
	return n;
}

static void test_session_flow(struct e2e_daemon *d)
{
	static const char code1[] = "cli module one";
	static const char code2[] = "cli module two";
	char m1[STORE_HEX_LEN + 1], m2[STORE_HEX_LEN + 1];
	char sid[STORE_HEX_LEN + 1], commit[STORE_HEX_LEN + 1];
	char want[STORE_HEX_LEN + 1], buf[256], path[600], path2[600];
	unsigned char *mem1 = NULL, *mem2 = NULL, *big = NULL;
	struct store_pair pairs[2];
	struct store_id id;
	size_t big_len = 3 * 1024 * 1024 + 100, n;
	struct e2e_cmd r;
	json_t *j;

	/* deploy from stdin and from a file */
	snprintf(path, sizeof(path), "%s/code1", tmproot);
	CHECK(write_file(path, code1, strlen(code1)) == 0);
	cli(&r, d->url, NULL, path, "deploy", NULL);
	store_module_id(code1, strlen(code1), &id);
	hex_of(&id, m1);
	CHECK(r.status == 0 && strcmp(line1(&r, buf, sizeof(buf)), m1) == 0);
	e2e_cmd_release(&r);
	snprintf(path, sizeof(path), "%s/code2", tmproot);
	CHECK(write_file(path, code2, strlen(code2)) == 0);
	cli(&r, d->url, NULL, NULL, "deploy", "--size", "8192", path, NULL);
	store_module_id(code2, strlen(code2), &id);
	hex_of(&id, m2);
	CHECK(r.status == 0 && strcmp(line1(&r, buf, sizeof(buf)), m2) == 0);
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "deploy", "--size", "100", path, NULL);
	CHECK(r.status == 3 && strstr(r.err, "invalid_size"));
	e2e_cmd_release(&r);

	cli(&r, d->url, NULL, NULL, "modules", NULL);
	CHECK(r.status == 0);
	snprintf(buf, sizeof(buf), "%s 65536 -\n", m1);
	CHECK(strstr(r.out, buf) != NULL);
	snprintf(buf, sizeof(buf), "%s 8192 -\n", m2);
	CHECK(strstr(r.out, buf) != NULL);
	e2e_cmd_release(&r);

	/* a session; writes from a file (> 1 MiB) and from stdin */
	cli(&r, d->url, NULL, NULL, "session", "new", NULL);
	CHECK(r.status == 0 && strlen(line1(&r, sid, sizeof(sid))) == 64);
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "session", "list", NULL);
	CHECK(r.status == 0 && strstr(r.out, sid) != NULL);
	e2e_cmd_release(&r);

	big = malloc(big_len);
	mem1 = calloc(1, 3 * 1024 * 1024 + 4096);
	mem2 = calloc(1, 8192);
	if (!big || !mem1 || !mem2) {
		CHECK(!"out of memory");
		goto out;
	}
	e2e_pattern(7, 0, big, big_len);
	snprintf(path, sizeof(path), "%s/big", tmproot);
	CHECK(write_file(path, big, big_len) == 0);
	cli(&r, d->url, NULL, NULL, "write", sid, m1, path, NULL);
	CHECK(r.status == 0);
	e2e_cmd_release(&r);
	memcpy(mem1, big, big_len);
	snprintf(path2, sizeof(path2), "%s/small", tmproot);
	CHECK(write_file(path2, "world", 5) == 0);
	cli(&r, d->url, NULL, path2, "write", "-O", "4096", sid, m2, "-", NULL);
	CHECK(r.status == 0);
	e2e_cmd_release(&r);
	memcpy(mem2 + 4096, "world", 5);

	/* read back the session's view */
	cli(&r, d->url, NULL, NULL, "read", "-O", "4096", "-n", "5", sid, m2,
	    NULL);
	CHECK(r.status == 0 && r.outlen == 5 && !memcmp(r.out, "world", 5));
	e2e_cmd_release(&r);
	snprintf(path2, sizeof(path2), "%s/readback", tmproot);
	cli(&r, d->url, NULL, NULL, "read", "-o", path2, sid, m1, NULL);
	CHECK(r.status == 0);
	e2e_cmd_release(&r);
	{
		char *back = t_slurp(path2, &n);

		CHECK(back && n == 3 * 1024 * 1024 + 4096 &&
		      memcmp(back, mem1, n) == 0);
		free(back);
	}
	cli(&r, d->url, NULL, NULL, "read", "-O", "8190", "-n", "5", sid, m2,
	    NULL);
	CHECK(r.status == 3 && strstr(r.err, "416"));
	e2e_cmd_release(&r);

	/* commit with a wrong If-Match: 3, the session stays */
	cli(&r, d->url, NULL, NULL, "commit", "--if-match",
	    "00000000000000000000000000000000000000000000000000000000000000AA",
	    sid, NULL);
	CHECK(r.status == 3 && strstr(r.err, "root_mismatch"));
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "root", NULL);
	CHECK(r.status == 0);
	line1(&r, want, sizeof(want));
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "commit", "--if-match", want, sid, NULL);
	CHECK(r.status == 0);
	line1(&r, commit, sizeof(commit));
	e2e_cmd_release(&r);

	/* the commit id recomputed here */
	pairs[0].module = (store_id_parse(&id, m1, 64), id);
	store_memory_id(mem1, 3 * 1024 * 1024 + 4096, &pairs[0].commit);
	pairs[1].module = (store_id_parse(&id, m2, 64), id);
	store_memory_id(mem2, 8192, &pairs[1].commit);
	store_state_id(pairs, 2, &id);
	hex_of(&id, want);
	CHECK(strcmp(commit, want) == 0);

	cli(&r, d->url, NULL, NULL, "root", NULL);
	CHECK(r.status == 0 && strcmp(line1(&r, buf, sizeof(buf)), want) == 0);
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "commits", NULL);
	CHECK(r.status == 0 && strstr(r.out, commit) != NULL);
	hex_of(&pairs[1].commit, buf);
	CHECK(strstr(r.out, buf) != NULL);
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "--json", "commits", NULL);
	j = json_loads(r.out, 0, NULL);
	CHECK(r.status == 0 && json_is_object(json_object_get(j, commit)));
	json_decref(j);
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "persist", NULL);
	CHECK(r.status == 0 && strstr(r.out, "persisted 1 commit"));
	e2e_cmd_release(&r);

	/* a second commit, then restore the first */
	cli(&r, d->url, NULL, NULL, "session", "new", NULL);
	line1(&r, sid, sizeof(sid));
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, path2, "write", sid, m2, NULL);
	CHECK(r.status == 0);
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "commit", sid, NULL);
	CHECK(r.status == 0 && strncmp(r.out, commit, 64) != 0);
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "restore", commit, NULL);
	CHECK(r.status == 0 && strstr(r.out, commit));
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "read", "-O", "4096", "-n", "5", m2, NULL);
	CHECK(r.status == 0 && r.outlen == 5 && !memcmp(r.out, "world", 5));
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "read", m2, NULL);
	CHECK(r.status == 0 && r.outlen == 8192 &&
	      memcmp(r.out, mem2, 8192) == 0);
	e2e_cmd_release(&r);

	/* session drop; a dropped session is 404 (3) */
	cli(&r, d->url, NULL, NULL, "session", "new", "--base", commit, NULL);
	CHECK(r.status == 0);
	line1(&r, sid, sizeof(sid));
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "session", "drop", sid, NULL);
	CHECK(r.status == 0);
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "session", "drop", sid, NULL);
	CHECK(r.status == 3 && strstr(r.err, "session_not_found"));
	e2e_cmd_release(&r);

	/* verify: intact */
	cli(&r, d->url, NULL, NULL, "verify", commit, NULL);
	CHECK(r.status == 0);
	CHECK(strstr(r.out, "OK: commit") != NULL);
	CHECK(strstr(r.out, "MISMATCH") == NULL);
	e2e_cmd_release(&r);
	cli(&r, d->url, NULL, NULL, "verify",
	    "00000000000000000000000000000000000000000000000000000000000000AA",
	    NULL);
	CHECK(r.status == 3 && strstr(r.err, "commit_not_found"));
	e2e_cmd_release(&r);

	/* verify: one byte flipped in m1's commit file on the server's disk */
	CHECK(flip_commit_files(d->dir, m1, 12345) >= 1);
	cli(&r, d->url, NULL, NULL, "verify", commit, NULL);
	CHECK(r.status == 1);
	snprintf(buf, sizeof(buf), "module %s: MISMATCH", m1);
	CHECK(strstr(r.out, buf) != NULL);
	hex_of(&pairs[0].commit, buf);
	CHECK(strstr(r.out, buf) != NULL); /* the id it should have had */
	snprintf(buf, sizeof(buf), "module %s: OK", m2);
	CHECK(strstr(r.out, buf) != NULL); /* the other module is fine */
	snprintf(buf, sizeof(buf), "commit %s: MISMATCH", commit);
	CHECK(strstr(r.out, buf) != NULL);
	CHECK(strstr(r.out, "FAILED") != NULL);
	if (r.status != 1)
		fprintf(stderr, "verify said:\n%s%s", r.out, r.err);
	e2e_cmd_release(&r);
out:
	free(big);
	free(mem1);
	free(mem2);
}

static void test_unreachable(void)
{
	struct e2e_cmd r;

	cli(&r, "http://127.0.0.1:1", NULL, NULL, "health", NULL);
	CHECK(r.status == 4);
	e2e_cmd_release(&r);
	cli(&r, NULL, NULL, NULL, "--url", "http://127.0.0.1:1/", "root", NULL);
	CHECK(r.status == 4 && strstr(r.err, "127.0.0.1:1"));
	e2e_cmd_release(&r);
}

static void test_token(void)
{
	struct e2e_daemon d;
	struct e2e_tmp tmp;
	char tokfile[600];
	const char *args[] = {"--token-file", tokfile, NULL};
	struct e2e_cmd r;

	if (e2e_tmp_make(&tmp, "cli-token") < 0) {
		CHECK(!"tmp");
		return;
	}
	snprintf(tokfile, sizeof(tokfile), "%s/token", tmp.root);
	CHECK(write_file(tokfile, TOKEN "\n", strlen(TOKEN) + 1) == 0);
	if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
		CHECK(!"daemon started");
		e2e_tmp_done(&tmp);
		return;
	}
	cli(&r, d.url, NULL, NULL, "health", NULL);
	CHECK(r.status == 0 && strcmp(r.out, "ok\n") == 0);
	e2e_cmd_release(&r);
	cli(&r, d.url, NULL, NULL, "root", NULL);
	CHECK(r.status == 3 && strstr(r.err, "unauthorized"));
	e2e_cmd_release(&r);
	cli(&r, d.url, "wrong", NULL, "modules", NULL);
	CHECK(r.status == 3 && strstr(r.err, "401"));
	e2e_cmd_release(&r);
	cli(&r, d.url, TOKEN, NULL, "root", NULL);
	CHECK(r.status == 0 && strlen(r.out) == 65);
	e2e_cmd_release(&r);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
}

int main(void)
{
	struct e2e_daemon d;
	struct e2e_tmp tmp;
	struct e2e_cmd r;

	cli_path = e2e_cli_bin();
	if (access(cli_path, X_OK) != 0) {
		fprintf(stderr, "e2e_cli: no CLI at %s\n", cli_path);
		CHECK(!"the CLI exists");
		return t_done();
	}
	if (e2e_tmp_make(&tmp, "cli") < 0) {
		CHECK(!"tmp");
		return t_done();
	}
	snprintf(tmproot, sizeof(tmproot), "%s", tmp.root);
	test_help();
	test_unreachable();
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"daemon started");
		e2e_tmp_done(&tmp);
		return t_done();
	}
	cli(&r, d.url, NULL, NULL, "health", NULL);
	CHECK(r.status == 0 && strcmp(r.out, "ok\n") == 0);
	e2e_cmd_release(&r);
	test_session_flow(&d);
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	test_token();
	e2e_tmp_done(&tmp);
	return t_done();
}
