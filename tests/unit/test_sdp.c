/*
 * test_sdp.c - SDP descriptions: build -> parse round trips; SDPs modelled on what SIPp, Asterisk,
 * FreeSWITCH and Linphone send; offer/answer selection (RFC 3264), SRTP (RFC 4568), hold
 * (RFC 3264 / 6337); the Flash codec tokens; malformed input giving errors, never crashes.
 */
#include "harness.h"
#include "sdp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#define CRLF "\r\n"

/* RFC 4568 example keys: 40 base64 characters, 30 bytes each. */
#define KEY_A "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
#define KEY_B "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj"

static char why[256];

static int parse(const char *text, struct sdp_media_desc *d)
{
	why[0] = '\0';
	return sdp_parse_desc(text, strlen(text), d, why, sizeof(why));
}

/* NUL-terminated copy of a built SDP (the buffer is not NUL-terminated). */
static char *text_of(const struct buf *b)
{
	char *s = malloc(buf_used(b) + 1);

	if (!s)
		abort();
	memcpy(s, buf_head(b), buf_used(b));
	s[buf_used(b)] = '\0';
	return s;
}

static const struct codec *C(enum codec_id id)
{
	return codec_by_id(id);
}

static struct codec_pref prefs(bool dtmf, unsigned n, ...)
{
	struct codec_pref p = {.n = n, .dtmf = dtmf};
	va_list ap;

	va_start(ap, n);
	for (unsigned i = 0; i < n; i++)
		p.codecs[i] = C((enum codec_id)va_arg(ap, int));
	va_end(ap);
	return p;
}

static uint8_t our_key[SDP_SRTP_KEY_LEN];

static struct sdp_local local_v4(enum sdp_srtp_policy srtp)
{
	for (unsigned i = 0; i < SDP_SRTP_KEY_LEN; i++)
		our_key[i] = (uint8_t)(0xA0 + i);
	return (struct sdp_local){
	    .addr = "198.51.100.7", .port = 40000, .srtp = srtp, .key = our_key};
}

/* --- real-world samples ---------------------------------------------------------------------- */

/* SIPp's built-in uac scenario (and its uas answer is the same body). */
static const char sipp_uac[] = "v=0" CRLF "o=user1 53655765 2353687637 IN IP4 127.0.0.1" CRLF
			       "s=-" CRLF "c=IN IP4 127.0.0.1" CRLF "t=0 0" CRLF
			       "m=audio 6000 RTP/AVP 0" CRLF "a=rtpmap:0 PCMU/8000" CRLF;

/* Asterisk chan_pjsip: static PTs with rtpmap, telephone-event, ptime, maxptime. */
static const char asterisk[] =
    "v=0" CRLF "o=- 1712345678 1712345678 IN IP4 192.168.1.10" CRLF "s=Asterisk" CRLF
    "c=IN IP4 192.168.1.10" CRLF "t=0 0" CRLF "m=audio 17890 RTP/AVP 0 8 3 101" CRLF
    "a=rtpmap:0 PCMU/8000" CRLF "a=rtpmap:8 PCMA/8000" CRLF "a=rtpmap:3 GSM/8000" CRLF
    "a=rtpmap:101 telephone-event/8000" CRLF "a=fmtp:101 0-16" CRLF "a=ptime:20" CRLF
    "a=maxptime:150" CRLF "a=sendrecv" CRLF;

/* Old Asterisk chan_sip: static PTs without rtpmap, silenceSupp, LF line ends. */
static const char asterisk_chan_sip[] =
    "v=0\no=root 1821 1821 IN IP4 10.1.1.1\ns=Asterisk PBX 13.38.3\nc=IN IP4 10.1.1.1\n"
    "t=0 0\nm=audio 12246 RTP/AVP 8 0 9 101\na=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-16\na=silenceSupp:off - - - -\na=ptime:20\na=sendrecv\n";

/* FreeSWITCH: opus first, two telephone-events, CN. */
static const char freeswitch[] =
    "v=0" CRLF "o=FreeSWITCH 1712340000 1712340001 IN IP4 10.0.0.5" CRLF "s=FreeSWITCH" CRLF
    "c=IN IP4 10.0.0.5" CRLF "t=0 0" CRLF "m=audio 24580 RTP/AVP 102 9 0 8 103 101 13" CRLF
    "a=rtpmap:102 opus/48000/2" CRLF
    "a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20" CRLF
    "a=rtpmap:9 G722/8000" CRLF "a=rtpmap:0 PCMU/8000" CRLF "a=rtpmap:8 PCMA/8000" CRLF
    "a=rtpmap:103 telephone-event/48000" CRLF "a=fmtp:103 0-16" CRLF
    "a=rtpmap:101 telephone-event/8000" CRLF "a=fmtp:101 0-16" CRLF "a=rtpmap:13 CN/8000" CRLF
    "a=ptime:20" CRLF;

/* FreeSWITCH with SRTP: RTP/SAVP, an AES_256 line we cannot do first, then two we can. */
static const char freeswitch_srtp[] =
    "v=0" CRLF "o=FreeSWITCH 1712340000 1712340001 IN IP4 10.0.0.5" CRLF "s=FreeSWITCH" CRLF
    "c=IN IP4 10.0.0.5" CRLF "t=0 0" CRLF "m=audio 24580 RTP/SAVP 0 8 101" CRLF
    "a=rtpmap:0 PCMU/8000" CRLF "a=rtpmap:8 PCMA/8000" CRLF "a=rtpmap:101 telephone-event/8000" CRLF
    "a=fmtp:101 0-16" CRLF "a=ptime:20" CRLF "a=crypto:1 AES_CM_256_HMAC_SHA1_80 "
    "inline:QxzZ2QKdA3qbYwq5cVw7SvTmRUX0BbE3RzZ4YXdlbmN5cHJvdGVjdGlvbnNhbHQ=" CRLF
    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" KEY_A CRLF
    "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:" KEY_B CRLF;

/* Linphone: opus, speex WB/NB with fmtp, G729 without rtpmap, three telephone-events, video. */
static const char linphone[] =
    "v=0" CRLF "o=alice 3012 1860 IN IP4 192.168.0.20" CRLF "s=Talk" CRLF
    "c=IN IP4 192.168.0.20" CRLF "t=0 0" CRLF
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics" CRLF
    "m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100" CRLF "a=rtpmap:96 opus/48000/2" CRLF
    "a=fmtp:96 useinbandfec=1" CRLF "a=rtpmap:97 speex/16000" CRLF "a=fmtp:97 vbr=on" CRLF
    "a=rtpmap:98 speex/8000" CRLF "a=fmtp:98 vbr=on" CRLF "a=fmtp:18 annexb=yes" CRLF
    "a=rtpmap:101 telephone-event/48000" CRLF "a=rtpmap:99 telephone-event/16000" CRLF
    "a=rtpmap:100 telephone-event/8000" CRLF "a=rtcp-fb:* trr-int 1000" CRLF
    "m=video 9078 RTP/AVP 96" CRLF "a=rtpmap:96 VP8/90000" CRLF "a=rtcp-fb:* trr-int 1000" CRLF;

/* Video first, audio second, media-level c= overriding the session one, IPv6. */
static const char video_first_v6[] =
    "v=0" CRLF "o=- 1 1 IN IP6 2001:db8::1" CRLF "s=-" CRLF "c=IN IP6 2001:db8::1" CRLF "t=0 0" CRLF
    "m=video 5006 RTP/AVP 34" CRLF "m=audio 5004 RTP/AVP 8 0" CRLF "c=IN IP6 2001:db8::2" CRLF;

static void test_parse_sipp(void)
{
	struct sdp_media_desc d;

	CHECK_EQ_INT(parse(sipp_uac, &d), 0);
	CHECK_EQ_STR(d.addr, "127.0.0.1");
	CHECK_EQ_INT(d.port, 6000);
	CHECK_EQ_INT(d.dir, SDP_DIR_SENDRECV);
	CHECK(!d.srtp);
	CHECK_EQ_INT(d.n_codecs, 1);
	CHECK_EQ_INT(d.codecs[0].pt, 0);
	CHECK_EQ_STR(d.codecs[0].name, "PCMU");
	CHECK_EQ_INT(d.codecs[0].rate, 8000);
	CHECK_EQ_INT(d.codecs[0].channels, 1);
	CHECK_EQ_INT(d.te_pt, -1);
	CHECK_EQ_STR(d.origin_user, "user1");
	CHECK(d.sess_id == 53655765u);
	CHECK(d.sess_version == 2353687637u);
	CHECK_EQ_INT(d.n_mlines, 1);
	CHECK_EQ_INT(d.audio_index, 0);
	CHECK(!sdp_is_hold(&d));
}

