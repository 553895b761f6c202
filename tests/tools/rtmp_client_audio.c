/*
 * rtmp_client_audio.c - what rtmp_client sends as audio and how it records what it plays. See
 * rtmp_client_audio.h for the message layouts.
 */
#include "rtmp_client_audio.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opus.h>
#include <speex/speex.h>

#include "g711.h"
#include "wav_out.h"

#define FRAME_MS	  20
#define PCMU_RATE	  8000
#define OPUS_RATE	  48000
#define OPUS_BITRATE	  32000
#define OPUS_MAX_SAMPLES  5760 /* 120 ms at 48 kHz: the longest Opus packet */
#define OPUS_HEAD_LEN	  19   /* RFC 7845 5.1 with mapping family 0 */
#define SPEEX_WB_FRAME	  320
#define SPEEX_MAX_FRAMES  8 /* per message; Flash sends 1 or 2 */
#define SPEEX_MIN_BITS	  5 /* fewer left over is padding, not a frame */
#define G711_CHUNK	  1024
#define TAG_PCMU	  0x82 /* SoundFormat 8, as ffmpeg writes it */
#define SOUND_EXHEADER	  9
#define EX_SEQUENCE_START 0
#define EX_CODED_FRAMES	  1
#define EX_SEQUENCE_END	  2

struct tx_audio {
	enum tx_codec codec;
	unsigned rate;	    /* of the tone */
	double amp;	    /* tone amplitude (0: silence) */
	double phase, step; /* tone phase, and its step per sample (radians) */
	uint32_t frames;    /* sent so far */
	OpusEncoder *enc;
	int pre_skip;
};

struct tx_audio *tx_audio_new(enum tx_codec codec, double tone_hz, double tone_dbfs)
{
	struct tx_audio *t = calloc(1, sizeof(*t));
	int err = 0;

	if (!t)
		return NULL;
	t->codec = codec;
	t->rate = codec == TX_OPUS ? OPUS_RATE : PCMU_RATE;
	/* dBFS RMS with a full-scale sine at -3 dBFS: amplitude sqrt(2) * 10^(L/20) of full scale
	 */
	t->amp = tone_hz > 0 ? 32767.0 * sqrt(2.0) * pow(10.0, tone_dbfs / 20.0) : 0;
	if (t->amp > 32767.0)
		t->amp = 32767.0;
	t->step = 2.0 * M_PI * tone_hz / t->rate;
	if (codec != TX_OPUS)
		return t;
	t->enc = opus_encoder_create(OPUS_RATE, 1, OPUS_APPLICATION_VOIP, &err);
	if (!t->enc || err != OPUS_OK) {
		fprintf(stderr, "rtmp_client: opus_encoder_create: %s\n", opus_strerror(err));
		free(t);
		return NULL;
	}
	opus_encoder_ctl(t->enc, OPUS_SET_BITRATE(OPUS_BITRATE));
	if (opus_encoder_ctl(t->enc, OPUS_GET_LOOKAHEAD(&t->pre_skip)) != OPUS_OK)
		t->pre_skip = 0;
	return t;
}

void tx_audio_destroy(struct tx_audio **tp)
{
	struct tx_audio *t = tp ? *tp : NULL;

	if (!t)
		return;
	if (t->enc)
		opus_encoder_destroy(t->enc);
	free(t);
	*tp = NULL;
}

/* The E-RTMP header: ExHeader and @type, then the FourCC. Returns its length (5). */
static size_t ex_header(uint8_t *out, unsigned type)
{
	out[0] = (uint8_t)(SOUND_EXHEADER << 4 | type);
	memcpy(out + 1, "Opus", 4);
	return 5;
}

size_t tx_audio_start(struct tx_audio *t, uint8_t *out)
{
	uint8_t *h;

	if (t->codec != TX_OPUS)
		return 0;
	h = out + ex_header(out, EX_SEQUENCE_START);
	/* OpusHead, RFC 7845 5.1: magic, version 1, channels, pre-skip (48 kHz samples, LE),
	 * input sample rate (LE), output gain (Q7.8 dB, LE), channel mapping family 0 */
	memcpy(h, "OpusHead", 8);
	h[8] = 1;
	h[9] = 1;
	h[10] = (uint8_t)(t->pre_skip & 0xff);
	h[11] = (uint8_t)(t->pre_skip >> 8);
	h[12] = (uint8_t)(OPUS_RATE & 0xff);
	h[13] = (uint8_t)(OPUS_RATE >> 8 & 0xff);
	h[14] = (uint8_t)(OPUS_RATE >> 16 & 0xff);
	h[15] = (uint8_t)(OPUS_RATE >> 24);
	h[16] = 0;
	h[17] = 0;
	h[18] = 0;
	return 5 + OPUS_HEAD_LEN;
}

