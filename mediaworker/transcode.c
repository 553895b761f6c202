/*
 * transcode.c - per-leg audio conversion RTMP <-> SIP. See transcode.h for the paths.
 *
 * Each direction is a struct tc_dir with one of four paths:
 *
 *   PASS   payload ──────────────────────────────────────────▶ payload (re-cut / split)
 *   XLAT   G.711 ──── 256-entry table ─────────────────────────▶ G.711 (other law)
 *   LAYER  Speex ──── walk bits, copy NB part ±4-bit WB layer ──▶ Speex
 *   PCM    payload ─▶ decoder ─▶ [resampler] ─▶ FIFO ─▶ encoder ▶ frames of 20 ms
 *          (G.711 and Speex here; G.722, Opus, AAC, MP3, Nellymoser through acodec.h, whose
 *          decoders may learn their rate from the stream: the resampler follows it; toward
 *          RTMP, AAC and Opus start with a sequence header of 0 samples)
 *
 * The Speex bitstream walk is in transcode_speex.c.
 *
 * libspeex 1.2's narrowband decoder cannot skip a high-band layer of submode 0 (the 4-bit empty
 * layer DTX/VAD encoders and our narrowband core emit): its wb_skip_table[0] is 0, so it seeks
 * 4 bits backwards and fails with "more than two wideband layers". So the decoders here never
 * walk a packet themselves: each frame is handed over alone, as exactly the bits one decode call
 * reads (pack_frames()).
 *
 * A Speex decoder must see its stream from the encoder's first frame. CELP decoders keep the past
 * excitation (the adaptive codebook) and the encoder predicts from its own copy of it; a decoder
 * that starts later, or after a lost frame, predicts from different memory. On speech the
 * difference fades, but a steady tone is sustained with pitch gains of 1 or a little more and
 * almost no innovation, so the difference never fades: it grows by that gain every pitch period
 * until the output clips (a 600 Hz tone ends as a clipped ~200 Hz buzz after one or two seconds;
 * measured with libspeex 1.2.1, narrowband and wideband decoders alike, even one frame late).
 * Nothing in the bitstream lets a late decoder catch up. So the RTMP stream's decoder lives as
 * long as the stream does on this worker: while the up direction does not decode (pass-through,
 * layer strip) transcoder_track_rtmp() keeps a decoder running on the stream, and
 * transcoder_handover() gives it, or the PCM path's decoder, to the transcoder that replaces
 * this one when the SIP codec changes mid-call (and the Speex encoder toward RTMP, so the
 * player's decoder keeps following one encoder).
 */
#include "transcode.h"

#include "acodec.h"
#include "g711.h"
#include "log.h"
#include "transcode_speex.h"

#include <speex/speex.h>
#include <speex/speex_resampler.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define G711_FRAME    160 /* bytes = samples in 20 ms at 8 kHz */
#define MAX_PCM_FRAME 320 /* samples in 20 ms at 16 kHz */
#define FIFO_CAP      1024
/* Largest encoder output: G.711 160 bytes, Speex <= 106 (NB 492 + WB 352 bits). */
#define MAX_ENC_BYTES 160
/*
 * Library codecs (acodec.h): one payload decodes to at most LIB_PCM_MAX samples (an AAC frame
 * is 1,024, 2,048 with SBR; an MP3 frame 1,152; a 60 ms Opus packet 2,880 at 48 kHz), fed to
 * the resampler in chunks of LIB_CHUNK; their FIFO holds a frame of the largest encoder (AAC,
 * 1,024 or MP3 1,152) plus a chunk resampled up to 6 times (8 -> 48 kHz); an encoded frame is
 * at most LIB_ENC_MAX bytes (AAC-LC's 6,144 bits per channel is 768 bytes).
 */
#define LIB_PCM_MAX   8192
#define LIB_CHUNK     320
#define LIB_FIFO_CAP  (2 * 1152 + 6 * LIB_CHUNK + 64)
#define LIB_ENC_MAX   1536
#define HDR_MAX	      5 /* RTMP audio header: 1 (FLV), 2 (AAC), 5 (Enhanced RTMP) */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum tc_path { PATH_PASS, PATH_XLAT, PATH_LAYER, PATH_PCM };

static const char *const path_names[] = {
    [PATH_PASS] = "pass-through",
    [PATH_XLAT] = "G.711 law conversion",
    [PATH_LAYER] = "Speex layer strip/add (no codec)",
    [PATH_PCM] = "decode/encode",
};

/* Decoder stage: payload -> PCM at rate, frame samples per 20 ms. */
struct dec_stage {
	const struct codec *codec;
	unsigned rate;
	unsigned frame;
	void *spx; /* Speex decoder state, NULL for G.711 */
	SpeexBits bits;
	struct acodec_dec *ac; /* library codec (CODEC_FAMILY_FRAMED) */
	unsigned hint_rate;    /* the RTMP header's rate and channels, for a decoder made late */
	unsigned hint_channels;
};

/* Encoder stage: PCM frame -> payload. */
struct enc_stage {
	const struct codec *codec;
	unsigned rate;
	unsigned frame;
	void *spx; /* Speex encoder state, NULL for G.711 */
	SpeexBits bits;
	bool add_layer; /* narrowband core toward a WB stream: append an empty high-band layer */
	struct acodec_enc *ac; /* library codec (CODEC_FAMILY_FRAMED) */
};

struct tc_dir {
	enum tc_path path;
	const struct codec *in;
	const struct codec *out;
	uint8_t tag;	      /* FLV tag byte prefixed to each output (toward RTMP), 0 toward SIP */
	uint8_t hdr[HDR_MAX]; /* the whole RTMP audio header of a coded frame (tag byte first) */
	uint8_t hdr_n;	      /* its length, 0 toward SIP */
	bool config_due;      /* toward RTMP, AAC or Opus: a sequence header goes first */
	bool nb_core;	      /* the Speex stage runs at 8 kHz on the narrowband layer */
	struct dec_stage dec; /* PATH_PCM only */
	SpeexResamplerState *rs; /* PATH_PCM when dec.rate != enc.rate */
	unsigned rs_in;		 /* the rate rs converts from (a library decoder's may change) */
	struct enc_stage enc;	 /* PATH_PCM only */
	int16_t *fifo;		 /* PCM at enc.rate waiting for a whole frame (PATH_PCM) */
	unsigned fifo_cap;
	unsigned fifo_n;
	uint64_t fifo_in;	 /* samples ever put on the FIFO */
	uint64_t pkts;		 /* encoded frames given out (toward RTMP: for out->lead) */
	uint8_t rem[G711_FRAME]; /* G.711 toward SIP: bytes short of a 20 ms payload */
	unsigned rem_n;
};

struct transcoder {
	struct transcode_opts o;
	char sid[48];
	const struct codec *rtmp;     /* what the publisher sends */
	const struct codec *rtmp_out; /* what the players get (opts.rtmp_out, else rtmp) */
	const struct codec *sip;
	struct tc_dir up;   /* RTMP -> SIP */
	struct tc_dir down; /* SIP -> RTMP */
	const char *err;
	char desc[128];
	/* G.711 SIP side: the last 20 ms received, for concealment */
	uint8_t last[G711_FRAME];
	bool have_last;
	unsigned lost_run;
	/* The RTMP stream's Speex decoder while the up direction does not decode
	 * (transcoder_track_rtmp()); its output is dropped. Two kinds, as the next path may need
	 * either: the narrowband core's (track, with opts.narrowband_core) and the whole wideband
	 * stream's (track_wb, for a 16 kHz or wider side: G.722, Opus, AAC...). */
	struct dec_stage track;
	struct dec_stage track_wb;
};

