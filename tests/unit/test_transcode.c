/*
 * test_transcode.c - G.711, the codec table, the Speex bitstream walk and the transcoder: tones
 * through every codec pair and back (dominant frequency and level), byte-identical pass-through,
 * multi-frame Speex splitting, G.711 re-cutting, sample counts, concealment, bad input.
 */
#include "acodec.h"
#include "codec.h"
#include "g711.h"
#include "harness.h"
#include "log.h"
#include "transcode.h"

#include <speex/speex.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TONE_AMP 8000.0
#define PI2	 6.283185307179586

/* ---- helpers --------------------------------------------------------------------------- */

/* Reference decoders, from the G.711 definition (independent of g711.c's tables). */
static int ulaw_decode_ref(uint8_t u)
{
	int t;

	u = (uint8_t)~u;
	t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
	return (u & 0x80) ? 0x84 - t : t - 0x84;
}

static int alaw_decode_ref(uint8_t a)
{
	int t, seg;

	a ^= 0x55;
	t = (a & 0x0F) << 4;
	seg = (a & 0x70) >> 4;
	if (seg == 0)
		t += 8;
	else
		t = (t + 0x108) << (seg - 1);
	return (a & 0x80) ? t : -t;
}

static void tone(int16_t *pcm, size_t n, unsigned rate, double freq, size_t *phase)
{
	for (size_t i = 0; i < n; i++, (*phase)++)
		pcm[i] = (int16_t)lrint(TONE_AMP * sin(PI2 * freq * (double)*phase / rate));
}

static double rms(const int16_t *pcm, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += (double)pcm[i] * pcm[i];
	return n ? sqrt(s / (double)n) : 0;
}

/* Goertzel power of @freq in @pcm. */
static double goertzel(const int16_t *pcm, size_t n, unsigned rate, double freq)
{
	double w = PI2 * freq / rate, c = 2 * cos(w), s1 = 0, s2 = 0;

	for (size_t i = 0; i < n; i++) {
		double s0 = pcm[i] + c * s1 - s2;

		s2 = s1;
		s1 = s0;
	}
	return s1 * s1 + s2 * s2 - c * s1 * s2;
}

/* The strongest frequency between 200 Hz and rate/2 - 200, on a 5 Hz grid. */
static double dominant(const int16_t *pcm, size_t n, unsigned rate)
{
	double best = 0, best_f = 0;

	for (double f = 200; f <= rate / 2.0 - 200; f += 5) {
		double p = goertzel(pcm, n, rate, f);

		if (p > best) {
			best = p;
			best_f = f;
		}
	}
	return best_f;
}

/* Encodes @frames frames of @pcm into one Speex packet; returns its length. */
static int speex_packet(void *enc, SpeexBits *bits, int16_t *pcm, unsigned frame, unsigned frames,
			uint8_t *dst, int cap)
{
	speex_bits_reset(bits);
	for (unsigned i = 0; i < frames; i++)
		speex_encode_int(enc, pcm + i * frame, bits);
	return speex_bits_write(bits, (char *)dst, cap);
}

static void *speex_enc(const SpeexMode *mode, int q)
{
	void *e = speex_encoder_init(mode);
	int c = 2;

	speex_encoder_ctl(e, SPEEX_SET_QUALITY, &q);
	speex_encoder_ctl(e, SPEEX_SET_COMPLEXITY, &c);
	return e;
}

/* A growing PCM capture. */
struct pcm_sink {
	int16_t *s;
	size_t n, cap;
};

static void sink_add(struct pcm_sink *k, const int16_t *p, size_t n)
{
	if (k->n + n > k->cap) {
		k->cap = (k->n + n) * 2 + 1024;
		k->s = realloc(k->s, k->cap * sizeof(*k->s));
	}
	memcpy(k->s + k->n, p, n * sizeof(*p));
	k->n += n;
}

/*
 * Decodes one RTMP audio message payload (tag included) of codec @c into @k, with @dec a WB
 * Speex decoder for Speex. Returns the samples decoded, -1 on a decoding problem.
 */
static long decode_rtmp(const struct codec *c, void *dec, const uint8_t *m, size_t len,
			struct pcm_sink *k)
{
	int16_t pcm[8192];

	if (len < 1 || m[0] != c->rtmp_audio_byte)
		return -1;
	if (c->family == CODEC_FAMILY_G711) {
		if (len - 1 > 8192)
			return -1;
		if (c->id == CODEC_PCMU)
			g711_ulaw_decode_buf(pcm, m + 1, len - 1);
		else
			g711_alaw_decode_buf(pcm, m + 1, len - 1);
		sink_add(k, pcm, len - 1);
		return (long)(len - 1);
	} else {
		SpeexBits b;
		int n = transcode_speex_frames(m + 1, len - 1);
		long got = 0;

		if (n < 0)
			return -1;
		speex_bits_init(&b);
		speex_bits_read_from(&b, (const char *)m + 1, (int)len - 1);
		for (int i = 0; i < n; i++) {
			if (speex_decode_int(dec, &b, pcm) != 0) {
				got = -1;
				break;
			}
			sink_add(k, pcm, 320);
			got += 320;
		}
		speex_bits_destroy(&b);
		return got;
	}
}

static size_t out_samples(const struct tc_out *o)
{
	size_t s = 0;

	for (unsigned i = 0; i < o->n; i++)
		s += o->f[i].samples;
	return s;
}

/* ---- G.711 and the codec table --------------------------------------------------------- */

