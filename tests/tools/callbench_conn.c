/*
 * callbench_conn.c - callbench's RTMP connection (librtmp): connect as a client of the sip
 * app, the commands of a call (invite, bye) and the server's commands decoded into events.
 */
#include "callbench.h"


static const struct {
	const char *name;
	enum ev_kind kind;
} ev_names[] = {
    {.name = "_result", .kind = EV_RESULT},    {.name = "_error", .kind = EV_ERROR},
    {.name = "ringing", .kind = EV_RINGING},   {.name = "accepted", .kind = EV_ACCEPTED},
    {.name = "rejected", .kind = EV_REJECTED}, {.name = "byed", .kind = EV_BYED},
    {.name = "onStatus", .kind = EV_STATUS},
};

/* Copies @v into @dst (size @len), control characters and quotes replaced by '?'. */
static void copy_text(char *dst, size_t len, const AVal *v)
{
	size_t n = v->av_len > 0 ? (size_t)v->av_len : 0;

	if (n >= len)
		n = len - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v->av_val[i];

		dst[i] = ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\' ? '?' : (char)ch;
	}
	dst[n] = '\0';
}

static bool aval_is(const AVal *v, const char *s)
{
	size_t n = strlen(s);

	return v->av_len == (int)n && memcmp(v->av_val, s, n) == 0;
}

/* The string property @key of object @o, or NULL. */
static const AVal *obj_string(AMFObject *o, const char *key)
{
	AVal k = {(char *)key, (int)strlen(key)};
	AMFObjectProperty *p = AMF_GetProp(o, &k, -1);

	return p && p->p_type == AMF_STRING ? &p->p_vu.p_aval : NULL;
}

/* Describes property @p as text: a string as is, a number, or an object's description/code. */
static void prop_text(AMFObjectProperty *p, char *dst, size_t len)
{
	const AVal *s = NULL;

	dst[0] = '\0';
	if (p->p_type == AMF_STRING) {
		s = &p->p_vu.p_aval;
	} else if (p->p_type == AMF_NUMBER) {
		snprintf(dst, len, "%g", p->p_vu.p_number);
	} else if (p->p_type == AMF_OBJECT || p->p_type == AMF_ECMA_ARRAY) {
		s = obj_string(&p->p_vu.p_object, "description");
		if (!s || s->av_len == 0)
			s = obj_string(&p->p_vu.p_object, "code");
	}
	if (s)
		copy_text(dst, len, s);
}

/* Decodes the command in @pkt (invoke or AMF3 command) into @ev. Returns 0, or -EINVAL when it
 * is not a decodable command with a name and a transaction id. */
int decode_event(const RTMPPacket *pkt, struct event *ev)
{
	const char *body = pkt->m_body;
	int size = (int)pkt->m_nBodySize;
	AMFObject obj;
	double txid;

	if (pkt->m_packetType == RTMP_PACKET_TYPE_FLEX_MESSAGE) {
		body++; /* AMF3 command: one 0x00 byte before an AMF0 body */
		size--;
	}
	if (size <= 0)
		return -EINVAL;
	memset(&obj, 0, sizeof(obj));
	if (AMF_Decode(&obj, body, size, FALSE) < 0 || obj.o_num < 2 ||
	    obj.o_props[0].p_type != AMF_STRING || obj.o_props[1].p_type != AMF_NUMBER) {
		AMF_Reset(&obj);
		return -EINVAL;
	}
	memset(ev, 0, sizeof(*ev));
	for (size_t i = 0; i < sizeof(ev_names) / sizeof(ev_names[0]); i++)
		if (aval_is(&obj.o_props[0].p_vu.p_aval, ev_names[i].name))
			ev->kind = ev_names[i].kind;
	txid = obj.o_props[1].p_vu.p_number;
	ev->txid = txid >= 0 && txid < INT_MAX ? (int)txid : -1;
	switch (ev->kind) {
	case EV_RESULT:
		for (int i = 3; i < obj.o_num; i++) {
			if (obj.o_props[i].p_type == AMF_NUMBER) {
				ev->num = obj.o_props[i].p_vu.p_number;
				break;
			}
		}
		break;
	case EV_ERROR:
		for (int i = 2; i < obj.o_num && !ev->text[0]; i++)
			if (obj.o_props[i].p_type == AMF_OBJECT ||
			    obj.o_props[i].p_type == AMF_ECMA_ARRAY)
				prop_text(&obj.o_props[i], ev->text, sizeof(ev->text));
		if (!ev->text[0])
			snprintf(ev->text, sizeof(ev->text), "(no description)");
		break;
	case EV_RINGING:
	case EV_ACCEPTED:
	case EV_REJECTED:
		if (obj.o_num > 3)
			prop_text(&obj.o_props[3], ev->text, sizeof(ev->text));
		break;
	case EV_STATUS:
		if (obj.o_num > 3 && obj.o_props[3].p_type == AMF_OBJECT) {
			AMFObject *info = &obj.o_props[3].p_vu.p_object;
			const AVal *code = obj_string(info, "code");
			const AVal *level = obj_string(info, "level");

			if (code)
				copy_text(ev->text, sizeof(ev->text), code);
			ev->is_error = level && aval_is(level, "error");
		}
		break;
	default:
		break;
	}
	AMF_Reset(&obj);
	return 0;
}

