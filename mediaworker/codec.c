/*
 * codec.c - the codec table and its lookups. See codec.h.
 */
#include "codec.h"

#include <stddef.h>
#include <strings.h>

/* clang-format off */
static const struct codec codecs[CODEC_COUNT] = {
	[CODEC_PCMU] = {
		.id = CODEC_PCMU,
		.family = CODEC_FAMILY_G711,
		.name = "PCMU",
		.label = "PCMU/8000",
		.clock_rate = 8000,
		.channels = 1,
		.frame_samples = 160,
		.default_pt = 0,
		.rtmp_audio_byte = 0x82,
	},
	[CODEC_PCMA] = {
		.id = CODEC_PCMA,
		.family = CODEC_FAMILY_G711,
		.name = "PCMA",
		.label = "PCMA/8000",
		.clock_rate = 8000,
		.channels = 1,
		.frame_samples = 160,
		.default_pt = 8,
		.rtmp_audio_byte = 0x72,
	},
	[CODEC_SPEEX_WB] = {
		.id = CODEC_SPEEX_WB,
		.family = CODEC_FAMILY_SPEEX,
		.name = "speex",
		.label = "speex/16000",
		.clock_rate = 16000,
		.channels = 1,
		.frame_samples = 320,
		.default_pt = 96,
		.rtmp_audio_byte = 0xB2,
	},
	[CODEC_SPEEX_NB] = {
		.id = CODEC_SPEEX_NB,
		.family = CODEC_FAMILY_SPEEX,
		.name = "speex",
		.label = "speex/8000",
		.clock_rate = 8000,
		.channels = 1,
		.frame_samples = 160,
		.default_pt = 98,
		.rtmp_audio_byte = 0,
	},
	[CODEC_TELEPHONE_EVENT] = {
		.id = CODEC_TELEPHONE_EVENT,
		.family = CODEC_FAMILY_EVENT,
		.name = "telephone-event",
		.label = "telephone-event/8000",
		.clock_rate = 8000,
		.channels = 1,
		.frame_samples = 160,
		.default_pt = 101,
		.rtmp_audio_byte = 0,
	},
};
/* clang-format on */

/* Why an RTMP SoundFormat (high nibble) is refused; NULL for the ones the table carries. */
/* clang-format off */
static const char *const rtmp_refusals[16] = {
	[0] = "linear PCM (platform endian) is not supported",
	[1] = "ADPCM is not supported",
	[2] = "MP3 is not supported",
	[3] = "linear PCM (little endian) is not supported",
	[4] = "Nellymoser 16 kHz is not supported",
	[5] = "Nellymoser 8 kHz is not supported",
	[6] = "Nellymoser is not supported",
	[9] = "SoundFormat 9 is reserved",
	[10] = "AAC is not supported",
	[12] = "SoundFormat 12 is undefined",
	[13] = "SoundFormat 13 is undefined",
	[14] = "MP3 8 kHz is not supported",
	[15] = "device-specific sound is not supported",
};
/* clang-format on */

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

		if (c->name && c->clock_rate == rate && strcasecmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

const struct codec *codec_by_rtmp_byte(uint8_t audio_byte, const char **why)
{
	unsigned format = audio_byte >> 4;
	const char *reason = NULL;
	const struct codec *found = NULL;

	for (unsigned i = 0; i < CODEC_COUNT; i++) {
		const struct codec *c = &codecs[i];

		if (c->rtmp_audio_byte && (c->rtmp_audio_byte >> 4) == format) {
			found = c;
			break;
		}
	}
	if (!found)
		reason = rtmp_refusals[format];
	else if (audio_byte & 0x01)
		reason = "stereo audio is not supported (the gateway is mono)";
	if (reason) {
		if (why)
			*why = reason;
		return NULL;
	}
	return found;
}

bool codec_rtmp_capable(const struct codec *c)
{
	return c && c->rtmp_audio_byte != 0;
}
