/*
 * sig_metrics.h - the signaler's Prometheus metrics and health checks over HTTP.
 *
 * Serves, on METRICS_BIND:METRICS_PORT (127.0.0.1:9100; port 0: nothing), /metrics (text format
 * 0.0.4, names rtmp2sip_signaler_*), /healthz (200 "ok" while the loop runs) and /readyz (200
 * "ready", or 503 with the reasons: RTMP not listening, no live mediaworker, Redis down when
 * Redis is configured). Every value is read at scrape time from the state the signaler keeps
 * anyway (RTMP server, media bridge, dispatcher, Redis link, the call counters of callrec.h):
 * nothing on the media path.
 * docs/metrics.md lists the metrics.
 */
#ifndef RS_SIG_METRICS_H
#define RS_SIG_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct evloop;
struct media;
struct redis;
struct rtmp_server;
struct sip_ua;
struct sig_metrics;

/*
 * Reads METRICS_PORT / METRICS_BIND and starts serving. The sources are borrowed and must
 * outlive the object: @srv and @m are required, @redis NULL when Redis is not configured, @sip
 * NULL without SIP. A port that cannot be bound is logged and leaves the signaler without
 * metrics (the object is still returned). Returns NULL with errno EINVAL for a bad setting
 * (logged), ENOMEM.
 */
struct sig_metrics *sig_metrics_new(struct evloop *loop, struct rtmp_server *srv, struct media *m,
				    struct redis *redis, struct sip_ua *sip);

/* Stops serving and frees; NULL-safe, clears *smp. Before the sources go. */
void sig_metrics_destroy(struct sig_metrics **smp);

/* The port served (0: none), for tests. */
unsigned sig_metrics_port(const struct sig_metrics *sm);

/* True when ready; otherwise @why (may be NULL) gets the reasons, "; "-separated. */
bool sig_metrics_ready(const struct sig_metrics *sm, char *why, size_t len);

#endif
