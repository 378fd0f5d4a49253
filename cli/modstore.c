/*
 * modstore.c - the command-line client of modstored, on libcurl.
 *
 * One subcommand per route of the contract, plus `verify COMMIT`, which
 * downloads the memory of every module of a commit, recomputes every module
 * commit id and the commit id here (store_memory_id, store_state_id: pure
 * functions of libstore, no state directory) and reports what matches.
 *
 * Server: --url, else $MODSTORE_URL, else http://127.0.0.1:8080. Token:
 * $MODSTORE_TOKEN, sent as Authorization: Bearer. HTTPS: --cacert,
 * --cert, --key (or $MODSTORE_CACERT, $MODSTORE_CERT, $MODSTORE_KEY).
 * Exit codes: see usage_text.
 */
#include "store.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLI_VERSION	 "0.1.0"
#define CLI_DEFAULT_URL	 "http://127.0.0.1:8080"
#define CLI_PROGRESS_MIN (1024.0 * 1024.0) /* bar for transfers above */

/* Exit codes (documented in usage_text and the README). */
enum cli_exit {
	CLI_OK = 0,
	CLI_MISMATCH = 1, /* verify: something does not match */
	CLI_USAGE = 2,	  /* bad command line */
	CLI_HTTP = 3,	  /* the server answered with an error status */
	CLI_CONNECT = 4,  /* no answer, or an answer that makes no sense */
	CLI_LOCAL = 5,	  /* a local file could not be read or written */
};

struct cli {
	char url[1024]; /* without a trailing slash */
	const char *token;
	const char *cacert, *cert, *key; /* HTTPS files, or NULL */
	int json;			 /* print the server's JSON as it is */
	int progress_ok;
};

/* A growable buffer of a response body. */
struct cli_buf {
	char *p;
	size_t len, cap;
};

/* One request: where its body comes from and where its answer goes. */
struct cli_xfer {
	struct cli *c;
	const char *method;
	char path[1024];
	const char *body; /* in-memory body, or NULL */
	size_t body_len;
	FILE *in;	    /* streamed body, or NULL */
	curl_off_t in_size; /* -1: unknown (chunked) */
	const char *content_type;
	const char *range;   /* "a-b" for a Range header, or NULL */
	const char *header;  /* one more "Name: value", or NULL */
	CURL *h;	     /* during xfer_run() */
	FILE *out;	     /* a 2xx body goes here when set */
	struct cli_buf resp; /* otherwise (and any error body) here */
	long status;
	int out_failed;
	int bar_drawn;
	double bar_last;
};

static const char *prog = "modstore";

static void errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void errmsg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* --- help ----------------------------------------------------------------- */

static const char usage_text[] =
    "usage: modstore [--url URL] [--json] COMMAND [ARGS]\n"
    "\n"
    "The client of modstored. Every command has --help.\n"
    "\n"
    "Commands:\n"
    "  deploy [--size N] [FILE|-]     deploy a module's bytecode\n"
    "  modules                        list the modules\n"
    "  session new [--base COMMIT]    open a session (prints its id)\n"
    "  session list                   list the open sessions\n"
    "  session drop SID               drop a session and its writes\n"
    "  read [SID] MOD [-O OFF] [-n LEN] [-o FILE]\n"
    "                                 read memory (a session's view with "
    "SID)\n"
    "  bytecode MOD [-o FILE]         download a module's bytecode\n"
    "  write SID MOD [-O OFF] [FILE|-] write bytes into a session\n"
    "  commit [--if-match ROOT] SID   commit a session (prints the commit "
    "id)\n"
    "  commits                        list the commits store\n"
    "  persist                        write the commits store to disk\n"
    "  restore COMMIT                 make COMMIT the current state\n"
    "  delete COMMIT                  forget COMMIT, remove unneeded files\n"
    "  gc                             remove every file nothing needs\n"
    "  root                           print the root of the current state\n"
    "  health                         check that the server answers\n"
    "  verify COMMIT                  download COMMIT's memory, recompute "
    "every id\n"
    "\n"
    "Options:\n"
    "  --url URL   the server (default $MODSTORE_URL, else " CLI_DEFAULT_URL
    ")\n"
    "  --json      print the server's JSON answer unchanged\n"
    "  --cacert FILE  CA certificates (PEM) that check an https:// server\n"
    "  --cert FILE    client certificate (PEM), for a server that asks\n"
    "  --key FILE     its private key (PEM)\n"
    "  --help      this text; COMMAND --help for a command's\n"
    "  --version   print the version\n"
    "\n"
    "Environment: MODSTORE_URL (the server), MODSTORE_TOKEN (sent as\n"
    "Authorization: Bearer when set), MODSTORE_CACERT, MODSTORE_CERT,\n"
    "MODSTORE_KEY (as the options). SIZE and OFFSET values take K, M, G\n"
    "(powers of 1024): --size 4K. Transfers over 1 MiB show a progress\n"
    "bar when standard error is a terminal.\n"
    "\n"
    "Exit status:\n"
    "  0  success (verify: everything matches)\n"
    "  1  verify found a mismatch (each one is printed)\n"
    "  2  usage error\n"
    "  3  the server answered with an error (its code and message are "
    "printed)\n"
    "  4  the server could not be reached or its answer made no sense\n"
    "  5  a local file could not be read or written\n";

struct cli_cmd {
	const char *name;
	int (*run)(struct cli *c, int argc, char **argv);
	const char *help;
};

static const struct cli_cmd *cmd_find(const char *name);

static int help_of(const char *name)
{
	const struct cli_cmd *cmd = cmd_find(name);

	if (!cmd) {
		errmsg("no command '%s' (modstore --help lists them)", name);
		return CLI_USAGE;
	}
	fputs(cmd->help, stdout);
	return CLI_OK;
}

