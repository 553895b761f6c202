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
#include "evloop_core.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EV_BATCH 256

struct evloop {
	struct ev_core c; /* first: ev_core() */
	int epfd;
};

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
	ev_core_init(&loop->c);
	return loop;
}

void evloop_destroy(struct evloop **loopp)
{
	struct evloop *loop = loopp ? *loopp : NULL;

	if (!loop)
		return;
	ev_core_fini(&loop->c);
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
	struct ev_io *io = ev_io_new(loop, fd, events, cb, arg);

	if (!io)
		return NULL;
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

void evloop_io_del(struct ev_io **iop)
{
	struct ev_io *io = ev_io_take(iop);

	if (!io)
		return;
	epoll_ctl(io->loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	ev_io_bury(io);
}

void evloop_timer_armed_at(struct evloop *loop, uint64_t when)
{
	/* the next wait is computed from the heap after the callbacks */
}

int evloop_run_once(struct evloop *loop, int max_wait_ms)
{
	struct epoll_event evs[EV_BATCH];
	struct ev_core *c = &loop->c;
	uint64_t when;
	int timeout = max_wait_ms, n;

	ev_hooks_run(&c->hooks, loop);
	c->now = ev_mono_ms();
	when = timer_set_next(&c->timers);
	if (when != UINT64_MAX) {
		int until =
		    when <= c->now ? 0 : (int)(when - c->now > 60000 ? 60000 : when - c->now);

		if (timeout < 0 || until < timeout)
			timeout = until;
	}
	n = epoll_wait(loop->epfd, evs, EV_BATCH, timeout);
	if (n < 0 && errno != EINTR)
		return -errno;
	c->now = ev_mono_ms();
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
	/* Timers (re)armed by the callbacks of this pass wait for the next iteration. */
	timer_set_fire(&c->timers, c->now, c->timers.arm_seq);
	ev_core_free_dead(c);
	return 0;
}

void evloop_stop(struct evloop *loop)
{
	loop->c.stop = true;
}
