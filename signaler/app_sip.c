/*
 * app_sip.c - the "sip" app: the call API of the Flash-era VoIP clients (docs/sip-app.md).
 *
 *   a client connects as sip/<user@domain> (app_sip_client.c); one call at a time per client:
 *
 *   invite(uri, codecs) --> leg on a worker --ready--> INVITE --18x--> ringing(reason)
 *                                                        |--2xx--> accepted(audio, video) --> up
 *                                                        \--failure--> rejected(reason)
 *   SIP INVITE to the client's AOR --offer checked (488 before ringing)--> 180, invited(from, to)
 *        accept(codecs) --> leg --ready--> 200 with the answer, accepted(audio, video) --> up
 *        reject([reason]) --> 603 (or the status given);  caller's CANCEL --> cancelled(from, to)
 *   up: bye() --> BYE;  peer BYE --> byed();  sendDTMF(d) --> RFC 4733 (INFO when not negotiated)
 *       hold(bool) --> re-INVITE --> holded(bool);  transfer(uri) --> REFER --> transferred(status)
 *       peer re-INVITE (hold, move) --> answered, holded(bool) when the hold state changed
 *       RFC 4733 or INFO digits from the peer --> dtmf(digit)
 *
 * Media: the stream the client publishes (any name, "local" by convention) feeds the call's leg;
 * the streams it plays (any name, "remote" by convention) receive the far end's audio. With the
 * "h264" token the call also carries H.264 video: a video leg beside the audio leg (on its
 * worker), offered or answered as SDP's video stream; the client's published H.264 goes to the
 * peer, the peer's to its players (from a key frame, asked for by RTCP PLI when one joins), and
 * accepted(audio, video) says "h264" when the peer took it. A peer without video: an audio call.
 */
#include "app_sip_int.h"

#include "amf.h"
#include "buf.h"
#include "call_policy.h"
#include "call_video.h"
#include "callrec.h"
#include "codec.h"
#include "config.h"
#include "dest.h"
#include "evloop.h"
#include "log.h"
#include "media.h"
#include "players.h"
#include "sdp.h"
#include "sip_ua.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TOKENS 16

/* What app_sip_init() set (the first four are app_sip_client.c's too). */
struct media *app_sip_bridge;
struct sip_ua *app_sip_ua;
const char *app_sip_registrar;
unsigned app_sip_reg_expires;
static const char *call_domain;
static bool anonymous_calls; /* SIP_ANONYMOUS_CALLS: unregistered clients may call out */
static enum sdp_srtp_policy srtp_policy;
static struct codec_pref default_prefs;

static const struct sip_ua_callbacks call_cbs;
static const struct media_leg_callbacks leg_cbs;

/* --- helpers -------------------------------------------------------------------------------- */

static const char *sid(const struct phone_call *pc)
{
	return pc->cl ? rtmp_conn_sid(pc->cl->conn) : NULL;
}

/* Sends NAME(0, null, args...) to the client: @fmt has one letter per argument, s for a string
 * (NULL gives null), b for a bool (int). */
static void invoke(struct sip_client *cl, const char *name, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	int err;

	if (!cl || rtmp_conn_closing(cl->conn))
		return;
	err = amf0_put_string(&b, name) < 0 || amf0_put_number(&b, 0) < 0 || amf0_put_null(&b) < 0;
	va_start(ap, fmt);
	for (const char *f = fmt; !err && *f; f++) {
		if (*f == 's') {
			const char *s = va_arg(ap, const char *);

			err = (s ? amf0_put_string(&b, s) : amf0_put_null(&b)) < 0;
		} else {
			err = amf0_put_bool(&b, va_arg(ap, int) != 0) < 0;
		}
	}
	va_end(ap);
	if (err)
		rtmp_conn_close(cl->conn, "out of memory");
	else
		rtmp_conn_send_command(cl->conn, 0, &b);
	buf_free(&b);
}

static void reply_ok(struct sip_client *cl, double txid)
{
	if (txid != 0)
		rtmp_conn_send_reply(cl->conn, true, txid, NULL, NULL);
}

static int reply_error(struct sip_client *cl, double txid, const char *why)
{
	log_info(rtmp_conn_sid(cl->conn), "sip: %s", why);
	if (txid != 0)
		rtmp_conn_send_error(cl->conn, txid, "NetConnection.Call.Failed", why);
	return 0;
}

/* The codec tokens of a command: string arguments from @first on. */
static size_t tokens_of(const struct amf_value *args, size_t first, const char **tok, size_t max)
{
	size_t n = 0;

	for (size_t i = first; i < amf_count(args) && n < max; i++) {
		size_t len;
		const char *s = amf_get_string(amf_index(args, i), &len);

		if (s && len > 0 && len < 32 && !memchr(s, '\0', len))
			tok[n++] = s;
	}
	return n;
}

static bool has_token(const char *const *tok, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(tok[i], name) == 0)
			return true;
	return false;
}

/*
 * What the client sends, from its tokens: Speex (Flash's codec) unless it names only G.711
 * itself ("pcmu"/"pcma" without "ulaw"/"alaw"/"wideband"/"narrowband"), which it then sends as
 * is. "ulaw"/"alaw" mean Speex from the client, G.711 toward SIP.
 */
static void rtmp_codec_of(const char *const *tok, size_t n, struct phone_call *pc)
{
	uint8_t byte = 0xB2;

	if (!has_token(tok, n, "wideband") && !has_token(tok, n, "narrowband") &&
	    !has_token(tok, n, "ulaw") && !has_token(tok, n, "alaw")) {
		if (has_token(tok, n, "pcmu"))
			byte = 0x82;
		else if (has_token(tok, n, "pcma"))
			byte = 0x72;
	}
	media_codec_from_rtmp(&byte, 1, &pc->rtmp_codec, NULL);
	pc->format = byte >> 4;
}

/* The token accepted() reports for the chosen SIP codec. */
static const char *token_of(const struct phone_call *pc)
{
	const struct codec *c = pc->choice.codec;

	if (!c)
		return NULL;
	if (strcasecmp(c->name, "speex") == 0)
		return c->clock_rate == 16000 ? "wideband" : "narrowband";
	if (strcasecmp(c->name, "PCMU") == 0)
		return pc->format == 8 ? "pcmu" : "ulaw";
	if (strcasecmp(c->name, "PCMA") == 0)
		return pc->format == 7 ? "pcma" : "alaw";
	if (c->id == CODEC_G722)
		return "g722";
	if (c->id == CODEC_OPUS)
		return "opus";
	return c->name;
}

