/*
 * test_dispatcher.c - signaler and worker ends of the protocol in one process and one evloop:
 * HELLO and heartbeats make a worker alive, silence makes it dead (not before the configured
 * timeout), a closed connection (a worker closed in-process) makes it dead at once, a restart
 * is noticed; requests, ERROR replies, retries with exactly one callback, timeouts,
 * cancellation; events and media both ways; worker choice; malformed input on both sides.
 * Real ZeroMQ sockets over tcp://127.0.0.1 and ipc://. Workers in child processes and the
 * connection monitors: test_dispatcher_conn.c.
 */
#include "dispatcher_fixture.h"

/* --- tests --- */

static void test_alive_dead_restart(void)
{
	struct dispatcher_worker_info info;
	struct dispatcher_worker *w = NULL;
	struct ctl_server *s;
	struct dispatcher *d;
	char ctl_ep[256], media_ep[256];
	uint64_t first_instance, killed_at, last_hb;
	uint32_t seq0;

	reset_records();
	s = server_new("w1");
	CHECK(s != NULL);
	if (!s)
		return;
	snprintf(ctl_ep, sizeof(ctl_ep), "%s", ctl_server_ctl_endpoint(s));
	snprintf(media_ep, sizeof(media_ep), "%s", ctl_server_media_endpoint(s));
	CHECK(strncmp(ctl_ep, "tcp://127.0.0.1:", 16) == 0 && strcmp(ctl_ep + 16, "*") != 0);
	first_instance = ctl_server_instance_id(s);
	d = pair_up(s, &w);
	CHECK(dispatcher_worker_alive(w));
	CHECK_EQ_INT(dr.restarted, 0);
	CHECK(dr.last_up == w);
	dispatcher_worker_info(w, &info);
	CHECK_EQ_STR(info.worker_id, "w1");
	CHECK(info.instance_id == first_instance);
	CHECK_EQ_INT(info.hb_interval_ms, 300);
	CHECK_EQ_INT(info.pid, getpid());
	CHECK(ctl_server_has_peer(s, SIG_ID));
	CHECK_EQ_INT(ws.peers_up, 1);

	/* Heartbeats keep it alive and carry a growing sequence number. */
	run_for(400);
	dispatcher_worker_info(w, &info);
	seq0 = info.last_seq;
	run_for(1000);
	dispatcher_worker_info(w, &info);
	CHECK(info.alive && info.media_ready);
	CHECK(info.last_seq >= seq0 + 2);
	CHECK_EQ_INT(dr.down, 0);

	/* Closed: its sockets close with it, so it is dead long before the heartbeat timeout
	 * (silence alone is test_stopped_worker). */
	dispatcher_worker_info(w, &info);
	last_hb = info.last_heartbeat_ms;
	killed_at = mono_ms();
	ctl_server_destroy(&s);
	CHECK(run_until(&dr.down, 1, 4000));
	CHECK(!dispatcher_worker_alive(w));
	printf("  worker closed in-process: down after %llu ms\n",
	       (unsigned long long)(dr.down_mono - killed_at));
	CHECK(dr.down_mono - killed_at < 1000);
	dispatcher_worker_info(w, &info);
	CHECK(info.last_heartbeat_ms >= last_hb);
	CHECK(info.disconnects >= 1);
	CHECK(dispatcher_pick(d) == NULL);

	/* Same endpoints, new process: alive again with another instance id. libzmq closes the
	 * old listener asynchronously, and down now comes within milliseconds: retry the bind. */
	for (int i = 0; i < 40 && !s; i++) {
		s = server_at("w1", ctl_ep, media_ep, 0);
		if (!s)
			run_for(50);
	}
	CHECK(s != NULL);
	CHECK(run_until(&dr.up, 2, 3000));
	CHECK_EQ_INT(dr.restarted, 1);
	dispatcher_worker_info(w, &info);
	CHECK(info.alive);
	CHECK(s && info.instance_id == ctl_server_instance_id(s));
	CHECK(info.instance_id != first_instance);
	CHECK_EQ_INT(info.restarts, 1);
	CHECK(dispatcher_pick(d) == w);
	/* One close, one down, one up: no flapping afterwards. */
	run_for(800);
	CHECK_EQ_INT(dr.down, 1);
	CHECK_EQ_INT(dr.up, 2);
	CHECK(dispatcher_worker_alive(w));

	dispatcher_destroy(&d);
	CHECK(d == NULL);
	ctl_server_destroy(&s);
}

