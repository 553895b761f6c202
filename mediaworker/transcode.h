/*
 * transcode.h - one call's audio conversion between the RTMP side (RTMP audio messages: FLV or
 * Enhanced RTMP header + payload, any codec of common/codec.h the RTMP side carries) and the SIP
 * side (RTP payloads of the negotiated codec). Library codecs (G.722, Opus, AAC, MP3,
 * Nellymoser) run through acodec.h on the decode/resample/encode path.
 *
 *   RTMP message ──transcoder_rtmp_to_sip()──▶ RTP payloads, 20 ms each, + samples (SIP clock)
 *   RTP payload  ──transcoder_sip_to_rtmp()──▶ RTMP messages (tag byte included) + samples/ms
 *   lost packet  ──transcoder_conceal()──────▶ RTMP messages filling 20 ms
 *
 * Paths, chosen once by transcoder_new() from the codec pair:
 *   pass-through   same codec both sides. G.711 toward SIP is re-cut into 160-byte (20 ms)
 *                  payloads, carrying any remainder to the next message (ffmpeg sends 1024+ bytes
 *                  per message). Speex toward SIP: a message holding one frame is forwarded
 *                  byte-identical; one holding several is split, by walking the bitstream (no
 *                  decoding), into one RTP payload per 20 ms frame, each re-padded the way
 *                  libspeex pads (opts.speex_split; false forwards the whole message as one
 *                  payload of frames x 320 samples). Toward RTMP the payload bytes stay identical:
 *                  the tag byte is only prefixed.
 *   law conversion µ-law <-> A-law through a 256-entry table (re-cut to 20 ms toward SIP).
 *   layer strip/add Speex WB (RTMP) <-> Speex NB (SIP) with opts.narrowband_core: a wideband
 *                  Speex frame is a narrowband frame followed by a high-band layer, so WB -> NB
 *                  drops the layer and NB -> WB appends an empty one (high-band submode 0, 4 bits)
 *                  - bit moves, no codec runs.
 *   decode/resample/encode everything else (Speex WB <-> G.711, G.711 <-> Speex, and WB <-> NB
 *                  without narrowband_core). Partial frames wait in a bounded FIFO. Every
 *                  encoded 20 ms frame is its own RTP payload / RTMP message.
 *
 * Narrowband core (opts.narrowband_core, default on): when a Speex WB stream meets an 8 kHz
 * side (G.711 or Speex NB), the Speex codec runs at 8 kHz on the stream's narrowband layer: the
 * WB stream is decoded by a narrowband decoder (it skips the high-band layer, as the format
 * intends) and audio toward a WB peer is narrowband-encoded then given an empty high-band layer,
 * which every WB decoder renders as silence above 4 kHz. The 8 kHz side has nothing above
 * 4 kHz to offer, so the audio band is the same; no resampler runs and the Speex CPU is about
 * half (NB encode ~35 us vs WB ~70 us per frame). Turn it off to run the full 16 kHz codec with
 * a speexdsp resampler (quality opts.resample_quality).
 *
 * Frame counts come from the Speex bitstream, never from the message count: every output frame
 * carries its sample count, and the caller advances RTP timestamps by samples.
 *
 * One decoder per Speex stream, from its first frame: a Speex decoder that joins a stream late
 * never recovers on steady sounds (see transcode.c), so when the SIP codec changes mid-call the
 * new transcoder continues the old one's RTMP-side codec states (transcoder_handover()), and a
 * transcoder that does not decode the RTMP stream can keep a decoder following it for that
 * (transcoder_track_rtmp()).
 *
 * Not thread-safe: one transcoder belongs to one leg on one thread.
 */
#ifndef RS_TRANSCODE_H
#define RS_TRANSCODE_H

#include "codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Bounds. TC_MAX_INPUT: the largest RTMP audio payload (after the tag byte) or RTP payload
 * accepted; Flash sends 1-4 Speex frames (<= ~300 bytes), ffmpeg's G.711 messages are 1-4 KiB,
 * and an RTP payload fits in one 1500-byte datagram. TC_MAX_FRAMES: output frames per call; the
 * largest legitimate input (8 KiB of G.711 = 51 frames of 20 ms) fits, and a Speex message that
 * claims more frames is refused before anything is decoded. TC_ARENA: bytes of all output frames
 * of one call; it holds a whole TC_MAX_INPUT payload plus a tag byte, and 64 frames of the
 * largest encoder output (161 bytes), so only forged Speex splits can exceed it (-E2BIG).
 */
#define TC_MAX_INPUT  8192
#define TC_MAX_FRAMES 64
#define TC_ARENA      16384

