/*
 * test_h264.c - unit tests for common/h264.c: the AVC configuration record both ways with real
 * x264 parameter sets (picture size and profile-level-id read back), every malformed record
 * shape refused, parameter sets replaced by id, RFC 6184 profile families, sprop-parameter-sets.
 */
#include "harness.h"
#include "h264.h"
#include "h264_sample.h"

#include <errno.h>
#include <string.h>

/* x264, High, 320x240 (cropped from 240 = 15 macroblocks: no crop; checks the High path) */
static const uint8_t sps_high[] = {0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb,
				   0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
				   0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60};

/* The record x264's sets make, written out by hand from ISO/IEC 14496-15 5.2.4.1. */
static size_t avcc_720p(uint8_t *out)
{
	size_t n = 0;

	out[n++] = 1;
	out[n++] = 0x42;
	out[n++] = 0xc0;
	out[n++] = 0x1f;
	out[n++] = 0xff; /* length size 4 */
	out[n++] = 0xe1; /* one SPS */
	out[n++] = 0;
	out[n++] = sizeof(sps_720p);
	memcpy(out + n, sps_720p, sizeof(sps_720p));
	n += sizeof(sps_720p);
	out[n++] = 1; /* one PPS */
	out[n++] = 0;
	out[n++] = sizeof(pps_720p);
	memcpy(out + n, pps_720p, sizeof(pps_720p));
	return n + sizeof(pps_720p);
}

static void test_avcc_parse_real(void)
{
	uint8_t rec[64];
	size_t n = avcc_720p(rec);
	struct h264_params ps;
	char pli[7];

	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), 0);
	CHECK_EQ_INT(ps.n_sps, 1);
	CHECK_EQ_INT(ps.n_pps, 1);
	CHECK_EQ_INT(ps.sps_len[0], sizeof(sps_720p));
	CHECK(memcmp(ps.sps[0], sps_720p, sizeof(sps_720p)) == 0);
	CHECK(memcmp(ps.pps[0], pps_720p, sizeof(pps_720p)) == 0);
	CHECK_EQ_INT(ps.length_size, 4);
	CHECK_EQ_INT(ps.width, 1280);
	CHECK_EQ_INT(ps.height, 720);
	CHECK(h264_profile_level_id(&ps, pli));
	CHECK_EQ_STR(pli, "42c01f");
	CHECK_EQ_INT(h264_profile_of(ps.profile_idc, ps.constraints),
		     H264_PROFILE_CONSTRAINED_BASELINE);
}

static void test_avcc_build_round_trip(void)
{
	uint8_t rec[64], built[64];
	size_t n = avcc_720p(rec), bn = 0;
	struct h264_params ps, back;

	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), 0);
	CHECK_EQ_INT(h264_avcc_build(&ps, built, sizeof(built), &bn), 0);
	CHECK_EQ_INT(bn, n);
	CHECK(memcmp(built, rec, n) == 0); /* byte for byte what we wrote by hand */
	CHECK_EQ_INT(h264_avcc_parse(built, bn, &back), 0);
	CHECK(memcmp(&back, &ps, sizeof(ps)) == 0);
	CHECK_EQ_INT(h264_avcc_build(&ps, built, n - 1, &bn), -ENOBUFS);

	/* 2-byte lengths in, 4 out */
	rec[4] = 0xfd;
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), 0);
	CHECK_EQ_INT(ps.length_size, 2);
	rec[4] = 0xfc;
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), 0);
	CHECK_EQ_INT(ps.length_size, 1);

	memset(&ps, 0, sizeof(ps));
	CHECK_EQ_INT(h264_avcc_build(&ps, built, sizeof(built), &bn), -EINVAL);
	CHECK_EQ_INT(h264_params_add(&ps, sps_720p, sizeof(sps_720p), NULL), 0);
	CHECK_EQ_INT(h264_avcc_build(&ps, built, sizeof(built), &bn), -EINVAL); /* no PPS */
}

