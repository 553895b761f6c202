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
 * LOG_LIMIT_BURST lines per second; the first line allowed after a second in which lines were
 * suppressed is preceded by one saying how many. Zero-initialise it.
 */
#define LOG_LIMIT_BURST 10

struct log_limit {
	uint64_t window; /* the second of the current window */
	unsigned lines, suppressed;
};

/* True when one more line may be logged now (@now_ms: any millisecond clock). */
_Bool log_limit_ok(struct log_limit *l, uint64_t now_ms, const char *sid);

#define log_error(sid, ...) log_msg(LOG_LVL_ERROR, (sid), __VA_ARGS__)
#define log_warn(sid, ...)  log_msg(LOG_LVL_WARN, (sid), __VA_ARGS__)
#define log_info(sid, ...)  log_msg(LOG_LVL_INFO, (sid), __VA_ARGS__)
#define log_debug(sid, ...)                                                                        \
	do {                                                                                       \
		if (log_enabled(LOG_LVL_DEBUG))                                                    \
			log_msg(LOG_LVL_DEBUG, (sid), __VA_ARGS__);                                \
	} while (0)

#endif
