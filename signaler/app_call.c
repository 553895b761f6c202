/*
 * app_call.c - the "call" app: URL dialing for stock RTMP tools (ffmpeg, OBS, GStreamer).
 *
 *   publish call/<destination>  places a SIP call to <destination> once the first audio message
 *                               gives the RTMP codec: media leg on a worker, SDP offer from the
 *                               leg's address, INVITE; the answer points the leg at the peer
 *   play call/<destination>     the far end's audio (players may come first)
 *   unpublish / disconnect      hangs up (CANCEL before the answer, BYE after)
 *
 *   <destination>: a SIP URI (sip:user@host[:port]), user@host[:port], or a number routed to
 *   CALL_DOMAIN (sip:<number>@<CALL_DOMAIN>).
 *
 *   publisher audio --> media leg (worker) --RTP--> SIP peer --RTP--> worker --> players
 *
 * Call states: idle --first audio--> leg --ready--> inviting --2xx--> up --BYE/unpublish--> over
 *                                        \--failed / 4xx-6xx------------------------------/
 */
#include "app.h"

#include "buf.h"
#include "config.h"
#include "log.h"
#include "media.h"
#include "players.h"
#include "sdp.h"
#include "sip_ua.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL_BUCKETS 256
#define CALL_URI_MAX 255

enum call_state { CALL_IDLE, CALL_LEG, CALL_INVITING, CALL_UP, CALL_OVER };


struct call {
	char name[RTMP_NAME_MAX]; /* the stream name */
	char uri[CALL_URI_MAX + 1];
	enum call_state state;
	struct rtmp_conn *publisher;
	struct rtmp_stream *pub_stream;
	struct media_leg *leg;
	struct sip_call *sip;
	struct sdp_media_desc offer;
	uint8_t format; /* FLV SoundFormat of the leg's RTMP codec */
	struct player_list players;
	struct call *next;
};

static struct call *calls[CALL_BUCKETS];
static struct media *bridge;
static struct sip_ua *ua;
static const char *call_domain;
static struct codec_pref prefs;
static struct wire_codec sip_codecs[WIRE_MAX_CODECS];
static size_t n_sip_codecs;

int app_call_init(struct media *m, struct sip_ua *sip)
{
	const char *list = config_str("CALL_CODECS", "PCMU/8000,PCMA/8000,speex/16000");
	char why[160];
	int n;

	bridge = m;
	ua = sip;
	if (!m)
		return 0;
	call_domain = config_str("CALL_DOMAIN", NULL);
	n = media_codecs_parse(list, sip_codecs, WIRE_MAX_CODECS, why, sizeof(why));
	if (n < 0) {
		log_error(NULL, "config: CALL_CODECS=\"%s\": %s", list, why);
		return -EINVAL;
	}
	n_sip_codecs = (size_t)n;
	memset(&prefs, 0, sizeof(prefs));
	for (size_t i = 0; i < n_sip_codecs && prefs.n < SDP_MAX_CODECS; i++) {
		const struct codec *c = codec_by_name(sip_codecs[i].name, sip_codecs[i].rate);

		if (c)
			prefs.codecs[prefs.n++] = c;
	}
	prefs.dtmf = true;
	return 0;
}

/* The SIP URI for stream name @name; -EINVAL with @why for names that are not one. */
static int destination(const char *name, char *uri, size_t len, char *why, size_t whylen)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789@.:_+-;=*#%!~";
	bool digits = true;

	if (strspn(name, allowed) != strlen(name) || strlen(name) > 200) {
		snprintf(why, whylen, "call: '%.64s' is not a SIP destination", name);
		return -EINVAL;
	}
	for (const char *p = name; *p; p++)
		if (!strchr("0123456789+*#", *p))
			digits = false;
	if (strncmp(name, "sip:", 4) == 0 || strncmp(name, "sips:", 5) == 0) {
		if (!strchr(name, '@') && !strchr(name + 4, '.') && !strchr(name + 4, ':'))
			goto bad;
		snprintf(uri, len, "%s", name);
	} else if (strchr(name, '@')) {
		snprintf(uri, len, "sip:%.200s", name);
	} else if (digits && call_domain) {
		snprintf(uri, len, "sip:%.64s@%.128s", name, call_domain);
	} else {
		goto bad;
	}
	if (strchr(uri, '@') && (strchr(uri, '@')[1] == '\0' || strchr(uri, '@') == uri + 4))
		goto bad;
	return 0;
