/*
 * test_codec.c - unit tests for common/codec.c: the codec table and the RTMP audio header parser.
 */
#include "codec.h"
#include "harness.h"

#include <errno.h>
#include <string.h>

static void test_table(void)
{
	const struct codec *c;

	CHECK(codec_by_id(CODEC_NONE) == NULL);
	CHECK(codec_by_id(CODEC_COUNT) == NULL);
	CHECK(codec_by_id((enum codec_id) - 1) == NULL);
	for (int id = 1; id < CODEC_COUNT; id++) {
		c = codec_by_id((enum codec_id)id);
		CHECK(c && c->id == (enum codec_id)id);
		if (!c)
			continue;
		CHECK(codec_by_name(c->name, c->clock_rate) == c);
		/* Every SIP audio codec has a clock whose 20 ms is its frame, and a payload type;
		 * video runs on a 90 kHz clock, on RTMP as an FLV video codec. */
		if (c->family == CODEC_FAMILY_VIDEO)
			CHECK(c->clock_rate == 90000 && !c->sip && c->flv_video_codec &&
			      !c->rtmp_audio_byte && codec_rtmp_capable(c));
		else if (c->sip)
			CHECK(c->frame_samples * 50 == c->clock_rate && c->default_pt >= 0 &&
			      c->default_pt < 128);
		else
			CHECK(c->clock_rate == 0 && c->default_pt == -1 && codec_rtmp_capable(c));
	}
	c = codec_by_name("h264", 90000);
	CHECK(c && c->id == CODEC_H264 && c->flv_video_codec == 7 && !c->sip && !c->rtmp_audio_byte);
	CHECK(codec_by_rtmp_name("H264") == c); /* the RTMP side of a video leg */
	c = codec_by_name("SPEEX", 16000);
	CHECK(c && c->id == CODEC_SPEEX_WB && c->default_pt == 96 && c->rtmp_audio_byte == 0xB2);
	c = codec_by_name("Speex", 8000);
	CHECK(c && c->id == CODEC_SPEEX_NB && c->default_pt == 98 && !codec_rtmp_capable(c));
	c = codec_by_name("pcmu", 8000);
	CHECK(c && c->id == CODEC_PCMU && c->default_pt == 0 && c->rtmp_audio_byte == 0x82);
	c = codec_by_name("pcma", 8000);
	CHECK(c && c->id == CODEC_PCMA && c->default_pt == 8 && c->rtmp_audio_byte == 0x72);
	c = codec_by_name("TELEPHONE-EVENT", 8000);
	CHECK(c && c->id == CODEC_TELEPHONE_EVENT && c->default_pt == 101);
	/* G.722: 16 kHz audio on an 8,000 RTP clock (RFC 3551). */
	c = codec_by_name("g722", 8000);
	CHECK(c && c->id == CODEC_G722 && c->pcm_rate == 16000 && c->default_pt == 9);
	CHECK(codec_by_name("G722", 16000) == NULL);
	c = codec_by_name("OPUS", 48000);
	CHECK(c && c->id == CODEC_OPUS && c->channels == 2 && codec_rtmp_capable(c));
	/* RTMP-only codecs match by name at any rate. */
	CHECK(codec_by_name("aac", 44100) == codec_by_id(CODEC_AAC));
	CHECK(codec_by_name("speex", 32000) == NULL);
	CHECK(codec_by_name("PCMU", 16000) == NULL);
	CHECK(codec_by_name(NULL, 8000) == NULL);
}

