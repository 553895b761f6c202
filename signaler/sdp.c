/*
 * sdp.c - SDP descriptions, offer/answer and hold for the gateway's audio calls. See sdp.h.
 *
 *   bytes (<= 64 KiB, no NUL)
 *     |  normalize(): m= lines rewritten after a character check (see there why)
 *     |  sofia-sip sdp_parse(): syntax, static rtpmaps, session-level c= and direction
 *     v
 *   sdp_session_t --read_session()--> first audio m-line with a port and RTP/AVP | RTP/SAVP
 *     |  fill_audio(): bounds every field, reads rtpmaps, a=ptime, a=crypto (our parser)
 *     v
 *   struct sdp_media_desc --sdp_answer() / sdp_process_answer()--> struct sdp_choice
 *     |
 *     v  sdp_build(): validated, then printed line by line (our printer)
 *   SDP text
 *
 * Directions are handled as two bits (send, receive) so that "answer = reverse(offer) & ours"
 * and hold/resume are bit operations over one table.
 */
#include "sdp_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SDP_CRYPTO_MAX_LEN 512	/* a=crypto value bytes */
#define SDP_KEY_B64_LEN	   40	/* base64 of SDP_SRTP_KEY_LEN bytes: no padding */
#define SDP_MAX_PTIME	   1000 /* ms */
#define SDP_MAX_CHANNELS   8
#define SDP_LINE_MAX	   1024 /* an a=fmtp of video: SDP_MAX_VIDEO_FMTP + its prefix */

/* --- tables ---------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned bits;
} dirs[] = {
    [SDP_DIR_SENDRECV] = {"sendrecv", DIR_SEND | DIR_RECV},
    [SDP_DIR_SENDONLY] = {"sendonly", DIR_SEND},
    [SDP_DIR_RECVONLY] = {"recvonly", DIR_RECV},
    [SDP_DIR_INACTIVE] = {"inactive", 0},
};

/* Bits -> direction; the bit values are also sofia-sip's sdp_mode_t values. */
static const enum sdp_dir dir_by_bits[4] = {
    [0] = SDP_DIR_INACTIVE,
    [DIR_SEND] = SDP_DIR_SENDONLY,
    [DIR_RECV] = SDP_DIR_RECVONLY,
    [DIR_SEND | DIR_RECV] = SDP_DIR_SENDRECV,
};

static const struct {
	const char *name;
	enum sdp_srtp_suite suite;
} suites[] = {
    {"AES_CM_128_HMAC_SHA1_80", SDP_SUITE_AES_CM_128_HMAC_SHA1_80},
    {"AES_CM_128_HMAC_SHA1_32", SDP_SUITE_AES_CM_128_HMAC_SHA1_32},
};

/* Codec tokens of the Flash VoIP API (siprtmp). CODEC_NONE: ignored. */
static const struct {
	const char *token;
	enum codec_id id;
} rtmp_tokens[] = {
    {"wideband", CODEC_SPEEX_WB},
    {"narrowband", CODEC_SPEEX_NB},
    {"pcmu", CODEC_PCMU},
    {"ulaw", CODEC_PCMU},
    {"pcma", CODEC_PCMA},
    {"alaw", CODEC_PCMA},
    {"opus", CODEC_OPUS},
    {"g722", CODEC_G722},
    {"dtmf", CODEC_TELEPHONE_EVENT},
    {"h264", CODEC_H264},
    {"flv", CODEC_NONE},
};

/* --- small helpers --------------------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) int sdp_fail(char *why, size_t whylen, int err,
						   const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* Appends to a NUL-terminated sentence in @why, silently truncating. */
__attribute__((format(printf, 3, 4))) void sdp_why_append(char *why, size_t whylen, const char *fmt,
							  ...)
{
	va_list ap;
	size_t used;

	if (!why || !whylen)
		return;
	used = strnlen(why, whylen);
	if (used + 1 >= whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why + used, whylen - used, fmt, ap);
	va_end(ap);
}

unsigned sdp_dir_bits(enum sdp_dir d)
{
	return (unsigned)d < ARRAY_LEN(dirs) ? dirs[d].bits : 0;
}

unsigned sdp_dir_reverse(unsigned bits)
{
	return ((bits & DIR_SEND) ? DIR_RECV : 0) | ((bits & DIR_RECV) ? DIR_SEND : 0);
}

enum sdp_dir sdp_dir_from_bits(unsigned bits)
{
	return dir_by_bits[bits & 3];
}

/* Address family of an IP literal: 4, 6, or 0 when @addr is not one. */
int sdp_addr_family(const char *addr)
{
	unsigned char tmp[16];

	if (!addr || !*addr)
		return 0;
	if (inet_pton(AF_INET, addr, tmp) == 1)
		return 4;
	if (inet_pton(AF_INET6, addr, tmp) == 1)
		return 6;
	return 0;
}

bool sdp_addr_is_any(const char *addr)
{
	unsigned char tmp[16];
	static const unsigned char zero[16];

	if (inet_pton(AF_INET, addr, tmp) == 1)
		return memcmp(tmp, zero, 4) == 0;
	if (inet_pton(AF_INET6, addr, tmp) == 1)
		return memcmp(tmp, zero, 16) == 0;
	return false;
}

/* RFC 4566 token characters (sofia-sip's TOKEN set). */
bool sdp_tok_char(unsigned char c)
{
	return c && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     strchr("-!#$%&'*+.^_`{|}~", c));
}

/* A transport: tokens joined by '/'. */
bool sdp_proto_char(unsigned char c)
{
	return c == '/' || sdp_tok_char(c);
}

/* A non-empty string of @max characters at most, each accepted by @ok. */
bool sdp_is_token(const char *s, size_t max, bool (*ok)(unsigned char))
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++, n++)
		if (n >= max || !ok((unsigned char)*s))
			return false;
	return true;
}

