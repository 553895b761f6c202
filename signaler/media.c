/*
 * media.c - the signaler's media bridge: call legs on the mediaworker pool (see media.h).
 *
 * A leg's life:
 *
 *   media_leg_new
 *        |
 *        v     CREATE_LEG to dispatcher_pick()      error, timeout, worker down:
 *   [ CREATING ] ---------------------------------> another worker (create_attempts, and
 *        |  \                                       at most CREATE_WAIT_MS without any worker)
 *        |   +--> [ FAILED ] (failed callback once; freed by media_leg_destroy)
 *     OK |                 ^
 *        v                 | EVENT LEG_FAILED          ADOPT_LEG error (not ENOENT): retry
 *   [ READY ] -------------+                           every RETRY_MS until move_timeout_ms;
 *     |   ^                                            ENOENT or deadline: FAILED "worker lost"
 *     |   | ADOPT_LEG OK on another worker: moved(ip, port), last update re-applied
 *     |   | or the old worker back with the same instance: stays where it was
 *     v   |
 *   [ MOVING ] <-- worker_down of the leg's worker
 *
 * Where a leg may still exist on a worker we no longer use (a create that timed out, the worker
 * a leg moved away from), the bridge "discards" it there: DESTROY_LEG now if that worker is
 * alive, else when it comes back with the same instance id (a restarted worker lost its legs).
 *
 * Workers: WORKER_ENDPOINTS at creation, and with Redis the workers it lists (media_discovery.c).
 */
#include "media.h"
#include "media_int.h"

#include "audio_check.h"
#include "codec.h"
#include "dispatcher.h"
#include "evloop.h"
#include "log.h"
#include "redis.h"
#include "state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MS 200	     /* wait between attempts while no worker is available */
#define CREATE_WAIT_MS 2000  /* a new leg waits at most this long for a live worker */
#define MAX_ORPHANS 65536    /* stale legs remembered for workers that are down */

static const char *const state_names[] = {
	[LEG_CREATING] = "creating", [LEG_READY] = "ready", [LEG_MOVING] = "moving",
	[LEG_FAILED] = "failed",
};

/* A request in flight: of a leg (leg set) or fire and forget (DESTROY_LEG, leg NULL). */
struct leg_req {
	struct media *m;
	struct media_leg *leg;
	struct leg_req *next; /* in the leg's list */
	struct dispatcher_worker *w;
	uint32_t req_id;
	uint8_t type;
	media_leg_done_cb done;
	char leg_id[WIRE_MAX_ID + 1];
};

/* Audio kept while a leg is being created: at most 25 frames (0.5 s of 20 ms frames, 3 s of
 * ffmpeg's 1024-byte G.711) and 32 KiB (4 s of G.711, or 4 of the largest messages), each frame
 * allocated at its size. */
#define EARLY_FRAMES	25
#define EARLY_BYTES_MAX 32768

struct early_frame {
	struct early_frame *next;
	uint32_t ts;
	uint16_t len;
	uint8_t data[];
};

struct early_audio {
	unsigned n;
	size_t bytes;
	struct early_frame *head, **tail;
};

/* --- helpers ------------------------------------------------------------------------------ */

struct media_leg *media_leg_find(struct media *m, const char *id)
{
	return strmap_get(m->by_id, id);
}

const char *media_wname(const struct dispatcher_worker *w)
{
	struct dispatcher_worker_info info;

	if (!w)
		return "-";
	dispatcher_worker_info(w, &info);
	return info.worker_id[0] ? info.worker_id : info.ctl_endpoint;
}

struct media_worker *media_worker_find(struct media *m, const struct dispatcher_worker *w)
{
	for (size_t i = 0; i < m->n_workers; i++)
		if (m->workers[i].w == w)
			return &m->workers[i];
	return NULL;
}

int media_worker_add(struct media *m, struct dispatcher_worker *w, bool discovered)
{
	if (m->n_workers == m->cap_workers) {
		size_t cap = m->cap_workers ? m->cap_workers * 2 : 8;
		struct media_worker *nw = realloc(m->workers, cap * sizeof(*nw));

		if (!nw)
			return -ENOMEM;
		m->workers = nw;
		m->cap_workers = cap;
	}
	m->workers[m->n_workers++] = (struct media_worker){
		.w = w, .discovered = discovered, .last_listed = evloop_now(m->loop),
	};
	return 0;
}

/* Text of a failed request: the worker's ERR_TEXT, or the local errno. */
static void reply_reason(int status, const struct wire_msg *reply, char *out, size_t len)
{
	char text[WIRE_MAX_STR + 1];

	if (reply && wire_get_cstr(reply, WIRE_T_ERR_TEXT, text, sizeof(text)) == 0)
		snprintf(out, len, "%s (%s)", text, strerror(-status));
	else
		snprintf(out, len, "%s", strerror(-status));
}

/* --- requests ----------------------------------------------------------------------------- */

static void on_reply(struct dispatcher *d, struct dispatcher_worker *w, int status,
		     const struct wire_msg *reply, void *arg);

