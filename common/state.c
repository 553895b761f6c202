/*
 * state.c - the versioned records of the Redis key layout (state.h) and the legs and workers kept
 * in it; calls, registrations and signalers are in state_signaler.c, on the same machinery.
 *
 * Each record type is a table of fields (name, kind, place in the C struct, bounds). One table
 * drives both directions, so what is written is exactly what the reader accepts:
 *
 *   struct --format--> text --parse (the reader's checks)--> scratch struct   (write: validate)
 *   HGETALL reply ---------------> parse, every field present -------> struct (read)
 *
 * Every write is one MULTI/EXEC that rewrites the whole hash (DEL + HSET + EXPIRE) and updates
 * the index sets in the same transaction, so a reader never sees half an update. Legs, calls and
 * registrations share one code path (struct rectype): a record keyed by an id, owned by the id
 * in one of its fields, listed in that owner's index set.
 *
 * Fields added within a format version are optional: a record written before them reads with
 * them empty (the orphan finder must still read an older signaler's calls).
 */
#include "state_int.h"

#include "config.h"
#include "log.h"
#include "redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VALUE_MAX 1024 /* longest hash value accepted from Redis */

/* SADD ARGV[1] to the index KEYS[1] and extend its expiry to at least ARGV[2] s, never shorten
 * it: an index must outlive the longest-lived record it lists (TTL is -1 for a new set). */
#define INDEX_ADD_LUA                                                                              \
	"redis.call('SADD', KEYS[1], ARGV[1]) "                                                    \
	"if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then "                                  \
	"redis.call('EXPIRE', KEYS[1], ARGV[2]) end return 1"

/* DEL the record KEYS[1] only if its owner field ARGV[3] still is ARGV[1], and SREM ARGV[2] from
 * that owner's index KEYS[2]: a stale owner must not delete the state of the one that took over. */
#define DELETE_IF_OWNER_LUA                                                                        \
	"if redis.call('HGET', KEYS[1], ARGV[3]) == ARGV[1] then "                                 \
	"redis.call('DEL', KEYS[1]) end "                                                          \
	"redis.call('SREM', KEYS[2], ARGV[2]) return 1"

/* Record fields */

static const struct field leg_fields[] = {
    FSTR(leg_record, "call", F_TEXT, call_id, true),
    FSTR(leg_record, "owner", F_ID, owner, true),
    FSTR(leg_record, "worker", F_ID, worker, true),
    FSTR(leg_record, "rtmp_codec", F_TEXT, rtmp_codec, true),
    FOPT(leg_record, "rtmp_out", F_TEXT, rtmp_out),
    FOPTU(leg_record, "rtmp_rate", rtmp_rate, 192000),
    FOPTU(leg_record, "rtmp_ch", rtmp_channels, 2),
    FUINT(leg_record, "sip_pt", sip_pt, 127),
    FSTR(leg_record, "sip_codec", F_TEXT, sip_codec, true),
    FOPT(leg_record, "sip_fmtp", F_LINE, sip_fmtp),
    {.name = "sip_rate", .kind = F_UINT, MEMBER(leg_record, sip_rate), .min = 1000, .max = 192000},
    FINT(leg_record, "dtmf_pt", dtmf_pt, -1, 127),
    FSTR(leg_record, "remote_ip", F_IP, remote_ip, false),
    FUINT(leg_record, "remote_port", remote_port, 65535),
    FUINT(leg_record, "local_port", local_port, 65535),
    FUINT(leg_record, "ssrc", ssrc, UINT32_MAX),
    FUINT(leg_record, "seq", seq, 65535),
    FUINT(leg_record, "ts", timestamp, UINT32_MAX),
    FSTR(leg_record, "srtp_suite", F_TEXT, srtp_suite, false),
    FSTR(leg_record, "srtp_lkey", F_B64, srtp_local_key, false),
    FSTR(leg_record, "srtp_rkey", F_B64, srtp_remote_key, false),
    FUINT(leg_record, "srtp_roc", srtp_roc, UINT32_MAX),
    FBOOL(leg_record, "hold", hold),
    FUINT(leg_record, "created", created_ms, UINT64_MAX),
    FUINT(leg_record, "updated", updated_ms, UINT64_MAX),
};

static const struct field worker_fields[] = {
    FSTR(worker_record, "instance", F_ID, instance_id, true),
    {.name = "pid", .kind = F_UINT, MEMBER(worker_record, pid), .min = 1, .max = INT32_MAX},
    FSTR(worker_record, "host", F_TEXT, host, true),
    FSTR(worker_record, "ctl", F_TEXT, ctl_endpoint, false),
    FSTR(worker_record, "media", F_TEXT, media_endpoint, false),
    FUINT(worker_record, "legs", legs, UINT32_MAX),
    FUINT(worker_record, "cpu", cpu, 1000000),
    FBOOL(worker_record, "draining", draining),
    FUINT(worker_record, "started", started_ms, UINT64_MAX),
    FUINT(worker_record, "seen", last_seen_ms, UINT64_MAX),
    FOPT(worker_record, "curve", F_TEXT, curve_key),
};

