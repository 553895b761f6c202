/*
 * test_audio_check.c - unit tests for signaler/audio_check.c: the size limit of one RTMP audio
 * message, G.711's rate measured on timestamps, and the cutting of long G.711 messages.
 *
 * Streams are made the way encoders stamp them: ffmpeg's timestamps are the samples sent so far
 * at the real rate, rounded to ms; a publisher stamping from its clock adds jitter.
 */
#include "audio_check.h"
#include "codec.h"
#include "harness.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static uint8_t msg[20001];
static char why[400];

/* A stream of G.711 messages of @bytes (codec data, @channels interleaved, header @hdr) at a
 * real @rate, timestamps from @ts0 with +-@jitter ms (pseudo-random, @seed), optionally a
 * repeated first timestamp. Feeds @n messages; returns the first non-zero result (its message
 * index in *at), or 0. */
struct stream {
	uint8_t hdr;
	unsigned rate, channels;
	size_t bytes;
	uint32_t ts0;
	unsigned jitter;
	bool dup_first;
	uint32_t seed;
};

static unsigned rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

static int run(struct audio_check *ac, const struct stream *st, unsigned n, unsigned *at)
{
	uint32_t seed = st->seed ? st->seed : 1;
	uint64_t sent = 0; /* samples per channel */
	uint32_t prev = st->ts0;

	memset(msg, 0xff, sizeof(msg));
	msg[0] = st->hdr;
	for (unsigned i = 0; i < n; i++) {
		uint32_t ts = st->ts0 + (uint32_t)((sent * 1000 + st->rate / 2) / st->rate);
		int r;

		if (st->dup_first && i == 1)
			ts = st->ts0;
		/* RTMP timestamps do not go back: a clock's jitter shows in the steps */
		if (st->jitter && i > 0) {
			ts += rnd(&seed) % (2 * st->jitter + 1) - st->jitter;
			if ((int32_t)(ts - prev) < 0)
				ts = prev;
		}
		prev = ts;
		r = audio_check_feed(ac, msg, 1 + st->bytes, ts, why, sizeof(why));
		if (r != 0) {
			if (at)
				*at = i;
			return r;
		}
		sent += st->bytes / st->channels;
	}
	return 0;
}

/* ffmpeg at 8 kHz: 1024-byte messages (128 ms), 2048 (256 ms), 8192 (1 s); 20 ms frames;
 * accepted within the first second and a half of timestamps, never refused. */
static void test_8k_accepted(void)
{
	static const size_t sizes[] = {160, 320, 1024, 2048, 4096, 8192, 16000};
	struct audio_check ac;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct stream st = {.hdr = 0x82, .rate = 8000, .channels = 1, .bytes = sizes[i]};

		audio_check_init(&ac);
		CHECK_EQ_INT(run(&ac, &st, 80, NULL), 0);
		CHECK_EQ_INT(ac.state, AUDIO_CHECK_ACCEPTED);
		CHECK_EQ_INT(ac.rate, 8000);
		CHECK(ac.elapsed_ms >= AUDIO_RATE_WINDOW_MS && ac.elapsed_ms < 1000 + 2 * 1000 * sizes[i] / 8000 + 1);
		CHECK_EQ_INT(ac.restarts, 0);
	}
	/* A-law, and a stream starting anywhere on the 32-bit timeline (wrapping). */
	{
		struct stream st = {.hdr = 0x72, .rate = 8000, .channels = 1, .bytes = 1024,
				    .ts0 = 0xfffffe00u};

		audio_check_init(&ac);
		CHECK_EQ_INT(run(&ac, &st, 40, NULL), 0);
		CHECK_EQ_INT(ac.state, AUDIO_CHECK_ACCEPTED);
		CHECK_EQ_INT(ac.rate, 8000);
	}
}

/* Timestamps from a wall clock, jittering by up to 40 ms either way; a first timestamp repeated
 * (one message more in the window from the first): still 8 kHz, never refused. */
