/*
 * sip_ua.h - the gateway's SIP user agent: a thin wrapper over sofia-sip's nua.
 *
 * The nua stack runs on the process's evloop (the su_root backend, signaler/evloop_su.c), so every
 * callback below runs in the loop thread and must not block. SDP is plain text both ways: the
 * gateway builds and parses it itself (nua's offer/answer engine is disabled).
 *
 * Ownership
 *   - struct sip_ua: the caller's; sip_ua_destroy() ends everything still alive.
 *   - struct sip_reg: the caller's until sip_reg_destroy(); the un-REGISTER then finishes on its
 *     own (or with the UA).
 *   - struct sip_call: the UA's. A call pointer is valid from its creation (sip_call_invite(), or
 *     the incoming callback) until its one terminal callback returns: failed, cancelled or ended.
 *     Every call gets exactly one of them (none once sip_ua_destroy() has begun).
 *
 * Strings handed to callbacks are valid during the callback only, unless said otherwise.
 * Commands return 0 or a negative errno (-EINVAL: wrong state or argument, -ENOMEM).
 */
#ifndef RS_SIP_UA_H
#define RS_SIP_UA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct sip_ua;
struct sip_reg;
struct sip_call;

struct sip_ua_config {
	const char *bind_ip;	  /* local address for UDP and TCP, e.g. "127.0.0.1", "0.0.0.0" */
	uint16_t port;		  /* SIP port (UDP and TCP) */
	const char *advertise_ip; /* host put in Via and Contact (NAT, containers); NULL: bind_ip */
	const char *outbound_proxy; /* every request goes through it ("sip:proxy;lr"); NULL: none */
	const char *user_agent;	    /* User-Agent and Server header; NULL: "rtmp2sip" */
	const char *identity;	    /* From of calls made without a registration ("sip:gw@host");
				     * NULL: sip:rtmp2sip@<advertised host> */
	const char *tls_dir; /* directory holding agent.pem (and cafile.pem): enables SIP over
			      * TLS on tls_port (sips:). NULL: no TLS */
	uint16_t tls_port;
	unsigned shutdown_ms; /* how long sip_ua_destroy() waits for nua; 0: 3000 */
	size_t max_message;   /* largest SIP message accepted (bytes); 0: SIP_GUARD_DEFAULT_MAX */
	unsigned tcp_idle_ms; /* a TCP/TLS connection without traffic this long is closed; 0: 600 s */
	unsigned tcp_recv_timeout_ms; /* an incomplete message with no new byte this long is
				       * dropped and its connection closed; 0: 32 s */
	unsigned tcp_keepalive_ms;    /* CRLF keepalive on every TCP/TLS connection this often: a
				       * peer that left (even one whose input sofia stopped
				       * reading after an error) is found and closed; 0: off */
	const char *trusted_sources; /* who may send requests outside a dialog (sip_trust.h);
				      * NULL: loopback (plus registrar, proxy and what they
				      * answer from) */
	const char *registrar;	     /* the registrar's URI, trusted; NULL: none configured */
};

/* What an incoming INVITE carried; all strings stay valid while the call lives. */
struct sip_call_info {
	const char *call_id;
	const char *from;	  /* From URI, e.g. "sip:bob@example.com" */
	const char *from_display; /* display name or NULL */
	const char *to;		  /* To URI */
	const char *request_uri;
	const char *sdp; /* the offer, or NULL (the offer is then expected in our 200) */
};

/*
 * Callbacks; any may be NULL. @arg is the call's (or registration's) argument, see
 * sip_call_set_arg(). Defaults when NULL: incoming -> 480, reinvite -> 488, refer -> 603.
 */
struct sip_ua_callbacks {
	void *arg; /* given to incoming */

	/* Outcome of one REGISTER attempt (the first one, every refresh, a failure): status 2xx
	 * with the granted @expires in seconds, or the failure status (401/403 when the
	 * credentials are refused, 408/503 when nothing answered). */
	void (*reg_result)(struct sip_reg *reg, int status, const char *phrase, int expires,
			   void *arg);

	/* A new incoming INVITE. Decide with sip_call_respond(), now or later: 180/183 (with
	 * early SDP or not), 200 with the SDP answer, or a rejection (486, 488, 603...). An offer
	 * the app cannot answer is refused with 488 from here, before any 180 is sent. */
	void (*incoming)(struct sip_ua *ua, struct sip_call *call, const struct sip_call_info *info,
			 void *arg);

