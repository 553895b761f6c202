/*
 * test_redis.c - the async Redis client against a real redis-server (started here on free ports;
 * the tests print SKIP when redis-server is not installed): connect, in-flight bound,
 * cancellation (of state operations too), destroy from a callback, stall timeout, restart (an
 * owner rewrites its records into the empty Redis), AUTH, sentinel, configuration. The state
 * records are tested in test_state.c.
 */
#include "evloop.h"
#include "harness.h"
#include "log.h"
#include "redis.h"
#include "redis_fixture.h"
#include "redis_server.h"
#include "state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

/* Tests */

static void test_connect(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct cmd_reply res;

	CHECK(r != NULL);
	CHECK_EQ_INT(c.up, 1);
	CHECK(redis_is_up(r));
	res = cmd(r, "PING");
	CHECK_EQ_INT(res.err, 0);
	CHECK(res.type == REDIS_REPLY_STATUS && strcmp(res.str, "PONG") == 0);
	res = cmd(r, "NOSUCHCOMMAND x");
	CHECK_EQ_INT(res.err, -EREMOTEIO);
	CHECK(strstr(res.str, "unknown command") != NULL);
	redis_destroy(&r);
	CHECK(r == NULL);
	CHECK_EQ_INT(c.down, 0); /* destroy does not call listeners */
}

static void count_cb(struct redis *r, int err, const redisReply *reply, void *arg)
{
	int *n = arg;

	(void)r;
	(void)reply;
	n[0]++;
	if (err == -ECANCELED)
		n[1]++;
	else if (err == 0)
		n[2]++;
}

static void test_inflight_bound(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 0, 50);
	int n[3] = {0}, accepted = 0, refused = 0;

	CHECK(redis_is_up(r));
	for (int i = 0; i < 60; i++) {
		int ret = redis_command(r, count_cb, n, "PING");

		if (ret == 0)
			accepted++;
		else if (ret == -EAGAIN)
			refused++;
	}
	CHECK_EQ_INT(accepted, 50);
	CHECK_EQ_INT(refused, 10);
	CHECK_EQ_INT(redis_inflight(r), 50);
	RUN_UNTIL(n[0] == 50, 3000);
	CHECK_EQ_INT(n[2], 50);
	CHECK_EQ_INT(redis_inflight(r), 0);
	CHECK_EQ_INT(redis_command(r, count_cb, n, "PING"), 0);
	RUN_UNTIL(n[0] == 51, 3000);
	redis_destroy(&r);
}

static void test_cancel(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	int n[3] = {0}, other[3] = {0};
	struct legres l = {0};
	struct recres x = {0};
	struct done d = {0};

	CHECK_EQ_INT(redis_command(r, count_cb, n, "PING"), 0);
	CHECK_EQ_INT(redis_command(r, count_cb, other, "PING"), 0);
	redis_cancel(r, n);
	CHECK_EQ_INT(n[0], 1);
	CHECK_EQ_INT(n[1], 1);
	RUN_UNTIL(other[0] == 1, 3000);
	CHECK_EQ_INT(n[0], 1); /* the late reply is discarded */
	CHECK_EQ_INT(other[2], 1);

	CHECK_EQ_INT(state_leg_read(r, "leg-1", leg_cb, &l), 0);
	state_cancel(r, &l);
	CHECK_EQ_INT(l.calls, 1);
	CHECK_EQ_INT(l.err, -ECANCELED);
	CHECK_EQ_INT(state_call_read(r, "sig-1.n1.1", call_cb, &x), 0);
	CHECK_EQ_INT(state_reg_read(r, "alice@example.com", reg_cb, &x), 0);
	CHECK_EQ_INT(state_call_delete(r, "sig-1.n1.1", "sig-9", done_cb, &d), 0);
	state_cancel(r, &x);
	CHECK_EQ_INT(x.calls, 2);
	CHECK_EQ_INT(x.err, -ECANCELED);
	CHECK_EQ_INT(d.calls, 0);
	RUN_UNTIL(redis_inflight(r) == 0, 3000);
	CHECK_EQ_INT(l.calls, 1);
	CHECK_EQ_INT(x.calls, 2);
	CHECK_EQ_INT(d.calls, 1);
	CHECK_EQ_INT(d.err, 0);
	redis_destroy(&r);
}

struct destroy_ctx {
	struct redis *r;
	int calls, cancelled, ok;
};

