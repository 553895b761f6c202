/*
 * test_ctl_server.c - the worker end of the protocol under CURVE, against the signaler end
 * (dispatcher) and hand-made DEALERs, in one process: an allowed signaler works and its
 * requests and MEDIA carry its id and key; a signaler whose key is not allowed, one without
 * CURVE, one that expects another worker key never get in (each refusal counted by reason); a
 * HELLO claiming a live signaler's id with another key is refused with EPERM on both sockets; a
 * message on a signaler's routing id from another key is not taken as that signaler's, and a
 * cached reply is never replayed to it; once the bound signaler is gone and forgotten its id can
 * be taken by a new key (a restart with a new key pair), not before; WORKER_ENDPOINTS entries
 * name the worker's key, or take the allowed list's only one.
 */
#include "ctl_server.h"
#include "curve.h"
#include "dispatcher.h"
#include "harness.h"
#include "log.h"
#include "zap.h"
#include "zsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static struct evloop *loop;

struct pair {
	char pub[41], sec[41];
};

static struct pair wk, ka, kb, kx;
static struct curve *wcurve;
static struct ctl_server *srv;

static void run_for(int ms)
{
	uint64_t end = evloop_now(loop) + (uint64_t)ms;

	while (evloop_now(loop) < end)
		evloop_run_once(loop, 10);
}

static bool run_until(const int *counter, int target, int max_ms)
{
	uint64_t end = evloop_now(loop) + (uint64_t)max_ms;

	while (*counter < target && evloop_now(loop) < end)
		evloop_run_once(loop, 10);
	return *counter >= target;
}

/* --- the worker end --- */

static struct {
	int requests, media;
	char last_id[WIRE_MAX_ID + 1], last_key[CURVE_KEY_LEN + 1], media_from[WIRE_MAX_ID + 1];
} ws;

static void h_update(struct ctl_server *s, const struct ctl_request *req, const struct wire_msg *m,
		     void *arg)
{
	struct wire_builder b = {0};

	(void)m, (void)arg;
	ws.requests++;
	snprintf(ws.last_id, sizeof(ws.last_id), "%s", req->signaler_id[0] ? req->signaler_id : "-");
	snprintf(ws.last_key, sizeof(ws.last_key), "%s", req->key);
	wire_builder_init(&b, WIRE_OK, 0);
	ctl_server_reply(s, req, &b);
	wire_builder_free(&b);
}

static void w_media(struct ctl_server *s, const char *signaler_id, const struct wire_media *md,
		    void *arg)
{
	(void)s, (void)md, (void)arg;
	ws.media++;
	snprintf(ws.media_from, sizeof(ws.media_from), "%s", signaler_id ? signaler_id : "-");
}

static const struct ctl_handler handlers[] = {{WIRE_UPDATE_LEG, h_update}};

static uint64_t refused(enum ctl_refusal r)
{
	struct ctl_server_stats st;

	ctl_server_get_stats(srv, &st);
	return st.refused[r];
}

/* --- the signaler end --- */

struct drec {
	int up, replies, status;
};

static void on_up(struct dispatcher *d, struct dispatcher_worker *w, bool restarted, void *arg)
{
	(void)d, (void)w, (void)restarted;
	((struct drec *)arg)->up++;
}

static void on_reply(struct dispatcher *d, struct dispatcher_worker *w, int status,
		     const struct wire_msg *reply, void *arg)
{
	struct drec *r = arg;

	(void)d, (void)w, (void)reply;
	r->replies++;
	r->status = status;
}

/* A dispatcher "@id" with key pair @p (NULL: no CURVE) toward the worker, which it takes for
 * @server_key; its worker handle in *w. */
static struct dispatcher *signaler(const char *id, const struct pair *p, const char *allowed,
				   const char *server_key, struct drec *r,
				   struct dispatcher_worker **w, struct curve **cv)
{
	struct dispatcher_callbacks cbs = {.worker_up = on_up, .arg = r};
	struct dispatcher_config cfg = {0};
	struct dispatcher *d;