static void req_unlink(struct leg_req *r)
{
	struct leg_req **pp;

	if (!r->leg)
		return;
	for (pp = &r->leg->reqs; *pp && *pp != r; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = r->next;
	if (r->leg->main_req == r)
		r->leg->main_req = NULL;
	r->leg = NULL;
}

/* Sends @b to @w for @leg (NULL: fire and forget for @leg_id). Returns the request or NULL
 * (logged; errno-like code in *err). */
static struct leg_req *send_req(struct media *m, struct dispatcher_worker *w, struct media_leg *leg,
				const char *leg_id, struct wire_builder *b, media_leg_done_cb done,
				int *err)
{
	struct leg_req *r = calloc(1, sizeof(*r));
	int ret;

	if (!r) {
		*err = -ENOMEM;
		return NULL;
	}
	r->m = m;
	r->w = w;
	r->type = b->type;
	r->done = done;
	snprintf(r->leg_id, sizeof(r->leg_id), "%s", leg_id);
	ret = dispatcher_request(m->d, w, b, m->cfg.request_timeout_ms, m->cfg.request_retries,
				 on_reply, r, &r->req_id);
	if (ret < 0) {
		log_warn(leg_id, "%s to %s not sent: %s", wire_type_name(b->type), media_wname(w),
			 strerror(-ret));
		free(r);
		*err = ret;
		return NULL;
	}
	m->inflight++;
	if (leg) {
		r->leg = leg;
		r->next = leg->reqs;
		leg->reqs = r;
	}
	*err = 0;
	return r;
}

/* Forgets a leg's request: no callback will come. */
static void req_cancel(struct leg_req *r)
{
	req_unlink(r);
	dispatcher_cancel(r->m->d, r->req_id);
	r->m->inflight--;
	free(r);
}

/* The leg may exist on @w, which no longer carries it: destroy it there, now if @w is alive,
 * else when it comes back with the same instance. */
static void discard_on(struct media *m, struct dispatcher_worker *w, const char *leg_id)
{
	struct wire_builder b = {0};
	struct orphan *o;
	int err;

	if (!w)
		return;
	if (dispatcher_worker_alive(w)) {
		wire_builder_init(&b, WIRE_DESTROY_LEG, 0);
		wire_put_str(&b, WIRE_T_LEG_ID, leg_id);
		send_req(m, w, NULL, leg_id, &b, NULL, &err);
		wire_builder_free(&b);
		return;
	}
	if (m->n_orphans >= MAX_ORPHANS) {
		log_warn(leg_id, "too many stale legs remembered: not destroyed on %s",
			 media_wname(w));
		return;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return;
	o->w = w;
	snprintf(o->leg_id, sizeof(o->leg_id), "%s", leg_id);
	o->next = m->orphans;
	m->orphans = o;
	m->n_orphans++;
}

void media_orphans_settle(struct media *m, struct dispatcher_worker *w, bool flush)
{
	struct orphan **pp = &m->orphans;

	while (*pp) {
		struct orphan *o = *pp;

		if (o->w != w) {
			pp = &o->next;
			continue;
		}
		*pp = o->next;
		m->n_orphans--;
		if (flush) {
			log_info(o->leg_id, "destroying the stale copy on %s", media_wname(w));
			m->orphans_destroyed++;
			discard_on(m, w, o->leg_id);
		}
		free(o);
	}
}

/* --- legs --------------------------------------------------------------------------------- */

static void leg_fail(struct media_leg *leg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void leg_fail(struct media_leg *leg, const char *fmt, ...)
{
	va_list ap;

	if (leg->state == LEG_FAILED)
		return;
	va_start(ap, fmt);
	vsnprintf(leg->reason, sizeof(leg->reason), fmt, ap);
	va_end(ap);
	log_warn(leg->id, "leg failed (%s): %s", state_names[leg->state], leg->reason);
	if (leg->main_req)
		req_cancel(leg->main_req);
	leg->state = LEG_FAILED;
	/* The callback comes from the loop, never from inside the caller's call. */
	evloop_timer_start(leg->timer, 0);
}

static void build_create(struct media_leg *leg, struct wire_builder *b)
{
	struct media *m = leg->m;

	wire_builder_init(b, WIRE_CREATE_LEG, 0);
	wire_put_str(b, WIRE_T_LEG_ID, leg->id);
	wire_put_str(b, WIRE_T_CALL_ID, leg->call_id);
	wire_put_str(b, WIRE_T_OWNER, dispatcher_signaler_id(m->d));
	wire_put_codec(b, WIRE_T_RTMP_CODEC, &leg->rtmp_codec);
	if (leg->rtmp_out.name[0])
		wire_put_codec(b, WIRE_T_RTMP_OUT_CODEC, &leg->rtmp_out);
	for (size_t i = 0; i < leg->n_sip; i++)
		wire_put_codec(b, WIRE_T_SIP_CODEC, &leg->sip[i]);
	if (leg->want.remote) {
		wire_put_str(b, WIRE_T_REMOTE_IP, leg->want.ip);
		wire_put_u16(b, WIRE_T_REMOTE_PORT, leg->want.port);
	}
	if (leg->want.srtp) {
		wire_put_str(b, WIRE_T_SRTP_SUITE, leg->want.suite);
		wire_put_bytes(b, WIRE_T_SRTP_REMOTE_KEY, leg->want.key, leg->want.key_len);
	}
	if (leg->want_srtp)
		wire_put_bool(b, WIRE_T_WANT_SRTP, true);
	if (leg->dtmf_pt)
		wire_put_u8(b, WIRE_T_DTMF_PT, leg->dtmf_pt);
	if (leg->ptime_ms)
		wire_put_u16(b, WIRE_T_PTIME_MS, leg->ptime_ms);
	if (leg->video && leg->companion[0])
		wire_put_str(b, WIRE_T_SYNC_LEG, leg->companion);
}

static void try_create(struct media_leg *leg)
{
	struct media *m = leg->m;
	struct wire_builder b = {0};
	struct dispatcher_worker *w = leg->attempts == 0 ? media_video_home(leg) : NULL;
	int err;

	if (!w)
		w = dispatcher_pick(m->d);
	if (!w) {
		if (evloop_now(m->loop) >= leg->deadline)
			leg_fail(leg, "no live mediaworker");
		else
			evloop_timer_start(leg->timer, RETRY_MS);
		return;
	}
	build_create(leg, &b);
	leg->attempts++;
	leg->w = w;
	leg->main_req = send_req(m, w, leg, leg->id, &b, NULL, &err);
	wire_builder_free(&b);
	if (!leg->main_req) {
		leg->w = NULL;
		if (leg->attempts >= m->cfg.create_attempts)
			leg_fail(leg, "CREATE_LEG not sent: %s", strerror(-err));
		else
			evloop_timer_start(leg->timer, RETRY_MS);
		return;
	}
	log_debug(leg->id, "CREATE_LEG to %s (attempt %u)", media_wname(w), leg->attempts);
}

static void try_adopt(struct media_leg *leg)
{
	struct media *m = leg->m;
	struct wire_builder b = {0};
	struct dispatcher_worker *w;
	int err;

	if (evloop_now(m->loop) >= leg->deadline) {
		char last[sizeof(leg->reason)];

		snprintf(last, sizeof(last), "%s", leg->reason);
		m->move_failures++;
		leg_fail(leg, "worker lost: no worker adopted the leg within %u ms%s%.400s",
			 m->cfg.move_timeout_ms, last[0] ? "; last error: " : "", last);
		return;
	}
	w = media_video_home(leg); /* with its companion, when that one has a home */
	if (!w)
		w = dispatcher_pick(m->d);
	if (!w) {
		evloop_timer_start(leg->timer, RETRY_MS);
		return;
	}
	wire_builder_init(&b, WIRE_ADOPT_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, leg->id);
	wire_put_str(&b, WIRE_T_OWNER, dispatcher_signaler_id(m->d));
	leg->attempts++;
	leg->w = w;
	leg->main_req = send_req(m, w, leg, leg->id, &b, NULL, &err);
	wire_builder_free(&b);
	if (!leg->main_req) {
		leg->w = NULL;
		evloop_timer_start(leg->timer, RETRY_MS);
		return;
	}
	log_info(leg->id, "ADOPT_LEG to %s (attempt %u)", media_wname(w), leg->attempts);
}

/* Sends the leg's desired values (all of them with @all, else only what @u changed). */
static int send_update(struct media_leg *leg, const struct media_leg_update *u, bool all,
		       media_leg_done_cb done)
{
	struct wire_builder b = {0};
	const struct leg_desired *d = &leg->want;
	int err;

	wire_builder_init(&b, WIRE_UPDATE_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, leg->id);
	if (d->srtp && (all || (u && u->srtp_suite))) {
		wire_put_str(&b, WIRE_T_SRTP_SUITE, d->suite);
		wire_put_bytes(&b, WIRE_T_SRTP_REMOTE_KEY, d->key, d->key_len);
	}
	if (d->remote && (all || (u && u->remote_ip))) {
		wire_put_str(&b, WIRE_T_REMOTE_IP, d->ip);
		wire_put_u16(&b, WIRE_T_REMOTE_PORT, d->port);
	}
	if (d->codec && (all || (u && u->set_codec))) {
		wire_put_u8(&b, WIRE_T_CODEC_PT, d->codec_pt);
		if (d->codec_fmtp[0])
			wire_put_str(&b, WIRE_T_CODEC_FMTP, d->codec_fmtp);
	}
	if (d->hold_set && (all || (u && u->set_hold)))
		wire_put_bool(&b, WIRE_T_HOLD, d->hold);
	if (u && u->keyframe && leg->video)
		wire_put_bool(&b, WIRE_T_KEYFRAME, true);
	send_req(leg->m, leg->w, leg, leg->id, &b, done, &err);
	wire_builder_free(&b);
	return err;
}

/* The leg's home is @w now (after CREATE_LEG / ADOPT_LEG OK): takes the reply's values. */
static int take_info(struct media_leg *leg, struct dispatcher_worker *w, const struct wire_msg *r)
{
	struct media_leg_info tmp = {0}, *in = &tmp;
	const uint8_t *key;
	size_t klen;

	if (wire_get_cstr(r, WIRE_T_LOCAL_IP, in->local_ip, sizeof(in->local_ip)) < 0 ||
	    wire_get_u16(r, WIRE_T_LOCAL_PORT, &in->local_port) < 0 ||
	    wire_get_codec(r, WIRE_T_CHOSEN_CODEC, 0, &in->codec) < 0 ||
	    wire_get_u32(r, WIRE_T_SSRC, &in->ssrc) < 0)
		return -EBADMSG;
	wire_get_bool(r, WIRE_T_TRANSCODING, &in->transcoding);
	if (wire_get_cstr(r, WIRE_T_SRTP_SUITE, in->srtp_suite, sizeof(in->srtp_suite)) == 0 &&
	    wire_get_bytes(r, WIRE_T_SRTP_LOCAL_KEY, &key, &klen) == 0 && klen <= sizeof(in->srtp_local_key)) {
		memcpy(in->srtp_local_key, key, klen);
		in->srtp_local_key_len = klen;
	}
	snprintf(leg->worker_id, sizeof(leg->worker_id), "%s", media_wname(w));
	snprintf(leg->home_id, sizeof(leg->home_id), "%s", leg->worker_id);
	in->worker_id = leg->worker_id;
	leg->info = tmp;
	leg->have_info = true;
	return 0;
}

/* After READY (first time or after a move): updates that waited, or all values after a move. */
static void apply_queued(struct media_leg *leg, bool moved)
{
	media_leg_done_cb done = leg->queued_done;

	if (!leg->update_queued && !(moved && leg->updated))
		return;
	leg->update_queued = false;
	leg->queued_done = NULL;
	send_update(leg, NULL, true, done);
}

static void early_flush(struct media_leg *leg);
static void early_free(struct early_audio **ep);

static void on_create_reply(struct media_leg *leg, struct dispatcher_worker *w, int status,
			    const struct wire_msg *reply)
{
	struct media *m = leg->m;
	char why[320];

	if (status == 0 && take_info(leg, w, reply) == 0) {
		const struct media_leg_info *in = &leg->info;

		leg->state = LEG_READY;
		leg->reason[0] = '\0';
		log_info(leg->id, "leg ready on %s: call %s, local %s:%u, %s/%u pt %u%s%s, ssrc %08x",
			 leg->worker_id, leg->call_id, in->local_ip, in->local_port, in->codec.name,
			 in->codec.rate, in->codec.pt, in->transcoding ? ", transcoding" : "",
			 in->srtp_suite[0] ? ", SRTP" : "", in->ssrc);
		apply_queued(leg, false);
		media_video_send_seq(leg);
		early_flush(leg);
		leg->ready_told = true;
		if (leg->cbs.ready)
			leg->cbs.ready(leg, in, leg->arg);
		return;
	}
	if (status == 0)
		status = -EBADMSG;
	reply_reason(status, reply, why, sizeof(why));
	log_warn(leg->id, "CREATE_LEG on %s failed: %s", media_wname(w), why);
	/* A request that timed out or was cut short may have created the leg anyway. */
	if (status == -ETIMEDOUT || status == -ECANCELED || status == -EBADMSG)
		discard_on(m, w, leg->id);
	leg->w = NULL;
	if (status == -EINVAL || status == -EEXIST || status == -EPROTONOSUPPORT) {
		leg_fail(leg, "worker %s refused the leg: %s", media_wname(w), why);
		return;
	}
	if (leg->attempts >= m->cfg.create_attempts) {
		leg_fail(leg, "no worker could create the leg after %u attempts: %s", leg->attempts, why);
		return;
	}
	try_create(leg);
}

/* The kept sequence header to the leg's (new) worker, ahead of any audio. */
static void send_seq(struct media_leg *leg)
{
	if (leg->seq_len &&
	    dispatcher_send_media(leg->m->d, leg->w, leg->id, 0, 0, leg->seq, leg->seq_len) < 0)
		leg->audio_drops++;
}

static void on_adopt_reply(struct media_leg *leg, struct dispatcher_worker *w, int status,
			   const struct wire_msg *reply)
{
	struct media *m = leg->m;
	char old_ip[MEDIA_IP_MAX + 1], why[320];
	uint16_t old_port = leg->info.local_port;
	uint64_t waited = evloop_now(m->loop) - (leg->deadline - m->cfg.move_timeout_ms);

	snprintf(old_ip, sizeof(old_ip), "%s", leg->info.local_ip);
	if (status == 0 && take_info(leg, w, reply) == 0) {
		struct dispatcher_worker *lost = leg->lost_w;

		leg->state = LEG_READY;
		leg->lost_w = NULL;
		leg->reason[0] = '\0';
		leg->rebase = true;
		m->moves++;
		log_info(leg->id, "leg moved to %s after %" PRIu64 " ms: local %s:%u (was %s:%u), ssrc %08x",
			 leg->worker_id, waited, leg->info.local_ip, leg->info.local_port, old_ip,
			 old_port, leg->info.ssrc);
		discard_on(m, lost, leg->id);
		apply_queued(leg, true);
		send_seq(leg);
		media_video_send_seq(leg);
		if (!leg->ready_told) { /* cannot happen: only ready legs move */
			leg->ready_told = true;
			if (leg->cbs.ready)
				leg->cbs.ready(leg, &leg->info, leg->arg);
		} else if (leg->cbs.moved && (strcmp(old_ip, leg->info.local_ip) != 0 ||
					      old_port != leg->info.local_port)) {
			leg->cbs.moved(leg, leg->info.local_ip, leg->info.local_port, leg->arg);
		}
		if (leg->cbs.changed)
			leg->cbs.changed(leg, leg->arg);
		return;
	}
	if (status == 0)
		status = -EBADMSG;
	reply_reason(status, reply, why, sizeof(why));
	log_warn(leg->id, "ADOPT_LEG on %s failed: %s", media_wname(w), why);
	snprintf(leg->reason, sizeof(leg->reason), "%s: %s", media_wname(w), why);
	if (status == -ETIMEDOUT || status == -ECANCELED || status == -EBADMSG)
		discard_on(m, w, leg->id);
	leg->w = NULL;
	if (status == -ENOENT) {
		m->move_failures++;
		leg_fail(leg, "worker lost: its state is gone (%s)", why);
		return;
	}
	evloop_timer_start(leg->timer, RETRY_MS);
}

/* A worker's answer to an update: the SIP codec it runs now and whether it transcodes. */
static void take_update(struct media_leg *leg, const struct wire_msg *reply)
{
	struct wire_codec c;
	bool tc;

	if (wire_get_codec(reply, WIRE_T_CHOSEN_CODEC, 0, &c) < 0 ||
	    wire_get_bool(reply, WIRE_T_TRANSCODING, &tc) < 0)
		return;
	if (strcmp(c.name, leg->info.codec.name) == 0 && c.rate == leg->info.codec.rate &&
	    c.pt == leg->info.codec.pt && tc == leg->info.transcoding)
		return;
	leg->info.codec = c;
	leg->info.transcoding = tc;
	log_info(leg->id, "SIP codec now %s/%u pt %u%s", c.name, c.rate, c.pt,
		 tc ? ", transcoding" : "");
	if (leg->ready_told && leg->cbs.changed)
		leg->cbs.changed(leg, leg->arg);
}

static void on_reply(struct dispatcher *d, struct dispatcher_worker *w, int status,
		     const struct wire_msg *reply, void *arg)
{
	struct leg_req *r = arg;
	struct media *m = r->m;
	struct media_leg *leg = r->leg;
	uint8_t type = r->type;
	media_leg_done_cb done = r->done;
	char why[320];

	(void)d;
	req_unlink(r);
	m->inflight--;
	if (!w) { /* dispatcher_destroy: nothing may be called */
		free(r);
		return;
	}
	if (!leg) {
		if (status < 0)
			log_debug(r->leg_id, "%s on %s: %s", wire_type_name(type), media_wname(w),
				  strerror(-status));
		free(r);
		return;
	}
	free(r);
	switch (type) {
	case WIRE_CREATE_LEG:
		on_create_reply(leg, w, status, reply);
		break;
	case WIRE_ADOPT_LEG:
		on_adopt_reply(leg, w, status, reply);
		break;
	default:
		if (status < 0) {
			reply_reason(status, reply, why, sizeof(why));
			log_warn(leg->id, "%s on %s failed: %s", wire_type_name(type), media_wname(w), why);
		} else {
			why[0] = '\0';
			if (type == WIRE_UPDATE_LEG && reply)
				take_update(leg, reply);
		}
		if (done)
			done(leg, status, why, leg->arg);
		break;
	}
}

static void on_leg_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct media_leg *leg = arg;

	(void)loop, (void)t;
	switch (leg->state) {
	case LEG_CREATING:
		if (leg->main_req)
			break;
		if (leg->attempts >= leg->m->cfg.create_attempts)
			leg_fail(leg, "no worker could create the leg after %u attempts", leg->attempts);
		else
			try_create(leg);
		break;
	case LEG_MOVING:
		if (!leg->main_req)
			try_adopt(leg);
		break;
	case LEG_FAILED:
		if (!leg->failed_told) {
			leg->failed_told = true;
			if (leg->cbs.failed)
				leg->cbs.failed(leg, leg->reason, leg->arg);
		}
		break;
	case LEG_READY:
		break;
	}
}

/* --- dispatcher callbacks ----------------------------------------------------------------- */

/* @leg, ready on @w, must find another home: ADOPT_LEG from its state in Redis. */
static void leg_move(struct media *m, struct media_leg *leg, struct dispatcher_worker *w)
{
	leg->state = LEG_MOVING;
	leg->lost_w = w;
	leg->w = NULL;
	leg->attempts = 0;
	leg->reason[0] = '\0';
	leg->deadline = evloop_now(m->loop) + m->cfg.move_timeout_ms;
	evloop_timer_start(leg->timer, 0);
}

static void on_worker_down(struct dispatcher *d, struct dispatcher_worker *w, void *arg)
{
	struct media *m = arg;
	unsigned moving = 0;

	(void)d;
	for (struct media_leg *leg = m->legs; leg; leg = leg->next) {
		if (leg->w != w)
			continue;
		switch (leg->state) {
		case LEG_READY:
			leg_move(m, leg, w);
			moving++;
			break;
		case LEG_CREATING:
		case LEG_MOVING:
			/* Its CREATE_LEG / ADOPT_LEG went to a worker now dead: ask another. */
			if (leg->main_req)
				req_cancel(leg->main_req);
			discard_on(m, w, leg->id);
			leg->w = NULL;
			evloop_timer_start(leg->timer, 0);
			break;
		case LEG_FAILED:
			break;
		}
	}
	log_warn(media_wname(w), "mediaworker down: %u leg%s to move, %zu live worker%s left",
		 moving, moving == 1 ? "" : "s", media_live_workers(m),
		 media_live_workers(m) == 1 ? "" : "s");
}

static void on_worker_up(struct dispatcher *d, struct dispatcher_worker *w, bool restarted,
			 void *arg)
{
	struct media *m = arg;
	unsigned back = 0;

	(void)d;
	/* A restarted worker lost its legs; one that was only unreachable still has them. */
	media_orphans_settle(m, w, !restarted);
	for (struct media_leg *leg = m->legs; leg; leg = leg->next) {
		if (leg->state == LEG_MOVING && leg->lost_w == w) {
			if (restarted) {
				leg->lost_w = NULL;
			} else if (!leg->main_req) {
				leg->state = LEG_READY;
				leg->w = w;
				leg->lost_w = NULL;
				evloop_timer_stop(leg->timer);
				back++;
				continue;
			}
		}
		/* Legs waiting for a worker try this one at once. */
		if ((leg->state == LEG_MOVING || leg->state == LEG_CREATING) && !leg->main_req)
			evloop_timer_start(leg->timer, 0);
	}
	log_info(media_wname(w), "mediaworker up%s: %zu live worker%s%s",
		 restarted ? " (restarted)" : "", media_live_workers(m),
		 media_live_workers(m) == 1 ? "" : "s",
		 back ? ", legs stay on it" : "");
}

static void on_event(struct dispatcher *d, struct dispatcher_worker *w, const struct wire_msg *ev,
		     void *arg)
{
	struct media *m = arg;
	char id[WIRE_MAX_ID + 1], reason[WIRE_MAX_STR + 1] = "";
	struct media_leg *leg;
	uint8_t kind = 0, digit = 0;
	uint16_t dur = 0;

	(void)d;
	if (wire_get_cstr(ev, WIRE_T_LEG_ID, id, sizeof(id)) < 0 ||
	    wire_get_u8(ev, WIRE_T_EVENT_KIND, &kind) < 0)
		return;
	leg = media_leg_find(m, id);
	if (!leg || leg->w != w || leg->state != LEG_READY) {
		m->events_unrouted++;
		log_debug(id, "event %u from %s for no leg here: ignored", kind, media_wname(w));
		return;
	}
	switch (kind) {
	case WIRE_EV_DTMF:
		if (wire_get_u8(ev, WIRE_T_DIGIT, &digit) < 0)
			return;
		wire_get_u16(ev, WIRE_T_DURATION_MS, &dur);
		log_info(leg->id, "DTMF '%c' (%u ms)", digit, dur);
		if (leg->cbs.dtmf)
			leg->cbs.dtmf(leg, (char)digit, dur, leg->arg);
		break;
	case WIRE_EV_RTP_TIMEOUT:
		log_info(leg->id, "RTP timeout reported by %s", media_wname(w));
		if (leg->cbs.rtp_timeout)
			leg->cbs.rtp_timeout(leg, leg->arg);
		break;
	case WIRE_EV_LEG_FAILED:
		wire_get_cstr(ev, WIRE_T_REASON, reason, sizeof(reason));
		leg_fail(leg, "worker %s: %s", media_wname(w), reason[0] ? reason : "leg failed");
		break;
	case WIRE_EV_LEG_HANDOVER:
		wire_get_cstr(ev, WIRE_T_REASON, reason, sizeof(reason));
		log_info(leg->id, "%s hands the leg over (draining)%s%s", media_wname(w), reason[0] ? ": " : "",
			 reason);
		leg_move(m, leg, w);
		break;
	default:
		log_debug(leg->id, "event kind %u ignored", kind);
		break;
	}
}

static void on_media(struct dispatcher *d, struct dispatcher_worker *w, const struct wire_media *md,
		     void *arg)
{
	struct media *m = arg;
	struct media_leg *leg = media_leg_find(m, md->leg_id);
	uint64_t now;
	uint32_t ts;

	(void)d;
	if (!leg || leg->w != w || leg->state != LEG_READY) {
		if (m->media_unrouted++ % 1000 == 0)
			log_debug(md->leg_id, "media from %s for no ready leg here: dropped (%" PRIu64 ")",
				  media_wname(w), m->media_unrouted);
		return;
	}
	now = evloop_now(m->loop);
	if (leg->rebase) {
		/* A new worker starts its timeline at 0: continue ours, the gap as a jump. */
		leg->rebase = false;
		if (leg->out_started)
			leg->ts_offset = leg->last_ts + (uint32_t)(now - leg->last_out_at) - md->ts;
	}
	ts = md->ts + leg->ts_offset;
	leg->out_started = true;
	leg->last_ts = ts;
	leg->last_out_at = now;
	leg->audio_out++;
	if (leg->video)
		media_video_in(leg, md, ts);
	else if (leg->cbs.audio_out)
		leg->cbs.audio_out(leg, md->payload, md->len, ts, leg->arg);
}

/* --- life cycle --------------------------------------------------------------------------- */

static void on_reaper(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct media *m = arg;

	(void)loop, (void)t;
	while (m->grave) {
		struct media_leg *leg = m->grave;

		m->grave = leg->next_grave;
		media_video_free(leg);
		free(leg);
	}
}

struct media *media_new(struct evloop *loop, const char *signaler_id, struct redis *redis,
			const struct media_config *cfg)
{
	static const struct media_config defaults;
	struct dispatcher_callbacks cbs = {
		.worker_up = on_worker_up, .worker_down = on_worker_down, .event = on_event,
		.media = on_media,
	};
	struct dispatcher_config dcfg = {0};
	struct media *m;
	uint32_t nonce = 0;
	int ret;

	if (!cfg)
		cfg = &defaults;
	if (!loop || !signaler_id || !wire_id_valid(signaler_id, strlen(signaler_id))) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->loop = loop;
	m->redis = redis;
	m->cfg = *cfg;
	m->cfg.worker_endpoints = NULL;
	if (!m->cfg.request_timeout_ms)
		m->cfg.request_timeout_ms = 500;
	if (!m->cfg.request_retries)
		m->cfg.request_retries = 3;
	if (!m->cfg.create_attempts)
		m->cfg.create_attempts = 3;
	if (!m->cfg.move_timeout_ms)
		m->cfg.move_timeout_ms = 10000;
	if (!m->cfg.discovery_ms)
		m->cfg.discovery_ms = 1000;
	if (!m->cfg.remove_grace_ms)
		m->cfg.remove_grace_ms = 10000;
	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != (ssize_t)sizeof(nonce))
		nonce = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 12;
	/* Leg ids are global (Redis keys): signaler id, a nonce per run, a counter. */
	snprintf(m->prefix, sizeof(m->prefix), "%.38s-%06x", signaler_id, nonce & 0xffffff);
	cbs.arg = m;
	dcfg.curve = cfg->curve;
	m->d = dispatcher_new(loop, signaler_id, &cbs, &dcfg);
	m->reaper = evloop_timer_new(loop, on_reaper, m);
	m->discovery = evloop_timer_new(loop, media_on_discovery_timer, m);
	m->by_id = strmap_new(LEG_BUCKETS, 0);
	if (!m->d || !m->reaper || !m->discovery || !m->by_id)
		goto out_free;
	if (cfg->worker_endpoints && cfg->worker_endpoints[0]) {
		ret = dispatcher_add_workers(m->d, cfg->worker_endpoints);
		if (ret < 0) {
			log_error(SID, "WORKER_ENDPOINTS=\"%s\": malformed (want \"ctl,media[,key];...\"): %s",
				  cfg->worker_endpoints, strerror(-ret));
			errno = EINVAL;
			goto out_free;
		}
	}
	for (size_t i = 0; i < dispatcher_worker_count(m->d); i++)
		if (media_worker_add(m, dispatcher_worker_at(m->d, i), false) < 0)
			goto out_free;
	if (redis) {
		if (redis_add_listener(redis, media_on_redis_up, NULL, m) < 0)
			goto out_free;
		evloop_timer_start(m->discovery, 0);
	}
	log_info(SID, "media bridge: signaler id %s, %zu static worker%s, discovery %s", signaler_id,
		 m->n_workers, m->n_workers == 1 ? "" : "s", redis ? "through Redis" : "off (no Redis)");
	return m;

out_free:
	ret = errno ? errno : ENOMEM;
	if (redis)
		redis_remove_listener(redis, m);
	dispatcher_destroy(&m->d);
	evloop_timer_del(&m->reaper);
	evloop_timer_del(&m->discovery);
	strmap_destroy(&m->by_id, NULL);
	free(m->workers);
	free(m);
	errno = ret;
	return NULL;
}

static void leg_unlink_all(struct media_leg *leg)
{
	struct media *m = leg->m;

	if (strmap_get(m->by_id, leg->id) == leg)
		strmap_del(m->by_id, leg->id);
	if (leg->prev)
		leg->prev->next = leg->next;
	else
		m->legs = leg->next;
	if (leg->next)
		leg->next->prev = leg->prev;
	m->n_legs--;
	while (leg->reqs)
		req_cancel(leg->reqs);
	evloop_timer_del(&leg->timer);
}

void media_destroy(struct media **mp)
{
	struct media *m = mp ? *mp : NULL;

	if (!m)
		return;
	*mp = NULL;
	if (m->n_legs)
		log_warn(SID, "%zu leg%s still open at shutdown", m->n_legs, m->n_legs == 1 ? "" : "s");
	while (m->legs) {
		struct media_leg *leg = m->legs;

		leg_unlink_all(leg);
		early_free(&leg->early);
		free(leg);
	}
	if (m->redis) {
		redis_remove_listener(m->redis, m);
		state_cancel(m->redis, m);
	}
	dispatcher_destroy(&m->d); /* fire-and-forget requests end here with -ECANCELED */
	on_reaper(m->loop, m->reaper, m);
	evloop_timer_del(&m->reaper);
	evloop_timer_del(&m->discovery);
	while (m->orphans) {
		struct orphan *o = m->orphans;

		m->orphans = o->next;
		free(o);
	}
	strmap_destroy(&m->by_id, NULL);
	free(m->workers);
	free(m);
}

bool media_busy(const struct media *m)
{
	return m && m->inflight > 0;
}

size_t media_live_workers(const struct media *m)
{
	size_t n = 0;

	for (size_t i = 0; i < dispatcher_worker_count(m->d); i++)
		n += dispatcher_worker_alive(dispatcher_worker_at(m->d, i));
	return n;
}

void media_log_stats(const struct media *m)
{
	log_info(SID, "stats: legs=%zu workers=%zu live=%zu requests_in_flight=%u moves=%" PRIu64
		 " move_failures=%" PRIu64 " stale_destroyed=%" PRIu64 " orphans=%zu media_unrouted=%" PRIu64
		 " events_unrouted=%" PRIu64,
		 m->n_legs, dispatcher_worker_count(m->d), media_live_workers(m), m->inflight, m->moves,
		 m->move_failures, m->orphans_destroyed, m->n_orphans, m->media_unrouted,
		 m->events_unrouted);
	for (size_t i = 0; i < dispatcher_worker_count(m->d); i++) {
		struct dispatcher_worker_info in;

		dispatcher_worker_info(dispatcher_worker_at(m->d, i), &in);
		log_info(in.worker_id[0] ? in.worker_id : in.ctl_endpoint,
			 "worker: %s, ctl %s, legs %u, cpu %u%%o%s, requests %" PRIu64 ", timeouts %" PRIu64
			 ", media in %" PRIu64 " out %" PRIu64 ", drops %" PRIu64,
			 in.alive ? "alive" : "dead", in.ctl_endpoint, in.legs, in.cpu_permille,
			 in.draining ? ", draining" : "", in.requests, in.timeouts, in.media_in,
			 in.media_out, in.send_drops);
	}
}

/* --- the leg API -------------------------------------------------------------------------- */

/* Printable ASCII without spaces (what Redis records and SIP Call-IDs allow), 1..@max bytes. */
static bool printable(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= max || (unsigned char)s[n] <= 0x20 || (unsigned char)s[n] > 0x7e)
			return false;
	return n > 0;
}

