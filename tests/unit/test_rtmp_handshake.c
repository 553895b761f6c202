/*
 * test_rtmp_handshake.c - the server RTMP handshake: simple and digest variants, fragmentation,
 * refusals. The digest checks below are written independently of rtmp_handshake.c (their own
 * keys and offsets, OpenSSL HMAC directly): they are what Flash Player / ffmpeg check.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.h"
#include "rtmp_handshake.h"

#define HS RTMP_HS_SIZE

static const char fms_text[] = "Genuine Adobe Flash Media Server 001";
static const char fp_text[] = "Genuine Adobe Flash Player 001";
static const uint8_t fixed32[32] = {
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE};

static void hmac256(const void *key, size_t klen, const void *data, size_t n, uint8_t md[32])
{
	unsigned int l = 0;

	HMAC(EVP_sha256(), key, (int)klen, data, n, md, &l);
}

/* Digest offset, scheme 0 = base 772, scheme 1 = base 8. */
static size_t t_offset(const uint8_t *p, int scheme)
{
	size_t b = scheme == 0 ? 772 : 8;

	return (p[b] + p[b + 1] + p[b + 2] + p[b + 3]) % 728 + b + 4;
}

/* True when the 32 bytes at the scheme's offset are HMAC(@text, packet minus those bytes). */
static int t_digest_ok(const uint8_t *p, int scheme, const char *text)
{
	uint8_t msg[HS - 32], md[32];
	size_t off = t_offset(p, scheme);

	memcpy(msg, p, off);
	memcpy(msg + off, p + off + 32, HS - 32 - off);
	hmac256(text, strlen(text), msg, sizeof(msg), md);
	return memcmp(md, p + off, 32) == 0;
}

/* True when @pkt ends with HMAC(HMAC(@text + fixed32, @digest), pkt[0..1503]). */
static int t_signature_ok(const uint8_t *pkt, const char *text, const uint8_t *digest)
{
	uint8_t key[68], k2[32], sig[32];
	size_t tl = strlen(text);

	memcpy(key, text, tl);
	memcpy(key + tl, fixed32, 32);
	hmac256(key, tl + 32, digest, 32, k2);
	hmac256(k2, 32, pkt, HS - 32, sig);
	return memcmp(sig, pkt + HS - 32, 32) == 0;
}

static void test_simple(void)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf cli = {0}, out = {0}, c2 = {0};
	uint8_t c1[HS];
	const uint8_t *s;
	size_t used = 99;
	int scheme = 7;

	CHECK(hs);
	CHECK_EQ_INT(rtmp_hs_client_c0c1(&cli, false, 0, c1), 0);
	CHECK_EQ_INT(buf_used(&cli), 1 + HS);
	CHECK_EQ_INT(rd_be32(c1 + 4), 0);

	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&cli), buf_used(&cli), &used, &out), 0);
	CHECK_EQ_INT(used, 1 + HS);
	CHECK_EQ_INT(buf_used(&out), 1 + 2 * HS);
	s = buf_head(&out);
	CHECK_EQ_INT(s[0], 3);
	CHECK_EQ_INT(rd_be32(s + 1 + 4), 0);	/* S1 zero field */
	CHECK(memcmp(s + 1 + HS, c1, HS) == 0); /* S2 = C1 verbatim (librtmp compares it all) */
	CHECK(!rtmp_hs_is_digest(hs));
	CHECK_EQ_INT(rtmp_hs_digest_scheme(hs), -1);
	CHECK_EQ_INT(rtmp_hs_client_epoch(hs), rd_be32(c1));
	CHECK(!rtmp_hs_done(hs));

	CHECK_EQ_INT(rtmp_hs_client_finish(c1, buf_head(&out), buf_used(&out), &scheme, &c2), 0);
	CHECK_EQ_INT(scheme, -1);
	CHECK_EQ_INT(buf_used(&c2), HS);
	/* C2 followed by the first bytes of the chunk stream */
	CHECK_EQ_INT(buf_append(&c2, "\x03\x00\x00\x00\x00", 5), 0);
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&c2), buf_used(&c2), &used, &out), 1);
	CHECK_EQ_INT(used, HS);
	CHECK(rtmp_hs_done(hs));
	CHECK(rtmp_hs_c2_verified(hs));
	CHECK_EQ_INT(buf_used(&out), 1 + 2 * HS); /* nothing more appended */
	CHECK_EQ_STR(rtmp_hs_error(hs), "");

	/* later calls: still done, nothing consumed */
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&c2), 5, &used, &out), 1);
	CHECK_EQ_INT(used, 0);

	rtmp_hs_destroy(&hs);
	CHECK(hs == NULL);
	rtmp_hs_destroy(&hs);
	rtmp_hs_destroy(NULL);
	buf_free(&cli);
	buf_free(&out);
	buf_free(&c2);
}

