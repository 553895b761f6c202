/*
 * test_rtmp_chunk.c - the chunk stream reader and writer: round trips through every header type
 * the writer picks, hand-built chunks of every header type and basic header form, extended
 * timestamps (continuation chunks with and without the repeated 4 bytes), interleaved chunk
 * streams and chunk size changes. Fragmented input, Abort, limits, protocol errors and writer
 * argument errors are in test_rtmp_chunk_limits.c; the shared encoders and feeders in
 * rtmp_chunk_fixture.h.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "rtmp_chunk.h"
#include "rtmp_chunk_fixture.h"

/* ---- writer -> reader round trips ------------------------------------------------------- */

static const uint32_t rt_csids[] = {2, 3, 4, 6, 15, 16, 63, 64, 319, 320, 65599};
static const uint32_t rt_lens[] = {0, 1, 127, 128, 129, 5000};
#define N_CSIDS	    (sizeof(rt_csids) / sizeof(rt_csids[0]))
#define N_LENS	    (sizeof(rt_lens) / sizeof(rt_lens[0]))
#define RT_PER_CSID 16

/*
 * Message @k on the @j-th chunk stream. Per stream: k=0 starts (type 0), lengths change every
 * third message (type 1), deltas are 20 with a 7 every fifth (type 2 on a change, type 3 on a
 * repeat), k=9 goes back in time and k=11 changes the message stream id (type 0), k=13 changes
 * the type (type 1). csid 4 uses deltas of 2^24 and more (extended, on types 1-3), csid 6 starts
 * at 0xffffff (extended type 0), csid 15 wraps past 2^32.
 */
static uint32_t rt_ts(size_t j, size_t k)
{
	uint32_t ts, scale = rt_csids[j] == 4 ? 0x01000000u : 1u;

	if (rt_csids[j] == 6)
		ts = 0xffffffu;
	else if (rt_csids[j] == 15)
		ts = 0xffffff00u;
	else
		ts = (uint32_t)j * 1000u;
	for (size_t i = 1; i <= k; i++) {
		if (i == 9)
			ts -= 100;
		else
			ts += (i % 5 == 4 ? 7u : 20u) * scale;
	}
	return ts;
}

/* The header type the writer is specified to pick (compression state kept for csid < 16). */
struct wmodel {
	bool used;
	unsigned fmt;
	uint32_t ts, delta, len, sid;
	uint8_t type;
};

static unsigned model_fmt(struct wmodel *s, const struct rtmp_msg *m)
{
	unsigned fmt = 0;
	uint32_t delta = m->timestamp - s->ts;

	if (s->used && s->sid == m->stream_id && (int32_t)delta >= 0) {
		if (s->len != m->len || s->type != m->type)
			fmt = 1;
		else if (s->fmt == 0 || delta != s->delta)
			fmt = 2;
		else
			fmt = 3;
	}
	s->used = true;
	s->fmt = fmt;
	s->delta = fmt ? delta : 0;
	s->ts = m->timestamp;
	s->len = m->len;
	s->type = m->type;
	s->sid = m->stream_id;
	return fmt;
}

static size_t basic_len(uint32_t csid)
{
	return csid < 64 ? 1 : csid < 320 ? 2 : 3;
}

/* Bytes the writer must produce for @m with header type @fmt at chunk size @cs. */
static size_t wire_len(const struct rtmp_msg *m, unsigned fmt, uint32_t field, uint32_t cs)
{
	static const size_t hl[4] = {11, 7, 3, 0};
	size_t chunks = m->len ? (m->len + cs - 1) / cs : 1, ext = field >= EXT ? 4 : 0;

	return basic_len(m->csid) + hl[fmt] + ext + (chunks - 1) * (basic_len(m->csid) + ext) +
	       m->len;
}

