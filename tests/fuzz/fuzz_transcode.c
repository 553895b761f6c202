/*
 * fuzz_transcode.c - libFuzzer target for the transcoder (codec table, G.711, Speex bitstream
 * walk, pass-through, layer and decode/resample/encode paths, concealment).
 *
 * Input layout:
 *   byte 0   bits 0-1: RTMP codec (Speex WB, PCMU, PCMA, Speex WB)
 *            bits 2-3: SIP codec (PCMU, PCMA, Speex WB, Speex NB)
 *            bit 4: narrowband_core, bit 5: speex_split, bit 6: VBR, bit 7: quality 0 (else 8)
 *   then records until the input ends:
 *     byte A   bit 0: direction (0 RTMP -> SIP, 1 SIP -> RTMP)
 *              bit 1: conceal one lost frame after this record
 *              bit 2: toward SIP, put this leg's correct tag byte in front of the data
 *              bits 3-4: length multiplier (1, 8, 33, 65)
 *     byte B   length unit; length = B x multiplier, cut to what is left
 *     data
 *
 * Checked beyond "no crash, no leak, no UB": results are 0, -EPROTO or -E2BIG; a failed call
 * leaves no frames; frames lie inside the arena, back to back; toward RTMP every frame starts
 * with the leg's tag byte; G.711 frames last len (- tag) samples; Speex frames walk to the frame
 * count their samples claim; SIP -> RTMP pass-through is the payload behind the tag byte;
 * concealment succeeds with at most two frames. Seeds: tests/fuzz/corpus/transcode/.
 */
#include "codec.h"
#include "log.h"
#include "transcode.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"

static const enum codec_id rtmp_ids[4] = {CODEC_SPEEX_WB, CODEC_PCMU, CODEC_PCMA, CODEC_SPEEX_WB};
static const enum codec_id sip_ids[4] = {CODEC_PCMU, CODEC_PCMA, CODEC_SPEEX_WB, CODEC_SPEEX_NB};
static const unsigned mult[4] = {1, 8, 33, 65};

static struct tc_out out;
static uint8_t msg[TC_MAX_INPUT + 2];

static void check_out(const struct codec *oc, bool toward_rtmp, int ret)
{
	size_t pos = 0;

	EXPECT(ret == 0 || ret == -EPROTO || ret == -E2BIG);
	if (ret < 0) {
		EXPECT(out.n == 0 && out.used == 0);
		return;
	}
	EXPECT(out.n <= TC_MAX_FRAMES && out.used <= TC_ARENA);
	EXPECT(out.rate == oc->clock_rate);
	for (unsigned i = 0; i < out.n; i++) {
		const struct tc_frame *f = &out.f[i];
		const uint8_t *p = tc_frame_data(&out, i);
		size_t tagn = toward_rtmp ? 1 : 0;

		EXPECT(f->off == pos && f->len > tagn && f->samples > 0);
		pos += f->len;
		if (toward_rtmp)
			EXPECT(p[0] == oc->rtmp_audio_byte);
		if (oc->family == CODEC_FAMILY_G711) {
			EXPECT(f->samples == f->len - tagn);
			if (!toward_rtmp)
				EXPECT(f->len == 160);
		} else {
			int n = transcode_speex_frames(p + tagn, f->len - tagn);

			EXPECT(n > 0 && (unsigned)n * oc->frame_samples == f->samples);
		}
	}
	EXPECT(pos == out.used);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transcode_opts o;
	struct transcoder *t;
	const struct codec *rc, *sc;
	size_t pos = 1;

	if (size < 1)
		return 0;
	log_init("fuzz_transcode", LOG_LVL_ERROR);
	transcode_opts_default(&o);
	o.narrowband_core = data[0] & 0x10;
	o.speex_split = data[0] & 0x20;
	o.speex_vbr = data[0] & 0x40;
	o.speex_quality = data[0] & 0x80 ? 0 : 8;
	t = transcoder_new(&o, rtmp_ids[data[0] & 3], sip_ids[(data[0] >> 2) & 3]);
	EXPECT(t != NULL);
	rc = codec_by_id(rtmp_ids[data[0] & 3]);
	sc = codec_by_id(sip_ids[(data[0] >> 2) & 3]);
	while (pos + 2 <= size) {
		uint8_t a = data[pos], b = data[pos + 1];
		size_t len = (size_t)b * mult[(a >> 3) & 3];
		int ret;

		pos += 2;
		if (len > size - pos)
			len = size - pos;
		if (a & 1) {
			ret = transcoder_sip_to_rtmp(t, data + pos, len, &out);
			check_out(rc, true, ret);
			if (ret == 0 && transcoder_is_passthrough(t) && out.n) {
				EXPECT(out.n == 1 && out.f[0].len == len + 1);
				EXPECT(memcmp(tc_frame_data(&out, 0) + 1, data + pos, len) == 0);
			}
		} else {
			size_t n = 0;

			if (a & 4)
				msg[n++] = rc->rtmp_audio_byte;
			memcpy(msg + n, data + pos, len);
			ret = transcoder_rtmp_to_sip(t, msg, n + len, &out);
			check_out(sc, false, ret);
		}
		pos += len;
		if (a & 2) {
			EXPECT(transcoder_conceal(t, NULL, 0, &out) == 0);
			check_out(rc, true, 0);
			EXPECT(out.n <= 2);
		}
	}
	transcoder_destroy(&t);
	EXPECT(t == NULL);
	return 0;
}
