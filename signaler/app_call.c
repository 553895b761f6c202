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
 *   A "?query" after the destination carries parameters (percent-encoded, each value at most
 *   CALL_PARAM_MAX bytes once decoded, no control characters):
 *     expires, token  the signed token, required for publish and play when CALL_TOKEN_SECRET is
 *                     set: token = hex(HMAC-SHA256(secret, "<destination>:<expires>")), expires
 *                     in Unix seconds, in the future and at most CALL_TOKEN_MAX_AGE ahead
 *     user, pass      SIP digest credentials answering the INVITE's 401/407 (publisher only)
 *   The app cuts the query off the stream name (and wipes it) before the name is used, logged
 *   or echoed; this needs an RTMP core that hands publish and play names over with their query.
 *
 *   Who may call (CALL_AUTH; no default: the app refuses every stream until one is chosen):
 *     token  the signed token above (CALL_TOKEN_SECRET; also the choice when only the secret is
 *            set)
 *     sip    the publisher's ?user=&pass= answer the SIP side's challenge; a player must give
 *            the same credentials as whoever holds call/<destination> first (publisher or
 *            player), or it could listen in on another's call
 *     none   anyone (an explicit opt-out: loopback, tests, a network in front that filters)
 *   Every publish is then admitted by call_policy.h (destinations, attempts, calls up).
 *
 *   SRTP (CALL_SRTP, forced to required by a sips: destination): required makes the worker
 *   generate a key, offers RTP/SAVP with one a=crypto line and hands the answer's key to the leg;
 *   off and optional offer plain RTP/AVP.
 *
 *   publisher audio --> media leg (worker) --RTP--> SIP peer --RTP--> worker --> players
 *   publisher video --> video leg (same worker) --RTP--> SIP peer --RTP--> worker --> players
 *
 *   Video (CALL_VIDEO, on by default): a publisher whose onMetaData or first messages say H.264
 *   gets a video leg beside its audio leg, and the INVITE offers H.264 with the publisher's
 *   profile (from its sequence header). A callee without video, or one that declines it, leaves
 *   an audio call. Video of another codec (Sorenson H.263, VP6...) is refused with an onStatus
 *   warning (NetStream.Video.Unsupported) while the audio goes on. Players get the far end's
 *   video from its next key frame (asked for with RTCP PLI when they join).
 *
 * Call states: idle --first audio--> leg --ready--> inviting --2xx--> up --BYE/unpublish--> over
 *                                        \--failed / 4xx-6xx / audio refused------------/
 *
 *   Audio the gateway would carry wrong ends the call with NetConnection.Call.Failed naming what
 *   was found (audio_check.h): a codec not carried, stereo, a message above the size limit
 *   (G.711 is cut instead), G.711 whose timestamps say it is not 8 kHz.
 */
#include "app.h"

#include "audio_check.h"
#include "buf.h"
#include "call_policy.h"
#include "call_video.h"
#include "callrec.h"
#include "config.h"
#include "dest.h"
#include "h264.h"
#include "log.h"
#include "media.h"
#include "players.h"
#include "sdp.h"
#include "sip_ua.h"
#include "strmap.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CALL_BUCKETS	  256
#define CALL_URI_MAX	  255
#define CALL_PARAM_MAX	  128	/* bytes of one decoded query value */
#define CALL_TOKEN_LEN	  32	/* HMAC-SHA256 */
#define CALL_SECRET_MIN	  16	/* shorter token secrets are accepted with a warning */
#define CALL_SECRET_MAX	  1024	/* CALL_TOKEN_SECRET_FILE: bytes of the secret at most */
#define CALL_MAX_AGE_MAX  (10 * 366 * 86400)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum call_state { CALL_IDLE, CALL_LEG, CALL_INVITING, CALL_UP, CALL_OVER };

struct call {
	struct stream_slot slot;
	char name[RTMP_NAME_MAX]; /* the destination as given (the stream name without its query) */
	char uri[CALL_URI_MAX + 1];
	enum call_state state;
	char over_why[200]; /* why it ended, once CALL_OVER: told to players that come later */
	bool failed;	    /* the last call of the name failed (not a hang-up, not cancelled) */
	enum sdp_srtp_policy srtp; /* of this call's offer */
	struct media_leg *leg;
	struct media_leg *vleg; /* the video leg, while the call carries (or offers) video */
	bool vleg_ready;
	bool video_said;	/* the publisher was told its video is not carried */
	unsigned meta_video;	/* FLV CodecID its onMetaData names, 0: none said */
	struct buf vseq;	/* the publisher's last AVC sequence header */
	struct sip_call *sip;
	struct sdp_media_desc offer;
	uint8_t format; /* FLV SoundFormat of the leg's RTMP codec */
	const struct codec *pub_codec; /* the leg's RTMP codec: offered first when SIP can carry it */
	struct wire_codec audio_out;   /* ?audio=: the players' codec; name "": the publisher's */
	unsigned meta_rate, meta_channels; /* the publisher's onMetaData: its audio; 0: not said */
	struct audio_check check; /* the publisher's audio: size, G.711's rate */
	char auth_user[CALL_PARAM_MAX + 1]; /* the publisher's SIP credentials; "" when none */
	char password[CALL_PARAM_MAX + 1];  /* wiped once the INVITE carries them */
	bool owned;			    /* CALL_AUTH=sip: owner_mac names the credentials */
	uint8_t owner_mac[CALL_TOKEN_LEN];  /* HMAC(per-process key, user:pass) of the first */
	bool admitted;			    /* counted by call_policy until the call is over */
	char client_ip[64];		    /* the publisher's address, for call_policy */
	struct call_record rec; /* its record in Redis */
};

/* The parameters of a stream name's query, decoded; "" when absent. */
struct call_params {
	char expires[CALL_PARAM_MAX + 1];
	char token[CALL_PARAM_MAX + 1];
	char user[CALL_PARAM_MAX + 1];
	char pass[CALL_PARAM_MAX + 1];
	char audio[CALL_PARAM_MAX + 1]; /* the codec the players get, when not the publisher's */
};

