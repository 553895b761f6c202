/*
 * regrec.h - the records of the SIP registrations this signaler holds for its RTMP clients, in
 * Redis (rs:v1:reg:<aor> and the index rs:v1:signaler:<id>:regs, common/state.h).
 *
 * The sip app writes a record whole, fire and forget, each time a REGISTER succeeds, and deletes
 * it (conditionally on this signaler owning it) when the client leaves. Without Redis (none
 * configured, or down) nothing is written: the records are for operators and for another
 * signaler that finds this one's orphans (signaler/orphans.c), never needed to register.
 */
#ifndef RS_REGREC_H
#define RS_REGREC_H

#include "state.h"

struct redis;

/*
 * Binds the records to @redis (borrowed; NULL: no records) as those of @signaler_id in its run
 * @instance (both copied; callrec_instance() is the run's). regrec_init(NULL, NULL, NULL)
 * detaches.
 */
void regrec_init(struct redis *redis, const char *signaler_id, const char *instance);

/* Writes the registration @rec whole, its signaler and instance set here. */
void regrec_write(struct reg_record *rec);

/* Deletes the record of @aor if this signaler owns it (NULL or "": nothing). */
void regrec_delete(const char *aor);

#endif
