/*
 * sdp.h - SDP for the gateway's calls: one audio stream over RTP/AVP, or RTP/SAVP keyed with
 * SDES (RFC 4566 syntax, RFC 3264 offer/answer, RFC 4568 a=crypto, RFC 4733 telephone-event),
 * and beside it at most one H.264 video stream passed through (RFC 6184 section 8, RTCP feedback
 * RFC 4585 / RFC 5104, b=AS / b=TIAS RFC 4566 / RFC 3890).
 *
 *   text --sdp_parse_desc()--> struct sdp_media_desc --sdp_build()--> text
 *
 *   INVITE received:  sdp_parse_desc(offer) -> sdp_choose(offer, ours, policy)
 *                         -ENOTSUP: answer 488 before ringing (why says what did not match)
 *                     -> sdp_answer_choice(offer, ours, local, choice) once our media exists:
 *                         sdp_build(answer) goes in the 200; sdp_choice goes to the worker
 *                     (sdp_answer() is both steps at once, as for a re-INVITE)
 *   INVITE sent:      sdp_make_offer(ours, local) -> sdp_build -> ... 200 -> sdp_parse_desc(answer)
 *                         -> sdp_process_answer(our offer, answer) -> sdp_choice
 *   hold / resume:    sdp_build_reoffer(our last desc, hold): direction changed, o= version + 1
 *   video on / off:   sdp_reoffer_video(our last desc, ...) then sdp_build_reoffer()
 *
 * Parsing is sofia-sip's (libsofia-sip-ua); this module bounds its input (64 KiB, no NUL), reads
 * the first usable audio m-line out of the parsed session, and owns the offer/answer rules and the
 * text builder. Every structure here is a plain value: no pointers into the text, no allocation
 * kept. Other m-lines (image, a second video...) are remembered only so that an answer or
 * re-offer keeps them in place with port 0, as RFC 3264 requires.
 *
 * Video (signaler/sdp_video.c): the first video m-line with a port on RTP/AVP, RTP/AVPF,
 * RTP/SAVP or RTP/SAVPF is read into d->video (d->has_video); a declined one (port 0) is only
 * remembered, like any other m-line. It is negotiated only when both our
 * preferences (codec_pref.video) and our side (sdp_local.video.port) have video, and only as
 * H.264 packetization-mode 1; anything else declines the video m-line (port 0) and leaves the
 * audio negotiation as it is: a video problem never fails a call. Without video on our side,
 * offers, answers and re-offers are what they were for audio only, byte for byte.
 *
 *   turning video on:  prefs.video = true; local.video = {.port, .dir, .profile_level_id,
 *                      .sprop, .bw_kbps, .key (with SRTP)}; then the calls above as for audio;
 *                      chosen.video.on says whether the worker runs a video leg, with what.
 *   mid-call:          sdp_reoffer_video(&last, &prefs, &local) (video.port 0 or prefs.video
 *                      false: video off), sdp_build_reoffer(), then sdp_process_answer().
 *
 * Codecs are matched through the codec table (common/codec.h: name + clock rate); payload type
 * numbers are whatever the offerer used.
 */
#ifndef RS_SDP_H
#define RS_SDP_H

#include "buf.h"
#include "codec.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SDP_MAX_TEXT	  65536 /* bytes of SDP accepted by the parser */
#define SDP_MAX_CODECS	  16	/* audio formats kept (the first ones: most preferred) */
#define SDP_MAX_FORMATS	  64	/* formats on the audio m-line; more is refused as malformed */
#define SDP_MAX_CRYPTO	  8	/* a=crypto lines kept */
#define SDP_MAX_MLINES	  8	/* m-lines in one SDP; more is refused */
#define SDP_MAX_NAME	  32	/* encoding name */
#define SDP_MAX_FMTP	  128	/* a=fmtp parameters; longer ones are dropped */
#define SDP_MAX_ADDR	  45	/* IPv4 / IPv6 literal */
#define SDP_MAX_USER	  64	/* o= user name */
#define SDP_MAX_TOKEN	  31	/* media, proto and format of a remembered m-line */
#define SDP_SRTP_KEY_LEN  30	/* AES_CM_128: 16 bytes master key + 14 bytes salt */
#define SDP_DEFAULT_PTIME 20
#define SDP_MIN_LIFETIME  (1ull << 24) /* shortest a=crypto key lifetime honoured (packets) */

