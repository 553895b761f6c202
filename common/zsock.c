/*
 * zsock.c - libzmq sockets on the evloop.
 *
 *   ZMQ_FD readable ----+
 *                       +--> drain: while ZMQ_EVENTS & POLLIN and budget left:
 *   recheck timer  -----+          receive all frames of one message (atomic in libzmq)
 *     (armed for "now" after        -> too many / too large frames: drop, count, log (rate-limited)
 *      every send, and when a        -> else callback(frames)
 *      drain used up its budget)   budget used up -> re-arm the recheck timer
 *
 * Why a timer and not a before-sleep hook: evloop hooks cannot be removed and are limited to 8
 * per loop, while sockets come and go (one DEALER pair per worker in each signaler). A timer
 * armed for 0 ms fires at the end of the current iteration, which is where a hook would run.
 * If a socket keeps re-arming it within one millisecond (a flood answered message by message),
 * it waits 1 ms instead, so other descriptors are served.
 *
 * Frames are received into zmq_msg_t slots owned by the socket: no allocation per message
 * beyond libzmq's own.
 *
 * A monitor (zsock_monitor) is one more zsock: a PAIR connected to the inproc endpoint where
 * libzmq's own monitor PAIR publishes the socket's events, so it is read exactly like the others.
 * It belongs to the monitored socket: zsock_destroy() stops libzmq's monitor and destroys the
 * PAIR at once (even when the close of the monitored socket itself is deferred), so no event is
 * delivered for a dead socket and both descriptors go with it.
 */
#include "zsock.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define DEFAULT_MAX_FRAMES 4
#define ZSOCK_WIRE_MARGIN 256 /* CURVE framing over a frame's payload, with room */
#define DEFAULT_MAX_FRAME_SIZE 65536
#define DEFAULT_HWM 1000
#define DEFAULT_BUDGET 256
#define STREAK_MAX 4
#define MON_EVENT_LEN 6 /* u16 event + u32 value, native byte order */
#define MON_MAX_ENDPOINT 1024

struct zsock {
	struct evloop *loop;
	void *sock;
	struct ev_io *io;
	struct ev_timer *recheck;
	zsock_recv_cb cb;
	void *arg;
	char name[64];
	char endpoint[256];
	size_t max_frames;
	size_t max_frame_size;
	unsigned budget;
	unsigned in_drain; /* > 0 while the callback may run: destroy is deferred */
	bool dead;
	uint64_t streak_now; /* loop time of the current recheck streak */
	unsigned streak;
	struct log_limit log_limit; /* of the lines peers cause */
	struct zsock_stats st;
	struct zsock *mon; /* the PAIR reading this socket's monitor, NULL: none */
	zsock_event_cb ev_cb;
	void *ev_arg;
	const char *user_id; /* of the message in the callback (zmq_msg_gets), else NULL */
	zmq_msg_t msgs[ZSOCK_MAX_FRAMES];
	struct zsock_frame frames[ZSOCK_MAX_FRAMES];
};

static void *g_ctx;
static unsigned g_open;

void *zsock_context(void)
{
	if (!g_ctx) {
		g_ctx = zmq_ctx_new();
		if (!g_ctx)
			return NULL;
		zmq_ctx_set(g_ctx, ZMQ_IO_THREADS, 1);
		zmq_ctx_set(g_ctx, ZMQ_BLOCKY, 0);
	}
	return g_ctx;
}

void zsock_context_term(void)
{
	if (g_ctx && g_open == 0) {
		zmq_ctx_term(g_ctx);
		g_ctx = NULL;
	}
}

static void set_int(struct zsock *zs, int opt, int v, const char *what)
{
	if (zmq_setsockopt(zs->sock, opt, &v, sizeof(v)) < 0)
		log_warn(zs->name, "zmq_setsockopt(%s): %s", what, zmq_strerror(errno));
}

