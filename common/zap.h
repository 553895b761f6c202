/*
 * zap.h - the ZAP handler of a CURVE server process (ZeroMQ Authentication Protocol, RFC 27).
 *
 * For every CURVE handshake on any server socket of the process's ZeroMQ context, libzmq asks
 * the handler bound to inproc://zeromq.zap.01 whether the client may connect. This one answers
 * 200 when the client's public key is in the curve's allowed list at that moment (so a reload
 * of the list applies to the next handshake; connections already made go on), 400 otherwise, and
 * names the client by its Z85 public key: the User-Id every message of that connection then
 * carries (zsock_user_id()). A mechanism other than CURVE is refused.
 *
 * The handler is a REP zsock driven by the event loop like every other socket; it answers each
 * request from its receive callback. It must be bound before a CURVE server socket binds
 * (libzmq lets every client in when no handler is bound): create it first. One per context.
 */
#ifndef RS_ZAP_H
#define RS_ZAP_H

#include <stdint.h>

struct evloop;
struct curve;
struct zap;

struct zap_stats {
	uint64_t allowed;   /* handshakes answered 200 */
	uint64_t refused;   /* 400: key not allowed, or not CURVE */
	uint64_t malformed; /* requests that were not ZAP 1.0 (answered 500) */
};

/*
 * Binds the handler, answering from @c's allowed list (@c must outlive it). Returns NULL with
 * errno set: EINVAL (@c not enabled), EADDRINUSE (a handler is already bound), or another errno.
 */
struct zap *zap_new(struct evloop *loop, const struct curve *c);

/* Unbinds and frees; NULL-safe, clears *zp. */
void zap_destroy(struct zap **zp);

/* Counters since creation. */
void zap_get_stats(const struct zap *z, struct zap_stats *st);

#endif
