/*
 * regrec.c - the records of this signaler's SIP registrations, written to Redis.
 *
 *   sip app: REGISTER 2xx --regrec_write(rec)--> + signaler + instance --> state_reg_write
 *   sip app: client gone --regrec_delete(aor)--> state_reg_delete (only if the record is ours)
 *
 * Fire and forget: a failed write is logged, never retried.
 */
#include "regrec.h"

#include "log.h"
#include "redis.h"
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct redis *redis;
static char signaler[STATE_ID_MAX + 1];
static char instance[STATE_ID_MAX + 1];

void regrec_init(struct redis *r, const char *signaler_id, const char *instance_id)
{
	redis = r && signaler_id && instance_id ? r : NULL;
	snprintf(signaler, sizeof(signaler), "%s", redis ? signaler_id : "");
	snprintf(instance, sizeof(instance), "%s", redis ? instance_id : "");
}

static void written(int err, const char *errmsg, void *arg)
{
	if (err && err != -ECANCELED)
		log_warn(NULL, "redis: record not written: %s", errmsg ? errmsg : strerror(-err));
}

void regrec_write(struct reg_record *rec)
{
	int r;

	if (!redis)
		return;
	snprintf(rec->signaler, sizeof(rec->signaler), "%s", signaler);
	snprintf(rec->instance, sizeof(rec->instance), "%s", instance);
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
