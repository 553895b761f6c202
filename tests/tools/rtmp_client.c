/*
 * rtmp_client.c - a test client on librtmp: connect, send custom invokes, print the replies.
 *
 * librtmp is a client library no one here wrote, so it checks the signaler against an
 * independent reading of the protocol (including librtmp's own FP9 digest handshake).
 *
 *   TCP connect + handshake (librtmp) --> connect(txid 1) --> wait _result/_error txid 1
 *        |                                                         |
 *        v (failure: exit 1)                                       v
 *                          [ invoke METHOD (txid 2, 3, ...) --> wait _result/_error ]*
 *                                                                  |
 *                                                                  v
 *                               [ --play / --publish: the media phase, below ]
 *                                                                  |
 *                                                                  v
 *                                      [ --expect-close: wait for the server to close ]
 *
 * Every reply is printed on stdout as one line, e.g. `_result 2 null "hello" {k:"v"}`;
 * diagnostics go to stderr. Exit status: 0 when every expectation held, 1 when one did not
 * (or on a network failure or timeout), 2 on a usage error. Every wait is bounded by --timeout.
 *
 * The media phase (--play and/or --publish NAME, one connection, as a Flash client holds a call):
 *
 *   window size + SetBufferLength 0 (as librtmp's own player sends them after connect)
 *     --> createStream x2 --> play NAME on the first, publish NAME "live" on the second
 *     --> for --seconds, one poll() loop: every 20 ms (CLOCK_MONOTONIC from the start, no
 *         drift) one audio message on the published stream (G.711 u-law silence by default;
 *         --tone, --publish-codec opus: rtmp_client_audio.h), Opus's SequenceStart first;
 *         every message read as soon as it arrives (no buffering of our own): the played
 *         stream's G.711 audio is scanned for audio_mark.h markers, and with --wav every played
 *         message is decoded into the file; commands are printed
 *     --> Opus's SequenceEnd; the connection is closed (the server ends what was published)
 *
 * Media output on stdout: each command received as one line (`onStatus 0 null {...}`);
 * `MARK <k> <us> <ts>` for each marker found in the played audio (us: CLOCK_MONOTONIC when the
 * message holding its first sample was read, ts: that message's RTMP timestamp) and `BADMARK
 * <us> <ts>` for a loud frame that is none; at the end `MEDIA sent=N audio=N bytes=N first_tag=T
 * marks=N bad_marks=N undecodable=N recorded=N` (undecodable: played audio messages not in
 * G.711; recorded: messages --wav decoded). The phase fails (exit 1) when the connection closes
 * early or an onStatus of level "error" arrives.
 *
 * Usage: rtmp_client [options] URL
 *   --conn-arg 'O:1 NS:k:v NN:n:1 O:0'   extra connect arguments (librtmp "conn=" syntax),
 *                                        space separated; repeatable
 *   --object-encoding 0|3                objectEncoding sent in connect (default 0)
 *   --invoke METHOD                      send METHOD(txid, null, args...); repeatable. The
 *                                        options below apply to the latest --invoke, or to
 *                                        connect when given before any --invoke.
 *   --arg-str S | --arg-num N | --arg-bool true|false | --arg-null
 *   --arg-obj k=v,...                    an object; v is a number when it parses as one,
 *                                        true/false a boolean, anything else a string
 *   --expect result|error                reply must be _result / _error (connect defaults to
 *                                        result)
 *   --expect-code CODE                   an object in the reply must have code == CODE
 *   --expect-echo                        reply must be _result(txid, null, <the same args>)
 *   --expect-close                       after the last reply the server must close the
 *                                        connection within --timeout
 *   --fp9                                use librtmp's FP9 digest handshake (it only does so
 *                                        when SWF verification is set up: this sets a dummy
 *                                        SWF hash and size; librtmp then also checks the server's
 *                                        digest and S2 signature and fails the connect if wrong)
 *   --timeout SEC                        bound on every wait (default 5)
 *   --verbose                            librtmp debug log on stderr
 *   --play NAME | --publish NAME         the media phase above, after the invokes
 *   --seconds SEC                        how long the media phase lasts (default 10, max 7200)
 *   --slow-read PPM                      a self-check of delay tests, never for a real run: the
 *                                        played audio is read PPM parts per million slower than
 *                                        real time (each message a little later than the last
 *                                        allowed), so the delay a test measures grows
 *   --publish-codec pcmu|opus            what --publish sends: G.711 u-law 8 kHz (default), or
 *                                        Opus 48 kHz mono by Enhanced RTMP (FourCC "Opus")
 *   --tone HZ                            --publish sends a sine of HZ (default 0: silence)
 *   --tone-dbfs L                        its RMS level (default -18; a full-scale sine is -3)
 *   --wav FILE                           --play: the played audio decoded into FILE (16-bit mono
 *                                        WAV at the rate of the first decoded message: G.711,
 *                                        Speex wideband, Enhanced RTMP Opus)
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librtmp/amf.h>
#include <librtmp/log.h>
#include <librtmp/rtmp.h>

#include "amf_line.h"
#include "audio_mark.h"
#include "g711.h"
#include "parse_num.h"
#include "rtmp_client_audio.h"

#define MAX_INVOKES	16
#define MAX_ARGS	32
#define MAX_URL		8192
#define BODY_MAX	65536
#define PRINT_MAX_DEPTH 15   /* levels of nesting printed inside a value; deeper: "..." */
#define CHAN_INVOKE	0x03 /* chunk streams: commands on message stream 0 */
#define CHAN_AUDIO	0x04
#define CHAN_STREAM	0x08 /* commands on a NetStream */
#define FRAME_MS	20
#define SEND_BURST	5     /* frames sent at once to catch up after a late wake-up */
#define DECODE_CHUNK	1024  /* samples decoded at a time */
#define SLOW_SLACK_S	0.005 /* --slow-read: a read this late waited for data, not for us */

