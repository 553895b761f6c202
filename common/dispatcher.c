/*
 * dispatcher.c - signaler side: worker liveness, request/retry/timeout, media.
 *
 * Worker liveness:
 *
 *            add_worker: connect both DEALERs, HELLO on both, hello timer
 *                 |
 *                 v          HELLO_OK / HEARTBEAT                   no heartbeat for
 *   +-------> [ DOWN ] ---------------------------------> [ UP ] ---- timeout_ms ----+
 *   |          HELLO every          (worker_up)            dead timer re-armed on    |
 *   |          hello_interval_ms                           every heartbeat           |
 *   +------------------------------------ (worker_down) <----------------------------+
 *
 *   UP with a HEARTBEAT / HELLO_OK of another instance id: worker_down, then worker_up(restarted).
 *
 * Connection closed (a killed worker: its kernel closes its sockets at once):
 *
 *   ctl DEALER --zmq_socket_monitor--> inproc://dispatcher-mon-<n> --PAIR zsock--> on_ctl_event
 *     ZMQ_EVENT_DISCONNECTED: [ UP ] --(worker_down "connection closed")--> [ DOWN, need_hello ]
 *   [ DOWN, need_hello ] leaves only by a HELLO_OK answering a HELLO sent after the disconnect:
 *   HEARTBEATs (still queued from the old connection, or from a live worker reconnected by
 *   libzmq) and older HELLO_OKs do not bring it up, so one closed connection is one down/up.
 *   The heartbeat timeout stays the fallback for peers that vanish without closing (partition,
 *   host crash, a stopped process).
 *
 * A request:  request() numbers it, keeps a copy, sends, arms its timer
 *               -> reply with its id: unlink, callback (OK / ERROR)     [exactly once]
 *               -> timer, attempts left: resend the copy (RETRY flag), re-arm
 *               -> timer, none left: unlink, callback(-ETIMEDOUT)
 *             A reply for an id no longer pending (answer to an earlier attempt) is counted
 *             and dropped.
 */
#include "dispatcher.h"

#include "curve.h"
#include "log.h"
#include "zsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define DEFAULT_HB_TIMEOUT_MS 1500
#define DEFAULT_HELLO_MS 200
#define DEFAULT_CTL_HWM 1000
#define DEFAULT_MEDIA_HWM 10000
#define LEG_COST_MIN_LEGS 8 /* legs a worker needs for its CPU to enter the cost per leg */
#define DEFAULT_LEG_COST  3.0 /* per mille of a core per leg until measured (transcoding, make bench) */
#define MAX_ENDPOINT 256

struct pending {
	struct pending *prev, *next;
	struct dispatcher_worker *w;
	struct ev_timer *timer;
	uint32_t req_id;
	uint8_t type;
	uint32_t timeout_ms;
	unsigned retries_left;
	dispatcher_reply_cb cb;
	void *arg;
	size_t body_len;
	uint8_t hdr[WIRE_HDR_LEN];
	uint8_t body[]; /* copy of the request body */
};

struct dispatcher_worker {
	struct dispatcher *d;
	struct zsock *ctl, *media;
	struct ev_timer *dead_timer, *hello_timer;
	struct pending *pending; /* list head */
	struct dispatcher_worker *next_grave;
	bool removed;
	bool alive, media_ready, draining;
	bool need_hello;      /* since a disconnect: up only by a HELLO_OK to a newer HELLO */
	uint32_t hello_floor; /* the first HELLO request id sent after that disconnect */
	char ctl_ep[MAX_ENDPOINT], media_ep[MAX_ENDPOINT];
	char server_key[CURVE_KEY_LEN + 1]; /* "" without CURVE */
	char worker_id[WIRE_MAX_ID + 1];
	char host[WIRE_MAX_STR + 1];
	char sw_version[65];
	char name[MAX_ENDPOINT]; /* log session id: worker id once known, else endpoint */
	uint64_t instance_id;
	uint32_t pid, capacity, hb_interval_ms;
	uint32_t legs, recent_legs, last_seq;
	uint16_t cpu_permille;
	uint32_t hello_req_id;
	uint64_t last_hb, up_since, down_since;
	unsigned n_pending;
	uint64_t requests, replies, errors, retries, timeouts, late_replies;
	uint64_t restarts, media_in, media_out, send_drops, disconnects, handshake_failures;
	struct wire_media_batch *batch; /* MEDIA toward this worker, sent once per loop iteration */
	struct dispatcher_worker *next_flush;
	bool flush_queued;
};

struct dispatcher {
	struct evloop *loop;
	struct dispatcher_callbacks cbs;
	const struct curve *curve; /* NULL: plain ZeroMQ */
	char signaler_id[WIRE_MAX_ID + 1];
	char routing_id[WIRE_MAX_ID + 24];
	char sw_version[65];
	uint32_t hb_timeout_ms, hello_ms;
	int ctl_hwm, media_hwm;
	struct dispatcher_worker **workers;
	size_t n_workers, cap_workers;
	size_t rr; /* index of the last pick */
	uint32_t next_req_id;
	struct dispatcher_worker *grave; /* removed workers, freed by the reaper */
	struct ev_timer *reaper;
	struct ev_timer *flush_timer;
	struct dispatcher_worker *flush; /* workers with batched MEDIA */
	struct wire_msg msg;
	struct wire_builder hello;
};

