/*
 * unit_model.c - the store against a model: random sessions (on the
 * current state or on an older commit), writes at random offsets that grow
 * memory, commits, restores, deploys, persists and reopens, with a fixed
 * seed. After every step each module's memory, every module commit id and
 * the root are compared with what the model computes on its own.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "storetest.h"
#include "t.h"

#define MAXPAGES 16
#define MAXBYTES (MAXPAGES * STORE_PAGE_SIZE)
#define MAXMODS	 6
#define MAXSESS	 3
#define STEPS	 1500

static unsigned long long rng = 0x9E3779B97F4A7C15ULL;

static unsigned int rnd(unsigned int n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned int)(rng % n);
}

/* A memory image. */
struct mem {
	unsigned char *b;
	size_t len;
};

/* Contents seen so far, by module commit id. */
static struct blob {
	struct store_id id;
	struct mem m;
} * blobs;
static size_t nblobs;

static const struct mem *blob_get(const struct store_id *id)
{
	size_t i;

	for (i = 0; i < nblobs; i++)
		if (store_id_equal(&blobs[i].id, id))
			return &blobs[i].m;
	return NULL;
}

static struct store_id blob_put(const struct mem *m)
{
	struct store_id id;
	struct blob *v;

	st_ref_memory_id(m->b, m->len, &id);
	if (blob_get(&id))
		return id;
	v = realloc(blobs, (nblobs + 1) * sizeof(*v));
	if (!v)
		abort();
	blobs = v;
	blobs[nblobs].id = id;
	blobs[nblobs].m.len = m->len;
	blobs[nblobs].m.b = malloc(m->len);
	if (!blobs[nblobs].m.b)
		abort();
	memcpy(blobs[nblobs].m.b, m->b, m->len);
	nblobs++;
	return id;
}

struct module {
	struct store_id id;
	size_t size0; /* deployed size */
	int has;      /* current state: has a commit */
	struct store_id cur;
};

/* A commit of the model: module commit per module, has flag. */
struct mcommit {
	struct store_id id;
	int has[MAXMODS];
	struct store_id mc[MAXMODS];
	int persisted;
};

struct session {
	int open;
	struct store_id id;
	struct mem view[MAXMODS]; /* len 0: not materialised yet */
	int base_has[MAXMODS];
	struct store_id base_mc[MAXMODS];
	int has_base;
	struct store_id base;
};

static struct model {
	char *dir;
	struct store *s;
	struct module mod[MAXMODS];
	int nmod;
	struct mcommit *commits;
	size_t ncommits;
	struct session sess[MAXSESS];
} M;

static struct mcommit *commit_find(const struct store_id *id)
{
	size_t i;

	for (i = 0; i < M.ncommits; i++)
		if (store_id_equal(&M.commits[i].id, id))
			return &M.commits[i];
	return NULL;
}

static void zeros(struct mem *m, size_t len)
{
	free(m->b);
	m->b = calloc(1, len);
	if (!m->b)
		abort();
	m->len = len;
}

/* The session's view of module i, materialised from its base. */
static struct mem *view(struct session *se, int i)
{
	struct mem *v = &se->view[i];

	if (v->len)
		return v;
	if (se->base_has[i]) {
		const struct mem *b = blob_get(&se->base_mc[i]);

		zeros(v, b->len);
		memcpy(v->b, b->b, b->len);
	} else {
		zeros(v, M.mod[i].size0);
	}
	return v;
}

static void root_of_model(struct store_id *out)
{
	struct store_pair p[MAXMODS];
	size_t n = 0;
	int i;

	for (i = 0; i < M.nmod; i++)
		if (M.mod[i].has) {
			p[n].module = M.mod[i].id;
			p[n].commit = M.mod[i].cur;
			n++;
		}
	st_ref_state_id(p, n, out);
}

