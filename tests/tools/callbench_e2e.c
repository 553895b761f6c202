/*
 * callbench_e2e.c - hold --e2e: callbench is the far end's media, and measures the one-way delay
 * through the whole gateway (signaler and worker) in each direction, on its own clock.
 *
 * Each call has a UDP socket of its own (127.0.0.1, an ephemeral port) and invites
 * sip:PORT@<the target's host>; the SIPp UAS (tests/integration/sipp/bench_uas_port.xml)
 * answers with that port in its SDP, so the gateway's RTP for the call comes to the socket. One
 * thread reads every socket and sends each packet straight back to its source (the leg's own
 * port: its strict latching sees the signalled peer).
 *
 *   client --RTMP publish, frame k--> signaler --ZeroMQ--> worker --RTP--> socket   rtmp_to_rtp
 *   client <--RTMP play-------------- signaler <--ZeroMQ-- worker <--RTP-- echo     rtp_to_rtmp
 *   publish of frame k -> the player receives it back                              round_trip
 *
 * The two directions are tracks (delay_track.h) numbered alike: the echo of frame k is frame k
 * of the second. Frames are named by the index in their G.711 bytes (pcmu: pass-through), or
 * by their RTP timestamps (the gateway stamps k * 160 from the frames; a marker means frames
 * went missing) and RTMP timestamps (20 ms per frame, following the RTP clock) when transcoded.
 * The up direction is the RTP thread's, the down one and the round trip the reader's; a call's
 * tracks are guarded by its own mutex.
 */
#include "callbench.h"
#include "delay_hist.h"
#include "delay_track.h"

#include <arpa/inet.h>
#include <netinet/in.h>

struct e2e_call {
	int fd;
	pthread_mutex_t lock;
	struct delay_track up, down; /* rtmp_to_rtp, rtp_to_rtmp (the echo) */
};

