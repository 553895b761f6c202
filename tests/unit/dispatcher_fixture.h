/*
 * dispatcher_fixture.h - what test_dispatcher and test_dispatcher_conn share: the loop and
 * run helpers, the dispatcher-side recorder and callbacks, a real ctl_server worker (handlers,
 * load, media), pair_up(), and a hand-driven worker of raw ROUTERs (fake_up / fake_send /
 * fake_down) for exact control of what is answered.
 *
 * Header-only (static inline) so that every unit test stays one .c file.
 */
#ifndef RS_TEST_DISPATCHER_FIXTURE_H
#define RS_TEST_DISPATCHER_FIXTURE_H

#include "ctl_server.h"
#include "dispatcher.h"
#include "harness.h"
#include "log.h"
#include "zsock.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define SIG_ID "sig-test"

static struct evloop *loop;

/* Wall-clock monotonic milliseconds (evloop_now() is sampled once per iteration). */
static inline uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop until *counter reaches @target or @max_ms pass; true when reached. */
static inline bool run_until(const int *counter, int target, int max_ms)
{
	uint64_t end = evloop_now(loop) + (uint64_t)max_ms;

	while (*counter < target) {
		if (evloop_now(loop) >= end)
			return false;
		evloop_run_once(loop, 10);
	}
	return true;
}

static inline void run_for(int ms)
{
	uint64_t end = evloop_now(loop) + (uint64_t)ms;

	while (evloop_now(loop) < end)
		evloop_run_once(loop, 10);
}

/* --- dispatcher side recorder --- */

static struct {
	int up, down, restarted, events, media;
	uint64_t up_at, down_at, down_mono;
	struct dispatcher_worker *last_up;
	char event_leg[WIRE_MAX_ID + 1];
	uint8_t event_digit;
	struct wire_media md;
	uint8_t media_payload[64];
} dr;

static inline void on_up(struct dispatcher *d, struct dispatcher_worker *w, bool restarted,
			 void *arg)
{
	(void)d, (void)arg;
	dr.up++;
	dr.restarted += restarted;
	dr.up_at = evloop_now(loop);
	dr.last_up = w;
}

static inline void on_down(struct dispatcher *d, struct dispatcher_worker *w, void *arg)
{
	(void)d, (void)w, (void)arg;
	dr.down++;
	dr.down_at = evloop_now(loop);
	dr.down_mono = mono_ms();
}

static inline void on_event(struct dispatcher *d, struct dispatcher_worker *w,
			    const struct wire_msg *ev, void *arg)
{
	(void)d, (void)w, (void)arg;
	dr.events++;
	wire_get_cstr(ev, WIRE_T_LEG_ID, dr.event_leg, sizeof(dr.event_leg));
	wire_get_u8(ev, WIRE_T_DIGIT, &dr.event_digit);
}

static inline void on_dmedia(struct dispatcher *d, struct dispatcher_worker *w,
			     const struct wire_media *md, void *arg)
{
	(void)d, (void)w, (void)arg;
	dr.media++;
	dr.md = *md;
	memcpy(dr.media_payload, md->payload, md->len < 64 ? md->len : 64);
	dr.md.payload = NULL;
}

static const struct dispatcher_callbacks dcbs = {
	.worker_up = on_up,
	.worker_down = on_down,
	.event = on_event,
	.media = on_dmedia,
};

/* One request's outcome. */
struct outcome {
	int calls;
	int status;
	bool had_reply;
	uint16_t local_port;
	char text[WIRE_MAX_STR + 1];
	bool not_found;
};

static inline void on_reply(struct dispatcher *d, struct dispatcher_worker *w, int status,
			    const struct wire_msg *reply, void *arg)
{
	struct outcome *o = arg;

	(void)d, (void)w;
	o->calls++;
	o->status = status;
	o->had_reply = reply != NULL;
	o->text[0] = '\0';
	if (reply) {
		wire_get_u16(reply, WIRE_T_LOCAL_PORT, &o->local_port);
		wire_get_cstr(reply, WIRE_T_ERR_TEXT, o->text, sizeof(o->text));
		wire_get_bool(reply, WIRE_T_NOT_FOUND, &o->not_found);
	}
}

/* --- worker side (real ctl_server) --- */

static struct {
	int creates, destroys, dtmf, never, media, peers_up;
	struct ctl_request deferred;
	bool have_deferred;
	struct ctl_load load;
	char media_from[WIRE_MAX_ID + 1];
	char media_leg[WIRE_MAX_ID + 1];
	size_t media_len;
} ws;

