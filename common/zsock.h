/*
 * zsock.h - ZeroMQ sockets driven by the evloop.
 *
 * A zsock wraps one libzmq socket of the process-wide context. Its ZMQ_FD is watched for
 * EV_READ; because that descriptor is edge-like (it only signals a transition, and zmq_send or
 * ZMQ_EVENTS may consume the signal), the socket is drained while ZMQ_EVENTS reports ZMQ_POLLIN,
 * on readiness and again at the end of every loop iteration in which it was sent on or stopped
 * draining early. Each received message is handed to the socket's callback as an array of frames;
 * messages with too many or too large frames are dropped (and counted, and logged at a bounded
 * rate) before the callback sees them. Sending never blocks: ZMQ_DONTWAIT, and a message that
 * cannot be queued (EAGAIN: high-water mark or no connected peer; EHOSTUNREACH: unknown routing
 * id) is dropped and counted.
 *
 * Socket options applied to every socket: ZMQ_LINGER 0, ZMQ_SNDHWM / ZMQ_RCVHWM as given,
 * ZMQ_MAXMSGSIZE = max_frame_size (a peer sending a larger frame is disconnected by libzmq),
 * TCP keepalive (idle 10 s, interval 5 s, 3 probes), reconnect 100 ms backing off to 1 s,
 * ZMTP heartbeats (1 s, timeout 3 s). ROUTER: ZMQ_ROUTER_MANDATORY and ZMQ_ROUTER_HANDOVER.
 * DEALER: ZMQ_IMMEDIATE and the given routing id.
 *
 * CURVE (docs/protocol.md §1.1): a socket given a secret key alone is a CURVE server (ZAP domain
 * "rtmp2sip": a ZAP handler, common/zap.h, must be bound in the context before it binds); given
 * its key pair and a server's public key it is a CURVE client of that server. A key libzmq
 * refuses fails zsock_new(): a socket never falls back to plain ZeroMQ. zsock_user_id() names the
 * authenticated peer of the message being delivered.
 */
#ifndef RS_ZSOCK_H
#define RS_ZSOCK_H

#include "evloop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZSOCK_MAX_FRAMES 8

struct zsock;

struct zsock_frame {
	const void *data;
	size_t len;
};

/*
 * Called once per accepted message with its @n frames (1 <= n <= max_frames). The frames are
 * valid only during the call. The callback may send on any socket and may destroy any zsock,
 * this one included.
 */
typedef void (*zsock_recv_cb)(struct zsock *zs, const struct zsock_frame *frames, size_t n,
			      void *arg);

struct zsock_opts {
	const char *name;          /* for log lines, copied; e.g. "w1/ctl" */
	size_t max_frames;         /* frames per message, 1..ZSOCK_MAX_FRAMES; 0: 4 */
	size_t max_frame_size;     /* bytes per frame; 0: 65536 */
	int sndhwm, rcvhwm;        /* messages; 0: 1000 */
	const void *routing_id;    /* DEALER only: 1..255 bytes, first byte not 0; NULL: zmq's */
	size_t routing_id_len;
	unsigned budget;           /* messages per drain before yielding to the loop; 0: 256 */
	/* CURVE keys, Z85 (40 characters); all NULL: plain ZeroMQ. Server: secret alone. Client:
	 * secret, public and the server's public key. */
	const char *curve_secret_key;
	const char *curve_public_key;
	const char *curve_server_key;
};

struct zsock_stats {
	uint64_t rx_msgs;        /* delivered to the callback */
	uint64_t rx_dropped;     /* too many / too large frames */
	uint64_t tx_msgs;        /* queued */
	uint64_t tx_again;       /* dropped: EAGAIN (high-water mark, no peer) */
	uint64_t tx_unreachable; /* dropped: EHOSTUNREACH (ROUTER, unknown routing id) */
	uint64_t tx_errors;      /* dropped: anything else */
};

