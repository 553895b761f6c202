/*
 * test_state.c - the state records (state.h) against a real redis-server (started here on a free
 * port; the tests print SKIP when redis-server is not installed): leg round trip, whole-record
 * writes, delete + index, workers (list, liveness, expiry, pruning), format version and malformed
 * records, calls and registrations (round trip, delete by the owning signaler only, indexes and
 * their expiry, invalid and corrupted records), the SIP dialog in call records (optional fields:
 * records written without them still read), signaler heartbeats (previous instance reported,
 * liveness, never pruned by age, forgotten only with empty indexes), orphan deletes that keep a
 * live instance's records, locks, takeover of another signaler's leg.
 */
#include "evloop.h"
#include "harness.h"
#include "log.h"
#include "redis.h"
#include "redis_fixture.h"
#include "redis_server.h"
#include "state.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Helpers */

static struct legres read_leg(struct redis *r, const char *id)
{
	struct legres l = {0};
	int ret = state_leg_read(r, id, leg_cb, &l);

	if (ret < 0)
		l.err = ret;
	else
		RUN_UNTIL(l.done, 3000);
	return l;
}

/* Waits for the callback of an operation that returned @ret; its error, or @ret when refused. */
static int wait_done(int ret, struct done *d)
{
	if (ret < 0)
		return ret;
	RUN_UNTIL(d->done, 3000);
	if (d->err)
		fprintf(stderr, "  (write: %s)\n", d->msg);
	return d->done ? d->err : -ETIMEDOUT;
}

static int write_call(struct redis *r, const struct call_record *rec, unsigned ttl)
{
	struct done d = {0};

	return wait_done(state_call_write(r, rec, ttl, done_cb, &d), &d);
}

static int write_reg(struct redis *r, const struct reg_record *rec, unsigned ttl)
{
	struct done d = {0};

	return wait_done(state_reg_write(r, rec, ttl, done_cb, &d), &d);
}

/* @kind 'c': a call, 'r': a registration. */
static struct recres read_rec(struct redis *r, char kind, const char *id)
{
	struct recres x = {0};
	int ret =
	    kind == 'c' ? state_call_read(r, id, call_cb, &x) : state_reg_read(r, id, reg_cb, &x);

	if (ret < 0)
		x.err = ret;
	else
		RUN_UNTIL(x.done, 3000);
	return x;
}

static int delete_rec(struct redis *r, char kind, const char *id, const char *signaler)
{
	struct done d = {0};

	return wait_done(kind == 'c' ? state_call_delete(r, id, signaler, done_cb, &d)
				     : state_reg_delete(r, id, signaler, done_cb, &d),
			 &d);
}

static const struct call_record call_sample = {
    .sip_call_id = "f81d4fae-7dec-11d0-a765@192.0.2.4",
    .signaler = "sig-1",
    .app = "call",
    .direction = "in",
    .from_uri = "sip:+4930123456@example.com",
    .to_uri = "sip:bob@192.0.2.4:5060;transport=tcp",
    .rtmp_client = "c12 127.0.0.1:5555",
    .leg_id = "sig-1-x7-3",
    .worker = "w1",
    .state = "ringing",
    .codec = "PCMU",
    .transcoding = true,
    .srtp = true,
    .created_ms = 1700000000000ull,
    .answered_ms = 1700000001000ull,
    .updated_ms = 1700000001234ull,
};

static const struct reg_record reg_sample = {
    .signaler = "sig-1",
    .contact = "<sip:alice@192.0.2.10:5060;transport=tcp>",
    .registrar = "sip:registrar.example.com",
    .rtmp_client = "c7 [::1]:40000",
    .display = "Zo\xc3\xab Example",
    .expires_s = 3600,
    .registered_ms = 1700000000000ull,
    .updated_ms = 1700000000500ull,
};

/* The samples with their key; memcpy keeps the zeroed padding, so whole records compare. */
static void sample_call(struct call_record *c, const char *id)
{
	memcpy(c, &call_sample, sizeof(*c));
	snprintf(c->call_id, sizeof(c->call_id), "%s", id);
}

static void sample_reg(struct reg_record *g, const char *aor)
{
	memcpy(g, &reg_sample, sizeof(*g));
	snprintf(g->aor, sizeof(g->aor), "%s", aor);
}

/* Tests */

static void test_leg_round_trip(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct leg_record rec;
	struct legres l;

	sample_leg(&rec, "leg-1");
	CHECK_EQ_INT(write_leg(r, &rec, 0), 0);
	l = read_leg(r, "leg-1");
	CHECK_EQ_INT(l.err, 0);
	CHECK_EQ_INT(l.calls, 1);
	CHECK(memcmp(&l.rec, &rec, sizeof(rec)) == 0);
	CHECK_EQ_STR(l.rec.call_id, rec.call_id);
	CHECK_EQ_STR(l.rec.remote_ip, "2001:db8::1");
	CHECK_EQ_INT(l.rec.ssrc, 0xdeadbeefu);
	CHECK_EQ_INT(l.rec.timestamp, 4294967295u);
	CHECK_EQ_INT(l.rec.dtmf_pt, 101);
	CHECK(l.rec.hold);
	CHECK_EQ_INT(l.rec.updated_ms, 1700000000123ull);

	/* Empty optional fields and dtmf_pt -1 survive too; updated 0 is stamped on write. */
	rec.dtmf_pt = -1;
	rec.remote_ip[0] = rec.srtp_suite[0] = rec.srtp_local_key[0] = rec.srtp_remote_key[0] = 0;
	rec.hold = false;
	rec.updated_ms = 0;
	CHECK_EQ_INT(write_leg(r, &rec, 0), 0);
	l = read_leg(r, "leg-1");
	CHECK_EQ_INT(l.err, 0);
	CHECK_EQ_INT(l.rec.dtmf_pt, -1);
	CHECK_EQ_STR(l.rec.remote_ip, "");
	CHECK(!l.rec.hold);
	CHECK(l.rec.updated_ms >= state_now_ms() - 10000);

	/* Records that would not read back are refused before anything is sent. */
	sample_leg(&rec, "leg-1");
	snprintf(rec.remote_ip, sizeof(rec.remote_ip), "not-an-ip");
	CHECK_EQ_INT(state_leg_write(r, &rec, 0, NULL, NULL), -EINVAL);
	sample_leg(&rec, "leg-1");
	rec.sip_pt = 200;
	CHECK_EQ_INT(state_leg_write(r, &rec, 0, NULL, NULL), -EINVAL);
	sample_leg(&rec, "bad:id");
	CHECK_EQ_INT(state_leg_write(r, &rec, 0, NULL, NULL), -EINVAL);
	sample_leg(&rec, "leg-1");
	rec.call_id[0] = '\0';
	CHECK_EQ_INT(state_leg_write(r, &rec, 0, NULL, NULL), -EINVAL);
	sample_leg(&rec, "leg-1");
	memset(rec.call_id, 'x', sizeof(rec.call_id)); /* unterminated */
	CHECK_EQ_INT(state_leg_write(r, &rec, 0, NULL, NULL), -EINVAL);
	CHECK_EQ_INT(state_leg_read(r, "no such/id", leg_cb, NULL), -EINVAL);
	redis_destroy(&r);
}

