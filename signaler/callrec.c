/*
 * callrec.c - call and registration records of the signaler, written to Redis.
 */
#include "callrec.h"

#include "log.h"
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static struct redis *redis;
static char signaler[STATE_ID_MAX + 1];
static char prefix[STATE_ID_MAX + 1];
static unsigned call_ttl_s;
static uint64_t counter;

int callrec_init(struct redis *r, const char *signaler_id)
{
	struct state_config cfg;
	uint32_t nonce = 0;

	redis = NULL;
	if (!r || !signaler_id)
		return 0;
	if (state_config_from_env(&cfg) < 0)
		return -EINVAL;
	call_ttl_s = cfg.call_ttl_s;
	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != (ssize_t)sizeof(nonce))
		nonce = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 12;
	snprintf(signaler, sizeof(signaler), "%s", signaler_id);
	/* Call ids are global (Redis keys): signaler id, a nonce per run, a counter. */
	snprintf(prefix, sizeof(prefix), "%.38s.%06x", signaler_id, nonce & 0xffffff);
	redis = r;
	return 0;
}

static void written(int err, const char *errmsg, void *arg)
{
	if (err)
		log_warn(NULL, "redis: record not written: %s", errmsg ? errmsg : strerror(-err));
}

void callrec_start(struct call_record *rec)
{
	snprintf(rec->call_id, sizeof(rec->call_id), "%.45s.%llu", prefix,
		 (unsigned long long)++counter);
	snprintf(rec->signaler, sizeof(rec->signaler), "%s", signaler);
	rec->created_ms = state_now_ms();
}

void callrec_write(struct call_record *rec)
{
	int r;

	if (!redis || !rec->call_id[0])
		return;
	rec->updated_ms = 0;
	r = state_call_write(redis, rec, call_ttl_s, written, NULL);
	if (r < 0 && r != -ENOTCONN)
		log_warn(NULL, "redis: call %s not written: %s", rec->call_id, strerror(-r));
}

void callrec_delete(const char *call_id)
{
	if (redis && call_id && call_id[0])
		state_call_delete(redis, call_id, signaler, written, NULL);
}

void regrec_write(struct reg_record *rec)
{
	int r;

	if (!redis)
		return;
	snprintf(rec->signaler, sizeof(rec->signaler), "%s", signaler);
	rec->updated_ms = 0;
	r = state_reg_write(redis, rec, 0, written, NULL);
	if (r < 0 && r != -ENOTCONN)
		log_warn(NULL, "redis: registration %s not written: %s", rec->aor, strerror(-r));
}

void regrec_delete(const char *aor)
{
	if (redis && aor && aor[0])
		state_reg_delete(redis, aor, signaler, written, NULL);
}
