/*
 * rtp_latch.c - strict latching for the RTP leg (rtp_leg_int.h): whose RTP is played, and where
 * ours goes. The receive path (rtp_input.c) asks twice: before it looks at a packet
 * (rtp_latch_refuses), and once the packet has proved valid (rtp_latch_accept).
 *
 * Strict latching: whose RTP is played, and where ours goes. S is the signalled remote (the
 * peer's SDP), L the latched source (where media goes; S until something is latched), X any
 * other source; N = RTP_LEG_LATCH_PACKETS (4), T = RTP_LEG_LATCH_GUARD_MS (500 ms), both per
 * leg from the params. "Valid": RTP version 2, header lengths within the datagram, our audio or
 * telephone-event payload type, the expected SSRC when one is known, SRTP authentication when
 * keyed, sane padding.
 *
 *      packet from L ............................................... valid: played
 *      packet from S (address and port), L != S .................... valid: L := S, played
 *      packet from X, no S signalled yet ........................... dropped unchecked (the
 *          peer has not answered: a source learned now could only be a sprayer, and would
 *          hear what the caller says while it rings)
 *      packet from X, L spoke less than T before it arrived ........ dropped unchecked
 *      packet from X, otherwise:
 *          SRTP leg ............................................... authentic: L := X, played
 *          plain RTP leg: a learning run: same X, same SSRC, sequence 1..8 above the run's
 *          last one ? one longer : a new run of 1 from X. The run reaches N: L := X, played;
 *          shorter .................................................. dropped
 *
 *                       S; a run of N from X; 1 authentic from X
 *      [not latched] -------------------------------------------> [latched to L] --+
 *            ^                                                        |    ^        |
 *            +--- another S signalled (rtp_leg_set_remote), RTP timeout    +--------+
 *                                                                  S; or, L silent for T:
 *                                                                  a run of N / 1 authentic
 *
 * Every drop from a source other than L counts in stats.unexpected_source and reaches neither
 * oRTP nor the decoder; a valid packet from L or S ends any learning run (L is alive). Latching
 * to a source other than S, and every move of L, is counted in stats.latch_changes and logged
 * with the old and new address (the first LATCH_LOG_MAX of a leg). "Spoke" is measured on the
 * kernel's arrival times (SO_TIMESTAMPNS), so a worker that stalled does not take its own receive
 * backlog for a silence of the peer. What it buys: a sprayer of the port range never captures a leg
 * whose peer talks, and a single forged packet moves nothing. What it cannot tell apart without
 * SRTP: before S's first packet (or while L is silent), a run of N well-formed packets from X is a
 * peer behind NAT as far as anyone can see; S's next packet takes the leg back at once.
 *
 * RTCP follows RTP's latch: taken from anywhere while nothing is latched; once RTP is latched,
 * only from L's address (any port), and the first such packet latches RTCP to its address and
 * port. Ours goes to the RTCP latch, else to L's port + 1 when L is not S, else to S's RTCP port.
 */
#include "rtp_leg_int.h"

#include "log.h"

#define LEARN_SEQ_STEP 8  /* a learning run's sequence may skip this many - 1 lost packets */
#define LATCH_LOG_MAX  20 /* latch changes logged per leg */

enum rtp_source rtp_latch_source(const struct rtp_leg *leg, const struct sockaddr *from)
{
	if (rtp_addr_match(&leg->latch_rtp, from, true))
		return SRC_LATCHED;
	if (rtp_addr_match(&leg->sig_rtp, from, true))
		return SRC_SIGNALLED;
	return SRC_OTHER;
}

/* The latched source spoke less than the guard time before @arrival_ms: no one else may take
 * its place (a packet from it arriving "before" the last one counts as spoken too). */
static bool latch_guarded(const struct rtp_leg *leg, uint64_t arrival_ms)
{
	return leg->latch_rtp.len && arrival_ms < leg->latch_rx_ms + leg->latch_guard_ms;
}

bool rtp_latch_refuses(struct rtp_leg *leg, enum rtp_source src, uint64_t arrival_ms)
{
	if (src == SRC_OTHER && (!leg->sig_rtp.len || latch_guarded(leg, arrival_ms))) {
		leg->st.unexpected_source++;
		return true;
	}
	return false;
}

/*
 * One valid packet (@ssrc, @seq) from a source neither latched nor signalled, on a plain RTP
 * leg: extends that source's learning run or starts a new one. True when the run has reached
 * latch_packets, i.e. the source may be latched.
 */
