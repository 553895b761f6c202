/*
 * relayctl.c - the operator's tool: lists the workers, signalers and calls recorded in Redis,
 * and queues commands for a daemon (drain, undrain, hangup) through its command queue
 * (common/ctlq.h), waiting for the daemon's acknowledgment.
 *
 *   relayctl [--redis HOST:PORT] [--password P] [--json] [--timeout SEC] [--no-wait] COMMAND
 *
 *   workers | signalers | calls
 *   drain WORKER [--deadline SEC] | undrain WORKER | hangup CALL | signaler-drain SIGNALER ...
 *   keygen [--dir DIR] [--force] NAME      (a CURVE key pair; no Redis)
 *
 * Where Redis is: the REDIS_* variables as the daemons read them; when none is set and no
 * --redis / --password is given, the environment file of a `make run` stack (RTMP2SIP_ENV, else
 * run/rtmp2sip.env in the current directory, else next to the executable's build directory), so
 * that relayctl finds that stack's Redis and its password without flags.
 *
 * A short-lived command-line program, so it uses hiredis's synchronous API (the daemons' async
 * client is for event loops). It only reads the documented keys (state.h, ctlq.h): every list
 * starts from an index (rs:v1:workers, rs:v1:signalers, rs:v1:signaler:<id>:calls), never KEYS
 * or SCAN. What it reads is bounded and shown escaped; a record it cannot read is shown with
 * what is there, or skipped with a note on stderr.
 *
 * A daemon command:
 *
 *   check the target is alive --no--> "unknown target", exit 1
 *        |
 *   MULTI RPUSH + LTRIM + EXPIRE rs:v1:cmd:<kind>:<id> --(--no-wait)--> "queued", exit 0
 *        |
 *   BLPOP rs:v1:cmd:result:<request id> up to --timeout --result--> "done" / "unknown target" /
 *        |                                                          "rejected" / "failed"
 *        +--nothing--> LREM the command (withdrawn if still queued) --> "timeout", exit 1
 *
 * Exit status: 0 done, 1 failure (Redis unreachable, unknown target, refused, timeout), 2 usage.
 */
#include "config.h"
#include "ctlq.h"
#include "curve.h"
#include "log.h"
#include "redis.h"
#include "relayctl_out.h"
#include "state.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <unistd.h>

#define EXIT_OK	   0
#define EXIT_FAIL  1
#define EXIT_USAGE 2

#define VALUE_MAX	  1024	 /* longest hash value used */
#define MAX_CALLS_TOTAL	  262144 /* calls listed at most */
#define PIPELINE_BATCH	  512	 /* commands sent before their replies are read */
#define TIMEOUT_DEFAULT_S 5.0
#define TIMEOUT_MAX_S	  3600.0
#define SIGNALERS_KEY	  STATE_KEY_PREFIX "signalers"
#define WORKERS_KEY	  STATE_KEY_PREFIX "workers"
/* The signaler heartbeat's bounds (state.h); the same as the workers' where not yet there. */
#ifndef STATE_SIGNALER_LIVENESS_MS
#define STATE_SIGNALER_LIVENESS_MS STATE_WORKER_LIVENESS_MS
#endif
#ifndef STATE_MAX_SIGNALERS
#define STATE_MAX_SIGNALERS STATE_MAX_WORKERS
#endif

struct opts {
	struct redis_config cfg;
	bool redis_given; /* --redis: no sentinels */
	bool json;
	bool no_wait;
	double timeout_s;
	long deadline_s; /* -1: none given */
	const char *dir; /* keygen --dir */
	bool force;	 /* keygen --force */
	const char *command;
	const char *target;
};

struct ctx {
	const struct opts *o;
	redisContext *c;
	char addr[REDIS_HOST_MAX + 16];
	uint64_t now_ms;
};

/* Numbers and durations */

/* Strict decimal: digits only, no sign, at most UINT64_MAX. */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t len = s ? strlen(s) : 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

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

/* Milliseconds from @then_ms to now (0 when @then_ms is ahead: clocks of hosts differ). */
static uint64_t since(const struct ctx *x, uint64_t then_ms)
{
	return x->now_ms > then_ms ? x->now_ms - then_ms : 0;
}

/* Redis: connection */

static redisContext *connect_to(const char *host, int port, unsigned timeout_ms)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000};

	return redisConnectWithTimeout(host, port, tv);
}