_Static_assert(N_FIELDS(leg_fields) <= FIELDS_MAX, "leg_fields too long");
_Static_assert(N_FIELDS(worker_fields) <= FIELDS_MAX, "worker_fields too long");

/* Helpers */

uint64_t state_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool state_id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '@' || c == '-';
}

/* ':' is excluded so that no id can forge another key (worker "w:legs" vs w's index). */
bool state_id_valid_n(const char *s, size_t len)
{
	if (len < 1 || len > STATE_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!state_id_char(s[i]))
			return false;
	return true;
}

bool state_id_valid(const char *id)
{
	return id && state_id_valid_n(id, strnlen(id, STATE_ID_MAX + 1));
}

int state_config_from_env(struct state_config *cfg)
{
	int64_t leg, call;

	if (config_int("LEG_TTL", STATE_LEG_TTL_DEFAULT_S, 60, STATE_TTL_MAX_S, &leg) < 0 ||
	    config_int("CALL_TTL", STATE_CALL_TTL_DEFAULT_S, 60, STATE_TTL_MAX_S, &call) < 0)
		return -EINVAL;
	cfg->leg_ttl_s = (unsigned)leg;
	cfg->call_ttl_s = (unsigned)call;
	return 0;
}

/* Copies @s (length @len) into @out for an error message: bounded, non-printables as '?'. */
static const char *shown(const char *s, size_t len, char *out, size_t size)
{
	size_t n = len < size - 4 ? len : size - 4, i;

	for (i = 0; i < n; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i] : '?';
	if (n < len)
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
	return out;
}

static uint64_t load_uint(const void *p, size_t size)
{
	switch (size) {
	case 1:
		return *(const uint8_t *)p;
	case 2:
		return *(const uint16_t *)p;
	case 4:
		return *(const uint32_t *)p;
	default:
		return *(const uint64_t *)p;
	}
}

static void store_uint(void *p, size_t size, uint64_t v)
{
	switch (size) {
	case 1:
		*(uint8_t *)p = (uint8_t)v;
		break;
	case 2:
		*(uint16_t *)p = (uint16_t)v;
		break;
	case 4:
		*(uint32_t *)p = (uint32_t)v;
		break;
	default:
		*(uint64_t *)p = v;
		break;
	}
}

static int64_t load_int(const void *p, size_t size)
{
	return size == 2 ? *(const int16_t *)p : *(const int32_t *)p;
}

static void store_int(void *p, size_t size, int64_t v)
{
	if (size == 2)
		*(int16_t *)p = (int16_t)v;
	else
		*(int32_t *)p = (int32_t)v;
}

static bool str_chars_ok(enum fkind kind, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok;

		switch (kind) {
		case F_ID:
			ok = state_id_char(c);
			break;
		case F_B64:
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
			break;
		case F_LINE:
			ok = (unsigned char)c >= 0x20 && c != 0x7f;
			break;
		default:
			ok = c > 0x20 && c < 0x7f;
			break;
		}
		if (!ok)
			return false;
	}
	return true;
}

/* True when @s (@len bytes) is one of the '|'-separated words of @set. */
static bool word_in(const char *set, const char *s, size_t len)
{
	for (const char *w = set; *w; w += *w == '|') {
		size_t n = strcspn(w, "|");

		if (n == len && memcmp(w, s, len) == 0)
			return true;
		w += n;
	}
	return false;
}

/*
 * Checks one value (@s, @len bytes, from Redis or formatted for a write) against @f and stores
 * it into @rec. Returns 0 or -EBADMSG with @err saying why, naming the field.
 */
