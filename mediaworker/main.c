/*
 * main.c - the mediaworker: RTP/SRTP legs and transcoding for the signalers, one event loop.
 *
 * Configured by environment variables only (docs/configuration.md). SIGINT stops at once
 * (legs are destroyed and their state deleted); SIGTERM, or `relayctl drain`, drains: no new
 * legs, exit when the last leg ends; at the deadline (WORKER_DRAIN_TIMEOUT seconds, or the one
 * relayctl gives) the remaining legs are handed over to other workers (worker_handover), then exit.
 * SIGHUP re-reads CURVE_ALLOWED_KEYS_FILE (key rotation: the signalers allowed from then on).
 */
#include "config.h"
#include "ctlq.h"
#include "curve.h"
#include "evloop.h"
#include "log.h"
#include "mw_metrics.h"
#include "redis.h"
#include "rtp_leg.h"
#include "state.h"
#include "worker.h"
#include "zap.h"
#include "zsock.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static struct evloop *main_loop;
static struct ev_timer *drain_deadline; /* the drain's end: the remaining legs are handed over */
static struct ev_timer *handover_limit; /* the handover's end: exit whatever is left */

static void on_drained(struct worker *w, void *arg)
{
	struct evloop *loop = arg;

	log_info(NULL, "drained: exiting");
	evloop_stop(loop);
}

static void on_handover_limit(struct evloop *loop, struct ev_timer *t, void *arg)
{
	log_warn(NULL, "handover unfinished with %u legs left: exiting", worker_leg_count(arg));
	evloop_stop(loop);
}

static void on_drain_deadline(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct worker *w = arg;

	log_warn(NULL, "drain deadline reached with %u legs left", worker_leg_count(w));
	if (!handover_limit)
		handover_limit = evloop_timer_new(loop, on_handover_limit, w);
	if (!handover_limit) {
		evloop_stop(loop);
		return;
	}
	evloop_timer_start(handover_limit, 3000);
	worker_handover(w); /* the drain's done callback stops the loop once all are gone */
}

/* No new legs; exit when the last leg ends, or hand the rest over after @ms. */
static void drain(struct evloop *loop, struct worker *w, uint64_t ms)
{
	if (!drain_deadline)
		drain_deadline = evloop_timer_new(loop, on_drain_deadline, w);
	if (drain_deadline)
		evloop_timer_start(drain_deadline, ms);
	worker_drain(w, on_drained, loop);
}

static void on_reload(struct evloop *loop, int signo, void *arg)
{
	log_info(NULL, "SIGHUP: re-reading the allowed signaler keys");
	curve_reload(arg);
}

static void on_signal(struct evloop *loop, int signo, void *arg)
{
	struct worker *w = arg;
	int64_t secs = 60;

	if (signo == SIGINT) {
		log_info(NULL, "SIGINT: stopping");
		evloop_stop(loop);
		return;
	}
	if (signo == SIGUSR1) {
		log_info(NULL, "stats: legs=%u transcoding=%u", worker_leg_count(w),
			 worker_transcoding_count(w));
		return;
	}
	config_int("WORKER_DRAIN_TIMEOUT", 60, 0, 86400, &secs);
	log_info(NULL, "SIGTERM: draining (at most %lld s)", (long long)secs);
	drain(loop, w, (uint64_t)secs * 1000u);
}

/* relayctl drain / undrain, through the worker's command queue in Redis. */
static int on_cmd_drain(const struct ctlq_cmd *cmd, char *detail, size_t size, void *arg)
{
	struct worker *w = arg;
	uint64_t now = state_now_ms();
	int64_t secs = 60;

	config_int("WORKER_DRAIN_TIMEOUT", 60, 0, 86400, &secs);
	log_info(NULL, "relayctl: drain (request %s)", cmd->request_id);
	drain(main_loop, w,
	      cmd->deadline_ms ? (cmd->deadline_ms > now ? cmd->deadline_ms - now : 0)
			       : (uint64_t)secs * 1000u);
	snprintf(detail, size, "%u legs left", worker_leg_count(w));
	return 0;
}