static void test_requests_events_media(void)
{
	struct dispatcher_worker *w = NULL;
	struct outcome o1 = {0}, o2 = {0}, o3 = {0}, o4 = {0}, o5 = {0};
	struct wire_builder b = {0};
	struct ctl_server_stats st;
	struct ctl_server *s;
	struct dispatcher *d;
	static const struct wire_codec speex = {.pt = 96, .channels = 1, .rate = 16000,
						.name = "speex"};
	uint32_t id1 = 0, id2 = 0;
	const uint8_t pay[] = {1, 2, 3, 4, 5};

	reset_records();
	s = server_new("w1");
	CHECK(s != NULL);
	if (!s)
		return;
	d = pair_up(s, &w);

	/* CREATE_LEG -> OK with the reply's fields. */
	wire_builder_init(&b, WIRE_CREATE_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "leg-1");
	wire_put_str(&b, WIRE_T_CALL_ID, "call-1");
	wire_put_str(&b, WIRE_T_OWNER, SIG_ID);
	wire_put_codec(&b, WIRE_T_RTMP_CODEC, &speex);
	wire_put_codec(&b, WIRE_T_SIP_CODEC, &speex);
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 500, 2, on_reply, &o1, &id1), 0);
	CHECK(id1 != 0);
	CHECK_EQ_INT(o1.calls, 0); /* never from inside dispatcher_request() */

	/* DESTROY_LEG of an unknown leg -> OK, not found. */
	wire_builder_init(&b, WIRE_DESTROY_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "nope");
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 500, 2, on_reply, &o2, &id2), 0);
	CHECK(id2 != id1);

	/* SEND_DTMF -> the handler's ERROR. */
	wire_builder_init(&b, WIRE_SEND_DTMF, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "x");
	wire_put_u8(&b, WIRE_T_DIGIT, '1');
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 500, 2, on_reply, &o3, NULL), 0);

	/* LEG_STATS has no handler -> ENOTSUP. */
	wire_builder_init(&b, WIRE_LEG_STATS, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "x");
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 500, 2, on_reply, &o4, NULL), 0);

	/* WORKER_STATS handler forgets required reply tags -> ERROR EIO from the server. */
	wire_builder_init(&b, WIRE_WORKER_STATS, 0);
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 500, 2, on_reply, &o5, NULL), 0);

	run_until(&o5.calls, 1, 2000);
	run_until(&o1.calls, 1, 2000);
	CHECK_EQ_INT(o1.calls, 1);
	CHECK_EQ_INT(o1.status, 0);
	CHECK_EQ_INT(o1.local_port, 20000);
	CHECK_EQ_INT(o2.calls, 1);
	CHECK_EQ_INT(o2.status, 0);
	CHECK(o2.not_found);
	CHECK_EQ_INT(o3.calls, 1);
	CHECK_EQ_INT(o3.status, -ENOENT);
	CHECK(o3.had_reply);
	CHECK_EQ_STR(o3.text, "leg x not found");
	CHECK_EQ_INT(o4.calls, 1);
	CHECK_EQ_INT(o4.status, -ENOTSUP);
	CHECK_EQ_INT(o5.calls, 1);
	CHECK_EQ_INT(o5.status, -EIO);
	CHECK(strstr(o5.text, "TRANSCODING_LEGS") != NULL);
	CHECK_EQ_INT(ws.creates, 1);

	/* Requests that cannot be sent are refused synchronously. */
	wire_builder_init(&b, WIRE_OK, 0);
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 500, 0, on_reply, &o1, NULL), -EINVAL);
	wire_builder_init(&b, WIRE_CREATE_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "leg-1");
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 500, 0, on_reply, &o1, NULL), -EINVAL);
	CHECK_EQ_INT(o1.calls, 1);

	/* EVENT worker -> signaler. */
	wire_builder_init(&b, WIRE_EVENT, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "leg-1");
	wire_put_u8(&b, WIRE_T_EVENT_KIND, WIRE_EV_DTMF);
	wire_put_u8(&b, WIRE_T_DIGIT, '7');
	wire_put_u16(&b, WIRE_T_DURATION_MS, 100);
	CHECK_EQ_INT(ctl_server_send_event(s, SIG_ID, &b), 0);
	CHECK_EQ_INT(ctl_server_send_event(s, "nobody", &b), -ENOTCONN);
	CHECK(run_until(&dr.events, 1, 2000));
	CHECK_EQ_STR(dr.event_leg, "leg-1");
	CHECK_EQ_INT(dr.event_digit, '7');

	/* MEDIA both ways (once the media socket said HELLO). */
	for (int i = 0; i < 100; i++) {
		struct dispatcher_worker_info info;

		dispatcher_worker_info(w, &info);
		if (info.media_ready)
			break;
		run_for(10);
	}
	CHECK_EQ_INT(dispatcher_send_media(d, w, "leg-1", 960, WIRE_MEDIA_F_MARKER, pay,
					   sizeof(pay)),
		     0);
	CHECK(run_until(&ws.media, 1, 2000));
	CHECK_EQ_STR(ws.media_from, SIG_ID);
	CHECK_EQ_STR(ws.media_leg, "leg-1");
	CHECK_EQ_INT(ws.media_len, sizeof(pay));
	dr.media = 0;
	CHECK_EQ_INT(ctl_server_send_media(s, SIG_ID, "leg-2", 4242, 0, pay, 3), 0);
	CHECK(run_until(&dr.media, 1, 2000));
	CHECK_EQ_STR(dr.md.leg_id, "leg-2");
	CHECK_EQ_INT(dr.md.ts, 4242);
	CHECK_EQ_INT(dr.md.len, 3);
	CHECK(memcmp(dr.media_payload, pay, 3) == 0);
	CHECK_EQ_INT(dispatcher_send_media(d, w, "bad id", 0, 0, pay, 1), -EINVAL);
	CHECK_EQ_INT(ctl_server_send_media(s, "nobody", "leg-2", 0, 0, pay, 1), -ENOTCONN);

	run_for(400); /* at least one heartbeat period */
	ctl_server_get_stats(s, &st);
	CHECK_EQ_INT(st.requests, 4);
	CHECK(st.heartbeats >= 1);
	CHECK_EQ_INT(st.peers, 1);

	wire_builder_free(&b);
	dispatcher_destroy(&d);
	ctl_server_destroy(&s);
}

