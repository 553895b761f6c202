/*
 * sip_trust.h - who may open a SIP transaction with the gateway (SIP_TRUSTED_SOURCES).
 *
 * Requests outside a dialog (INVITE, OPTIONS, REFER, SUBSCRIBE, MESSAGE, ...) are served only
 * when they come from a trusted source; the others get 403 and are counted. Requests inside a
 * dialog are matched by sofia to a dialog we created (Call-ID and both tags) and are not
 * filtered here: a call the gateway placed to any peer keeps working with that peer.
 *
 * Trusted:
 *   - the networks and hosts of the setting (default "127.0.0.0/8,::1": loopback);
 *   - the registrar and the outbound proxy when configured (their hosts resolved at start);
 *   - the addresses that answered one of our REGISTERs with a 2xx (the registrar as it is
 *     reached, whatever DNS gave sofia), and, with an outbound proxy, the addresses that
 *     answered any of our requests (they came through the proxy): learned, at most NETACL_MAX
 *     entries in all.
 * "any" trusts everyone (an explicit opt-out).
 */
#ifndef RS_SIP_TRUST_H
#define RS_SIP_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SIP_TRUST_DEFAULT "127.0.0.0/8,::1"

struct sip_trust;

/*
 * From the setting @sources (NULL or "": SIP_TRUST_DEFAULT) plus the hosts of @registrar and
 * @proxy (SIP URIs or NULL; a host that does not resolve is logged and skipped). Resolves names
 * (blocks: start-up only). NULL with errno EINVAL (@why says what is wrong) or ENOMEM.
 */
struct sip_trust *sip_trust_new(const char *sources, const char *registrar, const char *proxy,
				char *why, size_t whylen);

/* Frees; NULL-safe, clears *tp. */
void sip_trust_destroy(struct sip_trust **tp);

/* True when a request from @from (NULL: unknown, never trusted unless "any") may be served. */
bool sip_trust_allows(struct sip_trust *t, const struct sockaddr *from);

/* Trusts @from from now on (a registrar's or the proxy's response); logs the first time. */
void sip_trust_learn(struct sip_trust *t, const struct sockaddr *from, const char *why);

/* Counts one refused request (for the metrics) and tells whether to log it: log_limit, at
 * @now_ms (any millisecond clock). */
bool sip_trust_refused(struct sip_trust *t, uint64_t now_ms);

/* Requests refused since start. */
uint64_t sip_trust_refused_count(const struct sip_trust *t);

/* The trusted networks now, as text for the log. */
const char *sip_trust_describe(const struct sip_trust *t, char *buf, size_t len);

#endif
