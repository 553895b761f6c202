/*
 * sip_ua.c - the gateway's SIP user agent over sofia-sip's nua (see sip_ua.h).
 *
 * nua runs on the evloop's su_root in this thread (evloop_su.c disables su threading), with its
 * offer/answer engine off: SDP travels as SIPTAG_PAYLOAD_STR + application/sdp both ways. nua
 * answers OPTIONS, sends 100 Trying, ACKs 2xx, refreshes registrations, retransmits, and
 * NOTIFYs the progress of a call made for an accepted REFER. INVITE and REFER are left to us.
 *
 * Call states (struct sip_call):
 *
 *   outgoing:  CALLING --1xx--> EARLY --2xx (ACK by nua)--+
 *                 |               |                       |
 *                 +-- >=300, CANCEL, error ---------------|----------------------> DONE
 *                                                         v                        ^
 *   incoming:  INCOMING --respond 2xx--------------> CONFIRMED --BYE either way----+
 *                 |  (respond 1xx: stays)               |  re-INVITE either way:   |
 *                 +-- respond >=300, CANCEL ------------|--- flags, state stays ---+
 *
 *   DONE is entered on nua's "terminated" call state: the one terminal callback (failed,
 *   cancelled or ended) runs, then the handle is destroyed and the call freed.
 *
 * Registrations: nua_register(); a 401/407 is answered once per attempt with nua_authenticate()
 * (again only for stale=true); each final outcome goes to reg_result. sip_reg_destroy() sends
 * the un-REGISTER and frees the registration on its final response.
 *
 * Logs carry the SIP Call-ID of the call (or "reg:<aor>") as the session id.
 */
#include "sip_ua.h"

#include "evloop_su.h"
#include "log.h"
#include "netacl.h"
#include "sip_guard.h"
#include "sip_trust.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

struct sip_hobj;
#define NUA_MAGIC_T  struct sip_ua
#define NUA_HMAGIC_T struct sip_hobj

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>

#define SIP_UA_MAX_BODY 65536
#define SIP_UA_MAX_URI	512
#define SIP_UA_ALLOW	"INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY, UPDATE"
#define SDP_TYPE	"application/sdp"

enum hkind { H_CALL = 1, H_REG, H_BYE };

/* First member of both handle owners: nua gives it back as the handle magic. */
struct sip_hobj {
	enum hkind kind;
};

enum call_state { CS_CALLING, CS_EARLY, CS_INCOMING, CS_CONFIRMED, CS_DONE };

struct sip_call {
	struct sip_hobj h;
	struct sip_ua *ua;
	nua_handle_t *nh;
	su_home_t *home; /* sofia objects kept for the call (the REFER event) */
	enum call_state state;
	bool outgoing;
	bool answered;	   /* 2xx sent or received */
	bool ack_seen;	   /* incoming: the 2xx was ACKed (answered callback made) */
	bool cancel_asked; /* outgoing: sip_call_cancel() */
	bool cancelled;	   /* incoming: the caller cancelled */
	bool local_bye;
	bool peer_bye;
	bool reinvite_out; /* our re-INVITE waits for its final response */
	bool reinvite_in;  /* the peer's re-INVITE waits for our response */
	bool offer_in;	   /* the pending incoming INVITE carried an offer */
	unsigned auth_tries;
	int final_status;
	char final_phrase[64];
	char *call_id;
	char *local_uri; /* our identity in this dialog */
	char *from, *from_display, *to, *ruri;
	char *remote_sdp, *local_sdp, *pending_sdp;
	char *refer_to;
	sip_event_t *refer_event;
	char *auth_user, *password;
	void *arg;
	const struct sip_ua_callbacks *cb; /* the call's handler, or NULL: the UA's */
	struct sip_call *next, **pprev;
	struct sip_dialog_info dlg; /* the dialog as learned so far (dialog_capture) */
};

struct sip_reg {
	struct sip_hobj h;
	struct sip_ua *ua;
	nua_handle_t *nh;
	char *sid;     /* "reg:<aor>" */
	char *aor_uri; /* "sip:user@domain" */
	char *from;
	char *user, *auth_user, *password;
	unsigned expires;
	unsigned auth_tries;
	bool registered;
	bool pending;	 /* a REGISTER waits for its final response */
	bool destroying; /* sip_reg_destroy(): no more callbacks, free on the final response */
	void *arg;
	struct sip_reg *next, **pprev;
};

struct sip_ua {
	struct evloop *loop;
	nua_t *nua;
	struct sip_ua_callbacks cb;
	char *identity;
	char *host; /* advertised host */
	unsigned shutdown_ms;
	bool closing;
	bool shutdown_done;
	struct sip_call *calls;
	struct sip_reg *regs;
	struct sip_bye *byes; /* sip_ua_bye_dialog() in flight */
	void (*dialog_cb)(struct sip_call *call, void *arg);
	void *dialog_arg;
	struct sip_trust *trust;
	bool via_proxy; /* an outbound proxy: every response comes from it (trusted) */
};

struct sip_bye;
static void dialog_from_invite(struct sip_call *call, sip_t const *sip);
static void dialog_capture(struct sip_call *call, nua_event_t ev, int status, sip_t const *sip);
static void bye_event(struct sip_bye *b, nua_event_t ev, int status, const char *phrase);
static void bye_free(struct sip_bye *b);

/* The callbacks a call reports to: its own handler, or the UA's. */
#define CALL_CB(c) ((c)->cb ? (c)->cb : &(c)->ua->cb)

/* ---- small helpers ---- */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void set_str(char **dst, char *src)
{
	free(*dst);
	*dst = src;
}

static const char *phrase_of(int status, const char *phrase)
{
	const char *p = phrase ? phrase : sip_status_phrase(status);

	return p ? p : "";
}

static bool uri_ok(const char *uri)
{
	size_t n;

	if (!uri)
		return false;
	n = strlen(uri);
	if (n == 0 || n > SIP_UA_MAX_URI)
		return false;
	if (strncasecmp(uri, "sip:", 4) != 0 && strncasecmp(uri, "sips:", 5) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)uri[i] <= ' ' || uri[i] == '<' || uri[i] == '>' || uri[i] == '"')
			return false;
	return true;
}

/* A display name fit for quoting: printable, no quote or backslash. */
static bool display_ok(const char *d)
{
	if (strlen(d) > 128)
		return false;
	for (const char *p = d; *p; p++)
		if ((unsigned char)*p < ' ' || *p == '"' || *p == '\\')
			return false;
	return true;
}

static char *new_call_id(const char *host)
{
	unsigned char r[12];
	char id[25], *out;

	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)(rand() ^ (ts.tv_nsec >> (i % 8)));
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
	if (asprintf(&out, "%s@%s", id, host) < 0)
		return NULL;
	return out;
}

/* The message body as a C string when its type is @type (NULL: any), else NULL. */
static char *body_dup(sip_t const *sip, const char *type)
{
	sip_payload_t const *pl = sip ? sip->sip_payload : NULL;
	char *s;

	if (!pl || !pl->pl_data || pl->pl_len == 0 || pl->pl_len > SIP_UA_MAX_BODY)
		return NULL;
	if (type && (!sip->sip_content_type || !sip->sip_content_type->c_type ||
		     strcasecmp(sip->sip_content_type->c_type, type) != 0))
		return NULL;
	s = malloc(pl->pl_len + 1);
	if (!s)
		return NULL;
	memcpy(s, pl->pl_data, pl->pl_len);
	s[pl->pl_len] = '\0';
	return s;
}

static char *uri_dup(url_t const *url)
{
	char buf[SIP_UA_MAX_URI + 1];
	issize_t n;

	if (!url)
		return NULL;
	n = url_e(buf, sizeof(buf), url);
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return NULL;
	return strdup(buf);
}

/* Answers a 401/407 with the credentials; 0, or -EACCES when it cannot. */
static int auth_answer(nua_handle_t *nh, sip_t const *sip, const char *user, const char *pass,
		       const char *sid)
{
	msg_auth_t const *au = NULL;
	const char *realm;
	char cred[512];
	int n;

	if (sip)
		au = sip->sip_www_authenticate ? sip->sip_www_authenticate
					       : sip->sip_proxy_authenticate;
	if (!au || !user || !pass || !au->au_scheme) {
		log_warn(sid, "sip: challenged without credentials or challenge");
		return -EACCES;
	}
	realm = msg_params_find(au->au_params, "realm=");
	if (!realm) {
		log_warn(sid, "sip: challenge without a realm");
		return -EACCES;
	}
	n = snprintf(cred, sizeof(cred), "%s:%s:%s:%s", au->au_scheme, realm, user, pass);
	if (n < 0 || (size_t)n >= sizeof(cred))
		return -EACCES;
	log_debug(sid, "sip: answering %s challenge, realm %s, user %s", au->au_scheme, realm,
		  user);
	nua_authenticate(nh, NUTAG_AUTH(cred), TAG_END());
	return 0;
}

static bool challenge_stale(sip_t const *sip)
{
	msg_auth_t const *au = NULL;
	const char *stale;

	if (sip)
		au = sip->sip_www_authenticate ? sip->sip_www_authenticate
					       : sip->sip_proxy_authenticate;
	stale = au ? msg_params_find(au->au_params, "stale=") : NULL;
	return stale && strncasecmp(stale, "true", 4) == 0;
}

