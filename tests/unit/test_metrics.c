/*
 * test_metrics.c - the metrics registry and its Prometheus text exposition (format 0.0.4):
 * HELP/TYPE lines, label values and help escaped, value spellings (integers, fractions, NaN,
 * +Inf), registration order, collectors run at render time, metric_clear, the series bound,
 * counters refusing to go down, bad names refused; every line of a rendering parsed back.
 */
#include "harness.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renders @reg into a NUL-terminated string (caller frees). */
static char *render(struct metrics *reg)
{
	struct buf b = {0};
	char *s;

	if (metrics_render(reg, &b) < 0 || buf_append(&b, "", 1) < 0) {
		buf_free(&b);
		return NULL;
	}
	s = strdup((const char *)buf_head(&b));
	buf_free(&b);
	return s;
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* Checks one sample line: name{label="value",...} value, with escapes only \\ \" \n. */
static bool sample_line_ok(const char *p)
{
	char *end;

	if (!name_char(*p, true))
		return false;
	while (name_char(*p, false))
		p++;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			if (!name_char(*p, true) || *p == ':')
				return false;
			while (name_char(*p, false))
				p++;
			if (strncmp(p, "=\"", 2) != 0)
				return false;
			for (p += 2; *p != '"'; p++) {
				if (!*p || *p == '\n')
					return false;
				if (*p == '\\' && (p[1] == '\\' || p[1] == '"' || p[1] == 'n'))
					p++;
				else if (*p == '\\')
					return false;
			}
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return false;
		}
		p++;
	}
	if (*p++ != ' ')
		return false;
	if (strcmp(p, "NaN") == 0 || strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0)
		return true;
	strtod(p, &end);
	return end != p && *end == '\0';
}

/* Every line is a HELP, a TYPE or a sample line; the text ends with a newline. */
static bool exposition_ok(const char *text)
{
	char *copy = strdup(text), *save = NULL;
	bool ok = copy && *text && text[strlen(text) - 1] == '\n';

	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; ok && line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0)
			ok = strstr(line, " counter") || strstr(line, " gauge");
		else
			ok = sample_line_ok(line);
		if (!ok)
			fprintf(stderr, "bad exposition line: %s\n", line);
	}
	free(copy);
	return ok;
}

static void test_basic_exposition(void)
{
	struct metrics *reg = metrics_new("rtmp2sip_");
	struct metric *c, *g;
	char *text;

	CHECK(reg != NULL);
	c = metrics_add(reg, METRIC_COUNTER, "legs_created_total", "Legs created.", NULL);
	g = metrics_add(reg, METRIC_GAUGE, "worker_legs", "Legs by worker.",
			(const char *const[]){"worker", NULL});
	CHECK(c && g);
	CHECK_EQ_INT(metric_add(c, 3), 0);
	CHECK_EQ_INT(metric_add(c, 2), 0);
	CHECK_EQ_INT(metric_set_l(g, (const char *const[]){"w1"}, 7), 0);
	CHECK_EQ_INT(metric_set_l(g, (const char *const[]){"w2"}, 0.25), 0);
	CHECK_EQ_INT(metric_set_l(g, (const char *const[]){"w1"}, 8), 0); /* replaces */
	text = render(reg);
	CHECK(text != NULL);
	CHECK_EQ_STR(text, "# HELP rtmp2sip_legs_created_total Legs created.\n"
			   "# TYPE rtmp2sip_legs_created_total counter\n"
			   "rtmp2sip_legs_created_total 5\n"
			   "# HELP rtmp2sip_worker_legs Legs by worker.\n"
			   "# TYPE rtmp2sip_worker_legs gauge\n"
			   "rtmp2sip_worker_legs{worker=\"w1\"} 8\n"
			   "rtmp2sip_worker_legs{worker=\"w2\"} 0.25\n");
	CHECK(text && exposition_ok(text));
	free(text);
	metrics_destroy(&reg);
	CHECK(reg == NULL);
	metrics_destroy(&reg); /* NULL-safe */
}

static void test_escaping_and_values(void)
{
	struct metrics *reg = metrics_new("");
	struct metric *g = metrics_add(reg, METRIC_GAUGE, "x", "a \\ back\nslash",
				       (const char *const[]){"a", "b", NULL});
	char *text;

	CHECK(g != NULL);
	metric_set_l(g, (const char *const[]){"q\"uote", "back\\slash\nnl"}, NAN);
	metric_set_l(g, (const char *const[]){"inf", ""}, INFINITY);
	metric_set_l(g, (const char *const[]){"-inf", ""}, -INFINITY);
	metric_set_l(g, (const char *const[]){"frac", ""}, 0.1);
	metric_set_l(g, (const char *const[]){"big", ""}, 18446744073709551615.0);
	metric_set_l(g, (const char *const[]){"neg", ""}, -42);
	text = render(reg);
	CHECK(text && exposition_ok(text));
	CHECK(text && strstr(text, "# HELP x a \\\\ back\\nslash\n"));
	CHECK(text && strstr(text, "x{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} NaN\n"));
	CHECK(text && strstr(text, "x{a=\"inf\",b=\"\"} +Inf\n"));
	CHECK(text && strstr(text, "x{a=\"-inf\",b=\"\"} -Inf\n"));
	CHECK(text && strstr(text, "x{a=\"frac\",b=\"\"} 0.1\n"));
	CHECK(text && strstr(text, "x{a=\"neg\",b=\"\"} -42\n"));
	CHECK(text && strstr(text, "x{a=\"big\",b=\"\"} 1.8446744073709552e+19\n"));
	free(text);
	metrics_destroy(&reg);
}