/* Asks the sentinels, one after the other, for the master's address. */
static int ask_sentinels(const struct opts *o, struct redis_endpoint *master)
{
	const struct redis_config *cfg = &o->cfg;

	for (size_t i = 0; i < cfg->n_sentinels; i++) {
		const struct redis_endpoint *s = &cfg->sentinels[i];
		redisContext *c = connect_to(s->host, s->port, cfg->connect_timeout_ms);
		redisReply *r = NULL;
		long long port = 0;
		const char *h;
		size_t hlen;

		if (!c || c->err) {
			fprintf(stderr, "relayctl: sentinel %s:%d: %s\n", s->host, s->port,
				c ? c->errstr : "out of memory");
			redisFree(c);
			continue;
		}
		r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", cfg->master_name);
		if (r && redis_reply_array(r, 2) == 0 && r->elements == 2 &&
		    redis_reply_str(r->element[0], REDIS_HOST_MAX, &h, &hlen) == 0 && hlen > 0 &&
		    !memchr(h, '\0', hlen) && r->element[1]->type == REDIS_REPLY_STRING &&
		    r->element[1]->str) {
			char *end;

			port = strtoll(r->element[1]->str, &end, 10);
			if (*end == '\0' && port >= 1 && port <= 65535) {
				memcpy(master->host, h, hlen);
				master->host[hlen] = '\0';
				master->port = (int)port;
				freeReplyObject(r);
				redisFree(c);
				return 0;
			}
		}
		fprintf(stderr, "relayctl: sentinel %s:%d does not know master '%s'\n", s->host,
			s->port, cfg->master_name);
		if (r)
			freeReplyObject(r);
		redisFree(c);
	}
	return -EHOSTUNREACH;
}

/* Connects to the master (through the sentinels when configured), AUTH, SELECT, ROLE. */
static int redis_open(struct ctx *x)
{
	const struct redis_config *cfg = &x->o->cfg;
	struct redis_endpoint master = cfg->master;
	bool sentinel = !x->o->redis_given && cfg->n_sentinels > 0;
	struct timeval tv = {.tv_sec = cfg->command_timeout_ms / 1000,
			     .tv_usec = cfg->command_timeout_ms % 1000 * 1000};
	redisReply *r;

	if (sentinel && ask_sentinels(x->o, &master) < 0) {
		fprintf(stderr, "relayctl: no sentinel named the master '%s'\n", cfg->master_name);
		return -EHOSTUNREACH;
	}
	snprintf(x->addr, sizeof(x->addr), strchr(master.host, ':') ? "[%s]:%d" : "%s:%d",
		 master.host, master.port);
	x->c = connect_to(master.host, master.port, cfg->connect_timeout_ms);
	if (!x->c || x->c->err) {
		fprintf(stderr, "relayctl: cannot reach Redis at %s: %s\n", x->addr,
			x->c ? x->c->errstr : "out of memory");
		return -ECONNREFUSED;
	}
	redisSetTimeout(x->c, tv);
	if (cfg->password[0]) {
		r = cfg->username[0] ? redisCommand(x->c, "AUTH %s %s", cfg->username, cfg->password)
				     : redisCommand(x->c, "AUTH %s", cfg->password);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "relayctl: Redis at %s refused AUTH: %s\n", x->addr,
				r ? r->str : x->c->errstr);
			if (r)
				freeReplyObject(r);
			return -EACCES;
		}
		freeReplyObject(r);
	}
	if (cfg->db != 0) {
		r = redisCommand(x->c, "SELECT %d", cfg->db);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "relayctl: Redis at %s: SELECT %d failed: %s\n", x->addr,
				cfg->db, r ? r->str : x->c->errstr);
			if (r)
				freeReplyObject(r);
			return -EINVAL;
		}
		freeReplyObject(r);
	}
	if (sentinel) {
		r = redisCommand(x->c, "ROLE");
		if (!r || redis_reply_array(r, 16) < 0 || r->elements < 1 ||
		    !redis_reply_is(r->element[0], "master")) {
			fprintf(stderr, "relayctl: %s, named by the sentinels, is not a master\n",
				x->addr);
			if (r)
				freeReplyObject(r);
			return -EAGAIN;
		}
		freeReplyObject(r);
	}
	return 0;
}

/* Redis: commands */

/* One command; the reply, or NULL (said on stderr) when the link failed or Redis answered an
 * error. The caller frees the reply. */
