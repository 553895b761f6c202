/*
 * rtp_dtmf.c - RFC 4733 telephone events of the RTP leg (rtp_leg_int.h), both ways. In: the
 * event blocks of accepted packets (rtp_input.c), each event reported once through on_dtmf. Out:
 * a queue of events (rtp_leg_send_dtmf), sent from a 20 ms timer with one timestamp an event,
 * then three end packets, while the leg's audio waits.
 */
#include "rtp_leg_int.h"

#include "buf.h"
#include "log.h"

#include <ortp/telephonyevents.h>

#include <errno.h>
#include <string.h>

#define DTMF_INTERVAL_MS 20
#define DTMF_VOLUME	 10
#define DTMF_END_PACKETS 3
#define DTMF_MIN_MS	 40
#define DTMF_RX_STALE_MS 2000 /* an event without its end packet is reported after this */

static const char dtmf_chars[] = "0123456789*#ABCD";

/* ---------------------------------------------------------------- DTMF in */

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
	rtp_leg_enter(leg);
	leg->cb.on_dtmf(leg, digit, ms, leg->cb.arg);
	return rtp_leg_leave(leg) && !leg->zombie;
}

/*
 * One RFC 4733 event block. Events are told apart by their timestamp: the first packet of a
 * new timestamp starts an event, the first end packet reports it, later packets with the
 * same timestamp (redundant ends, retransmissions) are ignored. An event whose end packets
 * all got lost is reported when the next one starts or after DTMF_RX_STALE_MS.
 */
void rtp_dtmf_input(struct rtp_leg *leg, const uint8_t *pl, size_t n, uint32_t ts)
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

void rtp_dtmf_expire(struct rtp_leg *leg, uint64_t now_ms)
{
	if (leg->drx_active && now_ms - leg->drx_last_ms > DTMF_RX_STALE_MS)
		dtmf_report(leg);
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
	return rtp_ortp_send(leg, m, leg->dtx_ts);
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
	if (leg->on_hold || !rtp_latch_dest_rtp(leg)) {
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
	rtp_leg_enter(leg);
	dtmf_step(leg);
	if (!leg->zombie && (leg->dtx_active || leg->dq_count))
		evloop_timer_start(t, DTMF_INTERVAL_MS);
	rtp_leg_leave(leg);
}

int rtp_leg_send_dtmf(struct rtp_leg *leg, char digit, unsigned duration_ms)
{
	const char *c = strchr(dtmf_chars, digit >= 'a' && digit <= 'd' ? digit - 32 : digit);
	uint32_t max_ms = (uint32_t)(65535ull * 1000u / leg->clock_rate);
	struct dtmf_item *it;

	if (!digit || !c || leg->tev_pt < 0 || leg->zombie)
		return -EINVAL;
	if (leg->on_hold || !rtp_latch_dest_rtp(leg))
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
		rtp_leg_enter(leg);
		dtmf_step(leg); /* the first packet goes out now */
		if (!leg->zombie)
			evloop_timer_start(leg->dtmf_timer, DTMF_INTERVAL_MS);
		rtp_leg_leave(leg);
	}
	return 0;
}
