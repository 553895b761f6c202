/*
 * mw_metrics.h - the mediaworker's Prometheus metrics and health checks over HTTP.
 *
 * Serves, on METRICS_BIND:METRICS_PORT (127.0.0.1:9101; port 0: nothing; two workers on one
 * host need distinct ports), /metrics (text format 0.0.4, names rtmp2sip_worker_*), /healthz
 * (200 "ok" while the loop runs) and /readyz (200 "ready", or 503 with the reasons: draining,
 * Redis down when Redis is configured). Values are read from the worker's own state at scrape
 * time; per-leg RTP counters are also sampled once a second so that the totals keep what legs
 * counted before they ended (see docs/metrics.md). Nothing is added to the media path.
 */
#ifndef RS_MW_METRICS_H
#define RS_MW_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct evloop;
struct redis;
struct worker;
struct mw_metrics;

/*
 * Reads METRICS_PORT / METRICS_BIND and starts serving for @w (borrowed, required). @redis
 * (borrowed, may be NULL) is the worker's Redis link; it counts for readiness only when the
 * environment configures Redis (REDIS_HOST, REDIS_PORT or REDIS_SENTINELS). A port that cannot
 * be bound is logged and leaves the worker without metrics (the object is still returned).
 * Returns NULL with errno EINVAL for a bad setting (logged), ENOMEM.
 */
struct mw_metrics *mw_metrics_new(struct evloop *loop, struct worker *w, struct redis *redis);

/* Stops serving and frees; NULL-safe, clears *mmp. Before the worker goes. */
void mw_metrics_destroy(struct mw_metrics **mmp);

/* The port served (0: none), for tests. */
unsigned mw_metrics_port(const struct mw_metrics *mm);

/* True when ready; otherwise @why (may be NULL) gets the reasons, "; "-separated. */
bool mw_metrics_ready(const struct mw_metrics *mm, char *why, size_t len);

#endif