static void test_parse_asterisk(void)
{
	struct sdp_media_desc d;

	CHECK_EQ_INT(parse(asterisk, &d), 0);
	CHECK_EQ_INT(d.n_codecs, 3);
	CHECK_EQ_STR(d.codecs[2].name, "GSM");
	CHECK_EQ_INT(d.te_pt, 101);
	CHECK_EQ_INT(d.te_rate, 8000);
	CHECK_EQ_STR(d.te_fmtp, "0-16");
	CHECK_EQ_INT(d.ptime, 20);

	/* chan_sip: no rtpmap for the static types, LF only */
	CHECK_EQ_INT(parse(asterisk_chan_sip, &d), 0);
	CHECK_EQ_INT(d.n_codecs, 3);
	CHECK_EQ_STR(d.codecs[0].name, "PCMA");
	CHECK_EQ_INT(d.codecs[0].rate, 8000);
	CHECK_EQ_STR(d.codecs[1].name, "PCMU");
	CHECK_EQ_STR(d.codecs[2].name, "G722");
	CHECK_EQ_INT(d.codecs[2].rate, 8000); /* RFC 3551's historic G.722 clock */
	CHECK_EQ_INT(d.te_pt, 101);
}

static void test_parse_freeswitch(void)
{
	struct sdp_media_desc d;

	CHECK_EQ_INT(parse(freeswitch, &d), 0);
	CHECK_EQ_INT(d.n_codecs, 5); /* opus G722 PCMU PCMA CN; events apart */
	CHECK_EQ_STR(d.codecs[0].name, "opus");
	CHECK_EQ_INT(d.codecs[0].channels, 2);
	CHECK_EQ_INT(d.codecs[0].rate, 48000);
	CHECK(strstr(d.codecs[0].fmtp, "useinbandfec=1") != NULL);
	CHECK_EQ_STR(d.codecs[4].name, "CN");
	CHECK_EQ_INT(d.te_pt, 101); /* the 8000 Hz one wins over 103 at 48000 */
	CHECK_EQ_INT(d.te_rate, 8000);
}

static void test_parse_srtp_two_crypto(void)
{
	struct sdp_media_desc d;

	CHECK_EQ_INT(parse(freeswitch_srtp, &d), 0);
	CHECK(d.srtp);
	CHECK_EQ_INT(d.n_crypto, 3);
	CHECK_EQ_INT(d.crypto[0].suite, SDP_SUITE_UNKNOWN);
	CHECK_EQ_INT(d.crypto[1].tag, 2);
	CHECK_EQ_INT(d.crypto[1].suite, SDP_SUITE_AES_CM_128_HMAC_SHA1_80);
	CHECK_EQ_INT(d.crypto[2].suite, SDP_SUITE_AES_CM_128_HMAC_SHA1_32);
	CHECK_EQ_INT(d.crypto[1].key[0], '='); /* "PS1u" -> 0x3d 0x2d 0x6e */
	CHECK_EQ_INT(d.crypto[1].key[1], '-');
	CHECK_EQ_INT(d.crypto[2].lifetime, 0);
	CHECK_EQ_INT(d.crypto[2].mki_len, 0);
}

static void test_parse_linphone(void)
{
	struct sdp_media_desc d;

	CHECK_EQ_INT(parse(linphone, &d), 0);
	CHECK_EQ_INT(d.n_codecs, 6);
	CHECK_EQ_STR(d.codecs[1].name, "speex");
	CHECK_EQ_INT(d.codecs[1].pt, 97);
	CHECK_EQ_INT(d.codecs[1].rate, 16000);
	CHECK_EQ_STR(d.codecs[1].fmtp, "vbr=on");
	CHECK_EQ_STR(d.codecs[5].name, "G729");
	CHECK_EQ_STR(d.codecs[5].fmtp, "annexb=yes");
	CHECK_EQ_INT(d.te_pt, 100);
	CHECK_EQ_INT(d.te_rate, 8000);
	CHECK_EQ_INT(d.n_mlines, 2);
	CHECK_EQ_INT(d.audio_index, 0);
	CHECK_EQ_STR(d.mlines[1].media, "video");
	CHECK_EQ_STR(d.mlines[1].proto, "RTP/AVP");
	CHECK_EQ_STR(d.mlines[1].fmt, "96");
}

static void test_parse_video_first_ipv6(void)
{
	struct sdp_media_desc d;

	CHECK_EQ_INT(parse(video_first_v6, &d), 0);
	CHECK_EQ_INT(d.n_mlines, 2);
	CHECK_EQ_INT(d.audio_index, 1);
	CHECK_EQ_STR(d.addr, "2001:db8::2");
	CHECK_EQ_INT(d.port, 5004);
	CHECK_EQ_INT(d.n_codecs, 2);
	CHECK_EQ_STR(d.codecs[0].name, "PCMA");
	CHECK_EQ_STR(d.mlines[0].media, "video");
	CHECK_EQ_STR(d.mlines[0].fmt, "34");
}

static void test_parse_directions(void)
{
	static const char base[] = "v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
				   "c=IN IP4 %s" CRLF "t=0 0" CRLF "%s"
				   "m=audio 4000 RTP/AVP 0" CRLF "%s";
	static const struct {
		const char *addr, *session, *media;
		enum sdp_dir dir;
		bool hold;
	} cases[] = {
	    {"192.0.2.1", "", "", SDP_DIR_SENDRECV, false},
	    {"192.0.2.1", "", "a=sendonly" CRLF, SDP_DIR_SENDONLY, true},
	    {"192.0.2.1", "", "a=recvonly" CRLF, SDP_DIR_RECVONLY, false},
	    {"192.0.2.1", "", "a=inactive" CRLF, SDP_DIR_INACTIVE, true},
	    {"192.0.2.1", "a=sendonly" CRLF, "", SDP_DIR_SENDONLY, true}, /* session level */
	    {"192.0.2.1", "a=inactive" CRLF, "a=sendrecv" CRLF, SDP_DIR_SENDRECV, false},
	    {"0.0.0.0", "", "", SDP_DIR_SENDONLY, true}, /* RFC 2543 hold */
	    {"0.0.0.0", "", "a=recvonly" CRLF, SDP_DIR_INACTIVE, true},
	};
	char text[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sdp_media_desc d;

		snprintf(text, sizeof(text), base, cases[i].addr, cases[i].session, cases[i].media);
		CHECK_EQ_INT(parse(text, &d), 0);
		CHECK_EQ_INT(d.dir, cases[i].dir);
		CHECK_EQ_INT(sdp_is_hold(&d), cases[i].hold);
	}
}

static void test_parse_declined_and_fallbacks(void)
{
	struct sdp_media_desc d;

	/* only a declined audio line: success, port 0 */
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "t=0 0" CRLF
			   "m=audio 0 RTP/AVP 0" CRLF,
			   &d),
		     0);
	CHECK_EQ_INT(d.port, 0);
	/* a declined audio line then a live one: the live one */
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			   "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 0 RTP/SAVP 0" CRLF
			   "m=audio 4002 RTP/AVP 8" CRLF,
			   &d),
		     0);
	CHECK_EQ_INT(d.port, 4002);
	CHECK_EQ_INT(d.audio_index, 1);
	CHECK_EQ_STR(d.mlines[0].proto, "RTP/SAVP");
	/* WebRTC-style audio only: unsupported transport */
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			   "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF
			   "m=audio 9 UDP/TLS/RTP/SAVPF 111" CRLF "a=rtpmap:111 opus/48000/2" CRLF,
			   &d),
		     -EPROTONOSUPPORT);
	CHECK(strstr(why, "UDP/TLS/RTP/SAVPF") != NULL);
	/* SAVPF first, plain RTP/AVP second (best-effort SRTP): take the second */
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			   "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 9 RTP/SAVPF 0" CRLF
			   "m=audio 4004 RTP/AVP 0" CRLF,
			   &d),
		     0);
	CHECK_EQ_INT(d.port, 4004);
}

/* --- round trips ----------------------------------------------------------------------------- */

