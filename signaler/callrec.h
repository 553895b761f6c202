/*
 * callrec.h - the signaler's call and registration records in Redis (common/state.h:
 * rs:v1:call:<id>, rs:v1:reg:<aor> and this signaler's index sets of both).
 *
 * The apps describe each call and registration as it changes; the records are written whole,
 * fire and forget, and deleted (conditionally on this signaler owning them) when the call ends or
 * the client leaves. Without Redis (none configured, or down) nothing is written: the records are
 * for operators and for another signaler that finds this one's orphans, never needed to run a call.
 */
#ifndef RS_CALLREC_H
#define RS_CALLREC_H

#include "state.h"

#include <stddef.h>

struct redis;

/* Binds the records to @redis (may be NULL: no records) and @signaler_id; reads CALL_TTL.
 * 0 or -EINVAL (logged). callrec_init(NULL, NULL) detaches. */
int callrec_init(struct redis *redis, const char *signaler_id);

/* Fills the record's call_id with a new gateway call id and signaler, and created_ms. */
void callrec_start(struct call_record *rec);

/* Writes the whole record (updated_ms set here). */
void callrec_write(struct call_record *rec);

/* Deletes the record of @call_id (NULL or "": nothing). */
void callrec_delete(const char *call_id);

/* The registration @rec (signaler set here) and its removal. */
void regrec_write(struct reg_record *rec);
void regrec_delete(const char *aor);

#endif
