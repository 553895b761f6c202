/*
 * test_rtp_leg_video.c - the RTP leg's video mode: packets handed on one by one in sequence
 * order with their marker bit, sent at the caller's timestamps, key frame requests (RTCP PLI)
 * both ways, and what a video leg refuses.
 */
#include "rtp_leg_testlib.h"

#include <errno.h>

#define PT_H264 96

struct vrecv {
	unsigned n, lost, markers, bad_order;
	uint16_t last_seq;
	uint32_t ts[64];
	bool marker[64];
	uint8_t first_byte[64];
	unsigned kf_requests;
	struct rtp_leg **destroy_on_packet;
};

static void on_packet(struct rtp_leg *leg, const struct rtp_reorder_frame *f, void *arg)
{
	struct vrecv *v = arg;

	(void)leg;
	if (f->lost) {
		v->lost++;
		return;
	}
	if (v->n && (uint16_t)(f->seq - v->last_seq) != 1)
		v->bad_order++;
	v->last_seq = f->seq;
	if (v->n < 64) {
		v->ts[v->n] = f->ts;
		v->marker[v->n] = f->marker;
		v->first_byte[v->n] = f->len ? f->payload[0] : 0;
	}
	v->markers += f->marker;
	v->n++;
	if (v->destroy_on_packet)
		rtp_leg_destroy(v->destroy_on_packet);
}

static void on_kf(struct rtp_leg *leg, void *arg)
{
	(void)leg;
	((struct vrecv *)arg)->kf_requests++;
}

static void video_params(struct rtp_leg_params *p, const char *sid, struct vrecv *v)
{
	params(p, sid, NULL);
	memset(v, 0, sizeof(*v));
	p->video = true;
	p->payload_type = PT_H264;
	p->clock_rate = 90000;
	p->samples_per_frame = 3000;
	p->cb.on_packet = on_packet;
	p->cb.on_keyframe_request = on_kf;
	p->cb.arg = v;
}

/* Three pictures of 1, 3 and 2 packets at 30/s: timestamps and markers arrive as sent. */
static void video_pair(enum rtp_leg_srtp_suite suite)
{
	struct rtp_leg_params pa, pb;
	struct rtp_leg *a, *b;
	struct vrecv va, vb;
	const unsigned per_pic[3] = {1, 3, 2};
	uint32_t t0;
	unsigned k = 0;

	video_params(&pa, "va", &va);
	video_params(&pb, "vb", &vb);
	if (suite != RTP_LEG_SRTP_NONE) {
		pa.srtp_suite = pb.srtp_suite = suite;
		pa.local_key = pb.remote_key = KEY_A;
		pa.remote_key = pb.local_key = KEY_B;
	}
	pair_new(&a, &b, &pa, &pb);
	if (!a || !b)
		goto out;
	t0 = rtp_leg_send_clock(a);
	for (unsigned pic = 0; pic < 3; pic++) {
		for (unsigned i = 0; i < per_pic[pic]; i++) {
			uint8_t pl[1000];

			memset(pl, (int)(0x60 + k++), sizeof(pl));
			CHECK_EQ_INT(rtp_leg_send_video(a, pl, sizeof(pl), t0 + pic * 3000u,
							i + 1 == per_pic[pic]),
				     0);
		}
		run_ms(33);
	}
	run_ms(50);
	CHECK_EQ_INT(vb.n, 6);
	CHECK_EQ_INT(vb.lost, 0);
	CHECK_EQ_INT(vb.bad_order, 0);
	CHECK_EQ_INT(vb.markers, 3);
	CHECK(vb.marker[0] && !vb.marker[1] && !vb.marker[2] && vb.marker[3] && !vb.marker[4] &&
	      vb.marker[5]);
	CHECK(vb.ts[1] - vb.ts[0] == 3000 && vb.ts[2] == vb.ts[1] && vb.ts[3] == vb.ts[1] &&
	      vb.ts[4] - vb.ts[3] == 3000 && vb.ts[5] == vb.ts[4]);
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ_INT(vb.first_byte[i], 0x60 + i);
	CHECK_EQ_INT(rtp_leg_send_clock(a), t0 + 6000u);
	/* b asks a for a key frame: a PLI in b's RTCP reaches a's callback */
	CHECK_EQ_INT(rtp_leg_request_keyframe(b, false), 0);
	run_ms(200);
	CHECK_EQ_INT(va.kf_requests, 1);
	/* at most one per 300 ms: a second call now sends nothing */
	CHECK_EQ_INT(rtp_leg_request_keyframe(b, true), 0);
	run_ms(100);
	CHECK_EQ_INT(va.kf_requests, 1);
	run_ms(300);
	CHECK_EQ_INT(rtp_leg_request_keyframe(b, true), 0); /* PLI and FIR: one request counted */
	run_ms(200);
	CHECK(va.kf_requests >= 2);
	{
		struct rtp_leg_stats sa, sb;

		rtp_leg_get_stats(a, &sa);
		rtp_leg_get_stats(b, &sb);
		CHECK_EQ_INT(sb.keyframe_requests_sent, 2);
		CHECK(sa.keyframe_requests_received >= 2);
		CHECK_EQ_INT(sa.bad_packets, 0);
		CHECK_EQ_INT(sb.packets_received, 6);
	}
out:
	rtp_leg_destroy(&a);
	rtp_leg_destroy(&b);
	CHECK_EQ_INT(port_pool_in_use(pool), 0);
}

