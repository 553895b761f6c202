/*
 * transcode.c - per-leg audio conversion RTMP <-> SIP. See transcode.h for the paths.
 *
 * Each direction is a struct tc_dir with one of four paths:
 *
 *   PASS   payload ──────────────────────────────────────────▶ payload (re-cut / split)
 *   XLAT   G.711 ──── 256-entry table ─────────────────────────▶ G.711 (other law)
 *   LAYER  Speex ──── walk bits, copy NB part ±4-bit WB layer ──▶ Speex
 *   PCM    payload ─▶ decoder ─▶ [resampler] ─▶ FIFO ─▶ encoder ▶ frames of 20 ms
 *
 * The Speex bitstream walk (spx_walk) follows libspeex's decoder (nb_celp.c nb_decode(),
 * sb_celp.c sb_decode(), speex_callbacks.c): a wideband frame is
 *
 *   [0][4-bit NB submode m][NB bits...] [1][3-bit WB submode][WB bits...] ([1][3][UWB bits...])
 *
 * with speex_mode_query(SPEEX_SUBMODE_BITS_PER_FRAME) giving each part's total size, header bits
 * included (NB: 5, 43, 119, 160, 220, 300, 364, 492, 79 for m = 0..8; WB: 4, 36, 112, 192, 352
 * for 0..4, -1 for 5..7). Before a NB header the decoder accepts NB "submodes" 15 (terminator:
 * the packet ends), 14 (in-band request: 4-bit id, then 1/1/4x6/8x2/16x2/32x2/64x2 bits by id)
 * and 13 (user in-band: 4-bit size s, then 5 + 8s bits); 9..12 are invalid. libspeex pads the
 * last byte with a 0 then 1s, so 5 or more padding bits read as a terminator and fewer than 5 end
 * the walk. We are stricter than the decoder in two places, both impossible for a real encoder:
 * a high-band layer with no NB frame before it, and more than two high-band layers per frame,
 * are -EPROTO.
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

#include "g711.h"
#include "log.h"

#include <speex/speex.h>
#include <speex/speex_resampler.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define G711_FRAME    160 /* bytes = samples in 20 ms at 8 kHz */
#define MAX_PCM_FRAME 320 /* samples in 20 ms at 16 kHz */
#define FIFO_CAP      1024
/* Largest encoder output: G.711 160 bytes, Speex <= 106 (NB 492 + WB 352 bits). */
#define MAX_ENC_BYTES 160

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
};

/* Encoder stage: PCM frame -> payload. */
struct enc_stage {
	const struct codec *codec;
	unsigned rate;
	unsigned frame;
	void *spx; /* Speex encoder state, NULL for G.711 */
	SpeexBits bits;
	bool add_layer; /* narrowband core toward a WB stream: append an empty high-band layer */
};

struct tc_dir {
	enum tc_path path;
	const struct codec *in;
	const struct codec *out;
	uint8_t tag;	      /* FLV tag byte prefixed to each output (toward RTMP), 0 toward SIP */
	bool nb_core;	      /* the Speex stage runs at 8 kHz on the narrowband layer */
	struct dec_stage dec; /* PATH_PCM only */
	SpeexResamplerState *rs; /* PATH_PCM when dec.rate != enc.rate */
	struct enc_stage enc;	 /* PATH_PCM only */
	int16_t fifo[FIFO_CAP];	 /* PCM at enc.rate waiting for a whole frame */
	unsigned fifo_n;
	uint8_t rem[G711_FRAME]; /* G.711 toward SIP: bytes short of a 20 ms payload */
	unsigned rem_n;
};

struct transcoder {
	struct transcode_opts o;
	char sid[48];
	const struct codec *rtmp;
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
	 * (transcoder_track_rtmp()); its output is dropped. */
	struct dec_stage track;
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
}

/* Room for one frame of up to @need bytes, or NULL when the frame table or arena is full. */
static uint8_t *out_begin(struct tc_out *out, size_t need)
{
	if (out->n >= TC_MAX_FRAMES || need > TC_ARENA - out->used)
		return NULL;
	return out->arena + out->used;
}

