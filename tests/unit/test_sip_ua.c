/*
 * test_sip_ua.c - signaler/sip_ua over the su_root evloop backend: two UAs in one loop call each
 * other over loopback (UDP), and the backend keeps evloop.c's promises where sofia-sip differs.
 */
#include "evloop_su.h"
#include "harness.h"
#include "log.h"
#include "sip_ua.h"

#include "../tools/free_port.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct side {
	const char *name;
	struct sip_ua *ua;
	struct sip_call *call;
	char events[1024]; /* what happened, in order, space separated */
	char last_sdp[512];
	int status;
	bool ended;
};

struct pair {
	struct evloop *loop;
	struct side a, b; /* a calls b */
	unsigned b_port;
	bool b_reject_488;
	bool b_ring_in_hook; /* b's 180 goes out from a before-sleep hook */
	bool ring_pending;
	bool no_dtmf; /* a does not send the DTMF that makes b re-INVITE */
	uint64_t incoming_at, hook_at;
	struct ev_timer *guard;
};

static struct pair *cur;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void note(struct side *s, const char *what)
{
	size_t n = strlen(s->events);

	snprintf(s->events + n, sizeof(s->events) - n, "%s%s", n ? " " : "", what);
}

static const char *sdp(unsigned port, const char *dir)
{
	static char buf[2][256];
	static int i;

	i ^= 1;
	snprintf(buf[i], sizeof(buf[i]),
		 "v=0\r\no=t 1 %u IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
		 "m=audio %u RTP/AVP 0\r\na=%s\r\n",
		 port, port, dir);
	return buf[i];
}

static struct side *side_of(struct sip_call *call)
{
	return sip_call_ua(call) == cur->a.ua ? &cur->a : &cur->b;
}

static void on_incoming(struct sip_ua *ua, struct sip_call *call, const struct sip_call_info *info,
			void *arg)
{
	struct pair *p = arg;

	note(&p->b, "incoming");
	p->b.call = call;
	CHECK(info->sdp && strstr(info->sdp, "m=audio 4000 "));
	CHECK(info->call_id && strcmp(info->call_id, sip_call_callid(call)) == 0);
	if (p->b_reject_488) {
		CHECK(sip_call_respond(call, 488, NULL, NULL) == 0);
		return;
	}
	if (p->b_ring_in_hook) {
		/* Like RTMP output: queued here, written by the before-sleep hook. */
		p->incoming_at = now_ms();
		p->ring_pending = true;
		return;
	}
	CHECK(sip_call_respond(call, 180, NULL, NULL) == 0);
	CHECK(sip_call_respond(call, 200, NULL, sdp(5000, "sendrecv")) == 0);
}

static void hook(struct evloop *loop, void *arg)
{
	struct pair *p = arg;

	if (!p->ring_pending)
		return;
	p->ring_pending = false;
	p->hook_at = now_ms();
	CHECK(sip_call_respond(p->b.call, 180, NULL, NULL) == 0);
	CHECK(sip_call_respond(p->b.call, 200, NULL, sdp(5000, "sendrecv")) == 0);
}

static void on_progress(struct sip_call *call, int status, const char *phrase, const char *s,
			void *arg)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "progress%d", status);
	note(side_of(call), buf);
}

static void on_answered(struct sip_call *call, const char *s, void *arg)
{
	struct side *sd = side_of(call);

	note(sd, "answered");
	if (s)
		snprintf(sd->last_sdp, sizeof(sd->last_sdp), "%s", s);
	if (sd == &cur->a && !cur->no_dtmf) {
		CHECK(sip_call_info_dtmf(call, '7', 0) == 0);
		CHECK(sip_call_info_dtmf(call, 'x', 0) == -EINVAL);
	}
}

static void on_failed(struct sip_call *call, int status, const char *phrase, void *arg)
{
	struct side *sd = side_of(call);

	note(sd, "failed");
	sd->status = status;
	sd->ended = true;
	sd->call = NULL;
}

static void on_ended(struct sip_call *call, bool by_peer, const char *reason, void *arg)
{
	struct side *sd = side_of(call);

	note(sd, by_peer ? "ended-peer" : "ended-local");
	sd->ended = true;
	sd->call = NULL;
}

