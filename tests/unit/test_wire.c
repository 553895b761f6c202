/*
 * test_wire.c - the signaler <-> worker message format: a round trip of every message type,
 * every validation error of the parser and of the builder, MEDIA encoding and parsing.
 */
#include "codec.h"
#include "harness.h"
#include "transcode.h"
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The MEDIA bound carries one whole RTMP audio message the worker's transcoder takes: its
 * longest header plus TC_MAX_INPUT bytes of codec data; and any MEDIA fits a batch. */
_Static_assert(CODEC_RTMP_MAX_AUDIO == TC_MAX_INPUT, "codec.h and transcode.h disagree");
_Static_assert(CODEC_RTMP_MAX_HDR + CODEC_RTMP_MAX_AUDIO <= WIRE_MAX_PAYLOAD,
	       "a whole RTMP audio message must fit a MEDIA");
_Static_assert(2 + WIRE_MEDIA_MAX_BODY <= WIRE_BATCH_MAX_BODY, "a MEDIA must fit a batch");

/* --- helpers --- */

static struct wire_builder b;
static struct wire_msg m;
static struct wire_err e;

/* Parses what the builder holds. */
static int reparse(void)
{
	return wire_parse(b.hdr, WIRE_HDR_LEN, wire_builder_body(&b), wire_builder_body_len(&b),
			  &m, &e);
}

static const struct wire_codec speex16 = {.pt = 96, .channels = 1, .rate = 16000, .name = "speex"};
static const struct wire_codec pcmu = {.pt = 0, .channels = 1, .rate = 8000, .name = "PCMU"};
static const struct wire_codec pcma = {.pt = 8, .channels = 1, .rate = 8000, .name = "PCMA"};
static const struct wire_codec tev = {.pt = 101, .channels = 1, .rate = 8000,
				      .name = "telephone-event"};

/* Raw message crafting for inputs the builder refuses to make. */
static uint8_t rhdr[16];
static uint8_t rbody[70000];
static size_t rlen;

static void raw_reset(void)
{
	rlen = 0;
}

static void raw_tlv(uint16_t tag, const void *v, size_t len)
{
	wr_be16(rbody + rlen, tag);
	wr_be16(rbody + rlen + 2, (uint32_t)len);
	memcpy(rbody + rlen + 4, v, len);
	rlen += 4 + len;
}

static void raw_str(uint16_t tag, const char *s)
{
	raw_tlv(tag, s, strlen(s));
}

static void raw_hdr(uint8_t version, uint8_t type, uint32_t req_id, size_t blen)
{
	rhdr[0] = 'R';
	rhdr[1] = 'S';
	rhdr[2] = version;
	rhdr[3] = type;
	wr_be16(rhdr + 4, 0);
	wr_be32(rhdr + 6, req_id);
	wr_be16(rhdr + 10, (uint32_t)blen);
}

/* Parses the raw message with a correct header for its body. */
static int raw_parse(uint8_t type)
{
	raw_hdr(WIRE_VERSION, type, 7, rlen);
	memset(&e, 0, sizeof(e));
	return wire_parse(rhdr, WIRE_HDR_LEN, rbody, rlen, &m, &e);
}

static void raw_leg_request(void)
{
	raw_reset();
	raw_str(WIRE_T_LEG_ID, "leg-1");
}

/* --- round trips --- */

static void test_hello_roundtrip(void)
{
	char s[80];
	uint32_t u = 0;
	uint64_t v = 0;

	wire_builder_init(&b, WIRE_HELLO, 42);
	wire_put_str(&b, WIRE_T_SIGNALER_ID, "sig-1.a_b");
	wire_put_u32(&b, WIRE_T_PID, 1234);
	wire_put_str(&b, WIRE_T_SW_VERSION, "rtmp2sip 0.3");
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(wire_builder_body_len(&b) + WIRE_HDR_LEN, 12 + (4 + 9) + (4 + 4) + (4 + 12));
	CHECK(b.hdr[0] == 'R' && b.hdr[1] == 'S' && b.hdr[2] == 1 && b.hdr[3] == WIRE_HELLO);
	CHECK_EQ_INT(rd_be32(b.hdr + 6), 42);
	CHECK_EQ_INT(rd_be16(b.hdr + 10), wire_builder_body_len(&b));
	CHECK_EQ_INT(reparse(), 0);
	CHECK_EQ_INT(m.h.type, WIRE_HELLO);
	CHECK_EQ_INT(m.h.req_id, 42);
	CHECK_EQ_INT(m.n_tlv, 3);
	CHECK(wire_get_cstr(&m, WIRE_T_SIGNALER_ID, s, sizeof(s)) == 0);
	CHECK_EQ_STR(s, "sig-1.a_b");
	CHECK(wire_get_u32(&m, WIRE_T_PID, &u) == 0 && u == 1234);
	CHECK(wire_get_cstr(&m, WIRE_T_SW_VERSION, s, sizeof(s)) == 0);
	CHECK_EQ_STR(s, "rtmp2sip 0.3");
	CHECK_EQ_INT(wire_type_kind(WIRE_HELLO), WIRE_KIND_REQUEST);

	wire_builder_init(&b, WIRE_HELLO_OK, 42);
	wire_put_str(&b, WIRE_T_WORKER_ID, "w1");
	wire_put_u64(&b, WIRE_T_INSTANCE_ID, 0xfedcba9876543210ull);
	wire_put_u32(&b, WIRE_T_PID, 99);
	wire_put_str(&b, WIRE_T_HOST, "host.example");
	wire_put_str(&b, WIRE_T_SW_VERSION, "x");
	wire_put_u32(&b, WIRE_T_CAPACITY, 500);
	wire_put_u32(&b, WIRE_T_HB_INTERVAL_MS, 300);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK(wire_get_u64(&m, WIRE_T_INSTANCE_ID, &v) == 0 && v == 0xfedcba9876543210ull);
	CHECK(wire_get_u32(&m, WIRE_T_CAPACITY, &u) == 0 && u == 500);
	CHECK(wire_get_cstr(&m, WIRE_T_HOST, s, sizeof(s)) == 0);
	CHECK_EQ_STR(s, "host.example");
	CHECK_EQ_INT(wire_check_reply(&m, WIRE_HELLO, &e), 0);
	CHECK(wire_check_reply(&m, WIRE_CREATE_LEG, &e) < 0); /* HELLO_OK is not an OK */
}

