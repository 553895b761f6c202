/*
 * sipphone.c - a scripted softphone on librtmp: it drives the signaler's `sip` app the way an old
 * Flash VoIP client does (connect with credentials, invite/accept/bye..., Speex or G.711 audio on
 * a published and a played stream), so integration tests can hold a call from the RTMP side.
 *
 *   TCP + handshake + connect(txid 1, {app:<path>}, args...) --> _result | _error  (expect-connect)
 *        |
 *        v   one script step at a time, in one poll() loop that also:
 *   [ step ]  - reads the socket: server invokes -> "event" lines + the event queue,
 *        |      _result/_error -> the pending invoke, audio -> decoded into the WAV of `play`
 *        v    - sends one audio message every 20 ms while `publish` runs (CLOCK_MONOTONIC)
 *   end of script --> "OK", exit 0          any failed step --> message on stderr, exit 1
 *
 *   publish/play:  createStream --> _result(id) --> publish|play on id --> onStatus ...Start
 *
 * Usage: sipphone [--timeout SEC] [--script FILE] [--verbose] URL [connect-arg...]
 *   URL          rtmp://HOST[:PORT]/PATH; the whole PATH is the connect `app` (as in Flash:
 *                rtmp://127.0.0.1:1935/sip/alice@example.com -> app "sip/alice@example.com")
 *   connect-arg  appended to connect after the command object, in order (authName, authPass,
 *                displayName, rate for the sip app); typed like invoke arguments below
 *   --timeout    bound on the whole run in seconds (default 60)
 *   --script     read the script from FILE instead of stdin
 *   --verbose    librtmp's debug log and our own notes on stderr
 *
 * Script: one command per line; `#` starts a comment; tokens are separated by blanks and may be
 * double-quoted ("a b", with \" and \\ inside). SECONDS may have fractions.
 *   expect-connect ok|rejected [SUBSTRING]   first command only (default: ok); the connect reply
 *                                 must be _result / _error, its description contain SUBSTRING
 *   invoke NAME [ARG...]          NAME(txid, null, ARG...) on stream 0; waits (10 s) for the reply,
 *                                 which must be _result. ARG: s:TEXT string, n:NUM number,
 *                                 b:true|false boolean, null, anything else a string (a token
 *                                 that starts with a quote is always a string)
 *   invoke-error NAME [ARG...]    the same, but the reply must be _error
 *   invite URI [CODEC...] | accept [CODEC...] | reject [REASON] | bye | dtmf DIGIT |
 *   hold true|false | transfer URI
 *                                 invoke invite/accept/reject/bye/sendDTMF/hold/transfer with
 *                                 those strings as arguments (hold sends a boolean)
 *   wait EVENT [SECONDS]          until a server invoke EVENT arrives (default 10 s); the oldest
 *                                 one not yet consumed by a wait counts, and is consumed
 *   wait-arg EVENT INDEX SUBSTRING [SECONDS]
 *                                 the same, for an EVENT whose argument INDEX (0 = the first after
 *                                 the null) as text contains SUBSTRING; other EVENTs stay queued
 *   no-event EVENT SECONDS        fails if EVENT arrives during the next SECONDS
 *   publish NAME speex|pcmu|pcma FREQ_HZ SECONDS
 *                                 createStream + publish NAME, then a FREQ_HZ sine (-10 dBFS), one
 *                                 message per 20 ms (timestamps 0, 20, ...) for SECONDS while the
 *                                 script goes on
 *   publish NAME speex|pcmu|pcma FREQ_HZ SECONDS video FILE.flv
 *                                 the same, and the video messages of FILE.flv (H.264: its
 *                                 sequence header and pictures) sent by their timestamps beside
 *                                 the audio; the player counts the video it gets (`video` lines)
 *   publish-silence NAME speex|pcmu|pcma SECONDS   the same with silence
 *   play NAME OUT.wav             createStream + play NAME; its audio is decoded into OUT.wav
 *                                 (mono 16-bit, 16 kHz for Speex, 8 kHz for G.711: the rate of the
 *                                 first message; at most 10 minutes)
 *   sleep SECONDS                 lets time pass (audio flows, events are printed)
 *   stop-publish                  closeStream + deleteStream of the published stream
 *   close                         disconnects (the script should end there)
 *   expect-close SECONDS          the server must close the connection within SECONDS
 * publish and play consume the onStatus events of their own stream. The server closing the
 * connection fails the step that is running unless it is expect-close.
 *
 * Output (stdout, one line each): `event NAME ARG...` for each server invoke (strings quoted,
 * numbers %g, true/false, null, objects {k:v,...}); `data NAME ARG...` for data messages;
 * `result NAME TXID ARG...` (everything after the txid) and `error NAME TXID "description"` for
 * the replies to connect and to our invokes; `audio NAME first codec=speex|pcmu|pcma`;
 * `video NAME first` and at the end `video NAME messages N keyframes K` for a played stream's
 * video;
 * `closed` when the server closes; `OK` at the end of the script.
 * Exit status: 0 the script ran through, 1 a step failed (or network failure, global timeout),
 * 2 usage or script syntax error.
 *
 * Files: sipphone.c (this one: output lines, sending, receiving, the steps and their table, main),
 * sipphone_media.c (G.711, the codecs, WAV recording), sipphone_script.c (step argument parsing,
 * reading the script); sipphone.h holds what they share.
 */
#include "sipphone.h"

#include "amf_line.h"

/* ---- values, lines --------------------------------------------------------------------------- */

/* Events and replies as printed: numbers and dates %g, ECMA arrays as objects, bounded lists. */
static const struct amf_line_style print_style = {
    .max_depth = PRINT_MAX_DEPTH,
    .max_items = PRINT_MAX_ARGS,
};

static bool aval_is(const AVal *a, const char *s)
{
	size_t n = strlen(s);

	return a->av_len >= 0 && (size_t)a->av_len == n && memcmp(a->av_val, s, n) == 0;
}

/* Copies the string property @key of the first object among values @from.. of @o into @out
 * ("" when there is none). */
