/*
 * fuzz_rtp_input.c - libFuzzer target for the RTP leg's input path (rtp_leg_input_packet and
 * rtp_leg_input_rtcp_packet): header validation, latching, SRTP/SRTCP unprotect, padding,
 * RTCP compound checks, the oRTP parser and jitter buffer behind them, DTMF parsing.
 *
 * Input: one flags byte, then the datagram.
 *   bits 0-1  leg: 0 plain RTP, 1 SRTP _80, 2 SRTP _32, 3 plain RTP
 *   bit 2     RTCP instead of RTP
 *   bit 3     on the SRTP legs, protect the datagram with the peer's real key first (its SSRC
 *             forced to the harness's), so the paths after authentication get exercised
 *   bit 4     send from a second source address, not the signalled one (a third party, or a
 *             peer behind NAT: strict latching's guard and learning runs)
 *   bit 5     pull three frames afterwards (jitter buffer, payload extraction)
 *   bit 6     forget the remote and signal it again first, which releases the latch
 *
 * Properties beyond "no crash, no leak, no UB": a rejected datagram returns a negative errno;
 * a pulled payload fits the buffer given.
 */
#include "evloop.h"
#include "port_pool.h"
#include "rtp_leg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <srtp2/srtp.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"

#define HARNESS_SSRC 0x12345678u

static const char *KEY_LEG = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
static const char *KEY_PEER = "Y5n0Pi8VUv8CsLqGzjAqFQpYH5wJPmHfzaJ+WuQq";

static struct evloop *loop;
static struct port_pool *pool;
static struct rtp_leg *legs[3];
static srtp_t peer_tx[3];
static struct sockaddr_in src_a, src_b;

static void b64_decode30(const char *in, uint8_t out[30])
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t acc = 0;
	size_t n = 0;

	for (size_t i = 0; i < 40; i++) {
		acc = acc << 6 | (uint32_t)(strchr(t, in[i]) - t);
		if (i % 4 == 3) {
			out[n++] = (uint8_t)(acc >> 16);
			out[n++] = (uint8_t)(acc >> 8);
			out[n++] = (uint8_t)acc;
			acc = 0;
		}
	}
}

static void peer_ctx(srtp_t *ctx, bool tag32)
{
	srtp_policy_t pol;
	uint8_t key[30];

	b64_decode30(KEY_PEER, key);
	memset(&pol, 0, sizeof(pol));
	if (tag32)
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&pol.rtp);
	else
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtp);
	srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtcp);
	pol.ssrc.type = ssrc_specific;
	pol.ssrc.value = HARNESS_SSRC;
	pol.key = key;
	pol.window_size = 128;
	pol.allow_repeat_tx = 1;
	if (srtp_create(ctx, &pol) != srtp_err_status_ok)
		abort();
}

static void setup(void)
{
	struct rtp_leg_params p;

	loop = evloop_new();
	pool = port_pool_new(58000, 58399);
	if (!loop || !pool)
		abort();
	for (int i = 0; i < 3; i++) {
		rtp_leg_params_init(&p);
		p.loop = loop;
		p.pool = pool;
		p.sid = "fuzz";
		p.bind_ip = "127.0.0.1";
		p.remote_ip = "127.0.0.1";
		p.remote_port = 9; /* discard: what we send goes nowhere; also source A */
		if (i) {
			p.srtp_suite = i == 1 ? RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80
					      : RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_32;
			p.local_key = KEY_LEG;
			p.remote_key = KEY_PEER;
		}
		legs[i] = rtp_leg_new(&p);
		if (!legs[i])
			abort();
	}
	/* srtp_init() has run inside rtp_leg_new() */
	peer_ctx(&peer_tx[1], false);
	peer_ctx(&peer_tx[2], true);
	src_a = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(9)};
	src_a.sin_addr.s_addr = htonl(0x7f000001);
	src_b = src_a;
	src_b.sin_port = htons(40002);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_Alignas(8) uint8_t pkt[2048 + 64];
	uint8_t flags, out[1500];
	unsigned which;
	bool rtcp;
	const struct sockaddr *from;
	size_t len;
	int r;

	if (!loop)
		setup();
	if (size < 1 || size - 1 > 2048)
		return 0;
	flags = data[0];
	which = (flags & 3u) == 3u ? 0 : flags & 3u;
	rtcp = flags & 4u;
	len = size - 1;
	memcpy(pkt, data + 1, len);
	from = (const struct sockaddr *)((flags & 16u) ? &src_b : &src_a);
	if (flags & 64u) {
		rtp_leg_set_remote(legs[which], NULL, 0, 0);
		rtp_leg_set_remote(legs[which], "127.0.0.1", 9, 0);
	}

	if ((flags & 8u) && which) {
		int l = (int)len;

		if (!rtcp && len >= 12) {
			pkt[8] = (uint8_t)(HARNESS_SSRC >> 24);
			pkt[9] = (uint8_t)(HARNESS_SSRC >> 16);
			pkt[10] = (uint8_t)(HARNESS_SSRC >> 8);
			pkt[11] = (uint8_t)HARNESS_SSRC;
			if (srtp_protect(peer_tx[which], pkt, &l) == srtp_err_status_ok)
				len = (size_t)l;
		} else if (rtcp && len >= 8) {
			pkt[4] = (uint8_t)(HARNESS_SSRC >> 24);
			pkt[5] = (uint8_t)(HARNESS_SSRC >> 16);
			pkt[6] = (uint8_t)(HARNESS_SSRC >> 8);
			pkt[7] = (uint8_t)HARNESS_SSRC;
			if (srtp_protect_rtcp(peer_tx[which], pkt, &l) == srtp_err_status_ok)
				len = (size_t)l;
		}
	}
	r = rtcp ? rtp_leg_input_rtcp_packet(legs[which], pkt, len, from, sizeof(src_a))
		 : rtp_leg_input_packet(legs[which], pkt, len, from, sizeof(src_a));
	if (r > 0)
		abort();
	if (flags & 32u) {
		for (int i = 0; i < 3; i++) {
			size_t n = sizeof(out);
			bool lost;

			if (rtp_leg_pull(legs[which], out, &n, &lost) == 0 && n > sizeof(out))
				abort();
		}
	}
	evloop_run_once(loop, 0); /* timers: RTCP, stale DTMF */
	return 0;
}