struct transcode_opts {
	int speex_quality;    /* 0..10, default 8 (WB q8 = 27.8 kbit/s, NB q8 = 15 kbit/s) */
	int speex_complexity; /* 1..10, default 2 */
	bool speex_vbr;	      /* default false */
	bool speex_enhancer;  /* decoder perceptual enhancement, default true */
	int resample_quality; /* speexdsp 0..10, default 3 (VoIP) */
	bool speex_split;     /* Speex toward SIP: one RTP payload per 20 ms frame (default true) */
	bool narrowband_core; /* see above, default true */
	unsigned g711_plc_frames; /* G.711 concealment: lost frames faded out over, default 3 */
	const char *sid;	  /* session id for logs, copied (at most 47 bytes); NULL -> "-" */
	/* The RTMP side as the publisher's first message said (codec_rtmp_parse()): the rate and
	 * channels a library decoder starts from (Nellymoser needs the rate); 0: from the stream. */
	unsigned rtmp_rate;
	unsigned rtmp_channels;
	/* What the players of the call get, when not what the publisher sends (CODEC_NONE): any
	 * codec the RTMP side carries. */
	enum codec_id rtmp_out;
	/* Opus toward SIP, from the peer's fmtp (RFC 7587): maxaveragebitrate (0: 32 kbit/s),
	 * useinbandfec, usedtx. */
	unsigned opus_bitrate;
	bool opus_fec;
	bool opus_dtx;
};

/* Fills @o with the defaults above. */
void transcode_opts_default(struct transcode_opts *o);

/*
 * Sets @o's Opus options from the peer's a=fmtp of its Opus payload type (RFC 7587 7.1: what
 * the peer, as a receiver, wants): useinbandfec=1 turns in-band FEC on, usedtx=1 DTX, and
 * maxaveragebitrate (6000..510000) caps the bitrate; absent ones are off / uncapped. Other
 * parameters, and malformed ones, are ignored. NULL or "" resets them.
 */
void transcode_opts_opus_fmtp(struct transcode_opts *o, const char *fmtp);

/*
 * One output frame: arena bytes [off, off + len). Toward SIP a frame of len 0 is a frame not
 * sent (Opus DTX): the RTP clock still advances by its samples. Toward RTMP a frame of 0
 * samples is a sequence header (AAC, Opus), sent ahead of the audio.
 */
struct tc_frame {
	uint16_t off;
	uint16_t len;	  /* RTP payload, or RTMP message payload including the tag byte */
	uint16_t samples; /* duration in samples of tc_out.rate */
	uint16_t ms;	  /* duration in ms, rounded down (use samples for timestamps) */
};

/*
 * The frames one call produced. Every transcoder_* call resets it first. A plain value the
 * caller owns (about 17 KiB: fine on the stack, or keep one per worker).
 */
struct tc_out {
	unsigned n;    /* frames in f[] */
	unsigned rate; /* clock of samples: the SIP codec's clock toward SIP; toward RTMP the RTMP
			  codec's sample rate (16000 Speex, 8000 G.711) */
	/* Toward RTMP: how many samples (of rate) the first audio frame's sound starts before the
	 * sound of the input frame given (a frame waiting in the FIFO for the rest of its samples,
	 * the encoder's delay): its timestamp is the input's minus this. 0 otherwise. */
	int32_t lead;
	size_t used;   /* arena bytes used */
	struct tc_frame f[TC_MAX_FRAMES];
	uint8_t arena[TC_ARENA];
};

/* Bytes of frame @i of @out (i < out->n). */
static inline const uint8_t *tc_frame_data(const struct tc_out *out, unsigned i)
{
	return out->arena + out->f[i].off;
}

struct transcoder;

/*
 * Creates the transcoder of one leg: @rtmp_codec on the RTMP side (PCMU, PCMA or SPEEX_WB), and
 * @sip_codec on the SIP side (PCMU, PCMA, SPEEX_WB or SPEEX_NB). @o may be NULL for the
 * defaults; it is copied. Returns NULL when the pair cannot be transcoded (telephone-event, a
 * codec RTMP cannot carry, unknown ids: logged with the reason) or on ENOMEM.
 */
struct transcoder *transcoder_new(const struct transcode_opts *o, enum codec_id rtmp_codec,
				  enum codec_id sip_codec);

/* Frees @*tp and its codec states; NULL-safe, clears *tp. */
void transcoder_destroy(struct transcoder **tp);

/*
 * While @on, a transcoder whose RTMP side is Speex and whose RTMP -> SIP path does not decode
 * (pass-through, layer strip) also decodes every RTMP frame it is given, dropping the audio, so
 * that transcoder_handover() can give a decoder that has seen the whole stream to a decoding
 * path: for a leg whose SIP codec is not settled yet (before the answer). Costs one Speex decode
 * per frame (narrowband: ~5 us). No effect on other transcoders. Returns 0, -EINVAL (@t NULL)
 * or -ENOMEM (then not tracking).
 */
int transcoder_track_rtmp(struct transcoder *t, bool on);

