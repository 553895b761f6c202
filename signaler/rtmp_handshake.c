/*
 * rtmp_handshake.c - the server side of the RTMP handshake.
 *
 *              C0 == 3                C1 complete:                   C2 complete
 *   WAIT_C0 -------------> WAIT_C1 --------------------> WAIT_C2 -------------> DONE
 *      |                      |     append S0 S1 S2         |     (C2 checked, never fatal)
 *      | C0 != 3              | (-ENOMEM: stay, retry)      |
 *      v                      | OpenSSL failure             |
 *   FAILED <------------------+-----------------------------+
 *   (-EPROTONOSUPPORT / -EIO; every later call returns the same error)
 *
 * Digest variant (what Flash Player 9+, ffmpeg and librtmp check; the keys and the layout are
 * those of ffmpeg's libavformat/rtmpproto.c, librtmp's handshake.h and nginx-rtmp):
 *   C1 digest = HMAC-SHA256(key = "Genuine Adobe Flash Player 001" (30 bytes),
 *                           C1 without the 32 digest bytes)
 *   S1 digest = HMAC-SHA256(key = "Genuine Adobe Flash Media Server 001" (36 bytes), same idea)
 *   S2 = 1504 random bytes + HMAC-SHA256(key = HMAC-SHA256(FMS text + 32 fixed bytes (68),
 *                                                          C1 digest), S2[0..1503])
 *   C2 = 1504 bytes + HMAC-SHA256(key = HMAC-SHA256(FP text + 32 fixed bytes (62), S1 digest),
 *                                 C2[0..1503])
 * Clients look for S1's digest in both schemes (ffmpeg and librtmp try 772 first, then 8); we
 * place it with the client's own scheme, which is what a strict Flash Player expects. ffmpeg
 * only checks S1/S2 when S1 byte 4 (the server version's first byte) is >= 3.
 */
#include "rtmp_handshake.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define DIGEST_LEN 32
#define SIGNED_LEN (RTMP_HS_SIZE - DIGEST_LEN) /* bytes a digest or a signature covers */

#define FP_TEXT	     "Genuine Adobe Flash Player 001"
#define FMS_TEXT     "Genuine Adobe Flash Media Server 001"
#define FP_TEXT_LEN  (sizeof(FP_TEXT) - 1)
#define FMS_TEXT_LEN (sizeof(FMS_TEXT) - 1)
_Static_assert(FP_TEXT_LEN == 30, "Flash Player key text is 30 bytes");
_Static_assert(FMS_TEXT_LEN == 36, "Flash Media Server key text is 36 bytes");

/* Appended to either text to form the "full" keys (62 and 68 bytes) that key S2 and C2. */
static const uint8_t key_tail[32] = {
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};

#define FULL_KEY_MAX (FMS_TEXT_LEN + sizeof(key_tail))

/* What we claim to be in a digest S1: like FMS 4.5 (first byte >= 3 so that ffmpeg checks us). */
static const uint8_t server_version[4] = {0x04, 0x05, 0x00, 0x01};
/* What the client helper claims: Flash Player 9.0.124.2, as ffmpeg does. */
static const uint8_t client_version[4] = {0x09, 0x00, 0x7C, 0x02};

enum hs_state { HS_WAIT_C0, HS_WAIT_C1, HS_WAIT_C2, HS_DONE, HS_FAILED };

struct rtmp_hs {
	enum hs_state state;
	int err;		   /* negative errno once FAILED */
	char reason[96];	   /* for rtmp_hs_error() */
	size_t have;		   /* bytes of C1 or C2 in pkt */
	uint8_t pkt[RTMP_HS_SIZE]; /* C1 while WAIT_C1, C2 while WAIT_C2 */
	uint8_t s1[RTMP_HS_SIZE];  /* kept to check C2 */
	int scheme;		   /* client's digest scheme, -1 for the simple variant */
	size_t s1_digest_pos;	   /* digest variant: where our S1 digest is */
	uint32_t client_epoch;
	uint32_t client_version;
	bool c2_verified;
};

