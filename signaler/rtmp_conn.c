/*
 * rtmp_conn.c - one RTMP client connection.
 *
 *   accepted on the RTMPS port --> TLS handshake --done--+
 *      |                               |                 |
 *      | plain RTMP port               +--timeout/error--+------------------------+
 *      v                                                 |                        |
 *   start <----------------------------------------------+                        |
 *      |--'<'--> policy request --(policy XML)--> close after flush               |
 *      |                                                                           |
 *      +--C0--> handshake --C2--> session: chunk streams, control messages, commands
 *                   |                 |                                            |
 *                   +--timeout/error--+--error/idle/disconnect--> closing --> freed <+
 *
 * Until the RTMP handshake is through, a connection holds a slot of the server's handshake
 * limits and as little memory as it can: nothing but itself until its first byte, then the
 * handshake state and an input buffer of PRE_SESSION_IN bytes. The chunk reader, the writer and
 * the stream table come with the session.
 *
 * Input is read into a buffer bounded by one maximal chunk (plus header room), grown READ_ROOM
 * bytes at a time; the chunk reader consumes whole chunks from it. Output is queued and written
 * before the loop sleeps, one write per connection per iteration. Closing is deferred to the
 * same point, so any callback may close any connection, its own included.
 *
 * Where TLS sits: conn_recv() and conn_send() are the only places that touch the socket; on an
 * RTMPS connection they go through tls.c, everything above them sees plaintext. A TLS read may
 * wait for the socket to be writable and a TLS write for it to be readable, so watch() asks the
 * loop for what each side waits for, and on_io() runs each side on the event it waits for.
 * Plaintext that TLS has decrypted but not yet handed over is read at once, past the read
 * budget: the socket will not announce it again.
 */
#include "rtmp_conn.h"

#include "amf.h"
#include "app.h"
#include "config.h"
#include "evloop.h"
#include "log.h"
#include "rtmp_cmd.h"
#include "rtmp_handshake.h"
#include "rtmp_server_int.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLICY_REQUEST "<policy-file-request/>"
#define POLICY_MAX 64
#define OUR_WINDOW 2500000u
#define OUR_CHUNK_SIZE 4096u
#define READ_BUDGET (64 * 1024) /* bytes read per readiness event: fairness between peers */
#define READ_ROOM (16 * 1024)	/* input buffer growth step, and what an idle buffer may keep */
#define PRE_SESSION_IN 4096	/* input buffer bound until the session: C0+C1+C2 are 3073 */
#define OUT_KEEP (64 * 1024)	/* an empty output queue larger than this is freed */

enum conn_state { CS_TLS, CS_START, CS_POLICY, CS_HANDSHAKE, CS_SESSION };

struct rtmp_conn {
	struct rtmp_server *srv;
	struct evloop *loop;
	const struct rtmp_limits *lim;
	int fd;
	struct ev_io *io;
	struct ev_timer *timer;
	uint64_t id;
	char sid[96];
	char ip[INET6_ADDRSTRLEN];
	struct sockaddr_storage peer;
	enum conn_state state;
	bool in_handshake;	 /* holds one of the server's handshake slots */
	struct tls_ctx *tls_ctx; /* RTMPS: the certificate (borrowed); NULL for plain RTMP */
	struct tls_conn *tls;	 /* RTMPS: created with the first bytes */
	struct rtmp_hs *hs;
	struct rtmp_chunk_reader *rd;
	struct rtmp_chunk_writer *wr;
	struct buf in, out;
	size_t in_cap; /* input buffer bound */

	uint64_t bytes_in;
	uint64_t acked;       /* bytes_in at our last Acknowledgement */
	uint32_t peer_window; /* the peer's Window Acknowledgement Size, 0 = none */
	uint64_t last_input;  /* loop time of the last byte received */
	bool ping_sent;

	const struct rtmp_app *app;
	char app_name[RTMP_NAME_MAX];
	void *app_data;
	bool connect_seen, connected;
	double connect_txid;
	double object_encoding;
	bool amf3_commands; /* the client sends commands as type 17: answer in kind */

	struct rtmp_stream **streams; /* [lim->max_streams], stream id = index + 1 */

	bool closing, close_after_flush, pending;
	uint64_t media_dropped;
	struct rtmp_conn *next, *prev; /* all connections of the server */
	struct rtmp_conn *pnext;       /* pending output or close */
};

