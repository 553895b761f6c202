/*
 * dest.c - call destinations named by RTMP clients, checked and turned into SIP URIs.
 */
#include "dest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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