/* ---- sofia's log lines into ours ---- */

__attribute__((format(printf, 2, 0))) static void sofia_logger(void *stream, char const *fmt,
							       va_list ap)
{
	static char line[1024];
	static size_t len;
	int n;
	char *nl;

	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n < 0)
		return;
	len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	while ((nl = memchr(line, '\n', len)) || len == sizeof(line) - 1) {
		size_t cut = nl ? (size_t)(nl - line) : len;

		line[cut] = '\0';
		if (cut > 0)
			log_debug("sofia", "%s", line);
		cut = nl ? cut + 1 : len;
		memmove(line, line + cut, len - cut);
		len -= cut;
	}
}

/* ---- calls ---- */

static struct sip_call *call_new(struct sip_ua *ua, bool outgoing, void *arg)
{
	struct sip_call *call = calloc(1, sizeof(*call));

	if (!call)
		return NULL;
	call->home = su_home_new(sizeof(*call->home));
	if (!call->home) {
		free(call);
		return NULL;
	}
	call->h.kind = H_CALL;
	call->ua = ua;
	call->outgoing = outgoing;
	call->arg = arg;
	call->state = outgoing ? CS_CALLING : CS_INCOMING;
	call->next = ua->calls;
	if (call->next)
		call->next->pprev = &call->next;
	call->pprev = &ua->calls;
	ua->calls = call;
	return call;
}

static void call_free(struct sip_call *call)
{
	if (call->nh) {
		nua_handle_bind(call->nh, NULL);
		nua_handle_destroy(call->nh);
	}
	*call->pprev = call->next;
	if (call->next)
		call->next->pprev = call->pprev;
	su_home_unref(call->home);
	free(call->call_id);
	free(call->local_uri);
	free(call->from);
	free(call->from_display);
	free(call->to);
	free(call->ruri);
	free(call->remote_sdp);
	free(call->local_sdp);
	free(call->pending_sdp);
	free(call->refer_to);
	free(call->auth_user);
	free(call->password);
	free(call);
}

static const char *call_sid(const struct sip_call *call)
{
	return call->call_id ? call->call_id : "sip-call";
}

/* nua says the call is over: the one terminal callback, then the call goes. */
static void call_terminated(struct sip_call *call, int status, const char *phrase)
{
	const char *sid = call_sid(call);

	if (call->state == CS_DONE)
		return;
	call->state = CS_DONE;
	if (call->answered && !call->cancel_asked) {
		bool by_peer = call->peer_bye || !call->local_bye;
		const char *reason = call->peer_bye    ? "BYE from peer"
				     : call->local_bye ? "BYE sent"
						       : phrase_of(status, phrase);

		log_info(sid, "sip: call ended (%s)", reason);
		if (CALL_CB(call)->ended)
			CALL_CB(call)->ended(call, by_peer, reason, call->arg);
	} else if (!call->outgoing && call->cancelled) {
		log_info(sid, "sip: incoming call cancelled by the caller");
		if (CALL_CB(call)->cancelled)
			CALL_CB(call)->cancelled(call, call->arg);
	} else {
		int st = call->final_status;
		const char *ph = call->final_phrase;

		if (st < 300) {
			st = status >= 300 ? status : 500;
			ph = phrase_of(st, status >= 300 ? phrase : "Call failed");
		}
		log_info(sid, "sip: call failed: %d %s", st, ph);
		if (CALL_CB(call)->failed)
			CALL_CB(call)->failed(call, st, ph, call->arg);
	}
	call_free(call);
}

static void set_final(struct sip_call *call, int status, const char *phrase)
{
	call->final_status = status;
	snprintf(call->final_phrase, sizeof(call->final_phrase), "%s", phrase_of(status, phrase));
}

static void call_r_invite(struct sip_call *call, int status, const char *phrase, sip_t const *sip)
{
	const char *sid = call_sid(call);
	char *sdp;

	if (status == 100)
		return; /* provisional, or nua retrying (auth, redirect) */
	if ((status == 401 || status == 407) && (call->auth_tries == 0 || challenge_stale(sip))) {
		if (auth_answer(call->nh, sip, call->auth_user, call->password, sid) == 0) {
			call->auth_tries++;
			return;
		}
	}
	sdp = body_dup(sip, SDP_TYPE);
	if (call->reinvite_out) {
		if (status < 200) {
			free(sdp);
			return;
		}
		call->reinvite_out = false;
		log_info(sid, "sip: re-INVITE answered %d %s", status, phrase_of(status, phrase));
		if (status < 300) {
			if (call->pending_sdp) {
				set_str(&call->local_sdp, call->pending_sdp);
				call->pending_sdp = NULL;
			}
			if (sdp)
				set_str(&call->remote_sdp, xstrdup(sdp));
		} else {
			set_str(&call->pending_sdp, NULL);
		}
		if (CALL_CB(call)->reinvite_result)
			CALL_CB(call)->reinvite_result(call, status, phrase_of(status, phrase), sdp,
					       call->arg);
		free(sdp);
		return;
	}
	if (status < 200) {
		if (call->state == CS_CALLING)
			call->state = CS_EARLY;
		log_info(sid, "sip: progress %d %s%s", status, phrase_of(status, phrase),
			 sdp ? " with SDP" : "");
		if (sdp)
			set_str(&call->remote_sdp, xstrdup(sdp));
		if (CALL_CB(call)->progress && call->state != CS_DONE)
			CALL_CB(call)->progress(call, status, phrase_of(status, phrase), sdp, call->arg);
	} else if (status < 300) {
		if (call->state == CS_CONFIRMED) {
			free(sdp); /* a retransmitted or forked 2xx */
			return;
		}
		call->state = CS_CONFIRMED;
		call->answered = true;
		if (sdp)
			set_str(&call->remote_sdp, xstrdup(sdp));
		if (call->cancel_asked) {
			/* The 200 crossed our CANCEL: the call is not wanted any more. */
			log_info(sid, "sip: answered after CANCEL, sending BYE");
			set_final(call, 487, "Request Terminated");
			call->local_bye = true;
			nua_bye(call->nh, TAG_END());
		} else {
			log_info(sid, "sip: answered %d %s", status, phrase_of(status, phrase));
			if (!sdp)
				log_warn(sid, "sip: the 2xx carries no SDP answer");
			if (CALL_CB(call)->answered)
				CALL_CB(call)->answered(call, sdp, call->arg);
		}
	} else {
		log_info(sid, "sip: INVITE failed %d %s", status, phrase_of(status, phrase));
		set_final(call, status, phrase);
	}
	free(sdp);
}

static void respond_sdp(struct sip_call *call, int status, const char *phrase, const char *sdp)
{
	nua_respond(call->nh, status, phrase_of(status, phrase),
		    TAG_IF(sdp != NULL, SIPTAG_CONTENT_TYPE_STR(SDP_TYPE)),
		    TAG_IF(sdp != NULL, SIPTAG_PAYLOAD_STR(sdp)), TAG_END());
}

/* A re-INVITE from the peer on an established call. */
static void call_i_reinvite(struct sip_call *call, sip_t const *sip)
{
	const char *sid = call_sid(call);
	char *sdp = body_dup(sip, SDP_TYPE);

	if (call->state != CS_CONFIRMED || call->reinvite_in) {
		log_warn(sid, "sip: re-INVITE in the wrong state, refused");
		nua_respond(call->nh, 500, "Not Now", SIPTAG_RETRY_AFTER_STR("1"), TAG_END());
		free(sdp);
		return;
	}
	call->reinvite_in = true;
	call->offer_in = sdp != NULL;
	/* A session refresh: no offer, or the very same one. (An unchanged o= version alone is
	 * not trusted: some peers change the media without bumping it.) */
	if (!sdp || (call->remote_sdp && strcmp(sdp, call->remote_sdp) == 0)) {
		log_debug(sid, "sip: re-INVITE %s, answered with the current SDP",
			  sdp ? "with an unchanged offer" : "without SDP");
		call->reinvite_in = false;
		respond_sdp(call, 200, NULL, call->local_sdp);
		free(sdp);
		return;
	}
	log_info(sid, "sip: re-INVITE with a new offer");
	set_str(&call->pending_sdp, sdp);
	if (CALL_CB(call)->reinvite)
		CALL_CB(call)->reinvite(call, sdp, call->arg);
	else
		sip_call_respond(call, 488, NULL, NULL);
}

static char dtmf_digit(const char *v)
{
	static const char digits[] = "0123456789*#ABCD";
	char *end;
	long n;

	while (*v == ' ' || *v == '\t')
		v++;
	if (*v && strchr("*#ABCDabcd", *v))
		return (char)(*v >= 'a' ? *v - 'a' + 'A' : *v);
	n = strtol(v, &end, 10);
	if (end == v || n < 0 || n > 15)
		return 0;
	return digits[n];
}

