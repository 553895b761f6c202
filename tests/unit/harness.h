/*
 * harness.h - a tiny unit test harness that stays active under NDEBUG.
 *
 * Each test binary defines test functions and lists them in main() with TEST_RUN(fn). A failed
 * CHECK prints file:line and the expression, marks the current test failed and goes on; the
 * binary prints one "PASS name" / "FAIL name" line per test and exits non-zero if any failed.
 */
#ifndef RS_TEST_HARNESS_H
#define RS_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int th_failed_checks;
static int th_tests_failed;
static int th_tests_passed;

#define CHECK(expr)                                                                                \
	do {                                                                                       \
		if (!(expr)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);   \
			th_failed_checks++;                                                        \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long th_a = (long long)(a), th_b = (long long)(b);                            \
		if (th_a != th_b) {                                                                \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, \
				__LINE__, #a, #b, th_a, th_b);                                     \
			th_failed_checks++;                                                        \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
	do {                                                                                       \
		const char *th_a = (a), *th_b = (b);                                               \
		if (!th_a || !th_b || strcmp(th_a, th_b) != 0) {                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n",      \
				__FILE__, __LINE__, #a, #b, th_a ? th_a : "(null)",                \
				th_b ? th_b : "(null)");                                           \
			th_failed_checks++;                                                        \
		}                                                                                  \
	} while (0)

#define TEST_RUN(fn)                                                                               \
	do {                                                                                       \
		int th_before = th_failed_checks;                                                  \
		fn();                                                                              \
		if (th_failed_checks == th_before) {                                               \
			th_tests_passed++;                                                         \
			printf("PASS %s\n", #fn);                                                  \
		} else {                                                                           \
			th_tests_failed++;                                                         \
			printf("FAIL %s\n", #fn);                                                  \
		}                                                                                  \
		fflush(stdout);                                                                    \
	} while (0)

#define TEST_DONE() (th_tests_failed ? 1 : 0)

/* A fresh directory /tmp/@name.XXXXXX for a test's files, into @dir (@size bytes); 0 (after a
 * FAIL line) when it cannot be made. */
static inline int th_tmpdir(char *dir, size_t size, const char *name)
{
	snprintf(dir, size, "/tmp/%s.XXXXXX", name);
	if (mkdtemp(dir))
		return 1;
	printf("FAIL %s: cannot make %s\n", name, dir);
	return 0;
}

/* Removes @dir, made by th_tmpdir(), and what it holds. */
static inline void th_rmtree(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

#endif