static void create_leg(struct wire_builder *b, const char *leg)
{
	static const struct wire_codec speex = {.pt = 96, .channels = 1, .rate = 16000,
						.name = "speex"};

	wire_builder_init(b, WIRE_CREATE_LEG, 0);
	wire_put_str(b, WIRE_T_LEG_ID, leg);
	wire_put_str(b, WIRE_T_CALL_ID, "call");
	wire_put_str(b, WIRE_T_OWNER, SIG_ID);
	wire_put_codec(b, WIRE_T_RTMP_CODEC, &speex);
	wire_put_codec(b, WIRE_T_SIP_CODEC, &speex);
}

static void test_retry_exactly_once(void)
{
	struct dispatcher_worker_info info;
	struct dispatcher_worker *w = NULL;
	struct wire_builder b = {0};
	struct outcome o = {0};
	struct dispatcher *d;
	uint32_t id = 0;

	reset_records();
	CHECK(fake_up());
	d = dispatcher_new(loop, SIG_ID, &dcbs, NULL);
	CHECK_EQ_INT(dispatcher_add_worker(d, zsock_endpoint(fk.ctl), zsock_endpoint(fk.media), NULL, &w),
		     0);
	CHECK(run_until(&dr.up, 1, 3000));

	/* First attempt dropped by the worker; the retry is answered twice. */
	fk.answer_from = 2;
	fk.answer_copies = 2;
	create_leg(&b, "leg-r");
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 200, 3, on_reply, &o, &id), 0);
	CHECK(run_until(&o.calls, 1, 3000));
	run_for(500);
	CHECK_EQ_INT(o.calls, 1);
	CHECK_EQ_INT(o.status, 0);
	CHECK_EQ_INT(o.local_port, 30000);
	CHECK_EQ_INT(fk.creates, 2);
	CHECK_EQ_INT(fk.req_ids[0], id);
	CHECK_EQ_INT(fk.req_ids[1], id); /* same request id on the retry */
	CHECK_EQ_INT(fk.flags[0] & WIRE_F_RETRY, 0);
	CHECK(fk.flags[1] & WIRE_F_RETRY);
	dispatcher_worker_info(w, &info);
	CHECK_EQ_INT(info.retries, 1);
	CHECK_EQ_INT(info.late_replies, 1);
	CHECK_EQ_INT(info.pending, 0);

	/* Never answered: one -ETIMEDOUT after 1 + retries attempts. */
	memset(&o, 0, sizeof(o));
	fk.creates = 0;
	fk.answer_from = 0;
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 100, 2, on_reply, &o, NULL), 0);
	CHECK(run_until(&o.calls, 1, 3000));
	run_for(300);
	CHECK_EQ_INT(o.calls, 1);
	CHECK_EQ_INT(o.status, -ETIMEDOUT);
	CHECK(!o.had_reply);
	CHECK_EQ_INT(fk.creates, 3);

	/* Cancelled: no callback at all. */
	memset(&o, 0, sizeof(o));
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 100, 0, on_reply, &o, &id), 0);
	CHECK_EQ_INT(dispatcher_cancel(d, id), 0);
	CHECK_EQ_INT(dispatcher_cancel(d, id), -ENOENT);
	run_for(300);
	CHECK_EQ_INT(o.calls, 0);

	/* Removing the worker ends its pending requests with -ECANCELED, once. */
	memset(&o, 0, sizeof(o));
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 5000, 0, on_reply, &o, NULL), 0);
	dispatcher_remove_worker(d, w);
	CHECK_EQ_INT(o.calls, 1);
	CHECK_EQ_INT(o.status, -ECANCELED);
	CHECK_EQ_INT(dispatcher_worker_count(d), 0);
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 100, 0, on_reply, &o, NULL), -ENODEV);
	run_for(100);
	CHECK_EQ_INT(o.calls, 1);

	/* Destroying the dispatcher cancels what is pending. */
	CHECK_EQ_INT(dispatcher_add_worker(d, zsock_endpoint(fk.ctl), zsock_endpoint(fk.media), NULL, &w),
		     0);
	memset(&o, 0, sizeof(o));
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 5000, 0, on_reply, &o, NULL), 0);
	dispatcher_destroy(&d);
	CHECK_EQ_INT(o.calls, 1);
	CHECK_EQ_INT(o.status, -ECANCELED);

	wire_builder_free(&b);
	fake_down();
}

