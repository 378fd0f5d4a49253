/*
 * journal.c - the intent record of a commit or restore, and the switch of
 * the _last, _last_id and MOD names it describes.
 *
 * .journal is text:
 *
 *   modstore-journal 1
 *   commit ROOT            (or: restore ROOT)
 *   MOD MODCOMMIT [SRC]    (one line per module that changes;
 *   MOD -                   "-": back to its initial memory; SRC, a
 *                           temporary or "init", makes MOD_MODCOMMIT)
 *   end CHECK              (H of every byte before this line)
 *
 * It is written in place and flushed (fdatasync) before the first name
 * moves, and then left live: what the switch changed (names, and the
 * MOD_last_id contents, written in place) becomes durable with the flush of
 * the file system that precedes the next journal, or at close or recovery,
 * after which its first line becomes "modstore-journal 0": nothing to do.
 * Replaying it moves every name again; that is idempotent, so a journal
 * left live (even one already carried out) always leads to the state it
 * records. A journal whose checksum does not match was torn while being
 * written, before any name moved, and is ignored.
 *
 * The file is never removed, and is cut only when a journal is shorter than
 * the one before: switches make or drop no inode for it.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_NAME  ".journal"
#define JOURNAL_MAGIC "modstore-journal 1\n"
#define JOURNAL_IDLE  "modstore-journal 0\n"

void journal_release(struct journal *j)
{
	free(j->e);
	memset(j, 0, sizeof(*j));
}

/* The journal's descriptor, opened (or made) on first use. */
static enum store_err journal_fd(struct store *s)
{
	if (s->jfd >= 0)
		return STORE_OK;
	s->jfd = openat(s->dirfd, JOURNAL_NAME, O_RDWR | O_CLOEXEC);
	if (s->jfd >= 0)
		return STORE_OK;
	if (errno != ENOENT)
		return err_from_errno(errno);
	s->jfd = openat(s->dirfd, JOURNAL_NAME,
			O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s->jfd < 0)
		return err_from_errno(errno);
	s->jnew = 1; /* its name is durable after the next fsync_dir */
	return STORE_OK;
}

/*
 * Write MOD_last_id in place: no inode is made and no block freed. The live
 * journal rewrites it after a crash until the next flush. A name that
 * shares its inode (a link made by another version) is replaced instead.
 */
