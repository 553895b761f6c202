/*
 * rtp_leg_testlib.h - what the RTP leg's unit tests (test_rtp_leg, test_rtp_latch) share: the
 * loop and port pool they run on, raw UDP "peer" sockets that capture and forge packets, legs
 * with counting callbacks, two legs wired to each other, flows of frames at 20 ms.
 *
 *   if (!rtp_testlib_setup("test_x"))   log, loop, pool ("FAIL setup" printed otherwise)
 *   TEST_RUN(...)
 *   rtp_testlib_teardown()              no pair left in use; everything freed (leak checks)
 *
 * Header-only (static inline) so that every unit test stays one .c file.
 */
#ifndef RS_TEST_RTP_LEG_TESTLIB_H
#define RS_TEST_RTP_LEG_TESTLIB_H

#include "evloop.h"
#include "harness.h"
#include "log.h"
#include "port_pool.h"
#include "rtp_leg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORT_MIN 30000
#define PORT_MAX 32599

static struct evloop *loop;
static struct port_pool *pool;

static const char *const KEY_A = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
static const char *const KEY_B = "Y5n0Pi8VUv8CsLqGzjAqFQpYH5wJPmHfzaJ+WuQq";
static const char *const KEY_C = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void run_ms(unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end)
		evloop_run_once(loop, 5);
}

/* ------------------------------------------------------------ raw peer socket */

struct peer {
	int fd;
	uint16_t port;
	struct sockaddr_in addr;
};

static inline void peer_open(struct peer *p)
{
	socklen_t l = sizeof(p->addr);

	p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	memset(&p->addr, 0, sizeof(p->addr));
	p->addr.sin_family = AF_INET;
	p->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(p->fd, (struct sockaddr *)&p->addr, sizeof(p->addr));
	getsockname(p->fd, (struct sockaddr *)&p->addr, &l);
	p->port = ntohs(p->addr.sin_port);
}

static inline void peer_close(struct peer *p)
{
	close(p->fd);
}

static inline void peer_send(struct peer *p, uint16_t to_port, const uint8_t *buf, size_t len)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(to_port)};

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sendto(p->fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to));
}

/* Receives one datagram, running the loop up to @ms; returns its length or -1. */
static inline ssize_t peer_recv(struct peer *p, uint8_t *buf, size_t cap, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	for (;;) {
		ssize_t n = recv(p->fd, buf, cap, 0);

		if (n >= 0)
			return n;
		if (now_ms() >= end)
			return -1;
		evloop_run_once(loop, 2);
	}
}

static inline void peer_drain(struct peer *p)
{
	uint8_t b[2048];

	while (recv(p->fd, b, sizeof(b), 0) >= 0)
		;
}

static inline size_t rtp_build(uint8_t *b, uint8_t pt, bool marker, uint16_t seq, uint32_t ts,
			       uint32_t ssrc, const uint8_t *pl, size_t n)
{
	b[0] = 0x80;
	b[1] = (uint8_t)(pt | (marker ? 0x80 : 0));
	b[2] = (uint8_t)(seq >> 8);
	b[3] = (uint8_t)seq;
	b[4] = (uint8_t)(ts >> 24);
	b[5] = (uint8_t)(ts >> 16);
	b[6] = (uint8_t)(ts >> 8);
	b[7] = (uint8_t)ts;
	b[8] = (uint8_t)(ssrc >> 24);
	b[9] = (uint8_t)(ssrc >> 16);
	b[10] = (uint8_t)(ssrc >> 8);
	b[11] = (uint8_t)ssrc;
	memcpy(b + 12, pl, n);
	return 12 + n;
}

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ------------------------------------------------------------ legs */

struct events {
	char digits[32];
	unsigned durations[32];
	int n_dtmf;
	int n_timeout;
	int n_failure;
	int n_latched;
	struct rtp_leg **destroy_on_dtmf;
};

static inline void ev_dtmf(struct rtp_leg *leg, char digit, unsigned ms, void *arg)
{
	struct events *e = arg;

	(void)leg;
	if (e->n_dtmf < 32) {
		e->digits[e->n_dtmf] = digit;
		e->durations[e->n_dtmf] = ms;
	}
	e->n_dtmf++;
	if (e->destroy_on_dtmf)
		rtp_leg_destroy(e->destroy_on_dtmf);
}