/* C0 C1 C2 and trailing bytes in one call; a C2 that echoes nothing is accepted. */
static void test_simple_one_call(void)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf cli = {0}, out = {0};
	uint8_t c1[HS], junk[HS + 7];
	size_t used = 0;

	memset(junk, 0xA5, sizeof(junk));
	CHECK_EQ_INT(rtmp_hs_client_c0c1(&cli, false, 0, c1), 0);
	CHECK_EQ_INT(buf_append(&cli, junk, sizeof(junk)), 0);
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&cli), buf_used(&cli), &used, &out), 1);
	CHECK_EQ_INT(used, 1 + 2 * HS);
	CHECK_EQ_INT(buf_used(&out), 1 + 2 * HS);
	CHECK(rtmp_hs_done(hs));
	CHECK(!rtmp_hs_c2_verified(hs));
	rtmp_hs_destroy(&hs);
	buf_free(&cli);
	buf_free(&out);
}

/* A C1 with a version but no digest (many clients): simple answer, not an error. */
static void test_version_without_digest(void)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf out = {0};
	uint8_t in[1 + HS];
	size_t used = 0, i;
	const uint8_t *s;

	in[0] = 3;
	wr_be32(in + 1, 1234);
	wr_be32(in + 5, 0x0A002D02);
	for (i = 9; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7);
	CHECK_EQ_INT(rtmp_hs_feed(hs, in, sizeof(in), &used, &out), 0);
	CHECK_EQ_INT(used, sizeof(in));
	CHECK_EQ_INT(buf_used(&out), 1 + 2 * HS);
	CHECK(!rtmp_hs_is_digest(hs));
	CHECK_EQ_INT(rtmp_hs_client_version(hs), 0x0A002D02);
	CHECK_EQ_INT(rtmp_hs_client_epoch(hs), 1234);
	s = buf_head(&out);
	CHECK_EQ_INT(rd_be32(s + 5), 0);
	CHECK(memcmp(s + 1 + HS + 8, in + 1 + 8, HS - 8) == 0);
	rtmp_hs_destroy(&hs);
	buf_free(&out);
}

static void digest_round(int cscheme, size_t piece)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf cli = {0}, out = {0}, c2 = {0};
	uint8_t c1[HS];
	const uint8_t *s1, *s2;
	size_t used, off, n;
	int rc = 0, sscheme = 7;

	CHECK_EQ_INT(rtmp_hs_client_c0c1(&cli, true, cscheme, c1), 0);
	CHECK(t_digest_ok(c1, cscheme, fp_text));
	CHECK(rd_be32(c1 + 4) != 0);

	for (off = 0; off < buf_used(&cli); off += used) {
		n = buf_used(&cli) - off < piece ? buf_used(&cli) - off : piece;
		rc = rtmp_hs_feed(hs, buf_head(&cli) + off, n, &used, &out);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(used, n);
		if (off + n < buf_used(&cli))
			CHECK_EQ_INT(buf_used(&out), 0); /* nothing before C1 is whole */
		if (rc != 0)
			break;
	}
	CHECK_EQ_INT(buf_used(&out), 1 + 2 * HS);
	CHECK(rtmp_hs_is_digest(hs));
	CHECK_EQ_INT(rtmp_hs_digest_scheme(hs), cscheme);
	CHECK_EQ_INT(rtmp_hs_client_version(hs), 0x09007C02);

	/* what a Flash client checks */
	s1 = buf_head(&out) + 1;
	s2 = s1 + HS;
	CHECK_EQ_INT(s1[-1], 3);
	CHECK(s1[4] >= 3); /* ffmpeg only verifies a server whose version byte is >= 3 */
	CHECK(t_digest_ok(s1, cscheme, fms_text));
	CHECK(!t_digest_ok(s1, !cscheme, fms_text));
	CHECK(t_signature_ok(s2, fms_text, c1 + t_offset(c1, cscheme)));

	/* our client helper agrees and signs C2 */
	CHECK_EQ_INT(rtmp_hs_client_finish(c1, buf_head(&out), buf_used(&out), &sscheme, &c2), 0);
	CHECK_EQ_INT(sscheme, cscheme);
	CHECK_EQ_INT(buf_used(&c2), HS);
	CHECK(t_signature_ok(buf_head(&c2), fp_text, s1 + t_offset(s1, cscheme)));
	CHECK_EQ_INT(buf_append(&c2, "\x02\x00", 2), 0);

	for (off = 0; off < buf_used(&c2); off += used) {
		n = buf_used(&c2) - off < piece ? buf_used(&c2) - off : piece;
		rc = rtmp_hs_feed(hs, buf_head(&c2) + off, n, &used, &out);
		if (rc != 0)
			break;
		CHECK_EQ_INT(used, n);
	}
	CHECK_EQ_INT(rc, 1);
	CHECK_EQ_INT(off + used, HS); /* the 2 trailing bytes are left */
	CHECK(rtmp_hs_done(hs));
	CHECK(rtmp_hs_c2_verified(hs));
	CHECK_EQ_INT(buf_used(&out), 1 + 2 * HS);

	rtmp_hs_destroy(&hs);
	buf_free(&cli);
	buf_free(&out);
	buf_free(&c2);
}

