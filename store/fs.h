/*
 * fs.h - the store's only door to the file system. Every system call on a
 * file or the state directory is made here, on a small context: the
 * directory's descriptor, its lock, and the test hook that can make each
 * step fail (store_fault_fn: every function that takes a step name runs
 * the hook first, and fails as the system call would with what it says).
 *
 * Errors are enum store_err: ENOSPC and EDQUOT become STORE_ENOSPC, ENOMEM
 * STORE_ENOMEM, everything else STORE_EIO. The few calls whose errno the
 * caller must tell apart (link, rename, unlink) return the errno itself.
 */
#ifndef STORE_FS_H
#define STORE_FS_H

#include "names.h"
#include "store.h"

#include <stdatomic.h>
#include <stdint.h>

struct fs_pool;

struct fs {
	int dirfd;
	int lockfd;
	store_fault_fn fault;
	void *fault_ctx;
	atomic_uint_fast64_t tmp_seq; /* names of new temporaries */
	struct fs_pool *pool;	      /* temporaries made ahead, or NULL */
	/* temporaries named from the pool, and made when asked for */
	atomic_uint_fast64_t tmp_pooled, tmp_made;
};

enum store_err fs_err(int e);

/*
 * Run the fault hook for step (none if NULL); 0 or the errno it asks for.
 * The flush functions below also honour STORE_FAULT_SKIP.
 */
int fs_fault(struct fs *fs, const char *step);

/*
 * Open (creating it 0700 if missing) the directory dir and take its lock.
 * STORE_ELOCKED when another process holds it. fs_close() releases it.
 * On XFS it also gives the directory a copy-on-write extent size hint of
 * FS_COW_HINT bytes (FS_IOC_FSSETXATTR), inherited by the files made in
 * it, unless it has that hint already; a hint that cannot be set is no
 * error.
 */
#define FS_COW_HINT 4096
enum store_err fs_open(struct fs *fs, const char *dir, store_fault_fn fault,
		       void *fault_ctx);
void fs_close(struct fs *fs);

/* --- descriptors ---------------------------------------------------------- */

/*
 * Open a file of the directory read-only. A file the state names and that
 * is missing is STORE_ECORRUPT (or STORE_ENOCOMMIT when missing_ok).
 */
enum store_err fs_open_ro(struct fs *fs, const char *name, int missing_ok,
			  int *fd);
/* Open name for writing in place, creating it 0600 if missing. */
enum store_err fs_open_wr(struct fs *fs, const char *name, const char *step,
			  int *fd);
/* Open name read-write; *created is set when it was made (O_EXCL). */
enum store_err fs_open_rw(struct fs *fs, const char *name, int *fd,
			  int *created);
void fs_close_fd(int fd);

/*
 * A new temporary file (O_EXCL, 0600, empty); its name in name. Taken from
 * the pool when one runs, else made now.
 */
enum store_err fs_tmp_create(struct fs *fs, char name[TMP_NAME_LEN], int *fd);

/*
 * The pool of temporaries: a thread keeps FS_TMP_POOL empty unnamed files
 * (O_TMPFILE) made ahead of need, and fs_tmp_create() names one with a
 * link, so that a commit does not wait for the file system to find a free
 * inode (on ext4 that search skips recently freed inodes: measured at 120
 * us a file, most of a commit's own time). Unnamed, they are never seen in
 * the directory and go with the process. Where O_TMPFILE or /proc is
 * missing, temporaries are made when asked for. The pool holds at most a
 * sixteenth of the limit on open files (none under 64): a commit of many
 * modules drains it, and the files of the next commits are made while the
 * answers travel.
 */
#define FS_TMP_POOL 128
void fs_pool_start(struct fs *fs);
void fs_pool_stop(struct fs *fs);
/* A temporary file already unlinked: only the descriptor remains. */
enum store_err fs_anon_create(struct fs *fs, int *fd);

/* --- data ------------------------------------------------------------------
 */

/* Write all of buf at off. */
enum store_err fs_write(struct fs *fs, int fd, const void *buf, size_t len,
			uint64_t off, const char *step);
/* Write the n buffers of iov, one after another, at off. */
struct iovec;
enum store_err fs_writev(struct fs *fs, int fd, const struct iovec *iov,
			 size_t n, uint64_t off, const char *step);