int rtmp_limits_from_env(struct rtmp_limits *lim)
{
	static const struct {
		const char *name;
		int64_t def, min, max;
	} spec[] = {
		{"RTMP_MAX_CHUNK_SIZE", 65536, 128, 65536},
		{"RTMP_MAX_MESSAGE", 1048576, 4096, 16777215},
		{"RTMP_MAX_CHUNK_STREAMS", 64, 4, 65599},
		{"AMF_MAX_DEPTH", 32, 2, 1024},
		{"AMF_MAX_ELEMENTS", 4096, 16, 1000000},
		{"RTMP_MAX_CONN_PER_IP", 64, 1, 1000000},
		{"RTMP_MAX_CONNECTIONS", 10000, 1, 1000000},
		{"RTMP_MAX_HANDSHAKES", 256, 1, 1000000},
		{"RTMP_MAX_HANDSHAKES_PER_IP", 16, 1, 1000000},
		{"RTMP_MAX_STREAMS", 8, 1, 1024},
		{"RTMP_IDLE_TIMEOUT", 60, 1, 86400},
		{"RTMP_HANDSHAKE_TIMEOUT", 10, 1, 3600},
		{"RTMP_MAX_OUT_QUEUE", 1048576, 65536, 1 << 30},
	};
	int64_t v[sizeof(spec) / sizeof(spec[0])];

	for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++)
		if (config_int(spec[i].name, spec[i].def, spec[i].min, spec[i].max, &v[i]) < 0)
			return -EINVAL;
	*lim = (struct rtmp_limits){
		.max_chunk_size = (uint32_t)v[0],
		.max_message = (uint32_t)v[1],
		.max_chunk_streams = (unsigned)v[2],
		.amf_max_depth = (unsigned)v[3],
		.amf_max_elements = (unsigned)v[4],
		.max_conn_per_ip = (unsigned)v[5],
		.max_connections = (unsigned)v[6],
		.max_handshakes = (unsigned)v[7],
		.max_handshakes_per_ip = (unsigned)v[8],
		.max_streams = (unsigned)v[9],
		.idle_timeout_ms = (unsigned)v[10] * 1000u,
		.handshake_timeout_ms = (unsigned)v[11] * 1000u,
		.max_out_queue = (size_t)v[12],
	};
	return 0;
}

static void on_io(struct evloop *loop, struct ev_io *io, int fd, unsigned events, void *arg);
static void on_timer(struct evloop *loop, struct ev_timer *t, void *arg);

static void mark_pending(struct rtmp_conn *c)
{
	struct rtmp_conn **head;

	if (c->pending)
		return;
	head = rtmp_server_pending_head(c->srv);
	c->pnext = *head;
	*head = c;
	c->pending = true;
}

struct rtmp_conn *rtmp_conn_new(struct rtmp_server *srv, struct evloop *loop, int fd,
				const struct sockaddr_storage *peer, uint64_t id, struct tls_ctx *tls)
{
	struct rtmp_conn *c = calloc(1, sizeof(*c));
	struct rtmp_conn **all;
	uint16_t port = 0;

	if (!c)
		return NULL;
	c->srv = srv;
	c->loop = loop;
	c->lim = rtmp_server_limits(srv);
	c->fd = fd;
	c->id = id;
	c->peer = *peer;
	c->tls_ctx = tls;
	c->state = tls ? CS_TLS : CS_START;
	c->in_handshake = true;
	if (peer->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)peer;

		inet_ntop(AF_INET6, &s6->sin6_addr, c->ip, sizeof(c->ip));
		port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)peer;

		inet_ntop(AF_INET, &s4->sin_addr, c->ip, sizeof(c->ip));
		port = ntohs(s4->sin_port);
	}
	snprintf(c->sid, sizeof(c->sid), "c%llu %s:%u", (unsigned long long)id, c->ip, port);
	/* One maximal chunk (payload + 18 header bytes) must fit, and so must C0+C1+C2. */
	c->in_cap = c->lim->max_chunk_size + 64 > 4096 ? c->lim->max_chunk_size + 64 : 4096;
	c->timer = evloop_timer_new(loop, on_timer, c);
	if (!c->timer)
		goto out_free;
	c->io = evloop_io_add(loop, fd, EV_READ, on_io, c);
	if (!c->io)
		goto out_free;
	c->last_input = evloop_now(loop);
	evloop_timer_start(c->timer, c->lim->handshake_timeout_ms);
	all = rtmp_server_all_head(srv);
	c->next = *all;
	if (*all)
		(*all)->prev = c;
	*all = c;
	log_info(c->sid, "accepted%s", tls ? " on the RTMPS port" : "");
	return c;

out_free:
	evloop_timer_del(&c->timer);
	free(c);
	return NULL;
}

/* The handshake is through: the session's reader, writer and stream table, and the handshake
 * slot given back. Returns 0 or -ENOMEM (the connection is then closing). */
static int enter_session(struct rtmp_conn *c)
{
	struct rtmp_chunk_limits clim = {
		.max_chunk_size = c->lim->max_chunk_size,
		.max_message = c->lim->max_message,
		.max_streams = c->lim->max_chunk_streams,
	};

	rtmp_hs_destroy(&c->hs);
	c->rd = rtmp_chunk_reader_new(&clim);
	c->wr = rtmp_chunk_writer_new();
	c->streams = calloc(c->lim->max_streams, sizeof(*c->streams));
	if (!c->rd || !c->wr || !c->streams) {
		rtmp_conn_close(c, "out of memory");
		return -ENOMEM;
	}
	c->state = CS_SESSION;
	c->in_handshake = false;
	rtmp_server_conn_handshaken(c->srv, &c->peer);
	return 0;
}

