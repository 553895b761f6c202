/*
 * evloop.c - a single-threaded epoll loop with a timer heap.
 *
 * Each iteration:
 *
 *     +--> before-sleep hooks --> epoll_wait(timeout = next timer) --> dispatch fd events
 *     |                                                                        |
 *     +------------------- free deleted handles <-- fire due timers <----------+
 *
 * A handle deleted while its events are still queued in the current batch is only marked dead
 * and freed at the end of the iteration, so callbacks may delete any handle at any time.
 */
#include "evloop.h"
#include "ev_hooks.h"

#include "timer_heap.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 256

struct ev_io {
	struct evloop *loop;
	int fd;
	unsigned events;
	bool dead;
	ev_io_cb cb;
	void *arg;
	struct ev_io *next_dead;
};

struct ev_timer {
	struct heap_node hn; /* first: the heap holds &hn */
	struct evloop *loop;
	uint64_t armed_seq; /* loop->arm_seq when armed: orders arming against dispatch */
	ev_timer_cb cb;
	void *arg;
};

struct evloop {
	int epfd;
	bool stop;
	uint64_t now;
	struct timer_heap timers;
	size_t n_timers; /* timers alive: the heap always has room for all of them */
	uint64_t arm_seq;
	struct ev_io *dead;
	struct ev_hooks hooks;
	struct ev_signals sigs;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct evloop *evloop_new(void)
{
	struct evloop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	ev_signals_init(&loop->sigs);
	loop->now = mono_ms();
	return loop;
}

static void free_dead(struct evloop *loop)
{
	while (loop->dead) {
		struct ev_io *io = loop->dead;

		loop->dead = io->next_dead;
		free(io);
	}
}

void evloop_destroy(struct evloop **loopp)
{
	struct evloop *loop = loopp ? *loopp : NULL;

	if (!loop)
		return;
	ev_signals_close(&loop->sigs);
	timer_heap_free(&loop->timers);
	free_dead(loop);
	close(loop->epfd);
	free(loop);
	*loopp = NULL;
}

static uint32_t to_epoll(unsigned events)
{
	return (events & EV_READ ? EPOLLIN : 0) | (events & EV_WRITE ? EPOLLOUT : 0);
}

struct ev_io *evloop_io_add(struct evloop *loop, int fd, unsigned events, ev_io_cb cb, void *arg)
{
	struct epoll_event ev = {0};
	struct ev_io *io = calloc(1, sizeof(*io));

	if (!io)
		return NULL;
	io->loop = loop;
	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->arg = arg;
	ev.events = to_epoll(events);
	ev.data.ptr = io;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;

		free(io);
		errno = e;
		return NULL;
	}
	return io;
}

int evloop_io_set(struct ev_io *io, unsigned events)
{
	struct epoll_event ev = {0};

	if (io->dead)
		return -EBADF;
	if (events == io->events)
		return 0;
	ev.events = to_epoll(events);
	ev.data.ptr = io;
	if (epoll_ctl(io->loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -errno;
	io->events = events;
	return 0;
}

unsigned evloop_io_events(const struct ev_io *io)
{
	return io->events;
}

void evloop_io_del(struct ev_io **iop)
{
	struct ev_io *io = iop ? *iop : NULL;

	if (!io)
		return;
	*iop = NULL;
	if (io->dead)
		return;
	epoll_ctl(io->loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->dead = true;
	io->next_dead = io->loop->dead;
	io->loop->dead = io;
}

struct ev_timer *evloop_timer_new(struct evloop *loop, ev_timer_cb cb, void *arg)
{
	struct ev_timer *t;

	if (timer_heap_reserve(&loop->timers, loop->n_timers + 1) < 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	loop->n_timers++;
	t->loop = loop;
	t->hn.idx = SIZE_MAX;
	t->cb = cb;
	t->arg = arg;
	return t;
}

void evloop_timer_start(struct ev_timer *t, uint64_t ms)
{
	struct evloop *loop = t->loop;

	t->armed_seq = ++loop->arm_seq;
	/* evloop_timer_new() reserved a heap slot for every timer: this cannot fail. */
	timer_heap_set(&loop->timers, &t->hn, loop->now + ms);
}

void evloop_timer_stop(struct ev_timer *t)
{
	if (t)
		timer_heap_remove(&t->loop->timers, &t->hn);
}

bool evloop_timer_armed(const struct ev_timer *t)
{
	return heap_node_armed(&t->hn);
}

void evloop_timer_del(struct ev_timer **tp)
{
	struct ev_timer *t = tp ? *tp : NULL;

	if (!t)
		return;
	evloop_timer_stop(t);
	t->loop->n_timers--;
	free(t);
	*tp = NULL;
}

int evloop_before_sleep(struct evloop *loop, ev_hook_cb cb, void *arg)
{
	return ev_hooks_add(&loop->hooks, cb, arg);
}

int evloop_before_sleep_del(struct evloop *loop, ev_hook_cb cb, void *arg)
{
	return ev_hooks_del(&loop->hooks, cb, arg);
}

int evloop_signal(struct evloop *loop, int signo, ev_signal_cb cb, void *arg)
{
	return ev_signals_add(&loop->sigs, loop, signo, cb, arg);
}

uint64_t evloop_now(const struct evloop *loop)
{
	return loop->now;
}

static void fire_timers(struct evloop *loop)
{
	/* Timers (re)armed by the callbacks of this pass wait for the next iteration, even when
	 * due "now": a timer re-arming itself for 0 ms cannot starve the fds. */
	uint64_t now = loop->now, seq = loop->arm_seq;

	for (;;) {
		struct ev_timer *t = (struct ev_timer *)timer_heap_top(&loop->timers);

		if (!t || t->hn.when > now || t->armed_seq > seq)
			break;
		timer_heap_remove(&loop->timers, &t->hn);
		t->cb(loop, t, t->arg);
	}
}

int evloop_run_once(struct evloop *loop, int max_wait_ms)
{
	struct epoll_event evs[EV_BATCH];
	int timeout = max_wait_ms, n;

	ev_hooks_run(&loop->hooks, loop);
	loop->now = mono_ms();
	if (timer_heap_top(&loop->timers)) {
		uint64_t when = timer_heap_top(&loop->timers)->when;
		int until = when <= loop->now ? 0 : (int)(when - loop->now > 60000 ? 60000 : when - loop->now);

		if (timeout < 0 || until < timeout)
			timeout = until;
	}
	n = epoll_wait(loop->epfd, evs, EV_BATCH, timeout);
	if (n < 0 && errno != EINTR)
		return -errno;
	loop->now = mono_ms();
	for (int i = 0; i < n; i++) {
		struct ev_io *io = evs[i].data.ptr;
		unsigned ready = 0;

		if (io->dead)
			continue;
		if (evs[i].events & EPOLLIN)
			ready |= EV_READ;
		if (evs[i].events & EPOLLOUT)
			ready |= EV_WRITE;
		if (evs[i].events & (EPOLLERR | EPOLLHUP))
			ready |= EV_ERROR | (io->events & EV_READ);
		io->cb(loop, io, io->fd, ready, io->arg);
	}
	fire_timers(loop);
	free_dead(loop);
	return 0;
}

int evloop_run(struct evloop *loop)
{
	loop->stop = false;
	while (!loop->stop) {
		int r = evloop_run_once(loop, -1);

		if (r < 0)
			return r;
	}
	return 0;
}

void evloop_stop(struct evloop *loop)
{
	loop->stop = true;
}
