/*
 * worker_config.c - the mediaworker's configuration from the environment (worker.h).
 */
#include "worker.h"

#include "config.h"
#include "log.h"
#include "rtp_leg.h"
#include "state.h"
#include "wire.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A host name or an IP address for an endpoint ("" allowed: none). */
static bool host_valid(const char *h)
{
	size_t n = strlen(h);

	if (n > 200)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != ':' && h[i] != '-')
			return false;
	return true;
}

int worker_config_from_env(struct worker_config *cfg)
{
	static char default_id[WIRE_MAX_ID + 1];
	int64_t min, max, cap, timeout, interval, ttl, hb, q, cx, delay, latch_n, latch_ms;

	if (!default_id[0]) {
		char host[64] = "worker";

		gethostname(host, sizeof(host) - 1);
		for (char *p = host; *p; p++)
			if (!wire_id_valid(p, 1))
				*p = '-';
		snprintf(default_id, sizeof(default_id), "%.40s-%d", host, (int)getpid());
	}
	memset(cfg, 0, sizeof(*cfg));
	cfg->worker_id = config_str("WORKER_ID", default_id);
	cfg->ctl_bind = config_str("WORKER_CTL_BIND", "tcp://127.0.0.1:*");
	cfg->media_bind = config_str("WORKER_MEDIA_BIND", "tcp://127.0.0.1:*");
	cfg->advertised_host = config_str("WORKER_ADVERTISED_HOST", "");
	cfg->rtp_bind_ip = config_str("RTP_BIND_IP", "127.0.0.1");
	cfg->advertised_ip = config_str("RTP_ADVERTISED_IP", cfg->rtp_bind_ip);
	if (config_int("RTP_PORT_MIN", 20000, 1024, 65534, &min) < 0 ||
	    config_int("RTP_PORT_MAX", 29999, 1025, 65535, &max) < 0 ||
	    config_int("WORKER_CAPACITY", 0, 0, 100000, &cap) < 0 ||
	    config_int("RTP_TIMEOUT", 30, 0, 3600, &timeout) < 0 ||
	    config_int("RTP_LATCH_PACKETS", RTP_LEG_LATCH_PACKETS, 2, RTP_LEG_LATCH_PACKETS_MAX,
		       &latch_n) < 0 ||
	    config_int("RTP_LATCH_GUARD_MS", RTP_LEG_LATCH_GUARD_MS, 20, RTP_LEG_LATCH_GUARD_MS_MAX,
		       &latch_ms) < 0 ||
	    config_int("LEG_STATE_INTERVAL_MS", 1000, 100, 60000, &interval) < 0 ||
	    config_int("LEG_TTL", STATE_LEG_TTL_DEFAULT_S, 60, 604800, &ttl) < 0 ||
	    config_int("WORKER_HEARTBEAT_MS", 300, 50, 5000, &hb) < 0 ||
	    config_int("SPEEX_QUALITY", 8, 0, 10, &q) < 0 ||
	    config_int("SPEEX_COMPLEXITY", 2, 1, 10, &cx) < 0 ||
	    config_int("MEDIA_MAX_DELAY_MS", 200, 0, 10000, &delay) < 0)
		return -EINVAL;
	if (min >= max) {
		log_error(NULL, "config: RTP_PORT_MIN=%" PRId64 " must be below RTP_PORT_MAX=%" PRId64,
			  min, max);
		return -EINVAL;
	}
	if (!host_valid(cfg->advertised_host)) {
		log_error(NULL, "config: WORKER_ADVERTISED_HOST=\"%.80s\" must be a host name or an IP "
				"address (at most 200 of [A-Za-z0-9.:-])",
			  cfg->advertised_host);
		return -EINVAL;
	}
	if (!wire_id_valid(cfg->worker_id, strlen(cfg->worker_id))) {
		log_error(NULL, "config: WORKER_ID=\"%s\" must be 1-64 of [A-Za-z0-9._-]",
			  cfg->worker_id);
		return -EINVAL;
	}
	cfg->rtp_port_min = (uint16_t)min;
	cfg->rtp_port_max = (uint16_t)max;
	cfg->capacity = (unsigned)cap;
	cfg->rtp_timeout_ms = (unsigned)timeout * 1000u;
	cfg->latch_packets = (unsigned)latch_n;
	cfg->latch_guard_ms = (unsigned)latch_ms;
	cfg->state_interval_ms = (unsigned)interval;
	cfg->leg_ttl_s = (unsigned)ttl;
	cfg->heartbeat_ms = (unsigned)hb;
	cfg->media_max_delay_ms = (unsigned)delay;
	transcode_opts_default(&cfg->topts);
	cfg->topts.speex_quality = (int)q;
	cfg->topts.speex_complexity = (int)cx;
	return 0;
}
