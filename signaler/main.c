/*
 * main.c - the signaler: RTMP server (and, with the next issues, SIP user agent and worker
 * dispatcher) in one single-threaded event loop.
 *
 * Configuration is by environment variables only; see docs/configuration.md.
 */
#include "config.h"
#include "evloop.h"
#include "log.h"
#include "rtmp_server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_stats_signal(struct evloop *loop, int signo, void *arg)
{
	rtmp_server_log_stats(arg);
}

static void on_stop_signal(struct evloop *loop, int signo, void *arg)
{
	log_info(NULL, "signal %d: shutting down", signo);
	evloop_stop(loop);
}

int main(int argc, char **argv)
{
	struct rtmp_limits lim;
	struct rtmp_server *srv = NULL;
	struct evloop *loop = NULL;
	int level = log_level_parse(config_str("LOG_LEVEL", "info"));
	int64_t port;
	int ret = 1;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: signaler\nConfigured by environment variables: see docs/configuration.md\n");
		return 0;
	}
	log_init("signaler", level < 0 ? LOG_LVL_INFO : (enum log_level)level);
	if (level < 0)
		log_warn(NULL, "config: LOG_LEVEL=%s unknown, using info", config_str("LOG_LEVEL", ""));
	signal(SIGPIPE, SIG_IGN);
	if (config_int("RTMP_PORT", 1935, 0, 65535, &port) < 0 || rtmp_limits_from_env(&lim) < 0)
		return 2;
	loop = evloop_new();
	if (!loop) {
		log_error(NULL, "cannot create the event loop");
		return 1;
	}
	if (evloop_signal(loop, SIGINT, on_stop_signal, NULL) < 0 ||
	    evloop_signal(loop, SIGTERM, on_stop_signal, NULL) < 0) {
		log_error(NULL, "cannot route signals into the event loop");
		goto out_loop;
	}
	srv = rtmp_server_new(loop, config_str("RTMP_BIND", "127.0.0.1"), (int)port, &lim);
	if (!srv)
		goto out_loop;
	if (evloop_signal(loop, SIGUSR1, on_stats_signal, srv) < 0)
		log_warn(NULL, "SIGUSR1 statistics unavailable");
	log_info(NULL, "signaler ready");
	if (evloop_run(loop) == 0)
		ret = 0;
	rtmp_server_log_stats(srv);
	rtmp_server_destroy(&srv);
	log_info(NULL, "signaler stopped");
out_loop:
	evloop_destroy(&loop);
	return ret;
}
