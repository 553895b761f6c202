/*
 * rtp_leg.c - one RTP/SRTP leg: our sockets and SRTP around an oRTP session. This file holds
 * the leg's life (create, destroy, ports, housekeeping), send, pull, updates and state; the
 * other pieces are listed at the top of rtp_leg_int.h.
 *
 * Who does what:
 *
 *   socket --recvmmsg--> [ours] source check, header bounds, PT/SSRC, SRTP unprotect,
 *     (evloop readable)         padding strip, latch, loss/timeout/DTMF bookkeeping
 *                               (rtp_input.c, rtp_latch.c, rtp_dtmf.c)
 *                                   |
 *          +------------------------+--------------------------+
 *          | inject (statistics)                               | in the same iteration
 *          v                                                   v
 *   [oRTP] rtp_session_rtp_parse: stats, interarrival   rtp_reorder (in order; held only
 *          jitter, RTCP SR/RR; its queue emptied at     while a gap is open, one frame at
 *          once (no playout buffer)                     most) --> cb.on_frame (the worker)
 *                                                              or the rtp_leg_pull() queue
 *
 *   rtp_leg_send --> [oRTP] rtp_session_create_packet + rtp_session_sendm_with_ts (header,
 *                    seq, stats, RTCP scheduling) --> meta transport --> our endpoint
 *                    (rtp_ortp.c): SRTP protect, destination (latched or signalled), sendto
 *
 * Strict latching, whose RTP is played and where ours goes: rtp_latch.c, the rule and its
 * diagram at the top of that file. Why our own endpoint and not an RtpTransportModifier: the
 * top of rtp_ortp.c.
 *
 * Clocks: packets are stamped, when injected, with a local timestamp clock (leg creation on,
 * in RTP clock units), the time base of oRTP's jitter estimate; housekeeping reads oRTP's
 * empty queue on that clock so its receiver reports keep their schedule.
 *
 * Cost (tests/tools/rtp_probe bench --legs N [--srtp]: legs in pairs on loopback, each sends,
 * receives and pulls a frame every 20 ms; CPU per packet sent or received, median of 3 runs;
 * destroy: rtp_leg_destroy of 20 legs among the live ones, p50):
 *
 *   legs                  10     100   1,000   3,000
 *   RTP                 11.9     7.4     7.7     5.3  us a packet (fixed costs of the tick
 *   SRTP                15.6     9.1     8.7     7.1  us a packet  spread over fewer legs)
 *   SRTP destroy        0.11    0.08    0.08    0.07  ms (all runs' max 0.4; RTP 0.06-0.07)
 *
 * At 3,000 SRTP legs: half kernel (sendto, recvmmsg), 17% oRTP (allocations, meta transport,
 * profile look-ups), 11% libcrypto, 5% libsrtp2, 7% ours. SRTP costs the same at any number of
 * legs because libsrtp2 runs on our AES-ICM and HMAC-SHA1 (rtp_srtp_crypto.c); on Debian's
 * NSS-based ones it was 15-23 us a packet and growing, and a destroy 0.2 ms at 10 legs, 5.6 ms
 * at 3,000: the causes at rtp_srtp_nss_preinit() in rtp_srtp.c.
 */
#include "rtp_leg_int.h"

#include "evloop.h"
#include "log.h"
#include "port_pool.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIND_TRIES	512 /* pairs tried per leg when other processes hold ports */
#define MAX_PAYLOAD	1400
#define HOUSEKEEPING_MS 500 /* RTCP scheduling, RTP timeout, stale DTMF */
#define KEYFRAME_REQ_MS 300 /* video: key frame requests at most this often */
#define ORTP_LOG_PER_S	5

/* ---------------------------------------------------------------- helpers */

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t random_u32(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint32_t)mono_us() * 2654435761u;
	return v;
}

/* ---------------------------------------------------------------- global init */

static bool g_initialized;

/*
 * oRTP's log lines, into ours: errors only (lower levels include per-packet chatter a peer can
 * trigger), without the per-packet "discarding too old packet" (counted in frames_late), and at
 * most ORTP_LOG_PER_S lines a second.
 */
