/*
 * mw_metrics.c - the mediaworker's Prometheus metrics and health checks (see mw_metrics.h).
 *
 *   GET /metrics --> metrics_render --> collect(): worker_get_stats, worker_get_ctl_stats,
 *                                       sample() of the legs, Redis link
 *   GET /healthz --> "ok"
 *   GET /readyz  --> mw_metrics_ready(): not draining, Redis up if configured
 *
 * The HTTP side and the registry are common/metrics.c's metrics_server: this file has the
 * worker's families (a table), its collector and its readiness rule.
 *
 * The worker keeps RTP counters per leg only, and they go with the leg. To give Prometheus
 * counters that never go down, sample() (every second and at each scrape) remembers each leg's
 * last counters by leg id:
 *
 *     leg seen for the first time --> legs_created++
 *     leg seen again              --> its counters updated (live sums)
 *     leg no longer there         --> legs_destroyed++, its last counters move to the retired sums
 *     total = retired + live
 *
 * So a leg that lives less than a second between two samples is not counted, and what a leg
 * counts in its last second is lost; the rest is exact. Costs O(legs) per second.
 */
#include "mw_metrics.h"

#include "config.h"
#include "ctl_server.h"
#include "evloop.h"
#include "metrics.h"
#include "redis.h"
#include "strmap.h"
#include "wire.h"
#include "worker.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PORT  9101
#define SAMPLE_MS     1000
#define TRACK_BUCKETS 1024

struct totals {
	uint64_t in, out, lost, auth, late, concealed, send_errors, unexpected, latch_changes;
};

/* The counters of one leg as last sampled. */
struct tracked {
	uint64_t gen;
	struct totals c;
};

struct tracker {
	struct strmap *legs; /* id -> struct tracked, made at the first sample */
	uint64_t gen;
	uint64_t created, destroyed;
	struct totals retired, live;
	uint32_t jitter_max_ms;
	uint64_t jitter_sum_ms, n_legs;
};

struct families {
	struct metric *ready, *legs, *transcoding, *passthrough, *capacity, *created, *destroyed;
	struct metric *rtp_packets, *rtp_lost, *srtp_auth, *jitter_max, *jitter_mean;
	struct metric *rtp_late, *rtp_concealed, *rtp_send_errors;
	struct metric *rtp_unexpected, *rtp_latch_changes;
	struct metric *media, *media_dropped, *cpu, *draining, *adopts;
	struct metric *zmq_requests, *zmq_replies, *zmq_replays, *zmq_malformed, *zmq_heartbeats,
	    *zmq_send_drops, *signalers, *zmq_refused, *requests_refused;
	struct metric *redis_configured, *redis_up, *redis_disconnects;
};

struct mw_metrics {
	struct worker *w;
	struct redis *redis;
	bool redis_configured;
	struct metrics_server *server;
	struct ev_timer *sampler;
	uint64_t redis_disconnects;
	struct tracker t;
	struct families f;
};

static const char *const L_DIR[] = {"direction", NULL};
static const char *const L_REASON[] = {"reason", NULL};

