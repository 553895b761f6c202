/*
 * netacl.c - a list of IP networks (see netacl.h).
 *
 * Every entry is kept as a 16-byte IPv6 address and a prefix length; IPv4 networks are stored
 * IPv4-mapped (::ffff:a.b.c.d, prefix + 96), so one comparison serves both families.
 */
#include "netacl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_TEXT_MAX 255

struct net {
	uint8_t addr[16];
	unsigned prefix; /* 0..128 */
};

struct netacl {
	struct net nets[NETACL_MAX];
	size_t n;
};

struct netacl *netacl_new(void)
{
	return calloc(1, sizeof(struct netacl));
}

void netacl_destroy(struct netacl **ap)
{
	if (!ap)
		return;
	free(*ap);
	*ap = NULL;
}

static void map_v4(uint8_t out[16], const void *v4)
{
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, v4, 4);
}

/* @sa as a 16-byte address; false for other families. */
static bool to_v6(const struct sockaddr *sa, uint8_t out[16], bool *v4)
{
	if (sa->sa_family == AF_INET) {
		map_v4(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
		*v4 = true;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		*v4 = false;
		return true;
	}
	return false;
}

/* Clears the bits of @addr past @prefix. */
static void mask(uint8_t addr[16], unsigned prefix)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;

		if (bits < 8)
			addr[i] &= (uint8_t)(0xff00u >> bits);
	}
}

static bool in_net(const struct net *n, const uint8_t addr[16])
{
	uint8_t a[16];

	memcpy(a, addr, 16);
	mask(a, n->prefix);
	return memcmp(a, n->addr, 16) == 0;
}

/* Adds one network to @nets/@n (bounded by NETACL_MAX); 1 added, 0 already there, -ENOSPC. */
static int push(struct net *nets, size_t *n, const uint8_t addr[16], unsigned prefix)
{
	struct net e = {.prefix = prefix};

	memcpy(e.addr, addr, 16);
	mask(e.addr, prefix);
	for (size_t i = 0; i < *n; i++)
		if (nets[i].prefix == e.prefix && memcmp(nets[i].addr, e.addr, 16) == 0)
			return 0;
	if (*n >= NETACL_MAX)
		return -ENOSPC;
	nets[(*n)++] = e;
	return 1;
}

int netacl_add_addr(struct netacl *a, const struct sockaddr *sa, int prefix)
{
	uint8_t addr[16];
	bool v4;
	unsigned p;

	if (!a || !sa || !to_v6(sa, addr, &v4))
		return -EINVAL;
	if (prefix < 0)
		p = 128;
	else if (prefix > (v4 ? 32 : 128))
		return -EINVAL;
	else
		p = (unsigned)prefix + (v4 ? 96 : 0);
	return push(a->nets, &a->n, addr, p);
}

/* "/N" after an address: N in 0..@max, or -1 when absent; -2 when malformed. */
static int parse_prefix(const char *s, int max)
{
	char *end;
	long v;

	if (!s)
		return -1;
	if (!isdigit((unsigned char)s[1]))
		return -2;
	errno = 0;
	v = strtol(s + 1, &end, 10);
	if (errno || *end || v < 0 || v > max)
		return -2;
	return (int)v;
}

/* One entry of a list into @nets/@n. 0 or -errno with @why. */
static int add_entry(struct net *nets, size_t *n, const char *text, char *why, size_t whylen)
{
	char host[ENTRY_TEXT_MAX + 1], *slash;
	struct addrinfo hints = {.ai_flags = AI_ADDRCONFIG}, *res = NULL, *ai;
	uint8_t addr[16];
	struct in_addr v4;
	struct in6_addr v6;
	int prefix, ret = 0, gai;
	bool is_v4;

	if (strlen(text) > ENTRY_TEXT_MAX) {
		snprintf(why, whylen, "entry longer than %d characters", ENTRY_TEXT_MAX);
		return -EINVAL;
	}
	if (strcmp(text, "any") == 0) {
		memset(addr, 0, sizeof(addr));
		return push(nets, n, addr, 0) < 0 ? -ENOSPC : 0;
	}
	snprintf(host, sizeof(host), "%s", text);
	slash = strchr(host, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, host, &v4) == 1) {
		prefix = parse_prefix(slash ? text + (slash - host) : NULL, 32);
		if (prefix == -2)
			goto out_bad_prefix;
		map_v4(addr, &v4);
		return push(nets, n, addr, prefix < 0 ? 128 : (unsigned)prefix + 96) < 0 ? -ENOSPC
											  : 0;
	}
	if (inet_pton(AF_INET6, host, &v6) == 1) {
		prefix = parse_prefix(slash ? text + (slash - host) : NULL, 128);
		if (prefix == -2)
			goto out_bad_prefix;
		memcpy(addr, &v6, 16);
		return push(nets, n, addr, prefix < 0 ? 128 : (unsigned)prefix) < 0 ? -ENOSPC : 0;
	}
	if (slash || !host[0] || strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"0123456789.-") != strlen(host)) {
		snprintf(why, whylen, "'%s' is neither an address, a network nor a host name",
			 text);
		return -EINVAL;
	}
	gai = getaddrinfo(host, NULL, &hints, &res);
	if (gai != 0) {
		snprintf(why, whylen, "'%s' does not resolve: %s", host, gai_strerror(gai));
		return -ENOENT;
	}
	for (ai = res; ai && ret == 0; ai = ai->ai_next)
		if (to_v6(ai->ai_addr, addr, &is_v4) && push(nets, n, addr, 128) < 0)
			ret = -ENOSPC;
	freeaddrinfo(res);
	return ret;

