/*
 * state_signaler.c - the records of the signalers in Redis (state.h): calls and registrations,
 * each listed in its owner's index (rs:v1:signaler:<id>:calls, :regs), the signalers' own
 * heartbeats, the cleanup of a dead signaler's records, short locks, and the takeover check of
 * another signaler's leg. Written and read through the record machinery of state.c (state_int.h).
 *
 * Signalers heartbeat like workers (rs:v1:signaler:<id> + rs:v1:signalers), but a dead one stays
 * in the ZSET until its calls and registrations are cleaned up (state_signaler_forget), and the
 * cleanup of each dead signaler is serialised by a short lock (rs:v1:lock:orphans:<id>).
 */
#include "state_int.h"

#include "log.h"
#include "redis.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DELETE_IF_OWNER_LUA (state.c) for an orphan: records of the live run ARGV[4] (when not "")
 * are kept (returns 0). */
#define DELETE_ORPHAN_LUA                                                                          \
	"if ARGV[4] ~= '' and redis.call('HGET', KEYS[1], 'instance') == ARGV[4] then "            \
	"return 0 end "                                                                            \
	"if redis.call('HGET', KEYS[1], ARGV[3]) == ARGV[1] then "                                 \
	"redis.call('DEL', KEYS[1]) end "                                                          \
	"redis.call('SREM', KEYS[2], ARGV[2]) return 1"

/* Drops signaler ARGV[1] (ZSET KEYS[3], hash KEYS[4]) once its indexes KEYS[1], KEYS[2] are
 * empty, if it has not been seen since ARGV[2] ms. */
#define SIGNALER_FORGET_LUA                                                                        \
	"if redis.call('SCARD', KEYS[1]) == 0 and redis.call('SCARD', KEYS[2]) == 0 then "         \
	"local s = redis.call('ZSCORE', KEYS[3], ARGV[1]) "                                        \
	"if s and tonumber(s) < tonumber(ARGV[2]) then "                                           \
	"redis.call('ZREM', KEYS[3], ARGV[1]) redis.call('DEL', KEYS[4]) return 1 end end "        \
	"return 0"

/* 1 when signaler hash KEYS[1] is gone, or its seen is ARGV[3] ms or more before ARGV[2] (the
 * signaler is dead), or when leg ARGV[1] is in its handover set KEYS[2]; else 0. */
#define TAKEOVER_LUA                                                                               \
	"local s = tonumber(redis.call('HGET', KEYS[1], 'seen')) "                                 \
	"if not s or s + tonumber(ARGV[3]) <= tonumber(ARGV[2]) then return 1 end "                \
	"return redis.call('SISMEMBER', KEYS[2], ARGV[1])"

/* Releases the lock KEYS[1] if ARGV[1] holds it. */
#define LOCK_RELEASE_LUA                                                                           \
	"if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end "   \
	"return 0"

/* Record fields */

static const struct field call_fields[] = {
    FSTR(call_record, "sip_call_id", F_TEXT, sip_call_id, true),
    FSTR(call_record, "signaler", F_ID, signaler, true),
    FWORD(call_record, "app", app, "sip|call"),
    FWORD(call_record, "direction", direction, "out|in"),
    FSTR(call_record, "from", F_TEXT, from_uri, true),
    FSTR(call_record, "to", F_TEXT, to_uri, true),
    FSTR(call_record, "rtmp_client", F_LINE, rtmp_client, false),
    FSTR(call_record, "leg", F_ID, leg_id, false),
    FSTR(call_record, "worker", F_ID, worker, false),
    FWORD(call_record, "state", state, "setup|ringing|up|held|ending"),
    FSTR(call_record, "codec", F_TEXT, codec, false),
    FBOOL(call_record, "transcoding", transcoding),
    FBOOL(call_record, "srtp", srtp),
    FUINT(call_record, "created", created_ms, UINT64_MAX),
    FUINT(call_record, "answered", answered_ms, UINT64_MAX),
    FUINT(call_record, "updated", updated_ms, UINT64_MAX),
    FOPT(call_record, "instance", F_ID, instance),
    FOPT(call_record, "ltag", F_TEXT, local_tag),
    FOPT(call_record, "rtag", F_TEXT, remote_tag),
    FOPT(call_record, "luri", F_TEXT, local_uri),
    FOPT(call_record, "ruri", F_TEXT, remote_uri),
    FOPT(call_record, "target", F_TEXT, remote_target),
    FOPT(call_record, "route", F_TEXT, route),
    FOPTU(call_record, "cseq", local_cseq, INT32_MAX),
    FOPTW(call_record, "transport", transport, "udp|tcp|tls|sctp"),
    FOPT(call_record, "dest", F_TEXT, dest),
};

