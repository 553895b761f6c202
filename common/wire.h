/*
 * wire.h - the signaler <-> mediaworker message format (docs/protocol.md is the specification).
 *
 * Every message is two ZeroMQ frames (after the routing id on the ROUTER side):
 *
 *     header, 12 bytes, big-endian:
 *     +----+----+-----+------+-------+--------+------+
 *     | 'R'| 'S'| ver | type | flags | req id | blen |
 *     +----+----+-----+------+-------+--------+------+
 *       0    1    2     3     4..5    6..9     10..11
 *
 *     body, control: TLV list (u16 tag, u16 len, value)*
 *     body, MEDIA:   u8 idlen, leg id, u32 ts, u8 flags, payload
 *
 * The parser never allocates and never copies: struct wire_msg points into the caller's frames,
 * which must stay valid while it is used. Every TLV of a known tag is checked against the tag's
 * type (integer widths, string bounds, no NUL, identifier charset, codec layout); unknown tags
 * are kept and skipped by the getters. Every failure fills a struct wire_err with the errno-like
 * code to put in an ERROR reply and a reason string.
 *
 * The builder (struct wire_builder, a value type) validates what it is given the same way, so a
 * message that builds also parses. Errors are sticky: put everything, check wire_builder_finish().
 */
#ifndef RS_WIRE_H
#define RS_WIRE_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC0 'R'
#define WIRE_MAGIC1 'S'
#define WIRE_VERSION 1
#define WIRE_HDR_LEN 12
#define WIRE_MAX_BODY 65535u   /* what the header's u16 body length can express */
#define WIRE_MAX_TLVS 64
#define WIRE_MAX_STR 255
#define WIRE_MAX_ID 64         /* leg, signaler and worker ids: [A-Za-z0-9._-]{1,64} */
#define WIRE_MAX_CODECS 16     /* SIP_CODEC entries in one message */
#define WIRE_MAX_CODEC_NAME 32
#define WIRE_MAX_KEY 64        /* SRTP master key + salt */
/* MEDIA payload: one whole RTMP audio message, its header (at most CODEC_RTMP_MAX_HDR = 5 bytes)
 * and up to CODEC_RTMP_MAX_AUDIO = 8192 bytes of codec data (the worker's TC_MAX_INPUT), rounded
 * up to 16; common/codec.h and tests/unit/test_wire.c tie the three together. */
#define WIRE_MAX_PAYLOAD 8208
#define WIRE_MEDIA_MAX_BODY (1 + WIRE_MAX_ID + 4 + 1 + WIRE_MAX_PAYLOAD) /* 8278 */

/* Message types. 0x10-0x7f are requests (unknown ones get ERROR ENOTSUP), 0x80-0xff are
 * notifications (unknown ones are dropped). */
enum wire_type {
	WIRE_HELLO = 0x01,     /* request, signaler -> worker, on both sockets */
	WIRE_HELLO_OK = 0x02,  /* reply to HELLO */
	WIRE_OK = 0x03,        /* success reply to a 0x10-0x7f request */
	WIRE_ERROR = 0x04,     /* failure reply to any request */
	WIRE_HEARTBEAT = 0x05, /* worker -> signaler, control socket */
	WIRE_EVENT = 0x06,     /* worker -> signaler, control socket, no reply */
	WIRE_MEDIA = 0x07,     /* both ways, media socket, compact body */
	WIRE_MEDIA_BATCH = 0x08, /* both ways, media socket: several MEDIA bodies in one message */
	WIRE_CREATE_LEG = 0x10,
	WIRE_UPDATE_LEG = 0x11,
	WIRE_DESTROY_LEG = 0x12,
	WIRE_SEND_DTMF = 0x13,
	WIRE_LEG_STATS = 0x14,
	WIRE_WORKER_STATS = 0x15,
	WIRE_ADOPT_LEG = 0x16,
};

enum wire_kind { WIRE_KIND_UNKNOWN = 0, WIRE_KIND_REQUEST, WIRE_KIND_REPLY, WIRE_KIND_NOTIFY };