static void test_heartbeat_roundtrip(void)
{
	uint32_t legs = 0, seq = 0;
	uint16_t cpu = 0;
	bool draining = false;

	wire_builder_init(&b, WIRE_HEARTBEAT, 0);
	wire_put_str(&b, WIRE_T_WORKER_ID, "w1");
	wire_put_u64(&b, WIRE_T_INSTANCE_ID, 1);
	wire_put_u32(&b, WIRE_T_LEGS, 17);
	wire_put_u16(&b, WIRE_T_CPU_PERMILLE, 345);
	wire_put_bool(&b, WIRE_T_DRAINING, true);
	wire_put_u32(&b, WIRE_T_SEQ, 0xffffffffu);
	wire_put_u32(&b, WIRE_T_CAPACITY, 0);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK(wire_get_u32(&m, WIRE_T_LEGS, &legs) == 0 && legs == 17);
	CHECK(wire_get_u16(&m, WIRE_T_CPU_PERMILLE, &cpu) == 0 && cpu == 345);
	CHECK(wire_get_bool(&m, WIRE_T_DRAINING, &draining) == 0 && draining);
	CHECK(wire_get_u32(&m, WIRE_T_SEQ, &seq) == 0 && seq == 0xffffffffu);
	CHECK_EQ_INT(wire_type_kind(WIRE_HEARTBEAT), WIRE_KIND_NOTIFY);
}

static void test_create_leg_roundtrip(void)
{
	static const uint8_t key[30] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 255};
	struct wire_codec c;
	const uint8_t *p;
	size_t n;
	char s[80];
	uint8_t u8 = 0;
	uint16_t u16 = 0;
	uint32_t u32 = 0;
	bool bl = false;

	wire_builder_init(&b, WIRE_CREATE_LEG, 1000);
	wire_put_str(&b, WIRE_T_LEG_ID, "call-7.leg_A");
	wire_put_str(&b, WIRE_T_CALL_ID, "a84b4c76e66710@pc33.example.com");
	wire_put_str(&b, WIRE_T_OWNER, "sig-1");
	wire_put_codec(&b, WIRE_T_RTMP_CODEC, &speex16);
	wire_put_codec(&b, WIRE_T_SIP_CODEC, &pcmu);
	wire_put_codec(&b, WIRE_T_SIP_CODEC, &pcma);
	wire_put_codec(&b, WIRE_T_SIP_CODEC, &speex16);
	wire_put_codec(&b, WIRE_T_SIP_CODEC, &tev);
	wire_put_str(&b, WIRE_T_REMOTE_IP, "2001:db8::1");
	wire_put_u16(&b, WIRE_T_REMOTE_PORT, 40000);
	wire_put_str(&b, WIRE_T_SRTP_SUITE, "AES_CM_128_HMAC_SHA1_80");
	wire_put_bytes(&b, WIRE_T_SRTP_REMOTE_KEY, key, sizeof(key));
	wire_put_bool(&b, WIRE_T_WANT_SRTP, true);
	wire_put_u8(&b, WIRE_T_DTMF_PT, 101);
	wire_put_u16(&b, WIRE_T_PTIME_MS, 20);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK_EQ_INT(m.h.req_id, 1000);
	CHECK(wire_get_cstr(&m, WIRE_T_LEG_ID, s, sizeof(s)) == 0);
	CHECK_EQ_STR(s, "call-7.leg_A");
	CHECK(wire_get_cstr(&m, WIRE_T_CALL_ID, s, sizeof(s)) == 0);
	CHECK_EQ_STR(s, "a84b4c76e66710@pc33.example.com");
	CHECK(wire_get_codec(&m, WIRE_T_RTMP_CODEC, 0, &c) == 0);
	CHECK(c.pt == 96 && c.rate == 16000 && c.channels == 1);
	CHECK_EQ_STR(c.name, "speex");
	CHECK_EQ_INT(wire_count(&m, WIRE_T_SIP_CODEC), 4);
	CHECK(wire_get_codec(&m, WIRE_T_SIP_CODEC, 0, &c) == 0 && c.pt == 0);
	CHECK_EQ_STR(c.name, "PCMU");
	CHECK(wire_get_codec(&m, WIRE_T_SIP_CODEC, 1, &c) == 0 && c.pt == 8);
	CHECK(wire_get_codec(&m, WIRE_T_SIP_CODEC, 2, &c) == 0 && c.pt == 96);
	CHECK(wire_get_codec(&m, WIRE_T_SIP_CODEC, 3, &c) == 0 && c.pt == 101);
	CHECK_EQ_STR(c.name, "telephone-event");
	CHECK_EQ_INT(wire_get_codec(&m, WIRE_T_SIP_CODEC, 4, &c), -ENOENT);
	CHECK(wire_get_u16(&m, WIRE_T_REMOTE_PORT, &u16) == 0 && u16 == 40000);
	CHECK(wire_get_bytes(&m, WIRE_T_SRTP_REMOTE_KEY, &p, &n) == 0 && n == 30);
	CHECK(memcmp(p, key, 30) == 0);
	CHECK(wire_get_bool(&m, WIRE_T_WANT_SRTP, &bl) == 0 && bl);
	CHECK(wire_get_u8(&m, WIRE_T_DTMF_PT, &u8) == 0 && u8 == 101);
	CHECK_EQ_INT(wire_get_u32(&m, WIRE_T_SSRC, &u32), -ENOENT);
	CHECK_EQ_INT(wire_get_u16(&m, WIRE_T_DTMF_PT, &u16), -EINVAL); /* wrong width */

	/* Its reply. */
	wire_builder_init(&b, WIRE_OK, 1000);
	wire_put_str(&b, WIRE_T_LOCAL_IP, "192.0.2.10");
	wire_put_u16(&b, WIRE_T_LOCAL_PORT, 20002);
	wire_put_codec(&b, WIRE_T_CHOSEN_CODEC, &pcmu);
	wire_put_str(&b, WIRE_T_SRTP_SUITE, "AES_CM_128_HMAC_SHA1_80");
	wire_put_bytes(&b, WIRE_T_SRTP_LOCAL_KEY, key, sizeof(key));
	wire_put_u32(&b, WIRE_T_SSRC, 0xdeadbeef);
	wire_put_bool(&b, WIRE_T_TRANSCODING, true);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK_EQ_INT(wire_check_reply(&m, WIRE_CREATE_LEG, &e), 0);
	CHECK_EQ_INT(wire_check_reply(&m, WIRE_ADOPT_LEG, &e), 0);
	CHECK(wire_get_u32(&m, WIRE_T_SSRC, &u32) == 0 && u32 == 0xdeadbeef);
	CHECK(wire_check_reply(&m, WIRE_LEG_STATS, &e) < 0);
	CHECK(strstr(e.reason, "PKTS_IN") != NULL);
}

