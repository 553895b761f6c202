/*
 * codec.h - the audio codecs the gateway knows, as one table: how each is named in SDP, its RTP
 * clock and default payload type, its 20 ms frame, and the FLV/RTMP audio tag byte that carries
 * it on the RTMP side (0 when it cannot travel over RTMP).
 *
 *   id                    SDP name          clock  frame  PT   RTMP byte
 *   CODEC_PCMU            PCMU              8000   160    0    0x82 (G.711 µ-law)
 *   CODEC_PCMA            PCMA              8000   160    8    0x72 (G.711 A-law)
 *   CODEC_SPEEX_WB        speex             16000  320    96   0xB2 (Speex, always 16 kHz mono)
 *   CODEC_SPEEX_NB        speex             8000   160    98   -
 *   CODEC_TELEPHONE_EVENT telephone-event   8000   160    101  -
 *
 * Entries are static and never change: pointers returned here stay valid for the process.
 */
#ifndef RS_CODEC_H
#define RS_CODEC_H

#include <stdbool.h>
#include <stdint.h>

enum codec_id {
	CODEC_NONE = 0,
	CODEC_PCMU,
	CODEC_PCMA,
	CODEC_SPEEX_WB,
	CODEC_SPEEX_NB,
	CODEC_TELEPHONE_EVENT,
	CODEC_COUNT /* number of ids, CODEC_NONE included */
};

/* How a codec's payload is built, which decides the transcoder path. */
enum codec_family {
	CODEC_FAMILY_G711,  /* one byte per sample, any number of samples per payload */
	CODEC_FAMILY_SPEEX, /* a Speex bitstream of whole 20 ms frames */
	CODEC_FAMILY_EVENT, /* RFC 4733 events: not audio, never transcoded */
};

/* RTMP audio tag byte high nibbles (FLV SoundFormat). */
enum {
	RTMP_SOUND_ALAW = 7,
	RTMP_SOUND_ULAW = 8,
	RTMP_SOUND_SPEEX = 11,
};

struct codec {
	enum codec_id id;
	enum codec_family family;
	const char *name;	 /* SDP encoding name, canonical spelling */
	const char *label;	 /* "name/rate", for logs */
	unsigned clock_rate;	 /* RTP clock = sample rate, Hz */
	unsigned channels;	 /* always 1 here */
	unsigned frame_samples;	 /* samples in 20 ms */
	int default_pt;		 /* static or conventional dynamic payload type */
	uint8_t rtmp_audio_byte; /* full FLV audio tag byte, 0 when not usable on RTMP */
};

/* The entry for @id, or NULL for CODEC_NONE and out-of-range values. */
const struct codec *codec_by_id(enum codec_id id);

/*
 * The entry whose SDP encoding name equals @name (ASCII case-insensitive) at clock @rate, e.g.
 * ("SPEEX", 16000) -> CODEC_SPEEX_WB. NULL when @name is NULL or nothing matches.
 */
const struct codec *codec_by_name(const char *name, unsigned rate);

/*
 * The codec an RTMP audio message carries, from its first byte (the FLV audio tag byte): high
 * nibble 11 -> Speex WB, 8 -> µ-law, 7 -> A-law. The rate/size bits of the low nibble are ignored
 * (FLV defines them as meaningless for these formats); the stereo bit is refused. On NULL, when
 * @why is not NULL, *why points to a static sentence saying why (e.g. "AAC is not supported").
 */
const struct codec *codec_by_rtmp_byte(uint8_t audio_byte, const char **why);

/* True when @c can be carried on the RTMP side (has an audio tag byte). NULL-safe. */
bool codec_rtmp_capable(const struct codec *c);

#endif
