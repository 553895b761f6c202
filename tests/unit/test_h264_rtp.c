/*
 * test_h264_rtp.c - unit tests for mediaworker/h264_rtp.c: FLV AVC headers, packetize then
 * depacketize (sizes, FU-A bits, STAP-A before an IDR, the marker), a real x264 stream through
 * both at several MTUs with its NAL units compared byte for byte, loss inside an FU-A, an AU
 * ended by a timestamp change, the AU size bound, refused packet types, decode times of I P B B.
 */
#include "buf.h"
#include "h264_rtp.h"
#include "h264_sample.h"
#include "harness.h"

#include <errno.h>
#include <string.h>

/* ---- packet and AU collectors ---- */

#define MAX_PKTS 32768 /* MTU 3 cuts 30 kB into 15,000 */
#define MAX_DATA 512   /* packets kept whole */

struct pkts {
	int n;
	size_t len[MAX_PKTS];
	bool marker[MAX_PKTS];
	uint8_t hdr[MAX_PKTS][2]; /* first two bytes (the second 0 in a 1-byte packet) */
	uint8_t data[MAX_DATA][H264_RTP_MAX_PAYLOAD];
	int fail_at; /* out() fails at this packet (-1: never) */
};

static struct pkts pk;

static int pkt_out(void *arg, const uint8_t *p, size_t len, bool marker)
{
	struct pkts *o = arg;

	if (o->n == o->fail_at)
		return -EPIPE;
	if (o->n >= MAX_PKTS || len > H264_RTP_MAX_PAYLOAD)
		return -ENOSPC;
	if (o->n < MAX_DATA)
		memcpy(o->data[o->n], p, len);
	o->hdr[o->n][0] = p[0];
	o->hdr[o->n][1] = len > 1 ? p[1] : 0;
	o->len[o->n] = len;
	o->marker[o->n] = marker;
	o->n++;
	return 0;
}

static void pkts_clear(struct pkts *o)
{
	o->n = 0;
	o->fail_at = -1;
}

#define AU_CAP (64 * 1024)

struct aus {
	int n;
	size_t len[16];
	uint32_t ts[16];
	bool key[16], changed[16];
	uint8_t data[16][AU_CAP];
	struct h264_params ps;
};

static struct aus au_out;

static void au_collect(void *arg, const struct h264_au *au)
{
	struct aus *o = arg;

	if (o->n >= 16 || au->len > AU_CAP)
		return;
	memcpy(o->data[o->n], au->data, au->len);
	o->len[o->n] = au->len;
	o->ts[o->n] = au->rtp_ts;
	o->key[o->n] = au->keyframe;
	o->changed[o->n] = au->params_changed;
	o->ps = *au->ps;
	o->n++;
}

/* Pushes every collected packet at @ts into @d (none lost). */
static void push_all(struct h264_depack *d, const struct pkts *p, uint32_t ts, struct aus *o)
{
	CHECK(p->n <= MAX_DATA);
	for (int i = 0; i < p->n && i < MAX_DATA; i++)
		CHECK_EQ_INT(h264_depack_push(d, p->data[i], p->len[i], ts, p->marker[i], false,
					      au_collect, o),
			     0);
}

/* Packetizes AU @au (@n bytes, 4-byte lengths) at @mtu and pushes all of it at @ts. */
static int send_au(struct h264_depack *d, const uint8_t *au, size_t n, const struct h264_params *ps,
		   size_t mtu, uint32_t ts)
{
	int r;

	pkts_clear(&pk);
	r = h264_packetize(au, n, 4, ps, mtu, pkt_out, &pk);
	push_all(d, &pk, ts, &au_out);
	return r;
}

/* An AU of one NAL unit of type @type and @n bytes (header included), 4-byte length. */
static size_t one_nal_au(uint8_t *out, unsigned type, size_t n)
{
	wr_be32(out, (uint32_t)n);
	out[4] = (uint8_t)(0x60 | type);
	for (size_t i = 1; i < n; i++)
		out[4 + i] = (uint8_t)(i * 7 + 1);
	return 4 + n;
}

static void params_720p(struct h264_params *ps)
{
	memset(ps, 0, sizeof(*ps));
	CHECK_EQ_INT(h264_params_add(ps, sps_720p, sizeof(sps_720p), NULL), 0);
	CHECK_EQ_INT(h264_params_add(ps, pps_720p, sizeof(pps_720p), NULL), 0);
}

/* ---- FLV ---- */