static void roundtrip_at(uint32_t chunk_size)
{
	struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();
	struct wmodel model[16];
	struct rtmp_msg *msgs;
	uint8_t *pay = pattern(5000 + N_CSIDS * RT_PER_CSID, chunk_size), scs[4];
	size_t n = 0, fmt_seen[4] = {0}, fmt_bad = 0, len_bad = 0;
	struct buf out = {0};
	char ctx[64];

	CHECK(w);
	if (!w)
		return;
	memset(model, 0, sizeof(model));
	msgs = calloc(1 + N_CSIDS * RT_PER_CSID, sizeof(*msgs));
	if (!msgs)
		abort();

	/* Set Chunk Size on csid 2 at the default size, then the writer switches. */
	wr_be32(scs, chunk_size);
	msgs[n++] = mkmsg(2, 0, 0, RTMP_MSG_SET_CHUNK_SIZE, scs, 4);
	for (size_t k = 0; k < RT_PER_CSID; k++) {
		for (size_t j = 0; j < N_CSIDS; j++) {
			uint32_t len = rt_lens[(k / 3 + j) % N_LENS];

			msgs[n++] = mkmsg(rt_csids[j], rt_ts(j, k), k >= 11 ? 1 : 0,
					  k >= 13 ? RTMP_MSG_VIDEO : RTMP_MSG_AUDIO,
					  pay + (k * N_CSIDS + j), len);
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct rtmp_msg *m = &msgs[i];
		size_t before = buf_used(&out);
		uint32_t cs = rtmp_chunk_writer_chunk_size(w);
		unsigned fmt, want_fmt = 0;
		uint32_t field;

		if (m->csid < 16) {
			struct wmodel prev = model[m->csid];

			want_fmt = model_fmt(&model[m->csid], m);
			field = want_fmt ? m->timestamp - prev.ts : m->timestamp;
		} else {
			field = m->timestamp;
		}
		CHECK_EQ_INT(rtmp_chunk_write(w, &out, m), 0);
		if (buf_used(&out) <= before)
			continue;
		fmt = buf_head(&out)[before] >> 6;
		fmt_seen[fmt]++;
		if (m->csid < 16 && fmt != want_fmt) {
			if (!fmt_bad++)
				fprintf(stderr, "  message %zu (csid %u ts %u): type %u, want %u\n",
					i, m->csid, m->timestamp, fmt, want_fmt);
		}
		if (fmt == want_fmt && buf_used(&out) - before != wire_len(m, fmt, field, cs)) {
			if (!len_bad++)
				fprintf(stderr, "  message %zu: %zu bytes on the wire, want %zu\n",
					i, buf_used(&out) - before, wire_len(m, fmt, field, cs));
		}
		if (i == 0) {
			rtmp_chunk_writer_set_chunk_size(w, chunk_size);
			CHECK_EQ_INT(rtmp_chunk_writer_chunk_size(w), chunk_size);
		}
	}
	CHECK_EQ_INT(fmt_bad, 0);
	CHECK_EQ_INT(len_bad, 0);
	for (int f = 0; f < 4; f++) {
		if (!fmt_seen[f])
			fprintf(stderr, "  chunk size %u: no type %d header written\n", chunk_size,
				f);
		CHECK(fmt_seen[f] > 0);
	}

	for (int mode = 0; mode < FEED_MODES; mode++) {
		struct rtmp_chunk_reader *r = rtmp_chunk_reader_new(&def_lim);
		struct recs got = {0};

		CHECK(r);
		if (!r)
			break;
		CHECK_EQ_INT(feed(r, buf_head(&out), buf_used(&out), (enum feed_mode)mode,
				  chunk_size + (uint32_t)mode, &got),
			     0);
		snprintf(ctx, sizeof(ctx), "chunk size %u, %s", chunk_size, feed_name[mode]);
		check_recs(&got, msgs, n, ctx);
		recs_free(&got);
		rtmp_chunk_reader_destroy(&r);
	}
	buf_free(&out);
	free(msgs);
	free(pay);
	rtmp_chunk_writer_destroy(&w);
	CHECK(w == NULL);
}

static void test_roundtrip_chunk_size_1(void)
{
	roundtrip_at(1);
}

static void test_roundtrip_chunk_size_128(void)
{
	roundtrip_at(128);
}

static void test_roundtrip_chunk_size_4096(void)
{
	roundtrip_at(4096);
}

static void test_roundtrip_chunk_size_65536(void)
{
	roundtrip_at(65536);
}

/* Exact bytes of the headers the writer picks. */
static void test_writer_header_bytes(void)
{
	static const uint8_t p[6] = {'a', 'b', 'c', 'd', 'e', 'f'};
	struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();
	struct buf out = {0}, want = {0};
	struct rtmp_msg seq[] = {
	    mkmsg(3, 1000, 0x01020304, RTMP_MSG_COMMAND_AMF0, p, 5), /* 0: first */
	    mkmsg(3, 1040, 0x01020304, RTMP_MSG_COMMAND_AMF0, p, 5), /* 2: after type 0 */
	    mkmsg(3, 1080, 0x01020304, RTMP_MSG_COMMAND_AMF0, p, 5), /* 3: same delta 40 */
	    mkmsg(3, 1113, 0x01020304, RTMP_MSG_COMMAND_AMF0, p, 5), /* 2: delta 33 */
	    mkmsg(3, 1133, 0x01020304, RTMP_MSG_COMMAND_AMF0, p, 6), /* 1: length */
	    mkmsg(3, 1153, 0x01020304, RTMP_MSG_DATA_AMF0, p, 6),    /* 1: type */
	    mkmsg(3, 1173, 0x01020304, RTMP_MSG_DATA_AMF0, p, 6),    /* 3: same delta 20 */
	    mkmsg(3, 1000, 0x01020304, RTMP_MSG_DATA_AMF0, p, 6),    /* 0: backwards */
	    mkmsg(3, 1010, 7, RTMP_MSG_DATA_AMF0, p, 6),	     /* 0: stream id */
	    mkmsg(3, 1010, 7, RTMP_MSG_DATA_AMF0, p, 6),	     /* 2: delta 0 after type 0 */
	    mkmsg(3, 1010, 7, RTMP_MSG_DATA_AMF0, p, 6),	     /* 3: delta 0 again */
	};

	CHECK(w);
	if (!w)
		return;
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
		CHECK_EQ_INT(rtmp_chunk_write(w, &out, &seq[i]), 0);

	t_fmt0(&want, 3, 1000, 5, RTMP_MSG_COMMAND_AMF0, 0x01020304);
	t_put(&want, p, 5);
	t_fmt2(&want, 3, 40);
	t_put(&want, p, 5);
	t_fmt3(&want, 3);
	t_put(&want, p, 5);
	t_fmt2(&want, 3, 33);
	t_put(&want, p, 5);
	t_fmt1(&want, 3, 20, 6, RTMP_MSG_COMMAND_AMF0);
	t_put(&want, p, 6);
	t_fmt1(&want, 3, 20, 6, RTMP_MSG_DATA_AMF0);
	t_put(&want, p, 6);
	t_fmt3(&want, 3);
	t_put(&want, p, 6);
	t_fmt0(&want, 3, 1000, 6, RTMP_MSG_DATA_AMF0, 0x01020304);
	t_put(&want, p, 6);
	t_fmt0(&want, 3, 1010, 6, RTMP_MSG_DATA_AMF0, 7);
	t_put(&want, p, 6);
	t_fmt2(&want, 3, 0);
	t_put(&want, p, 6);
	t_fmt3(&want, 3);
	t_put(&want, p, 6);

	CHECK_EQ_INT(buf_used(&out), buf_used(&want));
	CHECK(buf_used(&out) == buf_used(&want) &&
	      memcmp(buf_head(&out), buf_head(&want), buf_used(&want)) == 0);
	/* The stream id is little-endian on the wire. */
	CHECK_EQ_INT(buf_head(&out)[8], 0x04);
	CHECK_EQ_INT(buf_head(&out)[11], 0x01);
	expect_decode(NULL, buf_head(&out), buf_used(&out), seq, sizeof(seq) / sizeof(seq[0]), 0);

	buf_free(&out);
	buf_free(&want);
	rtmp_chunk_writer_destroy(&w);
}

/* The writer's basic headers: 1 byte below 64, 2 bytes below 320, 3 bytes up to 65599. */
static void test_writer_basic_header_forms(void)
{
	static const struct {
		uint32_t csid;
		uint8_t b[3];
		size_t n;
	} v[] = {
	    {2, {0x02}, 1},
	    {63, {0x3f}, 1},
	    {64, {0x00, 0x00}, 2},
	    {319, {0x00, 0xff}, 2},
	    {320, {0x01, 0x00, 0x01}, 3},
	    {65599, {0x01, 0xff, 0xff}, 3},
	    {1000, {0x01, 0xa8, 0x03}, 3},
	};
	static const uint8_t p[3] = {1, 2, 3};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();
		struct buf out = {0};
		struct rtmp_msg m = mkmsg(v[i].csid, 5, 1, RTMP_MSG_AUDIO, p, 3);

		CHECK(w);
		if (!w)
			return;
		CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m), 0);
		CHECK_EQ_INT(buf_used(&out), v[i].n + 11 + 3);
		CHECK(buf_used(&out) >= v[i].n && memcmp(buf_head(&out), v[i].b, v[i].n) == 0);
		expect_decode(NULL, buf_head(&out), buf_used(&out), &m, 1, 0);
		buf_free(&out);
		rtmp_chunk_writer_destroy(&w);
	}
}

