/*
 * call_video.c - a call's H.264 video leg, for both call apps. See call_video.h.
 */
#include "call_video.h"

#include "config.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static unsigned video_kbps = 2500;

int call_video_init(void)
{
	int64_t kbps;

	if (config_int("VIDEO_KBPS", 2500, 0, 100000, &kbps) < 0) {
		log_error(NULL, "config: VIDEO_KBPS must be 0 .. 100000 (kbit/s)");
		return -EINVAL;
	}
	video_kbps = (unsigned)kbps;
	return 0;
}

struct media_leg *call_video_leg_new(struct media *m, const struct media_leg_params *audio,
				     struct media_leg *audio_leg,
				     const struct media_leg_callbacks *cbs, void *arg)
{
	static const struct wire_codec h264[2] = {
	    {.pt = SDP_VIDEO_PT, .channels = 1, .rate = 90000, .name = "H264"},
	    {.pt = SDP_VIDEO_PT_MODE0, .channels = 1, .rate = 90000, .name = "H264"},
	};
	struct media_leg_params vp = {
	    .call_id = audio->call_id,
	    .rtmp_codec = h264[0],
	    .sip_codecs = h264,
	    .n_sip_codecs = 2,
	    .want_srtp = audio->want_srtp,
	    .sync = audio_leg,
	};

	if (!audio_leg) {
		errno = EINVAL;
		return NULL;
	}
	return media_leg_new(m, &vp, cbs, arg);
}

bool call_video_local(struct media_leg **vleg, const struct media_leg_info *in,
		      struct sdp_local *local, const char *sid)
{
	const struct media_leg_info *vin = *vleg ? media_leg_info(*vleg) : NULL;
	bool keyed = vin && vin->srtp_local_key_len == SDP_SRTP_KEY_LEN;

	if (!vin)
		return false;
	if (strcmp(vin->local_ip, in->local_ip) != 0 || (local->srtp != SDP_SRTP_OFF && !keyed)) {
		/* one address for both streams in our SDP; no video in the clear under SRTP */
		log_warn(sid, "video leg on %s (audio %s)%s: audio only", vin->local_ip, in->local_ip,
			 keyed ? "" : ", without an SRTP key");
		media_leg_destroy(vleg);
		return false;
	}
	local->video.port = vin->local_port;
	local->video.dir = local->dir;
	local->video.bw_kbps = video_kbps;
	local->video.key = local->srtp != SDP_SRTP_OFF ? vin->srtp_local_key : NULL;
	return true;
}

void call_video_apply(struct media_leg **vleg, const struct sdp_video_choice *v, bool hold_local,
		      const char *sid, const char *what)
{
	struct media_leg_update u = {0};

	if (!*vleg)
		return;
	if (!v->on) {
		log_info(sid, "%s: no video: %s", what, v->why[0] ? v->why : "declined");
		media_leg_destroy(vleg);
		return;
	}
	u.remote_ip = v->remote_addr;
	u.remote_port = v->remote_port;
	u.set_codec = true;
	u.codec_pt = v->pt;
	u.codec_fmtp = v->fmtp[0] && strlen(v->fmtp) < 129 ? v->fmtp : NULL;
	if (v->srtp) {
		u.srtp_suite = sdp_srtp_suite_name(v->suite);
		u.srtp_remote_key = v->remote_key;
		u.srtp_remote_key_len = SDP_SRTP_KEY_LEN;
	}
	u.set_hold = true;
	u.hold = hold_local || v->hold || v->dir == SDP_DIR_RECVONLY || v->dir == SDP_DIR_INACTIVE;
	if (media_leg_update(*vleg, &u, NULL) < 0) {
		log_warn(sid, "%s: the video leg refused the negotiated video: audio only", what);
		media_leg_destroy(vleg);
		return;
	}
	log_info(sid, "%s: video H.264 pt %u (packetization-mode %u) to %s:%u%s", what, v->pt,
		 v->mode, v->remote_addr, v->remote_port, v->srtp ? ", SRTP" : "");
}

bool call_video_moved_sdp(struct sdp_media_desc *d, struct media_leg *leg, struct media_leg **vleg)
{
	const struct media_leg_info *in = media_leg_info(leg);
	const struct media_leg_info *vin = *vleg ? media_leg_info(*vleg) : NULL;

	if (!in || media_leg_moving(leg) || (*vleg && media_leg_moving(*vleg)))
		return false;
	snprintf(d->addr, sizeof(d->addr), "%s", in->local_ip);
	d->port = in->local_port;
	if (d->has_video) {
		if (vin && strcmp(vin->local_ip, in->local_ip) == 0) {
			snprintf(d->video.addr, sizeof(d->video.addr), "%s", vin->local_ip);
			d->video.port = vin->local_port;
		} else { /* no video leg, or apart from the audio: video off */
			d->video.port = 0;
			media_leg_destroy(vleg);
		}
	}
	return true;
}