static void test_8k_jitter(void)
{
	struct audio_check ac;

	for (uint32_t seed = 1; seed <= 200; seed++) {
		struct stream st = {.hdr = 0x82, .rate = 8000, .channels = 1,
				    .bytes = seed % 2 ? 160 : 1024, .jitter = seed % 2 ? 15 : 40,
				    .seed = seed};

		audio_check_init(&ac);
		CHECK_EQ_INT(run(&ac, &st, seed % 2 ? 300 : 60, NULL), 0);
		CHECK_EQ_INT(ac.state, AUDIO_CHECK_ACCEPTED);
		CHECK_EQ_INT(ac.restarts, 0);
		CHECK(ac.rate >= 7600 && ac.rate <= 8400);
	}
	for (size_t bytes = 160; bytes <= 8192; bytes *= 2) {
		struct stream st = {.hdr = 0x82, .rate = 8000, .channels = 1, .bytes = bytes,
				    .dup_first = true};

		audio_check_init(&ac);
		CHECK_EQ_INT(run(&ac, &st, 60, NULL), 0);
		CHECK_EQ_INT(ac.state, AUDIO_CHECK_ACCEPTED);
	}
}

/* Other rates: refused, the rate named with the fix; far ones after about 1 s of timestamps,
 * near ones (11025, 5512) after 2 s. Sticky. */
static void test_other_rates(void)
{
	static const struct {
		unsigned rate;
		size_t bytes;
		const char *named;
		uint32_t by_ms; /* refused by this timestamp */
	} cases[] = {
		{16000, 1024, "measured at 16000 Hz", 1100}, {44100, 1024, "measured at 44100 Hz", 1100},
		{48000, 1024, "measured at 48000 Hz", 1100}, {22050, 2048, "measured at 22050 Hz", 1100},
		{11025, 1024, "measured at 11025 Hz", 2100}, {5512, 1024, "measured at 5512 Hz", 2400},
		{16000, 8192, "measured at 16000 Hz", 1100}, {12345, 1024, "about 123", 2100},
	};
	struct audio_check ac;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stream st = {.hdr = 0x82, .rate = cases[i].rate, .channels = 1,
				    .bytes = cases[i].bytes};
		unsigned at = 0;
		uint64_t ms;

		audio_check_init(&ac);
		why[0] = '\0';
		CHECK_EQ_INT(run(&ac, &st, 400, &at), -ERANGE);
		ms = (uint64_t)at * cases[i].bytes * 1000 / cases[i].rate;
		if (ms > cases[i].by_ms)
			fprintf(stderr, "rate %u refused at %llu ms\n", cases[i].rate,
				(unsigned long long)ms);
		CHECK(ms <= cases[i].by_ms);
		CHECK(strstr(why, cases[i].named) != NULL);
		CHECK(strstr(why, "publish G.711 at 8000 Hz, e.g. ffmpeg -ar 8000") != NULL);
		CHECK_EQ_INT(ac.state, AUDIO_CHECK_REFUSED);
		/* sticky: whatever comes next */
		why[0] = '\0';
		CHECK_EQ_INT(audio_check_feed(&ac, msg, 161, 1u << 30, why, sizeof(why)), -ERANGE);
		CHECK(strstr(why, cases[i].named) != NULL);
	}
	/* ffmpeg's stereo u-law is flagged mono (0x82): twice the bytes, counted as 16000 Hz. */
	{
		struct stream st = {.hdr = 0x82, .rate = 16000, .channels = 1, .bytes = 1024};

		audio_check_init(&ac);
		CHECK_EQ_INT(run(&ac, &st, 40, NULL), -ERANGE);
		CHECK(strstr(why, "stereo flagged mono counts double") != NULL);
	}
	/* Flagged stereo (0x83) at 8 kHz: per channel, 8000. */
	{
		struct stream st = {.hdr = 0x83, .rate = 8000, .channels = 2, .bytes = 2048};

		audio_check_init(&ac);
		CHECK_EQ_INT(run(&ac, &st, 40, NULL), 0);
		CHECK_EQ_INT(ac.rate, 8000);
	}
	/* No buffer for the reason: still refused. */
	{
		struct stream st = {.hdr = 0x82, .rate = 16000, .channels = 1, .bytes = 1024};
		uint8_t m[1025] = {0x82};

		audio_check_init(&ac);
		run(&ac, &st, 40, NULL);
		CHECK_EQ_INT(audio_check_feed(&ac, m, sizeof(m), 99999, NULL, 0), -ERANGE);
	}
}

