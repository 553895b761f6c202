/*
 * media_codec.c - the media bridge's codec tables (media_codec.h): one table of the codecs the
 * bridge names, with their payload types and FLV sound formats.
 */
#include "media_codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct codec_entry {
	const char *name;
	uint32_t rate;
	uint8_t pt;
	uint8_t rtmp_nibble; /* FLV SoundFormat, 0: not on RTMP */
};

static const struct codec_entry codecs[] = {
	{.name = "PCMU", .rate = 8000, .pt = 0, .rtmp_nibble = 8},
	{.name = "PCMA", .rate = 8000, .pt = 8, .rtmp_nibble = 7},
	{.name = "speex", .rate = 16000, .pt = 96, .rtmp_nibble = 11},
	{.name = "speex", .rate = 8000, .pt = 98},
	{.name = "telephone-event", .rate = 8000, .pt = 101},
};

static const char *const rtmp_formats[16] = {
	[0] = "Linear PCM", [1] = "ADPCM", [2] = "MP3", [3] = "Linear PCM (LE)",
	[4] = "Nellymoser 16 kHz", [5] = "Nellymoser 8 kHz", [6] = "Nellymoser", [9] = "reserved",
	[10] = "AAC", [14] = "MP3 8 kHz", [15] = "device-specific audio",
};

int media_codec_from_rtmp(uint8_t audio_byte, struct wire_codec *out, const char **why)
{
	static char text[16][64];
	unsigned fmt = audio_byte >> 4;

	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		if (codecs[i].rtmp_nibble != fmt)
			continue;
		memset(out, 0, sizeof(*out));
		out->pt = codecs[i].pt;
		out->channels = 1;
		out->rate = codecs[i].rate;
		snprintf(out->name, sizeof(out->name), "%s", codecs[i].name);
		return 0;
	}
	if (why) {
		if (!text[fmt][0])
			snprintf(text[fmt], sizeof(text[fmt]),
				 "%s audio is not supported (use Speex, G.711 u-law or A-law)",
				 rtmp_formats[fmt] ? rtmp_formats[fmt] : "this");
		*why = text[fmt];
	}
	return -ENOTSUP;
}

int media_codecs_parse(const char *list, struct wire_codec *out, size_t max, char *why,
		       size_t whylen)
{
	char copy[512], *save = NULL;
	uint8_t next_pt = 99;
	size_t n = 0;

	if (!list || strlen(list) >= sizeof(copy)) {
		snprintf(why, whylen, "codec list missing or longer than %zu bytes", sizeof(copy) - 1);
		return -EINVAL;
	}
	snprintf(copy, sizeof(copy), "%s", list);
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		char *slash = strchr(tok, '/'), *end = NULL;
		struct wire_codec c = {.channels = 1, .rate = 8000};
		bool known = false;

		if (slash) {
			*slash = '\0';
			c.rate = (uint32_t)strtoul(slash + 1, &end, 10);
			if (!*(slash + 1) || *end || c.rate < 1000 || c.rate > 192000) {
				snprintf(why, whylen, "codec %s: bad clock rate '%s'", tok, slash + 1);
				return -EINVAL;
			}
		} else if (strcasecmp(tok, "speex") == 0) {
			c.rate = 16000;
		}
		if (!wire_id_valid(tok, strlen(tok)) || strlen(tok) > WIRE_MAX_CODEC_NAME) {
			snprintf(why, whylen, "codec name '%s' is not [A-Za-z0-9._-]{1,32}", tok);
			return -EINVAL;
		}
		if (n == max) {
			snprintf(why, whylen, "more than %zu codecs", max);
			return -EINVAL;
		}
		for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
			if (strcasecmp(codecs[i].name, tok) == 0 && codecs[i].rate == c.rate) {
				c.pt = codecs[i].pt;
				snprintf(c.name, sizeof(c.name), "%s", codecs[i].name);
				known = true;
				break;
			}
		}
		if (!known) {
			if (next_pt > 127) {
				snprintf(why, whylen, "too many dynamic payload types");
				return -EINVAL;
			}
			c.pt = next_pt++;
			snprintf(c.name, sizeof(c.name), "%s", tok);
		}
		out[n++] = c;
	}
	if (n == 0) {
		snprintf(why, whylen, "empty codec list");
		return -EINVAL;
	}
	return (int)n;
}