static int parse_value(const struct field *f, const char *s, size_t len, void *rec,
		       const char *what, const char *id, char *err, size_t errsz)
{
	char *dst = (char *)rec + f->off;
	char val[48], num[24];
	size_t neg;
	unsigned long long u;
	long long v;
	char *end;

	switch (f->kind) {
	case F_TEXT:
	case F_LINE:
	case F_WORD:
	case F_ID:
	case F_B64:
	case F_IP:
		if (len >= f->size) {
			snprintf(err, errsz, "%s %s: field '%s' too long (%zu bytes, at most %zu)",
				 what, id, f->name, len, f->size - 1);
			return -EBADMSG;
		}
		if (f->nonempty && len == 0) {
			snprintf(err, errsz, "%s %s: field '%s' is empty", what, id, f->name);
			return -EBADMSG;
		}
		if (memchr(s, '\0', len) ||
		    (f->kind == F_IP ? false : !str_chars_ok(f->kind, s, len))) {
			snprintf(err, errsz,
				 "%s %s: field '%s' = \"%s\" has characters not allowed", what, id,
				 f->name, shown(s, len, val, sizeof(val)));
			return -EBADMSG;
		}
		if (f->kind == F_WORD && len > 0 && !word_in(f->words, s, len)) {
			snprintf(err, errsz, "%s %s: field '%s' = \"%s\" is not one of %s", what,
				 id, f->name, shown(s, len, val, sizeof(val)), f->words);
			return -EBADMSG;
		}
		memcpy(dst, s, len);
		dst[len] = '\0';
		if (f->kind == F_IP && len > 0) {
			unsigned char a[16];

			if (inet_pton(AF_INET, dst, a) != 1 && inet_pton(AF_INET6, dst, a) != 1) {
				snprintf(err, errsz,
					 "%s %s: field '%s' = \"%s\" is not an IP address", what,
					 id, f->name, shown(s, len, val, sizeof(val)));
				return -EBADMSG;
			}
		}
		return 0;
	case F_UINT:
	case F_INT:
	case F_BOOL:
		break;
	}
	/* Numbers: plain decimal digits, '-' only for signed fields; no spaces, no '+'. */
	neg = f->kind == F_INT && len > 1 && s[0] == '-';
	if (len == 0 || len >= sizeof(num) || memchr(s, '\0', len) ||
	    (memcpy(num, s, len), num[len] = '\0', strspn(num + neg, "0123456789") != len - neg)) {
		snprintf(err, errsz, "%s %s: field '%s' = \"%s\" is not a number", what, id,
			 f->name, shown(s, len, val, sizeof(val)));
		return -EBADMSG;
	}
	errno = 0;
	if (f->kind == F_INT) {
		v = strtoll(num, &end, 10);
		if (errno || v < f->min || v > (long long)f->max) {
			snprintf(err, errsz,
				 "%s %s: field '%s' = \"%s\" out of range [%" PRId64 ", %" PRIu64
				 "]",
				 what, id, f->name, num, f->min, f->max);
			return -EBADMSG;
		}
		store_int(dst, f->size, v);
		return 0;
	}
	u = strtoull(num, &end, 10);
	if (errno || u < (uint64_t)f->min || u > f->max) {
		snprintf(err, errsz,
			 "%s %s: field '%s' = \"%s\" out of range [%" PRId64 ", %" PRIu64 "]", what,
			 id, f->name, num, f->min, f->max);
		return -EBADMSG;
	}
	if (f->kind == F_BOOL)
		*(bool *)dst = u != 0;
	else
		store_uint(dst, f->size, u);
	return 0;
}

/* Formats field @f of @rec as text; strings point into @rec, numbers into @buf (24 bytes). */
static const char *format_value(const struct field *f, const void *rec, char *buf, size_t *len)
{
	const char *src = (const char *)rec + f->off;

	switch (f->kind) {
	case F_TEXT:
	case F_LINE:
	case F_WORD:
	case F_ID:
	case F_B64:
	case F_IP:
		*len =
		    strnlen(src, f->size); /* == size when unterminated: parse_value refuses it */
		return src;
	case F_UINT:
		*len = (size_t)snprintf(buf, 24, "%" PRIu64, load_uint(src, f->size));
		return buf;
	case F_INT:
		*len = (size_t)snprintf(buf, 24, "%" PRId64, load_int(src, f->size));
		return buf;
	case F_BOOL:
		*len = 1;
		return *(const bool *)src ? "1" : "0";
	}
	*len = 0;
	return "";
}

int state_build_hset(const struct field *tab, size_t nf, const void *rec, size_t recsize,
		     const char *key, const char *what, const char *id, const char **argv,
		     size_t *lens, char (*nums)[24])
{
	static const char version[] = "1";
	char err[ERRMSG_MAX];
	void *scratch = malloc(recsize);
	int argc = 0, ret = 0;

	if (!scratch)
		return -ENOMEM;
	argv[argc] = "HSET", lens[argc++] = 4;
	argv[argc] = key, lens[argc++] = strlen(key);
	argv[argc] = "v", lens[argc++] = 1;
	argv[argc] = version, lens[argc++] = 1;
	for (size_t i = 0; i < nf; i++) {
		size_t len;
		const char *v = format_value(&tab[i], rec, nums[i], &len);

		if (parse_value(&tab[i], v, len, scratch, what, id, err, sizeof(err)) < 0) {
			log_warn(STATE_SID, "not written: %s", err);
			ret = -EINVAL;
			break;
		}
		argv[argc] = tab[i].name, lens[argc++] = strlen(tab[i].name);
		argv[argc] = v, lens[argc++] = len;
	}
	free(scratch);
	return ret < 0 ? ret : argc;
}

/*
 * Fills @rec from an HGETALL reply. Returns 0, -ENOENT (empty hash), -EPROTONOSUPPORT (another
 * format version) or -EBADMSG, with @err in words.
 */
