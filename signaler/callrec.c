/*
 * callrec.c - the signaler's heartbeat and call records, written to Redis.
 *
 *   every 1 s: heartbeat --state_signaler_write--> what the hash held before:
 *                 another instance of our id -> first write: our previous run (alone once its
 *                 last "seen" is older than the liveness window); later: another process uses
 *                 our id (logged, never alone while it writes)
 *   app --callrec_write(rec)--> + instance + dialog of the UA's call --> copy kept by call id
 *                               --> state_call_write
 *   UA dialog observer --> the copy's dialog refreshed, marked dirty --> 0 ms timer --> written
 *   Redis up --> heartbeat + every copy rewritten
 *   app --callrec_delete--> copy dropped --> state_call_delete
 *
 * Counters of the sip and call apps' calls (kept with or without Redis, never reset):
 *   callrec_start --> started[app][dir]    first "up" --> answered[app][dir]
 *   callrec_end --> ended[app][reason]: completed if answered, else the SIP status's, else the
 *                   app's local reason --> callrec_delete when the record was written
 */
#include "callrec.h"

#include "config.h"
#include "evloop.h"
#include "log.h"
#include "media.h"
#include "redis.h"
#include "sip_ua.h"
#include "state.h"
#include "strmap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT_MS	 1000
#define REC_BUCKETS	 1024
#define DUP_LOG_EVERY_MS 10000

/*
 * A live call's record as last written, found by gateway id and by SIP Call-ID. by_sip holds the
 * newest entry of a Call-ID; older ones with the same Call-ID hang from it by next_sip.
 */
struct rec_entry {
	struct call_record rec;
	bool dirty; /* the dialog changed since the last write */
	struct rec_entry *next_sip, *next_dirty;
};

static struct redis *redis;
static struct evloop *loop;
static struct sip_ua *ua;
static char signaler[STATE_ID_MAX + 1];
static char instance[STATE_ID_MAX + 1];
static char prefix[STATE_ID_MAX + 1];
static unsigned call_ttl_s;
static uint64_t counter;
static struct ev_timer *hb_timer, *flush_timer;
static struct signaler_record hb;
static bool hb_inflight, hb_written_once;
static uint64_t foreign_seen_ms; /* last "seen" of another instance of our id */
static uint64_t dup_logged_ms;
static struct strmap *by_id, *by_sip; /* made with the first entry */
static struct rec_entry *dirty_list;
static size_t n_entries;
static const char hb_tag[] = "callrec"; /* our requests' callback argument */
static struct callrec_stats stats;

static const char *const app_names[CALLREC_APPS] = {
	[CALLREC_APP_SIP] = "sip",
	[CALLREC_APP_CALL] = "call",
};

static const char *const dir_names[CALLREC_DIRS] = {
	[CALLREC_DIR_OUT] = "out",
	[CALLREC_DIR_IN] = "in",
};

static const char *const reason_names[CALLREC_END_REASONS] = {
	[CALLREC_END_COMPLETED] = "completed",
	[CALLREC_END_BUSY] = "busy",
	[CALLREC_END_DECLINED] = "declined",
	[CALLREC_END_NOT_FOUND] = "not_found",
	[CALLREC_END_AUTH] = "auth",
	[CALLREC_END_NOT_ACCEPTABLE] = "not_acceptable",
	[CALLREC_END_NO_ANSWER] = "no_answer",
	[CALLREC_END_CANCELLED] = "cancelled",
	[CALLREC_END_SERVER_ERROR] = "server_error",
	[CALLREC_END_OTHER_SIP] = "other_sip",
	[CALLREC_END_NO_MEDIA] = "no_media",
	[CALLREC_END_CLIENT_LEFT] = "client_left",
	[CALLREC_END_REJECTED_BY_CLIENT] = "rejected_by_client",
	[CALLREC_END_ERROR] = "error",
};

