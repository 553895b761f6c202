/*
 * g711.h - ITU-T G.711 µ-law and A-law: encoding 16-bit linear PCM, decoding to it, and converting
 * between the two laws directly.
 *
 * Encoding follows the classic segment arithmetic (the reference behaviour of the public Sun
 * g711.c: µ-law on 14 magnitude bits with bias 33, A-law on 13 bits with even-bit inversion 0x55);
 * decoding and law-to-law conversion are 256-entry tables. Conversion is decode-then-encode, so
 * µ-law -> A-law -> µ-law is not always the identity (µ-law is finer near zero). All functions are
 * pure and thread-safe; none allocates.
 */
#ifndef RS_G711_H
#define RS_G711_H

#include <stddef.h>
#include <stdint.h>

/* Encodes one linear sample to µ-law / A-law. */
uint8_t g711_ulaw_encode(int16_t s);
uint8_t g711_alaw_encode(int16_t s);

/* Decodes one µ-law / A-law byte to a linear sample. */
int16_t g711_ulaw_decode(uint8_t u);
int16_t g711_alaw_decode(uint8_t a);

/* Encodes @n samples from @src into @n bytes at @dst (may not overlap). */
void g711_ulaw_encode_buf(uint8_t *dst, const int16_t *src, size_t n);
void g711_alaw_encode_buf(uint8_t *dst, const int16_t *src, size_t n);

/* Decodes @n bytes from @src into @n samples at @dst (may not overlap). */
void g711_ulaw_decode_buf(int16_t *dst, const uint8_t *src, size_t n);
void g711_alaw_decode_buf(int16_t *dst, const uint8_t *src, size_t n);

/* Converts @n bytes between the laws through one table lookup each; @dst may equal @src. */
void g711_ulaw_to_alaw_buf(uint8_t *dst, const uint8_t *src, size_t n);
void g711_alaw_to_ulaw_buf(uint8_t *dst, const uint8_t *src, size_t n);

#endif
