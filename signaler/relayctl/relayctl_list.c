/*
 * relayctl_list.c - relayctl's lists of what Redis holds: workers, signalers and calls, as aligned
 * text or JSON (relayctl_out.h).
 *
 * Every list starts from an index (rs:v1:workers, rs:v1:signalers, rs:v1:signaler:<id>:calls),
 * never KEYS or SCAN. What it reads is bounded and shown escaped; a record it cannot read is
 * shown with what is there, or skipped with a note on stderr.
 */
#include "relayctl_int.h"

#include "relayctl_out.h"
#include "state.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_MAX	1024   /* longest hash value used */
#define MAX_CALLS_TOTAL 262144 /* calls listed at most */
#define PIPELINE_BATCH	512    /* commands sent before their replies are read */
#define SIGNALERS_KEY	STATE_KEY_PREFIX "signalers"
#define WORKERS_KEY	STATE_KEY_PREFIX "workers"

/* Durations */

/* "45s", "12m03s", "3h04m", "2d03h". */
static const char *fmt_duration(uint64_t ms, char *buf, size_t size)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		snprintf(buf, size, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	return buf;
}

/* Records */

/* A field of an HGETALL reply: its value when present, a string of at most VALUE_MAX bytes
 * without NUL; else NULL. */
static const char *hfield(const redisReply *h, const char *name)
{
	if (!h || h->type != REDIS_REPLY_ARRAY || h->elements % 2)
		return NULL;
	for (size_t i = 0; i + 1 < h->elements; i += 2) {
		const redisReply *k = h->element[i], *v = h->element[i + 1];

		if (!k || !v || k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (k->len != strlen(name) || memcmp(k->str, name, k->len) != 0)
			continue;
		if (v->len > VALUE_MAX || strlen(v->str) != v->len)
			return NULL;
		return v->str;
	}
	return NULL;
}

static bool hu64(const redisReply *h, const char *name, uint64_t *out)
{
	return parse_u64(hfield(h, name), out);
}

static bool hash_present(const redisReply *h)
{
	return h && h->type == REDIS_REPLY_ARRAY && h->elements > 0;
}

/* A record of another format version is not interpreted. */
static bool hash_version_ok(const redisReply *h, const char *what, const char *id)
{
	const char *v = hfield(h, "v");

	if (v && strcmp(v, "1") == 0)
		return true;
	fprintf(stderr, "relayctl: %s %s: record format v%s unsupported, skipped\n", what, id,
		v ? v : "?");
	return false;
}

/* Members of a ZSET index with their scores (ms), the @max most recently seen; ids that are not
 * valid are skipped with a note. 0 with *out (caller frees) and *n, or -EIO / -ENOMEM. */
struct member {
	char id[STATE_ID_MAX + 1];
	uint64_t score;
};

static int read_index(struct ctx *x, const char *key, size_t max, struct member **out, size_t *n)
{
	struct member *m;
	char last[24];
	redisReply *r;

	*out = NULL;
	*n = 0;
	snprintf(last, sizeof(last), "%zu", max - 1); /* hiredis's format knows no %zu */
	r = rcmd(x, "ZREVRANGE %s 0 %s WITHSCORES", key, last);
	if (!r)
		return -EIO;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
		fprintf(stderr, "relayctl: %s: unexpected reply\n", key);
		freeReplyObject(r);
		return -EIO;
	}
	m = calloc(r->elements / 2 + 1, sizeof(*m));
	if (!m) {
		freeReplyObject(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *id = r->element[i], *sc = r->element[i + 1];
		double score;

		if (id->type != REDIS_REPLY_STRING || id->len > STATE_ID_MAX ||
		    strlen(id->str) != id->len || !state_id_valid(id->str)) {
			fprintf(stderr, "relayctl: %s: invalid member skipped\n", key);
			continue;
		}
		score = sc->type == REDIS_REPLY_STRING ? strtod(sc->str, NULL) : -1;
		snprintf(m[*n].id, sizeof(m[*n].id), "%s", id->str);
		m[*n].score = score > 0 && score < 1.8e19 ? (uint64_t)score : 0;
		(*n)++;
	}
	freeReplyObject(r);
	*out = m;
	return 0;
}

static int by_id(const void *a, const void *b)
{
	return strcmp(((const struct member *)a)->id, ((const struct member *)b)->id);
}

/* Pipelines "HGETALL <prefix><id><suffix>" for every member; replies[i] (NULL after a link
 * failure, which is said once). Returns 0 or -EIO. */
static int fetch_hashes(struct ctx *x, const char *prefix, const char *suffix,
			const struct member *m, size_t n, redisReply **replies)
{
	for (size_t done = 0; done < n;) {
		size_t batch = n - done < PIPELINE_BATCH ? n - done : PIPELINE_BATCH;

		for (size_t i = 0; i < batch; i++)
			redisAppendCommand(x->c, "HGETALL %s%s%s", prefix, m[done + i].id, suffix);
		for (size_t i = 0; i < batch; i++) {
			replies[done + i] = rget(x);
			if (!replies[done + i])
				return -EIO;
		}
		done += batch;
	}
	return 0;
}

/*
 * The members of index @key (at most @max), sorted by id, into *m (*n of them), and their hashes
 * @prefix<id> into *h (n + 1 slots, NULL for a missing hash). 0, or -1 (said) with *m and *h
 * left for the caller to free.
 */
static int index_hashes(struct ctx *x, const char *key, size_t max, const char *prefix,
			struct member **m, size_t *n, redisReply ***h)
{
	*m = NULL;
	*h = NULL;
	*n = 0;
	if (read_index(x, key, max, m, n) < 0)
		return -1;
	qsort(*m, *n, sizeof(**m), by_id);
	*h = calloc(*n + 1, sizeof(**h));
	if (!*h || fetch_hashes(x, prefix, "", *m, *n, *h) < 0)
		return -1;
	return 0;
}

static void free_replies(redisReply **replies, size_t n)
{
	if (!replies)
		return;
	for (size_t i = 0; i < n; i++)
		if (replies[i])
			freeReplyObject(replies[i]);
	free(replies);
}

/* workers */

static void worker_json(struct json *j, struct ctx *x, const struct member *m, const redisReply *h)
{
	uint64_t pid = 0, legs = 0, cpu = 0, started = 0, seen = m->score, draining = 0;
	bool has_pid = hu64(h, "pid", &pid), has_legs = hu64(h, "legs", &legs);
	bool has_cpu = hu64(h, "cpu", &cpu), has_started = hu64(h, "started", &started);
	bool has_draining = hu64(h, "draining", &draining) && draining <= 1;
	uint64_t hseen;

	if (hu64(h, "seen", &hseen) && hseen > seen)
		seen = hseen;
	json_open(j, '{');
	json_str(j, "worker_id", m->id);
	json_u64(j, "pid", has_pid, pid);
	json_str(j, "host", hfield(h, "host"));
	json_u64(j, "legs", has_legs, legs);
	json_u64(j, "cpu_permille", has_cpu, cpu);
	json_bool(j, "draining", has_draining ? (int)draining : -1);
	json_bool(j, "alive", seen && since(x, seen) <= STATE_WORKER_LIVENESS_MS);
	json_bool(j, "record", hash_present(h));
	json_str(j, "instance", hfield(h, "instance"));
	json_str(j, "ctl", hfield(h, "ctl"));
	json_str(j, "media", hfield(h, "media"));
	json_str(j, "curve", hfield(h, "curve"));
	json_u64(j, "started_ms", has_started, started);
	json_u64(j, "age_s", has_started, since(x, started) / 1000);
	json_u64(j, "seen_ms", seen > 0, seen);
	json_u64(j, "seen_ago_ms", seen > 0, since(x, seen));
	json_close(j, '}');
}

static void worker_row(struct table *t, struct ctx *x, const struct member *m, const redisReply *h)
{
	uint64_t cpu = 0, started = 0, seen = m->score, draining = 0, hseen;
	char cpu_s[24] = "", age_s[24] = "", seen_s[32] = "";
	bool alive;

	if (hu64(h, "seen", &hseen) && hseen > seen)
		seen = hseen;
	alive = seen && since(x, seen) <= STATE_WORKER_LIVENESS_MS;
	if (hu64(h, "cpu", &cpu))
		snprintf(cpu_s, sizeof(cpu_s), "%" PRIu64 ".%" PRIu64 "%%", cpu / 10, cpu % 10);
	if (hu64(h, "started", &started))
		fmt_duration(since(x, started), age_s, sizeof(age_s));
	if (seen) {
		snprintf(seen_s, sizeof(seen_s), "%" PRIu64 ".%" PRIu64 "s ago",
			 since(x, seen) / 1000, since(x, seen) % 1000 / 100);
	}
	hu64(h, "draining", &draining);
	const char *row[] = {m->id,
			     hfield(h, "pid"),
			     hfield(h, "host"),
			     hfield(h, "legs"),
			     cpu_s,
			     hfield(h, "draining") ? (draining ? "yes" : "no") : NULL,
			     alive ? "yes" : "no",
			     age_s,
			     seen_s};
	table_row(t, row);
}

int cmd_workers(struct ctx *x)
{
	static const char *const heads[] = {"WORKER",	"PID",	 "HOST", "LEGS", "CPU",
					    "DRAINING", "ALIVE", "AGE",	 "SEEN"};
	struct member *m = NULL;
	redisReply **h = NULL;
	struct table t;
	struct json j = {0};
	size_t n = 0;
	int ret = EXIT_FAIL;

	if (index_hashes(x, WORKERS_KEY, STATE_MAX_WORKERS, STATE_KEY_PREFIX "worker:", &m, &n,
			 &h) < 0)
		goto out_free;
	table_init(&t, heads, sizeof(heads) / sizeof(heads[0]));
	if (x->o->json)
		json_open(&j, '[');
	for (size_t i = 0; i < n; i++) {
		if (hash_present(h[i]) && !hash_version_ok(h[i], "worker", m[i].id))
			continue;
		if (x->o->json)
			worker_json(&j, x, &m[i], h[i]);
		else
			worker_row(&t, x, &m[i], h[i]);
	}
	if (x->o->json)
		json_close(&j, ']');
	else
		table_print(&t, "no workers in " WORKERS_KEY);
	ret = t.oom ? EXIT_FAIL : EXIT_OK;
	table_free(&t);
out_free:
	free_replies(h, n);
	free(m);
	return ret;
}

/* signalers */

int cmd_signalers(struct ctx *x)
{
	static const char *const heads[] = {"SIGNALER", "PID",	 "HOST", "SIP", "RTMP",
					    "ALIVE",	"CALLS", "AGE",	 "SEEN"};
	struct member *m = NULL;
	redisReply **h = NULL, **cnt = NULL;
	struct table t;
	struct json j = {0};
	size_t n = 0;
	int ret = EXIT_FAIL;

	if (index_hashes(x, SIGNALERS_KEY, STATE_MAX_SIGNALERS, STATE_KEY_PREFIX "signaler:", &m,
			 &n, &h) < 0)
		goto out_free;
	cnt = calloc(n + 1, sizeof(*cnt));
	if (!cnt)
		goto out_free;
	for (size_t i = 0; i < n; i++)
		redisAppendCommand(x->c, "SCARD %ssignaler:%s:calls", STATE_KEY_PREFIX, m[i].id);
	for (size_t i = 0; i < n; i++)
		if (!(cnt[i] = rget(x)))
			goto out_free;
	table_init(&t, heads, sizeof(heads) / sizeof(heads[0]));
	if (x->o->json)
		json_open(&j, '[');
	for (size_t i = 0; i < n; i++) {
		uint64_t pid = 0, started = 0, seen = m[i].score, hseen;
		bool has_pid = hu64(h[i], "pid", &pid),
		     has_started = hu64(h[i], "started", &started);
		bool has_calls = cnt[i]->type == REDIS_REPLY_INTEGER && cnt[i]->integer >= 0;
		uint64_t calls = has_calls ? (uint64_t)cnt[i]->integer : 0;
		char calls_s[24] = "", age_s[24] = "", seen_s[32] = "";
		bool alive;

		if (hash_present(h[i]) && !hash_version_ok(h[i], "signaler", m[i].id))
			continue;
		if (hu64(h[i], "seen", &hseen) && hseen > seen)
			seen = hseen;
		alive = seen && since(x, seen) <= STATE_SIGNALER_LIVENESS_MS;
		if (x->o->json) {
			json_open(&j, '{');
			json_str(&j, "signaler_id", m[i].id);
			json_u64(&j, "pid", has_pid, pid);
			json_str(&j, "host", hfield(h[i], "host"));
			json_str(&j, "sip", hfield(h[i], "sip"));
			json_str(&j, "rtmp", hfield(h[i], "rtmp"));
			json_str(&j, "instance", hfield(h[i], "instance"));
			json_bool(&j, "alive", alive);
			json_bool(&j, "record", hash_present(h[i]));
			json_u64(&j, "calls", has_calls, calls);
			json_u64(&j, "started_ms", has_started, started);
			json_u64(&j, "age_s", has_started, since(x, started) / 1000);
			json_u64(&j, "seen_ms", seen > 0, seen);
			json_u64(&j, "seen_ago_ms", seen > 0, since(x, seen));
			json_close(&j, '}');
			continue;
		}
		if (has_calls)
			snprintf(calls_s, sizeof(calls_s), "%" PRIu64, calls);
		if (has_started)
			fmt_duration(since(x, started), age_s, sizeof(age_s));
		if (seen)
			snprintf(seen_s, sizeof(seen_s), "%" PRIu64 ".%" PRIu64 "s ago",
				 since(x, seen) / 1000, since(x, seen) % 1000 / 100);
		const char *row[] = {m[i].id,
				     hfield(h[i], "pid"),
				     hfield(h[i], "host"),
				     hfield(h[i], "sip"),
				     hfield(h[i], "rtmp"),
				     alive ? "yes" : "no",
				     calls_s,
				     age_s,
				     seen_s};
		table_row(&t, row);
	}
	if (x->o->json)
		json_close(&j, ']');
	else
		table_print(&t, "no signalers in " SIGNALERS_KEY);
	ret = t.oom ? EXIT_FAIL : EXIT_OK;
	table_free(&t);
out_free:
	free_replies(h, n);
	free_replies(cnt, n);
	free(m);
	return ret;
}

/* calls */

struct call {
	char id[STATE_ID_MAX + 1];
	redisReply *rec;     /* HGETALL rs:v1:call:<id> */
	redisReply *leg;     /* HMGET rs:v1:leg:<leg> worker pkts_in pkts_out pkts_lost, or NULL */
	const char *worker;  /* the leg's worker, else the call's, or NULL */
	uint64_t worker_pid; /* 0: unknown */
	uint64_t created;
};

static int call_by_id(const void *a, const void *b)
{
	return strcmp(((const struct call *)a)->id, ((const struct call *)b)->id);
}

static int call_by_created(const void *a, const void *b)
{
	const struct call *ca = a, *cb = b;

	if (ca->created != cb->created)
		return ca->created < cb->created ? -1 : 1;
	return strcmp(ca->id, cb->id);
}

/* Gathers the call ids of every signaler's index, deduplicated; 0 or -EIO / -ENOMEM. */
static int gather_call_ids(struct ctx *x, const struct member *sig, size_t nsig, struct call **out,
			   size_t *n)
{
	struct call *calls = NULL;
	size_t cap = 0;

	*n = 0;
	for (size_t i = 0; i < nsig; i++)
		redisAppendCommand(x->c, "SMEMBERS %ssignaler:%s:calls", STATE_KEY_PREFIX,
				   sig[i].id);
	for (size_t i = 0; i < nsig; i++) {
		redisReply *r = rget(x);

		if (!r) {
			free(calls);
			return -EIO;
		}
		for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k < r->elements &&
				   k < STATE_MAX_CALLS_PER_SIGNALER && *n < MAX_CALLS_TOTAL;
		     k++) {
			const redisReply *e = r->element[k];

			if (e->type != REDIS_REPLY_STRING || e->len > STATE_ID_MAX ||
			    strlen(e->str) != e->len || !state_id_valid(e->str))
				continue;
			if (*n == cap) {
				size_t ncap = cap ? cap * 2 : 256;
				struct call *c = realloc(calls, ncap * sizeof(*c));

				if (!c) {
					freeReplyObject(r);
					free(calls);
					return -ENOMEM;
				}
				calls = c;
				cap = ncap;
			}
			memset(&calls[*n], 0, sizeof(calls[*n]));
			snprintf(calls[*n].id, sizeof(calls[*n].id), "%s", e->str);
			(*n)++;
		}
		freeReplyObject(r);
	}
	if (*n)
		qsort(calls, *n, sizeof(*calls), call_by_id);
	size_t u = 0;
	for (size_t i = 0; i < *n; i++)
		if (u == 0 || strcmp(calls[u - 1].id, calls[i].id) != 0)
			calls[u++] = calls[i];
	*n = u;
	*out = calls;
	return 0;
}