static void test_flv_header(void)
{
	struct h264_flv f;
	uint8_t h[5 + 3];

	h264_flv_header(h, true, H264_FLV_NALU, -33);
	CHECK(h[0] == 0x17 && h[1] == 1 && h[2] == 0xff && h[3] == 0xff && h[4] == 0xdf);
	CHECK_EQ_INT(h264_flv_parse(h, 5, &f), 0);
	CHECK(f.keyframe && !f.command);
	CHECK_EQ_INT(f.packet_type, H264_FLV_NALU);
	CHECK_EQ_INT(f.cts, -33);
	CHECK_EQ_INT(f.data_len, 0);
	h264_flv_header(h, false, H264_FLV_SEQUENCE_HEADER, 0x7fffff + 5); /* clamped */
	h[5] = 1;
	CHECK_EQ_INT(h264_flv_parse(h, 6, &f), 0);
	CHECK(!f.keyframe);
	CHECK_EQ_INT(f.frame_type, 2);
	CHECK_EQ_INT(f.cts, 0x7fffff);
	CHECK_EQ_INT(f.data_len, 1);
	CHECK(f.data == h + 5);
	h264_flv_header(h, false, H264_FLV_NALU, -0x900000);
	CHECK_EQ_INT(h264_flv_parse(h, 5, &f), 0);
	CHECK_EQ_INT(f.cts, -0x800000);

	/* other codecs say which */
	h[0] = 0x22; /* Sorenson H.263 */
	CHECK_EQ_INT(h264_flv_parse(h, 5, &f), -EPROTONOSUPPORT);
	CHECK_EQ_INT(f.codec_id, 2);
	h[0] = 0x1c; /* HEVC (codec id 12) */
	CHECK_EQ_INT(h264_flv_parse(h, 5, &f), -EPROTONOSUPPORT);
	CHECK_EQ_INT(f.codec_id, 12);
	memcpy(h, "\x90hvc1", 5); /* Enhanced RTMP */
	CHECK_EQ_INT(h264_flv_parse(h, 5, &f), -EPROTONOSUPPORT);
	CHECK_EQ_INT(f.fourcc, 0x68766331);

	/* malformed */
	h264_flv_header(h, true, H264_FLV_NALU, 0);
	for (size_t n = 0; n < 5; n++)
		CHECK_EQ_INT(h264_flv_parse(h, n, &f), -EBADMSG);
	h[1] = 3;
	CHECK_EQ_INT(h264_flv_parse(h, 5, &f), -EBADMSG);
	h[0] = 0x07; /* frame type 0 */
	CHECK_EQ_INT(h264_flv_parse(h, 5, &f), -EBADMSG);
	h[0] = 0x67;
	CHECK_EQ_INT(h264_flv_parse(h, 5, &f), -EBADMSG);
	h[0] = 0x57; /* info/command: one byte */
	h[1] = 0;
	CHECK_EQ_INT(h264_flv_parse(h, 2, &f), 0);
	CHECK(f.command && f.data_len == 1);
}

/* ---- packetizer ---- */

/* Checks the shape of the packets of one AU: sizes, marker only on the last, FU-A runs. */
static void check_shape(const struct pkts *p, size_t max)
{
	bool in_fu = false;

	for (int i = 0; i < p->n; i++) {
		unsigned t = p->hdr[i][0] & 0x1f;

		CHECK(p->len[i] <= max);
		CHECK(p->marker[i] == (i == p->n - 1));
		CHECK(t >= 1 && t <= 28 && t != 25 && t != 26 && t != 27);
		if (t == H264_NAL_FU_A) {
			bool s = p->hdr[i][1] & 0x80, e = p->hdr[i][1] & 0x40;

			CHECK(s != in_fu); /* a start exactly when none is open */
			CHECK(!(s && e));
			in_fu = !e;
		} else {
			CHECK(!in_fu);
		}
	}
	CHECK(!in_fu);
}

static void test_packetize_sizes(void)
{
	static uint8_t au[40000];
	static const size_t mtus[] = {3, 20, 100, 500, 1200, 1400, 1500, 9000};
	static const size_t sizes[] = {1, 2, 50, 499, 500, 501, 1400, 30000};

	for (size_t m = 0; m < sizeof(mtus) / sizeof(mtus[0]); m++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			size_t n = one_nal_au(au, H264_NAL_SLICE, sizes[s]);
			size_t max =
			    mtus[m] < H264_RTP_MAX_PAYLOAD ? mtus[m] : H264_RTP_MAX_PAYLOAD;
			int r;

			pkts_clear(&pk);
			r = h264_packetize(au, n, 4, NULL, mtus[m], pkt_out, &pk);
			CHECK_EQ_INT(r, pk.n);
			check_shape(&pk, max);
			if (sizes[s] <= max) {
				CHECK_EQ_INT(pk.n, 1);
				CHECK(memcmp(pk.data[0], au + 4, sizes[s]) == 0);
			} else {
				size_t frag = max - 2;

				CHECK_EQ_INT(pk.n, (sizes[s] - 1 + frag - 1) / frag);
				CHECK_EQ_INT(pk.data[0][0], 0x60 | H264_NAL_FU_A); /* NRI kept */
				CHECK_EQ_INT(pk.data[0][1] & 0x1f, H264_NAL_SLICE);
			}
		}
	}
}

