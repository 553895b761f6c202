/*
 * worker.h - the mediaworker's legs: the control handlers (create, update, destroy, DTMF, stats,
 * adopt), the media path between the signaler's RTMP frames and each leg's RTP session, the
 * media on arrival, heartbeat load, and each leg's state in Redis.
 */
#ifndef RS_WORKER_H
#define RS_WORKER_H

#include "transcode.h"

#include <stdbool.h>
#include <stdint.h>

struct curve;
struct evloop;
struct redis;
struct worker;

struct worker_config {
	const char *worker_id;     /* WORKER_ID; [A-Za-z0-9._-]{1,64} */
	const char *ctl_bind;      /* WORKER_CTL_BIND, e.g. tcp://127.0.0.1:* */
	const char *media_bind;    /* WORKER_MEDIA_BIND */
	const char *advertised_host; /* WORKER_ADVERTISED_HOST: the host in the endpoints announced
				      * (Redis, ready line); "": the bound ones */
	const char *rtp_bind_ip;   /* RTP_BIND_IP: numeric address RTP sockets bind to */
	const char *advertised_ip; /* RTP_ADVERTISED_IP: address given to SIP peers (NAT) */
	uint16_t rtp_port_min, rtp_port_max; /* RTP_PORT_MIN / RTP_PORT_MAX */
	unsigned capacity;         /* WORKER_CAPACITY: legs, 0 unlimited */
	unsigned rtp_timeout_ms;   /* RTP_TIMEOUT (s in the environment), 0 disables */
	unsigned latch_packets;    /* RTP_LATCH_PACKETS: strict latching's learning run (rtp_leg.h) */
	unsigned latch_guard_ms;   /* RTP_LATCH_GUARD_MS: strict latching's guard */
	unsigned state_interval_ms; /* how often a leg's RTP state is rewritten in Redis */
	unsigned leg_ttl_s;        /* LEG_TTL */
	unsigned heartbeat_ms;     /* WORKER_HEARTBEAT_MS */
	unsigned media_max_delay_ms; /* MEDIA_MAX_DELAY_MS: RTMP-side frames that waited longer in
				      * queues on their way here are dropped; 0: never */
	struct transcode_opts topts; /* SPEEX_QUALITY, SPEEX_COMPLEXITY */
	/* CURVE keys (curve_from_env, set by the caller; must outlive the worker); NULL or not
	 * enabled: plain ZeroMQ. With CURVE the ZAP handler (zap_new) must be running. */
	const struct curve *curve;
};

/* Why a leg request was refused (worker_stats.refused; docs/protocol.md §6.1). */
enum worker_refusal {
	WORKER_REFUSED_UNIDENTIFIED, /* from a connection that is no signaler's */
	WORKER_REFUSED_NOT_OWNER,    /* UPDATE_LEG, SEND_DTMF, LEG_STATS of another's leg */
	WORKER_REFUSED_OWNER_ALIVE,  /* ADOPT_LEG, DESTROY_LEG of a live signaler's leg */
	WORKER_REFUSED_OWNER_FIELD,  /* CREATE_LEG, ADOPT_LEG naming another OWNER */
	WORKER_REFUSED_UNVERIFIED,   /* the owner's liveness could not be read from Redis */
	WORKER_REFUSED_N
};

/* "unidentified", "not_owner", "owner_alive", "owner_field", "unverified": metric labels. */
const char *worker_refusal_name(enum worker_refusal r);

/* Reads the configuration from the environment; 0 or -EINVAL (logged). */
int worker_config_from_env(struct worker_config *cfg);

/*
 * Starts a worker on @loop: binds the control and media sockets, allocates the RTP port pool.
 * @r may be NULL (no state in Redis: legs cannot be adopted elsewhere). Returns NULL on failure
 * (logged).
 */
struct worker *worker_new(struct evloop *loop, const struct worker_config *cfg, struct redis *r);

/* Destroys every leg (their Redis state is deleted) and frees the worker; NULL-safe. */
void worker_destroy(struct worker **wp);

/* Stops taking new legs; @done is called once no leg is left. */
void worker_drain(struct worker *w, void (*done)(struct worker *w, void *arg), void *arg);

/* Ends a drain: new legs are taken again (the drain's done callback is not called). */
void worker_undrain(struct worker *w);

/*
 * Hands every leg over (a drain's deadline): each leg's state is written to Redis, then its owner
 * gets EVENT LEG_HANDOVER and adopts it on another worker, and the leg is dropped here without
 * deleting its state. A drain's done callback follows once the last leg is gone.
 */
void worker_handover(struct worker *w);

/* The endpoints signalers connect to. */
const char *worker_ctl_endpoint(const struct worker *w);
const char *worker_media_endpoint(const struct worker *w);

/* Legs carried now, and how many of them transcode. */
unsigned worker_leg_count(const struct worker *w);
unsigned worker_transcoding_count(const struct worker *w);

/* --- read-only views for metrics ---------------------------------------------------------- */

/* The worker now. */
struct worker_stats {
	unsigned legs, transcoding;
	unsigned capacity; /* WORKER_CAPACITY, 0: unlimited */
	uint16_t cpu_permille;
	bool draining;
	unsigned adopts_pending;		     /* ADOPT_LEGs waiting for Redis */
	uint64_t media_unknown_leg, media_wrong_owner; /* RTMP frames dropped, since start */
	uint64_t media_stale; /* RTMP frames dropped as too late (MEDIA_MAX_DELAY_MS), since start */
	uint64_t refused[WORKER_REFUSED_N]; /* leg requests refused, by reason, since start */
};
void worker_get_stats(const struct worker *w, struct worker_stats *out);

/* One leg's counters (since the leg was created here). */
struct worker_leg_stats {
	const char *id; /* valid during the call */
	bool transcoding;
	uint64_t packets_in, packets_out, packets_lost; /* RTP */
	uint32_t jitter_ms;
	uint64_t srtp_auth_failures;
	uint64_t frames_late;	   /* RTP packets that came too late for the jitter buffer */
	uint64_t frames_concealed; /* frames that never came (loss concealed) */
	uint64_t send_errors;	   /* RTP sends that failed */
	uint64_t unexpected_source; /* RTP/RTCP dropped for its source (strict latching) */
	uint64_t latch_changes;	    /* latch moved, or learned from a non-signalled source */
	uint64_t media_in, media_out, media_errors; /* frames from / to the signaler, unusable */
};

/* Calls @fn once per leg. O(legs). */
typedef void (*worker_leg_visit_fn)(const struct worker_leg_stats *ls, void *arg);
void worker_foreach_leg(const struct worker *w, worker_leg_visit_fn fn, void *arg);

/* The control server's counters (ZeroMQ requests, replies, media, drops). */
struct ctl_server_stats;
void worker_get_ctl_stats(const struct worker *w, struct ctl_server_stats *out);

#endif