/* --- ids ------------------------------------------------------------------ */

/* Parse an id argument into its uppercase hex; -1 with a message if bad. */
static int id_arg(const char *what, const char *s, char hex[STORE_HEX_LEN + 1])
{
	struct store_id id;

	if (store_id_parse(&id, s, strlen(s)) != STORE_OK) {
		errmsg("%s '%s' is not an id (64 hex digits)", what, s);
		return -1;
	}
	store_id_hex(&id, hex);
	return 0;
}

/* A number of bytes: "4096", "4K", "64M", "1G" (powers of 1024), "4KiB". */
static int u64_arg(const char *what, const char *s, uint64_t *out)
{
	unsigned long long v, mul = 1;
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		goto bad;
	v = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1ULL << 10;
			break;
		case 'm':
		case 'M':
			mul = 1ULL << 20;
			break;
		case 'g':
		case 'G':
			mul = 1ULL << 30;
			break;
		default:
			goto bad;
		}
		end++;
		if (*end && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0)
			goto bad;
	}
	if (v > UINT64_MAX / mul)
		goto bad;
	*out = v * mul;
	return 0;
bad:
	errmsg("%s '%s' is not a number of bytes (4096, 4K, 64M, 1G)", what, s);
	return -1;
}

/* --- transfers ------------------------------------------------------------ */

static size_t buf_add(struct cli_buf *b, const char *p, size_t n)
{
	char *q;
	size_t cap;

	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return 0;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static size_t on_write(char *p, size_t size, size_t n, void *ctx)
{
	struct cli_xfer *x = ctx;
	long status = 0;

	n *= size;
	/* the status is known once the body begins: only 2xx goes to out */
	if (x->out)
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	if (x->out && status >= 200 && status <= 299) {
		if (fwrite(p, 1, n, x->out) != n) {
			x->out_failed = 1;
			return 0;
		}
		return n;
	}
	return buf_add(&x->resp, p, n);
}

static size_t on_read(char *p, size_t size, size_t n, void *ctx)
{
	struct cli_xfer *x = ctx;
	size_t got = fread(p, 1, size * n, x->in);

	if (got == 0 && ferror(x->in))
		return CURL_READFUNC_ABORT;
	return got;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct cli_xfer *x = ctx;
	double total = (double)(ultotal > dltotal ? ultotal : dltotal);
	double done = (double)(ultotal > dltotal ? ulnow : dlnow);
	double t = now_s();
	char bar[41];
	int i, fill;

	if (total <= CLI_PROGRESS_MIN)
		return 0;
	if (x->bar_drawn && done < total && t - x->bar_last < 0.1)
		return 0;
	x->bar_last = t;
	fill = (int)(40.0 * done / total);
	for (i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : ' ';
	bar[40] = '\0';
	fprintf(stderr, "\r[%s] %3d%% %.1f/%.1f MiB", bar,
		(int)(100.0 * done / total), done / CLI_PROGRESS_MIN,
		total / CLI_PROGRESS_MIN);
	x->bar_drawn = 1;
	return 0;
}

/* The error body of a failed request, as "CODE: MESSAGE". */
static void print_http_error(const struct cli_xfer *x, const char *what)
{
	json_t *j =
	    x->resp.p ? json_loadb(x->resp.p, x->resp.len, 0, NULL) : NULL;
	const char *code =
	    j ? json_string_value(json_object_get(j, "error")) : NULL;
	const char *msg =
	    j ? json_string_value(json_object_get(j, "message")) : NULL;

	if (code)
		errmsg("%s: HTTP %ld %s: %s", what, x->status, code,
		       msg ? msg : "");
	else
		errmsg("%s: HTTP %ld", what, x->status);
	json_decref(j);
}

/*
 * Run x; what names it in messages. CLI_OK on a 2xx answer, otherwise the
 * exit code, with a message printed.
 */
static int xfer_run(struct cli_xfer *x, const char *what)
{
	struct curl_slist *hdrs = NULL, *t;
	char auth[1024], ctype[128], url[2048];
	CURL *h = NULL;
	CURLcode rc;
	int ret = CLI_CONNECT;

	x->status = 0;
	h = curl_easy_init();
	if (!h) {
		errmsg("%s: cannot start libcurl", what);
		goto out;
	}
	snprintf(url, sizeof(url), "%s%s", x->c->url, x->path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	if (x->c->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, x->c->cacert);
	if (x->c->cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, x->c->cert);
	if (x->c->key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, x->c->key);
	if (x->c->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			 x->c->token);
		t = curl_slist_append(hdrs, auth);
		if (!t)
			goto oom;
		hdrs = t;
	}
	t = curl_slist_append(hdrs, "Expect:");
	if (!t)
		goto oom;
	hdrs = t;
	if (x->content_type) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
			 x->content_type);
		t = curl_slist_append(hdrs, ctype);
		if (!t)
			goto oom;
		hdrs = t;
	}
	if (x->header) {
		t = curl_slist_append(hdrs, x->header);
		if (!t)
			goto oom;
		hdrs = t;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (x->in) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, x->in_size);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x->method);
	} else if (x->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)x->body_len);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x->method);
	} else if (strcmp(x->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x->method);
		if (strcmp(x->method, "POST") == 0) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)0);
		}
	}
	if (x->range)
		curl_easy_setopt(h, CURLOPT_RANGE, x->range);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (x->c->progress_ok) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	}
	x->h = h;
	rc = curl_easy_perform(h);
	x->h = NULL;
	if (x->bar_drawn)
		fputc('\n', stderr);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->out_failed) {
		errmsg("%s: writing the output: %s", what, strerror(errno));
		ret = CLI_LOCAL;
		goto out;
	}
	if (rc != CURLE_OK) {
		if (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_READ_ERROR)
			errmsg("%s: reading the input failed", what);
		else
			errmsg("%s: %s: %s", what, url, curl_easy_strerror(rc));
		ret = rc == CURLE_READ_ERROR ? CLI_LOCAL : CLI_CONNECT;
		goto out;
	}
	if (x->status < 200 || x->status > 299) {
		print_http_error(x, what);
		ret = CLI_HTTP;
		goto out;
	}
	ret = CLI_OK;
	goto out;