/* Printable ASCII text of at most @max bytes (fmtp values); "" is fine. */
bool sdp_is_text(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (n >= max || (unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* Copies NUL-terminated @src into @dst[@size]; false (and "" in @dst) when it does not fit. */
bool sdp_copy_str(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size) : 0;

	if (n >= size) {
		dst[0] = '\0';
		return false;
	}
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
	return true;
}

/* Decimal digits only, value <= @max. */
bool sdp_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	if (x > max)
		return false;
	*v = x;
	return true;
}

static enum sdp_srtp_suite suite_by_name(const char *s, size_t len)
{
	for (size_t i = 0; i < ARRAY_LEN(suites); i++)
		if (strlen(suites[i].name) == len && strncasecmp(suites[i].name, s, len) == 0)
			return suites[i].suite;
	return SDP_SUITE_UNKNOWN;
}

const char *sdp_dir_name(enum sdp_dir dir)
{
	return (unsigned)dir < ARRAY_LEN(dirs) ? dirs[dir].name : "?";
}

const char *const sdp_srtp_policy_names[] = {
	[SDP_SRTP_OFF] = "off", [SDP_SRTP_OPTIONAL] = "optional", [SDP_SRTP_REQUIRED] = "required",
	[SDP_SRTP_REQUIRED + 1] = NULL,
};

const char *sdp_srtp_suite_name(enum sdp_srtp_suite suite)
{
	for (size_t i = 0; i < ARRAY_LEN(suites); i++)
		if (suites[i].suite == suite)
			return suites[i].name;
	return NULL;
}

void sdp_desc_init(struct sdp_media_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->dir = SDP_DIR_SENDRECV;
	d->te_pt = -1;
}

bool sdp_is_hold(const struct sdp_media_desc *d)
{
	if (!d)
		return false;
	return !(sdp_dir_bits(d->dir) & DIR_RECV) || (d->addr[0] && sdp_addr_is_any(d->addr));
}

/* --- builder --------------------------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) int sdp_put(struct buf *b, const char *fmt, ...)
{
	char line[SDP_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	return buf_append(b, line, (size_t)n);
}

bool sdp_name_ok(const char *name, size_t size)
{
	return memchr(name, '\0', size) && sdp_is_token(name, SDP_MAX_NAME, sdp_tok_char);
}

bool sdp_fmtp_ok(const char *fmtp, size_t size)
{
	return size > 0 && memchr(fmtp, '\0', size) && sdp_is_text(fmtp, size - 1);
}

bool sdp_mline_ok(const struct sdp_mline *ml)
{
	return memchr(ml->media, '\0', sizeof(ml->media)) &&
	       memchr(ml->proto, '\0', sizeof(ml->proto)) &&
	       memchr(ml->fmt, '\0', sizeof(ml->fmt)) &&
	       sdp_is_token(ml->media, SDP_MAX_TOKEN, sdp_tok_char) &&
	       sdp_is_token(ml->proto, SDP_MAX_TOKEN, sdp_proto_char) &&
	       sdp_is_token(ml->fmt, SDP_MAX_TOKEN, sdp_tok_char);
}

bool sdp_crypto_writable(const struct sdp_crypto *k, unsigned n)
{
	if (n == 0 || n > SDP_MAX_CRYPTO)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (!sdp_srtp_suite_name(k[i].suite) || k[i].tag > 999999999u || k[i].extra ||
		    k[i].mki_len > 128)
			return false;
	return true;
}

/* Everything sdp_build() prints, checked before anything is printed. */
static int validate(const struct sdp_media_desc *d, const char *user)
{
	uint8_t seen[128] = {0};

	if (!memchr(d->addr, '\0', sizeof(d->addr)) || !sdp_addr_family(d->addr))
		return -EINVAL;
	if ((unsigned)d->dir >= ARRAY_LEN(dirs) || d->ptime > SDP_MAX_PTIME)
		return -EINVAL;
	if (d->n_codecs > SDP_MAX_CODECS || (d->n_codecs == 0 && d->te_pt < 0))
		return -EINVAL;
	for (unsigned i = 0; i < d->n_codecs; i++) {
		const struct sdp_codec *c = &d->codecs[i];

		if (c->pt > 127 || seen[c->pt]++ || c->rate == 0 || c->rate > SDP_MAX_RATE ||
		    c->channels > SDP_MAX_CHANNELS || !sdp_name_ok(c->name, sizeof(c->name)) ||
		    !sdp_fmtp_ok(c->fmtp, sizeof(c->fmtp)))
			return -EINVAL;
	}
	if (d->te_pt >= 0 &&
	    (d->te_pt > 127 || seen[d->te_pt]++ || d->te_rate == 0 || d->te_rate > SDP_MAX_RATE ||
	     !sdp_fmtp_ok(d->te_fmtp, sizeof(d->te_fmtp))))
		return -EINVAL;
	if (d->te_pt < -1)
		return -EINVAL;
	if (d->srtp && !sdp_crypto_writable(d->crypto, d->n_crypto))
		return -EINVAL;
	if (d->n_mlines > SDP_MAX_MLINES || (d->n_mlines && d->audio_index >= d->n_mlines))
		return -EINVAL;
	for (unsigned i = 0; i < d->n_mlines; i++)
		if (i != d->audio_index && !sdp_mline_ok(&d->mlines[i]))
			return -EINVAL;
	if (d->has_video && sdp_video_validate(d) < 0)
		return -EINVAL;
	if (user && *user) {
		size_t n = strnlen(user, SDP_MAX_USER + 1);

		if (n > SDP_MAX_USER)
			return -EINVAL;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)user[i] <= 0x20 || (unsigned char)user[i] >= 0x7f)
				return -EINVAL;
	}
	return 0;
}

int sdp_put_rtpmap(struct buf *b, unsigned pt, const char *name, uint32_t rate, unsigned channels,
		   const char *fmtp)
{
	int ret;

	if (channels > 1)
		ret = sdp_put(b, "a=rtpmap:%u %s/%" PRIu32 "/%u\r\n", pt, name, rate, channels);
	else
		ret = sdp_put(b, "a=rtpmap:%u %s/%" PRIu32 "\r\n", pt, name, rate);
	if (ret == 0 && fmtp[0])
		ret = sdp_put(b, "a=fmtp:%u %s\r\n", pt, fmtp);
	return ret;
}

int sdp_put_crypto(struct buf *b, const struct sdp_crypto *k)
{
	unsigned char b64[SDP_KEY_B64_LEN + 4];
	char life[32] = "", mki[32] = "";

	EVP_EncodeBlock(b64, k->key, SDP_SRTP_KEY_LEN);
	if (k->lifetime && !(k->lifetime & (k->lifetime - 1)))
		snprintf(life, sizeof(life), "|2^%d", __builtin_ctzll(k->lifetime));
	else if (k->lifetime)
		snprintf(life, sizeof(life), "|%" PRIu64, k->lifetime);
	if (k->mki_len)
		snprintf(mki, sizeof(mki), "|%" PRIu32 ":%u", k->mki, (unsigned)k->mki_len);
	return sdp_put(b, "a=crypto:%" PRIu32 " %s inline:%s%s%s\r\n", k->tag,
		       sdp_srtp_suite_name(k->suite), (const char *)b64, life, mki);
}

static int put_audio(struct buf *b, const struct sdp_media_desc *d)
{
	int ret = sdp_put(b, "m=audio %u %s", (unsigned)d->port, d->srtp ? "RTP/SAVP" : "RTP/AVP");

	for (unsigned i = 0; ret == 0 && i < d->n_codecs; i++)
		ret = sdp_put(b, " %u", (unsigned)d->codecs[i].pt);
	if (ret == 0 && d->te_pt >= 0)
		ret = sdp_put(b, " %d", d->te_pt);
	if (ret == 0)
		ret = sdp_put(b, "\r\n");
	for (unsigned i = 0; ret == 0 && i < d->n_codecs; i++) {
		const struct sdp_codec *c = &d->codecs[i];

		ret = sdp_put_rtpmap(b, c->pt, c->name, c->rate, c->channels, c->fmtp);
	}
	if (ret == 0 && d->te_pt >= 0)
		ret = sdp_put_rtpmap(b, (unsigned)d->te_pt, "telephone-event", d->te_rate, 1,
				     d->te_fmtp);
	if (ret == 0 && d->ptime)
		ret = sdp_put(b, "a=ptime:%u\r\n", d->ptime);
	if (ret == 0)
		ret = sdp_put(b, "a=%s\r\n", sdp_dir_name(d->dir));
	for (unsigned i = 0; ret == 0 && d->srtp && i < d->n_crypto; i++)
		ret = sdp_put_crypto(b, &d->crypto[i]);
	return ret;
}

