/*
 * pcfs.h - the power-cut file system: the model of model.h served over
 * FUSE (libfuse3, low-level API) at a mount point, by a process of its
 * own, one thread, and the commands that drive it.
 *
 * The model learns of each flush as follows:
 *
 *   fsync, fdatasync of a file   FUSE_FSYNC (the kernel forwards it; with
 *                                no writeback cache every write reached
 *                                the server before the call returned)
 *   fsync of the directory       FUSE_FSYNCDIR
 *   syncfs                       FUSE never forwards it to its server: the
 *                                store's test hook, called just before the
 *                                store's syncfs, sends PCFS_SYNC, which
 *                                makes everything durable (see
 *                                powercut.c). Flushing at the hook rather
 *                                than at the call can only make less
 *                                durable, never more.
 *
 * A cut: PCFS_FREEZE takes the moment (every change after it is refused
 * with EIO), PCFS_CUT keeps what survives from it and mounts the result
 * again, so that no cache of the kernel outlives the cut: what is read
 * afterwards is only what survived. PCFS_CUT can be sent again, each time
 * from the same frozen moment with another kind or seed, until the next
 * PCFS_FREEZE takes a new one.
 *
 * Events are the changes and flushes the server sees (create, write,
 * truncate, link, unlink, rename, copy, fsync, fsyncdir, PCFS_SYNC).
 * PCFS_ARM N makes the server cut power at the Nth event since PCFS_RESET:
 * it kills the process making it with SIGKILL, refuses the event and
 * freezes; the process dies in that system call, before it can do
 * anything else.
 */
#ifndef PC_PCFS_H
#define PC_PCFS_H

#include <stdint.h>
#include <sys/types.h>

#include "model.h"

enum pcfs_cmd {
	PCFS_RESET = 1, /* an empty directory, mounted afresh */
	PCFS_ARM,	/* a: cut at the a-th event since the reset; 0: never */
	PCFS_SYNC,	/* syncfs of the caller (pid) */
	PCFS_EVENTS,	/* reply a: events since the reset; b: 1 if frozen */
	PCFS_FREEZE,	/* the moment to cut: nothing changes after it */
	PCFS_CUT,	/* a: enum pcm_cut, b: seed, from the frozen moment;
			   reply a-d: pcm_cut_stats */
	PCFS_PENDING,	/* reply a: changes not yet durable */
	PCFS_QUIT,
};

struct pcfs_msg {
	int32_t cmd;
	int32_t pid;
	int64_t a, b;
};

struct pcfs_reply {
	int32_t err;
	int32_t pad;
	int64_t a, b, c, d;
};

/* The server: its process, the parent's connection, the path for others. */
struct pcfs {
	pid_t pid;
	int fd;
	char mnt[512];
	char sock[512];
};

/*
 * Fork the server, mounting an empty directory at mnt; children connect at
 * sock. 0, or -1 with a message on stderr (no FUSE, not root, ...).
 */
int pcfs_start(struct pcfs *fs, const char *mnt, const char *sock);
/* Unmount and end the server. */
void pcfs_stop(struct pcfs *fs);

/* Check the model through the mount (selftest.c); counts in t.h. */
void pcfs_selftest(const struct pcfs *fs);

/* A new connection (for a forked process); -1 on failure. */
int pcfs_connect(const char *sock);
/* Send a command, wait for its reply; 0, or -1 (rep->err says why). */
int pcfs_call(int fd, enum pcfs_cmd cmd, int64_t a, int64_t b,
	      struct pcfs_reply *rep);

#endif /* PC_PCFS_H */
