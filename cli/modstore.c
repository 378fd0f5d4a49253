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
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
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
    "  prove COMMIT MOD PAGE          fetch a page's proof and check it "
    "here\n"
    "  diff FROM TO                   the modules and pages that differ\n"
    "  pull TO MOD FILE --from FROM   fetch only the changed pages into "
    "FILE\n"
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
    "  0  success (verify, prove, pull: everything matches)\n"
    "  1  verify, prove or pull found a mismatch (each one is printed)\n"
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

/* --- prove, diff, pull ---------------------------------------------------- */

/* An id member of a JSON object; -1 when absent or malformed. */
static int json_id(const json_t *j, const char *key, struct store_id *out)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s && store_id_parse(out, s, strlen(s)) == STORE_OK ? 0 : -1;
}

/* A non-negative integer member; -1 when absent or malformed. */
static int json_u64(const json_t *j, const char *key, uint64_t *out)
{
	const json_t *v = json_object_get(j, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int json_path(const json_t *j, const char *key, struct store_id *out,
		     size_t *n)
{
	const json_t *a = json_object_get(j, key), *e;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) > STORE_PROOF_MAX_PATH)
		return -1;
	json_array_foreach(a, i, e)
	{
		const char *s = json_string_value(e);

		if (!s || store_id_parse(&out[i], s, strlen(s)) != STORE_OK)
			return -1;
	}
	*n = json_array_size(a);
	return 0;
}

/* A proof answer into p; -1 when it is not one. */
static int proof_parse(const json_t *j, struct store_page_proof *p)
{
	const char *b64 = json_string_value(json_object_get(j, "page"));
	size_t len = 0;

	memset(p, 0, sizeof(*p));
	if (json_id(j, "commit", &p->commit) ||
	    json_id(j, "module", &p->module) ||
	    json_id(j, "module_commit", &p->module_commit) ||
	    json_u64(j, "page_index", &p->page_index) ||
	    json_u64(j, "page_count", &p->page_count) ||
	    json_u64(j, "module_index", &p->module_index) ||
	    json_u64(j, "module_count", &p->module_count) ||
	    json_path(j, "page_path", p->page_path, &p->page_path_len) ||
	    json_path(j, "module_path", p->module_path, &p->module_path_len) ||
	    !b64)
		return -1;
	if (sodium_base642bin(p->page, sizeof(p->page), b64, strlen(b64), NULL,
			      &len, NULL, sodium_base64_VARIANT_ORIGINAL) ||
	    len != STORE_PAGE_SIZE)
		return -1;
	return 0;
}

/*
 * Check proof p of page `page` of mod in commit (NULL: whatever p says)
 * with RFC 9162 2.1.3.2, printing each step to out. CLI_OK or
 * CLI_MISMATCH.
 */
static int proof_report(FILE *out, const struct store_page_proof *p,
			const struct store_id *commit,
			const struct store_id *mod, const uint64_t *page)
{
	char c[STORE_HEX_LEN + 1], m[STORE_HEX_LEN + 1], mc[STORE_HEX_LEN + 1];
	char got[STORE_HEX_LEN + 1];
	struct store_id leaf;
	int bad = 0;

	store_id_hex(&p->commit, c);
	store_id_hex(&p->module, m);
	store_id_hex(&p->module_commit, mc);
	if ((commit && !store_id_equal(commit, &p->commit)) ||
	    (mod && !store_id_equal(mod, &p->module)) ||
	    (page && *page != p->page_index)) {
		fprintf(out,
			"MISMATCH: the answer is a proof of page %llu of "
			"module %s in commit %s, not the one asked for\n",
			(unsigned long long)p->page_index, m, c);
		bad = 1;
	}
	store_page_leaf(p->page, &leaf);
	store_id_hex(&leaf, got);
	if (store_proof_verify(p->page_index, p->page_count, &leaf,
			       p->page_path, p->page_path_len,
			       &p->module_commit)) {
		fprintf(out,
			"page %llu of %llu: leaf %s and a path of %zu give "
			"module commit %s: OK\n",
			(unsigned long long)p->page_index,
			(unsigned long long)p->page_count, got,
			p->page_path_len, mc);
	} else {
		fprintf(out,
			"page %llu of %llu: MISMATCH: leaf %s and its path of "
			"%zu do not give module commit %s\n",
			(unsigned long long)p->page_index,
			(unsigned long long)p->page_count, got,
			p->page_path_len, mc);
		bad = 1;
	}
	store_module_leaf(&p->module, &p->module_commit, &leaf);
	store_id_hex(&leaf, got);
	if (store_proof_verify(p->module_index, p->module_count, &leaf,
			       p->module_path, p->module_path_len,
			       &p->commit)) {
		fprintf(out,
			"module %s (%llu of %llu): leaf %s and a path of %zu "
			"give commit %s: OK\n",
			m, (unsigned long long)p->module_index,
			(unsigned long long)p->module_count, got,
			p->module_path_len, c);
	} else {
		fprintf(out,
			"module %s (%llu of %llu): MISMATCH: leaf %s and its "
			"path of %zu do not give commit %s\n",
			m, (unsigned long long)p->module_index,
			(unsigned long long)p->module_count, got,
			p->module_path_len, c);
		bad = 1;
	}
	if (bad) {
		fprintf(out, "FAILED: the proof of page %llu does not hold\n",
			(unsigned long long)p->page_index);
		return CLI_MISMATCH;
	}
	fprintf(out, "OK: page %llu of module %s is in commit %s\n",
		(unsigned long long)p->page_index, m, c);
	return CLI_OK;
}