/* ---- hand-built chunks ------------------------------------------------------------------ */

/* Literal fmt 0 chunks with every basic header form, and the 3-byte form of a low csid. */
static void test_reader_basic_header_forms(void)
{
	/* clang-format off */
	static const uint8_t in[] = {
	    /* csid 2, 1-byte form: ts 1, len 2, type 8, sid 1 */
	    0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x02, 0x08, 0x01, 0x00, 0x00, 0x00, 'a', 'b',
	    /* csid 63 */
	    0x3f, 0x00, 0x00, 0x02, 0x00, 0x00, 0x01, 0x09, 0x02, 0x00, 0x00, 0x00, 'c',
	    /* csid 64, 2-byte form */
	    0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x01, 0x12, 0x00, 0x00, 0x00, 0x00, 'd',
	    /* csid 319, 2-byte form */
	    0x00, 0xff, 0x00, 0x00, 0x04, 0x00, 0x00, 0x01, 0x14, 0x00, 0x00, 0x00, 0x00, 'e',
	    /* csid 320, 3-byte form */
	    0x01, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 'f',
	    /* csid 65599, 3-byte form; sid 0x04030201 little-endian */
	    0x01, 0xff, 0xff, 0x00, 0x00, 0x06, 0x00, 0x00, 0x01, 0x08, 0x01, 0x02, 0x03, 0x04, 'g',
	    /* csid 100 in the 2-byte form, then a type 3 chunk starting a new message on csid 100
	     * written in the (longer, still valid) 3-byte form: the same chunk stream */
	    0x00, 36, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x00, 0x00, 'h', 'i', 'j',
	    0xc1, 36, 0x00, 'k', 'l', 'm',
	};
	/* clang-format on */
	static const uint8_t ab[] = {'a', 'b'}, c[] = {'c'}, d[] = {'d'}, e[] = {'e'}, f[] = {'f'},
			     g[] = {'g'}, hij[] = {'h', 'i', 'j'}, klm[] = {'k', 'l', 'm'};
	const struct rtmp_msg want[] = {
	    mkmsg(2, 1, 1, 8, ab, 2),	  mkmsg(63, 2, 2, 9, c, 1),
	    mkmsg(64, 3, 0, 18, d, 1),	  mkmsg(319, 4, 0, 20, e, 1),
	    mkmsg(320, 5, 0, 8, f, 1),	  mkmsg(65599, 6, 0x04030201, 8, g, 1),
	    mkmsg(100, 10, 0, 8, hij, 3), mkmsg(100, 20, 0, 8, klm, 3),
	};

	expect_decode(NULL, in, sizeof(in), want, sizeof(want) / sizeof(want[0]), 0);
}