/* A pause, or a timestamp going back, starts the window over: no verdict from it. */
static void test_gaps(void)
{
	struct audio_check ac;
	uint8_t m[1025];
	uint32_t ts = 0;
	int r = 0;

	memset(m, 0xff, sizeof(m));
	m[0] = 0x82;
	/* 8 kHz, 1024-byte messages, but 2 s of silence not sent after the third: without the
	 * restart the window would read 3 x 1024 samples in 2.4 s (1280 Hz). */
	audio_check_init(&ac);
	for (int i = 0; i < 3; i++, ts += 128)
		r |= audio_check_feed(&ac, m, sizeof(m), ts, why, sizeof(why));
	ts += 2000;
	for (int i = 0; i < 20; i++, ts += 128)
		r |= audio_check_feed(&ac, m, sizeof(m), ts, why, sizeof(why));
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(ac.restarts, 1);
	CHECK_EQ_INT(ac.state, AUDIO_CHECK_ACCEPTED);
	CHECK_EQ_INT(ac.rate, 8000);
	/* Backwards (a publisher that restarts its clock). */
	audio_check_init(&ac);
	ts = 5000;
	for (int i = 0; i < 4; i++, ts += 128)
		r |= audio_check_feed(&ac, m, sizeof(m), ts, why, sizeof(why));
	ts = 0;
	for (int i = 0; i < 20; i++, ts += 128)
		r |= audio_check_feed(&ac, m, sizeof(m), ts, why, sizeof(why));
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(ac.restarts, 1);
	CHECK_EQ_INT(ac.state, AUDIO_CHECK_ACCEPTED);
	/* Timestamps that never move: never decided, never refused. */
	audio_check_init(&ac);
	for (int i = 0; i < 100; i++)
		r |= audio_check_feed(&ac, m, sizeof(m), 7, why, sizeof(why));
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(ac.state, AUDIO_CHECK_MEASURING);
}

