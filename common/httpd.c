/*
 * httpd.c - a small HTTP server on the evloop, by libmicrohttpd in external polling mode.
 *
 *     listen socket (ours: bind errors are exact) --> MHD_start_daemon(MHD_USE_EPOLL, no thread)
 *
 *     evloop: MHD's epoll fd readable ----+
 *             the timeout timer fires ----+--> MHD_run() (never blocks) --> rearm:
 *                                                MHD_get_timeout() == YES: timer in t ms
 *                                                (0 when MHD has work left), else timer off
 *
 *     MHD_run --> on_request(method, url): GET/HEAD --> route? handler : 404;  else 405
 *
 * MHD bounds the rest: MHD_OPTION_CONNECTION_MEMORY_LIMIT is the per-connection memory that
 * the request line and headers must fit in (an over-long one is answered 414 or 431 and the
 * connection closed), MHD_OPTION_CONNECTION_LIMIT the connections at once (others are accepted
 * and closed at once), MHD_OPTION_CONNECTION_TIMEOUT the seconds a connection may sit idle or
 * with a request unfinished.
 */
#include "httpd.h"

#include "config.h"
#include "evloop.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SID	       "httpd"
#define TIMEOUT_CAP_MS 60000

struct httpd {
	struct evloop *loop;
	struct MHD_Daemon *mhd;
	struct ev_io *io;
	struct ev_timer *timer;
	struct httpd_route routes[HTTPD_MAX_ROUTES];
	size_t n_routes;
	uint16_t port;
	unsigned max_conn;
	struct httpd_stats st;
};