static void test_g711(void)
{
	int bad = 0;

	for (int i = 0; i < 256; i++) {
		uint8_t b = (uint8_t)i, x[1], y[1];

		if (g711_ulaw_decode(b) != ulaw_decode_ref(b) ||
		    g711_alaw_decode(b) != alaw_decode_ref(b))
			bad++;
		if (i != 0x7F && g711_ulaw_encode(g711_ulaw_decode(b)) != b) /* 0x7F is -0 */
			bad++;
		if (g711_alaw_encode(g711_alaw_decode(b)) != b)
			bad++;
		g711_ulaw_to_alaw_buf(x, &b, 1);
		g711_alaw_to_ulaw_buf(y, &b, 1);
		if (x[0] != g711_alaw_encode(g711_ulaw_decode(b)) ||
		    y[0] != g711_ulaw_encode(g711_alaw_decode(b)))
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(g711_ulaw_encode(0), 0xFF);
	CHECK_EQ_INT(g711_alaw_encode(0), 0xD5);
	CHECK_EQ_INT(g711_ulaw_encode(32767), 0x80);
	CHECK_EQ_INT(g711_ulaw_encode(-32768), 0x00);
	CHECK_EQ_INT(g711_alaw_encode(32767), 0xAA);
	CHECK_EQ_INT(g711_alaw_encode(-32768), 0x2A);
	/* Quantisation error stays within half a step: encode/decode is monotonic and close. */
	for (int s = -32768, prev_u = -40000, prev_a = -40000; s <= 32767; s += 7) {
		int u = g711_ulaw_decode(g711_ulaw_encode((int16_t)s));
		int a = g711_alaw_decode(g711_alaw_encode((int16_t)s));

		CHECK(u >= prev_u && a >= prev_a);
		CHECK(abs(u - s) <= 1100 && abs(a - s) <= 1100);
		prev_u = u;
		prev_a = a;
	}
}

/* ---- Speex bitstream walk -------------------------------------------------------------- */

static void test_speex_walk(void)
{
	void *wb = speex_enc(&speex_wb_mode, 8), *nb = speex_enc(&speex_nb_mode, 5);
	SpeexBits bits;
	int16_t pcm[4 * 320];
	uint8_t pkt[1024];
	size_t ph = 0;
	int len;

	speex_bits_init(&bits);
	tone(pcm, 4 * 320, 16000, 1000, &ph);
	CHECK_EQ_INT(transcode_speex_frames(pkt, 0), 0);
	for (unsigned k = 1; k <= 4; k++) {
		len = speex_packet(wb, &bits, pcm, 320, k, pkt, sizeof(pkt));
		CHECK_EQ_INT(transcode_speex_frames(pkt, (size_t)len), (int)k);
		len = speex_packet(nb, &bits, pcm, 160, k, pkt, sizeof(pkt));
		CHECK_EQ_INT(transcode_speex_frames(pkt, (size_t)len), (int)k);
	}
	/* Every WB quality, 1-3 frames. */
	for (int q = 0; q <= 10; q++) {
		void *e = speex_enc(&speex_wb_mode, q);

		for (unsigned k = 1; k <= 3; k++) {
			len = speex_packet(e, &bits, pcm, 320, k, pkt, sizeof(pkt));
			CHECK_EQ_INT(transcode_speex_frames(pkt, (size_t)len), (int)k);
		}
		speex_encoder_destroy(e);
	}
	/* In-band requests (14: id 8 = char, 8 bits; 13: user, 2 bytes) before and between frames.
	 */
	speex_bits_reset(&bits);
	speex_bits_pack(&bits, 0, 1);
	speex_bits_pack(&bits, 14, 4);
	speex_bits_pack(&bits, 8, 4);
	speex_bits_pack(&bits, 'x', 8);
	speex_encode_int(wb, pcm, &bits);
	speex_bits_pack(&bits, 0, 1);
	speex_bits_pack(&bits, 13, 4);
	speex_bits_pack(&bits, 2, 4);
	speex_bits_pack(&bits, 0, 5 + 16);
	speex_encode_int(wb, pcm + 320, &bits);
	len = speex_bits_write(&bits, (char *)pkt, sizeof(pkt));
	CHECK_EQ_INT(transcode_speex_frames(pkt, (size_t)len), 2);
	/* Terminator mid-packet ends it. */
	speex_bits_reset(&bits);
	speex_encode_int(wb, pcm, &bits);
	speex_bits_pack(&bits, 0, 1);
	speex_bits_pack(&bits, 15, 4);
	speex_encode_int(wb, pcm + 320, &bits);
	len = speex_bits_write(&bits, (char *)pkt, sizeof(pkt));
	CHECK_EQ_INT(transcode_speex_frames(pkt, (size_t)len), 1);
	/* Truncated: one frame cut short. */
	len = speex_packet(wb, &bits, pcm, 320, 2, pkt, sizeof(pkt));
	CHECK_EQ_INT(transcode_speex_frames(pkt, (size_t)len - 20), -EPROTO);
	CHECK_EQ_INT(transcode_speex_frames(pkt, 30), -EPROTO);
	/* Invalid NB submode 9, invalid WB submode 5, a leading high-band layer. */
	pkt[0] = 0x09 << 3;
	CHECK_EQ_INT(transcode_speex_frames(pkt, 1), -EPROTO);
	speex_bits_reset(&bits);
	speex_bits_pack(&bits, 0, 5); /* NB submode 0 */
	speex_bits_pack(&bits, 1, 1);
	speex_bits_pack(&bits, 5, 3);
	len = speex_bits_write(&bits, (char *)pkt, sizeof(pkt));
	CHECK_EQ_INT(transcode_speex_frames(pkt, (size_t)len), -EPROTO);
	pkt[0] = 0x80;
	pkt[1] = 0;
	CHECK_EQ_INT(transcode_speex_frames(pkt, 2), -EPROTO);
	/* 65 "no transmission" frames in 41 bytes: refused before decoding. */
	speex_bits_reset(&bits);
	for (int i = 0; i < 65; i++)
		speex_bits_pack(&bits, 0, 5);
	len = speex_bits_write(&bits, (char *)pkt, sizeof(pkt));
	CHECK_EQ_INT(transcode_speex_frames(pkt, (size_t)len), -E2BIG);
	/* Frames the walk counts are the frames libspeex decodes, then it reports the end. */
	{
		void *dec = speex_decoder_init(&speex_wb_mode);
		int16_t out[320];

		len = speex_packet(wb, &bits, pcm, 320, 3, pkt, sizeof(pkt));
		speex_bits_read_from(&bits, (const char *)pkt, len);
		for (int i = 0; i < 3; i++)
			CHECK_EQ_INT(speex_decode_int(dec, &bits, out), 0);
		CHECK_EQ_INT(speex_decode_int(dec, &bits, out), -1);
		speex_decoder_destroy(dec);
	}
	speex_bits_destroy(&bits);
	speex_encoder_destroy(wb);
	speex_encoder_destroy(nb);
}

/* ---- pass-through ---------------------------------------------------------------------- */

static void test_speex_passthrough(void)
{
	struct transcode_opts o;
	struct transcoder *t, *whole;
	static struct tc_out out;
	void *enc = speex_enc(&speex_wb_mode, 8);
	SpeexBits bits;
	int16_t pcm[3 * 320];
	uint8_t msg[1024];
	size_t ph = 0;

	transcode_opts_default(&o);
	t = transcoder_new(&o, CODEC_SPEEX_WB, CODEC_SPEEX_WB);
	o.speex_split = false;
	whole = transcoder_new(&o, CODEC_SPEEX_WB, CODEC_SPEEX_WB);
	CHECK(t && whole && transcoder_is_passthrough(t));
	speex_bits_init(&bits);
	for (unsigned k = 1; k <= 3; k++) {
		void *d1 = speex_decoder_init(&speex_wb_mode),
		     *d2 = speex_decoder_init(&speex_wb_mode);
		int16_t a[320], b[320];
		int len, same = 1;

		tone(pcm, k * 320, 16000, 1000, &ph);
		msg[0] = 0xB2;
		len = speex_packet(enc, &bits, pcm, 320, k, msg + 1, sizeof(msg) - 1);
		/* RTMP -> SIP, split: k payloads of 320 samples decoding like the original frames.
		 */
		CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, (size_t)len + 1, &out), 0);
		CHECK_EQ_INT(out.n, k);
		CHECK_EQ_INT(out.rate, 16000);
		speex_bits_read_from(&bits, (const char *)msg + 1, len);
		for (unsigned i = 0; i < out.n; i++) {
			SpeexBits one;

			CHECK_EQ_INT(out.f[i].samples, 320);
			CHECK_EQ_INT(out.f[i].ms, 20);
			CHECK_EQ_INT(transcode_speex_frames(tc_frame_data(&out, i), out.f[i].len),
				     1);
			speex_bits_init(&one);
			speex_bits_read_from(&one, (const char *)tc_frame_data(&out, i),
					     out.f[i].len);
			CHECK_EQ_INT(speex_decode_int(d1, &bits, a), 0);
			CHECK_EQ_INT(speex_decode_int(d2, &one, b), 0);
			same &= memcmp(a, b, sizeof(a)) == 0;
			speex_bits_destroy(&one);
		}
		CHECK(same);
		if (k == 1)
			CHECK(out.f[0].len == len &&
			      memcmp(tc_frame_data(&out, 0), msg + 1, len) == 0);
		/* Without splitting: one payload, identical bytes, k x 320 samples. */
		CHECK_EQ_INT(transcoder_rtmp_to_sip(whole, msg, (size_t)len + 1, &out), 0);
		CHECK(out.n == 1 && out.f[0].len == len && out.f[0].samples == k * 320);
		CHECK(memcmp(tc_frame_data(&out, 0), msg + 1, len) == 0);
		/* SIP -> RTMP: the same bytes behind the tag, k x 320 samples. */
		CHECK_EQ_INT(transcoder_sip_to_rtmp(t, msg + 1, (size_t)len, &out), 0);
		CHECK(out.n == 1 && out.f[0].len == len + 1 && out.f[0].samples == k * 320);
		CHECK(out.rate == 16000 && out.f[0].ms == k * 20);
		CHECK(memcmp(tc_frame_data(&out, 0), msg, (size_t)len + 1) == 0);
		speex_decoder_destroy(d1);
		speex_decoder_destroy(d2);
	}
	/* A terminator-only message gives nothing. */
	msg[1] = 0x7F;
	CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, 2, &out), 0);
	CHECK_EQ_INT(out.n, 0);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, 1, &out), 0);
	CHECK_EQ_INT(out.n, 0);
	speex_bits_destroy(&bits);
	speex_encoder_destroy(enc);
	transcoder_destroy(&t);
	transcoder_destroy(&whole);
	CHECK(t == NULL);
	transcoder_destroy(&whole);
	transcoder_destroy(NULL);
}