/* Video formats kept (the first ones); the m-line itself is bounded by SDP_MAX_FORMATS. */
#define SDP_MAX_VIDEO_FORMATS 8
#define SDP_MAX_VIDEO_FMTP    512      /* a=fmtp of a video format (sprop-parameter-sets is long) */
#define SDP_VIDEO_PT	      96       /* the H.264 payload type we offer (packetization-mode 1) */
#define SDP_VIDEO_PT_MODE0    97       /* the same in packetization-mode 0 (see sdp_video_choice) */
#define SDP_H264_DEFAULT_PLID "42e01f" /* constrained baseline, level 3.1 */

/* Media direction, from the point of view of the SDP's author. Zero is sendrecv. */
enum sdp_dir {
	SDP_DIR_SENDRECV = 0,
	SDP_DIR_SENDONLY,
	SDP_DIR_RECVONLY,
	SDP_DIR_INACTIVE,
};

enum sdp_srtp_suite {
	SDP_SUITE_NONE = 0,
	SDP_SUITE_AES_CM_128_HMAC_SHA1_80,
	SDP_SUITE_AES_CM_128_HMAC_SHA1_32,
	SDP_SUITE_UNKNOWN, /* a suite this gateway cannot do (AES_256, GCM, F8...) */
};

enum sdp_srtp_policy {
	SDP_SRTP_OFF = 0,  /* plain RTP only: RTP/SAVP offers are refused */
	SDP_SRTP_OPTIONAL, /* answer what is offered; offer plain RTP/AVP */
	SDP_SRTP_REQUIRED, /* RTP/SAVP only: plain offers are refused; offer RTP/SAVP */
};

/* The settings' names of the policies, indexed by them ("off", "optional", "required"), then
 * NULL: the choices of config_enum() for CALL_SRTP and SIP_SRTP. */
extern const char *const sdp_srtp_policy_names[];

/* One RTP format of an m-line. */
struct sdp_codec {
	uint8_t pt;	  /* 0..127 */
	uint8_t channels; /* 1 unless the rtpmap says otherwise */
	uint32_t rate;	  /* RTP clock */
	char name[SDP_MAX_NAME + 1];
	char fmtp[SDP_MAX_FMTP + 1]; /* "" when none */
};

/* One a=crypto line (RFC 4568). */
struct sdp_crypto {
	uint32_t tag; /* 0..999999999 */
	enum sdp_srtp_suite suite;
	uint8_t key[SDP_SRTP_KEY_LEN]; /* master key || salt; only for the two known suites */
	uint64_t lifetime;	       /* key lifetime in packets, 0 when not given */
	uint32_t mki;		       /* MKI value, meaningful when mki_len > 0 */
	uint8_t mki_len;	       /* MKI length in bytes, 0 when no MKI */
	bool extra; /* session parameters, several keys or a key method but "inline": unusable */
};

/* Transports of the video m-line; with SAVP / SAVPF the stream is keyed by its a=crypto. */
enum sdp_video_proto {
	SDP_VPROTO_AVP = 0, /* RTP/AVP */
	SDP_VPROTO_AVPF,    /* RTP/AVPF (RFC 4585) */
	SDP_VPROTO_SAVP,    /* RTP/SAVP */
	SDP_VPROTO_SAVPF,   /* RTP/SAVPF */
};

/* RTCP feedback messages of a=rtcp-fb (RFC 4585 nack, nack pli; RFC 5104 ccm fir), as bits. */
enum {
	SDP_FB_NACK = 1, /* generic NACK */
	SDP_FB_PLI = 2,	 /* picture loss indication */
	SDP_FB_FIR = 4,	 /* full intra request */
	SDP_FB_ALL = 7,
	/* what the gateway does: asks for key frames (PLI) and answers PLI and FIR with one; no
	 * generic NACK (no retransmission), so it is neither offered nor answered */
	SDP_FB_OURS = SDP_FB_PLI | SDP_FB_FIR,
};

/* One format of the video m-line. */
struct sdp_video_format {
	uint8_t pt;			   /* 0..127, unique on the m-line */
	uint8_t fb;			   /* SDP_FB_* bits from a=rtcp-fb of this PT and of '*' */
	uint32_t rate;			   /* RTP clock, 0 when the format has no usable a=rtpmap */
	char name[SDP_MAX_NAME + 1];	   /* "H264", "VP8"...; "" without a usable a=rtpmap */
	char fmtp[SDP_MAX_VIDEO_FMTP + 1]; /* "" when none (or too long / not printable) */
};