out_bad_prefix:
	snprintf(why, whylen, "'%s': bad prefix length", text);
	return -EINVAL;
}

int netacl_add_list(struct netacl *a, const char *list, char *why, size_t whylen)
{
	struct net nets[NETACL_MAX];
	size_t n;
	const char *p = list;
	char entry[ENTRY_TEXT_MAX + 2];
	int ret;

	if (why && whylen)
		why[0] = '\0';
	if (!a)
		return -EINVAL;
	if (!list)
		return 0;
	memcpy(nets, a->nets, a->n * sizeof(nets[0]));
	n = a->n;
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *s = p, *e = p + len;

		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		p += len + (p[len] == ',');
		if (s == e)
			continue;
		if ((size_t)(e - s) > ENTRY_TEXT_MAX) {
			snprintf(why, whylen, "entry longer than %d characters", ENTRY_TEXT_MAX);
			return -EINVAL;
		}
		memcpy(entry, s, (size_t)(e - s));
		entry[e - s] = '\0';
		ret = add_entry(nets, &n, entry, why, whylen);
		if (ret < 0) {
			if (ret == -ENOSPC)
				snprintf(why, whylen, "more than %d networks", NETACL_MAX);
			return ret;
		}
	}
	memcpy(a->nets, nets, n * sizeof(nets[0]));
	a->n = n;
	return 0;
}

bool netacl_match(const struct netacl *a, const struct sockaddr *sa)
{
	uint8_t addr[16];
	bool v4;

	if (!a || !sa || !to_v6(sa, addr, &v4))
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (in_net(&a->nets[i], addr))
			return true;
	return false;
}

bool netacl_match_str(const struct netacl *a, const char *ip)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	struct sockaddr_in s4 = {.sin_family = AF_INET};

	if (!ip)
		return false;
	if (inet_pton(AF_INET, ip, &s4.sin_addr) == 1)
		return netacl_match(a, (struct sockaddr *)&s4);
	if (inet_pton(AF_INET6, ip, &s6.sin6_addr) == 1)
		return netacl_match(a, (struct sockaddr *)&s6);
	return false;
}

const char *netacl_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *addr = NULL;

	if (sa && sa->sa_family == AF_INET)
		addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa && sa->sa_family == AF_INET6)
		addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (!addr || !inet_ntop(sa->sa_family, addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

size_t netacl_count(const struct netacl *a)
{
	return a ? a->n : 0;
}

bool netacl_is_any(const struct netacl *a)
{
	for (size_t i = 0; a && i < a->n; i++)
		if (a->nets[i].prefix == 0)
			return true; /* "any" or ::/0: the IPv4-mapped addresses are inside */
	return false;
}

const char *netacl_describe(const struct netacl *a, char *buf, size_t len)
{
	size_t used = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; a && i < a->n && used < len; i++) {
		const struct net *e = &a->nets[i];
		char text[INET6_ADDRSTRLEN];
		bool v4 = e->prefix >= 96 && memcmp(e->addr, (uint8_t[12]){[10] = 0xff, [11] = 0xff},
						    12) == 0;
		int k;

		if (e->prefix == 0) {
			k = snprintf(buf + used, len - used, "%sany", i ? ", " : "");
		} else {
			inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? (const void *)(e->addr + 12) : e->addr,
				  text, sizeof(text));
			k = snprintf(buf + used, len - used, "%s%s/%u", i ? ", " : "", text,
				     v4 ? e->prefix - 96 : e->prefix);
		}
		if (k < 0)
			break;
		used += (size_t)k;
	}
	return buf;
}
