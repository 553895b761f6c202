/*
 * test_zap.c - CURVE on real ZeroMQ sockets: a ROUTER server with the ZAP handler, and DEALER
 * clients: an allowed key gets through and its messages carry the key as User-Id; an unlisted
 * key, a client without CURVE and a client that expects another server key get nothing through
 * (the handler counts the refusals); a reload of the allowed list lets a new key in and keeps an
 * old connection going while its key is refused to new ones; one handler per context; bad keys
 * fail zsock_new.
 */
#include "curve.h"
#include "evloop.h"
#include "harness.h"
#include "log.h"
#include "zap.h"
#include "zsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static struct evloop *loop;
static char dir[64], list_path[128];

struct pair {
	char pub[41], sec[41];
};

static struct pair server, a, b, c;

/* What the server received, by sender. */
static struct {
	int n;
	char last_user[64];
	char last_body[32];
} rx;

static void on_server(struct zsock *zs, const struct zsock_frame *f, size_t n, void *arg)
{
	const char *uid = zsock_user_id(zs);

	(void)arg;
	rx.n++;
	snprintf(rx.last_user, sizeof(rx.last_user), "%s", uid ? uid : "(none)");
	if (n == 2)
		snprintf(rx.last_body, sizeof(rx.last_body), "%.*s", (int)f[1].len,
			 (const char *)f[1].data);
}

static void on_client(struct zsock *zs, const struct zsock_frame *f, size_t n, void *arg)
{
	(void)zs, (void)f, (void)n, (void)arg;
}

/* A DEALER toward @ep: CURVE with @p and @server_key, or plain ZeroMQ when @p is NULL. */
static struct zsock *client(const char *ep, const struct pair *p, const char *server_key)
{
	struct zsock_opts o = {.name = "client"};
	struct zsock *zs;

	if (p) {
		o.curve_secret_key = p->sec;
		o.curve_public_key = p->pub;
		o.curve_server_key = server_key;
	}
	zs = zsock_new(loop, ZMQ_DEALER, &o, on_client, NULL);
	CHECK(zs != NULL);
	if (zs)
		CHECK_EQ_INT(zsock_connect(zs, ep), 0);
	return zs;
}

/* Sends @body from @zs until the server has it (ZMQ_IMMEDIATE: nothing goes before the
 * handshake completes) or @ms pass. True when it arrived. */
static bool deliver(struct zsock *zs, const char *body, int ms)
{
	const struct zsock_frame f = {body, strlen(body)};
	uint64_t end = evloop_now(loop) + (uint64_t)ms;
	int before = rx.n;
	bool sent = false;

	while (evloop_now(loop) < end) {
		if (!sent)
			sent = zsock_send(zs, &f, 1) == 0;
		evloop_run_once(loop, 10);
		if (rx.n > before && strcmp(rx.last_body, body) == 0)
			return true;
	}
	return false;
}

static void write_list(const char *keys)
{
	FILE *f = fopen(list_path, "w");

	CHECK(f != NULL);
	if (f) {
		fprintf(f, "# allowed in test_zap\n%s", keys);
		fclose(f);
	}
}