static void verify(int step)
{
	struct store_id root, want;
	char name[STORE_HEX_LEN + 1];
	int i;

	root_of_model(&want);
	if (store_commits_count(M.s) != M.ncommits)
		st_fail(__FILE__, __LINE__, "step %d: %zu commits, model %zu",
			step, store_commits_count(M.s), M.ncommits);
	if (ST_CHECK_STORE(M.s, M.dir, &root))
		fprintf(stderr, "    (model step %d)\n", step);
	if (!store_id_equal(&root, &want))
		st_fail(__FILE__, __LINE__, "step %d: root is not the model's",
			step);
	for (i = 0; i < M.nmod; i++) {
		struct store_module_info info;
		unsigned char *b = NULL;
		size_t len = 0;
		const struct mem *m =
		    M.mod[i].has ? blob_get(&M.mod[i].cur) : NULL;

		if (store_module_get(M.s, &M.mod[i].id, &info) != STORE_OK) {
			st_fail(__FILE__, __LINE__, "step %d: module %d gone",
				step, i);
			continue;
		}
		if (!info.has_commit != !M.mod[i].has ||
		    (M.mod[i].has &&
		     !store_id_equal(&info.last_commit, &M.mod[i].cur)) ||
		    info.size != (m ? m->len : M.mod[i].size0)) {
			st_fail(__FILE__, __LINE__,
				"step %d: module %d: store has %d/%llu, model "
				"%d/%zu",
				step, i, info.has_commit,
				(unsigned long long)info.size, M.mod[i].has,
				m ? m->len : M.mod[i].size0);
			continue;
		}
		st_hex(&M.mod[i].id, name);
		if (st_read(M.dir, name, &b, &len) ||
		    len != (m ? m->len : M.mod[i].size0) ||
		    (m && memcmp(b, m->b, len)))
			st_fail(__FILE__, __LINE__,
				"step %d: module %d: file is not the model's",
				step, i);
		else
			st_pass();
		free(b);
	}
}

static void op_deploy(void)
{
	char code[32];
	int i = M.nmod;
	struct store_module_info info;
	int created = -1;
	enum store_err err;

	if (M.nmod == MAXMODS)
		return;
	snprintf(code, sizeof(code), "model module %d", i);
	M.mod[i].size0 = (1 + rnd(4)) * STORE_PAGE_SIZE;
	err = store_deploy(M.s, code, strlen(code), M.mod[i].size0, &info,
			   &created);
	CHECK_ERR(err, STORE_OK);
	if (err)
		return;
	CHECK(created == 1);
	M.mod[i].id = info.id;
	M.mod[i].has = 0;
	M.nmod++;
}

static void op_begin(void)
{
	struct store_session_info si;
	struct session *se = NULL;
	struct mcommit *base = NULL;
	enum store_err err;
	int i;

	for (i = 0; i < MAXSESS; i++)
		if (!M.sess[i].open)
			se = &M.sess[i];
	if (!se)
		return;
	/* on an older commit the store still knows, sometimes */
	if (M.ncommits && rnd(3) == 0) {
		base = &M.commits[rnd((unsigned int)M.ncommits)];
		err = store_session_begin(M.s, &base->id, &si);
	} else {
		err = store_session_begin(M.s, NULL, &si);
	}
	CHECK_ERR(err, STORE_OK);
	if (err)
		return;
	memset(se, 0, sizeof(*se));
	se->open = 1;
	se->id = si.id;
	se->has_base = si.has_base;
	se->base = si.base;
	for (i = 0; i < MAXMODS; i++) {
		if (base) {
			se->base_has[i] = base->has[i];
			se->base_mc[i] = base->mc[i];
		} else {
			se->base_has[i] = M.mod[i].has;
			se->base_mc[i] = M.mod[i].cur;
		}
	}
	if (base) {
		CHECK(si.has_base);
		CHECK_ID(&si.base, &base->id);
	}
}

static struct session *any_session(void)
{
	int i, k = (int)rnd(MAXSESS);

