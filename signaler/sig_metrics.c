/*
 * sig_metrics.c - the signaler's Prometheus metrics and health checks (see sig_metrics.h).
 *
 *   GET /metrics --> metrics_render --> collect(): rtmp_server, media_get_stats,
 *                                       media_foreach_leg, dispatcher_worker_info, redis,
 *                                       callrec_get_stats
 *   GET /healthz --> "ok"
 *   GET /readyz  --> sig_metrics_ready(): RTMP listening, a live worker, Redis up if configured
 *
 * The families are a table; collect() sets every value from the current state at each scrape.
 * The HTTP side and the registry are common/metrics.c's metrics_server: this file has the
 * signaler's families, its collectors and its readiness rule.
 */
#include "sig_metrics.h"

#include "call_policy.h"
#include "callrec.h"
#include "dispatcher.h"
#include "evloop.h"
#include "media.h"
#include "metrics.h"
#include "redis.h"
#include "rtmp_server.h"
#include "sip_ua.h"
#include "tls.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PORT 9100

struct families {
	struct metric *ready, *rtmp_conns, *rtmp_accepted, *rtmp_refused, *rtmp_msgs, *rtmp_bytes,
	    *rtmp_media_dropped, *rtmp_handshakes, *rtmp_hs_refused;
	struct metric *rtmps_accepted, *rtmps_failures, *rtmps_reloads, *rtmps_expiry;
	struct metric *calls, *calls_active, *calls_started, *calls_answered, *calls_ended;
	struct metric *workers_refused;
	struct metric *legs, *legs_created, *moves, *move_failures, *orphans_destroyed,
	    *media_unrouted, *events_unrouted, *requests_in_flight;
	struct metric *workers, *live_workers, *w_up, *w_draining, *w_legs, *w_cpu, *w_capacity,
	    *w_pending, *w_requests, *w_timeouts, *w_errors, *w_retries, *w_late, *w_restarts,
	    *w_media, *w_send_drops, *w_handshake_failures;
	struct metric *redis_configured, *redis_up, *redis_disconnects, *redis_discovery_failing;
	struct metric *sip_enabled, *sip_refused, *calls_refused;
};

struct sig_metrics {
	struct rtmp_server *srv;
	struct media *media;
	struct redis *redis;
	struct sip_ua *sip;
	struct metrics_server *server;
	uint64_t redis_disconnects;
	struct families f;
};

static const char *const L_WORKER[] = {"worker", NULL};
static const char *const L_WORKER_DIR[] = {"worker", "direction", NULL};
static const char *const L_APP[] = {"app", NULL};
static const char *const L_STATE[] = {"state", NULL};
static const char *const L_DIR[] = {"direction", NULL};
static const char *const L_APP_DIR[] = {"app", "direction", NULL};
static const char *const L_APP_REASON[] = {"app", "reason", NULL};
static const char *const L_REASON[] = {"reason", NULL};
static const char *const L_RESULT[] = {"result", NULL};