enum arg_kind { ARG_STR, ARG_NUM, ARG_BOOL, ARG_NULL, ARG_OBJ };

struct arg {
	enum arg_kind kind;
	const char *text; /* ARG_STR value, ARG_OBJ "k=v,..." spec */
	double num;
	bool flag;
};

enum expect_name { EXPECT_ANY, EXPECT_RESULT, EXPECT_ERROR };

/* One transaction: connect (index 0) or a custom invoke. */
struct txn {
	const char *method;
	struct arg args[MAX_ARGS];
	int nargs;
	enum expect_name expect;
	bool expect_set;
	const char *expect_code;
	bool expect_echo;
};

struct options {
	struct txn txns[MAX_INVOKES + 1];
	int ntxns;
	char conn_args[MAX_URL];
	size_t conn_len;
	double object_encoding;
	bool expect_close;
	bool fp9;
	int timeout_s;
	bool verbose;
	const char *url;
	const char *play, *publish; /* the media phase's stream names; NULL: none */
	double media_s, slow_ppm;
	enum tx_codec publish_codec;
	double tone_hz, tone_dbfs;
	const char *wav; /* --wav; NULL: none */
};

/* Replies as printed: numbers exact, ECMA arrays and dates tagged, no bound on the values. */
static const struct amf_line_style print_style = {
    .max_depth = PRINT_MAX_DEPTH,
    .exact_numbers = true,
    .tag_ecma = true,
    .tag_dates = true,
};

/* Appends a command as `name txid arg...`: the name bare, values separated by spaces. */
static void line_add_command(struct line *l, const AMFObject *cmd)
{
	if (cmd->o_num < 1)
		return;
	line_add_amf(l, &cmd->o_props[0], false, &print_style, 0);
	line_add_amf_args(l, cmd, 1, &print_style);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rtmp_client [--conn-arg 'O:1 NS:k:v O:0'] [--object-encoding 0|3]\n"
		"       [--invoke METHOD [--arg-str S] [--arg-num N] [--arg-bool B] [--arg-null]\n"
		"        [--arg-obj k=v,...] [--expect result|error] [--expect-code CODE]\n"
		"        [--expect-echo]]... [--expect-close] [--fp9] [--timeout SEC] [--verbose]\n"
		"       [--play NAME [--wav FILE]] [--publish NAME [--publish-codec pcmu|opus]\n"
		"        [--tone HZ] [--tone-dbfs L]] [--seconds SEC] [--slow-read PPM] URL\n");
}

/* Appends each space-separated token of @spec as " conn=TOKEN". Returns 0 or -ENOSPC. */
static int add_conn_args(struct options *o, const char *spec)
{
	const char *p = spec;

	while (*p) {
		size_t n;
		int r;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		n = strcspn(p, " ");
		r = snprintf(o->conn_args + o->conn_len, sizeof(o->conn_args) - o->conn_len,
			     " conn=%.*s", (int)n, p);
		if (r < 0 || (size_t)r >= sizeof(o->conn_args) - o->conn_len)
			return -ENOSPC;
		o->conn_len += (size_t)r;
		p += n;
	}
	return 0;
}

/* Adds an argument to invoke @t; @is_connect says @t is the connect (which takes none here). */
static int add_arg(struct txn *t, bool is_connect, enum arg_kind kind, const char *text)
{
	struct arg *a;

	if (is_connect) {
		fprintf(stderr, "rtmp_client: --arg-* must follow --invoke\n");
		return -EINVAL;
	}
	if (t->nargs >= MAX_ARGS) {
		fprintf(stderr, "rtmp_client: too many arguments (max %d)\n", MAX_ARGS);
		return -E2BIG;
	}
	a = &t->args[t->nargs];
	a->kind = kind;
	a->text = text;
	switch (kind) {
	case ARG_NUM:
		if (!parse_number(text, &a->num)) {
			fprintf(stderr, "rtmp_client: bad number '%s'\n", text);
			return -EINVAL;
		}
		break;
	case ARG_BOOL:
		if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0) {
			fprintf(stderr, "rtmp_client: bad boolean '%s'\n", text);
			return -EINVAL;
		}
		a->flag = strcmp(text, "true") == 0;
		break;
	default:
		break;
	}
	t->nargs++;
	return 0;
}