static const struct field reg_fields[] = {
    FSTR(reg_record, "signaler", F_ID, signaler, true),
    FSTR(reg_record, "contact", F_TEXT, contact, false),
    FSTR(reg_record, "registrar", F_TEXT, registrar, false),
    FSTR(reg_record, "rtmp_client", F_LINE, rtmp_client, false),
    FSTR(reg_record, "display", F_LINE, display, false),
    FUINT(reg_record, "expires", expires_s, UINT32_MAX),
    FUINT(reg_record, "registered", registered_ms, UINT64_MAX),
    FUINT(reg_record, "updated", updated_ms, UINT64_MAX),
    FOPT(reg_record, "instance", F_ID, instance),
};

static const struct field signaler_fields[] = {
    FSTR(signaler_record, "instance", F_ID, instance_id, true),
    {.name = "pid", .kind = F_UINT, MEMBER(signaler_record, pid), .min = 1, .max = INT32_MAX},
    FSTR(signaler_record, "host", F_TEXT, host, true),
    FSTR(signaler_record, "sip", F_TEXT, sip, false),
    FSTR(signaler_record, "rtmp", F_TEXT, rtmp, false),
    FUINT(signaler_record, "started", started_ms, UINT64_MAX),
    FUINT(signaler_record, "seen", last_seen_ms, UINT64_MAX),
};

_Static_assert(N_FIELDS(call_fields) <= FIELDS_MAX, "call_fields too long");
_Static_assert(N_FIELDS(reg_fields) <= FIELDS_MAX, "reg_fields too long");
_Static_assert(N_FIELDS(signaler_fields) <= FIELDS_MAX, "signaler_fields too long");

/* An AOR becomes part of a key: no space, no '%' or '/' (no escapes, no paths), one '@'. */
static bool aor_valid_n(const char *s, size_t len)
{
	size_t at = 0, n_at = 0;

	if (len < 1 || len > STATE_AOR_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '%' || s[i] == '/')
			return false;
		if (s[i] == '@')
			at = i, n_at++;
	}
	return n_at == 1 && at > 0 && at < len - 1;
}

bool state_aor_valid(const char *aor)
{
	return aor && aor_valid_n(aor, strnlen(aor, STATE_AOR_MAX + 1));
}

/* Record types */

/* Each type calls the caller's callback with its own type (see deliver_leg, state.c). */
static void deliver_call(const struct state_op *op, int err, const char *msg, const void *rec)
{
	((state_call_cb)op->rec_cb)(err, msg, rec, op->arg);
}

static void deliver_reg(const struct state_op *op, int err, const char *msg, const void *rec)
{
	((state_reg_cb)op->rec_cb)(err, msg, rec, op->arg);
}

static void deliver_signaler(const struct state_op *op, int err, const char *msg, const void *rec)
{
	((state_signaler_cb)op->rec_cb)(err, msg, rec, op->arg);
}

static const struct rectype call_type =
    RECTYPE(call_record, "call", call_fields, CALL_KEY, call_id, state_id_valid_n, signaler,
	    SIGNALER_KEY, CALLS_SUFFIX, STATE_MAX_CALLS_PER_SIGNALER, deliver_call);
static const struct rectype reg_type =
    RECTYPE(reg_record, "registration", reg_fields, REG_KEY, aor, aor_valid_n, signaler,
	    SIGNALER_KEY, REGS_SUFFIX, STATE_MAX_REGS_PER_SIGNALER, deliver_reg);

/* Written whole like the others, but listed in rs:v1:signalers, not in an owner's index (like
 * workers, state.c); readable one by one (state_signaler_read). */
static const struct rectype signaler_type = {
    .what = "signaler",
    .fields = signaler_fields,
    .n_fields = N_FIELDS(signaler_fields),
    .size = sizeof(struct signaler_record),
    .prefix = SIGNALER_KEY,
    .key_off = offsetof(struct signaler_record, signaler_id),
    .key_size = sizeof(((struct signaler_record *)0)->signaler_id),
    .key_ok = state_id_valid_n,
    .updated_off = offsetof(struct signaler_record, last_seen_ms),
    .deliver = deliver_signaler,
};

/* RECTYPE names the owner's hash field after its member (#own); state_id_valid() reads the
 * owner as a char[STATE_ID_MAX + 1]. */
