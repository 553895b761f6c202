/*
 * test_ctlq.c - the daemon command queue: the command and result texts (strict parsing, bounds,
 * round trips), and the queue itself against a real redis-server (started here on a free port;
 * SKIP when redis-server is not installed): handlers called with the parsed arguments, results
 * written with their TTL, malformed and unknown commands answered "invalid" without touching
 * anything else, bursts, Redis going away and coming back, destroy from inside a handler.
 */
#include "ctlq.h"
#include "evloop.h"
#include "harness.h"
#include "log.h"
#include "redis.h"
#include "redis_server.h"
#include "state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const uint64_t NOW = UINT64_C(1700000000000); /* a fixed wall clock for the parser tests */

/* Texts */

static int parse(const char *text, const char *kind, struct ctlq_cmd *cmd, char *err)
{
	return ctlq_parse(text, strlen(text), kind, NOW, cmd, err, 160);
}

static void test_parse_valid(void)
{
	struct ctlq_cmd c;
	char err[160];

	CHECK_EQ_INT(parse("r1 drain 0", "worker", &c, err), 0);
	CHECK_EQ_STR(c.request_id, "r1");
	CHECK_EQ_INT(c.verb, CTLQ_DRAIN);
	CHECK_EQ_INT(c.deadline_ms, 0);
	CHECK_EQ_INT(parse("r-2.x@y_z drain 1700000030000", "signaler", &c, err), 0);
	CHECK_EQ_STR(c.request_id, "r-2.x@y_z");
	CHECK(c.deadline_ms == 1700000030000ull);
	CHECK_EQ_INT(parse("r3 undrain", "worker", &c, err), 0);
	CHECK_EQ_INT(c.verb, CTLQ_UNDRAIN);
	CHECK_EQ_INT(parse("r4 hangup sig-1.a1b2.7", "signaler", &c, err), 0);
	CHECK_EQ_INT(c.verb, CTLQ_HANGUP);
	CHECK_EQ_STR(c.call_id, "sig-1.a1b2.7");
	/* A deadline in the past is valid (it means "now"); exactly 7 days ahead too. */
	CHECK_EQ_INT(parse("r5 drain 1", "worker", &c, err), 0);
	char text[64];
	snprintf(text, sizeof(text), "r6 drain %" PRIu64, NOW + UINT64_C(604800000));
	CHECK_EQ_INT(parse(text, "worker", &c, err), 0);
	/* Not NUL-terminated: only @len bytes count. */
	CHECK_EQ_INT(ctlq_parse("r7 undrainXYZ", 10, "worker", NOW, &c, err, sizeof(err)), 0);
	CHECK_EQ_INT(c.verb, CTLQ_UNDRAIN);
}

struct bad_case {
	const char *text;
	const char *kind;
	const char *request_id; /* what the parser still recovers for the answer */
	const char *why;	/* a substring of the error */
};

