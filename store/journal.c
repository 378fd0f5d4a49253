/*
 * journal.c - the intent record of a commit or restore, the switch of the
 * _last, _last_id and MOD names it describes, and its replay.
 *
 * A journal is text, in one of two files, .journal and .journal.1 (the
 * slots), which switches take in turn:
 *
 *   modstore-journal 2
 *   seq N                  (one more than the journal before it)
 *   commit ROOT            (or: restore ROOT)
 *   MOD MODCOMMIT [SRC]    (one line per module that changes;
 *   MOD -                   "-": back to its initial memory; SRC, a
 *                           temporary or "init", makes MOD_MODCOMMIT)
 *   end CHECK              (H of every byte before this line)
 *
 * "modstore-journal 1" (no seq line, as earlier versions wrote it in
 * .journal) is read as seq 0.
 *
 * Invariants, which a crash at any point must not break:
 *
 *  J1. A commit file MOD_MC holds the memory whose id is MC, durably,
 *      before any name refers to it: its temporary and the journal naming
 *      it are made durable by one flush of the file system (syncfs,
 *      "switch.sync") before the first name moves, and a name once made is
 *      only ever reused for the same bytes.
 *  J2. The journal is durable before the first name moves (the same flush).
 *  J3. A journal is never overwritten while the names its switch moved may
 *      not be durable: a switch writes the slot the last switch did not,
 *      and its flush makes the last switch's names durable; so the slot it
 *      writes held the switch before the last, whose names a flush made
 *      durable already. At open, the slot holding the newest record (a
 *      journal, or a "done" mark) counts as the last switch's, so the
 *      record that retires or overrides the other slot's is not the one
 *      the next switch overwrites.
 *  J4. Replaying a journal is idempotent: each step checks what is there,
 *      so a live journal, carried out or not, always leads to the state it
 *      records. A journal whose checksum does not match was torn while
 *      written, before any name moved, and is ignored.
 *  J5. A journal naming a new file that is nowhere in full (not in place,
 *      and its temporary missing or not holding the memory its id names:
 *      cut before the flush) never began to switch: no name of it moved.
 *      Its commit failed, or was cut before its answer.
 *  J6. Nothing a crashed process left unflushed is acted on: store_open()
 *      flushes the file system ("open.sync") before it reads the journals
 *      or any name, so a replay moves names on the word of a durable
 *      journal only.
 *
 * At open, the newest journal that began is replayed, and with it the
 * modules of the one before it that the newest does not list: the names of
 * that one may not have been durable yet when the newest was written (J3).
 *
 * States of a slot and what moves them:
 *
 *   idle ("modstore-journal 0", or no file)
 *     --journal_write()-->  live (names not yet moved)
 *     --switch_finish()-->  live (moved, not yet flushed)
 *     --the next switch's flush--> live (moved, durable; replaying it
 *                                  changes nothing the newer one needs)
 *     --journal_close(), journal_recover(), journal_settle()
 *                       -->  idle (both slots at once, see J3)
 *   live, a step of switch_finish() failed
 *     --switch_rollback()-->  the old names, with a journal of its own in
 *                             the other slot
 *     --rollback failed  -->  wedged: journal_reload() replays them
 *
 * A slot is marked idle alone only when its journal never began (J5) or
 * was not written whole: marking the newest idle while the one before it
 * is live would replay that older one over the newer names.
 *
 * The files are never removed, and cut only when a journal is shorter than
 * the one before in its slot: switches make or drop no inode for them.
 */
#include "journal.h"
#include "commits.h"
#include "fs.h"
#include "ids.h"
#include "state.h"
#include "store_internal.h"

#include <errno.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOURNAL_MAGIC	 "modstore-journal 2\n"
#define JOURNAL_MAGIC_V1 "modstore-journal 1\n"
#define JOURNAL_IDLE	 "modstore-journal 0\n"

static const char *const journal_names[2] = {".journal", ".journal.1"};

/*
 * One module's change in a switch: to module commit mc, or to none. src,
 * if not "", names where the file MOD_MC comes from when it does not exist
 * yet: a complete, durable temporary renamed to it, or SRC_INIT, .MOD_init
 * linked to it.
 */
struct jentry {
	struct module *mod;
	int has_mc;
	struct store_id mc;
	char src[TMP_NAME_LEN];
	int made;  /* switch_finish made MOD_MC */
	int place; /* only put MOD_MC in place: a newer journal moves the names
		    */
	int spare; /* src is still a name of MOD_MC: it becomes MOD_last */
	int *used; /* the caller's jsrc.used of src, if any */
};

