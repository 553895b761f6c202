/*
 * config.c - configuration from environment variables, validated and bounded.
 */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int config_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out)
{
	const char *s = getenv(name);
	char *end;
	long long v;

	if (!s || !*s) {
		*out = def;
		return 0;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end) {
		log_error(NULL, "config: %s=\"%s\" is not a whole number", name, s);
		return -EINVAL;
	}
	if (v < min || v > max) {
		log_error(NULL, "config: %s=%lld is outside [%" PRId64 ", %" PRId64 "]", name, v, min,
			  max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

const char *config_str(const char *name, const char *def)
{
	const char *s = getenv(name);

	return s && *s ? s : def;
}

int config_bool(const char *name, bool def, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	const char *s = getenv(name);

	if (!s || !*s) {
		*out = def;
		return 0;
	}
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	log_error(NULL, "config: %s=\"%s\" is not a boolean (use 1/0, true/false)", name, s);
	return -EINVAL;
}