bad:
	snprintf(why, whylen, "call: '%.64s' is neither a SIP URI, user@host, nor a number%s", name,
		 call_domain ? "" : " (no CALL_DOMAIN set for numbers)");
	return -EINVAL;
}

static struct call **find_slot(const char *name)
{
	uint32_t h = 2166136261u;
	struct call **pp;

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	pp = &calls[h % CALL_BUCKETS];
	while (*pp && strcmp((*pp)->name, name) != 0)
		pp = &(*pp)->next;
	return pp;
}

static struct call *get_call(const struct rtmp_stream *s, char *why, size_t whylen)
{
	char uri[CALL_URI_MAX + 1];
	struct call **pp;

	if (!bridge || !ua) {
		snprintf(why, whylen, "call: no SIP or media in this signaler");
		return NULL;
	}
	if (destination(s->name, uri, sizeof(uri), why, whylen) < 0)
		return NULL;
	pp = find_slot(s->name);
	if (!*pp) {
		*pp = calloc(1, sizeof(**pp));
		if (!*pp) {
			snprintf(why, whylen, "call: out of memory");
			return NULL;
		}
		snprintf((*pp)->name, sizeof((*pp)->name), "%s", s->name);
		snprintf((*pp)->uri, sizeof((*pp)->uri), "%s", uri);
	}
	return *pp;
}

static void release_if_unused(struct call *c)
{
	struct call **pp;

	if (c->publisher || c->players.head || c->leg || c->sip)
		return;
	pp = find_slot(c->name);
	if (*pp == c)
		*pp = c->next;
	free(c);
}

static void tell_publisher(struct call *c, const char *level, const char *code, const char *text)
{
	if (c->publisher && !rtmp_conn_closing(c->publisher))
		rtmp_conn_send_status(c->publisher, c->pub_stream->id, level, code, text);
}

/* Ends the call's SIP side and leg; the call stays until its publisher and players are gone. */
static void call_over(struct call *c, const char *why)
{
	if (c->state == CALL_OVER)
		return;
	log_info(c->publisher ? rtmp_conn_sid(c->publisher) : NULL, "call %s over: %s", c->uri, why);
	c->state = CALL_OVER;
	if (c->sip) {
		sip_call_set_arg(c->sip, NULL);
		sip_call_hangup(c->sip);
		c->sip = NULL;
	}
	media_leg_destroy(&c->leg);
	players_unpublished(&c->players, why);
}

/* --- SIP ------------------------------------------------------------------------------------ */

static const struct sip_ua_callbacks call_sip_cbs;

static void sip_progress(struct sip_call *sc, int status, const char *phrase, const char *sdp,
			 void *arg)
{
	struct call *c = arg;
	char text[160];

	if (!c)
		return;
	snprintf(text, sizeof(text), "%d %s", status, phrase ? phrase : "");
	log_info(c->publisher ? rtmp_conn_sid(c->publisher) : NULL, "call %s: %s", c->uri, text);
	tell_publisher(c, "status", "NetConnection.Call.Ringing", text);
}

static void sip_answered(struct sip_call *sc, const char *sdp, void *arg)
{
	struct call *c = arg;
	struct sdp_media_desc answer;
	struct sdp_choice ch;
	struct media_leg_update u = {0};
	char why[200];

	if (!c)
		return;
	if (!sdp || sdp_parse_desc(sdp, strlen(sdp), &answer, why, sizeof(why)) < 0 ||
	    sdp_process_answer(&c->offer, &answer, &ch, why, sizeof(why)) < 0) {
		if (!sdp)
			snprintf(why, sizeof(why), "answer without SDP");
		tell_publisher(c, "error", "NetConnection.Call.Failed", why);
		call_over(c, why);
		return;
	}
	u.remote_ip = ch.remote_addr;
	u.remote_port = ch.remote_port;
	u.set_codec = true;
	u.codec_pt = ch.pt;
	if (ch.srtp) {
		u.srtp_suite = sdp_srtp_suite_name(ch.suite);
		u.srtp_remote_key = ch.remote_key;
		u.srtp_remote_key_len = SDP_SRTP_KEY_LEN;
	}
	media_leg_update(c->leg, &u, NULL);
	c->state = CALL_UP;
	log_info(c->publisher ? rtmp_conn_sid(c->publisher) : NULL, "call %s answered: %s/%u to %s:%u",
		 c->uri, ch.codec->name, ch.codec->clock_rate, ch.remote_addr, ch.remote_port);
	tell_publisher(c, "status", "NetConnection.Call.Accepted", ch.codec->name);
}

