/*
 * delay_hist.h - an uncapped delay histogram for the benchmark tools (header only: the tools
 * are single files).
 *
 * Samples are microseconds (uint64_t). Buckets are log-linear: values below 64 µs have a bucket
 * each; above, every power of two is cut into 32 buckets, so a bucket is at most ~3 % wide and
 * the largest representable value is 2^64 - 1: nothing is clipped into a last bucket. The exact
 * minimum, maximum and count are kept beside the buckets. A percentile is reported as the upper
 * edge of its bucket (never above the exact maximum).
 *
 *   struct delay_hist h = {0};
 *   delay_hist_add(&h, us);
 *   delay_hist_print(&h, stdout, "DELAY path=worker dir=rtp_to_rtmp legs=100");
 *     -> DELAY path=worker dir=rtp_to_rtmp legs=100 n=49800 p50_ms=0.41 p90_ms=0.77
 *        p99_ms=1.93 p999_ms=4.10 max_ms=6.02
 */
#ifndef RS_DELAY_HIST_H
#define RS_DELAY_HIST_H

#include <stdint.h>
#include <stdio.h>

#define DELAY_HIST_SUB	    32u
#define DELAY_HIST_LINEAR   64u
#define DELAY_HIST_BUCKETS  (DELAY_HIST_LINEAR + (64u - 6u) * DELAY_HIST_SUB)

struct delay_hist {
	uint64_t bucket[DELAY_HIST_BUCKETS];
	uint64_t n, min, max;
	double sum;
};

static inline unsigned delay_hist_index(uint64_t v)
{
	unsigned msb;

	if (v < DELAY_HIST_LINEAR)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
	return DELAY_HIST_LINEAR + (msb - 6u) * DELAY_HIST_SUB +
	       (unsigned)((v >> (msb - 5u)) & (DELAY_HIST_SUB - 1u));
}

/* The largest value that falls into bucket @i. */
static inline uint64_t delay_hist_upper(unsigned i)
{
	unsigned msb, sub;
	uint64_t base;

	if (i < DELAY_HIST_LINEAR)
		return i;
	msb = (i - DELAY_HIST_LINEAR) / DELAY_HIST_SUB + 6u;
	sub = (i - DELAY_HIST_LINEAR) % DELAY_HIST_SUB;
	base = (1ull << msb) + ((uint64_t)sub << (msb - 5u));
	return base + ((1ull << (msb - 5u)) - 1u);
}

static inline void delay_hist_add(struct delay_hist *h, uint64_t us)
{
	if (!h->n || us < h->min)
		h->min = us;
	if (us > h->max)
		h->max = us;
	h->n++;
	h->sum += (double)us;
	h->bucket[delay_hist_index(us)]++;
}

/* Adds every sample of @src into @dst. */
static inline void delay_hist_merge(struct delay_hist *dst, const struct delay_hist *src)
{
	if (!src->n)
		return;
	if (!dst->n || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->n += src->n;
	dst->sum += src->sum;
	for (unsigned i = 0; i < DELAY_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
}

/* The @q quantile (0..1) in µs; 0 without samples. */
static inline uint64_t delay_hist_quantile(const struct delay_hist *h, double q)
{
	uint64_t rank, acc = 0;

	if (!h->n)
		return 0;
	rank = (uint64_t)(q * (double)h->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->n)
		rank = h->n;
	for (unsigned i = 0; i < DELAY_HIST_BUCKETS; i++) {
		acc += h->bucket[i];
		if (acc >= rank) {
			uint64_t u = delay_hist_upper(i);

			return u > h->max ? h->max : u < h->min ? h->min : u;
		}
	}
	return h->max;
}

/* One line: @prefix, then n and p50/p90/p99/p99.9/max in ms (two decimals). */
static inline void delay_hist_print(const struct delay_hist *h, FILE *f, const char *prefix)
{
	fprintf(f, "%s n=%llu p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f\n",
		prefix, (unsigned long long)h->n, delay_hist_quantile(h, 0.5) / 1000.0,
		delay_hist_quantile(h, 0.9) / 1000.0, delay_hist_quantile(h, 0.99) / 1000.0,
		delay_hist_quantile(h, 0.999) / 1000.0, (double)h->max / 1000.0);
}

#endif