static int cmd_prove(struct cli *c, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"output", required_argument, NULL, 'o'},
	    HELP_OPT,
	    {0}};
	char commit[STORE_HEX_LEN + 1], mod[STORE_HEX_LEN + 1], path[256];
	struct store_page_proof *p = NULL;
	struct store_id cid, mid;
	const char *file = NULL, *output = NULL;
	json_error_t e;
	json_t *j = NULL;
	uint64_t page = 0;
	FILE *f;
	int o, ret;

	while ((o = opt_next(argc, argv, "f:o:h", longs)) != -1) {
		switch (o) {
		case 'f':
			file = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			return help_of("prove");
		default:
			return usage_err("prove", NULL);
		}
	}
	if (file ? argc - optind != 0 : argc - optind != 3)
		return usage_err("prove", file
					      ? "--file takes no other argument"
					      : "COMMIT MOD PAGE");
	if (!file && (id_arg("COMMIT", argv[optind], commit) < 0 ||
		      id_arg("MOD", argv[optind + 1], mod) < 0 ||
		      u64_arg("PAGE", argv[optind + 2], &page) < 0))
		return CLI_USAGE;
	p = malloc(sizeof(*p));
	if (!p) {
		errmsg("prove: out of memory");
		return CLI_LOCAL;
	}
	if (file) {
		j = json_load_file(file, 0, &e);
		if (!j) {
			errmsg("prove: %s: %s", file, e.text);
			ret = CLI_LOCAL;
			goto out;
		}
	} else {
		snprintf(path, sizeof(path),
			 "/commits/%s/modules/%s/pages/%llu", commit, mod,
			 (unsigned long long)page);
		ret = json_call(c, "GET", path, NULL, "prove", &j);
		if (ret != CLI_OK)
			goto out;
	}
	if (proof_parse(j, p) < 0) {
		errmsg("prove: the answer is not a page proof");
		ret = file ? CLI_LOCAL : CLI_CONNECT;
		goto out;
	}
	store_id_parse(&cid, commit, STORE_HEX_LEN);
	store_id_parse(&mid, mod, STORE_HEX_LEN);
	/* with --json, standard output has the JSON; the checks go to
	 * standard error */
	ret = proof_report(c->json ? stderr : stdout, p, file ? NULL : &cid,
			   file ? NULL : &mid, file ? NULL : &page);
	if (ret == CLI_OK && output) {
		f = fopen(output, "wb");
		if (!f ||
		    fwrite(p->page, 1, STORE_PAGE_SIZE, f) != STORE_PAGE_SIZE) {
			errmsg("prove: %s: %s", output, strerror(errno));
			ret = CLI_LOCAL;
		}
		if (f && fclose(f) != 0 && ret == CLI_OK) {
			errmsg("prove: %s: %s", output, strerror(errno));
			ret = CLI_LOCAL;
		}
	}
out:
	json_decref(j);
	free(p);
	return ret;
}

