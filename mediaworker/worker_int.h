/*
 * worker_int.h - the mediaworker's internals shared by its files (not an interface: worker.h is).
 *
 *   worker.c        the leg table, the control handlers of a leg's owner, media, Redis state
 *   worker_owner.c  who may act on a leg: ownership checks and refusals, ADOPT_LEG, and the
 *                   DESTROY_LEG of another signaler's leg (both wait for Redis)
 *   worker_video.c  a video leg's H.264 both ways (no transcoder: struct video instead)
 */
#ifndef RS_WORKER_INT_H
#define RS_WORKER_INT_H

#include "codec.h"
#include "ctl_server.h"
#include "log.h"
#include "rtp_leg.h"
#include "state.h"
#include "strmap.h"
#include "transcode.h"
#include "wire.h"
#include "worker.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

#define LEG_BUCKETS 4096
#define FRAME_MS 20 /* a frame's duration when the transcoder does not say */
#define TIMELINE_HEADROOM_MS 1000 /* a leg's RTMP timeline starts this long before its creation */
#define VIDEO_FRAME_TS 3000 /* a video leg's reorder hold, in 90 kHz units: one frame at 30/s */
#define LEG_MAX_CODECS WIRE_MAX_CODECS
/* Packets assumed sent since the last stored state, on top of the elapsed time, when a leg is
 * adopted: the sequence jumps past anything the dead worker may have sent. */
#define ADOPT_SEQ_MARGIN 50
#define ADOPT_SEQ_MARGIN_VIDEO 500 /* a key frame alone may be a few hundred packets */

struct leg {
	char id[WIRE_MAX_ID + 1];
	char call_id[STATE_CALL_ID_MAX + 1];
	char owner[WIRE_MAX_ID + 1];
	struct worker *w;
	struct rtp_leg *rtp;
	struct transcoder *tc; /* audio legs */
	struct video *vid;     /* video legs (worker_video.c) */
	const struct codec *rtmp_codec;
	const struct codec *rtmp_out;	   /* what the players get: NULL, rtmp_codec */
	unsigned rtmp_rate, rtmp_channels; /* as the publisher's first message said; 0: unknown */
	char sip_fmtp[129];		   /* the peer's a=fmtp of the SIP codec, "" when none */
	const struct codec *sip_codec;
	int sip_pt;
	int dtmf_pt;
	struct wire_codec offered[LEG_MAX_CODECS]; /* SIP codecs the signaler allowed, by PT */
	unsigned n_offered;
	enum rtp_leg_srtp_suite srtp;
	char local_key[RTP_LEG_KEY_B64_LEN + 1];
	char remote_key[RTP_LEG_KEY_B64_LEN + 1];
	bool hold;
	bool track;             /* no remote yet, the SIP codec may change: follow the stream */
	char held_ip[64];       /* remote given before the peer's SRTP key: applied with the key */
	uint16_t held_port;
	uint64_t created_ms;    /* wall clock, for the record */
	uint64_t start_mono;    /* the RTMP timeline's zero: creation - TIMELINE_HEADROOM_MS */
	uint32_t out_ts;        /* next RTMP timestamp toward the signaler */
	bool out_started;
	uint32_t rtp_ts_last;   /* RTP timestamp of the peer's last frame */
	uint64_t rtp_wall_last; /* loop time it arrived */
	uint32_t rtp_anchor;    /* RTMP time of the RTP timeline's anchor */
	uint32_t rtp_ts_frac;   /* RTP ticks since the anchor */
	uint64_t media_in, media_out, media_errors;
	uint64_t media_stale; /* RTMP frames dropped as too late */
	struct leg *prev, *next;       /* all legs */
};

/* A request whose answer waits for Redis (worker_owner.c): an ADOPT_LEG reading the leg's
 * record, or a request on another signaler's leg asking whether that signaler is dead. */
struct take;

/* One leg being handed over: its state write is in flight. */
struct handover {
	struct worker *w;
	char leg_id[WIRE_MAX_ID + 1];
	struct handover *next;
};

struct worker {
	struct evloop *loop;
	struct worker_config cfg;
	char worker_id[WIRE_MAX_ID + 1];
	char host[256];
	char ctl_ep[256], media_ep[256]; /* announced: WORKER_ADVERTISED_HOST in the bound ones */
	struct redis *redis;
	struct ctl_server *ctl;
	struct port_pool *pool;
	struct strmap *by_id; /* id -> struct leg, LEG_BUCKETS chains */
	struct leg *legs;
	unsigned n_legs, n_transcoding;
	struct ev_timer *slow; /* 1 s: CPU sample, worker record, leg states */
	uint64_t last_state_write;
	struct rusage ru_last;
	uint64_t ru_last_mono;
	uint16_t cpu_permille;
	uint64_t started_ms;
	bool draining;
	void (*drain_done)(struct worker *w, void *arg);
	void *drain_arg;
	struct take *takes;	    /* requests waiting for Redis */
	struct handover *handovers; /* leg state writes of worker_handover() in flight */
	struct tc_out out; /* scratch for the transcoder, one per worker (large) */
	uint64_t media_unknown_leg, media_wrong_owner, media_stale;
	uint64_t refused[WORKER_REFUSED_N]; /* requests refused, by reason (worker_owner.c) */
	struct log_limit refused_log;
};

