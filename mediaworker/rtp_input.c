/*
 * rtp_input.c - the RTP leg's receive path (rtp_leg_int.h): the sockets drained with recvmmsg()
 * (a bounded burst per readable event), then each datagram, on a private copy: source check and
 * learning (rtp_latch.c), header bounds, payload type and SSRC, SRTP unprotect (rtp_srtp.c's
 * contexts), padding strip, loss bookkeeping; then handed to oRTP's receive path for its
 * statistics and RTCP reports (stamped with a local timestamp clock, and taken back out of its
 * queue at once), and to the reorder stage (rtp_reorder.c), which gives the frames to the user
 * in order as they arrive: cb.on_frame, or the pull queue of rtp_leg_pull(). Telephone events
 * go to rtp_dtmf.c as well. rtp_leg_input_packet() and the like enter here too (tests,
 * fuzzing).
 *
 *   datagram --> checks, SRTP --> oRTP (stats, RTCP) --> queue emptied
 *                              \-> rtp_reorder_push --> emit: audio of this stream --> on_frame
 *                                    | gap open: held      lost: on_frame(lost)     or pull queue
 *                                    v
 *                                  ro_timer at the deadline --> rtp_reorder_expire --> emit
 */
#include "rtp_leg_int.h"

#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#define RECV_BURST     64   /* datagrams read per readable event (fairness) */
#define RECV_BATCH     8    /* datagrams per recvmmsg() */
#define RECV_BUF       2048 /* larger datagrams are dropped as malformed */
#define RTCP_MAX_PARTS 16
#define PULL_QUEUE     8 /* frames waiting for rtp_leg_pull() */

/* Frames for rtp_leg_pull(), when the leg has no on_frame callback. */
struct pull_queue {
	unsigned head, count;
	struct {
		bool lost;
		size_t len;
		uint8_t data[RTP_LEG_MAX_PACKET];
	} f[PULL_QUEUE];
};

/* The local timestamp clock at @now_us (monotonic). */
static uint32_t clock_at(const struct rtp_leg *leg, uint64_t now_us)
{
	uint64_t us = now_us - leg->pull_time_us;

	return leg->pull_ts + (uint32_t)(us * leg->clock_rate / 1000000u);
}

uint32_t rtp_input_clock_now(const struct rtp_leg *leg)
{
	return clock_at(leg, mono_us());
}

/*
 * Header length of an RTP packet, or -1 when the version, CSRC count or extension length do
 * not fit in @len bytes.
 */
static int rtp_header_len(const uint8_t *p, size_t len)
{
	size_t hl;

	if (len < 12 || (p[0] >> 6) != 2)
		return -1;
	hl = 12u + 4u * (p[0] & 0x0fu);
	if (hl > len)
		return -1;
	if (p[0] & 0x10u) {
		if (hl + 4u > len)
			return -1;
		hl += 4u + 4u * rd_be16(p + hl + 2);
		if (hl > len)
			return -1;
	}
	return (int)hl;
}

static void rx_seq_account(struct rtp_leg *leg, uint32_t ssrc, uint16_t seq)
{
	if (leg->rx_init && ssrc != leg->rx_ssrc) {
		int64_t expected = (int64_t)leg->rx_cycles + leg->rx_max_seq - leg->rx_base + 1;

		leg->rx_lost_before += expected - (int64_t)leg->rx_count;
		leg->rx_init = false;
	}
	if (!leg->rx_init) {
		leg->rx_init = true;
		leg->rx_ssrc = ssrc;
		leg->rx_base = seq;
		leg->rx_max_seq = seq;
		leg->rx_cycles = 0;
		leg->rx_count = 0;
	} else if ((uint16_t)(seq - leg->rx_max_seq) < 0x8000u) {
		if (seq < leg->rx_max_seq)
			leg->rx_cycles += 65536u;
		leg->rx_max_seq = seq;
	}
	leg->rx_count++;
}

/* Hands an accepted datagram @p (@len bytes, from @from) to oRTP's receive path through @t,
 * stamped @stamp on the local timestamp clock. */
static void inject(struct rtp_leg *leg, RtpTransport *t, const uint8_t *p, size_t len,
		   const struct sockaddr *from, socklen_t fromlen, uint32_t stamp)
{
	mblk_t *m = allocb(len, 0);

	memcpy(m->b_wptr, p, len);
	m->b_wptr += len;
	memcpy(&m->net_addr, from, fromlen <= sizeof(m->net_addr) ? fromlen : sizeof(m->net_addr));
	m->net_addrlen = fromlen;
	m->reserved1 = stamp;
	meta_rtp_transport_modifier_inject_packet_to_recv(t, NULL, m, 0);
}