static void test_g711_passthrough(void)
{
	static struct tc_out out;
	struct transcoder *t = transcoder_new(NULL, CODEC_PCMU, CODEC_PCMU);
	uint8_t msg[1 + 1024], stream[2048], got[2048];
	size_t got_n = 0;

	CHECK(t && transcoder_is_passthrough(t));
	for (size_t i = 0; i < sizeof(stream); i++)
		stream[i] = (uint8_t)(i * 7 + 3);
	/* ffmpeg-like 1024-byte message: 6 frames, 64 bytes carried. */
	msg[0] = 0x82;
	memcpy(msg + 1, stream, 1024);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, 1025, &out), 0);
	CHECK_EQ_INT(out.n, 6);
	CHECK_EQ_INT(out.rate, 8000);
	for (unsigned i = 0; i < out.n; i++) {
		CHECK(out.f[i].len == 160 && out.f[i].samples == 160 && out.f[i].ms == 20);
		memcpy(got + got_n, tc_frame_data(&out, i), out.f[i].len);
		got_n += out.f[i].len;
	}
	/* 96 more bytes complete the 7th frame from the carried 64. */
	memcpy(msg + 1, stream + 1024, 96);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, 97, &out), 0);
	CHECK_EQ_INT(out.n, 1);
	memcpy(got + got_n, tc_frame_data(&out, 0), out.f[0].len);
	got_n += out.f[0].len;
	/* 100 bytes: nothing yet; 60 more: one frame. */
	memcpy(msg + 1, stream + 1120, 100);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, 101, &out), 0);
	CHECK_EQ_INT(out.n, 0);
	memcpy(msg + 1, stream + 1220, 60);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, 61, &out), 0);
	CHECK_EQ_INT(out.n, 1);
	memcpy(got + got_n, tc_frame_data(&out, 0), out.f[0].len);
	got_n += out.f[0].len;
	CHECK_EQ_INT(got_n, 1280);
	CHECK(memcmp(got, stream, got_n) == 0);
	/* SIP -> RTMP keeps any packetisation, bytes identical. */
	CHECK_EQ_INT(transcoder_sip_to_rtmp(t, stream, 240, &out), 0);
	CHECK(out.n == 1 && out.f[0].len == 241 && out.f[0].samples == 240 && out.f[0].ms == 30);
	CHECK(tc_frame_data(&out, 0)[0] == 0x82 &&
	      memcmp(tc_frame_data(&out, 0) + 1, stream, 240) == 0);
	transcoder_destroy(&t);
}

/* ---- tones through every pair ---------------------------------------------------------- */

/*
 * RTMP input (tone at the RTMP codec's rate; Speex 2 frames per message, G.711 1024-byte
 * messages) -> rtmp_to_sip -> each SIP payload back through sip_to_rtmp -> decode -> check.
 */
static void roundtrip(enum codec_id rc, enum codec_id sc, bool nb_core, double freq)
{
	struct transcode_opts o;
	struct transcoder *t;
	static struct tc_out up, down;
	const struct codec *r = codec_by_id(rc), *s = codec_by_id(sc);
	void *enc = NULL, *dec = speex_decoder_init(&speex_wb_mode);
	SpeexBits bits;
	struct pcm_sink in = {0}, outp = {0};
	size_t ph = 0, sip_samples = 0, rtmp_samples = 0;
	unsigned rate = r->clock_rate, bad_frames = 0;
	int failures = 0;

	transcode_opts_default(&o);
	o.narrowband_core = nb_core;
	t = transcoder_new(&o, rc, sc);
	CHECK(t != NULL);
	if (!t)
		return;
	speex_bits_init(&bits);
	if (r->family == CODEC_FAMILY_SPEEX)
		enc = speex_enc(&speex_wb_mode, 8);
	for (int m = 0; m < 40; m++) { /* 40 x 40 ms (Speex) or 40 x 128 ms (G.711) */
		int16_t pcm[1024];
		uint8_t msg[1 + 1024];
		size_t n = r->family == CODEC_FAMILY_SPEEX ? 640 : 1024, len;

		tone(pcm, n, rate, freq, &ph);
		sink_add(&in, pcm, n);
		msg[0] = r->rtmp_audio_byte;
		if (enc)
			len = (size_t)speex_packet(enc, &bits, pcm, 320, 2, msg + 1, 1024);
		else if (rc == CODEC_PCMU)
			g711_ulaw_encode_buf(msg + 1, pcm, n), len = n;
		else
			g711_alaw_encode_buf(msg + 1, pcm, n), len = n;
		failures += transcoder_rtmp_to_sip(t, msg, len + 1, &up) != 0;
		CHECK_EQ_INT(up.rate, s->clock_rate);
		for (unsigned i = 0; i < up.n; i++) {
			sip_samples += up.f[i].samples;
			bad_frames += up.f[i].samples != s->frame_samples || up.f[i].ms != 20;
			failures += transcoder_sip_to_rtmp(t, tc_frame_data(&up, i), up.f[i].len,
							   &down) != 0;
			CHECK_EQ_INT(down.rate, rate);
			for (unsigned j = 0; j < down.n; j++) {
				long got = decode_rtmp(r, dec, tc_frame_data(&down, j),
						       down.f[j].len, &outp);

				failures += got < 0;
				bad_frames += got != down.f[j].samples;
				rtmp_samples += down.f[j].samples;
			}
		}
	}
	CHECK_EQ_INT(failures, 0);
	CHECK_EQ_INT(bad_frames, 0);
	/* Durations: SIP side within one frame + FIFO of the input, RTMP side likewise. */
	{
		double in_s = (double)in.n / rate, sip_s = (double)sip_samples / s->clock_rate;
		double back_s = (double)rtmp_samples / rate;

		CHECK(sip_s <= in_s + 1e-9 && sip_s > in_s - 0.045);
		CHECK(back_s <= sip_s + 1e-9 && back_s > sip_s - 0.045);
	}
	/* Skip the first 200 ms (codec and resampler start-up); analyse 1 s. */
	if (outp.n > (size_t)rate * 6 / 5) {
		const int16_t *p = outp.s + rate / 5;
		size_t n = rate;
		double f = dominant(p, n, rate), level = 20 * log10(rms(p, n) / rms(in.s, in.n));

		if (fabs(f - freq) > 20 || fabs(level) > 3 || getenv("TC_VERBOSE"))
			fprintf(stderr, "%s -> %s%s: %.0f Hz, %.1f dB\n", r->label, s->label,
				nb_core ? " (nb core)" : "", f, level);
		CHECK(fabs(f - freq) <= 20);
		CHECK(fabs(level) <= 3);
	} else {
		CHECK(!"too little audio came back");
	}
	free(in.s);
	free(outp.s);
	speex_bits_destroy(&bits);
	if (enc)
		speex_encoder_destroy(enc);
	speex_decoder_destroy(dec);
	transcoder_destroy(&t);
}

static void test_tone_speex_pcmu_speex(void)
{
	roundtrip(CODEC_SPEEX_WB, CODEC_PCMU, true, 1000);
	roundtrip(CODEC_SPEEX_WB, CODEC_PCMU, false, 1000);
}

static void test_tone_pcmu_speex_pcmu(void)
{
	roundtrip(CODEC_PCMU, CODEC_SPEEX_WB, true, 1000);
	roundtrip(CODEC_PCMU, CODEC_SPEEX_WB, false, 1000);
}

