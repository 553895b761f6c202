/*
 * worker_video.c - a video leg: H.264 carried between the RTMP side (FLV AVC messages, cut into
 * MEDIA pieces) and the SIP peer (RFC 6184 packets), never transcoded.
 *
 *   RTMP -> SIP   MEDIA pieces --wire_video_asm--> FLV message --h264_flv_parse-->
 *                   sequence header: the parameter sets, sent again before every IDR
 *                   NAL units: one access unit --h264_packetize--> RTP packets, the marker on
 *                   the last, timestamp = base + (DTS + CTS) x 90; nothing before the first key
 *                   frame (the peer could not decode it); the last key frame is kept
 *                 the peer's PLI/FIR --> the kept key frame again (at most once a second)
 *
 *   SIP -> RTMP   RTP packets in order (rtp_leg on_packet) --h264_depack--> access unit
 *                   --> a sequence header first when the parameter sets are new
 *                   --> FLV message (DTS, CTS from h264_dts) --wire_video_split--> MEDIA pieces
 *                 a broken picture (loss), or no key frame yet: dropped until the next key
 *                 frame, which a PLI asks for (as does the signaler, for a player that joins)
 *
 * The RTMP timestamps share the audio leg's timeline when the signaler names it (SYNC_LEG):
 * same zero, same anchoring on the loop clock (worker_rtmp_time), so both stay in step.
 */
#include "worker_int.h"

#include "h264.h"
#include "h264_rtp.h"
#include "wire_video.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define VIDEO_MTU	    1200 /* RTP payload bound: room for SRTP, IPv6, tunnels */
#define VIDEO_MAX_AU	    WIRE_VIDEO_MAX_MESSAGE
#define VIDEO_KEY_RESEND_MS 1000 /* the kept key frame goes out at most this often */
#define VIDEO_JUMP_MS	    5000 /* a timestamp further back than this: a new stream */
#define FLV_VIDEO_HDR	    5

struct video {
	/* RTMP -> SIP */
	struct wire_video_asm in;
	struct h264_params ps; /* the publisher's sequence header */
	bool have_ps;
	bool base_set;
	uint32_t ts_base;  /* RTP timestamp of RTMP time 0 */
	uint32_t last_pts; /* RTMP time of the last access unit sent */
	bool sent_key;	   /* a key frame went out: inter frames may follow */
	uint8_t *key;	   /* the last key frame's NAL units, length-prefixed (ps.length_size) */
	size_t key_len, key_cap;
	uint64_t key_sent_ms;
	/* SIP -> RTMP */
	struct h264_depack *dp;
	struct h264_dts dts;
	bool dts_started;  /* dts set up for the stream's profile */
	uint32_t pts_lead; /* ms added to the timeline: the first picture's reorder delay */
	int64_t rtp_ext;   /* the last picture's RTP timestamp, unwrapped */
	uint32_t rtp_last;
	bool seq_sent, got_key;
	bool rx_started;
	uint32_t rx_max_rtp; /* the highest RTP timestamp seen, and its RTMP time */
	uint32_t rx_max_ms;
	uint8_t *msg; /* the FLV message being sent, and its RTMP time */
	uint32_t msg_ts;
	size_t msg_cap;
	/* counters */
	uint64_t aus_to_sip, aus_to_rtmp, dropped_to_sip, dropped_to_rtmp, keys_resent;
};

static struct video *vid(struct leg *l)
{
	return l->vid;
}

int worker_video_new(struct leg *l)
{
	struct video *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	v->dp = h264_depack_new(VIDEO_MAX_AU);
	if (!v->dp) {
		free(v);
		return -ENOMEM;
	}
	l->vid = v;
	return 0;
}

void worker_video_free(struct leg *l)
{
	struct video *v = l->vid;

	if (!v)
		return;
	wire_video_asm_free(&v->in);
	h264_depack_free(&v->dp);
	free(v->key);
	free(v->msg);
	free(v);
	l->vid = NULL;
}

/* ---------------------------------------------------------------- RTMP -> SIP */

static int send_packet(void *arg, const uint8_t *payload, size_t len, bool marker)
{
	struct leg *l = arg;
	int r = rtp_leg_send_video(l->rtp, payload, len, l->vid->ts_base + l->vid->last_pts * 90u,
				   marker);

	return r == -EINVAL ? r : 0; /* a send error is counted by the leg; go on */
}

/* Sends the access unit @nalus at RTMP time @pts (ms). */
static int send_au(struct leg *l, const uint8_t *nalus, size_t len, uint32_t pts)
{
	struct video *v = vid(l);
	int r;

	if (!v->base_set) {
		v->ts_base = rtp_leg_send_clock(l->rtp) - pts * 90u;
		v->base_set = true;
	}
	v->last_pts = pts;
	log_debug(l->id, "video to SIP: pts %u rtp %u, %zu bytes", pts, v->ts_base + pts * 90u,
		  len);
	r = h264_packetize(nalus, len, v->ps.length_size, v->have_ps ? &v->ps : NULL, VIDEO_MTU,
			   send_packet, l);
	if (r < 0)
		return r;
	v->aus_to_sip++;
	return 0;
}

