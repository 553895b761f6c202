/*
 * wire.c - encoding and strict decoding of signaler <-> mediaworker messages.
 *
 * Decoding a control message:
 *
 *     header frame --> 12 bytes? --> magic --> version --> known type --> body length matches
 *         |                                                                    |
 *         +-- EBADMSG (no reply)      EPROTONOSUPPORT / ENOTSUP (reply)         v
 *     TLV walk: (tag, len) fits --> count <= 64 --> known tag: value valid, not a duplicate
 *         --> required tags of the type present --> per-type rules --> struct wire_msg
 *
 * Two tables drive everything: tag_table (name, value type, bounds, repeatability) and
 * type_table (name, kind, required tags of the message and of its reply, extra rules).
 */
#include "wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REQUIRED 10

struct tag_info {
	uint16_t tag;
	const char *name;
	enum wire_tag_type type;
	uint16_t max;       /* STR / BYTES: largest length */
	uint8_t max_count;  /* occurrences allowed in one message */
};

/* Sorted by tag: looked up with bsearch. */
static const struct tag_info tag_table[] = {
	{WIRE_T_SIGNALER_ID, "SIGNALER_ID", WIRE_TT_ID, 0, 1},
	{WIRE_T_WORKER_ID, "WORKER_ID", WIRE_TT_ID, 0, 1},
	{WIRE_T_INSTANCE_ID, "INSTANCE_ID", WIRE_TT_U64, 0, 1},
	{WIRE_T_PID, "PID", WIRE_TT_U32, 0, 1},
	{WIRE_T_HOST, "HOST", WIRE_TT_STR, WIRE_MAX_STR, 1},
	{WIRE_T_SW_VERSION, "SW_VERSION", WIRE_TT_STR, 64, 1},
	{WIRE_T_CAPACITY, "CAPACITY", WIRE_TT_U32, 0, 1},
	{WIRE_T_HB_INTERVAL_MS, "HB_INTERVAL_MS", WIRE_TT_U32, 0, 1},
	{WIRE_T_LEGS, "LEGS", WIRE_TT_U32, 0, 1},
	{WIRE_T_CPU_PERMILLE, "CPU_PERMILLE", WIRE_TT_U16, 0, 1},
	{WIRE_T_DRAINING, "DRAINING", WIRE_TT_BOOL, 0, 1},
	{WIRE_T_SEQ, "SEQ", WIRE_TT_U32, 0, 1},
	{WIRE_T_TRANSCODING_LEGS, "TRANSCODING_LEGS", WIRE_TT_U32, 0, 1},
	{WIRE_T_PASSTHROUGH_LEGS, "PASSTHROUGH_LEGS", WIRE_TT_U32, 0, 1},
	{WIRE_T_LEG_ID, "LEG_ID", WIRE_TT_ID, 0, 1},
	{WIRE_T_CALL_ID, "CALL_ID", WIRE_TT_STR, WIRE_MAX_STR, 1},
	{WIRE_T_OWNER, "OWNER", WIRE_TT_ID, 0, 1},
	{WIRE_T_RTMP_CODEC, "RTMP_CODEC", WIRE_TT_CODEC, 0, 1},
	{WIRE_T_SIP_CODEC, "SIP_CODEC", WIRE_TT_CODEC, 0, WIRE_MAX_CODECS},
	{WIRE_T_REMOTE_IP, "REMOTE_IP", WIRE_TT_STR, 45, 1},
	{WIRE_T_REMOTE_PORT, "REMOTE_PORT", WIRE_TT_U16, 0, 1},
	{WIRE_T_SRTP_SUITE, "SRTP_SUITE", WIRE_TT_STR, 64, 1},
	{WIRE_T_SRTP_REMOTE_KEY, "SRTP_REMOTE_KEY", WIRE_TT_BYTES, WIRE_MAX_KEY, 1},
	{WIRE_T_WANT_SRTP, "WANT_SRTP", WIRE_TT_BOOL, 0, 1},
	{WIRE_T_DTMF_PT, "DTMF_PT", WIRE_TT_U8, 0, 1},
	{WIRE_T_PTIME_MS, "PTIME_MS", WIRE_TT_U16, 0, 1},
	{WIRE_T_HOLD, "HOLD", WIRE_TT_BOOL, 0, 1},
	{WIRE_T_CODEC_PT, "CODEC_PT", WIRE_TT_U8, 0, 1},
	{WIRE_T_CODEC_FMTP, "CODEC_FMTP", WIRE_TT_STR, 128, 1},
	{WIRE_T_RTMP_OUT_CODEC, "RTMP_OUT_CODEC", WIRE_TT_CODEC, 0, 1},
	{WIRE_T_LOCAL_IP, "LOCAL_IP", WIRE_TT_STR, 45, 1},
	{WIRE_T_LOCAL_PORT, "LOCAL_PORT", WIRE_TT_U16, 0, 1},
	{WIRE_T_CHOSEN_CODEC, "CHOSEN_CODEC", WIRE_TT_CODEC, 0, 1},
	{WIRE_T_SRTP_LOCAL_KEY, "SRTP_LOCAL_KEY", WIRE_TT_BYTES, WIRE_MAX_KEY, 1},
	{WIRE_T_SSRC, "SSRC", WIRE_TT_U32, 0, 1},
	{WIRE_T_NOT_FOUND, "NOT_FOUND", WIRE_TT_BOOL, 0, 1},
	{WIRE_T_TRANSCODING, "TRANSCODING", WIRE_TT_BOOL, 0, 1},
	{WIRE_T_SYNC_LEG, "SYNC_LEG", WIRE_TT_ID, 0, 1},
	{WIRE_T_KEYFRAME, "KEYFRAME", WIRE_TT_BOOL, 0, 1},
	{WIRE_T_DIGIT, "DIGIT", WIRE_TT_DIGIT, 0, 1},
	{WIRE_T_DURATION_MS, "DURATION_MS", WIRE_TT_U16, 0, 1},
	{WIRE_T_PKTS_IN, "PKTS_IN", WIRE_TT_U64, 0, 1},
	{WIRE_T_PKTS_OUT, "PKTS_OUT", WIRE_TT_U64, 0, 1},
	{WIRE_T_BYTES_IN, "BYTES_IN", WIRE_TT_U64, 0, 1},
	{WIRE_T_BYTES_OUT, "BYTES_OUT", WIRE_TT_U64, 0, 1},
	{WIRE_T_LOST, "LOST", WIRE_TT_U64, 0, 1},
	{WIRE_T_JITTER_MS, "JITTER_MS", WIRE_TT_U32, 0, 1},
	{WIRE_T_SRTP_AUTH_FAIL, "SRTP_AUTH_FAIL", WIRE_TT_U64, 0, 1},
	{WIRE_T_BAD_PKTS, "BAD_PKTS", WIRE_TT_U64, 0, 1},
	{WIRE_T_EVENT_KIND, "EVENT_KIND", WIRE_TT_U8, 0, 1},
	{WIRE_T_REASON, "REASON", WIRE_TT_STR, WIRE_MAX_STR, 1},
	{WIRE_T_ERR_CODE, "ERR_CODE", WIRE_TT_U32, 0, 1},
	{WIRE_T_ERR_TEXT, "ERR_TEXT", WIRE_TT_STR, WIRE_MAX_STR, 1},
	{WIRE_T_ERR_TAG, "ERR_TAG", WIRE_TT_U16, 0, 1},
};

typedef int (*type_rule_fn)(const struct wire_msg *m, struct wire_err *err);

struct type_info {
	const char *name;
	enum wire_kind kind;
	uint16_t required[MAX_REQUIRED];       /* zero-terminated */
	uint16_t reply_required[MAX_REQUIRED]; /* requests: what their OK / HELLO_OK must carry */
	type_rule_fn rule;                     /* extra checks across tags, may be NULL */
};

static int rule_leg_fields(const struct wire_msg *m, struct wire_err *err);
static int rule_event(const struct wire_msg *m, struct wire_err *err);
static int rule_error(const struct wire_msg *m, struct wire_err *err);

static const struct type_info type_table[256] = {
	[WIRE_HELLO] = {"HELLO", WIRE_KIND_REQUEST, {WIRE_T_SIGNALER_ID},
			{WIRE_T_WORKER_ID, WIRE_T_INSTANCE_ID}, NULL},
	[WIRE_HELLO_OK] = {"HELLO_OK", WIRE_KIND_REPLY, {WIRE_T_WORKER_ID, WIRE_T_INSTANCE_ID},
			   {0}, NULL},
	[WIRE_OK] = {"OK", WIRE_KIND_REPLY, {0}, {0}, NULL},
	[WIRE_ERROR] = {"ERROR", WIRE_KIND_REPLY, {WIRE_T_ERR_CODE, WIRE_T_ERR_TEXT}, {0},
			rule_error},
	[WIRE_HEARTBEAT] = {"HEARTBEAT", WIRE_KIND_NOTIFY,
			    {WIRE_T_WORKER_ID, WIRE_T_INSTANCE_ID, WIRE_T_LEGS, WIRE_T_CPU_PERMILLE,
			     WIRE_T_DRAINING, WIRE_T_SEQ},
			    {0}, NULL},
	[WIRE_EVENT] = {"EVENT", WIRE_KIND_NOTIFY, {WIRE_T_LEG_ID, WIRE_T_EVENT_KIND}, {0},
			rule_event},
	[WIRE_MEDIA] = {"MEDIA", WIRE_KIND_NOTIFY, {0}, {0}, NULL},
	[WIRE_MEDIA_BATCH] = {"MEDIA_BATCH", WIRE_KIND_NOTIFY, {0}, {0}, NULL},
	[WIRE_CREATE_LEG] = {"CREATE_LEG", WIRE_KIND_REQUEST,
			     {WIRE_T_LEG_ID, WIRE_T_CALL_ID, WIRE_T_OWNER, WIRE_T_RTMP_CODEC,
			      WIRE_T_SIP_CODEC},
			     {WIRE_T_LOCAL_IP, WIRE_T_LOCAL_PORT, WIRE_T_CHOSEN_CODEC, WIRE_T_SSRC},
			     rule_leg_fields},
	[WIRE_UPDATE_LEG] = {"UPDATE_LEG", WIRE_KIND_REQUEST, {WIRE_T_LEG_ID}, {0},
			     rule_leg_fields},
	[WIRE_DESTROY_LEG] = {"DESTROY_LEG", WIRE_KIND_REQUEST, {WIRE_T_LEG_ID}, {0}, NULL},
	[WIRE_SEND_DTMF] = {"SEND_DTMF", WIRE_KIND_REQUEST, {WIRE_T_LEG_ID, WIRE_T_DIGIT}, {0},
			    NULL},
	[WIRE_LEG_STATS] = {"LEG_STATS", WIRE_KIND_REQUEST, {WIRE_T_LEG_ID},
			    {WIRE_T_PKTS_IN, WIRE_T_PKTS_OUT, WIRE_T_BYTES_IN, WIRE_T_BYTES_OUT,
			     WIRE_T_LOST, WIRE_T_JITTER_MS, WIRE_T_SRTP_AUTH_FAIL, WIRE_T_BAD_PKTS},
			    NULL},
	[WIRE_WORKER_STATS] = {"WORKER_STATS", WIRE_KIND_REQUEST, {0},
			       {WIRE_T_LEGS, WIRE_T_TRANSCODING_LEGS, WIRE_T_PASSTHROUGH_LEGS,
				WIRE_T_CPU_PERMILLE, WIRE_T_PKTS_IN, WIRE_T_PKTS_OUT},
			       NULL},
	[WIRE_ADOPT_LEG] = {"ADOPT_LEG", WIRE_KIND_REQUEST, {WIRE_T_LEG_ID},
			    {WIRE_T_LOCAL_IP, WIRE_T_LOCAL_PORT, WIRE_T_CHOSEN_CODEC, WIRE_T_SSRC},
			    NULL},
};

