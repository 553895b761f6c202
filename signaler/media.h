/*
 * media.h - the signaler's media bridge: call legs on the mediaworker pool.
 *
 * One struct media per signaler process owns the dispatcher (common/dispatcher.h): the workers
 * come from WORKER_ENDPOINTS and, when a Redis client is given, from the worker records in
 * Redis (state_workers_list every second; a discovered worker that is dead and gone from Redis
 * for the grace period is removed again).
 *
 * A struct media_leg is one RTP leg of a call, carried by one worker:
 *
 *   media_leg_new --CREATE_LEG (500 ms x 3) to the least-loaded live worker--> ready(info)
 *        |                  error / timeout / worker down: another worker, 3 attempts
 *        +--> failed(reason)
 *   RTMP audio  --media_leg_send_audio--> MEDIA --> worker --> RTP peer
 *   RTP peer --> worker --> MEDIA --> audio_out(payload with the FLV audio tag byte, ms ts)
 *   worker EVENTs --> dtmf(digit) / rtp_timeout() / failed(reason)
 *   worker down  --ADOPT_LEG on another live worker (state rebuilt from Redis: same SSRC and
 *                  keys, sequence continuing)--> moved(new ip, new port)   [SIP: re-INVITE]
 *                  not adoptable within move_timeout_ms --> failed("worker lost: ...")
 *   media_leg_destroy --DESTROY_LEG (fire and forget, retried) wherever the leg may live
 *
 * Callbacks come from the event loop, never from inside the function that caused them; any of
 * them may call media_leg_destroy() on its own leg. Nothing blocks.
 */
#ifndef RS_MEDIA_H
#define RS_MEDIA_H

#include "media_codec.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct curve;
struct evloop;
struct redis;
struct media;
struct media_leg;

#define MEDIA_IP_MAX 45 /* textual IPv4 / IPv6 */

struct media_config {
	const char *worker_endpoints; /* WORKER_ENDPOINTS "ctl,media;ctl,media"; NULL: none */
	uint32_t request_timeout_ms;  /* per attempt of a leg request; 0: 500 */
	unsigned request_retries;     /* resends after the first attempt; 0: 3 */
	unsigned create_attempts;     /* workers tried by media_leg_new; 0: 3 */
	uint32_t move_timeout_ms;     /* a leg of a dead worker waits this long for a home; 0: 10000 */
	uint32_t discovery_ms;	      /* Redis discovery period; 0: 1000 */
	uint32_t remove_grace_ms;     /* dead and gone from Redis this long: removed; 0: 10000 */
	const struct curve *curve;    /* CURVE keys (kept; NULL or not enabled: plain ZeroMQ): the
				       * workers are authenticated, and only allowed keys are used */
};

/* What the worker answered for a leg (CREATE_LEG or ADOPT_LEG). */
struct media_leg_info {
	char local_ip[MEDIA_IP_MAX + 1]; /* the address to put in SDP */
	uint16_t local_port;		 /* its RTP port */
	struct wire_codec codec;	 /* the SIP codec the worker chose */
	uint32_t ssrc;
	bool transcoding;
	char srtp_suite[65]; /* "" for plain RTP */
	uint8_t srtp_local_key[WIRE_MAX_KEY];
	size_t srtp_local_key_len;
	const char *worker_id; /* the worker carrying the leg now */
};

/*
 * The application's side of a leg. Every callback may be NULL; @arg is media_leg_new's.
 *   ready        once, when the first worker created the leg; @info is valid during the call
 *                (media_leg_info() gives it later, updated by moves)
 *   failed       once; the leg is dead (sending fails with -EPIPE) but stays allocated until
 *                media_leg_destroy()
 *   moved        the leg was adopted by another worker after its worker died: RTP now leaves
 *                from @ip:@port (tell the peer); the leg stays usable throughout
 *   dtmf         an RFC 4733 digit from the peer
 *   rtp_timeout  no RTP from the peer for the worker's RTP_TIMEOUT
 *   audio_out    one audio frame for the RTMP side: a complete RTMP audio payload (FLV audio tag
 *                byte first) and its timestamp in ms on the leg's timeline, which continues
 *                across moves (a worker change shows as a forward jump the size of the gap)
 *   changed      media_leg_info() changed after ready: another worker (a move) or another SIP
 *                codec (the worker's answer to an update that set one: codec, transcoding)
 */