/* Preferences from the client's tokens; with none, the defaults (rate picks Speex's order). */
static int prefs_of(const struct sip_client *cl, const char *const *tok, size_t n,
		    struct codec_pref *out, char *why, size_t whylen)
{
	if (n == 0) {
		*out = default_prefs;
		if (cl->narrowband) {
			/* speex/8000 first when the client asked for narrowband */
			for (unsigned i = 1; i < out->n; i++)
				if (strcasecmp(out->codecs[i]->name, "speex") == 0 &&
				    out->codecs[i]->clock_rate == 8000) {
					const struct codec *c = out->codecs[i];

					memmove(&out->codecs[1], &out->codecs[0],
						i * sizeof(out->codecs[0]));
					out->codecs[0] = c;
				}
		}
		return 0;
	}
	if (sdp_prefs_from_rtmp(tok, n, out, why, whylen) < 0)
		return -EINVAL;
	if (out->n == 0) {
		snprintf(why, whylen, "no audio codec among the codecs given");
		return -EINVAL;
	}
	return 0;
}

static void prefs_to_wire(const struct codec_pref *p, struct wire_codec *out, size_t *n)
{
	*n = 0;
	for (unsigned i = 0; i < p->n && *n < WIRE_MAX_CODECS; i++) {
		struct wire_codec *w = &out[(*n)++];

		memset(w, 0, sizeof(*w));
		snprintf(w->name, sizeof(w->name), "%s", p->codecs[i]->name);
		w->rate = p->codecs[i]->clock_rate;
		w->channels = 1;
		w->pt = (uint8_t)p->codecs[i]->default_pt;
	}
}

/* An SDP as a NUL-terminated string in @b; 0 or -EINVAL/-ENOMEM. */
static int build_sdp(struct buf *b, const struct sdp_media_desc *d)
{
	int r = sdp_build(b, d, "rtmp2sip", d->sess_id, d->sess_version);

	return r < 0 ? r : buf_put_u8(b, 0);
}

/* --- the call ------------------------------------------------------------------------------- */

/* Rewrites the call's record in @state ("setup", "ringing", "up", "held"). */
static void rec_update(struct phone_call *pc, const char *state)
{
	struct call_record *r = &pc->rec;

	snprintf(r->from_uri, sizeof(r->from_uri), "%.255s", pc->from);
	snprintf(r->to_uri, sizeof(r->to_uri), "%.255s", pc->to);
	if (pc->choice.codec) {
		snprintf(r->codec, sizeof(r->codec), "%s", pc->choice.codec->name);
		r->srtp = pc->choice.srtp;
	}
	callrec_update(r, state, pc->sip, pc->leg);
}

void app_sip_call_end(struct phone_call *pc, const struct pc_end *end)
{
	struct sip_client *cl = pc->cl;
	const char *reason = end->reason ? end->reason : "";

	log_info(sid(pc), "sip: call %s %s %s ends: %s", pc->from, pc->incoming ? "<-" : "->",
		 pc->to, reason);
	if (pc->sip) {
		sip_call_set_handler(pc->sip, NULL, NULL);
		if (end->refuse >= 400 && end->refuse <= 699 && pc->incoming && !pc->was_up &&
		    (pc->state == PC_INVITED || pc->state == PC_ACCEPTING))
			sip_call_respond(pc->sip, end->refuse, end->refuse_phrase, NULL);
		else
			sip_call_hangup(pc->sip);
		pc->sip = NULL;
	}
	if (pc->referrer) {
		sip_call_set_handler(pc->referrer, NULL, NULL);
		sip_call_hangup(pc->referrer);
		pc->referrer = NULL;
	}
	evloop_timer_del(&pc->refer_timer);
	media_leg_destroy(&pc->leg);
	media_leg_destroy(&pc->vleg);
	if (pc->admitted)
		call_policy_release(pc->client_ip);
	callrec_end(&pc->rec, end->status, end->local);
	if (cl) {
		cl->call = NULL;
		switch (end->tell) {
		case PC_TELL_NONE:
			break;
		case PC_TELL_ENDED:
			if (!pc->was_up) {
				invoke(cl, "rejected", "s", reason);
				break;
			}
			/* fall through */
		case PC_TELL_BYED:
			invoke(cl, "byed", "");
			break;
		case PC_TELL_CANCELLED:
			invoke(cl, "cancelled", "ss", pc->from, pc->to);
			break;
		}
	}
	free(pc);
}

static struct phone_call *call_new(struct sip_client *cl, bool incoming)
{
	struct phone_call *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return NULL;
	pc->cl = cl;
	pc->incoming = incoming;
	cl->call = pc;
	callrec_start(&pc->rec, "sip", incoming ? "in" : "out");
	snprintf(pc->rec.rtmp_client, sizeof(pc->rec.rtmp_client), "%.63s",
		 rtmp_conn_sid(cl->conn));
	return pc;
}

/* Points the leg at what the negotiation chose. */
static void leg_apply(struct phone_call *pc, const struct sdp_choice *ch)
{
	struct media_leg_update u = {0};

	u.remote_ip = ch->remote_addr;
	u.remote_port = ch->remote_port;
	u.set_codec = true;
	u.codec_pt = ch->pt;
	u.codec_fmtp = ch->fmtp;
	if (ch->srtp) {
		u.srtp_suite = sdp_srtp_suite_name(ch->suite);
		u.srtp_remote_key = ch->remote_key;
		u.srtp_remote_key_len = SDP_SRTP_KEY_LEN;
	}
	u.set_hold = true;
	u.hold = pc->hold_local || !(ch->dir == SDP_DIR_SENDRECV || ch->dir == SDP_DIR_SENDONLY);
	if (media_leg_update(pc->leg, &u, NULL) < 0)
		log_warn(NULL, "sip app: the media leg refused the negotiated %s/%u",
			 ch->codec ? ch->codec->name : "?", ch->codec ? ch->codec->clock_rate : 0);
	call_video_apply(&pc->vleg, &ch->video, pc->hold_local, sid(pc), "sip");
}

static void call_up(struct phone_call *pc)
{
	pc->state = PC_UP;
	pc->was_up = true;
	if (pc->referrer && pc->refer_timer) {
		/* A transfer completed: the transferor should hang up the old call now; if it
		 * has not within 2 s, we do. */
		evloop_timer_start(pc->refer_timer, 2000);
	}
	log_info(sid(pc), "sip: call %s %s %s up: %s/%u%s, RTP to %s:%u", pc->from,
		 pc->incoming ? "<-" : "->", pc->to, pc->choice.codec->name,
		 pc->choice.codec->clock_rate, pc->choice.srtp ? " SRTP" : "",
		 pc->choice.remote_addr, pc->choice.remote_port);
	invoke(pc->cl, "accepted", "ss", token_of(pc), pc->vleg ? "h264" : NULL);
	rec_update(pc, "up");
}

/* --- SIP events of a call -------------------------------------------------------------------- */

static void on_progress(struct sip_call *sc, int status, const char *phrase, const char *sdp,
			void *arg)
{
	struct phone_call *pc = arg;
	char text[REASON_MAX + 1];

	if (!pc || status == 100)
		return;
	status_text(text, sizeof(text), status, phrase);
	invoke(pc->cl, "ringing", "s", text);
	rec_update(pc, "ringing");
}

