/*
 * model.h - what a disk holds after a power cut: one flat directory of
 * regular files, each change kept apart until it is flushed.
 *
 * The model keeps two images of the directory, the one the running system
 * sees (current) and the one that survives a cut (durable), and between
 * them every change not yet flushed, in the order it was made:
 *
 *   data      a write or a change of size of one file (pcm_write,
 *             pcm_truncate); the write's bytes are kept;
 *   names     a new name for a file (create, link), a name removed
 *             (unlink), a name moved (rename, which may replace its target).
 *
 * Flushes make changes durable, as POSIX and Linux define them:
 *
 *   pcm_fsync(ino)  fsync or fdatasync of a file: its data and its size
 *                   (fdatasync also writes the size, which retrieving the
 *                   data needs); none of its names;
 *   pcm_fsyncdir()  fsync of the directory: every change of names;
 *   pcm_syncfs()    syncfs: everything.
 *
 * A cut (pcm_cut) replaces the current image by what survives:
 *
 *   PCM_CUT_ALL     nothing that was not flushed;
 *   PCM_CUT_PREFIX  a random part, as a journaling file system (ext4, xfs)
 *                   could have written it: changes of names in the order
 *                   they were made, a random prefix of them, each whole;
 *   PCM_CUT_CAUSAL  a random part, as a file system that writes each
 *                   directory block on its own could have: any set of
 *                   changes of names that keeps, for every name and every
 *                   file, the earlier changes to it.
 *
 * In both random modes the data is written back as the kernel's writeback
 * and the disk may do it, independently of the names: each 512-byte sector
 * of a file holds the effect of a prefix, possibly empty, of the writes and
 * size changes that touched it (a page write can tear at sectors); its
 * size is one of the sizes it had since its last flush. A file no
 * surviving name refers to is gone.
 *
 * Files are identified by a number (the FUSE node id); 1 is the directory.
 * Nothing here is thread-safe: the server is one thread. Out of memory,
 * the model aborts: it is a test's.
 */
#ifndef PC_MODEL_H
#define PC_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PCM_ROOT   1
#define PCM_SECTOR 512

enum pcm_cut { PCM_CUT_ALL, PCM_CUT_PREFIX, PCM_CUT_CAUSAL };

struct pcm;

/* An empty directory. */
struct pcm *pcm_new(void);
void pcm_free(struct pcm *m);
/* A deep copy (a frozen moment, to cut again). */
struct pcm *pcm_copy(const struct pcm *m);

/* --- the running system's view ------------------------------------------ */

/* The file a name refers to, or 0. */
uint64_t pcm_lookup(const struct pcm *m, const char *name);
/* 1 if ino is a file (or the directory) of the model. */
int pcm_exists(const struct pcm *m, uint64_t ino);
/* Attributes of a file: mode, names, size. 0, or -1 if no such file. */
int pcm_attr(const struct pcm *m, uint64_t ino, mode_t *mode,
	     unsigned int *nlink, uint64_t *size);
/* Up to len bytes at off; the number read. */
size_t pcm_read(const struct pcm *m, uint64_t ino, void *buf, size_t len,
		uint64_t off);
/* Names, in order; *names[i] borrowed until the next change. */
size_t pcm_names(const struct pcm *m, const char ***names, uint64_t **inos);

/* --- changes: 0 or an errno ----------------------------------------------- */

int pcm_create(struct pcm *m, const char *name, mode_t mode, uint64_t *ino);
int pcm_write(struct pcm *m, uint64_t ino, const void *buf, size_t len,
	      uint64_t off);
int pcm_truncate(struct pcm *m, uint64_t ino, uint64_t size);
int pcm_chmod(struct pcm *m, uint64_t ino, mode_t mode);
int pcm_link(struct pcm *m, uint64_t ino, const char *name);
int pcm_unlink(struct pcm *m, const char *name);
/* flags: 0 or RENAME_NOREPLACE (RENAME_EXCHANGE is EINVAL). */
int pcm_rename(struct pcm *m, const char *from, const char *to,
	       unsigned int flags);

/* --- flushes and cuts ----------------------------------------------------- */

void pcm_fsync(struct pcm *m, uint64_t ino);
void pcm_fsyncdir(struct pcm *m);
void pcm_syncfs(struct pcm *m);

/* What a cut dropped and kept, in changes. */
struct pcm_cut_stats {
	size_t names_pending, names_kept;
	size_t data_pending; /* writes and size changes */
	size_t files_lost;   /* files that had a name and have none now */
};

/*
 * Keep what survives a cut of kind how (random ones drawn from seed) and
 * make it the current image, with nothing pending.
 */
void pcm_cut(struct pcm *m, enum pcm_cut how, uint64_t seed,
	     struct pcm_cut_stats *st);

/* Number of changes not yet durable (names and data). */
size_t pcm_pending(const struct pcm *m);

#endif /* PC_MODEL_H */