/* The query keys the app knows; others are ignored. */
static const struct {
	const char *key;
	size_t offset;
} param_keys[] = {
	{.key = "expires", .offset = offsetof(struct call_params, expires)},
	{.key = "token", .offset = offsetof(struct call_params, token)},
	{.key = "user", .offset = offsetof(struct call_params, user)},
	{.key = "pass", .offset = offsetof(struct call_params, pass)},
	{.key = "audio", .offset = offsetof(struct call_params, audio)},
};

/* The codecs a call's players may ask for with ?audio=, by the name they give. */
static const struct {
	const char *token;
	enum codec_id id;
} audio_tokens[] = {
    {"aac", CODEC_AAC},	  {"mp3", CODEC_MP3},	{"nellymoser", CODEC_NELLYMOSER},
    {"speex", CODEC_SPEEX_WB}, {"pcmu", CODEC_PCMU}, {"pcma", CODEC_PCMA},
    {"opus", CODEC_OPUS},
};

/* The players' codec of ?audio=@name into @out; "" leaves the publisher's. 0 or -EINVAL. */
static int audio_out_codec(const char *name, struct wire_codec *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	if (!name[0])
		return 0;
	for (size_t i = 0; i < sizeof(audio_tokens) / sizeof(audio_tokens[0]); i++) {
		const struct codec *c = codec_by_id(audio_tokens[i].id);

		if (strcasecmp(name, audio_tokens[i].token) != 0)
			continue;
		snprintf(out->name, sizeof(out->name), "%s", c->name);
		out->rate = c->clock_rate ? c->clock_rate : 44100;
		out->channels = 1;
		out->pt = c->default_pt >= 0 ? (uint8_t)c->default_pt : 0;
		return 0;
	}
	snprintf(why, whylen,
		 "call: audio=%.40s is not a codec players can get (aac, mp3, nellymoser, speex, "
		 "pcmu, pcma, opus)",
		 name);
	return -EINVAL;
}

static struct strmap *calls; /* name -> struct call, made with the first call */

/*
 * Calls that failed and are gone (publisher and players left), remembered for FAILED_MEMORY_S:
 * a player that comes for one then is told why at once (StreamNotFound with the reason) instead
 * of waiting for a publisher that will not come. A new publish of the name forgets it. Bounded:
 * FAILED_MEMORY entries, the oldest overwritten.
 */
#define FAILED_MEMORY	16
#define FAILED_MEMORY_S 10
static struct {
	char name[RTMP_NAME_MAX];
	char why[200];
	time_t at;
} failed_calls[FAILED_MEMORY];
static unsigned failed_next;

static void failed_forget(const char *name)
{
	for (unsigned i = 0; i < FAILED_MEMORY; i++)
		if (failed_calls[i].at && strcmp(failed_calls[i].name, name) == 0)
			failed_calls[i].at = 0;
}

/* The reason call/@name failed within FAILED_MEMORY_S, or NULL. */
static const char *failed_recently(const char *name)
{
	time_t now = time(NULL);

	for (unsigned i = 0; i < FAILED_MEMORY; i++)
		if (failed_calls[i].at && now - failed_calls[i].at <= FAILED_MEMORY_S &&
		    strcmp(failed_calls[i].name, name) == 0)
			return failed_calls[i].why;
	return NULL;
}
static struct media *bridge;
static struct sip_ua *ua;
static const char *call_domain;
static struct codec_pref prefs;
static bool video_enabled; /* CALL_VIDEO */
#define CALL_VSEQ_MAX 4096 /* an AVC sequence header kept: SPS and PPS */
static struct wire_codec sip_codecs[WIRE_MAX_CODECS];
static size_t n_sip_codecs;
static enum sdp_srtp_policy srtp_policy;
static const char *token_secret; /* NULL: no token needed */
static uint64_t token_max_age;

/* CALL_AUTH's choices, in the order of auth_names; AUTH_UNSET when none is made. */
enum call_auth { AUTH_TOKEN, AUTH_SIP, AUTH_NONE, AUTH_UNSET = -1 };
static const char *const auth_names[] = {"token", "sip", "none", NULL};
static enum call_auth auth_mode;
static uint8_t owner_key[32]; /* keys the credential MACs of CALL_AUTH=sip (never stored) */

/* CALL_AUTH, or "token" when only CALL_TOKEN_SECRET is set. 0 or -EINVAL (logged). */
static int read_auth_config(void)
{
	int mode;

	if (config_enum("CALL_AUTH", AUTH_UNSET, auth_names, &mode) < 0)
		return -EINVAL;
	auth_mode = (enum call_auth)mode;
	if (auth_mode == AUTH_UNSET) {
		if (token_secret)
			auth_mode = AUTH_TOKEN;
		else
			log_error(NULL, "call app: no caller authentication chosen: every call is "
					"refused until CALL_AUTH is set (token with CALL_TOKEN_SECRET, "
					"sip, or none to let anyone call)");
		return 0;
	}
	if (auth_mode == AUTH_TOKEN && !token_secret) {
		log_error(NULL, "config: CALL_AUTH=token needs CALL_TOKEN_SECRET");
		return -EINVAL;
	}
	if (auth_mode != AUTH_TOKEN && token_secret)
		log_warn(NULL, "config: CALL_AUTH=%s: CALL_TOKEN_SECRET is ignored",
			 auth_names[auth_mode]);
	if (auth_mode != AUTH_TOKEN)
		token_secret = NULL;
	if (auth_mode == AUTH_SIP && RAND_bytes(owner_key, sizeof(owner_key)) != 1) {
		log_error(NULL, "call app: no random bytes for CALL_AUTH=sip");
		return -EIO;
	}
	if (auth_mode == AUTH_NONE)
		log_warn(NULL, "call app: CALL_AUTH=none: any RTMP client may place calls and "
			       "listen to them");
	return 0;
}

