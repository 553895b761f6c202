/*
 * sdp_video.c - the video part of the SDP module: one H.264 stream beside the audio one, passed
 * through without transcoding. See sdp.h.
 *
 *   video m-line (sofia-sip)  --sdp_video_read()-->  struct sdp_video
 *     RTP/AVP, RTP/SAVP: formats from sofia's rtpmaps
 *     RTP/AVPF, RTP/SAVPF: sofia leaves them as text: formats, a=rtpmap, a=fmtp read here
 *     a=rtcp-fb, a=rtcp, a=crypto, b=AS / b=TIAS: read here for all four
 *
 *   our offer     sdp_video_offer(), sdp_reoffer_video(): H.264 on SDP_VIDEO_PT, mode 1, and
 *                 on SDP_VIDEO_PT_MODE0 in mode 0 for peers that take nothing else
 *   their offer   sdp_video_answer(): their first H.264 mode-1 format that takes our profile,
 *                 else the m-line declined (port 0); the audio answer never depends on it
 *   their answer  sdp_video_process_answer(): video on, or off with a reason
 *
 * Every failure here turns video off; none fails the parse or the call.
 */
#include "sdp_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SDP_MAX_SPROP 400      /* sprop-parameter-sets we write: an SPS and a PPS in base64 */
#define SDP_MAX_BW    4000000u /* kbit/s of our b=AS: its b=TIAS (bit/s) fits 32 bits */

static const struct {
	const char *name;
	bool srtp, avpf;
} vprotos[] = {
    [SDP_VPROTO_AVP] = {"RTP/AVP", false, false},
    [SDP_VPROTO_AVPF] = {"RTP/AVPF", false, true},
    [SDP_VPROTO_SAVP] = {"RTP/SAVP", true, false},
    [SDP_VPROTO_SAVPF] = {"RTP/SAVPF", true, true},
};

/* a=rtcp-fb types and parameters we use (RFC 4585 section 4.2, RFC 5104 section 7.1). */
static const struct {
	const char *type, *param; /* param NULL: the type alone */
	uint8_t bit;
} fbs[] = {
    {"nack", NULL, SDP_FB_NACK},
    {"nack", "pli", SDP_FB_PLI},
    {"ccm", "fir", SDP_FB_FIR},
};

const char *sdp_video_proto_name(enum sdp_video_proto proto)
{
	return (unsigned)proto < ARRAY_LEN(vprotos) ? vprotos[proto].name : NULL;
}

int sdp_video_proto_of(const sdp_media_t *m)
{
	for (size_t i = 0; m->m_proto_name && i < ARRAY_LEN(vprotos); i++)
		if (strcasecmp(m->m_proto_name, vprotos[i].name) == 0)
			return (int)i;
	return -1;
}

static bool proto_srtp(enum sdp_video_proto p)
{
	return (unsigned)p < ARRAY_LEN(vprotos) && vprotos[p].srtp;
}

/* --- fmtp ------------------------------------------------------------------------------------ */

int sdp_fmtp_param(const char *fmtp, const char *name, char *out, size_t outlen)
{
	size_t nlen = name ? strlen(name) : 0;
	const char *p = fmtp;

	if (!fmtp || !nlen || !out || !outlen)
		return -ENOENT;
	while (*p) {
		size_t len, klen, vlen;
		const char *eq, *v;

		p += strspn(p, " \t");
		len = strcspn(p, ";");
		eq = memchr(p, '=', len);
		klen = eq ? (size_t)(eq - p) : len;
		while (klen && (p[klen - 1] == ' ' || p[klen - 1] == '\t'))
			klen--;
		if (eq && klen == nlen && strncasecmp(p, name, nlen) == 0) {
			v = eq + 1 + strspn(eq + 1, " \t");
			vlen = len - (size_t)(v - p);
			while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= outlen)
				return -ENOSPC;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p += len;
		if (*p == ';')
			p++;
	}
	return -ENOENT;
}

/* Six hex digits into three bytes. */
static bool parse_plid(const char *s, uint8_t b[3])
{
	unsigned long v;

	if (!s || strlen(s) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	v = strtoul(s, NULL, 16);
	b[0] = (uint8_t)(v >> 16);
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)v;
	return true;
}