static void find_info(const AMFObject *o, int from, const char *key, char *out, size_t outlen)
{
	AVal k = {(char *)key, (int)strlen(key)};

	out[0] = '\0';
	for (int i = from; i < o->o_num; i++) {
		const AMFObjectProperty *p = &o->o_props[i];
		AMFObjectProperty *v;
		size_t n;

		if (p->p_type != AMF_OBJECT && p->p_type != AMF_ECMA_ARRAY)
			continue;
		v = AMF_GetProp((AMFObject *)&p->p_vu.p_object, &k, -1);
		if (!v || v->p_type != AMF_STRING)
			continue;
		n = (size_t)v->p_vu.p_aval.av_len;
		if (n >= outlen)
			n = outlen - 1;
		memcpy(out, v->p_vu.p_aval.av_val, n);
		out[n] = '\0';
		return;
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- run state ------------------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* Reports why @st failed on stderr: "sipphone: line N (text): reason". */
void step_fail(const struct step *st, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st->lineno)
		fprintf(stderr, "sipphone: line %d (%s): %s\n", st->lineno, st->text, msg);
	else
		fprintf(stderr, "sipphone: %s: %s\n", st->text, msg);
}

/* ---- sending --------------------------------------------------------------------------------- */

static char *encode_values(char *enc, char *end, const struct val *args, int nargs)
{
	for (int i = 0; i < nargs && enc; i++) {
		const struct val *v = &args[i];

		switch (v->kind) {
		case VAL_STR: {
			AVal s = {(char *)v->str, (int)strlen(v->str)};

			enc = AMF_EncodeString(enc, end, &s);
			break;
		}
		case VAL_NUM:
			enc = AMF_EncodeNumber(enc, end, v->num);
			break;
		case VAL_BOOL:
			enc = AMF_EncodeBoolean(enc, end, v->flag);
			break;
		case VAL_NULL:
			if (enc >= end)
				return NULL;
			*enc++ = AMF_NULL;
			break;
		}
	}
	return enc;
}

/* The connection is gone (the server closed it, or sending failed). */
static void peer_closed(struct phone *ph)
{
	ph->up = false;
	if (!ph->closed_by_us && !ph->closed_by_peer) {
		ph->closed_by_peer = true;
		printf("closed\n");
	}
	ph->pub.sending = false;
}

/* Sends @body (@len bytes after RTMP_MAX_HEADER_SIZE bytes of room) as one message. Returns 0 or
 * -EIO (the connection is then marked down). */
static int send_message(struct phone *ph, int channel, uint8_t type, int header, uint32_t stream,
			uint32_t ts, char *body, uint32_t len)
{
	RTMPPacket pkt;

	if (!ph->up)
		return -ENOTCONN;
	memset(&pkt, 0, sizeof(pkt));
	pkt.m_nChannel = channel;
	pkt.m_headerType = (uint8_t)header;
	pkt.m_packetType = type;
	pkt.m_nTimeStamp = ts;
	pkt.m_nInfoField2 = (int32_t)stream;
	pkt.m_body = body;
	pkt.m_nBodySize = len;
	if (!RTMP_SendPacket(ph->r, &pkt, FALSE)) {
		fprintf(stderr, "sipphone: sending failed: the connection is gone\n");
		if (!RTMP_IsConnected(ph->r))
			peer_closed(ph);
		return -EIO;
	}
	return 0;
}

/* Sends NAME(txid, null, args...) on message stream @stream. Returns 0, -E2BIG or -EIO. */
static int send_command(struct phone *ph, uint32_t stream, const char *name, double txid,
			const struct val *args, int nargs)
{
	static char buf[RTMP_MAX_HEADER_SIZE + BODY_MAX];
	char *body = buf + RTMP_MAX_HEADER_SIZE, *end = buf + sizeof(buf), *enc;
	AVal n = {(char *)name, (int)strlen(name)};

	enc = AMF_EncodeString(body, end, &n);
	enc = enc ? AMF_EncodeNumber(enc, end, txid) : NULL;
	if (enc && enc < end)
		*enc++ = AMF_NULL;
	else
		enc = NULL;
	enc = enc ? encode_values(enc, end, args, nargs) : NULL;
	if (!enc) {
		fprintf(stderr, "sipphone: %s does not fit in %d bytes\n", name, BODY_MAX);
		return -E2BIG;
	}
	if (ph->verbose)
		fprintf(stderr, "sipphone: sending %s txid %g on stream %u\n", name, txid, stream);
	return send_message(ph, stream ? CHANNEL_NS : CHANNEL_NC, RTMP_PACKET_TYPE_INVOKE,
			    RTMP_PACKET_SIZE_LARGE, stream, 0, body, (uint32_t)(enc - body));
}

/* Sends an invoke that expects a reply and makes it the pending one. */
static int send_invoke(struct phone *ph, const char *name, const struct val *args, int nargs)
{
	int txid = ph->next_txid++;

	memset(&ph->reply, 0, sizeof(ph->reply));
	ph->reply.txid = txid;
	ph->reply.method = name;
	return send_command(ph, 0, name, txid, args, nargs);
}

/* Sends the publisher's due audio messages (20 ms apart from t0; no drift). */
static void send_due_audio(struct phone *ph, double now)
{
	static char buf[RTMP_MAX_HEADER_SIZE + 1 + 1024];
	struct publisher *p = &ph->pub;
	char *body = buf + RTMP_MAX_HEADER_SIZE;

	for (int burst = 0; burst < MAX_BURST && p->sending && ph->up; burst++) {
		int16_t pcm[MAX_FRAME_PCM];
		unsigned n = p->codec->rate / 50;
		int len;

		if (now < p->t0 + p->frame * FRAME_S)
			break;
		for (unsigned i = 0; i < n; i++) {
			pcm[i] = (int16_t)lrint(p->amplitude * sin(p->phase));
			p->phase = fmod(p->phase + p->phase_step, 2 * M_PI);
		}
		body[0] = (char)p->codec->tag;
		len = p->codec->encode(p, pcm, n, (uint8_t *)body + 1, 1024);
		if (len < 0) {
			fprintf(stderr, "sipphone: %s encoding failed\n", p->codec->name);
			p->sending = false;
			break;
		}
		/* The first message carries the stream id (full header), the rest deltas. */
		send_message(ph, CHANNEL_AUDIO, RTMP_PACKET_TYPE_AUDIO,
			     p->first_sent ? RTMP_PACKET_SIZE_MEDIUM : RTMP_PACKET_SIZE_LARGE,
			     p->stream, p->frame * FRAME_MS, body, (uint32_t)len + 1);
		p->first_sent = true;
		if (++p->frame >= p->frames)
			p->sending = false;
	}
	/* the file's video messages that are due, by their own timestamps (a sequence header at
	 * 0 first) */
	while (p->next_vt < p->n_vt && ph->up && p->stream &&
	       now >= p->t0 + p->vt[p->next_vt].ts / 1000.0 &&
	       p->vt[p->next_vt].ts < p->frames * FRAME_MS) {
		struct flv_tag *v = &p->vt[p->next_vt++];

		send_message(ph, CHANNEL_VIDEO, RTMP_PACKET_TYPE_VIDEO,
			     p->vfirst_sent ? RTMP_PACKET_SIZE_MEDIUM : RTMP_PACKET_SIZE_LARGE,
			     p->stream, v->ts, (char *)v->data, v->len);
		p->vfirst_sent = true;
	}
}

static void publisher_stop(struct publisher *p)
{
	flv_tags_free(p->vt, p->n_vt);
	if (p->enc)
		speex_encoder_destroy(p->enc);
	if (p->bits_init)
		speex_bits_destroy(&p->bits);
	memset(p, 0, sizeof(*p));
}

/* ---- receiving ------------------------------------------------------------------------------- */

static void event_free(struct event *e)
{
	for (int i = 0; i < e->nargs; i++)
		free(e->args[i]);
	memset(e, 0, sizeof(*e));
}

/* Queues a server invoke (values from index 3 as text). The oldest is dropped when full. */
static void store_event(struct phone *ph, const AMFObject *o, uint32_t stream)
{
	const AVal *name = &o->o_props[0].p_vu.p_aval;
	struct event *e;
	size_t n;

	if (ph->nevents == MAX_EVENTS) {
		fprintf(stderr, "sipphone: more than %d events: forgetting the oldest\n",
			MAX_EVENTS);
		event_free(&ph->events[0]);
		memmove(&ph->events[0], &ph->events[1], sizeof(ph->events[0]) * (MAX_EVENTS - 1));
		ph->nevents--;
	}
	e = &ph->events[ph->nevents++];
	memset(e, 0, sizeof(*e));
	e->seq = ph->next_seq++;
	e->stream = stream;
	n = name->av_len < EVENT_NAME_MAX ? (size_t)name->av_len : EVENT_NAME_MAX - 1;
	memcpy(e->name, name->av_val, n);
	for (int i = 3; i < o->o_num && e->nargs < EVENT_MAX_ARGS; i++) {
		static struct line l;

		line_reset(&l);
		line_add_amf(&l, &o->o_props[i], false, &print_style, 0);
		e->args[e->nargs] = strndup(l.buf, EVENT_ARG_MAX);
		if (!e->args[e->nargs])
			break;
		e->nargs++;
	}
}

static void handle_reply(struct phone *ph, const AMFObject *o, bool is_result, double txid)
{
	static struct line l;
	struct reply *rp = &ph->reply;

	if (!rp->txid || txid != rp->txid || rp->arrived) {
		fprintf(stderr, "sipphone: unexpected %s for txid %g ignored\n",
			is_result ? "_result" : "_error", txid);
		return;
	}
	rp->arrived = true;
	rp->is_result = is_result;
	find_info(o, 2, "description", rp->desc, sizeof(rp->desc));
	for (int i = 3; i < o->o_num; i++)
		if (o->o_props[i].p_type == AMF_NUMBER) {
			rp->has_number = true;
			rp->number = o->o_props[i].p_vu.p_number;
			break;
		}
	line_reset(&l);
	if (is_result) {
		line_add(&l, "result %s %d", rp->method, rp->txid);
		line_add_amf_args(&l, o, 2, &print_style);
	} else {
		line_add(&l, "error %s %d ", rp->method, rp->txid);
		line_add_text(&l, rp->desc, strlen(rp->desc), true);
	}
	printf("%s\n", l.buf);
}

/* Invokes (AMF0, or AMF3 with its leading 0 byte) and data messages. */
static void handle_command(struct phone *ph, const RTMPPacket *pkt)
{
	static struct line l;
	const char *body = pkt->m_body;
	int size = (int)pkt->m_nBodySize;
	bool is_data = pkt->m_packetType == RTMP_PACKET_TYPE_INFO ||
		       pkt->m_packetType == RTMP_PACKET_TYPE_FLEX_STREAM_SEND;
	const AVal *name;
	AMFObject o;
	double txid = 0;

	/* AMF3 commands and data start with a 0 byte before an AMF0 body. */
	if ((pkt->m_packetType == RTMP_PACKET_TYPE_FLEX_MESSAGE ||
	     pkt->m_packetType == RTMP_PACKET_TYPE_FLEX_STREAM_SEND) &&
	    size > 0 && body[0] == 0) {
		body++;
		size--;
	}
	memset(&o, 0, sizeof(o));
	if (size <= 0 || AMF_Decode(&o, body, size, FALSE) < 0 || o.o_num < 1 ||
	    o.o_props[0].p_type != AMF_STRING) {
		fprintf(stderr, "sipphone: undecodable %s (%d bytes) ignored\n",
			is_data ? "data message" : "command", size);
		AMF_Reset(&o);
		return;
	}
	name = &o.o_props[0].p_vu.p_aval;
	line_reset(&l);
	if (is_data) {
		line_add(&l, "data ");
		line_add_text(&l, name->av_val, (size_t)name->av_len, false);
		line_add_amf_args(&l, &o, 1, &print_style);
		printf("%s\n", l.buf);
	} else {
		if (o.o_num > 1 && o.o_props[1].p_type == AMF_NUMBER)
			txid = o.o_props[1].p_vu.p_number;
		if (aval_is(name, "_result") || aval_is(name, "_error")) {
			handle_reply(ph, &o, aval_is(name, "_result"), txid);
		} else {
			line_add(&l, "event ");
			line_add_text(&l, name->av_val, (size_t)name->av_len, false);
			line_add_amf_args(&l, &o, 3, &print_style);
			printf("%s\n", l.buf);
			store_event(ph, &o, (uint32_t)pkt->m_nInfoField2);
		}
	}
	AMF_Reset(&o);
}

/* Audio on the played stream: decoded and appended to its WAV. */
static void handle_audio(struct phone *ph, const RTMPPacket *pkt)
{
	static int16_t pcm[MAX_DECODED];
	struct player *pl = &ph->play;
	const uint8_t *body = (const uint8_t *)pkt->m_body;
	const struct codec *c;
	size_t n;

	if (!pl->wav || (uint32_t)pkt->m_nInfoField2 != pl->stream || pkt->m_nBodySize < 2)
		return;
	c = codec_by_format(body[0] >> 4);
	if (!c) {
		if (!pl->noted_other)
			fprintf(stderr, "sipphone: %s: audio tag 0x%02x is not decoded\n", pl->name,
				body[0]);
		pl->noted_other = true;
		return;
	}
	if (!pl->codec) {
		pl->codec = c;
		pl->rate = c->rate;
		pl->max_samples = WAV_MAX_SECONDS * c->rate;
		printf("audio %s first codec=%s\n", pl->name, c->name);
		wav_finalize(pl);
	}
	n = c->decode(pl, body + 1, pkt->m_nBodySize - 1, pcm, MAX_DECODED);
	wav_append(pl, pcm, n, c->rate);
}

static void handle_packet(struct phone *ph, RTMPPacket *pkt)
{
	if (pkt->m_nBodySize > RECV_BODY_MAX) {
		fprintf(stderr, "sipphone: message type %u of %u bytes dropped\n",
			pkt->m_packetType, pkt->m_nBodySize);
		return;
	}
	switch (pkt->m_packetType) {
	case RTMP_PACKET_TYPE_CHUNK_SIZE:
	case RTMP_PACKET_TYPE_BYTES_READ_REPORT:
	case RTMP_PACKET_TYPE_CONTROL:
	case RTMP_PACKET_TYPE_SERVER_BW:
	case RTMP_PACKET_TYPE_CLIENT_BW:
		/* librtmp keeps its protocol state (chunk size, window, ping replies). */
		RTMP_ClientPacket(ph->r, pkt);
		break;
	case RTMP_PACKET_TYPE_AUDIO:
		handle_audio(ph, pkt);
		break;
	case RTMP_PACKET_TYPE_VIDEO:
		if (ph->play.stream && (uint32_t)pkt->m_nInfoField2 == ph->play.stream &&
		    pkt->m_nBodySize >= 2 && pkt->m_body[1] == 1) { /* pictures, not headers */
			if (!ph->play.video_msgs++)
				printf("video %s first\n", ph->play.name);
			ph->play.video_keys += ((uint8_t)pkt->m_body[0] >> 4) == 1;
		}
		break;
	case RTMP_PACKET_TYPE_INVOKE:
	case RTMP_PACKET_TYPE_FLEX_MESSAGE:
	case RTMP_PACKET_TYPE_INFO:
	case RTMP_PACKET_TYPE_FLEX_STREAM_SEND:
		handle_command(ph, pkt);
		break;
	default:
		if (ph->verbose)
			fprintf(stderr, "sipphone: message type %u ignored\n", pkt->m_packetType);
		break;
	}
}

/* Reads one chunk (librtmp blocks until that chunk is complete) and handles the message when
 * it is. */
static void read_once(struct phone *ph)
{
	RTMPPacket pkt;

	memset(&pkt, 0, sizeof(pkt));
	if (!RTMP_ReadPacket(ph->r, &pkt)) {
		RTMPPacket_Free(&pkt);
		if (!RTMP_IsConnected(ph->r))
			peer_closed(ph);
		else
			ph->r->m_sb.sb_timedout = FALSE; /* a chunk stalled: try again */
		return;
	}
	if (RTMPPacket_IsReady(&pkt) && pkt.m_body)
		handle_packet(ph, &pkt);
	RTMPPacket_Free(&pkt);
}

/*
 * One turn of the event loop: waits until the socket is readable, audio is due or @until, then
 * reads one chunk, sends the due audio and flushes the recording once a second.
 */
static void pump(struct phone *ph, double until)
{
	double now = now_s(), wake = until;
	bool readable = false;
	int ms;

	if (ph->pub.sending && ph->pub.t0 + ph->pub.frame * FRAME_S < wake)
		wake = ph->pub.t0 + ph->pub.frame * FRAME_S;
	if (ph->play.wav && ph->play.next_flush < wake)
		wake = ph->play.next_flush;
	ms = wake > now ? (int)ceil((wake - now) * 1000) : 0;
	if (ms > 1000)
		ms = 1000;
	if (ph->up && ph->r->m_sb.sb_size > 0) {
		readable = true; /* librtmp already holds bytes: poll would not see them */
	} else if (ph->up) {
		struct pollfd pfd = {.fd = RTMP_Socket(ph->r), .events = POLLIN};

		readable = poll(&pfd, 1, ms) > 0;
	} else if (ms > 0) {
		poll(NULL, 0, ms);
	}
	if (interrupted)
		return;
	if (readable)
		read_once(ph);
	now = now_s();
	send_due_audio(ph, now);
	if (ph->play.wav && now >= ph->play.next_flush) {
		wav_finalize(&ph->play);
		ph->play.next_flush = now + WAV_FLUSH_S;
	}
}

/* ---- steps ----------------------------------------------------------------------------------- */

/* The oldest unconsumed event named @name (whose argument @index contains @substr when given). */
static struct event *find_event(struct phone *ph, const char *name, int index, const char *substr,
				uint64_t first_seq)
{
	for (size_t i = 0; i < ph->nevents; i++) {
		struct event *e = &ph->events[i];

		if (e->consumed || e->seq < first_seq || strcmp(e->name, name) != 0)
			continue;
		if (substr && (index >= e->nargs || !strstr(e->args[index], substr)))
			continue;
		return e;
	}
	return NULL;
}

/* Lists the events seen so far, for a failure message. */
static void list_events(struct phone *ph, char *out, size_t outlen)
{
	size_t len = 0;

	snprintf(out, outlen, "none");
	for (size_t i = 0; i < ph->nevents && len + 1 < outlen; i++) {
		const struct event *e = &ph->events[i];
		int n = snprintf(out + len, outlen - len, "%s%s%s%s%s", i ? ", " : "", e->name,
				 e->nargs ? "(" : "", e->nargs ? e->args[0] : "",
				 e->nargs ? (e->consumed ? ") [consumed]" : ")")
					  : (e->consumed ? " [consumed]" : ""));

		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (len >= outlen && outlen > 4)
		memcpy(out + outlen - 4, "...", 4);
}

/* Checks the pending reply: WAIT until it arrives, then DONE when it is what @want_error says. */
static enum step_rc check_reply(struct phone *ph, struct step *st, bool want_error, double now)
{
	struct reply *rp = &ph->reply;

	if (!rp->arrived) {
		if (now < st->deadline)
			return STEP_WAIT;
		step_fail(st, "no reply to %s (txid %d) within %g s", rp->method, rp->txid,
			  DEFAULT_WAIT_S);
		return STEP_FAIL;
	}
	rp->txid = 0;
	if (rp->is_result == want_error) {
		step_fail(st, "%s: got %s%s%s, expected %s", rp->method,
			  rp->is_result ? "_result" : "_error", rp->desc[0] ? ": " : "", rp->desc,
			  want_error ? "_error" : "_result");
		return STEP_FAIL;
	}
	return STEP_DONE;
}

static enum step_rc connect_poll(struct phone *ph, struct step *st, double now)
{
	struct reply *rp = &ph->reply;

	if (!rp->arrived) {
		if (now < st->deadline)
			return STEP_WAIT;
		step_fail(st, "no reply to connect within %g s", DEFAULT_WAIT_S);
		return STEP_FAIL;
	}
	rp->txid = 0;
	if (rp->is_result == ph->connect_want_error) {
		step_fail(st, "connect was %s: %s", rp->is_result ? "accepted" : "rejected",
			  rp->desc[0] ? rp->desc : "(no description)");
		return STEP_FAIL;
	}
	if (ph->connect_substr && !strstr(rp->desc, ph->connect_substr)) {
		step_fail(st, "connect description \"%s\" does not contain \"%s\"", rp->desc,
			  ph->connect_substr);
		return STEP_FAIL;
	}
	return STEP_DONE;
}

static enum step_rc invoke_start(struct phone *ph, struct step *st, double now)
{
	st->deadline = now + DEFAULT_WAIT_S;
	if (send_invoke(ph, st->name, st->args, st->nargs) < 0) {
		step_fail(st, "cannot send %s", st->name);
		return STEP_FAIL;
	}
	return STEP_WAIT;
}

static enum step_rc invoke_poll(struct phone *ph, struct step *st, double now)
{
	return check_reply(ph, st, st->want_error, now);
}

static enum step_rc wait_start(struct phone *ph, struct step *st, double now)
{
	st->deadline = now + st->seconds;
	return STEP_WAIT;
}

static enum step_rc wait_poll(struct phone *ph, struct step *st, double now)
{
	struct event *e = find_event(ph, st->name, st->index, st->substr, 0);
	char seen[2048];

	if (e) {
		e->consumed = true;
		return STEP_DONE;
	}
	if (now < st->deadline && ph->up)
		return STEP_WAIT;
	list_events(ph, seen, sizeof(seen));
	if (st->substr)
		step_fail(st,
			  "no event %s with argument %d containing \"%s\" %s %g s; events "
			  "seen: %s",
			  st->name, st->index, st->substr,
			  ph->up ? "within" : "before the close, in", st->seconds, seen);
	else
		step_fail(st, "no event %s %s %g s; events seen: %s", st->name,
			  ph->up ? "within" : "before the close, in", st->seconds, seen);
	return STEP_FAIL;
}

static enum step_rc no_event_start(struct phone *ph, struct step *st, double now)
{
	st->deadline = now + st->seconds;
	st->first_seq = ph->next_seq;
	return STEP_WAIT;
}

static enum step_rc no_event_poll(struct phone *ph, struct step *st, double now)
{
	struct event *e = find_event(ph, st->name, 0, NULL, st->first_seq);

	if (e) {
		step_fail(st, "event %s%s%s arrived", e->name, e->nargs ? " " : "",
			  e->nargs ? e->args[0] : "");
		return STEP_FAIL;
	}
	return now < st->deadline ? STEP_WAIT : STEP_DONE;
}

enum { PH_CREATE, PH_STATUS };

/* createStream for publish/play. */
static enum step_rc stream_start(struct phone *ph, struct step *st, double now)
{
	bool publish = strncmp(st->type->name, "publish", 7) == 0;

	if (publish ? ph->pub.stream != 0 : ph->play.stream != 0) {
		step_fail(st, "a stream is already %s here", publish ? "published" : "played");
		return STEP_FAIL;
	}
	st->deadline = now + DEFAULT_WAIT_S; /* for createStream and the status */
	st->phase = PH_CREATE;
	if (send_invoke(ph, "createStream", NULL, 0) < 0) {
		step_fail(st, "cannot send createStream");
		return STEP_FAIL;
	}
	return STEP_WAIT;
}

/* After createStream: the stream id, or a failure. Returns 0 when @id is set. */
static int created_stream(struct phone *ph, struct step *st, double now, uint32_t *id,
			  enum step_rc *rc)
{
	*rc = check_reply(ph, st, false, now);
	if (*rc != STEP_DONE)
		return -EAGAIN;
	if (!ph->reply.has_number || ph->reply.number < 1 || ph->reply.number > 0x7fffffff) {
		step_fail(st, "createStream did not return a stream id");
		*rc = STEP_FAIL;
		return -EINVAL;
	}
	*id = (uint32_t)ph->reply.number;
	*rc = STEP_WAIT;
	return 0;
}

/* The onStatus of @stream: 1 when one carries @ok_code, -1 on an error status, 0 otherwise.
 * Statuses of that stream seen on the way are consumed. */
static int stream_status(struct phone *ph, struct step *st, uint32_t stream, const char *ok_code)
{
	for (size_t i = 0; i < ph->nevents; i++) {
		struct event *e = &ph->events[i];

		if (e->consumed || e->stream != stream || strcmp(e->name, "onStatus") != 0 ||
		    e->nargs < 1)
			continue;
		e->consumed = true;
		if (strstr(e->args[0], ok_code))
			return 1;
		if (strstr(e->args[0], "level:\"error\"")) {
			step_fail(st, "%s", e->args[0]);
			return -1;
		}
	}
	return 0;
}

static enum step_rc publish_poll(struct phone *ph, struct step *st, double now)
{
	struct publisher *p = &ph->pub;
	struct val args[2] = {{.kind = VAL_STR, .str = st->name}, {.kind = VAL_STR, .str = "live"}};
	enum step_rc rc;
	int s;

	if (st->phase == PH_CREATE) {
		if (created_stream(ph, st, now, &p->stream, &rc) < 0)
			return rc;
		p->name = st->name;
		st->phase = PH_STATUS;
		if (send_command(ph, p->stream, "publish", 0, args, 2) < 0)
			return STEP_FAIL;
	}
	s = stream_status(ph, st, p->stream, "NetStream.Publish.Start");
	if (s < 0)
		return STEP_FAIL;
	if (s == 0) {
		if (now < st->deadline)
			return STEP_WAIT;
		step_fail(st, "no NetStream.Publish.Start within %g s", DEFAULT_WAIT_S);
		return STEP_FAIL;
	}
	p->codec = st->codec;
	if (p->codec->flv_format == 11) {
		int q = SPEEX_QUALITY, frame = 0;

		p->enc = speex_encoder_init(&speex_wb_mode);
		if (!p->enc) {
			step_fail(st, "cannot create a Speex encoder");
			return STEP_FAIL;
		}
		speex_encoder_ctl(p->enc, SPEEX_SET_QUALITY, &q);
		speex_encoder_ctl(p->enc, SPEEX_GET_FRAME_SIZE, &frame);
		speex_bits_init(&p->bits);
		p->bits_init = true;
		if (frame != MAX_FRAME_PCM) {
			step_fail(st, "libspeex wideband frame is %d samples, not %d", frame,
				  MAX_FRAME_PCM);
			return STEP_FAIL;
		}
	}
	if (st->video) {
		ssize_t nv = flv_read_video(st->video, RTMP_MAX_HEADER_SIZE, &p->vt);

		if (nv < 0) {
			step_fail(st, "cannot read the video of %s: %s", st->video, strerror((int)-nv));
			return STEP_FAIL;
		}
		p->n_vt = (size_t)nv;
		p->next_vt = 0;
	}
	p->amplitude = st->freq > 0 ? TONE_AMPLITUDE : 0;
	p->phase_step = 2 * M_PI * st->freq / p->codec->rate;
	p->frames = (uint32_t)lrint(st->seconds / FRAME_S);
	p->frame = 0;
	p->t0 = now_s();
	p->sending = p->frames > 0;
	return STEP_DONE;
}

static enum step_rc play_poll(struct phone *ph, struct step *st, double now)
{
	struct player *pl = &ph->play;
	struct val args[2] = {{.kind = VAL_STR, .str = st->name}, {.kind = VAL_NUM, .num = -2}};
	enum step_rc rc;
	int s;

	if (st->phase == PH_CREATE) {
		if (created_stream(ph, st, now, &pl->stream, &rc) < 0)
			return rc;
		pl->name = st->name;
		pl->path = st->path;
		pl->wav = fopen(st->path, "w+b");
		if (!pl->wav) {
			step_fail(st, "cannot create %s: %s", st->path, strerror(errno));
			return STEP_FAIL;
		}
		wav_finalize(pl);
		pl->next_flush = now + WAV_FLUSH_S;
		st->phase = PH_STATUS;
		if (send_command(ph, pl->stream, "play", 0, args, 2) < 0)
			return STEP_FAIL;
	}
	s = stream_status(ph, st, pl->stream, "NetStream.Play.Start");
	if (s < 0)
		return STEP_FAIL;
	if (s == 0) {
		if (now < st->deadline)
			return STEP_WAIT;
		step_fail(st, "no NetStream.Play.Start within %g s", DEFAULT_WAIT_S);
		return STEP_FAIL;
	}
	return STEP_DONE;
}

static enum step_rc sleep_start(struct phone *ph, struct step *st, double now)
{
	st->deadline = now + st->seconds;
	wav_finalize(&ph->play);
	return STEP_WAIT;
}

static enum step_rc sleep_poll(struct phone *ph, struct step *st, double now)
{
	return now < st->deadline ? STEP_WAIT : STEP_DONE;
}

static enum step_rc stop_publish_start(struct phone *ph, struct step *st, double now)
{
	struct val id = {.kind = VAL_NUM, .num = ph->pub.stream};
	int rc;

	if (!ph->pub.stream) {
		step_fail(st, "nothing is published");
		return STEP_FAIL;
	}
	rc = send_command(ph, ph->pub.stream, "closeStream", 0, NULL, 0);
	if (rc == 0)
		rc = send_command(ph, 0, "deleteStream", 0, &id, 1);
	publisher_stop(&ph->pub);
	return rc < 0 ? STEP_FAIL : STEP_DONE;
}

static enum step_rc close_start(struct phone *ph, struct step *st, double now)
{
	if (ph->up)
		RTMP_Close(ph->r);
	ph->up = false;
	ph->closed_by_us = true;
	ph->pub.sending = false;
	return STEP_DONE;
}

static enum step_rc expect_close_poll(struct phone *ph, struct step *st, double now)
{
	if (ph->closed_by_peer)
		return STEP_DONE;
	if (ph->closed_by_us) {
		step_fail(st, "the script closed the connection itself");
		return STEP_FAIL;
	}
	if (now < st->deadline)
		return STEP_WAIT;
	step_fail(st, "the server kept the connection open for %g s", st->seconds);
	return STEP_FAIL;
}

/* The connect reply, as the first step of every run (not a script command). */
/* clang-format off */
const struct step_type connect_type = {
	.name = "connect", .needs_conn = true, .poll = connect_poll,
};

#define SHORTCUT(n, m, lo, hi)                                                                   \
	{.name = n, .method = m, .min_args = lo, .max_args = hi, .needs_conn = true,             \
	 .parse = parse_shortcut, .start = invoke_start, .poll = invoke_poll}

static const struct step_type step_types[] = {
	{.name = "invoke", .min_args = 1, .max_args = MAX_ARGS + 1, .needs_conn = true,
	 .parse = parse_invoke, .start = invoke_start, .poll = invoke_poll},
	{.name = "invoke-error", .min_args = 1, .max_args = MAX_ARGS + 1, .needs_conn = true,
	 .parse = parse_invoke, .start = invoke_start, .poll = invoke_poll},
	SHORTCUT("invite", "invite", 1, MAX_ARGS),
	SHORTCUT("accept", "accept", 0, MAX_ARGS),
	SHORTCUT("reject", "reject", 0, 1),
	SHORTCUT("bye", "bye", 0, 0),
	SHORTCUT("dtmf", "sendDTMF", 1, 1),
	SHORTCUT("hold", "hold", 1, 1),
	SHORTCUT("transfer", "transfer", 1, 1),
	{.name = "wait", .min_args = 1, .max_args = 2, .needs_conn = true, .parse = parse_wait,
	 .start = wait_start, .poll = wait_poll},
	{.name = "wait-arg", .min_args = 3, .max_args = 4, .needs_conn = true, .parse = parse_wait,
	 .start = wait_start, .poll = wait_poll},
	{.name = "no-event", .min_args = 2, .max_args = 2, .needs_conn = true,
	 .parse = parse_no_event, .start = no_event_start, .poll = no_event_poll},
	{.name = "publish", .min_args = 4, .max_args = 6, .needs_conn = true,
	 .parse = parse_publish, .start = stream_start, .poll = publish_poll},
	{.name = "publish-silence", .min_args = 3, .max_args = 3, .needs_conn = true,
	 .parse = parse_publish, .start = stream_start, .poll = publish_poll},
	{.name = "play", .min_args = 2, .max_args = 2, .needs_conn = true, .parse = parse_play,
	 .start = stream_start, .poll = play_poll},
	{.name = "sleep", .min_args = 1, .max_args = 1, .parse = parse_seconds_arg,
	 .start = sleep_start, .poll = sleep_poll},
	{.name = "stop-publish", .min_args = 0, .max_args = 0, .needs_conn = true,
	 .parse = parse_nothing, .start = stop_publish_start},
	{.name = "close", .min_args = 0, .max_args = 0, .parse = parse_nothing,
	 .start = close_start},
	{.name = "expect-close", .min_args = 1, .max_args = 1, .expects_close = true,
	 .parse = parse_seconds_arg, .start = wait_start, .poll = expect_close_poll},
};
/* clang-format on */

const struct step_type *step_type_find(const char *name)
{
	for (size_t i = 0; i < sizeof(step_types) / sizeof(step_types[0]); i++)
		if (strcmp(step_types[i].name, name) == 0)
			return &step_types[i];
	return NULL;
}

/* ---- main ------------------------------------------------------------------------------------ */

struct options {
	double timeout;
	bool verbose;
	const char *script;
	const char *url;
	char **conn_args;
	int nconn_args;
};

static void usage(void)
{
	fprintf(stderr, "usage: sipphone [--timeout SEC] [--script FILE] [--verbose] URL "
			"[connect-arg...]  (script on stdin unless --script)\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->timeout = DEFAULT_TIMEOUT;
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--verbose") == 0) {
			o->verbose = true;
		} else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
			if (!parse_seconds(argv[++i], &o->timeout, false)) {
				fprintf(stderr, "sipphone: bad --timeout %s\n", argv[i]);
				return -EINVAL;
			}
		} else if (strcmp(a, "--script") == 0 && i + 1 < argc) {
			o->script = argv[++i];
		} else {
			fprintf(stderr, "sipphone: unknown option or missing value: %s\n", a);
			return -EINVAL;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "sipphone: no URL\n");
		return -EINVAL;
	}
	o->url = argv[i++];
	if (argc - i > MAX_ARGS) {
		fprintf(stderr, "sipphone: more than %d connect arguments\n", MAX_ARGS);
		return -EINVAL;
	}
	o->conn_args = argv + i;
	o->nconn_args = argc - i;
	return 0;
}