/* The next 20 ms of the tone into @pcm. Returns the sample count. */
static unsigned tone(struct tx_audio *t, int16_t *pcm)
{
	unsigned n = t->rate / (1000 / FRAME_MS);

	for (unsigned i = 0; i < n; i++) {
		pcm[i] = (int16_t)lrint(t->amp * sin(t->phase));
		t->phase += t->step;
		if (t->phase >= 2.0 * M_PI)
			t->phase -= 2.0 * M_PI;
	}
	return n;
}

int tx_audio_frame(struct tx_audio *t, uint8_t *out, uint32_t *ts)
{
	int16_t pcm[OPUS_RATE / (1000 / FRAME_MS)];
	unsigned n = tone(t, pcm);
	size_t hdr;
	opus_int32 len;

	*ts = t->frames++ * FRAME_MS;
	if (t->codec == TX_PCMU) {
		out[0] = TAG_PCMU;
		g711_ulaw_encode_buf(out + 1, pcm, n);
		return (int)(1 + n);
	}
	hdr = ex_header(out, EX_CODED_FRAMES);
	len = opus_encode(t->enc, pcm, (int)n, out + hdr, (opus_int32)(TX_AUDIO_MAX - hdr));
	if (len < 0) {
		fprintf(stderr, "rtmp_client: opus_encode: %s\n", opus_strerror(len));
		return -EIO;
	}
	return (int)(hdr + (size_t)len);
}

size_t tx_audio_end(struct tx_audio *t, uint8_t *out)
{
	return t->codec == TX_OPUS ? ex_header(out, EX_SEQUENCE_END) : 0;
}

/* ------------------------------------------------------------------------------ recording */

struct rx_audio {
	char *path;
	struct wav_out wav;
	unsigned long decoded;
	bool warned_rate, failed;
	void *spx; /* Speex wideband decoder, made at the first Speex message */
	SpeexBits bits;
	OpusDecoder *opus; /* made at the SequenceStart */
	int opus_channels, opus_skip;
};

struct rx_audio *rx_audio_new(const char *path)
{
	struct rx_audio *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->path = strdup(path);
	if (!r->path) {
		free(r);
		return NULL;
	}
	return r;
}

/* Appends @n samples at @rate: opens the file at the first, refuses another rate later. */
static int record(struct rx_audio *r, const int16_t *pcm, size_t n, unsigned rate)
{
	int rc;

	if (r->failed)
		return -EIO;
	if (!r->wav.f) {
		rc = wav_out_open(&r->wav, r->path, rate);
		if (rc < 0) {
			fprintf(stderr, "rtmp_client: cannot create %s: %s\n", r->path,
				strerror(-rc));
			r->failed = true;
			return rc;
		}
	}
	if (rate != r->wav.rate) {
		if (!r->warned_rate)
			fprintf(stderr, "rtmp_client: %u Hz audio not recorded in %u Hz\n", rate,
				r->wav.rate);
		r->warned_rate = true;
		return -ENOTSUP;
	}
	rc = wav_out_write(&r->wav, pcm, n);
	if (rc < 0 && rc != -EFBIG) {
		fprintf(stderr, "rtmp_client: writing %s: %s\n", r->path, strerror(-rc));
		r->failed = true;
	}
	return rc < 0 ? rc : (int)n;
}

static int feed_g711(struct rx_audio *r, const uint8_t *p, size_t len, bool ulaw)
{
	int16_t pcm[G711_CHUNK];
	int total = 0, rc;

	while (len) {
		size_t n = len < G711_CHUNK ? len : G711_CHUNK;

		if (ulaw)
			g711_ulaw_decode_buf(pcm, p, n);
		else
			g711_alaw_decode_buf(pcm, p, n);
		rc = record(r, pcm, n, PCMU_RATE);
		if (rc < 0)
			return rc;
		total += rc;
		p += n;
		len -= n;
	}
	return total;
}

static int feed_speex(struct rx_audio *r, const uint8_t *p, size_t len)
{
	int16_t pcm[SPEEX_WB_FRAME];
	int total = 0, rc;

	if (!r->spx) {
		r->spx = speex_decoder_init(&speex_wb_mode);
		if (!r->spx)
			return -ENOMEM;
		speex_bits_init(&r->bits);
	}
	speex_bits_read_from(&r->bits, (const char *)p, (int)len);
	for (int i = 0; i < SPEEX_MAX_FRAMES; i++) {
		if (speex_bits_remaining(&r->bits) < SPEEX_MIN_BITS)
			break;
		if (speex_decode_int(r->spx, &r->bits, pcm) != 0)
			break;
		rc = record(r, pcm, SPEEX_WB_FRAME, 16000);
		if (rc < 0)
			return rc;
		total += rc;
	}
	return total > 0 ? total : -EPROTO;
}

