/*
 * test_rtmp_chunk_limits.c - the chunk stream reader and writer at their edges: fragmented input
 * (every proper prefix of a chunk), Abort, every reader limit and protocol error, memory that
 * follows the bytes received rather than the announced length, and the writer's argument errors.
 * Round trips and header forms are in test_rtmp_chunk.c; the shared encoders and feeders in
 * rtmp_chunk_fixture.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define HAVE_MALLINFO2 1
#endif

#include "harness.h"
#include "rtmp_chunk.h"
#include "rtmp_chunk_fixture.h"

/* Every proper prefix of a chunk returns 0 and consumes nothing, on one reader. */
static void prefixes(const uint8_t *in, size_t n, size_t complete_at, const struct rtmp_msg *want)
{
	struct rtmp_chunk_reader *r = rtmp_chunk_reader_new(&def_lim);
	struct rtmp_msg m;
	size_t used = 0, bad = 0;

	CHECK(r);
	if (!r)
		return;
	for (size_t k = 0; k < complete_at; k++) {
		used = 77;
		if (rtmp_chunk_read(r, in, k, &used, &m) != 0 || used != 0) {
			if (!bad++)
				fprintf(stderr, "  prefix of %zu bytes: used %zu\n", k, used);
		}
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(rtmp_chunk_read(r, in, n, &used, &m), 1);
	CHECK_EQ_INT(used, complete_at);
	CHECK(same_msg(&m, want));
	rtmp_chunk_reader_destroy(&r);
}

static void test_partial_headers_and_payloads(void)
{
	uint8_t *p = pattern(300, 10);
	struct buf b = {0};
	struct rtmp_msg want;

	/* 1-byte basic header, type 0, one chunk. */
	want = mkmsg(3, 9, 1, RTMP_MSG_AUDIO, p, 100);
	t_fmt0(&b, 3, 9, 100, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 100);
	prefixes(buf_head(&b), buf_used(&b), buf_used(&b), &want);

	/* 2-byte and 3-byte basic headers with an extended timestamp. */
	buf_reset(&b);
	want = mkmsg(200, 0x7fffffff, 1, RTMP_MSG_AUDIO, p, 10);
	t_fmt0(&b, 200, 0x7fffffff, 10, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 10);
	CHECK_EQ_INT(buf_used(&b), 2 + 11 + 4 + 10);
	prefixes(buf_head(&b), buf_used(&b), buf_used(&b), &want);
	buf_reset(&b);
	want = mkmsg(40000, 0xffffff, 1, RTMP_MSG_AUDIO, p, 10);
	t_fmt0(&b, 40000, 0xffffff, 10, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 10);
	CHECK_EQ_INT(buf_used(&b), 3 + 11 + 4 + 10);
	prefixes(buf_head(&b), buf_used(&b), buf_used(&b), &want);

	/* Two chunks: a prefix with the first chunk whole consumes exactly that chunk. */
	buf_reset(&b);
	t_fmt0(&b, 3, 9, 300, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 128);
	t_fmt3(&b, 3);
	t_put(&b, p + 128, 128);
	t_fmt3(&b, 3);
	t_put(&b, p + 256, 44);
	{
		struct rtmp_chunk_reader *r = rtmp_chunk_reader_new(&def_lim);
		struct rtmp_msg m;
		size_t used = 0;
		const uint8_t *in = buf_head(&b);

		CHECK(r);
		if (!r)
			goto out;
		CHECK_EQ_INT(rtmp_chunk_read(r, in, 12 + 127, &used, &m), 0);
		CHECK_EQ_INT(used, 0);
		CHECK_EQ_INT(rtmp_chunk_read(r, in, 12 + 128 + 100, &used, &m), 0);
		CHECK_EQ_INT(used, 12 + 128);
		in += used;
		CHECK_EQ_INT(rtmp_chunk_read(r, in, 0, &used, &m), 0);
		CHECK_EQ_INT(used, 0);
		CHECK_EQ_INT(rtmp_chunk_read(r, in, 1, &used, &m), 0);
		CHECK_EQ_INT(used, 0);
		CHECK_EQ_INT(rtmp_chunk_read(r, in, 129 + 1 + 43, &used, &m), 0);
		CHECK_EQ_INT(used, 129);
		in += used;
		CHECK_EQ_INT(rtmp_chunk_read(r, in, 45, &used, &m), 1);
		CHECK_EQ_INT(used, 45);
		want = mkmsg(3, 9, 1, RTMP_MSG_AUDIO, p, 300);
		CHECK(same_msg(&m, &want));
		rtmp_chunk_reader_destroy(&r);
	}
out:
	buf_free(&b);
	free(p);
}

/* ---- Abort ------------------------------------------------------------------------------ */

static void test_abort(void)
{
	uint8_t *p = pattern(300, 11);
	static const uint8_t small[] = {1, 2, 3}, ab4[] = {0, 0, 0, 4};
	struct buf b = {0};
	struct rtmp_chunk_reader *r = rtmp_chunk_reader_new(&def_lim);
	struct rtmp_msg m, want;
	size_t used = 0;

	CHECK(r);
	if (!r)
		goto out;
	/* Direct call: half a message on csid 4, abort, a new message on csid 4. */
	t_fmt0(&b, 4, 50, 300, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 128);
	CHECK_EQ_INT(rtmp_chunk_read(r, buf_head(&b), buf_used(&b), &used, &m), 0);
	CHECK_EQ_INT(used, buf_used(&b));
	rtmp_chunk_reader_abort(r, 4);
	rtmp_chunk_reader_abort(r, 999); /* unknown: ignored */
	buf_reset(&b);
	t_fmt0(&b, 4, 60, 3, RTMP_MSG_AUDIO, 1);
	t_put(&b, small, 3);
	CHECK_EQ_INT(rtmp_chunk_read(r, buf_head(&b), buf_used(&b), &used, &m), 1);
	CHECK_EQ_INT(used, buf_used(&b));
	want = mkmsg(4, 60, 1, RTMP_MSG_AUDIO, small, 3);
	CHECK(same_msg(&m, &want));

	/* After an abort a type 1 header may start the next message too. */
	buf_reset(&b);
	t_fmt1(&b, 4, 5, 300, RTMP_MSG_VIDEO);
	t_put(&b, p, 128);
	CHECK_EQ_INT(rtmp_chunk_read(r, buf_head(&b), buf_used(&b), &used, &m), 0);
	rtmp_chunk_reader_abort(r, 4);
	buf_reset(&b);
	t_fmt1(&b, 4, 5, 3, RTMP_MSG_AUDIO);
	t_put(&b, small, 3);
	CHECK_EQ_INT(rtmp_chunk_read(r, buf_head(&b), buf_used(&b), &used, &m), 1);
	CHECK_EQ_INT(m.len, 3);
	CHECK_EQ_INT(m.type, RTMP_MSG_AUDIO);
	CHECK(m.len == 3 && memcmp(m.data, small, 3) == 0);
	rtmp_chunk_reader_destroy(&r);

	/* Through an Abort message on csid 2, applied by the feeding loop. */
	buf_reset(&b);
	{
		struct rtmp_msg w[2];

		t_fmt0(&b, 4, 50, 300, RTMP_MSG_AUDIO, 1);
		t_put(&b, p, 128);
		t_fmt0(&b, 2, 0, 4, RTMP_MSG_ABORT, 0);
		t_put(&b, ab4, 4);
		t_fmt0(&b, 4, 70, 3, RTMP_MSG_AUDIO, 1);
		t_put(&b, small, 3);
		w[0] = mkmsg(2, 0, 0, RTMP_MSG_ABORT, ab4, 4);
		w[1] = mkmsg(4, 70, 1, RTMP_MSG_AUDIO, small, 3);
		expect_decode(NULL, buf_head(&b), buf_used(&b), w, 2, 0);
	}
out:
	buf_free(&b);
	free(p);
}

/* ---- limits and protocol errors --------------------------------------------------------- */

/* Decodes @in with one reader in one piece; returns the result of the last read. */
static int read_err(const struct rtmp_chunk_limits *lim, const struct buf *in, char *err,
		    size_t errlen, size_t *nmsgs)
{
	struct rtmp_chunk_reader *r = rtmp_chunk_reader_new(lim);
	struct recs got = {0};
	int rc;

	if (!r)
		abort();
	rc = feed(r, buf_head(in), buf_used(in), FEED_WHOLE, 0, &got);
	snprintf(err, errlen, "%s", rtmp_chunk_reader_error(r));
	if (nmsgs)
		*nmsgs = got.n;
	recs_free(&got);
	rtmp_chunk_reader_destroy(&r);
	return rc;
}

static void test_limit_message_length(void)
{
	struct rtmp_chunk_limits lim = def_lim;
	uint8_t *p = pattern(1001, 12);
	struct buf b = {0};
	char err[160];
	size_t n = 0;

	lim.max_message = 1000;
	t_fmt0(&b, 3, 0, 1000, RTMP_MSG_AUDIO, 1); /* exactly the limit: fine */
	for (uint32_t off = 0; off < 1000; off += 128) {
		if (off)
			t_fmt3(&b, 3);
		t_put(&b, p + off, 1000 - off < 128 ? 1000 - off : 128);
	}
	CHECK_EQ_INT(read_err(&lim, &b, err, sizeof(err), &n), 0);
	CHECK_EQ_INT(n, 1);

	buf_reset(&b);
	t_fmt0(&b, 3, 0, 1001, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 128);
	CHECK_EQ_INT(read_err(&lim, &b, err, sizeof(err), &n), -E2BIG);
	CHECK(strstr(err, "message length above limit") != NULL);
	CHECK(strstr(err, "1001") != NULL);
	CHECK_EQ_INT(n, 0);

	/* Through a type 1 header, and the largest length the wire can say. */
	buf_reset(&b);
	t_fmt0(&b, 3, 0, 1, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 1);
	t_fmt1(&b, 3, 0, 0xffffff, RTMP_MSG_AUDIO);
	CHECK_EQ_INT(read_err(&lim, &b, err, sizeof(err), &n), -E2BIG);
	CHECK(strstr(err, "16777215") != NULL);
	CHECK_EQ_INT(n, 1);
	buf_free(&b);
	free(p);
}

static void test_limit_streams(void)
{
	struct rtmp_chunk_limits lim = def_lim;
	static const uint8_t p[] = {1};
	struct buf b = {0};
	char err[160];
	size_t n = 0;

	lim.max_streams = 3;
	for (uint32_t c = 3; c <= 5; c++) {
		t_fmt0(&b, c, 0, 1, RTMP_MSG_AUDIO, 1);
		t_put(&b, p, 1);
	}
	/* Known streams go on working at the limit. */
	t_fmt3(&b, 4);
	t_put(&b, p, 1);
	CHECK_EQ_INT(read_err(&lim, &b, err, sizeof(err), &n), 0);
	CHECK_EQ_INT(n, 4);
	t_fmt0(&b, 6, 0, 1, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 1);
	CHECK_EQ_INT(read_err(&lim, &b, err, sizeof(err), &n), -E2BIG);
	CHECK(strstr(err, "too many chunk streams") != NULL);
	CHECK_EQ_INT(n, 4);

	/* max_streams 0 behaves as 1. */
	lim.max_streams = 0;
	buf_reset(&b);
	t_fmt0(&b, 3, 0, 1, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 1);
	t_fmt0(&b, 4, 0, 1, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 1);
	CHECK_EQ_INT(read_err(&lim, &b, err, sizeof(err), &n), -E2BIG);
	CHECK_EQ_INT(n, 1);
	buf_free(&b);
}

static void test_limit_reader_chunk_size(void)
{
	struct rtmp_chunk_limits lim = def_lim;
	struct rtmp_chunk_reader *r;
	uint8_t v[4];
	struct buf b = {0};
	char err[160];

	lim.max_chunk_size = 4096;
	r = rtmp_chunk_reader_new(&lim);
	CHECK(r);
	if (!r)
		return;
	CHECK_EQ_INT(rtmp_chunk_reader_set_chunk_size(r, 0), -EINVAL);
	CHECK(strlen(rtmp_chunk_reader_error(r)) > 0);
	CHECK_EQ_INT(rtmp_chunk_reader_set_chunk_size(r, 0x80000000u), -EINVAL);
	CHECK_EQ_INT(rtmp_chunk_reader_set_chunk_size(r, 0xffffffffu), -EINVAL);
	CHECK_EQ_INT(rtmp_chunk_reader_set_chunk_size(r, 4097), -E2BIG);
	CHECK(strstr(rtmp_chunk_reader_error(r), "4097") != NULL);
	CHECK_EQ_INT(rtmp_chunk_reader_set_chunk_size(r, 0x7fffffffu), -E2BIG);
	CHECK_EQ_INT(rtmp_chunk_reader_set_chunk_size(r, 4096), 0);
	CHECK_EQ_INT(rtmp_chunk_reader_set_chunk_size(r, 1), 0);
	rtmp_chunk_reader_destroy(&r);

	/* Through a Set Chunk Size message in the feeding loop. */
	put_scs(&b, 8192, v);
	CHECK_EQ_INT(read_err(&lim, &b, err, sizeof(err), NULL), -E2BIG);
	CHECK(strstr(err, "8192") != NULL);
	buf_free(&b);
}

/*
 * A chunk stream may start with a type 1 or 2 header (librtmp opens its acknowledgement stream
 * with type 1): fields not seen yet start at zero. Type 3 has nothing to start from.
 */
static void test_first_chunk_of_a_stream(void)
{
	static const uint8_t p[] = {1, 2};
	const struct rtmp_msg want[] = {
	    mkmsg(2, 7, 0, RTMP_MSG_ACK, p, 2),	  /* type 1 first: stream 0, base 0 + delta */
	    mkmsg(2, 17, 0, RTMP_MSG_ACK, p, 2),  /* then as usual */
	    mkmsg(5, 3, 1, RTMP_MSG_AUDIO, p, 2), /* another stream, type 0 */
	};
	const struct rtmp_msg want2[] = {mkmsg(6, 9, 0, 0, NULL, 0)}; /* type 2 first: empty */
	struct buf b = {0};
	char err[160];

	t_fmt1(&b, 2, 7, 2, RTMP_MSG_ACK);
	t_put(&b, p, 2);
	t_fmt1(&b, 2, 10, 2, RTMP_MSG_ACK);
	t_put(&b, p, 2);
	t_fmt0(&b, 5, 3, 2, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 2);
	expect_decode(NULL, buf_head(&b), buf_used(&b), want, sizeof(want) / sizeof(want[0]), 0);
	buf_reset(&b);
	t_fmt2(&b, 6, 9);
	expect_decode(NULL, buf_head(&b), buf_used(&b), want2, 1, 0);
	/* type 3 first, alone or after other streams */
	buf_reset(&b);
	t_fmt3(&b, 5);
	t_put(&b, p, 2);
	CHECK_EQ_INT(read_err(&def_lim, &b, err, sizeof(err), NULL), -EPROTO);
	CHECK(strstr(err, "type 3 chunk without a previous header") != NULL);
	buf_reset(&b);
	t_fmt0(&b, 3, 0, 2, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 2);
	t_fmt3(&b, 330);
	t_put(&b, p, 2);
	CHECK_EQ_INT(read_err(&def_lim, &b, err, sizeof(err), NULL), -EPROTO);
	buf_free(&b);
}

static void test_new_header_mid_message(void)
{
	uint8_t *p = pattern(300, 13);
	struct buf b = {0};
	char err[160];
	size_t n = 9;

	for (unsigned fmt = 0; fmt <= 2; fmt++) {
		buf_reset(&b);
		t_fmt0(&b, 3, 0, 300, RTMP_MSG_AUDIO, 1);
		t_put(&b, p, 128);
		if (fmt == 0)
			t_fmt0(&b, 3, 0, 10, RTMP_MSG_AUDIO, 1);
		else if (fmt == 1)
			t_fmt1(&b, 3, 0, 10, RTMP_MSG_AUDIO);
		else
			t_fmt2(&b, 3, 0);
		t_put(&b, p, 10);
		CHECK_EQ_INT(read_err(&def_lim, &b, err, sizeof(err), &n), -EPROTO);
		CHECK(strstr(err, "middle of a message") != NULL);
		CHECK_EQ_INT(n, 0);
	}
	/* A type 0 header on another stream in the middle is fine (interleaving). */
	buf_reset(&b);
	t_fmt0(&b, 3, 0, 300, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 128);
	t_fmt0(&b, 4, 0, 10, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 10);
	CHECK_EQ_INT(read_err(&def_lim, &b, err, sizeof(err), &n), 0);
	CHECK_EQ_INT(n, 1);
	buf_free(&b);
	free(p);
}

#ifdef HAVE_MALLINFO2
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}
#endif

