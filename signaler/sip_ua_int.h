/*
 * sip_ua_int.h - the SIP user agent's internals shared by its files (not an interface: sip_ua.h
 * is).
 *
 *   sip_ua.c      the UA: start and shutdown, the nua callback, calls (INVITE both ways, answers,
 *                 re-INVITE, INFO, REFER, NOTIFY)
 *   sip_reg.c     registrations: REGISTER, its challenges, the outcome, un-REGISTER
 *   sip_dialog.c  each call's dialog data (for the call records), and the BYE in a dialog another
 *                 process held
 *
 * Each of them includes this header before any sofia-sip header: it names nua's magic types.
 */
#ifndef RS_SIP_UA_INT_H
#define RS_SIP_UA_INT_H

#include "sip_ua.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct sip_hobj;
#define NUA_MAGIC_T  struct sip_ua
#define NUA_HMAGIC_T struct sip_hobj

#include <sofia-sip/nua.h>
#include <sofia-sip/sip_status.h>

enum hkind { H_CALL = 1, H_REG, H_BYE };

/* First member of every handle owner: nua gives it back as the handle magic. */
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
	struct sip_dialog_info dlg; /* the dialog as learned so far (sip_dialog_capture) */
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

/* An orphan BYE in flight (sip_dialog.c). */
struct sip_bye;

static inline char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* @phrase, else the standard phrase of @status, else "". */
static inline const char *phrase_of(int status, const char *phrase)
{
	const char *p = phrase ? phrase : sip_status_phrase(status);

	return p ? p : "";
}

/* The session id of the call's log lines: its Call-ID. */
static inline const char *call_sid(const struct sip_call *call)
{
	return call->call_id ? call->call_id : "sip-call";
}

/* --- sip_ua.c --- */

/* True for a "sip:" or "sips:" URI of at most 512 bytes without spaces, controls, <, > or ". */
bool sip_ua_uri_ok(const char *uri);

/* Answers a 401/407 with the credentials (@sid names the log lines); 0, or -EACCES when it
 * cannot (no credentials, no challenge or no realm). */
int sip_ua_auth_answer(nua_handle_t *nh, sip_t const *sip, const char *user, const char *pass,
		       const char *sid);

/* True when the challenge in @sip says stale=true (the nonce expired, the credentials stand). */
bool sip_ua_challenge_stale(sip_t const *sip);

/* Trusts the source of the message being handled from now on (sip_trust_learn: @why is for the
 * log line). */
void sip_ua_learn_source(struct sip_ua *ua, nua_t *nua, const char *why);

/* --- sip_reg.c --- */

/* An event on a registration's handle: a challenge answered, the outcome to reg_result (none
 * once sip_reg_destroy() has begun); the un-REGISTER's final response frees @reg. */
void sip_reg_event(struct sip_reg *reg, nua_event_t ev, int status, const char *phrase,
		   sip_t const *sip);

/* Unlinks @reg from its UA, destroys its handle and frees it. No callback. */
void sip_reg_free(struct sip_reg *reg);

/* --- sip_dialog.c --- */

/* The callee's side of a dialog, from the INVITE (From, To, Contact, Record-Route, top Via). */
void sip_dialog_from_invite(struct sip_call *call, sip_t const *sip);

/* Learns from every message of the call what a later in-dialog request needs; tells the
 * observer when something changed. Runs before the event is handled. */
void sip_dialog_capture(struct sip_call *call, nua_event_t ev, int status, sip_t const *sip);

/* An event on an orphan BYE's handle: the final response goes to its callback and frees @b (a
 * 500 is retried once with a higher CSeq). */
void sip_bye_event(struct sip_bye *b, nua_event_t ev, int status, const char *phrase);

/* Unlinks @b from its UA, destroys its handle and frees it. No callback. */
void sip_bye_free(struct sip_bye *b);

#endif