static struct {
	_Atomic(struct e2e_call *) *calls; /* by call index: set once each (a set-up thread) */
	int n;
	bool passthrough;
	atomic_uint gen; /* bumped when a socket is added */
	atomic_bool stop;
	pthread_t th;
	bool started;
	struct delay_hist up, down, rt; /* the RTP thread's; the reader's two */
} e2e;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct e2e_call *e2e_call_new(int index, uint32_t frames, char *user, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	struct e2e_call *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	pthread_mutex_init(&e->lock, NULL);
	e->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (e->fd < 0 || bind(e->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(e->fd, (struct sockaddr *)&a, &al) < 0 ||
	    delay_track_init(&e->up, frames) < 0 || delay_track_init(&e->down, frames) < 0) {
		e2e_call_destroy(&e);
		return NULL;
	}
	e->up.until = e->down.until = 0; /* nothing counts before the window (e2e_window) */
	snprintf(user, len, "%u", ntohs(a.sin_port));
	if (index >= 0 && index < e2e.n) {
		atomic_store(&e2e.calls[index], e);
		atomic_fetch_add(&e2e.gen, 1);
	}
	return e;
}

void e2e_call_destroy(struct e2e_call **ep)
{
	struct e2e_call *e = *ep;

	if (!e)
		return;
	if (e->fd >= 0)
		close(e->fd);
	delay_track_free(&e->up);
	delay_track_free(&e->down);
	pthread_mutex_destroy(&e->lock);
	free(e);
	*ep = NULL;
}

void e2e_frame_out(struct e2e_call *e, uint8_t *body, size_t len)
{
	uint32_t idx;

	pthread_mutex_lock(&e->lock);
	idx = delay_track_sent(&e->up, now_us());
	pthread_mutex_unlock(&e->lock);
	if (e2e.passthrough && len >= 9 && idx != DELAY_TRACK_NONE)
		delay_track_put_seq(body + 1, idx);
}

void e2e_frame_in(struct e2e_call *e, const uint8_t *body, size_t len, uint32_t ts)
{
	uint64_t now = now_us();
	uint32_t idx;

	if (len < 2)
		return;
	pthread_mutex_lock(&e->lock);
	if (e2e.passthrough)
		idx = delay_track_get_seq(body + 1, len - 1);
	else
		idx = delay_track_name_ts(&e->down, ts, 20, false, now);
	if (idx == DELAY_TRACK_NONE && e2e.passthrough) {
		e->down.dups++; /* concealment: names no frame */
		goto out;
	}
	idx = delay_track_arrived(&e->down, idx, now, &e2e.down);
	if (idx != DELAY_TRACK_NONE && idx >= e->down.from && idx < e->down.until &&
	    idx < e->up.n_sent)
		delay_hist_add(&e2e.rt, now - e->up.sent_us[idx]);
out:
	pthread_mutex_unlock(&e->lock);
}

void e2e_window(struct e2e_call *e, bool start)
{
	pthread_mutex_lock(&e->lock);
	if (start) {
		delay_track_window_start(&e->up);
		delay_track_window_start(&e->down);
		e->down.from = e->up.from; /* numbered alike: the echo lags behind */
	} else {
		delay_track_window_end(&e->up);
		e->down.until = e->up.until;
	}
	pthread_mutex_unlock(&e->lock);
}

/* Reads what @e's socket holds: each packet named, noted and echoed to its source. */
static void e2e_drain(struct e2e_call *e)
{
	uint8_t buf[1500];

	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(e->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		uint64_t now = now_us();
		uint32_t ts, idx;
		size_t hl;
		bool marker;

		if (n < 0)
			return;
		if (!delay_track_rtp(buf, (size_t)n, &ts, &marker, &hl))
			continue;
		pthread_mutex_lock(&e->lock);
		if (e2e.passthrough) {
			idx = delay_track_get_seq(buf + hl, (size_t)n - hl);
			if (idx == DELAY_TRACK_NONE)
				e->up.dups++;
		} else {
			idx = delay_track_name_ts(&e->up, ts, 160, marker, now);
		}
		if (idx != DELAY_TRACK_NONE || !e2e.passthrough)
			idx = delay_track_arrived(&e->up, idx, now, &e2e.up);
		if (idx != DELAY_TRACK_NONE)
			delay_track_sent_at(&e->down, idx, now_us());
		pthread_mutex_unlock(&e->lock);
		sendto(e->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
	}
}

static void *e2e_main(void *arg)
{
	struct pollfd *pfd = calloc((size_t)e2e.n, sizeof(*pfd));
	struct e2e_call **who = calloc((size_t)e2e.n, sizeof(*who));
	unsigned seen = ~0u;
	int m = 0;

	if (!pfd || !who) {
		fprintf(stderr, "callbench: e2e: out of memory\n");
		goto out;
	}
	while (!atomic_load(&e2e.stop)) {
		unsigned g = atomic_load(&e2e.gen);
		int rc;

		if (g != seen) {
			m = 0;
			for (int i = 0; i < e2e.n; i++) {
				who[m] = atomic_load(&e2e.calls[i]);
				if (!who[m])
					continue;
				pfd[m].fd = who[m]->fd;
				pfd[m].events = POLLIN;
				m++;
			}
			seen = g;
		}
		rc = poll(pfd, (nfds_t)m, POLL_MS);
		for (int k = 0; k < m && rc > 0; k++)
			if (pfd[k].revents)
				e2e_drain(who[k]);
	}
out:
	free(pfd);
	free(who);
	return NULL;
}

int e2e_start(int ncalls, bool passthrough)
{
	e2e.calls = calloc((size_t)ncalls, sizeof(*e2e.calls));
	if (!e2e.calls)
		return -ENOMEM;
	e2e.n = ncalls;
	e2e.passthrough = passthrough;
	if (pthread_create(&e2e.th, NULL, e2e_main, NULL) != 0)
		return -EAGAIN;
	e2e.started = true;
	return 0;
}

void e2e_stop(void)
{
	if (e2e.started) {
		atomic_store(&e2e.stop, true);
		pthread_join(e2e.th, NULL);
		e2e.started = false;
	}
}

void e2e_report(int calls_up)
{
	const char *mode = e2e.passthrough ? "passthrough" : "transcode";
	struct delay_tally y[2] = {{0}};
	char prefix[160];

	for (int i = 0; i < e2e.n; i++) {
		struct e2e_call *e = atomic_load(&e2e.calls[i]);

		if (!e)
			continue;
		delay_track_tally(&e->up, &y[0]);
		delay_track_tally(&e->down, &y[1]);
	}
	snprintf(prefix, sizeof(prefix), "path=e2e mode=%s dir=rtmp_to_rtp legs=%d", mode, calls_up);
	delay_report(stdout, prefix, &e2e.up, &y[0]);
	snprintf(prefix, sizeof(prefix), "path=e2e mode=%s dir=rtp_to_rtmp legs=%d", mode, calls_up);
	delay_report(stdout, prefix, &e2e.down, &y[1]);
	snprintf(prefix, sizeof(prefix), "DELAY path=e2e mode=%s dir=round_trip legs=%d", mode,
		 calls_up);
	delay_hist_print(&e2e.rt, stdout, prefix);
}

void e2e_free(void)
{
	e2e_stop();
	for (int i = 0; i < e2e.n; i++) {
		struct e2e_call *e = atomic_load(&e2e.calls[i]);

		e2e_call_destroy(&e);
	}
	free(e2e.calls);
	e2e.calls = NULL;
	e2e.n = 0;
}