/* The video m-line of an SDP. */
struct sdp_video {
	char addr[SDP_MAX_ADDR + 1]; /* its c= (media level, else session level) */
	uint16_t port;		     /* > 0 (a declined video is no struct sdp_video) */
	uint16_t rtcp_port;	     /* a=rtcp port, 0 when not given (RTP port + 1) */
	enum sdp_dir dir;	     /* a c= of 0.0.0.0 or :: removes "receive", as for audio */
	enum sdp_video_proto proto;
	unsigned n_formats;
	struct sdp_video_format formats[SDP_MAX_VIDEO_FORMATS]; /* m-line order */
	unsigned n_crypto;
	struct sdp_crypto crypto[SDP_MAX_CRYPTO]; /* written only with SAVP / SAVPF */
	uint32_t bw_as;				  /* b=AS of the m-line, kbit/s; 0 when none */
	uint32_t bw_tias;			  /* b=TIAS of the m-line, bit/s; 0 when none */
};

/* What an H.264 a=fmtp says (RFC 6184 section 8.1), for sdp_h264_fmtp(). */
struct sdp_h264_fmtp {
	uint8_t profile_idc; /* profile-level-id, absent: 0x42 0x00 0x0a (baseline 1.0) */
	uint8_t profile_iop; /* constraint flags byte */
	uint8_t level_idc;
	unsigned mode;	      /* packetization-mode, absent: 0 */
	bool level_asymmetry; /* level-asymmetry-allowed=1 */
	bool has_plid;	      /* profile-level-id was given */
	bool has_sprop;	      /* sprop-parameter-sets was given */
};

/* An m-line other than the audio one, remembered to be echoed with port 0. */
struct sdp_mline {
	char media[SDP_MAX_TOKEN + 1]; /* "video", "image", "audio" (a second audio line) */
	char proto[SDP_MAX_TOKEN + 1]; /* "RTP/AVP", "udptl", "RTP/SAVPF" */
	char fmt[SDP_MAX_TOKEN + 1];   /* its first format: "31", "t38" */
};

/*
 * The audio part of an SDP, plus what is needed to write a whole SDP again. A value type: copy
 * it freely. Initialise with sdp_desc_init() (te_pt must be -1 when there is no
 * telephone-event).
 */
struct sdp_media_desc {
	char addr[SDP_MAX_ADDR + 1]; /* c= address (media level, else session level); "" if none */
	uint16_t port;		     /* 0: the stream is declined */
	enum sdp_dir dir;	     /* a c= of 0.0.0.0 or :: removes "receive" (old-style hold) */
	bool srtp;		     /* RTP/SAVP rather than RTP/AVP */
	unsigned ptime;		     /* a=ptime in ms, 0 when not given */
	unsigned n_codecs;
	struct sdp_codec
	    codecs[SDP_MAX_CODECS]; /* audio formats in m-line order, events excluded */
	int te_pt;		    /* telephone-event payload type, -1 when none */
	uint32_t te_rate; /* its clock: the 8000 Hz entry is preferred when several are offered */
	char te_fmtp[SDP_MAX_FMTP + 1]; /* its events, e.g. "0-16"; "" when not given */
	unsigned n_crypto;
	struct sdp_crypto crypto[SDP_MAX_CRYPTO]; /* in SDP order (the offerer's preference) */
	char origin_user[SDP_MAX_USER + 1];	  /* parsed o= line; ignored by sdp_build() */
	uint64_t sess_id;      /* parsed o= values; for our own descs, what the caller built with */
	uint64_t sess_version; /* (sdp_build_reoffer() uses and bumps these) */
	unsigned n_mlines;     /* 0: the SDP is just the audio m-line */
	unsigned audio_index;  /* position of the audio m-line among n_mlines */
	struct sdp_mline mlines[SDP_MAX_MLINES]; /* the others; mlines[audio_index] is unused */
	bool has_video;	      /* the video m-line is mlines[video_index], written from video */
	unsigned video_index; /* its position; mlines[video_index] still names it (media, proto,
			       * first format) for when has_video is cleared: then it is echoed
			       * with port 0 */
	struct sdp_video video;
};