/* Header flags; unknown bits are ignored by receivers. */
enum { WIRE_F_RETRY = 0x0001 }; /* this request id was sent before (informational) */

/* MEDIA body flags; unknown bits are ignored. */
enum {
	WIRE_MEDIA_F_MARKER = 0x01, /* first packet of a talk spurt */
	WIRE_MEDIA_F_MORE = 0x02,   /* video legs: more pieces of this message follow (wire_video.h) */
};

/* EVENT kinds (EVENT_KIND values); unknown kinds are passed through to the application. */
/* LEG_HANDOVER: a draining worker at its deadline wrote the leg's state and dropped the leg: the
 * owner adopts it on another worker (as after a worker death, without waiting for it). */
enum { WIRE_EV_DTMF = 1, WIRE_EV_RTP_TIMEOUT = 2, WIRE_EV_LEG_FAILED = 3, WIRE_EV_LEG_HANDOVER = 4 };

/* Tags: one namespace for all message types (docs/protocol.md lists where each is used). */
enum wire_tag {
	WIRE_T_SIGNALER_ID = 0x0001,	 /* id */
	WIRE_T_WORKER_ID = 0x0002,	 /* id */
	WIRE_T_INSTANCE_ID = 0x0003,	 /* u64, random per worker process start */
	WIRE_T_PID = 0x0004,		 /* u32 */
	WIRE_T_HOST = 0x0005,		 /* str */
	WIRE_T_SW_VERSION = 0x0006,	 /* str <= 64 */
	WIRE_T_CAPACITY = 0x0007,	 /* u32, max legs (0: unlimited) */
	WIRE_T_HB_INTERVAL_MS = 0x0008,	 /* u32 */
	WIRE_T_LEGS = 0x0010,		 /* u32 */
	WIRE_T_CPU_PERMILLE = 0x0011,	 /* u16 */
	WIRE_T_DRAINING = 0x0012,	 /* bool */
	WIRE_T_SEQ = 0x0013,		 /* u32 */
	WIRE_T_TRANSCODING_LEGS = 0x0014, /* u32 */
	WIRE_T_PASSTHROUGH_LEGS = 0x0015, /* u32 */
	WIRE_T_LEG_ID = 0x0100,		 /* id */
	WIRE_T_CALL_ID = 0x0101,	 /* str */
	WIRE_T_OWNER = 0x0102,		 /* id (signaler id) */
	WIRE_T_RTMP_CODEC = 0x0103,	 /* codec */
	WIRE_T_SIP_CODEC = 0x0104,	 /* codec, repeatable, in preference order */
	WIRE_T_REMOTE_IP = 0x0105,	 /* str <= 45 */
	WIRE_T_REMOTE_PORT = 0x0106,	 /* u16 */
	WIRE_T_SRTP_SUITE = 0x0107,	 /* str <= 64 */
	WIRE_T_SRTP_REMOTE_KEY = 0x0108, /* bytes <= 64 */
	WIRE_T_WANT_SRTP = 0x0109,	 /* bool */
	WIRE_T_DTMF_PT = 0x010a,	 /* u8 */
	WIRE_T_PTIME_MS = 0x010b,	 /* u16 */
	WIRE_T_HOLD = 0x010c,		 /* bool */
	WIRE_T_CODEC_PT = 0x010d,	 /* u8 */
	WIRE_T_CODEC_FMTP = 0x010e,	 /* str <= 128: the peer's a=fmtp of the chosen codec */
	WIRE_T_RTMP_OUT_CODEC = 0x010f,	 /* codec toward the RTMP players; absent: RTMP_CODEC's */
	WIRE_T_LOCAL_IP = 0x0110,	 /* str <= 45 */
	WIRE_T_LOCAL_PORT = 0x0111,	 /* u16 */
	WIRE_T_CHOSEN_CODEC = 0x0112,	 /* codec */
	WIRE_T_SRTP_LOCAL_KEY = 0x0113,	 /* bytes <= 64 */
	WIRE_T_SSRC = 0x0114,		 /* u32 */
	WIRE_T_NOT_FOUND = 0x0115,	 /* bool */
	WIRE_T_TRANSCODING = 0x0116,	 /* bool */
	WIRE_T_SYNC_LEG = 0x0117,	 /* id: the leg whose RTMP timeline a video leg shares */
	WIRE_T_KEYFRAME = 0x0118,	 /* bool: video, ask the peer for a key frame now */
	WIRE_T_DIGIT = 0x0120,		 /* digit: one of 0-9 * # A-D */
	WIRE_T_DURATION_MS = 0x0121,	 /* u16 */
	WIRE_T_PKTS_IN = 0x0130,	 /* u64 */
	WIRE_T_PKTS_OUT = 0x0131,	 /* u64 */
	WIRE_T_BYTES_IN = 0x0132,	 /* u64 */
	WIRE_T_BYTES_OUT = 0x0133,	 /* u64 */
	WIRE_T_LOST = 0x0134,		 /* u64 */
	WIRE_T_JITTER_MS = 0x0135,	 /* u32 */
	WIRE_T_SRTP_AUTH_FAIL = 0x0136,	 /* u64 */
	WIRE_T_BAD_PKTS = 0x0137,	 /* u64 */
	WIRE_T_EVENT_KIND = 0x0150,	 /* u8, WIRE_EV_* */
	WIRE_T_REASON = 0x0151,		 /* str */
	WIRE_T_ERR_CODE = 0x0160,	 /* u32, positive errno (Linux numbering) */
	WIRE_T_ERR_TEXT = 0x0161,	 /* str */
	WIRE_T_ERR_TAG = 0x0162,	 /* u16, the tag an error is about */
};