static void test_packetize_params_before_idr(void)
{
	static uint8_t au[8000];
	struct h264_params ps;
	size_t n;

	params_720p(&ps);
	n = one_nal_au(au, H264_NAL_IDR, 3000);
	pkts_clear(&pk);
	CHECK_EQ_INT(h264_packetize(au, n, 4, &ps, 1200, pkt_out, &pk), 4);
	check_shape(&pk, 1200);
	CHECK_EQ_INT(pk.data[0][0] & 0x1f, H264_NAL_STAP_A);
	CHECK_EQ_INT(pk.data[0][0] & 0x60, 0x60);
	CHECK_EQ_INT(pk.len[0], 1 + 2 + sizeof(sps_720p) + 2 + sizeof(pps_720p));
	CHECK_EQ_INT(rd_be16(pk.data[0] + 1), sizeof(sps_720p));
	CHECK(memcmp(pk.data[0] + 3, sps_720p, sizeof(sps_720p)) == 0);
	CHECK(memcmp(pk.data[0] + 5 + sizeof(sps_720p), pps_720p, sizeof(pps_720p)) == 0);

	/* too small for the STAP-A: one by one (the SPS itself in FU-A) */
	pkts_clear(&pk);
	CHECK(h264_packetize(au, n, 4, &ps, 20, pkt_out, &pk) > 0);
	check_shape(&pk, 20);
	CHECK_EQ_INT(pk.data[0][0] & 0x1f, H264_NAL_FU_A);
	CHECK_EQ_INT(pk.data[0][1], 0x80 | H264_NAL_SPS);
	CHECK_EQ_INT(pk.data[2][0], pps_720p[0]);
	CHECK_EQ_INT(pk.data[3][1], 0x80 | H264_NAL_IDR);

	/* not before a non-IDR AU */
	n = one_nal_au(au, H264_NAL_SLICE, 100);
	pkts_clear(&pk);
	CHECK_EQ_INT(h264_packetize(au, n, 4, &ps, 1200, pkt_out, &pk), 1);

	/* not when the AU carries its own: SPS, PPS, IDR in 2-byte lengths */
	n = 0;
	wr_be16(au + n, sizeof(sps_720p));
	memcpy(au + n + 2, sps_720p, sizeof(sps_720p));
	n += 2 + sizeof(sps_720p);
	wr_be16(au + n, sizeof(pps_720p));
	memcpy(au + n + 2, pps_720p, sizeof(pps_720p));
	n += 2 + sizeof(pps_720p);
	wr_be16(au + n, 10);
	memset(au + n + 2, 0x65, 10);
	n += 12;
	pkts_clear(&pk);
	CHECK_EQ_INT(h264_packetize(au, n, 2, &ps, 1200, pkt_out, &pk), 3);
	CHECK_EQ_INT(pk.data[0][0], 0x67);
	CHECK(pk.marker[2] && !pk.marker[0] && !pk.marker[1]);
}

static void test_packetize_skips_and_errors(void)
{
	uint8_t au[64];
	size_t n = 0;

	/* AUD, filler, type 0, an empty one, type 30, then a slice, then an AUD: one packet with
	 * the marker, though it is not the last NAL unit of the AU */
	au[n++] = 2, au[n++] = 0x09, au[n++] = 0xf0;
	au[n++] = 3, au[n++] = 0x0c, au[n++] = 0xff, au[n++] = 0x80;
	au[n++] = 2, au[n++] = 0x00, au[n++] = 0x11;
	au[n++] = 0;
	au[n++] = 2, au[n++] = 0x1e, au[n++] = 0x11;
	au[n++] = 3, au[n++] = 0x41, au[n++] = 0x9a, au[n++] = 0x22;
	au[n++] = 2, au[n++] = 0x09, au[n++] = 0xf0;
	pkts_clear(&pk);
	CHECK_EQ_INT(h264_packetize(au, n, 1, NULL, 1200, pkt_out, &pk), 1);
	CHECK(pk.marker[0] && pk.len[0] == 3 && pk.data[0][0] == 0x41);

	/* a length that overruns: nothing at all is sent */
	au[n++] = 9, au[n++] = 0x41;
	pkts_clear(&pk);
	CHECK_EQ_INT(h264_packetize(au, n, 1, NULL, 1200, pkt_out, &pk), -EBADMSG);
	CHECK_EQ_INT(pk.n, 0);
	CHECK_EQ_INT(h264_packetize(au, 1, 2, NULL, 1200, pkt_out, &pk), -EBADMSG);
	CHECK_EQ_INT(h264_packetize(au, 0, 4, NULL, 1200, pkt_out, &pk), 0);
	CHECK_EQ_INT(h264_packetize(au, 4, 3, NULL, 1200, pkt_out, &pk), -EINVAL);
	CHECK_EQ_INT(h264_packetize(au, 4, 4, NULL, 2, pkt_out, &pk), -EINVAL);

	/* out()'s error stops it */
	{
		static uint8_t big[5000];
		size_t bn = one_nal_au(big, H264_NAL_SLICE, 4000);

		pkts_clear(&pk);
		pk.fail_at = 2;
		CHECK_EQ_INT(h264_packetize(big, bn, 4, NULL, 1000, pkt_out, &pk), -EPIPE);
		CHECK_EQ_INT(pk.n, 2);
	}
}