/* RFC 3550 A.8: interarrival jitter from the packet's timestamp @ts and its arrival @now_ts. */
static void jitter_account(struct rtp_leg *leg, uint32_t ts, uint32_t now_ts)
{
	uint32_t transit = now_ts - ts, d;

	if (!leg->jit_init) {
		leg->jit_init = true;
		leg->jit_transit = transit;
		return;
	}
	d = transit - leg->jit_transit; /* |D| in modular arithmetic: any 32-bit values */
	if (d > 0x80000000u)
		d = 0u - d;
	leg->jit_transit = transit;
	if (d > 60u * leg->clock_rate)
		return; /* a minute off: the peer's clock jumped (a new stream), no jitter */
	leg->jit16 += d - ((leg->jit16 + 8u) >> 4);
}

static void pull_queue_put(struct rtp_leg *leg, const uint8_t *payload, size_t len, bool lost)
{
	struct pull_queue *q = leg->pq;
	unsigned slot;

	if (len > sizeof(q->f[0].data)) { /* a datagram can be larger than a frame we keep */
		leg->st.bad_packets++;
		return;
	}
	if (!q) {
		q = leg->pq = calloc(1, sizeof(*q));
		if (!q)
			return;
	}
	if (q->count == PULL_QUEUE) { /* nobody pulled: the oldest goes */
		q->head = (q->head + 1u) % PULL_QUEUE;
		q->count--;
		leg->st.frames_late++;
	}
	slot = (q->head + q->count++) % PULL_QUEUE;
	q->f[slot].lost = lost;
	q->f[slot].len = len;
	if (len)
		memcpy(q->f[slot].data, payload, len);
}

int rtp_leg_pull(struct rtp_leg *leg, uint8_t *out, size_t *len, bool *lost)
{
	struct pull_queue *q = leg->pq;
	size_t cap = *len;
	int r = 0;

	*len = 0;
	*lost = false;
	if (!q || !q->count)
		return 0;
	if (q->f[q->head].len > cap) {
		r = -EMSGSIZE;
	} else {
		*lost = q->f[q->head].lost;
		*len = q->f[q->head].len;
		memcpy(out, q->f[q->head].data, *len);
	}
	q->head = (q->head + 1u) % PULL_QUEUE;
	q->count--;
	return r;
}

/* The reorder stage's output: audio frames of the stream, in order. */
static void emit(void *arg, const struct rtp_reorder_frame *f)
{
	struct rtp_leg *leg = arg;

	if (leg->zombie)
		return;
	if (leg->video) {
		if (f->lost)
			leg->st.frames_lost++;
		if ((f->lost || (f->len && f->pt == leg->pt)) && leg->cb.on_packet)
			leg->cb.on_packet(leg, f, leg->cb.arg);
		return;
	}
	if (f->lost)
		leg->st.frames_lost++;
	else if (!f->len || f->pt != leg->pt)
		return; /* a keepalive, a telephone event: their numbers only keep the sequence */
	if (leg->cb.on_frame && f->lost && f->next && f->next_pt == leg->pt)
		leg->cb.on_frame(leg, f->next, f->next_len, f->ts, true, leg->cb.arg);
	else if (leg->cb.on_frame)
		leg->cb.on_frame(leg, f->payload, f->len, f->ts, f->lost, leg->cb.arg);
	else
		pull_queue_put(leg, f->payload, f->len, f->lost);
}

/* Arms the gap timer for the reorder stage's deadline, or stops it. */
static void gap_timer_update(struct rtp_leg *leg, uint64_t now_us)
{
	uint64_t due = rtp_reorder_deadline(&leg->ro);

	if (!leg->ro_timer || leg->zombie)
		return;
	if (!due) {
		evloop_timer_stop(leg->ro_timer);
		return;
	}
	evloop_timer_start(leg->ro_timer, due > now_us ? (due - now_us + 999u) / 1000u : 0);
}

/*
 * The packet's frame into the reorder stage. Audio under a new SSRC is a new stream (the peer
 * restarted it): what is held goes first. Telephone events count in the sequence of the stream
 * they belong to, and only then (some peers send them under an SSRC of their own).
 */