#define F(field) offsetof(struct families, field)
static const struct metrics_family_def family_defs[] = {
    {F(ready), METRIC_GAUGE, "worker_ready", "1 when /readyz answers 200.", NULL},
    {F(legs), METRIC_GAUGE, "worker_legs", "Legs carried now.", NULL},
    {F(transcoding), METRIC_GAUGE, "worker_transcoding_legs", "Legs that transcode now.", NULL},
    {F(passthrough), METRIC_GAUGE, "worker_passthrough_legs",
     "Legs that pass the codec through now.", NULL},
    {F(capacity), METRIC_GAUGE, "worker_capacity_legs",
     "Legs accepted at most (WORKER_CAPACITY, 0: no limit).", NULL},
    {F(created), METRIC_COUNTER, "worker_legs_created_total",
     "Legs created or adopted (sampled every second).", NULL},
    {F(destroyed), METRIC_COUNTER, "worker_legs_destroyed_total",
     "Legs ended (sampled every second).", NULL},
    {F(rtp_packets), METRIC_COUNTER, "worker_rtp_packets_total",
     "RTP packets received from and sent to SIP peers.", L_DIR},
    {F(rtp_lost), METRIC_COUNTER, "worker_rtp_packets_lost_total",
     "RTP packets lost on the way from SIP peers (from sequence numbers).", NULL},
    {F(rtp_late), METRIC_COUNTER, "worker_rtp_late_total",
     "RTP packets that came behind the sequence (late or duplicate) and were dropped.", NULL},
    {F(rtp_concealed), METRIC_COUNTER, "worker_rtp_concealed_total",
     "RTP frames that never came (a gap not filled within one frame time): concealed.", NULL},
    {F(rtp_send_errors), METRIC_COUNTER, "worker_rtp_send_errors_total",
     "RTP packets that could not be sent to SIP peers.", NULL},
    {F(rtp_unexpected), METRIC_COUNTER, "worker_rtp_unexpected_source_total",
     "RTP/RTCP packets dropped for their source: not the peer a leg is latched to, or a source "
     "still being learned (strict latching).",
     NULL},
    {F(rtp_latch_changes), METRIC_COUNTER, "worker_rtp_latch_changes_total",
     "Times a leg's RTP latch moved to another source, or was learned from a source other "
     "than the signalled one (a peer behind NAT, or a port sprayer).",
     NULL},
    {F(srtp_auth), METRIC_COUNTER, "worker_srtp_auth_failures_total",
     "SRTP/SRTCP packets that failed authentication.", NULL},
    {F(jitter_max), METRIC_GAUGE, "worker_rtp_jitter_max_seconds",
     "Highest interarrival jitter (RFC 3550) among the legs now.", NULL},
    {F(jitter_mean), METRIC_GAUGE, "worker_rtp_jitter_mean_seconds",
     "Mean interarrival jitter (RFC 3550) of the legs now.", NULL},
    {F(media), METRIC_COUNTER, "worker_media_frames_total",
     "Media frames from and to signalers (ZeroMQ).", L_DIR},
    {F(media_dropped), METRIC_COUNTER, "worker_media_dropped_total",
     "Media frames from signalers dropped.", L_REASON},
    {F(cpu), METRIC_GAUGE, "worker_cpu_permille",
     "CPU load of the worker process, per mille of one core (as heartbeats report it).", NULL},
    {F(draining), METRIC_GAUGE, "worker_draining", "1 while draining (no new legs).", NULL},
    {F(adopts), METRIC_GAUGE, "worker_adopts_pending", "ADOPT_LEG requests waiting for Redis.",
     NULL},
    {F(zmq_requests), METRIC_COUNTER, "worker_zmq_requests_total", "ZeroMQ requests handled.",
     NULL},
    {F(zmq_replies), METRIC_COUNTER, "worker_zmq_replies_total", "ZeroMQ replies sent.", NULL},
    {F(zmq_replays), METRIC_COUNTER, "worker_zmq_replayed_replies_total",
     "Cached replies resent for retried requests.", NULL},
    {F(zmq_malformed), METRIC_COUNTER, "worker_zmq_malformed_total",
     "ZeroMQ messages dropped or refused for their format.", NULL},
    {F(zmq_heartbeats), METRIC_COUNTER, "worker_zmq_heartbeats_total", "Heartbeats sent.", NULL},
    {F(zmq_send_drops), METRIC_COUNTER, "worker_zmq_send_drops_total",
     "ZeroMQ sends that failed (high-water mark, unknown peer).", NULL},
    {F(signalers), METRIC_GAUGE, "worker_signalers", "Signalers connected now.", NULL},
    {F(zmq_refused), METRIC_COUNTER, "worker_zmq_handshakes_refused_total",
     "ZeroMQ connections refused during the CURVE handshake (key: not allowed; no_curve: "
     "the client has no key; crypto: it expects another worker key; handshake: closed during "
     "the handshake, which is also what a client without a key usually does).",
     L_REASON},
    {F(requests_refused), METRIC_COUNTER, "worker_requests_refused_total",
     "Signaler messages refused: HELLOs claiming another key's signaler id (id_bound), "
     "messages on a signaler's routing id from another key (key_mismatch), leg requests "
     "that are not the owner's (docs/protocol.md, ownership).",
     L_REASON},
    {F(redis_configured), METRIC_GAUGE, "worker_redis_configured",
     "1 when Redis is configured in the environment.", NULL},
    {F(redis_up), METRIC_GAUGE, "worker_redis_up", "1 while the Redis link is up.", NULL},
    {F(redis_disconnects), METRIC_COUNTER, "worker_redis_disconnects_total",
     "Times the Redis link went down.", NULL},
};
#undef F

/* --- leg sampling ------------------------------------------------------------------------- */

static void totals_add(struct totals *to, const struct totals *c)
{
	to->in += c->in;
	to->out += c->out;
	to->lost += c->lost;
	to->auth += c->auth;
	to->late += c->late;
	to->concealed += c->concealed;
	to->send_errors += c->send_errors;
	to->unexpected += c->unexpected;
	to->latch_changes += c->latch_changes;
}

static void retire(struct tracker *t, const struct tracked *e)
{
	totals_add(&t->retired, &e->c);
	t->destroyed++;
}

