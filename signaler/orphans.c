/*
 * orphans.c - ends the calls of dead signalers and of this signaler's previous run (orphans.h).
 *
 *   tick (1 s) --our previous run silent (callrec_alone) and not cleaned yet--> pass(self)
 *              --else--> ZRANGEBYSCORE rs:v1:signalers: ids unseen for 5 s --> pass(id), one
 *                        after the other (ids that failed wait 30 s)
 *
 *   pass(id):
 *     LOCK    SET rs:v1:lock:orphans:<id> NX PX 10000   (not taken: someone else is on it, done)
 *     LIVE    rs:v1:signaler:<id>: alive (came back)? its instance's records are kept
 *     CALLS   SMEMBERS <id>:calls, at most 64 records at once:
 *               HGETALL call --> BYE from the stored dialog (sip_ua_bye_dialog, not awaited)
 *                            --> leg record --> DESTROY_LEG on its worker + delete the leg record
 *                            --> delete the call record (kept if it belongs to the live instance)
 *     REGS    SMEMBERS <id>:regs --> delete each registration record (the registrar expires the
 *             binding)
 *     FORGET  ZREM <id> if both indexes are empty and it is still silent (not for ourselves)
 *     UNLOCK  DEL the lock if still ours
 *
 * Everything read is validated by the state layer; a record that does not validate is skipped
 * with a log line and the pass counts as incomplete (retried later). Nothing blocks: every step
 * is an asynchronous Redis request whose callback moves the pass on.
 */
#include "orphans.h"

#include "callrec.h"
#include "evloop.h"
#include "log.h"
#include "media.h"
#include "redis.h"
#include "sip_ua.h"
#include "state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS	      1000
#define LOCK_TTL_MS   10000
#define IN_FLIGHT_MAX 64    /* records handled at once */
#define RETRY_MS      30000 /* a signaler whose pass was incomplete waits this long */
#define SELF_RETRY_MS 5000
#define BACKOFF_SLOTS 64
#define RECENT_MS     (STATE_SIGNALER_LIVENESS_MS / 2) /* see on_call_read */

enum phase { PH_LOCK, PH_LIVE, PH_CALLS, PH_REGS, PH_FORGET, PH_UNLOCK };

struct pass;

/* One record being handled (a call id or an AOR); its requests carry it as their argument. */
struct item {
	struct pass *p;
	struct item *next;
	char id[STATE_AOR_MAX + 1];
	char leg[STATE_ID_MAX + 1]; /* calls: the leg, and the worker the call record names */
	char worker[STATE_ID_MAX + 1];
	unsigned ops; /* its requests in flight */
};

/* The cleanup of one signaler's records. */
struct pass {
	struct orphans *o;
	char id[STATE_ID_MAX + 1];
	char lock[STATE_LOCK_NAME_MAX + 1];
	char keep[STATE_ID_MAX + 1]; /* instance whose records stay ("": none) */
	bool self;
	bool locked;
	uint64_t started_ms;
	enum phase phase;
	char **ids; /* the members of the index being handled */
	size_t n_ids, next;
	struct item *items;
	size_t active;
	bool incomplete;
	size_t calls, regs; /* records ended / deleted */
};

struct backoff {
	char id[STATE_ID_MAX + 1];
	uint64_t until_ms;
};

struct orphans {
	struct evloop *loop;
	struct redis *redis;
	struct sip_ua *ua;
	struct media *media;
	char self[STATE_ID_MAX + 1];
	char holder[STATE_ID_MAX + 1]; /* the lock's value: this run's instance */
	struct ev_timer *tick;
	bool closing;
	bool self_done;
	uint64_t self_retry_ms;
	bool listing;
	struct pass *pass;
	char (*queue)[STATE_ID_MAX + 1];
	size_t n_queue, i_queue;
	struct backoff backoff[BACKOFF_SLOTS];
};

static void phase_next(struct pass *p);
static void pump(struct pass *p);

/* --- helpers ------------------------------------------------------------------------------ */

static bool backed_off(const struct orphans *o, const char *id, uint64_t now)
{
	for (size_t i = 0; i < BACKOFF_SLOTS; i++)
		if (o->backoff[i].id[0] && strcmp(o->backoff[i].id, id) == 0)
			return now < o->backoff[i].until_ms;
	return false;
}

