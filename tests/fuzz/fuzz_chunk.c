/*
 * fuzz_chunk.c - libFuzzer target for the RTMP chunk stream reader and writer.
 *
 * Input layout:
 *   byte 0   bits 0-1: the writer's chunk size (128, 1, 4096, 65536)
 *            bits 2-3: how the stream is split (whole, byte by byte, random pieces, fixed pieces)
 *   byte 1   seed of the split pattern
 *   rest     the chunk stream a peer sends after the handshake
 *
 * The stream is fed to a reader the way rtmp_conn.c does it: appended to an input buffer bounded
 * by one maximal chunk (max_chunk_size + 64), rtmp_chunk_read() called until it wants more,
 * `used` consumed, Set Chunk Size and Abort messages applied to the reader, stop at the first
 * error. Checked: `used` never exceeds the input, a full buffer always makes progress, messages
 * respect the limits, every message written by a writer and read back by a second reader is the
 * same message, and the split pattern does not change the outcome (same messages, same result
 * as feeding the stream whole). Seeds: tests/fuzz/corpus/chunk/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rtmp_chunk.h"

#include "fuzz_target.h"

#define MAX_CHUNK 65536u
#define IN_CAP	  (MAX_CHUNK + 64u)

static const struct rtmp_chunk_limits lim = {
    .max_chunk_size = MAX_CHUNK,
    .max_message = 65536,
    .max_streams = 8,
};

static const uint32_t writer_chunk[4] = {128, 1, 4096, 65536};

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM, SPLIT_FIXED };

struct outcome {
	int rc;		 /* 0, or the error that stopped the stream */
	size_t messages; /* messages delivered */
	uint64_t digest; /* FNV-1a over every message's header fields and payload */
};

struct echo {
	struct rtmp_chunk_writer *w;
	struct rtmp_chunk_reader *r2;
	struct buf out;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t digest_msg(uint64_t h, const struct rtmp_msg *m)
{
	uint32_t f[5] = {m->csid, m->timestamp, m->stream_id, m->len, m->type};

	h = fnv(h, f, sizeof(f));
	if (m->len)
		h = fnv(h, m->data, m->len);
	return h;
}

/* Writes @m with the echo writer and reads it back with the echo reader: must be identical. */
static void echo_check(struct echo *e, const struct rtmp_msg *m)
{
	struct rtmp_msg back;
	size_t used = 0;
	int rc;

	buf_reset(&e->out);
	EXPECT(rtmp_chunk_write(e->w, &e->out, m) == 0);
	rc = rtmp_chunk_read(e->r2, buf_head(&e->out), buf_used(&e->out), &used, &back);
	EXPECT(rc == 1);
	EXPECT(used == buf_used(&e->out));
	EXPECT(back.csid == m->csid);
	EXPECT(back.timestamp == m->timestamp);
	EXPECT(back.stream_id == m->stream_id);
	EXPECT(back.type == m->type);
	EXPECT(back.len == m->len);
	EXPECT(m->len == 0 || memcmp(back.data, m->data, m->len) == 0);
}

static size_t piece_len(enum split split, uint32_t *x, uint8_t seed, size_t left)
{
	size_t n = left;

	switch (split) {
	case SPLIT_WHOLE:
		break;
	case SPLIT_BYTES:
		n = 1;
		break;
	case SPLIT_RANDOM: {
		uint32_t r = fuzz_rand(x);

		n = r & 1 ? (r >> 1) % 8 : (r >> 1) % 300;
		break;
	}
	case SPLIT_FIXED:
		n = (size_t)seed % 64 + 1;
		break;
	}
	return n < left ? n : left;
}

/* Feeds @p (@n bytes) to a fresh reader split per @split; with @e, echoes every message. */
static struct outcome run(const uint8_t *p, size_t n, enum split split, uint8_t seed,
			  struct echo *e)
{
	struct outcome o = {0, 0, 1469598103934665603ull};
	struct rtmp_chunk_reader *r = rtmp_chunk_reader_new(&lim);
	struct buf in = {0};
	uint32_t x = 0x9e3779b9u ^ seed;
	size_t off = 0;

	EXPECT(r);
	/* The bound is kept by `room` below; memory grows on demand (a 64 KiB allocation per
	 * run would cost more than the parsing under ASan). */
	EXPECT(buf_reserve(&in, 1) == 0);
	while (off < n && o.rc == 0) {
		size_t room = IN_CAP - buf_used(&in), piece;

		/* rtmp_conn.c closes on a full buffer: a correct reader never lets that happen. */
		EXPECT(room > 0);
		piece = piece_len(split, &x, seed, n - off);
		if (piece > room)
			piece = room;
		EXPECT(buf_append(&in, p + off, piece) == 0);
		off += piece;
		for (;;) {
			struct rtmp_msg m;
			size_t used = SIZE_MAX;
			int rc = rtmp_chunk_read(r, buf_head(&in), buf_used(&in), &used, &m);

			if (rc < 0) {
				EXPECT(rc == -E2BIG || rc == -EPROTO || rc == -ENOMEM);
				EXPECT(rtmp_chunk_reader_error(r)[0] != '\0');
				o.rc = rc;
				break;
			}
			EXPECT(used <= buf_used(&in));
			buf_consume(&in, used);
			if (rc == 0)
				break;
			EXPECT(rc == 1);
			EXPECT(m.len <= lim.max_message);
			EXPECT(m.csid >= 2 && m.csid <= 65599);
			EXPECT(m.len == 0 || m.data != NULL);
			o.messages++;
			o.digest = digest_msg(o.digest, &m);
			if (e)
				echo_check(e, &m);
			if (m.type == RTMP_MSG_SET_CHUNK_SIZE && m.len >= 4) {
				rc = rtmp_chunk_reader_set_chunk_size(r, rd_be32(m.data));
				EXPECT(rc == 0 || rc == -EINVAL || rc == -E2BIG);
				if (rc < 0) {
					o.rc = rc;
					break;
				}
			} else if (m.type == RTMP_MSG_ABORT && m.len >= 4) {
				rtmp_chunk_reader_abort(r, rd_be32(m.data));
			}
		}
	}
	buf_free(&in);
	rtmp_chunk_reader_destroy(&r);
	EXPECT(r == NULL);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct echo e = {0};
	struct outcome a, b;
	enum split split;
	uint32_t cs;
	uint8_t seed;

	if (size < 2)
		return 0;
	cs = writer_chunk[data[0] & 3];
	split = (enum split)(data[0] >> 2 & 3);
	seed = data[1];
	data += 2;
	size -= 2;

	e.w = rtmp_chunk_writer_new();
	e.r2 = rtmp_chunk_reader_new(&lim);
	EXPECT(e.w && e.r2);
	rtmp_chunk_writer_set_chunk_size(e.w, cs);
	EXPECT(rtmp_chunk_writer_chunk_size(e.w) == cs);
	EXPECT(rtmp_chunk_reader_set_chunk_size(e.r2, cs) == 0);

	a = run(data, size, split, seed, &e);
	if (split != SPLIT_WHOLE) {
		b = run(data, size, SPLIT_WHOLE, seed, NULL);
		EXPECT(a.rc == b.rc);
		EXPECT(a.messages == b.messages);
		EXPECT(a.digest == b.digest);
	}

	buf_free(&e.out);
	rtmp_chunk_reader_destroy(&e.r2);
	rtmp_chunk_writer_destroy(&e.w);
	return 0;
}
