/*
 * selftest.c - the power-cut file system checked on its own, through the
 * mount and the kernel, before it judges the store: each flush makes
 * durable what model.h says and nothing more, a cut drops the rest and no
 * cache of the kernel outlives it, a random cut keeps each rename whole,
 * and an armed event kills the process that makes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pcfs.h"
#include "t.h"

static const struct pcfs *fs;

static void path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", fs->mnt, name);
}

/* Create name with content text; flush it if asked. */
static void put(const char *name, const char *text, int fsync_file)
{
	char p[600];
	int fd;

	path(p, sizeof(p), name);
	fd = open(p, O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(pwrite(fd, text, strlen(text), 0) == (ssize_t)strlen(text));
	if (fsync_file)
		CHECK(fdatasync(fd) == 0);
	close(fd);
}

/* The content of name ("" when empty), or NULL when it does not exist. */
static const char *get(const char *name)
{
	static char buf[256];
	char p[600];
	ssize_t n;
	int fd;

	path(p, sizeof(p), name);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static int is(const char *name, const char *want)
{
	const char *got = get(name);

	if (!want || !got)
		return !want && !got;
	return !strcmp(got, want);
}

static void fsync_dir(void)
{
	int fd = open(fs->mnt, O_RDONLY | O_DIRECTORY);

	CHECK(fd >= 0 && fsync(fd) == 0);
	if (fd >= 0)
		close(fd);
}

static void cut(enum pcm_cut how, long seed)
{
	CHECK(pcfs_call(fs->fd, PCFS_FREEZE, 0, 0, NULL) == 0);
	CHECK(pcfs_call(fs->fd, PCFS_CUT, how, seed, NULL) == 0);
}

static void rename_in(const char *from, const char *to)
{
	char a[600], b[600];

	path(a, sizeof(a), from);
	path(b, sizeof(b), to);
	CHECK(rename(a, b) == 0);
}

void pcfs_selftest(const struct pcfs *f)
{
	long seed;
	pid_t pid;
	int status = 0, both = 0, none = 0;

	fs = f;
	/* nothing flushed: nothing survives */
	CHECK(pcfs_call(fs->fd, PCFS_RESET, 0, 0, NULL) == 0);
	put("a", "one", 0);
	cut(PCM_CUT_ALL, 0);
	CHECK(is("a", NULL));
	/* fdatasync keeps data, not the name; fsync of the directory both */
	put("a", "one", 1);
	cut(PCM_CUT_ALL, 0);
	CHECK(is("a", NULL));
	put("a", "one", 1);
	fsync_dir();
	put("b", "two", 0);
	fsync_dir();
	cut(PCM_CUT_ALL, 0);
	CHECK(is("a", "one"));
	CHECK(is("b", "")); /* its name, not its data */
	/* what is read after a cut is what survived, not a cached page */
	put("a", "ONE", 0);
	rename_in("a", "c");
	CHECK(is("c", "ONE"));
	cut(PCM_CUT_ALL, 0);
	CHECK(is("a", "one"));
	CHECK(is("c", NULL));
	/* syncfs, which FUSE does not forward: the hook's PCFS_SYNC */
	put("d", "four", 0);
	CHECK(pcfs_call(fs->fd, PCFS_SYNC, 0, 0, NULL) == 0);
	cut(PCM_CUT_ALL, 0);
	CHECK(is("d", "four"));
	/* a random cut keeps a rename whole, one way or the other */
	for (seed = 1; seed <= 40; seed++) {
		put("x", "five", 1);
		fsync_dir();
		rename_in("x", "y");
		put("z", "six", 0);
		cut(seed % 2 ? PCM_CUT_PREFIX : PCM_CUT_CAUSAL, seed);
		CHECK(is("x", NULL) != is("y", NULL));
		both += is("y", "five");
		none += is("x", "five");
		rename_in(get("x") ? "x" : "y", "w");
		fsync_dir();
	}
	CHECK(both > 0 && none > 0); /* both outcomes are drawn */
	/* an armed event kills the process that makes it */
	CHECK(pcfs_call(fs->fd, PCFS_RESET, 0, 0, NULL) == 0);
	CHECK(pcfs_call(fs->fd, PCFS_ARM, 3, 0, NULL) == 0);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		put("e", "seven", 1); /* events 1 and 2: create, write */
		_exit(0);	      /* never: killed at the fdatasync */
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	cut(PCM_CUT_ALL, 0);
	CHECK(is("e", NULL));
	CHECK(pcfs_call(fs->fd, PCFS_RESET, 0, 0, NULL) == 0);
	printf("powercut: the model passes its own checks\n");
}