	*cv = curve_new(p ? p->sec : NULL, allowed);
	CHECK(*cv != NULL);
	cfg.curve = *cv;
	d = dispatcher_new(loop, id, &cbs, &cfg);
	CHECK(d != NULL);
	if (d)
		CHECK_EQ_INT(dispatcher_add_worker(d, ctl_server_ctl_endpoint(srv),
						   ctl_server_media_endpoint(srv), server_key, w),
			     0);
	return d;
}

static void update(struct dispatcher *d, struct dispatcher_worker *w, struct drec *r)
{
	struct wire_builder b = {0};

	wire_builder_init(&b, WIRE_UPDATE_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "leg-1");
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 300, 2, on_reply, r, NULL), 0);
	wire_builder_free(&b);
}

/* --- a hand-made DEALER: any routing id, any key --- */

static struct {
	int msgs;
	uint8_t type;
	uint32_t err;
} raw;

static void on_raw(struct zsock *zs, const struct zsock_frame *f, size_t n, void *arg)
{
	struct wire_msg m;
	struct wire_err e;

	(void)zs, (void)arg;
	if (n != 2 || wire_parse(f[0].data, f[0].len, f[1].data, f[1].len, &m, &e) < 0 ||
	    m.h.type == WIRE_HEARTBEAT)
		return;
	raw.msgs++;
	raw.type = m.h.type;
	raw.err = 0;
	wire_get_u32(&m, WIRE_T_ERR_CODE, &raw.err);
}

static struct zsock *raw_dealer(const struct pair *p, const char *rid, bool media)
{
	struct zsock_opts o = {
		.name = "raw", .routing_id = rid, .routing_id_len = strlen(rid),
		.curve_secret_key = p->sec, .curve_public_key = p->pub, .curve_server_key = wk.pub,
	};
	struct zsock *zs = zsock_new(loop, ZMQ_DEALER, &o, on_raw, NULL);

	CHECK(zs != NULL);
	if (zs)
		CHECK_EQ_INT(zsock_connect(zs, media ? ctl_server_media_endpoint(srv)
						     : ctl_server_ctl_endpoint(srv)),
			     0);
	return zs;
}

/* Sends @type (HELLO as @id, or UPDATE_LEG) with request id @req_id until it leaves, then waits
 * for an answer; the answer's type (0: none). */
static uint8_t raw_request(struct zsock *zs, uint8_t type, uint32_t req_id, const char *id)
{
	struct wire_builder b = {0};
	uint64_t end = evloop_now(loop) + 2000;
	int before = raw.msgs;
	bool sent = false;

	wire_builder_init(&b, type, req_id);
	if (type == WIRE_HELLO)
		wire_put_str(&b, WIRE_T_SIGNALER_ID, id);
	else
		wire_put_str(&b, WIRE_T_LEG_ID, "leg-1");
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	while (evloop_now(loop) < end && raw.msgs == before) {
		if (!sent) {
			const struct zsock_frame f[2] = {
				{b.hdr, WIRE_HDR_LEN},
				{wire_builder_body(&b), wire_builder_body_len(&b)},
			};

			sent = zsock_send(zs, f, 2) == 0;
		}
		evloop_run_once(loop, 10);
	}
	wire_builder_free(&b);
	return raw.msgs > before ? raw.type : 0;
}

/* --- tests --- */

static struct dispatcher *da;
static struct dispatcher_worker *wa;
static struct curve *ca;
static struct drec ra;

/* @d comes up, and its UPDATE_LEG reaches the worker as signaler @id with key @key. */
static void works_as(struct dispatcher *d, struct dispatcher_worker *w, struct drec *r,
		     const char *id, const char *key)
{
	CHECK(run_until(&r->up, 1, 3000));
	update(d, w, r);
	CHECK(run_until(&r->replies, 1, 2000));
	CHECK_EQ_INT(r->status, 0);
	CHECK_EQ_STR(ws.last_id, id);
	CHECK_EQ_STR(ws.last_key, key);
}

