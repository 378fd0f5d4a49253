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