static void test_tone_all_pairs(void)
{
	static const enum codec_id rtmp[] = {CODEC_SPEEX_WB, CODEC_PCMU, CODEC_PCMA};
	static const enum codec_id sip[] = {CODEC_SPEEX_WB, CODEC_SPEEX_NB, CODEC_PCMU,
					    CODEC_PCMA,	    CODEC_G722,	    CODEC_OPUS};

	for (unsigned i = 0; i < 3; i++)
		for (unsigned j = 0; j < sizeof(sip) / sizeof(sip[0]); j++)
			for (int nb = 0; nb < 2; nb++)
				roundtrip(rtmp[i], sip[j], nb, i ? 1000 : 1500);
}

/* ---- library codecs on the RTMP side ------------------------------------------------- */

/*
 * A publisher of @rc at @rate Hz (mono, made with acodec's encoder: the sequence header first
 * where the codec has one), through a transcoder to @sc and back: what a player of the call
 * receives is decoded and its pitch and level checked, and the SIP side's frames are whole
 * 20 ms frames of its clock.
 */
static void lib_roundtrip(enum codec_id rc, unsigned rate, enum codec_id sc, double freq)
{
	const struct codec *r = codec_by_id(rc), *s = codec_by_id(sc);
	struct transcode_opts o;
	struct transcoder *t;
	struct acodec_enc *enc;
	struct acodec_dec *dec = NULL;
	static struct tc_out up, down;
	static int16_t pcm[8192], got[8192];
	struct pcm_sink in = {0}, outp = {0};
	uint8_t msg[8192];
	size_t ph = 0, h;
	unsigned dec_rate = 0, configs = 0, bad_frames = 0, frames_in = 0;
	int failures = 0, n;
	char why[160];

	transcode_opts_default(&o);
	o.rtmp_rate = rate;
	o.rtmp_channels = 1;
	t = transcoder_new(&o, rc, sc);
	enc = acodec_enc_new(r, rate, 1, NULL, "test", why, sizeof(why));
	CHECK(t != NULL);
	CHECK(enc != NULL);
	if (!t || !enc)
		goto out;
	h = codec_rtmp_header(r, rate, 1, true, msg);
	n = (int)acodec_enc_config(enc, msg + h, sizeof(msg) - h);
	if (n > 0)
		CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, h + (size_t)n, &up), 0);
	while (in.n < (size_t)rate * 3 / 2) {
		unsigned fs = acodec_enc_frame(enc);

		tone(pcm, fs, rate, freq, &ph);
		sink_add(&in, pcm, fs);
		h = codec_rtmp_header(r, rate, 1, false, msg);
		n = acodec_encode(enc, pcm, msg + h, sizeof(msg) - h);
		CHECK(n >= 0);
		if (n <= 0)
			continue;
		frames_in++;
		failures += transcoder_rtmp_to_sip(t, msg, h + (size_t)n, &up) != 0;
		for (unsigned i = 0; i < up.n; i++) {
			bad_frames += up.f[i].samples != s->frame_samples || up.f[i].ms != 20;
			failures += transcoder_sip_to_rtmp(t, tc_frame_data(&up, i), up.f[i].len,
							   &down) != 0;
			for (unsigned j = 0; j < down.n; j++) {
				const uint8_t *m = tc_frame_data(&down, j);
				struct rtmp_audio ra;

				if (codec_rtmp_parse(m, down.f[j].len, &ra, NULL) < 0 || ra.codec != r) {
					failures++;
					continue;
				}
				if (ra.config) {
					configs++;
					CHECK_EQ_INT(down.f[j].samples, 0);
					acodec_dec_free(&dec);
					dec = acodec_dec_new(r, 0, 1, m + ra.hdr_len,
							     down.f[j].len - ra.hdr_len, "test", why,
							     sizeof(why));
					continue;
				}
				if (!dec) /* MP3, Nellymoser: no sequence header */
					dec = acodec_dec_new(r, ra.rate ? ra.rate : down.rate, 1, NULL,
							     0, "test", why, sizeof(why));
				n = dec ? acodec_decode(dec, m + ra.hdr_len, down.f[j].len - ra.hdr_len,
							got, 8192)
					: -1;
				failures += n < 0;
				if (n > 0) {
					sink_add(&outp, got, (size_t)n);
					dec_rate = acodec_dec_rate(dec);
				}
			}
		}
	}
	CHECK_EQ_INT(failures, 0);
	CHECK_EQ_INT(bad_frames, 0);
	CHECK(frames_in > 0);
	CHECK_EQ_INT(configs, (r->id == CODEC_AAC || r->id == CODEC_OPUS) ? 1 : 0);
	/* Skip 300 ms of codec start-up; analyse 0.5 s. */
	if (dec_rate && outp.n > (size_t)dec_rate * 4 / 5) {
		const int16_t *p = outp.s + dec_rate * 3 / 10;
		size_t len = dec_rate / 2;
		double f = dominant(p, len, dec_rate), level = 20 * log10(rms(p, len) / rms(in.s, in.n));

		if (fabs(f - freq) > 20 || fabs(level) > 3 || getenv("TC_VERBOSE"))
			fprintf(stderr, "%s/%u -> %s -> %s/%u: %.0f Hz, %.1f dB\n", r->label, rate,
				s->label, r->label, dec_rate, f, level);
		CHECK(fabs(f - freq) <= 20);
		CHECK(fabs(level) <= 3);
	} else {
		fprintf(stderr, "%s/%u -> %s: %zu samples back at %u Hz\n", r->label, rate, s->label,
			outp.n, dec_rate);
		CHECK(!"too little audio came back");
	}
out:
	free(in.s);
	free(outp.s);
	acodec_dec_free(&dec);
	acodec_enc_free(&enc);
	transcoder_destroy(&t);
}

static void test_tone_library_codecs(void)
{
	static const enum codec_id sip[] = {CODEC_PCMU, CODEC_SPEEX_WB, CODEC_G722, CODEC_OPUS};

	for (unsigned j = 0; j < sizeof(sip) / sizeof(sip[0]); j++) {
		lib_roundtrip(CODEC_AAC, 44100, sip[j], 1000);
		lib_roundtrip(CODEC_AAC, 48000, sip[j], 1000);
		lib_roundtrip(CODEC_AAC, 16000, sip[j], 1000);
		lib_roundtrip(CODEC_MP3, 44100, sip[j], 1000);
		/* libavcodec's Nellymoser loses about 5 dB on a pure 1,000 Hz tone each way (ffmpeg
		 * itself: -21.1 dB in, -26.5 dB out); 1,020 Hz passes at its level. */
		lib_roundtrip(CODEC_NELLYMOSER, 16000, sip[j], 1020);
		lib_roundtrip(CODEC_NELLYMOSER, 8000, sip[j], 1020);
		lib_roundtrip(CODEC_OPUS, 48000, sip[j], 1000);
	}
}

