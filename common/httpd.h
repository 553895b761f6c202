/*
 * httpd.h - a small HTTP server for metrics and health checks, on the process's event loop.
 *
 * libmicrohttpd does the HTTP (parsing, keep-alive, HEAD, errors such as 414 for an over-long
 * request line) in "external polling" mode with its own epoll set: that epoll fd is watched by
 * the evloop, MHD_run() services it, and one loop timer follows MHD_get_timeout(). No thread,
 * nothing blocks: a client that never finishes its request only holds its own connection until
 * the timeout, and never delays the loop or other clients.
 *
 * Requests are answered from a table of exact paths: GET (and HEAD) of a known path calls its
 * handler, an unknown path gets 404, any other method 405 with "Allow: GET, HEAD". Bounds:
 * connections at once, bytes of request line + headers, seconds a connection may stay idle or
 * unfinished.
 */
#ifndef RS_HTTPD_H
#define RS_HTTPD_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

struct evloop;
struct httpd;

#define HTTPD_MAX_ROUTES 8

struct httpd_config {
	const char *bind;	  /* numeric IPv4 or IPv6 address; NULL: 127.0.0.1 */
	uint16_t port;		  /* 0: any free port (httpd_port() tells which) */
	unsigned max_connections; /* 0: 16 */
	unsigned timeout_s;	  /* idle or unfinished connection closed after this; 0: 10 */
	size_t max_request; /* memory per connection, bounds request line + headers; 0: 8192 */
};

/* What a handler answers: status (preset 200), content type (preset text/plain) and body. */
struct httpd_reply {
	unsigned status;
	const char *content_type; /* static string */
	struct buf body;	  /* append to it; the server takes it over */
};

/* Fills @r for a GET of its path. Runs on the loop: must not block. */
typedef void (*httpd_handler_fn)(struct httpd_reply *r, void *arg);

struct httpd_route {
	const char *path; /* exact, e.g. "/metrics"; must outlive the server */
	httpd_handler_fn fn;
	void *arg;
};

/* Counters, for the metrics of the process itself. */
struct httpd_stats {
	uint64_t requests; /* answered by a handler, 404 or 405 */
	uint64_t not_found, bad_method;
};

/*
 * Reads <@prefix>_PORT (0..65535, default @default_port; 0 means "no server") and <@prefix>_BIND
 * (a numeric IPv4 or IPv6 address, default 127.0.0.1) into @cfg; the other fields get their
 * defaults. Returns 0, or -EINVAL after logging which variable is wrong.
 */
int httpd_config_from_env(struct httpd_config *cfg, const char *prefix, uint16_t default_port);

/*
 * Starts listening on cfg->bind:cfg->port and serving @routes (1..HTTPD_MAX_ROUTES, copied).
 * Returns NULL with errno set: EINVAL (bad address or arguments), EADDRINUSE / EACCES / ...
 * when the socket cannot be bound (the cause is logged), ENOMEM.
 */
struct httpd *httpd_new(struct evloop *loop, const struct httpd_config *cfg,
			const struct httpd_route *routes, size_t n_routes);

/* Closes every connection and the listener; NULL-safe, clears *hp. Not from a handler. */
void httpd_destroy(struct httpd **hp);

/* The port listened on. */
uint16_t httpd_port(const struct httpd *h);

/* The counters. */
void httpd_get_stats(const struct httpd *h, struct httpd_stats *st);

#endif