/* Types 0, 1, 2 and 3 on one chunk stream, each starting a message. */
static void test_reader_header_types(void)
{
	struct buf b = {0};
	uint8_t *p = pattern(300, 1);
	const struct rtmp_msg want[] = {
	    mkmsg(4, 1000, 1, RTMP_MSG_AUDIO, p, 3),
	    mkmsg(4, 1020, 1, RTMP_MSG_VIDEO, p + 3, 4),
	    mkmsg(4, 1050, 1, RTMP_MSG_VIDEO, p + 7, 4),
	    mkmsg(4, 1080, 1, RTMP_MSG_VIDEO, p + 11, 4),
	    mkmsg(4, 1080, 1, RTMP_MSG_VIDEO, p + 15, 4),   /* type 2 with delta 0 */
	    mkmsg(4, 1080, 1, RTMP_MSG_VIDEO, p + 19, 4),   /* type 3 repeating delta 0 */
	    mkmsg(4, 1180, 1, RTMP_MSG_AUDIO, p + 23, 200), /* type 1, two chunks */
	    mkmsg(4, 1280, 1, RTMP_MSG_AUDIO, p + 50, 200), /* type 3 new message, two chunks */
	};

	t_fmt0(&b, 4, 1000, 3, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 3);
	t_fmt1(&b, 4, 20, 4, RTMP_MSG_VIDEO);
	t_put(&b, p + 3, 4);
	t_fmt2(&b, 4, 30);
	t_put(&b, p + 7, 4);
	t_fmt3(&b, 4);
	t_put(&b, p + 11, 4);
	t_fmt2(&b, 4, 0);
	t_put(&b, p + 15, 4);
	t_fmt3(&b, 4);
	t_put(&b, p + 19, 4);
	t_fmt1(&b, 4, 100, 200, RTMP_MSG_AUDIO);
	t_put(&b, p + 23, 128);
	t_fmt3(&b, 4);
	t_put(&b, p + 23 + 128, 72);
	t_fmt3(&b, 4);
	t_put(&b, p + 50, 128);
	t_fmt3(&b, 4);
	t_put(&b, p + 50 + 128, 72);

	expect_decode(NULL, buf_head(&b), buf_used(&b), want, sizeof(want) / sizeof(want[0]), 0);
	buf_free(&b);
	free(p);
}

/* A type 3 chunk starting a message right after a type 0 header: its delta is the type 0
 * header's timestamp field (the absolute timestamp), so 100 -> 200 -> 300. */
static void test_reader_fmt3_after_fmt0(void)
{
	static const uint8_t p[] = {9, 8, 7, 6, 5, 4};
	struct buf b = {0};
	const struct rtmp_msg want[] = {
	    mkmsg(5, 100, 3, RTMP_MSG_AUDIO, p, 2),
	    mkmsg(5, 200, 3, RTMP_MSG_AUDIO, p + 2, 2),
	    mkmsg(5, 300, 3, RTMP_MSG_AUDIO, p + 4, 2),
	};

	t_fmt0(&b, 5, 100, 2, RTMP_MSG_AUDIO, 3);
	t_put(&b, p, 2);
	t_fmt3(&b, 5);
	t_put(&b, p + 2, 2);
	t_fmt3(&b, 5);
	t_put(&b, p + 4, 2);
	expect_decode(NULL, buf_head(&b), buf_used(&b), want, 3, 0);
	buf_free(&b);
}

/* Zero-length messages complete on their header alone, on every header type. */
static void test_reader_zero_length(void)
{
	static const uint8_t p[] = {1, 2, 3};
	struct buf b = {0};
	const struct rtmp_msg want[] = {
	    mkmsg(3, 10, 0, RTMP_MSG_DATA_AMF0, NULL, 0),
	    mkmsg(3, 15, 0, RTMP_MSG_DATA_AMF0, NULL, 0),
	    mkmsg(3, 20, 0, RTMP_MSG_DATA_AMF0, NULL, 0),
	    mkmsg(3, 27, 0, RTMP_MSG_AUDIO, p, 3),
	    mkmsg(3, 28, 0, RTMP_MSG_AUDIO, NULL, 0),
	    mkmsg(3, 29, 0, RTMP_MSG_AUDIO, NULL, 0),
	};

	t_fmt0(&b, 3, 10, 0, RTMP_MSG_DATA_AMF0, 0);
	t_fmt2(&b, 3, 5);
	t_fmt3(&b, 3);
	t_fmt1(&b, 3, 7, 3, RTMP_MSG_AUDIO);
	t_put(&b, p, 3);
	t_fmt1(&b, 3, 1, 0, RTMP_MSG_AUDIO);
	t_fmt3(&b, 3);
	expect_decode(NULL, buf_head(&b), buf_used(&b), want, sizeof(want) / sizeof(want[0]), 0);
	buf_free(&b);
}

/* ---- extended timestamps ---------------------------------------------------------------- */