static int on_cmd_undrain(const struct ctlq_cmd *cmd, char *detail, size_t size, void *arg)
{
	log_info(NULL, "relayctl: undrain (request %s)", cmd->request_id);
	evloop_timer_stop(drain_deadline);
	worker_undrain(arg);
	return 0;
}

int main(int argc, char **argv)
{
	struct worker_config cfg;
	struct redis_config rcfg;
	struct evloop *loop = NULL;
	struct redis *redis = NULL;
	struct worker *w = NULL;
	struct mw_metrics *metrics = NULL;
	struct ctlq *cmdq = NULL;
	struct curve *curve = NULL;
	struct zap *zap = NULL;
	int level = log_level_parse(config_str("LOG_LEVEL", "info"));
	int ret = 1;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: mediaworker\nConfigured by environment variables: see docs/configuration.md\n");
		return 0;
	}
	log_init("mediaworker", level < 0 ? LOG_LVL_INFO : (enum log_level)level);
	signal(SIGPIPE, SIG_IGN);
	if (worker_config_from_env(&cfg) < 0 || redis_config_from_env(&rcfg) < 0 ||
	    curve_from_env("signalers", &curve) < 0)
		return 2;
	cfg.curve = curve;
	loop = evloop_new();
	if (!loop) {
		log_error(NULL, "cannot create the event loop");
		curve_destroy(&curve);
		return 1;
	}
	/* Before any CURVE socket binds: libzmq admits everyone while no ZAP handler is bound. */
	if (curve_enabled(curve)) {
		zap = zap_new(loop, curve);
		if (!zap) {
			log_error(NULL, "cannot start the ZAP handler: %s", strerror(errno));
			goto out;
		}
	}
	main_loop = loop;
	redis = redis_new_config(loop, &rcfg);
	if (!redis)
		log_warn(NULL, "no Redis client: legs run, but their state is not stored");
	w = worker_new(loop, &cfg, redis);
	if (!w)
		goto out;
	if (evloop_signal(loop, SIGINT, on_signal, w) < 0 ||
	    evloop_signal(loop, SIGTERM, on_signal, w) < 0 ||
	    evloop_signal(loop, SIGUSR1, on_signal, w) < 0 ||
	    evloop_signal(loop, SIGHUP, on_reload, curve) < 0) {
		log_error(NULL, "cannot route signals into the event loop");
		goto out;
	}
	if (redis) {
		static const struct ctlq_handlers handlers = {
			.drain = on_cmd_drain, .undrain = on_cmd_undrain,
		};

		cmdq = ctlq_new(loop, redis, "worker", cfg.worker_id, &handlers, w);
		if (!cmdq)
			log_warn(NULL, "no command queue: relayctl cannot drain this worker");
	}
		metrics = mw_metrics_new(loop, w, redis);
	if (!metrics) {
		ret = 2;
		goto out;
	}
	/* The line scripts and tests wait for: where signalers connect. */
	log_info(NULL, "mediaworker ready: ctl=%s media=%s", worker_ctl_endpoint(w),
		 worker_media_endpoint(w));
	if (evloop_run(loop) == 0)
		ret = 0;
out:
	ctlq_destroy(&cmdq);
	mw_metrics_destroy(&metrics);
	worker_destroy(&w);
	zap_destroy(&zap);
	evloop_timer_del(&drain_deadline);
	evloop_timer_del(&handover_limit);
	redis_destroy(&redis);
	/* Let the Redis client's last callbacks run before the loop goes. */
	evloop_run_once(loop, 0);
	zsock_context_term();
	rtp_leg_global_cleanup();
	evloop_destroy(&loop);
	curve_destroy(&curve);
	log_info(NULL, "mediaworker stopped");
	return ret;
}
