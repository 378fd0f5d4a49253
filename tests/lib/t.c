/*
 * t.c - the test harness shared by unit and end-to-end tests.
 */
#include "t.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int t_passed;
int t_failed;

int t_done(void)
{
	int none = !t_passed && !t_failed;

	if (none) {
		/* the message before the summary, which stays the last line */
		fflush(stdout);
		fprintf(stderr, "FAIL no check ran: a test program that "
				"checks nothing proves nothing\n");
	}
	printf("%d passed, %d failed\n", t_passed, t_failed);
	fflush(stdout);
	return t_failed || none ? 1 : 0;
}

char *t_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	size_t len;
	char *path;

	if (!base || !*base)
		base = "/tmp";
	len = strlen(base) + strlen(tag) + 32;
	path = malloc(len);
	if (!path)
		return NULL;
	snprintf(path, len, "%s/modstore-%s-XXXXXX", base, tag);
	if (!mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void t_rmrf(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void t_run_each(const struct t_case *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *dir = t_tmpdir(v[i].tag);

		if (!dir) {
			CHECK(!"temporary directory");
			continue;
		}
		v[i].fn(dir);
		t_rmrf(dir);
		free(dir);
	}
}

char *t_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	*len = 0;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}