static void back_off(struct orphans *o, const char *id, uint64_t until)
{
	size_t slot = 0;

	for (size_t i = 0; i < BACKOFF_SLOTS; i++) {
		if (strcmp(o->backoff[i].id, id) == 0) {
			slot = i;
			break;
		}
		if (o->backoff[i].until_ms < o->backoff[slot].until_ms)
			slot = i; /* the oldest (or an empty) slot */
	}
	snprintf(o->backoff[slot].id, sizeof(o->backoff[slot].id), "%s", id);
	o->backoff[slot].until_ms = until;
}

static void ids_free(struct pass *p)
{
	for (size_t i = 0; i < p->n_ids; i++)
		free(p->ids[i]);
	free(p->ids);
	p->ids = NULL;
	p->n_ids = p->next = 0;
}

static struct item *item_new(struct pass *p, const char *id)
{
	struct item *it = calloc(1, sizeof(*it));

	if (!it)
		return NULL;
	it->p = p;
	snprintf(it->id, sizeof(it->id), "%s", id);
	it->next = p->items;
	p->items = it;
	p->active++;
	return it;
}

static void item_free(struct item *it)
{
	struct item **pp = &it->p->items;

	while (*pp && *pp != it)
		pp = &(*pp)->next;
	if (*pp)
		*pp = it->next;
	it->p->active--;
	free(it);
}

/* A request of @it was sent (@ret 0) or refused (logged). */
static void launched(struct item *it, int ret, const char *what)
{
	if (ret == 0) {
		it->ops++;
		return;
	}
	log_warn(it->id, "orphans: %s not sent: %s", what, strerror(-ret));
	it->p->incomplete = true;
}

/* One request of @it completed: when none is left, the item is done and the next one starts. */
static void op_done(struct item *it)
{
	struct pass *p = it->p;

	if (it->ops > 0)
		it->ops--;
	if (it->ops > 0)
		return;
	item_free(it);
	pump(p);
}

/* --- calls -------------------------------------------------------------------------------- */

static void on_call_deleted(int err, const char *errmsg, bool yes, void *arg)
{
	struct item *it = arg;

	if (err == -ECANCELED)
		return;
	if (err) {
		log_warn(it->id, "orphans: call record not deleted: %s", errmsg);
		it->p->incomplete = true;
	} else if (yes) {
		log_info(it->id, "orphans: call record deleted from Redis (index of %s)",
			 it->p->id);
	} else {
		log_info(it->id, "orphans: call record kept: it belongs to the live instance %s",
			 it->p->keep);
	}
	op_done(it);
}

static void delete_call(struct item *it)
{
	struct pass *p = it->p;

	launched(it,
		 state_call_delete_orphan(p->o->redis, it->id, p->id, p->keep, on_call_deleted, it),
		 "call record delete");
}

static void on_bye(int status, const char *phrase, void *arg)
{
	(void)status, (void)phrase, (void)arg; /* sip_ua logs the outcome with the call id */
}

/* The dialog of @c as sip_ua needs it; NULL, or why no BYE can be sent. */
static const char *dialog_of(const struct call_record *c, struct sip_dialog_info *d)
{
	bool in = strcmp(c->direction, "in") == 0;

	if (in && strcmp(c->state, "up") != 0 && strcmp(c->state, "held") != 0)
		return "an unanswered incoming call (the callee may not send BYE; the caller's "
		       "INVITE times out)";
	if (!c->remote_tag[0])
		return "the peer has not answered (no To tag): its INVITE transaction times out";
	if (!c->local_tag[0] || !c->local_uri[0] || !c->remote_uri[0] || !c->remote_target[0])
		return "the record holds no complete dialog (written before the ACK, or by an "
		       "older build)";
	memset(d, 0, sizeof(*d));
	snprintf(d->call_id, sizeof(d->call_id), "%s", c->sip_call_id);
	snprintf(d->local_tag, sizeof(d->local_tag), "%s", c->local_tag);
	snprintf(d->remote_tag, sizeof(d->remote_tag), "%s", c->remote_tag);
	snprintf(d->local_uri, sizeof(d->local_uri), "%s", c->local_uri);
	snprintf(d->remote_uri, sizeof(d->remote_uri), "%s", c->remote_uri);
	snprintf(d->remote_target, sizeof(d->remote_target), "%s", c->remote_target);
	snprintf(d->route, sizeof(d->route), "%s", c->route);
	snprintf(d->transport, sizeof(d->transport), "%.7s", c->transport);
	snprintf(d->dest, sizeof(d->dest), "%s", c->dest);
	d->local_cseq = c->local_cseq;
	d->outgoing = !in;
	d->confirmed = strcmp(c->state, "up") == 0 || strcmp(c->state, "held") == 0;
	return NULL;
}

