/*
 * e2e_metrics.c - GET /metrics: parsed line by line as the Prometheus text
 * format 0.0.4 (HELP and TYPE before the samples of each family, label
 * syntax, histograms cumulative with +Inf equal to _count), and its figures
 * checked against what the test did: requests by route pattern and status,
 * commits, modules, sessions, bytes. The token guards it like any route.
 */
#include "e2e.h"

#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SAMPLES  512
#define MAX_FAMILIES 64

struct sample {
	char name[128];
	char labels[256]; /* what is between the braces, or "" */
	double value;
};

struct family {
	char name[128];
	char type[16];
	int has_help;
};

struct metrics {
	struct sample s[MAX_SAMPLES];
	size_t n;
	struct family f[MAX_FAMILIES];
	size_t nf;
	int errors;
};

static struct family *family_find(struct metrics *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nf; i++)
		if (strcmp(m->f[i].name, name) == 0)
			return &m->f[i];
	return NULL;
}

static struct family *family_add(struct metrics *m, const char *name)
{
	struct family *f = family_find(m, name);

	if (f || m->nf == MAX_FAMILIES)
		return f;
	f = &m->f[m->nf++];
	snprintf(f->name, sizeof(f->name), "%s", name);
	return f;
}

static int valid_name(const char *s, size_t n)
{
	size_t i;

	if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return 0;
	for (i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' ||
		      s[i] == ':'))
			return 0;
	return 1;
}

/* name="value",... with escaped values; 1 when well-formed. */
static int valid_labels(const char *s)
{
	while (*s) {
		const char *eq = strchr(s, '=');

		if (!eq || !valid_name(s, (size_t)(eq - s)) || eq[1] != '"')
			return 0;
		s = eq + 2;
		while (*s && *s != '"') {
			if (*s == '\\' && s[1])
				s++;
			s++;
		}
		if (*s != '"')
			return 0;
		s++;
		if (*s == ',')
			s++;
		else if (*s)
			return 0;
	}
	return 1;
}

/* The family a sample belongs to: histogram suffixes stripped. */
static struct family *family_of(struct metrics *m, const char *name)
{
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	struct family *f = family_find(m, name);
	char base[128];
	size_t i, n = strlen(name), k;

	for (i = 0; !f && i < 3; i++) {
		k = strlen(sfx[i]);
		if (n > k && strcmp(name + n - k, sfx[i]) == 0) {
			snprintf(base, sizeof(base), "%.*s", (int)(n - k),
				 name);
			f = family_find(m, base);
			if (f && strcmp(f->type, "histogram") != 0)
				f = NULL;
		}
	}
	return f;
}

static void parse_line(struct metrics *m, char *line)
{
	char name[128], *p, *brace, *end;
	struct family *f;
	struct sample *s;

	if (!*line)
		return;
	if (line[0] == '#') {
		char kind[8];
		int off = 0;

		if (sscanf(line, "# %7s %127s %n", kind, name, &off) < 2)
			return; /* a plain comment */
		f = family_add(m, name);
		if (!f) {
			m->errors++;
			return;
		}
		if (strcmp(kind, "HELP") == 0) {
			f->has_help = 1;
		} else if (strcmp(kind, "TYPE") == 0) {
			snprintf(f->type, sizeof(f->type), "%s", line + off);
			if (strcmp(f->type, "counter") &&
			    strcmp(f->type, "gauge") &&
			    strcmp(f->type, "histogram") &&
			    strcmp(f->type, "summary") &&
			    strcmp(f->type, "untyped")) {
				fprintf(stderr, "bad TYPE: %s\n", line);
				m->errors++;
			}
		}
		return;
	}
	if (m->n == MAX_SAMPLES) {
		m->errors++;
		return;
	}
	s = &m->s[m->n];
	p = line + strcspn(line, "{ ");
	if (!valid_name(line, (size_t)(p - line)) ||
	    (size_t)(p - line) >= sizeof(s->name)) {
		fprintf(stderr, "bad metric name: %s\n", line);
		m->errors++;
		return;
	}
	snprintf(s->name, sizeof(s->name), "%.*s", (int)(p - line), line);
	s->labels[0] = '\0';
	if (*p == '{') {
		brace = strrchr(p, '}');
		if (!brace || (size_t)(brace - p - 1) >= sizeof(s->labels)) {
			m->errors++;
			return;
		}
		snprintf(s->labels, sizeof(s->labels), "%.*s",
			 (int)(brace - p - 1), p + 1);
		if (!valid_labels(s->labels)) {
			fprintf(stderr, "bad labels: %s\n", line);
			m->errors++;
			return;
		}
		p = brace + 1;
	}
	if (*p != ' ') {
		m->errors++;
		return;
	}
	s->value = strtod(p + 1, &end);
	if (end == p + 1 || (*end && *end != ' ')) {
		fprintf(stderr, "bad value: %s\n", line);
		m->errors++;
		return;
	}
	f = family_of(m, s->name);
	if (!f || !f->has_help || !*f->type) {
		fprintf(stderr, "sample without HELP and TYPE: %s\n", line);
		m->errors++;
		return;
	}
	m->n++;
}