static void track_leg(const struct worker_leg_stats *ls, void *arg)
{
	struct tracker *t = arg;
	struct tracked *e = strmap_get(t->legs, ls->id);

	if (e && (ls->packets_in < e->c.in || ls->packets_out < e->c.out)) {
		/* Counters went back: another leg under the same id (ended and adopted back
		 * between two samples). The old one ends here. */
		retire(t, e);
		e->c = (struct totals){0};
		t->created++;
	}
	if (!e) {
		if (!t->legs)
			t->legs = strmap_new(TRACK_BUCKETS, 0);
		e = calloc(1, sizeof(*e));
		if (!e || strmap_put(t->legs, ls->id, e) < 0) {
			free(e);
			return; /* counted again at the next sample */
		}
		t->created++;
	}
	e->gen = t->gen;
	e->c.in = ls->packets_in;
	e->c.out = ls->packets_out;
	e->c.lost = ls->packets_lost > e->c.lost ? ls->packets_lost : e->c.lost;
	e->c.auth = ls->srtp_auth_failures;
	e->c.late = ls->frames_late;
	e->c.concealed = ls->frames_concealed;
	e->c.send_errors = ls->send_errors;
	e->c.unexpected = ls->unexpected_source;
	e->c.latch_changes = ls->latch_changes;
	totals_add(&t->live, &e->c);
	if (ls->jitter_ms > t->jitter_max_ms)
		t->jitter_max_ms = ls->jitter_ms;
	t->jitter_sum_ms += ls->jitter_ms;
	t->n_legs++;
}

/* Retires the legs the last sample did not see. */
static bool retire_unseen(const char *id, void *val, void *arg)
{
	struct tracker *t = arg;
	struct tracked *e = val;

	(void)id;
	if (e->gen == t->gen)
		return false;
	retire(t, e);
	free(e);
	return true;
}

static void sample(struct mw_metrics *mm)
{
	struct tracker *t = &mm->t;

	t->gen++;
	t->live = (struct totals){0};
	t->jitter_max_ms = 0;
	t->jitter_sum_ms = 0;
	t->n_legs = 0;
	worker_foreach_leg(mm->w, track_leg, t);
	strmap_sweep(t->legs, retire_unseen, t);
}

static void tracker_free(struct tracker *t)
{
	strmap_destroy(&t->legs, free);
}

static void on_sample(struct evloop *loop, struct ev_timer *timer, void *arg)
{
	(void)loop;
	sample(arg);
	evloop_timer_start(timer, SAMPLE_MS);
}

/* --- collection ------------------------------------------------------------------------- */

static void set1(struct metric *m, const char *label, double v)
{
	metric_set_l(m, (const char *const[]){label}, v);
}

static void collect(struct metrics *reg, void *arg)
{
	struct mw_metrics *mm = arg;
	struct families *f = &mm->f;
	const struct tracker *t = &mm->t;
	struct worker_stats ws;
	struct ctl_server_stats cs;

	(void)reg;
	sample(mm);
	worker_get_stats(mm->w, &ws);
	worker_get_ctl_stats(mm->w, &cs);
	metric_set(f->legs, ws.legs);
	metric_set(f->transcoding, ws.transcoding);
	metric_set(f->passthrough, ws.legs - ws.transcoding);
	metric_set(f->capacity, ws.capacity);
	metric_set(f->created, (double)t->created);
	metric_set(f->destroyed, (double)t->destroyed);
	set1(f->rtp_packets, "in", (double)(t->retired.in + t->live.in));
	set1(f->rtp_packets, "out", (double)(t->retired.out + t->live.out));
	metric_set(f->rtp_lost, (double)(t->retired.lost + t->live.lost));
	metric_set(f->srtp_auth, (double)(t->retired.auth + t->live.auth));
	metric_set(f->rtp_late, (double)(t->retired.late + t->live.late));
	metric_set(f->rtp_concealed, (double)(t->retired.concealed + t->live.concealed));
	metric_set(f->rtp_send_errors, (double)(t->retired.send_errors + t->live.send_errors));
	metric_set(f->rtp_unexpected, (double)(t->retired.unexpected + t->live.unexpected));
	metric_set(f->rtp_latch_changes,
		   (double)(t->retired.latch_changes + t->live.latch_changes));
	metric_set(f->jitter_max, t->jitter_max_ms / 1000.0);
	metric_set(f->jitter_mean,
		   t->n_legs ? (double)t->jitter_sum_ms / (double)t->n_legs / 1000.0 : 0);
	set1(f->media, "from_signaler", (double)cs.media_in);
	set1(f->media, "to_signaler", (double)cs.media_out);
	set1(f->media_dropped, "unknown_leg", (double)ws.media_unknown_leg);
	set1(f->media_dropped, "wrong_owner", (double)ws.media_wrong_owner);
	set1(f->media_dropped, "stale", (double)ws.media_stale);
	metric_set(f->cpu, ws.cpu_permille);
	metric_set(f->draining, ws.draining);
	metric_set(f->adopts, ws.adopts_pending);
	metric_set(f->zmq_requests, (double)cs.requests);
	metric_set(f->zmq_replies, (double)cs.replies);
	metric_set(f->zmq_replays, (double)cs.replays);
	metric_set(f->zmq_malformed, (double)cs.malformed);
	metric_set(f->zmq_heartbeats, (double)cs.heartbeats);
	metric_set(f->zmq_send_drops, (double)cs.send_drops);
	metric_set(f->signalers, cs.peers);
	for (int r = CTL_REFUSED_KEY; r <= CTL_REFUSED_HANDSHAKE; r++)
		set1(f->zmq_refused, ctl_refusal_name(r), (double)cs.refused[r]);
	for (int r = CTL_REFUSED_ID_BOUND; r < CTL_REFUSED_N; r++)
		set1(f->requests_refused, ctl_refusal_name(r), (double)cs.refused[r]);
	for (int r = 0; r < WORKER_REFUSED_N; r++)
		set1(f->requests_refused, worker_refusal_name(r), (double)ws.refused[r]);
	metric_set(f->redis_configured, mm->redis_configured);
	metric_set(f->redis_up, mm->redis && redis_is_up(mm->redis));
	metric_set(f->redis_disconnects, (double)mm->redis_disconnects);
	metric_set(f->ready, mw_metrics_ready(mm, NULL, 0));
}

