/*
 * test_httpd.c - the HTTP server on the evloop, with real sockets on 127.0.0.1: GET of a route
 * (/metrics with the Prometheus content type, /healthz), HEAD, 404 for an unknown path, 405 for
 * another method, an over-long request line refused and closed, a slow client that never
 * finishes its request neither blocks others nor stays beyond the timeout, the connection
 * limit (one more waits in the backlog until a slot frees), a port already taken, and the
 * METRICS_* configuration.
 *
 * The clients are plain non-blocking sockets polled between iterations of the one loop.
 */
#include "evloop.h"
#include "harness.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct evloop *loop;

struct client {
	int fd;
	char resp[65536];
	size_t len;
	bool closed; /* the server closed (EOF or reset) */
};

static int client_open(struct client *c, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

	memset(c, 0, sizeof(*c));
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -errno;
	/* Loopback: connect completes from the listen backlog, before the server accepts. */
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -errno;
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

static bool client_send(struct client *c, const char *data, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			evloop_run_once(loop, 5);
			continue;
		}
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

static void client_poll(struct client *c)
{
	while (!c->closed && c->len < sizeof(c->resp) - 1) {
		ssize_t n = recv(c->fd, c->resp + c->len, sizeof(c->resp) - 1 - c->len, 0);

		if (n > 0) {
			c->len += (size_t)n;
			c->resp[c->len] = '\0';
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			c->closed = true;
		} else {
			break;
		}
	}
}

/* Runs the loop until the server closed @c, or @max_ms; true when closed. */
static bool run_until_closed(struct client *c, int max_ms)
{
	uint64_t end = evloop_now(loop) + (uint64_t)max_ms;

	while (!c->closed && evloop_now(loop) < end) {
		evloop_run_once(loop, 10);
		client_poll(c);
	}
	return c->closed;
}

/* Runs the loop until @c has a complete response head and (unless @head_only) Content-Length
 * bytes of body. */
static bool run_until_head(struct client *c, int max_ms, bool head_only)
{
	uint64_t end = evloop_now(loop) + (uint64_t)max_ms;

	while (evloop_now(loop) < end) {
		const char *head_end, *cl;

		evloop_run_once(loop, 10);
		client_poll(c);
		head_end = strstr(c->resp, "\r\n\r\n");
		if (!head_end)
			continue;
		cl = strcasestr(c->resp, "\r\nContent-Length: ");
		if (head_only || !cl || cl > head_end)
			return true;
		if (c->len - (size_t)(head_end + 4 - c->resp) >= strtoul(cl + 18, NULL, 10))
			return true;
	}
	return false;
}

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int status_of(const struct client *c)
{
	int st = 0;

	if (sscanf(c->resp, "HTTP/1.%*d %d", &st) != 1)
		return 0;
	return st;
}

static const char *body_of(const struct client *c)
{
	const char *p = strstr(c->resp, "\r\n\r\n");

	return p ? p + 4 : "";
}

static bool run_until_response(struct client *c, int max_ms)
{
	return run_until_head(c, max_ms, false);
}

/* One request on a fresh connection; the response lands in @c (closed by the caller). */
static int request(struct client *c, uint16_t port, const char *req)
{
	if (client_open(c, port) < 0 || !client_send(c, req, strlen(req)))
		return 0;
	if (!run_until_head(c, 3000, strncmp(req, "HEAD ", 5) == 0))
		return 0;
	return status_of(c);
}

/* --- the server under test ------------------------------------------------------------------ */

static int handled;

static void on_ok(struct httpd_reply *r, void *arg)
{
	(void)arg;
	handled++;
	buf_append(&r->body, "ok\n", 3);
}

static void on_unavailable(struct httpd_reply *r, void *arg)
{
	(void)arg;
	r->status = 503;
	buf_append(&r->body, "not ready: testing\n", 19);
}

static struct metrics *reg;

static struct httpd *start(unsigned max_conn, unsigned timeout_s, uint16_t port)
{
	struct httpd_config cfg = {
	    .bind = "127.0.0.1",
	    .port = port,
	    .max_connections = max_conn,
	    .timeout_s = timeout_s,
	    .max_request = 4096,
	};
	const struct httpd_route routes[] = {
	    {.path = "/metrics", .fn = metrics_http_handler, .arg = reg},
	    {.path = "/healthz", .fn = on_ok},
	    {.path = "/readyz", .fn = on_unavailable},
	};

	return httpd_new(loop, &cfg, routes, sizeof(routes) / sizeof(routes[0]));
}

static void test_routes(void)
{
	struct httpd *h = start(8, 5, 0);
	struct httpd_stats st;
	struct client c;
	uint16_t port;

	CHECK(h != NULL);
	if (!h)
		return;
	port = httpd_port(h);
	CHECK(port != 0);

	CHECK_EQ_INT(
	    request(&c, port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
	    200);
	CHECK(strcasestr(c.resp, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	CHECK(strstr(body_of(&c), "# TYPE rtmp2sip_test_requests_total counter\n"));
	CHECK(strstr(body_of(&c), "rtmp2sip_test_requests_total 41\n"));
	client_close(&c);

	handled = 0;
	CHECK_EQ_INT(request(&c, port, "GET /healthz HTTP/1.0\r\n\r\n"), 200);
	CHECK_EQ_STR(body_of(&c), "ok\n");
	CHECK_EQ_INT(handled, 1);
	CHECK(run_until_closed(&c, 2000)); /* HTTP/1.0: the server closes */
	client_close(&c);

	CHECK_EQ_INT(request(&c, port, "GET /readyz HTTP/1.0\r\n\r\n"), 503);
	CHECK_EQ_STR(body_of(&c), "not ready: testing\n");
	client_close(&c);

	CHECK_EQ_INT(request(&c, port, "HEAD /healthz HTTP/1.0\r\n\r\n"), 200);
	CHECK(run_until_closed(&c, 2000));
	CHECK_EQ_STR(body_of(&c), "");
	client_close(&c);

	CHECK_EQ_INT(request(&c, port, "GET /nope HTTP/1.0\r\n\r\n"), 404);
	client_close(&c);
	CHECK_EQ_INT(request(&c, port, "GET /healthz/x HTTP/1.0\r\n\r\n"), 404);
	client_close(&c);

	CHECK_EQ_INT(request(&c, port,
			     "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
		     405);
	CHECK(strcasestr(c.resp, "\r\nAllow: GET, HEAD\r\n"));
	client_close(&c);
	CHECK_EQ_INT(request(&c, port, "DELETE /healthz HTTP/1.0\r\n\r\n"), 405);
	client_close(&c);

	/* Keep-alive: two requests on one connection. */
	CHECK_EQ_INT(request(&c, port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
	c.len = 0;
	c.resp[0] = '\0';
	CHECK(client_send(&c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35));
	CHECK(run_until_response(&c, 2000));
	CHECK_EQ_INT(status_of(&c), 200);
	client_close(&c);

	httpd_get_stats(h, &st);
	CHECK(st.requests >= 10);
	CHECK_EQ_INT(st.not_found, 2);
	CHECK_EQ_INT(st.bad_method, 2);
	httpd_destroy(&h);
	CHECK(h == NULL);
	httpd_destroy(&h);
}

static void test_long_request_line(void)
{
	struct httpd *h = start(8, 5, 0);
	struct client c, ok;
	size_t n = 20000;
	char *req = malloc(n + 64);
	int st;

	CHECK(h && req);
	if (!h || !req) {
		free(req);
		httpd_destroy(&h);
		return;
	}
	memcpy(req, "GET /", 5);
	memset(req + 5, 'a', n);
	strcpy(req + 5 + n, " HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK_EQ_INT(client_open(&c, httpd_port(h)), 0);
	client_send(&c, req, strlen(req)); /* the server may close before reading it all */
	CHECK(run_until_closed(&c, 3000));
	st = status_of(&c);
	CHECK(st == 414 || st == 431 || st == 400);
	client_close(&c);
	/* ... and the server goes on. */
	CHECK_EQ_INT(request(&ok, httpd_port(h), "GET /healthz HTTP/1.0\r\n\r\n"), 200);
	client_close(&ok);
	/* Headers above the limit too. */
	memcpy(req, "GET /healthz HTTP/1.1\r\nX-Big: ", 30);
	memset(req + 30, 'b', n);
	strcpy(req + 30 + n, "\r\n\r\n");
	CHECK_EQ_INT(client_open(&c, httpd_port(h)), 0);
	client_send(&c, req, strlen(req));
	CHECK(run_until_closed(&c, 3000));
	st = status_of(&c);
	CHECK(st == 431 || st == 413 || st == 400);
	client_close(&c);
	free(req);
	httpd_destroy(&h);
}

static void test_slow_client(void)
{
	struct httpd *h = start(8, 1, 0);
	struct client slow, other;
	uint64_t t0;

	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_EQ_INT(client_open(&slow, httpd_port(h)), 0);
	CHECK(client_send(&slow, "GET /metr", 9)); /* and nothing more */
	evloop_run_once(loop, 10);
	t0 = evloop_now(loop);
	/* Others are served at once meanwhile. */
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(request(&other, httpd_port(h), "GET /healthz HTTP/1.0\r\n\r\n"), 200);
		client_close(&other);
	}
	CHECK(evloop_now(loop) - t0 < 900);
	client_poll(&slow);
	CHECK(!slow.closed);
	CHECK_EQ_INT(slow.len, 0);
	/* The timeout (1 s) closes it. */
	CHECK(run_until_closed(&slow, 4000));
	CHECK(evloop_now(loop) - t0 >= 900);
	client_close(&slow);
	httpd_destroy(&h);
}

static void test_connection_limit(void)
{
	struct httpd *h = start(2, 5, 0);
	struct client a, b, c;
	uint64_t end;

	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_EQ_INT(client_open(&a, httpd_port(h)), 0);
	CHECK_EQ_INT(client_open(&b, httpd_port(h)), 0);
	for (int i = 0; i < 10; i++)
		evloop_run_once(loop, 10);
	/* A third waits in the listen backlog: no answer while both slots are held... */
	CHECK_EQ_INT(client_open(&c, httpd_port(h)), 0);
	CHECK(client_send(&c, "GET /healthz HTTP/1.0\r\n\r\n", 25));
	end = evloop_now(loop) + 300;
	while (evloop_now(loop) < end) {
		evloop_run_once(loop, 10);
		client_poll(&c);
	}
	CHECK_EQ_INT(c.len, 0);
	CHECK(!c.closed);
	/* ... and is served as soon as one leaves. */
	client_close(&a);
	CHECK(run_until_response(&c, 1000));
	CHECK_EQ_INT(status_of(&c), 200);
	client_close(&c);
	client_close(&b);
	httpd_destroy(&h);
}

static void test_port_taken(void)
{
	struct httpd *h = start(4, 5, 0), *h2;

	CHECK(h != NULL);
	if (!h)
		return;
	errno = 0;
	h2 = start(4, 5, httpd_port(h));
	CHECK(h2 == NULL);
	CHECK_EQ_INT(errno, EADDRINUSE);
	httpd_destroy(&h2);
	httpd_destroy(&h);
}

static void test_config_from_env(void)
{
	struct httpd_config cfg;

	unsetenv("TM_PORT");
	unsetenv("TM_BIND");
	CHECK_EQ_INT(httpd_config_from_env(&cfg, "TM", 9100), 0);
	CHECK_EQ_INT(cfg.port, 9100);
	CHECK_EQ_STR(cfg.bind, "127.0.0.1");
	setenv("TM_PORT", "0", 1);
	setenv("TM_BIND", "::1", 1);
	CHECK_EQ_INT(httpd_config_from_env(&cfg, "TM", 9100), 0);
	CHECK_EQ_INT(cfg.port, 0);
	CHECK_EQ_STR(cfg.bind, "::1");
	setenv("TM_PORT", "65536", 1);
	CHECK_EQ_INT(httpd_config_from_env(&cfg, "TM", 9100), -EINVAL);
	setenv("TM_PORT", "nine", 1);
	CHECK_EQ_INT(httpd_config_from_env(&cfg, "TM", 9100), -EINVAL);
	setenv("TM_PORT", "9200", 1);
	setenv("TM_BIND", "localhost", 1);
	CHECK_EQ_INT(httpd_config_from_env(&cfg, "TM", 9100), -EINVAL);
	unsetenv("TM_PORT");
	unsetenv("TM_BIND");
}

int main(void)
{
	struct metric *m;

	signal(SIGPIPE, SIG_IGN);
	log_init("test_httpd", LOG_LVL_WARN);
	loop = evloop_new();
	reg = metrics_new("rtmp2sip_");
	m = reg ? metrics_add(reg, METRIC_COUNTER, "test_requests_total", "Test.", NULL) : NULL;
	if (!loop || !m) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	metric_add(m, 41);
	TEST_RUN(test_routes);
	TEST_RUN(test_long_request_line);
	TEST_RUN(test_slow_client);
	TEST_RUN(test_connection_limit);
	TEST_RUN(test_port_taken);
	TEST_RUN(test_config_from_env);
	metrics_destroy(&reg);
	evloop_destroy(&loop);
	return TEST_DONE();
}