static void send_bye(struct item *it, const struct call_record *c)
{
	struct orphans *o = it->p->o;
	struct sip_dialog_info d;
	const char *why = dialog_of(c, &d);
	int ret;

	if (why) {
		log_info(it->id, "orphans: no BYE: %s", why);
		return;
	}
	if (!o->ua) {
		log_warn(it->id, "orphans: no SIP stack here: the BYE cannot be sent");
		return;
	}
	ret = sip_ua_bye_dialog(o->ua, &d, it->id, on_bye, o);
	if (ret < 0)
		log_warn(it->id, "orphans: BYE not sent: %s", strerror(-ret));
}

static void on_leg_deleted(int err, const char *errmsg, void *arg)
{
	struct item *it = arg;

	if (err == -ECANCELED)
		return;
	if (err)
		log_warn(it->id, "orphans: leg record %s not deleted: %s", it->leg, errmsg);
	op_done(it);
}

static void destroy_leg(struct item *it, const char *worker)
{
	struct orphans *o = it->p->o;
	int ret;

	if (!worker[0]) {
		log_info(it->id, "orphans: leg %s names no worker: nothing to destroy", it->leg);
		return;
	}
	if (!o->media) {
		log_warn(it->id, "orphans: no media bridge here: leg %s left on %s", it->leg,
			 worker);
		return;
	}
	ret = media_destroy_foreign_leg(o->media, it->leg, worker);
	if (ret == 0)
		log_info(it->id, "orphans: leg %s: DESTROY_LEG to worker %s", it->leg, worker);
	else
		log_warn(it->id, "orphans: leg %s on worker %s not destroyed: %s", it->leg, worker,
			 ret == -ENOENT ? "worker unknown here" : strerror(-ret));
}

static void on_leg_read(int err, const char *errmsg, const struct leg_record *leg, void *arg)
{
	struct item *it = arg;
	struct pass *p = it->p;

	if (err == -ECANCELED)
		return;
	if (err == 0 && strcmp(leg->owner, p->id) != 0) {
		log_info(it->id, "orphans: leg %s is controlled by %s now: left alone", it->leg,
			 leg->owner);
	} else if (err == 0) {
		destroy_leg(it, leg->worker);
		launched(it,
			 state_leg_delete(p->o->redis, it->leg, leg->worker, on_leg_deleted, it),
			 "leg record delete");
	} else {
		if (err != -ENOENT)
			log_warn(it->id, "orphans: leg record %s skipped: %s", it->leg, errmsg);
		else
			log_info(it->id, "orphans: leg record %s is gone", it->leg);
		destroy_leg(it, it->worker);
	}
	op_done(it);
}

static void end_call(struct item *it, const struct call_record *c)
{
	struct pass *p = it->p;

	log_info(it->id,
		 "orphans: call of %s (%s %s %s %s, Call-ID %s, state %s, instance %s): ending it",
		 p->id, c->app, c->from_uri, strcmp(c->direction, "in") == 0 ? "<-" : "->",
		 c->to_uri, c->sip_call_id, c->state, c->instance[0] ? c->instance : "?");
	p->calls++;
	send_bye(it, c);
	if (c->leg_id[0]) {
		snprintf(it->leg, sizeof(it->leg), "%s", c->leg_id);
		snprintf(it->worker, sizeof(it->worker), "%s", c->worker);
		launched(it, state_leg_read(p->o->redis, c->leg_id, on_leg_read, it), "leg read");
	}
	delete_call(it);
}

static void on_call_read(int err, const char *errmsg, const struct call_record *c, void *arg)
{
	struct item *it = arg;
	struct pass *p = it->p;

	if (err == -ECANCELED)
		return;
	if (err == -ENOENT) {
		log_info(it->id, "orphans: call record of %s is gone: dropped from its index",
			 p->id);
		delete_call(it);
	} else if (err) {
		log_warn(it->id, "orphans: call record of %s skipped: %s", p->id, errmsg);
		p->incomplete = true;
	} else if (strcmp(c->signaler, p->id) != 0) {
		log_info(it->id, "orphans: call is owned by %s now: only dropped from %s's index",
			 c->signaler, p->id);
		delete_call(it);
	} else if (p->keep[0] && strcmp(c->instance, p->keep) == 0) {
		log_debug(it->id, "orphans: call of the live instance %s: kept", p->keep);
	} else if (!p->self && c->updated_ms + RECENT_MS > p->started_ms) {
		/* A dead signaler wrote nothing in its last silent seconds: this one was written
		 * by a run that just came back. Left alone; looked at again later. */
		log_info(it->id,
			 "orphans: call of %s written %" PRId64 " ms ago: its owner may be "
			 "alive, left alone for now",
			 p->id, (int64_t)(p->started_ms - c->updated_ms));
		p->incomplete = true;
	} else {
		end_call(it, c);
	}
	op_done(it);
}

