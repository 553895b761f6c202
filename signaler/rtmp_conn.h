/*
 * rtmp_conn.h - one RTMP client connection: socket I/O, handshake, chunk streams, protocol
 * control messages, NetStreams, and the helpers apps use to answer.
 *
 * A connection belongs to its server. It is closed with rtmp_conn_close(), which is safe from any
 * callback: the connection is freed at the end of the loop iteration, after its app was told.
 */
#ifndef RS_RTMP_CONN_H
#define RS_RTMP_CONN_H

#include "buf.h"
#include "rtmp_chunk.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct amf_value;
struct evloop;
struct rtmp_app;
struct rtmp_conn;
struct rtmp_server;

#define RTMP_NAME_MAX 256 /* app and stream names, including the NUL */

/* Limits applied to every connection; all configurable (see rtmp_limits_from_env). */
struct rtmp_limits {
	uint32_t max_chunk_size;    /* RTMP_MAX_CHUNK_SIZE, <= 65536 */
	uint32_t max_message;       /* RTMP_MAX_MESSAGE bytes */
	unsigned max_chunk_streams; /* RTMP_MAX_CHUNK_STREAMS */
	unsigned amf_max_depth;     /* AMF_MAX_DEPTH */
	unsigned amf_max_elements;  /* AMF_MAX_ELEMENTS */
	unsigned max_conn_per_ip;   /* RTMP_MAX_CONN_PER_IP */
	unsigned max_connections;   /* RTMP_MAX_CONNECTIONS */
	unsigned max_handshakes;    /* RTMP_MAX_HANDSHAKES: connections not past the handshake */
	unsigned max_handshakes_per_ip; /* RTMP_MAX_HANDSHAKES_PER_IP */
	unsigned max_streams;       /* RTMP_MAX_STREAMS: NetStreams per connection */
	unsigned idle_timeout_ms;   /* RTMP_IDLE_TIMEOUT (seconds in the environment) */
	unsigned handshake_timeout_ms; /* RTMP_HANDSHAKE_TIMEOUT (seconds in the environment) */
	size_t max_out_queue;       /* RTMP_MAX_OUT_QUEUE: queued bytes before media is dropped */
};

/* Reads the limits from the environment; returns 0 or -EINVAL (logged). */
int rtmp_limits_from_env(struct rtmp_limits *lim);

enum rtmp_stream_state { RTMP_STREAM_IDLE, RTMP_STREAM_PUBLISHING, RTMP_STREAM_PLAYING };

/* A NetStream of a connection (created by createStream). */
struct rtmp_stream {
	uint32_t id;
	enum rtmp_stream_state state;
	char name[RTMP_NAME_MAX];
	void *app_data; /* owned by the app between publish/play and stop */
};

/* "c<id> <ip>:<port>" for log lines. */
const char *rtmp_conn_sid(const struct rtmp_conn *c);

/* The peer's address as text, without the port. */
const char *rtmp_conn_peer_ip(const struct rtmp_conn *c);

/* The app chosen by connect (NULL before), and its instance path ("echo" of "echo/room"). */
const struct rtmp_app *rtmp_conn_app(const struct rtmp_conn *c);
const char *rtmp_conn_app_name(const struct rtmp_conn *c);

/* App state of the connection. */
void *rtmp_conn_app_data(const struct rtmp_conn *c);
void rtmp_conn_set_app_data(struct rtmp_conn *c, void *data);

/* Logs @reason (printf format) with the connection id and closes the connection after the
 * current callback. Safe to call several times; only the first reason is logged. */
void rtmp_conn_close(struct rtmp_conn *c, const char *reason, ...)
	__attribute__((format(printf, 2, 3)));

/* Closes once everything queued has been sent (after a final _error), or at the idle timeout. */
void rtmp_conn_close_after_flush(struct rtmp_conn *c, const char *reason);

bool rtmp_conn_closing(const struct rtmp_conn *c);

/* Queues one message; returns 0 or a negative errno (the connection is then closing). */
int rtmp_conn_send(struct rtmp_conn *c, const struct rtmp_msg *m);

/* Queues a command (AMF0 values in @body) on @stream_id, wrapped as AMF3 command when the
 * client speaks objectEncoding 3 commands. */
int rtmp_conn_send_command(struct rtmp_conn *c, uint32_t stream_id, const struct buf *body);

/* Queues "onStatus"(0, null, {level, code, description[, details]}) on @stream_id. */
int rtmp_conn_send_status(struct rtmp_conn *c, uint32_t stream_id, const char *level,
			  const char *code, const char *description);

/* Queues "_result"/"_error"(txid, @props or null, @info or null); the values are borrowed. */
int rtmp_conn_send_reply(struct rtmp_conn *c, bool ok, double txid, const struct amf_value *props,
			 const struct amf_value *info);

/* Queues an "_error" with info {level:"error", code, description}. */
int rtmp_conn_send_error(struct rtmp_conn *c, double txid, const char *code,
			 const char *description);

/* Queues a user control event (StreamBegin 0, StreamEOF 1, ...). */
int rtmp_conn_send_user_control(struct rtmp_conn *c, uint16_t event, uint32_t value);

/*
 * Queues audio/video/data for a player. Media is dropped (returns -EAGAIN) while the output queue
 * is above the limit, so one slow player never grows memory or delays others.
 */
int rtmp_conn_send_media(struct rtmp_conn *c, uint32_t stream_id, uint8_t type,
			 uint32_t timestamp, const uint8_t *data, uint32_t len);

/* Ends a pending connect: accept sends the _result; reject sends _error
 * NetConnection.Connect.Rejected with @description and closes. */
void rtmp_conn_accept(struct rtmp_conn *c);
void rtmp_conn_reject(struct rtmp_conn *c, const char *description);

/* The NetStream @id, or NULL. */
struct rtmp_stream *rtmp_conn_stream(struct rtmp_conn *c, uint32_t id);

/* Limits in force and the server. */
const struct rtmp_limits *rtmp_conn_limits(const struct rtmp_conn *c);
struct rtmp_server *rtmp_conn_server(const struct rtmp_conn *c);
struct evloop *rtmp_conn_loop(const struct rtmp_conn *c);

/* Used by the command layer (rtmp_cmd.c). */
void rtmp_conn_set_app(struct rtmp_conn *c, const struct rtmp_app *app, const char *name,
		       double object_encoding);
double rtmp_conn_object_encoding(const struct rtmp_conn *c);
double rtmp_conn_connect_txid(const struct rtmp_conn *c);
void rtmp_conn_set_connect_txid(struct rtmp_conn *c, double txid);
bool rtmp_conn_connected(const struct rtmp_conn *c);
struct rtmp_stream *rtmp_conn_create_stream(struct rtmp_conn *c);
void rtmp_conn_stop_stream(struct rtmp_conn *c, struct rtmp_stream *s);
void rtmp_conn_delete_stream(struct rtmp_conn *c, struct rtmp_stream *s);
/* Queues Window Ack Size, Set Peer Bandwidth and Set Chunk Size (raising ours to 4096). */
int rtmp_conn_send_connect_preamble(struct rtmp_conn *c);

#endif