static void test_avcc_malformed(void)
{
	uint8_t rec[64], big[1200];
	size_t n = avcc_720p(rec);
	struct h264_params ps;

	/* every truncation */
	for (size_t cut = 0; cut < n; cut++)
		CHECK_EQ_INT(h264_avcc_parse(rec, cut, &ps), -EBADMSG);
	rec[0] = 2; /* version */
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -EBADMSG);
	rec[0] = 1;
	rec[4] = 0xfe; /* 3-byte lengths do not exist */
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -EBADMSG);
	rec[4] = 0xff;
	rec[5] = 0xe0; /* no SPS */
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -EBADMSG);
	rec[5] = 0xe0 | (H264_MAX_PS + 1);
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -E2BIG);
	rec[5] = 0xe2; /* two SPS: the second overruns */
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -EBADMSG);
	rec[5] = 0xe1;
	rec[7] = 0; /* SPS of length 0 */
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -EBADMSG);
	rec[7] = 200; /* SPS length overruns */
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -EBADMSG);
	rec[7] = sizeof(sps_720p);
	rec[8] = 0x68; /* a PPS where the SPS goes */
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -EBADMSG);
	rec[8] = 0x67;
	rec[8 + sizeof(sps_720p)] = 0; /* no PPS */
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -EBADMSG);
	rec[8 + sizeof(sps_720p)] = H264_MAX_PS + 1;
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -E2BIG);
	rec[8 + sizeof(sps_720p)] = 1;
	rec[10 + sizeof(sps_720p)] = 0; /* PPS of length 0 */
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -EBADMSG);
	rec[10 + sizeof(sps_720p)] = 6; /* PPS length overruns by one */
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), -EBADMSG);
	rec[10 + sizeof(sps_720p)] = sizeof(pps_720p);
	CHECK_EQ_INT(h264_avcc_parse(rec, n, &ps), 0);

	/* an SPS longer than H264_MAX_PS_LEN */
	memcpy(big, rec, 8);
	big[6] = (uint8_t)((H264_MAX_PS_LEN + 1) >> 8);
	big[7] = (uint8_t)(H264_MAX_PS_LEN + 1);
	memset(big + 8, 0x11, H264_MAX_PS_LEN + 1);
	memcpy(big + 8, sps_720p, sizeof(sps_720p));
	big[8 + H264_MAX_PS_LEN + 1] = 1;
	memcpy(big + 9 + H264_MAX_PS_LEN + 1, rec + 8 + sizeof(sps_720p) + 1, 2 + sizeof(pps_720p));
	CHECK_EQ_INT(h264_avcc_parse(big, 11 + H264_MAX_PS_LEN + 1 + sizeof(pps_720p), &ps),
		     -E2BIG);
	/* an SPS whose id does not parse: 32 leading zero bits */
	{
		uint8_t bad[] = {1,    0x42, 0xc0, 0x1f, 0xff, 0xe1, 0,	  9, 0x67,
				 0x42, 0xc0, 0x1f, 0,	 0,    0,    0,	  0, 1,
				 0,    5,    0x68, 0xcb, 0x83, 0xcb, 0x20};

		CHECK_EQ_INT(h264_avcc_parse(bad, sizeof(bad), &ps), -EBADMSG);
	}
}

static void test_sps_high_size(void)
{
	struct h264_params ps = {0};
	char pli[7];

	CHECK(!h264_profile_level_id(&ps, pli));
	CHECK_EQ_STR(pli, "");
	CHECK_EQ_INT(h264_params_add(&ps, sps_high, sizeof(sps_high), NULL), 0);
	CHECK_EQ_INT(ps.width, 320);
	CHECK_EQ_INT(ps.height, 240);
	CHECK(h264_profile_level_id(&ps, pli));
	CHECK_EQ_STR(pli, "64000d");
	CHECK_EQ_INT(h264_profile_of(ps.profile_idc, ps.constraints), H264_PROFILE_HIGH);
}

/* A short SPS with seq_parameter_set_id @id (ue(v) then a stop bit) and level @level. */
static size_t sps_with_id(uint8_t *out, unsigned id, uint8_t level)
{
	static const uint8_t ue_byte[] = {0xc0, 0x50, 0x70, 0x24, 0x2c}; /* ue(id) 1 then zeros */

	out[0] = 0x67;
	out[1] = 0x42;
	out[2] = 0xc0;
	out[3] = level;
	out[4] = ue_byte[id];
	return 5;
}