/* At most @max bytes of printable ASCII, spaces included ("" too): an a=fmtp value. */
static bool text_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= max || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
			return false;
	return true;
}

static bool ip_valid(const char *ip)
{
	unsigned char buf[16];

	return ip && strlen(ip) <= MEDIA_IP_MAX &&
	       (inet_pton(AF_INET, ip, buf) == 1 || inet_pton(AF_INET6, ip, buf) == 1);
}

static int set_srtp(struct leg_desired *d, const char *suite, const uint8_t *key, size_t len)
{
	if (!suite)
		return 0;
	if (!key || len == 0 || len > sizeof(d->key) || strlen(suite) >= sizeof(d->suite) ||
	    !printable(suite, sizeof(d->suite) - 1))
		return -EINVAL;
	d->srtp = true;
	snprintf(d->suite, sizeof(d->suite), "%s", suite);
	memcpy(d->key, key, len);
	d->key_len = len;
	return 0;
}

struct media_leg *media_leg_new(struct media *m, const struct media_leg_params *p,
				const struct media_leg_callbacks *cbs, void *arg)
{
	struct media_leg *leg;
	char remote[MEDIA_IP_MAX + 8] = "not yet";

	if (!m || !p || !p->call_id || !printable(p->call_id, WIRE_MAX_STR) || !p->sip_codecs ||
	    p->n_sip_codecs == 0 || p->n_sip_codecs > WIRE_MAX_CODECS ||
	    (p->remote_ip && (!ip_valid(p->remote_ip) || p->remote_port == 0)) ||
	    p->ptime_ms > 65535) {
		errno = EINVAL;
		return NULL;
	}
	leg = calloc(1, sizeof(*leg));
	if (!leg)
		return NULL;
	leg->m = m;
	snprintf(leg->id, sizeof(leg->id), "%s-%" PRIu64, m->prefix, ++m->next_leg);
	snprintf(leg->call_id, sizeof(leg->call_id), "%s", p->call_id);
	leg->rtmp_codec = p->rtmp_codec;
	leg->rtmp_out = p->rtmp_out;
	{
		const struct codec *c = codec_by_name(p->rtmp_codec.name, p->rtmp_codec.rate);

		leg->video = c && c->family == CODEC_FAMILY_VIDEO;
	}
	if (p->sync && !p->sync->destroyed) { /* the call's two legs know each other */
		snprintf(leg->companion, sizeof(leg->companion), "%s", p->sync->id);
		snprintf(p->sync->companion, sizeof(p->sync->companion), "%s", leg->id);
	}
	memcpy(leg->sip, p->sip_codecs, p->n_sip_codecs * sizeof(leg->sip[0]));
	leg->n_sip = p->n_sip_codecs;
	leg->want_srtp = p->want_srtp;
	leg->dtmf_pt = p->dtmf_pt;
	leg->ptime_ms = (uint16_t)p->ptime_ms;
	if (p->remote_ip) {
		leg->want.remote = true;
		snprintf(leg->want.ip, sizeof(leg->want.ip), "%s", p->remote_ip);
		leg->want.port = p->remote_port;
	}
	if (set_srtp(&leg->want, p->srtp_suite, p->srtp_remote_key, p->srtp_remote_key_len) < 0) {
		free(leg);
		errno = EINVAL;
		return NULL;
	}
	if (cbs)
		leg->cbs = *cbs;
	leg->arg = arg;
	leg->timer = evloop_timer_new(m->loop, on_leg_timer, leg);
	if (!leg->timer) {
		free(leg);
		errno = ENOMEM;
		return NULL;
	}
	if (strmap_put(m->by_id, leg->id, leg) < 0) {
		evloop_timer_del(&leg->timer);
		free(leg);
		errno = ENOMEM;
		return NULL;
	}
	leg->next = m->legs;
	if (m->legs)
		m->legs->prev = leg;
	m->legs = leg;
	m->n_legs++;
	leg->state = LEG_CREATING;
	leg->deadline = evloop_now(m->loop) + CREATE_WAIT_MS;
	if (leg->want.remote)
		snprintf(remote, sizeof(remote), "%s:%u", leg->want.ip, leg->want.port);
	log_info(leg->id, "new leg: call %s, RTMP %s/%u, %zu SIP codec%s (first %s/%u), remote %s%s",
		 leg->call_id, leg->rtmp_codec.name, leg->rtmp_codec.rate, leg->n_sip,
		 leg->n_sip == 1 ? "" : "s", leg->sip[0].name, leg->sip[0].rate, remote,
		 leg->want_srtp || leg->want.srtp ? ", SRTP" : "");
	try_create(leg);
	return leg;
}