static int parse_hash(const struct field *tab, size_t nf, const redisReply *reply, void *rec,
		      const char *what, const char *id, char *err, size_t errsz)
{
	uint64_t seen = 0;
	const char *s;
	size_t len;
	char val[48];
	bool have_version = false;

	if (redis_reply_array(reply, 2 * (FIELDS_MAX + 32)) < 0 || reply->elements % 2) {
		snprintf(err, errsz, "%s %s: not a hash of bounded size", what, id);
		return -EBADMSG;
	}
	if (reply->elements == 0) {
		snprintf(err, errsz, "%s %s not found", what, id);
		return -ENOENT;
	}
	for (size_t i = 0; i < reply->elements; i++) {
		if (redis_reply_str(reply->element[i], VALUE_MAX, &s, &len) < 0) {
			snprintf(err, errsz,
				 "%s %s: hash element %zu is not a string of at most %d bytes",
				 what, id, i, VALUE_MAX);
			return -EBADMSG;
		}
	}
	/* The version first: a record of another format is refused as such, whatever its fields. */
	for (size_t i = 0; i < reply->elements; i += 2) {
		const redisReply *k = reply->element[i], *v = reply->element[i + 1];

		if (k->len != 1 || k->str[0] != 'v')
			continue;
		have_version = true;
		if (v->len != 1 || v->str[0] != '0' + STATE_FORMAT_VERSION) {
			snprintf(err, errsz,
				 "%s record format v%s unsupported (%s %s; this build reads v%d)",
				 what, shown(v->str, v->len, val, sizeof(val)), what, id,
				 STATE_FORMAT_VERSION);
			return -EPROTONOSUPPORT;
		}
	}
	if (!have_version) {
		snprintf(err, errsz, "%s %s: field 'v' (format version) missing", what, id);
		return -EBADMSG;
	}
	for (size_t i = 0; i < reply->elements; i += 2) {
		const redisReply *k = reply->element[i], *v = reply->element[i + 1];

		for (size_t f = 0; f < nf; f++) {
			if (strlen(tab[f].name) != k->len ||
			    memcmp(tab[f].name, k->str, k->len) != 0)
				continue;
			if (parse_value(&tab[f], v->str, v->len, rec, what, id, err, errsz) < 0)
				return -EBADMSG;
			seen |= 1ull << f;
			break;
		}
		/* Unknown fields are ignored: readers of v1 tolerate additions within v1. */
	}
	for (size_t f = 0; f < nf; f++) {
		if (!(seen & (1ull << f)) && !tab[f].optional) {
			snprintf(err, errsz, "%s %s: field '%s' missing", what, id, tab[f].name);
			return -EBADMSG;
		}
	}
	return 0;
}

/* Operations in flight */

struct worker_item {
	struct state_op *op;
	bool ok;
	struct worker_record rec;
};

struct state_op *state_op_new(void *arg)
{
	struct state_op *op = calloc(1, sizeof(*op));

	if (op)
		op->arg = arg;
	return op;
}

const char *state_client_error(int err, const redisReply *reply, char *buf, size_t size)
{
	if (err == -EREMOTEIO && reply && reply->str)
		snprintf(buf, size, "Redis error: %.200s", reply->str);
	else if (err == -ENOTCONN)
		snprintf(buf, size, "Redis link down");
	else if (err == -ETIMEDOUT)
		snprintf(buf, size, "Redis did not answer in time");
	else if (err == -ECANCELED)
		snprintf(buf, size, "cancelled");
	else
		snprintf(buf, size, "%s", strerror(-err));
	return buf;
}

/* EXEC's reply: every queued command must have succeeded. */
static void exec_reply(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct state_op *op = arg;
	char msg[ERRMSG_MAX] = "";

	(void)r;
	if (err) {
		state_client_error(err, reply, msg, sizeof(msg));
	} else if (redis_reply_array(reply, REDIS_MULTI_MAX) < 0) {
		err = -EREMOTEIO;
		snprintf(msg, sizeof(msg), "transaction not executed");
	} else {
		for (size_t i = 0; i < reply->elements; i++) {
			if (reply->element[i]->type == REDIS_REPLY_ERROR) {
				err = -EREMOTEIO;
				snprintf(msg, sizeof(msg),
					 "command %zu of the transaction failed: %.180s", i + 1,
					 reply->element[i]->str ? reply->element[i]->str : "");
				break;
			}
		}
	}
	if (err && err != -ECANCELED)
		log_warn(op->id[0] ? op->id : STATE_SID, "Redis write failed: %s", msg);
	if (op->done)
		op->done(err, err ? msg : NULL, op->arg);
	free(op);
}

static int send_multi(struct redis *r, struct state_op *op, const struct redis_cmd *cmds, size_t n)
{
	int ret = redis_multi(r, exec_reply, op, cmds, n);

	if (ret < 0)
		free(op);
	return ret;
}

void state_key_of(char *key, size_t size, const char *prefix, const char *id, const char *suffix)
{
	snprintf(key, size, "%s%s%s", prefix, id, suffix);
}

/* Records keyed by an id and listed in their owner's index: legs, calls, registrations */

/* The caller's callback was stored as void (*)(void); each type calls it with its own type. */
static void deliver_leg(const struct state_op *op, int err, const char *msg, const void *rec)
{
	((state_leg_cb)op->rec_cb)(err, msg, rec, op->arg);
}

