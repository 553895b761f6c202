/*
 * sip_trust.c - who may open a SIP transaction with the gateway (see sip_trust.h).
 */
#include "sip_trust.h"

#include "dest.h"
#include "log.h"
#include "netacl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sip_trust {
	struct netacl *acl;
	uint64_t refused;
	struct log_limit refusal_log;
};

/* Adds the host of @uri (the registrar, the proxy); a name that does not resolve is logged. */
static void add_uri(struct sip_trust *t, const char *uri, const char *what)
{
	struct dest_parts parts;
	char why[200];

	if (!uri || !uri[0])
		return;
	if (dest_parts(uri, &parts) < 0) {
		log_warn("sip", "sip: trusted sources: no host in the %s %s", what, uri);
		return;
	}
	if (netacl_add_list(t->acl, parts.host, why, sizeof(why)) < 0)
		log_warn("sip", "sip: trusted sources: the %s is not trusted by address: %s (its "
				"replies will add it)",
			 what, why);
}

struct sip_trust *sip_trust_new(const char *sources, const char *registrar, const char *proxy,
				char *why, size_t whylen)
{
	struct sip_trust *t = calloc(1, sizeof(*t));
	int ret;

	if (!t || !(t->acl = netacl_new())) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	t->refusal_log.what = "untrusted requests refused";
	if (!sources || !sources[0])
		sources = SIP_TRUST_DEFAULT;
	ret = netacl_add_list(t->acl, sources, why, whylen);
	if (ret < 0) {
		sip_trust_destroy(&t);
		errno = EINVAL;
		return NULL;
	}
	add_uri(t, registrar, "registrar");
	add_uri(t, proxy, "outbound proxy");
	return t;
}

void sip_trust_destroy(struct sip_trust **tp)
{
	if (!tp || !*tp)
		return;
	netacl_destroy(&(*tp)->acl);
	free(*tp);
	*tp = NULL;
}

bool sip_trust_allows(struct sip_trust *t, const struct sockaddr *from)
{
	if (!t)
		return true;
	if (netacl_is_any(t->acl))
		return true;
	return from && netacl_match(t->acl, from);
}

void sip_trust_learn(struct sip_trust *t, const struct sockaddr *from, const char *why)
{
	char ip[INET6_ADDRSTRLEN];
	int ret;

	if (!t || !from || (from->sa_family != AF_INET && from->sa_family != AF_INET6))
		return;
	ret = netacl_add_addr(t->acl, from, -1);
	if (ret <= 0) {
		if (ret == -ENOSPC)
			log_warn("sip", "sip: trusted sources full (%d): %s not added", NETACL_MAX,
				 why);
		return;
	}
	log_info("sip", "sip: trusted source %s added (%s)", netacl_addr_str(from, ip, sizeof(ip)),
		 why);
}

bool sip_trust_refused(struct sip_trust *t, uint64_t now_ms)
{
	t->refused++;
	return log_limit_ok(&t->refusal_log, now_ms, "sip");
}

uint64_t sip_trust_refused_count(const struct sip_trust *t)
{
	return t ? t->refused : 0;
}

const char *sip_trust_describe(const struct sip_trust *t, char *buf, size_t len)
{
	return netacl_describe(t ? t->acl : NULL, buf, len);
}
