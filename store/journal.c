/*
 * journal.c - the intent record of a commit or restore, and the switch of
 * the _last, _last_id and MOD names it describes.
 *
 * .journal is text:
 *
 *   modstore-journal 1
 *   commit ROOT            (or: restore ROOT)
 *   MOD MODCOMMIT          (one line per module that changes;
 *   MOD -                   "-": back to its initial memory)
 *   end CHECK              (H of every byte before this line)
 *
 * It is written durably before the first name moves. Replaying it moves
 * every name again; that is idempotent, so a journal left behind (even one
 * already carried out) always leads to the state it records, which is the
 * newest one: each commit or restore replaces .journal before it switches.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOURNAL_NAME  ".journal"
#define JOURNAL_MAGIC "modstore-journal 1\n"
#define SYNC_BATCH    64

void journal_release(struct journal *j)
{
	free(j->e);
	memset(j, 0, sizeof(*j));
}

void unlink_prepared(struct store *s, struct journal *j)
{
	size_t i;

	for (i = 0; i < j->n; i++) {
		if (j->e[i].tmp_id[0])
			unlinkat(s->dirfd, j->e[i].tmp_id, 0);
		j->e[i].tmp_id[0] = '\0';
	}
}

/* fsync a batch of descriptors, starting writeback of all of them first. */
static enum store_err sync_batch(struct store *s, int *fds, size_t n)
{
	enum store_err err = STORE_OK;
	size_t i;

	for (i = 0; i < n; i++)
		sync_file_range(fds[i], 0, 0, SYNC_FILE_RANGE_WRITE);
	for (i = 0; i < n; i++) {
		if (!err)
			err = fsync_fd(s, fds[i], "switch.id_fsync");
		close(fds[i]);
		fds[i] = -1;
	}
	return err;
}

enum store_err switch_prepare(struct store *s, struct journal *j)
{
	int fds[SYNC_BATCH];
	size_t i, nfd = 0;
	enum store_err err = STORE_OK;
	char line[STORE_HEX_LEN + 2];

	for (i = 0; i < j->n; i++) {
		struct jentry *je = &j->e[i];
		int fd;

		je->tmp_id[0] = '\0';
		if (!je->has_mc)
			continue;
		err = tmp_create(s, je->tmp_id, &fd);
		if (err) {
			je->tmp_id[0] = '\0';
			goto fail;
		}
		fds[nfd++] = fd;
		store_id_hex(&je->mc, line);
		line[STORE_HEX_LEN] = '\n';
		err = write_all(s, fd, line, STORE_HEX_LEN + 1, 0,
				"switch.id_write");
		if (err)
			goto fail;
		if (nfd == SYNC_BATCH) {
			err = sync_batch(s, fds, nfd);
			nfd = 0;
			if (err)
				goto fail;
		}
	}
	err = sync_batch(s, fds, nfd);
	nfd = 0;
	if (err)
		goto fail;
	return STORE_OK;
fail:
	for (i = 0; i < nfd; i++)
		close(fds[i]);
	unlink_prepared(s, j);
	return err;
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

enum store_err switch_finish(struct store *s, struct journal *j)
{
	char src[NAME_LEN], dst[NAME_LEN];
	enum store_err err = STORE_OK;
	size_t i;
	int e;

	for (i = 0; i < j->n; i++) {
		struct jentry *je = &j->e[i];

		if (je->has_mc) {
			name_commit(src, je->mod, &je->mc);
			name_suffix(dst, je->mod, "_last_id");
			if (je->tmp_id[0]) {
				if ((e = fault_at(s, "switch.rename")) ||
				    renameat(s->dirfd, je->tmp_id, s->dirfd,
					     dst) < 0) {
					err = err_from_errno(e ? e : errno);
					goto out;
				}
				je->tmp_id[0] = '\0';
			}
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
	err = fsync_dir(s);
out:
	unlink_prepared(s, j);
	return err;
}

enum store_err journal_write(struct store *s, const struct journal *j)
{
	size_t cap, pos = 0, i;
	char *buf, a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1];
	struct store_id check;
	enum store_err err;

	cap = 64 + (j->n + 2) * (2 * STORE_HEX_LEN + 16);
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
		pos += (size_t)snprintf(buf + pos, cap - pos, "%s %s\n", a,
					j->e[i].has_mc ? b : "-");
	}
	crypto_generichash(check.b, STORE_ID_BYTES, (unsigned char *)buf, pos,
			   NULL, 0);
	store_id_hex(&check, a);
	pos += (size_t)snprintf(buf + pos, cap - pos, "end %s\n", a);
	err = write_file_atomic(s, JOURNAL_NAME, buf, pos, "journal.write");
	free(buf);
	return err;
}

void journal_remove(struct store *s)
{
	/*
	 * Not fsynced: should the unlink be lost, replaying the journal at
	 * the next open leads to the same state again.
	 */
	unlinkat(s->dirfd, JOURNAL_NAME, 0);
}

static enum store_err journal_parse(struct store *s, const char *buf,
				    size_t len, struct journal *j)
{
	const char *p = buf, *end = buf + len, *nl, *last;
	struct store_id check, id;
	size_t lines = 0, ml = strlen(JOURNAL_MAGIC);

	memset(j, 0, sizeof(*j));
	/* the checksum line: "end " + 64 hex + "\n" */
	if (len < ml + 4 + STORE_HEX_LEN + 1 || buf[len - 1] != '\n')
		return STORE_ECORRUPT;
	last = end - (4 + STORE_HEX_LEN + 1);
	if (memcmp(last, "end ", 4) ||
	    store_id_parse(&id, last + 4, STORE_HEX_LEN))
		return STORE_ECORRUPT;
	crypto_generichash(check.b, STORE_ID_BYTES, (const unsigned char *)buf,
			   (size_t)(last - buf), NULL, 0);
	if (!store_id_equal(&check, &id) || memcmp(buf, JOURNAL_MAGIC, ml))
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
		    (nl - p != 2 * STORE_HEX_LEN + 1 &&
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
					   STORE_HEX_LEN))
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
	err = journal_parse(s, buf, len, &j);
	free(buf);
	if (err)
		return err;
	err = switch_prepare(s, &j);
	if (!err)
		err = switch_finish(s, &j);
	if (err) {
		journal_release(&j);
		return err;
	}
	journal_remove(s);
	if (replayed)
		*replayed = 1;
	if (out)
		*out = j;
	else
		journal_release(&j);
	return STORE_OK;
}