/* Print pages as ranges: "3-7,9,12-13". */
static void print_pages(const json_t *pages)
{
	size_t i, n = json_array_size(pages), k;
	json_int_t a, b;

	for (i = 0; i < n; i = k) {
		a = json_integer_value(json_array_get(pages, i));
		for (k = i + 1; k < n; k++)
			if (json_integer_value(json_array_get(pages, k)) !=
			    a + (json_int_t)(k - i))
				break;
		b = a + (json_int_t)(k - i - 1);
		if (a == b)
			printf("%s%" JSON_INTEGER_FORMAT, i ? "," : "", a);
		else
			printf("%s%" JSON_INTEGER_FORMAT
			       "-%" JSON_INTEGER_FORMAT,
			       i ? "," : "", a, b);
	}
}

static int cmd_diff(struct cli *c, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"no-pages", no_argument, NULL, 'N'}, HELP_OPT, {0}};
	char from[STORE_HEX_LEN + 1], to[STORE_HEX_LEN + 1], path[256];
	json_t *j = NULL, *m;
	size_t i;
	int o, ret, no_pages = 0;

	while ((o = opt_next(argc, argv, "Nh", longs)) != -1) {
		switch (o) {
		case 'N':
			no_pages = 1;
			break;
		case 'h':
			return help_of("diff");
		default:
			return usage_err("diff", NULL);
		}
	}
	if (argc - optind != 2)
		return usage_err("diff", "FROM TO");
	if (id_arg("FROM", argv[optind], from) < 0 ||
	    id_arg("TO", argv[optind + 1], to) < 0)
		return CLI_USAGE;
	snprintf(path, sizeof(path), "/commits/%s/diff/%s%s", from, to,
		 no_pages ? "?pages=0" : "");
	ret = json_call(c, "GET", path, NULL, "diff", &j);
	if (ret != CLI_OK || c->json)
		goto out;
	json_array_foreach(json_object_get(j, "modules"), i, m)
	{
		json_t *f = json_object_get(m, "from"),
		       *t = json_object_get(m, "to");
		json_t *pages = json_object_get(m, "pages");

		printf("%s %s -> %s",
		       json_string_value(json_object_get(m, "id")),
		       json_is_string(f) ? json_string_value(f) : "-",
		       json_is_string(t) ? json_string_value(t) : "-");
		printf(" %" JSON_INTEGER_FORMAT " -> %" JSON_INTEGER_FORMAT
		       " bytes",
		       json_integer_value(json_object_get(m, "size_from")),
		       json_integer_value(json_object_get(m, "size_to")));
		if (json_is_array(pages)) {
			printf(", %zu page%s", json_array_size(pages),
			       json_array_size(pages) == 1 ? "" : "s");
			if (json_array_size(pages)) {
				printf(": ");
				print_pages(pages);
			}
		}
		printf("\n");
	}
	printf("%zu module%s differ%s\n",
	       json_array_size(json_object_get(j, "modules")),
	       json_array_size(json_object_get(j, "modules")) == 1 ? "" : "s",
	       json_array_size(json_object_get(j, "modules")) == 1 ? "s" : "");
out:
	json_decref(j);
	return ret;
}

/* The ranges of a pull, fetched over one connection. */
struct pull {
	struct cli *c;
	CURL *h;
	int fd;
	uint64_t off;	      /* where the next body byte goes */
	uint64_t received;    /* body bytes of memory received */
	uint64_t requests;    /* ranges fetched */
	uint64_t done, total; /* pages, for the bar */
	long status;
	int write_failed;
	struct cli_buf err; /* the body of an error answer */
	double bar_last;
	int bar_drawn;
};

static size_t pull_write(char *p, size_t size, size_t n, void *ctx)
{
	struct pull *pl = ctx;
	size_t len = size * n, w = 0;
	ssize_t k;

	curl_easy_getinfo(pl->h, CURLINFO_RESPONSE_CODE, &pl->status);
	if (pl->status != 206)
		return buf_add(&pl->err, p, len);
	while (w < len) {
		k = pwrite(pl->fd, p + w, len - w, (off_t)(pl->off + w));
		if (k < 0) {
			pl->write_failed = errno;
			return 0;
		}
		w += (size_t)k;
	}
	pl->off += len;
	pl->received += len;
	return len;
}