static void test_allowed_signaler(void)
{
	ws.requests = 0;
	da = signaler("sig-a", &ka, wk.pub, wk.pub, &ra, &wa, &ca);
	works_as(da, wa, &ra, "sig-a", ka.pub);
	/* media is taken as sig-a's */
	run_for(300); /* the media HELLO */
	CHECK_EQ_INT(dispatcher_send_media(da, wa, "leg-1", 1, 0, "\x82zz", 3), 0);
	CHECK(run_until(&ws.media, 1, 2000));
	CHECK_EQ_STR(ws.media_from, "sig-a");
}

/*
 * Full MEDIA_BATCH messages under CURVE: a few hundred legs' frames in one loop iteration fill
 * batches to WIRE_BATCH_MAX_BODY, whose encrypted frames are larger than the payload. Every
 * frame arrives and the connection stays up (libzmq's size limit once cut it on each one).
 */
static void test_full_batches_under_curve(void)
{
	uint8_t pl[161];
	char id[32];
	int n = 1000;

	memset(pl, 0xff, sizeof(pl));
	pl[0] = 0x82;
	ws.media = 0;
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "leg-%d", i);
		CHECK_EQ_INT(dispatcher_send_media(da, wa, id, (uint32_t)i, 0, pl, sizeof(pl)), 0);
	}
	CHECK(run_until(&ws.media, n, 3000));
	CHECK_EQ_INT(ws.media, n);
	ws.media = 0;
	CHECK_EQ_INT(dispatcher_send_media(da, wa, "leg-1", 1, 0, "\x82zz", 3), 0);
	CHECK(run_until(&ws.media, 1, 2000)); /* still connected */
}

static void test_refused_handshakes(void)
{
	struct dispatcher_worker *w1, *w2, *w3;
	struct dispatcher *d1, *d2, *d3;
	struct curve *c1, *c2, *c3;
	struct drec r1 = {0}, r2 = {0}, r3 = {0};
	struct dispatcher_worker_info info;
	uint64_t key0 = refused(CTL_REFUSED_KEY), plain0 = refused(CTL_REFUSED_NO_CURVE);
	uint64_t crypto0 = refused(CTL_REFUSED_CRYPTO);

	d1 = signaler("sig-x", &kx, wk.pub, wk.pub, &r1, &w1, &c1);    /* key not allowed */
	d2 = signaler("sig-plain", NULL, NULL, NULL, &r2, &w2, &c2);   /* no CURVE */
	d3 = signaler("sig-c", &ka, kb.pub, kb.pub, &r3, &w3, &c3);    /* expects another worker */
	run_for(1500);
	CHECK_EQ_INT(r1.up + r2.up + r3.up, 0);
	CHECK(refused(CTL_REFUSED_KEY) > key0);
	CHECK(refused(CTL_REFUSED_NO_CURVE) > plain0);
	CHECK(refused(CTL_REFUSED_CRYPTO) > crypto0);
	dispatcher_worker_info(w1, &info);
	CHECK(info.handshake_failures > 0); /* the signaler sees its key refused */
	dispatcher_worker_info(w3, &info);
	CHECK(info.handshake_failures > 0);
	/* a worker key that the signaler does not allow is not even tried */
	CHECK_EQ_INT(dispatcher_add_worker(d1, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", kb.pub,
					   NULL),
		     -EPERM);
	CHECK_EQ_INT(dispatcher_add_worker(d1, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", NULL,
					   NULL),
		     -EPERM);
	dispatcher_destroy(&d1);
	dispatcher_destroy(&d2);
	dispatcher_destroy(&d3);
	curve_destroy(&c1);
	curve_destroy(&c2);
	curve_destroy(&c3);
}