static const struct rectype leg_type =
    RECTYPE(leg_record, "leg", leg_fields, LEG_KEY, leg_id, state_id_valid_n, worker, WORKER_KEY,
	    LEGS_SUFFIX, STATE_MAX_LEGS_PER_WORKER, deliver_leg);

/* Written whole like the others, but listed in rs:v1:workers, not in an owner's index. */
static const struct rectype worker_type = {
    .what = "worker",
    .fields = worker_fields,
    .n_fields = N_FIELDS(worker_fields),
    .size = sizeof(struct worker_record),
    .prefix = WORKER_KEY,
    .key_off = offsetof(struct worker_record, worker_id),
    .key_size = sizeof(((struct worker_record *)0)->worker_id),
    .key_ok = state_id_valid_n,
    .updated_off = offsetof(struct worker_record, last_seen_ms),
};

/* RECTYPE names the owner's hash field after its member (#own); state_id_valid() reads the
 * owner as a char[STATE_ID_MAX + 1]. */
_Static_assert(sizeof(((struct leg_record *)0)->worker) == STATE_ID_MAX + 1, "leg owner");

bool state_key_valid(const struct rectype *t, const char *id)
{
	return id && t->key_ok(id, strnlen(id, t->key_size));
}

int state_record_copy(const struct rectype *t, const void *rec, union any_record *copy)
{
	uint64_t *updated = (uint64_t *)((char *)copy + t->updated_off);

	if (!rec)
		return -EINVAL;
	memcpy(copy, rec, t->size);
	if (!state_key_valid(t, (const char *)copy + t->key_off)) {
		log_warn(STATE_SID, "%s not written: invalid %s id", t->what, t->what);
		return -EINVAL;
	}
	if (*updated == 0)
		*updated = state_now_ms();
	return 0;
}

/*
 * Sends, in one transaction, DEL + HSET of every field + EXPIRE @ttl_s on the key of @rec (of
 * type @t, prepared by state_record_copy()), then the @n_extra commands of @extra (index updates).
 */
static int write_whole(struct redis *r, const struct rectype *t, const union any_record *rec,
		       unsigned ttl_s, const struct redis_cmd *extra, size_t n_extra,
		       state_done_cb cb, void *arg)
{
	const char *id = (const char *)rec + t->key_off;
	char key[KEY_MAX], ttl[16];
	char nums[FIELDS_MAX][24];
	const char *hset[4 + 2 * FIELDS_MAX];
	size_t hlens[4 + 2 * FIELDS_MAX];
	struct redis_cmd cmds[REDIS_MULTI_MAX];
	struct state_op *op;
	int argc;

	if (ttl_s == 0 || 3 + n_extra > REDIS_MULTI_MAX)
		return -EINVAL;
	state_key_of(key, sizeof(key), t->prefix, id, "");
	argc = state_build_hset(t->fields, t->n_fields, rec, t->size, key, t->what, id, hset, hlens,
				nums);
	if (argc < 0)
		return argc;
	snprintf(ttl, sizeof(ttl), "%u", ttl_s);
	cmds[0] = (struct redis_cmd){2, (const char *[]){"DEL", key}, NULL};
	cmds[1] = (struct redis_cmd){argc, hset, hlens};
	cmds[2] = (struct redis_cmd){3, (const char *[]){"EXPIRE", key, ttl}, NULL};
	memcpy(&cmds[3], extra, n_extra * sizeof(*extra));
	op = state_op_new(arg);
	if (!op)
		return -ENOMEM;
	op->done = cb;
	snprintf(op->id, sizeof(op->id), "%s", id);
	return send_multi(r, op, cmds, 3 + n_extra);
}

int state_record_write(struct redis *r, const struct rectype *t, const void *rec, unsigned ttl_s,
		       unsigned index_ttl_s, state_done_cb cb, void *arg)
{
	union any_record copy;
	const char *id = (const char *)&copy + t->key_off;
	const char *owner = (const char *)&copy + t->owner_off;
	char idx[KEY_MAX], ittl[16];

	if (state_record_copy(t, rec, &copy) < 0)
		return -EINVAL;
	if (!state_id_valid(owner)) {
		log_warn(STATE_SID, "%s %s not written: invalid %s id", t->what, id, t->owner);
		return -EINVAL;
	}
	state_key_of(idx, sizeof(idx), t->index_prefix, owner, t->index_suffix);
	snprintf(ittl, sizeof(ittl), "%u", index_ttl_s ? index_ttl_s : ttl_s);
	return write_whole(
	    r, t, &copy, ttl_s,
	    (const struct redis_cmd[]){
		{6, (const char *[]){"EVAL", INDEX_ADD_LUA, "1", idx, id, ittl}, NULL},
	    },
	    1, cb, arg);
}

