/*
 * media_int.h - the media bridge's internals shared by its files (not an interface: media.h is).
 *
 *   media.c            legs and their requests, the dispatcher's callbacks, life cycle, the leg
 *                      API, read-only views for metrics, legs of other signalers
 *   media_discovery.c  the workers found in Redis: added, refused (CURVE), removed
 *   media_video.c      video legs: messages out in pieces and in again, the kept sequence
 *                      header, the companion leg's worker
 */
#ifndef RS_MEDIA_INT_H
#define RS_MEDIA_INT_H

#include "dispatcher.h"
#include "media.h"
#include "state.h"
#include "strmap.h"
#include "wire.h"
#include "wire_video.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_timer;
struct evloop;
struct redis;
struct early_audio;
struct leg_req;

#define LEG_BUCKETS 4096
#define REFUSED_SEEN 16 /* discovered workers refused lately: logged once each */
#define SID "media"

enum leg_state { LEG_CREATING, LEG_READY, LEG_MOVING, LEG_FAILED };

/* The values a leg should have on whichever worker carries it. */
struct leg_desired {
	bool remote;
	char ip[MEDIA_IP_MAX + 1];
	uint16_t port;
	bool codec;
	uint8_t codec_pt;
	char codec_fmtp[129];
	bool srtp;
	char suite[65];
	uint8_t key[WIRE_MAX_KEY];
	size_t key_len;
	bool hold_set, hold;
};

struct media_leg {
	struct media *m;
	char id[WIRE_MAX_ID + 1];
	char call_id[WIRE_MAX_STR + 1];
	enum leg_state state;
	struct media_leg_callbacks cbs;
	void *arg;

	/* what CREATE_LEG asks for */
	struct wire_codec rtmp_codec;
	struct wire_codec rtmp_out; /* name "": the players get rtmp_codec */
	/* The publisher's last audio sequence header (AAC AudioSpecificConfig): a worker that takes
	 * the leg over gets it before any audio, as the first one did. */
	uint8_t seq[64];
	uint8_t seq_len;
	struct wire_codec sip[WIRE_MAX_CODECS];
	size_t n_sip;
	bool want_srtp;
	uint8_t dtmf_pt;
	uint16_t ptime_ms;

	struct leg_desired want;   /* initial remote/SRTP, then every update */
	bool updated;		   /* media_leg_update() was called: re-apply after moves */
	bool update_queued;	   /* an update waits for READY */
	media_leg_done_cb queued_done;

	struct dispatcher_worker *w;	  /* READY: carries it; CREATING/MOVING: being asked */
	struct dispatcher_worker *lost_w; /* MOVING: the worker that died under it */
	char home_id[WIRE_MAX_ID + 1];	  /* id of the last worker that had it ready */
	struct leg_req *main_req;	  /* CREATE_LEG / ADOPT_LEG in flight */
	struct leg_req *reqs;		  /* every request of the leg in flight */
	unsigned attempts;
	uint64_t deadline;
	struct ev_timer *timer;
	char reason[640];
	bool failed_told, ready_told;

	struct media_leg_info info;
	char worker_id[WIRE_MAX_ID + 1];
	bool have_info;

	/* RTMP audio that arrived while the worker was creating the leg, sent once it is ready: a
	 * Speex decoder must see a stream from its first frame (one that joins late can diverge on
	 * steady sounds). Allocated on the first such frame, freed once sent. */
	struct early_audio *early;

	/* the RTMP-side timeline, continuous across moves */
	bool out_started, rebase;
	uint32_t ts_offset, last_ts;
	uint64_t last_out_at;
	uint64_t audio_in, audio_out, audio_drops;

	/* video legs (media_video.c) */
	bool video;
	char companion[WIRE_MAX_ID + 1]; /* the call's other leg (audio <-> video), "" when none */
	uint8_t *vseq;			 /* the publisher's last AVC sequence header */
	size_t vseq_len;
	struct wire_video_asm vin; /* pieces from the worker */

	bool destroyed;
	struct media_leg *prev, *next, *next_grave;
};

struct media_worker {
	struct dispatcher_worker *w;
	bool discovered; /* from Redis: removed when gone */
	uint64_t last_listed;
};

struct orphan {
	struct orphan *next;
	struct dispatcher_worker *w;
	char leg_id[WIRE_MAX_ID + 1];
};

struct media {
	struct evloop *loop;
	struct dispatcher *d;
	struct redis *redis;
	struct media_config cfg;
	char prefix[48]; /* leg ids: "<prefix>-<n>" */
	uint64_t next_leg;
	struct strmap *by_id;	/* id -> struct media_leg, LEG_BUCKETS chains */
	struct media_leg *legs; /* every leg, for worker events */
	size_t n_legs;
	struct media_leg *grave;
	struct ev_timer *reaper, *discovery;
	bool listing;
	bool redis_failing;
	struct media_worker *workers;
	size_t n_workers, cap_workers;
	struct orphan *orphans;
	size_t n_orphans;
	unsigned inflight;
	uint64_t media_unrouted, events_unrouted, moves, move_failures, orphans_destroyed;
	struct {
		char id[STATE_ID_MAX + 1];
		char key[STATE_CURVE_KEY_MAX + 1];
	} refused[REFUSED_SEEN]; /* worker records refused (id, key), newest at refused_next - 1 */
	unsigned refused_next;
	uint64_t workers_refused;
};

/* A worker's name for logs: its id once known, else its control endpoint ("-" for NULL). */
const char *media_wname(const struct dispatcher_worker *w);

/* The bridge's entry of @w, or NULL. */
struct media_worker *media_worker_find(struct media *m, const struct dispatcher_worker *w);

/* Adds @w to the bridge's workers (@discovered: from Redis); 0 or -ENOMEM. */
int media_worker_add(struct media *m, struct dispatcher_worker *w, bool discovered);

/* Worker @w came back (@flush: same instance, destroy its stale legs) or is gone / restarted
 * (its legs are gone: forget them). */
void media_orphans_settle(struct media *m, struct dispatcher_worker *w, bool flush);

/* The leg @id, or NULL. */
struct media_leg *media_leg_find(struct media *m, const char *id);

/* --- media_video.c --- */

/* The worker a leg with a companion should go to (the companion's, when alive and it carries
 * or is being given the companion), else NULL: the dispatcher picks. */
struct dispatcher_worker *media_video_home(struct media_leg *leg);

/* The kept AVC sequence header to the leg's (new) worker, ahead of any picture. */
void media_video_send_seq(struct media_leg *leg);

/* One MEDIA piece of a video leg from its worker: a whole message goes to video_out at @ts. */
void media_video_in(struct media_leg *leg, const struct wire_media *md, uint32_t ts);

/* Frees what a video leg holds (the leg's memory is freed by its owner). */
void media_video_free(struct media_leg *leg);

/* Discovery (media_discovery.c): the timer of struct media.discovery (@arg: the media) lists
 * the workers in Redis every cfg.discovery_ms; the Redis client's "up" listener lists them at
 * once. */
void media_on_discovery_timer(struct evloop *loop, struct ev_timer *t, void *arg);
void media_on_redis_up(struct redis *r, void *arg);

#endif