static int read_security_config(void)
{
	int64_t age;
	int policy;

	if (config_enum("CALL_SRTP", SDP_SRTP_OFF, sdp_srtp_policy_names, &policy) < 0)
		return -EINVAL;
	srtp_policy = (enum sdp_srtp_policy)policy;
	if (config_int("CALL_TOKEN_MAX_AGE", 86400, 1, CALL_MAX_AGE_MAX, &age) < 0)
		return -EINVAL;
	token_max_age = (uint64_t)age;
	token_secret = config_str("CALL_TOKEN_SECRET", NULL);
	if (!token_secret && config_str("CALL_TOKEN_SECRET_FILE", NULL)) {
		static char from_file[CALL_SECRET_MAX + 1];
		char why[300];

		if (config_secret_file(config_str("CALL_TOKEN_SECRET_FILE", NULL), from_file,
				       sizeof(from_file), why, sizeof(why)) < 0) {
			log_error(NULL, "config: CALL_TOKEN_SECRET_FILE: %s", why);
			return -EINVAL;
		}
		token_secret = from_file;
	}
	if (token_secret && strlen(token_secret) < CALL_SECRET_MIN)
		log_warn(NULL, "config: CALL_TOKEN_SECRET is shorter than %d bytes: weak tokens",
			 CALL_SECRET_MIN);
	if (read_auth_config() < 0)
		return -EINVAL;
	log_info(NULL, "call app: SRTP %s, callers authenticated by %s",
		 sdp_srtp_policy_names[srtp_policy],
		 auth_mode == AUTH_TOKEN ? "signed tokens"
		 : auth_mode == AUTH_SIP ? "their SIP credentials"
		 : auth_mode == AUTH_NONE ? "nothing (CALL_AUTH=none)"
					  : "nothing chosen: calls refused");
	return 0;
}

int app_call_init(struct media *m, struct sip_ua *sip)
{
	const char *list =
	    config_str("CALL_CODECS", "opus/48000,G722/8000,PCMU/8000,PCMA/8000,speex/16000");
	char why[160];
	int n;

	bridge = m;
	ua = sip;
	if (!m)
		return 0;
	call_domain = config_str("CALL_DOMAIN", NULL);
	if (read_security_config() < 0)
		return -EINVAL;
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
	if (config_bool("CALL_VIDEO", true, &video_enabled) < 0) {
		log_error(NULL, "config: CALL_VIDEO must be a boolean");
		return -EINVAL;
	}
	if (call_video_init() < 0)
		return -EINVAL;
	return 0;
}

/* --- the stream name's query ------------------------------------------------------------------ */

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decodes @len bytes of @s into @out (NUL-terminated); -EINVAL for a bad escape, a
 * control character or more than CALL_PARAM_MAX bytes. */
static int unescape(const char *s, size_t len, char out[CALL_PARAM_MAX + 1])
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int ch = (unsigned char)s[i];

		if (ch == '%') {
			int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
			int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				return -EINVAL;
			ch = hi << 4 | lo;
			i += 2;
		}
		if (ch < 0x20 || ch == 0x7f || n == CALL_PARAM_MAX)
			return -EINVAL;
		out[n++] = (char)ch;
	}
	out[n] = '\0';
	return 0;
}

/* Reads "k=v&k=v" into @p (zeroed first). Unknown keys are ignored; a known key given twice or
 * a malformed value is -EINVAL with @why, which never quotes a value. */
static int parse_query(const char *q, struct call_params *p, char *why, size_t whylen)
{
	memset(p, 0, sizeof(*p));
	while (*q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		size_t i;

		for (i = 0; i < ARRAY_LEN(param_keys); i++)
			if (strlen(param_keys[i].key) == klen &&
			    memcmp(param_keys[i].key, q, klen) == 0)
				break;
		if (i < ARRAY_LEN(param_keys)) {
			char *dst = (char *)p + param_keys[i].offset;

			if (dst[0]) {
				snprintf(why, whylen, "call: parameter '%s' given twice",
					 param_keys[i].key);
				return -EINVAL;
			}
			if (eq && unescape(eq + 1, len - klen - 1, dst) < 0) {
				snprintf(why, whylen,
					 "call: parameter '%s' is malformed (bad %%-escape, "
					 "control character or longer than %d bytes)",
					 param_keys[i].key, CALL_PARAM_MAX);
				return -EINVAL;
			}
		}
		q += len;
		if (*q == '&')
			q++;
	}
	if (p->user[0] && strpbrk(p->user, ":\"\\")) {
		snprintf(why, whylen, "call: parameter 'user' may not hold ':', '\"' or '\\'");
		return -EINVAL;
	}
	if ((p->user[0] == '\0') != (p->pass[0] == '\0')) {
		snprintf(why, whylen, "call: parameters 'user' and 'pass' go together");
		return -EINVAL;
	}
	return 0;
}

/* Clears the secrets of @p. */
static void params_wipe(struct call_params *p)
{
	OPENSSL_cleanse(p, sizeof(*p));
}

/*
 * Checks the signed token of @p for destination @dest: 0, or -EACCES with @why ("token
 * required", "bad token", "token expired"). The MAC is checked before the expiry, so only a
 * genuine token is ever called expired.
 */
static int check_token(const char *dest, const struct call_params *p, char *why, size_t whylen)
{
	uint8_t given[CALL_TOKEN_LEN], mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;
	char msg[RTMP_NAME_MAX + CALL_PARAM_MAX + 2];
	uint64_t expires = 0, now = (uint64_t)time(NULL);
	size_t n;

	if (!p->expires[0] || !p->token[0]) {
		snprintf(why, whylen, "call: token required");
		return -EACCES;
	}
	n = strlen(p->expires);
	if (n > 19 || strspn(p->expires, "0123456789") != n ||
	    strlen(p->token) != 2 * CALL_TOKEN_LEN)
		goto bad;
	for (size_t i = 0; i < n; i++)
		expires = expires * 10 + (uint64_t)(p->expires[i] - '0');
	for (size_t i = 0; i < CALL_TOKEN_LEN; i++) {
		int hi = hex_value(p->token[2 * i]), lo = hex_value(p->token[2 * i + 1]);

		if (hi < 0 || lo < 0)
			goto bad;
		given[i] = (uint8_t)(hi << 4 | lo);
	}
	n = (size_t)snprintf(msg, sizeof(msg), "%s:%s", dest, p->expires);
	if (n >= sizeof(msg) ||
	    !HMAC(EVP_sha256(), token_secret, (int)strlen(token_secret), (const uint8_t *)msg, n,
		  mac, &mac_len) ||
	    mac_len != CALL_TOKEN_LEN || CRYPTO_memcmp(mac, given, CALL_TOKEN_LEN) != 0)
		goto bad;
	if (expires <= now) {
		snprintf(why, whylen, "call: token expired");
		return -EACCES;
	}
	if (expires - now > token_max_age) {
		snprintf(why, whylen, "call: bad token (expires more than %" PRIu64 " s ahead)",
			 token_max_age);
		return -EACCES;
	}
	return 0;
bad:
	snprintf(why, whylen, "call: bad token");
	return -EACCES;
}