static void test_rtmp_parse(void)
{
	struct rtmp_audio ra;
	const char *why = NULL;
	uint8_t m[32];

	m[0] = 0xB2;
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), 0);
	CHECK(ra.codec == codec_by_id(CODEC_SPEEX_WB) && ra.rate == 16000 && ra.channels == 1);
	m[0] = 0xB6; /* the rate bits mean nothing for Speex */
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), 0);
	CHECK(ra.codec == codec_by_id(CODEC_SPEEX_WB) && ra.hdr_len == 1);
	m[0] = 0xB3;
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), -ENOTSUP);
	CHECK(why && strstr(why, "stereo Speex"));
	m[0] = 0x83;
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), 0);
	CHECK(ra.codec == codec_by_id(CODEC_PCMU) && ra.channels == 2 && ra.rate == 8000);
	m[0] = 0x72;
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), 0);
	CHECK(ra.codec == codec_by_id(CODEC_PCMA) && ra.channels == 1);

	/* AAC: packet type 0 is the AudioSpecificConfig, 1 raw frames. */
	m[0] = 0xAF;
	m[1] = 0;
	CHECK_EQ_INT(codec_rtmp_parse(m, 4, &ra, &why), 0);
	CHECK(ra.codec == codec_by_id(CODEC_AAC) && ra.config && ra.hdr_len == 2);
	/* its AudioSpecificConfig gives the rate and channels */
	memcpy(m + 2, "\x12\x10", 2); /* LC, 44100, stereo */
	CHECK_EQ_INT(codec_rtmp_parse(m, 4, &ra, &why), 0);
	CHECK(ra.rate == 44100 && ra.channels == 2);
	memcpy(m + 2, "\x11\x88", 2); /* LC, 48000, mono */
	CHECK_EQ_INT(codec_rtmp_parse(m, 4, &ra, &why), 0);
	CHECK(ra.rate == 48000 && ra.channels == 1);
	memcpy(m + 2, "\x14\x08", 2); /* LC, 16000, mono */
	CHECK_EQ_INT(codec_rtmp_parse(m, 4, &ra, &why), 0);
	CHECK(ra.rate == 16000 && ra.channels == 1);
	memcpy(m + 2, "\x17\x88", 2); /* frequency index 15: a 24-bit rate follows, missing */
	CHECK_EQ_INT(codec_rtmp_parse(m, 4, &ra, &why), -EPROTO);
	CHECK(why && strstr(why, "AudioSpecificConfig"));
	memcpy(m + 2, "\x16\x88", 2); /* index 13: reserved */
	CHECK_EQ_INT(codec_rtmp_parse(m, 4, &ra, &why), -EPROTO);
	CHECK_EQ_INT(codec_rtmp_parse(m, 2, &ra, &why), -EPROTO); /* no config at all */
	m[1] = 1;
	CHECK_EQ_INT(codec_rtmp_parse(m, 4, &ra, &why), 0);
	CHECK(!ra.config && ra.rate == 0);
	m[1] = 2;
	CHECK_EQ_INT(codec_rtmp_parse(m, 4, &ra, &why), -EPROTO);
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), -EPROTO);

	m[0] = 0x2E;
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), 0);
	CHECK(ra.codec == codec_by_id(CODEC_MP3) && ra.rate == 44100);
	m[0] = 0xE2;
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), 0);
	CHECK(ra.codec == codec_by_id(CODEC_MP3) && ra.rate == 8000);
	m[0] = 0x52;
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), 0);
	CHECK(ra.codec == codec_by_id(CODEC_NELLYMOSER) && ra.rate == 8000);
	m[0] = 0x42;
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), 0);
	CHECK(ra.rate == 16000);
	m[0] = 0x6E;
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), 0);
	CHECK(ra.codec == codec_by_id(CODEC_NELLYMOSER) && ra.rate == 44100);
	m[0] = 0x1E;
	CHECK_EQ_INT(codec_rtmp_parse(m, 1, &ra, &why), -ENOTSUP);
	CHECK(why && strstr(why, "ADPCM") && strstr(why, "AAC"));

	/* Enhanced RTMP: SoundFormat 9, packet type, FourCC. */
	memcpy(m, "\x90Opus", 5);
	memcpy(m + 5, "OpusHead\x01\x02", 10);
	CHECK_EQ_INT(codec_rtmp_parse(m, 15, &ra, &why), 0);
	CHECK(ra.codec == codec_by_id(CODEC_OPUS) && ra.config && ra.channels == 2 &&
	      ra.hdr_len == 5);
	m[0] = 0x91;
	CHECK_EQ_INT(codec_rtmp_parse(m, 8, &ra, &why), 0);
	CHECK(!ra.config && !ra.end);
	m[0] = 0x92;
	CHECK_EQ_INT(codec_rtmp_parse(m, 5, &ra, &why), 0);
	CHECK(ra.end);
	CHECK_EQ_INT(codec_rtmp_parse(m, 4, &ra, &why), -EPROTO);
	memcpy(m, "\x91" "fLaC", 5);
	CHECK_EQ_INT(codec_rtmp_parse(m, 9, &ra, &why), -ENOTSUP);
	m[0] = 0x95;
	CHECK_EQ_INT(codec_rtmp_parse(m, 9, &ra, &why), -ENOTSUP);
	CHECK(why && strstr(why, "multitrack"));

	/* Every first byte either parses or says why. */
	for (int b = 0; b < 256; b++) {
		memset(m, 0, sizeof(m));
		m[0] = (uint8_t)b;
		memcpy(m + 1, "Opus", 4);
		why = NULL;
		int r = codec_rtmp_parse(m, sizeof(m), &ra, &why);
		CHECK((r == 0) == (why == NULL));
		CHECK(r != 0 || ra.codec != NULL);
	}
	CHECK_EQ_INT(codec_rtmp_parse(m, 0, &ra, &why), -EPROTO);
}