_Static_assert(sizeof(((struct call_record *)0)->signaler) == STATE_ID_MAX + 1, "call owner");
_Static_assert(sizeof(((struct reg_record *)0)->signaler) == STATE_ID_MAX + 1, "reg owner");

/* Calls */

int state_call_write(struct redis *r, const struct call_record *rec, unsigned ttl_s,
		     state_done_cb cb, void *arg)
{
	return state_record_write(r, &call_type, rec, ttl_s ? ttl_s : STATE_CALL_TTL_DEFAULT_S, 0,
				  cb, arg);
}

int state_call_read(struct redis *r, const char *call_id, state_call_cb cb, void *arg)
{
	return state_record_read(r, &call_type, call_id, (void (*)(void))cb, arg);
}

int state_call_delete(struct redis *r, const char *call_id, const char *signaler_id,
		      state_done_cb cb, void *arg)
{
	return state_record_delete(r, &call_type, call_id, signaler_id, cb, arg);
}

int state_signaler_calls(struct redis *r, const char *signaler_id, state_ids_cb cb, void *arg)
{
	return state_record_index(r, &call_type, signaler_id, cb, arg);
}

/* Registrations */

int state_reg_write(struct redis *r, const struct reg_record *rec, unsigned ttl_s, state_done_cb cb,
		    void *arg)
{
	uint64_t ttl = ttl_s;

	if (!ttl && rec) {
		ttl = (uint64_t)rec->expires_s + STATE_REG_TTL_MARGIN_S;
		if (ttl > STATE_TTL_MAX_S)
			ttl = STATE_TTL_MAX_S;
	}
	return state_record_write(r, &reg_type, rec, (unsigned)ttl, 0, cb, arg);
}

int state_reg_read(struct redis *r, const char *aor, state_reg_cb cb, void *arg)
{
	return state_record_read(r, &reg_type, aor, (void (*)(void))cb, arg);
}

int state_reg_delete(struct redis *r, const char *aor, const char *signaler_id, state_done_cb cb,
		     void *arg)
{
	return state_record_delete(r, &reg_type, aor, signaler_id, cb, arg);
}

int state_signaler_regs(struct redis *r, const char *signaler_id, state_ids_cb cb, void *arg)
{
	return state_record_index(r, &reg_type, signaler_id, cb, arg);
}

/* Signalers, orphan cleanup and locks */

/* EXEC of a heartbeat: [HMGET instance seen, DEL, HSET, EXPIRE, ZADD, EXPIRE]. */
void state_signaler_written_reply(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct state_op *op = arg;
	char prev[STATE_ID_MAX + 1] = "", num[24];
	uint64_t seen = 0;
	const redisReply *old;

	(void)r;
	if (err) {
		state_client_error(err, reply, op->errmsg, sizeof(op->errmsg));
	} else if (redis_reply_array(reply, REDIS_MULTI_MAX) < 0 || reply->elements != 6) {
		err = -EREMOTEIO;
		snprintf(op->errmsg, sizeof(op->errmsg), "transaction not executed");
	} else {
		for (size_t i = 0; i < reply->elements; i++) {
			if (reply->element[i]->type == REDIS_REPLY_ERROR) {
				err = -EREMOTEIO;
				snprintf(op->errmsg, sizeof(op->errmsg),
					 "command %zu of the transaction failed: %.180s", i + 1,
					 reply->element[i]->str ? reply->element[i]->str : "");
				break;
			}
		}
	}
	if (!err) {
		const char *s;
		size_t len;

		old = reply->element[0];
		if (redis_reply_array(old, 2) < 0 || old->elements != 2) {
			log_warn(op->id, "signaler hash: unexpected HMGET reply, ignored");
		} else {
			if (old->element[0]->type != REDIS_REPLY_NIL) {
				if (redis_reply_str(old->element[0], STATE_ID_MAX, &s, &len) == 0 &&
				    state_id_valid_n(s, len))
					memcpy(prev, s, len), prev[len] = '\0';
				else
					log_warn(op->id,
						 "signaler hash: invalid instance, ignored");
			}
			if (old->element[1]->type != REDIS_REPLY_NIL &&
			    (redis_reply_str(old->element[1], sizeof(num) - 1, &s, &len) < 0 ||
			     len == 0 ||
			     (memcpy(num, s, len), num[len] = '\0',
			      strspn(num, "0123456789") != len))) {
				log_warn(op->id, "signaler hash: invalid seen, ignored");
			} else if (old->element[1]->type != REDIS_REPLY_NIL) {
				seen = strtoull(num, NULL, 10);
			}
		}
	}
	if (err && err != -ECANCELED)
		log_warn(op->id, "Redis write failed: %s", op->errmsg);
	if (op->written)
		op->written(err, err ? op->errmsg : NULL, prev, seen, op->arg);
	free(op);
}

