/*
 * rtmp_server_int.h - what signaler/rtmp_server.c shares with signaler/rtmp_conn.c: the server
 * creates and frees connections, keeps their lists and counts their slots; the connections
 * link themselves into those lists and give their slots back. Not a public header: callers use
 * rtmp_server.h and rtmp_conn.h.
 */
#ifndef RS_RTMP_SERVER_INT_H
#define RS_RTMP_SERVER_INT_H

#include "rtmp_conn.h"
#include "rtmp_server.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct evloop;
struct tls_ctx;

/* ---- rtmp_conn.c, for the server ---- */

/*
 * Creates a connection for accepted socket @fd (non-blocking; the connection owns and closes it),
 * speaking TLS with @tls's certificate first when @tls is not NULL (RTMPS; @tls is borrowed).
 * Only the connection itself is allocated here: the handshake state, the TLS state and the
 * buffers come with the first bytes, the chunk streams once the handshake is through.
 * Returns NULL on failure, in which case the caller still owns @fd.
 */
struct rtmp_conn *rtmp_conn_new(struct rtmp_server *srv, struct evloop *loop, int fd,
				const struct sockaddr_storage *peer, uint64_t id, struct tls_ctx *tls);

/* Frees a connection immediately (the server calls this; others use rtmp_conn_close). */
void rtmp_conn_destroy(struct rtmp_conn **cp);

/* Processes pending output and closes; called before the loop sleeps. */
void rtmp_conn_flush_pending(struct rtmp_server *srv);

/* ---- rtmp_server.c, for the connections ---- */

/* The limits every connection of @srv applies (the server's copy). */
const struct rtmp_limits *rtmp_server_limits(const struct rtmp_server *srv);

/* The heads of the lists of all connections and of connections with pending output or a
 * pending close. The links live in the connections. */
struct rtmp_conn **rtmp_server_all_head(struct rtmp_server *srv);
struct rtmp_conn **rtmp_server_pending_head(struct rtmp_server *srv);

/* A connection from @peer finished the RTMP handshake; releases its handshake slots (per IP and
 * in total). Called once per connection. */
void rtmp_server_conn_handshaken(struct rtmp_server *srv, const struct sockaddr_storage *peer);

/* A connection from @peer is gone; releases its per-IP and total slots, and its handshake slots
 * when @in_handshake. */
void rtmp_server_conn_gone(struct rtmp_server *srv, const struct sockaddr_storage *peer,
			   bool in_handshake);

#endif