/* ---- depacketizer ---- */

static void test_round_trip_synthetic(void)
{
	static uint8_t au[40000];
	struct h264_depack *d = h264_depack_new(1 << 20);
	struct h264_params ps;
	struct h264_depack_stats st;
	size_t n;

	params_720p(&ps);
	CHECK(h264_depack_need_keyframe(d));
	memset(&au_out, 0, sizeof(au_out));
	/* a P frame first: waits for the keyframe */
	n = one_nal_au(au, H264_NAL_SLICE, 700);
	send_au(d, au, n, &ps, 500, 1000);
	CHECK_EQ_INT(au_out.n, 0);
	/* IDR with the sets before it in a STAP-A */
	n = one_nal_au(au, H264_NAL_IDR, 30000);
	send_au(d, au, n, &ps, 1400, 4000);
	CHECK_EQ_INT(au_out.n, 1);
	CHECK(au_out.key[0] && au_out.changed[0]);
	CHECK_EQ_INT(au_out.ts[0], 4000);
	CHECK_EQ_INT(au_out.len[0], n); /* SPS and PPS taken out, the IDR as it was */
	CHECK(memcmp(au_out.data[0], au, n) == 0);
	CHECK_EQ_INT(au_out.ps.n_sps, 1);
	CHECK_EQ_INT(au_out.ps.width, 1280);
	CHECK(!h264_depack_need_keyframe(d));
	/* the same sets again: no change said */
	send_au(d, au, n, &ps, 1400, 7000);
	CHECK_EQ_INT(au_out.n, 2);
	CHECK(au_out.key[1] && !au_out.changed[1]);
	/* two slices and an SEI in one AU, small MTU */
	n = one_nal_au(au, H264_NAL_SEI, 40);
	n += one_nal_au(au + n, H264_NAL_SLICE, 900);
	n += one_nal_au(au + n, H264_NAL_SLICE, 30);
	send_au(d, au, n, &ps, 100, 10000);
	CHECK_EQ_INT(au_out.n, 3);
	CHECK(!au_out.key[2]);
	CHECK_EQ_INT(au_out.len[2], n);
	CHECK(memcmp(au_out.data[2], au, n) == 0);
	h264_depack_stats(d, &st);
	CHECK_EQ_INT(st.aus, 3);
	CHECK_EQ_INT(st.keyframes, 2);
	CHECK_EQ_INT(st.aus_dropped, 1);
	CHECK_EQ_INT(st.bad_packets + st.too_big, 0);
	h264_depack_free(&d);
	CHECK(d == NULL);
	h264_depack_free(&d);
}

/* An AVCC AU builder over the Annex B sample: NAL units grouped into access units. */
struct sample_au {
	size_t len;
	uint8_t data[8192];
	bool idr;
};

/* Splits h264_sample into AUs (a new one starts at a slice with first_mb_in_slice 0, or at a
 * non-VCL unit after a slice); returns their number. */
static int sample_aus(struct sample_au *aus, int max)
{
	const uint8_t *p = h264_sample;
	size_t len = sizeof(h264_sample), i = 0;
	int n = -1;
	bool vcl_seen = false;

	while (i + 3 <= len) {
		size_t s, e;
		unsigned t;
		bool first_mb0;

		if (!(p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1)) {
			i++;
			continue;
		}
		s = i + 3;
		for (e = s; e + 3 <= len && !(p[e] == 0 && p[e + 1] == 0 && p[e + 2] == 1); e++)
			;
		if (e + 3 > len)
			e = len;
		i = e;
		while (e > s && p[e - 1] == 0) /* trailing zeros belong to the next start code */
			e--;
		t = p[s] & 0x1f;
		first_mb0 = (t == 1 || t == 5) && (p[s + 1] & 0x80);
		if (n < 0 || (vcl_seen && (first_mb0 || !(t == 1 || t == 5)))) {
			if (n + 1 >= max)
				break;
			n++;
			aus[n].len = 0;
			aus[n].idr = false;
			vcl_seen = false;
		}
		vcl_seen |= t == 1 || t == 5;
		aus[n].idr |= t == 5;
		wr_be32(aus[n].data + aus[n].len, (uint32_t)(e - s));
		memcpy(aus[n].data + aus[n].len + 4, p + s, e - s);
		aus[n].len += 4 + e - s;
	}
	return n + 1;
}

