/*
 * worker_owner.c - who may act on a leg (docs/protocol.md §6.1), and the requests that wait for
 * Redis to know: ADOPT_LEG and the DESTROY_LEG of another signaler's leg.
 *
 * A leg belongs to the signaler that created it (CREATE_LEG's OWNER must be the requester) or
 * adopted it last. The requester is the signaler id ctl_server bound to the request's CURVE key
 * at HELLO ("" for a connection that is no signaler's: refused, unidentified).
 *
 *   UPDATE_LEG, SEND_DTMF, LEG_STATS   the owner only                    else EPERM not_owner
 *   CREATE_LEG, ADOPT_LEG with OWNER   OWNER is the requester            else EPERM owner_field
 *   DESTROY_LEG, ADOPT_LEG             the owner at once; another signaler only when Redis says
 *                                      the owner is dead or hands the leg over:
 *
 *     leg of another owner --state_leg_takeover(owner, leg)--> yes --> done (ADOPT: new owner)
 *                                                          --> no  --> EPERM owner_alive
 *                                           Redis error / none --> ETIMEDOUT / EPERM unverified
 *     ADOPT_LEG of a leg not here --state_leg_read--> its record names the owner --> as above
 *
 * Each refusal is answered with ERROR, counted by reason (worker_get_stats) and logged at a
 * bounded rate.
 */
#include "worker_int.h"

#include "evloop.h"
#include "redis.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum take_kind { TAKE_ADOPT, TAKE_DESTROY };

struct take {
	struct worker *w;
	struct take *next;
	enum take_kind kind;
	struct ctl_request req;
	char leg_id[WIRE_MAX_ID + 1];
	char owner[WIRE_MAX_ID + 1]; /* the owner whose liveness is asked, "" before */
	bool have_rec;
	struct leg_record rec; /* ADOPT_LEG of a leg not here: its record */
};

static const char *const refusal_names[WORKER_REFUSED_N] = {
	[WORKER_REFUSED_UNIDENTIFIED] = "unidentified",
	[WORKER_REFUSED_NOT_OWNER] = "not_owner",
	[WORKER_REFUSED_OWNER_ALIVE] = "owner_alive",
	[WORKER_REFUSED_OWNER_FIELD] = "owner_field",
	[WORKER_REFUSED_UNVERIFIED] = "unverified",
};

const char *worker_refusal_name(enum worker_refusal r)
{
	return (unsigned)r < WORKER_REFUSED_N ? refusal_names[r] : "?";
}