/* OpusHead (RFC 7845 5.1): a decoder for its channel count (1 or 2, mapping family 0). */
static int opus_start(struct rx_audio *r, const uint8_t *h, size_t len)
{
	int err = 0, ch = 1;

	if (len >= OPUS_HEAD_LEN && memcmp(h, "OpusHead", 8) == 0) {
		if ((h[9] != 1 && h[9] != 2) || h[18] != 0) {
			fprintf(stderr, "rtmp_client: OpusHead: %u channels, family %u\n", h[9],
				h[18]);
			return -ENOTSUP;
		}
		ch = h[9];
		r->opus_skip = h[10] | h[11] << 8;
	} else if (len) {
		fprintf(stderr, "rtmp_client: Opus sequence start without an OpusHead\n");
		return -EPROTO;
	} /* empty: mono or stereo by default (the spec); the packets say which */
	if (r->opus)
		opus_decoder_destroy(r->opus);
	r->opus = opus_decoder_create(OPUS_RATE, ch, &err);
	r->opus_channels = ch;
	if (!r->opus || err != OPUS_OK) {
		fprintf(stderr, "rtmp_client: opus_decoder_create: %s\n", opus_strerror(err));
		r->opus = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int feed_opus(struct rx_audio *r, const uint8_t *p, size_t len)
{
	static int16_t pcm[OPUS_MAX_SAMPLES * 2];
	int n, skip;

	if (!r->opus && opus_start(r, NULL, 0) < 0) /* coded frames with no sequence start */
		return -ENOMEM;
	n = opus_decode(r->opus, p, (opus_int32)len, pcm, OPUS_MAX_SAMPLES, 0);
	if (n < 0) {
		fprintf(stderr, "rtmp_client: opus_decode (%zu bytes): %s\n", len,
			opus_strerror(n));
		return -EPROTO;
	}
	for (int i = 0; r->opus_channels == 2 && i < n; i++)
		pcm[i] = (int16_t)((pcm[2 * i] + pcm[2 * i + 1]) / 2);
	skip = r->opus_skip < n ? r->opus_skip : n;
	r->opus_skip -= skip;
	return record(r, pcm + skip, (size_t)(n - skip), OPUS_RATE);
}

static int feed_ex(struct rx_audio *r, const uint8_t *msg, size_t len)
{
	unsigned type = msg[0] & 0x0f;

	if (len < 5 || memcmp(msg + 1, "Opus", 4) != 0)
		return -ENOTSUP;
	switch (type) {
	case EX_SEQUENCE_START:
		return opus_start(r, msg + 5, len - 5);
	case EX_CODED_FRAMES:
		return feed_opus(r, msg + 5, len - 5);
	case EX_SEQUENCE_END:
		return 0;
	default: /* multitrack, multichannel config, ModEx: not here */
		return -ENOTSUP;
	}
}

int rx_audio_feed(struct rx_audio *r, const uint8_t *msg, size_t len)
{
	int rc;

	if (len < 2)
		return -EPROTO;
	switch (msg[0] >> 4) {
	case 7:
	case 8:
		rc = feed_g711(r, msg + 1, len - 1, msg[0] >> 4 == 8);
		break;
	case 11:
		rc = feed_speex(r, msg + 1, len - 1);
		break;
	case SOUND_EXHEADER:
		rc = feed_ex(r, msg, len);
		break;
	default:
		rc = -ENOTSUP;
		break;
	}
	if (rc >= 0)
		r->decoded++;
	return rc;
}

unsigned long rx_audio_decoded(const struct rx_audio *r)
{
	return r->decoded;
}

int rx_audio_destroy(struct rx_audio **rp)
{
	struct rx_audio *r = rp ? *rp : NULL;
	int rc = 0;

	if (!r)
		return 0;
	if (!r->wav.f && !r->failed)
		rc = wav_out_open(&r->wav, r->path, PCMU_RATE);
	if (rc == 0)
		rc = wav_out_close(&r->wav);
	if (rc < 0)
		fprintf(stderr, "rtmp_client: writing %s: %s\n", r->path, strerror(-rc));
	if (r->spx) {
		speex_decoder_destroy(r->spx);
		speex_bits_destroy(&r->bits);
	}
	if (r->opus)
		opus_decoder_destroy(r->opus);
	free(r->path);
	free(r);
	*rp = NULL;
	return rc;
}
