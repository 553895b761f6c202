/*
 * rtmp_chunk_fixture.h - what the chunk stream reader/writer unit tests (test_rtmp_chunk,
 * test_rtmp_chunk_limits) share: the default limits, a payload pattern, the small encoders that
 * hand-build chunks (t_basic, t_fmt0..t_fmt3, not the writer under test), decoded-message records,
 * the three feed modes and the decode-and-compare check.
 *
 * Input reaches the reader the way rtmp_conn.c feeds it: appended to an input buffer bounded by
 * one maximal chunk (max_chunk_size + 64), rtmp_chunk_read() called until it wants more, `used`
 * consumed, Set Chunk Size and Abort messages applied to the reader. Every vector is decoded in
 * one piece, byte by byte and in random pieces, and must give the same messages each time.
 *
 * Header-only (static inline) so that every unit test stays one .c file.
 */
#ifndef RS_TEST_RTMP_CHUNK_FIXTURE_H
#define RS_TEST_RTMP_CHUNK_FIXTURE_H

#include "harness.h"
#include "rtmp_chunk.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHUNK 65536u
#define IN_CAP	  (MAX_CHUNK + 64u) /* rtmp_conn.c: one maximal chunk plus header room */
#define EXT	  0xffffffu

static const struct rtmp_chunk_limits def_lim = {
    .max_chunk_size = MAX_CHUNK,
    .max_message = 1u << 20,
    .max_streams = 32,
};

/* ---- helpers ---------------------------------------------------------------------------- */

static inline uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* @n bytes of a pseudo-random pattern; the caller frees. */
static inline uint8_t *pattern(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	uint32_t x = seed * 2654435761u + 1;

	if (!p)
		abort();
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd(&x);
	return p;
}

static inline void t_put(struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) < 0)
		abort();
}

static inline void t_u8(struct buf *b, uint32_t v)
{
	uint8_t c = (uint8_t)v;

	t_put(b, &c, 1);
}

static inline void t_be24(struct buf *b, uint32_t v)
{
	uint8_t p[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	t_put(b, p, 3);
}

static inline void t_be32(struct buf *b, uint32_t v)
{
	uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	t_put(b, p, 4);
}

/* Basic header, shortest form. */
static inline void t_basic(struct buf *b, unsigned fmt, uint32_t csid)
{
	if (csid < 64) {
		t_u8(b, fmt << 6 | csid);
	} else if (csid < 320) {
		t_u8(b, fmt << 6);
		t_u8(b, csid - 64);
	} else {
		t_u8(b, fmt << 6 | 1);
		t_u8(b, (csid - 64) & 0xff);
		t_u8(b, (csid - 64) >> 8);
	}
}

/* Type 0 header; the extended timestamp follows when @ts >= 0xffffff. */
static inline void t_fmt0(struct buf *b, uint32_t csid, uint32_t ts, uint32_t len, uint8_t type,
			  uint32_t sid)
{
	uint8_t s[4] = {(uint8_t)sid, (uint8_t)(sid >> 8), (uint8_t)(sid >> 16),
			(uint8_t)(sid >> 24)};

	t_basic(b, 0, csid);
	t_be24(b, ts >= EXT ? EXT : ts);
	t_be24(b, len);
	t_u8(b, type);
	t_put(b, s, 4);
	if (ts >= EXT)
		t_be32(b, ts);
}

static inline void t_fmt1(struct buf *b, uint32_t csid, uint32_t delta, uint32_t len, uint8_t type)
{
	t_basic(b, 1, csid);
	t_be24(b, delta >= EXT ? EXT : delta);
	t_be24(b, len);
	t_u8(b, type);
	if (delta >= EXT)
		t_be32(b, delta);
}

static inline void t_fmt2(struct buf *b, uint32_t csid, uint32_t delta)
{
	t_basic(b, 2, csid);
	t_be24(b, delta >= EXT ? EXT : delta);
	if (delta >= EXT)
		t_be32(b, delta);
}

/* Type 3 header (no message header; a caller adds an extended timestamp if it wants one). */
static inline void t_fmt3(struct buf *b, uint32_t csid)
{
	t_basic(b, 3, csid);
}

/* A Set Chunk Size message on csid 2; @v receives its payload. */
static inline void put_scs(struct buf *b, uint32_t size, uint8_t v[4])
{
	wr_be32(v, size);
	t_fmt0(b, 2, 0, 4, RTMP_MSG_SET_CHUNK_SIZE, 0);
	t_put(b, v, 4);
}

static inline struct rtmp_msg mkmsg(uint32_t csid, uint32_t ts, uint32_t sid, uint8_t type,
				    const uint8_t *data, uint32_t len)
{
	struct rtmp_msg m = {.csid = csid,
			     .timestamp = ts,
			     .stream_id = sid,
			     .len = len,
			     .type = type,
			     .data = data};

	return m;
}

/* Decoded messages, each with its own copy of the payload. */
struct recs {
	struct rtmp_msg *v;
	size_t n, cap;
};

static inline void recs_push(struct recs *rs, const struct rtmp_msg *m)
{
	uint8_t *copy = NULL;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 16;
		struct rtmp_msg *v = realloc(rs->v, cap * sizeof(*v));

		if (!v)
			abort();
		rs->v = v;
		rs->cap = cap;
	}
	if (m->len) {
		copy = malloc(m->len);
		if (!copy)
			abort();
		memcpy(copy, m->data, m->len);
	}
	rs->v[rs->n] = *m;
	rs->v[rs->n].data = copy;
	rs->n++;
}