/* The codecs the gateway can do for one call, in our order of preference. */
struct codec_pref {
	unsigned n;
	const struct codec *codecs[SDP_MAX_CODECS]; /* table entries, no telephone-event */
	bool dtmf;				    /* telephone-event can be offered / accepted */
	bool video; /* H.264 video can be offered / accepted (also needs sdp_local.video.port) */
};

/* Our video side (all zero: no video). */
struct sdp_local_video {
	uint16_t port;		      /* RTP port we receive video on; 0: no video */
	uint16_t rtcp_port;	      /* written as a=rtcp when not port + 1; 0: port + 1 */
	enum sdp_dir dir;	      /* like sdp_local.dir, for the video stream */
	bool avpf;		      /* offer RTP/AVPF (RTP/SAVPF); else RTP/AVP with a=rtcp-fb */
	const char *profile_level_id; /* 6 hex digits offered (the publisher's, from its SPS);
				       * NULL: SDP_H264_DEFAULT_PLID. In answers: see sdp_answer */
	const char *sprop;	      /* sprop-parameter-sets of what we send, NULL: none */
	unsigned bw_kbps;	      /* b=AS (and b=TIAS in bit/s) we write; 0: none */
	const uint8_t *key;	      /* our video SRTP key || salt, like sdp_local.key (its own
				       * key: never the audio one); copied, not kept */
};

/* Our side of a negotiation. */
struct sdp_local {
	const char *addr;	   /* media address we receive on, IPv4 or IPv6 literal */
	uint16_t port;		   /* RTP port we receive on, > 0 */
	enum sdp_dir dir;	   /* SENDRECV, or SENDONLY while we hold the call */
	enum sdp_srtp_policy srtp; /* see enum sdp_srtp_policy */
	const uint8_t *key;	   /* our SRTP master key || salt (SDP_SRTP_KEY_LEN bytes); needed
				    * unless srtp is SDP_SRTP_OFF; copied, not kept */
	unsigned ptime;		   /* a=ptime we ask for, 0 for SDP_DEFAULT_PTIME */
	struct sdp_local_video video; /* our video; zero: audio only */
};

/* The outcome of the video negotiation: what the worker's video leg needs. */
struct sdp_video_choice {
	bool on;	  /* H.264 negotiated; false: no video (the audio goes on) */
	uint8_t pt;	  /* PT we send with (the number the peer declared) */
	uint8_t recv_pt;  /* PT we receive (the number we declared) */
	uint8_t fb;	  /* SDP_FB_* both sides agreed on for that PT */
	bool avpf;	  /* RTP/AVPF or RTP/SAVPF */
	enum sdp_dir dir; /* our direction for video */
	bool hold;	  /* the peer holds our video */
	char remote_addr[SDP_MAX_ADDR + 1]; /* where to send RTP */
	uint16_t remote_port;
	uint16_t remote_rtcp_port; /* the peer's a=rtcp, else remote_port + 1 */
	uint32_t bw_kbps;	   /* the peer's b=AS (else b=TIAS / 1000), 0: none */
	bool srtp;
	enum sdp_srtp_suite suite;
	uint32_t crypto_tag;
	uint8_t remote_key[SDP_SRTP_KEY_LEN];
	char fmtp[SDP_MAX_VIDEO_FMTP + 1]; /* the peer's a=fmtp of the chosen format */
	/* The packetization-mode agreed: 1, or 0 with a peer that takes nothing else (older
	 * baresip). We packetize the same way in both: a NAL unit above the MTU goes as FU-A
	 * even in mode 0 (we pass pictures through, we cannot re-slice them); decoders built on
	 * libavcodec take it, a strict mode-0 peer loses those pictures. */
	unsigned mode;
	char why[96];			   /* when off: why (no video offered, mode 2 only...) */
};

/* The outcome of a negotiation: what the media worker needs. */
struct sdp_choice {
	const struct codec *codec; /* codec table entry */
	uint8_t pt;		   /* PT we send with (the number the peer declared) */
	uint8_t recv_pt;	   /* payload type we receive (the number we declared) */
	int te_pt;		   /* telephone-event PT we send with, -1 when not negotiated */
	int te_recv_pt;		   /* telephone-event PT we receive, -1 when not negotiated */
	uint32_t te_rate;
	unsigned remote_ptime;		    /* the peer's a=ptime, 0 when it gave none */
	enum sdp_dir dir;		    /* our direction for the media */
	bool hold;			    /* the peer holds us (sdp_is_hold() of its SDP) */
	char remote_addr[SDP_MAX_ADDR + 1]; /* where to send RTP */
	uint16_t remote_port;
	bool srtp;
	enum sdp_srtp_suite suite;
	uint32_t crypto_tag;
	uint8_t remote_key[SDP_SRTP_KEY_LEN]; /* the peer's key || salt: we decrypt with it */
	char fmtp[SDP_MAX_FMTP + 1];	      /* the peer's a=fmtp of the codec, "" when none */
	struct sdp_video_choice video;	      /* video.on false when there is none */
};