/*
 * A message announcing 1 MiB of which only 200 payload bytes arrive (and, at chunk size 64 KiB,
 * one whole chunk and a bit): memory follows the bytes received, not the announced length.
 * The heap check uses mallinfo2() where there is one; under ASan it sees nothing and passes.
 */
static void announce_1mib(uint32_t chunk_size, uint32_t sent, size_t heap_limit)
{
	struct rtmp_chunk_limits lim = def_lim;
	struct rtmp_chunk_reader *r;
	uint8_t *p = pattern(sent, sent);
	struct recs got = {0};
	struct buf b = {0};
#ifdef HAVE_MALLINFO2
	size_t before, after;
#endif

	lim.max_message = 2u << 20;
	t_fmt0(&b, 3, 0, 1u << 20, RTMP_MSG_VIDEO, 1);
	for (uint32_t off = 0; off < sent; off += chunk_size) {
		if (off)
			t_fmt3(&b, 3);
		t_put(&b, p + off, sent - off < chunk_size ? sent - off : chunk_size);
	}
#ifdef HAVE_MALLINFO2
	before = heap_in_use();
#endif
	r = rtmp_chunk_reader_new(&lim);
	CHECK(r);
	if (!r)
		goto out;
	CHECK_EQ_INT(rtmp_chunk_reader_set_chunk_size(r, chunk_size), 0);
	CHECK_EQ_INT(feed(r, buf_head(&b), buf_used(&b), FEED_RANDOM, sent, &got), 0);
	CHECK_EQ_INT(got.n, 0);
#ifdef HAVE_MALLINFO2
	after = heap_in_use();
	if (after > before + heap_limit)
		fprintf(stderr, "  chunk size %u, %u bytes sent: heap grew by %zu\n", chunk_size,
			sent, after - before);
	CHECK(after <= before + heap_limit);
#else
	(void)heap_limit;
#endif
	rtmp_chunk_reader_destroy(&r);
out:
	recs_free(&got);
	buf_free(&b);
	free(p);
}