static void test_leg_write_is_whole(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct leg_record rec;
	struct cmd_reply res;

	/* A stale field from an earlier writer must not survive a write: DEL + HSET in one MULTI.
	 */
	res = cmd(r, "HSET rs:v1:leg:leg-2 junk 1 v 1");
	CHECK_EQ_INT(res.err, 0);
	sample_leg(&rec, "leg-2");
	CHECK_EQ_INT(write_leg(r, &rec, 600), 0);
	res = cmd(r, "HGETALL rs:v1:leg:leg-2");
	CHECK_EQ_INT(res.err, 0);
	CHECK_EQ_INT(res.elements, 2 * 26); /* v + 25 fields, nothing else */
	res = cmd(r, "HEXISTS rs:v1:leg:leg-2 junk");
	CHECK_EQ_INT(res.integer, 0);
	res = cmd(r, "TTL rs:v1:leg:leg-2");
	CHECK(res.integer > 590 && res.integer <= 600);
	res = cmd(r, "SISMEMBER rs:v1:worker:w1:legs leg-2");
	CHECK_EQ_INT(res.integer, 1);
	res = cmd(r, "TTL rs:v1:worker:w1:legs");
	CHECK(res.integer > 0 && res.integer <= STATE_WORKER_INDEX_TTL_S);
	/* The default TTL is the 2 h of LEG_TTL. */
	CHECK_EQ_INT(write_leg(r, &rec, 0), 0);
	res = cmd(r, "TTL rs:v1:leg:leg-2");
	CHECK(res.integer > STATE_LEG_TTL_DEFAULT_S - 10 && res.integer <= STATE_LEG_TTL_DEFAULT_S);
	/* A transaction with a failing command reports it. */
	res = cmd(r, "SET rs:v1:worker:wx:legs notaset");
	snprintf(rec.worker, sizeof(rec.worker), "wx");
	CHECK_EQ_INT(write_leg(r, &rec, 0), -EREMOTEIO);
	cmd(r, "DEL rs:v1:worker:wx:legs");
	redis_destroy(&r);
}

struct idsres {
	bool done;
	int err;
	size_t n;
	char ids[16][STATE_ID_MAX + 1];
};

static void ids_cb(int err, const char *errmsg, const char *const *ids, size_t n, void *arg)
{
	struct idsres *x = arg;

	(void)errmsg;
	x->done = true;
	x->err = err;
	x->n = n;
	for (size_t i = 0; i < n && i < 16; i++)
		snprintf(x->ids[i], sizeof(x->ids[i]), "%s", ids[i]);
}

static bool ids_has(const struct idsres *x, const char *id)
{
	for (size_t i = 0; i < x->n && i < 16; i++)
		if (strcmp(x->ids[i], id) == 0)
			return true;
	return false;
}

/* An owner's index: @list is state_worker_legs, state_signaler_calls or state_signaler_regs. */
static struct idsres index_of(struct redis *r,
			      int (*list)(struct redis *, const char *, state_ids_cb, void *),
			      const char *owner)
{
	struct idsres x = {0};

	if (list(r, owner, ids_cb, &x) == 0)
		RUN_UNTIL(x.done, 3000);
	return x;
}

static void test_leg_delete(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct leg_record rec;
	struct done d = {0};
	struct idsres x;
	struct legres l;
	struct cmd_reply res;

	sample_leg(&rec, "leg-3");
	CHECK_EQ_INT(write_leg(r, &rec, 0), 0);
	x = index_of(r, state_worker_legs, "w1");
	CHECK_EQ_INT(x.err, 0);
	CHECK(ids_has(&x, "leg-3"));
	/* A worker that no longer owns the leg (it was adopted by w1) leaves the record alone. */
	CHECK_EQ_INT(state_leg_delete(r, "leg-3", "w-stale", done_cb, &d), 0);
	RUN_UNTIL(d.done, 3000);
	CHECK_EQ_INT(d.err, 0);
	res = cmd(r, "EXISTS rs:v1:leg:leg-3");
	CHECK_EQ_INT(res.integer, 1);
	d = (struct done){0};
	CHECK_EQ_INT(state_leg_delete(r, "leg-3", "w1", done_cb, &d), 0);
	RUN_UNTIL(d.done, 3000);
	CHECK_EQ_INT(d.err, 0);
	res = cmd(r, "EXISTS rs:v1:leg:leg-3");
	CHECK_EQ_INT(res.integer, 0);
	res = cmd(r, "SISMEMBER rs:v1:worker:w1:legs leg-3");
	CHECK_EQ_INT(res.integer, 0);
	x = index_of(r, state_worker_legs, "w1");
	CHECK(!ids_has(&x, "leg-3"));
	l = read_leg(r, "leg-3");
	CHECK_EQ_INT(l.err, -ENOENT);
	CHECK(strstr(l.msg, "not found") != NULL);
	redis_destroy(&r);
}

struct wres {
	bool done;
	int err;
	size_t n;
	struct worker_record w[8];
};

static void workers_cb(int err, const char *errmsg, const struct worker_record *w, size_t n,
		       void *arg)
{
	struct wres *x = arg;

	(void)errmsg;
	x->done = true;
	x->err = err;
	x->n = n;
	for (size_t i = 0; i < n && i < 8; i++)
		memcpy(&x->w[i], &w[i], sizeof(w[i]));
}

static const struct worker_record *find_worker(const struct wres *x, const char *id)
{
	for (size_t i = 0; i < x->n && i < 8; i++)
		if (strcmp(x->w[i].worker_id, id) == 0)
			return &x->w[i];
	return NULL;
}

static struct wres list_workers(struct redis *r, uint64_t now, uint64_t window)
{
	struct wres x = {0};

	if (state_workers_list(r, now, window, workers_cb, &x) == 0)
		RUN_UNTIL(x.done, 3000);
	return x;
}

static void sample_worker(struct worker_record *w, const char *id, uint64_t seen)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->worker_id, sizeof(w->worker_id), "%s", id);
	snprintf(w->instance_id, sizeof(w->instance_id), "%s-i7", id);
	w->pid = 4242;
	snprintf(w->host, sizeof(w->host), "media-1.example.net");
	snprintf(w->ctl_endpoint, sizeof(w->ctl_endpoint), "tcp://10.0.0.5:5555");
	snprintf(w->media_endpoint, sizeof(w->media_endpoint), "ipc:///run/rtmp2sip/%s.media", id);
	w->legs = 17;
	w->cpu = 350;
	w->draining = true;
	w->started_ms = 1700000000000ull;
	w->last_seen_ms = seen;
}

static int write_worker(struct redis *r, const struct worker_record *w, unsigned ttl)
{
	struct done d = {0};
	int ret = state_worker_write(r, w, ttl, done_cb, &d);

	if (ret < 0)
		return ret;
	RUN_UNTIL(d.done, 3000);
	return d.done ? d.err : -ETIMEDOUT;
}

