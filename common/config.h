/*
 * config.h - configuration from environment variables, validated and bounded.
 *
 * Every daemon is configured only by environment variables (the same names `make run`, the
 * containers and the systemd units use). A value that does not parse or lies outside its range
 * is an error at start-up, never silently clamped.
 */
#ifndef RS_CONFIG_H
#define RS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Reads integer variable @name into @out: @def when unset or empty, otherwise a decimal number
 * in [@min, @max]. Returns 0, or -EINVAL after logging which variable is wrong and why.
 */
int config_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out);

/*
 * Reads string variable @name: @def when unset or empty. The result points into the
 * environment or at @def; it is never NULL unless @def is NULL.
 */
const char *config_str(const char *name, const char *def);

/* Reads a boolean ("1/0", "true/false", "yes/no", "on/off"); returns 0 or -EINVAL. */
int config_bool(const char *name, bool def, bool *out);

#endif