/*
 * @to replaces @from on the same leg (same RTMP codec, a new SIP codec): hands @from's RTMP-side
 * Speex states to @to where @to has the same kind (same mode): the decoder that has followed
 * the RTMP stream (the decode path's, or the tracking one) and the encoder of the stream toward
 * RTMP. @from gets @to's fresh states in exchange, so both stay usable; the caller then destroys
 * @from. Call transcoder_track_rtmp(@to) first when @to should keep tracking. NULL-safe.
 */
void transcoder_handover(struct transcoder *from, struct transcoder *to);

/* True when both sides use the same codec (no codec runs, payload bytes pass unchanged). */
bool transcoder_is_passthrough(const struct transcoder *t);

/*
 * A one-line description of the path, valid while @t lives, e.g. "speex/16000 <-> PCMU/8000:
 * decode/encode (narrowband core)" or "... decode/encode with resampling".
 */
const char *transcoder_describe(const struct transcoder *t);

/* Why the last call failed (static string; "" before any failure). */
const char *transcoder_error(const struct transcoder *t);

/*
 * RTMP -> SIP. @msg is one RTMP audio message payload of @len bytes, starting with the FLV audio
 * tag byte, which must name this leg's RTMP codec. Fills @out with zero or more RTP payloads of
 * the SIP codec (20 ms each, except whole-message Speex pass-through without speex_split).
 * An empty Speex message or one holding only a terminator gives no frames.
 * Returns 0, or -EPROTO (wrong tag byte, malformed Speex bitstream: nothing consumed, out->n = 0),
 * -E2BIG (input above TC_MAX_INPUT or more output than TC_MAX_FRAMES/TC_ARENA: nothing consumed),
 * -EINVAL (NULL arguments).
 */
int transcoder_rtmp_to_sip(struct transcoder *t, const uint8_t *msg, size_t len,
			   struct tc_out *out);

/*
 * SIP -> RTMP. @payload is one RTP payload of @len bytes of the SIP codec (its duration follows
 * from the payload itself: bytes for G.711, frames walked for Speex). Fills @out with zero or more
 * RTMP audio message payloads, each starting with the RTMP codec's tag byte. Pass-through keeps
 * the payload bytes identical in one message. Returns 0, -EPROTO, -E2BIG or -EINVAL as above.
 */
int transcoder_sip_to_rtmp(struct transcoder *t, const uint8_t *payload, size_t len,
			   struct tc_out *out);

/*
 * SIP -> RTMP for one lost 20 ms SIP frame. Speex SIP side decoded here: the decoder's packet
 * loss concealment. G.711 SIP side: the last 20 ms repeated, faded to silence over
 * opts.g711_plc_frames frames (silence afterwards or before any audio). Speex carried without
 * decoding (pass-through, layer add): a Speex "no transmission" frame (narrowband submode 0 +
 * high-band submode 0) that makes the receiver's decoder continue with comfort noise shaped like
 * the last frame. Opus SIP side decoded here: its concealment, or the lost frame rebuilt from
 * the in-band FEC of @next (@next_len bytes; the packet after the lost one when it is here, else
 * NULL). G.722: silence. Opus carried without decoding: nothing (the player's decoder conceals).
 * Fills @out with RTMP messages totalling 20 ms (a decode/resample/encode path may emit 0 or 2
 * frames while its FIFO catches up). Returns 0 or -EINVAL.
 */
int transcoder_conceal(struct transcoder *t, const uint8_t *next, size_t next_len,
		       struct tc_out *out);

/*
 * Counts the 20 ms frames of a Speex payload of @len bytes by walking its bitstream without
 * decoding (in-band requests skipped; a terminator, or libspeex's 0-then-1s padding, ends it;
 * 5+ bits of zero padding from another packer would count as a "no transmission" frame, exactly
 * as libspeex's decoder reads them). Returns the frame count (0 allowed), -EPROTO when malformed
 * or truncated, -E2BIG past TC_MAX_FRAMES.
 */
int transcode_speex_frames(const uint8_t *payload, size_t len);

/* Result of transcode_bench(). */
struct tc_bench {
	unsigned frames;      /* frame pairs measured */
	double codec_us;      /* CPU us per frame pair for the codec operations alone (decode,
				 resample, encode, both directions) on the same frames; 0 when the
				 path runs no codec */
	double transcoder_us; /* CPU us per frame pair through transcoder_rtmp_to_sip() +
				 transcoder_sip_to_rtmp() */
	double ratio;	      /* transcoder_us / codec_us (0 when codec_us is 0) */
};

/*
 * Measures, in one run, the transcoder and the bare codec operations it performs on the same
 * @frames 20 ms frames each way of a 1 kHz + 300 Hz test signal (pre-encoded before timing),
 * interleaved in blocks so that both see the same machine state. Thread CPU time is used.
 * @o may be NULL. Returns 0, -EINVAL (bad pair, frames == 0) or -ENOMEM.
 */
int transcode_bench(enum codec_id rtmp_codec, enum codec_id sip_codec,
		    const struct transcode_opts *o, unsigned frames, struct tc_bench *res);

#endif
