/*
 * app_rtp.c - the "rtp" app: the media path without SIP, for tests and operators.
 *
 *   publish rtp/<ip>:<port>   a media leg toward RTP peer <ip>:<port> on a mediaworker, created
 *                             at the first audio message (its tag byte gives the RTMP codec);
 *                             the published audio goes to the leg
 *   play rtp/<ip>:<port>      what the leg receives from the peer (players may come first)
 *
 *   RTMP publisher --audio--> media_leg_send_audio --> worker --RTP--> peer (e.g. SIPp -rtp_echo)
 *   RTMP players  <--audio_out (rebased per player)-- worker <--RTP-- peer
 *
 * SIP codecs offered: RTP_APP_CODECS (default "PCMU/8000"). Unpublish or disconnect destroys
 * the leg; a failed leg is reported to the publisher as onStatus NetStream.Failed, and so is
 * audio the gateway would carry wrong (audio_check.h: a message above the size limit, G.711 not
 * at 8 kHz), which ends the leg too.
 *
 * The app makes a worker send RTP where an RTMP client says, with no authentication: it is off
 * unless RTP_APP=1, and then reaches only the networks of RTP_APP_DESTINATIONS (default
 * loopback, "127.0.0.0/8,::1"; "any" for everywhere).
 */
#include "app.h"

#include "audio_check.h"
#include "config.h"
#include "log.h"
#include "media.h"
#include "netacl.h"
#include "players.h"
#include "strmap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTP_BUCKETS 256
#define RTP_KEY_MAX (MEDIA_IP_MAX + 9) /* "[v6]:65535" */


struct rtp_target {
	struct stream_slot slot;
	char key[RTP_KEY_MAX + 1]; /* normalised "ip:port" / "[ip]:port" */
	char ip[MEDIA_IP_MAX + 1];
	uint16_t port;
	struct media_leg *leg;
	bool gave_up;	   /* codec refused or leg failed: ignore audio until unpublish */
	uint8_t format;	   /* FLV SoundFormat of the leg's RTMP codec */
	struct audio_check check; /* the publisher's audio: size, G.711's rate */
	uint64_t mismatch;	  /* audio of another format, dropped */
};

static struct strmap *targets; /* key -> struct rtp_target, made with the first target */
static struct media *bridge;
static bool enabled;
static struct netacl *destinations; /* where the legs may send RTP */
static struct wire_codec sip_codecs[WIRE_MAX_CODECS];
static size_t n_sip_codecs;

int app_rtp_init(struct media *m)
{
	const char *list = config_str("RTP_APP_CODECS", "PCMU/8000");
	const char *dest = config_str("RTP_APP_DESTINATIONS", "127.0.0.0/8,::1");
	char why[160], nets[256];
	int n;

	netacl_destroy(&destinations);
	if (config_bool("RTP_APP", false, &enabled) < 0)
		return -EINVAL;
	if (!m || !enabled) {
		bridge = m;
		return 0;
	}
	destinations = netacl_new();
	if (!destinations)
		return -ENOMEM;
	if (netacl_add_list(destinations, dest, why, sizeof(why)) < 0) {
		log_error(NULL, "config: RTP_APP_DESTINATIONS: %s", why);
		netacl_destroy(&destinations);
		return -EINVAL;
	}
	log_warn(NULL, "rtp app: on (RTP_APP=1): any RTMP client may make workers send RTP to %s",
		 netacl_describe(destinations, nets, sizeof(nets)));
	n = media_codecs_parse(list, sip_codecs, WIRE_MAX_CODECS, why, sizeof(why));
	if (n < 0) {
		log_error(NULL, "config: RTP_APP_CODECS=\"%s\": %s", list, why);
		return -EINVAL;
	}
	n_sip_codecs = (size_t)n;
	bridge = m;
	return 0;
}

/* Parses "<ipv4>:<port>" or "[<ipv6>]:<port>" into @t's address and key. */
static int parse_target(const char *name, char *ip, uint16_t *port, char *why, size_t whylen)
{
	unsigned char addr[16];
	const char *colon, *host = name;
	size_t hlen;
	char *end;
	unsigned long p;
	int af = AF_INET;

	if (name[0] == '[') {
		const char *close = strchr(name, ']');

		if (!close || close[1] != ':')
			goto bad;
		host = name + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
		af = AF_INET6;
	} else {
		colon = strrchr(name, ':');
		if (!colon)
			goto bad;
		hlen = (size_t)(colon - name);
	}
	if (hlen == 0 || hlen > MEDIA_IP_MAX)
		goto bad;
	memcpy(ip, host, hlen);
	ip[hlen] = '\0';
	if (inet_pton(af, ip, addr) != 1) {
		snprintf(why, whylen, "rtp: '%s' is not an IPv%d address", ip, af == AF_INET ? 4 : 6);
		return -EINVAL;
	}
	if ((af == AF_INET && (addr[0] == 0 || addr[0] >= 224)) ||
	    (af == AF_INET6 && (addr[0] == 0xff || memcmp(addr, in6addr_any.s6_addr, 16) == 0))) {
		snprintf(why, whylen, "rtp: %s is not a unicast address", ip);
		return -EINVAL;
	}
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || errno || p < 1 || p > 65535) {
		snprintf(why, whylen, "rtp: port '%.16s' is not in 1-65535", colon + 1);
		return -EINVAL;
	}
	*port = (uint16_t)p;
	return 0;
