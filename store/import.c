/*
 * import.c - what arrives from another node of a cluster: a module commit
 * file, checked against its Merkle id before it takes its name, and a
 * commit added to the commits store, checked against its pairs.
 *
 * Neither changes the current state: a follower then calls store_restore()
 * (the journal's switch), as for a local restore.
 */
#include "commits.h"
#include "fs.h"
#include "ids.h"
#include "modules.h"
#include "names.h"
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The name of (mod, mc)'s module commit file, or ENOMODULE. */
static enum store_err commit_file_name(struct store *s,
				       const struct store_id *mod,
				       const struct store_id *mc,
				       char name[NAME_LEN])
{
	const struct module *m = modules_find(s, mod);

	if (!m)
		return STORE_ENOMODULE;
	names_commit(name, m->hex, mc);
	return STORE_OK;
}

int store_commit_file_exists(struct store *s, const struct store_id *mod,
			     const struct store_id *mc)
{
	char name[NAME_LEN];

	if (commit_file_name(s, mod, mc, name))
		return 0;
	return fs_exists(&s->fs, name, NULL) == 1;
}

enum store_err store_commit_file_import(struct store *s,
					const struct store_id *mod,
					const struct store_id *mc,
					struct store_upload *u)
{
	struct fs_map map = {0};
	struct store_id got;
	char name[NAME_LEN];
	enum store_err err;
	int e;

	err = commit_file_name(s, mod, mc, name);
	if (err)
		return err;
	if (fs_exists(&s->fs, name, NULL) == 1)
		return STORE_OK; /* immutable: the one there is the same */
	if (u->err)
		return u->err;
	if (!u->tmp[0] || !u->len || u->len % STORE_PAGE_SIZE ||
	    u->len > s->max_module_size)
		return STORE_EINVAL;
	err = fs_map(&s->fs, u->tmp, &map);
	if (err)
		return err;
	store_memory_id(map.p, map.len, &got);
	fs_unmap(&map);
	if (!store_id_equal(&got, mc))
		return STORE_EMISMATCH;
	err = fs_fsync(&s->fs, u->fd, "import.fsync");
	if (err)
		return err;
	e = fs_rename(&s->fs, u->tmp, name, 1);
	if (e && e != EEXIST)
		return fs_err(e);
	if (e == EEXIST)
		return STORE_OK; /* u's temporary goes with store_upload_free */
	u->tmp[0] = '\0';
	return fs_fsync_dir(&s->fs);
}

enum store_err store_commit_add(struct store *s, const struct store_id *commit,
				const struct store_pair *pairs, size_t n)
{
	struct store_pair *sorted = NULL;
	struct store_id root;
	enum store_err err;
	size_t i;

	err = store_commits_ready(s);
	if (err)
		return err;
	err = store_state_id(pairs, n, &root);
	if (err)
		return err;
	if (!store_id_equal(&root, commit) || !n)
		return STORE_EMISMATCH;
	for (i = 0; i < n; i++)
		if (!store_commit_file_exists(s, &pairs[i].module,
					      &pairs[i].commit))
			return modules_find(s, &pairs[i].module)
				   ? STORE_ENOCOMMIT
				   : STORE_ENOMODULE;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return STORE_ENOMEM;
	memcpy(sorted, pairs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), ids_pair_cmp);
	pthread_mutex_lock(&s->lock);
	err = commits_add(&s->cs, commit, sorted, n, 0);
	pthread_mutex_unlock(&s->lock);
	free(sorted);
	return err;
}