int sdp_h264_fmtp(const char *fmtp, struct sdp_h264_fmtp *out)
{
	char v[16];
	uint8_t plid[3];
	uint64_t mode;
	int ret;

	if (!out)
		return -EINVAL;
	*out = (struct sdp_h264_fmtp){.profile_idc = 0x42, .level_idc = 0x0a}; /* RFC 6184 8.1 */
	ret = sdp_fmtp_param(fmtp, "profile-level-id", v, sizeof(v));
	if (ret != -ENOENT) {
		if (ret < 0 || !parse_plid(v, plid))
			return -EBADMSG;
		out->profile_idc = plid[0];
		out->profile_iop = plid[1];
		out->level_idc = plid[2];
		out->has_plid = true;
	}
	ret = sdp_fmtp_param(fmtp, "packetization-mode", v, sizeof(v));
	if (ret != -ENOENT) {
		if (ret < 0 || !sdp_parse_uint(v, strlen(v), 2, &mode))
			return -EBADMSG;
		out->mode = (unsigned)mode;
	}
	if (sdp_fmtp_param(fmtp, "level-asymmetry-allowed", v, sizeof(v)) == 0)
		out->level_asymmetry = strcmp(v, "1") == 0;
	out->has_sprop = sdp_fmtp_param(fmtp, "sprop-parameter-sets", v, 1) != -ENOENT;
	return 0;
}

/*
 * Can a peer whose H.264 format is @theirs decode what we send, profile @ours (NULL: we do not
 * know it, any)? The same profile_idc, or ours constrained baseline (profile 66 with
 * constraint_set1) and theirs baseline, main or high, whose decoders all take it.
 */
static bool profile_takes(const struct sdp_h264_fmtp *theirs, const char *ours)
{
	uint8_t o[3];

	if (!ours || !parse_plid(ours, o))
		return true;
	if (theirs->profile_idc == o[0])
		return true;
	return o[0] == 0x42 && (o[1] & 0x40) &&
	       (theirs->profile_idc == 0x42 || theirs->profile_idc == 0x4d ||
		theirs->profile_idc == 0x64);
}

/* --- parser ---------------------------------------------------------------------------------- */

static bool is_h264(const struct sdp_video_format *f)
{
	return f->rate == 90000 && strcasecmp(f->name, "H264") == 0;
}

static struct sdp_video_format *format_by_pt(struct sdp_video *v, uint64_t pt)
{
	for (unsigned i = 0; i < v->n_formats; i++)
		if (v->formats[i].pt == pt)
			return &v->formats[i];
	return NULL;
}

static void set_rtpmap(struct sdp_video_format *f, const char *enc, unsigned long rate)
{
	if (!enc || !sdp_is_token(enc, SDP_MAX_NAME, sdp_tok_char) || rate == 0 ||
	    rate > SDP_MAX_RATE)
		return;
	sdp_copy_str(f->name, sizeof(f->name), enc);
	f->rate = (uint32_t)rate;
}

static void set_fmtp(struct sdp_video_format *f, const char *fmtp)
{
	if (fmtp && sdp_is_text(fmtp, SDP_MAX_VIDEO_FMTP)) /* otherwise dropped */
		sdp_copy_str(f->fmtp, sizeof(f->fmtp), fmtp);
}

/* "<pt> <rest>" of a=rtpmap, a=fmtp and a=rtcp-fb ('*' gives 128); NULL when malformed. */
static const char *attr_pt(const char *v, uint64_t *pt)
{
	size_t n;

	if (!v)
		return NULL;
	if (v[0] == '*' && (v[1] == ' ' || v[1] == '\t')) {
		*pt = 128;
		n = 1;
	} else {
		n = strspn(v, "0123456789");
		if (!sdp_parse_uint(v, n, 127, pt) || (v[n] != ' ' && v[n] != '\t'))
			return NULL;
	}
	return v + n + strspn(v + n, " \t");
}

/* a=rtpmap of RTP/AVPF: "<pt> <name>/<rate>[/<params>]" */
static void read_rtpmap_attr(struct sdp_video *v, const char *val)
{
	char name[SDP_MAX_NAME + 1];
	const char *rest, *slash;
	struct sdp_video_format *f;
	uint64_t pt, rate;
	size_t n;

	rest = attr_pt(val, &pt);
	if (!rest || pt > 127 || !(f = format_by_pt(v, pt)))
		return;
	slash = strchr(rest, '/');
	if (!slash || (size_t)(slash - rest) > SDP_MAX_NAME)
		return;
	memcpy(name, rest, (size_t)(slash - rest));
	name[slash - rest] = '\0';
	n = strspn(slash + 1, "0123456789");
	if (!sdp_parse_uint(slash + 1, n, SDP_MAX_RATE, &rate) ||
	    (slash[1 + n] && slash[1 + n] != '/'))
		return;
	set_rtpmap(f, name, (unsigned long)rate);
}