static void test_impostor(void)
{
	struct dispatcher_worker *wb;
	struct dispatcher *db;
	struct curve *cb;
	struct drec rb = {0};
	struct zsock *zm;
	uint64_t bound0 = refused(CTL_REFUSED_ID_BOUND);

	/* B (an allowed key) says HELLO as sig-a while sig-a is connected: refused, never up */
	db = signaler("sig-a", &kb, wk.pub, wk.pub, &rb, &wb, &cb);
	run_for(1000);
	CHECK_EQ_INT(rb.up, 0);
	CHECK(refused(CTL_REFUSED_ID_BOUND) > bound0);
	dispatcher_destroy(&db);
	curve_destroy(&cb);

	/* the same on the media socket: EPERM, and sig-a's media still comes from sig-a */
	zm = raw_dealer(&kb, "impostor-media", true);
	CHECK_EQ_INT(raw_request(zm, WIRE_HELLO, 7, "sig-a"), WIRE_ERROR);
	CHECK_EQ_INT(raw.err, EPERM);
	zsock_destroy(&zm);
	ws.media = 0;
	CHECK_EQ_INT(dispatcher_send_media(da, wa, "leg-1", 2, 0, "\x82zz", 3), 0);
	CHECK(run_until(&ws.media, 1, 2000));
	CHECK_EQ_STR(ws.media_from, "sig-a");

	/* sig-a itself still works */
	ra.replies = 0;
	update(da, wa, &ra);
	CHECK(run_until(&ra.replies, 1, 2000));
	CHECK_EQ_INT(ra.status, 0);
	CHECK_EQ_STR(ws.last_id, "sig-a");
}

static void test_routing_id_taken(void)
{
	struct zsock *z1, *z2;
	uint64_t mismatch0 = refused(CTL_REFUSED_KEY_MISMATCH);

	/* sig-r (key A) on routing id "rid-r", with a request answered and cached */
	z1 = raw_dealer(&ka, "rid-r", false);
	CHECK_EQ_INT(raw_request(z1, WIRE_HELLO, 1, "sig-r"), WIRE_HELLO_OK);
	ws.requests = 0;
	CHECK_EQ_INT(raw_request(z1, WIRE_UPDATE_LEG, 2, NULL), WIRE_OK);
	CHECK_EQ_INT(ws.requests, 1);
	CHECK_EQ_STR(ws.last_id, "sig-r");

	/* key B on the same routing id (a connection that took it over, here once sig-r's closed:
	 * ROUTER_HANDOVER would have let it kick sig-r out): its messages are not sig-r's, the reply
	 * cached for request 2 is not replayed to it, and its HELLO as sig-r is refused */
	zsock_destroy(&z1);
	run_for(100);
	z2 = raw_dealer(&kb, "rid-r", false);
	CHECK_EQ_INT(raw_request(z2, WIRE_UPDATE_LEG, 2, NULL), WIRE_OK);
	CHECK_EQ_INT(ws.requests, 2); /* handled again: not a replay */
	CHECK_EQ_STR(ws.last_id, "-");
	CHECK_EQ_STR(ws.last_key, kb.pub);
	CHECK(refused(CTL_REFUSED_KEY_MISMATCH) > mismatch0);
	CHECK_EQ_INT(raw_request(z2, WIRE_HELLO, 3, "sig-r"), WIRE_ERROR);
	CHECK_EQ_INT(raw.err, EPERM);
	zsock_destroy(&z2);
}

static void test_rebind_after_close(void)
{
	struct dispatcher_worker *wb;
	struct dispatcher *db;
	struct curve *cb;
	struct drec rb = {0};

	/* sig-a goes away (its connections close): its key holds the id until the worker forgets
	 * it (peer_timeout_ms, 600 here); then a new process with key B may be sig-a */
	dispatcher_destroy(&da);
	curve_destroy(&ca);
	run_for(100);
	db = signaler("sig-a", &kb, wk.pub, wk.pub, &rb, &wb, &cb);
	run_for(300);
	CHECK_EQ_INT(rb.up, 0); /* not forgotten yet */
	works_as(db, wb, &rb, "sig-a", kb.pub);
	dispatcher_destroy(&db);
	curve_destroy(&cb);
}