#define F(field) offsetof(struct families, field)
static const struct metrics_family_def family_defs[] = {
    {F(ready), METRIC_GAUGE, "signaler_ready", "1 when /readyz answers 200.", NULL},
    {F(rtmp_conns), METRIC_GAUGE, "signaler_rtmp_connections", "RTMP connections open now.", NULL},
    {F(rtmp_accepted), METRIC_COUNTER, "signaler_rtmp_connections_accepted_total",
     "RTMP connections accepted.", NULL},
    {F(rtmp_refused), METRIC_COUNTER, "signaler_rtmp_connections_refused_total",
     "RTMP connections refused by the connection limits.", NULL},
    {F(rtmp_msgs), METRIC_COUNTER, "signaler_rtmp_messages_total", "RTMP messages.", L_DIR},
    {F(rtmp_bytes), METRIC_COUNTER, "signaler_rtmp_bytes_total", "RTMP bytes.", L_DIR},
    {F(rtmp_media_dropped), METRIC_COUNTER, "signaler_rtmp_media_dropped_total",
     "Media messages dropped toward slow RTMP players.", NULL},
    {F(rtmp_handshakes), METRIC_GAUGE, "signaler_rtmp_handshakes",
     "RTMP and RTMPS connections open now that have not finished the handshake (TLS included).",
     NULL},
    {F(rtmp_hs_refused), METRIC_COUNTER, "signaler_rtmp_handshakes_refused_total",
     "Connections closed at accept by RTMP_MAX_HANDSHAKES or RTMP_MAX_HANDSHAKES_PER_IP (also in "
     "signaler_rtmp_connections_refused_total).", NULL},
    {F(rtmps_accepted), METRIC_COUNTER, "signaler_rtmps_connections_accepted_total",
     "Connections accepted on the RTMPS port (also in signaler_rtmp_connections_accepted_total).",
     NULL},
    {F(rtmps_failures), METRIC_COUNTER, "signaler_rtmps_handshake_failures_total",
     "TLS handshakes on the RTMPS port that failed, or did not finish within RTMP_HANDSHAKE_TIMEOUT.",
     NULL},
    {F(rtmps_reloads), METRIC_COUNTER, "signaler_rtmps_certificate_reloads_total",
     "SIGHUP reloads of the RTMPS certificate: ok, or failed (the previous one stayed).", L_RESULT},
    {F(rtmps_expiry), METRIC_GAUGE, "signaler_rtmps_certificate_expiry_timestamp_seconds",
     "Expiry (notAfter) of the RTMPS certificate in use, in Unix seconds.", NULL},
    {F(calls), METRIC_GAUGE, "signaler_calls",
     "Media legs now by the app that made them (one per call with media); failed legs excluded.",
     L_APP},
    {F(calls_active), METRIC_GAUGE, "signaler_calls_active",
     "Calls of the sip and call apps now, from their start to their end (ringing included).",
     L_APP},
    {F(calls_started), METRIC_COUNTER, "signaler_calls_started_total",
     "Calls the sip and call apps started.", L_APP_DIR},
    {F(calls_answered), METRIC_COUNTER, "signaler_calls_answered_total",
     "Calls of the sip and call apps answered (up for the first time).", L_APP_DIR},
    {F(calls_ended), METRIC_COUNTER, "signaler_calls_ended_total",
     "Calls of the sip and call apps ended, each once, by reason (completed: answered).",
     L_APP_REASON},
    {F(legs), METRIC_GAUGE, "signaler_legs", "Media legs now by state.", L_STATE},
    {F(legs_created), METRIC_COUNTER, "signaler_legs_created_total", "Media legs created.", NULL},
    {F(moves), METRIC_COUNTER, "signaler_leg_moves_total",
     "Legs adopted by another worker after theirs died.", NULL},
    {F(move_failures), METRIC_COUNTER, "signaler_leg_move_failures_total",
     "Legs lost with their worker (no worker adopted them).", NULL},
    {F(workers_refused), METRIC_COUNTER, "signaler_workers_refused_total",
     "Mediaworkers found in Redis and not used: the CURVE key they announce is not in "
     "CURVE_ALLOWED_KEYS (once per worker and key).",
     NULL},
    {F(orphans_destroyed), METRIC_COUNTER, "signaler_stale_legs_destroyed_total",
     "Stale leg copies destroyed on workers that came back.", NULL},
    {F(media_unrouted), METRIC_COUNTER, "signaler_media_unrouted_total",
     "Media frames from workers for no ready leg (dropped).", NULL},
    {F(events_unrouted), METRIC_COUNTER, "signaler_events_unrouted_total",
     "Events from workers for no ready leg (ignored).", NULL},
    {F(requests_in_flight), METRIC_GAUGE, "signaler_worker_requests_in_flight",
     "Leg requests to workers awaiting an answer.", NULL},
    {F(workers), METRIC_GAUGE, "signaler_workers", "Mediaworkers known (static or discovered).",
     NULL},
    {F(live_workers), METRIC_GAUGE, "signaler_live_workers", "Mediaworkers alive (heartbeats).",
     NULL},
    {F(w_up), METRIC_GAUGE, "signaler_worker_up", "1 while the worker is alive.", L_WORKER},
    {F(w_draining), METRIC_GAUGE, "signaler_worker_draining",
     "1 while the worker drains (takes no new legs).", L_WORKER},
    {F(w_legs), METRIC_GAUGE, "signaler_worker_legs",
     "Legs the worker reported in its last heartbeat.", L_WORKER},
    {F(w_cpu), METRIC_GAUGE, "signaler_worker_cpu_permille",
     "CPU load the worker reported in its last heartbeat (per mille of one core).", L_WORKER},
    {F(w_capacity), METRIC_GAUGE, "signaler_worker_capacity_legs",
     "Legs the worker accepts at most (0: no limit).", L_WORKER},
    {F(w_pending), METRIC_GAUGE, "signaler_worker_pending_requests",
     "ZeroMQ requests to the worker awaiting a reply.", L_WORKER},
    {F(w_requests), METRIC_COUNTER, "signaler_worker_requests_total",
     "ZeroMQ requests sent to the worker (first attempts).", L_WORKER},
    {F(w_timeouts), METRIC_COUNTER, "signaler_worker_request_timeouts_total",
     "ZeroMQ requests to the worker that got no reply after every attempt.", L_WORKER},
    {F(w_errors), METRIC_COUNTER, "signaler_worker_request_errors_total",
     "ERROR replies from the worker.", L_WORKER},
    {F(w_retries), METRIC_COUNTER, "signaler_worker_request_retries_total",
     "ZeroMQ requests resent to the worker after a timeout.", L_WORKER},
    {F(w_late), METRIC_COUNTER, "signaler_worker_late_replies_total",
     "Replies from the worker to requests no longer waited for.", L_WORKER},
    {F(w_restarts), METRIC_COUNTER, "signaler_worker_restarts_total",
     "Times the worker came back with a new instance id.", L_WORKER},
    {F(w_media), METRIC_COUNTER, "signaler_worker_media_frames_total",
     "Media frames to and from the worker.", L_WORKER_DIR},
    {F(w_send_drops), METRIC_COUNTER, "signaler_worker_send_drops_total",
     "Messages to the worker ZeroMQ refused (high-water mark, no peer).", L_WORKER},
    {F(w_handshake_failures), METRIC_COUNTER, "signaler_worker_handshake_failures_total",
     "CURVE handshakes with the worker that failed (our key refused, or not the worker's key).",
     L_WORKER},
    {F(redis_configured), METRIC_GAUGE, "signaler_redis_configured", "1 when Redis is used.", NULL},
    {F(redis_up), METRIC_GAUGE, "signaler_redis_up", "1 while the Redis link is up.", NULL},
    {F(redis_disconnects), METRIC_COUNTER, "signaler_redis_disconnects_total",
     "Times the Redis link went down.", NULL},
    {F(redis_discovery_failing), METRIC_GAUGE, "signaler_redis_discovery_failing",
     "1 when the last worker discovery in Redis failed.", NULL},
    {F(sip_enabled), METRIC_GAUGE, "signaler_sip_enabled", "1 when the SIP user agent runs.", NULL},
    {F(calls_refused), METRIC_COUNTER, "signaler_calls_refused_total",
     "Calls RTMP clients asked for and did not get, by reason: destination (CALL_DESTINATIONS), "
     "client_rate, rate, client_active, active (the limits), auth (no token or credentials, "
     "not registered).",
     L_REASON},
    {F(sip_refused), METRIC_COUNTER, "signaler_sip_refused_total",
     "SIP messages refused: over SIP_MAX_MESSAGE (too_large), unparsable (malformed), requests "
     "outside a dialog from untrusted sources (untrusted, answered 403).",
     L_REASON},
};
#undef F

