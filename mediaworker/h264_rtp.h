/*
 * h264_rtp.h - H.264 video between RTMP (FLV AVC messages, length-prefixed NAL units) and RTP
 * (RFC 6184, packetization-mode 1), passed through without transcoding.
 *
 *   RTMP -> SIP:  h264_flv_parse() -> h264_packetize() -> RTP payloads (single NAL unit,
 *                 STAP-A of SPS+PPS before an IDR, FU-A for what does not fit)
 *   SIP -> RTMP:  RTP payloads in sequence order (rtp_reorder.h) -> h264_depack_push() ->
 *                 one access unit at a time (4-byte lengths) -> h264_dts_next() ->
 *                 h264_flv_header() + AU
 *
 * The depacketizer's state per access unit:
 *
 *       idle --first packet--> collecting --marker, or a packet of another timestamp--> done
 *                                 |  loss, bad packet, FU-A without start or end, over the
 *                                 |  size bound: the AU is marked broken
 *       done: broken -> dropped, keyframe needed; else while a keyframe is needed only an AU
 *             with an IDR goes out (the others are dropped); else it goes out
 *
 * No allocation per packet: the depacketizer's AU buffer is allocated once by h264_depack_new().
 */
#ifndef RS_H264_RTP_H
#define RS_H264_RTP_H

#include "h264.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- FLV AVC video messages ---- */

#define H264_FLV_CODEC_AVC 7
#define H264_FLV_HDR_LEN   5

enum {
	H264_FLV_SEQUENCE_HEADER = 0,
	H264_FLV_NALU = 1,
	H264_FLV_END_OF_SEQUENCE = 2,
};

struct h264_flv {
	bool keyframe;	     /* frame type 1 */
	bool command;	     /* frame type 5 (video info/command): no picture, data is its body */
	uint8_t frame_type;  /* 1..5 */
	uint8_t codec_id;    /* FLV CodecID; on -EPROTONOSUPPORT the one seen (2 Sorenson H.263,
				4 VP6, 12 HEVC...), 0 for an Enhanced RTMP header */
	uint32_t fourcc;     /* Enhanced RTMP FourCC on -EPROTONOSUPPORT ('hvc1'...), else 0 */
	uint8_t packet_type; /* H264_FLV_* (0 on a command) */
	int32_t cts;	     /* composition time offset, ms */
	const uint8_t *data; /* points into the message */
	size_t data_len;
};

/*
 * Parses the header of the FLV video message @p (@len bytes) into @out. Returns 0,
 * -EPROTONOSUPPORT (not AVC: out->codec_id / out->fourcc say what) or -EBADMSG (empty or
 * truncated, reserved frame type, unknown AVCPacketType).
 */
int h264_flv_parse(const uint8_t *p, size_t len, struct h264_flv *out);

/* Writes the 5-byte FLV AVC video header (frame type 1 or 2; @cts clamped to 24 bits). */
void h264_flv_header(uint8_t out[H264_FLV_HDR_LEN], bool keyframe, uint8_t packet_type,
		     int32_t cts);

/* ---- packetizer ---- */

#define H264_RTP_MAX_PAYLOAD 1500 /* a larger max_payload is taken as this */

/* Receives one RTP payload; @payload is valid during the call. A negative return stops the
 * packetizer, which returns it. */
typedef int (*h264_rtp_out_fn)(void *arg, const uint8_t *payload, size_t len, bool marker);

/*
 * Cuts one access unit @nalus (@len bytes of NAL units, each after a big-endian length of
 * @length_size bytes: 1, 2 or 4) into RTP payloads of at most @max_payload bytes (at least 3),
 * given in order to @out; the marker is set on the last one. A NAL unit that fits goes alone,
 * a longer one in FU-A fragments. Before an AU with an IDR slice and no SPS and PPS of its own,
 * the sets of @ps_or_null (when given and not empty) go first, in one STAP-A when it fits.
 * AUD (9), filler (12) and invalid (0, 24..31) NAL units, and empty ones, are skipped.
 * The AU is checked whole before anything is sent. Returns the number of payloads, -EINVAL
 * (bad @length_size or @max_payload), -EBADMSG (a length overruns the AU: nothing sent),
 * -E2BIG (@len above INT_MAX / 2), or @out's error.
 */
int h264_packetize(const uint8_t *nalus, size_t len, unsigned length_size,
		   const struct h264_params *ps_or_null, size_t max_payload, h264_rtp_out_fn out,
		   void *arg);

/* ---- depacketizer ---- */

#define H264_DEPACK_MAX_AU (16u << 20) /* the largest max_au_bytes taken */

struct h264_au {
	const uint8_t *data; /* AVCC: NAL units after 4-byte lengths; SPS, PPS, AUD and
				filler taken out (SEI kept) */
	size_t len;
	uint32_t rtp_ts;
	bool keyframe;		      /* an IDR slice is in it */
	bool params_changed;	      /* SPS/PPS seen in-band (or set) differ from those before:
					 send a new sequence header first */
	const struct h264_params *ps; /* current parameter sets (possibly none yet) */
};

