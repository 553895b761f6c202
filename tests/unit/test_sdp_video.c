/*
 * test_sdp_video.c - the video part of the SDP module (signaler/sdp_video.c): SDPs modelled on
 * what baresip, Polycom and Linphone send with video; H.264 selection (packetization-mode 1, else 0,
 * profiles), declines that leave the audio as it is, SRTP on video, a video c= of its own,
 * round trips through sdp_build / sdp_parse_desc, hold of both streams, video added and removed
 * by re-offers, and malformed video m-lines.
 */
#include "harness.h"
#include "sdp.h"

#include <errno.h>
#include <stdlib.h>

#define CRLF  "\r\n"
#define KEY_A "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
#define KEY_B "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj"
#define HEAD                                                                                       \
	"v=0" CRLF "o=- 7 7 IN IP4 192.0.2.10" CRLF "s=-" CRLF "c=IN IP4 192.0.2.10" CRLF          \
	"t=0 0" CRLF "m=audio 10000 RTP/AVP 0 8" CRLF

static char why[256];
static uint8_t akey[SDP_SRTP_KEY_LEN], vkey[SDP_SRTP_KEY_LEN];

/* baresip 3.x video call: two H.264 modes, VP8, rtcp-fb for every format, b=AS. */
static const char baresip[] =
    "v=0" CRLF "o=- 1804289383 1804289383 IN IP4 192.168.1.50" CRLF "s=-" CRLF
    "c=IN IP4 192.168.1.50" CRLF "t=0 0" CRLF "m=audio 10000 RTP/AVP 0 8 101" CRLF
    "a=rtpmap:101 telephone-event/8000" CRLF "a=fmtp:101 0-15" CRLF "a=sendrecv" CRLF
    "a=rtcp-rsize" CRLF "m=video 10002 RTP/AVP 100 101 102" CRLF "b=AS:1000" CRLF
    "a=rtpmap:100 H264/90000" CRLF "a=fmtp:100 packetization-mode=0;profile-level-id=42e01f" CRLF
    "a=rtpmap:101 H264/90000" CRLF "a=fmtp:101 packetization-mode=1;profile-level-id=42e01f" CRLF
    "a=rtpmap:102 VP8/90000" CRLF "a=rtcp-fb:* ccm fir" CRLF "a=rtcp-fb:* nack" CRLF
    "a=rtcp-fb:* nack pli" CRLF "a=sendrecv" CRLF "a=rtcp-rsize" CRLF;

/* Polycom-style: RTP/AVPF, b=TIAS, High and Baseline H.264, H.263, a=rtcp. */
static const char polycom[] =
    "v=0" CRLF "o=GroupSeries 1 1 IN IP4 10.1.1.20" CRLF "s=-" CRLF "c=IN IP4 10.1.1.20" CRLF
    "b=AS:2048" CRLF "t=0 0" CRLF "m=audio 2224 RTP/AVP 9 0 8" CRLF "a=rtpmap:9 G722/8000" CRLF
    "a=sendrecv" CRLF "m=video 2226 RTP/AVPF 109 110 34" CRLF "b=TIAS:1920000" CRLF
    "a=rtpmap:109 H264/90000" CRLF
    "a=fmtp:109 profile-level-id=640020;max-mbps=243000;max-fs=8160;packetization-mode=1;"
    "level-asymmetry-allowed=1" CRLF "a=rtpmap:110 H264/90000" CRLF
    "a=fmtp:110 profile-level-id=42e016;max-mbps=108000;max-fs=3600" CRLF
    "a=rtpmap:34 H263/90000" CRLF "a=rtcp-fb:* ccm fir" CRLF "a=rtcp-fb:* nack pli" CRLF
    "a=rtcp:2227" CRLF "a=content:main" CRLF "a=label:2" CRLF "a=sendrecv" CRLF;

/* Linphone-style: VP8 first, then H.264; trr-int and tmmbr (ignored), per-PT feedback. */
static const char linphone[] =
    "v=0" CRLF "o=bob 2049 2302 IN IP4 192.168.0.21" CRLF "s=Talk" CRLF "c=IN IP4 192.168.0.21" CRLF
    "t=0 0" CRLF "m=audio 7078 RTP/AVP 96 0 101" CRLF "a=rtpmap:96 opus/48000/2" CRLF
    "a=rtpmap:101 telephone-event/8000" CRLF "m=video 9078 RTP/AVP 96 97" CRLF
    "a=rtpmap:96 VP8/90000" CRLF "a=rtpmap:97 H264/90000" CRLF
    "a=fmtp:97 profile-level-id=42801F; packetization-mode=1" CRLF "a=rtcp-fb:* trr-int 1000" CRLF
    "a=rtcp-fb:* ccm tmmbr" CRLF "a=rtcp-fb:96 nack pli" CRLF "a=rtcp-fb:96 ccm fir" CRLF
    "a=rtcp-fb:97 nack pli" CRLF "a=rtcp-fb:97 ccm fir" CRLF;

/* Only packetization-mode 0 (absent, then explicit). */
static const char mode0[] =
    HEAD "m=video 5000 RTP/AVP 99 98" CRLF "a=rtpmap:99 H264/90000" CRLF
	 "a=fmtp:99 profile-level-id=42e01f" CRLF "a=rtpmap:98 H264/90000" CRLF
	 "a=fmtp:98 profile-level-id=42e01f;packetization-mode=0" CRLF;

/* SRTP on both streams, each with its own key; the video one on a c= of its own (IPv6). */
static const char savp[] =
    "v=0" CRLF "o=- 5 5 IN IP6 2001:db8::10" CRLF "s=-" CRLF "c=IN IP6 2001:db8::10" CRLF
    "t=0 0" CRLF "m=audio 20000 RTP/SAVP 0" CRLF
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY_A CRLF "m=video 20002 RTP/SAVP 96" CRLF
    "c=IN IP6 2001:db8::20" CRLF "a=rtpmap:96 H264/90000" CRLF "a=fmtp:96 packetization-mode=1" CRLF
    "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:" KEY_B CRLF;

static int parse(const char *text, struct sdp_media_desc *d)
{
	why[0] = '\0';
	return sdp_parse_desc(text, strlen(text), d, why, sizeof(why));
}