static void out_commit(struct tc_out *out, size_t len, unsigned samples)
{
	struct tc_frame *f = &out->f[out->n++];

	f->off = (uint16_t)out->used;
	f->len = (uint16_t)len;
	f->samples = (uint16_t)samples;
	f->ms = (uint16_t)(out->rate ? (unsigned long)samples * 1000 / out->rate : 0);
	out->used += len;
}

static int fail(struct transcoder *t, struct tc_out *out, int err, const char *why)
{
	t->err = why;
	if (out)
		out_reset(out, out->rate);
	log_debug(t->sid, "transcoder: %s", why);
	return err;
}

/* ---- bits ------------------------------------------------------------------------------ */

/* @n (1..24) bits of @p at bit @pos, MSB first; the caller checked pos + n <= len * 8. */
static uint32_t bits_get(const uint8_t *p, size_t len, size_t pos, unsigned n)
{
	size_t byte = pos >> 3;
	uint32_t w = 0;

	for (unsigned i = 0; i < 4; i++)
		w = w << 8 | (byte + i < len ? p[byte + i] : 0);
	return (w << (pos & 7)) >> (32 - n);
}

/* MSB-first bit writer into a buffer the caller sized beforehand. */
struct bitw {
	uint8_t *p;
	size_t len;
	uint32_t acc;
	unsigned nacc; /* bits in acc, < 8 between calls */
};

static void bw_put(struct bitw *w, uint32_t v, unsigned n)
{
	w->acc = w->acc << n | (v & ((1u << n) - 1));
	w->nacc += n;
	while (w->nacc >= 8) {
		w->nacc -= 8;
		w->p[w->len++] = (uint8_t)(w->acc >> w->nacc);
	}
	w->acc &= (1u << w->nacc) - 1;
}

static void bw_copy(struct bitw *w, const uint8_t *p, size_t len, size_t from, size_t to)
{
	while (from < to) {
		unsigned k = to - from > 24 ? 24 : (unsigned)(to - from);

		bw_put(w, bits_get(p, len, from, k), k);
		from += k;
	}
}

/* Pads the last byte like speex_bits_insert_terminator(): a 0, then 1s. Returns bytes written. */
static size_t bw_finish(struct bitw *w)
{
	if (w->nacc) {
		unsigned fill = 8 - w->nacc;

		bw_put(w, (1u << (fill - 1)) - 1, fill);
	}
	return w->len;
}

/* ---- Speex bitstream walk -------------------------------------------------------------- */

struct spx_frame {
	uint32_t pre;	 /* first bit of the frame incl. in-band requests before it */
	uint32_t hdr;	 /* its NB header (wideband bit 0 + 4-bit submode) */
	uint32_t nb_end; /* end of the NB part = start of the high-band layers */
	uint32_t l1_end; /* end of the first high-band layer (nb_end when there is none) */
	uint32_t end;	 /* end of the frame incl. its high-band layers */
	uint8_t layers;	 /* high-band layers (0..2) */
};

struct spx_walk {
	unsigned n;
	struct spx_frame f[TC_MAX_FRAMES];
};

/* Bits an in-band request of id 0..15 carries after its id (speex_inband_handler()). */
static const uint8_t inband_bits[16] = {1, 1, 4, 4, 4, 4, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64};