static void test_writer_extended_timestamp(void)
{
	static const uint8_t want_hdr[] = {0x04, 0xff, 0xff, 0xff, 0x00, 0x00, 0x82, 0x08,
					   0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
	static const uint8_t ts_ffffff[] = {0x05, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, 0x08,
					    0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff};
	static const uint8_t ts_fffffe[] = {0x06, 0xff, 0xff, 0xfe, 0x00, 0x00,
					    0x01, 0x08, 0x00, 0x00, 0x00, 0x00};
	struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();
	uint8_t *p = pattern(130, 2);
	struct buf out = {0};
	const struct rtmp_msg m[] = {
	    mkmsg(4, 0x01000000, 1, RTMP_MSG_AUDIO, p, 130),
	    mkmsg(5, 0xffffff, 0, RTMP_MSG_AUDIO, p, 1),
	    mkmsg(6, 0xfffffe, 0, RTMP_MSG_AUDIO, p, 1),
	};
	const uint8_t *o;

	CHECK(w);
	if (!w)
		return;
	CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m[0]), 0);
	o = buf_head(&out);
	/* 16 header bytes, 128 payload, type 3 + repeated extended timestamp, 2 payload. */
	CHECK_EQ_INT(buf_used(&out), 16 + 128 + 5 + 2);
	CHECK(memcmp(o, want_hdr, sizeof(want_hdr)) == 0);
	CHECK(memcmp(o + 16, p, 128) == 0);
	CHECK_EQ_INT(o[144], 0xc4);
	CHECK_EQ_INT(rd_be32(o + 145), 0x01000000);
	CHECK(memcmp(o + 149, p + 128, 2) == 0);
	expect_decode(NULL, o, buf_used(&out), m, 1, 0);

	buf_reset(&out);
	CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m[1]), 0);
	CHECK_EQ_INT(buf_used(&out), sizeof(ts_ffffff) + 1);
	CHECK(buf_used(&out) >= sizeof(ts_ffffff) &&
	      memcmp(buf_head(&out), ts_ffffff, sizeof(ts_ffffff)) == 0);
	expect_decode(NULL, buf_head(&out), buf_used(&out), &m[1], 1, 0);

	buf_reset(&out);
	CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m[2]), 0);
	CHECK_EQ_INT(buf_used(&out), sizeof(ts_fffffe) + 1);
	CHECK(buf_used(&out) >= sizeof(ts_fffffe) &&
	      memcmp(buf_head(&out), ts_fffffe, sizeof(ts_fffffe)) == 0);
	expect_decode(NULL, buf_head(&out), buf_used(&out), &m[2], 1, 0);

	buf_free(&out);
	free(p);
	rtmp_chunk_writer_destroy(&w);
}

/* Extended deltas on type 1, 2 and 3 headers from the writer, multi-chunk. */
static void test_writer_extended_delta(void)
{
	struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();
	uint8_t *p = pattern(300, 3);
	struct buf out = {0};
	const struct rtmp_msg m[] = {
	    mkmsg(4, 10, 1, RTMP_MSG_VIDEO, p, 300),
	    mkmsg(4, 10 + 0x01000000, 1, RTMP_MSG_VIDEO, p, 300),	/* type 2, extended */
	    mkmsg(4, 10 + 0x02000000, 1, RTMP_MSG_VIDEO, p, 300),	/* type 3, extended */
	    mkmsg(4, 10 + 0x03000000, 1, RTMP_MSG_VIDEO, p, 299),	/* type 1, extended */
	    mkmsg(4, 10 + 0x04000000, 1, RTMP_MSG_VIDEO, p, 299),	/* type 3, extended */
	    mkmsg(4, 0x04000020, 1, RTMP_MSG_VIDEO, p, 299),		/* type 2, delta 22 */
	    mkmsg(4, 0x04ffffff, 1, RTMP_MSG_VIDEO, p, 299),		/* type 2, delta 0xffffd9 */
	    mkmsg(4, 0x04ffffff + 0xffffff, 1, RTMP_MSG_VIDEO, p, 299), /* type 2, 0xffffff */
	};
	size_t n = sizeof(m) / sizeof(m[0]);
	static const unsigned want_fmt[] = {0, 2, 3, 1, 3, 2, 2, 2};

	CHECK(w);
	if (!w)
		return;
	for (size_t i = 0; i < n; i++) {
		size_t before = buf_used(&out);

		CHECK_EQ_INT(rtmp_chunk_write(w, &out, &m[i]), 0);
		CHECK_EQ_INT(buf_head(&out)[before] >> 6, want_fmt[i]);
	}
	expect_decode(NULL, buf_head(&out), buf_used(&out), m, n, 0);
	buf_free(&out);
	free(p);
	rtmp_chunk_writer_destroy(&w);
}

/*
 * A type 0 header with an extended timestamp, its continuation chunks built once with the
 * repeated 4 bytes and once without: both decode to the same message. The continuation payloads
 * do not begin with the timestamp's bytes.
 */
