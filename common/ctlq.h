/*
 * ctlq.h - the operator's command queue of one daemon (relayctl -> signaler / mediaworker).
 *
 * Keys (format version 1, next to the others of state.h; docs/relayctl.md is the reference):
 *
 *   rs:v1:cmd:worker:<id>          LIST of commands for one mediaworker
 *   rs:v1:cmd:signaler:<id>        LIST of commands for one signaler
 *   rs:v1:cmd:result:<request id>  LIST holding the one result of a command, EXPIRE 30 s
 *
 * relayctl appends with one MULTI: RPUSH, LTRIM to the newest CTLQ_QUEUE_MAX, EXPIRE
 * CTLQ_QUEUE_TTL_S (so the queue of a dead daemon expires); the daemon takes commands from the
 * head with LPOP, every CTLQ_POLL_MS, and pushes one result per command, which relayctl waits
 * for with BLPOP. A command is taken once: at most once delivery.
 *
 * A command is one line of at most CTLQ_CMD_MAX bytes, words separated by single spaces:
 *
 *   <request id> <verb> [<argument>]
 *
 *   verb      daemons            argument
 *   drain     worker, signaler   deadline: ms since the epoch (0: none), at most 7 days ahead
 *   undrain   worker             -
 *   hangup    signaler           call id (the <call id> of rs:v1:call:<call id>)
 *
 * The request id, and every id, is [A-Za-z0-9_.@-]{1,64} (state_id_valid()). A result is
 * "<status>" or "<status> <detail>" with status ok, unknown (no such target, e.g. the call),
 * invalid (malformed command, unknown verb, verb this daemon does not take) or failed, and a
 * detail of at most CTLQ_DETAIL_MAX printable ASCII bytes.
 *
 * Poll cycle of the daemon side (one LPOP in flight at most):
 *
 *   idle --500 ms timer--> LPOP --nil / error / Redis down--> idle
 *                            |
 *                            +--element--> parse --bad--> log, result "invalid ..." --+
 *                                            |                                        |
 *                                            +--ok--> handler --> result "<status>" --+
 *                                                                                     |
 *                      LPOP again at once (at most CTLQ_BATCH_MAX per timer) <--------+
 *
 * Nothing blocks: every command goes through the async client; while Redis is down a poll is
 * simply skipped. Not thread-safe: one loop, one thread.
 */
#ifndef RS_CTLQ_H
#define RS_CTLQ_H

#include "state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct redis;
struct ctlq;

#define CTLQ_KEY_PREFIX	       STATE_KEY_PREFIX "cmd:"
#define CTLQ_RESULT_KEY_PREFIX STATE_KEY_PREFIX "cmd:result:"
#define CTLQ_KIND_WORKER       "worker"
#define CTLQ_KIND_SIGNALER     "signaler"

#define CTLQ_CMD_MAX	    256 /* bytes of one command */
#define CTLQ_DETAIL_MAX	    200 /* bytes of a result's detail */
#define CTLQ_RESULT_MAX	    (CTLQ_DETAIL_MAX + 16)
#define CTLQ_KEY_MAX	    (sizeof(CTLQ_RESULT_KEY_PREFIX) + STATE_ID_MAX + 16)
#define CTLQ_QUEUE_MAX	    100	   /* commands kept in one queue (LTRIM after RPUSH) */
#define CTLQ_QUEUE_TTL_S    60	   /* a queue expires this long after its last push */
#define CTLQ_RESULT_TTL_S   30	   /* a result expires this long after it was written */
#define CTLQ_POLL_MS	    500	   /* the daemon looks at its queue this often */
#define CTLQ_BATCH_MAX	    32	   /* commands taken one after the other per poll */
#define CTLQ_DEADLINE_MAX_S 604800 /* a drain deadline is at most this far ahead (7 d) */

enum ctlq_verb { CTLQ_DRAIN, CTLQ_UNDRAIN, CTLQ_HANGUP };

enum ctlq_status { CTLQ_OK, CTLQ_UNKNOWN, CTLQ_INVALID, CTLQ_FAILED };

/* One parsed command. */
struct ctlq_cmd {
	char request_id[STATE_ID_MAX + 1];
	enum ctlq_verb verb;
	uint64_t deadline_ms;		/* drain: ms since the epoch (state_now_ms()), 0 = none */
	char call_id[STATE_ID_MAX + 1]; /* hangup */
};

