/*
 * ctl_server.c - the worker side of the control and media sockets.
 *
 * A request on the control ROUTER:
 *
 *   [rid][hdr][body] --3 frames?--> wire_parse --error--> request? ERROR reply : drop, log
 *        |                              |
 *        drop, log                      HELLO -> remember signaler, HELLO_OK
 *                                       request -> reply cache (rid, req id):
 *                                            answered  -> resend the cached reply
 *                                            in progress -> ignore
 *                                            new       -> mark in progress, handler table
 *                                                         (no entry: ERROR ENOTSUP)
 *   handler -> ctl_server_reply[_error] -> cache the reply, send it
 *
 * The media ROUTER takes HELLO (to learn the signaler's media routing id) and MEDIA.
 * A heartbeat timer sends HEARTBEAT to every known signaler; one whose routing id stays
 * unreachable for peer_timeout_ms is forgotten.
 *
 * Who sent a message (CURVE): the ZAP handler names each connection by its client key
 * (zsock_user_id). A signaler id is bound to the key of its first HELLO:
 *
 *   HELLO(id) with key K, on either socket:
 *     id unknown                      --> new peer, bound to K
 *     id bound to K                   --> routing id updated (reconnect)
 *     id bound to K0 != K             --> ERROR EPERM, counted (id_bound), until the peer is
 *                                         forgotten (unreachable for peer_timeout_ms; a peer that
 *                                         said HELLO on media only, after peer_timeout_ms)
 *   any other message on a peer's routing id from a key that is not the peer's --> not that
 *   peer's (requests get no signaler id, MEDIA no sender), counted (key_mismatch)
 */
#include "ctl_server.h"

#include "curve.h"
#include "log.h"
#include "zsock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define DEFAULT_HB_MS 300
#define DEFAULT_PEER_TIMEOUT_MS 10000
#define DEFAULT_CACHE 256
#define DEFAULT_CACHE_TTL_MS 30000
#define DEFAULT_CTL_HWM 1000
#define DEFAULT_MEDIA_HWM 10000

struct peer {
	bool used;
	char id[WIRE_MAX_ID + 1];
	char key[CURVE_KEY_LEN + 1]; /* the CURVE key the id is bound to; "" without CURVE */
	uint8_t ctl_rid[255], media_rid[255];
	uint8_t ctl_rid_len, media_rid_len;
	uint64_t unreachable_since; /* 0: reachable */
	uint64_t since;		    /* loop time of its first HELLO */
	struct wire_backlog backlog; /* how long its MEDIA_BATCHes wait on their way here */
};

struct cache_ent {
	bool used, done;
	uint8_t type;
	uint8_t rid_len;
	uint8_t rid[255];
	char key[CURVE_KEY_LEN + 1]; /* the requester's: a reply is never replayed to another key */
	uint32_t req_id;
	uint64_t when;  /* request arrival, then reply time */
	uint8_t *reply; /* header + body */
	size_t reply_len;
};

struct ctl_server {
	struct evloop *loop;
	struct zsock *ctl, *media;
	struct ev_timer *hb_timer;
	struct ctl_server_callbacks cbs;
	const struct curve *curve; /* NULL: plain ZeroMQ */
	char worker_id[WIRE_MAX_ID + 1];
	char host[256];
	char sw_version[65];
	uint64_t instance_id;
	uint32_t capacity, hb_ms, peer_timeout_ms, cache_ttl_ms;
	uint32_t hb_seq;
	struct peer peers[CTL_MAX_PEERS];
	struct cache_ent *cache;
	unsigned cache_size;
	struct ctl_server_stats st;
	struct wire_msg msg;     /* the message being dispatched */
	struct wire_msg check;   /* a reply re-parsed before it is sent */
	struct wire_builder out; /* replies built here (HELLO_OK, ERROR) */
	struct wire_builder hb;  /* heartbeats */
	/* MEDIA toward each peer, batched per loop iteration (index = peer index). */
	struct wire_media_batch *batch[CTL_MAX_PEERS];
	struct ev_timer *flush_timer;
};

static const char *const refusal_names[CTL_REFUSED_N] = {
	[CTL_REFUSED_KEY] = "key",
	[CTL_REFUSED_NO_CURVE] = "no_curve",
	[CTL_REFUSED_CRYPTO] = "crypto",
	[CTL_REFUSED_HANDSHAKE] = "handshake",
	[CTL_REFUSED_ID_BOUND] = "id_bound",
	[CTL_REFUSED_KEY_MISMATCH] = "key_mismatch",
};

