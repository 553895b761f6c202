/*
 * test_delay_hist.c - the benchmark tools' delay histogram (tests/tools/delay_hist.h) and the
 * frame matching on top of it (tests/tools/delay_track.h): bucket edges, the top of the range,
 * quantiles of a known distribution, merging, nothing clipped; then matching by index, by
 * timestamp, with fallback, duplicates and loss.
 */
#include "harness.h"

#include "../tools/delay_hist.h"
#include "../tools/delay_track.h"

#include <stdint.h>
#include <stdlib.h>

static struct delay_hist *hist_new(void)
{
	struct delay_hist *h = calloc(1, sizeof(*h));

	CHECK(h != NULL);
	return h;
}

/* Every bucket's upper edge maps to it and the next value to the next bucket; the linear part is
 * one value per bucket; widths stay within 1/32 of the value. */
static void test_bucket_edges(void)
{
	CHECK_EQ_INT(delay_hist_index(0), 0);
	CHECK_EQ_INT(delay_hist_index(63), 63);
	CHECK_EQ_INT(delay_hist_index(64), 64);
	CHECK_EQ_INT(delay_hist_upper(64), 64 + 1);
	CHECK_EQ_INT(delay_hist_index(65), 64);
	CHECK_EQ_INT(delay_hist_index(66), 65);
	CHECK_EQ_INT(delay_hist_index(127), 64 + 31);
	CHECK_EQ_INT(delay_hist_index(128), 64 + 32);
	for (unsigned i = 0; i + 1 < DELAY_HIST_BUCKETS; i++) {
		uint64_t u = delay_hist_upper(i);

		CHECK_EQ_INT(delay_hist_index(u), i);
		CHECK_EQ_INT(delay_hist_index(u + 1), i + 1);
		if (i >= DELAY_HIST_LINEAR) {
			uint64_t lo = delay_hist_upper(i - 1) + 1;

			CHECK((double)(u - lo + 1) <= (double)lo / 32.0 + 1e-9);
		}
	}
}

/* The top of the range: 2^64 - 1 has the last bucket, whose upper edge it is. */
static void test_top_of_range(void)
{
	struct delay_hist *h = hist_new();

	if (!h)
		return;
	CHECK_EQ_INT(delay_hist_index(UINT64_MAX), DELAY_HIST_BUCKETS - 1);
	CHECK(delay_hist_upper(DELAY_HIST_BUCKETS - 1) == UINT64_MAX);
	CHECK_EQ_INT(delay_hist_index(1ull << 63), DELAY_HIST_BUCKETS - 32);
	delay_hist_add(h, UINT64_MAX - 5);
	delay_hist_add(h, 10);
	CHECK(h->max == UINT64_MAX - 5);
	CHECK(delay_hist_quantile(h, 1.0) == UINT64_MAX - 5); /* capped at the exact maximum */
	CHECK(delay_hist_quantile(h, 0.5) == 10);
	free(h);
}

/* 1..100000 µs once each: every quantile within one bucket (3 %) above the exact value. */
static void test_quantiles_uniform(void)
{
	struct delay_hist *h = hist_new();
	static const double qs[] = {0.5, 0.9, 0.99, 0.999};

	if (!h)
		return;
	CHECK_EQ_INT(delay_hist_quantile(h, 0.5), 0); /* no samples */
	for (uint64_t v = 1; v <= 100000; v++)
		delay_hist_add(h, v);
	CHECK_EQ_INT(h->n, 100000);
	CHECK_EQ_INT(h->min, 1);
	CHECK_EQ_INT(h->max, 100000);
	for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		double exact = qs[i] * 100000, got = (double)delay_hist_quantile(h, qs[i]);

		CHECK(got >= exact);
		CHECK(got <= exact * (1 + 1.0 / 32));
	}
	CHECK_EQ_INT(delay_hist_quantile(h, 0.0), 1);
	CHECK_EQ_INT(delay_hist_quantile(h, 1.0), 100000);
	free(h);
}