oom:
	errmsg("%s: out of memory", what);
out:
	curl_slist_free_all(hdrs);
	if (h)
		curl_easy_cleanup(h);
	return ret;
}

static void xfer_release(struct cli_xfer *x)
{
	free(x->resp.p);
	x->resp.p = NULL;
	x->resp.len = x->resp.cap = 0;
}

/* The JSON of a 2xx answer, or NULL with a message. */
static json_t *xfer_json(const struct cli_xfer *x, const char *what)
{
	json_error_t e;
	json_t *j = json_loadb(x->resp.p ? x->resp.p : "", x->resp.len, 0, &e);

	if (!j)
		errmsg("%s: the answer is not JSON: %s", what, e.text);
	return j;
}

/* A simple JSON request: print the raw answer with --json. */
static int json_call(struct cli *c, const char *method, const char *path,
		     const char *body, const char *what, json_t **out)
{
	struct cli_xfer x = {0};
	int ret;

	*out = NULL;
	x.c = c;
	x.method = method;
	snprintf(x.path, sizeof(x.path), "%s", path);
	if (body) {
		x.body = body;
		x.body_len = strlen(body);
		x.content_type = "application/json";
	}
	ret = xfer_run(&x, what);
	if (ret == CLI_OK && x.resp.len) {
		if (c->json)
			fwrite(x.resp.p, 1, x.resp.len, stdout);
		*out = xfer_json(&x, what);
		if (!*out)
			ret = CLI_CONNECT;
	}
	xfer_release(&x);
	return ret;
}

/* --- argument parsing ----------------------------------------------------- */

/*
 * getopt_long over a subcommand's arguments (argv[0] is the command).
 * Returns the option, -1 at the end, or '?' after a message.
 */
static int opt_next(int argc, char **argv, const char *shorts,
		    const struct option *longs)
{
	return getopt_long(argc, argv, shorts, longs, NULL);
}

static int usage_err(const char *cmd, const char *msg)
{
	if (msg)
		errmsg("%s: %s", cmd, msg);
	fprintf(stderr, "(modstore %s --help says how)\n", cmd);
	return CLI_USAGE;
}

#define HELP_OPT                                                               \
	{                                                                      \
		"help", no_argument, NULL, 'h'                                 \
	}

/* Commands with no options but --help: CLI_OK to go on, else the exit. */
static int no_options(const char *cmd, int argc, char **argv, int nargs,
		      int *done)
{
	static const struct option longs[] = {HELP_OPT, {0}};
	int o;

	*done = 0;
	while ((o = opt_next(argc, argv, "+h", longs)) != -1) {
		if (o == 'h') {
			*done = 1;
			return help_of(cmd);
		}
		return usage_err(cmd, NULL);
	}
	if (argc - optind != nargs) {
		*done = 1;
		return usage_err(cmd, nargs ? "wrong number of arguments"
					    : "this command takes no "
					      "arguments");
	}
	return CLI_OK;
}

/* --- commands ------------------------------------------------------------- */

static void print_module(json_t *m)
{
	json_t *lc = json_object_get(m, "last_commit");

	printf("%s %" JSON_INTEGER_FORMAT " %s\n",
	       json_string_value(json_object_get(m, "id")),
	       json_integer_value(json_object_get(m, "size")),
	       json_is_string(lc) ? json_string_value(lc) : "-");
}

/* Open FILE or - (stdin) as a body; its size or -1 when unknown. */
static int open_input(const char *cmd, const char *path, FILE **in,
		      curl_off_t *size)
{
	struct stat sb;

	*size = -1;
	if (!path || strcmp(path, "-") == 0) {
		*in = stdin;
	} else {
		*in = fopen(path, "rb");
		if (!*in) {
			errmsg("%s: %s: %s", cmd, path, strerror(errno));
			return CLI_LOCAL;
		}
	}
	if (fstat(fileno(*in), &sb) == 0 && S_ISREG(sb.st_mode))
		*size = (curl_off_t)(sb.st_size - ftello(*in));
	return CLI_OK;
}

static int cmd_deploy(struct cli *c, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"size", required_argument, NULL, 's'}, HELP_OPT, {0}};
	struct cli_xfer x = {0};
	uint64_t size = 0;
	int o, ret, has_size = 0;
	json_t *j = NULL;

	while ((o = opt_next(argc, argv, "+s:h", longs)) != -1) {
		switch (o) {
		case 's':
			if (u64_arg("--size", optarg, &size) < 0)
				return CLI_USAGE;
			has_size = 1;
			break;
		case 'h':
			return help_of("deploy");
		default:
			return usage_err("deploy", NULL);
		}
	}
	if (argc - optind > 1)
		return usage_err("deploy", "one FILE at most");
	x.c = c;
	x.method = "POST";
	if (has_size)
		snprintf(x.path, sizeof(x.path), "/modules?size=%llu",
			 (unsigned long long)size);
	else
		snprintf(x.path, sizeof(x.path), "/modules");
	x.content_type = "application/octet-stream";
	ret = open_input("deploy", argc > optind ? argv[optind] : NULL, &x.in,
			 &x.in_size);
	if (ret != CLI_OK)
		return ret;
	ret = xfer_run(&x, "deploy");
	if (ret != CLI_OK)
		goto out;
	if (c->json) {
		fwrite(x.resp.p, 1, x.resp.len, stdout);
		goto out;
	}
	j = xfer_json(&x, "deploy");
	if (!j) {
		ret = CLI_CONNECT;
		goto out;
	}
	printf("%s\n", json_string_value(json_object_get(j, "id")));
