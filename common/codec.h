/*
 * codec.h - the audio codecs the gateway knows, as one table both processes use: how each is
 * named in SDP and on RTMP, its RTP clock and default payload type, its 20 ms frame, which side
 * may carry it, and the parser of the RTMP audio message header (FLV AUDIODATA, or the Enhanced
 * RTMP ExAudioTagHeader with a FourCC).
 *
 *   id                SDP name / RTMP   clock  pcm    frame  PT   SIP RTMP  RTMP header
 *   CODEC_PCMU        PCMU              8000   8000   160    0    yes yes   0x82 (SoundFormat 8)
 *   CODEC_PCMA        PCMA              8000   8000   160    8    yes yes   0x72 (7)
 *   CODEC_SPEEX_WB    speex             16000  16000  320    96   yes yes   0xB2 (11)
 *   CODEC_SPEEX_NB    speex             8000   8000   160    98   yes -
 *   CODEC_TELEPHONE_EVENT telephone-event 8000 -      160    101  yes -
 *   CODEC_G722        G722              8000   16000  160    9    yes -
 *   CODEC_OPUS        opus (2 ch in SDP) 48000 48000  960    111  yes yes   ExHeader "Opus"
 *   CODEC_AAC         AAC               -      stream 1024   -    -   yes   0xAF (10) + type
 *   CODEC_MP3         MP3               -      stream 1152   -    -   yes   0x2_ (2), 0xE_ (14)
 *   CODEC_NELLYMOSER  Nellymoser        -      stream 256    -    -   yes   0x4_/0x5_/0x6_
 *   CODEC_H264        H264 (video)      90000  -      -      96   -   yes   FLV CodecID 7 (AVC)
 *
 * "clock" is the RTP clock (frame = clock units per 20 ms, the RTP timestamp step); "pcm" is the
 * rate of the decoded signal (G.722's 16 kHz audio runs on an 8,000 RTP clock, RFC 3551 4.5.2).
 * RTMP-only codecs have no clock; "frame" there is the codec's own frame in samples.
 *
 * The one video entry, H.264, travels as FLV video messages (CodecID 7) on RTMP and as RFC 6184
 * packets on RTP; it has no frame of its own (frame_samples 0) and is never transcoded. Its SDP
 * negotiation is the video part of signaler/sdp.h, not the audio "sip" flag.
 *
 * Entries are static and never change: pointers returned here stay valid for the process.
 */
#ifndef RS_CODEC_H
#define RS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum codec_id {
	CODEC_NONE = 0,
	CODEC_PCMU,
	CODEC_PCMA,
	CODEC_SPEEX_WB,
	CODEC_SPEEX_NB,
	CODEC_TELEPHONE_EVENT,
	CODEC_G722,
	CODEC_OPUS,
	CODEC_AAC,
	CODEC_MP3,
	CODEC_NELLYMOSER,
	CODEC_H264,
	CODEC_COUNT /* number of ids, CODEC_NONE included */
};

/* How a codec's payload is built, which decides the transcoder path. */
enum codec_family {
	CODEC_FAMILY_G711,  /* one byte per sample, any number of samples per payload */
	CODEC_FAMILY_SPEEX, /* a Speex bitstream of whole 20 ms frames */
	CODEC_FAMILY_EVENT, /* RFC 4733 events: not audio, never transcoded */
	CODEC_FAMILY_FRAMED, /* any other codec: one payload = one or more codec frames, decoded and
				encoded by a library (mediaworker/acodec.h) */
	CODEC_FAMILY_VIDEO   /* video: carried, never transcoded (mediaworker/video_leg.h) */
};

/* RTMP audio tag byte high nibbles (FLV SoundFormat). */
enum {
	RTMP_SOUND_PCM = 0,
	RTMP_SOUND_ADPCM = 1,
	RTMP_SOUND_MP3 = 2,
	RTMP_SOUND_PCM_LE = 3,
	RTMP_SOUND_NELLY16 = 4,
	RTMP_SOUND_NELLY8 = 5,
	RTMP_SOUND_NELLY = 6,
	RTMP_SOUND_ALAW = 7,
	RTMP_SOUND_ULAW = 8,
	RTMP_SOUND_EXHEADER = 9, /* Enhanced RTMP: packet type in the low nibble, then a FourCC */
	RTMP_SOUND_AAC = 10,
	RTMP_SOUND_SPEEX = 11,
	RTMP_SOUND_MP3_8K = 14,
};

/* Enhanced RTMP AudioPacketType (low nibble after SoundFormat 9). */
enum {
	RTMP_EX_SEQUENCE_START = 0,
	RTMP_EX_CODED_FRAMES = 1,
	RTMP_EX_SEQUENCE_END = 2,
	RTMP_EX_MULTICHANNEL_CONFIG = 4,
	RTMP_EX_MULTITRACK = 5,
};

