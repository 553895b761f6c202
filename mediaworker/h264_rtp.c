/*
 * h264_rtp.c - FLV AVC headers, RFC 6184 packetization-mode 1 both ways, and decode time for
 * RTMP (h264_rtp.h has the flow and the depacketizer's states).
 *
 *   STAP-A (5.7.1):  [F|NRI|24] then per NAL unit: u16 size, NAL unit
 *   FU-A (5.8):      [F|NRI|28] [S|E|R|type] fragment; the NAL header is rebuilt from
 *                    the indicator's F and NRI and the FU header's type
 */
#include "h264_rtp.h"

#include "buf.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FU_S	 0x80u
#define FU_E	 0x40u
#define NAL_FNRI 0xe0u /* forbidden bit and nal_ref_idc of a NAL header */

/* ---- FLV ---- */

int h264_flv_parse(const uint8_t *p, size_t len, struct h264_flv *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 1)
		return -EBADMSG;
	if (p[0] & 0x80u) { /* Enhanced RTMP: packet type in the low nibble, FourCC after */
		if (len >= 5)
			out->fourcc = rd_be32(p + 1);
		return -EPROTONOSUPPORT;
	}
	out->frame_type = p[0] >> 4;
	out->codec_id = p[0] & 0x0fu;
	if (out->codec_id != H264_FLV_CODEC_AVC)
		return -EPROTONOSUPPORT;
	if (out->frame_type < 1 || out->frame_type > 5)
		return -EBADMSG;
	out->keyframe = out->frame_type == 1;
	if (out->frame_type == 5) { /* one byte of seek information, no AVC header */
		out->command = true;
		out->data = p + 1;
		out->data_len = len - 1;
		return 0;
	}
	if (len < H264_FLV_HDR_LEN || p[1] > H264_FLV_END_OF_SEQUENCE)
		return -EBADMSG;
	out->packet_type = p[1];
	/* SI24: sign-extend the 24-bit value */
	out->cts = (int32_t)(rd_be24(p + 2) ^ 0x800000u) - 0x800000;
	out->data = p + H264_FLV_HDR_LEN;
	out->data_len = len - H264_FLV_HDR_LEN;
	return 0;
}

void h264_flv_header(uint8_t out[H264_FLV_HDR_LEN], bool keyframe, uint8_t packet_type, int32_t cts)
{
	if (cts > 0x7fffff)
		cts = 0x7fffff;
	if (cts < -0x800000)
		cts = -0x800000;
	out[0] = (uint8_t)((keyframe ? 1 : 2) << 4 | H264_FLV_CODEC_AVC);
	out[1] = packet_type;
	wr_be24(out + 2, (uint32_t)cts & 0xffffffu);
}

/* ---- packetizer ---- */

/* Reads the next NAL unit of the AU at *pos: 0 with *nal and *nal_len, 1 at the end, -EBADMSG. */
static int next_nal(const uint8_t *p, size_t len, unsigned ls, size_t *pos, const uint8_t **nal,
		    size_t *nal_len)
{
	size_t n = 0;

	if (*pos == len)
		return 1;
	if (len - *pos < ls)
		return -EBADMSG;
	for (unsigned i = 0; i < ls; i++)
		n = n << 8 | p[*pos + i];
	*pos += ls;
	if (n > len - *pos)
		return -EBADMSG;
	*nal = p + *pos;
	*nal_len = n;
	*pos += n;
	return 0;
}

/* NAL units that go on RTP: the VCL and non-VCL types of 1..23 but AUD and filler. */
static bool nal_sendable(const uint8_t *nal, size_t len)
{
	unsigned t;

	if (!len)
		return false;
	t = h264_nal_type(nal[0]);
	return t >= 1 && t <= 23 && t != H264_NAL_AUD && t != H264_NAL_FILLER;
}