/* Opus from an Enhanced RTMP publisher to an Opus peer: the packets pass unchanged. */
static void test_opus_passthrough(void)
{
	struct transcoder *t = transcoder_new(NULL, CODEC_OPUS, CODEC_OPUS);
	const struct codec *c = codec_by_id(CODEC_OPUS);
	struct acodec_enc *enc = acodec_enc_new(c, 48000, 1, NULL, "test", NULL, 0);
	static struct tc_out up, down;
	static int16_t pcm[960];
	uint8_t msg[1500];
	size_t ph = 0;
	int n;

	CHECK(t != NULL && enc != NULL && transcoder_is_passthrough(t));
	if (!t || !enc)
		goto out;
	tone(pcm, 960, 48000, 1000, &ph);
	n = acodec_encode(enc, pcm, msg + 5, sizeof(msg) - 5);
	CHECK(n > 0);
	codec_rtmp_header(c, 48000, 1, false, msg);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, 5 + (size_t)n, &up), 0);
	CHECK_EQ_INT(up.n, 1);
	CHECK_EQ_INT(up.f[0].len, n);
	CHECK_EQ_INT(up.f[0].samples, 960);
	CHECK(memcmp(tc_frame_data(&up, 0), msg + 5, (size_t)n) == 0);
	/* toward RTMP: an OpusHead sequence start first, then the packet behind its header */
	CHECK_EQ_INT(transcoder_sip_to_rtmp(t, msg + 5, (size_t)n, &down), 0);
	CHECK_EQ_INT(down.n, 2);
	CHECK_EQ_INT(down.f[0].samples, 0);
	CHECK(memcmp(tc_frame_data(&down, 0), "\x90OpusOpusHead", 13) == 0);
	CHECK_EQ_INT(down.f[1].len, 5 + n);
	CHECK(memcmp(tc_frame_data(&down, 1), msg, 5 + (size_t)n) == 0);
	CHECK_EQ_INT(transcoder_sip_to_rtmp(t, msg + 5, (size_t)n, &down), 0);
	CHECK_EQ_INT(down.n, 1); /* the header once */
	/* a forged packet (code 3 frame count 0) is refused, not passed */
	msg[5] = 0x03;
	msg[6] = 0x00;
	CHECK(transcoder_rtmp_to_sip(t, msg, 7, &up) < 0);
out:
	acodec_enc_free(&enc);
	transcoder_destroy(&t);
}

/* A lost Opus frame from the SIP side rebuilt from the next packet's in-band FEC. */
static void test_opus_fec_conceal(void)
{
	struct transcoder *t = transcoder_new(NULL, CODEC_PCMU, CODEC_OPUS);
	struct acodec_enc_opts eo = {.fec = true, .loss_pct = 20};
	struct acodec_enc *enc = acodec_enc_new(codec_by_id(CODEC_OPUS), 16000, 1, &eo, "t", NULL, 0);
	static struct tc_out out;
	static int16_t pcm[320];
	uint8_t pkt[12][400];
	int len[12];
	size_t ph = 0;

	CHECK(t && enc);
	if (!t || !enc)
		goto out;
	for (int i = 0; i < 12; i++) {
		tone(pcm, 320, 16000, 1000, &ph);
		len[i] = acodec_encode(enc, pcm, pkt[i], sizeof(pkt[i]));
		CHECK(len[i] > 0);
	}
	for (int i = 0; i < 12; i++) {
		int16_t back[160];

		if (i == 8) { /* lost: its FEC comes with packet 9 */
			CHECK_EQ_INT(transcoder_conceal(t, pkt[9], (size_t)len[9], &out), 0);
			CHECK_EQ_INT(out.n, 1);
			if (out.n == 1) {
				CHECK_EQ_INT(out.f[0].len, 161);
				g711_ulaw_decode_buf(back, tc_frame_data(&out, 0) + 1, 160);
				/* the tone goes on at its level (PLC alone would fade) */
				CHECK(rms(back, 160) > TONE_AMP / sqrt(2) / 2);
			}
			continue;
		}
		CHECK_EQ_INT(transcoder_sip_to_rtmp(t, pkt[i], (size_t)len[i], &out), 0);
	}
out:
	acodec_enc_free(&enc);
	transcoder_destroy(&t);
}

/* The SIP codec changes after the answer: AAC's decoder (its sequence header came once) goes to
 * the new transcoder. */
static void test_aac_handover(void)
{
	const struct codec *aac = codec_by_id(CODEC_AAC);
	struct transcoder *a = transcoder_new(NULL, CODEC_AAC, CODEC_OPUS);
	struct transcoder *b = transcoder_new(NULL, CODEC_AAC, CODEC_PCMU);
	struct acodec_enc *enc = acodec_enc_new(aac, 44100, 1, NULL, "t", NULL, 0);
	static struct tc_out out;
	static int16_t pcm[1024];
	uint8_t msg[2048];
	size_t ph = 0, h;
	int n, frames = 0;

	CHECK(a && b && enc);
	if (!a || !b || !enc)
		goto out;
	h = codec_rtmp_header(aac, 44100, 1, true, msg);
	n = (int)acodec_enc_config(enc, msg + h, sizeof(msg) - h);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(a, msg, h + (size_t)n, &out), 0);
	for (int i = 0; i < 20; i++) {
		tone(pcm, 1024, 44100, 1000, &ph);
		h = codec_rtmp_header(aac, 44100, 1, false, msg);
		n = acodec_encode(enc, pcm, msg + h, sizeof(msg) - h);
		if (n <= 0)
			continue;
		if (i == 10)
			transcoder_handover(a, b);
		CHECK_EQ_INT(transcoder_rtmp_to_sip(i < 10 ? a : b, msg, h + (size_t)n, &out), 0);
		if (i >= 10)
			frames += (int)out.n;
	}
	/* 10 AAC frames of 23.2 ms: 11 or 12 PCMU frames of 20 ms (none without the decoder) */
	CHECK(frames >= 10 && frames <= 12);
out:
	acodec_enc_free(&enc);
	transcoder_destroy(&a);
	transcoder_destroy(&b);
}

/* G.711 at 16 kHz, and stereo written as mono (ffmpeg's; the metadata says): decoded, mixed,
 * resampled to the SIP side's 8 kHz at the tone's pitch. */
static void test_g711_odd_rate(void)
{
	for (int stereo = 0; stereo < 2; stereo++) {
		struct transcode_opts o;
		struct transcoder *t;
		static struct tc_out out;
		static int16_t pcm[2048], back[160];
		struct pcm_sink got = {0};
		uint8_t msg[1 + 2048];
		size_t ph = 0;
		unsigned rate = stereo ? 8000 : 16000, n = stereo ? 1024 : 2048;

		transcode_opts_default(&o);
		o.rtmp_rate = rate;
		o.rtmp_channels = stereo ? 2 : 1;
		t = transcoder_new(&o, CODEC_PCMU, CODEC_PCMU);
		/* stereo at 8 kHz: mixed, then passed; 16 kHz: decoded and resampled */
		CHECK(t != NULL && transcoder_is_passthrough(t) == (stereo == 1));
		if (!t)
			continue;
		for (int m = 0; m < 10; m++) {
			msg[0] = 0x82; /* flagged 8 kHz mono, as ffmpeg writes it */
			tone(pcm, n, rate, 700, &ph);
			if (stereo) { /* the same tone in both channels, interleaved */
				for (unsigned i = 0; i < n; i++)
					g711_ulaw_encode_buf(msg + 1 + 2 * i, pcm + i, 1),
					    g711_ulaw_encode_buf(msg + 2 + 2 * i, pcm + i, 1);
			} else {
				g711_ulaw_encode_buf(msg + 1, pcm, n);
			}
			CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, 1 + (stereo ? 2 * n : n), &out), 0);
			for (unsigned i = 0; i < out.n; i++) {
				CHECK_EQ_INT(out.f[i].len, 160);
				g711_ulaw_decode_buf(back, tc_frame_data(&out, i), 160);
				sink_add(&got, back, 160);
			}
		}
		/* 10 x 128 ms in: 64 frames of 20 ms out (within one of the FIFO) */
		CHECK(got.n >= 63 * 160 && got.n <= 64 * 160);
		if (got.n > 8000)
			CHECK(fabs(dominant(got.s + 1600, 6400, 8000) - 700) <= 20);
		free(got.s);
		transcoder_destroy(&t);
	}
}

/*
 * A Speex publisher's leg made before the answer (pass-through, following the stream), then
 * answered with a wideband codec and with PCMU: the new transcoder's decoder has seen the
 * stream from its first frame, so a steady tone stays at its level (a decoder that joins late
 * drifts until it clips: +10 dB and more).
 */
