/*
 * rtmp_server.c - the RTMP listener and the connection limits.
 *
 * Connections per peer IP are counted in a small open hash table (chained), so a single host
 * cannot take every slot; the total is bounded too. Connections over a limit are closed at
 * accept, before any allocation for them.
 */
#include "rtmp_server.h"

#include "evloop.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IP_BUCKETS 1024

struct ip_count {
	uint8_t addr[16];
	unsigned count;
	struct ip_count *next;
};

struct rtmp_server {
	struct evloop *loop;
	struct rtmp_limits lim;
	int fd;
	int port;
	struct ev_io *io;
	uint64_t next_id;
	unsigned n_conns;
	struct rtmp_conn *all;
	struct rtmp_conn *pending;
	struct rtmp_stats stats;
	struct ip_count *ips[IP_BUCKETS];
};

/* The address as 16 bytes (IPv4 mapped into IPv6), so both families share one table. */
static void ip_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	} else {
		key[10] = 0xff;
		key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	}
}

static struct ip_count **ip_slot(struct rtmp_server *srv, const uint8_t key[16])
{
	uint32_t h = 2166136261u;
	struct ip_count **pp;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	pp = &srv->ips[h % IP_BUCKETS];
	while (*pp && memcmp((*pp)->addr, key, 16) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* Takes a slot for @peer; false when the per-IP limit is reached (or no memory). */
static bool take_ip(struct rtmp_server *srv, const struct sockaddr_storage *peer)
{
	uint8_t key[16];
	struct ip_count **pp;

	ip_key(peer, key);
	pp = ip_slot(srv, key);
	if (!*pp) {
		*pp = calloc(1, sizeof(**pp));
		if (!*pp)
			return false;
		memcpy((*pp)->addr, key, 16);
	}
	if ((*pp)->count >= srv->lim.max_conn_per_ip)
		return false;
	(*pp)->count++;
	return true;
}

void rtmp_server_conn_gone(struct rtmp_server *srv, const struct sockaddr_storage *peer)
{
	uint8_t key[16];
	struct ip_count **pp;

	ip_key(peer, key);
	pp = ip_slot(srv, key);
	if (!*pp)
		return;
	if (--(*pp)->count == 0) {
		struct ip_count *gone = *pp;

		*pp = gone->next;
		free(gone);
	}
	srv->n_conns--;
}

static void describe(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host, sizeof(host));
		port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	} else if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof(host));
		port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	}
	snprintf(out, len, "%s:%u", host, port);
}

