/*
 * rtp_input.c - the RTP leg's receive path (rtp_leg_int.h): the sockets drained with recvmmsg()
 * (a bounded burst per readable event), then each datagram, on a private copy: source check and
 * learning (rtp_latch.c), header bounds, payload type and SSRC, SRTP unprotect (rtp_srtp.c's
 * contexts), padding strip, loss bookkeeping; then handed to oRTP's receive path, stamped with
 * the pull clock (top of rtp_leg.c). Telephone events go to rtp_dtmf.c as well.
 * rtp_leg_input_packet() and the like enter here too (tests, fuzzing).
 */
#include "rtp_leg_int.h"

#include "buf.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#define RECV_BURST     64   /* datagrams read per readable event (fairness) */
#define RECV_BATCH     8    /* datagrams per recvmmsg() */
#define RECV_BUF       2048 /* larger datagrams are dropped as malformed */
#define RTCP_MAX_PARTS 16

/* The pull clock now, in timestamp units (see the top of rtp_leg.c). */
static uint32_t pull_clock_now(const struct rtp_leg *leg)
{
	uint64_t us = mono_us() - leg->pull_time_us;

	return leg->pull_ts + (uint32_t)(us * leg->clock_rate / 1000000u);
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

/* Hands an accepted datagram @p (@len bytes, from @from) to oRTP's receive path through @t. */
static void inject(struct rtp_leg *leg, RtpTransport *t, const uint8_t *p, size_t len,
		   const struct sockaddr *from, socklen_t fromlen)
{
	mblk_t *m = allocb(len, 0);

	memcpy(m->b_wptr, p, len);
	m->b_wptr += len;
	memcpy(&m->net_addr, from, fromlen <= sizeof(m->net_addr) ? fromlen : sizeof(m->net_addr));
	m->net_addrlen = fromlen;
	m->reserved1 = pull_clock_now(leg);
	meta_rtp_transport_modifier_inject_packet_to_recv(t, NULL, m, 0);
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
	uint32_t ssrc, ts;
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
	leg->know_remote_ssrc = true;
	leg->remote_ssrc = ssrc;
	leg->last_rx_ms = mono_ms();
	leg->timed_out = false;
	rx_seq_account(leg, ssrc, seq);
	leg->st.packets_received++;
	leg->st.bytes_received += len;
	if (len == (size_t)hl)
		return 0; /* no payload: a keepalive */

	ts = rd_be32(p + 4);
	inject(leg, leg->meta_rtp, p, len, from, fromlen);
	if (pt == leg->tev_pt)
		rtp_dtmf_input(leg, p + hl, len - (size_t)hl, ts);
	return 0;
}

/* A compound RTCP packet: every part version 2, SR/RR/SDES/BYE/APP, lengths within bounds. */
static bool rtcp_compound_valid(const uint8_t *p, size_t len)
{
	size_t off = 0;
	unsigned parts = 0;

	if (len < 8 || (p[1] != 200 && p[1] != 201))
		return false;
	while (off < len) {
		const uint8_t *h = p + off;
		size_t plen, rc;

		if (len - off < 4 || (h[0] >> 6) != 2 || h[1] < 200 || h[1] > 204)
			return false;
		plen = 4u * ((size_t)rd_be16(h + 2) + 1u);
		rc = h[0] & 0x1fu;
		if (plen > len - off || ++parts > RTCP_MAX_PARTS)
			return false;
		if (h[1] == 200 && plen < 28u + 24u * rc)
			return false;
		if (h[1] == 201 && plen < 8u + 24u * rc)
			return false;
		if (h[0] & 0x20u) {
			if (off + plen != len || h[plen - 1] == 0 || h[plen - 1] > plen - 4u)
				return false;
		}
		off += plen;
	}
	return true;
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
	inject(leg, leg->meta_rtcp, p, len, from, fromlen);
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