/* Reads each call's record, its leg's worker and packet counters, and its worker's pid. */
static int fetch_calls(struct ctx *x, struct call *calls, size_t n)
{
	for (size_t done = 0; done < n;) {
		size_t batch = n - done < PIPELINE_BATCH ? n - done : PIPELINE_BATCH;
		struct call *b = calls + done;

		for (size_t i = 0; i < batch; i++)
			redisAppendCommand(x->c, "HGETALL %scall:%s", STATE_KEY_PREFIX, b[i].id);
		for (size_t i = 0; i < batch; i++)
			if (!(b[i].rec = rget(x)))
				return -EIO;
		for (size_t i = 0; i < batch; i++) {
			const char *leg = hfield(b[i].rec, "leg");

			if (leg && state_id_valid(leg))
				redisAppendCommand(
				    x->c, "HMGET %sleg:%s worker pkts_in pkts_out pkts_lost",
				    STATE_KEY_PREFIX, leg);
		}
		for (size_t i = 0; i < batch; i++) {
			const char *leg = hfield(b[i].rec, "leg");

			if (leg && state_id_valid(leg) && !(b[i].leg = rget(x)))
				return -EIO;
		}
		for (size_t i = 0; i < batch; i++) {
			const redisReply *l = b[i].leg;
			const char *w = hfield(b[i].rec, "worker");

			if (l && l->type == REDIS_REPLY_ARRAY && l->elements == 4 &&
			    l->element[0]->type == REDIS_REPLY_STRING &&
			    state_id_valid(l->element[0]->str))
				w = l->element[0]->str;
			b[i].worker = w && state_id_valid(w) ? w : NULL;
			if (b[i].worker)
				redisAppendCommand(x->c, "HGET %sworker:%s pid", STATE_KEY_PREFIX,
						   b[i].worker);
			hu64(b[i].rec, "created", &b[i].created);
		}
		for (size_t i = 0; i < batch; i++) {
			redisReply *p;

			if (!b[i].worker)
				continue;
			if (!(p = rget(x)))
				return -EIO;
			if (p->type == REDIS_REPLY_STRING && !parse_u64(p->str, &b[i].worker_pid))
				b[i].worker_pid = 0;
			freeReplyObject(p);
		}
		done += batch;
	}
	return 0;
}

