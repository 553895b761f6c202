/*
 * acodec.c - decoders and encoders of the FRAMED codecs over libavcodec and libopus. See
 * acodec.h.
 *
 * Two backends behind one table (kinds[], by codec id):
 *
 *   libavcodec  G.722, AAC, MP3, Nellymoser
 *     decode: payload ─memcpy─▶ padded buffer (owned, AV_INPUT_BUFFER_PADDING_SIZE zeroed)
 *             ─▶ avcodec_send_packet ─▶ avcodec_receive_frame until EAGAIN ─▶ any sample
 *             format, any channel count ─to_mono()─▶ int16
 *     encode: int16 ─from_mono()─▶ the encoder's format in one reused frame ─▶ send_frame ─▶
 *             receive_packet (EAGAIN: held, 0 bytes) ─▶ copy out
 *   libopus     Opus: opus_decode()/opus_encode() straight into int16, mono decoder (libopus
 *               downmixes stereo packets), PLC and FEC via opus_decode(.., decode_fec).
 *
 * The packet buffer is refcounted and ours: libavcodec takes a reference while it decodes (and
 * drops it by the time receive_frame says EAGAIN), so nothing is copied a second time; if a
 * reference were ever still held, the buffer is made writable (copied) before it is reused.
 *
 * libavcodec reports through av_log(); one callback, installed once, sends its errors to log.h
 * as warn lines and its warnings as debug lines (encoders warn of the frames they still hold
 * at every close), with the session id of the object (the AVCodecContext's opaque points to
 * it), through one rate limit. Everything below warning is dropped.
 */
#include "acodec.h"

#include "log.h"

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <opus.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SID_LEN 48

enum backend { BE_AV, BE_OPUS };

/* What one codec needs from its library. */
struct kind {
	enum backend be;
	enum AVCodecID av_id;	   /* decoder (and encoder when enc_name is NULL) */
	const char *enc_name;	   /* libavcodec encoder by name, NULL: by av_id */
	enum AVSampleFormat fmt;   /* encoder input format we feed */
	unsigned def_rate;	   /* encoder rate when 0 is asked */
	unsigned fixed_frame;	   /* encoder frame we ask for (G.722), 0: the encoder's */
	const unsigned *rates;	   /* rates the encoder takes (0-terminated) */
	const unsigned *dec_rates; /* rates the decoder takes, NULL: any */
	bool dec_needs_rate;	   /* the bitstream does not say its rate */
};

static const unsigned g722_rates[] = {16000, 0};
static const unsigned opus_rates[] = {8000, 12000, 16000, 24000, 48000, 0};
static const unsigned aac_rates[] = {7350,  8000,  11025, 12000, 16000, 22050, 24000,
				     32000, 44100, 48000, 64000, 88200, 96000, 0};
static const unsigned mp3_rates[] = {8000,  11025, 12000, 16000, 22050,
				     24000, 32000, 44100, 48000, 0};
static const unsigned nelly_rates[] = {5512, 8000, 11025, 16000, 22050, 44100, 0};

/* clang-format off */
static const struct kind kinds[CODEC_COUNT] = {
	[CODEC_G722] = {
		.be = BE_AV, .av_id = AV_CODEC_ID_ADPCM_G722, .fmt = AV_SAMPLE_FMT_S16,
		.def_rate = 16000, .fixed_frame = 320, .rates = g722_rates, .dec_rates = g722_rates,
	},
	[CODEC_OPUS] = {
		.be = BE_OPUS, .def_rate = 48000, .rates = opus_rates, .dec_rates = opus_rates,
	},
	[CODEC_AAC] = {
		.be = BE_AV, .av_id = AV_CODEC_ID_AAC, .enc_name = "aac", .fmt = AV_SAMPLE_FMT_FLTP,
		.def_rate = 44100, .rates = aac_rates,
	},
	[CODEC_MP3] = {
		.be = BE_AV, .av_id = AV_CODEC_ID_MP3, .enc_name = "libmp3lame",
		.fmt = AV_SAMPLE_FMT_S16P, .def_rate = 44100, .rates = mp3_rates,
	},
	[CODEC_NELLYMOSER] = {
		.be = BE_AV, .av_id = AV_CODEC_ID_NELLYMOSER, .fmt = AV_SAMPLE_FMT_FLT,
		.def_rate = 8000, .rates = nelly_rates, .dec_needs_rate = true,
	},
};
/* clang-format on */