/* --- health ----------------------------------------------------------------------------- */

bool mw_metrics_ready(const struct mw_metrics *mm, char *why, size_t len)
{
	struct worker_stats ws;
	bool redis_down = mm->redis_configured && (!mm->redis || !redis_is_up(mm->redis));

	worker_get_stats(mm->w, &ws);
	if (why && len)
		snprintf(why, len, "%s%s%s", ws.draining ? "draining" : "",
			 ws.draining && redis_down ? "; " : "", redis_down ? "Redis down" : "");
	return !ws.draining && !redis_down;
}

static bool ready(const void *mm, char *why, size_t len)
{
	return mw_metrics_ready(mm, why, len);
}

static void on_redis_down(struct redis *r, void *arg)
{
	struct mw_metrics *mm = arg;

	(void)r;
	mm->redis_disconnects++;
}

/* --- life cycle ------------------------------------------------------------------------- */

struct mw_metrics *mw_metrics_new(struct evloop *loop, struct worker *w, struct redis *redis)
{
	struct httpd_config cfg;
	struct mw_metrics *mm;
	int e = 0;

	if (!loop || !w || metrics_server_config(&cfg, DEFAULT_PORT) < 0) {
		errno = EINVAL;
		return NULL;
	}
	mm = calloc(1, sizeof(*mm));
	if (!mm)
		return NULL;
	mm->w = w;
	mm->redis = redis;
	mm->redis_configured = config_str("REDIS_HOST", NULL) || config_str("REDIS_PORT", NULL) ||
			       config_str("REDIS_SENTINELS", NULL);
	if (cfg.port == 0)
		return mm;
	const struct metrics_server_def def = {
	    .prefix = "rtmp2sip_",
	    .families = family_defs,
	    .n_families = sizeof(family_defs) / sizeof(family_defs[0]),
	    .slots = &mm->f,
	    .collect = collect,
	    .ready = ready,
	    .arg = mm,
	    .bind_hint = "two workers on one host need distinct METRICS_PORTs",
	};
	mm->sampler = evloop_timer_new(loop, on_sample, mm);
	mm->server = mm->sampler ? metrics_server_new(loop, &cfg, &def) : NULL;
	if (!mm->server)
		e = mm->sampler ? -errno : -ENOMEM;
	else if (redis)
		e = redis_add_listener(redis, NULL, on_redis_down, mm);
	if (e < 0) {
		mw_metrics_destroy(&mm);
		errno = -e;
		return NULL;
	}
	if (metrics_server_port(mm->server))
		evloop_timer_start(mm->sampler, SAMPLE_MS);
	else
		evloop_timer_del(&mm->sampler);
	return mm;
}

void mw_metrics_destroy(struct mw_metrics **mmp)
{
	struct mw_metrics *mm = mmp ? *mmp : NULL;

	if (!mm)
		return;
	metrics_server_destroy(&mm->server);
	evloop_timer_del(&mm->sampler);
	if (mm->redis)
		redis_remove_listener(mm->redis, mm);
	tracker_free(&mm->t);
	free(mm);
	*mmp = NULL;
}

unsigned mw_metrics_port(const struct mw_metrics *mm)
{
	return mm ? metrics_server_port(mm->server) : 0;
}