/* Waits until @r has bytes to read or @deadline passes. Returns true when readable (bytes
 * already buffered inside librtmp count). */
static bool wait_readable(RTMP *r, double deadline)
{
	struct pollfd pfd = {.fd = RTMP_Socket(r), .events = POLLIN};

	if (r->m_sb.sb_size > 0)
		return true;
	for (;;) {
		double left = deadline - now_s();
		int rc;

		if (left <= 0)
			return false;
		rc = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (rc > 0)
			return true;
		if (rc < 0 && errno != EINTR)
			return true; /* let the read report the error */
	}
}

/*
 * Reads packets on @c until a command arrives (decoded into @ev) or @deadline passes. Control
 * messages go to librtmp (chunk size, window, pings); media and data are dropped. Only for a
 * connection no other thread uses. Returns 0, -ETIMEDOUT or -ECONNRESET (closed or broken).
 */
int next_event(struct conn *c, double deadline, struct event *ev)
{
	RTMPPacket pkt;

	memset(&pkt, 0, sizeof(pkt));
	for (;;) {
		if (!RTMP_IsConnected(c->r))
			return -ECONNRESET;
		if (now_s() > deadline || !wait_readable(c->r, deadline))
			return -ETIMEDOUT;
		if (!RTMP_ReadPacket(c->r, &pkt)) {
			RTMPPacket_Free(&pkt);
			return RTMP_IsConnected(c->r) && RTMP_IsTimedout(c->r) ? -ETIMEDOUT
									       : -ECONNRESET;
		}
		if (!RTMPPacket_IsReady(&pkt))
			continue;
		if (!pkt.m_body || pkt.m_nBodySize == 0) {
			RTMPPacket_Free(&pkt);
			continue;
		}
		switch (pkt.m_packetType) {
		case RTMP_PACKET_TYPE_INVOKE:
		case RTMP_PACKET_TYPE_FLEX_MESSAGE:
			if (decode_event(&pkt, ev) == 0) {
				RTMPPacket_Free(&pkt);
				return 0;
			}
			break;
		case RTMP_PACKET_TYPE_AUDIO:
		case RTMP_PACKET_TYPE_VIDEO:
		case RTMP_PACKET_TYPE_INFO:
		case RTMP_PACKET_TYPE_FLEX_STREAM_SEND:
			break;
		default:
			RTMP_ClientPacket(c->r, &pkt);
			break;
		}
		RTMPPacket_Free(&pkt);
	}
}

/*
 * Sends NAME(txid, null, args...) with string arguments on message stream @stream, chunk stream
 * @chan. Returns 0, -E2BIG when it does not fit in BODY_MAX, or -EIO when librtmp fails.
 * The caller holds c->lock when other threads use @c.
 */
