/*
 * rtp_leg_int.h - the RTP leg's internals shared by its files (not an interface: rtp_leg.h is).
 *
 *   rtp_leg.c    the leg's life: create, destroy, ports, housekeeping (RTCP, RTP timeout);
 *                send, pull, updates, stats and state; the libraries' process-wide init
 *   rtp_input.c  the receive path: sockets drained, datagrams bounded and validated, SRTP
 *                removed, statistics to oRTP, frames in order to the user on arrival
 *                (rtp_reorder.c), or queued for rtp_leg_pull()
 *   rtp_latch.c  strict latching: whose RTP is played and where ours goes (the rule, its diagram)
 *   rtp_ortp.c   our endpoint under oRTP's session (SRTP protect, sendto), payload profile,
 *                jitter buffer, session set-up, the send path through oRTP
 *   rtp_srtp.c   SDES keys and the libsrtp2 contexts
 *   rtp_srtp_crypto.c  AES-ICM and HMAC-SHA1 on OpenSSL for libsrtp2's kernel (why: at its top)
 *   rtp_dtmf.c   RFC 4733 telephone events, both ways
 *   rtp_addr.c   the leg's socket addresses (struct addr)
 */
#ifndef RS_RTP_LEG_INT_H
#define RS_RTP_LEG_INT_H

#include "evloop.h"
#include "rtp_leg.h"
#include "rtp_reorder.h"

#include <ortp/ortp.h>
#include <srtp2/srtp.h>

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define SID_MAX	     64
#define IP_STR_MAX   48
#define ADDR_STR_MAX (IP_STR_MAX + 8) /* "[ip]:port" */
#define KEY_LEN	     30		      /* AES-128 master key (16) + salt (14) */
#define DTMF_QUEUE   16

struct addr {
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_storage ss;
	} u;
	socklen_t len; /* 0: none */
};

struct dtmf_item {
	uint8_t event;
	uint32_t duration_ts;
};

struct rtp_leg {
	char sid[SID_MAX];
	struct evloop *loop;
	struct port_pool *pool;
	uint16_t port;
	int family;
	int rtp_fd, rtcp_fd;
	struct ev_io *rtp_io, *rtcp_io;
	struct ev_timer *hk_timer, *dtmf_timer;
	char advertised_ip[IP_STR_MAX];
	struct rtp_leg_callbacks cb;
	unsigned depth; /* callbacks in progress: destroy is deferred until 0 */
	bool zombie, failed;

	RtpSession *s;
	RtpProfile *profile;
	PayloadType *pt_audio, *pt_tev;
	RtpTransport ep_rtp, ep_rtcp;	    /* our endpoints */
	RtpTransport *meta_rtp, *meta_rtcp; /* oRTP's, owned by the session */
	bool up;			    /* fully created */

	bool video;	/* params.video */
	int pt, tev_pt; /* tev_pt -1: none */
	uint32_t clock_rate, spf;

	struct addr sig_rtp, sig_rtcp;	   /* signalled */
	struct addr latch_rtp, latch_rtcp; /* latched (the rule: rtp_latch.c) */
	uint64_t latch_rx_ms;		   /* arrival of the last packet accepted from latch_rtp */
	unsigned latch_packets, latch_guard_ms;
	struct {
		struct addr from; /* len 0: no run */
		uint32_t ssrc;
		uint16_t seq;
		unsigned count;
	} learn; /* the learning run of a source other than the latched and signalled ones */
	bool expect_ssrc; /* params.remote_ssrc enforced before latching */
	uint32_t expected_ssrc;
	bool know_remote_ssrc;
	uint32_t remote_ssrc; /* last accepted */

	/* send side */
	uint32_t ssrc, next_ts, send_roc;
	bool sent_any, mark_next, on_hold;
	uint64_t last_send_ms;
	unsigned silence_ms;
	int last_send_err;