/* --- names ----------------------------------------------------------------------------------- */

/* "sendrecv", "sendonly", "recvonly", "inactive"; "?" for out-of-range values. */
const char *sdp_dir_name(enum sdp_dir dir);

/* "AES_CM_128_HMAC_SHA1_80" / "AES_CM_128_HMAC_SHA1_32"; NULL for NONE, UNKNOWN and others. */
const char *sdp_srtp_suite_name(enum sdp_srtp_suite suite);

/* "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"; NULL for out-of-range values. */
const char *sdp_video_proto_name(enum sdp_video_proto proto);

/* --- descriptions ---------------------------------------------------------------------------- */

/* Clears @d: sendrecv, no codec, no telephone-event (te_pt = -1), no crypto, no other m-line. */
void sdp_desc_init(struct sdp_media_desc *d);

/*
 * Appends a whole SDP for @d to @out: v=, o=@origin_user (NULL or "" gives "-") @sess_id
 * @sess_version, s=, c=, t=0 0, then the m-lines (the audio one in d->audio_index, the others with
 * port 0) and for audio a=rtpmap for every payload type (static ones too), a=fmtp, a=ptime, the
 * direction and a=crypto (RTP/SAVP). With d->has_video, the video m-line in d->video_index:
 * its own c= when its address is not the session's, b=AS / b=TIAS, a=rtcp, a=rtpmap / a=fmtp /
 * a=rtcp-fb per format, the direction and (SAVP / SAVPF) a=crypto. Lines end in CRLF.
 * Everything is validated first (addresses
 * with inet_pton, tokens, unique payload types, known suites, no CR/LF anywhere): -EINVAL with
 * nothing appended when @d cannot be written; -ENOMEM. Returns 0.
 */
int sdp_build(struct buf *out, const struct sdp_media_desc *d, const char *origin_user,
	      uint64_t sess_id, uint64_t sess_version);

/*
 * Parses an SDP of @len bytes (not NUL-terminated; at most SDP_MAX_TEXT, no NUL byte) into @out.
 * The audio stream is the first audio m-line with a non-zero port and a transport of RTP/AVP or
 * RTP/SAVP; when every audio m-line has port 0, the first one is returned with port 0 (declined).
 * Session-level c= and direction apply to the media unless it has its own; static payload types
 * without a=rtpmap get their RFC 3551 names. The first SDP_MAX_CODECS audio formats are kept;
 * formats that cannot be described (dynamic without a=rtpmap, name above SDP_MAX_NAME, clock rate
 * 0 or above 1 MHz, odd channel count) are dropped, since they could never be chosen.
 * The video part: see the top of this file; a video m-line that cannot be read (a bad or
 * duplicate payload type, more than SDP_MAX_FORMATS formats, a bad c=, a=rtcp or a=crypto) is
 * only remembered, to be declined: has_video false, the audio result unchanged. Formats past
 * SDP_MAX_VIDEO_FORMATS are not kept; a video fmtp above SDP_MAX_VIDEO_FMTP is dropped.
 * Returns 0, or a negative errno with a sentence in @why (when not NULL, truncated to @whylen):
 * -EBADMSG malformed (also a bad a=crypto key), -E2BIG too big / too many formats or m-lines,
 * -ENOENT no audio m-line, -EPROTONOSUPPORT audio only on transports we do not do, or multicast,
 * -ENOMEM.
 * @out is always initialised, and only meaningful on success.
 */
int sdp_parse_desc(const char *text, size_t len, struct sdp_media_desc *out, char *why,
		   size_t whylen);

/* True when @d puts the other side on hold: sendonly, inactive, or a 0.0.0.0 / :: address. */
bool sdp_is_hold(const struct sdp_media_desc *d);

