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
 * Registrations are in sip_reg.c; each call's dialog data (for the call records) and the BYE in
 * a dialog another process held, in sip_dialog.c. sip_ua_int.h holds what the three share.
 *
 * Logs carry the SIP Call-ID of the call as the session id.
 */
#include "sip_ua_int.h"

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

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>

#define SIP_UA_MAX_BODY 65536
#define SIP_UA_MAX_URI	512
#define SIP_UA_ALLOW	"INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY, UPDATE"
#define SDP_TYPE	"application/sdp"

/* The callbacks a call reports to: its own handler, or the UA's. */
#define CALL_CB(c) ((c)->cb ? (c)->cb : &(c)->ua->cb)

/* ---- small helpers ---- */

static void set_str(char **dst, char *src)
{
	free(*dst);
	*dst = src;
}

bool sip_ua_uri_ok(const char *uri)
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

int sip_ua_auth_answer(nua_handle_t *nh, sip_t const *sip, const char *user, const char *pass,
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

bool sip_ua_challenge_stale(sip_t const *sip)
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
	if ((status == 401 || status == 407) &&
	    (call->auth_tries == 0 || sip_ua_challenge_stale(sip))) {
		if (sip_ua_auth_answer(call->nh, sip, call->auth_user, call->password, sid) == 0) {
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
	/* nua keeps the phrase's pointer until its stack sends the response, a turn of the loop
	 * later (the tags it copies): a caller's phrase goes there as a copy the handle owns. */
	if (phrase)
		phrase = su_strdup(nua_handle_home(call->nh), phrase);
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

	sip_dialog_capture(call, ev, status, sip);
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
	sip_dialog_from_invite(call, sip);
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

/* ---- the nua callback ---- */

/* The address the message being handled came from (request or response), or NULL. */
static const struct sockaddr *current_source(nua_t *nua)
{
	msg_t *msg = nua_current_request(nua);
	su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : NULL;

	return ai && ai->ai_addr && ai->ai_addrlen > 0 ? (const struct sockaddr *)ai->ai_addr
						       : NULL;
}

void sip_ua_learn_source(struct sip_ua *ua, nua_t *nua, const char *why)
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
	/* only a response to our own request (nua_r_*) teaches where the proxy
	 * answers from; state and indication events carry no fresh source */
	if (ua->via_proxy && status >= 100 && strncmp(nua_event_name(ev), "nua_r_", 6) == 0)
		sip_ua_learn_source(ua, nua, "answered through the outbound proxy");
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
		sip_reg_event((struct sip_reg *)h, ev, status, phrase, sip);
		return;
	}
	if (h && h->kind == H_BYE) {
		sip_bye_event((struct sip_bye *)h, ev, status, phrase);
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
	    (cfg->outbound_proxy && !sip_ua_uri_ok(cfg->outbound_proxy)) ||
	    (cfg->identity && !sip_ua_uri_ok(cfg->identity))) {
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
		sip_reg_free(ua->regs);
	while (ua->byes)
		sip_bye_free(ua->byes);
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

/* Sends the INVITE of a new outgoing call. @referrer: the call whose accepted REFER this one
 * carries out (nua then NOTIFYs its peer). @contact_user: the user part of our Contact. */
static struct sip_call *invite(struct sip_ua *ua, const char *from, const char *contact_user,
			       const char *auth_user, const char *password, const char *target,
			       const char *sdp, void *arg, struct sip_call *referrer)
{
	struct sip_call *call;
	char *to = NULL;

	if (ua->closing || !sip_ua_uri_ok(target) || !sdp || strlen(sdp) > SIP_UA_MAX_BODY) {
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

struct sip_call *sip_call_invite_as(struct sip_ua *ua, const char *from, const char *target,
				    const char *sdp, void *arg)
{
	if (!sip_ua_uri_ok(from)) {
		errno = EINVAL;
		return NULL;
	}
	return invite(ua, from, NULL, NULL, NULL, target, sdp, arg, NULL);
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
	if (call->state != CS_CONFIRMED || call->local_bye || !sip_ua_uri_ok(target))
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
	if ((from && !sip_ua_uri_ok(from)) || !auth_user || !auth_user[0] || !password ||
	    strpbrk(auth_user, ":\"\\\r\n") || strpbrk(password, "\r\n")) {
		errno = EINVAL;
		return NULL;
	}
	return invite(ua, from ? from : ua->identity, NULL, auth_user, password, target, sdp, arg,
		      NULL);
}