/* Ends every stream and tells the app the connection is gone. */
static void teardown_app(struct rtmp_conn *c)
{
	for (unsigned i = 0; c->streams && i < c->lim->max_streams; i++)
		if (c->streams[i])
			rtmp_conn_delete_stream(c, c->streams[i]);
	if (c->app && c->app->disconnect)
		c->app->disconnect(c);
	c->app = NULL;
}

void rtmp_conn_destroy(struct rtmp_conn **cp)
{
	struct rtmp_conn *c = cp ? *cp : NULL;
	struct rtmp_conn **all;

	if (!c)
		return;
	c->closing = true;
	teardown_app(c);
	all = rtmp_server_all_head(c->srv);
	if (c->prev)
		c->prev->next = c->next;
	else if (*all == c)
		*all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->pending) {
		struct rtmp_conn **pp = rtmp_server_pending_head(c->srv);

		while (*pp && *pp != c)
			pp = &(*pp)->pnext;
		if (*pp)
			*pp = c->pnext;
	}
	evloop_io_del(&c->io);
	evloop_timer_del(&c->timer);
	tls_conn_destroy(&c->tls);
	close(c->fd);
	rtmp_server_conn_gone(c->srv, &c->peer, c->in_handshake);
	if (c->media_dropped)
		log_info(c->sid, "dropped %llu media messages to a slow reader",
			 (unsigned long long)c->media_dropped);
	free(c->streams);
	rtmp_chunk_writer_destroy(&c->wr);
	rtmp_chunk_reader_destroy(&c->rd);
	rtmp_hs_destroy(&c->hs);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
	*cp = NULL;
}

const char *rtmp_conn_sid(const struct rtmp_conn *c)
{
	return c->sid;
}

const char *rtmp_conn_peer_ip(const struct rtmp_conn *c)
{
	return c->ip;
}

const struct rtmp_app *rtmp_conn_app(const struct rtmp_conn *c)
{
	return c->app;
}

const char *rtmp_conn_app_name(const struct rtmp_conn *c)
{
	return c->app_name;
}

void *rtmp_conn_app_data(const struct rtmp_conn *c)
{
	return c->app_data;
}

void rtmp_conn_set_app_data(struct rtmp_conn *c, void *data)
{
	c->app_data = data;
}

const struct rtmp_limits *rtmp_conn_limits(const struct rtmp_conn *c)
{
	return c->lim;
}

struct rtmp_server *rtmp_conn_server(const struct rtmp_conn *c)
{
	return c->srv;
}

struct evloop *rtmp_conn_loop(const struct rtmp_conn *c)
{
	return c->loop;
}

bool rtmp_conn_closing(const struct rtmp_conn *c)
{
	return c->closing;
}

void rtmp_conn_close(struct rtmp_conn *c, const char *reason, ...)
{
	char text[256];
	va_list ap;

	if (c->closing)
		return;
	va_start(ap, reason);
	vsnprintf(text, sizeof(text), reason, ap);
	va_end(ap);
	log_info(c->sid, "closing: %s", text);
	c->closing = true;
	evloop_io_del(&c->io);
	evloop_timer_stop(c->timer);
	mark_pending(c);
}

void rtmp_conn_close_after_flush(struct rtmp_conn *c, const char *reason)
{
	if (c->closing || c->close_after_flush)
		return;
	log_info(c->sid, "will close after sending queued data: %s", reason);
	c->close_after_flush = true;
	/* Stop reading: nothing the peer says matters any more. */
	if (c->io)
		evloop_io_set(c->io, EV_WRITE);
	evloop_timer_start(c->timer, c->lim->handshake_timeout_ms);
	mark_pending(c);
}

/* Output. */

int rtmp_conn_send(struct rtmp_conn *c, const struct rtmp_msg *m)
{
	int err;

	if (c->closing)
		return -EPIPE;
	if (!c->wr)
		return -ENOTCONN; /* no session yet */
	/* Control replies and commands are small; a peer that lets this much pile up is not
	 * reading at all. */
	if (buf_used(&c->out) > c->lim->max_out_queue * 4) {
		rtmp_conn_close(c, "output queue above %zu bytes: peer is not reading",
				c->lim->max_out_queue * 4);
		return -EPIPE;
	}
	err = rtmp_chunk_write(c->wr, &c->out, m);
	if (err < 0) {
		rtmp_conn_close(c, "cannot queue output: %s", strerror(-err));
		return err;
	}
	rtmp_server_stats(c->srv)->msgs_out++;
	mark_pending(c);
	return 0;
}

static int send_control(struct rtmp_conn *c, uint8_t type, const uint8_t *data, uint32_t len)
{
	struct rtmp_msg m = {
		.csid = RTMP_CSID_CONTROL, .type = type, .data = data, .len = len,
	};

	return rtmp_conn_send(c, &m);
}

static int send_u32_control(struct rtmp_conn *c, uint8_t type, uint32_t v)
{
	uint8_t p[4];

	wr_be32(p, v);
	return send_control(c, type, p, sizeof(p));
}

int rtmp_conn_send_user_control(struct rtmp_conn *c, uint16_t event, uint32_t value)
{
	uint8_t p[6];

	wr_be16(p, event);
	wr_be32(p + 2, value);
	return send_control(c, RTMP_MSG_USER_CONTROL, p, sizeof(p));
}