/* Milliseconds of a monotonic clock, wrapping: the "time" fields of S1 and S2. */
static uint32_t now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static int random_fill(uint8_t *p, size_t n)
{
	return RAND_bytes(p, (int)n) == 1 ? 0 : -EIO;
}

static int hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *data, size_t n,
		       uint8_t md[DIGEST_LEN])
{
	unsigned int mdlen = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen, data, n, md, &mdlen) || mdlen != DIGEST_LEN)
		return -EIO;
	return 0;
}

/* Writes @text followed by key_tail to @dst (FULL_KEY_MAX bytes); returns the key length. */
static size_t full_key(uint8_t dst[FULL_KEY_MAX], const char *text, size_t textlen)
{
	memcpy(dst, text, textlen);
	memcpy(dst + textlen, key_tail, sizeof(key_tail));
	return textlen + sizeof(key_tail);
}

/* HMAC keyed with HMAC(@text + key_tail, @digest): the key of S2's and C2's signatures. */
static int sign_packet(const char *text, size_t textlen, const uint8_t digest[DIGEST_LEN],
		       const uint8_t *data, uint8_t sig[DIGEST_LEN])
{
	uint8_t key[FULL_KEY_MAX], derived[DIGEST_LEN];
	size_t keylen = full_key(key, text, textlen);
	int rc;

	rc = hmac_sha256(key, keylen, digest, DIGEST_LEN, derived);
	if (rc == 0)
		rc = hmac_sha256(derived, sizeof(derived), data, SIGNED_LEN, sig);
	OPENSSL_cleanse(derived, sizeof(derived));
	return rc;
}

/* Offset of the 32-byte digest in a 1536-byte packet for @scheme (0 or 1); always within
 * [12, 739] (scheme 1) or [776, 1503] (scheme 0), so the digest fits in the packet. */
static size_t digest_pos(const uint8_t *p, int scheme)
{
	size_t base = scheme == 0 ? 772 : 8;

	return ((size_t)p[base] + p[base + 1] + p[base + 2] + p[base + 3]) % 728 + base + 4;
}

/* HMAC over the packet with the 32 bytes at @pos left out. */
static int packet_digest(const uint8_t *p, size_t pos, const char *text, size_t textlen,
			 uint8_t md[DIGEST_LEN])
{
	uint8_t msg[SIGNED_LEN];

	memcpy(msg, p, pos);
	memcpy(msg + pos, p + pos + DIGEST_LEN, SIGNED_LEN - pos);
	return hmac_sha256((const uint8_t *)text, textlen, msg, sizeof(msg), md);
}

/* Looks for a valid digest keyed with @text, scheme @first then the other one. Returns 1 and
 * sets *scheme when found, 0 when neither validates, -EIO when OpenSSL fails. */
static int find_digest(const uint8_t *p, const char *text, size_t textlen, int first, int *scheme)
{
	uint8_t md[DIGEST_LEN];
	int i, s, rc;

	for (i = 0; i < 2; i++) {
		s = i == 0 ? first : !first;
		rc = packet_digest(p, digest_pos(p, s), text, textlen, md);
		if (rc < 0)
			return rc;
		if (CRYPTO_memcmp(md, p + digest_pos(p, s), DIGEST_LEN) == 0) {
			*scheme = s;
			return 1;
		}
	}
	return 0;
}

/* Fills @p (1536 bytes): big-endian @time, @version (4 bytes), random; then, when @scheme >= 0,
 * a digest keyed with @text at the scheme's place. */
static int make_challenge(uint8_t *p, uint32_t time, const uint8_t version[4], int scheme,
			  const char *text, size_t textlen)
{
	int rc;

	wr_be32(p, time);
	memcpy(p + 4, version, 4);
	rc = random_fill(p + 8, RTMP_HS_SIZE - 8);
	if (rc == 0 && scheme >= 0) {
		size_t pos = digest_pos(p, scheme);

		rc = packet_digest(p, pos, text, textlen, p + pos);
	}
	return rc;
}

