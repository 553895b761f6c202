/*
 * transcode_speex.h - inside the transcoder (not an API): the Speex bitstream walk that finds
 * frames and layers without decoding, the bit writer that re-packs them, and the output arena
 * helpers they share with transcode.c.
 */
#ifndef RS_TRANSCODE_SPEEX_H
#define RS_TRANSCODE_SPEEX_H

#include "transcode.h"

#include <stddef.h>
#include <stdint.h>

/* MSB-first bit writer into a buffer the caller sized beforehand. */
struct bitw {
	uint8_t *p;
	size_t len;
	uint32_t acc;
	unsigned nacc; /* bits in acc, < 8 between calls */
};

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

enum bit_mode {
	BITS_KEEP,	/* the frame as sent, in-band requests and layers included */
	BITS_NB_ONLY,	/* the NB part only */
	BITS_ADD_LAYER, /* NB part + its layers, or an empty layer when it has none */
	BITS_WB,	/* NB part + first layer: exactly what one sb_decode() call reads */
};

void bw_put(struct bitw *w, uint32_t v, unsigned n);

/* Pads the last byte like speex_bits_insert_terminator(): a 0, then 1s. Returns bytes written. */
size_t bw_finish(struct bitw *w);

/* Walks the Speex payload @p: its frames into @w. The frame count, -EPROTO or -E2BIG. */
int spx_walk(const uint8_t *p, size_t len, struct spx_walk *w);

/*
 * Packs frames [first, first + count) of @w, re-padded, into @dst, which holds at least
 * (sum of the frames' bits in @mode + 7) / 8 bytes. Returns the bytes written.
 */
size_t pack_frames(uint8_t *dst, const uint8_t *p, size_t len, const struct spx_walk *w,
		   unsigned first, unsigned count, enum bit_mode mode);

/* Emits frames [first, first + count) of @w as one payload (tag byte first when non-zero). */
int emit_speex(struct tc_out *out, uint8_t tag, const uint8_t *p, size_t len,
	       const struct spx_walk *w, unsigned first, unsigned count, enum bit_mode mode,
	       unsigned samples);

/* Room for one frame of up to @need bytes, or NULL when the frame table or arena is full. */
static inline uint8_t *out_begin(struct tc_out *out, size_t need)
{
	if (out->n >= TC_MAX_FRAMES || need > TC_ARENA - out->used)
		return NULL;
	return out->arena + out->used;
}

static inline void out_commit(struct tc_out *out, size_t len, unsigned samples)
{
	struct tc_frame *f = &out->f[out->n++];

	f->off = (uint16_t)out->used;
	f->len = (uint16_t)len;
	f->samples = (uint16_t)samples;
	f->ms = (uint16_t)(out->rate ? (unsigned long)samples * 1000 / out->rate : 0);
	out->used += len;
}

#endif