	/* Outgoing call: 180/183, @sdp is the early answer or NULL. */
	void (*progress)(struct sip_call *call, int status, const char *phrase, const char *sdp,
			 void *arg);

	/* Outgoing call: 2xx received (ACK sent), @sdp is the answer. Incoming call: the ACK of
	 * our 2xx arrived; @sdp is the ACK's body (the answer when we offered in the 200), or NULL.
	 */
	void (*answered)(struct sip_call *call, const char *sdp, void *arg);

	/* Terminal: the call never got established. Outgoing: the final response (487 after
	 * sip_call_cancel()), or a local error. Incoming: the rejection we sent. */
	void (*failed)(struct sip_call *call, int status, const char *phrase, void *arg);

	/* Terminal: an incoming call was cancelled by the caller before we answered. */
	void (*cancelled)(struct sip_call *call, void *arg);

	/* Terminal: an established call ended. @by_peer: the peer sent BYE (or the dialog
	 * died, e.g. no ACK). @reason is a short text for logs and the client. */
	void (*ended)(struct sip_call *call, bool by_peer, const char *reason, void *arg);

	/* The peer re-INVITEs with a new offer (hold, resume, media move). Answer with
	 * sip_call_respond(call, 200, NULL, answer) or reject (488 keeps the old session). Session
	 * refreshes (no SDP, or the same SDP as before) are answered with our current SDP without
	 * calling this. */
	void (*reinvite)(struct sip_call *call, const char *sdp, void *arg);

	/* Outcome of our sip_call_reinvite(): 2xx with the answer, or the failure (the previous
	 * session stays, unless the failure ends the call, which then gets its terminal callback).
	 */
	void (*reinvite_result)(struct sip_call *call, int status, const char *phrase,
				const char *sdp, void *arg);

	/* The peer asks us to transfer (REFER). Return 202 to accept, then place the new call with
	 * sip_call_invite_referred() (nua reports its progress to the peer by NOTIFY); or return a
	 * rejection status (403, 603). */
	int (*refer)(struct sip_call *call, const char *refer_to, const char *referred_by,
		     void *arg);

	/* Progress of our sip_call_refer(): the REFER's own response (202, or a failure), then the
	 * status lines the peer NOTIFYs (100, 180, 200...). */
	void (*transfer_status)(struct sip_call *call, int status, const char *phrase, void *arg);

	/* A DTMF digit arrived by INFO (application/dtmf-relay or application/dtmf). */
	void (*dtmf)(struct sip_call *call, char digit, unsigned duration_ms, void *arg);
};

/*
 * Starts a UA on @loop (which must be the su_root backend) listening on cfg->bind_ip:cfg->port
 * over UDP and TCP. @cfg strings are copied; @cb is copied. NULL on failure (logged).
 */
struct sip_ua *sip_ua_new(struct evloop *loop, const struct sip_ua_config *cfg,
			  const struct sip_ua_callbacks *cb);

/*
 * Shuts the UA down: BYE / CANCEL / un-REGISTER for whatever is alive (nua_shutdown), running
 * the loop until nua confirms or cfg->shutdown_ms passes, then frees every registration and call.
 * No callback is made from here on. It steps the loop itself: call it after evloop_run() has
 * returned, never from one of the UA's callbacks. NULL-safe, clears *uap.
 */
void sip_ua_destroy(struct sip_ua **uap);

/* Requests the UA refused, since start (for the metrics). */
struct sip_ua_stats {
	uint64_t untrusted;   /* out-of-dialog requests from untrusted sources: 403 */
	uint64_t too_large;   /* messages over SIP_MAX_MESSAGE (the parser guard) */
	uint64_t malformed;   /* messages sofia could not parse */
};

/* Fills @st (zeros for a NULL @ua, the parser's counts anyway). */
void sip_ua_get_stats(const struct sip_ua *ua, struct sip_ua_stats *st);

/*
 * Registers @aor ("user@domain") with digest credentials @auth_user / @password (NULL: the AOR's
 * user, and no authentication), @display (NULL: none), @expires seconds, at @registrar
 * ("sip:host:port"; NULL: the AOR's domain). nua refreshes it; each outcome goes to reg_result.
 * Returns the registration (the caller's; release with sip_reg_destroy), or NULL (-EINVAL/-ENOMEM
 * in errno).
 */
