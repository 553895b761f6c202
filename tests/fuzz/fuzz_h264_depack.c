/*
 * fuzz_h264_depack.c - libFuzzer target for the H.264 RTP depacketizer (h264_depack_push) and,
 * on what it gives out, the packetizer (h264_packetize).
 *
 * Input: one config byte, then packets, each framed as
 *   u8  flags: bit 0 marker, bit 1 lost (no payload follows), bit 2 next timestamp
 *   u16 payload length (big-endian), payload
 * Config byte: bits 0-1 the AU buffer (256 B, 4 kB, 64 kB, 1 MiB), bits 2-7 the packetizer's
 * max_payload (3 + 23 * value).
 *
 * Properties beyond "no crash, no leak, no UB": push returns 0, -EBADMSG or -E2BIG; an AU given
 * out fits the buffer, is a whole run of 4-byte-length NAL units of types 1..23 without SPS,
 * PPS, AUD or filler, holds an IDR exactly when it says keyframe; packetizing it again gives
 * payloads of at most max_payload, the marker on the last one only.
 */
#include "h264_rtp.h"

#include <errno.h>
#include <stdlib.h>

#include "fuzz_target.h"

struct fz {
	size_t cap, max_payload;
	int pkts;
	bool marker_seen;
};

static int out_check(void *arg, const uint8_t *p, size_t len, bool marker)
{
	struct fz *f = arg;

	if (len == 0 || len > f->max_payload || len > H264_RTP_MAX_PAYLOAD || f->marker_seen)
		abort();
	f->marker_seen = marker;
	f->pkts++;
	return 0;
}

static void au_check(void *arg, const struct h264_au *au)
{
	struct fz *f = arg;
	size_t pos = 0;
	bool idr = false;
	int r;

	if (au->len == 0 || au->len > f->cap || !au->ps)
		abort();
	while (pos < au->len) {
		size_t n;
		unsigned t;

		if (au->len - pos < 5)
			abort();
		n = (size_t)au->data[pos] << 24 | (size_t)au->data[pos + 1] << 16 |
		    (size_t)au->data[pos + 2] << 8 | au->data[pos + 3];
		if (n == 0 || n > au->len - pos - 4)
			abort();
		t = au->data[pos + 4] & 0x1fu;
		if (t < 1 || t > 23 || t == H264_NAL_SPS || t == H264_NAL_PPS ||
		    t == H264_NAL_AUD || t == H264_NAL_FILLER)
			abort();
		idr |= t == H264_NAL_IDR;
		pos += 4 + n;
	}
	if (idr != au->keyframe)
		abort();
	f->pkts = 0;
	f->marker_seen = false;
	r = h264_packetize(au->data, au->len, 4, au->ps, f->max_payload, out_check, f);
	if (r < 0 || r != f->pkts || (r > 0 && !f->marker_seen))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[] = {256, 4096, 65536, 1 << 20};
	struct h264_depack *d;
	struct fz f = {0};
	uint32_t ts = 1000;
	size_t pos = 1;

	if (size < 1)
		return 0;
	f.cap = caps[data[0] & 3u];
	f.max_payload = 3 + 23 * (size_t)(data[0] >> 2);
	d = h264_depack_new(f.cap);
	if (!d)
		abort();
	while (pos < size) {
		uint8_t flags = data[pos++];
		size_t len = 0;
		int r;

		if (flags & 4u)
			ts += 3000;
		if (flags & 2u) {
			r = h264_depack_push(d, NULL, 0, ts, false, true, au_check, &f);
		} else {
			if (size - pos < 2)
				break;
			len = (size_t)data[pos] << 8 | data[pos + 1];
			pos += 2;
			if (len > size - pos)
				len = size - pos;
			r = h264_depack_push(d, data + pos, len, ts, flags & 1u, false, au_check,
					     &f);
			pos += len;
		}
		if (r != 0 && r != -EBADMSG && r != -E2BIG)
			abort();
	}
	h264_depack_free(&d);
	return 0;
}