int rtmp_conn_send_command(struct rtmp_conn *c, uint32_t stream_id, const struct buf *body)
{
	struct buf wrapped = {0};
	struct rtmp_msg m = {
		.csid = RTMP_CSID_COMMAND,
		.stream_id = stream_id,
		.type = RTMP_MSG_COMMAND_AMF0,
		.data = buf_head(body),
		.len = (uint32_t)buf_used(body),
	};
	int err;

	if (c->amf3_commands) {
		/* An AMF3 command message is a 0x00 format byte followed by AMF0 values. */
		if (buf_put_u8(&wrapped, 0) < 0 || buf_append(&wrapped, buf_head(body), buf_used(body)) < 0) {
			buf_free(&wrapped);
			rtmp_conn_close(c, "out of memory");
			return -ENOMEM;
		}
		m.type = RTMP_MSG_COMMAND_AMF3;
		m.data = buf_head(&wrapped);
		m.len = (uint32_t)buf_used(&wrapped);
	}
	err = rtmp_conn_send(c, &m);
	buf_free(&wrapped);
	return err;
}

int rtmp_conn_send_media(struct rtmp_conn *c, uint32_t stream_id, uint8_t type,
			 uint32_t timestamp, const uint8_t *data, uint32_t len)
{
	struct rtmp_msg m = {
		.csid = type == RTMP_MSG_VIDEO ? RTMP_CSID_VIDEO
			: type == RTMP_MSG_AUDIO ? RTMP_CSID_AUDIO : RTMP_CSID_DATA,
		.stream_id = stream_id,
		.type = type,
		.timestamp = timestamp,
		.data = data,
		.len = len,
	};

	if (c->closing || c->close_after_flush)
		return -EPIPE;
	if (buf_used(&c->out) > c->lim->max_out_queue) {
		rtmp_server_stats(c->srv)->media_dropped++;
		if (c->media_dropped++ == 0)
			log_warn(c->sid, "output queue above %zu bytes: dropping media until it drains",
				 c->lim->max_out_queue);
		return -EAGAIN;
	}
	return rtmp_conn_send(c, &m);
}

/* Encodes the values of a command body; on ENOMEM closes the connection. */
static int put_values(struct rtmp_conn *c, struct buf *b, const struct amf_value *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int err = v[i] ? amf0_encode(b, v[i]) : amf0_put_null(b);

		if (err < 0) {
			rtmp_conn_close(c, "cannot encode a reply: %s", strerror(-err));
			return err;
		}
	}
	return 0;
}

int rtmp_conn_send_status(struct rtmp_conn *c, uint32_t stream_id, const char *level,
			  const char *code, const char *description)
{
	struct amf_value *info = amf_object();
	struct buf b = {0};
	int err = -ENOMEM;

	if (!info || amf_object_set(info, "level", amf_string(level)) < 0 ||
	    amf_object_set(info, "code", amf_string(code)) < 0 ||
	    amf_object_set(info, "description", amf_string(description)) < 0)
		goto out;
	if (amf0_put_string(&b, "onStatus") < 0 || amf0_put_number(&b, 0) < 0 ||
	    amf0_put_null(&b) < 0 || amf0_encode(&b, info) < 0)
		goto out;
	err = rtmp_conn_send_command(c, stream_id, &b);
out:
	if (err == -ENOMEM)
		rtmp_conn_close(c, "out of memory");
	amf_free(info);
	buf_free(&b);
	return err;
}

int rtmp_conn_send_reply(struct rtmp_conn *c, bool ok, double txid, const struct amf_value *props,
			 const struct amf_value *info)
{
	const struct amf_value *v[2] = {props, info};
	struct buf b = {0};
	int err;

	if (amf0_put_string(&b, ok ? "_result" : "_error") < 0 || amf0_put_number(&b, txid) < 0) {
		buf_free(&b);
		rtmp_conn_close(c, "out of memory");
		return -ENOMEM;
	}
	err = put_values(c, &b, v, info ? 2 : 1);
	if (!err)
		err = rtmp_conn_send_command(c, 0, &b);
	buf_free(&b);
	return err;
}

int rtmp_conn_send_error(struct rtmp_conn *c, double txid, const char *code,
			 const char *description)
{
	struct amf_value *info = amf_object();
	int err = -ENOMEM;

	if (info && amf_object_set(info, "level", amf_string("error")) == 0 &&
	    amf_object_set(info, "code", amf_string(code)) == 0 &&
	    amf_object_set(info, "description", amf_string(description)) == 0)
		err = rtmp_conn_send_reply(c, false, txid, NULL, info);
	else
		rtmp_conn_close(c, "out of memory");
	amf_free(info);
	return err;
}

/* Connect outcome. */

void rtmp_conn_set_app(struct rtmp_conn *c, const struct rtmp_app *app, const char *name,
		       double object_encoding)
{
	c->app = app;
	snprintf(c->app_name, sizeof(c->app_name), "%s", name);
	c->object_encoding = object_encoding;
	c->connect_seen = true;
}

double rtmp_conn_object_encoding(const struct rtmp_conn *c)
{
	return c->object_encoding;
}