/* The first attempt is lost because nothing listens yet; the retry reaches a worker started
 * meanwhile, and the worker's reply cache answers retries without running handlers twice. */
static void test_retry_real_server(void)
{
	char ctl_ep[128], media_ep[128];
	struct dispatcher_worker_info info;
	struct dispatcher_worker *w = NULL;
	struct wire_builder b = {0};
	struct outcome o = {0}, o2 = {0};
	struct ctl_server_stats st;
	struct ctl_server *s;
	struct dispatcher *d;

	reset_records();
	snprintf(ctl_ep, sizeof(ctl_ep), "ipc:///tmp/rs-test-disp-%d-ctl", (int)getpid());
	snprintf(media_ep, sizeof(media_ep), "ipc:///tmp/rs-test-disp-%d-media", (int)getpid());
	d = dispatcher_new(loop, SIG_ID, &dcbs, NULL);
	CHECK_EQ_INT(dispatcher_add_worker(d, ctl_ep, media_ep, NULL, &w), 0);
	CHECK_EQ_INT(dispatcher_add_worker(d, ctl_ep, media_ep, NULL, NULL), -EEXIST);
	create_leg(&b, "leg-late");
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 300, 5, on_reply, &o, NULL), 0);
	run_for(100);
	s = server_at("w-late", ctl_ep, media_ep, 0);
	CHECK(s != NULL);
	if (!s) {
		dispatcher_destroy(&d);
		wire_builder_free(&b);
		return;
	}
	CHECK(run_until(&o.calls, 1, 4000));
	run_for(400);
	CHECK_EQ_INT(o.calls, 1);
	CHECK_EQ_INT(o.status, 0);
	CHECK_EQ_INT(ws.creates, 1);
	dispatcher_worker_info(w, &info);
	CHECK(info.retries >= 1);
	CHECK(info.alive);

	/* A handler that has not answered yet: retries are ignored, one late answer ends it. */
	wire_builder_init(&b, WIRE_UPDATE_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, "leg-late");
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 100, 10, on_reply, &o2, NULL), 0);
	run_for(450);
	CHECK_EQ_INT(ws.never, 1);
	CHECK(ws.have_deferred);
	ctl_server_get_stats(s, &st);
	CHECK(st.dup_pending >= 2);
	CHECK_EQ_INT(o2.calls, 0);
	{
		struct wire_builder r = {0};

		wire_builder_init(&r, WIRE_OK, 0);
		CHECK_EQ_INT(ctl_server_reply(s, &ws.deferred, &r), 0);
		wire_builder_free(&r);
	}
	CHECK(run_until(&o2.calls, 1, 2000));
	run_for(300);
	CHECK_EQ_INT(o2.calls, 1);
	CHECK_EQ_INT(o2.status, 0);
	CHECK_EQ_INT(ws.never, 1);
	ctl_server_get_stats(s, &st);

	wire_builder_free(&b);
	dispatcher_destroy(&d);
	ctl_server_destroy(&s);
	unlink(ctl_ep + 6);
	unlink(media_ep + 6);
}