int media_leg_update(struct media_leg *leg, const struct media_leg_update *u,
		     media_leg_done_cb done)
{
	struct leg_desired d;

	if (!leg || !u || (u->remote_ip && (!ip_valid(u->remote_ip) || u->remote_port == 0)))
		return -EINVAL;
	if (leg->state == LEG_FAILED)
		return -EPIPE;
	d = leg->want;
	if (set_srtp(&d, u->srtp_suite, u->srtp_remote_key, u->srtp_remote_key_len) < 0)
		return -EINVAL;
	if (u->remote_ip) {
		d.remote = true;
		snprintf(d.ip, sizeof(d.ip), "%s", u->remote_ip);
		d.port = u->remote_port;
	}
	if (u->set_codec) {
		d.codec = true;
		d.codec_pt = u->codec_pt;
		if (u->codec_fmtp && !text_ok(u->codec_fmtp, sizeof(d.codec_fmtp) - 1))
			return -EINVAL;
		snprintf(d.codec_fmtp, sizeof(d.codec_fmtp), "%s",
			 u->codec_fmtp ? u->codec_fmtp : "");
	}
	if (u->set_hold) {
		d.hold_set = true;
		d.hold = u->hold;
	}
	leg->want = d;
	leg->updated = true;
	if (leg->state != LEG_READY) {
		leg->update_queued = true;
		if (done)
			leg->queued_done = done;
		return 0;
	}
	return send_update(leg, u, false, done);
}