static void sip_failed(struct sip_call *sc, int status, const char *phrase, void *arg)
{
	struct call *c = arg;
	char text[400];

	if (!c)
		return;
	c->sip = NULL;
	snprintf(text, sizeof(text), "call %.200s failed: %d %.100s", c->uri, status,
		 phrase ? phrase : "");
	tell_publisher(c, "error", "NetConnection.Call.Failed", text);
	call_over(c, text);
}

static void sip_ended(struct sip_call *sc, bool by_peer, const char *reason, void *arg)
{
	struct call *c = arg;
	char text[400];

	if (!c)
		return;
	c->sip = NULL;
	snprintf(text, sizeof(text), "call %.200s ended%s: %.100s", c->uri,
		 by_peer ? " by the peer" : "", reason ? reason : "");
	tell_publisher(c, "status", "NetConnection.Call.Ended", text);
	call_over(c, text);
}

/* --- the leg -------------------------------------------------------------------------------- */

static void leg_ready(struct media_leg *leg, const struct media_leg_info *in, void *arg)
{
	struct call *c = arg;
	struct sdp_local local = {.addr = in->local_ip, .port = in->local_port};
	struct buf sdp = {0};
	char why[200];

	if (c->state != CALL_LEG)
		return;
	if (sdp_make_offer(&prefs, &local, &c->offer, why, sizeof(why)) < 0 ||
	    sdp_build(&sdp, &c->offer, "rtmp2sip", c->offer.sess_id, c->offer.sess_version) < 0 ||
	    buf_put_u8(&sdp, 0) < 0) {
		tell_publisher(c, "error", "NetConnection.Call.Failed", why);
		call_over(c, why);
		buf_free(&sdp);
		return;
	}
	c->state = CALL_INVITING;
	c->sip = sip_call_invite(ua, NULL, c->uri, (const char *)sdp.data, c);
	buf_free(&sdp);
	if (c->sip)
		sip_call_set_handler(c->sip, &call_sip_cbs, c);
	if (!c->sip) {
		tell_publisher(c, "error", "NetConnection.Call.Failed", "cannot send the INVITE");
		call_over(c, "cannot send the INVITE");
		return;
	}
	log_info(c->publisher ? rtmp_conn_sid(c->publisher) : NULL,
		 "call %s: INVITE sent (call id %s), media %s:%u on %s", c->uri,
		 sip_call_callid(c->sip), in->local_ip, in->local_port, in->worker_id);
}

static void leg_failed(struct media_leg *leg, const char *reason, void *arg)
{
	struct call *c = arg;

	tell_publisher(c, "error", "NetConnection.Call.Failed", reason);
	call_over(c, reason);
}

static void leg_moved(struct media_leg *leg, const char *ip, uint16_t port, void *arg)
{
	struct call *c = arg;
	struct buf sdp = {0};

	/* The worker died and another took the leg: tell the peer where the media is now. */
	if (c->state != CALL_UP || !c->sip)
		return;
	snprintf(c->offer.addr, sizeof(c->offer.addr), "%s", ip);
	c->offer.port = port;
	if (sdp_build_reoffer(&sdp, &c->offer, false, "rtmp2sip") == 0 && buf_put_u8(&sdp, 0) == 0)
		sip_call_reinvite(c->sip, (const char *)sdp.data);
	buf_free(&sdp);
}

static void leg_audio(struct media_leg *leg, const uint8_t *payload, size_t len, uint32_t ts,
		      void *arg)
{
	struct call *c = arg;

	players_send(&c->players, RTMP_MSG_AUDIO, ts, payload, (uint32_t)len);
}