struct journal {
	uint64_t seq;
	enum journal_op op;
	struct store_id root;
	int replay; /* a recovery or a rollback: names may already be there */
	size_t n;
	struct jentry *e;
};

static void journal_release(struct journal *j)
{
	free(j->e);
	memset(j, 0, sizeof(*j));
}

int journal_wedged(struct store *s)
{
	return s->jrn.wedged;
}

/* The descriptor of slot k, opened (or made) on first use. */
static enum store_err journal_fd(struct store *s, int k)
{
	enum store_err err;
	int created;

	if (s->jrn.fd[k] >= 0)
		return STORE_OK;
	/* a new file's name is made durable by the switch's flush */
	err = fs_open_rw(&s->fs, journal_names[k], &s->jrn.fd[k], &created);
	if (err)
		return err;
	err = fs_size(s->jrn.fd[k], &s->jrn.size[k]);
	if (err) {
		fs_close_fd(s->jrn.fd[k]);
		s->jrn.fd[k] = -1;
	}
	return err;
}

/*
 * Mark slot k idle (not flushed: see J4). With done, the mark also says
 * that every journal up to the last one written is carried out and its
 * names durable: a live journal of a lower seq in the other slot, which a
 * cut kept while losing its own mark, is then not replayed.
 */
static enum store_err journal_mark(struct store *s, int k, int done)
{
	char buf[64];
	enum store_err err;
	int n;

	n = snprintf(buf, sizeof(buf), "%sdone %llu\n", JOURNAL_IDLE,
		     (unsigned long long)(s->jrn.next_seq - 1));
	if (!done)
		n = (int)strlen(JOURNAL_IDLE);
	err = journal_fd(s, k);
	if (!err)
		err = fs_write(&s->fs, s->jrn.fd[k], buf, (size_t)n, 0,
			       "journal.clear");
	return err;
}

/* Mark slot k idle: its journal never began, or was not written whole. */
static void journal_clear(struct store *s, int k)
{
	(void)journal_mark(s, k, 0);
}

/* --- writing -----------------------------------------------------------------
 */

/* The journal's text; caller frees *out. */
static enum store_err journal_format(const struct journal *j, char **out,
				     size_t *len)
{
	size_t cap, pos = 0, i;
	char *buf, a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1];
	struct store_id check;

	cap = 96 + (j->n + 2) * (2 * STORE_HEX_LEN + TMP_NAME_LEN + 16);
	buf = malloc(cap);
	if (!buf)
		return STORE_ENOMEM;
	store_id_hex(&j->root, a);
	pos +=
	    (size_t)snprintf(buf + pos, cap - pos, "%sseq %llu\n%s %s\n",
			     JOURNAL_MAGIC, (unsigned long long)j->seq,
			     j->op == JOURNAL_COMMIT ? "commit" : "restore", a);
	for (i = 0; i < j->n; i++) {
		const struct jentry *je = &j->e[i];

		store_id_hex(&je->mod->id, a);
		if (je->has_mc)
			store_id_hex(&je->mc, b);
		pos += (size_t)snprintf(buf + pos, cap - pos, "%s %s%s%s\n", a,
					je->has_mc ? b : "-",
					je->has_mc && je->src[0] ? " " : "",
					je->has_mc ? je->src : "");
	}
	crypto_generichash(check.b, STORE_ID_BYTES, (unsigned char *)buf, pos,
			   NULL, 0);
	store_id_hex(&check, a);
	pos += (size_t)snprintf(buf + pos, cap - pos, "end %s\n", a);
	*out = buf;
	*len = pos;
	return STORE_OK;
}

/*
 * Write j in place in slot k, not flushed: the switch's flush makes it
 * durable with the new files (J1, J2).
 */
static enum store_err journal_write(struct store *s, const struct journal *j,
				    int k)
{
	enum store_err err;
	char *buf = NULL;
	size_t len = 0;

	err = journal_format(j, &buf, &len);
	if (!err)
		err = journal_fd(s, k);
	if (!err)
		err = fs_write(&s->fs, s->jrn.fd[k], buf, len, 0,
			       "journal.write");
	/* a longer journal before: cut its tail, so the end line is ours */
	if (!err && s->jrn.size[k] > len)
		err =
		    fs_truncate(&s->fs, s->jrn.fd[k], len, "journal.truncate");
	if (!err)
		s->jrn.size[k] = len;
	else if (s->jrn.size[k] < len)
		s->jrn.size[k] = len; /* it may have grown before failing */
	/* written, it may be replayed: what it records, for journal_settle */
	s->jrn.rec[k].valid = 1;
	s->jrn.rec[k].op = j->op;
	s->jrn.rec[k].root = j->root;
	free(buf);
	return err;
}

