/*
 * fs.c - the store's only door to the file system: descriptors, data,
 * flushes and names of the state directory. Every step that can fail on
 * disk runs the fault hook first, so tests can make each one fail in turn.
 */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

enum store_err fs_err(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return STORE_ENOSPC;
	case ENOMEM:
		return STORE_ENOMEM;
	default:
		return STORE_EIO;
	}
}

/* The hook's answer, STORE_FAULT_SKIP included (flush steps). */
static int fault_raw(struct fs *fs, const char *step)
{
	if (!fs->fault || !step)
		return 0;
	return fs->fault(fs->fault_ctx, step);
}

int fs_fault(struct fs *fs, const char *step)
{
	int e = fault_raw(fs, step);

	return e == STORE_FAULT_SKIP ? 0 : e; /* not a flush: it runs */
}

/* The error of a failed step: the hook's errno e, or the call's. */
static enum store_err step_err(int e)
{
	return fs_err(e ? e : errno);
}

/*
 * On XFS, give the directory a copy-on-write extent size hint of one page,
 * which the files made in it inherit: a write into a block that a reflink
 * shares then allocates that block, where the default hint stages 32
 * blocks (128 KiB) around it. A commit shares its kept pages with its base
 * (fs_copy_bytes clones them there) and writes its dirty pages into holes,
 * so today no write of the store hits a shared block; the hint keeps one
 * that does at the size of its pages. Best effort: the store works without
 * it, so any failure is ignored, and errno is left as it was.
 */
static void cow_hint(int dirfd)
{
	struct fsxattr fa;
	struct statfs sf;
	int e = errno;

	if (fstatfs(dirfd, &sf) < 0 || sf.f_type != XFS_SUPER_MAGIC ||
	    ioctl(dirfd, FS_IOC_FSGETXATTR, &fa) < 0)
		goto out;
	if ((fa.fsx_xflags & FS_XFLAG_COWEXTSIZE) &&
	    fa.fsx_cowextsize == FS_COW_HINT)
		goto out;
	fa.fsx_xflags |= FS_XFLAG_COWEXTSIZE;
	fa.fsx_cowextsize = FS_COW_HINT;
	(void)ioctl(dirfd, FS_IOC_FSSETXATTR, &fa);
out:
	errno = e;
}