/* WORKER_ENDPOINTS under CURVE: "ctl,media,key", or the allowed list's only key. */
static void test_worker_list_keys(void)
{
	struct dispatcher_worker_info in;
	struct dispatcher *d1, *d2;
	struct curve *c1, *c2;
	char two[100], list[300];

	c1 = curve_new(ka.sec, wk.pub);
	snprintf(two, sizeof(two), "%s,%s", wk.pub, kb.pub);
	c2 = curve_new(ka.sec, two);
	d1 = dispatcher_new(loop, "sig-l1", NULL, &(struct dispatcher_config){.curve = c1});
	d2 = dispatcher_new(loop, "sig-l2", NULL, &(struct dispatcher_config){.curve = c2});
	CHECK(d1 && d2);
	if (!d1 || !d2)
		goto out;
	/* one allowed key: an entry without a key takes it */
	CHECK_EQ_INT(dispatcher_add_workers(d1, "tcp://127.0.0.1:1,tcp://127.0.0.1:2"), 1);
	dispatcher_worker_info(dispatcher_find_endpoint(d1, "tcp://127.0.0.1:1"), &in);
	CHECK_EQ_STR(in.server_key, wk.pub);
	/* several: the entry must name one, and it must be allowed */
	CHECK_EQ_INT(dispatcher_add_workers(d2, "tcp://127.0.0.1:3,tcp://127.0.0.1:4"), -EINVAL);
	snprintf(list, sizeof(list), "tcp://127.0.0.1:3,tcp://127.0.0.1:4, %s ;", kb.pub);
	CHECK_EQ_INT(dispatcher_add_workers(d2, list), 1);
	dispatcher_worker_info(dispatcher_find_endpoint(d2, "tcp://127.0.0.1:3"), &in);
	CHECK_EQ_STR(in.server_key, kb.pub);
	snprintf(list, sizeof(list), "tcp://127.0.0.1:5,tcp://127.0.0.1:6,%s", kx.pub);
	CHECK_EQ_INT(dispatcher_add_workers(d2, list), -EPERM);
	CHECK_EQ_INT(dispatcher_add_workers(d2, "tcp://127.0.0.1:5,tcp://127.0.0.1:6,notakey"),
		     -EINVAL);
	CHECK(dispatcher_find_endpoint(d2, "tcp://127.0.0.1:5") == NULL);
out:
	dispatcher_destroy(&d1);
	dispatcher_destroy(&d2);
	curve_destroy(&c1);
	curve_destroy(&c2);
}

int main(void)
{
	struct ctl_server_callbacks cbs = {
		.handlers = handlers, .n_handlers = 1, .media = w_media,
	};
	struct ctl_server_config cfg = {
		.ctl_bind = "tcp://127.0.0.1:*", .media_bind = "tcp://127.0.0.1:*",
		.worker_id = "w-auth", .heartbeat_ms = 100, .peer_timeout_ms = 600,
	};
	struct zap *zap = NULL;
	char allowed[200];
	int ret;

	log_init("test_ctl_server", LOG_LVL_ERROR);
	loop = evloop_new();
	zmq_curve_keypair(wk.pub, wk.sec);
	zmq_curve_keypair(ka.pub, ka.sec);
	zmq_curve_keypair(kb.pub, kb.sec);
	zmq_curve_keypair(kx.pub, kx.sec);
	snprintf(allowed, sizeof(allowed), "%s,%s", ka.pub, kb.pub);
	wcurve = curve_new(wk.sec, allowed);
	if (loop && wcurve)
		zap = zap_new(loop, wcurve);
	cfg.curve = wcurve;
	srv = zap ? ctl_server_new(loop, &cfg, &cbs) : NULL;
	if (!srv) {
		printf("FAIL test_ctl_server: setup\n");
		return 1;
	}
	TEST_RUN(test_allowed_signaler);
	TEST_RUN(test_full_batches_under_curve);
	TEST_RUN(test_refused_handshakes);
	TEST_RUN(test_impostor);
	TEST_RUN(test_routing_id_taken);
	TEST_RUN(test_rebind_after_close);
	TEST_RUN(test_worker_list_keys);
	ret = TEST_DONE();
	dispatcher_destroy(&da);
	curve_destroy(&ca);
	ctl_server_destroy(&srv);
	zap_destroy(&zap);
	curve_destroy(&wcurve);
	evloop_run_once(loop, 0);
	zsock_context_term();
	evloop_destroy(&loop);
	return ret;
}
