/*
 * media_codec.c - the media bridge's codecs (media_codec.h), from the one codec table
 * (common/codec.h).
 */
#include "media_codec.h"

#include "amf.h"
#include "codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int media_codec_from_rtmp(const uint8_t *msg, size_t len, struct wire_codec *out,
			  const char **why)
{
	struct rtmp_audio ra;
	const struct codec *c;

	if (codec_rtmp_parse(msg, len, &ra, why) < 0)
		return -ENOTSUP;
	c = ra.codec;
	if (c->id == CODEC_AAC && !ra.config) {
		if (why)
			*why = "AAC audio before its sequence header (AudioSpecificConfig)";
		return -ENOTSUP;
	}
	memset(out, 0, sizeof(*out));
	out->pt = c->default_pt >= 0 ? (uint8_t)c->default_pt : 0;
	out->channels = (uint8_t)ra.channels;
	out->rate = ra.rate ? ra.rate : c->clock_rate;
	snprintf(out->name, sizeof(out->name), "%s", c->name);
	return 0;
}

int media_codec_metadata(const uint8_t *p, size_t len, struct media_meta *out)
{
	struct amf_value *list = NULL, *meta;
	const char *name;
	size_t first = 0;
	double d;
	bool b;
	int ret = -ENOENT;

	memset(out, 0, sizeof(*out));
	if (amf0_decode_all(p, len, NULL, &list) < 0)
		return -EPROTO;
	name = amf_get_string(amf_index(list, 0), NULL);
	if (name && strcmp(name, "@setDataFrame") == 0) {
		first = 1;
		name = amf_get_string(amf_index(list, 1), NULL);
	}
	if (!name || strcmp(name, "onMetaData") != 0)
		goto out;
	meta = amf_index(list, first + 1);
	ret = 0;
	if (amf_get_number(amf_get(meta, "audiosamplerate"), &d) && d >= 4000 && d <= 48000)
		out->rate = (unsigned)d;
	if (amf_get_bool(amf_get(meta, "stereo"), &b))
		out->channels = b ? 2 : 1;
	else if (amf_get_number(amf_get(meta, "audiochannels"), &d) && (d == 1 || d == 2))
		out->channels = (unsigned)d;
	if (amf_get_number(amf_get(meta, "videocodecid"), &d) && d >= 1)
		out->video_codec = d == 7 || d == 0x61766331 ? 7 : d <= 15 ? (unsigned)d : 0xff;
	else if ((name = amf_get_string(amf_get(meta, "videocodecid"), NULL)) != NULL)
		out->video_codec = strcmp(name, "avc1") == 0 ? 7 : 0xff;
out:
	amf_free(list);
	return ret;
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
