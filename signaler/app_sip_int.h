/*
 * app_sip_int.h - the sip app's internals shared by its files (not an interface: app.h is).
 *
 *   app_sip.c         the calls: SIP events, the media leg, incoming INVITEs, the client's
 *                     commands; streams; setup (app_sip_init, the app's tables)
 *   app_sip_client.c  the clients: one per AOR, connect (with a REGISTER or without), the
 *                     REGISTER's outcome, a client's end
 */
#ifndef RS_APP_SIP_INT_H
#define RS_APP_SIP_INT_H

#include "app.h"
#include "audio_check.h"
#include "callrec.h"
#include "players.h"
#include "sdp.h"
#include "sip_ua.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AOR_MAX	    255
#define DISPLAY_MAX 127
#define REASON_MAX  127

enum pc_state {
	PC_LEG,	      /* outgoing: the leg is being created */
	PC_CALLING,   /* outgoing: INVITE sent */
	PC_INVITED,   /* incoming: ringing, waiting for accept or reject */
	PC_ACCEPTING, /* incoming: accepted, the leg is being created */
	PC_UP,	      /* established */
};

struct sip_client;

struct phone_call {
	struct sip_client *cl;
	enum pc_state state;
	bool incoming;
	struct sip_call *sip;
	struct media_leg *leg;
	struct media_leg *vleg;	      /* H.264 video beside it (the "h264" token), while wanted */
	bool vleg_ready;
	bool video_said;	      /* the client was told its video is not carried */
	struct codec_pref prefs;      /* what we offer, or answer with */
	struct wire_codec rtmp_codec; /* what the client sends and receives */
	uint8_t format;		      /* FLV SoundFormat of rtmp_codec */
	struct audio_check check;     /* the client's audio in this call: size, G.711's rate */
	bool want_srtp;
	struct sdp_media_desc remote; /* incoming: the peer's offer */
	struct sdp_media_desc local;  /* our last SDP (offer or answer), for re-offers */
	struct sdp_choice choice;     /* what the last negotiation chose */
	bool hold_local;	      /* we hold the peer */
	bool hold_peer;		      /* the peer holds us */
	bool hold_asked;	      /* our re-INVITE for hold(@hold_want) is out */
	bool hold_want;
	char from[AOR_MAX + 8], to[AOR_MAX + 8];
	struct call_record rec; /* its record in Redis */
	bool was_up;		/* the call has been up (a transfer may be under way) */
	struct sip_call *referrer; /* the peer's REFER: the call we are being transferred from */
	struct ev_timer *refer_timer; /* places the referred call, after the REFER's 202 */
	bool refer_placed;	      /* the referred call is placed: the timer only cleans up */
	bool admitted;		      /* counted by call_policy until the call ends */
	char client_ip[64];
};

struct sip_client {
	struct rtmp_conn *conn;
	char aor[AOR_MAX + 1];
	char display[DISPLAY_MAX + 1];
	bool narrowband;
	bool connect_pending;
	struct sip_reg *reg;
	struct rtmp_stream *pub;
	struct player_list players;
	struct phone_call *call;
};

/* "486 Busy Here" style text for the client. */
static inline void status_text(char *out, size_t len, int status, const char *phrase)
{
	snprintf(out, len, "%d %s", status, phrase ? phrase : "");
}

/* --- app_sip.c --- */

/* What app_sip_init() set: the media bridge and the SIP UA (NULL: the app refuses clients),
 * SIP_REGISTRAR (NULL: the AOR's domain), SIP_REG_EXPIRES. */
extern struct media *app_sip_bridge;
extern struct sip_ua *app_sip_ua;
extern const char *app_sip_registrar;
extern unsigned app_sip_reg_expires;

/* What the client is told when its call ends. */
enum pc_tell {
	PC_TELL_NONE,	   /* nothing: the client asked for it, never heard of the call, or left */
	PC_TELL_ENDED,	   /* byed() when the call was up (before a transfer too), else
			    * rejected(reason) */
	PC_TELL_BYED,	   /* byed() */
	PC_TELL_CANCELLED, /* cancelled(from, to): the caller gave up before the answer */
};

/* How a call ends. */
struct pc_end {
	enum pc_tell tell;
	int refuse;		       /* the final response to an incoming INVITE not answered
					* yet (4xx-6xx); 0: 480 */
	const char *refuse_phrase;     /* its reason phrase, NULL: the standard one */
	int status;		       /* the final SIP status that ended it, 0: none */
	enum callrec_end_reason local; /* what ended it here */
	const char *reason;	       /* for the log and rejected() */
};

/*
 * The one way a call ends: hangs up what is alive (CANCEL, a refusal of an unanswered INVITE
 * with end->refuse, or BYE), frees the legs, counts the call with its end reason (callrec_end:
 * end->status, else end->local), tells the client as end->tell says, and frees @pc.
 */
void app_sip_call_end(struct phone_call *pc, const struct pc_end *end);

/* --- app_sip_client.c --- */

/* The client an INVITE is for: the To URI's user@host when a client has that AOR, else the one
 * client whose user is the Request-URI's user (our Contact carries it). NULL: nobody. */
struct sip_client *app_sip_client_for(const char *to, const char *ruri);

/* Frees @cl, ending its call. Its registration is un-REGISTERed, unless another client of the
 * same AOR holds the binding now (same Contact): then it is only dropped. */
void app_sip_client_free(struct sip_client *cl);

/* The app's connect (struct rtmp_app): a client for sip/<aor>. 0: accepted (no REGISTER); 1:
 * decided by its REGISTER's outcome (app_sip_reg_result); or a negative errno with @why. */
int app_sip_connect(struct rtmp_conn *c, const struct amf_value *cmdobj,
		    const struct amf_value *args, char *why, size_t whylen);

/* The UA's reg_result for the client @arg: a 2xx writes its registration record; the first
 * outcome accepts or rejects its connect, a failed refresh is logged. */
void app_sip_reg_result(struct sip_reg *reg, int status, const char *phrase, int expires,
			void *arg);

#endif