static void test_memory_follows_bytes(void)
{
	announce_1mib(128, 200, 64 * 1024);
	announce_1mib(4096, 200, 64 * 1024);
	announce_1mib(65536, 200, 64 * 1024);
	announce_1mib(65536, 65536 + 100, 256 * 1024);
}

/* ---- writer arguments ------------------------------------------------------------------- */

static void test_writer_bad_csid(void)
{
	static const uint8_t p[] = {1};
	static const uint32_t bad[] = {0, 1, 65600, 0xffffffffu};
	struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();
	struct buf out = {0};

	CHECK(w);
	if (!w)
		return;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rtmp_msg m = mkmsg(bad[i], 0, 0, RTMP_MSG_AUDIO, p, 1);

		CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m), -EINVAL);
		CHECK_EQ_INT(buf_used(&out), 0);
	}
	{
		struct rtmp_msg m = mkmsg(65599, 0, 0, RTMP_MSG_AUDIO, p, 1);

		CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m), 0);
		m.csid = 2;
		CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m), 0);
	}
	buf_free(&out);
	rtmp_chunk_writer_destroy(&w);
	rtmp_chunk_writer_destroy(&w); /* NULL-safe */
	rtmp_chunk_writer_destroy(NULL);
	{
		struct rtmp_chunk_reader *r = NULL;

		rtmp_chunk_reader_destroy(&r);
		rtmp_chunk_reader_destroy(NULL);
	}
}