static void test_parse_invalid(void)
{
	static const struct bad_case cases[] = {
	    {"", "worker", "", "empty word"},
	    {"r1", "worker", "r1", "no verb"},
	    {"r1 ", "worker", "r1", "empty word"},
	    {" r1 drain 0", "worker", "", "empty word"},
	    {"r1  drain 0", "worker", "r1", "empty word"},
	    {"r1 drain 0 ", "worker", "r1", "empty word"},
	    {"r1 drain\t0", "worker", "r1", "byte 0x09"},
	    {"r1 drain 0\n", "worker", "r1", "byte 0x0a"},
	    {"r1 dr\xc3\xa4in 0", "worker", "r1", "byte 0xc3"},
	    {"r1 reboot", "worker", "r1", "unknown verb"},
	    {"r1 DRAIN 0", "worker", "r1", "unknown verb"},
	    {"r1 hangup c1", "worker", "r1", "not taken by a worker"},
	    {"r1 undrain", "signaler", "r1", "not taken by a signaler"},
	    {"r1 drain", "worker", "r1", "takes 1 argument, got 0"},
	    {"r1 drain 0 0", "worker", "r1", "takes 1 argument, got 2"},
	    {"r1 undrain now", "worker", "r1", "takes 0 arguments, got 1"},
	    {"r1 hangup a b c d e", "signaler", "r1", "takes 1 argument, got 5"},
	    {"r1 drain -1", "worker", "r1", "not a decimal"},
	    {"r1 drain +5", "worker", "r1", "not a decimal"},
	    {"r1 drain 01", "worker", "r1", "not a decimal"},
	    {"r1 drain 1e3", "worker", "r1", "not a decimal"},
	    {"r1 drain 0x10", "worker", "r1", "not a decimal"},
	    {"r1 drain 18446744073709551616", "worker", "r1", "not a decimal"},
	    {"r1 drain 999999999999999999999", "worker", "r1", "not a decimal"},
	    {"r1 drain 18446744073709551615", "worker", "r1", "more than 604800 s ahead"},
	    {"r1 drain 1700604800001", "worker", "r1", "more than 604800 s ahead"},
	    {"r1 hangup call/1", "signaler", "r1", "call id"},
	    {"r1 hangup "
	     "a123456789012345678901234567890123456789012345678901234567890123456",
	     "signaler", "r1", "call id"},
	    {"r/1 drain 0", "worker", "", "request id"},
	    {"a1234567890123456789012345678901234567890123456789012345678901234 drain 0", "worker",
	     "", "request id"},
	    {"r1 drain 0", "proxy", "", "unknown daemon kind"},
	};
	struct ctlq_cmd c;
	char err[160];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *k = &cases[i];

		err[0] = '\0';
		if (parse(k->text, k->kind, &c, err) != -EINVAL) {
			fprintf(stderr, "  accepted: \"%s\" (%s)\n", k->text, k->kind);
			CHECK(!"malformed command accepted");
			continue;
		}
		CHECK_EQ_STR(c.request_id, k->request_id);
		if (!strstr(err, k->why)) {
			fprintf(stderr, "  \"%s\": error \"%s\", expected \"%s\"\n", k->text, err,
				k->why);
			CHECK(!"unexpected error text");
		}
	}
}

static void test_parse_bounds(void)
{
	char text[CTLQ_CMD_MAX + 64], err[160];
	struct ctlq_cmd c;

	/* 64-byte ids are the longest; a 256-byte command parses, 257 bytes do not. */
	memset(text, 'a', 64);
	snprintf(text + 64, sizeof(text) - 64, " hangup ");
	memset(text + 72, 'b', 64);
	text[136] = '\0';
	CHECK_EQ_INT(parse(text, "signaler", &c, err), 0);
	CHECK_EQ_INT(strlen(c.request_id), 64);
	CHECK_EQ_INT(strlen(c.call_id), 64);

	memset(text, '0', sizeof(text));
	memcpy(text, "r1 drain 1", 10);
	text[CTLQ_CMD_MAX] = '\0'; /* "r1 drain 1000...0": too large a number, but 256 bytes */
	CHECK_EQ_INT(parse(text, "worker", &c, err), -EINVAL);
	CHECK(strstr(err, "decimal") != NULL);
	text[CTLQ_CMD_MAX] = '0';
	text[CTLQ_CMD_MAX + 1] = '\0';
	CHECK_EQ_INT(parse(text, "worker", &c, err), -EINVAL);
	CHECK(strstr(err, "longer than 256") != NULL);
	CHECK_EQ_STR(c.request_id, "r1"); /* still answerable */

	/* Embedded NUL bytes are refused, not cut at. */
	CHECK_EQ_INT(ctlq_parse("r1 undrain\0x", 12, "worker", NOW, &c, err, sizeof(err)), -EINVAL);
	/* A tiny error buffer is never overrun. */
	char small[4] = "xyz";
	CHECK_EQ_INT(ctlq_parse("r1 reboot", 9, "worker", NOW, &c, small, sizeof(small)), -EINVAL);
	CHECK_EQ_INT(strlen(small), 3);
}

