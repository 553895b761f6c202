/*
 * fuzz_avc_config.c - libFuzzer target for the H.264 parameter set parsers: the AVC
 * configuration record (h264_avcc_parse), the FLV video header (h264_flv_parse) and a sequence
 * header behind it, SPS/PPS NAL units (h264_params_add), sprop-parameter-sets and
 * profile-level-id. Every parser gets the whole input.
 *
 * Properties beyond "no crash, no leak, no UB": a record that parses builds, and the built
 * record parses to the same sets, size and profile; so do the sets through
 * sprop-parameter-sets; a set added twice is not "changed" the second time.
 */
#include "h264.h"
#include "h264_rtp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"

static struct h264_params ps, back;

/* The sets of @a and @b are the same, in the same order. */
static bool same_sets(const struct h264_params *a, const struct h264_params *b)
{
	if (a->n_sps != b->n_sps || a->n_pps != b->n_pps)
		return false;
	for (unsigned i = 0; i < a->n_sps; i++)
		if (a->sps_len[i] != b->sps_len[i] || memcmp(a->sps[i], b->sps[i], a->sps_len[i]))
			return false;
	for (unsigned i = 0; i < a->n_pps; i++)
		if (a->pps_len[i] != b->pps_len[i] || memcmp(a->pps[i], b->pps[i], a->pps_len[i]))
			return false;
	return a->width == b->width && a->height == b->height && a->profile_idc == b->profile_idc &&
	       a->constraints == b->constraints && a->level_idc == b->level_idc;
}

static void record_round_trip(const uint8_t *p, size_t len)
{
	static uint8_t rec[16 + 2 * H264_MAX_PS * (2 + H264_MAX_PS_LEN)];
	static char sprop[2 * H264_MAX_PS * (H264_MAX_PS_LEN / 3 * 4 + 6)];
	size_t n = 0;
	char pli[7];
	int r = h264_avcc_parse(p, len, &ps);

	if (r != 0 && r != -EBADMSG && r != -E2BIG)
		abort();
	if (r)
		return;
	if (!ps.n_sps || !ps.n_pps || !h264_profile_level_id(&ps, pli) || strlen(pli) != 6)
		abort();
	h264_profile_name(h264_profile_of(ps.profile_idc, ps.constraints));
	if (h264_avcc_build(&ps, rec, sizeof(rec), &n) != 0)
		abort();
	if (h264_avcc_parse(rec, n, &back) != 0 || !same_sets(&ps, &back) || back.length_size != 4)
		abort();
	if (h264_sprop_build(&ps, sprop, sizeof(sprop)) != 0)
		abort();
	memset(&back, 0, sizeof(back));
	if (h264_sprop_parse(sprop, strlen(sprop), &back, NULL) != 0 || !same_sets(&ps, &back))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h264_flv f;
	char text[64];
	uint8_t a, b, c;
	bool changed;
	int r;

	record_round_trip(data, size);

	r = h264_flv_parse(data, size, &f);
	if (r != 0 && r != -EBADMSG && r != -EPROTONOSUPPORT)
		abort();
	if (r == 0 && !f.command && f.packet_type == H264_FLV_SEQUENCE_HEADER)
		record_round_trip(f.data, f.data_len);

	memset(&ps, 0, sizeof(ps));
	r = h264_params_add(&ps, data, size, &changed);
	if (r != 0 && r != -EBADMSG && r != -E2BIG)
		abort();
	if (r == 0 && (!changed || h264_params_add(&ps, data, size, &changed) != 0 || changed))
		abort();

	memset(&ps, 0, sizeof(ps));
	r = h264_sprop_parse((const char *)data, size, &ps, &changed);
	if (r != 0 && r != -EINVAL && r != -EBADMSG && r != -E2BIG)
		abort();

	if (size < sizeof(text)) {
		memcpy(text, data, size);
		text[size] = '\0';
		if (h264_profile_level_id_parse(text, &a, &b, &c) == 0)
			h264_profile_of(a, b);
	}
	return 0;
}