/* The SDP text of @d (NULL when sdp_build refuses it); the caller frees it. */
static char *build(const struct sdp_media_desc *d)
{
	struct buf b = {0};
	char *s = NULL;

	if (sdp_build(&b, d, "gw", 1, 1) == 0) {
		s = malloc(buf_used(&b) + 1);
		if (!s)
			abort();
		memcpy(s, buf_head(&b), buf_used(&b));
		s[buf_used(&b)] = '\0';
	}
	buf_free(&b);
	return s;
}

static struct codec_pref vprefs(bool video)
{
	struct codec_pref p = {.n = 3, .dtmf = true, .video = video};

	p.codecs[0] = codec_by_id(CODEC_PCMU);
	p.codecs[1] = codec_by_id(CODEC_PCMA);
	p.codecs[2] = codec_by_id(CODEC_OPUS);
	return p;
}

static struct sdp_local vlocal(enum sdp_srtp_policy srtp, uint16_t vport, const char *plid)
{
	for (unsigned i = 0; i < SDP_SRTP_KEY_LEN; i++) {
		akey[i] = (uint8_t)(0xA0 + i);
		vkey[i] = (uint8_t)(0x10 + i);
	}
	return (struct sdp_local){
	    .addr = "198.51.100.7",
	    .port = 40000,
	    .srtp = srtp,
	    .key = akey,
	    .video = {.port = vport, .profile_level_id = plid, .key = vkey},
	};
}

/* Answers @offer_text with @p / @l; the answer's text (freed by the caller) and @ch. */
static char *answer_text(const char *offer_text, struct codec_pref p, struct sdp_local l,
			 struct sdp_choice *ch)
{
	struct sdp_media_desc offer, ans;

	CHECK_EQ_INT(parse(offer_text, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &p, &l, &ans, ch, why, sizeof(why)), 0);
	return build(&ans);
}

/* --- parsing --------------------------------------------------------------------------------- */

static void test_parse_baresip(void)
{
	struct sdp_media_desc d;
	const struct sdp_video *v = &d.video;

	CHECK_EQ_INT(parse(baresip, &d), 0);
	CHECK_EQ_INT(d.n_codecs, 2);
	CHECK_EQ_INT(d.te_pt, 101);
	CHECK(d.has_video);
	CHECK_EQ_INT(d.video_index, 1);
	CHECK_EQ_STR(v->addr, "192.168.1.50");
	CHECK_EQ_INT(v->port, 10002);
	CHECK_EQ_INT(v->proto, SDP_VPROTO_AVP);
	CHECK_EQ_INT(v->dir, SDP_DIR_SENDRECV);
	CHECK_EQ_INT(v->n_formats, 3);
	CHECK_EQ_INT(v->formats[1].pt, 101);
	CHECK_EQ_STR(v->formats[1].name, "H264");
	CHECK_EQ_INT(v->formats[1].rate, 90000);
	CHECK_EQ_STR(v->formats[1].fmtp, "packetization-mode=1;profile-level-id=42e01f");
	CHECK_EQ_STR(v->formats[2].name, "VP8");
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ_INT(v->formats[i].fb, SDP_FB_ALL);
	CHECK_EQ_INT(v->bw_as, 1000);
	CHECK_EQ_INT(v->bw_tias, 0);
	CHECK_EQ_INT(v->rtcp_port, 0);
	CHECK_EQ_STR(d.mlines[1].media, "video"); /* still named, for a decline */
}

static void test_parse_polycom_avpf(void)
{
	struct sdp_media_desc d;
	const struct sdp_video *v = &d.video;
	struct sdp_h264_fmtp h;
	char val[32];

	CHECK_EQ_INT(parse(polycom, &d), 0);
	CHECK(d.has_video);
	CHECK_EQ_INT(v->proto, SDP_VPROTO_AVPF);
	CHECK_EQ_INT(v->n_formats, 3);
	CHECK_EQ_STR(v->formats[0].name, "H264");
	CHECK_EQ_INT(v->formats[0].rate, 90000);
	CHECK_EQ_STR(v->formats[2].name, "H263");
	CHECK_EQ_INT(v->formats[0].fb, SDP_FB_FIR | SDP_FB_PLI);
	CHECK_EQ_INT(v->bw_tias, 1920000);
	CHECK_EQ_INT(v->bw_as, 0); /* the session's b=AS is not the video's */
	CHECK_EQ_INT(v->rtcp_port, 2227);
	CHECK_EQ_INT(sdp_h264_fmtp(v->formats[0].fmtp, &h), 0);
	CHECK(h.has_plid && h.profile_idc == 0x64 && h.profile_iop == 0 && h.level_idc == 0x20);
	CHECK(h.mode == 1 && h.level_asymmetry && !h.has_sprop);
	CHECK_EQ_INT(sdp_fmtp_param(v->formats[0].fmtp, "MAX-FS", val, sizeof(val)), 0);
	CHECK_EQ_STR(val, "8160");
	CHECK_EQ_INT(sdp_h264_fmtp(v->formats[1].fmtp, &h), 0);
	CHECK_EQ_INT(h.mode, 0);
	CHECK_EQ_STR(sdp_video_proto_name(SDP_VPROTO_SAVPF), "RTP/SAVPF");
	CHECK(sdp_video_proto_name((enum sdp_video_proto)4) == NULL);
}

static void test_parse_linphone_and_own_c(void)
{
	struct sdp_media_desc d;

	CHECK_EQ_INT(parse(linphone, &d), 0);
	CHECK(d.has_video);
	CHECK_EQ_INT(d.video.formats[0].fb, SDP_FB_PLI | SDP_FB_FIR); /* trr-int, tmmbr ignored */
	CHECK_EQ_INT(d.video.formats[1].fb, SDP_FB_PLI | SDP_FB_FIR);
	CHECK_EQ_STR(d.video.formats[1].fmtp, "profile-level-id=42801F; packetization-mode=1");

	CHECK_EQ_INT(parse(savp, &d), 0);
	CHECK(d.srtp && d.has_video);
	CHECK_EQ_STR(d.addr, "2001:db8::10");
	CHECK_EQ_STR(d.video.addr, "2001:db8::20");
	CHECK_EQ_INT(d.video.proto, SDP_VPROTO_SAVP);
	CHECK_EQ_INT(d.video.n_crypto, 1);
	CHECK_EQ_INT(d.video.crypto[0].tag, 3);
	CHECK_EQ_INT(d.video.crypto[0].suite, SDP_SUITE_AES_CM_128_HMAC_SHA1_32);
}