/* The process-wide ZeroMQ context, created on first use (one I/O thread); NULL on failure. */
void *zsock_context(void);

/* Terminates the context once no zsock is open (end of process / test); no-op otherwise. */
void zsock_context_term(void);

/*
 * Creates a socket of ZeroMQ @type (ZMQ_ROUTER, ZMQ_DEALER, ...) with @opts (NULL: defaults)
 * and registers it with @loop; @cb receives its messages. Returns NULL with errno set.
 */
struct zsock *zsock_new(struct evloop *loop, int type, const struct zsock_opts *opts,
			zsock_recv_cb cb, void *arg);

/* Closes the socket (linger 0: queued output is discarded). NULL-safe, clears *zsp. Safe inside
 * the socket's own callback (the close is deferred until the callback returns). */
void zsock_destroy(struct zsock **zsp);

/* Binds to @endpoint ("tcp://127.0.0.1:*" picks a port). 0 or -errno. */
int zsock_bind(struct zsock *zs, const char *endpoint);

/* Connects to @endpoint (asynchronously, reconnecting forever). 0 or -errno. */
int zsock_connect(struct zsock *zs, const char *endpoint);

/* The last endpoint bound or connected, as resolved by libzmq (ZMQ_LAST_ENDPOINT): after a
 * bind to "tcp://127.0.0.1:*" this names the port. "" before any. */
const char *zsock_endpoint(const struct zsock *zs);

/*
 * Sends @n frames as one message without blocking. Returns 0 when queued, -EAGAIN when dropped
 * for the high-water mark or lack of a peer, -EHOSTUNREACH when a ROUTER does not know the
 * routing id in frames[0], another -errno otherwise. Never calls the receive callback.
 */
int zsock_send(struct zsock *zs, const struct zsock_frame *frames, size_t n);

/* Counters since creation. */
void zsock_get_stats(const struct zsock *zs, struct zsock_stats *st);

/* The socket's name as given in the options. */
const char *zsock_name(const struct zsock *zs);

/*
 * Rate limit for log lines caused by peers (malformed input): true at most 10 times per second
 * per socket; when lines were suppressed, the next allowed call logs how many.
 */
bool zsock_log_ok(struct zsock *zs);

/*
 * The User-Id of the message being delivered to @zs's receive callback: for a CURVE connection
 * the client's Z85 public key as the ZAP handler named it (zap.h). NULL outside the callback and
 * for connections without it (plain ZeroMQ).
 */
const char *zsock_user_id(const struct zsock *zs);

/* The underlying libzmq socket, for options this module does not cover. */
void *zsock_handle(struct zsock *zs);

/*
 * Called once per socket event of a monitored socket @zs: @event is one ZMQ_EVENT_* bit, @value
 * its value (a descriptor, an errno or an interval: see zmq_socket_monitor(3)), @endpoint the
 * endpoint concerned (NUL-terminated, cut to 255 bytes; valid during the call only). The
 * callback may send on any socket and may destroy any zsock, @zs included.
 */
typedef void (*zsock_event_cb)(struct zsock *zs, unsigned event, uint32_t value,
			       const char *endpoint, void *arg);

/*
 * Reports @zs's socket events in @events (ZMQ_EVENT_* bits) to @cb, from the loop: libzmq
 * publishes them on the inproc endpoint @inproc (unique in the process, e.g.
 * "inproc://dispatcher-mon-7"), where a PAIR socket read like any zsock (ZMQ_FD, drained while
 * ZMQ_EVENTS has ZMQ_POLLIN, at most its budget per turn) receives them. One monitor per socket;
 * it stops, and both its sockets close, when @zs is destroyed. Returns 0, -EBUSY (already
 * monitored), -EINVAL (@inproc not "inproc://...") or another -errno from libzmq.
 */
int zsock_monitor(struct zsock *zs, const char *inproc, int events, zsock_event_cb cb, void *arg);

#endif