int send_invoke(struct conn *c, int chan, uint32_t stream, const char *name, int txid,
		       const char *const *args, int nargs)
{
	char buf[RTMP_MAX_HEADER_SIZE + BODY_MAX];
	char *body = buf + RTMP_MAX_HEADER_SIZE, *end = buf + sizeof(buf), *enc = body;
	AVal nm = {(char *)name, (int)strlen(name)};
	RTMPPacket pkt;

	enc = AMF_EncodeString(enc, end, &nm);
	enc = AMF_EncodeNumber(enc, end, txid);
	if (enc && enc < end)
		*enc++ = AMF_NULL;
	else
		enc = NULL;
	for (int i = 0; i < nargs && enc; i++) {
		AVal s = {(char *)args[i], (int)strlen(args[i])};

		enc = AMF_EncodeString(enc, end, &s);
	}
	if (!enc)
		return -E2BIG;
	memset(&pkt, 0, sizeof(pkt));
	pkt.m_nChannel = chan;
	pkt.m_headerType = RTMP_PACKET_SIZE_LARGE;
	pkt.m_packetType = RTMP_PACKET_TYPE_INVOKE;
	pkt.m_nInfoField2 = (int32_t)stream;
	pkt.m_body = body;
	pkt.m_nBodySize = (uint32_t)(enc - body);
	return RTMP_SendPacket(c->r, &pkt, FALSE) ? 0 : -EIO;
}

void conn_close(struct conn *c)
{
	if (!c->r)
		return;
	RTMP_Close(c->r);
	/* librtmp does not free the "conn=" arguments it parsed into Link.extras. */
	AMF_Reset(&c->r->Link.extras);
	RTMP_Free(c->r);
	c->r = NULL;
}

/*
 * Connects @c as client @index (user bench<index>@bench.local, empty password: no REGISTER)
 * and waits for the connect's _result. On failure @c is closed and @why says what failed.
 * Returns 0, -EINVAL (URL), -ECONNREFUSED (TCP or handshake), -EACCES (connect _error),
 * -ETIMEDOUT or -ECONNRESET.
 */
