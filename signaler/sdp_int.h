/*
 * sdp_int.h - what signaler/sdp.c shares with signaler/sdp_video.c: the checks, the printer and
 * the a=crypto reader of the audio part, so that video is bounded, written and keyed the same
 * way. Not a public header: callers use sdp.h.
 */
#ifndef RS_SDP_INT_H
#define RS_SDP_INT_H

#include "sdp.h"

#include <sofia-sip/sdp.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define SDP_MAX_RATE 1000000u /* Hz: the highest RTP clock of a format kept (video: 90000) */

/* Directions as two bits (send, receive): the values are also sofia-sip's sdp_mode_t ones. */
enum { DIR_SEND = 1, DIR_RECV = 2 };

unsigned sdp_dir_bits(enum sdp_dir d);
unsigned sdp_dir_reverse(unsigned bits);
enum sdp_dir sdp_dir_from_bits(unsigned bits);

/* Writes the sentence into @why (when not NULL) and returns @err. */
__attribute__((format(printf, 4, 5))) int sdp_fail(char *why, size_t whylen, int err,
						   const char *fmt, ...);
/* Appends to the NUL-terminated sentence in @why, silently truncating. */
__attribute__((format(printf, 3, 4))) void sdp_why_append(char *why, size_t whylen, const char *fmt,
							  ...);

/* Address family of an IP literal: 4, 6, or 0 when @addr is not one. */
int sdp_addr_family(const char *addr);
/* True for 0.0.0.0 and :: */
bool sdp_addr_is_any(const char *addr);
/* RFC 4566 token characters; a transport also takes '/'. */
bool sdp_tok_char(unsigned char c);
bool sdp_proto_char(unsigned char c);
/* A non-empty string of @max characters at most, each accepted by @ok. */
bool sdp_is_token(const char *s, size_t max, bool (*ok)(unsigned char));
/* Printable ASCII text of at most @max bytes; "" is fine. */
bool sdp_is_text(const char *s, size_t max);
/* Copies NUL-terminated @src into @dst[@size]; false (and "" in @dst) when it does not fit. */
bool sdp_copy_str(char *dst, size_t size, const char *src);
/* Decimal digits only (@len bytes), value <= @max. */
bool sdp_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *v);
/* An encoding name / an fmtp held in a char[@size] array, terminated and printable. */
bool sdp_name_ok(const char *name, size_t size);
bool sdp_fmtp_ok(const char *fmtp, size_t size);
/* A remembered m-line that can be echoed: three terminated tokens. */
bool sdp_mline_ok(const struct sdp_mline *ml);

/* Appends one printf-formatted line (SDP_LINE_MAX bytes at most) to @b: 0, -EINVAL, -ENOMEM. */
__attribute__((format(printf, 2, 3))) int sdp_put(struct buf *b, const char *fmt, ...);
/* 1..SDP_MAX_CRYPTO lines of @k that sdp_put_crypto() can write (known suite, inline key). */
bool sdp_crypto_writable(const struct sdp_crypto *k, unsigned n);
/* Appends "a=crypto:..." for @k (a suite sdp_srtp_suite_name() knows). */
int sdp_put_crypto(struct buf *b, const struct sdp_crypto *k);
/* Appends "a=rtpmap:" (channels printed when > 1) and "a=fmtp:" when @fmtp is not "". */
int sdp_put_rtpmap(struct buf *b, unsigned pt, const char *name, uint32_t rate, unsigned channels,
		   const char *fmtp);

/* Parses the value of an a=crypto line into @k: 0, or -EBADMSG with @why (RFC 4568). */
int sdp_parse_crypto(const char *v, struct sdp_crypto *k, char *why, size_t whylen);
/* Why an a=crypto line cannot be used, NULL when it can. */
const char *sdp_crypto_unusable(const struct sdp_crypto *k);
/* The index of the first usable line of @k[@n], or -1 with a sentence in @why. */
int sdp_pick_crypto(const struct sdp_crypto *k, unsigned n, char *why, size_t whylen);
/*
 * The peer's answer @ans[@n_ans] to our offered lines @ours[@n_ours] (RFC 4568: one line, with
 * one of our tags and its suite): the index in @ans, or -EPROTO with @why.
 */
int sdp_answer_crypto(const struct sdp_crypto *ours, unsigned n_ours, const struct sdp_crypto *ans,
		      unsigned n_ans, char *why, size_t whylen);

/* Reads a c= line into @addr (SDP_MAX_ADDR + 1 bytes): 0, -EPROTONOSUPPORT, -EBADMSG. */
int sdp_read_connection(const sdp_connection_t *c, char *addr, char *why, size_t whylen);

/* --- sdp_video.c, called by sdp.c ----------------------------------------------------------- */

/* The video_proto of @m when it is one of the four RTP transports, else -1. */
int sdp_video_proto_of(const sdp_media_t *m);
/*
 * Fills out->video from the video m-line @m, the @idx-th of the normalized SDP @text (its b=
 * lines are read from there: sofia-sip 1.12 does not tell b=TIAS from unknown modifiers). A
 * video that cannot be read leaves out->has_video false (the m-line is then echoed declined).
 */
void sdp_video_read(const sdp_media_t *m, unsigned idx, const char *text,
		    struct sdp_media_desc *out);
/* 0 when d->video (if any) can be written, -EINVAL otherwise. */
int sdp_video_validate(const struct sdp_media_desc *d);
/* Appends the video m-line and its attributes. */
int sdp_video_put(struct buf *b, const struct sdp_media_desc *d);
/* Adds our video offer to @offer (an audio offer) when @ours and @local ask for video. */
void sdp_video_offer(const struct codec_pref *ours, const struct sdp_local *local,
		     struct sdp_media_desc *offer);
/* Answers the offer's video into @answer / @chosen->video: accepted or declined, never fails. */
void sdp_video_answer(const struct sdp_media_desc *offer, const struct codec_pref *ours,
		      const struct sdp_local *local, struct sdp_media_desc *answer,
		      struct sdp_choice *chosen);
/* Fills @chosen->video from the peer's answer to our offer; video off when it does not fit. */
void sdp_video_process_answer(const struct sdp_media_desc *offer,
			      const struct sdp_media_desc *answer, struct sdp_choice *chosen);
/* Checks the local video settings: 0, or -EINVAL with @why. */
int sdp_video_check_local(const struct sdp_local *l, char *why, size_t whylen);

#endif