/* Parses argv into @o. Returns 0, or -EINVAL after printing why. */
static int parse_options(int argc, char **argv, struct options *o)
{
	struct txn *cur;

	memset(o, 0, sizeof(*o));
	o->timeout_s = 5;
	o->media_s = 10;
	o->tone_dbfs = -18;
	o->ntxns = 1;
	o->txns[0].method = "connect";
	cur = &o->txns[0];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes_value = true;
		int r = 0;

		if (strcmp(a, "--expect-echo") == 0) {
			cur->expect_echo = true;
			takes_value = false;
		} else if (strcmp(a, "--expect-close") == 0) {
			o->expect_close = true;
			takes_value = false;
		} else if (strcmp(a, "--fp9") == 0) {
			o->fp9 = true;
			takes_value = false;
		} else if (strcmp(a, "--verbose") == 0) {
			o->verbose = true;
			takes_value = false;
		} else if (strcmp(a, "--arg-null") == 0) {
			r = add_arg(cur, cur == &o->txns[0], ARG_NULL, NULL);
			takes_value = false;
		} else if (a[0] == '-' && a[1] == '-') {
			if (!v) {
				fprintf(stderr, "rtmp_client: %s needs a value\n", a);
				return -EINVAL;
			}
			if (strcmp(a, "--conn-arg") == 0) {
				r = add_conn_args(o, v);
			} else if (strcmp(a, "--object-encoding") == 0) {
				if (!parse_number(v, &o->object_encoding))
					r = -EINVAL;
			} else if (strcmp(a, "--invoke") == 0) {
				if (o->ntxns > MAX_INVOKES) {
					fprintf(stderr, "rtmp_client: too many --invoke\n");
					return -EINVAL;
				}
				cur = &o->txns[o->ntxns++];
				cur->method = v;
			} else if (strcmp(a, "--arg-str") == 0) {
				r = add_arg(cur, cur == &o->txns[0], ARG_STR, v);
			} else if (strcmp(a, "--arg-num") == 0) {
				r = add_arg(cur, cur == &o->txns[0], ARG_NUM, v);
			} else if (strcmp(a, "--arg-bool") == 0) {
				r = add_arg(cur, cur == &o->txns[0], ARG_BOOL, v);
			} else if (strcmp(a, "--arg-obj") == 0) {
				r = add_arg(cur, cur == &o->txns[0], ARG_OBJ, v);
			} else if (strcmp(a, "--expect") == 0) {
				cur->expect_set = true;
				if (strcmp(v, "result") == 0)
					cur->expect = EXPECT_RESULT;
				else if (strcmp(v, "error") == 0)
					cur->expect = EXPECT_ERROR;
				else
					r = -EINVAL;
			} else if (strcmp(a, "--expect-code") == 0) {
				cur->expect_code = v;
			} else if (strcmp(a, "--play") == 0) {
				o->play = v;
			} else if (strcmp(a, "--publish") == 0) {
				o->publish = v;
			} else if (strcmp(a, "--seconds") == 0) {
				if (!parse_double(v, &o->media_s) || o->media_s < 0.1 ||
				    o->media_s > 7200)
					r = -EINVAL;
			} else if (strcmp(a, "--slow-read") == 0) {
				if (!parse_double(v, &o->slow_ppm) || o->slow_ppm < 0 ||
				    o->slow_ppm > 1e6)
					r = -EINVAL;
			} else if (strcmp(a, "--publish-codec") == 0) {
				if (strcmp(v, "pcmu") == 0)
					o->publish_codec = TX_PCMU;
				else if (strcmp(v, "opus") == 0)
					o->publish_codec = TX_OPUS;
				else
					r = -EINVAL;
			} else if (strcmp(a, "--tone") == 0) {
				if (!parse_double(v, &o->tone_hz) || o->tone_hz < 0 ||
				    o->tone_hz > 20000)
					r = -EINVAL;
			} else if (strcmp(a, "--tone-dbfs") == 0) {
				if (!parse_double(v, &o->tone_dbfs) || o->tone_dbfs < -90 ||
				    o->tone_dbfs > -3)
					r = -EINVAL;
			} else if (strcmp(a, "--wav") == 0) {
				o->wav = v;
			} else if (strcmp(a, "--timeout") == 0) {
				double t;

				if (!parse_double(v, &t) || t < 1 || t > 3600)
					r = -EINVAL;
				else
					o->timeout_s = (int)t;
			} else {
				fprintf(stderr, "rtmp_client: unknown option %s\n", a);
				return -EINVAL;
			}
		} else if (!o->url) {
			o->url = a;
			takes_value = false;
		} else {
			fprintf(stderr, "rtmp_client: unexpected argument %s\n", a);
			return -EINVAL;
		}
		if (r < 0) {
			fprintf(stderr, "rtmp_client: bad value for %s\n", a);
			return -EINVAL;
		}
		if (takes_value)
			i++;
	}
	if (!o->url) {
		fprintf(stderr, "rtmp_client: no URL\n");
		return -EINVAL;
	}
	/* connect is expected to succeed unless told otherwise (invokes need it). */
	if (!o->txns[0].expect_set && !o->txns[0].expect_code)
		o->txns[0].expect = EXPECT_RESULT;
	return 0;
}

