/*
 * unit_commits.c - the commits store in memory (store/commits.c) against a
 * plain model: every commit's full list of pairs kept apart.
 *
 * - random histories (small changes on the last commit, on an older one,
 *   modules added and gone, whole new states, duplicates, deletes of any
 *   commit): every live commit reads back its pairs, by copy, by member
 *   and by cursor in order; a pair is held exactly while a live commit
 *   holds it;
 * - delta chains stay within COMMITS_MAX_DEPTH;
 * - what it costs: 10,000 commits over 1,000 modules, 10 changed each,
 *   hold at most 16 MiB (a copy per commit would be 610 MiB); keeping only
 *   the newest 10 of 5,000 such commits, the slots stay near what 10
 *   commits need.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commits.h"
#include "store.h"
#include "t.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void rnd_id(struct store_id *id)
{
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(id->b); i += 8) {
		v = rnd();
		memcpy(id->b + i, &v, 8);
	}
}

static int pair_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct store_pair *)a)->module,
		      &((const struct store_pair *)b)->module,
		      sizeof(struct store_id));
}

/* --- the model --------------------------------------------------------- */

#define NMOD 40
#define NOPS 3000

struct mcommit {
	struct store_id id;
	struct store_pair *pairs;
	size_t n;
	int live;
};

static struct store_id mods[NMOD];
static struct store_id mcs[NMOD][4]; /* each module has 4 possible values */
static struct mcommit model[NOPS];
static size_t nmodel;

/* A state: per module, -1 (absent) or which of its 4 values. */
static void pairs_of(const int *st, struct store_pair *out, size_t *n)
{
	size_t i, k = 0;

	for (i = 0; i < NMOD; i++)
		if (st[i] >= 0) {
			out[k].module = mods[i];
			out[k].commit = mcs[i][st[i]];
			k++;
		}
	qsort(out, k, sizeof(*out), pair_cmp);
	*n = k;
}

static int live_holds(const struct store_pair *p)
{
	size_t i, k;

	for (i = 0; i < nmodel; i++)
		for (k = 0; model[i].live && k < model[i].n; k++)
			if (!memcmp(&model[i].pairs[k], p, sizeof(*p)))
				return 1;
	return 0;
}

static int same_pairs(const struct store_pair *a, size_t na,
		      const struct store_pair *b, size_t nb)
{
	return na == nb && (!na || !memcmp(a, b, na * sizeof(*a)));
}

/* Everything the store says agrees with the model. */
static void check_all(struct commits *cs)
{
	struct commits_cursor cur = {0};
	const struct store_pair *cp;
	struct store_pair *p, q;
	struct store_id mc;
	size_t i, k, n, cn, live = 0, bad = 0, order = 0;
	enum store_err err;

	for (i = 0; i < nmodel; i++) {
		if (!model[i].live) {
			bad += commits_find(cs, &model[i].id) != NULL;
			continue;
		}
		live++;
		err = commits_get_pairs(cs, &model[i].id, &p, &n);
		bad += err || !same_pairs(p, n, model[i].pairs, model[i].n);
		free(p);
		k = rnd() % NMOD;
		q.module = mods[k];
		err = commits_member(cs, &model[i].id, &mods[k], &mc);
		for (n = 0; n < model[i].n; n++)
			if (store_id_equal(&model[i].pairs[n].module,
					   &q.module))
				break;
		if (n == model[i].n)
			bad += err != STORE_ENOMODULE;
		else
			bad += err ||
			       !store_id_equal(&mc, &model[i].pairs[n].commit);
	}
	CHECK(bad == 0);
	CHECK(cs->n == live);
	/* the cursor in insertion order, which is the model's */
	for (i = 0, k = 0; i < nmodel; i++) {
		if (!model[i].live)
			continue;
		order +=
		    k >= cs->n || !store_id_equal(&cs->v[k]->id, &model[i].id);
		if (k < cs->n &&
		    !commits_cursor_pairs(cs, &cur, cs->v[k], &cp, &cn))
			order +=
			    !same_pairs(cp, cn, model[i].pairs, model[i].n);
		k++;
	}
	commits_cursor_release(cs, &cur);
	CHECK(order == 0);
	/* held exactly while a live commit holds it */
	for (i = 0, bad = 0; i < NMOD; i++)
		for (k = 0; k < 4; k++) {
			q.module = mods[i];
			q.commit = mcs[i][k];
			bad += commits_holds(cs, &q) != live_holds(&q);
		}
	CHECK(bad == 0);
	for (i = 0, bad = 0; i < cs->n; i++)
		bad += cs->v[i]->depth > COMMITS_MAX_DEPTH;
	CHECK(bad == 0);
}