__attribute__((format(printf, 3, 0))) static void
ortp_log_to_ours(const char *domain, BctbxLogLevel lev, const char *fmt, va_list args)
{
	static uint64_t window;
	static unsigned count, dropped;
	uint64_t now = mono_ms() / 1000u;
	char line[512];

	if (lev < BCTBX_LOG_ERROR || strstr(fmt, "too old packet"))
		return;
	if (now != window) {
		if (dropped)
			log_warn(NULL, "rtp_leg: %u oRTP log lines suppressed", dropped);
		window = now;
		count = dropped = 0;
	}
	if (++count > ORTP_LOG_PER_S) {
		dropped++;
		return;
	}
	vsnprintf(line, sizeof(line), fmt, args);
	log_msg(LOG_LVL_ERROR, domain ? domain : "ortp", "%s", line);
}

static int global_init(void)
{
	if (g_initialized)
		return 0;
	rtp_srtp_nss_preinit();
	/* Before ortp_init. (bctbx_set_log_level would need libbctoolbox on the link line.) */
	ortp_set_log_handler(ortp_log_to_ours);
	ortp_init();
	if (srtp_init() != srtp_err_status_ok) {
		ortp_exit();
		return -EIO;
	}
	(void)rtp_srtp_crypto_install(); /* on failure (logged), libsrtp2's own: slower at scale */
	g_initialized = true;
	return 0;
}

void rtp_leg_global_cleanup(void)
{
	if (!g_initialized)
		return;
	srtp_shutdown();
	rtp_srtp_crypto_release();
	ortp_exit();
	g_initialized = false;
}

/* ---------------------------------------------------------------- callbacks, lifetime */

static void leg_free(struct rtp_leg *leg);

void rtp_leg_enter(struct rtp_leg *leg)
{
	leg->depth++;
}

bool rtp_leg_leave(struct rtp_leg *leg)
{
	if (--leg->depth == 0 && leg->zombie) {
		leg_free(leg);
		return false;
	}
	return true;
}

void rtp_leg_fail(struct rtp_leg *leg, int err)
{
	if (leg->failed || leg->zombie)
		return;
	leg->failed = true;
	log_error(leg->sid, "rtp_leg: failed on port %u: %s", leg->port, strerror(-err));
	if (leg->cb.on_failure) {
		rtp_leg_enter(leg);
		leg->cb.on_failure(leg, err, leg->cb.arg);
		rtp_leg_leave(leg);
	}
}

/* ---------------------------------------------------------------- ports */

static int socket_bind(int family, const struct addr *bind_addr, uint16_t port, int *fdp)
{
	struct addr a = *bind_addr;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int tos = 0xb8; /* DSCP EF */

	if (fd < 0)
		return -errno;
	rtp_addr_set_port(&a, port);
	if (bind(fd, &a.u.sa, a.len) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (family == AF_INET)
		(void)setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	else
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos));
	*fdp = fd;
	return 0;
}

/*
 * Takes pairs from the pool until both ports bind; pairs held elsewhere are marked busy (and
 * then skipped for a while at no cost). Bounded: at worst BIND_TRIES binds (a few ms).
 */
static int ports_bind(struct rtp_leg *leg, const struct addr *bind_addr)
{
	unsigned tries = port_pool_capacity(leg->pool);

	if (tries > BIND_TRIES)
		tries = BIND_TRIES;
	for (unsigned i = 0; i < tries; i++) {
		uint16_t port;
		int err = port_pool_alloc(leg->pool, &port);

		if (err)
			return err;
		err = socket_bind(leg->family, bind_addr, port, &leg->rtp_fd);
		if (!err) {
			err = socket_bind(leg->family, bind_addr, (uint16_t)(port + 1u),
					  &leg->rtcp_fd);
			if (err) {
				close(leg->rtp_fd);
				leg->rtp_fd = -1;
			}
		}
		if (!err) {
			leg->port = port;
			return 0;
		}
		if (err == -EADDRINUSE) {
			log_debug(leg->sid, "rtp_leg: port %u held elsewhere, trying the next pair",
				  port);
			port_pool_mark_busy(leg->pool, port);
			continue;
		}
		port_pool_release(leg->pool, port);
		return err;
	}
	return -ENOSPC;
}