/* Final statuses with a reason of their own; other 5xx are server_error, the rest other_sip. */
static const struct {
	int status;
	enum callrec_end_reason reason;
} status_reasons[] = {
	{.status = 401, .reason = CALLREC_END_AUTH},
	{.status = 403, .reason = CALLREC_END_AUTH},
	{.status = 404, .reason = CALLREC_END_NOT_FOUND},
	{.status = 407, .reason = CALLREC_END_AUTH},
	{.status = 408, .reason = CALLREC_END_NO_ANSWER},
	{.status = 415, .reason = CALLREC_END_NOT_ACCEPTABLE},
	{.status = 480, .reason = CALLREC_END_NO_ANSWER},
	{.status = 484, .reason = CALLREC_END_NOT_FOUND},
	{.status = 486, .reason = CALLREC_END_BUSY},
	{.status = 487, .reason = CALLREC_END_CANCELLED},
	{.status = 488, .reason = CALLREC_END_NOT_ACCEPTABLE},
	{.status = 600, .reason = CALLREC_END_BUSY},
	{.status = 603, .reason = CALLREC_END_DECLINED},
	{.status = 604, .reason = CALLREC_END_NOT_FOUND},
	{.status = 606, .reason = CALLREC_END_NOT_ACCEPTABLE},
};

/* --- the copies of live call records ------------------------------------------------------- */

static struct rec_entry *find_by_id(const char *call_id)
{
	return strmap_get(by_id, call_id);
}

static struct rec_entry *find_by_sip(const char *sip_call_id)
{
	return strmap_get(by_sip, sip_call_id);
}

/* Adds @e under its Call-ID, ahead of older entries of the same. 0 or -ENOMEM. */
static int link_sip(struct rec_entry *e)
{
	const char *cid = e->rec.sip_call_id;

	e->next_sip = strmap_set(by_sip, cid, e);
	return e->next_sip || strmap_put(by_sip, cid, e) == 0 ? 0 : -ENOMEM;
}

static void unlink_sip(struct rec_entry *e)
{
	struct rec_entry *head = strmap_get(by_sip, e->rec.sip_call_id), **pp = &head;

	while (*pp && *pp != e)
		pp = &(*pp)->next_sip;
	if (*pp && pp != &head)
		*pp = e->next_sip;
	else if (*pp && e->next_sip)
		strmap_set(by_sip, e->rec.sip_call_id, e->next_sip);
	else if (*pp)
		strmap_del(by_sip, e->rec.sip_call_id);
	e->next_sip = NULL;
}

static void unlink_dirty(struct rec_entry *e)
{
	struct rec_entry **pp = &dirty_list;

	while (*pp && *pp != e)
		pp = &(*pp)->next_dirty;
	if (*pp)
		*pp = e->next_dirty;
	e->next_dirty = NULL;
	e->dirty = false;
}

static void entry_free(struct rec_entry *e)
{
	if (strmap_get(by_id, e->rec.call_id) == e)
		strmap_del(by_id, e->rec.call_id);
	unlink_sip(e);
	if (e->dirty)
		unlink_dirty(e);
	free(e);
	n_entries--;
}

/* Stores @rec as the copy of its call (made on first sight). NULL when out of memory. */
static struct rec_entry *entry_put(const struct call_record *rec)
{
	struct rec_entry *e = find_by_id(rec->call_id);

	if (!e) {
		if (!by_id)
			by_id = strmap_new(REC_BUCKETS, 0);
		if (!by_sip)
			by_sip = strmap_new(REC_BUCKETS, 0);
		e = calloc(1, sizeof(*e));
		if (!e || strmap_put(by_id, rec->call_id, e) < 0) {
			free(e);
			return NULL;
		}
		n_entries++;
	} else {
		unlink_sip(e);
	}
	e->rec = *rec;
	if (e->dirty)
		unlink_dirty(e);
	return link_sip(e) == 0 ? e : NULL;
}

