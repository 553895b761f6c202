/*
 * main.c - the mediaworker: RTP/SRTP legs and transcoding for the signalers, one event loop.
 *
 * Configured by environment variables only (docs/configuration.md). SIGINT stops at once
 * (legs are destroyed and their state deleted); SIGTERM drains: no new legs, exit when the
 * last leg ends or after WORKER_DRAIN_TIMEOUT seconds.
 */
#include "config.h"
#include "evloop.h"
#include "log.h"
#include "redis.h"
#include "rtp_leg.h"
#include "worker.h"
#include "zsock.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static struct ev_timer *drain_deadline;

static void on_drained(struct worker *w, void *arg)
{
	struct evloop *loop = arg;

	log_info(NULL, "drained: exiting");
	evloop_stop(loop);
}

static void on_drain_deadline(struct evloop *loop, struct ev_timer *t, void *arg)
{
	log_warn(NULL, "drain deadline reached with %u legs left: exiting", worker_leg_count(arg));
	evloop_stop(loop);
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
	if (!drain_deadline) {
		drain_deadline = evloop_timer_new(loop, on_drain_deadline, w);
		if (drain_deadline)
			evloop_timer_start(drain_deadline, (uint64_t)secs * 1000u);
	}
	worker_drain(w, on_drained, loop);
}

int main(int argc, char **argv)
{
	struct worker_config cfg;
	struct redis_config rcfg;
	struct evloop *loop = NULL;
	struct redis *redis = NULL;
	struct worker *w = NULL;
	int level = log_level_parse(config_str("LOG_LEVEL", "info"));
	int ret = 1;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: mediaworker\nConfigured by environment variables: see docs/configuration.md\n");
		return 0;
	}
	log_init("mediaworker", level < 0 ? LOG_LVL_INFO : (enum log_level)level);
	signal(SIGPIPE, SIG_IGN);
	if (worker_config_from_env(&cfg) < 0 || redis_config_from_env(&rcfg) < 0)
		return 2;
	loop = evloop_new();
	if (!loop) {
		log_error(NULL, "cannot create the event loop");
		return 1;
	}
	redis = redis_new_config(loop, &rcfg);
	if (!redis)
		log_warn(NULL, "no Redis client: legs run, but their state is not stored");
	w = worker_new(loop, &cfg, redis);
	if (!w)
		goto out;
	if (evloop_signal(loop, SIGINT, on_signal, w) < 0 ||
	    evloop_signal(loop, SIGTERM, on_signal, w) < 0 ||
	    evloop_signal(loop, SIGUSR1, on_signal, w) < 0) {
		log_error(NULL, "cannot route signals into the event loop");
		goto out;
	}
	/* The line scripts and tests wait for: where signalers connect. */
	log_info(NULL, "mediaworker ready: ctl=%s media=%s", worker_ctl_endpoint(w),
		 worker_media_endpoint(w));
	if (evloop_run(loop) == 0)
		ret = 0;
out:
	worker_destroy(&w);
	evloop_timer_del(&drain_deadline);
	redis_destroy(&redis);
	/* Let the Redis client's last callbacks run before the loop goes. */
	evloop_run_once(loop, 0);
	zsock_context_term();
	rtp_leg_global_cleanup();
	evloop_destroy(&loop);
	log_info(NULL, "mediaworker stopped");
	return ret;
}