static void test_workers(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct worker_record w1, w2, w3, w4;
	const struct worker_record *got;
	uint64_t now = state_now_ms();
	struct idsres stale = {0};
	struct wres x;
	struct cmd_reply res;

	cmd(r, "DEL rs:v1:workers");
	sample_worker(&w1, "wk1", now);
	/* the optional CURVE key (any Z85 text is F_TEXT: printable, no spaces) */
	snprintf(w1.curve_key, sizeof(w1.curve_key), "%s", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
	sample_worker(&w2, "wk2", 0); /* 0: stamped with now */
	w2.draining = false;
	CHECK_EQ_INT(write_worker(r, &w1, 1), 0);
	CHECK_EQ_INT(write_worker(r, &w2, 30), 0);
	res = cmd(r, "TTL rs:v1:worker:wk1");
	CHECK(res.integer == 1 || res.integer == 0);
	res = cmd(r, "TTL rs:v1:workers");
	CHECK(res.integer > 0 && res.integer <= STATE_WORKER_INDEX_TTL_S);

	x = list_workers(r, 0, 0);
	CHECK_EQ_INT(x.err, 0);
	CHECK_EQ_INT(x.n, 2);
	got = find_worker(&x, "wk1");
	CHECK(got && memcmp(got, &w1, sizeof(w1)) == 0);
	got = find_worker(&x, "wk2");
	CHECK(got && !got->draining && got->last_seen_ms >= now);

	/* Out of the liveness window: not listed, but reported stale (for failover). */
	sample_worker(&w3, "wk3", now - 20000);
	CHECK_EQ_INT(write_worker(r, &w3, 30), 0);
	x = list_workers(r, 0, 0);
	CHECK_EQ_INT(x.n, 2);
	CHECK(find_worker(&x, "wk3") == NULL);
	CHECK_EQ_INT(state_workers_stale(r, 0, 0, ids_cb, &stale), 0);
	RUN_UNTIL(stale.done, 3000);
	CHECK_EQ_INT(stale.err, 0);
	CHECK(ids_has(&stale, "wk3") && !ids_has(&stale, "wk1"));

	/* A heartbeat prunes ZSET entries older than the index TTL. */
	sample_worker(&w4, "wk4", now - 120000);
	CHECK_EQ_INT(write_worker(r, &w4, 30), 0);
	res = cmd(r, "ZSCORE rs:v1:workers wk4");
	CHECK(res.type == REDIS_REPLY_STRING);
	w2.last_seen_ms = 0;
	CHECK_EQ_INT(write_worker(r, &w2, 30), 0);
	res = cmd(r, "ZSCORE rs:v1:workers wk4");
	CHECK_EQ_INT(res.type, REDIS_REPLY_NIL);

	/* The 1 s TTL: wk1's hash expires and it drops out of the list. */
	RUN_UNTIL(false, 2100);
	res = cmd(r, "EXISTS rs:v1:worker:wk1");
	CHECK_EQ_INT(res.integer, 0);
	x = list_workers(r, 0, 0);
	CHECK_EQ_INT(x.err, 0);
	CHECK(find_worker(&x, "wk1") == NULL);
	CHECK(find_worker(&x, "wk2") != NULL);

	/* A record written without the optional curve field (an older build) reads it as "". */
	res = cmd(r, "HDEL rs:v1:worker:wk2 curve");
	CHECK_EQ_INT(res.integer, 1);
	x = list_workers(r, 0, 0);
	got = find_worker(&x, "wk2");
	CHECK(got && got->curve_key[0] == '\0');

	/* A malformed worker hash is skipped, not fatal. */
	res = cmd(r, "HSET rs:v1:worker:wk2 pid 0");
	x = list_workers(r, 0, 0);
	CHECK_EQ_INT(x.err, 0);
	CHECK(find_worker(&x, "wk2") == NULL);
	redis_destroy(&r);
}

static void test_version_mismatch(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct legres l;

	cmd(r, "DEL rs:v1:leg:old");
	cmd(r, "HSET rs:v1:leg:old v 2 call x owner s worker w1");
	l = read_leg(r, "old");
	CHECK_EQ_INT(l.err, -EPROTONOSUPPORT);
	CHECK(strstr(l.msg, "leg record format v2 unsupported") != NULL);
	fprintf(stderr, "  (version error reads: %s)\n", l.msg);
	cmd(r, "HDEL rs:v1:leg:old v");
	l = read_leg(r, "old");
	CHECK_EQ_INT(l.err, -EBADMSG);
	CHECK(strstr(l.msg, "'v'") != NULL);
	redis_destroy(&r);
}

/*
 * Writes a sample record "bad-1" ('l'eg, 'c'all; 'r'egistration "bad@example.com"), applies
 * @mutation and reads it back: the read must fail with -EBADMSG naming @field and saying @what.
 */
static void expect_bad(struct redis *r, char kind, const char *mutation, const char *field,
		       const char *what)
{
	struct leg_record leg;
	struct call_record call;
	struct reg_record reg;
	struct legres l;
	struct recres x;
	const char *msg;
	int err;

	sample_leg(&leg, "bad-1");
	sample_call(&call, "bad-1");
	sample_reg(&reg, "bad@example.com");
	err = kind == 'l'   ? write_leg(r, &leg, 0)
	      : kind == 'c' ? write_call(r, &call, 0)
			    : write_reg(r, &reg, 0);
	CHECK_EQ_INT(err, 0);
	cmd(r, mutation);
	if (kind == 'l') {
		l = read_leg(r, "bad-1");
		err = l.err, msg = l.msg;
	} else {
		x = read_rec(r, kind, kind == 'c' ? "bad-1" : "bad@example.com");
		err = x.err, msg = x.msg;
	}
	CHECK_EQ_INT(err, -EBADMSG);
	CHECK(strstr(msg, field) != NULL);
	CHECK(strstr(msg, what) != NULL);
	if (!strstr(msg, field) || !strstr(msg, what))
		fprintf(stderr, "  after %s: message was: %s\n", mutation, msg);
}

/* Malformed records of every type read back as errors naming the field, never as records. */
static void test_malformed_fields(void)
{
	static const struct {
		char kind;
		const char *mutation, *field, *what;
		size_t pad; /* 'A's appended to the mutation: an over-long value */
	} cases[] = {
	    {'l', "HSET rs:v1:leg:bad-1 remote_port 70000", "'remote_port'", "out of range", 0},
	    {'l', "HSET rs:v1:leg:bad-1 ssrc abc", "'ssrc'", "not a number", 0},
	    {'l', "HDEL rs:v1:leg:bad-1 seq", "'seq'", "missing", 0},
	    {'l', "HSET rs:v1:leg:bad-1 ssrc 4294967296", "'ssrc'", "out of range", 0},
	    {'l', "HSET rs:v1:leg:bad-1 ssrc -1", "'ssrc'", "not a number", 0},
	    {'l', "HSET rs:v1:leg:bad-1 dtmf_pt -2", "'dtmf_pt'", "out of range", 0},
	    {'l', "HSET rs:v1:leg:bad-1 remote_ip 300.1.1.1", "'remote_ip'", "not an IP", 0},
	    {'l', "HSET rs:v1:leg:bad-1 hold 2", "'hold'", "out of range", 0},
	    {'l', "HSET rs:v1:leg:bad-1 worker w/1", "'worker'", "not allowed", 0},
	    {'l', "HSET rs:v1:leg:bad-1 call \"\"", "'call'", "empty", 0},
	    {'l', "HSET rs:v1:leg:bad-1 sip_codec ", "'sip_codec'", "too long", 100},
	    {'c', "HSET rs:v1:call:bad-1 state dancing", "'state'", "not one of", 0},
	    {'c', "HSET rs:v1:call:bad-1 app rtmp", "'app'", "not one of", 0},
	    {'c', "HSET rs:v1:call:bad-1 transcoding 2", "'transcoding'", "out of range", 0},
	    {'c', "HSET rs:v1:call:bad-1 answered -1", "'answered'", "not a number", 0},
	    {'c', "HSET rs:v1:call:bad-1 from \"\"", "'from'", "empty", 0},
	    {'c', "HSET rs:v1:call:bad-1 leg a/b", "'leg'", "not allowed", 0},
	    {'c', "HDEL rs:v1:call:bad-1 signaler", "'signaler'", "missing", 0},
	    {'c', "HDEL rs:v1:call:bad-1 v", "'v'", "missing", 0},
	    {'c', "HSET rs:v1:call:bad-1 rtmp_client ", "'rtmp_client'", "too long", 64},
	    {'r', "HSET rs:v1:reg:bad@example.com expires 4294967296", "'expires'", "out of range",
	     0},
	    {'r', "HSET rs:v1:reg:bad@example.com contact a\x01", "'contact'", "not allowed", 0},
	    {'r', "HDEL rs:v1:reg:bad@example.com registered", "'registered'", "missing", 0},
	    {'r', "HSET rs:v1:reg:bad@example.com display ", "'display'", "too long", 200},
	};
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	char line[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = (size_t)snprintf(line, sizeof(line), "%s", cases[i].mutation);

		memset(line + n, 'A', cases[i].pad);
		line[n + cases[i].pad] = '\0';
		expect_bad(r, cases[i].kind, line, cases[i].field, cases[i].what);
	}
	redis_destroy(&r);
}

static void test_call_round_trip(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct call_record rec, other;
	struct idsres x;
	struct recres got;
	struct cmd_reply res;

	cmd(r, "DEL rs:v1:signaler:sig-1:calls");
	res = cmd(r, "HSET rs:v1:call:sig-1.n1.1 junk 1 v 1");
	sample_call(&rec, "sig-1.n1.1");
	CHECK_EQ_INT(write_call(r, &rec, 0), 0);
	got = read_rec(r, 'c', "sig-1.n1.1");
	CHECK_EQ_INT(got.err, 0);
	CHECK_EQ_INT(got.calls, 1);
	CHECK(memcmp(&got.call, &rec, sizeof(rec)) == 0);
	CHECK_EQ_STR(got.call.rtmp_client, "c12 127.0.0.1:5555");
	CHECK_EQ_STR(got.call.state, "ringing");
	CHECK(got.call.transcoding && got.call.srtp);
	CHECK_EQ_INT(got.call.answered_ms, 1700000001000ull);
	/* Written whole (v + 26 fields, the stale one gone), with the default TTL, and indexed. */
	res = cmd(r, "HGETALL rs:v1:call:sig-1.n1.1");
	CHECK_EQ_INT(res.elements, 2 * 27);
	res = cmd(r, "TTL rs:v1:call:sig-1.n1.1");
	CHECK(res.integer > STATE_CALL_TTL_DEFAULT_S - 10 &&
	      res.integer <= STATE_CALL_TTL_DEFAULT_S);
	res = cmd(r, "TTL rs:v1:signaler:sig-1:calls");
	CHECK(res.integer > STATE_CALL_TTL_DEFAULT_S - 10 &&
	      res.integer <= STATE_CALL_TTL_DEFAULT_S);
	x = index_of(r, state_signaler_calls, "sig-1");
	CHECK_EQ_INT(x.err, 0);
	CHECK(ids_has(&x, "sig-1.n1.1"));

	/* Optional fields empty, not answered, updated stamped on write (built from zeros, so
	 * that the whole struct compares). */
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.call_id, sizeof(rec.call_id), "sig-1.n1.1");
	snprintf(rec.sip_call_id, sizeof(rec.sip_call_id), "x");
	snprintf(rec.signaler, sizeof(rec.signaler), "sig-1");
	snprintf(rec.app, sizeof(rec.app), "sip");
	snprintf(rec.direction, sizeof(rec.direction), "out");
	snprintf(rec.from_uri, sizeof(rec.from_uri), "sip:a@example.com");
	snprintf(rec.to_uri, sizeof(rec.to_uri), "sip:b@example.com");
	snprintf(rec.state, sizeof(rec.state), "setup");
	CHECK_EQ_INT(write_call(r, &rec, 0), 0);
	got = read_rec(r, 'c', "sig-1.n1.1");
	CHECK_EQ_INT(got.err, 0);
	CHECK(got.call.updated_ms >= state_now_ms() - 10000);
	rec.updated_ms = got.call.updated_ms;
	CHECK(memcmp(&got.call, &rec, sizeof(rec)) == 0);

	/* A shorter-lived call does not shorten the index's expiry: it outlives every call. */
	sample_call(&other, "sig-1.n1.2");
	CHECK_EQ_INT(write_call(r, &other, 100), 0);
	res = cmd(r, "TTL rs:v1:call:sig-1.n1.2");
	CHECK(res.integer > 90 && res.integer <= 100);
	res = cmd(r, "TTL rs:v1:signaler:sig-1:calls");
	CHECK(res.integer > STATE_CALL_TTL_DEFAULT_S - 10);
	x = index_of(r, state_signaler_calls, "sig-1");
	CHECK_EQ_INT(x.n, 2);
	CHECK(ids_has(&x, "sig-1.n1.1") && ids_has(&x, "sig-1.n1.2"));
	/* A member that is not a call id is left out of the list, not passed on. */
	cmd(r, "SADD rs:v1:signaler:sig-1:calls bad/id");
	x = index_of(r, state_signaler_calls, "sig-1");
	CHECK_EQ_INT(x.err, 0);
	CHECK_EQ_INT(x.n, 2);
	CHECK(!ids_has(&x, "bad/id"));
	x = index_of(r, state_signaler_calls, "sig-none");
	CHECK_EQ_INT(x.err, 0);
	CHECK_EQ_INT(x.n, 0);
	redis_destroy(&r);
}