static void call_i_info(struct sip_call *call, sip_t const *sip)
{
	const char *sid = call_sid(call);
	const char *type = sip && sip->sip_content_type ? sip->sip_content_type->c_type : NULL;
	char *body = body_dup(sip, NULL);
	char digit = 0;
	unsigned duration = 0;

	if (!body || !type) {
		log_debug(sid, "sip: INFO without a body");
		goto out;
	}
	if (strcasecmp(type, "application/dtmf-relay") == 0) {
		for (char *line = strtok(body, "\r\n"); line; line = strtok(NULL, "\r\n")) {
			char *eq = strchr(line, '=');

			if (!eq)
				continue;
			*eq = '\0';
			for (char *e = eq - 1; e >= line && (*e == ' ' || *e == '\t'); e--)
				*e = '\0';
			if (strcasecmp(line, "Signal") == 0)
				digit = dtmf_digit(eq + 1);
			else if (strcasecmp(line, "Duration") == 0)
				duration = (unsigned)strtoul(eq + 1, NULL, 10);
		}
	} else if (strcasecmp(type, "application/dtmf") == 0) {
		digit = dtmf_digit(body);
	} else {
		log_debug(sid, "sip: INFO with %s ignored", type);
		goto out;
	}
	if (!digit) {
		log_warn(sid, "sip: INFO %s without a valid digit", type);
		goto out;
	}
	if (duration > 10000)
		duration = 10000;
	log_info(sid, "sip: DTMF '%c' (%u ms) by INFO", digit, duration);
	if (CALL_CB(call)->dtmf)
		CALL_CB(call)->dtmf(call, digit, duration, call->arg);
out:
	free(body);
}

static void call_i_refer(struct sip_call *call, sip_t const *sip, tagi_t tags[])
{
	struct sip_ua *ua = call->ua;
	const char *sid = call_sid(call);
	sip_referred_by_t const *by = NULL;
	sip_event_t const *event = NULL;
	char *target = NULL, *referrer = NULL;
	int status = 603;

	tl_gets(tags, NUTAG_REFER_EVENT_REF(event), SIPTAG_REFERRED_BY_REF(by), TAG_END());
	if (sip && sip->sip_refer_to)
		target = uri_dup(sip->sip_refer_to->r_url);
	if (by)
		referrer = uri_dup(by->b_url);
	if (!target || call->state != CS_CONFIRMED || !event) {
		log_warn(sid, "sip: REFER refused (%s)",
			 !target  ? "no usable Refer-To"
			 : !event ? "no refer event"
				  : "call not established");
		status = target ? 603 : 400;
	} else if (CALL_CB(call)->refer) {
		status = CALL_CB(call)->refer(call, target, referrer ? referrer : "", call->arg);
		if (status < 200 || status > 699)
			status = 603;
	}
	log_info(sid, "sip: REFER to %s answered %d", target ? target : "?", status);
	if (status < 300) {
		set_str(&call->refer_to, target);
		target = NULL;
		call->refer_event = sip_event_dup(call->home, event);
	}
	nua_respond(call->nh, status, phrase_of(status, NULL), NUTAG_WITH_THIS(ua->nua), TAG_END());
	free(target);
	free(referrer);
}

/* "SIP/2.0 180 Ringing" from a NOTIFY's message/sipfrag body. */
static void call_i_notify(struct sip_call *call, sip_t const *sip)
{
	char *body = body_dup(sip, NULL);
	char phrase[64] = "";
	int status = 0;

	if (body && strncmp(body, "SIP/2.0 ", 8) == 0 &&
	    sscanf(body + 8, "%3d %63[^\r\n]", &status, phrase) >= 1 && status >= 100 &&
	    status <= 699) {
		log_info(call_sid(call), "sip: transfer progress %d %s", status, phrase);
		if (CALL_CB(call)->transfer_status)
			CALL_CB(call)->transfer_status(call, status, phrase, call->arg);
	}
	free(body);
}

static void call_event(struct sip_call *call, nua_event_t ev, int status, const char *phrase,
		       sip_t const *sip, tagi_t tags[])
{
	const char *sid = call_sid(call);
	int cs = -1;

	dialog_capture(call, ev, status, sip);
	switch (ev) {
	case nua_r_invite:
		call_r_invite(call, status, phrase, sip);
		break;
	case nua_i_invite:
		call_i_reinvite(call, sip);
		break;
	case nua_i_state:
		tl_gets(tags, NUTAG_CALLSTATE_REF(cs), TAG_END());
		log_debug(sid, "sip: call state %s (%d %s)",
			  nua_callstate_name((enum nua_callstate)cs), status,
			  phrase_of(status, phrase));
		if (cs == nua_callstate_terminated)
			call_terminated(call, status, phrase);
		break;
	case nua_i_cancel:
		call->cancelled = true;
		break;
	case nua_i_bye:
		call->peer_bye = true;
		break;
	case nua_i_ack:
		if (!call->outgoing && call->answered && !call->ack_seen) {
			char *sdp = body_dup(sip, SDP_TYPE);

			call->ack_seen = true;
			if (sdp)
				set_str(&call->remote_sdp, xstrdup(sdp));
			log_debug(sid, "sip: ACK received");
			if (CALL_CB(call)->answered)
				CALL_CB(call)->answered(call, sdp, call->arg);
			free(sdp);
		}
		break;
	case nua_i_info:
		call_i_info(call, sip);
		break;
	case nua_i_refer:
		call_i_refer(call, sip, tags);
		break;
	case nua_i_notify:
		call_i_notify(call, sip);
		break;
	case nua_r_refer:
		if (status >= 200) {
			log_info(sid, "sip: REFER answered %d %s", status,
				 phrase_of(status, phrase));
			if (CALL_CB(call)->transfer_status)
				CALL_CB(call)->transfer_status(call, status, phrase_of(status, phrase),
						       call->arg);
		}
		break;
	case nua_r_bye:
	case nua_r_cancel:
	case nua_r_info:
	case nua_r_notify:
		if (status >= 300)
			log_warn(sid, "sip: %s answered %d %s", nua_event_name(ev), status,
				 phrase_of(status, phrase));
		break;
	case nua_i_error:
	case nua_i_media_error:
		log_warn(sid, "sip: %s %d %s", nua_event_name(ev), status,
			 phrase_of(status, phrase));
		break;
	default:
		log_debug(sid, "sip: %s %d %s", nua_event_name(ev), status,
			  phrase_of(status, phrase));
		break;
	}
}

static void incoming_invite(struct sip_ua *ua, nua_handle_t *nh, sip_t const *sip)
{
	struct sip_call *call;
	struct sip_call_info info;
	const char *sid;

	if (!sip || !sip->sip_call_id || !sip->sip_from || !sip->sip_to || !sip->sip_request) {
		nua_respond(nh, 400, "Bad Request", TAG_END());
		nua_handle_destroy(nh);
		return;
	}
	call = call_new(ua, false, NULL);
	if (!call) {
		nua_respond(nh, 500, "Out Of Memory", TAG_END());
		nua_handle_destroy(nh);
		return;
	}
	call->nh = nh;
	nua_handle_bind(nh, &call->h);
	call->call_id = strndup(sip->sip_call_id->i_id, 256);
	call->from = uri_dup(sip->sip_from->a_url);
	call->from_display = xstrdup(sip->sip_from->a_display);
	call->to = uri_dup(sip->sip_to->a_url);
	call->local_uri = xstrdup(call->to);
	call->ruri = uri_dup(sip->sip_request->rq_url);
	call->remote_sdp = body_dup(sip, SDP_TYPE);
	call->offer_in = call->remote_sdp != NULL;
	dialog_from_invite(call, sip);
	sid = call_sid(call);
	if (!call->call_id || !call->from || !call->to || !call->ruri) {
		log_warn(sid, "sip: incoming INVITE with unusable headers, refused");
		set_final(call, 400, "Bad Request");
		nua_respond(nh, 400, "Bad Request", TAG_END());
		return;
	}
	if (sip->sip_payload && !call->remote_sdp)
		log_warn(sid, "sip: INVITE body is not usable SDP (type %s)",
			 sip->sip_content_type && sip->sip_content_type->c_type
			     ? sip->sip_content_type->c_type
			     : "?");
	log_info(sid, "sip: incoming INVITE from %s to %s (%s)", call->from, call->to,
		 call->remote_sdp ? "with offer" : "no offer");
	info = (struct sip_call_info){
	    .call_id = call->call_id,
	    .from = call->from,
	    .from_display = call->from_display,
	    .to = call->to,
	    .request_uri = call->ruri,
	    .sdp = call->remote_sdp,
	};
	if (ua->cb.incoming)
		ua->cb.incoming(ua, call, &info, ua->cb.arg);
	else
		sip_call_respond(call, 480, NULL, NULL);
}

/* ---- registrations ---- */

static void reg_free(struct sip_reg *reg)
{
	if (reg->nh) {
		nua_handle_bind(reg->nh, NULL);
		nua_handle_destroy(reg->nh);
	}
	*reg->pprev = reg->next;
	if (reg->next)
		reg->next->pprev = reg->pprev;
	free(reg->sid);
	free(reg->aor_uri);
	free(reg->from);
	free(reg->user);
	free(reg->auth_user);
	free(reg->password);
	free(reg);
}

