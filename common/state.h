/*
 * state.h - the Redis key layout and the versioned records kept in it (legs, workers, calls,
 * registrations).
 *
 * Keys (format version 1; docs/architecture.md "Redis keys" is the reference):
 *
 *   rs:v1:leg:<leg id>             HASH, one media leg, written whole (MULTI: DEL, HSET all
 *                                  fields, EXPIRE leg TTL), field v = 1
 *   rs:v1:worker:<worker id>       HASH, one mediaworker's heartbeat, EXPIRE 5 s
 *   rs:v1:worker:<worker id>:legs  SET of the leg ids that worker owns (the failover index),
 *                                  EXPIRE 60 s, refreshed by every heartbeat and leg write
 *   rs:v1:workers                  ZSET worker id -> last seen (ms since the epoch)
 *   rs:v1:call:<call id>           HASH, one call of a signaler, written whole, EXPIRE call TTL
 *   rs:v1:signaler:<id>:calls      SET of that signaler's call ids (the orphan index)
 *   rs:v1:reg:<aor>                HASH, one SIP registration of an RTMP client, written whole
 *   rs:v1:signaler:<id>:regs       SET of that signaler's AORs
 *   rs:v1:signaler:<id>            HASH, one signaler's heartbeat, EXPIRE 5 s
 *   rs:v1:signaler:<id>:handover   SET of leg ids that signaler gives to others (read by
 *                                  state_leg_takeover; written by the owner, SADD + EXPIRE)
 *   rs:v1:signalers                ZSET signaler id -> last seen (ms since the epoch); an entry
 *                                  leaves only when the orphan finder has emptied its indexes
 *   rs:v1:lock:<name>              STRING, a short lock (SET NX PX), e.g. orphans:<id>
 *
 * Never KEYS or SCAN over the key space: everything is reached through these names and the
 * per-owner indexes. Every key expires unless its owner keeps refreshing it; a record write
 * extends its index's expiry to at least the record's own (never shortens it), and a delete
 * removes the record only while it still names the deleting owner.
 *
 * Writes never block: every function queues commands on the async client and returns at once.
 * Return value: 0 when queued (the callback, if any, is then called exactly once), -ENOTCONN
 * while Redis is down, -EAGAIN when too many requests are in flight, -EINVAL for a record that
 * does not validate (the callback is not called on a negative return).
 *
 * When Redis is down or a write fails, nothing is retried here: the owner (the mediaworker for
 * legs, the signaler for calls and registrations) keeps its records in memory, marks them dirty,
 * and from the client's "up" listener rewrites its heartbeat and every record it owns (a Redis
 * restarted without persistence has lost all of them; a write is idempotent, so rewriting clean
 * records too is harmless). See state_* below.
 */
#ifndef RS_STATE_H
#define RS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct redis;

#define STATE_FORMAT_VERSION 1
#define STATE_KEY_PREFIX     "rs:v1:"

#define STATE_ID_MAX	     64	 /* leg, worker, signaler, call ids: [A-Za-z0-9_.@-]{1,64} */
#define STATE_CALL_ID_MAX    255 /* SIP Call-ID: printable ASCII */
#define STATE_CODEC_MAX	     31	 /* codec names */
#define STATE_FMTP_MAX	     128 /* a=fmtp parameters */
#define STATE_IP_MAX	     45	 /* textual IPv4 / IPv6 */
#define STATE_SRTP_SUITE_MAX 47	 /* e.g. AES_CM_128_HMAC_SHA1_80 */
#define STATE_SRTP_KEY_MAX   95	 /* base64 master key || salt */
#define STATE_HOST_MAX	     255
#define STATE_ENDPOINT_MAX   255  /* ZeroMQ endpoints */
#define STATE_CURVE_KEY_MAX  40	  /* a CURVE public key in Z85 */
#define STATE_AOR_MAX	     255  /* "user@domain", see state_aor_valid() */
#define STATE_URI_MAX	     255  /* SIP URIs: printable ASCII without spaces */
#define STATE_CLIENT_MAX     63	  /* RTMP connection id, e.g. "c12 127.0.0.1:5555" */
#define STATE_DISPLAY_MAX    127  /* SIP display name */
#define STATE_WORD_MAX	     15	  /* one word of a fixed set: app, direction, call state */
#define STATE_TAG_MAX	     127  /* SIP From / To tag */
#define STATE_ROUTE_MAX	     1000 /* a route set: "<uri>,<uri>..." */
#define STATE_DEST_MAX	     63	  /* "host:port" ("[v6]:port") */
#define STATE_LOCK_NAME_MAX  127  /* rs:v1:lock:<name>: id characters and ':' */

