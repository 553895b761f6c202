/*
 * rtp_leg.h - one RTP/SRTP session toward the SIP peer, driven by the worker's event loop.
 *
 * A leg owns a port pair from a port_pool, two non-blocking UDP sockets watched by the evloop,
 * an oRTP RtpSession (packet building, parsing, jitter buffer, RTCP SR/RR, telephone events),
 * and up to two libsrtp2 contexts (send, receive). Nothing blocks and no thread is started:
 * readable sockets are drained in the evloop callback, RTCP and the RTP timeout run from a
 * per-leg timer.
 *
 * No playout buffer: a packet that arrives is handed on (cb.on_frame) in the same loop
 * iteration, in sequence order. A packet is held only while a gap before it is open, for at
 * most one frame time; a frame given up is reported lost for concealment (rtp_reorder.h).
 * Without cb.on_frame the frames wait in a short queue for rtp_leg_pull() (tools, tests).
 *
 * Strict symmetric RTP (latching), in full with its diagram at the top of rtp_latch.c:
 *   - RTP from the signalled remote (exactly its address and port) is accepted and latches the
 *     leg at once; the latched source is where media goes from then on.
 *   - SRTP legs: the first packet that passes authentication latches, from any source (the key
 *     proves the peer). Another source may take over only once the latched one has been silent
 *     for the guard time.
 *   - Plain RTP from any other source (a peer behind NAT, or someone spraying the port range)
 *     is never played. It moves the latch only after RTP_LEG_LATCH_PACKETS valid packets in a
 *     row from it (one SSRC, rising sequence numbers), all arriving while the latched source
 *     has been silent for RTP_LEG_LATCH_GUARD_MS. Before any remote is signalled, the first
 *     latch is learned the same way: never from one packet.
 *   - Dropped packets from other sources are counted in stats.unexpected_source; latch moves
 *     (and latches to a source other than the signalled one) are logged and counted in
 *     stats.latch_changes.
 *   - A newly signalled remote (rtp_leg_set_remote() with another address) releases the latch
 *     and restarts learning; so does the RTP timeout (the peer went silent).
 *   - Once RTP is latched, RTCP is accepted from the latched source's IP address (any port),
 *     and the first such packet latches RTCP; before that, RTCP is sent to the signalled RTCP
 *     port, or to the latched RTP source's port + 1 when it is not the signalled one.
 *
 * Callbacks run from the event loop (or from the call that triggered them); they may call
 * rtp_leg_destroy() on their own leg, and must not block.
 */
#ifndef RS_RTP_LEG_H
#define RS_RTP_LEG_H

#include "rtp_reorder.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct evloop;
struct port_pool;
struct rtp_leg;

/* SDES crypto suites (RFC 4568). RTCP uses an 80-bit tag with either (RFC 4568 6.2.2). */
enum rtp_leg_srtp_suite {
	RTP_LEG_SRTP_NONE = 0,
	RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80,
	RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_32,
};

/* A master key + salt (30 bytes) in base64 is 40 characters. */
#define RTP_LEG_KEY_B64_LEN 40
/* Largest RTP/RTCP datagram accepted or sent (before the SRTP trailer). */
#define RTP_LEG_MAX_PACKET 1500
/* Telephone-event payload type used when params.tev_payload_type is 0. */
#define RTP_LEG_DEFAULT_TEV_PT 101
/* Strict latching (rtp_latch.c): valid packets in a row a new source must send to be learned,
 * and how long the latched source must have been silent before another may take its place. */
#define RTP_LEG_LATCH_PACKETS	   4
#define RTP_LEG_LATCH_PACKETS_MAX  64
#define RTP_LEG_LATCH_GUARD_MS	   500
#define RTP_LEG_LATCH_GUARD_MS_MAX 60000

struct rtp_leg_callbacks {
	/* A DTMF event ended (RFC 4733): @digit is one of 0-9 * # A-D. Once per event. */
	void (*on_dtmf)(struct rtp_leg *leg, char digit, unsigned duration_ms, void *arg);
	/* No RTP for params.rtp_timeout_ms (not counted while on hold). Once per silence. */
	void (*on_timeout)(struct rtp_leg *leg, void *arg);
	/* The leg cannot go on (socket error, SRTP failure); @err is a negative errno. Once. */
	void (*on_failure)(struct rtp_leg *leg, int err, void *arg);
	/* Optional: the leg latched to a source (@addr) other than the signalled remote (learned,
	 * or SRTP-authenticated). */
	void (*on_latched)(struct rtp_leg *leg, const struct sockaddr *addr, void *arg);
	/* Optional: the peer's next audio frame in sequence order, on arrival: @payload of @len
	 * bytes with RTP timestamp @ts, or @lost: a frame that never came, to be concealed (at
	 * most plc_frames in a row; a longer hole is a pause). For a lost frame @payload is NULL,
	 * or, when the packet after it is here already, that packet (its in-band FEC, Opus's, may
	 * rebuild the lost frame; it is handed on again as itself next). */
	void (*on_frame)(struct rtp_leg *leg, const uint8_t *payload, size_t len, uint32_t ts,
			 bool lost, void *arg);
	/* Video legs (params.video) instead of on_frame: every packet of the peer's stream in
	 * sequence order, on arrival, with its marker bit; f->lost: a packet that never came
	 * (reported once per hole: what was being assembled is broken). */
	void (*on_packet)(struct rtp_leg *leg, const struct rtp_reorder_frame *f, void *arg);
	/* Optional, video legs: the peer asked for a key frame (RTCP PLI or FIR). */
	void (*on_keyframe_request)(struct rtp_leg *leg, void *arg);
	void *arg;
};