static void reorder_input(struct rtp_leg *leg, const uint8_t *p, size_t hl, size_t len, int pt,
			  uint32_t ssrc, uint16_t seq, uint32_t ts, uint64_t now)
{
	if (pt == leg->pt && (!leg->ro.started || ssrc != leg->ro_ssrc)) {
		if (leg->ro.started)
			rtp_reorder_flush(&leg->ro, emit, leg);
		rtp_reorder_reset(&leg->ro);
		leg->ro_ssrc = ssrc;
	} else if (pt != leg->pt && (!leg->ro.started || ssrc != leg->ro_ssrc)) {
		return;
	}
	(void)rtp_reorder_push(&leg->ro, seq, ts, (p[1] & 0x80u) != 0, (uint8_t)pt, p + hl,
			       len - hl, now, emit, leg);
	gap_timer_update(leg, now);
}

void rtp_input_gap_expired(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct rtp_leg *leg = arg;
	uint64_t now = mono_us();

	(void)loop, (void)t;
	rtp_leg_enter(leg);
	rtp_reorder_expire(&leg->ro, now, emit, leg);
	gap_timer_update(leg, now);
	rtp_leg_leave(leg);
}

void rtp_input_restart(struct rtp_leg *leg)
{
	rtp_reorder_reset(&leg->ro);
	if (leg->ro_timer)
		evloop_timer_stop(leg->ro_timer);
	if (leg->pq)
		leg->pq->count = 0;
}

void rtp_input_free(struct rtp_leg *leg)
{
	rtp_reorder_free(&leg->ro);
	free(leg->pq);
	leg->pq = NULL;
}

/*
 * The RTP input path on a private copy @p (modified in place), for a datagram that arrived at
 * @arrival_ms (monotonic): validation, then the latching rule (rtp_latch.c), then oRTP.
 */
static int input_rtp(struct rtp_leg *leg, uint8_t *p, size_t len, const struct sockaddr *from,
		     socklen_t fromlen, uint64_t arrival_ms)
{
	enum rtp_source src = rtp_latch_source(leg, from);
	int hl, pt;
	uint32_t ssrc, ts, stamp;
	uint64_t now_us;
	uint16_t seq;

	if (rtp_latch_refuses(leg, src, arrival_ms))
		return -EPERM;
	hl = rtp_header_len(p, len);
	if (hl < 0) {
		leg->st.bad_packets++;
		return -EBADMSG;
	}
	pt = p[1] & 0x7f;
	if (pt != leg->pt && pt != leg->tev_pt) {
		leg->st.unknown_pt++;
		return -EPROTO;
	}
	ssrc = rd_be32(p + 8);
	seq = (uint16_t)rd_be16(p + 2);
	if (!leg->latch_rtp.len && leg->expect_ssrc && ssrc != leg->expected_ssrc) {
		leg->st.wrong_ssrc++;
		return -EPROTO;
	}
	if (leg->rx) {
		int err = rtp_srtp_unprotect(leg, p, &len, false);

		if (err)
			return err;
		if ((size_t)hl > len) {
			leg->st.bad_packets++;
			return -EBADMSG;
		}
	}
	if (p[0] & 0x20u) {
		size_t pad = len > (size_t)hl ? p[len - 1] : 0;

		if (pad == 0 || pad > len - (size_t)hl) {
			leg->st.bad_packets++;
			return -EBADMSG;
		}
		len -= pad;
		p[0] &= (uint8_t)~0x20u;
	}
	if (!rtp_latch_accept(leg, src, from, fromlen, ssrc, seq, arrival_ms))
		return -EPERM;

	/* accepted */
	if (leg->zombie)
		return 0;
	now_us = mono_us(); /* one clock read for the leg's timeout, jitter, oRTP and the reorder */
	leg->know_remote_ssrc = true;
	leg->remote_ssrc = ssrc;
	leg->last_rx_ms = now_us / 1000u;
	leg->timed_out = false;
	rx_seq_account(leg, ssrc, seq);
	leg->st.packets_received++;
	leg->st.bytes_received += len;
	if (len == (size_t)hl) {
		reorder_input(leg, p, (size_t)hl, len, pt, ssrc, seq, rd_be32(p + 4), now_us);
		return 0; /* no payload: a keepalive (its number keeps the sequence) */
	}

	ts = rd_be32(p + 4);
	stamp = clock_at(leg, now_us);
	jitter_account(leg, ts, stamp);
	inject(leg, leg->meta_rtp, p, len, from, fromlen, stamp);
	flushq(&leg->s->rtp.rq, FLUSHALL); /* oRTP keeps statistics only: no playout queue */
	if (pt == leg->tev_pt)
		rtp_dtmf_input(leg, p + hl, len - (size_t)hl, ts);
	if (!leg->zombie)
		reorder_input(leg, p, (size_t)hl, len, pt, ssrc, seq, ts, now_us);
	return 0;
}

