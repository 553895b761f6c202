/*
 * rtp_addr.c - the RTP leg's socket addresses (struct addr, rtp_leg_int.h), IPv4 or IPv6: parsed
 * from numeric strings, compared with the sources of datagrams, printed for the logs.
 */
#include "rtp_leg_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int rtp_addr_parse(struct addr *a, const char *ip, uint16_t port, int family)
{
	memset(a, 0, sizeof(*a));
	if (!ip || strlen(ip) >= IP_STR_MAX)
		return -EINVAL;
	if ((family == AF_UNSPEC || family == AF_INET) &&
	    inet_pton(AF_INET, ip, &a->u.in.sin_addr) == 1) {
		a->u.in.sin_family = AF_INET;
		a->u.in.sin_port = htons(port);
		a->len = sizeof(a->u.in);
	} else if ((family == AF_UNSPEC || family == AF_INET6) &&
		   inet_pton(AF_INET6, ip, &a->u.in6.sin6_addr) == 1) {
		a->u.in6.sin6_family = AF_INET6;
		a->u.in6.sin6_port = htons(port);
		a->len = sizeof(a->u.in6);
	}
	return a->len ? 0 : -EINVAL;
}

uint16_t rtp_addr_port(const struct addr *a)
{
	return ntohs(a->u.sa.sa_family == AF_INET ? a->u.in.sin_port : a->u.in6.sin6_port);
}

void rtp_addr_set_port(struct addr *a, uint16_t port)
{
	if (a->u.sa.sa_family == AF_INET)
		a->u.in.sin_port = htons(port);
	else
		a->u.in6.sin6_port = htons(port);
}

const char *rtp_addr_ip(const struct addr *a, char *out, size_t n)
{
	const void *p = a->u.sa.sa_family == AF_INET ? (const void *)&a->u.in.sin_addr
						     : (const void *)&a->u.in6.sin6_addr;

	if (!a->len || !inet_ntop(a->u.sa.sa_family, p, out, (socklen_t)n))
		snprintf(out, n, "-");
	return out;
}

bool rtp_addr_match(const struct addr *a, const struct sockaddr *b, bool port)
{
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;

	if (!a->len || a->u.sa.sa_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return a->u.in.sin_addr.s_addr == b4->sin_addr.s_addr &&
		       (!port || a->u.in.sin_port == b4->sin_port);
	return b->sa_family == AF_INET6 && !memcmp(&a->u.in6.sin6_addr, &b6->sin6_addr, 16) &&
	       (!port || a->u.in6.sin6_port == b6->sin6_port);
}

bool rtp_addr_same(const struct addr *a, const struct addr *b)
{
	return a->len == b->len && (!a->len || rtp_addr_match(a, &b->u.sa, true));
}

void rtp_addr_from_sa(struct addr *a, const struct sockaddr *sa, socklen_t len)
{
	memset(a, 0, sizeof(*a));
	a->len = len > sizeof(a->u) ? sizeof(a->u) : len;
	memcpy(&a->u, sa, a->len);
}

const char *rtp_addr_str(const struct addr *a, char *out, size_t n)
{
	char ip[IP_STR_MAX];

	if (!a->len)
		snprintf(out, n, "none");
	else
		snprintf(out, n, a->u.sa.sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
			 rtp_addr_ip(a, ip, sizeof(ip)), rtp_addr_port(a));
	return out;
}
