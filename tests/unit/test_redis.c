/*
 * test_redis.c - the async Redis client and the state records against a real redis-server
 * (started here on free ports; the tests print SKIP when redis-server is not installed):
 * connect, leg round trip, whole-record writes, delete + index, workers (list, liveness,
 * expiry, pruning), format version and malformed records, in-flight bound, cancellation,
 * destroy from a callback, stall timeout, restart, AUTH, sentinel, configuration.
 */
#include "evloop.h"
#include "harness.h"
#include "log.h"
#include "redis.h"
#include "state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* redis-server processes */

#define MAX_SERVERS 8

static pid_t servers[MAX_SERVERS];
static char tmpdir[] = "/tmp/test_redis.XXXXXX";

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static bool have_redis_server(void)
{
	const char *path = getenv("PATH");
	char buf[4096], file[4200];

	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof(file), "%s/redis-server", dir);
		if (access(file, X_OK) == 0)
			return true;
	}
	return false;
}

/* Starts redis-server on @port with optional extra arguments (NULL-terminated); waits for it. */
static pid_t start_server(int port, const char *const *extra)
{
	char portbuf[16], logfile[256];
	const char *argv[32];
	int argc = 0;
	pid_t pid;

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	snprintf(logfile, sizeof(logfile), "%s/redis-%d.log", tmpdir, port);
	argv[argc++] = "redis-server";
	if (extra && extra[0] && strcmp(extra[0], "--sentinel-conf") == 0) {
		argv[argc++] = extra[1];
		argv[argc++] = "--sentinel";
		extra += 2;
	}
	const char *base[] = {"--port", portbuf,	"--bind",    "127.0.0.1",   "--save",
			      "",	"--appendonly", "no",	     "--daemonize", "no",
			      "--dir",	tmpdir,		"--logfile", logfile};
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		argv[argc++] = base[i];
	for (; extra && *extra && argc < 30; extra++)
		argv[argc++] = *extra;
	argv[argc] = NULL;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execvp("redis-server", (char *const *)argv);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	for (size_t i = 0; i < MAX_SERVERS; i++) {
		if (!servers[i]) {
			servers[i] = pid;
			break;
		}
	}
	for (uint64_t t0 = mono_ms(); mono_ms() - t0 < 5000; usleep(20000))
		if (port_open(port))
			return pid;
	fprintf(stderr, "redis-server on port %d did not start (see %s)\n", port, logfile);
	return pid;
}

static void stop_server_sig(pid_t pid, int sig)
{
	if (pid <= 0)
		return;
	kill(pid, SIGCONT);
	kill(pid, sig);
	waitpid(pid, NULL, 0);
	for (size_t i = 0; i < MAX_SERVERS; i++)
		if (servers[i] == pid)
			servers[i] = 0;
}

static void stop_server(pid_t pid)
{
	stop_server_sig(pid, SIGTERM);
}