struct acodec_dec {
	char sid[SID_LEN]; /* first: the log callback reads it through AVCodecContext.opaque */
	const struct codec *codec;
	const struct kind *k;
	unsigned rate;			   /* of the samples we write, 0 unknown */
	unsigned hint_rate, hint_channels; /* from the caller, for AAC without config */
	uint8_t config[ACODEC_MAX_CONFIG];
	size_t config_len;
	/* libavcodec */
	AVCodecContext *ctx;
	AVPacket *pkt;
	AVFrame *frame;
	AVBufferRef *pbuf; /* ACODEC_MAX_PAYLOAD + padding */
	/* libopus */
	OpusDecoder *opus;
	unsigned last_samples; /* duration of the last Opus frame, samples at rate */
};

struct acodec_enc {
	char sid[SID_LEN]; /* first, as in acodec_dec */
	const struct codec *codec;
	const struct kind *k;
	struct acodec_enc_opts o;
	unsigned rate, frame, delay;
	/* libavcodec */
	AVCodecContext *ctx;
	AVPacket *pkt;
	AVFrame *frame_buf;
	int64_t pts;
	/* libopus */
	OpusEncoder *opus;
};

/* ---- libavcodec log routing ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The session id of the acodec object behind @avcl, when it is one of our codec contexts. */
static const char *av_sid(void *avcl)
{
	const AVClass *cls = avcl ? *(const AVClass **)avcl : NULL;

	if (cls && cls == avcodec_get_class()) {
		const AVCodecContext *ctx = avcl;

		if (ctx->opaque)
			return (const char *)ctx->opaque;
	}
	return "-";
}

__attribute__((format(printf, 3, 0))) static void av_log_route(void *avcl, int level,
							       const char *fmt, va_list vl)
{
	static struct log_limit limit = {.what = "libavcodec lines"};
	enum log_level lvl = level <= AV_LOG_ERROR ? LOG_LVL_WARN : LOG_LVL_DEBUG;
	const AVClass *cls = avcl ? *(const AVClass **)avcl : NULL;
	const char *sid;
	char line[256];
	size_t n;

	if (level > AV_LOG_WARNING || !log_enabled(lvl))
		return;
	vsnprintf(line, sizeof(line), fmt, vl);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	if (n == 0)
		return;
	sid = av_sid(avcl);
	if (!log_limit_ok(&limit, now_ms(), sid))
		return;
	log_msg(lvl, sid, "acodec: libavcodec %s: %s",
		cls && cls->item_name ? cls->item_name(avcl) : "-", line);
}

static void av_setup(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	av_log_set_level(AV_LOG_WARNING);
	av_log_set_callback(av_log_route);
}

/* ---- helpers ---- */

