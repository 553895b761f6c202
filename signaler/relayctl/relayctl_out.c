/*
 * relayctl_out.c - relayctl's aligned text tables and JSON output (see relayctl_out.h).
 */
#include "relayctl_out.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Text */

/* Length of the valid UTF-8 sequence at @s (at most @len bytes) that is not a control
 * character (C0, DEL, C1), or 0. */
static size_t utf8_char(const unsigned char *s, size_t len)
{
	unsigned cp;
	size_t n;

	if (s[0] >= 0x20 && s[0] < 0x7f)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

char *text_safe(const char *s)
{
	size_t len, o = 0;
	char *out;

	if (!s || !*s)
		return strdup("-");
	len = strlen(s);
	out = malloc(len + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_char((const unsigned char *)s + i, len - i);

		if (n == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* Columns taken on a terminal (one per character). */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Table output: aligned columns, a header line, two spaces between columns */

void table_init(struct table *t, const char *const *heads, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols < TABLE_COLS_MAX ? ncols : TABLE_COLS_MAX;
	for (size_t i = 0; i < t->ncols; i++)
		t->heads[i] = heads[i];
}

void table_row(struct table *t, const char *const *texts)
{
	if (t->oom)
		return;
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **cells = realloc(t->cells, cap * t->ncols * sizeof(*cells));

		if (!cells) {
			t->oom = true;
			return;
		}
		t->cells = cells;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char *c = text_safe(texts[i]);

		if (!c)
			t->oom = true;
		t->cells[t->rows * t->ncols + i] = c;
	}
	t->rows++;
}

void table_print(const struct table *t, const char *empty)
{
	size_t width[TABLE_COLS_MAX];

	if (t->rows == 0) {
		printf("%s\n", empty);
		return;
	}
	for (size_t i = 0; i < t->ncols; i++)
		width[i] = strlen(t->heads[i]);
	for (size_t r = 0; r < t->rows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			const char *c = t->cells[r * t->ncols + i];
			size_t w = c ? text_width(c) : 1;

			width[i] = w > width[i] ? w : width[i];
		}
	for (size_t r = 0; r <= t->rows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *c = r == 0 ? t->heads[i] : t->cells[(r - 1) * t->ncols + i];

			c = c ? c : "?";
			if (i + 1 == t->ncols)
				printf("%s\n", c);
			else
				printf("%s%*s", c, (int)(width[i] - text_width(c) + 2), "");
		}
	}
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->rows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->rows = t->cap = 0;
}

/* JSON output: one array of objects, one object per line */

static void json_sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth > 0 && !j->first[j->depth])
		putchar(',');
	if (j->depth == 1 && j->list)
		fputs("\n  ", stdout);
	if (j->depth > 0)
		j->first[j->depth] = false;
}

/* Writes @len bytes of @s as a JSON string: quotes, backslashes and control characters
 * escaped, broken UTF-8 replaced by U+FFFD. */
static void json_raw_str(const char *s, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = utf8_char((const unsigned char *)s + i, len - i);

		if (c == '"' || c == '\\') {
			printf("\\%c", c);
			i++;
		} else if (n > 0) {
			fwrite(s + i, 1, n, stdout);
			i += n;
		} else if (c == '\n') {
			fputs("\\n", stdout), i++;
		} else if (c == '\t') {
			fputs("\\t", stdout), i++;
		} else if (c == '\r') {
			fputs("\\r", stdout), i++;
		} else if (c < 0x20 || c == 0x7f) {
			printf("\\u%04x", c);
			i++;
		} else if (c == 0xc2 && i + 1 < len && ((unsigned char)s[i + 1] & 0xc0) == 0x80) {
			/* U+0080..U+009F, the C1 controls utf8_char() refuses: escaped. */
			printf("\\u%04x", ((unsigned char)s[i + 1] & 0x3fu) | 0x80u);
			i += 2;
		} else {
			fputs("\\ufffd", stdout);
			i++;
		}
	}
	putchar('"');
}

void json_open(struct json *j, char bracket)
{
	if (j->depth == 0)
		j->list = bracket == '[';
	json_sep(j);
	putchar(bracket);
	if (j->depth + 1 < JSON_DEPTH_MAX)
		j->depth++;
	j->first[j->depth] = true;
}

void json_close(struct json *j, char bracket)
{
	bool was_empty = j->first[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (bracket == ']' && j->depth == 0 && !was_empty)
		putchar('\n');
	putchar(bracket);
	if (j->depth == 0)
		putchar('\n');
}

void json_null(struct json *j)
{
	json_sep(j);
	fputs("null", stdout);
}

void json_key(struct json *j, const char *key)
{
	json_sep(j);
	json_raw_str(key, strlen(key));
	putchar(':');
	j->after_key = true;
}

void json_str(struct json *j, const char *key, const char *value)
{
	json_key(j, key);
	json_sep(j);
	if (value)
		json_raw_str(value, strlen(value));
	else
		fputs("null", stdout);
}

void json_u64(struct json *j, const char *key, bool have, uint64_t v)
{
	json_key(j, key);
	json_sep(j);
	if (have)
		printf("%" PRIu64, v);
	else
		fputs("null", stdout);
}

void json_bool(struct json *j, const char *key, int v)
{
	json_key(j, key);
	json_sep(j);
	fputs(v < 0 ? "null" : v ? "true" : "false", stdout);
}