static void on_answered(struct sip_call *sc, const char *sdp, void *arg)
{
	struct phone_call *pc = arg;
	struct sdp_media_desc answer;
	char why[200];

	if (!pc || pc->state != PC_CALLING)
		return; /* the ACK of our 200: accepted() went with the 200 */
	if (!sdp || sdp_parse_desc(sdp, strlen(sdp), &answer, why, sizeof(why)) < 0 ||
	    sdp_process_answer(&pc->local, &answer, &pc->choice, why, sizeof(why)) < 0) {
		if (!sdp)
			snprintf(why, sizeof(why), "the answer has no SDP");
		app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_ENDED,
						      .local = CALLREC_END_ERROR,
						      .reason = why});
		return;
	}
	leg_apply(pc, &pc->choice);
	call_up(pc);
}

static void on_failed(struct sip_call *sc, int status, const char *phrase, void *arg)
{
	struct phone_call *pc = arg;
	char text[REASON_MAX + 1];

	if (!pc)
		return;
	pc->sip = NULL;
	status_text(text, sizeof(text), status, phrase);
	app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_ENDED,
					      .status = status,
					      .local = CALLREC_END_ERROR,
					      .reason = text});
}

static void on_cancelled(struct sip_call *sc, void *arg)
{
	struct phone_call *pc = arg;

	if (!pc)
		return;
	pc->sip = NULL;
	app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_CANCELLED,
					      .local = CALLREC_END_CANCELLED,
					      .reason = "cancelled by the caller"});
}

static void on_ended(struct sip_call *sc, bool by_peer, const char *reason, void *arg)
{
	struct phone_call *pc = arg;

	if (!pc)
		return;
	pc->sip = NULL;
	app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_BYED,
					      .local = CALLREC_END_COMPLETED,
					      .reason = by_peer ? "BYE from the peer" : reason});
}

/* The peer's re-INVITE: answer it from the same leg, follow hold and media moves. */
static void on_reinvite(struct sip_call *sc, const char *sdp, void *arg)
{
	struct phone_call *pc = arg;
	const struct media_leg_info *in = pc ? media_leg_info(pc->leg) : NULL;
	struct sdp_media_desc offer, answer;
	struct sdp_local local = {0};
	struct sdp_choice ch;
	struct buf b = {0};
	char why[200];
	bool was_held;

	if (!pc || pc->state != PC_UP || !in) {
		sip_call_respond(sc, 491, NULL, NULL);
		return;
	}
	local.addr = in->local_ip;
	local.port = in->local_port;
	local.dir = pc->hold_local ? SDP_DIR_SENDONLY : SDP_DIR_SENDRECV;
	local.srtp = pc->choice.srtp ? SDP_SRTP_OPTIONAL : srtp_policy;
	local.key = in->srtp_local_key_len == SDP_SRTP_KEY_LEN ? in->srtp_local_key : NULL;
	if (!local.key && local.srtp != SDP_SRTP_OFF)
		local.srtp = SDP_SRTP_OFF;
	call_video_local(&pc->vleg, in, &local, sid(pc));
	if (sdp_parse_desc(sdp, strlen(sdp), &offer, why, sizeof(why)) < 0 ||
	    sdp_answer(&offer, &pc->prefs, &local, &answer, &ch, why, sizeof(why)) < 0) {
		log_warn(sid(pc), "sip: re-INVITE refused: %s", why);
		sip_call_respond(sc, 488, NULL, NULL);
		return;
	}
	answer.sess_id = pc->local.sess_id;
	answer.sess_version = pc->local.sess_version + 1;
	if (build_sdp(&b, &answer) < 0) {
		sip_call_respond(sc, 500, NULL, NULL);
		buf_free(&b);
		return;
	}
	sip_call_respond(sc, 200, NULL, (const char *)b.data);
	buf_free(&b);
	pc->local = answer;
	pc->choice = ch;
	was_held = pc->hold_peer;
	pc->hold_peer = ch.hold;
	leg_apply(pc, &ch);
	if (was_held != pc->hold_peer) {
		invoke(pc->cl, "holded", "b", (int)pc->hold_peer);
		rec_update(pc, pc->hold_peer || pc->hold_local ? "held" : "up");
	}
}

static void on_reinvite_result(struct sip_call *sc, int status, const char *phrase,
			       const char *sdp, void *arg)
{
	struct phone_call *pc = arg;
	struct sdp_media_desc answer;
	struct sdp_choice ch;
	char why[200];

	if (!pc || !pc->hold_asked)
		return;
	pc->hold_asked = false;
	if (status >= 200 && status < 300 && sdp &&
	    sdp_parse_desc(sdp, strlen(sdp), &answer, why, sizeof(why)) == 0 &&
	    sdp_process_answer(&pc->local, &answer, &ch, why, sizeof(why)) == 0) {
		pc->hold_local = pc->hold_want;
		pc->choice = ch;
		leg_apply(pc, &ch);
	} else {
		log_warn(sid(pc), "sip: hold(%s) refused: %d %s", pc->hold_want ? "true" : "false",
			 status, phrase ? phrase : "");
	}
	invoke(pc->cl, "holded", "b", (int)pc->hold_local);
	rec_update(pc, pc->hold_peer || pc->hold_local ? "held" : "up");
}

static void on_transfer_status(struct sip_call *sc, int status, const char *phrase, void *arg)
{
	struct phone_call *pc = arg;
	char text[REASON_MAX + 1];

	if (!pc)
		return;
	status_text(text, sizeof(text), status, phrase);
	invoke(pc->cl, "transferred", "s", text);
	/* The transfer target answered (a NOTIFY of 2xx; 202 is the REFER's own answer): as the
	 * transferor we hang up. A failure leaves the call as it was. */
	if (status >= 200 && status < 300 && status != 202)
		app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_BYED,
						      .local = CALLREC_END_COMPLETED,
						      .reason = "transferred"});
}

static void on_sip_dtmf(struct sip_call *sc, char digit, unsigned duration_ms, void *arg)
{
	struct phone_call *pc = arg;
	char d[2] = {digit, '\0'};

	if (pc)
		invoke(pc->cl, "dtmf", "s", d);
}

/* The call we are transferred from: only its end matters (the referred call carries on). */
static void referrer_gone(struct phone_call *pc)
{
	if (pc)
		pc->referrer = NULL;
}

static void referrer_failed(struct sip_call *sc, int status, const char *phrase, void *arg)
{
	referrer_gone(arg);
}

static void referrer_ended(struct sip_call *sc, bool by_peer, const char *reason, void *arg)
{
	referrer_gone(arg);
}

static void referrer_cancelled(struct sip_call *sc, void *arg)
{
	referrer_gone(arg);
}

static const struct sip_ua_callbacks referrer_cbs = {
	.failed = referrer_failed,
	.ended = referrer_ended,
	.cancelled = referrer_cancelled,
};

static void send_invite(struct phone_call *pc, const struct media_leg_info *in);