	for (i = 0; i < MAXSESS; i++)
		if (M.sess[(k + i) % MAXSESS].open)
			return &M.sess[(k + i) % MAXSESS];
	return NULL;
}

static void session_end(struct session *se)
{
	int i;

	for (i = 0; i < MAXMODS; i++) {
		free(se->view[i].b);
		se->view[i].b = NULL;
		se->view[i].len = 0;
	}
	se->open = 0;
}

static void op_write(void)
{
	struct session *se = any_session();
	unsigned char buf[9000];
	struct mem *v;
	uint64_t off, end, size = 0;
	size_t len, j;
	enum store_err err;
	int i;

	if (!se || !M.nmod)
		return;
	i = (int)rnd((unsigned int)M.nmod);
	v = view(se, i);
	len = 1 + rnd(rnd(2) ? 64 : sizeof(buf));
	off = rnd((unsigned int)v->len + 3 * STORE_PAGE_SIZE);
	if (rnd(4) == 0 && off >= STORE_PAGE_SIZE) /* across a boundary */
		off = (off / STORE_PAGE_SIZE) * STORE_PAGE_SIZE - (off % 7);
	for (j = 0; j < len; j++)
		buf[j] = (unsigned char)rnd(256);
	if (rnd(5) == 0) /* sometimes the same bytes, or zeros */
		memset(buf, 0, len);
	err = store_session_write(M.s, &se->id, &M.mod[i].id, off, buf, len);
	end = off + len;
	if (end > MAXBYTES) {
		CHECK_ERR(err, STORE_ETOOBIG);
		return;
	}
	CHECK_ERR(err, STORE_OK);
	if (end > v->len) {
		size_t grown = (size_t)((end + STORE_PAGE_SIZE - 1) /
					STORE_PAGE_SIZE * STORE_PAGE_SIZE);
		unsigned char *nb = calloc(1, grown);

		if (!nb)
			abort();
		memcpy(nb, v->b, v->len);
		free(v->b);
		v->b = nb;
		v->len = grown;
	}
	memcpy(v->b + off, buf, len);
	CHECK_ERR(store_session_size(M.s, &se->id, &M.mod[i].id, &size),
		  STORE_OK);
	CHECK(size == v->len);
}

static void op_read(void)
{
	struct session *se = any_session();
	unsigned char *b;
	struct mem *v;
	size_t len;
	int i;

	if (!se || !M.nmod)
		return;
	i = (int)rnd((unsigned int)M.nmod);
	v = view(se, i);
	b = st_session_mem(M.s, &se->id, &M.mod[i].id, &len);
	if (!b || len != v->len || memcmp(b, v->b, len))
		st_fail(__FILE__, __LINE__,
			"session view of module %d is "
			"not the model's",
			i);
	else
		st_pass();
	free(b);
}

static void op_commit(void)
{
	struct session *se = any_session();
	struct store_commit_info ci;
	struct mcommit c;
	struct store_pair p[MAXMODS];
	struct store_id root;
	enum store_err err;
	size_t k;
	int i, with_match = (int)rnd(2);

	if (!se)
		return;
	memset(&ci, 0, sizeof(ci));
	memset(&c, 0, sizeof(c));
	for (i = 0; i < M.nmod; i++) {
		c.has[i] = 1;
		c.mc[i] = blob_put(view(se, i));
		p[i].module = M.mod[i].id;
		p[i].commit = c.mc[i];
	}
	st_ref_state_id(p, (size_t)M.nmod, &c.id);
	root_of_model(&root);
	err =
	    store_session_commit(M.s, &se->id, with_match ? &root : NULL, &ci);
	CHECK_ERR(err, STORE_OK);
	session_end(se);
	if (err)
		return;
	CHECK_ID(&ci.id, &c.id);
	CHECK(!!ci.has_base == !!se->has_base);
	CHECK(ci.n == (size_t)M.nmod);
	for (k = 0; k < ci.n; k++)
		for (i = 0; i < M.nmod; i++)
			if (store_id_equal(&ci.pairs[k].module, &M.mod[i].id))
				CHECK_ID(&ci.pairs[k].commit, &c.mc[i]);
	store_commit_info_release(&ci);
	for (i = 0; i < M.nmod; i++) {
		M.mod[i].has = 1;
		M.mod[i].cur = c.mc[i];
	}
	if (!commit_find(&c.id)) {
		struct mcommit *v =
		    realloc(M.commits, (M.ncommits + 1) * sizeof(*v));

		if (!v)
			abort();
		M.commits = v;
		M.commits[M.ncommits++] = c;
	}
}