/* A compound RTCP packet: every part version 2, SR/RR/SDES/BYE/APP or feedback (RTPFB/PSFB,
 * RFC 4585), lengths within bounds. */
static bool rtcp_compound_valid(const uint8_t *p, size_t len)
{
	size_t off = 0;
	unsigned parts = 0;

	if (len < 8 || (p[1] != 200 && p[1] != 201))
		return false;
	while (off < len) {
		const uint8_t *h = p + off;
		size_t plen, rc;

		if (len - off < 4 || (h[0] >> 6) != 2 || h[1] < 200 || h[1] > 206)
			return false;
		plen = 4u * ((size_t)rd_be16(h + 2) + 1u);
		rc = h[0] & 0x1fu;
		if (plen > len - off || ++parts > RTCP_MAX_PARTS)
			return false;
		if (h[1] == 200 && plen < 28u + 24u * rc)
			return false;
		if (h[1] == 201 && plen < 8u + 24u * rc)
			return false;
		if (h[1] >= 205 && plen < 12u) /* feedback: sender and media source SSRCs */
			return false;
		if (h[0] & 0x20u) {
			if (off + plen != len || h[plen - 1] == 0 || h[plen - 1] > plen - 4u)
				return false;
		}
		off += plen;
	}
	return true;
}

/* True when a valid compound packet (rtcp_compound_valid) holds a PLI or a FIR (PSFB formats 1
 * and 4): the peer wants a key frame. */
static bool rtcp_wants_keyframe(const uint8_t *p, size_t len)
{
	for (size_t off = 0; off + 4 <= len; off += 4u * ((size_t)rd_be16(p + off + 2) + 1u)) {
		unsigned fmt = p[off] & 0x1fu;

		if (p[off + 1] == 206 && (fmt == 1 || fmt == 4))
			return true;
	}
	return false;
}

static int input_rtcp(struct rtp_leg *leg, uint8_t *p, size_t len, const struct sockaddr *from,
		      socklen_t fromlen)
{
	if (rtp_latch_rtcp_refuses(leg, from))
		return -EPERM;
	if (len < 8 || (p[0] >> 6) != 2 || (p[1] != 200 && p[1] != 201)) {
		leg->st.bad_packets++;
		return -EBADMSG;
	}
	if (leg->rx) {
		int err = rtp_srtp_unprotect(leg, p, &len, true);

		if (err)
			return err;
	}
	if (!rtcp_compound_valid(p, len)) {
		leg->st.bad_packets++;
		return -EBADMSG;
	}
	rtp_latch_rtcp_accept(leg, from, fromlen);
	leg->st.rtcp_received++;
	if (leg->video && rtcp_wants_keyframe(p, len)) {
		leg->st.keyframe_requests_received++;
		if (leg->cb.on_keyframe_request)
			leg->cb.on_keyframe_request(leg, leg->cb.arg);
		if (leg->zombie)
			return 0;
	}
	inject(leg, leg->meta_rtcp, p, len, from, fromlen, rtp_input_clock_now(leg));
	return 0;
}

static int input_copy(struct rtp_leg *leg, const uint8_t *buf, size_t len,
		      const struct sockaddr *from, socklen_t fromlen, bool rtcp,
		      uint64_t arrival_ms)
{
	_Alignas(8) uint8_t p[RECV_BUF];
	int r;

	if (!leg || !from || fromlen < sizeof(struct sockaddr_in) ||
	    fromlen > sizeof(struct sockaddr_storage) || leg->zombie)
		return -EINVAL;
	if (len > sizeof(p)) {
		leg->st.bad_packets++;
		return -EMSGSIZE;
	}
	memcpy(p, buf, len);
	rtp_leg_enter(leg);
	r = rtcp ? input_rtcp(leg, p, len, from, fromlen)
		 : input_rtp(leg, p, len, from, fromlen, arrival_ms);
	rtp_leg_leave(leg);
	return r;
}