/* Deletes of calls and registrations: only the owning signaler removes the record. */
static void test_call_reg_delete(void)
{
	static const struct {
		char kind;
		const char *id, *key, *index, *other_index;
		int (*list)(struct redis *, const char *, state_ids_cb, void *);
	} cases[] = {
	    {'c', "sig-1.n2.1", "rs:v1:call:sig-1.n2.1", "rs:v1:signaler:sig-1:calls",
	     "rs:v1:signaler:sig-2:calls", state_signaler_calls},
	    {'r', "alice@example.com", "rs:v1:reg:alice@example.com", "rs:v1:signaler:sig-1:regs",
	     "rs:v1:signaler:sig-2:regs", state_signaler_regs},
	};
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct call_record call;
		struct reg_record reg;
		struct recres got;
		struct idsres x;
		struct cmd_reply res;
		char line[160];

		sample_call(&call, cases[i].id);
		sample_reg(&reg, cases[i].id);
		CHECK_EQ_INT(cases[i].kind == 'c' ? write_call(r, &call, 0) : write_reg(r, &reg, 0),
			     0);
		snprintf(line, sizeof(line), "SADD %s %s", cases[i].other_index, cases[i].id);
		cmd(r, line);
		x = index_of(r, cases[i].list, "sig-1");
		CHECK(ids_has(&x, cases[i].id));
		/* Another signaler's delete leaves the record and its owner's index alone. */
		CHECK_EQ_INT(delete_rec(r, cases[i].kind, cases[i].id, "sig-2"), 0);
		snprintf(line, sizeof(line), "EXISTS %s", cases[i].key);
		res = cmd(r, line);
		CHECK_EQ_INT(res.integer, 1);
		x = index_of(r, cases[i].list, "sig-1");
		CHECK(ids_has(&x, cases[i].id));
		x = index_of(r, cases[i].list, "sig-2"); /* its own index entry goes */
		CHECK(!ids_has(&x, cases[i].id));
		got = read_rec(r, cases[i].kind, cases[i].id);
		CHECK_EQ_INT(got.err, 0);
		/* The owner's delete removes both. */
		CHECK_EQ_INT(delete_rec(r, cases[i].kind, cases[i].id, "sig-1"), 0);
		res = cmd(r, line);
		CHECK_EQ_INT(res.integer, 0);
		x = index_of(r, cases[i].list, "sig-1");
		CHECK_EQ_INT(x.err, 0);
		CHECK(!ids_has(&x, cases[i].id));
		got = read_rec(r, cases[i].kind, cases[i].id);
		CHECK_EQ_INT(got.err, -ENOENT);
		CHECK_EQ_INT(got.calls, 1);
		CHECK(strstr(got.msg, "not found") != NULL);
		/* Deleting what is gone is not an error. */
		CHECK_EQ_INT(delete_rec(r, cases[i].kind, cases[i].id, "sig-1"), 0);
	}
	redis_destroy(&r);
}

