/*
 * bench_video.c - what one H.264 video call costs a mediaworker: CPU per second of video and the
 * time a picture takes through the worker's video path, both directions, from an FLV file.
 *
 *   bench_video FILE.flv [--srtp] [--repeat N]
 *
 * The path is the worker's own (worker_video.c), run in one process over loopback UDP:
 *
 *   FLV video message --h264_flv_parse / h264_packetize--> RTP (video leg A, SRTP with --srtp)
 *     --> socket --> video leg B: reorder, h264_depack --> decode time, FLV message,
 *     wire_video_split (the MEDIA pieces toward the signaler; not sent)
 *
 * so one picture through it is one picture of a call each way (RTMP -> SIP on A, SIP -> RTMP on
 * B). Pictures are sent as fast as they come back (no real-time pacing): the CPU per second of
 * video is the thread's CPU time (user + system, the sockets' included) over the file's
 * duration, and "calls per 2 cores" is 2 s of CPU / that. The delay is per picture, from its
 * message handed to the packetizer to its FLV message built on the other side (loopback; an
 * uncapped histogram, delay_hist.h). Prints figures, never pass/fail.
 */
#include "delay_hist.h"
#include "evloop.h"
#include "flv_read.h"
#include "h264.h"
#include "h264_rtp.h"
#include "log.h"
#include "port_pool.h"
#include "rtp_leg.h"
#include "wire_video.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MTU 1200

static const char *const KEY_A = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
static const char *const KEY_B = "Y5n0Pi8VUv8CsLqGzjAqFQpYH5wJPmHfzaJ+WuQq";

struct bench {
	struct rtp_leg *a, *b;
	struct h264_params ps;
	struct h264_depack *dp;
	struct h264_dts dts;
	uint32_t base;
	uint64_t sent_at; /* µs: the picture in flight */
	unsigned aus_out, pieces;
	uint64_t bytes_in;
	uint8_t msg[WIRE_VIDEO_MAX_MESSAGE];
	struct delay_hist hist;
};