const char *ctl_refusal_name(enum ctl_refusal r)
{
	return (unsigned)r < CTL_REFUSED_N ? refusal_names[r] : "?";
}

/* --- peers --- */

static struct peer *peer_by_id(struct ctl_server *s, const char *id)
{
	for (int i = 0; i < CTL_MAX_PEERS; i++)
		if (s->peers[i].used && strcmp(s->peers[i].id, id) == 0)
			return &s->peers[i];
	return NULL;
}

static struct peer *peer_by_rid(struct ctl_server *s, bool media, const void *rid, size_t len)
{
	for (int i = 0; i < CTL_MAX_PEERS; i++) {
		struct peer *p = &s->peers[i];
		size_t plen = media ? p->media_rid_len : p->ctl_rid_len;

		if (p->used && plen == len && memcmp(media ? p->media_rid : p->ctl_rid, rid, len) == 0)
			return p;
	}
	return NULL;
}

/* The key of the message being handled on @zs: "" without CURVE. */
static const char *sender_key(const struct zsock *zs)
{
	const char *k = zsock_user_id(zs);

	return k ? k : "";
}

/*
 * @p as the sender of the message being handled on @zs, or NULL when that message came from
 * another key than the one @p is bound to (its routing id taken by another connection): counted
 * and logged, never taken for @p's.
 */
static struct peer *authentic(struct ctl_server *s, struct zsock *zs, struct peer *p)
{
	const char *key = sender_key(zs);

	if (!p || strcmp(p->key, key) == 0)
		return p;
	s->st.refused[CTL_REFUSED_KEY_MISMATCH]++;
	if (zsock_log_ok(zs))
		log_warn(p->id, "%s: a message on the routing id of signaler %s from key %s, not its "
				"key %s: not taken as %s's",
			 zsock_name(zs), p->id, key[0] ? key : "(none)", p->key, p->id);
	return NULL;
}

static void peer_forget(struct ctl_server *s, struct peer *p)
{
	char id[WIRE_MAX_ID + 1];

	memcpy(id, p->id, sizeof(id));
	memset(p, 0, sizeof(*p));
	if (s->batch[p - s->peers])
		wire_media_batch_reset(s->batch[p - s->peers]);
	log_info(id, "signaler forgotten (unreachable)");
	if (s->cbs.peer)
		s->cbs.peer(s, id, false, s->cbs.arg);
}

/* --- sending --- */

static void on_flush_timer(struct evloop *loop, struct ev_timer *t, void *arg);

static int send3(struct ctl_server *s, struct zsock *zs, const void *rid, size_t rid_len,
		 const void *hdr, size_t hdr_len, const void *body, size_t body_len)
{
	const struct zsock_frame f[3] = {
		{rid, rid_len},
		{hdr, hdr_len},
		{body, body_len},
	};
	int ret = zsock_send(zs, f, 3);

	if (ret < 0)
		s->st.send_drops++;
	return ret;
}

static int send_built(struct ctl_server *s, struct zsock *zs, const void *rid, size_t rid_len,
		      const struct wire_builder *b)
{
	return send3(s, zs, rid, rid_len, b->hdr, WIRE_HDR_LEN, wire_builder_body(b),
		     wire_builder_body_len(b));
}

/* Sends an ERROR without touching the reply cache (format errors, HELLO refusals). */
static void send_error(struct ctl_server *s, struct zsock *zs, const void *rid, size_t rid_len,
		       uint32_t req_id, int code, uint16_t tag, const char *text)
{
	if (wire_build_error(&s->out, req_id, code, tag, text) < 0) {
		log_error(s->worker_id, "cannot build ERROR: %s", s->out.reason);
		return;
	}
	s->st.replies++;
	send_built(s, zs, rid, rid_len, &s->out);
}

/* --- reply cache --- */

static struct cache_ent *cache_find(struct ctl_server *s, const void *rid, size_t rid_len,
				    uint32_t req_id, const char *key)
{
	uint64_t now = evloop_now(s->loop);

	for (unsigned i = 0; i < s->cache_size; i++) {
		struct cache_ent *c = &s->cache[i];

		if (c->used && c->req_id == req_id && c->rid_len == rid_len &&
		    memcmp(c->rid, rid, rid_len) == 0 && strcmp(c->key, key) == 0)
			return now - c->when <= s->cache_ttl_ms ? c : NULL;
	}
	return NULL;
}

static void cache_clear(struct cache_ent *c)
{
	free(c->reply);
	memset(c, 0, sizeof(*c));
}