int media_leg_send_dtmf(struct media_leg *leg, char digit, unsigned duration_ms,
			media_leg_done_cb done)
{
	struct wire_builder b = {0};
	int err;

	if (!leg || !wire_digit_valid(digit) || duration_ms > 65535)
		return -EINVAL;
	if (leg->state == LEG_FAILED)
		return -EPIPE;
	if (leg->state != LEG_READY)
		return -EAGAIN;
	wire_builder_init(&b, WIRE_SEND_DTMF, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, leg->id);
	wire_put_u8(&b, WIRE_T_DIGIT, (uint8_t)digit);
	if (duration_ms)
		wire_put_u16(&b, WIRE_T_DURATION_MS, (uint16_t)duration_ms);
	send_req(leg->m, leg->w, leg, leg->id, &b, done, &err);
	wire_builder_free(&b);
	return err;
}

/* Keeps a frame of a leg being created; false when it cannot (full, too big, no memory). */
static bool early_keep(struct media_leg *leg, const uint8_t *payload, size_t len, uint32_t ts)
{
	struct early_audio *e = leg->early;
	struct early_frame *f;

	if (len > WIRE_MAX_PAYLOAD)
		return false;
	if (!e) {
		e = leg->early = calloc(1, sizeof(*leg->early));
		if (!e)
			return false;
		e->tail = &e->head;
	}
	if (e->n == EARLY_FRAMES || e->bytes + len > EARLY_BYTES_MAX)
		return false;
	f = malloc(sizeof(*f) + len);
	if (!f)
		return false;
	f->next = NULL;
	f->ts = ts;
	f->len = (uint16_t)len;
	memcpy(f->data, payload, len);
	*e->tail = f;
	e->tail = &f->next;
	e->n++;
	e->bytes += len;
	return true;
}