/* Sets CURVE key option @opt (@what for the log); a refusal fails the socket. */
static int set_key(struct zsock *zs, int opt, const char *key, const char *what)
{
	if (strlen(key) == 40 && zmq_setsockopt(zs->sock, opt, key, 40) == 0)
		return 0;
	log_error(zs->name, "CURVE: %s refused: %s", what,
		  strlen(key) == 40 ? zmq_strerror(errno) : "not 40 Z85 characters");
	errno = EINVAL;
	return -1;
}

/* The CURVE role of @o's keys: server (secret alone), client (all three) or none. */
static int set_curve(struct zsock *zs, const struct zsock_opts *o)
{
	static const char domain[] = "rtmp2sip";
	int one = 1;

	if (!o->curve_secret_key && !o->curve_public_key && !o->curve_server_key)
		return 0;
	if (!o->curve_secret_key || !o->curve_public_key != !o->curve_server_key) {
		log_error(zs->name, "CURVE: a secret key alone (server), or with the public key and "
				    "the server's (client)");
		errno = EINVAL;
		return -1;
	}
	if (o->curve_server_key)
		return set_key(zs, ZMQ_CURVE_SERVERKEY, o->curve_server_key, "server key") < 0 ||
			       set_key(zs, ZMQ_CURVE_PUBLICKEY, o->curve_public_key, "public key") < 0
			   ? -1
			   : set_key(zs, ZMQ_CURVE_SECRETKEY, o->curve_secret_key, "secret key");
	if (zmq_setsockopt(zs->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(zs->sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) < 0) {
		log_error(zs->name, "CURVE: server options refused: %s", zmq_strerror(errno));
		errno = EINVAL;
		return -1;
	}
	return set_key(zs, ZMQ_CURVE_SECRETKEY, o->curve_secret_key, "secret key");
}

static void arm_recheck(struct zsock *zs)
{
	if (zs->dead || evloop_timer_armed(zs->recheck))
		return;
	evloop_timer_start(zs->recheck, 0);
}

bool zsock_log_ok(struct zsock *zs)
{
	return log_limit_ok(&zs->log_limit, evloop_now(zs->loop), zs->name);
}

/* Stops libzmq's monitor of @zs and destroys the PAIR reading it (deferred if inside its drain). */
static void mon_stop(struct zsock *zs)
{
	if (!zs->mon)
		return;
	if (zmq_socket_monitor(zs->sock, NULL, 0) < 0)
		log_warn(zs->name, "cannot stop the monitor: %s", zmq_strerror(errno));
	zsock_destroy(&zs->mon);
}

static void free_sock(struct zsock *zs)
{
	mon_stop(zs);
	evloop_io_del(&zs->io);
	evloop_timer_del(&zs->recheck);
	zmq_close(zs->sock);
	g_open--;
	free(zs);
}

/* Receives one whole message. Returns false when nothing was there. */
static bool recv_one(struct zsock *zs)
{
	const char *why = NULL;
	size_t nf = 0, parts = 0, big = 0;
	zmq_msg_t scratch;
	int more;

	for (;;) {
		zmq_msg_t *msg = nf < zs->max_frames ? &zs->msgs[nf] : &scratch;

		zmq_msg_init(msg);
		if (zmq_msg_recv(msg, zs->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(msg);
			if (parts == 0)
				return false;
			/* Cannot happen (delivery is atomic); treat the message as broken. */
			why = "truncated multipart message";
			break;
		}
		parts++;
		more = zmq_msg_more(msg);
		if (nf < zs->max_frames) {
			if (zmq_msg_size(msg) > zs->max_frame_size && !big)
				big = zmq_msg_size(msg);
			nf++;
		} else {
			zmq_msg_close(msg);
		}
		if (!more)
			break;
	}
	if (!why && parts > zs->max_frames)
		why = "too many frames";
	if (!why && big)
		why = "frame too large";
	if (why) {
		zs->st.rx_dropped++;
		if (zsock_log_ok(zs))
			log_warn(zs->name, "dropped message: %s (%zu frames, largest checked %zu bytes)",
				 why, parts, big);
	} else {
		for (size_t i = 0; i < nf; i++) {
			zs->frames[i].data = zmq_msg_data(&zs->msgs[i]);
			zs->frames[i].len = zmq_msg_size(&zs->msgs[i]);
		}
		/* Every frame of a message carries its connection's metadata (a ROUTER's routing id
		 * frame included); the first one that has a User-Id names the peer. */
		for (size_t i = 0; i < nf && !zs->user_id; i++)
			zs->user_id = zmq_msg_gets(&zs->msgs[i], "User-Id");
		zs->st.rx_msgs++;
		zs->cb(zs, zs->frames, nf, zs->arg);
		zs->user_id = NULL;
	}
	for (size_t i = 0; i < nf; i++)
		zmq_msg_close(&zs->msgs[i]);
	return true;
}

/* Receives while ZMQ_EVENTS says readable, at most budget messages, then yields. */
static void drain(struct zsock *zs)
{
	unsigned n = 0;

	zs->in_drain++;
	while (!zs->dead) {
		int events = 0;
		size_t sz = sizeof(events);

		if (zmq_getsockopt(zs->sock, ZMQ_EVENTS, &events, &sz) < 0) {
			if (zsock_log_ok(zs))
				log_error(zs->name, "ZMQ_EVENTS: %s", zmq_strerror(errno));
			break;
		}
		if (!(events & ZMQ_POLLIN))
			break;
		if (n++ == zs->budget) {
			arm_recheck(zs);
			break;
		}
		if (!recv_one(zs))
			break;
	}
	if (--zs->in_drain == 0 && zs->dead)
		free_sock(zs);
}

static void on_io(struct evloop *loop, struct ev_io *io, int fd, unsigned events, void *arg)
{
	(void)loop, (void)io, (void)fd, (void)events;
	drain(arg);
}

static void on_recheck(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct zsock *zs = arg;
	uint64_t now = evloop_now(loop);

	(void)t;
	/* A timer re-armed for "now" from its own callback fires again in the same iteration:
	 * after a few rounds in one millisecond, wait one so other descriptors are served. */
	if (now != zs->streak_now) {
		zs->streak_now = now;
		zs->streak = 0;
	}
	if (++zs->streak > STREAK_MAX) {
		evloop_timer_start(zs->recheck, 1);
		return;
	}
	drain(zs);
}

struct zsock *zsock_new(struct evloop *loop, int type, const struct zsock_opts *opts,
			zsock_recv_cb cb, void *arg)
{
	static const struct zsock_opts defaults;
	const struct zsock_opts *o = opts ? opts : &defaults;
	void *ctx = zsock_context();
	struct zsock *zs;
	size_t sz;
	int fd = -1;

	if (!ctx)
		return NULL;
	if (o->max_frames > ZSOCK_MAX_FRAMES || o->routing_id_len > 255 ||
	    (o->routing_id && (o->routing_id_len == 0 || ((const uint8_t *)o->routing_id)[0] == 0))) {
		errno = EINVAL;
		return NULL;
	}
	zs = calloc(1, sizeof(*zs));
	if (!zs)
		return NULL;
	zs->loop = loop;
	zs->cb = cb;
	zs->arg = arg;
	snprintf(zs->name, sizeof(zs->name), "%s", o->name ? o->name : "zsock");
	zs->max_frames = o->max_frames ? o->max_frames : DEFAULT_MAX_FRAMES;
	zs->max_frame_size = o->max_frame_size ? o->max_frame_size : DEFAULT_MAX_FRAME_SIZE;
	zs->budget = o->budget ? o->budget : DEFAULT_BUDGET;
	zs->sock = zmq_socket(ctx, type);
	if (!zs->sock)
		goto out_free;
	g_open++;
	set_int(zs, ZMQ_LINGER, 0, "LINGER");
	set_int(zs, ZMQ_SNDHWM, o->sndhwm > 0 ? o->sndhwm : DEFAULT_HWM, "SNDHWM");
	set_int(zs, ZMQ_RCVHWM, o->rcvhwm > 0 ? o->rcvhwm : DEFAULT_HWM, "RCVHWM");
	{
		/* libzmq checks this against the frame on the wire, which under CURVE is the
		 * encrypted MESSAGE command: the payload plus its command name, flags, nonce and MAC
		 * (33 bytes). Without the margin, every full-size frame (a MEDIA_BATCH of a few
		 * hundred legs) broke the connection, and a loaded worker lost all its media. Our own
		 * bound on the payload is checked on receipt (max_frame_size). */
		int64_t max = (int64_t)zs->max_frame_size + ZSOCK_WIRE_MARGIN;

		if (zmq_setsockopt(zs->sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) < 0)
			log_warn(zs->name, "zmq_setsockopt(MAXMSGSIZE): %s", zmq_strerror(errno));
	}
	set_int(zs, ZMQ_TCP_KEEPALIVE, 1, "TCP_KEEPALIVE");
	set_int(zs, ZMQ_TCP_KEEPALIVE_IDLE, 10, "TCP_KEEPALIVE_IDLE");
	set_int(zs, ZMQ_TCP_KEEPALIVE_INTVL, 5, "TCP_KEEPALIVE_INTVL");
	set_int(zs, ZMQ_TCP_KEEPALIVE_CNT, 3, "TCP_KEEPALIVE_CNT");
	set_int(zs, ZMQ_RECONNECT_IVL, 100, "RECONNECT_IVL");
	set_int(zs, ZMQ_RECONNECT_IVL_MAX, 1000, "RECONNECT_IVL_MAX");
	set_int(zs, ZMQ_HEARTBEAT_IVL, 1000, "HEARTBEAT_IVL");
	set_int(zs, ZMQ_HEARTBEAT_TIMEOUT, 3000, "HEARTBEAT_TIMEOUT");
	if (type == ZMQ_ROUTER) {
		set_int(zs, ZMQ_ROUTER_MANDATORY, 1, "ROUTER_MANDATORY");
		set_int(zs, ZMQ_ROUTER_HANDOVER, 1, "ROUTER_HANDOVER");
	}
	if (set_curve(zs, o) < 0)
		goto out_close;
	if (type == ZMQ_DEALER) {
		set_int(zs, ZMQ_IMMEDIATE, 1, "IMMEDIATE");
		if (o->routing_id &&
		    zmq_setsockopt(zs->sock, ZMQ_ROUTING_ID, o->routing_id, o->routing_id_len) < 0)
			goto out_close;
	}
	sz = sizeof(fd);
	if (zmq_getsockopt(zs->sock, ZMQ_FD, &fd, &sz) < 0)
		goto out_close;
	zs->recheck = evloop_timer_new(loop, on_recheck, zs);
	if (!zs->recheck)
		goto out_close;
	zs->io = evloop_io_add(loop, fd, EV_READ, on_io, zs);
	if (!zs->io)
		goto out_timer;
	arm_recheck(zs);
	return zs;

out_timer:
	evloop_timer_del(&zs->recheck);
out_close: {
	int e = errno;

	zmq_close(zs->sock);
	g_open--;
	errno = e;
}
out_free: {
	int e = errno;

	free(zs);
	errno = e;
}
	return NULL;
}

void zsock_destroy(struct zsock **zsp)
{
	struct zsock *zs = zsp ? *zsp : NULL;

	if (!zs)
		return;
	*zsp = NULL;
	if (zs->dead)
		return;
	zs->dead = true;
	mon_stop(zs);
	if (zs->in_drain) {
		/* Inside our own drain: stop watching now, free when the drain unwinds. */
		evloop_io_del(&zs->io);
		evloop_timer_stop(zs->recheck);
		return;
	}
	free_sock(zs);
}

static void save_endpoint(struct zsock *zs)
{
	size_t sz = sizeof(zs->endpoint);

	if (zmq_getsockopt(zs->sock, ZMQ_LAST_ENDPOINT, zs->endpoint, &sz) < 0)
		zs->endpoint[0] = '\0';
	zs->endpoint[sizeof(zs->endpoint) - 1] = '\0';
}

int zsock_bind(struct zsock *zs, const char *endpoint)
{
	if (zmq_bind(zs->sock, endpoint) < 0)
		return -errno;
	save_endpoint(zs);
	return 0;
}

int zsock_connect(struct zsock *zs, const char *endpoint)
{
	if (zmq_connect(zs->sock, endpoint) < 0)
		return -errno;
	save_endpoint(zs);
	arm_recheck(zs);
	return 0;
}

const char *zsock_endpoint(const struct zsock *zs)
{
	return zs->endpoint;
}

int zsock_send(struct zsock *zs, const struct zsock_frame *frames, size_t n)
{
	int ret = 0;

	if (n == 0 || zs->dead)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);
		const void *data = frames[i].data ? frames[i].data : "";

		if (zmq_send(zs->sock, data, frames[i].len, flags) < 0) {
			ret = -errno;
			if (i > 0) {
				/* libzmq accepts the rest of a message once its first part is in. */
				zs->st.tx_errors++;
				log_error(zs->name, "send failed after %zu of %zu frames: %s", i, n,
					  zmq_strerror(-ret));
			} else if (ret == -EAGAIN) {
				zs->st.tx_again++;
			} else if (ret == -EHOSTUNREACH) {
				zs->st.tx_unreachable++;
			} else {
				zs->st.tx_errors++;
			}
			break;
		}
	}
	if (ret == 0)
		zs->st.tx_msgs++;
	/* The send may have consumed the ZMQ_FD edge: look again at the end of this iteration. */
	arm_recheck(zs);
	return ret;
}