double rtmp_conn_connect_txid(const struct rtmp_conn *c)
{
	return c->connect_txid;
}

void rtmp_conn_set_connect_txid(struct rtmp_conn *c, double txid)
{
	c->connect_txid = txid;
}

bool rtmp_conn_connected(const struct rtmp_conn *c)
{
	return c->connected;
}

void rtmp_conn_accept(struct rtmp_conn *c)
{
	struct amf_value *props = amf_object(), *info = amf_object();

	if (c->closing || c->connected)
		goto out;
	if (!props || !info || amf_object_set(props, "fmsVer", amf_string("FMS/3,5,7,7009")) < 0 ||
	    amf_object_set(props, "capabilities", amf_number(31)) < 0 ||
	    amf_object_set(props, "mode", amf_number(1)) < 0 ||
	    amf_object_set(info, "level", amf_string("status")) < 0 ||
	    amf_object_set(info, "code", amf_string("NetConnection.Connect.Success")) < 0 ||
	    amf_object_set(info, "description", amf_string("Connection succeeded.")) < 0 ||
	    amf_object_set(info, "objectEncoding", amf_number(c->object_encoding)) < 0) {
		rtmp_conn_close(c, "out of memory");
		goto out;
	}
	c->connected = true;
	log_info(c->sid, "connected to app '%s'", c->app_name);
	rtmp_conn_send_reply(c, true, c->connect_txid, props, info);
out:
	amf_free(props);
	amf_free(info);
}

void rtmp_conn_reject(struct rtmp_conn *c, const char *description)
{
	if (c->closing)
		return;
	log_info(c->sid, "connect rejected: %s", description);
	rtmp_conn_send_error(c, c->connect_txid, "NetConnection.Connect.Rejected", description);
	/* The app must not hear of this connection any more. */
	c->app = NULL;
	rtmp_conn_close_after_flush(c, "connect rejected");
}

/* Streams. */

struct rtmp_stream *rtmp_conn_stream(struct rtmp_conn *c, uint32_t id)
{
	if (id == 0 || id > c->lim->max_streams || !c->streams)
		return NULL;
	return c->streams[id - 1];
}

struct rtmp_stream *rtmp_conn_create_stream(struct rtmp_conn *c)
{
	for (unsigned i = 0; c->streams && i < c->lim->max_streams; i++) {
		if (!c->streams[i]) {
			struct rtmp_stream *s = calloc(1, sizeof(*s));

			if (!s)
				return NULL;
			s->id = i + 1;
			c->streams[i] = s;
			return s;
		}
	}
	return NULL;
}

void rtmp_conn_stop_stream(struct rtmp_conn *c, struct rtmp_stream *s)
{
	if (s->state == RTMP_STREAM_IDLE)
		return;
	if (c->app && c->app->stop)
		c->app->stop(c, s);
	s->state = RTMP_STREAM_IDLE;
	s->app_data = NULL;
	s->name[0] = '\0';
}

void rtmp_conn_delete_stream(struct rtmp_conn *c, struct rtmp_stream *s)
{
	rtmp_conn_stop_stream(c, s);
	c->streams[s->id - 1] = NULL;
	free(s);
}

/* Input. */

static void send_ack_if_due(struct rtmp_conn *c)
{
	if (c->peer_window == 0 || c->bytes_in - c->acked < c->peer_window)
		return;
	c->acked = c->bytes_in;
	send_u32_control(c, RTMP_MSG_ACK, (uint32_t)c->bytes_in);
}

static void handle_media(struct rtmp_conn *c, const struct rtmp_msg *m)
{
	struct rtmp_stream *s = rtmp_conn_stream(c, m->stream_id);

	if (!s || s->state != RTMP_STREAM_PUBLISHING) {
		log_debug(c->sid, "media type %u on stream %u that is not publishing: ignored",
			  m->type, m->stream_id);
		return;
	}
	if (c->app && c->app->media)
		c->app->media(c, s, m);
}

/* Aggregate messages carry FLV-tag-like sub-messages; split them and pass each on. */
static void handle_aggregate(struct rtmp_conn *c, const struct rtmp_msg *m)
{
	const uint8_t *p = m->data;
	size_t left = m->len;
	uint32_t first = 0;
	bool have_first = false;

	while (left >= 11) {
		struct rtmp_msg sub = *m;
		uint32_t size = rd_be24(p + 1);
		uint32_t ts = rd_be24(p + 4) | (uint32_t)p[7] << 24;

		if (left - 11 < (size_t)size + 4) {
			log_warn(c->sid, "aggregate message with a truncated sub-message: rest ignored");
			return;
		}
		if (!have_first) {
			first = ts;
			have_first = true;
		}
		sub.type = p[0];
		sub.len = size;
		sub.data = p + 11;
		sub.timestamp = m->timestamp + (ts - first);
		if (sub.type == RTMP_MSG_AUDIO || sub.type == RTMP_MSG_VIDEO ||
		    sub.type == RTMP_MSG_DATA_AMF0)
			handle_media(c, &sub);
		p += 11 + size + 4;
		left -= 11 + (size_t)size + 4;
		if (c->closing)
			return;
	}
}