/* --- registrations ------------------------------------------------------------------------ */

static void on_reg_deleted(int err, const char *errmsg, bool yes, void *arg)
{
	struct item *it = arg;

	if (err == -ECANCELED)
		return;
	if (err) {
		log_warn(it->id, "orphans: registration record not deleted: %s", errmsg);
		it->p->incomplete = true;
	} else if (yes) {
		log_info(it->id,
			 "orphans: registration record of %s deleted (the registrar lets "
			 "the binding expire)",
			 it->p->id);
	}
	op_done(it);
}

static void delete_reg(struct item *it)
{
	struct pass *p = it->p;

	launched(it,
		 state_reg_delete_orphan(p->o->redis, it->id, p->id, p->keep, on_reg_deleted, it),
		 "registration record delete");
}

static void on_reg_read(int err, const char *errmsg, const struct reg_record *g, void *arg)
{
	struct item *it = arg;
	struct pass *p = it->p;

	if (err == -ECANCELED)
		return;
	if (err == -ENOENT) {
		delete_reg(it);
	} else if (err) {
		log_warn(it->id, "orphans: registration record of %s skipped: %s", p->id, errmsg);
		p->incomplete = true;
	} else if (p->keep[0] && strcmp(g->instance, p->keep) == 0) {
		log_debug(it->id, "orphans: registration of the live instance %s: kept", p->keep);
	} else {
		if (strcmp(g->signaler, p->id) == 0) {
			log_info(it->id,
				 "orphans: registration of %s (contact %s, instance %s): "
				 "deleting its record",
				 p->id, g->contact[0] ? g->contact : "?",
				 g->instance[0] ? g->instance : "?");
			p->regs++;
		}
		delete_reg(it);
	}
	op_done(it);
}

/* --- the pass ----------------------------------------------------------------------------- */

/* Starts records of the current index while fewer than IN_FLIGHT_MAX are in flight; moves to the
 * next phase when all are done. */
static void pump(struct pass *p)
{
	struct orphans *o = p->o;

	if (o->closing)
		return;
	while (p->active < IN_FLIGHT_MAX && p->next < p->n_ids) {
		const char *id = p->ids[p->next++];
		struct item *it = item_new(p, id);
		int ret;

		if (!it) {
			log_warn(p->id, "orphans: out of memory: the rest of the index waits");
			p->incomplete = true;
			p->next = p->n_ids;
			break;
		}
		ret = p->phase == PH_CALLS ? state_call_read(o->redis, id, on_call_read, it)
					   : state_reg_read(o->redis, id, on_reg_read, it);
		launched(it, ret, "record read");
		if (it->ops == 0)
			item_free(it);
	}
	if (p->active == 0 && p->next == p->n_ids) {
		ids_free(p);
		phase_next(p);
	}
}

static void on_index(int err, const char *errmsg, const char *const *ids, size_t n, void *arg)
{
	struct pass *p = arg;

	if (err == -ECANCELED)
		return;
	if (err) {
		log_warn(p->id, "orphans: %s index of %s unreadable: %s",
			 p->phase == PH_CALLS ? "calls" : "registrations", p->id, errmsg);
		p->incomplete = true;
		phase_next(p);
		return;
	}
	p->ids = n ? calloc(n, sizeof(*p->ids)) : NULL;
	for (size_t i = 0; p->ids && i < n; i++) {
		p->ids[i] = strdup(ids[i]);
		if (!p->ids[i])
			break;
		p->n_ids++;
	}
	if (n && p->n_ids < n) {
		log_warn(p->id, "orphans: out of memory");
		p->incomplete = true;
	}
	if (p->n_ids)
		log_info(p->id, "orphans: %zu %s in the index of %s to look at", p->n_ids,
			 p->phase == PH_CALLS ? "call(s)" : "registration(s)", p->id);
	pump(p);
}

static void pass_finish(struct pass *p);