static struct metric *fam(struct families *f, size_t off)
{
	return *(struct metric **)((char *)f + off);
}

/* --- collection ------------------------------------------------------------------------- */

struct call_counts {
	double call, sip, rtp, other;
};

/* The app of a leg from its call id: the apps name them "<app>/...". */
static void count_call(const char *call_id, bool failed, void *arg)
{
	struct call_counts *c = arg;

	if (failed)
		return;
	if (strncmp(call_id, "call/", 5) == 0)
		c->call++;
	else if (strncmp(call_id, "sip/", 4) == 0)
		c->sip++;
	else if (strncmp(call_id, "rtp/", 4) == 0)
		c->rtp++;
	else
		c->other++;
}

static void set1(struct metric *m, const char *label, double v)
{
	metric_set_l(m, (const char *const[]){label}, v);
}

static void set2(struct metric *m, const char *l1, const char *l2, double v)
{
	metric_set_l(m, (const char *const[]){l1, l2}, v);
}

static void collect_rtmp(struct sig_metrics *sm)
{
	struct families *f = &sm->f;
	const struct rtmp_stats *st = rtmp_server_stats(sm->srv);
	struct tls_ctx *tls = rtmp_server_tls(sm->srv);

	metric_set(f->rtmp_conns, rtmp_server_conn_count(sm->srv));
	metric_set(f->rtmp_accepted, (double)st->accepted);
	metric_set(f->rtmp_refused, (double)st->refused);
	set1(f->rtmp_msgs, "in", (double)st->msgs_in);
	set1(f->rtmp_msgs, "out", (double)st->msgs_out);
	set1(f->rtmp_bytes, "in", (double)st->bytes_in);
	set1(f->rtmp_bytes, "out", (double)st->bytes_out);
	metric_set(f->rtmp_media_dropped, (double)st->media_dropped);
	metric_set(f->rtmp_handshakes, rtmp_server_handshake_count(sm->srv));
	metric_set(f->rtmp_hs_refused, (double)st->handshakes_refused);
	metric_set(f->rtmps_accepted, (double)st->tls_accepted);
	metric_set(f->rtmps_failures, (double)st->tls_failures);
	if (tls) {
		struct tls_ctx_stats ts;

		tls_ctx_get_stats(tls, &ts);
		set1(f->rtmps_reloads, "ok", (double)ts.reloads);
		set1(f->rtmps_reloads, "failed", (double)ts.reload_failures);
		metric_set(f->rtmps_expiry, (double)ts.not_after);
	}
}

