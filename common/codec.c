/*
 * codec.c - the codec table, its lookups and the RTMP audio header parser. See codec.h.
 */
#include "codec.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* clang-format off */
static const struct codec codecs[CODEC_COUNT] = {
	[CODEC_PCMU] = {
		.id = CODEC_PCMU, .family = CODEC_FAMILY_G711, .name = "PCMU", .label = "PCMU/8000",
		.clock_rate = 8000, .pcm_rate = 8000, .channels = 1, .frame_samples = 160,
		.default_pt = 0, .sip = true, .rtmp_audio_byte = 0x82,
	},
	[CODEC_PCMA] = {
		.id = CODEC_PCMA, .family = CODEC_FAMILY_G711, .name = "PCMA", .label = "PCMA/8000",
		.clock_rate = 8000, .pcm_rate = 8000, .channels = 1, .frame_samples = 160,
		.default_pt = 8, .sip = true, .rtmp_audio_byte = 0x72,
	},
	[CODEC_SPEEX_WB] = {
		.id = CODEC_SPEEX_WB, .family = CODEC_FAMILY_SPEEX, .name = "speex",
		.label = "speex/16000", .clock_rate = 16000, .pcm_rate = 16000, .channels = 1,
		.frame_samples = 320, .default_pt = 96, .sip = true, .rtmp_audio_byte = 0xB2,
	},
	[CODEC_SPEEX_NB] = {
		.id = CODEC_SPEEX_NB, .family = CODEC_FAMILY_SPEEX, .name = "speex",
		.label = "speex/8000", .clock_rate = 8000, .pcm_rate = 8000, .channels = 1,
		.frame_samples = 160, .default_pt = 98, .sip = true,
	},
	[CODEC_TELEPHONE_EVENT] = {
		.id = CODEC_TELEPHONE_EVENT, .family = CODEC_FAMILY_EVENT, .name = "telephone-event",
		.label = "telephone-event/8000", .clock_rate = 8000, .channels = 1,
		.frame_samples = 160, .default_pt = 101, .sip = true,
	},
	[CODEC_G722] = {
		.id = CODEC_G722, .family = CODEC_FAMILY_FRAMED, .name = "G722", .label = "G722/8000",
		.clock_rate = 8000, .pcm_rate = 16000, .channels = 1, .frame_samples = 160,
		.default_pt = 9, .sip = true,
	},
	[CODEC_OPUS] = {
		.id = CODEC_OPUS, .family = CODEC_FAMILY_FRAMED, .name = "opus",
		.label = "opus/48000/2", .clock_rate = 48000, .pcm_rate = 48000, .channels = 2,
		.frame_samples = 960, .default_pt = 111, .sip = true, .fourcc = "Opus",
	},
	[CODEC_AAC] = {
		.id = CODEC_AAC, .family = CODEC_FAMILY_FRAMED, .name = "AAC", .label = "AAC",
		.channels = 1, .frame_samples = 1024, .default_pt = -1, .rtmp_audio_byte = 0xAF,
	},
	[CODEC_MP3] = {
		.id = CODEC_MP3, .family = CODEC_FAMILY_FRAMED, .name = "MP3", .label = "MP3",
		.channels = 1, .frame_samples = 1152, .default_pt = -1, .rtmp_audio_byte = 0x2E,
	},
	[CODEC_NELLYMOSER] = {
		.id = CODEC_NELLYMOSER, .family = CODEC_FAMILY_FRAMED, .name = "Nellymoser",
		.label = "Nellymoser", .channels = 1, .frame_samples = 256, .default_pt = -1,
		.rtmp_audio_byte = 0x42,
	},
	[CODEC_H264] = {
		.id = CODEC_H264, .family = CODEC_FAMILY_VIDEO, .name = "H264", .label = "H264/90000",
		.clock_rate = 90000, .default_pt = 96, .flv_video_codec = RTMP_VIDEO_AVC,
	},
};
/* clang-format on */

#define SUPPORTED                                                                                  \
	"AAC, MP3, Nellymoser, Speex (16 kHz mono), G.711 u-law/A-law, and Opus by Enhanced RTMP"

/* Why an FLV SoundFormat is refused; NULL for the ones the table carries. */
/* clang-format off */
static const char *const refusals[16] = {
	[RTMP_SOUND_PCM] = "linear PCM audio is not supported (supported: " SUPPORTED ")",
	[RTMP_SOUND_ADPCM] = "ADPCM audio is not supported (supported: " SUPPORTED ")",
	[RTMP_SOUND_PCM_LE] = "linear PCM audio is not supported (supported: " SUPPORTED ")",
	[12] = "SoundFormat 12 is undefined (supported: " SUPPORTED ")",
	[13] = "SoundFormat 13 is undefined (supported: " SUPPORTED ")",
	[15] = "device-specific audio is not supported (supported: " SUPPORTED ")",
};
/* clang-format on */