static void parse(struct metrics *m, char *text)
{
	char *line = text, *nl;

	memset(m, 0, sizeof(*m));
	while (*line) {
		nl = strchr(line, '\n');
		if (!nl) {
			m->errors++; /* the last line ends with a newline */
			break;
		}
		*nl = '\0';
		parse_line(m, line);
		line = nl + 1;
	}
}

/* The value of name{labels}; NAN when absent. */
static double value(const struct metrics *m, const char *name,
		    const char *labels)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->s[i].name, name) == 0 &&
		    strcmp(m->s[i].labels, labels) == 0)
			return m->s[i].value;
	return NAN;
}

/* Buckets nondecreasing, le ascending, +Inf last and equal to _count. */
static void check_histogram(const struct metrics *m, const char *name)
{
	char bucket[160], count[160], sum[160];
	double prev_le = -1, prev = -1, inf = NAN;
	size_t i, nb = 0;

	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(count, sizeof(count), "%s_count", name);
	snprintf(sum, sizeof(sum), "%s_sum", name);
	for (i = 0; i < m->n; i++) {
		const struct sample *s = &m->s[i];
		double le;

		if (strcmp(s->name, bucket) != 0)
			continue;
		nb++;
		CHECK(strncmp(s->labels, "le=\"", 4) == 0);
		CHECK(s->value >= prev);
		prev = s->value;
		if (strcmp(s->labels, "le=\"+Inf\"") == 0) {
			inf = s->value;
			continue;
		}
		CHECK(isnan(inf)); /* +Inf comes last */
		le = strtod(s->labels + 4, NULL);
		CHECK(le > prev_le);
		prev_le = le;
	}
	CHECK(nb >= 2);
	CHECK(!isnan(inf) && inf == value(m, count, ""));
	CHECK(value(m, sum, "") >= 0);
}

static int fetch(struct e2e_daemon *d, struct metrics *m)
{
	struct e2e_resp r = {0};
	char ct[128];
	int ok;

	e2e_get(d, "/metrics", &r);
	ok = r.status == 200;
	E2E_STATUS(&r, 200);
	CHECK(e2e_header(&r, "Content-Type", ct, sizeof(ct)) &&
	      strncmp(ct, "text/plain; version=0.0.4", 25) == 0);
	if (r.body)
		parse(m, r.body);
	else
		m->errors = 1;
	CHECK(m->errors == 0);
	e2e_resp_release(&r);
	return ok ? 0 : -1;
}

/* The metrics fetched again until the 14 requests before are counted. */
struct counted_wait {
	struct e2e_daemon *d;
	struct metrics *m;
};

static int all_counted(void *ctx)
{
	struct counted_wait *w = ctx;

	/* a failed fetch is a failed check already: stop waiting */
	return fetch(w->d, w->m) < 0 ||
	       value(w->m, "modstore_http_request_duration_seconds_count",
		     "") >= 14;
}