/* Raw DEALER toward a real server: the reply cache replays, malformed input never hurts. */
static struct {
	int replies;
	uint8_t last_type;
	uint32_t last_req;
	uint32_t last_code;
	uint16_t last_tag;
	char last_text[WIRE_MAX_STR + 1];
} rawc;

static void raw_on_msg(struct zsock *zs, const struct zsock_frame *f, size_t n, void *arg)
{
	struct wire_msg m;
	struct wire_err e;

	(void)zs, (void)arg;
	if (n != 2 || wire_parse(f[0].data, f[0].len, f[1].data, f[1].len, &m, &e) < 0)
		return;
	if (m.h.type == WIRE_HEARTBEAT)
		return;
	rawc.replies++;
	rawc.last_type = m.h.type;
	rawc.last_req = m.h.req_id;
	rawc.last_code = 0;
	rawc.last_tag = 0;
	rawc.last_text[0] = '\0';
	wire_get_u32(&m, WIRE_T_ERR_CODE, &rawc.last_code);
	wire_get_u16(&m, WIRE_T_ERR_TAG, &rawc.last_tag);
	wire_get_cstr(&m, WIRE_T_ERR_TEXT, rawc.last_text, sizeof(rawc.last_text));
}

static void raw_send(struct zsock *zs, const void *h, size_t hl, const void *body, size_t bl)
{
	const struct zsock_frame f[2] = {{h, hl}, {body, bl}};

	zsock_send(zs, f, 2);
}

static void raw_send_built(struct zsock *zs, struct wire_builder *b)
{
	raw_send(zs, b->hdr, WIRE_HDR_LEN, wire_builder_body(b), wire_builder_body_len(b));
}

static bool raw_expect(int n)
{
	return run_until(&rawc.replies, n, 2000);
}