static void ext_continuations(uint32_t len)
{
	const uint32_t ts = 0x12345678;
	struct buf with = {0}, without = {0};
	uint8_t *p = pattern(len, len);
	struct rtmp_msg want[2];
	static const uint8_t tail[] = {0xaa, 0xbb};

	for (uint32_t off = 128; off < len; off += 128)
		if (p[off] == 0x12)
			p[off] = 0x13;
	want[0] = mkmsg(7, ts, 1, RTMP_MSG_VIDEO, p, len);
	t_fmt0(&with, 7, ts, len, RTMP_MSG_VIDEO, 1);
	t_fmt0(&without, 7, ts, len, RTMP_MSG_VIDEO, 1);
	for (uint32_t off = 0; off < len; off += 128) {
		uint32_t n = len - off < 128 ? len - off : 128;

		if (off) {
			t_fmt3(&with, 7);
			t_be32(&with, ts);
			t_fmt3(&without, 7);
		}
		t_put(&with, p + off, n);
		t_put(&without, p + off, n);
	}
	for (int follow = 0; follow < 2; follow++) {
		int before = th_failed_checks;

		if (follow) {
			/* The same followed by another message on another chunk stream. */
			want[1] = mkmsg(3, 0, 0, RTMP_MSG_AUDIO, tail, 2);
			t_fmt0(&with, 3, 0, 2, RTMP_MSG_AUDIO, 0);
			t_put(&with, tail, 2);
			t_fmt0(&without, 3, 0, 2, RTMP_MSG_AUDIO, 0);
			t_put(&without, tail, 2);
		}
		expect_decode(NULL, buf_head(&with), buf_used(&with), want, 1 + follow, 0);
		if (th_failed_checks != before)
			fprintf(stderr, "  ^ %u-byte message, timestamp repeated%s\n", len,
				follow ? ", another message after it" : "");
		before = th_failed_checks;
		expect_decode(NULL, buf_head(&without), buf_used(&without), want, 1 + follow, 0);
		if (th_failed_checks != before)
			fprintf(stderr, "  ^ %u-byte message, timestamp not repeated%s\n", len,
				follow ? ", another message after it" : "");
	}

	buf_free(&with);
	buf_free(&without);
	free(p);
}

static void test_ext_continuation_with_and_without_repeat(void)
{
	ext_continuations(300); /* last chunk 44 bytes */
	ext_continuations(512); /* last chunk 128 bytes */
	ext_continuations(260); /* last chunk 4 bytes */
}

/*
 * The same, with a last chunk shorter than the 4 bytes of an extended timestamp. A peer that does
 * not repeat the timestamp sends exactly these bytes and then waits for our answer: the message
 * is complete and must be delivered.
 */
static void test_ext_continuation_short_last_chunk(void)
{
	ext_continuations(129); /* last chunk 1 byte */
	ext_continuations(130); /* last chunk 2 bytes */
	ext_continuations(131); /* last chunk 3 bytes */
}

/* Type 3 chunks starting new messages after extended type 0 and type 2 headers. */
static void test_ext_fmt3_new_message(void)
{
	static const uint8_t p[] = {0x55, 0x66, 0x77, 0x88, 0x99, 0x11, 0x22, 0x33};
	struct buf b = {0};
	const struct rtmp_msg want[] = {
	    mkmsg(4, 0x01000000, 1, RTMP_MSG_AUDIO, p, 2),
	    mkmsg(4, 0x02000000, 1, RTMP_MSG_AUDIO, p + 2, 2), /* delta = the type 0 field */
	    mkmsg(4, 0x03000005, 1, RTMP_MSG_AUDIO, p + 4, 2), /* type 2 delta 0x01000005 */
	    mkmsg(4, 0x0400000a, 1, RTMP_MSG_AUDIO, p + 6, 2), /* type 3 repeats it */
	};

	t_fmt0(&b, 4, 0x01000000, 2, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 2);
	t_fmt3(&b, 4);
	t_be32(&b, 0x01000000);
	t_put(&b, p + 2, 2);
	t_fmt2(&b, 4, 0x01000005);
	t_put(&b, p + 4, 2);
	t_fmt3(&b, 4);
	t_be32(&b, 0x01000005);
	t_put(&b, p + 6, 2);
	expect_decode(NULL, buf_head(&b), buf_used(&b), want, sizeof(want) / sizeof(want[0]), 0);
	buf_free(&b);
}

/* ---- interleaving ----------------------------------------------------------------------- */

/* Two messages on chunk streams 4 and 6, chunks alternating A B A B A: B completes first. */
static void test_interleaved_two_streams(void)
{
	uint8_t *a = pattern(300, 4), *bb = pattern(200, 5);
	struct buf b = {0};
	const struct rtmp_msg want[] = {
	    mkmsg(6, 77, 1, RTMP_MSG_VIDEO, bb, 200),
	    mkmsg(4, 66, 1, RTMP_MSG_AUDIO, a, 300),
	};

	t_fmt0(&b, 4, 66, 300, RTMP_MSG_AUDIO, 1);
	t_put(&b, a, 128);
	t_fmt0(&b, 6, 77, 200, RTMP_MSG_VIDEO, 1);
	t_put(&b, bb, 128);
	t_fmt3(&b, 4);
	t_put(&b, a + 128, 128);
	t_fmt3(&b, 6);
	t_put(&b, bb + 128, 72);
	t_fmt3(&b, 4);
	t_put(&b, a + 256, 44);
	expect_decode(NULL, buf_head(&b), buf_used(&b), want, 2, 0);
	buf_free(&b);
	free(a);
	free(bb);
}

/* Byte length of the chunk starting at @off of a message written by a fresh writer (type 0
 * first, type 3 continuations) on csid < 64 at chunk size @cs. */
static size_t chunk_len(uint32_t len, uint32_t ts, size_t off, uint32_t cs)
{
	size_t ext = ts >= EXT ? 4 : 0, n = len - off < cs ? len - off : cs;

	return (off ? 1 + ext : 12 + ext) + n;
}