/* A timestamp going backwards (or wrapping back by more than 2^31) gets a type 0 header. */
static void test_writer_timestamp_backwards(void)
{
	static const uint8_t p[] = {1, 2};
	struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();
	struct buf out = {0};
	const struct rtmp_msg m[] = {
	    mkmsg(6, 5000, 1, RTMP_MSG_VIDEO, p, 2),
	    mkmsg(6, 4999, 1, RTMP_MSG_VIDEO, p, 2),	    /* 0 */
	    mkmsg(6, 5019, 1, RTMP_MSG_VIDEO, p, 2),	    /* 2 */
	    mkmsg(6, 0xfffffff0u, 1, RTMP_MSG_VIDEO, p, 2), /* 0: > 2^31 ahead means behind */
	    mkmsg(6, 0x10, 1, RTMP_MSG_VIDEO, p, 2),	    /* 2: wraps forward by 0x20 */
	    mkmsg(6, 0x30, 1, RTMP_MSG_VIDEO, p, 2),	    /* 3 */
	    mkmsg(6, 0x20, 1, RTMP_MSG_VIDEO, p, 2),	    /* 0 */
	};
	static const unsigned want_fmt[] = {0, 0, 2, 0, 2, 3, 0};

	CHECK(w);
	if (!w)
		return;
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		size_t before = buf_used(&out);

		CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m[i]), 0);
		if (buf_used(&out) > before &&
		    (unsigned)(buf_head(&out)[before] >> 6) != want_fmt[i])
			fprintf(stderr, "  message %zu: type %u, want %u\n", i,
				buf_head(&out)[before] >> 6, want_fmt[i]);
		CHECK(buf_used(&out) > before &&
		      (unsigned)(buf_head(&out)[before] >> 6) == want_fmt[i]);
	}
	expect_decode(NULL, buf_head(&out), buf_used(&out), m, sizeof(m) / sizeof(m[0]), 0);
	buf_free(&out);
	rtmp_chunk_writer_destroy(&w);
}