/* --- moving names
 * ------------------------------------------------------------- */

/*
 * Write MOD_last_id in place: no inode is made and no block freed (one
 * shared with another name was replaced at open: state.c).
 */
/* The kept descriptor of m's MOD_last_id, or NULL. */
static struct journal_idfd *idfd_find(struct journal_state *j,
				      const struct module *m)
{
	size_t i;

	for (i = 0; i < j->nidfd; i++)
		if (j->idfd[i].mod == m)
			return &j->idfd[i];
	return NULL;
}

/* Keep fd for m, closing the least recently used beyond the bound. */
static int idfd_keep(struct store *s, const struct module *m, int fd)
{
	struct journal_state *j = &s->jrn;
	struct journal_idfd *slot = NULL;
	size_t i;

	if (!j->idfd) {
		j->maxidfd = fs_open_files_limit() / 4;
		if (j->maxidfd > JOURNAL_ID_FDS)
			j->maxidfd = JOURNAL_ID_FDS;
		j->idfd =
		    j->maxidfd ? calloc(j->maxidfd, sizeof(*j->idfd)) : NULL;
	}
	if (!j->idfd)
		return 0; /* no room to keep it: opened each time */
	if (j->nidfd < j->maxidfd) {
		slot = &j->idfd[j->nidfd++];
	} else {
		slot = &j->idfd[0];
		for (i = 1; i < j->nidfd; i++)
			if (j->idfd[i].used < slot->used)
				slot = &j->idfd[i];
		fs_close_fd(slot->fd);
	}
	slot->mod = m;
	slot->fd = fd;
	slot->used = ++j->idtick;
	return 1;
}

/* Close the kept descriptor of m's MOD_last_id (its name goes). */
static void idfd_drop(struct journal_state *j, const struct module *m)
{
	struct journal_idfd *e = idfd_find(j, m);

	if (!e)
		return;
	fs_close_fd(e->fd);
	*e = j->idfd[--j->nidfd];
}

static enum store_err write_last_id(struct store *s, const struct module *m,
				    const struct store_id *mc)
{
	char name[NAME_LEN], line[STORE_HEX_LEN + 1];
	struct journal_idfd *e = idfd_find(&s->jrn, m);
	enum store_err err;
	int fd;

	if (e) {
		fd = e->fd;
		e->used = ++s->jrn.idtick;
	} else {
		names_suffix(name, m->hex, "_last_id");
		err = fs_open_wr(&s->fs, name, "switch.id_open", &fd);
		if (err)
			return err;
		e = idfd_keep(s, m, fd) ? idfd_find(&s->jrn, m) : NULL;
	}
	store_id_hex(mc, line);
	line[STORE_HEX_LEN] = '\n';
	err = fs_write(&s->fs, fd, line, sizeof(line), 0, "switch.id_write");
	if (!e)
		fs_close_fd(fd);
	else if (err)
		idfd_drop(&s->jrn, m); /* opened afresh next time */
	return err;
}

static enum store_err unlink_name(struct store *s, const char *name)
{
	int e;

	if ((e = fs_fault(&s->fs, "switch.unlink")))
		return fs_err(e);
	e = fs_unlink(&s->fs, name);
	return e && e != ENOENT ? fs_err(e) : STORE_OK;
}

/*
 * Put a new commit file in place from its source. Done already (a replay)
 * or made meanwhile by another commit of the same bytes: fine (J1).
 */
static enum store_err place_file(struct store *s, struct jentry *je)
{
	char src[NAME_LEN], dst[NAME_LEN];
	int e;

	names_commit(dst, je->mod->hex, &je->mc);
	if ((e = fs_fault(&s->fs, "switch.place")))
		return fs_err(e);
	if (!strcmp(je->src, SRC_INIT)) {
		names_init(src, je->mod->hex);
		e = fs_link(&s->fs, src, dst);
		if (e == 0)
			je->made = 1;
		else if (e != EEXIST)
			return fs_err(e == ENOENT ? EIO : e);
		return STORE_OK;
	}
	/* a second name: the temporary then moves over MOD_last */
	e = fs_link(&s->fs, je->src, dst);
	if (e == 0) {
		je->made = je->spare = 1;
		return STORE_OK;
	}
	if (e == EEXIST) {
		/* the same bytes, or linked before a crash: MOD_MC decides */
		fs_unlink(&s->fs, je->src);
		return STORE_OK;
	}
	if (e == ENOENT && fs_exists(&s->fs, dst, NULL) == 1)
		return STORE_OK; /* renamed before */
	return e == ENOENT ? STORE_ECORRUPT : fs_err(e);
}

