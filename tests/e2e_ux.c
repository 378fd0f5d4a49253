/*
 * e2e_ux.c - small things a user meets first: a bad option value names
 * the option (--threads abc, -t abc, MODSTORE_THREADS); the JSON log
 * prints "ms" with three decimals, never %.17g's 0.0899940000000005;
 * libmicrohttpd's own messages are JSON lines of that log too; the CLI
 * takes --size 4K; `make run` builds bin/modstore too; the
 * README lists the connection options rather than calling the limits
 * fixed; docker/base-image.sh takes its Debian mirror from the machine's
 * apt sources (deb822 or one-line) and names no host itself.
 */
#include "e2e.h"

#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *daemon_bin(void)
{
	const char *b = getenv("MODSTORED");

	return b && *b ? b : "bin/modstored";
}

/* sh -c cmd with its standard output and error into out; exit status. */
static int run(const char *cmd, char *out, size_t size)
{
	char line[4096];
	size_t n = 0;
	FILE *p;
	int st;

	snprintf(line, sizeof(line), "%s 2>&1", cmd);
	p = popen(line, "r");
	if (!p)
		return -1;
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	while (fread(line, 1, sizeof(line), p) > 0)
		; /* the rest is not needed */
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_option_names(const char *dir)
{
	char cmd[1024], out[4096];

	snprintf(cmd, sizeof(cmd), "%s --dir %s --threads abc", daemon_bin(),
		 dir);
	CHECK(run(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "invalid value 'abc' for --threads") != NULL);
	snprintf(cmd, sizeof(cmd), "%s --dir %s -t abc", daemon_bin(), dir);
	CHECK(run(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "for --threads") != NULL);
	snprintf(cmd, sizeof(cmd), "MODSTORE_THREADS=abc %s --dir %s",
		 daemon_bin(), dir);
	CHECK(run(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "for MODSTORE_THREADS") != NULL);
	snprintf(cmd, sizeof(cmd), "%s --dir %s --max-body 12Q", daemon_bin(),
		 dir);
	CHECK(run(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "for --max-body") != NULL);
}

/* Every request line of the JSON log has "ms":N.NNN; how many there are. */
static int json_ms_lines(const char *log, int *bad)
{
	regex_t re;
	char line[4096];
	int n = 0;
	FILE *f = fopen(log, "r");

	*bad = 0;
	if (!f || regcomp(&re, "\"ms\":[0-9]+\\.[0-9]{3},", REG_EXTENDED)) {
		if (f)
			fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		json_t *j = json_loads(line, 0, NULL);

		if (j && json_object_get(j, "status")) {
			n++;
			if (regexec(&re, line, 0, NULL, 0) ||
			    !json_is_real(json_object_get(j, "ms"))) {
				fprintf(stderr, "log line: %s", line);
				(*bad)++;
			}
		}
		json_decref(j);
	}
	regfree(&re);
	fclose(f);
	return n;
}

/* Lines of the log, or -1 when one is not a JSON object. */
static int all_json(const char *log)
{
	char line[8192];
	int n = 0, mhd = 0;
	FILE *f = fopen(log, "r");

	if (!f)
		return -1;
	while (n >= 0 && fgets(line, sizeof(line), f)) {
		json_t *j = json_loads(line, 0, NULL);

		if (!json_is_object(j)) {
			fprintf(stderr, "not JSON: %.200s\n", line);
			n = -2;
		}
		mhd += strstr(line, "\"libmicrohttpd: ") != NULL;
		json_decref(j);
		n++;
	}
	fclose(f);
	return mhd ? n : -1;
}

static void test_json_log_and_cli(struct e2e_tmp *tmp)
{
	const char *args[] = {"--log-format", "json", NULL};
	const char *cli = getenv("MODSTORE_CLI");
	struct e2e_daemon d;
	struct e2e_resp r;
	char cmd[2048], out[4096], code[600];
	int i, bad = 0, n;
	FILE *f;

	if (e2e_start(&d, tmp->state, tmp->log, args) < 0) {
		CHECK(!"daemon started");
		return;
	}
	for (i = 0; i < 20; i++) {
		e2e_get(&d, "/root", &r);
		e2e_resp_release(&r);
	}
	/* the CLI's sizes: 4K is 4096 bytes, 8KiB 8192; 4Q is a usage error */
	snprintf(code, sizeof(code), "%s/code", tmp->root);
	f = fopen(code, "w");
	if (f) {
		fputs("ux module", f);
		fclose(f);
	}
	cli = cli && *cli ? cli : "bin/modstore";
	snprintf(cmd, sizeof(cmd), "%s --url %s --json deploy --size 4K %s",
		 cli, d.url, code);
	CHECK(run(cmd, out, sizeof(out)) == 0 && strstr(out, "\"size\":4096"));
	snprintf(cmd, sizeof(cmd), "%s --url %s deploy --size 4Q %s", cli,
		 d.url, code);
	CHECK(run(cmd, out, sizeof(out)) == 2);
	/* libmicrohttpd's own complaint (a 431) is a JSON line too */
	snprintf(code, sizeof(code), "%s/big-header", tmp->root);
	f = fopen(code, "w");
	if (f) {
		fputs("X-Big: ", f);
		for (i = 0; i < 100000; i++)
			fputc('b', f);
		fputc('\n', f);
		fclose(f);
	}
	snprintf(cmd, sizeof(cmd),
		 "curl -s -o /dev/null -w '%%{http_code}' -H @%s %s/root", code,
		 d.url);
	CHECK(run(cmd, out, sizeof(out)) == 0 && !strcmp(out, "431"));
	CHECK(e2e_stop(&d, SIGTERM) == 0);
	CHECK(all_json(tmp->log) > 20);
	n = json_ms_lines(tmp->log, &bad);
	printf("JSON log: %d request lines, %d with another ms\n", n, bad);
	CHECK(n >= 20 && bad == 0);
}

static void test_make_run(void)
{
	char out[256];

	/* -B: every command, as on a fresh clone; -n: none is run; the two
	 * link lines, whatever the number of compile lines before them; not
	 * the flags of a make this test runs under (SANITIZE=...) */
	CHECK(run("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "
		  "make -n -B run SANITIZE= RUN_DIR=/nonexistent | "
		  "grep -c -e '-o bin/modstore ' -e '-o bin/modstored '",
		  out, sizeof(out)) == 0);
	CHECK(!strcmp(out, "2\n"));
}

static void test_readme(void)
{
	char out[4096];

	CHECK(run("grep -c -e '--max-connections-per-ip N' "
		  "-e '--connection-timeout SEC' -e '--max-connections N' "
		  "README.md",
		  out, sizeof(out)) == 0 &&
	      atoi(out) >= 3);
	CHECK(run("tr '\\n' ' ' <README.md | grep -q 'Fixed limits: 1000'", out,
		  sizeof(out)) == 1);
}

static void test_base_image_mirror(const char *root)
{
	char dir[600], path[700], cmd[1024], out[1024];
	FILE *f;

	CHECK(run("grep -n 'deb.debian.org' docker/base-image.sh", out,
		  sizeof(out)) == 1);
	/* deb822 */
	snprintf(dir, sizeof(dir), "%s/apt822", root);
	snprintf(path, sizeof(path), "%s/sources.list.d", dir);
	mkdir(dir, 0700);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/sources.list.d/debian.sources", dir);
	f = fopen(path, "w");
	if (f) {
		fputs(
		    "Types: deb\nURIs: http://security.example/debian-security"
		    "\nSuites: bookworm-security\nComponents: main\n\n"
		    "Types: deb deb-src\n# a comment\n"
		    "URIs: http://mirror.example/debian\n"
		    "Suites: bookworm bookworm-updates\nComponents: main\n",
		    f);
		fclose(f);
	}
	snprintf(cmd, sizeof(cmd),
		 "APT_ETC=%s docker/base-image.sh --print-mirror", dir);
	CHECK(run(cmd, out, sizeof(out)) == 0 &&
	      !strcmp(out, "http://mirror.example/debian\n"));
	/* one-line sources.list */
	snprintf(dir, sizeof(dir), "%s/aptlist", root);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/sources.list", dir);
	f = fopen(path, "w");
	if (f) {
		fputs(
		    "# deb http://commented.example/debian bookworm main\n"
		    "deb http://updates.example/debian bookworm-updates main\n"
		    "deb [arch=amd64] http://list.example/debian bookworm "
		    "main\n",
		    f);
		fclose(f);
	}
	snprintf(cmd, sizeof(cmd),
		 "APT_ETC=%s docker/base-image.sh --print-mirror", dir);
	CHECK(run(cmd, out, sizeof(out)) == 0 &&
	      !strcmp(out, "http://list.example/debian\n"));
	/* none: a clear failure; the variable wins */
	snprintf(cmd, sizeof(cmd),
		 "APT_ETC=%s/none docker/base-image.sh --print-mirror", root);
	CHECK(run(cmd, out, sizeof(out)) == 1 && strstr(out, "no apt source"));
	snprintf(cmd, sizeof(cmd),
		 "APT_ETC=%s/none MODSTORE_DEBIAN_MIRROR=http://own.example/d "
		 "docker/base-image.sh --print-mirror",
		 root);
	CHECK(run(cmd, out, sizeof(out)) == 0 &&
	      !strcmp(out, "http://own.example/d\n"));
}

int main(void)
{
	struct e2e_tmp tmp;

	if (e2e_tmp_make(&tmp, "ux") < 0)
		return 1;
	test_option_names(tmp.state);
	test_json_log_and_cli(&tmp);
	test_make_run();
	test_readme();
	test_base_image_mirror(tmp.root);
	e2e_tmp_done(&tmp);
	return t_done();
}