/* Four messages written separately, their chunks interleaved in a random order. */
static void test_interleaved_random(void)
{
	enum { NM = 4 };
	static const uint32_t csid[NM] = {3, 4, 5, 6}, len[NM] = {1000, 64, 5000, 333},
			      ts[NM] = {0, 0x01000000, 5, 0xffffff};
	uint8_t *p = pattern(5000, 6);
	struct buf w_out[NM] = {{0}}, b = {0};
	size_t pos[NM] = {0}, off[NM] = {0};
	struct rtmp_msg m[NM], want[NM];
	uint8_t v[4];
	size_t nwant = 0;
	uint32_t x = 99;
	const uint32_t cs = 64;

	for (int i = 0; i < NM; i++) {
		struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();

		CHECK(w);
		if (!w)
			return;
		rtmp_chunk_writer_set_chunk_size(w, cs);
		m[i] = mkmsg(csid[i], ts[i], 1, RTMP_MSG_VIDEO, p, len[i]);
		CHECK_EQ_INT(rtmp_chunk_write(w, &w_out[i], &m[i]), 0);
		rtmp_chunk_writer_destroy(&w);
	}
	/* The Set Chunk Size message goes first. */
	put_scs(&b, cs, v);
	for (;;) {
		int left = 0, i;

		for (i = 0; i < NM; i++)
			left += pos[i] < buf_used(&w_out[i]);
		if (!left)
			break;
		do
			i = (int)(rnd(&x) % NM);
		while (pos[i] >= buf_used(&w_out[i]));
		{
			size_t n = chunk_len(len[i], ts[i], off[i], cs);

			t_put(&b, buf_head(&w_out[i]) + pos[i], n);
			pos[i] += n;
			off[i] += len[i] - off[i] < cs ? len[i] - off[i] : cs;
			if (off[i] == len[i])
				want[nwant++] = m[i];
		}
	}
	for (int i = 0; i < NM; i++)
		CHECK_EQ_INT(pos[i], buf_used(&w_out[i]));

	/* Prepend the expected Set Chunk Size message to the expectations. */
	{
		struct rtmp_msg all[NM + 1];

		all[0] = mkmsg(2, 0, 0, RTMP_MSG_SET_CHUNK_SIZE, v, 4);
		memcpy(all + 1, want, nwant * sizeof(want[0]));
		CHECK_EQ_INT(nwant, NM);
		expect_decode(NULL, buf_head(&b), buf_used(&b), all, nwant + 1, 0);
	}
	for (int i = 0; i < NM; i++)
		buf_free(&w_out[i]);
	buf_free(&b);
	free(p);
}

/* ---- chunk size changes ----------------------------------------------------------------- */

/* Set Chunk Size 256 between two messages, then 1, then 4096. */
static void test_chunk_size_change_between_messages(void)
{
	uint8_t *p = pattern(5000, 7), v1[4], v2[4], v3[4];
	struct buf b = {0};
	struct rtmp_msg want[6];

	want[0] = mkmsg(3, 0, 1, RTMP_MSG_AUDIO, p, 300); /* at 128 */
	t_fmt0(&b, 3, 0, 300, RTMP_MSG_AUDIO, 1);
	t_put(&b, p, 128);
	t_fmt3(&b, 3);
	t_put(&b, p + 128, 128);
	t_fmt3(&b, 3);
	t_put(&b, p + 256, 44);
	put_scs(&b, 256, v1);
	want[1] = mkmsg(2, 0, 0, RTMP_MSG_SET_CHUNK_SIZE, v1, 4);
	want[2] = mkmsg(3, 10, 1, RTMP_MSG_AUDIO, p, 300); /* at 256 */
	t_fmt2(&b, 3, 10);
	t_put(&b, p, 256);
	t_fmt3(&b, 3);
	t_put(&b, p + 256, 44);
	put_scs(&b, 1, v2);
	want[3] = mkmsg(2, 0, 0, RTMP_MSG_SET_CHUNK_SIZE, v2, 4);
	want[4] = mkmsg(3, 20, 1, RTMP_MSG_AUDIO, p, 3); /* at 1: three chunks */
	t_fmt1(&b, 3, 10, 3, RTMP_MSG_AUDIO);
	t_put(&b, p, 1);
	t_fmt3(&b, 3);
	t_put(&b, p + 1, 1);
	t_fmt3(&b, 3);
	t_put(&b, p + 2, 1);
	/* Set Chunk Size 4096 itself sent in 1-byte chunks. */
	wr_be32(v3, 4096);
	t_fmt0(&b, 2, 0, 4, RTMP_MSG_SET_CHUNK_SIZE, 0);
	for (int i = 0; i < 4; i++) {
		if (i)
			t_fmt3(&b, 2);
		t_put(&b, v3 + i, 1);
	}
	want[5] = mkmsg(2, 0, 0, RTMP_MSG_SET_CHUNK_SIZE, v3, 4);
	expect_decode(NULL, buf_head(&b), buf_used(&b), want, 6, 0);

	/* And a 5000-byte message at 4096. */
	{
		struct rtmp_msg w2[7];

		memcpy(w2, want, sizeof(want));
		w2[6] = mkmsg(3, 30, 1, RTMP_MSG_AUDIO, p, 5000);
		t_fmt1(&b, 3, 10, 5000, RTMP_MSG_AUDIO);
		t_put(&b, p, 4096);
		t_fmt3(&b, 3);
		t_put(&b, p + 4096, 5000 - 4096);
		expect_decode(NULL, buf_head(&b), buf_used(&b), w2, 7, 0);
	}
	buf_free(&b);
	free(p);
}