static int granted_expires(const struct sip_reg *reg, sip_t const *sip)
{
	sip_contact_t const *m, *first = NULL;

	for (m = sip ? sip->sip_contact : NULL; m; m = m->m_next) {
		if (!m->m_expires)
			continue;
		if (!first)
			first = m;
		if (m->m_url->url_user && strcmp(m->m_url->url_user, reg->user) == 0)
			return atoi(m->m_expires);
	}
	if (first)
		return atoi(first->m_expires);
	if (sip && sip->sip_expires)
		return (int)sip->sip_expires->ex_delta;
	return (int)reg->expires;
}

static void learn_source(struct sip_ua *ua, nua_t *nua, const char *why);

static void reg_event(struct sip_reg *reg, nua_event_t ev, int status, const char *phrase,
		      sip_t const *sip)
{
	struct sip_ua *ua = reg->ua;
	int expires = 0;

	if (ev != nua_r_register && ev != nua_r_unregister) {
		log_debug(reg->sid, "sip: %s %d %s", nua_event_name(ev), status,
			  phrase_of(status, phrase));
		return;
	}
	if (status < 200)
		return;
	if ((status == 401 || status == 407) && (reg->auth_tries == 0 || challenge_stale(sip))) {
		if (auth_answer(reg->nh, sip, reg->auth_user, reg->password, reg->sid) == 0) {
			reg->auth_tries++;
			return;
		}
	}
	reg->auth_tries = 0;
	reg->pending = false;
	if (ev == nua_r_unregister || reg->destroying) {
		log_info(reg->sid, "sip: un-REGISTER answered %d %s", status,
			 phrase_of(status, phrase));
		if (ev == nua_r_unregister)
			reg_free(reg);
		return;
	}
	reg->registered = status < 300;
	if (reg->registered) {
		/* the registrar as reached: it sends this AOR's calls */
		learn_source(ua, ua->nua, "a registrar");
		expires = granted_expires(reg, sip);
		log_info(reg->sid, "sip: registered, expires %d", expires);
	} else {
		log_warn(reg->sid, "sip: REGISTER failed %d %s", status, phrase_of(status, phrase));
	}
	if (ua->cb.reg_result)
		ua->cb.reg_result(reg, status, phrase_of(status, phrase), expires, reg->arg);
}

/* ---- the nua callback ---- */

/* The address the message being handled came from (request or response), or NULL. */
static const struct sockaddr *current_source(nua_t *nua)
{
	msg_t *msg = nua_current_request(nua);
	su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : NULL;

	return ai && ai->ai_addr && ai->ai_addrlen > 0 ? (const struct sockaddr *)ai->ai_addr
						       : NULL;
}

static void learn_source(struct sip_ua *ua, nua_t *nua, const char *why)
{
	sip_trust_learn(ua->trust, current_source(nua), why);
}

/* A request outside any dialog: served when its source is trusted, else answered 403 here. */
static bool trusted_request(struct sip_ua *ua, nua_t *nua, nua_handle_t *nh, nua_event_t ev)
{
	const struct sockaddr *from = current_source(nua);
	char ip[INET6_ADDRSTRLEN];

	if (sip_trust_allows(ua->trust, from))
		return true;
	netacl_addr_str(from, ip, sizeof(ip));
	if (sip_trust_refused(ua->trust, evloop_now(ua->loop)))
		log_info("sip", "sip: %s from %s refused: not a trusted source (SIP_TRUSTED_SOURCES)",
			 nua_event_name(ev), ip);
	nua_respond(nh, 403, "Forbidden", NUTAG_WITH_THIS(nua), TAG_END());
	if (nh && nh != nua_default(nua))
		nua_handle_destroy(nh);
	return false;
}

static void nua_callback(nua_event_t ev, int status, char const *phrase, nua_t *nua,
			 nua_magic_t *ua, nua_handle_t *nh, nua_hmagic_t *h, sip_t const *sip,
			 tagi_t tags[])
{
	if (ev == nua_r_shutdown) {
		log_debug("sip", "sip: shutdown %d %s", status, phrase_of(status, phrase));
		if (status >= 200)
			ua->shutdown_done = true;
		return;
	}
	if (ua->closing)
		return;
	if (ua->via_proxy && status >= 100 && !nua_event_is_incoming_request(ev))
		learn_source(ua, nua, "answered through the outbound proxy");
	if (!h && nua_event_is_incoming_request(ev) && !trusted_request(ua, nua, nh, ev))
		return;
	if (ev == nua_i_options) {
		/* in a dialog or from a trusted source: our capabilities (nua adds them) */
		nua_respond(nh, 200, "OK", NUTAG_WITH_THIS(nua), TAG_END());
		if (!h && nh != nua_default(nua))
			nua_handle_destroy(nh);
		return;
	}
	if (h && h->kind == H_REG) {
		reg_event((struct sip_reg *)h, ev, status, phrase, sip);
		return;
	}
	if (h && h->kind == H_BYE) {
		bye_event((struct sip_bye *)h, ev, status, phrase);
		return;
	}
	if (h && h->kind == H_CALL) {
		call_event((struct sip_call *)h, ev, status, phrase, sip, tags);
		return;
	}
	/* A handle we do not know yet: a new incoming request, or nua's default handle. */
	switch (ev) {
	case nua_i_invite:
		incoming_invite(ua, nh, sip);
		return;
	case nua_i_refer:
	case nua_i_subscribe:
		log_info("sip", "sip: out-of-dialog %s refused", nua_event_name(ev));
		nua_respond(nh, 481, "Call Does Not Exist", NUTAG_WITH_THIS(nua), TAG_END());
		break;
	case nua_i_error:
		log_warn("sip", "sip: %d %s", status, phrase_of(status, phrase));
		break;
	default:
		log_debug("sip", "sip: %s %d %s", nua_event_name(ev), status,
			  phrase_of(status, phrase));
		break;
	}
	if (nh && nh != nua_default(nua) && nua_event_is_incoming_request(ev))
		nua_handle_destroy(nh);
}

/* ---- public API ---- */

struct sip_ua *sip_ua_new(struct evloop *loop, const struct sip_ua_config *cfg,
			  const struct sip_ua_callbacks *cb)
{
	struct sip_ua *ua;
	char url[256], sips[256], maddr[80] = "", why[200] = "", trusted[512];
	const char *bind = cfg->bind_ip ? cfg->bind_ip : "0.0.0.0";
	const char *host = cfg->advertise_ip ? cfg->advertise_ip : bind, *uri_host = NULL;
	bool tls = cfg->tls_dir && cfg->tls_port, guarded;
	const char *udp_only = "";
	int n;

	if (cfg->port == 0 || strlen(bind) > 64 || strlen(host) > 64 ||
	    (cfg->outbound_proxy && !uri_ok(cfg->outbound_proxy)) ||
	    (cfg->identity && !uri_ok(cfg->identity))) {
		log_error("sip", "sip: bad configuration (port, addresses, proxy or identity)");
		errno = EINVAL;
		return NULL;
	}
	/* sofia binds to maddr and names the URI host in Via and Contact; "*" binds every address
	 * and lets sofia pick the host it advertises. */
	if (strcmp(host, bind) != 0)
		snprintf(maddr, sizeof(maddr), ";maddr=%s", bind);
	else if (strcmp(bind, "0.0.0.0") == 0)
		uri_host = "*";
	if (strcmp(host, "0.0.0.0") == 0)
		host =
		    "127.0.0.1"; /* for Call-IDs and the default identity only: set advertise_ip */
	ua = calloc(1, sizeof(*ua));
	if (!ua)
		return NULL;
	ua->loop = loop;
	if (cb)
		ua->cb = *cb;
	ua->shutdown_ms = cfg->shutdown_ms ? cfg->shutdown_ms : 3000;
	ua->host = strdup(host);
	if ((cfg->identity ? asprintf(&ua->identity, "<%s>", cfg->identity)
			   : asprintf(&ua->identity, "<sip:rtmp2sip@%s>", host)) < 0)
		ua->identity = NULL;
	if (!ua->host || !ua->identity)
		goto out_free;

	ua->trust = sip_trust_new(cfg->trusted_sources, cfg->registrar, cfg->outbound_proxy, why,
				  sizeof(why));
	if (!ua->trust) {
		log_error("sip", "sip: SIP_TRUSTED_SOURCES: %s", why[0] ? why : strerror(errno));
		goto out_free;
	}
	ua->via_proxy = cfg->outbound_proxy != NULL;
	log_info("sip", "sip: requests outside a dialog served from: %s%s",
		 sip_trust_describe(ua->trust, trusted, sizeof(trusted)),
		 " (plus registrars that answer our REGISTERs)");
	su_log_redirect(NULL, sofia_logger, NULL);
	sip_guard_set_max(cfg->max_message ? cfg->max_message : SIP_GUARD_DEFAULT_MAX);
	guarded = sip_guard_check();
	if (!guarded) {
		/* Without the bound, one pipelined request on a stream crashes the parser. */
		log_error("sip", "sip: the parser guard is not in effect (libsofia-sip-ua binds "
				 "msg_extract internally): SIP over TCP and TLS disabled, UDP only");
		udp_only = ";transport=udp";
		tls = false;
	}
	n = snprintf(url, sizeof(url), "sip:%s:%u%s%s", uri_host ? uri_host : host, cfg->port,
		     maddr, udp_only);
	snprintf(sips, sizeof(sips), "sips:%s:%u%s", uri_host ? uri_host : host, cfg->tls_port,
		 maddr);
	if (n < 0 || (size_t)n >= sizeof(url))
		goto out_free;
	ua->nua = nua_create(
	    evloop_su_root(loop), nua_callback, ua, NUTAG_URL(url),
	    TAG_IF(tls, NUTAG_SIPS_URL(sips)), TAG_IF(tls, NUTAG_CERTIFICATE_DIR(cfg->tls_dir)),
	    TAG_IF(cfg->outbound_proxy, NUTAG_PROXY(cfg->outbound_proxy)),
	    SIPTAG_USER_AGENT_STR(cfg->user_agent ? cfg->user_agent : "rtmp2sip"),
	    SIPTAG_FROM_STR(ua->identity), NUTAG_MEDIA_ENABLE(0), NUTAG_AUTOANSWER(0),
	    NUTAG_AUTOACK(1), NUTAG_AUTOALERT(0), NUTAG_ENABLEMESSAGE(0),
	    SIPTAG_ALLOW_STR(SIP_UA_ALLOW), SIPTAG_SUPPORTED_STR("timer"),
	    NUTAG_APPL_METHOD("REFER, OPTIONS"), NUTAG_SESSION_TIMER(0), NUTAG_MIN_SE(90),
	    NUTAG_SESSION_REFRESHER(nua_remote_refresher), NUTAG_UPDATE_REFRESH(1),
	    TAG_IF(maddr[0], NUTAG_OUTBOUND("no-natify")), NTATAG_MAXSIZE(sip_guard_max()),
	    TPTAG_IDLE(cfg->tcp_idle_ms ? cfg->tcp_idle_ms : 600000u),
	    TPTAG_TIMEOUT(cfg->tcp_recv_timeout_ms ? cfg->tcp_recv_timeout_ms : 32000u),
	    TAG_IF(cfg->tcp_keepalive_ms, TPTAG_KEEPALIVE(cfg->tcp_keepalive_ms)), TAG_END());
	if (!ua->nua) {
		log_error("sip", "sip: cannot start the SIP stack on %s%s%s", url,
			  tls ? " and " : "", tls ? sips : "");
		goto out_free;
	}
	log_info("sip", "sip: listening on %s (%s)%s%s, advertising %s; messages up to %zu bytes",
		 url, guarded ? "udp, tcp" : "udp", tls ? " and " : "", tls ? sips : "",
		 uri_host ? "each interface's address" : host, sip_guard_max());
	return ua;

out_free:
	sip_trust_destroy(&ua->trust);
	free(ua->host);
	free(ua->identity);
	free(ua);
	errno = ENOMEM;
	return NULL;
}