static void test_fmtp_helpers(void)
{
	struct sdp_h264_fmtp h;
	char v[8];

	CHECK_EQ_INT(sdp_fmtp_param(" a = 1 ; b=22;c", "B", v, sizeof(v)), 0);
	CHECK_EQ_STR(v, "22");
	CHECK_EQ_INT(sdp_fmtp_param(" a = 1 ; b=22;c", "a", v, sizeof(v)), 0);
	CHECK_EQ_STR(v, "1");
	CHECK_EQ_INT(sdp_fmtp_param("a=1;c", "c", v, sizeof(v)), -ENOENT); /* no value */
	CHECK_EQ_INT(sdp_fmtp_param("a=123456789", "a", v, sizeof(v)), -ENOSPC);
	CHECK_EQ_INT(sdp_fmtp_param(NULL, "a", v, sizeof(v)), -ENOENT);
	CHECK_EQ_INT(sdp_h264_fmtp(NULL, &h), 0); /* RFC 6184 defaults */
	CHECK(h.profile_idc == 0x42 && h.level_idc == 0x0a && h.mode == 0 && !h.has_plid);
	CHECK_EQ_INT(sdp_h264_fmtp("profile-level-id=42e0", &h), -EBADMSG);
	CHECK_EQ_INT(sdp_h264_fmtp("profile-level-id=42g01f", &h), -EBADMSG);
	CHECK_EQ_INT(sdp_h264_fmtp("packetization-mode=3", &h), -EBADMSG);
	CHECK_EQ_INT(sdp_h264_fmtp("packetization-mode=2;sprop-parameter-sets=Z0I=,aM4=", &h), 0);
	CHECK(h.mode == 2 && h.has_sprop);
}

/* --- answering a peer's offer ---------------------------------------------------------------- */

static void test_answer_baresip(void)
{
	struct sdp_choice ch;
	char *t = answer_text(baresip, vprefs(true), vlocal(SDP_SRTP_OFF, 40002, NULL), &ch);
	struct sdp_media_desc back;

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(ch.codec == codec_by_id(CODEC_PCMU)); /* audio as without video */
	CHECK(ch.video.on);
	CHECK_EQ_INT(ch.video.pt, 101); /* the first H.264 in mode 1 */
	CHECK_EQ_INT(ch.video.recv_pt, 101);
	CHECK_EQ_INT(ch.video.fb, SDP_FB_OURS);
	CHECK_EQ_STR(ch.video.remote_addr, "192.168.1.50");
	CHECK_EQ_INT(ch.video.remote_port, 10002);
	CHECK_EQ_INT(ch.video.remote_rtcp_port, 10003);
	CHECK_EQ_INT(ch.video.bw_kbps, 1000);
	CHECK_EQ_INT(ch.video.dir, SDP_DIR_SENDRECV);
	CHECK(!ch.video.srtp && !ch.video.avpf && !ch.video.hold);
	CHECK(strstr(t, "\r\nm=audio 40000 RTP/AVP 0 101\r\n") != NULL);
	CHECK(strstr(t, "\r\nm=video 40002 RTP/AVP 101\r\na=rtpmap:101 H264/90000\r\n"
			"a=fmtp:101 profile-level-id=42e01f;packetization-mode=1\r\n"
			"a=rtcp-fb:101 nack pli\r\na=rtcp-fb:101 ccm fir\r\n"
			"a=sendrecv\r\n") != NULL);
	CHECK(strstr(t, "c=IN IP4 198.51.100.7\r\nt=0 0") != NULL);
	CHECK(strstr(t, "\r\nc=") == strstr(t, "c=IN IP4") - 2); /* one c= only */
	CHECK_EQ_INT(parse(t, &back), 0);
	CHECK(back.has_video && back.video.n_formats == 1 && back.video.formats[0].pt == 101);
	free(t);
}

static void test_answer_polycom_profiles(void)
{
	struct sdp_choice ch;
	struct sdp_local l = vlocal(SDP_SRTP_OFF, 40002, "42e01f");
	char *t;

	/* High 3.2 with asymmetry decodes our constrained baseline */
	l.video.bw_kbps = 512;
	t = answer_text(polycom, vprefs(true), l, &ch);
	CHECK(t && ch.video.on && ch.video.pt == 109 && ch.video.avpf);
	CHECK_EQ_INT(ch.video.fb, SDP_FB_FIR | SDP_FB_PLI);
	CHECK_EQ_INT(ch.video.bw_kbps, 1920);
	CHECK_EQ_INT(ch.video.remote_rtcp_port, 2227);
	CHECK(strstr(ch.video.fmtp, "max-mbps=243000") != NULL);
	CHECK(t && strstr(t, "\r\nm=video 40002 RTP/AVPF 109\r\nb=AS:512\r\nb=TIAS:512000\r\n"
			     "a=rtpmap:109 H264/90000\r\na=fmtp:109 profile-level-id=640020;"
			     "packetization-mode=1;level-asymmetry-allowed=1\r\n"
			     "a=rtcp-fb:109 nack pli\r\na=rtcp-fb:109 ccm fir\r\n") != NULL);
	CHECK(t && strstr(t, "m=audio 40000 RTP/AVP 0\r\n") != NULL); /* G722 not in prefs */
	free(t);

	/* Our Main profile: High is another profile, 110 is mode 0: declined, audio goes on */
	t = answer_text(polycom, vprefs(true), vlocal(SDP_SRTP_OFF, 40002, "4d001f"), &ch);
	CHECK(t && !ch.video.on && ch.video.why[0] && ch.codec == codec_by_id(CODEC_PCMU));
	CHECK(t && strstr(t, "\r\nm=video 0 RTP/AVPF 109\r\n") != NULL);
	free(t);

	/* High ourselves: 109 is the same profile */
	t = answer_text(polycom, vprefs(true), vlocal(SDP_SRTP_OFF, 40002, "640028"), &ch);
	CHECK(t && ch.video.on && ch.video.pt == 109);
	free(t);
}