static void handle_user_control(struct rtmp_conn *c, const struct rtmp_msg *m)
{
	uint16_t event;

	if (m->len < 2) {
		rtmp_conn_close(c, "user control message of %u bytes", m->len);
		return;
	}
	event = (uint16_t)rd_be16(m->data);
	switch (event) {
	case 6: /* ping request: answer with the same timestamp */
		if (m->len >= 6)
			rtmp_conn_send_user_control(c, 7, rd_be32(m->data + 2));
		break;
	case 7: /* ping response */
		c->ping_sent = false;
		break;
	default: /* SetBufferLength and the rest need no answer */
		break;
	}
}

static void handle_message(struct rtmp_conn *c, const struct rtmp_msg *m)
{
	int err;

	switch (m->type) {
	case RTMP_MSG_SET_CHUNK_SIZE:
		if (m->len < 4) {
			rtmp_conn_close(c, "Set Chunk Size message of %u bytes", m->len);
			return;
		}
		err = rtmp_chunk_reader_set_chunk_size(c->rd, rd_be32(m->data));
		if (err < 0)
			rtmp_conn_close(c, "peer Set Chunk Size rejected: %s (limit %u)",
					rtmp_chunk_reader_error(c->rd), c->lim->max_chunk_size);
		return;
	case RTMP_MSG_ABORT:
		if (m->len >= 4)
			rtmp_chunk_reader_abort(c->rd, rd_be32(m->data));
		return;
	case RTMP_MSG_ACK:
	case RTMP_MSG_SET_PEER_BW:
		return;
	case RTMP_MSG_WINDOW_ACK_SIZE:
		if (m->len >= 4)
			c->peer_window = rd_be32(m->data);
		return;
	case RTMP_MSG_USER_CONTROL:
		handle_user_control(c, m);
		return;
	case RTMP_MSG_AUDIO:
	case RTMP_MSG_VIDEO:
	case RTMP_MSG_DATA_AMF0:
	case RTMP_MSG_DATA_AMF3:
		handle_media(c, m);
		return;
	case RTMP_MSG_AGGREGATE:
		handle_aggregate(c, m);
		return;
	case RTMP_MSG_COMMAND_AMF3:
		c->amf3_commands = true;
		/* fall through */
	case RTMP_MSG_COMMAND_AMF0:
		rtmp_cmd_dispatch(c, m);
		return;
	default:
		log_debug(c->sid, "message type %u ignored", m->type);
		return;
	}
}

static void process_policy(struct rtmp_conn *c)
{
	static const char policy[] =
		"<?xml version=\"1.0\"?>"
		"<!DOCTYPE cross-domain-policy SYSTEM \"/xml/dtds/cross-domain-policy.dtd\">"
		"<cross-domain-policy>"
		"<site-control permitted-cross-domain-policies=\"master-only\"/>"
		"<allow-access-from domain=\"*\" to-ports=\"*\"/>"
		"</cross-domain-policy>";
	const uint8_t *nul = memchr(buf_head(&c->in), '\0', buf_used(&c->in));

	if (!nul) {
		if (buf_used(&c->in) > POLICY_MAX)
			rtmp_conn_close(c, "policy request longer than %d bytes", POLICY_MAX);
		return;
	}
	if ((size_t)(nul - buf_head(&c->in)) != strlen(POLICY_REQUEST) ||
	    memcmp(buf_head(&c->in), POLICY_REQUEST, strlen(POLICY_REQUEST)) != 0) {
		rtmp_conn_close(c, "neither RTMP nor a policy file request");
		return;
	}
	buf_reset(&c->in);
	if (buf_append(&c->out, policy, sizeof(policy)) < 0) { /* with its NUL */
		rtmp_conn_close(c, "out of memory");
		return;
	}
	log_info(c->sid, "answered a Flash policy file request");
	rtmp_conn_close_after_flush(c, "policy file sent");
}

static void process_handshake(struct rtmp_conn *c)
{
	size_t used = 0;
	int r = rtmp_hs_feed(c->hs, buf_head(&c->in), buf_used(&c->in), &used, &c->out);

	buf_consume(&c->in, used);
	if (buf_used(&c->out))
		mark_pending(c);
	if (r < 0) {
		rtmp_conn_close(c, "handshake failed: %s", rtmp_hs_error(c->hs));
		return;
	}
	if (r == 0)
		return;
	log_info(c->sid, "handshake done (%s)", rtmp_hs_is_digest(c->hs) ? "digest" : "simple");
	if (enter_session(c) < 0)
		return;
	evloop_timer_start(c->timer, c->lim->idle_timeout_ms / 2);
}

static void process_chunks(struct rtmp_conn *c)
{
	while (!c->closing && !c->close_after_flush) {
		struct rtmp_msg m;
		size_t used = 0;
		int r = rtmp_chunk_read(c->rd, buf_head(&c->in), buf_used(&c->in), &used, &m);

		buf_consume(&c->in, used);
		if (r < 0) {
			rtmp_conn_close(c, "chunk stream error: %s", rtmp_chunk_reader_error(c->rd));
			return;
		}
		if (r == 0)
			return;
		rtmp_server_stats(c->srv)->msgs_in++;
		handle_message(c, &m);
	}
}

