/*
 * rtmp_server.c - the RTMP and RTMPS listeners and the connection limits.
 *
 * Connections per peer IP are counted in a small open hash table (chained), so a single host
 * cannot take every slot; the total is bounded too. Connections that have not finished the RTMP
 * handshake (the TLS one included) have limits of their own, per IP and in total, far below the
 * others: an idle or stalled peer costs an fd and a timer until the handshake timeout, and a
 * crowd of them must neither exhaust the fds nor keep legitimate clients from connecting once
 * their handshakes are through. Connections over a limit are accepted and closed at once,
 * before any allocation for them, so the listen queue never stalls; the refusals are counted
 * and logged, at most LOG_LIMIT_BURST lines a second (log_limit).
 *
 * After a burst of closes the freed heap is given back to the system (malloc_trim, at most once
 * a second): glibc returns only the top of the heap by itself, and one long-lived allocation
 * above thousands of freed connections otherwise pins them all.
 */
#include "rtmp_server_int.h"

#include "evloop.h"
#include "log.h"
#include "strmap.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IP_BUCKETS 1024
#define IP_KEY_LEN 33 /* the 16 bytes of ip_key in hex */
#define MAX_LISTENERS 2
#define ACCEPTS_PER_WAKEUP 64
#define TRIM_AFTER_CLOSES 32 /* closes that make a heap trim worth it */
#define TRIM_DELAY_MS 1000   /* ... done this long after the first of them */

struct ip_count {
	unsigned count;	   /* connections from this address */
	unsigned hs_count; /* of which still in the handshake */
};

struct listener {
	struct rtmp_server *srv;
	int fd;
	int port;
	struct ev_io *io;
	struct tls_ctx *tls; /* NULL: plain RTMP */
};

struct rtmp_server {
	struct evloop *loop;
	struct rtmp_limits lim;
	struct listener lis[MAX_LISTENERS];
	size_t n_lis;
	uint64_t next_id;
	unsigned n_conns;
	unsigned n_handshakes;
	struct rtmp_conn *all;
	struct rtmp_conn *pending;
	struct rtmp_stats stats;
	struct strmap *ips;	      /* ip_key -> struct ip_count */
	struct log_limit refusal_log; /* the refusal lines; the rest summed up once a second */
	struct ev_timer *trim_timer;
	unsigned closed_since_trim;
};