__attribute__((format(printf, 3, 4))) static void say(char *why, size_t whylen, const char *fmt,
						      ...)
{
	va_list ap;

	if (!why || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static bool rate_in(const unsigned *rates, unsigned rate)
{
	for (; rates && *rates; rates++)
		if (*rates == rate)
			return true;
	return false;
}

static const struct kind *kind_of(const struct codec *c)
{
	if (!c || c->family != CODEC_FAMILY_FRAMED || (unsigned)c->id >= CODEC_COUNT)
		return NULL;
	if (c->id != CODEC_OPUS && kinds[c->id].av_id == AV_CODEC_ID_NONE)
		return NULL;
	return &kinds[c->id];
}

/* To int16, rounded and clipped; NaN (libavcodec's Nellymoser decoder makes it from garbage) is
 * silence. */
static int16_t clip16(float x)
{
	if (isnan(x))
		return 0;
	if (x >= 32767.0f)
		return 32767;
	if (x <= -32768.0f)
		return -32768;
	return (int16_t)(x < 0 ? x - 0.5f : x + 0.5f);
}

/* Sample @i of channel @ch of @f as a float at int16 scale. */
static float sample_at(const AVFrame *f, enum AVSampleFormat fmt, int nch, int ch, int i)
{
	bool planar = av_sample_fmt_is_planar(fmt);
	const uint8_t *base = planar ? f->extended_data[ch] : f->extended_data[0];
	int idx = planar ? i : i * nch + ch;

	switch (av_get_packed_sample_fmt(fmt)) {
	case AV_SAMPLE_FMT_U8:
		return ((float)base[idx] - 128.0f) * 256.0f;
	case AV_SAMPLE_FMT_S16:
		return (float)((const int16_t *)base)[idx];
	case AV_SAMPLE_FMT_S32:
		return (float)((const int32_t *)base)[idx] / 65536.0f;
	case AV_SAMPLE_FMT_FLT:
		return ((const float *)base)[idx] * 32768.0f;
	case AV_SAMPLE_FMT_DBL:
		return (float)(((const double *)base)[idx] * 32768.0);
	default:
		return 0.0f;
	}
}

/* Writes @f's samples, channels averaged, to @out. Returns -EPROTO for a format we do not know. */
static int to_mono(const AVFrame *f, int16_t *out)
{
	enum AVSampleFormat fmt = f->format;
	int nch = f->ch_layout.nb_channels;

	if (nch < 1 || nch > AV_NUM_DATA_POINTERS * 8)
		return -EPROTO;
	switch (av_get_packed_sample_fmt(fmt)) {
	case AV_SAMPLE_FMT_U8:
	case AV_SAMPLE_FMT_S16:
	case AV_SAMPLE_FMT_S32:
	case AV_SAMPLE_FMT_FLT:
	case AV_SAMPLE_FMT_DBL:
		break;
	default:
		return -EPROTO;
	}
	if (nch == 1 && fmt == AV_SAMPLE_FMT_S16) {
		memcpy(out, f->extended_data[0], sizeof(*out) * (size_t)f->nb_samples);
		return 0;
	}
	for (int i = 0; i < f->nb_samples; i++) {
		float sum = 0.0f;

		for (int ch = 0; ch < nch; ch++)
			sum += sample_at(f, fmt, nch, ch, i);
		out[i] = clip16(sum / (float)nch);
	}
	return 0;
}

/* Puts @n mono samples into the (writable) first plane of @f in @fmt. */
static void from_mono(AVFrame *f, enum AVSampleFormat fmt, const int16_t *pcm, int n)
{
	if (av_get_packed_sample_fmt(fmt) == AV_SAMPLE_FMT_FLT) {
		float *dst = (float *)f->data[0];

		for (int i = 0; i < n; i++)
			dst[i] = (float)pcm[i] / 32768.0f;
	} else {
		memcpy(f->data[0], pcm, sizeof(*pcm) * (size_t)n);
	}
}

/* ---- OpusHead (RFC 7845 5.1) ---- */

struct opus_head {
	unsigned channels, pre_skip, input_rate, family;
	int gain_q8;
};

static int opus_head_parse(const uint8_t *p, size_t len, struct opus_head *h)
{
	if (len < 19 || memcmp(p, "OpusHead", 8) != 0 || (p[8] & 0xf0) != 0)
		return -EPROTO;
	h->channels = p[9];
	h->pre_skip = (unsigned)p[10] | (unsigned)p[11] << 8;
	h->input_rate =
	    (unsigned)p[12] | (unsigned)p[13] << 8 | (unsigned)p[14] << 16 | (unsigned)p[15] << 24;
	h->gain_q8 = (int16_t)(uint16_t)((unsigned)p[16] | (unsigned)p[17] << 8);
	h->family = p[18];
	if (h->channels == 0)
		return -EPROTO;
	return 0;
}

/* ---- AudioSpecificConfig (ISO 14496-3 1.6.2.1): the rate, before any frame ---- */

static const unsigned asc_rates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
				       22050, 16000, 12000, 11025, 8000,  7350};

/* The sampling rate @p says (the core's; implicit SBR doubles it at the first frame), 0 when
 * it cannot be read or is no audio rate we take (above 96 kHz, below 1 kHz). */
static unsigned asc_rate(const uint8_t *p, size_t len)
{
	unsigned aot, idx, pos = 5;

	if (len < 2)
		return 0;
	aot = p[0] >> 3;
	if (aot == 31) {
		pos = 11; /* 6 bits of escaped object type */
		if (len < 3)
			return 0;
	}
	/* 4 bits of frequency index at bit @pos */
	idx = (((unsigned)p[pos / 8] << 8 | p[pos / 8 + 1]) >> (12 - pos % 8)) & 0x0f;
	if (idx < 13)
		return asc_rates[idx];
	if (idx == 15 && len * 8 >= pos + 28) { /* 24 bits of explicit rate */
		unsigned r = 0;

		for (unsigned b = pos + 4; b < pos + 28; b++)
			r = r << 1 | ((p[b / 8] >> (7 - b % 8)) & 1);
		return r >= 1000 && r <= 96000 ? r : 0;
	}
	return 0;
}

/* ---- decoders ---- */

/* Opens a fresh libavcodec decoder context for @d with @config; 0 or a negative errno. */
static int av_dec_open(struct acodec_dec *d, const uint8_t *config, size_t len,
		       AVCodecContext **out)
{
	const AVCodec *codec = avcodec_find_decoder(d->k->av_id);
	AVCodecContext *ctx;
	unsigned rate = d->hint_rate, ch = d->hint_channels;

	if (!codec)
		return -ENOTSUP;
	ctx = avcodec_alloc_context3(codec);
	if (!ctx)
		return -ENOMEM;
	ctx->opaque = d;
	ctx->thread_count = 1;
	if (d->codec->id == CODEC_G722) {
		rate = 16000;
		ch = 1;
	} else if (d->codec->id == CODEC_NELLYMOSER) {
		ch = 1;
	} else if (d->codec->id == CODEC_MP3) {
		rate = 0;
		ch = 0;
	}
	if (rate)
		ctx->sample_rate = (int)rate;
	if (ch)
		av_channel_layout_default(&ctx->ch_layout, (int)ch);
	if (config && len) {
		ctx->extradata = av_mallocz(len + AV_INPUT_BUFFER_PADDING_SIZE);
		if (!ctx->extradata) {
			avcodec_free_context(&ctx);
			return -ENOMEM;
		}
		memcpy(ctx->extradata, config, len);
		ctx->extradata_size = (int)len;
	}
	if (avcodec_open2(ctx, codec, NULL) < 0) {
		avcodec_free_context(&ctx);
		return -EPROTO;
	}
	*out = ctx;
	return 0;
}

static int opus_dec_apply_head(struct acodec_dec *d, const uint8_t *config, size_t len)
{
	struct opus_head h;

	if (opus_head_parse(config, len, &h) < 0)
		return -EPROTO;
	if (h.family != 0 || h.channels > 2)
		return -ENOTSUP;
	if (opus_decoder_ctl(d->opus, OPUS_SET_GAIN(h.gain_q8)) != OPUS_OK)
		return -EPROTO;
	return 0;
}

static void store_config(struct acodec_dec *d, const uint8_t *config, size_t len)
{
	memcpy(d->config, config, len);
	d->config_len = len;
}

/* Sets @d's library state up; 0 or a negative errno with @why filled. */
static int dec_setup(struct acodec_dec *d, const uint8_t *config, size_t config_len, char *why,
		     size_t whylen)
{
	const char *name = d->codec->name;
	int err;

	if (d->k->be == BE_OPUS) {
		d->opus = opus_decoder_create((opus_int32)d->rate, 1, &err);
		if (!d->opus || err != OPUS_OK) {
			say(why, whylen, "opus decoder: %s", opus_strerror(err));
			return -ENOMEM;
		}
		if (config && config_len) {
			err = opus_dec_apply_head(d, config, config_len);
			if (err == -ENOTSUP) {
				say(why, whylen,
				    "Opus with more than 2 channels or mapping family other than 0 "
				    "is not supported");
				return err;
			}
			if (err < 0) {
				say(why, whylen, "bad OpusHead (%zu bytes)", config_len);
				return err;
			}
			store_config(d, config, config_len);
		}
		d->last_samples = d->rate / 50;
		return 0;
	}
	if (d->codec->id == CODEC_AAC && config && config_len && !asc_rate(config, config_len)) {
		say(why, whylen, "bad AAC AudioSpecificConfig (%zu bytes)", config_len);
		return -EPROTO;
	}
	d->pkt = av_packet_alloc();
	d->frame = av_frame_alloc();
	d->pbuf = av_buffer_allocz(ACODEC_MAX_PAYLOAD + AV_INPUT_BUFFER_PADDING_SIZE);
	if (!d->pkt || !d->frame || !d->pbuf) {
		say(why, whylen, "no memory for the %s decoder", name);
		return -ENOMEM;
	}
	err = av_dec_open(d, config, config_len, &d->ctx);
	if (err == -ENOTSUP)
		say(why, whylen, "this libavcodec has no %s decoder", name);
	else if (err == -EPROTO)
		say(why, whylen, "%s decoder refused its setup (config of %zu bytes)", name,
		    config_len);
	else if (err < 0)
		say(why, whylen, "no memory for the %s decoder", name);
	if (err < 0)
		return err;
	if (config && config_len) {
		store_config(d, config, config_len);
		if (d->codec->id == CODEC_AAC)
			d->rate = asc_rate(config, config_len);
	}
	if (d->rate == 0 && d->ctx->sample_rate > 0)
		d->rate = (unsigned)d->ctx->sample_rate;
	return 0;
}

struct acodec_dec *acodec_dec_new(const struct codec *c, unsigned rate, unsigned channels,
				  const uint8_t *config, size_t config_len, const char *sid,
				  char *why, size_t whylen)
{
	const struct kind *k = kind_of(c);
	struct acodec_dec *d;

	say(why, whylen, "%s", "");
	if (!k) {
		say(why, whylen, "%s is not a codec acodec decodes", c ? c->label : "(none)");
		return NULL;
	}
	if (config_len > ACODEC_MAX_CONFIG) {
		say(why, whylen, "%s config of %zu bytes is over %d", c->name, config_len,
		    ACODEC_MAX_CONFIG);
		return NULL;
	}
	if (k->be == BE_OPUS && rate == 0)
		rate = 48000;
	if (k->dec_rates && rate && !rate_in(k->dec_rates, rate) &&
	    !(c->id == CODEC_G722 && rate == 8000)) {
		say(why, whylen, "%s cannot be decoded at %u Hz", c->name, rate);
		return NULL;
	}
	if (k->dec_needs_rate && rate == 0) {
		say(why, whylen, "%s needs the sample rate of the RTMP header", c->name);
		return NULL;
	}
	if (channels > 8) {
		say(why, whylen, "%s with %u channels is not supported", c->name, channels);
		return NULL;
	}
	av_setup();
	d = calloc(1, sizeof(*d));
	if (!d) {
		say(why, whylen, "no memory for the %s decoder", c->name);
		return NULL;
	}
	snprintf(d->sid, sizeof(d->sid), "%s", sid ? sid : "-");
	d->codec = c;
	d->k = k;
	d->hint_rate = rate;
	d->hint_channels = channels;
	d->rate = c->id == CODEC_G722 ? 16000 : rate;
	if (c->id == CODEC_MP3 || c->id == CODEC_AAC)
		d->rate = 0; /* from the config or the frames */
	if (dec_setup(d, config, config_len, why, whylen) < 0) {
		acodec_dec_free(&d);
		return NULL;
	}
	if (c->id == CODEC_AAC && d->rate == 0)
		d->rate = rate; /* no config: what the caller said, until a frame says otherwise */
	return d;
}

int acodec_dec_config(struct acodec_dec *d, const uint8_t *config, size_t len)
{
	AVCodecContext *ctx = NULL;
	int err;

	if (!d || (!config && len))
		return -EINVAL;
	if (len > ACODEC_MAX_CONFIG)
		return -EPROTO;
	if (len == d->config_len && (len == 0 || memcmp(config, d->config, len) == 0))
		return 0;
	if (d->k->be == BE_OPUS) {
		if (len == 0)
			return 0;
		err = opus_dec_apply_head(d, config, len);
		if (err < 0)
			return -EPROTO;
		store_config(d, config, len);
		return 0;
	}
	if (d->codec->id != CODEC_AAC)
		return 0;
	if (len && !asc_rate(config, len))
		return -EPROTO;
	err = av_dec_open(d, config, len, &ctx);
	if (err < 0)
		return err == -ENOMEM ? -ENOMEM : -EPROTO;
	avcodec_free_context(&d->ctx);
	d->ctx = ctx;
	if (len)
		store_config(d, config, len);
	d->config_len = len;
	d->rate = len ? asc_rate(config, len) : d->hint_rate;
	if (d->rate == 0 && ctx->sample_rate > 0)
		d->rate = (unsigned)ctx->sample_rate;
	return 0;
}

/* Receives every frame the last packet gives; see acodec_decode() for the result. */
static int av_drain(struct acodec_dec *d, int16_t *pcm, size_t max)
{
	size_t n = 0;
	int err = 0;

	/* Bounded: a packet gives at most a few hundred frames (Nellymoser: 128 blocks). */
	for (unsigned i = 0; i < 1024; i++) {
		int ret = avcodec_receive_frame(d->ctx, d->frame);
		size_t ns;

		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
			break;
		if (ret < 0) {
			if (err == 0)
				err = -EPROTO;
			continue;
		}
		ns = d->frame->nb_samples > 0 ? (size_t)d->frame->nb_samples : 0;
		if (ns > max - n) {
			err = -E2BIG;
		} else if (ns > 0 && to_mono(d->frame, pcm + n) == 0) {
			n += ns;
			if (d->frame->sample_rate > 0)
				d->rate = (unsigned)d->frame->sample_rate;
		} else if (ns > 0 && err == 0) {
			err = -EPROTO;
		}
		av_frame_unref(d->frame);
	}
	if (err == -E2BIG)
		return err;
	return n > 0 ? (int)n : err;
}

static int av_decode(struct acodec_dec *d, const uint8_t *p, size_t len, int16_t *pcm, size_t max)
{
	int ret;

	if (!av_buffer_is_writable(d->pbuf) && av_buffer_make_writable(&d->pbuf) < 0)
		return -ENOMEM;
	memcpy(d->pbuf->data, p, len);
	memset(d->pbuf->data + len, 0, AV_INPUT_BUFFER_PADDING_SIZE);
	d->pkt->buf = d->pbuf;
	d->pkt->data = d->pbuf->data;
	d->pkt->size = (int)len;
	ret = avcodec_send_packet(d->ctx, d->pkt);
	/* The packet only lent our buffer: take it back without unreferencing it. */
	d->pkt->buf = NULL;
	d->pkt->data = NULL;
	d->pkt->size = 0;
	if (ret < 0 && ret != AVERROR(EAGAIN)) {
		av_drain(d, pcm, 0);
		return -EPROTO;
	}
	return av_drain(d, pcm, max);
}

static int opus_dec(struct acodec_dec *d, const uint8_t *p, size_t len, int16_t *pcm, size_t max)
{
	int n = opus_packet_get_nb_samples(p, (opus_int32)len, (opus_int32)d->rate);
	int ret;

	if (n < 0)
		return -EPROTO;
	if ((size_t)n > max)
		return -E2BIG;
	ret = opus_decode(d->opus, p, (opus_int32)len, pcm, n, 0);
	if (ret < 0)
		return ret == OPUS_BUFFER_TOO_SMALL ? -E2BIG : -EPROTO;
	if (ret > 0)
		d->last_samples = (unsigned)ret;
	return ret;
}

int acodec_decode(struct acodec_dec *d, const uint8_t *p, size_t len, int16_t *pcm, size_t max)
{
	if (!d || (!p && len) || (!pcm && max))
		return -EINVAL;
	if (len > ACODEC_MAX_PAYLOAD)
		return -E2BIG;
	if (len == 0)
		return 0;
	if (d->k->be == BE_OPUS)
		return opus_dec(d, p, len, pcm, max);
	return av_decode(d, p, len, pcm, max);
}

int acodec_conceal(struct acodec_dec *d, const uint8_t *next, size_t next_len, int16_t *pcm,
		   size_t max)
{
	unsigned n;
	int ret = -1;

	if (!d || (!pcm && max))
		return -EINVAL;
	if (d->k->be != BE_OPUS)
		return 0;
	n = d->last_samples;
	if (n > max)
		return -E2BIG;
	if (next && next_len > 0 && next_len <= ACODEC_MAX_PAYLOAD &&
	    opus_packet_get_nb_samples(next, (opus_int32)next_len, (opus_int32)d->rate) > 0)
		ret = opus_decode(d->opus, next, (opus_int32)next_len, pcm, (int)n, 1);
	if (ret < 0)
		ret = opus_decode(d->opus, NULL, 0, pcm, (int)n, 0);
	return ret < 0 ? -EPROTO : ret;
}

unsigned acodec_dec_rate(const struct acodec_dec *d)
{
	return d ? d->rate : 0;
}

void acodec_dec_free(struct acodec_dec **dp)
{
	struct acodec_dec *d = dp ? *dp : NULL;

	if (!d)
		return;
	avcodec_free_context(&d->ctx);
	av_packet_free(&d->pkt);
	av_frame_free(&d->frame);
	av_buffer_unref(&d->pbuf);
	if (d->opus)
		opus_decoder_destroy(d->opus);
	free(d);
	*dp = NULL;
}

/* ---- encoders ---- */

static unsigned default_bitrate(enum codec_id id, unsigned rate)
{
	switch (id) {
	case CODEC_OPUS:
		return 32000;
	case CODEC_AAC:
		return rate >= 32000 ? 64000 : rate >= 16000 ? 48000 : 32000;
	case CODEC_MP3:
		return rate >= 32000 ? 64000 : rate >= 16000 ? 32000 : 24000;
	default:
		return 0;
	}
}

static int opus_enc_setup(struct acodec_enc *e, char *why, size_t whylen)
{
	const struct acodec_enc_opts *o = &e->o;
	opus_int32 look = 0;
	int err;

	if (o->frame_ms != 10 && o->frame_ms != 20 && o->frame_ms != 40 && o->frame_ms != 60) {
		say(why, whylen, "Opus frames of %u ms are not supported (10, 20, 40, 60)",
		    o->frame_ms);
		return -EINVAL;
	}
	if (o->bitrate < 6000 || o->bitrate > 510000 || o->loss_pct > 100 || o->complexity > 10) {
		say(why, whylen,
		    "Opus bitrate %u (6000..510000), loss %u %% or complexity %u (1..10) out of "
		    "range",
		    o->bitrate, o->loss_pct, o->complexity);
		return -EINVAL;
	}
	e->opus = opus_encoder_create((opus_int32)e->rate, 1, OPUS_APPLICATION_VOIP, &err);
	if (!e->opus || err != OPUS_OK) {
		say(why, whylen, "opus encoder: %s", opus_strerror(err));
		return -ENOMEM;
	}
	if (opus_encoder_ctl(e->opus, OPUS_SET_BITRATE((opus_int32)o->bitrate)) != OPUS_OK ||
	    opus_encoder_ctl(e->opus, OPUS_SET_INBAND_FEC(o->fec ? 1 : 0)) != OPUS_OK ||
	    opus_encoder_ctl(e->opus, OPUS_SET_PACKET_LOSS_PERC((opus_int32)o->loss_pct)) !=
		OPUS_OK ||
	    opus_encoder_ctl(e->opus, OPUS_SET_DTX(o->dtx ? 1 : 0)) != OPUS_OK ||
	    opus_encoder_ctl(e->opus, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)) != OPUS_OK ||
	    opus_encoder_ctl(e->opus, OPUS_SET_COMPLEXITY((opus_int32)o->complexity)) != OPUS_OK ||
	    opus_encoder_ctl(e->opus, OPUS_GET_LOOKAHEAD(&look)) != OPUS_OK) {
		say(why, whylen, "opus encoder refused its settings");
		return -EINVAL;
	}
	e->frame = e->rate * o->frame_ms / 1000;
	e->delay = (unsigned)look;
	return 0;
}