int state_record_delete(struct redis *r, const struct rectype *t, const char *id, const char *owner,
			state_done_cb cb, void *arg)
{
	char key[KEY_MAX], idx[KEY_MAX];
	struct state_op *op;

	if (!state_key_valid(t, id) || !state_id_valid(owner))
		return -EINVAL;
	state_key_of(key, sizeof(key), t->prefix, id, "");
	state_key_of(idx, sizeof(idx), t->index_prefix, owner, t->index_suffix);
	op = state_op_new(arg);
	if (!op)
		return -ENOMEM;
	op->done = cb;
	snprintf(op->id, sizeof(op->id), "%s", id);
	return send_multi(
	    r, op,
	    (const struct redis_cmd[]){
		{8,
		 (const char *[]){"EVAL", DELETE_IF_OWNER_LUA, "2", key, idx, owner, id, t->owner},
		 NULL},
	    },
	    1);
}

static void record_read_reply(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct state_op *op = arg;
	const struct rectype *t = op->type;
	union any_record rec;
	char msg[ERRMSG_MAX];

	(void)r;
	memset(&rec, 0, sizeof(rec));
	if (err)
		state_client_error(err, reply, msg, sizeof(msg));
	else
		err = parse_hash(t->fields, t->n_fields, reply, &rec, t->what, op->id, msg,
				 sizeof(msg));
	if (err == -EPROTONOSUPPORT || err == -EBADMSG)
		log_warn(op->id, "%s", msg);
	if (!err)
		snprintf((char *)&rec + t->key_off, t->key_size, "%s", op->id);
	t->deliver(op, err, err ? msg : NULL, err ? NULL : &rec);
	free(op);
}

int state_record_read(struct redis *r, const struct rectype *t, const char *id, void (*cb)(void),
		      void *arg)
{
	char key[KEY_MAX];
	struct state_op *op;
	int ret;

	if (!cb || !state_key_valid(t, id))
		return -EINVAL;
	state_key_of(key, sizeof(key), t->prefix, id, "");
	op = state_op_new(arg);
	if (!op)
		return -ENOMEM;
	op->rec_cb = cb;
	op->type = t;
	snprintf(op->id, sizeof(op->id), "%s", id);
	ret =
	    redis_command_argv(r, record_read_reply, op, 2, (const char *[]){"HGETALL", key}, NULL);
	if (ret < 0)
		free(op);
	return ret;
}

int state_record_index(struct redis *r, const struct rectype *t, const char *owner, state_ids_cb cb,
		       void *arg)
{
	char idx[KEY_MAX];
	struct state_op *op;
	int ret;

	if (!cb || !state_id_valid(owner))
		return -EINVAL;
	state_key_of(idx, sizeof(idx), t->index_prefix, owner, t->index_suffix);
	op = state_op_new(arg);
	if (!op)
		return -ENOMEM;
	op->ids = cb;
	op->type = t;
	snprintf(op->id, sizeof(op->id), "%s", owner);
	ret =
	    redis_command_argv(r, state_ids_reply, op, 2, (const char *[]){"SMEMBERS", idx}, NULL);
	if (ret < 0)
		free(op);
	return ret;
}

/* Legs */

int state_leg_write(struct redis *r, const struct leg_record *rec, unsigned ttl_s, state_done_cb cb,
		    void *arg)
{
	return state_record_write(r, &leg_type, rec, ttl_s ? ttl_s : STATE_LEG_TTL_DEFAULT_S,
				  STATE_WORKER_INDEX_TTL_S, cb, arg);
}

int state_leg_delete(struct redis *r, const char *leg_id, const char *worker_id, state_done_cb cb,
		     void *arg)
{
	return state_record_delete(r, &leg_type, leg_id, worker_id, cb, arg);
}

int state_leg_read(struct redis *r, const char *leg_id, state_leg_cb cb, void *arg)
{
	return state_record_read(r, &leg_type, leg_id, (void (*)(void))cb, arg);
}

int state_worker_legs(struct redis *r, const char *worker_id, state_ids_cb cb, void *arg)
{
	return state_record_index(r, &leg_type, worker_id, cb, arg);
}

/* Workers */

int state_worker_write(struct redis *r, const struct worker_record *rec, unsigned ttl_s,
		       state_done_cb cb, void *arg)
{
	char idx[KEY_MAX], ittl[16], score[24], cutoff[24];
	union any_record copy;
	const struct worker_record *w = &copy.worker;
	uint64_t keep_ms = (uint64_t)STATE_WORKER_INDEX_TTL_S * 1000u;

	if (state_record_copy(&worker_type, rec, &copy) < 0)
		return -EINVAL;
	state_key_of(idx, sizeof(idx), WORKER_KEY, w->worker_id, LEGS_SUFFIX);
	snprintf(ittl, sizeof(ittl), "%u", STATE_WORKER_INDEX_TTL_S);
	snprintf(score, sizeof(score), "%" PRIu64, w->last_seen_ms);
	snprintf(cutoff, sizeof(cutoff), "(%" PRIu64,
		 w->last_seen_ms > keep_ms ? w->last_seen_ms - keep_ms : 0);
	return write_whole(
	    r, &worker_type, &copy, ttl_s ? ttl_s : STATE_WORKER_TTL_S,
	    (const struct redis_cmd[]){
		{4, (const char *[]){"ZADD", WORKERS_KEY, score, w->worker_id}, NULL},
		{4, (const char *[]){"ZREMRANGEBYSCORE", WORKERS_KEY, "-inf", cutoff}, NULL},
		{3, (const char *[]){"EXPIRE", WORKERS_KEY, ittl}, NULL},
		{3, (const char *[]){"EXPIRE", idx, ittl}, NULL},
	    },
	    4, cb, arg);
}