/* Takes a slot for a new request: a free or expired one, else the oldest (answered first). */
static struct cache_ent *cache_take(struct ctl_server *s, const void *rid, size_t rid_len,
				    uint32_t req_id, uint8_t type, const char *key)
{
	uint64_t now = evloop_now(s->loop);
	struct cache_ent *victim = NULL;

	for (unsigned i = 0; i < s->cache_size; i++) {
		struct cache_ent *c = &s->cache[i];

		if (!c->used || now - c->when > s->cache_ttl_ms ||
		    (c->req_id == req_id && c->rid_len == rid_len &&
		     memcmp(c->rid, rid, rid_len) == 0)) {
			victim = c;
			break;
		}
		if (!victim || (c->done && !victim->done) ||
		    (c->done == victim->done && c->when < victim->when))
			victim = c;
	}
	cache_clear(victim);
	victim->used = true;
	victim->type = type;
	victim->rid_len = (uint8_t)rid_len;
	memcpy(victim->rid, rid, rid_len);
	victim->req_id = req_id;
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->when = now;
	return victim;
}

/* Stores the reply for @req (if its slot still exists) so a retry gets the same answer. */
static void cache_store(struct ctl_server *s, const struct ctl_request *req,
			const struct wire_builder *b)
{
	struct cache_ent *c = cache_find(s, req->rid, req->rid_len, req->req_id, req->key);
	size_t blen = wire_builder_body_len(b);

	if (!c)
		return;
	free(c->reply);
	c->reply = malloc(WIRE_HDR_LEN + blen);
	c->reply_len = 0;
	c->done = true;
	c->when = evloop_now(s->loop);
	if (!c->reply) {
		c->used = false; /* a retry will be handled again */
		return;
	}
	memcpy(c->reply, b->hdr, WIRE_HDR_LEN);
	memcpy(c->reply + WIRE_HDR_LEN, wire_builder_body(b), blen);
	c->reply_len = WIRE_HDR_LEN + blen;
}

/* --- replies --- */

int ctl_server_reply(struct ctl_server *s, const struct ctl_request *req,
		     struct wire_builder *reply)
{
	struct wire_err e;
	int ret;

	reply->req_id = req->req_id;
	ret = wire_builder_finish(reply);
	if (ret == 0) {
		ret = wire_parse(reply->hdr, WIRE_HDR_LEN, wire_builder_body(reply),
				 wire_builder_body_len(reply), &s->check, &e);
		if (ret == 0 && reply->type != WIRE_ERROR)
			ret = wire_check_reply(&s->check, req->type, &e);
		if (ret < 0)
			snprintf(reply->reason, sizeof(reply->reason), "%s", e.reason);
	}
	if (ret < 0) {
		log_error(req->signaler_id, "internal: bad reply to %s #%u: %s",
			  wire_type_name(req->type), req->req_id, reply->reason);
		return ctl_server_reply_error(s, req, EIO, 0, "internal error: %s", reply->reason);
	}
	cache_store(s, req, reply);
	s->st.replies++;
	return send_built(s, s->ctl, req->rid, req->rid_len, reply);
}

int ctl_server_reply_error(struct ctl_server *s, const struct ctl_request *req, int code,
			   uint16_t tag, const char *fmt, ...)
{
	char text[WIRE_MAX_STR + 1];
	struct wire_builder b = {0};
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* A local builder: this may be called while s->out holds another message. */
	ret = wire_build_error(&b, req->req_id, code, tag, text);
	if (ret == 0) {
		cache_store(s, req, &b);
		s->st.replies++;
		ret = send_built(s, s->ctl, req->rid, req->rid_len, &b);
	} else {
		log_error(req->signaler_id, "cannot build ERROR: %s", b.reason);
	}
	wire_builder_free(&b);
	return ret;
}

/* --- input --- */

static void build_hello_ok(struct ctl_server *s, uint32_t req_id)
{
	wire_builder_init(&s->out, WIRE_HELLO_OK, req_id);
	wire_put_str(&s->out, WIRE_T_WORKER_ID, s->worker_id);
	wire_put_u64(&s->out, WIRE_T_INSTANCE_ID, s->instance_id);
	wire_put_u32(&s->out, WIRE_T_PID, (uint32_t)getpid());
	wire_put_str(&s->out, WIRE_T_HOST, s->host);
	wire_put_str(&s->out, WIRE_T_SW_VERSION, s->sw_version);
	wire_put_u32(&s->out, WIRE_T_CAPACITY, s->capacity);
	wire_put_u32(&s->out, WIRE_T_HB_INTERVAL_MS, s->hb_ms);
	wire_builder_finish(&s->out);
}