static int av_enc_setup(struct acodec_enc *e, char *why, size_t whylen)
{
	const struct kind *k = e->k;
	const AVCodec *codec = k->enc_name ? avcodec_find_encoder_by_name(k->enc_name)
					   : avcodec_find_encoder(k->av_id);
	AVCodecContext *ctx;

	if (!codec) {
		say(why, whylen, "this libavcodec has no %s encoder%s%s%s", e->codec->name,
		    k->enc_name ? " (" : "", k->enc_name ? k->enc_name : "",
		    k->enc_name ? ")" : "");
		return -ENOTSUP;
	}
	ctx = e->ctx = avcodec_alloc_context3(codec);
	e->pkt = av_packet_alloc();
	e->frame_buf = av_frame_alloc();
	if (!ctx || !e->pkt || !e->frame_buf) {
		say(why, whylen, "no memory for the %s encoder", e->codec->name);
		return -ENOMEM;
	}
	ctx->opaque = e;
	ctx->thread_count = 1;
	ctx->sample_rate = (int)e->rate;
	ctx->sample_fmt = k->fmt;
	ctx->time_base = (AVRational){1, (int)e->rate};
	av_channel_layout_default(&ctx->ch_layout, 1);
	if (k->fixed_frame)
		ctx->frame_size = (int)k->fixed_frame;
	if (e->o.bitrate)
		ctx->bit_rate = e->o.bitrate;
	if (e->codec->id == CODEC_AAC)
		ctx->profile = FF_PROFILE_AAC_LOW;
	if (e->codec->id == CODEC_NELLYMOSER)
		ctx->strict_std_compliance = FF_COMPLIANCE_EXPERIMENTAL; /* 5512 Hz */
	if (avcodec_open2(ctx, codec, NULL) < 0 || ctx->frame_size <= 0) {
		say(why, whylen, "%s encoder refused %u Hz at %u bit/s", e->codec->name, e->rate,
		    e->o.bitrate);
		return -EINVAL;
	}
	e->frame = (unsigned)ctx->frame_size;
	e->delay = ctx->initial_padding > 0 ? (unsigned)ctx->initial_padding : 0;
	e->frame_buf->nb_samples = ctx->frame_size;
	e->frame_buf->format = ctx->sample_fmt;
	e->frame_buf->sample_rate = ctx->sample_rate;
	if (av_channel_layout_copy(&e->frame_buf->ch_layout, &ctx->ch_layout) < 0 ||
	    av_frame_get_buffer(e->frame_buf, 0) < 0) {
		say(why, whylen, "no memory for the %s encoder", e->codec->name);
		return -ENOMEM;
	}
	return 0;
}

