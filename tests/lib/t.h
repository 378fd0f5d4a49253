/*
 * t.h - the test harness: CHECK() records a result, t_done() prints
 * "N passed, N failed" and gives the exit status: non-zero when a check
 * failed, and when no check ran at all.
 */
#ifndef T_H
#define T_H

#include <stddef.h>
#include <stdio.h>

extern int t_passed;
extern int t_failed;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (cond) {                                                    \
			t_passed++;                                            \
		} else {                                                       \
			t_failed++;                                            \
			fprintf(stderr, "%s:%d: FAIL %s\n", __FILE__,          \
				__LINE__, #cond);                              \
		}                                                              \
	} while (0)

/* CHECK that two store_err values are equal, printing both on failure. */
#define CHECK_ERR(got, want)                                                   \
	do {                                                                   \
		int t_g_ = (int)(got), t_w_ = (int)(want);                     \
		if (t_g_ == t_w_) {                                            \
			t_passed++;                                            \
		} else {                                                       \
			t_failed++;                                            \
			fprintf(stderr, "%s:%d: FAIL %s = %d, want %d\n",      \
				__FILE__, __LINE__, #got, t_g_, t_w_);         \
		}                                                              \
	} while (0)

/*
 * Print the summary line and return the process exit status: 1 when a
 * check failed or when none ran (a program that checked nothing fails,
 * saying so on stderr), 0 otherwise.
 */
int t_done(void);

/* A fresh empty directory under $TMPDIR (or /tmp); caller frees. */
char *t_tmpdir(const char *tag);

/* rm -rf path. */
void t_rmrf(const char *path);

/* Tests that each take a fresh directory, named after tag. */
struct t_case {
	const char *tag;
	void (*fn)(const char *dir);
};
/* Run each of v[0..n) in a fresh directory, removed after it. */
void t_run_each(const struct t_case *v, size_t n);

/* A whole file, NUL-terminated (caller frees), or NULL; *len its bytes. */
char *t_slurp(const char *path, size_t *len);

#endif /* T_H */