/*
 * Cuts the "?query" off @s's name (the bytes are wiped: the core logs and echoes the name) and
 * reads it into @p, checking the token when one is required. 0, or a negative errno with @why.
 */
static int take_query(struct rtmp_conn *conn, struct rtmp_stream *s, struct call_params *p,
		      char *why, size_t whylen)
{
	char *q = strchr(s->name, '?');
	int ret = 0;

	memset(p, 0, sizeof(*p));
	if (q) {
		*q++ = '\0';
		ret = parse_query(q, p, why, whylen);
		OPENSSL_cleanse(q, strlen(q));
	}
	if (ret == 0 && auth_mode == AUTH_UNSET) {
		snprintf(why, whylen, "call: no caller authentication configured on this gateway "
				      "(CALL_AUTH)");
		ret = -EACCES;
	} else if (ret == 0 && auth_mode == AUTH_TOKEN) {
		ret = check_token(s->name, p, why, whylen);
	} else if (ret == 0 && auth_mode == AUTH_SIP && !p->user[0]) {
		snprintf(why, whylen, "call: SIP credentials required (?user=...&pass=...)");
		ret = -EACCES;
	}
	if (ret == -EACCES)
		call_policy_count(CALL_POLICY_AUTH);
	if (ret < 0) {
		log_warn(rtmp_conn_sid(conn), "call/%.200s from %s refused: %s", s->name,
			 rtmp_conn_peer_ip(conn), why);
		params_wipe(p);
	}
	return ret;
}

static struct call *get_call(const struct rtmp_stream *s, char *why, size_t whylen)
{
	char uri[CALL_URI_MAX + 1];
	struct call *c;

	if (!bridge || !ua) {
		snprintf(why, whylen, "call: no SIP or media in this signaler");
		return NULL;
	}
	if (dest_uri(s->name, call_domain, uri, sizeof(uri), why, whylen) < 0)
		return NULL;
	c = slot_get(&calls, CALL_BUCKETS, s->name, sizeof(*c), true);
	if (!c) {
		snprintf(why, whylen, "call: out of memory");
		return NULL;
	}
	if (!c->name[0]) {
		snprintf(c->name, sizeof(c->name), "%s", s->name);
		snprintf(c->uri, sizeof(c->uri), "%s", uri);
		c->srtp = strncmp(uri, "sips:", 5) == 0 ? SDP_SRTP_REQUIRED : srtp_policy;
	}
	return c;
}

/* Forgets the call's SIP credentials. */
static void forget_credentials(struct call *c)
{
	OPENSSL_cleanse(c->auth_user, sizeof(c->auth_user));
	OPENSSL_cleanse(c->password, sizeof(c->password));
}

/*
 * CALL_AUTH=sip: the first to hold call/<destination> (publisher or player) names the
 * credentials; the others must give the same, or they could listen in on another's call.
 * 0, or -EACCES with @why. Only a MAC of the credentials is kept.
 */
static int check_owner(struct call *c, const struct call_params *p, char *why, size_t whylen)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;
	char cred[2 * CALL_PARAM_MAX + 2];
	int n;

	if (auth_mode != AUTH_SIP)
		return 0;
	n = snprintf(cred, sizeof(cred), "%s:%s", p->user, p->pass);
	if (n < 0 || (size_t)n >= sizeof(cred) ||
	    !HMAC(EVP_sha256(), owner_key, (int)sizeof(owner_key), (const uint8_t *)cred,
		  (size_t)n, mac, &mac_len) ||
	    mac_len != CALL_TOKEN_LEN) {
		OPENSSL_cleanse(cred, sizeof(cred));
		snprintf(why, whylen, "call: cannot check the credentials");
		return -EACCES;
	}
	OPENSSL_cleanse(cred, sizeof(cred));
	if (!c->owned) {
		memcpy(c->owner_mac, mac, CALL_TOKEN_LEN);
		c->owned = true;
		return 0;
	}
	if (CRYPTO_memcmp(c->owner_mac, mac, CALL_TOKEN_LEN) == 0)
		return 0;
	call_policy_count(CALL_POLICY_AUTH);
	snprintf(why, whylen, "call: call/%.200s is held with other SIP credentials", c->name);
	return -EACCES;
}

/* The call no longer counts against the limits of call_policy.h. */
static void policy_release(struct call *c)
{
	if (!c->admitted)
		return;
	call_policy_release(c->client_ip);
	c->admitted = false;
}

static void release_if_unused(struct call *c)
{
	if (slot_in_use(&c->slot) || c->leg || c->vleg || c->sip)
		return;
	slot_forget(calls, c->name, &c->slot);
	if (c->failed) {
		unsigned i = failed_next++ % FAILED_MEMORY;

		snprintf(failed_calls[i].name, sizeof(failed_calls[i].name), "%s", c->name);
		snprintf(failed_calls[i].why, sizeof(failed_calls[i].why), "%s", c->over_why);
		failed_calls[i].at = time(NULL);
	}
	forget_credentials(c);
	buf_free(&c->vseq);
	free(c);
}

/* Rewrites the call's record in @state ("setup", "ringing", "up"); none once the call is over. */
static void rec_update(struct call *c, const char *state)
{
	struct call_record *r = &c->rec;

	if (!r->call_id[0])
		return;
	if (c->slot.publisher)
		snprintf(r->rtmp_client, sizeof(r->rtmp_client), "%.63s",
			 rtmp_conn_sid(c->slot.publisher));
	callrec_update(r, state, c->sip, c->leg);
}

/*
 * Ends the call's SIP side and leg; the call stays until its publisher and players are gone.
 * @status (the final SIP status, 0: none) and @local (what ended it here) are its end reason for
 * the metrics when it was not answered (callrec_end).
 */
