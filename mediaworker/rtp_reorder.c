/*
 * rtp_reorder.c - put RTP packets back in order, holding one only while a gap is open
 * (rtp_reorder.h has the rule and its diagram).
 */
#include "rtp_reorder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct rtp_reorder_slot {
	bool used, marker;
	uint8_t pt;
	uint16_t seq;
	uint32_t ts;
	uint64_t arrival; /* µs */
	size_t len;
	uint8_t data[RTP_REORDER_MAX_PAYLOAD];
};

void rtp_reorder_init(struct rtp_reorder *r, uint32_t hold_us, unsigned max_conceal,
		      uint32_t frame_ts)
{
	memset(r, 0, sizeof(*r));
	r->hold_us = hold_us;
	r->max_conceal = max_conceal;
	r->frame_ts = frame_ts;
}

void rtp_reorder_free(struct rtp_reorder *r)
{
	free(r->slot);
	r->slot = NULL;
	r->held = 0;
	r->gap_deadline = 0;
}

void rtp_reorder_reset(struct rtp_reorder *r)
{
	if (r->slot)
		for (unsigned i = 0; i < RTP_REORDER_SLOTS; i++)
			r->slot[i].used = false;
	r->held = 0;
	r->gap_deadline = 0;
	r->started = false;
}

static void emit_packet(struct rtp_reorder *r, uint16_t seq, uint32_t ts, bool marker,
			uint8_t pt, const uint8_t *payload, size_t len, rtp_reorder_emit_fn emit,
			void *arg)
{
	struct rtp_reorder_frame f = {
	    .seq = seq, .ts = ts, .marker = marker, .pt = pt, .payload = payload, .len = len};

	r->next_seq = (uint16_t)(seq + 1u);
	r->last_ts = ts;
	emit(arg, &f);
}

/* The deadline of the gap before the held packets: one hold time after the earliest arrived. */
static void set_deadline(struct rtp_reorder *r)
{
	uint64_t first = 0;

	for (unsigned i = 0; r->held && i < RTP_REORDER_SLOTS; i++)
		if (r->slot[i].used && (!first || r->slot[i].arrival < first))
			first = r->slot[i].arrival;
	r->gap_deadline = r->held ? first + r->hold_us : 0;
	if (r->held && !r->gap_deadline)
		r->gap_deadline = 1; /* a packet held at time 0 (tests): due at once */
}

/* Emits the held packets that follow the sequence now, in order. */
static void drain_held(struct rtp_reorder *r, rtp_reorder_emit_fn emit, void *arg)
{
	bool found = true;

	while (r->held && found) {
		found = false;
		for (unsigned i = 0; i < RTP_REORDER_SLOTS; i++) {
			struct rtp_reorder_slot *s = &r->slot[i];

			if (s->used && s->seq == r->next_seq) {
				s->used = false;
				r->held--;
				emit_packet(r, s->seq, s->ts, s->marker, s->pt, s->data, s->len, emit, arg);
				found = true;
				break;
			}
		}
	}
	set_deadline(r);
}

/*
 * Gives up the hole before the nearest held packet: its frames reported lost (up to
 * max_conceal, timestamps interpolated), then what follows emitted.
 */
static void close_one_gap(struct rtp_reorder *r, rtp_reorder_emit_fn emit, void *arg)
{
	struct rtp_reorder_slot *near = NULL;
	uint16_t missing;
	uint32_t step;

	for (unsigned i = 0; i < RTP_REORDER_SLOTS; i++) {
		struct rtp_reorder_slot *s = &r->slot[i];

		if (s->used && (!near || (uint16_t)(s->seq - r->next_seq) <
					     (uint16_t)(near->seq - r->next_seq)))
			near = s;
	}
	if (!near)
		return;
	missing = (uint16_t)(near->seq - r->next_seq);
	step = (near->ts - r->last_ts) / (uint32_t)(missing + 1u);
	if (!step || step > 16u * r->frame_ts)
		step = r->frame_ts; /* a timestamp that does not advance with the sequence */
	for (uint16_t k = 0; k < missing; k++) {
		struct rtp_reorder_frame f = {.seq = (uint16_t)(r->next_seq + k),
					      .ts = r->last_ts + step * (k + 1u),
					      .lost = true};

		if (k >= r->max_conceal)
			break; /* longer than a loss worth concealing: a pause */
		if (k == missing - 1u) {
			f.next = near->data;
			f.next_len = near->len;
			f.next_pt = near->pt;
		}
		r->lost++;
		emit(arg, &f);
	}
	r->next_seq = near->seq;
	drain_held(r, emit, arg);
}

