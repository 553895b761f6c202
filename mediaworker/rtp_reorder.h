/*
 * rtp_reorder.h - the smallest reorder stage that works for a receiver with no playout buffer.
 *
 * The RTMP side of a call is TCP and every RTMP player buffers on its own, so the worker plays
 * nothing out on a clock: an RTP packet is handed on when it arrives. This stage only puts
 * packets back in sequence order, and holds one only while a gap before it is open:
 *
 *                      seq == next: emit, then every held packet that now follows
 *   packet arrives --> seq ahead (gap): hold it; the gap closes when the missing ones arrive,
 *                      or one frame time after it opened: the missing frames are reported
 *                      lost (up to max_conceal of them, else treated as a pause) and the
 *                      held packets are emitted
 *                      seq behind (late, duplicate): dropped, counted
 *                      seq far away (a restarted stream): everything held emitted, resync
 *
 * No clock of its own: the caller passes the time (µs) with every packet and calls
 * rtp_reorder_expire() at the deadline rtp_reorder_deadline() gives while a gap is open.
 * Emitted frames carry their RTP timestamp (a lost frame's is interpolated), so the caller can
 * keep its output timeline true to the RTP clock. No allocation per packet: the hold slots are
 * allocated once, at the first gap, and kept.
 */
#ifndef RS_RTP_REORDER_H
#define RS_RTP_REORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTP_REORDER_SLOTS	4    /* packets held at most while a gap is open */
#define RTP_REORDER_MAX_PAYLOAD 1500 /* a held payload's size bound */
#define RTP_REORDER_MAX_AHEAD	100  /* a jump further ahead (or behind) restarts the stream */

struct rtp_reorder_frame {
	uint16_t seq;
	uint32_t ts;	  /* RTP timestamp (interpolated for a lost frame) */
	bool marker;	  /* RTP marker bit */
	uint8_t pt;	  /* payload type (0 for a lost frame) */
	bool lost;	  /* a frame that never came: payload NULL; conceal it */
	const uint8_t *payload;
	size_t len;
	/* A lost frame right before a packet that is here already: that packet (pt next_pt), whose
	 * in-band FEC may rebuild the lost one (Opus); NULL otherwise. */
	const uint8_t *next;
	size_t next_len;
	uint8_t next_pt;
};

/* Receives every frame in order; @f and its payload are valid during the call only. */
typedef void (*rtp_reorder_emit_fn)(void *arg, const struct rtp_reorder_frame *f);

struct rtp_reorder_slot;

struct rtp_reorder {
	bool started;
	uint16_t next_seq;	/* the sequence number expected next */
	uint32_t last_ts;	/* timestamp of the last frame emitted */
	uint32_t frame_ts;	/* timestamp step of one frame (for a lost frame's) */
	uint64_t gap_deadline;	/* µs; 0 while no gap is open */
	unsigned held;		/* slots in use */
	struct rtp_reorder_slot *slot; /* RTP_REORDER_SLOTS, allocated at the first gap */
	/* configuration */
	uint32_t hold_us;     /* how long a gap stays open: one frame */
	unsigned max_conceal; /* lost frames reported per gap at most */
	/* counters */
	uint64_t reordered;	/* packets that arrived ahead of a gap and were held */
	uint64_t late;		/* packets behind the sequence (late or duplicate), dropped */
	uint64_t lost;		/* frames reported lost */
	uint64_t resyncs;	/* jumps that restarted the sequence */
	uint64_t gaps_expired;	/* gaps closed by their deadline rather than by the packet */
};

/* Sets @r up: a gap stays open @hold_us (one frame time), at most @max_conceal lost reports. */
void rtp_reorder_init(struct rtp_reorder *r, uint32_t hold_us, unsigned max_conceal,
		      uint32_t frame_ts);

/* Frees the hold slots; @r can be initialised again. */
void rtp_reorder_free(struct rtp_reorder *r);

/* Forgets the stream (held packets dropped): the next packet starts it again. */
void rtp_reorder_reset(struct rtp_reorder *r);

/*
 * One packet (@seq, @ts, @marker, payload type @pt, @payload of @len bytes) arrived at @now_us. Emits through
 * @emit whatever is now in order (possibly nothing, possibly several frames, lost ones
 * included when the packet overflowed the hold slots). Returns 0, -EMSGSIZE (a payload above
 * RTP_REORDER_MAX_PAYLOAD that had to be held: dropped), -ENOMEM (no slots: emitted as if
 * the gap had expired).
 */
int rtp_reorder_push(struct rtp_reorder *r, uint16_t seq, uint32_t ts, bool marker, uint8_t pt,
		     const uint8_t *payload, size_t len, uint64_t now_us, rtp_reorder_emit_fn emit,
		     void *arg);

/* When the open gap expires (µs), or 0 when no gap is open. */
uint64_t rtp_reorder_deadline(const struct rtp_reorder *r);

/* At @now_us: closes an expired gap (lost frames, then the held packets, through @emit). */
void rtp_reorder_expire(struct rtp_reorder *r, uint64_t now_us, rtp_reorder_emit_fn emit,
			void *arg);

/* Emits everything held now (lost frames for the holes first) and closes any gap. */
void rtp_reorder_flush(struct rtp_reorder *r, rtp_reorder_emit_fn emit, void *arg);

#endif