static const unsigned flv_rates[4] = {5512, 11025, 22050, 44100};

/* AudioSpecificConfig sampling frequency indexes (ISO/IEC 14496-3 1.6.3.4). */
static const unsigned aac_rates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
				       22050, 16000, 12000, 11025, 8000,  7350};

/* @n (<= 24) bits of @p (@len bytes) at bit @pos, MSB first; -1 past the end. */
static long bits_at(const uint8_t *p, size_t len, size_t pos, unsigned n)
{
	uint32_t v = 0;

	if (pos + n > len * 8)
		return -1;
	for (unsigned i = 0; i < n; i++, pos++)
		v = v << 1 | ((p[pos / 8] >> (7 - pos % 8)) & 1u);
	return (long)v;
}

/*
 * The rate and channels of an AudioSpecificConfig: 5-bit object type (31: 6 more bits), 4-bit
 * frequency index (15: an explicit 24-bit rate), 4-bit channel configuration. 0, or -EPROTO
 * when it is too short or names no usable rate.
 */
static int aac_config(const uint8_t *p, size_t len, unsigned *rate, unsigned *channels)
{
	size_t pos = bits_at(p, len, 0, 5) == 31 ? 11 : 5;
	long idx = bits_at(p, len, pos, 4), r, ch;

	if (idx < 0 || (idx > 12 && idx != 15))
		return -EPROTO;
	pos += 4;
	if (idx == 15) {
		r = bits_at(p, len, pos, 24);
		pos += 24;
	} else {
		r = aac_rates[idx];
	}
	ch = bits_at(p, len, pos, 4);
	if (r < 7350 || r > 96000 || ch < 0)
		return -EPROTO;
	*rate = (unsigned)r;
	*channels = ch == 1 ? 1 : 2; /* 0 (a program config) and 3+ are mixed down all the same */
	return 0;
}

const struct codec *codec_by_id(enum codec_id id)
{
	if ((unsigned)id >= CODEC_COUNT || id == CODEC_NONE)
		return NULL;
	return &codecs[id];
}