int sdp_build(struct buf *out, const struct sdp_media_desc *d, const char *origin_user,
	      uint64_t sess_id, uint64_t sess_version)
{
	size_t start;
	int ret, ipv;

	if (!out || !d)
		return -EINVAL;
	ret = validate(d, origin_user);
	if (ret < 0)
		return ret;
	ipv = sdp_addr_family(d->addr);
	start = out->len;
	ret = sdp_put(out, "v=0\r\no=%s %" PRIu64 " %" PRIu64 " IN IP%d %s\r\ns=rtmp2sip\r\n",
		      origin_user && *origin_user ? origin_user : "-", sess_id, sess_version, ipv,
		      d->addr);
	if (ret == 0)
		ret = sdp_put(out, "c=IN IP%d %s\r\nt=0 0\r\n", ipv, d->addr);
	for (unsigned i = 0; ret == 0 && i < (d->n_mlines ? d->n_mlines : 1); i++) {
		const struct sdp_mline *ml = &d->mlines[i];

		if (!d->n_mlines || i == d->audio_index)
			ret = put_audio(out, d);
		else if (d->has_video && i == d->video_index)
			ret = sdp_video_put(out, d);
		else
			ret = sdp_put(out, "m=%s 0 %s %s\r\n", ml->media, ml->proto, ml->fmt);
	}
	if (ret < 0)
		out->len = start;
	return ret;
}

/* --- parser: input guard --------------------------------------------------------------------- */

/* strspn / strcspn over @len bytes that need not be NUL-terminated. */
static size_t strspn_n(const char *s, size_t len, const char *set)
{
	size_t n = 0;

	while (n < len && strchr(set, s[n]))
		n++;
	return n;
}

static size_t strcspn_n(const char *s, size_t len, const char *set)
{
	size_t n = 0;

	while (n < len && !strchr(set, s[n]))
		n++;
	return n;
}

static bool chars_in(const char *s, size_t len, bool (*ok)(unsigned char))
{
	for (size_t i = 0; i < len; i++)
		if (!ok((unsigned char)s[i]))
			return false;
	return len > 0;
}

static bool digit_char(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* m= fields, each checked so that sofia-sip splits the rewritten line the same way. */
static bool field_token(const char *s, size_t len)
{
	return chars_in(s, len, sdp_tok_char);
}

/* <port>["/"<count>] */
static bool field_port(const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);

	if (!slash)
		return chars_in(s, len, digit_char);
	return chars_in(s, (size_t)(slash - s), digit_char) &&
	       chars_in(slash + 1, len - (size_t)(slash - s) - 1, digit_char);
}

/* token *("/" token), not starting with '/' (sofia would take it as a port count) */
static bool field_proto(const char *s, size_t len)
{
	return len > 0 && sdp_tok_char((unsigned char)s[0]) && chars_in(s, len, sdp_proto_char);
}

/* Appends the fields of an m= line body (@s, @len bytes) to @out as "m=f1 f2 f3...". */
static int normalize_mline(const char *s, size_t len, char *out, size_t *o)
{
	static bool (*const field_ok[])(const char *, size_t) = {field_token, field_port,
								 field_proto};
	size_t i = 0;
	unsigned n = 0;

	memcpy(out + *o, "m=", 2);
	*o += 2;
	for (;;) {
		size_t f;

		i += strspn_n(s + i, len - i, " \t");
		if (i >= len)
			break;
		f = strcspn_n(s + i, len - i, " \t");
		if (!(n < ARRAY_LEN(field_ok) ? field_ok[n] : field_token)(s + i, f))
			return -EBADMSG;
		if (n++)
			out[(*o)++] = ' ';
		memcpy(out + *o, s + i, f);
		*o += f;
		i += f;
	}
	return 0;
}

/* --- parser: a=crypto ------------------------------------------------------------------------ */

static bool is_b64(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return false;
	}
	return true;
}

/* "2^N" or a decimal number of packets. */
static bool parse_lifetime(const char *s, size_t len, uint64_t *v)
{
	uint64_t n;

	if (len > 2 && s[0] == '2' && s[1] == '^') {
		if (!sdp_parse_uint(s + 2, len - 2, 63, &n))
			return false;
		*v = 1ull << n;
		return true;
	}
	return sdp_parse_uint(s, len, UINT64_MAX, v) && *v > 0;
}

/* "value:length" */
static bool parse_mki(const char *s, size_t len, struct sdp_crypto *k)
{
	const char *colon = memchr(s, ':', len);
	uint64_t v, l;

	if (!colon || !sdp_parse_uint(s, (size_t)(colon - s), UINT32_MAX, &v) ||
	    !sdp_parse_uint(colon + 1, len - (size_t)(colon - s) - 1, 128, &l) || l == 0)
		return false;
	k->mki = (uint32_t)v;
	k->mki_len = (uint8_t)l;
	return true;
}

/* The key-info after "inline:": base64 key||salt, then up to "|lifetime" and "|mki:len". */
static int parse_key_info(const char *s, size_t len, struct sdp_crypto *k, char *why, size_t whylen)
{
	const char *bar = memchr(s, '|', len);
	size_t klen = bar ? (size_t)(bar - s) : len;
	bool have_life = false;

	if (klen != SDP_KEY_B64_LEN || !is_b64(s, klen) ||
	    EVP_DecodeBlock(k->key, (const unsigned char *)s, (int)klen) != SDP_SRTP_KEY_LEN)
		return sdp_fail(why, whylen, -EBADMSG,
				"a=crypto:%" PRIu32
				": the inline key must be %d bytes in base64 (%d "
				"characters), got %zu characters",
				k->tag, SDP_SRTP_KEY_LEN, SDP_KEY_B64_LEN, klen);
	while (bar) {
		const char *f = bar + 1;
		size_t flen;

		bar = memchr(f, '|', len - (size_t)(f - s));
		flen = bar ? (size_t)(bar - f) : len - (size_t)(f - s);
		if (memchr(f, ':', flen)) {
			if (k->mki_len || bar || !parse_mki(f, flen, k))
				return sdp_fail(why, whylen, -EBADMSG,
						"a=crypto:%" PRIu32 ": malformed MKI", k->tag);
		} else if (have_life || k->mki_len || !parse_lifetime(f, flen, &k->lifetime)) {
			return sdp_fail(why, whylen, -EBADMSG,
					"a=crypto:%" PRIu32 ": malformed key lifetime", k->tag);
		} else {
			have_life = true;
		}
	}
	return 0;
}

/*
 * RFC 4568: "<tag> <suite> <key-params> [<session-params>]", key-params being
 * "inline:<key||salt>[|lifetime][|mki:len]" possibly followed by ";" and more keys. Lines of
 * unknown suites, other key methods, several keys or session parameters parse as unusable
 * (k->suite UNKNOWN or k->extra); a malformed tag or a bad key of a known suite is an error.
 */