/* --- helpers --- */

static uint32_t next_id(struct dispatcher *d)
{
	if (++d->next_req_id == 0)
		d->next_req_id = 1;
	return d->next_req_id;
}

static int send2(struct dispatcher_worker *w, struct zsock *zs, const void *hdr, const void *body,
		 size_t body_len)
{
	const struct zsock_frame f[2] = {{hdr, WIRE_HDR_LEN}, {body, body_len}};
	int ret = zsock_send(zs, f, 2);

	if (ret < 0)
		w->send_drops++;
	return ret;
}

static void send_hello(struct dispatcher_worker *w, bool ctl, bool media)
{
	struct dispatcher *d = w->d;

	w->hello_req_id = next_id(d);
	wire_builder_init(&d->hello, WIRE_HELLO, w->hello_req_id);
	wire_put_str(&d->hello, WIRE_T_SIGNALER_ID, d->signaler_id);
	wire_put_u32(&d->hello, WIRE_T_PID, (uint32_t)getpid());
	wire_put_str(&d->hello, WIRE_T_SW_VERSION, d->sw_version);
	if (wire_builder_finish(&d->hello) < 0) {
		log_error(w->name, "cannot build HELLO: %s", d->hello.reason);
		return;
	}
	if (ctl)
		send2(w, w->ctl, d->hello.hdr, wire_builder_body(&d->hello),
		      wire_builder_body_len(&d->hello));
	if (media)
		send2(w, w->media, d->hello.hdr, wire_builder_body(&d->hello),
		      wire_builder_body_len(&d->hello));
}

/* --- pending requests --- */

static void pending_unlink(struct pending *p)
{
	struct dispatcher_worker *w = p->w;

	if (p->prev)
		p->prev->next = p->next;
	else
		w->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	w->n_pending--;
	evloop_timer_del(&p->timer);
}

/* Unlinks and frees @p, then calls its callback (so the callback may do anything). */
static void pending_finish(struct pending *p, int status, const struct wire_msg *reply)
{
	struct dispatcher_worker *w = p->w;
	struct dispatcher *d = w->d;
	dispatcher_reply_cb cb = p->cb;
	void *arg = p->arg;

	pending_unlink(p);
	free(p);
	cb(d, w, status, reply, arg);
}

static struct pending *pending_find(struct dispatcher_worker *w, uint32_t req_id)
{
	for (struct pending *p = w->pending; p; p = p->next)
		if (p->req_id == req_id)
			return p;
	return NULL;
}

static void on_request_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct pending *p = arg;
	struct dispatcher_worker *w = p->w;

	(void)loop;
	if (p->retries_left > 0) {
		p->retries_left--;
		w->retries++;
		/* Same request id; the flag only tells the worker's log it is a retry. */
		wr_be16(p->hdr + 4, rd_be16(p->hdr + 4) | WIRE_F_RETRY);
		log_debug(w->name, "%s #%u: no reply in %u ms, resending", wire_type_name(p->type),
			  p->req_id, p->timeout_ms);
		send2(w, w->ctl, p->hdr, p->body, p->body_len);
		evloop_timer_start(t, p->timeout_ms);
		return;
	}
	w->timeouts++;
	log_warn(w->name, "%s #%u: no reply, giving up", wire_type_name(p->type), p->req_id);
	pending_finish(p, -ETIMEDOUT, NULL);
}

int dispatcher_request(struct dispatcher *d, struct dispatcher_worker *w,
		       struct wire_builder *req, uint32_t timeout_ms, unsigned retries,
		       dispatcher_reply_cb cb, void *arg, uint32_t *req_id)
{
	size_t blen;
	struct pending *p;
	int ret;

	if (!w || w->removed)
		return -ENODEV;
	/* HELLO is the dispatcher's own business (its HELLO_OK is not matched by request id). */
	if (!cb || wire_type_kind(req->type) != WIRE_KIND_REQUEST || req->type == WIRE_HELLO ||
	    timeout_ms == 0)
		return -EINVAL;
	req->req_id = next_id(d);
	ret = wire_builder_finish(req);
	if (ret < 0) {
		log_error(w->name, "%s: not sent: %s", wire_type_name(req->type), req->reason);
		return ret;
	}
	blen = wire_builder_body_len(req);
	p = calloc(1, sizeof(*p) + blen);
	if (!p)
		return -ENOMEM;
	p->timer = evloop_timer_new(d->loop, on_request_timer, p);
	if (!p->timer) {
		free(p);
		return -ENOMEM;
	}
	p->w = w;
	p->req_id = req->req_id;
	p->type = req->type;
	p->timeout_ms = timeout_ms;
	p->retries_left = retries;
	p->cb = cb;
	p->arg = arg;
	p->body_len = blen;
	memcpy(p->hdr, req->hdr, WIRE_HDR_LEN);
	memcpy(p->body, wire_builder_body(req), blen);
	p->next = w->pending;
	if (w->pending)
		w->pending->prev = p;
	w->pending = p;
	w->n_pending++;
	w->requests++;
	if (req->type == WIRE_CREATE_LEG || req->type == WIRE_ADOPT_LEG)
		w->recent_legs++;
	/* A failed send (no connection yet, queue full) is what the retries are for. */
	send2(w, w->ctl, p->hdr, p->body, p->body_len);
	evloop_timer_start(p->timer, timeout_ms);
	if (req_id)
		*req_id = p->req_id;
	return 0;
}

