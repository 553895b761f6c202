/*
 * audio_mark.h - numbered markers in 8 kHz audio for end-to-end delay tests (header only: the
 * tools are single files). The far end (rtp_probe marks) sends low noise with a marker frame now
 * and then and prints when it sent each one; the player (rtmp_client --play) finds the markers in
 * what it receives and prints when each arrived. Both print CLOCK_MONOTONIC times, so on one
 * machine the delay of marker k is its arrival minus its send time, joined on k.
 *
 * A marker is one 20 ms frame (160 samples) of a square wave at +-AUDIO_MARK_AMP whose signs
 * spell its number:
 *
 *   samples   0..15   sync: +A x4, -A x4, +A x4, -A x4 (1 kHz)
 *            16..143  32 bits of 4 samples each (+A: 1, -A: 0): k (16 bits, MSB first), then ~k
 *           144..159  sync again
 *
 * Between markers the far end sends noise of at most AUDIO_MARK_NOISE. The detector takes the
 * first sample louder than A/2 after at least AUDIO_MARK_QUIET quiet samples (below A/4) as a
 * marker's first sample, collects 160 samples from there (across messages of any size) and checks
 * both syncs sample by sample, each bit by the signs of its 4 samples, and k against ~k. A valid
 * marker reports k with the arrival time of the message that held its first sample; anything else
 * reports -1 (a bad marker). It survives G.711 both ways, re-framing and a gain change; not a lossy
 * codec (Speex).
 *
 *   int16_t pcm[AUDIO_MARK_SAMPLES];
 *   audio_mark_frame(pcm, k);                          sender: one marker frame
 *   struct audio_mark_det d = {0};
 *   audio_mark_feed(&d, pcm, n, arrival_us, on_mark, arg);   receiver: every sample, in order
 */
#ifndef RS_AUDIO_MARK_H
#define RS_AUDIO_MARK_H

#include <stddef.h>
#include <stdint.h>

#define AUDIO_MARK_SAMPLES 160	 /* one 20 ms frame at 8 kHz */
#define AUDIO_MARK_AMP	   16000 /* -6 dBFS */
#define AUDIO_MARK_NOISE   200	 /* the far end's noise between markers: -44 dBFS at most */
#define AUDIO_MARK_QUIET   400	 /* quiet samples (50 ms) before a marker may start */
#define AUDIO_MARK_SYNC	   16
#define AUDIO_MARK_BITS	   32
#define AUDIO_MARK_BIT_LEN 4

/* The sign (+1 / -1) of sample @i of the marker numbered @k. */
static inline int audio_mark_sign(uint16_t k, unsigned i)
{
	uint32_t word = (uint32_t)k << 16 | (uint16_t)~k;
	unsigned bit;

	if (i < AUDIO_MARK_SYNC || i >= AUDIO_MARK_SYNC + AUDIO_MARK_BITS * AUDIO_MARK_BIT_LEN)
		return (i / 4) % 2 ? -1 : 1;
	bit = (i - AUDIO_MARK_SYNC) / AUDIO_MARK_BIT_LEN;
	return (word >> (AUDIO_MARK_BITS - 1 - bit)) & 1 ? 1 : -1;
}

/* Writes the marker numbered @k into @out (AUDIO_MARK_SAMPLES samples). */
static inline void audio_mark_frame(int16_t out[AUDIO_MARK_SAMPLES], uint16_t k)
{
	for (unsigned i = 0; i < AUDIO_MARK_SAMPLES; i++)
		out[i] = (int16_t)(audio_mark_sign(k, i) * AUDIO_MARK_AMP);
}

/* Called for each marker found: @k its number, or -1 for a loud frame that is no valid marker;
 * @t_us the arrival time given with the samples that held its first sample. */
typedef void (*audio_mark_cb)(void *arg, long k, uint64_t t_us);

struct audio_mark_det {
	unsigned quiet; /* quiet samples in a row (capped) */
	unsigned have;	/* samples collected of the current marker; 0: not in one */
	int16_t buf[AUDIO_MARK_SAMPLES];
	uint64_t onset_us;
	unsigned long found, bad;
};

/* Decodes a collected frame: its number, or -1. */
static inline long audio_mark_decode(const int16_t *s)
{
	uint32_t word = 0;
	uint16_t k;

	for (unsigned i = 0; i < AUDIO_MARK_SYNC; i++) {
		unsigned j = AUDIO_MARK_SAMPLES - AUDIO_MARK_SYNC + i;

		if ((s[i] > 0) != (audio_mark_sign(0, i) > 0) ||
		    (s[j] > 0) != (audio_mark_sign(0, j) > 0))
			return -1;
	}
	for (unsigned b = 0; b < AUDIO_MARK_BITS; b++) {
		int vote = 0;

		for (unsigned i = 0; i < AUDIO_MARK_BIT_LEN; i++) {
			int16_t v = s[AUDIO_MARK_SYNC + b * AUDIO_MARK_BIT_LEN + i];

			vote += v > 0 ? 1 : v < 0 ? -1 : 0;
		}
		if (vote == 0)
			return -1;
		word = word << 1 | (vote > 0);
	}
	k = (uint16_t)(word >> 16);
	return (uint16_t)~k == (uint16_t)word ? (long)k : -1;
}

/* Feeds @n samples that arrived at @t_us (in stream order); calls @cb for each marker that ends
 * within them. */
static inline void audio_mark_feed(struct audio_mark_det *d, const int16_t *s, size_t n,
				   uint64_t t_us, audio_mark_cb cb, void *arg)
{
	for (size_t i = 0; i < n; i++) {
		int v = s[i] < 0 ? -s[i] : s[i];

		if (d->have) {
			d->buf[d->have++] = s[i];
			if (d->have == AUDIO_MARK_SAMPLES) {
				long k = audio_mark_decode(d->buf);

				if (k < 0)
					d->bad++;
				else
					d->found++;
				cb(arg, k, d->onset_us);
				d->have = 0;
				d->quiet = 0;
			}
			continue;
		}
		if (v > AUDIO_MARK_AMP / 2 && d->quiet >= AUDIO_MARK_QUIET) {
			d->buf[0] = s[i];
			d->have = 1;
			d->onset_us = t_us;
			continue;
		}
		if (v < AUDIO_MARK_AMP / 4) {
			if (d->quiet < AUDIO_MARK_QUIET)
				d->quiet++;
		} else {
			d->quiet = 0;
		}
	}
}

#endif