#define STATE_LEG_TTL_DEFAULT_S	  7200	/* LEG_TTL */
#define STATE_WORKER_TTL_S	  5	/* worker hash */
#define STATE_WORKER_INDEX_TTL_S  60	/* rs:v1:worker:<id>:legs and rs:v1:workers */
#define STATE_WORKER_LIVENESS_MS  5000	/* a worker unseen this long is dead */
#define STATE_MAX_WORKERS	  1024	/* entries read from rs:v1:workers */
#define STATE_MAX_LEGS_PER_WORKER 65536 /* members read from a legs index */

#define STATE_CALL_TTL_DEFAULT_S     7200   /* CALL_TTL */
#define STATE_REG_TTL_MARGIN_S	     60	    /* a registration record outlives its expiry by this */
#define STATE_TTL_MAX_S		     604800 /* longest LEG_TTL / CALL_TTL / derived TTL (7 d) */
#define STATE_MAX_CALLS_PER_SIGNALER 65536  /* members read from a calls index */
#define STATE_MAX_REGS_PER_SIGNALER  65536  /* members read from a regs index */
#define STATE_SIGNALER_TTL_S	     5	    /* signaler hash */
#define STATE_SIGNALER_LIVENESS_MS   5000   /* a signaler unseen this long is dead */
#define STATE_MAX_SIGNALERS	     1024   /* entries read from rs:v1:signalers */

/* One media leg. Strings are NUL-terminated; "" means "not set" where allowed. */
struct leg_record {
	char leg_id[STATE_ID_MAX + 1];	      /* the key; not a hash field */
	char call_id[STATE_CALL_ID_MAX + 1];  /* call: non-empty */
	char owner[STATE_ID_MAX + 1];	      /* owner: the signaler that controls the leg */
	char worker[STATE_ID_MAX + 1];	      /* worker: the mediaworker that carries it */
	char rtmp_codec[STATE_CODEC_MAX + 1]; /* rtmp_codec: e.g. "speex", "AAC", non-empty */
	char rtmp_out[STATE_CODEC_MAX + 1];   /* rtmp_out: the players' codec, "" = rtmp_codec's */
	uint32_t rtmp_rate;		      /* rtmp_rate: the publisher's rate as said, 0 unknown */
	uint8_t rtmp_channels;		      /* rtmp_ch: its channels as said (0..2), 0 unknown */
	uint8_t sip_pt;			      /* sip_pt: 0..127 */
	char sip_codec[STATE_CODEC_MAX + 1];  /* sip_codec: e.g. "PCMU", non-empty */
	char sip_fmtp[STATE_FMTP_MAX + 1];    /* sip_fmtp: the peer's a=fmtp of it, "" = none */
	uint32_t sip_rate;		      /* sip_rate: 1000..192000 Hz */
	int16_t dtmf_pt;		      /* dtmf_pt: 0..127, -1 for none */
	char remote_ip[STATE_IP_MAX + 1];     /* remote_ip: IPv4/IPv6 or "" before the answer */
	uint16_t remote_port;		      /* remote_port: 0..65535 (0 unknown) */
	uint16_t local_port;		      /* local_port */
	uint32_t ssrc;			      /* ssrc: our RTP SSRC */
	uint16_t seq;			      /* seq: next RTP sequence number */
	uint32_t timestamp;		      /* ts: next RTP timestamp */
	char srtp_suite[STATE_SRTP_SUITE_MAX + 1];    /* srtp_suite: "" = plain RTP */
	char srtp_local_key[STATE_SRTP_KEY_MAX + 1];  /* srtp_lkey: base64 */
	char srtp_remote_key[STATE_SRTP_KEY_MAX + 1]; /* srtp_rkey: base64 */
	uint32_t srtp_roc;			      /* srtp_roc: rollover counter */
	bool hold;				      /* hold: 0/1 */
	uint64_t created_ms;			      /* created: ms since the epoch */
	uint64_t updated_ms; /* updated: ms since the epoch (0: set on write) */
};