static void test_reg_round_trip(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct reg_record rec;
	struct recres got;
	struct idsres x;
	struct cmd_reply res;

	cmd(r, "DEL rs:v1:signaler:sig-1:regs");
	sample_reg(&rec, "+4930123456@sip.example.com");
	CHECK_EQ_INT(write_reg(r, &rec, 0), 0);
	got = read_rec(r, 'r', "+4930123456@sip.example.com");
	CHECK_EQ_INT(got.err, 0);
	CHECK_EQ_INT(got.calls, 1);
	CHECK(memcmp(&got.reg, &rec, sizeof(rec)) == 0);
	CHECK_EQ_STR(got.reg.display, "Zo\xc3\xab Example");
	CHECK_EQ_INT(got.reg.expires_s, 3600);
	res = cmd(r, "HGETALL rs:v1:reg:+4930123456@sip.example.com");
	CHECK_EQ_INT(res.elements, 2 * 10); /* v + 9 fields */
	/* TTL 0: the granted expiry plus the margin, for the record and its index. */
	res = cmd(r, "TTL rs:v1:reg:+4930123456@sip.example.com");
	CHECK(res.integer > 3600 + STATE_REG_TTL_MARGIN_S - 10 &&
	      res.integer <= 3600 + STATE_REG_TTL_MARGIN_S);
	res = cmd(r, "TTL rs:v1:signaler:sig-1:regs");
	CHECK(res.integer > 3600 && res.integer <= 3600 + STATE_REG_TTL_MARGIN_S);
	x = index_of(r, state_signaler_regs, "sig-1");
	CHECK_EQ_INT(x.err, 0);
	CHECK(ids_has(&x, "+4930123456@sip.example.com"));

	/* Empty optional fields; an explicit TTL; a huge expiry is capped. */
	rec.contact[0] = rec.registrar[0] = rec.rtmp_client[0] = rec.display[0] = '\0';
	rec.updated_ms = 0;
	CHECK_EQ_INT(write_reg(r, &rec, 120), 0);
	got = read_rec(r, 'r', "+4930123456@sip.example.com");
	CHECK_EQ_INT(got.err, 0);
	CHECK_EQ_STR(got.reg.contact, "");
	CHECK(got.reg.updated_ms >= state_now_ms() - 10000);
	res = cmd(r, "TTL rs:v1:reg:+4930123456@sip.example.com");
	CHECK(res.integer > 110 && res.integer <= 120);
	rec.expires_s = UINT32_MAX;
	CHECK_EQ_INT(write_reg(r, &rec, 0), 0);
	res = cmd(r, "TTL rs:v1:reg:+4930123456@sip.example.com");
	CHECK(res.integer > STATE_TTL_MAX_S - 10 && res.integer <= STATE_TTL_MAX_S);
	redis_destroy(&r);
}

/* The dialog fields of a call record: round trip, optional (an older record without them still
 * reads, with them empty), but validated when present. */
static void test_call_dialog_fields(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct call_record rec;
	struct recres got;

	sample_call(&rec, "sig-1.d1.1");
	snprintf(rec.instance, sizeof(rec.instance), "0123456789abcdef");
	snprintf(rec.local_tag, sizeof(rec.local_tag), "as6151ad25");
	snprintf(rec.remote_tag, sizeof(rec.remote_tag), "1928301774");
	snprintf(rec.local_uri, sizeof(rec.local_uri), "sip:alice@example.com");
	snprintf(rec.remote_uri, sizeof(rec.remote_uri), "sip:bob@biloxi.example.com");
	snprintf(rec.remote_target, sizeof(rec.remote_target),
		 "sip:bob@192.0.2.4:5062;transport=tcp");
	snprintf(rec.route, sizeof(rec.route), "<sip:p1.example.com;lr>,<sip:p2.example.com;lr>");
	rec.local_cseq = 314159;
	snprintf(rec.transport, sizeof(rec.transport), "tcp");
	snprintf(rec.dest, sizeof(rec.dest), "[2001:db8::7]:5062");
	CHECK_EQ_INT(write_call(r, &rec, 0), 0);
	got = read_rec(r, 'c', "sig-1.d1.1");
	CHECK_EQ_INT(got.err, 0);
	CHECK(memcmp(&got.call, &rec, sizeof(rec)) == 0);
	CHECK_EQ_STR(got.call.route, "<sip:p1.example.com;lr>,<sip:p2.example.com;lr>");
	CHECK_EQ_INT(got.call.local_cseq, 314159);

	/* A record of an older build (no optional field) reads with them empty. */
	cmd(r,
	    "HDEL rs:v1:call:sig-1.d1.1 instance ltag rtag luri ruri target route cseq transport "
	    "dest");
	got = read_rec(r, 'c', "sig-1.d1.1");
	CHECK_EQ_INT(got.err, 0);
	CHECK_EQ_STR(got.call.local_tag, "");
	CHECK_EQ_STR(got.call.instance, "");
	CHECK_EQ_INT(got.call.local_cseq, 0);
	CHECK_EQ_STR(got.call.sip_call_id, rec.sip_call_id);

	/* Present but wrong: refused like any field. */
	CHECK_EQ_INT(write_call(r, &rec, 0), 0);
	cmd(r, "HSET rs:v1:call:sig-1.d1.1 cseq 2147483648");
	got = read_rec(r, 'c', "sig-1.d1.1");
	CHECK_EQ_INT(got.err, -EBADMSG);
	CHECK(strstr(got.msg, "'cseq'") && strstr(got.msg, "out of range"));
	CHECK_EQ_INT(write_call(r, &rec, 0), 0);
	cmd(r, "HSET rs:v1:call:sig-1.d1.1 transport pigeon");
	got = read_rec(r, 'c', "sig-1.d1.1");
	CHECK_EQ_INT(got.err, -EBADMSG);
	CHECK(strstr(got.msg, "'transport'") && strstr(got.msg, "not one of"));
	CHECK_EQ_INT(write_call(r, &rec, 0), 0);
	cmd(r, "HSET rs:v1:call:sig-1.d1.1 instance bad/inst");
	got = read_rec(r, 'c', "sig-1.d1.1");
	CHECK_EQ_INT(got.err, -EBADMSG);
	CHECK(strstr(got.msg, "'instance'") != NULL);

	/* Nothing that would not read back is written: a tag with a space, a too long route. */
	rec.local_tag[2] = ' ';
	CHECK_EQ_INT(state_call_write(r, &rec, 0, NULL, NULL), -EINVAL);
	rec.local_tag[2] = 'x';
	memset(rec.route, 'r', STATE_ROUTE_MAX);
	rec.route[STATE_ROUTE_MAX] = 'r'; /* unterminated: too long */
	CHECK_EQ_INT(state_call_write(r, &rec, 0, NULL, NULL), -EINVAL);
	CHECK_EQ_INT(delete_rec(r, 'c', "sig-1.d1.1", "sig-1"), 0);
	redis_destroy(&r);
}

struct hbres {
	bool done;
	int calls;
	int err;
	char prev[STATE_ID_MAX + 1];
	uint64_t prev_seen;
};

static void hb_cb(int err, const char *errmsg, const char *prev, uint64_t prev_seen, void *arg)
{
	struct hbres *h = arg;

	(void)errmsg;
	h->done = true;
	h->calls++;
	h->err = err;
	snprintf(h->prev, sizeof(h->prev), "%s", prev ? prev : "(null)");
	h->prev_seen = prev_seen;
}

static struct hbres write_sig(struct redis *r, const struct signaler_record *g, unsigned ttl)
{
	struct hbres h = {0};
	int ret = state_signaler_write(r, g, ttl, hb_cb, &h);

	if (ret < 0)
		h.err = ret;
	else
		RUN_UNTIL(h.done, 3000);
	return h;
}

static void sample_sig(struct signaler_record *g, const char *id, const char *inst, uint64_t seen)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->signaler_id, sizeof(g->signaler_id), "%s", id);
	snprintf(g->instance_id, sizeof(g->instance_id), "%s", inst);
	g->pid = 777;
	snprintf(g->host, sizeof(g->host), "sig-host-1");
	snprintf(g->sip, sizeof(g->sip), "192.0.2.10:5060");
	snprintf(g->rtmp, sizeof(g->rtmp), "[2001:db8::10]:1935");
	g->started_ms = 1700000000000ull;
	g->last_seen_ms = seen;
}

struct sigres {
	bool done;
	int err;
	char msg[256];
	struct signaler_record rec;
};

static void sig_cb(int err, const char *errmsg, const struct signaler_record *rec, void *arg)
{
	struct sigres *x = arg;

	x->done = true;
	x->err = err;
	snprintf(x->msg, sizeof(x->msg), "%s", errmsg ? errmsg : "");
	if (rec)
		x->rec = *rec;
}

static struct sigres read_sig(struct redis *r, const char *id)
{
	struct sigres x = {0};

	if (state_signaler_read(r, id, sig_cb, &x) == 0)
		RUN_UNTIL(x.done, 3000);
	return x;
}

struct flagres {
	bool done;
	int calls;
	int err;
	bool yes;
};

static void flag_cb(int err, const char *errmsg, bool yes, void *arg)
{
	struct flagres *f = arg;

	(void)errmsg;
	f->done = true;
	f->calls++;
	f->err = err;
	f->yes = yes;
}