/* After the REFER's 202: the new call, from the same leg; the old one waits for its BYE. Once
 * the new call is up, the same timer ends the old one if its peer did not. */
static void refer_go(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct phone_call *pc = arg;
	const struct media_leg_info *in = media_leg_info(pc->leg);

	if (pc->refer_placed) {
		if (pc->referrer) {
			log_info(sid(pc), "sip: transfer done; the transferor did not hang up: BYE");
			sip_call_set_handler(pc->referrer, NULL, NULL);
			sip_call_hangup(pc->referrer);
			pc->referrer = NULL;
		}
		return;
	}
	pc->refer_placed = true;
	if (!pc->sip || !in) {
		app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_BYED,
						      .local = CALLREC_END_COMPLETED,
						      .reason = "transfer: the call is gone"});
		return;
	}
	pc->referrer = pc->sip;
	pc->sip = NULL;
	/* The leg keeps its codec: offer that one (and telephone-event). */
	if (pc->choice.codec) {
		pc->prefs.n = 1;
		pc->prefs.codecs[0] = pc->choice.codec;
	}
	sip_call_set_handler(pc->referrer, &referrer_cbs, pc);
	send_invite(pc, in);
}

/* The peer transfers the client's call (REFER): accept while the call is up. */
static int on_refer(struct sip_call *sc, const char *refer_to, const char *referred_by, void *arg)
{
	struct phone_call *pc = arg;

	if (!pc || pc->state != PC_UP || pc->referrer || !pc->cl)
		return 603;
	if (!pc->refer_timer)
		pc->refer_timer = evloop_timer_new(rtmp_conn_loop(pc->cl->conn), refer_go, pc);
	if (!pc->refer_timer)
		return 500;
	log_info(sid(pc), "sip: transferred by %s to %s", referred_by[0] ? referred_by : "the peer",
		 refer_to);
	snprintf(pc->to, sizeof(pc->to), "%.255s", refer_to);
	pc->refer_placed = false;
	evloop_timer_start(pc->refer_timer, 0);
	return 202;
}

static const struct sip_ua_callbacks call_cbs = {
	.refer = on_refer,
	.progress = on_progress,
	.answered = on_answered,
	.failed = on_failed,
	.cancelled = on_cancelled,
	.ended = on_ended,
	.reinvite = on_reinvite,
	.reinvite_result = on_reinvite_result,
	.transfer_status = on_transfer_status,
	.dtmf = on_sip_dtmf,
};

/* --- the leg --------------------------------------------------------------------------------- */

/* Outgoing: the offer from the leg, then the INVITE. */
static void send_invite(struct phone_call *pc, const struct media_leg_info *in)
{
	struct sdp_local local = {.addr = in->local_ip, .port = in->local_port};
	struct buf b = {0};
	char why[200];

	if (pc->want_srtp) {
		if (in->srtp_local_key_len != SDP_SRTP_KEY_LEN) {
			app_sip_call_end(
			    pc, &(struct pc_end){.tell = PC_TELL_ENDED,
						 .local = CALLREC_END_ERROR,
						 .reason = "the media worker made no SRTP key"});
			return;
		}
		local.srtp = SDP_SRTP_REQUIRED;
		local.key = in->srtp_local_key;
	}
	call_video_local(&pc->vleg, in, &local, sid(pc));
	if (sdp_make_offer(&pc->prefs, &local, &pc->local, why, sizeof(why)) < 0 ||
	    build_sdp(&b, &pc->local) < 0) {
		buf_free(&b);
		app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_ENDED,
						      .local = CALLREC_END_ERROR,
						      .reason = why});
		return;
	}
	pc->state = PC_CALLING;
	if (pc->referrer) {
		pc->sip = sip_call_invite_referred(pc->referrer, (const char *)b.data, pc);
	} else if (pc->cl->reg) {
		pc->sip =
		    sip_call_invite(app_sip_ua, pc->cl->reg, pc->to, (const char *)b.data, pc);
	} else {
		/* not registered (no password): the call is made as the client's AOR */
		char from[AOR_MAX + 8];

		snprintf(from, sizeof(from), "sip:%s", pc->cl->aor);
		pc->sip = sip_call_invite_as(app_sip_ua, from, pc->to, (const char *)b.data, pc);
	}
	buf_free(&b);
	if (!pc->sip) {
		app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_ENDED,
						      .local = CALLREC_END_ERROR,
						      .reason = "cannot send the INVITE"});
		return;
	}
	sip_call_set_handler(pc->sip, &call_cbs, pc);
	log_info(sid(pc), "sip: INVITE %s (call id %s), media %s:%u on %s%s", pc->to,
		 sip_call_callid(pc->sip), in->local_ip, in->local_port, in->worker_id,
		 pc->local.has_video ? ", H.264 video" : "");
	rec_update(pc, "setup");
}

/* Incoming: the answer that states the choice made at accept, with the leg's address, then the
 * 200. */
static void send_answer(struct phone_call *pc, const struct media_leg_info *in)
{
	struct sdp_local local = {.addr = in->local_ip, .port = in->local_port};
	struct buf b = {0};
	char why[200];

	if (pc->choice.srtp) {
		local.srtp = SDP_SRTP_REQUIRED;
		local.key = in->srtp_local_key_len == SDP_SRTP_KEY_LEN ? in->srtp_local_key : NULL;
	}
	call_video_local(&pc->vleg, in, &local, sid(pc));
	if ((pc->choice.srtp && !local.key) ||
	    sdp_answer_choice(&pc->remote, &pc->prefs, &local, &pc->choice, &pc->local, why,
			      sizeof(why)) < 0 ||
	    (pc->local.sess_id = (uint64_t)time(NULL), pc->local.sess_version = 1,
	     build_sdp(&b, &pc->local) < 0)) {
		if (pc->choice.srtp && !local.key)
			snprintf(why, sizeof(why), "the media worker made no SRTP key");
		buf_free(&b);
		app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_ENDED,
						      .refuse = 500,
						      .local = CALLREC_END_ERROR,
						      .reason = why});
		return;
	}
	if (sip_call_respond(pc->sip, 200, NULL, (const char *)b.data) < 0) {
		buf_free(&b);
		app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_ENDED,
						      .local = CALLREC_END_ERROR,
						      .reason = "cannot answer the INVITE"});
		return;
	}
	buf_free(&b);
	pc->hold_peer = pc->choice.hold;
	call_video_apply(&pc->vleg, &pc->choice.video, pc->hold_local, sid(pc), "sip");
	call_up(pc);
}

/* The INVITE or the 200 once the call's legs are ready (a video leg that failed is gone). */
static void legs_ready(struct phone_call *pc)
{
	const struct media_leg_info *in = media_leg_info(pc->leg);

	if (!in || (pc->vleg && !pc->vleg_ready))
		return;
	if (pc->state == PC_LEG)
		send_invite(pc, in);
	else if (pc->state == PC_ACCEPTING)
		send_answer(pc, in);
}