static void test_malformed_input(void)
{
	static uint8_t huge[1 << 20];
	struct dispatcher_worker *w = NULL;
	struct wire_builder b = {0};
	struct outcome o = {0};
	struct ctl_server_stats st;
	struct ctl_server *s;
	struct dispatcher *d;
	struct zsock *raw, *rawm;
	uint8_t hdr[WIRE_HDR_LEN];
	const struct zsock_frame five[5] = {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}};
	int base;

	reset_records();
	memset(&rawc, 0, sizeof(rawc));
	s = server_new("w1");
	CHECK(s != NULL);
	if (!s)
		return;
	raw = zsock_new(loop, ZMQ_DEALER,
			&(struct zsock_opts){.name = "raw", .routing_id = "raw-1", .routing_id_len = 5},
			raw_on_msg, NULL);
	rawm = zsock_new(loop, ZMQ_DEALER, &(struct zsock_opts){.name = "rawm"}, raw_on_msg, NULL);
	CHECK(raw && rawm);
	CHECK_EQ_INT(zsock_connect(raw, ctl_server_ctl_endpoint(s)), 0);
	CHECK_EQ_INT(zsock_connect(rawm, ctl_server_media_endpoint(s)), 0);
	run_for(200);

	/* Replay: the same request id twice runs the handler once and answers twice. */
	create_leg(&b, "leg-raw");
	b.req_id = 500;
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	raw_send_built(raw, &b);
	CHECK(raw_expect(1));
	raw_send_built(raw, &b);
	CHECK(raw_expect(2));
	CHECK_EQ_INT(rawc.last_type, WIRE_OK);
	CHECK_EQ_INT(rawc.last_req, 500);
	CHECK_EQ_INT(ws.creates, 1);
	ctl_server_get_stats(s, &st);
	CHECK_EQ_INT(st.replays, 1);

	/* Another version: ERROR "unsupported version" with the request id. */
	base = rawc.replies;
	memcpy(hdr, b.hdr, WIRE_HDR_LEN);
	hdr[2] = 2;
	wr_be32(hdr + 6, 501);
	raw_send(raw, hdr, WIRE_HDR_LEN, wire_builder_body(&b), wire_builder_body_len(&b));
	CHECK(raw_expect(base + 1));
	CHECK_EQ_INT(rawc.last_type, WIRE_ERROR);
	CHECK_EQ_INT(rawc.last_req, 501);
	CHECK_EQ_INT(rawc.last_code, EPROTONOSUPPORT);
	CHECK(strstr(rawc.last_text, "unsupported version") != NULL);

	/* Unknown request type: ENOTSUP. */
	memcpy(hdr, b.hdr, WIRE_HDR_LEN);
	hdr[3] = 0x42;
	wr_be32(hdr + 6, 502);
	raw_send(raw, hdr, WIRE_HDR_LEN, wire_builder_body(&b), wire_builder_body_len(&b));
	CHECK(raw_expect(base + 2));
	CHECK_EQ_INT(rawc.last_code, ENOTSUP);

	/* Missing required tag: EINVAL naming it. */
	wire_builder_init(&b, WIRE_DESTROY_LEG, 503);
	wire_put_str(&b, WIRE_T_LEG_ID, "x");
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	memcpy(hdr, b.hdr, WIRE_HDR_LEN);
	wr_be16(hdr + 10, 0);
	raw_send(raw, hdr, WIRE_HDR_LEN, "", 0);
	CHECK(raw_expect(base + 3));
	CHECK_EQ_INT(rawc.last_req, 503);
	CHECK_EQ_INT(rawc.last_code, EINVAL);
	CHECK_EQ_INT(rawc.last_tag, WIRE_T_LEG_ID);
	CHECK(strstr(rawc.last_text, "LEG_ID") != NULL);

	/* Garbage that cannot be answered: dropped. */
	base = rawc.replies;
	zsock_send(raw, five, 1);
	zsock_send(raw, five, 5);
	raw_send(raw, "garbage!garbage!", 16, "x", 1);
	raw_send(raw, "RS", 2, "", 0);
	memcpy(hdr, b.hdr, WIRE_HDR_LEN);
	hdr[0] = 'X';
	raw_send(raw, hdr, WIRE_HDR_LEN, wire_builder_body(&b), wire_builder_body_len(&b));
	memcpy(hdr, b.hdr, WIRE_HDR_LEN);
	hdr[3] = WIRE_OK; /* a reply sent to the worker */
	raw_send(raw, hdr, WIRE_HDR_LEN, wire_builder_body(&b), wire_builder_body_len(&b));
	/* Media socket: garbage, a bad MEDIA, a MEDIA from no one known. */
	zsock_send(rawm, five, 1);
	raw_send(rawm, "RS\1\7\0\0\0\0\0\0\0\3", 12, "\0ab", 3);
	{
		uint8_t mb[WIRE_MEDIA_MAX_BODY];
		size_t ml = 0;

		CHECK_EQ_INT(wire_media_encode(hdr, mb, sizeof(mb), &ml, "leg", 1, 0, "zz", 2), 0);
		raw_send(rawm, hdr, WIRE_HDR_LEN, mb, ml);
	}
	CHECK(run_until(&ws.media, 1, 2000));
	CHECK_EQ_STR(ws.media_from, "(none)");
	/* A frame above the limit: libzmq drops the connection (ZMQ_MAXMSGSIZE). */
	raw_send(raw, huge, WIRE_HDR_LEN, huge, sizeof(huge));
	run_for(300);
	CHECK_EQ_INT(rawc.replies, base);
	ctl_server_get_stats(s, &st);
	CHECK(st.malformed >= 6);

	/* Still serving: the raw DEALER (reconnected) and a dispatcher both get answers. */
	create_leg(&b, "leg-after");
	b.req_id = 600;
	CHECK_EQ_INT(wire_builder_finish(&b), 0);
	for (int i = 0; i < 20 && rawc.replies == base; i++) {
		raw_send_built(raw, &b); /* same id: the cache makes resending harmless */
		run_for(100);
	}
	CHECK_EQ_INT(rawc.last_req, 600);
	CHECK_EQ_INT(rawc.last_type, WIRE_OK);
	d = pair_up(s, &w);
	create_leg(&b, "leg-disp");
	CHECK_EQ_INT(dispatcher_request(d, w, &b, 300, 3, on_reply, &o, NULL), 0);
	CHECK(run_until(&o.calls, 1, 2000));
	CHECK_EQ_INT(o.status, 0);

	wire_builder_free(&b);
	zsock_destroy(&raw);
	zsock_destroy(&rawm);
	dispatcher_destroy(&d);
	ctl_server_destroy(&s);
}