static void test_speex_handover_kinds(void)
{
	static const enum codec_id later[] = {CODEC_OPUS, CODEC_G722, CODEC_PCMU};

	for (unsigned k = 0; k < 3; k++) {
		const struct codec *sc = codec_by_id(later[k]);
		struct transcoder *a = transcoder_new(NULL, CODEC_SPEEX_WB, CODEC_SPEEX_WB);
		struct transcoder *b = transcoder_new(NULL, CODEC_SPEEX_WB, later[k]);
		void *enc = speex_enc(&speex_wb_mode, 8);
		struct acodec_dec *dec =
		    sc->family == CODEC_FAMILY_FRAMED
			? acodec_dec_new(sc, 16000, 1, NULL, 0, "t", NULL, 0)
			: NULL;
		static struct tc_out out;
		static int16_t pcm[320], back[2048];
		SpeexBits bits;
		uint8_t msg[200];
		size_t ph = 0;
		double e = 0, ein = 0;
		long n = 0, nin = 0;

		CHECK(a && b && enc);
		if (!a || !b || !enc)
			goto next;
		CHECK_EQ_INT(transcoder_track_rtmp(a, true), 0);
		speex_bits_init(&bits);
		for (int f = 0; f < 250; f++) {
			tone(pcm, 320, 16000, 600, &ph);
			msg[0] = 0xB2;
			int len = speex_packet(enc, &bits, pcm, 320, 1, msg + 1, sizeof(msg) - 1);
			if (f == 50) { /* the answer */
				CHECK_EQ_INT(transcoder_track_rtmp(b, true), 0);
				transcoder_handover(a, b); /* without it: +13 to +14 dB */
				CHECK_EQ_INT(transcoder_track_rtmp(b, false), 0);
			}
			CHECK_EQ_INT(transcoder_rtmp_to_sip(f < 50 ? a : b, msg, (size_t)len + 1, &out),
				     0);
			if (f < 150)
				continue;
			ein += rms(pcm, 320) * rms(pcm, 320) * 320;
			nin += 320;
			for (unsigned i = 0; i < out.n; i++) {
				int m = 160;

				if (dec)
					m = acodec_decode(dec, tc_frame_data(&out, i), out.f[i].len, back,
							  2048);
				else
					g711_ulaw_decode_buf(back, tc_frame_data(&out, i), 160);
				for (int j = 0; j < m; j++)
					e += (double)back[j] * back[j];
				n += m > 0 ? m : 0;
			}
		}
		speex_bits_destroy(&bits);
		if (n && nin) {
			double level = 10 * log10((e / (double)n) / (ein / (double)nin));

			if (fabs(level) > 3 || getenv("TC_VERBOSE"))
				fprintf(stderr, "speex handover to %s: %.1f dB\n", sc->label, level);
			CHECK(fabs(level) <= 3);
		} else {
			CHECK(!"no audio");
		}
next:
		if (enc)
			speex_encoder_destroy(enc);
		acodec_dec_free(&dec);
		transcoder_destroy(&a);
		transcoder_destroy(&b);
	}
}

/* The Opus options a peer's a=fmtp asks for. */
static void test_opus_fmtp(void)
{
	struct transcode_opts o;

	transcode_opts_default(&o);
	transcode_opts_opus_fmtp(&o, "useinbandfec=1; usedtx=1; maxaveragebitrate=24000");
	CHECK(o.opus_fec && o.opus_dtx);
	CHECK_EQ_INT(o.opus_bitrate, 24000);
	transcode_opts_opus_fmtp(&o, "minptime=10;useinbandfec=0;maxaveragebitrate=3;usedtx");
	CHECK(!o.opus_fec && !o.opus_dtx);
	CHECK_EQ_INT(o.opus_bitrate, 0);
	transcode_opts_opus_fmtp(&o, "maxaveragebitrate=40000x;useinbandfec=1");
	CHECK(o.opus_fec);
	CHECK_EQ_INT(o.opus_bitrate, 0);
	transcode_opts_opus_fmtp(&o, NULL);
	CHECK(!o.opus_fec);
}

/* The WB <-> NB layer path moves bits: each NB payload is the WB frame's NB part. */
static void test_layer_path(void)
{
	static struct tc_out out, back;
	struct transcoder *t = transcoder_new(NULL, CODEC_SPEEX_WB, CODEC_SPEEX_NB);
	void *enc = speex_enc(&speex_wb_mode, 8);
	SpeexBits bits;
	int16_t pcm[640];
	uint8_t msg[512];
	size_t ph = 0;
	int len;

	CHECK(t && !transcoder_is_passthrough(t));
	CHECK(t && strstr(transcoder_describe(t), "layer"));
	speex_bits_init(&bits);
	tone(pcm, 640, 16000, 1000, &ph);
	msg[0] = 0xB2;
	len = speex_packet(enc, &bits, pcm, 320, 2, msg + 1, sizeof(msg) - 1);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, (size_t)len + 1, &out), 0);
	CHECK_EQ_INT(out.n, 2);
	CHECK_EQ_INT(out.rate, 8000);
	for (unsigned i = 0; i < out.n; i++) {
		CHECK_EQ_INT(out.f[i].samples, 160);
		CHECK(out.f[i].len < len / 2); /* the high band is gone */
		CHECK_EQ_INT(transcode_speex_frames(tc_frame_data(&out, i), out.f[i].len), 1);
		CHECK_EQ_INT(transcoder_sip_to_rtmp(t, tc_frame_data(&out, i), out.f[i].len, &back),
			     0);
		CHECK(back.n == 1 && back.f[0].samples == 320 && back.rate == 16000);
		CHECK(back.f[0].len == out.f[i].len + 1 || back.f[0].len == out.f[i].len + 2);
	}
	speex_bits_destroy(&bits);
	speex_encoder_destroy(enc);
	transcoder_destroy(&t);
}

/*
 * Two frames whose high-band layer is submode 0 (what DTX/VAD encoders emit for a silent high
 * band) in one message: libspeex's narrowband decoder cannot skip such a layer by itself, the
 * transcoder must still decode both frames on every path.
 */
static void test_empty_layer_multiframe(void)
{
	static struct tc_out out;
	void *nb = speex_enc(&speex_nb_mode, 8);
	SpeexBits bits;
	int16_t pcm[320];
	uint8_t msg[256];
	size_t ph = 0;
	int len;

	speex_bits_init(&bits);
	tone(pcm, 320, 8000, 1000, &ph);
	speex_bits_reset(&bits);
	for (int i = 0; i < 2; i++) {
		speex_encode_int(nb, pcm + 160 * i, &bits);
		speex_bits_pack(&bits, 1, 1);
		speex_bits_pack(&bits, 0, 3);
	}
	msg[0] = 0xB2;
	len = speex_bits_write(&bits, (char *)msg + 1, sizeof(msg) - 1);
	CHECK_EQ_INT(transcode_speex_frames(msg + 1, (size_t)len), 2);
	for (int nbc = 0; nbc < 2; nbc++) {
		static const enum codec_id sip[] = {CODEC_PCMU, CODEC_SPEEX_NB, CODEC_SPEEX_WB};
		struct transcode_opts o;

		transcode_opts_default(&o);
		o.narrowband_core = nbc;
		for (unsigned j = 0; j < 3; j++) {
			struct transcoder *t = transcoder_new(&o, CODEC_SPEEX_WB, sip[j]);

			CHECK_EQ_INT(transcoder_rtmp_to_sip(t, msg, (size_t)len + 1, &out), 0);
			CHECK_EQ_INT(out.n, 2);
			CHECK_EQ_INT(out_samples(&out), 2 * codec_by_id(sip[j])->frame_samples);
			transcoder_destroy(&t);
		}
	}
	speex_bits_destroy(&bits);
	speex_encoder_destroy(nb);
}

/* ---- concealment ----------------------------------------------------------------------- */