/*
 * Sets up @r for @url: librtmp parses host and port, then app becomes the whole path and tcUrl
 * the whole URL (librtmp alone would keep only the first path element as app). The connect
 * arguments become librtmp's connect extras. Returns 0, or -EINVAL after printing why.
 */
static int setup_link(RTMP *r, const struct options *o)
{
	static char parse_copy[MAX_URL], app_copy[MAX_URL];
	const char *host, *path;

	if (strlen(o->url) >= MAX_URL || strncmp(o->url, "rtmp://", 7) != 0) {
		fprintf(stderr, "sipphone: want an rtmp://HOST[:PORT]/PATH URL: %s\n", o->url);
		return -EINVAL;
	}
	host = o->url + 7;
	path = strchr(host, '/');
	if (!path || !path[1]) {
		fprintf(stderr, "sipphone: no application path in %s\n", o->url);
		return -EINVAL;
	}
	strcpy(parse_copy, o->url);
	strcpy(app_copy, o->url);
	/* librtmp keeps pointers into parse_copy: it is static, so it outlives @r. */
	if (!RTMP_SetupURL(r, parse_copy)) {
		fprintf(stderr, "sipphone: bad URL %s\n", o->url);
		return -EINVAL;
	}
	if (r->Link.lFlags & RTMP_LF_FTCU) {
		free(r->Link.tcUrl.av_val);
		r->Link.lFlags &= ~RTMP_LF_FTCU;
	}
	r->Link.tcUrl.av_val = app_copy;
	r->Link.tcUrl.av_len = (int)strlen(app_copy);
	r->Link.app.av_val = app_copy + (path + 1 - o->url);
	r->Link.app.av_len = (int)strlen(path + 1);
	r->Link.flashVer = RTMP_DefaultFlashVer; /* as a Flash Player sends it */
	for (int i = 0; i < o->nconn_args; i++) {
		AMFObjectProperty prop;
		struct val v;

		if (parse_value(o->conn_args[i], false, &v) < 0) {
			fprintf(stderr, "sipphone: bad connect argument '%s'\n", o->conn_args[i]);
			return -EINVAL;
		}
		memset(&prop, 0, sizeof(prop));
		switch (v.kind) {
		case VAL_STR:
			prop.p_type = AMF_STRING;
			prop.p_vu.p_aval.av_val = (char *)v.str;
			prop.p_vu.p_aval.av_len = (int)strlen(v.str);
			break;
		case VAL_NUM:
			prop.p_type = AMF_NUMBER;
			prop.p_vu.p_number = v.num;
			break;
		case VAL_BOOL:
			prop.p_type = AMF_BOOLEAN;
			prop.p_vu.p_number = v.flag;
			break;
		case VAL_NULL:
			prop.p_type = AMF_NULL;
			break;
		}
		AMF_AddProp(&r->Link.extras, &prop);
	}
	return 0;
}