/* Read all of len bytes at off; STORE_ECORRUPT (zeros) past the end. */
enum store_err fs_read(int fd, void *buf, size_t len, uint64_t off);
enum store_err fs_truncate(struct fs *fs, int fd, uint64_t size,
			   const char *step);
enum store_err fs_size(int fd, uint64_t *size);

/* Copy len bytes at off from in to out at the same offset, holes and all. */
enum store_err fs_copy_bytes(struct fs *fs, int in, int out, uint64_t off,
			     uint64_t len);

/* --- durability ------------------------------------------------------------
 */

enum store_err fs_fsync(struct fs *fs, int fd, const char *step);
enum store_err fs_fdatasync(struct fs *fs, int fd, const char *step);
enum store_err fs_fsync_dir(struct fs *fs);
/* Flush the whole file system holding the directory (syncfs). */
enum store_err fs_sync(struct fs *fs, const char *step);

/* Write a small file durably: temporary, fsync, rename, fsync directory. */
enum store_err fs_write_atomic(struct fs *fs, const char *name, const void *buf,
			       size_t len, const char *step);
/* Up to cap bytes of what is to be written into out; *got 0 at the end. */
typedef enum store_err (*fs_fill_fn)(void *ctx, char *out, size_t cap,
				     size_t *got);
/* fs_write_atomic() of what fill gives, in chunks; *written (or NULL). */
enum store_err fs_write_atomic_fn(struct fs *fs, const char *name,
				  fs_fill_fn fill, void *ctx, const char *step,
				  uint64_t *written);
/* Write what fill gives at fd from off on (no flush); *written. */
enum store_err fs_append_fn(struct fs *fs, int fd, uint64_t off,
			    fs_fill_fn fill, void *ctx, const char *step,
			    uint64_t *written);
/* The process's limit on open files (RLIMIT_NOFILE, soft). */
size_t fs_open_files_limit(void);
/* The size and inode number of an open file. */
enum store_err fs_identity(int fd, uint64_t *size, uint64_t *ino);

/*
 * A file mapped read-only, to be parsed in one pass: fs_map_drop() gives
 * back the pages before upto, so a large file costs little resident
 * memory. STORE_ENOCOMMIT when it does not exist.
 */
struct fs_map {
	const char *p;
	size_t len, dropped;
	uint64_t ino;
};
enum store_err fs_map(struct fs *fs, const char *name, struct fs_map *m);
void fs_map_drop(struct fs_map *m, size_t upto);
void fs_unmap(struct fs_map *m);
/* A sparse all-zero file of size bytes, fsynced, renamed to name. */
enum store_err fs_make_zero_file(struct fs *fs, const char *name,
				 uint64_t size);

/*
 * Read a whole small file; *buf is NUL-terminated, caller frees.
 * STORE_ENOCOMMIT when the file does not exist. *nlink (may be NULL) gets
 * its number of names.
 */
enum store_err fs_read_file(struct fs *fs, const char *name, char **buf,
			    size_t *len, unsigned long *nlink);

/* --- names ------------------------------------------------------------------
 */

/* 0, or the errno of linkat / renameat2 / unlinkat. */
int fs_link(struct fs *fs, const char *src, const char *dst);
int fs_rename(struct fs *fs, const char *src, const char *dst, int noreplace);
int fs_unlink(struct fs *fs, const char *name);
/*
 * Remove name; *freed gets the bytes it had allocated when it was its
 * file's last name (else 0).
 */
enum store_err fs_remove(struct fs *fs, const char *name, uint64_t *freed);
/* 1 if name exists, 0 if not, -1 (errno) on another failure. */
int fs_exists(struct fs *fs, const char *name, uint64_t *size);

/*
 * Point dst at the file src: a new hard link under a temporary name,
 * renamed over dst. With tidy, the temporary is removed should dst
 * already be a name of src (a rename then leaves both in place).
 */
enum store_err fs_relink(struct fs *fs, const char *src, const char *dst,
			 int tidy);

/*
 * Call fn for every name of the directory, from a descriptor of its own (a
 * dup would share its offset). A nonzero return from fn stops the walk and
 * is returned.
 */
typedef enum store_err (*fs_name_fn)(void *ctx, const char *name);
enum store_err fs_each_name(struct fs *fs, fs_name_fn fn, void *ctx);

/* Bytes allocated by the directory's regular files, links counted once. */
enum store_err fs_bytes_on_disk(struct fs *fs, uint64_t *bytes);

#endif /* STORE_FS_H */