static void leg_ready(struct media_leg *leg, const struct media_leg_info *in, void *arg)
{
	(void)leg, (void)in;
	legs_ready(arg);
}

static void leg_failed(struct media_leg *leg, const char *reason, void *arg)
{
	struct phone_call *pc = arg;

	app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_ENDED,
					      .refuse = 500,
					      .local = CALLREC_END_NO_MEDIA,
					      .reason = reason});
}

/*
 * The worker died and another took the legs: tell the peer where the media is now, once no leg
 * of the call is moving (the audio and video legs of a dead worker move together: one
 * re-INVITE).
 */
static void reoffer_moved(struct phone_call *pc)
{
	struct buf b = {0};

	if (pc->state != PC_UP || !pc->sip || !call_video_moved_sdp(&pc->local, pc->leg, &pc->vleg))
		return;
	rec_update(pc, pc->rec.state);
	if (sdp_build_reoffer(&b, &pc->local, pc->hold_local, "rtmp2sip") == 0 &&
	    buf_put_u8(&b, 0) == 0)
		sip_call_reinvite(pc->sip, (const char *)b.data);
	buf_free(&b);
}

static void leg_moved(struct media_leg *leg, const char *ip, uint16_t port, void *arg)
{
	(void)leg, (void)ip, (void)port;
	reoffer_moved(arg);
}

static void leg_dtmf(struct media_leg *leg, char digit, unsigned duration_ms, void *arg)
{
	on_sip_dtmf(NULL, digit, duration_ms, arg);
}

static void leg_timeout(struct media_leg *leg, void *arg)
{
	struct phone_call *pc = arg;

	if (pc->state == PC_UP && !pc->hold_local && !pc->hold_peer)
		app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_BYED,
						      .local = CALLREC_END_COMPLETED,
						      .reason = "no RTP from the peer"});
}

static void leg_audio(struct media_leg *leg, const uint8_t *payload, size_t len, uint32_t ts,
		      void *arg)
{
	struct phone_call *pc = arg;

	if (pc->cl)
		players_send(&pc->cl->players, RTMP_MSG_AUDIO, ts, payload, (uint32_t)len);
}

/* Another worker, or the worker's answer to the SIP codec: the call record says it. */
static void leg_changed(struct media_leg *leg, void *arg)
{
	struct phone_call *pc = arg;

	if (pc->rec.state[0])
		rec_update(pc, pc->rec.state);
}

static const struct media_leg_callbacks leg_cbs = {
	.ready = leg_ready,
	.failed = leg_failed,
	.moved = leg_moved,
	.dtmf = leg_dtmf,
	.rtp_timeout = leg_timeout,
	.audio_out = leg_audio,
	.changed = leg_changed,
};

static void vleg_ready(struct media_leg *leg, const struct media_leg_info *in, void *arg)
{
	struct phone_call *pc = arg;

	(void)leg, (void)in;
	pc->vleg_ready = true;
	legs_ready(pc);
}

/* The video leg failed: the call goes on with audio (re-offered without video once up). */
static void vleg_failed(struct media_leg *leg, const char *reason, void *arg)
{
	struct phone_call *pc = arg;

	(void)leg;
	log_warn(sid(pc), "sip: video leg lost: %s", reason);
	media_leg_destroy(&pc->vleg);
	if (pc->state == PC_LEG || pc->state == PC_ACCEPTING)
		legs_ready(pc);
	else if (pc->state == PC_UP)
		reoffer_moved(pc);
}

static void vleg_video(struct media_leg *leg, const uint8_t *msg, size_t len, uint32_t ts,
		       void *arg)
{
	struct phone_call *pc = arg;

	(void)leg;
	if (pc->cl)
		players_send(&pc->cl->players, RTMP_MSG_VIDEO, ts, msg, (uint32_t)len);
}

static const struct media_leg_callbacks vleg_cbs = {
	.ready = vleg_ready,
	.failed = vleg_failed,
	.moved = leg_moved,
	.video_out = vleg_video,
};

/* The video leg beside @audio's leg (its worker, its timeline), for the "h264" token. */
static void video_start(struct phone_call *pc, const struct media_leg_params *audio)
{
	if (!pc->prefs.video || !pc->leg)
		return;
	pc->vleg_ready = false;
	pc->vleg = call_video_leg_new(app_sip_bridge, audio, pc->leg, &vleg_cbs, pc);
	if (!pc->vleg)
		log_warn(sid(pc), "sip: no video leg (%s): audio only", strerror(errno));
}

/* Creates the call's leg: @sip_codecs are what the worker may use toward SIP. */
static int leg_start(struct phone_call *pc, const struct wire_codec *sip_codecs, size_t n,
		     const struct sdp_choice *remote)
{
	struct media_leg_params lp = {0};
	char id[256];

	snprintf(id, sizeof(id), "sip/%.180s/%.60s", pc->cl->aor, rtmp_conn_sid(pc->cl->conn));
	for (char *p = id; *p; p++)
		if (*p == ' ')
			*p = '-';
	lp.call_id = id;
	lp.rtmp_codec = pc->rtmp_codec;
	lp.sip_codecs = sip_codecs;
	lp.n_sip_codecs = n;
	lp.want_srtp = pc->want_srtp;
	if (remote) {
		lp.remote_ip = remote->remote_addr;
		lp.remote_port = remote->remote_port;
		if (remote->srtp) {
			lp.srtp_suite = sdp_srtp_suite_name(remote->suite);
			lp.srtp_remote_key = remote->remote_key;
			lp.srtp_remote_key_len = SDP_SRTP_KEY_LEN;
		}
		if (remote->te_pt >= 0)
			lp.dtmf_pt = (uint8_t)remote->te_pt;
	}
	pc->leg = media_leg_new(app_sip_bridge, &lp, &leg_cbs, pc);
	if (!pc->leg)
		return -errno;
	video_start(pc, &lp);
	return 0;
}

/* --- incoming INVITEs ------------------------------------------------------------------------ */