struct pkt_ctx {
	size_t max;
	h264_rtp_out_fn out;
	void *arg;
	int count;
	uint8_t buf[H264_RTP_MAX_PAYLOAD];
};

/* Sends NAL unit @nal alone, or in FU-A fragments when it does not fit. */
static int send_nal(struct pkt_ctx *c, const uint8_t *nal, size_t len, bool last)
{
	size_t off = 1, chunk = c->max - 2;
	int r;

	if (len <= c->max) {
		r = c->out(c->arg, nal, len, last);
		c->count++;
		return r < 0 ? r : 0;
	}
	c->buf[0] = (uint8_t)((nal[0] & NAL_FNRI) | H264_NAL_FU_A);
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		bool end = off + n == len;

		c->buf[1] =
		    (uint8_t)((off == 1 ? FU_S : 0) | (end ? FU_E : 0) | h264_nal_type(nal[0]));
		memcpy(c->buf + 2, nal + off, n);
		r = c->out(c->arg, c->buf, n + 2, last && end);
		c->count++;
		if (r < 0)
			return r;
		off += n;
	}
	return 0;
}

/* Sends the parameter sets of @ps: one STAP-A when they fit, else one by one. */
static int send_params(struct pkt_ctx *c, const struct h264_params *ps)
{
	const uint8_t *set;
	size_t need = 1, n, w = 1;
	uint8_t nri = 0;
	int r;

	for (unsigned i = 0; (set = h264_params_set(ps, i, &n)); i++)
		need += 2 + n;
	if (need > c->max) {
		for (unsigned i = 0; (set = h264_params_set(ps, i, &n)); i++)
			if ((r = send_nal(c, set, n, false)) < 0)
				return r;
		return 0;
	}
	for (unsigned i = 0; (set = h264_params_set(ps, i, &n)); i++) {
		if ((set[0] & 0x60u) > nri)
			nri = set[0] & 0x60u;
		wr_be16(c->buf + w, (uint32_t)n);
		memcpy(c->buf + w + 2, set, n);
		w += 2 + n;
	}
	c->buf[0] = (uint8_t)(nri | H264_NAL_STAP_A);
	r = c->out(c->arg, c->buf, w, false);
	c->count++;
	return r < 0 ? r : 0;
}

int h264_packetize(const uint8_t *nalus, size_t len, unsigned length_size,
		   const struct h264_params *ps_or_null, size_t max_payload, h264_rtp_out_fn out,
		   void *arg)
{
	struct pkt_ctx c;
	const uint8_t *nal;
	size_t pos = 0, n, last_pos = 0;
	bool idr = false, has_sps = false, has_pps = false, any = false;
	int r;

	if ((length_size != 1 && length_size != 2 && length_size != 4) || max_payload < 3)
		return -EINVAL;
	if (len > INT_MAX / 2) /* the packet count must fit the return value */
		return -E2BIG;
	/* check the whole AU first: where its last sent NAL unit starts, what it carries */
	while ((r = next_nal(nalus, len, length_size, &pos, &nal, &n)) == 0) {
		if (!nal_sendable(nal, n))
			continue;
		any = true;
		last_pos = (size_t)(nal - nalus);
		idr |= h264_nal_type(nal[0]) == H264_NAL_IDR;
		has_sps |= h264_nal_type(nal[0]) == H264_NAL_SPS;
		has_pps |= h264_nal_type(nal[0]) == H264_NAL_PPS;
	}
	if (r < 0)
		return r;
	if (!any)
		return 0;
	c.max = max_payload < H264_RTP_MAX_PAYLOAD ? max_payload : H264_RTP_MAX_PAYLOAD;
	c.out = out;
	c.arg = arg;
	c.count = 0;
	if (idr && ps_or_null && ps_or_null->n_sps && ps_or_null->n_pps && !(has_sps && has_pps) &&
	    ps_or_null->n_sps <= H264_MAX_PS && ps_or_null->n_pps <= H264_MAX_PS) {
		r = send_params(&c, ps_or_null);
		if (r < 0)
			return r;
	}
	pos = 0;
	while (next_nal(nalus, len, length_size, &pos, &nal, &n) == 0) {
		if (!nal_sendable(nal, n))
			continue;
		r = send_nal(&c, nal, n, (size_t)(nal - nalus) == last_pos);
		if (r < 0)
			return r;
	}
	return c.count;
}