bad:
	snprintf(why, whylen, "rtp: stream name '%.64s' is not <ipv4>:<port> or [<ipv6>]:<port>",
		 name);
	return -EINVAL;
}

/* The target named by @s, created when missing; NULL with @why filled. */
static struct rtp_target *get_target(const struct rtmp_stream *s, char *why, size_t whylen)
{
	char ip[MEDIA_IP_MAX + 1], key[RTP_KEY_MAX + 1];
	struct rtp_target *t;
	uint16_t port;

	if (!enabled) {
		snprintf(why, whylen, "rtp: the rtp app is off (RTP_APP)");
		return NULL;
	}
	if (parse_target(s->name, ip, &port, why, whylen) < 0)
		return NULL;
	if (!netacl_match_str(destinations, ip)) {
		snprintf(why, whylen, "rtp: %s is not an allowed destination (RTP_APP_DESTINATIONS)",
			 ip);
		return NULL;
	}
	snprintf(key, sizeof(key), strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, port);
	t = slot_get(&targets, RTP_BUCKETS, key, sizeof(*t), true);
	if (!t) {
		snprintf(why, whylen, "rtp: out of memory");
		return NULL;
	}
	if (!t->key[0]) {
		snprintf(t->key, sizeof(t->key), "%s", key);
		snprintf(t->ip, sizeof(t->ip), "%s", ip);
		t->port = port;
	}
	return t;
}

static void release_if_unused(struct rtp_target *t)
{
	if (slot_in_use(&t->slot) || t->leg)
		return;
	slot_forget(targets, t->key, &t->slot);
	free(t);
}

/* --- the leg's callbacks ------------------------------------------------------------------ */

static void on_ready(struct media_leg *leg, const struct media_leg_info *in, void *arg)
{
	struct rtp_target *t = arg;

	log_info(rtmp_conn_sid(t->slot.publisher), "rtp/%s: leg %s on %s, RTP %s:%u -> %s, %s/%u%s",
		 t->key, media_leg_id(leg), in->worker_id, in->local_ip, in->local_port, t->key,
		 in->codec.name, in->codec.rate, in->transcoding ? " (transcoding)" : "");
}

static void on_failed(struct media_leg *leg, const char *reason, void *arg)
{
	struct rtp_target *t = arg;
	char text[320];

	(void)leg;
	log_warn(t->slot.publisher ? rtmp_conn_sid(t->slot.publisher) : NULL,
		 "rtp/%s: leg failed: %s", t->key, reason);
	snprintf(text, sizeof(text), "rtp/%s: media leg failed: %s", t->key, reason);
	slot_tell_publisher(&t->slot, "error", "NetStream.Failed", text);
	t->gave_up = true;
	media_leg_destroy(&t->leg);
}

static void on_moved(struct media_leg *leg, const char *ip, uint16_t port, void *arg)
{
	struct rtp_target *t = arg;

	log_info(t->slot.publisher ? rtmp_conn_sid(t->slot.publisher) : NULL,
		 "rtp/%s: leg %s moved to %s, RTP now from %s:%u", t->key, media_leg_id(leg),
		 media_leg_info(leg)->worker_id, ip, port);
}

static void on_dtmf(struct media_leg *leg, char digit, unsigned duration_ms, void *arg)
{
	struct rtp_target *t = arg;

	(void)leg;
	log_info(NULL, "rtp/%s: DTMF '%c' (%u ms)", t->key, digit, duration_ms);
}

static void on_rtp_timeout(struct media_leg *leg, void *arg)
{
	struct rtp_target *t = arg;

	(void)leg;
	log_info(NULL, "rtp/%s: no RTP from the peer", t->key);
}

static void on_audio_out(struct media_leg *leg, const uint8_t *payload, size_t len, uint32_t ts,
			 void *arg)
{
	struct rtp_target *t = arg;

	(void)leg;
	players_send(&t->slot.players, RTMP_MSG_AUDIO, ts, payload, (uint32_t)len);
}

static const struct media_leg_callbacks leg_cbs = {
	.ready = on_ready, .failed = on_failed, .moved = on_moved, .dtmf = on_dtmf,
	.rtp_timeout = on_rtp_timeout, .audio_out = on_audio_out,
};

/* --- the app ------------------------------------------------------------------------------ */

static int rtp_publish(struct rtmp_conn *c, struct rtmp_stream *s, char *why, size_t whylen)
{
	struct rtp_target *t;

	if (!bridge) {
		snprintf(why, whylen, "rtp: no media bridge in this signaler");
		return -ENODEV;
	}
	t = get_target(s, why, whylen);
	if (!t)
		return -EINVAL;
	if (t->slot.publisher) {
		snprintf(why, whylen, "rtp/%s is already being published", t->key);
		return -EBUSY;
	}
	t->slot.publisher = c;
	t->slot.pub_stream = s;
	t->gave_up = false;
	t->mismatch = 0;
	audio_check_init(&t->check);
	s->app_data = t;
	players_published(&t->slot.players);
	return 0;
}