static void refuse(struct worker *w, const struct ctl_request *req, enum worker_refusal r,
		   int code, const char *leg_id, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Answers @req with ERROR @code and the reason, counts it, logs it at a bounded rate. */
static void refuse(struct worker *w, const struct ctl_request *req, enum worker_refusal r,
		   int code, const char *leg_id, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	w->refused[r]++;
	if (log_limit_ok(&w->refused_log, evloop_now(w->loop), leg_id))
		log_warn(leg_id, "%s from %s%s (key %s) refused (%s): %s", wire_type_name(req->type),
			 req->signaler_id[0] ? "signaler " : "an unidentified connection",
			 req->signaler_id, req->key[0] ? req->key : "none", refusal_names[r], why);
	ctl_server_reply_error(w->ctl, req, code, r == WORKER_REFUSED_OWNER_FIELD ? WIRE_T_OWNER : 0,
			       "%s", why);
}

/* False (after answering EPERM) when the requester is no signaler (no HELLO, another key). */
static bool identified(struct worker *w, const struct ctl_request *req, const char *leg_id)
{
	if (req->signaler_id[0])
		return true;
	refuse(w, req, WORKER_REFUSED_UNIDENTIFIED, EPERM, leg_id,
	       "the request comes from no signaler (no HELLO on this connection, or another key)");
	return false;
}

/* The request's LEG_ID into @id; false after answering EINVAL. */
static bool leg_id_of(struct worker *w, const struct ctl_request *req, const struct wire_msg *m,
		      char *id, size_t size)
{
	if (wire_get_cstr(m, WIRE_T_LEG_ID, id, size) == 0)
		return true;
	ctl_server_reply_error(w->ctl, req, EINVAL, WIRE_T_LEG_ID, "LEG_ID required");
	return false;
}

struct leg *worker_owned_leg(struct worker *w, const struct ctl_request *req,
			     const struct wire_msg *m)
{
	char id[WIRE_MAX_ID + 1];
	struct leg *l;

	if (!leg_id_of(w, req, m, id, sizeof(id)) || !identified(w, req, id))
		return NULL;
	l = worker_leg_find(w, id);
	if (!l) {
		ctl_server_reply_error(w->ctl, req, ENOENT, WIRE_T_LEG_ID, "no leg %s here", id);
		return NULL;
	}
	if (strcmp(l->owner, req->signaler_id) != 0) {
		refuse(w, req, WORKER_REFUSED_NOT_OWNER, EPERM, id, "leg %s belongs to signaler %s",
		       id, l->owner);
		return NULL;
	}
	return l;
}

bool worker_owner_is_requester(struct worker *w, const struct ctl_request *req, const char *owner,
			       const char *leg_id)
{
	if (!identified(w, req, leg_id))
		return false;
	if (strcmp(owner, req->signaler_id) == 0)
		return true;
	refuse(w, req, WORKER_REFUSED_OWNER_FIELD, EPERM, leg_id,
	       "OWNER %s is not the requester %s: a signaler asks for its own legs only", owner,
	       req->signaler_id);
	return false;
}

/* --- requests waiting for Redis ----------------------------------------------------------- */

static struct take *take_new(struct worker *w, enum take_kind kind, const struct ctl_request *req,
			     const char *leg_id)
{
	struct take *t = calloc(1, sizeof(*t));

	if (!t) {
		ctl_server_reply_error(w->ctl, req, ENOMEM, 0, "out of memory");
		return NULL;
	}
	t->w = w;
	t->kind = kind;
	t->req = *req;
	snprintf(t->leg_id, sizeof(t->leg_id), "%s", leg_id);
	return t;
}

static void take_link(struct take *t)
{
	t->next = t->w->takes;
	t->w->takes = t;
}

static void take_unlink(struct take *t)
{
	struct take **pp = &t->w->takes;

	while (*pp && *pp != t)
		pp = &(*pp)->next;
	if (*pp)
		*pp = t->next;
}

unsigned worker_takes_adopting(const struct worker *w)
{
	unsigned n = 0;

	for (const struct take *t = w->takes; t; t = t->next)
		n += t->kind == TAKE_ADOPT;
	return n;
}

void worker_takes_cancel(struct worker *w)
{
	while (w->takes) {
		struct take *t = w->takes;

		w->takes = t->next;
		state_cancel(w->redis, t); /* its callback returns at once on -ECANCELED */
		free(t);
	}
}

/* --- ADOPT_LEG ---------------------------------------------------------------------------- */

/* Builds the leg from its record @rec for @req: same SSRC and keys, the sequence continuing. */
static void adopt_build(struct worker *w, const struct ctl_request *req,
			const struct leg_record *rec)
{
	struct leg_spec spec = {0};
	struct rtp_leg_state st = {0};
	char why[160] = "";
	const struct codec *sip;
	struct leg *l;
	uint32_t idx, jump;
	int cerr;

	spec.id = rec->leg_id;
	spec.call_id = rec->call_id;
	spec.owner = req->signaler_id;
	spec.rtmp_codec = codec_by_rtmp_name(rec->rtmp_codec);
	spec.rtmp_out = rec->rtmp_out[0] ? codec_by_rtmp_name(rec->rtmp_out) : NULL;
	spec.rtmp_rate = rec->rtmp_rate;
	spec.rtmp_channels = rec->rtmp_channels;
	spec.sip_fmtp = rec->sip_fmtp;
	sip = codec_by_name(rec->sip_codec, rec->sip_rate);
	if (!spec.rtmp_codec || !sip) {
		ctl_server_reply_error(w->ctl, req, EINVAL, 0, "leg %s: stored codecs %s / %s/%u unknown",
				       rec->leg_id, rec->rtmp_codec, rec->sip_codec, rec->sip_rate);
		return;
	}
	spec.offered[0] = (struct wire_codec){.pt = rec->sip_pt, .channels = 1, .rate = rec->sip_rate};
	snprintf(spec.offered[0].name, sizeof(spec.offered[0].name), "%s", rec->sip_codec);
	spec.n_offered = 1;
	spec.chosen = 0;
	spec.dtmf_pt = rec->dtmf_pt;
	spec.hold = rec->hold;
	spec.created_ms = rec->created_ms;
	if (rec->srtp_suite[0] && worker_suite_parse(rec->srtp_suite, &spec.srtp) < 0) {
		ctl_server_reply_error(w->ctl, req, EINVAL, 0, "leg %s: stored SRTP suite %s unknown",
				       rec->leg_id, rec->srtp_suite);
		return;
	}
	spec.local_key = rec->srtp_local_key[0] ? rec->srtp_local_key : NULL;
	spec.remote_key = rec->srtp_remote_key[0] ? rec->srtp_remote_key : NULL;

	/* Continuity: same SSRC and keys; the sequence jumps past whatever the old worker may
	 * have sent after the last stored state (a receiver takes a jump for loss, but would
	 * discard repeated sequence numbers, and SRTP would reject them as replays). */
	{
		uint64_t gap = state_now_ms() > rec->updated_ms ? state_now_ms() - rec->updated_ms : 0;

		/* audio: a packet per frame; video: pictures in many packets, up to 500 a second */
		jump = sip->family == CODEC_FAMILY_VIDEO
			   ? (uint32_t)(gap / 2u) + ADOPT_SEQ_MARGIN_VIDEO
			   : (uint32_t)(gap / FRAME_MS) + ADOPT_SEQ_MARGIN;
		if (jump > 20000)
			jump = 20000;
	}
	idx = ((uint32_t)rec->srtp_roc << 16 | rec->seq) + jump;
	st.ssrc = rec->ssrc;
	st.next_seq = (uint16_t)idx;
	st.send_roc = idx >> 16;
	st.next_ts = rec->timestamp;
	st.saved_at_ms = rec->updated_ms;
	snprintf(st.remote_ip, sizeof(st.remote_ip), "%s", rec->remote_ip);
	st.remote_port = rec->remote_port;
	st.payload_type = rec->sip_pt;
	st.tev_payload_type = rec->dtmf_pt;
	st.clock_rate = sip->clock_rate;
	st.samples_per_frame = sip->frame_samples;
	st.srtp_suite = spec.srtp;
	if (spec.local_key)
		snprintf(st.local_key, sizeof(st.local_key), "%s", spec.local_key);
	if (spec.remote_key)
		snprintf(st.remote_key, sizeof(st.remote_key), "%s", spec.remote_key);
	st.on_hold = rec->hold;
	spec.adopt = &st;
	if (w->draining) {
		ctl_server_reply_error(w->ctl, req, EBUSY, 0, "worker %s is draining", w->worker_id);
		return;
	}
	l = worker_leg_create(w, &spec, &cerr, why, sizeof(why));
	if (!l) {
		ctl_server_reply_error(w->ctl, req, -cerr, 0, "%s", why);
		return;
	}
	log_info(l->id, "adopted from worker %s by signaler %s (owner was %s; sequence +%u)",
		 rec->worker, req->signaler_id, rec->owner, jump);
	worker_reply_leg(w, req, l);
}

/* The requester may have the leg: here (its owner becomes the requester) or from its record. */
static void adopt_done(struct take *t)
{
	struct worker *w = t->w;
	struct leg *l = worker_leg_find(w, t->leg_id);

	if (l) { /* already here: a retry raced the first attempt, or a takeover of a live leg */
		if (strcmp(l->owner, t->req.signaler_id) != 0)
			log_info(l->id, "leg now owned by signaler %s (was %s)", t->req.signaler_id,
				 l->owner);
		snprintf(l->owner, sizeof(l->owner), "%s", t->req.signaler_id);
		worker_reply_leg(w, &t->req, l);
	} else if (t->have_rec) {
		adopt_build(w, &t->req, &t->rec);
	} else {
		ctl_server_reply_error(w->ctl, &t->req, ENOENT, WIRE_T_LEG_ID, "leg %s is gone",
				       t->leg_id);
	}
}

/* The signaler may destroy the leg: it does, if the leg is still the one asked about. */
static void destroy_done(struct take *t)
{
	struct worker *w = t->w;
	struct leg *l = worker_leg_find(w, t->leg_id);
	struct wire_builder b = {0};

	if (l && strcmp(l->owner, t->owner) != 0 && strcmp(l->owner, t->req.signaler_id) != 0) {
		refuse(w, &t->req, WORKER_REFUSED_NOT_OWNER, EPERM, t->leg_id,
		       "leg %s changed hands to signaler %s meanwhile", t->leg_id, l->owner);
		return;
	}
	wire_builder_init(&b, WIRE_OK, 0);
	if (l) {
		log_info(l->id, "destroyed for signaler %s: its owner %s is gone or handed it over",
			 t->req.signaler_id, t->owner);
		worker_leg_destroy(l, true);
	} else {
		wire_put_bool(&b, WIRE_T_NOT_FOUND, true);
	}
	ctl_server_reply(w->ctl, &t->req, &b);
	wire_builder_free(&b);
}

static void on_takeover(int err, const char *errmsg, bool yes, void *arg)
{
	struct take *t = arg;
	struct worker *w = t->w;

	if (err == -ECANCELED)
		return; /* worker_takes_cancel frees it */
	take_unlink(t);
	if (err)
		refuse(w, &t->req, WORKER_REFUSED_UNVERIFIED, ETIMEDOUT, t->leg_id,
		       "cannot tell whether signaler %s is alive: %s", t->owner,
		       errmsg ? errmsg : strerror(-err));
	else if (!yes)
		refuse(w, &t->req, WORKER_REFUSED_OWNER_ALIVE, EPERM, t->leg_id,
		       "leg %s belongs to signaler %s, which is alive and did not hand it over",
		       t->leg_id, t->owner);
	else if (t->kind == TAKE_ADOPT)
		adopt_done(t);
	else
		destroy_done(t);
	free(t);
}

/* The leg belongs to @owner, not the requester: may the requester have it? Frees @t. */
static void take_check(struct take *t, const char *owner)
{
	struct worker *w = t->w;
	int err;

	snprintf(t->owner, sizeof(t->owner), "%s", owner);
	if (!w->redis) {
		refuse(w, &t->req, WORKER_REFUSED_UNVERIFIED, EPERM, t->leg_id,
		       "leg %s belongs to signaler %s; without Redis its death cannot be known",
		       t->leg_id, owner);
		free(t);
		return;
	}
	err = state_leg_takeover(w->redis, owner, t->leg_id, 0, on_takeover, t);
	if (err < 0) {
		refuse(w, &t->req, WORKER_REFUSED_UNVERIFIED, ETIMEDOUT, t->leg_id,
		       "cannot tell whether signaler %s is alive: Redis %s", owner, strerror(-err));
		free(t);
		return;
	}
	take_link(t);
}

static void on_record(int err, const char *errmsg, const struct leg_record *rec, void *arg)
{
	struct take *t = arg;
	struct worker *w = t->w;

	if (err == -ECANCELED)
		return; /* worker_takes_cancel frees it */
	take_unlink(t);
	if (err) {
		ctl_server_reply_error(w->ctl, &t->req, err == -ENOENT ? ENOENT : ETIMEDOUT, 0,
				       "leg %s: %s", t->leg_id, errmsg ? errmsg : strerror(-err));
		free(t);
		return;
	}
	t->rec = *rec;
	t->have_rec = true;
	if (strcmp(rec->owner, t->req.signaler_id) != 0) {
		take_check(t, rec->owner);
		return;
	}
	adopt_done(t);
	free(t);
}

void worker_on_adopt_leg(struct ctl_server *s, const struct ctl_request *req,
			 const struct wire_msg *m, void *arg)
{
	struct worker *w = arg;
	char id[WIRE_MAX_ID + 1], owner[WIRE_MAX_ID + 1];
	struct take *t;
	struct leg *l;
	int err;

	if (!leg_id_of(w, req, m, id, sizeof(id)) || !identified(w, req, id))
		return;
	if (wire_get_cstr(m, WIRE_T_OWNER, owner, sizeof(owner)) == 0 &&
	    !worker_owner_is_requester(w, req, owner, id))
		return;
	l = worker_leg_find(w, id);
	if (l && strcmp(l->owner, req->signaler_id) == 0) {
		worker_reply_leg(w, req, l);
		return;
	}
	t = take_new(w, TAKE_ADOPT, req, id);
	if (!t)
		return;
	if (l) {
		take_check(t, l->owner);
		return;
	}
	if (!w->redis) {
		ctl_server_reply_error(s, req, ENOENT, 0, "no Redis configured: nothing to adopt");
		free(t);
		return;
	}
	err = state_leg_read(w->redis, id, on_record, t);
	if (err < 0) {
		ctl_server_reply_error(s, req, ETIMEDOUT, 0, "Redis unavailable: %s", strerror(-err));
		free(t);
		return;
	}
	take_link(t);
}

/* --- DESTROY_LEG -------------------------------------------------------------------------- */

void worker_on_destroy_leg(struct ctl_server *s, const struct ctl_request *req,
			   const struct wire_msg *m, void *arg)
{
	struct worker *w = arg;
	struct wire_builder b = {0};
	char id[WIRE_MAX_ID + 1];
	struct take *t;
	struct leg *l;

	if (!leg_id_of(w, req, m, id, sizeof(id)) || !identified(w, req, id))
		return;
	l = worker_leg_find(w, id);
	if (l && strcmp(l->owner, req->signaler_id) != 0) {
		t = take_new(w, TAKE_DESTROY, req, id);
		if (t)
			take_check(t, l->owner);
		return;
	}
	wire_builder_init(&b, WIRE_OK, 0);
	if (l)
		worker_leg_destroy(l, true);
	else
		wire_put_bool(&b, WIRE_T_NOT_FOUND, true);
	ctl_server_reply(s, req, &b);
	wire_builder_free(&b);
}