static void entries_clear(void)
{
	strmap_destroy(&by_sip, NULL);
	strmap_destroy(&by_id, free);
	n_entries = 0;
	dirty_list = NULL;
}

/* --- writes -------------------------------------------------------------------------------- */

static void written(int err, const char *errmsg, void *arg)
{
	if (err && err != -ECANCELED)
		log_warn(NULL, "redis: record not written: %s", errmsg ? errmsg : strerror(-err));
}

static void call_write(struct call_record *rec)
{
	int r;

	rec->updated_ms = 0;
	r = state_call_write(redis, rec, call_ttl_s, written, NULL);
	if (r < 0 && r != -ENOTCONN)
		log_warn(rec->call_id, "redis: call record not written: %s", strerror(-r));
}

void callrec_set_sip(struct call_record *r, const struct sip_call *call)
{
	struct sip_dialog_info d;

	if (!r || !call)
		return;
	sip_call_dialog(call, &d); /* what is known so far */
	snprintf(r->local_tag, sizeof(r->local_tag), "%s", d.local_tag);
	snprintf(r->remote_tag, sizeof(r->remote_tag), "%s", d.remote_tag);
	snprintf(r->local_uri, sizeof(r->local_uri), "%s", d.local_uri);
	snprintf(r->remote_uri, sizeof(r->remote_uri), "%s", d.remote_uri);
	snprintf(r->remote_target, sizeof(r->remote_target), "%s", d.remote_target);
	snprintf(r->route, sizeof(r->route), "%s", d.route);
	snprintf(r->transport, sizeof(r->transport), "%s", d.transport);
	snprintf(r->dest, sizeof(r->dest), "%s", d.dest);
	r->local_cseq = d.local_cseq;
	/* From and To, when the app left them to us: the caller's and the callee's URI. */
	if (!r->from_uri[0])
		snprintf(r->from_uri, sizeof(r->from_uri), "%s",
			 d.outgoing ? d.local_uri : d.remote_uri);
	if (!r->to_uri[0])
		snprintf(r->to_uri, sizeof(r->to_uri), "%s",
			 d.outgoing ? d.remote_uri : d.local_uri);
}

/* The UA says a call's dialog changed: rewrite its record soon (coalesced with app writes). */
static void on_dialog(struct sip_call *call, void *arg)
{
	const char *cid = sip_call_callid(call);
	struct rec_entry *e = cid ? find_by_sip(cid) : NULL;

	(void)arg;
	if (!e || !redis)
		return;
	callrec_set_sip(&e->rec, call);
	if (!e->dirty) {
		e->dirty = true;
		e->next_dirty = dirty_list;
		dirty_list = e;
	}
	if (flush_timer && !evloop_timer_armed(flush_timer))
		evloop_timer_start(flush_timer, 0);
}

static void on_flush(struct evloop *l, struct ev_timer *t, void *arg)
{
	(void)l, (void)t, (void)arg;
	while (dirty_list) {
		struct rec_entry *e = dirty_list;

		unlink_dirty(e);
		log_debug(e->rec.call_id, "redis: call record rewritten (dialog changed)");
		call_write(&e->rec);
	}
}

/* --- counters ------------------------------------------------------------------------------ */