/* Feeds 10 SIP frames of tone, then conceals one; returns the concealed RTMP audio's RMS. */
static double conceal_after_tone(enum codec_id rc, enum codec_id sc, bool nb_core, size_t *samples,
				 unsigned *frames)
{
	struct transcode_opts o;
	struct transcoder *t;
	static struct tc_out out;
	const struct codec *r = codec_by_id(rc), *s = codec_by_id(sc);
	void *enc = NULL, *dec = speex_decoder_init(&speex_wb_mode);
	SpeexBits bits;
	struct pcm_sink k = {0};
	size_t ph = 0, before;
	double level;

	transcode_opts_default(&o);
	o.narrowband_core = nb_core;
	t = transcoder_new(&o, rc, sc);
	if (!t)
		return -1;
	speex_bits_init(&bits);
	if (s->family == CODEC_FAMILY_SPEEX)
		enc = speex_enc(sc == CODEC_SPEEX_WB ? &speex_wb_mode : &speex_nb_mode, 8);
	for (int i = 0; i < 10; i++) {
		int16_t pcm[320];
		uint8_t p[400];
		size_t len;

		tone(pcm, s->frame_samples, s->clock_rate, 1000, &ph);
		if (enc)
			len = (size_t)speex_packet(enc, &bits, pcm, s->frame_samples, 1, p, 400);
		else if (sc == CODEC_PCMU)
			g711_ulaw_encode_buf(p, pcm, 160), len = 160;
		else
			g711_alaw_encode_buf(p, pcm, 160), len = 160;
		CHECK_EQ_INT(transcoder_sip_to_rtmp(t, p, len, &out), 0);
		for (unsigned j = 0; j < out.n; j++)
			decode_rtmp(r, dec, tc_frame_data(&out, j), out.f[j].len, &k);
	}
	before = k.n;
	CHECK_EQ_INT(transcoder_conceal(t, NULL, 0, &out), 0);
	*samples = out_samples(&out);
	*frames = out.n;
	CHECK_EQ_INT(out.rate, r->clock_rate);
	for (unsigned j = 0; j < out.n; j++)
		CHECK(decode_rtmp(r, dec, tc_frame_data(&out, j), out.f[j].len, &k) ==
		      out.f[j].samples);
	level = rms(k.s + before, k.n - before);
	free(k.s);
	speex_bits_destroy(&bits);
	if (enc)
		speex_encoder_destroy(enc);
	speex_decoder_destroy(dec);
	transcoder_destroy(&t);
	return level;
}

static void test_conceal(void)
{
	static const struct {
		enum codec_id r, s;
		bool nb;
	} cases[] = {
	    {CODEC_PCMU, CODEC_SPEEX_WB, true},	    {CODEC_PCMU, CODEC_SPEEX_WB, false},
	    {CODEC_PCMA, CODEC_SPEEX_NB, true},	    {CODEC_SPEEX_WB, CODEC_SPEEX_WB, true},
	    {CODEC_SPEEX_WB, CODEC_SPEEX_NB, true}, {CODEC_SPEEX_WB, CODEC_SPEEX_NB, false},
	    {CODEC_SPEEX_WB, CODEC_PCMU, true},	    {CODEC_PCMU, CODEC_PCMU, true},
	    {CODEC_PCMU, CODEC_PCMA, true},
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t samples = 0;
		unsigned frames = 0;
		double level =
		    conceal_after_tone(cases[i].r, cases[i].s, cases[i].nb, &samples, &frames);
		const struct codec *r = codec_by_id(cases[i].r);

		if (level <= 50 || samples != r->frame_samples || getenv("TC_VERBOSE"))
			fprintf(stderr, "conceal %s <- %s%s: rms %.1f, %zu samples in %u frames\n",
				r->label, codec_by_id(cases[i].s)->label, cases[i].nb ? " nb" : "",
				level, samples, frames);
		CHECK(level > 50);
		CHECK_EQ_INT(samples, r->frame_samples);
	}
}

/* G.711 concealment fades to silence over g711_plc_frames, and a fresh leg conceals silence. */
static void test_conceal_g711_fade(void)
{
	static struct tc_out out;
	struct transcoder *t = transcoder_new(NULL, CODEC_PCMU, CODEC_PCMU);
	int16_t pcm[160];
	uint8_t p[160];
	double prev = 1e9;
	size_t ph = 0;

	CHECK_EQ_INT(transcoder_conceal(t, NULL, 0, &out), 0);
	CHECK(out.n == 1 && out.f[0].len == 161);
	g711_ulaw_decode_buf(pcm, tc_frame_data(&out, 0) + 1, 160);
	CHECK(rms(pcm, 160) < 1);
	tone(pcm, 160, 8000, 1000, &ph);
	g711_ulaw_encode_buf(p, pcm, 160);
	CHECK_EQ_INT(transcoder_sip_to_rtmp(t, p, 160, &out), 0);
	for (int i = 0; i < 5; i++) {
		double level;

		CHECK_EQ_INT(transcoder_conceal(t, NULL, 0, &out), 0);
		CHECK(out.n == 1 && out.f[0].samples == 160);
		g711_ulaw_decode_buf(pcm, tc_frame_data(&out, 0) + 1, 160);
		level = rms(pcm, 160);
		CHECK(i >= 3 ? level < 1 : (level > 100 && level < prev));
		prev = level;
	}
	transcoder_destroy(&t);
}

/* ---- bad input and the pair matrix ----------------------------------------------------- */

static uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void test_bad_input(void)
{
	static struct tc_out out;
	struct transcoder *pass = transcoder_new(NULL, CODEC_SPEEX_WB, CODEC_SPEEX_WB);
	struct transcoder *pcm = transcoder_new(NULL, CODEC_SPEEX_WB, CODEC_PCMU);
	struct transcoder *g = transcoder_new(NULL, CODEC_PCMU, CODEC_SPEEX_WB);
	static uint8_t big[TC_MAX_INPUT + 2];
	uint8_t msg[600];
	uint32_t seed = 12345;

	CHECK(pass && pcm && g);
	msg[0] = 0x82; /* µ-law on a Speex leg */
	memset(msg + 1, 0xFF, 160);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(pcm, msg, 161, &out), -EPROTO);
	CHECK(strlen(transcoder_error(pcm)) > 0);
	CHECK_EQ_INT(out.n, 0);
	msg[0] = 0xAF; /* AAC */
	CHECK_EQ_INT(transcoder_rtmp_to_sip(pcm, msg, 161, &out), -EPROTO);
	CHECK(strstr(transcoder_error(pcm), "AAC") != NULL);
	msg[0] = 0xB2;
	CHECK_EQ_INT(transcoder_rtmp_to_sip(g, msg, 161, &out), -EPROTO);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(pcm, msg, 0, &out), -EPROTO);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(NULL, msg, 1, &out), -EINVAL);
	CHECK_EQ_INT(transcoder_rtmp_to_sip(pcm, NULL, 5, &out), -EINVAL);
	CHECK_EQ_INT(transcoder_sip_to_rtmp(pcm, msg, 10, NULL), -EINVAL);
	CHECK_EQ_INT(transcoder_conceal(NULL, NULL, 0, &out), -EINVAL);
	big[0] = 0x82;
	CHECK_EQ_INT(transcoder_rtmp_to_sip(g, big, sizeof(big), &out), -E2BIG);
	CHECK_EQ_INT(transcoder_sip_to_rtmp(pass, big, TC_MAX_INPUT + 1, &out), -E2BIG);
	/* Random bytes as Speex: an error or frames, never a crash (ASan/UBSan runs catch the
	 * rest). */
	for (int i = 0; i < 3000; i++) {
		size_t len = 1 + rnd(&seed) % 300;
		int a, b, c, d;

		msg[0] = 0xB2;
		for (size_t j = 1; j < len; j++)
			msg[j] = (uint8_t)rnd(&seed);
		if (i % 3 == 0)
			msg[1] &= 0x7F; /* start like a NB frame more often */
		a = transcoder_rtmp_to_sip(pass, msg, len, &out);
		b = transcoder_rtmp_to_sip(pcm, msg, len, &out);
		c = transcoder_sip_to_rtmp(pass, msg + 1, len - 1, &out);
		d = transcoder_sip_to_rtmp(g, msg + 1, len - 1, &out);
		CHECK((a == 0 || a == -EPROTO || a == -E2BIG) &&
		      (b == 0 || b == -EPROTO || b == -E2BIG));
		CHECK((c == 0 || c == -EPROTO || c == -E2BIG) &&
		      (d == 0 || d == -EPROTO || d == -E2BIG));
		CHECK(a == b && a == c && a == d);
	}
	transcoder_destroy(&pass);
	transcoder_destroy(&pcm);
	transcoder_destroy(&g);
}