static enum store_err write_last_id(struct store *s, const struct module *m,
				    const struct store_id *mc)
{
	char name[NAME_LEN], line[STORE_HEX_LEN + 1];
	enum store_err err;
	struct stat sb;
	int fd, e;

	if ((e = fault_at(s, "switch.id_open")))
		return err_from_errno(e);
	name_suffix(name, m, "_last_id");
	fd = openat(s->dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && fstat(fd, &sb) == 0 && sb.st_nlink > 1) {
		close(fd);
		if (unlinkat(s->dirfd, name, 0) < 0)
			return err_from_errno(errno);
		fd = openat(s->dirfd, name,
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return err_from_errno(errno);
	store_id_hex(mc, line);
	line[STORE_HEX_LEN] = '\n';
	err = write_all(s, fd, line, sizeof(line), 0, "switch.id_write");
	close(fd);
	return err;
}

enum store_err sync_store(struct store *s, const char *step)
{
	int e;

	if ((e = fault_at(s, step)))
		return err_from_errno(e);
	if (syncfs(s->dirfd) < 0)
		return err_from_errno(errno);
	return STORE_OK;
}

/* Point name dst at the file src by a new hard link renamed over dst. */
static enum store_err relink(struct store *s, const char *src, const char *dst)
{
	char tmp[TMP_NAME_LEN];
	int e, tries = 0;

	if ((e = fault_at(s, "switch.link")))
		return err_from_errno(e);
	do {
		tmp_name(tmp);
		if (linkat(s->dirfd, src, s->dirfd, tmp, 0) == 0)
			break;
		if (errno != EEXIST || ++tries == 16)
			return err_from_errno(errno == ENOENT ? EIO : errno);
	} while (1);
	if ((e = fault_at(s, "switch.rename")) ||
	    renameat(s->dirfd, tmp, s->dirfd, dst) < 0) {
		e = e ? e : errno;
		unlinkat(s->dirfd, tmp, 0);
		return err_from_errno(e);
	}
	/* renaming onto a link of the same file leaves tmp in place */
	unlinkat(s->dirfd, tmp, 0);
	return STORE_OK;
}

static enum store_err unlink_name(struct store *s, const char *name)
{
	int e;

	if ((e = fault_at(s, "switch.unlink")))
		return err_from_errno(e);
	if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT)
		return err_from_errno(errno);
	return STORE_OK;
}

/*
 * Put a new commit file in place from its source. Done already (a replay)
 * or made meanwhile by another commit of the same bytes: fine.
 */
static enum store_err place_file(struct store *s, struct jentry *je)
{
	char src[NAME_LEN], dst[NAME_LEN];
	struct stat sb;
	int e;

	name_commit(dst, je->mod, &je->mc);
	if ((e = fault_at(s, "switch.place")))
		return err_from_errno(e);
	if (!strcmp(je->src, SRC_INIT)) {
		name_init(src, je->mod);
		if (linkat(s->dirfd, src, s->dirfd, dst, 0) == 0)
			je->made = 1;
		else if (errno != EEXIST)
			return err_from_errno(errno == ENOENT ? EIO : errno);
		return STORE_OK;
	}
	if (renameat2(s->dirfd, je->src, s->dirfd, dst, RENAME_NOREPLACE) ==
	    0) {
		je->made = 1;
		return STORE_OK;
	}
	if (errno == EEXIST) {
		unlinkat(s->dirfd, je->src, 0); /* the same bytes */
		return STORE_OK;
	}
	if (errno == ENOENT && fstatat(s->dirfd, dst, &sb, 0) == 0)
		return STORE_OK; /* renamed before */
	return errno == ENOENT ? STORE_ECORRUPT : err_from_errno(errno);
}

enum store_err switch_finish(struct store *s, struct journal *j)
{
	char src[NAME_LEN], dst[NAME_LEN];
	enum store_err err = STORE_OK;
	size_t i;

	for (i = 0; i < j->n; i++) {
		struct jentry *je = &j->e[i];

		if (je->has_mc && je->src[0]) {
			err = place_file(s, je);
			if (err)
				goto out;
		}
		if (je->has_mc) {
			err = write_last_id(s, je->mod, &je->mc);
			if (err)
				goto out;
			name_commit(src, je->mod, &je->mc);
			name_suffix(dst, je->mod, "_last");
			err = relink(s, src, dst);
			if (err)
				goto out;
			name_suffix(dst, je->mod, "");
			err = relink(s, src, dst);
			if (err)
				goto out;
		} else {
			name_suffix(dst, je->mod, "_last_id");
			err = unlink_name(s, dst);
			if (err)
				goto out;
			name_suffix(dst, je->mod, "_last");
			err = unlink_name(s, dst);
			if (err)
				goto out;
			name_init(src, je->mod);
			name_suffix(dst, je->mod, "");
			err = relink(s, src, dst);
			if (err)
				goto out;
		}
	}
out:
	return err;
}

enum store_err journal_write(struct store *s, const struct journal *j)
{
	size_t cap, pos = 0, i;
	char *buf, a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1];
	struct store_id check;
	enum store_err err;
	struct stat sb;
	int e;

	cap = 64 + (j->n + 2) * (2 * STORE_HEX_LEN + TMP_NAME_LEN + 16);
	buf = malloc(cap);
	if (!buf)
		return STORE_ENOMEM;
	store_id_hex(&j->root, a);
	pos +=
	    (size_t)snprintf(buf + pos, cap - pos, "%s%s %s\n", JOURNAL_MAGIC,
			     j->op == JOURNAL_COMMIT ? "commit" : "restore", a);
	for (i = 0; i < j->n; i++) {
		store_id_hex(&j->e[i].mod->id, a);
		if (j->e[i].has_mc)
			store_id_hex(&j->e[i].mc, b);
		pos += (size_t)snprintf(buf + pos, cap - pos, "%s %s%s%s\n", a,
					j->e[i].has_mc ? b : "-",
					j->e[i].has_mc && j->e[i].src[0] ? " "
									 : "",
					j->e[i].has_mc ? j->e[i].src : "");
	}
	crypto_generichash(check.b, STORE_ID_BYTES, (unsigned char *)buf, pos,
			   NULL, 0);
	store_id_hex(&check, a);
	pos += (size_t)snprintf(buf + pos, cap - pos, "end %s\n", a);
	err = journal_fd(s);
	if (err)
		goto out;
	err = write_all(s, s->jfd, buf, pos, 0, "journal.write");
	if (err)
		goto out;
	/* a longer journal before: cut its tail, so the end line is ours */
	if (fstat(s->jfd, &sb) < 0) {
		err = err_from_errno(errno);
		goto out;
	}
	if ((uint64_t)sb.st_size > pos) {
		if ((e = fault_at(s, "journal.truncate")) ||
		    ftruncate(s->jfd, (off_t)pos) < 0) {
			err = err_from_errno(e ? e : errno);
			goto out;
		}
	}
	if ((e = fault_at(s, "journal.fsync")) || fdatasync(s->jfd) < 0) {
		err = err_from_errno(e ? e : errno);
		goto out;
	}
	if (s->jnew) {
		err = fsync_dir(s);
		if (!err)
			s->jnew = 0;
	}
out:
	free(buf);
	return err;
}