static void test_format(void)
{
	struct ctlq_cmd c = {.request_id = "req.1", .verb = CTLQ_DRAIN, .deadline_ms = NOW + 30000};
	struct ctlq_cmd back;
	char buf[CTLQ_CMD_MAX + 1], err[160];
	int n;

	n = ctlq_format(&c, "worker", NOW, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "req.1 drain 1700000030000");
	CHECK_EQ_INT(n, (int)strlen(buf));
	CHECK_EQ_INT(ctlq_parse(buf, (size_t)n, "worker", NOW, &back, err, sizeof(err)), 0);
	CHECK(back.deadline_ms == c.deadline_ms);

	c.verb = CTLQ_UNDRAIN;
	CHECK(ctlq_format(&c, "worker", NOW, buf, sizeof(buf)) > 0);
	CHECK_EQ_STR(buf, "req.1 undrain");
	CHECK_EQ_INT(ctlq_format(&c, "signaler", NOW, buf, sizeof(buf)), -EINVAL);

	c.verb = CTLQ_HANGUP;
	snprintf(c.call_id, sizeof(c.call_id), "sig-1.n.3");
	CHECK(ctlq_format(&c, "signaler", NOW, buf, sizeof(buf)) > 0);
	CHECK_EQ_STR(buf, "req.1 hangup sig-1.n.3");
	snprintf(c.call_id, sizeof(c.call_id), "bad id");
	CHECK_EQ_INT(ctlq_format(&c, "signaler", NOW, buf, sizeof(buf)), -EINVAL);

	c.verb = CTLQ_DRAIN;
	c.deadline_ms = NOW + UINT64_C(604800001);
	CHECK_EQ_INT(ctlq_format(&c, "worker", NOW, buf, sizeof(buf)), -EINVAL);
	c.deadline_ms = 0;
	CHECK_EQ_INT(ctlq_format(&c, "worker", NOW, buf, 8), -EINVAL); /* does not fit */
	snprintf(c.request_id, sizeof(c.request_id), "r 1");
	CHECK_EQ_INT(ctlq_format(&c, "worker", NOW, buf, sizeof(buf)), -EINVAL);
	c.verb = (enum ctlq_verb)7;
	snprintf(c.request_id, sizeof(c.request_id), "r1");
	CHECK_EQ_INT(ctlq_format(&c, "worker", NOW, buf, sizeof(buf)), -EINVAL);
}

static void test_result_texts(void)
{
	char buf[CTLQ_RESULT_MAX], detail[CTLQ_DETAIL_MAX + 1], longer[400];
	enum ctlq_status st;

	CHECK_EQ_INT(ctlq_result_format(CTLQ_OK, NULL, buf, sizeof(buf)), 2);
	CHECK_EQ_STR(buf, "ok");
	CHECK_EQ_INT(ctlq_result_parse(buf, 2, &st, detail, sizeof(detail)), 0);
	CHECK_EQ_INT(st, CTLQ_OK);
	CHECK_EQ_STR(detail, "");

	ctlq_result_format(CTLQ_UNKNOWN, "no call c1\n", buf, sizeof(buf));
	CHECK_EQ_STR(buf, "unknown no call c1?");
	CHECK_EQ_INT(ctlq_result_parse(buf, strlen(buf), &st, detail, sizeof(detail)), 0);
	CHECK_EQ_INT(st, CTLQ_UNKNOWN);
	CHECK_EQ_STR(detail, "no call c1?");

	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	ctlq_result_format(CTLQ_FAILED, longer, buf, sizeof(buf));
	CHECK_EQ_INT(strlen(buf), 7 + CTLQ_DETAIL_MAX);
	CHECK_EQ_INT(ctlq_result_parse(buf, strlen(buf), &st, detail, sizeof(detail)), 0);
	CHECK_EQ_INT(st, CTLQ_FAILED);
	CHECK_EQ_INT(strlen(detail), CTLQ_DETAIL_MAX);

	CHECK_EQ_INT(ctlq_result_parse("done", 4, &st, detail, sizeof(detail)), -EINVAL);
	CHECK_EQ_INT(ctlq_result_parse("ok ", 3, &st, detail, sizeof(detail)), -EINVAL);
	CHECK_EQ_INT(ctlq_result_parse("ok a\x01", 5, &st, detail, sizeof(detail)), -EINVAL);
	CHECK_EQ_INT(ctlq_result_parse("", 0, &st, detail, sizeof(detail)), -EINVAL);
	/* A small detail buffer gets a cut copy. */
	char small[4];
	CHECK_EQ_INT(ctlq_result_parse("invalid abcdef", 14, &st, small, sizeof(small)), 0);
	CHECK_EQ_STR(small, "abc");
}

