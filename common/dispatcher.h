/*
 * dispatcher.h - the signaler's end of the signaler <-> worker protocol (docs/protocol.md).
 *
 * For each mediaworker the dispatcher holds two DEALER sockets (control and media) connected
 * to the worker's two ROUTERs, says HELLO on both, and follows the worker's HEARTBEATs: a
 * worker is alive from its first HELLO_OK or HEARTBEAT until heartbeat_timeout_ms pass without
 * one, and alive again when they resume (a new instance id means it restarted). It is also down
 * as soon as its control connection closes (a killed process: libzmq's socket monitor reports
 * ZMQ_EVENT_DISCONNECTED), and then alive again only at a HELLO_OK answering a HELLO sent after
 * the close. While a worker is not alive, HELLO is repeated every hello_interval_ms.
 *
 * Requests get a request id from the dispatcher, are resent with the same id on timeout, and
 * end in exactly one callback: the reply, the worker's ERROR, a timeout after the last
 * attempt, or a cancellation (worker removed, dispatcher destroyed). Callbacks always come from
 * the loop, never from inside dispatcher_request().
 *
 * Workers are added from static configuration (WORKER_ENDPOINTS) or, later, by discovery;
 * both use dispatcher_add_worker().
 *
 * CURVE (docs/protocol.md §1.1): with a curve in the configuration both DEALERs of a worker are
 * CURVE clients that authenticate the worker by its public key, given when the worker is added
 * and required to be in the signaler's allowed list. A refused handshake (the worker does not
 * allow our key, or holds another key than the one given) is logged and counted.
 */
#ifndef RS_DISPATCHER_H
#define RS_DISPATCHER_H

#include "curve.h"
#include "evloop.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dispatcher;
struct dispatcher_worker;

/* A snapshot of one worker, for relayctl and metrics. Strings point into the worker and stay
 * valid until it is removed. Times are evloop milliseconds, 0 for "never". */
struct dispatcher_worker_info {
	const char *ctl_endpoint;
	const char *media_endpoint;
	const char *server_key; /* the worker's CURVE public key, "" without CURVE */
	const char *worker_id; /* "" until the first HELLO_OK or HEARTBEAT */
	const char *host;
	const char *sw_version;
	uint64_t instance_id;
	uint32_t pid;
	uint32_t capacity; /* 0: unlimited */
	uint32_t hb_interval_ms;
	bool alive;
	bool media_ready; /* the media socket's HELLO was answered */
	bool draining;
	uint32_t legs;
	uint32_t recent_legs; /* CREATE_LEG / ADOPT_LEG sent since the last heartbeat */
	uint16_t cpu_permille;
	uint32_t last_seq;
	uint64_t last_heartbeat_ms;
	uint64_t up_since_ms;
	uint64_t down_since_ms;
	unsigned pending; /* requests awaiting a reply */
	uint64_t requests, replies, errors, retries, timeouts, late_replies;
	uint64_t restarts, media_in, media_out, send_drops;
	uint64_t disconnects; /* control connection closed (ZMQ_EVENT_DISCONNECTED) */
	uint64_t handshake_failures; /* control handshakes that failed (refused key, wrong key) */
};

struct dispatcher_callbacks {
	/* @w became alive; @restarted when it came back with another instance id (its legs are
	 * gone unless adopted). May be NULL. */
	void (*worker_up)(struct dispatcher *d, struct dispatcher_worker *w, bool restarted,
			  void *arg);
	/* @w missed its heartbeats, its control connection closed, or it restarted (just before
	 * worker_up). May be NULL. */
	void (*worker_down)(struct dispatcher *d, struct dispatcher_worker *w, void *arg);
	/* An EVENT from @w (LEG_ID and EVENT_KIND are present). May be NULL. */
	void (*event)(struct dispatcher *d, struct dispatcher_worker *w, const struct wire_msg *ev,
		      void *arg);
	/* MEDIA from @w. Hot path: do not block. May be NULL. */
	void (*media)(struct dispatcher *d, struct dispatcher_worker *w,
		      const struct wire_media *md, void *arg);
	void *arg;
};

struct dispatcher_config {
	uint32_t heartbeat_timeout_ms; /* 0: 1500 */
	uint32_t hello_interval_ms;    /* 0: 200 */
	int ctl_hwm, media_hwm;        /* 0: 1000 / 10000 */
	const char *sw_version;        /* HELLO SW_VERSION; NULL: "rtmp2sip" */
	/* The signaler's CURVE keys and the worker keys it allows (kept, must outlive the
	 * dispatcher); NULL or not enabled: plain ZeroMQ. */
	const struct curve *curve;
};

/*
 * The outcome of a request, delivered once:
 *   status 0          @reply is the OK (or HELLO_OK), checked to carry what its type needs;
 *   status -code      @reply is the worker's ERROR (ERR_CODE = code, ERR_TEXT why);
 *   @reply NULL       local failure: -ETIMEDOUT (no answer after all attempts), -EBADMSG (the
 *                     answer was malformed), -ECANCELED (worker removed / dispatcher destroyed).
 * @reply and its strings are valid during the call only. @w may be NULL for -ECANCELED during
 * dispatcher_destroy(). The callback may issue new requests.
 */