int dispatcher_cancel(struct dispatcher *d, uint32_t req_id)
{
	for (size_t i = 0; i < d->n_workers; i++) {
		struct pending *p = pending_find(d->workers[i], req_id);

		if (p) {
			pending_unlink(p);
			free(p);
			return 0;
		}
	}
	return -ENOENT;
}

/* --- liveness --- */

static void set_name(struct dispatcher_worker *w)
{
	snprintf(w->name, sizeof(w->name), "%s", w->worker_id[0] ? w->worker_id : w->ctl_ep);
}

static void go_down(struct dispatcher_worker *w, const char *why)
{
	struct dispatcher *d = w->d;

	if (!w->alive)
		return;
	w->alive = false;
	w->media_ready = false;
	w->down_since = evloop_now(d->loop);
	evloop_timer_stop(w->dead_timer);
	log_warn(w->name, "worker down: %s", why);
	/* Look for it again right away, then every hello interval. */
	evloop_timer_start(w->hello_timer, 0);
	if (d->cbs.worker_down)
		d->cbs.worker_down(d, w, d->cbs.arg);
}

/* A HELLO_OK or HEARTBEAT from instance @instance arrived. */
static void seen_alive(struct dispatcher_worker *w, uint64_t instance)
{
	struct dispatcher *d = w->d;
	bool restarted = w->instance_id != 0 && w->instance_id != instance;

	if (w->removed)
		return;
	w->last_hb = evloop_now(d->loop);
	evloop_timer_start(w->dead_timer, d->hb_timeout_ms);
	if (w->alive && !restarted)
		return;
	if (w->alive) {
		go_down(w, "restarted with a new instance id");
		if (w->removed)
			return;
		w->last_hb = evloop_now(d->loop);
		evloop_timer_start(w->dead_timer, d->hb_timeout_ms);
	}
	if (restarted)
		w->restarts++;
	w->instance_id = instance;
	w->alive = true;
	w->up_since = w->last_hb;
	/* Keep the hello timer running until the media socket has answered too. */
	if (w->media_ready)
		evloop_timer_stop(w->hello_timer);
	log_info(w->name, "worker up: instance %016llx%s", (unsigned long long)instance,
		 restarted ? " (restarted)" : "");
	if (d->cbs.worker_up)
		d->cbs.worker_up(d, w, restarted, d->cbs.arg);
}

static void on_dead_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct dispatcher_worker *w = arg;

	(void)loop, (void)t;
	go_down(w, "no heartbeat");
}

static void on_hello_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct dispatcher_worker *w = arg;

	(void)loop;
	if (w->alive && w->media_ready)
		return;
	send_hello(w, !w->alive, !w->media_ready);
	evloop_timer_start(t, w->d->hello_ms);
}

static void read_identity(struct dispatcher_worker *w, const struct wire_msg *m)
{
	char id[WIRE_MAX_ID + 1];

	if (wire_get_cstr(m, WIRE_T_WORKER_ID, id, sizeof(id)) == 0 && strcmp(id, w->worker_id)) {
		if (w->worker_id[0])
			log_warn(w->name, "worker at %s now calls itself %s", w->ctl_ep, id);
		memcpy(w->worker_id, id, sizeof(id));
		set_name(w);
	}
	wire_get_u32(m, WIRE_T_CAPACITY, &w->capacity);
}

static void on_hello_ok(struct dispatcher_worker *w, const struct wire_msg *m, bool media)
{
	uint64_t instance = 0;

	wire_get_u64(m, WIRE_T_INSTANCE_ID, &instance);
	if (media) {
		/* Answers on the media socket only prove that path works. */
		if (!w->media_ready)
			log_debug(w->name, "media socket ready");
		w->media_ready = true;
		if (w->alive)
			evloop_timer_stop(w->hello_timer);
		return;
	}
	if (w->need_hello) {
		/* Sent before the connection closed: it proves nothing about the new one. */
		if ((int32_t)(m->h.req_id - w->hello_floor) < 0) {
			log_debug(w->name, "HELLO_OK #%u predates the disconnect: ignored",
				  m->h.req_id);
			return;
		}
		w->need_hello = false;
	}
	read_identity(w, m);
	wire_get_u32(m, WIRE_T_PID, &w->pid);
	wire_get_cstr(m, WIRE_T_HOST, w->host, sizeof(w->host));
	wire_get_cstr(m, WIRE_T_SW_VERSION, w->sw_version, sizeof(w->sw_version));
	wire_get_u32(m, WIRE_T_HB_INTERVAL_MS, &w->hb_interval_ms);
	if (w->instance_id && instance != w->instance_id)
		w->media_ready = false; /* a new process: ask its media socket again */
	seen_alive(w, instance);
	if (!w->removed && !w->media_ready && !evloop_timer_armed(w->hello_timer))
		evloop_timer_start(w->hello_timer, 0);
}