static void test_leg_requests_roundtrip(void)
{
	char s[8];
	uint8_t u8 = 0;
	uint16_t u16 = 0;
	uint64_t u64 = 0;
	uint32_t u32 = 0;
	bool bl = false;

	wire_builder_init(&b, WIRE_UPDATE_LEG, 5);
	wire_put_str(&b, WIRE_T_LEG_ID, "l1");
	wire_put_str(&b, WIRE_T_REMOTE_IP, "192.0.2.1");
	wire_put_u16(&b, WIRE_T_REMOTE_PORT, 4000);
	wire_put_u8(&b, WIRE_T_CODEC_PT, 8);
	wire_put_bool(&b, WIRE_T_HOLD, true);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK(wire_get_bool(&m, WIRE_T_HOLD, &bl) == 0 && bl);
	CHECK(wire_get_u8(&m, WIRE_T_CODEC_PT, &u8) == 0 && u8 == 8);

	wire_builder_init(&b, WIRE_DESTROY_LEG, 6);
	wire_put_str(&b, WIRE_T_LEG_ID, "l1");
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	wire_builder_init(&b, WIRE_OK, 6);
	wire_put_bool(&b, WIRE_T_NOT_FOUND, true);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK_EQ_INT(wire_check_reply(&m, WIRE_DESTROY_LEG, &e), 0);
	CHECK(wire_get_bool(&m, WIRE_T_NOT_FOUND, &bl) == 0 && bl);

	wire_builder_init(&b, WIRE_SEND_DTMF, 7);
	wire_put_str(&b, WIRE_T_LEG_ID, "l1");
	wire_put_u8(&b, WIRE_T_DIGIT, '#');
	wire_put_u16(&b, WIRE_T_DURATION_MS, 160);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK(wire_get_u8(&m, WIRE_T_DIGIT, &u8) == 0 && u8 == '#');
	CHECK(wire_get_u16(&m, WIRE_T_DURATION_MS, &u16) == 0 && u16 == 160);
	wire_builder_init(&b, WIRE_OK, 7);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(wire_builder_body_len(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK_EQ_INT(wire_check_reply(&m, WIRE_SEND_DTMF, &e), 0);

	wire_builder_init(&b, WIRE_LEG_STATS, 8);
	wire_put_str(&b, WIRE_T_LEG_ID, "l1");
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	wire_builder_init(&b, WIRE_OK, 8);
	wire_put_u64(&b, WIRE_T_PKTS_IN, 1);
	wire_put_u64(&b, WIRE_T_PKTS_OUT, 2);
	wire_put_u64(&b, WIRE_T_BYTES_IN, 3);
	wire_put_u64(&b, WIRE_T_BYTES_OUT, UINT64_MAX);
	wire_put_u64(&b, WIRE_T_LOST, 5);
	wire_put_u32(&b, WIRE_T_JITTER_MS, 6);
	wire_put_u64(&b, WIRE_T_SRTP_AUTH_FAIL, 7);
	wire_put_u64(&b, WIRE_T_BAD_PKTS, 8);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK_EQ_INT(wire_check_reply(&m, WIRE_LEG_STATS, &e), 0);
	CHECK(wire_get_u64(&m, WIRE_T_BYTES_OUT, &u64) == 0 && u64 == UINT64_MAX);
	CHECK(wire_get_u32(&m, WIRE_T_JITTER_MS, &u32) == 0 && u32 == 6);

	wire_builder_init(&b, WIRE_WORKER_STATS, 9);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	wire_builder_init(&b, WIRE_OK, 9);
	wire_put_u32(&b, WIRE_T_LEGS, 10);
	wire_put_u32(&b, WIRE_T_TRANSCODING_LEGS, 4);
	wire_put_u32(&b, WIRE_T_PASSTHROUGH_LEGS, 6);
	wire_put_u16(&b, WIRE_T_CPU_PERMILLE, 250);
	wire_put_u64(&b, WIRE_T_PKTS_IN, 1000);
	wire_put_u64(&b, WIRE_T_PKTS_OUT, 999);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK_EQ_INT(wire_check_reply(&m, WIRE_WORKER_STATS, &e), 0);

	wire_builder_init(&b, WIRE_ADOPT_LEG, 10);
	wire_put_str(&b, WIRE_T_LEG_ID, "l1");
	wire_put_str(&b, WIRE_T_OWNER, "sig-2");
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK(wire_get_cstr(&m, WIRE_T_OWNER, s, sizeof(s)) == 0);
	CHECK_EQ_STR(s, "sig-2");
}

static void test_event_error_roundtrip(void)
{
	uint8_t u8 = 0;
	uint16_t u16 = 0;
	uint32_t u32 = 0;
	const char *s;
	size_t n;
	char big[400];

	wire_builder_init(&b, WIRE_EVENT, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "l1");
	wire_put_u8(&b, WIRE_T_EVENT_KIND, WIRE_EV_DTMF);
	wire_put_u8(&b, WIRE_T_DIGIT, '5');
	wire_put_u16(&b, WIRE_T_DURATION_MS, 240);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK(wire_get_u8(&m, WIRE_T_DIGIT, &u8) == 0 && u8 == '5');
	CHECK(wire_get_u16(&m, WIRE_T_DURATION_MS, &u16) == 0 && u16 == 240);

	wire_builder_init(&b, WIRE_EVENT, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "l1");
	wire_put_u8(&b, WIRE_T_EVENT_KIND, WIRE_EV_RTP_TIMEOUT);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);

	wire_builder_init(&b, WIRE_EVENT, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "l1");
	wire_put_u8(&b, WIRE_T_EVENT_KIND, WIRE_EV_LEG_FAILED);
	wire_put_str(&b, WIRE_T_REASON, "SRTP key expired");
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK(wire_get_str(&m, WIRE_T_REASON, &s, &n) == 0 && n == 16 && !memcmp(s, "SRTP", 4));

	/* A DTMF event needs its digit. */
	wire_builder_init(&b, WIRE_EVENT, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "l1");
	wire_put_u8(&b, WIRE_T_EVENT_KIND, WIRE_EV_DTMF);
	CHECK_EQ_INT(wire_builder_finish(&b), -EINVAL);

	CHECK_EQ_INT(wire_build_error(&b, 77, ENOENT, WIRE_T_LEG_ID, "leg not found"), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK_EQ_INT(m.h.type, WIRE_ERROR);
	CHECK_EQ_INT(m.h.req_id, 77);
	CHECK(wire_get_u32(&m, WIRE_T_ERR_CODE, &u32) == 0 && u32 == ENOENT);
	CHECK(wire_get_u16(&m, WIRE_T_ERR_TAG, &u16) == 0 && u16 == WIRE_T_LEG_ID);
	CHECK(wire_get_str(&m, WIRE_T_ERR_TEXT, &s, &n) == 0 && n == 13);

	/* Long texts are cut to 255 bytes, never refused. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_INT(wire_build_error(&b, 78, EIO, 0, big), 0);
	CHECK_EQ_INT(reparse(), 0);
	CHECK(wire_get_str(&m, WIRE_T_ERR_TEXT, &s, &n) == 0 && n == 255);
	CHECK(!wire_has(&m, WIRE_T_ERR_TAG));
}

static void test_media_roundtrip(void)
{
	uint8_t hdr[WIRE_HDR_LEN], body[WIRE_MEDIA_MAX_BODY], payload[WIRE_MAX_PAYLOAD];
	struct wire_media md;
	char id[WIRE_MAX_ID + 2];
	size_t blen = 0;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	CHECK_EQ_INT(wire_media_encode(hdr, body, sizeof(body), &blen, "leg-9", 123456, 1, payload,
				       42),
		     0);
	CHECK_EQ_INT(blen, 1 + 5 + 4 + 1 + 42);
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e), 0);
	CHECK_EQ_STR(md.leg_id, "leg-9");
	CHECK_EQ_INT(md.ts, 123456);
	CHECK_EQ_INT(md.flags, WIRE_MEDIA_F_MARKER);
	CHECK_EQ_INT(md.len, 42);
	CHECK(memcmp(md.payload, payload, 42) == 0);

	/* Largest: 64-byte id and an 8208-byte payload (an 8 KiB G.711 message with its header). */
	memset(id, 'a', WIRE_MAX_ID);
	id[WIRE_MAX_ID] = '\0';
	CHECK_EQ_INT(wire_media_encode(hdr, body, sizeof(body), &blen, id, 0xffffffffu, 0, payload,
				       WIRE_MAX_PAYLOAD),
		     0);
	CHECK_EQ_INT(blen, WIRE_MEDIA_MAX_BODY);
	CHECK_EQ_INT(WIRE_MAX_PAYLOAD, 8208);
	CHECK_EQ_INT(WIRE_MEDIA_MAX_BODY, 8278);
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e), 0);
	CHECK_EQ_INT(md.len, WIRE_MAX_PAYLOAD);
	CHECK_EQ_INT(md.ts, 0xffffffffu);
	CHECK(memcmp(md.payload, payload, WIRE_MAX_PAYLOAD) == 0);
	/* What the old 1500-byte bound refused: ffmpeg's 2048-sample G.711 message. */
	CHECK_EQ_INT(wire_media_encode(hdr, body, sizeof(body), &blen, "leg-2", 7, 0, payload, 2049),
		     0);
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e), 0);
	CHECK_EQ_INT(md.len, 2049);

	/* Empty payload is allowed. */
	CHECK_EQ_INT(wire_media_encode(hdr, body, sizeof(body), &blen, "x", 1, 0, NULL, 0), 0);
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e), 0);
	CHECK_EQ_INT(md.len, 0);

	/* Encoding refusals. */
	CHECK_EQ_INT(wire_media_encode(hdr, body, sizeof(body), &blen, "bad id", 1, 0, payload, 1),
		     -EINVAL);
	id[WIRE_MAX_ID] = 'a';
	id[WIRE_MAX_ID + 1] = '\0';
	CHECK_EQ_INT(wire_media_encode(hdr, body, sizeof(body), &blen, id, 1, 0, payload, 1),
		     -EINVAL);
	CHECK_EQ_INT(wire_media_encode(hdr, body, sizeof(body), &blen, "x", 1, 0, payload,
				       WIRE_MAX_PAYLOAD + 1),
		     -E2BIG);
	CHECK_EQ_INT(wire_media_encode(hdr, body, 10, &blen, "x", 1, 0, payload, 10), -E2BIG);
}