struct media_leg_callbacks {
	void (*ready)(struct media_leg *leg, const struct media_leg_info *info, void *arg);
	void (*failed)(struct media_leg *leg, const char *reason, void *arg);
	void (*moved)(struct media_leg *leg, const char *ip, uint16_t port, void *arg);
	void (*dtmf)(struct media_leg *leg, char digit, unsigned duration_ms, void *arg);
	void (*rtp_timeout)(struct media_leg *leg, void *arg);
	void (*audio_out)(struct media_leg *leg, const uint8_t *payload, size_t len, uint32_t ts,
			  void *arg);
	void (*changed)(struct media_leg *leg, void *arg);
	/* Video legs: one whole RTMP video message (FLV VIDEODATA: the AVC sequence header, or a
	 * picture) for the players, with its timestamp on the leg's timeline (shared with the
	 * call's audio leg: media_leg_params.sync). */
	void (*video_out)(struct media_leg *leg, const uint8_t *msg, size_t len, uint32_t ts,
			  void *arg);
};

/* What a new leg is. Pointers are read during media_leg_new() only. */
struct media_leg_params {
	const char *call_id;		     /* SIP Call-ID, for logs and Redis: 1..255 of 0x21-0x7e */
	struct wire_codec rtmp_codec;	     /* the RTMP side (media_codec_from_rtmp()) */
	struct wire_codec rtmp_out;	     /* what the players get; name "": rtmp_codec */
	const struct wire_codec *sip_codecs; /* allowed SIP codecs, in preference order, 1..16 */
	size_t n_sip_codecs;
	const char *remote_ip; /* the peer's RTP address, or NULL (known later: update) */
	uint16_t remote_port;
	bool want_srtp;		      /* we offer SRTP: the worker makes a local key */
	const char *srtp_suite;	      /* with the peer's key: e.g. "AES_CM_128_HMAC_SHA1_80" */
	const uint8_t *srtp_remote_key; /* master key + salt (30 bytes), or NULL */
	size_t srtp_remote_key_len;
	uint8_t dtmf_pt;	      /* telephone-event payload type; 0: the worker's default (101) */
	unsigned ptime_ms;	      /* 0: 20 */
	/* A video leg (rtmp_codec and sip_codecs H264/90000) names the call's audio leg: it is
	 * placed on that leg's worker (and moved with it) and shares its RTMP timeline. */
	struct media_leg *sync;
};

/* A change of a leg (UPDATE_LEG, absolute values); a zeroed struct changes nothing. */
struct media_leg_update {
	const char *remote_ip; /* NULL: unchanged */
	uint16_t remote_port;
	bool set_codec; /* switch the SIP side to codec_pt (one of the offered codecs) */
	uint8_t codec_pt;
	const char *codec_fmtp; /* with set_codec: the peer's a=fmtp of that codec; NULL: none */
	const char *srtp_suite; /* NULL: unchanged; comes with the peer's key */
	const uint8_t *srtp_remote_key;
	size_t srtp_remote_key_len;
	bool set_hold; /* hold (stop sending) or resume */
	bool hold;
	bool keyframe; /* video legs: ask the peer for a key frame now (not kept, not re-applied) */
};

/* Outcome of media_leg_update() / media_leg_send_dtmf(): 0 or a negative errno (-ECANCELED when
 * the leg moved meanwhile: its update is re-applied on the new worker anyway); @why says why. */
typedef void (*media_leg_done_cb)(struct media_leg *leg, int status, const char *why, void *arg);

/*
 * Creates the bridge: its dispatcher, the static workers of cfg->worker_endpoints and, with
 * @redis (may be NULL; borrowed, must outlive the bridge), discovery. @signaler_id must be a
 * valid id ([A-Za-z0-9._-]{1,64}). @cfg NULL: defaults. Returns NULL with errno set (EINVAL
 * for a bad id or a malformed endpoint list, which is logged).
 */
struct media *media_new(struct evloop *loop, const char *signaler_id, struct redis *redis,
			const struct media_config *cfg);

/*
 * Frees the bridge. Legs still present are freed without callbacks (their handles become
 * invalid) and without DESTROY_LEG: destroy legs first and let media_busy() drain. NULL-safe,
 * clears *mp.
 */
void media_destroy(struct media **mp);

/* True while requests (including fire-and-forget DESTROY_LEGs) await answers. */
bool media_busy(const struct media *m);

/* Live workers now. */
size_t media_live_workers(const struct media *m);

/* Logs one line of counters and one per worker. */
void media_log_stats(const struct media *m);

/*
 * Creates a leg per @p and asks a worker for it; the outcome comes through @cbs (copied) with
 * @arg. Returns the leg (always, unless the parameters are invalid or memory is short: NULL with
 * errno EINVAL / ENOMEM); when no worker is available, failed() follows from the loop.
 */
struct media_leg *media_leg_new(struct media *m, const struct media_leg_params *p,
				const struct media_leg_callbacks *cbs, void *arg);

/*
 * Applies @u to the leg: now when it is ready, else merged with earlier changes and sent once it
 * is (then only the latest @done is called). The values are kept and re-applied after every
 * move. @done (may be NULL) reports the UPDATE_LEG that carried the change. 0, -EINVAL (bad
 * values), -EPIPE (the leg failed), -ENOMEM.
 */