/* Two halves merged equal the whole, bucket for bucket. */
static void test_merge(void)
{
	struct delay_hist *a = hist_new(), *b = hist_new(), *all = hist_new(), *empty = hist_new();

	if (!a || !b || !all || !empty)
		goto out;
	for (uint64_t v = 0; v < 20000; v++) {
		uint64_t x = v * v % 1000003;

		delay_hist_add(v % 2 ? a : b, x);
		delay_hist_add(all, x);
	}
	delay_hist_merge(a, empty); /* no-op */
	delay_hist_merge(empty, b); /* into an empty one: min and max taken as they are */
	CHECK(empty->min == b->min && empty->max == b->max && empty->n == b->n);
	delay_hist_merge(a, b);
	CHECK(a->n == all->n && a->min == all->min && a->max == all->max);
	CHECK(a->sum == all->sum);
	CHECK(memcmp(a->bucket, all->bucket, sizeof(a->bucket)) == 0);
out:
	free(a);
	free(b);
	free(all);
	free(empty);
}

/* A 10 s sample among a thousand of 1 ms: nothing clipped, max 10 s, p99.9 reaches it. */
static void test_nothing_clipped(void)
{
	struct delay_hist *h = hist_new();
	char line[256];
	FILE *f;

	if (!h)
		return;
	for (int i = 0; i < 999; i++)
		delay_hist_add(h, 1000);
	delay_hist_add(h, 10000000);
	CHECK(delay_hist_quantile(h, 0.999) <= 1000 * (1 + 1.0 / 32)); /* rank 999: still 1 ms */
	delay_hist_add(h, 10000000);
	CHECK(delay_hist_quantile(h, 0.999) >= 10000000 * (1 - 1.0 / 32));
	CHECK(delay_hist_quantile(h, 0.999) <= 10000000);
	f = tmpfile();
	CHECK(f != NULL);
	if (f) {
		delay_hist_print(h, f, "DELAY path=test");
		rewind(f);
		CHECK(fgets(line, sizeof(line), f) != NULL);
		/* 1000 µs is in the bucket 992..1007 */
		CHECK(strstr(line, "DELAY path=test n=1001 p50_ms=1.01 ") == line);
		CHECK(strstr(line, " max_ms=10000.00\n") != NULL);
		fclose(f);
	}
	free(h);
}

/* Matching by index: delays, a duplicate, loss inside the window, frames outside it. */
static void test_track_index(void)
{
	struct delay_hist *h = hist_new();
	struct delay_track t;
	uint64_t sent, lost;
	uint8_t bytes[8];

	if (!h || delay_track_init(&t, 10) < 0)
		goto out;
	for (uint32_t i = 0; i < 10; i++) {
		if (i == 2)
			delay_track_window_start(&t);
		if (i == 8)
			delay_track_window_end(&t);
		CHECK_EQ_INT(delay_track_sent(&t, 1000 * i), i);
	}
	CHECK_EQ_INT(delay_track_sent(&t, 1), DELAY_TRACK_NONE); /* full */
	delay_track_put_seq(bytes, 3);
	CHECK_EQ_INT(delay_track_get_seq(bytes, 8), 3);
	CHECK_EQ_INT(delay_track_get_seq(bytes, 7), DELAY_TRACK_NONE);
	CHECK_EQ_INT(delay_track_arrived(&t, 3, 3500, h), 3);
	CHECK_EQ_INT(delay_track_arrived(&t, 3, 3600, h), DELAY_TRACK_NONE);
	CHECK_EQ_INT(t.dups, 1);
	CHECK_EQ_INT(delay_track_arrived(&t, 1, 9000, h), 1); /* outside the window */
	CHECK_EQ_INT(h->n, 1);
	CHECK_EQ_INT(h->max, 500);
	delay_track_count(&t, &sent, &lost);
	CHECK_EQ_INT(sent, 6);
	CHECK_EQ_INT(lost, 5);
out:
	delay_track_free(&t);
	free(h);
}