static void workers_finish(struct state_op *op)
{
	struct worker_record *out = NULL;
	size_t n = 0;

	if (!op->err && op->n_items > 0) {
		out = calloc(op->n_items, sizeof(*out));
		if (!out) {
			op->err = -ENOMEM;
			snprintf(op->errmsg, sizeof(op->errmsg), "out of memory");
		}
	}
	if (!op->err)
		for (size_t i = 0; i < op->n_items; i++)
			if (op->items[i].ok)
				out[n++] = op->items[i].rec;
	op->workers(op->err, op->err ? op->errmsg : NULL, op->err ? NULL : out, n, op->arg);
	free(out);
	free(op->items);
	free(op);
}

static void worker_item_reply(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct worker_item *it = arg;
	struct state_op *op = it->op;
	char msg[ERRMSG_MAX];

	(void)r;
	if (err == -EREMOTEIO) {
		log_warn(it->rec.worker_id, "worker record unreadable: %s",
			 state_client_error(err, reply, msg, sizeof(msg)));
	} else if (err) {
		if (!op->err) { /* the list would be incomplete: fail it */
			op->err = err;
			state_client_error(err, reply, op->errmsg, sizeof(op->errmsg));
		}
	} else {
		char id[STATE_ID_MAX + 1];

		memcpy(id, it->rec.worker_id, sizeof(id));
		err = parse_hash(worker_fields, N_FIELDS(worker_fields), reply, &it->rec, "worker",
				 id, msg, sizeof(msg));
		memcpy(it->rec.worker_id, id, sizeof(id));
		if (err == 0)
			it->ok = true;
		else if (err != -ENOENT) /* ENOENT: expired, i.e. dead */
			log_warn(id, "worker record skipped: %s", msg);
	}
	if (--op->outstanding == 0)
		workers_finish(op);
}

static void workers_range_reply(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct state_op *op = arg;
	char key[KEY_MAX];

	if (!err && redis_reply_array(reply, STATE_MAX_WORKERS) < 0) {
		err = -EBADMSG;
		snprintf(op->errmsg, sizeof(op->errmsg), "%s: not an array of at most %d ids",
			 WORKERS_KEY, STATE_MAX_WORKERS);
	} else if (err) {
		state_client_error(err, reply, op->errmsg, sizeof(op->errmsg));
	}
	if (err) {
		op->workers(err, op->errmsg, NULL, 0, op->arg);
		free(op);
		return;
	}
	op->items = calloc(reply->elements ? reply->elements : 1, sizeof(*op->items));
	if (!op->items) {
		op->workers(-ENOMEM, "out of memory", NULL, 0, op->arg);
		free(op);
		return;
	}
	op->outstanding = 1; /* held while sending, so no reply can finish the op early */
	for (size_t i = 0; i < reply->elements; i++) {
		struct worker_item *it = &op->items[op->n_items];
		const char *s;
		size_t len;
		int ret;

		if (redis_reply_str(reply->element[i], STATE_ID_MAX, &s, &len) < 0 ||
		    !state_id_valid_n(s, len)) {
			log_warn(STATE_SID, "%s holds an invalid worker id: ignored", WORKERS_KEY);
			continue;
		}
		it->op = op;
		memcpy(it->rec.worker_id, s, len);
		it->rec.worker_id[len] = '\0';
		state_key_of(key, sizeof(key), WORKER_KEY, it->rec.worker_id, "");
		ret = redis_command_argv(r, worker_item_reply, it, 2,
					 (const char *[]){"HGETALL", key}, NULL);
		if (ret < 0) {
			if (!op->err) {
				op->err = ret;
				state_client_error(ret, NULL, op->errmsg, sizeof(op->errmsg));
			}
			break;
		}
		op->n_items++;
		op->outstanding++;
	}
	if (--op->outstanding == 0)
		workers_finish(op);
}

static int zrange_ids(struct redis *r, struct state_op *op, redis_reply_cb cb, const char *min,
		      const char *max)
{
	char limit[16];
	int ret;

	snprintf(limit, sizeof(limit), "%d", STATE_MAX_WORKERS);
	ret = redis_command_argv(
	    r, cb, op, 7,
	    (const char *[]){"ZRANGEBYSCORE", WORKERS_KEY, min, max, "LIMIT", "0", limit}, NULL);
	if (ret < 0)
		free(op);
	return ret;
}

