/*
 * fuzz_handshake.c - libFuzzer target for the server RTMP handshake.
 *
 * The input is fed to a server handshake in pieces of varying sizes (0, 1, a few, up to
 * ~1600 bytes, chosen by a small PRNG seeded from the input) and again in one piece, and the
 * contract of rtmp_hs_feed() is checked: never more consumed than offered, nothing consumed
 * after C2, S0S1S2 appended exactly once and only once C0+C1 are in, the same outcome whatever
 * the fragmentation. Inputs of a whole server reply also go through the client-side checker.
 * Seeds: tests/fuzz/corpus/handshake/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rtmp_handshake.h"

#include "fuzz_target.h"

static size_t piece_len(uint32_t *x, size_t left)
{
	uint32_t r = fuzz_rand(x);
	size_t n;

	switch (r & 3) {
	case 0:
		n = 1;
		break;
	case 1:
		n = (r >> 2) % 16;
		break;
	case 2:
		n = (r >> 2) % 1600;
		break;
	default:
		n = left;
		break;
	}
	return n < left ? n : left;
}

struct outcome {
	int rc;
	size_t consumed;
	size_t out_len;
	int scheme;
	uint32_t epoch;
};

static void feed_all(const uint8_t *data, size_t size, uint32_t seed, struct outcome *o)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf out = {0};
	size_t off = 0, used, n, rounds = 0;
	int rc = 0;

	if (!hs)
		return;
	while (off < size && rounds++ < 20000) {
		n = seed ? piece_len(&seed, size - off) : size - off;
		used = (size_t)-1;
		rc = rtmp_hs_feed(hs, data + off, n, &used, &out);
		EXPECT(used <= n);
		off += used;
		EXPECT(buf_used(&out) == 0 || buf_used(&out) == RTMP_HS_REPLY_SIZE);
		EXPECT((buf_used(&out) != 0) == (off >= 1 + RTMP_HS_SIZE));
		if (rc != 0)
			break;
		EXPECT(used == n);
	}
	if (rc == 0 && off < size) /* ran out of rounds: finish in one piece */
		rc = rtmp_hs_feed(hs, data + off, size - off, &used, &out), off += used;

	if (rc == 1) {
		EXPECT(off == 1 + 2 * RTMP_HS_SIZE);
		EXPECT(rtmp_hs_done(hs));
		EXPECT(rtmp_hs_feed(hs, data, size, &used, &out) == 1 && used == 0);
	} else if (rc < 0) {
		/* the only error a well-allocated handshake can meet is a wrong C0 */
		EXPECT(rc == -EPROTONOSUPPORT && data[0] != 3 && off == 0);
		EXPECT(rtmp_hs_error(hs)[0] != '\0');
		EXPECT(rtmp_hs_feed(hs, data, size, &used, &out) == rc && used == 0);
	} else {
		EXPECT(off == size && !rtmp_hs_done(hs));
	}
	EXPECT(rtmp_hs_is_digest(hs) == (rtmp_hs_digest_scheme(hs) >= 0));

	o->rc = rc;
	o->consumed = off;
	o->out_len = buf_used(&out);
	o->scheme = rtmp_hs_digest_scheme(hs);
	o->epoch = rtmp_hs_client_epoch(hs);
	rtmp_hs_destroy(&hs);
	EXPECT(hs == NULL);
	buf_free(&out);
}

/* The input as a server's S0 S1 S2, checked by the client side against a fixed digest C1. */
static void client_side(const uint8_t *data, size_t size)
{
	static uint8_t c1[RTMP_HS_SIZE];
	static int ready;
	struct buf tmp = {0};
	int rc, scheme;

	if (!ready) {
		if (rtmp_hs_client_c0c1(&tmp, true, 0, c1) != 0)
			return;
		buf_free(&tmp);
		ready = 1;
	}
	rc = rtmp_hs_client_finish(c1, data, size, &scheme, &tmp);
	EXPECT(size >= RTMP_HS_REPLY_SIZE ? rc == 0 || rc == -EPROTO : rc == -EINVAL);
	EXPECT(rc == 0 ? buf_used(&tmp) == RTMP_HS_SIZE : buf_used(&tmp) == 0);
	buf_free(&tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole = {0}, pieces = {0};
	uint32_t seed;

	if (size == 0)
		return 0;
	seed = (uint32_t)size * 2654435761u ^ data[size - 1] ^ 0x9E3779B9u;
	if (seed == 0)
		seed = 1;

	feed_all(data, size, 0, &whole);
	feed_all(data, size, seed, &pieces);
	EXPECT(whole.rc == pieces.rc);
	EXPECT(whole.consumed == pieces.consumed);
	EXPECT(whole.out_len == pieces.out_len);
	EXPECT(whole.scheme == pieces.scheme);
	EXPECT(whole.epoch == pieces.epoch);

	client_side(data, size);
	return 0;
}