static void test_keys(void)
{
	char key[CTLQ_KEY_MAX], id[STATE_ID_MAX + 1];

	CHECK_EQ_INT(ctlq_key(key, sizeof(key), "worker", "mw-1"), 0);
	CHECK_EQ_STR(key, "rs:v1:cmd:worker:mw-1");
	CHECK_EQ_INT(ctlq_key(key, sizeof(key), "signaler", "sig-a"), 0);
	CHECK_EQ_STR(key, "rs:v1:cmd:signaler:sig-a");
	CHECK_EQ_INT(ctlq_key(key, sizeof(key), "leg", "x"), -EINVAL);
	CHECK_EQ_INT(ctlq_key(key, sizeof(key), "worker", "a:b"), -EINVAL);
	CHECK_EQ_INT(ctlq_key(key, 10, "worker", "mw-1"), -EINVAL);
	memset(id, 'w', STATE_ID_MAX);
	id[STATE_ID_MAX] = '\0';
	CHECK_EQ_INT(ctlq_key(key, sizeof(key), "signaler", id), 0);
	CHECK_EQ_INT(ctlq_result_key(key, sizeof(key), id), 0);
	CHECK_EQ_INT(ctlq_result_key(key, sizeof(key), "r1"), 0);
	CHECK_EQ_STR(key, "rs:v1:cmd:result:r1");
	CHECK(ctlq_verb_allowed("worker", CTLQ_DRAIN));
	CHECK(ctlq_verb_allowed("worker", CTLQ_UNDRAIN));
	CHECK(!ctlq_verb_allowed("worker", CTLQ_HANGUP));
	CHECK(ctlq_verb_allowed("signaler", CTLQ_HANGUP));
	CHECK(ctlq_verb_allowed("signaler", CTLQ_DRAIN));
	CHECK(!ctlq_verb_allowed("signaler", CTLQ_UNDRAIN));
	CHECK(!ctlq_verb_allowed(NULL, CTLQ_DRAIN));
	CHECK_EQ_STR(ctlq_verb_name(CTLQ_HANGUP), "hangup");
	CHECK_EQ_STR(ctlq_status_name((enum ctlq_status)9), "?");
}

/* redis-server */

static char tmpdir[] = "/tmp/test_ctlq.XXXXXX";
static pid_t server_pid;
static int server_port;
static struct evloop *loop;

static pid_t start_server(int port)
{
	return redis_server_start(tmpdir, port, NULL);
}

static void stop_server(void)
{
	redis_server_stop(server_pid, SIGTERM);
	server_pid = 0;
}

static void cleanup(void)
{
	stop_server();
	redis_server_rmdir(tmpdir);
}

static struct redis *connect_redis(void)
{
	struct redis *r = redis_new(loop, "127.0.0.1", server_port, NULL, 0);

	if (r)
		RUN_UNTIL(redis_is_up(r), 3000);
	return r;
}

/* Runs one command (argv of C strings) and waits for its reply. */
static struct cmd_reply run(struct redis *r, int argc, const char **argv)
{
	return redis_cmd_argv(loop, r, argc, argv);
}

static struct cmd_reply run2(struct redis *r, const char *a, const char *b)
{
	const char *argv[] = {a, b};

	return run(r, 2, argv);
}

static struct cmd_reply run3(struct redis *r, const char *a, const char *b, const char *c)
{
	const char *argv[] = {a, b, c};

	return run(r, 3, argv);
}

/* The result of @request_id, "" once RUN_UNTIL gave up; *ttl its TTL. */
static void result_of(struct redis *r, const char *request_id, char *out, size_t size,
		      long long *ttl)
{
	char key[CTLQ_KEY_MAX];
	struct cmd_reply x;

	ctlq_result_key(key, sizeof(key), request_id);
	out[0] = '\0';
	for (uint64_t t0 = mono_ms(); mono_ms() - t0 < 3000;) {
		x = run2(r, "EXISTS", key);
		if (x.err == 0 && x.integer == 1)
			break;
		RUN_UNTIL(false, 20);
	}
	if (ttl)
		*ttl = run2(r, "TTL", key).integer;
	x = run2(r, "LPOP", key);
	if (x.err == 0 && x.type == REDIS_REPLY_STRING) {
		size_t n = strnlen(x.str, size - 1);

		memcpy(out, x.str, n);
		out[n] = '\0';
	}
}

/* Handlers */

