/*
 * delay_track.h - which frame came back: matches frames received to frames sent, for the
 * benchmark tools' one-way delays (header only, beside delay_hist.h; wdrive and callbench).
 *
 * A track is one direction of one stream. The sender numbers its frames 0, 1, 2, ... and notes
 * each send time (delay_track_sent, CLOCK_MONOTONIC µs). The receiver names the frame that
 * arrived:
 *   - by its index, when the payload carries it (G.711 pass-through: delay_track_put_seq in the
 *     bytes, delay_track_get_seq back);
 *   - by a media timestamp (delay_track_index_ts): the first timestamp seen is the oldest frame
 *     not yet matched (frame 0 on a fresh stream), later ones count steps from it. The gateway
 *     derives RTP timestamps from the frames, and RTMP timestamps from the RTP clock, so a
 *     timestamp names a frame as long as nothing is dropped without its time. After a gap the
 *     sender marks (an RTP marker bit), or when a timestamp names a frame not sent yet (a
 *     clock that jumped), delay_track_name_ts re-anchors: on the frame that keeps the delay
 *     nearest to the last one measured.
 * An index that cannot be right (never sent, sent after the arrival) falls back to arrival
 * order, the oldest frame not yet matched (counted in fallbacks); an index already matched is
 * a duplicate (counted, ignored: concealment that repeats the last frame). The first match of
 * a frame of the window [from, until) adds its delay to the caller's histogram; the frames of
 * the window never matched are its loss.
 *
 * Not thread-safe: the caller serialises the sender's and the receiver's calls on one track.
 */
#ifndef RS_DELAY_TRACK_H
#define RS_DELAY_TRACK_H

#include "delay_hist.h"

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DELAY_TRACK_NONE	UINT32_MAX
#define DELAY_TRACK_RESYNC_SPAN 50u /* frames looked at after the last match when re-anchoring */
#define DELAY_TRACK_MAGIC	0x444c5931u /* "DLY1": a frame index follows in the bytes */
#define DELAY_TRACK_SENT	1u
#define DELAY_TRACK_GOT		2u

struct delay_track {
	uint64_t *sent_us; /* by index: send time */
	uint8_t *flags;	   /* by index: DELAY_TRACK_SENT, DELAY_TRACK_GOT */
	uint32_t cap, n_sent;
	uint32_t from, until; /* the window: indices whose delays count */
	uint32_t oldest;      /* no index below it is unmatched */
	uint32_t last;	      /* the last index matched (DELAY_TRACK_NONE: none yet) */
	uint64_t last_delay_us;
	bool anchored;
	uint32_t anchor_ts, anchor_idx;
	uint64_t fallbacks, dups, resyncs;
};

/* Prepares @t for up to @cap frames. Returns 0 or -ENOMEM; delay_track_free() either way. */
static inline int delay_track_init(struct delay_track *t, uint32_t cap)
{
	memset(t, 0, sizeof(*t));
	t->until = UINT32_MAX;
	t->last = DELAY_TRACK_NONE;
	t->sent_us = calloc(cap ? cap : 1, sizeof(*t->sent_us));
	t->flags = calloc(cap ? cap : 1, 1);
	if (!t->sent_us || !t->flags)
		return -ENOMEM;
	t->cap = cap;
	return 0;
}

static inline void delay_track_free(struct delay_track *t)
{
	free(t->sent_us);
	free(t->flags);
	t->sent_us = NULL;
	t->flags = NULL;
	t->cap = t->n_sent = 0;
}

/* Notes the next frame sent at @now_us. Returns its index, or DELAY_TRACK_NONE when the track
 * is full (that frame is not tracked). */
static inline uint32_t delay_track_sent(struct delay_track *t, uint64_t now_us)
{
	if (t->n_sent >= t->cap)
		return DELAY_TRACK_NONE;
	t->sent_us[t->n_sent] = now_us;
	t->flags[t->n_sent] = DELAY_TRACK_SENT;
	return t->n_sent++;
}

/* Notes frame @idx sent at @now_us, for a sender that numbers its frames after another
 * track's (an echo: frames it did not get are never sent). False when @idx is beyond the
 * track or was sent already. */
