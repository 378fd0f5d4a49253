/*
 * e2e_big.c - a 256 MiB module: upload into a session in one streamed PUT,
 * download the session's view, commit, download the module's memory and a
 * range of it; every byte is checked, the module commit id is recomputed
 * from the bytes received, and the daemon's peak resident memory (VmHWM)
 * must stay far below the body size.
 */
#include "e2e.h"
#include "store.h"
#include "storetest.h"

#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BIG    (256ULL * 1024 * 1024)
#define NPAGES (BIG / STORE_PAGE_SIZE)
#define SEED   77
/* the sessions' pages in memory (64 MiB at most), and 32 MiB beside */
#define RSS_LIMIT_KIB (96ULL * 1024)

static struct e2e_daemon d;

/* Checks a download against the pattern and hashes its page leaves. */
struct verify {
	uint64_t off;
	uint64_t base; /* offset of the first byte in the stream */
	uint64_t bad;  /* bytes that differ */
	unsigned char page[STORE_PAGE_SIZE];
	size_t fill;
	struct store_id *leaves; /* NULL: no hashing */
	size_t nleaves;
};

static int verify_chunk(void *ctx, const unsigned char *data, size_t len)
{
	struct verify *v = ctx;
	unsigned char want[65536];

	while (len) {
		size_t n = len < sizeof(want) ? len : sizeof(want), i;

		e2e_pattern(SEED, v->base + v->off, want, n);
		if (memcmp(want, data, n))
			for (i = 0; i < n; i++)
				v->bad += want[i] != data[i];
		if (v->leaves) {
			size_t k = 0;

			while (k < n) {
				size_t m = STORE_PAGE_SIZE - v->fill;

				if (m > n - k)
					m = n - k;
				memcpy(v->page + v->fill, data + k, m);
				v->fill += m;
				k += m;
				if (v->fill == STORE_PAGE_SIZE) {
					unsigned char pre = 0;
					crypto_generichash_state st;

					crypto_generichash_init(&st, NULL, 0,
								STORE_ID_BYTES);
					crypto_generichash_update(&st, &pre, 1);
					crypto_generichash_update(
					    &st, v->page, STORE_PAGE_SIZE);
					if (v->nleaves < NPAGES)
						crypto_generichash_final(
						    &st,
						    v->leaves[v->nleaves].b,
						    STORE_ID_BYTES);
					v->nleaves++;
					v->fill = 0;
				}
			}
		}
		v->off += n;
		data += n;
		len -= n;
	}
	return 0;
}

/* RFC 6962 tree hash over already hashed leaves (hashing.md). */
static void mth(const struct store_id *l, size_t n, struct store_id *out)
{
	struct store_id left, right;
	unsigned char buf[1 + 2 * STORE_ID_BYTES];
	size_t k = 1;

	if (n == 1) {
		*out = l[0];
		return;
	}
	while (k * 2 < n)
		k *= 2;
	mth(l, k, &left);
	mth(l + k, n - k, &right);
	buf[0] = 1;
	memcpy(buf + 1, left.b, STORE_ID_BYTES);
	memcpy(buf + 1 + STORE_ID_BYTES, right.b, STORE_ID_BYTES);
	crypto_generichash(out->b, STORE_ID_BYTES, buf, sizeof(buf), NULL, 0);
}

/* Samples VmRSS while a transfer runs. */
static atomic_int sampling;
static uint64_t rss_max;

static void *sampler(void *arg)
{
	(void)arg;
	while (atomic_load(&sampling)) {
		uint64_t v = e2e_proc_kib(d.pid, "VmRSS");

		if (v > rss_max)
			rss_max = v;
		usleep(20000); /* the sampling period, not a wait */
	}
	return NULL;
}