/* Point MOD_last and MOD at MOD_MC, and write MOD_last_id. */
static enum store_err switch_to_commit(struct store *s, const struct journal *j,
				       struct jentry *je)
{
	char src[NAME_LEN], dst[NAME_LEN];
	enum store_err err;
	/* a rename onto a name of the same file is a no-op that leaves the
	 * temporary link: possible on a replay, or with the init file's inode
	 */
	int tidy = j->replay || store_id_equal(&je->mc, &je->mod->zero_mc);

	err = write_last_id(s, je->mod, &je->mc);
	if (err)
		return err;
	names_commit(src, je->mod->hex, &je->mc);
	names_suffix(dst, je->mod->hex, "_last");
	if (je->spare) {
		int e = fs_fault(&s->fs, "switch.rename");

		if (!e)
			e = fs_rename(&s->fs, je->src, dst, 0);
		if (e)
			return fs_err(e);
		je->spare = 0;
	} else {
		err = fs_relink(&s->fs, src, dst, tidy);
		if (err)
			return err;
	}
	names_suffix(dst, je->mod->hex, "");
	return fs_relink(&s->fs, src, dst, tidy);
}

/* Drop MOD_last_id and MOD_last, point MOD at .MOD_init. */
static enum store_err switch_to_initial(struct store *s,
					const struct jentry *je)
{
	char src[NAME_LEN], dst[NAME_LEN];
	enum store_err err;

	names_suffix(dst, je->mod->hex, "_last_id");
	idfd_drop(&s->jrn, je->mod);
	err = unlink_name(s, dst);
	if (err)
		return err;
	names_suffix(dst, je->mod->hex, "_last");
	err = unlink_name(s, dst);
	if (err)
		return err;
	names_init(src, je->mod->hex);
	names_suffix(dst, je->mod->hex, "");
	return fs_relink(&s->fs, src, dst, 1);
}

/* Move every name j lists; each step may have been done before (J4). */
static enum store_err switch_finish(struct store *s, struct journal *j)
{
	enum store_err err = STORE_OK;
	size_t i;

	for (i = 0; i < j->n && !err; i++) {
		struct jentry *je = &j->e[i];

		if (je->has_mc && je->src[0])
			err = place_file(s, je);
		if (!err && !je->place)
			err = je->has_mc ? switch_to_commit(s, j, je)
					 : switch_to_initial(s, je);
	}
	return err;
}
/* --- reading and replaying
 * ---------------------------------------------------- */

/* The optional " SRC" after a module commit, up to nl; 0 if well formed. */
static int parse_src(const char *p, const char *nl, char src[TMP_NAME_LEN])
{
	size_t n = (size_t)(nl - p);

	src[0] = '\0';
	if (n == 0)
		return 0;
	if (*p++ != ' ')
		return -1;
	n--;
	if (n == strlen(SRC_INIT) && !memcmp(p, SRC_INIT, n)) {
		memcpy(src, SRC_INIT, n + 1);
		return 0;
	}
	if (!names_is_tmp(p, n))
		return -1;
	memcpy(src, p, n);
	src[n] = '\0';
	return 0;
}

/* "WORD N\n" at *p + skip, before last: *p past it; 0 if well formed. */
static int parse_number(const char **p, size_t skip, const char *last,
			const char *word, uint64_t *out)
{
	const char *q = *p + skip;
	size_t wl = strlen(word), digits = 0;
	uint64_t v = 0;

	if (last - q < (ptrdiff_t)wl + 2 || memcmp(q, word, wl))
		return -1;
	for (q += wl; q < last && *q >= '0' && *q <= '9'; q++) {
		if (++digits > 19)
			return -1;
		v = v * 10 + (uint64_t)(*q - '0');
	}
	if (!digits || q >= last || *q != '\n')
		return -1;
	*out = v;
	*p = q + 1;
	return 0;
}

static int parse_seq(const char **p, size_t ml, const char *last, uint64_t *seq)
{
	return parse_number(p, ml, last, "seq ", seq);
}

static int parse_done(const char **p, size_t ml, const char *last,
		      uint64_t *done)
{
	return parse_number(p, ml, last, "done ", done);
}