/* The event loop over the script steps. Returns the exit status. */
static int run_steps(struct phone *ph, struct script *sc)
{
	for (int i = 0; i < sc->nsteps;) {
		struct step *st = &sc->steps[i];
		double now = now_s();
		enum step_rc rc = STEP_WAIT;

		if (st->type->needs_conn && !ph->up && ph->closed_by_us) {
			step_fail(st, "not connected (the script closed the connection)");
			return 1;
		}
		if (!st->started) {
			st->started = true;
			if (st->type->start)
				rc = st->type->start(ph, st, now);
		}
		if (rc == STEP_WAIT && st->type->poll)
			rc = st->type->poll(ph, st, now);
		else if (rc == STEP_WAIT)
			rc = STEP_DONE;
		if (rc == STEP_WAIT && ph->closed_by_peer && !st->type->expects_close) {
			step_fail(st, "the server closed the connection");
			rc = STEP_FAIL;
		}
		if (rc == STEP_WAIT && now >= ph->deadline) {
			step_fail(st, "the global timeout was reached");
			rc = STEP_FAIL;
		}
		if (rc == STEP_WAIT && interrupted) {
			step_fail(st, "interrupted by signal %d", (int)interrupted);
			rc = STEP_FAIL;
		}
		if (rc == STEP_FAIL)
			return 1;
		if (rc == STEP_DONE) {
			i++;
			continue;
		}
		pump(ph, st->deadline < ph->deadline ? st->deadline : ph->deadline);
	}
	return 0;
}