void rtp_reorder_flush(struct rtp_reorder *r, rtp_reorder_emit_fn emit, void *arg)
{
	while (r->held)
		close_one_gap(r, emit, arg);
	r->gap_deadline = 0;
}

uint64_t rtp_reorder_deadline(const struct rtp_reorder *r)
{
	return r->gap_deadline;
}

void rtp_reorder_expire(struct rtp_reorder *r, uint64_t now_us, rtp_reorder_emit_fn emit,
			void *arg)
{
	while (r->held && r->gap_deadline && now_us >= r->gap_deadline) {
		r->gaps_expired++;
		close_one_gap(r, emit, arg);
	}
}

/* Holds a packet ahead of a gap; 0, or a negative errno when it could not be held. */
static int hold(struct rtp_reorder *r, uint16_t seq, uint32_t ts, bool marker, uint8_t pt,
		const uint8_t *payload, size_t len, uint64_t now_us)
{
	struct rtp_reorder_slot *free_slot = NULL;

	if (len > RTP_REORDER_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (!r->slot) {
		r->slot = calloc(RTP_REORDER_SLOTS, sizeof(*r->slot));
		if (!r->slot)
			return -ENOMEM;
	}
	for (unsigned i = 0; i < RTP_REORDER_SLOTS; i++) {
		struct rtp_reorder_slot *s = &r->slot[i];

		if (s->used && s->seq == seq)
			return -EALREADY; /* a duplicate of a held packet */
		if (!s->used && !free_slot)
			free_slot = s;
	}
	if (!free_slot)
		return -ENOBUFS;
	*free_slot = (struct rtp_reorder_slot){
	    .used = true, .marker = marker, .pt = pt, .seq = seq, .ts = ts, .arrival = now_us, .len = len};
	memcpy(free_slot->data, payload, len);
	r->held++;
	r->reordered++;
	set_deadline(r);
	return 0;
}

int rtp_reorder_push(struct rtp_reorder *r, uint16_t seq, uint32_t ts, bool marker, uint8_t pt,
		     const uint8_t *payload, size_t len, uint64_t now_us, rtp_reorder_emit_fn emit,
		     void *arg)
{
	int16_t d;
	int err;

	if (!r->started) {
		r->started = true;
		emit_packet(r, seq, ts, marker, pt, payload, len, emit, arg);
		return 0;
	}
	rtp_reorder_expire(r, now_us, emit, arg);
	d = (int16_t)(uint16_t)(seq - r->next_seq);
	if (d > RTP_REORDER_MAX_AHEAD || d < -RTP_REORDER_MAX_AHEAD) {
		/* the peer restarted its stream (or jumped): what is held goes, then anew */
		rtp_reorder_flush(r, emit, arg);
		r->resyncs++;
		emit_packet(r, seq, ts, marker, pt, payload, len, emit, arg);
		return 0;
	}
	if (d < 0) {
		r->late++;
		return 0;
	}
	if (d == 0) {
		emit_packet(r, seq, ts, marker, pt, payload, len, emit, arg);
		drain_held(r, emit, arg);
		return 0;
	}
	err = hold(r, seq, ts, marker, pt, payload, len, now_us);
	if (err == -EALREADY) {
		r->late++;
		return 0;
	}
	if (err == -ENOBUFS) {
		/* every slot taken: the nearest gap is given up now, then this packet again */
		close_one_gap(r, emit, arg);
		return rtp_reorder_push(r, seq, ts, marker, pt, payload, len, now_us, emit, arg);
	}
	if (err == -ENOMEM) {
		rtp_reorder_flush(r, emit, arg);
		r->next_seq = seq; /* the hole is lost without concealment */
		emit_packet(r, seq, ts, marker, pt, payload, len, emit, arg);
	}
	return err;
}
