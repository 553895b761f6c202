/*
 * audio_check.c - the size and G.711 rate checks of a publisher's RTMP audio (audio_check.h).
 */
#include "audio_check.h"

#include "codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Rates an encoder may use; a measure within 5 % of one is named as it. */
static const unsigned known_rates[] = {5512, 8000, 11025, 16000, 22050, 24000, 32000, 44100,
				       48000, 96000};

static void say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static unsigned nearest_known(unsigned rate)
{
	for (size_t i = 0; i < sizeof(known_rates) / sizeof(known_rates[0]); i++) {
		unsigned k = known_rates[i];

		if ((uint64_t)rate * 100 >= (uint64_t)k * 95 && (uint64_t)rate * 100 <= (uint64_t)k * 105)
			return k;
	}
	return 0;
}

/* The rate the stream should measure: 8000 Hz, or its metadata's. */
static unsigned expected(const struct audio_check *ac)
{
	return ac->expect_rate ? ac->expect_rate : AUDIO_G711_RATE;
}

static int refused(const struct audio_check *ac, char *why, size_t whylen)
{
	unsigned k = nearest_known(ac->rate);

	say(why, whylen,
	    "G.711 audio measured at %s%u Hz by its timestamps (%" PRIu64 " samples in %u ms), "
	    "not %u Hz (stereo flagged mono counts double): publish G.711 at %u Hz, e.g. "
	    "ffmpeg -ar %u -ac 1",
	    k ? "" : "about ", k ? k : ac->rate, ac->window_samples, ac->elapsed_ms,
	    expected(ac), AUDIO_G711_RATE, AUDIO_G711_RATE);
	return -ERANGE;
}

void audio_check_init(struct audio_check *ac)
{
	memset(ac, 0, sizeof(*ac));
}

void audio_check_expect(struct audio_check *ac, unsigned rate, unsigned channels)
{
	ac->expect_rate = rate;
	ac->expect_channels = channels == 2 ? 2 : 0;
}

/* Starts the window at a message of @samples at @ts. */
static void window_start(struct audio_check *ac, uint32_t ts, uint32_t samples)
{
	ac->started = true;
	ac->have_t1 = false;
	ac->t0 = ts;
	ac->last_ts = ts;
	ac->samples = 0;
	ac->first_samples = samples;
	ac->last_samples = samples;
}

/* Within @pct % of @g Hz (pct >= 100: a factor, 150 = 1.5 times either way). */
static bool near_rate(unsigned rate, unsigned g, unsigned pct)
{
	uint64_t r = rate;

	if (pct >= 100)
		return r * 100 < g * pct && r * pct > g * 100;
	return r * 100 <= g * (100 + pct) && r * 100 >= g * (100 - pct);
}

static unsigned distance(unsigned rate, unsigned g)
{
	return rate > g ? rate * 100 / g : g * 100 / (rate ? rate : 1);
}

/*
 * The window's two estimates, from its first message and from its second (a first timestamp
 * out of line - repeated, late - then weighs on one only): the one nearer 8000 Hz, with what it
 * was measured on, goes to @ac.
 */
static void estimate(struct audio_check *ac)
{
	uint32_t ea = ac->last_ts - ac->t0, eb = ac->have_t1 ? ac->last_ts - ac->t1 : 0;
	unsigned ra = (unsigned)(ac->samples * 1000 / ea), rb;
	uint64_t sb = ac->samples - ac->first_samples;

	ac->rate = ra;
	ac->elapsed_ms = ea;
	ac->window_samples = ac->samples;
	if (eb == 0)
		return;
	rb = (unsigned)(sb * 1000 / eb);
	if (distance(rb, expected(ac)) < distance(ra, expected(ac))) {
		ac->rate = rb;
		ac->elapsed_ms = eb;
		ac->window_samples = sb;
	}
}

/* One G.711 message of @samples per channel at @ts. */
static int measure(struct audio_check *ac, uint32_t ts, uint32_t samples, char *why,
		   size_t whylen)
{
	int32_t step;

	if (!ac->started) {
		window_start(ac, ts, samples);
		return 0;
	}
	step = (int32_t)(ts - ac->last_ts);
	/* Backwards, or longer than the last message lasts even at half the rate: a pause or a
	 * jump of the publisher's clock, which says nothing about the rate. */
	if (step < 0 || (uint64_t)step * (expected(ac) / 1000) >
			    (uint64_t)ac->last_samples * 2 + AUDIO_GAP_SLACK_MS * (expected(ac) / 1000)) {
		ac->restarts++;
		window_start(ac, ts, samples);
		return 0;
	}
	if (!ac->have_t1) {
		ac->have_t1 = true;
		ac->t1 = ts;
	}
	ac->samples += ac->last_samples;
	ac->last_samples = samples;
	ac->last_ts = ts;
	if (ts - ac->t0 < AUDIO_RATE_WINDOW_MS)
		return 0;
	estimate(ac);
	if (near_rate(ac->rate, expected(ac), AUDIO_RATE_TOL_PCT)) {
		ac->state = AUDIO_CHECK_ACCEPTED;
		return 0;
	}
	if (ts - ac->t0 >= AUDIO_RATE_CONFIRM_MS ||
	    !near_rate(ac->rate, expected(ac), AUDIO_RATE_FAR_PCT)) {
		ac->state = AUDIO_CHECK_REFUSED;
		return refused(ac, why, whylen);
	}
	ac->rate = 0; /* not decided: a second second says */
	return 0;
}

int audio_check_feed(struct audio_check *ac, const uint8_t *msg, size_t len, uint32_t ts,
		     char *why, size_t whylen)
{
	struct rtmp_audio ra;
	size_t data;

	if (ac->state == AUDIO_CHECK_REFUSED)
		return refused(ac, why, whylen);
	if (codec_rtmp_parse(msg, len, &ra, NULL) < 0)
		return 0;
	data = len - ra.hdr_len;
	if (ra.codec->family != CODEC_FAMILY_G711) {
		if (data <= CODEC_RTMP_MAX_AUDIO)
			return 0;
		say(why, whylen,
		    "%zu-byte %s audio message (%zu bytes of audio data) is above the limit of %u "
		    "bytes of audio data per message: send shorter frames",
		    len, ra.codec->name, data, CODEC_RTMP_MAX_AUDIO);
		return -E2BIG;
	}
	if (ac->state != AUDIO_CHECK_MEASURING)
		return 0;
	if (ac->expect_channels > ra.channels)
		ra.channels = ac->expect_channels;
	return measure(ac, ts, (uint32_t)(data / (ra.channels ? ra.channels : 1)), why, whylen);
}

bool audio_g711_piece(size_t hdr_len, size_t len, unsigned channels, unsigned rate, uint32_t ts,
		      size_t i, struct audio_piece *p)
{
	size_t data = len > hdr_len ? len - hdr_len : 0;
	size_t off = i * AUDIO_G711_PIECE;

	if (channels == 0)
		channels = 1;
	if (i >= (data + AUDIO_G711_PIECE - 1) / AUDIO_G711_PIECE)
		return false;
	p->off = off;
	p->len = data - off < AUDIO_G711_PIECE ? data - off : AUDIO_G711_PIECE;
	/* AUDIO_G711_PIECE / channels samples of each channel = 1000 / channels ms at 8 kHz */
	p->ts = ts + (uint32_t)(i * (AUDIO_G711_PIECE / channels) * 1000 /
				(rate ? rate : AUDIO_G711_RATE));
	return true;
}