/* a=rtcp-fb: "<pt>|* <type> [<param>]"; types other than ours are ignored. */
static void read_rtcp_fb(const char *val, uint8_t fb[129])
{
	char type[16] = "", param[16] = "";
	const char *rest;
	uint64_t pt;
	size_t n;

	rest = attr_pt(val, &pt);
	if (!rest)
		return;
	n = strcspn(rest, " \t");
	if (n == 0 || n >= sizeof(type))
		return;
	memcpy(type, rest, n);
	rest += n;
	rest += strspn(rest, " \t");
	n = strcspn(rest, " \t");
	if (n >= sizeof(param))
		return;
	memcpy(param, rest, n);
	param[n] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(fbs); i++)
		if (strcasecmp(type, fbs[i].type) == 0 &&
		    (fbs[i].param ? strcasecmp(param, fbs[i].param) == 0 : !param[0]))
			fb[pt] |= fbs[i].bit;
}

/* a=rtcp: "<port> [<nettype> <addrtype> <address>]"; the address is not used. */
static bool read_rtcp_attr(const char *val, struct sdp_video *v)
{
	size_t n = val ? strspn(val, "0123456789") : 0;
	uint64_t port;

	if (!sdp_parse_uint(val, n, 65535, &port) || port == 0 ||
	    (val[n] && val[n] != ' ' && val[n] != '\t'))
		return false;
	v->rtcp_port = (uint16_t)port;
	return true;
}

/* The attributes of the video m-line; false when one of them makes it unusable. */
static bool read_video_attributes(const sdp_attribute_t *a, struct sdp_video *v, uint8_t fb[129])
{
	for (; a; a = a->a_next) {
		const char *rest;
		uint64_t pt;

		if (!a->a_name)
			continue;
		if (strcasecmp(a->a_name, "rtpmap") == 0) {
			read_rtpmap_attr(v, a->a_value);
		} else if (strcasecmp(a->a_name, "fmtp") == 0) {
			struct sdp_video_format *f;

			rest = attr_pt(a->a_value, &pt);
			if (rest && pt <= 127 && (f = format_by_pt(v, pt)))
				set_fmtp(f, rest);
		} else if (strcasecmp(a->a_name, "rtcp-fb") == 0) {
			read_rtcp_fb(a->a_value, fb);
		} else if (strcasecmp(a->a_name, "rtcp") == 0) {
			if (!read_rtcp_attr(a->a_value, v))
				return false;
		} else if (strcasecmp(a->a_name, "crypto") == 0) {
			struct sdp_crypto k;

			if (sdp_parse_crypto(a->a_value, &k, NULL, 0) < 0)
				return false;
			if (v->n_crypto < SDP_MAX_CRYPTO)
				v->crypto[v->n_crypto++] = k;
		}
	}
	return true;
}

/* "b=<type>:<value>" lines of the @idx-th m= section of the normalized @text. */
static void read_bandwidth(const char *text, unsigned idx, struct sdp_video *v)
{
	const char *p = text;
	long m = -1;

	while (p && *p) {
		size_t len = strcspn(p, "\r\n");
		uint64_t val;

		if (len >= 2 && p[0] == 'm' && p[1] == '=')
			m++;
		else if (m == (long)idx && len > 5 && strncasecmp(p, "b=AS:", 5) == 0 &&
			 sdp_parse_uint(p + 5, len - 5, UINT32_MAX, &val))
			v->bw_as = (uint32_t)val;
		else if (m == (long)idx && len > 7 && strncasecmp(p, "b=TIAS:", 7) == 0 &&
			 sdp_parse_uint(p + 7, len - 7, UINT32_MAX, &val))
			v->bw_tias = (uint32_t)val;
		if (m > (long)idx)
			break;
		p += len;
		p += strspn(p, "\r\n");
	}
}

/* Adds format @pt (unique, checked by the caller); those past SDP_MAX_VIDEO_FORMATS are lost. */
static void add_format(struct sdp_video *v, uint8_t pt, const char *enc, unsigned long rate,
		       const char *fmtp)
{
	struct sdp_video_format *f;

	if (v->n_formats >= SDP_MAX_VIDEO_FORMATS)
		return;
	f = &v->formats[v->n_formats++];
	memset(f, 0, sizeof(*f));
	f->pt = pt;
	set_rtpmap(f, enc, rate);
	set_fmtp(f, fmtp);
}

