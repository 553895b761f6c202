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
 *                                      [ --expect-close: wait for the server to close ]
 *
 * Every reply is printed on stdout as one line, e.g. `_result 2 null "hello" {k:"v"}`;
 * diagnostics go to stderr. Exit status: 0 when every expectation held, 1 when one did not
 * (or on a network failure or timeout), 2 on a usage error. Every wait is bounded by --timeout.
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
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librtmp/amf.h>
#include <librtmp/log.h>
#include <librtmp/rtmp.h>

#define MAX_INVOKES	16
#define MAX_ARGS	32
#define MAX_URL		8192
#define BODY_MAX	65536
#define LINE_MAX_LEN	16384
#define PRINT_MAX_DEPTH 16

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
};

/* A growable-free line buffer: text is truncated (marked "...") rather than overflowed. */
struct line {
	char buf[LINE_MAX_LEN];
	size_t len;
	bool truncated;
};

static void line_add(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line_add(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (l->truncated)
		return;
	va_start(ap, fmt);
	r = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= sizeof(l->buf) - l->len) {
		l->truncated = true;
		l->len = sizeof(l->buf) - 4;
		memcpy(l->buf + l->len, "...", 4);
		return;
	}
	l->len += (size_t)r;
}

static void line_add_string(struct line *l, const AVal *s)
{
	line_add(l, "\"");
	for (int i = 0; i < s->av_len; i++) {
		unsigned char c = (unsigned char)s->av_val[i];

		if (c == '"' || c == '\\')
			line_add(l, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			line_add(l, "\\x%02x", c);
		else
			line_add(l, "%c", c);
	}
	line_add(l, "\"");
}

static void line_add_number(struct line *l, double d)
{
	char text[64];

	if (isfinite(d) && d == floor(d) && fabs(d) < 1e15) {
		line_add(l, "%.0f", d);
		return;
	}
	/* The shortest form that reads back as the same double. */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(text, sizeof(text), "%.*g", prec, d);
		if (strtod(text, NULL) == d || prec == 17)
			break;
	}
	line_add(l, "%s", text);
}

static void line_add_prop(struct line *l, AMFObjectProperty *p, int depth);

static void line_add_list(struct line *l, AMFObject *o, bool named, const char *sep, int depth)
{
	for (int i = 0; i < o->o_num; i++) {
		AMFObjectProperty *p = &o->o_props[i];

		if (i)
			line_add(l, "%s", sep);
		if (named)
			line_add(l, "%.*s:", p->p_name.av_len, p->p_name.av_val);
		line_add_prop(l, p, depth + 1);
	}
}

static void line_add_object(struct line *l, AMFObject *o, bool named, int depth)
{
	line_add_list(l, o, named, ",", depth);
}

/* Appends a command as `name txid arg...`: the name bare, values separated by spaces. */
static void line_add_command(struct line *l, AMFObject *cmd)
{
	AMFObject rest = {cmd->o_num - 1, cmd->o_props + 1};

	if (cmd->o_num < 1)
		return;
	if (cmd->o_props[0].p_type == AMF_STRING)
		line_add(l, "%.*s", cmd->o_props[0].p_vu.p_aval.av_len,
			 cmd->o_props[0].p_vu.p_aval.av_val);
	else
		line_add_prop(l, &cmd->o_props[0], 0);
	if (rest.o_num > 0) {
		line_add(l, " ");
		line_add_list(l, &rest, false, " ", 0);
	}
}

/* Appends one AMF value in the compact notation documented at the top of the file. */
static void line_add_prop(struct line *l, AMFObjectProperty *p, int depth)
{
	if (depth > PRINT_MAX_DEPTH) {
		line_add(l, "...");
		return;
	}
	switch (p->p_type) {
	case AMF_NUMBER:
		line_add_number(l, p->p_vu.p_number);
		break;
	case AMF_BOOLEAN:
		line_add(l, "%s", p->p_vu.p_number != 0.0 ? "true" : "false");
		break;
	case AMF_STRING:
	case AMF_LONG_STRING:
	case AMF_XML_DOC:
		line_add_string(l, &p->p_vu.p_aval);
		break;
	case AMF_NULL:
		line_add(l, "null");
		break;
	case AMF_UNDEFINED:
		line_add(l, "undefined");
		break;
	case AMF_OBJECT:
	case AMF_AVMPLUS:
		line_add(l, "{");
		line_add_object(l, &p->p_vu.p_object, true, depth);
		line_add(l, "}");
		break;
	case AMF_ECMA_ARRAY:
		line_add(l, "ecma{");
		line_add_object(l, &p->p_vu.p_object, true, depth);
		line_add(l, "}");
		break;
	case AMF_STRICT_ARRAY:
		line_add(l, "[");
		line_add_object(l, &p->p_vu.p_object, false, depth);
		line_add(l, "]");
		break;
	case AMF_DATE:
		line_add(l, "date(");
		line_add_number(l, p->p_vu.p_number);
		line_add(l, ",%d)", p->p_UTCoffset);
		break;
	default:
		line_add(l, "<type %d>", (int)p->p_type);
		break;
	}
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
		"        [--expect-echo]]... [--expect-close] [--fp9] [--timeout SEC] [--verbose] "
		"URL\n");
}

static bool parse_double(const char *s, double *out)
{
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && *end == '\0';
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
		if (!parse_double(text, &a->num)) {
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
				if (!parse_double(v, &o->object_encoding))
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
		if (parse_double(val, &d)) {
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
 * Sends @t as an invoke with transaction id @txid on chunk stream 3, message stream 0.
 * Returns 0, -E2BIG when the body does not fit, or -EIO when librtmp fails to send.
 */
static int send_invoke(RTMP *r, const struct txn *t, int txid)
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
	pkt.m_nChannel = 0x03;
	pkt.m_headerType = RTMP_PACKET_SIZE_LARGE;
	pkt.m_packetType = RTMP_PACKET_TYPE_INVOKE;
	pkt.m_nTimeStamp = 0;
	pkt.m_nInfoField2 = 0;
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
	line_add_list(l, &obj, false, " ", 0);
	AMF_Reset(&obj);
	return 0;
}

/* Formats the reply arguments after the transaction id (command object onwards) of @obj. */
static void format_reply_args(AMFObject *obj, struct line *l)
{
	AMFObject rest = {obj->o_num > 2 ? obj->o_num - 2 : 0, obj->o_props + 2};

	if (obj->o_num > 2)
		line_add_list(l, &rest, false, " ", 0);
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
		if (i > 0 && send_invoke(r, t, txid) < 0) {
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
