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
	/* G.711 flagged stereo: refused as stereo. */
	m[0] = 0x83;
	why = NULL;
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), -ENOTSUP);
	CHECK_EQ_STR(why, "stereo audio is not supported yet (send mono)");
	/* A codec not carried yet, flagged stereo: named as that codec, not as stereo (ffmpeg
	 * flags every AAC stream stereo, mono ones too). When the workers carry AAC, another codec
	 * they do not carry takes its place here. */
	m[0] = 0xAF;
	m[1] = 0x01;
	why = NULL;
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), -ENOTSUP);
	CHECK(why && strstr(why, "AAC audio is not supported yet") == why);
	m[0] = 0x6E; /* Nellymoser, mono */
	why = NULL;
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, &why), -ENOTSUP);
	CHECK(why && strstr(why, "Nellymoser audio is not supported yet") == why);
	/* No reason asked for. */
	CHECK_EQ_INT(media_codec_from_rtmp(m, sizeof(m), &c, NULL), -ENOTSUP);
	CHECK_EQ_INT(media_codec_from_rtmp(m, 0, &c, NULL), -ENOTSUP);
}

int main(void)
{
	TEST_RUN(test_from_rtmp);
	return TEST_DONE();
}
