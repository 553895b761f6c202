/*
 * fuzz_sdp.c - libFuzzer target for the SDP module (signaler/sdp.c over sofia-sip's parser).
 *
 * Properties checked beyond "no crash, no leak, no UB, no hang" (sofia-sip itself is not
 * instrumented: its hangs and memory blow-ups show up as libFuzzer timeouts / rss limits):
 *  - a failed parse returns a known errno with a reason, a successful one respects every bound;
 *  - a parsed description, minus the crypto lines sdp_build() cannot write, builds, and the text
 *    parses back to the same description (build -> parse round trip);
 *  - answering it as an offer either refuses with -ENOTSUP or gives an answer that builds,
 *    parses, and is accepted by sdp_process_answer() with the same codec, payload types,
 *    telephone-event and SRTP choice;
 *  - a hold re-offer of that answer parses back as a hold.
 * The video part takes the same properties: its bounds, its round trip, an answer with video
 * allowed whose video choice sdp_process_answer() finds again, a hold covering it.
 */
#include "sdp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"

static const uint8_t our_key[SDP_SRTP_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
						  11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
						  21, 22, 23, 24, 25, 26, 27, 28, 29, 30};
static const uint8_t our_vkey[SDP_SRTP_KEY_LEN] = {31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
						   41, 42, 43, 44, 45, 46, 47, 48, 49, 50,
						   51, 52, 53, 54, 55, 56, 57, 58, 59, 60};

static void check_video_bounds(const struct sdp_media_desc *d)
{
	const struct sdp_video *v = &d->video;
	uint8_t seen[128] = {0};

	EXPECT(d->video_index < d->n_mlines && d->video_index != d->audio_index);
	EXPECT(memchr(v->addr, 0, sizeof(v->addr)) && (v->port == 0 || v->addr[0]));
	EXPECT((unsigned)v->dir <= SDP_DIR_INACTIVE && (unsigned)v->proto <= SDP_VPROTO_SAVPF);
	EXPECT(v->n_formats >= 1 && v->n_formats <= SDP_MAX_VIDEO_FORMATS);
	EXPECT(v->n_crypto <= SDP_MAX_CRYPTO);
	for (unsigned i = 0; i < v->n_formats; i++) {
		const struct sdp_video_format *f = &v->formats[i];

		EXPECT(f->pt <= 127 && !seen[f->pt]++ && !(f->fb & ~SDP_FB_ALL));
		EXPECT(memchr(f->name, 0, sizeof(f->name)) && memchr(f->fmtp, 0, sizeof(f->fmtp)));
		EXPECT(f->name[0] ? f->rate > 0 : f->rate == 0 && !f->fmtp[0]);
	}
}

static bool video_srtp(const struct sdp_video *v)
{
	return v->proto == SDP_VPROTO_SAVP || v->proto == SDP_VPROTO_SAVPF;
}

static int parse_buf(const struct buf *b, struct sdp_media_desc *d, char *why, size_t whylen)
{
	return sdp_parse_desc((const char *)buf_head(b), buf_used(b), d, why, whylen);
}

static void check_bounds(const struct sdp_media_desc *d)
{
	EXPECT(d->n_codecs <= SDP_MAX_CODECS);
	EXPECT(d->n_crypto <= SDP_MAX_CRYPTO);
	EXPECT(d->n_mlines >= 1 && d->n_mlines <= SDP_MAX_MLINES);
	EXPECT(d->audio_index < d->n_mlines);
	EXPECT(d->te_pt >= -1 && d->te_pt <= 127);
	EXPECT(memchr(d->addr, 0, sizeof(d->addr)));
	EXPECT(d->port == 0 || d->addr[0]);
	EXPECT((unsigned)d->dir <= SDP_DIR_INACTIVE);
	for (unsigned i = 0; i < d->n_codecs; i++) {
		EXPECT(d->codecs[i].pt <= 127 && d->codecs[i].rate > 0);
		EXPECT(d->codecs[i].channels >= 1);
		EXPECT(memchr(d->codecs[i].name, 0, sizeof(d->codecs[i].name)));
		EXPECT(memchr(d->codecs[i].fmtp, 0, sizeof(d->codecs[i].fmtp)));
		EXPECT(d->te_pt != d->codecs[i].pt);
	}
	if (d->has_video)
		check_video_bounds(d);
}