static inline bool delay_track_sent_at(struct delay_track *t, uint32_t idx, uint64_t now_us)
{
	if (idx >= t->cap || (t->flags[idx] & DELAY_TRACK_SENT))
		return false;
	t->sent_us[idx] = now_us;
	t->flags[idx] = DELAY_TRACK_SENT;
	if (idx >= t->n_sent)
		t->n_sent = idx + 1;
	return true;
}

/* Frame @idx was sent by @now_us and is not matched yet. */
static inline bool delay_track_open(const struct delay_track *t, uint32_t idx, uint64_t now_us)
{
	return idx < t->n_sent && t->flags[idx] == DELAY_TRACK_SENT && t->sent_us[idx] <= now_us;
}

/* The window starts with the next frame sent (only its frames count in the histogram and the
 * loss; the counters start again). */
static inline void delay_track_window_start(struct delay_track *t)
{
	t->from = t->n_sent;
	t->until = UINT32_MAX;
	t->fallbacks = t->dups = t->resyncs = 0;
}

/* The window ends with the last frame sent. */
static inline void delay_track_window_end(struct delay_track *t)
{
	t->until = t->n_sent;
}

/* The frame named by media timestamp @ts, @step timestamp units per frame (rounded to the
 * nearest frame; anchored on the first call). */
static inline uint32_t delay_track_index_ts(struct delay_track *t, uint32_t ts, uint32_t step)
{
	if (!t->anchored) {
		while (t->oldest < t->n_sent && t->flags[t->oldest] != DELAY_TRACK_SENT)
			t->oldest++;
		t->anchored = true;
		t->anchor_ts = ts;
		t->anchor_idx = t->oldest;
	}
	if ((int32_t)(ts - t->anchor_ts) < 0 || !step)
		return DELAY_TRACK_NONE;
	return t->anchor_idx + (uint32_t)(((uint64_t)(ts - t->anchor_ts) + step / 2) / step);
}

/* Re-anchors timestamp @ts (arrived at @now_us) on the frame after the last match whose delay
 * is nearest the last one measured. Returns that index (DELAY_TRACK_NONE: none fits; the next
 * delay_track_index_ts anchors afresh). */
static inline uint32_t delay_track_resync(struct delay_track *t, uint32_t ts, uint64_t now_us)
{
	uint32_t first = t->last == DELAY_TRACK_NONE ? t->oldest : t->last + 1;
	uint32_t best = DELAY_TRACK_NONE;
	uint64_t best_err = UINT64_MAX;

	for (uint32_t j = first; j < t->n_sent && j < first + DELAY_TRACK_RESYNC_SPAN; j++) {
		uint64_t d, err;

		if (!delay_track_open(t, j, now_us))
			continue;
		d = now_us - t->sent_us[j];
		err = d > t->last_delay_us ? d - t->last_delay_us : t->last_delay_us - d;
		if (err < best_err) {
			best_err = err;
			best = j;
		}
	}
	t->resyncs++;
	t->anchored = best != DELAY_TRACK_NONE;
	t->anchor_ts = ts;
	t->anchor_idx = best;
	return best;
}

/*
 * The frame named by media timestamp @ts (@step units per frame) that arrived at @now_us, with
 * a marker bit (@marker: frames went missing before it). Re-anchors (delay_track_resync) after
 * a marker, or when the timestamp names a frame that cannot be this one (not sent yet): a sender
 * whose clock jumped.
 */
static inline uint32_t delay_track_name_ts(struct delay_track *t, uint32_t ts, uint32_t step,
					   bool marker, uint64_t now_us)
{
	uint32_t idx;

	if (marker && t->anchored)
		return delay_track_resync(t, ts, now_us);
	idx = delay_track_index_ts(t, ts, step);
	if (delay_track_open(t, idx, now_us))
		return idx;
	return delay_track_resync(t, ts, now_us);
}

/*
 * Frame @idx (DELAY_TRACK_NONE: unknown) arrived at @now_us. Adds its delay to @h when it is the
 * frame's first arrival and the frame is in the window. Returns the index matched, or
 * DELAY_TRACK_NONE (a duplicate, or nothing left to match).
 */