out:
	if (x.in && x.in != stdin)
		fclose(x.in);
	json_decref(j);
	xfer_release(&x);
	return ret;
}

static int cmd_modules(struct cli *c, int argc, char **argv)
{
	json_t *j = NULL, *m;
	size_t i;
	int done, ret = no_options("modules", argc, argv, 0, &done);

	if (done || ret)
		return ret;
	ret = json_call(c, "GET", "/modules", NULL, "modules", &j);
	if (ret == CLI_OK && !c->json)
		json_array_foreach(json_object_get(j, "modules"), i, m)
		    print_module(m);
	json_decref(j);
	return ret;
}

static int cmd_session(struct cli *c, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"base", required_argument, NULL, 'b'}, HELP_OPT, {0}};
	char hex[STORE_HEX_LEN + 1], path[128], body[128];
	const char *base = NULL, *sub;
	json_t *j = NULL, *s;
	size_t i;
	int o, ret;

	while ((o = opt_next(argc, argv, "+b:h", longs)) != -1) {
		switch (o) {
		case 'b':
			base = optarg;
			break;
		case 'h':
			return help_of("session");
		default:
			return usage_err("session", NULL);
		}
	}
	if (optind >= argc)
		return usage_err("session", "new, list or drop?");
	sub = argv[optind++];
	/* options may also follow the word: session new --base C */
	while ((o = opt_next(argc, argv, "+b:h", longs)) != -1) {
		switch (o) {
		case 'b':
			base = optarg;
			break;
		case 'h':
			return help_of("session");
		default:
			return usage_err("session", NULL);
		}
	}
	if (strcmp(sub, "new") == 0) {
		if (optind != argc)
			return usage_err("session", "new takes no argument");
		if (base) {
			if (id_arg("--base", base, hex) < 0)
				return CLI_USAGE;
			snprintf(body, sizeof(body), "{\"base\":\"%s\"}", hex);
		}
		ret = json_call(c, "POST", "/sessions", base ? body : NULL,
				"session new", &j);
		if (ret == CLI_OK && !c->json)
			printf("%s\n",
			       json_string_value(json_object_get(j, "id")));
	} else if (strcmp(sub, "list") == 0) {
		if (optind != argc || base)
			return usage_err("session", "list takes no argument");
		ret =
		    json_call(c, "GET", "/sessions", NULL, "session list", &j);
		if (ret == CLI_OK && !c->json)
			json_array_foreach(json_object_get(j, "sessions"), i, s)
			{
				json_t *b = json_object_get(s, "base");

				printf(
				    "%s %s\n",
				    json_string_value(json_object_get(s, "id")),
				    json_is_string(b) ? json_string_value(b)
						      : "-");
			}
	} else if (strcmp(sub, "drop") == 0) {
		if (optind + 1 != argc || base)
			return usage_err("session", "drop takes one SID");
		if (id_arg("SID", argv[optind], hex) < 0)
			return CLI_USAGE;
		snprintf(path, sizeof(path), "/sessions/%s", hex);
		ret = json_call(c, "DELETE", path, NULL, "session drop", &j);
	} else {
		return usage_err("session", "new, list or drop?");
	}
	json_decref(j);
	return ret;
}

static int cmd_read(struct cli *c, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"offset", required_argument, NULL, 'O'},
	    {"length", required_argument, NULL, 'n'},
	    {"output", required_argument, NULL, 'o'},
	    HELP_OPT,
	    {0}};
	char sid[STORE_HEX_LEN + 1], mod[STORE_HEX_LEN + 1], range[64];
	struct cli_xfer x = {0};
	uint64_t off = 0, len = 0;
	int o, ret, has_off = 0, has_len = 0, nargs;
	const char *output = NULL;

	while ((o = opt_next(argc, argv, "O:n:o:h", longs)) != -1) {
		switch (o) {
		case 'O':
			if (u64_arg("--offset", optarg, &off) < 0)
				return CLI_USAGE;
			has_off = 1;
			break;
		case 'n':
			if (u64_arg("--length", optarg, &len) < 0)
				return CLI_USAGE;
			has_len = 1;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			return help_of("read");
		default:
			return usage_err("read", NULL);
		}
	}
	nargs = argc - optind;
	if (nargs != 1 && nargs != 2)
		return usage_err("read", "MOD or SID MOD");
	if (nargs == 2 && id_arg("SID", argv[optind++], sid) < 0)
		return CLI_USAGE;
	if (id_arg("MOD", argv[optind], mod) < 0)
		return CLI_USAGE;
	if (has_len && len == 0)
		return usage_err("read", "--length must be positive");
	x.c = c;
	x.method = "GET";
	if (nargs == 2) {
		int n = snprintf(x.path, sizeof(x.path),
				 "/sessions/%s/modules/%s/memory?offset=%llu",
				 sid, mod, (unsigned long long)off);

		if (has_len)
			snprintf(x.path + n, sizeof(x.path) - (size_t)n,
				 "&length=%llu", (unsigned long long)len);
	} else {
		snprintf(x.path, sizeof(x.path), "/modules/%s/memory", mod);
		if (has_len)
			snprintf(range, sizeof(range), "%llu-%llu",
				 (unsigned long long)off,
				 (unsigned long long)(off + len - 1));
		else if (has_off)
			snprintf(range, sizeof(range), "%llu-",
				 (unsigned long long)off);
		if (has_len || has_off)
			x.range = range;
	}
	if (output) {
		x.out = fopen(output, "wb");
		if (!x.out) {
			errmsg("read: %s: %s", output, strerror(errno));
			return CLI_LOCAL;
		}
	} else {
		x.out = stdout;
	}
	ret = xfer_run(&x, "read");
	if (x.out != stdout && fclose(x.out) != 0 && ret == CLI_OK) {
		errmsg("read: %s: %s", output, strerror(errno));
		ret = CLI_LOCAL;
	}
	if (x.out == stdout && fflush(stdout) != 0 && ret == CLI_OK) {
		errmsg("read: standard output: %s", strerror(errno));
		ret = CLI_LOCAL;
	}
	xfer_release(&x);
	return ret;
}