struct rtp_leg_params {
	struct evloop *loop;	   /* required */
	struct port_pool *pool;	   /* required: the pair comes from here and goes back on destroy */
	const char *sid;	   /* session id for the logs (call id); copied; may be NULL */
	const char *bind_ip;	   /* numeric IPv4/IPv6 address to bind ("0.0.0.0" by default) */
	const char *advertised_ip; /* address for the SDP (NAT, containers); NULL: bind_ip */
	const char *remote_ip;	   /* numeric; NULL when not known yet (rtp_leg_set_remote later) */
	uint16_t remote_port;	   /* RTP port of the peer; 0 when not known */
	uint16_t remote_rtcp_port; /* 0: remote_port + 1 */

	bool video;		    /* a video stream (H.264, 90 kHz): no DTMF, no concealment,
				     * packets through cb.on_packet, sent by rtp_leg_send_video(),
				     * RTCP feedback (PLI/FIR) both ways */
	int payload_type;	    /* 0..127, e.g. 0 for PCMU */
	uint32_t clock_rate;	    /* RTP clock, e.g. 8000 */
	uint32_t samples_per_frame; /* samples per pulled frame (20 ms: 160 at 8 kHz) */
	int tev_payload_type;	    /* telephone-event PT, 0: 101, -1: no DTMF */

	/* Stream identity: given when adopting a leg (continuity), random otherwise. */
	bool has_ssrc, has_seq, has_ts;
	uint32_t ssrc;
	uint16_t initial_seq; /* sequence number of the first packet sent */
	uint32_t initial_ts;  /* timestamp of the first packet sent */
	uint32_t send_roc;    /* SRTP rollover counter that applies to initial_seq */
	/* The peer's stream, when known (adoption): enforced before latching; with SRTP its ROC. */
	bool has_remote_ssrc;
	uint32_t remote_ssrc;
	uint32_t recv_roc;

	enum rtp_leg_srtp_suite srtp_suite;
	const char *local_key;	/* our key: SDES base64, "inline:" and "|lifetime" allowed */
	const char *remote_key; /* the peer's key, same format */

	unsigned rtp_timeout_ms;   /* no RTP for this long -> on_timeout; 0 disables */
	unsigned latch_packets;	   /* learning run, 2..RTP_LEG_LATCH_PACKETS_MAX; 0: the default */
	unsigned latch_guard_ms;   /* guard, up to RTP_LEG_LATCH_GUARD_MS_MAX; 0: the default */
	unsigned rtcp_interval_ms; /* mean RTCP report interval; 0: 5000 */
	unsigned plc_frames; /* lost frames reported per hole at most (longer: a pause); 0: 5 */
	unsigned silence_ms; /* a send gap longer than this sets the marker bit; 0: 100 */
	const char *cname;   /* RTCP CNAME; NULL: "rtmp2sip@<advertised_ip>" */

	struct rtp_leg_callbacks cb;
};

struct rtp_leg_stats {
	uint64_t packets_sent, bytes_sent; /* RTP, including DTMF (bytes: RTP header + payload) */
	uint64_t packets_received, bytes_received; /* accepted RTP packets */
	int64_t packets_lost;			   /* expected - received, from sequence numbers */
	uint64_t frames_lost;			   /* frames reported lost (to conceal) */
	uint64_t frames_late;  /* packets behind the sequence (late or duplicate): dropped */
	uint64_t reordered;    /* packets held while a gap before them was open */
	uint32_t jitter;      /* interarrival jitter, timestamp units (RFC 3550) */
	uint32_t jitter_ms;
	uint64_t rtcp_sent, rtcp_received; /* RTCP compound packets (oRTP counts report blocks) */
	float rtt_ms;			   /* from RTCP, -1 when unknown */
	uint64_t srtp_auth_failures;	   /* RTP + RTCP */
	uint64_t srtp_replays;
	uint64_t bad_packets;	    /* malformed RTP/RTCP */
	uint64_t unknown_pt;	    /* valid RTP with a payload type we do not expect */
	uint64_t wrong_ssrc;	    /* SSRC differs from the expected one (before latching) */
	uint64_t unexpected_source; /* RTP/RTCP from a source not taken (yet): see the rule above */
	uint64_t latch_changes;	    /* latch moved, or learned from a non-signalled source */
	uint64_t send_errors;
	uint64_t dtmf_sent, dtmf_received;
	uint64_t keyframe_requests_sent, keyframe_requests_received; /* video: PLI/FIR */
};

