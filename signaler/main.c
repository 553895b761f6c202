/*
 * main.c - the signaler: RTMP server, media bridge to the mediaworker pool (and, with the next
 * issue, the SIP user agent) in one single-threaded event loop.
 *
 *   start: config -> loop -> Redis client (when REDIS_HOST / REDIS_PORT / REDIS_SENTINELS is
 *          set) -> media bridge (WORKER_ENDPOINTS + discovery in Redis) -> apps -> RTMP server
 *   SIGTERM / SIGINT: stop the loop -> close RTMP connections (apps destroy their legs) ->
 *          wait up to 2 s for the workers to confirm -> media bridge, Redis, loop
 *   SIGHUP: re-read CURVE_ALLOWED_KEYS_FILE (the mediaworker keys allowed: key rotation) and the
 *           RTMPS certificate and key (new connections get them)
 *   SIGUSR1: the RTMP counters are logged
 *
 * Configuration is by environment variables only; see docs/configuration.md.
 */
#include "app.h"
#include "call_policy.h"
#include "callrec.h"
#include "config.h"
#include "ctlq.h"
#include "curve.h"
#include "evloop.h"
#include "log.h"
#include "media.h"
#include "orphans.h"
#include "redis.h"
#include "regrec.h"
#include "rtmp_server.h"
#include "sig_metrics.h"
#include "sip_guard.h"
#include "sip_ua.h"
#include "state.h"
#include "tls.h"
#include "wire.h"
#include "zsock.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHUTDOWN_WAIT_MS 2000

struct signaler {
	struct rtmp_server *srv;
	struct tls_ctx *tls; /* RTMPS certificate; NULL without RTMPS */
	struct curve *curve; /* the keys toward the workers; NULL with ZMQ_INSECURE=1 */
	struct media *media;
	struct sip_ua *sip;
	struct orphans *orphans; /* ends the calls of dead signalers */
	struct evloop *loop;
	struct ev_timer *drain_timer; /* relayctl signaler-drain: checks every second */
	uint64_t drain_deadline;      /* wall clock ms; 0: none */
};

/* relayctl hangup CALL: the call's SIP dialog is hung up; its app then ends the call as after
 * the peer's BYE. */
static int on_cmd_hangup(const struct ctlq_cmd *cmd, char *detail, size_t size, void *arg)
{
	struct signaler *s = arg;
	const char *sip_id = callrec_sip_call_id(cmd->call_id);
	struct sip_call *call = sip_id && s->sip ? sip_ua_find_call(s->sip, sip_id) : NULL;

	if (!call) {
		snprintf(detail, size, "no call %s with a SIP dialog here", cmd->call_id);
		return -ENOENT;
	}
	log_info(NULL, "relayctl: hangup %s (SIP call %s)", cmd->call_id, sip_id);
	return sip_call_hangup(call);
}

/* Draining: the RTMP port accepts no one; exit once no call is left, or at the deadline (the
 * calls still up are then hung up with their clients). */
static void on_drain_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct signaler *s = arg;
	size_t calls = callrec_count();

	if (calls == 0 || (s->drain_deadline && state_now_ms() >= s->drain_deadline)) {
		log_info(NULL, "drain: %zu call%s left: stopping", calls, calls == 1 ? "" : "s");
		evloop_stop(loop);
		return;
	}
	evloop_timer_start(t, 1000);
}

static int on_cmd_drain(const struct ctlq_cmd *cmd, char *detail, size_t size, void *arg)
{
	struct signaler *s = arg;

	if (!s->drain_timer)
		s->drain_timer = evloop_timer_new(s->loop, on_drain_timer, s);
	if (!s->drain_timer)
		return -ENOMEM;
	rtmp_server_pause(s->srv);
	s->drain_deadline = cmd->deadline_ms;
	log_info(NULL, "relayctl: drain: no new RTMP clients; %zu calls left", callrec_count());
	snprintf(detail, size, "%zu calls left", callrec_count());
	evloop_timer_start(s->drain_timer, 0);
	return 0;
}