/* A zero-length message may come without a payload pointer (the reader hands them out so). */
static void test_writer_zero_length_null_data(void)
{
	struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();
	struct buf out = {0};
	struct rtmp_msg m = mkmsg(3, 1, 0, RTMP_MSG_DATA_AMF0, NULL, 0);

	CHECK(w);
	if (!w)
		return;
	CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m), 0);
	CHECK_EQ_INT(buf_used(&out), 12);
	expect_decode(NULL, buf_head(&out), buf_used(&out), &m, 1, 0);
	buf_free(&out);
	rtmp_chunk_writer_destroy(&w);
}

/*
 * A message longer than the 24-bit length field can say cannot be written: the writer must
 * refuse it rather than put a truncated length on the wire (which would desynchronise every
 * later chunk on the connection).
 */
static void test_writer_length_above_24_bits(void)
{
	struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();
	uint8_t *p = calloc(1, 0x1000000u);
	struct buf out = {0};
	struct rtmp_msg m = mkmsg(3, 0, 0, RTMP_MSG_VIDEO, p, 0x1000000u);

	CHECK(w && p);
	if (!w || !p)
		goto out;
	rtmp_chunk_writer_set_chunk_size(w, 65536);
	CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m), -EINVAL);
	CHECK_EQ_INT(buf_used(&out), 0);
	/* The largest length that fits is fine. */
	buf_reset(&out);
	m.len = 0xffffff;
	CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m), 0);
	CHECK(buf_used(&out) > 4 && rd_be24(buf_head(&out) + 4) == 0xffffff);
out:
	buf_free(&out);
	free(p);
	rtmp_chunk_writer_destroy(&w);
}

int main(void)
{
	TEST_RUN(test_partial_headers_and_payloads);
	TEST_RUN(test_abort);
	TEST_RUN(test_limit_message_length);
	TEST_RUN(test_limit_streams);
	TEST_RUN(test_limit_reader_chunk_size);
	TEST_RUN(test_first_chunk_of_a_stream);
	TEST_RUN(test_new_header_mid_message);
	TEST_RUN(test_memory_follows_bytes);
	TEST_RUN(test_writer_bad_csid);
	TEST_RUN(test_writer_timestamp_backwards);
	TEST_RUN(test_writer_zero_length_null_data);
	TEST_RUN(test_writer_length_above_24_bits);
	return TEST_DONE();
}