/* Value types of known tags. */
enum wire_tag_type {
	WIRE_TT_U8 = 1,
	WIRE_TT_U16,
	WIRE_TT_U32,
	WIRE_TT_U64,
	WIRE_TT_BOOL,  /* u8, 0 or 1 */
	WIRE_TT_STR,   /* 0..max bytes, no NUL */
	WIRE_TT_ID,    /* 1..64 bytes of [A-Za-z0-9._-] */
	WIRE_TT_BYTES, /* 0..max bytes */
	WIRE_TT_CODEC, /* u8 pt (0-127), u8 channels (>= 1), u32 rate (> 0), name 1..32 [A-Za-z0-9._-] */
	WIRE_TT_DIGIT, /* u8, one of "0123456789*#ABCD" */
};

struct wire_codec {
	uint8_t pt;
	uint8_t channels;
	uint32_t rate;
	char name[WIRE_MAX_CODEC_NAME + 1];
};

struct wire_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t req_id;   /* 0 for notifications and media */
	uint16_t body_len;
};

struct wire_tlv {
	uint16_t tag;
	uint16_t len;
	const uint8_t *val; /* points into the body frame */
};

/* A parsed control message. Large (about 1 KiB): keep one per socket, not per call. */
struct wire_msg {
	struct wire_hdr h;
	uint16_t n_tlv;
	struct wire_tlv tlv[WIRE_MAX_TLVS]; /* in wire order, unknown tags included */
};

/* A parsed MEDIA message: payload points into the body frame. */
struct wire_media {
	char leg_id[WIRE_MAX_ID + 1]; /* NUL-terminated copy */
	uint32_t ts;                  /* milliseconds, RTMP timeline, wraps */
	uint8_t flags;
	const uint8_t *payload;
	size_t len;
	uint32_t queued_ms; /* receiver's estimate of the wait of its MEDIA_BATCH (0: plain MEDIA) */
};

/* Why a message was refused. */
struct wire_err {
	int code;       /* positive errno for the ERROR reply: EBADMSG, EINVAL, EPROTONOSUPPORT, ... */
	bool can_reply; /* the header was readable: h.type and h.req_id are valid */
	uint16_t tag;   /* the tag concerned (missing, duplicate, malformed), 0 when none */
	char reason[128];
};