/* Builds the next HEARTBEAT in s->hb. 0 or -EINVAL (logged). */
static int build_heartbeat(struct ctl_server *s)
{
	struct ctl_load load = {0};

	if (s->cbs.load)
		s->cbs.load(s, &load, s->cbs.arg);
	wire_builder_init(&s->hb, WIRE_HEARTBEAT, 0);
	wire_put_str(&s->hb, WIRE_T_WORKER_ID, s->worker_id);
	wire_put_u64(&s->hb, WIRE_T_INSTANCE_ID, s->instance_id);
	wire_put_u32(&s->hb, WIRE_T_LEGS, load.legs);
	wire_put_u16(&s->hb, WIRE_T_CPU_PERMILLE, load.cpu_permille);
	wire_put_bool(&s->hb, WIRE_T_DRAINING, load.draining);
	wire_put_u32(&s->hb, WIRE_T_SEQ, ++s->hb_seq);
	wire_put_u32(&s->hb, WIRE_T_CAPACITY, s->capacity);
	if (wire_builder_finish(&s->hb) < 0) {
		log_error(s->worker_id, "cannot build HEARTBEAT: %s", s->hb.reason);
		return -EINVAL;
	}
	return 0;
}

static void on_hello(struct ctl_server *s, struct zsock *zs, bool media, const void *rid,
		     size_t rid_len, const struct wire_msg *m)
{
	const char *key = sender_key(zs);
	char id[WIRE_MAX_ID + 1];
	struct peer *p;
	bool is_new = false;

	if (wire_get_cstr(m, WIRE_T_SIGNALER_ID, id, sizeof(id)) < 0)
		return; /* wire_parse checked it is there */
	p = peer_by_id(s, id);
	if (p && strcmp(p->key, key) != 0) {
		/* The id is bound to another key until that signaler is forgotten (unreachable
		 * for peer_timeout_ms): an impostor, or the signaler restarted with a new key pair,
		 * which gets in once its old self is forgotten. */
		s->st.refused[CTL_REFUSED_ID_BOUND]++;
		if (zsock_log_ok(zs))
			log_warn(id, "%s: HELLO as signaler %s from key %s refused (EPERM): the id "
				     "belongs to key %s until that signaler is gone for %u ms",
				 zsock_name(zs), id, key[0] ? key : "(none)", p->key,
				 s->peer_timeout_ms);
		send_error(s, zs, rid, rid_len, m->h.req_id, EPERM, WIRE_T_SIGNALER_ID,
			   "signaler id in use by another key");
		return;
	}
	if (!p) {
		for (int i = 0; i < CTL_MAX_PEERS && !p; i++)
			if (!s->peers[i].used)
				p = &s->peers[i];
		if (!p) {
			send_error(s, zs, rid, rid_len, m->h.req_id, ENOSPC, 0,
				   "too many signalers");
			return;
		}
		memset(p, 0, sizeof(*p));
		if (s->batch[p - s->peers])
			wire_media_batch_reset(s->batch[p - s->peers]);
		p->used = true;
		memcpy(p->id, id, sizeof(id));
		snprintf(p->key, sizeof(p->key), "%s", key);
		p->since = evloop_now(s->loop);
		is_new = true;
	}
	if (media) {
		p->media_rid_len = (uint8_t)rid_len;
		memcpy(p->media_rid, rid, rid_len);
	} else {
		if (!is_new && (p->ctl_rid_len != rid_len || memcmp(p->ctl_rid, rid, rid_len)))
			log_info(id, "signaler reconnected with a new routing id");
		p->ctl_rid_len = (uint8_t)rid_len;
		memcpy(p->ctl_rid, rid, rid_len);
		p->unreachable_since = 0;
	}
	if (is_new) {
		log_info(id, "signaler said HELLO on the %s socket%s%s", media ? "media" : "control",
			 key[0] ? ", key " : "", key);
		if (s->cbs.peer)
			s->cbs.peer(s, id, true, s->cbs.arg);
	}
	build_hello_ok(s, m->h.req_id);
	s->st.replies++;
	send_built(s, zs, rid, rid_len, &s->out);
}

static ctl_handler_fn find_handler(const struct ctl_server *s, uint8_t type)
{
	for (size_t i = 0; i < s->cbs.n_handlers; i++)
		if (s->cbs.handlers[i].type == type)
			return s->cbs.handlers[i].fn;
	return NULL;
}