/* One mediaworker's heartbeat. */
struct worker_record {
	char worker_id[STATE_ID_MAX + 1];	     /* the key */
	char instance_id[STATE_ID_MAX + 1];	     /* instance: changes on every restart */
	uint32_t pid;				     /* pid: 1..2^31-1 */
	char host[STATE_HOST_MAX + 1];		     /* host: non-empty */
	char ctl_endpoint[STATE_ENDPOINT_MAX + 1];   /* ctl: ZeroMQ control endpoint */
	char media_endpoint[STATE_ENDPOINT_MAX + 1]; /* media: ZeroMQ media endpoint */
	uint32_t legs;				     /* legs: legs carried now */
	uint32_t cpu;				     /* cpu: load, per mille of one core */
	bool draining;				     /* draining: takes no new legs */
	uint64_t started_ms;			     /* started */
	uint64_t last_seen_ms;			     /* seen: also the ZSET score (0: now) */
	/* Optional (added within v1: a record without it reads it as ""). */
	char curve_key[STATE_CURVE_KEY_MAX + 1]; /* curve: its CURVE public key (Z85), "" without
						  * CURVE; signalers check it is one they allow */
};

/*
 * One call of a signaler (app "sip" or "call"), kept so that another signaler can find the
 * calls of a dead one (rs:v1:signaler:<id>:calls) and end them. Strings as in leg_record.
 */
struct call_record {
	char call_id[STATE_ID_MAX + 1];		 /* the key: a gateway id, state_id_valid() */
	char sip_call_id[STATE_CALL_ID_MAX + 1]; /* sip_call_id: SIP Call-ID, non-empty */
	char signaler[STATE_ID_MAX + 1];	 /* signaler: the owner, non-empty */
	char app[STATE_WORD_MAX + 1];		 /* app: "sip" or "call" */
	char direction[STATE_WORD_MAX + 1];	 /* direction: "out" or "in" */
	char from_uri[STATE_URI_MAX + 1];	 /* from: non-empty */
	char to_uri[STATE_URI_MAX + 1];		 /* to: non-empty */
	char rtmp_client[STATE_CLIENT_MAX + 1];	 /* rtmp_client: connection id text, may be "" */
	char leg_id[STATE_ID_MAX + 1];		 /* leg: "" before the leg exists */
	char worker[STATE_ID_MAX + 1];		 /* worker: the leg's mediaworker, may be "" */
	char state[STATE_WORD_MAX + 1];	 /* state: "setup", "ringing", "up", "held", "ending" */
	char codec[STATE_CODEC_MAX + 1]; /* codec: SIP codec name, may be "" */
	bool transcoding;		 /* transcoding: 0/1 */
	bool srtp;			 /* srtp: 0/1 */
	uint64_t created_ms;		 /* created: ms since the epoch */
	uint64_t answered_ms;		 /* answered: ms since the epoch, 0 = not answered */
	uint64_t updated_ms;		 /* updated: ms since the epoch (0: set on write) */
	/* Optional fields (added within v1: a record without them reads with them empty). */
	char instance[STATE_ID_MAX + 1]; /* instance: the owner's run that wrote it, or "" */
	/* The SIP dialog, so that any signaler can send the BYE (all "" / 0 until known). */
	char local_tag[STATE_TAG_MAX + 1];     /* ltag: our tag (From if we called, else To) */
	char remote_tag[STATE_TAG_MAX + 1];    /* rtag: the peer's tag */
	char local_uri[STATE_URI_MAX + 1];     /* luri: our URI in the dialog */
	char remote_uri[STATE_URI_MAX + 1];    /* ruri: the peer's URI in the dialog */
	char remote_target[STATE_URI_MAX + 1]; /* target: the peer's Contact URI */
	char route[STATE_ROUTE_MAX + 1];       /* route: the route set, "<uri>,<uri>", in order */
	uint32_t local_cseq;		       /* cseq: our last CSeq number in the dialog */
	char transport[STATE_WORD_MAX + 1];    /* transport: "udp", "tcp", "tls" or "" */
	char dest[STATE_DEST_MAX + 1];	       /* dest: where the peer's requests came from */
};