/* @au without its SPS and PPS: what the depacketizer gives back. */
static size_t strip_params(const uint8_t *au, size_t len, uint8_t *out)
{
	size_t i = 0, n = 0;

	while (i + 4 <= len) {
		size_t l = rd_be32(au + i);
		unsigned t = au[i + 4] & 0x1f;

		if (t != H264_NAL_SPS && t != H264_NAL_PPS) {
			memcpy(out + n, au + i, 4 + l);
			n += 4 + l;
		}
		i += 4 + l;
	}
	return n;
}

static void test_real_stream_round_trip(void)
{
	static struct sample_au aus[16];
	static uint8_t expect[8192];
	static const size_t mtus[] = {60, 300, 1200, 1400};
	int naus = sample_aus(aus, 16);

	CHECK_EQ_INT(naus, 6);
	CHECK(aus[0].idr);
	for (size_t m = 0; m < sizeof(mtus) / sizeof(mtus[0]); m++) {
		struct h264_depack *d = h264_depack_new(1 << 20);
		struct h264_depack_stats st;

		memset(&au_out, 0, sizeof(au_out));
		for (int a = 0; a < naus; a++) {
			pkts_clear(&pk);
			CHECK(h264_packetize(aus[a].data, aus[a].len, 4, NULL, mtus[m], pkt_out,
					     &pk) > 0);
			check_shape(&pk, mtus[m]);
			push_all(d, &pk, 3000u * (uint32_t)a, &au_out);
		}
		CHECK_EQ_INT(au_out.n, naus);
		for (int a = 0; a < naus && a < au_out.n; a++) {
			size_t n = strip_params(aus[a].data, aus[a].len, expect);

			CHECK_EQ_INT(au_out.len[a], n);
			CHECK(memcmp(au_out.data[a], expect, n) == 0);
			CHECK(au_out.key[a] == aus[a].idr);
			CHECK_EQ_INT(au_out.ts[a], 3000u * (uint32_t)a);
		}
		CHECK(au_out.changed[0] && !au_out.changed[1]);
		CHECK_EQ_INT(au_out.ps.width, 320);
		CHECK_EQ_INT(au_out.ps.height, 240);
		h264_depack_stats(d, &st);
		CHECK_EQ_INT(st.aus_dropped + st.bad_packets + st.too_big, 0);
		h264_depack_free(&d);
	}
}

static void test_loss_in_fu_a_waits_for_idr(void)
{
	static uint8_t au[8000];
	struct h264_depack *d = h264_depack_new(1 << 20);
	struct h264_depack_stats st;
	struct h264_params ps;
	size_t n;

	params_720p(&ps);
	memset(&au_out, 0, sizeof(au_out));
	n = one_nal_au(au, H264_NAL_IDR, 5000);
	send_au(d, au, n, &ps, 1200, 0);
	CHECK_EQ_INT(au_out.n, 1);

	/* a P frame in 5 fragments, the third lost */
	n = one_nal_au(au, H264_NAL_SLICE, 5000);
	pkts_clear(&pk);
	CHECK_EQ_INT(h264_packetize(au, n, 4, &ps, 1200, pkt_out, &pk), 5);
	for (int i = 0; i < pk.n; i++)
		CHECK_EQ_INT(h264_depack_push(d, i == 2 ? NULL : pk.data[i], i == 2 ? 0 : pk.len[i],
					      3000, pk.marker[i], i == 2, au_collect, &au_out),
			     0);
	CHECK_EQ_INT(au_out.n, 1);
	CHECK(h264_depack_need_keyframe(d));
	/* the next P frames are dropped too, whole as they are */
	push_all(d, &pk, 6000, &au_out);
	push_all(d, &pk, 9000, &au_out);
	CHECK_EQ_INT(au_out.n, 1);
	/* the IDR comes: out again */
	n = one_nal_au(au, H264_NAL_IDR, 5000);
	send_au(d, au, n, &ps, 1200, 12000);
	CHECK_EQ_INT(au_out.n, 2);
	CHECK(au_out.key[1]);
	CHECK(!h264_depack_need_keyframe(d));
	h264_depack_stats(d, &st);
	CHECK_EQ_INT(st.aus_dropped, 3);
	CHECK_EQ_INT(st.aus, 2);

	/* a missing FU-A start (the first fragment lost between AUs), then a missing end */
	n = one_nal_au(au, H264_NAL_SLICE, 3000);
	pkts_clear(&pk);
	h264_packetize(au, n, 4, &ps, 1200, pkt_out, &pk);
	CHECK_EQ_INT(h264_depack_push(d, NULL, 0, 0, false, true, au_collect, &au_out), 0);
	for (int i = 1; i < pk.n; i++)
		h264_depack_push(d, pk.data[i], pk.len[i], 15000, pk.marker[i], false, au_collect,
				 &au_out);
	CHECK_EQ_INT(au_out.n, 2);
	CHECK(h264_depack_need_keyframe(d));
	h264_depack_free(&d);
}