void transcode_opts_default(struct transcode_opts *o)
{
	*o = (struct transcode_opts){
	    .speex_quality = 8,
	    .speex_complexity = 2,
	    .speex_vbr = false,
	    .speex_enhancer = true,
	    .resample_quality = SPEEX_RESAMPLER_QUALITY_VOIP,
	    .speex_split = true,
	    .narrowband_core = true,
	    .g711_plc_frames = 3,
	    .sid = NULL,
	};
}

void transcode_opts_opus_fmtp(struct transcode_opts *o, const char *fmtp)
{
	char copy[160], *save = NULL;

	o->opus_fec = o->opus_dtx = false;
	o->opus_bitrate = 0;
	if (!fmtp || strlen(fmtp) >= sizeof(copy))
		return;
	snprintf(copy, sizeof(copy), "%s", fmtp);
	for (char *kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(kv, '='), *end = NULL;
		unsigned long v;

		while (*kv == ' ')
			kv++;
		if (!eq)
			continue;
		*eq = '\0';
		v = strtoul(eq + 1, &end, 10);
		if (end == eq + 1 || (*end && *end != ' '))
			continue;
		if (strcasecmp(kv, "useinbandfec") == 0)
			o->opus_fec = v == 1;
		else if (strcasecmp(kv, "usedtx") == 0)
			o->opus_dtx = v == 1;
		else if (strcasecmp(kv, "maxaveragebitrate") == 0 && v >= 6000 && v <= 510000)
			o->opus_bitrate = (unsigned)v;
	}
}

