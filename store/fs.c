/*
 * fs.c - file helpers of the store: temporaries, durable writes, copies.
 * Every step that can fail on disk passes through fault_at() first, so
 * tests can make each one fail in turn.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

enum store_err err_from_errno(int e)
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

int fault_at(struct store *s, const char *step)
{
	if (!s->fault)
		return 0;
	return s->fault(s->fault_ctx, step);
}

void tmp_name(char out[TMP_NAME_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[8];
	size_t i, n = strlen(TMP_PREFIX);

	randombytes_buf(r, sizeof(r));
	memcpy(out, TMP_PREFIX, n);
	for (i = 0; i < sizeof(r); i++) {
		out[n + 2 * i] = hex[r[i] >> 4];
		out[n + 2 * i + 1] = hex[r[i] & 15];
	}
	out[n + 2 * sizeof(r)] = '\0';
}

enum store_err tmp_create(struct store *s, char name[TMP_NAME_LEN], int *fd)
{
	int e, tries;

	*fd = -1;
	if ((e = fault_at(s, "tmp.create")))
		return err_from_errno(e);
	for (tries = 0; tries < 16; tries++) {
		tmp_name(name);
		*fd = openat(s->dirfd, name,
			     O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (*fd >= 0)
			return STORE_OK;
		if (errno != EEXIST)
			break;
	}
	return err_from_errno(errno);
}

enum store_err anon_create(struct store *s, int *fd)
{
	char name[TMP_NAME_LEN];
	enum store_err err;

	*fd = openat(s->dirfd, ".", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	if (*fd >= 0)
		return STORE_OK;
	err = tmp_create(s, name, fd);
	if (err)
		return err;
	unlinkat(s->dirfd, name, 0);
	return STORE_OK;
}

enum store_err write_all(struct store *s, int fd, const void *buf, size_t len,
			 uint64_t off, const char *step)
{
	const char *p = buf;
	ssize_t n;
	int e;

	if ((e = fault_at(s, step)))
		return err_from_errno(e);
	while (len > 0) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_from_errno(errno);
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return STORE_OK;
}

enum store_err read_all(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_from_errno(errno);
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

enum store_err fsync_fd(struct store *s, int fd, const char *step)
{
	int e;

	if ((e = fault_at(s, step)))
		return err_from_errno(e);
	if (fsync(fd) < 0)
		return err_from_errno(errno);
	return STORE_OK;
}

enum store_err fsync_dir(struct store *s)
{
	return fsync_fd(s, s->dirfd, "dir.fsync");
}

/* Copy one data range, by copy_file_range or, failing that, read/write. */
enum store_err copy_bytes(struct store *s, int in, int out, uint64_t off,
			  uint64_t len)
{
	char buf[65536];
	off_t ioff = (off_t)off, ooff = (off_t)off;
	ssize_t n;
	size_t chunk;
	enum store_err err;

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
			return err_from_errno(errno);
		/* no in-kernel copy here: plain reads and writes */
		while (len > 0) {
			chunk = len > sizeof(buf) ? sizeof(buf) : (size_t)len;
			err = read_all(in, buf, chunk, (uint64_t)ioff);
			if (err)
				return err;
			err = write_all(s, out, buf, chunk, (uint64_t)ooff,
					"copy.write");
			if (err)
				return err;
			ioff += (off_t)chunk;
			ooff += (off_t)chunk;
			len -= chunk;
		}
	}
	return STORE_OK;
}

enum store_err copy_data(struct store *s, int in, int out, uint64_t off,
			 uint64_t len, uint64_t *copied)
{
	uint64_t end = off + len, pos = off, next;
	off_t d, h;
	enum store_err err;
	int e;

	if ((e = fault_at(s, "copy.data")))
		return err_from_errno(e);
	while (pos < end) {
		d = lseek(in, (off_t)pos, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break; /* only a hole remains */
		if (d < 0) {
			d = (off_t)pos; /* no SEEK_DATA: copy it all */
			h = (off_t)end;
		} else {
			h = lseek(in, d, SEEK_HOLE);
			if (h < 0)
				h = (off_t)end;
		}
		if ((uint64_t)d >= end)
			break;
		next = (uint64_t)h < end ? (uint64_t)h : end;
		err = copy_bytes(s, in, out, (uint64_t)d, next - (uint64_t)d);
		if (err)
			return err;
		if (copied)
			*copied += next - (uint64_t)d;
		pos = next;
	}
	return STORE_OK;
}

enum store_err write_file_atomic(struct store *s, const char *name,
				 const void *buf, size_t len, const char *step)
{
	char tmp[TMP_NAME_LEN], prev[TMP_NAME_LEN];
	enum store_err err;
	int fd = -1, e, kept = 0;

	err = tmp_create(s, tmp, &fd);
	if (err)
		goto out;
	err = write_all(s, fd, buf, len, 0, step);
	if (err)
		goto fail;
	err = fsync_fd(s, fd, "file.fsync");
	if (err)
		goto fail;
	/* keep the old file by a second name, to put it back on failure */
	tmp_name(prev);
	kept = linkat(s->dirfd, name, s->dirfd, prev, 0) == 0;
	if (!kept && errno != ENOENT) {
		err = err_from_errno(errno);
		goto fail;
	}
	if ((e = fault_at(s, "file.rename"))) {
		err = err_from_errno(e);
		goto fail;
	}
	if (renameat(s->dirfd, tmp, s->dirfd, name) < 0) {
		err = err_from_errno(errno);
		goto fail;
	}
	err = fsync_dir(s);
	if (err) {
		if (kept)
			renameat(s->dirfd, prev, s->dirfd, name);
		else
			unlinkat(s->dirfd, name, 0);
	}
	goto out;
fail:
	unlinkat(s->dirfd, tmp, 0);
out:
	if (kept)
		unlinkat(s->dirfd, prev, 0);
	if (fd >= 0)
		close(fd);
	return err;
}

enum store_err read_file(int dirfd, const char *name, char **buf, size_t *len)
{
	struct stat st;
	enum store_err err = STORE_OK;
	char *p = NULL;
	int fd;

	*buf = NULL;
	*len = 0;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_ENOCOMMIT
				       : err_from_errno(errno);
	if (fstat(fd, &st) < 0) {
		err = err_from_errno(errno);
		goto out;
	}
	p = malloc((size_t)st.st_size + 1);
	if (!p) {
		err = STORE_ENOMEM;
		goto out;
	}
	err = read_all(fd, p, (size_t)st.st_size, 0);
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
