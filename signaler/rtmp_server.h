/*
 * rtmp_server.h - the RTMP listener: accepts connections, enforces the connection limits
 * (per peer IP and in total) and owns every connection.
 */
#ifndef RS_RTMP_SERVER_H
#define RS_RTMP_SERVER_H

#include "rtmp_conn.h"

struct evloop;
struct rtmp_server;

/*
 * Listens on @bind:@port (TCP; @port 0 picks a free port) and serves RTMP with @lim (copied).
 * Returns NULL on failure after logging why (address in use, bad address...).
 */
struct rtmp_server *rtmp_server_new(struct evloop *loop, const char *bind, int port,
				    const struct rtmp_limits *lim);

/* Closes the listener and every connection (apps are told); NULL-safe, clears *srvp. */
void rtmp_server_destroy(struct rtmp_server **srvp);

/* The port actually listened on. */
/* Stops accepting connections (a drain); the connections there are go on. */
void rtmp_server_pause(struct rtmp_server *srv);

int rtmp_server_port(const struct rtmp_server *srv);

/* Connections open now. */
unsigned rtmp_server_conn_count(const struct rtmp_server *srv);

const struct rtmp_limits *rtmp_server_limits(const struct rtmp_server *srv);

/* Totals since start, for operators and benchmarks. */
struct rtmp_stats {
	uint64_t accepted, refused;
	uint64_t msgs_in, msgs_out;
	uint64_t bytes_in, bytes_out;
	uint64_t media_dropped;
};

/* The server's counters; connections update them. */
struct rtmp_stats *rtmp_server_stats(struct rtmp_server *srv);

/* Logs the counters and the connection count as one line. */
void rtmp_server_log_stats(struct rtmp_server *srv);

/* For rtmp_conn.c: the heads of the lists of all connections and of connections with pending
 * output or a pending close. The links live in the connections. */
struct rtmp_conn **rtmp_server_all_head(struct rtmp_server *srv);
struct rtmp_conn **rtmp_server_pending_head(struct rtmp_server *srv);

/* For rtmp_conn.c: a connection from @peer is gone; releases its per-IP and total slots. */
void rtmp_server_conn_gone(struct rtmp_server *srv, const struct sockaddr_storage *peer);

/* Processes pending output and closes (rtmp_conn.c); called before the loop sleeps. */
void rtmp_conn_flush_pending(struct rtmp_server *srv);

#endif