static int clamp_int(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- output arena ---------------------------------------------------------------------- */

static void out_reset(struct tc_out *out, unsigned rate)
{
	out->n = 0;
	out->used = 0;
	out->rate = rate;
	out->lead = 0;
}

static int fail(struct transcoder *t, struct tc_out *out, int err, const char *why)
{
	t->err = why;
	if (out)
		out_reset(out, out->rate);
	log_debug(t->sid, "transcoder: %s", why);
	return err;
}

/* ---- codec stages ---------------------------------------------------------------------- */

static void dec_fini(struct dec_stage *d)
{
	acodec_dec_free(&d->ac);
	if (d->spx) {
		speex_decoder_destroy(d->spx);
		speex_bits_destroy(&d->bits);
		d->spx = NULL;
	}
}

/*
 * A library decoder of @d's codec, at @want Hz where the codec lets us choose (Opus). Made at
 * once for a SIP codec, on the first payload or sequence header for an RTMP one (its rate and
 * channels come from the stream). 0 or -EPROTO (logged).
 */
static int dec_open(struct dec_stage *d, const uint8_t *config, size_t config_len, unsigned want,
		    const char *sid)
{
	char why[160];

	if (d->ac)
		return config ? (acodec_dec_config(d->ac, config, config_len) < 0 ? -EPROTO : 0)
			      : 0;
	d->ac = acodec_dec_new(d->codec, d->codec->id == CODEC_OPUS ? want : d->hint_rate,
			       d->hint_channels, config, config_len, sid, why, sizeof(why));
	if (!d->ac) {
		log_warn(sid, "transcoder: no %s decoder: %s", d->codec->label, why);
		return -EPROTO;
	}
	d->rate = acodec_dec_rate(d->ac);
	return 0;
}

/* @nb_core: decode a WB stream's narrowband layer at 8 kHz; @want: see dec_open(). */
static int dec_init(struct dec_stage *d, const struct codec *c, bool nb_core,
		    const struct transcode_opts *o, unsigned want)
{
	spx_int32_t v;

	d->codec = c;
	if (c->family == CODEC_FAMILY_FRAMED) {
		/* The RTMP header's rate and channels are hints for the RTMP side only. */
		d->hint_rate = c->sip ? 0 : o->rtmp_rate;
		d->hint_channels = !c->sip && o->rtmp_channels ? o->rtmp_channels : 1;
		d->frame = LIB_CHUNK;
		return c->sip ? dec_open(d, NULL, 0, want, o->sid) : 0;
	}
	if (c->family == CODEC_FAMILY_G711) {
		d->rate = 8000;
		d->frame = G711_FRAME;
		return 0;
	}
	d->spx = speex_decoder_init(c->id == CODEC_SPEEX_WB && !nb_core ? &speex_wb_mode
									: &speex_nb_mode);
	if (!d->spx)
		return -ENOMEM;
	speex_bits_init(&d->bits);
	v = o->speex_enhancer;
	speex_decoder_ctl(d->spx, SPEEX_SET_ENH, &v);
	speex_decoder_ctl(d->spx, SPEEX_GET_FRAME_SIZE, &v);
	d->frame = (unsigned)v;
	d->rate = d->frame == MAX_PCM_FRAME ? 16000 : 8000;
	return 0;
}

/* Decodes one frame from d->bits (NULL bits: concealment) into @pcm. 0 or -EPROTO. */
static int dec_speex(struct dec_stage *d, SpeexBits *bits, int16_t *pcm)
{
	return speex_decode_int(d->spx, bits, pcm) == 0 ? 0 : -EPROTO;
}

/*
 * Decodes frame @i of the walked payload @p into @pcm (d->frame samples), handing the decoder
 * exactly the bits one decode call reads (see the top of the file); in-band requests are
 * dropped, as the decoder, which has no handlers set, would skip them. 0 or -EPROTO.
 */
static int dec_frame(struct dec_stage *d, const uint8_t *p, size_t len, const struct spx_walk *w,
		     unsigned i, int16_t *pcm)
{
	uint8_t one[MAX_ENC_BYTES];
	size_t bytes = pack_frames(one, p, len, w, i, 1,
				   d->frame == MAX_PCM_FRAME ? BITS_WB : BITS_NB_ONLY);

	speex_bits_read_from(&d->bits, (const char *)one, (int)bytes);
	return dec_speex(d, &d->bits, pcm);
}

static void enc_fini(struct enc_stage *e)
{
	acodec_enc_free(&e->ac);
	if (e->spx) {
		speex_encoder_destroy(e->spx);
		speex_bits_destroy(&e->bits);
		e->spx = NULL;
	}
}

/*
 * The rate a library encoder of @c runs at when its input comes at @in Hz: G.722 16 kHz; Opus
 * 16 kHz for narrowband or wideband input (the RTP clock stays 48 kHz), else 48 kHz; AAC and the
 * other RTMP codecs 16 kHz for telephone input, else the input's rate.
 */
static unsigned lib_enc_rate(const struct codec *c, unsigned in)
{
	if (c->id == CODEC_G722)
		return 16000;
	if (c->id == CODEC_OPUS)
		return in && in <= 16000 ? 16000 : 48000;
	if (c->id == CODEC_NELLYMOSER)
		return in && in <= 8000 ? 8000 : 16000;
	return in && in > 16000 ? (in == 44100 ? 44100 : 48000) : 16000;
}

/* @nb_core: produce a WB stream from a narrowband encoder plus an empty high-band layer; @in:
 * the rate of the audio it will get (for a library encoder's rate). */
static int enc_init(struct enc_stage *e, const struct codec *c, bool nb_core,
		    const struct transcode_opts *o, unsigned in)
{
	spx_int32_t v;

	e->codec = c;
	if (c->family == CODEC_FAMILY_FRAMED) {
		struct acodec_enc_opts eo = {
		    /* Opus: 32 kbit/s, or less when the peer's maxaveragebitrate says so */
		    .bitrate = c->id == CODEC_OPUS && o->opus_bitrate && o->opus_bitrate < 32000
				   ? o->opus_bitrate
				   : 0,
		    .fec = c->id == CODEC_OPUS && o->opus_fec,
		    .dtx = c->id == CODEC_OPUS && o->opus_dtx,
		    .loss_pct = c->id == CODEC_OPUS && o->opus_fec ? 5 : 0,
		    .frame_ms = 20,
		};
		char why[160];

		e->ac = acodec_enc_new(c, lib_enc_rate(c, in), 1, &eo, o->sid, why, sizeof(why));
		if (!e->ac) {
			log_warn(o->sid, "transcoder: no %s encoder: %s", c->label, why);
			return -ENOTSUP;
		}
		e->rate = acodec_enc_rate(e->ac);
		e->frame = acodec_enc_frame(e->ac);
		return 0;
	}
	if (c->family == CODEC_FAMILY_G711) {
		e->rate = 8000;
		e->frame = G711_FRAME;
		return 0;
	}
	e->add_layer = c->id == CODEC_SPEEX_WB && nb_core;
	e->spx = speex_encoder_init(c->id == CODEC_SPEEX_WB && !nb_core ? &speex_wb_mode
									: &speex_nb_mode);
	if (!e->spx)
		return -ENOMEM;
	speex_bits_init(&e->bits);
	v = o->speex_quality;
	speex_encoder_ctl(e->spx, SPEEX_SET_QUALITY, &v);
	v = o->speex_complexity;
	speex_encoder_ctl(e->spx, SPEEX_SET_COMPLEXITY, &v);
	v = o->speex_vbr;
	speex_encoder_ctl(e->spx, SPEEX_SET_VBR, &v);
	if (o->speex_vbr) {
		float q = (float)o->speex_quality;

		speex_encoder_ctl(e->spx, SPEEX_SET_VBR_QUALITY, &q);
	}
	speex_encoder_ctl(e->spx, SPEEX_GET_FRAME_SIZE, &v);
	e->frame = (unsigned)v;
	e->rate = e->frame == MAX_PCM_FRAME ? 16000 : 8000;
	return 0;
}

/* Encodes e->frame samples of @pcm into @dst (>= enc_max(e)); returns the bytes written. */
static size_t enc_frame(struct enc_stage *e, int16_t *pcm, uint8_t *dst)
{
	if (e->ac) {
		int n = acodec_encode(e->ac, pcm, dst, LIB_ENC_MAX);

		return n > 0 ? (size_t)n : 0;
	}
	switch (e->codec->id) {
	case CODEC_PCMU:
		g711_ulaw_encode_buf(dst, pcm, G711_FRAME);
		return G711_FRAME;
	case CODEC_PCMA:
		g711_alaw_encode_buf(dst, pcm, G711_FRAME);
		return G711_FRAME;
	default:
		break;
	}
	speex_bits_reset(&e->bits);
	speex_encode_int(e->spx, pcm, &e->bits);
	if (e->add_layer) {
		speex_bits_pack(&e->bits, 1, 1); /* wideband bit */
		speex_bits_pack(&e->bits, 0, 3); /* high-band submode 0: no bits, silence */
	}
	/* speex_bits_nbytes() <= 106 < MAX_ENC_BYTES for every mode: the write never truncates. */
	return (size_t)speex_bits_write(&e->bits, (char *)dst, MAX_ENC_BYTES);
}

static size_t enc_max(const struct enc_stage *e)
{
	return e->ac ? LIB_ENC_MAX : MAX_ENC_BYTES;
}

static void g711_decode(const struct codec *c, int16_t *dst, const uint8_t *src, size_t n)
{
	if (c->id == CODEC_PCMA)
		g711_alaw_decode_buf(dst, src, n);
	else
		g711_ulaw_decode_buf(dst, src, n);
}

/* ---- directions ------------------------------------------------------------------------ */

static void dir_fini(struct tc_dir *d)
{
	dec_fini(&d->dec);
	enc_fini(&d->enc);
	if (d->rs) {
		speex_resampler_destroy(d->rs);
		d->rs = NULL;
	}
	free(d->fifo);
	d->fifo = NULL;
}

/* (Re)makes the resampler from @in Hz to the encoder's rate; none when equal. 0 or -ENOMEM. */
static int dir_resampler(struct transcoder *t, struct tc_dir *d, unsigned in)
{
	int err = 0;

	if (d->rs && d->rs_in == in)
		return 0;
	if (d->rs) {
		speex_resampler_destroy(d->rs);
		d->rs = NULL;
	}
	d->rs_in = in;
	if (in == d->enc.rate)
		return 0;
	d->rs = speex_resampler_init(1, in, d->enc.rate, t->o.resample_quality, &err);
	return d->rs ? 0 : -ENOMEM;
}

static int dir_init(struct transcoder *t, struct tc_dir *d, const struct codec *in,
		    const struct codec *out, bool toward_rtmp)
{
	bool odd_g711;
	int ret;

	d->in = in;
	d->out = out;
	d->hdr_n = toward_rtmp ? (uint8_t)codec_rtmp_header(out, 0, 1, false, d->hdr) : 0;
	d->tag = d->hdr_n ? d->hdr[0] : 0;
	d->config_due = toward_rtmp && (out->id == CODEC_AAC || out->id == CODEC_OPUS);
	/* G.711 from a publisher at another rate than 8 kHz (its metadata said so): decoded and
	 * resampled, never passed. */
	odd_g711 = !toward_rtmp && in->family == CODEC_FAMILY_G711 && t->o.rtmp_rate &&
		   t->o.rtmp_rate != 8000;
	if (in == out && !odd_g711) {
		d->path = PATH_PASS;
		return 0;
	}
	if (in->family == CODEC_FAMILY_G711 && out->family == CODEC_FAMILY_G711 && !odd_g711) {
		d->path = PATH_XLAT;
		return 0;
	}
	if (in->family == CODEC_FAMILY_SPEEX && out->family == CODEC_FAMILY_SPEEX &&
	    t->o.narrowband_core) {
		d->path = PATH_LAYER;
		return 0;
	}
	d->path = PATH_PCM;
	/* The narrowband core only where a WB stream meets an 8 kHz side (G.711, and Speex NB
	 * without layer strip): a 16 kHz or wider one (G.722, Opus, AAC) keeps the high band. */
	d->nb_core = t->o.narrowband_core &&
		     ((in->id == CODEC_SPEEX_WB && out->pcm_rate == 8000) ||
		      (out->id == CODEC_SPEEX_WB && in->pcm_rate == 8000));
	/* The encoder first: a library decoder that can choose its rate takes the encoder's. */
	ret = enc_init(&d->enc, out, d->nb_core, &t->o,
		       in->pcm_rate ? in->pcm_rate : t->o.rtmp_rate);
	if (ret == 0)
		ret = dec_init(&d->dec, in, d->nb_core, &t->o, d->enc.rate);
	if (ret == 0 && odd_g711)
		d->dec.rate = t->o.rtmp_rate;
	if (ret == 0 && toward_rtmp) /* Nellymoser and MP3 headers say the encoder's rate */
		d->hdr_n = (uint8_t)codec_rtmp_header(out, d->enc.rate, 1, false, d->hdr);
	d->fifo_cap = d->enc.ac || d->dec.codec->family == CODEC_FAMILY_FRAMED ? LIB_FIFO_CAP
										: FIFO_CAP;
	if (ret == 0) {
		d->fifo = malloc(d->fifo_cap * sizeof(*d->fifo));
		if (!d->fifo)
			ret = -ENOMEM;
	}
	/* A library decoder made later sets its rate then (pcm_push()). */
	if (ret == 0 && d->dec.rate)
		ret = dir_resampler(t, d, d->dec.rate);
	return ret;
}

/* G.711 in, G.711 out (same law or the other one). */
static int run_g711(struct transcoder *t, struct tc_dir *d, const uint8_t *p, size_t len,
		    struct tc_out *out)
{
	void (*xlat)(uint8_t *, const uint8_t *, size_t) = NULL;
	size_t frames, off = 0;

	if (d->path == PATH_XLAT)
		xlat = d->in->id == CODEC_PCMU ? g711_ulaw_to_alaw_buf : g711_alaw_to_ulaw_buf;
	if (d->tag) { /* toward RTMP: one message, same packetisation */
		uint8_t *dst;

		if (!len)
			return 0;
		dst = out_begin(out, len + 1);
		if (!dst)
			return fail(t, out, -E2BIG, "G.711 payload too large");
		dst[0] = d->tag;
		if (xlat)
			xlat(dst + 1, p, len);
		else
			memcpy(dst + 1, p, len);
		out_commit(out, len + 1, (unsigned)len);
		return 0;
	}
	/* toward SIP: 20 ms payloads, the remainder waits */
	frames = (d->rem_n + len) / G711_FRAME;
	if (frames > TC_MAX_FRAMES || frames * G711_FRAME > TC_ARENA)
		return fail(t, out, -E2BIG, "G.711 message too large");
	for (size_t i = 0; i < frames; i++) {
		uint8_t *dst = out_begin(out, G711_FRAME);
		size_t head = d->rem_n;

		memcpy(dst, d->rem, head);
		memcpy(dst + head, p + off, G711_FRAME - head);
		off += G711_FRAME - head;
		d->rem_n = 0;
		if (xlat)
			xlat(dst, dst, G711_FRAME);
		out_commit(out, G711_FRAME, G711_FRAME);
	}
	memcpy(d->rem + d->rem_n, p + off, len - off);
	d->rem_n += (unsigned)(len - off);
	return 0;
}

/* The RTMP stream's frames into the tracking decoders that run (state only). */
static void track_frames(struct transcoder *t, const uint8_t *p, size_t len,
			 const struct spx_walk *w)
{
	int16_t pcm[MAX_PCM_FRAME];

	for (unsigned i = 0; i < w->n; i++) {
		if (t->track.spx)
			(void)dec_frame(&t->track, p, len, w, i, pcm);
		if (t->track_wb.spx)
			(void)dec_frame(&t->track_wb, p, len, w, i, pcm);
	}
}

/* Speex in, Speex out, no codec: pass-through or layer strip/add. */
static int run_speex_bits(struct transcoder *t, struct tc_dir *d, const uint8_t *p, size_t len,
			  struct tc_out *out)
{
	struct spx_walk w;
	unsigned fs = d->out->frame_samples;
	int n = spx_walk(p, len, &w), ret = 0;

	if (n < 0)
		return fail(t, out, n,
			    n == -E2BIG ? "too many Speex frames in one payload"
					: "malformed Speex bitstream");
	if (n == 0)
		return 0;
	if (d == &t->up)
		track_frames(t, p, len, &w);
	if (d->path == PATH_PASS && (d->tag || !t->o.speex_split || n == 1)) {
		uint8_t *dst = out_begin(out, len + (d->tag ? 1 : 0));

		if (!dst)
			return fail(t, out, -E2BIG, "Speex payload too large");
		if (d->tag)
			*dst++ = d->tag;
		memcpy(dst, p, len);
		out_commit(out, len + (d->tag ? 1 : 0), (unsigned)n * fs);
		return 0;
	}
	if (d->path == PATH_PASS) {
		for (unsigned i = 0; i < w.n && ret == 0; i++)
			ret = emit_speex(out, d->tag, p, len, &w, i, 1, BITS_KEEP, fs);
	} else if (d->out->id == CODEC_SPEEX_NB) {
		if (t->o.speex_split)
			for (unsigned i = 0; i < w.n && ret == 0; i++)
				ret = emit_speex(out, d->tag, p, len, &w, i, 1, BITS_NB_ONLY, fs);
		else
			ret = emit_speex(out, d->tag, p, len, &w, 0, w.n, BITS_NB_ONLY, w.n * fs);
	} else {
		for (unsigned i = 0; i < w.n && ret == 0; i++)
			ret = emit_speex(out, d->tag, p, len, &w, i, 1, BITS_ADD_LAYER, fs);
	}
	if (ret < 0)
		return fail(t, out, ret, "Speex frames exceed the output arena");
	return 0;
}

/*
 * Toward RTMP for AAC and Opus: the sequence header (AudioSpecificConfig, OpusHead) before the
 * first coded frame, as a frame of 0 samples. The worker sends one on every new transcoder, so a
 * player gets it again after the leg moves to another worker.
 */
static int emit_config(struct transcoder *t, struct tc_dir *d, struct tc_out *out)
{
	uint8_t cfg[64];
	size_t n = 0, h;
	uint8_t *dst;

	d->config_due = false;
	if (d->enc.ac)
		n = acodec_enc_config(d->enc.ac, cfg, sizeof(cfg));
	else if (d->out->id == CODEC_OPUS)
		n = acodec_opus_head(1, 0, 48000, cfg, sizeof(cfg)); /* pass-through from SIP */
	if (n == 0)
		return 0;
	dst = out_begin(out, HDR_MAX + n);
	if (!dst)
		return fail(t, out, -E2BIG, "no room for the sequence header");
	h = codec_rtmp_header(d->out, d->enc.rate, 1, true, dst);
	memcpy(dst + h, cfg, n);
	out_commit(out, h + n, 0);
	return 0;
}

/* @k (<= LIB_CHUNK) samples at dec.rate through the resampler onto the FIFO; 0 or -E2BIG (full). */
static int fifo_feed(struct tc_dir *d, const int16_t *src, unsigned k)
{
	int16_t rsbuf[6 * LIB_CHUNK + 64];
	unsigned m = k;

	if (d->rs) {
		spx_uint32_t il = k, ol = ARRAY_SIZE(rsbuf);

		speex_resampler_process_int(d->rs, 0, src, &il, rsbuf, &ol);
		src = rsbuf;
		m = ol;
	}
	if (m > d->fifo_cap - d->fifo_n)
		return -E2BIG;
	memcpy(d->fifo + d->fifo_n, src, m * sizeof(*src));
	d->fifo_n += m;
	d->fifo_in += m;
	return 0;
}

/* How far the sound of the next encoded frame starts before the input at @in0 (samples put on
 * the FIFO before it): frame k holds the sound from k x frame - the encoder's delay on. */
static int32_t lead_of(const struct tc_dir *d, uint64_t in0)
{
	int64_t start = (int64_t)(d->pkts * d->enc.frame) - (int64_t)acodec_enc_delay(d->enc.ac);

	return (int32_t)((int64_t)in0 - start);
}

/* Feeds @n PCM samples at @rate through the resampler into the FIFO, encodes whole frames. */
static int pcm_push_rate(struct transcoder *t, struct tc_dir *d, const int16_t *pcm, unsigned n,
			 unsigned rate, struct tc_out *out)
{
	unsigned done = 0, off = 0;
	uint64_t in0 = d->fifo_in; /* where this input starts in what the encoder is given */
	bool lead_due = d->hdr_n != 0;

	if (rate != d->rs_in && dir_resampler(t, d, rate) < 0)
		return fail(t, out, -ENOMEM, "no resampler");
	if (d->config_due) {
		int ret = emit_config(t, d, out);

		if (ret < 0)
			return ret;
		if (lead_due && out->n) { /* stamped with the frame that will follow it */
			out->lead = lead_of(d, in0);
			lead_due = false;
		}
	}
	while (done < n) {
		unsigned k = n - done > LIB_CHUNK ? LIB_CHUNK : n - done;

		if (fifo_feed(d, pcm + done, k) < 0)
			return fail(t, out, -E2BIG, "PCM FIFO overflow");
		done += k;
		while (d->fifo_n - off >= d->enc.frame) {
			uint8_t *dst = out_begin(out, d->hdr_n + enc_max(&d->enc));
			size_t len;

			if (!dst)
				return fail(t, out, -E2BIG, "too many output frames");
			memcpy(dst, d->hdr, d->hdr_n);
			len = enc_frame(&d->enc, d->fifo + off, dst + d->hdr_n);
			off += d->enc.frame;
			/* Nothing encoded: toward RTMP a library encoder filling its look-ahead;
			 * toward SIP an Opus DTX frame, which still advances the RTP clock (an
			 * empty frame: the caller sends nothing for it). */
			if (len == 0 && d->enc.ac && d->hdr_n)
				continue;
			if (len == 0 && d->enc.ac) {
				out_commit(out, 0, d->out->frame_samples);
				continue;
			}
			if (lead_due) {
				out->lead = lead_of(d, in0);
				lead_due = false;
			}
			if (d->hdr_n)
				d->pkts++;
			out_commit(out, d->hdr_n + len,
				   d->out->sip ? d->out->frame_samples : d->enc.frame);
		}
		memmove(d->fifo, d->fifo + off, (d->fifo_n - off) * sizeof(d->fifo[0]));
		d->fifo_n -= off;
		off = 0;
	}
	return 0;
}

static int pcm_push(struct transcoder *t, struct tc_dir *d, const int16_t *pcm, unsigned n,
		    struct tc_out *out)
{
	return pcm_push_rate(t, d, pcm, n, d->dec.rate, out);
}

/* A library codec's payload: decoded (the decoder made on the first one), then pushed. */
static int run_lib_dec(struct transcoder *t, struct tc_dir *d, const uint8_t *p, size_t len,
		       struct tc_out *out)
{
	static _Thread_local int16_t pcm[LIB_PCM_MAX];
	int n;

	if (!d->dec.ac && dec_open(&d->dec, NULL, 0, d->enc.rate, t->sid) < 0)
		return fail(t, out, -EPROTO, "no decoder for this stream");
	n = acodec_decode(d->dec.ac, p, len, pcm, LIB_PCM_MAX);
	if (n < 0)
		return fail(t, out, n, n == -E2BIG ? "payload decodes to too many samples"
						   : "the decoder refused the payload");
	d->dec.rate = acodec_dec_rate(d->dec.ac);
	if (n == 0 || d->dec.rate == 0)
		return 0;
	/* All or nothing as far as the output goes: bounded by LIB_PCM_MAX at 6x resampling. */
	return pcm_push(t, d, pcm, (unsigned)n, out);
}

/* Library codec on both sides, the same codec: the payload passes (Opus RTMP <-> Opus SIP). */
static int run_lib_pass(struct transcoder *t, struct tc_dir *d, const uint8_t *p, size_t len,
			struct tc_out *out)
{
	int samples = acodec_packet_samples(d->in, p, len);
	uint8_t *dst;

	if (samples <= 0)
		return fail(t, out, -EPROTO, "malformed packet");
	if (d->config_due) {
		int ret = emit_config(t, d, out);

		if (ret < 0)
			return ret;
	}
	dst = out_begin(out, d->hdr_n + len);
	if (!dst)
		return fail(t, out, -E2BIG, "payload too large");
	memcpy(dst, d->hdr, d->hdr_n);
	memcpy(dst + d->hdr_n, p, len);
	out_commit(out, d->hdr_n + len, (unsigned)samples);
	return 0;
}

static int run_pcm(struct transcoder *t, struct tc_dir *d, const uint8_t *p, size_t len,
		   struct tc_out *out)
{
	int16_t pcm[MAX_PCM_FRAME];
	struct spx_walk w;
	unsigned long in_samples, expect;
	int n = 0, ret = 0;

	if (d->dec.codec->family == CODEC_FAMILY_FRAMED)
		return run_lib_dec(t, d, p, len, out);
	if (d->dec.spx) {
		n = spx_walk(p, len, &w);
		if (n < 0)
			return fail(t, out, n,
				    n == -E2BIG ? "too many Speex frames in one payload"
						: "malformed Speex bitstream");
		in_samples = (unsigned long)n * d->dec.frame;
	} else {
		in_samples = len;
	}
	/* All or nothing: refuse before decoding when the output cannot fit. */
	expect = (d->fifo_n + in_samples * d->enc.rate / d->dec.rate) / d->enc.frame;
	if (expect > TC_MAX_FRAMES)
		return fail(t, out, -E2BIG, "input gives too many output frames");
	if (d->dec.spx) {
		if (d == &t->up)
			track_frames(t, p, len, &w); /* the other kind, before the answer */
		for (int i = 0; i < n && ret == 0; i++) {
			ret = dec_frame(&d->dec, p, len, &w, (unsigned)i, pcm);
			if (ret == 0)
				ret = pcm_push(t, d, pcm, d->dec.frame, out);
			else
				ret = fail(t, out, ret, "Speex decoder refused a frame");
		}
		return ret;
	}
	for (size_t off = 0; off < len && ret == 0; off += G711_FRAME) {
		unsigned k = len - off > G711_FRAME ? G711_FRAME : (unsigned)(len - off);

		g711_decode(d->in, pcm, p + off, k);
		ret = pcm_push(t, d, pcm, k, out);
	}
	return ret;
}

static int dir_run(struct transcoder *t, struct tc_dir *d, const uint8_t *p, size_t len,
		   struct tc_out *out)
{
	if (len > TC_MAX_INPUT)
		return fail(t, out, -E2BIG, "payload larger than TC_MAX_INPUT");
	switch (d->path) {
	case PATH_PASS:
	case PATH_XLAT:
		if (d->in->family == CODEC_FAMILY_FRAMED)
			return run_lib_pass(t, d, p, len, out);
		if (d->in->family == CODEC_FAMILY_G711)
			return run_g711(t, d, p, len, out);
		return run_speex_bits(t, d, p, len, out);
	case PATH_LAYER:
		return run_speex_bits(t, d, p, len, out);
	case PATH_PCM:
		return run_pcm(t, d, p, len, out);
	}
	return -EINVAL;
}

/* ---- public API ------------------------------------------------------------------------ */

void transcoder_destroy(struct transcoder **tp)
{
	struct transcoder *t;

	if (!tp || !*tp)
		return;
	t = *tp;
	dir_fini(&t->up);
	dir_fini(&t->down);
	dec_fini(&t->track);
	dec_fini(&t->track_wb);
	free(t);
	*tp = NULL;
}

struct transcoder *transcoder_new(const struct transcode_opts *o, enum codec_id rtmp_codec,
				  enum codec_id sip_codec)
{
	const struct codec *rc = codec_by_id(rtmp_codec), *sc = codec_by_id(sip_codec);
	const char *sid = o && o->sid ? o->sid : "-";
	struct transcoder *t;

	const struct codec *ro = o && o->rtmp_out ? codec_by_id(o->rtmp_out) : rc;

	if (!codec_rtmp_capable(rc) || !codec_rtmp_capable(ro) || rc->family == CODEC_FAMILY_VIDEO ||
	    ro->family == CODEC_FAMILY_VIDEO) {
		log_warn(sid, "transcoder: codec id %d cannot be the RTMP audio codec",
			 (int)(rc && rc->family != CODEC_FAMILY_VIDEO && codec_rtmp_capable(rc)
				   ? (o ? o->rtmp_out : CODEC_NONE)
				   : rtmp_codec));
		return NULL;
	}
	if (!sc || !sc->sip || sc->family == CODEC_FAMILY_EVENT || sc->family == CODEC_FAMILY_VIDEO) {
		log_warn(sid, "transcoder: codec id %d cannot be the SIP audio codec",
			 (int)sip_codec);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (o)
		t->o = *o;
	else
		transcode_opts_default(&t->o);
	snprintf(t->sid, sizeof(t->sid), "%s", sid);
	t->o.sid = t->sid;
	t->o.speex_quality = clamp_int(t->o.speex_quality, 0, 10);
	t->o.speex_complexity = clamp_int(t->o.speex_complexity, 1, 10);
	t->o.resample_quality = clamp_int(t->o.resample_quality, 0, 10);
	t->rtmp = rc;
	t->rtmp_out = ro;
	t->sip = sc;
	t->err = "";
	if (dir_init(t, &t->up, rc, sc, false) < 0 || dir_init(t, &t->down, sc, ro, true) < 0) {
		log_error(sid, "transcoder: cannot create codec states for %s <-> %s", rc->label,
			  sc->label);
		transcoder_destroy(&t);
		return NULL;
	}
	memset(t->last, sc->id == CODEC_PCMA ? 0xD5 : 0xFF, sizeof(t->last)); /* silence */
	snprintf(t->desc, sizeof(t->desc), "%s <-> %s: %s%s%s%s%s", rc->label, sc->label,
		 path_names[t->up.path], t->up.rs ? " with resampling" : "",
		 t->up.nb_core ? " (narrowband core)" : "", ro != rc ? "; players get " : "",
		 ro != rc ? ro->label : "");
	log_debug(t->sid, "transcoder: %s", t->desc);
	return t;
}

int transcoder_track_rtmp(struct transcoder *t, bool on)
{
	bool pcm_dec, pcm_nb;
	int ret = 0;

	if (!t)
		return -EINVAL;
	if (!on || t->rtmp->family != CODEC_FAMILY_SPEEX) {
		dec_fini(&t->track);
		dec_fini(&t->track_wb);
		return 0;
	}
	/* Each kind of decoder a later path may run (dir_init(): the narrowband core where the
	 * other side is 8 kHz and the option is on, else the whole stream), unless this path's
	 * own decoder is of that kind. */
	pcm_dec = t->up.path == PATH_PCM && t->up.dec.spx;
	pcm_nb = pcm_dec && t->up.dec.frame != MAX_PCM_FRAME;
	if (t->o.narrowband_core && !pcm_nb && !t->track.spx)
		ret = dec_init(&t->track, t->rtmp, true, &t->o, 0);
	if (ret == 0 && !(pcm_dec && !pcm_nb) && !t->track_wb.spx)
		ret = dec_init(&t->track_wb, t->rtmp, false, &t->o, 0);
	return ret;
}

/* The decoders that have followed the RTMP stream, by frame (160: narrowband core, 320). */
static struct dec_stage *rtmp_decoder(struct transcoder *t, unsigned frame)
{
	if (t->up.path == PATH_PCM && t->up.dec.spx && t->up.dec.frame == frame)
		return &t->up.dec;
	if (t->track.spx && t->track.frame == frame)
		return &t->track;
	return t->track_wb.spx && t->track_wb.frame == frame ? &t->track_wb : NULL;
}

/* The Speex encoder of the stream toward RTMP, or NULL. */
static struct enc_stage *rtmp_encoder(struct transcoder *t)
{
	return t->down.path == PATH_PCM && t->down.enc.spx ? &t->down.enc : NULL;
}

void transcoder_handover(struct transcoder *from, struct transcoder *to)
{
	struct dec_stage *da, *db;
	struct enc_stage *ea, *eb;
	bool dec = false, enc = false;

	if (!from || !to || from->rtmp != to->rtmp || from->rtmp_out != to->rtmp_out)
		return;
	/* A library codec's RTMP stream (AAC's sequence header came once, to @from): its decoder
	 * goes over, or, when @from had none, the stream's hints. */
	if (from->rtmp->family == CODEC_FAMILY_FRAMED && to->up.path == PATH_PCM) {
		struct acodec_dec *ac = to->up.dec.ac;

		to->up.dec.ac = from->up.dec.ac;
		from->up.dec.ac = ac;
		if (from->up.dec.hint_rate)
			to->up.dec.hint_rate = from->up.dec.hint_rate;
		if (from->up.dec.hint_channels)
			to->up.dec.hint_channels = from->up.dec.hint_channels;
		to->up.dec.rate = to->up.dec.ac ? acodec_dec_rate(to->up.dec.ac) : 0;
		from->up.dec.rate = from->up.dec.ac ? acodec_dec_rate(from->up.dec.ac) : 0;
		if (to->up.dec.ac)
			log_debug(to->sid, "transcoder: carried over the RTMP stream's %s decoder",
				  to->rtmp->label);
		return;
	}
	/* Every decoder of @to that follows the stream takes the state of @from's of its kind. */
	for (unsigned frame = MAX_PCM_FRAME / 2; frame <= MAX_PCM_FRAME; frame += MAX_PCM_FRAME / 2) {
		da = rtmp_decoder(from, frame);
		db = rtmp_decoder(to, frame);
		if (da && db) {
			void *spx = da->spx;
			SpeexBits bits = da->bits;

			da->spx = db->spx;
			da->bits = db->bits;
			db->spx = spx;
			db->bits = bits;
			dec = true;
		}
	}
	ea = rtmp_encoder(from);
	eb = rtmp_encoder(to);
	if (ea && eb && ea->frame == eb->frame && ea->add_layer == eb->add_layer) {
		void *spx = ea->spx;
		SpeexBits bits = ea->bits;

		ea->spx = eb->spx;
		ea->bits = eb->bits;
		eb->spx = spx;
		eb->bits = bits;
		enc = true;
	}
	if (dec || enc)
		log_debug(to->sid, "transcoder: carried over the RTMP stream's Speex %s%s%s",
			  dec ? "decoder" : "", dec && enc ? " and " : "",
			  enc ? "encoder toward RTMP" : "");
	else if (to->up.path == PATH_PCM && to->up.dec.spx)
		log_debug(to->sid, "transcoder: the RTMP stream's decoder starts mid-stream");
}

bool transcoder_is_passthrough(const struct transcoder *t)
{
	return t && t->up.path == PATH_PASS;
}

const char *transcoder_describe(const struct transcoder *t)
{
	return t ? t->desc : "";
}

const char *transcoder_error(const struct transcoder *t)
{
	return t && t->err ? t->err : "";
}

int transcoder_rtmp_to_sip(struct transcoder *t, const uint8_t *msg, size_t len, struct tc_out *out)
{
	struct rtmp_audio ra;
	const char *why = "unknown audio format";

	if (!t || !out || (!msg && len))
		return -EINVAL;
	out_reset(out, t->sip->clock_rate);
	if (len == 0)
		return fail(t, out, -EPROTO, "empty RTMP audio message");
	if (codec_rtmp_parse(msg, len, &ra, &why) < 0)
		return fail(t, out, -EPROTO, why);
	if (ra.codec != t->rtmp)
		return fail(t, out, -EPROTO, "audio tag byte names another codec than the leg's");
	if (len - ra.hdr_len > TC_MAX_INPUT)
		return fail(t, out, -E2BIG, "payload larger than TC_MAX_INPUT");
	if (ra.end)
		return 0;
	if (ra.config) {
		/* AAC's AudioSpecificConfig (re)configures the decoder; an OpusHead says nothing
		 * a decoder of ours needs, and passes on no further (the worker sends its own). */
		if (t->rtmp->id != CODEC_AAC || t->up.path != PATH_PCM)
			return 0;
		t->up.dec.hint_rate = ra.rate;
		t->up.dec.hint_channels = ra.channels;
		if (dec_open(&t->up.dec, msg + ra.hdr_len, len - ra.hdr_len, t->up.enc.rate,
			     t->sid) < 0)
			return fail(t, out, -EPROTO, "AAC sequence header refused by the decoder");
		t->up.dec.rate = acodec_dec_rate(t->up.dec.ac);
		return 0;
	}
	if (t->rtmp->id == CODEC_AAC && !t->up.dec.ac)
		return fail(t, out, -EPROTO, "AAC frame before its sequence header");
	if (t->rtmp->family == CODEC_FAMILY_FRAMED && !t->up.dec.ac) { /* for its first frame */
		t->up.dec.hint_rate = ra.rate;
		t->up.dec.hint_channels = ra.channels;
	}
	/* (ffmpeg flags its stereo G.711 mono: the metadata said two, rtmp_channels) */
	if ((ra.channels == 2 || t->o.rtmp_channels == 2) && t->rtmp->family == CODEC_FAMILY_G711) {
		/* Stereo G.711: both channels averaged into one, in the same law. */
		static _Thread_local uint8_t mono[TC_MAX_INPUT / 2];
		const uint8_t *p = msg + ra.hdr_len;
		size_t n = (len - ra.hdr_len) / 2;

		for (size_t i = 0; i < n; i++) {
			int16_t lr[2];

			g711_decode(t->rtmp, lr, p + 2 * i, 2);
			lr[0] = (int16_t)(((int)lr[0] + lr[1]) / 2);
			if (t->rtmp->id == CODEC_PCMA)
				g711_alaw_encode_buf(mono + i, lr, 1);
			else
				g711_ulaw_encode_buf(mono + i, lr, 1);
		}
		return dir_run(t, &t->up, mono, n, out);
	}
	if (ra.channels != 1 && t->rtmp->family != CODEC_FAMILY_FRAMED)
		return fail(t, out, -EPROTO, "stereo audio is not supported for this codec");
	return dir_run(t, &t->up, msg + ra.hdr_len, len - ra.hdr_len, out);
}

/* Remembers the last 20 ms of G.711 from the SIP side. */
static void remember_g711(struct transcoder *t, const uint8_t *p, size_t len)
{
	if (len >= G711_FRAME) {
		memcpy(t->last, p + len - G711_FRAME, G711_FRAME);
	} else if (len) {
		memmove(t->last, t->last + len, G711_FRAME - len);
		memcpy(t->last + G711_FRAME - len, p, len);
	}
	t->have_last = t->have_last || len > 0;
}

/* The clock of the samples toward RTMP: the RTMP codec's, or its encoder's for AAC etc. */
static unsigned rtmp_rate(const struct transcoder *t)
{
	if (t->rtmp_out->clock_rate)
		return t->rtmp_out->clock_rate;
	return t->down.enc.rate ? t->down.enc.rate : 48000;
}

int transcoder_sip_to_rtmp(struct transcoder *t, const uint8_t *payload, size_t len,
			   struct tc_out *out)
{
	int ret;

	if (!t || !out || (!payload && len))
		return -EINVAL;
	out_reset(out, rtmp_rate(t));
	ret = dir_run(t, &t->down, payload, len, out);
	if (ret == 0) {
		t->lost_run = 0;
		if (t->sip->family == CODEC_FAMILY_G711)
			remember_g711(t, payload, len);
	}
	return ret;
}

/* 20 ms of concealment for a G.711 SIP side: the last 20 ms, faded out over g711_plc_frames. */
static void g711_plc(struct transcoder *t, int16_t *pcm)
{
	unsigned k = t->lost_run, max = t->o.g711_plc_frames;
	float g0, g1;

	if (!t->have_last || k == 0 || k > max) {
		memset(pcm, 0, G711_FRAME * sizeof(*pcm));
		return;
	}
	g711_decode(t->sip, pcm, t->last, G711_FRAME);
	g0 = (float)(max - (k - 1)) / (float)max;
	g1 = (float)(max - k) / (float)max;
	for (unsigned i = 0; i < G711_FRAME; i++)
		pcm[i] = (int16_t)((float)pcm[i] * (g0 + (g1 - g0) * (float)i / G711_FRAME));
}

int transcoder_conceal(struct transcoder *t, const uint8_t *next, size_t next_len,
		       struct tc_out *out)
{
	struct tc_dir *d;
	int16_t pcm[MAX_PCM_FRAME];
	uint8_t *dst;

	if (!t || !out)
		return -EINVAL;
	d = &t->down;
	out_reset(out, rtmp_rate(t));
	if (t->lost_run < 1000000)
		t->lost_run++;
	if (d->path == PATH_PCM && d->dec.ac) {
		/* The library's concealment (Opus PLC); silence where it has none (G.722). */
		static _Thread_local int16_t lpcm[LIB_PCM_MAX];
		int n = acodec_conceal(d->dec.ac, next, next_len, lpcm, LIB_PCM_MAX);

		if (n <= 0) {
			n = (int)(d->dec.rate / 50);
			memset(lpcm, 0, (size_t)n * sizeof(lpcm[0]));
		}
		return pcm_push(t, d, lpcm, (unsigned)n, out);
	}
	if (d->path == PATH_PASS && t->sip->family == CODEC_FAMILY_FRAMED)
		return 0; /* Opus both sides: the player's decoder conceals the gap itself */
	if (d->path == PATH_PCM && d->dec.codec->family == CODEC_FAMILY_FRAMED)
		return 0; /* no decoder yet */
	if (d->path == PATH_PCM && d->dec.spx) {
		dec_speex(&d->dec, NULL, pcm); /* packet loss concealment */
		return pcm_push(t, d, pcm, d->dec.frame, out);
	}
	if (t->sip->family == CODEC_FAMILY_SPEEX) {
		/* Pass-through or layer add: a "no transmission" frame, 0+0000 then 1+000. */
		struct bitw bw = {0};

		dst = out_begin(out, 3);
		dst[0] = d->tag;
		bw.p = dst + 1;
		bw_put(&bw, 0x008, 9);
		out_commit(out, 1 + bw_finish(&bw), d->out->frame_samples);
		return 0;
	}
	g711_plc(t, pcm);
	if (d->path == PATH_PCM)
		return pcm_push(t, d, pcm, G711_FRAME, out);
	dst = out_begin(out, 1 + G711_FRAME);
	dst[0] = d->tag;
	if (t->rtmp_out->id == CODEC_PCMA)
		g711_alaw_encode_buf(dst + 1, pcm, G711_FRAME);
	else
		g711_ulaw_encode_buf(dst + 1, pcm, G711_FRAME);
	out_commit(out, 1 + G711_FRAME, G711_FRAME);
	return 0;
}

/* ---- benchmark ------------------------------------------------------------------------- */

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* A stored encoded frame (the RTMP header first on the RTMP side). */
struct bench_pkt {
	uint16_t len;
	uint8_t hdr; /* header bytes before the payload */
	uint8_t data[HDR_MAX + LIB_ENC_MAX];
};

/*
 * Encodes @frames frames of a 1 kHz + 300 Hz signal as @c (with the RTMP header when @rtmp) at
 * its native rate, a library codec at @in Hz as a publisher or peer would send it; *cfg gets a
 * sequence header message when the codec has one (AAC), else *cfg_len = 0.
 */
static int bench_make(const struct codec *c, bool rtmp, unsigned in, unsigned frames,
		      struct bench_pkt *pk, const struct transcode_opts *o, uint8_t *cfg,
		      size_t *cfg_len)
{
	struct enc_stage e = {0};
	static _Thread_local int16_t pcm[LIB_PCM_MAX];
	unsigned long s = 0;
	int ret = enc_init(&e, c, false, o, in);

	*cfg_len = 0;
	if (ret == 0 && rtmp && e.ac && c->id == CODEC_AAC) {
		size_t h = codec_rtmp_header(c, e.rate, 1, true, cfg);

		*cfg_len = h + acodec_enc_config(e.ac, cfg + h, 64);
	}
	for (unsigned f = 0, tries = 0; f < frames && ret == 0 && tries < 2 * frames + 64; tries++) {
		size_t h = rtmp ? codec_rtmp_header(c, e.rate, 1, false, pk[f].data) : 0, n;

		for (unsigned i = 0; i < e.frame; i++, s++) {
			double x = (double)s / e.rate;

			pcm[i] = (int16_t)(8000 * sin(6.283185307179586 * 1000 * x) +
					   3000 * sin(6.283185307179586 * 300 * x));
		}
		n = enc_frame(&e, pcm, pk[f].data + h);
		if (n == 0)
			continue; /* a library encoder's look-ahead */
		pk[f].hdr = (uint8_t)h;
		pk[f].len = (uint16_t)(h + n);
		f++;
	}
	enc_fini(&e);
	return ret;
}

/* The codec operations of one direction on one payload, nothing else. */
static void bench_codec_dir(struct transcoder *t, struct tc_dir *d, const uint8_t *p, size_t len)
{
	static _Thread_local int16_t pcm[LIB_PCM_MAX];
	uint8_t enc[LIB_ENC_MAX];
	unsigned n = 0;

	if (d->path != PATH_PCM)
		return;
	if (d->dec.codec->family == CODEC_FAMILY_FRAMED) {
		int r;

		if (!d->dec.ac && dec_open(&d->dec, NULL, 0, d->enc.rate, t->sid) < 0)
			return;
		r = acodec_decode(d->dec.ac, p, len, pcm, LIB_PCM_MAX);
		n = r > 0 ? (unsigned)r : 0;
		d->dec.rate = acodec_dec_rate(d->dec.ac);
		if (d->dec.rate != d->rs_in)
			(void)dir_resampler(t, d, d->dec.rate);
	} else if (d->dec.spx) {
		speex_bits_read_from(&d->dec.bits, (const char *)p, (int)len);
		dec_speex(&d->dec, &d->dec.bits, pcm);
		n = d->dec.frame;
	} else {
		n = len < G711_FRAME ? (unsigned)len : G711_FRAME;
		g711_decode(d->in, pcm, p, n);
	}
	/* Resample and encode what the input makes, through the FIFO as the transcoder would. */
	for (unsigned done = 0; done < n;) {
		unsigned k = n - done > LIB_CHUNK ? LIB_CHUNK : n - done;

		if (fifo_feed(d, pcm + done, k) < 0)
			return; /* never with the bench's whole frames */
		done += k;
		while (d->fifo_n >= d->enc.frame) {
			enc_frame(&d->enc, d->fifo, enc);
			d->fifo_n -= d->enc.frame;
			memmove(d->fifo, d->fifo + d->enc.frame, d->fifo_n * sizeof(d->fifo[0]));
		}
	}
}

int transcode_bench(enum codec_id rtmp_codec, enum codec_id sip_codec,
		    const struct transcode_opts *o, unsigned frames, struct tc_bench *res)
{
	struct transcode_opts def;
	struct transcoder *t = NULL, *c = NULL;
	struct bench_pkt *rp = NULL, *sp = NULL;
	struct tc_out *out = NULL;
	double codec = 0, full = 0;
	uint8_t cfg[HDR_MAX + 64], cfg2[HDR_MAX + 64];
	size_t cfg_len = 0, cfg2_len = 0;
	int ret = -ENOMEM;

	if (!res || frames == 0)
		return -EINVAL;
	if (o)
		def = *o;
	else
		transcode_opts_default(&def);
	/* A library codec's publisher at 44.1 kHz unless told: both transcoders know the rate
	 * (Nellymoser's decoder needs it) as they would from the stream's header. */
	if (!def.rtmp_rate && codec_by_id(rtmp_codec) &&
	    codec_by_id(rtmp_codec)->family == CODEC_FAMILY_FRAMED)
		def.rtmp_rate = lib_enc_rate(codec_by_id(rtmp_codec), 44100);
	o = &def;
	t = transcoder_new(o, rtmp_codec, sip_codec);
	c = transcoder_new(o, rtmp_codec, sip_codec);
	if (!t || !c) {
		ret = -EINVAL;
		goto out_free;
	}
	rp = calloc(frames, sizeof(*rp));
	sp = calloc(frames, sizeof(*sp));
	out = malloc(sizeof(*out));
	if (!rp || !sp || !out)
		goto out_free;
	ret = bench_make(t->rtmp, true, o->rtmp_rate, frames, rp, o, cfg,
			 &cfg_len);
	if (ret == 0)
		ret = bench_make(t->sip, false, t->sip->pcm_rate, frames, sp, o, cfg2, &cfg2_len);
	if (ret < 0)
		goto out_free;
	if (cfg_len) { /* the RTMP stream's sequence header, untimed */
		transcoder_rtmp_to_sip(t, cfg, cfg_len, out);
		transcoder_rtmp_to_sip(c, cfg, cfg_len, out);
	}
	/* Blocks of 50 frames, alternating which of the two runs first. */
	for (unsigned b = 0; b < frames; b += 50) {
		unsigned e = b + 50 < frames ? b + 50 : frames;

		for (int pass = 0; pass < 2; pass++) {
			bool codec_pass = (pass == 0) == ((b / 50) % 2 == 0);
			double t0 = cpu_us();

			for (unsigned i = b; i < e; i++) {
				if (codec_pass) {
					bench_codec_dir(c, &c->up, rp[i].data + rp[i].hdr,
							rp[i].len - rp[i].hdr);
					bench_codec_dir(c, &c->down, sp[i].data, sp[i].len);
				} else {
					transcoder_rtmp_to_sip(t, rp[i].data, rp[i].len, out);
					transcoder_sip_to_rtmp(t, sp[i].data, sp[i].len, out);
				}
			}
			if (codec_pass)
				codec += cpu_us() - t0;
			else
				full += cpu_us() - t0;
		}
	}
	res->frames = frames;
	res->codec_us = t->up.path == PATH_PCM || t->down.path == PATH_PCM ? codec / frames : 0;
	res->transcoder_us = full / frames;
	res->ratio = res->codec_us > 0 ? res->transcoder_us / res->codec_us : 0;
	ret = 0;
out_free:
	free(out);
	free(sp);
	free(rp);
	transcoder_destroy(&c);
	transcoder_destroy(&t);
	return ret;
}
