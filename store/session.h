/*
 * session.h - sessions: a base state plus private writes. What commit.c
 * needs of a session's modules and their overlays.
 *
 * A session holds a reference to its base state, whose files are never
 * modified, so it reads them without any lock of the store. Its writes go
 * page by page (copy on write) into an overlay per module (overlay.h).
 */
#ifndef STORE_SESSION_H
#define STORE_SESSION_H

#include "overlay.h"
#include "store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct store;
struct state;
struct entry;
struct module;

/* A session's view of one module. */
struct smod {
	struct module *mod;
	const struct entry *be; /* in the base state; NULL: initial memory */
	uint64_t base_size;
	uint64_t size;
	int base_fd; /* -1 for initial memory */
	struct overlay ov;
};

struct session {
	struct store_id id;
	pthread_rwlock_t lock;
	atomic_int refs;
	int dead;
	struct state *base;
	int has_base;
	struct store_id base_id;
	struct smod **mods; /* sorted by module id */
	size_t nmods, cap;
	atomic_llong last_used; /* seconds, CLOCK_MONOTONIC */
};

/* The session table. */
struct sessions {
	struct session **v; /* oldest first */
	size_t n, cap;
};

/* Look the session up and lock it; STORE_ENOSESSION when it is gone. */
enum store_err session_lock(struct store *s, const struct store_id *sid,
			    int write, struct session **out);
void session_unlock(struct store *s, struct session *se);

/* End se, which its caller holds write-locked: it is gone on return. */
void session_finish(struct store *s, struct session *se);

int session_is_dirty(const struct smod *sm, uint64_t page);
/* The bytes of dirty page page of sm into buf. */
enum store_err session_read_page(const struct smod *sm, uint64_t page,
				 void *buf);
/*
 * Write sm's dirty pages into fd (a new commit file of sm->size bytes) at
 * their offsets; *written grows by the bytes written.
 */
enum store_err session_write_dirty(struct store *s, const struct smod *sm,
				   int fd, uint64_t *written);

/* References to the open sessions' base states (caller unrefs, frees). */
enum store_err session_bases(struct store *s, struct state ***out, size_t *n);

/* Drop every session (at close). */
void session_free_all(struct store *s);

#endif /* STORE_SESSION_H */