static void process_input(struct rtmp_conn *c)
{
	while (!c->closing && !c->close_after_flush && buf_used(&c->in) > 0) {
		enum conn_state before = c->state;

		switch (c->state) {
		case CS_TLS: /* read_input() leaves this state before reading */
			return;
		case CS_START:
			c->state = buf_head(&c->in)[0] == '<' ? CS_POLICY : CS_HANDSHAKE;
			if (c->state == CS_HANDSHAKE && !(c->hs = rtmp_hs_new())) {
				rtmp_conn_close(c, "out of memory");
				return;
			}
			break;
		case CS_POLICY:
			process_policy(c);
			return;
		case CS_HANDSHAKE:
			process_handshake(c);
			break;
		case CS_SESSION:
			process_chunks(c);
			send_ack_if_due(c);
			return;
		}
		if (c->state == before)
			return;
	}
}

/* The result @n of read(2) or write(2): the count, -EAGAIN, or a negative errno with *why set
 * (-EINTR: call again). */
static ssize_t sys_result(ssize_t n, const char **why)
{
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -EAGAIN;
	*why = strerror(errno);
	return -errno;
}

/* Reads what the peer sent, through TLS on an RTMPS connection: the count, 0 when the peer
 * closed, -EAGAIN, or another negative errno with *why set. */
static ssize_t conn_recv(struct rtmp_conn *c, uint8_t *p, size_t len, const char **why)
{
	ssize_t n;

	if (c->tls) {
		n = tls_conn_read(c->tls, p, len);
		if (n < 0 && n != -EAGAIN)
			*why = tls_conn_error(c->tls);
		return n;
	}
	while ((n = sys_result(read(c->fd, p, len), why)) == -EINTR)
		;
	return n;
}

/* Sends what it can of @len bytes: the count, -EAGAIN, or a negative errno with *why set. */
static ssize_t conn_send(struct rtmp_conn *c, const uint8_t *p, size_t len, const char **why)
{
	ssize_t n;

	if (c->tls) {
		n = tls_conn_write(c->tls, p, len);
		if (n < 0 && n != -EAGAIN)
			*why = tls_conn_error(c->tls)[0] ? tls_conn_error(c->tls) : strerror((int)-n);
		return n;
	}
	while ((n = sys_result(write(c->fd, p, len), why)) == -EINTR)
		;
	return n;
}

/* The socket event the input side (@rx) or the output side waits for: TLS may need the other
 * direction's; a plain socket reads when readable and writes when writable. */
static unsigned waits_for(const struct rtmp_conn *c, bool rx)
{
	unsigned ev = c->tls ? tls_conn_wants(c->tls, rx) : 0;

	return ev ? ev : rx ? EV_READ : EV_WRITE;
}

/* Asks the loop for the events the connection waits for now. */
static void watch(struct rtmp_conn *c)
{
	unsigned want = 0;

	if (!c->io)
		return;
	if (!c->close_after_flush)
		want |= waits_for(c, true);
	if (buf_used(&c->out))
		want |= waits_for(c, false);
	evloop_io_set(c->io, want);
}

/* Drives the TLS handshake; true once it is done and RTMP input may be read. */
static bool tls_handshake(struct rtmp_conn *c)
{
	int r;

	if (!c->tls && !(c->tls = tls_conn_new(c->tls_ctx, c->fd))) {
		rtmp_conn_close(c, "out of memory");
		return false;
	}
	r = tls_conn_handshake(c->tls);
	if (r == 0) {
		watch(c);
		return false;
	}
	if (r < 0) {
		rtmp_server_stats(c->srv)->tls_failures++;
		rtmp_conn_close(c, "TLS handshake failed: %s", tls_conn_error(c->tls));
		return false;
	}
	log_debug(c->sid, "TLS handshake done: %s", tls_conn_describe(c->tls));
	c->state = CS_START;
	watch(c);
	return true;
}

/* Decrypted input that TLS holds: readable at once, the socket will not say so again. */
static bool rx_pending(const struct rtmp_conn *c)
{
	return c->tls && tls_conn_pending(c->tls) > 0;
}