struct calls {
	int drain, undrain, hangup;
	struct ctlq_cmd last;
	int ret;	       /* what the handlers return */
	const char *detail;    /* what they write to the detail */
	struct ctlq **destroy; /* when set, a handler destroys this queue */
};

static int record(struct calls *c, const struct ctlq_cmd *cmd, char *detail, size_t size)
{
	c->last = *cmd;
	if (c->detail)
		snprintf(detail, size, "%s", c->detail);
	if (c->destroy)
		ctlq_destroy(c->destroy);
	return c->ret;
}

static int on_drain(const struct ctlq_cmd *cmd, char *detail, size_t size, void *arg)
{
	((struct calls *)arg)->drain++;
	return record(arg, cmd, detail, size);
}

static int on_undrain(const struct ctlq_cmd *cmd, char *detail, size_t size, void *arg)
{
	((struct calls *)arg)->undrain++;
	return record(arg, cmd, detail, size);
}

static int on_hangup(const struct ctlq_cmd *cmd, char *detail, size_t size, void *arg)
{
	((struct calls *)arg)->hangup++;
	return record(arg, cmd, detail, size);
}

static const struct ctlq_handlers worker_handlers = {.drain = on_drain, .undrain = on_undrain};
static const struct ctlq_handlers signaler_handlers = {.drain = on_drain, .hangup = on_hangup};

static void push(struct redis *r, const char *key, const char *text)
{
	struct cmd_reply x = run3(r, "RPUSH", key, text);

	CHECK_EQ_INT(x.err, 0);
}

static void test_new_invalid(void)
{
	struct redis *r = connect_redis();
	struct calls c = {0};

	errno = 0;
	CHECK(!ctlq_new(loop, r, "proxy", "w1", &worker_handlers, &c));
	CHECK_EQ_INT(errno, EINVAL);
	CHECK(!ctlq_new(loop, r, "worker", "w 1", &worker_handlers, &c));
	CHECK(!ctlq_new(loop, r, "worker", "", &worker_handlers, &c));
	CHECK(!ctlq_new(loop, r, "worker", "w1", NULL, &c));
	CHECK(!ctlq_new(loop, NULL, "worker", "w1", &worker_handlers, &c));
	ctlq_destroy(NULL);
	struct ctlq *none = NULL;
	ctlq_destroy(&none);
	redis_destroy(&r);
}

static void test_worker_queue(void)
{
	struct redis *r = connect_redis();
	struct calls c = {.detail = "draining 3 legs"};
	struct ctlq *q = ctlq_new(loop, r, "worker", "mw-1", &worker_handlers, &c);
	char res[CTLQ_RESULT_MAX + 1], cmd[64];
	long long ttl = 0;
	uint64_t deadline = state_now_ms() + 60000;

	CHECK(q != NULL);
	CHECK(r != NULL && redis_is_up(r));
	snprintf(cmd, sizeof(cmd), "t1 drain %" PRIu64, deadline);
	push(r, "rs:v1:cmd:worker:mw-1", cmd);
	RUN_UNTIL(c.drain == 1, 2000);
	CHECK_EQ_INT(c.drain, 1);
	CHECK_EQ_STR(c.last.request_id, "t1");
	CHECK(c.last.deadline_ms == deadline);
	result_of(r, "t1", res, sizeof(res), &ttl);
	CHECK_EQ_STR(res, "ok draining 3 legs");
	CHECK(ttl > 0 && ttl <= CTLQ_RESULT_TTL_S);

	/* Another worker's queue is not this one's. */
	push(r, "rs:v1:cmd:worker:mw-2", "t2 undrain");
	c.detail = NULL;
	push(r, "rs:v1:cmd:worker:mw-1", "t3 undrain");
	RUN_UNTIL(c.undrain == 1, 2000);
	CHECK_EQ_INT(c.undrain, 1);
	CHECK_EQ_STR(c.last.request_id, "t3");
	result_of(r, "t3", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "ok");
	CHECK_EQ_INT(run2(r, "LLEN", "rs:v1:cmd:worker:mw-2").integer, 1);

	/* The handler's errors map to results. */
	c.ret = -ENOENT;
	push(r, "rs:v1:cmd:worker:mw-1", "t4 drain 0");
	result_of(r, "t4", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "unknown no such target");
	c.ret = -EBUSY;
	push(r, "rs:v1:cmd:worker:mw-1", "t5 drain 0");
	result_of(r, "t5", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "failed Device or resource busy");
	c.ret = -EINVAL;
	c.detail = "deadline\tbefore start";
	push(r, "rs:v1:cmd:worker:mw-1", "t6 drain 0");
	result_of(r, "t6", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "invalid deadline?before start");
	CHECK_EQ_INT(ctlq_taken(q), 5);

	ctlq_destroy(&q);
	CHECK(q == NULL);
	/* Nothing is taken once destroyed. */
	push(r, "rs:v1:cmd:worker:mw-1", "t7 undrain");
	RUN_UNTIL(false, 1200);
	CHECK_EQ_INT(run2(r, "LLEN", "rs:v1:cmd:worker:mw-1").integer, 1);
	CHECK_EQ_INT(c.undrain, 1);
	run2(r, "DEL", "rs:v1:cmd:worker:mw-1");
	redis_destroy(&r);
}