static bool learn_step(struct rtp_leg *leg, const struct sockaddr *from, socklen_t fromlen,
		       uint32_t ssrc, uint16_t seq)
{
	uint16_t step = (uint16_t)(seq - leg->learn.seq);

	if (leg->learn.count && rtp_addr_match(&leg->learn.from, from, true) &&
	    ssrc == leg->learn.ssrc && step >= 1 && step <= LEARN_SEQ_STEP) {
		leg->learn.count++;
	} else {
		rtp_addr_from_sa(&leg->learn.from, from, fromlen);
		leg->learn.ssrc = ssrc;
		leg->learn.count = 1;
	}
	leg->learn.seq = seq;
	return leg->learn.count >= leg->latch_packets;
}

/*
 * Latches RTP to @from (@how: why it may). The RTCP latch belonged to the previous source and
 * is dropped. Anything but the plain case (first latch, to the signalled remote) is logged and
 * counted; on_latched hears of latches to a source other than the signalled one.
 */
static void latch_rtp(struct rtp_leg *leg, const struct sockaddr *from, socklen_t fromlen,
		      const char *how)
{
	char was[ADDR_STR_MAX], now[ADDR_STR_MAX], sig[ADDR_STR_MAX];
	bool to_sig = rtp_addr_match(&leg->sig_rtp, from, true);
	struct addr prev = leg->latch_rtp;

	rtp_addr_from_sa(&leg->latch_rtp, from, fromlen);
	leg->latch_rtcp.len = 0;
	leg->learn.count = 0;
	if (!prev.len && to_sig)
		return;
	if (++leg->st.latch_changes <= LATCH_LOG_MAX) /* a peer and a sprayer may take turns */
		log_info(leg->sid, "rtp_leg: RTP latch on port %u %s -> %s (%s; signalled %s)%s",
			 leg->port, rtp_addr_str(&prev, was, sizeof(was)),
			 rtp_addr_str(&leg->latch_rtp, now, sizeof(now)), how,
			 rtp_addr_str(&leg->sig_rtp, sig, sizeof(sig)),
			 leg->st.latch_changes == LATCH_LOG_MAX ? "; further changes counted only"
								: "");
	if (!to_sig && leg->cb.on_latched) {
		rtp_leg_enter(leg);
		leg->cb.on_latched(leg, from, leg->cb.arg);
		rtp_leg_leave(leg);
	}
}

bool rtp_latch_accept(struct rtp_leg *leg, enum rtp_source src, const struct sockaddr *from,
		      socklen_t fromlen, uint32_t ssrc, uint16_t seq, uint64_t arrival_ms)
{
	if (src == SRC_OTHER && !leg->rx && !learn_step(leg, from, fromlen, ssrc, seq)) {
		leg->st.unexpected_source++;
		return false;
	}
	if (src != SRC_LATCHED) {
		latch_rtp(leg, from, fromlen,
			  src == SRC_SIGNALLED ? "signalled address"
			  : leg->rx	       ? "SRTP authenticated"
					       : "learned: a run of valid packets");
		if (leg->zombie)
			return true;
	}
	if (arrival_ms > leg->latch_rx_ms)
		leg->latch_rx_ms = arrival_ms;
	leg->learn.count = 0;
	return true;
}

bool rtp_latch_rtcp_refuses(struct rtp_leg *leg, const struct sockaddr *from)
{
	if ((leg->latch_rtcp.len && !rtp_addr_match(&leg->latch_rtcp, from, true)) ||
	    (!leg->latch_rtcp.len && leg->latch_rtp.len &&
	     !rtp_addr_match(&leg->latch_rtp, from, false))) {
		leg->st.unexpected_source++;
		return true;
	}
	return false;
}

void rtp_latch_rtcp_accept(struct rtp_leg *leg, const struct sockaddr *from, socklen_t fromlen)
{
	if (!leg->latch_rtcp.len && leg->latch_rtp.len) /* same address as the RTP latch */
		rtp_addr_from_sa(&leg->latch_rtcp, from, fromlen);
}

void rtp_latch_release(struct rtp_leg *leg)
{
	leg->latch_rtp.len = 0;
	leg->latch_rtcp.len = 0;
	leg->learn.count = 0;
}

/* ---------------------------------------------------------------- destinations */

const struct addr *rtp_latch_dest_rtp(const struct rtp_leg *leg)
{
	if (leg->latch_rtp.len)
		return &leg->latch_rtp;
	return leg->sig_rtp.len ? &leg->sig_rtp : NULL;
}

bool rtp_latch_dest_rtcp(const struct rtp_leg *leg, struct addr *out)
{
	if (leg->latch_rtcp.len) {
		*out = leg->latch_rtcp;
		return true;
	}
	if (leg->latch_rtp.len &&
	    !(leg->sig_rtp.len && rtp_addr_match(&leg->sig_rtp, &leg->latch_rtp.u.sa, true))) {
		*out = leg->latch_rtp;
		rtp_addr_set_port(out, (uint16_t)(rtp_addr_port(out) + 1u));
		return true;
	}
	if (leg->sig_rtcp.len) {
		*out = leg->sig_rtcp;
		return true;
	}
	return false;
}
