/*
 * test_rtp_reorder.c - unit tests for mediaworker/rtp_reorder.c: in-order frames go out at once,
 * a packet is held only while a gap is open (one frame time), lost frames are reported with
 * interpolated timestamps, late and duplicate packets are dropped, jumps restart the stream.
 */
#include "harness.h"
#include "rtp_reorder.h"

#include <errno.h>
#include <string.h>

#define FRAME_US 20000u
#define FRAME_TS 160u

struct out {
	int n;
	uint16_t seq[64];
	uint32_t ts[64];
	bool lost[64];
	uint8_t first[64]; /* first payload byte */
	int next[64];	   /* a lost frame's next packet's first byte, -1 when none */
};

static void collect(void *arg, const struct rtp_reorder_frame *f)
{
	struct out *o = arg;

	if (o->n >= 64)
		return;
	o->seq[o->n] = f->seq;
	o->ts[o->n] = f->ts;
	o->lost[o->n] = f->lost;
	o->first[o->n] = f->lost ? 0 : f->payload[0];
	o->next[o->n] = f->lost && f->next && f->next_len ? f->next[0] : -1;
	o->n++;
}

/* Pushes packet @seq (timestamp from the sequence) at @now_us. */
static int push(struct rtp_reorder *r, struct out *o, uint16_t seq, uint64_t now_us)
{
	uint8_t pl[160];

	memset(pl, (uint8_t)seq, sizeof(pl));
	return rtp_reorder_push(r, seq, 1000u + FRAME_TS * seq, false, 0, pl, sizeof(pl), now_us,
				collect, o);
}

static void test_in_order_at_once(void)
{
	struct rtp_reorder r;
	struct out o = {0};

	rtp_reorder_init(&r, FRAME_US, 5, FRAME_TS);
	for (uint16_t s = 10; s < 20; s++) {
		push(&r, &o, s, 1000000u + 20000u * s);
		CHECK_EQ_INT(o.n, s - 9); /* each one out on arrival */
		CHECK_EQ_INT(rtp_reorder_deadline(&r), 0);
	}
	CHECK(r.slot == NULL); /* nothing allocated without a gap */
	CHECK_EQ_INT(r.reordered + r.late + r.lost, 0);
	rtp_reorder_free(&r);
}

static void test_swap_held_until_filled(void)
{
	struct rtp_reorder r;
	struct out o = {0};

	rtp_reorder_init(&r, FRAME_US, 5, FRAME_TS);
	push(&r, &o, 1, 100000);
	push(&r, &o, 3, 120000); /* 2 missing: 3 held */
	CHECK_EQ_INT(o.n, 1);
	CHECK_EQ_INT(rtp_reorder_deadline(&r), 140000);
	rtp_reorder_expire(&r, 139999, collect, &o); /* not yet */
	CHECK_EQ_INT(o.n, 1);
	push(&r, &o, 2, 121000); /* fills it: 2 then 3 */
	CHECK_EQ_INT(o.n, 3);
	CHECK_EQ_INT(o.seq[1], 2);
	CHECK_EQ_INT(o.seq[2], 3);
	CHECK(!o.lost[1] && !o.lost[2]);
	CHECK_EQ_INT(rtp_reorder_deadline(&r), 0);
	CHECK_EQ_INT(r.reordered, 1);
	CHECK_EQ_INT(r.lost, 0);
	rtp_reorder_free(&r);
}

static void test_loss_after_one_frame(void)
{
	struct rtp_reorder r;
	struct out o = {0};

	rtp_reorder_init(&r, FRAME_US, 5, FRAME_TS);
	push(&r, &o, 1, 100000);
	push(&r, &o, 4, 160000); /* 2 and 3 missing */
	push(&r, &o, 5, 170000);
	CHECK_EQ_INT(o.n, 1);
	rtp_reorder_expire(&r, 180000, collect, &o); /* one frame after 4 arrived */
	CHECK_EQ_INT(o.n, 5);
	CHECK(o.lost[1] && o.lost[2]);
	CHECK_EQ_INT(o.seq[1], 2);
	/* only the last lost frame before packet 4 points at it (its FEC rebuilds that one) */
	CHECK_EQ_INT(o.next[1], -1);
	CHECK_EQ_INT(o.next[2], 4);
	CHECK_EQ_INT(o.ts[1], 1000u + FRAME_TS * 2); /* interpolated */
	CHECK_EQ_INT(o.ts[2], 1000u + FRAME_TS * 3);
	CHECK_EQ_INT(o.seq[3], 4);
	CHECK_EQ_INT(o.seq[4], 5);
	CHECK_EQ_INT(r.lost, 2);
	CHECK_EQ_INT(r.gaps_expired, 1);
	/* the lost packet turning up afterwards is late: dropped */
	push(&r, &o, 2, 190000);
	CHECK_EQ_INT(o.n, 5);
	CHECK_EQ_INT(r.late, 1);
	/* and a duplicate of the last one too */
	push(&r, &o, 5, 191000);
	CHECK_EQ_INT(r.late, 2);
	push(&r, &o, 6, 200000);
	CHECK_EQ_INT(o.n, 6);
	rtp_reorder_free(&r);
}

