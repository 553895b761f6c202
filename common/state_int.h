/*
 * state_int.h - the state layer's internals shared by its files (not an interface: state.h is,
 * and it lists every key).
 *
 *   state.c           the records' machinery (field tables written and parsed, whole writes,
 *                     reads, indexes, replies, cancellation); legs and workers
 *   state_signaler.c  calls, registrations, signaler heartbeats, orphan cleanup, locks, takeover
 */
#ifndef RS_STATE_INT_H
#define RS_STATE_INT_H

#include "redis.h"
#include "state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_SID  "state"
#define KEY_MAX	   (sizeof(STATE_KEY_PREFIX) + STATE_AOR_MAX + 16)
#define FIELDS_MAX 32 /* fields of one record type */
#define ERRMSG_MAX 256

/* The key names of state.h */
#define LEG_KEY		STATE_KEY_PREFIX "leg:"
#define WORKER_KEY	STATE_KEY_PREFIX "worker:"
#define WORKERS_KEY	STATE_KEY_PREFIX "workers"
#define LEGS_SUFFIX	":legs"
#define CALL_KEY	STATE_KEY_PREFIX "call:"
#define REG_KEY		STATE_KEY_PREFIX "reg:"
#define SIGNALER_KEY	STATE_KEY_PREFIX "signaler:"
#define CALLS_SUFFIX	":calls"
#define REGS_SUFFIX	":regs"
#define HANDOVER_SUFFIX ":handover"
#define SIGNALERS_KEY	STATE_KEY_PREFIX "signalers"
#define LOCK_KEY	STATE_KEY_PREFIX "lock:"

/* Record fields: a record type is a table of these (name, kind, place in the C struct, bounds) */

enum fkind {
	F_TEXT, /* printable ASCII without spaces */
	F_LINE, /* no control characters (spaces and UTF-8 allowed) */
	F_WORD, /* one of the words of field.words */
	F_ID,	/* state_id_valid() */
	F_IP,	/* "" or a numeric IPv4 / IPv6 address */
	F_B64,	/* base64 alphabet */
	F_UINT, /* unsigned integer of 1, 2, 4 or 8 bytes */
	F_INT,	/* signed integer of 2 or 4 bytes */
	F_BOOL, /* "0" or "1" */
};

struct field {
	const char *name;
	enum fkind kind;
	size_t off, size;
	int64_t min;	   /* F_INT */
	uint64_t max;	   /* F_UINT, F_INT */
	bool nonempty;	   /* strings */
	const char *words; /* F_WORD: the allowed values, separated by '|' */
	bool optional;	   /* may be missing from a stored record (added within the version) */
};

#define MEMBER(type, m) .off = offsetof(struct type, m), .size = sizeof(((struct type *)0)->m)
#define FSTR(type, n, k, m, ne)                                                                    \
	{                                                                                          \
		.name = n, .kind = k, MEMBER(type, m), .nonempty = ne                              \
	}
#define FUINT(type, n, m, mx)                                                                      \
	{                                                                                          \
		.name = n, .kind = F_UINT, MEMBER(type, m), .max = mx                              \
	}
#define FINT(type, n, m, mn, mx)                                                                   \
	{                                                                                          \
		.name = n, .kind = F_INT, MEMBER(type, m), .min = mn, .max = mx                    \
	}
#define FWORD(type, n, m, w)                                                                       \
	{                                                                                          \
		.name = n, .kind = F_WORD, MEMBER(type, m), .nonempty = true, .words = w           \
	}
#define FBOOL(type, n, m)                                                                          \
	{                                                                                          \
		.name = n, .kind = F_BOOL, MEMBER(type, m), .max = 1                               \
	}
/* Optional fields: strings may be empty, and a record without the field reads it as empty / 0. */
#define FOPT(type, n, k, m)                                                                        \
	{                                                                                          \
		.name = n, .kind = k, MEMBER(type, m), .optional = true                            \
	}
#define FOPTW(type, n, m, w)                                                                       \
	{                                                                                          \
		.name = n, .kind = F_WORD, MEMBER(type, m), .words = w, .optional = true           \
	}
#define FOPTU(type, n, m, mx)                                                                      \
	{                                                                                          \
		.name = n, .kind = F_UINT, MEMBER(type, m), .max = mx, .optional = true            \
	}

#define N_FIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* Operations in flight */

struct worker_item;
struct rectype;

struct state_op {
	state_done_cb done;
	void (*rec_cb)(void); /* record reads: the caller's typed callback (see rectype.deliver) */
	state_workers_cb workers;
	state_ids_cb ids;
	state_flag_cb flag;
	state_signaler_written_cb written;
	size_t ids_max; /* ids read by state_ids_reply when type is NULL (0: STATE_MAX_WORKERS) */
	void *arg;
	char id[STATE_AOR_MAX + 1]; /* the record's or the owner's id, for logs */
	const struct rectype *type; /* record and index reads (NULL: worker ids) */
	/* state_workers_list */
	struct worker_item *items;
	size_t n_items, outstanding;
	int err;
	char errmsg[ERRMSG_MAX];
};