static void test_malformed_answered(void)
{
	struct redis *r = connect_redis();
	struct calls c = {0};
	struct ctlq *q = ctlq_new(loop, r, "signaler", "sig-1", &signaler_handlers, &c);
	const char *key = "rs:v1:cmd:signaler:sig-1";
	char res[CTLQ_RESULT_MAX + 1], big[1200];

	CHECK(q != NULL);
	push(r, key, "m1 reboot now");
	push(r, key, "m2 undrain"); /* a worker's verb */
	push(r, key, "m3 hangup bad/call");
	push(r, key, "m4 drain 99999999999999999999");
	push(r, key, "no/id drain 0"); /* cannot be answered: only logged */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "m5 hangup ", 10);
	push(r, key, big);
	push(r, key, "m6 hangup sig-1.c.1"); /* a good one after all the bad ones */
	RUN_UNTIL(c.hangup == 1, 3000);
	CHECK_EQ_INT(c.hangup, 1);
	CHECK_EQ_STR(c.last.call_id, "sig-1.c.1");
	CHECK_EQ_INT(c.drain, 0);
	result_of(r, "m1", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "invalid unknown verb");
	result_of(r, "m2", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "invalid verb undrain is not taken by a signaler");
	result_of(r, "m3", res, sizeof(res), NULL);
	CHECK(strncmp(res, "invalid hangup: call id", 23) == 0);
	result_of(r, "m4", res, sizeof(res), NULL);
	CHECK(strncmp(res, "invalid drain: deadline", 23) == 0);
	result_of(r, "m5", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "invalid command of 1199 bytes, longer than 256");
	result_of(r, "m6", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "ok");
	CHECK_EQ_INT(run2(r, "EXISTS", "rs:v1:cmd:result:no/id").integer, 0);
	CHECK_EQ_INT(ctlq_taken(q), 7);
	CHECK_EQ_INT(run2(r, "LLEN", key).integer, 0);

	/* A key of the wrong type: the LPOP error is logged, the queue keeps polling. */
	run3(r, "SET", key, "not a list");
	RUN_UNTIL(false, 1200);
	run2(r, "DEL", key);
	push(r, key, "m7 drain 0");
	RUN_UNTIL(c.drain == 1, 2000);
	CHECK_EQ_INT(c.drain, 1);

	/* A daemon without a handler for a verb it could take answers "invalid". */
	static const struct ctlq_handlers none = {0};
	struct ctlq *q2 = ctlq_new(loop, r, "worker", "mw-9", &none, &c);
	push(r, "rs:v1:cmd:worker:mw-9", "m8 undrain");
	result_of(r, "m8", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "invalid verb not supported by this daemon");
	CHECK_EQ_INT(c.undrain, 0);
	ctlq_destroy(&q2);
	ctlq_destroy(&q);
	redis_destroy(&r);
}