static int spx_walk(const uint8_t *p, size_t len, struct spx_walk *w)
{
	size_t total, pos = 0;

	w->n = 0;
	if (len > TC_MAX_INPUT)
		return -E2BIG;
	total = len * 8;
	for (;;) {
		struct spx_frame *f;
		size_t pre = pos, hdr, nb_end, l1_end;
		unsigned m, layers = 0;
		int nbits;

		/* Find the next NB frame header, skipping in-band requests. */
		for (;;) {
			size_t left = total - pos;

			if (left < 5)
				return (int)w->n;
			if (bits_get(p, len, pos, 1))
				return -EPROTO; /* high-band layer with no NB frame before it */
			m = bits_get(p, len, pos + 1, 4);
			if (m == 15)
				return (int)w->n; /* terminator */
			if (m == 14 || m == 13) {
				size_t adv;

				if (left < 9)
					return -EPROTO;
				if (m == 14)
					adv = 9 + inband_bits[bits_get(p, len, pos + 5, 4)];
				else
					adv = 9 + 5 + 8 * (size_t)bits_get(p, len, pos + 5, 4);
				if (left < adv)
					return -EPROTO;
				pos += adv;
				continue;
			}
			if (m > 8)
				return -EPROTO;
			break;
		}
		nbits = (int)m;
		if (speex_mode_query(&speex_nb_mode, SPEEX_SUBMODE_BITS_PER_FRAME, &nbits) != 0 ||
		    nbits < 5 || (size_t)nbits > total - pos)
			return -EPROTO; /* truncated frame */
		hdr = pos;
		pos += (size_t)nbits;
		nb_end = pos;
		l1_end = pos;
		/* High-band layers: a 1 bit, a 3-bit submode, the rest of the layer. */
		while (total - pos >= 4 && bits_get(p, len, pos, 1)) {
			int wbits = (int)bits_get(p, len, pos + 1, 3);

			if (layers == 2)
				return -EPROTO;
			if (speex_mode_query(&speex_wb_mode, SPEEX_SUBMODE_BITS_PER_FRAME,
					     &wbits) != 0 ||
			    wbits < 4 || (size_t)wbits > total - pos)
				return -EPROTO;
			pos += (size_t)wbits;
			if (++layers == 1)
				l1_end = pos;
		}
		if (w->n == TC_MAX_FRAMES)
			return -E2BIG;
		f = &w->f[w->n++];
		f->pre = (uint32_t)pre;
		f->hdr = (uint32_t)hdr;
		f->end = (uint32_t)pos;
		f->nb_end = (uint32_t)nb_end;
		f->l1_end = (uint32_t)l1_end;
		f->layers = (uint8_t)layers;
	}
}

int transcode_speex_frames(const uint8_t *payload, size_t len)
{
	struct spx_walk w;

	if (!payload && len)
		return -EPROTO;
	return spx_walk(payload, len, &w);
}

enum bit_mode {
	BITS_KEEP,	/* the frame as sent, in-band requests and layers included */
	BITS_NB_ONLY,	/* the NB part only */
	BITS_ADD_LAYER, /* NB part + its layers, or an empty layer when it has none */
	BITS_WB,	/* NB part + first layer: exactly what one sb_decode() call reads */
};

static size_t frame_bits(const struct spx_frame *f, enum bit_mode mode)
{
	switch (mode) {
	case BITS_KEEP:
		return f->end - f->pre;
	case BITS_NB_ONLY:
		return f->nb_end - f->hdr;
	case BITS_ADD_LAYER:
		return f->end - f->hdr + (f->layers ? 0 : 4);
	case BITS_WB:
		return f->l1_end - f->hdr;
	}
	return 0;
}

/*
 * Packs frames [first, first + count) of @w, re-padded, into @dst, which holds at least
 * (sum of frame_bits() + 7) / 8 bytes. Returns the bytes written.
 */
static size_t pack_frames(uint8_t *dst, const uint8_t *p, size_t len, const struct spx_walk *w,
			  unsigned first, unsigned count, enum bit_mode mode)
{
	struct bitw bw = {.p = dst};

	for (unsigned i = first; i < first + count; i++) {
		const struct spx_frame *f = &w->f[i];

		switch (mode) {
		case BITS_KEEP:
			bw_copy(&bw, p, len, f->pre, f->end);
			break;
		case BITS_NB_ONLY:
			bw_copy(&bw, p, len, f->hdr, f->nb_end);
			break;
		case BITS_ADD_LAYER:
			bw_copy(&bw, p, len, f->hdr, f->end);
			if (!f->layers)
				bw_put(&bw, 0x8, 4); /* wideband bit 1, high-band submode 0 */
			break;
		case BITS_WB:
			bw_copy(&bw, p, len, f->hdr, f->l1_end);
			break;
		}
	}
	return bw_finish(&bw);
}

/* Emits frames [first, first + count) of @w as one payload (tag byte first when non-zero). */
static int emit_speex(struct tc_out *out, uint8_t tag, const uint8_t *p, size_t len,
		      const struct spx_walk *w, unsigned first, unsigned count, enum bit_mode mode,
		      unsigned samples)
{
	size_t bits = 0, bytes, tagn = tag ? 1 : 0;
	uint8_t *dst;

	for (unsigned i = first; i < first + count; i++)
		bits += frame_bits(&w->f[i], mode);
	bytes = tagn + (bits + 7) / 8;
	dst = out_begin(out, bytes);
	if (!dst)
		return -E2BIG;
	if (tag)
		dst[0] = tag;
	pack_frames(dst + tagn, p, len, w, first, count, mode);
	out_commit(out, bytes, samples);
	return 0;
}