/* One SIP registration the signaler holds for an RTMP client. */
struct reg_record {
	char aor[STATE_AOR_MAX + 1];		/* the key: "user@domain", state_aor_valid() */
	char signaler[STATE_ID_MAX + 1];	/* signaler: the owner, non-empty */
	char contact[STATE_URI_MAX + 1];	/* contact: the Contact URI we registered, or "" */
	char registrar[STATE_URI_MAX + 1];	/* registrar: or "" */
	char rtmp_client[STATE_CLIENT_MAX + 1]; /* rtmp_client: connection id text, or "" */
	char display[STATE_DISPLAY_MAX + 1];	/* display: no control characters, or "" */
	uint32_t expires_s;			/* expires: expiry granted by the registrar, s */
	uint64_t registered_ms;			/* registered: ms since the epoch */
	uint64_t updated_ms;			/* updated: ms since the epoch (0: set on write) */
	char instance[STATE_ID_MAX + 1];	/* instance: optional, the owner's run, or "" */
};

/* One signaler's heartbeat. */
struct signaler_record {
	char signaler_id[STATE_ID_MAX + 1]; /* the key */
	char instance_id[STATE_ID_MAX + 1]; /* instance: changes on every start */
	uint32_t pid;			    /* pid: 1..2^31-1 */
	char host[STATE_HOST_MAX + 1];	    /* host: non-empty */
	char sip[STATE_ENDPOINT_MAX + 1];   /* sip: SIP contact host:port, "" without SIP */
	char rtmp[STATE_ENDPOINT_MAX + 1];  /* rtmp: RTMP listen address host:port */
	uint64_t started_ms;		    /* started */
	uint64_t last_seen_ms;		    /* seen: also the ZSET score (0: now) */
};

/* Settings read from the environment. */
struct state_config {
	unsigned leg_ttl_s;  /* LEG_TTL, seconds: 60..604800, default 7200 */
	unsigned call_ttl_s; /* CALL_TTL, seconds: 60..604800, default 7200 */
};

/* Fills @cfg from LEG_TTL and CALL_TTL; 0 or -EINVAL (logged). */
int state_config_from_env(struct state_config *cfg);

/* Milliseconds since the epoch (CLOCK_REALTIME): the clock of every *_ms field. */
uint64_t state_now_ms(void);

/* True when @id is a valid leg / worker / signaler / call id ([A-Za-z0-9_.@-], 1..STATE_ID_MAX). */
bool state_id_valid(const char *id);

/*
 * True when @aor can name a registration: 1..STATE_AOR_MAX bytes of printable ASCII without
 * space, '%' or '/', with exactly one '@' that has something on both sides.
 */
bool state_aor_valid(const char *aor);

/*
 * Completion callbacks. @err is 0 on success, otherwise a negative errno with @errmsg saying
 * what happened in words (never NULL when err != 0). Records and arrays passed to a callback
 * belong to the state layer and are valid only during the call.
 *   -ENOENT            no such leg (call, registration)
 *   -EPROTONOSUPPORT   record of another format version ("leg record format v2 unsupported")
 *   -EBADMSG           malformed record (errmsg names the field)
 *   -EREMOTEIO         Redis answered with an error
 *   -ENOTCONN, -ETIMEDOUT, -ECANCELED   from the client (see redis.h)
 */
typedef void (*state_done_cb)(int err, const char *errmsg, void *arg);
typedef void (*state_leg_cb)(int err, const char *errmsg, const struct leg_record *rec, void *arg);
typedef void (*state_call_cb)(int err, const char *errmsg, const struct call_record *rec,
			      void *arg);
typedef void (*state_reg_cb)(int err, const char *errmsg, const struct reg_record *rec, void *arg);
typedef void (*state_workers_cb)(int err, const char *errmsg, const struct worker_record *workers,
				 size_t n, void *arg);
typedef void (*state_ids_cb)(int err, const char *errmsg, const char *const *ids, size_t n,
			     void *arg);
typedef void (*state_signaler_cb)(int err, const char *errmsg, const struct signaler_record *rec,
				  void *arg);
/* An operation with a yes/no outcome (a lock taken, a record deleted...): @yes is valid when
 * @err is 0. */
typedef void (*state_flag_cb)(int err, const char *errmsg, bool yes, void *arg);
/* A signaler heartbeat written: what the hash held before (@prev_instance "" and @prev_seen_ms 0
 * when it did not exist), so that a signaler can tell its own previous run, or another process
 * using its id. */
typedef void (*state_signaler_written_cb)(int err, const char *errmsg, const char *prev_instance,
					  uint64_t prev_seen_ms, void *arg);