/* Builder: a value type. Zero it once ("struct wire_builder b = {0};"), then init/put/finish
 * any number of times, and wire_builder_free() at the end. */
struct wire_builder {
	uint8_t hdr[WIRE_HDR_LEN]; /* valid after wire_builder_finish() */
	struct buf body;
	uint8_t type;
	uint16_t flags;
	uint32_t req_id;
	uint16_t n_tlv;
	uint16_t tags[WIRE_MAX_TLVS];
	int err; /* first error, negative errno, sticky until the next init */
	char reason[128];
};

/* --- types and tags ----------------------------------------------------------------------- */

/* Name of a message type ("CREATE_LEG"), "?" when unknown. */
const char *wire_type_name(uint8_t type);

/* What kind of message @type is: known types by the table, unknown ones by range. */
enum wire_kind wire_type_kind(uint8_t type);

/* Name of a tag ("LEG_ID"), NULL when unknown. */
const char *wire_tag_name(uint16_t tag);

/* Value type of a known tag, 0 when unknown. */
enum wire_tag_type wire_tag_type(uint16_t tag);

/* True when @s (@len bytes) is a valid id: 1..64 bytes of [A-Za-z0-9._-]. */
bool wire_id_valid(const char *s, size_t len);

/* True when @c is a DTMF digit 0-9 * # A-D. */
bool wire_digit_valid(int c);

/* --- parser ------------------------------------------------------------------------------- */

/*
 * Checks a header frame and fills @h. Returns 0, or a negative errno with @err filled:
 * -EBADMSG (length, magic), -EPROTONOSUPPORT (version; err->can_reply, since the type and request
 * id fields keep their place in every version), -ENOTSUP (unknown type; can_reply).
 */
int wire_header_parse(const void *hdr, size_t hdr_len, struct wire_hdr *h, struct wire_err *err);

/*
 * Parses a control message (any type but MEDIA) from its two frames into @m, which then points
 * into @body. Checks the header, that its body length matches @body_len, the TLV layout, the
 * bounds (64 TLVs, 64 KiB), each known tag's value, duplicates of non-repeatable tags, and the
 * tags the type requires. Returns 0, or a negative errno with @err filled (err->code is what an
 * ERROR reply should carry; err->can_reply says whether h.type / h.req_id are usable).
 */
int wire_parse(const void *hdr, size_t hdr_len, const void *body, size_t body_len,
	       struct wire_msg *m, struct wire_err *err);

/*
 * Checks that a reply @m (OK or HELLO_OK) to a request of type @req_type carries the tags that
 * reply needs (for example LOCAL_PORT for CREATE_LEG). 0, or -EINVAL with @err naming the tag.
 */
int wire_check_reply(const struct wire_msg *m, uint8_t req_type, struct wire_err *err);

/* Parses a MEDIA message (header + compact body) into @md without allocating. 0 or -errno. */
int wire_media_parse(const void *hdr, size_t hdr_len, const void *body, size_t body_len,
		     struct wire_media *md, struct wire_err *err);

/* --- getters (on a successfully parsed message; first occurrence of a tag) ----------------- */

/* True when @tag is present. */
bool wire_has(const struct wire_msg *m, uint16_t tag);

/* Occurrences of @tag (repeatable tags: SIP_CODEC). */
size_t wire_count(const struct wire_msg *m, uint16_t tag);

/* The @idx-th occurrence of @tag, NULL when there are fewer. */
const struct wire_tlv *wire_find(const struct wire_msg *m, uint16_t tag, size_t idx);

/*
 * Typed getters: 0, -ENOENT when the tag is absent, -EINVAL when its length does not fit the
 * requested type (an unknown tag read with the wrong width). BOOL tags read with wire_get_bool.
 */
