/*
 * rtp_leg.c - one RTP/SRTP leg: our sockets and SRTP around an oRTP session.
 *
 * Who does what:
 *
 *   socket --recvfrom--> [ours] source check, header bounds, PT/SSRC, SRTP unprotect,
 *     (evloop readable)         padding strip, latch, loss/timeout/DTMF bookkeeping
 *                                   |
 *                                   | meta_rtp_transport_modifier_inject_packet_to_recv()
 *                                   v
 *                       [oRTP] rtp_session_rtp_parse: stats, interarrival jitter, SSRC
 *                              tracking, jitter buffer queue (rtp_putq), RTCP SR/RR parse
 *                                   |
 *   worker tick --rtp_leg_pull--> rtp_session_recvm_with_ts(user_ts += samples_per_frame)
 *
 *   rtp_leg_send --> [oRTP] rtp_session_create_packet + rtp_session_sendm_with_ts (header,
 *                    seq, stats, RTCP scheduling) --> meta transport --> our endpoint:
 *                    SRTP protect, destination (latched or signalled), sendto
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
 * Why an endpoint and not an RtpTransportModifier (as mediastreamer2's ms_srtp.c does): a
 * modifier that drops a packet (bad auth tag, wrong source) makes oRTP's receive loop stop
 * draining the socket, and needs msgpullup() reallocations to grow the buffer for the SRTP
 * tag. Owning the socket I/O in one endpoint gives one place for latching, hold and SRTP; the
 * endpoint's own recvfrom returns EWOULDBLOCK without a syscall, because the evloop callback
 * already drained the socket.
 *
 * Clocks: packets are stamped, when injected, with the pull clock (the user timestamp of the
 * last pull plus the real time elapsed since, in timestamp units), so oRTP's jitter
 * estimation and playout see arrivals and pulls on one time base.
 *
 * Cost (tests/tools/rtp_probe bench, 1000 legs, loopback, one core): 12-14 us of CPU per leg
 * per 20 ms (one send, one receive, one pull) without SRTP: about half kernel (sendto,
 * recvmmsg), 28% oRTP (allocations, meta transport, profile look-ups), 11% this file. With
 * Debian's NSS-backed libsrtp2: 29-42 us, growing with the number of live SRTP contexts; see
 * nss_preinit().
 */
#include "rtp_leg.h"

#include "buf.h"
#include "evloop.h"
#include "log.h"
#include "port_pool.h"

#include <ortp/ortp.h>
#include <openssl/evp.h>
#include <ortp/telephonyevents.h>
#include <srtp2/srtp.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SID_MAX		 64
#define IP_STR_MAX	 48
#define RECV_BURST	 64   /* datagrams read per readable event (fairness) */
#define RECV_BATCH	 8    /* datagrams per recvmmsg() */
#define BIND_TRIES	 512  /* pairs tried per leg when other processes hold ports */
#define RECV_BUF	 2048 /* larger datagrams are dropped as malformed */
#define MAX_PAYLOAD	 1400
#define SRTP_ROOM	 (SRTP_MAX_TRAILER_LEN + 4)
#define HOUSEKEEPING_MS	 500 /* RTCP scheduling, RTP timeout, stale DTMF */
#define DTMF_INTERVAL_MS 20
#define DTMF_QUEUE	 16
#define DTMF_VOLUME	 10
#define DTMF_END_PACKETS 3
#define DTMF_MIN_MS	 40
#define DTMF_RX_STALE_MS 2000 /* an event without its end packet is reported after this */
#define JB_MAX_PACKETS	 50   /* 1 s of 20 ms packets queued at most */
#define JB_MAX_MS	 300
#define RTCP_MAX_PARTS	 16
#define KEY_LEN		 30 /* AES-128 master key (16) + salt (14) */
#define ORTP_LOG_PER_S	 5
#define LEARN_SEQ_STEP	 8  /* a learning run's sequence may skip this many - 1 lost packets */
#define LATCH_LOG_MAX	 20 /* latch changes logged per leg */
#define ADDR_STR_MAX	 (IP_STR_MAX + 8) /* "[ip]:port" */

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

	int pt, tev_pt; /* tev_pt -1: none */
	uint32_t clock_rate, spf;

	struct addr sig_rtp, sig_rtcp;	   /* signalled */
	struct addr latch_rtp, latch_rtcp; /* latched (the rule at the top) */
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

	/* pull side */
	uint32_t pull_ts;
	uint64_t pull_time_us;
	bool primed;
	unsigned missing, plc_frames;

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

	struct rtp_leg_stats st;
};

static const char dtmf_chars[] = "0123456789*#ABCD";

/* ---------------------------------------------------------------- helpers */

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mono_ms(void)
{
	return mono_us() / 1000u;
}

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

/* Parses a numeric address of @family (AF_UNSPEC: any) into @a with @port. */
static int addr_parse(struct addr *a, const char *ip, uint16_t port, int family)
{
	memset(a, 0, sizeof(*a));
	if (!ip || strlen(ip) >= IP_STR_MAX)
		return -EINVAL;
	if ((family == AF_UNSPEC || family == AF_INET) &&
	    inet_pton(AF_INET, ip, &a->u.in.sin_addr) == 1) {
		a->u.in.sin_family = AF_INET;
		a->u.in.sin_port = htons(port);
		a->len = sizeof(a->u.in);
	} else if ((family == AF_UNSPEC || family == AF_INET6) &&
		   inet_pton(AF_INET6, ip, &a->u.in6.sin6_addr) == 1) {
		a->u.in6.sin6_family = AF_INET6;
		a->u.in6.sin6_port = htons(port);
		a->len = sizeof(a->u.in6);
	}
	return a->len ? 0 : -EINVAL;
}