/* ---- depacketizer ---- */

struct h264_depack {
	size_t cap;
	uint8_t *buf; /* the AU being collected, cap bytes */
	size_t len;
	uint32_t ts;
	bool in_au;	     /* a packet of the AU at ts has come */
	bool broken;	     /* the AU lost something: it will be dropped */
	bool next_broken;    /* a loss between AUs: the next AU may lack its start */
	bool too_big;	     /* the AU outgrew the buffer */
	bool idr;	     /* the AU has an IDR slice */
	bool fu_open;	     /* an FU-A NAL unit is being rebuilt at fu_start */
	size_t fu_start;     /* offset of its 4-byte length */
	bool need_key;	     /* drop non-IDR AUs until an IDR goes out */
	bool params_changed; /* to be said with the next AU that goes out */
	struct h264_params ps;
	struct h264_depack_stats st;
};

struct h264_depack *h264_depack_new(size_t max_au_bytes)
{
	struct h264_depack *d;

	if (max_au_bytes < 64 || max_au_bytes > H264_DEPACK_MAX_AU) {
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->buf = malloc(max_au_bytes);
	if (!d->buf) {
		free(d);
		return NULL;
	}
	d->cap = max_au_bytes;
	d->need_key = true;
	return d;
}

void h264_depack_free(struct h264_depack **dp)
{
	if (!dp || !*dp)
		return;
	free((*dp)->buf);
	free(*dp);
	*dp = NULL;
}

/* Marks the AU broken: a keyframe is needed after it. */
static void au_break(struct h264_depack *d)
{
	d->broken = true;
	d->need_key = true;
}

/* Takes the NAL unit just completed at d->buf + start (its length field first) out of the AU
 * when it is a parameter set, an AUD or filler; notes an IDR. */
static void nal_done(struct h264_depack *d, size_t start)
{
	const uint8_t *nal = d->buf + start + 4;
	size_t n = d->len - start - 4;
	unsigned t = h264_nal_type(nal[0]);
	bool changed = false;

	wr_be32(d->buf + start, (uint32_t)n);
	switch (t) {
	case H264_NAL_SPS:
	case H264_NAL_PPS:
		/* a set that does not parse or does not fit is left out: the decoder would not
		 * get further with it */
		if (h264_params_add(&d->ps, nal, n, &changed) == 0 && changed)
			d->params_changed = true;
		d->len = start;
		break;
	case H264_NAL_AUD:
	case H264_NAL_FILLER:
		d->len = start;
		break;
	case H264_NAL_IDR:
		d->idr = true;
		break;
	default:
		break;
	}
}

/* Appends NAL unit @nal (@n > 0 bytes) whole: 0 or -E2BIG (the AU is too big). */
static int nal_append(struct h264_depack *d, const uint8_t *nal, size_t n)
{
	size_t start = d->len;

	if (d->too_big || n > d->cap - d->len || d->cap - d->len - n < 4) {
		d->too_big = true;
		return -E2BIG;
	}
	memcpy(d->buf + d->len + 4, nal, n);
	d->len += 4 + n;
	nal_done(d, start);
	return 0;
}

static int push_stap_a(struct h264_depack *d, const uint8_t *p, size_t len)
{
	size_t pos = 1;
	int r;

	/* every aggregated unit checked before any is taken */
	if (len < 4)
		return -EBADMSG;
	while (pos < len) {
		size_t n;
		unsigned t;

		if (len - pos < 3)
			return -EBADMSG;
		n = rd_be16(p + pos);
		if (n == 0 || n > len - pos - 2)
			return -EBADMSG;
		t = h264_nal_type(p[pos + 2]);
		if (t < 1 || t > 23)
			return -EBADMSG;
		pos += 2 + n;
	}
	for (pos = 1; pos < len; pos += 2 + rd_be16(p + pos))
		if ((r = nal_append(d, p + pos + 2, rd_be16(p + pos))) < 0)
			return r;
	return 0;
}

static int push_fu_a(struct h264_depack *d, const uint8_t *p, size_t len)
{
	uint8_t fu;
	size_t n;

	if (len < 3)
		return -EBADMSG;
	fu = p[1];
	if ((fu & FU_S) && (fu & FU_E))
		return -EBADMSG; /* a whole NAL unit in one FU is not allowed (5.8) */
	if (h264_nal_type(fu) < 1 || h264_nal_type(fu) > 23)
		return -EBADMSG;
	n = len - 2;
	if (fu & FU_S) {
		if (d->fu_open) { /* the previous one never ended */
			d->len = d->fu_start;
			au_break(d);
		}
		if (d->too_big || d->cap - d->len < 5 + n) {
			d->too_big = true;
			d->fu_open = false;
			return -E2BIG;
		}
		d->fu_start = d->len;
		d->buf[d->len + 4] = (uint8_t)((p[0] & NAL_FNRI) | h264_nal_type(fu));
		memcpy(d->buf + d->len + 5, p + 2, n);
		d->len += 5 + n;
		d->fu_open = true;
		return 0;
	}
	if (!d->fu_open || h264_nal_type(d->buf[d->fu_start + 4]) != h264_nal_type(fu)) {
		/* its start is missing: lost */
		if (d->fu_open)
			d->len = d->fu_start;
		d->fu_open = false;
		au_break(d);
		return 0;
	}
	if (d->cap - d->len < n) {
		d->len = d->fu_start;
		d->fu_open = false;
		d->too_big = true;
		return -E2BIG;
	}
	memcpy(d->buf + d->len, p + 2, n);
	d->len += n;
	if (fu & FU_E) {
		d->fu_open = false;
		nal_done(d, d->fu_start);
	}
	return 0;
}

/* Ends the AU: out through @fn, or dropped. */
static void au_finish(struct h264_depack *d, h264_au_fn fn, void *arg)
{
	if (d->fu_open) { /* its last fragment never came */
		d->len = d->fu_start;
		d->fu_open = false;
		au_break(d);
	}
	if (d->too_big) {
		d->st.too_big++;
		au_break(d);
	}
	if (d->broken) {
		d->st.aus_dropped++;
	} else if (d->len == 0) {
		/* parameter sets only: they wait for the AU they belong to */
	} else if (d->need_key && !d->idr) {
		d->st.aus_dropped++;
	} else {
		struct h264_au au = {
		    .data = d->buf,
		    .len = d->len,
		    .rtp_ts = d->ts,
		    .keyframe = d->idr,
		    .params_changed = d->params_changed,
		    .ps = &d->ps,
		};

		d->st.aus++;
		if (d->idr) {
			d->st.keyframes++;
			d->need_key = false;
		}
		d->params_changed = false;
		fn(arg, &au);
	}
	d->in_au = d->broken = d->too_big = d->idr = false;
	d->len = 0;
}

int h264_depack_push(struct h264_depack *d, const uint8_t *payload, size_t len, uint32_t ts,
		     bool marker, bool lost, h264_au_fn fn, void *arg)
{
	unsigned t;
	int r;

	if (lost) {
		/* it was this AU's (its end at least) or the next one's start: both are suspect
		 * until a packet of this AU's timestamp shows it was this one's */
		if (d->in_au)
			au_break(d);
		d->next_broken = true;
		d->need_key = true;
		return 0;
	}
	d->st.packets++;
	if (d->in_au && ts != d->ts)
		au_finish(d, fn, arg);
	else if (d->in_au)
		d->next_broken = false;
	if (!d->in_au) {
		d->in_au = true;
		d->ts = ts;
		d->broken = d->next_broken;
		d->next_broken = false;
	}
	t = len && payload ? h264_nal_type(payload[0]) : 0;
	if (t >= 1 && t <= 23)
		r = nal_append(d, payload, len);
	else if (t == H264_NAL_STAP_A)
		r = push_stap_a(d, payload, len);
	else if (t == H264_NAL_FU_A)
		r = push_fu_a(d, payload, len);
	else
		r = -EBADMSG; /* empty, 0, STAP-B, MTAP16/24, FU-B, 30, 31 */
	if (r == -EBADMSG) {
		d->st.bad_packets++;
		au_break(d);
	}
	if (marker)
		au_finish(d, fn, arg);
	return r;
}

bool h264_depack_need_keyframe(const struct h264_depack *d)
{
	return d->need_key;
}

int h264_depack_set_params(struct h264_depack *d, const struct h264_params *ps)
{
	const uint8_t *set;
	bool changed;
	size_t n;
	int r;

	for (unsigned i = 0; (set = h264_params_set(ps, i, &n)); i++) {
		r = h264_params_add(&d->ps, set, n, &changed);
		if (r < 0)
			return r;
		if (changed)
			d->params_changed = true;
	}
	return 0;
}

void h264_depack_stats(const struct h264_depack *d, struct h264_depack_stats *out)
{
	*out = d->st;
}

void h264_depack_reset(struct h264_depack *d)
{
	d->in_au = d->broken = d->next_broken = d->too_big = d->idr = d->fu_open = false;
	d->len = 0;
	d->need_key = true;
}

/* ---- decode time ---- */

void h264_dts_init(struct h264_dts *d, unsigned lag_frames)
{
	memset(d, 0, sizeof(*d));
	d->lag_frames = lag_frames < H264_DTS_MAX_REORDER ? lag_frames : H264_DTS_MAX_REORDER;
}

void h264_dts_next(struct h264_dts *d, int64_t pts, int64_t *dts_out, int64_t *cts_out)
{
	int64_t dts, step;

	/* the frame step: the smallest step between presentation times (the guess while few
	 * pictures have shown it: the first step of a stream with B-frames spans several) */
	if (d->started && pts != d->prev_pts) {
		int64_t s = pts > d->prev_pts ? pts - d->prev_pts : d->prev_pts - pts;

		if (s >= H264_DTS_STEP_MIN && (!d->step || s < d->step))
			d->step = s;
	}
	step = d->step && (d->step < H264_DTS_STEP_GUESS || d->n >= H264_DTS_LEARN)
		       ? d->step
		       : H264_DTS_STEP_GUESS;
	/* reordering: a presentation time before the latest one */
	if (!d->started || pts > d->max_pts)
		d->max_pts = pts;
	else if (pts < d->max_pts)
		d->reorders = true;
	if (d->n < H264_DTS_SETTLE)
		d->n++;
	if (!d->started) {
		dts = pts - step * d->lag_frames;
	} else if (!d->reorders && (d->n >= H264_DTS_SETTLE || !d->lag_frames)) {
		dts = pts; /* no B-frames (after all): no lag */
	} else {
		/* one step per picture, never after its presentation, within the bound */
		dts = d->last_dts + step < pts ? d->last_dts + step : pts;
		if (dts < pts - step * (H264_DTS_MAX_REORDER + d->lag_frames))
			dts = pts - step * (H264_DTS_MAX_REORDER + d->lag_frames); /* a gap */
	}
	if (d->started && dts <= d->last_dts)
		dts = d->last_dts + 1; /* strictly increasing, even when cts goes below 0 */
	d->started = true;
	d->prev_pts = pts;
	d->last_dts = dts;
	*dts_out = dts;
	*cts_out = pts - dts;
}