/* Runs a flag operation that returned @ret; its outcome (err -ETIMEDOUT if no callback). */
static struct flagres wait_flag(int ret, struct flagres *f)
{
	if (ret < 0) {
		f->err = ret;
		return *f;
	}
	RUN_UNTIL(f->done, 3000);
	if (!f->done)
		f->err = -ETIMEDOUT;
	return *f;
}

static struct idsres stale_sigs(struct redis *r, uint64_t now, uint64_t window)
{
	struct idsres x = {0};

	if (state_signalers_stale(r, now, window, ids_cb, &x) == 0)
		RUN_UNTIL(x.done, 3000);
	return x;
}

/* Heartbeats: whole writes with the previous instance reported; liveness; forget. */
static void test_signalers(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct signaler_record g;
	uint64_t now = state_now_ms();
	struct flagres f;
	struct hbres h;
	struct sigres x;
	struct idsres st;
	struct cmd_reply res;

	cmd(r, "DEL rs:v1:signalers rs:v1:signaler:s1 rs:v1:signaler:s2 rs:v1:signaler:s3");
	sample_sig(&g, "s1", "aaaa000000000001", 0);
	h = write_sig(r, &g, 0);
	CHECK_EQ_INT(h.err, 0);
	CHECK_EQ_INT(h.calls, 1);
	CHECK_EQ_STR(h.prev, ""); /* nothing there before */
	CHECK_EQ_INT(h.prev_seen, 0);
	x = read_sig(r, "s1");
	CHECK_EQ_INT(x.err, 0);
	CHECK_EQ_STR(x.rec.instance_id, "aaaa000000000001");
	CHECK_EQ_STR(x.rec.rtmp, "[2001:db8::10]:1935");
	CHECK(x.rec.last_seen_ms >= now && x.rec.last_seen_ms < now + 10000);
	res = cmd(r, "TTL rs:v1:signaler:s1");
	CHECK(res.integer > 0 && res.integer <= STATE_SIGNALER_TTL_S);
	res = cmd(r, "ZSCORE rs:v1:signalers s1");
	CHECK(res.type == REDIS_REPLY_STRING && strtoull(res.str, NULL, 10) == x.rec.last_seen_ms);
	res = cmd(r, "TTL rs:v1:signalers");
	CHECK(res.integer > STATE_TTL_MAX_S - 10);
	res = cmd(r, "HGETALL rs:v1:signaler:s1");
	CHECK_EQ_INT(res.elements, 2 * 8); /* v + 7 fields */

	/* The next write reports our own instance; a restart (new instance) reports the old one
	 * with its last seen. */
	g.last_seen_ms = 0;
	h = write_sig(r, &g, 0);
	CHECK_EQ_STR(h.prev, "aaaa000000000001");
	CHECK(h.prev_seen == x.rec.last_seen_ms);
	sample_sig(&g, "s1", "bbbb000000000002", 0);
	h = write_sig(r, &g, 0);
	CHECK_EQ_STR(h.prev, "aaaa000000000001");
	CHECK(h.prev_seen >= now);
	/* A corrupted previous instance is ignored, not trusted. */
	cmd(r, "HSET rs:v1:signaler:s1 instance bad/one seen 12x");
	h = write_sig(r, &g, 0);
	CHECK_EQ_INT(h.err, 0);
	CHECK_EQ_STR(h.prev, "");
	CHECK_EQ_INT(h.prev_seen, 0);

	/* Liveness: s2 last seen a minute ago is stale, s1 is not; old entries are never pruned
	 * by another signaler's heartbeat (their calls must be found first). */
	sample_sig(&g, "s2", "cccc000000000003", now - 60000);
	CHECK_EQ_INT(write_sig(r, &g, 0).err, 0);
	sample_sig(&g, "s3", "dddd000000000004", now - 3600000);
	CHECK_EQ_INT(write_sig(r, &g, 0).err, 0);
	sample_sig(&g, "s1", "bbbb000000000002", 0);
	CHECK_EQ_INT(write_sig(r, &g, 0).err, 0);
	st = stale_sigs(r, 0, 0);
	CHECK_EQ_INT(st.err, 0);
	CHECK(ids_has(&st, "s2") && ids_has(&st, "s3") && !ids_has(&st, "s1"));
	CHECK_EQ_STR(st.ids[0], "s3"); /* oldest first */
	cmd(r, "ZADD rs:v1:signalers 1 bad/id");
	st = stale_sigs(r, 0, 0);
	CHECK_EQ_INT(st.err, 0);
	CHECK(!ids_has(&st, "bad/id") && ids_has(&st, "s3"));
	cmd(r, "ZREM rs:v1:signalers bad/id");

	/* Forget: not while an index holds something, not when it came back, else yes. */
	cmd(r, "SADD rs:v1:signaler:s2:calls s2.x.1");
	f = (struct flagres){0};
	f = wait_flag(state_signaler_forget(r, "s2", now - 5000, flag_cb, &f), &f);
	CHECK(f.err == 0 && !f.yes);
	cmd(r, "DEL rs:v1:signaler:s2:calls");
	cmd(r, "SADD rs:v1:signaler:s2:regs a@b");
	f = (struct flagres){0};
	f = wait_flag(state_signaler_forget(r, "s2", now - 5000, flag_cb, &f), &f);
	CHECK(f.err == 0 && !f.yes);
	cmd(r, "DEL rs:v1:signaler:s2:regs");
	f = (struct flagres){0};
	f = wait_flag(state_signaler_forget(r, "s2", now - 120000, flag_cb, &f), &f);
	CHECK(f.err == 0 && !f.yes); /* seen after the cutoff: it is not the dead one we saw */
	f = (struct flagres){0};
	f = wait_flag(state_signaler_forget(r, "s2", now - 5000, flag_cb, &f), &f);
	CHECK(f.err == 0 && f.yes);
	res = cmd(r, "ZSCORE rs:v1:signalers s2");
	CHECK_EQ_INT(res.type, REDIS_REPLY_NIL);
	res = cmd(r, "EXISTS rs:v1:signaler:s2");
	CHECK_EQ_INT(res.integer, 0);
	f = (struct flagres){0};
	f = wait_flag(state_signaler_forget(r, "s2", now - 5000, flag_cb, &f), &f);
	CHECK(f.err == 0 && !f.yes); /* already gone */
	CHECK_EQ_INT(state_signaler_forget(r, "s:2", now, flag_cb, &f), -EINVAL);

	/* Expiry, malformed and invalid records. */
	sample_sig(&g, "s3", "dddd000000000004", 0);
	CHECK_EQ_INT(write_sig(r, &g, 1).err, 0);
	RUN_UNTIL(false, 2100);
	x = read_sig(r, "s3");
	CHECK_EQ_INT(x.err, -ENOENT);
	CHECK_EQ_INT(write_sig(r, &g, 0).err, 0);
	cmd(r, "HSET rs:v1:signaler:s3 pid 0");
	x = read_sig(r, "s3");
	CHECK_EQ_INT(x.err, -EBADMSG);
	CHECK(strstr(x.msg, "'pid'") != NULL);
	g.instance_id[0] = '\0';
	CHECK_EQ_INT(state_signaler_write(r, &g, 0, hb_cb, &h), -EINVAL);
	sample_sig(&g, "s 3", "dddd000000000004", 0);
	CHECK_EQ_INT(state_signaler_write(r, &g, 0, hb_cb, &h), -EINVAL);
	CHECK_EQ_INT(state_signalers_stale(r, 0, 0, NULL, NULL), -EINVAL);
	cmd(r, "DEL rs:v1:signalers rs:v1:signaler:s1 rs:v1:signaler:s3");
	redis_destroy(&r);
}

