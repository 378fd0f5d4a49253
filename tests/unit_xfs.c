/*
 * unit_xfs.c - the store on XFS: the copy-on-write extent size hint of the
 * state directory, and the kept pages of a commit shared with its base.
 *
 * - on a file system that is not XFS the store leaves the directory's
 *   attributes alone;
 * - as root with mkfs.xfs, on a loop-mounted XFS with reflinks: the
 *   directory gets FS_XFLAG_COWEXTSIZE with a hint of 4096 bytes at open,
 *   every file the store makes inherits it, an open puts back a hint
 *   cleared meanwhile, and a commit of one dirty page over a dense base
 *   takes about that page of disk, not a copy of the module.
 *
 * Without root or mkfs.xfs, or where a loop mount fails, the XFS part is
 * skipped with a message. The loop file system is detached (MNT_DETACH)
 * as soon as it is open, and used through /proc/self/fd: it goes away with
 * the last descriptor, however the test ends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "store.h"
#include "t.h"

#define HINT	  4096
#define MODSIZE	  (1U << 20)
#define IMAGE	  (512ULL << 20) /* mkfs.xfs wants 300 MiB at least */
#define SBIN_PATH "PATH=\"$PATH:/usr/sbin:/sbin\" "

/* The directory's attributes; 0, or -1 when the ioctl is not there. */
static int get_attr(int fd, struct fsxattr *fa)
{
	memset(fa, 0, sizeof(*fa));
	return ioctl(fd, FS_IOC_FSGETXATTR, fa) < 0 ? -1 : 0;
}

static int has_hint(int fd)
{
	struct fsxattr fa;

	return get_attr(fd, &fa) == 0 &&
	       (fa.fsx_xflags & FS_XFLAG_COWEXTSIZE) &&
	       fa.fsx_cowextsize == HINT;
}

/* Bytes in use on the file system of fd, after a flush. */
static unsigned long long used_bytes(int fd)
{
	struct statfs sf;

	if (syncfs(fd) < 0 || fstatfs(fd, &sf) < 0)
		return 0;
	return (unsigned long long)(sf.f_blocks - sf.f_bfree) * sf.f_bsize;
}

/* Off XFS: the store opens and sets no hint. */
static void test_not_xfs(const char *tmp)
{
	struct store_options o = {0};
	struct store *s = NULL;
	struct statfs sf;
	struct fsxattr fa;
	char dir[600];
	int fd;

	snprintf(dir, sizeof(dir), "%s/plain", tmp);
	o.dir = dir;
	CHECK_ERR(store_open(&s, &o), STORE_OK);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0);
	if (fd >= 0 && fstatfs(fd, &sf) == 0 && sf.f_type != XFS_SUPER_MAGIC &&
	    get_attr(fd, &fa) == 0)
		CHECK(!(fa.fsx_xflags & FS_XFLAG_COWEXTSIZE) &&
		      fa.fsx_cowextsize == 0);
	if (fd >= 0)
		close(fd);
	store_close(s);
}

/* Every regular file of the directory fd has the hint; how many there are. */
static int files_with_hint(int fd, int *without)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	struct dirent *de;
	struct stat sb;

	*without = 0;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		int f;

		if (fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		f = openat(fd, de->d_name, O_RDONLY | O_CLOEXEC);
		n++;
		if (f < 0 || !has_hint(f)) {
			printf("xfs: %s has no hint of %d bytes\n", de->d_name,
			       HINT);
			(*without)++;
		}
		if (f >= 0)
			close(f);
	}
	closedir(d);
	return n;
}

/* One session writing len bytes of v at off, committed. */
static enum store_err write_commit(struct store *s, const struct store_id *m,
				   uint64_t off, const void *buf, size_t len)
{
	struct store_session_info si;
	struct store_commit_info ci;
	struct store_id sid;
	enum store_err err;

	err = store_session_begin(s, NULL, &si);
	if (err)
		return err;
	sid = si.id;
	err = store_session_write(s, &sid, m, off, buf, len);
	if (!err)
		err = store_session_commit(s, &sid, NULL, &ci);
	if (!err)
		store_commit_info_release(&ci);
	return err;
}

