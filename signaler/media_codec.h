/*
 * media_codec.h - the codecs of the media bridge: the RTMP side's codec from an FLV audio tag
 * byte, and the SIP codec lists of the apps' settings (RTP_APP_CODECS, CALL_CODECS, SIP_CODECS).
 */
#ifndef RS_MEDIA_CODEC_H
#define RS_MEDIA_CODEC_H

#include "wire.h"

#include <stddef.h>
#include <stdint.h>

/*
 * The RTMP-side codec of the publisher's first audio message @msg (@len bytes, header first,
 * codec_rtmp_parse()): name, rate, channels and payload type of the codec table. Returns 0, or
 * -ENOTSUP with *why (may be NULL) naming the format and what is supported.
 */
int media_codec_from_rtmp(const uint8_t *msg, size_t len, struct wire_codec *out,
			  const char **why);

/* What a publisher's metadata says (media_codec_metadata()); 0 where it says nothing. */
struct media_meta {
	unsigned rate;	      /* audiosamplerate, Hz, 4000..48000 */
	unsigned channels;    /* stereo or audiochannels: 1 or 2 */
	unsigned video_codec; /* videocodecid as an FLV CodecID (7 for 7 or "avc1"), 0xff for a
				 video codec named otherwise (a FourCC), 0: no video said */
};

/*
 * What a publisher's metadata message (AMF0 data: ["@setDataFrame",] "onMetaData", {...}) says
 * of its audio and video, into @out. Returns 0 when @p is onMetaData, else -ENOENT (another data
 * message) or -EPROTO (malformed). Bounded by the AMF limits.
 */
int media_codec_metadata(const uint8_t *p, size_t len, struct media_meta *out);

/*
 * Parses a codec list "PCMU/8000,speex/16000,PCMA" (name[/rate], comma separated, rate 8000
 * when omitted, 16000 for speex, 48000 for opus) into @out (at most @max). Payload types: 0 PCMU, 8 PCMA, 96 speex/16000,
 * 98 speex/8000, others 99 upward. Returns the count (>= 1), or -EINVAL with @why filled.
 */
int media_codecs_parse(const char *list, struct wire_codec *out, size_t max, char *why,
		       size_t whylen);

#endif