static void on_dtmf(struct sip_call *call, char digit, unsigned duration_ms, void *arg)
{
	struct side *sd = side_of(call);

	CHECK(digit == '7' && duration_ms == 160);
	note(sd, "dtmf7");
	/* b puts a on hold once the digit arrived. */
	CHECK(sip_call_reinvite(call, sdp(5000, "sendonly")) == 0);
}

static void on_reinvite(struct sip_call *call, const char *s, void *arg)
{
	struct side *sd = side_of(call);

	note(sd, "reinvite");
	CHECK(s && strstr(s, "a=sendonly"));
	CHECK(sip_call_respond(call, 200, NULL, sdp(4000, "recvonly")) == 0);
}

static void on_reinvite_result(struct sip_call *call, int status, const char *phrase, const char *s,
			       void *arg)
{
	struct side *sd = side_of(call);

	note(sd, status == 200 ? "reinvite200" : "reinvite-failed");
	CHECK(s && strstr(s, "a=recvonly"));
	CHECK(sip_call_bye(call) == 0);
}

static void on_guard(struct evloop *loop, struct ev_timer *t, void *arg)
{
	evloop_stop(loop);
}

static const struct sip_ua_callbacks callbacks = {
    .incoming = on_incoming,
    .progress = on_progress,
    .answered = on_answered,
    .failed = on_failed,
    .ended = on_ended,
    .reinvite = on_reinvite,
    .reinvite_result = on_reinvite_result,
    .dtmf = on_dtmf,
};

static int pair_start(struct pair *p)
{
	struct sip_ua_callbacks cb = callbacks;
	struct sip_ua_config cfg = {.bind_ip = "127.0.0.1", .shutdown_ms = 2000};

	cur = p;
	cb.arg = p;
	p->loop = evloop_new();
	if (!p->loop)
		return -1;
	p->a.name = "a";
	p->b.name = "b";
	/* Other tests may take a port between the probe and the bind: try a few. */
	for (int i = 0; i < 5 && !p->a.ua; i++) {
		cfg.port = (uint16_t)free_port_on("127.0.0.1");
		p->a.ua = sip_ua_new(p->loop, &cfg, &cb);
	}
	for (int i = 0; i < 5 && !p->b.ua; i++) {
		p->b_port = free_port_on("127.0.0.1");
		cfg.port = (uint16_t)p->b_port;
		p->b.ua = sip_ua_new(p->loop, &cfg, &cb);
	}
	p->guard = evloop_timer_new(p->loop, on_guard, p);
	if (!p->a.ua || !p->b.ua || !p->guard)
		return -1;
	CHECK(evloop_before_sleep(p->loop, hook, p) == 0);
	return 0;
}

/* Runs until both sides ended (or 5 s). */
static void pair_run(struct pair *p)
{
	evloop_timer_start(p->guard, 5000);
	while (!(p->a.ended && p->b.ended) && evloop_timer_armed(p->guard))
		evloop_run_once(p->loop, 100);
}

static void pair_stop(struct pair *p)
{
	sip_ua_destroy(&p->a.ua);
	sip_ua_destroy(&p->b.ua);
	CHECK(p->a.ua == NULL && p->b.ua == NULL);
	evloop_timer_del(&p->guard);
	evloop_destroy(&p->loop);
	cur = NULL;
}

static void place_call(struct pair *p)
{
	char target[64];

	snprintf(target, sizeof(target), "sip:bob@127.0.0.1:%u", p->b_port);
	p->a.call = sip_call_invite(p->a.ua, NULL, target, sdp(4000, "sendrecv"), p);
	CHECK(p->a.call != NULL);
}

/* The whole life of a call: ring, answer, INFO DTMF, hold by re-INVITE, BYE. */
static void test_call_both_ways(void)
{
	struct pair p = {0};

	if (pair_start(&p) < 0) {
		CHECK(!"pair_start");
		return;
	}
	place_call(&p);
	pair_run(&p);
	CHECK_EQ_STR(p.a.events, "progress180 answered reinvite ended-peer");
	CHECK_EQ_STR(p.b.events, "incoming answered dtmf7 reinvite200 ended-local");
	CHECK(strstr(p.a.last_sdp, "m=audio 5000 ") != NULL);
	pair_stop(&p);
}

