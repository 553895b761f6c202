/*
 * dest.c - call destinations named by RTMP clients, checked and turned into SIP URIs.
 */
#include "dest.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int dest_uri(const char *name, const char *domain, char *uri, size_t len, char *why,
	     size_t whylen)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789@.:_+-;=*#%!~";
	size_t n = strlen(name);
	const char *at;
	bool digits = n > 0;

	if (n == 0 || n > 200 || strspn(name, allowed) != n) {
		snprintf(why, whylen, "'%.64s' is not a SIP destination", name);
		return -EINVAL;
	}
	for (const char *p = name; *p; p++)
		if (!strchr("0123456789+*#", *p))
			digits = false;
	if (strncmp(name, "sip:", 4) == 0 || strncmp(name, "sips:", 5) == 0)
		snprintf(uri, len, "%s", name);
	else if (strchr(name, '@'))
		snprintf(uri, len, "sip:%s", name);
	else if (digits && domain && domain[0])
		snprintf(uri, len, "sip:%s@%.128s", name, domain);
	else
		goto bad;
	/* One '@' at most, with a user before it and a host after it; without '@' the host
	 * must look like one (a dot or a port). */
	at = strchr(uri, '@');
	if (at) {
		const char *user = uri + (uri[3] == ':' ? 4 : 5);

		if (at == user || !at[1] || at[1] == ':' || strchr(at + 1, '@'))
			goto bad;
	} else if (!strchr(uri + 4, '.') && !strchr(uri + 5, ':')) {
		goto bad;
	}
	return 0;
bad:
	snprintf(why, whylen, "'%.64s' is neither a SIP URI, user@host, nor a number%s", name,
		 domain && domain[0] ? "" : " (no domain is set for numbers)");
	return -EINVAL;
}

int dest_parts(const char *uri, struct dest_parts *out)
{
	const char *p = uri, *end, *at, *h, *hend, *port = NULL;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (*p == '<')
		p++;
	if (strncasecmp(p, "sips:", 5) == 0)
		p += 5;
	else if (strncasecmp(p, "sip:", 4) == 0)
		p += 4;
	end = p + strcspn(p, ";?>");
	at = memchr(p, '@', (size_t)(end - p));
	h = at ? at + 1 : p;
	if (at) {
		n = (size_t)(at - p);
		if (n >= sizeof(out->user))
			return -EINVAL;
		memcpy(out->user, p, n);
	}
	if (*h == '[') { /* [v6]:port */
		hend = memchr(h, ']', (size_t)(end - h));
		if (!hend)
			return -EINVAL;
		if (hend + 1 < end && hend[1] == ':')
			port = hend + 2;
		h++;
	} else {
		hend = memchr(h, ':', (size_t)(end - h));
		if (hend)
			port = hend + 1;
		else
			hend = end;
	}
	n = (size_t)(hend - h);
	if (n == 0 || n >= sizeof(out->host))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		out->host[i] = (char)tolower((unsigned char)h[i]);
	if (port) {
		char *e;
		unsigned long v = strtoul(port, &e, 10);

		if (!isdigit((unsigned char)*port) || e != end || v == 0 || v > 65535)
			return -EINVAL;
		out->port = (unsigned)v;
	}
	return 0;
}