static void collect_media(struct sig_metrics *sm)
{
	struct families *f = &sm->f;
	struct media_stats ms;
	struct call_counts cc = {0};

	media_get_stats(sm->media, &ms);
	media_foreach_leg(sm->media, count_call, &cc);
	set1(f->calls, "call", cc.call);
	set1(f->calls, "sip", cc.sip);
	set1(f->calls, "rtp", cc.rtp);
	set1(f->calls, "other", cc.other);
	set1(f->legs, "creating", (double)ms.legs_creating);
	set1(f->legs, "ready", (double)ms.legs_ready);
	set1(f->legs, "moving", (double)ms.legs_moving);
	set1(f->legs, "failed", (double)ms.legs_failed);
	metric_set(f->legs_created, (double)ms.legs_created);
	metric_set(f->moves, (double)ms.moves);
	metric_set(f->move_failures, (double)ms.move_failures);
	metric_set(f->orphans_destroyed, (double)ms.orphans_destroyed);
	metric_set(f->workers_refused, (double)ms.workers_refused);
	metric_set(f->media_unrouted, (double)ms.media_unrouted);
	metric_set(f->events_unrouted, (double)ms.events_unrouted);
	metric_set(f->requests_in_flight, ms.requests_in_flight);
	metric_set(f->redis_discovery_failing, ms.redis_failing);
}

static void collect_calls(struct sig_metrics *sm)
{
	struct families *f = &sm->f;
	struct callrec_stats st;

	/* Every series, zeros included: rate() and ratios have both sides from the start. */
	callrec_get_stats(&st);
	for (int a = 0; a < CALLREC_APPS; a++) {
		const char *app = callrec_app_name(a);

		set1(f->calls_active, app, (double)st.active[a]);
		for (int d = 0; d < CALLREC_DIRS; d++) {
			const char *dir = callrec_dir_name(d);

			set2(f->calls_started, app, dir, (double)st.started[a][d]);
			set2(f->calls_answered, app, dir, (double)st.answered[a][d]);
		}
		for (int r = 0; r < CALLREC_END_REASONS; r++) {
			const char *reason = callrec_end_reason_name(r);

			set2(f->calls_ended, app, reason, (double)st.ended[a][r]);
		}
	}
}

static void collect_workers(struct sig_metrics *sm)
{
	struct families *f = &sm->f;
	const struct dispatcher *d = media_dispatcher(sm->media);
	size_t n = dispatcher_worker_count(d), live = 0;

	/* Workers come and go (discovery): their series go with them. The per-worker families are
	 * the table's rows labelled by worker. */
	for (size_t i = 0; i < sizeof(family_defs) / sizeof(family_defs[0]); i++)
		if (family_defs[i].labels == L_WORKER || family_defs[i].labels == L_WORKER_DIR)
			metric_clear(fam(f, family_defs[i].off));
	for (size_t i = 0; i < n; i++) {
		struct dispatcher_worker_info in;
		const char *w;

		dispatcher_worker_info(dispatcher_worker_at(d, i), &in);
		w = in.worker_id[0] ? in.worker_id : in.ctl_endpoint;
		live += in.alive;
		set1(f->w_up, w, in.alive);
		set1(f->w_draining, w, in.draining);
		set1(f->w_legs, w, in.legs);
		set1(f->w_cpu, w, in.cpu_permille);
		set1(f->w_capacity, w, in.capacity);
		set1(f->w_pending, w, in.pending);
		set1(f->w_requests, w, (double)in.requests);
		set1(f->w_timeouts, w, (double)in.timeouts);
		set1(f->w_errors, w, (double)in.errors);
		set1(f->w_retries, w, (double)in.retries);
		set1(f->w_late, w, (double)in.late_replies);
		set1(f->w_restarts, w, (double)in.restarts);
		set2(f->w_media, w, "to_worker", (double)in.media_out);
		set2(f->w_media, w, "from_worker", (double)in.media_in);
		set1(f->w_send_drops, w, (double)in.send_drops);
		set1(f->w_handshake_failures, w, (double)in.handshake_failures);
	}
	metric_set(f->workers, (double)n);
	metric_set(f->live_workers, (double)live);
}