/* The m-line's formats: sofia's rtpmaps (AVP, SAVP) or its text list (AVPF, SAVPF). */
static bool read_formats(const sdp_media_t *m, struct sdp_video *v)
{
	uint8_t seen[128] = {0};
	unsigned n = 0;

	for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next) {
		if (++n > SDP_MAX_FORMATS || seen[rm->rm_pt]++)
			return false;
		add_format(v, (uint8_t)rm->rm_pt, rm->rm_encoding, rm->rm_rate, rm->rm_fmtp);
	}
	for (const sdp_list_t *l = m->m_rtpmaps ? NULL : m->m_format; l; l = l->l_next) {
		uint64_t pt;

		if (++n > SDP_MAX_FORMATS || !l->l_text ||
		    !sdp_parse_uint(l->l_text, strlen(l->l_text), 127, &pt) || seen[pt]++)
			return false;
		add_format(v, (uint8_t)pt, NULL, 0, NULL);
	}
	return v->n_formats > 0;
}

void sdp_video_read(const sdp_media_t *m, unsigned idx, const char *text,
		    struct sdp_media_desc *out)
{
	const sdp_connection_t *c = sdp_media_connections(m);
	struct sdp_video *v = &out->video;
	uint8_t fb[129] = {0};
	int proto = sdp_video_proto_of(m);
	unsigned bits;

	out->has_video = false;
	memset(v, 0, sizeof(*v));
	if (proto < 0 || m->m_port > 65535 || m->m_number_of_ports > 1)
		return;
	v->proto = (enum sdp_video_proto)proto;
	v->port = (uint16_t)m->m_port;
	if (!c || sdp_read_connection(c, v->addr, NULL, 0) < 0)
		return;
	bits = m->m_mode & 3;
	if (v->addr[0] && sdp_addr_is_any(v->addr))
		bits &= ~(unsigned)DIR_RECV;
	v->dir = sdp_dir_from_bits(bits);
	if (!read_formats(m, v) || !read_video_attributes(m->m_attributes, v, fb))
		return;
	for (unsigned i = 0; i < v->n_formats; i++) {
		struct sdp_video_format *f = &v->formats[i];

		f->fb = (fb[f->pt] | fb[128]) & SDP_FB_ALL;
		if (!f->name[0]) /* an fmtp without a format it could describe: never used */
			f->fmtp[0] = '\0';
	}
	read_bandwidth(text, idx, v);
	out->has_video = true;
	out->video_index = idx;
}

/* --- builder --------------------------------------------------------------------------------- */

int sdp_video_validate(const struct sdp_media_desc *d)
{
	const struct sdp_video *v = &d->video;
	uint8_t seen[128] = {0};

	if (d->video_index >= d->n_mlines || d->video_index == d->audio_index ||
	    d->n_mlines > SDP_MAX_MLINES)
		return -EINVAL;
	if (!memchr(v->addr, '\0', sizeof(v->addr)) || !sdp_addr_family(v->addr) || !v->port)
		return -EINVAL;
	if ((unsigned)v->dir > SDP_DIR_INACTIVE || (unsigned)v->proto >= ARRAY_LEN(vprotos))
		return -EINVAL;
	if (v->n_formats == 0 || v->n_formats > SDP_MAX_VIDEO_FORMATS)
		return -EINVAL;
	for (unsigned i = 0; i < v->n_formats; i++) {
		const struct sdp_video_format *f = &v->formats[i];

		if (f->pt > 127 || seen[f->pt]++ || f->fb & ~SDP_FB_ALL ||
		    !sdp_fmtp_ok(f->fmtp, sizeof(f->fmtp)) ||
		    !memchr(f->name, '\0', sizeof(f->name)))
			return -EINVAL;
		if (f->name[0] ? !sdp_name_ok(f->name, sizeof(f->name)) || f->rate == 0 ||
				     f->rate > SDP_MAX_RATE
			       : f->rate != 0)
			return -EINVAL;
	}
	return !proto_srtp(v->proto) || sdp_crypto_writable(v->crypto, v->n_crypto) ? 0 : -EINVAL;
}

static int put_format(struct buf *b, const struct sdp_video_format *f)
{
	int ret = 0;

	if (f->name[0])
		ret =
		    sdp_put(b, "a=rtpmap:%u %s/%" PRIu32 "\r\n", (unsigned)f->pt, f->name, f->rate);
	if (ret == 0 && f->fmtp[0])
		ret = sdp_put(b, "a=fmtp:%u %s\r\n", (unsigned)f->pt, f->fmtp);
	for (size_t i = 0; ret == 0 && i < ARRAY_LEN(fbs); i++)
		if (f->fb & fbs[i].bit)
			ret = sdp_put(b, "a=rtcp-fb:%u %s%s%s\r\n", (unsigned)f->pt, fbs[i].type,
				      fbs[i].param ? " " : "", fbs[i].param ? fbs[i].param : "");
	return ret;
}

