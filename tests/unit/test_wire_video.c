/*
 * test_wire_video.c - video messages cut into MEDIA pieces and put together again.
 */
#include "harness.h"
#include "wire_video.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAXP 300

struct pieces {
	unsigned n;
	uint8_t flags[MAXP];
	size_t len[MAXP];
	uint8_t *data[MAXP];
	int fail_at; /* the piece whose callback fails, -1: none */
};

static int collect(void *arg, const uint8_t *payload, size_t len, uint8_t flags)
{
	struct pieces *p = arg;

	if ((int)p->n == p->fail_at)
		return -EPIPE;
	if (p->n >= MAXP || len > WIRE_MAX_PAYLOAD)
		return -E2BIG;
	p->data[p->n] = malloc(len);
	memcpy(p->data[p->n], payload, len);
	p->len[p->n] = len;
	p->flags[p->n] = flags;
	p->n++;
	return 0;
}

static void pieces_free(struct pieces *p)
{
	for (unsigned i = 0; i < p->n; i++)
		free(p->data[i]);
	memset(p, 0, sizeof(*p));
	p->fail_at = -1;
}

static uint8_t *message(size_t len)
{
	uint8_t *m = malloc(len);

	for (size_t i = 0; i < len; i++)
		m[i] = (uint8_t)(i * 7u + i / 251u);
	return m;
}

/* Every size around the piece boundary goes through whole, with MORE on all but the last. */
static void test_round_trip(void)
{
	const size_t sizes[] = {1,
				100,
				WIRE_VIDEO_PIECE_MAX - 1,
				WIRE_VIDEO_PIECE_MAX,
				WIRE_VIDEO_PIECE_MAX + 1,
				3 * WIRE_VIDEO_PIECE_MAX,
				150000,
				WIRE_VIDEO_MAX_MESSAGE};

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct pieces p = {.fail_at = -1};
		struct wire_video_asm a = {0};
		uint8_t *m = message(sizes[k]);
		const uint8_t *out = NULL;
		size_t outlen = 0;
		int r = 0;

		CHECK_EQ_INT(wire_video_split(m, sizes[k], collect, &p), 0);
		CHECK_EQ_INT(p.n, (sizes[k] + WIRE_VIDEO_PIECE_MAX - 1) / WIRE_VIDEO_PIECE_MAX);
		for (unsigned i = 0; i < p.n; i++) {
			CHECK_EQ_INT(p.flags[i] & WIRE_MEDIA_F_MORE,
				     i + 1 < p.n ? WIRE_MEDIA_F_MORE : 0);
			r = wire_video_asm_add(&a, 1234, p.flags[i], p.data[i], p.len[i], &out,
					       &outlen);
			CHECK_EQ_INT(r, i + 1 < p.n ? 0 : 1);
		}
		CHECK(r == 1 && outlen == sizes[k] && out && memcmp(out, m, outlen) == 0);
		CHECK_EQ_INT(a.dropped, 0);
		/* a one-piece message is not copied */
		if (p.n == 1)
			CHECK(a.buf == NULL);
		wire_video_asm_free(&a);
		pieces_free(&p);
		free(m);
	}
}

static void test_split_limits(void)
{
	struct pieces p = {.fail_at = -1};
	uint8_t *m = message(3 * WIRE_VIDEO_PIECE_MAX);

	CHECK_EQ_INT(wire_video_split(m, 0, collect, &p), -EINVAL);
	CHECK_EQ_INT(wire_video_split(m, WIRE_VIDEO_MAX_MESSAGE + 1, collect, &p), -E2BIG);
	CHECK_EQ_INT(p.n, 0);
	p.fail_at = 1; /* the sender's error stops the cutting */
	CHECK_EQ_INT(wire_video_split(m, 3 * WIRE_VIDEO_PIECE_MAX, collect, &p), -EPIPE);
	CHECK_EQ_INT(p.n, 1);
	pieces_free(&p);
	free(m);
}