static int cmd_bytecode(struct cli *c, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"output", required_argument, NULL, 'o'}, HELP_OPT, {0}};
	char mod[STORE_HEX_LEN + 1];
	struct cli_xfer x = {0};
	const char *output = NULL;
	int o, ret;

	while ((o = opt_next(argc, argv, "o:h", longs)) != -1) {
		switch (o) {
		case 'o':
			output = optarg;
			break;
		case 'h':
			return help_of("bytecode");
		default:
			return usage_err("bytecode", NULL);
		}
	}
	if (argc - optind != 1)
		return usage_err("bytecode", "one MOD");
	if (id_arg("MOD", argv[optind], mod) < 0)
		return CLI_USAGE;
	x.c = c;
	x.method = "GET";
	snprintf(x.path, sizeof(x.path), "/modules/%s/bytecode", mod);
	if (output) {
		x.out = fopen(output, "wb");
		if (!x.out) {
			errmsg("bytecode: %s: %s", output, strerror(errno));
			return CLI_LOCAL;
		}
	} else {
		x.out = stdout;
	}
	ret = xfer_run(&x, "bytecode");
	if (x.out != stdout && fclose(x.out) != 0 && ret == CLI_OK) {
		errmsg("bytecode: %s: %s", output, strerror(errno));
		ret = CLI_LOCAL;
	}
	if (x.out == stdout && fflush(stdout) != 0 && ret == CLI_OK) {
		errmsg("bytecode: standard output: %s", strerror(errno));
		ret = CLI_LOCAL;
	}
	xfer_release(&x);
	return ret;
}

static int cmd_write(struct cli *c, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"offset", required_argument, NULL, 'O'}, HELP_OPT, {0}};
	char sid[STORE_HEX_LEN + 1], mod[STORE_HEX_LEN + 1];
	struct cli_xfer x = {0};
	uint64_t off = 0;
	int o, ret;

	while ((o = opt_next(argc, argv, "O:h", longs)) != -1) {
		switch (o) {
		case 'O':
			if (u64_arg("--offset", optarg, &off) < 0)
				return CLI_USAGE;
			break;
		case 'h':
			return help_of("write");
		default:
			return usage_err("write", NULL);
		}
	}
	if (argc - optind != 2 && argc - optind != 3)
		return usage_err("write", "SID MOD [FILE|-]");
	if (id_arg("SID", argv[optind], sid) < 0 ||
	    id_arg("MOD", argv[optind + 1], mod) < 0)
		return CLI_USAGE;
	x.c = c;
	x.method = "PUT";
	x.content_type = "application/octet-stream";
	snprintf(x.path, sizeof(x.path),
		 "/sessions/%s/modules/%s/memory?offset=%llu", sid, mod,
		 (unsigned long long)off);
	ret = open_input("write", argc - optind == 3 ? argv[optind + 2] : NULL,
			 &x.in, &x.in_size);
	if (ret != CLI_OK)
		return ret;
	ret = xfer_run(&x, "write");
	if (x.in != stdin)
		fclose(x.in);
	xfer_release(&x);
	return ret;
}

static int cmd_commit(struct cli *c, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"if-match", required_argument, NULL, 'm'}, HELP_OPT, {0}};
	char sid[STORE_HEX_LEN + 1], root[STORE_HEX_LEN + 1], hdr[128];
	struct cli_xfer x = {0};
	const char *if_match = NULL;
	json_t *j = NULL;
	int o, ret;

	while ((o = opt_next(argc, argv, "m:h", longs)) != -1) {
		switch (o) {
		case 'm':
			if_match = optarg;
			break;
		case 'h':
			return help_of("commit");
		default:
			return usage_err("commit", NULL);
		}
	}
	if (argc - optind != 1)
		return usage_err("commit", "one SID");
	if (id_arg("SID", argv[optind], sid) < 0)
		return CLI_USAGE;
	if (if_match && id_arg("--if-match", if_match, root) < 0)
		return CLI_USAGE;
	x.c = c;
	x.method = "POST";
	snprintf(x.path, sizeof(x.path), "/sessions/%s/commit", sid);
	if (if_match) {
		snprintf(hdr, sizeof(hdr), "If-Match: \"%s\"", root);
		x.header = hdr;
	}
	ret = xfer_run(&x, "commit");
	if (ret != CLI_OK)
		goto out;
	if (c->json) {
		fwrite(x.resp.p, 1, x.resp.len, stdout);
		goto out;
	}
	j = xfer_json(&x, "commit");
	if (!j) {
		ret = CLI_CONNECT;
		goto out;
	}
	printf("%s\n", json_string_value(json_object_get(j, "commit")));
out:
	json_decref(j);
	xfer_release(&x);
	return ret;
}