/* --- parser validation --- */

static void test_header_errors(void)
{
	static const uint8_t empty[1];

	/* Truncated and oversize header frames. */
	wire_builder_init(&b, WIRE_WORKER_STATS, 1);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	CHECK_EQ_INT(wire_parse(b.hdr, 11, empty, 0, &m, &e), -EBADMSG);
	CHECK(!e.can_reply);
	CHECK(strstr(e.reason, "header") != NULL);
	CHECK_EQ_INT(wire_parse(b.hdr, 0, empty, 0, &m, &e), -EBADMSG);
	raw_hdr(1, WIRE_WORKER_STATS, 1, 0);
	CHECK_EQ_INT(wire_parse(rhdr, 13, empty, 0, &m, &e), -EBADMSG);

	/* Bad magic. */
	raw_hdr(1, WIRE_WORKER_STATS, 1, 0);
	rhdr[1] = 'X';
	CHECK_EQ_INT(wire_parse(rhdr, WIRE_HDR_LEN, empty, 0, &m, &e), -EBADMSG);
	CHECK(!e.can_reply);
	CHECK(strstr(e.reason, "magic") != NULL);

	/* Another version: refused, but the request id is readable for the ERROR reply. */
	raw_hdr(2, WIRE_CREATE_LEG, 0x01020304, 0);
	CHECK_EQ_INT(wire_parse(rhdr, WIRE_HDR_LEN, empty, 0, &m, &e), -EPROTONOSUPPORT);
	CHECK(e.can_reply);
	CHECK_EQ_INT(e.code, EPROTONOSUPPORT);
	CHECK_EQ_INT(m.h.req_id, 0x01020304);
	CHECK_EQ_INT(m.h.type, WIRE_CREATE_LEG);
	CHECK(strstr(e.reason, "unsupported version") != NULL);
	raw_hdr(0, WIRE_CREATE_LEG, 1, 0);
	CHECK_EQ_INT(wire_parse(rhdr, WIRE_HDR_LEN, empty, 0, &m, &e), -EPROTONOSUPPORT);

	/* Unknown types: requests by range get ENOTSUP, others are notifications. */
	raw_hdr(1, 0x40, 9, 0);
	CHECK_EQ_INT(wire_parse(rhdr, WIRE_HDR_LEN, empty, 0, &m, &e), -ENOTSUP);
	CHECK(e.can_reply && m.h.req_id == 9);
	CHECK_EQ_INT(wire_type_kind(0x40), WIRE_KIND_REQUEST);
	CHECK_EQ_INT(wire_type_kind(0x90), WIRE_KIND_NOTIFY);
	CHECK_EQ_INT(wire_type_kind(0x00), WIRE_KIND_UNKNOWN);

	/* Body length in the header must match the frame. */
	raw_leg_request();
	raw_hdr(1, WIRE_DESTROY_LEG, 1, rlen + 1);
	CHECK_EQ_INT(wire_parse(rhdr, WIRE_HDR_LEN, rbody, rlen, &m, &e), -EBADMSG);
	CHECK(e.can_reply);
	raw_hdr(1, WIRE_DESTROY_LEG, 1, rlen);
	CHECK_EQ_INT(wire_parse(rhdr, WIRE_HDR_LEN, rbody, rlen, &m, &e), 0);

	/* A body frame above 64 KiB can never match the u16 length. */
	raw_reset();
	raw_str(WIRE_T_LEG_ID, "l1");
	raw_hdr(1, WIRE_DESTROY_LEG, 1, 0xffff);
	CHECK_EQ_INT(wire_parse(rhdr, WIRE_HDR_LEN, rbody, 0x10000, &m, &e), -EBADMSG);

	/* MEDIA is not a TLV message. */
	raw_hdr(1, WIRE_MEDIA, 0, 0);
	CHECK_EQ_INT(wire_parse(rhdr, WIRE_HDR_LEN, empty, 0, &m, &e), -EBADMSG);
}