/* The leg's packet counter @i (1 in, 2 out, 3 lost) when present. */
static bool leg_counter(const struct call *c, size_t i, uint64_t *out)
{
	const redisReply *l = c->leg;

	return l && l->type == REDIS_REPLY_ARRAY && l->elements == 4 &&
	       l->element[i]->type == REDIS_REPLY_STRING && parse_u64(l->element[i]->str, out);
}

static void call_json(struct json *j, struct ctx *x, const struct call *c)
{
	const redisReply *h = c->rec;
	uint64_t created = 0, answered = 0, updated = 0, in = 0, out = 0, lost = 0, b;
	bool has_created = hu64(h, "created", &created),
	     has_answered = hu64(h, "answered", &answered);
	bool has_in = leg_counter(c, 1, &in), has_out = leg_counter(c, 2, &out);
	bool has_lost = leg_counter(c, 3, &lost), has_updated = hu64(h, "updated", &updated);

	json_open(j, '{');
	json_str(j, "call_id", c->id);
	json_str(j, "worker_id", c->worker);
	json_u64(j, "worker_pid", c->worker_pid > 0, c->worker_pid);
	json_str(j, "signaler", hfield(h, "signaler"));
	json_str(j, "sip_call_id", hfield(h, "sip_call_id"));
	json_str(j, "app", hfield(h, "app"));
	json_str(j, "direction", hfield(h, "direction"));
	json_str(j, "from", hfield(h, "from"));
	json_str(j, "to", hfield(h, "to"));
	json_str(j, "state", hfield(h, "state"));
	json_str(j, "codec", hfield(h, "codec"));
	json_bool(j, "transcoding", hu64(h, "transcoding", &b) && b <= 1 ? (int)b : -1);
	json_bool(j, "srtp", hu64(h, "srtp", &b) && b <= 1 ? (int)b : -1);
	json_str(j, "rtmp_client", hfield(h, "rtmp_client"));
	json_str(j, "leg_id", hfield(h, "leg"));
	json_u64(j, "created_ms", has_created, created);
	json_u64(j, "answered_ms", has_answered, answered);
	json_u64(j, "updated_ms", has_updated, updated);
	json_u64(j, "age_s", has_created, since(x, created) / 1000);
	json_u64(j, "duration_s", has_answered && answered > 0, since(x, answered) / 1000);
	json_key(j, "packets");
	if (has_in || has_out || has_lost) {
		json_open(j, '{');
		json_u64(j, "in", has_in, in);
		json_u64(j, "out", has_out, out);
		json_u64(j, "lost", has_lost, lost);
		json_close(j, '}');
	} else {
		json_null(j);
	}
	json_close(j, '}');
}