/* Frees what *ep kept; NULL-safe, clears *ep. */
static void early_free(struct early_audio **ep)
{
	struct early_audio *e = *ep;

	if (!e)
		return;
	*ep = NULL;
	while (e->head) {
		struct early_frame *f = e->head;

		e->head = f->next;
		free(f);
	}
	free(e);
}

/* Sends what was kept while the leg was being created, in order. */
static void early_flush(struct media_leg *leg)
{
	struct early_audio *e = leg->early;

	if (!e)
		return;
	for (const struct early_frame *f = e->head; f; f = f->next) {
		if (dispatcher_send_media(leg->m->d, leg->w, leg->id, f->ts, 0, f->data, f->len) < 0)
			leg->audio_drops++;
		else
			leg->audio_in++;
	}
	early_free(&leg->early);
}

/* One message of at most WIRE_MAX_PAYLOAD bytes toward the worker (or kept while creating). */
static int send_one(struct media_leg *leg, const uint8_t *payload, size_t len, uint32_t ts)
{
	int ret;

	if (leg->state == LEG_CREATING && early_keep(leg, payload, len, ts))
		return 0;
	if (leg->state != LEG_READY) {
		leg->audio_drops++;
		return leg->state == LEG_FAILED ? -EPIPE : -EAGAIN;
	}
	ret = dispatcher_send_media(leg->m->d, leg->w, leg->id, ts, 0, payload, len);
	if (ret < 0) {
		leg->audio_drops++;
		return ret == -ENOTCONN ? -EAGAIN : ret;
	}
	leg->audio_in++;
	return 0;
}