static void test_tlv_layout_errors(void)
{
	uint8_t z = 0;

	/* TLV length beyond the body. */
	raw_leg_request();
	wr_be16(rbody + 2, 200);
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), -EBADMSG);
	CHECK(strstr(e.reason, "beyond") != NULL);
	CHECK_EQ_INT(e.tag, WIRE_T_LEG_ID);

	/* Truncated TLV header (3 trailing bytes). */
	raw_leg_request();
	memcpy(rbody + rlen, "\x01\x00\x00", 3);
	rlen += 3;
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), -EBADMSG);
	CHECK(strstr(e.reason, "truncated") != NULL);

	/* 64 TLVs pass, 65 do not (unknown tags count too). */
	raw_leg_request();
	for (int i = 0; i < 63; i++)
		raw_tlv((uint16_t)(0x7000 + i), &z, 1);
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), 0);
	CHECK_EQ_INT(m.n_tlv, 64);
	raw_tlv(0x7100, &z, 1);
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), -EBADMSG);
	CHECK(strstr(e.reason, "64") != NULL);

	/* Tag 0 is reserved. */
	raw_leg_request();
	raw_tlv(0, &z, 1);
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), -EINVAL);
}

static void test_value_errors(void)
{
	static const uint8_t two = 2, five = '5', bad_digit = 'E';
	uint8_t codec[8] = {0, 1, 0, 0, 0x1f, 0x40, 'X', 'Y'};
	char s[300];

	/* Duplicate tag. */
	raw_leg_request();
	raw_str(WIRE_T_LEG_ID, "leg-2");
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), -EINVAL);
	CHECK(strstr(e.reason, "duplicate") != NULL);
	CHECK_EQ_INT(e.tag, WIRE_T_LEG_ID);
	CHECK(e.can_reply);

	/* String containing NUL. */
	raw_leg_request();
	raw_tlv(WIRE_T_CALL_ID, "ab\0cd", 5);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);
	CHECK(strstr(e.reason, "NUL") != NULL);
	CHECK_EQ_INT(e.tag, WIRE_T_CALL_ID);

	/* Oversize strings: 255 is the limit, REMOTE_IP has 45. */
	memset(s, 'a', sizeof(s));
	raw_leg_request();
	raw_tlv(WIRE_T_CALL_ID, s, 255);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), 0);
	raw_leg_request();
	raw_tlv(WIRE_T_CALL_ID, s, 256);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);
	CHECK(strstr(e.reason, "max 255") != NULL);
	raw_leg_request();
	raw_tlv(WIRE_T_REMOTE_IP, s, 46);
	raw_tlv(WIRE_T_REMOTE_PORT, "\0\1", 2);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);

	/* Ids: charset and length. */
	raw_reset();
	raw_str(WIRE_T_LEG_ID, "leg 1");
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), -EINVAL);
	raw_reset();
	raw_tlv(WIRE_T_LEG_ID, s, 65);
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), -EINVAL);
	raw_reset();
	raw_tlv(WIRE_T_LEG_ID, s, 64);
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), 0);
	raw_reset();
	raw_tlv(WIRE_T_LEG_ID, s, 0);
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), -EINVAL);

	/* Integer widths, bools, digits. */
	raw_leg_request();
	raw_tlv(WIRE_T_PTIME_MS, "\0\0\0\x14", 4);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);
	CHECK(strstr(e.reason, "PTIME_MS") != NULL);
	raw_leg_request();
	raw_tlv(WIRE_T_HOLD, &two, 1);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);
	raw_leg_request();
	raw_tlv(WIRE_T_DIGIT, &bad_digit, 1);
	CHECK_EQ_INT(raw_parse(WIRE_SEND_DTMF), -EINVAL);
	raw_leg_request();
	raw_tlv(WIRE_T_DIGIT, &five, 1);
	CHECK_EQ_INT(raw_parse(WIRE_SEND_DTMF), 0);

	/* Codecs: layout and fields. */
	raw_leg_request();
	raw_tlv(WIRE_T_CODEC_PT, &two, 1);
	raw_tlv(WIRE_T_SIP_CODEC, codec, 8);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), 0);
	codec[0] = 128; /* pt above 127 */
	raw_leg_request();
	raw_tlv(WIRE_T_SIP_CODEC, codec, 8);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);
	codec[0] = 0;
	raw_leg_request();
	raw_tlv(WIRE_T_SIP_CODEC, codec, 6); /* no name */
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);
	codec[7] = ' ';
	raw_leg_request();
	raw_tlv(WIRE_T_SIP_CODEC, codec, 8);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);
	codec[7] = 'Y';

	/* SIP_CODEC repeats up to 16 times. */
	raw_leg_request();
	for (int i = 0; i < WIRE_MAX_CODECS; i++)
		raw_tlv(WIRE_T_SIP_CODEC, codec, 8);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), 0);
	raw_tlv(WIRE_T_SIP_CODEC, codec, 8);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);
	CHECK(strstr(e.reason, "too many") != NULL);

	/* Cross-tag rules. */
	raw_leg_request();
	raw_str(WIRE_T_REMOTE_IP, "192.0.2.1");
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);
	CHECK_EQ_INT(e.tag, WIRE_T_REMOTE_PORT);
	raw_leg_request();
	raw_tlv(WIRE_T_SRTP_REMOTE_KEY, s, 30);
	CHECK_EQ_INT(raw_parse(WIRE_UPDATE_LEG), -EINVAL);
	CHECK_EQ_INT(e.tag, WIRE_T_SRTP_SUITE);
	raw_reset();
	raw_tlv(WIRE_T_ERR_CODE, "\0\0\0\0", 4);
	raw_str(WIRE_T_ERR_TEXT, "zero");
	CHECK_EQ_INT(raw_parse(WIRE_ERROR), -EINVAL);
}