static void test_digest_scheme0(void)
{
	digest_round(0, SIZE_MAX);
}

static void test_digest_scheme1(void)
{
	digest_round(1, SIZE_MAX);
}

static void test_byte_at_a_time(void)
{
	digest_round(0, 1);
	digest_round(1, 1);
	digest_round(1, 7);
	digest_round(0, 1000);
}

/* ffmpeg publishing sends a digest C1 but echoes S1 as C2: accepted, not verified. */
static void test_digest_lax_c2(void)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf cli = {0}, out = {0};
	uint8_t c1[HS];
	size_t used = 0;

	CHECK_EQ_INT(rtmp_hs_client_c0c1(&cli, true, 1, c1), 0);
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&cli), buf_used(&cli), &used, &out), 0);
	CHECK(rtmp_hs_is_digest(hs));
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&out) + 1, HS, &used, &out), 1);
	CHECK_EQ_INT(used, HS);
	CHECK(rtmp_hs_done(hs));
	CHECK(!rtmp_hs_c2_verified(hs));
	rtmp_hs_destroy(&hs);
	buf_free(&cli);
	buf_free(&out);
}

/* A digest C1 whose digest is broken falls back to the simple handshake. */
static void test_bad_digest_falls_back(void)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf cli = {0}, out = {0};
	uint8_t c1[HS];
	size_t used = 0;

	CHECK_EQ_INT(rtmp_hs_client_c0c1(&cli, true, 0, c1), 0);
	cli.data[cli.off + 1 + t_offset(c1, 0)] ^= 0x01;
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&cli), buf_used(&cli), &used, &out), 0);
	CHECK_EQ_INT(buf_used(&out), 1 + 2 * HS);
	CHECK(!rtmp_hs_is_digest(hs));
	CHECK_EQ_INT(rd_be32(buf_head(&out) + 5), 0);
	CHECK_EQ_STR(rtmp_hs_error(hs), "");
	rtmp_hs_destroy(&hs);
	buf_free(&cli);
	buf_free(&out);
}

static void refused(uint8_t version, const char *reason)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf cli = {0}, out = {0};
	uint8_t c1[HS];
	size_t used = 99;

	CHECK_EQ_INT(rtmp_hs_client_c0c1(&cli, true, 0, c1), 0);
	cli.data[cli.off] = version;
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&cli), buf_used(&cli), &used, &out),
		     -EPROTONOSUPPORT);
	CHECK_EQ_INT(buf_used(&out), 0);
	CHECK_EQ_STR(rtmp_hs_error(hs), reason);
	CHECK(!rtmp_hs_done(hs));
	/* final: the same error again, nothing consumed */
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&cli), buf_used(&cli), &used, &out),
		     -EPROTONOSUPPORT);
	CHECK_EQ_INT(used, 0);
	CHECK_EQ_INT(buf_used(&out), 0);
	rtmp_hs_destroy(&hs);
	buf_free(&cli);
	buf_free(&out);
}

static void test_rtmpe_refused(void)
{
	refused(6, "RTMPE (encrypted RTMP) is not supported");
	refused(8, "RTMPE (encrypted RTMP) is not supported");
	refused(9, "RTMPE (encrypted RTMP) is not supported");
}

