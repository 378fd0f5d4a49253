/*
 * faultshim.c - an LD_PRELOAD library that makes one file system step of a
 * real modstored fail, for the I/O fault tests.
 *
 * It wraps the calls through which the store writes: write, pwrite, pwritev,
 * copy_file_range, ftruncate, fsync, fdatasync, syncfs, rename*, link*.
 * Only calls on regular files and directories count (sockets and the log
 * do not). Nothing fails until the process gets SIGUSR1, which arms the
 * shim: the FAULTSHIM_N-th counted call after that fails with
 * FAULTSHIM_ERRNO (default EIO), once; then the shim disarms itself.
 * SIGUSR2 disarms it. Each failure is reported on stderr as
 * "faultshim: fail <call> #N". FAULTSHIM_CTL may name a file with
 * "N ERRNO", read at each arming instead. The file named by FAULTSHIM_REPORT is
 * rewritten with "armed" when SIGUSR1 has been handled, with
 * "fired <call> N" when the failure happened, and with "disarmed" or
 * "disarmed fired" when SIGUSR2 has been handled.
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static atomic_int armed;
static atomic_int fired;
static atomic_long counted;
static long target = 1;
static int fail_errno = EIO;
static const char *report_path;
static const char *ctl_path;
static int (*real_open)(const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);

/* Replace the report file with line (async-signal-safe calls only). */
static void report_line(const char *line, size_t len)
{
	int fd;

	if (!report_path)
		return;
	fd = real_open(report_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		       0600);
	if (fd >= 0) {
		real_write(fd, line, len);
		close(fd);
	}
}

/*
 * FAULTSHIM_CTL names a file holding "N ERRNO" (decimal): read at each
 * arming, so one process can be made to fail at step 1, 2, 3... in turn.
 */
static void read_ctl(void)
{
	const char *path = ctl_path;
	char buf[64];
	long v[2] = {0, 0};
	ssize_t n;
	int fd, k = 0, i;

	if (!path)
		return;
	fd = real_open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	for (i = 0; i < n && k < 2; i++) {
		if (buf[i] >= '0' && buf[i] <= '9')
			v[k] = v[k] * 10 + (buf[i] - '0');
		else if (i > 0 && buf[i - 1] >= '0' && buf[i - 1] <= '9')
			k++;
	}
	if (v[0] > 0)
		target = v[0];
	if (v[1] > 0)
		fail_errno = (int)v[1];
}

static void on_arm(int sig)
{
	(void)sig;
	read_ctl();
	atomic_store(&fired, 0);
	atomic_store(&counted, 0);
	atomic_store(&armed, 1);
	report_line("armed\n", 6);
}

static void on_disarm(int sig)
{
	(void)sig;
	atomic_store(&armed, 0);
	if (atomic_load(&fired))
		report_line("disarmed fired\n", 15);
	else
		report_line("disarmed\n", 9);
}

__attribute__((constructor)) static void shim_init(void)
{
	const char *n = getenv("FAULTSHIM_N"), *e = getenv("FAULTSHIM_ERRNO");
	struct sigaction sa;

	real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
	real_write =
	    (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	report_path = getenv("FAULTSHIM_REPORT");
	ctl_path = getenv("FAULTSHIM_CTL");
	if (n)
		target = atol(n);
	if (e && !strcmp(e, "ENOSPC"))
		fail_errno = ENOSPC;
	else if (e && !strcmp(e, "EIO"))
		fail_errno = EIO;
	else if (e)
		fail_errno = atoi(e);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_arm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_disarm;
	sigaction(SIGUSR2, &sa, NULL);
}

static int counts_fd(int fd)
{
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		return 0;
	return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode);
}

static void report(const char *what)
{
	char line[128];
	int len;

	len = snprintf(line, sizeof(line), "faultshim: fail %s #%ld\n", what,
		       target);
	real_write(2, line, (size_t)len);
	len = snprintf(line, sizeof(line), "fired %s %ld\n", what, target);
	report_line(line, (size_t)len);
}

/* 1 when this counted call is the one to fail (errno is set then). */
static int should_fail(const char *what)
{
	if (!atomic_load(&armed))
		return 0;
	if (atomic_fetch_add(&counted, 1) + 1 != target)
		return 0;
	atomic_store(&armed, 0);
	atomic_store(&fired, 1);
	report(what);
	errno = fail_errno;
	return 1;
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

ssize_t write(int fd, const void *buf, size_t n)
{
	if (counts_fd(fd) && fd > 2 && should_fail("write"))
		return -1;
	return REAL("write", ssize_t(*)(int, const void *, size_t))(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (counts_fd(fd) && should_fail("pwrite"))
		return -1;
	return REAL("pwrite", ssize_t(*)(int, const void *, size_t, off_t))(
	    fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	if (counts_fd(fd) && should_fail("pwrite"))
		return -1;
	return REAL("pwrite64", ssize_t(*)(int, const void *, size_t, off_t))(
	    fd, buf, n, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	if (counts_fd(fd) && should_fail("pwritev"))
		return -1;
	return REAL("pwritev", ssize_t(*)(int, const struct iovec *, int,
					  off_t))(fd, iov, n, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int n, off_t off)
{
	if (counts_fd(fd) && should_fail("pwritev"))
		return -1;
	return REAL("pwritev64", ssize_t(*)(int, const struct iovec *, int,
					    off_t))(fd, iov, n, off);
}

ssize_t copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t n,
			unsigned int flags)
{
	if (should_fail("copy_file_range"))
		return -1;
	return REAL("copy_file_range",
		    ssize_t(*)(int, off_t *, int, off_t *, size_t,
			       unsigned int))(in, inoff, out, outoff, n, flags);
}

int ftruncate(int fd, off_t len)
{
	if (should_fail("ftruncate"))
		return -1;
	return REAL("ftruncate", int (*)(int, off_t))(fd, len);
}

int ftruncate64(int fd, off_t len)
{
	if (should_fail("ftruncate"))
		return -1;
	return REAL("ftruncate64", int (*)(int, off_t))(fd, len);
}

int fsync(int fd)
{
	if (counts_fd(fd) && should_fail("fsync"))
		return -1;
	return REAL("fsync", int (*)(int))(fd);
}

int fdatasync(int fd)
{
	if (counts_fd(fd) && should_fail("fdatasync"))
		return -1;
	return REAL("fdatasync", int (*)(int))(fd);
}

int syncfs(int fd)
{
	if (counts_fd(fd) && should_fail("syncfs"))
		return -1;
	return REAL("syncfs", int (*)(int))(fd);
}

int rename(const char *a, const char *b)
{
	if (should_fail("rename"))
		return -1;
	return REAL("rename", int (*)(const char *, const char *))(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
	if (should_fail("renameat"))
		return -1;
	return REAL("renameat", int (*)(int, const char *, int, const char *))(
	    da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned int fl)
{
	if (should_fail("renameat2"))
		return -1;
	return REAL("renameat2", int (*)(int, const char *, int, const char *,
					 unsigned int))(da, a, db, b, fl);
}

int link(const char *a, const char *b)
{
	if (should_fail("link"))
		return -1;
	return REAL("link", int (*)(const char *, const char *))(a, b);
}

int linkat(int da, const char *a, int db, const char *b, int fl)
{
	if (should_fail("linkat"))
		return -1;
	return REAL("linkat", int (*)(int, const char *, int, const char *,
				      int))(da, a, db, b, fl);
}