/* Orphan deletes: a live instance's records stay; others go with their index entry. */
static void test_orphan_delete(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct call_record call;
	struct reg_record reg;
	struct flagres f;
	struct idsres x;
	struct cmd_reply res;

	cmd(r, "DEL rs:v1:signaler:sig-1:calls rs:v1:signaler:sig-1:regs");
	sample_call(&call, "sig-1.o1.1");
	snprintf(call.instance, sizeof(call.instance), "live0000");
	CHECK_EQ_INT(write_call(r, &call, 0), 0);
	f = (struct flagres){0};
	f = wait_flag(state_call_delete_orphan(r, "sig-1.o1.1", "sig-1", "live0000", flag_cb, &f),
		      &f);
	CHECK(f.err == 0 && !f.yes && f.calls == 1);
	res = cmd(r, "EXISTS rs:v1:call:sig-1.o1.1");
	CHECK_EQ_INT(res.integer, 1);
	x = index_of(r, state_signaler_calls, "sig-1");
	CHECK(ids_has(&x, "sig-1.o1.1"));
	/* Another live instance (a restart): the old run's record goes. */
	f = (struct flagres){0};
	f = wait_flag(state_call_delete_orphan(r, "sig-1.o1.1", "sig-1", "live0001", flag_cb, &f),
		      &f);
	CHECK(f.err == 0 && f.yes);
	res = cmd(r, "EXISTS rs:v1:call:sig-1.o1.1");
	CHECK_EQ_INT(res.integer, 0);
	x = index_of(r, state_signaler_calls, "sig-1");
	CHECK(!ids_has(&x, "sig-1.o1.1"));
	/* No live instance: everything goes; a record taken over by sig-2 only leaves sig-1's
	 * index. */
	sample_call(&call, "sig-1.o1.2");
	CHECK_EQ_INT(write_call(r, &call, 0), 0);
	snprintf(call.signaler, sizeof(call.signaler), "sig-2");
	CHECK_EQ_INT(write_call(r, &call, 0), 0);
	f = (struct flagres){0};
	f = wait_flag(state_call_delete_orphan(r, "sig-1.o1.2", "sig-1", "", flag_cb, &f), &f);
	CHECK(f.err == 0 && f.yes);
	res = cmd(r, "EXISTS rs:v1:call:sig-1.o1.2");
	CHECK_EQ_INT(res.integer, 1);
	x = index_of(r, state_signaler_calls, "sig-1");
	CHECK(!ids_has(&x, "sig-1.o1.2"));
	CHECK_EQ_INT(delete_rec(r, 'c', "sig-1.o1.2", "sig-2"), 0);

	sample_reg(&reg, "zed@example.com");
	snprintf(reg.instance, sizeof(reg.instance), "live0000");
	CHECK_EQ_INT(write_reg(r, &reg, 0), 0);
	f = (struct flagres){0};
	f = wait_flag(
	    state_reg_delete_orphan(r, "zed@example.com", "sig-1", "live0000", flag_cb, &f), &f);
	CHECK(f.err == 0 && !f.yes);
	f = (struct flagres){0};
	f = wait_flag(state_reg_delete_orphan(r, "zed@example.com", "sig-1", NULL, flag_cb, &f),
		      &f);
	CHECK(f.err == 0 && f.yes);
	res = cmd(r, "EXISTS rs:v1:reg:zed@example.com");
	CHECK_EQ_INT(res.integer, 0);
	CHECK_EQ_INT(state_call_delete_orphan(r, "a/b", "sig-1", "", flag_cb, &f), -EINVAL);
	CHECK_EQ_INT(state_call_delete_orphan(r, "sig-1.o1.3", "sig-1", "in:st", flag_cb, &f),
		     -EINVAL);
	CHECK_EQ_INT(state_reg_delete_orphan(r, "no-at-sign", "sig-1", "", flag_cb, &f), -EINVAL);
	redis_destroy(&r);
}

/* Locks: one holder at a time, released only by it, expiring on their own. */
static void test_locks(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct flagres f;
	struct cmd_reply res;

	cmd(r, "DEL rs:v1:lock:orphans:sig-9");
	f = (struct flagres){0};
	f = wait_flag(state_lock_take(r, "orphans:sig-9", "inst-a", 10000, flag_cb, &f), &f);
	CHECK(f.err == 0 && f.yes);
	res = cmd(r, "PTTL rs:v1:lock:orphans:sig-9");
	CHECK(res.integer > 9000 && res.integer <= 10000);
	f = (struct flagres){0};
	f = wait_flag(state_lock_take(r, "orphans:sig-9", "inst-b", 10000, flag_cb, &f), &f);
	CHECK(f.err == 0 && !f.yes);
	f = (struct flagres){0};
	f = wait_flag(state_lock_release(r, "orphans:sig-9", "inst-b", flag_cb, &f), &f);
	CHECK(f.err == 0 && !f.yes);
	res = cmd(r, "GET rs:v1:lock:orphans:sig-9");
	CHECK_EQ_STR(res.str, "inst-a");
	f = (struct flagres){0};
	f = wait_flag(state_lock_release(r, "orphans:sig-9", "inst-a", flag_cb, &f), &f);
	CHECK(f.err == 0 && f.yes);
	f = (struct flagres){0};
	f = wait_flag(state_lock_take(r, "orphans:sig-9", "inst-b", 100, flag_cb, &f), &f);
	CHECK(f.err == 0 && f.yes);
	RUN_UNTIL(false, 250);
	f = (struct flagres){0};
	f = wait_flag(state_lock_take(r, "orphans:sig-9", "inst-a", 100, flag_cb, &f), &f);
	CHECK(f.err == 0 && f.yes); /* the first expired */
	CHECK_EQ_INT(state_lock_release(r, "orphans:sig-9", "inst-a", NULL, NULL), 0);
	CHECK_EQ_INT(state_lock_take(r, "orphans/x", "inst-a", 100, flag_cb, &f), -EINVAL);
	CHECK_EQ_INT(state_lock_take(r, "", "inst-a", 100, flag_cb, &f), -EINVAL);
	CHECK_EQ_INT(state_lock_take(r, "orphans:x", "in st", 100, flag_cb, &f), -EINVAL);
	CHECK_EQ_INT(state_lock_take(r, "orphans:x", "inst-a", 0, flag_cb, &f), -EINVAL);

	/* Cancelled: the callback comes once, at once, with -ECANCELED. */
	f = (struct flagres){0};
	CHECK_EQ_INT(state_lock_take(r, "orphans:sig-9", "inst-c", 100, flag_cb, &f), 0);
	state_cancel(r, &f);
	CHECK(f.done && f.err == -ECANCELED && f.calls == 1);
	RUN_UNTIL(redis_inflight(r) == 0, 3000);
	CHECK_EQ_INT(f.calls, 1);
	redis_destroy(&r);
}

/* Takeover of another signaler's leg: yes when the owner is dead (no heartbeat hash, or one
 * older than the liveness window) or the leg is in its handover set; no while it lives. */
static void test_takeover(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	uint64_t now = state_now_ms();
	struct flagres f;
	char line[128];

	cmd(r, "DEL rs:v1:signaler:sig-own rs:v1:signaler:sig-own:handover");
	f = (struct flagres){0};
	f = wait_flag(state_leg_takeover(r, "sig-own", "leg-1", 0, flag_cb, &f), &f);
	CHECK(f.err == 0 && f.yes); /* no heartbeat: dead */
	snprintf(line, sizeof(line), "HSET rs:v1:signaler:sig-own seen %llu",
		 (unsigned long long)now);
	cmd(r, line);
	f = (struct flagres){0};
	f = wait_flag(state_leg_takeover(r, "sig-own", "leg-1", now, flag_cb, &f), &f);
	CHECK(f.err == 0 && !f.yes); /* alive */
	f = (struct flagres){0};
	f = wait_flag(state_leg_takeover(r, "sig-own", "leg-1", now + STATE_SIGNALER_LIVENESS_MS,
					 flag_cb, &f),
		      &f);
	CHECK(f.err == 0 && f.yes); /* silent for the liveness window */
	cmd(r, "SADD rs:v1:signaler:sig-own:handover leg-1");
	f = (struct flagres){0};
	f = wait_flag(state_leg_takeover(r, "sig-own", "leg-1", now, flag_cb, &f), &f);
	CHECK(f.err == 0 && f.yes); /* handed over */
	f = (struct flagres){0};
	f = wait_flag(state_leg_takeover(r, "sig-own", "leg-2", now, flag_cb, &f), &f);
	CHECK(f.err == 0 && !f.yes); /* another leg of a live owner */
	cmd(r, "HSET rs:v1:signaler:sig-own seen garbage");
	f = (struct flagres){0};
	f = wait_flag(state_leg_takeover(r, "sig-own", "leg-2", now, flag_cb, &f), &f);
	CHECK(f.err == 0 && f.yes); /* an unreadable heartbeat counts as none */
	CHECK_EQ_INT(state_leg_takeover(r, "sig:own", "leg-1", 0, flag_cb, &f), -EINVAL);
	CHECK_EQ_INT(state_leg_takeover(r, "sig-own", "", 0, flag_cb, &f), -EINVAL);
	CHECK_EQ_INT(state_leg_takeover(r, "sig-own", "leg-1", 0, NULL, NULL), -EINVAL);
	cmd(r, "DEL rs:v1:signaler:sig-own rs:v1:signaler:sig-own:handover");
	redis_destroy(&r);
}