int sdp_video_put(struct buf *b, const struct sdp_media_desc *d)
{
	const struct sdp_video *v = &d->video;
	int ret = sdp_put(b, "m=video %u %s", (unsigned)v->port, vprotos[v->proto].name);

	for (unsigned i = 0; ret == 0 && i < v->n_formats; i++)
		ret = sdp_put(b, " %u", (unsigned)v->formats[i].pt);
	if (ret == 0)
		ret = sdp_put(b, "\r\n");
	if (ret == 0 && strcmp(v->addr, d->addr) != 0)
		ret = sdp_put(b, "c=IN IP%d %s\r\n", sdp_addr_family(v->addr), v->addr);
	if (ret == 0 && v->bw_as)
		ret = sdp_put(b, "b=AS:%" PRIu32 "\r\n", v->bw_as);
	if (ret == 0 && v->bw_tias)
		ret = sdp_put(b, "b=TIAS:%" PRIu32 "\r\n", v->bw_tias);
	if (ret == 0 && v->rtcp_port)
		ret = sdp_put(b, "a=rtcp:%u\r\n", (unsigned)v->rtcp_port);
	for (unsigned i = 0; ret == 0 && i < v->n_formats; i++)
		ret = put_format(b, &v->formats[i]);
	if (ret == 0)
		ret = sdp_put(b, "a=%s\r\n", sdp_dir_name(v->dir));
	for (unsigned i = 0; ret == 0 && proto_srtp(v->proto) && i < v->n_crypto; i++)
		ret = sdp_put_crypto(b, &v->crypto[i]);
	return ret;
}

/* --- offer / answer -------------------------------------------------------------------------- */

static bool want_video(const struct codec_pref *ours, const struct sdp_local *l)
{
	return ours && ours->video && l && l->video.port;
}

static bool sprop_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=' || c == ',';
}

int sdp_video_check_local(const struct sdp_local *l, char *why, size_t whylen)
{
	const struct sdp_local_video *lv = &l->video;
	uint8_t plid[3];

	if (!lv->port)
		return 0;
	if ((unsigned)lv->dir > SDP_DIR_INACTIVE || lv->bw_kbps > SDP_MAX_BW)
		return sdp_fail(why, whylen, -EINVAL,
				"local video direction or bandwidth out of range");
	if (lv->profile_level_id && !parse_plid(lv->profile_level_id, plid))
		return sdp_fail(why, whylen, -EINVAL,
				"local H.264 profile-level-id is not 6 hex digits");
	if (lv->sprop && !sdp_is_token(lv->sprop, SDP_MAX_SPROP, sprop_char))
		return sdp_fail(why, whylen, -EINVAL,
				"local sprop-parameter-sets is not base64 text");
	if (l->srtp != SDP_SRTP_OFF && !lv->key)
		return sdp_fail(why, whylen, -EINVAL,
				"SRTP is allowed but no local video key was given");
	return 0;
}

/* The fmtp we write for H.264: profile @plid (NULL: none), packetization @mode, asymmetry, our
 * sprop. */
static bool h264_fmtp(char *out, size_t size, const char *plid, unsigned mode, bool asym,
		      const char *sprop)
{
	int n = snprintf(out, size, "%s%s%spacketization-mode=%u%s%s%s",
			 plid ? "profile-level-id=" : "", plid ? plid : "", plid ? ";" : "", mode,
			 asym ? ";level-asymmetry-allowed=1" : "", sprop ? ";sprop-parameter-sets=" : "",
			 sprop ? sprop : "");

	return n > 0 && (size_t)n < size;
}

/* Our side of a video m-line with one H.264 format: address, port, rtcp, direction, b=. */
static void set_local_video(struct sdp_video *v, const struct sdp_local *l,
			    enum sdp_video_proto proto, uint8_t pt, uint8_t fb)
{
	const struct sdp_local_video *lv = &l->video;