void journal_clear(struct store *s)
{
	/*
	 * Not flushed: should it be lost, replaying the journal at the next
	 * open leads to the same state again. A failed write leaves it live,
	 * with the same effect.
	 */
	if (journal_fd(s) == STORE_OK && !fault_at(s, "journal.clear"))
		(void)!pwrite(s->jfd, JOURNAL_IDLE, strlen(JOURNAL_IDLE), 0);
}

/* The optional " SRC" after a module commit, up to nl; 0 if well formed. */
static int parse_src(const char *p, const char *nl, char src[TMP_NAME_LEN])
{
	size_t n = (size_t)(nl - p), k, pl = strlen(TMP_PREFIX);

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
	/* a temporary: TMP_PREFIX and 16 lowercase hex digits */
	if (n != pl + 16 || memcmp(p, TMP_PREFIX, pl))
		return -1;
	for (k = pl; k < n; k++)
		if (!((p[k] >= '0' && p[k] <= '9') ||
		      (p[k] >= 'a' && p[k] <= 'f')))
			return -1;
	memcpy(src, p, n);
	src[n] = '\0';
	return 0;
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
	if (memcmp(buf, JOURNAL_MAGIC, ml))
		return STORE_ECORRUPT;
	p += ml;
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
		je->mod = module_find(s, &id);
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

/*
 * 0 if every new commit file the journal names is there, in place or
 * under its temporary name. A switch puts each in place before moving any
 * name of its module, so a file missing both ways means the switch never
 * began: its commit failed at its journal and took its temporaries back.
 */
static int sources_missing(struct store *s, const struct journal *j)
{
	char name[NAME_LEN];
	struct stat sb;
	size_t i;

	for (i = 0; i < j->n; i++) {
		const struct jentry *je = &j->e[i];

		if (!je->has_mc || !je->src[0] || !strcmp(je->src, SRC_INIT))
			continue;
		name_commit(name, je->mod, &je->mc);
		if (fstatat(s->dirfd, je->src, &sb, 0) < 0 &&
		    fstatat(s->dirfd, name, &sb, 0) < 0)
			return 1;
	}
	return 0;
}

enum store_err journal_recover(struct store *s, struct journal *out,
			       int *replayed)
{
	struct journal j = {0};
	enum store_err err;
	char *buf = NULL;
	size_t len;

	if (replayed)
		*replayed = 0;
	err = read_file(s->dirfd, JOURNAL_NAME, &buf, &len);
	if (err == STORE_ENOCOMMIT)
		return STORE_OK; /* no journal */
	if (err)
		return err;
	if (len >= strlen(JOURNAL_IDLE) &&
	    !memcmp(buf, JOURNAL_IDLE, strlen(JOURNAL_IDLE))) {
		free(buf);
		return STORE_OK; /* carried out */
	}
	err = journal_parse(s, buf, len, &j);
	free(buf);
	if (err == STORE_ENOCOMMIT) {
		/* torn before it counted: marked, so nothing reads it again */
		journal_clear(s);
		return STORE_OK;
	}
	if (err)
		return err;
	if (sources_missing(s, &j)) {
		journal_release(&j);
		journal_clear(s);
		return STORE_OK;
	}
	err = switch_finish(s, &j);
	if (!err)
		err = sync_store(s, "recover.sync");
	if (err) {
		journal_release(&j);
		return err;
	}
	journal_clear(s);
	if (replayed)
		*replayed = 1;
	if (out)
		*out = j;
	else
		journal_release(&j);
	return STORE_OK;
}
