/*
 * wav_out.h - writing a 16-bit mono PCM WAV file as audio arrives (header only, for the test
 * tools; wavcheck reads what this writes).
 *
 *   struct wav_out w;
 *   wav_out_open(&w, "out.wav", 48000);   a header with empty sizes
 *   wav_out_write(&w, pcm, n);            any number of times
 *   wav_out_close(&w);                    the sizes written into the header, the file closed
 *
 * Layout (little-endian): "RIFF" size "WAVE", "fmt " 16: format 1 (PCM), 1 channel, rate,
 * rate * 2 bytes/s, block 2, 16 bits; "data" size, then the samples. A file left unclosed (a
 * crash) keeps zero sizes: wavcheck reads its data chunk to the end of the file.
 *
 * Each function returns 0 or a negative errno; they never print. The file stops growing at
 * WAV_OUT_MAX_BYTES of samples (a write past it returns -EFBIG, what came before is kept).
 */
#ifndef RS_WAV_OUT_H
#define RS_WAV_OUT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define WAV_OUT_HEADER	  44
#define WAV_OUT_MAX_BYTES (1u << 30) /* a test records minutes, never a gigabyte */

struct wav_out {
	FILE *f;
	unsigned rate;
	uint32_t bytes; /* sample bytes written */
};

static inline void wav_out_le(uint8_t *p, uint32_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* (Re)writes the header of @w for its current size; leaves the file position at its end. */
static inline int wav_out_header(struct wav_out *w)
{
	uint8_t h[WAV_OUT_HEADER];

	memcpy(h, "RIFF", 4);
	wav_out_le(h + 4, 36 + w->bytes, 4);
	memcpy(h + 8, "WAVEfmt ", 8);
	wav_out_le(h + 16, 16, 4);
	wav_out_le(h + 20, 1, 2); /* PCM */
	wav_out_le(h + 22, 1, 2); /* mono */
	wav_out_le(h + 24, w->rate, 4);
	wav_out_le(h + 28, w->rate * 2u, 4);
	wav_out_le(h + 32, 2, 2);
	wav_out_le(h + 34, 16, 2);
	memcpy(h + 36, "data", 4);
	wav_out_le(h + 40, w->bytes, 4);
	if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, sizeof(h), 1, w->f) != 1 ||
	    fseek(w->f, 0, SEEK_END) != 0)
		return -EIO;
	return 0;
}

/* Creates (truncates) @path for mono audio at @rate Hz. On failure @w holds no file. */
static inline int wav_out_open(struct wav_out *w, const char *path, unsigned rate)
{
	int rc;

	w->f = fopen(path, "wb");
	w->rate = rate;
	w->bytes = 0;
	if (!w->f)
		return -errno;
	rc = wav_out_header(w);
	if (rc < 0) {
		fclose(w->f);
		w->f = NULL;
	}
	return rc;
}

/* Appends @n samples. */
static inline int wav_out_write(struct wav_out *w, const int16_t *pcm, size_t n)
{
	uint8_t buf[2048];
	size_t k = 0;

	if (!w->f)
		return -EBADF;
	if (n > (WAV_OUT_MAX_BYTES - w->bytes) / 2)
		return -EFBIG;
	for (size_t i = 0; i < n; i++) {
		wav_out_le(buf + k, (uint16_t)pcm[i], 2);
		k += 2;
		if (k == sizeof(buf) || i + 1 == n) {
			if (fwrite(buf, k, 1, w->f) != 1)
				return -EIO;
			w->bytes += (uint32_t)k;
			k = 0;
		}
	}
	return 0;
}

/* Writes the final sizes and closes the file (NULL-safe when never opened). */
static inline int wav_out_close(struct wav_out *w)
{
	int rc;

	if (!w->f)
		return 0;
	rc = wav_out_header(w);
	if (fclose(w->f) != 0 && rc == 0)
		rc = -EIO;
	w->f = NULL;
	return rc;
}

#endif
