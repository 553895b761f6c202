/*
 * relayctl_out.h - relayctl's two output forms: aligned text tables and JSON, both written to
 * stdout, both safe for whatever a record in Redis holds.
 *
 * Text shown in a table has control characters and broken UTF-8 replaced by '?' (a value in
 * Redis must not drive the operator's terminal); JSON strings escape quotes, backslashes and
 * control characters and replace broken UTF-8 with U+FFFD, so the output always parses.
 */
#ifndef RS_RELAYCTL_OUT_H
#define RS_RELAYCTL_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TABLE_COLS_MAX 16
#define JSON_DEPTH_MAX 8

/* A copy of @s safe for a terminal ("-" for NULL or ""); the caller frees it. NULL on ENOMEM. */
char *text_safe(const char *s);

/* Rows of texts printed with aligned columns under a header line, two spaces apart. */
struct table {
	size_t ncols;
	const char *heads[TABLE_COLS_MAX];
	char **cells; /* rows * ncols, owned */
	size_t rows, cap;
	bool oom; /* a row could not be stored: the table is incomplete */
};

/* Starts an empty table with @ncols (at most TABLE_COLS_MAX) headings; @heads must outlive it. */
void table_init(struct table *t, const char *const *heads, size_t ncols);

/* Adds one row of t->ncols texts (NULL or "" shown as "-"), copied through text_safe(). */
void table_row(struct table *t, const char *const *texts);

/* Prints the table, or the line @empty when it has no rows. */
void table_print(const struct table *t, const char *empty);

/* Frees the rows; the table is empty afterwards. */
void table_free(struct table *t);

/*
 * A JSON document written as it goes: zero-initialize, then json_open('[' or '{'), members,
 * json_close() with the matching bracket. A top-level array puts one element per line.
 * Inside an object, every member starts with its key: json_str/u64/bool write key and value;
 * json_key() writes a key whose value follows (json_open() or json_null()).
 */
struct json {
	int depth;
	bool first[JSON_DEPTH_MAX];
	bool after_key;
	bool list; /* the document is an array: one element per line */
};

void json_open(struct json *j, char bracket);
void json_close(struct json *j, char bracket);
void json_key(struct json *j, const char *key);

/* A null value (after json_key()). */
void json_null(struct json *j);

/* "key": "value", or null when @value is NULL. */
void json_str(struct json *j, const char *key, const char *value);

/* "key": number, or null when !@have. */
void json_u64(struct json *j, const char *key, bool have, uint64_t v);

/* "key": true / false, or null when @v < 0. */
void json_bool(struct json *j, const char *key, int v);

#endif