/* What a new leg needs, from CREATE_LEG or from a stored record. */
struct leg_spec {
	const char *id, *call_id, *owner;
	const struct codec *rtmp_codec;
	const struct codec *rtmp_out;	   /* NULL: rtmp_codec */
	unsigned rtmp_rate, rtmp_channels; /* 0: unknown (a stored record) */
	const char *sip_fmtp;		   /* the peer's a=fmtp of the SIP codec, or NULL */
	struct wire_codec offered[LEG_MAX_CODECS];
	unsigned n_offered;
	int chosen; /* index into offered[] */
	int dtmf_pt;
	const char *remote_ip;
	uint16_t remote_port;
	enum rtp_leg_srtp_suite srtp;
	const char *local_key, *remote_key; /* base64, NULL when none */
	const struct rtp_leg_state *adopt;  /* continuity, NULL for a new stream */
	bool hold;
	uint64_t created_ms;
	const char *sync_leg; /* a leg here whose RTMP timeline this one shares, or NULL */
};

/* --- worker.c --- */

/* The leg @id, or NULL. */
struct leg *worker_leg_find(struct worker *w, const char *id);

/* Builds and links a leg (its state written to Redis); NULL with *err and @why set. */
struct leg *worker_leg_create(struct worker *w, const struct leg_spec *s, int *err, char *why,
			      size_t whylen);

/* Unlinks and frees @l, deleting its Redis record when @forget_state. */
void worker_leg_destroy(struct leg *l, bool forget_state);

/* The OK of CREATE_LEG and ADOPT_LEG for @l. */
void worker_reply_leg(struct worker *w, const struct ctl_request *req, const struct leg *l);

/* An SRTP suite's name as the wire and Redis carry it; 0 or -EINVAL. */
int worker_suite_parse(const char *s, enum rtp_leg_srtp_suite *out);

/* The RTMP time (ms, the leg's timeline) of the peer's RTP timestamp @ts arriving at @now. */
uint32_t worker_rtmp_time(struct leg *l, uint32_t ts, uint64_t now);

/* --- worker_video.c --- */

struct video;

/* Gives @l its video state. 0 or -ENOMEM. */
int worker_video_new(struct leg *l);
void worker_video_free(struct leg *l);

/* One MEDIA piece from the owner (wire_video.h). */
void worker_video_from_rtmp(struct leg *l, const struct wire_media *md);

/* The rtp_leg callbacks of a video leg (@arg: the leg). */
void worker_video_on_packet(struct rtp_leg *rtp, const struct rtp_reorder_frame *f, void *arg);
void worker_video_on_keyframe_request(struct rtp_leg *rtp, void *arg);

/* The owner asks for a key frame from the peer (a player joined). */
void worker_video_request_keyframe(struct leg *l);

/* One log line of the leg's video counters. */
void worker_video_log_stats(struct leg *l);

/* --- worker_owner.c --- */

/*
 * The leg a request of its owner names (LEG_ID): NULL after answering ERROR ENOENT (no such
 * leg), EINVAL (no LEG_ID) or EPERM (the requester is not the leg's owner, or is no signaler:
 * counted and logged at a bounded rate).
 */
struct leg *worker_owned_leg(struct worker *w, const struct ctl_request *req,
			     const struct wire_msg *m);

/* True when @owner (CREATE_LEG's OWNER) is the requester; else answers ERROR EPERM (counted). */
bool worker_owner_is_requester(struct worker *w, const struct ctl_request *req, const char *owner,
			       const char *leg_id);

/* DESTROY_LEG and ADOPT_LEG, with the takeover rule for legs of other signalers. */
void worker_on_destroy_leg(struct ctl_server *s, const struct ctl_request *req,
			   const struct wire_msg *m, void *arg);
void worker_on_adopt_leg(struct ctl_server *s, const struct ctl_request *req,
			 const struct wire_msg *m, void *arg);

/* Requests waiting for Redis: how many are ADOPT_LEGs; all cancelled (worker_destroy). */
unsigned worker_takes_adopting(const struct worker *w);
void worker_takes_cancel(struct worker *w);

#endif