/* Encodes one "k=v,..." object. Returns the new end of output, or NULL when it does not fit. */
static char *encode_object(char *enc, char *end, const char *spec)
{
	const char *p = spec;

	if (!enc || enc >= end)
		return NULL;
	*enc++ = AMF_OBJECT;
	while (*p && enc) {
		size_t n = strcspn(p, ",");
		const char *eq = memchr(p, '=', n);
		char val[1024];
		AVal name;
		double d;

		if (!eq || n >= sizeof(val)) {
			fprintf(stderr, "rtmp_client: bad object item '%.*s'\n", (int)n, p);
			return NULL;
		}
		name.av_val = (char *)p;
		name.av_len = (int)(eq - p);
		memcpy(val, eq + 1, n - (size_t)(eq - p) - 1);
		val[n - (size_t)(eq - p) - 1] = '\0';
		if (parse_number(val, &d)) {
			enc = AMF_EncodeNamedNumber(enc, end, &name, d);
		} else if (strcmp(val, "true") == 0 || strcmp(val, "false") == 0) {
			enc = AMF_EncodeNamedBoolean(enc, end, &name, val[0] == 't');
		} else {
			AVal sv = {val, (int)strlen(val)};

			enc = AMF_EncodeNamedString(enc, end, &name, &sv);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!enc || end - enc < 3)
		return NULL;
	*enc++ = 0;
	*enc++ = 0;
	*enc++ = AMF_OBJECT_END;
	return enc;
}

/* Encodes the arguments of @t. Returns the new end of output, or NULL when they do not fit. */
static char *encode_args(char *enc, char *end, const struct txn *t)
{
	for (int i = 0; i < t->nargs && enc; i++) {
		const struct arg *a = &t->args[i];

		switch (a->kind) {
		case ARG_STR: {
			AVal s = {(char *)a->text, (int)strlen(a->text)};

			enc = AMF_EncodeString(enc, end, &s);
			break;
		}
		case ARG_NUM:
			enc = AMF_EncodeNumber(enc, end, a->num);
			break;
		case ARG_BOOL:
			enc = AMF_EncodeBoolean(enc, end, a->flag);
			break;
		case ARG_NULL:
			if (enc >= end)
				return NULL;
			*enc++ = AMF_NULL;
			break;
		case ARG_OBJ:
			enc = encode_object(enc, end, a->text);
			break;
		}
	}
	return enc;
}

/*
 * Sends @t as an invoke with transaction id @txid on chunk stream @chan, message stream
 * @stream. Returns 0, -E2BIG when the body does not fit, or -EIO when librtmp fails to send.
 */
static int send_invoke(RTMP *r, const struct txn *t, int txid, int chan, uint32_t stream)
{
	static char buf[RTMP_MAX_HEADER_SIZE + BODY_MAX];
	char *body = buf + RTMP_MAX_HEADER_SIZE;
	char *end = buf + sizeof(buf);
	char *enc = body;
	AVal name = {(char *)t->method, (int)strlen(t->method)};
	RTMPPacket pkt;

	enc = AMF_EncodeString(enc, end, &name);
	enc = AMF_EncodeNumber(enc, end, txid);
	if (enc && enc < end)
		*enc++ = AMF_NULL;
	else
		enc = NULL;
	enc = encode_args(enc, end, t);
	if (!enc) {
		fprintf(stderr, "rtmp_client: invoke %s does not fit in %d bytes\n", t->method,
			BODY_MAX);
		return -E2BIG;
	}
	memset(&pkt, 0, sizeof(pkt));
	pkt.m_nChannel = chan;
	pkt.m_headerType = RTMP_PACKET_SIZE_LARGE;
	pkt.m_packetType = RTMP_PACKET_TYPE_INVOKE;
	pkt.m_nTimeStamp = 0;
	pkt.m_nInfoField2 = (int32_t)stream;
	pkt.m_hasAbsTimestamp = 0;
	pkt.m_body = body;
	pkt.m_nBodySize = (uint32_t)(enc - body);
	if (!RTMP_SendPacket(r, &pkt, FALSE)) {
		fprintf(stderr, "rtmp_client: sending %s failed\n", t->method);
		return -EIO;
	}
	return 0;
}

/* Prints the expected form of the sent args of @t ("null" then each arg) into @l. */
static int format_sent_args(const struct txn *t, struct line *l)
{
	static char buf[BODY_MAX];
	char *enc = buf;
	AMFObject obj;
	int n;

	*enc++ = AMF_NULL;
	enc = encode_args(enc, buf + sizeof(buf), t);
	if (!enc)
		return -E2BIG;
	n = AMF_Decode(&obj, buf, (int)(enc - buf), FALSE);
	if (n < 0)
		return -EINVAL;
	line_add_amf_list(l, &obj, false, " ", &print_style, 0);
	AMF_Reset(&obj);
	return 0;
}

/* Formats the reply arguments after the transaction id (command object onwards) of @obj. */
static void format_reply_args(AMFObject *obj, struct line *l)
{
	AMFObject rest = {obj->o_num > 2 ? obj->o_num - 2 : 0, obj->o_props + 2};

	if (obj->o_num > 2)
		line_add_amf_list(l, &rest, false, " ", &print_style, 0);
}

/* True when some object-valued element of @obj has a string property code == @code. */
static bool has_code(AMFObject *obj, const char *code)
{
	AVal key = AVC("code");

	for (int i = 0; i < obj->o_num; i++) {
		AMFObjectProperty *p = &obj->o_props[i];
		AMFObjectProperty *c;

		if (p->p_type != AMF_OBJECT && p->p_type != AMF_ECMA_ARRAY)
			continue;
		c = AMF_GetProp(&p->p_vu.p_object, &key, -1);
		if (c && c->p_type == AMF_STRING && (int)strlen(code) == c->p_vu.p_aval.av_len &&
		    memcmp(code, c->p_vu.p_aval.av_val, strlen(code)) == 0)
			return true;
	}
	return false;
}

/*
 * Waits until data can be read or @deadline passes. Returns 1 when readable, 0 on timeout.
 * Bytes already buffered inside librtmp count as readable.
 */
static int wait_readable(RTMP *r, double deadline)
{
	struct pollfd pfd = {.fd = RTMP_Socket(r), .events = POLLIN};
	double left;
	int rc;

	if (r->m_sb.sb_size > 0)
		return 1;
	for (;;) {
		left = deadline - now_s();
		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (rc > 0)
			return 1;
		if (rc == 0)
			continue;
		if (errno != EINTR)
			return 1; /* let the read report the error */
	}
}

/*
 * Reads packets until the _result/_error of @txid arrives or @deadline passes. On success the
 * reply is decoded into @reply, whose strings point into @pkt's body: the caller must
 * AMF_Reset(@reply) and then RTMPPacket_Free(@pkt). Other packets are handed to librtmp (chunk
 * size, pings, window sizes) or ignored. Returns 0, -ETIMEDOUT or -ECONNRESET (peer closed).
 */
static int wait_reply(RTMP *r, int txid, double deadline, AMFObject *reply, RTMPPacket *reply_pkt)
{
	RTMPPacket pkt;

	memset(&pkt, 0, sizeof(pkt));
	for (;;) {
		const char *body;
		int size, n;

		if (!RTMP_IsConnected(r))
			return -ECONNRESET;
		if (!wait_readable(r, deadline))
			return -ETIMEDOUT;
		if (!RTMP_ReadPacket(r, &pkt)) {
			RTMPPacket_Free(&pkt);
			return RTMP_IsConnected(r) && RTMP_IsTimedout(r) ? -ETIMEDOUT : -ECONNRESET;
		}
		if (!RTMPPacket_IsReady(&pkt))
			continue;
		if (pkt.m_nBodySize == 0 || !pkt.m_body) {
			RTMPPacket_Free(&pkt);
			continue;
		}
		if (pkt.m_packetType != RTMP_PACKET_TYPE_INVOKE &&
		    pkt.m_packetType != RTMP_PACKET_TYPE_FLEX_MESSAGE) {
			/* Control and media: librtmp keeps its state (chunk size, acks, pings). */
			RTMP_ClientPacket(r, &pkt);
			RTMPPacket_Free(&pkt);
			continue;
		}
		body = pkt.m_body;
		size = (int)pkt.m_nBodySize;
		if (pkt.m_packetType == RTMP_PACKET_TYPE_FLEX_MESSAGE) {
			body++; /* AMF3 command: one 0x00 byte before an AMF0 body */
			size--;
		}
		n = AMF_Decode(reply, body, size, FALSE);
		if (n < 0 || reply->o_num < 2 || reply->o_props[0].p_type != AMF_STRING ||
		    reply->o_props[1].p_type != AMF_NUMBER) {
			fprintf(stderr, "rtmp_client: undecodable command (%d bytes) ignored\n",
				size);
			AMF_Reset(reply);
			RTMPPacket_Free(&pkt);
			continue;
		}
		if ((int)reply->o_props[1].p_vu.p_number == txid) {
			AVal *nm = &reply->o_props[0].p_vu.p_aval;

			if ((nm->av_len == 7 && memcmp(nm->av_val, "_result", 7) == 0) ||
			    (nm->av_len == 6 && memcmp(nm->av_val, "_error", 6) == 0)) {
				*reply_pkt = pkt;
				return 0;
			}
		}
		{
			struct line l = {.len = 0};

			line_add_command(&l, reply);
			fprintf(stderr, "rtmp_client: other command: %s\n", l.buf);
		}
		AMF_Reset(reply);
		RTMPPacket_Free(&pkt);
	}
}

/* Waits for the server to close the connection. Returns 0 when it did, -ETIMEDOUT if not. */
static int wait_close(RTMP *r, double deadline)
{
	RTMPPacket pkt;

	memset(&pkt, 0, sizeof(pkt));
	while (RTMP_IsConnected(r)) {
		if (!wait_readable(r, deadline))
			return -ETIMEDOUT;
		if (!RTMP_ReadPacket(r, &pkt)) {
			RTMPPacket_Free(&pkt);
			if (RTMP_IsConnected(r) && RTMP_IsTimedout(r))
				return -ETIMEDOUT;
			return 0;
		}
		if (RTMPPacket_IsReady(&pkt))
			RTMPPacket_Free(&pkt);
	}
	return 0;
}

/* Prints the reply and checks it against @t. Returns true when every expectation holds. */
static bool check_reply(const struct txn *t, AMFObject *reply)
{
	struct line l = {.len = 0};
	AVal *nm = &reply->o_props[0].p_vu.p_aval;
	bool is_result = nm->av_len == 7 && memcmp(nm->av_val, "_result", 7) == 0;
	bool ok = true;

	line_add_command(&l, reply);
	printf("%s\n", l.buf);
	fflush(stdout);

	if (t->expect == EXPECT_RESULT && !is_result) {
		fprintf(stderr, "rtmp_client: %s: expected _result\n", t->method);
		ok = false;
	}
	if (t->expect == EXPECT_ERROR && is_result) {
		fprintf(stderr, "rtmp_client: %s: expected _error\n", t->method);
		ok = false;
	}
	if (t->expect_code && !has_code(reply, t->expect_code)) {
		fprintf(stderr, "rtmp_client: %s: expected code %s\n", t->method, t->expect_code);
		ok = false;
	}
	if (t->expect_echo) {
		struct line want = {.len = 0}, got = {.len = 0};

		if (format_sent_args(t, &want) < 0)
			ok = false;
		format_reply_args(reply, &got);
		if (!is_result || strcmp(want.buf, got.buf) != 0) {
			fprintf(stderr, "rtmp_client: %s: expected _result with %s, got %s\n",
				t->method, want.buf, got.buf);
			ok = false;
		}
	}
	return ok;
}

/* --------------------------------------------------------------- media phase (--play, --publish)
 */

struct media {
	const struct options *o;
	RTMP *r;
	uint32_t play_id, pub_id;	  /* message stream ids; 0: none */
	double end, next_send, next_read; /* CLOCK_MONOTONIC seconds */
	unsigned long sent, audio, bytes, undecodable;
	int first_tag; /* the first played message's tag byte; -1: none yet */
	uint32_t ts;   /* RTMP timestamp of the played message being scanned */
	struct audio_mark_det det;
	struct tx_audio *tx; /* what --publish sends */
	struct rx_audio *rx; /* --wav: the recording of the played audio; NULL: none */
	bool failed;
};

/* createStream (transaction @txid) and its _result. Returns 0 with *id set, or a negative errno
 * after printing why. */
static int create_stream(RTMP *r, int txid, int timeout_s, uint32_t *id)
{
	struct txn t = {.method = "createStream"};
	AMFObject reply;
	RTMPPacket pkt;
	int rc;

	memset(&reply, 0, sizeof(reply));
	memset(&pkt, 0, sizeof(pkt));
	rc = send_invoke(r, &t, txid, CHAN_INVOKE, 0);
	if (rc < 0)
		return rc;
	rc = wait_reply(r, txid, now_s() + timeout_s, &reply, &pkt);
	if (rc < 0) {
		fprintf(stderr, "rtmp_client: createStream: %s\n",
			rc == -ETIMEDOUT ? "no reply before the timeout" : "connection closed");
		return rc;
	}
	if (reply.o_num < 4 || reply.o_props[3].p_type != AMF_NUMBER ||
	    reply.o_props[0].p_vu.p_aval.av_len != 7 || reply.o_props[3].p_vu.p_number < 1 ||
	    reply.o_props[3].p_vu.p_number > 65535) {
		fprintf(stderr, "rtmp_client: createStream: no stream id in the reply\n");
		rc = -EPROTO;
	} else {
		*id = (uint32_t)reply.o_props[3].p_vu.p_number;
	}
	AMF_Reset(&reply);
	RTMPPacket_Free(&pkt);
	return rc;
}

/* Sends @method(0, null, @name[, @mode]) on message stream @id. Returns 0 or a negative errno. */
static int stream_command(RTMP *r, uint32_t id, const char *method, const char *name,
			  const char *mode)
{
	struct txn t = {.method = method, .nargs = mode ? 2 : 1};

	t.args[0] = (struct arg){.kind = ARG_STR, .text = name};
	t.args[1] = (struct arg){.kind = ARG_STR, .text = mode};
	return send_invoke(r, &t, 0, CHAN_STREAM, id);
}

/* Sends one audio message of @len bytes at body_buf + RTMP_MAX_HEADER_SIZE, timestamp @ts. */
static int send_audio(struct media *m, char *body_buf, size_t len, uint32_t ts)
{
	RTMPPacket pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.m_nChannel = CHAN_AUDIO;
	/* The first message carries the stream id (full header), the rest deltas. */
	pkt.m_headerType = m->sent ? RTMP_PACKET_SIZE_MEDIUM : RTMP_PACKET_SIZE_LARGE;
	pkt.m_packetType = RTMP_PACKET_TYPE_AUDIO;
	pkt.m_nTimeStamp = ts;
	pkt.m_nInfoField2 = (int32_t)m->pub_id;
	pkt.m_body = body_buf + RTMP_MAX_HEADER_SIZE;
	pkt.m_nBodySize = (uint32_t)len;
	if (!RTMP_SendPacket(m->r, &pkt, FALSE)) {
		fprintf(stderr, "rtmp_client: sending audio failed\n");
		return -EIO;
	}
	m->sent++;
	return 0;
}

/* Sends the next 20 ms on the published stream, after the codec's opening message the first
 * time. */
static int send_frame(struct media *m)
{
	static char buf[RTMP_MAX_HEADER_SIZE + TX_AUDIO_MAX];
	uint8_t *body = (uint8_t *)buf + RTMP_MAX_HEADER_SIZE;
	uint32_t ts;
	size_t n;
	int len;

	if (m->sent == 0 && (n = tx_audio_start(m->tx, body)) > 0 && send_audio(m, buf, n, 0) < 0)
		return -EIO;
	len = tx_audio_frame(m->tx, body, &ts);
	if (len < 0)
		return len;
	return send_audio(m, buf, (size_t)len, ts);
}

/* Sends the codec's closing message, if it has one, after the last frame. */
static void send_end(struct media *m)
{
	static char buf[RTMP_MAX_HEADER_SIZE + TX_AUDIO_MAX];
	size_t n;

	if (m->sent && RTMP_IsConnected(m->r) &&
	    (n = tx_audio_end(m->tx, (uint8_t *)buf + RTMP_MAX_HEADER_SIZE)) > 0)
		send_audio(m, buf, n, (uint32_t)((m->sent - 1) * FRAME_MS));
}

static void on_mark(void *arg, long k, uint64_t t_us)
{
	struct media *m = arg;

	if (k >= 0)
		printf("MARK %ld %llu %u\n", k, (unsigned long long)t_us, m->ts);
	else
		printf("BADMARK %llu %u\n", (unsigned long long)t_us, m->ts);
	fflush(stdout);
}

/* A played audio message read at @t (CLOCK_MONOTONIC seconds): G.711 goes to the detector. */
static void played_audio(struct media *m, const RTMPPacket *pkt, double t)
{
	const uint8_t *p = (const uint8_t *)pkt->m_body + 1;
	uint32_t left = pkt->m_nBodySize - 1;
	int fmt = (uint8_t)pkt->m_body[0] >> 4;
	int16_t pcm[DECODE_CHUNK];

	m->audio++;
	m->bytes += pkt->m_nBodySize;
	if (m->first_tag < 0)
		m->first_tag = (uint8_t)pkt->m_body[0];
	if (m->rx)
		rx_audio_feed(m->rx, (const uint8_t *)pkt->m_body, pkt->m_nBodySize);
	if (fmt != 7 && fmt != 8) {
		m->undecodable++;
		return;
	}
	m->ts = pkt->m_nTimeStamp;
	while (left) {
		uint32_t n = left < DECODE_CHUNK ? left : DECODE_CHUNK;

		if (fmt == 8)
			g711_ulaw_decode_buf(pcm, p, n);
		else
			g711_alaw_decode_buf(pcm, p, n);
		audio_mark_feed(&m->det, pcm, n, (uint64_t)(t * 1e6), on_mark, m);
		p += n;
		left -= n;
	}
	/* --slow-read: the next read no sooner than this message's length, stretched, after the
	 * last allowed read; after the read time when it waited for data rather than for us. */
	if (m->o->slow_ppm > 0) {
		if (t > m->next_read + SLOW_SLACK_S)
			m->next_read = t;
		m->next_read += (pkt->m_nBodySize - 1) / 8000.0 * (1 + m->o->slow_ppm / 1e6);
	}
}

/* A command: printed; an onStatus of level "error" fails the phase. */
static void media_command(struct media *m, const RTMPPacket *pkt)
{
	const char *body = pkt->m_body;
	int size = (int)pkt->m_nBodySize;
	AVal level = AVC("level");
	struct line l = {.len = 0};
	AMFObject obj;

	if (pkt->m_packetType == RTMP_PACKET_TYPE_FLEX_MESSAGE) {
		body++; /* AMF3 command: one 0x00 byte before an AMF0 body */
		size--;
	}
	if (AMF_Decode(&obj, body, size, FALSE) < 0) {
		fprintf(stderr, "rtmp_client: undecodable command (%d bytes) ignored\n", size);
		return;
	}
	line_add_command(&l, &obj);
	printf("%s\n", l.buf);
	fflush(stdout);
	for (int i = 0; i < obj.o_num; i++) {
		AMFObjectProperty *p = &obj.o_props[i], *v;

		if (p->p_type != AMF_OBJECT)
			continue;
		v = AMF_GetProp(&p->p_vu.p_object, &level, -1);
		if (v && v->p_type == AMF_STRING && v->p_vu.p_aval.av_len == 5 &&
		    memcmp(v->p_vu.p_aval.av_val, "error", 5) == 0)
			m->failed = true;
	}
	AMF_Reset(&obj);
}

/* Reads one chunk (librtmp blocks until it is complete) and handles the message when it is. */
static void media_read(struct media *m)
{
	RTMPPacket pkt;
	double t;

	memset(&pkt, 0, sizeof(pkt));
	if (!RTMP_ReadPacket(m->r, &pkt)) {
		RTMPPacket_Free(&pkt);
		if (RTMP_IsConnected(m->r))
			m->r->m_sb.sb_timedout = FALSE; /* a chunk stalled: try again */
		return;
	}
	t = now_s();
	if (RTMPPacket_IsReady(&pkt) && pkt.m_body && pkt.m_nBodySize > 0) {
		switch (pkt.m_packetType) {
		case RTMP_PACKET_TYPE_AUDIO:
			if (m->play_id && (uint32_t)pkt.m_nInfoField2 == m->play_id &&
			    pkt.m_nBodySize > 1)
				played_audio(m, &pkt, t);
			break;
		case RTMP_PACKET_TYPE_INVOKE:
		case RTMP_PACKET_TYPE_FLEX_MESSAGE:
			media_command(m, &pkt);
			break;
		default:
			/* Control: librtmp keeps its state (chunk size, acks, pings). */
			RTMP_ClientPacket(m->r, &pkt);
			break;
		}
	}
	RTMPPacket_Free(&pkt);
}

/* Milliseconds from @now until @t, rounded up; 0 when @t has passed. */
static int ms_until(double t, double now)
{
	return t > now ? (int)ceil((t - now) * 1000) : 0;
}

/* The loop of the media phase until m->end. Returns 0, or a negative errno. */
static int media_loop(struct media *m)
{
	struct pollfd pfd = {.fd = RTMP_Socket(m->r), .events = POLLIN};

	while (!m->failed) {
		double now = now_s(), wake = m->end;
		int rc;

		if (now >= m->end)
			return 0;
		if (!RTMP_IsConnected(m->r)) {
			fprintf(stderr, "rtmp_client: the server closed the connection\n");
			return -ECONNRESET;
		}
		for (int i = 0; m->pub_id && i < SEND_BURST && now >= m->next_send; i++) {
			if (send_frame(m) < 0)
				return -EIO;
			m->next_send += FRAME_MS / 1000.0;
		}
		if (m->pub_id && m->next_send < wake)
			wake = m->next_send;
		if (now < m->next_read) {
			/* --slow-read holds the reads back: only the sends go on. */
			wake = m->next_read < wake ? m->next_read : wake;
			poll(NULL, 0, ms_until(wake, now));
			continue;
		}
		if (m->r->m_sb.sb_size > 0) {
			media_read(m);
			continue;
		}
		rc = poll(&pfd, 1, ms_until(wake, now));
		if (rc > 0)
			media_read(m);
		else if (rc < 0 && errno != EINTR)
			return -errno;
	}
	fprintf(stderr, "rtmp_client: an error status ended the media phase\n");
	return -EPROTO;
}

/* The media phase of @m (its sender and recorder made): streams, then the loop; transactions
 * from @txid on. Returns 0 or a negative errno (the summary line is printed in both cases once
 * the streams are up). */
static int media_streams(struct media *m, int txid)
{
	const struct options *o = m->o;
	RTMP *r = m->r;
	int rc;

	/* What librtmp's own player sends after connect (RTMP_ConnectStream): our window size and
	 * SetBufferLength, here 0 ms (we buffer nothing). They give chunk stream 2 its first, full
	 * header; librtmp's later acknowledgements there have a medium one, which is no first
	 * chunk. */
	if (!RTMP_SendServerBW(r) || !RTMP_SendCtrl(r, 3, 0, 0)) {
		fprintf(stderr, "rtmp_client: sending the window size failed\n");
		return -EIO;
	}
	/* Both streams first: their onStatus replies then reach the loop, which prints them. */
	if ((o->play && create_stream(r, txid++, o->timeout_s, &m->play_id) < 0) ||
	    (o->publish && create_stream(r, txid++, o->timeout_s, &m->pub_id) < 0))
		return -EIO;
	if ((o->play && stream_command(r, m->play_id, "play", o->play, NULL) < 0) ||
	    (o->publish && stream_command(r, m->pub_id, "publish", o->publish, "live") < 0))
		return -EIO;
	m->next_send = now_s();
	m->end = m->next_send + o->media_s;
	rc = media_loop(m);
	send_end(m);
	printf("MEDIA sent=%lu audio=%lu bytes=%lu first_tag=0x%02x marks=%lu bad_marks=%lu "
	       "undecodable=%lu recorded=%lu\n",
	       m->sent, m->audio, m->bytes, m->first_tag < 0 ? 0 : m->first_tag, m->det.found,
	       m->det.bad, m->undecodable, m->rx ? rx_audio_decoded(m->rx) : 0);
	fflush(stdout);
	return rc;
}

/* The media phase: the sender (--publish) and the recorder (--wav), then media_streams(). */
static int media_run(RTMP *r, const struct options *o, int txid)
{
	struct media m = {.o = o, .r = r, .first_tag = -1};
	int rc = -ENOMEM;

	if (o->publish && !(m.tx = tx_audio_new(o->publish_codec, o->tone_hz, o->tone_dbfs)))
		return -ENOMEM;
	if (o->play && o->wav && !(m.rx = rx_audio_new(o->wav)))
		goto out_tx;
	rc = media_streams(&m, txid);
	if (rx_audio_destroy(&m.rx) < 0)
		rc = -EIO;
out_tx:
	tx_audio_destroy(&m.tx);
	return rc;
}

/* Runs the whole session. Returns the exit status. */
static int run(struct options *o)
{
	static char url[MAX_URL + 256];
	RTMP *r;
	int status = 0;
	int rc;

	rc = snprintf(url, sizeof(url), "%s%s", o->url, o->conn_args);
	if (rc < 0 || (size_t)rc >= sizeof(url)) {
		fprintf(stderr, "rtmp_client: URL too long\n");
		return 2;
	}
	r = RTMP_Alloc();
	if (!r) {
		fprintf(stderr, "rtmp_client: out of memory\n");
		return 1;
	}
	RTMP_Init(r);
	/* librtmp keeps pointers into @url: it must outlive @r (it is static). */
	if (!RTMP_SetupURL(r, url)) {
		fprintf(stderr, "rtmp_client: bad URL %s\n", o->url);
		status = 2;
		goto out_free;
	}
	r->Link.timeout = o->timeout_s;
	if (o->fp9) {
		/* A dummy SWF hash and size: their presence alone makes librtmp use FP9. */
		memset(r->Link.SWFHash, 0x5a, sizeof(r->Link.SWFHash));
		r->Link.SWFSize = 12345;
	}
	r->m_fEncoding = o->object_encoding;
	r->m_bSendEncoding = TRUE;
	if (!RTMP_Connect(r, NULL)) {
		fprintf(stderr, "rtmp_client: connect (TCP, handshake or connect send) failed\n");
		status = 1;
		goto out_free;
	}
	for (int i = 0; i < o->ntxns; i++) {
		struct txn *t = &o->txns[i];
		AMFObject reply;
		RTMPPacket reply_pkt;
		int txid = i + 1;

		memset(&reply, 0, sizeof(reply));
		memset(&reply_pkt, 0, sizeof(reply_pkt));
		if (i > 0 && send_invoke(r, t, txid, CHAN_INVOKE, 0) < 0) {
			status = 1;
			goto out_close;
		}
		rc = wait_reply(r, txid, now_s() + o->timeout_s, &reply, &reply_pkt);
		if (rc < 0) {
			fprintf(stderr, "rtmp_client: %s (txid %d): %s\n", t->method, txid,
				rc == -ETIMEDOUT ? "no reply before the timeout"
						 : "connection closed by the server");
			status = 1;
			goto out_close;
		}
		if (!check_reply(t, &reply))
			status = 1;
		AMF_Reset(&reply);
		RTMPPacket_Free(&reply_pkt);
	}
	if ((o->play || o->publish) && media_run(r, o, o->ntxns + 1) < 0)
		status = 1;
	if (o->expect_close) {
		double t0 = now_s();

		if (wait_close(r, t0 + o->timeout_s) < 0) {
			fprintf(stderr, "rtmp_client: the server kept the connection open\n");
			status = 1;
		} else {
			fprintf(stderr, "rtmp_client: closed by the server after %.2f s\n",
				now_s() - t0);
		}
	}
out_close:
	RTMP_Close(r);
out_free:
	/* librtmp does not free the "conn=" arguments it parsed into Link.extras. */
	AMF_Reset(&r->Link.extras);
	RTMP_Free(r);
	return status;
}

int main(int argc, char **argv)
{
	static struct options opts;

	signal(SIGPIPE, SIG_IGN);
	if (parse_options(argc, argv, &opts) < 0) {
		usage();
		return 2;
	}
	RTMP_LogSetLevel(opts.verbose ? RTMP_LOGDEBUG : RTMP_LOGERROR);
	return run(&opts);
}