static void on_housekeeping(struct evloop *loop, struct ev_timer *t, void *arg);

/* The reorder stage for the leg's frame size: a gap stays open one frame time. */
static void reorder_setup(struct rtp_leg *leg)
{
	uint32_t frame_us = (uint32_t)((uint64_t)leg->spf * 1000000u / leg->clock_rate);

	rtp_reorder_free(&leg->ro);
	rtp_reorder_init(&leg->ro, frame_us, leg->plc_frames, leg->spf);
}

/* ---------------------------------------------------------------- create / destroy */

void rtp_leg_params_init(struct rtp_leg_params *p)
{
	memset(p, 0, sizeof(*p));
	p->bind_ip = "0.0.0.0";
	p->payload_type = 0;
	p->clock_rate = 8000;
	p->samples_per_frame = 160;
	p->tev_payload_type = RTP_LEG_DEFAULT_TEV_PT;
}

void rtp_leg_params_adopt(struct rtp_leg_params *p, const struct rtp_leg_state *st,
			  uint64_t now_realtime_ms)
{
	uint64_t gap = now_realtime_ms > st->saved_at_ms ? now_realtime_ms - st->saved_at_ms : 0;

	p->has_ssrc = p->has_seq = p->has_ts = true;
	p->ssrc = st->ssrc;
	p->initial_seq = st->next_seq;
	p->initial_ts = st->next_ts + (uint32_t)(gap * st->clock_rate / 1000u);
	p->send_roc = st->send_roc;
	p->remote_ip = st->remote_ip[0] ? st->remote_ip : NULL;
	p->remote_port = st->remote_port;
	p->remote_rtcp_port = st->remote_rtcp_port;
	p->payload_type = st->payload_type;
	p->tev_payload_type = st->tev_payload_type;
	p->clock_rate = st->clock_rate;
	p->samples_per_frame = st->samples_per_frame;
	p->srtp_suite = st->srtp_suite;
	p->local_key = st->local_key[0] ? st->local_key : NULL;
	p->remote_key = st->remote_key[0] ? st->remote_key : NULL;
	p->has_remote_ssrc = st->has_remote_ssrc;
	p->remote_ssrc = st->remote_ssrc;
	p->recv_roc = st->recv_roc;
}

static void leg_free(struct rtp_leg *leg)
{
	struct addr to;

	evloop_io_del(&leg->rtp_io);
	evloop_io_del(&leg->rtcp_io);
	evloop_timer_del(&leg->hk_timer);
	evloop_timer_del(&leg->dtmf_timer);
	evloop_timer_del(&leg->ro_timer);
	rtp_input_free(leg);
	if (leg->s) {
		if (leg->up && !leg->failed && rtp_latch_dest_rtcp(leg, &to))
			rtp_session_bye(leg->s, "hangup");
		rtp_session_destroy(leg->s); /* also the meta transports (our endpoints: no-op) */
	}
	if (leg->profile)
		rtp_profile_destroy(leg->profile); /* and its payload types */
	if (leg->tx)
		srtp_dealloc(leg->tx);
	if (leg->rx)
		srtp_dealloc(leg->rx);
	if (leg->rtp_fd >= 0)
		close(leg->rtp_fd);
	if (leg->rtcp_fd >= 0)
		close(leg->rtcp_fd);
	if (leg->port)
		port_pool_release(leg->pool, leg->port);
	free(leg);
}

void rtp_leg_destroy(struct rtp_leg **legp)
{
	struct rtp_leg *leg = legp ? *legp : NULL;

	if (!leg)
		return;
	*legp = NULL;
	if (leg->depth) {
		/* Inside one of our callbacks: stop everything now, free on the way out. */
		leg->zombie = true;
		evloop_io_del(&leg->rtp_io);
		evloop_io_del(&leg->rtcp_io);
		evloop_timer_del(&leg->hk_timer);
		evloop_timer_del(&leg->dtmf_timer);
		evloop_timer_del(&leg->ro_timer);
		return;
	}
	leg_free(leg);
}

