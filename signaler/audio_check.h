/*
 * audio_check.h - what the signaler checks in a publisher's RTMP audio before a media worker
 * gets it, so that a call is never connected silent or at the wrong speed.
 *
 * Size. One RTMP audio message carries at most CODEC_RTMP_MAX_AUDIO (8192) bytes of codec data
 * to a worker (common/codec.h). G.711 beyond that is cut into pieces on sample boundaries with
 * their own timestamps (audio_g711_piece(); media_leg_send_audio() does it). Any other codec is
 * refused: its frames cannot be cut without decoding them.
 *
 * Rate. G.711 is 8 kHz by definition and its FLV header cannot say otherwise, yet an encoder may
 * send it at 16 kHz or 44.1 kHz (ffmpeg without -ar 8000), or send stereo flagged as mono
 * (ffmpeg does): played at 8 kHz it is slow and low. So the rate is measured, as the samples per
 * channel the messages carry against the progress of their RTMP timestamps - never their arrival
 * time, so a publisher sending faster than real time (ffmpeg without -re) or in bursts is
 * measured right. A message's samples span from its timestamp to the next one's, so a window
 * counts the samples of all its messages but the last:
 *
 *   first G.711 message
 *        |
 *        v          1 s of timestamps, within 8000 Hz +-20 %
 *   [ MEASURING ] ------------------------------------------------> [ ACCEPTED ]
 *     |   |   |     1 s, off by 1.5 times or more; or 2 s, still outside +-20 %
 *     |   |   +---------------------------------------------------> [ REFUSED ] (sticky)
 *     |   |     a timestamp going back, or a gap (more than twice the last message's length
 *     |   |     at 8 kHz, + 100 ms): the window starts over at that message
 *     +---+
 *
 * Each decision takes the nearer to 8000 Hz of two estimates, over the window from its first
 * message and from its second, so that a first timestamp out of line (repeated, late) cannot
 * refuse a stream. Jitter of the other timestamps (a publisher stamping from its clock) moves a
 * 1 s estimate by twice the jitter over 1 s at most; ffmpeg's 1024-byte messages (128 ms at
 * 8 kHz) round to whole ms.
 * Only rates off by more than 20 % are refused (the nearest FLV rates are 5512 and 11025 Hz), and
 * those between 20 % and 50 % only when a second second confirms them.
 *
 * The error texts name what was found and the limit or the fix; the apps send them to the
 * publisher in onStatus and log them. No I/O, no allocation: plain value types.
 */
#ifndef RS_AUDIO_CHECK_H
#define RS_AUDIO_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIO_G711_RATE	      8000
#define AUDIO_RATE_WINDOW_MS  1000 /* a first decision */
#define AUDIO_RATE_CONFIRM_MS 2000 /* the last one */
#define AUDIO_RATE_TOL_PCT    20   /* accepted: 8000 Hz +- this */
#define AUDIO_RATE_FAR_PCT    150  /* refused at the first decision: this far off (x1.5, /1.5) */
#define AUDIO_GAP_SLACK_MS    100

enum audio_check_state {
	AUDIO_CHECK_MEASURING = 0, /* also before the first message: a zeroed struct is fresh */
	AUDIO_CHECK_ACCEPTED,
	AUDIO_CHECK_REFUSED,
};

/* One published stream's check. Zero it (or audio_check_init()) when the stream starts. */
struct audio_check {
	enum audio_check_state state;
	bool started;		 /* the window has its first message */
	bool have_t1;		 /* ... and its second */
	uint32_t t0, t1, last_ts; /* timestamps of the window's first, second and last messages */
	uint64_t samples;	 /* per channel, the window's messages before the last */
	uint32_t first_samples;	 /* per channel, the first message's */
	uint32_t last_samples;	 /* per channel, the last message's */
	uint32_t elapsed_ms;	 /* of the estimate decided on */
	uint64_t window_samples; /* of the estimate decided on */
	unsigned rate;		 /* Hz measured at the decision; 0 before */
	unsigned restarts;	 /* windows started over (gaps, timestamps going back) */
	unsigned expect_rate;	 /* G.711's rate: 8000, or what the stream's metadata says */
	unsigned expect_channels; /* 2 when the metadata says stereo whatever the header; else 0 */
};

/* Makes @ac fresh. */
void audio_check_init(struct audio_check *ac);

/*
 * What the publisher's metadata (onMetaData) says of its G.711: @rate Hz (0: 8000) and
 * @channels (2: stereo even when the header says mono, as ffmpeg writes it). The stream is then
 * measured against that instead; the worker is told the same, and converts.
 */
void audio_check_expect(struct audio_check *ac, unsigned rate, unsigned channels);

/*
 * Checks one RTMP audio message of the stream (@msg, @len bytes, FLV audio tag byte first; @ts
 * its RTMP timestamp in ms) before it is carried. Returns 0 to carry it (a G.711 message above
 * CODEC_RTMP_MAX_AUDIO included: media_leg_send_audio() cuts it), or with @why (@whylen bytes,
 * may be NULL) filled:
 *   -E2BIG   a message of another codec above CODEC_RTMP_MAX_AUDIO bytes of codec data
 *   -ERANGE  G.711 not at 8000 Hz by its timestamps; every later call returns it again
 * A message whose header codec_rtmp_parse() refuses is left to the codec check: 0.
 */
int audio_check_feed(struct audio_check *ac, const uint8_t *msg, size_t len, uint32_t ts,
		     char *why, size_t whylen);

/* One piece of a G.711 message cut by audio_g711_piece(). */
struct audio_piece {
	size_t off, len; /* codec bytes [off, off + len) of the message, after its header */
	uint32_t ts;	 /* the piece's RTMP timestamp, ms */
};

#define AUDIO_G711_PIECE 8000 /* codec bytes per piece: 1 s of 8 kHz mono, 0.5 s of stereo */

/*
 * Piece @i (from 0) of a G.711 RTMP message of @len bytes with a @hdr_len-byte header,
 * @channels channels (1 or 2; 0 is taken as 1) at @rate Hz (0: 8000) and timestamp @ts:
 * AUDIO_G711_PIECE bytes each (a whole number of samples of every channel, a whole number of ms
 * at 8 kHz), the last one the rest. Fills @p and returns true, or false when the message has no
 * piece @i.
 */
bool audio_g711_piece(size_t hdr_len, size_t len, unsigned channels, unsigned rate, uint32_t ts,
		      size_t i, struct audio_piece *p);

#endif