static void op_restore(void)
{
	struct mcommit *c;
	int i;

	if (!M.ncommits)
		return;
	c = &M.commits[rnd((unsigned int)M.ncommits)];
	CHECK_ERR(store_restore(M.s, &c->id), STORE_OK);
	for (i = 0; i < M.nmod; i++) {
		M.mod[i].has = c->has[i];
		M.mod[i].cur = c->mc[i];
	}
}

static void op_drop(void)
{
	struct session *se = any_session();

	if (!se)
		return;
	CHECK_ERR(store_session_drop(M.s, &se->id), STORE_OK);
	session_end(se);
}

static enum store_err open_store(void)
{
	struct store_options o;

	memset(&o, 0, sizeof(o));
	o.dir = M.dir;
	o.max_module_size = MAXBYTES;
	return store_open(&M.s, &o);
}

static void op_reopen(void)
{
	size_t i, k = 0;
	int persist = (int)rnd(2);

	if (persist) {
		CHECK_ERR(store_persist(M.s), STORE_OK);
		for (i = 0; i < M.ncommits; i++)
			M.commits[i].persisted = 1;
	}
	store_close(M.s);
	M.s = NULL;
	for (i = 0; i < MAXSESS; i++)
		if (M.sess[i].open)
			session_end(&M.sess[i]);
	CHECK_ERR(open_store(), STORE_OK);
	if (!M.s)
		abort();
	/* only persisted commits are known now */
	for (i = 0; i < M.ncommits; i++)
		if (M.commits[i].persisted)
			M.commits[k++] = M.commits[i];
	M.ncommits = k;
	CHECK(store_commits_count(M.s) == M.ncommits);
}

int main(void)
{
	int step, i;

	if (getenv("MODEL_SEED"))
		rng = strtoull(getenv("MODEL_SEED"), NULL, 0) | 1;
	M.dir = t_tmpdir("model");
	if (!M.dir)
		return t_done();
	CHECK_ERR(open_store(), STORE_OK);
	if (!M.s)
		goto out;
	op_deploy();
	op_deploy();
	for (step = 0; step < STEPS; step++) {
		unsigned int r = rnd(100);

		if (r < 4)
			op_deploy();
		else if (r < 20)
			op_begin();
		else if (r < 55)
			op_write();
		else if (r < 65)
			op_read();
		else if (r < 82)
			op_commit();
		else if (r < 90)
			op_restore();
		else if (r < 95)
			op_drop();
		else if (r < 97)
			op_reopen();
		if (step % 10 == 0 || r >= 65)
			verify(step);
	}
	verify(STEPS);
	ST_CHECK_COMMITS(M.s, M.dir);
	printf("model: %d steps, %zu commits known, %zu distinct memories, "
	       "%d modules\n",
	       STEPS, M.ncommits, nblobs, M.nmod);
out:
	store_close(M.s);
	for (i = 0; i < MAXSESS; i++)
		session_end(&M.sess[i]);
	for (i = 0; i < (int)nblobs; i++)
		free(blobs[i].m.b);
	free(blobs);
	free(M.commits);
	t_rmrf(M.dir);
	free(M.dir);
	return t_done();
}