/* An offer the callee cannot take: 488 and nothing else. */
static void test_reject_488(void)
{
	struct pair p = {0};

	if (pair_start(&p) < 0) {
		CHECK(!"pair_start");
		return;
	}
	p.b_reject_488 = true;
	place_call(&p);
	pair_run(&p);
	CHECK_EQ_STR(p.a.events, "failed");
	CHECK_EQ_INT(p.a.status, 488);
	CHECK_EQ_STR(p.b.events, "incoming failed");
	CHECK_EQ_INT(p.b.status, 488);
	pair_stop(&p);
}

/*
 * What a SIP event callback queues is flushed by the before-sleep hooks before the loop blocks:
 * the 180/200 go out from the hook within a few ms, not when the caller's retransmission timer
 * (500 ms) next wakes the loop.
 */
static void test_hooks_follow_sip_events(void)
{
	struct pair p = {0};

	if (pair_start(&p) < 0) {
		CHECK(!"pair_start");
		return;
	}
	p.b_ring_in_hook = true;
	/* (A re-INVITE crossing the BYE below makes sofia-sip leak the request.) */
	p.no_dtmf = true;
	place_call(&p);
	evloop_timer_start(p.guard, 5000);
	while (!p.a.call || !strstr(p.a.events, "answered")) {
		if (!evloop_timer_armed(p.guard))
			break;
		evloop_run_once(p.loop, -1);
	}
	CHECK(p.hook_at != 0 && p.hook_at - p.incoming_at < 100);
	CHECK(strstr(p.a.events, "answered") != NULL);
	if (p.a.call)
		sip_call_bye(p.a.call);
	pair_run(&p);
	pair_stop(&p);
}

/* su_wait_create() forces O_NONBLOCK; the backend gives the caller its flags back. */
static void io_noop(struct evloop *loop, struct ev_io *io, int fd, unsigned events, void *arg)
{
}

static void test_fd_flags_kept(void)
{
	struct evloop *loop = evloop_new();
	struct ev_io *io;
	int p[2];

	CHECK(loop && evloop_su_root(loop));
	CHECK(pipe(p) == 0);
	io = evloop_io_add(loop, p[0], EV_READ, io_noop, NULL);
	CHECK(io != NULL);
	CHECK(!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
	CHECK(evloop_io_set(io, EV_READ | EV_WRITE) == 0);
	CHECK_EQ_INT(evloop_io_events(io), EV_READ | EV_WRITE);
	evloop_io_del(&io);
	/* An empty mask is accepted, as with epoll. */
	io = evloop_io_add(loop, p[0], 0, io_noop, NULL);
	CHECK(io != NULL);
	evloop_io_del(&io);
	/* A bad fd fails with errno set. */
	CHECK(evloop_io_add(loop, -1, EV_READ, io_noop, NULL) == NULL);
	close(p[0]);
	close(p[1]);
	evloop_run_once(loop, 0);
	evloop_destroy(&loop);
}

/* A long timer bounds the wait; evloop_run_once(-1) returns when it fires. */
static int fired;

static void on_fire(struct evloop *loop, struct ev_timer *t, void *arg)
{
	fired++;
}

static void test_run_once_forever_wakes_for_timer(void)
{
	struct evloop *loop = evloop_new();
	struct ev_timer *t = evloop_timer_new(loop, on_fire, NULL);
	uint64_t t0 = now_ms();

	fired = 0;
	evloop_timer_start(t, 30);
	for (int i = 0; i < 5 && !fired; i++)
		evloop_run_once(loop, -1);
	CHECK_EQ_INT(fired, 1);
	CHECK(now_ms() - t0 >= 29 && now_ms() - t0 < 1000);
	evloop_timer_del(&t);
	evloop_destroy(&loop);
}

int main(void)
{
	const char *lvl = getenv("LOG_LEVEL");

	log_init("test_sip_ua", lvl && log_level_parse(lvl) >= 0
				    ? (enum log_level)log_level_parse(lvl)
				    : LOG_LVL_WARN);
	TEST_RUN(test_fd_flags_kept);
	TEST_RUN(test_run_once_forever_wakes_for_timer);
	TEST_RUN(test_call_both_ways);
	TEST_RUN(test_reject_488);
	TEST_RUN(test_hooks_follow_sip_events);
	return TEST_DONE();
}
