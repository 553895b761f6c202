/*
 * ctlq.c - the operator's command queue of one daemon: parse and format the command and result
 * texts (shared with relayctl), and poll the daemon's queue on the async client.
 *
 * See ctlq.h for the keys, the command grammar and the poll cycle. Verbs are a table; a
 * command is checked word by word (count, characters, numeric ranges) before a handler sees it,
 * and whatever is wrong with it is answered with an "invalid" result and logged, nothing else.
 */
#include "ctlq.h"

#include "evloop.h"
#include "log.h"
#include "redis.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTLQ_SID   "ctlq"
#define WORDS_MAX  4  /* one more than the longest command, to see extra words */
#define NUMBER_MAX 20 /* digits of a uint64_t */
#define SHOWN_MAX  80 /* bytes of a bad command quoted in the log */

enum kind_mask { K_WORKER = 1u << 0, K_SIGNALER = 1u << 1 };

enum arg_type { ARG_NONE, ARG_DEADLINE, ARG_CALL_ID };

struct verb {
	const char *name;
	unsigned kinds;
	enum arg_type arg;
	size_t handler_off; /* offset of its handler in struct ctlq_handlers */
};

static const struct verb verbs[] = {
    [CTLQ_DRAIN] = {.name = "drain",
		    .kinds = K_WORKER | K_SIGNALER,
		    .arg = ARG_DEADLINE,
		    .handler_off = offsetof(struct ctlq_handlers, drain)},
    [CTLQ_UNDRAIN] = {.name = "undrain",
		      .kinds = K_WORKER,
		      .arg = ARG_NONE,
		      .handler_off = offsetof(struct ctlq_handlers, undrain)},
    [CTLQ_HANGUP] = {.name = "hangup",
		     .kinds = K_SIGNALER,
		     .arg = ARG_CALL_ID,
		     .handler_off = offsetof(struct ctlq_handlers, hangup)},
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static const char *const status_names[] = {
    [CTLQ_OK] = "ok",
    [CTLQ_UNKNOWN] = "unknown",
    [CTLQ_INVALID] = "invalid",
    [CTLQ_FAILED] = "failed",
};

#define N_STATUS (sizeof(status_names) / sizeof(status_names[0]))

struct ctlq {
	struct evloop *loop;
	struct redis *r;
	struct ev_timer *timer;
	struct ctlq_handlers h;
	void *arg;
	char kind[16];
	char id[STATE_ID_MAX + 1];
	char key[CTLQ_KEY_MAX];
	char sid[CTLQ_KEY_MAX]; /* "cmd:<kind>:<id>", the log's session id when no request id */
	bool popping;		/* an LPOP is in flight */
	unsigned batch;		/* commands taken since the timer fired */
	unsigned in_handler;	/* a handler runs: ctlq_destroy() defers the free */
	bool doomed;		/* ctlq_destroy() was called from a handler */
	bool failing;		/* the last LPOP was refused by Redis (logged once) */
	uint64_t taken;
};

/* Names and keys */

const char *ctlq_verb_name(enum ctlq_verb verb)
{
	return (size_t)verb < N_VERBS ? verbs[verb].name : "?";
}

const char *ctlq_status_name(enum ctlq_status status)
{
	return (size_t)status < N_STATUS ? status_names[status] : "?";
}

static unsigned kind_bit(const char *kind)
{
	if (!kind)
		return 0;
	if (strcmp(kind, CTLQ_KIND_WORKER) == 0)
		return K_WORKER;
	if (strcmp(kind, CTLQ_KIND_SIGNALER) == 0)
		return K_SIGNALER;
	return 0;
}

bool ctlq_verb_allowed(const char *kind, enum ctlq_verb verb)
{
	return (size_t)verb < N_VERBS && (verbs[verb].kinds & kind_bit(kind)) != 0;
}

int ctlq_key(char *buf, size_t size, const char *kind, const char *id)
{
	int n;

	if (!kind_bit(kind) || !state_id_valid(id))
		return -EINVAL;
	n = snprintf(buf, size, "%s%s:%s", CTLQ_KEY_PREFIX, kind, id);
	return n > 0 && (size_t)n < size ? 0 : -EINVAL;
}

int ctlq_result_key(char *buf, size_t size, const char *request_id)
{
	int n;

	if (!state_id_valid(request_id))
		return -EINVAL;
	n = snprintf(buf, size, "%s%s", CTLQ_RESULT_KEY_PREFIX, request_id);
	return n > 0 && (size_t)n < size ? 0 : -EINVAL;
}

/* Parsing */

struct word {
	const char *s;
	size_t len;
};

static bool word_is(const struct word *w, const char *text)
{
	return strlen(text) == w->len && memcmp(w->s, text, w->len) == 0;
}

static bool word_id(const struct word *w, char *out, size_t size)
{
	if (w->len == 0 || w->len > STATE_ID_MAX || w->len >= size)
		return false;
	memcpy(out, w->s, w->len);
	out[w->len] = '\0';
	return state_id_valid(out);
}

/* Decimal digits only, no sign, no leading zero (but "0"), at most UINT64_MAX. */
static bool word_u64(const struct word *w, uint64_t *out)
{
	uint64_t v = 0;

	if (w->len == 0 || w->len > NUMBER_MAX || (w->len > 1 && w->s[0] == '0'))
		return false;
	for (size_t i = 0; i < w->len; i++) {
		unsigned d = (unsigned char)w->s[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* Shows untrusted text in a log line: at most SHOWN_MAX bytes, non-printables as \xNN. */
static const char *shown(const char *s, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && i < SHOWN_MAX && o + 5 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
	}
	if (len > SHOWN_MAX && o + 4 < size) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

/* Splits @text into words separated by single spaces; printable ASCII only. The count, or
 * -EINVAL with @err set. At most WORDS_MAX are stored; more are counted. */
static int split_words(const char *text, size_t len, struct word *w, char *err, size_t errsize)
{
	int n = 0;
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] != ' ') {
			unsigned char c = (unsigned char)text[i];

			if (c < 0x21 || c > 0x7e) {
				snprintf(err, errsize, "byte 0x%02x at offset %zu", c, i);
				return -EINVAL;
			}
			continue;
		}
		if (i == start) {
			snprintf(err, errsize, "empty word at offset %zu", i);
			return -EINVAL;
		}
		if (n < WORDS_MAX)
			w[n] = (struct word){.s = text + start, .len = i - start};
		n++;
		start = i + 1;
	}
	return n;
}

static int parse_arg(const struct verb *v, const struct word *w, uint64_t now_ms,
		     struct ctlq_cmd *cmd, char *err, size_t errsize)
{
	uint64_t max_ms = now_ms + (uint64_t)CTLQ_DEADLINE_MAX_S * 1000u;

	switch (v->arg) {
	case ARG_NONE:
		return 0;
	case ARG_DEADLINE:
		if (!word_u64(w, &cmd->deadline_ms)) {
			snprintf(err, errsize, "%s: deadline is not a decimal number", v->name);
			return -EINVAL;
		}
		if (cmd->deadline_ms > max_ms) {
			snprintf(err, errsize, "%s: deadline %" PRIu64 " is more than %d s ahead",
				 v->name, cmd->deadline_ms, CTLQ_DEADLINE_MAX_S);
			return -EINVAL;
		}
		return 0;
	case ARG_CALL_ID:
		if (!word_id(w, cmd->call_id, sizeof(cmd->call_id))) {
			snprintf(err, errsize, "%s: call id is not [A-Za-z0-9_.@-]{1,%d}", v->name,
				 STATE_ID_MAX);
			return -EINVAL;
		}
		return 0;
	}
	snprintf(err, errsize, "%s: bad verb table", v->name);
	return -EINVAL;
}

int ctlq_parse(const char *text, size_t len, const char *kind, uint64_t now_ms,
	       struct ctlq_cmd *cmd, char *err, size_t errsize)
{
	struct word w[WORDS_MAX];
	const struct verb *v = NULL;
	size_t nargs;
	int n;

	memset(cmd, 0, sizeof(*cmd));
	if (!kind_bit(kind)) {
		snprintf(err, errsize, "unknown daemon kind");
		return -EINVAL;
	}
	/* The request id first, even from a command too long or malformed, so it can be answered.
	 */
	for (size_t i = 0; i < len && i <= STATE_ID_MAX; i++) {
		if (text[i] == ' ' || i + 1 == len) {
			struct word id = {.s = text, .len = text[i] == ' ' ? i : i + 1};

			if (!word_id(&id, cmd->request_id, sizeof(cmd->request_id)))
				cmd->request_id[0] = '\0';
			break;
		}
	}
	if (len > CTLQ_CMD_MAX) {
		snprintf(err, errsize, "command of %zu bytes, longer than %d", len, CTLQ_CMD_MAX);
		return -EINVAL;
	}
	n = split_words(text, len, w, err, errsize);
	if (n < 0)
		return n;
	if (!cmd->request_id[0]) {
		snprintf(err, errsize, "request id is not [A-Za-z0-9_.@-]{1,%d}", STATE_ID_MAX);
		return -EINVAL;
	}
	if (n < 2) {
		snprintf(err, errsize, "no verb");
		return -EINVAL;
	}
	for (size_t i = 0; i < N_VERBS; i++)
		if (word_is(&w[1], verbs[i].name))
			v = &verbs[i];
	if (!v) {
		snprintf(err, errsize, "unknown verb");
		return -EINVAL;
	}
	if (!(v->kinds & kind_bit(kind))) {
		snprintf(err, errsize, "verb %s is not taken by a %s", v->name, kind);
		return -EINVAL;
	}
	nargs = v->arg == ARG_NONE ? 0 : 1;
	if ((size_t)n != 2 + nargs) {
		snprintf(err, errsize, "%s takes %zu argument%s, got %d", v->name, nargs,
			 nargs == 1 ? "" : "s", n - 2);
		return -EINVAL;
	}
	cmd->verb = (enum ctlq_verb)(v - verbs);
	return parse_arg(v, &w[2], now_ms, cmd, err, errsize);
}

int ctlq_format(const struct ctlq_cmd *cmd, const char *kind, uint64_t now_ms, char *buf,
		size_t size)
{
	const struct verb *v;
	struct ctlq_cmd check;
	char err[128];
	int n;

	if ((size_t)cmd->verb >= N_VERBS || !state_id_valid(cmd->request_id))
		return -EINVAL;
	v = &verbs[cmd->verb];
	switch (v->arg) {
	case ARG_NONE:
		n = snprintf(buf, size, "%s %s", cmd->request_id, v->name);
		break;
	case ARG_DEADLINE:
		n = snprintf(buf, size, "%s %s %" PRIu64, cmd->request_id, v->name,
			     cmd->deadline_ms);
		break;
	case ARG_CALL_ID:
		n = snprintf(buf, size, "%s %s %s", cmd->request_id, v->name, cmd->call_id);
		break;
	default:
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= size)
		return -EINVAL;
	/* What is sent is exactly what the daemon accepts. */
	if (ctlq_parse(buf, (size_t)n, kind, now_ms, &check, err, sizeof(err)) < 0)
		return -EINVAL;
	return n;
}

int ctlq_result_format(enum ctlq_status status, const char *detail, char *buf, size_t size)
{
	size_t o, dlen = detail ? strnlen(detail, CTLQ_DETAIL_MAX) : 0;
	int n = snprintf(buf, size, "%s", ctlq_status_name(status));

	if (n < 0 || (size_t)n >= size)
		return -EINVAL;
	o = (size_t)n;
	if (dlen > 0 && o + 1 < size)
		buf[o++] = ' ';
	for (size_t i = 0; i < dlen && o + 1 < size; i++) {
		unsigned char c = (unsigned char)detail[i];

		buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	buf[o] = '\0';
	return (int)o;
}

int ctlq_result_parse(const char *text, size_t len, enum ctlq_status *status, char *detail,
		      size_t size)
{
	size_t wlen = 0, dlen;

	while (wlen < len && text[wlen] != ' ')
		wlen++;
	dlen = wlen < len ? len - wlen - 1 : 0;
	if (dlen > CTLQ_DETAIL_MAX || (wlen < len && dlen == 0) || size == 0)
		return -EINVAL;
	for (size_t i = 0; i < N_STATUS; i++) {
		struct word w = {.s = text, .len = wlen};

		if (!word_is(&w, status_names[i]))
			continue;
		for (size_t j = 0; j < dlen; j++) {
			unsigned char c = (unsigned char)text[wlen + 1 + j];

			if (c < 0x20 || c > 0x7e)
				return -EINVAL;
		}
		*status = (enum ctlq_status)i;
		dlen = dlen < size ? dlen : size - 1;
		if (dlen)
			memcpy(detail, text + wlen + 1, dlen);
		detail[dlen] = '\0';
		return 0;
	}
	return -EINVAL;
}

/* The daemon side */

static void poll_now(struct ctlq *q);

static void result_sent(struct redis *r, int err, const redisReply *reply, void *arg)
{
	(void)r;
	(void)reply;
	(void)arg;
	if (err)
		log_debug(CTLQ_SID, "ctlq: a result was not written (error %d)", err);
}

/* Pushes the result of @request_id: RPUSH + EXPIRE, one transaction. */
static void answer(struct ctlq *q, const char *request_id, enum ctlq_status status,
		   const char *detail)
{
	char key[CTLQ_KEY_MAX], text[CTLQ_RESULT_MAX], ttl[16];
	const char *push[] = {"RPUSH", key, text};
	const char *expire[] = {"EXPIRE", key, ttl};
	const struct redis_cmd cmds[] = {{.argc = 3, .argv = push}, {.argc = 3, .argv = expire}};
	int ret;

	if (ctlq_result_key(key, sizeof(key), request_id) < 0)
		return;
	if (ctlq_result_format(status, detail, text, sizeof(text)) < 0)
		return;
	snprintf(ttl, sizeof(ttl), "%d", CTLQ_RESULT_TTL_S);
	ret = redis_multi(q->r, result_sent, NULL, cmds, 2);
	if (ret < 0)
		log_warn(request_id, "ctlq %s: result '%s' not written (error %d)", q->sid, text,
			 ret);
}

static enum ctlq_status status_of(int ret)
{
	if (ret == 0)
		return CTLQ_OK;
	if (ret == -ENOENT)
		return CTLQ_UNKNOWN;
	if (ret == -EINVAL)
		return CTLQ_INVALID;
	return CTLQ_FAILED;
}

/* Runs the handler of @cmd and answers; the caller checks q->doomed afterwards. */
static void dispatch(struct ctlq *q, const struct ctlq_cmd *cmd)
{
	const struct verb *v = &verbs[cmd->verb];
	ctlq_handler fn = *(const ctlq_handler *)((const char *)&q->h + v->handler_off);
	char detail[CTLQ_DETAIL_MAX + 1] = "", args[STATE_ID_MAX + 2] = "";
	enum ctlq_status status;
	int ret;

	if (!fn) {
		log_warn(cmd->request_id, "ctlq %s: %s refused: not supported here", q->sid,
			 v->name);
		answer(q, cmd->request_id, CTLQ_INVALID, "verb not supported by this daemon");
		return;
	}
	q->in_handler++;
	ret = fn(cmd, detail, sizeof(detail), q->arg);
	q->in_handler--;
	detail[sizeof(detail) - 1] = '\0';
	status = status_of(ret);
	if (!detail[0] && status == CTLQ_UNKNOWN)
		snprintf(detail, sizeof(detail), "no such target");
	else if (!detail[0] && status == CTLQ_FAILED)
		snprintf(detail, sizeof(detail), "%s", strerror(ret < 0 ? -ret : ret));
	if (v->arg == ARG_DEADLINE)
		snprintf(args, sizeof(args), " %" PRIu64, cmd->deadline_ms);
	else if (v->arg == ARG_CALL_ID)
		snprintf(args, sizeof(args), " %s", cmd->call_id);
	log_info(cmd->request_id, "ctlq %s: %s%s -> %s%s%s", q->sid, v->name, args,
		 ctlq_status_name(status), detail[0] ? ": " : "", detail);
	answer(q, cmd->request_id, status, detail);
}

/* One element taken from the queue: parse it, run it or refuse it, answer. */
static void take(struct ctlq *q, const char *text, size_t len)
{
	struct ctlq_cmd cmd;
	char err[160], show[SHOWN_MAX * 4 + 8];

	q->taken++;
	if (ctlq_parse(text, len, q->kind, state_now_ms(), &cmd, err, sizeof(err)) < 0) {
		log_warn(cmd.request_id[0] ? cmd.request_id : q->sid,
			 "ctlq %s: bad command \"%s\": %s", q->sid,
			 shown(text, len, show, sizeof(show)), err);
		if (cmd.request_id[0])
			answer(q, cmd.request_id, CTLQ_INVALID, err);
		return;
	}
	dispatch(q, &cmd);
}

static void free_queue(struct ctlq *q)
{
	evloop_timer_del(&q->timer);
	free(q);
}

static void pop_reply(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct ctlq *q = arg;
	const char *s;
	size_t len;

	(void)r;
	q->popping = false;
	if (err == -ECANCELED)
		return; /* ctlq_destroy(): q is being freed */
	if (err) {
		/* Logged once per run of failures: a key of the wrong type must not flood the log.
		 */
		if (err == -EREMOTEIO && reply && reply->str)
			log_msg(q->failing ? LOG_LVL_DEBUG : LOG_LVL_WARN, q->sid,
				"ctlq %s: LPOP failed: %s", q->sid, reply->str);
		q->failing = err == -EREMOTEIO;
		return; /* Redis down or slow: the timer tries again */
	}
	q->failing = false;
	if (reply->type == REDIS_REPLY_NIL)
		return;
	/* Any length is taken (and refused when too long) so that the queue moves on. */
	if (redis_reply_str(reply, SIZE_MAX, &s, &len) < 0) {
		q->taken++;
		log_warn(q->sid, "ctlq %s: LPOP answered with reply type %d, skipped", q->sid,
			 reply->type);
		return;
	}
	take(q, s, len);
	if (q->doomed) {
		free_queue(q);
		return;
	}
	if (++q->batch < CTLQ_BATCH_MAX)
		poll_now(q);
}

static void poll_now(struct ctlq *q)
{
	int ret;

	if (q->popping || !redis_is_up(q->r))
		return;
	ret = redis_command(q->r, pop_reply, q, "LPOP %s", q->key);
	if (ret == 0)
		q->popping = true;
	else if (ret != -ENOTCONN && ret != -EAGAIN)
		log_warn(q->sid, "ctlq %s: LPOP not sent (error %d)", q->sid, ret);
}

static void on_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct ctlq *q = arg;

	(void)loop;
	evloop_timer_start(t, CTLQ_POLL_MS);
	q->batch = 0;
	poll_now(q);
}

struct ctlq *ctlq_new(struct evloop *loop, struct redis *r, const char *kind, const char *id,
		      const struct ctlq_handlers *h, void *arg)
{
	struct ctlq *q;

	if (!loop || !r || !h || !kind_bit(kind) || !state_id_valid(id)) {
		errno = EINVAL;
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	q->loop = loop;
	q->r = r;
	q->h = *h;
	q->arg = arg;
	snprintf(q->kind, sizeof(q->kind), "%s", kind);
	snprintf(q->id, sizeof(q->id), "%s", id);
	snprintf(q->sid, sizeof(q->sid), "cmd:%s:%s", kind, id);
	if (ctlq_key(q->key, sizeof(q->key), kind, id) < 0) {
		free(q);
		errno = EINVAL;
		return NULL;
	}
	q->timer = evloop_timer_new(loop, on_timer, q);
	if (!q->timer) {
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	evloop_timer_start(q->timer, CTLQ_POLL_MS);
	log_debug(q->sid, "ctlq: polling %s every %d ms", q->key, CTLQ_POLL_MS);
	return q;
}

void ctlq_destroy(struct ctlq **qp)
{
	struct ctlq *q = qp ? *qp : NULL;

	if (!q)
		return;
	*qp = NULL;
	if (q->in_handler) {
		/* pop_reply() frees it once the handler has returned; no more polls until then. */
		q->doomed = true;
		evloop_timer_stop(q->timer);
		return;
	}
	redis_cancel(q->r, q);
	free_queue(q);
}

uint64_t ctlq_taken(const struct ctlq *q)
{
	return q ? q->taken : 0;
}