/* The SIP user agent for the call app: SIP_BIND (default RTMP_BIND), SIP_PORT (5060, UDP and
 * TCP), SIP_ADVERTISED_IP, SIP_OUTBOUND_PROXY. A port that cannot be bound leaves the signaler
 * running without SIP (the call app then refuses calls), with an error in the log. */
static int open_sip(struct evloop *loop, struct sip_ua **out)
{
	struct sip_ua_config cfg = {0};
	int64_t port, max_msg, idle_s, recv_s, keepalive_s;

	*out = NULL;
	if (config_int("SIP_PORT", 5060, 0, 65535, &port) < 0 ||
	    config_int("SIP_MAX_MESSAGE", SIP_GUARD_DEFAULT_MAX, SIP_GUARD_MIN_MAX, SIP_GUARD_MAX_MAX,
		       &max_msg) < 0 ||
	    config_int("SIP_TCP_IDLE", 600, 10, 86400, &idle_s) < 0 ||
	    config_int("SIP_TCP_RECV_TIMEOUT", 32, 1, 3600, &recv_s) < 0 ||
	    config_int("SIP_TCP_KEEPALIVE", 30, 0, 3600, &keepalive_s) < 0)
		return -EINVAL;
	if (port == 0) {
		log_info(NULL, "SIP_PORT=0: no SIP");
		return 0;
	}
	cfg.bind_ip = config_str("SIP_BIND", config_str("RTMP_BIND", "127.0.0.1"));
	cfg.port = (uint16_t)port;
	cfg.advertise_ip = config_str("SIP_ADVERTISED_IP", NULL);
	cfg.outbound_proxy = config_str("SIP_OUTBOUND_PROXY", NULL);
	cfg.trusted_sources = config_str("SIP_TRUSTED_SOURCES", NULL);
	cfg.registrar = config_str("SIP_REGISTRAR", NULL);
	cfg.max_message = (size_t)max_msg;
	cfg.tcp_idle_ms = (unsigned)idle_s * 1000;
	cfg.tcp_recv_timeout_ms = (unsigned)recv_s * 1000;
	cfg.tcp_keepalive_ms = (unsigned)keepalive_s * 1000;
	*out = sip_ua_new(loop, &cfg, &app_sip_ua_callbacks);
	if (!*out)
		log_error(NULL, "SIP: cannot listen on %s:%lld (UDP/TCP): running without SIP",
			  cfg.bind_ip, (long long)port);
	return 0;
}

static void on_stats_signal(struct evloop *loop, int signo, void *arg)
{
	struct signaler *s = arg;

	(void)loop, (void)signo;
	rtmp_server_log_stats(s->srv);
	if (s->media)
		media_log_stats(s->media);
}

static void on_reload_signal(struct evloop *loop, int signo, void *arg)
{
	struct signaler *s = arg;

	(void)loop, (void)signo;
	log_info(NULL, "SIGHUP: re-reading the allowed mediaworker keys%s",
		 s->tls ? " and the RTMPS certificate" : "");
	if (s->curve)
		curve_reload(s->curve);
	if (s->tls)
		tls_ctx_reload(s->tls);
}

static void on_stop_signal(struct evloop *loop, int signo, void *arg)
{
	(void)arg;
	log_info(NULL, "signal %d: shutting down", signo);
	evloop_stop(loop);
}

/* SIGNALER_ID, or "sig-<host>-<pid>" with the host name cut to fit and its odd characters
 * replaced. Returns 0 or -EINVAL (logged). */
static int signaler_id(char *out, size_t len)
{
	const char *env = config_str("SIGNALER_ID", NULL);
	char host[64] = "localhost";

	if (env) {
		if (!wire_id_valid(env, strlen(env))) {
			log_error(NULL, "config: SIGNALER_ID=\"%s\" is not [A-Za-z0-9._-]{1,64}", env);
			return -EINVAL;
		}
		snprintf(out, len, "%s", env);
		return 0;
	}
	if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	host[40] = '\0';
	for (char *p = host; *p; p++)
		if (!wire_id_valid(p, 1))
			*p = '-';
	snprintf(out, len, "sig-%s-%d", host, (int)getpid());
	return 0;
}