static int leg_check_params(const struct rtp_leg_params *p)
{
	int tev = p->video ? -1 : p->tev_payload_type ? p->tev_payload_type : RTP_LEG_DEFAULT_TEV_PT;

	if (!p->loop || !p->pool ||
	    !rtp_ortp_payload_ok(p->payload_type, p->clock_rate, p->samples_per_frame, tev))
		return -EINVAL;
	if (p->advertised_ip && strlen(p->advertised_ip) >= IP_STR_MAX)
		return -EINVAL;
	if (p->remote_ip && !p->remote_port)
		return -EINVAL;
	if (p->latch_packets == 1 || p->latch_packets > RTP_LEG_LATCH_PACKETS_MAX ||
	    p->latch_guard_ms > RTP_LEG_LATCH_GUARD_MS_MAX)
		return -EINVAL; /* one packet never latches */
	return 0;
}

struct rtp_leg *rtp_leg_new(const struct rtp_leg_params *p)
{
	struct rtp_leg *leg;
	struct addr bind_addr;
	uint8_t lkey[KEY_LEN], rkey[KEY_LEN];
	uint16_t seq;
	int err = leg_check_params(p);

	if (err)
		goto out_errno;
	err = global_init();
	if (err)
		goto out_errno;
	leg = calloc(1, sizeof(*leg));
	if (!leg) {
		err = -ENOMEM;
		goto out_errno;
	}
	leg->rtp_fd = leg->rtcp_fd = -1;
	leg->loop = p->loop;
	leg->pool = p->pool;
	leg->cb = p->cb;
	snprintf(leg->sid, sizeof(leg->sid), "%s", p->sid ? p->sid : "-");
	leg->video = p->video;
	leg->tev_pt = p->video ? -1
		      : p->tev_payload_type ? p->tev_payload_type : RTP_LEG_DEFAULT_TEV_PT;
	leg->spf = p->samples_per_frame;
	leg->clock_rate = p->clock_rate;
	leg->timeout_ms = p->rtp_timeout_ms;
	leg->latch_packets = p->latch_packets ? p->latch_packets : RTP_LEG_LATCH_PACKETS;
	leg->latch_guard_ms = p->latch_guard_ms ? p->latch_guard_ms : RTP_LEG_LATCH_GUARD_MS;
	/* video: one report per hole is enough, the picture being assembled is broken */
	leg->plc_frames = p->video ? 1 : p->plc_frames ? p->plc_frames : 5;
	leg->silence_ms = p->silence_ms ? p->silence_ms : 100;
	leg->ssrc = p->has_ssrc ? p->ssrc : random_u32();
	seq = p->has_seq ? p->initial_seq : (uint16_t)(random_u32() & 0x7fffu);
	leg->next_ts = p->has_ts ? p->initial_ts : random_u32();
	leg->send_roc = p->send_roc;
	leg->expect_ssrc = p->has_remote_ssrc;
	leg->expected_ssrc = p->remote_ssrc;
	leg->pull_time_us = mono_us();
	leg->last_rx_ms = mono_ms();
	reorder_setup(leg);

