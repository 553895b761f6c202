/*
 * relayctl_int.h - relayctl's internals shared by its files (not an interface: relayctl is a
 * program; see relayctl.c for the map of its files).
 */
#ifndef RS_RELAYCTL_INT_H
#define RS_RELAYCTL_INT_H

#include "redis.h"
#include "state.h"

#include <hiredis/hiredis.h>

#include <stdbool.h>
#include <stdint.h>

#define EXIT_OK	   0
#define EXIT_FAIL  1
#define EXIT_USAGE 2

/* The signaler heartbeat's bounds (state.h); the same as the workers' where not yet there. */
#ifndef STATE_SIGNALER_LIVENESS_MS
#define STATE_SIGNALER_LIVENESS_MS STATE_WORKER_LIVENESS_MS
#endif
#ifndef STATE_MAX_SIGNALERS
#define STATE_MAX_SIGNALERS STATE_MAX_WORKERS
#endif

struct opts {
	struct redis_config cfg;
	bool redis_given; /* --redis: no sentinels */
	bool json;
	bool no_wait;
	double timeout_s;
	long deadline_s; /* -1: none given */
	const char *dir; /* keygen --dir */
	bool force;	 /* keygen --force */
	const char *command;
	const char *target;
};

struct ctx {
	const struct opts *o;
	redisContext *c;
	char addr[REDIS_HOST_MAX + 16];
	uint64_t now_ms;
};

/* Strict decimal: digits only, no sign, at most UINT64_MAX. */
bool parse_u64(const char *s, uint64_t *out);

/* Milliseconds from @then_ms to now (0 when @then_ms is ahead: clocks of hosts differ). */
uint64_t since(const struct ctx *x, uint64_t then_ms);

/* One command; the reply, or NULL (said on stderr) when the link failed or Redis answered an
 * error. The caller frees the reply. */
redisReply *rcmd(struct ctx *x, const char *fmt, ...);

/* The next reply of a pipeline; NULL (said on stderr) only when the link failed. */
redisReply *rget(struct ctx *x);

/* The lists (relayctl_list.c): print the workers, the signalers, the calls of every signaler;
 * EXIT_OK or EXIT_FAIL. */
int cmd_workers(struct ctx *x);
int cmd_signalers(struct ctx *x);
int cmd_calls(struct ctx *x);

#endif
