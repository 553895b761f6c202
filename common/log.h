/*
 * log.h - leveled logging with a session id on every line.
 *
 * Every line is "<time> <level> <process>[<pid>] <sid>: <message>". The session id names the
 * connection, call or leg the line is about ("-" when none), so one grep follows one session.
 * Lines go to stderr, written with a single write(2) so concurrent processes never interleave.
 */
#ifndef RS_LOG_H
#define RS_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the process name shown on every line (copied) and the lowest level printed. */
void log_init(const char *process, enum log_level level);

/* Parses "error", "warn", "info" or "debug"; returns the level or -1 when the name is unknown. */
int log_level_parse(const char *name);

/* True when lines of @level are printed: guard costly argument preparation with it. */
_Bool log_enabled(enum log_level level);

/* Prints one line. @sid may be NULL. */
void log_msg(enum log_level level, const char *sid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A rate limit for lines that peers can cause (malformed input, refusals): at most
 * LOG_LIMIT_BURST lines per second. The lines held back in a second are summed up in one
 * warning, "N more <what> not logged (at most LOG_LIMIT_BURST a second)", written by the next
 * log_limit_ok() or log_limit_flush() of a later second. Zero-initialise it; @what may be set
 * (a string constant; NULL: "similar lines").
 */
#define LOG_LIMIT_BURST 10

struct log_limit {
	uint64_t window; /* the second of the current window */
	unsigned lines, suppressed;
	const char *what; /* what the summary counts */
};

/* True when one more line may be logged now (@now_ms: any millisecond clock). */
_Bool log_limit_ok(struct log_limit *l, uint64_t now_ms, const char *sid);

/* Writes the summary of a second that is over (nothing when none is owed): for a caller that
 * wants it before the next line comes, e.g. from its loop's before-sleep hook. */
void log_limit_flush(struct log_limit *l, uint64_t now_ms, const char *sid);

#define log_error(sid, ...) log_msg(LOG_LVL_ERROR, (sid), __VA_ARGS__)
#define log_warn(sid, ...)  log_msg(LOG_LVL_WARN, (sid), __VA_ARGS__)
#define log_info(sid, ...)  log_msg(LOG_LVL_INFO, (sid), __VA_ARGS__)
#define log_debug(sid, ...)                                                                        \
	do {                                                                                       \
		if (log_enabled(LOG_LVL_DEBUG))                                                    \
			log_msg(LOG_LVL_DEBUG, (sid), __VA_ARGS__);                                \
	} while (0)

#endif