void sip_ua_get_stats(const struct sip_ua *ua, struct sip_ua_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->untrusted = ua ? sip_trust_refused_count(ua->trust) : 0;
	st->too_large = sip_guard_too_large();
	st->malformed = sip_guard_malformed();
}

void sip_ua_destroy(struct sip_ua **uap)
{
	struct sip_ua *ua = uap ? *uap : NULL;
	su_root_t *root;
	struct timespec t0, t;
	long waited = 0;

	if (!ua)
		return;
	*uap = NULL;
	root = evloop_su_root(ua->loop);
	ua->closing = true;
	nua_shutdown(ua->nua);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!ua->shutdown_done && waited < (long)ua->shutdown_ms) {
		su_root_step(root, 50);
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
	}
	while (ua->calls)
		call_free(ua->calls);
	while (ua->regs)
		reg_free(ua->regs);
	while (ua->byes)
		bye_free(ua->byes);
	if (!ua->shutdown_done) {
		/* nua_destroy() refuses an unfinished shutdown: the stack is left behind, and so
		 * is @ua, which its callback still receives (and ignores: closing is set). */
		log_warn("sip", "sip: shutdown not confirmed within %u ms, SIP stack abandoned",
			 ua->shutdown_ms);
		return;
	}
	nua_destroy(ua->nua);
	sip_trust_destroy(&ua->trust);
	free(ua->host);
	free(ua->identity);
	free(ua);
}

struct sip_reg *sip_ua_register(struct sip_ua *ua, const char *aor, const char *auth_user,
				const char *password, const char *display, unsigned expires,
				const char *registrar, void *arg)
{
	struct sip_reg *reg;
	const char *at;
	char exp[16];

	if (aor && strncasecmp(aor, "sip:", 4) == 0)
		aor += 4;
	at = aor ? strchr(aor, '@') : NULL;
	if (!at || at == aor || !at[1] || strlen(aor) > 256 || strpbrk(aor, " \t\r\n<>\";") ||
	    (display && !display_ok(display)) || (registrar && !uri_ok(registrar)) ||
	    (auth_user && strpbrk(auth_user, ":\r\n")) || (password && strpbrk(password, "\r\n")) ||
	    ua->closing) {
		errno = EINVAL;
		return NULL;
	}
	reg = calloc(1, sizeof(*reg));
	if (!reg)
		return NULL;
	reg->h.kind = H_REG;
	reg->ua = ua;
	reg->arg = arg;
	reg->expires = expires ? expires : 3600;
	reg->user = strndup(aor, (size_t)(at - aor));
	reg->auth_user = xstrdup(auth_user ? auth_user : reg->user);
	reg->password = xstrdup(password);
	if (asprintf(&reg->aor_uri, "sip:%s", aor) < 0)
		reg->aor_uri = NULL;
	if (asprintf(&reg->sid, "reg:%s", aor) < 0)
		reg->sid = NULL;
	if (asprintf(&reg->from, "%s%s%s<sip:%s>", display ? "\"" : "", display ? display : "",
		     display ? "\" " : "", aor) < 0)
		reg->from = NULL;
	reg->next = ua->regs;
	if (reg->next)
		reg->next->pprev = &reg->next;
	reg->pprev = &ua->regs;
	ua->regs = reg;
	if (!reg->user || !reg->auth_user || (password && !reg->password) || !reg->aor_uri ||
	    !reg->sid || !reg->from)
		goto out_free;
	reg->nh = nua_handle(ua->nua, &reg->h, SIPTAG_TO_STR(reg->aor_uri),
			     SIPTAG_FROM_STR(reg->from), TAG_END());
	if (!reg->nh)
		goto out_free;
	snprintf(exp, sizeof(exp), "%u", reg->expires);
	reg->pending = true;
	nua_register(reg->nh, NUTAG_M_USERNAME(reg->user),
		     TAG_IF(display != NULL, NUTAG_M_DISPLAY(display)), SIPTAG_EXPIRES_STR(exp),
		     TAG_IF(registrar != NULL, NUTAG_REGISTRAR(registrar)), TAG_END());
	log_info(reg->sid, "sip: REGISTER %s (expires %u)%s%s", reg->aor_uri, reg->expires,
		 registrar ? " at " : "", registrar ? registrar : "");
	return reg;

out_free:
	reg_free(reg);
	errno = ENOMEM;
	return NULL;
}

void sip_reg_destroy(struct sip_reg **regp)
{
	struct sip_reg *reg = regp ? *regp : NULL;

	if (!reg)
		return;
	*regp = NULL;
	if (reg->destroying)
		return;
	reg->destroying = true;
	reg->arg = NULL;
	if (reg->registered || reg->pending) {
		log_info(reg->sid, "sip: un-REGISTER %s", reg->aor_uri);
		reg->pending = true;
		nua_unregister(reg->nh, TAG_END());
		return;
	}
	reg_free(reg);
}

void sip_reg_drop(struct sip_reg **regp)
{
	struct sip_reg *reg = regp ? *regp : NULL;

	if (!reg)
		return;
	*regp = NULL;
	if (reg->destroying)
		return;
	log_info(reg->sid, "sip: %s handed over (no un-REGISTER)", reg->aor_uri);
	reg_free(reg);
}

bool sip_reg_registered(const struct sip_reg *reg)
{
	return reg->registered;
}

/* Sends the INVITE of a new outgoing call. @referrer: the call whose accepted REFER this one
 * carries out (nua then NOTIFYs its peer). @contact_user: the user part of our Contact. */