static void test_video_pair(void)
{
	video_pair(RTP_LEG_SRTP_NONE);
}

static void test_video_pair_srtp(void)
{
	video_pair(RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80);
}

/* A peer's packets out of order come in order; a hole is reported lost once. */
static void test_video_reorder_and_loss(void)
{
	static const uint16_t order[] = {10, 12, 11, 13, 15, 16, 17};
	struct rtp_leg_params pb;
	struct vrecv vb;
	struct rtp_leg *b;
	struct peer r;

	peer_open(&r);
	video_params(&pb, "vr", &vb);
	pb.remote_ip = "127.0.0.1";
	pb.remote_port = r.port;
	b = rtp_leg_new(&pb);
	CHECK(b != NULL);
	if (!b)
		goto out;
	for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		uint8_t pkt[200], pl[100];
		size_t n;

		memset(pl, (int)order[i], sizeof(pl));
		n = rtp_build(pkt, PT_H264, order[i] % 2 == 1, order[i], 9000u * order[i], 0x1234,
			      pl, sizeof(pl));
		peer_send(&r, rtp_leg_local_port(b), pkt, n);
		run_ms(5);
	}
	run_ms(100); /* 14 given up after one frame time */
	CHECK_EQ_INT(vb.n, 7);
	CHECK_EQ_INT(vb.lost, 1);
	CHECK_EQ_INT(vb.first_byte[0], 10);
	CHECK_EQ_INT(vb.first_byte[1], 11);
	CHECK_EQ_INT(vb.first_byte[2], 12);
	CHECK_EQ_INT(vb.first_byte[3], 13);
	CHECK_EQ_INT(vb.first_byte[4], 15);
	CHECK(vb.marker[1] && !vb.marker[2]);
	/* now the peer is known: a key frame request goes to it as RTCP with a PLI (to the
	 * signalled port + 1) */
	{
		uint8_t buf[1500];
		ssize_t n;
		bool pli = false;
		struct peer rc;

		rc.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		rc.addr = r.addr;
		rc.addr.sin_port = htons((uint16_t)(r.port + 1));
		CHECK(bind(rc.fd, (struct sockaddr *)&rc.addr, sizeof(rc.addr)) == 0);
		CHECK_EQ_INT(rtp_leg_request_keyframe(b, false), 0);
		while ((n = peer_recv(&rc, buf, sizeof(buf), 200)) > 0) {
			for (size_t off = 0; off + 12 <= (size_t)n;
			     off += 4u * ((size_t)be16(buf + off + 2) + 1u))
				if (buf[off + 1] == 206 && (buf[off] & 0x1f) == 1 &&
				    be32(buf + off + 8) == 0x1234)
					pli = true;
		}
		CHECK(pli);
		close(rc.fd);
	}
out:
	rtp_leg_destroy(&b);
	peer_close(&r);
	CHECK_EQ_INT(port_pool_in_use(pool), 0);
}

/* What a video leg refuses, and what an audio leg refuses of the video calls. */
static void test_video_refusals(void)
{
	struct rtp_leg_params pv, pa;
	struct vrecv v;
	struct rtp_leg *video, *audio;
	uint8_t pl[1401] = {0};

	video_params(&pv, "vx", &v);
	pv.remote_ip = "127.0.0.1";
	pv.remote_port = 9;
	video = rtp_leg_new(&pv);
	params(&pa, "ax", NULL);
	audio = rtp_leg_new(&pa);
	CHECK(video && audio);
	if (!video || !audio)
		goto out;
	CHECK_EQ_INT(rtp_leg_send_dtmf(video, '1', 100), -EINVAL);
	CHECK_EQ_INT(rtp_leg_send_video(video, pl, 0, 0, true), -EINVAL);
	CHECK_EQ_INT(rtp_leg_send_video(video, pl, sizeof(pl), 0, true), -EINVAL);
	CHECK_EQ_INT(rtp_leg_request_keyframe(video, false), -EAGAIN); /* nothing received yet */
	CHECK_EQ_INT(rtp_leg_send_video(audio, pl, 100, 0, true), -EINVAL);
	CHECK_EQ_INT(rtp_leg_request_keyframe(audio, false), -EINVAL);
	/* a feedback packet too short for its two SSRCs is malformed */
	{
		uint8_t rtcp[16] = {0x80, 201, 0, 1, 0, 0, 0, 1, 0x81, 206, 0, 1, 0, 0, 0, 2};
		struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(9)};
		struct rtp_leg_stats st;

		from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CHECK(rtp_leg_input_rtcp_packet(video, rtcp, sizeof(rtcp), (struct sockaddr *)&from,
						sizeof(from)) < 0);
		rtp_leg_get_stats(video, &st);
		CHECK_EQ_INT(st.keyframe_requests_received, 0);
	}
out:
	rtp_leg_destroy(&video);
	rtp_leg_destroy(&audio);
	CHECK_EQ_INT(port_pool_in_use(pool), 0);
}

int main(void)
{
	if (!rtp_testlib_setup("test_rtp_leg_video"))
		return 1;
	TEST_RUN(test_video_pair);
	TEST_RUN(test_video_pair_srtp);
	TEST_RUN(test_video_reorder_and_loss);
	TEST_RUN(test_video_refusals);
	rtp_testlib_teardown();
	return TEST_DONE();
}