static void test_burst(void)
{
	struct redis *r = connect_redis();
	struct calls c = {0};
	struct ctlq *q = ctlq_new(loop, r, "worker", "mw-b", &worker_handlers, &c);
	const char *key = "rs:v1:cmd:worker:mw-b";
	char text[32];
	uint64_t t0;

	/* 100 commands (a full queue) are taken within a few polls, in order. */
	for (int i = 0; i < CTLQ_QUEUE_MAX; i++) {
		snprintf(text, sizeof(text), "b%d undrain", i);
		push(r, key, text);
	}
	t0 = mono_ms();
	RUN_UNTIL(c.undrain == CTLQ_QUEUE_MAX, 5000);
	CHECK_EQ_INT(c.undrain, CTLQ_QUEUE_MAX);
	CHECK_EQ_STR(c.last.request_id, "b99");
	CHECK(mono_ms() - t0 < (uint64_t)CTLQ_POLL_MS * (CTLQ_QUEUE_MAX / CTLQ_BATCH_MAX + 2));
	ctlq_destroy(&q);
	redis_destroy(&r);
}

static void test_destroy_in_handler(void)
{
	struct redis *r = connect_redis();
	struct calls c = {0};
	struct ctlq *q = ctlq_new(loop, r, "worker", "mw-d", &worker_handlers, &c);
	const char *key = "rs:v1:cmd:worker:mw-d";
	char res[CTLQ_RESULT_MAX + 1];

	c.destroy = &q;
	push(r, key, "d1 undrain");
	push(r, key, "d2 undrain");
	RUN_UNTIL(c.undrain == 1, 2000);
	CHECK(q == NULL);
	result_of(r, "d1", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "ok");
	RUN_UNTIL(false, 1200);
	CHECK_EQ_INT(c.undrain, 1);
	CHECK_EQ_INT(run2(r, "LLEN", key).integer, 1);
	run2(r, "DEL", key);
	redis_destroy(&r);
}

static void test_redis_down(void)
{
	struct redis *r = connect_redis();
	struct calls c = {0};
	struct ctlq *q = ctlq_new(loop, r, "worker", "mw-r", &worker_handlers, &c);
	const char *key = "rs:v1:cmd:worker:mw-r";
	char res[CTLQ_RESULT_MAX + 1];

	/* Redis goes away: polls are skipped quietly; it comes back (empty): polling resumes. */
	stop_server();
	RUN_UNTIL(!redis_is_up(r), 3000);
	CHECK(!redis_is_up(r));
	RUN_UNTIL(false, 1500);
	server_pid = start_server(server_port);
	RUN_UNTIL(redis_is_up(r), 5000);
	CHECK(redis_is_up(r));
	push(r, key, "u1 drain 0");
	RUN_UNTIL(c.drain == 1, 2000);
	CHECK_EQ_INT(c.drain, 1);
	result_of(r, "u1", res, sizeof(res), NULL);
	CHECK_EQ_STR(res, "ok");
	/* Destroyed with an LPOP in flight (Redis stopped, so it stays in flight): cancelled, and
	 * the late reply reaches nothing freed. */
	kill(server_pid, SIGSTOP);
	RUN_UNTIL(redis_inflight(r) > 0, CTLQ_POLL_MS + 500);
	CHECK(redis_inflight(r) > 0);
	ctlq_destroy(&q);
	kill(server_pid, SIGCONT);
	RUN_UNTIL(false, 300);
	CHECK(redis_is_up(r));
	redis_destroy(&r);
}

int main(void)
{
	static const char *const vars[] = {"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD",
					   "REDIS_SENTINELS", "REDIS_MASTER_NAME"};

	signal(SIGPIPE, SIG_IGN);
	log_init("test_ctlq", LOG_LVL_ERROR);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	TEST_RUN(test_parse_valid);
	TEST_RUN(test_parse_invalid);
	TEST_RUN(test_parse_bounds);
	TEST_RUN(test_format);
	TEST_RUN(test_result_texts);
	TEST_RUN(test_keys);
	if (!have_redis_server()) {
		printf("SKIP test_ctlq_redis: redis-server not found in PATH (install "
		       "redis-server)\n");
		return TEST_DONE();
	}
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	atexit(cleanup);
	loop = evloop_new();
	server_port = free_port();
	server_pid = start_server(server_port);
	if (!port_open(server_port)) {
		printf("FAIL redis-server: could not start on port %d\n", server_port);
		return 1;
	}
	TEST_RUN(test_new_invalid);
	TEST_RUN(test_worker_queue);
	TEST_RUN(test_malformed_answered);
	TEST_RUN(test_burst);
	TEST_RUN(test_destroy_in_handler);
	TEST_RUN(test_redis_down);
	evloop_destroy(&loop);
	return TEST_DONE();
}