/* The store on the XFS whose root is the descriptor root. */
static void test_xfs(int root)
{
	struct store_options o = {0};
	struct store *s = NULL;
	struct store_module_info mi;
	struct fsxattr fa;
	unsigned long long u0, u1;
	unsigned char *mem = malloc(MODSIZE);
	char dir[64];
	int fd = -1, n, without;
	size_t i;

	snprintf(dir, sizeof(dir), "/proc/self/fd/%d/state", root);
	o.dir = dir;
	CHECK(mem != NULL);
	CHECK_ERR(store_open(&s, &o), STORE_OK);
	if (!s || !mem)
		goto out;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0);
	if (fd < 0)
		goto out;
	CHECK(has_hint(fd));

	/* a dense base, then one dirty page: the rest is shared */
	CHECK_ERR(store_deploy(s, "xfs module", 10, MODSIZE, &mi, NULL),
		  STORE_OK);
	for (i = 0; i < MODSIZE; i++)
		mem[i] = (unsigned char)(i * 7 + i / 4096 + 1);
	CHECK_ERR(write_commit(s, &mi.id, 0, mem, MODSIZE), STORE_OK);
	u0 = used_bytes(fd);
	memset(mem, 0xA5, 4096);
	CHECK_ERR(write_commit(s, &mi.id, 5 * 4096, mem, 4096), STORE_OK);
	u1 = used_bytes(fd);
	printf("xfs: a commit of 1 dirty page over %u KiB took %lld KiB\n",
	       MODSIZE / 1024, ((long long)u1 - (long long)u0) / 1024);
	CHECK(u0 > 0 && u1 >= u0 && u1 - u0 < MODSIZE / 4);

	/* every file the store made inherits the hint, .lock included */
	n = files_with_hint(fd, &without);
	CHECK(n >= 5); /* .lock, .MOD_init, MOD, MOD_last, 2 commit files */
	CHECK(without == 0);

	/* a hint cleared meanwhile is put back by the next open */
	store_close(s);
	s = NULL;
	if (get_attr(fd, &fa) == 0) {
		fa.fsx_xflags &= ~(unsigned int)FS_XFLAG_COWEXTSIZE;
		fa.fsx_cowextsize = 0;
		CHECK(ioctl(fd, FS_IOC_FSSETXATTR, &fa) == 0);
	}
	CHECK(!has_hint(fd));
	CHECK_ERR(store_open(&s, &o), STORE_OK);
	CHECK(has_hint(fd));
	/* and one already there is kept as it is */
	store_close(s);
	s = NULL;
	CHECK_ERR(store_open(&s, &o), STORE_OK);
	CHECK(has_hint(fd));
out:
	store_close(s);
	if (fd >= 0)
		close(fd);
	free(mem);
}

/*
 * Make and mount a loop XFS at tmp/mnt, and detach it at once: its root's
 * descriptor, or -1 (with a message) where that cannot be done here.
 */
static int loop_xfs(const char *tmp)
{
	char img[600], mnt[600], cmd[2048];
	int fd, root = -1;

	if (geteuid() != 0) {
		printf("xfs: skipped, not root (mount -o loop)\n");
		return -1;
	}
	if (system(SBIN_PATH "command -v mkfs.xfs >/dev/null 2>&1") != 0) {
		printf("xfs: skipped, no mkfs.xfs (Debian package xfsprogs)\n");
		return -1;
	}
	snprintf(img, sizeof(img), "%s/xfs.img", tmp);
	snprintf(mnt, sizeof(mnt), "%s/mnt", tmp);
	fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)IMAGE) < 0 || mkdir(mnt, 0700) < 0) {
		printf("xfs: skipped, cannot make %s: %s\n", img,
		       strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 SBIN_PATH "mkfs.xfs -q -m reflink=1 -f '%s' >/dev/null 2>&1",
		 img);
	if (system(cmd) != 0) {
		printf("xfs: skipped, mkfs.xfs failed: %s\n", cmd);
		return -1;
	}
	snprintf(cmd, sizeof(cmd),
		 SBIN_PATH "mount -o loop '%s' '%s' >/dev/null 2>&1", img, mnt);
	if (system(cmd) != 0) {
		printf("xfs: skipped, cannot mount a loop XFS here: %s\n", cmd);
		return -1;
	}
	root = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* from here the mount lives only as long as root */
	if (umount2(mnt, MNT_DETACH) < 0) {
		printf("xfs: cannot detach %s: %s\n", mnt, strerror(errno));
		CHECK(0);
	}
	CHECK(root >= 0);
	unlink(img); /* the loop device holds it */
	return root;
}

int main(void)
{
	char *tmp = t_tmpdir("xfs");
	int root;

	CHECK(tmp != NULL);
	if (!tmp)
		return t_done();
	test_not_xfs(tmp);
	root = loop_xfs(tmp);
	if (root >= 0) {
		test_xfs(root);
		close(root);
	}
	t_rmrf(tmp);
	free(tmp);
	return t_done();
}