static struct sip_call *invite(struct sip_ua *ua, const char *from, const char *contact_user,
			       const char *auth_user, const char *password, const char *target,
			       const char *sdp, void *arg, struct sip_call *referrer)
{
	struct sip_call *call;
	char *to = NULL;

	if (ua->closing || !uri_ok(target) || !sdp || strlen(sdp) > SIP_UA_MAX_BODY) {
		errno = EINVAL;
		return NULL;
	}
	call = call_new(ua, true, arg);
	if (!call)
		return NULL;
	call->call_id = new_call_id(ua->host);
	call->local_uri = xstrdup(from);
	call->to = xstrdup(target);
	call->local_sdp = xstrdup(sdp);
	call->auth_user = xstrdup(auth_user);
	call->password = xstrdup(password);
	if (!call->call_id || !call->local_uri || !call->to || !call->local_sdp ||
	    (auth_user && !call->auth_user) || (password && !call->password))
		goto out_free;
	/* <...>: URI parameters such as ;transport=tcp stay in the URI (and so in the
	 * Request-URI) instead of becoming To header parameters. */
	if (asprintf(&to, "<%s>", target) < 0)
		to = NULL;
	if (!to)
		goto out_free;
	call->nh =
	    nua_handle(ua->nua, &call->h, SIPTAG_TO_STR(to), SIPTAG_FROM_STR(from), TAG_END());
	free(to);
	if (!call->nh)
		goto out_free;
	nua_invite(
	    call->nh, SIPTAG_CALL_ID_STR(call->call_id),
	    TAG_IF(contact_user != NULL, NUTAG_M_USERNAME(contact_user)),
	    SIPTAG_CONTENT_TYPE_STR(SDP_TYPE), SIPTAG_PAYLOAD_STR(sdp),
	    TAG_IF(referrer != NULL, NUTAG_NOTIFY_REFER(referrer ? referrer->nh : NULL)),
	    TAG_IF(referrer != NULL, NUTAG_REFER_EVENT(referrer ? referrer->refer_event : NULL)),
	    TAG_END());
	log_info(call_sid(call), "sip: INVITE %s from %s%s%s", target, from,
		 referrer ? " for the REFER of " : "", referrer ? call_sid(referrer) : "");
	return call;

out_free:
	call_free(call);
	errno = ENOMEM;
	return NULL;
}

struct sip_call *sip_call_invite(struct sip_ua *ua, struct sip_reg *reg, const char *target,
				 const char *sdp, void *arg)
{
	if (reg)
		return invite(ua, reg->from, reg->user, reg->auth_user, reg->password, target, sdp,
			      arg, NULL);
	return invite(ua, ua->identity, NULL, NULL, NULL, target, sdp, arg, NULL);
}

struct sip_call *sip_call_invite_referred(struct sip_call *referrer, const char *sdp, void *arg)
{
	if (!referrer->refer_to || !referrer->refer_event || referrer->state == CS_DONE) {
		errno = EINVAL;
		return NULL;
	}
	return invite(
	    referrer->ua, referrer->outgoing ? referrer->local_uri : referrer->ua->identity, NULL,
	    referrer->auth_user, referrer->password, referrer->refer_to, sdp, arg, referrer);
}

int sip_call_respond(struct sip_call *call, int status, const char *phrase, const char *sdp)
{
	const char *sid = call_sid(call);

	if (status < 101 || status > 699 || call->state == CS_DONE ||
	    (sdp && strlen(sdp) > SIP_UA_MAX_BODY) ||
	    (phrase && (strlen(phrase) > 64 || strpbrk(phrase, "\r\n"))))
		return -EINVAL;
	if (call->reinvite_in) {
		if (status < 200 || (status < 300 && !sdp))
			return -EINVAL;
		call->reinvite_in = false;
		if (status < 300) {
			set_str(&call->local_sdp, strdup(sdp));
			if (call->pending_sdp) {
				set_str(&call->remote_sdp, call->pending_sdp);
				call->pending_sdp = NULL;
			}
		} else {
			set_str(&call->pending_sdp, NULL);
		}
		log_info(sid, "sip: re-INVITE answered %d", status);
		respond_sdp(call, status, phrase, status < 300 ? sdp : NULL);
		return 0;
	}
	if (call->outgoing || call->state != CS_INCOMING)
		return -EINVAL;
	if (status >= 200 && status < 300 && !sdp)
		return -EINVAL; /* the answer, or our offer when the INVITE had none */
	if (sdp && status < 300)
		set_str(&call->local_sdp, strdup(sdp));
	if (status >= 200 && status < 300) {
		call->state = CS_CONFIRMED;
		call->answered = true;
	} else if (status >= 300) {
		set_final(call, status, phrase);
	}
	log_info(sid, "sip: responding %d %s%s", status, phrase_of(status, phrase),
		 sdp && status < 300 ? " with SDP" : "");
	respond_sdp(call, status, phrase, status < 300 ? sdp : NULL);
	return 0;
}

int sip_call_cancel(struct sip_call *call)
{
	if (!call->outgoing || (call->state != CS_CALLING && call->state != CS_EARLY) ||
	    call->cancel_asked)
		return -EINVAL;
	call->cancel_asked = true;
	log_info(call_sid(call), "sip: CANCEL");
	nua_cancel(call->nh, TAG_END());
	return 0;
}

int sip_call_bye(struct sip_call *call)
{
	if (call->state != CS_CONFIRMED || call->local_bye)
		return -EINVAL;
	call->local_bye = true;
	log_info(call_sid(call), "sip: BYE");
	nua_bye(call->nh, TAG_END());
	return 0;
}

int sip_call_hangup(struct sip_call *call)
{
	switch (call->state) {
	case CS_CALLING:
	case CS_EARLY:
		return sip_call_cancel(call);
	case CS_INCOMING:
		return sip_call_respond(call, 480, NULL, NULL);
	case CS_CONFIRMED:
		return sip_call_bye(call);
	default:
		return -EINVAL;
	}
}

int sip_call_reinvite(struct sip_call *call, const char *sdp)
{
	if (call->state != CS_CONFIRMED || call->local_bye || call->reinvite_out ||
	    call->reinvite_in || !sdp || strlen(sdp) > SIP_UA_MAX_BODY)
		return -EINVAL;
	set_str(&call->pending_sdp, strdup(sdp));
	if (!call->pending_sdp)
		return -ENOMEM;
	call->reinvite_out = true;
	log_info(call_sid(call), "sip: re-INVITE");
	nua_invite(call->nh, SIPTAG_CONTENT_TYPE_STR(SDP_TYPE), SIPTAG_PAYLOAD_STR(sdp), TAG_END());
	return 0;
}

int sip_call_refer(struct sip_call *call, const char *target)
{
	if (call->state != CS_CONFIRMED || call->local_bye || !uri_ok(target))
		return -EINVAL;
	log_info(call_sid(call), "sip: REFER to %s", target);
	nua_refer(call->nh, SIPTAG_REFER_TO_STR(target), TAG_END());
	return 0;
}

int sip_call_info_dtmf(struct sip_call *call, char digit, unsigned duration_ms)
{
	char body[64];
	char d = digit >= 'a' && digit <= 'd' ? (char)(digit - 'a' + 'A') : digit;

	if (call->state != CS_CONFIRMED || call->local_bye || !d || !strchr("0123456789*#ABCD", d))
		return -EINVAL;
	if (duration_ms == 0)
		duration_ms = 160;
	if (duration_ms > 10000)
		duration_ms = 10000;
	snprintf(body, sizeof(body), "Signal=%c\r\nDuration=%u\r\n", d, duration_ms);
	log_info(call_sid(call), "sip: DTMF '%c' (%u ms) by INFO", d, duration_ms);
	nua_info(call->nh, SIPTAG_CONTENT_TYPE_STR("application/dtmf-relay"),
		 SIPTAG_PAYLOAD_STR(body), TAG_END());
	return 0;
}

const char *sip_call_callid(const struct sip_call *call)
{
	return call->call_id;
}

const char *sip_call_remote_sdp(const struct sip_call *call)
{
	return call->remote_sdp;
}

void sip_call_set_handler(struct sip_call *call, const struct sip_ua_callbacks *cb, void *arg)
{
	call->cb = cb;
	call->arg = arg;
}

void *sip_call_arg(const struct sip_call *call)
{
	return call->arg;
}

void sip_call_set_arg(struct sip_call *call, void *arg)
{
	call->arg = arg;
}

struct sip_ua *sip_call_ua(const struct sip_call *call)
{
	return call->ua;
}

struct sip_call *sip_call_invite_auth(struct sip_ua *ua, const char *from, const char *auth_user,
				      const char *password, const char *target, const char *sdp,
				      void *arg)
{
	if ((from && !uri_ok(from)) || !auth_user || !auth_user[0] || !password ||
	    strpbrk(auth_user, ":\"\\\r\n") || strpbrk(password, "\r\n")) {
		errno = EINVAL;
		return NULL;
	}
	return invite(ua, from ? from : ua->identity, NULL, auth_user, password, target, sdp, arg,
		      NULL);
}

/* ---- dialog data (for the call records) ---- */

/*
 * Copies @src into @dst when it fits and is printable ASCII without spaces (what a call record
 * stores); else leaves @dst empty. Returns true when copied.
 */
static bool dlg_put(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	dst[0] = '\0';
	if (!src || n == 0 || n >= size)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)src[i] <= 0x20 || (unsigned char)src[i] >= 0x7f)
			return false;
	memcpy(dst, src, n + 1);
	return true;
}

/* Like dlg_put() for a URI; true when @dst changed. */
static bool dlg_put_uri(char *dst, size_t size, url_t const *url)
{
	char buf[SIP_DIALOG_URI_MAX + 1], old[SIP_DIALOG_URI_MAX + 1];
	issize_t n;

	if (!url)
		return false;
	n = url_e(buf, sizeof(buf), url);
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return false;
	snprintf(old, sizeof(old), "%s", dst);
	dlg_put(dst, size, buf);
	return strcmp(old, dst) != 0;
}

