/*
 * acodec.h - one decode/encode interface over the libraries behind the codecs of the FRAMED
 * family (common/codec.h): G.722, AAC, MP3 and Nellymoser through libavcodec, Opus through
 * libopus (for its FEC, DTX, concealment and bitrate control).
 *
 *   payload ──acodec_decode()──▶ [libavcodec | libopus] ──▶ mono int16 at acodec_dec_rate()
 *   lost    ──acodec_conceal()─▶ Opus: PLC or FEC from the next payload; others: 0 samples
 *   mono int16, acodec_enc_frame() samples ──acodec_encode()──▶ one payload (or 0: none yet)
 *   acodec_enc_config() ─▶ AAC AudioSpecificConfig / OpusHead ─▶ acodec_dec_new(config) on the
 *                                                                other side
 *
 * What each codec does here (rates in Hz; "any" = whatever the stream carries):
 *
 *   codec       decode                         encode (mono)                  frame    delay
 *   G.722       16000, mono                    16000, 64 kbit/s               320      22
 *   Opus        out 8/12/16/24/48 k, mono or   8/12/16/24/48 k, VOIP, FEC,    20 ms    6.5 ms
 *               stereo packets, PLC, FEC       DTX, 6-510 kbit/s (default 32k) (10-60)  (312 @48k)
 *                                              complexity 5
 *   AAC         any rate, any channels, LC     AAC-LC 7350..96000             1024     1024
 *               (HE/PS: libavcodec's, untested)
 *               via AudioSpecificConfig or ADTS
 *   MP3         any rate, mono or stereo       8000..48000 (libmp3lame)       1152/576 1105
 *   Nellymoser  5512/8/11.025/16/22.05/44.1 k  same rates, 16 kbit/s @8 k     256      128
 *
 * "frame" is acodec_enc_frame() (MP3: 576 below 32 kHz); "delay" is acodec_enc_delay(), the
 * priming/lookahead samples a decoder puts out before the first input sample. Decoded audio
 * is always mono: stereo (or more) is averaged. Libraries are set up once per object: decoding
 * and encoding reuse their packet, frame and buffers and allocate nothing themselves (inside,
 * libavcodec's send/receive API still makes 4 (encode) or 5 (decode) bookkeeping allocations of
 * 24-48 bytes per frame; libopus none). libavcodec's own log lines go to log.h (its errors as
 * warn lines, its warnings as debug), rate-limited, tagged with the object's session id.
 *
 * Not thread-safe: one decoder or encoder belongs to one leg on one thread (the log routing is
 * installed by the first acodec_*_new(); call that before starting other threads that use
 * libavcodec).
 */
#ifndef RS_ACODEC_H
#define RS_ACODEC_H

#include "codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest payload acodec_decode() accepts (one RTP payload or one RTMP message). */
#define ACODEC_MAX_PAYLOAD 8192
/* Largest codec configuration (AudioSpecificConfig, OpusHead) kept. */
#define ACODEC_MAX_CONFIG 64

struct acodec_dec;

/*
 * A decoder of @c (family CODEC_FAMILY_FRAMED). @rate/@channels: what the RTMP header or SDP
 * says, 0 when unknown (the stream's own then): AAC uses them only while it has no
 * AudioSpecificConfig (raw frames are then decoded as AAC-LC at that rate; ADTS needs none);
 * Nellymoser needs @rate (its bitstream does not carry it); MP3 and G.722 ignore them. For Opus
 * @rate picks the output rate: 8000, 12000, 16000, 24000 or 48000 (0: 48000). @config of
 * @config_len bytes (may be NULL): AAC AudioSpecificConfig, or Opus OpusHead (RFC 7845 5.1: its
 * output gain is applied; pre-skip is not: the stream's first samples come out as they are;
 * mapping families other than 0 are refused). @sid names the leg in log lines (copied; NULL:
 * "-"). Returns the decoder, or NULL with a sentence in @why (@whylen bytes, may be 0) for a
 * codec or setting that is not supported, a bad @config, or no memory.
 */
struct acodec_dec *acodec_dec_new(const struct codec *c, unsigned rate, unsigned channels,
				  const uint8_t *config, size_t config_len, const char *sid,
				  char *why, size_t whylen);

/*
 * A new codec configuration mid-stream (an AAC sequence header, an E-RTMP Opus SequenceStart):
 * the AAC decoder is reopened with it, the Opus gain updated; nothing happens when it equals the
 * current one, or for the codecs that have none. Returns 0, or -EPROTO (bad config, over
 * ACODEC_MAX_CONFIG: the decoder keeps its old one), -ENOMEM (likewise).
 */
int acodec_dec_config(struct acodec_dec *d, const uint8_t *config, size_t len);

/*
 * Decodes one payload @p of @len bytes (one RTP payload, or one RTMP message after its audio
 * header) into @pcm, at most @max samples: mono int16 at acodec_dec_rate(). One payload may hold
 * several codec frames (MP3, Nellymoser, Opus code 1-3 packets). Returns the samples written
 * (0 allowed: empty payload, decoder still priming), or -E2BIG (@len over ACODEC_MAX_PAYLOAD,
 * or more than @max samples: nothing is written for the frames that did not fit), -EPROTO (bad
 * data; when part of the payload decoded, that part is returned instead). The decoder stays
 * usable after any error.
 */
int acodec_decode(struct acodec_dec *d, const uint8_t *p, size_t len, int16_t *pcm, size_t max);