static inline void h_create(struct ctl_server *s, const struct ctl_request *req,
			    const struct wire_msg *m, void *arg)
{
	static const struct wire_codec pcmu = {.pt = 0, .channels = 1, .rate = 8000,
					       .name = "PCMU"};
	struct wire_builder b = {0};

	(void)m, (void)arg;
	ws.creates++;
	wire_builder_init(&b, WIRE_OK, 0);
	wire_put_str(&b, WIRE_T_LOCAL_IP, "127.0.0.1");
	wire_put_u16(&b, WIRE_T_LOCAL_PORT, 20000);
	wire_put_codec(&b, WIRE_T_CHOSEN_CODEC, &pcmu);
	wire_put_u32(&b, WIRE_T_SSRC, 1);
	ctl_server_reply(s, req, &b);
	wire_builder_free(&b);
}

static inline void h_destroy(struct ctl_server *s, const struct ctl_request *req,
			     const struct wire_msg *m, void *arg)
{
	struct wire_builder b = {0};

	(void)m, (void)arg;
	ws.destroys++;
	wire_builder_init(&b, WIRE_OK, 0);
	wire_put_bool(&b, WIRE_T_NOT_FOUND, true);
	ctl_server_reply(s, req, &b);
	wire_builder_free(&b);
}

static inline void h_dtmf(struct ctl_server *s, const struct ctl_request *req,
			  const struct wire_msg *m, void *arg)
{
	(void)m, (void)arg;
	ws.dtmf++;
	ctl_server_reply_error(s, req, ENOENT, WIRE_T_LEG_ID, "leg %s not found", "x");
}

/* Replies without the tags a WORKER_STATS reply needs: the server turns it into ERROR EIO. */
static inline void h_bad_stats(struct ctl_server *s, const struct ctl_request *req,
			       const struct wire_msg *m, void *arg)
{
	struct wire_builder b = {0};

	(void)m, (void)arg;
	wire_builder_init(&b, WIRE_OK, 0);
	wire_put_u32(&b, WIRE_T_LEGS, 1);
	ctl_server_reply(s, req, &b);
	wire_builder_free(&b);
}

/* Never answers, or keeps the request to answer later. */
static inline void h_never(struct ctl_server *s, const struct ctl_request *req,
			   const struct wire_msg *m, void *arg)
{
	(void)s, (void)m, (void)arg;
	ws.never++;
	ws.deferred = *req;
	ws.have_deferred = true;
}

static const struct ctl_handler handlers[] = {
	{WIRE_CREATE_LEG, h_create},
	{WIRE_DESTROY_LEG, h_destroy},
	{WIRE_SEND_DTMF, h_dtmf},
	{WIRE_WORKER_STATS, h_bad_stats},
	{WIRE_UPDATE_LEG, h_never},
};

/* @arg: the struct ctl_load of this server (see server_with_load), else the shared one. */
static inline void w_load(struct ctl_server *s, struct ctl_load *out, void *arg)
{
	(void)s;
	*out = arg ? *(const struct ctl_load *)arg : ws.load;
}

static inline void w_media(struct ctl_server *s, const char *signaler_id,
			   const struct wire_media *md, void *arg)
{
	(void)s, (void)arg;
	ws.media++;
	snprintf(ws.media_from, sizeof(ws.media_from), "%s", signaler_id ? signaler_id : "(none)");
	snprintf(ws.media_leg, sizeof(ws.media_leg), "%s", md->leg_id);
	ws.media_len = md->len;
}

static inline void w_peer(struct ctl_server *s, const char *signaler_id, bool up, void *arg)
{
	(void)s, (void)signaler_id, (void)arg;
	ws.peers_up += up;
}

static const struct ctl_server_callbacks wcbs = {
	.handlers = handlers,
	.n_handlers = sizeof(handlers) / sizeof(handlers[0]),
	.load = w_load,
	.media = w_media,
	.peer = w_peer,
};

static inline struct ctl_server *server_with_load(const char *id, const char *ctl,
						  const char *media, uint32_t capacity,
						  struct ctl_load *load)
{
	struct ctl_server_config cfg = {
		.ctl_bind = ctl,
		.media_bind = media,
		.worker_id = id,
		.capacity = capacity,
		.heartbeat_ms = 300,
	};
	struct ctl_server_callbacks cbs = wcbs;

	cbs.arg = load;
	return ctl_server_new(loop, &cfg, &cbs);
}

static inline struct ctl_server *server_at(const char *id, const char *ctl, const char *media,
					   uint32_t capacity)
{
	return server_with_load(id, ctl, media, capacity, NULL);
}

