/*
 * call_policy.h - limits on the calls RTMP clients place toward SIP (the call and sip apps):
 * which destinations, how often, how many at once. Toll fraud is a stranger making the gateway
 * call premium numbers, many at a time: every outgoing call is admitted here first.
 *
 * Settings (environment, read by call_policy_init):
 *   CALL_DESTINATIONS                    allowed destinations, comma separated; "" or "*": any.
 *                                        "example.com" a domain (and its subdomains), "+4930" or
 *                                        "0800" a number prefix of the user part, anything with
 *                                        '@' a glob on "user@host[:port]" ("*@pbx.example.com")
 *   CALL_MAX_ACTIVE                      calls placed and not yet over, in all      (1000)
 *   CALL_MAX_ACTIVE_PER_CLIENT           the same from one client address           (4)
 *   CALL_ATTEMPTS_PER_MINUTE             call attempts a minute, in all             (600)
 *   CALL_ATTEMPTS_PER_MINUTE_PER_CLIENT  the same from one client address (burst of as many) (10)
 * A client is its IP address (RTMP peer). At most CALL_POLICY_MAX_CLIENTS addresses are
 * tracked at once; an address with no call up and a full allowance is forgotten.
 */
#ifndef RS_CALL_POLICY_H
#define RS_CALL_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define CALL_POLICY_MAX_CLIENTS 65536
#define CALL_POLICY_MAX_PATTERNS 64

enum call_policy_reason {
	CALL_POLICY_DESTINATION, /* not on CALL_DESTINATIONS */
	CALL_POLICY_CLIENT_RATE, /* this client's attempts a minute */
	CALL_POLICY_RATE,	 /* everyone's attempts a minute */
	CALL_POLICY_CLIENT_ACTIVE,
	CALL_POLICY_ACTIVE,
	CALL_POLICY_AUTH,	 /* the app's own: no token, no credentials, unregistered */
	CALL_POLICY_REASONS
};

/* Reads the settings; 0 or -EINVAL (logged). Call once at start (again after _shutdown). */
int call_policy_init(void);

/* Forgets every client and the settings. */
void call_policy_shutdown(void);

/*
 * Admits one call from @client (an IP address as text) to @uri (what dest_uri() made: "sip:" or
 * "sips:" URI): 0, and the call counts as active until call_policy_release(); or -EACCES (the
 * destination is not allowed), -EAGAIN (too many attempts), -EBUSY (too many calls up), with
 * @why for the client and the log. Every refusal is counted.
 */
int call_policy_admit(const char *client, const char *uri, char *why, size_t whylen);

/* The same at time @now_ms (monotonic milliseconds), for tests. */
int call_policy_admit_at(const char *client, const char *uri, uint64_t now_ms, char *why,
			 size_t whylen);

/*
 * One attempt that places no call but sends SIP where the client says (a sip-app client's
 * REGISTER to its own domain when no SIP_REGISTRAR is set): the destination list and the attempt
 * rates as for a call; nothing stays active. 0, -EACCES or -EAGAIN with @why; counted.
 */
int call_policy_attempt(const char *client, const char *uri, char *why, size_t whylen);

/* An admitted call from @client is over. */
void call_policy_release(const char *client);

/* Counts a refusal an app made itself (CALL_POLICY_AUTH). */
void call_policy_count(enum call_policy_reason reason);

/* Refusals since start, by reason; calls active now. */
uint64_t call_policy_refused(enum call_policy_reason reason);
uint64_t call_policy_active(void);

/* "destination", "client_rate", "rate", "client_active", "active", "auth". */
const char *call_policy_reason_name(enum call_policy_reason reason);

#endif
