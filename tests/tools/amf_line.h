/*
 * amf_line.h - librtmp AMF values printed as one bounded line of text, for the tools that report
 * what a server sent (rtmp_client, sipphone). Header only: each tool is built from its own files.
 *
 *   struct line l = {.len = 0};
 *   line_add(&l, "event ");
 *   line_add_text(&l, name, len, false);
 *   line_add_amf_args(&l, &obj, 3, &style);      -> event invited "sip:bob@example.com" {k:1}
 *   printf("%s\n", l.buf);
 *
 * The notation: strings in double quotes (\" \\ and \xNN for control bytes; names and bare
 * strings escape control bytes only), numbers, true, false, null, undefined, objects
 * {name:value,...}, strict arrays [value,...], anything else <type N>. Where the tools differ,
 * struct amf_line_style says which way: numbers as %g or exact, ECMA arrays as objects or
 * ecma{...}, dates as their number or date(ms,offset), and the bounds on nesting and on the
 * values of one list. A line that would overflow ends in "...".
 */
#ifndef RS_AMF_LINE_H
#define RS_AMF_LINE_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librtmp/amf.h>

#define AMF_LINE_MAX 16384

/* A bounded output line: text is cut (marked "...") rather than overflowed. */
struct line {
	char buf[AMF_LINE_MAX];
	size_t len;
	bool truncated;
};

struct amf_line_style {
	int max_depth;	    /* a value nested deeper (top level: 0) prints as "..." */
	int max_items;	    /* values of one object, array or argument list before "..."; 0: all */
	bool exact_numbers; /* integers bare, others as the shortest exact text; else %g */
	bool tag_ecma;	    /* ECMA arrays as ecma{...}; else as objects */
	bool tag_dates;	    /* dates as date(ms,offset); else as their number */
};

static inline void line_reset(struct line *l)
{
	l->len = 0;
	l->truncated = false;
	l->buf[0] = '\0';
}

static inline void line_add(struct line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void line_add(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->truncated)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(l->buf) - l->len) {
		l->truncated = true;
		l->len = sizeof(l->buf) - 4;
		memcpy(l->buf + l->len, "...", 4);
		return;
	}
	l->len += (size_t)n;
}

/* Appends @len bytes of @s, in quotes with escapes when @quote, else as they are (controls
 * still escaped so a line stays one line). */
static inline void line_add_text(struct line *l, const char *s, size_t len, bool quote)
{
	if (quote)
		line_add(l, "\"");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (quote && (c == '"' || c == '\\'))
			line_add(l, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			line_add(l, "\\x%02x", c);
		else
			line_add(l, "%c", c);
	}
	if (quote)
		line_add(l, "\"");
}

/* Appends @d: when @exact as an integer if it is one, else as the shortest text that reads back
 * as @d; otherwise as %g. */
static inline void line_add_number(struct line *l, double d, bool exact)
{
	char text[64];

	if (!exact) {
		line_add(l, "%g", d);
		return;
	}
	if (isfinite(d) && d == floor(d) && fabs(d) < 1e15) {
		line_add(l, "%.0f", d);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(text, sizeof(text), "%.*g", prec, d);
		if (strtod(text, NULL) == d || prec == 17)
			break;
	}
	line_add(l, "%s", text);
}

static inline void line_add_amf(struct line *l, const AMFObjectProperty *p, bool quote,
				const struct amf_line_style *st, int depth);

/* Appends the values of @o at nesting @depth, @sep between them, each after its name and a colon
 * when @named. */
static inline void line_add_amf_list(struct line *l, const AMFObject *o, bool named,
				     const char *sep, const struct amf_line_style *st, int depth)
{
	for (int i = 0; i < o->o_num; i++) {
		const AMFObjectProperty *m = &o->o_props[i];

		if (i)
			line_add(l, "%s", sep);
		if (st->max_items && i >= st->max_items) {
			line_add(l, "...");
			break;
		}
		if (named) {
			line_add_text(l, m->p_name.av_val, (size_t)m->p_name.av_len, false);
			line_add(l, ":");
		}
		line_add_amf(l, m, true, st, depth);
	}
}

/* Appends one AMF value at nesting @depth; a top-level string is quoted when @quote (nested ones
 * always are). */
static inline void line_add_amf(struct line *l, const AMFObjectProperty *p, bool quote,
				const struct amf_line_style *st, int depth)
{
	if (depth > st->max_depth) {
		line_add(l, "...");
		return;
	}
	switch (p->p_type) {
	case AMF_NUMBER:
		line_add_number(l, p->p_vu.p_number, st->exact_numbers);
		break;
	case AMF_BOOLEAN:
		line_add(l, "%s", p->p_vu.p_number != 0.0 ? "true" : "false");
		break;
	case AMF_STRING:
	case AMF_LONG_STRING:
	case AMF_XML_DOC:
		line_add_text(l, p->p_vu.p_aval.av_val, (size_t)p->p_vu.p_aval.av_len, quote);
		break;
	case AMF_NULL:
		line_add(l, "null");
		break;
	case AMF_UNDEFINED:
		line_add(l, "undefined");
		break;
	case AMF_OBJECT:
	case AMF_AVMPLUS:
	case AMF_ECMA_ARRAY:
		line_add(l, "%s{", p->p_type == AMF_ECMA_ARRAY && st->tag_ecma ? "ecma" : "");
		line_add_amf_list(l, &p->p_vu.p_object, true, ",", st, depth + 1);
		line_add(l, "}");
		break;
	case AMF_STRICT_ARRAY:
		line_add(l, "[");
		line_add_amf_list(l, &p->p_vu.p_object, false, ",", st, depth + 1);
		line_add(l, "]");
		break;
	case AMF_DATE:
		if (st->tag_dates)
			line_add(l, "date(");
		line_add_number(l, p->p_vu.p_number, st->exact_numbers);
		if (st->tag_dates)
			line_add(l, ",%d)", p->p_UTCoffset);
		break;
	default:
		line_add(l, "<type %d>", (int)p->p_type);
		break;
	}
}

/* Appends the values @from.. of @o (top level), each after a space. */
static inline void line_add_amf_args(struct line *l, const AMFObject *o, int from,
				     const struct amf_line_style *st)
{
	AMFObject rest = {o->o_num - from, o->o_props + from};

	if (from >= o->o_num)
		return;
	line_add(l, " ");
	line_add_amf_list(l, &rest, false, " ", st, 0);
}

#endif