static void test_round_trip(void)
{
	struct sdp_media_desc d, back;
	struct buf b = {0};
	char *text;

	sdp_desc_init(&d);
	strcpy(d.addr, "203.0.113.9");
	d.port = 30000;
	d.dir = SDP_DIR_SENDONLY;
	d.ptime = 20;
	d.n_codecs = 3;
	d.codecs[0] =
	    (struct sdp_codec){.pt = 96, .rate = 16000, .name = "speex", .fmtp = "vbr=on"};
	d.codecs[1] = (struct sdp_codec){.pt = 0, .rate = 8000, .name = "PCMU"};
	d.codecs[2] = (struct sdp_codec){.pt = 111, .rate = 48000, .channels = 2, .name = "opus"};
	d.te_pt = 101;
	d.te_rate = 8000;
	strcpy(d.te_fmtp, "0-16");
	d.srtp = true;
	d.n_crypto = 2;
	d.crypto[0] = (struct sdp_crypto){.tag = 1, .suite = SDP_SUITE_AES_CM_128_HMAC_SHA1_80};
	d.crypto[1] = (struct sdp_crypto){
	    .tag = 7, .suite = SDP_SUITE_AES_CM_128_HMAC_SHA1_32, .lifetime = 1ull << 31};
	for (int i = 0; i < SDP_SRTP_KEY_LEN; i++) {
		d.crypto[0].key[i] = (uint8_t)i;
		d.crypto[1].key[i] = (uint8_t)(255 - i);
	}
	d.n_mlines = 3;
	d.audio_index = 1;
	d.mlines[0] = (struct sdp_mline){.media = "video", .proto = "RTP/AVP", .fmt = "34"};
	d.mlines[2] = (struct sdp_mline){.media = "image", .proto = "udptl", .fmt = "t38"};

	CHECK_EQ_INT(sdp_build(&b, &d, "rtmp2sip", 42, 7), 0);
	text = text_of(&b);
	CHECK(strstr(text, "v=0\r\no=rtmp2sip 42 7 IN IP4 203.0.113.9\r\n") == text);
	CHECK(strstr(text, "\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n") != NULL);
	CHECK(strstr(text, "\r\nm=video 0 RTP/AVP 34\r\nm=audio 30000 RTP/SAVP 96 0 111 101\r\n"));
	CHECK(strstr(text, "\r\na=rtpmap:0 PCMU/8000\r\n") != NULL); /* static ones too */
	CHECK(strstr(text, "\r\na=rtpmap:111 opus/48000/2\r\n") != NULL);
	CHECK(strstr(text, "\r\na=fmtp:96 vbr=on\r\n") != NULL);
	CHECK(strstr(text, "\r\na=fmtp:101 0-16\r\n") != NULL);
	CHECK(strstr(text, "\r\na=ptime:20\r\na=sendonly\r\n") != NULL);
	CHECK(strstr(text, "\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQF") != NULL);
	CHECK(strstr(text, "|2^31\r\n") != NULL);
	CHECK(strstr(text, "\r\nm=image 0 udptl t38\r\n") != NULL);
	CHECK(text[strlen(text) - 1] == '\n');

	CHECK_EQ_INT(sdp_parse_desc(text, strlen(text), &back, why, sizeof(why)), 0);
	CHECK_EQ_STR(back.addr, d.addr);
	CHECK_EQ_INT(back.port, d.port);
	CHECK_EQ_INT(back.dir, d.dir);
	CHECK(back.srtp);
	CHECK_EQ_INT(back.ptime, 20);
	CHECK_EQ_INT(back.n_codecs, 3);
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ_INT(back.codecs[i].pt, d.codecs[i].pt);
		CHECK_EQ_STR(back.codecs[i].name, d.codecs[i].name);
		CHECK_EQ_INT(back.codecs[i].rate, d.codecs[i].rate);
		CHECK_EQ_STR(back.codecs[i].fmtp, d.codecs[i].fmtp);
	}
	CHECK_EQ_INT(back.codecs[2].channels, 2);
	CHECK_EQ_INT(back.te_pt, 101);
	CHECK_EQ_INT(back.te_rate, 8000);
	CHECK_EQ_STR(back.te_fmtp, "0-16");
	CHECK_EQ_INT(back.n_crypto, 2);
	CHECK(memcmp(back.crypto[0].key, d.crypto[0].key, SDP_SRTP_KEY_LEN) == 0);
	CHECK(memcmp(back.crypto[1].key, d.crypto[1].key, SDP_SRTP_KEY_LEN) == 0);
	CHECK_EQ_INT(back.crypto[1].tag, 7);
	CHECK(back.crypto[1].lifetime == 1ull << 31);
	CHECK_EQ_INT(back.n_mlines, 3);
	CHECK_EQ_INT(back.audio_index, 1);
	CHECK_EQ_STR(back.mlines[2].fmt, "t38");
	CHECK_EQ_STR(back.origin_user, "rtmp2sip");
	CHECK(back.sess_id == 42 && back.sess_version == 7);
	free(text);

	/* IPv6, no origin user, a plain minimal description */
	sdp_desc_init(&d);
	strcpy(d.addr, "2001:db8::7");
	d.port = 5000;
	d.n_codecs = 1;
	d.codecs[0] = (struct sdp_codec){.pt = 8, .rate = 8000, .name = "PCMA"};
	buf_reset(&b);
	CHECK_EQ_INT(sdp_build(&b, &d, NULL, 1, 1), 0);
	text = text_of(&b);
	CHECK(strstr(text, "o=- 1 1 IN IP6 2001:db8::7\r\n") != NULL);
	CHECK(strstr(text, "c=IN IP6 2001:db8::7\r\n") != NULL);
	CHECK(strstr(text, "m=audio 5000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"));
	CHECK_EQ_INT(sdp_parse_desc(text, strlen(text), &back, why, sizeof(why)), 0);
	CHECK_EQ_STR(back.addr, "2001:db8::7");
	CHECK_EQ_INT(back.ptime, 0);
	free(text);
	buf_free(&b);
}

static void test_build_refuses_bad_descs(void)
{
	struct sdp_media_desc d, ok;
	struct buf b = {0};

	sdp_desc_init(&ok);
	strcpy(ok.addr, "192.0.2.5");
	ok.port = 4000;
	ok.n_codecs = 1;
	ok.codecs[0] = (struct sdp_codec){.pt = 0, .rate = 8000, .name = "PCMU"};
	CHECK_EQ_INT(sdp_build(&b, &ok, "u", 1, 1), 0);
	buf_reset(&b);

	d = ok;
	strcpy(d.addr, "example.com");
	CHECK_EQ_INT(sdp_build(&b, &d, "u", 1, 1), -EINVAL);
	d = ok;
	strcpy(d.codecs[0].fmtp, "a\r\nm=video 1 RTP/AVP 0");
	CHECK_EQ_INT(sdp_build(&b, &d, "u", 1, 1), -EINVAL);
	d = ok;
	strcpy(d.codecs[0].name, "PC MU");
	CHECK_EQ_INT(sdp_build(&b, &d, "u", 1, 1), -EINVAL);
	d = ok;
	d.te_pt = 0; /* collides with PCMU */
	d.te_rate = 8000;
	CHECK_EQ_INT(sdp_build(&b, &d, "u", 1, 1), -EINVAL);
	d = ok;
	d.te_pt = 101; /* a zeroed te_rate: the desc was not initialised */
	CHECK_EQ_INT(sdp_build(&b, &d, "u", 1, 1), -EINVAL);
	d = ok;
	d.srtp = true; /* no crypto line */
	CHECK_EQ_INT(sdp_build(&b, &d, "u", 1, 1), -EINVAL);
	d = ok;
	d.n_codecs = 0;
	CHECK_EQ_INT(sdp_build(&b, &d, "u", 1, 1), -EINVAL);
	CHECK_EQ_INT(sdp_build(&b, &ok, "bad user", 1, 1), -EINVAL);
	d = ok;
	d.n_mlines = 2;
	d.audio_index = 2;
	CHECK_EQ_INT(sdp_build(&b, &d, "u", 1, 1), -EINVAL);
	CHECK_EQ_INT(buf_used(&b), 0); /* nothing appended on failure */
	buf_free(&b);
}

/* --- offer / answer -------------------------------------------------------------------------- */