static void call_row(struct table *t, struct ctx *x, const struct call *c)
{
	const redisReply *h = c->rec;
	uint64_t answered = 0, created = 0, in = 0, out = 0, lost = 0;
	char dur[32] = "", age[24], pid[24] = "", pkts[80] = "", n_in[24] = "-", n_out[24] = "-",
	     n_lost[24] = "-";
	bool has_in = leg_counter(c, 1, &in), has_out = leg_counter(c, 2, &out);
	bool has_lost = leg_counter(c, 3, &lost);

	if (hu64(h, "answered", &answered) && answered > 0)
		fmt_duration(since(x, answered), dur, sizeof(dur));
	else if (hu64(h, "created", &created))
		snprintf(dur, sizeof(dur), "(%s)",
			 fmt_duration(since(x, created), age, sizeof(age)));
	if (c->worker_pid)
		snprintf(pid, sizeof(pid), "%" PRIu64, c->worker_pid);
	if (has_in || has_out || has_lost) {
		if (has_in)
			snprintf(n_in, sizeof(n_in), "%" PRIu64, in);
		if (has_out)
			snprintf(n_out, sizeof(n_out), "%" PRIu64, out);
		if (has_lost)
			snprintf(n_lost, sizeof(n_lost), "%" PRIu64, lost);
		snprintf(pkts, sizeof(pkts), "%s/%s/%s", n_in, n_out, n_lost);
	}
	const char *row[] = {c->id,
			     hfield(h, "app"),
			     hfield(h, "direction"),
			     hfield(h, "from"),
			     hfield(h, "to"),
			     hfield(h, "state"),
			     hfield(h, "codec"),
			     c->worker,
			     pid,
			     dur,
			     pkts,
			     hfield(h, "signaler")};
	table_row(t, row);
}