/* ---- codec stages ---------------------------------------------------------------------- */

static void dec_fini(struct dec_stage *d)
{
	if (d->spx) {
		speex_decoder_destroy(d->spx);
		speex_bits_destroy(&d->bits);
		d->spx = NULL;
	}
}

/* @nb_core: decode a WB stream's narrowband layer at 8 kHz. */
static int dec_init(struct dec_stage *d, const struct codec *c, bool nb_core,
		    const struct transcode_opts *o)
{
	spx_int32_t v;

	d->codec = c;
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
	if (e->spx) {
		speex_encoder_destroy(e->spx);
		speex_bits_destroy(&e->bits);
		e->spx = NULL;
	}
}

/* @nb_core: produce a WB stream from a narrowband encoder plus an empty high-band layer. */
static int enc_init(struct enc_stage *e, const struct codec *c, bool nb_core,
		    const struct transcode_opts *o)
{
	spx_int32_t v;

	e->codec = c;
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

/* Encodes e->frame samples of @pcm into @dst (>= MAX_ENC_BYTES); returns the bytes written. */
static size_t enc_frame(struct enc_stage *e, int16_t *pcm, uint8_t *dst)
{
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
}

static int dir_init(struct transcoder *t, struct tc_dir *d, const struct codec *in,
		    const struct codec *out, bool toward_rtmp)
{
	int ret, err = 0;

	d->in = in;
	d->out = out;
	d->tag = toward_rtmp ? out->rtmp_audio_byte : 0;
	if (in == out) {
		d->path = PATH_PASS;
		return 0;
	}
	if (in->family == CODEC_FAMILY_G711 && out->family == CODEC_FAMILY_G711) {
		d->path = PATH_XLAT;
		return 0;
	}
	if (in->family == CODEC_FAMILY_SPEEX && out->family == CODEC_FAMILY_SPEEX &&
	    t->o.narrowband_core) {
		d->path = PATH_LAYER;
		return 0;
	}
	d->path = PATH_PCM;
	/* Here a WB stream always meets an 8 kHz side (WB <-> NB took PATH_LAYER). */
	d->nb_core =
	    t->o.narrowband_core && (in->id == CODEC_SPEEX_WB || out->id == CODEC_SPEEX_WB);
	ret = dec_init(&d->dec, in, d->nb_core, &t->o);
	if (ret == 0)
		ret = enc_init(&d->enc, out, d->nb_core, &t->o);
	if (ret == 0 && d->dec.rate != d->enc.rate) {
		d->rs =
		    speex_resampler_init(1, d->dec.rate, d->enc.rate, t->o.resample_quality, &err);
		if (!d->rs)
			ret = -ENOMEM;
	}
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
	if (d == &t->up && t->track.spx) {
		int16_t pcm[MAX_PCM_FRAME];

		for (unsigned i = 0; i < w.n; i++)
			(void)dec_frame(&t->track, p, len, &w, i, pcm); /* state only */
	}
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

/* Feeds @n PCM samples at dec.rate through the resampler into the FIFO, encodes whole frames. */
static int pcm_push(struct transcoder *t, struct tc_dir *d, const int16_t *pcm, unsigned n,
		    struct tc_out *out)
{
	int16_t rsbuf[2 * MAX_PCM_FRAME + 32];
	const int16_t *src = pcm;
	unsigned m = n, off = 0;

	if (d->rs) {
		spx_uint32_t il = n, ol = ARRAY_SIZE(rsbuf);

		speex_resampler_process_int(d->rs, 0, pcm, &il, rsbuf, &ol);
		src = rsbuf;
		m = ol;
	}
	if (m > FIFO_CAP - d->fifo_n)
		return fail(t, out, -E2BIG, "PCM FIFO overflow");
	memcpy(d->fifo + d->fifo_n, src, m * sizeof(*src));
	d->fifo_n += m;
	while (d->fifo_n - off >= d->enc.frame) {
		size_t tagn = d->tag ? 1 : 0;
		uint8_t *dst = out_begin(out, tagn + MAX_ENC_BYTES);

		if (!dst)
			return fail(t, out, -E2BIG, "too many output frames");
		if (tagn)
			dst[0] = d->tag;
		out_commit(out, tagn + enc_frame(&d->enc, d->fifo + off, dst + tagn),
			   d->out->frame_samples);
		off += d->enc.frame;
	}
	memmove(d->fifo, d->fifo + off, (d->fifo_n - off) * sizeof(d->fifo[0]));
	d->fifo_n -= off;
	return 0;
}

static int run_pcm(struct transcoder *t, struct tc_dir *d, const uint8_t *p, size_t len,
		   struct tc_out *out)
{
	int16_t pcm[MAX_PCM_FRAME];
	struct spx_walk w;
	unsigned long in_samples, expect;
	int n = 0, ret = 0;

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
	free(t);
	*tp = NULL;
}

struct transcoder *transcoder_new(const struct transcode_opts *o, enum codec_id rtmp_codec,
				  enum codec_id sip_codec)
{
	const struct codec *rc = codec_by_id(rtmp_codec), *sc = codec_by_id(sip_codec);
	const char *sid = o && o->sid ? o->sid : "-";
	struct transcoder *t;

	if (!codec_rtmp_capable(rc) || rc->family == CODEC_FAMILY_FRAMED) {
		log_warn(sid, "transcoder: codec id %d cannot be the RTMP side", (int)rtmp_codec);
		return NULL;
	}
	if (!sc || sc->family == CODEC_FAMILY_EVENT || sc->family == CODEC_FAMILY_FRAMED) {
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
	t->sip = sc;
	t->err = "";
	if (dir_init(t, &t->up, rc, sc, false) < 0 || dir_init(t, &t->down, sc, rc, true) < 0) {
		log_error(sid, "transcoder: cannot create codec states for %s <-> %s", rc->label,
			  sc->label);
		transcoder_destroy(&t);
		return NULL;
	}
	memset(t->last, sc->id == CODEC_PCMA ? 0xD5 : 0xFF, sizeof(t->last)); /* silence */
	snprintf(t->desc, sizeof(t->desc), "%s <-> %s: %s%s%s", rc->label, sc->label,
		 path_names[t->up.path], t->up.rs ? " with resampling" : "",
		 t->up.nb_core ? " (narrowband core)" : "");
	log_debug(t->sid, "transcoder: %s", t->desc);
	return t;
}

int transcoder_track_rtmp(struct transcoder *t, bool on)
{
	if (!t)
		return -EINVAL;
	if (!on || t->rtmp->family != CODEC_FAMILY_SPEEX || t->up.path == PATH_PCM) {
		dec_fini(&t->track);
		return 0;
	}
	if (t->track.spx)
		return 0;
	/* The decoder a PCM path from this stream runs (dir_init(): nb_core follows the option). */
	return dec_init(&t->track, t->rtmp, t->o.narrowband_core, &t->o);
}

/* The decoder that has followed the RTMP stream, or NULL. */
static struct dec_stage *rtmp_decoder(struct transcoder *t)
{
	if (t->up.path == PATH_PCM && t->up.dec.spx)
		return &t->up.dec;
	return t->track.spx ? &t->track : NULL;
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

	if (!from || !to || from->rtmp != to->rtmp)
		return;
	da = rtmp_decoder(from);
	db = rtmp_decoder(to);
	if (da && db && da->frame == db->frame) {
		void *spx = da->spx;
		SpeexBits bits = da->bits;

		da->spx = db->spx;
		da->bits = db->bits;
		db->spx = spx;
		db->bits = bits;
		dec = true;
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
	if (ra.channels != 1)
		return fail(t, out, -EPROTO, "stereo audio is not supported on this path");
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

int transcoder_sip_to_rtmp(struct transcoder *t, const uint8_t *payload, size_t len,
			   struct tc_out *out)
{
	int ret;

	if (!t || !out || (!payload && len))
		return -EINVAL;
	out_reset(out, t->rtmp->clock_rate);
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

int transcoder_conceal(struct transcoder *t, struct tc_out *out)
{
	struct tc_dir *d;
	int16_t pcm[MAX_PCM_FRAME];
	uint8_t *dst;

	if (!t || !out)
		return -EINVAL;
	d = &t->down;
	out_reset(out, t->rtmp->clock_rate);
	if (t->lost_run < 1000000)
		t->lost_run++;
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
	if (t->rtmp->id == CODEC_PCMA)
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

/* A stored encoded frame. */
struct bench_pkt {
	uint16_t len;
	uint8_t data[1 + MAX_ENC_BYTES];
};

/* Encodes @frames 20 ms frames of a 1 kHz + 300 Hz signal as @c at its native rate. */
static int bench_make(const struct codec *c, uint8_t tag, unsigned frames, struct bench_pkt *pk,
		      const struct transcode_opts *o)
{
	struct enc_stage e = {0};
	int16_t pcm[MAX_PCM_FRAME];
	unsigned long s = 0;
	int ret = enc_init(&e, c, false, o);

	for (unsigned f = 0; f < frames && ret == 0; f++) {
		size_t tagn = tag ? 1 : 0;

		for (unsigned i = 0; i < e.frame; i++, s++) {
			double x = (double)s / e.rate;

			pcm[i] = (int16_t)(8000 * sin(6.283185307179586 * 1000 * x) +
					   3000 * sin(6.283185307179586 * 300 * x));
		}
		pk[f].data[0] = tag;
		pk[f].len = (uint16_t)(tagn + enc_frame(&e, pcm, pk[f].data + tagn));
	}
	enc_fini(&e);
	return ret;
}

/* The codec operations of one direction on one 20 ms payload, nothing else. */
static void bench_codec_dir(struct tc_dir *d, const uint8_t *p, size_t len)
{
	int16_t pcm[MAX_PCM_FRAME], rsbuf[2 * MAX_PCM_FRAME + 32];
	uint8_t enc[MAX_ENC_BYTES];
	int16_t *src = pcm;
	spx_uint32_t il, ol = ARRAY_SIZE(rsbuf);

	if (d->path != PATH_PCM)
		return;
	if (d->dec.spx) {
		speex_bits_read_from(&d->dec.bits, (const char *)p, (int)len);
		dec_speex(&d->dec, &d->dec.bits, pcm);
		il = d->dec.frame;
	} else {
		g711_decode(d->in, pcm, p, len < G711_FRAME ? len : G711_FRAME);
		il = G711_FRAME;
	}
	if (d->rs) {
		speex_resampler_process_int(d->rs, 0, pcm, &il, rsbuf, &ol);
		src = rsbuf;
		if (ol < d->enc.frame)
			memset(rsbuf + ol, 0, (d->enc.frame - ol) * sizeof(rsbuf[0]));
	}
	enc_frame(&d->enc, src, enc);
}

int transcode_bench(enum codec_id rtmp_codec, enum codec_id sip_codec,
		    const struct transcode_opts *o, unsigned frames, struct tc_bench *res)
{
	struct transcode_opts def;
	struct transcoder *t = NULL, *c = NULL;
	struct bench_pkt *rp = NULL, *sp = NULL;
	struct tc_out *out = NULL;
	double codec = 0, full = 0;
	int ret = -ENOMEM;

	if (!res || frames == 0)
		return -EINVAL;
	if (!o) {
		transcode_opts_default(&def);
		o = &def;
	}
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
	ret = bench_make(t->rtmp, t->rtmp->rtmp_audio_byte, frames, rp, o);
	if (ret == 0)
		ret = bench_make(t->sip, 0, frames, sp, o);
	if (ret < 0)
		goto out_free;
	/* Blocks of 50 frames, alternating which of the two runs first. */
	for (unsigned b = 0; b < frames; b += 50) {
		unsigned e = b + 50 < frames ? b + 50 : frames;

		for (int pass = 0; pass < 2; pass++) {
			bool codec_pass = (pass == 0) == ((b / 50) % 2 == 0);
			double t0 = cpu_us();

			for (unsigned i = b; i < e; i++) {
				if (codec_pass) {
					bench_codec_dir(&c->up, rp[i].data + 1, rp[i].len - 1u);
					bench_codec_dir(&c->down, sp[i].data, sp[i].len);
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