struct sip_reg *sip_ua_register(struct sip_ua *ua, const char *aor, const char *auth_user,
				const char *password, const char *display, unsigned expires,
				const char *registrar, void *arg);

/* Sends the un-REGISTER (expires 0) if registered, stops callbacks and frees the registration
 * when done (or with the UA). NULL-safe, clears *regp. */
void sip_reg_destroy(struct sip_reg **regp);

/* Frees the registration without un-REGISTER: another registration of the same AOR and
 * Contact has taken its binding over. NULL-safe, clears *regp. */
void sip_reg_drop(struct sip_reg **regp);

/* True while the last REGISTER attempt succeeded. */
bool sip_reg_registered(const struct sip_reg *reg);

/*
 * Calls @target ("sip:user@host[:port]") offering @sdp, as @reg's AOR (its credentials answer
 * 401/407 challenges) or, with @reg NULL, as cfg->identity. Returns the call, or NULL with errno.
 */
struct sip_call *sip_call_invite(struct sip_ua *ua, struct sip_reg *reg, const char *target,
				 const char *sdp, void *arg);

/*
 * Calls @target offering @sdp as @from (a "sip:user@host" URI, checked by sip_ua_uri_ok), with
 * no credentials: a client that did not register calls as its own AOR. Returns the call, or
 * NULL with errno (EINVAL: a bad @from).
 */
struct sip_call *sip_call_invite_as(struct sip_ua *ua, const char *from, const char *target,
				    const char *sdp, void *arg);

/*
 * After accepting a REFER on @referrer: calls its Refer-To target offering @sdp; nua NOTIFYs the
 * referring peer of the new call's progress. Returns the new call, or NULL with errno.
 */
struct sip_call *sip_call_invite_referred(struct sip_call *referrer, const char *sdp, void *arg);

/*
 * Answers the pending incoming INVITE or re-INVITE: 101-199 (initial INVITE only; @sdp makes
 * it early media), 2xx (@sdp required when the INVITE carried an offer), or >= 300. @phrase NULL:
 * the standard one.
 */
int sip_call_respond(struct sip_call *call, int status, const char *phrase, const char *sdp);

/* Cancels our unanswered outgoing INVITE: the call then fails with 487. (A 200 that crossed the
 * CANCEL is hung up with BYE at once; the call still fails with 487.) */
int sip_call_cancel(struct sip_call *call);

/* Hangs up an established call. */
int sip_call_bye(struct sip_call *call);

/* Whatever ends the call in its state: CANCEL, a 480 rejection, or BYE. */
int sip_call_hangup(struct sip_call *call);

/* Sends a re-INVITE offering @sdp on an established call; the outcome goes to reinvite_result. */
int sip_call_reinvite(struct sip_call *call, const char *sdp);

/* Blind transfer: REFERs the peer to @target; progress goes to transfer_status. */
int sip_call_refer(struct sip_call *call, const char *target);

/* Sends @digit (0-9, *, #, A-D) as INFO application/dtmf-relay; @duration_ms 0: 160. */
int sip_call_info_dtmf(struct sip_call *call, char digit, unsigned duration_ms);

/* The SIP Call-ID (also the session id of the call's log lines). */
const char *sip_call_callid(const struct sip_call *call);

/* The peer's current SDP (offer or answer), or NULL. Valid until it changes. */
const char *sip_call_remote_sdp(const struct sip_call *call);

/* Routes the call's callbacks to @cb with @arg instead of the UA's (several apps share one UA;
 * the UA's incoming callback hands an incoming call to its app this way). @cb must outlive the
 * call; NULL: the UA's callbacks again. */
void sip_call_set_handler(struct sip_call *call, const struct sip_ua_callbacks *cb, void *arg);

/* The call's callback argument. */
void *sip_call_arg(const struct sip_call *call);
void sip_call_set_arg(struct sip_call *call, void *arg);

/* The UA a call belongs to. */
struct sip_ua *sip_call_ua(const struct sip_call *call);

/*
 * Calls @target offering @sdp without a registration, From @from ("sip:user@host"; NULL:
 * cfg->identity), answering 401/407 challenges with digest credentials @auth_user / @password
 * (copied; the password is never logged). Returns the call, or NULL with errno (EINVAL for a bad
 * URI, an empty user, or a user or password holding characters a challenge answer cannot carry).
 */