static uint16_t addr_port(const struct addr *a)
{
	return ntohs(a->u.sa.sa_family == AF_INET ? a->u.in.sin_port : a->u.in6.sin6_port);
}

static void addr_set_port(struct addr *a, uint16_t port)
{
	if (a->u.sa.sa_family == AF_INET)
		a->u.in.sin_port = htons(port);
	else
		a->u.in6.sin6_port = htons(port);
}

static const char *addr_ip(const struct addr *a, char *out, size_t n)
{
	const void *p = a->u.sa.sa_family == AF_INET ? (const void *)&a->u.in.sin_addr
						     : (const void *)&a->u.in6.sin6_addr;

	if (!a->len || !inet_ntop(a->u.sa.sa_family, p, out, (socklen_t)n))
		snprintf(out, n, "-");
	return out;
}

/* Same address as @b, and when @port, same port. */
static bool addr_match(const struct addr *a, const struct sockaddr *b, bool port)
{
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;

	if (!a->len || a->u.sa.sa_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return a->u.in.sin_addr.s_addr == b4->sin_addr.s_addr &&
		       (!port || a->u.in.sin_port == b4->sin_port);
	return b->sa_family == AF_INET6 && !memcmp(&a->u.in6.sin6_addr, &b6->sin6_addr, 16) &&
	       (!port || a->u.in6.sin6_port == b6->sin6_port);
}

/* Both none, or the same address and port. */
static bool addr_same(const struct addr *a, const struct addr *b)
{
	return a->len == b->len && (!a->len || addr_match(a, &b->u.sa, true));
}

static void addr_from_sa(struct addr *a, const struct sockaddr *sa, socklen_t len)
{
	memset(a, 0, sizeof(*a));
	a->len = len > sizeof(a->u) ? sizeof(a->u) : len;
	memcpy(&a->u, sa, a->len);
}

/* "ip:port", "[ip6]:port", or "none", for the logs. */
static const char *addr_str(const struct addr *a, char *out, size_t n)
{
	char ip[IP_STR_MAX];

	if (!a->len)
		snprintf(out, n, "none");
	else
		snprintf(out, n, a->u.sa.sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
			 addr_ip(a, ip, sizeof(ip)), addr_port(a));
	return out;
}

/* ---------------------------------------------------------------- keys */

#define B64_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/*
 * Decodes an SDES key parameter: optional "inline:", exactly 40 base64 characters (30 bytes),
 * optionally "|lifetime". MKIs ("|n:m") are refused. Writes the bare base64 to @norm.
 */
static int key_decode(const char *in, uint8_t out[KEY_LEN], char norm[RTP_LEG_KEY_B64_LEN + 1])
{
	const char *b64 = in && strncmp(in, "inline:", 7) == 0 ? in + 7 : in;
	const char *rest = b64 ? b64 + strspn(b64, B64_CHARS) : NULL;
	uint8_t tmp[KEY_LEN + 3];

	if (!b64 || rest - b64 != RTP_LEG_KEY_B64_LEN)
		return -EINVAL;
	if (*rest && (*rest != '|' || strchr(rest, ':') || strchr(rest + 1, '|')))
		return -EINVAL;
	if (EVP_DecodeBlock(tmp, (const unsigned char *)b64, RTP_LEG_KEY_B64_LEN) != KEY_LEN)
		return -EINVAL;
	memcpy(out, tmp, KEY_LEN);
	explicit_bzero(tmp, sizeof(tmp));
	memcpy(norm, b64, RTP_LEG_KEY_B64_LEN);
	norm[RTP_LEG_KEY_B64_LEN] = '\0';
	return 0;
}

int rtp_leg_srtp_key_generate(char out[RTP_LEG_KEY_B64_LEN + 1])
{
	uint8_t key[KEY_LEN];

	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
		return -EIO;
	EVP_EncodeBlock((unsigned char *)out, key, KEY_LEN); /* 40 characters and a NUL */
	explicit_bzero(key, sizeof(key));
	return 0;
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

/*
 * Debian builds libsrtp2 on NSS. Its first NSS initialisation asks for OPTIMIZESPACE, which
 * gives the softoken a 32-bucket session hash table: every SRTP operation then walks a bucket
 * chain that grows with the number of live contexts (measured: 13.7 us per packet with 100
 * SRTP legs, 22.5 us with 300, and worse beyond). Initialising NSS first, without that flag,
 * sizes the table for time; libsrtp's later NSS_InitContext() calls reuse it. Looked up at run
 * time so that neither a libsrtp2 built on OpenSSL nor the link line needs NSS.
 */
static void nss_preinit(void)
{
	typedef int (*is_init_fn)(void);
	typedef int (*init_fn)(const char *, const char *, const char *, const char *, uint32_t);
	is_init_fn is_init;
	init_fn init;

	*(void **)&is_init = dlsym(RTLD_DEFAULT, "NSS_IsInitialized");
	*(void **)&init = dlsym(RTLD_DEFAULT, "NSS_Initialize");
	if (!is_init || !init || is_init())
		return;
	/* READONLY | NOCERTDB | NOMODDB | FORCEOPEN | NOROOTINIT, and no OPTIMIZESPACE */
	if (init("", "", "", "", 0x1 | 0x2 | 0x4 | 0x8 | 0x10) != 0)
		log_warn(NULL, "rtp_leg: NSS_Initialize failed, libsrtp2 initialises NSS itself");
}

static int global_init(void)
{
	if (g_initialized)
		return 0;
	nss_preinit();
	/* Before ortp_init. (bctbx_set_log_level would need libbctoolbox on the link line.) */
	ortp_set_log_handler(ortp_log_to_ours);
	ortp_init();
	if (srtp_init() != srtp_err_status_ok) {
		ortp_exit();
		return -EIO;
	}
	g_initialized = true;
	return 0;
}

void rtp_leg_global_cleanup(void)
{
	if (!g_initialized)
		return;
	srtp_shutdown();
	ortp_exit();
	g_initialized = false;
}

/* ---------------------------------------------------------------- SRTP */

static void srtp_policy_init(srtp_policy_t *pol, enum rtp_leg_srtp_suite suite, uint8_t *key)
{
	memset(pol, 0, sizeof(*pol));
	if (suite == RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_32)
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&pol->rtp);
	else
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol->rtp);
	/* RFC 4568 6.2.2: SRTCP keeps the 80-bit tag with the _32 suite too. */
	srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol->rtcp);
	pol->key = key;
	pol->window_size = 128;
}