static const struct media_leg_callbacks leg_cbs = {
	.ready = leg_ready, .failed = leg_failed, .moved = leg_moved, .audio_out = leg_audio,
};

/* --- the app -------------------------------------------------------------------------------- */

static int call_publish(struct rtmp_conn *conn, struct rtmp_stream *s, char *why, size_t whylen)
{
	struct call *c = get_call(s, why, whylen);

	if (!c)
		return -EINVAL;
	if (c->publisher || c->state != CALL_IDLE) {
		snprintf(why, whylen, "call/%s is already in progress", s->name);
		return -EBUSY;
	}
	c->publisher = conn;
	c->pub_stream = s;
	s->app_data = c;
	log_info(rtmp_conn_sid(conn), "call to %s: waiting for the first audio message", c->uri);
	return 0;
}

static int call_play(struct rtmp_conn *conn, struct rtmp_stream *s, char *why, size_t whylen)
{
	struct call *c = get_call(s, why, whylen);

	if (!c)
		return -EINVAL;
	if (!players_add(&c->players, conn, s, c)) {
		snprintf(why, whylen, "Out of memory");
		release_if_unused(c);
		return -ENOMEM;
	}
	return 0;
}

static void start_call(struct rtmp_conn *conn, struct call *c, uint8_t tag)
{
	struct media_leg_params lp = {0};
	struct wire_codec rc;
	const char *why = NULL;
	char call_id[RTMP_NAME_MAX + 96];

	if (media_codec_from_rtmp(tag, &rc, &why) < 0) {
		char text[200];

		snprintf(text, sizeof(text), "call: %s", why);
		tell_publisher(c, "error", "NetConnection.Call.Failed", text);
		call_over(c, text);
		return;
	}
	snprintf(call_id, sizeof(call_id), "call/%s/%s", c->name, rtmp_conn_sid(conn));
	for (char *p = call_id; *p; p++)
		if (*p == ' ')
			*p = '-';
	lp.call_id = call_id;
	lp.rtmp_codec = rc;
	lp.sip_codecs = sip_codecs;
	lp.n_sip_codecs = n_sip_codecs;
	c->format = tag >> 4;
	c->state = CALL_LEG;
	c->leg = media_leg_new(bridge, &lp, &leg_cbs, c);
	if (!c->leg) {
		tell_publisher(c, "error", "NetConnection.Call.Failed", "cannot create a media leg");
		call_over(c, "cannot create a media leg");
	}
}

static void call_media(struct rtmp_conn *conn, struct rtmp_stream *s, const struct rtmp_msg *m)
{
	struct call *c = s->app_data;

	if (!c || m->type != RTMP_MSG_AUDIO || m->len < 2 || c->state == CALL_OVER)
		return;
	if (c->state == CALL_IDLE)
		start_call(conn, c, m->data[0]);
	if (!c->leg || (m->data[0] >> 4) != c->format)
		return;
	media_leg_send_audio(c->leg, m->data, m->len, m->timestamp);
}

static void call_stop(struct rtmp_conn *conn, struct rtmp_stream *s)
{
	if (s->state == RTMP_STREAM_PUBLISHING) {
		struct call *c = s->app_data;

		if (!c)
			return;
		call_over(c, "the publisher stopped");
		c->publisher = NULL;
		c->pub_stream = NULL;
		c->state = CALL_IDLE;
		if (!rtmp_conn_closing(conn))
			rtmp_conn_send_status(conn, s->id, "status", "NetStream.Unpublish.Success",
					      "Call ended.");
		release_if_unused(c);
	} else if (s->state == RTMP_STREAM_PLAYING) {
		struct player *p = s->app_data;
		struct call *c;

		if (!p)
			return;
		c = p->owner;
		players_remove(&c->players, p);
		release_if_unused(c);
	}
}

/* SIP events of the app's calls (each call's handler, see sip_call_set_handler). */
static const struct sip_ua_callbacks call_sip_cbs = {
	.progress = sip_progress,
	.answered = sip_answered,
	.failed = sip_failed,
	.ended = sip_ended,
};

const struct rtmp_app app_call = {
	.name = "call",
	.publish = call_publish,
	.play = call_play,
	.media = call_media,
	.stop = call_stop,
};
