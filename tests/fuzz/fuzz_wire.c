/*
 * fuzz_wire.c - libFuzzer target for the signaler <-> worker message parser (header + TLV
 * body) and the MEDIA parser.
 *
 * Input layout: byte 0 = length of the header frame (taken modulo 16, so truncated and
 * oversize headers are reached), then the header frame, then the body frame. Each frame is
 * copied into its own exactly sized allocation so ASan sees any over-read.
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *  - a parsed control message re-encodes TLV by TLV (wire_put_raw) into the same body bytes,
 *    and the builder accepts it (what parses, builds; what builds, parses);
 *  - every getter on every TLV stays within the frame and agrees with the tag's type;
 *  - a parsed MEDIA message re-encodes into the same body bytes, and holds at most
 *    WIRE_MAX_PAYLOAD (8208) bytes of payload in at most WIRE_MEDIA_MAX_BODY (8278) of body: a MEDIA
 *    body that is longer by its own layout is refused (the seeds media_max and media_over sit on
 *    either side of the bound, media_batch_big holds three records at it);
 *  - an error always has a reason and a positive code, and can_reply only when the header is
 *    12 bytes with the magic.
 */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"

static void check_getters(const struct wire_msg *m)
{
	for (uint16_t i = 0; i < m->n_tlv; i++) {
		const struct wire_tlv *t = &m->tlv[i];
		struct wire_codec c;
		const uint8_t *p;
		const char *s;
		char buf[WIRE_MAX_STR + 1];
		uint64_t u64;
		uint32_t u32;
		uint16_t u16;
		uint8_t u8;
		size_t n;
		bool bl;

		switch (wire_tag_type(t->tag)) {
		case WIRE_TT_U8:
		case WIRE_TT_DIGIT:
			if (wire_get_u8(m, t->tag, &u8) != 0)
				abort();
			break;
		case WIRE_TT_U16:
			if (wire_get_u16(m, t->tag, &u16) != 0)
				abort();
			break;
		case WIRE_TT_U32:
			if (wire_get_u32(m, t->tag, &u32) != 0)
				abort();
			break;
		case WIRE_TT_U64:
			if (wire_get_u64(m, t->tag, &u64) != 0)
				abort();
			break;
		case WIRE_TT_BOOL:
			if (wire_get_bool(m, t->tag, &bl) != 0)
				abort();
			break;
		case WIRE_TT_STR:
		case WIRE_TT_ID:
			if (wire_get_str(m, t->tag, &s, &n) != 0 || n > WIRE_MAX_STR)
				abort();
			if (wire_get_cstr(m, t->tag, buf, sizeof(buf)) != 0 || strlen(buf) != n)
				abort();
			break;
		case WIRE_TT_BYTES:
			if (wire_get_bytes(m, t->tag, &p, &n) != 0 || n > WIRE_MAX_KEY)
				abort();
			break;
		case WIRE_TT_CODEC:
			for (size_t k = 0; k < wire_count(m, t->tag); k++)
				if (wire_get_codec(m, t->tag, k, &c) != 0 || c.pt > 127 ||
				    strlen(c.name) == 0)
					abort();
			break;
		default:
			/* Unknown tag: the generic getters must stay in bounds. */
			if (wire_get_bytes(m, t->tag, &p, &n) != 0)
				abort();
			(void)wire_get_u32(m, t->tag, &u32);
			break;
		}
	}
}

