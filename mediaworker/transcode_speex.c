/*
 * transcode_speex.c - the Speex bitstream walk of the transcoder (transcode_speex.h).
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
 */
#include "transcode_speex.h"

#include <speex/speex.h>

#include <errno.h>

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

void bw_put(struct bitw *w, uint32_t v, unsigned n)
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
size_t bw_finish(struct bitw *w)
{
	if (w->nacc) {
		unsigned fill = 8 - w->nacc;

		bw_put(w, (1u << (fill - 1)) - 1, fill);
	}
	return w->len;
}

/* ---- Speex bitstream walk -------------------------------------------------------------- */



/* Bits an in-band request of id 0..15 carries after its id (speex_inband_handler()). */
static const uint8_t inband_bits[16] = {1, 1, 4, 4, 4, 4, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64};

int spx_walk(const uint8_t *p, size_t len, struct spx_walk *w)
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
size_t pack_frames(uint8_t *dst, const uint8_t *p, size_t len, const struct spx_walk *w,
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
int emit_speex(struct tc_out *out, uint8_t tag, const uint8_t *p, size_t len,
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