static void on_request(struct ctl_server *s, const void *rid, size_t rid_len,
		       const struct wire_msg *m)
{
	struct ctl_request req;
	struct cache_ent *c;
	struct peer *p;
	ctl_handler_fn fn;

	memcpy(req.rid, rid, rid_len);
	req.rid_len = (uint8_t)rid_len;
	req.req_id = m->h.req_id;
	req.type = m->h.type;
	p = authentic(s, s->ctl, peer_by_rid(s, false, rid, rid_len));
	snprintf(req.signaler_id, sizeof(req.signaler_id), "%s", p ? p->id : "");
	snprintf(req.key, sizeof(req.key), "%s", sender_key(s->ctl));

	c = cache_find(s, rid, rid_len, m->h.req_id, req.key);
	if (c && c->done && c->type == m->h.type) {
		s->st.replays++;
		log_debug(req.signaler_id, "%s #%u retried: resending the reply",
			  wire_type_name(m->h.type), m->h.req_id);
		send3(s, s->ctl, rid, rid_len, c->reply, WIRE_HDR_LEN, c->reply + WIRE_HDR_LEN,
		      c->reply_len - WIRE_HDR_LEN);
		return;
	}
	if (c && !c->done && c->type == m->h.type) {
		s->st.dup_pending++;
		return;
	}
	fn = find_handler(s, m->h.type);
	if (!fn) {
		ctl_server_reply_error(s, &req, ENOTSUP, 0, "request %s not supported",
				       wire_type_name(m->h.type));
		return;
	}
	cache_take(s, rid, rid_len, m->h.req_id, m->h.type, req.key);
	s->st.requests++;
	fn(s, &req, m, s->cbs.arg);
}

static void malformed(struct ctl_server *s, struct zsock *zs, const char *what, size_t n)
{
	s->st.malformed++;
	if (zsock_log_ok(zs))
		log_warn(s->worker_id, "%s: dropped %s (%zu frames)", zsock_name(zs), what, n);
}

static void on_ctl(struct zsock *zs, const struct zsock_frame *f, size_t n, void *arg)
{
	struct ctl_server *s = arg;
	struct wire_err e;

	if (n != 3 || f[0].len == 0 || f[0].len > 255) {
		malformed(s, zs, "message with a wrong frame count", n);
		return;
	}
	if (wire_parse(f[1].data, f[1].len, f[2].data, f[2].len, &s->msg, &e) < 0) {
		s->st.malformed++;
		if (zsock_log_ok(zs))
			log_warn(s->worker_id, "%s: bad message: %s", zsock_name(zs), e.reason);
		if (e.can_reply && wire_type_kind(s->msg.h.type) == WIRE_KIND_REQUEST)
			send_error(s, zs, f[0].data, f[0].len, s->msg.h.req_id, e.code, e.tag,
				   e.reason);
		return;
	}
	if (s->msg.h.type == WIRE_HELLO)
		on_hello(s, zs, false, f[0].data, f[0].len, &s->msg);
	else if (wire_type_kind(s->msg.h.type) == WIRE_KIND_REQUEST)
		on_request(s, f[0].data, f[0].len, &s->msg);
	else
		malformed(s, zs, wire_type_name(s->msg.h.type), n);
}