static void pull_bar(struct pull *pl, int last)
{
	char bar[41];
	double t = now_s();
	int i, fill;

	if (!pl->c->progress_ok || !pl->total)
		return;
	if (!last && pl->bar_drawn && t - pl->bar_last < 0.1)
		return;
	pl->bar_last = t;
	fill = (int)(40.0 * (double)pl->done / (double)pl->total);
	for (i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : ' ';
	bar[40] = '\0';
	fprintf(stderr, "\r[%s] %3d%% %llu/%llu pages", bar,
		(int)(100.0 * (double)pl->done / (double)pl->total),
		(unsigned long long)pl->done, (unsigned long long)pl->total);
	pl->bar_drawn = 1;
	if (last)
		fputc('\n', stderr);
}

/* Fetch pages [first, first + n) of memory url into the file at their place. */
static int pull_range(struct pull *pl, const char *url, uint64_t first,
		      uint64_t n)
{
	char range[64];
	CURLcode rc;

	snprintf(range, sizeof(range), "%llu-%llu",
		 (unsigned long long)(first * STORE_PAGE_SIZE),
		 (unsigned long long)((first + n) * STORE_PAGE_SIZE - 1));
	curl_easy_setopt(pl->h, CURLOPT_URL, url);
	curl_easy_setopt(pl->h, CURLOPT_RANGE, range);
	pl->off = first * STORE_PAGE_SIZE;
	pl->status = 0;
	pl->err.len = 0;
	rc = curl_easy_perform(pl->h);
	curl_easy_getinfo(pl->h, CURLINFO_RESPONSE_CODE, &pl->status);
	pl->requests++;
	if (pl->write_failed) {
		errmsg("pull: writing the file: %s",
		       strerror(pl->write_failed));
		return CLI_LOCAL;
	}
	if (rc != CURLE_OK) {
		errmsg("pull: %s: %s", url, curl_easy_strerror(rc));
		return CLI_CONNECT;
	}
	if (pl->status != 206 || pl->off != (first + n) * STORE_PAGE_SIZE) {
		struct cli_xfer x = {0};

		x.status = pl->status;
		x.resp = pl->err;
		if (pl->status == 206)
			errmsg("pull: the range %s came short", range);
		else
			print_http_error(&x, "pull");
		return pl->status >= 300 || pl->status < 200 ? CLI_HTTP
							     : CLI_CONNECT;
	}
	pl->done += n;
	pull_bar(pl, 0);
	return CLI_OK;
}

/* The module commit of mod in commit (GET /commits/{commit}). */
static int commit_mc(struct cli *c, const char *commit, const char *mod,
		     struct store_id *mc)
{
	char path[128];
	json_t *j = NULL;
	int ret, json = c->json;

	snprintf(path, sizeof(path), "/commits/%s", commit);
	c->json = 0;
	ret = json_call(c, "GET", path, NULL, "pull", &j);
	c->json = json;
	if (ret == CLI_OK && json_id(j, mod, mc) < 0) {
		errmsg("pull: commit %s does not hold module %s", commit, mod);
		ret = CLI_HTTP;
	}
	json_decref(j);
	return ret;
}

/* The file's memory hashed: its module commit id. */
static int file_mc(const char *file, int fd, uint64_t size, struct store_id *mc)
{
	void *map;

	if (size == 0) {
		store_memory_id(NULL, 0, mc);
		return CLI_OK;
	}
	map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		errmsg("pull: mapping %s: %s", file, strerror(errno));
		return CLI_LOCAL;
	}
	store_memory_id(map, (size_t)size, mc);
	munmap(map, (size_t)size);
	return CLI_OK;
}