	memset(v, 0, sizeof(*v));
	sdp_copy_str(v->addr, sizeof(v->addr), l->addr);
	v->port = lv->port;
	v->rtcp_port = lv->rtcp_port && lv->rtcp_port != lv->port + 1 ? lv->rtcp_port : 0;
	v->dir = lv->dir;
	v->proto = proto;
	v->bw_as = lv->bw_kbps;
	v->bw_tias = lv->bw_kbps * 1000;
	v->n_formats = 1;
	v->formats[0].pt = pt;
	v->formats[0].fb = fb;
	v->formats[0].rate = 90000;
	sdp_copy_str(v->formats[0].name, sizeof(v->formats[0].name), "H264");
}

/* Our H.264 offer into @d's m-line @idx (its mlines entry names it for a later decline). */
static void put_offer(struct sdp_media_desc *d, unsigned idx, const struct sdp_local *l)
{
	const struct sdp_local_video *lv = &l->video;
	bool srtp = l->srtp == SDP_SRTP_REQUIRED;
	enum sdp_video_proto proto = srtp ? (lv->avpf ? SDP_VPROTO_SAVPF : SDP_VPROTO_SAVP)
					  : (lv->avpf ? SDP_VPROTO_AVPF : SDP_VPROTO_AVP);
	struct sdp_mline *ml = &d->mlines[idx];

	set_local_video(&d->video, l, proto, SDP_VIDEO_PT, SDP_FB_OURS);
	h264_fmtp(d->video.formats[0].fmtp, sizeof(d->video.formats[0].fmtp),
		  lv->profile_level_id ? lv->profile_level_id : SDP_H264_DEFAULT_PLID, 1, true,
		  lv->sprop); /* fits: both bounded by sdp_video_check_local() */
	/* the same in packetization-mode 0, for peers that take nothing else */
	d->video.formats[1] = d->video.formats[0];
	d->video.formats[1].pt = SDP_VIDEO_PT_MODE0;
	h264_fmtp(d->video.formats[1].fmtp, sizeof(d->video.formats[1].fmtp),
		  lv->profile_level_id ? lv->profile_level_id : SDP_H264_DEFAULT_PLID, 0, true,
		  lv->sprop);
	d->video.n_formats = 2;
	if (srtp) {
		d->video.n_crypto = 1;
		d->video.crypto[0].tag = 1;
		d->video.crypto[0].suite = SDP_SUITE_AES_CM_128_HMAC_SHA1_80;
		memcpy(d->video.crypto[0].key, lv->key, SDP_SRTP_KEY_LEN);
	}
	memset(ml, 0, sizeof(*ml));
	sdp_copy_str(ml->media, sizeof(ml->media), "video");
	sdp_copy_str(ml->proto, sizeof(ml->proto), vprotos[proto].name);
	snprintf(ml->fmt, sizeof(ml->fmt), "%u", SDP_VIDEO_PT);
	d->has_video = true;
	d->video_index = idx;
}

void sdp_video_offer(const struct codec_pref *ours, const struct sdp_local *local,
		     struct sdp_media_desc *offer)
{
	if (!want_video(ours, local))
		return;
	offer->n_mlines = 2;
	offer->audio_index = 0;
	put_offer(offer, 1, local);
}

int sdp_reoffer_video(struct sdp_media_desc *d, const struct codec_pref *ours,
		      const struct sdp_local *local, char *why, size_t whylen)
{
	unsigned idx;
	int ret;

	if (!d || d->n_mlines > SDP_MAX_MLINES)
		return sdp_fail(why, whylen, -EINVAL, "no description");
	if (!want_video(ours, local)) {
		d->has_video = false; /* mlines[video_index] writes it with port 0 */
		return 0;
	}
	ret = sdp_video_check_local(local, why, whylen);
	if (ret < 0)
		return ret;
	if (!local->addr || !sdp_addr_family(local->addr))
		return sdp_fail(why, whylen, -EINVAL, "local media address is not an IP literal");
	idx = d->n_mlines ? d->n_mlines : 1;
	for (unsigned i = 0; i < d->n_mlines; i++)
		if (i != d->audio_index && strcasecmp(d->mlines[i].media, "video") == 0) {
			idx = i; /* its old place, declined or not */
			break;
		}
	if (d->has_video)
		idx = d->video_index;
	if (idx >= SDP_MAX_MLINES)
		return sdp_fail(why, whylen, -E2BIG, "no room for a video m-line");
	if (!d->n_mlines) {
		d->n_mlines = 1;
		d->audio_index = 0;
	}
	if (idx == d->n_mlines)
		d->n_mlines++;
	put_offer(d, idx, local);
	return 0;
}

/*
 * The offer's first H.264 format in packetization-mode 1 that takes our profile, else its first
 * in mode 0 that does: its index, or -1 with @why.
 */
