/*
 * log.c - leveled logging with a session id on every line.
 */
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char log_process[32] = "rtmp2sip";
static enum log_level log_min = LOG_LVL_INFO;

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

void log_init(const char *process, enum log_level level)
{
	if (process)
		snprintf(log_process, sizeof(log_process), "%s", process);
	log_min = level;
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (name && strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

bool log_enabled(enum log_level level)
{
	return level <= log_min;
}

void log_limit_flush(struct log_limit *l, uint64_t now_ms, const char *sid)
{
	uint64_t sec = now_ms / 1000;

	if (sec == l->window)
		return;
	if (l->suppressed)
		log_warn(sid, "%u more %s not logged (at most %d a second)", l->suppressed,
			 l->what ? l->what : "similar lines", LOG_LIMIT_BURST);
	l->window = sec;
	l->lines = 0;
	l->suppressed = 0;
}

bool log_limit_ok(struct log_limit *l, uint64_t now_ms, const char *sid)
{
	log_limit_flush(l, now_ms, sid);
	if (l->lines < LOG_LIMIT_BURST) {
		l->lines++;
		return true;
	}
	l->suppressed++;
	return false;
}

void log_msg(enum log_level level, const char *sid, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;
	va_list ap;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s %s[%d] %s: ", ts.tv_nsec / 1000000,
		     level_names[level], log_process, (int)getpid(), sid ? sid : "-");
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines from several processes sharing stderr never interleave. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