static void test_answer_offerer_order_wins(void)
{
	struct codec_pref ours = prefs(true, 3, CODEC_SPEEX_WB, CODEC_PCMA, CODEC_PCMU);
	struct sdp_local local = local_v4(SDP_SRTP_OPTIONAL);
	struct sdp_media_desc offer, answer, back;
	struct sdp_choice ch;
	struct buf b = {0};
	char *text;

	/* Asterisk offers PCMU before PCMA: PCMU, although we prefer PCMA */
	CHECK_EQ_INT(parse(asterisk, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.codec == C(CODEC_PCMU));
	CHECK_EQ_INT(ch.pt, 0);
	CHECK_EQ_INT(ch.te_pt, 101);
	CHECK_EQ_INT(ch.te_rate, 8000);
	CHECK_EQ_INT(ch.dir, SDP_DIR_SENDRECV);
	CHECK_EQ_STR(ch.remote_addr, "192.168.1.10");
	CHECK_EQ_INT(ch.remote_port, 17890);
	CHECK_EQ_INT(ch.remote_ptime, 20);
	CHECK(!ch.srtp);
	CHECK(!ch.hold);
	CHECK_EQ_INT(answer.n_codecs, 1);

	CHECK_EQ_INT(sdp_build(&b, &answer, "rtmp2sip", 5, 5), 0);
	text = text_of(&b);
	CHECK(strstr(text, "m=audio 40000 RTP/AVP 0 101\r\n") != NULL);
	CHECK(strstr(text, "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n") != NULL);
	CHECK(strstr(text, "a=ptime:20\r\n") != NULL);
	CHECK_EQ_INT(sdp_parse_desc(text, strlen(text), &back, why, sizeof(why)), 0);
	CHECK_EQ_STR(back.addr, "198.51.100.7");
	free(text);

	/* Linphone: opus unsupported, speex/16000 on its own PT 97; the video line echoed */
	CHECK_EQ_INT(parse(linphone, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.codec == C(CODEC_SPEEX_WB));
	CHECK_EQ_INT(ch.pt, 97);
	CHECK_EQ_INT(ch.recv_pt, 97);
	CHECK_EQ_INT(ch.te_pt, 100);
	buf_reset(&b);
	CHECK_EQ_INT(sdp_build(&b, &answer, "rtmp2sip", 5, 5), 0);
	text = text_of(&b);
	CHECK(strstr(text, "m=audio 40000 RTP/AVP 97 100\r\na=rtpmap:97 speex/16000\r\n") != NULL);
	CHECK(strstr(text, "\r\nm=video 0 RTP/AVP 96\r\n") != NULL);
	free(text);

	/* FreeSWITCH offers G722 first (unsupported), then PCMU */
	CHECK_EQ_INT(parse(freeswitch, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.codec == C(CODEC_PCMU));
	CHECK_EQ_INT(ch.te_pt, 101);
	buf_free(&b);
}

/* Opus (RFC 7587: opus/48000/2, fmtp) and G.722 (16 kHz audio on an 8,000 clock). */
static void test_opus_and_g722(void)
{
	struct codec_pref ours = prefs(true, 3, CODEC_OPUS, CODEC_G722, CODEC_PCMU);
	struct sdp_local local = local_v4(SDP_SRTP_OFF);
	struct sdp_media_desc offer, answer;
	struct sdp_choice ch;
	struct buf b = {0};
	char *text;

	/* FreeSWITCH offers opus first, with its fmtp: we answer opus on its PT, and keep the fmtp
	 * for the worker's encoder */
	CHECK_EQ_INT(parse(freeswitch, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.codec == C(CODEC_OPUS));
	CHECK_EQ_INT(ch.pt, 102);
	CHECK(strstr(ch.fmtp, "maxaveragebitrate=30000") != NULL);
	CHECK_EQ_INT(sdp_build(&b, &answer, "rtmp2sip", 5, 5), 0);
	text = text_of(&b);
	CHECK(strstr(text, "a=rtpmap:102 opus/48000/2\r\n") != NULL);
	CHECK(strstr(text, "a=fmtp:102 minptime=10;useinbandfec=1;stereo=0\r\n") != NULL);
	free(text);

	/* without opus on our side: G.722 on its static PT */
	ours = prefs(true, 2, CODEC_G722, CODEC_PCMU);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.codec == C(CODEC_G722));
	CHECK_EQ_INT(ch.pt, 9);
	CHECK_EQ_STR(ch.fmtp, "");

	/* an opus line that is not two-channel is not RFC 7587 opus: not chosen */
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			   "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 4000 RTP/AVP 96 0" CRLF
			   "a=rtpmap:96 opus/48000" CRLF,
			   &offer),
		     0);
	ours = prefs(true, 2, CODEC_OPUS, CODEC_PCMU);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.codec == C(CODEC_PCMU));

	/* our offer: opus/48000/2 with its fmtp, G722 on 9 */
	ours = prefs(true, 2, CODEC_OPUS, CODEC_G722);
	CHECK_EQ_INT(sdp_make_offer(&ours, &local, &offer, why, sizeof(why)), 0);
	buf_reset(&b);
	CHECK_EQ_INT(sdp_build(&b, &offer, "rtmp2sip", 100, 1), 0);
	text = text_of(&b);
	CHECK(strstr(text, "m=audio 40000 RTP/AVP 111 9 101\r\n") != NULL);
	CHECK(strstr(text, "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1;"
			   "stereo=0\r\n") != NULL);
	CHECK(strstr(text, "a=rtpmap:9 G722/8000\r\n") != NULL);
	free(text);
	buf_free(&b);

	/* a peer answering opus on its own PT, asking for DTX: the choice carries its fmtp */
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			   "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 4000 RTP/AVP 107" CRLF
			   "a=rtpmap:107 opus/48000/2" CRLF "a=fmtp:107 usedtx=1;useinbandfec=1" CRLF,
			   &answer),
		     0);
	CHECK_EQ_INT(sdp_process_answer(&offer, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.codec == C(CODEC_OPUS));
	CHECK_EQ_INT(ch.pt, 107);
	CHECK_EQ_INT(ch.recv_pt, 111);
	CHECK_EQ_STR(ch.fmtp, "usedtx=1;useinbandfec=1");
}

/* The two steps: the choice, made once with no address or key, is what the answer states. */
static void test_choose_then_answer(void)
{
	static const char *const offers[] = {sipp_uac,	      asterisk, freeswitch,
					     freeswitch_srtp, linphone, video_first_v6};
	struct codec_pref ours = prefs(true, 3, CODEC_SPEEX_WB, CODEC_PCMA, CODEC_PCMU);
	struct sdp_local local = local_v4(SDP_SRTP_OPTIONAL);
	struct sdp_media_desc offer, a1, a2;
	struct sdp_choice ch1, ch2;
	struct buf b1 = {0}, b2 = {0};

	for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
		CHECK_EQ_INT(sdp_parse_desc(offers[i], strlen(offers[i]), &offer, why, sizeof(why)),
			     0);
		CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &a1, &ch1, why, sizeof(why)), 0);
		CHECK_EQ_INT(sdp_choose(&offer, &ours, SDP_SRTP_OPTIONAL, &ch2, why, sizeof(why)),
			     0);
		CHECK(ch2.codec == ch1.codec);
		CHECK_EQ_INT(ch2.pt, ch1.pt);
		CHECK_EQ_INT(ch2.te_pt, ch1.te_pt);
		CHECK_EQ_INT(ch2.srtp, ch1.srtp);
		CHECK_EQ_STR(ch2.remote_addr, ch1.remote_addr);
		CHECK(!ch2.video.on);
		CHECK_EQ_INT(sdp_answer_choice(&offer, &ours, &local, &ch2, &a2, why, sizeof(why)),
			     0);
		CHECK_EQ_INT(memcmp(&ch1, &ch2, sizeof(ch1)), 0);
		buf_reset(&b1);
		buf_reset(&b2);
		CHECK_EQ_INT(sdp_build(&b1, &a1, "rtmp2sip", 5, 5), 0);
		CHECK_EQ_INT(sdp_build(&b2, &a2, "rtmp2sip", 5, 5), 0);
		CHECK_EQ_INT(buf_used(&b1), buf_used(&b2));
		CHECK_EQ_INT(memcmp(b1.data, b2.data, buf_used(&b1)), 0);
	}
	buf_free(&b1);
	buf_free(&b2);

	/* The policy alone decides SRTP: required refuses plain, off refuses RTP/SAVP */
	CHECK_EQ_INT(parse(asterisk, &offer), 0);
	CHECK_EQ_INT(sdp_choose(&offer, &ours, SDP_SRTP_REQUIRED, &ch2, why, sizeof(why)),
		     -ENOTSUP);
	CHECK(strstr(why, "SRTP is required") != NULL);
	CHECK(ch2.codec == NULL);
	CHECK_EQ_INT(parse(freeswitch_srtp, &offer), 0);
	CHECK_EQ_INT(sdp_choose(&offer, &ours, SDP_SRTP_OFF, &ch2, why, sizeof(why)), -ENOTSUP);
	CHECK_EQ_INT(sdp_choose(&offer, &ours, (enum sdp_srtp_policy)7, &ch2, why, sizeof(why)),
		     -EINVAL);
	/* An SRTP choice cannot be stated by a plain local side, nor a choice never made */
	CHECK_EQ_INT(sdp_choose(&offer, &ours, SDP_SRTP_OPTIONAL, &ch2, why, sizeof(why)), 0);
	CHECK(ch2.srtp);
	local = local_v4(SDP_SRTP_OFF);
	CHECK_EQ_INT(sdp_answer_choice(&offer, &ours, &local, &ch2, &a2, why, sizeof(why)),
		     -EINVAL);
	local = local_v4(SDP_SRTP_OPTIONAL);
	memset(&ch2, 0, sizeof(ch2));
	CHECK_EQ_INT(sdp_answer_choice(&offer, &ours, &local, &ch2, &a2, why, sizeof(why)),
		     -EINVAL);
	/* No common codec: refused before any media exists, with what was offered */
	ours = prefs(true, 1, CODEC_SPEEX_NB);
	CHECK_EQ_INT(parse(asterisk, &offer), 0);
	CHECK_EQ_INT(sdp_choose(&offer, &ours, SDP_SRTP_OPTIONAL, &ch2, why, sizeof(why)),
		     -ENOTSUP);
	CHECK(strstr(why, "no common codec") != NULL);
}

