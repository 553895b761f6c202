/*
 * test_media_codec.c - unit tests for signaler/media_codec.c's RTMP side: what a publisher's
 * first audio message makes of the leg's codec, and the reason a refused one is given.
 */
#include "harness.h"
#include "media_codec.h"

#include <errno.h>
#include <string.h>

static void test_from_rtmp(void)
{
	struct wire_codec c;
	const char *why = NULL;
	uint8_t m[4] = {0x82, 0xff, 0xff, 0xff};

	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), 0);
	CHECK_EQ_STR(c.name, "PCMU");
	CHECK(c.rate == 8000 && c.channels == 1 && c.pt == 0);
	m[0] = 0x72;
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), 0);
	CHECK_EQ_STR(c.name, "PCMA");
	m[0] = 0xB2;
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), 0);
	CHECK(strcmp(c.name, "speex") == 0 && c.rate == 16000 && c.pt == 96);
	/* G.711 flagged stereo: taken, two channels (the worker averages them). */
	m[0] = 0x83;
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), 0);
	CHECK(strcmp(c.name, "PCMU") == 0 && c.channels == 2);
	/* AAC: the sequence header says the rate and channels (ffmpeg flags every AAC stream
	 * stereo, mono ones too: the header byte is not asked) */
	m[0] = 0xAF;
	m[1] = 0x00;
	m[2] = 0x11; /* AAC-LC, 48000 Hz, mono */
	m[3] = 0x88;
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), 0);
	CHECK(strcmp(c.name, "AAC") == 0 && c.rate == 48000 && c.channels == 1);
	/* raw AAC before any sequence header: refused, there is nothing to decode it with */
	m[1] = 0x01;
	why = NULL;
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), -ENOTSUP);
	CHECK(why && strstr(why, "sequence header"));
	m[0] = 0x6E; /* Nellymoser 44.1 kHz, mono */
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), 0);
	CHECK(strcmp(c.name, "Nellymoser") == 0 && c.rate == 44100);
	/* not carried at all: named with what is */
	m[0] = 0x1E;
	why = NULL;
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), -ENOTSUP);
	CHECK(why && strstr(why, "ADPCM audio is not supported (supported: AAC"));
	/* No reason asked for. */
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, NULL), -ENOTSUP);
	CHECK_EQ_INT(media_codec_from_rtmp(m, 0, &c, NULL), -ENOTSUP);
}

int main(void)
{
	TEST_RUN(test_from_rtmp);
	return TEST_DONE();
}
