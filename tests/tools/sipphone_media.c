/*
 * sipphone_media.c - sipphone's audio: G.711, the codec table (Speex, PCMU, PCMA) and the WAV
 * recording of `play`. See sipphone.c for the tool and sipphone.h for what is shared.
 */
#include "sipphone.h"

/* ---- G.711 ----------------------------------------------------------------------------------- */

static uint8_t ulaw_from_linear(int16_t s)
{
	int mag = s < 0 ? -(int)s : s;
	uint8_t sign = s < 0 ? 0x80 : 0x00;
	int exp = 7;

	if (mag > 32635)
		mag = 32635;
	mag += 0x84;
	while (exp > 0 && !(mag & (0x80 << exp)))
		exp--;
	return (uint8_t) ~(sign | (exp << 4) | ((mag >> (exp + 3)) & 0x0f));
}

static int16_t ulaw_to_linear(uint8_t u)
{
	int exp, mag;

	u = (uint8_t)~u;
	exp = (u >> 4) & 0x07;
	mag = ((((u & 0x0f) << 3) + 0x84) << exp) - 0x84;
	return (int16_t)((u & 0x80) ? -mag : mag);
}

static uint8_t alaw_from_linear(int16_t s)
{
	int v = s / 8; /* 13-bit magnitude scale */
	uint8_t mask = 0xd5;
	int seg = 0;

	if (s < 0) {
		mask = 0x55;
		v = (-(int)s - 1) / 8;
	}
	while (seg < 8 && v > (0x20 << seg) - 1)
		seg++;
	if (seg == 8)
		return (uint8_t)(0x7f ^ mask);
	return (uint8_t)(((seg << 4) | ((v >> (seg < 2 ? 1 : seg)) & 0x0f)) ^ mask);
}

static int16_t alaw_to_linear(uint8_t a)
{
	int seg, mag;

	a ^= 0x55;
	seg = (a >> 4) & 0x07;
	mag = (a & 0x0f) << 4;
	if (seg == 0)
		mag += 8;
	else
		mag = (mag + 0x108) << (seg - 1);
	return (int16_t)((a & 0x80) ? mag : -mag);
}

/* ---- codecs ---------------------------------------------------------------------------------- */

static int speex_encode_frame(struct publisher *p, const int16_t *pcm, unsigned n, uint8_t *out,
			      size_t outlen)
{
	spx_int16_t frame[MAX_FRAME_PCM];

	if (n != MAX_FRAME_PCM)
		return -EINVAL;
	memcpy(frame, pcm, sizeof(frame));
	speex_bits_reset(&p->bits);
	speex_encode_int(p->enc, frame, &p->bits);
	return speex_bits_write(&p->bits, (char *)out, (int)outlen);
}

static size_t speex_decode_msg(struct player *pl, const uint8_t *in, size_t len, int16_t *pcm,
			       size_t max)
{
	size_t n = 0;

	if (!pl->dec) {
		pl->dec = speex_decoder_init(&speex_wb_mode);
		if (!pl->dec)
			return 0;
		speex_bits_init(&pl->bits);
		pl->bits_init = true;
	}
	speex_bits_read_from(&pl->bits, (const char *)in, (int)len);
	/* Usually one frame per message; decode whatever whole frames it holds. */
	while (n + MAX_FRAME_PCM <= max && speex_bits_remaining(&pl->bits) >= 5) {
		if (speex_decode_int(pl->dec, &pl->bits, pcm + n) != 0)
			break;
		n += MAX_FRAME_PCM;
	}
	return n;
}

static int pcmu_encode(struct publisher *p, const int16_t *pcm, unsigned n, uint8_t *out,
		       size_t outlen)
{
	if (n > outlen)
		return -E2BIG;
	for (unsigned i = 0; i < n; i++)
		out[i] = ulaw_from_linear(pcm[i]);
	return (int)n;
}