static void test_unknown_version_refused(void)
{
	refused(0x20, "unsupported RTMP version 0x20 (only 3 is supported)");
	refused(0, "unsupported RTMP version 0x00 (only 3 is supported)");
	refused('<', "not RTMP: Flash policy-file request");
	refused('G', "not RTMP: looks like an HTTP request (RTMPT is not supported)");
}

static void test_truncated(void)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf cli = {0}, out = {0};
	uint8_t c1[HS];
	size_t used = 99;

	CHECK_EQ_INT(rtmp_hs_feed(hs, NULL, 0, &used, &out), 0);
	CHECK_EQ_INT(used, 0);
	CHECK_EQ_INT(rtmp_hs_client_c0c1(&cli, true, 1, c1), 0);
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&cli), 1, &used, &out), 0);
	CHECK_EQ_INT(used, 1);
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&cli) + 1, HS - 1, &used, &out), 0);
	CHECK_EQ_INT(used, HS - 1);
	CHECK_EQ_INT(buf_used(&out), 0);
	CHECK(!rtmp_hs_done(hs));
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&cli) + HS, 1, &used, &out), 0);
	CHECK_EQ_INT(buf_used(&out), 1 + 2 * HS);
	/* part of C2 */
	CHECK_EQ_INT(rtmp_hs_feed(hs, c1, 100, &used, &out), 0);
	CHECK_EQ_INT(used, 100);
	CHECK(!rtmp_hs_done(hs));
	CHECK_EQ_INT(buf_used(&out), 1 + 2 * HS);
	rtmp_hs_destroy(&hs);
	buf_free(&cli);
	buf_free(&out);
}

static void test_bad_arguments(void)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf out = {0};
	uint8_t c1[HS], b = 3;
	size_t used = 5;

	CHECK_EQ_INT(rtmp_hs_feed(NULL, &b, 1, &used, &out), -EINVAL);
	CHECK_EQ_INT(used, 0);
	CHECK_EQ_INT(rtmp_hs_feed(hs, NULL, 1, &used, &out), -EINVAL);
	CHECK_EQ_INT(rtmp_hs_feed(hs, &b, 1, NULL, &out), -EINVAL);
	CHECK_EQ_INT(rtmp_hs_feed(hs, &b, 1, &used, NULL), -EINVAL);
	CHECK_EQ_INT(rtmp_hs_client_c0c1(&out, true, 2, c1), -EINVAL);
	CHECK_EQ_INT(rtmp_hs_client_finish(c1, c1, 100, NULL, &out), -EINVAL);
	CHECK_EQ_STR(rtmp_hs_error(NULL), "");
	CHECK(!rtmp_hs_done(NULL));
	/* still usable */
	CHECK_EQ_INT(rtmp_hs_feed(hs, &b, 1, &used, &out), 0);
	CHECK_EQ_INT(used, 1);
	rtmp_hs_destroy(&hs);
	buf_free(&out);
}

/* The client helper refuses a server that does not sign S2 properly. */
static void test_client_rejects_bad_s2(void)
{
	struct rtmp_hs *hs = rtmp_hs_new();
	struct buf cli = {0}, out = {0}, c2 = {0};
	uint8_t c1[HS];
	size_t used = 0;

	CHECK_EQ_INT(rtmp_hs_client_c0c1(&cli, true, 0, c1), 0);
	CHECK_EQ_INT(rtmp_hs_feed(hs, buf_head(&cli), buf_used(&cli), &used, &out), 0);
	out.data[out.off + 2 * HS] ^= 0x80; /* last byte of S2's signature */
	CHECK_EQ_INT(rtmp_hs_client_finish(c1, buf_head(&out), buf_used(&out), NULL, &c2), -EPROTO);
	CHECK_EQ_INT(buf_used(&c2), 0);
	rtmp_hs_destroy(&hs);
	buf_free(&cli);
	buf_free(&out);
	buf_free(&c2);
}

int main(void)
{
	TEST_RUN(test_simple);
	TEST_RUN(test_simple_one_call);
	TEST_RUN(test_version_without_digest);
	TEST_RUN(test_digest_scheme0);
	TEST_RUN(test_digest_scheme1);
	TEST_RUN(test_byte_at_a_time);
	TEST_RUN(test_digest_lax_c2);
	TEST_RUN(test_bad_digest_falls_back);
	TEST_RUN(test_rtmpe_refused);
	TEST_RUN(test_unknown_version_refused);
	TEST_RUN(test_truncated);
	TEST_RUN(test_bad_arguments);
	TEST_RUN(test_client_rejects_bad_s2);
	return TEST_DONE();
}