int main(void)
{
	static const char *const args[] = {"--max-body", "512M",
					   "--max-module-size", "512M", NULL};
	static const char *const last_page[] = {"Range: bytes=-4096", NULL};
	struct e2e_tmp tmp;
	struct e2e_resp r;
	struct verify v;
	struct store_id mc, got;
	pthread_t th;
	char mod[STORE_HEX_LEN + 1], sid[STORE_HEX_LEN + 1], path[300];
	uint64_t rss0, hwm, limit;

	if (sodium_init() < 0 || e2e_tmp_make(&tmp, "big") < 0)
		return 1;
	if (e2e_start(&d, tmp.state, tmp.log, args) < 0) {
		CHECK(!"daemon started");
		return t_done();
	}
	rss0 = e2e_proc_kib(d.pid, "VmRSS");
	atomic_store(&sampling, 1);
	pthread_create(&th, NULL, sampler, NULL);

	snprintf(path, sizeof(path), "/modules?size=%llu",
		 (unsigned long long)BIG);
	e2e_post(&d, path, "big module", &r);
	E2E_STATUS(&r, 201);
	snprintf(mod, sizeof(mod), "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);
	e2e_post(&d, "/sessions", NULL, &r);
	E2E_STATUS(&r, 201);
	snprintf(sid, sizeof(sid), "%s",
		 e2e_str(&r, "id") ? e2e_str(&r, "id") : "");
	e2e_resp_release(&r);

	/* Upload 256 MiB in one streamed PUT. */
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory?offset=0",
		 sid, mod);
	e2e_upload(&d, "PUT", path, SEED, BIG, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);

	/* Download the session's view, checking and hashing it. */
	memset(&v, 0, sizeof(v));
	v.leaves = calloc(NPAGES, sizeof(*v.leaves));
	CHECK(v.leaves != NULL);
	snprintf(path, sizeof(path), "/sessions/%s/modules/%s/memory", sid,
		 mod);
	e2e_download(&d, path, verify_chunk, &v, &r);
	E2E_STATUS(&r, 200);
	CHECK(v.off == BIG && v.bad == 0 && v.nleaves == NPAGES);
	e2e_resp_release(&r);
	if (v.leaves && v.nleaves == NPAGES)
		mth(v.leaves, NPAGES, &mc);
	else
		memset(&mc, 0, sizeof(mc));
	free(v.leaves);

	/* Commit: the module commit id is the one of the bytes received. */
	snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
	e2e_post(&d, path, NULL, &r);
	E2E_STATUS(&r, 201);
	{
		const char *h = json_string_value(
		    json_object_get(json_object_get(r.json, "modules"), mod));

		CHECK(h && store_id_parse(&got, h, 64) == STORE_OK &&
		      store_id_equal(&got, &mc));
	}
	e2e_resp_release(&r);

	/* The module's memory, served from its file. */
	memset(&v, 0, sizeof(v));
	snprintf(path, sizeof(path), "/modules/%s/memory", mod);
	e2e_download(&d, path, verify_chunk, &v, &r);
	E2E_STATUS(&r, 200);
	CHECK(v.off == BIG && v.bad == 0);
	e2e_resp_release(&r);

	memset(&v, 0, sizeof(v));
	v.base = BIG - 4096;
	e2e_request(&d, "GET", path, NULL, 0, last_page, &r);
	E2E_STATUS(&r, 206);
	CHECK(r.len == 4096);
	if (r.len == 4096)
		verify_chunk(&v, (const unsigned char *)r.body, r.len);
	CHECK(v.bad == 0);
	e2e_resp_release(&r);

	atomic_store(&sampling, 0);
	pthread_join(th, NULL);
	hwm = e2e_proc_kib(d.pid, "VmHWM");
	printf("modstored resident memory: %llu KiB at start, %llu KiB "
	       "sampled peak, VmHWM %llu KiB, for a %llu MiB body\n",
	       (unsigned long long)rss0, (unsigned long long)rss_max,
	       (unsigned long long)hwm, (unsigned long long)(BIG >> 20));
	limit = RSS_LIMIT_KIB;
	if (e2e_sanitized(d.pid)) {
		/* Shadow memory: only require half the body. */
		limit = BIG / 2 / 1024;
		printf("sanitizer runtime in the daemon: limit %llu KiB\n",
		       (unsigned long long)limit);
	}
	CHECK(hwm > 0 && hwm < limit);
	CHECK(rss_max < limit);

	CHECK(e2e_stop(&d, SIGTERM) == 0);
	e2e_tmp_done(&tmp);
	return t_done();
}