static void on_heartbeat(struct dispatcher_worker *w, const struct wire_msg *m)
{
	uint64_t instance = 0;
	uint32_t legs = 0, seq = 0;
	uint16_t cpu = 0;
	bool draining = false;

	wire_get_u64(m, WIRE_T_INSTANCE_ID, &instance);
	wire_get_u32(m, WIRE_T_LEGS, &legs);
	wire_get_u16(m, WIRE_T_CPU_PERMILLE, &cpu);
	wire_get_bool(m, WIRE_T_DRAINING, &draining);
	wire_get_u32(m, WIRE_T_SEQ, &seq);
	read_identity(w, m);
	if (draining != w->draining)
		log_info(w->name, "worker %s draining", draining ? "is" : "is no longer");
	w->legs = legs;
	w->cpu_permille = cpu;
	w->draining = draining;
	w->last_seq = seq;
	w->recent_legs = 0;
	/* After a disconnect only a fresh HELLO_OK brings the worker back (no flapping on a
	 * heartbeat queued before the close). */
	if (!w->need_hello)
		seen_alive(w, instance);
}

/* A CURVE handshake with @w failed: our key refused, or the worker is not the key we hold. */
static void handshake_failed(struct dispatcher_worker *w, struct zsock *zs, unsigned event,
			     uint32_t value)
{
	const char *why = "no detail";

	w->handshake_failures++;
	if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
		why = "the worker refused our key: add our public key to its CURVE_ALLOWED_KEYS";
	else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
		why = "the worker's key is not the one we were given";
	else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
		why = "the worker does not speak CURVE (ZMQ_INSECURE=1 on one side only?)";
	if (zsock_log_ok(zs))
		log_warn(w->name, "CURVE handshake with %s failed: %s (key %s; %llu failures)",
			 w->ctl_ep, why, w->server_key, (unsigned long long)w->handshake_failures);
}

/* The control connection of @w closed (its process died, or TCP was reset): down at once. Its
 * handshake failed: logged. */
static void on_ctl_event(struct zsock *zs, unsigned event, uint32_t value, const char *endpoint,
			 void *arg)
{
	struct dispatcher_worker *w = arg;
	struct dispatcher *d = w->d;

	if (w->removed)
		return;
	if (event != ZMQ_EVENT_DISCONNECTED) {
		handshake_failed(w, zs, event, value);
		return;
	}
	w->disconnects++;
	/* Whatever answers next must answer a HELLO sent from now on. */
	w->need_hello = true;
	w->hello_floor = d->next_req_id + 1;
	if (w->hello_floor == 0) /* next_id() skips 0 */
		w->hello_floor = 1;
	log_debug(w->name, "control connection to %s closed", endpoint);
	go_down(w, "connection closed");
}

/* --- input --- */

/* The worker answered a HELLO on @sock with ERROR (our id bound to another key there, or too
 * many signalers). */
static void hello_refused(struct dispatcher_worker *w, struct zsock *zs, const struct wire_msg *m,
			  const char *sock)
{
	const char *t = "";
	size_t len = 0;

	wire_get_str(m, WIRE_T_ERR_TEXT, &t, &len);
	if (zsock_log_ok(zs))
		log_warn(w->name, "%s HELLO refused: %.*s", sock, (int)len, t);
}

static void on_reply(struct dispatcher_worker *w, const struct wire_msg *m)
{
	struct pending *p = pending_find(w, m->h.req_id);
	struct wire_err e;
	uint32_t code = EIO;

	if (!p) {
		if (m->h.type == WIRE_ERROR && m->h.req_id == w->hello_req_id) {
			hello_refused(w, w->ctl, m, "control");
			return;
		}
		w->late_replies++;
		log_debug(w->name, "%s #%u for no pending request (late or duplicate): dropped",
			  wire_type_name(m->h.type), m->h.req_id);
		return;
	}
	w->replies++;
	if (m->h.type == WIRE_ERROR) {
		w->errors++;
		wire_get_u32(m, WIRE_T_ERR_CODE, &code);
		pending_finish(p, -(int)code, m);
		return;
	}
	if (wire_check_reply(m, p->type, &e) < 0) {
		log_warn(w->name, "%s #%u: bad reply: %s", wire_type_name(p->type), p->req_id,
			 e.reason);
		pending_finish(p, -EBADMSG, NULL);
		return;
	}
	pending_finish(p, 0, m);
}

static void on_ctl(struct zsock *zs, const struct zsock_frame *f, size_t n, void *arg)
{
	struct dispatcher_worker *w = arg;
	struct dispatcher *d = w->d;
	struct wire_msg *m = &d->msg;
	struct wire_err e;

	if (w->removed)
		return;
	if (n != 2) {
		if (zsock_log_ok(zs))
			log_warn(w->name, "control: dropped message of %zu frames", n);
		return;
	}
	if (wire_parse(f[0].data, f[0].len, f[1].data, f[1].len, m, &e) < 0) {
		struct pending *p;

		if (zsock_log_ok(zs))
			log_warn(w->name, "control: bad message: %s", e.reason);
		/* A readable reply to a pending request fails it now rather than at timeout. */
		if (e.can_reply && wire_type_kind(m->h.type) == WIRE_KIND_REPLY &&
		    (p = pending_find(w, m->h.req_id)) != NULL)
			pending_finish(p, -EBADMSG, NULL);
		return;
	}
	switch (m->h.type) {
	case WIRE_HEARTBEAT:
		on_heartbeat(w, m);
		break;
	case WIRE_HELLO_OK:
		on_hello_ok(w, m, false);
		break;
	case WIRE_OK:
	case WIRE_ERROR:
		on_reply(w, m);
		break;
	case WIRE_EVENT:
		if (d->cbs.event)
			d->cbs.event(d, w, m, d->cbs.arg);
		break;
	default:
		if (zsock_log_ok(zs))
			log_warn(w->name, "control: unexpected %s", wire_type_name(m->h.type));
		break;
	}
}