struct codec {
	enum codec_id id;
	enum codec_family family;
	const char *name;	 /* SDP encoding name (canonical spelling), or the RTMP name */
	const char *label;	 /* "name/rate", for logs */
	unsigned clock_rate;	 /* RTP clock, Hz; 0 for codecs that never travel in RTP */
	unsigned pcm_rate;	 /* decoded audio rate, Hz; 0 when the stream says (RTMP-only) */
	unsigned channels;	 /* SDP channel count (Opus: 2, RFC 7587); the audio itself is mono */
	unsigned frame_samples;	 /* RTP clock units per 20 ms; RTMP-only: the codec's frame */
	int default_pt;		 /* static or conventional dynamic payload type; -1: not on SIP */
	bool sip;		 /* may be negotiated in SDP */
	uint8_t rtmp_audio_byte; /* FLV audio tag byte we write (mono), 0: not on RTMP or (Opus) an
				    Enhanced RTMP header, see codec_rtmp_header() */
	const char *fourcc;	 /* Enhanced RTMP FourCC, NULL when none */
	uint8_t flv_video_codec; /* FLV video CodecID (7: AVC) for video entries, else 0 */
};

/* FLV video CodecIDs (the low nibble of an RTMP video message's first byte). */
enum {
	RTMP_VIDEO_H263 = 2,	 /* Sorenson H.263 */
	RTMP_VIDEO_SCREEN = 3,
	RTMP_VIDEO_VP6 = 4,
	RTMP_VIDEO_VP6_ALPHA = 5,
	RTMP_VIDEO_SCREEN2 = 6,
	RTMP_VIDEO_AVC = 7,
};

/* The entry for @id, or NULL for CODEC_NONE and out-of-range values. */
const struct codec *codec_by_id(enum codec_id id);

/*
 * The entry whose SDP encoding name equals @name (ASCII case-insensitive) at clock @rate, e.g.
 * ("SPEEX", 16000) -> CODEC_SPEEX_WB. RTMP-only codecs (no clock) match by name at any @rate.
 * NULL when @name is NULL or nothing matches.
 */
const struct codec *codec_by_name(const char *name, unsigned rate);

/*
 * The RTMP-capable entry named @name (ASCII case-insensitive), whatever its clock: "speex" ->
 * Speex WB, "opus" -> Opus, "AAC" -> AAC. NULL when none.
 */
const struct codec *codec_by_rtmp_name(const char *name);

/* True when @c can be carried on the RTMP side. NULL-safe. */
bool codec_rtmp_capable(const struct codec *c);

/*
 * Sizes of one RTMP audio message on the media path. CODEC_RTMP_MAX_HDR: the longest header
 * codec_rtmp_parse() reads (E-RTMP: tag byte + FourCC). CODEC_RTMP_MAX_AUDIO: the most codec
 * bytes after it that one message may carry whole to a media worker (its transcoder's
 * TC_MAX_INPUT; the MEDIA payload bound WIRE_MAX_PAYLOAD holds both). A longer G.711 message is
 * cut on sample boundaries by the signaler; a longer message of any other codec is refused.
 */
#define CODEC_RTMP_MAX_HDR   5
#define CODEC_RTMP_MAX_AUDIO 8192

/* What the header of one RTMP audio message says (codec_rtmp_parse()). */
struct rtmp_audio {
	const struct codec *codec;
	unsigned rate;	   /* sample rate the header implies, Hz: AAC's from its sequence header (0
			      on raw frames), MP3's rate bits (a hint: 48 kHz is written as 44),
			      Opus 48000 */
	unsigned channels; /* 1 or 2: the header's bit, AAC's sequence header, Opus's OpusHead */
	bool config;	   /* a sequence header (AAC AudioSpecificConfig, E-RTMP SequenceStart):
			      codec setup, no audio */
	bool end;	   /* E-RTMP SequenceEnd: the stream stops, no audio */
	size_t hdr_len;	   /* bytes before the codec's own payload (1, 2 for AAC, 5 for E-RTMP) */
};

/*
 * Parses the header of the RTMP audio message @msg (@len bytes). Returns 0 with @out filled, or
 * -ENOTSUP (a format the gateway does not carry: ADPCM, linear PCM, an unknown FourCC,
 * multitrack or multichannel E-RTMP, stereo Speex) or -EPROTO (empty, truncated header, reserved
 * format); then *why (when @why is not NULL) points to a static sentence naming the format and
 * the supported set.
 */
int codec_rtmp_parse(const uint8_t *msg, size_t len, struct rtmp_audio *out, const char **why);

/*
 * Writes the header of an RTMP audio message of codec @c at @rate Hz with @channels channels
 * into @out (at least 5 bytes): the FLV tag byte (+ AAC packet type) or the E-RTMP header for
 * @config or coded frames. The rate picks Nellymoser's SoundFormat (4: 16 kHz, 5: 8 kHz, else
 * 6 with the rate bits) and MP3's (14 at 8 kHz); 0 means the table's byte. Returns its length,
 * or 0 when @c cannot travel on RTMP.
 */
size_t codec_rtmp_header(const struct codec *c, unsigned rate, unsigned channels, bool config,
			 uint8_t *out);

/* The set the RTMP side takes, for error messages: "AAC, MP3, Nellymoser, Speex, ...". */
const char *codec_rtmp_supported(void);

#endif