static int run(struct phone *ph, const struct options *o, struct script *sc)
{
	RTMP *r = RTMP_Alloc();
	int status;

	if (!r) {
		fprintf(stderr, "sipphone: out of memory\n");
		return 1;
	}
	RTMP_Init(r);
	ph->r = r;
	if (setup_link(r, o) < 0) {
		status = 2;
		goto out_free;
	}
	r->Link.timeout = o->timeout < 10 ? (int)ceil(o->timeout) : 10;
	sc->steps[0].deadline = now_s() + DEFAULT_WAIT_S;
	if (!RTMP_Connect(r, NULL)) {
		fprintf(stderr, "sipphone: connect to %s (TCP, handshake or connect send) failed\n",
			o->url);
		status = 1;
		goto out_free;
	}
	ph->up = true;
	ph->next_txid = 2;
	ph->reply.txid = 1; /* librtmp sent connect with transaction id 1 */
	ph->reply.method = "connect";
	status = run_steps(ph, sc);
	wav_finalize(&ph->play);
	if (status == 0)
		printf("OK\n");
out_free:
	if (ph->up || RTMP_IsConnected(r))
		RTMP_Close(r);
	/* librtmp does not free the connect extras; their strings are argv's. */
	AMF_Reset(&r->Link.extras);
	RTMP_Free(r);
	ph->r = NULL;
	return status;
}