static void on_media(struct zsock *zs, const struct zsock_frame *f, size_t n, void *arg)
{
	struct dispatcher_worker *w = arg;
	struct dispatcher *d = w->d;
	const uint8_t *h = f[0].data;
	struct wire_media md;
	struct wire_err e;

	if (w->removed)
		return;
	if (n != 2) {
		if (zsock_log_ok(zs))
			log_warn(w->name, "media: dropped message of %zu frames", n);
		return;
	}
	if (f[0].len == WIRE_HDR_LEN && h[3] == WIRE_MEDIA_BATCH) {
		size_t off = 0;
		int r = 0;

		while (!w->removed && (r = wire_media_batch_next(f[0].data, f[0].len, f[1].data,
								   f[1].len, &off, &md, &e)) > 0) {
			w->media_in++;
			if (d->cbs.media)
				d->cbs.media(d, w, &md, d->cbs.arg);
		}
		if (r < 0 && zsock_log_ok(zs))
			log_warn(w->name, "media: bad MEDIA_BATCH: %s", e.reason);
		return;
	}
	if (f[0].len == WIRE_HDR_LEN && h[3] == WIRE_MEDIA) {
		if (wire_media_parse(f[0].data, f[0].len, f[1].data, f[1].len, &md, &e) < 0) {
			if (zsock_log_ok(zs))
				log_warn(w->name, "media: bad MEDIA: %s", e.reason);
			return;
		}
		w->media_in++;
		if (d->cbs.media)
			d->cbs.media(d, w, &md, d->cbs.arg);
		return;
	}
	if (wire_parse(f[0].data, f[0].len, f[1].data, f[1].len, &d->msg, &e) < 0) {
		if (zsock_log_ok(zs))
			log_warn(w->name, "media: bad message: %s", e.reason);
		return;
	}
	if (d->msg.h.type == WIRE_HELLO_OK) {
		on_hello_ok(w, &d->msg, true);
	} else if (d->msg.h.type == WIRE_ERROR) {
		hello_refused(w, zs, &d->msg, "media");
	} else if (zsock_log_ok(zs)) {
		log_warn(w->name, "media: unexpected %s", wire_type_name(d->msg.h.type));
	}
}

/* --- workers --- */

static void worker_free(struct dispatcher_worker *w)
{
	free(w->batch);
	zsock_destroy(&w->ctl);
	zsock_destroy(&w->media);
	evloop_timer_del(&w->dead_timer);
	evloop_timer_del(&w->hello_timer);
	free(w);
}

static void on_reaper(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct dispatcher *d = arg;

	(void)loop, (void)t;
	while (d->grave) {
		struct dispatcher_worker *w = d->grave;

		d->grave = w->next_grave;
		free(w->batch);
		free(w);
	}
}

static struct zsock *open_dealer(struct dispatcher *d, struct dispatcher_worker *w, bool media,
				 const char *endpoint)
{
	struct zsock_opts o = {
		.max_frames = 3, /* 2 expected; a third is counted as malformed by us, not zsock */
		.max_frame_size = media ? WIRE_BATCH_MAX_BODY : WIRE_MAX_BODY,
		.sndhwm = media ? d->media_hwm : d->ctl_hwm,
		.rcvhwm = media ? d->media_hwm : d->ctl_hwm,
		.routing_id = d->routing_id,
		.routing_id_len = strlen(d->routing_id),
	};

	if (d->curve) {
		o.curve_secret_key = curve_secret_key(d->curve);
		o.curve_public_key = curve_public_key(d->curve);
		o.curve_server_key = w->server_key;
	}
	char name[MAX_ENDPOINT + 8];
	struct zsock *zs;
	int ret;

	snprintf(name, sizeof(name), "%s/%s", endpoint, media ? "media" : "ctl");
	o.name = name;
	zs = zsock_new(d->loop, ZMQ_DEALER, &o, media ? on_media : on_ctl, w);
	if (!zs)
		return NULL;
	ret = zsock_connect(zs, endpoint);
	if (ret < 0) {
		log_error(d->signaler_id, "cannot connect to %s: %s", endpoint, zmq_strerror(-ret));
		zsock_destroy(&zs);
		errno = -ret;
	}
	return zs;
}

/* Watches @w's control connection. Without it the heartbeat timeout still notices a death. */
static void start_monitor(struct dispatcher_worker *w)
{
	/* inproc names live in the process-wide context: numbered process-wide, never reused. */
	static unsigned long seq;
	char ep[64];
	int ret;

	snprintf(ep, sizeof(ep), "inproc://dispatcher-mon-%lu", ++seq);
	ret = zsock_monitor(w->ctl, ep,
			    ZMQ_EVENT_DISCONNECTED |
				    (w->d->curve ? ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
							   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
							   ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
						 : 0),
			    on_ctl_event, w);
	if (ret < 0)
		log_warn(w->name, "no connection monitor (%s): heartbeat timeout only",
			 zmq_strerror(-ret));
}

