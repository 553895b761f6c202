/*
 * rtp_ortp.c - the RTP leg's oRTP session (rtp_leg_int.h): our endpoint under oRTP's meta
 * transports (SRTP protect, the destination, sendto), the payload profile and jitter buffer,
 * the session's set-up, and the send path through oRTP.
 *
 * Why an endpoint and not an RtpTransportModifier (as mediastreamer2's ms_srtp.c does): a
 * modifier that drops a packet (bad auth tag, wrong source) makes oRTP's receive loop stop
 * draining the socket, and needs msgpullup() reallocations to grow the buffer for the SRTP
 * tag. Owning the socket I/O in one endpoint gives one place for latching, hold and SRTP; the
 * endpoint's own recvfrom returns EWOULDBLOCK without a syscall, because the evloop callback
 * already drained the socket.
 */
#include "buf.h"
#include "rtp_leg_int.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SRTP_ROOM      (SRTP_MAX_TRAILER_LEN + 4)
#define JB_MAX_PACKETS 50 /* 1 s of 20 ms packets queued at most */
#define JB_MAX_MS      300

/* ---------------------------------------------------------------- oRTP endpoint */

static size_t mblk_linearize(mblk_t *m, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; m; m = m->b_cont) {
		size_t part = (size_t)(m->b_wptr - m->b_rptr);

		if (part > cap - n)
			return SIZE_MAX;
		memcpy(out + n, m->b_rptr, part);
		n += part;
	}
	return n;
}

static int ep_send(RtpTransport *t, mblk_t *m, bool is_rtp)
{
	struct rtp_leg *leg = t->data;
	_Alignas(8)
	    uint8_t pkt[RTP_LEG_MAX_PACKET + SRTP_ROOM]; /* libsrtp wants 32-bit alignment */
	size_t n = mblk_linearize(m, pkt, RTP_LEG_MAX_PACKET);
	struct addr rtcp_to;
	const struct addr *to;
	int len = (int)n;
	ssize_t r;

	if (n == SIZE_MAX) {
		errno = EMSGSIZE;
		goto out_err;
	}
	to = is_rtp ? rtp_latch_dest_rtp(leg)
		    : (rtp_latch_dest_rtcp(leg, &rtcp_to) ? &rtcp_to : NULL);
	if (!to) {
		errno = ENOTCONN;
		goto out_err;
	}
	if (leg->tx) {
		srtp_err_status_t e = is_rtp ? srtp_protect(leg->tx, pkt, &len)
					     : srtp_protect_rtcp(leg->tx, pkt, &len);

		if (e != srtp_err_status_ok) {
			if (!leg->failed) /* then the leg fails: say it once */
				log_error(leg->sid, "rtp_leg: srtp_protect%s failed (%d)",
					  is_rtp ? "" : "_rtcp", (int)e);
			leg->last_send_err = -EKEYREJECTED;
			leg->st.send_errors++;
			errno = EKEYREJECTED;
			return -1;
		}
	}
	r = sendto(is_rtp ? leg->rtp_fd : leg->rtcp_fd, pkt, (size_t)len, 0, &to->u.sa, to->len);
	if (r < 0)
		goto out_err;
	if (is_rtp) {
		leg->st.packets_sent++;
		leg->st.bytes_sent += n;
	} else {
		leg->st.rtcp_sent++;
	}
	return (int)r;

out_err:
	leg->last_send_err = -errno;
	if (errno != ENOTCONN)
		leg->st.send_errors++;
	return -1;
}

static int ep_rtp_sendto(RtpTransport *t, mblk_t *m, int flags, const struct sockaddr *to,
			 socklen_t tolen)
{
	(void)flags, (void)to, (void)tolen; /* the destination is ours to choose */
	return ep_send(t, m, true);
}

static int ep_rtcp_sendto(RtpTransport *t, mblk_t *m, int flags, const struct sockaddr *to,
			  socklen_t tolen)
{
	(void)flags, (void)to, (void)tolen;
	return ep_send(t, m, false);
}

/* oRTP polls for input on every pull; the evloop callback already drained the socket. */
static int ep_recvfrom(RtpTransport *t, mblk_t *m, int flags, struct sockaddr *from,
		       socklen_t *fromlen)
{
	(void)t, (void)m, (void)flags, (void)from, (void)fromlen;
	errno = EWOULDBLOCK;
	return -1;
}

static ortp_socket_t ep_rtp_socket(RtpTransport *t)
{
	return ((struct rtp_leg *)t->data)->rtp_fd;
}

static ortp_socket_t ep_rtcp_socket(RtpTransport *t)
{
	return ((struct rtp_leg *)t->data)->rtcp_fd;
}

/* The endpoints live inside struct rtp_leg: nothing to close or free. */
static void ep_close(RtpTransport *t)
{
	(void)t;
}

static void ep_destroy(RtpTransport *t)
{
	(void)t;
}