static void test_answer_no_common_codec(void)
{
	struct codec_pref ours = prefs(true, 1, CODEC_SPEEX_WB);
	struct sdp_local local = local_v4(SDP_SRTP_OFF);
	struct sdp_media_desc offer, answer;
	struct sdp_choice ch;

	CHECK_EQ_INT(parse(asterisk, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), -ENOTSUP);
	CHECK(strstr(why, "no common codec") != NULL);
	CHECK(strstr(why, "GSM/8000") != NULL);
	CHECK(strstr(why, "speex/16000") != NULL);
	CHECK(ch.codec == NULL);

	/* telephone-event alone is not a codec */
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			   "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 4000 RTP/AVP 101" CRLF
			   "a=rtpmap:101 telephone-event/8000" CRLF,
			   &offer),
		     0);
	ours = prefs(true, 2, CODEC_PCMU, CODEC_PCMA);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), -ENOTSUP);

	/* declined audio */
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "t=0 0" CRLF
			   "m=audio 0 RTP/AVP 0" CRLF,
			   &offer),
		     0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), -ENOTSUP);

	/* no local address: a caller error */
	local.addr = "not-an-ip";
	CHECK_EQ_INT(parse(sipp_uac, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), -EINVAL);
}

static void test_answer_dtmf_and_direction(void)
{
	struct codec_pref ours = prefs(false, 2, CODEC_PCMU, CODEC_PCMA);
	struct sdp_local local = local_v4(SDP_SRTP_OFF);
	struct sdp_media_desc offer, answer;
	struct sdp_choice ch;
	char text[512];

	/* no dtmf in our preferences: telephone-event dropped */
	CHECK_EQ_INT(parse(asterisk, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	CHECK_EQ_INT(answer.te_pt, -1);
	CHECK_EQ_INT(ch.te_pt, -1);

	/* telephone-event only at 48000: not kept (the codec table knows 8000) */
	ours.dtmf = true;
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			   "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 4000 RTP/AVP 0 110" CRLF
			   "a=rtpmap:110 telephone-event/48000" CRLF,
			   &offer),
		     0);
	CHECK_EQ_INT(offer.te_pt, 110);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	CHECK_EQ_INT(ch.te_pt, -1);

	static const struct {
		const char *attr;
		enum sdp_dir local, answer;
		bool hold;
	} cases[] = {
	    {"a=sendrecv", SDP_DIR_SENDRECV, SDP_DIR_SENDRECV, false},
	    {"a=sendonly", SDP_DIR_SENDRECV, SDP_DIR_RECVONLY, true},
	    {"a=recvonly", SDP_DIR_SENDRECV, SDP_DIR_SENDONLY, false},
	    {"a=inactive", SDP_DIR_SENDRECV, SDP_DIR_INACTIVE, true},
	    {"a=sendrecv", SDP_DIR_SENDONLY, SDP_DIR_SENDONLY, false}, /* we hold */
	    {"a=sendonly", SDP_DIR_SENDONLY, SDP_DIR_INACTIVE, true},  /* both hold */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
			 "v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			 "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 4000 RTP/AVP 0" CRLF
			 "%s" CRLF,
			 cases[i].attr);
		CHECK_EQ_INT(parse(text, &offer), 0);
		local.dir = cases[i].local;
		CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
		CHECK_EQ_INT(answer.dir, cases[i].answer);
		CHECK_EQ_INT(ch.dir, cases[i].answer);
		CHECK_EQ_INT(ch.hold, cases[i].hold);
	}
}

static void test_answer_srtp(void)
{
	struct codec_pref ours = prefs(true, 2, CODEC_PCMU, CODEC_PCMA);
	struct sdp_local local = local_v4(SDP_SRTP_OPTIONAL);
	struct sdp_media_desc offer, answer, back;
	struct sdp_choice ch;
	struct buf b = {0};
	char *text;

	CHECK_EQ_INT(parse(freeswitch_srtp, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.srtp);
	CHECK_EQ_INT(ch.crypto_tag, 2); /* tag 1 is AES_256: skipped */
	CHECK_EQ_INT(ch.suite, SDP_SUITE_AES_CM_128_HMAC_SHA1_80);
	CHECK(memcmp(ch.remote_key, offer.crypto[1].key, SDP_SRTP_KEY_LEN) == 0);
	CHECK(answer.srtp);
	CHECK_EQ_INT(answer.n_crypto, 1);
	CHECK_EQ_INT(answer.crypto[0].tag, 2);
	CHECK(memcmp(answer.crypto[0].key, our_key, SDP_SRTP_KEY_LEN) == 0);
	CHECK_EQ_INT(sdp_build(&b, &answer, NULL, 9, 9), 0);
	text = text_of(&b);
	CHECK(strstr(text, "m=audio 40000 RTP/SAVP 0 101\r\n") != NULL);
	CHECK(strstr(text, "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:") != NULL);
	CHECK(strstr(text, KEY_A) == NULL); /* our key, not theirs */
	CHECK_EQ_INT(sdp_parse_desc(text, strlen(text), &back, why, sizeof(why)), 0);
	CHECK(memcmp(back.crypto[0].key, our_key, SDP_SRTP_KEY_LEN) == 0);
	free(text);
	buf_free(&b);

	/* plain offer, SRTP required: refused */
	local.srtp = SDP_SRTP_REQUIRED;
	CHECK_EQ_INT(parse(asterisk, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), -ENOTSUP);
	CHECK(strstr(why, "SRTP is required") != NULL);

	/* SRTP offer, SRTP off: refused */
	local.srtp = SDP_SRTP_OFF;
	CHECK_EQ_INT(parse(freeswitch_srtp, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), -ENOTSUP);

	/* only crypto lines we cannot honour: MKI, short lifetime, session parameters */
	local.srtp = SDP_SRTP_OPTIONAL;
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			   "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 4000 RTP/SAVP 0" CRLF
			   "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY_A "|2^20|1:4" CRLF
			   "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" KEY_B "|2^10" CRLF
			   "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:" KEY_B
			   " UNENCRYPTED_SRTCP" CRLF,
			   &offer),
		     0);
	CHECK_EQ_INT(offer.crypto[0].mki, 1);
	CHECK_EQ_INT(offer.crypto[0].mki_len, 4);
	CHECK(offer.crypto[0].lifetime == 1u << 20);
	CHECK(offer.crypto[2].extra);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), -ENOTSUP);
	CHECK(strstr(why, "MKI") != NULL);

	/* a long lifetime is fine */
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			   "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 4000 RTP/SAVP 8" CRLF
			   "a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:" KEY_B "|2^31" CRLF,
			   &offer),
		     0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	CHECK_EQ_INT(ch.crypto_tag, 5);
	CHECK_EQ_INT(ch.suite, SDP_SUITE_AES_CM_128_HMAC_SHA1_32);
	CHECK(ch.codec == C(CODEC_PCMA));

	/* SRTP allowed but no key: caller error */
	local.key = NULL;
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), -EINVAL);
}

