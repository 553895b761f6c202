/*
 * media_video.c - the media bridge's video legs (see media.h).
 *
 * A video leg is a leg like the others (created, moved, destroyed by media.c) whose media are
 * whole RTMP video messages, cut into MEDIA pieces on the way to its worker and put together
 * on the way back (common/wire_video.h). It goes where the call's audio leg, its companion,
 * is: created on that worker, and adopted after a worker death on the worker the companion
 * is adopted by (whichever of the two is placed first takes the dispatcher's pick).
 */
#include "media_int.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FLV_AVC_SEQ_MAX 4096 /* a sequence header kept for moves: SPS and PPS, bounded */

struct dispatcher_worker *media_video_home(struct media_leg *leg)
{
	struct media_leg *c = leg->companion[0] ? media_leg_find(leg->m, leg->companion) : NULL;

	if (!c || c->destroyed || !c->w || !dispatcher_worker_alive(c->w))
		return NULL;
	if (c->state == LEG_FAILED || (c->state == LEG_MOVING && !c->main_req))
		return NULL;
	return c->w;
}

void media_video_send_seq(struct media_leg *leg)
{
	if (leg->video && leg->vseq_len)
		(void)media_leg_send_video(leg, leg->vseq, leg->vseq_len, 0);
}

struct piece_ctx {
	struct media_leg *leg;
	uint32_t ts;
};

static int send_piece(void *arg, const uint8_t *payload, size_t len, uint8_t flags)
{
	struct piece_ctx *c = arg;

	return dispatcher_send_media(c->leg->m->d, c->leg->w, c->leg->id, c->ts, flags, payload,
				     len);
}

/* True for an FLV AVC sequence header: frame type 1, CodecID 7, AVCPacketType 0. */
static bool is_avc_seq(const uint8_t *msg, size_t len)
{
	return len > 5 && msg[0] == 0x17 && msg[1] == 0;
}

int media_leg_send_video(struct media_leg *leg, const uint8_t *msg, size_t len, uint32_t ts)
{
	struct piece_ctx c = {.leg = leg, .ts = ts};
	int ret;

	if (!leg || !leg->video || !len)
		return -EINVAL;
	if (len > WIRE_VIDEO_MAX_MESSAGE) {
		leg->audio_drops++;
		return -E2BIG;
	}
	if (is_avc_seq(msg, len) && len <= FLV_AVC_SEQ_MAX && msg != leg->vseq) {
		uint8_t *k = realloc(leg->vseq, len);

		if (k) {
			memcpy(k, msg, len);
			leg->vseq = k;
			leg->vseq_len = len;
		}
	}
	if (leg->state != LEG_READY) {
		leg->audio_drops++;
		return leg->state == LEG_FAILED ? -EPIPE : -EAGAIN;
	}
	ret = wire_video_split(msg, len, send_piece, &c);
	if (ret < 0) {
		leg->audio_drops++;
		return ret == -ENOTCONN ? -EAGAIN : ret;
	}
	leg->audio_in++;
	return 0;
}

void media_video_in(struct media_leg *leg, const struct wire_media *md, uint32_t ts)
{
	const uint8_t *msg;
	size_t len;
	int r = wire_video_asm_add(&leg->vin, md->ts, md->flags, md->payload, md->len, &msg, &len);

	if (r < 0 && leg->vin.dropped % 100 == 1)
		log_warn(leg->id, "video from the worker: message dropped (%s; %llu so far)",
			 strerror(-r), (unsigned long long)leg->vin.dropped);
	if (r == 1 && leg->cbs.video_out)
		leg->cbs.video_out(leg, msg, len, ts, leg->arg);
}

void media_video_free(struct media_leg *leg)
{
	wire_video_asm_free(&leg->vin);
	free(leg->vseq);
	leg->vseq = NULL;
	leg->vseq_len = 0;
}
