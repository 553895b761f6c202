/*
 * ctl_server.h - the mediaworker's end of the signaler <-> worker protocol (docs/protocol.md).
 *
 * Binds the two ROUTER sockets (control and media), learns signalers from their HELLOs (by
 * signaler id, with the routing id of each socket), sends them HEARTBEATs on a timer with the
 * load the application reports, dispatches requests to a table of handlers by message type,
 * answers with OK / ERROR carrying the request id, and sends EVENTs and MEDIA to a signaler by
 * id. Malformed input is dropped (or answered with ERROR when it is a readable request) and
 * logged at a bounded rate; nothing from the network can crash it.
 *
 * Authentication (docs/protocol.md §1.1): with a curve, both ROUTERs are CURVE servers (the
 * process's ZAP handler, zap.h, admits the allowed signaler keys) and every message carries its
 * sender's public key. A signaler id is bound to the key that said HELLO with it first: a HELLO
 * (on either socket) claiming that id with another key is refused with ERROR EPERM until the
 * bound signaler is forgotten (peer_timeout_ms unreachable), and a message arriving on a
 * signaler's routing id from another key is not taken as that signaler's. Handshakes refused by
 * libzmq (a key not allowed, no CURVE, a wrong server key) are counted from socket monitors.
 *
 * Retries: a request whose (routing id, request id, key) was answered in the last
 * reply_cache_ttl_ms gets the cached reply again without calling the handler; one still being
 * handled is ignored (its reply will come). So handlers run once per request id, and a handler
 * that defers its reply (waiting for Redis, say) must eventually reply or the request id stays
 * blocked for the TTL.
 */
#ifndef RS_CTL_SERVER_H
#define RS_CTL_SERVER_H

#include "curve.h"
#include "evloop.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

#define CTL_MAX_PEERS 64

struct ctl_server;

/* Who asked what: a value, copy it to answer later (it stays valid after the server moved on). */
struct ctl_request {
	uint8_t rid[255]; /* control routing id of the requester */
	uint8_t rid_len;
	uint32_t req_id;
	uint8_t type;
	char signaler_id[WIRE_MAX_ID + 1]; /* "" when the requester has not sent HELLO (or is not
					    * the signaler bound to this routing id) */
	char key[CURVE_KEY_LEN + 1];       /* the requester's CURVE key, "" without CURVE */
};

/* Why the server refused a connection or a message (ctl_server_stats.refused). */
enum ctl_refusal {
	CTL_REFUSED_KEY,	  /* handshake: the client's key is not allowed (ZAP 400) */
	CTL_REFUSED_NO_CURVE,	  /* handshake: the client does not speak CURVE */
	CTL_REFUSED_CRYPTO,	  /* handshake: CURVE boxes that do not open (a wrong server key) */
	CTL_REFUSED_HANDSHAKE,	  /* handshake: another failure */
	CTL_REFUSED_ID_BOUND,	  /* HELLO: the signaler id is bound to another key, still live */
	CTL_REFUSED_KEY_MISMATCH, /* a message on a signaler's routing id from another key */
	CTL_REFUSED_N
};

/* "key", "no_curve", "crypto", "handshake", "id_bound", "key_mismatch": metric labels. */
const char *ctl_refusal_name(enum ctl_refusal r);

/*
 * Handles one request @m of its type. It answers now or later with ctl_server_reply() /
 * ctl_server_reply_error() using a copy of @req. @m and its strings are valid during the call.
 */
typedef void (*ctl_handler_fn)(struct ctl_server *s, const struct ctl_request *req,
			       const struct wire_msg *m, void *arg);

/* One entry of the handler table, e.g. { WIRE_CREATE_LEG, on_create_leg }. */
struct ctl_handler {
	uint8_t type;
	ctl_handler_fn fn;
};

/* What a HEARTBEAT reports. */
struct ctl_load {
	uint32_t legs;
	uint16_t cpu_permille;
	bool draining;
};

struct ctl_server_config {
	const char *ctl_bind;        /* e.g. "tcp://127.0.0.1:*" */
	const char *media_bind;
	const char *worker_id;       /* [A-Za-z0-9._-]{1,64} */
	uint64_t instance_id;        /* 0: random */
	const char *host;            /* HELLO_OK HOST; NULL: gethostname() */
	const char *sw_version;      /* HELLO_OK SW_VERSION; NULL: "rtmp2sip" */
	uint32_t capacity;           /* legs, 0: unlimited */
	uint32_t heartbeat_ms;       /* 0: 300 */
	uint32_t peer_timeout_ms;    /* forget a signaler unreachable this long; 0: 10000 */
	unsigned reply_cache_size;   /* 0: 256 */
	uint32_t reply_cache_ttl_ms; /* 0: 30000 */
	int ctl_hwm, media_hwm;      /* 0: 1000 / 10000 */
	/* The worker's CURVE keys (kept, must outlive the server); NULL or not enabled: plain
	 * ZeroMQ. With CURVE the process's ZAP handler (zap_new) must be bound already. */
	const struct curve *curve;
};