struct sip_call *sip_call_invite_auth(struct sip_ua *ua, const char *from, const char *auth_user,
				      const char *password, const char *target, const char *sdp,
				      void *arg);

/* --- dialog data, and BYE for a dialog another process held (orphan cleanup) ------------------ */

#define SIP_DIALOG_CALL_ID_MAX 255
#define SIP_DIALOG_TAG_MAX     127
#define SIP_DIALOG_URI_MAX     255
#define SIP_DIALOG_ROUTE_MAX   1000 /* the route set as "<uri>,<uri>..." */
#define SIP_DIALOG_ROUTES      8    /* route entries kept; a longer set is refused */
#define SIP_DIALOG_DEST_MAX    63

/*
 * What it takes to send a request in a call's dialog (RFC 3261 12.2.1.1), as this UA learned it
 * from the INVITE, its responses, the ACK and target refreshes. Strings are NUL-terminated, ""
 * when unknown.
 */
struct sip_dialog_info {
	char call_id[SIP_DIALOG_CALL_ID_MAX + 1];
	char local_tag[SIP_DIALOG_TAG_MAX + 1]; /* our tag: From if we called, else To */
	char remote_tag[SIP_DIALOG_TAG_MAX + 1];
	char local_uri[SIP_DIALOG_URI_MAX + 1];	    /* our URI (From if we called, else To) */
	char remote_uri[SIP_DIALOG_URI_MAX + 1];    /* the peer's URI */
	char remote_target[SIP_DIALOG_URI_MAX + 1]; /* the peer's Contact URI */
	char route[SIP_DIALOG_ROUTE_MAX + 1];	    /* route set in request order, "<u1>,<u2>" */
	uint32_t local_cseq; /* the highest CSeq of our requests answered so far (0: none) */
	char transport[8];   /* "udp", "tcp", "tls" or "": what the dialog's INVITE travelled on */
	char dest[SIP_DIALOG_DEST_MAX + 1]; /* incoming calls: the peer's source host:port (from its
					     * Via: received/rport), else "" */
	bool outgoing;			    /* we sent the INVITE */
	bool confirmed; /* 2xx seen (outgoing) / ACK of our 2xx seen (incoming) */
};

/*
 * Copies what the UA knows of @call's dialog into @out. 0 when both tags, the remote target
 * and the URIs are known (a BYE can be sent, RFC 3261 allows it on confirmed dialogs and, for the
 * caller, on early ones); -EAGAIN when some are not known yet (@out holds what is).
 */
int sip_call_dialog(const struct sip_call *call, struct sip_dialog_info *out);

/* The UA's call whose SIP Call-ID is @call_id (NULL: none). Linear in the calls. */
struct sip_call *sip_ua_find_call(struct sip_ua *ua, const char *call_id);

/*
 * @cb is called (with @arg) whenever a call's dialog data changed: tags learned, remote target
 * refreshed, a higher CSeq answered. One observer per UA (the call records, callrec.c); NULL
 * removes it. @cb must not end the call.
 */
void sip_ua_set_dialog_observer(struct sip_ua *ua, void (*cb)(struct sip_call *call, void *arg),
				void *arg);

/* Outcome of sip_ua_bye_dialog(): the final status (200, 481: the dialog is gone there too;
 * 408 / 503 when nothing answered or it could not be sent). */
typedef void (*sip_bye_cb)(int status, const char *phrase, void *arg);

/*
 * Sends a BYE in the dialog @d that another process (a dead signaler, or this one's previous
 * run) held: Call-ID, From <local_uri>;tag=local_tag, To <remote_uri>;tag=remote_tag, CSeq
 * local_cseq + 1, Request-URI remote_target, Route the route set (a strict first route becomes
 * the Request-URI, RFC 3261 12.2.1.1); when the route set is empty and d->dest is set, the BYE
 * goes to dest over d->transport. A 500 (our CSeq was behind the peer's view) is retried once
 * with the CSeq 1000 further. @sid names the log lines. @cb (may be NULL) gets the final
 * outcome, from the loop. 0, -EINVAL (incomplete dialog data), -ENOMEM.
 */
int sip_ua_bye_dialog(struct sip_ua *ua, const struct sip_dialog_info *d, const char *sid,
		      sip_bye_cb cb, void *arg);

/* No callback will come any more for the BYEs sent with @arg (they finish on their own). */
void sip_ua_bye_forget(struct sip_ua *ua, const void *arg);

#endif