static enum store_err journal_parse(struct store *s, const char *buf,
				    size_t len, struct journal *j)
{
	const char *p = buf, *end = buf + len, *nl, *last;
	struct store_id check, id;
	size_t lines = 0, ml = strlen(JOURNAL_MAGIC);

	memset(j, 0, sizeof(*j));
	/*
	 * The checksum line, "end " + 64 hex + "\n", missing or not matching:
	 * torn by a crash while it was written, before any name moved.
	 */
	if (len < ml + 4 + STORE_HEX_LEN + 1 || buf[len - 1] != '\n')
		return STORE_ENOCOMMIT;
	last = end - (4 + STORE_HEX_LEN + 1);
	if (memcmp(last, "end ", 4) ||
	    store_id_parse(&id, last + 4, STORE_HEX_LEN))
		return STORE_ENOCOMMIT;
	crypto_generichash(check.b, STORE_ID_BYTES, (const unsigned char *)buf,
			   (size_t)(last - buf), NULL, 0);
	if (!store_id_equal(&check, &id))
		return STORE_ENOCOMMIT;
	if (!memcmp(buf, JOURNAL_MAGIC_V1, ml))
		p += ml; /* seq 0 */
	else if (memcmp(buf, JOURNAL_MAGIC, ml) ||
		 parse_seq(&p, ml, last, &j->seq))
		return STORE_ECORRUPT;
	if (!strncmp(p, "commit ", 7)) {
		j->op = JOURNAL_COMMIT;
		p += 7;
	} else if (!strncmp(p, "restore ", 8)) {
		j->op = JOURNAL_RESTORE;
		p += 8;
	} else {
		return STORE_ECORRUPT;
	}
	if (last - p < STORE_HEX_LEN + 1 ||
	    store_id_parse(&j->root, p, STORE_HEX_LEN) ||
	    p[STORE_HEX_LEN] != '\n')
		return STORE_ECORRUPT;
	p += STORE_HEX_LEN + 1;
	for (nl = p; nl < last; nl++)
		lines += *nl == '\n';
	j->e = calloc(lines ? lines : 1, sizeof(*j->e));
	if (!j->e)
		return STORE_ENOMEM;
	while (p < last) {
		struct jentry *je = &j->e[j->n];

		nl = memchr(p, '\n', (size_t)(last - p));
		if (!nl ||
		    (nl - p < 2 * STORE_HEX_LEN + 1 &&
		     nl - p != STORE_HEX_LEN + 2) ||
		    p[STORE_HEX_LEN] != ' ' ||
		    store_id_parse(&id, p, STORE_HEX_LEN))
			goto corrupt;
		je->mod = modules_find(s, &id);
		if (!je->mod)
			goto corrupt;
		if (nl - p == STORE_HEX_LEN + 2) {
			if (p[STORE_HEX_LEN + 1] != '-')
				goto corrupt;
		} else {
			if (store_id_parse(&je->mc, p + STORE_HEX_LEN + 1,
					   STORE_HEX_LEN) ||
			    parse_src(p + 2 * STORE_HEX_LEN + 1, nl, je->src))
				goto corrupt;
			je->has_mc = 1;
		}
		j->n++;
		p = nl + 1;
	}
	return STORE_OK;
corrupt:
	journal_release(j);
	return STORE_ECORRUPT;
}

/* 1 if the temporary name holds the memory whose id is mc. */
static int tmp_holds(struct store *s, const char *name,
		     const struct store_id *mc)
{
	struct fs_map map = {0};
	struct store_id got;

	if (fs_map(&s->fs, name, &map) != STORE_OK)
		return 0;
	store_memory_id(map.p, map.len, &got);
	fs_unmap(&map);
	return store_id_equal(&got, mc);
}

/*
 * 0 if every new commit file the journal names is there in full: in place
 * (a switch puts it there after its flush), or under its temporary name
 * holding the memory its id names. Else its switch never began (J5).
 */
static int sources_missing(struct store *s, const struct journal *j)
{
	char name[NAME_LEN];
	size_t i;

	for (i = 0; i < j->n; i++) {
		const struct jentry *je = &j->e[i];

		if (!je->has_mc || !je->src[0] || !strcmp(je->src, SRC_INIT))
			continue;
		names_commit(name, je->mod->hex, &je->mc);
		if (fs_exists(&s->fs, name, NULL) != 1 &&
		    !tmp_holds(s, je->src, &je->mc))
			return 1;
	}
	return 0;
}