/*
 * Writes @rec whole in one transaction: DEL + HSET of every field + EXPIRE @ttl_s (0: the
 * default) on rs:v1:leg:<leg_id>, SADD of the id to rs:v1:worker:<worker>:legs + EXPIRE of that
 * index. @rec is copied; updated_ms 0 is replaced by now. @cb may be NULL.
 */
int state_leg_write(struct redis *r, const struct leg_record *rec, unsigned ttl_s, state_done_cb cb,
		    void *arg);

/* Reads and validates every field of rs:v1:leg:<leg_id>; @cb gets the record or an error. */
int state_leg_read(struct redis *r, const char *leg_id, state_leg_cb cb, void *arg);

/* Removes the leg from @worker_id's index and deletes its record if the record still names
 * @worker_id (a leg adopted elsewhere keeps its state), atomically. @cb may be NULL. */
int state_leg_delete(struct redis *r, const char *leg_id, const char *worker_id, state_done_cb cb,
		     void *arg);

/*
 * Heartbeat, once a second: writes rs:v1:worker:<id> whole with EXPIRE @ttl_s (0: 5 s), sets
 * the worker's score in rs:v1:workers to last_seen_ms (0: now), removes entries older than
 * STATE_WORKER_INDEX_TTL_S from that ZSET, and refreshes the EXPIRE of the ZSET and of the
 * worker's legs index (STATE_WORKER_INDEX_TTL_S) - all in one transaction. @cb may be NULL.
 */
int state_worker_write(struct redis *r, const struct worker_record *rec, unsigned ttl_s,
		       state_done_cb cb, void *arg);

/*
 * Lists the live workers: ids whose score is at least @now_ms - @window_ms (0: now and
 * STATE_WORKER_LIVENESS_MS), then HGETALL of each, pipelined. Workers whose hash expired are
 * left out; malformed ones are logged and left out. At most STATE_MAX_WORKERS.
 */
int state_workers_list(struct redis *r, uint64_t now_ms, uint64_t window_ms, state_workers_cb cb,
		       void *arg);

/* Ids in rs:v1:workers last seen before @now_ms - @window_ms: dead workers awaiting failover. */
int state_workers_stale(struct redis *r, uint64_t now_ms, uint64_t window_ms, state_ids_cb cb,
			void *arg);

/* The leg ids in rs:v1:worker:<worker_id>:legs (SMEMBERS; at most STATE_MAX_LEGS_PER_WORKER). */
int state_worker_legs(struct redis *r, const char *worker_id, state_ids_cb cb, void *arg);

/*
 * Writes @rec whole in one transaction: DEL + HSET of every field + EXPIRE @ttl_s (0:
 * STATE_CALL_TTL_DEFAULT_S; the signaler passes CALL_TTL) on rs:v1:call:<call_id>, SADD of the
 * id to rs:v1:signaler:<signaler>:calls and an expiry of that index of at least @ttl_s.
 * @rec is copied; updated_ms 0 is replaced by now. @cb may be NULL.
 */
int state_call_write(struct redis *r, const struct call_record *rec, unsigned ttl_s,
		     state_done_cb cb, void *arg);

/* Reads and validates every field of rs:v1:call:<call_id>; @cb gets the record or an error. */
int state_call_read(struct redis *r, const char *call_id, state_call_cb cb, void *arg);

/* Removes the call from @signaler_id's index and deletes its record if the record still names
 * @signaler_id (a call taken over by another signaler keeps its state), atomically. */
int state_call_delete(struct redis *r, const char *call_id, const char *signaler_id,
		      state_done_cb cb, void *arg);

/* The call ids in rs:v1:signaler:<signaler_id>:calls (at most STATE_MAX_CALLS_PER_SIGNALER). */
int state_signaler_calls(struct redis *r, const char *signaler_id, state_ids_cb cb, void *arg);

/*
 * Writes @rec whole like state_call_write(), on rs:v1:reg:<aor> and
 * rs:v1:signaler:<signaler>:regs. @ttl_s 0: expires_s + STATE_REG_TTL_MARGIN_S (at most
 * STATE_TTL_MAX_S), so the record lives as long as the registration it describes.
 */
int state_reg_write(struct redis *r, const struct reg_record *rec, unsigned ttl_s, state_done_cb cb,
		    void *arg);

/* Reads and validates every field of rs:v1:reg:<aor>; @cb gets the record or an error. */
int state_reg_read(struct redis *r, const char *aor, state_reg_cb cb, void *arg);