static inline uint32_t delay_track_arrived(struct delay_track *t, uint32_t idx, uint64_t now_us,
					   struct delay_hist *h)
{
	if (idx < t->n_sent && (t->flags[idx] & DELAY_TRACK_GOT)) {
		t->dups++;
		return DELAY_TRACK_NONE;
	}
	if (!delay_track_open(t, idx, now_us)) {
		while (t->oldest < t->n_sent && t->flags[t->oldest] != DELAY_TRACK_SENT)
			t->oldest++;
		if (!delay_track_open(t, t->oldest, now_us))
			return DELAY_TRACK_NONE;
		idx = t->oldest;
		t->fallbacks++;
	}
	t->flags[idx] |= DELAY_TRACK_GOT;
	t->last = idx;
	t->last_delay_us = now_us - t->sent_us[idx];
	if (idx >= t->from && idx < t->until)
		delay_hist_add(h, t->last_delay_us);
	return idx;
}

/* Frames of the window sent so far, and those of them never matched. */
static inline void delay_track_count(const struct delay_track *t, uint64_t *sent, uint64_t *lost)
{
	uint32_t end = t->until < t->n_sent ? t->until : t->n_sent;

	*sent = *lost = 0;
	for (uint32_t i = t->from; i < end; i++) {
		*sent += (t->flags[i] & DELAY_TRACK_SENT) != 0;
		*lost += t->flags[i] == DELAY_TRACK_SENT;
	}
}

/* What became of the frames of one or more tracks' windows. */
struct delay_tally {
	uint64_t sent, lost, fallbacks, unmatched, resyncs;
};

/* Adds @t's window to @y (unmatched: duplicates and frames that named no frame). */
static inline void delay_track_tally(const struct delay_track *t, struct delay_tally *y)
{
	uint64_t sent, lost;

	delay_track_count(t, &sent, &lost);
	y->sent += sent;
	y->lost += lost;
	y->fallbacks += t->fallbacks;
	y->unmatched += t->dups;
	y->resyncs += t->resyncs;
}

/*
 * Prints two lines for one direction: "DELAY @prefix n=... p50_ms=..." (delay_hist_print) and
 * "LOSS @prefix sent=... lost=... loss_pct=... fallbacks=... unmatched=... resyncs=...".
 */
static inline void delay_report(FILE *f, const char *prefix, const struct delay_hist *h,
				const struct delay_tally *y)
{
	char line[512];

	snprintf(line, sizeof(line), "DELAY %s", prefix);
	delay_hist_print(h, f, line);
	fprintf(f, "LOSS %s sent=%llu lost=%llu loss_pct=%.3f fallbacks=%llu unmatched=%llu "
		"resyncs=%llu\n", prefix, (unsigned long long)y->sent, (unsigned long long)y->lost,
		y->sent ? 100.0 * (double)y->lost / (double)y->sent : 0.0,
		(unsigned long long)y->fallbacks, (unsigned long long)y->unmatched,
		(unsigned long long)y->resyncs);
}

/*
 * The RTP header of datagram @p (@len bytes): its timestamp, marker bit and length (CSRCs and
 * extension included). Returns false when @p is not RTP version 2 or is cut short.
 */
static inline bool delay_track_rtp(const uint8_t *p, size_t len, uint32_t *ts, bool *marker,
				   size_t *hdr_len)
{
	size_t n = 12;

	if (len < n || (p[0] >> 6) != 2)
		return false;
	n += 4u * (p[0] & 0x0f);
	if ((p[0] & 0x10) && len >= n + 4)
		n += 4 + 4u * (((size_t)p[n + 2] << 8) | p[n + 3]);
	else if (p[0] & 0x10)
		return false;
	if (len < n)
		return false;
	*ts = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
	*marker = p[1] & 0x80;
	*hdr_len = n;
	return true;
}

/* Writes the magic and @idx into @p (8 bytes, byte order of the host: one machine). */
static inline void delay_track_put_seq(uint8_t *p, uint32_t idx)
{
	uint32_t m = DELAY_TRACK_MAGIC;

	memcpy(p, &m, 4);
	memcpy(p + 4, &idx, 4);
}

/* The index in @p (@len bytes) written by delay_track_put_seq, or DELAY_TRACK_NONE. */
static inline uint32_t delay_track_get_seq(const uint8_t *p, size_t len)
{
	uint32_t m, idx;

	if (len < 8)
		return DELAY_TRACK_NONE;
	memcpy(&m, p, 4);
	memcpy(&idx, p + 4, 4);
	return m == DELAY_TRACK_MAGIC ? idx : DELAY_TRACK_NONE;
}

#endif
