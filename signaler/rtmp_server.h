/*
 * rtmp_server.h - the RTMP and RTMPS listeners: accept connections, enforce the connection
 * limits (per peer IP and in total, for all connections and for those still in the handshake),
 * and own every connection.
 */
#ifndef RS_RTMP_SERVER_H
#define RS_RTMP_SERVER_H

#include "rtmp_conn.h"

struct evloop;
struct rtmp_server;
struct tls_ctx;

/* Creates the server with the limits @lim (copied); it accepts nothing until
 * rtmp_server_listen(). Returns NULL on ENOMEM. */
struct rtmp_server *rtmp_server_new(struct evloop *loop, const struct rtmp_limits *lim);

/*
 * Listens on @bind:@port (TCP; @port 0 picks a free port): plain RTMP when @tls is NULL, RTMPS
 * with @tls's certificate otherwise (@tls is borrowed and must outlive the server). A server has
 * at most two listeners; they share the connection limits. Returns the port listened on, or a
 * negative errno after logging why (address in use, bad address...).
 */
int rtmp_server_listen(struct rtmp_server *srv, const char *bind, int port, struct tls_ctx *tls);

/* Closes the listeners and every connection (apps are told); NULL-safe, clears *srvp. */
void rtmp_server_destroy(struct rtmp_server **srvp);

/* Stops accepting connections (a drain); the connections there are go on. */
void rtmp_server_pause(struct rtmp_server *srv);

/* The port of the plain RTMP listener, and of the RTMPS one; 0 when there is none. */
int rtmp_server_port(const struct rtmp_server *srv);
int rtmp_server_tls_port(const struct rtmp_server *srv);

/* The certificate context of the RTMPS listener (borrowed), NULL without one. */
struct tls_ctx *rtmp_server_tls(const struct rtmp_server *srv);

/* Connections open now, and those of them not yet past the RTMP handshake (TLS included). */
unsigned rtmp_server_conn_count(const struct rtmp_server *srv);
unsigned rtmp_server_handshake_count(const struct rtmp_server *srv);

/* Totals since start, for operators and benchmarks. */
struct rtmp_stats {
	uint64_t accepted, refused;
	uint64_t handshakes_refused; /* of refused: at RTMP_MAX_HANDSHAKES[_PER_IP] */
	uint64_t tls_accepted;	     /* of accepted: on the RTMPS port */
	uint64_t tls_failures;	     /* TLS handshakes that failed or timed out */
	uint64_t msgs_in, msgs_out;
	uint64_t bytes_in, bytes_out;
	uint64_t media_dropped;
};

/* The server's counters; connections update them. */
struct rtmp_stats *rtmp_server_stats(struct rtmp_server *srv);

/* Logs the counters and the connection count as one line. */
void rtmp_server_log_stats(struct rtmp_server *srv);

#endif
