/*
 * test_log.c - unit tests for common/log.c's rate limit (log_limit): the burst, the summary of
 * the lines held back, written by the next allowed line or by log_limit_flush().
 */
#include "harness.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char captured[8192];

/* Runs @fn with stderr sent to a file, and keeps what it wrote in captured. */
static void capture(void (*fn)(void))
{
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	if (!f || saved < 0)
		return;
	fflush(stderr);
	dup2(fileno(f), STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	n = fread(captured, 1, sizeof(captured) - 1, f);
	captured[n] = '\0';
	fclose(f);
}

static int lines_allowed;

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void burst_then_next_second(void)
{
	struct log_limit l = {.what = "widgets refused"};

	lines_allowed = 0;
	for (int i = 0; i < LOG_LIMIT_BURST + 5; i++)
		lines_allowed += log_limit_ok(&l, 5000 + (uint64_t)i, NULL);
	/* the same second: nothing owed yet */
	log_limit_flush(&l, 5999, NULL);
	/* a later second: the five held back are summed up, the window starts again */
	lines_allowed += log_limit_ok(&l, 6000, NULL);
}

static void test_burst_and_summary(void)
{
	capture(burst_then_next_second);
	CHECK_EQ_INT(lines_allowed, LOG_LIMIT_BURST + 1);
	CHECK(strstr(captured, "5 more widgets refused not logged (at most 10 a second)") != NULL);
	CHECK_EQ_INT(count(captured, "not logged"), 1); /* one summary */
}

static void burst_then_flush(void)
{
	struct log_limit l = {0};

	for (int i = 0; i < LOG_LIMIT_BURST + 3; i++)
		log_limit_ok(&l, 1000, NULL);
	log_limit_flush(&l, 2500, NULL); /* no new line, but the second is over */
	log_limit_flush(&l, 3500, NULL); /* nothing owed: nothing written */
}

static void test_flush(void)
{
	capture(burst_then_flush);
	CHECK(strstr(captured, "3 more similar lines not logged") != NULL);
	CHECK_EQ_INT(count(captured, "not logged"), 1); /* one summary */
}

int main(void)
{
	log_init("test_log", LOG_LVL_INFO);
	TEST_RUN(test_burst_and_summary);
	TEST_RUN(test_flush);
	return TEST_DONE();
}