static int fail(struct rtmp_hs *hs, int err, const char *reason)
{
	hs->state = HS_FAILED;
	hs->err = err;
	snprintf(hs->reason, sizeof(hs->reason), "%s", reason);
	return err;
}

/* Copies what is missing of the packet being collected; returns true once it is complete. */
static bool collect(struct rtmp_hs *hs, const uint8_t *in, size_t len, size_t *pos)
{
	size_t n = RTMP_HS_SIZE - hs->have;

	if (n > len - *pos)
		n = len - *pos;
	if (n > 0) {
		memcpy(hs->pkt + hs->have, in + *pos, n);
		hs->have += n;
		*pos += n;
	}
	return hs->have == RTMP_HS_SIZE;
}

/* Why a C0 other than 3 is refused, for the bytes worth naming. */
static const char *const c0_reason[256] = {
    [0x06] = "RTMPE (encrypted RTMP) is not supported",
    [0x08] = "RTMPE (encrypted RTMP) is not supported",
    [0x09] = "RTMPE (encrypted RTMP) is not supported",
    ['<'] = "not RTMP: Flash policy-file request",
    ['G'] = "not RTMP: looks like an HTTP request (RTMPT is not supported)",
    ['P'] = "not RTMP: looks like an HTTP request (RTMPT is not supported)",
    [0x16] = "not RTMP: looks like a TLS handshake (RTMPS is not supported here)",
};

/* Each step returns 1 when it moved to another state, 0 when it needs more input, or a
 * negative errno. */
typedef int (*hs_step)(struct rtmp_hs *hs, const uint8_t *in, size_t len, size_t *pos,
		       struct buf *out);

static int step_c0(struct rtmp_hs *hs, const uint8_t *in, size_t len, size_t *pos, struct buf *out)
{
	uint8_t v;
	char why[sizeof(hs->reason)];

	(void)out;
	if (*pos == len)
		return 0;
	v = in[*pos];
	if (v != 3) {
		if (c0_reason[v])
			return fail(hs, -EPROTONOSUPPORT, c0_reason[v]);
		snprintf(why, sizeof(why), "unsupported RTMP version 0x%02x (only 3 is supported)",
			 v);
		return fail(hs, -EPROTONOSUPPORT, why);
	}
	(*pos)++;
	hs->state = HS_WAIT_C1;
	return 1;
}

/* Builds S1 and S2 for the complete C1 in hs->pkt and appends S0 S1 S2 to @out. */
static int answer_c1(struct rtmp_hs *hs, struct buf *out)
{
	const uint8_t *c1 = hs->pkt;
	uint8_t s2[RTMP_HS_SIZE], c1_digest[DIGEST_LEN];
	static const uint8_t zero[4];
	uint32_t t = now_ms();
	int rc, scheme = -1;

	hs->client_epoch = rd_be32(c1);
	hs->client_version = rd_be32(c1 + 4);
	if (hs->client_version != 0) {
		rc = find_digest(c1, FP_TEXT, FP_TEXT_LEN, 1, &scheme);
		if (rc < 0)
			return rc;
		if (rc == 0)
			scheme = -1; /* a version without a digest: simple handshake */
	}

	if (buf_reserve(out, RTMP_HS_REPLY_SIZE) < 0)
		return -ENOMEM;

	rc = make_challenge(hs->s1, t, scheme >= 0 ? server_version : zero, scheme, FMS_TEXT,
			    FMS_TEXT_LEN);
	if (rc < 0)
		return rc;

	if (scheme >= 0) {
		memcpy(c1_digest, c1 + digest_pos(c1, scheme), DIGEST_LEN);
		rc = random_fill(s2, SIGNED_LEN);
		if (rc == 0)
			rc = sign_packet(FMS_TEXT, FMS_TEXT_LEN, c1_digest, s2, s2 + SIGNED_LEN);
		if (rc < 0)
			return rc;
		hs->s1_digest_pos = digest_pos(hs->s1, scheme);
	} else {
		/* A verbatim echo of C1, as nginx-rtmp and Red5 send: the spec wants our read time
		 * in bytes 4..7, but librtmp compares all 1536 bytes and warns on any difference.
		 */
		memcpy(s2, c1, RTMP_HS_SIZE);
	}
	hs->scheme = scheme;

	/* cannot fail after the reserve above */
	if (buf_put_u8(out, 3) < 0 || buf_append(out, hs->s1, RTMP_HS_SIZE) < 0 ||
	    buf_append(out, s2, RTMP_HS_SIZE) < 0)
		return -ENOMEM;
	return 0;
}

