/*
 * relayctl.c - the operator's tool: lists the workers, signalers and calls recorded in Redis,
 * and queues commands for a daemon (drain, undrain, hangup) through its command queue
 * (common/ctlq.h), waiting for the daemon's acknowledgment.
 *
 *   relayctl.c       options, the command table, main; Redis; the daemon commands
 *   relayctl_list.c  the lists: workers, signalers, calls
 *   relayctl_out.c   tables and JSON
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
 * client is for event loops). It only reads the documented keys (state.h, ctlq.h), never KEYS or
 * SCAN.
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
#include "relayctl_int.h"

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

#define TIMEOUT_DEFAULT_S 5.0
#define TIMEOUT_MAX_S	  3600.0

/* Numbers and durations */

bool parse_u64(const char *s, uint64_t *out)
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

uint64_t since(const struct ctx *x, uint64_t then_ms)
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

redisReply *rcmd(struct ctx *x, const char *fmt, ...)
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

redisReply *rget(struct ctx *x)
{
	void *r = NULL;

	if (redisGetReply(x->c, &r) != REDIS_OK) {
		fprintf(stderr, "relayctl: Redis at %s: %s\n", x->addr, x->c->errstr);
		return NULL;
	}
	return r;
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