/*
 * Slot k's journal into *j when it is live and began; 0 (and nothing in j)
 * when idle, missing, torn or never begun (then marked idle).
 */
static enum store_err read_slot(struct store *s, int k, struct journal *j,
				uint64_t *done)
{
	enum store_err err;
	char *buf = NULL;
	size_t len;

	memset(j, 0, sizeof(*j));
	*done = 0;
	err = fs_read_file(&s->fs, journal_names[k], &buf, &len, NULL);
	if (err == STORE_ENOCOMMIT)
		return STORE_OK; /* no journal */
	if (err)
		return err;
	if (len >= strlen(JOURNAL_IDLE) &&
	    !memcmp(buf, JOURNAL_IDLE, strlen(JOURNAL_IDLE))) {
		const char *p = buf; /* NUL-terminated */

		/* "done N" gives N + 1 (0: no such line, or cut short) */
		if (!parse_done(&p, strlen(JOURNAL_IDLE), buf + len, done))
			(*done)++;
		free(buf);
		return STORE_OK; /* carried out */
	}
	err = journal_parse(s, buf, len, j);
	free(buf);
	if (err == STORE_ENOCOMMIT || (!err && sources_missing(s, j))) {
		/* torn before it counted, or never began (J4, J5): marked,
		 * so nothing reads it again */
		journal_release(j);
		journal_clear(s, k);
		return STORE_OK;
	}
	return err;
}

/*
 * Add to newer the entries of older for the modules newer does not list:
 * older's names may not have been durable when newer was written (J3).
 * Of the others, older's new files still go in place (a commit holds
 * them, and their link may be what was not durable), without a name.
 */
static enum store_err journal_merge(struct journal *newer,
				    const struct journal *older)
{
	struct jentry *e;
	size_t i, k, m = 0;

	/* older's first, as they happened: newer may name their files */
	e = calloc(newer->n + older->n + 1, sizeof(*e));
	if (!e)
		return STORE_ENOMEM;
	for (i = 0; i < older->n; i++) {
		for (k = 0; k < newer->n && newer->e[k].mod != older->e[i].mod;
		     k++)
			;
		if (k < newer->n && !(older->e[i].has_mc && older->e[i].src[0]))
			continue;
		e[m] = older->e[i];
		e[m++].place = k < newer->n;
	}
	memcpy(e + m, newer->e, newer->n * sizeof(*e));
	free(newer->e);
	newer->e = e;
	newer->n += m;
	return STORE_OK;
}

/* The journal to replay from both slots into *j (empty if none). */
static enum store_err read_slots(struct store *s, struct journal *j)
{
	struct journal sl[2];
	uint64_t done[2], upto, best = 0;
	enum store_err err;
	int k, newer;

	err = read_slot(s, 0, &sl[0], &done[0]);
	if (!err)
		err = read_slot(s, 1, &sl[1], &done[1]);
	if (err) {
		journal_release(&sl[0]);
		return err;
	}
	/*
	 * The slot with the newest record is the last switch's: the next
	 * switch writes the other, so a record that retires or overrides the
	 * older one is never overwritten before a flush (J3).
	 */
	for (k = 0; k < 2; k++) {
		uint64_t v = sl[k].e ? sl[k].seq + 1 : done[k];

		if (v && (v > best || (v == best && !sl[k].e))) {
			best = v;
			s->jrn.last = k;
		}
	}
	/* a mark of "done" covers seq < upto: carried out, durable */
	upto = done[0] > done[1] ? done[0] : done[1];
	if (upto > s->jrn.next_seq)
		s->jrn.next_seq = upto;
	for (k = 0; k < 2; k++) {
		if (sl[k].e && sl[k].seq < upto) {
			journal_release(&sl[k]);
			journal_clear(s, k); /* superseded, never read again */
		}
		if (sl[k].e && sl[k].seq >= s->jrn.next_seq)
			s->jrn.next_seq = sl[k].seq + 1;
	}
	newer = !sl[0].e || (sl[1].e && sl[1].seq > sl[0].seq);
	*j = sl[newer];
	if (j->e && sl[1 - newer].e)
		err = journal_merge(j, &sl[1 - newer]);
	journal_release(&sl[1 - newer]);
	if (err)
		journal_release(j);
	return err;
}

/* Mark both slots carried out through the last journal (not flushed). */
static enum store_err clear_slots(struct store *s)
{
	enum store_err err = journal_mark(s, 0, 1);

