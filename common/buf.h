/*
 * buf.h - a growable byte buffer with a read offset, used for socket queues and encoders.
 *
 * A plain value type: zero-initialise it ("struct buf b = {0};"), append, consume from the front,
 * buf_free() when done. Appends fail with -ENOMEM instead of aborting.
 */
#ifndef RS_BUF_H
#define RS_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t off; /* first unread byte */
	size_t len; /* end of the written bytes */
	size_t cap;
};

/* Bytes written and not yet consumed. */
static inline size_t buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* First unconsumed byte. */
static inline const uint8_t *buf_head(const struct buf *b)
{
	return b->data ? b->data + b->off : NULL;
}

/* Makes room for @n more bytes; returns 0 or -ENOMEM. */
int buf_reserve(struct buf *b, size_t n);

/* Appends @n bytes; returns 0 or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Appends integers in network byte order; return 0 or -ENOMEM. */
int buf_put_u8(struct buf *b, uint8_t v);
int buf_put_be16(struct buf *b, uint16_t v);
int buf_put_be24(struct buf *b, uint32_t v);
int buf_put_be32(struct buf *b, uint32_t v);
int buf_put_le32(struct buf *b, uint32_t v);

/* Drops @n bytes from the front (n <= buf_used()). */
void buf_consume(struct buf *b, size_t n);

/* Forgets all contents, keeps the memory. */
void buf_reset(struct buf *b);

/* Frees the memory; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);

/* Big-endian readers for already bounds-checked input. */
static inline uint32_t rd_be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t rd_be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t rd_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint32_t rd_le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline void wr_be16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wr_be24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 16);
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)v;
}

static inline void wr_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif
