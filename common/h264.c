/*
 * h264.c - H.264 parameter sets: the AVC configuration record, SPS/PPS ids and picture size,
 * SDP profile-level-id and sprop-parameter-sets (h264.h has the record's layout).
 */
#include "h264.h"

#include "buf.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* ---- RBSP bit reading (ITU-T H.264 7.2, 9.1) ---- */

/* Bits of an RBSP (emulation prevention bytes removed), read MSB first. Reading past the end
 * sets err and yields zeros. */
struct bits {
	const uint8_t *p;
	size_t nbits, pos;
	bool err;
};

static unsigned bits_u1(struct bits *b)
{
	unsigned v;

	if (b->pos >= b->nbits) {
		b->err = true;
		return 0;
	}
	v = (b->p[b->pos >> 3] >> (7 - (b->pos & 7))) & 1u;
	b->pos++;
	return v;
}

/* ue(v): up to 31 leading zeros (values below 2^32 - 1); longer is an error. */
static uint32_t bits_ue(struct bits *b)
{
	unsigned zeros = 0;
	uint32_t v = 0;

	while (!bits_u1(b)) {
		if (b->err || ++zeros > 31) {
			b->err = true;
			return 0;
		}
	}
	for (unsigned i = 0; i < zeros; i++)
		v = v << 1 | bits_u1(b);
	return (uint32_t)((1ull << zeros) - 1 + v);
}

/* se(v), magnitude bounded by bits_ue(). */
static int64_t bits_se(struct bits *b)
{
	uint32_t k = bits_ue(b);

	return (k & 1u) ? (int64_t)(k / 2 + 1) : -(int64_t)(k / 2);
}

/* Copies the payload of NAL unit @nal (after its header byte) into @rbsp (at least @len bytes)
 * without emulation prevention bytes (00 00 03 -> 00 00); returns the RBSP length. */
static size_t nal_to_rbsp(const uint8_t *nal, size_t len, uint8_t *rbsp)
{
	size_t n = 0;
	unsigned zeros = 0;

	for (size_t i = 1; i < len; i++) {
		if (zeros >= 2 && nal[i] == 3) {
			zeros = 0;
			continue;
		}
		zeros = nal[i] ? 0 : zeros + 1;
		rbsp[n++] = nal[i];
	}
	return n;
}

/* ---- SPS / PPS ---- */

/* Skips a scaling_list() of @size coefficients (7.3.2.1.1.1). */
static void skip_scaling_list(struct bits *b, unsigned size)
{
	int64_t last = 8, next = 8;

	for (unsigned j = 0; j < size && !b->err; j++) {
		if (next != 0) {
			int64_t delta = bits_se(b);

			next = ((last + delta) % 256 + 256) % 256;
		}
		last = next == 0 ? last : next;
	}
}

/* Profiles whose SPS carries chroma format, bit depths and scaling matrices (7.3.2.1.1). */
static bool profile_has_chroma_info(unsigned idc)
{
	static const uint8_t high[] = {100, 110, 122, 244, 44,	83, 86,
				       118, 128, 138, 139, 134, 135};

	for (size_t i = 0; i < sizeof(high); i++)
		if (high[i] == idc)
			return true;
	return false;
}

/*
 * Reads seq_parameter_set_id of SPS @nal into *id and, when @w is not NULL, the cropped
 * picture size (0 x 0 when a later field does not parse or the size is out of range).
 * Returns 0 or -EBADMSG (the id does not parse).
 */
static int sps_parse(const uint8_t *nal, size_t len, unsigned *id, uint16_t *w, uint16_t *h)
{
	uint8_t rbsp[H264_MAX_PS_LEN];
	struct bits b = {.p = rbsp};
	unsigned profile, chroma = 1, sep_planes = 0, frame_mbs_only, crop_x, crop_y;
	uint32_t w_mbs, h_map, poc_type, cl = 0, cr = 0, ct = 0, cb = 0;
	uint64_t width, height;

	if (len < 5 || len > H264_MAX_PS_LEN)
		return -EBADMSG;
	b.nbits = nal_to_rbsp(nal, len, rbsp) * 8;
	profile = rbsp[0];
	b.pos = 24;
	*id = bits_ue(&b);
	if (b.err || *id > 31)
		return -EBADMSG;
	if (!w)
		return 0;
	*w = *h = 0;
	if (profile_has_chroma_info(profile)) {
		chroma = bits_ue(&b);
		if (chroma > 3)
			return 0;
		if (chroma == 3)
			sep_planes = bits_u1(&b);
		bits_ue(&b);	   /* bit_depth_luma_minus8 */
		bits_ue(&b);	   /* bit_depth_chroma_minus8 */
		bits_u1(&b);	   /* qpprime_y_zero_transform_bypass_flag */
		if (bits_u1(&b)) { /* seq_scaling_matrix_present_flag */
			for (unsigned i = 0; i < (chroma != 3 ? 8u : 12u) && !b.err; i++)
				if (bits_u1(&b))
					skip_scaling_list(&b, i < 6 ? 16 : 64);
		}
	}
	bits_ue(&b); /* log2_max_frame_num_minus4 */
	poc_type = bits_ue(&b);
	if (poc_type == 0) {
		bits_ue(&b); /* log2_max_pic_order_cnt_lsb_minus4 */
	} else if (poc_type == 1) {
		uint32_t cycle;

		bits_u1(&b); /* delta_pic_order_always_zero_flag */
		bits_se(&b); /* offset_for_non_ref_pic */
		bits_se(&b); /* offset_for_top_to_bottom_field */
		cycle = bits_ue(&b);
		if (cycle > 255)
			return 0;
		for (uint32_t i = 0; i < cycle && !b.err; i++)
			bits_se(&b);
	} else if (poc_type != 2) {
		return 0;
	}
	bits_ue(&b); /* max_num_ref_frames */
	bits_u1(&b); /* gaps_in_frame_num_value_allowed_flag */
	w_mbs = bits_ue(&b);
	h_map = bits_ue(&b);
	frame_mbs_only = bits_u1(&b);
	if (!frame_mbs_only)
		bits_u1(&b); /* mb_adaptive_frame_field_flag */
	bits_u1(&b);	     /* direct_8x8_inference_flag */
	if (bits_u1(&b)) {   /* frame_cropping_flag */
		cl = bits_ue(&b);
		cr = bits_ue(&b);
		ct = bits_ue(&b);
		cb = bits_ue(&b);
	}
	if (b.err)
		return 0;
	/* CropUnitX/Y (7-19..7-22): ChromaArrayType 0 is monochrome or separate planes */
	if (sep_planes || chroma == 0) {
		crop_x = 1;
		crop_y = 2 - frame_mbs_only;
	} else {
		crop_x = chroma == 3 ? 1 : 2;
		crop_y = (chroma == 1 ? 2 : 1) * (2 - frame_mbs_only);
	}
	width = ((uint64_t)w_mbs + 1) * 16;
	height = ((uint64_t)h_map + 1) * 16 * (2 - frame_mbs_only);
	if ((uint64_t)crop_x * ((uint64_t)cl + cr) >= width ||
	    (uint64_t)crop_y * ((uint64_t)ct + cb) >= height)
		return 0;
	width -= (uint64_t)crop_x * ((uint64_t)cl + cr);
	height -= (uint64_t)crop_y * ((uint64_t)ct + cb);
	if (width > UINT16_MAX || height > UINT16_MAX)
		return 0;
	*w = (uint16_t)width;
	*h = (uint16_t)height;
	return 0;
}

/* Reads pic_parameter_set_id of PPS @nal into *id: 0 or -EBADMSG. */
static int pps_parse(const uint8_t *nal, size_t len, unsigned *id)
{
	uint8_t rbsp[H264_MAX_PS_LEN];
	struct bits b = {.p = rbsp};

	if (len < 2 || len > H264_MAX_PS_LEN)
		return -EBADMSG;
	b.nbits = nal_to_rbsp(nal, len, rbsp) * 8;
	*id = bits_ue(&b);
	if (b.err || *id > 255)
		return -EBADMSG;
	bits_ue(&b); /* seq_parameter_set_id: must be readable too */
	return b.err ? -EBADMSG : 0;
}

/* Profile, level and size from the first SPS. */
static void params_refresh(struct h264_params *ps)
{
	unsigned id;

	ps->profile_idc = ps->constraints = ps->level_idc = 0;
	ps->width = ps->height = 0;
	if (!ps->n_sps)
		return;
	ps->profile_idc = ps->sps[0][1];
	ps->constraints = ps->sps[0][2];
	ps->level_idc = ps->sps[0][3];
	sps_parse(ps->sps[0], ps->sps_len[0], &id, &ps->width, &ps->height);
}

int h264_params_add(struct h264_params *ps, const uint8_t *nal, size_t len, bool *changed)
{
	unsigned type, id, other, *n;
	uint16_t *lens;
	uint8_t(*sets)[H264_MAX_PS_LEN];
	unsigned i;
	int r;

	if (changed)
		*changed = false;
	if (!len)
		return -EBADMSG;
	if (len > H264_MAX_PS_LEN)
		return -E2BIG;
	type = h264_nal_type(nal[0]);
	if (type == H264_NAL_SPS) {
		r = sps_parse(nal, len, &id, NULL, NULL);
		n = &ps->n_sps;
		lens = ps->sps_len;
		sets = ps->sps;
	} else if (type == H264_NAL_PPS) {
		r = pps_parse(nal, len, &id);
		n = &ps->n_pps;
		lens = ps->pps_len;
		sets = ps->pps;
	} else {
		return -EBADMSG;
	}
	if (r < 0)
		return r;
	for (i = 0; i < *n; i++) {
		int rr = type == H264_NAL_SPS ? sps_parse(sets[i], lens[i], &other, NULL, NULL)
					      : pps_parse(sets[i], lens[i], &other);

		if (rr == 0 && other == id)
			break;
	}
	if (i == *n) {
		if (*n >= H264_MAX_PS)
			return -E2BIG;
		(*n)++;
	} else if (lens[i] == len && memcmp(sets[i], nal, len) == 0) {
		return 0;
	}
	memcpy(sets[i], nal, len);
	lens[i] = (uint16_t)len;
	if (changed)
		*changed = true;
	if (type == H264_NAL_SPS && i == 0)
		params_refresh(ps);
	return 0;
}

const uint8_t *h264_params_set(const struct h264_params *ps, unsigned i, size_t *len)
{
	unsigned ns = ps->n_sps < H264_MAX_PS ? ps->n_sps : H264_MAX_PS;
	unsigned np = ps->n_pps < H264_MAX_PS ? ps->n_pps : H264_MAX_PS;

	if (i < ns) {
		*len = ps->sps_len[i];
		return ps->sps[i];
	}
	if (i - ns < np) {
		*len = ps->pps_len[i - ns];
		return ps->pps[i - ns];
	}
	*len = 0;
	return NULL;
}

/* ---- AVCDecoderConfigurationRecord ---- */

/* Reads @count sets of NAL type @type at *p (*left bytes) into @ps. */
static int avcc_sets(const uint8_t **p, size_t *left, unsigned count, unsigned type,
		     struct h264_params *ps)
{
	if (count == 0)
		return -EBADMSG;
	if (count > H264_MAX_PS)
		return -E2BIG;
	for (unsigned i = 0; i < count; i++) {
		size_t n;
		int r;

		if (*left < 2)
			return -EBADMSG;
		n = rd_be16(*p);
		if (n == 0 || n > *left - 2 || h264_nal_type((*p)[2]) != type)
			return -EBADMSG;
		r = h264_params_add(ps, *p + 2, n, NULL);
		if (r < 0)
			return r;
		*p += 2 + n;
		*left -= 2 + n;
	}
	return 0;
}

int h264_avcc_parse(const uint8_t *p, size_t len, struct h264_params *out)
{
	size_t left;
	unsigned ls, count;
	int r;

	memset(out, 0, sizeof(*out));
	if (len < 6 || p[0] != 1)
		return -EBADMSG;
	ls = (p[4] & 3u) + 1;
	if (ls == 3)
		return -EBADMSG;
	out->length_size = (uint8_t)ls;
	count = p[5] & 0x1fu;
	p += 6;
	left = len - 6;
	r = avcc_sets(&p, &left, count, H264_NAL_SPS, out);
	if (r < 0)
		return r;
	if (left < 1)
		return -EBADMSG;
	count = p[0];
	p++;
	left--;
	return avcc_sets(&p, &left, count, H264_NAL_PPS, out);
}

int h264_avcc_build(const struct h264_params *ps, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t need = 7;
	uint8_t *w = out;

	if (!ps->n_sps || !ps->n_pps || ps->n_sps > H264_MAX_PS || ps->n_pps > H264_MAX_PS)
		return -EINVAL;
	for (unsigned i = 0; i < ps->n_sps; i++)
		need += 2 + (size_t)ps->sps_len[i];
	for (unsigned i = 0; i < ps->n_pps; i++)
		need += 2 + (size_t)ps->pps_len[i];
	if (need > cap)
		return -ENOBUFS;
	*w++ = 1;
	memcpy(w, &ps->sps[0][1], 3); /* profile, compatibility, level */
	w += 3;
	*w++ = 0xfc | 3; /* 4-byte NALU lengths */
	*w++ = (uint8_t)(0xe0 | ps->n_sps);
	for (unsigned i = 0; i < ps->n_sps; i++) {
		wr_be16(w, ps->sps_len[i]);
		memcpy(w + 2, ps->sps[i], ps->sps_len[i]);
		w += 2 + ps->sps_len[i];
	}
	*w++ = (uint8_t)ps->n_pps;
	for (unsigned i = 0; i < ps->n_pps; i++) {
		wr_be16(w, ps->pps_len[i]);
		memcpy(w + 2, ps->pps[i], ps->pps_len[i]);
		w += 2 + ps->pps_len[i];
	}
	*outlen = (size_t)(w - out);
	return 0;
}

/* ---- SDP: profile-level-id, profile families, sprop-parameter-sets ---- */

bool h264_profile_level_id(const struct h264_params *ps, char out[7])
{
	out[0] = '\0';
	if (!ps->n_sps)
		return false;
	snprintf(out, 7, "%02x%02x%02x", ps->profile_idc, ps->constraints, ps->level_idc);
	return true;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int h264_profile_level_id_parse(const char *s, uint8_t *profile_idc, uint8_t *constraints,
				uint8_t *level_idc)
{
	uint8_t v[3];

	if (!s || strlen(s) != 6)
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		v[i] = (uint8_t)(hi << 4 | lo);
	}
	*profile_idc = v[0];
	*constraints = v[1];
	*level_idc = v[2];
	return 0;
}

/* RFC 6184 table 5: profile_idc and the profile-iop pattern over constraint_set0..3 (bits
 * 7..4 of the constraint byte); the first row that matches names the family. */
static const struct {
	uint8_t idc, mask, value;
	enum h264_profile profile;
} profile_table[] = {
    {0x42, 0x40, 0x40, H264_PROFILE_CONSTRAINED_BASELINE}, /* x1xx */
    {0x4d, 0x80, 0x80, H264_PROFILE_CONSTRAINED_BASELINE}, /* 1xxx */
    {0x58, 0xc0, 0xc0, H264_PROFILE_CONSTRAINED_BASELINE}, /* 11xx */
    {0x42, 0x40, 0x00, H264_PROFILE_BASELINE},		   /* x0xx */
    {0x58, 0xc0, 0x80, H264_PROFILE_BASELINE},		   /* 10xx */
    {0x4d, 0xa0, 0x00, H264_PROFILE_MAIN},		   /* 0x0x */
    {0x58, 0xc0, 0x00, H264_PROFILE_EXTENDED},		   /* 00xx */
    {0x64, 0xf0, 0x00, H264_PROFILE_HIGH},
    {0x6e, 0xf0, 0x00, H264_PROFILE_HIGH10},
    {0x7a, 0xf0, 0x00, H264_PROFILE_HIGH422},
    {0xf4, 0xf0, 0x00, H264_PROFILE_HIGH444},
    {0x6e, 0xf0, 0x10, H264_PROFILE_HIGH10_INTRA},
    {0x7a, 0xf0, 0x10, H264_PROFILE_HIGH422_INTRA},
    {0xf4, 0xf0, 0x10, H264_PROFILE_HIGH444_INTRA},
    {0x2c, 0xf0, 0x10, H264_PROFILE_CAVLC444_INTRA},
};

enum h264_profile h264_profile_of(uint8_t profile_idc, uint8_t constraints)
{
	for (size_t i = 0; i < sizeof(profile_table) / sizeof(profile_table[0]); i++)
		if (profile_table[i].idc == profile_idc &&
		    (constraints & profile_table[i].mask) == profile_table[i].value)
			return profile_table[i].profile;
	return H264_PROFILE_UNKNOWN;
}

const char *h264_profile_name(enum h264_profile p)
{
	static const char *const names[] = {
	    [H264_PROFILE_UNKNOWN] = "unknown",
	    [H264_PROFILE_CONSTRAINED_BASELINE] = "constrained-baseline",
	    [H264_PROFILE_BASELINE] = "baseline",
	    [H264_PROFILE_MAIN] = "main",
	    [H264_PROFILE_EXTENDED] = "extended",
	    [H264_PROFILE_HIGH] = "high",
	    [H264_PROFILE_HIGH10] = "high10",
	    [H264_PROFILE_HIGH422] = "high422",
	    [H264_PROFILE_HIGH444] = "high444",
	    [H264_PROFILE_HIGH10_INTRA] = "high10-intra",
	    [H264_PROFILE_HIGH422_INTRA] = "high422-intra",
	    [H264_PROFILE_HIGH444_INTRA] = "high444-intra",
	    [H264_PROFILE_CAVLC444_INTRA] = "cavlc444-intra",
	};

	if ((unsigned)p >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[p];
}

/* base64 characters of @n bytes, padding included */
#define B64_LEN(n) (((n) + 2) / 3 * 4)

/* Appends base64 of @n bytes at @p to @out (cap @cap, used *pos), then NUL: 0 or -ENOBUFS. */
static int b64_put(char *out, size_t cap, size_t *pos, const uint8_t *p, size_t n)
{
	if (cap - *pos < B64_LEN(n) + 1)
		return -ENOBUFS;
	EVP_EncodeBlock((unsigned char *)out + *pos, p, (int)n);
	*pos += B64_LEN(n);
	return 0;
}

int h264_sprop_build(const struct h264_params *ps, char *out, size_t cap)
{
	const uint8_t *set;
	size_t pos = 0, n;
	int r = 0;

	if (!ps->n_sps || !ps->n_pps || ps->n_sps > H264_MAX_PS || ps->n_pps > H264_MAX_PS)
		return -EINVAL;
	if (cap == 0)
		return -ENOBUFS;
	for (unsigned i = 0; r == 0 && (set = h264_params_set(ps, i, &n)); i++) {
		if (i > 0 && cap - pos < 2)
			r = -ENOBUFS;
		else if (i > 0)
			out[pos++] = ',';
		if (r == 0)
			r = b64_put(out, cap, &pos, set, n);
	}
	if (r < 0)
		out[0] = '\0';
	return r;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Decodes one base64 item of @n characters into @out (H264_MAX_PS_LEN + 2 bytes): its length,
 * -EINVAL (not canonical base64) or -E2BIG. */
static int b64_item(const char *s, size_t n, uint8_t *out)
{
	size_t pad = 0;
	int got;

	if (n == 0 || n % 4)
		return -EINVAL;
	if (n > B64_LEN(H264_MAX_PS_LEN))
		return -E2BIG;
	while (pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++)
		if (!b64_char(s[i]))
			return -EINVAL;
	got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (got < 0 || (size_t)got < pad)
		return -EINVAL;
	return got - (int)pad;
}

int h264_sprop_parse(const char *s, size_t len, struct h264_params *ps, bool *changed)
{
	uint8_t nal[H264_MAX_PS_LEN + 2];
	size_t start = 0;

	if (changed)
		*changed = false;
	while (start <= len) {
		size_t end = start;
		bool ch;
		int n, r;

		while (end < len && s[end] != ',')
			end++;
		n = b64_item(s + start, end - start, nal);
		if (n < 0)
			return n;
		r = h264_params_add(ps, nal, (size_t)n, &ch);
		if (r < 0)
			return r;
		if (changed && ch)
			*changed = true;
		start = end + 1;
	}
	return 0;
}