/*
 * oRTP signal handlers. Where user_data lands depends on how the signal is emitted (first,
 * second or third argument), so the leg comes from rtp_session_get_data() instead.
 */
static void on_resync_signal(RtpSession *s, void *a1, void *a2, void *a3)
{
	(void)a1, (void)a2, (void)a3;
	rtp_session_resync(s); /* our own reorder stage follows the new SSRC (rtp_input.c) */
}

static void on_network_error_signal(RtpSession *s, void *a1, void *a2, void *a3)
{
	(void)s, (void)a1, (void)a2, (void)a3;
	/* Counted by the endpoint; the signal only keeps oRTP from logging every failed send. */
}

/* ---------------------------------------------------------------- payload profile */

static PayloadType *payload_new(const char *mime, uint32_t rate, bool video)
{
	PayloadType *pt = payload_type_new();

	if (!pt)
		return NULL;
	pt->type = video ? PAYLOAD_VIDEO : PAYLOAD_AUDIO_PACKETIZED;
	pt->clock_rate = (int)rate;
	pt->channels = video ? 0 : 1;
	pt->mime_type = ortp_strdup(mime);
	return pt;
}

bool rtp_ortp_payload_ok(int pt, uint32_t rate, uint32_t spf, int tev)
{
	return pt >= 0 && pt <= 127 && rate >= 1000 && rate <= 192000 && spf > 0 && spf <= rate &&
	       tev >= -1 && tev <= 127 && tev != pt;
}

int rtp_ortp_profile_set(struct rtp_leg *leg, int pt, uint32_t rate, int tev)
{
	PayloadType *a = payload_new(leg->video ? "video" : "audio", rate, leg->video);
	PayloadType *t = tev >= 0 ? payload_new("telephone-event", rate, false) : NULL;

	if (!a || (tev >= 0 && !t)) {
		if (a)
			payload_type_destroy(a);
		if (t)
			payload_type_destroy(t);
		return -ENOMEM;
	}
	if (leg->pt_audio) {
		rtp_profile_clear_payload(leg->profile, leg->pt);
		payload_type_destroy(leg->pt_audio);
	}
	if (leg->pt_tev) {
		rtp_profile_clear_payload(leg->profile, leg->tev_pt);
		payload_type_destroy(leg->pt_tev);
	}
	leg->pt_audio = a;
	leg->pt_tev = t;
	rtp_profile_set_payload(leg->profile, pt, a);
	if (t)
		rtp_profile_set_payload(leg->profile, tev, t);
	rtp_session_set_profile(leg->s, leg->profile);
	rtp_session_set_payload_type(leg->s, pt);
	rtp_session_set_send_telephone_event_payload_type(leg->s, tev);
	leg->pt = pt;
	leg->tev_pt = tev;
	leg->clock_rate = rate;
	return 0;
}

static void jitter_setup(struct rtp_leg *leg, unsigned jitter_ms)
{
	JBParameters jb;

	rtp_session_get_jitter_buffer_params(leg->s, &jb);
	jb.enabled = TRUE;
	jb.adaptive = TRUE;
	jb.min_size = 20;
	jb.nom_size = (int)jitter_ms;
	jb.max_size = JB_MAX_MS;
	jb.max_packets = JB_MAX_PACKETS;
	jb.buffer_algorithm = OrtpJitterBufferBasic;
	rtp_session_set_jitter_buffer_params(leg->s, &jb);
}

/* ---------------------------------------------------------------- session setup */