static int rtp_play(struct rtmp_conn *c, struct rtmp_stream *s, char *why, size_t whylen)
{
	struct rtp_target *t = get_target(s, why, whylen);

	if (!t)
		return -EINVAL;
	if (!players_add(&t->slot.players, c, s, t)) {
		snprintf(why, whylen, "Out of memory");
		release_if_unused(t);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Checks one audio message of the publisher (audio_check.h); a refused one ends the leg: the
 * publisher is told why (onStatus NetStream.Failed), and its audio is ignored until it publishes
 * again. False when refused.
 */
static bool audio_ok(struct rtmp_conn *c, struct rtp_target *t, const struct rtmp_msg *m)
{
	char why[320], text[400];

	if (audio_check_feed(&t->check, m->data, m->len, m->timestamp, why, sizeof(why)) == 0)
		return true;
	log_warn(rtmp_conn_sid(c), "rtp/%s: publisher refused: %s", t->key, why);
	snprintf(text, sizeof(text), "rtp: %s", why);
	slot_tell_publisher(&t->slot, "error", "NetStream.Failed", text);
	t->gave_up = true;
	media_leg_destroy(&t->leg);
	return false;
}

/* The first audio message: its codec decides the leg's RTMP side. */
static void start_leg(struct rtmp_conn *c, struct rtp_target *t, const struct rtmp_msg *m)
{
	struct media_leg_params lp = {0};
	struct wire_codec rc;
	const char *why = NULL;
	char call_id[RTP_KEY_MAX + 96], text[256];

	if (media_codec_from_rtmp(m->data, m->len, &rc, &why) < 0) {
		log_warn(rtmp_conn_sid(c), "rtp/%s: publisher refused: %s", t->key, why);
		snprintf(text, sizeof(text), "rtp: %s", why);
		slot_tell_publisher(&t->slot, "error", "NetStream.Failed", text);
		t->gave_up = true;
		return;
	}
	if (!audio_ok(c, t, m))
		return;
	/* A Call-ID has no spaces: "rtp/<target>/c<n>-<client ip>:<port>". */
	snprintf(call_id, sizeof(call_id), "rtp/%s/%s", t->key, rtmp_conn_sid(c));
	for (char *p = call_id; *p; p++)
		if (*p == ' ')
			*p = '-';
	lp.call_id = call_id;
	lp.rtmp_codec = rc;
	lp.sip_codecs = sip_codecs;
	lp.n_sip_codecs = n_sip_codecs;
	lp.remote_ip = t->ip;
	lp.remote_port = t->port;
	t->format = m->data[0] >> 4;
	t->leg = media_leg_new(bridge, &lp, &leg_cbs, t);
	if (!t->leg) {
		snprintf(text, sizeof(text), "rtp: cannot create a media leg: %s", strerror(errno));
		slot_tell_publisher(&t->slot, "error", "NetStream.Failed", text);
		t->gave_up = true;
	}
}

static void rtp_media(struct rtmp_conn *c, struct rtmp_stream *s, const struct rtmp_msg *m)
{
	struct rtp_target *t = s->app_data;

	if (!t || t->gave_up || m->type != RTMP_MSG_AUDIO || m->len < 2)
		return;
	if (!t->leg) {
		start_leg(c, t, m); /* checks this first message */
		if (!t->leg)
			return;
	} else if ((m->data[0] >> 4) != t->format) {
		if (t->mismatch++ % 500 == 0)
			log_warn(rtmp_conn_sid(c), "rtp/%s: audio format %u after %u: dropped", t->key,
				 m->data[0] >> 4, t->format);
		return;
	} else if (!audio_ok(c, t, m)) {
		return;
	}
	media_leg_send_audio(t->leg, m->data, m->len, m->timestamp);
}

static void rtp_stop(struct rtmp_conn *c, struct rtmp_stream *s)
{
	if (s->state == RTMP_STREAM_PUBLISHING) {
		struct rtp_target *t = s->app_data;

		if (!t)
			return;
		media_leg_destroy(&t->leg);
		t->slot.publisher = NULL;
		t->slot.pub_stream = NULL;
		players_unpublished(&t->slot.players, "Stream is now unpublished.");
		if (!rtmp_conn_closing(c))
			rtmp_conn_send_status(c, s->id, "status", "NetStream.Unpublish.Success",
					      "Stream is now unpublished.");
		release_if_unused(t);
	} else if (s->state == RTMP_STREAM_PLAYING) {
		struct player *p = s->app_data;
		struct rtp_target *t;

		if (!p)
			return;
		t = p->owner;
		players_remove(&t->slot.players, p);
		release_if_unused(t);
	}
}

const struct rtmp_app app_rtp = {
	.name = "rtp",
	.publish = rtp_publish,
	.play = rtp_play,
	.media = rtp_media,
	.stop = rtp_stop,
};