/* Records keyed by an id and listed in their owner's index: legs, calls, registrations */

struct rectype {
	const char *what; /* in messages: "leg", "call", "registration", "worker" */
	const struct field *fields;
	size_t n_fields, size;	  /* size: of the C struct */
	const char *prefix;	  /* key: prefix + id */
	size_t key_off, key_size; /* the id: a member of the struct, not a hash field */
	bool (*key_ok)(const char *s, size_t len);
	const char *owner;	  /* the hash field naming the owner (an id) */
	size_t owner_off;	  /* ... and its member */
	const char *index_prefix; /* the owner's index: index_prefix + owner + index_suffix */
	const char *index_suffix;
	size_t index_max;   /* members read from an index */
	size_t updated_off; /* uint64_t ms, stamped with now on write when 0 */
	void (*deliver)(const struct state_op *op, int err, const char *msg, const void *rec);
};

union any_record {
	struct leg_record leg;
	struct call_record call;
	struct reg_record reg;
	struct worker_record worker;
	struct signaler_record signaler;
};

#define RECTYPE(type, w, tab, pfx, key, ok, own, ipfx, isfx, imax, dl)                             \
	{                                                                                          \
		.what = w, .fields = tab, .n_fields = N_FIELDS(tab), .size = sizeof(struct type),  \
		.prefix = pfx, .key_off = offsetof(struct type, key),                              \
		.key_size = sizeof(((struct type *)0)->key), .key_ok = ok, .owner = #own,          \
		.owner_off = offsetof(struct type, own), .index_prefix = ipfx,                     \
		.index_suffix = isfx, .index_max = imax,                                           \
		.updated_off = offsetof(struct type, updated_ms), .deliver = dl                    \
	}

/* True when @c may be in an id ([A-Za-z0-9_.@-]). */
bool state_id_char(char c);

/* state_id_valid() of the @len bytes at @s (not NUL-terminated): a record type's key_ok. */
bool state_id_valid_n(const char *s, size_t len);

/* Writes "<prefix><id><suffix>" into @key (@size bytes). */
void state_key_of(char *key, size_t size, const char *prefix, const char *id, const char *suffix);

/* A zeroed operation carrying the caller's @arg (freed by the reply handler), or NULL. */
struct state_op *state_op_new(void *arg);

/* Words for a client-level error (@reply may carry Redis's own text), in @buf; returns @buf. */
const char *state_client_error(int err, const redisReply *reply, char *buf, size_t size);

/*
 * Builds the argument vector "HSET key v 1 name value ..." of @rec in @argv/@lens (room for
 * 4 + 2 * FIELDS_MAX), checking every value as the reader will. Returns argc or -EINVAL.
 */
int state_build_hset(const struct field *tab, size_t nf, const void *rec, size_t recsize,
		     const char *key, const char *what, const char *id, const char **argv,
		     size_t *lens, char (*nums)[24]);

/* True when @id is a valid key of records of type @t. */
bool state_key_valid(const struct rectype *t, const char *id);

/* Copies @rec of type @t into @copy, checks its key, stamps its updated field when 0. */
int state_record_copy(const struct rectype *t, const void *rec, union any_record *copy);

/* Writes @rec (type @t) whole and adds it to its owner's index, whose expiry becomes at least
 * @index_ttl_s (0: @ttl_s). */
int state_record_write(struct redis *r, const struct rectype *t, const void *rec, unsigned ttl_s,
		       unsigned index_ttl_s, state_done_cb cb, void *arg);

/* Removes @id from @owner's index and deletes its record if it still names @owner. */
int state_record_delete(struct redis *r, const struct rectype *t, const char *id, const char *owner,
			state_done_cb cb, void *arg);

/* HGETALL of record @id; @cb is the caller's typed callback, which @t->deliver calls. */
int state_record_read(struct redis *r, const struct rectype *t, const char *id, void (*cb)(void),
		      void *arg);

/* SMEMBERS of @owner's index of records of type @t. */
int state_record_index(struct redis *r, const struct rectype *t, const char *owner, state_ids_cb cb,
		       void *arg);

/* The reply handler of id lists: SMEMBERS (op->type's index) / ZRANGEBYSCORE (worker ids) reply
 * -> validated ids, to op->ids. */
void state_ids_reply(struct redis *r, int err, const redisReply *reply, void *arg);

/* An operation whose outcome is yes or no, to @cb (may be NULL); @id names it in logs. */
struct state_op *state_flag_op(state_flag_cb cb, void *arg, const char *id);

/* Sends one command whose reply is a flag; frees @op when it cannot be sent. */
int state_send_flag(struct redis *r, struct state_op *op, int argc, const char **argv);

/* The reply handler of state_signaler_write() (state_signaler.c), for state_cancel(). */
void state_signaler_written_reply(struct redis *r, int err, const redisReply *reply, void *arg);

#endif