int rtp_ortp_session_setup(struct rtp_leg *leg, const struct rtp_leg_params *p, uint16_t seq)
{
	RtpTransport *rtpt = NULL, *rtcpt = NULL;
	char cname[64];
	int err;

	leg->s = rtp_session_new(RTP_SESSION_SENDRECV);
	leg->profile = rtp_profile_new("rtp_leg");
	if (!leg->s || !leg->profile)
		return -ENOMEM;
	rtp_session_set_scheduling_mode(leg->s, 0);
	rtp_session_set_blocking_mode(leg->s, 0);
	rtp_session_set_symmetric_rtp(leg->s, FALSE); /* latching is ours */
	rtp_session_set_data(leg->s, leg);
	rtp_session_set_ssrc(leg->s, leg->ssrc);
	rtp_session_set_seq_number(leg->s, seq);
	/* A new SSRC from the latched source is adopted after 3 packets (some peers send DTMF
	 * under another SSRC: those must not flush the audio queue each time). */
	rtp_session_set_ssrc_changed_threshold(leg->s, 3);
	err = rtp_ortp_profile_set(leg, p->payload_type, p->clock_rate, leg->tev_pt);
	if (err)
		return err;
	/* oRTP's queue is emptied as packets arrive (rtp_input.c): its jitter control only
	 * estimates the interarrival jitter its RTCP reports carry. */
	jitter_setup(leg, 60);
	rtp_session_enable_rtcp(leg->s, TRUE);
	rtp_session_set_rtcp_report_interval(leg->s,
					     p->rtcp_interval_ms ? (int)p->rtcp_interval_ms : 5000);
	snprintf(cname, sizeof(cname), "rtmp2sip@%s", leg->advertised_ip);
	snprintf(leg->cname, sizeof(leg->cname), "%s", p->cname ? p->cname : cname);
	rtp_session_set_source_description(leg->s, leg->cname, NULL, NULL, NULL, NULL, "rtmp2sip",
					   NULL);
	rtp_session_signal_connect(leg->s, "ssrc_changed", on_resync_signal, NULL);
	rtp_session_signal_connect(leg->s, "timestamp_jump", on_resync_signal, NULL);
	rtp_session_signal_connect(leg->s, "network_error", on_network_error_signal, NULL);

	leg->ep_rtp = (RtpTransport){.data = leg,
				     .session = leg->s,
				     .t_getsocket = ep_rtp_socket,
				     .t_sendto = ep_rtp_sendto,
				     .t_recvfrom = ep_recvfrom,
				     .t_close = ep_close,
				     .t_destroy = ep_destroy};
	leg->ep_rtcp = leg->ep_rtp;
	leg->ep_rtcp.t_getsocket = ep_rtcp_socket;
	leg->ep_rtcp.t_sendto = ep_rtcp_sendto;
	rtp_session_get_transports(leg->s, &rtpt, &rtcpt);
	if (!rtpt || !rtcpt)
		return -ENOTSUP; /* this oRTP does not create meta transports */
	meta_rtp_transport_set_endpoint(rtpt, &leg->ep_rtp);
	meta_rtp_transport_set_endpoint(rtcpt, &leg->ep_rtcp);
	leg->meta_rtp = rtpt;
	leg->meta_rtcp = rtcpt;
	return 0;
}

/* ---------------------------------------------------------------- send */

/* Appends the RTCP common header (RFC 3550 6.1) of a packet of @words 32-bit words after it. */
static uint8_t *rtcp_header(uint8_t *p, unsigned count, uint8_t type, unsigned words)
{
	p[0] = (uint8_t)(0x80u | count);
	p[1] = type;
	wr_be16(p + 2, words);
	return p + 4;
}

int rtp_ortp_send_keyframe_request(struct rtp_leg *leg, uint32_t media_ssrc, bool fir)
{
	uint8_t pkt[256], *p = pkt;
	size_t cn = strlen(leg->cname), sdes_words = (4 + 2 + cn + 1 + 3) / 4;
	mblk_t *m;
	int r;

	/* RR without report blocks: a compound packet starts with a report */
	p = rtcp_header(p, 0, 201, 1);
	wr_be32(p, leg->ssrc);
	p += 4;
	/* SDES: one chunk, CNAME, then the end item and padding to the word */
	p = rtcp_header(p, 1, 202, (unsigned)sdes_words);
	memset(p, 0, sdes_words * 4);
	wr_be32(p, leg->ssrc);
	p[4] = 1;
	p[5] = (uint8_t)cn;
	memcpy(p + 6, leg->cname, cn);
	p += sdes_words * 4;
	/* PSFB, FMT 1: picture loss indication */
	p = rtcp_header(p, 1, 206, 2);
	wr_be32(p, leg->ssrc);
	wr_be32(p + 4, media_ssrc);
	p += 8;
	if (fir) { /* PSFB, FMT 4: full intra request, one FCI entry */
		p = rtcp_header(p, 4, 206, 4);
		wr_be32(p, leg->ssrc);
		wr_be32(p + 4, 0);
		wr_be32(p + 8, media_ssrc);
		p[12] = leg->fir_seq++;
		p[13] = p[14] = p[15] = 0;
		p += 16;
	}
	m = allocb((size_t)(p - pkt), 0);
	if (!m)
		return -ENOMEM;
	memcpy(m->b_wptr, pkt, (size_t)(p - pkt));
	m->b_wptr += p - pkt;
	r = ep_send(&leg->ep_rtcp, m, false);
	freemsg(m);
	return r < 0 ? leg->last_send_err : 0;
}

int rtp_ortp_send(struct rtp_leg *leg, mblk_t *m, uint32_t ts)
{
	uint16_t seq = rtp_session_get_seq_number(leg->s);
	int r;

	leg->last_send_err = 0;
	r = rtp_session_sendm_with_ts(leg->s, m, ts);
	if (seq == 0xffffu && rtp_session_get_seq_number(leg->s) == 0)
		leg->send_roc++;
	if (r < 0) {
		r = leg->last_send_err ? leg->last_send_err : -EIO;
		if (r == -EKEYREJECTED)
			rtp_leg_fail(leg, r);
		return r;
	}
	return 0;
}