struct acodec_enc *acodec_enc_new(const struct codec *c, unsigned rate, unsigned channels,
				  const struct acodec_enc_opts *o, const char *sid, char *why,
				  size_t whylen)
{
	const struct kind *k = kind_of(c);
	struct acodec_enc *e;
	int err;

	say(why, whylen, "%s", "");
	if (!k) {
		say(why, whylen, "%s is not a codec acodec encodes", c ? c->label : "(none)");
		return NULL;
	}
	if (rate == 0)
		rate = k->def_rate;
	if (!rate_in(k->rates, rate)) {
		say(why, whylen, "%s cannot be encoded at %u Hz", c->name, rate);
		return NULL;
	}
	if (channels > 1) {
		say(why, whylen, "%s encoder: %u channels asked, only mono is encoded", c->name,
		    channels);
		return NULL;
	}
	av_setup();
	e = calloc(1, sizeof(*e));
	if (!e) {
		say(why, whylen, "no memory for the %s encoder", c->name);
		return NULL;
	}
	snprintf(e->sid, sizeof(e->sid), "%s", sid ? sid : "-");
	e->codec = c;
	e->k = k;
	e->rate = rate;
	if (o)
		e->o = *o;
	if (e->o.frame_ms == 0)
		e->o.frame_ms = 20;
	if (e->o.bitrate == 0)
		e->o.bitrate = default_bitrate(c->id, rate);
	if (e->o.fec && e->o.loss_pct == 0)
		e->o.loss_pct = 10;
	if (e->o.complexity == 0)
		e->o.complexity = 5;
	err = k->be == BE_OPUS ? opus_enc_setup(e, why, whylen) : av_enc_setup(e, why, whylen);
	if (err < 0) {
		acodec_enc_free(&e);
		return NULL;
	}
	return e;
}

