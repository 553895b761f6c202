/*
 * test_evloop.c - the event loop: timers in order, re-arming, fd readiness, deleting handles from
 * inside callbacks, signals, before-sleep hooks; and config parsing.
 */
#include "config.h"
#include "evloop.h"
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static int order[8];
static int n_order;

static void record_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	if (n_order < (int)(sizeof(order) / sizeof(order[0])))
		order[n_order] = (int)(long)arg;
	n_order++;
}

static void test_timers_fire_in_order(void)
{
	struct evloop *loop = evloop_new();
	struct ev_timer *a = evloop_timer_new(loop, record_timer, (void *)1L);
	struct ev_timer *b = evloop_timer_new(loop, record_timer, (void *)2L);
	struct ev_timer *c = evloop_timer_new(loop, record_timer, (void *)3L);

	n_order = 0;
	evloop_timer_start(a, 30);
	evloop_timer_start(b, 10);
	evloop_timer_start(c, 20);
	evloop_timer_start(a, 5); /* re-arming moves it */
	evloop_timer_stop(c);
	CHECK(!evloop_timer_armed(c));
	for (int i = 0; i < 20 && n_order < 2; i++)
		evloop_run_once(loop, 50);
	CHECK_EQ_INT(n_order, 2);
	CHECK_EQ_INT(order[0], 1);
	CHECK_EQ_INT(order[1], 2);
	evloop_timer_del(&a);
	evloop_timer_del(&b);
	evloop_timer_del(&c);
	CHECK(a == NULL);
	evloop_destroy(&loop);
	CHECK(loop == NULL);
}

static void test_many_timers(void)
{
	struct evloop *loop = evloop_new();
	struct ev_timer *t[300];

	n_order = 0;
	for (int i = 0; i < 300; i++) {
		t[i] = evloop_timer_new(loop, record_timer, (void *)0L);
		CHECK(t[i] != NULL);
		evloop_timer_start(t[i], (uint64_t)(i % 7));
	}
	for (int i = 0; i < 300; i += 2)
		evloop_timer_stop(t[i]);
	for (int i = 0; i < 20; i++)
		evloop_run_once(loop, 10);
	/* 150 timers stay armed (every odd one): all of them fire. */
	CHECK_EQ_INT(n_order, 150);
	for (int i = 0; i < 300; i++)
		evloop_timer_del(&t[i]);
	evloop_destroy(&loop);
}

static int rearms;

static void rearm_now(struct evloop *loop, struct ev_timer *t, void *arg)
{
	rearms++;
	evloop_timer_start(t, 0);
}

/* A timer re-arming itself for 0 ms fires once per iteration, not in a loop. */
static void test_timer_rearm_now_waits(void)
{
	struct evloop *loop = evloop_new();
	struct ev_timer *t = evloop_timer_new(loop, rearm_now, NULL);

	rearms = 0;
	evloop_timer_start(t, 0);
	evloop_run_once(loop, 0);
	CHECK_EQ_INT(rearms, 1);
	evloop_run_once(loop, 0);
	CHECK_EQ_INT(rearms, 2);
	evloop_timer_del(&t);
	evloop_destroy(&loop);
}

struct pipe_ctx {
	struct ev_io *io;
	struct ev_io *other;
	int reads;
};

static void on_readable(struct evloop *loop, struct ev_io *io, int fd, unsigned events, void *arg)
{
	struct pipe_ctx *ctx = arg;
	char b[16];

	CHECK(events & EV_READ);
	if (read(fd, b, sizeof(b)) > 0)
		ctx->reads++;
	/* Delete both handles from inside the callback: the other one's queued event must not
	 * be delivered. */
	evloop_io_del(&ctx->io);
	evloop_io_del(&ctx->other);
}

static void test_io_delete_in_callback(void)
{
	struct evloop *loop = evloop_new();
	struct pipe_ctx ctx = {0};
	int p1[2], p2[2];

	CHECK(pipe(p1) == 0 && pipe(p2) == 0);
	ctx.io = evloop_io_add(loop, p1[0], EV_READ, on_readable, &ctx);
	ctx.other = evloop_io_add(loop, p2[0], EV_READ, on_readable, &ctx);
	CHECK(ctx.io && ctx.other);
	CHECK(write(p1[1], "x", 1) == 1);
	CHECK(write(p2[1], "y", 1) == 1);
	evloop_run_once(loop, 100);
	CHECK_EQ_INT(ctx.reads, 1);
	CHECK(ctx.io == NULL && ctx.other == NULL);
	evloop_run_once(loop, 10);
	CHECK_EQ_INT(ctx.reads, 1);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
	evloop_destroy(&loop);
}

static int hooks;

static void hook(struct evloop *loop, void *arg)
{
	hooks++;
}

static void on_sig(struct evloop *loop, int signo, void *arg)
{
	*(int *)arg = signo;
	evloop_stop(loop);
}

static void test_signal_and_hooks(void)
{
	struct evloop *loop = evloop_new();
	int got = 0;

	CHECK(evloop_before_sleep(loop, hook, NULL) == 0);
	CHECK(evloop_signal(loop, SIGUSR2, on_sig, &got) == 0);
	kill(getpid(), SIGUSR2);
	CHECK(evloop_run(loop) == 0);
	CHECK_EQ_INT(got, SIGUSR2);
	CHECK(hooks >= 1);
	evloop_destroy(&loop);
}

static void test_config(void)
{
	int64_t v;
	bool b;

	setenv("T_INT", "42", 1);
	CHECK(config_int("T_INT", 7, 0, 100, &v) == 0 && v == 42);
	CHECK(config_int("T_UNSET_X", 7, 0, 100, &v) == 0 && v == 7);
	setenv("T_INT", "420", 1);
	CHECK(config_int("T_INT", 7, 0, 100, &v) < 0);
	setenv("T_INT", "12abc", 1);
	CHECK(config_int("T_INT", 7, 0, 100, &v) < 0);
	setenv("T_INT", "-1", 1);
	CHECK(config_int("T_INT", 7, 0, 100, &v) < 0);
	setenv("T_BOOL", "yes", 1);
	CHECK(config_bool("T_BOOL", false, &b) == 0 && b);
	setenv("T_BOOL", "maybe", 1);
	CHECK(config_bool("T_BOOL", false, &b) < 0);
	CHECK_EQ_STR(config_str("T_UNSET_Y", "d"), "d");
}

int main(void)
{
	TEST_RUN(test_timers_fire_in_order);
	TEST_RUN(test_many_timers);
	TEST_RUN(test_timer_rearm_now_waits);
	TEST_RUN(test_io_delete_in_callback);
	TEST_RUN(test_signal_and_hooks);
	TEST_RUN(test_config);
	return TEST_DONE();
}