	if (!err)
		err = journal_mark(s, 1, 1);
	return err;
}

/*
 * Replay the live journals. *out gets the journal replayed (caller
 * releases), else stays empty.
 */
static enum store_err journal_recover(struct store *s, struct journal *out)
{
	struct journal j = {0};
	enum store_err err;

	err = read_slots(s, &j);
	if (err || !j.e)
		return err;
	j.replay = 1;
	err = switch_finish(s, &j);
	if (!err)
		err = fs_sync(&s->fs, "recover.sync");
	if (err) {
		journal_release(&j);
		return err;
	}
	(void)clear_slots(s); /* not flushed: a cut may replay them again */
	s->jrn.live = 0;
	/* what a replay could bring back until the marks are durable */
	s->jrn.rec[0].valid = 1;
	s->jrn.rec[0].op = j.op;
	s->jrn.rec[0].root = j.root;
	s->jrn.rec[1].valid = 0;
	*out = j;
	return STORE_OK;
}

/* --- the switch
 * ------------------------------------------------------------------ */

/*
 * The journal of a switch from cur to st: one entry per module whose
 * module commit changes, walking both sorted states at once.
 */
static enum store_err switch_plan(const struct state *cur,
				  const struct state *st, struct jsrc *src,
				  size_t nsrc, struct journal *j)
{
	size_t a = 0, b = 0, k;
	int c;

	j->e = calloc(cur->n + st->n + 1, sizeof(*j->e));
	if (!j->e)
		return STORE_ENOMEM;
	while (a < cur->n || b < st->n) {
		const struct entry *from = a < cur->n ? &cur->e[a] : NULL;
		const struct entry *to = b < st->n ? &st->e[b] : NULL;
		struct jentry *je = &j->e[j->n];

		c = !from ? 1
		    : !to ? -1
			  : memcmp(from->mod->id.b, to->mod->id.b,
				   STORE_ID_BYTES);
		a += c <= 0;
		b += c >= 0;
		if (c == 0 && store_id_equal(&from->mc, &to->mc))
			continue;
		if (c < 0) { /* back to its initial memory */
			je->mod = from->mod;
			j->n++;
			continue;
		}
		je->mod = to->mod;
		je->has_mc = 1;
		je->mc = to->mc;
		for (k = 0; k < nsrc; k++) {
			if (src[k].mod != to->mod)
				continue;
			memcpy(je->src, src[k].src, TMP_NAME_LEN);
			je->used = &src[k].used;
		}
		j->n++;
	}
	return STORE_OK;
}

/*
 * Put back the names of the modules in j as they are in cur, after a switch
 * failed half way, with a journal of its own. 0 when it worked.
 */
static enum store_err switch_rollback(struct store *s, const struct journal *j,
				      const struct state *cur)
{
	struct journal r = {0};
	enum store_err err;
	size_t i;
	int k;

	r.op = JOURNAL_RESTORE;
	r.root = cur->root;
	r.replay = 1;
	r.e = calloc(j->n ? j->n : 1, sizeof(*r.e));
	if (!r.e)
		return STORE_ENOMEM;
	for (i = 0; i < j->n; i++) {
		const struct entry *from = state_find(cur, &j->e[i].mod->id);

		r.e[i].mod = j->e[i].mod;
		r.e[i].has_mc = from != NULL;
		if (from)
			r.e[i].mc = from->mc;
	}
	r.n = j->n;
	/* in the other slot: j's names moved, its journal must stay (J3) */
	k = 1 - s->jrn.last;
	r.seq = s->jrn.next_seq++;
	err = journal_write(s, &r, k);
	if (!err)
		err = fs_sync(&s->fs, "switch.sync");
	if (!err)
		err = switch_finish(s, &r);
	if (!err) {
		s->jrn.live = 1;
		s->jrn.last = k;
	}
	journal_release(&r);
	return err;
}

/* After switch_finish() failed: roll back, or wedge the store. */
static void switch_failed(struct store *s, const struct journal *j,
			  const struct state *cur)
{
	char name[NAME_LEN];
	size_t i;

	if (switch_rollback(s, j, cur)) {
		pthread_mutex_lock(&s->lock);
		s->jrn.wedged = 1; /* the journal on disk decides */
		pthread_mutex_unlock(&s->lock);
		return;
	}
	/* rolled back: the files it made are named by nothing */
	for (i = 0; i < j->n; i++) {
		if (!j->e[i].made)
			continue;
		names_commit(name, j->e[i].mod->hex, &j->e[i].mc);
		fs_unlink(&s->fs, name);
	}
}