unsigned acodec_enc_frame(const struct acodec_enc *e)
{
	return e ? e->frame : 0;
}

unsigned acodec_enc_rate(const struct acodec_enc *e)
{
	return e ? e->rate : 0;
}

unsigned acodec_enc_delay(const struct acodec_enc *e)
{
	return e ? e->delay : 0;
}

static int av_encode(struct acodec_enc *e, const int16_t *pcm, uint8_t *out, size_t max)
{
	int ret;

	if (av_frame_make_writable(e->frame_buf) < 0)
		return -EIO;
	from_mono(e->frame_buf, e->k->fmt, pcm, (int)e->frame);
	e->frame_buf->pts = e->pts;
	e->pts += e->frame;
	ret = avcodec_send_frame(e->ctx, e->frame_buf);
	if (ret < 0)
		return -EIO;
	ret = avcodec_receive_packet(e->ctx, e->pkt);
	if (ret == AVERROR(EAGAIN))
		return 0;
	if (ret < 0)
		return -EIO;
	if ((size_t)e->pkt->size > max) {
		av_packet_unref(e->pkt);
		return -E2BIG;
	}
	memcpy(out, e->pkt->data, (size_t)e->pkt->size);
	ret = e->pkt->size;
	av_packet_unref(e->pkt);
	return ret;
}