/*
 * Builds the send context (our SSRC, ROC @tx_roc for the next packet) and the receive context
 * (any inbound SSRC; plus the known peer SSRC with its ROC when adopting).
 */
static int srtp_build(struct rtp_leg *leg, enum rtp_leg_srtp_suite suite, uint8_t *lkey,
		      uint8_t *rkey, uint32_t tx_roc, bool rx_known, uint32_t rx_ssrc,
		      uint32_t rx_roc, srtp_t *txp, srtp_t *rxp)
{
	srtp_policy_t pol;
	srtp_t tx = NULL, rx = NULL;

	srtp_policy_init(&pol, suite, lkey);
	pol.ssrc.type = ssrc_specific;
	pol.ssrc.value = leg->ssrc;
	if (srtp_create(&tx, &pol) != srtp_err_status_ok)
		goto out_fail;
	if (tx_roc && srtp_set_stream_roc(tx, leg->ssrc, tx_roc) != srtp_err_status_ok)
		goto out_free_tx;
	srtp_policy_init(&pol, suite, rkey);
	pol.ssrc.type = ssrc_any_inbound;
	if (srtp_create(&rx, &pol) != srtp_err_status_ok)
		goto out_free_tx;
	if (rx_known && rx_roc) {
		srtp_policy_init(&pol, suite, rkey);
		pol.ssrc.type = ssrc_specific;
		pol.ssrc.value = rx_ssrc;
		if (srtp_add_stream(rx, &pol) != srtp_err_status_ok ||
		    srtp_set_stream_roc(rx, rx_ssrc, rx_roc) != srtp_err_status_ok)
			goto out_free_rx;
	}
	*txp = tx;
	*rxp = rx;
	return 0;

out_free_rx:
	srtp_dealloc(rx);
out_free_tx:
	srtp_dealloc(tx);
out_fail:
	return -ENOMEM;
}

/* ---------------------------------------------------------------- callbacks, lifetime */

static void leg_free(struct rtp_leg *leg);

static void leg_enter(struct rtp_leg *leg)
{
	leg->depth++;
}

/* Returns false when the leg was destroyed from a callback and is now gone. */
static bool leg_leave(struct rtp_leg *leg)
{
	if (--leg->depth == 0 && leg->zombie) {
		leg_free(leg);
		return false;
	}
	return true;
}

static void leg_fail(struct rtp_leg *leg, int err)
{
	if (leg->failed || leg->zombie)
		return;
	leg->failed = true;
	log_error(leg->sid, "rtp_leg: failed on port %u: %s", leg->port, strerror(-err));
	if (leg->cb.on_failure) {
		leg_enter(leg);
		leg->cb.on_failure(leg, err, leg->cb.arg);
		leg_leave(leg);
	}
}

/* ---------------------------------------------------------------- destinations */

static const struct addr *rtp_dest(const struct rtp_leg *leg)
{
	if (leg->latch_rtp.len)
		return &leg->latch_rtp;
	return leg->sig_rtp.len ? &leg->sig_rtp : NULL;
}

static bool rtcp_dest(const struct rtp_leg *leg, struct addr *out)
{
	if (leg->latch_rtcp.len) {
		*out = leg->latch_rtcp;
		return true;
	}
	if (leg->latch_rtp.len &&
	    !(leg->sig_rtp.len && addr_match(&leg->sig_rtp, &leg->latch_rtp.u.sa, true))) {
		*out = leg->latch_rtp;
		addr_set_port(out, (uint16_t)(addr_port(out) + 1u));
		return true;
	}
	if (leg->sig_rtcp.len) {
		*out = leg->sig_rtcp;
		return true;
	}
	return false;
}

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
	to = is_rtp ? rtp_dest(leg) : (rtcp_dest(leg, &rtcp_to) ? &rtcp_to : NULL);
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
	struct rtp_leg *leg = rtp_session_get_data(s);

	(void)a1, (void)a2, (void)a3;
	rtp_session_resync(s);
	leg->primed = false;
	leg->missing = 0;
}

static void on_network_error_signal(RtpSession *s, void *a1, void *a2, void *a3)
{
	(void)s, (void)a1, (void)a2, (void)a3;
	/* Counted by the endpoint; the signal only keeps oRTP from logging every failed send. */
}

/* ---------------------------------------------------------------- payload profile */

