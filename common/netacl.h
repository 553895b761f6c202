/*
 * netacl.h - a list of IP networks, and whether an address is in it.
 *
 * Used wherever a setting names who may reach something or where traffic may go: the SIP trusted
 * sources (SIP_TRUSTED_SOURCES), the rtp app's destinations (RTP_APP_DESTINATIONS). Entries are
 * IPv4 or IPv6 networks ("10.0.0.0/8", "2001:db8::/32"), single addresses ("192.0.2.7", "::1"),
 * host names (resolved once, when added: every address they have then), or "any" (every
 * address). An IPv4-mapped IPv6 address ("::ffff:192.0.2.7") matches the IPv4 entries.
 * At most NETACL_MAX entries; nothing here blocks except the name resolution of
 * netacl_add_list(), which is meant for start-up.
 */
#ifndef RS_NETACL_H
#define RS_NETACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NETACL_MAX 256

struct netacl;

/* An empty list (matches nothing). NULL with errno ENOMEM. */
struct netacl *netacl_new(void);

/* Frees; NULL-safe, clears *ap. */
void netacl_destroy(struct netacl **ap);

/*
 * Adds the comma-separated entries of @list (spaces around entries ignored; NULL or "" adds
 * nothing). Host names are resolved now (getaddrinfo: blocks). Returns 0, or -EINVAL with @why
 * naming the bad entry, -ENOENT when a host name does not resolve, -ENOSPC when the list is
 * full. On error nothing of @list is added.
 */
int netacl_add_list(struct netacl *a, const char *list, char *why, size_t whylen);

/*
 * Adds the network of @sa (AF_INET or AF_INET6) with @prefix bits (-1: the whole address).
 * Returns 1 when added, 0 when an equal entry was there, -ENOSPC when full, -EINVAL.
 */
int netacl_add_addr(struct netacl *a, const struct sockaddr *sa, int prefix);

/* True when @sa (AF_INET or AF_INET6; NULL never) lies in one of the entries. */
bool netacl_match(const struct netacl *a, const struct sockaddr *sa);

/* The same for a numeric address string ("192.0.2.7", "2001:db8::1"); false if not one. */
bool netacl_match_str(const struct netacl *a, const char *ip);

/* The numeric address of @sa (AF_INET or AF_INET6) into @buf; "?" for anything else. Returns
 * @buf. */
const char *netacl_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* Entries in the list. */
size_t netacl_count(const struct netacl *a);

/* True when the list matches every address ("any" or ::/0). */
bool netacl_is_any(const struct netacl *a);

/* Writes the entries as a list ("127.0.0.0/8, ::1/128") into @buf (cut to fit); returns @buf. */
const char *netacl_describe(const struct netacl *a, char *buf, size_t len);

#endif