int sdp_parse_crypto(const char *v, struct sdp_crypto *k, char *why, size_t whylen)
{
	const char *p = v, *suite, *kp;
	size_t n, slen, kplen;
	uint64_t tag;

	memset(k, 0, sizeof(*k));
	if (!v || strnlen(v, SDP_CRYPTO_MAX_LEN + 1) > SDP_CRYPTO_MAX_LEN)
		return sdp_fail(why, whylen, -EBADMSG, "a=crypto is empty or too long");
	n = strspn(p, "0123456789");
	if (!sdp_parse_uint(p, n, 999999999u, &tag) || n > 9 || (p[n] != ' ' && p[n] != '\t'))
		return sdp_fail(why, whylen, -EBADMSG, "a=crypto has a malformed tag");
	k->tag = (uint32_t)tag;
	p += n;
	p += strspn(p, " \t");
	suite = p;
	slen = strcspn(p, " \t");
	p += slen;
	if (slen == 0 || (*p != ' ' && *p != '\t'))
		return sdp_fail(why, whylen, -EBADMSG, "a=crypto:%" PRIu32 " has no key parameters",
				k->tag);
	k->suite = suite_by_name(suite, slen);
	p += strspn(p, " \t");
	kp = p;
	kplen = strcspn(p, " \t");
	if (kplen == 0)
		return sdp_fail(why, whylen, -EBADMSG, "a=crypto:%" PRIu32 " has no key parameters",
				k->tag);
	p += kplen;
	p += strspn(p, " \t");
	if (*p) /* session parameters: none of them is supported */
		k->extra = true;
	if (memchr(kp, ';', kplen)) {
		k->extra = true;
		kplen = (size_t)((const char *)memchr(kp, ';', kplen) - kp);
	}
	if (kplen < 7 || strncasecmp(kp, "inline:", 7) != 0) {
		k->extra = true;
		return 0;
	}
	if (k->suite == SDP_SUITE_UNKNOWN)
		return 0;
	return parse_key_info(kp + 7, kplen - 7, k, why, whylen);
}

/* Why an a=crypto line cannot be used, NULL when it can. */
const char *sdp_crypto_unusable(const struct sdp_crypto *k)
{
	if (k->suite == SDP_SUITE_UNKNOWN || k->suite == SDP_SUITE_NONE)
		return "its suite is not supported";
	if (k->extra)
		return "it has session parameters, several keys or a key method other than inline";
	if (k->mki_len)
		return "it uses an MKI";
	if (k->lifetime && k->lifetime < SDP_MIN_LIFETIME)
		return "its key lifetime is too short (no re-keying here)";
	return NULL;
}

/* --- parser: media --------------------------------------------------------------------------- */

int sdp_read_connection(const sdp_connection_t *c, char *addr, char *why, size_t whylen)
{
	int fam;

	if (c->c_nettype != sdp_net_in)
		return sdp_fail(why, whylen, -EPROTONOSUPPORT, "c= network type is not IN");
	if (c->c_mcast || c->c_groups > 1)
		return sdp_fail(why, whylen, -EPROTONOSUPPORT, "multicast c= is not supported");
	if (!c->c_address || !sdp_copy_str(addr, SDP_MAX_ADDR + 1, c->c_address))
		return sdp_fail(why, whylen, -EBADMSG, "c= address is missing or too long");
	fam = sdp_addr_family(addr);
	if (!fam || (fam == 4) != (c->c_addrtype == sdp_addr_ip4))
		return sdp_fail(why, whylen, -EBADMSG, "c= address \"%s\" is not an IP%d literal",
				addr, c->c_addrtype == sdp_addr_ip4 ? 4 : 6);
	return 0;
}

/* The encoding parameters of an audio rtpmap: the channel count, 1 when absent. */
static int read_channels(const sdp_rtpmap_t *rm, uint8_t *channels)
{
	uint64_t v;

	*channels = 1;
	if (!rm->rm_params || !*rm->rm_params)
		return 0;
	if (!sdp_parse_uint(rm->rm_params, strlen(rm->rm_params), SDP_MAX_CHANNELS, &v) || v == 0)
		return -EBADMSG;
	*channels = (uint8_t)v;
	return 0;
}

/*
 * One format of the audio m-line. Formats that cannot be described are dropped, not refused
 * (they could never be chosen): dynamic types without a=rtpmap, names above SDP_MAX_NAME, clock
 * rates of 0 or above SDP_MAX_RATE, channel counts that are not 1..SDP_MAX_CHANNELS.
 */
static void read_format(const sdp_rtpmap_t *rm, struct sdp_media_desc *out)
{
	struct sdp_codec c = {.pt = (uint8_t)rm->rm_pt};
	const char *enc = rm->rm_encoding;

	if (!enc || !sdp_is_token(enc, SDP_MAX_NAME, sdp_tok_char) || rm->rm_rate == 0 ||
	    rm->rm_rate > SDP_MAX_RATE || read_channels(rm, &c.channels) < 0)
		return;
	c.rate = (uint32_t)rm->rm_rate;
	sdp_copy_str(c.name, sizeof(c.name), enc);
	if (rm->rm_fmtp && sdp_is_text(rm->rm_fmtp, SDP_MAX_FMTP)) /* otherwise dropped */
		sdp_copy_str(c.fmtp, sizeof(c.fmtp), rm->rm_fmtp);
	if (strcasecmp(enc, "telephone-event") == 0) {
		/* Keep one: the first at 8000 Hz, else the first. */
		if (out->te_pt < 0 || (out->te_rate != 8000 && c.rate == 8000)) {
			out->te_pt = c.pt;
			out->te_rate = c.rate;
			memcpy(out->te_fmtp, c.fmtp, sizeof(out->te_fmtp));
		}
		return;
	}
	if (out->n_codecs < SDP_MAX_CODECS)
		out->codecs[out->n_codecs++] = c;
}

static int read_attributes(const sdp_attribute_t *a, struct sdp_media_desc *out, char *why,
			   size_t whylen)
{
	for (; a; a = a->a_next) {
		uint64_t v;
		int ret;

		if (!a->a_name)
			continue;
		if (strcasecmp(a->a_name, "ptime") == 0) {
			if (a->a_value &&
			    sdp_parse_uint(a->a_value, strnlen(a->a_value, 8), SDP_MAX_PTIME, &v))
				out->ptime = (unsigned)v; /* a malformed ptime is ignored */
		} else if (strcasecmp(a->a_name, "crypto") == 0) {
			struct sdp_crypto k;

			ret = sdp_parse_crypto(a->a_value, &k, why, whylen);
			if (ret < 0)
				return ret;
			if (out->n_crypto < SDP_MAX_CRYPTO)
				out->crypto[out->n_crypto++] = k;
		}
	}
	return 0;
}