static void test_expire_on_next_push(void)
{
	struct rtp_reorder r;
	struct out o = {0};

	/* no timer fired: the next packet past the deadline closes the gap itself */
	rtp_reorder_init(&r, FRAME_US, 5, FRAME_TS);
	push(&r, &o, 1, 100000);
	push(&r, &o, 3, 120000);
	push(&r, &o, 4, 145000);
	CHECK_EQ_INT(o.n, 4);
	CHECK(o.lost[1]);
	CHECK_EQ_INT(o.seq[3], 4);
	rtp_reorder_free(&r);
}

static void test_conceal_cap_is_a_pause(void)
{
	struct rtp_reorder r;
	struct out o = {0};
	int lost = 0;

	rtp_reorder_init(&r, FRAME_US, 3, FRAME_TS);
	push(&r, &o, 1, 100000);
	push(&r, &o, 40, 900000); /* 38 missing: only 3 reported */
	rtp_reorder_expire(&r, 920000, collect, &o);
	for (int i = 0; i < o.n; i++)
		lost += o.lost[i];
	CHECK_EQ_INT(lost, 3);
	CHECK_EQ_INT(o.seq[o.n - 1], 40);
	CHECK_EQ_INT(r.next_seq, 41);
	rtp_reorder_free(&r);
}

static void test_slots_full(void)
{
	struct rtp_reorder r;
	struct out o = {0};

	rtp_reorder_init(&r, FRAME_US, 5, FRAME_TS);
	push(&r, &o, 1, 0);
	/* 2 missing; 3..6 fill the slots, 7 forces the gap closed at once */
	for (uint16_t s = 3; s <= 7; s++)
		push(&r, &o, s, 1000u * s);
	CHECK(o.n >= 7);
	CHECK(o.lost[1]);
	CHECK_EQ_INT(o.seq[o.n - 1], 7);
	for (int i = 1; i < o.n; i++)
		CHECK_EQ_INT(o.seq[i], (uint16_t)(o.seq[i - 1] + 1));
	rtp_reorder_free(&r);
}

static void test_jump_restarts(void)
{
	struct rtp_reorder r;
	struct out o = {0};

	rtp_reorder_init(&r, FRAME_US, 5, FRAME_TS);
	push(&r, &o, 100, 0);
	push(&r, &o, 102, 1000); /* held */
	push(&r, &o, 30000, 2000); /* far away: 102 out (after 101 lost), then 30000 */
	CHECK_EQ_INT(o.n, 4);
	CHECK(o.lost[1]);
	CHECK_EQ_INT(o.seq[2], 102);
	CHECK_EQ_INT(o.seq[3], 30000);
	CHECK_EQ_INT(r.resyncs, 1);
	push(&r, &o, 30001, 3000);
	CHECK_EQ_INT(o.n, 5);
	/* wrap around 65535 -> 0 is no jump */
	rtp_reorder_reset(&r);
	o.n = 0;
	push(&r, &o, 65534, 0);
	push(&r, &o, 65535, 1);
	push(&r, &o, 0, 2);
	push(&r, &o, 1, 3);
	CHECK_EQ_INT(o.n, 4);
	CHECK_EQ_INT(r.resyncs, 1);
	rtp_reorder_free(&r);
}

static void test_oversized_hold(void)
{
	struct rtp_reorder r;
	struct out o = {0};
	static uint8_t big[RTP_REORDER_MAX_PAYLOAD + 1];

	rtp_reorder_init(&r, FRAME_US, 5, FRAME_TS);
	push(&r, &o, 1, 0);
	CHECK_EQ_INT(rtp_reorder_push(&r, 3, 0, false, 0, big, sizeof(big), 10, collect, &o),
		     -EMSGSIZE);
	/* in order, the same size goes straight through (nothing to copy) */
	CHECK_EQ_INT(rtp_reorder_push(&r, 2, 0, false, 0, big, sizeof(big), 20, collect, &o), 0);
	CHECK_EQ_INT(o.n, 2);
	rtp_reorder_free(&r);
}

int main(void)
{
	TEST_RUN(test_in_order_at_once);
	TEST_RUN(test_swap_held_until_filled);
	TEST_RUN(test_loss_after_one_frame);
	TEST_RUN(test_expire_on_next_push);
	TEST_RUN(test_conceal_cap_is_a_pause);
	TEST_RUN(test_slots_full);
	TEST_RUN(test_jump_restarts);
	TEST_RUN(test_oversized_hold);
	return TEST_DONE();
}