int state_workers_list(struct redis *r, uint64_t now_ms, uint64_t window_ms, state_workers_cb cb,
		       void *arg)
{
	char min[24];
	struct state_op *op;

	if (!cb)
		return -EINVAL;
	if (!now_ms)
		now_ms = state_now_ms();
	if (!window_ms)
		window_ms = STATE_WORKER_LIVENESS_MS;
	snprintf(min, sizeof(min), "%" PRIu64, now_ms > window_ms ? now_ms - window_ms : 0);
	op = state_op_new(arg);
	if (!op)
		return -ENOMEM;
	op->workers = cb;
	return zrange_ids(r, op, workers_range_reply, min, "+inf");
}

void state_ids_reply(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct state_op *op = arg;
	bool (*id_ok)(const char *s, size_t len) = op->type ? op->type->key_ok : state_id_valid_n;
	size_t id_max = op->type ? op->type->key_size - 1 : STATE_ID_MAX;
	size_t max = op->type ? op->type->index_max : op->ids_max ? op->ids_max : STATE_MAX_WORKERS;
	const char **ids = NULL;
	size_t n = 0;

	(void)r;
	if (err) {
		state_client_error(err, reply, op->errmsg, sizeof(op->errmsg));
	} else if (redis_reply_array(reply, max) < 0) {
		err = -EBADMSG;
		snprintf(op->errmsg, sizeof(op->errmsg), "not an array of at most %zu ids", max);
	} else if (reply->elements && !(ids = calloc(reply->elements, sizeof(*ids)))) {
		err = -ENOMEM;
		snprintf(op->errmsg, sizeof(op->errmsg), "out of memory");
	} else {
		for (size_t i = 0; i < reply->elements; i++) {
			const char *s;
			size_t len;

			/* hiredis NUL-terminates strings; an embedded NUL fails id_ok. */
			if (redis_reply_str(reply->element[i], id_max, &s, &len) < 0 ||
			    !id_ok(s, len)) {
				log_warn(op->id[0] ? op->id : STATE_SID,
					 "invalid id in an index: ignored");
				continue;
			}
			ids[n++] = s;
		}
	}
	op->ids(err, err ? op->errmsg : NULL, err ? NULL : (const char *const *)ids, n, op->arg);
	free(ids);
	free(op);
}

int state_workers_stale(struct redis *r, uint64_t now_ms, uint64_t window_ms, state_ids_cb cb,
			void *arg)
{
	char max[24];
	struct state_op *op;

	if (!cb)
		return -EINVAL;
	if (!now_ms)
		now_ms = state_now_ms();
	if (!window_ms)
		window_ms = STATE_WORKER_LIVENESS_MS;
	snprintf(max, sizeof(max), "(%" PRIu64, now_ms > window_ms ? now_ms - window_ms : 0);
	op = state_op_new(arg);
	if (!op)
		return -ENOMEM;
	op->ids = cb;
	return zrange_ids(r, op, state_ids_reply, "-inf", max);
}

/* Replies that are yes or no (locks, scripts) */

/* A reply that is yes or no: an integer 0/1 (scripts), "OK" (SET NX) or nil (SET NX refused). */
static void flag_reply(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct state_op *op = arg;
	long long v = 0;
	bool yes = false;

	(void)r;
	if (err) {
		state_client_error(err, reply, op->errmsg, sizeof(op->errmsg));
	} else if (reply->type == REDIS_REPLY_NIL) {
		yes = false;
	} else if (redis_reply_is(reply, "OK")) {
		yes = true;
	} else if (redis_reply_int(reply, 0, 1, &v) == 0) {
		yes = v == 1;
	} else {
		err = -EBADMSG;
		snprintf(op->errmsg, sizeof(op->errmsg), "unexpected reply (type %d)", reply->type);
	}
	if (err && err != -ECANCELED)
		log_warn(op->id[0] ? op->id : STATE_SID, "Redis: %s", op->errmsg);
	if (op->flag)
		op->flag(err, err ? op->errmsg : NULL, yes, op->arg);
	free(op);
}

int state_send_flag(struct redis *r, struct state_op *op, int argc, const char **argv)
{
	int ret = redis_command_argv(r, flag_reply, op, argc, argv, NULL);

	if (ret < 0)
		free(op);
	return ret;
}

struct state_op *state_flag_op(state_flag_cb cb, void *arg, const char *id)
{
	struct state_op *op = state_op_new(arg);

	if (op) {
		op->flag = cb;
		snprintf(op->id, sizeof(op->id), "%s", id);
	}
	return op;
}

/* Cancellation: our callbacks carry a state_op (or a worker_item) holding the caller's arg. */

static bool match_op(redis_reply_cb cb, void *arg, const void *key)
{
	if (cb == worker_item_reply)
		return ((struct worker_item *)arg)->op->arg == key;
	if (cb == exec_reply || cb == record_read_reply || cb == workers_range_reply ||
	    cb == state_ids_reply || cb == flag_reply || cb == state_signaler_written_reply)
		return ((struct state_op *)arg)->arg == key;
	return false;
}

void state_cancel(struct redis *r, const void *arg)
{
	redis_cancel_match(r, match_op, arg);
}