static void on_incoming(struct sip_ua *u, struct sip_call *sc, const struct sip_call_info *info,
			void *arg)
{
	struct sip_client *cl =
	    app_sip_bridge ? app_sip_client_for(info->to, info->request_uri) : NULL;
	struct phone_call *pc;
	struct sdp_choice ch;
	char why[200];

	if (!cl) {
		log_info(info->call_id, "sip: INVITE for %s: no such RTMP client", info->request_uri);
		sip_call_respond(sc, 404, NULL, NULL);
		return;
	}
	if (cl->call) {
		struct call_record busy = {0};

		log_info(rtmp_conn_sid(cl->conn), "sip: INVITE from %s: busy", info->from);
		sip_call_respond(sc, 486, NULL, NULL);
		/* A call for the client all the same: counted, ended busy (it has no record). */
		callrec_start(&busy, "sip", "in");
		callrec_end(&busy, 486, CALLREC_END_BUSY);
		return;
	}
	pc = call_new(cl, true);
	if (!pc) {
		sip_call_respond(sc, 500, NULL, NULL);
		return;
	}
	snprintf(pc->from, sizeof(pc->from), "%s", info->from);
	snprintf(pc->to, sizeof(pc->to), "%s", info->to);
	pc->sip = sc;
	pc->state = PC_INVITED;
	sip_call_set_handler(sc, &call_cbs, pc);
	if (info->sdp) {
		/* Refuse what cannot be answered, before it rings (the gateway transcodes between
		 * the client's Speex and any codec of its table). */
		if (sdp_parse_desc(info->sdp, strlen(info->sdp), &pc->remote, why, sizeof(why)) <
			0 ||
		    sdp_choose(&pc->remote, &default_prefs, srtp_policy, &ch, why, sizeof(why)) <
			0) {
			log_info(rtmp_conn_sid(cl->conn), "sip: INVITE from %s refused: %s",
				 info->from, why);
			app_sip_call_end(pc, &(struct pc_end){.refuse = 488,
							      .status = 488,
							      .local = CALLREC_END_ERROR,
							      .reason = why});
			return;
		}
	} else {
		pc->remote.port = 0; /* offer-less INVITE: we offer in the 200 */
	}
	sip_call_respond(sc, 180, NULL, NULL);
	log_info(rtmp_conn_sid(cl->conn), "sip: INVITE from %s to %s (call id %s): ringing",
		 info->from, info->to, info->call_id);
	invoke(cl, "invited", "ss", pc->from, pc->to);
	rec_update(pc, "ringing");
}

/* --- commands -------------------------------------------------------------------------------- */

static int cmd_invite(struct sip_client *cl, double txid, const struct amf_value *args)
{
	const char *tok[MAX_TOKENS];
	const char *target;
	struct wire_codec wc[WIRE_MAX_CODECS];
	struct codec_pref prefs;
	struct phone_call *pc;
	size_t len, n, nw;
	char why[200], name[DEST_URI_MAX + 1], to[AOR_MAX + 8];

	target = amf_get_string(amf_index(args, 3), &len);
	if (!target || len == 0 || len > DEST_URI_MAX || memchr(target, '\0', len))
		return reply_error(cl, txid, "invite needs a destination URI (a string)");
	if (cl->call)
		return reply_error(cl, txid, "a call is already in progress");
	memcpy(name, target, len);
	name[len] = '\0';
	/* Bad arguments make no call: checked before the call starts (and is counted). */
	n = tokens_of(args, 4, tok, MAX_TOKENS);
	if (dest_uri(name, call_domain, to, sizeof(to), why, sizeof(why)) < 0 ||
	    prefs_of(cl, tok, n, &prefs, why, sizeof(why)) < 0)
		return reply_error(cl, txid, why);
	if (!anonymous_calls && !(cl->reg && sip_reg_registered(cl->reg))) {
		call_policy_count(CALL_POLICY_AUTH);
		log_warn(rtmp_conn_sid(cl->conn), "sip: invite %s from %s refused: not registered",
			 to, rtmp_conn_peer_ip(cl->conn));
		return reply_error(cl, txid,
				   "invite: only registered clients call out (connect with SIP "
				   "credentials; SIP_ANONYMOUS_CALLS=1 lets anyone)");
	}
	if (call_policy_admit(rtmp_conn_peer_ip(cl->conn), to, why, sizeof(why)) < 0) {
		log_warn(rtmp_conn_sid(cl->conn), "sip: invite %s from %s refused: %s", to,
			 rtmp_conn_peer_ip(cl->conn), why);
		return reply_error(cl, txid, why);
	}
	pc = call_new(cl, false);
	if (!pc) {
		call_policy_release(rtmp_conn_peer_ip(cl->conn));
		return reply_error(cl, txid, "out of memory");
	}
	pc->admitted = true;
	snprintf(pc->client_ip, sizeof(pc->client_ip), "%s", rtmp_conn_peer_ip(cl->conn));
	snprintf(pc->from, sizeof(pc->from), "sip:%s", cl->aor);
	snprintf(pc->to, sizeof(pc->to), "%s", to);
	pc->prefs = prefs;
	if (n > 0 && !has_token(tok, n, "dtmf"))
		pc->prefs.dtmf = false;
	rtmp_codec_of(tok, n, pc);
	pc->want_srtp = srtp_policy == SDP_SRTP_REQUIRED || strncmp(pc->to, "sips:", 5) == 0;
	prefs_to_wire(&pc->prefs, wc, &nw);
	pc->state = PC_LEG;
	if (leg_start(pc, wc, nw, NULL) < 0) {
		app_sip_call_end(pc, &(struct pc_end){.local = CALLREC_END_NO_MEDIA,
						      .reason = "cannot create a media leg"});
		return reply_error(cl, txid, "cannot create a media leg");
	}
	log_info(rtmp_conn_sid(cl->conn), "sip: invite %s", pc->to);
	reply_ok(cl, txid);
	return 0;
}

static int cmd_accept(struct sip_client *cl, double txid, const struct amf_value *args)
{
	struct phone_call *pc = cl->call;
	const char *tok[MAX_TOKENS];
	struct wire_codec wc;
	size_t n = tokens_of(args, 3, tok, MAX_TOKENS);
	char why[200];

	if (!pc || pc->state != PC_INVITED)
		return reply_error(cl, txid, "no incoming call to accept");
	if (prefs_of(cl, tok, n, &pc->prefs, why, sizeof(why)) < 0)
		return reply_error(cl, txid, why);
	rtmp_codec_of(tok, n, pc);
	/* The client's codecs first; the gateway's others after them (it transcodes), so an
	 * offer that rang is always answerable. */
	for (unsigned i = 0; i < default_prefs.n && pc->prefs.n < SDP_MAX_CODECS; i++) {
		bool dup = false;

		for (unsigned j = 0; j < pc->prefs.n; j++)
			dup = dup || pc->prefs.codecs[j] == default_prefs.codecs[i];
		if (!dup)
			pc->prefs.codecs[pc->prefs.n++] = default_prefs.codecs[i];
	}
	pc->prefs.dtmf = true;
	/* The choice made here with the client's codecs is the one the leg starts with and the
	 * 200 states (send_answer). */
	if (pc->remote.port == 0)
		snprintf(why, sizeof(why), "offer-less INVITEs are not supported");
	if (pc->remote.port == 0 ||
	    sdp_choose(&pc->remote, &pc->prefs, srtp_policy, &pc->choice, why, sizeof(why)) < 0) {
		app_sip_call_end(pc, &(struct pc_end){.refuse = 488,
						      .status = 488,
						      .local = CALLREC_END_ERROR,
						      .reason = why});
		return reply_error(cl, txid, why);
	}
	pc->want_srtp = pc->choice.srtp;
	sdp_choice_wire_codec(&pc->choice, &wc);
	pc->state = PC_ACCEPTING;
	if (leg_start(pc, &wc, 1, &pc->choice) < 0) {
		app_sip_call_end(pc, &(struct pc_end){.refuse = 500,
						      .local = CALLREC_END_NO_MEDIA,
						      .reason = "cannot create a media leg"});
		return reply_error(cl, txid, "cannot create a media leg");
	}
	reply_ok(cl, txid);
	return 0;
}