int cmd_calls(struct ctx *x)
{
	static const char *const heads[] = {"CALL",
					    "APP",
					    "DIR",
					    "FROM",
					    "TO",
					    "STATE",
					    "CODEC",
					    "WORKER",
					    "WPID",
					    "DURATION",
					    "PKTS IN/OUT/LOST",
					    "SIGNALER"};
	struct member *sig = NULL;
	struct call *calls = NULL;
	struct table t;
	struct json j = {0};
	size_t nsig = 0, n = 0;
	int ret = EXIT_FAIL;

	if (read_index(x, SIGNALERS_KEY, STATE_MAX_SIGNALERS, &sig, &nsig) < 0)
		return EXIT_FAIL;
	if (gather_call_ids(x, sig, nsig, &calls, &n) < 0 || fetch_calls(x, calls, n) < 0)
		goto out_free;
	if (n)
		qsort(calls, n, sizeof(*calls), call_by_created);
	table_init(&t, heads, sizeof(heads) / sizeof(heads[0]));
	if (x->o->json)
		json_open(&j, '[');
	for (size_t i = 0; i < n; i++) {
		if (!hash_present(calls[i].rec) ||
		    !hash_version_ok(calls[i].rec, "call", calls[i].id))
			continue; /* expired since the index was read, or another version */
		if (x->o->json)
			call_json(&j, x, &calls[i]);
		else
			call_row(&t, x, &calls[i]);
	}
	if (x->o->json)
		json_close(&j, ']');
	else
		table_print(&t, "no calls");
	ret = t.oom ? EXIT_FAIL : EXIT_OK;
	table_free(&t);
out_free:
	for (size_t i = 0; calls && i < n; i++) {
		if (calls[i].rec)
			freeReplyObject(calls[i].rec);
		if (calls[i].leg)
			freeReplyObject(calls[i].leg);
	}
	free(calls);
	free(sig);
	return ret;
}