static void collect(struct metrics *reg, void *arg)
{
	struct sig_metrics *sm = arg;
	struct families *f = &sm->f;
	struct sip_ua_stats sip;

	(void)reg;
	collect_rtmp(sm);
	collect_media(sm);
	collect_calls(sm);
	collect_workers(sm);
	metric_set(f->redis_configured, sm->redis != NULL);
	metric_set(f->redis_up, sm->redis && redis_is_up(sm->redis));
	metric_set(f->redis_disconnects, (double)sm->redis_disconnects);
	metric_set(f->sip_enabled, sm->sip != NULL);
	sip_ua_get_stats(sm->sip, &sip);
	set1(f->sip_refused, "too_large", (double)sip.too_large);
	set1(f->sip_refused, "malformed", (double)sip.malformed);
	set1(f->sip_refused, "untrusted", (double)sip.untrusted);
	for (int r = 0; r < CALL_POLICY_REASONS; r++)
		set1(f->calls_refused, call_policy_reason_name(r), (double)call_policy_refused(r));
	metric_set(f->ready, sig_metrics_ready(sm, NULL, 0));
}

/* --- health ----------------------------------------------------------------------------- */

static void add_reason(char *why, size_t len, const char *reason)
{
	size_t used;

	if (!why || len == 0)
		return;
	used = strlen(why);
	snprintf(why + used, len - used, "%s%s", used ? "; " : "", reason);
}

bool sig_metrics_ready(const struct sig_metrics *sm, char *why, size_t len)
{
	const struct dispatcher *d = media_dispatcher(sm->media);
	bool ready = true, worker = false;

	if (why && len)
		why[0] = '\0';
	if (!sm->srv) {
		ready = false;
		add_reason(why, len, "RTMP not listening");
	}
	for (size_t i = 0; i < dispatcher_worker_count(d) && !worker; i++) {
		struct dispatcher_worker_info in;

		dispatcher_worker_info(dispatcher_worker_at(d, i), &in);
		worker = in.alive && !in.draining;
	}
	if (!worker) {
		ready = false;
		add_reason(why, len, "no live mediaworker");
	}
	if (sm->redis && !redis_is_up(sm->redis)) {
		ready = false;
		add_reason(why, len, "Redis down");
	}
	return ready;
}

static bool ready(const void *sm, char *why, size_t len)
{
	return sig_metrics_ready(sm, why, len);
}

static void on_redis_down(struct redis *r, void *arg)
{
	struct sig_metrics *sm = arg;

	(void)r;
	sm->redis_disconnects++;
}

/* --- life cycle ------------------------------------------------------------------------- */

struct sig_metrics *sig_metrics_new(struct evloop *loop, struct rtmp_server *srv, struct media *m,
				    struct redis *redis, struct sip_ua *sip)
{
	struct httpd_config cfg;
	struct sig_metrics *sm;
	int e = 0;

	if (!loop || !srv || !m || metrics_server_config(&cfg, DEFAULT_PORT) < 0) {
		errno = EINVAL;
		return NULL;
	}
	sm = calloc(1, sizeof(*sm));
	if (!sm)
		return NULL;
	sm->srv = srv;
	sm->media = m;
	sm->redis = redis;
	sm->sip = sip;
	if (cfg.port == 0)
		return sm;
	const struct metrics_server_def def = {
	    .prefix = "rtmp2sip_",
	    .families = family_defs,
	    .n_families = sizeof(family_defs) / sizeof(family_defs[0]),
	    .slots = &sm->f,
	    .collect = collect,
	    .ready = ready,
	    .arg = sm,
	};
	sm->server = metrics_server_new(loop, &cfg, &def);
	if (!sm->server)
		e = -errno;
	else if (redis)
		e = redis_add_listener(redis, NULL, on_redis_down, sm);
	if (e < 0) {
		sig_metrics_destroy(&sm);
		errno = -e;
		return NULL;
	}
	return sm;
}

void sig_metrics_destroy(struct sig_metrics **smp)
{
	struct sig_metrics *sm = smp ? *smp : NULL;

	if (!sm)
		return;
	metrics_server_destroy(&sm->server);
	if (sm->redis)
		redis_remove_listener(sm->redis, sm);
	free(sm);
	*smp = NULL;
}

unsigned sig_metrics_port(const struct sig_metrics *sm)
{
	return sm ? metrics_server_port(sm->server) : 0;
}