static redisReply *rcmd(struct ctx *x, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(x->c, fmt, ap);
	va_end(ap);
	if (!r) {
		fprintf(stderr, "relayctl: Redis at %s: %s\n", x->addr, x->c->errstr);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "relayctl: Redis at %s answered: %s\n", x->addr, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* The next reply of a pipeline; NULL (said on stderr) only when the link failed. */
static redisReply *rget(struct ctx *x)
{
	void *r = NULL;

	if (redisGetReply(x->c, &r) != REDIS_OK) {
		fprintf(stderr, "relayctl: Redis at %s: %s\n", x->addr, x->c->errstr);
		return NULL;
	}
	return r;
}

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

static int cmd_workers(struct ctx *x)
{
	static const char *const heads[] = {"WORKER",	"PID",	 "HOST", "LEGS", "CPU",
					    "DRAINING", "ALIVE", "AGE",	 "SEEN"};
	struct member *m = NULL;
	redisReply **h = NULL;
	struct table t;
	struct json j = {0};
	size_t n = 0;
	int ret = EXIT_FAIL;

	if (read_index(x, WORKERS_KEY, STATE_MAX_WORKERS, &m, &n) < 0)
		return EXIT_FAIL;
	qsort(m, n, sizeof(*m), by_id);
	h = calloc(n + 1, sizeof(*h));
	if (!h || fetch_hashes(x, STATE_KEY_PREFIX "worker:", "", m, n, h) < 0)
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

static int cmd_signalers(struct ctx *x)
{
	static const char *const heads[] = {"SIGNALER", "PID",	 "HOST", "SIP", "RTMP",
					    "ALIVE",	"CALLS", "AGE",	 "SEEN"};
	struct member *m = NULL;
	redisReply **h = NULL, **cnt = NULL;
	struct table t;
	struct json j = {0};
	size_t n = 0;
	int ret = EXIT_FAIL;

	if (read_index(x, SIGNALERS_KEY, STATE_MAX_SIGNALERS, &m, &n) < 0)
		return EXIT_FAIL;
	qsort(m, n, sizeof(*m), by_id);
	h = calloc(n + 1, sizeof(*h));
	cnt = calloc(n + 1, sizeof(*cnt));
	if (!h || !cnt || fetch_hashes(x, STATE_KEY_PREFIX "signaler:", "", m, n, h) < 0)
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

static int cmd_calls(struct ctx *x)
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

/* Daemon commands */

enum outcome { OUT_DONE, OUT_QUEUED, OUT_UNKNOWN, OUT_REJECTED, OUT_FAILED, OUT_TIMEOUT };

static const char *const outcome_names[] = {
    [OUT_DONE] = "done",	 [OUT_QUEUED] = "queued", [OUT_UNKNOWN] = "unknown target",
    [OUT_REJECTED] = "rejected", [OUT_FAILED] = "failed", [OUT_TIMEOUT] = "timeout",
};

/* What a daemon command is about: @kind @id (a worker, a signaler, a call), carried out by the
 * daemon @daemon_kind @daemon_id (the owning signaler of a call; else the target itself). */
struct target {
	const char *verb;
	const char *kind, *id;
	const char *daemon_kind, *daemon_id;
};

static int report(const struct ctx *x, enum outcome out, const struct target *t,
		  const char *request_id, const char *command, const char *detail)
{
	bool via = t->daemon_id && strcmp(t->kind, t->daemon_kind) != 0;

	detail = detail && detail[0] ? detail : NULL;
	if (x->o->json) {
		struct json j = {0};
		char daemon[STATE_ID_MAX + 16];

		snprintf(daemon, sizeof(daemon), "%s:%s", t->daemon_kind,
			 t->daemon_id ? t->daemon_id : "");
		json_open(&j, '{');
		json_str(&j, "result", outcome_names[out]);
		json_str(&j, "verb", t->verb);
		json_str(&j, "target_kind", t->kind);
		json_str(&j, "target_id", t->id);
		json_str(&j, "daemon", t->daemon_id ? daemon : NULL);
		json_str(&j, "request_id", request_id && request_id[0] ? request_id : NULL);
		json_str(&j, "command", command && command[0] ? command : NULL);
		json_str(&j, "detail", detail);
		json_close(&j, '}');
	} else {
		char *id = text_safe(t->id), *safe = text_safe(detail);

		printf("%s: %s %s %s%s%s%s%s%s\n", outcome_names[out], t->verb, t->kind,
		       id ? id : "?", via ? " (" : "", via ? t->daemon_kind : "", via ? " " : "",
		       via ? t->daemon_id : "", via ? ")" : "");
		if (detail)
			printf("  %s\n", safe ? safe : "?");
		free(id);
		free(safe);
	}
	return out == OUT_DONE || out == OUT_QUEUED ? EXIT_OK : EXIT_FAIL;
}

/* A request id no other relayctl makes: "rc-<ms hex>-<pid>-<random hex>". */
static void new_request_id(char *buf, size_t size, uint64_t now_ms)
{
	uint32_t rnd = 0;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)now_ms ^ (uint32_t)getpid() << 16;
	snprintf(buf, size, "rc-%" PRIx64 "-%ld-%08" PRIx32, now_ms, (long)getpid(), rnd);
}

/*
 * Whether the daemon @kind @id is alive: its entry in rs:v1:<kind>s seen within the liveness
 * window. 1 alive, 0 not alive (@why says so), -ENOENT never heard of, -EIO.
 */
static int target_alive(struct ctx *x, const char *kind, const char *id, char *why, size_t size)
{
	redisReply *r = rcmd(x, "ZSCORE %s%ss %s", STATE_KEY_PREFIX, kind, id);
	uint64_t seen = 0;
	double score;

	if (!r)
		return -EIO;
	if (r->type == REDIS_REPLY_NIL) {
		freeReplyObject(r);
		snprintf(why, size, "no %s '%s' in %s%ss", kind, id, STATE_KEY_PREFIX, kind);
		return -ENOENT;
	}
	score = r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : 0;
	freeReplyObject(r);
	seen = score > 0 && score < 1.8e19 ? (uint64_t)score : 0;
	if (seen &&
	    since(x, seen) <= (strcmp(kind, CTLQ_KIND_WORKER) == 0 ? STATE_WORKER_LIVENESS_MS
								   : STATE_SIGNALER_LIVENESS_MS))
		return 1;
	snprintf(why, size, "%s '%s' is not alive (last seen %" PRIu64 " s ago)", kind, id,
		 since(x, seen) / 1000);
	return 0;
}

/* RPUSH + LTRIM + EXPIRE in one transaction. */
static int queue_push(struct ctx *x, const char *key, const char *text)
{
	redisReply *r;
	bool ok = true;

	redisAppendCommand(x->c, "MULTI");
	redisAppendCommand(x->c, "RPUSH %s %s", key, text);
	redisAppendCommand(x->c, "LTRIM %s %d -1", key, -CTLQ_QUEUE_MAX);
	redisAppendCommand(x->c, "EXPIRE %s %d", key, CTLQ_QUEUE_TTL_S);
	redisAppendCommand(x->c, "EXEC");
	for (int i = 0; i < 5; i++) {
		if (!(r = rget(x)))
			return -EIO;
		if (r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "relayctl: Redis at %s answered: %s\n", x->addr, r->str);
			ok = false;
		}
		if (i == 4 && (r->type != REDIS_REPLY_ARRAY || r->elements != 3))
			ok = false;
		freeReplyObject(r);
	}
	return ok ? 0 : -EIO;
}

/* Waits for the result of @request_id; the outcome, with @detail set. */
static enum outcome await_result(struct ctx *x, const char *key, const char *text,
				 const char *request_id, char *detail, size_t size)
{
	char rkey[CTLQ_KEY_MAX], secs[32];
	double wait_s = x->o->timeout_s;
	unsigned sock_ms = (unsigned)(wait_s * 1000) + x->o->cfg.command_timeout_ms;
	struct timeval tv = {.tv_sec = sock_ms / 1000, .tv_usec = sock_ms % 1000 * 1000};
	enum ctlq_status st;
	redisReply *r;

	ctlq_result_key(rkey, sizeof(rkey), request_id);
	redisSetTimeout(x->c, tv);
	snprintf(secs, sizeof(secs), "%.3f", wait_s);
	r = rcmd(x, "BLPOP %s %s", rkey, secs);
	if (!r) {
		snprintf(detail, size, "lost Redis while waiting for the result");
		return OUT_FAILED;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		int ret =
		    ctlq_result_parse(r->element[1]->str, r->element[1]->len, &st, detail, size);

		freeReplyObject(r);
		if (ret < 0) {
			snprintf(detail, size, "unreadable result");
			return OUT_FAILED;
		}
		switch (st) {
		case CTLQ_OK:
			return OUT_DONE;
		case CTLQ_UNKNOWN:
			return OUT_UNKNOWN;
		case CTLQ_INVALID:
			return OUT_REJECTED;
		case CTLQ_FAILED:
			return OUT_FAILED;
		}
		return OUT_FAILED;
	}
	freeReplyObject(r);
	/* No answer: take the command back if the daemon has not taken it yet. */
	r = rcmd(x, "LREM %s 1 %s", key, text);
	if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
		snprintf(detail, size, "not taken within %.1f s: withdrawn from %s", wait_s, key);
	else
		snprintf(detail, size, "taken but not acknowledged within %.1f s", wait_s);
	if (r)
		freeReplyObject(r);
	return OUT_TIMEOUT;
}

/* Queues @cmd (request id filled here) for daemon @kind @id and reports the outcome. */
static int send_command(struct ctx *x, struct target *t, struct ctlq_cmd *cmd)
{
	char key[CTLQ_KEY_MAX], text[CTLQ_CMD_MAX + 1], why[160] = "", detail[CTLQ_DETAIL_MAX + 64];
	enum outcome out;
	int alive;

	t->verb = ctlq_verb_name(cmd->verb);
	if (ctlq_key(key, sizeof(key), t->daemon_kind, t->daemon_id) < 0) {
		snprintf(why, sizeof(why), "not a valid %s id", t->daemon_kind);
		return report(x, OUT_UNKNOWN, t, NULL, NULL, why);
	}
	alive = target_alive(x, t->daemon_kind, t->daemon_id, why, sizeof(why));
	if (alive < 0 && alive != -ENOENT)
		return EXIT_FAIL;
	if (alive <= 0)
		return report(x, OUT_UNKNOWN, t, NULL, NULL, why);
	new_request_id(cmd->request_id, sizeof(cmd->request_id), x->now_ms);
	if (ctlq_format(cmd, t->daemon_kind, x->now_ms, text, sizeof(text)) < 0) {
		fprintf(stderr, "relayctl: cannot format the command\n");
		return EXIT_FAIL;
	}
	if (queue_push(x, key, text) < 0)
		return EXIT_FAIL;
	if (x->o->no_wait || x->o->timeout_s <= 0) {
		snprintf(detail, sizeof(detail), "in %s", key);
		return report(x, OUT_QUEUED, t, cmd->request_id, text, detail);
	}
	out = await_result(x, key, text, cmd->request_id, detail, sizeof(detail));
	return report(x, out, t, cmd->request_id, text, detail);
}

static void set_deadline(const struct ctx *x, struct ctlq_cmd *cmd)
{
	cmd->deadline_ms = x->o->deadline_s < 0 ? 0 : x->now_ms + (uint64_t)x->o->deadline_s * 1000;
}

static int cmd_drain(struct ctx *x)
{
	struct ctlq_cmd cmd = {.verb = CTLQ_DRAIN};

	struct target t = {.kind = CTLQ_KIND_WORKER, .id = x->o->target};

	t.daemon_kind = t.kind, t.daemon_id = t.id;
	set_deadline(x, &cmd);
	return send_command(x, &t, &cmd);
}

static int cmd_undrain(struct ctx *x)
{
	struct ctlq_cmd cmd = {.verb = CTLQ_UNDRAIN};
	struct target t = {.kind = CTLQ_KIND_WORKER, .id = x->o->target};

	t.daemon_kind = t.kind, t.daemon_id = t.id;
	return send_command(x, &t, &cmd);
}

static int cmd_signaler_drain(struct ctx *x)
{
	struct ctlq_cmd cmd = {.verb = CTLQ_DRAIN};

	struct target t = {.kind = CTLQ_KIND_SIGNALER, .id = x->o->target};

	t.daemon_kind = t.kind, t.daemon_id = t.id;
	set_deadline(x, &cmd);
	return send_command(x, &t, &cmd);
}

/* hangup: the call's record names the signaler that owns it. */
static int cmd_hangup(struct ctx *x)
{
	struct ctlq_cmd cmd = {.verb = CTLQ_HANGUP};
	struct target t = {.verb = "hangup",
			   .kind = "call",
			   .id = x->o->target,
			   .daemon_kind = CTLQ_KIND_SIGNALER};
	char why[160], owner[STATE_ID_MAX + 1];
	redisReply *r;

	if (!state_id_valid(t.id))
		return report(x, OUT_UNKNOWN, &t, NULL, NULL, "not a valid call id");
	r = rcmd(x, "HGET %scall:%s signaler", STATE_KEY_PREFIX, t.id);
	if (!r)
		return EXIT_FAIL;
	if (r->type != REDIS_REPLY_STRING || r->len > STATE_ID_MAX || strlen(r->str) != r->len ||
	    !state_id_valid(r->str)) {
		if (r->type == REDIS_REPLY_NIL)
			snprintf(why, sizeof(why), "no call '%s' (%scall:%s)", t.id,
				 STATE_KEY_PREFIX, t.id);
		else
			snprintf(why, sizeof(why), "call '%s' names no valid signaler", t.id);
		freeReplyObject(r);
		return report(x, OUT_UNKNOWN, &t, NULL, NULL, why);
	}
	snprintf(owner, sizeof(owner), "%s", r->str);
	freeReplyObject(r);
	t.daemon_id = owner;
	snprintf(cmd.call_id, sizeof(cmd.call_id), "%s", t.id);
	return send_command(x, &t, &cmd);
}

/* relayctl keygen NAME: a CURVE key pair for a daemon (curve_keygen); Redis is not used. */
static int cmd_keygen(struct ctx *x)
{
	const char *dir = x->o->dir ? x->o->dir : ".";
	char pub[CURVE_KEY_LEN + 1], why[PATH_MAX + 128];

	if (curve_keygen(dir, x->o->target, x->o->force, pub, why, sizeof(why)) < 0) {
		fprintf(stderr, "relayctl keygen: %s\n", why);
		return EXIT_FAIL;
	}
	if (x->o->json) {
		struct json j = {0};
		char key_path[PATH_MAX + 80], pub_path[PATH_MAX + 80];

		snprintf(key_path, sizeof(key_path), "%s/%s.key", dir, x->o->target);
		snprintf(pub_path, sizeof(pub_path), "%s/%s.pub", dir, x->o->target);
		json_open(&j, '{');
		json_str(&j, "name", x->o->target);
		json_str(&j, "public_key", pub);
		json_str(&j, "key_file", key_path);
		json_str(&j, "public_file", pub_path);
		json_close(&j, '}');
	}
	else
		printf("%s/%s.key  key pair (mode 0600): CURVE_SECRET_KEY_FILE of the daemons using it\n"
		       "%s/%s.pub  public key %s: for the CURVE_ALLOWED_KEYS_FILE of their peers\n",
		       dir, x->o->target, dir, x->o->target, pub);
	return EXIT_OK;
}

/* Options and commands */

struct command {
	const char *name;
	int (*run)(struct ctx *x);
	bool target;   /* takes one argument */
	bool deadline; /* takes --deadline */
	bool offline;  /* needs no Redis; takes --dir and --force */
	const char *args;
	const char *help;
};

static const struct command commands[] = {
    {.name = "workers", .run = cmd_workers, .help = "list the mediaworkers"},
    {.name = "signalers", .run = cmd_signalers, .help = "list the signalers"},
    {.name = "calls", .run = cmd_calls, .help = "list the calls of every signaler"},
    {.name = "drain",
     .run = cmd_drain,
     .target = true,
     .deadline = true,
     .args = "WORKER [--deadline SEC]",
     .help = "the worker takes no new legs (ends the rest after SEC)"},
    {.name = "undrain",
     .run = cmd_undrain,
     .target = true,
     .args = "WORKER",
     .help = "the worker takes new legs again"},
    {.name = "hangup",
     .run = cmd_hangup,
     .target = true,
     .args = "CALL",
     .help = "the owning signaler ends the call"},
    {.name = "signaler-drain",
     .run = cmd_signaler_drain,
     .target = true,
     .deadline = true,
     .args = "SIGNALER [--deadline SEC]",
     .help = "the signaler accepts no new RTMP (ends its calls after SEC)"},
    {.name = "keygen",
     .run = cmd_keygen,
     .target = true,
     .offline = true,
     .args = "NAME [--dir DIR] [--force]",
     .help = "writes a CURVE key pair DIR/NAME.key (0600) and DIR/NAME.pub"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: relayctl [--redis HOST:PORT] [--password P] [--json] [--timeout SEC] "
		   "[--no-wait] COMMAND\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char left[64];

		snprintf(left, sizeof(left), "%s %s", commands[i].name,
			 commands[i].args ? commands[i].args : "");
		fprintf(f, "  %-42s %s\n", left, commands[i].help);
	}
	fprintf(f,
		"\noptions:\n"
		"  --redis HOST:PORT   Redis master ([v6addr]:port for IPv6); default REDIS_HOST,\n"
		"                      REDIS_PORT, or REDIS_SENTINELS + REDIS_MASTER_NAME\n"
		"  --password P        AUTH password (default REDIS_PASSWORD)\n"
		"  --json              machine-readable output\n"
		"  --timeout SEC       wait this long for the daemon's acknowledgment (default 5)\n"
		"  --no-wait           queue the command and return at once\n"
		"  --deadline SEC      drain: end the remaining calls after SEC seconds (0..%d)\n"
		"  --dir DIR           keygen: where the files go (default .)\n"
		"  --force             keygen: replace existing files\n"
		"\nWithout REDIS_* variables, --redis or --password, the settings of a `make run`\n"
		"stack are read from $RTMP2SIP_ENV, ./run/rtmp2sip.env or <repo>/run/rtmp2sip.env.\n"
		"\nexit status: 0 done, 1 failure (unknown target, Redis unreachable, refused, "
		"timeout), 2 usage\n",
		CTLQ_DEADLINE_MAX_S);
}

/* "host:port" or "[v6addr]:port" into @ep; 0 or -EINVAL. */
static int parse_endpoint(const char *s, struct redis_endpoint *ep)
{
	const char *colon, *host = s;
	size_t hlen;
	uint64_t port;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen > REDIS_HOST_MAX || !parse_u64(colon + 1, &port) || port < 1 ||
	    port > 65535)
		return -EINVAL;
	memcpy(ep->host, host, hlen);
	ep->host[hlen] = '\0';
	ep->port = (int)port;
	return 0;
}

static int parse_seconds(const char *s, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

enum {
	OPT_REDIS = 256,
	OPT_PASSWORD,
	OPT_JSON,
	OPT_TIMEOUT,
	OPT_NO_WAIT,
	OPT_DEADLINE,
	OPT_DIR,
	OPT_FORCE,
	OPT_HELP
};

/* Parses the command line; EXIT_OK, or EXIT_USAGE after saying why. */
static int parse_args(int argc, char **argv, struct opts *o, const struct command **cmd)
{
	static const struct option longopts[] = {
	    {"redis", required_argument, NULL, OPT_REDIS},
	    {"password", required_argument, NULL, OPT_PASSWORD},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"no-wait", no_argument, NULL, OPT_NO_WAIT},
	    {"deadline", required_argument, NULL, OPT_DEADLINE},
	    {"dir", required_argument, NULL, OPT_DIR},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	double v;
	int c;

	o->timeout_s = TIMEOUT_DEFAULT_S;
	o->deadline_s = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_REDIS:
			if (parse_endpoint(optarg, &o->cfg.master) < 0) {
				fprintf(stderr, "relayctl: --redis %s: not HOST:PORT\n", optarg);
				return EXIT_USAGE;
			}
			o->redis_given = true;
			break;
		case OPT_PASSWORD:
			if (strlen(optarg) > REDIS_PASSWORD_MAX) {
				fprintf(stderr, "relayctl: --password: longer than %d bytes\n",
					REDIS_PASSWORD_MAX);
				return EXIT_USAGE;
			}
			snprintf(o->cfg.password, sizeof(o->cfg.password), "%s", optarg);
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_TIMEOUT:
			if (parse_seconds(optarg, TIMEOUT_MAX_S, &o->timeout_s) < 0) {
				fprintf(stderr, "relayctl: --timeout %s: not seconds in 0..%.0f\n",
					optarg, TIMEOUT_MAX_S);
				return EXIT_USAGE;
			}
			break;
		case OPT_NO_WAIT:
			o->no_wait = true;
			break;
		case OPT_DEADLINE:
			if (parse_seconds(optarg, CTLQ_DEADLINE_MAX_S, &v) < 0 || v != (long)v) {
				fprintf(stderr,
					"relayctl: --deadline %s: not whole seconds in 0..%d\n",
					optarg, CTLQ_DEADLINE_MAX_S);
				return EXIT_USAGE;
			}
			o->deadline_s = (long)v;
			break;
		case OPT_DIR:
			o->dir = optarg;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			exit(EXIT_OK);
		default:
			fprintf(stderr, "relayctl: unknown option or missing value: %s\n",
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	o->command = argv[optind++];
	*cmd = NULL;
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, o->command) == 0)
			*cmd = &commands[i];
	if (!*cmd) {
		fprintf(stderr, "relayctl: unknown command '%s' (relayctl --help lists them)\n",
			o->command);
		return EXIT_USAGE;
	}
	if ((*cmd)->target && optind < argc)
		o->target = argv[optind++];
	if ((*cmd)->target && !o->target) {
		fprintf(stderr, "usage: relayctl %s %s\n", (*cmd)->name, (*cmd)->args);
		return EXIT_USAGE;
	}
	if (optind < argc) {
		fprintf(stderr, "relayctl %s: unexpected argument '%s'\n", (*cmd)->name,
			argv[optind]);
		return EXIT_USAGE;
	}
	if (o->deadline_s >= 0 && !(*cmd)->deadline) {
		fprintf(stderr, "relayctl %s: takes no --deadline\n", (*cmd)->name);
		return EXIT_USAGE;
	}
	if ((o->dir || o->force) && !(*cmd)->offline) {
		fprintf(stderr, "relayctl %s: takes no --dir or --force\n", (*cmd)->name);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* True when the command line or the environment says where Redis is. */
static bool redis_named(int argc, char **argv)
{
	static const char *const vars[] = {"REDIS_HOST",	  "REDIS_PORT", "REDIS_PASSWORD",
					   "REDIS_PASSWORD_FILE", "REDIS_USERNAME", "REDIS_DB",
					   "REDIS_SENTINELS",	  "REDIS_MASTER_NAME"};

	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strncmp(argv[i], "--redis", 7) == 0 || strncmp(argv[i], "--password", 10) == 0)
			return true;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (getenv(vars[i]))
			return true;
	return false;
}

/*
 * The settings of a `make run` stack (scripts/run.sh writes them, mode 0600): RTMP2SIP_ENV, or
 * run/rtmp2sip.env in the current directory, or in the repository whose build directory holds
 * this executable (<repo>/build/relayctl -> <repo>/run/rtmp2sip.env). 0 (none found is fine) or
 * -1 when a file exists but cannot be used (said on stderr).
 */
static int load_run_env(void)
{
	static const char *const names[] = {"REDIS_HOST",     "REDIS_PORT",	     "REDIS_DB",
					    "REDIS_USERNAME", "REDIS_PASSWORD_FILE", NULL};
	const char *given = getenv("RTMP2SIP_ENV");
	char exe[PATH_MAX], path[PATH_MAX + 32], why[PATH_MAX + 128], *slash;
	ssize_t n;

	if (given)
		snprintf(path, sizeof(path), "%s", given);
	else if (access("run/rtmp2sip.env", F_OK) == 0)
		snprintf(path, sizeof(path), "run/rtmp2sip.env");
	else if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/'); /* <repo>/build/relayctl -> <repo>/build */
		if (slash)
			*slash = '\0';
		slash = strrchr(exe, '/'); /* -> <repo> */
		if (!slash)
			return 0;
		*slash = '\0';
		snprintf(path, sizeof(path), "%s/run/rtmp2sip.env", exe);
		if (access(path, F_OK) != 0)
			return 0;
	} else {
		return 0;
	}
	if (config_env_file(path, names, why, sizeof(why)) < 0) {
		fprintf(stderr, "relayctl: %s (a `make run` environment file)\n", why);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct ctx x = {.o = &o};
	const struct command *cmd = NULL;
	int ret;

	log_init("relayctl", LOG_LVL_WARN);
	if (!redis_named(argc, argv) && load_run_env() < 0)
		return EXIT_USAGE;
	if (redis_config_from_env(&o.cfg) < 0) {
		fprintf(stderr, "relayctl: bad Redis settings in the environment (see above)\n");
		return EXIT_USAGE;
	}
	ret = parse_args(argc, argv, &o, &cmd);
	if (ret != EXIT_OK)
		return ret;
	if (cmd->offline)
		return cmd->run(&x);
	if (redis_open(&x) < 0) {
		ret = EXIT_FAIL;
		goto out_free;
	}
	x.now_ms = state_now_ms();
	ret = cmd->run(&x);
	fflush(stdout);
out_free:
	redisFree(x.c);
	return ret;
}
