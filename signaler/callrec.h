/*
 * callrec.h - the signaler's records in Redis (common/state.h): its heartbeat
 * (rs:v1:signaler:<id>, rs:v1:signalers) and its calls (rs:v1:call:<id>) with their index set.
 * Its registrations have records of their own (regrec.h).
 *
 * The apps describe each call as it changes; the records are written whole, fire and forget, and
 * deleted (conditionally on this signaler owning them) when the call ends. Without Redis (none
 * configured, or down) nothing is written: the records are for operators and for another
 * signaler that finds this one's orphans (signaler/orphans.c), never needed to run a call.
 *
 * Every record carries this run's instance id, and every call record the SIP dialog (tags, URIs,
 * remote target, route set, last CSeq) so that another signaler can send the BYE: callrec_write()
 * takes it from the UA's call with the record's Call-ID, and the UA's dialog observer rewrites a
 * call's record (coalesced, from the loop) when the dialog changes between two app writes - the
 * callee's tag arrives with the ACK, a CSeq rises with every request. The apps need no SIP code
 * for it. callrec keeps a copy of each live call record for that (and rewrites them all when
 * Redis comes back: it may have restarted empty).
 *
 * It also counts the calls of the sip and call apps for the metrics, with or without Redis:
 * started (callrec_start), answered (the first "up"), ended with one reason (callrec_end).
 */
#ifndef RS_CALLREC_H
#define RS_CALLREC_H

#include "state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct redis;
struct sip_ua;
struct sip_call;

/*
 * Binds the records to @redis (may be NULL: no records) and @signaler_id, reads CALL_TTL, and
 * starts the heartbeat on @loop (every second: rs:v1:signaler:<id> with its SIP contact from
 * SIP_ADVERTISED_IP / SIP_BIND / RTMP_BIND and SIP_PORT, its RTMP address from RTMP_BIND and
 * RTMP_PORT). 0 or -EINVAL (logged), -ENOMEM. callrec_init(NULL, NULL, NULL) detaches.
 */
int callrec_init(struct evloop *loop, struct redis *redis, const char *signaler_id);

/* The UA whose calls' dialogs go into the call records (NULL: none; detach before destroying
 * the UA). */
void callrec_set_ua(struct sip_ua *ua);

/* This run's instance id (16 hex digits; "" before callrec_init). */
const char *callrec_instance(void);

/*
 * True once a heartbeat was written and no other instance of this signaler id has been seen
 * alive within STATE_SIGNALER_LIVENESS_MS: a previous run of this id is dead (its calls are
 * orphans) and no other process uses the id.
 */
bool callrec_alone(uint64_t now_ms);

/* The apps whose calls are counted, their directions, and why a call ended (the metrics'
 * label values: callrec_app_name() and friends). */
enum callrec_app { CALLREC_APP_SIP, CALLREC_APP_CALL, CALLREC_APPS };
enum callrec_dir { CALLREC_DIR_OUT, CALLREC_DIR_IN, CALLREC_DIRS };
enum callrec_end_reason {
	CALLREC_END_COMPLETED,		/* answered, whatever ended it */
	CALLREC_END_BUSY,		/* 486, 600 */
	CALLREC_END_DECLINED,		/* 603 */
	CALLREC_END_NOT_FOUND,		/* 404, 484, 604 */
	CALLREC_END_AUTH,		/* 401, 403, 407 */
	CALLREC_END_NOT_ACCEPTABLE,	/* 488, 606, 415 */
	CALLREC_END_NO_ANSWER,		/* 408, 480 */
	CALLREC_END_CANCELLED,		/* 487, or the caller hung up before the answer */
	CALLREC_END_SERVER_ERROR,	/* other 5xx */
	CALLREC_END_OTHER_SIP,		/* any other final status 300-699 */
	CALLREC_END_NO_MEDIA,		/* no media leg (no worker, the leg failed) */
	CALLREC_END_CLIENT_LEFT,	/* the RTMP client left or was replaced */
	CALLREC_END_REJECTED_BY_CLIENT, /* the client refused the incoming call */
	CALLREC_END_ERROR,		/* anything else: INVITE not sent, internal error */
	CALLREC_END_REASONS
};

/* The calls counted since the start of the process. */
struct callrec_stats {
	uint64_t started[CALLREC_APPS][CALLREC_DIRS];
	uint64_t answered[CALLREC_APPS][CALLREC_DIRS]; /* reached "up" (once per call) */
	uint64_t ended[CALLREC_APPS][CALLREC_END_REASONS];
	uint64_t active[CALLREC_APPS]; /* started and not ended yet */
};

/* "sip", "call"; "in", "out"; "completed", "busy", ... ("" out of range). */
const char *callrec_app_name(enum callrec_app app);
const char *callrec_dir_name(enum callrec_dir dir);
const char *callrec_end_reason_name(enum callrec_end_reason reason);

/*
 * Starts the record of a new call of @app ("sip" or "call") in @direction ("out" or "in"): a new
 * gateway call id, signaler, instance, created_ms, app and direction. The call is counted as
 * started (calls of other apps are not counted); end it with callrec_end().
 */
void callrec_start(struct call_record *rec, const char *app, const char *direction);

/* Writes the whole record (updated_ms, instance and the SIP dialog set here, and From / To
 * when the app left them empty). */
void callrec_write(struct call_record *rec);

struct media_leg;
/* Sets @rec's state ("setup", "ringing", "up", "held", "ending"), its SIP Call-ID from @sip, its
 * leg, worker and transcoding from @leg (either may be NULL), the answer time on the first "up"
 * (the call is then counted as answered), then writes it. */
void callrec_update(struct call_record *rec, const char *state, const struct sip_call *sip,
		    const struct media_leg *leg);

/* The SIP Call-ID of this signaler's call @call_id, or NULL (no such call, or no dialog yet). */
const char *callrec_sip_call_id(const char *call_id);

/* Calls of this signaler with a record (written at least once, not deleted). */
size_t callrec_count(void);

/* Deletes the record of @call_id (NULL or "": nothing). */
void callrec_delete(const char *call_id);

/*
 * Ends the call of @rec: counts it once with its reason, deletes its record when it was written,
 * and clears @rec's call_id (a second callrec_end() of it, or one of a record never started,
 * does nothing). The reason: completed when it was answered; else from @sip_status, the final
 * SIP status when there is one (300-699; 0: none); else @local, what ended it here
 * (CALLREC_END_COMPLETED, for the hang-up of a call that should have been answered, counts as
 * an error).
 */
void callrec_end(struct call_record *rec, int sip_status, enum callrec_end_reason local);

/* The counters since the start. */
void callrec_get_stats(struct callrec_stats *st);

/* Copies @call's dialog data into @rec, and From / To when they are empty (callrec_write does it
 * by itself when the UA is set). */
void callrec_set_sip(struct call_record *rec, const struct sip_call *call);

#endif