struct ctl_server_callbacks {
	const struct ctl_handler *handlers; /* request types without an entry get ERROR ENOTSUP */
	size_t n_handlers;
	/* Fills the load for the next heartbeat (NULL: zeros). Must not send. */
	void (*load)(struct ctl_server *s, struct ctl_load *out, void *arg);
	/* MEDIA from a signaler (@signaler_id NULL when its media socket sent no HELLO). */
	void (*media)(struct ctl_server *s, const char *signaler_id, const struct wire_media *md,
		      void *arg);
	/* A signaler said HELLO for the first time (up) or was forgotten (down). May be NULL. */
	void (*peer)(struct ctl_server *s, const char *signaler_id, bool up, void *arg);
	void *arg;
};

struct ctl_server_stats {
	uint64_t requests;        /* requests passed to handlers */
	uint64_t replies;         /* OK / HELLO_OK / ERROR sent */
	uint64_t replays;         /* cached replies resent for retried request ids */
	uint64_t dup_pending;     /* retries ignored while the first attempt was being handled */
	uint64_t malformed;       /* input dropped or answered with ERROR for its format */
	uint64_t heartbeats;      /* heartbeats sent */
	uint64_t send_drops;      /* sends that failed (EAGAIN, EHOSTUNREACH, ...) */
	uint64_t media_in, media_out;
	uint64_t refused[CTL_REFUSED_N]; /* connections and messages refused, by reason */
	unsigned peers;
};

/*
 * Binds both sockets and starts heartbeating. @cfg and @cbs are copied (the handler table
 * itself must outlive the server). Returns NULL with errno set (bind failure, bad worker id).
 */
struct ctl_server *ctl_server_new(struct evloop *loop, const struct ctl_server_config *cfg,
				  const struct ctl_server_callbacks *cbs);

/* Closes the sockets and frees everything; NULL-safe, clears *sp. Not from a handler. */
void ctl_server_destroy(struct ctl_server **sp);

/* Resolved endpoints (the port chosen for "tcp://...:*"): what to announce to signalers. */
const char *ctl_server_ctl_endpoint(const struct ctl_server *s);
const char *ctl_server_media_endpoint(const struct ctl_server *s);

/* The instance id sent in HELLO_OK and HEARTBEATs. */
uint64_t ctl_server_instance_id(const struct ctl_server *s);

/*
 * Answers @req with @reply, built by the caller with wire_builder_init(reply, WIRE_OK, 0) and puts;
 * the server sets the request id, finishes it, checks it carries what a reply to this request
 * type needs (a handler bug becomes ERROR EIO), caches and sends it. The builder stays the
 * caller's. Returns 0 or a negative errno (the send failed; the reply is still cached).
 */
int ctl_server_reply(struct ctl_server *s, const struct ctl_request *req,
		     struct wire_builder *reply);

/* Answers @req with ERROR: @code (positive errno), @tag (0: none), printf-style text. */
int ctl_server_reply_error(struct ctl_server *s, const struct ctl_request *req, int code,
			   uint16_t tag, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Sends EVENT @ev (built with type WIRE_EVENT, request id 0) to signaler @signaler_id.
 * 0, -ENOTCONN (unknown signaler), -EINVAL (bad message), or the send error. */
int ctl_server_send_event(struct ctl_server *s, const char *signaler_id, struct wire_builder *ev);

/* Queues one frame for @signaler_id's media socket. Frames queued during one loop iteration
 * leave together as one MEDIA_BATCH at its end (or earlier when 32 KiB fill up), one ZeroMQ
 * message per signaler. 0, -ENOTCONN (unknown or no media HELLO yet), -EINVAL / -E2BIG
 * (encoding), -ENOMEM. */
int ctl_server_send_media(struct ctl_server *s, const char *signaler_id, const char *leg_id,
			  uint32_t ts, uint8_t flags, const void *payload, size_t len);

/* Sends every queued frame now. */
void ctl_server_flush_media(struct ctl_server *s);

/* True when @signaler_id has said HELLO and is not forgotten. */
bool ctl_server_has_peer(const struct ctl_server *s, const char *signaler_id);

/* Counters. */
void ctl_server_get_stats(const struct ctl_server *s, struct ctl_server_stats *st);

#endif