	/* receive side: frames in order as soon as playable (rtp_reorder.h), to cb.on_frame or,
	 * without it, into pq for rtp_leg_pull() */
	struct rtp_reorder ro;
	uint32_t ro_ssrc;	   /* the stream in the reorder stage */
	struct ev_timer *ro_timer; /* armed at the open gap's deadline */
	struct pull_queue *pq;	   /* allocated at the first frame for rtp_leg_pull() */
	unsigned plc_frames;
	/* the local timestamp clock oRTP's receive statistics see (rtp_input.c) */
	uint32_t pull_ts;
	uint64_t pull_time_us;
	/* interarrival jitter (RFC 3550 A.8), in 1/16 timestamp units */
	bool jit_init;
	uint32_t jit_transit, jit16;

	/* receive sequence bookkeeping (RFC 3550 A.1, simplified) */
	bool rx_init;
	uint32_t rx_ssrc;
	uint16_t rx_max_seq;
	uint32_t rx_cycles, rx_base;
	uint64_t rx_count;
	int64_t rx_lost_before; /* loss of previous SSRCs */

	unsigned timeout_ms;
	uint64_t last_rx_ms;
	bool timed_out;

	enum rtp_leg_srtp_suite suite;
	char local_key[RTP_LEG_KEY_B64_LEN + 1], remote_key[RTP_LEG_KEY_B64_LEN + 1];
	srtp_t tx, rx;

	/* DTMF out: a queue and the event on the wire */
	struct dtmf_item dq[DTMF_QUEUE];
	unsigned dq_head, dq_count;
	bool dtx_active, dtx_first;
	uint8_t dtx_event;
	uint32_t dtx_ts, dtx_total, dtx_elapsed;
	unsigned dtx_end_sent;

	/* DTMF in */
	bool drx_active, drx_has_last;
	uint8_t drx_event;
	uint32_t drx_ts, drx_dur, drx_last_ts;
	uint64_t drx_last_ms;

	uint64_t kf_req_ms; /* video: when the last key frame request went out */
	uint8_t fir_seq;    /* video: FIR command sequence number (RFC 5104 4.3.1) */
	char cname[64];	    /* RTCP CNAME */

	struct rtp_leg_stats st;
};

/* The monotonic clock, in microseconds and milliseconds. */
static inline uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint64_t mono_ms(void)
{
	return mono_us() / 1000u;
}

/* --- rtp_leg.c --- */

/*
 * Around every call into the leg's user (its callbacks): rtp_leg_enter() first; a leg destroyed
 * meanwhile is only stopped, and rtp_leg_leave() frees it once no callback is in progress,
 * returning false when the leg is gone.
 */
void rtp_leg_enter(struct rtp_leg *leg);
bool rtp_leg_leave(struct rtp_leg *leg);

/* The leg cannot go on: logged, on_failure called with @err (a negative errno). Once. */
void rtp_leg_fail(struct rtp_leg *leg, int err);

/* --- rtp_ortp.c --- */

/*
 * Sends a compound RTCP packet asking the peer (media SSRC @media_ssrc) for a key frame: an
 * empty RR, our CNAME, a PLI (RFC 4585 6.3.1) and with @fir a FIR (RFC 5104 4.3.1); SRTCP
 * when keyed. 0 or a negative errno.
 */
int rtp_ortp_send_keyframe_request(struct rtp_leg *leg, uint32_t media_ssrc, bool fir);

/* --- rtp_input.c --- */

/* The evloop callbacks of the leg's RTP and RTCP sockets (@arg: the leg): drain the socket. */
void rtp_input_rtp_readable(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
			    void *arg);
void rtp_input_rtcp_readable(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
			     void *arg);

/* The reorder stage's deadline timer (@arg: the leg): an open gap gives up waiting. */
void rtp_input_gap_expired(struct evloop *loop, struct ev_timer *t, void *arg);

