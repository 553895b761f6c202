/*
 * wire_video.c - RTMP video messages cut into MEDIA pieces and put together again. See
 * wire_video.h.
 */
#include "wire_video.h"

#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int wire_video_split(const uint8_t *msg, size_t len, wire_video_piece_fn fn, void *arg)
{
	uint8_t piece[WIRE_MAX_PAYLOAD];

	if (!len)
		return -EINVAL;
	if (len > WIRE_VIDEO_MAX_MESSAGE)
		return -E2BIG;
	for (size_t off = 0; off < len;) {
		size_t n = len - off < WIRE_VIDEO_PIECE_MAX ? len - off : WIRE_VIDEO_PIECE_MAX;
		int r;

		wr_be32(piece, (uint32_t)off);
		memcpy(piece + WIRE_VIDEO_PIECE_HDR, msg + off, n);
		off += n;
		r = fn(arg, piece, WIRE_VIDEO_PIECE_HDR + n, off < len ? WIRE_MEDIA_F_MORE : 0);
		if (r < 0)
			return r;
	}
	return 0;
}

static int drop(struct wire_video_asm *a, int err)
{
	if (a->open)
		a->dropped++;
	a->open = false;
	a->len = 0;
	return err;
}

int wire_video_asm_add(struct wire_video_asm *a, uint32_t ts, uint8_t flags, const uint8_t *payload,
		       size_t len, const uint8_t **msg, size_t *msglen)
{
	const uint8_t *data = payload + WIRE_VIDEO_PIECE_HDR;
	size_t n = len - WIRE_VIDEO_PIECE_HDR;
	bool more = (flags & WIRE_MEDIA_F_MORE) != 0;
	uint32_t off;

	if (len < WIRE_VIDEO_PIECE_HDR)
		return drop(a, -EBADMSG);
	off = rd_be32(payload);
	if (off == 0) {
		if (a->open) /* the rest of the last one never came */
			drop(a, 0);
		if (!more) { /* whole: no copy */
			*msg = data;
			*msglen = n;
			return n ? 1 : -EBADMSG;
		}
		a->open = true;
		a->ts = ts;
		a->len = 0;
	} else if (!a->open || off != a->len || ts != a->ts) {
		return drop(a, -EBADMSG);
	}
	if (n > WIRE_VIDEO_MAX_MESSAGE - a->len)
		return drop(a, -E2BIG);
	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap : 64 * 1024;
		uint8_t *b;

		while (cap < a->len + n)
			cap *= 2;
		if (cap > WIRE_VIDEO_MAX_MESSAGE)
			cap = WIRE_VIDEO_MAX_MESSAGE;
		b = realloc(a->buf, cap);
		if (!b)
			return drop(a, -ENOMEM);
		a->buf = b;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, data, n);
	a->len += n;
	if (more)
		return 0;
	a->open = false;
	*msg = a->buf;
	*msglen = a->len;
	a->len = 0;
	return 1;
}

void wire_video_asm_free(struct wire_video_asm *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}