static void on_accept(struct evloop *loop, struct ev_io *io, int lfd, unsigned events, void *arg)
{
	struct rtmp_server *srv = arg;

	/* Bounded per wake-up, so a connection storm cannot starve established sessions. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		char who[INET6_ADDRSTRLEN + 8];
		struct rtmp_conn *c;
		int one = 1;
		int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn(NULL, "rtmp: accept failed: %s", strerror(errno));
			return;
		}
		describe(&peer, who, sizeof(who));
		if (srv->n_conns >= srv->lim.max_connections) {
			log_warn(NULL, "rtmp: refused %s: %u connections open (RTMP_MAX_CONNECTIONS)",
				 who, srv->n_conns);
			srv->stats.refused++;
			close(fd);
			continue;
		}
		if (!take_ip(srv, &peer)) {
			log_warn(NULL, "rtmp: refused %s: %u connections from this address (RTMP_MAX_CONN_PER_IP)",
				 who, srv->lim.max_conn_per_ip);
			srv->stats.refused++;
			close(fd);
			continue;
		}
		srv->n_conns++;
		srv->stats.accepted++;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = rtmp_conn_new(srv, loop, fd, &peer, ++srv->next_id);
		if (!c) {
			log_warn(NULL, "rtmp: refused %s: out of memory", who);
			rtmp_server_conn_gone(srv, &peer);
			close(fd);
		}
	}
}

static void before_sleep(struct evloop *loop, void *arg)
{
	rtmp_conn_flush_pending(arg);
}

struct rtmp_server *rtmp_server_new(struct evloop *loop, const char *bind_addr, int port,
				    const struct rtmp_limits *lim)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct rtmp_server *srv;
	char portstr[16];
	int one = 1, err;

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->loop = loop;
	srv->lim = *lim;
	srv->fd = -1;
	snprintf(portstr, sizeof(portstr), "%d", port);
	err = getaddrinfo(bind_addr, portstr, &hints, &ai);
	if (err) {
		log_error(NULL, "rtmp: bad listen address %s: %s", bind_addr, gai_strerror(err));
		goto out_free;
	}
	srv->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->fd < 0) {
		log_error(NULL, "rtmp: socket: %s", strerror(errno));
		goto out_free;
	}
	setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(srv->fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(srv->fd, 1024) < 0) {
		log_error(NULL, "rtmp: cannot listen on %s:%d: %s", bind_addr, port, strerror(errno));
		goto out_close;
	}
	if (getsockname(srv->fd, (struct sockaddr *)&ss, &sslen) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							   : ((struct sockaddr_in *)&ss)->sin_port);
	srv->io = evloop_io_add(loop, srv->fd, EV_READ, on_accept, srv);
	if (!srv->io || evloop_before_sleep(loop, before_sleep, srv) < 0) {
		log_error(NULL, "rtmp: cannot register the listener: %s", strerror(errno));
		goto out_close;
	}
	freeaddrinfo(ai);
	log_info(NULL, "rtmp: listening on %s:%d", bind_addr, srv->port);
	return srv;

out_close:
	evloop_before_sleep_del(srv->loop, before_sleep, srv);
	evloop_io_del(&srv->io);
	close(srv->fd);
out_free:
	if (ai)
		freeaddrinfo(ai);
	free(srv);
	return NULL;
}

void rtmp_server_destroy(struct rtmp_server **srvp)
{
	struct rtmp_server *srv = srvp ? *srvp : NULL;

	if (!srv)
		return;
	rtmp_conn_flush_pending(srv);
	while (srv->all) {
		struct rtmp_conn *c = srv->all;

		rtmp_conn_destroy(&c);
	}
	evloop_before_sleep_del(srv->loop, before_sleep, srv);
	evloop_io_del(&srv->io);
	close(srv->fd);
	for (size_t i = 0; i < IP_BUCKETS; i++) {
		while (srv->ips[i]) {
			struct ip_count *n = srv->ips[i]->next;

			free(srv->ips[i]);
			srv->ips[i] = n;
		}
	}
	free(srv);
	*srvp = NULL;
}

void rtmp_server_pause(struct rtmp_server *srv)
{
	if (srv && srv->io && evloop_io_set(srv->io, 0) == 0)
		log_info(NULL, "rtmp: no longer accepting connections");
}

int rtmp_server_port(const struct rtmp_server *srv)
{
	return srv->port;
}

unsigned rtmp_server_conn_count(const struct rtmp_server *srv)
{
	return srv->n_conns;
}

const struct rtmp_limits *rtmp_server_limits(const struct rtmp_server *srv)
{
	return &srv->lim;
}

struct rtmp_conn **rtmp_server_all_head(struct rtmp_server *srv)
{
	return &srv->all;
}

struct rtmp_conn **rtmp_server_pending_head(struct rtmp_server *srv)
{
	return &srv->pending;
}

struct rtmp_stats *rtmp_server_stats(struct rtmp_server *srv)
{
	return &srv->stats;
}

void rtmp_server_log_stats(struct rtmp_server *srv)
{
	const struct rtmp_stats *st = &srv->stats;

	log_info(NULL, "stats: connections=%u accepted=%llu refused=%llu msgs_in=%llu msgs_out=%llu bytes_in=%llu bytes_out=%llu media_dropped=%llu",
		 srv->n_conns, (unsigned long long)st->accepted, (unsigned long long)st->refused,
		 (unsigned long long)st->msgs_in, (unsigned long long)st->msgs_out,
		 (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
		 (unsigned long long)st->media_dropped);
}