/*
 * One lost frame, of the duration of the last one decoded (20 ms before any): Opus conceals it
 * (PLC), or, when @next (the payload after the loss, @next_len bytes) is given, decodes it from
 * the in-band FEC data of @next (libopus falls back to PLC when @next carries none); the caller
 * then decodes @next as usual. Pass @next only when the peer sends FEC (SDP useinbandfec=1).
 * Other codecs return 0: the caller conceals. Returns the samples written, or -E2BIG when the
 * frame is longer than @max.
 */
int acodec_conceal(struct acodec_dec *d, const uint8_t *next, size_t next_len, int16_t *pcm,
		   size_t max);

/*
 * The rate of the samples acodec_decode() writes, Hz; 0 while unknown (AAC without config
 * before its first frame). It can change after acodec_dec_config() and, for MP3 and AAC
 * (HE-AAC's implicit SBR doubles it at the first frame), after any acodec_decode(): read it
 * after each call.
 */
unsigned acodec_dec_rate(const struct acodec_dec *d);

/* Frees @*dp and its library state; NULL-safe, clears *dp. */
void acodec_dec_free(struct acodec_dec **dp);

/* Encoder settings; zero-initialised means every default. */
struct acodec_enc_opts {
	/* bit/s; 0: the codec's default (Opus 32000, AAC 64000 at 32 kHz and up, 48000 at
	 * 16-24 kHz, 32000 below; MP3 64000/32000/24000 alike); G.722 and Nellymoser have fixed
	 * rates and ignore it */
	unsigned bitrate;
	bool fec;	   /* Opus: in-band FEC (LBRR); needs loss_pct > 0, so 0 means 10 then */
	bool dtx;	   /* Opus: discontinuous transmission, see acodec_encode() */
	unsigned loss_pct; /* Opus: expected packet loss, 0..100 */
	unsigned frame_ms; /* Opus: 10, 20, 40 or 60 (0: 20); others have their own frame */
	/* Opus: 1..10; 0: 5, about half the encoder CPU of libopus's own default 9 (48 kHz,
	 * 32 kbit/s: ~120 us instead of ~225 us per 20 ms; test_acodec's checks hold at both) */
	unsigned complexity;
};

struct acodec_enc;

/*
 * An encoder of @c at @rate Hz of mono input (0: the codec's default, G.722 16000, Opus 48000,
 * AAC and MP3 44100, Nellymoser 8000) with @channels channels (0 or 1: the encoders here are
 * mono). @o may be NULL (defaults); it is copied. @sid as for acodec_dec_new(). Returns the
 * encoder, or NULL with a sentence in @why: a rate, channel count or setting the codec does not
 * take, an encoder this libavcodec lacks (MP3 needs libmp3lame), no memory.
 */
struct acodec_enc *acodec_enc_new(const struct codec *c, unsigned rate, unsigned channels,
				  const struct acodec_enc_opts *o, const char *sid, char *why,
				  size_t whylen);

/* Mono input samples per acodec_encode() call (the table at the top). */
unsigned acodec_enc_frame(const struct acodec_enc *e);

/* Input rate, Hz. */
unsigned acodec_enc_rate(const struct acodec_enc *e);

/*
 * Priming/lookahead: how many samples (at acodec_enc_rate()) the decoded stream, counted from
 * the first payload acodec_encode() returned, has in front of the first input sample.
 */
unsigned acodec_enc_delay(const struct acodec_enc *e);

/*
 * Encodes exactly acodec_enc_frame() samples of @pcm into @out (@max bytes). Returns the bytes
 * written, or 0 when there is nothing to send for this call: the encoder holds the input (AAC,
 * MP3 priming: their payloads lag their input, one payload per frame afterwards), or, with
 * opts.dtx, Opus needs no packet for this frame (RFC 7587 3.1.3: advance the RTP timestamp all
 * the same). Opus fits the payload into @max (that frame's bitrate drops); the others return
 * -E2BIG when it is longer (the payload is lost). -EIO: library error.
 */
int acodec_encode(struct acodec_enc *e, const int16_t *pcm, uint8_t *out, size_t max);

/*
 * The codec configuration a decoder needs, written to @out (@max bytes): the AAC
 * AudioSpecificConfig (the RTMP sequence header's payload) or the OpusHead (RFC 7845 5.1:
 * version 1, 1 channel, pre-skip = the delay at 48 kHz, input rate, gain 0, family 0). Returns
 * its length; 0 for codecs without one or when @max is too small.
 */
size_t acodec_enc_config(const struct acodec_enc *e, uint8_t *out, size_t max);

/* Frees @*ep and its library state; NULL-safe, clears *ep. */
void acodec_enc_free(struct acodec_enc **ep);

/*
 * Writes an OpusHead (RFC 7845 5.1, mapping family 0, no gain) for @channels (1 or 2), pre-skip
 * @preskip samples at 48 kHz and input rate @rate into @out. Returns 19, or 0 when @max < 19 or
 * @channels is not 1 or 2.
 */
size_t acodec_opus_head(unsigned channels, unsigned preskip, unsigned rate, uint8_t *out,
			size_t max);

/*
 * Samples of one packet of @c at the codec's RTP clock, from its own framing without decoding
 * (Opus: the TOC byte and frame count, RFC 6716 3.1). -EPROTO for a malformed packet, -ENOTSUP
 * for the codecs whose packets do not say.
 */
int acodec_packet_samples(const struct codec *c, const uint8_t *p, size_t len);

#endif