/* Malformed input from a worker must not disturb the dispatcher either. */
static void test_malformed_from_worker(void)
{
	struct dispatcher_worker_info info;
	struct dispatcher_worker *w = NULL;
	struct wire_builder b = {0};
	struct outcome o = {0};
	struct dispatcher *d;
	struct zsock_frame f[4] = {
		{NULL, 0}, {"RS\1\5\0\0\0\0\0\0\0\0", 12}, {"x", 1}, {"y", 1}};
	uint8_t hdr[WIRE_HDR_LEN];

	reset_records();
	CHECK(fake_up());
	d = dispatcher_new(loop, SIG_ID, &dcbs, NULL);
	CHECK_EQ_INT(dispatcher_add_worker(d, zsock_endpoint(fk.ctl), zsock_endpoint(fk.media), NULL, &w),
		     0);
	CHECK(run_until(&dr.up, 1, 3000));
	f[0].data = fk.rid;
	f[0].len = fk.rid_len;
	zsock_send(fk.ctl, f, 2);	/* one frame after the routing id */
	zsock_send(fk.ctl, f, 4);	/* three */
	zsock_send(fk.ctl, f, 3);	/* HEARTBEAT header with a body of the wrong length */
	f[1].data = "RS\1\3\0\0\0\0\0\0\0\0";
	zsock_send(fk.ctl, f, 3);	/* OK for no pending request, with a lying length */
	f[1].data = "RS\1\4\0\0\0\0\0\0\0\0";
	f[2].len = 0;
	zsock_send(fk.ctl, f, 3);	/* ERROR without its required tags */
	zsock_send(fk.media, f, 2);
	zsock_send(fk.media, f, 3);
	/* A reply to a pending request that is malformed fails it at once with -EBADMSG. */
	fk.answer_from = 0;
	create_leg(&b, "leg-bad");
	{
		uint32_t id = 0;

		CHECK_EQ_INT(dispatcher_request(d, w, &b, 2000, 0, on_reply, &o, &id), 0);
		run_for(100);
		memcpy(hdr, "RS\1\3\0\0\0\0\0\0\0\0", 12);
		wr_be32(hdr + 6, id);
		f[1].data = hdr;
		f[2].len = 0;
		zsock_send(fk.ctl, f, 3); /* OK without LOCAL_IP etc. */
	}
	CHECK(run_until(&o.calls, 1, 1000));
	CHECK_EQ_INT(o.status, -EBADMSG);
	CHECK(!o.had_reply);

	/* The fake worker sends no heartbeats: it goes down after the timeout, and that is the only
	 * change; none of the junk brought it down earlier or up again. */
	fk.answer_hello = false;
	dispatcher_worker_info(w, &info);
	CHECK(info.alive);
	CHECK_EQ_STR(info.worker_id, "fake");
	CHECK(run_until(&dr.down, 1, 3000));
	CHECK_EQ_INT(dr.up, 1);

	wire_builder_free(&b);
	dispatcher_destroy(&d);
	fake_down();
}