int dispatcher_add_worker(struct dispatcher *d, const char *ctl_endpoint,
			  const char *media_endpoint, const char *server_key,
			  struct dispatcher_worker **out)
{
	struct dispatcher_worker *w;

	if (!ctl_endpoint || !media_endpoint || !*ctl_endpoint || !*media_endpoint ||
	    strlen(ctl_endpoint) >= MAX_ENDPOINT || strlen(media_endpoint) >= MAX_ENDPOINT)
		return -EINVAL;
	if (dispatcher_find_endpoint(d, ctl_endpoint))
		return -EEXIST;
	if (d->curve && !curve_allows(d->curve, server_key))
		return -EPERM;
	if (d->n_workers == d->cap_workers) {
		size_t cap = d->cap_workers ? d->cap_workers * 2 : 8;
		struct dispatcher_worker **a = realloc(d->workers, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		d->workers = a;
		d->cap_workers = cap;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->d = d;
	snprintf(w->ctl_ep, sizeof(w->ctl_ep), "%s", ctl_endpoint);
	snprintf(w->media_ep, sizeof(w->media_ep), "%s", media_endpoint);
	if (d->curve)
		snprintf(w->server_key, sizeof(w->server_key), "%s", server_key);
	set_name(w);
	w->dead_timer = evloop_timer_new(d->loop, on_dead_timer, w);
	w->hello_timer = evloop_timer_new(d->loop, on_hello_timer, w);
	if (!w->dead_timer || !w->hello_timer) {
		worker_free(w);
		return -ENOMEM;
	}
	w->ctl = open_dealer(d, w, false, ctl_endpoint);
	w->media = w->ctl ? open_dealer(d, w, true, media_endpoint) : NULL;
	if (!w->media) {
		int e = errno ? errno : ENOMEM;

		worker_free(w);
		return -e;
	}
	start_monitor(w);
	d->workers[d->n_workers++] = w;
	/* The DEALERs use ZMQ_IMMEDIATE: a HELLO before the connection is up is dropped, so the
	 * hello timer repeats it until the worker answers. */
	send_hello(w, true, true);
	evloop_timer_start(w->hello_timer, d->hello_ms);
	log_info(w->name, "worker added: control %s, media %s%s%s", ctl_endpoint, media_endpoint,
		 d->curve ? ", CURVE key " : "", w->server_key);
	if (out)
		*out = w;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* The key of a WORKER_ENDPOINTS entry: @given, or the allowed list's only key. NULL: none
 * (logged). */
static const char *entry_key(struct dispatcher *d, const char *ctl, const char *given)
{
	if (!d->curve)
		return NULL;
	if (given)
		return given;
	if (curve_allowed_count(d->curve) == 1)
		return curve_allowed_key(d->curve, 0);
	log_error(d->signaler_id, "worker list: \"%s\" names no CURVE key and the allowed list "
				  "holds %zu: write \"ctl,media,key\"",
		  ctl, curve_allowed_count(d->curve));
	return NULL;
}

int dispatcher_add_workers(struct dispatcher *d, const char *list)
{
	char entry[3 * MAX_ENDPOINT + 3];
	const char *p = list;
	int added = 0;

	if (!list)
		return -EINVAL;
	while (*p) {
		size_t n = strcspn(p, ";");
		char *ctl, *media, *key = NULL, *comma;
		const char *k;
		int ret;

		if (n >= sizeof(entry)) {
			log_error(d->signaler_id, "worker list: entry too long");
			return -EINVAL;
		}
		memcpy(entry, p, n);
		entry[n] = '\0';
		p += n + (p[n] == ';');
		ctl = trim(entry);
		if (!*ctl)
			continue;
		comma = strchr(ctl, ',');
		if (comma && strchr(comma + 1, ',')) {
			key = strchr(comma + 1, ',');
			*key++ = '\0';
			key = trim(key);
		}
		if (!comma || (key && (strchr(key, ',') || !curve_key_valid(key)))) {
			log_error(d->signaler_id, "worker list: \"%s\" is not \"ctl,media[,key]\" (a "
						  "key is 40 Z85 characters)",
				  ctl);
			return -EINVAL;
		}
		*comma = '\0';
		ctl = trim(ctl);
		media = trim(comma + 1);
		k = entry_key(d, ctl, key);
		if (d->curve && !k)
			return -EINVAL;
		ret = dispatcher_add_worker(d, ctl, media, k, NULL);
		if (ret == -EPERM)
			log_error(d->signaler_id, "worker list: %s: key %s is not in the allowed list",
				  ctl, k);
		if (ret == 0)
			added++;
		else if (ret != -EEXIST)
			return ret;
	}
	return added;
}

void dispatcher_remove_worker(struct dispatcher *d, struct dispatcher_worker *w)
{
	size_t i;

	if (!w || w->removed)
		return;
	for (i = 0; i < d->n_workers && d->workers[i] != w; i++)
		;
	if (i == d->n_workers)
		return;
	memmove(&d->workers[i], &d->workers[i + 1], (d->n_workers - i - 1) * sizeof(*d->workers));
	d->n_workers--;
	w->removed = true;
	w->alive = false;
	if (w->flush_queued) {
		struct dispatcher_worker **pp = &d->flush;

		while (*pp && *pp != w)
			pp = &(*pp)->next_flush;
		if (*pp)
			*pp = w->next_flush;
		w->flush_queued = false;
	}
	log_info(w->name, "worker removed");
	zsock_destroy(&w->ctl);
	zsock_destroy(&w->media);
	evloop_timer_del(&w->dead_timer);
	evloop_timer_del(&w->hello_timer);
	while (w->pending)
		pending_finish(w->pending, -ECANCELED, NULL);
	/* Callers may still hold @w in this iteration: free it from a timer. */
	w->next_grave = d->grave;
	d->grave = w;
	evloop_timer_start(d->reaper, 0);
}

struct dispatcher_worker *dispatcher_pick(struct dispatcher *d)
{
	struct dispatcher_worker *best = NULL;
	uint64_t best_score = 0, best_legs = 0;
	size_t best_i = 0;
	uint64_t cpu_sum = 0, legs_sum = 0;
	double cost;

	/*
	 * The cost of a leg, pooled over the workers that carry enough legs to tell: one figure
	 * for all, so that a worker's fixed overhead spread over few legs does not make it look
	 * dear (and the busiest worker cheap), nor a worker held at its CPU limit look cheap.
	 */
	for (size_t i = 0; i < d->n_workers; i++) {
		const struct dispatcher_worker *w = d->workers[i];

		if (w->alive && w->legs >= LEG_COST_MIN_LEGS && w->cpu_permille > 0) {
			cpu_sum += w->cpu_permille;
			legs_sum += w->legs;
		}
	}
	cost = legs_sum ? (double)cpu_sum / (double)legs_sum : DEFAULT_LEG_COST;
	for (size_t k = 0; k < d->n_workers; k++) {
		size_t i = (d->rr + 1 + k) % d->n_workers;
		struct dispatcher_worker *w = d->workers[i];
		uint64_t legs = (uint64_t)w->legs + w->recent_legs, score = w->cpu_permille;

		if (!w->alive || w->draining || (w->capacity && legs >= w->capacity))
			continue;
		/* The CPU figure lags (sampled each second, and a leg costs little until its call
		 * is answered): legs at the pooled cost count a burst of new legs at once, and
		 * CPU above that marks a slower or busier host. */
		if ((uint64_t)((double)legs * cost) > score)
			score = (uint64_t)((double)legs * cost);
		if (w->capacity && legs * 1000 / w->capacity > score)
			score = legs * 1000 / w->capacity;
		if (!best || score < best_score || (score == best_score && legs < best_legs)) {
			best = w;
			best_score = score;
			best_legs = legs;
			best_i = i;
		}
	}
	if (best)
		d->rr = best_i;
	return best;
}

/* Sends @w's batched frames. */
static void flush_worker(struct dispatcher_worker *w)
{
	struct wire_media_batch *b = w->batch;

	if (!b || b->n == 0)
		return;
	if (!w->removed && w->alive) {
		wire_media_batch_finish(b, (uint32_t)wire_mono_ms());
		if (send2(w, w->media, b->hdr, b->body, b->len) == 0)
			w->media_out += b->n;
	}
	wire_media_batch_reset(b);
}

static void on_flush_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct dispatcher *d = arg;

	while (d->flush) {
		struct dispatcher_worker *w = d->flush;

		d->flush = w->next_flush;
		w->flush_queued = false;
		flush_worker(w);
	}
}

int dispatcher_send_media(struct dispatcher *d, struct dispatcher_worker *w, const char *leg_id,
			  uint32_t ts, uint8_t flags, const void *payload, size_t len)
{
	int ret;

	if (!w || !w->alive || w->removed)
		return -ENOTCONN;
	if (!w->batch) {
		w->batch = calloc(1, sizeof(*w->batch));
		if (!w->batch)
			return -ENOMEM;
	}
	ret = wire_media_batch_add(w->batch, leg_id, ts, flags, payload, len);
	if (ret == -ENOSPC) {
		flush_worker(w);
		ret = wire_media_batch_add(w->batch, leg_id, ts, flags, payload, len);
	}
	if (ret < 0)
		return ret;
	/* Frames queued during one loop iteration leave as one message per worker. */
	if (!w->flush_queued) {
		w->flush_queued = true;
		w->next_flush = d->flush;
		d->flush = w;
	}
	if (!evloop_timer_armed(d->flush_timer))
		evloop_timer_start(d->flush_timer, 0);
	return 0;
}

/* --- life cycle and accessors --- */

struct dispatcher *dispatcher_new(struct evloop *loop, const char *signaler_id,
				  const struct dispatcher_callbacks *cbs,
				  const struct dispatcher_config *cfg)
{
	static const struct dispatcher_config defaults;
	struct dispatcher *d;
	uint64_t nonce = 0;

	if (!cfg)
		cfg = &defaults;
	if (!signaler_id || !wire_id_valid(signaler_id, strlen(signaler_id))) {
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->loop = loop;
	if (cbs)
		d->cbs = *cbs;
	d->curve = curve_enabled(cfg->curve) ? cfg->curve : NULL;
	snprintf(d->signaler_id, sizeof(d->signaler_id), "%s", signaler_id);
	snprintf(d->sw_version, sizeof(d->sw_version), "%s",
		 cfg->sw_version ? cfg->sw_version : "rtmp2sip");
	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != (ssize_t)sizeof(nonce))
		nonce = (uint64_t)time(NULL) << 32 ^ (uint64_t)getpid() << 12 ^ (uint64_t)clock();
	/* Stable across reconnects of this process, different after a restart; 64 random bits,
	 * never logged nor stored: another signaler cannot take it over (ROUTER_HANDOVER). */
	snprintf(d->routing_id, sizeof(d->routing_id), "%s/%016llx", signaler_id,
		 (unsigned long long)nonce);
	d->hb_timeout_ms = cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms
						     : DEFAULT_HB_TIMEOUT_MS;
	d->hello_ms = cfg->hello_interval_ms ? cfg->hello_interval_ms : DEFAULT_HELLO_MS;
	d->ctl_hwm = cfg->ctl_hwm > 0 ? cfg->ctl_hwm : DEFAULT_CTL_HWM;
	d->media_hwm = cfg->media_hwm > 0 ? cfg->media_hwm : DEFAULT_MEDIA_HWM;
	d->next_req_id = (uint32_t)nonce & 0xffff; /* ids of different runs rarely collide in logs */
	d->reaper = evloop_timer_new(loop, on_reaper, d);
	d->flush_timer = evloop_timer_new(loop, on_flush_timer, d);
	if (!d->reaper || !d->flush_timer) {
		evloop_timer_del(&d->reaper);
		evloop_timer_del(&d->flush_timer);
		free(d);
		return NULL;
	}
	return d;
}

void dispatcher_destroy(struct dispatcher **dp)
{
	struct dispatcher *d = dp ? *dp : NULL;

	if (!d)
		return;
	*dp = NULL;
	d->flush = NULL;
	for (size_t i = 0; i < d->n_workers; i++) {
		struct dispatcher_worker *w = d->workers[i];

		while (w->pending) {
			struct pending *p = w->pending;
			dispatcher_reply_cb cb = p->cb;
			void *arg = p->arg;

			pending_unlink(p);
			free(p);
			cb(d, NULL, -ECANCELED, NULL, arg);
		}
		worker_free(w);
	}
	on_reaper(d->loop, d->reaper, d);
	evloop_timer_del(&d->reaper);
	evloop_timer_del(&d->flush_timer);
	wire_builder_free(&d->hello);
	free(d->workers);
	free(d);
}

const char *dispatcher_signaler_id(const struct dispatcher *d)
{
	return d->signaler_id;
}

size_t dispatcher_worker_count(const struct dispatcher *d)
{
	return d->n_workers;
}

struct dispatcher_worker *dispatcher_worker_at(const struct dispatcher *d, size_t i)
{
	return i < d->n_workers ? d->workers[i] : NULL;
}

struct dispatcher_worker *dispatcher_find_worker(const struct dispatcher *d, const char *worker_id)
{
	for (size_t i = 0; i < d->n_workers; i++)
		if (strcmp(d->workers[i]->worker_id, worker_id) == 0)
			return d->workers[i];
	return NULL;
}

struct dispatcher_worker *dispatcher_find_endpoint(const struct dispatcher *d,
						   const char *ctl_endpoint)
{
	for (size_t i = 0; i < d->n_workers; i++)
		if (strcmp(d->workers[i]->ctl_ep, ctl_endpoint) == 0)
			return d->workers[i];
	return NULL;
}

bool dispatcher_worker_alive(const struct dispatcher_worker *w)
{
	return w->alive;
}

void dispatcher_worker_info(const struct dispatcher_worker *w, struct dispatcher_worker_info *out)
{
	*out = (struct dispatcher_worker_info){
		.ctl_endpoint = w->ctl_ep,
		.media_endpoint = w->media_ep,
		.server_key = w->server_key,
		.worker_id = w->worker_id,
		.host = w->host,
		.sw_version = w->sw_version,
		.instance_id = w->instance_id,
		.pid = w->pid,
		.capacity = w->capacity,
		.hb_interval_ms = w->hb_interval_ms,
		.alive = w->alive,
		.media_ready = w->media_ready,
		.draining = w->draining,
		.legs = w->legs,
		.recent_legs = w->recent_legs,
		.cpu_permille = w->cpu_permille,
		.last_seq = w->last_seq,
		.last_heartbeat_ms = w->last_hb,
		.up_since_ms = w->up_since,
		.down_since_ms = w->down_since,
		.pending = w->n_pending,
		.requests = w->requests,
		.replies = w->replies,
		.errors = w->errors,
		.retries = w->retries,
		.timeouts = w->timeouts,
		.late_replies = w->late_replies,
		.restarts = w->restarts,
		.media_in = w->media_in,
		.media_out = w->media_out,
		.send_drops = w->send_drops,
		.disconnects = w->disconnects,
		.handshake_failures = w->handshake_failures,
	};
}