static int fill_audio(const sdp_media_t *m, struct sdp_media_desc *out, char *why, size_t whylen)
{
	const sdp_connection_t *c = sdp_media_connections(m);
	uint8_t seen[128] = {0};
	unsigned n_formats = 0;
	unsigned bits;
	int ret;

	if (m->m_port > 65535)
		return sdp_fail(why, whylen, -EBADMSG, "m=audio port %lu is out of range",
				m->m_port);
	if (m->m_number_of_ports > 1)
		return sdp_fail(why, whylen, -EPROTONOSUPPORT,
				"m=audio port ranges are not supported");
	out->port = (uint16_t)m->m_port;
	out->srtp = m->m_proto == sdp_proto_srtp;
	if (c) {
		ret = sdp_read_connection(c, out->addr, why, whylen);
		if (ret < 0)
			return ret;
	} else if (out->port) {
		return sdp_fail(why, whylen, -EBADMSG, "no c= line for the audio stream");
	}
	bits = m->m_mode & 3;
	if (out->addr[0] && sdp_addr_is_any(out->addr))
		bits &= ~(unsigned)DIR_RECV; /* RFC 2543 hold */
	out->dir = sdp_dir_from_bits(bits);
	for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next) {
		if (++n_formats > SDP_MAX_FORMATS)
			return sdp_fail(why, whylen, -E2BIG, "more than %d formats on m=audio",
					SDP_MAX_FORMATS);
		if (!seen[rm->rm_pt]++)
			read_format(rm, out);
	}
	return read_attributes(m->m_attributes, out, why, whylen);
}

/* Remembers an m-line for echoing it declined. */
static int read_mline(const sdp_media_t *m, unsigned idx, struct sdp_mline *ml, char *why,
		      size_t whylen)
{
	char fmt[16];
	const char *f = "0";

	if (m->m_rtpmaps) {
		snprintf(fmt, sizeof(fmt), "%u", (unsigned)m->m_rtpmaps->rm_pt);
		f = fmt;
	} else if (m->m_format && m->m_format->l_text) {
		f = m->m_format->l_text;
	}
	if (!sdp_copy_str(ml->media, sizeof(ml->media), m->m_type_name) ||
	    !sdp_copy_str(ml->proto, sizeof(ml->proto), m->m_proto_name) ||
	    !sdp_copy_str(ml->fmt, sizeof(ml->fmt), f) || !sdp_mline_ok(ml))
		return sdp_fail(why, whylen, -EBADMSG, "m-line %u has a bad or too long field",
				idx + 1);
	return 0;
}

static int read_session(const sdp_session_t *s, const char *text, struct sdp_media_desc *out,
			char *why, size_t whylen)
{
	const sdp_media_t *audio = NULL, *declined = NULL, *video = NULL, *m;
	unsigned idx = 0, audio_idx = 0, declined_idx = 0, video_idx = 0;
	const char *bad_proto = NULL;
	int ret;

	if (s->sdp_origin) {
		if (s->sdp_origin->o_username)
			sdp_copy_str(out->origin_user, sizeof(out->origin_user),
				     s->sdp_origin->o_username);
		out->sess_id = s->sdp_origin->o_id;
		out->sess_version = s->sdp_origin->o_version;
	}
	for (m = s->sdp_media; m; m = m->m_next, idx++) {
		if (idx >= SDP_MAX_MLINES)
			return sdp_fail(why, whylen, -E2BIG, "more than %d m-lines",
					SDP_MAX_MLINES);
		ret = read_mline(m, idx, &out->mlines[idx], why, whylen);
		if (ret < 0)
			return ret;
		if (m->m_type == sdp_media_video && m->m_port && !video &&
		    sdp_video_proto_of(m) >= 0) {
			video = m;
			video_idx = idx;
		}
		if (m->m_type != sdp_media_audio)
			continue;
		if (m->m_port == 0) {
			if (!declined) {
				declined = m;
				declined_idx = idx;
			}
		} else if (m->m_proto != sdp_proto_rtp && m->m_proto != sdp_proto_srtp) {
			if (!bad_proto)
				bad_proto = m->m_proto_name ? m->m_proto_name : "?";
		} else if (!audio) {
			audio = m;
			audio_idx = idx;
		}
	}
	out->n_mlines = idx;
	if (!audio && bad_proto)
		return sdp_fail(why, whylen, -EPROTONOSUPPORT,
				"audio transport %.32s is not supported (RTP/AVP or RTP/SAVP only)",
				bad_proto);
	if (!audio && !declined)
		return sdp_fail(why, whylen, -ENOENT, "no audio m-line");
	if (!audio) {
		audio = declined;
		audio_idx = declined_idx;
	}
	out->audio_index = audio_idx;
	memset(&out->mlines[audio_idx], 0, sizeof(out->mlines[audio_idx]));
	ret = fill_audio(audio, out, why, whylen);
	if (ret == 0 && video)
		sdp_video_read(video, video_idx, text, out);
	return ret;
}

/*
 * Rewrites every m= line as single-space separated fields, after checking their characters:
 * the sofia-sip 1.12.11 parser loops forever, allocating, on a non-RTP m= line whose format
 * list starts with whitespace or a non-token character ("m=image 9 udptl \t"). Lines that are
 * not "<type>=..." are refused (sofia-sip before 1.13.8 overflowed on one-character lines,
 * CVE-2022-31003). Other lines are copied as they are; every line ends in CRLF. Returns the new
 * text (malloc'd, NUL-terminated, *outlen bytes) or NULL with *err and @why set.
 */