static void test_loss_between_aus(void)
{
	uint8_t au[64];
	struct h264_depack *d = h264_depack_new(4096);
	size_t n;

	memset(&au_out, 0, sizeof(au_out));
	n = one_nal_au(au, H264_NAL_IDR, 20);
	h264_depack_push(d, au + 4, n - 4, 0, true, false, au_collect, &au_out);
	CHECK_EQ_INT(au_out.n, 1);
	/* a loss after a marker: it was the next AU's (first slice); the AU is dropped */
	h264_depack_push(d, NULL, 0, 0, false, true, au_collect, &au_out);
	n = one_nal_au(au, H264_NAL_IDR, 20);
	h264_depack_push(d, au + 4, n - 4, 3000, true, false, au_collect, &au_out);
	CHECK_EQ_INT(au_out.n, 1);
	/* a loss inside an AU shown by a later packet of the same AU: only that AU dropped */
	h264_depack_push(d, au + 4, n - 4, 6000, false, false, au_collect, &au_out);
	h264_depack_push(d, NULL, 0, 0, false, true, au_collect, &au_out);
	h264_depack_push(d, au + 4, n - 4, 6000, true, false, au_collect, &au_out);
	h264_depack_push(d, au + 4, n - 4, 9000, true, false, au_collect, &au_out);
	CHECK_EQ_INT(au_out.n, 2);
	CHECK_EQ_INT(au_out.ts[1], 9000);
	h264_depack_free(&d);
}

static void test_timestamp_change_ends_au(void)
{
	uint8_t au[64];
	struct h264_depack *d = h264_depack_new(4096);
	size_t n = one_nal_au(au, H264_NAL_IDR, 20);

	memset(&au_out, 0, sizeof(au_out));
	h264_depack_push(d, au + 4, n - 4, 100, false, false, au_collect, &au_out);
	h264_depack_push(d, au + 4, n - 4, 100, false, false, au_collect, &au_out);
	CHECK_EQ_INT(au_out.n, 0);
	n = one_nal_au(au, H264_NAL_SLICE, 20);
	h264_depack_push(d, au + 4, n - 4, 3100, false, false, au_collect, &au_out);
	CHECK_EQ_INT(au_out.n, 1); /* the marker was lost: the new timestamp ended it */
	CHECK_EQ_INT(au_out.len[0], 2 * 24);
	CHECK_EQ_INT(au_out.ts[0], 100);
	CHECK(au_out.key[0]);
	h264_depack_push(d, au + 4, n - 4, 3100, true, false, au_collect, &au_out);
	CHECK_EQ_INT(au_out.n, 2);
	CHECK_EQ_INT(au_out.len[1], 2 * 24);
	h264_depack_free(&d);
}