/*
 * Carries out @cmd (valid, of the handler's verb); @detail (@size bytes, "" on entry) may
 * receive a short text for the result (printable ASCII; longer text is cut, anything else is
 * replaced). Returns 0 when done or started (a drain has begun, a BYE is on its way), -ENOENT
 * when the target is unknown (result "unknown"), -EINVAL when the daemon refuses the arguments
 * ("invalid"), another negative errno otherwise ("failed"). Called from the loop; it must not
 * block, and it may call ctlq_destroy() on its own queue.
 */
typedef int (*ctlq_handler)(const struct ctlq_cmd *cmd, char *detail, size_t size, void *arg);

/* One handler per verb; NULL: this daemon does not take the verb (result "invalid"). */
struct ctlq_handlers {
	ctlq_handler drain;
	ctlq_handler undrain;
	ctlq_handler hangup;
};

/*
 * Starts polling rs:v1:cmd:<kind>:<id> on @r every CTLQ_POLL_MS. @kind is "worker" or
 * "signaler", @id the daemon's own id (state_id_valid()); both are copied, as is @h. @loop and
 * @r must outlive the queue; @arg is passed to the handlers. Returns the queue, or NULL with
 * errno set (EINVAL for a bad argument, ENOMEM).
 */
struct ctlq *ctlq_new(struct evloop *loop, struct redis *r, const char *kind, const char *id,
		      const struct ctlq_handlers *h, void *arg);

/* Stops polling (cancels the LPOP in flight) and frees the queue; NULL-safe, clears *qp. Safe
 * from inside a handler. Results already sent are not cancelled. */
void ctlq_destroy(struct ctlq **qp);

/* Commands taken from the queue so far (well-formed or not). */
uint64_t ctlq_taken(const struct ctlq *q);

/* "drain", "undrain", "hangup" ("?" for anything else). */
const char *ctlq_verb_name(enum ctlq_verb verb);

/* "ok", "unknown", "invalid", "failed" ("?" for anything else). */
const char *ctlq_status_name(enum ctlq_status status);

/* True when the daemon kind @kind ("worker", "signaler") takes @verb. */
bool ctlq_verb_allowed(const char *kind, enum ctlq_verb verb);

/* Writes rs:v1:cmd:<kind>:<id> to @buf (CTLQ_KEY_MAX is enough); 0, or -EINVAL for an unknown
 * kind, an invalid id or a short buffer. */
int ctlq_key(char *buf, size_t size, const char *kind, const char *id);

/* Writes rs:v1:cmd:result:<request id> to @buf; 0, or -EINVAL. */
int ctlq_result_key(char *buf, size_t size, const char *request_id);

/*
 * Formats @cmd as the text of a command for a daemon of kind @kind into @buf (CTLQ_CMD_MAX + 1
 * is enough). Returns the length, or -EINVAL when @cmd would not parse (bad id, verb not taken
 * by @kind, deadline out of range for @now_ms) or does not fit.
 */
int ctlq_format(const struct ctlq_cmd *cmd, const char *kind, uint64_t now_ms, char *buf,
		size_t size);

/*
 * Parses the @len bytes at @text (not NUL-terminated) as a command for a daemon of kind @kind,
 * with @now_ms the wall clock (for the deadline bound). Returns 0 with @cmd filled, or -EINVAL
 * with @err (@errsize bytes) saying why in words; on -EINVAL, cmd->request_id still holds the
 * first word when it is a valid id (so the command can be answered), else "".
 */
int ctlq_parse(const char *text, size_t len, const char *kind, uint64_t now_ms,
	       struct ctlq_cmd *cmd, char *err, size_t errsize);

/* Formats a result into @buf (CTLQ_RESULT_MAX is enough); @detail may be NULL or "", and is
 * cut to CTLQ_DETAIL_MAX with anything unprintable replaced by '?'. Returns the length. */
int ctlq_result_format(enum ctlq_status status, const char *detail, char *buf, size_t size);

/* Parses a result; 0 with *status and @detail set ("" when none), or -EINVAL. */
int ctlq_result_parse(const char *text, size_t len, enum ctlq_status *status, char *detail,
		      size_t size);

#endif