static int cmd_pull(struct cli *c, int argc, char **argv)
{
	static const struct option longs[] = {
	    {"from", required_argument, NULL, 'F'}, HELP_OPT, {0}};
	char to[STORE_HEX_LEN + 1], from[STORE_HEX_LEN + 1];
	char mod[STORE_HEX_LEN + 1], url[2048], auth[1024];
	char want_hex[STORE_HEX_LEN + 1], got_hex[STORE_HEX_LEN + 1];
	struct pull pl = {0};
	struct curl_slist *hdrs = NULL;
	struct store_id want, got, mid;
	const char *from_arg = NULL, *file;
	json_t *j = NULL, *m, *entry = NULL, *pages = NULL;
	struct stat sb;
	uint64_t size_to = 0, npages = 0, a, n, diff_bytes = 0;
	size_t i, k;
	int o, ret, json = c->json, round, all = 0;

	pl.fd = -1;
	while ((o = opt_next(argc, argv, "F:h", longs)) != -1) {
		switch (o) {
		case 'F':
			from_arg = optarg;
			break;
		case 'h':
			return help_of("pull");
		default:
			return usage_err("pull", NULL);
		}
	}
	if (argc - optind != 3)
		return usage_err("pull", "TO MOD FILE --from FROM");
	if (!from_arg)
		return usage_err("pull", "--from FROM is needed: the commit "
					 "whose memory FILE holds");
	if (id_arg("TO", argv[optind], to) < 0 ||
	    id_arg("MOD", argv[optind + 1], mod) < 0 ||
	    id_arg("--from", from_arg, from) < 0)
		return CLI_USAGE;
	file = argv[optind + 2];
	store_id_parse(&mid, mod, STORE_HEX_LEN);
	ret = commit_mc(c, to, mod, &want);
	if (ret != CLI_OK)
		return ret;
	/*
	 * The pages to fetch. A diff that lists more pages than the server
	 * allows (413) is asked again without them, and all of TO's memory
	 * is fetched.
	 */
	c->json = 0;
	for (round = 0; round < 2; round++) {
		struct cli_xfer x = {0};

		x.c = c;
		x.method = "GET";
		snprintf(x.path, sizeof(x.path), "/commits/%s/diff/%s%s", from,
			 to, round ? "?pages=0" : "");
		ret = xfer_run(&x, "pull");
		if (ret == CLI_OK) {
			diff_bytes += x.resp.len;
			j = xfer_json(&x, "pull");
			if (!j)
				ret = CLI_CONNECT;
		}
		xfer_release(&x);
		if (round > 0 || ret != CLI_HTTP || x.status != 413)
			break;
		all = 1;
		errmsg("pull: fetching all of the memory instead");
	}
	c->json = json;
	if (ret != CLI_OK)
		goto out;
	json_array_foreach(json_object_get(j, "modules"), i, m)
	{
		struct store_id id;

		if (json_id(m, "id", &id) == 0 && store_id_equal(&id, &mid))
			entry = m;
	}
	pl.fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (pl.fd < 0 || fstat(pl.fd, &sb) < 0) {
		errmsg("pull: %s: %s", file, strerror(errno));
		ret = CLI_LOCAL;
		goto out;
	}
	if (entry) {
		pages = json_object_get(entry, "pages");
		if (json_u64(entry, "size_to", &size_to) < 0 ||
		    (!all && !json_is_array(pages))) {
			errmsg("pull: the diff's answer makes no sense");
			ret = CLI_CONNECT;
			goto out;
		}
		npages =
		    all ? size_to / STORE_PAGE_SIZE : json_array_size(pages);
	} else {
		size_to = (uint64_t)sb.st_size; /* the same module commit */
	}
	/* fetch the changed pages, adjacent ones in one range */
	snprintf(url, sizeof(url), "%s/commits/%s/modules/%s/memory", c->url,
		 to, mod);
	pl.c = c;
	pl.total = npages;
	pl.h = curl_easy_init();
	if (!pl.h) {
		errmsg("pull: cannot start libcurl");
		ret = CLI_CONNECT;
		goto out;
	}
	if (c->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			 c->token);
		hdrs = curl_slist_append(hdrs, auth);
		curl_easy_setopt(pl.h, CURLOPT_HTTPHEADER, hdrs);
	}
	curl_easy_setopt(pl.h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(pl.h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(pl.h, CURLOPT_WRITEFUNCTION, pull_write);
	curl_easy_setopt(pl.h, CURLOPT_WRITEDATA, &pl);
	for (i = 0; i < npages && ret == CLI_OK; i = k) {
		json_int_t v =
		    all ? (json_int_t)i
			: json_integer_value(json_array_get(pages, i));

		a = (uint64_t)v;
		for (k = i + 1; k < npages && !all; k++)
			if (json_integer_value(json_array_get(pages, k)) !=
			    v + (json_int_t)(k - i))
				break;
		if (all)
			k = npages;
		n = (uint64_t)(k - i);
		if (v < 0 || (a + n) * STORE_PAGE_SIZE > size_to) {
			errmsg("pull: the diff lists a page past the end");
			ret = CLI_CONNECT;
			break;
		}
		ret = pull_range(&pl, url, a, n);
	}
	if (pl.bar_drawn)
		pull_bar(&pl, 1);
	if (ret != CLI_OK)
		goto out;
	if (ftruncate(pl.fd, (off_t)size_to) < 0 || fsync(pl.fd) < 0) {
		errmsg("pull: %s: %s", file, strerror(errno));
		ret = CLI_LOCAL;
		goto out;
	}
	ret = file_mc(file, pl.fd, size_to, &got);
	if (ret != CLI_OK)
		goto out;
	store_id_hex(&want, want_hex);
	store_id_hex(&got, got_hex);
	printf("fetched %llu page%s in %llu range%s: %llu bytes of memory "
	       "(and %llu bytes of diff)\n",
	       (unsigned long long)pl.done, pl.done == 1 ? "" : "s",
	       (unsigned long long)pl.requests, pl.requests == 1 ? "" : "s",
	       (unsigned long long)pl.received, (unsigned long long)diff_bytes);
	if (!store_id_equal(&got, &want)) {
		printf("MISMATCH: %s (%llu bytes) hashes to %s, but commit %s "
		       "holds module commit %s of module %s\n",
		       file, (unsigned long long)size_to, got_hex, to, want_hex,
		       mod);
		ret = CLI_MISMATCH;
		goto out;
	}
	printf("OK: %s is module %s of commit %s (module commit %s, %llu "
	       "bytes)\n",
	       file, mod, to, want_hex, (unsigned long long)size_to);
out:
	if (pl.h)
		curl_easy_cleanup(pl.h);
	curl_slist_free_all(hdrs);
	free(pl.err.p);
	if (pl.fd >= 0 && close(pl.fd) < 0 && ret == CLI_OK) {
		errmsg("pull: %s: %s", file, strerror(errno));
		ret = CLI_LOCAL;
	}
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
    {"prove", cmd_prove,
     "usage: modstore prove [-o FILE] COMMIT MOD PAGE\n"
     "       modstore prove --file PROOF.json [-o FILE]\n"
     "\n"
     "Fetch the proof that page PAGE of module MOD is in commit COMMIT\n"
     "(GET /commits/COMMIT/modules/MOD/pages/PAGE) and check it here,\n"
     "trusting nothing the server says: the page's leaf H(0x00 || page)\n"
     "and its audit path must give the module commit (RFC 9162 2.1.3.2\n"
     "inclusion verification), then the module's leaf H(0x00 || MOD ||\n"
     "MODCOMMIT) and its path must give COMMIT. Prints each step. Exit 0\n"
     "when the proof holds, 1 when it does not.\n"
     "\n"
     "  -f, --file FILE    check a proof saved earlier (its JSON) instead\n"
     "  -o, --output FILE  write the page's 4096 bytes to FILE once checked\n"},
    {"diff", cmd_diff,
     "usage: modstore diff [--no-pages] FROM TO\n"
     "\n"
     "List the modules whose memory differs between commits FROM and TO,\n"
     "one a line: MOD FROM_MODCOMMIT -> TO_MODCOMMIT (- when the commit\n"
     "does not hold the module), the sizes, and the pages a holder of\n"
     "FROM's memory must fetch to have TO's, as ranges (3-7,9).\n"
     "\n"
     "  -N, --no-pages   leave the pages out (GET ...?pages=0)\n"},
    {"pull", cmd_pull,
     "usage: modstore pull TO MOD FILE --from FROM\n"
     "\n"
     "Turn FILE, which holds module MOD's memory as commit FROM has it,\n"
     "into its memory as commit TO has it, fetching only the pages that\n"
     "differ: the diff of FROM and TO, then one Range request of\n"
     "GET /commits/TO/modules/MOD/memory per run of adjacent changed\n"
     "pages, written in place; FILE is then cut or grown to TO's size\n"
     "and checked against TO's module commit id (recomputed here). FILE\n"
     "is made when missing (FROM without MOD). Prints the pages, ranges\n"
     "and bytes received; a progress bar on a terminal. When the diff\n"
     "lists more pages than the server allows (HTTP 413), all of TO's\n"
     "memory is fetched instead. Exit 0 when FILE is TO's memory, 1 when\n"
     "the result does not match.\n"
     "\n"
     "  -F, --from FROM  the commit whose memory FILE holds (needed)\n"},
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