static uint64_t now_us(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int count_piece(void *arg, const uint8_t *p, size_t len, uint8_t flags)
{
	(void)p, (void)len, (void)flags;
	((struct bench *)arg)->pieces++;
	return 0;
}

static void on_au(void *arg, const struct h264_au *au)
{
	struct bench *bn = arg;
	int64_t dts, cts;

	h264_dts_next(&bn->dts, au->rtp_ts, &dts, &cts);
	if (au->len + 5 > sizeof(bn->msg))
		return;
	h264_flv_header(bn->msg, au->keyframe, H264_FLV_NALU, (int32_t)(cts / 90));
	memcpy(bn->msg + 5, au->data, au->len);
	wire_video_split(bn->msg, au->len + 5, count_piece, bn);
	bn->aus_out++;
	delay_hist_add(&bn->hist, now_us(CLOCK_MONOTONIC) - bn->sent_at);
}

static void on_packet(struct rtp_leg *leg, const struct rtp_reorder_frame *f, void *arg)
{
	struct bench *bn = arg;

	(void)leg;
	h264_depack_push(bn->dp, f->payload, f->len, f->ts, f->marker, f->lost, on_au, bn);
}

static int send_packet(void *arg, const uint8_t *p, size_t len, bool marker)
{
	struct bench *bn = arg;

	return rtp_leg_send_video(bn->a, p, len, bn->base, marker) < 0 ? -EIO : 0;
}

int main(int argc, char **argv)
{
	struct evloop *loop;
	struct port_pool *pool;
	struct rtp_leg_params pa, pb;
	static struct bench bn;
	struct flv_tag *tags;
	ssize_t n;
	bool srtp = false;
	unsigned repeat = 1, pictures = 0;
	uint64_t cpu0, cpu1, wall0, wall1, span_ms = 0;
	uint32_t first_ts = 0, last_ts = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_video FILE.flv [--srtp] [--repeat N]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--srtp") == 0)
			srtp = true;
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
			repeat = (unsigned)atoi(argv[++i]);
	}
	log_init("bench_video", LOG_LVL_ERROR);
	n = flv_read_video(argv[1], 0, &tags);
	loop = evloop_new();
	pool = port_pool_new(47000, 47999);
	bn.dp = h264_depack_new(WIRE_VIDEO_MAX_MESSAGE);
	if (n <= 0 || !loop || !pool || !bn.dp) {
		fprintf(stderr, "bench_video: cannot read %s or set up\n", argv[1]);
		return 1;
	}
	h264_dts_init(&bn.dts, 3);
	for (int i = 0; i < 2; i++) {
		struct rtp_leg_params *p = i ? &pb : &pa;

		rtp_leg_params_init(p);
		p->loop = loop;
		p->pool = pool;
		p->bind_ip = "127.0.0.1";
		p->video = true;
		p->payload_type = 96;
		p->clock_rate = 90000;
		p->samples_per_frame = 3000;
		p->cb.on_packet = i ? on_packet : NULL;
		p->cb.arg = &bn;
		if (srtp) {
			p->srtp_suite = RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80;
			p->local_key = i ? KEY_B : KEY_A;
			p->remote_key = i ? KEY_A : KEY_B;
		}
	}
	bn.b = rtp_leg_new(&pb);
	pa.remote_ip = "127.0.0.1";
	pa.remote_port = bn.b ? rtp_leg_local_port(bn.b) : 9;
	bn.a = rtp_leg_new(&pa);
	if (!bn.a || !bn.b) {
		fprintf(stderr, "bench_video: no RTP legs\n");
		return 1;
	}
	rtp_leg_set_remote(bn.b, "127.0.0.1", rtp_leg_local_port(bn.a), 0);
	cpu0 = now_us(CLOCK_THREAD_CPUTIME_ID);
	wall0 = now_us(CLOCK_MONOTONIC);
	for (unsigned r = 0; r < repeat; r++) {
		for (ssize_t i = 0; i < n; i++) {
			struct h264_flv f;
			unsigned before = bn.aus_out;

			if (h264_flv_parse(tags[i].data, tags[i].len, &f) < 0)
				continue;
			if (f.packet_type == H264_FLV_SEQUENCE_HEADER) {
				h264_avcc_parse(f.data, f.data_len, &bn.ps);
				continue;
			}
			if (f.packet_type != H264_FLV_NALU || !f.data_len)
				continue;
			if (!pictures)
				first_ts = tags[i].ts;
			last_ts = tags[i].ts;
			bn.base = (uint32_t)(r * 100000u + tags[i].ts + (uint32_t)f.cts) * 90u;
			bn.sent_at = now_us(CLOCK_MONOTONIC);
			bn.bytes_in += f.data_len;
			h264_packetize(f.data, f.data_len, bn.ps.length_size, &bn.ps, MTU, send_packet,
				       &bn);
			pictures++;
			/* until the picture is out on the other side (or 50 ms: lost on loopback) */
			for (int k = 0; k < 50 && bn.aus_out == before; k++)
				evloop_run_once(loop, 1);
		}
		span_ms += last_ts - first_ts + 33;
	}
	cpu1 = now_us(CLOCK_THREAD_CPUTIME_ID);
	wall1 = now_us(CLOCK_MONOTONIC);
	{
		double video_s = (double)span_ms / 1000.0;
		double cpu_us_per_s = (double)(cpu1 - cpu0) / video_s;
		struct rtp_leg_stats sa;

		rtp_leg_get_stats(bn.a, &sa);
		printf("VIDEO file=%s srtp=%s pictures=%u video_s=%.1f mbit_s=%.2f packets_s=%.0f "
		       "pictures_out=%u cpu_us_per_video_s=%.0f cpu_pct_per_call=%.2f "
		       "calls_per_2_cores=%.0f wall_s=%.2f\n",
		       argv[1], srtp ? "AES_CM_128_HMAC_SHA1_80" : "none", pictures, video_s,
		       (double)bn.bytes_in * 8 / video_s / 1e6, (double)sa.packets_sent / video_s,
		       bn.aus_out, cpu_us_per_s, cpu_us_per_s / 1e4, 2e6 / cpu_us_per_s,
		       (double)(wall1 - wall0) / 1e6);
		delay_hist_print(&bn.hist, stdout, srtp ? "DELAY path=video_worker srtp=yes"
							: "DELAY path=video_worker srtp=no");
	}
	rtp_leg_destroy(&bn.a);
	rtp_leg_destroy(&bn.b);
	h264_depack_free(&bn.dp);
	flv_tags_free(tags, (size_t)n);
	port_pool_destroy(&pool);
	evloop_destroy(&loop);
	rtp_leg_global_cleanup();
	return 0;
}