/* Restarts the receive stream (a new payload): held packets and queued frames dropped. */
void rtp_input_restart(struct rtp_leg *leg);

/* The local timestamp clock (leg creation on, in the leg's RTP clock units) that packets are
 * stamped with for oRTP's receive statistics. */
uint32_t rtp_input_clock_now(const struct rtp_leg *leg);

/* Frees what the receive path allocated (at leg free). */
void rtp_input_free(struct rtp_leg *leg);

/* --- rtp_latch.c: the rule at the top of that file --- */

/* Where an RTP packet comes from: L, S or X. */
enum rtp_source { SRC_LATCHED, SRC_SIGNALLED, SRC_OTHER };

enum rtp_source rtp_latch_source(const struct rtp_leg *leg, const struct sockaddr *from);

/*
 * Before anything else is looked at: true when an RTP packet from @src, arrived at @arrival_ms
 * (monotonic), is dropped unchecked (counted in stats.unexpected_source).
 */
bool rtp_latch_refuses(struct rtp_leg *leg, enum rtp_source src, uint64_t arrival_ms);

/*
 * A valid RTP packet (@ssrc, @seq; authenticated on an SRTP leg) from @src (@from, @fromlen),
 * arrived at @arrival_ms: false when it is dropped (counted), a learning run still short; else
 * true, the leg latched to its source. The leg may have been destroyed by on_latched then
 * (leg->zombie).
 */
bool rtp_latch_accept(struct rtp_leg *leg, enum rtp_source src, const struct sockaddr *from,
		      socklen_t fromlen, uint32_t ssrc, uint16_t seq, uint64_t arrival_ms);

/* RTCP from @from: true when it is dropped (counted) as coming from a source not taken. */
bool rtp_latch_rtcp_refuses(struct rtp_leg *leg, const struct sockaddr *from);

/* A valid RTCP packet from @from: the first after RTP latched latches RTCP to its source. */
void rtp_latch_rtcp_accept(struct rtp_leg *leg, const struct sockaddr *from, socklen_t fromlen);

/* Forgets the latch and any learning run (a new remote, or the peer went silent). */
void rtp_latch_release(struct rtp_leg *leg);

/*
 * Where our RTP goes (L, else S; NULL when neither is known), and our RTCP (into @out; false when
 * nowhere yet).
 */
const struct addr *rtp_latch_dest_rtp(const struct rtp_leg *leg);
bool rtp_latch_dest_rtcp(const struct rtp_leg *leg, struct addr *out);

/* --- rtp_ortp.c --- */

/* The payload numbers and clock of a leg (@tev -1: no telephone events) are usable. */
bool rtp_ortp_payload_ok(int pt, uint32_t rate, uint32_t spf, int tev);

/*
 * Installs payload @pt (and @tev, -1: none) at their numbers with clock @rate; replaces the
 * previous ones. Returns 0 or -ENOMEM (the leg unchanged).
 */
int rtp_ortp_profile_set(struct rtp_leg *leg, int pt, uint32_t rate, int tev);

/*
 * Creates the leg's oRTP session and profile (first sequence number @seq, payload, jitter
 * buffer, RTCP from @p) with our endpoints under its meta transports. Returns 0 or a negative
 * errno; what was made is freed with the leg.
 */
int rtp_ortp_session_setup(struct rtp_leg *leg, const struct rtp_leg_params *p, uint16_t seq);

/*
 * Sends @m (consumed) through oRTP with timestamp @ts, keeping our SRTP rollover count. Returns
 * 0 or a negative errno; an SRTP failure also fails the leg (rtp_leg_fail).
 */
int rtp_ortp_send(struct rtp_leg *leg, mblk_t *m, uint32_t ts);

/* --- rtp_srtp.c --- */

/* Before libsrtp2's first initialisation (once a process): NSS sized for time, when present. */
void rtp_srtp_nss_preinit(void);

