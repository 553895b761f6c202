/*
 * parse_num.h - a number read from the command line or a script by the tools (callbench,
 * rtmp_client, sipphone, wavcheck). Header only: each tool is built from its own files.
 *
 *   parse_double("0.25", &d)    true: all of the text is one finite number
 *   parse_number("nan", &d)     true: the same, but infinities and NaN count (strtod's syntax)
 */
#ifndef RS_PARSE_NUM_H
#define RS_PARSE_NUM_H

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

/* True when all of @s (not NULL, not empty) reads as a double, stored in @out; out of range is
 * false. */
static inline bool parse_number(const char *s, double *out)
{
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && *end == '\0';
}

/* The same, for a finite number only. */
static inline bool parse_double(const char *s, double *out)
{
	return parse_number(s, out) && isfinite(*out);
}

#endif