static void test_rtmp_header(void)
{
	uint8_t h[8];
	struct rtmp_audio ra;

	/* What we write parses back as the same codec and kind. */
	for (int id = 1; id < CODEC_COUNT; id++) {
		const struct codec *c = codec_by_id((enum codec_id)id);

		for (int cfg = 0; cfg < 2; cfg++) {
			size_t n = codec_rtmp_header(c, 0, 1, cfg, h);

			/* video travels on RTMP, but in video messages: no audio header */
			CHECK((n > 0) == (codec_rtmp_capable(c) && c->family != CODEC_FAMILY_VIDEO));
			if (!n)
				continue;
			memset(h + n, 0, sizeof(h) - n);
			CHECK_EQ_INT(codec_rtmp_parse(h, sizeof(h), &ra, NULL), 0);
			CHECK(ra.codec == c && ra.hdr_len == n);
			if (c->id == CODEC_AAC || c->id == CODEC_OPUS)
				CHECK(ra.config == (cfg == 1));
		}
	}
	CHECK_EQ_INT(codec_rtmp_header(codec_by_id(CODEC_PCMU), 8000, 2, false, h), 1);
	CHECK(h[0] == 0x83);
	/* Nellymoser and MP3 say their rate */
	static const unsigned rates[] = {5512, 8000, 11025, 16000, 22050, 44100};
	for (unsigned i = 0; i < 6; i++) {
		CHECK_EQ_INT(codec_rtmp_header(codec_by_id(CODEC_NELLYMOSER), rates[i], 1, false, h), 1);
		CHECK_EQ_INT(codec_rtmp_parse(h, 1, &ra, NULL), 0);
		CHECK_EQ_INT(ra.rate, rates[i]);
	}
	CHECK_EQ_INT(codec_rtmp_header(codec_by_id(CODEC_MP3), 8000, 1, false, h), 1);
	CHECK_EQ_INT(codec_rtmp_parse(h, 1, &ra, NULL), 0);
	CHECK(ra.codec == codec_by_id(CODEC_MP3) && ra.rate == 8000);
}

int main(void)
{
	TEST_RUN(test_table);
	TEST_RUN(test_rtmp_parse);
	TEST_RUN(test_rtmp_header);
	return TEST_DONE();
}