int media_leg_update(struct media_leg *leg, const struct media_leg_update *u,
		     media_leg_done_cb done);

/* Plays DTMF @digit (0-9 * # A-D) toward the peer for @duration_ms (0: 100). 0, -EINVAL,
 * -EAGAIN (not ready: creating or moving), -EPIPE (failed), -ENOMEM. */
int media_leg_send_dtmf(struct media_leg *leg, char digit, unsigned duration_ms,
			media_leg_done_cb done);

/*
 * Sends one RTMP audio payload (FLV audio tag byte first, of the leg's RTMP codec) with its RTMP
 * timestamp toward the peer: whole when it holds at most CODEC_RTMP_MAX_AUDIO (8192) bytes of
 * codec data after its header; G.711 above that is cut into pieces of 1 s (audio_check.h), each
 * with the header and its own timestamp. While the leg is being created, up to 25 messages and
 * 32 KiB are kept (allocated at their size) and sent once it is ready. Hot path: nothing is
 * allocated per message but those kept ones; the dispatcher allocates a worker's batch buffer
 * once, with its first message, and libzmq copies every batch it sends. 0, -EAGAIN (not ready,
 * or the queue is full: dropped), -EPIPE (failed), -ENOMEM (no batch buffer), -E2BIG (another
 * codec above the limit, which audio_check_feed() refuses first: dropped).
 */
int media_leg_send_audio(struct media_leg *leg, const uint8_t *payload, size_t len, uint32_t ts);

/*
 * Ends the leg: DESTROY_LEG (retried, fire and forget) to every worker that may hold it (one that
 * is down gets it when it comes back, and the leg's record is deleted from Redis), pending
 * requests are cancelled, no callback follows. Safe from the leg's own callbacks. NULL-safe,
 * clears *legp.
 */
void media_leg_destroy(struct media_leg **legp);

/*
 * Video legs: sends one RTMP video message (FLV VIDEODATA of the publisher, H.264) with its RTMP
 * timestamp toward the peer, in MEDIA pieces (common/wire_video.h). The last AVC sequence header
 * is kept and sent first to every worker that takes the leg (a move). Nothing is kept while the
 * leg is being created or moved (the worker waits for a key frame anyway). 0, -EAGAIN (not
 * ready: dropped), -EPIPE (failed), -E2BIG (above 1 MiB), -EINVAL (not a video leg).
 */
int media_leg_send_video(struct media_leg *leg, const uint8_t *msg, size_t len, uint32_t ts);

/* The leg's id (unique per signaler run: "<signaler id>-<nonce>-<n>"), and what the worker
 * answered (NULL before ready). */
const char *media_leg_id(const struct media_leg *leg);
const struct media_leg_info *media_leg_info(const struct media_leg *leg);

/* True while the leg is being adopted by another worker (its worker died or drained). */
bool media_leg_moving(const struct media_leg *leg);

/* --- read-only views for metrics ---------------------------------------------------------- */

/* Counts of the bridge: legs by state now, totals since start. */
struct media_stats {
	size_t legs_creating, legs_ready, legs_moving, legs_failed; /* not yet destroyed */
	uint64_t legs_created;	    /* media_leg_new() calls that made a leg */
	uint64_t moves;		    /* legs adopted by another worker */
	uint64_t move_failures;	    /* legs lost with their worker */
	uint64_t orphans_destroyed; /* stale copies destroyed on workers that came back */
	uint64_t media_unrouted;    /* frames from workers for no ready leg (dropped) */
	uint64_t events_unrouted;   /* events from workers for no ready leg (ignored) */
	unsigned requests_in_flight;
	size_t orphans;		    /* stale copies waiting for their worker */
	bool redis_failing;	    /* the last worker discovery in Redis failed */
	uint64_t workers_refused;   /* worker records refused: a CURVE key not allowed (per key) */
};

/* Fills @out. O(legs). */
void media_get_stats(const struct media *m, struct media_stats *out);

/* Called once per leg not yet destroyed with its call id (valid during the call). */
typedef void (*media_leg_visit_fn)(const char *call_id, bool failed, void *arg);
void media_foreach_leg(const struct media *m, media_leg_visit_fn fn, void *arg);

/* The bridge's dispatcher, to read its workers (dispatcher_worker_count/at/info). */
struct dispatcher;
const struct dispatcher *media_dispatcher(const struct media *m);

/* --- legs of other signalers (orphan cleanup) ---------------------------------------------- */

/*
 * Destroys leg @leg_id that another signaler (a dead one) created on worker @worker_id: a
 * DESTROY_LEG (fire and forget) now if that worker is alive, else when it comes back with the
 * same instance. The worker deletes the leg's record. 0, -ENOENT (no such worker known here),
 * -EINVAL.
 */
int media_destroy_foreign_leg(struct media *m, const char *leg_id, const char *worker_id);

#endif