/* Matching by timestamp: anchored on the first, steps of 160, a resync after a marked gap and
 * after a clock jump keeps the delay, a frame sent after its arrival falls back to arrival
 * order. */
static void test_track_ts(void)
{
	struct delay_hist *h = hist_new();
	struct delay_track t;

	if (!h || delay_track_init(&t, 100) < 0)
		goto out;
	for (uint32_t i = 0; i < 20; i++)
		delay_track_sent(&t, 20000 * i);
	CHECK_EQ_INT(delay_track_index_ts(&t, 5000, 160), 0);
	CHECK_EQ_INT(delay_track_arrived(&t, 0, 3000, h), 0);
	CHECK_EQ_INT(delay_track_index_ts(&t, 5000 + 160 * 4 + 10, 160), 4);
	CHECK_EQ_INT(delay_track_arrived(&t, 4, 83000, h), 4);
	CHECK_EQ_INT(delay_track_index_ts(&t, 4000, 160), DELAY_TRACK_NONE); /* before the anchor */
	/* frames 5 and 6 dropped without their time, then a marker: the packet is 7 (3 ms) */
	CHECK_EQ_INT(delay_track_name_ts(&t, 77777, 160, true, 143000), 7);
	CHECK_EQ_INT(t.resyncs, 1);
	CHECK_EQ_INT(delay_track_arrived(&t, 7, 143000, h), 7);
	CHECK_EQ_INT(delay_track_name_ts(&t, 77777 + 160, 160, false, 163000), 8);
	CHECK_EQ_INT(delay_track_arrived(&t, 8, 163000, h), 8);
	/* a timestamp 40 frames on names a frame not sent yet: re-anchored on the nearest delay */
	CHECK_EQ_INT(delay_track_name_ts(&t, 77777 + 160 * 40, 160, false, 184000), 9);
	CHECK_EQ_INT(t.resyncs, 2);
	CHECK_EQ_INT(delay_track_name_ts(&t, 77777 + 160 * 41, 160, false, 204000), 10);
	/* index 19 was sent at 380 ms: an arrival at 210 ms cannot be it; the oldest unmatched is 1 */
	CHECK_EQ_INT(delay_track_arrived(&t, 19, 210000, h), 1);
	CHECK_EQ_INT(t.fallbacks, 1);
	CHECK_EQ_INT(h->n, 5);
out:
	delay_track_free(&t);
	free(h);
}

/* An echo's track numbered after another's: frames never echoed are neither sent nor lost. */
static void test_track_sent_at(void)
{
	struct delay_hist *h = hist_new();
	struct delay_track t;
	uint64_t sent, lost;

	if (!h || delay_track_init(&t, 10) < 0)
		goto out;
	delay_track_window_start(&t);
	CHECK(delay_track_sent_at(&t, 2, 100));
	CHECK(!delay_track_sent_at(&t, 2, 100)); /* twice */
	CHECK(!delay_track_sent_at(&t, 10, 100)); /* beyond */
	CHECK(delay_track_sent_at(&t, 5, 200));
	CHECK_EQ_INT(t.n_sent, 6);
	CHECK_EQ_INT(delay_track_index_ts(&t, 1000, 20), 2); /* anchored on the oldest sent */
	CHECK_EQ_INT(delay_track_arrived(&t, 3, 300, h), 2); /* 3 never sent: arrival order */
	delay_track_window_end(&t);
	delay_track_count(&t, &sent, &lost);
	CHECK_EQ_INT(sent, 2);
	CHECK_EQ_INT(lost, 1);
out:
	delay_track_free(&t);
	free(h);
}

int main(void)
{
	TEST_RUN(test_bucket_edges);
	TEST_RUN(test_top_of_range);
	TEST_RUN(test_quantiles_uniform);
	TEST_RUN(test_merge);
	TEST_RUN(test_nothing_clipped);
	TEST_RUN(test_track_index);
	TEST_RUN(test_track_ts);
	TEST_RUN(test_track_sent_at);
	return TEST_DONE();
}