static void test_pick_and_list(void)
{
	struct dispatcher_worker *w1 = NULL, *w2 = NULL, *p1, *p2, *p3, *p4;
	struct ctl_load l1 = {.legs = 10}, l2 = {.legs = 10};
	struct ctl_server *s1, *s2;
	struct dispatcher *d;
	struct wire_builder b = {0};
	struct outcome o = {0};
	char list[600];

	reset_records();
	s1 = server_with_load("w1", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 100, &l1);
	s2 = server_with_load("w2", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 100, &l2);
	CHECK(s1 && s2);
	if (!s1 || !s2) {
		ctl_server_destroy(&s1);
		ctl_server_destroy(&s2);
		return;
	}
	d = dispatcher_new(loop, SIG_ID, &dcbs, NULL);
	snprintf(list, sizeof(list), " %s , %s ;; %s,%s;", ctl_server_ctl_endpoint(s1),
		 ctl_server_media_endpoint(s1), ctl_server_ctl_endpoint(s2),
		 ctl_server_media_endpoint(s2));
	CHECK_EQ_INT(dispatcher_add_workers(d, list), 2);
	CHECK_EQ_INT(dispatcher_add_workers(d, list), 0); /* known ones are kept */
	CHECK_EQ_INT(dispatcher_add_workers(d, "tcp://x:1"), -EINVAL);
	CHECK_EQ_INT(dispatcher_add_workers(d, "a,b,c"), -EINVAL);
	CHECK_EQ_INT(dispatcher_worker_count(d), 2);
	w1 = dispatcher_find_endpoint(d, ctl_server_ctl_endpoint(s1));
	w2 = dispatcher_worker_at(d, 1);
	CHECK(w1 == dispatcher_worker_at(d, 0));
	CHECK(dispatcher_worker_at(d, 2) == NULL);
	CHECK(run_until(&dr.up, 2, 3000));
	CHECK(dispatcher_find_worker(d, "w2") == w2);
	CHECK(dispatcher_find_worker(d, "w3") == NULL);

	/* Equal load: round-robin. */
	run_for(400);
	p1 = dispatcher_pick(d);
	p2 = dispatcher_pick(d);
	p3 = dispatcher_pick(d);
	p4 = dispatcher_pick(d);
	CHECK(p1 && p2 && p1 != p2 && p3 == p1 && p4 == p2);

	/* Legs requested since the last heartbeat count: one CREATE_LEG to w1 tips the balance
	 * until w1's next heartbeat. */
	create_leg(&b, "leg-p");
	CHECK_EQ_INT(dispatcher_request(d, w1, &b, 500, 0, on_reply, &o, NULL), 0);
	{
		struct dispatcher_worker_info i1;

		dispatcher_worker_info(w1, &i1);
		CHECK_EQ_INT(i1.recent_legs, 1);
	}
	CHECK(dispatcher_pick(d) == w2);
	CHECK(dispatcher_pick(d) == w2);
	CHECK(run_until(&o.calls, 1, 2000));

	/* Reported load: legs per mille of capacity, or cpu if higher. */
	l1.legs = 50;
	run_for(450);
	for (int i = 0; i < 3; i++)
		CHECK(dispatcher_pick(d) == w2);
	l1.legs = 0;
	l2.legs = 0;
	l1.cpu_permille = 600;
	run_for(450);
	CHECK(dispatcher_pick(d) == w2);

	/* Legs requested count at the CPU per leg learnt from heartbeats (w1: 500 / 10 legs), also
	 * for a worker with no figure of its own yet: 11 new legs on w2 weigh 550 before its CPU
	 * shows them. */
	l1.legs = 10;
	l1.cpu_permille = 500;
	run_for(450);
	CHECK(dispatcher_pick(d) == w2);
	{
		struct outcome o2 = {0};
		char leg[16];

		for (int i = 0; i < 11; i++) {
			snprintf(leg, sizeof(leg), "leg-c%d", i);
			create_leg(&b, leg);
			CHECK_EQ_INT(dispatcher_request(d, w2, &b, 500, 0, on_reply, &o2, NULL), 0);
		}
		CHECK(dispatcher_pick(d) == w1);
		CHECK(run_until(&o2.calls, 11, 2000));
	}
	l1.legs = 0;
	l1.cpu_permille = 0;

	/* Draining and full workers are skipped. */
	l2.draining = true;
	run_for(450);
	for (int i = 0; i < 3; i++)
		CHECK(dispatcher_pick(d) == w1);
	l1.legs = 100;
	run_for(450);
	CHECK(dispatcher_pick(d) == NULL);
	l1.legs = 0;
	l2.draining = false;
	run_for(450);

	/* A dead worker is never chosen. */
	ctl_server_destroy(&s2);
	CHECK(run_until(&dr.down, 1, 3000));
	for (int i = 0; i < 4; i++)
		CHECK(dispatcher_pick(d) == w1);

	wire_builder_free(&b);
	dispatcher_destroy(&d);
	ctl_server_destroy(&s1);
}

static void test_config_errors(void)
{
	struct ctl_server_config cfg = {
		.ctl_bind = "tcp://127.0.0.1:*",
		.media_bind = "tcp://127.0.0.1:*",
		.worker_id = "bad id",
	};
	struct dispatcher *d;

	CHECK(ctl_server_new(loop, &cfg, &wcbs) == NULL);
	cfg.worker_id = "w";
	cfg.ctl_bind = "nonsense://x";
	CHECK(ctl_server_new(loop, &cfg, &wcbs) == NULL);
	CHECK(dispatcher_new(loop, "", &dcbs, NULL) == NULL);
	CHECK(dispatcher_new(loop, "a b", &dcbs, NULL) == NULL);
	d = dispatcher_new(loop, "ok", NULL, NULL);
	CHECK(d != NULL);
	CHECK_EQ_INT(dispatcher_add_worker(d, "", "tcp://127.0.0.1:1", NULL, NULL), -EINVAL);
	CHECK(dispatcher_add_worker(d, "nonsense://x", "tcp://127.0.0.1:1", NULL, NULL) < 0);
	CHECK_EQ_INT(dispatcher_worker_count(d), 0);
	CHECK_EQ_STR(dispatcher_signaler_id(d), "ok");
	dispatcher_destroy(&d);
	dispatcher_destroy(&d); /* NULL-safe */
}

int main(void)
{
	log_init("test_dispatcher", getenv("LOG_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	loop = evloop_new();
	TEST_RUN(test_config_errors);
	TEST_RUN(test_requests_events_media);
	TEST_RUN(test_retry_exactly_once);
	TEST_RUN(test_retry_real_server);
	TEST_RUN(test_malformed_input);
	TEST_RUN(test_malformed_from_worker);
	TEST_RUN(test_pick_and_list);
	TEST_RUN(test_alive_dead_restart);
	evloop_destroy(&loop);
	zsock_context_term();
	return TEST_DONE();
}