static void check_control(const uint8_t *hdr, size_t hlen, const uint8_t *body, size_t blen)
{
	static struct wire_msg m;
	static struct wire_builder b;
	struct wire_err e;
	int ret;

	memset(&e, 0, sizeof(e));
	ret = wire_parse(hdr, hlen, body, blen, &m, &e);
	if (ret < 0) {
		if (e.code <= 0 || ret != -e.code || !e.reason[0])
			abort();
		if (e.can_reply && (hlen != WIRE_HDR_LEN || hdr[0] != 'R' || hdr[1] != 'S'))
			abort();
		return;
	}
	if (m.n_tlv > WIRE_MAX_TLVS || blen > WIRE_MAX_BODY || m.h.type == WIRE_MEDIA)
		abort();
	check_getters(&m);
	for (uint8_t t = WIRE_CREATE_LEG; t <= WIRE_ADOPT_LEG; t++)
		(void)wire_check_reply(&m, t, &e);
	(void)wire_check_reply(&m, WIRE_HELLO, &e);

	/* Re-encode: same body bytes, accepted by the builder. */
	wire_builder_init(&b, m.h.type, m.h.req_id);
	for (uint16_t i = 0; i < m.n_tlv; i++)
		if (wire_put_raw(&b, m.tlv[i].tag, m.tlv[i].val, m.tlv[i].len) != 0)
			abort();
	if (wire_builder_finish(&b) != 0)
		abort();
	if (wire_builder_body_len(&b) != blen ||
	    (blen && memcmp(wire_builder_body(&b), body, blen)))
		abort();
	if (memcmp(b.hdr, hdr, 4) || memcmp(b.hdr + 6, hdr + 6, 6))
		abort();
}

static void check_media(const uint8_t *hdr, size_t hlen, const uint8_t *body, size_t blen)
{
	uint8_t h2[WIRE_HDR_LEN], b2[WIRE_MEDIA_MAX_BODY];
	struct wire_media md;
	struct wire_err e;
	size_t n = 0;

	if (wire_media_parse(hdr, hlen, body, blen, &md, &e) < 0) {
		if (e.code <= 0 || !e.reason[0])
			abort();
		/* a well-formed body at the bound never fails (the bound is not off by one) */
		if (hlen == WIRE_HDR_LEN && blen >= 6 && blen == (size_t)(hdr[10] << 8 | hdr[11]) &&
		    memcmp(hdr, "RS\1\7", 4) == 0 && body[0] >= 1 && body[0] <= WIRE_MAX_ID &&
		    blen == 1u + body[0] + 5 + WIRE_MAX_PAYLOAD &&
		    wire_id_valid((const char *)body + 1, body[0]))
			abort();
		return;
	}
	if (md.len > WIRE_MAX_PAYLOAD || blen > WIRE_MEDIA_MAX_BODY || md.payload < body ||
	    md.payload + md.len > body + blen)
		abort();
	if (wire_media_encode(h2, b2, sizeof(b2), &n, md.leg_id, md.ts, md.flags, md.payload,
			      md.len) != 0)
		abort();
	if (n != blen || memcmp(b2, body, blen) || memcmp(h2, hdr, 4) || memcmp(h2 + 10, hdr + 10, 2))
		abort();
}

/* MEDIA_BATCH: every frame lies inside the body; re-batching what parsed gives the same bytes. */
static void check_media_batch(const uint8_t *hdr, size_t hlen, const uint8_t *body, size_t blen)
{
	static struct wire_media_batch mb;
	struct wire_media md;
	struct wire_err e;
	size_t off = 0;
	int r;

	wire_media_batch_reset(&mb);
	while ((r = wire_media_batch_next(hdr, hlen, body, blen, &off, &md, &e)) > 0) {
		if (md.len > WIRE_MAX_PAYLOAD || (md.len && (md.payload < body ||
							     md.payload + md.len > body + blen)))
			abort();
		if (wire_media_batch_add(&mb, md.leg_id, md.ts, md.flags, md.payload, md.len) != 0)
			abort();
	}
	if (r < 0) {
		if (e.code <= 0 || !e.reason[0])
			abort();
		return;
	}
	if (mb.len != blen || (blen && memcmp(mb.body, body, blen)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_hdr h;
	struct wire_err e;
	uint8_t *hdr, *body;
	size_t hlen, blen;

	if (size < 1)
		return 0;
	hlen = data[0] % 16;
	if (hlen > size - 1)
		hlen = size - 1;
	blen = size - 1 - hlen;
	hdr = malloc(hlen ? hlen : 1);
	body = malloc(blen ? blen : 1);
	if (!hdr || !body)
		abort();
	memcpy(hdr, data + 1, hlen);
	memcpy(body, data + 1 + hlen, blen);

	(void)wire_header_parse(hdr, hlen, &h, &e);
	check_control(hdr, hlen, body, blen);
	check_media(hdr, hlen, body, blen);
	check_media_batch(hdr, hlen, body, blen);

	free(hdr);
	free(body);
	return 0;
}