static void test_required_and_unknown(void)
{
	static const uint8_t junk[5] = {1, 2, 3, 4, 5};
	const struct wire_tlv *t;
	char s[16];

	/* Missing required tag: named in the reason and in err->tag. */
	raw_reset();
	raw_str(WIRE_T_CALL_ID, "c");
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), -EINVAL);
	CHECK(e.can_reply);
	CHECK_EQ_INT(e.code, EINVAL);
	CHECK_EQ_INT(e.tag, WIRE_T_LEG_ID);
	CHECK(strstr(e.reason, "missing required tag LEG_ID") != NULL);

	raw_reset();
	raw_str(WIRE_T_LEG_ID, "l");
	raw_str(WIRE_T_CALL_ID, "c");
	raw_str(WIRE_T_OWNER, "s");
	CHECK_EQ_INT(raw_parse(WIRE_CREATE_LEG), -EINVAL);
	CHECK_EQ_INT(e.tag, WIRE_T_RTMP_CODEC);

	raw_reset();
	CHECK_EQ_INT(raw_parse(WIRE_HEARTBEAT), -EINVAL);
	CHECK_EQ_INT(e.tag, WIRE_T_WORKER_ID);

	/* Unknown tags are kept, skipped by the getters, and may repeat. */
	raw_reset();
	raw_tlv(0x7abc, junk, sizeof(junk));
	raw_str(WIRE_T_LEG_ID, "leg-1");
	raw_tlv(0x7abc, junk, 2);
	raw_tlv(0xffff, junk, 0);
	CHECK_EQ_INT(raw_parse(WIRE_DESTROY_LEG), 0);
	CHECK_EQ_INT(m.n_tlv, 4);
	CHECK(wire_get_cstr(&m, WIRE_T_LEG_ID, s, sizeof(s)) == 0);
	CHECK_EQ_STR(s, "leg-1");
	CHECK_EQ_INT(wire_count(&m, 0x7abc), 2);
	t = wire_find(&m, 0x7abc, 1);
	CHECK(t && t->len == 2);
	CHECK(wire_tag_name(0x7abc) == NULL);
	CHECK_EQ_STR(wire_tag_name(WIRE_T_LEG_ID), "LEG_ID");
	CHECK_EQ_STR(wire_type_name(WIRE_ADOPT_LEG), "ADOPT_LEG");
	CHECK_EQ_STR(wire_type_name(0x55), "?");

	/* Getter corner cases. */
	CHECK_EQ_INT(wire_get_cstr(&m, WIRE_T_LEG_ID, s, 5), -ENOSPC);
	CHECK_EQ_INT(wire_get_cstr(&m, WIRE_T_CALL_ID, s, sizeof(s)), -ENOENT);
	CHECK_EQ_INT(wire_get_u8(&m, 0x7abc, (uint8_t *)s), -EINVAL);
}

static void test_media_errors(void)
{
	uint8_t hdr[WIRE_HDR_LEN], body[WIRE_MEDIA_MAX_BODY + 8], payload[WIRE_MAX_PAYLOAD + 1];
	struct wire_media md;
	size_t blen = 0;

	memset(payload, 0, sizeof(payload));
	CHECK_EQ_INT(wire_media_encode(hdr, body, sizeof(body), &blen, "leg", 1, 0, payload, 10), 0);
	/* Header/body length mismatch. */
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen - 1, &md, &e), -EBADMSG);
	/* Truncated header. */
	CHECK_EQ_INT(wire_media_parse(hdr, 11, body, blen, &md, &e), -EBADMSG);
	/* Bad leg id byte. */
	body[2] = '/';
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e), -EINVAL);
	body[2] = 'e';
	/* id length pointing past the body. */
	body[0] = 60;
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e), -EBADMSG);
	body[0] = 0;
	CHECK(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e) < 0);
	body[0] = 3;
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e), 0);
	/* Payload of WIRE_MAX_PAYLOAD + 1 bytes (hand-made): refused, the bound named. */
	blen = 1 + 3 + 5 + WIRE_MAX_PAYLOAD + 1;
	wr_be16(hdr + 10, (uint32_t)blen);
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e), -EBADMSG);
	CHECK(strstr(e.reason, "8209 bytes, max 8208") != NULL);
	/* ... and at the bound, accepted. */
	blen--;
	wr_be16(hdr + 10, (uint32_t)blen);
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e), 0);
	CHECK_EQ_INT(md.len, WIRE_MAX_PAYLOAD);
	/* Not MEDIA. */
	raw_hdr(1, WIRE_EVENT, 0, 0);
	CHECK_EQ_INT(wire_media_parse(rhdr, WIRE_HDR_LEN, body, 0, &md, &e), -EBADMSG);
	/* Other version. */
	hdr[2] = 9;
	CHECK_EQ_INT(wire_media_parse(hdr, sizeof(hdr), body, blen, &md, &e), -EPROTONOSUPPORT);
}

/* --- builder validation --- */