static void test_au_size_bound(void)
{
	static uint8_t au[8000];
	struct h264_depack *d = h264_depack_new(2000);
	struct h264_depack_stats st;
	size_t n;

	CHECK(h264_depack_new(0) == NULL && errno == EINVAL);
	CHECK(h264_depack_new(H264_DEPACK_MAX_AU + 1) == NULL && errno == EINVAL);
	memset(&au_out, 0, sizeof(au_out));
	/* FU-A over the bound */
	n = one_nal_au(au, H264_NAL_IDR, 3000);
	pkts_clear(&pk);
	h264_packetize(au, n, 4, NULL, 1200, pkt_out, &pk);
	for (int i = 0; i < pk.n; i++)
		h264_depack_push(d, pk.data[i], pk.len[i], 0, pk.marker[i], false, au_collect,
				 &au_out);
	/* single NAL units over it, one by one */
	n = one_nal_au(au, H264_NAL_IDR, 1000);
	CHECK_EQ_INT(h264_depack_push(d, au + 4, n - 4, 3000, false, false, au_collect, &au_out),
		     0);
	CHECK_EQ_INT(h264_depack_push(d, au + 4, n - 4, 3000, false, false, au_collect, &au_out),
		     -E2BIG);
	CHECK_EQ_INT(h264_depack_push(d, au + 4, n - 4, 3000, true, false, au_collect, &au_out),
		     -E2BIG);
	CHECK_EQ_INT(au_out.n, 0);
	/* one that fits exactly */
	n = one_nal_au(au, H264_NAL_IDR, 1996);
	CHECK_EQ_INT(h264_depack_push(d, au + 4, n - 4, 6000, true, false, au_collect, &au_out), 0);
	CHECK_EQ_INT(au_out.n, 1);
	CHECK_EQ_INT(au_out.len[0], 2000);
	h264_depack_stats(d, &st);
	CHECK_EQ_INT(st.too_big, 2);
	CHECK_EQ_INT(st.aus_dropped, 2);
	h264_depack_free(&d);
}

static void test_bad_packets(void)
{
	struct h264_depack *d = h264_depack_new(4096);
	struct h264_depack_stats st;
	static const uint8_t types[] = {0, 25, 26, 27, 29, 30, 31};
	uint8_t p[16] = {0};
	int bad = 0;

	memset(&au_out, 0, sizeof(au_out));
	for (size_t i = 0; i < sizeof(types); i++) {
		p[0] = (uint8_t)(0x60 | types[i]);
		CHECK_EQ_INT(
		    h264_depack_push(d, p, sizeof(p), 0, false, false, au_collect, &au_out),
		    -EBADMSG);
		bad++;
	}
	CHECK_EQ_INT(h264_depack_push(d, p, 0, 0, false, false, au_collect, &au_out), -EBADMSG);
	bad++;
	/* STAP-A: too short, a size of 0, a size that overruns, an inner type 24 */
	{
		const uint8_t s1[] = {0x78, 0x00, 0x02}, s2[] = {0x78, 0x00, 0x00, 0x41},
			      s3[] = {0x78, 0x00, 0x05, 0x41, 0x00},
			      s4[] = {0x78, 0x00, 0x01, 0x78};

		CHECK_EQ_INT(
		    h264_depack_push(d, s1, sizeof(s1), 0, false, false, au_collect, &au_out),
		    -EBADMSG);
		CHECK_EQ_INT(
		    h264_depack_push(d, s2, sizeof(s2), 0, false, false, au_collect, &au_out),
		    -EBADMSG);
		CHECK_EQ_INT(
		    h264_depack_push(d, s3, sizeof(s3), 0, false, false, au_collect, &au_out),
		    -EBADMSG);
		CHECK_EQ_INT(
		    h264_depack_push(d, s4, sizeof(s4), 0, false, false, au_collect, &au_out),
		    -EBADMSG);
		bad += 4;
	}
	/* FU-A: start and end together, too short, inner type 0 */
	{
		const uint8_t f1[] = {0x7c, 0xc5, 0x11}, f2[] = {0x7c, 0x85},
			      f3[] = {0x7c, 0x80, 0x11};

		CHECK_EQ_INT(
		    h264_depack_push(d, f1, sizeof(f1), 0, false, false, au_collect, &au_out),
		    -EBADMSG);
		CHECK_EQ_INT(
		    h264_depack_push(d, f2, sizeof(f2), 0, false, false, au_collect, &au_out),
		    -EBADMSG);
		CHECK_EQ_INT(
		    h264_depack_push(d, f3, sizeof(f3), 0, true, false, au_collect, &au_out),
		    -EBADMSG);
		bad += 3;
	}
	h264_depack_stats(d, &st);
	CHECK_EQ_INT(st.bad_packets, bad);
	CHECK_EQ_INT(st.aus_dropped, 1);
	CHECK_EQ_INT(au_out.n, 0);
	/* the stream goes on: a good IDR after them */
	p[0] = 0x65;
	CHECK_EQ_INT(h264_depack_push(d, p, sizeof(p), 3000, true, false, au_collect, &au_out), 0);
	CHECK_EQ_INT(au_out.n, 1);
	/* reset: a keyframe is needed again, the sets kept */
	h264_depack_reset(d);
	CHECK(h264_depack_need_keyframe(d));
	h264_depack_free(&d);
}