static void test_offer_and_process_answer(void)
{
	struct codec_pref ours = prefs(true, 3, CODEC_SPEEX_WB, CODEC_PCMU, CODEC_PCMA);
	struct sdp_local local = local_v4(SDP_SRTP_OFF);
	struct sdp_media_desc offer, answer;
	struct sdp_choice ch;
	struct buf b = {0};
	char *text;

	CHECK_EQ_INT(sdp_make_offer(&ours, &local, &offer, why, sizeof(why)), 0);
	CHECK_EQ_INT(sdp_build(&b, &offer, "rtmp2sip", 100, 1), 0);
	text = text_of(&b);
	CHECK(strstr(text, "m=audio 40000 RTP/AVP 96 0 8 101\r\n") != NULL);
	CHECK(strstr(text, "a=rtpmap:96 speex/16000\r\n") != NULL);
	CHECK(strstr(text, "a=rtpmap:0 PCMU/8000\r\n") != NULL);
	CHECK(strstr(text, "a=rtpmap:8 PCMA/8000\r\n") != NULL);
	CHECK(strstr(text, "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n") != NULL);
	free(text);
	buf_free(&b);

	/* SIPp's uas answers PCMU */
	CHECK_EQ_INT(parse(sipp_uac, &answer), 0);
	CHECK_EQ_INT(sdp_process_answer(&offer, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.codec == C(CODEC_PCMU));
	CHECK_EQ_INT(ch.pt, 0);
	CHECK_EQ_INT(ch.te_pt, -1); /* not in the answer */
	CHECK_EQ_STR(ch.remote_addr, "127.0.0.1");
	CHECK_EQ_INT(ch.remote_port, 6000);
	CHECK_EQ_INT(ch.dir, SDP_DIR_SENDRECV);
	{
		struct wire_codec wc;

		sdp_choice_wire_codec(&ch, &wc);
		CHECK_EQ_INT(wc.pt, 0);
		CHECK_EQ_INT(wc.rate, 8000);
		CHECK_EQ_INT(wc.channels, 1);
		CHECK_EQ_STR(wc.name, "PCMU");
	}

	/* speex/16000 answered on another dynamic PT, with telephone-event on 100 */
	CHECK_EQ_INT(parse("v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			   "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 4000 RTP/AVP 97 100" CRLF
			   "a=rtpmap:97 SPEEX/16000" CRLF "a=rtpmap:100 telephone-event/8000" CRLF
			   "a=recvonly" CRLF,
			   &answer),
		     0);
	CHECK_EQ_INT(sdp_process_answer(&offer, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.codec == C(CODEC_SPEEX_WB));
	CHECK_EQ_INT(ch.pt, 97);
	CHECK_EQ_INT(ch.recv_pt, 96);
	CHECK_EQ_INT(ch.te_pt, 100);
	CHECK_EQ_INT(ch.te_recv_pt, 101);
	CHECK_EQ_INT(ch.dir, SDP_DIR_SENDONLY);

	/* a codec we did not offer */
	CHECK_EQ_INT(parse(asterisk_chan_sip, &answer), 0);
	answer.codecs[0] = (struct sdp_codec){.pt = 18, .rate = 8000, .name = "G729"};
	answer.n_codecs = 1;
	CHECK_EQ_INT(sdp_process_answer(&offer, &answer, &ch, why, sizeof(why)), -EPROTO);
	CHECK(strstr(why, "G729/8000") != NULL);

	/* declined */
	answer.port = 0;
	CHECK_EQ_INT(sdp_process_answer(&offer, &answer, &ch, why, sizeof(why)), -ECONNREFUSED);

	/* an SRTP answer to a plain offer */
	CHECK_EQ_INT(parse(freeswitch_srtp, &answer), 0);
	CHECK_EQ_INT(sdp_process_answer(&offer, &answer, &ch, why, sizeof(why)), -EPROTO);

	/* no codec at all to offer */
	ours.n = 0;
	CHECK_EQ_INT(sdp_make_offer(&ours, &local, &offer, why, sizeof(why)), -EINVAL);
}

static void test_offer_srtp_and_answer(void)
{
	struct codec_pref ours = prefs(false, 1, CODEC_PCMU);
	struct sdp_local local = local_v4(SDP_SRTP_REQUIRED);
	struct sdp_media_desc offer, answer;
	struct sdp_choice ch;
	struct buf b = {0};
	char text[1024];

	CHECK_EQ_INT(sdp_make_offer(&ours, &local, &offer, why, sizeof(why)), 0);
	CHECK(offer.srtp);
	CHECK_EQ_INT(offer.n_crypto, 1);
	CHECK_EQ_INT(sdp_build(&b, &offer, NULL, 1, 1), 0);
	CHECK(memmem(buf_head(&b), buf_used(&b), "RTP/SAVP 0\r\n", 12) != NULL);
	buf_free(&b);

	snprintf(text, sizeof(text),
		 "v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "c=IN IP4 192.0.2.1" CRLF
		 "t=0 0" CRLF "m=audio 4000 RTP/SAVP 0" CRLF
		 "a=crypto:%d AES_CM_128_HMAC_SHA1_%d inline:" KEY_B CRLF,
		 1, 80);
	CHECK_EQ_INT(parse(text, &answer), 0);
	CHECK_EQ_INT(sdp_process_answer(&offer, &answer, &ch, why, sizeof(why)), 0);
	CHECK(ch.srtp);
	CHECK_EQ_INT(ch.crypto_tag, 1);
	CHECK(memcmp(ch.remote_key, answer.crypto[0].key, SDP_SRTP_KEY_LEN) == 0);

	snprintf(text, sizeof(text),
		 "v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "c=IN IP4 192.0.2.1" CRLF
		 "t=0 0" CRLF "m=audio 4000 RTP/SAVP 0" CRLF
		 "a=crypto:%d AES_CM_128_HMAC_SHA1_%d inline:" KEY_B CRLF,
		 9, 80); /* unknown tag */
	CHECK_EQ_INT(parse(text, &answer), 0);
	CHECK_EQ_INT(sdp_process_answer(&offer, &answer, &ch, why, sizeof(why)), -EPROTO);
	snprintf(text, sizeof(text),
		 "v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "c=IN IP4 192.0.2.1" CRLF
		 "t=0 0" CRLF "m=audio 4000 RTP/SAVP 0" CRLF
		 "a=crypto:%d AES_CM_128_HMAC_SHA1_%d inline:" KEY_B CRLF,
		 1, 32); /* suite changed */
	CHECK_EQ_INT(parse(text, &answer), 0);
	CHECK_EQ_INT(sdp_process_answer(&offer, &answer, &ch, why, sizeof(why)), -EPROTO);
	CHECK_EQ_INT(parse(sipp_uac, &answer), 0); /* plain answer to an SRTP offer */
	CHECK_EQ_INT(sdp_process_answer(&offer, &answer, &ch, why, sizeof(why)), -EPROTO);
}

/* --- hold ------------------------------------------------------------------------------------ */

static void test_hold_reoffer(void)
{
	struct codec_pref ours = prefs(true, 1, CODEC_PCMU);
	struct sdp_local local = local_v4(SDP_SRTP_OFF);
	struct sdp_media_desc offer, answer, back;
	struct sdp_choice ch;
	struct buf b = {0};
	char *text;

	CHECK_EQ_INT(parse(linphone, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &ours, &local, &answer, &ch, why, sizeof(why)), 0);
	answer.sess_id = 77;
	answer.sess_version = 3;

	CHECK_EQ_INT(sdp_build_reoffer(&b, &answer, true, "rtmp2sip"), 0);
	CHECK_EQ_INT(answer.dir, SDP_DIR_SENDONLY);
	CHECK(answer.sess_version == 4);
	text = text_of(&b);
	CHECK(strstr(text, "o=rtmp2sip 77 4 IN IP4") != NULL);
	CHECK(strstr(text, "a=sendonly\r\n") != NULL);
	CHECK(strstr(text, "\r\nm=video 0 RTP/AVP 96\r\n") != NULL); /* layout kept */
	CHECK_EQ_INT(sdp_parse_desc(text, strlen(text), &back, why, sizeof(why)), 0);
	CHECK(sdp_is_hold(&back));
	CHECK(back.sess_version == 4);
	free(text);

	buf_reset(&b);
	CHECK_EQ_INT(sdp_build_reoffer(&b, &answer, false, "rtmp2sip"), 0);
	CHECK_EQ_INT(answer.dir, SDP_DIR_SENDRECV);
	CHECK(answer.sess_version == 5);
	text = text_of(&b);
	CHECK(strstr(text, "o=rtmp2sip 77 5 IN IP4") != NULL);
	CHECK(strstr(text, "a=sendrecv\r\n") != NULL);
	free(text);

	/* the peer holds us (we answered recvonly), then we hold too: inactive; resume: recvonly */
	answer.dir = SDP_DIR_RECVONLY;
	buf_reset(&b);
	CHECK_EQ_INT(sdp_build_reoffer(&b, &answer, true, NULL), 0);
	CHECK_EQ_INT(answer.dir, SDP_DIR_INACTIVE);
	CHECK_EQ_INT(sdp_build_reoffer(&b, &answer, false, NULL), 0);
	CHECK_EQ_INT(answer.dir, SDP_DIR_RECVONLY);

	/* a failing build leaves the description alone */
	answer.addr[0] = '\0';
	answer.dir = SDP_DIR_SENDRECV;
	CHECK_EQ_INT(sdp_build_reoffer(&b, &answer, true, NULL), -EINVAL);
	CHECK_EQ_INT(answer.dir, SDP_DIR_SENDRECV);
	CHECK(answer.sess_version == 7);
	buf_free(&b);

	CHECK(!sdp_is_hold(NULL));
}

/* --- Flash codec tokens ---------------------------------------------------------------------- */

static void test_rtmp_tokens(void)
{
	static const char *const all[] = {"wideband", "narrowband", "PCMU", "ulaw", "pcma",
					  "alaw",     "dtmf",	    "h264", "flv",  NULL};
	static const char *const bad[] = {"wideband", "silk", "g729", "pcmu"};
	static const char *const hd[] = {"opus", "G722", "pcmu"};
	struct codec_pref p;

	CHECK_EQ_INT(sdp_prefs_from_rtmp(all, 10, &p, why, sizeof(why)), 0);
	CHECK_EQ_INT(p.n, 4);
	CHECK(p.codecs[0] == C(CODEC_SPEEX_WB));
	CHECK(p.codecs[1] == C(CODEC_SPEEX_NB));
	CHECK(p.codecs[2] == C(CODEC_PCMU)); /* ulaw folded into it */
	CHECK(p.codecs[3] == C(CODEC_PCMA));
	CHECK(p.dtmf);

	CHECK_EQ_INT(sdp_prefs_from_rtmp(bad, 4, &p, why, sizeof(why)), -EINVAL);
	CHECK_EQ_INT(p.n, 2);
	CHECK(!p.dtmf);
	CHECK(strstr(why, "\"silk\"") != NULL);
	CHECK(strstr(why, "\"g729\"") != NULL);

	CHECK_EQ_INT(sdp_prefs_from_rtmp(hd, 3, &p, why, sizeof(why)), 0);
	CHECK_EQ_INT(p.n, 3);
	CHECK(p.codecs[0] == C(CODEC_OPUS));
	CHECK(p.codecs[1] == C(CODEC_G722));

	CHECK_EQ_INT(sdp_prefs_from_rtmp(NULL, 0, &p, why, sizeof(why)), 0);
	CHECK_EQ_INT(p.n, 0);
	CHECK_EQ_STR(sdp_dir_name(SDP_DIR_INACTIVE), "inactive");
	CHECK_EQ_STR(sdp_dir_name((enum sdp_dir)9), "?");
	CHECK_EQ_STR(sdp_srtp_suite_name(SDP_SUITE_AES_CM_128_HMAC_SHA1_32),
		     "AES_CM_128_HMAC_SHA1_32");
	CHECK(sdp_srtp_suite_name(SDP_SUITE_UNKNOWN) == NULL);
}

/* --- malformed input ------------------------------------------------------------------------- */

#define HEAD                                                                                       \
	"v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "c=IN IP4 192.0.2.1" CRLF "t=0 "     \
	"0" CRLF

static void test_malformed(void)
{
	static const struct {
		const char *text;
		int err;
	} cases[] = {
	    {"", -EBADMSG},
	    {"hello", -EBADMSG},
	    {"v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "c=IN IP4 192.0.2.1", -ENOENT},
	    {HEAD "m=aud", -EBADMSG},
	    {HEAD "x" CRLF "m=audio 4000 RTP/AVP 0" CRLF, -EBADMSG}, /* CVE-2022-31003 shape */
	    {HEAD "m=audio 4000 RTP/AVP 0" CRLF "junk line" CRLF, -EBADMSG},
	    {HEAD "m=audio", -EBADMSG},
	    {HEAD "m=audio 4000", -EBADMSG},
	    {HEAD "m=audio 4000 RTP/AVP 0" CRLF "a=rtpmap:0", -EBADMSG},
	    {HEAD "m=audio 70000 RTP/AVP 0" CRLF, -EBADMSG},
	    {HEAD "m=audio 99999999999999999999999 RTP/AVP 0" CRLF, -EBADMSG},
	    {HEAD "m=audio -1 RTP/AVP 0" CRLF, -EBADMSG},
	    {HEAD "m=audio 4000 RTP/AVP 300" CRLF, -EBADMSG},
	    {HEAD "m=audio 4000/2 RTP/AVP 0" CRLF, -EPROTONOSUPPORT},
	    {HEAD "m=video 4000 RTP/AVP 34" CRLF, -ENOENT},
	    {HEAD, -ENOENT},
	    {"v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "t=0 0" CRLF
	     "m=audio 4000 RTP/AVP 0" CRLF,
	     -EBADMSG}, /* no c= */
	    {"v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "c=IN IP4 pbx.example.com" CRLF
	     "t=0 0" CRLF "m=audio 4000 RTP/AVP 0" CRLF,
	     -EBADMSG},
	    {"v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "c=IN IP6 192.0.2.1" CRLF
	     "t=0 0" CRLF "m=audio 4000 RTP/AVP 0" CRLF,
	     -EBADMSG},
	    {"v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "c=IN IP4 224.2.1.1/127" CRLF
	     "t=0 0" CRLF "m=audio 4000 RTP/AVP 0" CRLF,
	     -EPROTONOSUPPORT},
	    {HEAD "m=audio 4000 RTP/SAVP 0" CRLF
		  "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhc" CRLF,
	     -EBADMSG}, /* 21-byte key */
	    {HEAD "m=audio 4000 RTP/SAVP 0" CRLF "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY_A
		  "AAAA" CRLF,
	     -EBADMSG}, /* 33-byte key */
	    {HEAD "m=audio 4000 RTP/SAVP 0" CRLF "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
		  "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaV!R" CRLF,
	     -EBADMSG}, /* not base64 */
	    {HEAD "m=audio 4000 RTP/SAVP 0" CRLF
		  "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:" KEY_A CRLF,
	     -EBADMSG},
	    {HEAD "m=audio 4000 RTP/SAVP 0" CRLF
		  "a=crypto:1234567890 AES_CM_128_HMAC_SHA1_80 inline:" KEY_A CRLF,
	     -EBADMSG},
	    {HEAD "m=audio 4000 RTP/SAVP 0" CRLF "a=crypto:1 AES_CM_128_HMAC_SHA1_80" CRLF,
	     -EBADMSG},
	    {HEAD "m=audio 4000 RTP/SAVP 0" CRLF "a=crypto" CRLF, -EBADMSG},
	    {HEAD "m=audio 4000 RTP/SAVP 0" CRLF "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY_A
		  "|2^99" CRLF,
	     -EBADMSG},
	    {HEAD "m=audio 4000 RTP/SAVP 0" CRLF "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY_A
		  "|1:4|2^20" CRLF,
	     -EBADMSG},
	    {HEAD "m=audio 4000 RTP/SAVP 0" CRLF "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY_A
		  "|1:999" CRLF,
	     -EBADMSG},
	};
	struct sdp_media_desc d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = parse(cases[i].text, &d);

		if (ret != cases[i].err)
			fprintf(stderr, "case %zu: %d (%s)\n", i, ret, why);
		CHECK_EQ_INT(ret, cases[i].err);
		CHECK(why[0] != '\0');
		CHECK_EQ_INT(d.n_codecs, 0); /* reset on failure */
	}
}

/*
 * sofia-sip 1.12.11 loops forever (allocating) on a non-RTP m= line whose formats start with
 * whitespace or a non-token character; the module rewrites m= lines before parsing. Tabs and
 * stray spaces in m= lines of real SDPs still work.
 */
static void test_sofia_format_loop_guard(void)
{
	struct sdp_media_desc d;

	CHECK_EQ_INT(parse(HEAD "m=image 9 udptl \t" CRLF "m=audio 4000 RTP/AVP 0" CRLF, &d), 0);
	CHECK_EQ_INT(d.audio_index, 1);
	CHECK_EQ_STR(d.mlines[0].media, "image");
	CHECK_EQ_STR(d.mlines[0].fmt, "0"); /* no format given */
	CHECK_EQ_INT(parse(HEAD "m=audio 24580 RT /SAVP 0 8 101" CRLF, &d), -EBADMSG);
	CHECK_EQ_INT(parse(HEAD "m=image 9 udptl (t38" CRLF, &d), -EBADMSG);
	/* fields sofia-sip would split differently once rewritten: "/proto", "port/n/x" */
	CHECK_EQ_INT(parse(HEAD "m=image 0 /4 0" CRLF "m=audio 4000 RTP/AVP 0" CRLF, &d), -EBADMSG);
	CHECK_EQ_INT(parse(HEAD "m=audio 1/10/0" CRLF, &d), -EBADMSG);
	CHECK_EQ_INT(parse(HEAD "m=audio 4000/ RTP/AVP 0" CRLF, &d), -EBADMSG);
	CHECK_EQ_INT(
	    parse(HEAD "m=audio\t4000 \t RTP/AVP\t0  8 \t" CRLF "a=rtpmap:8 PCMA/8000" CRLF, &d),
	    0);
	CHECK_EQ_INT(d.port, 4000);
	CHECK_EQ_INT(d.n_codecs, 2);
	CHECK_EQ_INT(parse(HEAD "  m=audio 4000 RTP/AVP 8" CRLF, &d), 0); /* leading blanks */
	CHECK_EQ_INT(d.codecs[0].pt, 8);
}

static void test_bounds(void)
{
	struct sdp_media_desc d;
	struct buf b = {0};
	char *big;

	/* 100 formats on the audio line */
	buf_append(&b, HEAD "m=audio 4000 RTP/AVP", strlen(HEAD "m=audio 4000 RTP/AVP"));
	for (int i = 0; i < 100; i++) {
		char pt[8];

		snprintf(pt, sizeof(pt), " %d", i + 1 > 127 ? 127 : i);
		buf_append(&b, pt, strlen(pt));
	}
	buf_append(&b, CRLF, 2);
	CHECK_EQ_INT(sdp_parse_desc((const char *)buf_head(&b), buf_used(&b), &d, why, sizeof(why)),
		     -E2BIG);

	/* 20 codecs with rtpmaps: the first 16 kept */
	buf_reset(&b);
	buf_append(&b, HEAD "m=audio 4000 RTP/AVP", strlen(HEAD "m=audio 4000 RTP/AVP"));
	for (int i = 0; i < 20; i++) {
		char pt[8];

		snprintf(pt, sizeof(pt), " %d", 96 + i);
		buf_append(&b, pt, strlen(pt));
	}
	buf_append(&b, CRLF, 2);
	for (int i = 0; i < 20; i++) {
		char line[64];

		snprintf(line, sizeof(line), "a=rtpmap:%d x%d/8000" CRLF, 96 + i, i);
		buf_append(&b, line, strlen(line));
	}
	CHECK_EQ_INT(sdp_parse_desc((const char *)buf_head(&b), buf_used(&b), &d, why, sizeof(why)),
		     0);
	CHECK_EQ_INT(d.n_codecs, SDP_MAX_CODECS);
	CHECK_EQ_STR(d.codecs[15].name, "x15");

	/* 9 m-lines */
	buf_reset(&b);
	buf_append(&b, HEAD, strlen(HEAD));
	for (int i = 0; i < 9; i++)
		buf_append(&b, "m=audio 4000 RTP/AVP 0" CRLF,
			   strlen("m=audio 4000 RTP/AVP 0" CRLF));
	CHECK_EQ_INT(sdp_parse_desc((const char *)buf_head(&b), buf_used(&b), &d, why, sizeof(why)),
		     -E2BIG);

	/* a NUL inside, and an SDP above 64 KiB */
	CHECK_EQ_INT(sdp_parse_desc(sipp_uac, sizeof(sipp_uac), &d, why, sizeof(why)), -EBADMSG);
	big = malloc(SDP_MAX_TEXT + 2);
	if (!big)
		abort();
	memset(big, 'a', SDP_MAX_TEXT + 1);
	memcpy(big, sipp_uac, strlen(sipp_uac));
	CHECK_EQ_INT(sdp_parse_desc(big, SDP_MAX_TEXT + 1, &d, why, sizeof(why)), -E2BIG);
	free(big);

	/* formats that cannot be described are dropped, not refused */
	{
		static const char odd[] =
		    HEAD "m=audio 4000 RTP/AVP 96 97 98 99 0" CRLF "a=rtpmap:96 speex/0" CRLF
			 "a=rtpmap:97 speex/16000/x" CRLF
			 "a=rtpmap:98 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/8000" CRLF;

		CHECK_EQ_INT(sdp_parse_desc(odd, strlen(odd), &d, why, sizeof(why)), 0);
		CHECK_EQ_INT(d.n_codecs, 1); /* 99 has no rtpmap either */
		CHECK_EQ_STR(d.codecs[0].name, "PCMU");
	}

	/* duplicated payload types count once; a tiny why buffer is fine */
	CHECK_EQ_INT(sdp_parse_desc(HEAD "m=audio 4000 RTP/AVP 0 0 8 0" CRLF,
				    strlen(HEAD "m=audio 4000 RTP/AVP 0 0 8 0" CRLF), &d, why, 1),
		     0);
	CHECK_EQ_INT(d.n_codecs, 2);
	CHECK_EQ_INT(sdp_parse_desc("x", 1, &d, NULL, 0), -EBADMSG);
	buf_free(&b);
}

/* Every prefix of real SDPs, and every one-byte corruption of one: never a crash. */
static void test_truncations_and_flips(void)
{
	static const char *const samples[] = {sipp_uac,	       asterisk, freeswitch,
					      freeswitch_srtp, linphone, video_first_v6};
	struct sdp_media_desc d;
	char copy[2048];
	int ok = 0;

	for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
		size_t len = strlen(samples[s]);

		for (size_t n = 0; n <= len; n++)
			ok += sdp_parse_desc(samples[s], n, &d, why, sizeof(why)) == 0;
	}
	CHECK(ok > 0);
	memcpy(copy, freeswitch_srtp, sizeof(freeswitch_srtp));
	for (size_t i = 0; i < sizeof(freeswitch_srtp) - 1; i++) {
		static const char flips[] = {' ', '\r', ':', '/', '0', '|', '\t', (char)0xff};

		for (size_t f = 0; f < sizeof(flips); f++) {
			char saved = copy[i];

			copy[i] = flips[f];
			(void)sdp_parse_desc(copy, sizeof(freeswitch_srtp) - 1, &d, why,
					     sizeof(why));
			copy[i] = saved;
		}
	}
}

int main(void)
{
	TEST_RUN(test_parse_sipp);
	TEST_RUN(test_parse_asterisk);
	TEST_RUN(test_parse_freeswitch);
	TEST_RUN(test_parse_srtp_two_crypto);
	TEST_RUN(test_parse_linphone);
	TEST_RUN(test_parse_video_first_ipv6);
	TEST_RUN(test_parse_directions);
	TEST_RUN(test_parse_declined_and_fallbacks);
	TEST_RUN(test_round_trip);
	TEST_RUN(test_build_refuses_bad_descs);
	TEST_RUN(test_answer_offerer_order_wins);
	TEST_RUN(test_choose_then_answer);
	TEST_RUN(test_answer_no_common_codec);
	TEST_RUN(test_opus_and_g722);
	TEST_RUN(test_answer_dtmf_and_direction);
	TEST_RUN(test_answer_srtp);
	TEST_RUN(test_offer_and_process_answer);
	TEST_RUN(test_offer_srtp_and_answer);
	TEST_RUN(test_hold_reoffer);
	TEST_RUN(test_rtmp_tokens);
	TEST_RUN(test_malformed);
	TEST_RUN(test_sofia_format_loop_guard);
	TEST_RUN(test_bounds);
	TEST_RUN(test_truncations_and_flips);
	return TEST_DONE();
}