static void test_params_add_replace(void)
{
	struct h264_params ps = {0};
	uint8_t s[8];
	bool changed;
	size_t n;

	n = sps_with_id(s, 0, 0x1e);
	CHECK_EQ_INT(h264_params_add(&ps, s, n, &changed), 0);
	CHECK(changed);
	CHECK_EQ_INT(ps.level_idc, 0x1e);
	CHECK_EQ_INT(ps.width, 0); /* does not parse past the id */
	CHECK_EQ_INT(h264_params_add(&ps, s, n, &changed), 0);
	CHECK(!changed);
	n = sps_with_id(s, 0, 0x28); /* same id, other level: replaced */
	CHECK_EQ_INT(h264_params_add(&ps, s, n, &changed), 0);
	CHECK(changed);
	CHECK_EQ_INT(ps.n_sps, 1);
	CHECK_EQ_INT(ps.level_idc, 0x28);
	for (unsigned id = 1; id < H264_MAX_PS; id++) {
		n = sps_with_id(s, id, 0x1e);
		CHECK_EQ_INT(h264_params_add(&ps, s, n, &changed), 0);
		CHECK(changed);
	}
	CHECK_EQ_INT(ps.n_sps, H264_MAX_PS);
	CHECK_EQ_INT(ps.level_idc, 0x28); /* the first one's */
	n = sps_with_id(s, 4, 0x1e);
	CHECK_EQ_INT(h264_params_add(&ps, s, n, &changed), -E2BIG);
	n = sps_with_id(s, 2, 0x33); /* a full table still replaces */
	CHECK_EQ_INT(h264_params_add(&ps, s, n, &changed), 0);
	CHECK(changed);
	CHECK_EQ_INT(ps.sps[2][3], 0x33);

	/* PPS: id then seq_parameter_set_id */
	{
		const uint8_t p0[] = {0x68, 0xe0}, p0b[] = {0x68, 0xce, 0x38, 0x80},
			      p1[] = {0x68, 0x58}, bad[] = {0x68, 0x00}, aud[] = {0x09, 0xf0};

		CHECK_EQ_INT(h264_params_add(&ps, p0, sizeof(p0), &changed), 0);
		CHECK(changed);
		CHECK_EQ_INT(h264_params_add(&ps, p1, sizeof(p1), &changed), 0);
		CHECK_EQ_INT(ps.n_pps, 2);
		CHECK_EQ_INT(h264_params_add(&ps, p0b, sizeof(p0b), &changed), 0);
		CHECK(changed);
		CHECK_EQ_INT(ps.n_pps, 2);
		CHECK_EQ_INT(ps.pps_len[0], sizeof(p0b));
		CHECK_EQ_INT(h264_params_add(&ps, bad, sizeof(bad), &changed), -EBADMSG);
		CHECK_EQ_INT(h264_params_add(&ps, aud, sizeof(aud), &changed), -EBADMSG);
		CHECK_EQ_INT(h264_params_add(&ps, aud, 0, &changed), -EBADMSG);
		CHECK_EQ_INT(h264_params_add(&ps, sps_720p, 4, &changed), -EBADMSG);
	}
	{
		uint8_t big[H264_MAX_PS_LEN + 1] = {0x67};

		CHECK_EQ_INT(h264_params_add(&ps, big, sizeof(big), &changed), -E2BIG);
	}
}

static void test_profile_family(void)
{
	static const struct {
		const char *pli;
		enum h264_profile p;
	} cases[] = {
	    {"42e01f", H264_PROFILE_CONSTRAINED_BASELINE},
	    {"42C01F", H264_PROFILE_CONSTRAINED_BASELINE},
	    {"4d801f", H264_PROFILE_CONSTRAINED_BASELINE},
	    {"58c01f", H264_PROFILE_CONSTRAINED_BASELINE},
	    {"42001f", H264_PROFILE_BASELINE},
	    {"42801f", H264_PROFILE_BASELINE},
	    {"58801f", H264_PROFILE_BASELINE},
	    {"4d001f", H264_PROFILE_MAIN},
	    {"4d401f", H264_PROFILE_MAIN},
	    {"4d201f", H264_PROFILE_UNKNOWN},
	    {"58001f", H264_PROFILE_EXTENDED},
	    {"640028", H264_PROFILE_HIGH},
	    {"640c1f", H264_PROFILE_HIGH},
	    {"641028", H264_PROFILE_UNKNOWN},
	    {"6e0028", H264_PROFILE_HIGH10},
	    {"7a0028", H264_PROFILE_HIGH422},
	    {"f40028", H264_PROFILE_HIGH444},
	    {"6e1028", H264_PROFILE_HIGH10_INTRA},
	    {"7a1028", H264_PROFILE_HIGH422_INTRA},
	    {"f41028", H264_PROFILE_HIGH444_INTRA},
	    {"2c1028", H264_PROFILE_CAVLC444_INTRA},
	    {"2c0028", H264_PROFILE_UNKNOWN},
	    {"53001f", H264_PROFILE_UNKNOWN},
	};
	uint8_t a, b, c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ_INT(h264_profile_level_id_parse(cases[i].pli, &a, &b, &c), 0);
		if (h264_profile_of(a, b) != cases[i].p)
			fprintf(stderr, "profile-level-id %s\n", cases[i].pli);
		CHECK_EQ_INT(h264_profile_of(a, b), cases[i].p);
	}
	CHECK_EQ_INT(h264_profile_level_id_parse("42e01f", &a, &b, &c), 0);
	CHECK(a == 0x42 && b == 0xe0 && c == 0x1f);
	CHECK_EQ_INT(h264_profile_level_id_parse("42e01", &a, &b, &c), -EINVAL);
	CHECK_EQ_INT(h264_profile_level_id_parse("42e01f0", &a, &b, &c), -EINVAL);
	CHECK_EQ_INT(h264_profile_level_id_parse("42e01g", &a, &b, &c), -EINVAL);
	CHECK_EQ_INT(h264_profile_level_id_parse(" 42e01", &a, &b, &c), -EINVAL);
	CHECK_EQ_INT(h264_profile_level_id_parse(NULL, &a, &b, &c), -EINVAL);
	CHECK_EQ_STR(h264_profile_name(H264_PROFILE_CONSTRAINED_BASELINE), "constrained-baseline");
	CHECK_EQ_STR(h264_profile_name(H264_PROFILE_HIGH), "high");
	CHECK_EQ_STR(h264_profile_name((enum h264_profile)99), "unknown");
}