static void test_builder_errors(void)
{
	static uint8_t big[40000];
	struct wire_codec c = pcmu;
	char s[300];

	/* Wrong putter for a known tag. */
	wire_builder_init(&b, WIRE_DESTROY_LEG, 1);
	CHECK_EQ_INT(wire_put_u32(&b, WIRE_T_LEG_ID, 5), -EINVAL);
	CHECK(strstr(b.reason, "LEG_ID") != NULL);
	/* Sticky: later puts fail with the first error, finish too. */
	CHECK_EQ_INT(wire_put_str(&b, WIRE_T_LEG_ID, "ok"), -EINVAL);
	CHECK_EQ_INT(wire_builder_finish(&b), -EINVAL);
	CHECK(strstr(b.reason, "LEG_ID") != NULL);

	/* Duplicates. */
	wire_builder_init(&b, WIRE_DESTROY_LEG, 1);
	CHECK_EQ_INT(wire_put_str(&b, WIRE_T_LEG_ID, "a"), 0);
	CHECK_EQ_INT(wire_put_str(&b, WIRE_T_LEG_ID, "b"), -EINVAL);
	CHECK(strstr(b.reason, "duplicate") != NULL);

	/* Bad values. */
	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	wire_builder_init(&b, WIRE_UPDATE_LEG, 1);
	CHECK_EQ_INT(wire_put_str(&b, WIRE_T_CALL_ID, s), -EINVAL);
	wire_builder_init(&b, WIRE_UPDATE_LEG, 1);
	CHECK_EQ_INT(wire_put_strn(&b, WIRE_T_CALL_ID, "a\0b", 3), -EINVAL);
	wire_builder_init(&b, WIRE_UPDATE_LEG, 1);
	CHECK_EQ_INT(wire_put_str(&b, WIRE_T_LEG_ID, "no spaces"), -EINVAL);
	wire_builder_init(&b, WIRE_UPDATE_LEG, 1);
	CHECK_EQ_INT(wire_put_u8(&b, WIRE_T_DIGIT, 'x'), -EINVAL);
	wire_builder_init(&b, WIRE_UPDATE_LEG, 1);
	c.pt = 200;
	CHECK_EQ_INT(wire_put_codec(&b, WIRE_T_SIP_CODEC, &c), -EINVAL);
	wire_builder_init(&b, WIRE_UPDATE_LEG, 1);
	CHECK_EQ_INT(wire_put_bytes(&b, WIRE_T_SRTP_REMOTE_KEY, s, WIRE_MAX_KEY + 1), -EINVAL);
	wire_builder_init(&b, WIRE_UPDATE_LEG, 1);
	CHECK_EQ_INT(wire_put_u8(&b, 0, 1), -EINVAL);

	/* Missing required tag is caught at finish. */
	wire_builder_init(&b, WIRE_CREATE_LEG, 1);
	wire_put_str(&b, WIRE_T_LEG_ID, "l");
	CHECK_EQ_INT(wire_builder_finish(&b), -EINVAL);
	CHECK(strstr(b.reason, "CALL_ID") != NULL);

	/* 64 TLVs, then E2BIG. */
	wire_builder_init(&b, WIRE_WORKER_STATS, 1);
	for (int i = 0; i < WIRE_MAX_TLVS; i++)
		CHECK_EQ_INT(wire_put_u8(&b, (uint16_t)(0x7000 + i), 1), 0);
	CHECK_EQ_INT(wire_put_u8(&b, 0x7fff, 1), -E2BIG);

	/* Body above 64 KiB. */
	wire_builder_init(&b, WIRE_WORKER_STATS, 1);
	CHECK_EQ_INT(wire_put_bytes(&b, 0x7000, big, sizeof(big)), 0);
	CHECK_EQ_INT(wire_put_bytes(&b, 0x7001, big, 25400), 0);
	CHECK_EQ_INT(wire_builder_body_len(&b), 65408);
	CHECK_EQ_INT(wire_put_bytes(&b, 0x7002, big, 200), -E2BIG);
	CHECK_EQ_INT(wire_builder_finish(&b), -E2BIG);

	/* MEDIA and unknown types are not built here. */
	wire_builder_init(&b, WIRE_MEDIA, 0);
	CHECK_EQ_INT(wire_builder_finish(&b), -EINVAL);
	wire_builder_init(&b, 0x33, 1);
	CHECK_EQ_INT(wire_builder_finish(&b), -EINVAL);

	/* init clears the error; raw puts are validated against the tag's type. */
	wire_builder_init(&b, WIRE_DESTROY_LEG, 1);
	CHECK_EQ_INT(wire_put_raw(&b, WIRE_T_LEG_ID, "leg", 3), 0);
	CHECK_EQ_INT(wire_put_raw(&b, WIRE_T_PTIME_MS, "\1", 1), -EINVAL);
	wire_builder_init(&b, WIRE_DESTROY_LEG, 1);
	wire_put_raw(&b, WIRE_T_LEG_ID, "leg", 3);
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	wire_builder_set_req_id(&b, 0xabcdef01);
	wire_builder_set_flags(&b, WIRE_F_RETRY);
	CHECK_EQ_INT(reparse(), 0);
	CHECK_EQ_INT(m.h.req_id, 0xabcdef01);
	CHECK_EQ_INT(m.h.flags, WIRE_F_RETRY);
}

