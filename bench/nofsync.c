/*
 * nofsync.c - LD_PRELOAD for building the fixture of the start scenario
 * only (10,000 commits): fsync and friends return at once. Never loaded
 * into a process that is measured.
 */
#include <fcntl.h>
#include <unistd.h>

int fsync(int fd)
{
	(void)fd;
	return 0;
}

int fdatasync(int fd)
{
	(void)fd;
	return 0;
}

int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags)
{
	(void)fd;
	(void)off;
	(void)n;
	(void)flags;
	return 0;
}
