/*
 * fuzz_dir.h - the fuzz targets' flat state directories: each input gets
 * one, removed afterwards with everything in it.
 */
#ifndef FUZZ_DIR_H
#define FUZZ_DIR_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Remove the flat directory path and its files; abort if it stays. */
static void fuzz_remove_dir(const char *who, const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	if (rmdir(path) < 0) {
		fprintf(stderr, "%s: rmdir %s: %s\n", who, path,
			strerror(errno));
		abort();
	}
}

#endif /* FUZZ_DIR_H */