/* MHD's own messages (a client's malformed request, a refused connection): debug only, a peer
 * must not be able to fill the log. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];
	size_t n;

	(void)cls;
	if (!log_enabled(LOG_LVL_DEBUG))
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug(SID, "libmicrohttpd: %s", line);
}

/* Logs a request line; MHD has percent-decoded the path, so control bytes are masked. */
static void log_request(const char *method, const char *url)
{
	char m[16], u[128];

	snprintf(m, sizeof(m), "%s", method);
	snprintf(u, sizeof(u), "%s", url);
	for (char *p = m; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	for (char *p = u; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	log_debug(SID, "%s %s", m, u);
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
			       struct buf *body, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (buf_used(body) > 0) {
		/* MHD frees the buffer (free()) once sent. */
		resp = MHD_create_response_from_buffer(buf_used(body), body->data,
						       MHD_RESPMEM_MUST_FREE);
		if (resp)
			*body = (struct buf){0};
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	buf_free(body);
	if (!resp)
		return MHD_NO; /* MHD closes the connection */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result text_reply(struct MHD_Connection *conn, unsigned status, const char *text,
				  const char *allow)
{
	struct buf b = {0};

	if (buf_append(&b, text, strlen(text)) < 0)
		return MHD_NO;
	return respond(conn, status, "text/plain; charset=utf-8", &b, allow);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct httpd *h = cls;
	struct httpd_reply r = {.status = 200, .content_type = "text/plain; charset=utf-8"};

	(void)version, (void)upload_data;
	/* The first call comes with the headers. A request with a body (a method we refuse, or a
	 * GET with a body) is answered now: MHD then closes the connection after the response
	 * instead of reading a body no one wants. Otherwise the answer waits for the second call,
	 * once the request is complete, so the connection may be kept alive. */
	if (!*con_cls) {
		bool bodyless =
		    !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length") &&
		    !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
		bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
			   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

		*con_cls = h;
		if (get && bodyless)
			return MHD_YES;
	}
	*upload_data_size = 0;
	h->st.requests++;
	if (log_enabled(LOG_LVL_DEBUG))
		log_request(method, url);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		h->st.bad_method++;
		return text_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
				  "GET, HEAD");
	}
	for (size_t i = 0; i < h->n_routes; i++) {
		if (strcmp(url, h->routes[i].path) != 0)
			continue;
		h->routes[i].fn(&r, h->routes[i].arg);
		if (r.status < 100 || r.status > 599) {
			buf_free(&r.body);
			return text_reply(conn, 500, "internal error\n", NULL);
		}
		return respond(conn, r.status, r.content_type ? r.content_type : "text/plain",
			       &r.body, NULL);
	}
	h->st.not_found++;
	return text_reply(conn, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
}

/* --- the loop side ---------------------------------------------------------------------------- */

static void rearm(struct httpd *h)
{
	MHD_UNSIGNED_LONG_LONG t = 0;

	if (MHD_get_timeout(h->mhd, &t) == MHD_YES)
		evloop_timer_start(h->timer, t > TIMEOUT_CAP_MS ? TIMEOUT_CAP_MS : (uint64_t)t);
	else
		evloop_timer_stop(h->timer);
}

static unsigned connections(const struct httpd *h)
{
	const union MHD_DaemonInfo *in =
	    MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return in ? in->num_connections : 0;
}

static void service(struct httpd *h)
{
	bool full = connections(h) >= h->max_conn;

	if (MHD_run(h->mhd) != MHD_YES)
		log_warn(SID, "MHD_run failed");
	/* At the connection limit MHD takes its listen socket out of its epoll set, and puts it
	 * back only at the start of a run: when this run freed a slot, run once more, or the
	 * clients waiting in the backlog would wait for the next unrelated event. */
	if (full && connections(h) < h->max_conn && MHD_run(h->mhd) != MHD_YES)
		log_warn(SID, "MHD_run failed");
	rearm(h);
}

static void on_io(struct evloop *loop, struct ev_io *io, int fd, unsigned events, void *arg)
{
	(void)loop, (void)io, (void)fd, (void)events;
	service(arg);
}

static void on_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	(void)loop, (void)t;
	service(arg);
}

/* A bound, listening, non-blocking socket for @bind:@port; -errno (logged) on failure. */
static int listen_socket(const char *bind_ip, uint16_t port, bool *v6)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1, e;

	if (inet_pton(AF_INET, bind_ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
		*v6 = false;
	} else if (inet_pton(AF_INET6, bind_ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
		*v6 = true;
	} else {
		log_error(SID, "\"%s\" is not a numeric IPv4 or IPv6 address", bind_ip);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (*v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
		e = errno;
		log_error(SID, "cannot listen on %s%s%s:%u: %s", *v6 ? "[" : "", bind_ip,
			  *v6 ? "]" : "", port, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

static uint16_t socket_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int httpd_config_from_env(struct httpd_config *cfg, const char *prefix, uint16_t default_port)
{
	char port_var[64], bind_var[64];
	unsigned char addr[sizeof(struct in6_addr)];
	int64_t port;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(port_var, sizeof(port_var), "%s_PORT", prefix);
	snprintf(bind_var, sizeof(bind_var), "%s_BIND", prefix);
	if (config_int(port_var, default_port, 0, 65535, &port) < 0)
		return -EINVAL;
	cfg->port = (uint16_t)port;
	cfg->bind = config_str(bind_var, "127.0.0.1");
	if (inet_pton(AF_INET, cfg->bind, addr) != 1 && inet_pton(AF_INET6, cfg->bind, addr) != 1) {
		log_error(NULL, "config: %s=\"%s\" is not a numeric IPv4 or IPv6 address", bind_var,
			  cfg->bind);
		return -EINVAL;
	}
	return 0;
}

struct httpd *httpd_new(struct evloop *loop, const struct httpd_config *cfg,
			const struct httpd_route *routes, size_t n_routes)
{
	const union MHD_DaemonInfo *info;
	struct httpd *h;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	unsigned max_conn = cfg && cfg->max_connections ? cfg->max_connections : 16;
	unsigned timeout = cfg && cfg->timeout_s ? cfg->timeout_s : 10;
	size_t mem = cfg && cfg->max_request ? cfg->max_request : 8192;
	bool v6 = false;
	int fd, e = ENOMEM;

	if (!loop || !routes || n_routes == 0 || n_routes > HTTPD_MAX_ROUTES) {
		errno = EINVAL;
		return NULL;
	}
	for (size_t i = 0; i < n_routes; i++)
		if (!routes[i].path || routes[i].path[0] != '/' || !routes[i].fn) {
			errno = EINVAL;
			return NULL;
		}
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->loop = loop;
	memcpy(h->routes, routes, n_routes * sizeof(*routes));
	h->n_routes = n_routes;
	fd = listen_socket(cfg && cfg->bind ? cfg->bind : "127.0.0.1", cfg ? cfg->port : 0, &v6);
	if (fd < 0) {
		e = -fd;
		goto out_free;
	}
	h->port = socket_port(fd);
	h->max_conn = max_conn;
	if (v6)
		flags |= MHD_USE_IPv6;
	/* MHD owns the socket from here, and closes it in MHD_stop_daemon(). */
	/* Options as (option, value) pairs. */
	/* clang-format off */
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
				  MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				  MHD_OPTION_CONNECTION_LIMIT, max_conn,
				  MHD_OPTION_CONNECTION_TIMEOUT, timeout,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
				  MHD_OPTION_END);
	/* clang-format on */
	if (!h->mhd) {
		/* Who owns @fd on this path is not documented: it is left alone rather than risk
		 * closing a descriptor MHD already closed and something else reused. */
		log_error(SID, "libmicrohttpd did not start on port %u", h->port);
		e = EIO;
		goto out_free;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	h->timer = evloop_timer_new(loop, on_timer, h);
	h->io = info ? evloop_io_add(loop, info->epoll_fd, EV_READ, on_io, h) : NULL;
	if (!h->timer || !h->io) {
		e = info ? ENOMEM : EIO;
		goto out_stop;
	}
	rearm(h);
	return h;

out_stop:
	evloop_io_del(&h->io);
	evloop_timer_del(&h->timer);
	MHD_stop_daemon(h->mhd);
out_free:
	free(h);
	errno = e;
	return NULL;
}

void httpd_destroy(struct httpd **hp)
{
	struct httpd *h = hp ? *hp : NULL;

	if (!h)
		return;
	evloop_io_del(&h->io); /* before MHD closes the epoll fd */
	evloop_timer_del(&h->timer);
	MHD_stop_daemon(h->mhd);
	free(h);
	*hp = NULL;
}

uint16_t httpd_port(const struct httpd *h)
{
	return h->port;
}

void httpd_get_stats(const struct httpd *h, struct httpd_stats *st)
{
	*st = h->st;
}