static int pcma_encode(struct publisher *p, const int16_t *pcm, unsigned n, uint8_t *out,
		       size_t outlen)
{
	if (n > outlen)
		return -E2BIG;
	for (unsigned i = 0; i < n; i++)
		out[i] = alaw_from_linear(pcm[i]);
	return (int)n;
}

static size_t pcmu_decode(struct player *pl, const uint8_t *in, size_t len, int16_t *pcm,
			  size_t max)
{
	size_t n = len < max ? len : max;

	for (size_t i = 0; i < n; i++)
		pcm[i] = ulaw_to_linear(in[i]);
	return n;
}

static size_t pcma_decode(struct player *pl, const uint8_t *in, size_t len, int16_t *pcm,
			  size_t max)
{
	size_t n = len < max ? len : max;

	for (size_t i = 0; i < n; i++)
		pcm[i] = alaw_to_linear(in[i]);
	return n;
}

/* clang-format off */
static const struct codec codecs[] = {
	{.name = "speex", .flv_format = 11, .tag = 0xb2, .rate = 16000,
	 .encode = speex_encode_frame, .decode = speex_decode_msg},
	{.name = "pcmu", .flv_format = 8, .tag = 0x82, .rate = 8000,
	 .encode = pcmu_encode, .decode = pcmu_decode},
	{.name = "pcma", .flv_format = 7, .tag = 0x72, .rate = 8000,
	 .encode = pcma_encode, .decode = pcma_decode},
};
/* clang-format on */

const struct codec *codec_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		if (strcmp(codecs[i].name, name) == 0)
			return &codecs[i];
	return NULL;
}

const struct codec *codec_by_format(unsigned format)
{
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		if (codecs[i].flv_format == format)
			return &codecs[i];
	return NULL;
}

/* ---- WAV recording --------------------------------------------------------------------------- */

static void put_le(uint8_t *p, uint32_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrites the header for the samples written so far and flushes, so the file is readable at
 * any time. */
void wav_finalize(struct player *pl)
{
	uint8_t h[44];
	uint32_t data = pl->samples * 2u;
	unsigned rate = pl->rate ? pl->rate : 8000;

	if (!pl->wav)
		return;
	memcpy(h, "RIFF", 4);
	put_le(h + 4, 36 + data, 4);
	memcpy(h + 8, "WAVEfmt ", 8);
	put_le(h + 16, 16, 4);
	put_le(h + 20, 1, 2); /* PCM */
	put_le(h + 22, 1, 2); /* mono */
	put_le(h + 24, rate, 4);
	put_le(h + 28, rate * 2u, 4);
	put_le(h + 32, 2, 2);
	put_le(h + 34, 16, 2);
	memcpy(h + 36, "data", 4);
	put_le(h + 40, data, 4);
	if (fseek(pl->wav, 0, SEEK_SET) != 0 || fwrite(h, sizeof(h), 1, pl->wav) != 1 ||
	    fseek(pl->wav, 0, SEEK_END) != 0 || fflush(pl->wav) != 0)
		fprintf(stderr, "sipphone: writing %s: %s\n", pl->path, strerror(errno));
}

/* Appends @n samples at @rate, converted to the file's rate (the only rates are 8 and 16 kHz). */
void wav_append(struct player *pl, const int16_t *pcm, size_t n, unsigned rate)
{
	uint8_t out[MAX_DECODED * 2 * 2];
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int reps = rate < pl->rate ? 2 : 1;

		if (rate > pl->rate && (i & 1))
			continue;
		for (int r = 0; r < reps && pl->samples < pl->max_samples; r++) {
			put_le(out + k, (uint16_t)pcm[i], 2);
			k += 2;
			pl->samples++;
		}
	}
	if (pl->samples >= pl->max_samples && !pl->noted_cap) {
		fprintf(stderr, "sipphone: %s reached %u s: later audio is not recorded\n",
			pl->path, WAV_MAX_SECONDS);
		pl->noted_cap = true;
	}
	if (k && fwrite(out, k, 1, pl->wav) != 1)
		fprintf(stderr, "sipphone: writing %s: %s\n", pl->path, strerror(errno));
}