static char *normalize(const char *text, size_t len, size_t *outlen, int *err, char *why,
		       size_t whylen)
{
	char *out = malloc(2 * len + 4);
	size_t o = 0, i = 0;

	if (!out) {
		*err = sdp_fail(why, whylen, -ENOMEM, "out of memory");
		return NULL;
	}
	while (i < len) {
		size_t end, l;

		i += strspn_n(text + i, len - i, "\r\n");
		i += strspn_n(text + i, len - i, " \t");
		end = i + strcspn_n(text + i, len - i, "\r\n");
		l = end - i;
		if (l && (l < 2 || text[i + 1] != '=')) {
			free(out);
			*err = sdp_fail(why, whylen, -EBADMSG, "a line is not <type>=<value>");
			return NULL;
		}
		if (l >= 2 && text[i] == 'm') {
			int ret = normalize_mline(text + i + 2, l - 2, out, &o);

			if (ret < 0) {
				free(out);
				*err = sdp_fail(why, whylen, ret, "malformed m= line");
				return NULL;
			}
		} else if (l) {
			memcpy(out + o, text + i, l);
			o += l;
		}
		if (l) {
			out[o++] = '\r';
			out[o++] = '\n';
		}
		i = end;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

int sdp_parse_desc(const char *text, size_t len, struct sdp_media_desc *out, char *why,
		   size_t whylen)
{
	sdp_parser_t *p;
	sdp_session_t *s;
	size_t norm_len = 0;
	char *norm;
	int ret = 0;

	if (!out)
		return -EINVAL;
	sdp_desc_init(out);
	if (why && whylen)
		why[0] = '\0';
	if (!text || len == 0)
		return sdp_fail(why, whylen, -EBADMSG, "empty SDP");
	if (len > SDP_MAX_TEXT)
		return sdp_fail(why, whylen, -E2BIG, "SDP of %zu bytes is above %d", len,
				SDP_MAX_TEXT);
	if (memchr(text, '\0', len))
		return sdp_fail(why, whylen, -EBADMSG, "SDP contains a NUL byte");
	norm = normalize(text, len, &norm_len, &ret, why, whylen);
	if (!norm)
		return ret;
	p = sdp_parse(NULL, norm, (issize_t)norm_len, 0);
	s = sdp_session(p);
	if (!s) {
		const char *err = sdp_parsing_error(p);

		ret = sdp_fail(why, whylen, -EBADMSG, "malformed SDP: %s", err ? err : "?");
	} else {
		ret = read_session(s, norm, out, why, whylen);
	}
	sdp_parser_free(p);
	free(norm);
	if (ret < 0)
		sdp_desc_init(out);
	return ret;
}

/* --- codec preferences ----------------------------------------------------------------------- */

static bool pref_has(const struct codec_pref *p, const struct codec *c)
{
	for (unsigned i = 0; i < p->n && i < SDP_MAX_CODECS; i++)
		if (p->codecs[i] == c)
			return true;
	return false;
}

int sdp_prefs_from_rtmp(const char *const *tokens, size_t n, struct codec_pref *out, char *why,
			size_t whylen)
{
	int ret = 0;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (why && whylen)
		why[0] = '\0';
	for (size_t i = 0; tokens && i < n; i++) {
		const struct codec *c;
		size_t t;

		if (!tokens[i])
			continue;
		for (t = 0; t < ARRAY_LEN(rtmp_tokens); t++)
			if (strcasecmp(tokens[i], rtmp_tokens[t].token) == 0)
				break;
		if (t == ARRAY_LEN(rtmp_tokens)) {
			sdp_why_append(why, whylen, "%s\"%.32s\"",
				       ret ? ", " : "unknown codec token(s): ", tokens[i]);
			ret = -EINVAL;
			continue;
		}
		if (rtmp_tokens[t].id == CODEC_TELEPHONE_EVENT) {
			out->dtmf = true;
			continue;
		}
		if (rtmp_tokens[t].id == CODEC_H264) {
			out->video = true;
			continue;
		}
		c = codec_by_id(rtmp_tokens[t].id);
		if (c && !pref_has(out, c) && out->n < SDP_MAX_CODECS)
			out->codecs[out->n++] = c;
	}
	return ret;
}

/* --- offer / answer -------------------------------------------------------------------------- */

static int check_local(const struct sdp_local *l, char *why, size_t whylen)
{
	if (!l || !l->addr || strnlen(l->addr, SDP_MAX_ADDR + 1) > SDP_MAX_ADDR ||
	    !sdp_addr_family(l->addr))
		return sdp_fail(why, whylen, -EINVAL, "local media address is not an IP literal");
	if (l->port == 0)
		return sdp_fail(why, whylen, -EINVAL, "local media port is 0");
	if ((unsigned)l->dir >= ARRAY_LEN(dirs) || l->ptime > SDP_MAX_PTIME)
		return sdp_fail(why, whylen, -EINVAL, "local direction or ptime out of range");
	if ((unsigned)l->srtp > SDP_SRTP_REQUIRED)
		return sdp_fail(why, whylen, -EINVAL, "unknown SRTP policy");
	if (l->srtp != SDP_SRTP_OFF && !l->key)
		return sdp_fail(why, whylen, -EINVAL, "SRTP is allowed but no local key was given");
	return sdp_video_check_local(l, why, whylen);
}

/* Our side of a description: address, port, direction, ptime. */
static void set_local(struct sdp_media_desc *d, const struct sdp_local *l)
{
	sdp_copy_str(d->addr, sizeof(d->addr), l->addr);
	d->port = l->port;
	d->dir = l->dir;
	d->ptime = l->ptime ? l->ptime : SDP_DEFAULT_PTIME;
}

static void codec_from_table(struct sdp_codec *sc, const struct codec *c, uint8_t pt)
{
	memset(sc, 0, sizeof(*sc));
	sc->pt = pt;
	sc->channels = (uint8_t)c->channels;
	sc->rate = c->clock_rate;
	sdp_copy_str(sc->name, sizeof(sc->name), c->name);
	/* Opus (RFC 7587): we send and take mono 20 ms with in-band FEC; stereo=0 says mono is
	 * what we prefer to receive, useinbandfec=1 that we use FEC to conceal loss. */
	if (c->id == CODEC_OPUS)
		sdp_copy_str(sc->fmtp, sizeof(sc->fmtp), "minptime=10;useinbandfec=1;stereo=0");
}

int sdp_make_offer(const struct codec_pref *ours, const struct sdp_local *local,
		   struct sdp_media_desc *offer, char *why, size_t whylen)
{
	const struct codec *te = codec_by_id(CODEC_TELEPHONE_EVENT);
	int ret;

	if (!offer)
		return -EINVAL;
	sdp_desc_init(offer);
	ret = check_local(local, why, whylen);
	if (ret < 0)
		return ret;
	if (!ours)
		return sdp_fail(why, whylen, -EINVAL, "no codec preferences");
	for (unsigned i = 0; i < ours->n && i < SDP_MAX_CODECS; i++) {
		const struct codec *c = ours->codecs[i];
		bool dup = false;

		if (!c || c->family == CODEC_FAMILY_EVENT || c->default_pt < 0 ||
		    c->default_pt > 127)
			continue;
		for (unsigned j = 0; j < offer->n_codecs; j++)
			dup |= offer->codecs[j].pt == c->default_pt;
		if (!dup)
			codec_from_table(&offer->codecs[offer->n_codecs++], c,
					 (uint8_t)c->default_pt);
	}
	if (offer->n_codecs == 0) {
		sdp_desc_init(offer);
		return sdp_fail(why, whylen, -EINVAL, "no audio codec to offer");
	}
	if (ours->dtmf && te) {
		offer->te_pt = te->default_pt;
		offer->te_rate = te->clock_rate;
		sdp_copy_str(offer->te_fmtp, sizeof(offer->te_fmtp), "0-16");
	}
	set_local(offer, local);
	if (local->srtp == SDP_SRTP_REQUIRED) {
		offer->srtp = true;
		offer->n_crypto = 1;
		offer->crypto[0].tag = 1;
		offer->crypto[0].suite = SDP_SUITE_AES_CM_128_HMAC_SHA1_80;
		memcpy(offer->crypto[0].key, local->key, SDP_SRTP_KEY_LEN);
	}
	sdp_video_offer(ours, local, offer);
	return 0;
}

/* Lists "name/rate" of @d's codecs after @prefix into @why (for refusal reasons). */
static void why_codecs(char *why, size_t whylen, const char *prefix, const struct sdp_media_desc *d)
{
	sdp_why_append(why, whylen, "%s", prefix);
	for (unsigned i = 0; i < d->n_codecs; i++)
		sdp_why_append(why, whylen, "%s%s/%" PRIu32, i ? " " : "", d->codecs[i].name,
			       d->codecs[i].rate);
	if (!d->n_codecs)
		sdp_why_append(why, whylen, "nothing");
}

/* The first codec of @offer (the offerer's order) that the table knows and @ours contains. */
static int pick_codec(const struct sdp_media_desc *offer, const struct codec_pref *ours,
		      const struct codec **found)
{
	for (unsigned i = 0; i < offer->n_codecs && i < SDP_MAX_CODECS; i++) {
		const struct sdp_codec *sc = &offer->codecs[i];
		const struct codec *c = codec_by_name(sc->name, sc->rate);

		if (!c || c->family == CODEC_FAMILY_EVENT ||
		    (sc->channels ? sc->channels : 1) != c->channels)
			continue;
		if (pref_has(ours, c)) {
			*found = c;
			return (int)i;
		}
	}
	return -1;
}

int sdp_pick_crypto(const struct sdp_crypto *k, unsigned n, char *why, size_t whylen)
{
	const char *reason = "the offer has no a=crypto line";

	for (unsigned i = 0; i < n && i < SDP_MAX_CRYPTO; i++) {
		const char *r = sdp_crypto_unusable(&k[i]);

		if (!r)
			return (int)i;
		if (i == 0)
			reason = r;
	}
	sdp_fail(why, whylen, 0, "no usable a=crypto line (the first one: %s)", reason);
	return -1;
}

static void choice_init(struct sdp_choice *ch)
{
	memset(ch, 0, sizeof(*ch));
	ch->te_pt = -1;
	ch->te_recv_pt = -1;
}

static void choice_remote(struct sdp_choice *ch, const struct sdp_media_desc *peer)
{
	sdp_copy_str(ch->remote_addr, sizeof(ch->remote_addr), peer->addr);
	ch->remote_port = peer->port;
	ch->remote_ptime = peer->ptime;
	ch->hold = sdp_is_hold(peer);
}

static int check_srtp_policy(const struct sdp_media_desc *offer, enum sdp_srtp_policy srtp,
			     int *crypto_idx, char *why, size_t whylen)
{
	*crypto_idx = -1;
	if (!offer->srtp) {
		if (srtp == SDP_SRTP_REQUIRED)
			return sdp_fail(why, whylen, -ENOTSUP,
					"SRTP is required but the offer is plain RTP/AVP");
		return 0;
	}
	if (srtp == SDP_SRTP_OFF)
		return sdp_fail(why, whylen, -ENOTSUP,
				"the offer is RTP/SAVP and SRTP is disabled");
	*crypto_idx = sdp_pick_crypto(offer->crypto, offer->n_crypto, why, whylen);
	return *crypto_idx < 0 ? -ENOTSUP : 0;
}

int sdp_choose(const struct sdp_media_desc *offer, const struct codec_pref *ours,
	       enum sdp_srtp_policy srtp, struct sdp_choice *chosen, char *why, size_t whylen)
{
	const struct codec *c = NULL;
	const struct sdp_codec *oc;
	int idx, ki, ret;

	if (!chosen)
		return -EINVAL;
	choice_init(chosen);
	if (why && whylen)
		why[0] = '\0';
	if (!offer || !ours || offer->n_codecs > SDP_MAX_CODECS || offer->n_mlines > SDP_MAX_MLINES)
		return sdp_fail(why, whylen, -EINVAL, "no offer or no preferences");
	if ((unsigned)srtp > SDP_SRTP_REQUIRED)
		return sdp_fail(why, whylen, -EINVAL, "unknown SRTP policy");
	if (offer->port == 0)
		return sdp_fail(why, whylen, -ENOTSUP, "the offer declines audio (port 0)");
	if (!sdp_addr_family(offer->addr))
		return sdp_fail(why, whylen, -EINVAL, "the offer has no usable address");
	idx = pick_codec(offer, ours, &c);
	if (idx < 0) {
		struct sdp_media_desc we = {.n_codecs = 0};

		for (unsigned i = 0; i < ours->n && i < SDP_MAX_CODECS; i++)
			if (ours->codecs[i])
				codec_from_table(&we.codecs[we.n_codecs++], ours->codecs[i], 0);
		why_codecs(why, whylen, "no common codec: offered ", offer);
		why_codecs(why, whylen, "; we do ", &we);
		return -ENOTSUP;
	}
	ret = check_srtp_policy(offer, srtp, &ki, why, whylen);
	if (ret < 0)
		return ret;

	oc = &offer->codecs[idx];
	chosen->codec = c;
	chosen->pt = chosen->recv_pt = oc->pt;
	sdp_copy_str(chosen->fmtp, sizeof(chosen->fmtp), oc->fmtp);
	if (offer->te_pt >= 0 && offer->te_pt <= 127 && offer->te_pt != oc->pt && ours->dtmf &&
	    codec_by_name("telephone-event", offer->te_rate)) {
		chosen->te_pt = chosen->te_recv_pt = offer->te_pt;
		chosen->te_rate = offer->te_rate;
	}
	chosen->dir = sdp_dir_from_bits(sdp_dir_reverse(sdp_dir_bits(offer->dir)));
	choice_remote(chosen, offer);
	if (ki >= 0) {
		const struct sdp_crypto *ok = &offer->crypto[ki];

		chosen->srtp = true;
		chosen->suite = ok->suite;
		chosen->crypto_tag = ok->tag;
		memcpy(chosen->remote_key, ok->key, SDP_SRTP_KEY_LEN);
	}
	return 0;
}

int sdp_answer_choice(const struct sdp_media_desc *offer, const struct codec_pref *ours,
		      const struct sdp_local *local, struct sdp_choice *chosen,
		      struct sdp_media_desc *answer, char *why, size_t whylen)
{
	int ret;

	if (!answer)
		return -EINVAL;
	sdp_desc_init(answer);
	ret = check_local(local, why, whylen);
	if (ret < 0)
		return ret;
	if (!offer || !ours || !chosen || !chosen->codec || offer->n_mlines > SDP_MAX_MLINES ||
	    (chosen->srtp && local->srtp == SDP_SRTP_OFF))
		return sdp_fail(why, whylen, -EINVAL, "no offer, or no choice made on it");
	set_local(answer, local);
	chosen->dir = sdp_dir_from_bits(sdp_dir_bits(chosen->dir) & sdp_dir_bits(local->dir));
	answer->dir = chosen->dir;
	codec_from_table(&answer->codecs[0], chosen->codec, chosen->pt);
	answer->n_codecs = 1;
	if (chosen->te_pt >= 0) {
		answer->te_pt = chosen->te_pt;
		answer->te_rate = chosen->te_rate;
		if (!sdp_copy_str(answer->te_fmtp, sizeof(answer->te_fmtp), offer->te_fmtp) ||
		    !sdp_is_text(answer->te_fmtp, SDP_MAX_FMTP) || !answer->te_fmtp[0])
			sdp_copy_str(answer->te_fmtp, sizeof(answer->te_fmtp), "0-15");
	}
	answer->n_mlines = offer->n_mlines;
	answer->audio_index = offer->audio_index;
	memcpy(answer->mlines, offer->mlines, sizeof(answer->mlines));
	if (chosen->srtp) {
		answer->srtp = true;
		answer->n_crypto = 1;
		answer->crypto[0].tag = chosen->crypto_tag;
		answer->crypto[0].suite = chosen->suite;
		memcpy(answer->crypto[0].key, local->key, SDP_SRTP_KEY_LEN);
	}
	sdp_video_answer(offer, ours, local, answer, chosen);
	return 0;
}

int sdp_answer(const struct sdp_media_desc *offer, const struct codec_pref *ours,
	       const struct sdp_local *local, struct sdp_media_desc *answer,
	       struct sdp_choice *chosen, char *why, size_t whylen)
{
	int ret;

	if (!answer || !chosen)
		return -EINVAL;
	sdp_desc_init(answer);
	choice_init(chosen);
	ret = check_local(local, why, whylen);
	if (ret < 0)
		return ret;
	ret = sdp_choose(offer, ours, local->srtp, chosen, why, whylen);
	if (ret < 0)
		return ret;
	return sdp_answer_choice(offer, ours, local, chosen, answer, why, whylen);
}

static bool same_codec(const struct sdp_codec *a, const struct sdp_codec *b)
{
	return a->rate == b->rate && strcasecmp(a->name, b->name) == 0 &&
	       (a->channels ? a->channels : 1) == (b->channels ? b->channels : 1);
}

int sdp_answer_crypto(const struct sdp_crypto *ours, unsigned n_ours, const struct sdp_crypto *ans,
		      unsigned n_ans, char *why, size_t whylen)
{
	const struct sdp_crypto *k = &ans[0];
	bool suite_changed = false;

	if (n_ans == 0)
		return sdp_fail(why, whylen, -EPROTO, "the RTP/SAVP answer has no a=crypto line");
	for (unsigned i = 0; i < n_ours && i < SDP_MAX_CRYPTO; i++) {
		const char *r;

		if (ours[i].tag != k->tag)
			continue;
		if (ours[i].suite != k->suite) {
			suite_changed = true;
			continue;
		}
		r = sdp_crypto_unusable(k);
		if (r)
			return sdp_fail(why, whylen, -EPROTO,
					"the answer's a=crypto cannot be used: %s", r);
		return 0;
	}
	if (suite_changed)
		return sdp_fail(why, whylen, -EPROTO,
				"a=crypto:%" PRIu32 " of the answer changes the suite", k->tag);
	return sdp_fail(why, whylen, -EPROTO,
			"the answer's a=crypto tag %" PRIu32 " was not offered", k->tag);
}

/* SRTP of an answer must mirror our offer: a crypto line with one of our tags and its suite. */
static int answer_srtp(const struct sdp_media_desc *offer, const struct sdp_media_desc *answer,
		       struct sdp_choice *chosen, char *why, size_t whylen)
{
	const struct sdp_crypto *k = &answer->crypto[0];
	int ret;

	if (!offer->srtp && !answer->srtp)
		return 0;
	if (offer->srtp != answer->srtp)
		return sdp_fail(why, whylen, -EPROTO, "the answer is %s but we offered %s",
				answer->srtp ? "RTP/SAVP" : "RTP/AVP",
				offer->srtp ? "RTP/SAVP" : "RTP/AVP");
	ret = sdp_answer_crypto(offer->crypto, offer->n_crypto, answer->crypto, answer->n_crypto,
				why, whylen);
	if (ret < 0)
		return ret;
	chosen->srtp = true;
	chosen->suite = k->suite;
	chosen->crypto_tag = k->tag;
	memcpy(chosen->remote_key, k->key, SDP_SRTP_KEY_LEN);
	return 0;
}

int sdp_process_answer(const struct sdp_media_desc *our_offer, const struct sdp_media_desc *answer,
		       struct sdp_choice *chosen, char *why, size_t whylen)
{
	int ret;

	if (!chosen)
		return -EINVAL;
	choice_init(chosen);
	if (why && whylen)
		why[0] = '\0';
	if (!our_offer || !answer || answer->n_codecs > SDP_MAX_CODECS ||
	    our_offer->n_codecs > SDP_MAX_CODECS)
		return sdp_fail(why, whylen, -EINVAL, "no offer or no answer");
	if (answer->port == 0)
		return sdp_fail(why, whylen, -ECONNREFUSED, "the answer declines audio (port 0)");
	if (!sdp_addr_family(answer->addr))
		return sdp_fail(why, whylen, -EPROTO, "the answer has no usable address");
	for (unsigned i = 0; i < answer->n_codecs && !chosen->codec; i++) {
		const struct sdp_codec *ac = &answer->codecs[i];
		const struct codec *c = codec_by_name(ac->name, ac->rate);

		if (!c || c->family == CODEC_FAMILY_EVENT)
			continue;
		for (unsigned j = 0; j < our_offer->n_codecs; j++) {
			if (!same_codec(ac, &our_offer->codecs[j]))
				continue;
			chosen->codec = c;
			chosen->pt = ac->pt;
			chosen->recv_pt = our_offer->codecs[j].pt;
			sdp_copy_str(chosen->fmtp, sizeof(chosen->fmtp), ac->fmtp);
			break;
		}
	}
	if (!chosen->codec) {
		why_codecs(why, whylen, "the answer's codecs were not in our offer: ", answer);
		return -EPROTO;
	}
	ret = answer_srtp(our_offer, answer, chosen, why, whylen);
	if (ret < 0) {
		choice_init(chosen);
		return ret;
	}
	if (answer->te_pt >= 0 && our_offer->te_pt >= 0 && answer->te_rate == our_offer->te_rate) {
		chosen->te_pt = answer->te_pt;
		chosen->te_recv_pt = our_offer->te_pt;
		chosen->te_rate = answer->te_rate;
	}
	chosen->dir = sdp_dir_from_bits(sdp_dir_bits(our_offer->dir) &
					sdp_dir_reverse(sdp_dir_bits(answer->dir)));
	choice_remote(chosen, answer);
	sdp_video_process_answer(our_offer, answer, chosen);
	return 0;
}

/* --- hold ------------------------------------------------------------------------------------ */

/* RFC 6337 hold / resume of one stream: only our receiving changes. */
static enum sdp_dir hold_dir(enum sdp_dir dir, bool hold)
{
	unsigned bits = sdp_dir_bits(dir);

	return sdp_dir_from_bits(hold ? bits & ~(unsigned)DIR_RECV : bits | DIR_RECV);
}

int sdp_build_reoffer(struct buf *out, struct sdp_media_desc *d, bool hold, const char *origin_user)
{
	enum sdp_dir old_dir, old_vdir;
	int ret;

	if (!d)
		return -EINVAL;
	old_dir = d->dir;
	old_vdir = d->video.dir;
	d->dir = hold_dir(d->dir, hold);
	if (d->has_video)
		d->video.dir = hold_dir(d->video.dir, hold);
	ret = sdp_build(out, d, origin_user, d->sess_id, d->sess_version + 1);
	if (ret < 0) {
		d->dir = old_dir;
		d->video.dir = old_vdir;
	} else
		d->sess_version++;
	return ret;
}

void sdp_choice_wire_codec(const struct sdp_choice *c, struct wire_codec *out)
{
	memset(out, 0, sizeof(*out));
	if (!c || !c->codec)
		return;
	out->pt = c->pt;
	out->channels = 1;
	out->rate = c->codec->clock_rate;
	sdp_copy_str(out->name, sizeof(out->name), c->codec->name);
}