static int cmd_reject(struct sip_client *cl, double txid, const struct amf_value *args)
{
	struct phone_call *pc = cl->call;
	const char *reason;
	char phrase[REASON_MAX + 1] = "";
	int status = 603;
	size_t len = 0;

	if (!pc || pc->state != PC_INVITED)
		return reply_error(cl, txid, "no incoming call to reject");
	reason = amf_get_string(amf_index(args, 3), &len);
	if (reason && len > 0) {
		/* "486 Busy Here" or "486" picks the status; other text is the phrase */
		size_t i = 0;

		if (len >= 3 && isdigit((unsigned char)reason[0]) && reason[0] >= '4' &&
		    reason[0] <= '6' && isdigit((unsigned char)reason[1]) &&
		    isdigit((unsigned char)reason[2]) && (len == 3 || reason[3] == ' ')) {
			status = (reason[0] - '0') * 100 + (reason[1] - '0') * 10 + reason[2] - '0';
			i = len > 3 ? 4 : 3;
		}
		for (size_t o = 0; i < len && o + 1 < sizeof(phrase); i++)
			if ((unsigned char)reason[i] >= 0x20 && reason[i] != 0x7f)
				phrase[o++] = reason[i];
	}
	app_sip_call_end(pc, &(struct pc_end){.refuse = status,
					      .refuse_phrase = phrase[0] ? phrase : NULL,
					      .local = CALLREC_END_REJECTED_BY_CLIENT,
					      .reason = "rejected by the client"});
	reply_ok(cl, txid);
	return 0;
}

static int cmd_bye(struct sip_client *cl, double txid, const struct amf_value *args)
{
	struct phone_call *pc = cl->call;

	if (!pc)
		return reply_error(cl, txid, "no call to end");
	/* Before the answer, a bye() refuses the incoming call (603), or cancels the outgoing
	 * one. */
	app_sip_call_end(pc, &(struct pc_end){.refuse = 603,
					      .local = pc->incoming ? CALLREC_END_REJECTED_BY_CLIENT
								    : CALLREC_END_CANCELLED,
					      .reason = "ended by the client"});
	reply_ok(cl, txid);
	return 0;
}

static int cmd_dtmf(struct sip_client *cl, double txid, const struct amf_value *args)
{
	struct phone_call *pc = cl->call;
	size_t len;
	const char *d = amf_get_string(amf_index(args, 3), &len);
	int r;

	if (!d || len == 0 || len > 32)
		return reply_error(cl, txid, "sendDTMF needs a digit (a string)");
	if (!pc || pc->state != PC_UP)
		return reply_error(cl, txid, "no call in progress");
	for (size_t i = 0; i < len; i++)
		if (!strchr("0123456789*#ABCDabcd", d[i]) || d[i] == '\0')
			return reply_error(cl, txid, "sendDTMF: digits are 0-9, *, #, A-D");
	/* RFC 4733 when the peer took telephone-event, else SIP INFO. Several digits go one
	 * after the other only by INFO; RFC 4733 takes the first (the API sends one per call). */
	if (pc->choice.te_pt >= 0)
		r = media_leg_send_dtmf(pc->leg, (char)toupper((unsigned char)d[0]), 0, NULL);
	else
		r = sip_call_info_dtmf(pc->sip, (char)toupper((unsigned char)d[0]), 0);
	if (r < 0)
		return reply_error(cl, txid, "cannot send the digit now");
	reply_ok(cl, txid);
	return 0;
}

static int cmd_hold(struct sip_client *cl, double txid, const struct amf_value *args)
{
	struct phone_call *pc = cl->call;
	struct sdp_media_desc d;
	struct buf b = {0};
	bool hold;

	if (!amf_get_bool(amf_index(args, 3), &hold))
		return reply_error(cl, txid, "hold needs a boolean");
	if (!pc || pc->state != PC_UP || !pc->sip)
		return reply_error(cl, txid, "no call in progress");
	if (pc->hold_asked)
		return reply_error(cl, txid, "a hold change is already in progress");
	d = pc->local;
	if (sdp_build_reoffer(&b, &d, hold, "rtmp2sip") < 0 || buf_put_u8(&b, 0) < 0 ||
	    sip_call_reinvite(pc->sip, (const char *)b.data) < 0) {
		buf_free(&b);
		return reply_error(cl, txid, "cannot send the re-INVITE now");
	}
	buf_free(&b);
	pc->local = d;
	pc->hold_asked = true;
	pc->hold_want = hold;
	reply_ok(cl, txid);
	return 0;
}

static int cmd_transfer(struct sip_client *cl, double txid, const struct amf_value *args)
{
	struct phone_call *pc = cl->call;
	char name[DEST_URI_MAX + 1], uri[DEST_URI_MAX + 1], why[200];
	const char *target;
	size_t len;

	target = amf_get_string(amf_index(args, 3), &len);
	if (!target || len == 0 || len > DEST_URI_MAX || memchr(target, '\0', len))
		return reply_error(cl, txid, "transfer needs a destination URI (a string)");
	if (!pc || pc->state != PC_UP || !pc->sip)
		return reply_error(cl, txid, "no call in progress");
	memcpy(name, target, len);
	name[len] = '\0';
	if (dest_uri(name, call_domain, uri, sizeof(uri), why, sizeof(why)) < 0)
		return reply_error(cl, txid, why);
	if (sip_call_refer(pc->sip, uri) < 0)
		return reply_error(cl, txid, "cannot send the REFER now");
	reply_ok(cl, txid);
	return 0;
}

/* The Flash VoIP API's calls; the arguments start at index 3 (name, txid, null). */
static const struct sip_cmd {
	const char *name;
	int (*fn)(struct sip_client *cl, double txid, const struct amf_value *args);
} sip_cmds[] = {
    {"invite", cmd_invite}, {"accept", cmd_accept}, {"reject", cmd_reject},	{"bye", cmd_bye},
    {"sendDTMF", cmd_dtmf}, {"hold", cmd_hold},	    {"transfer", cmd_transfer},
};

static int sip_command(struct rtmp_conn *c, uint32_t stream_id, const char *name, double txid,
		       const struct amf_value *args)
{
	struct sip_client *cl = rtmp_conn_app_data(c);

	if (!cl)
		return -ENOENT;
	for (size_t i = 0; i < sizeof(sip_cmds) / sizeof(sip_cmds[0]); i++)
		if (strcmp(name, sip_cmds[i].name) == 0)
			return sip_cmds[i].fn(cl, txid, args);
	return -ENOENT;
}

/* --- streams --------------------------------------------------------------------------------- */