static int pick_h264(const struct sdp_video *v, const char *ours, char *why, size_t whylen)
{
	const char *reason = "no H.264 format offered";
	int mode0 = -1;

	for (unsigned i = 0; i < v->n_formats && i < SDP_MAX_VIDEO_FORMATS; i++) {
		struct sdp_h264_fmtp h;

		if (!is_h264(&v->formats[i]))
			continue;
		if (sdp_h264_fmtp(v->formats[i].fmtp, &h) < 0)
			reason = "H.264 offered with a malformed a=fmtp";
		else if (h.mode > 1)
			reason = "H.264 offered only in packetization-mode 2 (we do 1 and 0)";
		else if (!profile_takes(&h, ours))
			reason = "no offered H.264 profile can take ours";
		else if (h.mode == 1)
			return (int)i;
		else if (mode0 < 0)
			mode0 = (int)i;
	}
	if (mode0 >= 0)
		return mode0;
	sdp_fail(why, whylen, 0, "%s", reason);
	return -1;
}

/* Fills the parts of @vc that come from the peer's video m-line @pv. */
static void choice_remote_video(struct sdp_video_choice *vc, const struct sdp_video *pv)
{
	sdp_copy_str(vc->remote_addr, sizeof(vc->remote_addr), pv->addr);
	vc->remote_port = pv->port;
	vc->remote_rtcp_port = pv->rtcp_port ? pv->rtcp_port : (uint16_t)(pv->port + 1);
	vc->hold = !(sdp_dir_bits(pv->dir) & DIR_RECV) || sdp_addr_is_any(pv->addr);
	vc->bw_kbps = pv->bw_as ? pv->bw_as : pv->bw_tias / 1000;
	vc->avpf = vprotos[pv->proto].avpf;
	vc->on = true;
	vc->why[0] = '\0';
}

/* Why video stays off, in @vc->why; always false. */
__attribute__((format(printf, 2, 3))) static bool video_off(struct sdp_video_choice *vc,
							    const char *fmt, ...)
{
	va_list ap;

	memset(vc, 0, sizeof(*vc));
	va_start(ap, fmt);
	vsnprintf(vc->why, sizeof(vc->why), fmt, ap);
	va_end(ap);
	return false;
}

/* SRTP of the offered video under our policy: the crypto line to answer, -1 when plain. */
static bool video_srtp_ok(const struct sdp_video *ov, const struct sdp_local *l, int *ki,
			  struct sdp_video_choice *vc)
{
	char why[80] = "";

	*ki = -1;
	if (!proto_srtp(ov->proto))
		return l->srtp != SDP_SRTP_REQUIRED ||
		       video_off(vc, "SRTP is required but the video offer is plain");
	if (l->srtp == SDP_SRTP_OFF)
		return video_off(vc, "the video offer is %s and SRTP is disabled",
				 vprotos[ov->proto].name);
	*ki = sdp_pick_crypto(ov->crypto, ov->n_crypto, why, sizeof(why));
	return *ki >= 0 || video_off(vc, "video: %s", why);
}

void sdp_video_answer(const struct sdp_media_desc *offer, const struct codec_pref *ours,
		      const struct sdp_local *local, struct sdp_media_desc *answer,
		      struct sdp_choice *chosen)
{
	const struct sdp_video *ov = &offer->video;
	struct sdp_video_choice *vc = &chosen->video;
	struct sdp_video *av = &answer->video;
	const struct sdp_video_format *of;
	struct sdp_h264_fmtp h;
	char why[96] = "";
	char plid[8];
	int fi, ki;