static int cmd_commits(struct cli *c, int argc, char **argv)
{
	json_t *j = NULL, *mods, *mc;
	const char *commit, *mod;
	int done, ret = no_options("commits", argc, argv, 0, &done);

	if (done || ret)
		return ret;
	ret = json_call(c, "GET", "/commits", NULL, "commits", &j);
	if (ret == CLI_OK && !c->json)
		json_object_foreach(j, commit, mods)
		{
			printf("%s\n", commit);
			json_object_foreach(mods, mod, mc)
			    printf("  %s %s\n", mod, json_string_value(mc));
		}
	json_decref(j);
	return ret;
}

static int cmd_persist(struct cli *c, int argc, char **argv)
{
	json_t *j = NULL;
	int done, ret = no_options("persist", argc, argv, 0, &done);

	if (done || ret)
		return ret;
	ret = json_call(c, "POST", "/persist", NULL, "persist", &j);
	if (ret == CLI_OK && !c->json)
		printf("persisted %zu commits\n", json_object_size(j));
	json_decref(j);
	return ret;
}

static int cmd_restore(struct cli *c, int argc, char **argv)
{
	char hex[STORE_HEX_LEN + 1], path[128];
	json_t *j = NULL;
	int done, ret = no_options("restore", argc, argv, 1, &done);

	if (done || ret)
		return ret;
	if (id_arg("COMMIT", argv[optind], hex) < 0)
		return CLI_USAGE;
	snprintf(path, sizeof(path), "/restore/%s", hex);
	ret = json_call(c, "POST", path, NULL, "restore", &j);
	if (ret == CLI_OK && !c->json)
		printf("restored %s\n", hex);
	json_decref(j);
	return ret;
}

static int cmd_delete(struct cli *c, int argc, char **argv)
{
	char hex[STORE_HEX_LEN + 1], path[128];
	json_t *j = NULL;
	int done, ret = no_options("delete", argc, argv, 1, &done);

	if (done || ret)
		return ret;
	if (id_arg("COMMIT", argv[optind], hex) < 0)
		return CLI_USAGE;
	snprintf(path, sizeof(path), "/commits/%s", hex);
	ret = json_call(c, "DELETE", path, NULL, "delete", &j);
	if (ret == CLI_OK && !c->json)
		printf("deleted %s\n", hex);
	json_decref(j);
	return ret;
}

static int cmd_gc(struct cli *c, int argc, char **argv)
{
	json_t *j = NULL;
	int done, ret = no_options("gc", argc, argv, 0, &done);

	if (done || ret)
		return ret;
	ret = json_call(c, "POST", "/gc", NULL, "gc", &j);
	if (ret == CLI_OK && !c->json)
		printf("removed %lld files, freed %lld bytes\n",
		       (long long)json_integer_value(
			   json_object_get(j, "removed_files")),
		       (long long)json_integer_value(
			   json_object_get(j, "freed_bytes")));
	json_decref(j);
	return ret;
}

static int cmd_root(struct cli *c, int argc, char **argv)
{
	json_t *j = NULL;
	int done, ret = no_options("root", argc, argv, 0, &done);

	if (done || ret)
		return ret;
	ret = json_call(c, "GET", "/root", NULL, "root", &j);
	if (ret == CLI_OK && !c->json)
		printf("%s\n", json_string_value(json_object_get(j, "root")));
	json_decref(j);
	return ret;
}

static int cmd_health(struct cli *c, int argc, char **argv)
{
	json_t *j = NULL;
	int done, ret = no_options("health", argc, argv, 0, &done);

	if (done || ret)
		return ret;
	ret = json_call(c, "GET", "/health", NULL, "health", &j);
	if (ret == CLI_OK && !c->json)
		printf("%s\n", json_string_value(json_object_get(j, "status")));
	json_decref(j);
	return ret;
}

/* --- verify --------------------------------------------------------------- */

/*
 * Download path (a module's memory) into an unnamed temporary file and
 * hash it: *mc = its module commit id, *size its bytes. The memory is
 * mapped, never held in the heap, so a module of 1 GiB costs no RAM.
 */
static int fetch_memory_id(struct cli *c, const char *path, const char *what,
			   struct store_id *mc, uint64_t *size)
{
	struct cli_xfer x = {0};
	struct stat sb;
	void *map = MAP_FAILED;
	int ret;

	x.c = c;
	x.method = "GET";
	snprintf(x.path, sizeof(x.path), "%s", path);
	x.out = tmpfile();
	if (!x.out) {
		errmsg("%s: a temporary file: %s", what, strerror(errno));
		return CLI_LOCAL;
	}
	ret = xfer_run(&x, what);
	if (ret != CLI_OK)
		goto out;
	if (fflush(x.out) != 0 || fstat(fileno(x.out), &sb) < 0) {
		errmsg("%s: the temporary file: %s", what, strerror(errno));
		ret = CLI_LOCAL;
		goto out;
	}
	*size = (uint64_t)sb.st_size;
	if (*size == 0 || *size % STORE_PAGE_SIZE)
		goto out; /* the caller reports a size that is not pages */
	map =
	    mmap(NULL, (size_t)*size, PROT_READ, MAP_PRIVATE, fileno(x.out), 0);
	if (map == MAP_FAILED) {
		errmsg("%s: mapping the temporary file: %s", what,
		       strerror(errno));
		ret = CLI_LOCAL;
		goto out;
	}
	store_memory_id(map, (size_t)*size, mc);
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)*size);
	fclose(x.out);
	xfer_release(&x);
	return ret;
}