/* --- codec preferences ----------------------------------------------------------------------- */

/*
 * Builds @out from the codec tokens of the Flash VoIP API, in the order given: "wideband" ->
 * speex/16000, "narrowband" -> speex/8000, "pcmu"/"ulaw" -> PCMU, "pcma"/"alaw" -> PCMA,
 * "opus" -> opus/48000/2, "g722" -> G722/8000,
 * "dtmf" -> telephone-event (out->dtmf), "h264" -> out->video; "flv" is ignored; repeats count
 * once; case does not matter. NULL entries are skipped. Returns 0, or -EINVAL when some token is
 * unknown:
 * @out then still holds the known ones and @why lists the unknown ones.
 */
int sdp_prefs_from_rtmp(const char *const *tokens, size_t n, struct codec_pref *out, char *why,
			size_t whylen);

/* --- offer / answer -------------------------------------------------------------------------- */

/*
 * Fills @offer with our offer: every codec of @ours with its table payload type, then
 * telephone-event/8000 on PT 101 ("0-16") when ours->dtmf, a=ptime, local->dir, and with
 * local->srtp == SDP_SRTP_REQUIRED, RTP/SAVP with one AES_CM_128_HMAC_SHA1_80 line (tag 1) keyed
 * with local->key. With ours->video and local->video.port, a video m-line follows the audio one:
 * H.264 on SDP_VIDEO_PT with profile-level-id (local->video.profile_level_id or
 * SDP_H264_DEFAULT_PLID), packetization-mode=1, level-asymmetry-allowed=1 and the sprop given,
 * then the same on SDP_VIDEO_PT_MODE0 in packetization-mode=0, a=rtcp-fb nack pli and ccm fir
 * (SDP_FB_OURS), local->video.dir, b=AS / b=TIAS of local->video.bw_kbps,
 * RTP/AVP (RTP/AVPF with local->video.avpf; SAVP / SAVPF with its own key, tag 1). Returns 0, or
 * -EINVAL (no codec, bad address, port 0, missing key, bad video settings) with @why.
 */
int sdp_make_offer(const struct codec_pref *ours, const struct sdp_local *local,
		   struct sdp_media_desc *offer, char *why, size_t whylen);

/*
 * Decides how to answer @offer's audio, from the offer, @ours and the SRTP policy @srtp alone (no
 * address, no key, nothing allocated): the codec, telephone-event, the direction (the reverse of
 * the offer's), the peer's address and the crypto line, as sdp_answer() below does. Video is not
 * decided here (it needs our video leg): chosen->video.on stays false until
 * sdp_answer_choice(). Returns 0, -ENOTSUP with @why (answer 488), or -EINVAL.
 */
int sdp_choose(const struct sdp_media_desc *offer, const struct codec_pref *ours,
	       enum sdp_srtp_policy srtp, struct sdp_choice *chosen, char *why, size_t whylen);

/*
 * Builds in @answer the answer to @offer that states @chosen (made by sdp_choose() on this offer)
 * with our @local side, limits chosen->dir by local->dir and decides video into chosen->video.
 * Returns 0, or -EINVAL (@local unusable, or a choice @local cannot state: SRTP chosen with
 * local->srtp off).
 */
int sdp_answer_choice(const struct sdp_media_desc *offer, const struct codec_pref *ours,
		      const struct sdp_local *local, struct sdp_choice *chosen,
		      struct sdp_media_desc *answer, char *why, size_t whylen);

/*
 * Answers @offer (RFC 3264): sdp_choose() then sdp_answer_choice().
 * Audio: the codec is the first of the OFFERER's list that is in @ours, on the offerer's payload
 * type; telephone-event is kept when offered at a rate the codec table knows and ours->dtmf;
 * direction is the reverse of the offer's, limited by local->dir (sendonly -> recvonly, inactive
 * -> inactive); an RTP/SAVP offer is answered with the tag and suite of its first usable a=crypto
 * line and our key. Other m-lines are echoed with port 0. Fills @answer (to pass to sdp_build)
 * and @chosen.
 *
 * Video: an offered video stream is accepted when ours->video, local->video.port > 0, its port
 * is not 0, its SRTP fits local->srtp as audio's must, and one of its H.264 formats has
 * packetization-mode 1 (else 0) and a profile that can take ours (local->video.profile_level_id:
 * the same profile_idc, or ours constrained baseline and theirs baseline, main or high; NULL
 * takes any): the first such format in the offerer's order, answered on its PT with its
 * profile-level-id, its packetization-mode, its level-asymmetry-allowed and our sprop, the
 * a=rtcp-fb of it we do (pli, fir: SDP_FB_OURS), the reversed direction limited by
 * local->video.dir, our b=AS / b=TIAS. Otherwise the video m-line is answered with port 0 and
 * chosen->video.why says why.
 *
 * Returns 0; -ENOTSUP with @why when the offer cannot be accepted (no common codec, audio
 * declined, SRTP required but not offered, SRTP offered but off, no usable crypto line): the
 * caller answers 488 before ringing; -EINVAL when @local is unusable.
 */