/* A lost middle piece drops the message (never a splice); the next message still comes. */
static void test_lost_piece(void)
{
	struct pieces p = {.fail_at = -1};
	struct wire_video_asm a = {0};
	size_t len = 3 * WIRE_VIDEO_PIECE_MAX;
	uint8_t *m = message(len);
	const uint8_t *out;
	size_t outlen;

	CHECK_EQ_INT(wire_video_split(m, len, collect, &p), 0);
	CHECK_EQ_INT(p.n, 3);
	CHECK_EQ_INT(wire_video_asm_add(&a, 7, p.flags[0], p.data[0], p.len[0], &out, &outlen), 0);
	CHECK_EQ_INT(wire_video_asm_add(&a, 7, p.flags[2], p.data[2], p.len[2], &out, &outlen),
		     -EBADMSG);
	CHECK_EQ_INT(a.dropped, 1);
	/* the same message again, whole */
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ_INT(
		    wire_video_asm_add(&a, 8, p.flags[i], p.data[i], p.len[i], &out, &outlen),
		    i < 2 ? 0 : 1);
	CHECK(outlen == len && memcmp(out, m, len) == 0);
	/* a first piece while one is open: the open one is dropped, the new one goes on */
	CHECK_EQ_INT(wire_video_asm_add(&a, 9, p.flags[0], p.data[0], p.len[0], &out, &outlen), 0);
	CHECK_EQ_INT(wire_video_asm_add(&a, 10, p.flags[0], p.data[0], p.len[0], &out, &outlen), 0);
	CHECK_EQ_INT(a.dropped, 2);
	/* a piece of another timestamp does not continue it */
	CHECK_EQ_INT(wire_video_asm_add(&a, 11, p.flags[1], p.data[1], p.len[1], &out, &outlen),
		     -EBADMSG);
	CHECK_EQ_INT(a.dropped, 3);
	/* a continuation with nothing open */
	CHECK_EQ_INT(wire_video_asm_add(&a, 10, p.flags[1], p.data[1], p.len[1], &out, &outlen),
		     -EBADMSG);
	wire_video_asm_free(&a);
	pieces_free(&p);
	free(m);
}

/* Hostile pieces: too short, an offset that claims more than the bound, endless MORE. */
static void test_hostile(void)
{
	struct wire_video_asm a = {0};
	uint8_t piece[WIRE_MAX_PAYLOAD] = {0};
	const uint8_t *out;
	size_t outlen;
	unsigned n = 0;
	int r;

	CHECK_EQ_INT(wire_video_asm_add(&a, 1, 0, piece, 3, &out, &outlen), -EBADMSG);
	CHECK_EQ_INT(wire_video_asm_add(&a, 1, 0, piece, 4, &out, &outlen), -EBADMSG); /* empty */
	/* MORE forever: stops at the bound, memory bounded, then a fresh message works */
	do {
		uint32_t off = n * (uint32_t)WIRE_VIDEO_PIECE_MAX;

		piece[0] = (uint8_t)(off >> 24);
		piece[1] = (uint8_t)(off >> 16);
		piece[2] = (uint8_t)(off >> 8);
		piece[3] = (uint8_t)off;
		r = wire_video_asm_add(&a, 5, WIRE_MEDIA_F_MORE, piece, sizeof(piece), &out,
				       &outlen);
		n++;
	} while (r == 0 && n < 1000);
	CHECK_EQ_INT(r, -E2BIG);
	CHECK(a.cap <= WIRE_VIDEO_MAX_MESSAGE);
	CHECK_EQ_INT(a.dropped, 1);
	memset(piece, 0, 4);
	piece[4] = 0x17;
	CHECK_EQ_INT(wire_video_asm_add(&a, 6, 0, piece, 10, &out, &outlen), 1);
	CHECK(outlen == 6 && out[0] == 0x17);
	wire_video_asm_free(&a);
}

int main(void)
{
	TEST_RUN(test_round_trip);
	TEST_RUN(test_split_limits);
	TEST_RUN(test_lost_piece);
	TEST_RUN(test_hostile);
	return TEST_DONE();
}