int media_leg_send_audio(struct media_leg *leg, const uint8_t *payload, size_t len, uint32_t ts)
{
	uint8_t piece[WIRE_MAX_PAYLOAD];
	struct audio_piece p;
	struct rtmp_audio ra;
	int ret = 0;

	if (leg->video)
		return -EINVAL;
	/* A sequence header (a few bytes) is kept for a worker that takes the leg over. */
	if (len <= sizeof(leg->seq) && codec_rtmp_parse(payload, len, &ra, NULL) == 0 && ra.config) {
		memcpy(leg->seq, payload, len);
		leg->seq_len = (uint8_t)len;
	}
	/* Up to CODEC_RTMP_MAX_AUDIO bytes of codec data after its header: whole. */
	if (len <= 1 + CODEC_RTMP_MAX_AUDIO)
		return send_one(leg, payload, len, ts);
	if (codec_rtmp_parse(payload, len, &ra, NULL) < 0) {
		if (len <= WIRE_MAX_PAYLOAD)
			return send_one(leg, payload, len, ts); /* the worker says what it is */
		leg->audio_drops++;
		return -E2BIG;
	}
	if (len - ra.hdr_len <= CODEC_RTMP_MAX_AUDIO)
		return send_one(leg, payload, len, ts);
	if (ra.codec->family != CODEC_FAMILY_G711) {
		leg->audio_drops++;
		return -E2BIG;
	}
	/* G.711 above it: cut on sample boundaries, each piece with the header and its timestamp
	 * (each one sent, or counted as dropped; the first error is returned). */
	memcpy(piece, payload, ra.hdr_len);
	for (size_t i = 0; audio_g711_piece(ra.hdr_len, len, leg->rtmp_codec.channels,
					    leg->rtmp_codec.rate, ts, i, &p);
	     i++) {
		int err;

		memcpy(piece + ra.hdr_len, payload + ra.hdr_len + p.off, p.len);
		err = send_one(leg, piece, ra.hdr_len + p.len, p.ts);
		if (err < 0 && ret == 0)
			ret = err;
	}
	return ret;
}