static void test_pair_matrix(void)
{
	static struct tc_out out;
	uint8_t msg[1 + 320];
	int built = 0;

	memset(msg, 0xFF, sizeof(msg));
	for (int r = -1; r <= CODEC_COUNT; r++) {
		for (int s = -1; s <= CODEC_COUNT; s++) {
			struct transcoder *t =
			    transcoder_new(NULL, (enum codec_id)r, (enum codec_id)s);
			const struct codec *rc = codec_by_id((enum codec_id)r);
			const struct codec *sc = codec_by_id((enum codec_id)s);
			bool expect = codec_rtmp_capable(rc) && rc->family != CODEC_FAMILY_VIDEO &&
				      sc && sc->sip && sc->family != CODEC_FAMILY_EVENT;

			CHECK_EQ_INT(t != NULL, expect);
			if (!t)
				continue;
			built++;
			codec_rtmp_header(rc, 0, 1, false, msg);
			/* Silence in whatever form: 0xFF is µ-law silence, a terminator for Speex;
			 * garbage for the library codecs (refused, or decoded as noise). */
			CHECK(transcoder_rtmp_to_sip(t, msg, sizeof(msg), &out) <= 0);
			memset(msg, 0xFF, sizeof(msg));
			CHECK(transcoder_sip_to_rtmp(t, msg + 1, 160, &out) <= 0);
			CHECK_EQ_INT(transcoder_conceal(t, NULL, 0, &out), 0);
			CHECK(out.n <= 3);
			transcoder_destroy(&t);
		}
	}
	/* RTMP: PCMU, PCMA, Speex WB, Opus, AAC, MP3, Nellymoser; SIP: PCMU, PCMA, Speex WB and
	 * NB, G.722, Opus. */
	CHECK_EQ_INT(built, 7 * 6);
}

static void test_bench_runs(void)
{
	struct tc_bench b = {0};

	CHECK_EQ_INT(transcode_bench(CODEC_SPEEX_WB, CODEC_PCMU, NULL, 100, &b), 0);
	CHECK(b.frames == 100 && b.codec_us > 0 && b.transcoder_us > 0);
	printf("bench (100 frames, informative): speex/16000<->PCMU codec %.1f us, transcoder %.1f "
	       "us, "
	       "ratio %.2f\n",
	       b.codec_us, b.transcoder_us, b.ratio);
	CHECK_EQ_INT(transcode_bench(CODEC_SPEEX_WB, CODEC_TELEPHONE_EVENT, NULL, 10, &b), -EINVAL);
	CHECK_EQ_INT(transcode_bench(CODEC_PCMU, CODEC_PCMU, NULL, 0, &b), -EINVAL);
}

/*
 * Toward RTMP, a library encoder's frame holds sound from before the input that completed it
 * (its FIFO, its priming): out.lead says how far, so that a caller stamping it at the input's
 * time minus the lead places the sound where it was. A tone that starts at 0.5 s of PCMU input
 * must decode, from frames so stamped (the sequence header included), at 0.5 s: AAC at 16 and
 * 44.1 kHz, Opus (whose players' codec is Opus).
 */
static void lead_case(enum codec_id rtmp, unsigned rtmp_rate)
{
	struct transcode_opts o = {.rtmp_rate = rtmp_rate, .rtmp_channels = 1};
	struct transcoder *t = transcoder_new(&o, rtmp, CODEC_PCMU);
	static struct tc_out out;
	static int16_t pcm[8192];
	struct acodec_dec *d = NULL;
	const unsigned onset8 = 4000;
	long first_stamp = LONG_MIN, onset_at = -1; /* in output samples (out.rate) */
	unsigned rate = 0;
	char why[128];
	uint8_t in[160];

	CHECK(t != NULL);
	for (long fed = 0; t && fed < 8000; fed += 160) {
		long stamp;

		for (int i = 0; i < 160; i++)
			in[i] = g711_ulaw_encode(fed + i >= onset8
							 ? (int16_t)(10000 * sin(6.2831853 * 700 * (fed + i) / 8000.0))
							 : 0);
		CHECK_EQ_INT(transcoder_sip_to_rtmp(t, in, 160, &out), 0);
		rate = out.rate;
		stamp = fed * (long)out.rate / 8000 - out.lead; /* what the worker does, in samples */
		CHECK(out.n == 0 || out.lead >= 0);
		for (unsigned k = 0; k < out.n; k++) {
			const uint8_t *p = tc_frame_data(&out, k);
			size_t hl = rtmp == CODEC_AAC ? 2 : 5;
			int m;

			if (first_stamp == LONG_MIN)
				first_stamp = stamp;
			if (out.f[k].samples == 0) { /* the sequence header: the decoder's setup */
				acodec_dec_free(&d);
				d = acodec_dec_new(codec_by_id(rtmp), out.rate, 1, p + hl, out.f[k].len - hl,
						   "lead", why, sizeof(why));
				continue;
			}
			m = d ? acodec_decode(d, p + hl, out.f[k].len - hl, pcm, 8192) : 0;
			for (int i = 0; i < m; i++)
				if (onset_at < 0 && abs(pcm[i]) > 2000)
					onset_at = stamp + i;
			stamp += out.f[k].samples;
		}
	}
	CHECK(d != NULL);
	/* within 7 ms (the resamplers' own delays, Opus's pre-skip); the first frame (the
	 * header) not before the input's start by more than the encoder's priming */
	CHECK(onset_at >= 0 && labs(onset_at - (long)onset8 * (long)rate / 8000) <= (long)rate / 150);
	CHECK(first_stamp >= -(long)rate / 10);
	printf("  lead: %s at %u Hz: tone at %.1f ms (input 500 ms)\n", codec_by_id(rtmp)->label,
	       rate, rate ? onset_at * 1000.0 / rate : 0.0);
	acodec_dec_free(&d);
	transcoder_destroy(&t);
}

static void test_lead_toward_rtmp(void)
{
	lead_case(CODEC_AAC, 16000);
	lead_case(CODEC_AAC, 44100);
	lead_case(CODEC_OPUS, 48000);
}

int main(void)
{
	log_init("test_transcode", LOG_LVL_ERROR);
	TEST_RUN(test_g711);
	TEST_RUN(test_speex_walk);
	TEST_RUN(test_speex_passthrough);
	TEST_RUN(test_g711_passthrough);
	TEST_RUN(test_tone_speex_pcmu_speex);
	TEST_RUN(test_tone_pcmu_speex_pcmu);
	TEST_RUN(test_tone_all_pairs);
	TEST_RUN(test_layer_path);
	TEST_RUN(test_empty_layer_multiframe);
	TEST_RUN(test_conceal);
	TEST_RUN(test_conceal_g711_fade);
	TEST_RUN(test_bad_input);
	TEST_RUN(test_pair_matrix);
	TEST_RUN(test_tone_library_codecs);
	TEST_RUN(test_opus_passthrough);
	TEST_RUN(test_opus_fmtp);
	TEST_RUN(test_speex_handover_kinds);
	TEST_RUN(test_g711_odd_rate);
	TEST_RUN(test_aac_handover);
	TEST_RUN(test_opus_fec_conceal);
	TEST_RUN(test_bench_runs);
	TEST_RUN(test_lead_toward_rtmp);
	return TEST_DONE();
}