int rtp_leg_input_packet(struct rtp_leg *leg, const uint8_t *buf, size_t len,
			 const struct sockaddr *from, socklen_t fromlen)
{
	return input_copy(leg, buf, len, from, fromlen, false, mono_ms());
}

int rtp_leg_input_packet_at(struct rtp_leg *leg, const uint8_t *buf, size_t len,
			    const struct sockaddr *from, socklen_t fromlen, uint64_t arrival_ms)
{
	return input_copy(leg, buf, len, from, fromlen, false, arrival_ms);
}

int rtp_leg_input_rtcp_packet(struct rtp_leg *leg, const uint8_t *buf, size_t len,
			      const struct sockaddr *from, socklen_t fromlen)
{
	return input_copy(leg, buf, len, from, fromlen, true, 0);
}

/* Room for the one control message asked for: the receive time (SO_TIMESTAMPNS). */
union recv_ctl {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(struct timespec))];
};

/*
 * When datagram @h arrived, in monotonic ms: the kernel's receive time (wall clock) moved onto
 * the monotonic clock by its age at @real_now_ns; @mono_now_ms when the kernel gave none. An age
 * below 0 or beyond a minute (the wall clock was stepped) counts as none.
 */
static uint64_t arrival_time(struct msghdr *h, uint64_t mono_now_ms, int64_t real_now_ns)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
		struct timespec ts;
		int64_t age_ms;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS ||
		    c->cmsg_len < CMSG_LEN(sizeof(ts)))
			continue;
		memcpy(&ts, CMSG_DATA(c), sizeof(ts));
		age_ms = (real_now_ns - ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec)) / 1000000;
		if (age_ms < 0 || age_ms > 60000 || (uint64_t)age_ms > mono_now_ms)
			break;
		return mono_now_ms - (uint64_t)age_ms;
	}
	return mono_now_ms;
}

/*
 * Drains a socket with recvmmsg(): usually one datagram and one syscall per readable event (a
 * recvfrom() loop would pay a second call just to see EAGAIN). At most RECV_BURST datagrams
 * per event, so one flooded leg cannot starve the others. RTP datagrams come with their receive
 * times, for the latching guard.
 */
static void drain(struct rtp_leg *leg, int fd, bool rtcp)
{
	_Alignas(8) static uint8_t bufs[RECV_BATCH][RECV_BUF]; /* single-threaded loop */
	struct sockaddr_storage from[RECV_BATCH];
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	union recv_ctl ctl[RECV_BATCH];

	rtp_leg_enter(leg);
	for (unsigned got = 0; got < RECV_BURST && !leg->zombie;) {
		struct timespec real;
		int64_t real_ns;
		uint64_t mono;
		int n;

		for (unsigned i = 0; i < RECV_BATCH; i++) {
			iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = RECV_BUF};
			msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
							  .msg_namelen = sizeof(from[i]),
							  .msg_iov = &iov[i],
							  .msg_iovlen = 1};
			if (!rtcp) {
				msgs[i].msg_hdr.msg_control = ctl[i].buf;
				msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
			}
		}
		n = recvmmsg(fd, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED)
				rtp_leg_fail(leg, -errno);
			break;
		}
		mono = mono_ms();
		clock_gettime(CLOCK_REALTIME, &real);
		real_ns = (int64_t)real.tv_sec * 1000000000 + real.tv_nsec;
		for (int i = 0; i < n && !leg->zombie; i++) {
			struct msghdr *h = &msgs[i].msg_hdr;
			const struct sockaddr *sa = (const struct sockaddr *)&from[i];

			if (h->msg_flags & MSG_TRUNC)
				leg->st.bad_packets++;
			else if (rtcp)
				input_rtcp(leg, bufs[i], msgs[i].msg_len, sa, h->msg_namelen);
			else
				input_rtp(leg, bufs[i], msgs[i].msg_len, sa, h->msg_namelen,
					  arrival_time(h, mono, real_ns));
		}
		got += (unsigned)n;
		if (n < RECV_BATCH)
			break;
	}
	rtp_leg_leave(leg);
}

void rtp_input_rtp_readable(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
			    void *arg)
{
	(void)loop, (void)io, (void)events;
	drain(arg, fd, false);
}

void rtp_input_rtcp_readable(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
			     void *arg)
{
	(void)loop, (void)io, (void)events;
	drain(arg, fd, true);
}