int main(void)
{
	static struct metrics m;
	struct counted_wait mw;
	struct e2e_daemon d;
	struct e2e_tmp tmp;
	struct e2e_resp r = {0};
	char path[300], sid[80], mod[80];
	const char *tok_args[] = {"--token-file", NULL, NULL};
	char tokfile[600];
	int i;
	FILE *f;

	if (e2e_tmp_make(&tmp, "metrics") < 0) {
		CHECK(!"tmp");
		return t_done();
	}
	if (e2e_start(&d, tmp.state, tmp.log, NULL) < 0) {
		CHECK(!"daemon started");
		goto out;
	}
	/* a fresh daemon: families present, zero figures */
	if (fetch(&d, &m) == 0) {
		CHECK(value(&m, "modstore_modules", "") == 0);
		CHECK(value(&m, "modstore_commits", "") == 0);
		CHECK(value(&m, "modstore_sessions_open", "") == 0);
		CHECK(value(&m, "modstore_commit_duration_seconds_count", "") ==
		      0);
		CHECK(!strcmp(
		    family_find(&m, "modstore_http_requests_total")->type,
		    "counter"));
		CHECK(!strcmp(family_find(&m, "modstore_http_request_duration_"
					      "seconds")
				  ->type,
			      "histogram"));
	}

	/* two modules, two commits, one session left open, some errors */
	e2e_post(&d, "/modules", "metrics one", &r);
	E2E_STATUS(&r, 201);
	snprintf(mod, sizeof(mod), "%s", e2e_str(&r, "id"));
	e2e_resp_release(&r);
	e2e_post(&d, "/modules", "metrics two", &r);
	e2e_resp_release(&r);
	for (i = 0; i < 2; i++) {
		e2e_post(&d, "/sessions", NULL, &r);
		snprintf(sid, sizeof(sid), "%s", e2e_str(&r, "id"));
		e2e_resp_release(&r);
		snprintf(path, sizeof(path),
			 "/sessions/%s/modules/%s/memory?offset=%d", sid, mod,
			 i * 4096);
		e2e_request(&d, "PUT", path, "0123456789", 10, NULL, &r);
		E2E_STATUS(&r, 204);
		e2e_resp_release(&r);
		snprintf(path, sizeof(path), "/sessions/%s/commit", sid);
		e2e_post(&d, path, NULL, &r);
		E2E_STATUS(&r, 201);
		e2e_resp_release(&r);
	}
	e2e_post(&d, "/sessions", NULL, &r);
	e2e_resp_release(&r);
	e2e_post(&d, "/persist", NULL, &r);
	e2e_resp_release(&r);
	e2e_get(&d,
		"/modules/"
		"0000000000000000000000000000000000000000000000000000000000"
		"000000",
		&r);
	E2E_STATUS(&r, 404);
	e2e_resp_release(&r);
	e2e_get(&d, "/nowhere", &r);
	e2e_resp_release(&r);
	e2e_request(&d, "DELETE", "/root", NULL, 0, NULL, &r);
	E2E_STATUS(&r, 405);
	e2e_resp_release(&r);

	/*
	 * A request is counted when it completes, just after its answer
	 * has gone out: wait until the 14 requests above are all counted.
	 */
	mw.d = &d;
	mw.m = &m;
	CHECK(e2e_wait_until(all_counted, &mw, E2E_WAIT_MS));
	check_histogram(&m, "modstore_http_request_duration_seconds");
	check_histogram(&m, "modstore_commit_duration_seconds");
	CHECK(value(&m, "modstore_commit_duration_seconds_count", "") == 2);
	CHECK(value(&m, "modstore_modules", "") == 2);
	CHECK(value(&m, "modstore_commits", "") == 2);
	CHECK(value(&m, "modstore_sessions_open", "") == 1);
	CHECK(value(&m, "modstore_disk_bytes", "") > 0);
	CHECK(value(&m, "modstore_written_bytes_total", "") >= 8192);
	/* each commit made one module's file: a temporary, pooled or not */
	CHECK(value(&m, "modstore_temp_files_total", "how=\"pool\"") +
		  value(&m, "modstore_temp_files_total", "how=\"made\"") >=
	      2);
	CHECK(value(&m, "modstore_http_received_bytes_total", "") >= 20);
	/* route labels are the patterns, not the paths */
	CHECK(value(&m, "modstore_http_requests_total",
		    "method=\"POST\",route=\"/sessions/{sid}/commit\","
		    "status=\"201\"") == 2);
	CHECK(value(&m, "modstore_http_requests_total",
		    "method=\"PUT\",route=\"/sessions/{sid}/modules/"
		    "{mod}/memory\",status=\"204\"") == 2);
	CHECK(value(&m, "modstore_http_requests_total",
		    "method=\"POST\",route=\"/sessions\","
		    "status=\"201\"") == 3);
	CHECK(value(&m, "modstore_http_requests_total",
		    "method=\"GET\",route=\"/modules/{mod}\","
		    "status=\"404\"") == 1);
	CHECK(value(&m, "modstore_http_requests_total",
		    "method=\"\",route=\"unmatched\","
		    "status=\"404\"") == 1);
	CHECK(value(&m, "modstore_http_requests_total",
		    "method=\"\",route=\"unmatched\","
		    "status=\"405\"") == 1);
	/* the first /metrics itself was counted when it completed */
	CHECK(value(&m, "modstore_http_requests_total",
		    "method=\"GET\",route=\"/metrics\","
		    "status=\"200\"") >= 1);
	CHECK(value(&m, "modstore_http_request_duration_seconds_count", "") >=
	      14);
	for (i = 0; i < (int)m.n; i++)
		CHECK(strstr(m.s[i].labels, "route=\"/sessions/") == NULL ||
		      strstr(m.s[i].labels, "{sid}") != NULL);
	/* the open session wrote nothing; the two committed */
	CHECK(value(&m, "modstore_session_memory_bytes", "") == 0);
	/* 10 bytes across a page boundary: two pages held, until dropped */
	e2e_post(&d, "/sessions", NULL, &r);
	snprintf(sid, sizeof(sid), "%s", e2e_str(&r, "id"));
	e2e_resp_release(&r);
	snprintf(path, sizeof(path),
		 "/sessions/%s/modules/%s/memory?offset=4090", sid, mod);
	e2e_request(&d, "PUT", path, "0123456789", 10, NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	if (fetch(&d, &m) == 0)
		CHECK(value(&m, "modstore_session_memory_bytes", "") == 8192);
	snprintf(path, sizeof(path), "/sessions/%s", sid);
	e2e_request(&d, "DELETE", path, NULL, 0, NULL, &r);
	E2E_STATUS(&r, 204);
	e2e_resp_release(&r);
	if (fetch(&d, &m) == 0)
		CHECK(value(&m, "modstore_session_memory_bytes", "") == 0);
	CHECK(e2e_stop(&d, SIGTERM) == 0);

	/* with a token, /metrics needs it like every route but /health */
	snprintf(tokfile, sizeof(tokfile), "%s/token", tmp.root);
	f = fopen(tokfile, "w");
	CHECK(f && fputs("metrics-token\n", f) >= 0 && fclose(f) == 0);
	tok_args[1] = tokfile;
	if (e2e_start(&d, tmp.state, tmp.log, tok_args) < 0) {
		CHECK(!"daemon started with a token");
		goto out;
	}
	e2e_get(&d, "/metrics", &r);
	E2E_ERROR(&r, 401, "unauthorized");
	e2e_resp_release(&r);
	d.token = "metrics-token";
	if (fetch(&d, &m) == 0)
		CHECK(value(&m, "modstore_commits", "") == 2); /* persisted */
	CHECK(e2e_stop(&d, SIGTERM) == 0);
out:
	e2e_tmp_done(&tmp);
	return t_done();
}
