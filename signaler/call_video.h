/*
 * call_video.h - what both call apps (call/<destination> and the sip app) do with a call's
 * H.264 video leg: made beside the audio leg (its worker, its timeline), given its side of our
 * SDP, pointed at the negotiated video, or dropped so the call goes on with audio
 * (docs/video.md).
 */
#ifndef RS_CALL_VIDEO_H
#define RS_CALL_VIDEO_H

#include "media.h"
#include "sdp.h"

#include <stdbool.h>

/* Reads VIDEO_KBPS (the b=AS / b=TIAS of our video m-line: what we ask the peer to send at
 * most, kbit/s, 0 for none; default 2500). 0, or -EINVAL after logging. */
int call_video_init(void);

/*
 * A video leg beside @audio_leg, made with the audio leg's parameters @audio (call id, SRTP
 * wish) and the H.264 payload types of our offers (packetization modes 1 and 0): on the audio
 * leg's worker, sharing its timeline. The remote comes from the negotiation
 * (call_video_apply). NULL with errno.
 */
struct media_leg *call_video_leg_new(struct media *m, const struct media_leg_params *audio,
				     struct media_leg *audio_leg,
				     const struct media_leg_callbacks *cbs, void *arg);

/*
 * Our video side of an SDP (@local, whose srtp and dir are set): the port of *@vleg once it is
 * ready on the audio leg's address (@in) with a key when SRTP may be used, and VIDEO_KBPS. Otherwise a ready
 * video leg is destroyed (logged with @sid): the call is an audio call. Returns whether video
 * is offered or answered.
 */
bool call_video_local(struct media_leg **vleg, const struct media_leg_info *in,
		      struct sdp_local *local, const char *sid);

/*
 * Points *@vleg at the negotiated video @v (remote, payload type, fmtp, SRTP; on hold when
 * @hold_local or when the peer does not receive), or, when @v is off or the leg refuses,
 * destroys it: the call goes on with audio. Logged with @sid and @what (the call's name).
 */
void call_video_apply(struct media_leg **vleg, const struct sdp_video_choice *v, bool hold_local,
		      const char *sid, const char *what);

/*
 * After a move: our last SDP @d gets the audio leg's and the video leg's current addresses (a
 * video leg gone, or on another address, turns video off: port 0, the leg destroyed). False,
 * @d untouched, while either leg is still moving: the re-offer waits for the other move.
 */
bool call_video_moved_sdp(struct sdp_media_desc *d, struct media_leg *leg, struct media_leg **vleg);

#endif