const struct codec *codec_by_name(const char *name, unsigned rate)
{
	if (!name)
		return NULL;
	for (unsigned i = 0; i < CODEC_COUNT; i++) {
		const struct codec *c = &codecs[i];

		if (c->name && (c->clock_rate == rate || c->clock_rate == 0) &&
		    strcasecmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

const struct codec *codec_by_rtmp_name(const char *name)
{
	if (!name)
		return NULL;
	for (unsigned i = 0; i < CODEC_COUNT; i++)
		if (codecs[i].name && codec_rtmp_capable(&codecs[i]) &&
		    strcasecmp(codecs[i].name, name) == 0)
			return &codecs[i];
	return NULL;
}

bool codec_rtmp_capable(const struct codec *c)
{
	return c && (c->rtmp_audio_byte != 0 || c->fourcc != NULL || c->flv_video_codec != 0);
}

static int refuse(const char **why, const char *reason, int err)
{
	if (why)
		*why = reason;
	return err;
}

static int parse_ex(const uint8_t *msg, size_t len, struct rtmp_audio *out, const char **why)
{
	unsigned type = msg[0] & 0x0f;

	if (type == RTMP_EX_MULTITRACK || type == RTMP_EX_MULTICHANNEL_CONFIG || type == 7)
		return refuse(why,
			      "Enhanced RTMP multitrack, multichannel and ModEx audio are not "
			      "supported (one Opus track is)",
			      -ENOTSUP);
	if (type > RTMP_EX_SEQUENCE_END)
		return refuse(why, "Enhanced RTMP audio packet type is reserved", -EPROTO);
	if (len < 5)
		return refuse(why, "Enhanced RTMP audio header is truncated", -EPROTO);
	if (memcmp(msg + 1, "Opus", 4) != 0)
		return refuse(why,
			      "Enhanced RTMP audio codec is not supported (supported: Opus; "
			      "or " SUPPORTED ")",
			      -ENOTSUP);
	out->codec = &codecs[CODEC_OPUS];
	out->rate = 48000;
	out->channels = 1;
	out->config = type == RTMP_EX_SEQUENCE_START;
	out->end = type == RTMP_EX_SEQUENCE_END;
	out->hdr_len = 5;
	/* OpusHead (RFC 7845 5.1) in a sequence start: its channel count, when it is there. */
	if (out->config && len >= 5 + 10 && memcmp(msg + 5, "OpusHead", 8) == 0 &&
	    (msg[5 + 9] == 1 || msg[5 + 9] == 2))
		out->channels = msg[5 + 9];
	return 0;
}

int codec_rtmp_parse(const uint8_t *msg, size_t len, struct rtmp_audio *out, const char **why)
{
	unsigned format, rate_bits;

	memset(out, 0, sizeof(*out));
	if (!msg || len == 0)
		return refuse(why, "empty audio message", -EPROTO);
	format = msg[0] >> 4;
	rate_bits = (msg[0] >> 2) & 3;
	out->channels = (msg[0] & 1) ? 2 : 1;
	out->hdr_len = 1;
	switch (format) {
	case RTMP_SOUND_ULAW:
	case RTMP_SOUND_ALAW:
		/* The rate bits mean nothing for G.711 (FLV): 8 kHz, checked against timestamps by
		 * the signaler. */
		out->codec = &codecs[format == RTMP_SOUND_ULAW ? CODEC_PCMU : CODEC_PCMA];
		out->rate = 8000;
		return 0;
	case RTMP_SOUND_SPEEX:
		if (out->channels != 1)
			return refuse(why, "stereo Speex is not supported (Speex on RTMP is 16 kHz mono)",
				      -ENOTSUP);
		out->codec = &codecs[CODEC_SPEEX_WB];
		out->rate = 16000;
		return 0;
	case RTMP_SOUND_AAC:
		if (len < 2)
			return refuse(why, "AAC audio message without its packet type", -EPROTO);
		if (msg[1] > 1)
			return refuse(why, "AAC packet type is not 0 (config) or 1 (raw)", -EPROTO);
		out->codec = &codecs[CODEC_AAC];
		out->config = msg[1] == 0;
		out->hdr_len = 2;
		out->rate = 0;
		if (out->config &&
		    aac_config(msg + 2, len - 2, &out->rate, &out->channels) < 0)
			return refuse(why, "AAC sequence header (AudioSpecificConfig) is unreadable",
				      -EPROTO);
		return 0;
	case RTMP_SOUND_MP3:
		/* 48 kHz MP3 is written with the 44 kHz bits: a hint, the frames say */
		out->codec = &codecs[CODEC_MP3];
		out->rate = flv_rates[rate_bits];
		return 0;
	case RTMP_SOUND_MP3_8K:
		out->codec = &codecs[CODEC_MP3];
		out->rate = 8000;
		return 0;
	case RTMP_SOUND_NELLY16:
	case RTMP_SOUND_NELLY8:
	case RTMP_SOUND_NELLY:
		if (out->channels != 1)
			return refuse(why, "stereo Nellymoser is not supported (Nellymoser is mono)",
				      -ENOTSUP);
		out->codec = &codecs[CODEC_NELLYMOSER];
		out->rate = format == RTMP_SOUND_NELLY16  ? 16000
			    : format == RTMP_SOUND_NELLY8 ? 8000
							  : flv_rates[rate_bits];
		return 0;
	case RTMP_SOUND_EXHEADER:
		return parse_ex(msg, len, out, why);
	default:
		return refuse(why, refusals[format], format >= 12 ? -EPROTO : -ENOTSUP);
	}
}

/* FLV SoundRate bits for @rate: the nearest of 5.5, 11, 22, 44 kHz. */
static unsigned rate_bits(unsigned rate)
{
	return rate < 8000 ? 0 : rate < 16000 ? 1 : rate < 32000 ? 2 : 3;
}

size_t codec_rtmp_header(const struct codec *c, unsigned rate, unsigned channels, bool config,
			 uint8_t *out)
{
	if (!c)
		return 0;
	if (c->fourcc) {
		out[0] = (uint8_t)(RTMP_SOUND_EXHEADER << 4 |
				   (config ? RTMP_EX_SEQUENCE_START : RTMP_EX_CODED_FRAMES));
		memcpy(out + 1, c->fourcc, 4);
		return 5;
	}
	if (!c->rtmp_audio_byte)
		return 0;
	out[0] = c->rtmp_audio_byte;
	if (c->id == CODEC_AAC) { /* FLV: AAC is always written as 44 kHz stereo */
		out[1] = config ? 0 : 1;
		return 2;
	}
	if (c->id == CODEC_NELLYMOSER && rate && rate != 16000)
		out[0] = (uint8_t)(rate == 8000 ? RTMP_SOUND_NELLY8 << 4 | 0x2
						: RTMP_SOUND_NELLY << 4 | rate_bits(rate) << 2 | 0x2);
	else if (c->id == CODEC_MP3 && rate == 8000)
		out[0] = RTMP_SOUND_MP3_8K << 4 | 0x2;
	else if (c->id == CODEC_MP3 && rate)
		out[0] = (uint8_t)(RTMP_SOUND_MP3 << 4 | rate_bits(rate) << 2 | 0x2);
	if (channels == 2)
		out[0] |= 1;
	return 1;
}

const char *codec_rtmp_supported(void)
{
	return SUPPORTED;
}