int sdp_answer(const struct sdp_media_desc *offer, const struct codec_pref *ours,
	       const struct sdp_local *local, struct sdp_media_desc *answer,
	       struct sdp_choice *chosen, char *why, size_t whylen);

/*
 * Checks the peer's @answer to @our_offer and fills @chosen: the codec is the answer's first
 * format that we offered (matched by name and rate; the PT numbers of both sides are kept), the
 * direction is ours limited by the answer's, SRTP must mirror our offer (same tag and suite).
 * Video (when we offered it): chosen->video is on when the answer keeps the video m-line with a
 * port, H.264 in packetization-mode 1 (else 0) that we offered and a matching SRTP; otherwise video is
 * off (chosen->video.why) and the audio result stands.
 * Returns 0; -ECONNREFUSED when the answer declines audio (port 0); -EPROTO with @why when the
 * answer does not fit the offer (codec not offered, SRTP mismatch, unknown crypto tag).
 */
int sdp_process_answer(const struct sdp_media_desc *our_offer, const struct sdp_media_desc *answer,
		       struct sdp_choice *chosen, char *why, size_t whylen);

/*
 * Turns @d, our last SDP of the call (offer or answer, with d->sess_id / d->sess_version set to
 * what was sent), into a re-offer that stops (@hold) or restarts our receiving, RFC 6337 style:
 * hold makes sendrecv -> sendonly and recvonly -> inactive; resume makes sendonly -> sendrecv and
 * inactive -> recvonly (the peer still holding us). Bumps d->sess_version and appends the SDP to
 * @out; the m-line layout, codecs and keys are kept. The video stream, when there is one, takes
 * the same change of direction. Returns what sdp_build() returns; @d is unchanged on failure.
 */
int sdp_build_reoffer(struct buf *out, struct sdp_media_desc *d, bool hold,
		      const char *origin_user);

/*
 * Before sdp_build_reoffer(): turns video on or off in @d, our last SDP of the call. With
 * ours->video and local->video.port, @d gets our video offer (as sdp_make_offer() writes it) in
 * the place of its video m-line, or in a new m-line after the others when it had none; else its
 * video m-line, if any, is kept in place with port 0. Audio is untouched. After the peer's
 * answer, sdp_process_answer(@d, answer) gives the video choice.
 * Returns 0; -EINVAL (bad settings) or -E2BIG (SDP_MAX_MLINES m-lines already) with @why, @d
 * unchanged.
 */
int sdp_reoffer_video(struct sdp_media_desc *d, const struct codec_pref *ours,
		      const struct sdp_local *local, char *why, size_t whylen);

/* --- fmtp ------------------------------------------------------------------------------------ */

/*
 * Copies the value of parameter @name (ASCII case-insensitive) of the a=fmtp text @fmtp
 * ("a=1;b=2", blanks around ';' allowed) into @out (@outlen bytes, NUL-terminated). Returns 0,
 * -ENOENT when absent, -ENOSPC when the value does not fit.
 */
int sdp_fmtp_param(const char *fmtp, const char *name, char *out, size_t outlen);

/*
 * Reads the H.264 parameters of @fmtp (NULL or "" gives the RFC 6184 defaults: baseline level
 * 1.0, packetization-mode 0). Returns 0, or -EBADMSG when profile-level-id is not 6 hex digits
 * or packetization-mode not 0..2 (the format is then unusable).
 */
int sdp_h264_fmtp(const char *fmtp, struct sdp_h264_fmtp *out);

/* The chosen codec as the worker protocol carries it (name, rate, channels 1, the send PT). */
void sdp_choice_wire_codec(const struct sdp_choice *c, struct wire_codec *out);

#endif