/* The size limit: other codecs refused above CODEC_RTMP_MAX_AUDIO bytes of data, G.711 never. */
static void test_size(void)
{
	struct audio_check ac;

	audio_check_init(&ac);
	memset(msg, 0, sizeof(msg));
	msg[0] = 0xB2; /* Speex */
	CHECK_EQ_INT(audio_check_feed(&ac, msg, 1 + CODEC_RTMP_MAX_AUDIO, 0, why, sizeof(why)), 0);
	why[0] = '\0';
	CHECK_EQ_INT(audio_check_feed(&ac, msg, 9000, 20, why, sizeof(why)), -E2BIG);
	CHECK(strstr(why, "9000-byte speex audio message (8999 bytes of audio data)") != NULL);
	CHECK(strstr(why, "limit of 8192 bytes") != NULL);
	/* AAC raw frame: a 2-byte header. */
	msg[0] = 0xAF;
	msg[1] = 1;
	CHECK_EQ_INT(audio_check_feed(&ac, msg, 2 + CODEC_RTMP_MAX_AUDIO, 0, why, sizeof(why)), 0);
	CHECK_EQ_INT(audio_check_feed(&ac, msg, 3 + CODEC_RTMP_MAX_AUDIO, 0, why, sizeof(why)),
		     -E2BIG);
	CHECK(strstr(why, "8195-byte AAC") != NULL);
	/* Not a size verdict on what the codec check refuses (empty, reserved formats). */
	CHECK_EQ_INT(audio_check_feed(&ac, msg, 0, 0, why, sizeof(why)), 0);
	msg[0] = 0x12; /* ADPCM */
	CHECK_EQ_INT(audio_check_feed(&ac, msg, 20000, 0, why, sizeof(why)), 0);
	/* G.711 of any size is carried (cut by the sender); its rate is still measured. */
	msg[0] = 0x82;
	CHECK_EQ_INT(audio_check_feed(&ac, msg, 20001, 0, why, sizeof(why)), 0);
	CHECK_EQ_INT(audio_check_feed(&ac, msg, 20001, 2500, why, sizeof(why)), 0);
	CHECK_EQ_INT(audio_check_feed(&ac, msg, 20001, 5000, why, sizeof(why)), 0);
	CHECK_EQ_INT(ac.state, AUDIO_CHECK_ACCEPTED);
	CHECK_EQ_INT(ac.rate, 8000);
	/* The limit and the wire bound agree. */
	CHECK(CODEC_RTMP_MAX_HDR + CODEC_RTMP_MAX_AUDIO <= 8208);
	CHECK(AUDIO_G711_PIECE <= CODEC_RTMP_MAX_AUDIO && AUDIO_G711_PIECE % 160 == 0);
}

/* Cutting: 8000-byte pieces, timestamps advancing by their length at 8 kHz. */
static void test_pieces(void)
{
	struct audio_piece p;

	CHECK(audio_g711_piece(1, 20001, 1, 0, 100, 0, &p) && p.off == 0 && p.len == 8000 &&
	      p.ts == 100);
	CHECK(audio_g711_piece(1, 20001, 1, 0, 100, 1, &p) && p.off == 8000 && p.len == 8000 &&
	      p.ts == 1100);
	CHECK(audio_g711_piece(1, 20001, 1, 0, 100, 2, &p) && p.off == 16000 && p.len == 4000 &&
	      p.ts == 2100);
	CHECK(!audio_g711_piece(1, 20001, 1, 0, 100, 3, &p));
	/* Stereo: 4000 samples of each channel = 500 ms a piece. */
	CHECK(audio_g711_piece(1, 16001, 2, 0, 0, 1, &p) && p.off == 8000 && p.len == 8000 &&
	      p.ts == 500);
	CHECK(!audio_g711_piece(1, 16001, 2, 0, 0, 2, &p));
	/* Exactly one piece, none, the timeline wrapping. */
	CHECK(audio_g711_piece(1, 8001, 1, 0, 0, 0, &p) && p.len == 8000);
	CHECK(!audio_g711_piece(1, 8001, 1, 0, 0, 1, &p));
	CHECK(!audio_g711_piece(1, 1, 1, 0, 0, 0, &p));
	CHECK(!audio_g711_piece(1, 0, 1, 0, 0, 0, &p));
	CHECK(audio_g711_piece(1, 9001, 0, 0, 0xfffffc18u, 1, &p) && p.ts == 0 && p.len == 1000);
	/* Every byte once, in order. */
	{
		size_t next = 0;

		for (size_t i = 0; audio_g711_piece(1, 123457, 1, 0, 0, i, &p); i++) {
			CHECK_EQ_INT(p.off, next);
			CHECK_EQ_INT(p.ts, i * 1000);
			next += p.len;
		}
		CHECK_EQ_INT(next, 123456);
	}
}

int main(void)
{
	TEST_RUN(test_8k_accepted);
	TEST_RUN(test_8k_jitter);
	TEST_RUN(test_other_rates);
	TEST_RUN(test_gaps);
	TEST_RUN(test_size);
	TEST_RUN(test_pieces);
	return TEST_DONE();
}