	err = rtp_addr_parse(&bind_addr, p->bind_ip ? p->bind_ip : "0.0.0.0", 0, AF_UNSPEC);
	if (err)
		goto out_free;
	leg->family = bind_addr.u.sa.sa_family;
	snprintf(leg->advertised_ip, sizeof(leg->advertised_ip), "%s",
		 p->advertised_ip ? p->advertised_ip : (p->bind_ip ? p->bind_ip : "0.0.0.0"));
	if (p->remote_ip) {
		err = rtp_addr_parse(&leg->sig_rtp, p->remote_ip, p->remote_port, leg->family);
		if (!err)
			err = rtp_addr_parse(&leg->sig_rtcp, p->remote_ip,
					     p->remote_rtcp_port ? p->remote_rtcp_port
								 : (uint16_t)(p->remote_port + 1u),
					     leg->family);
		if (err)
			goto out_free;
	}
	err = rtp_srtp_keys(leg, p->srtp_suite, p->local_key, p->remote_key, lkey, rkey);
	if (err)
		goto out_free;
	leg->suite = p->srtp_suite;
	if (leg->suite != RTP_LEG_SRTP_NONE) {
		err = rtp_srtp_build(leg, leg->suite, lkey, rkey, p->send_roc, p->has_remote_ssrc,
				     p->remote_ssrc, p->recv_roc, &leg->tx, &leg->rx);
		if (err)
			goto out_free;
	}
	err = ports_bind(leg, &bind_addr);
	if (err)
		goto out_free;
	/* Receive times for the latching guard; without them it goes by the time of reading. */
	if (setsockopt(leg->rtp_fd, SOL_SOCKET, SO_TIMESTAMPNS, &(int){1}, sizeof(int)) < 0)
		log_debug(leg->sid, "rtp_leg: no SO_TIMESTAMPNS: %s", strerror(errno));
	err = rtp_ortp_session_setup(leg, p, seq);
	if (err)
		goto out_free;
	leg->rtp_io = evloop_io_add(leg->loop, leg->rtp_fd, EV_READ, rtp_input_rtp_readable, leg);
	leg->rtcp_io =
	    evloop_io_add(leg->loop, leg->rtcp_fd, EV_READ, rtp_input_rtcp_readable, leg);
	leg->hk_timer = evloop_timer_new(leg->loop, on_housekeeping, leg);
	leg->ro_timer = evloop_timer_new(leg->loop, rtp_input_gap_expired, leg);
	if (!leg->rtp_io || !leg->rtcp_io || !leg->hk_timer || !leg->ro_timer) {
		err = -ENOMEM;
		goto out_free;
	}
	evloop_timer_start(leg->hk_timer, HOUSEKEEPING_MS);
	leg->up = true;
	log_debug(leg->sid, "rtp_leg: up on %s:%u (advertised %s), ssrc %08x, pt %d/%u, srtp %d",
		  p->bind_ip ? p->bind_ip : "0.0.0.0", leg->port, leg->advertised_ip, leg->ssrc,
		  leg->pt, leg->clock_rate, (int)leg->suite);
	explicit_bzero(lkey, sizeof(lkey));
	explicit_bzero(rkey, sizeof(rkey));
	return leg;

out_free:
	explicit_bzero(lkey, sizeof(lkey));
	explicit_bzero(rkey, sizeof(rkey));
	leg_free(leg); /* releases the port pair when one was taken */
out_errno:
	errno = -err;
	return NULL;
}

uint16_t rtp_leg_local_port(const struct rtp_leg *leg)
{
	return leg->port;
}

const char *rtp_leg_advertised_ip(const struct rtp_leg *leg)
{
	return leg->advertised_ip;
}

const char *rtp_leg_sid(const struct rtp_leg *leg)
{
	return leg->sid;
}

/* ---------------------------------------------------------------- send */

int rtp_leg_send(struct rtp_leg *leg, const uint8_t *payload, size_t len, uint32_t samples)
{
	uint32_t ts = leg->next_ts;
	uint64_t now = mono_ms();
	mblk_t *m;
	int r;

	if (!len || len > MAX_PAYLOAD || leg->zombie)
		return -EINVAL;
	leg->next_ts += samples;
	if (leg->sent_any && now - leg->last_send_ms > leg->silence_ms)
		leg->mark_next = true;
	leg->last_send_ms = now;
	if (leg->on_hold || leg->dtx_active || !rtp_latch_dest_rtp(leg))
		return 0;
	m = rtp_session_create_packet(leg->s, RTP_FIXED_HEADER_SIZE, payload, len);
	if (!m)
		return -ENOMEM;
	if (!leg->sent_any || leg->mark_next)
		rtp_set_markbit(m, 1);
	rtp_leg_enter(leg); /* a failure callback may destroy the leg */
	r = rtp_ortp_send(leg, m, ts);
	if (r == 0) {
		leg->sent_any = true;
		leg->mark_next = false;
	}
	rtp_leg_leave(leg);
	return r;
}