typedef void (*dispatcher_reply_cb)(struct dispatcher *d, struct dispatcher_worker *w, int status,
				    const struct wire_msg *reply, void *arg);

/*
 * Creates a dispatcher for signaler @signaler_id ([A-Za-z0-9._-]{1,64}); @cbs and @cfg (NULL:
 * defaults) are copied. Returns NULL with errno set.
 */
struct dispatcher *dispatcher_new(struct evloop *loop, const char *signaler_id,
				  const struct dispatcher_callbacks *cbs,
				  const struct dispatcher_config *cfg);

/* Closes every socket; pending requests get -ECANCELED (with @w NULL; they must not call the
 * dispatcher). NULL-safe, clears *dp. Not from a dispatcher callback. */
void dispatcher_destroy(struct dispatcher **dp);

/* The signaler id given at creation. */
const char *dispatcher_signaler_id(const struct dispatcher *d);

/*
 * Adds a worker by its two endpoints and, with CURVE, its public key @server_key (Z85; ignored
 * without CURVE, may be NULL then); connects and says HELLO. *out (may be NULL) gets its handle.
 * Returns 0, -EEXIST when @ctl_endpoint is already known, -EPERM when @server_key is not in the
 * allowed list (or missing), -EINVAL, -ENOMEM or a zmq -errno.
 */
int dispatcher_add_worker(struct dispatcher *d, const char *ctl_endpoint,
			  const char *media_endpoint, const char *server_key,
			  struct dispatcher_worker **out);

/*
 * Adds the workers of a WORKER_ENDPOINTS list "ctl1,media1[,key1];ctl2,media2[,key2]" (spaces
 * ignored, empty entries skipped, already known ones kept). With CURVE an entry without a key
 * takes the only key of the allowed list, and is an error when the list holds several. Returns
 * the number added or a negative errno for the first bad entry (logged; entries before it stay
 * added).
 */
int dispatcher_add_workers(struct dispatcher *d, const char *list);

/*
 * Removes @w: its pending requests end with -ECANCELED (called from here), its sockets close.
 * The handle stays readable until the current loop iteration ends. Safe in callbacks.
 */
void dispatcher_remove_worker(struct dispatcher *d, struct dispatcher_worker *w);

/*
 * The worker a new leg should go to: alive, not draining, below capacity, with the lowest load
 * (the highest of cpu per mille, legs times the CPU per leg pooled over the workers' heartbeats,
 * and legs per mille of capacity; legs count those requested since its last heartbeat), ties
 * broken round-robin. NULL when none qualifies.
 */
struct dispatcher_worker *dispatcher_pick(struct dispatcher *d);

/*
 * Sends request @req (a builder of a request type, request id 0; the dispatcher numbers and
 * finishes it and keeps a copy) to @w. Without a reply within @timeout_ms it is resent with the
 * same request id, @retries times, then @cb gets -ETIMEDOUT. *req_id (may be NULL) gets the id.
 * Returns 0 (then @cb will be called exactly once unless cancelled) or a negative errno (then
 * never): -EINVAL (bad message, not a request, HELLO), -ENODEV (worker removed), -ENOMEM.
 */
int dispatcher_request(struct dispatcher *d, struct dispatcher_worker *w,
		       struct wire_builder *req, uint32_t timeout_ms, unsigned retries,
		       dispatcher_reply_cb cb, void *arg, uint32_t *req_id);

/* Forgets request @req_id: its callback will not be called. 0 or -ENOENT. */
int dispatcher_cancel(struct dispatcher *d, uint32_t req_id);

/*
 * Queues one frame for @leg_id toward @w. Frames queued during one loop iteration leave together
 * as one MEDIA_BATCH message per worker at its end (or earlier when 32 KiB fill up). 0,
 * -ENOTCONN (worker not alive), -EINVAL / -E2BIG (encoding), -ENOMEM.
 */
int dispatcher_send_media(struct dispatcher *d, struct dispatcher_worker *w, const char *leg_id,
			  uint32_t ts, uint8_t flags, const void *payload, size_t len);

/* Workers, in the order they were added. */
size_t dispatcher_worker_count(const struct dispatcher *d);
struct dispatcher_worker *dispatcher_worker_at(const struct dispatcher *d, size_t i);

/* Lookups; NULL when not found. */
struct dispatcher_worker *dispatcher_find_worker(const struct dispatcher *d, const char *worker_id);
struct dispatcher_worker *dispatcher_find_endpoint(const struct dispatcher *d,
						   const char *ctl_endpoint);

/* True while @w is alive. */
bool dispatcher_worker_alive(const struct dispatcher_worker *w);

/* Fills @out with @w's state and counters. */
void dispatcher_worker_info(const struct dispatcher_worker *w, struct dispatcher_worker_info *out);

#endif