static void test_set_params(void)
{
	struct h264_depack *d = h264_depack_new(4096);
	struct h264_params ps;
	uint8_t p[8] = {0x65, 1, 2, 3, 4, 5, 6, 7};

	params_720p(&ps);
	memset(&au_out, 0, sizeof(au_out));
	CHECK_EQ_INT(h264_depack_set_params(d, &ps), 0);
	h264_depack_push(d, p, sizeof(p), 0, true, false, au_collect, &au_out);
	CHECK_EQ_INT(au_out.n, 1);
	CHECK(au_out.changed[0]);
	CHECK_EQ_INT(au_out.ps.n_pps, 1);
	CHECK_EQ_INT(h264_depack_set_params(d, &ps), 0);
	h264_depack_push(d, p, sizeof(p), 10, true, false, au_collect, &au_out);
	CHECK(!au_out.changed[1]);
	h264_depack_free(&d);
}

/* ---- decode time ---- */

/* Decode order I P B B P B B... (two B-frames), or with a pyramid I P B b b (the reference B
 * in the middle), at @fps: @n presentation times in ms. */
static size_t bframes(int64_t *pts, size_t n, double fps, bool pyramid)
{
	static const int64_t flat[] = {3, 1, 2}, pyr[] = {4, 2, 1, 3};
	const int64_t *order = pyramid ? pyr : flat;
	int64_t gop = pyramid ? 4 : 3;
	size_t k = 0;

	pts[k++] = 0;
	for (int64_t g = 0; k < n; g += gop)
		for (int64_t j = 0; j < gop && k < n; j++)
			pts[k++] = (int64_t)((g + order[j]) * 90000.0 / fps + 0.5);
	return k;
}

static void test_dts(void)
{
	const double rates[] = {25, 29.97, 30, 60};
	int64_t pts[400], dts, prev, cts;
	struct h264_dts d;

	/* B-frames, flat and pyramid, at common rates: decode times strictly increase, never
	 * after presentation, within the bound, for minutes */
	for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		for (int pyramid = 0; pyramid < 2; pyramid++) {
			size_t n = bframes(pts, 400, rates[r], pyramid);

			h264_dts_init(&d, 3);
			prev = INT64_MIN;
			for (size_t i = 0; i < n; i++) {
				h264_dts_next(&d, pts[i], &dts, &cts);
				CHECK(dts > prev);
				CHECK_EQ_INT(cts, pts[i] - dts);
				CHECK(cts >= 0);
				if (i >= H264_DTS_LEARN) /* the step is known */
					CHECK(cts <= (int64_t)((H264_DTS_MAX_REORDER + 3) * 90000 /
							       rates[r]));
				prev = dts;
			}
		}
	}
	/* no B-frames, no lag asked (a baseline stream): dts == pts, cts 0 */
	h264_dts_init(&d, 0);
	for (int64_t i = 0; i < 30; i++) {
		h264_dts_next(&d, 500000 + i * 3600, &dts, &cts);
		CHECK_EQ_INT(dts, 500000 + i * 3600);
		CHECK_EQ_INT(cts, 0);
	}
	/* a gap (pictures dropped until a key frame): decode time catches up within the bound */
	h264_dts_next(&d, 900000, &dts, &cts);
	CHECK(cts >= 0 && cts <= H264_DTS_MAX_REORDER * 3600);
	/* a repeated presentation time (two slices' AUs): still strictly increasing */
	h264_dts_next(&d, 900000, &prev, &cts);
	CHECK(prev > dts);
	/* a stream that jumps back in time (restarted): increasing all the same */
	h264_dts_next(&d, 0, &dts, &cts);
	CHECK(dts > prev && cts < 0);
	/* no B-frames with a lag asked (the profile could have them): the lag goes once the
	 * stream has shown none */
	h264_dts_init(&d, 3);
	for (int64_t i = 0; i < H264_DTS_SETTLE + 10; i++) {
		h264_dts_next(&d, i * 3600, &dts, &cts);
		CHECK(cts >= 0 && cts <= (H264_DTS_MAX_REORDER + 3) * 3600);
	}
	CHECK_EQ_INT(cts, 0);
	/* the lag asked for is bounded */
	h264_dts_init(&d, 99);
	CHECK_EQ_INT(d.lag_frames, H264_DTS_MAX_REORDER);
}

int main(void)
{
	TEST_RUN(test_flv_header);
	TEST_RUN(test_packetize_sizes);
	TEST_RUN(test_packetize_params_before_idr);
	TEST_RUN(test_packetize_skips_and_errors);
	TEST_RUN(test_round_trip_synthetic);
	TEST_RUN(test_real_stream_round_trip);
	TEST_RUN(test_loss_in_fu_a_waits_for_idr);
	TEST_RUN(test_loss_between_aus);
	TEST_RUN(test_timestamp_change_ends_au);
	TEST_RUN(test_au_size_bound);
	TEST_RUN(test_bad_packets);
	TEST_RUN(test_set_params);
	TEST_RUN(test_dts);
	return TEST_DONE();
}