int rtp_leg_send_video(struct rtp_leg *leg, const uint8_t *payload, size_t len, uint32_t ts,
		       bool marker)
{
	mblk_t *m;
	int r;

	if (!leg->video || !len || len > MAX_PAYLOAD || leg->zombie)
		return -EINVAL;
	leg->next_ts = ts;
	leg->last_send_ms = mono_ms();
	if (leg->on_hold || !rtp_latch_dest_rtp(leg))
		return 0;
	m = rtp_session_create_packet(leg->s, RTP_FIXED_HEADER_SIZE, payload, len);
	if (!m)
		return -ENOMEM;
	rtp_set_markbit(m, marker ? 1 : 0);
	rtp_leg_enter(leg); /* a failure callback may destroy the leg */
	r = rtp_ortp_send(leg, m, ts);
	if (r == 0)
		leg->sent_any = true;
	rtp_leg_leave(leg);
	return r;
}

uint32_t rtp_leg_send_clock(const struct rtp_leg *leg)
{
	return leg->next_ts;
}

int rtp_leg_request_keyframe(struct rtp_leg *leg, bool fir)
{
	uint64_t now = mono_ms();
	int r;

	if (!leg->video || leg->zombie)
		return -EINVAL;
	if (!leg->know_remote_ssrc)
		return -EAGAIN;
	if (leg->kf_req_ms && now - leg->kf_req_ms < KEYFRAME_REQ_MS)
		return 0;
	leg->kf_req_ms = now;
	rtp_leg_enter(leg);
	r = rtp_ortp_send_keyframe_request(leg, leg->remote_ssrc, fir);
	if (r == 0)
		leg->st.keyframe_requests_sent++;
	rtp_leg_leave(leg);
	return r == -ENOTCONN ? -EAGAIN : r;
}

void rtp_leg_skip(struct rtp_leg *leg, uint32_t samples)
{
	leg->next_ts += samples;
	leg->mark_next = true;
}

/* ---------------------------------------------------------------- housekeeping */

static void on_housekeeping(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct rtp_leg *leg = arg;
	uint64_t now = mono_ms();

	(void)loop;
	rtp_leg_enter(leg);
	/* RTCP goes out even while not sending media. oRTP schedules receiver reports from the
	 * time of its last read: an empty read (its queue is emptied on arrival) at the local
	 * timestamp clock keeps that time going, as media reads did. */
	{
		mblk_t *m = rtp_session_recvm_with_ts(leg->s, rtp_input_clock_now(leg));

		if (m)
			freemsg(m);
	}
	rtp_session_rtcp_process_send(leg->s);
	rtp_dtmf_expire(leg, now);
	if (!leg->zombie && leg->timeout_ms && !leg->on_hold && !leg->timed_out &&
	    now - leg->last_rx_ms >= leg->timeout_ms) {
		leg->timed_out = true;
		/* Release the latch: media goes to the signalled remote again, and the peer (whose
		 * NAT binding may have moved) is latched again by the rule (rtp_latch.c). */
		rtp_latch_release(leg);
		log_info(leg->sid, "rtp_leg: no RTP for %u ms on port %u", leg->timeout_ms,
			 leg->port);
		if (leg->cb.on_timeout)
			leg->cb.on_timeout(leg, leg->cb.arg);
	}
	if (!leg->zombie)
		evloop_timer_start(t, HOUSEKEEPING_MS);
	rtp_leg_leave(leg);
}

/* ---------------------------------------------------------------- updates */