/* The index of @name in @names, or -1: records of other apps (or without one) are not counted. */
static int index_of(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

static enum callrec_end_reason reason_of(const struct call_record *rec, int sip_status,
					 enum callrec_end_reason local)
{
	if (rec->answered_ms)
		return CALLREC_END_COMPLETED;
	/* nua's own failures come as 7xx-9xx: not the peer's answer, the local reason says more */
	if (sip_status >= 300 && sip_status < 700) {
		for (size_t i = 0; i < sizeof(status_reasons) / sizeof(status_reasons[0]); i++)
			if (status_reasons[i].status == sip_status)
				return status_reasons[i].reason;
		return sip_status >= 500 && sip_status < 600 ? CALLREC_END_SERVER_ERROR
							     : CALLREC_END_OTHER_SIP;
	}
	if (local == CALLREC_END_COMPLETED || (unsigned)local >= CALLREC_END_REASONS)
		return CALLREC_END_ERROR; /* a normal end needs an answer */
	return local;
}

const char *callrec_app_name(enum callrec_app app)
{
	return (unsigned)app < CALLREC_APPS ? app_names[app] : "";
}

const char *callrec_dir_name(enum callrec_dir dir)
{
	return (unsigned)dir < CALLREC_DIRS ? dir_names[dir] : "";
}

const char *callrec_end_reason_name(enum callrec_end_reason reason)
{
	return (unsigned)reason < CALLREC_END_REASONS ? reason_names[reason] : "";
}

void callrec_get_stats(struct callrec_stats *st)
{
	*st = stats;
	for (int a = 0; a < CALLREC_APPS; a++) {
		uint64_t started = 0, ended = 0;

		for (int d = 0; d < CALLREC_DIRS; d++)
			started += stats.started[a][d];
		for (int r = 0; r < CALLREC_END_REASONS; r++)
			ended += stats.ended[a][r];
		st->active[a] = started - ended;
	}
}

/* --- the apps' records --------------------------------------------------------------------- */

void callrec_start(struct call_record *rec, const char *app, const char *direction)
{
	int a = index_of(app_names, CALLREC_APPS, app);
	int d = index_of(dir_names, CALLREC_DIRS, direction);

	snprintf(rec->call_id, sizeof(rec->call_id), "%.45s.%llu", prefix,
		 (unsigned long long)++counter);
	snprintf(rec->signaler, sizeof(rec->signaler), "%s", signaler);
	snprintf(rec->instance, sizeof(rec->instance), "%s", instance);
	snprintf(rec->app, sizeof(rec->app), "%s", app);
	snprintf(rec->direction, sizeof(rec->direction), "%s", direction);
	rec->created_ms = state_now_ms();
	if (a >= 0 && d >= 0)
		stats.started[a][d]++;
}

void callrec_write(struct call_record *rec)
{
	struct sip_call *call;
	struct rec_entry *e;

	if (!redis || !rec->call_id[0])
		return;
	snprintf(rec->instance, sizeof(rec->instance), "%s", instance);
	call = ua && rec->sip_call_id[0] ? sip_ua_find_call(ua, rec->sip_call_id) : NULL;
	if (call)
		callrec_set_sip(rec, call);
	e = entry_put(rec);
	if (!e)
		log_warn(rec->call_id, "redis: out of memory: the call record will not follow the "
				       "dialog");
	call_write(rec);
}

void callrec_update(struct call_record *rec, const char *state, const struct sip_call *sip,
		    const struct media_leg *leg)
{
	const struct media_leg_info *in = leg ? media_leg_info(leg) : NULL;

	if (state != rec->state) /* an app may pass the record's own state back (overlap) */
		snprintf(rec->state, sizeof(rec->state), "%s", state);
	if (sip)
		snprintf(rec->sip_call_id, sizeof(rec->sip_call_id), "%s", sip_call_callid(sip));
	if (leg)
		snprintf(rec->leg_id, sizeof(rec->leg_id), "%s", media_leg_id(leg));
	if (in) {
		snprintf(rec->worker, sizeof(rec->worker), "%s", in->worker_id ? in->worker_id : "");
		rec->transcoding = in->transcoding;
	}
	if (strcmp(state, "up") == 0 && !rec->answered_ms) {
		int a = index_of(app_names, CALLREC_APPS, rec->app);
		int d = index_of(dir_names, CALLREC_DIRS, rec->direction);

		rec->answered_ms = state_now_ms();
		if (rec->call_id[0] && a >= 0 && d >= 0)
			stats.answered[a][d]++;
	}
	callrec_write(rec);
}

const char *callrec_sip_call_id(const char *call_id)
{
	struct rec_entry *e = call_id ? find_by_id(call_id) : NULL;

	return e && e->rec.sip_call_id[0] ? e->rec.sip_call_id : NULL;
}

size_t callrec_count(void)
{
	return n_entries;
}

void callrec_delete(const char *call_id)
{
	struct rec_entry *e;

	if (!redis || !call_id || !call_id[0])
		return;
	e = find_by_id(call_id);
	if (e)
		entry_free(e);
	state_call_delete(redis, call_id, signaler, written, NULL);
}

void callrec_end(struct call_record *rec, int sip_status, enum callrec_end_reason local)
{
	int a, d;

	if (!rec->call_id[0])
		return;
	a = index_of(app_names, CALLREC_APPS, rec->app);
	d = index_of(dir_names, CALLREC_DIRS, rec->direction);
	if (a >= 0 && d >= 0)
		stats.ended[a][reason_of(rec, sip_status, local)]++;
	callrec_delete(rec->call_id);
	rec->call_id[0] = '\0';
}

/* --- heartbeat ----------------------------------------------------------------------------- */

static void hb_written(int err, const char *errmsg, const char *prev_instance,
		       uint64_t prev_seen_ms, void *arg)
{
	uint64_t now = state_now_ms();

	(void)errmsg, (void)arg;
	hb_inflight = false;
	if (err || !redis)
		return;
	if (prev_instance[0] && strcmp(prev_instance, instance) != 0) {
		if (prev_seen_ms > foreign_seen_ms)
			foreign_seen_ms = prev_seen_ms;
		if (!hb_written_once) {
			log_info(signaler,
				 "signaler: previous run %s of this id last seen %" PRId64
				 " ms ago; its calls are ended once it is %u ms silent",
				 prev_instance, (int64_t)(now - prev_seen_ms),
				 STATE_SIGNALER_LIVENESS_MS);
		} else if (now - dup_logged_ms >= DUP_LOG_EVERY_MS) {
			dup_logged_ms = now;
			log_error(signaler,
				  "signaler: another process uses SIGNALER_ID %s (instance "
				  "%s): each id must be unique; orphan cleanup of this id is "
				  "suspended",
				  signaler, prev_instance);
		}
	}
	hb_written_once = true;
}

static void heartbeat(void)
{
	int r;

	if (!redis || hb_inflight || !redis_is_up(redis))
		return;
	hb.last_seen_ms = 0;
	r = state_signaler_write(redis, &hb, STATE_SIGNALER_TTL_S, hb_written, (void *)hb_tag);
	if (r == 0)
		hb_inflight = true;
	else if (r != -ENOTCONN && r != -EAGAIN)
		log_warn(signaler, "redis: heartbeat not written: %s", strerror(-r));
}

static void on_hb_timer(struct evloop *l, struct ev_timer *t, void *arg)
{
	(void)l, (void)arg;
	heartbeat();
	evloop_timer_start(t, HEARTBEAT_MS);
}

static bool rewrite(const char *call_id, void *val, void *arg)
{
	struct rec_entry *e = val;

	(void)call_id, (void)arg;
	call_write(&e->rec);
	return false;
}

/* Redis (re)connected: it may have lost everything (no persistence): write it all again. */
static void on_redis_up(struct redis *r, void *arg)
{
	(void)r, (void)arg;
	heartbeat();
	strmap_sweep(by_id, rewrite, NULL);
}

bool callrec_alone(uint64_t now_ms)
{
	return redis && hb_written_once &&
	       (foreign_seen_ms == 0 || now_ms > foreign_seen_ms + STATE_SIGNALER_LIVENESS_MS);
}

const char *callrec_instance(void)
{
	return instance;
}

void callrec_set_ua(struct sip_ua *u)
{
	if (ua && ua != u)
		sip_ua_set_dialog_observer(ua, NULL, NULL);
	ua = u;
	if (ua && redis)
		sip_ua_set_dialog_observer(ua, on_dialog, NULL);
}

/* The heartbeat's fixed fields: host, SIP contact, RTMP address. */
static void hb_fill(void)
{
	const char *rtmp_bind = config_str("RTMP_BIND", "127.0.0.1");
	const char *sip_host = config_str("SIP_ADVERTISED_IP", config_str("SIP_BIND", rtmp_bind));
	int64_t rtmp_port = 1935, sip_port = 5060;
	bool v6;

	memset(&hb, 0, sizeof(hb));
	snprintf(hb.signaler_id, sizeof(hb.signaler_id), "%s", signaler);
	snprintf(hb.instance_id, sizeof(hb.instance_id), "%s", instance);
	hb.pid = (uint32_t)getpid();
	if (gethostname(hb.host, sizeof(hb.host) - 1) < 0 || !hb.host[0])
		snprintf(hb.host, sizeof(hb.host), "localhost");
	for (char *p = hb.host; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			*p = '-';
	config_int("RTMP_PORT", 1935, 0, 65535, &rtmp_port);
	config_int("SIP_PORT", 5060, 0, 65535, &sip_port);
	v6 = strchr(rtmp_bind, ':') != NULL;
	snprintf(hb.rtmp, sizeof(hb.rtmp), "%s%.200s%s:%lld", v6 ? "[" : "", rtmp_bind,
		 v6 ? "]" : "", (long long)rtmp_port);
	v6 = strchr(sip_host, ':') != NULL;
	if (sip_port > 0)
		snprintf(hb.sip, sizeof(hb.sip), "%s%.200s%s:%lld", v6 ? "[" : "", sip_host,
			 v6 ? "]" : "", (long long)sip_port);
	for (char *p = hb.rtmp; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			*p = '-';
	for (char *p = hb.sip; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			*p = '-';
	hb.started_ms = state_now_ms();
}

static void detach(void)
{
	if (ua)
		sip_ua_set_dialog_observer(ua, NULL, NULL);
	ua = NULL;
	evloop_timer_del(&hb_timer);
	evloop_timer_del(&flush_timer);
	if (redis) {
		redis_remove_listener(redis, hb_tag);
		state_cancel(redis, hb_tag);
	}
	entries_clear();
	redis = NULL;
	loop = NULL;
	hb_inflight = hb_written_once = false;
	foreign_seen_ms = dup_logged_ms = 0;
}

int callrec_init(struct evloop *l, struct redis *r, const char *signaler_id)
{
	struct state_config cfg;
	uint8_t rnd[8];

	detach();
	if (!l || !r || !signaler_id)
		return 0;
	if (state_config_from_env(&cfg) < 0)
		return -EINVAL;
	call_ttl_s = cfg.call_ttl_s;
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		uint64_t x = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20 ^ (uint64_t)clock();

		memcpy(rnd, &x, sizeof(rnd));
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(instance + 2 * i, 3, "%02x", rnd[i]);
	snprintf(signaler, sizeof(signaler), "%s", signaler_id);
	/* Call ids are global (Redis keys): signaler id, a nonce per run, a counter. */
	snprintf(prefix, sizeof(prefix), "%.38s.%.6s", signaler_id, instance);
	hb_fill();
	hb_timer = evloop_timer_new(l, on_hb_timer, NULL);
	flush_timer = evloop_timer_new(l, on_flush, NULL);
	if (!hb_timer || !flush_timer ||
	    redis_add_listener(r, on_redis_up, NULL, (void *)hb_tag) < 0) {
		evloop_timer_del(&hb_timer);
		evloop_timer_del(&flush_timer);
		return -ENOMEM;
	}
	loop = l;
	redis = r;
	log_info(signaler, "signaler: instance %s, heartbeat every %u ms (SIP %s, RTMP %s)",
		 instance, HEARTBEAT_MS, hb.sip[0] ? hb.sip : "off", hb.rtmp);
	heartbeat();
	evloop_timer_start(hb_timer, HEARTBEAT_MS);
	return 0;
}
