/*
 * tls.h - TLS for RTMPS (OpenSSL): the server's certificate context, reloadable, and the TLS
 * layer of one non-blocking connection.
 *
 * A tls_ctx holds the certificate chain and key read from two PEM files; tls_ctx_reload() reads
 * them again (SIGHUP): connections accepted afterwards get the new certificate, those already
 * open keep the one they started with, and files that do not load leave the old certificate in
 * use. TLS 1.2 is the minimum, with OpenSSL's default ciphers; renegotiation is refused.
 *
 * A tls_conn never blocks: every call that cannot go on returns -EAGAIN and tls_conn_wants()
 * tells which socket event (EV_READ or EV_WRITE) it waits for, which may be the other direction
 * than the call's own (a read may need to write during a key update, a write may need to read).
 * Plaintext already decrypted but not yet returned (tls_conn_pending()) is not announced by the
 * socket: the caller reads it without waiting for readiness.
 */
#ifndef RS_TLS_H
#define RS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tls_ctx;
struct tls_conn;

/* What a tls_ctx did since it was created, for the metrics. */
struct tls_ctx_stats {
	uint64_t reloads;	  /* successful tls_ctx_reload() calls */
	uint64_t reload_failures; /* failed ones (the old certificate stayed) */
	int64_t not_after;	  /* expiry of the certificate in use, Unix seconds (0: unknown) */
};

/*
 * Loads @cert_file (PEM: the server certificate first, then any intermediate certificates) and
 * @key_file (PEM private key matching it); both paths are copied. Returns NULL after logging
 * why (missing file, bad PEM, key not matching, ENOMEM).
 */
struct tls_ctx *tls_ctx_new(const char *cert_file, const char *key_file);

/* Frees the context; connections still open keep what they need. NULL-safe, clears *ctxp. */
void tls_ctx_destroy(struct tls_ctx **ctxp);

/*
 * Reads both files again. On success new connections get the new certificate and the SHA-256
 * fingerprint is logged; on failure the current certificate stays, an error line says why.
 * Returns 0, -EINVAL (files unusable) or -ENOMEM.
 */
int tls_ctx_reload(struct tls_ctx *ctx);

/* Counters and the current certificate's expiry. */
void tls_ctx_get_stats(const struct tls_ctx *ctx, struct tls_ctx_stats *out);

/* Server side TLS on the accepted non-blocking socket @fd (borrowed: never closed here), with
 * @ctx's current certificate. NULL on ENOMEM. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd);

/* Frees the TLS state (nothing is sent); NULL-safe, clears *tp. */
void tls_conn_destroy(struct tls_conn **tp);

/*
 * Advances the handshake. Returns 1 once it is complete (and on every later call), 0 when it
 * waits for the socket (tls_conn_wants()), -ECONNRESET when the peer closed the connection, or
 * -EPROTO when it failed (not TLS, no common version or cipher...; tls_conn_error() says why).
 * An error is final.
 */
int tls_conn_handshake(struct tls_conn *t);

/*
 * Reads up to @len bytes of plaintext into @p. Returns the count (> 0), 0 when the peer closed
 * (close_notify or a bare EOF), -EAGAIN when nothing can be read now (tls_conn_wants()), or
 * -EPROTO / -EIO on an error (tls_conn_error()).
 */
ssize_t tls_conn_read(struct tls_conn *t, void *p, size_t len);

/*
 * Writes up to @len bytes of @p; a partial write returns less. After -EAGAIN the next call must
 * offer at least the same bytes again (a queue that only grows at its end does; the buffer may
 * move). Returns the count written (> 0), -EAGAIN (tls_conn_wants()), -EPIPE / -EPROTO / -EIO.
 */
ssize_t tls_conn_write(struct tls_conn *t, const void *p, size_t len);

/* Decrypted bytes that tls_conn_read() returns without touching the socket. */
size_t tls_conn_pending(const struct tls_conn *t);

/* The event (EV_READ or EV_WRITE of evloop.h) that the last -EAGAIN of @read_side (true: the
 * read or handshake; false: the write) waits for; 0 when that side is not blocked. */
unsigned tls_conn_wants(const struct tls_conn *t, bool read_side);

/* Sends close_notify if the socket takes it now; never waits. */
void tls_conn_shutdown(struct tls_conn *t);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake is done; owned by @t. */
const char *tls_conn_describe(struct tls_conn *t);

/* Why the last call failed, for the log; "" when none did. Owned by @t. */
const char *tls_conn_error(const struct tls_conn *t);

#endif