int rtp_leg_set_remote(struct rtp_leg *leg, const char *ip, uint16_t port, uint16_t rtcp_port)
{
	struct addr rtp = {0}, rtcp = {0};

	if (ip) {
		if (!port || rtp_addr_parse(&rtp, ip, port, leg->family) ||
		    rtp_addr_parse(&rtcp, ip, rtcp_port ? rtcp_port : (uint16_t)(port + 1u),
				   leg->family))
			return -EINVAL;
	}
	if (!rtp_addr_same(&leg->sig_rtp, &rtp) || !rtp_addr_same(&leg->sig_rtcp, &rtcp))
		rtp_latch_release(leg); /* another peer address: learning starts again */
	leg->sig_rtp = rtp;
	leg->sig_rtcp = rtcp;
	leg->expect_ssrc = false;
	leg->last_rx_ms = mono_ms();
	leg->timed_out = false;
	return 0;
}

int rtp_leg_set_payload(struct rtp_leg *leg, int payload_type, uint32_t clock_rate,
			uint32_t samples_per_frame, int tev_payload_type)
{
	int tev = leg->video ? -1 : tev_payload_type ? tev_payload_type : RTP_LEG_DEFAULT_TEV_PT;
	int err;

	if (!rtp_ortp_payload_ok(payload_type, clock_rate, samples_per_frame, tev))
		return -EINVAL;
	err = rtp_ortp_profile_set(leg, payload_type, clock_rate, tev);
	if (err)
		return err;
	leg->spf = samples_per_frame;
	rtp_session_resync(leg->s);
	rtp_input_restart(leg);
	reorder_setup(leg);
	return 0;
}

void rtp_leg_set_hold(struct rtp_leg *leg, bool on_hold)
{
	if (leg->on_hold == on_hold)
		return;
	leg->on_hold = on_hold;
	if (on_hold) {
		leg->dq_count = 0; /* queued DTMF is dropped; an event on the wire is abandoned */
	} else {
		leg->mark_next = true;
		leg->last_rx_ms = mono_ms();
		leg->timed_out = false;
	}
}

/* ---------------------------------------------------------------- stats, state */

void rtp_leg_get_stats(const struct rtp_leg *leg, struct rtp_leg_stats *st)
{
	float rtt = rtp_session_get_round_trip_propagation(leg->s);
	int64_t lost = leg->rx_lost_before;

	*st = leg->st;
	if (leg->rx_init)
		lost += (int64_t)leg->rx_cycles + leg->rx_max_seq - leg->rx_base + 1 -
			(int64_t)leg->rx_count;
	st->packets_lost = lost > 0 ? lost : 0;
	st->frames_late += leg->ro.late;
	st->reordered = leg->ro.reordered;
	st->jitter = leg->jit16 >> 4;
	st->jitter_ms = (uint32_t)((uint64_t)st->jitter * 1000u / leg->clock_rate);
	st->rtt_ms = rtt >= 0 ? rtt * 1000.0f : -1.0f;
}

void rtp_leg_get_state(const struct rtp_leg *leg, struct rtp_leg_state *st)
{

	memset(st, 0, sizeof(*st));
	st->ssrc = leg->ssrc;
	st->next_seq = rtp_session_get_seq_number(leg->s);
	st->next_ts = leg->next_ts;
	st->send_roc = leg->send_roc;
	st->saved_at_ms = realtime_ms();
	if (leg->sig_rtp.len) { /* the signalled remote, never the latch: see rtp_leg_state */
		rtp_addr_ip(&leg->sig_rtp, st->remote_ip, sizeof(st->remote_ip));
		st->remote_port = rtp_addr_port(&leg->sig_rtp);
		st->remote_rtcp_port = rtp_addr_port(&leg->sig_rtcp);
	}
	st->payload_type = leg->pt;
	st->tev_payload_type = leg->tev_pt;
	st->clock_rate = leg->clock_rate;
	st->samples_per_frame = leg->spf;
	st->srtp_suite = leg->suite;
	memcpy(st->local_key, leg->local_key, sizeof(st->local_key));
	memcpy(st->remote_key, leg->remote_key, sizeof(st->remote_key));
	st->has_remote_ssrc = leg->know_remote_ssrc;
	st->remote_ssrc = leg->remote_ssrc;
	if (leg->rx && leg->know_remote_ssrc)
		(void)srtp_get_stream_roc(leg->rx, leg->remote_ssrc, &st->recv_roc);
	st->on_hold = leg->on_hold;
}