static void test_curve_server(void)
{
	struct zsock_opts so = {.name = "server", .curve_secret_key = server.sec};
	struct zap_stats st;
	struct curve *cv = NULL;
	struct zap *zap, *zap2;
	struct zsock *srv, *ca, *cb, *cplain, *cwrong, *cb2, *ca2;
	char ep[256], text[256];

	snprintf(text, sizeof(text), "%s sig-a\n", a.pub);
	write_list(text);
	setenv("CURVE_SECRET_KEY", server.sec, 1);
	setenv("CURVE_ALLOWED_KEYS_FILE", list_path, 1);
	CHECK_EQ_INT(curve_from_env("signalers", &cv), 0);
	if (!cv)
		return;
	zap = zap_new(loop, cv);
	CHECK(zap != NULL);
	zap2 = zap_new(loop, cv);
	CHECK(zap2 == NULL && errno == EADDRINUSE);
	srv = zsock_new(loop, ZMQ_ROUTER, &so, on_server, NULL);
	CHECK(srv != NULL);
	if (!zap || !srv)
		goto out;
	CHECK_EQ_INT(zsock_bind(srv, "tcp://127.0.0.1:*"), 0);
	snprintf(ep, sizeof(ep), "%s", zsock_endpoint(srv));

	/* the allowed key gets through, named by its key */
	ca = client(ep, &a, server.pub);
	CHECK(deliver(ca, "from-a", 3000));
	CHECK_EQ_STR(rx.last_user, a.pub);

	/* an unlisted key, no CURVE at all, a client expecting another server: nothing */
	cb = client(ep, &b, server.pub);
	cplain = client(ep, NULL, NULL);
	cwrong = client(ep, &a, b.pub);
	CHECK(!deliver(cb, "from-b", 600));
	CHECK(!deliver(cplain, "from-plain", 300));
	CHECK(!deliver(cwrong, "from-wrong", 300));
	zap_get_stats(zap, &st);
	CHECK(st.allowed >= 1);
	CHECK(st.refused >= 1); /* b's handshakes (retried every 100 ms) */
	CHECK_EQ_INT(st.malformed, 0);

	/* rotation: b is added and a removed; a's connection goes on, a new one of a is refused */
	snprintf(text, sizeof(text), "%s sig-b\n", b.pub);
	write_list(text);
	CHECK_EQ_INT(curve_reload(cv), 0);
	cb2 = client(ep, &b, server.pub);
	CHECK(deliver(cb2, "from-b2", 3000));
	CHECK_EQ_STR(rx.last_user, b.pub);
	CHECK(deliver(ca, "from-a-again", 1000));
	CHECK_EQ_STR(rx.last_user, a.pub);
	ca2 = client(ep, &a, server.pub);
	CHECK(!deliver(ca2, "from-a2", 600));

	zsock_destroy(&ca);
	zsock_destroy(&ca2);
	zsock_destroy(&cb);
	zsock_destroy(&cb2);
	zsock_destroy(&cplain);
	zsock_destroy(&cwrong);
out:
	zsock_destroy(&srv);
	zap_destroy(&zap);
	zap_destroy(&zap2);
	curve_destroy(&cv);
	unsetenv("CURVE_SECRET_KEY");
	unsetenv("CURVE_ALLOWED_KEYS_FILE");
}

static void test_bad_options(void)
{
	struct zsock_opts o = {.name = "bad", .curve_secret_key = "short"};
	struct curve *off = curve_new(NULL, NULL);

	CHECK(zsock_new(loop, ZMQ_ROUTER, &o, on_server, NULL) == NULL);
	o.curve_secret_key = server.sec;
	o.curve_public_key = a.pub; /* a client without the server's key */
	CHECK(zsock_new(loop, ZMQ_DEALER, &o, on_client, NULL) == NULL);
	CHECK(zap_new(loop, off) == NULL && errno == EINVAL);
	curve_destroy(&off);
}

int main(void)
{
	int ret;

	log_init("test_zap", LOG_LVL_ERROR);
	if (!th_tmpdir(dir, sizeof(dir), "test_zap") || !(loop = evloop_new())) {
		printf("FAIL test_zap: setup\n");
		return 1;
	}
	snprintf(list_path, sizeof(list_path), "%s/allowed", dir);
	zmq_curve_keypair(server.pub, server.sec);
	zmq_curve_keypair(a.pub, a.sec);
	zmq_curve_keypair(b.pub, b.sec);
	zmq_curve_keypair(c.pub, c.sec);
	TEST_RUN(test_curve_server);
	TEST_RUN(test_bad_options);
	ret = TEST_DONE();
	evloop_run_once(loop, 0);
	zsock_context_term();
	evloop_destroy(&loop);
	th_rmtree(dir);
	return ret;
}