/* MEDIA_BATCH: several frames in one message; full batches refuse; a broken record stops. */
static void test_media_batch(void)
{
	static struct wire_media_batch mb;
	struct wire_media md;
	struct wire_err err;
	uint8_t payload[160];
	size_t off = 0;
	unsigned n = 0;
	int r;

	memset(payload, 0x55, sizeof(payload));
	wire_media_batch_reset(&mb);
	CHECK_EQ_INT(wire_media_batch_add(&mb, "leg-a", 20, 0, payload, 160), 0);
	CHECK_EQ_INT(wire_media_batch_add(&mb, "leg-b", 40, WIRE_MEDIA_F_MARKER, payload, 10), 0);
	CHECK_EQ_INT(wire_media_batch_add(&mb, "leg-c", 60, 0, NULL, 0), 0);
	CHECK_EQ_INT(wire_media_batch_add(&mb, "bad id!", 60, 0, payload, 1), -EINVAL);
	CHECK_EQ_INT(wire_media_batch_add(&mb, "leg-d", 60, 0, payload, WIRE_MAX_PAYLOAD + 1), -E2BIG);
	wire_media_batch_finish(&mb, 0);
	CHECK_EQ_INT(mb.n, 3);
	while ((r = wire_media_batch_next(mb.hdr, sizeof(mb.hdr), mb.body, mb.len, &off, &md, &err)) > 0) {
		n++;
		if (n == 1)
			CHECK(strcmp(md.leg_id, "leg-a") == 0 && md.ts == 20 && md.len == 160 &&
			      md.payload[0] == 0x55);
		if (n == 2)
			CHECK(strcmp(md.leg_id, "leg-b") == 0 && md.flags == WIRE_MEDIA_F_MARKER &&
			      md.len == 10);
		if (n == 3)
			CHECK(strcmp(md.leg_id, "leg-c") == 0 && md.len == 0);
	}
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(n, 3);
	/* The send stamp: 0 is written as 1 (0 reads "not stamped"); another type has none. */
	CHECK_EQ_INT(wire_media_batch_sent_ms(mb.hdr, sizeof(mb.hdr)), 1);
	wire_media_batch_finish(&mb, 0xfffffff0u);
	CHECK(wire_media_batch_sent_ms(mb.hdr, sizeof(mb.hdr)) == 0xfffffff0u);
	CHECK_EQ_INT(wire_media_batch_sent_ms(mb.hdr, sizeof(mb.hdr) - 1), 0);

	/* Records of the largest payload: three fit in a batch, the fourth waits for the next. */
	{
		static uint8_t big[WIRE_MAX_PAYLOAD];
		char id[WIRE_MAX_ID + 1];

		memset(id, 'i', WIRE_MAX_ID);
		id[WIRE_MAX_ID] = '\0';
		memset(big, 0x7f, sizeof(big));
		wire_media_batch_reset(&mb);
		for (int i = 0; i < 3; i++)
			CHECK_EQ_INT(wire_media_batch_add(&mb, id, (uint32_t)i, 0, big, sizeof(big)), 0);
		CHECK_EQ_INT(wire_media_batch_add(&mb, id, 3, 0, big, sizeof(big)), -ENOSPC);
		CHECK_EQ_INT(mb.len, 3 * (2 + WIRE_MEDIA_MAX_BODY));
		wire_media_batch_finish(&mb, 5);
		off = 0;
		n = 0;
		while ((r = wire_media_batch_next(mb.hdr, sizeof(mb.hdr), mb.body, mb.len, &off, &md,
						  &err)) > 0) {
			CHECK(md.len == WIRE_MAX_PAYLOAD && md.ts == n && md.payload[100] == 0x7f);
			n++;
		}
		CHECK_EQ_INT(r, 0);
		CHECK_EQ_INT(n, 3);
	}

	/* Fill it up: -ENOSPC, never a truncated record. */
	wire_media_batch_reset(&mb);
	n = 0;
	while ((r = wire_media_batch_add(&mb, "leg-x", n, 0, payload, 160)) == 0)
		n++;
	CHECK_EQ_INT(r, -ENOSPC);
	CHECK(n > 100 && mb.len <= WIRE_BATCH_MAX_BODY);

	/* A record overrunning the body: the frames before it come out, then an error. */
	wire_media_batch_reset(&mb);
	wire_media_batch_add(&mb, "leg-a", 20, 0, payload, 16);
	wire_media_batch_add(&mb, "leg-b", 40, 0, payload, 16);
	mb.body[mb.len - (2 + 1 + 5 + 5 + 16)] = 0xff; /* second record's length, high byte */
	wire_media_batch_finish(&mb, 0);
	off = 0;
	CHECK_EQ_INT(wire_media_batch_next(mb.hdr, sizeof(mb.hdr), mb.body, mb.len, &off, &md, &err), 1);
	CHECK(wire_media_batch_next(mb.hdr, sizeof(mb.hdr), mb.body, mb.len, &off, &md, &err) < 0);
	/* Header/body length mismatch and wrong type. */
	off = 0;
	CHECK(wire_media_batch_next(mb.hdr, sizeof(mb.hdr), mb.body, mb.len - 1, &off, &md, &err) < 0);
	mb.hdr[3] = WIRE_MEDIA;
	off = 0;
	CHECK(wire_media_batch_next(mb.hdr, sizeof(mb.hdr), mb.body, mb.len, &off, &md, &err) < 0);
}

/* The queueing estimate: offsets beyond the least seen, across clock wrap and windows. */
static void test_backlog(void)
{
	struct wire_backlog bl = {0};
	uint64_t now = 1000000;
	uint32_t sent = 0xffffff00u; /* the sender's clock is about to wrap: unrelated to ours */

	CHECK_EQ_INT(wire_backlog_update(&bl, sent, now), 0);
	/* Steady: 20 ms apart on both clocks, 1-3 ms of jitter. */
	for (int i = 1; i <= 50; i++)
		CHECK(wire_backlog_update(&bl, sent + 20u * (uint32_t)i, now + 20u * (uint64_t)i + (uint64_t)(i % 3)) <= 2);
	/* A 500 ms stall of the receiver: the batches sent meanwhile arrive late, then drain. */
	CHECK_EQ_INT(wire_backlog_update(&bl, sent + 20u * 51, now + 20u * 51 + 500), 500);
	CHECK_EQ_INT(wire_backlog_update(&bl, sent + 20u * 52, now + 20u * 52 + 480), 480);
	CHECK_EQ_INT(wire_backlog_update(&bl, sent + 20u * 53, now + 20u * 53), 0);
	/* A quicker path found later lowers the base: the delay reads from there on. */
	CHECK_EQ_INT(wire_backlog_update(&bl, sent + 20u * 54, now + 20u * 54 - 5), 0);
	CHECK_EQ_INT(wire_backlog_update(&bl, sent + 20u * 55, now + 20u * 55), 5);
	/* Windows roll over: after two 30 s windows at a constant +100 ms, that is the new base
	 * (the drift of the clocks, or a slower path, does not read as queueing forever). */
	for (int i = 0; i <= 70; i++)
		wire_backlog_update(&bl, sent + 1000u * (uint32_t)i, now + 100000u + 1000u * (uint64_t)i + 100);
	CHECK_EQ_INT(wire_backlog_update(&bl, sent + 71000u, now + 100000u + 71000u + 100), 0);
	/* Another sender under the same id (its clock an hour away): a fresh start, not an hour of
	 * queueing. */
	CHECK_EQ_INT(wire_backlog_update(&bl, sent - 3600000u, now + 200000u), 0);
	CHECK_EQ_INT(wire_backlog_update(&bl, sent - 3600000u + 20, now + 200000u + 20 + 300), 300);
}

int main(void)
{
	TEST_RUN(test_hello_roundtrip);
	TEST_RUN(test_heartbeat_roundtrip);
	TEST_RUN(test_create_leg_roundtrip);
	TEST_RUN(test_leg_requests_roundtrip);
	TEST_RUN(test_event_error_roundtrip);
	TEST_RUN(test_media_roundtrip);
	TEST_RUN(test_header_errors);
	TEST_RUN(test_tlv_layout_errors);
	TEST_RUN(test_value_errors);
	TEST_RUN(test_required_and_unknown);
	TEST_RUN(test_media_errors);
	TEST_RUN(test_media_batch);
	TEST_RUN(test_backlog);
	TEST_RUN(test_builder_errors);
	wire_builder_free(&b);
	return TEST_DONE();
}