static void stop_all(void)
{
	char cmd[128];

	for (size_t i = 0; i < MAX_SERVERS; i++)
		if (servers[i])
			stop_server(servers[i]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* Loop helpers */

static struct evloop *loop;
static int main_port;
static pid_t main_pid;

#define RUN_UNTIL(cond, ms)                                                                        \
	do {                                                                                       \
		uint64_t ru_t0 = mono_ms();                                                        \
		while (!(cond) && mono_ms() - ru_t0 < (uint64_t)(ms))                              \
			evloop_run_once(loop, 10);                                                 \
	} while (0)

struct counts {
	int up, down;
};

static void on_up(struct redis *r, void *arg)
{
	(void)r;
	((struct counts *)arg)->up++;
}

static void on_down(struct redis *r, void *arg)
{
	(void)r;
	((struct counts *)arg)->down++;
}

static struct redis *connect_main(struct counts *c, unsigned ping_idle_ms, unsigned max_inflight)
{
	struct redis_config cfg;
	struct redis *r;

	redis_config_defaults(&cfg);
	cfg.master.port = main_port;
	cfg.ping_idle_ms = ping_idle_ms;
	if (max_inflight)
		cfg.max_inflight = max_inflight;
	r = redis_new_config(loop, &cfg);
	if (!r)
		return NULL;
	redis_add_listener(r, on_up, on_down, c);
	RUN_UNTIL(c->up > 0, 3000);
	return r;
}

struct res {
	bool done;
	int err;
	int type;
	long long integer;
	size_t elements;
	char str[256];
};

static void res_cb(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct res *res = arg;

	(void)r;
	res->done = true;
	res->err = err;
	if (reply) {
		res->type = reply->type;
		res->integer = reply->integer;
		res->elements = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
		if (reply->str)
			snprintf(res->str, sizeof(res->str), "%s", reply->str);
	}
}

/* Runs one command given as space-separated words and waits for its reply. */
static struct res cmd(struct redis *r, const char *line)
{
	struct res res = {.err = 1};
	char buf[512];
	const char *argv[32];
	int argc = 0, ret;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && argc < 32;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = strcmp(w, "\"\"") == 0 ? "" : w; /* "" stands for an empty value */
	ret = redis_command_argv(r, res_cb, &res, argc, argv, NULL);
	if (ret < 0) {
		res.err = ret;
		return res;
	}
	RUN_UNTIL(res.done, 3000);
	return res;
}

struct done {
	bool done;
	int calls;
	int err;
	char msg[256];
};

static void done_cb(int err, const char *errmsg, void *arg)
{
	struct done *d = arg;

	d->done = true;
	d->calls++;
	d->err = err;
	snprintf(d->msg, sizeof(d->msg), "%s", errmsg ? errmsg : "");
}

struct legres {
	bool done;
	int calls;
	int err;
	char msg[256];
	struct leg_record rec;
};

static void leg_cb(int err, const char *errmsg, const struct leg_record *rec, void *arg)
{
	struct legres *l = arg;

	l->done = true;
	l->calls++;
	l->err = err;
	snprintf(l->msg, sizeof(l->msg), "%s", errmsg ? errmsg : "");
	if (rec)
		memcpy(&l->rec, rec, sizeof(*rec));
}

static int write_leg(struct redis *r, const struct leg_record *rec, unsigned ttl)
{
	struct done d = {0};
	int ret = state_leg_write(r, rec, ttl, done_cb, &d);

	if (ret < 0)
		return ret;
	RUN_UNTIL(d.done, 3000);
	if (d.err)
		fprintf(stderr, "leg write: %s\n", d.msg);
	return d.done ? d.err : -ETIMEDOUT;
}

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

static void sample_leg(struct leg_record *rec, const char *id)
{
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->leg_id, sizeof(rec->leg_id), "%s", id);
	snprintf(rec->call_id, sizeof(rec->call_id), "a84b4c76e66710@pc33.example.com");
	snprintf(rec->owner, sizeof(rec->owner), "sig-1");
	snprintf(rec->worker, sizeof(rec->worker), "w1");
	snprintf(rec->rtmp_codec, sizeof(rec->rtmp_codec), "speex16");
	rec->sip_pt = 0;
	snprintf(rec->sip_codec, sizeof(rec->sip_codec), "PCMU");
	rec->sip_rate = 8000;
	rec->dtmf_pt = 101;
	snprintf(rec->remote_ip, sizeof(rec->remote_ip), "2001:db8::1");
	rec->remote_port = 40000;
	rec->local_port = 20002;
	rec->ssrc = 0xdeadbeefu;
	rec->seq = 65535;
	rec->timestamp = 4294967295u;
	snprintf(rec->srtp_suite, sizeof(rec->srtp_suite), "AES_CM_128_HMAC_SHA1_80");
	snprintf(rec->srtp_local_key, sizeof(rec->srtp_local_key),
		 "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz");
	snprintf(rec->srtp_remote_key, sizeof(rec->srtp_remote_key),
		 "zE6uiDGRAmXFb/4yoh1pKeAbE1XxiZ9Fq5TOPOtf");
	rec->srtp_roc = 7;
	rec->hold = true;
	rec->created_ms = 1700000000000ull;
	rec->updated_ms = 1700000000123ull;
}

/* Tests */

static void test_connect(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct res res;

	CHECK(r != NULL);
	CHECK_EQ_INT(c.up, 1);
	CHECK(redis_is_up(r));
	res = cmd(r, "PING");
	CHECK_EQ_INT(res.err, 0);
	CHECK(res.type == REDIS_REPLY_STATUS && strcmp(res.str, "PONG") == 0);
	res = cmd(r, "NOSUCHCOMMAND x");
	CHECK_EQ_INT(res.err, -EREMOTEIO);
	CHECK(strstr(res.str, "unknown command") != NULL);
	redis_destroy(&r);
	CHECK(r == NULL);
	CHECK_EQ_INT(c.down, 0); /* destroy does not call listeners */
}

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
	struct res res;

	/* A stale field from an earlier writer must not survive a write: DEL + HSET in one MULTI.
	 */
	res = cmd(r, "HSET rs:v1:leg:leg-2 junk 1 v 1");
	CHECK_EQ_INT(res.err, 0);
	sample_leg(&rec, "leg-2");
	CHECK_EQ_INT(write_leg(r, &rec, 600), 0);
	res = cmd(r, "HGETALL rs:v1:leg:leg-2");
	CHECK_EQ_INT(res.err, 0);
	CHECK_EQ_INT(res.elements, 2 * 22); /* v + 21 fields, nothing else */
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

static struct idsres worker_legs(struct redis *r, const char *worker)
{
	struct idsres x = {0};

	if (state_worker_legs(r, worker, ids_cb, &x) == 0)
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
	struct res res;

	sample_leg(&rec, "leg-3");
	CHECK_EQ_INT(write_leg(r, &rec, 0), 0);
	x = worker_legs(r, "w1");
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
	x = worker_legs(r, "w1");
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
	struct res res;

	cmd(r, "DEL rs:v1:workers");
	sample_worker(&w1, "wk1", now);
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

static void expect_bad(struct redis *r, const char *mutation, const char *field, const char *what)
{
	struct leg_record rec;
	struct legres l;

	sample_leg(&rec, "bad-1");
	CHECK_EQ_INT(write_leg(r, &rec, 0), 0);
	cmd(r, mutation);
	l = read_leg(r, "bad-1");
	CHECK_EQ_INT(l.err, -EBADMSG);
	CHECK(strstr(l.msg, field) != NULL);
	CHECK(strstr(l.msg, what) != NULL);
	if (!strstr(l.msg, field) || !strstr(l.msg, what))
		fprintf(stderr, "  message was: %s\n", l.msg);
}

static void test_malformed_fields(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);

	expect_bad(r, "HSET rs:v1:leg:bad-1 remote_port 70000", "'remote_port'", "out of range");
	expect_bad(r, "HSET rs:v1:leg:bad-1 ssrc abc", "'ssrc'", "not a number");
	expect_bad(r, "HDEL rs:v1:leg:bad-1 seq", "'seq'", "missing");
	expect_bad(r, "HSET rs:v1:leg:bad-1 ssrc 4294967296", "'ssrc'", "out of range");
	expect_bad(r, "HSET rs:v1:leg:bad-1 ssrc -1", "'ssrc'", "not a number");
	expect_bad(r, "HSET rs:v1:leg:bad-1 dtmf_pt -2", "'dtmf_pt'", "out of range");
	expect_bad(r, "HSET rs:v1:leg:bad-1 remote_ip 300.1.1.1", "'remote_ip'", "not an IP");
	expect_bad(r, "HSET rs:v1:leg:bad-1 hold 2", "'hold'", "out of range");
	expect_bad(r, "HSET rs:v1:leg:bad-1 worker w/1", "'worker'", "not allowed");
	expect_bad(r, "HSET rs:v1:leg:bad-1 call \"\"", "'call'", "empty");
	{
		/* An over-long value. */
		char line[512] = "HSET rs:v1:leg:bad-1 sip_codec ";
		size_t n = strlen(line);

		memset(line + n, 'A', 100);
		line[n + 100] = '\0';
		expect_bad(r, line, "'sip_codec'", "too long");
	}
	redis_destroy(&r);
}

static void count_cb(struct redis *r, int err, const redisReply *reply, void *arg)
{
	int *n = arg;

	(void)r;
	(void)reply;
	n[0]++;
	if (err == -ECANCELED)
		n[1]++;
	else if (err == 0)
		n[2]++;
}

static void test_inflight_bound(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 0, 50);
	int n[3] = {0}, accepted = 0, refused = 0;

	CHECK(redis_is_up(r));
	for (int i = 0; i < 60; i++) {
		int ret = redis_command(r, count_cb, n, "PING");

		if (ret == 0)
			accepted++;
		else if (ret == -EAGAIN)
			refused++;
	}
	CHECK_EQ_INT(accepted, 50);
	CHECK_EQ_INT(refused, 10);
	CHECK_EQ_INT(redis_inflight(r), 50);
	RUN_UNTIL(n[0] == 50, 3000);
	CHECK_EQ_INT(n[2], 50);
	CHECK_EQ_INT(redis_inflight(r), 0);
	CHECK_EQ_INT(redis_command(r, count_cb, n, "PING"), 0);
	RUN_UNTIL(n[0] == 51, 3000);
	redis_destroy(&r);
}