static void test_sprop(void)
{
	struct h264_params ps = {0}, back = {0};
	char s[256];
	bool changed;

	CHECK_EQ_INT(h264_sprop_build(&ps, s, sizeof(s)), -EINVAL);
	CHECK_EQ_INT(h264_params_add(&ps, sps_720p, sizeof(sps_720p), NULL), 0);
	CHECK_EQ_INT(h264_params_add(&ps, pps_720p, sizeof(pps_720p), NULL), 0);
	CHECK_EQ_INT(h264_sprop_build(&ps, s, sizeof(s)), 0);
	CHECK_EQ_STR(s, "Z0LAH9kAUAW7ARAAAAMAEAAAAwPA8YMkgA==,aMuDyyA=");
	{
		size_t n = 0;

		CHECK(h264_params_set(&ps, 0, &n) == ps.sps[0] && n == sizeof(sps_720p));
		CHECK(h264_params_set(&ps, 1, &n) == ps.pps[0] && n == sizeof(pps_720p));
		CHECK(h264_params_set(&ps, 2, &n) == NULL && n == 0);
	}
	CHECK_EQ_INT(
	    h264_sprop_build(&ps, s, strlen("Z0LAH9kAUAW7ARAAAAMAEAAAAwPA8YMkgA==,aMuDyyA=")),
	    -ENOBUFS);
	CHECK_EQ_INT(h264_sprop_build(&ps, s, 10), -ENOBUFS);

	strcpy(s, "Z0LAH9kAUAW7ARAAAAMAEAAAAwPA8YMkgA==,aMuDyyA=");
	CHECK_EQ_INT(h264_sprop_parse(s, strlen(s), &back, &changed), 0);
	CHECK(changed);
	CHECK_EQ_INT(back.n_sps, 1);
	CHECK_EQ_INT(back.n_pps, 1);
	CHECK_EQ_INT(back.width, 1280);
	CHECK(memcmp(back.sps[0], sps_720p, sizeof(sps_720p)) == 0);
	CHECK(memcmp(back.pps[0], pps_720p, sizeof(pps_720p)) == 0);
	CHECK_EQ_INT(h264_sprop_parse(s, strlen(s), &back, &changed), 0);
	CHECK(!changed);

	static const char *const bad[] = {
	    "",
	    ",",
	    "Z0LAH9kAUAW7ARAAAAMAEAAAAwPA8YMkgA==,",
	    "Z0LA*9kA",
	    "aMuDyyA",
	    "aMu=DyyA",
	    "aMuDyyA=,,aMuDyyA=",
	    "====",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = h264_sprop_parse(bad[i], strlen(bad[i]), &back, &changed);

		CHECK(r == -EINVAL || r == -EBADMSG);
	}
	/* an SEI where a parameter set goes: base64 of 06 05 */
	CHECK_EQ_INT(h264_sprop_parse("BgU=", 4, &back, &changed), -EBADMSG);
}

int main(void)
{
	TEST_RUN(test_avcc_parse_real);
	TEST_RUN(test_avcc_build_round_trip);
	TEST_RUN(test_avcc_malformed);
	TEST_RUN(test_sps_high_size);
	TEST_RUN(test_params_add_replace);
	TEST_RUN(test_profile_family);
	TEST_RUN(test_sprop);
	return TEST_DONE();
}
