/*
 * h264.h - H.264 parameter sets as both sides carry them: the AVC decoder configuration record
 * of an RTMP sequence header (ISO/IEC 14496-15 5.2.4.1), the SDP profile-level-id and
 * sprop-parameter-sets (RFC 6184 8.1), and SPS/PPS NAL units seen in-band.
 *
 *   AVCDecoderConfigurationRecord (all big-endian)
 *     u8  configurationVersion = 1
 *     u8  AVCProfileIndication, profile_compatibility, AVCLevelIndication
 *     u8  111111b | lengthSizeMinusOne (0, 1 or 3)
 *     u8  111b | numOfSequenceParameterSets (5 bits), then per set: u16 length, SPS NAL unit
 *     u8  numOfPictureParameterSets, then per set: u16 length, PPS NAL unit
 *     [high profiles: chroma/bit depth/SPS extensions, ignored on input, not written]
 *
 * Nothing here allocates; every length and count read is bounded first. Parameter sets are
 * kept as NAL units (header byte included, emulation prevention bytes left in).
 */
#ifndef RS_H264_H
#define RS_H264_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H264_MAX_PS	4   /* SPS kept, PPS kept (each) */
#define H264_MAX_PS_LEN 512 /* bytes of one SPS/PPS NAL unit */

/* NAL unit types (ITU-T H.264 table 7-1, RFC 6184 table 1). */
enum {
	H264_NAL_SLICE = 1,
	H264_NAL_IDR = 5,
	H264_NAL_SEI = 6,
	H264_NAL_SPS = 7,
	H264_NAL_PPS = 8,
	H264_NAL_AUD = 9,
	H264_NAL_FILLER = 12,
	H264_NAL_STAP_A = 24,
	H264_NAL_STAP_B = 25,
	H264_NAL_MTAP16 = 26,
	H264_NAL_MTAP24 = 27,
	H264_NAL_FU_A = 28,
	H264_NAL_FU_B = 29,
};

/* The type in a NAL unit header byte. */
static inline unsigned h264_nal_type(uint8_t hdr)
{
	return hdr & 0x1fu;
}

struct h264_params {
	unsigned n_sps, n_pps;
	uint16_t sps_len[H264_MAX_PS], pps_len[H264_MAX_PS];
	uint8_t sps[H264_MAX_PS][H264_MAX_PS_LEN], pps[H264_MAX_PS][H264_MAX_PS_LEN];
	uint8_t profile_idc, constraints, level_idc; /* from the first SPS (bytes 1..3) */
	uint8_t length_size; /* NALU length field of the stream: 1, 2 or 4 */
	uint16_t width,
	    height; /* from the first SPS when it parses (exp-Golomb, cropping), else 0 */
};

/*
 * Parses an AVCDecoderConfigurationRecord (FLV AVC sequence header body, after the 5-byte FLV
 * video header) of @len bytes into @out (cleared first). Returns 0, -EBADMSG (truncated, wrong
 * version or length size, a set of length 0 or of the wrong NAL type, no SPS or no PPS, an
 * SPS or PPS whose id does not parse) or -E2BIG (more than H264_MAX_PS sets or a set longer
 * than H264_MAX_PS_LEN).
 */
int h264_avcc_parse(const uint8_t *p, size_t len, struct h264_params *out);

/*
 * Writes an AVCDecoderConfigurationRecord for @ps (length_size 4) into @out (@cap bytes).
 * Returns 0 with *outlen set, -ENOBUFS (@cap too small) or -EINVAL (no SPS or no PPS).
 */
int h264_avcc_build(const struct h264_params *ps, uint8_t *out, size_t cap, size_t *outlen);

/*
 * Adds one SPS (NAL type 7) or PPS (8) NAL unit of @len bytes to @ps, replacing the one with
 * the same id (SPS: seq_parameter_set_id; PPS: pic_parameter_set_id). *changed (when not NULL)
 * is set true when the set is new or differs, else false. The first SPS's profile, level and
 * picture size are refreshed. Returns 0, -EBADMSG (another type, an id that does not parse) or
 * -E2BIG (longer than H264_MAX_PS_LEN, or a new id when H264_MAX_PS are kept already).
 */
int h264_params_add(struct h264_params *ps, const uint8_t *nal, size_t len, bool *changed);

/* Set @i of @ps counting every SPS, then every PPS (i < n_sps + n_pps), its length in *len;
 * NULL past the end. For walks over all sets (STAP-A, sprop-parameter-sets). */
const uint8_t *h264_params_set(const struct h264_params *ps, unsigned i, size_t *len);

/* Writes "42e01f", the profile-level-id of the first SPS for SDP (RFC 6184 8.1), and NUL into
 * @out; false (and "") when there is no SPS. */
bool h264_profile_level_id(const struct h264_params *ps, char out[7]);

/*
 * Parses an SDP profile-level-id: exactly 6 hex digits (either case) into its three bytes.
 * Returns 0 or -EINVAL.
 */
int h264_profile_level_id_parse(const char *s, uint8_t *profile_idc, uint8_t *constraints,
				uint8_t *level_idc);

/* Profile families of RFC 6184 table 5. */
enum h264_profile {
	H264_PROFILE_UNKNOWN = 0,
	H264_PROFILE_CONSTRAINED_BASELINE,
	H264_PROFILE_BASELINE,
	H264_PROFILE_MAIN,
	H264_PROFILE_EXTENDED,
	H264_PROFILE_HIGH,
	H264_PROFILE_HIGH10,
	H264_PROFILE_HIGH422,
	H264_PROFILE_HIGH444,
	H264_PROFILE_HIGH10_INTRA,
	H264_PROFILE_HIGH422_INTRA,
	H264_PROFILE_HIGH444_INTRA,
	H264_PROFILE_CAVLC444_INTRA,
};

/*
 * The family of @profile_idc with the constraint flags byte @constraints (constraint_set0 in
 * bit 7), per RFC 6184 table 5. Only constraint_set0..3 are looked at (the table's low four
 * bits were reserved then; constraint_set4/5 appear in real streams, "640c1f").
 */
enum h264_profile h264_profile_of(uint8_t profile_idc, uint8_t constraints);

/* A short name of @p for logs ("constrained-baseline", "high", ...); "unknown" for others. */
const char *h264_profile_name(enum h264_profile p);

/*
 * Writes the sprop-parameter-sets value for SDP fmtp into @out (@cap bytes, NUL included): the
 * base64 of every SPS, then every PPS, comma-separated. Returns 0, -ENOBUFS, -EINVAL (no SPS
 * or no PPS).
 */
int h264_sprop_build(const struct h264_params *ps, char *out, size_t cap);

/*
 * Adds the parameter sets of a sprop-parameter-sets value (@len characters, no NUL needed) to
 * @ps with h264_params_add(); *changed (when not NULL) is true when any was new or differed.
 * Returns 0, -EINVAL (not base64, an empty item) or h264_params_add()'s error; on an error the
 * sets before the bad one stay added.
 */
int h264_sprop_parse(const char *s, size_t len, struct h264_params *ps, bool *changed);

#endif