/* Everything needed to re-create the leg elsewhere with continuity (serialised by the caller). */
struct rtp_leg_state {
	uint32_t ssrc;
	uint16_t next_seq;
	uint32_t next_ts;
	uint32_t send_roc;    /* applies to next_seq */
	uint64_t saved_at_ms; /* CLOCK_REALTIME, to advance next_ts by the time spent moving */
	/* The signalled remote; "" when none. A learned (latched) address is not part of the
	 * state: the adopting worker learns it again and never trusts it as signalled. */
	char remote_ip[48];
	uint16_t remote_port, remote_rtcp_port;
	int payload_type, tev_payload_type;
	uint32_t clock_rate, samples_per_frame;
	enum rtp_leg_srtp_suite srtp_suite;
	char local_key[RTP_LEG_KEY_B64_LEN + 1];
	char remote_key[RTP_LEG_KEY_B64_LEN + 1];
	bool has_remote_ssrc;
	uint32_t remote_ssrc;
	uint32_t recv_roc;
	bool on_hold;
};

/* Fills @p with defaults: PCMU 8000 Hz, 160 samples, DTMF on 101, bind 0.0.0.0, no SRTP. */
void rtp_leg_params_init(struct rtp_leg_params *p);

/*
 * Copies the stream identity, payload, keys and remote of @st into @p (whose loop, pool,
 * bind address and callbacks the caller sets), advancing the timestamp by the wall-clock
 * time elapsed since st->saved_at_ms (@now_realtime_ms) so the peer's playout stays sane.
 * The pointers stored in @p point into @st, which must outlive rtp_leg_new(). Hold is not
 * part of the params: call rtp_leg_set_hold(leg, st->on_hold) after creating the leg.
 */
void rtp_leg_params_adopt(struct rtp_leg_params *p, const struct rtp_leg_state *st,
			  uint64_t now_realtime_ms);

/*
 * Creates a leg: takes a port pair from params->pool (skipping pairs other processes hold),
 * binds both sockets, registers them with params->loop. The pair goes back to the pool on
 * every failure path. Returns the leg, or NULL with errno set (EINVAL bad params or key,
 * ENOSPC no port, EADDRNOTAVAIL bad bind address, ENOMEM...). @p and its strings are copied.
 */
struct rtp_leg *rtp_leg_new(const struct rtp_leg_params *p);

/* Sends an RTCP BYE when possible, releases everything; NULL-safe, clears *legp. */
void rtp_leg_destroy(struct rtp_leg **legp);

/* Local RTP port (RTCP is + 1) and the address to put in the SDP. */
uint16_t rtp_leg_local_port(const struct rtp_leg *leg);
const char *rtp_leg_advertised_ip(const struct rtp_leg *leg);
const char *rtp_leg_sid(const struct rtp_leg *leg);

/*
 * Sends one frame: the packet carries timestamp T (the leg's clock), then T advances by
 * @samples. The marker bit is set on the first packet, after hold, DTMF or rtp_leg_skip(),
 * and after a send gap longer than params.silence_ms. SRTP-protected when keyed. Does not
 * send (but still advances the clock) while on hold, while a DTMF event is being sent, or
 * before any remote is known. Returns 0, -EINVAL (len 0 or > 1400), or a negative errno from
 * the socket or SRTP (counted in stats.send_errors).
 */
int rtp_leg_send(struct rtp_leg *leg, const uint8_t *payload, size_t len, uint32_t samples);

/*
 * Video legs: sends one RTP packet of an access unit at timestamp @ts (the leg's clock: start
 * from rtp_leg_send_clock()), with the marker bit on the last packet of the access unit. SRTP
 * and hold as rtp_leg_send(). The leg's clock follows @ts (the state stored for a move). 0,
 * -EINVAL (not a video leg, len 0 or above 1400), or a negative errno from the socket or SRTP.
 */
int rtp_leg_send_video(struct rtp_leg *leg, const uint8_t *payload, size_t len, uint32_t ts,
		       bool marker);

/* The timestamp the leg's next packet would carry (random at creation, continued on adopt). */
uint32_t rtp_leg_send_clock(const struct rtp_leg *leg);