static void on_media(struct zsock *zs, const struct zsock_frame *f, size_t n, void *arg)
{
	struct ctl_server *s = arg;
	const uint8_t *h = f[1].data;
	struct wire_media md;
	struct wire_err e;

	if (n != 3 || f[0].len == 0 || f[0].len > 255) {
		malformed(s, zs, "message with a wrong frame count", n);
		return;
	}
	if (f[1].len == WIRE_HDR_LEN && h[3] == WIRE_MEDIA_BATCH) {
		struct peer *p = authentic(s, zs, peer_by_rid(s, true, f[0].data, f[0].len));
		uint32_t sent = wire_media_batch_sent_ms(f[1].data, f[1].len), queued = 0;
		size_t off = 0;
		int r;

		if (sent && p)
			queued = wire_backlog_update(&p->backlog, sent, wire_mono_ms());
		while ((r = wire_media_batch_next(f[1].data, f[1].len, f[2].data, f[2].len, &off, &md,
						  &e)) > 0) {
			md.queued_ms = queued;
			s->st.media_in++;
			if (s->cbs.media)
				s->cbs.media(s, p ? p->id : NULL, &md, s->cbs.arg);
		}
		if (r < 0) {
			s->st.malformed++;
			if (zsock_log_ok(zs))
				log_warn(s->worker_id, "%s: bad MEDIA_BATCH: %s", zsock_name(zs), e.reason);
		}
		return;
	}
	if (f[1].len == WIRE_HDR_LEN && h[3] == WIRE_MEDIA) {
		struct peer *p;

		if (wire_media_parse(f[1].data, f[1].len, f[2].data, f[2].len, &md, &e) < 0) {
			s->st.malformed++;
			if (zsock_log_ok(zs))
				log_warn(s->worker_id, "%s: bad MEDIA: %s", zsock_name(zs), e.reason);
			return;
		}
		s->st.media_in++;
		p = authentic(s, zs, peer_by_rid(s, true, f[0].data, f[0].len));
		if (s->cbs.media)
			s->cbs.media(s, p ? p->id : NULL, &md, s->cbs.arg);
		return;
	}
	if (wire_parse(f[1].data, f[1].len, f[2].data, f[2].len, &s->msg, &e) < 0) {
		s->st.malformed++;
		if (zsock_log_ok(zs))
			log_warn(s->worker_id, "%s: bad message: %s", zsock_name(zs), e.reason);
		if (e.can_reply && wire_type_kind(s->msg.h.type) == WIRE_KIND_REQUEST)
			send_error(s, zs, f[0].data, f[0].len, s->msg.h.req_id, e.code, e.tag,
				   e.reason);
		return;
	}
	if (s->msg.h.type == WIRE_HELLO)
		on_hello(s, zs, true, f[0].data, f[0].len, &s->msg);
	else
		malformed(s, zs, wire_type_name(s->msg.h.type), n);
}

/* --- heartbeats --- */

static void on_heartbeat(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct ctl_server *s = arg;
	uint64_t now = evloop_now(loop);

	evloop_timer_start(t, s->hb_ms);
	if (build_heartbeat(s) < 0)
		return;
	for (int i = 0; i < CTL_MAX_PEERS; i++) {
		struct peer *p = &s->peers[i];
		int ret;

		if (!p->used)
			continue;
		/* Said HELLO on media only: it never became a signaler here; the id is not kept
		 * bound to its key for ever. */
		if (!p->ctl_rid_len) {
			if (now - p->since >= s->peer_timeout_ms)
				peer_forget(s, p);
			continue;
		}
		ret = send_built(s, s->ctl, p->ctl_rid, p->ctl_rid_len, &s->hb);
		if (ret == 0) {
			s->st.heartbeats++;
			p->unreachable_since = 0;
		} else if (ret == -EHOSTUNREACH) {
			if (!p->unreachable_since)
				p->unreachable_since = now;
			else if (now - p->unreachable_since >= s->peer_timeout_ms)
				peer_forget(s, p);
		}
	}
}

/* --- refused handshakes --- */

#define HANDSHAKE_EVENTS                                                                           \
	(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |              \
	 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

/* libzmq refused a connection on one of the ROUTERs during its handshake (socket monitor). */
static void on_handshake_failed(struct zsock *zs, unsigned event, uint32_t value,
				const char *endpoint, void *arg)
{
	struct ctl_server *s = arg;
	enum ctl_refusal r = CTL_REFUSED_HANDSHAKE;
	const char *why = "no detail (closed during the handshake?)";

	if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
		r = CTL_REFUSED_KEY;
		why = "its CURVE key is not allowed (ZAP refused it; see the zap line)";
	} else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
		   value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
		r = CTL_REFUSED_NO_CURVE;
		why = "it does not speak CURVE (no key, or ZMQ_INSECURE=1 on its side)";
	} else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
		   value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
		r = CTL_REFUSED_CRYPTO;
		why = "its CURVE handshake does not decrypt (it expects another worker key?)";
	} else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
		why = "protocol error";
	}
	s->st.refused[r]++;
	if (zsock_log_ok(zs))
		log_warn(s->worker_id, "%s: a connection to %s refused: %s (%s %u so far)",
			 zsock_name(zs), endpoint, why, refusal_names[r], (unsigned)s->st.refused[r]);
}

/* Counts the handshakes libzmq refuses on @zs; without a monitor they are only not counted. */
static void watch_handshakes(struct ctl_server *s, struct zsock *zs)
{
	static unsigned long seq; /* inproc names are process-wide: never reused */
	char ep[64];
	int ret;

	snprintf(ep, sizeof(ep), "inproc://ctl-server-mon-%lu", ++seq);
	ret = zsock_monitor(zs, ep, HANDSHAKE_EVENTS, on_handshake_failed, s);
	if (ret < 0)
		log_warn(s->worker_id, "%s: no socket monitor (%s): refused handshakes are not "
				       "counted",
			 zsock_name(zs), zmq_strerror(-ret));
}

