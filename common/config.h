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
#include <stddef.h>
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

/*
 * Reads variable @name as one of @choices (NULL-terminated, compared exactly): *out gets the
 * index of the one given, or @def when unset or empty (-1: nothing chosen). Returns 0, or
 * -EINVAL after logging the variable and the choices.
 */
int config_enum(const char *name, int def, const char *const choices[], int *out);

/*
 * Reads regular file @path, at most @max bytes, into a new NUL-terminated buffer (*out, the
 * caller frees it; *len bytes, no NUL inside). Returns 0, or -errno with @why (@whylen bytes)
 * saying what is wrong: -ENOENT / -EACCES..., -EINVAL (not a regular file, too large, a NUL
 * byte), -EIO, -ENOMEM.
 */
int config_read_file(const char *path, size_t max, char **out, size_t *len, char *why,
		     size_t whylen);

/*
 * Reads the file @path holding one secret (a password: REDIS_PASSWORD_FILE) into @out (@size
 * bytes): its content without one trailing newline; at most @size - 1 bytes, no NUL, CR or LF
 * inside, not empty. Returns 0, or -errno with @why (@whylen bytes) saying what is wrong.
 */
int config_secret_file(const char *path, char *out, size_t size, char *why, size_t whylen);

/*
 * Loads an environment file (`make run` writes run/rtmp2sip.env): lines NAME=value or
 * NAME='value' (no quote inside), '#' comments and blank lines; at most 64 KiB. Each variable
 * whose name is in @names (NULL-terminated) is set unless the environment has it already;
 * other names are skipped. Returns the number set, or -errno with @why saying what is wrong
 * (nothing is set then).
 */
int config_env_file(const char *path, const char *const *names, char *why, size_t whylen);

#endif