int conn_open(struct conn *c, const struct options *o, int index, char *why, size_t whylen)
{
	struct timeval tv = {.tv_sec = o->timeout_s};
	char user[NAME_LEN];
	struct event ev;
	double deadline;
	int n, rc;

	snprintf(user, sizeof(user), "bench%d@bench.local", index);
	/* app and tcUrl carry the user as a Flash client's NetConnection.connect would. */
	n = snprintf(c->url, sizeof(c->url),
		     "%s app=%s/%s tcUrl=%s/%s conn=S:bench%d conn=S: conn=S:bench%d", o->url,
		     o->app, user, o->url, user, index, index);
	if (n < 0 || (size_t)n >= sizeof(c->url)) {
		snprintf(why, whylen, "connect: URL too long");
		return -EINVAL;
	}
	c->r = RTMP_Alloc();
	if (!c->r) {
		snprintf(why, whylen, "connect: out of memory");
		return -ENOMEM;
	}
	RTMP_Init(c->r);
	c->txid = 1;
	if (!RTMP_SetupURL(c->r, c->url)) {
		snprintf(why, whylen, "connect: librtmp refused the URL %s", o->url);
		rc = -EINVAL;
		goto out_close;
	}
	c->r->Link.timeout = o->timeout_s;
	if (!RTMP_Connect(c->r, NULL)) {
		snprintf(why, whylen, "connect: TCP connect or RTMP handshake to %s failed",
			 o->url);
		rc = -ECONNREFUSED;
		goto out_close;
	}
	/* librtmp bounds reads (SO_RCVTIMEO); bound writes too, or a stalled server blocks us. */
	setsockopt(RTMP_Socket(c->r), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	deadline = now_s() + o->timeout_s;
	for (;;) {
		rc = next_event(c, deadline, &ev);
		if (rc < 0) {
			snprintf(why, whylen, "connect: %s",
				 rc == -ETIMEDOUT ? "no reply" : "connection closed by the server");
			goto out_close;
		}
		if (ev.txid != 1 || (ev.kind != EV_RESULT && ev.kind != EV_ERROR))
			continue;
		if (ev.kind == EV_RESULT)
			return 0;
		snprintf(why, whylen, "connect refused: %s", ev.text);
		rc = -EACCES;
		goto out_close;
	}
out_close:
	conn_close(c);
	return rc;
}

static atomic_uint next_target; /* the --target of the next invite, modulo o->ntargets */

/*
 * Places a call on @c: invite(target, codecs...) to the next --target in turn, and waits for its
 * outcome. Returns 0 when accepted (*lat_s: invite to accepted), -EPROTO on a failure the server
 * reported (_error, rejected, byed; the call is over), -ETIMEDOUT (the caller cancels it with
 * bye) or -ECONNRESET. @why says why on failure.
 */
int call_invite(struct conn *c, const struct options *o, double *lat_s, char *why,
		       size_t whylen)
{
	const char *args[1 + MAX_CODECS];
	char uri[URL_LEN + 16];
	int txid = ++c->txid;
	double t0 = now_s(), deadline = t0 + o->timeout_s;

	args[0] = o->targets[atomic_fetch_add(&next_target, 1) % (unsigned)o->ntargets];
	if (c->uri_user[0]) { /* sip:USER@rest -> sip:uri_user@rest */
		const char *at = strchr(args[0], '@');
		const char *rest = at ? at + 1 : args[0] + (strncmp(args[0], "sip:", 4) ? 0 : 4);
		int n = snprintf(uri, sizeof(uri), "sip:%s@%s", c->uri_user, rest);

		if (n < 0 || (size_t)n >= sizeof(uri)) {
			snprintf(why, whylen, "invite: URI too long");
			return -EPROTO;
		}
		args[0] = uri;
	}
	for (int i = 0; i < o->ntokens; i++)
		args[1 + i] = o->tokens[i];
	if (send_invoke(c, CHAN_INVOKE, 0, "invite", txid, args, 1 + o->ntokens) < 0) {
		snprintf(why, whylen, "invite: send failed");
		return -ECONNRESET;
	}
	for (;;) {
		struct event ev;
		int rc = next_event(c, deadline, &ev);

		if (rc == -ETIMEDOUT) {
			snprintf(why, whylen, "invite: not accepted within %d s", o->timeout_s);
			return rc;
		}
		if (rc < 0) {
			snprintf(why, whylen, "invite: connection closed by the server");
			return rc;
		}
		switch (ev.kind) {
		case EV_ACCEPTED:
			*lat_s = now_s() - t0;
			return 0;
		case EV_ERROR:
			if (ev.txid != txid)
				break;
			snprintf(why, whylen, "invite _error: %s", ev.text);
			return -EPROTO;
		case EV_REJECTED:
			snprintf(why, whylen, "rejected: %s", ev.text);
			return -EPROTO;
		case EV_BYED:
			snprintf(why, whylen, "byed before accepted");
			return -EPROTO;
		default:
			break; /* _result of the invite, ringing, late replies */
		}
	}
}

/* Hangs up (or cancels) the call on @c and waits for bye's reply. Returns 0, -EPROTO (bye
 * _error), -ETIMEDOUT or -ECONNRESET; @why says why on failure. */
int call_bye(struct conn *c, const struct options *o, char *why, size_t whylen)
{
	int txid = ++c->txid;
	double deadline = now_s() + o->timeout_s;

	if (send_invoke(c, CHAN_INVOKE, 0, "bye", txid, NULL, 0) < 0) {
		snprintf(why, whylen, "bye: send failed");
		return -ECONNRESET;
	}
	for (;;) {
		struct event ev;
		int rc = next_event(c, deadline, &ev);

		if (rc < 0) {
			snprintf(why, whylen, "bye: %s",
				 rc == -ETIMEDOUT ? "no reply" : "connection closed by the server");
			return rc;
		}
		if (ev.txid != txid)
			continue;
		if (ev.kind == EV_RESULT)
			return 0;
		if (ev.kind == EV_ERROR) {
			snprintf(why, whylen, "bye _error: %s", ev.text);
			return -EPROTO;
		}
	}
}