enum store_err fs_open(struct fs *fs, const char *dir, store_fault_fn fault,
		       void *fault_ctx)
{
	uint64_t seed;

	fs->dirfd = -1;
	fs->lockfd = -1;
	fs->fault = fault;
	fs->fault_ctx = fault_ctx;
	/* temporaries are numbered from a random start, one per name */
	randombytes_buf(&seed, sizeof(seed));
	atomic_init(&fs->tmp_seq, seed >> 1);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fs_err(errno);
	fs->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dirfd < 0)
		return fs_err(errno);
	cow_hint(fs->dirfd); /* before any file is made, .lock included */
	fs->lockfd =
	    openat(fs->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fs->lockfd < 0)
		return fs_err(errno);
	if (flock(fs->lockfd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? STORE_ELOCKED : fs_err(errno);
	return STORE_OK;
}

void fs_close(struct fs *fs)
{
	if (fs->lockfd >= 0)
		close(fs->lockfd); /* releases the flock */
	if (fs->dirfd >= 0)
		close(fs->dirfd);
	fs->lockfd = fs->dirfd = -1;
}

/* --- descriptors ---------------------------------------------------------- */

enum store_err fs_open_ro(struct fs *fs, const char *name, int missing_ok,
			  int *fd)
{
	*fd = openat(fs->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (*fd >= 0)
		return STORE_OK;
	if (errno == ENOENT)
		return missing_ok ? STORE_ENOCOMMIT : STORE_ECORRUPT;
	return fs_err(errno);
}

enum store_err fs_open_wr(struct fs *fs, const char *name, const char *step,
			  int *fd)
{
	int e;

	*fd = -1;
	if ((e = fs_fault(fs, step)))
		return fs_err(e);
	*fd = openat(fs->dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	return *fd < 0 ? fs_err(errno) : STORE_OK;
}

enum store_err fs_open_rw(struct fs *fs, const char *name, int *fd,
			  int *created)
{
	*created = 0;
	*fd = openat(fs->dirfd, name, O_RDWR | O_CLOEXEC);
	if (*fd >= 0)
		return STORE_OK;
	if (errno != ENOENT)
		return fs_err(errno);
	*fd = openat(fs->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		     0600);
	if (*fd < 0)
		return fs_err(errno);
	*created = 1;
	return STORE_OK;
}

void fs_close_fd(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Make a new temporary now; errno when it fails. */
static int tmp_make(struct fs *fs, char name[TMP_NAME_LEN], int *fd)
{
	int tries;

	for (tries = 0; tries < 16; tries++) {
		names_tmp(name, atomic_fetch_add(&fs->tmp_seq, 1));
		*fd = openat(fs->dirfd, name,
			     O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (*fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	name[0] = '\0';
	return errno;
}

/*
 * Give the unnamed file fd (O_TMPFILE) a temporary's name; errno when it
 * fails. Through /proc, as AT_EMPTY_PATH needs a capability.
 */
static int tmp_name_fd(struct fs *fs, int fd, char name[TMP_NAME_LEN])
{
	char path[64];
	int tries;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	for (tries = 0; tries < 16; tries++) {
		names_tmp(name, atomic_fetch_add(&fs->tmp_seq, 1));
		if (linkat(AT_FDCWD, path, fs->dirfd, name,
			   AT_SYMLINK_FOLLOW) == 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	name[0] = '\0';
	return errno;
}

/* The pool's files have no name until taken: nothing to clean up after. */
struct fs_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	int stop;
	int failed;    /* the last make failed: wait for a take to try again */
	size_t n, cap; /* files held; at most cap (<= FS_TMP_POOL) */
	int fd[FS_TMP_POOL];
};

/* One unnamed file from the pool, or -1 when it is empty. */
static int pool_take(struct fs_pool *p)
{
	int fd = -1;

	pthread_mutex_lock(&p->lock);
	if (p->n > 0)
		fd = p->fd[--p->n];
	/* refilled from half empty on: a wake-up per take is a system call */
	if (p->n <= p->cap / 2) {
		p->failed = 0;
		pthread_cond_signal(&p->wake);
	}
	pthread_mutex_unlock(&p->lock);
	return fd;
}

static void *pool_main(void *arg)
{
	struct fs *fs = arg;
	struct fs_pool *p = fs->pool;
	int fd;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && (p->n == p->cap || p->failed))
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->lock);
		fd = openat(fs->dirfd, ".", O_RDWR | O_TMPFILE | O_CLOEXEC,
			    0600);
		pthread_mutex_lock(&p->lock);
		p->failed = fd < 0;
		if (fd >= 0 && !p->stop && p->n < p->cap)
			p->fd[p->n++] = fd;
		else if (fd >= 0)
			close(fd);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void fs_pool_start(struct fs *fs)
{
	char name[TMP_NAME_LEN];
	struct fs_pool *p;
	size_t cap = fs_open_files_limit() / 16;
	int fd;

	if (fs->pool || cap < 4)
		return; /* a low limit on open files: no descriptor to spare */
	/* a file system without O_TMPFILE, or no /proc: no pool */
	fd = openat(fs->dirfd, ".", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (tmp_name_fd(fs, fd, name) != 0) {
		close(fd);
		return;
	}
	unlinkat(fs->dirfd, name, 0);
	close(fd);
	fd = openat(fs->dirfd, ".", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	p = calloc(1, sizeof(*p));
	if (!p) {
		close(fd);
		return;
	}
	p->cap = cap < FS_TMP_POOL ? cap : FS_TMP_POOL;
	p->fd[p->n++] = fd;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	fs->pool = p;
	if (pthread_create(&p->thread, NULL, pool_main, fs) != 0) {
		fs->pool = NULL;
		close(fd);
		pthread_cond_destroy(&p->wake);
		pthread_mutex_destroy(&p->lock);
		free(p);
	}
}

void fs_pool_stop(struct fs *fs)
{
	struct fs_pool *p = fs->pool;
	size_t i;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	for (i = 0; i < p->n; i++)
		close(p->fd[i]);
	fs->pool = NULL;
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

enum store_err fs_tmp_create(struct fs *fs, char name[TMP_NAME_LEN], int *fd)
{
	int e;

	*fd = -1;
	name[0] = '\0';
	if ((e = fs_fault(fs, "tmp.create")))
		return fs_err(e);
	if (fs->pool && (*fd = pool_take(fs->pool)) >= 0) {
		e = tmp_name_fd(fs, *fd, name); /* it worked at the start */
		if (e) {
			close(*fd);
			*fd = -1;
		}
		if (!e)
			atomic_fetch_add(&fs->tmp_pooled, 1);
		return e ? fs_err(e) : STORE_OK;
	}
	e = tmp_make(fs, name, fd);
	if (!e)
		atomic_fetch_add(&fs->tmp_made, 1);
	return e ? fs_err(e) : STORE_OK;
}

enum store_err fs_anon_create(struct fs *fs, int *fd)
{
	char name[TMP_NAME_LEN];
	enum store_err err;

	*fd = openat(fs->dirfd, ".", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	if (*fd >= 0)
		return STORE_OK;
	err = fs_tmp_create(fs, name, fd);
	if (err)
		return err;
	unlinkat(fs->dirfd, name, 0);
	return STORE_OK;
}

/* --- data ------------------------------------------------------------------
 */

enum store_err fs_write(struct fs *fs, int fd, const void *buf, size_t len,
			uint64_t off, const char *step)
{
	const char *p = buf;
	ssize_t n;
	int e;

	if ((e = fs_fault(fs, step)))
		return fs_err(e);
	while (len > 0) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fs_err(errno);
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return STORE_OK;
}

enum store_err fs_writev(struct fs *fs, int fd, const struct iovec *iov,
			 size_t n, uint64_t off, const char *step)
{
	size_t total = 0, i, done;
	ssize_t w;
	int e;

	if ((e = fs_fault(fs, step)))
		return fs_err(e);
	for (i = 0; i < n; i++)
		total += iov[i].iov_len;
	w = pwritev(fd, iov, (int)n, (off_t)off);
	if (w >= 0 && (size_t)w == total)
		return STORE_OK;
	if (w < 0 && errno != EINTR)
		return fs_err(errno);
	/* short or interrupted: the rest buffer by buffer */
	done = w > 0 ? (size_t)w : 0;
	for (i = 0; i < n; i++) {
		size_t len = iov[i].iov_len, skip = done < len ? done : len;
		enum store_err err;

		done -= skip;
		if (skip < len) {
			err = fs_write(fs, fd,
				       (const char *)iov[i].iov_base + skip,
				       len - skip, off + skip, NULL);
			if (err)
				return err;
		}
		off += len;
	}
	return STORE_OK;
}

enum store_err fs_read(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fs_err(errno);
		}
		if (n == 0) { /* a file shorter than its state says */
			memset(p, 0, len);
			return STORE_ECORRUPT;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return STORE_OK;
}

enum store_err fs_truncate(struct fs *fs, int fd, uint64_t size,
			   const char *step)
{
	int e;

	if ((e = fs_fault(fs, step)) || ftruncate(fd, (off_t)size) < 0)
		return step_err(e);
	return STORE_OK;
}

enum store_err fs_size(int fd, uint64_t *size)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return fs_err(errno);
	*size = (uint64_t)sb.st_size;
	return STORE_OK;
}

/* Copy one data range by plain reads and writes. */
static enum store_err copy_rw(struct fs *fs, int in, int out, uint64_t off,
			      uint64_t len)
{
	char buf[65536];
	enum store_err err;
	size_t chunk;

	while (len > 0) {
		chunk = len > sizeof(buf) ? sizeof(buf) : (size_t)len;
		err = fs_read(in, buf, chunk, off);
		if (err)
			return err;
		err = fs_write(fs, out, buf, chunk, off, "copy.write");
		if (err)
			return err;
		off += chunk;
		len -= chunk;
	}
	return STORE_OK;
}

enum store_err fs_copy_bytes(struct fs *fs, int in, int out, uint64_t off,
			     uint64_t len)
{
	off_t ioff = (off_t)off, ooff = (off_t)off;
	ssize_t n;
	size_t chunk;

	while (len > 0) {
		chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
		n = copy_file_range(in, &ioff, out, &ooff, chunk, 0);
		if (n > 0) {
			len -= (uint64_t)n;
			continue;
		}
		if (n == 0)
			return STORE_ECORRUPT;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return fs_err(errno);
		/* no in-kernel copy here */
		return copy_rw(fs, in, out, (uint64_t)ioff, len);
	}
	return STORE_OK;
}

/* --- durability ------------------------------------------------------------
 */

enum store_err fs_fsync(struct fs *fs, int fd, const char *step)
{
	int e = fault_raw(fs, step);

	if (e == STORE_FAULT_SKIP)
		return STORE_OK; /* a power-cut test leaves this flush out */
	if (e || fsync(fd) < 0)
		return step_err(e);
	return STORE_OK;
}

enum store_err fs_fdatasync(struct fs *fs, int fd, const char *step)
{
	int e = fault_raw(fs, step);

	if (e == STORE_FAULT_SKIP)
		return STORE_OK;
	if (e || fdatasync(fd) < 0)
		return step_err(e);
	return STORE_OK;
}

enum store_err fs_fsync_dir(struct fs *fs)
{
	return fs_fsync(fs, fs->dirfd, "dir.fsync");
}

enum store_err fs_sync(struct fs *fs, const char *step)
{
	int e = fault_raw(fs, step);

	if (e == STORE_FAULT_SKIP)
		return STORE_OK;
	if (e || syncfs(fs->dirfd) < 0)
		return step_err(e);
	return STORE_OK;
}

/* What fs_write_atomic() writes: one buffer. */
struct one_buf {
	const char *p;
	size_t len;
};

static enum store_err one_buf_fill(void *ctx, char *out, size_t cap,
				   size_t *got)
{
	struct one_buf *b = ctx;

	*got = b->len < cap ? b->len : cap;
	memcpy(out, b->p, *got);
	b->p += *got;
	b->len -= *got;
	return STORE_OK;
}

enum store_err fs_write_atomic(struct fs *fs, const char *name, const void *buf,
			       size_t len, const char *step)
{
	struct one_buf b = {buf, len};

	return fs_write_atomic_fn(fs, name, one_buf_fill, &b, step, NULL);
}

#define FILL_CHUNK (1u << 20)

/* Write what fill gives at fd from offset 0; the bytes in *total. */
static enum store_err write_filled(struct fs *fs, int fd, fs_fill_fn fill,
				   void *ctx, const char *step, uint64_t off,
				   uint64_t *total)
{
	enum store_err err = STORE_OK;
	char *chunk = malloc(FILL_CHUNK);
	size_t got = 1;

	*total = 0;
	if (!chunk)
		return STORE_ENOMEM;
	while (!err && got) {
		err = fill(ctx, chunk, FILL_CHUNK, &got);
		if (!err && got)
			err = fs_write(fs, fd, chunk, got, off + *total, step);
		if (!err)
			*total += got;
	}
	free(chunk);
	return err;
}

enum store_err fs_write_atomic_fn(struct fs *fs, const char *name,
				  fs_fill_fn fill, void *ctx, const char *step,
				  uint64_t *written)
{
	char tmp[TMP_NAME_LEN], prev[TMP_NAME_LEN];
	enum store_err err;
	int fd = -1, e, kept = 0;
	uint64_t total = 0;

	err = fs_tmp_create(fs, tmp, &fd);
	if (err)
		goto out;
	err = write_filled(fs, fd, fill, ctx, step, 0, &total);
	if (!err && written)
		*written = total;
	if (!err)
		err = fs_fsync(fs, fd, "file.fsync");
	if (err)
		goto fail;
	/* keep the old file by a second name, to put it back on failure */
	names_tmp(prev, atomic_fetch_add(&fs->tmp_seq, 1));
	kept = linkat(fs->dirfd, name, fs->dirfd, prev, 0) == 0;
	if (!kept && errno != ENOENT) {
		err = fs_err(errno);
		goto fail;
	}
	if ((e = fs_fault(fs, "file.rename")) ||
	    renameat(fs->dirfd, tmp, fs->dirfd, name) < 0) {
		err = step_err(e);
		goto fail;
	}
	err = fs_fsync_dir(fs);
	if (err) {
		if (kept)
			renameat(fs->dirfd, prev, fs->dirfd, name);
		else
			unlinkat(fs->dirfd, name, 0);
	}
	goto out;
fail:
	unlinkat(fs->dirfd, tmp, 0);
out:
	if (kept)
		unlinkat(fs->dirfd, prev, 0);
	fs_close_fd(fd);
	return err;
}

enum store_err fs_make_zero_file(struct fs *fs, const char *name, uint64_t size)
{
	char tmp[TMP_NAME_LEN];
	enum store_err err;
	int fd = -1, e;

	err = fs_tmp_create(fs, tmp, &fd);
	if (err)
		return err;
	err = fs_truncate(fs, fd, size, "deploy.truncate");
	if (!err)
		err = fs_fsync(fs, fd, "deploy.fsync");
	if (err)
		goto fail;
	if ((e = fs_fault(fs, "deploy.rename")) ||
	    renameat(fs->dirfd, tmp, fs->dirfd, name) < 0) {
		err = step_err(e);
		goto fail;
	}
	close(fd);
	return STORE_OK;
fail:
	close(fd);
	unlinkat(fs->dirfd, tmp, 0);
	return err;
}

enum store_err fs_read_file(struct fs *fs, const char *name, char **buf,
			    size_t *len, unsigned long *nlink)
{
	struct stat st;
	enum store_err err = STORE_OK;
	char *p = NULL;
	int fd;

	*buf = NULL;
	*len = 0;
	fd = openat(fs->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_ENOCOMMIT : fs_err(errno);
	if (fstat(fd, &st) < 0) {
		err = fs_err(errno);
		goto out;
	}
	if (nlink)
		*nlink = (unsigned long)st.st_nlink;
	p = malloc((size_t)st.st_size + 1);
	if (!p) {
		err = STORE_ENOMEM;
		goto out;
	}
	err = fs_read(fd, p, (size_t)st.st_size, 0);
	if (err)
		goto out;
	p[st.st_size] = '\0';
	*buf = p;
	*len = (size_t)st.st_size;
	p = NULL;
out:
	free(p);
	close(fd);
	return err;
}

enum store_err fs_append_fn(struct fs *fs, int fd, uint64_t off,
			    fs_fill_fn fill, void *ctx, const char *step,
			    uint64_t *written)
{
	return write_filled(fs, fd, fill, ctx, step, off, written);
}

size_t fs_open_files_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur == RLIM_INFINITY)
		return 1u << 20;
	return (size_t)rl.rlim_cur;
}

enum store_err fs_identity(int fd, uint64_t *size, uint64_t *ino)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return fs_err(errno);
	*size = (uint64_t)st.st_size;
	*ino = (uint64_t)st.st_ino;
	return STORE_OK;
}

enum store_err fs_map(struct fs *fs, const char *name, struct fs_map *m)
{
	struct stat st;
	int fd;

	memset(m, 0, sizeof(*m));
	fd = openat(fs->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_ENOCOMMIT : fs_err(errno);
	if (fstat(fd, &st) < 0) {
		close(fd);
		return fs_err(errno);
	}
	m->len = (size_t)st.st_size;
	m->ino = (uint64_t)st.st_ino;
	if (m->len) {
		m->p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m->p == MAP_FAILED) {
			m->p = NULL;
			close(fd);
			return fs_err(errno);
		}
		(void)madvise((void *)(uintptr_t)m->p, m->len, MADV_SEQUENTIAL);
	}
	close(fd);
	return STORE_OK;
}

void fs_map_drop(struct fs_map *m, size_t upto)
{
	size_t page = 4096, end = upto / page * page;

	if (m->p && end > m->dropped) {
		(void)madvise((void *)(uintptr_t)(m->p + m->dropped),
			      end - m->dropped, MADV_DONTNEED);
		m->dropped = end;
	}
}

void fs_unmap(struct fs_map *m)
{
	if (m->p)
		munmap((void *)(uintptr_t)m->p, m->len);
	memset(m, 0, sizeof(*m));
}

/* --- names ------------------------------------------------------------------
 */

int fs_link(struct fs *fs, const char *src, const char *dst)
{
	return linkat(fs->dirfd, src, fs->dirfd, dst, 0) < 0 ? errno : 0;
}

int fs_rename(struct fs *fs, const char *src, const char *dst, int noreplace)
{
	return renameat2(fs->dirfd, src, fs->dirfd, dst,
			 noreplace ? RENAME_NOREPLACE : 0) < 0
		   ? errno
		   : 0;
}

int fs_unlink(struct fs *fs, const char *name)
{
	return unlinkat(fs->dirfd, name, 0) < 0 ? errno : 0;
}

enum store_err fs_remove(struct fs *fs, const char *name, uint64_t *freed)
{
	struct stat sb;
	int e;

	*freed = 0;
	if ((e = fs_fault(fs, "gc.unlink")))
		return fs_err(e);
	if (fstatat(fs->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    sb.st_nlink == 1)
		*freed = (uint64_t)sb.st_blocks * 512;
	if (unlinkat(fs->dirfd, name, 0) < 0) {
		*freed = 0;
		return fs_err(errno);
	}
	return STORE_OK;
}

int fs_exists(struct fs *fs, const char *name, uint64_t *size)
{
	struct stat sb;

	if (fstatat(fs->dirfd, name, &sb, 0) == 0) {
		if (size)
			*size = (uint64_t)sb.st_size;
		return 1;
	}
	return errno == ENOENT ? 0 : -1;
}

enum store_err fs_relink(struct fs *fs, const char *src, const char *dst,
			 int tidy)
{
	char tmp[TMP_NAME_LEN];
	int e, tries = 0;

	if ((e = fs_fault(fs, "switch.link")))
		return fs_err(e);
	do {
		names_tmp(tmp, atomic_fetch_add(&fs->tmp_seq, 1));
		if (linkat(fs->dirfd, src, fs->dirfd, tmp, 0) == 0)
			break;
		if (errno != EEXIST || ++tries == 16)
			return fs_err(errno == ENOENT ? EIO : errno);
	} while (1);
	if ((e = fs_fault(fs, "switch.rename")) ||
	    renameat(fs->dirfd, tmp, fs->dirfd, dst) < 0) {
		e = e ? e : errno;
		unlinkat(fs->dirfd, tmp, 0);
		return fs_err(e);
	}
	/* renaming onto a link of the same file leaves tmp in place */
	if (tidy)
		unlinkat(fs->dirfd, tmp, 0);
	return STORE_OK;
}

/* A stream over the directory from a descriptor of its own. */
static int dir_stream(struct fs *fs, DIR **out)
{
	int fd = openat(fs->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*out = fd < 0 ? NULL : fdopendir(fd);
	if (*out)
		return 0;
	if (fd >= 0) {
		int e = errno;

		close(fd);
		errno = e;
	}
	return -1;
}

enum store_err fs_each_name(struct fs *fs, fs_name_fn fn, void *ctx)
{
	enum store_err err = STORE_OK;
	struct dirent *de;
	DIR *d;

	if (dir_stream(fs, &d))
		return fs_err(errno);
	while (!err && (de = readdir(d)))
		err = fn(ctx, de->d_name);
	closedir(d);
	return err;
}

enum store_err fs_bytes_on_disk(struct fs *fs, uint64_t *bytes)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;

	*bytes = 0;
	if (dir_stream(fs, &d))
		return fs_err(errno);
	while ((de = readdir(d)))
		if (fstatat(fs->dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) ==
			0 &&
		    S_ISREG(sb.st_mode))
			*bytes += (uint64_t)sb.st_blocks * 512 /
				  (sb.st_nlink ? sb.st_nlink : 1);
	closedir(d);
	return STORE_OK;
}