void media_leg_destroy(struct media_leg **legp)
{
	struct media_leg *leg = legp ? *legp : NULL;
	struct media *m;
	bool home_alive;

	if (!leg)
		return;
	*legp = NULL;
	if (leg->destroyed)
		return;
	m = leg->m;
	leg->destroyed = true;
	early_free(&leg->early);
	home_alive = leg->w && leg->state == LEG_READY && dispatcher_worker_alive(leg->w);
	log_info(leg->id, "leg destroyed (%s%s%s; audio to worker %" PRIu64 ", from worker %" PRIu64
		 ", dropped %" PRIu64 ")",
		 state_names[leg->state], leg->worker_id[0] ? " on " : "", leg->worker_id,
		 leg->audio_in, leg->audio_out, leg->audio_drops);
	leg_unlink_all(leg); /* cancels its requests: a CREATE/ADOPT in flight is not retried */
	discard_on(m, leg->w, leg->id);
	discard_on(m, leg->lost_w, leg->id);
	/* No live worker will delete the leg's record: do it here. */
	if (!home_alive && leg->home_id[0] && m->redis && redis_is_up(m->redis) &&
	    state_id_valid(leg->home_id))
		state_leg_delete(m->redis, leg->id, leg->home_id, NULL, NULL);
	leg->next_grave = m->grave;
	m->grave = leg;
	evloop_timer_start(m->reaper, 0);
}

const char *media_leg_id(const struct media_leg *leg)
{
	return leg->id;
}

bool media_leg_moving(const struct media_leg *leg)
{
	return leg && leg->state == LEG_MOVING;
}

const struct media_leg_info *media_leg_info(const struct media_leg *leg)
{
	return leg->have_info ? &leg->info : NULL;
}

/* --- read-only views for metrics ---------------------------------------------------------- */

void media_get_stats(const struct media *m, struct media_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (const struct media_leg *leg = m->legs; leg; leg = leg->next) {
		switch (leg->state) {
		case LEG_CREATING:
			out->legs_creating++;
			break;
		case LEG_READY:
			out->legs_ready++;
			break;
		case LEG_MOVING:
			out->legs_moving++;
			break;
		case LEG_FAILED:
			out->legs_failed++;
			break;
		}
	}
	out->legs_created = m->next_leg;
	out->moves = m->moves;
	out->move_failures = m->move_failures;
	out->orphans_destroyed = m->orphans_destroyed;
	out->media_unrouted = m->media_unrouted;
	out->events_unrouted = m->events_unrouted;
	out->requests_in_flight = m->inflight;
	out->orphans = m->n_orphans;
	out->redis_failing = m->redis_failing;
	out->workers_refused = m->workers_refused;
}

void media_foreach_leg(const struct media *m, media_leg_visit_fn fn, void *arg)
{
	for (const struct media_leg *leg = m->legs; leg; leg = leg->next)
		fn(leg->call_id, leg->state == LEG_FAILED, arg);
}

const struct dispatcher *media_dispatcher(const struct media *m)
{
	return m->d;
}

/* --- legs of other signalers (orphan cleanup) ---------------------------------------------- */

int media_destroy_foreign_leg(struct media *m, const char *leg_id, const char *worker_id)
{
	struct dispatcher_worker_info info;

	if (!m || !leg_id || !worker_id || !leg_id[0] || strlen(leg_id) > WIRE_MAX_ID)
		return -EINVAL;
	for (size_t i = 0; i < m->n_workers; i++) {
		dispatcher_worker_info(m->workers[i].w, &info);
		if (strcmp(info.worker_id, worker_id) != 0)
			continue;
		log_info(leg_id, "DESTROY_LEG to %s for a leg of another signaler%s", worker_id,
			 dispatcher_worker_alive(m->workers[i].w) ? "" : " (when it is back)");
		discard_on(m, m->workers[i].w, leg_id);
		return 0;
	}
	return -ENOENT;
}