int state_signaler_write(struct redis *r, const struct signaler_record *rec, unsigned ttl_s,
			 state_signaler_written_cb cb, void *arg)
{
	union any_record copy;
	const struct signaler_record *g = &copy.signaler;
	char key[KEY_MAX], ttl[16], zttl[16], score[24];
	char nums[FIELDS_MAX][24];
	const char *hset[4 + 2 * FIELDS_MAX];
	size_t hlens[4 + 2 * FIELDS_MAX];
	struct state_op *op;
	int argc, ret;

	if (state_record_copy(&signaler_type, rec, &copy) < 0)
		return -EINVAL;
	state_key_of(key, sizeof(key), SIGNALER_KEY, g->signaler_id, "");
	argc = state_build_hset(signaler_fields, N_FIELDS(signaler_fields), &copy, sizeof(*g), key,
				"signaler", g->signaler_id, hset, hlens, nums);
	if (argc < 0)
		return argc;
	snprintf(ttl, sizeof(ttl), "%u", ttl_s ? ttl_s : STATE_SIGNALER_TTL_S);
	snprintf(zttl, sizeof(zttl), "%u", STATE_TTL_MAX_S);
	snprintf(score, sizeof(score), "%" PRIu64, g->last_seen_ms);
	op = state_op_new(arg);
	if (!op)
		return -ENOMEM;
	op->written = cb;
	snprintf(op->id, sizeof(op->id), "%s", g->signaler_id);
	ret = redis_multi(
	    r, state_signaler_written_reply, op,
	    (const struct redis_cmd[]){
		{4, (const char *[]){"HMGET", key, "instance", "seen"}, NULL},
		{2, (const char *[]){"DEL", key}, NULL},
		{argc, hset, hlens},
		{3, (const char *[]){"EXPIRE", key, ttl}, NULL},
		{4, (const char *[]){"ZADD", SIGNALERS_KEY, score, g->signaler_id}, NULL},
		{3, (const char *[]){"EXPIRE", SIGNALERS_KEY, zttl}, NULL},
	    },
	    6);
	if (ret < 0)
		free(op);
	return ret;
}

int state_signaler_read(struct redis *r, const char *signaler_id, state_signaler_cb cb, void *arg)
{
	return state_record_read(r, &signaler_type, signaler_id, (void (*)(void))cb, arg);
}

int state_signalers_stale(struct redis *r, uint64_t now_ms, uint64_t window_ms, state_ids_cb cb,
			  void *arg)
{
	char max[24], limit[16];
	struct state_op *op;
	int ret;

	if (!cb)
		return -EINVAL;
	if (!now_ms)
		now_ms = state_now_ms();
	if (!window_ms)
		window_ms = STATE_SIGNALER_LIVENESS_MS;
	snprintf(max, sizeof(max), "(%" PRIu64, now_ms > window_ms ? now_ms - window_ms : 0);
	snprintf(limit, sizeof(limit), "%d", STATE_MAX_SIGNALERS);
	op = state_op_new(arg);
	if (!op)
		return -ENOMEM;
	op->ids = cb;
	op->ids_max = STATE_MAX_SIGNALERS;
	ret = redis_command_argv(
	    r, state_ids_reply, op, 7,
	    (const char *[]){"ZRANGEBYSCORE", SIGNALERS_KEY, "-inf", max, "LIMIT", "0", limit},
	    NULL);
	if (ret < 0)
		free(op);
	return ret;
}

int state_signaler_forget(struct redis *r, const char *signaler_id, uint64_t cutoff_ms,
			  state_flag_cb cb, void *arg)
{
	char calls[KEY_MAX], regs[KEY_MAX], hash[KEY_MAX], cutoff[24];
	struct state_op *op;

	if (!state_id_valid(signaler_id))
		return -EINVAL;
	state_key_of(calls, sizeof(calls), SIGNALER_KEY, signaler_id, CALLS_SUFFIX);
	state_key_of(regs, sizeof(regs), SIGNALER_KEY, signaler_id, REGS_SUFFIX);
	state_key_of(hash, sizeof(hash), SIGNALER_KEY, signaler_id, "");
	snprintf(cutoff, sizeof(cutoff), "%" PRIu64, cutoff_ms);
	op = state_flag_op(cb, arg, signaler_id);
	if (!op)
		return -ENOMEM;
	return state_send_flag(r, op, 9,
			       (const char *[]){"EVAL", SIGNALER_FORGET_LUA, "4", calls, regs,
						SIGNALERS_KEY, hash, signaler_id, cutoff});
}