static void test_answer_linphone_sprop(void)
{
	struct sdp_choice ch;
	struct sdp_local l = vlocal(SDP_SRTP_OFF, 40002, "42e01f");
	char *t;

	l.video.sprop = "Z0LgH9oBQBbpUgAAAwACAAADAGQeMGVA,aM4yyA==";
	l.video.dir = SDP_DIR_SENDONLY;
	t = answer_text(linphone, vprefs(true), l, &ch);
	CHECK(t && ch.video.on && ch.video.pt == 97);
	CHECK_EQ_INT(ch.video.dir, SDP_DIR_SENDONLY);
	CHECK(ch.codec == codec_by_id(CODEC_OPUS));
	CHECK(t && strstr(t, "a=fmtp:97 profile-level-id=42801f;packetization-mode=1;"
			     "sprop-parameter-sets=Z0LgH9oBQBbpUgAAAwACAAADAGQeMGVA,aM4yyA==\r\n"));
	CHECK(t && strstr(t, "a=rtcp-fb:97 nack pli\r\na=rtcp-fb:97 ccm fir\r\na=sendonly\r\n"));
	free(t);
}

static void test_answer_declines(void)
{
	struct sdp_choice ch;
	char *t;

	/* no video on our side: as today, port 0, the audio answer unchanged */
	t = answer_text(baresip, vprefs(false), vlocal(SDP_SRTP_OFF, 40002, NULL), &ch);
	CHECK(t && !ch.video.on && strstr(t, "\r\nm=video 0 RTP/AVP 100\r\n"));
	CHECK(t && !strstr(t, "H264"));
	free(t);
	t = answer_text(baresip, vprefs(true), vlocal(SDP_SRTP_OFF, 0, NULL), &ch);
	CHECK(t && !ch.video.on && strstr(t, "\r\nm=video 0 RTP/AVP 100\r\n"));
	free(t);

	/* mode 0 only (older baresip): taken, on its first mode-0 format */
	t = answer_text(mode0, vprefs(true), vlocal(SDP_SRTP_OFF, 40002, NULL), &ch);
	CHECK(t && ch.video.on && ch.video.mode == 0 && ch.video.pt == 99 && ch.codec);
	CHECK(t && strstr(t, "\r\nm=video 40002 RTP/AVP 99\r\n") &&
	      strstr(t, "a=fmtp:99 profile-level-id=42e01f;packetization-mode=0\r\n"));
	free(t);
	/* mode 2 only: declined, the audio goes on */
	t = answer_text(HEAD "m=video 5000 RTP/AVP 99" CRLF "a=rtpmap:99 H264/90000" CRLF
			     "a=fmtp:99 profile-level-id=42e01f;packetization-mode=2" CRLF,
			vprefs(true), vlocal(SDP_SRTP_OFF, 40002, NULL), &ch);
	CHECK(t && !ch.video.on && strstr(ch.video.why, "packetization-mode 2"));
	CHECK(t && strstr(t, "\r\nm=video 0 RTP/AVP 99\r\n") && ch.codec);
	free(t);

	/* the offerer declines video itself */
	t = answer_text(HEAD "m=video 0 RTP/AVP 96" CRLF "a=rtpmap:96 H264/90000" CRLF
			     "a=fmtp:96 packetization-mode=1" CRLF,
			vprefs(true), vlocal(SDP_SRTP_OFF, 40002, NULL), &ch);
	CHECK(t && !ch.video.on && strstr(t, "\r\nm=video 0 RTP/AVP 96\r\n"));
	free(t);

	/* VP8 only */
	t = answer_text(HEAD "m=video 5000 RTP/AVP 96" CRLF "a=rtpmap:96 VP8/90000" CRLF,
			vprefs(true), vlocal(SDP_SRTP_OFF, 40002, NULL), &ch);
	CHECK(t && !ch.video.on && strstr(ch.video.why, "no H.264"));
	free(t);

	/* no video in the offer */
	t = answer_text(HEAD, vprefs(true), vlocal(SDP_SRTP_OFF, 40002, NULL), &ch);
	CHECK(t && !ch.video.on && !strstr(t, "m=video"));
	free(t);
}