/* Receives one complete access unit; @au and its data are valid during the call. */
typedef void (*h264_au_fn)(void *arg, const struct h264_au *au);

struct h264_depack;

/* A depacketizer whose AU buffer holds @max_au_bytes (e.g. 1 MiB; up to H264_DEPACK_MAX_AU).
 * NULL with errno EINVAL or ENOMEM. */
struct h264_depack *h264_depack_new(size_t max_au_bytes);

/* Frees *@dp (NULL accepted) and clears it. */
void h264_depack_free(struct h264_depack **dp);

/*
 * One RTP payload (@payload, @len, RTP timestamp @ts, @marker) in sequence order, or @lost: a
 * packet that never came (payload NULL, @ts ignored). An AU completes on the marker bit, or
 * when the timestamp changes (a lost marker) and then goes to @fn. After a loss inside an AU
 * the AU is dropped and, until the next IDR, non-IDR AUs are dropped too. Handles single NAL
 * units (1-23), STAP-A (24) and FU-A (28); STAP-B, MTAP, FU-B and types 0, 30, 31 are refused.
 * Returns 0, or for a refused packet (counted, its AU dropped) -EBADMSG (malformed,
 * unsupported type) or -E2BIG (the AU outgrew the buffer); the stream goes on either way.
 */
int h264_depack_push(struct h264_depack *d, const uint8_t *payload, size_t len, uint32_t ts,
		     bool marker, bool lost, h264_au_fn fn, void *arg);

/* True from the start and after a loss until an IDR goes out: the caller asks the sender for
 * a keyframe (RTCP PLI). */
bool h264_depack_need_keyframe(const struct h264_depack *d);

/* Seeds the parameter sets (from SDP sprop-parameter-sets): the next AU says params_changed
 * when they differ. Returns 0 or h264_params_add()'s error for a bad set. */
int h264_depack_set_params(struct h264_depack *d, const struct h264_params *ps);

struct h264_depack_stats {
	uint64_t packets;     /* payloads pushed (lost ones not counted) */
	uint64_t aus;	      /* AUs given out */
	uint64_t aus_dropped; /* broken, too big, or waiting for a keyframe */
	uint64_t bad_packets; /* refused payloads */
	uint64_t too_big;     /* AUs over max_au_bytes */
	uint64_t keyframes;   /* AUs given out with an IDR */
};

void h264_depack_stats(const struct h264_depack *d, struct h264_depack_stats *out);

/* A new stream: the AU being collected is forgotten, a keyframe is needed; parameter sets and
 * counters are kept. */
void h264_depack_reset(struct h264_depack *d);

/* ---- decode time for RTMP ---- */

#define H264_DTS_MAX_REORDER 4	  /* steps decode time may run behind presentation past the lag */
#define H264_DTS_STEP_GUESS  3000 /* 90 kHz: a frame at 30/s, until the stream shows its step */
#define H264_DTS_STEP_MIN    450  /* 90 kHz, 5 ms: smaller steps are two slices, not two frames */
#define H264_DTS_SETTLE	     60	  /* pictures without reordering before the initial lag goes */
#define H264_DTS_LEARN	     8	  /* pictures before a step above the guess is believed */

/*
 * RTP carries presentation time only; RTMP wants decode time, strictly increasing, plus a
 * composition offset (cts = pts - dts, >= 0). Times are in RTP clock units (90 kHz, unwrapped
 * to 64 bits by the caller), where a constant frame rate is an exact step. Decode times are
 * laid out at the stream's rate: the first @lag_frames steps before its presentation time,
 * each next one a step later (the smallest step between presentation times seen), never after
 * the picture's presentation time, never more than the lag plus H264_DTS_MAX_REORDER steps
 * behind it (a gap: dropped pictures). A stream that has shown no reordering in its first
 * H264_DTS_SETTLE pictures gets decode time = presentation time from then on. So a stream
 * without B-frames gets cts 0 (from the start with @lag_frames 0, as for a baseline profile),
 * one with them non-negative offsets when it reorders at most @lag_frames deep (x264's B-pyramid
 * needs 3). Zero-initialise, or h264_dts_init().
 */
struct h264_dts {
	bool started, reorders;
	int64_t last_dts, prev_pts, max_pts;
	int64_t step;	     /* the smallest step seen, 0 before a second picture */
	unsigned n;	     /* pictures seen, up to H264_DTS_SETTLE */
	unsigned lag_frames; /* the initial lag, in steps */
};

/* Starts @d (nothing learnt) for a stream that reorders up to @lag_frames pictures (0..4). */
void h264_dts_init(struct h264_dts *d, unsigned lag_frames);

/* The decode time *dts and composition offset *cts of the next AU of presentation time @pts
 * (in arrival = decode order), all in 90 kHz units. */
void h264_dts_next(struct h264_dts *d, int64_t pts, int64_t *dts, int64_t *cts);

#endif