static void same_crypto(const struct sdp_crypto *x, const struct sdp_crypto *y)
{
	EXPECT(x->tag == y->tag && x->suite == y->suite && x->lifetime == y->lifetime);
	EXPECT(x->mki_len == y->mki_len && (!x->mki_len || x->mki == y->mki));
	EXPECT(memcmp(x->key, y->key, SDP_SRTP_KEY_LEN) == 0);
}

static void same_video(const struct sdp_video *a, const struct sdp_video *b)
{
	EXPECT(strcmp(a->addr, b->addr) == 0 && a->port == b->port && a->dir == b->dir);
	EXPECT(a->proto == b->proto && a->rtcp_port == b->rtcp_port);
	EXPECT(a->bw_as == b->bw_as && a->bw_tias == b->bw_tias && a->n_formats == b->n_formats);
	for (unsigned i = 0; i < a->n_formats; i++) {
		const struct sdp_video_format *x = &a->formats[i], *y = &b->formats[i];

		EXPECT(x->pt == y->pt && x->fb == y->fb && x->rate == y->rate);
		EXPECT(strcmp(x->name, y->name) == 0 && strcmp(x->fmtp, y->fmtp) == 0);
	}
	if (!video_srtp(a))
		return;
	EXPECT(a->n_crypto == b->n_crypto);
	for (unsigned i = 0; i < a->n_crypto; i++)
		same_crypto(&a->crypto[i], &b->crypto[i]);
}

static void same_codec(const struct sdp_codec *a, const struct sdp_codec *b)
{
	EXPECT(a->pt == b->pt && a->rate == b->rate && a->channels == b->channels);
	EXPECT(strcmp(a->name, b->name) == 0 && strcmp(a->fmtp, b->fmtp) == 0);
}

static void same_desc(const struct sdp_media_desc *a, const struct sdp_media_desc *b)
{
	EXPECT(strcmp(a->addr, b->addr) == 0 && a->port == b->port && a->dir == b->dir);
	EXPECT(a->srtp == b->srtp && a->ptime == b->ptime && a->n_codecs == b->n_codecs);
	for (unsigned i = 0; i < a->n_codecs; i++)
		same_codec(&a->codecs[i], &b->codecs[i]);
	EXPECT(a->te_pt == b->te_pt);
	if (a->te_pt >= 0)
		EXPECT(a->te_rate == b->te_rate && strcmp(a->te_fmtp, b->te_fmtp) == 0);
	EXPECT(a->n_mlines == b->n_mlines && a->audio_index == b->audio_index);
	EXPECT(a->has_video == b->has_video);
	if (a->has_video) {
		EXPECT(a->video_index == b->video_index);
		same_video(&a->video, &b->video);
	}
	for (unsigned i = 0; i < a->n_mlines; i++) {
		if (i == a->audio_index || (a->has_video && i == a->video_index))
			continue;
		EXPECT(strcmp(a->mlines[i].media, b->mlines[i].media) == 0);
		EXPECT(strcmp(a->mlines[i].proto, b->mlines[i].proto) == 0);
		EXPECT(strcmp(a->mlines[i].fmt, b->mlines[i].fmt) == 0);
	}
	if (!a->srtp)
		return;
	EXPECT(a->n_crypto == b->n_crypto);
	for (unsigned i = 0; i < a->n_crypto; i++)
		same_crypto(&a->crypto[i], &b->crypto[i]);
}

/* Keeps the crypto lines sdp_build() can write; their number. */
static unsigned writable_crypto(struct sdp_crypto *k, unsigned n)
{
	unsigned w = 0;

	for (unsigned i = 0; i < n; i++)
		if (sdp_srtp_suite_name(k[i].suite) && !k[i].extra)
			k[w++] = k[i];
	return w;
}

/* build -> parse of @d with only the crypto lines sdp_build() can write. */
static void round_trip(const struct sdp_media_desc *parsed)
{
	struct sdp_media_desc d = *parsed, back;
	struct buf b = {0};
	char why[160];
	unsigned n;
	int ret;

	n = d.n_crypto = writable_crypto(d.crypto, d.n_crypto);
	d.video.n_crypto = writable_crypto(d.video.crypto, d.video.n_crypto);
	ret = sdp_build(&b, &d, "fuzz", d.sess_id, d.sess_version);
	if (!d.addr[0] || (d.srtp && !n) || (d.n_codecs == 0 && d.te_pt < 0) ||
	    (d.has_video && video_srtp(&d.video) && !d.video.n_crypto)) {
		EXPECT(ret == -EINVAL && buf_used(&b) == 0);
		buf_free(&b);
		return;
	}
	EXPECT(ret == 0);
	EXPECT(parse_buf(&b, &back, why, sizeof(why)) == 0);
	same_desc(&d, &back);
	EXPECT(back.sess_id == d.sess_id && back.sess_version == d.sess_version);
	EXPECT(strcmp(back.origin_user, "fuzz") == 0);
	buf_free(&b);
}

