/*
 * push.c - a record with the pages it changes (push.h): made by the
 * leader from its own files, read by a follower, which lays the pages
 * over its files of the commit's base. As with pages fetched from a peer
 * (catchup.c), nothing in a body is trusted but where the pages go: each
 * file made is checked against its module commit id before it is kept.
 */
#include "push.h"
#include "catchup.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PUSH_BATCH 64 /* files patched, and made durable, together */

/* --- the leader's side ---------------------------------------------------- */

/* Read len bytes at off of fd into buf: 0, or -1. */
static int read_at(int fd, char *buf, size_t len, uint64_t off)
{
	ssize_t got;

	while (len) {
		got = pread(fd, buf, len, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		buf += got;
		len -= (size_t)got;
		off += (uint64_t)got;
	}
	return 0;
}

/* The pages of m in commit's file into out: 0, or -1. */
static int module_pages(struct store *s, const struct store_id *commit,
			const struct store_diff_module *m, char *out)
{
	uint64_t size = 0;
	size_t i;
	int fd = -1, ret = 0;

	if (store_commit_open(s, commit, &m->module, &fd, &size) != STORE_OK)
		return -1;
	for (i = 0; i < m->npages && !ret; i++)
		ret = read_at(fd, out + i * STORE_PAGE_SIZE, STORE_PAGE_SIZE,
			      m->pages[i] * STORE_PAGE_SIZE);
	close(fd);
	return ret;
}

static json_t *module_json(const struct store_diff_module *m)
{
	char a[STORE_HEX_LEN + 1], b[STORE_HEX_LEN + 1], c[STORE_HEX_LEN + 1];
	json_t *pages = json_array(), *o;
	size_t i;

	for (i = 0; pages && i < m->npages; i++)
		json_array_append_new(pages,
				      json_integer((json_int_t)m->pages[i]));
	store_id_hex(&m->module, a);
	store_id_hex(&m->from, b);
	store_id_hex(&m->to, c);
	o = json_pack("{s:s, s:s, s:s, s:I, s:o}", "id", a, "from", b, "to", c,
		      "size", (json_int_t)m->size_to, "pages", pages);
	return o;
}

/*
 * The modules of commit record r that change pages against its base,
 * as JSON (into *mods) and their pages' bytes (into *data, *dlen): both
 * empty when there are none to send. 0, or -1 out of memory.
 */
static int commit_pages(struct store *s, const struct log_record *r,
			char **mods, char **data, size_t *dlen)
{
	struct store_diff d = {0};
	json_t *arr = json_array();
	size_t i, at = 0;
	int ret = -1;

	*data = NULL;
	*dlen = 0;
	if (!arr)
		return -1;
	if (r->op == LOG_COMMIT && r->has_base &&
	    store_commit_diff(s, &r->base, &r->id, 1, &d) == STORE_OK &&
	    d.total_pages && d.total_pages <= PUSH_MAX_PAGES)
		*data = malloc(d.total_pages * STORE_PAGE_SIZE);
	for (i = 0; *data && i < d.n; i++) {
		const struct store_diff_module *m = &d.m[i];

		if (!m->has_from || !m->has_to || !m->npages)
			continue;
		if (module_pages(s, &r->id, m, *data + at) == 0 &&
		    json_array_append_new(arr, module_json(m)) == 0)
			at += m->npages * STORE_PAGE_SIZE;
	}
	*dlen = at;
	*mods = json_dumps(arr, JSON_COMPACT);
	if (*mods)
		ret = 0;
	json_decref(arr);
	store_diff_release(&d);
	return ret;
}

char *push_body(struct store *s, const struct log_record *r, int pages,
		size_t *len)
{
	char *rec = log_record_text(r), *mods = NULL, *data = NULL, *b = NULL;
	size_t lr, lm, ld = 0;

	if (rec && !pages)
		mods = strdup("[]");
	if (rec && (pages ? commit_pages(s, r, &mods, &data, &ld) == 0
			  : mods != NULL)) {
		lr = strlen(rec);
		lm = strlen(mods);
		*len = lr + 1 + lm + 1 + ld;
		b = malloc(*len);
	}
	if (b) {
		memcpy(b, rec, lr);
		b[lr] = '\n';
		memcpy(b + lr + 1, mods, lm);
		b[lr + 1 + lm] = '\n';
		if (ld)
			memcpy(b + lr + 2 + lm, data, ld);
	}
	free(rec);
	free(mods);
	free(data);
	return b;
}

/* --- the follower's side -------------------------------------------------- */

/* One module of the array into m; its pages' count into the total. */
static int module_parse(json_t *o, struct store_diff_module *m, size_t *total)
{
	if (catchup_module_parse(o, "size", PUSH_MAX_PAGES - *total, m))
		return -1;
	*total += m->npages;
	return 0;
}

/* The modules array of [text, end) into p (data from data on). */
static int modules_parse(const char *text, const char *end, const char *data,
			 size_t dlen, struct push *p)
{
	json_t *arr = json_loadb(text, (size_t)(end - text), 0, NULL), *o;
	size_t i, total = 0;
	int ret = -1;

	if (!json_is_array(arr))
		goto out;
	p->d.m = calloc(json_array_size(arr) + 1, sizeof(*p->d.m));
	p->data = calloc(json_array_size(arr) + 1, sizeof(*p->data));
	if (!p->d.m || !p->data)
		goto out;
	json_array_foreach(arr, i, o)
	{
		p->data[i] = data + total * STORE_PAGE_SIZE;
		if (module_parse(o, &p->d.m[p->d.n++], &total))
			goto out;
	}
	p->d.total_pages = total;
	ret = dlen == total * STORE_PAGE_SIZE ? 0 : -1;
out:
	json_decref(arr);
	return ret;
}

int push_parse(const char *body, size_t len, struct push *p)
{
	const char *end = body + len, *nl1, *nl2;

	memset(p, 0, sizeof(*p));
	nl1 = memchr(body, '\n', len);
	nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
	if (!nl2 || log_record_parse(body, (size_t)(nl1 - body), &p->r))
		return -1;
	if (modules_parse(nl1 + 1, nl2, nl2 + 1, (size_t)(end - nl2 - 1), p)) {
		push_release(p);
		return -1;
	}
	return 0;
}

void push_release(struct push *p)
{
	log_record_release(&p->r);
	store_diff_release(&p->d);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

/* The module of p whose pages make pair from a file here, or -1. */
static long module_for(struct store *s, const struct push *p,
		       const struct store_pair *pair)
{
	size_t i;

	for (i = 0; i < p->d.n; i++)
		if (store_id_equal(&p->d.m[i].module, &pair->module) &&
		    store_id_equal(&p->d.m[i].to, &pair->commit) &&
		    store_commit_file_exists(s, &pair->module, &p->d.m[i].from))
			return (long)i;
	return -1;
}

/* The patch of module i of p: its base copied, its pages written. */
static struct store_patch *patch_of(struct store *s, const struct push *p,
				    size_t i)
{
	const struct store_diff_module *m = &p->d.m[i];
	struct store_patch *pt = NULL;
	size_t k;

	if (store_patch_new(s, &m->module, &m->from, m->size_to, m->pages,
			    m->npages, &pt) != STORE_OK)
		return NULL;
	for (k = 0; k < m->npages; k++)
		if (store_patch_write(pt, m->pages[k] * STORE_PAGE_SIZE,
				      p->data[i] + k * STORE_PAGE_SIZE,
				      STORE_PAGE_SIZE) != STORE_OK) {
			store_patch_free(pt);
			return NULL;
		}
	return pt;
}

size_t push_files(struct store *s, const struct push *p,
		  const struct store_pair *pairs, size_t n, int *done)
{
	struct store_patch *pt[PUSH_BATCH];
	struct store_id mc[PUSH_BATCH];
	enum store_err errs[PUSH_BATCH];
	size_t at[PUSH_BATCH], i = 0, k, b, made = 0;
	long m;

	while (i < n) {
		for (b = 0; i < n && b < PUSH_BATCH; i++) {
			if (done[i] ||
			    store_commit_file_exists(s, &pairs[i].module,
						     &pairs[i].commit) ||
			    (m = module_for(s, p, &pairs[i])) < 0 ||
			    !(pt[b] = patch_of(s, p, (size_t)m)))
				continue;
			mc[b] = pairs[i].commit;
			at[b++] = i;
		}
		if (b)
			store_patches_import(s, b, pt, mc, errs);
		for (k = 0; k < b; k++) {
			if (errs[k] == STORE_OK) {
				done[at[k]] = 1;
				made++;
			}
			store_patch_free(pt[k]);
		}
	}
	return made;
}