static int cmd_verify(struct cli *c, int argc, char **argv)
{
	char commit[STORE_HEX_LEN + 1], path[256], what[160];
	char got[STORE_HEX_LEN + 1], said[STORE_HEX_LEN + 1];
	struct store_pair *claimed = NULL, *actual = NULL;
	struct store_id cid, root;
	const char *mod;
	json_t *j = NULL, *mc;
	size_t n = 0, i = 0, bad = 0;
	uint64_t size;
	int done, ret = no_options("verify", argc, argv, 1, &done);

	if (done || ret)
		return ret;
	if (id_arg("COMMIT", argv[optind], commit) < 0)
		return CLI_USAGE;
	store_id_parse(&cid, commit, STORE_HEX_LEN);
	snprintf(path, sizeof(path), "/commits/%s", commit);
	ret = json_call(c, "GET", path, NULL, "verify", &j);
	if (ret != CLI_OK)
		goto out;
	if (!json_is_object(j)) {
		errmsg("verify: the commit's answer is not an object");
		ret = CLI_CONNECT;
		goto out;
	}
	n = json_object_size(j);
	claimed = calloc(n ? n : 1, sizeof(*claimed));
	actual = calloc(n ? n : 1, sizeof(*actual));
	if (!claimed || !actual) {
		errmsg("verify: out of memory");
		ret = CLI_LOCAL;
		goto out;
	}
	json_object_foreach(j, mod, mc)
	{
		const char *v = json_string_value(mc);

		if (store_id_parse(&claimed[i].module, mod, strlen(mod)) ||
		    !v || store_id_parse(&claimed[i].commit, v, strlen(v))) {
			errmsg("verify: the commit's answer holds a malformed "
			       "pair");
			ret = CLI_CONNECT;
			goto out;
		}
		i++;
	}
	for (i = 0; i < n; i++) {
		store_id_hex(&claimed[i].module, got);
		store_id_hex(&claimed[i].commit, said);
		snprintf(path, sizeof(path), "/commits/%s/modules/%s/memory",
			 commit, got);
		snprintf(what, sizeof(what), "verify: module %s", got);
		actual[i].module = claimed[i].module;
		ret = fetch_memory_id(c, path, what, &actual[i].commit, &size);
		if (ret != CLI_OK)
			goto out;
		if (size == 0 || size % STORE_PAGE_SIZE) {
			printf("module %s: MISMATCH: %llu bytes of memory, "
			       "not a whole number of %d-byte pages\n",
			       got, (unsigned long long)size, STORE_PAGE_SIZE);
			bad++;
			continue;
		}
		if (!store_id_equal(&actual[i].commit, &claimed[i].commit)) {
			store_id_hex(&actual[i].commit, what);
			printf(
			    "module %s: MISMATCH: the commit names module "
			    "commit %s, but its %llu bytes of memory hash to "
			    "%s\n",
			    got, said, (unsigned long long)size, what);
			bad++;
			continue;
		}
		printf("module %s: OK (%llu bytes, module commit %s)\n", got,
		       (unsigned long long)size, said);
	}
	if (store_state_id(claimed, n, &root) != STORE_OK) {
		errmsg("verify: out of memory");
		ret = CLI_LOCAL;
		goto out;
	}
	if (!store_id_equal(&root, &cid)) {
		store_id_hex(&root, got);
		printf("commit %s: MISMATCH: the server's module commits of "
		       "this commit hash to %s\n",
		       commit, got);
		bad++;
	}
	if (store_state_id(actual, n, &root) != STORE_OK) {
		errmsg("verify: out of memory");
		ret = CLI_LOCAL;
		goto out;
	}
	if (!store_id_equal(&root, &cid)) {
		store_id_hex(&root, got);
		printf("commit %s: MISMATCH: the memory downloaded gives the "
		       "commit id %s\n",
		       commit, got);
		bad++;
	}
	if (bad) {
		printf("FAILED: %zu mismatch%s in commit %s\n", bad,
		       bad == 1 ? "" : "es", commit);
		ret = CLI_MISMATCH;
	} else {
		printf("OK: commit %s and its %zu module%s recomputed here\n",
		       commit, n, n == 1 ? "" : "s");
	}
out:
	free(claimed);
	free(actual);
	json_decref(j);
	return ret;
}

/* --- the table of commands ------------------------------------------------ */