/* Keeps the key frame @nalus for the peer's key frame requests. */
static void keep_key(struct video *v, const uint8_t *nalus, size_t len)
{
	if (len > v->key_cap) {
		uint8_t *k = realloc(v->key, len);

		if (!k)
			return; /* a request then waits for the publisher's next key frame */
		v->key = k;
		v->key_cap = len;
	}
	memcpy(v->key, nalus, len);
	v->key_len = len;
}

/* One whole RTMP video message of the publisher. */
static void from_rtmp_message(struct leg *l, const uint8_t *msg, size_t len, uint32_t ts)
{
	struct video *v = vid(l);
	struct h264_flv f;
	int r = h264_flv_parse(msg, len, &f);

	if (r < 0) {
		if (l->media_errors++ % 100 == 0)
			log_warn(l->id, "RTMP video message refused: %s",
				 r == -EPROTONOSUPPORT ? "not H.264" : "malformed");
		return;
	}
	if (f.packet_type == H264_FLV_SEQUENCE_HEADER) {
		struct h264_params ps;

		if (h264_avcc_parse(f.data, f.data_len, &ps) < 0) {
			if (l->media_errors++ % 100 == 0)
				log_warn(l->id, "RTMP video: bad AVC sequence header");
			return;
		}
		v->ps = ps;
		v->have_ps = true;
		log_info(l->id, "video: H.264 profile %u level %u, %ux%u", ps.profile_idc,
			 ps.level_idc, ps.width, ps.height);
		return;
	}
	if (f.packet_type != H264_FLV_NALU || !f.data_len)
		return;
	if (!v->have_ps || (!f.keyframe && !v->sent_key)) {
		v->dropped_to_sip++; /* no decoder could start here */
		return;
	}
	if (send_au(l, f.data, f.data_len, ts + (uint32_t)f.cts) < 0) {
		if (l->media_errors++ % 100 == 0)
			log_warn(l->id, "RTMP video: access unit not usable");
		return;
	}
	if (f.keyframe) {
		v->sent_key = true;
		keep_key(v, f.data, f.data_len);
	}
}

void worker_video_from_rtmp(struct leg *l, const struct wire_media *md)
{
	const uint8_t *msg;
	size_t len;
	int r =
	    wire_video_asm_add(&vid(l)->in, md->ts, md->flags, md->payload, md->len, &msg, &len);

	if (r < 0 && l->media_errors++ % 100 == 0)
		log_warn(l->id, "RTMP video piece out of place: message dropped (%s)",
			 strerror(-r));
	if (r == 1)
		from_rtmp_message(l, msg, len, md->ts);
}

void worker_video_on_keyframe_request(struct rtp_leg *rtp, void *arg)
{
	struct leg *l = arg;
	struct video *v = vid(l);
	uint64_t now = evloop_now(l->w->loop);

	(void)rtp;
	if (!v->key_len || (v->key_sent_ms && now - v->key_sent_ms < VIDEO_KEY_RESEND_MS))
		return;
	v->key_sent_ms = now;
	v->keys_resent++;
	/* just after the last picture sent, so the peer's decoder starts from it */
	(void)send_au(l, v->key, v->key_len, v->last_pts + 1u);
}

/* ---------------------------------------------------------------- SIP -> RTMP */

static int send_piece(void *arg, const uint8_t *payload, size_t len, uint8_t flags)
{
	struct leg *l = arg;

	return ctl_server_send_media(l->w->ctl, l->owner, l->id, l->vid->msg_ts, flags, payload,
				     len);
}

/* Sends the FLV video message of @len bytes in v->msg at RTMP time @ts. */
static void send_message(struct leg *l, size_t len, uint32_t ts)
{
	l->vid->msg_ts = ts;
	if (wire_video_split(l->vid->msg, len, send_piece, l) == 0)
		l->media_out++;
}

static bool msg_room(struct video *v, size_t len)
{
	if (len > WIRE_VIDEO_MAX_MESSAGE)
		return false;
	if (len > v->msg_cap) {
		uint8_t *m = realloc(v->msg, len);

		if (!m)
			return false;
		v->msg = m;
		v->msg_cap = len;
	}
	return true;
}

/* The RTMP time of an access unit with RTP timestamp @rtp: the highest timestamp so far goes
 * through the leg's timeline (worker_rtmp_time: anchored, never decreasing); an earlier one
 * (a B-frame's presentation time) is placed back from it. */
