/*
 * buf.c - a growable byte buffer with a read offset.
 */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (b->off > 0 && b->off == b->len) {
		b->off = 0;
		b->len = 0;
	}
	if (b->cap - b->len >= n)
		return 0;
	/* Reclaim consumed space before growing. */
	if (b->off > 0 && b->cap - buf_used(b) >= n) {
		memmove(b->data, b->data + b->off, buf_used(b));
		b->len -= b->off;
		b->off = 0;
		return 0;
	}
	if (n > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	need = b->len + n;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	r = buf_reserve(b, n);
	if (r < 0)
		return r;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int buf_put_u8(struct buf *b, uint8_t v)
{
	return buf_append(b, &v, 1);
}

int buf_put_be16(struct buf *b, uint16_t v)
{
	uint8_t p[2];

	wr_be16(p, v);
	return buf_append(b, p, sizeof(p));
}

int buf_put_be24(struct buf *b, uint32_t v)
{
	uint8_t p[3];

	wr_be24(p, v);
	return buf_append(b, p, sizeof(p));
}

int buf_put_be32(struct buf *b, uint32_t v)
{
	uint8_t p[4];

	wr_be32(p, v);
	return buf_append(b, p, sizeof(p));
}

int buf_put_le32(struct buf *b, uint32_t v)
{
	uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	return buf_append(b, p, sizeof(p));
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len) {
		b->off = 0;
		b->len = 0;
	}
}

void buf_reset(struct buf *b)
{
	b->off = 0;
	b->len = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = 0;
	b->len = 0;
	b->cap = 0;
}