static int step_c1(struct rtmp_hs *hs, const uint8_t *in, size_t len, size_t *pos, struct buf *out)
{
	int rc;

	if (!collect(hs, in, len, pos))
		return 0;
	rc = answer_c1(hs, out);
	if (rc == -ENOMEM) {
		/* C1 stays collected; the next call retries */
		snprintf(hs->reason, sizeof(hs->reason), "out of memory for S0S1S2");
		return rc;
	}
	if (rc < 0)
		return fail(hs, rc, "OpenSSL failed while building S1/S2");
	hs->reason[0] = '\0';
	hs->have = 0;
	hs->state = HS_WAIT_C2;
	return 1;
}

/* Did the client answer as a strict client would? Never fatal. */
static bool check_c2(const struct rtmp_hs *hs)
{
	uint8_t sig[DIGEST_LEN];
	const uint8_t *c2 = hs->pkt;

	if (hs->scheme < 0)
		return memcmp(c2 + 8, hs->s1 + 8, RTMP_HS_SIZE - 8) == 0;
	if (sign_packet(FP_TEXT, FP_TEXT_LEN, hs->s1 + hs->s1_digest_pos, c2, sig) < 0)
		return false;
	return CRYPTO_memcmp(sig, c2 + SIGNED_LEN, DIGEST_LEN) == 0;
}

static int step_c2(struct rtmp_hs *hs, const uint8_t *in, size_t len, size_t *pos, struct buf *out)
{
	(void)out;
	if (!collect(hs, in, len, pos))
		return 0;
	hs->c2_verified = check_c2(hs);
	hs->state = HS_DONE;
	return 1;
}

static const hs_step steps[] = {
    [HS_WAIT_C0] = step_c0,
    [HS_WAIT_C1] = step_c1,
    [HS_WAIT_C2] = step_c2,
};

struct rtmp_hs *rtmp_hs_new(void)
{
	struct rtmp_hs *hs = calloc(1, sizeof(*hs));

	if (!hs)
		return NULL;
	hs->state = HS_WAIT_C0;
	hs->scheme = -1;
	return hs;
}

void rtmp_hs_destroy(struct rtmp_hs **hsp)
{
	if (!hsp || !*hsp)
		return;
	OPENSSL_cleanse(*hsp, sizeof(**hsp));
	free(*hsp);
	*hsp = NULL;
}

int rtmp_hs_feed(struct rtmp_hs *hs, const uint8_t *in, size_t len, size_t *used, struct buf *out)
{
	size_t pos = 0;
	int rc;

	if (used)
		*used = 0;
	if (!hs || !used || !out || (!in && len > 0))
		return -EINVAL;

	for (;;) {
		if (hs->state == HS_DONE) {
			rc = 1;
			break;
		}
		if (hs->state == HS_FAILED) {
			rc = hs->err;
			break;
		}
		rc = steps[hs->state](hs, in, len, &pos, out);
		if (rc <= 0)
			break;
	}
	*used = pos;
	return rc;
}

const char *rtmp_hs_error(const struct rtmp_hs *hs)
{
	return hs ? hs->reason : "";
}