/* Removes @aor from @signaler_id's index and deletes its record if the record still names
 * @signaler_id, atomically. @cb may be NULL. */
int state_reg_delete(struct redis *r, const char *aor, const char *signaler_id, state_done_cb cb,
		     void *arg);

/* The AORs in rs:v1:signaler:<signaler_id>:regs (at most STATE_MAX_REGS_PER_SIGNALER). */
int state_signaler_regs(struct redis *r, const char *signaler_id, state_ids_cb cb, void *arg);

/*
 * Signaler heartbeat, once a second: reads the instance and seen fields the hash held, then
 * writes rs:v1:signaler:<id> whole with EXPIRE @ttl_s (0: STATE_SIGNALER_TTL_S), sets the
 * signaler's score in rs:v1:signalers to last_seen_ms (0: now) and refreshes that ZSET's expiry
 * (STATE_TTL_MAX_S) - one transaction. Entries are never pruned by age here: a dead signaler
 * stays listed until state_signaler_forget() finds its indexes empty. @cb may be NULL.
 */
int state_signaler_write(struct redis *r, const struct signaler_record *rec, unsigned ttl_s,
			 state_signaler_written_cb cb, void *arg);

/* Reads and validates rs:v1:signaler:<id>; @cb gets the record, or -ENOENT once it expired. */
int state_signaler_read(struct redis *r, const char *signaler_id, state_signaler_cb cb, void *arg);

/* Ids in rs:v1:signalers last seen before @now_ms - @window_ms (0: now and
 * STATE_SIGNALER_LIVENESS_MS): dead signalers whose calls may be orphans. At most
 * STATE_MAX_SIGNALERS, oldest first. */
int state_signalers_stale(struct redis *r, uint64_t now_ms, uint64_t window_ms, state_ids_cb cb,
			  void *arg);

/*
 * Removes @signaler_id from rs:v1:signalers, and its hash, if both its calls and regs indexes
 * are empty and its score is still older than @cutoff_ms (it did not come back) - atomically.
 * @cb (may be NULL) gets yes when it was removed.
 */
int state_signaler_forget(struct redis *r, const char *signaler_id, uint64_t cutoff_ms,
			  state_flag_cb cb, void *arg);

/*
 * Orphan cleanup of a call / registration of @signaler_id: unless the record's instance is
 * @keep_instance (non-empty: a live run of that signaler, whose records stay), deletes the
 * record if it still names @signaler_id and removes the id from that signaler's index -
 * atomically. @cb (may be NULL) gets yes when it was removed, no when it was kept.
 */
int state_call_delete_orphan(struct redis *r, const char *call_id, const char *signaler_id,
			     const char *keep_instance, state_flag_cb cb, void *arg);
int state_reg_delete_orphan(struct redis *r, const char *aor, const char *signaler_id,
			    const char *keep_instance, state_flag_cb cb, void *arg);

/*
 * A short lock: SET rs:v1:lock:<name> @holder NX PX @ttl_ms. @name: 1..STATE_LOCK_NAME_MAX of
 * id characters and ':'; @holder: an id. @cb gets yes when this call took it.
 */
int state_lock_take(struct redis *r, const char *name, const char *holder, unsigned ttl_ms,
		    state_flag_cb cb, void *arg);

/* Deletes rs:v1:lock:<name> if @holder still holds it. @cb may be NULL (yes: released). */
int state_lock_release(struct redis *r, const char *name, const char *holder, state_flag_cb cb,
		       void *arg);

/*
 * May a signaler other than @owner_id take leg @leg_id (ADOPT_LEG, DESTROY_LEG of a foreign leg)?
 * @cb gets yes when @owner_id is dead - its heartbeat hash rs:v1:signaler:<owner_id> is gone, or
 * its seen field is STATE_SIGNALER_LIVENESS_MS or more before @now_ms (0: now) - or when
 * @leg_id is in @owner_id's handover set rs:v1:signaler:<owner_id>:handover; no otherwise. One
 * script, atomic. @cb must not be NULL.
 */
int state_leg_takeover(struct redis *r, const char *owner_id, const char *leg_id, uint64_t now_ms,
		       state_flag_cb cb, void *arg);

/*
 * Completes at once, with -ECANCELED, every state operation in flight whose callback argument
 * is @arg (call it before freeing what @arg points at).
 */
void state_cancel(struct redis *r, const void *arg);

#endif