/* --- life cycle --- */

static uint64_t random_u64(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		v = (uint64_t)ts.tv_nsec << 32 ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 16;
	}
	return v ? v : 1;
}

struct ctl_server *ctl_server_new(struct evloop *loop, const struct ctl_server_config *cfg,
				  const struct ctl_server_callbacks *cbs)
{
	struct zsock_opts co = {.max_frames = 4, .max_frame_size = WIRE_MAX_BODY};
	struct zsock_opts mo = {.max_frames = 4, .max_frame_size = WIRE_BATCH_MAX_BODY};
	char name[WIRE_MAX_ID + 16];
	struct ctl_server *s;
	int ret;

	if (!cfg->worker_id || !wire_id_valid(cfg->worker_id, strlen(cfg->worker_id)) ||
	    !cfg->ctl_bind || !cfg->media_bind) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->cbs = *cbs;
	s->curve = curve_enabled(cfg->curve) ? cfg->curve : NULL;
	snprintf(s->worker_id, sizeof(s->worker_id), "%s", cfg->worker_id);
	if (cfg->host)
		snprintf(s->host, sizeof(s->host), "%s", cfg->host);
	else if (gethostname(s->host, sizeof(s->host) - 1) < 0)
		snprintf(s->host, sizeof(s->host), "unknown");
	snprintf(s->sw_version, sizeof(s->sw_version), "%s",
		 cfg->sw_version ? cfg->sw_version : "rtmp2sip");
	s->instance_id = cfg->instance_id ? cfg->instance_id : random_u64();
	s->capacity = cfg->capacity;
	s->hb_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : DEFAULT_HB_MS;
	s->peer_timeout_ms = cfg->peer_timeout_ms ? cfg->peer_timeout_ms : DEFAULT_PEER_TIMEOUT_MS;
	s->cache_ttl_ms = cfg->reply_cache_ttl_ms ? cfg->reply_cache_ttl_ms : DEFAULT_CACHE_TTL_MS;
	s->cache_size = cfg->reply_cache_size ? cfg->reply_cache_size : DEFAULT_CACHE;
	s->cache = calloc(s->cache_size, sizeof(*s->cache));
	if (!s->cache)
		goto out_free;

	if (s->curve)
		co.curve_secret_key = mo.curve_secret_key = curve_secret_key(s->curve);
	snprintf(name, sizeof(name), "%s/ctl", s->worker_id);
	co.name = name;
	co.sndhwm = co.rcvhwm = cfg->ctl_hwm > 0 ? cfg->ctl_hwm : DEFAULT_CTL_HWM;
	s->ctl = zsock_new(loop, ZMQ_ROUTER, &co, on_ctl, s);
	if (!s->ctl)
		goto out_free;
	snprintf(name, sizeof(name), "%s/media", s->worker_id);
	mo.name = name;
	mo.sndhwm = mo.rcvhwm = cfg->media_hwm > 0 ? cfg->media_hwm : DEFAULT_MEDIA_HWM;
	s->media = zsock_new(loop, ZMQ_ROUTER, &mo, on_media, s);
	if (!s->media)
		goto out_close;
	if (s->curve) {
		watch_handshakes(s, s->ctl);
		watch_handshakes(s, s->media);
	}
	ret = zsock_bind(s->ctl, cfg->ctl_bind);
	if (ret == 0)
		ret = zsock_bind(s->media, cfg->media_bind);
	if (ret < 0) {
		log_error(s->worker_id, "cannot bind %s / %s: %s", cfg->ctl_bind, cfg->media_bind,
			  zmq_strerror(-ret));
		errno = -ret;
		goto out_close;
	}
	s->hb_timer = evloop_timer_new(loop, on_heartbeat, s);
	s->flush_timer = evloop_timer_new(loop, on_flush_timer, s);
	if (!s->hb_timer || !s->flush_timer)
		goto out_close;
	evloop_timer_start(s->hb_timer, s->hb_ms);
	log_info(s->worker_id, "control on %s, media on %s, instance %016llx, %s",
		 zsock_endpoint(s->ctl), zsock_endpoint(s->media),
		 (unsigned long long)s->instance_id,
		 s->curve ? "CURVE (signaler keys checked by ZAP)" : "plain ZeroMQ (ZMQ_INSECURE)");
	return s;

out_close: {
	int e = errno;

	evloop_timer_del(&s->hb_timer);
	evloop_timer_del(&s->flush_timer);
	zsock_destroy(&s->ctl);
	zsock_destroy(&s->media);
	errno = e;
}
out_free: {
	int e = errno;

	free(s->cache);
	free(s);
	errno = e;
}
	return NULL;
}