/* The address as 16 bytes (IPv4 mapped into IPv6) in hex, so both families share one table. */
static void ip_key(const struct sockaddr_storage *ss, char key[IP_KEY_LEN])
{
	uint8_t a[16] = {0};

	if (ss->ss_family == AF_INET6) {
		memcpy(a, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	} else {
		a[10] = 0xff;
		a[11] = 0xff;
		memcpy(a + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	}
	for (int i = 0; i < 16; i++) {
		key[2 * i] = "0123456789abcdef"[a[i] >> 4];
		key[2 * i + 1] = "0123456789abcdef"[a[i] & 15];
	}
	key[32] = '\0';
}

/*
 * Takes a connection slot and a handshake slot for @peer. Returns NULL, or why not: the
 * per-IP limit of connections or of handshakes is reached (*hs_limit tells which), or no memory.
 */
static const char *take_ip(struct rtmp_server *srv, const struct sockaddr_storage *peer,
			   bool *hs_limit)
{
	char key[IP_KEY_LEN];
	struct ip_count *ip;

	*hs_limit = false;
	ip_key(peer, key);
	ip = strmap_get(srv->ips, key);
	if (!ip) {
		ip = calloc(1, sizeof(*ip));
		if (!ip || strmap_put(srv->ips, key, ip) < 0) {
			free(ip);
			return "out of memory";
		}
	}
	if (ip->count >= srv->lim.max_conn_per_ip)
		return "connections from this address (RTMP_MAX_CONN_PER_IP)";
	if (ip->hs_count >= srv->lim.max_handshakes_per_ip) {
		*hs_limit = true;
		return "handshakes under way from this address (RTMP_MAX_HANDSHAKES_PER_IP)";
	}
	ip->count++;
	ip->hs_count++;
	return NULL;
}

void rtmp_server_conn_handshaken(struct rtmp_server *srv, const struct sockaddr_storage *peer)
{
	char key[IP_KEY_LEN];
	struct ip_count *ip;

	ip_key(peer, key);
	ip = strmap_get(srv->ips, key);
	if (ip && ip->hs_count > 0)
		ip->hs_count--;
	if (srv->n_handshakes > 0)
		srv->n_handshakes--;
}

static void on_trim(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct rtmp_server *srv = arg;

	log_debug(NULL, "rtmp: %u connections closed: heap trimmed (%s)", srv->closed_since_trim,
		  malloc_trim(0) ? "memory given back" : "nothing to give back");
	srv->closed_since_trim = 0;
}

void rtmp_server_conn_gone(struct rtmp_server *srv, const struct sockaddr_storage *peer,
			   bool in_handshake)
{
	char key[IP_KEY_LEN];
	struct ip_count *ip;

	if (in_handshake)
		rtmp_server_conn_handshaken(srv, peer);
	srv->n_conns--;
	if (++srv->closed_since_trim >= TRIM_AFTER_CLOSES && srv->trim_timer &&
	    !evloop_timer_armed(srv->trim_timer))
		evloop_timer_start(srv->trim_timer, TRIM_DELAY_MS);
	ip_key(peer, key);
	ip = strmap_get(srv->ips, key);
	if (ip && --ip->count == 0)
		free(strmap_del(srv->ips, key));
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

/* Closes the accepted @fd at once, counts the refusal and logs why (within the line budget). */
static void refuse(struct rtmp_server *srv, int fd, const char *who, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void refuse(struct rtmp_server *srv, int fd, const char *who, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	close(fd);
	srv->stats.refused++;
	if (!log_limit_ok(&srv->refusal_log, evloop_now(srv->loop), NULL))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn(NULL, "rtmp: refused %s: %s", who, why);
}

static void on_accept(struct evloop *loop, struct ev_io *io, int lfd, unsigned events, void *arg)
{
	struct listener *l = arg;
	struct rtmp_server *srv = l->srv;

	/* Bounded per wake-up, so a connection storm cannot starve established sessions. */
	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		char who[INET6_ADDRSTRLEN + 8];
		struct rtmp_conn *c;
		const char *why;
		bool hs_limit;
		int one = 1;
		int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn(NULL, "rtmp: accept failed: %s", strerror(errno));
			return;
		}
		describe(&peer, who, sizeof(who));
		if (srv->n_conns >= srv->lim.max_connections) {
			refuse(srv, fd, who, "%u connections open (RTMP_MAX_CONNECTIONS)", srv->n_conns);
			continue;
		}
		if (srv->n_handshakes >= srv->lim.max_handshakes) {
			srv->stats.handshakes_refused++;
			refuse(srv, fd, who, "%u connections in the handshake (RTMP_MAX_HANDSHAKES)",
			       srv->n_handshakes);
			continue;
		}
		why = take_ip(srv, &peer, &hs_limit);
		if (why) {
			if (hs_limit)
				srv->stats.handshakes_refused++;
			refuse(srv, fd, who, "%s", why);
			continue;
		}
		srv->n_conns++;
		srv->n_handshakes++;
		srv->stats.accepted++;
		if (l->tls)
			srv->stats.tls_accepted++;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = rtmp_conn_new(srv, loop, fd, &peer, ++srv->next_id, l->tls);
		if (!c) {
			log_warn(NULL, "rtmp: refused %s: out of memory", who);
			rtmp_server_conn_gone(srv, &peer, true);
			close(fd);
		}
	}
}

static void before_sleep(struct evloop *loop, void *arg)
{
	struct rtmp_server *srv = arg;

	rtmp_conn_flush_pending(srv);
	log_limit_flush(&srv->refusal_log, evloop_now(srv->loop), NULL);
}

struct rtmp_server *rtmp_server_new(struct evloop *loop, const struct rtmp_limits *lim)
{
	struct rtmp_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	srv->loop = loop;
	srv->refusal_log.what = "connections refused";
	srv->lim = *lim;
	srv->trim_timer = evloop_timer_new(loop, on_trim, srv);
	srv->ips = strmap_new(IP_BUCKETS, 0);
	if (!srv->trim_timer || !srv->ips || evloop_before_sleep(loop, before_sleep, srv) < 0) {
		evloop_timer_del(&srv->trim_timer);
		strmap_destroy(&srv->ips, NULL);
		free(srv);
		return NULL;
	}
	return srv;
}

int rtmp_server_listen(struct rtmp_server *srv, const char *bind_addr, int port,
		       struct tls_ctx *tls)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	const char *what = tls ? "rtmps" : "rtmp";
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct listener *l;
	char portstr[16];
	int one = 1, err;

	if (srv->n_lis == MAX_LISTENERS)
		return -ENOSPC;
	l = &srv->lis[srv->n_lis];
	*l = (struct listener){.srv = srv, .fd = -1, .tls = tls};
	snprintf(portstr, sizeof(portstr), "%d", port);
	err = getaddrinfo(bind_addr, portstr, &hints, &ai);
	if (err) {
		log_error(NULL, "%s: bad listen address %s: %s", what, bind_addr, gai_strerror(err));
		return -EINVAL;
	}
	l->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		err = -errno;
		log_error(NULL, "%s: socket: %s", what, strerror(errno));
		goto out_free;
	}
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(l->fd, 1024) < 0) {
		err = -errno;
		log_error(NULL, "%s: cannot listen on %s:%d: %s", what, bind_addr, port,
			  strerror(errno));
		goto out_close;
	}
	if (getsockname(l->fd, (struct sockaddr *)&ss, &sslen) == 0)
		l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
	l->io = evloop_io_add(srv->loop, l->fd, EV_READ, on_accept, l);
	if (!l->io) {
		err = -errno;
		log_error(NULL, "%s: cannot register the listener: %s", what, strerror(errno));
		goto out_close;
	}
	freeaddrinfo(ai);
	srv->n_lis++;
	log_info(NULL, "%s: listening on %s:%d", what, bind_addr, l->port);
	return l->port;

