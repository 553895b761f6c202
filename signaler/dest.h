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

#endif
