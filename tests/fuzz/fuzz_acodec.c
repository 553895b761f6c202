/*
 * fuzz_acodec.c - libFuzzer target for the decoders of mediaworker/acodec.c (G.722, Opus, AAC,
 * MP3, Nellymoser over libavcodec and libopus): payloads, mid-stream configs, concealment.
 *
 * Input layout:
 *   byte 0   bits 0-2: codec (G.722, Opus, AAC, MP3, Nellymoser; 5-7: AAC, Opus, MP3 again)
 *            bits 3-5: rate hint (0, 8000, 16000, 44100, 48000, 22050, 5512, 12000)
 *            bit 6: stereo hint
 *            bit 7: the first record is the config given to acodec_dec_new() (its byte A
 *            only sets the length multiplier)
 *   then records until the input ends:
 *     byte A   bit 0: after this record conceal one frame (bit 1: with this record as "next")
 *              bit 2: this record is a new config (acodec_dec_config())
 *              bits 3-4: length multiplier (1, 8, 33, 65)
 *              bit 5: decode into a small buffer (the length unit byte B, in samples)
 *     byte B   length unit; length = B x multiplier, cut to what is left
 *     data
 *
 * Checked beyond "no crash, no leak, no UB": decode returns at most the room given, or -EPROTO
 * or -E2BIG; conceal returns 0 or a frame that fits; configs return 0, -EPROTO or -ENOMEM;
 * the rate stays within what audio can be; the decoder works again after every error (a valid
 * empty payload gives 0). Seeds: tests/fuzz/corpus/acodec/ (encoded tone streams of each codec).
 */
#include "acodec.h"
#include "codec.h"
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"

static const enum codec_id ids[8] = {CODEC_G722,       CODEC_OPUS, CODEC_AAC,  CODEC_MP3,
				     CODEC_NELLYMOSER, CODEC_AAC,  CODEC_OPUS, CODEC_MP3};
static const unsigned rates[8] = {0, 8000, 16000, 44100, 48000, 22050, 5512, 12000};
static const unsigned mult[4] = {1, 8, 33, 65};

static int16_t pcm[32768];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct codec *c;
	struct acodec_dec *d;
	char why[160];
	const uint8_t *cfg = NULL;
	size_t pos = 1, cfg_len = 0;

	if (size < 1)
		return 0;
	log_init("fuzz_acodec", LOG_LVL_ERROR);
	c = codec_by_id(ids[data[0] & 7]);
	if ((data[0] & 0x80) && size >= 3) {
		cfg_len = (size_t)data[2] * mult[(data[1] >> 3) & 3];
		if (cfg_len > size - 3)
			cfg_len = size - 3;
		cfg = data + 3;
		pos = 3 + cfg_len;
	}
	d = acodec_dec_new(c, rates[(data[0] >> 3) & 7], data[0] & 0x40 ? 2 : 1, cfg, cfg_len,
			   "fuzz", why, sizeof(why));
	if (!d) {
		/* a rate the codec cannot take, a missing Nellymoser rate, a bad config */
		EXPECT(why[0] != '\0');
		return 0;
	}
	while (pos + 2 <= size) {
		uint8_t a = data[pos], b = data[pos + 1];
		size_t len = (size_t)b * mult[(a >> 3) & 3];
		const uint8_t *p;
		int ret;

		pos += 2;
		if (len > size - pos)
			len = size - pos;
		p = data + pos;
		pos += len;
		if (a & 4) {
			ret = acodec_dec_config(d, p, len);
			EXPECT(ret == 0 || ret == -EPROTO || ret == -ENOMEM);
		} else {
			size_t max = a & 0x20 ? b : sizeof(pcm) / sizeof(pcm[0]);

			ret = acodec_decode(d, p, len, pcm, max);
			EXPECT(ret == -EPROTO || ret == -E2BIG || (ret >= 0 && (size_t)ret <= max));
			if (len > ACODEC_MAX_PAYLOAD)
				EXPECT(ret == -E2BIG);
		}
		if (a & 1) {
			ret = acodec_conceal(d, a & 2 ? p : NULL, a & 2 ? len : 0, pcm,
					     sizeof(pcm) / sizeof(pcm[0]));
			EXPECT(ret >= 0 && (size_t)ret <= sizeof(pcm) / sizeof(pcm[0]));
			EXPECT(c->id == CODEC_OPUS || ret == 0);
		}
		EXPECT(acodec_dec_rate(d) <= 192000);
		EXPECT(acodec_decode(d, p, 0, pcm, 1) == 0);
	}
	acodec_dec_free(&d);
	EXPECT(d == NULL);
	return 0;
}
