/*
 * sdp.h - SDP for the gateway's calls: one audio stream over RTP/AVP, or RTP/SAVP keyed with
 * SDES (RFC 4566 syntax, RFC 3264 offer/answer, RFC 4568 a=crypto, RFC 4733 telephone-event).
 *
 *   text --sdp_parse_desc()--> struct sdp_media_desc --sdp_build()--> text
 *
 *   INVITE received:  sdp_parse_desc(offer) -> sdp_answer(offer, ours, local)
 *                         -ENOTSUP: answer 488 before ringing (why says what did not match)
 *                         0: sdp_build(answer) goes in the 200; sdp_choice goes to the worker
 *   INVITE sent:      sdp_make_offer(ours, local) -> sdp_build -> ... 200 -> sdp_parse_desc(answer)
 *                         -> sdp_process_answer(our offer, answer) -> sdp_choice
 *   hold / resume:    sdp_build_reoffer(our last desc, hold): direction changed, o= version + 1
 *
 * Parsing is sofia-sip's (libsofia-sip-ua); this module bounds its input (64 KiB, no NUL), reads
 * the first usable audio m-line out of the parsed session, and owns the offer/answer rules and the
 * text builder. Every structure here is a plain value: no pointers into the text, no allocation
 * kept. Other m-lines (video, image...) are remembered only so that an answer or re-offer keeps
 * them in place with port 0, as RFC 3264 requires.
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
};

/* The codecs the gateway can do for one call, in our order of preference. */
struct codec_pref {
	unsigned n;
	const struct codec *codecs[SDP_MAX_CODECS]; /* table entries, no telephone-event */
	bool dtmf;				    /* telephone-event can be offered / accepted */
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
};

/* --- names ----------------------------------------------------------------------------------- */

/* "sendrecv", "sendonly", "recvonly", "inactive"; "?" for out-of-range values. */
const char *sdp_dir_name(enum sdp_dir dir);

/* "AES_CM_128_HMAC_SHA1_80" / "AES_CM_128_HMAC_SHA1_32"; NULL for NONE, UNKNOWN and others. */
const char *sdp_srtp_suite_name(enum sdp_srtp_suite suite);

/* --- descriptions ---------------------------------------------------------------------------- */

/* Clears @d: sendrecv, no codec, no telephone-event (te_pt = -1), no crypto, no other m-line. */
void sdp_desc_init(struct sdp_media_desc *d);

/*
 * Appends a whole SDP for @d to @out: v=, o=@origin_user (NULL or "" gives "-") @sess_id
 * @sess_version, s=, c=, t=0 0, then the m-lines (the audio one in d->audio_index, the others with
 * port 0) and for audio a=rtpmap for every payload type (static ones too), a=fmtp, a=ptime, the
 * direction and a=crypto (RTP/SAVP). Lines end in CRLF. Everything is validated first (addresses
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
 * "dtmf" -> telephone-event (out->dtmf); "h264" and "flv" (video) are ignored; repeats count once;
 * case does not matter. NULL entries are skipped. Returns 0, or -EINVAL when some token is unknown:
 * @out then still holds the known ones and @why lists the unknown ones.
 */
int sdp_prefs_from_rtmp(const char *const *tokens, size_t n, struct codec_pref *out, char *why,
			size_t whylen);

/* --- offer / answer -------------------------------------------------------------------------- */

/*
 * Fills @offer with our offer: every codec of @ours with its table payload type, then
 * telephone-event/8000 on PT 101 ("0-16") when ours->dtmf, a=ptime, local->dir, and with
 * local->srtp == SDP_SRTP_REQUIRED, RTP/SAVP with one AES_CM_128_HMAC_SHA1_80 line (tag 1) keyed
 * with local->key. Returns 0, or -EINVAL (no codec, bad address, port 0, missing key) with @why.
 */
int sdp_make_offer(const struct codec_pref *ours, const struct sdp_local *local,
		   struct sdp_media_desc *offer, char *why, size_t whylen);

/*
 * Answers @offer (RFC 3264): the codec is the first of the OFFERER's list that is in @ours, on
 * the offerer's payload type; telephone-event is kept when offered at a rate the codec table knows
 * and ours->dtmf; direction is the reverse of the offer's, limited by local->dir (sendonly ->
 * recvonly, inactive -> inactive); an RTP/SAVP offer is answered with the tag and suite of its
 * first usable a=crypto line and our key. Other m-lines are echoed with port 0. Fills @answer (to
 * pass to sdp_build) and @chosen.
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
 * @out; the m-line layout, codecs and keys are kept. Returns what sdp_build() returns; @d is
 * unchanged on failure.
 */
int sdp_build_reoffer(struct buf *out, struct sdp_media_desc *d, bool hold,
		      const char *origin_user);

/* The chosen codec as the worker protocol carries it (name, rate, channels 1, the send PT). */
void sdp_choice_wire_codec(const struct sdp_choice *c, struct wire_codec *out);

#endif