static PayloadType *payload_new(const char *mime, uint32_t rate)
{
	PayloadType *pt = payload_type_new();

	if (!pt)
		return NULL;
	pt->type = PAYLOAD_AUDIO_PACKETIZED;
	pt->clock_rate = (int)rate;
	pt->channels = 1;
	pt->mime_type = ortp_strdup(mime);
	return pt;
}

static bool payload_params_ok(int pt, uint32_t rate, uint32_t spf, int tev)
{
	return pt >= 0 && pt <= 127 && rate >= 1000 && rate <= 192000 && spf > 0 && spf <= rate &&
	       tev >= -1 && tev <= 127 && tev != pt;
}

/* Installs payload @pt (and @tev, -1: none) at their numbers; replaces the previous ones. */
static int profile_set(struct rtp_leg *leg, int pt, uint32_t rate, int tev)
{
	PayloadType *a = payload_new("audio", rate);
	PayloadType *t = tev >= 0 ? payload_new("telephone-event", rate) : NULL;

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

static int session_setup(struct rtp_leg *leg, const struct rtp_leg_params *p, uint16_t seq)
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
	err = profile_set(leg, p->payload_type, p->clock_rate, leg->tev_pt);
	if (err)
		return err;
	jitter_setup(leg, p->jitter_ms ? p->jitter_ms : 60);
	rtp_session_enable_rtcp(leg->s, TRUE);
	rtp_session_set_rtcp_report_interval(leg->s,
					     p->rtcp_interval_ms ? (int)p->rtcp_interval_ms : 5000);
	snprintf(cname, sizeof(cname), "rtmp2sip@%s", leg->advertised_ip);
	rtp_session_set_source_description(leg->s, p->cname ? p->cname : cname, NULL, NULL, NULL,
					   NULL, "rtmp2sip", NULL);
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

static int socket_bind(int family, const struct addr *bind_addr, uint16_t port, int *fdp)
{
	struct addr a = *bind_addr;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int tos = 0xb8; /* DSCP EF */

	if (fd < 0)
		return -errno;
	addr_set_port(&a, port);
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

/* ---------------------------------------------------------------- input path */

static void on_rtp_readable(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
			    void *arg);
static void on_rtcp_readable(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
			     void *arg);
static void on_housekeeping(struct evloop *loop, struct ev_timer *t, void *arg);

/* The pull clock now, in timestamp units (see the top of the file). */
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

static bool dtmf_report(struct rtp_leg *leg)
{
	unsigned ms = (unsigned)((uint64_t)leg->drx_dur * 1000u / leg->clock_rate);
	char digit = dtmf_chars[leg->drx_event & 15];

	leg->drx_active = false;
	leg->drx_has_last = true;
	leg->drx_last_ts = leg->drx_ts;
	leg->st.dtmf_received++;
	log_debug(leg->sid, "rtp_leg: DTMF '%c' %u ms", digit, ms);
	if (!leg->cb.on_dtmf)
		return true;
	leg_enter(leg);
	leg->cb.on_dtmf(leg, digit, ms, leg->cb.arg);
	return leg_leave(leg) && !leg->zombie;
}

/*
 * One RFC 4733 event block. Events are told apart by their timestamp: the first packet of a
 * new timestamp starts an event, the first end packet reports it, later packets with the
 * same timestamp (redundant ends, retransmissions) are ignored. An event whose end packets
 * all got lost is reported when the next one starts or after DTMF_RX_STALE_MS.
 */
static void dtmf_input(struct rtp_leg *leg, const uint8_t *pl, size_t n, uint32_t ts)
{
	uint8_t ev;
	uint16_t dur;
	bool end;

	if (n < 4)
		return;
	ev = pl[0];
	end = (pl[1] & 0x80u) != 0;
	dur = (uint16_t)rd_be16(pl + 2);
	if (ev > 15)
		return; /* not a DTMF digit (flash, tones) */
	if (leg->drx_has_last && ts == leg->drx_last_ts)
		return;
	if (leg->drx_active && ts != leg->drx_ts && !dtmf_report(leg))
		return;
	if (!leg->drx_active) {
		leg->drx_active = true;
		leg->drx_ts = ts;
		leg->drx_event = ev;
		leg->drx_dur = dur;
	} else if (dur > leg->drx_dur) {
		leg->drx_dur = dur;
	}
	leg->drx_last_ms = mono_ms();
	if (end)
		dtmf_report(leg);
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

/* ---------------------------------------------------------------- latching (top of file) */

enum rtp_source { SRC_LATCHED, SRC_SIGNALLED, SRC_OTHER };

static enum rtp_source rtp_source(const struct rtp_leg *leg, const struct sockaddr *from)
{
	if (addr_match(&leg->latch_rtp, from, true))
		return SRC_LATCHED;
	if (addr_match(&leg->sig_rtp, from, true))
		return SRC_SIGNALLED;
	return SRC_OTHER;
}

/* The latched source spoke less than the guard time before @arrival_ms: no one else may take
 * its place (a packet from it arriving "before" the last one counts as spoken too). */
static bool latch_guarded(const struct rtp_leg *leg, uint64_t arrival_ms)
{
	return leg->latch_rtp.len && arrival_ms < leg->latch_rx_ms + leg->latch_guard_ms;
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

	if (leg->learn.count && addr_match(&leg->learn.from, from, true) &&
	    ssrc == leg->learn.ssrc && step >= 1 && step <= LEARN_SEQ_STEP) {
		leg->learn.count++;
	} else {
		addr_from_sa(&leg->learn.from, from, fromlen);
		leg->learn.ssrc = ssrc;
		leg->learn.count = 1;
	}
	leg->learn.seq = seq;
	return leg->learn.count >= leg->latch_packets;
}

/* Forgets the latch and any learning run (a new remote, or the peer went silent). */
static void latch_release(struct rtp_leg *leg)
{
	leg->latch_rtp.len = 0;
	leg->latch_rtcp.len = 0;
	leg->learn.count = 0;
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
	bool to_sig = addr_match(&leg->sig_rtp, from, true);
	struct addr prev = leg->latch_rtp;

	addr_from_sa(&leg->latch_rtp, from, fromlen);
	leg->latch_rtcp.len = 0;
	leg->learn.count = 0;
	if (!prev.len && to_sig)
		return;
	if (++leg->st.latch_changes <= LATCH_LOG_MAX) /* a peer and a sprayer may take turns */
		log_info(leg->sid, "rtp_leg: RTP latch on port %u %s -> %s (%s; signalled %s)%s",
			 leg->port, addr_str(&prev, was, sizeof(was)),
			 addr_str(&leg->latch_rtp, now, sizeof(now)), how,
			 addr_str(&leg->sig_rtp, sig, sizeof(sig)),
			 leg->st.latch_changes == LATCH_LOG_MAX ? "; further changes counted only"
								: "");
	if (!to_sig && leg->cb.on_latched) {
		leg_enter(leg);
		leg->cb.on_latched(leg, from, leg->cb.arg);
		leg_leave(leg);
	}
}

static int srtp_error_to_errno(struct rtp_leg *leg, srtp_err_status_t e)
{
	switch (e) {
	case srtp_err_status_auth_fail:
		leg->st.srtp_auth_failures++;
		return -EACCES;
	case srtp_err_status_replay_fail:
	case srtp_err_status_replay_old:
		leg->st.srtp_replays++;
		return -EALREADY;
	default:
		leg->st.bad_packets++;
		return -EBADMSG;
	}
}

/*
 * The RTP input path on a private copy @p (modified in place), for a datagram that arrived at
 * @arrival_ms (monotonic): validation, then the latching rule (top of the file), then oRTP.
 */
static int input_rtp(struct rtp_leg *leg, uint8_t *p, size_t len, const struct sockaddr *from,
		     socklen_t fromlen, uint64_t arrival_ms)
{
	enum rtp_source src = rtp_source(leg, from);
	int hl, pt;
	uint32_t ssrc, ts;
	uint16_t seq;
	mblk_t *m;

	if (src == SRC_OTHER && (!leg->sig_rtp.len || latch_guarded(leg, arrival_ms))) {
		leg->st.unexpected_source++;
		return -EPERM;
	}
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
		int l = (int)len;
		srtp_err_status_t e = srtp_unprotect(leg->rx, p, &l);

		if (e != srtp_err_status_ok)
			return srtp_error_to_errno(leg, e);
		len = (size_t)l;
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
	if (src == SRC_OTHER && !leg->rx && !learn_step(leg, from, fromlen, ssrc, seq)) {
		leg->st.unexpected_source++;
		return -EPERM;
	}

	/* accepted */
	if (src != SRC_LATCHED) {
		latch_rtp(leg, from, fromlen,
			  src == SRC_SIGNALLED ? "signalled address"
			  : leg->rx	       ? "SRTP authenticated"
					       : "learned: a run of valid packets");
		if (leg->zombie)
			return 0;
	}
	if (arrival_ms > leg->latch_rx_ms)
		leg->latch_rx_ms = arrival_ms;
	leg->learn.count = 0;
	leg->know_remote_ssrc = true;
	leg->remote_ssrc = ssrc;
	leg->last_rx_ms = mono_ms();
	leg->timed_out = false;
	rx_seq_account(leg, ssrc, seq);
	leg->st.packets_received++;
	leg->st.bytes_received += len;
	if (len == (size_t)hl)
		return 0; /* no payload: a keepalive */

	m = allocb(len, 0);
	memcpy(m->b_wptr, p, len);
	m->b_wptr += len;
	memcpy(&m->net_addr, from, fromlen <= sizeof(m->net_addr) ? fromlen : sizeof(m->net_addr));
	m->net_addrlen = fromlen;
	m->reserved1 = pull_clock_now(leg);
	ts = rd_be32(p + 4);
	meta_rtp_transport_modifier_inject_packet_to_recv(leg->meta_rtp, NULL, m, 0);
	if (pt == leg->tev_pt)
		dtmf_input(leg, p + hl, len - (size_t)hl, ts);
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
	mblk_t *m;

	if ((leg->latch_rtcp.len && !addr_match(&leg->latch_rtcp, from, true)) ||
	    (!leg->latch_rtcp.len && leg->latch_rtp.len &&
	     !addr_match(&leg->latch_rtp, from, false))) {
		leg->st.unexpected_source++;
		return -EPERM;
	}
	if (len < 8 || (p[0] >> 6) != 2 || (p[1] != 200 && p[1] != 201)) {
		leg->st.bad_packets++;
		return -EBADMSG;
	}
	if (leg->rx) {
		int l = (int)len;
		srtp_err_status_t e = srtp_unprotect_rtcp(leg->rx, p, &l);

		if (e != srtp_err_status_ok)
			return srtp_error_to_errno(leg, e);
		len = (size_t)l;
	}
	if (!rtcp_compound_valid(p, len)) {
		leg->st.bad_packets++;
		return -EBADMSG;
	}
	if (!leg->latch_rtcp.len && leg->latch_rtp.len) /* same address as the RTP latch */
		addr_from_sa(&leg->latch_rtcp, from, fromlen);
	leg->st.rtcp_received++;
	m = allocb(len, 0);
	memcpy(m->b_wptr, p, len);
	m->b_wptr += len;
	memcpy(&m->net_addr, from, fromlen <= sizeof(m->net_addr) ? fromlen : sizeof(m->net_addr));
	m->net_addrlen = fromlen;
	m->reserved1 = pull_clock_now(leg);
	meta_rtp_transport_modifier_inject_packet_to_recv(leg->meta_rtcp, NULL, m, 0);
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
	leg_enter(leg);
	r = rtcp ? input_rtcp(leg, p, len, from, fromlen)
		 : input_rtp(leg, p, len, from, fromlen, arrival_ms);
	leg_leave(leg);
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

	leg_enter(leg);
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
				leg_fail(leg, -errno);
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
	leg_leave(leg);
}

static void on_rtp_readable(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
			    void *arg)
{
	(void)loop, (void)io, (void)events;
	drain(arg, fd, false);
}

static void on_rtcp_readable(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
			     void *arg)
{
	(void)loop, (void)io, (void)events;
	drain(arg, fd, true);
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
	if (leg->s) {
		if (leg->up && !leg->failed && rtcp_dest(leg, &to))
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
		return;
	}
	leg_free(leg);
}

static int leg_keys(struct rtp_leg *leg, enum rtp_leg_srtp_suite suite, const char *lk,
		    const char *rk, uint8_t lkey[KEY_LEN], uint8_t rkey[KEY_LEN])
{
	if (suite == RTP_LEG_SRTP_NONE)
		return 0;
	if (suite != RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80 &&
	    suite != RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_32)
		return -EINVAL;
	if (key_decode(lk, lkey, leg->local_key) || key_decode(rk, rkey, leg->remote_key))
		return -EINVAL;
	return 0;
}

static int leg_check_params(const struct rtp_leg_params *p)
{
	int tev = p->tev_payload_type ? p->tev_payload_type : RTP_LEG_DEFAULT_TEV_PT;

	if (!p->loop || !p->pool ||
	    !payload_params_ok(p->payload_type, p->clock_rate, p->samples_per_frame, tev))
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
	leg->tev_pt = p->tev_payload_type ? p->tev_payload_type : RTP_LEG_DEFAULT_TEV_PT;
	leg->spf = p->samples_per_frame;
	leg->clock_rate = p->clock_rate;
	leg->timeout_ms = p->rtp_timeout_ms;
	leg->latch_packets = p->latch_packets ? p->latch_packets : RTP_LEG_LATCH_PACKETS;
	leg->latch_guard_ms = p->latch_guard_ms ? p->latch_guard_ms : RTP_LEG_LATCH_GUARD_MS;
	leg->plc_frames = p->plc_frames ? p->plc_frames : 5;
	leg->silence_ms = p->silence_ms ? p->silence_ms : 100;
	leg->ssrc = p->has_ssrc ? p->ssrc : random_u32();
	seq = p->has_seq ? p->initial_seq : (uint16_t)(random_u32() & 0x7fffu);
	leg->next_ts = p->has_ts ? p->initial_ts : random_u32();
	leg->send_roc = p->send_roc;
	leg->expect_ssrc = p->has_remote_ssrc;
	leg->expected_ssrc = p->remote_ssrc;
	leg->pull_time_us = mono_us();
	leg->last_rx_ms = mono_ms();

	err = addr_parse(&bind_addr, p->bind_ip ? p->bind_ip : "0.0.0.0", 0, AF_UNSPEC);
	if (err)
		goto out_free;
	leg->family = bind_addr.u.sa.sa_family;
	snprintf(leg->advertised_ip, sizeof(leg->advertised_ip), "%s",
		 p->advertised_ip ? p->advertised_ip : (p->bind_ip ? p->bind_ip : "0.0.0.0"));
	if (p->remote_ip) {
		err = addr_parse(&leg->sig_rtp, p->remote_ip, p->remote_port, leg->family);
		if (!err)
			err = addr_parse(&leg->sig_rtcp, p->remote_ip,
					 p->remote_rtcp_port ? p->remote_rtcp_port
							     : (uint16_t)(p->remote_port + 1u),
					 leg->family);
		if (err)
			goto out_free;
	}
	err = leg_keys(leg, p->srtp_suite, p->local_key, p->remote_key, lkey, rkey);
	if (err)
		goto out_free;
	leg->suite = p->srtp_suite;
	if (leg->suite != RTP_LEG_SRTP_NONE) {
		err = srtp_build(leg, leg->suite, lkey, rkey, p->send_roc, p->has_remote_ssrc,
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
	err = session_setup(leg, p, seq);
	if (err)
		goto out_free;
	leg->rtp_io = evloop_io_add(leg->loop, leg->rtp_fd, EV_READ, on_rtp_readable, leg);
	leg->rtcp_io = evloop_io_add(leg->loop, leg->rtcp_fd, EV_READ, on_rtcp_readable, leg);
	leg->hk_timer = evloop_timer_new(leg->loop, on_housekeeping, leg);
	if (!leg->rtp_io || !leg->rtcp_io || !leg->hk_timer) {
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

/* Sends @m (consumed) through oRTP with timestamp @ts; keeps our ROC count. */
static int ortp_send(struct rtp_leg *leg, mblk_t *m, uint32_t ts)
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
			leg_fail(leg, r);
		return r;
	}
	return 0;
}

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
	if (leg->on_hold || leg->dtx_active || !rtp_dest(leg))
		return 0;
	m = rtp_session_create_packet(leg->s, RTP_FIXED_HEADER_SIZE, payload, len);
	if (!m)
		return -ENOMEM;
	if (!leg->sent_any || leg->mark_next)
		rtp_set_markbit(m, 1);
	leg_enter(leg); /* a failure callback may destroy the leg */
	r = ortp_send(leg, m, ts);
	if (r == 0) {
		leg->sent_any = true;
		leg->mark_next = false;
	}
	leg_leave(leg);
	return r;
}

void rtp_leg_skip(struct rtp_leg *leg, uint32_t samples)
{
	leg->next_ts += samples;
	leg->mark_next = true;
}

/* ---------------------------------------------------------------- pull */

int rtp_leg_pull(struct rtp_leg *leg, uint8_t *out, size_t *len, bool *lost)
{
	size_t cap = *len;
	mblk_t *m;

	*len = 0;
	*lost = false;
	leg->pull_ts += leg->spf;
	leg->pull_time_us = mono_us();
	m = rtp_session_recvm_with_ts(leg->s, leg->pull_ts);
	if (m) {
		unsigned char *pl = NULL;
		int n = rtp_get_payload(m, &pl);

		if (n > 0 && (size_t)n > cap) {
			freemsg(m);
			return -EMSGSIZE;
		}
		if (n > 0) {
			memcpy(out, pl, (size_t)n);
			*len = (size_t)n;
			leg->primed = true;
			leg->missing = 0;
			freemsg(m);
			return 0;
		}
		freemsg(m);
	}
	if (!leg->primed)
		return 0;
	if (leg->s->rtp.rq.q_mcount > 0 || leg->missing < leg->plc_frames) {
		*lost = true;
		leg->missing++;
		leg->st.frames_lost++;
	}
	return 0;
}

void rtp_leg_pull_skip(struct rtp_leg *leg, uint32_t frames)
{
	leg->pull_ts += frames * leg->spf;
	leg->pull_time_us = mono_us();
}

/* ---------------------------------------------------------------- DTMF out */

static void on_dtmf_timer(struct evloop *loop, struct ev_timer *t, void *arg);

static int dtmf_packet(struct rtp_leg *leg, bool marker, bool end, uint32_t dur)
{
	mblk_t *m = rtp_session_create_telephone_event_packet(leg->s, marker ? 1 : 0);

	if (!m)
		return -ENOMEM;
	rtp_session_add_telephone_event(leg->s, m, leg->dtx_event, end ? 1 : 0, DTMF_VOLUME,
					(uint16_t)dur);
	return ortp_send(leg, m, leg->dtx_ts);
}

static void dtmf_finish(struct rtp_leg *leg)
{
	uint32_t end_ts = leg->dtx_ts + leg->dtx_total;

	leg->dtx_active = false;
	/* Audio resumes after the event; never behind its end. */
	if ((int32_t)(end_ts - leg->next_ts) > 0)
		leg->next_ts = end_ts;
	leg->mark_next = true;
	leg->st.dtmf_sent++;
}

/* One 20 ms step of the event on the wire; starts the next queued event when idle. */
static void dtmf_step(struct rtp_leg *leg)
{
	uint32_t step = leg->clock_rate * DTMF_INTERVAL_MS / 1000u;

	if (!leg->dtx_active) {
		struct dtmf_item it;

		if (!leg->dq_count)
			return;
		it = leg->dq[leg->dq_head];
		leg->dq_head = (leg->dq_head + 1) % DTMF_QUEUE;
		leg->dq_count--;
		leg->dtx_active = true;
		leg->dtx_first = true;
		leg->dtx_event = it.event;
		leg->dtx_total = it.duration_ts;
		leg->dtx_elapsed = 0;
		leg->dtx_end_sent = 0;
		leg->dtx_ts = leg->next_ts;
	}
	if (leg->on_hold || !rtp_dest(leg)) {
		leg->dtx_active = false; /* abandoned */
		return;
	}
	if (!leg->dtx_end_sent && leg->dtx_elapsed + step < leg->dtx_total) {
		leg->dtx_elapsed += step;
		dtmf_packet(leg, leg->dtx_first, false, leg->dtx_elapsed);
	} else {
		dtmf_packet(leg, leg->dtx_first, true, leg->dtx_total);
		if (++leg->dtx_end_sent == DTMF_END_PACKETS)
			dtmf_finish(leg);
	}
	leg->dtx_first = false;
}

static void on_dtmf_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct rtp_leg *leg = arg;

	(void)loop;
	leg_enter(leg);
	dtmf_step(leg);
	if (!leg->zombie && (leg->dtx_active || leg->dq_count))
		evloop_timer_start(t, DTMF_INTERVAL_MS);
	leg_leave(leg);
}

int rtp_leg_send_dtmf(struct rtp_leg *leg, char digit, unsigned duration_ms)
{
	const char *c = strchr(dtmf_chars, digit >= 'a' && digit <= 'd' ? digit - 32 : digit);
	uint32_t max_ms = (uint32_t)(65535ull * 1000u / leg->clock_rate);
	struct dtmf_item *it;

	if (!digit || !c || leg->tev_pt < 0 || leg->zombie)
		return -EINVAL;
	if (leg->on_hold || !rtp_dest(leg))
		return -EAGAIN;
	if (leg->dq_count == DTMF_QUEUE)
		return -ENOBUFS;
	if (!leg->dtmf_timer) {
		leg->dtmf_timer = evloop_timer_new(leg->loop, on_dtmf_timer, leg);
		if (!leg->dtmf_timer)
			return -ENOMEM;
	}
	if (duration_ms < DTMF_MIN_MS)
		duration_ms = DTMF_MIN_MS;
	if (duration_ms > max_ms)
		duration_ms = max_ms;
	it = &leg->dq[(leg->dq_head + leg->dq_count) % DTMF_QUEUE];
	it->event = (uint8_t)(c - dtmf_chars);
	it->duration_ts = (uint32_t)((uint64_t)duration_ms * leg->clock_rate / 1000u);
	leg->dq_count++;
	if (!evloop_timer_armed(leg->dtmf_timer)) {
		leg_enter(leg);
		dtmf_step(leg); /* the first packet goes out now */
		if (!leg->zombie)
			evloop_timer_start(leg->dtmf_timer, DTMF_INTERVAL_MS);
		leg_leave(leg);
	}
	return 0;
}

/* ---------------------------------------------------------------- housekeeping */

static void on_housekeeping(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct rtp_leg *leg = arg;
	uint64_t now = mono_ms();

	(void)loop;
	leg_enter(leg);
	rtp_session_rtcp_process_send(leg->s); /* RTCP goes out even while not sending media */
	if (leg->drx_active && now - leg->drx_last_ms > DTMF_RX_STALE_MS)
		dtmf_report(leg);
	if (!leg->zombie && leg->timeout_ms && !leg->on_hold && !leg->timed_out &&
	    now - leg->last_rx_ms >= leg->timeout_ms) {
		leg->timed_out = true;
		/* Release the latch: media goes to the signalled remote again, and the peer (whose
		 * NAT binding may have moved) is latched again by the rule at the top. */
		latch_release(leg);
		log_info(leg->sid, "rtp_leg: no RTP for %u ms on port %u", leg->timeout_ms,
			 leg->port);
		if (leg->cb.on_timeout)
			leg->cb.on_timeout(leg, leg->cb.arg);
	}
	if (!leg->zombie)
		evloop_timer_start(t, HOUSEKEEPING_MS);
	leg_leave(leg);
}

/* ---------------------------------------------------------------- updates */

int rtp_leg_set_remote(struct rtp_leg *leg, const char *ip, uint16_t port, uint16_t rtcp_port)
{
	struct addr rtp = {0}, rtcp = {0};

	if (ip) {
		if (!port || addr_parse(&rtp, ip, port, leg->family) ||
		    addr_parse(&rtcp, ip, rtcp_port ? rtcp_port : (uint16_t)(port + 1u),
			       leg->family))
			return -EINVAL;
	}
	if (!addr_same(&leg->sig_rtp, &rtp) || !addr_same(&leg->sig_rtcp, &rtcp))
		latch_release(leg); /* another peer address: learning starts again */
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
	int tev = tev_payload_type ? tev_payload_type : RTP_LEG_DEFAULT_TEV_PT;
	int err;

	if (!payload_params_ok(payload_type, clock_rate, samples_per_frame, tev))
		return -EINVAL;
	err = profile_set(leg, payload_type, clock_rate, tev);
	if (err)
		return err;
	leg->spf = samples_per_frame;
	rtp_session_resync(leg->s);
	leg->primed = false;
	leg->missing = 0;
	return 0;
}

int rtp_leg_set_srtp(struct rtp_leg *leg, enum rtp_leg_srtp_suite suite, const char *local_key,
		     const char *remote_key)
{
	uint8_t lkey[KEY_LEN], rkey[KEY_LEN];
	srtp_t tx = NULL, rx = NULL;
	uint32_t rx_roc = 0;
	int err;

	err = leg_keys(leg, suite, local_key, remote_key, lkey, rkey);
	if (err)
		return err;
	if (suite != RTP_LEG_SRTP_NONE) {
		if (leg->rx && leg->know_remote_ssrc)
			(void)srtp_get_stream_roc(leg->rx, leg->remote_ssrc, &rx_roc);
		err = srtp_build(leg, suite, lkey, rkey, leg->send_roc, leg->know_remote_ssrc,
				 leg->remote_ssrc, rx_roc, &tx, &rx);
		explicit_bzero(lkey, sizeof(lkey));
		explicit_bzero(rkey, sizeof(rkey));
		if (err)
			return err;
	} else {
		leg->local_key[0] = leg->remote_key[0] = '\0';
	}
	if (leg->tx)
		srtp_dealloc(leg->tx);
	if (leg->rx)
		srtp_dealloc(leg->rx);
	leg->tx = tx;
	leg->rx = rx;
	leg->suite = suite;
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
	const rtp_stats_t *os = rtp_session_get_stats(leg->s);
	float rtt = rtp_session_get_round_trip_propagation(leg->s);
	int64_t lost = leg->rx_lost_before;

	*st = leg->st;
	if (leg->rx_init)
		lost += (int64_t)leg->rx_cycles + leg->rx_max_seq - leg->rx_base + 1 -
			(int64_t)leg->rx_count;
	st->packets_lost = lost > 0 ? lost : 0;
	st->frames_late = os->outoftime;
	st->jitter = (uint32_t)leg->s->rtp.jittctl.inter_jitter;
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
		addr_ip(&leg->sig_rtp, st->remote_ip, sizeof(st->remote_ip));
		st->remote_port = addr_port(&leg->sig_rtp);
		st->remote_rtcp_port = addr_port(&leg->sig_rtcp);
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