out_close:
	close(l->fd);
out_free:
	freeaddrinfo(ai);
	return err < 0 ? err : -EIO;
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
	evloop_timer_del(&srv->trim_timer);
	for (size_t i = 0; i < srv->n_lis; i++) {
		evloop_io_del(&srv->lis[i].io);
		close(srv->lis[i].fd);
	}
	strmap_destroy(&srv->ips, free);
	free(srv);
	*srvp = NULL;
}

void rtmp_server_pause(struct rtmp_server *srv)
{
	bool paused = false;

	for (size_t i = 0; srv && i < srv->n_lis; i++)
		if (srv->lis[i].io && evloop_io_set(srv->lis[i].io, 0) == 0)
			paused = true;
	if (paused)
		log_info(NULL, "rtmp: no longer accepting connections");
}

/* The listener with TLS (@tls) or without, NULL when there is none. */
static const struct listener *find_listener(const struct rtmp_server *srv, bool tls)
{
	for (size_t i = 0; i < srv->n_lis; i++)
		if ((srv->lis[i].tls != NULL) == tls)
			return &srv->lis[i];
	return NULL;
}

int rtmp_server_port(const struct rtmp_server *srv)
{
	const struct listener *l = find_listener(srv, false);

	return l ? l->port : 0;
}

int rtmp_server_tls_port(const struct rtmp_server *srv)
{
	const struct listener *l = find_listener(srv, true);

	return l ? l->port : 0;
}

struct tls_ctx *rtmp_server_tls(const struct rtmp_server *srv)
{
	const struct listener *l = find_listener(srv, true);

	return l ? l->tls : NULL;
}

unsigned rtmp_server_conn_count(const struct rtmp_server *srv)
{
	return srv->n_conns;
}

unsigned rtmp_server_handshake_count(const struct rtmp_server *srv)
{
	return srv->n_handshakes;
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

	log_info(NULL, "stats: connections=%u handshakes=%u accepted=%llu refused=%llu handshakes_refused=%llu tls_accepted=%llu tls_failures=%llu msgs_in=%llu msgs_out=%llu bytes_in=%llu bytes_out=%llu media_dropped=%llu",
		 srv->n_conns, srv->n_handshakes, (unsigned long long)st->accepted,
		 (unsigned long long)st->refused, (unsigned long long)st->handshakes_refused,
		 (unsigned long long)st->tls_accepted, (unsigned long long)st->tls_failures,
		 (unsigned long long)st->msgs_in, (unsigned long long)st->msgs_out,
		 (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
		 (unsigned long long)st->media_dropped);
}
