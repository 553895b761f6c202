/*
 * test_dispatcher_conn.c - the dispatcher and workers whose connection goes away for real: a
 * worker in a child process killed (the dispatcher notices at once) or stopped (only after the
 * heartbeat timeout), a closed connection to a live worker that needs HELLO again, and no
 * descriptor leak from the per-worker connection monitors. Shared fixture: dispatcher_fixture.h.
 */
#include "dispatcher_fixture.h"

/* --- a worker in a child process, to be killed or stopped for real --- */

#define CHILD_LIFETIME_MS 30000
#define CHILD_HB_MS 300

struct child {
	pid_t pid;
	char ctl[128], media[128];
};

static void child_send(void *sock, const void *rid, size_t rid_len, struct wire_builder *b)
{
	if (zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return;
	zmq_send(sock, b->hdr, WIRE_HDR_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(sock, wire_builder_body(b), wire_builder_body_len(b), ZMQ_DONTWAIT);
}

/* Answers one message on @sock: HELLO -> HELLO_OK (remembering the control routing id). */
static void child_serve(void *sock, bool ctl, uint64_t instance, uint8_t *rid, size_t *rid_len)
{
	zmq_msg_t f[3];
	size_t parts = 0;
	struct wire_builder b = {0};
	struct wire_msg m;
	struct wire_err e;
	int more;

	do {
		zmq_msg_t *msg = &f[parts < 3 ? parts : 2];

		if (parts >= 3)
			zmq_msg_close(msg);
		zmq_msg_init(msg);
		if (zmq_msg_recv(msg, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(msg);
			break;
		}
		parts++;
		more = zmq_msg_more(msg);
	} while (more);
	if (parts == 3 && zmq_msg_size(&f[0]) <= 255 &&
	    wire_parse(zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), zmq_msg_data(&f[2]),
		       zmq_msg_size(&f[2]), &m, &e) == 0 &&
	    m.h.type == WIRE_HELLO) {
		if (ctl) {
			*rid_len = zmq_msg_size(&f[0]);
			memcpy(rid, zmq_msg_data(&f[0]), *rid_len);
		}
		wire_builder_init(&b, WIRE_HELLO_OK, m.h.req_id);
		wire_put_str(&b, WIRE_T_WORKER_ID, "wchild");
		wire_put_u64(&b, WIRE_T_INSTANCE_ID, instance);
		wire_put_u32(&b, WIRE_T_HB_INTERVAL_MS, CHILD_HB_MS);
		if (wire_builder_finish(&b) == 0)
			child_send(sock, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), &b);
		wire_builder_free(&b);
	}
	for (size_t i = 0; i < parts && i < 3; i++)
		zmq_msg_close(&f[i]);
}

/* The child: its own libzmq context (the parent's does not survive fork), two ROUTERs that
 * answer HELLO, heartbeats every CHILD_HB_MS to the signaler that said HELLO. Never returns. */
static void child_main(int fd, const char *ctl_bind, const char *media_bind, uint64_t instance)
{
	void *ctx, *ctl, *media;
	uint8_t rid[255];
	size_t rid_len = 0, sz;
	char eps[300], ctl_ep[128], media_ep[128];
	uint64_t end, next_hb = 0;
	uint32_t seq = 0;
	struct wire_builder b = {0};
	int zero = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	end = mono_ms() + CHILD_LIFETIME_MS;
	ctx = zmq_ctx_new();
	ctl = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
	media = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
	if (!ctl || !media)
		_exit(2);
	zmq_setsockopt(ctl, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(media, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_bind(ctl, ctl_bind) < 0 || zmq_bind(media, media_bind) < 0)
		_exit(3);
	sz = sizeof(ctl_ep);
	zmq_getsockopt(ctl, ZMQ_LAST_ENDPOINT, ctl_ep, &sz);
	sz = sizeof(media_ep);
	zmq_getsockopt(media, ZMQ_LAST_ENDPOINT, media_ep, &sz);
	snprintf(eps, sizeof(eps), "%s %s\n", ctl_ep, media_ep);
	if (write(fd, eps, strlen(eps)) != (ssize_t)strlen(eps))
		_exit(4);
	close(fd);
	while (mono_ms() < end) {
		zmq_pollitem_t items[2] = {{ctl, 0, ZMQ_POLLIN, 0}, {media, 0, ZMQ_POLLIN, 0}};
		uint64_t now = mono_ms();

		if (rid_len && now >= next_hb) {
			next_hb = now + CHILD_HB_MS;
			wire_builder_init(&b, WIRE_HEARTBEAT, 0);
			wire_put_str(&b, WIRE_T_WORKER_ID, "wchild");
			wire_put_u64(&b, WIRE_T_INSTANCE_ID, instance);
			wire_put_u32(&b, WIRE_T_LEGS, 0);
			wire_put_u16(&b, WIRE_T_CPU_PERMILLE, 0);
			wire_put_bool(&b, WIRE_T_DRAINING, false);
			wire_put_u32(&b, WIRE_T_SEQ, ++seq);
			if (wire_builder_finish(&b) == 0)
				child_send(ctl, rid, rid_len, &b);
		}
		if (zmq_poll(items, 2, 20) < 0)
			continue;
		for (int i = 0; i < 2; i++)
			if (items[i].revents & ZMQ_POLLIN)
				child_serve(items[i].socket, i == 0, instance, rid, &rid_len);
	}
	_exit(0);
}

/* Starts a child worker bound to @ctl_bind / @media_bind; fills c->ctl / c->media with the
 * resolved endpoints. False (child reaped) on failure. */
static bool child_start(struct child *c, const char *ctl_bind, const char *media_bind,
			uint64_t instance)
{
	char buf[300];
	size_t got = 0;
	int fds[2];
	uint64_t end = mono_ms() + 3000;

	memset(c, 0, sizeof(*c));
	if (pipe(fds) < 0)
		return false;
	fflush(stdout);
	fflush(stderr);
	c->pid = fork();
	if (c->pid == 0) {
		close(fds[0]);
		child_main(fds[1], ctl_bind, media_bind, instance);
	}
	close(fds[1]);
	while (c->pid > 0 && got < sizeof(buf) - 1 && !memchr(buf, '\n', got) && mono_ms() < end) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(fds[0], buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	buf[got] = '\0';
	if (c->pid > 0 && sscanf(buf, "%127s %127s", c->ctl, c->media) == 2)
		return true;
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	c->pid = 0;
	return false;
}

/* Sends @sig; for a fatal one, waits for the child to be gone. */
static void child_signal(struct child *c, int sig)
{
	if (c->pid <= 0)
		return;
	kill(c->pid, sig);
	if (sig == SIGKILL || sig == SIGTERM) {
		waitpid(c->pid, NULL, 0);
		c->pid = 0;
	}
}

/* kill -9 of a worker process: the kernel closes its sockets, the dispatcher notices at once;
 * the restarted worker comes back through HELLO, once. */
static void test_killed_worker(void)
{
	struct dispatcher_worker_info info;
	struct dispatcher_worker *w = NULL;
	struct dispatcher *d;
	struct child c;
	uint32_t seq0;
	uint64_t t0;

	reset_records();
	CHECK(child_start(&c, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 101));
	if (!c.pid)
		return;
	d = dispatcher_new(loop, SIG_ID, &dcbs, NULL);
	CHECK_EQ_INT(dispatcher_add_worker(d, c.ctl, c.media, NULL, &w), 0);
	CHECK(run_until(&dr.up, 1, 3000));
	CHECK_EQ_INT(dr.restarted, 0);

	/* Heartbeats flow: never down, even well past the timeout. */
	dispatcher_worker_info(w, &info);
	seq0 = info.last_seq;
	run_for(1800);
	dispatcher_worker_info(w, &info);
	CHECK(info.alive);
	CHECK(info.last_seq >= seq0 + 4);
	CHECK_EQ_INT(info.instance_id, 101);
	CHECK_EQ_INT(dr.down, 0);

	/* kill -9: down within a fraction of the heartbeat timeout. */
	t0 = mono_ms();
	child_signal(&c, SIGKILL);
	CHECK(run_until(&dr.down, 1, 3000));
	printf("  worker killed (SIGKILL): down after %llu ms\n",
	       (unsigned long long)(dr.down_mono - t0));
	CHECK(dr.down == 1 && dr.down_mono - t0 < 1000);
	dispatcher_worker_info(w, &info);
	CHECK(!info.alive);
	CHECK(info.disconnects >= 1);
	CHECK(dispatcher_pick(d) == NULL);
	run_for(600);
	CHECK_EQ_INT(dr.down, 1);
	CHECK_EQ_INT(dr.up, 1);

	/* Restarted on the same endpoints: up again through HELLO, as a new instance. */
	{
		char ctl[128], media[128];

		snprintf(ctl, sizeof(ctl), "%s", c.ctl);
		snprintf(media, sizeof(media), "%s", c.media);
		CHECK(child_start(&c, ctl, media, 102));
	}
	CHECK(run_until(&dr.up, 2, 3000));
	CHECK_EQ_INT(dr.restarted, 1);
	dispatcher_worker_info(w, &info);
	CHECK(info.alive);
	CHECK_EQ_INT(info.instance_id, 102);
	run_for(800);
	CHECK_EQ_INT(dr.down, 1);
	CHECK_EQ_INT(dr.up, 2);

	/* A normal exit closes the sockets just the same. */
	t0 = mono_ms();
	child_signal(&c, SIGTERM);
	CHECK(run_until(&dr.down, 2, 3000));
	printf("  worker terminated (SIGTERM): down after %llu ms\n",
	       (unsigned long long)(dr.down_mono - t0));
	CHECK(dr.down == 2 && dr.down_mono - t0 < 1000);

	dispatcher_destroy(&d);
	child_signal(&c, SIGKILL);
}

/* A stopped process keeps its sockets open: only the heartbeat timeout notices it, never
 * before 1.5 s after the last heartbeat; it is alive again when heartbeats resume. */
static void test_stopped_worker(void)
{
	struct dispatcher_worker_info info;
	struct dispatcher_worker *w = NULL;
	struct dispatcher *d;
	struct child c;
	uint64_t stopped_at;

	reset_records();
	CHECK(child_start(&c, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 201));
	if (!c.pid)
		return;
	d = dispatcher_new(loop, SIG_ID, &dcbs, NULL);
	CHECK_EQ_INT(dispatcher_add_worker(d, c.ctl, c.media, NULL, &w), 0);
	CHECK(run_until(&dr.up, 1, 3000));
	run_for(700);

	stopped_at = evloop_now(loop);
	child_signal(&c, SIGSTOP);
	CHECK(run_until(&dr.down, 1, 4000));
	dispatcher_worker_info(w, &info);
	printf("  worker stopped (SIGSTOP): down after %llu ms, %llu ms after its last heartbeat\n",
	       (unsigned long long)(dr.down_at - stopped_at),
	       (unsigned long long)(dr.down_at - info.last_heartbeat_ms));
	CHECK(dr.down_at - info.last_heartbeat_ms >= 1500);
	CHECK(dr.down_at - stopped_at <= 2500);
	CHECK_EQ_INT(info.disconnects, 0);

	child_signal(&c, SIGCONT);
	CHECK(run_until(&dr.up, 2, 3000));
	CHECK_EQ_INT(dr.restarted, 0);
	run_for(600);
	CHECK_EQ_INT(dr.down, 1);
	CHECK(dispatcher_worker_alive(w));

	dispatcher_destroy(&d);
	child_signal(&c, SIGKILL);
}

/* A closed connection to a worker that is still alive (it comes back on the same endpoints and
 * keeps heartbeating): down once, and up only by a HELLO_OK to a HELLO sent after the close,
 * never by heartbeats alone. */
static void test_reconnect_needs_hello(void)
{
	char ctl[128], media[128];
	struct dispatcher_worker_info info;
	struct dispatcher_worker *w = NULL;
	struct wire_builder b = {0};
	struct dispatcher *d;
	bool bound = false;
	uint64_t t0;

	reset_records();
	CHECK(fake_up());
	snprintf(ctl, sizeof(ctl), "%s", zsock_endpoint(fk.ctl));
	snprintf(media, sizeof(media), "%s", zsock_endpoint(fk.media));
	d = dispatcher_new(loop, SIG_ID, &dcbs, NULL);
	CHECK_EQ_INT(dispatcher_add_worker(d, ctl, media, NULL, &w), 0);
	CHECK(run_until(&dr.up, 1, 3000));

	t0 = mono_ms();
	fake_down();
	CHECK(run_until(&dr.down, 1, 2000));
	CHECK(dr.down_mono - t0 < 1000);

	/* Back on the same endpoints (the closed listener may take a moment to go). */
	for (int i = 0; i < 40 && !bound; i++) {
		fake_down();
		bound = fake_up_at(ctl, media);
		if (!bound)
			run_for(50);
	}
	CHECK(bound);
	fk.answer_hello = false;
	for (int i = 0; i < 300 && fk.hellos == 0; i++)
		run_for(10);
	CHECK(fk.hellos > 0); /* reconnected by libzmq, HELLO repeated */

	/* Heartbeats from the same instance arrive, but do not bring it up. */
	for (uint32_t seq = 1; seq <= 6 && fk.ctl; seq++) {
		wire_builder_init(&b, WIRE_HEARTBEAT, 0);
		wire_put_str(&b, WIRE_T_WORKER_ID, "fake");
		wire_put_u64(&b, WIRE_T_INSTANCE_ID, 77);
		wire_put_u32(&b, WIRE_T_LEGS, 0);
		wire_put_u16(&b, WIRE_T_CPU_PERMILLE, 0);
		wire_put_bool(&b, WIRE_T_DRAINING, false);
		wire_put_u32(&b, WIRE_T_SEQ, 1000 + seq);
		CHECK_EQ_INT(wire_builder_finish(&b), 0);
		fake_send(fk.ctl, fk.rid, fk.rid_len, &b);
		run_for(100);
	}
	dispatcher_worker_info(w, &info);
	CHECK_EQ_INT(info.last_seq, 1006);
	CHECK(!info.alive);
	CHECK_EQ_INT(dr.up, 1);

	/* The next HELLO is answered: up again, same instance. */
	fk.answer_hello = true;
	CHECK(run_until(&dr.up, 2, 2000));
	CHECK_EQ_INT(dr.restarted, 0);
	CHECK_EQ_INT(dr.down, 1);
	CHECK(dispatcher_worker_alive(w));

	wire_builder_free(&b);
	dispatcher_destroy(&d);
	fake_down();
}

static int count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!dir)
		return -1;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n - 1; /* the directory's own descriptor */
}

/* Waits (running the loop) until at most @target descriptors are open; returns the count. */
static int settle_fds(int target, int max_ms)
{
	uint64_t end = mono_ms() + (uint64_t)max_ms;
	int n = count_fds();

	while (n > target && mono_ms() < end) {
		run_for(20);
		n = count_fds();
	}
	return n;
}

/* Each worker's connection monitor (two PAIR sockets) closes with the worker: no descriptor
 * leak across adding and removing 100 workers, twice, nor across dispatcher_destroy(). */
static void test_monitor_fds(void)
{
	struct dispatcher *d;
	char ctl[128], media[128];
	int base, peak = 0, after;

	reset_records();
	run_for(100);
	base = settle_fds(0, 300);
	CHECK(base > 0);
	d = dispatcher_new(loop, SIG_ID, &dcbs, NULL);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 100; i++) {
			snprintf(ctl, sizeof(ctl), "ipc:///tmp/rs-test-disp-%d-fd-%d-ctl",
				 (int)getpid(), i);
			snprintf(media, sizeof(media), "ipc:///tmp/rs-test-disp-%d-fd-%d-media",
				 (int)getpid(), i);
			CHECK_EQ_INT(dispatcher_add_worker(d, ctl, media, NULL, NULL), 0);
		}
		run_for(50);
		peak = count_fds();
		/* Per worker: two DEALERs, the monitor's two PAIRs (one mailbox each). */
		CHECK(peak >= base + 400);
		if (round < 2) {
			while (dispatcher_worker_count(d) > 0)
				dispatcher_remove_worker(d, dispatcher_worker_at(d, 0));
		} else {
			dispatcher_destroy(&d);
		}
		after = settle_fds(base, 3000);
		printf("  round %d: %d descriptors before, %d with 100 workers, %d after\n", round,
		       base, peak, after);
		CHECK(after <= base);
	}
	dispatcher_destroy(&d);
	CHECK_EQ_INT(dr.up, 0);
	CHECK_EQ_INT(dr.down, 0);
}

int main(void)
{
	log_init("test_dispatcher_conn", getenv("LOG_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	loop = evloop_new();
	TEST_RUN(test_killed_worker);
	TEST_RUN(test_stopped_worker);
	TEST_RUN(test_reconnect_needs_hello);
	TEST_RUN(test_monitor_fds);
	evloop_destroy(&loop);
	zsock_context_term();
	return TEST_DONE();
}