	answer->has_video = false;
	if (!offer->has_video || offer->video_index >= offer->n_mlines ||
	    offer->video_index == offer->audio_index)
		return (void)video_off(vc, "no video offered");
	if (!want_video(ours, local))
		return (void)video_off(vc, "video is not enabled on our side");
	if (ov->port == 0 || !sdp_addr_family(ov->addr))
		return (void)video_off(vc, "the offer declines video");
	if (!video_srtp_ok(ov, local, &ki, vc))
		return;
	fi = pick_h264(ov, local->video.profile_level_id, why, sizeof(why));
	if (fi < 0)
		return (void)video_off(vc, "%s", why);
	of = &ov->formats[fi];
	sdp_h264_fmtp(of->fmtp, &h);
	snprintf(plid, sizeof(plid), "%02x%02x%02x", h.profile_idc, h.profile_iop, h.level_idc);
	set_local_video(av, local, ov->proto, of->pt, of->fb & SDP_FB_OURS);
	av->dir = sdp_dir_from_bits(sdp_dir_reverse(sdp_dir_bits(ov->dir)) &
				    sdp_dir_bits(local->video.dir));
	if (!h264_fmtp(av->formats[0].fmtp, sizeof(av->formats[0].fmtp), h.has_plid ? plid : NULL,
		       h.mode, h.level_asymmetry, local->video.sprop))
		return (void)video_off(vc, "the H.264 a=fmtp of the answer is too long");
	if (ki >= 0) {
		av->n_crypto = 1;
		av->crypto[0].tag = ov->crypto[ki].tag;
		av->crypto[0].suite = ov->crypto[ki].suite;
		memcpy(av->crypto[0].key, local->video.key, SDP_SRTP_KEY_LEN);
		vc->srtp = true;
		vc->suite = ov->crypto[ki].suite;
		vc->crypto_tag = ov->crypto[ki].tag;
		memcpy(vc->remote_key, ov->crypto[ki].key, SDP_SRTP_KEY_LEN);
	}
	answer->has_video = true;
	answer->video_index = offer->video_index;
	choice_remote_video(vc, ov);
	vc->pt = vc->recv_pt = of->pt;
	vc->fb = of->fb & SDP_FB_OURS;
	vc->dir = av->dir;
	vc->mode = h.mode;
	sdp_copy_str(vc->fmtp, sizeof(vc->fmtp), of->fmtp);
}

void sdp_video_process_answer(const struct sdp_media_desc *offer,
			      const struct sdp_media_desc *answer, struct sdp_choice *chosen)
{
	const struct sdp_video *ov = &offer->video, *av = &answer->video;
	struct sdp_video_choice *vc = &chosen->video;
	const struct sdp_video_format *af = NULL, *of = NULL;
	char why[96] = "";

	if (!offer->has_video || ov->n_formats > SDP_MAX_VIDEO_FORMATS)
		return (void)video_off(vc, "we offered no video");
	if (!answer->has_video || answer->video_index != offer->video_index || av->port == 0)
		return (void)video_off(vc, "the answer declines video");
	if (!sdp_addr_family(av->addr))
		return (void)video_off(vc, "the video answer has no usable address");
	/* the answer's first H.264 in mode 1, else in mode 0; on the PT we offered in that mode */
	for (unsigned want = 1, n = 0; n < 2 && !of; n++, want = 0) {
		for (unsigned i = 0; i < av->n_formats && i < SDP_MAX_VIDEO_FORMATS && !of; i++) {
			struct sdp_h264_fmtp h, ho;

			if (!is_h264(&av->formats[i]) ||
			    sdp_h264_fmtp(av->formats[i].fmtp, &h) < 0 || h.mode != want)
				continue;
			for (unsigned j = 0; j < ov->n_formats && j < SDP_MAX_VIDEO_FORMATS; j++)
				if (is_h264(&ov->formats[j]) &&
				    sdp_h264_fmtp(ov->formats[j].fmtp, &ho) == 0 && ho.mode == want &&
				    (!of || ov->formats[j].pt == av->formats[i].pt)) {
					af = &av->formats[i];
					of = &ov->formats[j]; /* the same PT, else ours of that mode */
					vc->mode = want;
				}
		}
	}
	if (!of)
		return (void)video_off(vc,
				       "the video answer has no H.264 in packetization-mode 1 or 0");
	if (proto_srtp(ov->proto) != proto_srtp(av->proto))
		return (void)video_off(vc, "the video answer is %s but we offered %s",
				       vprotos[av->proto].name, vprotos[ov->proto].name);
	if (proto_srtp(av->proto)) {
		if (sdp_answer_crypto(ov->crypto, ov->n_crypto, av->crypto, av->n_crypto, why,
				      sizeof(why)) < 0)
			return (void)video_off(vc, "video: %s", why);
		vc->srtp = true;
		vc->suite = av->crypto[0].suite;
		vc->crypto_tag = av->crypto[0].tag;
		memcpy(vc->remote_key, av->crypto[0].key, SDP_SRTP_KEY_LEN);
	}
	choice_remote_video(vc, av);
	vc->pt = af->pt;
	vc->recv_pt = of->pt;
	vc->fb = af->fb & of->fb;
	vc->dir = sdp_dir_from_bits(sdp_dir_bits(ov->dir) & sdp_dir_reverse(sdp_dir_bits(av->dir)));
	sdp_copy_str(vc->fmtp, sizeof(vc->fmtp), af->fmtp);
}