static const struct cli_cmd cmds[] = {
    {"deploy", cmd_deploy,
     "usage: modstore deploy [--size N] [FILE|-]\n"
     "\n"
     "Deploy a module: its bytecode is FILE, or standard input when FILE is\n"
     "- or absent. Prints the module id (BLAKE2b-256 of the bytecode).\n"
     "Deploying the same bytecode again is not an error.\n"
     "\n"
     "  -s, --size N   memory bytes, a positive multiple of 4096, or 4K,\n"
     "                 64K, 1M... (default 65536)\n"},
    {"modules", cmd_modules,
     "usage: modstore modules\n"
     "\n"
     "List the deployed modules, one a line: ID SIZE LAST_COMMIT (- when\n"
     "the module has no commit yet).\n"},
    {"session", cmd_session,
     "usage: modstore session new [--base COMMIT]\n"
     "       modstore session list\n"
     "       modstore session drop SID\n"
     "\n"
     "new opens a session on the current state, or on COMMIT with --base,\n"
     "and prints its id. list prints the open sessions: SID BASE. drop\n"
     "discards a session and its writes.\n"},
    {"read", cmd_read,
     "usage: modstore read [-O OFF] [-n LEN] [-o FILE] [SID] MOD\n"
     "\n"
     "Write memory of module MOD to standard output (or FILE): its current\n"
     "memory, or with SID the session's view (its base plus its writes).\n"
     "\n"
     "  -O, --offset OFF   first byte (default 0)\n"
     "  -n, --length LEN   bytes (default: to the end)\n"
     "  -o, --output FILE  write to FILE instead of standard output\n"},
    {"bytecode", cmd_bytecode,
     "usage: modstore bytecode [-o FILE] MOD\n"
     "\n"
     "Write the bytecode of module MOD (the bytes whose BLAKE2b-256 is MOD,\n"
     "as deployed) to standard output, or to FILE. A module deployed\n"
     "before the server kept bytecode has none: HTTP 404,\n"
     "bytecode_not_found (exit 3).\n"
     "\n"
     "  -o, --output FILE  write to FILE instead of standard output\n"},
    {"write", cmd_write,
     "usage: modstore write [-O OFF] SID MOD [FILE|-]\n"
     "\n"
     "Write FILE (or standard input when FILE is - or absent) into the\n"
     "session SID's view of module MOD at OFF. A write past the end grows\n"
     "the memory. Nothing is stored until `modstore commit SID`.\n"
     "\n"
     "  -O, --offset OFF   where the bytes go (default 0)\n"},
    {"commit", cmd_commit,
     "usage: modstore commit [--if-match ROOT] SID\n"
     "\n"
     "Commit the session SID (it is gone afterwards) and print the new\n"
     "commit id. With --if-match the server refuses (HTTP 412,\n"
     "root_mismatch) unless its current root is ROOT.\n"},
    {"commits", cmd_commits,
     "usage: modstore commits\n"
     "\n"
     "List the commits store: each commit id, then its modules indented:\n"
     "MOD MODCOMMIT.\n"},
    {"persist", cmd_persist,
     "usage: modstore persist\n"
     "\n"
     "Write the commits store to the server's disk (the file `commits`),\n"
     "so that its commit ids survive a restart.\n"},
    {"restore", cmd_restore,
     "usage: modstore restore COMMIT\n"
     "\n"
     "Make COMMIT the current state of every module.\n"},
    {"delete", cmd_delete,
     "usage: modstore delete COMMIT\n"
     "\n"
     "Forget COMMIT (from the commits store and the file `commits`) and\n"
     "remove the module commit files nothing needs any more. The current\n"
     "state stays even when COMMIT is its commit.\n"},
    {"gc", cmd_gc,
     "usage: modstore gc\n"
     "\n"
     "Remove the module commit files that no commit, neither the current\n"
     "state nor an open session needs; print how many and the bytes\n"
     "freed.\n"},
    {"root", cmd_root,
     "usage: modstore root\n"
     "\n"
     "Print the Merkle root (commit id) of the current state.\n"},
    {"health", cmd_health,
     "usage: modstore health\n"
     "\n"
     "Print \"ok\" and exit 0 when the server answers /health.\n"},
    {"verify", cmd_verify,
     "usage: modstore verify COMMIT\n"
     "\n"
     "Check COMMIT without trusting the server or its disk: download the\n"
     "memory of every module the commit holds, recompute each module\n"
     "commit id (RFC 6962 Merkle tree of BLAKE2b page leaves) and the\n"
     "commit id here, and print OK or exactly what does not match. Exit 0\n"
     "when everything matches, 1 when anything does not.\n"},
};

static const struct cli_cmd *cmd_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"json", no_argument, NULL, 'j'},
	    {"cacert", required_argument, NULL, 'C'},
	    {"cert", required_argument, NULL, 'E'},
	    {"key", required_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0}};
	struct cli c = {0};
	const struct cli_cmd *cmd;
	const char *url = getenv("MODSTORE_URL");
	size_t n;
	int o, ret;

	if (!url || !*url)
		url = CLI_DEFAULT_URL;
	c.cacert = getenv("MODSTORE_CACERT");
	c.cert = getenv("MODSTORE_CERT");
	c.key = getenv("MODSTORE_KEY");
	while ((o = getopt_long(argc, argv, "+u:jhV", longs, NULL)) != -1) {
		switch (o) {
		case 'u':
			url = optarg;
			break;
		case 'C':
			c.cacert = optarg;
			break;
		case 'E':
			c.cert = optarg;
			break;
		case 'K':
			c.key = optarg;
			break;
		case 'j':
			c.json = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return CLI_OK;
		case 'V':
			printf("modstore " CLI_VERSION "\n");
			return CLI_OK;
		default:
			fprintf(stderr, "(modstore --help says how)\n");
			return CLI_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		if (optind + 1 < argc)
			return help_of(argv[optind + 1]);
		fputs(usage_text, stdout);
		return CLI_OK;
	}
	cmd = cmd_find(argv[optind]);
	if (!cmd) {
		errmsg("no command '%s' (modstore --help lists them)",
		       argv[optind]);
		return CLI_USAGE;
	}
	n = strlen(url);
	while (n && url[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(c.url)) {
		errmsg("--url '%s' is not a URL", url);
		return CLI_USAGE;
	}
	memcpy(c.url, url, n);
	c.url[n] = '\0';
	c.token = getenv("MODSTORE_TOKEN");
	if (c.token && !*c.token)
		c.token = NULL;
	if (c.cacert && !*c.cacert)
		c.cacert = NULL;
	if (c.cert && !*c.cert)
		c.cert = NULL;
	if (c.key && !*c.key)
		c.key = NULL;
	c.progress_ok = isatty(STDERR_FILENO);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		errmsg("cannot start libcurl");
		return CLI_CONNECT;
	}
	/* the subcommand parses argv from its own name on */
	argv += optind;
	argc -= optind;
	optind = 0; /* glibc: start a fresh scan */
	ret = cmd->run(&c, argc, argv);
	curl_global_cleanup();
	if (fflush(stdout) != 0 && ret == CLI_OK) {
		errmsg("standard output: %s", strerror(errno));
		ret = CLI_LOCAL;
	}
	return ret;
}