/*
 * Video legs: asks the peer for a key frame with an RTCP PLI (RFC 4585), and a FIR
 * (RFC 5104) as well when @fir. Goes out with the next RTCP compound packet, at most one per
 * 300 ms. 0, -EINVAL (not a video leg), -EAGAIN (nothing received from the peer yet: no
 * media SSRC to name).
 */
int rtp_leg_request_keyframe(struct rtp_leg *leg, bool fir);

/* Advances the send clock by @samples without sending (DTX / silence); next packet marked. */
void rtp_leg_skip(struct rtp_leg *leg, uint32_t samples);

/*
 * Without cb.on_frame: the next frame received, in order (up to 8 wait; older ones are dropped
 * and counted in frames_late). *len is the capacity of @out on entry and the payload length on
 * return. Outcomes:
 *   *len > 0           a payload;
 *   *len == 0, *lost   a frame is missing: run packet-loss concealment;
 *   *len == 0, !*lost  nothing waiting.
 * Returns 0, or -EMSGSIZE when the payload does not fit (the frame is dropped).
 */
int rtp_leg_pull(struct rtp_leg *leg, uint8_t *out, size_t *len, bool *lost);

/*
 * Queues an RFC 4733 event for @digit (0-9 * # A-D, case-insensitive) lasting @duration_ms
 * (clamped to 40 ms .. the 16-bit duration field). Packets go out from the event loop every
 * 20 ms with one timestamp, then three end packets. Returns 0, -EINVAL (digit, DTMF
 * disabled), -EAGAIN (on hold or no remote yet) or -ENOBUFS (16 events already queued).
 */
int rtp_leg_send_dtmf(struct rtp_leg *leg, char digit, unsigned duration_ms);

/*
 * Changes the signalled remote (@rtcp_port 0: @port + 1). Another address than the one
 * signalled now releases the latch and restarts learning; the same one (a re-INVITE that kept
 * it) keeps both. @ip NULL forgets the remote. Returns 0 or -EINVAL (not a numeric address of
 * the bound family).
 */
int rtp_leg_set_remote(struct rtp_leg *leg, const char *ip, uint16_t port, uint16_t rtcp_port);

/*
 * Changes the payload type, clock rate, frame size and telephone-event PT (0: 101, -1: none)
 * in place; the jitter buffer restarts. Returns 0 or -EINVAL.
 */
int rtp_leg_set_payload(struct rtp_leg *leg, int payload_type, uint32_t clock_rate,
			uint32_t samples_per_frame, int tev_payload_type);

/*
 * Re-keys SRTP (or turns it on/off with RTP_LEG_SRTP_NONE), keeping our SSRC and both
 * rollover counters. Returns 0 or -EINVAL (bad key), -ENOMEM.
 */
int rtp_leg_set_srtp(struct rtp_leg *leg, enum rtp_leg_srtp_suite suite, const char *local_key,
		     const char *remote_key);

/* Hold: stop sending media and DTMF, keep RTCP, pause the RTP timeout. Unhold resumes. */
void rtp_leg_set_hold(struct rtp_leg *leg, bool on_hold);

/* Copies the counters. */
void rtp_leg_get_stats(const struct rtp_leg *leg, struct rtp_leg_stats *st);

/* Captures the state to store in Redis. */
void rtp_leg_get_state(const struct rtp_leg *leg, struct rtp_leg_state *st);

/*
 * Feeds one datagram into the RTP (or RTCP) input path exactly as if it had arrived on the
 * socket from @from: validation, latching, SRTP, jitter buffer, DTMF. For tests and fuzzing.
 * @buf is copied. Returns 0 when accepted, a negative errno when dropped (counted).
 */
int rtp_leg_input_packet(struct rtp_leg *leg, const uint8_t *buf, size_t len,
			 const struct sockaddr *from, socklen_t fromlen);
int rtp_leg_input_rtcp_packet(struct rtp_leg *leg, const uint8_t *buf, size_t len,
			      const struct sockaddr *from, socklen_t fromlen);
/*
 * rtp_leg_input_packet() for a datagram that arrived at @arrival_ms (CLOCK_MONOTONIC, in ms),
 * the time the latching guard measures silences with: tests of the guard's boundaries.
 */
int rtp_leg_input_packet_at(struct rtp_leg *leg, const uint8_t *buf, size_t len,
			    const struct sockaddr *from, socklen_t fromlen, uint64_t arrival_ms);

/* Writes a fresh random SDES key (40 base64 characters + NUL). Returns 0 or -EIO. */
int rtp_leg_srtp_key_generate(char out[RTP_LEG_KEY_B64_LEN + 1]);

/* Frees the process-wide oRTP/libsrtp state (at exit, after the last leg; for leak checks). */
void rtp_leg_global_cleanup(void);

#endif