int wire_get_u8(const struct wire_msg *m, uint16_t tag, uint8_t *v);
int wire_get_u16(const struct wire_msg *m, uint16_t tag, uint16_t *v);
int wire_get_u32(const struct wire_msg *m, uint16_t tag, uint32_t *v);
int wire_get_u64(const struct wire_msg *m, uint16_t tag, uint64_t *v);
int wire_get_bool(const struct wire_msg *m, uint16_t tag, bool *v);

/* String value as pointer + length into the frame (not NUL-terminated). 0 or -ENOENT. */
int wire_get_str(const struct wire_msg *m, uint16_t tag, const char **s, size_t *len);

/* Copies a string value NUL-terminated into @out. 0, -ENOENT, or -ENOSPC when too long. */
int wire_get_cstr(const struct wire_msg *m, uint16_t tag, char *out, size_t out_size);

/* Raw value bytes. 0 or -ENOENT. */
int wire_get_bytes(const struct wire_msg *m, uint16_t tag, const uint8_t **p, size_t *len);

/* Decodes the @idx-th occurrence of a codec tag. 0, -ENOENT, -EINVAL. */
int wire_get_codec(const struct wire_msg *m, uint16_t tag, size_t idx, struct wire_codec *c);

/* --- builder ------------------------------------------------------------------------------ */

/* Starts a message of @type with request id @req_id (0 for notifications); keeps memory. A
 * builder must be zeroed ("struct wire_builder b = {0};") before its first init. */
void wire_builder_init(struct wire_builder *b, uint8_t type, uint32_t req_id);

/*
 * Appends one TLV. A known tag must be written with the putter of its type and a valid value;
 * an unknown tag is accepted with any putter (for forward-compatibility tests). Non-repeatable
 * duplicates, more than 64 TLVs or a body above 64 KiB fail. Each returns 0 or the (sticky)
 * negative errno: -EINVAL, -E2BIG, -ENOMEM; b->reason says why.
 */
int wire_put_u8(struct wire_builder *b, uint16_t tag, uint8_t v);
int wire_put_u16(struct wire_builder *b, uint16_t tag, uint16_t v);
int wire_put_u32(struct wire_builder *b, uint16_t tag, uint32_t v);
int wire_put_u64(struct wire_builder *b, uint16_t tag, uint64_t v);
int wire_put_bool(struct wire_builder *b, uint16_t tag, bool v);
int wire_put_str(struct wire_builder *b, uint16_t tag, const char *s);
int wire_put_strn(struct wire_builder *b, uint16_t tag, const char *s, size_t len);
int wire_put_bytes(struct wire_builder *b, uint16_t tag, const void *p, size_t len);
int wire_put_codec(struct wire_builder *b, uint16_t tag, const struct wire_codec *c);

/* Appends an already-encoded value for @tag, validated against the tag's type (used to copy
 * TLVs from a parsed message). */
int wire_put_raw(struct wire_builder *b, uint16_t tag, const void *val, size_t len);

/* Checks the tags the type requires and writes the header. Returns 0 or the sticky error. */
int wire_builder_finish(struct wire_builder *b);

/* Rewrites the request id / flags in a finished header (the dispatcher numbers requests). */
void wire_builder_set_req_id(struct wire_builder *b, uint32_t req_id);
void wire_builder_set_flags(struct wire_builder *b, uint16_t flags);

/* Body frame of a finished message. */
const uint8_t *wire_builder_body(const struct wire_builder *b);
size_t wire_builder_body_len(const struct wire_builder *b);

/* Releases the builder's memory; it may be reused after wire_builder_init(). */
void wire_builder_free(struct wire_builder *b);

/*
 * Builds an ERROR reply to request @req_id in @b: ERR_CODE @code (positive errno), ERR_TEXT
 * @text (truncated to 255 bytes, NULs impossible), ERR_TAG @tag when non-zero. Returns 0 or -errno.
 */
int wire_build_error(struct wire_builder *b, uint32_t req_id, int code, uint16_t tag,
		     const char *text);

