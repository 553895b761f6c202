/*
 * redis_fixture.h - what test_redis and test_state share: the binary's redis-server (started on a
 * free port, its files in a temporary directory removed at exit, the process killed with the test),
 * the loop, a client connected to that server, one command, and the state callbacks and the
 * sample leg both use.
 *
 *   ret = redis_fixture_start("test_x")       in main(), after the tests that need no server
 *   r = connect_main(&counts, ping_idle_ms, max_inflight)
 *   res = cmd(r, "HGET rs:v1:leg:leg-1 v")     "" stands for an empty value
 *
 * Header-only (static inline) so that every unit test stays one .c file.
 */
#ifndef RS_TEST_REDIS_FIXTURE_H
#define RS_TEST_REDIS_FIXTURE_H

#include "evloop.h"
#include "harness.h"
#include "redis.h"
#include "redis_server.h"
#include "state.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* redis-server processes */

#define MAX_SERVERS 8

static pid_t servers[MAX_SERVERS];
static char tmpdir[] = "/tmp/test_redis.XXXXXX";

/* Starts redis-server on @port with optional extra arguments (NULL-terminated); waits for it. */
static inline pid_t start_server(int port, const char *const *extra)
{
	pid_t pid = redis_server_start(tmpdir, port, extra);

	for (size_t i = 0; pid > 0 && i < MAX_SERVERS; i++) {
		if (!servers[i]) {
			servers[i] = pid;
			break;
		}
	}
	return pid;
}

static inline void stop_server_sig(pid_t pid, int sig)
{
	if (pid <= 0)
		return;
	redis_server_stop(pid, sig);
	for (size_t i = 0; i < MAX_SERVERS; i++)
		if (servers[i] == pid)
			servers[i] = 0;
}

static inline void stop_server(pid_t pid)
{
	stop_server_sig(pid, SIGTERM);
}

static inline void stop_all(void)
{
	for (size_t i = 0; i < MAX_SERVERS; i++)
		if (servers[i])
			stop_server(servers[i]);
	redis_server_rmdir(tmpdir);
}

/* Loop helpers */

static struct evloop *loop;
static int main_port;
static pid_t main_pid;

struct counts {
	int up, down;
};

static inline void on_up(struct redis *r, void *arg)
{
	(void)r;
	((struct counts *)arg)->up++;
}

static inline void on_down(struct redis *r, void *arg)
{
	(void)r;
	((struct counts *)arg)->down++;
}

static inline struct redis *connect_main(struct counts *c, unsigned ping_idle_ms,
					 unsigned max_inflight)
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

/* Runs one command given as space-separated words and waits for its reply. */
static inline struct cmd_reply cmd(struct redis *r, const char *line)
{
	char buf[512];
	const char *argv[32];
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && argc < 32;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = strcmp(w, "\"\"") == 0 ? "" : w; /* "" stands for an empty value */
	return redis_cmd_argv(loop, r, argc, argv);
}

struct done {
	bool done;
	int calls;
	int err;
	char msg[256];
};

static inline void done_cb(int err, const char *errmsg, void *arg)
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

static inline void leg_cb(int err, const char *errmsg, const struct leg_record *rec, void *arg)
{
	struct legres *l = arg;

	l->done = true;
	l->calls++;
	l->err = err;
	snprintf(l->msg, sizeof(l->msg), "%s", errmsg ? errmsg : "");
	if (rec)
		memcpy(&l->rec, rec, sizeof(*rec));
}

static inline int write_leg(struct redis *r, const struct leg_record *rec, unsigned ttl)
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

static inline void sample_leg(struct leg_record *rec, const char *id)
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

struct recres {
	bool done;
	int calls;
	int err;
	char msg[256];
	struct call_record call;
	struct reg_record reg;
};

static inline void rec_done(struct recres *x, int err, const char *errmsg)
{
	x->done = true;
	x->calls++;
	x->err = err;
	snprintf(x->msg, sizeof(x->msg), "%s", errmsg ? errmsg : "");
}

static inline void call_cb(int err, const char *errmsg, const struct call_record *rec, void *arg)
{
	rec_done(arg, err, errmsg);
	if (rec)
		((struct recres *)arg)->call = *rec;
}

static inline void reg_cb(int err, const char *errmsg, const struct reg_record *rec, void *arg)
{
	rec_done(arg, err, errmsg);
	if (rec)
		((struct recres *)arg)->reg = *rec;
}

/*
 * Starts the binary's redis-server on a free port (main_port, main_pid) and its loop. 1 when it
 * runs; 0 after printing SKIP @name when redis-server is not installed; -1 after saying why it
 * did not start.
 */
static inline int redis_fixture_start(const char *name)
{
	if (!have_redis_server()) {
		printf("SKIP %s: redis-server not found in PATH (install redis-server)\n", name);
		return 0;
	}
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return -1;
	}
	atexit(stop_all);
	loop = evloop_new();
	main_port = free_port();
	main_pid = start_server(main_port, NULL);
	if (!port_open(main_port)) {
		printf("FAIL redis-server: could not start on port %d\n", main_port);
		return -1;
	}
	return 1;
}

#endif