static void call_over(struct call *c, int status, enum callrec_end_reason local, const char *why)
{
	policy_release(c);
	if (c->state == CALL_OVER)
		return;
	log_info(c->slot.publisher ? rtmp_conn_sid(c->slot.publisher) : NULL, "call %s over: %s",
		 c->uri, why);
	c->state = CALL_OVER;
	snprintf(c->over_why, sizeof(c->over_why), "%s", why);
	c->failed = local == CALLREC_END_ERROR || local == CALLREC_END_NO_MEDIA;
	if (c->sip) {
		sip_call_set_arg(c->sip, NULL);
		sip_call_hangup(c->sip);
		c->sip = NULL;
	}
	media_leg_destroy(&c->leg);
	media_leg_destroy(&c->vleg);
	callrec_end(&c->rec, status, local);
	memset(&c->rec, 0, sizeof(c->rec));
	players_unpublished(&c->slot.players, why);
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
	log_info(c->slot.publisher ? rtmp_conn_sid(c->slot.publisher) : NULL, "call %s: %s", c->uri,
		 text);
	slot_tell_publisher(&c->slot, "status", "NetConnection.Call.Ringing", text);
	rec_update(c, "ringing");
}

static void sip_answered(struct sip_call *sc, const char *sdp, void *arg)
{
	struct call *c = arg;
	struct sdp_media_desc answer;
	struct sdp_choice ch;
	struct media_leg_update u = {0};
	char why[200], text[CALL_URI_MAX + 240];

	if (!c)
		return;
	if (!sdp || sdp_parse_desc(sdp, strlen(sdp), &answer, why, sizeof(why)) < 0 ||
	    sdp_process_answer(&c->offer, &answer, &ch, why, sizeof(why)) < 0) {
		if (!sdp)
			snprintf(why, sizeof(why), "answer without SDP");
		snprintf(text, sizeof(text), "call %s: unusable answer: %s", c->uri, why);
		slot_tell_publisher(&c->slot, "error", "NetConnection.Call.Failed", text);
		call_over(c, 0, CALLREC_END_ERROR, text);
		return;
	}
	u.remote_ip = ch.remote_addr;
	u.remote_port = ch.remote_port;
	u.set_codec = true;
	u.codec_pt = ch.pt;
	u.codec_fmtp = ch.fmtp;
	if (ch.srtp) {
		u.srtp_suite = sdp_srtp_suite_name(ch.suite);
		u.srtp_remote_key = ch.remote_key;
		u.srtp_remote_key_len = SDP_SRTP_KEY_LEN;
	}
	if (media_leg_update(c->leg, &u, NULL) < 0) {
		snprintf(text, sizeof(text), "call %s: the media leg refused the answer", c->uri);
		log_warn(c->slot.publisher ? rtmp_conn_sid(c->slot.publisher) : NULL, "%s", text);
		slot_tell_publisher(&c->slot, "error", "NetConnection.Call.Failed", text);
		call_over(c, 0, CALLREC_END_ERROR, text);
		return;
	}
	{
		char what[CALL_URI_MAX + 8];

		snprintf(what, sizeof(what), "call %s", c->uri);
		call_video_apply(&c->vleg, &ch.video, false,
				 c->slot.publisher ? rtmp_conn_sid(c->slot.publisher) : NULL, what);
	}
	c->state = CALL_UP;
	snprintf(c->rec.codec, sizeof(c->rec.codec), "%s", ch.codec->name);
	c->rec.srtp = ch.srtp;
	rec_update(c, "up");
	log_info(c->slot.publisher ? rtmp_conn_sid(c->slot.publisher) : NULL,
		 "call %s answered: %s/%u to %s:%u%s%s", c->uri, ch.codec->name,
		 ch.codec->clock_rate, ch.remote_addr, ch.remote_port, ch.srtp ? ", SRTP " : "",
		 ch.srtp ? sdp_srtp_suite_name(ch.suite) : "");
	snprintf(text, sizeof(text), "%s%s%s", ch.codec->name, c->vleg ? ", H.264 video" : "",
		 ch.srtp ? ", SRTP" : "");
	slot_tell_publisher(&c->slot, "status", "NetConnection.Call.Accepted", text);
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
	slot_tell_publisher(&c->slot, "error", "NetConnection.Call.Failed", text);
	call_over(c, status, CALLREC_END_ERROR, text);
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
	slot_tell_publisher(&c->slot, "status", "NetConnection.Call.Ended", text);
	call_over(c, 0, CALLREC_END_COMPLETED, text);
}

/* --- the leg -------------------------------------------------------------------------------- */

/* Places the call's INVITE offering @sdp, with the publisher's credentials when it gave some.
 * The credentials are wiped here: the UA keeps its own copy for the challenge. */
static struct sip_call *send_invite(struct call *c, const char *sdp)
{
	struct sip_call *sc;
	char from[CALL_URI_MAX + CALL_PARAM_MAX + 8];
	const char *host = strchr(c->uri, '@');
	size_t hlen;

