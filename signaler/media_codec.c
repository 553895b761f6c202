/*
 * media_codec.c - the media bridge's codecs (media_codec.h), from the one codec table
 * (common/codec.h).
 */
#include "media_codec.h"

#include "codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int media_codec_from_rtmp(const uint8_t *msg, size_t len, struct wire_codec *out,
			  const char **why)
{
	static char text[CODEC_COUNT][160];
	struct rtmp_audio ra;
	const struct codec *c;

	if (codec_rtmp_parse(msg, len, &ra, why) < 0)
		return -ENOTSUP;
	c = ra.codec;
	if (c->family == CODEC_FAMILY_FRAMED || ra.channels != 1) {
		/* Not yet carried by the media workers: refused here, before any leg or INVITE. */
		if (why) {
			if (!text[c->id][0])
				snprintf(text[c->id], sizeof(text[c->id]),
					 "%s audio is not supported yet (supported now: Speex 16 kHz "
					 "mono, G.711 u-law or A-law mono)",
					 c->name);
			/* A codec not carried is named first: its header's stereo bit may not
			 * even be the stream's (ffmpeg flags every AAC stream stereo). */
			*why = c->family == CODEC_FAMILY_FRAMED
				       ? text[c->id]
				       : "stereo audio is not supported yet (send mono)";
		}
		return -ENOTSUP;
	}
	memset(out, 0, sizeof(*out));
	out->pt = c->default_pt >= 0 ? (uint8_t)c->default_pt : 0;
	out->channels = (uint8_t)ra.channels;
	out->rate = ra.rate ? ra.rate : c->clock_rate;
	snprintf(out->name, sizeof(out->name), "%s", c->name);
	return 0;
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
		const struct codec *tc;
		bool known;

		if (slash) {
			*slash = '\0';
			c.rate = (uint32_t)strtoul(slash + 1, &end, 10);
			if (!*(slash + 1) || *end || c.rate < 1000 || c.rate > 192000) {
				snprintf(why, whylen, "codec %s: bad clock rate '%s'", tok, slash + 1);
				return -EINVAL;
			}
		} else if (strcasecmp(tok, "speex") == 0) {
			c.rate = 16000;
		} else if (strcasecmp(tok, "opus") == 0) {
			c.rate = 48000;
		}
		if (!wire_id_valid(tok, strlen(tok)) || strlen(tok) > WIRE_MAX_CODEC_NAME) {
			snprintf(why, whylen, "codec name '%s' is not [A-Za-z0-9._-]{1,32}", tok);
			return -EINVAL;
		}
		if (n == max) {
			snprintf(why, whylen, "more than %zu codecs", max);
			return -EINVAL;
		}
		known = (tc = codec_by_name(tok, c.rate)) != NULL && tc->sip;
		if (known) {
			c.pt = (uint8_t)tc->default_pt;
			snprintf(c.name, sizeof(c.name), "%s", tc->name);
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