enum store_err journal_switch(struct store *s, struct state *st,
			      enum journal_op op, struct jsrc *src, size_t nsrc)
{
	struct journal j = {0};
	struct state *cur = state_current(s);
	enum store_err err;
	size_t i;
	int k = s->jrn.last == 0 ? 1 : 0; /* the other slot (J3) */

	j.op = op;
	j.root = st->root;
	err = switch_plan(cur, st, src, nsrc, &j);
	if (err || j.n == 0)
		goto publish; /* no name moves */
	j.seq = s->jrn.next_seq++;
	err = journal_write(s, &j, k);
	/* J1, J2 and J3 at once: the new files, the journal, and the names
	 * the last switch moved */
	if (!err)
		err = fs_sync(&s->fs, "switch.sync");
	if (err) {
		journal_clear(s, k); /* it may have reached the disk */
		goto out;
	}
	s->jrn.last = k;
	s->jrn.live = 1;
	err = switch_finish(s, &j);
	if (err) {
		switch_failed(s, &j, cur);
		goto out;
	}
	for (i = 0; i < j.n; i++)
		if (j.e[i].used)
			*j.e[i].used = 1;
publish:
	if (!err)
		state_publish(s, st);
out:
	state_unref(cur);
	journal_release(&j);
	return err;
}

/* --- recovery
 * ---------------------------------------------------------------------- */

/* A replayed commit's state goes into the commits store. */
static enum store_err add_replayed(struct store *s, const struct journal *j,
				   const struct state *st)
{
	struct store_pair *pairs = NULL;
	enum store_err err;

	if (j->op != JOURNAL_COMMIT || !store_id_equal(&j->root, &st->root))
		return STORE_OK;
	err = state_pairs(st, &pairs);
	if (err)
		return err;
	pthread_mutex_lock(&s->lock);
	err = commits_add(&s->cs, &st->root, pairs, st->n, 0);
	pthread_mutex_unlock(&s->lock);
	free(pairs);
	return err;
}

enum store_err journal_reload(struct store *s)
{
	struct journal j = {0};
	struct state *st = NULL;
	enum store_err err;

	err = journal_recover(s, &j);
	if (!err)
		err = state_load(s, &st);
	if (!err && j.e)
		err = add_replayed(s, &j, st);
	if (!err) {
		state_publish(s, st);
		pthread_mutex_lock(&s->lock);
		s->jrn.wedged = 0;
		pthread_mutex_unlock(&s->lock);
	}
	state_unref(st);
	journal_release(&j);
	return err;
}

enum store_err journal_unwedge(struct store *s)
{
	return s->jrn.wedged ? journal_reload(s) : STORE_OK;
}

/* The idle marks of both slots, through the last journal, durable. */
static enum store_err settle_slots(struct store *s, const char *step)
{
	enum store_err err = clear_slots(s);
	int k;

	for (k = 0; k < 2 && !err; k++)
		err = fs_fdatasync(&s->fs, s->jrn.fd[k], step);
	for (k = 0; k < 2 && !err; k++)
		s->jrn.rec[k].valid = 0;
	return err;
}

enum store_err journal_settle(struct store *s, const struct store_id *commit)
{
	enum store_err err = STORE_OK;
	int k, replayable = 0;

	for (k = 0; k < 2; k++)
		replayable |= s->jrn.rec[k].valid &&
			      s->jrn.rec[k].op == JOURNAL_COMMIT &&
			      store_id_equal(&s->jrn.rec[k].root, commit);
	if (!replayable)
		return STORE_OK; /* no replay can add commit back */
	/* J3 first: the names it moved durable, then the marks */
	if (s->jrn.live)
		err = fs_sync(&s->fs, "delete.sync");
	if (!err) {
		s->jrn.live = 0;
		err = settle_slots(s, "delete.fsync");
	}
	return err;
}

void journal_close(struct store *s)
{
	int k;

	while (s->jrn.nidfd)
		idfd_drop(&s->jrn, s->jrn.idfd[0].mod);
	free(s->jrn.idfd);
	s->jrn.idfd = NULL;
	/* flushed, the last switch needs no replay at the next open */
	if (s->jrn.live && !s->jrn.wedged &&
	    fs_sync(&s->fs, "close.sync") == STORE_OK)
		(void)settle_slots(s, "close.fsync");
	for (k = 0; k < 2; k++) {
		fs_close_fd(s->jrn.fd[k]);
		s->jrn.fd[k] = -1;
	}
}