static void test_cancel(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	int n[3] = {0}, other[3] = {0};
	struct legres l = {0};

	CHECK_EQ_INT(redis_command(r, count_cb, n, "PING"), 0);
	CHECK_EQ_INT(redis_command(r, count_cb, other, "PING"), 0);
	redis_cancel(r, n);
	CHECK_EQ_INT(n[0], 1);
	CHECK_EQ_INT(n[1], 1);
	RUN_UNTIL(other[0] == 1, 3000);
	CHECK_EQ_INT(n[0], 1); /* the late reply is discarded */
	CHECK_EQ_INT(other[2], 1);

	CHECK_EQ_INT(state_leg_read(r, "leg-1", leg_cb, &l), 0);
	state_cancel(r, &l);
	CHECK_EQ_INT(l.calls, 1);
	CHECK_EQ_INT(l.err, -ECANCELED);
	RUN_UNTIL(redis_inflight(r) == 0, 3000);
	CHECK_EQ_INT(l.calls, 1);
	redis_destroy(&r);
}

struct destroy_ctx {
	struct redis *r;
	int calls, cancelled, ok;
};

static void destroy_in_cb(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct destroy_ctx *d = arg;

	(void)reply;
	d->calls++;
	if (err == -ECANCELED)
		d->cancelled++;
	if (err == 0) {
		d->ok++;
		redis_destroy(&d->r); /* from inside the client's own callback */
		CHECK(redis_command(r, NULL, NULL, "PING") < 0);
	}
}