static void on_unlocked(int err, const char *errmsg, bool yes, void *arg)
{
	struct pass *p = arg;

	if (err == -ECANCELED)
		return;
	pass_finish(p);
}

static void on_forgot(int err, const char *errmsg, bool yes, void *arg)
{
	struct pass *p = arg;

	if (err == -ECANCELED)
		return;
	if (!err && yes)
		log_info(p->id, "orphans: signaler %s forgotten (no calls or registrations left)",
			 p->id);
	phase_next(p);
}

static void on_live(int err, const char *errmsg, const struct signaler_record *rec, void *arg)
{
	struct pass *p = arg;
	uint64_t now = state_now_ms();

	if (err == -ECANCELED)
		return;
	if (err == 0 && rec->last_seen_ms + STATE_SIGNALER_LIVENESS_MS > now) {
		snprintf(p->keep, sizeof(p->keep), "%s", rec->instance_id);
		log_info(p->id,
			 "orphans: %s is alive again (instance %s): only records of its "
			 "earlier runs are cleaned up",
			 p->id, p->keep);
	} else if (err && err != -ENOENT) {
		log_warn(p->id, "orphans: heartbeat of %s unreadable (%s): taken as dead", p->id,
			 errmsg);
	}
	phase_next(p);
}

/* Moves @p to its next phase and sends that phase's request. */
static void phase_next(struct pass *p)
{
	struct orphans *o = p->o;
	int ret = 0;

	if (o->closing)
		return;
	switch (p->phase) {
	case PH_LOCK:
		p->phase = PH_LIVE;
		if (p->self) {
			snprintf(p->keep, sizeof(p->keep), "%s", callrec_instance());
			phase_next(p);
			return;
		}
		ret = state_signaler_read(o->redis, p->id, on_live, p);
		break;
	case PH_LIVE:
		p->phase = PH_CALLS;
		ret = state_signaler_calls(o->redis, p->id, on_index, p);
		break;
	case PH_CALLS:
		p->phase = PH_REGS;
		ret = state_signaler_regs(o->redis, p->id, on_index, p);
		break;
	case PH_REGS:
		p->phase = PH_FORGET;
		if (p->self || p->incomplete) {
			phase_next(p);
			return;
		}
		ret = state_signaler_forget(
		    o->redis, p->id, state_now_ms() - STATE_SIGNALER_LIVENESS_MS, on_forgot, p);
		break;
	case PH_FORGET:
		p->phase = PH_UNLOCK;
		ret = state_lock_release(o->redis, p->lock, o->holder, on_unlocked, p);
		break;
	case PH_UNLOCK:
		pass_finish(p);
		return;
	}
	if (ret < 0) {
		log_warn(p->id, "orphans: Redis request not sent (%s): cleanup of %s stopped",
			 strerror(-ret), p->id);
		p->incomplete = true;
		if (p->phase != PH_UNLOCK) {
			p->phase = PH_FORGET; /* straight to the unlock */
			phase_next(p);
		} else {
			pass_finish(p);
		}
	}
}

static bool next_queued(struct orphans *o);

static void pass_finish(struct pass *p)
{
	struct orphans *o = p->o;
	uint64_t now = state_now_ms();

	if (p->calls || p->regs || p->incomplete)
		log_info(p->id,
			 "orphans: cleanup of %s done: %zu call(s) ended, %zu "
			 "registration(s) deleted%s",
			 p->self ? "our previous run" : p->id, p->calls, p->regs,
			 p->incomplete ? "; incomplete, retried later" : "");
	if (p->self) {
		o->self_done = p->locked && !p->incomplete;
		o->self_retry_ms = now + SELF_RETRY_MS;
	} else if (p->incomplete) {
		back_off(o, p->id, now + RETRY_MS);
	}
	while (p->items)
		item_free(p->items);
	ids_free(p);
	free(p);
	o->pass = NULL;
	if (!o->closing)
		next_queued(o);
}

static void on_locked(int err, const char *errmsg, bool yes, void *arg)
{
	struct pass *p = arg;

	if (err == -ECANCELED)
		return;
	if (err || !yes) {
		if (!err)
			log_debug(p->id, "orphans: another signaler is cleaning up %s", p->id);
		else
			p->incomplete = true;
		pass_finish(p);
		return;
	}
	p->locked = true;
	if (!p->self)
		log_info(p->id, "orphans: signaler %s silent for over %u ms: ending its calls",
			 p->id, STATE_SIGNALER_LIVENESS_MS);
	phase_next(p);
}