/* Sets @dst to @tag; true when it changed. */
static bool dlg_put_tag(char *dst, size_t size, const char *tag)
{
	char old[SIP_DIALOG_TAG_MAX + 1];

	if (!tag || !tag[0])
		return false;
	snprintf(old, sizeof(old), "%s", dst);
	dlg_put(dst, size, tag);
	return strcmp(old, dst) != 0;
}

/*
 * The route set from Record-Route @rr as "<u1>,<u2>" in request order: as received for the
 * callee, reversed for the caller (RFC 3261 12.1.1, 12.1.2). More than SIP_DIALOG_ROUTES
 * entries, or a set too long to store, leaves it empty (logged). True when it changed.
 */
static bool dlg_put_route(struct sip_call *call, sip_record_route_t const *rr, bool reverse)
{
	char *out = call->dlg.route, old[SIP_DIALOG_ROUTE_MAX + 1], uri[SIP_DIALOG_URI_MAX + 1];
	const char *items[SIP_DIALOG_ROUTES];
	char bufs[SIP_DIALOG_ROUTES][SIP_DIALOG_URI_MAX + 1];
	size_t n = 0, len = 0;

	snprintf(old, sizeof(old), "%s", out);
	out[0] = '\0';
	for (; rr; rr = rr->r_next) {
		if (n == SIP_DIALOG_ROUTES || !dlg_put_uri(bufs[n], sizeof(bufs[n]), rr->r_url)) {
			log_warn(call_sid(call), "sip: route set too long or unusable: not stored");
			return strcmp(old, out) != 0;
		}
		items[n] = bufs[n];
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		const char *u = items[reverse ? n - 1 - i : i];
		int k = snprintf(uri, sizeof(uri), "%s<%s>", i ? "," : "", u);

		if (k < 0 || len + (size_t)k > SIP_DIALOG_ROUTE_MAX) {
			log_warn(call_sid(call), "sip: route set too long: not stored");
			out[0] = '\0';
			return strcmp(old, out) != 0;
		}
		memcpy(out + len, uri, (size_t)k + 1);
		len += (size_t)k;
	}
	return strcmp(old, out) != 0;
}

/* "udp", "tcp", "tls", "sctp" from the top Via's protocol ("SIP/2.0/UDP"), else "". */
static void dlg_put_transport(char *dst, size_t size, sip_via_t const *v)
{
	const char *p = v && v->v_protocol ? strrchr(v->v_protocol, '/') : NULL;
	char t[8] = "";

	dst[0] = '\0';
	if (!p || strlen(p + 1) >= sizeof(t))
		return;
	for (size_t i = 0; p[1 + i]; i++)
		t[i] = (char)((p[1 + i] >= 'A' && p[1 + i] <= 'Z') ? p[1 + i] + 32 : p[1 + i]);
	if (strcmp(t, "udp") == 0 || strcmp(t, "tcp") == 0 || strcmp(t, "tls") == 0 ||
	    strcmp(t, "sctp") == 0)
		snprintf(dst, size, "%s", t);
}

