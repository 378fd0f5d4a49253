/*
 * catchup.h - the module commit files of a commit that a follower lacks,
 * made from files it holds and the pages that differ (docs/cluster.md,
 * "Catching up by pages"): the diff of a commit it holds to the new one
 * (GET /commits/FROM/diff/TO on a peer), then each module's changed pages
 * in one multipart range request per PEER_MAX_RANGES runs, laid over a
 * copy of its own file of the module (store_patch_*) and checked whole
 * against the module commit id before the file takes its name.
 */
#ifndef CLUSTER_CATCHUP_H
#define CLUSTER_CATCHUP_H

#include "peer.h"
#include "store.h"

#include <jansson.h>
#include <stddef.h>

/*
 * One module of a diff's answer or of a record sent between nodes, with
 * both ends held ({"id", "from", "to", size_key, "pages"}, at most
 * max_pages pages) into m: 0, or -1 (m->pages may be set: the caller
 * frees it).
 */
int catchup_module_parse(json_t *o, const char *size_key, size_t max_pages,
			 struct store_diff_module *m);

/*
 * A commit whose missing files are all of modules smaller than this is
 * fetched whole: its files cost about what a diff and a range request
 * would.
 */
#define CATCHUP_MIN_SIZE (256 * 1024)

/* The largest diff answer read (some 500,000 pages); beyond, files whole. */
#define CATCHUP_DIFF_MAX (4 << 20)

/*
 * Of the n pairs of commit (files this node lacks), make those it can
 * from the diff to commit of one of the nf commits from (tried in order,
 * each on the peers urls in order, NULL-terminated): a pair is made when
 * the diff names, for its module, a module commit whose file is here.
 * done[i] is set for each pair made. The number made.
 */
size_t catchup_files(struct store *s, struct peer *p, char *const *urls,
		     const struct store_id *from, size_t nf,
		     const struct store_id *commit,
		     const struct store_pair *pairs, size_t n, int *done);

#endif /* CLUSTER_CATCHUP_H */