static void test_destroy_in_callback(void)
{
	struct counts c = {0}, c2 = {0};
	struct destroy_ctx d = {0};
	int n[3] = {0};

	d.r = connect_main(&c, 1000, 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(redis_command(d.r, destroy_in_cb, &d, "PING"), 0);
	RUN_UNTIL(d.r == NULL, 3000);
	CHECK(d.r == NULL);
	CHECK_EQ_INT(d.ok, 1);
	CHECK_EQ_INT(d.cancelled, 4);
	CHECK_EQ_INT(d.calls, 5);
	RUN_UNTIL(false, 100); /* the deferred free runs; ASan checks the rest */
	CHECK_EQ_INT(d.calls, 5);

	/* Destroy with requests in flight: each completes with -ECANCELED before it returns. */
	d.r = connect_main(&c2, 1000, 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(redis_command(d.r, count_cb, n, "PING"), 0);
	redis_destroy(&d.r);
	CHECK_EQ_INT(n[0], 3);
	CHECK_EQ_INT(n[1], 3);
}

static void test_stall_timeout(void)
{
	struct redis_config cfg;
	struct counts c = {0};
	struct res res = {0};
	struct redis *r;
	uint64_t t0;

	redis_config_defaults(&cfg);
	cfg.master.port = main_port;
	cfg.command_timeout_ms = 300;
	cfg.connect_timeout_ms = 500;
	r = redis_new_config(loop, &cfg);
	redis_add_listener(r, on_up, on_down, &c);
	RUN_UNTIL(c.up == 1, 3000);
	CHECK(redis_is_up(r));
	kill(main_pid, SIGSTOP);
	t0 = mono_ms();
	CHECK_EQ_INT(redis_command(r, res_cb, &res, "PING"), 0);
	RUN_UNTIL(res.done, 3000);
	CHECK_EQ_INT(res.err, -ETIMEDOUT);
	CHECK(mono_ms() - t0 >= 300 && mono_ms() - t0 < 1500);
	CHECK_EQ_INT(c.down, 1);
	CHECK(!redis_is_up(r));
	CHECK_EQ_INT(redis_command(r, NULL, NULL, "PING"), -ENOTCONN);
	RUN_UNTIL(false, 700); /* reconnects; the stopped server's handshake times out */
	CHECK_EQ_INT(c.up, 1);
	kill(main_pid, SIGCONT);
	RUN_UNTIL(c.up == 2, 5000);
	CHECK_EQ_INT(c.up, 2);
	res = cmd(r, "PING");
	CHECK_EQ_INT(res.err, 0);
	redis_destroy(&r);
}

/* The owner's side of "rewrite on up": what the mediaworker does with its legs. */
struct owner {
	struct redis *r;
	struct leg_record leg;
	bool dirty;
	int rewrites;
};

static void owner_up(struct redis *r, void *arg)
{
	struct owner *o = arg;

	/* Redis may have restarted empty: rewrite everything owned, dirty or not. */
	if (state_leg_write(r, &o->leg, 0, NULL, NULL) == 0) {
		o->dirty = false;
		o->rewrites++;
	}
}

static void test_restart(void)
{
	struct counts c = {0};
	struct owner o = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct leg_record rec;
	uint64_t t0;
	struct res res;
	int ret;

	sample_leg(&o.leg, "leg-owned");
	redis_add_listener(r, owner_up, NULL, &o);
	CHECK_EQ_INT(write_leg(r, &o.leg, 0), 0);

	stop_server_sig(main_pid, SIGKILL); /* killed, not shut down */
	RUN_UNTIL(c.down == 1, 3000);
	CHECK_EQ_INT(c.down, 1);
	CHECK(!redis_is_up(r));
	/* Commands while down fail fast. */
	t0 = mono_ms();
	CHECK_EQ_INT(redis_command(r, NULL, NULL, "PING"), -ENOTCONN);
	sample_leg(&rec, "leg-while-down");
	ret = state_leg_write(r, &rec, 0, NULL, NULL);
	CHECK_EQ_INT(ret, -ENOTCONN);
	if (ret == -ENOTCONN)
		o.dirty = true; /* the owner remembers */
	CHECK(mono_ms() - t0 < 50);
	RUN_UNTIL(false, 500); /* a few failed reconnects */

	main_pid = start_server(main_port, NULL);
	t0 = mono_ms();
	RUN_UNTIL(c.up == 2, 5000);
	CHECK_EQ_INT(c.up, 2);
	fprintf(stderr, "  (up again %llu ms after the restart)\n",
		(unsigned long long)(mono_ms() - t0));
	CHECK(redis_is_up(r));
	CHECK_EQ_INT(o.rewrites, 1);
	CHECK(!o.dirty);
	res = cmd(r, "PING");
	CHECK_EQ_INT(res.err, 0);
	res = cmd(r, "EXISTS rs:v1:leg:leg-owned");
	CHECK_EQ_INT(res.integer, 1); /* rewritten by its owner into the empty Redis */
	redis_destroy(&r);
}

static void test_auth(void)
{
	int port = free_port();
	const char *extra[] = {"--requirepass", "s3cret pass", NULL};
	pid_t pid = start_server(port, extra);
	struct redis_config cfg;
	struct counts c = {0}, c2 = {0}, c3 = {0};
	struct redis *r, *r2, *r3;
	char portbuf[16];
	struct res res;

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	setenv("REDIS_PORT", portbuf, 1);
	setenv("REDIS_PASSWORD", "s3cret pass", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
	r = redis_new_config(loop, &cfg);
	redis_add_listener(r, on_up, on_down, &c);

	unsetenv("REDIS_PASSWORD");
	CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
	r2 = redis_new_config(loop, &cfg);
	redis_add_listener(r2, on_up, on_down, &c2);

	snprintf(cfg.password, sizeof(cfg.password), "wrong");
	r3 = redis_new_config(loop, &cfg);
	redis_add_listener(r3, on_up, on_down, &c3);

	RUN_UNTIL(c.up == 1, 3000);
	RUN_UNTIL(false, 500);
	CHECK_EQ_INT(c.up, 1);
	res = cmd(r, "SET k v");
	CHECK_EQ_INT(res.err, 0);
	res = cmd(r, "GET k");
	CHECK_EQ_STR(res.str, "v");

	CHECK_EQ_INT(c2.up, 0);
	CHECK(!redis_is_up(r2));
	CHECK_EQ_INT(redis_command(r2, NULL, NULL, "PING"), -ENOTCONN);
	CHECK(strstr(redis_last_error(r2), "NOAUTH") != NULL);
	CHECK(strstr(redis_last_error(r2), "REDIS_PASSWORD") != NULL);
	fprintf(stderr, "  (without a password: %s)\n", redis_last_error(r2));

	CHECK_EQ_INT(c3.up, 0);
	CHECK(strstr(redis_last_error(r3), "refused AUTH") != NULL);
	fprintf(stderr, "  (wrong password: %s)\n", redis_last_error(r3));

	redis_destroy(&r);
	redis_destroy(&r2);
	redis_destroy(&r3);
	unsetenv("REDIS_PORT");
	stop_server(pid);
}

static void test_sentinel(void)
{
	int sport = free_port(), dead = free_port();
	char conf[256], env[64], want[64];
	struct redis_config cfg;
	struct counts c = {0}, c2 = {0};
	struct redis *r, *r2;
	struct res res;
	FILE *f;
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/sentinel.conf", tmpdir);
	f = fopen(conf, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fprintf(f,
		"sentinel monitor mymaster 127.0.0.1 %d 1\n"
		"sentinel down-after-milliseconds mymaster 60000\n",
		main_port);
	fclose(f);
	{
		const char *extra[] = {"--sentinel-conf", conf, NULL};

		pid = start_server(sport, extra);
	}
	snprintf(env, sizeof(env), "127.0.0.1:%d, 127.0.0.1:%d", dead, sport);
	setenv("REDIS_SENTINELS", env, 1);
	setenv("REDIS_MASTER_NAME", "mymaster", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
	CHECK_EQ_INT(cfg.n_sentinels, 2);
	r = redis_new_config(loop, &cfg);
	redis_add_listener(r, on_up, on_down, &c);
	snprintf(cfg.master_name, sizeof(cfg.master_name), "nosuchmaster");
	r2 = redis_new_config(loop, &cfg);
	redis_add_listener(r2, on_up, on_down, &c2);
	RUN_UNTIL(c.up == 1, 5000);
	CHECK_EQ_INT(c.up, 1);
	snprintf(want, sizeof(want), "127.0.0.1:%d", main_port);
	CHECK_EQ_STR(redis_address(r), want);
	res = cmd(r, "PING");
	CHECK_EQ_INT(res.err, 0);
	RUN_UNTIL(strstr(redis_last_error(r2), "no sentinel named") != NULL, 3000);
	CHECK_EQ_INT(c2.up, 0);
	CHECK(strstr(redis_last_error(r2), "nosuchmaster") != NULL);
	fprintf(stderr, "  (unknown master: %s)\n", redis_last_error(r2));
	redis_destroy(&r2);

	/* The sentinels are asked again after every disconnect: point them at another master,
	 * cut the link, and the client follows. */
	{
		int port_b = free_port();
		pid_t pid_b = start_server(port_b, NULL);
		struct counts cs = {0};
		struct redis *s = redis_new(loop, "127.0.0.1", sport, NULL, 0);
		char line[128];
		long long id;

		redis_add_listener(s, on_up, on_down, &cs);
		RUN_UNTIL(cs.up == 1, 3000);
		res = cmd(s, "SENTINEL REMOVE mymaster");
		CHECK_EQ_INT(res.err, 0);
		snprintf(line, sizeof(line), "SENTINEL MONITOR mymaster 127.0.0.1 %d 1", port_b);
		res = cmd(s, line);
		CHECK_EQ_INT(res.err, 0);
		res = cmd(r, "CLIENT ID");
		id = res.integer;
		CHECK_EQ_INT(res.err, 0);
		snprintf(line, sizeof(line), "CLIENT KILL ID %lld SKIPME no", id);
		res = cmd(r, line); /* the reply may or may not make it before the close */
		RUN_UNTIL(c.up == 2, 5000);
		CHECK_EQ_INT(c.down, 1);
		CHECK_EQ_INT(c.up, 2);
		snprintf(want, sizeof(want), "127.0.0.1:%d", port_b);
		CHECK_EQ_STR(redis_address(r), want);
		res = cmd(r, "PING");
		CHECK_EQ_INT(res.err, 0);
		redis_destroy(&s);
		redis_destroy(&r);
		stop_server(pid_b);
	}
	unsetenv("REDIS_SENTINELS");
	unsetenv("REDIS_MASTER_NAME");
	stop_server(pid);
}

static void test_config(void)
{
	struct redis_config cfg;
	struct state_config sc;

	CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
	CHECK_EQ_STR(cfg.master.host, "127.0.0.1");
	CHECK_EQ_INT(cfg.master.port, 6379);
	CHECK_EQ_INT(cfg.db, 0);
	CHECK_EQ_INT(cfg.n_sentinels, 0);
	setenv("REDIS_HOST", "10.1.2.3", 1);
	setenv("REDIS_DB", "3", 1);
	setenv("REDIS_SENTINELS", "[::1]:26379,sentinel-b:26380", 1);
	setenv("REDIS_MASTER_NAME", "gw", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), 0);
	CHECK_EQ_STR(cfg.master.host, "10.1.2.3");
	CHECK_EQ_INT(cfg.db, 3);
	CHECK_EQ_INT(cfg.n_sentinels, 2);
	CHECK_EQ_STR(cfg.sentinels[0].host, "::1");
	CHECK_EQ_INT(cfg.sentinels[0].port, 26379);
	CHECK_EQ_STR(cfg.sentinels[1].host, "sentinel-b");
	CHECK_EQ_STR(cfg.master_name, "gw");
	unsetenv("REDIS_MASTER_NAME");
	CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL);
	setenv("REDIS_MASTER_NAME", "gw", 1);
	setenv("REDIS_SENTINELS", "sentinel-b", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL);
	setenv("REDIS_SENTINELS", "a:1,b:0", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL);
	setenv("REDIS_SENTINELS", "::1:5", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL);
	unsetenv("REDIS_SENTINELS");
	unsetenv("REDIS_MASTER_NAME");
	setenv("REDIS_PORT", "70000", 1);
	CHECK_EQ_INT(redis_config_from_env(&cfg), -EINVAL);
	unsetenv("REDIS_PORT");
	unsetenv("REDIS_HOST");
	unsetenv("REDIS_DB");

	CHECK_EQ_INT(state_config_from_env(&sc), 0);
	CHECK_EQ_INT(sc.leg_ttl_s, 7200);
	setenv("LEG_TTL", "3600", 1);
	CHECK_EQ_INT(state_config_from_env(&sc), 0);
	CHECK_EQ_INT(sc.leg_ttl_s, 3600);
	setenv("LEG_TTL", "5", 1);
	CHECK_EQ_INT(state_config_from_env(&sc), -EINVAL);
	unsetenv("LEG_TTL");

	CHECK(state_id_valid("leg-1_a.b@c"));
	CHECK(!state_id_valid(""));
	CHECK(!state_id_valid("w:legs"));
	CHECK(!state_id_valid("a b"));
	CHECK(redis_new(NULL, "127.0.0.1", 6379, NULL, 0) == NULL);
}

int main(void)
{
	static const char *const vars[] = {"REDIS_HOST", "REDIS_PORT",	    "REDIS_PASSWORD",
					   "REDIS_DB",	 "REDIS_SENTINELS", "REDIS_MASTER_NAME",
					   "LEG_TTL"};

	signal(SIGPIPE, SIG_IGN);
	log_init("test_redis", LOG_LVL_WARN);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	TEST_RUN(test_config);
	if (!have_redis_server()) {
		printf("SKIP test_redis: redis-server not found in PATH (install redis-server)\n");
		return TEST_DONE();
	}
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	atexit(stop_all);
	loop = evloop_new();
	main_port = free_port();
	main_pid = start_server(main_port, NULL);
	if (!port_open(main_port)) {
		printf("FAIL redis-server: could not start on port %d\n", main_port);
		return 1;
	}
	TEST_RUN(test_connect);
	TEST_RUN(test_leg_round_trip);
	TEST_RUN(test_leg_write_is_whole);
	TEST_RUN(test_leg_delete);
	TEST_RUN(test_workers);
	TEST_RUN(test_version_mismatch);
	TEST_RUN(test_malformed_fields);
	TEST_RUN(test_inflight_bound);
	TEST_RUN(test_cancel);
	TEST_RUN(test_destroy_in_callback);
	TEST_RUN(test_sentinel);
	TEST_RUN(test_auth);
	TEST_RUN(test_stall_timeout);
	TEST_RUN(test_restart);
	evloop_destroy(&loop);
	return TEST_DONE();
}