	if (!c->auth_user[0])
		return sip_call_invite(ua, NULL, c->uri, sdp, c);
	/* From carries the credentials' user at the callee's host, as providers expect; a user
	 * that is not a plain SIP user part keeps the UA's identity. */
	from[0] = '\0';
	host = host ? host + 1 : c->uri + strcspn(c->uri, ":") + 1;
	hlen = strcspn(host, ":;?>"); /* dest_uri() lets no IPv6 literal through */
	if (strspn(c->auth_user, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789-_.!~*'()+") == strlen(c->auth_user) &&
	    hlen > 0 && hlen <= CALL_URI_MAX)
		snprintf(from, sizeof(from), "%s:%s@%.*s",
			 strncmp(c->uri, "sips:", 5) == 0 ? "sips" : "sip", c->auth_user, (int)hlen,
			 host);
	sc = sip_call_invite_auth(ua, from[0] ? from : NULL, c->auth_user, c->password, c->uri,
				  sdp, c);
	log_info(c->slot.publisher ? rtmp_conn_sid(c->slot.publisher) : NULL,
		 "call %s: INVITE with SIP credentials of user %s", c->uri, c->auth_user);
	forget_credentials(c);
	return sc;
}

/* Our offer for the call from the leg's address (and key, for SRTP); 0 or -EINVAL with @why. */
static int make_offer(struct call *c, const struct media_leg_info *in, struct buf *sdp, char *why,
		      size_t whylen)
{
	struct sdp_local local = {.addr = in->local_ip, .port = in->local_port};
	const char *suite = sdp_srtp_suite_name(SDP_SUITE_AES_CM_128_HMAC_SHA1_80);
	struct codec_pref ours;
	char plid[7];

	/* optional offers plain RTP/AVP: an offer cannot leave the choice to the answerer */
	if (c->srtp == SDP_SRTP_REQUIRED) {
		if (strcmp(in->srtp_suite, suite) != 0 ||
		    in->srtp_local_key_len != SDP_SRTP_KEY_LEN) {
			snprintf(why, whylen, "SRTP required but worker %s gave no %s key",
				 in->worker_id, suite);
			return -EINVAL;
		}
		local.srtp = SDP_SRTP_REQUIRED;
		local.key = in->srtp_local_key;
	}
	/* Fewest conversions: the publisher's own codec, when we offer it at all, comes first. */
	ours = prefs;
	for (unsigned i = 1; i < ours.n; i++) {
		if (ours.codecs[i] == c->pub_codec) {
			memmove(ours.codecs + 1, ours.codecs, i * sizeof(ours.codecs[0]));
			ours.codecs[0] = c->pub_codec;
			break;
		}
	}
	if (call_video_local(&c->vleg, in, &local,
			     c->slot.publisher ? rtmp_conn_sid(c->slot.publisher) : NULL)) {
		struct h264_params ps;

		ours.video = true;
		if (buf_used(&c->vseq) > 5 &&
		    h264_avcc_parse(buf_head(&c->vseq) + 5, buf_used(&c->vseq) - 5, &ps) == 0 &&
		    h264_profile_level_id(&ps, plid))
			local.video.profile_level_id = plid;
	}
	if (sdp_make_offer(&ours, &local, &c->offer, why, whylen) < 0 ||
	    sdp_build(sdp, &c->offer, "rtmp2sip", c->offer.sess_id, c->offer.sess_version) < 0 ||
	    buf_put_u8(sdp, 0) < 0) {
		if (!why[0])
			snprintf(why, whylen, "cannot build the SDP offer");
		return -EINVAL;
	}
	return 0;
}

/* Offers the call once its legs are ready: the audio leg, and the video leg when there is one
 * (a video leg that failed is gone by then: an audio call). */
static void invite_when_ready(struct call *c)
{
	const struct media_leg_info *in = c->leg ? media_leg_info(c->leg) : NULL;
	struct buf sdp = {0};
	char why[200] = "";

	if (c->state != CALL_LEG || !in || (c->vleg && !c->vleg_ready))
		return;
	if (make_offer(c, in, &sdp, why, sizeof(why)) < 0) {
		slot_tell_publisher(&c->slot, "error", "NetConnection.Call.Failed", why);
		call_over(c, 0, CALLREC_END_ERROR, why);
		goto out_free_sdp;
	}
	c->state = CALL_INVITING;
	c->sip = send_invite(c, (const char *)sdp.data);
	if (!c->sip) {
		slot_tell_publisher(&c->slot, "error", "NetConnection.Call.Failed",
				    "cannot send the INVITE");
		call_over(c, 0, CALLREC_END_ERROR, "cannot send the INVITE");
		goto out_free_sdp;
	}
	sip_call_set_handler(c->sip, &call_sip_cbs, c);
	log_info(c->slot.publisher ? rtmp_conn_sid(c->slot.publisher) : NULL,
		 "call %s: INVITE sent (call id %s), media %s:%u on %s%s%s", c->uri,
		 sip_call_callid(c->sip), in->local_ip, in->local_port, in->worker_id,
		 c->offer.srtp ? ", RTP/SAVP" : "", c->offer.has_video ? ", H.264 video" : "");
	rec_update(c, "setup");
out_free_sdp:
	buf_free(&sdp);
}

static void leg_ready(struct media_leg *leg, const struct media_leg_info *in, void *arg)
{
	(void)leg, (void)in;
	invite_when_ready(arg);
}

static void leg_failed(struct media_leg *leg, const char *reason, void *arg)
{
	struct call *c = arg;

	slot_tell_publisher(&c->slot, "error", "NetConnection.Call.Failed", reason);
	call_over(c, 0, CALLREC_END_NO_MEDIA, reason);
}

/* Tells the peer where the media is now (a re-INVITE), once no leg of the call is moving: the
 * audio and video legs of a dead worker move together, and the peer hears of both at once. */
static void reinvite_moved(struct call *c)
{
	struct buf sdp = {0};

	if (c->state != CALL_UP || !c->sip || !call_video_moved_sdp(&c->offer, c->leg, &c->vleg))
		return;
	if (sdp_build_reoffer(&sdp, &c->offer, false, "rtmp2sip") == 0 && buf_put_u8(&sdp, 0) == 0)
		sip_call_reinvite(c->sip, (const char *)sdp.data);
	buf_free(&sdp);
}

static void leg_moved(struct media_leg *leg, const char *ip, uint16_t port, void *arg)
{
	(void)leg, (void)ip, (void)port;
	reinvite_moved(arg);
}

static void leg_audio(struct media_leg *leg, const uint8_t *payload, size_t len, uint32_t ts,
		      void *arg)
{
	struct call *c = arg;
	players_send(&c->slot.players, RTMP_MSG_AUDIO, ts, payload, (uint32_t)len);
}

/* Another worker, or the worker's answer to the SIP codec: the call record says it. */
static void leg_changed(struct media_leg *leg, void *arg)
{
	struct call *c = arg;

	if (c->state != CALL_OVER && c->rec.state[0])
		rec_update(c, c->rec.state);
}

static const struct media_leg_callbacks leg_cbs = {
	.ready = leg_ready, .failed = leg_failed, .moved = leg_moved, .audio_out = leg_audio,
	.changed = leg_changed,
};

static void vleg_ready(struct media_leg *leg, const struct media_leg_info *in, void *arg)
{
	struct call *c = arg;

	(void)leg, (void)in;
	c->vleg_ready = true;
	invite_when_ready(c);
}

/* The video leg failed: the call goes on with audio (re-offered without video once up). */
static void vleg_failed(struct media_leg *leg, const char *reason, void *arg)
{
	struct call *c = arg;

	(void)leg;
	log_warn(c->slot.publisher ? rtmp_conn_sid(c->slot.publisher) : NULL,
		 "call %s: video leg lost: %s", c->uri, reason);
	media_leg_destroy(&c->vleg);
	if (c->state == CALL_LEG)
		invite_when_ready(c);
	else if (c->state == CALL_UP)
		reinvite_moved(c);
}

static void vleg_video(struct media_leg *leg, const uint8_t *msg, size_t len, uint32_t ts,
		       void *arg)
{
	struct call *c = arg;

	(void)leg;
	players_send(&c->slot.players, RTMP_MSG_VIDEO, ts, msg, (uint32_t)len);
}

static const struct media_leg_callbacks vleg_cbs = {
	.ready = vleg_ready, .failed = vleg_failed, .moved = leg_moved, .video_out = vleg_video,
};

/*
 * The video leg beside the call's audio leg, when the publisher sends H.264 (its metadata says
 * so, or its sequence header came) and CALL_VIDEO allows: on the audio leg's worker, sharing its
 * timeline. Without it the call is an audio call.
 */
static void start_video(struct call *c, const struct media_leg_params *audio)
{
	if (!video_enabled || !c->leg || (c->meta_video != 7 && !buf_used(&c->vseq)))
		return;
	c->vleg_ready = false;
	c->vleg = call_video_leg_new(bridge, audio, c->leg, &vleg_cbs, c);
	if (!c->vleg)
		log_warn(c->slot.publisher ? rtmp_conn_sid(c->slot.publisher) : NULL,
			 "call %s: no video leg (%s): audio only", c->uri, strerror(errno));
	else if (buf_used(&c->vseq)) /* kept by the leg, sent to its worker when it is ready */
		media_leg_send_video(c->vleg, buf_head(&c->vseq), buf_used(&c->vseq), 0);
}

/* --- the app -------------------------------------------------------------------------------- */

static int call_publish(struct rtmp_conn *conn, struct rtmp_stream *s, char *why, size_t whylen)
{
	struct call_params p;
	struct call *c;
	int ret = take_query(conn, s, &p, why, whylen);

	if (ret < 0)
		return ret;
	c = get_call(s, why, whylen);
	if (!c) {
		ret = -EINVAL;
		goto out_wipe;
	}
	if (c->slot.publisher || c->state != CALL_IDLE) {
		snprintf(why, whylen, "call/%s is already in progress", s->name);
		ret = -EBUSY;
		goto out_wipe;
	}
	ret = check_owner(c, &p, why, whylen);
	if (ret == 0)
		ret = audio_out_codec(p.audio, &c->audio_out, why, whylen);
	if (ret == 0)
		ret = call_policy_admit(rtmp_conn_peer_ip(conn), c->uri, why, whylen);
	if (ret < 0) {
		log_warn(rtmp_conn_sid(conn), "call to %s from %s refused: %s", c->uri,
			 rtmp_conn_peer_ip(conn), why);
		release_if_unused(c);
		goto out_wipe;
	}
	c->admitted = true;
	snprintf(c->client_ip, sizeof(c->client_ip), "%s", rtmp_conn_peer_ip(conn));
	c->slot.publisher = conn;
	c->slot.pub_stream = s;
	audio_check_init(&c->check);
	c->meta_rate = c->meta_channels = c->meta_video = 0;
	c->video_said = false;
	buf_reset(&c->vseq);
	failed_forget(c->name); /* a new call of the name */
	c->failed = false;
	s->app_data = c;
	snprintf(c->auth_user, sizeof(c->auth_user), "%s", p.user);
	snprintf(c->password, sizeof(c->password), "%s", p.pass);
	log_info(rtmp_conn_sid(conn), "call to %s: waiting for the first audio message%s%s%s",
		 c->uri, c->srtp == SDP_SRTP_REQUIRED ? " (SRTP required)" : "",
		 p.user[0] ? ", SIP credentials of user " : "", p.user);
out_wipe:
	params_wipe(&p);
	return ret;
}

static int call_play(struct rtmp_conn *conn, struct rtmp_stream *s, char *why, size_t whylen)
{
	struct call_params p;
	const char *failed;
	struct call *c;
	int ret = take_query(conn, s, &p, why, whylen);

	if (ret < 0)
		return ret;
	failed = strmap_get(calls, s->name) ? NULL : failed_recently(s->name);
	if (failed) {
		snprintf(why, whylen, "%s", failed);
		params_wipe(&p);
		return -ENOENT;
	}
	c = get_call(s, why, whylen);
	if (!c) {
		params_wipe(&p);
		return -EINVAL;
	}
	ret = check_owner(c, &p, why, whylen);
	params_wipe(&p);
	if (ret < 0) {
		log_warn(rtmp_conn_sid(conn), "play call/%.200s from %s refused: %s", c->name,
			 rtmp_conn_peer_ip(conn), why);
		release_if_unused(c);
		return ret;
	}
	if (c->state == CALL_OVER) {
		/* its publisher is still connected, but there is nothing more to hear: say why at
		 * once (StreamNotFound with the reason) rather than keep the player waiting */
		snprintf(why, whylen, "%s", c->over_why);
		return -ENOENT;
	}
	if (!players_add(&c->slot.players, conn, s, c)) {
		snprintf(why, whylen, "Out of memory");
		release_if_unused(c);
		return -ENOMEM;
	}
	if (c->vleg && c->state == CALL_UP) { /* its video starts at a key frame: ask for one */
		struct media_leg_update u = {.keyframe = true};

		media_leg_update(c->vleg, &u, NULL);
	}
	return 0;
}

/*
 * Checks one audio message of the publisher (audio_check.h); a refused one ends the call (its
 * SIP side and leg), the publisher told why (NetConnection.Call.Failed). False when refused.
 */
static bool audio_ok(struct rtmp_conn *conn, struct call *c, const struct rtmp_msg *m)
{
	char why[320], text[400];

	if (audio_check_feed(&c->check, m->data, m->len, m->timestamp, why, sizeof(why)) == 0)
		return true;
	snprintf(text, sizeof(text), "call: %s", why);
	log_warn(rtmp_conn_sid(conn), "call/%s: publisher refused: %s", c->name, why);
	slot_tell_publisher(&c->slot, "error", "NetConnection.Call.Failed", text);
	call_over(c, 0, CALLREC_END_ERROR, text);
	return false;
}

static void start_call(struct rtmp_conn *conn, struct call *c, const struct rtmp_msg *m)
{
	struct media_leg_params lp = {0};
	struct wire_codec rc;
	const char *why = NULL;
	char call_id[RTMP_NAME_MAX + 96];

	/* The call starts with its first audio (and is counted), whatever becomes of it. */
	callrec_start(&c->rec, "call", "out");
	snprintf(c->rec.to_uri, sizeof(c->rec.to_uri), "%s", c->uri);
	if (media_codec_from_rtmp(m->data, m->len, &rc, &why) < 0) {
		char text[200];

		snprintf(text, sizeof(text), "call: %s", why);
		log_warn(rtmp_conn_sid(conn), "call/%s: publisher refused: %s", c->name, why);
		slot_tell_publisher(&c->slot, "error", "NetConnection.Call.Failed", text);
		call_over(c, 0, CALLREC_END_ERROR, text);
		return;
	}
	/* G.711's FLV header cannot say its rate (ffmpeg writes 0x82 at any rate, and stereo as
	 * mono): the metadata can. The worker converts; the check measures against it. */
	c->pub_codec = codec_by_name(rc.name, rc.rate);
	if (c->pub_codec && c->pub_codec->family == CODEC_FAMILY_G711 &&
	    (c->meta_rate || c->meta_channels == 2)) {
		if (c->meta_rate)
			rc.rate = c->meta_rate;
		if (c->meta_channels == 2)
			rc.channels = 2;
		log_info(rtmp_conn_sid(conn), "call/%s: G.711 at %u Hz, %u channel%s (metadata)",
			 c->name, rc.rate, rc.channels, rc.channels == 1 ? "" : "s");
	}
	audio_check_expect(&c->check, rc.rate == 8000 ? 0 : rc.rate, rc.channels);
	if (!audio_ok(conn, c, m))
		return;
	snprintf(call_id, sizeof(call_id), "call/%s/%s", c->name, rtmp_conn_sid(conn));
	for (char *p = call_id; *p; p++)
		if (*p == ' ')
			*p = '-';
	lp.call_id = call_id;
	lp.rtmp_codec = rc;
	lp.rtmp_out = c->audio_out;
	lp.sip_codecs = sip_codecs;
	lp.n_sip_codecs = n_sip_codecs;
	lp.want_srtp = c->srtp == SDP_SRTP_REQUIRED;
	c->format = m->data[0] >> 4;
	c->state = CALL_LEG;
	c->leg = media_leg_new(bridge, &lp, &leg_cbs, c);
	if (!c->leg) {
		slot_tell_publisher(&c->slot, "error", "NetConnection.Call.Failed",
				    "cannot create a media leg");
		call_over(c, 0, CALLREC_END_NO_MEDIA, "cannot create a media leg");
		return;
	}
	start_video(c, &lp);
}

/*
 * One video message of the publisher: H.264 goes to the video leg (its sequence header is kept
 * for the offer's profile); another codec is refused once with a warning, the audio goes on.
 */
static void publisher_video(struct call *c, const struct rtmp_msg *m)
{
	unsigned codec = m->data[0] & 0x0f;

	if ((m->data[0] & 0x80) || codec != RTMP_VIDEO_AVC) {
		char text[160];

		if (c->video_said)
			return;
		c->video_said = true;
		snprintf(text, sizeof(text),
			 "video %s%u is not carried (H.264 only); the call goes on with audio",
			 m->data[0] & 0x80 ? "in an Enhanced RTMP header, codec " : "codec id ",
			 m->data[0] & 0x80 ? 0 : codec);
		log_warn(rtmp_conn_sid(c->slot.publisher), "call/%s: %s", c->name, text);
		slot_tell_publisher(&c->slot, "warning", "NetStream.Video.Unsupported", text);
		return;
	}
	if (m->len > 5 && m->data[0] == 0x17 && m->data[1] == 0 && m->len <= CALL_VSEQ_MAX) {
		buf_reset(&c->vseq);
		if (buf_append(&c->vseq, m->data, m->len) < 0)
			buf_reset(&c->vseq);
	}
	if (c->vleg)
		media_leg_send_video(c->vleg, m->data, m->len, m->timestamp);
}

static void call_media(struct rtmp_conn *conn, struct rtmp_stream *s, const struct rtmp_msg *m)
{
	struct call *c = s->app_data;

	if (c && c->state == CALL_IDLE && m->type == RTMP_MSG_DATA_AMF0) {
		struct media_meta meta;

		if (media_codec_metadata(m->data, m->len, &meta) == 0) {
			c->meta_rate = meta.rate;
			c->meta_channels = meta.channels;
			c->meta_video = meta.video_codec;
		}
	}
	if (c && m->type == RTMP_MSG_VIDEO && m->len >= 2 && c->state != CALL_OVER) {
		publisher_video(c, m);
		return;
	}
	if (!c || m->type != RTMP_MSG_AUDIO || m->len < 2 || c->state == CALL_OVER)
		return;
	if (c->state == CALL_IDLE)
		start_call(conn, c, m); /* checks this first message */
	else if ((m->data[0] >> 4) != c->format || !audio_ok(conn, c, m))
		return;
	if (!c->leg)
		return;
	media_leg_send_audio(c->leg, m->data, m->len, m->timestamp);
}

static void call_stop(struct rtmp_conn *conn, struct rtmp_stream *s)
{
	if (s->state == RTMP_STREAM_PUBLISHING) {
		struct call *c = s->app_data;

		if (!c)
			return;
		/* Before the answer: the caller hung up, or its connection went. */
		call_over(c, 0,
			  rtmp_conn_closing(conn) ? CALLREC_END_CLIENT_LEFT : CALLREC_END_CANCELLED,
			  "the publisher stopped");
		c->slot.publisher = NULL;
		c->slot.pub_stream = NULL;
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
		players_remove(&c->slot.players, p);
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
	.keep_query = true,
	.publish = call_publish,
	.play = call_play,
	.media = call_media,
	.stop = call_stop,
};