/*
 * The RTMP listener on RTMP_BIND:RTMP_PORT (0: none) and the RTMPS one on
 * RTMPS_BIND:RTMPS_PORT (0: none; RTMPS_BIND defaults to RTMP_BIND) with the certificate of
 * RTMPS_CERT_FILE and RTMPS_KEY_FILE. Returns 0, -EINVAL for a bad setting or -errno when a
 * port cannot be had (logged).
 */
static int open_rtmp(struct signaler *s, struct evloop *loop, const struct rtmp_limits *lim)
{
	const char *bind = config_str("RTMP_BIND", "127.0.0.1");
	const char *cert = config_str("RTMPS_CERT_FILE", NULL);
	const char *key = config_str("RTMPS_KEY_FILE", NULL);
	int64_t port, tls_port;
	int r;

	if (config_int("RTMP_PORT", 1935, 0, 65535, &port) < 0 ||
	    config_int("RTMPS_PORT", 0, 0, 65535, &tls_port) < 0)
		return -EINVAL;
	if (port == 0 && tls_port == 0) {
		log_error(NULL, "config: RTMP_PORT=0 and no RTMPS_PORT: nothing to listen on");
		return -EINVAL;
	}
	if (tls_port && (!cert || !key)) {
		log_error(NULL, "config: RTMPS_PORT=%lld needs RTMPS_CERT_FILE and RTMPS_KEY_FILE",
			  (long long)tls_port);
		return -EINVAL;
	}
	if (tls_port && tls_port == port) {
		log_error(NULL, "config: RTMPS_PORT and RTMP_PORT are both %lld", (long long)port);
		return -EINVAL;
	}
	if (tls_port) {
		s->tls = tls_ctx_new(cert, key);
		if (!s->tls)
			return -EINVAL;
	}
	s->srv = rtmp_server_new(loop, lim);
	if (!s->srv)
		return -ENOMEM;
	if (port) {
		r = rtmp_server_listen(s->srv, bind, (int)port, NULL);
		if (r < 0)
			return r;
	}
	if (tls_port) {
		r = rtmp_server_listen(s->srv, config_str("RTMPS_BIND", bind), (int)tls_port, s->tls);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Redis is used when the environment names one. */
static int open_redis(struct evloop *loop, struct redis **out)
{
	struct redis_config rc;

	*out = NULL;
	if (!config_str("REDIS_HOST", NULL) && !config_str("REDIS_PORT", NULL) &&
	    !config_str("REDIS_SENTINELS", NULL)) {
		log_info(NULL, "no REDIS_HOST / REDIS_PORT / REDIS_SENTINELS: no Redis, workers from WORKER_ENDPOINTS only");
		return 0;
	}
	if (redis_config_from_env(&rc) < 0)
		return -EINVAL;
	*out = redis_new_config(loop, &rc);
	if (!*out) {
		log_error(NULL, "cannot create the Redis client: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct signaler sig = {0};
	struct rtmp_limits lim;
	struct media_config mcfg = {0};
	struct evloop *loop = NULL;
	struct redis *redis = NULL;
	struct sig_metrics *metrics = NULL;
	struct ctlq *cmdq = NULL;
	struct curve *curve = NULL; /* also sig.curve, for SIGHUP */
	int level = log_level_parse(config_str("LOG_LEVEL", "info"));
	char id[WIRE_MAX_ID + 1];
	uint64_t deadline;
	int ret = 1, r;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: signaler\nConfigured by environment variables: see docs/configuration.md\n");
		return 0;
	}
	log_init("signaler", level < 0 ? LOG_LVL_INFO : (enum log_level)level);
	if (level < 0)
		log_warn(NULL, "config: LOG_LEVEL=%s unknown, using info", config_str("LOG_LEVEL", ""));
	signal(SIGPIPE, SIG_IGN);
	if (rtmp_limits_from_env(&lim) < 0 || signaler_id(id, sizeof(id)) < 0 ||
	    curve_from_env("mediaworkers", &curve) < 0)
		return 2;
	sig.curve = curve;
	loop = evloop_new();
	if (!loop) {
		log_error(NULL, "cannot create the event loop");
		curve_destroy(&curve);
		return 1;
	}
	if (evloop_signal(loop, SIGINT, on_stop_signal, NULL) < 0 ||
	    evloop_signal(loop, SIGTERM, on_stop_signal, NULL) < 0 ||
	    evloop_signal(loop, SIGHUP, on_reload_signal, &sig) < 0) {
		log_error(NULL, "cannot route signals into the event loop");
		goto out_loop;
	}
	if (open_redis(loop, &redis) < 0) {
		ret = 2;
		goto out_loop;
	}
	mcfg.worker_endpoints = config_str("WORKER_ENDPOINTS", NULL);
	mcfg.curve = curve;
	sig.media = media_new(loop, id, redis, &mcfg);
	if (!sig.media) {
		log_error(NULL, "cannot start the media bridge: %s", strerror(errno));
		ret = errno == EINVAL ? 2 : 1;
		goto out_redis;
	}
	if (callrec_init(loop, redis, id) < 0 || app_echo_init() < 0 || app_rtp_init(sig.media) < 0 ||
	    open_sip(loop, &sig.sip) < 0 || call_policy_init() < 0 ||
	    app_call_init(sig.media, sig.sip) < 0 || app_sip_init(sig.media, sig.sip) < 0) {
		ret = 2;
		goto out_media;
	}
	regrec_init(redis, id, callrec_instance());
	callrec_set_ua(sig.sip);
	sig.orphans = orphans_new(loop, redis, id, sig.sip, sig.media);
	r = open_rtmp(&sig, loop, &lim);
	if (r < 0) {
		ret = r == -EINVAL ? 2 : 1; /* a bad setting, or a port that cannot be had */
		goto out_rtmp;
	}
	metrics = sig_metrics_new(loop, sig.srv, sig.media, redis, sig.sip);
	if (!metrics) {
		ret = 2;
		goto out_rtmp;
	}
	sig.loop = loop;
	if (redis) {
		static const struct ctlq_handlers handlers = {
			.hangup = on_cmd_hangup, .drain = on_cmd_drain,
		};

		cmdq = ctlq_new(loop, redis, "signaler", id, &handlers, &sig);
		if (!cmdq)
			log_warn(NULL, "no command queue: relayctl cannot reach this signaler");
	}
	if (evloop_signal(loop, SIGUSR1, on_stats_signal, &sig) < 0)
		log_warn(NULL, "SIGUSR1 statistics unavailable");
	log_info(NULL, "signaler %s ready", id);
	if (evloop_run(loop) == 0)
		ret = 0;
	ctlq_destroy(&cmdq);
	evloop_timer_del(&sig.drain_timer);
	sig_metrics_destroy(&metrics);
	rtmp_server_log_stats(sig.srv);
	rtmp_server_destroy(&sig.srv);
	tls_ctx_destroy(&sig.tls);
	/* The calls were hung up with their RTMP clients; the UA finishes its transactions. */
	app_call_init(NULL, NULL);
	app_sip_init(NULL, NULL);
	orphans_destroy(&sig.orphans);
	callrec_set_ua(NULL);
	sip_ua_destroy(&sig.sip);
	/* The apps destroyed their legs: let the workers confirm (bounded). */
	deadline = evloop_now(loop) + SHUTDOWN_WAIT_MS;
	while (media_busy(sig.media) && evloop_now(loop) < deadline)
		evloop_run_once(loop, 50);
	log_info(NULL, "signaler stopped");
out_rtmp:
	rtmp_server_destroy(&sig.srv);
	tls_ctx_destroy(&sig.tls);
out_media:
	app_call_init(NULL, NULL);
	app_sip_init(NULL, NULL);
	orphans_destroy(&sig.orphans);
	callrec_set_ua(NULL);
	sip_ua_destroy(&sig.sip);
	app_rtp_init(NULL);
	call_policy_shutdown();
	regrec_init(NULL, NULL, NULL);
	callrec_init(NULL, NULL, NULL);
	media_destroy(&sig.media);
out_redis:
	redis_destroy(&redis);
	zsock_context_term();
out_loop:
	evloop_destroy(&loop);
	curve_destroy(&curve);
	return ret;
}