void ctl_server_destroy(struct ctl_server **sp)
{
	struct ctl_server *s = sp ? *sp : NULL;

	if (!s)
		return;
	*sp = NULL;
	evloop_timer_del(&s->hb_timer);
	evloop_timer_del(&s->flush_timer);
	for (int i = 0; i < CTL_MAX_PEERS; i++)
		free(s->batch[i]);
	zsock_destroy(&s->ctl);
	zsock_destroy(&s->media);
	for (unsigned i = 0; i < s->cache_size; i++)
		free(s->cache[i].reply);
	free(s->cache);
	wire_builder_free(&s->out);
	wire_builder_free(&s->hb);
	free(s);
}

const char *ctl_server_ctl_endpoint(const struct ctl_server *s)
{
	return zsock_endpoint(s->ctl);
}

const char *ctl_server_media_endpoint(const struct ctl_server *s)
{
	return zsock_endpoint(s->media);
}

uint64_t ctl_server_instance_id(const struct ctl_server *s)
{
	return s->instance_id;
}

int ctl_server_send_event(struct ctl_server *s, const char *signaler_id, struct wire_builder *ev)
{
	struct peer *p = peer_by_id(s, signaler_id);

	if (!p || !p->ctl_rid_len)
		return -ENOTCONN;
	if (ev->type != WIRE_EVENT) {
		log_error(s->worker_id, "send_event: %s is not an EVENT", wire_type_name(ev->type));
		return -EINVAL;
	}
	ev->req_id = 0;
	if (wire_builder_finish(ev) < 0) {
		log_error(s->worker_id, "send_event: %s", ev->reason);
		return -EINVAL;
	}
	return send_built(s, s->ctl, p->ctl_rid, p->ctl_rid_len, ev);
}

/* Sends the frames batched for peer @i. */
static void flush_peer(struct ctl_server *s, int i)
{
	struct wire_media_batch *b = s->batch[i];
	struct peer *p = &s->peers[i];

	if (!b || b->n == 0)
		return;
	if (p->used && p->media_rid_len) {
		wire_media_batch_finish(b, (uint32_t)wire_mono_ms());
		if (send3(s, s->media, p->media_rid, p->media_rid_len, b->hdr, sizeof(b->hdr), b->body,
			  b->len) == 0)
			s->st.media_out += b->n;
	}
	wire_media_batch_reset(b);
}

void ctl_server_flush_media(struct ctl_server *s)
{
	for (int i = 0; i < CTL_MAX_PEERS; i++)
		flush_peer(s, i);
}

static void on_flush_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	ctl_server_flush_media(arg);
}

int ctl_server_send_media(struct ctl_server *s, const char *signaler_id, const char *leg_id,
			  uint32_t ts, uint8_t flags, const void *payload, size_t len)
{
	struct peer *p = peer_by_id(s, signaler_id);
	struct wire_media_batch **b;
	int ret;

	if (!p || !p->media_rid_len)
		return -ENOTCONN;
	b = &s->batch[p - s->peers];
	if (!*b) {
		*b = calloc(1, sizeof(**b));
		if (!*b)
			return -ENOMEM;
	}
	ret = wire_media_batch_add(*b, leg_id, ts, flags, payload, len);
	if (ret == -ENOSPC) {
		flush_peer(s, (int)(p - s->peers));
		ret = wire_media_batch_add(*b, leg_id, ts, flags, payload, len);
	}
	if (ret < 0)
		return ret;
	/* Everything queued in this loop iteration leaves as one message per signaler. */
	if (!evloop_timer_armed(s->flush_timer))
		evloop_timer_start(s->flush_timer, 0);
	return 0;
}

bool ctl_server_has_peer(const struct ctl_server *s, const char *signaler_id)
{
	for (int i = 0; i < CTL_MAX_PEERS; i++)
		if (s->peers[i].used && strcmp(s->peers[i].id, signaler_id) == 0)
			return true;
	return false;
}

void ctl_server_get_stats(const struct ctl_server *s, struct ctl_server_stats *st)
{
	*st = s->st;
	st->peers = 0;
	for (int i = 0; i < CTL_MAX_PEERS; i++)
		st->peers += s->peers[i].used;
}