/* Records that would not read back are refused before anything is sent; no callback. */
static void test_call_reg_invalid(void)
{
	static const char *const bad_aors[] = {
	    "alice smith@example.com",
	    "a/b@example.com",
	    "a@b@example.com",
	    "@example.com",
	    "alice@",
	    "",
	    "alice",
	    "al%40ice@example.com",
	    "alice\t@example.com",
	};
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct call_record call;
	struct reg_record reg;
	struct done d = {0};
	char longaor[STATE_AOR_MAX + 2];

#define BAD_CALL(stmt)                                                                             \
	do {                                                                                       \
		sample_call(&call, "sig-1.n3.1");                                                  \
		stmt;                                                                              \
		CHECK_EQ_INT(state_call_write(r, &call, 0, done_cb, &d), -EINVAL);                 \
	} while (0)
#define BAD_REG(stmt)                                                                              \
	do {                                                                                       \
		sample_reg(&reg, "carol@example.com");                                             \
		stmt;                                                                              \
		CHECK_EQ_INT(state_reg_write(r, &reg, 0, done_cb, &d), -EINVAL);                   \
	} while (0)
#define SET(field, text) snprintf(field, sizeof(field), "%s", text)

	BAD_CALL(SET(call.state, "bogus"));
	BAD_CALL(SET(call.state, ""));
	BAD_CALL(SET(call.app, "rtmp"));
	BAD_CALL(SET(call.direction, "both"));
	BAD_CALL(SET(call.from_uri, ""));
	BAD_CALL(SET(call.to_uri, "sip:bob smith@example.com"));
	BAD_CALL(SET(call.sip_call_id, ""));
	BAD_CALL(SET(call.codec, "PC MU"));
	BAD_CALL(SET(call.rtmp_client, "c12\n"));
	BAD_CALL(memset(call.rtmp_client, 'x', sizeof(call.rtmp_client))); /* 64: too long */
	BAD_CALL(memset(call.from_uri, 'x', sizeof(call.from_uri)));	   /* unterminated */
	BAD_CALL(SET(call.call_id, "bad:id"));
	BAD_CALL(SET(call.call_id, ""));
	BAD_CALL(SET(call.signaler, ""));
	BAD_CALL(SET(call.signaler, "s/1"));
	BAD_CALL(SET(call.leg_id, "a/b"));
	BAD_CALL(SET(call.worker, "w:1"));
	for (size_t i = 0; i < sizeof(bad_aors) / sizeof(bad_aors[0]); i++)
		BAD_REG(SET(reg.aor, bad_aors[i]));
	memset(longaor, 'a', sizeof(longaor) - 1);
	longaor[sizeof(longaor) - 1] = '\0';
	longaor[5] = '@';
	CHECK(!state_aor_valid(longaor));
	longaor[STATE_AOR_MAX] = '\0';
	CHECK(state_aor_valid(longaor));
	BAD_REG(memset(reg.aor, 'a', sizeof(reg.aor)); reg.aor[1] = '@'); /* unterminated */
	BAD_REG(SET(reg.signaler, ""));
	BAD_REG(SET(reg.contact, "sip:alice@192.0.2.10 x"));
	BAD_REG(SET(reg.display, "Mallory\r\nX-Evil: 1"));
	BAD_REG(memset(reg.display, 'x', sizeof(reg.display)));
	CHECK_EQ_INT(state_call_write(r, NULL, 0, done_cb, &d), -EINVAL);
	CHECK_EQ_INT(state_reg_write(r, NULL, 0, done_cb, &d), -EINVAL);
#undef BAD_CALL
#undef BAD_REG
#undef SET

	CHECK_EQ_INT(state_call_read(r, "sig-1.n3.1", NULL, NULL), -EINVAL);
	CHECK_EQ_INT(state_call_read(r, "no such/id", call_cb, &d), -EINVAL);
	CHECK_EQ_INT(state_reg_read(r, "alice", reg_cb, &d), -EINVAL);
	CHECK_EQ_INT(state_call_delete(r, "sig-1.n3.1", "", done_cb, &d), -EINVAL);
	CHECK_EQ_INT(state_reg_delete(r, "a b@example.com", "sig-1", done_cb, &d), -EINVAL);
	CHECK_EQ_INT(state_signaler_calls(r, "sig:1", ids_cb, &d), -EINVAL);
	CHECK_EQ_INT(state_signaler_regs(r, "sig-1", NULL, NULL), -EINVAL);
	RUN_UNTIL(false, 50);
	CHECK_EQ_INT(d.calls, 0);
	redis_destroy(&r);
}

/* Records of another format version, or keys of another type: refused, not parsed. */
static void test_call_reg_version(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct call_record call;
	struct reg_record reg;
	struct recres got;

	sample_call(&call, "old-1");
	sample_reg(&reg, "old@example.com");
	CHECK_EQ_INT(write_call(r, &call, 0), 0);
	CHECK_EQ_INT(write_reg(r, &reg, 0), 0);
	cmd(r, "HSET rs:v1:call:old-1 v 2");
	got = read_rec(r, 'c', "old-1");
	CHECK_EQ_INT(got.err, -EPROTONOSUPPORT);
	CHECK(strstr(got.msg, "call record format v2 unsupported") != NULL);
	cmd(r, "HSET rs:v1:reg:old@example.com v x");
	got = read_rec(r, 'r', "old@example.com");
	CHECK_EQ_INT(got.err, -EPROTONOSUPPORT);
	/* A key of another type: Redis's error, passed on. */
	cmd(r, "SET rs:v1:call:str-1 x");
	got = read_rec(r, 'c', "str-1");
	CHECK_EQ_INT(got.err, -EREMOTEIO);
	CHECK_EQ_INT(got.calls, 1);
	redis_destroy(&r);
}

int main(void)
{
	int ret;

	signal(SIGPIPE, SIG_IGN);
	log_init("test_state", LOG_LVL_WARN);
	ret = redis_fixture_start("test_state");
	if (ret <= 0)
		return ret < 0 ? 1 : TEST_DONE();
	TEST_RUN(test_leg_round_trip);
	TEST_RUN(test_leg_write_is_whole);
	TEST_RUN(test_leg_delete);
	TEST_RUN(test_workers);
	TEST_RUN(test_version_mismatch);
	TEST_RUN(test_malformed_fields);
	TEST_RUN(test_call_round_trip);
	TEST_RUN(test_call_reg_delete);
	TEST_RUN(test_reg_round_trip);
	TEST_RUN(test_call_reg_invalid);
	TEST_RUN(test_call_reg_version);
	TEST_RUN(test_call_dialog_fields);
	TEST_RUN(test_signalers);
	TEST_RUN(test_orphan_delete);
	TEST_RUN(test_locks);
	TEST_RUN(test_takeover);
	evloop_destroy(&loop);
	return TEST_DONE();
}