static void pass_start(struct orphans *o, const char *id, bool self)
{
	struct pass *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return;
	p->o = o;
	p->self = self;
	p->phase = PH_LOCK;
	p->started_ms = state_now_ms();
	snprintf(p->id, sizeof(p->id), "%s", id);
	snprintf(p->lock, sizeof(p->lock), "orphans:%s", id);
	o->pass = p;
	ret = state_lock_take(o->redis, p->lock, o->holder, LOCK_TTL_MS, on_locked, p);
	if (ret < 0) {
		log_debug(p->id, "orphans: lock request not sent: %s", strerror(-ret));
		free(p);
		o->pass = NULL;
		if (self)
			o->self_retry_ms = state_now_ms() + SELF_RETRY_MS;
	}
}

/* --- the tick ----------------------------------------------------------------------------- */

static bool next_queued(struct orphans *o)
{
	uint64_t now = state_now_ms();

	while (o->i_queue < o->n_queue) {
		const char *id = o->queue[o->i_queue++];

		if (strcmp(id, o->self) == 0 || backed_off(o, id, now))
			continue;
		pass_start(o, id, false);
		if (o->pass)
			return true;
	}
	return false;
}

static void on_stale(int err, const char *errmsg, const char *const *ids, size_t n, void *arg)
{
	struct orphans *o = arg;
	char(*q)[STATE_ID_MAX + 1];

	if (err == -ECANCELED)
		return;
	o->listing = false;
	if (err) {
		log_debug(NULL, "orphans: signaler list unreadable: %s", errmsg);
		return;
	}
	o->n_queue = o->i_queue = 0;
	if (n == 0)
		return;
	q = realloc(o->queue, n * sizeof(*q));
	if (!q)
		return;
	o->queue = q;
	for (size_t i = 0; i < n; i++)
		snprintf(o->queue[o->n_queue++], sizeof(o->queue[0]), "%s", ids[i]);
	if (!o->pass)
		next_queued(o);
}

static void on_tick(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct orphans *o = arg;
	uint64_t now = state_now_ms();

	(void)loop;
	evloop_timer_start(t, TICK_MS);
	if (o->closing || o->pass || !redis_is_up(o->redis))
		return;
	if (!o->self_done && now >= o->self_retry_ms && callrec_alone(now)) {
		pass_start(o, o->self, true);
		if (o->pass)
			return;
	}
	if (next_queued(o) || o->listing)
		return;
	if (state_signalers_stale(o->redis, now, STATE_SIGNALER_LIVENESS_MS, on_stale, o) == 0)
		o->listing = true;
}

/* --- public -------------------------------------------------------------------------------- */

struct orphans *orphans_new(struct evloop *loop, struct redis *redis, const char *signaler_id,
			    struct sip_ua *ua, struct media *media)
{
	struct orphans *o;

	errno = 0;
	if (!redis)
		return NULL;
	if (!loop || !state_id_valid(signaler_id)) {
		errno = EINVAL;
		return NULL;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->loop = loop;
	o->redis = redis;
	o->ua = ua;
	o->media = media;
	snprintf(o->self, sizeof(o->self), "%s", signaler_id);
	snprintf(o->holder, sizeof(o->holder), "%s",
		 state_id_valid(callrec_instance()) ? callrec_instance() : signaler_id);
	o->tick = evloop_timer_new(loop, on_tick, o);
	if (!o->tick) {
		free(o);
		errno = ENOMEM;
		return NULL;
	}
	evloop_timer_start(o->tick, TICK_MS);
	log_info(NULL, "orphans: checking every %u ms for signalers silent over %u ms%s%s", TICK_MS,
		 STATE_SIGNALER_LIVENESS_MS, ua ? "" : " (no SIP: no BYEs)",
		 media ? "" : " (no media bridge: legs only deleted from Redis)");
	return o;
}

void orphans_destroy(struct orphans **op)
{
	struct orphans *o = op ? *op : NULL;

	if (!o)
		return;
	*op = NULL;
	o->closing = true;
	evloop_timer_del(&o->tick);
	if (o->pass) {
		struct pass *p = o->pass;

		for (struct item *it = p->items; it; it = it->next)
			state_cancel(o->redis, it);
		state_cancel(o->redis, p);
		while (p->items)
			item_free(p->items);
		ids_free(p);
		free(p);
	}
	state_cancel(o->redis, o);
	if (o->ua)
		sip_ua_bye_forget(o->ua, o);
	free(o->queue);
	free(o);
}