static inline struct ctl_server *server_new(const char *id)
{
	return server_at(id, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 0);
}

static inline void reset_records(void)
{
	memset(&dr, 0, sizeof(dr));
	memset(&ws, 0, sizeof(ws));
}

/* A dispatcher with one worker, waited for until alive. */
static inline struct dispatcher *pair_up(struct ctl_server *s, struct dispatcher_worker **w)
{
	struct dispatcher *d = dispatcher_new(loop, SIG_ID, &dcbs, NULL);

	CHECK(d != NULL);
	CHECK_EQ_INT(dispatcher_add_worker(d, ctl_server_ctl_endpoint(s),
					   ctl_server_media_endpoint(s), NULL, w),
		     0);
	CHECK(run_until(&dr.up, 1, 3000));
	return d;
}

/* --- a hand-driven worker (raw ROUTERs) for exact control of what is answered --- */

static struct {
	struct zsock *ctl, *media;
	int hellos, creates;
	uint32_t req_ids[8];
	uint16_t flags[8];
	bool answer_hello;
	int answer_from; /* answer CREATE_LEG attempts from this one on (1-based), 0: never */
	int answer_copies;
	uint8_t rid[256];
	size_t rid_len;
} fk;

static inline void fake_send(struct zsock *zs, const uint8_t *rid, size_t rid_len,
			     struct wire_builder *b)
{
	const struct zsock_frame f[3] = {{rid, rid_len},
					 {b->hdr, WIRE_HDR_LEN},
					 {wire_builder_body(b), wire_builder_body_len(b)}};

	CHECK_EQ_INT(zsock_send(zs, f, 3), 0);
}

static inline void fake_on_msg(struct zsock *zs, const struct zsock_frame *f, size_t n, void *arg)
{
	static const struct wire_codec pcmu = {.pt = 0, .channels = 1, .rate = 8000,
					       .name = "PCMU"};
	struct wire_builder b = {0};
	struct wire_msg m;
	struct wire_err e;

	(void)arg;
	if (n != 3 || wire_parse(f[1].data, f[1].len, f[2].data, f[2].len, &m, &e) < 0)
		return;
	memcpy(fk.rid, f[0].data, f[0].len);
	fk.rid_len = f[0].len;
	if (m.h.type == WIRE_HELLO) {
		fk.hellos++;
		if (!fk.answer_hello)
			return;
		wire_builder_init(&b, WIRE_HELLO_OK, m.h.req_id);
		wire_put_str(&b, WIRE_T_WORKER_ID, "fake");
		wire_put_u64(&b, WIRE_T_INSTANCE_ID, 77);
		wire_builder_finish(&b);
		fake_send(zs, f[0].data, f[0].len, &b);
	} else if (m.h.type == WIRE_CREATE_LEG) {
		if (fk.creates < 8) {
			fk.req_ids[fk.creates] = m.h.req_id;
			fk.flags[fk.creates] = m.h.flags;
		}
		fk.creates++;
		if (!fk.answer_from || fk.creates < fk.answer_from)
			return;
		wire_builder_init(&b, WIRE_OK, m.h.req_id);
		wire_put_str(&b, WIRE_T_LOCAL_IP, "127.0.0.1");
		wire_put_u16(&b, WIRE_T_LOCAL_PORT, 30000);
		wire_put_codec(&b, WIRE_T_CHOSEN_CODEC, &pcmu);
		wire_put_u32(&b, WIRE_T_SSRC, 9);
		wire_builder_finish(&b);
		for (int i = 0; i < fk.answer_copies; i++)
			fake_send(zs, f[0].data, f[0].len, &b);
	}
	wire_builder_free(&b);
}

static inline bool fake_up_at(const char *ctl, const char *media)
{
	memset(&fk, 0, sizeof(fk));
	fk.answer_hello = true;
	fk.ctl = zsock_new(loop, ZMQ_ROUTER, &(struct zsock_opts){.name = "fake/ctl"}, fake_on_msg,
			   NULL);
	fk.media = zsock_new(loop, ZMQ_ROUTER, &(struct zsock_opts){.name = "fake/media"},
			     fake_on_msg, NULL);
	return fk.ctl && fk.media && zsock_bind(fk.ctl, ctl) == 0 && zsock_bind(fk.media, media) == 0;
}

static inline bool fake_up(void)
{
	return fake_up_at("tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
}

static inline void fake_down(void)
{
	zsock_destroy(&fk.ctl);
	zsock_destroy(&fk.media);
}

#endif