int main(int argc, char **argv)
{
	static struct script sc;
	static struct phone ph;
	struct options o;
	struct sigaction sa;
	FILE *f = stdin;
	int status;

	if (parse_options(argc, argv, &o) < 0) {
		usage();
		return 2;
	}
	if (o.script) {
		f = fopen(o.script, "r");
		if (!f) {
			fprintf(stderr, "sipphone: %s: %s\n", o.script, strerror(errno));
			return 2;
		}
	}
	ph.verbose = o.verbose;
	status = read_script(&ph, &sc, f);
	if (f != stdin)
		fclose(f);
	if (status < 0) {
		script_free(&sc);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	RTMP_LogSetLevel(o.verbose ? RTMP_LOGDEBUG : RTMP_LOGERROR);
	ph.deadline = now_s() + o.timeout;
	status = run(&ph, &o, &sc);
	if (ph.play.video_msgs)
		printf("video %s messages %llu keyframes %llu\n", ph.play.name,
		       (unsigned long long)ph.play.video_msgs, (unsigned long long)ph.play.video_keys);
	if (ph.play.wav)
		fclose(ph.play.wav);
	if (ph.play.dec)
		speex_decoder_destroy(ph.play.dec);
	if (ph.play.bits_init)
		speex_bits_destroy(&ph.play.bits);
	publisher_stop(&ph.pub);
	for (size_t i = 0; i < ph.nevents; i++)
		event_free(&ph.events[i]);
	script_free(&sc);
	return status;
}