int acodec_encode(struct acodec_enc *e, const int16_t *pcm, uint8_t *out, size_t max)
{
	int ret;

	if (!e || !pcm || (!out && max))
		return -EINVAL;
	if (e->k->be == BE_AV)
		return av_encode(e, pcm, out, max);
	ret = opus_encode(e->opus, pcm, (int)e->frame, out, (opus_int32)(max > 8192 ? 8192 : max));
	if (ret == OPUS_BUFFER_TOO_SMALL)
		return -E2BIG;
	if (ret < 0)
		return -EIO;
	if (e->o.dtx && ret <= 2)
		return 0;
	return ret;
}

size_t acodec_opus_head(unsigned channels, unsigned preskip, unsigned rate, uint8_t *out,
			size_t max)
{
	if (max < 19 || channels < 1 || channels > 2)
		return 0;
	memcpy(out, "OpusHead", 8);
	out[8] = 1; /* version */
	out[9] = (uint8_t)channels;
	out[10] = (uint8_t)(preskip & 0xff);
	out[11] = (uint8_t)(preskip >> 8);
	out[12] = (uint8_t)(rate & 0xff);
	out[13] = (uint8_t)(rate >> 8);
	out[14] = (uint8_t)(rate >> 16);
	out[15] = (uint8_t)(rate >> 24);
	out[16] = out[17] = 0; /* output gain */
	out[18] = 0;	       /* mapping family: mono/stereo, no table */
	return 19;
}