/* The peer's source from the top Via of its request (received / rport, RFC 3581). */
static void dlg_put_dest(char *dst, size_t size, sip_via_t const *v)
{
	const char *host, *port;
	char buf[SIP_DIALOG_DEST_MAX + 1];
	bool v6;
	int n;

	dst[0] = '\0';
	if (!v || !v->v_host)
		return;
	host = v->v_received && v->v_received[0] ? v->v_received : v->v_host;
	port = v->v_rport && v->v_rport[0] ? v->v_rport : v->v_port;
	if (!port || !port[0])
		port = "5060";
	v6 = strchr(host, ':') && host[0] != '[';
	n = snprintf(buf, sizeof(buf), "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
	if (n > 0 && (size_t)n < sizeof(buf))
		dlg_put(dst, size, buf);
}

/* The callee's side of a dialog, from the INVITE. */
static void dialog_from_invite(struct sip_call *call, sip_t const *sip)
{
	struct sip_dialog_info *d = &call->dlg;

	d->outgoing = false;
	dlg_put(d->call_id, sizeof(d->call_id), call->call_id);
	dlg_put_tag(d->remote_tag, sizeof(d->remote_tag), sip->sip_from->a_tag);
	dlg_put_uri(d->remote_uri, sizeof(d->remote_uri), sip->sip_from->a_url);
	dlg_put_uri(d->local_uri, sizeof(d->local_uri), sip->sip_to->a_url);
	if (sip->sip_contact)
		dlg_put_uri(d->remote_target, sizeof(d->remote_target), sip->sip_contact->m_url);
	dlg_put_route(call, sip->sip_record_route, false);
	dlg_put_transport(d->transport, sizeof(d->transport), sip->sip_via);
	dlg_put_dest(d->dest, sizeof(d->dest), sip->sip_via);
}

/* Events that carry the response to one of our requests on the call's handle. */
static bool our_response(nua_event_t ev)
{
	switch (ev) {
	case nua_r_invite:
	case nua_r_bye:
	case nua_r_info:
	case nua_r_refer:
	case nua_r_notify:
	case nua_r_update:
	case nua_r_prack:
	case nua_r_method:
	case nua_r_message:
	case nua_r_options:
		return true;
	default:
		return false;
	}
}

/* Learns from every message of the call what a later in-dialog request needs; tells the
 * observer when something changed. Runs before the event is handled. */
static void dialog_capture(struct sip_call *call, nua_event_t ev, int status, sip_t const *sip)
{
	struct sip_dialog_info *d = &call->dlg;
	bool changed = false;

	if (!sip)
		return;
	if (!d->call_id[0] && call->call_id)
		changed |= dlg_put(d->call_id, sizeof(d->call_id), call->call_id);
	d->outgoing = call->outgoing;
	if (our_response(ev) && sip->sip_status && sip->sip_cseq &&
	    sip->sip_cseq->cs_seq > d->local_cseq && sip->sip_cseq->cs_seq <= INT32_MAX) {
		d->local_cseq = sip->sip_cseq->cs_seq;
		changed = true;
	}
	if (ev == nua_r_invite && call->outgoing && !d->confirmed && !call->reinvite_out &&
	    status > 100 && status < 300 && sip->sip_from && sip->sip_to && sip->sip_to->a_tag) {
		/* The caller's dialog (early on 1xx with a tag, fixed by the 2xx). */
		changed |= dlg_put_tag(d->local_tag, sizeof(d->local_tag), sip->sip_from->a_tag);
		changed |= dlg_put_tag(d->remote_tag, sizeof(d->remote_tag), sip->sip_to->a_tag);
		changed |= dlg_put_uri(d->local_uri, sizeof(d->local_uri), sip->sip_from->a_url);
		changed |= dlg_put_uri(d->remote_uri, sizeof(d->remote_uri), sip->sip_to->a_url);
		if (sip->sip_contact)
			changed |= dlg_put_uri(d->remote_target, sizeof(d->remote_target),
					       sip->sip_contact->m_url);
		changed |= dlg_put_route(call, sip->sip_record_route, true);
		dlg_put_transport(d->transport, sizeof(d->transport), sip->sip_via);
		if (status >= 200)
			d->confirmed = true;
	} else if ((ev == nua_r_invite && status >= 200 && status < 300 && d->confirmed) ||
		   ev == nua_i_invite || ev == nua_i_update) {
		/* Target refresh: a re-INVITE (UPDATE) or its 2xx. */
		if (sip->sip_contact && (ev != nua_i_invite || call->state == CS_CONFIRMED))
			changed |= dlg_put_uri(d->remote_target, sizeof(d->remote_target),
					       sip->sip_contact->m_url);
	} else if (ev == nua_i_ack && !call->outgoing && sip->sip_to) {
		/* The ACK of our 2xx carries the tag nua gave us. */
		changed |= dlg_put_tag(d->local_tag, sizeof(d->local_tag), sip->sip_to->a_tag);
		if (!d->confirmed)
			changed = true;
		d->confirmed = true;
	}
	if (changed && call->ua->dialog_cb)
		call->ua->dialog_cb(call, call->ua->dialog_arg);
}

/* The URI of a name-addr ("Name" <sip:u@h>;tag=x -> sip:u@h), or the string itself. */
static void dlg_put_addr(char *dst, size_t size, const char *addr)
{
	const char *lt = addr ? strchr(addr, '<') : NULL;
	const char *gt = lt ? strchr(lt, '>') : NULL;
	char buf[SIP_DIALOG_URI_MAX + 1];

	dst[0] = '\0';
	if (lt && gt && (size_t)(gt - lt - 1) < sizeof(buf)) {
		memcpy(buf, lt + 1, (size_t)(gt - lt - 1));
		buf[gt - lt - 1] = '\0';
		dlg_put(dst, size, buf);
	} else if (addr && !lt) {
		dlg_put(dst, size, addr);
	}
}

int sip_call_dialog(const struct sip_call *call, struct sip_dialog_info *out)
{
	const struct sip_dialog_info *d = &call->dlg;

	*out = *d;
	if (!out->call_id[0] && call->call_id)
		dlg_put(out->call_id, sizeof(out->call_id), call->call_id);
	out->outgoing = call->outgoing;
	/* Before any response: our identity and the target as the INVITE names them. */
	if (!out->local_uri[0])
		dlg_put_addr(out->local_uri, sizeof(out->local_uri), call->local_uri);
	if (!out->remote_uri[0])
		dlg_put_addr(out->remote_uri, sizeof(out->remote_uri),
			     call->outgoing ? call->to : call->from);
	if (!out->call_id[0] || !d->local_tag[0] || !d->remote_tag[0] || !d->local_uri[0] ||
	    !d->remote_uri[0] || !d->remote_target[0])
		return -EAGAIN;
	return 0;
}

struct sip_call *sip_ua_find_call(struct sip_ua *ua, const char *call_id)
{
	if (!ua || !call_id)
		return NULL;
	for (struct sip_call *c = ua->calls; c; c = c->next)
		if (c->call_id && strcmp(c->call_id, call_id) == 0)
			return c;
	return NULL;
}

void sip_ua_set_dialog_observer(struct sip_ua *ua, void (*cb)(struct sip_call *call, void *arg),
				void *arg)
{
	ua->dialog_cb = cb;
	ua->dialog_arg = cb ? arg : NULL;
}

/* ---- BYE in a dialog held by another process ---- */

/*
 *   sip_ua_bye_dialog --> handle with Call-ID, From/To with the tags --> nua_method BYE in a
 *   new dialog leg whose local CSeq is local_cseq (the BYE gets local_cseq + 1)
 *        --> 200 / 481 / other final --> callback, handle destroyed
 *        --> 500 (CSeq behind the peer's) --> once more with local_cseq + 1000
 */
#define BYE_RETRY_CSEQ_STEP 1000

struct sip_bye {
	struct sip_hobj h;
	struct sip_ua *ua;
	nua_handle_t *nh;
	struct sip_dialog_info d;
	char sid[96];
	uint32_t cseq_base; /* the BYE carries cseq_base + 1 */
	bool retried;
	sip_bye_cb cb;
	void *arg;
	struct sip_bye *next, **pprev;
};

static void bye_free(struct sip_bye *b)
{
	if (b->nh) {
		nua_handle_bind(b->nh, NULL);
		nua_handle_destroy(b->nh);
	}
	*b->pprev = b->next;
	if (b->next)
		b->next->pprev = b->pprev;
	free(b);
}

/* True when the first "<uri>" of a route set has the lr parameter (loose routing). */
static bool first_route_loose(const char *route)
{
	const char *end = strchr(route, '>');
	const char *p = route;

	if (!end)
		return false;
	while ((p = strchr(p, ';')) && p < end) {
		p++;
		if (strncasecmp(p, "lr", 2) == 0 && (p[2] == ';' || p[2] == '>' || p[2] == '='))
			return true;
	}
	return false;
}

/* Builds and sends the BYE of @b with CSeq cseq_base + 1. 0 or -ENOMEM / -EINVAL. */
static int bye_send(struct sip_bye *b)
{
	const struct sip_dialog_info *d = &b->d;
	char from[SIP_DIALOG_URI_MAX + SIP_DIALOG_TAG_MAX + 16];
	char to[SIP_DIALOG_URI_MAX + SIP_DIALOG_TAG_MAX + 16];
	char cseq[32], ruri[SIP_DIALOG_URI_MAX + 1], proxy[SIP_DIALOG_DEST_MAX + 40] = "";
	char routes[SIP_DIALOG_ROUTE_MAX + SIP_DIALOG_URI_MAX + 8] = "";

	snprintf(from, sizeof(from), "<%s>;tag=%s", d->local_uri, d->local_tag);
	snprintf(to, sizeof(to), "<%s>;tag=%s", d->remote_uri, d->remote_tag);
	snprintf(cseq, sizeof(cseq), "%u BYE", b->cseq_base);
	snprintf(ruri, sizeof(ruri), "%s", d->remote_target);
	if (d->route[0] && first_route_loose(d->route)) {
		snprintf(routes, sizeof(routes), "%s", d->route);
	} else if (d->route[0]) {
		/* Strict first route: it becomes the Request-URI, the target goes last. */
		const char *end = strchr(d->route, '>');
		size_t n = end ? (size_t)(end - d->route - 1) : 0;

		if (!end || d->route[0] != '<' || n == 0 || n >= sizeof(ruri))
			return -EINVAL;
		memcpy(ruri, d->route + 1, n);
		ruri[n] = '\0';
		snprintf(routes, sizeof(routes), "%s%s<%s>", end[1] == ',' ? end + 2 : "",
			 end[1] == ',' ? "," : "", d->remote_target);
	} else if (d->dest[0]) {
		snprintf(proxy, sizeof(proxy), "sip:%s;transport=%s", d->dest,
			 d->transport[0] ? d->transport : "udp");
	}
	b->nh = nua_handle(b->ua->nua, &b->h, SIPTAG_CALL_ID_STR(d->call_id), SIPTAG_FROM_STR(from),
			   SIPTAG_TO_STR(to), TAG_IF(proxy[0], NUTAG_PROXY(proxy)), TAG_END());
	if (!b->nh)
		return -ENOMEM;
	/* NUTAG_DIALOG(2): nua makes a dialog leg from these headers, its local CSeq from ours.
	 * None sent yet (the callee's side, 0): sofia picks the initial one, as RFC 3261 12.2.1.1
	 * says for an empty local sequence number. */
	nua_method(b->nh, NUTAG_METHOD("BYE"), NUTAG_URL(ruri), NUTAG_DIALOG(2),
		   TAG_IF(b->cseq_base > 0, SIPTAG_CSEQ_STR(cseq)), SIPTAG_CONTACT(SIP_NONE),
		   TAG_IF(routes[0], SIPTAG_ROUTE_STR(routes)), TAG_END());
	snprintf(cseq, sizeof(cseq), "%u", b->cseq_base + 1);
	log_info(b->sid, "sip: BYE for an orphaned dialog (Call-ID %s, CSeq %s) to %s%s%s%s%s",
		 d->call_id, b->cseq_base ? cseq : "new", ruri, routes[0] ? " via " : "", routes,
		 proxy[0] ? " at " : "", proxy);
	return 0;
}

static void bye_event(struct sip_bye *b, nua_event_t ev, int status, const char *phrase)
{
	sip_bye_cb cb = b->cb;
	void *arg = b->arg;

	if (ev != nua_r_method) {
		log_debug(b->sid, "sip: %s %d %s on an orphan BYE handle", nua_event_name(ev),
			  status, phrase_of(status, phrase));
		return;
	}
	if (status < 200)
		return;
	if (status == 500 && !b->retried && b->cseq_base > 0 &&
	    b->cseq_base < INT32_MAX - 2 * BYE_RETRY_CSEQ_STEP) {
		log_info(b->sid, "sip: orphan BYE answered 500: again with a higher CSeq");
		b->retried = true;
		nua_handle_bind(b->nh, NULL);
		nua_handle_destroy(b->nh);
		b->nh = NULL;
		b->cseq_base += BYE_RETRY_CSEQ_STEP;
		if (bye_send(b) == 0)
			return;
		status = 500, phrase = "BYE not sent";
	}
	log_info(b->sid, "sip: orphan BYE answered %d %s%s", status, phrase_of(status, phrase),
		 status == 481 ? " (the peer had ended the dialog already)" : "");
	bye_free(b);
	if (cb)
		cb(status, phrase_of(status, phrase), arg);
}

int sip_ua_bye_dialog(struct sip_ua *ua, const struct sip_dialog_info *d, const char *sid,
		      sip_bye_cb cb, void *arg)
{
	struct sip_bye *b;
	int ret;

	if (!ua || ua->closing || !d || !d->call_id[0] || !d->local_tag[0] || !d->remote_tag[0] ||
	    !d->local_uri[0] || !d->remote_uri[0] || !uri_ok(d->remote_target) ||
	    !uri_ok(d->local_uri) || !uri_ok(d->remote_uri) || d->local_cseq > INT32_MAX - 1 ||
	    strpbrk(d->local_tag, " \t\r\n;,<>\"") || strpbrk(d->remote_tag, " \t\r\n;,<>\"") ||
	    strpbrk(d->call_id, " \t\r\n") || strpbrk(d->route, " \t\r\n\"") ||
	    strpbrk(d->dest, " \t\r\n;<>\"") || strpbrk(d->transport, " \t\r\n;<>\""))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->h.kind = H_BYE;
	b->ua = ua;
	b->d = *d;
	b->cseq_base = d->local_cseq;
	b->cb = cb;
	b->arg = arg;
	snprintf(b->sid, sizeof(b->sid), "%.95s", sid ? sid : d->call_id);
	b->next = ua->byes;
	if (b->next)
		b->next->pprev = &b->next;
	b->pprev = &ua->byes;
	ua->byes = b;
	ret = bye_send(b);
	if (ret < 0)
		bye_free(b);
	return ret;
}

void sip_ua_bye_forget(struct sip_ua *ua, const void *arg)
{
	if (!ua)
		return;
	for (struct sip_bye *b = ua->byes; b; b = b->next) {
		if (b->arg == arg) {
			b->cb = NULL;
			b->arg = NULL;
		}
	}
}