static void destroy_in_cb(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct destroy_ctx *d = arg;

	(void)reply;
	d->calls++;
	if (err == -ECANCELED)
		d->cancelled++;
	if (err == 0) {
		d->ok++;
		redis_destroy(&d->r); /* from inside the client's own callback */
		CHECK(redis_command(r, NULL, NULL, "PING") < 0);
	}
}

static void test_destroy_in_callback(void)
{
	struct counts c = {0}, c2 = {0};
	struct destroy_ctx d = {0};
	int n[3] = {0};

	d.r = connect_main(&c, 1000, 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(redis_command(d.r, destroy_in_cb, &d, "PING"), 0);
	RUN_UNTIL(d.r == NULL, 3000);
	CHECK(d.r == NULL);
	CHECK_EQ_INT(d.ok, 1);
	CHECK_EQ_INT(d.cancelled, 4);
	CHECK_EQ_INT(d.calls, 5);
	RUN_UNTIL(false, 100); /* the deferred free runs; ASan checks the rest */
	CHECK_EQ_INT(d.calls, 5);

	/* Destroy with requests in flight: each completes with -ECANCELED before it returns. */
	d.r = connect_main(&c2, 1000, 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(redis_command(d.r, count_cb, n, "PING"), 0);
	redis_destroy(&d.r);
	CHECK_EQ_INT(n[0], 3);
	CHECK_EQ_INT(n[1], 3);
}

static void test_stall_timeout(void)
{
	struct redis_config cfg;
	struct counts c = {0};
	struct cmd_reply res = {0};
	struct redis *r;
	uint64_t t0;

	redis_config_defaults(&cfg);
	cfg.master.port = main_port;
	cfg.command_timeout_ms = 300;
	cfg.connect_timeout_ms = 500;
	r = redis_new_config(loop, &cfg);
	redis_add_listener(r, on_up, on_down, &c);
	RUN_UNTIL(c.up == 1, 3000);
	CHECK(redis_is_up(r));
	kill(main_pid, SIGSTOP);
	t0 = mono_ms();
	CHECK_EQ_INT(redis_command(r, cmd_reply_cb, &res, "PING"), 0);
	RUN_UNTIL(res.done, 3000);
	CHECK_EQ_INT(res.err, -ETIMEDOUT);
	CHECK(mono_ms() - t0 >= 300 && mono_ms() - t0 < 1500);
	CHECK_EQ_INT(c.down, 1);
	CHECK(!redis_is_up(r));
	CHECK_EQ_INT(redis_command(r, NULL, NULL, "PING"), -ENOTCONN);
	RUN_UNTIL(false, 700); /* reconnects; the stopped server's handshake times out */
	CHECK_EQ_INT(c.up, 1);
	kill(main_pid, SIGCONT);
	RUN_UNTIL(c.up == 2, 5000);
	CHECK_EQ_INT(c.up, 2);
	res = cmd(r, "PING");
	CHECK_EQ_INT(res.err, 0);
	redis_destroy(&r);
}

/* The owner's side of "rewrite on up": what the mediaworker does with its legs. */
struct owner {
	struct redis *r;
	struct leg_record leg;
	bool dirty;
	int rewrites;
};

static void owner_up(struct redis *r, void *arg)
{
	struct owner *o = arg;

	/* Redis may have restarted empty: rewrite everything owned, dirty or not. */
	if (state_leg_write(r, &o->leg, 0, NULL, NULL) == 0) {
		o->dirty = false;
		o->rewrites++;
	}
}

static void test_restart(void)
{
	struct counts c = {0};
	struct owner o = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct leg_record rec;
	uint64_t t0;
	struct cmd_reply res;
	int ret;

	sample_leg(&o.leg, "leg-owned");
	redis_add_listener(r, owner_up, NULL, &o);
	CHECK_EQ_INT(write_leg(r, &o.leg, 0), 0);

	stop_server_sig(main_pid, SIGKILL); /* killed, not shut down */
	RUN_UNTIL(c.down == 1, 3000);
	CHECK_EQ_INT(c.down, 1);
	CHECK(!redis_is_up(r));
	/* Commands while down fail fast. */
	t0 = mono_ms();
	CHECK_EQ_INT(redis_command(r, NULL, NULL, "PING"), -ENOTCONN);
	sample_leg(&rec, "leg-while-down");
	ret = state_leg_write(r, &rec, 0, NULL, NULL);
	CHECK_EQ_INT(ret, -ENOTCONN);
	if (ret == -ENOTCONN)
		o.dirty = true; /* the owner remembers */
	CHECK(mono_ms() - t0 < 50);
	RUN_UNTIL(false, 500); /* a few failed reconnects */

	main_pid = start_server(main_port, NULL);
	t0 = mono_ms();
	RUN_UNTIL(c.up == 2, 5000);
	CHECK_EQ_INT(c.up, 2);
	fprintf(stderr, "  (up again %llu ms after the restart)\n",
		(unsigned long long)(mono_ms() - t0));
	CHECK(redis_is_up(r));
	CHECK_EQ_INT(o.rewrites, 1);
	CHECK(!o.dirty);
	res = cmd(r, "PING");
	CHECK_EQ_INT(res.err, 0);
	res = cmd(r, "EXISTS rs:v1:leg:leg-owned");
	CHECK_EQ_INT(res.integer, 1); /* rewritten by its owner into the empty Redis */
	redis_destroy(&r);
}

static void test_auth(void)
{
	int port = free_port();
	const char *extra[] = {"--requirepass", "s3cret pass", NULL};
	pid_t pid = start_server(port, extra);
	struct redis_config cfg;
	struct counts c = {0}, c2 = {0}, c3 = {0};
	struct redis *r, *r2, *r3;
	char portbuf[16];
	struct cmd_reply res;

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	setenv("REDIS_PORT", portbuf, 1);
	setenv("REDIS_PASSWORD", "s3cret pass", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
	r = redis_new_config(loop, &cfg);
	redis_add_listener(r, on_up, on_down, &c);

	unsetenv("REDIS_PASSWORD");
	CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
	r2 = redis_new_config(loop, &cfg);
	redis_add_listener(r2, on_up, on_down, &c2);

	snprintf(cfg.password, sizeof(cfg.password), "wrong");
	r3 = redis_new_config(loop, &cfg);
	redis_add_listener(r3, on_up, on_down, &c3);

	RUN_UNTIL(c.up == 1, 3000);
	RUN_UNTIL(false, 500);
	CHECK_EQ_INT(c.up, 1);
	res = cmd(r, "SET k v");
	CHECK_EQ_INT(res.err, 0);
	res = cmd(r, "GET k");
	CHECK_EQ_STR(res.str, "v");

	CHECK_EQ_INT(c2.up, 0);
	CHECK(!redis_is_up(r2));
	CHECK_EQ_INT(redis_command(r2, NULL, NULL, "PING"), -ENOTCONN);
	CHECK(strstr(redis_last_error(r2), "NOAUTH") != NULL);
	CHECK(strstr(redis_last_error(r2), "REDIS_PASSWORD") != NULL);
	fprintf(stderr, "  (without a password: %s)\n", redis_last_error(r2));

	CHECK_EQ_INT(c3.up, 0);
	CHECK(strstr(redis_last_error(r3), "refused AUTH") != NULL);
	fprintf(stderr, "  (wrong password: %s)\n", redis_last_error(r3));
	redis_destroy(&r2);
	redis_destroy(&r3);

	/* REDIS_PASSWORD_FILE, and REDIS_USERNAME for an ACL user */
	{
		char path[] = "/tmp/test_redis_pass.XXXXXX";
		int fd = mkstemp(path);
		struct counts c4 = {0};
		struct redis *r4;

		CHECK(fd >= 0 && write(fd, "s3cret pass\n", 12) == 12);
		close(fd);
		setenv("REDIS_PASSWORD_FILE", path, 1);
		CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
		CHECK_EQ_STR(cfg.password, "s3cret pass");
		setenv("REDIS_PASSWORD", "x", 1);
		CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL); /* both */
		unsetenv("REDIS_PASSWORD");
		res = cmd(r, "ACL SETUSER op on >op-pass ~* +@all");
		CHECK_EQ_INT(res.err, 0);
		CHECK(fd >= 0 && (fd = open(path, O_WRONLY | O_TRUNC)) >= 0 &&
		      write(fd, "op-pass", 7) == 7);
		close(fd);
		setenv("REDIS_USERNAME", "op", 1);
		CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
		r4 = redis_new_config(loop, &cfg);
		redis_add_listener(r4, on_up, on_down, &c4);
		RUN_UNTIL(c4.up == 1, 3000);
		CHECK_EQ_INT(c4.up, 1);
		res = cmd(r4, "ACL WHOAMI");
		CHECK_EQ_STR(res.str, "op");
		redis_destroy(&r4);
		unsetenv("REDIS_PASSWORD_FILE");
		CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL); /* a user without a password */
		unsetenv("REDIS_USERNAME");
		unlink(path);
	}

	redis_destroy(&r);
	unsetenv("REDIS_PORT");
	stop_server(pid);
}

static void test_sentinel(void)
{
	int sport = free_port(), dead = free_port();
	char conf[256], env[64], want[64];
	struct redis_config cfg;
	struct counts c = {0}, c2 = {0};
	struct redis *r, *r2;
	struct cmd_reply res;
	FILE *f;
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/sentinel.conf", tmpdir);
	f = fopen(conf, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fprintf(f,
		"sentinel monitor mymaster 127.0.0.1 %d 1\n"
		"sentinel down-after-milliseconds mymaster 60000\n",
		main_port);
	fclose(f);
	{
		const char *extra[] = {"--sentinel-conf", conf, NULL};

		pid = start_server(sport, extra);
	}
	snprintf(env, sizeof(env), "127.0.0.1:%d, 127.0.0.1:%d", dead, sport);
	setenv("REDIS_SENTINELS", env, 1);
	setenv("REDIS_MASTER_NAME", "mymaster", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
	CHECK_EQ_INT(cfg.n_sentinels, 2);
	r = redis_new_config(loop, &cfg);
	redis_add_listener(r, on_up, on_down, &c);
	snprintf(cfg.master_name, sizeof(cfg.master_name), "nosuchmaster");
	r2 = redis_new_config(loop, &cfg);
	redis_add_listener(r2, on_up, on_down, &c2);
	RUN_UNTIL(c.up == 1, 5000);
	CHECK_EQ_INT(c.up, 1);
	snprintf(want, sizeof(want), "127.0.0.1:%d", main_port);
	CHECK_EQ_STR(redis_address(r), want);
	res = cmd(r, "PING");
	CHECK_EQ_INT(res.err, 0);
	RUN_UNTIL(strstr(redis_last_error(r2), "no sentinel named") != NULL, 3000);
	CHECK_EQ_INT(c2.up, 0);
	CHECK(strstr(redis_last_error(r2), "nosuchmaster") != NULL);
	fprintf(stderr, "  (unknown master: %s)\n", redis_last_error(r2));
	redis_destroy(&r2);

	/* The sentinels are asked again after every disconnect: point them at another master,
	 * cut the link, and the client follows. */
	{
		int port_b = free_port();
		pid_t pid_b = start_server(port_b, NULL);
		struct counts cs = {0};
		struct redis *s = redis_new(loop, "127.0.0.1", sport, NULL, 0);
		char line[128];
		long long id;

		redis_add_listener(s, on_up, on_down, &cs);
		RUN_UNTIL(cs.up == 1, 3000);
		res = cmd(s, "SENTINEL REMOVE mymaster");
		CHECK_EQ_INT(res.err, 0);
		snprintf(line, sizeof(line), "SENTINEL MONITOR mymaster 127.0.0.1 %d 1", port_b);
		res = cmd(s, line);
		CHECK_EQ_INT(res.err, 0);
		res = cmd(r, "CLIENT ID");
		id = res.integer;
		CHECK_EQ_INT(res.err, 0);
		snprintf(line, sizeof(line), "CLIENT KILL ID %lld SKIPME no", id);
		res = cmd(r, line); /* the reply may or may not make it before the close */
		RUN_UNTIL(c.up == 2, 5000);
		CHECK_EQ_INT(c.down, 1);
		CHECK_EQ_INT(c.up, 2);
		snprintf(want, sizeof(want), "127.0.0.1:%d", port_b);
		CHECK_EQ_STR(redis_address(r), want);
		res = cmd(r, "PING");
		CHECK_EQ_INT(res.err, 0);
		redis_destroy(&s);
		redis_destroy(&r);
		stop_server(pid_b);
	}
	unsetenv("REDIS_SENTINELS");
	unsetenv("REDIS_MASTER_NAME");
	stop_server(pid);
}

static void test_config(void)
{
	struct redis_config cfg;
	struct state_config sc;

	CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
	CHECK_EQ_STR(cfg.master.host, "127.0.0.1");
	CHECK_EQ_INT(cfg.master.port, 6379);
	CHECK_EQ_INT(cfg.db, 0);
	CHECK_EQ_INT(cfg.n_sentinels, 0);
	setenv("REDIS_HOST", "10.1.2.3", 1);
	setenv("REDIS_DB", "3", 1);
	setenv("REDIS_SENTINELS", "[::1]:26379,sentinel-b:26380", 1);
	setenv("REDIS_MASTER_NAME", "gw", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
	CHECK_EQ_STR(cfg.master.host, "10.1.2.3");
	CHECK_EQ_INT(cfg.db, 3);
	CHECK_EQ_INT(cfg.n_sentinels, 2);
	CHECK_EQ_STR(cfg.sentinels[0].host, "::1");
	CHECK_EQ_INT(cfg.sentinels[0].port, 26379);
	CHECK_EQ_STR(cfg.sentinels[1].host, "sentinel-b");
	CHECK_EQ_STR(cfg.master_name, "gw");
	unsetenv("REDIS_MASTER_NAME");
	CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL);
	setenv("REDIS_MASTER_NAME", "gw", 1);
	setenv("REDIS_SENTINELS", "sentinel-b", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL);
	setenv("REDIS_SENTINELS", "a:1,b:0", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL);
	setenv("REDIS_SENTINELS", "::1:5", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL);
	unsetenv("REDIS_SENTINELS");
	unsetenv("REDIS_MASTER_NAME");
	setenv("REDIS_PORT", "70000", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL);
	unsetenv("REDIS_PORT");
	unsetenv("REDIS_HOST");
	unsetenv("REDIS_DB");

	CHECK_EQ_INT(state_config_from_env(&sc), 0);
	CHECK_EQ_INT(sc.leg_ttl_s, 7200);
	setenv("LEG_TTL", "3600", 1);
	CHECK_EQ_INT(state_config_from_env(&sc), 0);
	CHECK_EQ_INT(sc.leg_ttl_s, 3600);
	setenv("LEG_TTL", "5", 1);
	CHECK_EQ_INT(state_config_from_env(&sc), -EINVAL);
	unsetenv("LEG_TTL");
	CHECK_EQ_INT(state_config_from_env(&sc), 0);
	CHECK_EQ_INT(sc.call_ttl_s, STATE_CALL_TTL_DEFAULT_S);
	setenv("CALL_TTL", "600", 1);
	CHECK_EQ_INT(state_config_from_env(&sc), 0);
	CHECK_EQ_INT(sc.call_ttl_s, 600);
	setenv("CALL_TTL", "604801", 1);
	CHECK_EQ_INT(state_config_from_env(&sc), -EINVAL);
	unsetenv("CALL_TTL");

	CHECK(state_id_valid("leg-1_a.b@c"));
	CHECK(!state_id_valid(""));
	CHECK(!state_id_valid("w:legs"));
	CHECK(!state_id_valid("a b"));
	CHECK(state_aor_valid("alice@example.com"));
	CHECK(state_aor_valid("+4930123456@sip.example.com:5060"));
	CHECK(!state_aor_valid("alice@example.com/x"));
	CHECK(!state_aor_valid("alice"));
	CHECK(!state_aor_valid(NULL));
	CHECK(redis_new(NULL, "127.0.0.1", 6379, NULL, 0) == NULL);
}

int main(void)
{
	static const char *const vars[] = {
		"REDIS_HOST",	   "REDIS_PORT",	"REDIS_PASSWORD", "REDIS_PASSWORD_FILE",
		"REDIS_USERNAME", "REDIS_DB",		"REDIS_SENTINELS", "REDIS_MASTER_NAME",
		"LEG_TTL",	   "CALL_TTL"};
	int ret;

	signal(SIGPIPE, SIG_IGN);
	log_init("test_redis", LOG_LVL_WARN);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	TEST_RUN(test_config);
	ret = redis_fixture_start("test_redis");
	if (ret <= 0)
		return ret < 0 ? 1 : TEST_DONE();
	TEST_RUN(test_connect);
	TEST_RUN(test_inflight_bound);
	TEST_RUN(test_cancel);
	TEST_RUN(test_destroy_in_callback);
	TEST_RUN(test_sentinel);
	TEST_RUN(test_auth);
	TEST_RUN(test_stall_timeout);
	TEST_RUN(test_restart);
	evloop_destroy(&loop);
	return TEST_DONE();
}