int acodec_packet_samples(const struct codec *c, const uint8_t *p, size_t len)
{
	int n;

	if (!c || !p || len == 0 || len > ACODEC_MAX_PAYLOAD)
		return -EPROTO;
	if (c->id != CODEC_OPUS)
		return -ENOTSUP;
	n = opus_packet_get_nb_samples(p, (opus_int32)len, 48000);
	return n > 0 ? n : -EPROTO;
}

size_t acodec_enc_config(const struct acodec_enc *e, uint8_t *out, size_t max)
{
	if (!e)
		return 0;
	if (e->k->be == BE_OPUS)
		return acodec_opus_head(1, e->delay * (48000 / e->rate), e->rate, out, max);
	if (e->codec->id != CODEC_AAC || !e->ctx->extradata || e->ctx->extradata_size <= 0 ||
	    (size_t)e->ctx->extradata_size > max)
		return 0;
	memcpy(out, e->ctx->extradata, (size_t)e->ctx->extradata_size);
	return (size_t)e->ctx->extradata_size;
}

void acodec_enc_free(struct acodec_enc **ep)
{
	struct acodec_enc *e = ep ? *ep : NULL;

	if (!e)
		return;
	avcodec_free_context(&e->ctx);
	av_packet_free(&e->pkt);
	av_frame_free(&e->frame_buf);
	if (e->opus)
		opus_encoder_destroy(e->opus);
	free(e);
	*ep = NULL;
}