bool rtmp_hs_done(const struct rtmp_hs *hs)
{
	return hs && hs->state == HS_DONE;
}

bool rtmp_hs_is_digest(const struct rtmp_hs *hs)
{
	return hs && hs->scheme >= 0;
}

int rtmp_hs_digest_scheme(const struct rtmp_hs *hs)
{
	return hs ? hs->scheme : -1;
}

uint32_t rtmp_hs_client_epoch(const struct rtmp_hs *hs)
{
	return hs ? hs->client_epoch : 0;
}

uint32_t rtmp_hs_client_version(const struct rtmp_hs *hs)
{
	return hs ? hs->client_version : 0;
}

bool rtmp_hs_c2_verified(const struct rtmp_hs *hs)
{
	return hs && hs->state == HS_DONE && hs->c2_verified;
}

/* ---- client side (tests and tools) ---- */

int rtmp_hs_client_c0c1(struct buf *out, bool digest, int scheme, uint8_t c1[RTMP_HS_SIZE])
{
	static const uint8_t zero[4];
	int rc;

	if (!out || !c1 || (digest && scheme != 0 && scheme != 1))
		return -EINVAL;
	rc = make_challenge(c1, now_ms(), digest ? client_version : zero, digest ? scheme : -1,
			    FP_TEXT, FP_TEXT_LEN);
	if (rc < 0)
		return rc;
	if (buf_reserve(out, 1 + RTMP_HS_SIZE) < 0)
		return -ENOMEM;
	if (buf_put_u8(out, 3) < 0 || buf_append(out, c1, RTMP_HS_SIZE) < 0)
		return -ENOMEM;
	return 0;
}

int rtmp_hs_client_finish(const uint8_t c1[RTMP_HS_SIZE], const uint8_t *s, size_t len,
			  int *server_scheme, struct buf *c2_out)
{
	const uint8_t *s1 = s + 1, *s2 = s + 1 + RTMP_HS_SIZE;
	uint8_t sig[DIGEST_LEN], c2[RTMP_HS_SIZE];
	int rc, cscheme = -1, sscheme = -1;

	if (server_scheme)
		*server_scheme = -1;
	if (!c1 || !s || !c2_out || len < RTMP_HS_REPLY_SIZE)
		return -EINVAL;
	if (s[0] != 3)
		return -EPROTO;

	if (rd_be32(c1 + 4) != 0) {
		rc = find_digest(c1, FP_TEXT, FP_TEXT_LEN, 1, &cscheme);
		if (rc < 0)
			return rc;
		if (rc == 0)
			cscheme = -1;
	}

	if (cscheme < 0 || rd_be32(s1 + 4) == 0) {
		/* simple: S2 echoes C1 except time2 */
		if (memcmp(s2, c1, 4) != 0 || memcmp(s2 + 8, c1 + 8, RTMP_HS_SIZE - 8) != 0)
			return -EPROTO;
		return buf_append(c2_out, s1, RTMP_HS_SIZE);
	}

	rc = find_digest(s1, FMS_TEXT, FMS_TEXT_LEN, 0, &sscheme);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -EPROTO;
	rc = sign_packet(FMS_TEXT, FMS_TEXT_LEN, c1 + digest_pos(c1, cscheme), s2, sig);
	if (rc < 0)
		return rc;
	if (CRYPTO_memcmp(sig, s2 + SIGNED_LEN, DIGEST_LEN) != 0)
		return -EPROTO;

	rc = random_fill(c2, SIGNED_LEN);
	if (rc == 0)
		rc = sign_packet(FP_TEXT, FP_TEXT_LEN, s1 + digest_pos(s1, sscheme), c2,
				 c2 + SIGNED_LEN);
	if (rc < 0)
		return rc;
	if (server_scheme)
		*server_scheme = sscheme;
	return buf_append(c2_out, c2, RTMP_HS_SIZE);
}