static int sip_publish(struct rtmp_conn *c, struct rtmp_stream *s, char *why, size_t whylen)
{
	struct sip_client *cl = rtmp_conn_app_data(c);

	if (!cl)
		return -EINVAL;
	if (cl->pub && cl->pub != s) {
		snprintf(why, whylen, "this connection already publishes '%s'", cl->pub->name);
		return -EBUSY;
	}
	cl->pub = s;
	s->app_data = cl;
	return 0;
}

static int sip_play(struct rtmp_conn *c, struct rtmp_stream *s, char *why, size_t whylen)
{
	struct sip_client *cl = rtmp_conn_app_data(c);

	if (!cl)
		return -EINVAL;
	if (!players_add(&cl->players, c, s, cl)) {
		snprintf(why, whylen, "Out of memory");
		return -ENOMEM;
	}
	if (cl->call && cl->call->vleg && cl->call->state == PC_UP) {
		struct media_leg_update u = {.keyframe = true}; /* its video starts at a key frame */

		media_leg_update(cl->call->vleg, &u, NULL);
	}
	return 0;
}

static void sip_media(struct rtmp_conn *c, struct rtmp_stream *s, const struct rtmp_msg *m)
{
	struct sip_client *cl = rtmp_conn_app_data(c);
	struct phone_call *pc = cl ? cl->call : NULL;
	char why[320], text[400];

	if (pc && m->type == RTMP_MSG_VIDEO && m->len >= 2) {
		if (pc->vleg && (m->data[0] & 0x8f) == RTMP_VIDEO_AVC)
			media_leg_send_video(pc->vleg, m->data, m->len, m->timestamp);
		else if (!pc->video_said && (m->data[0] & 0x8f) != RTMP_VIDEO_AVC) {
			pc->video_said = true;
			log_warn(rtmp_conn_sid(c), "sip: video codec id %u of '%s' is not carried "
				 "(H.264 only)", m->data[0] & 0x0f, s->name);
			if (!rtmp_conn_closing(c))
				rtmp_conn_send_status(c, s->id, "warning", "NetStream.Video.Unsupported",
						      "video is not carried (H.264 only); the call goes on "
						      "with audio");
		}
		return;
	}
	if (!pc || !pc->leg || m->type != RTMP_MSG_AUDIO || m->len < 2)
		return;
	/* Audio the gateway would carry wrong ends the call: another codec than the one the call
	 * was set up for (the client's tokens say which), or audio_check.h's refusals. The publish
	 * stream gets NetStream.Failed, the client rejected() or byed(). */
	if ((m->data[0] >> 4) != pc->format) {
		struct rtmp_audio ra;

		snprintf(why, sizeof(why),
			 "this stream sends %s audio, the call carries %s (pcmu or pcma among the "
			 "call's codec tokens for G.711, else Speex 16 kHz)",
			 codec_rtmp_parse(m->data, m->len, &ra, NULL) == 0 ? ra.codec->name
									  : "unknown",
			 pc->rtmp_codec.name);
	}
	if ((m->data[0] >> 4) != pc->format ||
	    audio_check_feed(&pc->check, m->data, m->len, m->timestamp, why, sizeof(why)) < 0) {
		snprintf(text, sizeof(text), "sip: %s", why);
		log_warn(rtmp_conn_sid(c), "sip: audio of '%s' refused: %s", s->name, why);
		if (!rtmp_conn_closing(c))
			rtmp_conn_send_status(c, s->id, "error", "NetStream.Failed", text);
		app_sip_call_end(pc, &(struct pc_end){.tell = PC_TELL_ENDED,
						      .local = CALLREC_END_ERROR,
						      .reason = text});
		return;
	}
	media_leg_send_audio(pc->leg, m->data, m->len, m->timestamp);
}

static void sip_stop(struct rtmp_conn *c, struct rtmp_stream *s)
{
	struct sip_client *cl = rtmp_conn_app_data(c);

	if (!cl)
		return;
	if (s->state == RTMP_STREAM_PUBLISHING && cl->pub == s) {
		cl->pub = NULL;
		s->app_data = NULL;
	} else if (s->state == RTMP_STREAM_PLAYING && s->app_data) {
		players_remove(&cl->players, s->app_data);
	}
}

static void sip_disconnect(struct rtmp_conn *c)
{
	struct sip_client *cl = rtmp_conn_app_data(c);

	if (!cl)
		return;
	rtmp_conn_set_app_data(c, NULL);
	app_sip_client_free(cl);
}

/* --- setup ----------------------------------------------------------------------------------- */

int app_sip_init(struct media *m, struct sip_ua *sip)
{
	const char *list = config_str("SIP_CODECS", "speex/16000,PCMU/8000,PCMA/8000,opus/48000,"
						    "G722/8000,speex/8000");
	struct wire_codec wc[WIRE_MAX_CODECS];
	char why[160];
	int64_t exp;
	int n, policy;

	app_sip_bridge = m;
	app_sip_ua = sip;
	if (!m)
		return 0;
	app_sip_registrar = config_str("SIP_REGISTRAR", NULL);
	call_domain = config_str("CALL_DOMAIN", NULL);
	if (config_int("SIP_REG_EXPIRES", 3600, 30, 86400, &exp) < 0 ||
	    config_bool("SIP_ANONYMOUS_CALLS", false, &anonymous_calls) < 0 ||
	    call_video_init() < 0)
		return -EINVAL;
	if (anonymous_calls)
		log_warn(NULL, "sip app: SIP_ANONYMOUS_CALLS=1: clients without a registration may "
			       "call out");
	app_sip_reg_expires = (unsigned)exp;
	if (config_enum("SIP_SRTP", SDP_SRTP_OPTIONAL, sdp_srtp_policy_names, &policy) < 0)
		return -EINVAL;
	srtp_policy = (enum sdp_srtp_policy)policy;
	n = media_codecs_parse(list, wc, WIRE_MAX_CODECS, why, sizeof(why));
	if (n < 0) {
		log_error(NULL, "config: SIP_CODECS=\"%s\": %s", list, why);
		return -EINVAL;
	}
	memset(&default_prefs, 0, sizeof(default_prefs));
	for (int i = 0; i < n && default_prefs.n < SDP_MAX_CODECS; i++) {
		const struct codec *c = codec_by_name(wc[i].name, wc[i].rate);

		if (c)
			default_prefs.codecs[default_prefs.n++] = c;
	}
	default_prefs.dtmf = true;
	return 0;
}

/* The UA-level callbacks: incoming INVITEs and registrations belong to this app. */
const struct sip_ua_callbacks app_sip_ua_callbacks = {
	.incoming = on_incoming,
	.reg_result = app_sip_reg_result,
};

const struct rtmp_app app_sip = {
	.name = "sip",
	.connect = app_sip_connect,
	.command = sip_command,
	.publish = sip_publish,
	.play = sip_play,
	.media = sip_media,
	.stop = sip_stop,
	.disconnect = sip_disconnect,
};