void zsock_get_stats(const struct zsock *zs, struct zsock_stats *st)
{
	*st = zs->st;
}

const char *zsock_name(const struct zsock *zs)
{
	return zs->name;
}

const char *zsock_user_id(const struct zsock *zs)
{
	return zs->user_id;
}

void *zsock_handle(struct zsock *zs)
{
	return zs->sock;
}

/* One monitor message: [event u16 | value u32] [endpoint]. */
static void on_monitor_msg(struct zsock *mon, const struct zsock_frame *f, size_t n, void *arg)
{
	struct zsock *zs = arg;
	char endpoint[256];
	uint16_t event;
	uint32_t value;
	size_t len;

	/* mon_stop() destroys this PAIR before @zs goes: @zs is valid here. */
	if (zs->dead)
		return;
	if (n != 2 || f[0].len != MON_EVENT_LEN) {
		if (zsock_log_ok(mon))
			log_warn(mon->name, "dropped monitor message of %zu frames", n);
		return;
	}
	memcpy(&event, f[0].data, sizeof(event));
	memcpy(&value, (const uint8_t *)f[0].data + sizeof(event), sizeof(value));
	len = f[1].len < sizeof(endpoint) ? f[1].len : sizeof(endpoint) - 1;
	if (len)
		memcpy(endpoint, f[1].data, len);
	endpoint[len] = '\0';
	zs->ev_cb(zs, event, value, endpoint, zs->ev_arg);
}

int zsock_monitor(struct zsock *zs, const char *inproc, int events, zsock_event_cb cb, void *arg)
{
	char name[sizeof(zs->name) + 8];
	struct zsock_opts o = {
		.max_frames = 2,
		.max_frame_size = MON_MAX_ENDPOINT,
	};
	int ret;

	if (!cb || !inproc || strncmp(inproc, "inproc://", 9) != 0 || !inproc[9] || zs->dead)
		return -EINVAL;
	if (zs->mon)
		return -EBUSY;
	snprintf(name, sizeof(name), "%s/mon", zs->name);
	o.name = name;
	if (zmq_socket_monitor(zs->sock, inproc, events) < 0)
		return -errno;
	zs->mon = zsock_new(zs->loop, ZMQ_PAIR, &o, on_monitor_msg, zs);
	if (!zs->mon) {
		ret = -errno;
		goto out_stop;
	}
	ret = zsock_connect(zs->mon, inproc);
	if (ret < 0)
		goto out_destroy;
	zs->ev_cb = cb;
	zs->ev_arg = arg;
	return 0;

out_destroy:
	zsock_destroy(&zs->mon);
out_stop:
	zmq_socket_monitor(zs->sock, NULL, 0);
	return ret;
}