static void offer_answer(const struct sdp_media_desc *offer)
{
	struct codec_pref ours = {.n = 4, .dtmf = true, .video = true};
	struct sdp_local local = {
	    .addr = "192.0.2.1",
	    .port = 4000,
	    .srtp = SDP_SRTP_OPTIONAL,
	    .key = our_key,
	    .video = {.port = 4002, .profile_level_id = "42e01f", .key = our_vkey}};
	struct sdp_media_desc answer, back;
	struct sdp_choice ch, ch2;
	struct buf b = {0};
	char why[160];
	int ret;

	ours.codecs[0] = codec_by_id(CODEC_SPEEX_WB);
	ours.codecs[1] = codec_by_id(CODEC_SPEEX_NB);
	ours.codecs[2] = codec_by_id(CODEC_PCMU);
	ours.codecs[3] = codec_by_id(CODEC_PCMA);
	ret = sdp_answer(offer, &ours, &local, &answer, &ch, why, sizeof(why));
	if (ret < 0) {
		EXPECT(ret == -ENOTSUP && why[0]);
		return;
	}
	EXPECT(ch.codec && ch.pt <= 127);
	EXPECT(sdp_build(&b, &answer, "gw", 1, 1) == 0);
	EXPECT(parse_buf(&b, &back, why, sizeof(why)) == 0);
	EXPECT(sdp_process_answer(offer, &back, &ch2, why, sizeof(why)) == 0);
	EXPECT(ch2.codec == ch.codec && ch2.pt == ch.pt && ch2.recv_pt == ch.pt);
	EXPECT(ch2.te_pt == ch.te_pt && ch2.srtp == ch.srtp && ch2.dir == offer->dir);
	if (ch.srtp) {
		EXPECT(ch2.crypto_tag == ch.crypto_tag && ch2.suite == ch.suite);
		EXPECT(memcmp(ch2.remote_key, our_key, SDP_SRTP_KEY_LEN) == 0);
	}
	EXPECT(ch.video.on == answer.has_video && ch2.video.on == ch.video.on);
	EXPECT(ch.video.on || ch.video.why[0]);
	if (ch.video.on) {
		EXPECT(ch2.video.pt == ch.video.pt && ch2.video.recv_pt == ch.video.pt);
		EXPECT(ch2.video.fb == ch.video.fb && ch2.video.srtp == ch.video.srtp);
		EXPECT(ch2.video.dir == offer->video.dir && ch2.video.remote_port == 4002);
		if (ch.video.srtp)
			EXPECT(memcmp(ch2.video.remote_key, our_vkey, SDP_SRTP_KEY_LEN) == 0);
	}

	/* hold re-offer of our answer */
	buf_reset(&b);
	answer.sess_id = 1;
	answer.sess_version = 1;
	EXPECT(sdp_build_reoffer(&b, &answer, true, "gw") == 0);
	EXPECT(parse_buf(&b, &back, why, sizeof(why)) == 0);
	EXPECT(sdp_is_hold(&back) && back.sess_version == 2);
	if (answer.has_video) /* a declined video is echoed with port 0 */
		EXPECT(back.has_video &&
		       (back.video.dir == SDP_DIR_SENDONLY || back.video.dir == SDP_DIR_INACTIVE));
	else
		EXPECT(!back.has_video || back.video.port == 0);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sdp_media_desc d;
	char why[160];
	int ret;

	ret = sdp_parse_desc((const char *)data, size, &d, why, sizeof(why));
	if (ret < 0) {
		EXPECT(ret == -EBADMSG || ret == -E2BIG || ret == -ENOENT ||
		       ret == -EPROTONOSUPPORT);
		EXPECT(why[0] != '\0');
		EXPECT(d.n_codecs == 0 && d.te_pt == -1);
		return 0;
	}
	check_bounds(&d);
	round_trip(&d);
	if (d.port)
		offer_answer(&d);
	return 0;
}