static void test_answer_srtp_video(void)
{
	struct sdp_choice ch;
	struct sdp_media_desc offer;
	char *t;

	t = answer_text(savp, vprefs(true), vlocal(SDP_SRTP_OPTIONAL, 40002, NULL), &ch);
	CHECK(t && ch.srtp && ch.video.on && ch.video.srtp);
	CHECK_EQ_INT(ch.video.crypto_tag, 3);
	CHECK_EQ_INT(ch.video.suite, SDP_SUITE_AES_CM_128_HMAC_SHA1_32);
	CHECK_EQ_INT(parse(savp, &offer), 0);
	CHECK(memcmp(ch.video.remote_key, offer.video.crypto[0].key, SDP_SRTP_KEY_LEN) == 0);
	CHECK(memcmp(ch.remote_key, offer.crypto[0].key, SDP_SRTP_KEY_LEN) == 0);
	CHECK(memcmp(ch.video.remote_key, ch.remote_key, SDP_SRTP_KEY_LEN) != 0);
	CHECK_EQ_STR(ch.video.remote_addr, "2001:db8::20");
	CHECK(t && strstr(t, "m=video 40002 RTP/SAVP 96\r\n"));
	CHECK(t && strstr(t, "a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:EBESExQVFhcYGRobHB0eHyAhIiM"
			     "kJSYnKCkqKywt\r\n")); /* our video key, not the audio one */
	CHECK(t && strstr(t, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:oKGio6Slpqeoqaqr"));
	free(t);

	/* SRTP required: a plain video offer is declined, the SAVP audio is taken */
	t = answer_text(HEAD "m=video 5000 RTP/AVP 96" CRLF "a=rtpmap:96 H264/90000" CRLF
			     "a=fmtp:96 packetization-mode=1" CRLF,
			vprefs(true), vlocal(SDP_SRTP_OPTIONAL, 40002, NULL), &ch);
	CHECK(t && ch.video.on && !ch.video.srtp);
	free(t);
	{
		const char *o =
		    "v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF "c=IN IP4 192.0.2.1" CRLF
		    "t=0 0" CRLF "m=audio 4000 RTP/SAVP 0" CRLF
		    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY_A CRLF
		    "m=video 4002 RTP/AVP 96" CRLF "a=rtpmap:96 H264/90000" CRLF
		    "a=fmtp:96 packetization-mode=1" CRLF;

		t = answer_text(o, vprefs(true), vlocal(SDP_SRTP_REQUIRED, 40002, NULL), &ch);
		CHECK(t && ch.srtp && !ch.video.on && strstr(ch.video.why, "SRTP"));
		CHECK(t && strstr(t, "\r\nm=video 0 RTP/AVP 96\r\n"));
		free(t);
	}
	/* SRTP off: the SAVP video is declined (the SAVP audio already refuses the call) */
	CHECK_EQ_INT(parse(savp, &offer), 0);
	{
		struct codec_pref p = vprefs(true);
		struct sdp_local l = vlocal(SDP_SRTP_OFF, 40002, NULL);
		struct sdp_media_desc ans;

		offer.srtp = false; /* as if the audio were plain */
		CHECK_EQ_INT(sdp_answer(&offer, &p, &l, &ans, &ch, why, sizeof(why)), 0);
		CHECK(!ch.video.on && !ans.has_video && strstr(ch.video.why, "disabled"));
	}
	/* a video key is needed once SRTP may be used */
	{
		struct codec_pref p = vprefs(true);
		struct sdp_local l = vlocal(SDP_SRTP_OPTIONAL, 40002, NULL);
		struct sdp_media_desc ans;

		l.video.key = NULL;
		CHECK_EQ_INT(sdp_answer(&offer, &p, &l, &ans, &ch, why, sizeof(why)), -EINVAL);
		l.video.key = vkey;
		l.video.profile_level_id = "42e01";
		CHECK_EQ_INT(sdp_answer(&offer, &p, &l, &ans, &ch, why, sizeof(why)), -EINVAL);
		l.video.profile_level_id = NULL;
		l.video.sprop = "a\r\nb";
		CHECK_EQ_INT(sdp_answer(&offer, &p, &l, &ans, &ch, why, sizeof(why)), -EINVAL);
	}
}

/* --- our offer, the peer's answer ------------------------------------------------------------ */

static void test_offer_video(void)
{
	struct codec_pref p = vprefs(true), pa = vprefs(false);
	struct sdp_local l = vlocal(SDP_SRTP_OFF, 40002, NULL), la = vlocal(SDP_SRTP_OFF, 0, NULL);
	struct sdp_media_desc offer, audio_only, back;
	char *t, *ta, *tb;

	/* without video the offer is what it was */
	CHECK_EQ_INT(sdp_make_offer(&pa, &l, &audio_only, why, sizeof(why)), 0);
	ta = build(&audio_only);
	CHECK_EQ_INT(sdp_make_offer(&p, &la, &offer, why, sizeof(why)), 0);
	tb = build(&offer);
	CHECK(ta && tb && strcmp(ta, tb) == 0 && !strstr(ta, "video"));
	CHECK(!audio_only.has_video && audio_only.n_mlines == 0);
	free(ta);
	free(tb);

	l.video.bw_kbps = 768;
	CHECK_EQ_INT(sdp_make_offer(&p, &l, &offer, why, sizeof(why)), 0);
	t = build(&offer);
	CHECK(t &&
	      strstr(t, "\r\nm=video 40002 RTP/AVP 96 97\r\nb=AS:768\r\nb=TIAS:768000\r\n"
			"a=rtpmap:96 H264/90000\r\na=fmtp:96 profile-level-id=42e01f;"
			"packetization-mode=1;level-asymmetry-allowed=1\r\n"
			"a=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n"
			"a=rtpmap:97 H264/90000\r\na=fmtp:97 profile-level-id=42e01f;"
			"packetization-mode=0;level-asymmetry-allowed=1\r\n"
			"a=rtcp-fb:97 nack pli\r\na=rtcp-fb:97 ccm fir\r\n"
			"a=sendrecv\r\n"));
	CHECK(t && strstr(t, "m=audio 40000 RTP/AVP 0 8 111 101\r\n") < strstr(t, "m=video"));
	CHECK(t && parse(t, &back) == 0 && back.has_video && back.video.bw_as == 768);
	free(t);

	/* AVPF on request; SAVPF with its own key when SRTP is required */
	l = vlocal(SDP_SRTP_REQUIRED, 40002, "640028");
	l.video.avpf = true;
	l.video.rtcp_port = 40009;
	CHECK_EQ_INT(sdp_make_offer(&p, &l, &offer, why, sizeof(why)), 0);
	t = build(&offer);
	CHECK(t && strstr(t, "m=audio 40000 RTP/SAVP ") && strstr(t, "m=video 40002 RTP/SAVPF 96"));
	CHECK(t && strstr(t, "a=rtcp:40009\r\n") && strstr(t, "profile-level-id=640028;"));
	CHECK(t && strstr(t, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:EBESExQV"));
	CHECK(t && parse(t, &back) == 0 && back.video.proto == SDP_VPROTO_SAVPF &&
	      back.video.rtcp_port == 40009 && back.video.n_crypto == 1);
	free(t);
}

/* Our offer -> text -> the peer (this module) answers -> text -> sdp_process_answer. */
static void test_offer_answer_round_trip(void)
{
	static const enum sdp_srtp_policy pol[] = {SDP_SRTP_OFF, SDP_SRTP_REQUIRED};

	for (unsigned i = 0; i < 2; i++) {
		struct codec_pref p = vprefs(true);
		struct sdp_local us = vlocal(pol[i], 40002, NULL);
		struct sdp_local peer = vlocal(pol[i], 50002, "42e01f");
		struct sdp_media_desc offer, poffer, ans, pans;
		struct sdp_choice pch, ch;
		char *to, *ta;

		us.video.avpf = i == 1;
		peer.addr = "203.0.113.9";
		peer.port = 50000;
		CHECK_EQ_INT(sdp_make_offer(&p, &us, &offer, why, sizeof(why)), 0);
		to = build(&offer);
		CHECK(to && parse(to, &poffer) == 0 && poffer.has_video);
		CHECK_EQ_INT(sdp_answer(&poffer, &p, &peer, &ans, &pch, why, sizeof(why)), 0);
		CHECK(pch.video.on && pch.video.pt == SDP_VIDEO_PT && pch.video.srtp == (i == 1));
		CHECK_EQ_INT(pch.video.fb, SDP_FB_OURS);
		ta = build(&ans);
		CHECK(ta && parse(ta, &pans) == 0);
		CHECK_EQ_INT(sdp_process_answer(&offer, &pans, &ch, why, sizeof(why)), 0);
		CHECK(ch.video.on && ch.video.pt == SDP_VIDEO_PT &&
		      ch.video.recv_pt == SDP_VIDEO_PT);
		CHECK_EQ_STR(ch.video.remote_addr, "203.0.113.9");
		CHECK_EQ_INT(ch.video.remote_port, 50002);
		CHECK_EQ_INT(ch.video.fb, SDP_FB_OURS);
		CHECK(ch.video.avpf == (i == 1) && ch.video.srtp == (i == 1));
		CHECK(strstr(ch.video.fmtp, "packetization-mode=1") != NULL);
		if (i == 1)
			CHECK(memcmp(ch.video.remote_key, vkey, SDP_SRTP_KEY_LEN) == 0);
		free(to);
		free(ta);
	}
}

static void test_process_answer_video_off(void)
{
	struct codec_pref p = vprefs(true);
	struct sdp_local l = vlocal(SDP_SRTP_OFF, 40002, NULL);
	struct sdp_media_desc offer, ans;
	struct sdp_choice ch;
	static const struct {
		const char *video; /* the answer's video part */
		const char *why;
	} cases[] = {
	    {"m=video 0 RTP/AVP 96" CRLF, "declines"},
	    {"", "declines"}, /* m-line missing */
	    {"m=video 6002 RTP/AVP 96" CRLF "a=rtpmap:96 H264/90000" CRLF
	     "a=fmtp:96 packetization-mode=2" CRLF,
	     "packetization-mode 1 or 0"},
	    {"m=video 6002 RTP/AVP 97" CRLF "a=rtpmap:97 VP8/90000" CRLF, "packetization-mode 1 or 0"},
	    {"m=video 6002 RTP/SAVP 96" CRLF "a=rtpmap:96 H264/90000" CRLF
	     "a=fmtp:96 packetization-mode=1" CRLF
	     "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY_A CRLF,
	     "RTP/SAVP"},
	};

	CHECK_EQ_INT(sdp_make_offer(&p, &l, &offer, why, sizeof(why)), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];

		snprintf(text, sizeof(text),
			 "v=0" CRLF "o=- 1 1 IN IP4 192.0.2.1" CRLF "s=-" CRLF
			 "c=IN IP4 192.0.2.1" CRLF "t=0 0" CRLF "m=audio 6000 RTP/AVP 0" CRLF "%s",
			 cases[i].video);
		CHECK_EQ_INT(parse(text, &ans), 0);
		CHECK_EQ_INT(sdp_process_answer(&offer, &ans, &ch, why, sizeof(why)), 0);
		CHECK(ch.codec == codec_by_id(CODEC_PCMU) && ch.remote_port == 6000);
		CHECK(!ch.video.on && strstr(ch.video.why, cases[i].why) != NULL);
		if (!strstr(ch.video.why, cases[i].why))
			fprintf(stderr, "case %zu: %s\n", i, ch.video.why);
	}
}

/* --- hold and re-offers ---------------------------------------------------------------------- */

static void test_hold_both_streams(void)
{
	struct codec_pref p = vprefs(true);
	struct sdp_local l = vlocal(SDP_SRTP_OFF, 40002, NULL);
	struct sdp_media_desc offer, ans, back;
	struct sdp_choice ch;
	struct buf b = {0};

	CHECK_EQ_INT(parse(baresip, &offer), 0);
	CHECK_EQ_INT(sdp_answer(&offer, &p, &l, &ans, &ch, why, sizeof(why)), 0);
	ans.sess_id = 10;
	ans.sess_version = 1;
	CHECK_EQ_INT(sdp_build_reoffer(&b, &ans, true, "gw"), 0);
	CHECK_EQ_INT(
	    sdp_parse_desc((const char *)buf_head(&b), buf_used(&b), &back, why, sizeof(why)), 0);
	CHECK(back.dir == SDP_DIR_SENDONLY && back.has_video && back.video.dir == SDP_DIR_SENDONLY);
	CHECK(sdp_is_hold(&back) && back.sess_version == 2);
	buf_reset(&b);
	CHECK_EQ_INT(sdp_build_reoffer(&b, &ans, false, "gw"), 0);
	CHECK_EQ_INT(
	    sdp_parse_desc((const char *)buf_head(&b), buf_used(&b), &back, why, sizeof(why)), 0);
	CHECK(back.dir == SDP_DIR_SENDRECV && back.video.dir == SDP_DIR_SENDRECV);

	/* the peer's hold re-offer: both streams answered recvonly */
	{
		struct sdp_media_desc held = offer, a2;

		held.dir = SDP_DIR_SENDONLY;
		held.video.dir = SDP_DIR_SENDONLY;
		CHECK_EQ_INT(sdp_answer(&held, &p, &l, &a2, &ch, why, sizeof(why)), 0);
		CHECK(ch.hold && ch.video.hold && a2.dir == SDP_DIR_RECVONLY &&
		      a2.video.dir == SDP_DIR_RECVONLY && ch.video.dir == SDP_DIR_RECVONLY);
	}
	buf_free(&b);
}

static void test_reoffer_video_on_off(void)
{
	struct codec_pref p = vprefs(true), pa = vprefs(false);
	struct sdp_local l = vlocal(SDP_SRTP_OFF, 40002, NULL);
	struct sdp_media_desc d, back, ans;
	struct sdp_choice ch;
	struct buf b = {0};
	char *t;

	/* audio-only call, video added, removed, added again in the same place */
	CHECK_EQ_INT(sdp_make_offer(&pa, &l, &d, why, sizeof(why)), 0);
	d.sess_id = 3;
	d.sess_version = 1;
	CHECK_EQ_INT(sdp_reoffer_video(&d, &p, &l, why, sizeof(why)), 0);
	CHECK(d.has_video && d.n_mlines == 2 && d.video_index == 1 && d.audio_index == 0);
	CHECK_EQ_INT(sdp_build_reoffer(&b, &d, false, "gw"), 0);
	CHECK_EQ_INT(
	    sdp_parse_desc((const char *)buf_head(&b), buf_used(&b), &back, why, sizeof(why)), 0);
	CHECK(back.has_video && back.video.port == 40002 && back.sess_version == 2);
	CHECK_EQ_INT(sdp_reoffer_video(&d, &pa, &l, why, sizeof(why)), 0);
	t = build(&d);
	CHECK(t && strstr(t, "\r\nm=video 0 RTP/AVP 96\r\n") && !strstr(t, "H264"));
	free(t);
	CHECK_EQ_INT(sdp_reoffer_video(&d, &p, &l, why, sizeof(why)), 0);
	CHECK(d.has_video && d.n_mlines == 2 && d.video_index == 1);

	/* a call whose first video was declined: the declined m-line is reused */
	CHECK_EQ_INT(parse(linphone, &back), 0);
	CHECK_EQ_INT(sdp_answer(&back, &pa, &l, &ans, &ch, why, sizeof(why)), 0);
	CHECK(!ans.has_video && ans.n_mlines == 2);
	CHECK_EQ_INT(sdp_reoffer_video(&ans, &p, &l, why, sizeof(why)), 0);
	CHECK(ans.has_video && ans.n_mlines == 2 && ans.video_index == 1);

	/* no room left, bad settings: refused, @d unchanged */
	d.n_mlines = SDP_MAX_MLINES;
	for (unsigned i = 1; i < SDP_MAX_MLINES; i++)
		d.mlines[i] = (struct sdp_mline){.media = "image", .proto = "udptl", .fmt = "t38"};
	d.has_video = false;
	CHECK_EQ_INT(sdp_reoffer_video(&d, &p, &l, why, sizeof(why)), -E2BIG);
	CHECK(!d.has_video);
	l.video.profile_level_id = "xyz";
	CHECK_EQ_INT(sdp_reoffer_video(&d, &p, &l, why, sizeof(why)), -EINVAL);
	buf_free(&b);
}

/* --- round trips, validation, malformed input ------------------------------------------------ */

static void test_round_trips(void)
{
	const char *samples[] = {baresip, polycom, linphone, savp, mode0};

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		struct sdp_media_desc d, back;
		char *t;

		CHECK_EQ_INT(parse(samples[i], &d), 0);
		t = build(&d);
		CHECK(t && parse(t, &back) == 0);
		CHECK(back.has_video && back.video_index == d.video_index);
		CHECK_EQ_STR(back.video.addr, d.video.addr);
		CHECK(back.video.port == d.video.port && back.video.proto == d.video.proto);
		CHECK(back.video.dir == d.video.dir && back.video.rtcp_port == d.video.rtcp_port);
		CHECK(back.video.bw_as == d.video.bw_as && back.video.bw_tias == d.video.bw_tias);
		CHECK_EQ_INT(back.video.n_formats, d.video.n_formats);
		for (unsigned f = 0; f < d.video.n_formats; f++) {
			CHECK(back.video.formats[f].pt == d.video.formats[f].pt);
			CHECK(back.video.formats[f].fb == d.video.formats[f].fb);
			CHECK(back.video.formats[f].rate == d.video.formats[f].rate);
			CHECK_EQ_STR(back.video.formats[f].name, d.video.formats[f].name);
			CHECK_EQ_STR(back.video.formats[f].fmtp, d.video.formats[f].fmtp);
		}
		CHECK_EQ_INT(back.video.n_crypto, d.video.n_crypto);
		if (i == 3) /* the video c= of its own is written under its m-line */
			CHECK(t &&
			      strstr(t, "m=video 20002 RTP/SAVP 96\r\nc=IN IP6 2001:db8::20\r\n"));
		free(t);
	}
}

static void test_build_refuses_bad_video(void)
{
	struct sdp_media_desc good, d;
	struct buf b = {0};

	CHECK_EQ_INT(parse(baresip, &good), 0);
#define REFUSED(mutation)                                                                          \
	do {                                                                                       \
		d = good;                                                                          \
		mutation;                                                                          \
		CHECK_EQ_INT(sdp_build(&b, &d, "gw", 1, 1), -EINVAL);                              \
		CHECK_EQ_INT(buf_used(&b), 0);                                                     \
	} while (0)
	REFUSED(d.video.formats[1].pt = 100); /* duplicate PT */
	REFUSED(d.video.formats[0].pt = 200); /* bad PT */
	REFUSED(d.video.n_formats = 0);
	REFUSED(d.video.n_formats = SDP_MAX_VIDEO_FORMATS + 1);
	REFUSED(strcpy(d.video.formats[0].fmtp, "a\r\nm=audio 1 RTP/AVP 0"));
	REFUSED(strcpy(d.video.formats[0].name, "H 264"));
	REFUSED(d.video.formats[0].rate = 0);
	REFUSED(d.video.formats[0].fb = 8);
	REFUSED(strcpy(d.video.addr, "example.com"));
	REFUSED(d.video_index = d.audio_index);
	REFUSED(d.video_index = 5);
	REFUSED(d.video.proto = SDP_VPROTO_SAVP); /* no crypto */
	REFUSED(d.video.dir = (enum sdp_dir)7);
	REFUSED(memset(d.video.formats[0].fmtp, 'x', sizeof(d.video.formats[0].fmtp)));
#undef REFUSED
	d = good;
	d.video.proto = SDP_VPROTO_SAVP;
	d.video.n_crypto = 1;
	d.video.crypto[0].suite = SDP_SUITE_AES_CM_128_HMAC_SHA1_80;
	CHECK_EQ_INT(sdp_build(&b, &d, "gw", 1, 1), 0);
	buf_free(&b);
}

static void test_malformed_video_lines(void)
{
	static char many[4096], longf[2048];
	struct sdp_media_desc d;
	size_t o;
	static const char *const bad[] = {
	    HEAD "m=video 5000 RTP/AVPF 96 abc" CRLF "a=rtpmap:96 H264/90000" CRLF,
	    HEAD "m=video 5000 RTP/AVPF 96 128" CRLF "a=rtpmap:96 H264/90000" CRLF,
	    HEAD "m=video 5000 RTP/AVPF 96 96" CRLF "a=rtpmap:96 H264/90000" CRLF,
	    HEAD "m=video 5000 RTP/AVP 96 96" CRLF "a=rtpmap:96 H264/90000" CRLF,
	    HEAD "m=video 5000 RTP/AVP 96" CRLF "a=rtpmap:96 H264/90000" CRLF "a=rtcp:99999" CRLF,
	    HEAD "m=video 5000 RTP/AVP 96" CRLF "a=rtpmap:96 H264/90000" CRLF "a=rtcp:x" CRLF,
	    HEAD "m=video 5000 RTP/SAVP 96" CRLF "a=rtpmap:96 H264/90000" CRLF
		 "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short" CRLF,
	    HEAD "m=video 5000/2 RTP/AVP 96" CRLF "a=rtpmap:96 H264/90000" CRLF,
	    HEAD "m=video 5000 RTP/AVP 96" CRLF "c=IN IP4 224.2.1.1/127" CRLF,
	};

	/* each: the video m-line is only remembered (declined in answers); the audio is parsed */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(parse(bad[i], &d), 0);
		CHECK(!d.has_video && d.n_codecs == 2 && d.n_mlines == 2);
		CHECK_EQ_STR(d.mlines[1].media, "video");
		if (d.has_video)
			fprintf(stderr, "bad[%zu] kept\n", i);
	}

	/* more formats than SDP_MAX_FORMATS */
	o = (size_t)snprintf(many, sizeof(many), HEAD "m=video 5000 RTP/AVPF");
	for (unsigned pt = 0; pt <= SDP_MAX_FORMATS; pt++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, " %u", pt);
	snprintf(many + o, sizeof(many) - o, CRLF);
	CHECK_EQ_INT(parse(many, &d), 0);
	CHECK(!d.has_video && d.n_codecs == 2);

	/* formats past SDP_MAX_VIDEO_FORMATS are not kept; the line is still usable */
	o = (size_t)snprintf(many, sizeof(many), HEAD "m=video 5000 RTP/AVPF");
	for (unsigned pt = 96; pt < 96 + SDP_MAX_VIDEO_FORMATS + 4; pt++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, " %u", pt);
	snprintf(many + o, sizeof(many) - o, CRLF "a=rtpmap:96 H264/90000" CRLF);
	CHECK_EQ_INT(parse(many, &d), 0);
	CHECK(d.has_video && d.video.n_formats == SDP_MAX_VIDEO_FORMATS);

	/* an fmtp above SDP_MAX_VIDEO_FMTP is dropped: H.264 with the defaults, mode 0 */
	o = (size_t)snprintf(longf, sizeof(longf),
			     HEAD "m=video 5000 RTP/AVP 96" CRLF "a=rtpmap:96 H264/90000" CRLF
				  "a=fmtp:96 packetization-mode=1;x=");
	memset(longf + o, 'a', SDP_MAX_VIDEO_FMTP);
	snprintf(longf + o + SDP_MAX_VIDEO_FMTP, sizeof(longf) - o - SDP_MAX_VIDEO_FMTP, CRLF);
	CHECK_EQ_INT(parse(longf, &d), 0);
	CHECK(d.has_video && d.video.formats[0].fmtp[0] == '\0');
	{
		struct sdp_choice ch;
		char *t = answer_text(longf, vprefs(true), vlocal(SDP_SRTP_OFF, 40002, NULL), &ch);

		CHECK(t && ch.video.on && ch.video.mode == 0 && strstr(t, "m=video 40002 RTP/AVP 96"));
		free(t);
	}

	/* odd rtcp-fb and rtpmap lines are ignored, not fatal */
	CHECK_EQ_INT(parse(HEAD "m=video 5000 RTP/AVPF 96 97" CRLF "a=rtpmap:96 H264" CRLF
				"a=rtpmap:97 H264/abc" CRLF "a=rtpmap:300 H264/90000" CRLF
				"a=rtcp-fb:96" CRLF "a=rtcp-fb:x nack" CRLF
				"a=rtcp-fb:96 nack sli" CRLF "a=rtcp-fb:97 ccm fir extra" CRLF
				"a=fmtp:99 a=b" CRLF,
			   &d),
		     0);
	CHECK(d.has_video && d.video.n_formats == 2 && !d.video.formats[0].name[0]);
	CHECK(!d.video.formats[1].name[0] && d.video.formats[0].fb == 0);

	/* a second video m-line stays remembered only; a declined first gives way to it */
	CHECK_EQ_INT(parse(HEAD "m=video 0 RTP/AVP 96" CRLF "m=video 6000 RTP/AVP 97" CRLF
				"a=rtpmap:97 H264/90000" CRLF "m=video 7000 RTP/AVP 98" CRLF,
			   &d),
		     0);
	CHECK(d.has_video && d.video_index == 2 && d.video.port == 6000 && d.n_mlines == 4);
	CHECK_EQ_INT(parse(HEAD "m=video 0 RTP/AVP 96" CRLF, &d), 0);
	CHECK(!d.has_video && d.n_mlines == 2); /* declined: remembered only */
}

int main(void)
{
	TEST_RUN(test_parse_baresip);
	TEST_RUN(test_parse_polycom_avpf);
	TEST_RUN(test_parse_linphone_and_own_c);
	TEST_RUN(test_fmtp_helpers);
	TEST_RUN(test_answer_baresip);
	TEST_RUN(test_answer_polycom_profiles);
	TEST_RUN(test_answer_linphone_sprop);
	TEST_RUN(test_answer_declines);
	TEST_RUN(test_answer_srtp_video);
	TEST_RUN(test_offer_video);
	TEST_RUN(test_offer_answer_round_trip);
	TEST_RUN(test_process_answer_video_off);
	TEST_RUN(test_hold_both_streams);
	TEST_RUN(test_reoffer_video_on_off);
	TEST_RUN(test_round_trips);
	TEST_RUN(test_build_refuses_bad_video);
	TEST_RUN(test_malformed_video_lines);
	return TEST_DONE();
}