/* [A-Za-z0-9._-] */
static const uint8_t id_char[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
	['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
	['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
	['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
	['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

static const char *const tt_names[] = {
	[WIRE_TT_U8] = "u8",   [WIRE_TT_U16] = "u16",	[WIRE_TT_U32] = "u32",
	[WIRE_TT_U64] = "u64", [WIRE_TT_BOOL] = "bool", [WIRE_TT_STR] = "str",
	[WIRE_TT_ID] = "id",   [WIRE_TT_BYTES] = "bytes", [WIRE_TT_CODEC] = "codec",
	[WIRE_TT_DIGIT] = "digit",
};

__attribute__((format(printf, 4, 5))) static int fail(struct wire_err *err, int code,
						      uint16_t tag, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->code = code;
		err->tag = tag;
		va_start(ap, fmt);
		vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
		va_end(ap);
	}
	return -code;
}

static int cmp_tag(const void *key, const void *elem)
{
	uint16_t k = *(const uint16_t *)key, t = ((const struct tag_info *)elem)->tag;

	return k < t ? -1 : k > t;
}

static const struct tag_info *tag_lookup(uint16_t tag)
{
	return bsearch(&tag, tag_table, sizeof(tag_table) / sizeof(tag_table[0]),
		       sizeof(tag_table[0]), cmp_tag);
}

const char *wire_type_name(uint8_t type)
{
	return type_table[type].name ? type_table[type].name : "?";
}

enum wire_kind wire_type_kind(uint8_t type)
{
	if (type_table[type].name)
		return type_table[type].kind;
	if (type >= 0x10 && type <= 0x7f)
		return WIRE_KIND_REQUEST;
	if (type >= 0x80)
		return WIRE_KIND_NOTIFY;
	return WIRE_KIND_UNKNOWN;
}

const char *wire_tag_name(uint16_t tag)
{
	const struct tag_info *ti = tag_lookup(tag);

	return ti ? ti->name : NULL;
}

enum wire_tag_type wire_tag_type(uint16_t tag)
{
	const struct tag_info *ti = tag_lookup(tag);

	return ti ? ti->type : 0;
}

bool wire_id_valid(const char *s, size_t len)
{
	if (len < 1 || len > WIRE_MAX_ID)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!id_char[(uint8_t)s[i]])
			return false;
	return true;
}

bool wire_digit_valid(int c)
{
	return c > 0 && c < 256 && strchr("0123456789*#ABCD", c) != NULL;
}

static const char *tag_label(uint16_t tag, char *tmp, size_t n)
{
	const char *name = wire_tag_name(tag);

	snprintf(tmp, n, "%s (0x%04x)", name ? name : "tag", tag);
	return tmp;
}

/* Checks one value of a known tag; returns 0 or -EINVAL with @err filled. */
static int check_value(const struct tag_info *ti, const uint8_t *v, size_t len,
		       struct wire_err *err)
{
	static const uint8_t widths[] = {[WIRE_TT_U8] = 1, [WIRE_TT_U16] = 2, [WIRE_TT_U32] = 4,
					 [WIRE_TT_U64] = 8, [WIRE_TT_BOOL] = 1, [WIRE_TT_DIGIT] = 1};
	char lb[48];

	switch (ti->type) {
	case WIRE_TT_U8:
	case WIRE_TT_U16:
	case WIRE_TT_U32:
	case WIRE_TT_U64:
	case WIRE_TT_BOOL:
	case WIRE_TT_DIGIT:
		if (len != widths[ti->type])
			return fail(err, EINVAL, ti->tag, "%s: %s of %zu bytes",
				    tag_label(ti->tag, lb, sizeof(lb)), tt_names[ti->type], len);
		if (ti->type == WIRE_TT_BOOL && v[0] > 1)
			return fail(err, EINVAL, ti->tag, "%s: bool value %u",
				    tag_label(ti->tag, lb, sizeof(lb)), v[0]);
		if (ti->type == WIRE_TT_DIGIT && !wire_digit_valid(v[0]))
			return fail(err, EINVAL, ti->tag, "%s: not a DTMF digit (0x%02x)",
				    tag_label(ti->tag, lb, sizeof(lb)), v[0]);
		return 0;
	case WIRE_TT_STR:
		if (len > ti->max)
			return fail(err, EINVAL, ti->tag, "%s: string of %zu bytes, max %u",
				    tag_label(ti->tag, lb, sizeof(lb)), len, ti->max);
		if (len && memchr(v, 0, len))
			return fail(err, EINVAL, ti->tag, "%s: string contains NUL",
				    tag_label(ti->tag, lb, sizeof(lb)));
		return 0;
	case WIRE_TT_ID:
		if (!wire_id_valid((const char *)v, len))
			return fail(err, EINVAL, ti->tag,
				    "%s: id must be 1-64 bytes of [A-Za-z0-9._-] (%zu bytes)",
				    tag_label(ti->tag, lb, sizeof(lb)), len);
		return 0;
	case WIRE_TT_BYTES:
		if (len > ti->max)
			return fail(err, EINVAL, ti->tag, "%s: %zu bytes, max %u",
				    tag_label(ti->tag, lb, sizeof(lb)), len, ti->max);
		return 0;
	case WIRE_TT_CODEC:
		if (len < 7 || len > 6 + WIRE_MAX_CODEC_NAME)
			return fail(err, EINVAL, ti->tag, "%s: codec of %zu bytes",
				    tag_label(ti->tag, lb, sizeof(lb)), len);
		if (v[0] > 127 || v[1] == 0 || rd_be32(v + 2) == 0)
			return fail(err, EINVAL, ti->tag, "%s: codec pt %u channels %u rate %u",
				    tag_label(ti->tag, lb, sizeof(lb)), v[0], v[1], rd_be32(v + 2));
		for (size_t i = 6; i < len; i++)
			if (!id_char[v[i]])
				return fail(err, EINVAL, ti->tag, "%s: bad codec name",
					    tag_label(ti->tag, lb, sizeof(lb)));
		return 0;
	}
	return fail(err, EINVAL, ti->tag, "tag 0x%04x: no type", ti->tag);
}

int wire_header_parse(const void *hdr, size_t hdr_len, struct wire_hdr *h, struct wire_err *err)
{
	const uint8_t *p = hdr;

	if (err) {
		err->can_reply = false;
		err->tag = 0;
	}
	if (hdr_len != WIRE_HDR_LEN)
		return fail(err, EBADMSG, 0, "header frame of %zu bytes, expected %d", hdr_len,
			    WIRE_HDR_LEN);
	if (p[0] != WIRE_MAGIC0 || p[1] != WIRE_MAGIC1)
		return fail(err, EBADMSG, 0, "bad magic 0x%02x%02x", p[0], p[1]);
	h->version = p[2];
	h->type = p[3];
	h->flags = (uint16_t)rd_be16(p + 4);
	h->req_id = rd_be32(p + 6);
	h->body_len = (uint16_t)rd_be16(p + 10);
	if (err)
		err->can_reply = true; /* type and request id keep their place in every version */
	if (h->version != WIRE_VERSION)
		return fail(err, EPROTONOSUPPORT, 0, "unsupported version %u", h->version);
	if (!type_table[h->type].name)
		return fail(err, ENOTSUP, 0, "unknown message type 0x%02x", h->type);
	return 0;
}

static bool has_tag(const struct wire_msg *m, uint16_t tag)
{
	for (uint16_t i = 0; i < m->n_tlv; i++)
		if (m->tlv[i].tag == tag)
			return true;
	return false;
}

static int check_required(const struct wire_msg *m, const uint16_t *req, const char *what,
			  struct wire_err *err)
{
	char lb[48];

	for (int i = 0; i < MAX_REQUIRED && req[i]; i++)
		if (!has_tag(m, req[i]))
			return fail(err, EINVAL, req[i], "%s: missing required tag %s", what,
				    tag_label(req[i], lb, sizeof(lb)));
	return 0;
}

static int rule_leg_fields(const struct wire_msg *m, struct wire_err *err)
{
	if (has_tag(m, WIRE_T_REMOTE_IP) != has_tag(m, WIRE_T_REMOTE_PORT))
		return fail(err, EINVAL,
			    has_tag(m, WIRE_T_REMOTE_IP) ? WIRE_T_REMOTE_PORT : WIRE_T_REMOTE_IP,
			    "REMOTE_IP and REMOTE_PORT must come together");
	if (has_tag(m, WIRE_T_SRTP_REMOTE_KEY) && !has_tag(m, WIRE_T_SRTP_SUITE))
		return fail(err, EINVAL, WIRE_T_SRTP_SUITE,
			    "SRTP_REMOTE_KEY needs SRTP_SUITE (0x0107)");
	return 0;
}

static int rule_event(const struct wire_msg *m, struct wire_err *err)
{
	uint8_t kind = 0;

	wire_get_u8(m, WIRE_T_EVENT_KIND, &kind);
	if (kind == WIRE_EV_DTMF && !has_tag(m, WIRE_T_DIGIT))
		return fail(err, EINVAL, WIRE_T_DIGIT, "DTMF event: missing required tag DIGIT");
	return 0;
}

static int rule_error(const struct wire_msg *m, struct wire_err *err)
{
	uint32_t code = 0;

	wire_get_u32(m, WIRE_T_ERR_CODE, &code);
	if (code == 0 || code > 4095)
		return fail(err, EINVAL, WIRE_T_ERR_CODE, "ERR_CODE %u out of 1-4095", code);
	return 0;
}

/* Walks the TLVs of @body into @m; checks layout, bounds, values and duplicates. */
static int parse_tlvs(const uint8_t *body, size_t len, struct wire_msg *m, struct wire_err *err)
{
	size_t off = 0;
	char lb[48];

	m->n_tlv = 0;
	while (off < len) {
		const struct tag_info *ti;
		uint16_t tag, vlen;
		unsigned seen = 0;
		int ret;

		if (len - off < 4)
			return fail(err, EBADMSG, 0, "truncated TLV header at offset %zu", off);
		tag = (uint16_t)rd_be16(body + off);
		vlen = (uint16_t)rd_be16(body + off + 2);
		if (vlen > len - off - 4)
			return fail(err, EBADMSG, tag, "%s: length %u beyond the body (%zu left)",
				    tag_label(tag, lb, sizeof(lb)), vlen, len - off - 4);
		if (m->n_tlv == WIRE_MAX_TLVS)
			return fail(err, EBADMSG, tag, "more than %d TLVs", WIRE_MAX_TLVS);
		if (tag == 0)
			return fail(err, EINVAL, 0, "tag 0 is reserved");
		ti = tag_lookup(tag);
		if (ti) {
			ret = check_value(ti, body + off + 4, vlen, err);
			if (ret < 0)
				return ret;
			for (uint16_t i = 0; i < m->n_tlv; i++)
				seen += m->tlv[i].tag == tag;
			if (seen >= ti->max_count)
				return fail(err, EINVAL, tag,
					    ti->max_count == 1 ? "%s: duplicate tag"
							       : "%s: too many occurrences",
					    tag_label(tag, lb, sizeof(lb)));
		}
		m->tlv[m->n_tlv++] = (struct wire_tlv){.tag = tag, .len = vlen, .val = body + off + 4};
		off += 4 + (size_t)vlen;
	}
	return 0;
}

int wire_parse(const void *hdr, size_t hdr_len, const void *body, size_t body_len,
	       struct wire_msg *m, struct wire_err *err)
{
	const struct type_info *ti;
	int ret;

	m->n_tlv = 0;
	ret = wire_header_parse(hdr, hdr_len, &m->h, err);
	if (ret < 0)
		return ret;
	if (m->h.type == WIRE_MEDIA || m->h.type == WIRE_MEDIA_BATCH)
		return fail(err, EBADMSG, 0, "%s has no TLV body", wire_type_name(m->h.type));
	if (body_len != m->h.body_len)
		return fail(err, EBADMSG, 0, "body frame of %zu bytes, header says %u", body_len,
			    m->h.body_len);
	ret = parse_tlvs(body, body_len, m, err);
	if (ret < 0)
		return ret;
	ti = &type_table[m->h.type];
	ret = check_required(m, ti->required, ti->name, err);
	if (ret < 0)
		return ret;
	return ti->rule ? ti->rule(m, err) : 0;
}

int wire_check_reply(const struct wire_msg *m, uint8_t req_type, struct wire_err *err)
{
	const struct type_info *ti = &type_table[req_type];

	if (err)
		err->can_reply = false;
	if (!ti->name || ti->kind != WIRE_KIND_REQUEST)
		return fail(err, EINVAL, 0, "0x%02x is not a request type", req_type);
	if (m->h.type != (req_type == WIRE_HELLO ? WIRE_HELLO_OK : WIRE_OK))
		return fail(err, EINVAL, 0, "%s answered with %s", ti->name,
			    wire_type_name(m->h.type));
	return check_required(m, ti->reply_required, "reply", err);
}

static int media_body_parse(const uint8_t *b, size_t body_len, struct wire_media *md,
			    struct wire_err *err);

int wire_media_parse(const void *hdr, size_t hdr_len, const void *body, size_t body_len,
		     struct wire_media *md, struct wire_err *err)
{
	const uint8_t *b = body;
	struct wire_hdr h;
	int ret;

	ret = wire_header_parse(hdr, hdr_len, &h, err);
	if (ret < 0)
		return ret;
	if (err)
		err->can_reply = false;
	if (h.type != WIRE_MEDIA)
		return fail(err, EBADMSG, 0, "%s is not MEDIA", wire_type_name(h.type));
	if (body_len != h.body_len)
		return fail(err, EBADMSG, 0, "body frame of %zu bytes, header says %u", body_len,
			    h.body_len);
	return media_body_parse(b, body_len, md, err);
}

/* One MEDIA body (shared by MEDIA and the records of MEDIA_BATCH). */
static int media_body_parse(const uint8_t *b, size_t body_len, struct wire_media *md,
			    struct wire_err *err)
{
	size_t idlen;

	if (body_len < 1)
		return fail(err, EBADMSG, 0, "empty MEDIA body");
	idlen = b[0];
	if (body_len < 1 + idlen + 5)
		return fail(err, EBADMSG, 0, "MEDIA body of %zu bytes too short", body_len);
	if (!wire_id_valid((const char *)b + 1, idlen))
		return fail(err, EINVAL, WIRE_T_LEG_ID, "MEDIA: bad leg id");
	if (body_len - 1 - idlen - 5 > WIRE_MAX_PAYLOAD)
		return fail(err, EBADMSG, 0, "MEDIA payload of %zu bytes, max %d",
			    body_len - 1 - idlen - 5, WIRE_MAX_PAYLOAD);
	md->queued_ms = 0;
	memcpy(md->leg_id, b + 1, idlen);
	md->leg_id[idlen] = '\0';
	md->ts = rd_be32(b + 1 + idlen);
	md->flags = b[1 + idlen + 4];
	md->payload = b + 1 + idlen + 5;
	md->len = body_len - 1 - idlen - 5;
	return 0;
}

/* --- getters --- */

const struct wire_tlv *wire_find(const struct wire_msg *m, uint16_t tag, size_t idx)
{
	for (uint16_t i = 0; i < m->n_tlv; i++)
		if (m->tlv[i].tag == tag && idx-- == 0)
			return &m->tlv[i];
	return NULL;
}

bool wire_has(const struct wire_msg *m, uint16_t tag)
{
	return has_tag(m, tag);
}

size_t wire_count(const struct wire_msg *m, uint16_t tag)
{
	size_t n = 0;

	for (uint16_t i = 0; i < m->n_tlv; i++)
		n += m->tlv[i].tag == tag;
	return n;
}

static const struct wire_tlv *find_len(const struct wire_msg *m, uint16_t tag, size_t len,
				       int *ret)
{
	const struct wire_tlv *t = wire_find(m, tag, 0);

	*ret = !t ? -ENOENT : t->len != len ? -EINVAL : 0;
	return *ret ? NULL : t;
}

int wire_get_u8(const struct wire_msg *m, uint16_t tag, uint8_t *v)
{
	int ret;
	const struct wire_tlv *t = find_len(m, tag, 1, &ret);

	if (t)
		*v = t->val[0];
	return ret;
}

int wire_get_u16(const struct wire_msg *m, uint16_t tag, uint16_t *v)
{
	int ret;
	const struct wire_tlv *t = find_len(m, tag, 2, &ret);

	if (t)
		*v = (uint16_t)rd_be16(t->val);
	return ret;
}

int wire_get_u32(const struct wire_msg *m, uint16_t tag, uint32_t *v)
{
	int ret;
	const struct wire_tlv *t = find_len(m, tag, 4, &ret);

	if (t)
		*v = rd_be32(t->val);
	return ret;
}

int wire_get_u64(const struct wire_msg *m, uint16_t tag, uint64_t *v)
{
	int ret;
	const struct wire_tlv *t = find_len(m, tag, 8, &ret);

	if (t)
		*v = (uint64_t)rd_be32(t->val) << 32 | rd_be32(t->val + 4);
	return ret;
}

int wire_get_bool(const struct wire_msg *m, uint16_t tag, bool *v)
{
	uint8_t u = 0;
	int ret = wire_get_u8(m, tag, &u);

	if (ret == 0)
		*v = u != 0;
	return ret;
}

int wire_get_str(const struct wire_msg *m, uint16_t tag, const char **s, size_t *len)
{
	const struct wire_tlv *t = wire_find(m, tag, 0);

	if (!t)
		return -ENOENT;
	*s = (const char *)t->val;
	*len = t->len;
	return 0;
}

int wire_get_cstr(const struct wire_msg *m, uint16_t tag, char *out, size_t out_size)
{
	const struct wire_tlv *t = wire_find(m, tag, 0);

	if (!t)
		return -ENOENT;
	if (memchr(t->val, 0, t->len))
		return -EINVAL;
	if ((size_t)t->len >= out_size)
		return -ENOSPC;
	memcpy(out, t->val, t->len);
	out[t->len] = '\0';
	return 0;
}

int wire_get_bytes(const struct wire_msg *m, uint16_t tag, const uint8_t **p, size_t *len)
{
	const struct wire_tlv *t = wire_find(m, tag, 0);

	if (!t)
		return -ENOENT;
	*p = t->val;
	*len = t->len;
	return 0;
}

int wire_get_codec(const struct wire_msg *m, uint16_t tag, size_t idx, struct wire_codec *c)
{
	const struct wire_tlv *t = wire_find(m, tag, idx);
	const struct tag_info ti = {.tag = tag, .type = WIRE_TT_CODEC};

	if (!t)
		return -ENOENT;
	if (check_value(&ti, t->val, t->len, NULL) < 0)
		return -EINVAL;
	c->pt = t->val[0];
	c->channels = t->val[1];
	c->rate = rd_be32(t->val + 2);
	memcpy(c->name, t->val + 6, t->len - 6u);
	c->name[t->len - 6] = '\0';
	return 0;
}

/* --- builder --- */

__attribute__((format(printf, 3, 4))) static int bfail(struct wire_builder *b, int e,
						       const char *fmt, ...)
{
	va_list ap;

	if (b->err)
		return b->err;
	b->err = e;
	va_start(ap, fmt);
	vsnprintf(b->reason, sizeof(b->reason), fmt, ap);
	va_end(ap);
	return e;
}

void wire_builder_init(struct wire_builder *b, uint8_t type, uint32_t req_id)
{
	buf_reset(&b->body);
	b->type = type;
	b->flags = 0;
	b->req_id = req_id;
	b->n_tlv = 0;
	b->err = 0;
	b->reason[0] = '\0';
	memset(b->hdr, 0, sizeof(b->hdr));
}

/* Which putters may write which tag types. */
enum putter { P_U8, P_U16, P_U32, P_U64, P_BOOL, P_STR, P_BYTES, P_CODEC, P_RAW };

static bool putter_fits(enum putter p, enum wire_tag_type t)
{
	switch (p) {
	case P_U8:
		return t == WIRE_TT_U8 || t == WIRE_TT_DIGIT;
	case P_U16:
		return t == WIRE_TT_U16;
	case P_U32:
		return t == WIRE_TT_U32;
	case P_U64:
		return t == WIRE_TT_U64;
	case P_BOOL:
		return t == WIRE_TT_BOOL;
	case P_STR:
		return t == WIRE_TT_STR || t == WIRE_TT_ID;
	case P_BYTES:
		return t == WIRE_TT_BYTES;
	case P_CODEC:
		return t == WIRE_TT_CODEC;
	case P_RAW:
		return true;
	}
	return false;
}

static int put_tlv(struct wire_builder *b, enum putter p, uint16_t tag, const void *val,
		   size_t len)
{
	const struct tag_info *ti;
	struct wire_err e;
	unsigned seen = 0;
	char lb[48];

	if (b->err)
		return b->err;
	if (tag == 0)
		return bfail(b, -EINVAL, "tag 0 is reserved");
	if (b->n_tlv == WIRE_MAX_TLVS)
		return bfail(b, -E2BIG, "more than %d TLVs", WIRE_MAX_TLVS);
	if (len > 0xffff || buf_used(&b->body) + 4 + len > WIRE_MAX_BODY)
		return bfail(b, -E2BIG, "%s: body would exceed %u bytes",
			     tag_label(tag, lb, sizeof(lb)), WIRE_MAX_BODY);
	ti = tag_lookup(tag);
	if (ti) {
		if (!putter_fits(p, ti->type))
			return bfail(b, -EINVAL, "%s is of type %s",
				     tag_label(tag, lb, sizeof(lb)), tt_names[ti->type]);
		if (check_value(ti, val, len, &e) < 0)
			return bfail(b, -EINVAL, "%s", e.reason);
		for (uint16_t i = 0; i < b->n_tlv; i++)
			seen += b->tags[i] == tag;
		if (seen >= ti->max_count)
			return bfail(b, -EINVAL, "%s: %s", tag_label(tag, lb, sizeof(lb)),
				     ti->max_count == 1 ? "duplicate tag" : "too many occurrences");
	}
	if (buf_put_be16(&b->body, tag) < 0 || buf_put_be16(&b->body, (uint16_t)len) < 0 ||
	    buf_append(&b->body, val, len) < 0)
		return bfail(b, -ENOMEM, "out of memory");
	b->tags[b->n_tlv++] = tag;
	return 0;
}

int wire_put_u8(struct wire_builder *b, uint16_t tag, uint8_t v)
{
	return put_tlv(b, P_U8, tag, &v, 1);
}

int wire_put_u16(struct wire_builder *b, uint16_t tag, uint16_t v)
{
	uint8_t p[2];

	wr_be16(p, v);
	return put_tlv(b, P_U16, tag, p, sizeof(p));
}

int wire_put_u32(struct wire_builder *b, uint16_t tag, uint32_t v)
{
	uint8_t p[4];

	wr_be32(p, v);
	return put_tlv(b, P_U32, tag, p, sizeof(p));
}

int wire_put_u64(struct wire_builder *b, uint16_t tag, uint64_t v)
{
	uint8_t p[8];

	wr_be32(p, (uint32_t)(v >> 32));
	wr_be32(p + 4, (uint32_t)v);
	return put_tlv(b, P_U64, tag, p, sizeof(p));
}

int wire_put_bool(struct wire_builder *b, uint16_t tag, bool v)
{
	uint8_t u = v ? 1 : 0;

	return put_tlv(b, P_BOOL, tag, &u, 1);
}

int wire_put_str(struct wire_builder *b, uint16_t tag, const char *s)
{
	if (!s)
		return bfail(b, -EINVAL, "tag 0x%04x: NULL string", tag);
	return put_tlv(b, P_STR, tag, s, strlen(s));
}

int wire_put_strn(struct wire_builder *b, uint16_t tag, const char *s, size_t len)
{
	return put_tlv(b, P_STR, tag, s, len);
}

int wire_put_bytes(struct wire_builder *b, uint16_t tag, const void *p, size_t len)
{
	return put_tlv(b, P_BYTES, tag, p, len);
}

int wire_put_codec(struct wire_builder *b, uint16_t tag, const struct wire_codec *c)
{
	uint8_t v[6 + WIRE_MAX_CODEC_NAME];
	size_t n = strnlen(c->name, sizeof(c->name));

	if (n > WIRE_MAX_CODEC_NAME)
		return bfail(b, -EINVAL, "codec name too long");
	v[0] = c->pt;
	v[1] = c->channels;
	wr_be32(v + 2, c->rate);
	memcpy(v + 6, c->name, n);
	return put_tlv(b, P_CODEC, tag, v, 6 + n);
}

int wire_put_raw(struct wire_builder *b, uint16_t tag, const void *val, size_t len)
{
	return put_tlv(b, P_RAW, tag, val, len);
}

static void write_header(struct wire_builder *b)
{
	b->hdr[0] = WIRE_MAGIC0;
	b->hdr[1] = WIRE_MAGIC1;
	b->hdr[2] = WIRE_VERSION;
	b->hdr[3] = b->type;
	wr_be16(b->hdr + 4, b->flags);
	wr_be32(b->hdr + 6, b->req_id);
	wr_be16(b->hdr + 10, (uint32_t)buf_used(&b->body));
}

int wire_builder_finish(struct wire_builder *b)
{
	struct wire_msg *m;
	struct wire_err e;
	int ret;

	if (b->err)
		return b->err;
	if (!type_table[b->type].name || b->type == WIRE_MEDIA || b->type == WIRE_MEDIA_BATCH)
		return bfail(b, -EINVAL, "cannot build message type 0x%02x", b->type);
	write_header(b);
	/* What builds must parse: run the real parser over the result (control plane only). */
	m = malloc(sizeof(*m));
	if (!m)
		return bfail(b, -ENOMEM, "out of memory");
	ret = wire_parse(b->hdr, sizeof(b->hdr), wire_builder_body(b), wire_builder_body_len(b),
			 m, &e);
	free(m);
	if (ret < 0)
		return bfail(b, ret, "%s", e.reason);
	return 0;
}

void wire_builder_set_req_id(struct wire_builder *b, uint32_t req_id)
{
	b->req_id = req_id;
	wr_be32(b->hdr + 6, req_id);
}

void wire_builder_set_flags(struct wire_builder *b, uint16_t flags)
{
	b->flags = flags;
	wr_be16(b->hdr + 4, flags);
}

const uint8_t *wire_builder_body(const struct wire_builder *b)
{
	static const uint8_t empty[1];

	return b->body.data ? buf_head(&b->body) : empty;
}

size_t wire_builder_body_len(const struct wire_builder *b)
{
	return buf_used(&b->body);
}

void wire_builder_free(struct wire_builder *b)
{
	buf_free(&b->body);
	b->n_tlv = 0;
}

int wire_build_error(struct wire_builder *b, uint32_t req_id, int code, uint16_t tag,
		     const char *text)
{
	wire_builder_init(b, WIRE_ERROR, req_id);
	if (code <= 0 || code > 4095)
		code = EIO;
	wire_put_u32(b, WIRE_T_ERR_CODE, (uint32_t)code);
	wire_put_strn(b, WIRE_T_ERR_TEXT, text ? text : "", text ? strnlen(text, WIRE_MAX_STR) : 0);
	if (tag)
		wire_put_u16(b, WIRE_T_ERR_TAG, tag);
	return wire_builder_finish(b);
}

int wire_media_encode(uint8_t *hdr, uint8_t *body, size_t cap, size_t *body_len,
		      const char *leg_id, uint32_t ts, uint8_t flags, const void *payload,
		      size_t len)
{
	size_t idlen = leg_id ? strnlen(leg_id, WIRE_MAX_ID + 1) : 0;
	size_t total = 1 + idlen + 5 + len;

	if (!wire_id_valid(leg_id, idlen))
		return -EINVAL;
	if (len > WIRE_MAX_PAYLOAD || total > cap)
		return -E2BIG;
	body[0] = (uint8_t)idlen;
	memcpy(body + 1, leg_id, idlen);
	wr_be32(body + 1 + idlen, ts);
	body[1 + idlen + 4] = flags;
	if (len)
		memcpy(body + 1 + idlen + 5, payload, len);
	hdr[0] = WIRE_MAGIC0;
	hdr[1] = WIRE_MAGIC1;
	hdr[2] = WIRE_VERSION;
	hdr[3] = WIRE_MEDIA;
	wr_be16(hdr + 4, 0);
	wr_be32(hdr + 6, 0);
	wr_be16(hdr + 10, (uint32_t)total);
	*body_len = total;
	return 0;
}

/* --- MEDIA_BATCH --- */

void wire_media_batch_reset(struct wire_media_batch *b)
{
	b->len = 0;
	b->n = 0;
}

int wire_media_batch_add(struct wire_media_batch *b, const char *leg_id, uint32_t ts,
			 uint8_t flags, const void *payload, size_t len)
{
	uint8_t hdr[WIRE_HDR_LEN];
	size_t rec;
	int ret;

	if (b->len + 2 > sizeof(b->body))
		return -ENOSPC;
	ret = wire_media_encode(hdr, b->body + b->len + 2, sizeof(b->body) - b->len - 2, &rec,
				leg_id, ts, flags, payload, len);
	if (ret == -E2BIG && len <= WIRE_MAX_PAYLOAD)
		return -ENOSPC;
	if (ret < 0)
		return ret;
	wr_be16(b->body + b->len, (uint32_t)rec);
	b->len += 2 + rec;
	b->n++;
	return 0;
}

void wire_media_batch_finish(struct wire_media_batch *b, uint32_t sent_ms)
{
	b->hdr[0] = WIRE_MAGIC0;
	b->hdr[1] = WIRE_MAGIC1;
	b->hdr[2] = WIRE_VERSION;
	b->hdr[3] = WIRE_MEDIA_BATCH;
	wr_be16(b->hdr + 4, 0);
	wr_be32(b->hdr + 6, sent_ms ? sent_ms : 1);
	wr_be16(b->hdr + 10, (uint32_t)b->len);
}

uint64_t wire_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint32_t wire_media_batch_sent_ms(const void *hdr, size_t len)
{
	const uint8_t *h = hdr;

	if (!h || len != WIRE_HDR_LEN || h[3] != WIRE_MEDIA_BATCH)
		return 0;
	return rd_be32(h + 6);
}

#define BACKLOG_WINDOW_MS 30000
#define BACKLOG_RESET_MS  10000

uint32_t wire_backlog_update(struct wire_backlog *bl, uint32_t sent_ms, uint64_t now_ms)
{
	/* Offsets are compared through signed differences: the clocks are unrelated mod 2^32. */
	uint32_t off = (uint32_t)now_ms - sent_ms, base;

	/* Far beyond any queue: the sender is another process now (restarted, maybe on another
	 * host, under the same id). Start over from it. */
	if (bl->have_cur && (int32_t)(off - bl->min_cur) > BACKLOG_RESET_MS)
		bl->have_cur = bl->have_prev = false;
	if (!bl->have_cur || now_ms - bl->window_start >= BACKLOG_WINDOW_MS) {
		bl->min_prev = bl->min_cur;
		bl->have_prev = bl->have_cur;
		bl->min_cur = off;
		bl->have_cur = true;
		bl->window_start = now_ms;
	} else if ((int32_t)(off - bl->min_cur) < 0) {
		bl->min_cur = off;
	}
	base = bl->min_cur;
	if (bl->have_prev && (int32_t)(bl->min_prev - base) < 0)
		base = bl->min_prev;
	return (int32_t)(off - base) > 0 ? off - base : 0;
}

int wire_media_batch_next(const void *hdr, size_t hdr_len, const void *body, size_t body_len,
			  size_t *off, struct wire_media *md, struct wire_err *err)
{
	const uint8_t *b = body;
	struct wire_hdr h;
	size_t rec;
	int ret;

	ret = wire_header_parse(hdr, hdr_len, &h, err);
	if (ret < 0)
		return ret;
	if (err)
		err->can_reply = false;
	if (h.type != WIRE_MEDIA_BATCH)
		return fail(err, EBADMSG, 0, "%s is not MEDIA_BATCH", wire_type_name(h.type));
	if (body_len != h.body_len)
		return fail(err, EBADMSG, 0, "body frame of %zu bytes, header says %u", body_len,
			    h.body_len);
	if (*off >= body_len)
		return 0;
	if (body_len - *off < 2)
		return fail(err, EBADMSG, 0, "MEDIA_BATCH: truncated record length at %zu", *off);
	rec = rd_be16(b + *off);
	if (rec > body_len - *off - 2)
		return fail(err, EBADMSG, 0, "MEDIA_BATCH: record of %zu bytes overruns the body", rec);
	ret = media_body_parse(b + *off + 2, rec, md, err);
	if (ret < 0)
		return ret;
	*off += 2 + rec;
	return 1;
}