static void read_input(struct rtmp_conn *c)
{
	size_t budget = READ_BUDGET;

	if (c->state == CS_TLS && !tls_handshake(c))
		return;
	/* Past the budget only what TLS already decrypted: at most one record (16 KB). */
	while ((budget > 0 || rx_pending(c)) && !c->closing) {
		size_t cap = c->state == CS_SESSION ? c->in_cap : PRE_SESSION_IN;
		const char *why = "";
		size_t room;
		ssize_t n;

		if (buf_used(&c->in) >= cap) {
			/* Cannot happen with a correct reader: a chunk always fits. */
			rtmp_conn_close(c, "input buffer full");
			return;
		}
		room = cap - buf_used(&c->in);
		if (room > READ_ROOM)
			room = READ_ROOM;
		if (buf_reserve(&c->in, room) < 0) {
			rtmp_conn_close(c, "out of memory");
			return;
		}
		n = conn_recv(c, c->in.data + c->in.len, room, &why);
		if (n == 0) {
			rtmp_conn_close(c, "peer closed the connection");
			return;
		}
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			rtmp_conn_close(c, "read failed: %s", why);
			return;
		}
		c->in.len += (size_t)n;
		c->bytes_in += (uint64_t)n;
		rtmp_server_stats(c->srv)->bytes_in += (uint64_t)n;
		c->last_input = evloop_now(c->loop);
		c->ping_sent = false;
		budget -= (size_t)n < budget ? (size_t)n : budget;
		process_input(c);
		if (c->close_after_flush)
			return;
		/* A short read drained the socket: skip the read that would only say EAGAIN. */
		if ((size_t)n < room && !rx_pending(c))
			break;
	}
	/* A buffer grown for one large message is not kept by an idle connection. */
	if (buf_used(&c->in) == 0 && c->in.cap > READ_ROOM)
		buf_free(&c->in);
	if (c->tls && !c->closing)
		watch(c);
}

static void write_output(struct rtmp_conn *c)
{
	while (buf_used(&c->out) > 0) {
		const char *why = "";
		ssize_t n = conn_send(c, buf_head(&c->out), buf_used(&c->out), &why);

		if (n == -EAGAIN)
			break;
		if (n < 0) {
			rtmp_conn_close(c, "write failed: %s", why);
			return;
		}
		buf_consume(&c->out, (size_t)n);
		rtmp_server_stats(c->srv)->bytes_out += (uint64_t)n;
	}
	if (buf_used(&c->out) == 0 && c->close_after_flush) {
		rtmp_conn_close(c, "done");
		return;
	}
	if (buf_used(&c->out) == 0 && c->out.cap > OUT_KEEP)
		buf_free(&c->out);
	watch(c);
}

static void on_io(struct evloop *loop, struct ev_io *io, int fd, unsigned events, void *arg)
{
	struct rtmp_conn *c = arg;

	if (events & waits_for(c, false))
		write_output(c);
	if ((events & waits_for(c, true)) && !c->closing && !c->close_after_flush)
		read_input(c);
	else if ((events & EV_ERROR) && !c->closing)
		rtmp_conn_close(c, "socket error or hang-up");
}

static void on_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct rtmp_conn *c = arg;
	uint64_t idle = evloop_now(loop) - c->last_input;

	if (c->close_after_flush) {
		rtmp_conn_close(c, "peer did not read the final reply in time");
		return;
	}
	if (c->state == CS_TLS) {
		rtmp_server_stats(c->srv)->tls_failures++;
		rtmp_conn_close(c, "TLS handshake not completed within %u s",
				c->lim->handshake_timeout_ms / 1000);
		return;
	}
	if (c->state != CS_SESSION) {
		rtmp_conn_close(c, "handshake not completed within %u s",
				c->lim->handshake_timeout_ms / 1000);
		return;
	}
	if (idle >= c->lim->idle_timeout_ms) {
		rtmp_conn_close(c, "idle for %u s", c->lim->idle_timeout_ms / 1000);
		return;
	}
	if (idle >= c->lim->idle_timeout_ms / 2 && !c->ping_sent) {
		/* A quiet player is asked to prove it is alive; its answer counts as input. */
		rtmp_conn_send_user_control(c, 6, (uint32_t)evloop_now(loop));
		c->ping_sent = true;
	}
	evloop_timer_start(t, idle >= c->lim->idle_timeout_ms / 2
				      ? c->lim->idle_timeout_ms - idle
				      : c->lim->idle_timeout_ms / 2 - idle);
}

void rtmp_conn_flush_pending(struct rtmp_server *srv)
{
	struct rtmp_conn **head = rtmp_server_pending_head(srv);
	struct rtmp_conn *c;

	while ((c = *head) != NULL) {
		*head = c->pnext;
		c->pending = false;
		c->pnext = NULL;
		if (!c->closing)
			write_output(c);
		if (c->closing) {
			const char *why = "";

			/* Best effort: the final bytes (an _error, the policy) go out if they can. */
			if (buf_used(&c->out) > 0 &&
			    conn_send(c, buf_head(&c->out), buf_used(&c->out), &why) < 0)
				log_debug(c->sid, "final write failed: %s", why[0] ? why : "would block");
			if (c->tls)
				tls_conn_shutdown(c->tls);
			rtmp_conn_destroy(&c);
		}
	}
}

int rtmp_conn_send_connect_preamble(struct rtmp_conn *c)
{
	uint8_t bw[5];
	int err;

	err = send_u32_control(c, RTMP_MSG_WINDOW_ACK_SIZE, OUR_WINDOW);
	wr_be32(bw, OUR_WINDOW);
	bw[4] = 2; /* dynamic */
	if (!err)
		err = send_control(c, RTMP_MSG_SET_PEER_BW, bw, sizeof(bw));
	if (!err)
		err = send_u32_control(c, RTMP_MSG_SET_CHUNK_SIZE, OUR_CHUNK_SIZE);
	if (!err)
		rtmp_chunk_writer_set_chunk_size(c->wr, OUR_CHUNK_SIZE);
	return err;
}