/*
 * Checks @suite and decodes the keys @lk (ours) and @rk (the peer's) into @lkey and @rkey,
 * keeping their base64 in the leg for its state. RTP_LEG_SRTP_NONE: nothing to do. Returns 0 or
 * -EINVAL.
 */
int rtp_srtp_keys(struct rtp_leg *leg, enum rtp_leg_srtp_suite suite, const char *lk,
		  const char *rk, uint8_t lkey[KEY_LEN], uint8_t rkey[KEY_LEN]);

/*
 * Builds the send context (our SSRC, ROC @tx_roc for the next packet) into *@txp and the receive
 * context (any inbound SSRC; plus the known peer SSRC @rx_ssrc with its ROC @rx_roc when
 * @rx_known) into *@rxp; the caller frees both (srtp_dealloc). Returns 0 or -ENOMEM.
 */
int rtp_srtp_build(struct rtp_leg *leg, enum rtp_leg_srtp_suite suite, uint8_t *lkey, uint8_t *rkey,
		   uint32_t tx_roc, bool rx_known, uint32_t rx_ssrc, uint32_t rx_roc, srtp_t *txp,
		   srtp_t *rxp);

/*
 * Unprotects the SRTP (@rtcp: SRTCP) packet @p of *@len bytes in place with the leg's receive
 * context (leg->rx, not NULL), *@len becoming the plain length. Returns 0, or a negative errno
 * counted in the stats: -EACCES authentication, -EALREADY replay, -EBADMSG anything else.
 */
int rtp_srtp_unprotect(struct rtp_leg *leg, uint8_t *p, size_t *len, bool rtcp);

/* --- rtp_srtp_crypto.c --- */

/*
 * After srtp_init(): puts our AES-ICM-128 and HMAC-SHA1 (OpenSSL's libcrypto) into libsrtp2's
 * crypto kernel in place of the library's own, once they pass libsrtp2's known-answer tests.
 * Returns 0, or a negative errno (logged) with the library's own kept. Again after every
 * srtp_shutdown() + srtp_init().
 */
int rtp_srtp_crypto_install(void);

/* After srtp_shutdown(): frees what rtp_srtp_crypto_install() fetched. */
void rtp_srtp_crypto_release(void);

/* True while ours are installed. */
bool rtp_srtp_crypto_ours(void);

/* --- rtp_dtmf.c --- */

/* The telephone-event payload @pl (@n bytes) of an accepted packet with timestamp @ts. */
void rtp_dtmf_input(struct rtp_leg *leg, const uint8_t *pl, size_t n, uint32_t ts);

/* Housekeeping at @now_ms: reports an event received whose end packets never came. */
void rtp_dtmf_expire(struct rtp_leg *leg, uint64_t now_ms);

/* --- rtp_addr.c --- */

/* Parses a numeric address of @family (AF_UNSPEC: any) into @a with @port; 0 or -EINVAL. */
int rtp_addr_parse(struct addr *a, const char *ip, uint16_t port, int family);

/* The port of @a; sets it. */
uint16_t rtp_addr_port(const struct addr *a);
void rtp_addr_set_port(struct addr *a, uint16_t port);

/* @a's IP address as text into @out (@n bytes), "-" when none; returns @out. */
const char *rtp_addr_ip(const struct addr *a, char *out, size_t n);

/* Same address as @b, and when @port, same port. */
bool rtp_addr_match(const struct addr *a, const struct sockaddr *b, bool port);

/* Both none, or the same address and port. */
bool rtp_addr_same(const struct addr *a, const struct addr *b);

/* @a := the socket address @sa of @len bytes (cut to the size of struct addr). */
void rtp_addr_from_sa(struct addr *a, const struct sockaddr *sa, socklen_t len);

/* "ip:port", "[ip6]:port", or "none", for the logs, into @out (@n bytes); returns @out. */
const char *rtp_addr_str(const struct addr *a, char *out, size_t n);

#endif