static inline void recs_free(struct recs *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		free((void *)rs->v[i].data);
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

enum feed_mode { FEED_WHOLE, FEED_BYTES, FEED_RANDOM, FEED_MODES };

static const char *const feed_name[FEED_MODES] = {"whole", "byte by byte", "random pieces"};

/*
 * Feeds @n bytes to @r like rtmp_conn.c: appends a piece (all that fits, one byte, or a random
 * size, per @mode) to a bounded input buffer, calls rtmp_chunk_read() until it returns 0,
 * consumes `used` after every call, applies Set Chunk Size and Abort messages to @r and records
 * every message in @out. Returns 0 once all input is offered, or the first negative result.
 */
static inline int feed(struct rtmp_chunk_reader *r, const uint8_t *p, size_t n, enum feed_mode mode,
		       uint32_t seed, struct recs *out)
{
	struct buf in = {0};
	uint32_t x = seed * 2246822519u + 7;
	size_t off = 0;
	int rc = 0;

	/* buf_head() of a never-allocated buf is NULL + 0, which clang's UBSan reports. */
	if (buf_reserve(&in, 1) < 0)
		abort();
	while (off < n) {
		size_t piece = n - off, room = IN_CAP - buf_used(&in);

		if (mode == FEED_BYTES) {
			piece = 1;
		} else if (mode == FEED_RANDOM) {
			uint32_t v = rnd(&x);
			size_t want = v & 1 ? (v >> 1) % 8 : (v >> 1) % 700;

			if (piece > want)
				piece = want;
		}
		if (piece > room)
			piece = room;
		if (room == 0) {
			fprintf(stderr,
				"  input buffer full (%zu bytes) and the reader wants more\n",
				buf_used(&in));
			CHECK(room > 0);
			rc = -ENOSPC;
			goto out;
		}
		t_put(&in, p + off, piece);
		off += piece;
		for (;;) {
			struct rtmp_msg m;
			size_t used = 12345;

			rc = rtmp_chunk_read(r, buf_head(&in), buf_used(&in), &used, &m);
			if (rc < 0)
				goto out;
			CHECK(used <= buf_used(&in));
			if (used > buf_used(&in)) {
				rc = -EFAULT;
				goto out;
			}
			buf_consume(&in, used);
			if (rc == 0)
				break;
			CHECK_EQ_INT(rc, 1);
			recs_push(out, &m);
			if (m.type == RTMP_MSG_SET_CHUNK_SIZE && m.len >= 4) {
				rc = rtmp_chunk_reader_set_chunk_size(r, rd_be32(m.data));
				if (rc < 0)
					goto out;
			} else if (m.type == RTMP_MSG_ABORT && m.len >= 4) {
				rtmp_chunk_reader_abort(r, rd_be32(m.data));
			}
		}
	}
	rc = 0;
out:
	buf_free(&in);
	return rc;
}

static inline bool same_msg(const struct rtmp_msg *a, const struct rtmp_msg *b)
{
	return a->csid == b->csid && a->timestamp == b->timestamp && a->stream_id == b->stream_id &&
	       a->len == b->len && a->type == b->type &&
	       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static inline void print_msg(const char *what, const struct rtmp_msg *m)
{
	fprintf(stderr, "    %s: csid %u ts %u sid %u type %u len %u\n", what, m->csid,
		m->timestamp, m->stream_id, m->type, m->len);
}

/* Checks @got against @want; on a difference prints @ctx and the first differing message. */
static inline void check_recs(const struct recs *got, const struct rtmp_msg *want, size_t nwant,
			      const char *ctx)
{
	bool same = got->n == nwant;

	for (size_t i = 0; i < got->n && i < nwant; i++) {
		const struct rtmp_msg *g = &got->v[i], *w = &want[i];

		if (!same_msg(g, w)) {
			fprintf(stderr, "  %s: message %zu differs\n", ctx, i);
			print_msg("got ", g);
			print_msg("want", w);
			same = false;
			break;
		}
	}
	if (got->n != nwant)
		fprintf(stderr, "  %s: %zu messages decoded, %zu expected\n", ctx, got->n, nwant);
	CHECK(same);
}

/*
 * Decodes @n bytes with a fresh reader (limits @lim, NULL for the defaults) in each feed mode;
 * checks the messages against @want and the final result against @want_rc.
 */
static inline void expect_decode(const struct rtmp_chunk_limits *lim, const uint8_t *p, size_t n,
				 const struct rtmp_msg *want, size_t nwant, int want_rc)
{
	for (int mode = 0; mode < FEED_MODES; mode++) {
		struct rtmp_chunk_reader *r = rtmp_chunk_reader_new(lim ? lim : &def_lim);
		struct recs got = {0};
		int rc;

		CHECK(r);
		if (!r)
			return;
		rc = feed(r, p, n, (enum feed_mode)mode, (uint32_t)n + 17u * (uint32_t)mode, &got);
		if (rc != want_rc)
			fprintf(stderr, "  feeding %s: rc %d (%s)\n", feed_name[mode], rc,
				rc < 0 ? rtmp_chunk_reader_error(r) : "");
		CHECK_EQ_INT(rc, want_rc);
		check_recs(&got, want, nwant, feed_name[mode]);
		recs_free(&got);
		rtmp_chunk_reader_destroy(&r);
		CHECK(r == NULL);
	}
}

#endif /* RS_TEST_RTMP_CHUNK_FIXTURE_H */