/*
 * Encodes a MEDIA message into caller storage: @hdr (WIRE_HDR_LEN bytes) and @body (@cap bytes,
 * WIRE_MEDIA_MAX_BODY always suffices); *body_len gets the body size. No allocation.
 * Returns 0, -EINVAL (bad leg id) or -E2BIG (payload above WIRE_MAX_PAYLOAD or @cap too small).
 */
int wire_media_encode(uint8_t *hdr, uint8_t *body, size_t cap, size_t *body_len,
		      const char *leg_id, uint32_t ts, uint8_t flags, const void *payload,
		      size_t len);

/* --- MEDIA_BATCH: the frames of one tick for one peer in one ZeroMQ message ------------------
 * Body: records of [u16 length][a MEDIA body as above], back to back, at most WIRE_BATCH_MAX_BODY
 * bytes. Sending one message per peer per tick instead of one per leg divides the per-message
 * cost of ZeroMQ (and its system calls) by the number of legs. */
#define WIRE_BATCH_MAX_BODY 32768

/* Any MEDIA fits in a batch (and so under the media sockets' frame limit, which is this). */
_Static_assert(2 + WIRE_MEDIA_MAX_BODY <= WIRE_BATCH_MAX_BODY, "a MEDIA record must fit a batch");

struct wire_media_batch {
	uint8_t hdr[WIRE_HDR_LEN]; /* valid after wire_media_batch_finish() */
	size_t len;                /* body bytes used */
	unsigned n;                /* records */
	uint8_t body[WIRE_BATCH_MAX_BODY];
};

/* Empties @b. */
void wire_media_batch_reset(struct wire_media_batch *b);

/* Appends one frame. Returns 0, -ENOSPC when it does not fit (send the batch, reset, add again),
 * -EINVAL (bad leg id) or -E2BIG (payload above WIRE_MAX_PAYLOAD). */
int wire_media_batch_add(struct wire_media_batch *b, const char *leg_id, uint32_t ts,
			 uint8_t flags, const void *payload, size_t len);

/*
 * Writes the header for the records added so far. @sent_ms, the sender's monotonic clock in ms
 * (mod 2^32, 0 taken as 1), goes in the request id field, which MEDIA_BATCH does not otherwise use:
 * the receiver estimates from it how long batches wait in queues (struct wire_backlog).
 */
void wire_media_batch_finish(struct wire_media_batch *b, uint32_t sent_ms);

/* CLOCK_MONOTONIC in ms: the clock of MEDIA_BATCH stamps. */
uint64_t wire_mono_ms(void);

/* The sender's clock in a MEDIA_BATCH header of @len bytes (0: not stamped, or not a header). */
uint32_t wire_media_batch_sent_ms(const void *hdr, size_t len);

/*
 * How long one sender's batches wait in queues (its send buffer, the network, ZeroMQ, ours):
 * the offset between our clock and the stamp, beyond the least offset seen in the last 30-60 s.
 * The two clocks need not agree (another host): only their drift over a minute enters, a few ms
 * at most. The least offset is refreshed as soon as the queues drain. An offset over 10 s above it
 * starts the estimate over (another sender process under the same id).
 */
struct wire_backlog {
	uint32_t min_cur, min_prev; /* least (now - sent) of this window and the one before */
	uint64_t window_start;
	bool have_cur, have_prev;
};

/* Feeds one batch's stamp (non-zero) received at @now_ms; returns its wait in ms (>= 0). */
uint32_t wire_backlog_update(struct wire_backlog *bl, uint32_t sent_ms, uint64_t now_ms);

/*
 * Iterates a received MEDIA_BATCH: *off starts at 0. Returns 1 with the next frame in @md (its
 * payload points into @body), 0 at the end, or a negative errno (header not MEDIA_BATCH, body
 * length mismatch, record overrunning the body, malformed record) with @err filled; frames
 * before a malformed record have been returned already, nothing after it is.
 */
int wire_media_batch_next(const void *hdr, size_t hdr_len, const void *body, size_t body_len,
			  size_t *off, struct wire_media *md, struct wire_err *err);

#endif