static uint32_t rx_time(struct leg *l, uint32_t rtp)
{
	struct video *v = vid(l);
	int32_t d = (int32_t)(rtp - v->rx_max_rtp);

	if (!v->rx_started || d >= 0 || (uint32_t)-d / 90u > VIDEO_JUMP_MS) {
		v->rx_max_ms = worker_rtmp_time(l, rtp, evloop_now(l->w->loop));
		v->rx_max_rtp = rtp;
		v->rx_started = true;
		return v->rx_max_ms;
	}
	return v->rx_max_ms - (uint32_t)-d / 90u;
}

/* Pictures a stream may reorder: none for the profiles without B-frames. */
static unsigned reorder_frames(const struct h264_au *au)
{
	enum h264_profile pr = au->ps && au->ps->n_sps
				   ? h264_profile_of(au->ps->profile_idc, au->ps->constraints)
				   : H264_PROFILE_UNKNOWN;

	return pr == H264_PROFILE_BASELINE || pr == H264_PROFILE_CONSTRAINED_BASELINE ? 0 : 3;
}

static void on_au(void *arg, const struct h264_au *au)
{
	struct leg *l = arg;
	struct video *v = vid(l);
	uint32_t pts;
	int64_t dts, cts;
	size_t n;

	if (!au->keyframe && !v->got_key) {
		v->dropped_to_rtmp++;
		(void)rtp_leg_request_keyframe(l->rtp, false);
		return;
	}
	v->got_key = true;
	if (!v->dts_started) {
		/* The first picture's arrival is its decode time: a stream that may have B-frames
		 * shows it that many frames later. */
		unsigned lag = reorder_frames(au);

		h264_dts_init(&v->dts, lag);
		v->pts_lead = lag * H264_DTS_STEP_GUESS / 90u;
		v->dts_started = true;
	}
	pts = rx_time(l, au->rtp_ts) + v->pts_lead;
	/* decode times on the RTP clock (a constant rate is an exact step there), then in ms
	 * back from the presentation time */
	v->rtp_ext = v->dts.started ? v->rtp_ext + (int32_t)(au->rtp_ts - v->rtp_last) : au->rtp_ts;
	v->rtp_last = au->rtp_ts;
	h264_dts_next(&v->dts, v->rtp_ext, &dts, &cts);
	cts /= 90;
	dts = (int64_t)pts - cts;
	if (dts < 0) { /* pictures reordered at the very start of the timeline */
		dts = 0;
		cts = pts;
	}
	log_debug(l->id, "video to RTMP: rtp %u pts %u dts %lld cts %lld%s", au->rtp_ts, pts,
		  (long long)dts, (long long)cts, au->keyframe ? " key" : "");
	if (au->params_changed || !v->seq_sent) {
		if (!msg_room(v, FLV_VIDEO_HDR + 4096) ||
		    h264_avcc_build(au->ps, v->msg + FLV_VIDEO_HDR, v->msg_cap - FLV_VIDEO_HDR,
				    &n) < 0) {
			v->dropped_to_rtmp++;
			return;
		}
		h264_flv_header(v->msg, true, H264_FLV_SEQUENCE_HEADER, 0);
		send_message(l, FLV_VIDEO_HDR + n,
			     (uint32_t)dts); /* at the picture's decode time */
		v->seq_sent = true;
	}
	if (!msg_room(v, FLV_VIDEO_HDR + au->len)) {
		v->dropped_to_rtmp++;
		return;
	}
	h264_flv_header(v->msg, au->keyframe, H264_FLV_NALU, (int32_t)cts);
	memcpy(v->msg + FLV_VIDEO_HDR, au->data, au->len);
	send_message(l, FLV_VIDEO_HDR + au->len, (uint32_t)dts);
	v->aus_to_rtmp++;
}

void worker_video_on_packet(struct rtp_leg *rtp, const struct rtp_reorder_frame *f, void *arg)
{
	struct leg *l = arg;
	struct video *v = vid(l);

	(void)h264_depack_push(v->dp, f->payload, f->len, f->ts, f->marker, f->lost, on_au, l);
	if (l->vid && h264_depack_need_keyframe(v->dp))
		(void)rtp_leg_request_keyframe(rtp, false);
}

void worker_video_request_keyframe(struct leg *l)
{
	(void)rtp_leg_request_keyframe(l->rtp, false);
}

void worker_video_log_stats(struct leg *l)
{
	struct video *v = vid(l);
	struct h264_depack_stats ds;

	h264_depack_stats(v->dp, &ds);
	log_info(l->id,
		 "video: to SIP %" PRIu64 " pictures (%" PRIu64 " dropped, %" PRIu64
		 " key frames resent, %" PRIu64 " messages lost on the way); to RTMP %" PRIu64
		 " pictures (%" PRIu64 " dropped; packets %" PRIu64 ", bad %" PRIu64 ")",
		 v->aus_to_sip, v->dropped_to_sip, v->keys_resent, v->in.dropped, v->aus_to_rtmp,
		 v->dropped_to_rtmp + ds.aus_dropped, ds.packets, ds.bad_packets);
}