/*
 * A message on csid 4 whose first chunk is read at 128; Set Chunk Size 256 arrives on csid 2;
 * the rest of the message (172 bytes) comes as one chunk under the new size.
 */
static void test_chunk_size_change_mid_message_other_stream(void)
{
	uint8_t *p = pattern(300, 8), v[4];
	struct buf b = {0};
	struct rtmp_msg want[2];

	t_fmt0(&b, 4, 5, 300, RTMP_MSG_VIDEO, 1);
	t_put(&b, p, 128);
	put_scs(&b, 256, v);
	t_fmt3(&b, 4);
	t_put(&b, p + 128, 172);
	want[0] = mkmsg(2, 0, 0, RTMP_MSG_SET_CHUNK_SIZE, v, 4);
	want[1] = mkmsg(4, 5, 1, RTMP_MSG_VIDEO, p, 300);
	expect_decode(NULL, buf_head(&b), buf_used(&b), want, 2, 0);
	buf_free(&b);
	free(p);
}

/* The writer's chunk size: getter, changes between messages, invalid sizes ignored. */
static void test_writer_set_chunk_size(void)
{
	struct rtmp_chunk_writer *w = rtmp_chunk_writer_new();
	uint8_t *p = pattern(5000, 9), v[4];
	struct buf out = {0};
	struct rtmp_msg want[4];

	CHECK(w);
	if (!w)
		return;
	CHECK_EQ_INT(rtmp_chunk_writer_chunk_size(w), RTMP_DEFAULT_CHUNK_SIZE);
	rtmp_chunk_writer_set_chunk_size(w, 0);
	CHECK_EQ_INT(rtmp_chunk_writer_chunk_size(w), RTMP_DEFAULT_CHUNK_SIZE);
	rtmp_chunk_writer_set_chunk_size(w, 0x80000000u);
	CHECK_EQ_INT(rtmp_chunk_writer_chunk_size(w), RTMP_DEFAULT_CHUNK_SIZE);

	want[0] = mkmsg(3, 0, 0, RTMP_MSG_COMMAND_AMF0, p, 5000);
	CHECK_EQ_INT(rtmp_chunk_write(w, &out, &want[0]), 0);
	/* 40 chunks: 12 + 39 * 1 header bytes. */
	CHECK_EQ_INT(buf_used(&out), 5000 + 12 + 39);
	wr_be32(v, 4096);
	want[1] = mkmsg(2, 0, 0, RTMP_MSG_SET_CHUNK_SIZE, v, 4);
	CHECK_EQ_INT(rtmp_chunk_write(w, &out, &want[1]), 0);
	rtmp_chunk_writer_set_chunk_size(w, 4096);
	CHECK_EQ_INT(rtmp_chunk_writer_chunk_size(w), 4096);
	want[2] = mkmsg(3, 40, 0, RTMP_MSG_COMMAND_AMF0, p, 5000);
	CHECK_EQ_INT(rtmp_chunk_write(w, &out, &want[2]), 0);
	/* Type 2 header (4 bytes) + 4096, type 3 (1 byte) + 904. */
	CHECK_EQ_INT(buf_used(&out), 5000 + 12 + 39 + 12 + 4 + 5000 + 4 + 1);
	rtmp_chunk_writer_set_chunk_size(w, 0x7fffffffu);
	CHECK_EQ_INT(rtmp_chunk_writer_chunk_size(w), 0x7fffffffu);
	rtmp_chunk_writer_set_chunk_size(w, 4096);
	want[3] = mkmsg(3, 80, 0, RTMP_MSG_COMMAND_AMF0, p, 5000);
	CHECK_EQ_INT(rtmp_chunk_write(w, &out, &want[3]), 0);
	expect_decode(NULL, buf_head(&out), buf_used(&out), want, 4, 0);
	buf_free(&out);
	free(p);
	rtmp_chunk_writer_destroy(&w);
}

/* ---- fragmented input ------------------------------------------------------------------- */

int main(void)
{
	TEST_RUN(test_roundtrip_chunk_size_1);
	TEST_RUN(test_roundtrip_chunk_size_128);
	TEST_RUN(test_roundtrip_chunk_size_4096);
	TEST_RUN(test_roundtrip_chunk_size_65536);
	TEST_RUN(test_writer_header_bytes);
	TEST_RUN(test_writer_basic_header_forms);
	TEST_RUN(test_reader_basic_header_forms);
	TEST_RUN(test_reader_header_types);
	TEST_RUN(test_reader_fmt3_after_fmt0);
	TEST_RUN(test_reader_zero_length);
	TEST_RUN(test_writer_extended_timestamp);
	TEST_RUN(test_writer_extended_delta);
	TEST_RUN(test_ext_continuation_with_and_without_repeat);
	TEST_RUN(test_ext_continuation_short_last_chunk);
	TEST_RUN(test_ext_fmt3_new_message);
	TEST_RUN(test_interleaved_two_streams);
	TEST_RUN(test_interleaved_random);
	TEST_RUN(test_chunk_size_change_between_messages);
	TEST_RUN(test_chunk_size_change_mid_message_other_stream);
	TEST_RUN(test_writer_set_chunk_size);
	return TEST_DONE();
}