static inline void ev_timeout(struct rtp_leg *leg, void *arg)
{
	(void)leg;
	((struct events *)arg)->n_timeout++;
}

static inline void ev_failure(struct rtp_leg *leg, int err, void *arg)
{
	(void)leg, (void)err;
	((struct events *)arg)->n_failure++;
}

static inline void ev_latched(struct rtp_leg *leg, const struct sockaddr *a, void *arg)
{
	(void)leg, (void)a;
	((struct events *)arg)->n_latched++;
}

static inline void params(struct rtp_leg_params *p, const char *sid, struct events *e)
{
	rtp_leg_params_init(p);
	p->loop = loop;
	p->pool = pool;
	p->sid = sid;
	p->bind_ip = "127.0.0.1";
	p->rtcp_interval_ms = 500;
	if (e) {
		memset(e, 0, sizeof(*e));
		p->cb.on_dtmf = ev_dtmf;
		p->cb.on_timeout = ev_timeout;
		p->cb.on_failure = ev_failure;
		p->cb.on_latched = ev_latched;
		p->cb.arg = e;
	}
}

/* Two legs wired to each other. */
static inline void pair_new(struct rtp_leg **a, struct rtp_leg **b, struct rtp_leg_params *pa,
			    struct rtp_leg_params *pb)
{
	*b = rtp_leg_new(pb);
	CHECK(*b != NULL);
	pa->remote_ip = "127.0.0.1";
	pa->remote_port = *b ? rtp_leg_local_port(*b) : 9;
	*a = rtp_leg_new(pa);
	CHECK(*a != NULL);
	if (*a && *b)
		rtp_leg_set_remote(*b, "127.0.0.1", rtp_leg_local_port(*a), 0);
}

struct flow {
	struct rtp_leg *from, *to;
	int to_send, sent;
	int got, lost, none;
	int bad_content;
	uint8_t first_id, last_id;
	bool saw_first;
	int order_errors;
};

static inline void flow_tick(struct evloop *l, struct ev_timer *t, void *arg)
{
	struct flow *f = arg;
	uint8_t pl[160], out[400];
	size_t len = sizeof(out);
	bool lost;

	(void)l;
	if (f->sent < f->to_send) {
		memset(pl, (uint8_t)f->sent, sizeof(pl));
		rtp_leg_send(f->from, pl, sizeof(pl), 160);
		f->sent++;
	}
	/* The worker pulls every leg on every tick, the sender's too (that also drives RTCP). */
	rtp_leg_pull(f->from, out, &len, &lost);
	len = sizeof(out);
	if (rtp_leg_pull(f->to, out, &len, &lost) == 0 && len) {
		if (len != 160 || out[0] != out[159])
			f->bad_content++;
		if (f->saw_first && out[0] != (uint8_t)(f->last_id + 1))
			f->order_errors++;
		if (!f->saw_first)
			f->first_id = out[0];
		f->saw_first = true;
		f->last_id = out[0];
		f->got++;
	} else if (lost && f->sent < f->to_send) {
		f->lost++; /* after the sender stops, "lost" until the pause is recognised */
	} else {
		f->none++;
	}
	evloop_timer_start(t, 20);
}

/* Sends @n frames from @from to @to at 20 ms and pulls on @to for @n + 10 ticks. */
static inline void flow_run(struct flow *f, struct rtp_leg *from, struct rtp_leg *to, int n)
{
	struct ev_timer *t = evloop_timer_new(loop, flow_tick, f);

	memset(f, 0, sizeof(*f));
	f->from = from;
	f->to = to;
	f->to_send = n;
	evloop_timer_start(t, 20);
	run_ms((unsigned)(n + 10) * 20);
	evloop_timer_del(&t);
}

/* ------------------------------------------------------------ set-up */

static inline bool rtp_testlib_setup(const char *name)
{
	log_init(name, getenv("LOG_LEVEL") ? log_level_parse(getenv("LOG_LEVEL")) : LOG_LVL_ERROR);
	loop = evloop_new();
	pool = port_pool_new(PORT_MIN, PORT_MAX);
	if (!loop || !pool) {
		printf("FAIL setup\n");
		return false;
	}
	return true;
}

static inline void rtp_testlib_teardown(void)
{
	CHECK_EQ_INT(port_pool_in_use(pool), 0);
	port_pool_destroy(&pool);
	evloop_destroy(&loop);
	rtp_leg_global_cleanup();
}

#endif