static int collected;

static void collect(struct metrics *reg, void *arg)
{
	struct metric *g = arg;

	(void)reg;
	collected++;
	metric_clear(g);
	if (collected == 1)
		metric_set_l(g, (const char *const[]){"gone-after-first"}, 1);
	metric_set_l(g, (const char *const[]){"always"}, collected);
}

static void test_collectors_and_clear(void)
{
	struct metrics *reg = metrics_new("p_");
	struct metric *g =
	    metrics_add(reg, METRIC_GAUGE, "up", "Up.", (const char *const[]){"worker", NULL});
	struct metric *plain = metrics_add(reg, METRIC_GAUGE, "plain", "Plain.", NULL);
	char *text;

	collected = 0;
	CHECK_EQ_INT(metrics_add_collector(reg, collect, g), 0);
	text = render(reg);
	CHECK_EQ_INT(collected, 1);
	CHECK(text && strstr(text, "p_up{worker=\"gone-after-first\"} 1\n"));
	CHECK(text && strstr(text, "p_up{worker=\"always\"} 1\n"));
	CHECK(text && strstr(text, "p_plain 0\n")); /* a label-less family is always there */
	free(text);
	text = render(reg);
	CHECK_EQ_INT(collected, 2);
	CHECK(text && !strstr(text, "gone-after-first"));
	CHECK(text && strstr(text, "p_up{worker=\"always\"} 2\n"));
	free(text);
	metric_set(plain, 4);
	metric_clear(plain);
	CHECK(metric_value_l(plain, NULL) == 0);
	for (int i = 1; i < METRICS_MAX_COLLECTORS; i++)
		CHECK_EQ_INT(metrics_add_collector(reg, collect, g), 0);
	CHECK_EQ_INT(metrics_add_collector(reg, collect, g), -ENOSPC);
	metrics_destroy(&reg);
}

static void test_bounds_and_refusals(void)
{
	struct metrics *reg = metrics_new("r_");
	struct metric *c =
	    metrics_add(reg, METRIC_COUNTER, "c_total", "C.", (const char *const[]){"k", NULL});
	char label[METRICS_MAX_LABEL_VALUE + 2];
	char name[16];

	CHECK(c != NULL);
	for (int i = 0; i < METRICS_MAX_SERIES; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		CHECK_EQ_INT(metric_add_l(c, (const char *const[]){name}, 1), 0);
	}
	CHECK_EQ_INT(metric_add_l(c, (const char *const[]){"one-too-many"}, 1), -ENOSPC);
	CHECK_EQ_INT(metric_add_l(c, (const char *const[]){"s3"}, 1), 0); /* existing: fine */
	CHECK(metric_value_l(c, (const char *const[]){"s3"}) == 2);
	CHECK_EQ_INT(metric_add_l(c, (const char *const[]){"s3"}, -1), -EINVAL);
	CHECK_EQ_INT(metric_add_l(c, (const char *const[]){"s3"}, NAN), -EINVAL);
	CHECK_EQ_INT(metric_add_l(c, (const char *const[]){NULL}, 1), -EINVAL);
	CHECK_EQ_INT(metric_add_l(c, NULL, 1), -EINVAL);
	memset(label, 'x', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	metric_clear(c);
	CHECK_EQ_INT(metric_set_l(c, (const char *const[]){label}, 1), -EINVAL);
	label[METRICS_MAX_LABEL_VALUE] = '\0';
	CHECK_EQ_INT(metric_set_l(c, (const char *const[]){label}, 1), 0);

	errno = 0;
	CHECK(metrics_add(reg, METRIC_GAUGE, "c_total", "dup", NULL) == NULL && errno == EEXIST);
	CHECK(metrics_add(reg, METRIC_GAUGE, "9lives", "", NULL) == NULL && errno == EINVAL);
	CHECK(metrics_add(reg, METRIC_GAUGE, "sp ace", "", NULL) == NULL && errno == EINVAL);
	CHECK(metrics_add(reg, METRIC_GAUGE, "", "", NULL) == NULL && errno == EINVAL);
	CHECK(metrics_add(reg, METRIC_GAUGE, "ok", "", (const char *const[]){"__res", NULL}) ==
		  NULL &&
	      errno == EINVAL);
	CHECK(metrics_add(reg, METRIC_GAUGE, "ok", "", (const char *const[]){"a:b", NULL}) ==
		  NULL &&
	      errno == EINVAL);
	CHECK(metrics_add(reg, METRIC_GAUGE, "ok", "",
			  (const char *const[]){"a", "b", "c", "d", NULL}) == NULL &&
	      errno == EINVAL);
	CHECK(metrics_add(reg, METRIC_GAUGE, "ok:sub", "",
			  (const char *const[]){"a", "b", "c", NULL}));
	metrics_destroy(&reg);
}

int main(void)
{
	log_init("test_metrics", LOG_LVL_WARN);
	TEST_RUN(test_basic_exposition);
	TEST_RUN(test_escaping_and_values);
	TEST_RUN(test_collectors_and_clear);
	TEST_RUN(test_bounds_and_refusals);
	return TEST_DONE();
}