static void add_state(struct commits *cs, const int *st)
{
	struct store_pair pairs[NMOD];
	struct mcommit *m = &model[nmodel];
	size_t n;

	pairs_of(st, pairs, &n);
	rnd_id(&m->id);
	m->pairs = malloc((n ? n : 1) * sizeof(*pairs));
	memcpy(m->pairs, pairs, n * sizeof(*pairs));
	m->n = n;
	m->live = 1;
	CHECK_ERR(commits_add(cs, &m->id, pairs, n, 0), STORE_OK);
	nmodel++;
}

static void test_model(void)
{
	struct commits cs = {0};
	struct store_pair *p;
	int st[NMOD], back[NMOD];
	size_t i, k, n, victim;
	unsigned op;

	for (i = 0; i < NMOD; i++) {
		rnd_id(&mods[i]);
		for (k = 0; k < 4; k++)
			rnd_id(&mcs[i][k]);
		st[i] = i % 3 ? 0 : -1;
	}
	memcpy(back, st, sizeof(st));
	for (i = 0; i < NOPS - 1; i++) {
		op = (unsigned)(rnd() % 100);
		if (op < 60) { /* a few modules change */
			for (k = rnd() % 3; k-- > 0;)
				st[rnd() % NMOD] = (int)(rnd() % 4);
		} else if (op < 65) { /* modules go, others come */
			st[rnd() % NMOD] = -1;
			st[rnd() % NMOD] = (int)(rnd() % 4);
		} else if (op < 70) { /* a new state altogether */
			for (k = 0; k < NMOD; k++)
				st[k] = (int)(rnd() % 5) - 1;
		} else if (op < 75) { /* back to an older state */
			memcpy(st, back, sizeof(st));
		} else if (op < 78) { /* the same id again: no change */
			victim = rnd() % (nmodel ? nmodel : 1);
			if (nmodel && model[victim].live)
				CHECK_ERR(commits_add(&cs, &model[victim].id,
						      model[victim].pairs,
						      model[victim].n, 0),
					  STORE_OK);
			continue;
		} else if (op < 98 && nmodel) { /* a delete */
			victim = rnd() % nmodel;
			if (!model[victim].live)
				continue;
			CHECK_ERR(
			    commits_remove(&cs, &model[victim].id, &p, &n),
			    STORE_OK);
			CHECK(same_pairs(p, n, model[victim].pairs,
					 model[victim].n));
			free(p);
			model[victim].live = 0;
			CHECK_ERR(
			    commits_remove(&cs, &model[victim].id, &p, &n),
			    STORE_ENOCOMMIT);
			continue;
		}
		if (rnd() % 10 == 0)
			memcpy(back, st, sizeof(st));
		add_state(&cs, st);
		if (i % 100 == 0)
			check_all(&cs);
	}
	check_all(&cs);
	commits_release(&cs);
	for (i = 0; i < nmodel; i++)
		free(model[i].pairs);
}

/* --- what it costs ------------------------------------------------------ */

#define BIG_MODS 1000

static void big_history(size_t commits, size_t keep, uint64_t limit,
			size_t *slots)
{
	struct commits cs = {0};
	struct store_pair *pairs = malloc(BIG_MODS * sizeof(*pairs)), *p;
	struct store_id id, old;
	size_t i, k, n;
	int ok = 1;

	for (i = 0; i < BIG_MODS; i++) {
		rnd_id(&pairs[i].module);
		rnd_id(&pairs[i].commit);
	}
	qsort(pairs, BIG_MODS, sizeof(*pairs), pair_cmp);
	for (i = 0; i < commits && ok; i++) {
		for (k = 0; k < 10; k++)
			rnd_id(&pairs[rnd() % BIG_MODS].commit);
		rnd_id(&id);
		ok = commits_add(&cs, &id, pairs, BIG_MODS, 0) == STORE_OK;
		if (keep && cs.n > keep) {
			old = cs.v[0]->id;
			ok =
			    ok && commits_remove(&cs, &old, &p, &n) == STORE_OK;
			free(p);
		}
	}
	CHECK(ok);
	fprintf(stderr, "%zu commits (keep %zu): %.1f MiB, %zu slots\n",
		commits, keep, (double)commits_memory(&cs) / (1 << 20),
		cs.p.used - cs.p.nfree);
	CHECK(commits_memory(&cs) <= limit);
	*slots = cs.p.used - cs.p.nfree;
	/* the last commit reads back whole */
	ok = commits_get_pairs(&cs, &id, &p, &n) == STORE_OK &&
	     same_pairs(p, n, pairs, BIG_MODS);
	CHECK(ok);
	free(p);
	commits_release(&cs);
	free(pairs);
}

static void test_cost(void)
{
	size_t slots = 0;

	big_history(10000, 0, 16u << 20, &slots);
	CHECK(slots <= BIG_MODS + 10 * 10000);
	/* with retention the slots go back: what the chains still need */
	big_history(5000, 10, 4u << 20, &slots);
	CHECK(slots <= BIG_MODS + 10 * (10 + 2 * COMMITS_MAX_DEPTH));
}

int main(void)
{
	test_model();
	test_cost();
	return t_done();
}