int state_leg_takeover(struct redis *r, const char *owner_id, const char *leg_id, uint64_t now_ms,
		       state_flag_cb cb, void *arg)
{
	char hash[KEY_MAX], handover[KEY_MAX], now[24], window[24];
	struct state_op *op;

	if (!state_id_valid(owner_id) || !state_id_valid(leg_id) || !cb)
		return -EINVAL;
	state_key_of(hash, sizeof(hash), SIGNALER_KEY, owner_id, "");
	state_key_of(handover, sizeof(handover), SIGNALER_KEY, owner_id, HANDOVER_SUFFIX);
	snprintf(now, sizeof(now), "%" PRIu64, now_ms ? now_ms : state_now_ms());
	snprintf(window, sizeof(window), "%d", STATE_SIGNALER_LIVENESS_MS);
	op = state_flag_op(cb, arg, leg_id);
	if (!op)
		return -ENOMEM;
	return state_send_flag(
	    r, op, 8,
	    (const char *[]){"EVAL", TAKEOVER_LUA, "2", hash, handover, leg_id, now, window});
}

static int record_delete_orphan(struct redis *r, const struct rectype *t, const char *id,
				const char *owner, const char *keep_instance, state_flag_cb cb,
				void *arg)
{
	char key[KEY_MAX], idx[KEY_MAX];
	struct state_op *op;

	if (!state_key_valid(t, id) || !state_id_valid(owner) ||
	    (keep_instance && keep_instance[0] && !state_id_valid(keep_instance)))
		return -EINVAL;
	state_key_of(key, sizeof(key), t->prefix, id, "");
	state_key_of(idx, sizeof(idx), t->index_prefix, owner, t->index_suffix);
	op = state_flag_op(cb, arg, id);
	if (!op)
		return -ENOMEM;
	return state_send_flag(r, op, 9,
			       (const char *[]){"EVAL", DELETE_ORPHAN_LUA, "2", key, idx, owner, id,
						t->owner, keep_instance ? keep_instance : ""});
}

int state_call_delete_orphan(struct redis *r, const char *call_id, const char *signaler_id,
			     const char *keep_instance, state_flag_cb cb, void *arg)
{
	return record_delete_orphan(r, &call_type, call_id, signaler_id, keep_instance, cb, arg);
}

int state_reg_delete_orphan(struct redis *r, const char *aor, const char *signaler_id,
			    const char *keep_instance, state_flag_cb cb, void *arg)
{
	return record_delete_orphan(r, &reg_type, aor, signaler_id, keep_instance, cb, arg);
}

static bool lock_name_valid(const char *name)
{
	size_t n = name ? strnlen(name, STATE_LOCK_NAME_MAX + 1) : 0;

	if (n < 1 || n > STATE_LOCK_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!state_id_char(name[i]) && name[i] != ':')
			return false;
	return true;
}

int state_lock_take(struct redis *r, const char *name, const char *holder, unsigned ttl_ms,
		    state_flag_cb cb, void *arg)
{
	char key[KEY_MAX], px[16];
	struct state_op *op;

	if (!lock_name_valid(name) || !state_id_valid(holder) || ttl_ms == 0)
		return -EINVAL;
	state_key_of(key, sizeof(key), LOCK_KEY, name, "");
	snprintf(px, sizeof(px), "%u", ttl_ms);
	op = state_flag_op(cb, arg, name);
	if (!op)
		return -ENOMEM;
	return state_send_flag(r, op, 6, (const char *[]){"SET", key, holder, "NX", "PX", px});
}

int state_lock_release(struct redis *r, const char *name, const char *holder, state_flag_cb cb,
		       void *arg)
{
	char key[KEY_MAX];
	struct state_op *op;

	if (!lock_name_valid(name) || !state_id_valid(holder))
		return -EINVAL;
	state_key_of(key, sizeof(key), LOCK_KEY, name, "");
	op = state_flag_op(cb, arg, name);
	if (!op)
		return -ENOMEM;
	return state_send_flag(r, op, 5,
			       (const char *[]){"EVAL", LOCK_RELEASE_LUA, "1", key, holder});
}
