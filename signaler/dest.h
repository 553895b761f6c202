/*
 * dest.h - what an RTMP client may name as a call's destination, turned into a SIP URI.
 *
 * Accepted forms: a SIP URI ("sip:user@host[:port]", "sips:..."), "user@host[:port]", or a
 * number (digits, '+', '*', '#') routed to a configured domain ("sip:<number>@<domain>").
 * Characters are limited to a safe set, so the result can go into SIP headers and logs as is.
 */
#ifndef RS_DEST_H
#define RS_DEST_H

#include <stddef.h>

#define DEST_URI_MAX 255

/*
 * Writes the SIP URI for @name into @uri (@len >= DEST_URI_MAX + 1). @domain (may be NULL) is the
 * domain numbers are routed to. Returns 0, or -EINVAL with a sentence in @why.
 */
int dest_uri(const char *name, const char *domain, char *uri, size_t len, char *why,
	     size_t whylen);

/* The parts of a SIP URI that decide where it goes. */
struct dest_parts {
	char user[DEST_URI_MAX + 1]; /* "" when none */
	char host[DEST_URI_MAX + 1]; /* lower-cased; an IPv6 literal without its brackets */
	unsigned port;		     /* 0 when none */
};

/*
 * Splits @uri ("sip:user@host:port;params", "sips:...", "<sip:host>", "user@host", "host") into
 * @out. Returns 0, or -EINVAL when there is no host or a part does not fit.
 */
int dest_parts(const char *uri, struct dest_parts *out);

#endif
