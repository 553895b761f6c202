/*
 * evloop_core.c - what both event loop backends share: hooks, signals, the handle list, and the
 * backend-free part of evloop.h.
 */
#include "evloop_core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

int ev_hooks_add(struct ev_hooks *h, ev_hook_cb cb, void *arg)
{
	if (h->n == EV_MAX_HOOKS)
		return -ENOMEM;
	h->v[h->n].cb = cb;
	h->v[h->n].arg = arg;
	h->n++;
	return 0;
}

int ev_hooks_del(struct ev_hooks *h, ev_hook_cb cb, void *arg)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->v[i].cb == cb && h->v[i].arg == arg) {
			memmove(&h->v[i], &h->v[i + 1], (h->n - i - 1) * sizeof(h->v[0]));
			h->n--;
			return 0;
		}
	}
	return -ENOENT;
}

void ev_hooks_run(struct ev_hooks *h, struct evloop *loop)
{
	for (size_t i = 0; i < h->n; i++)
		h->v[i].cb(loop, h->v[i].arg);
}

void ev_signals_init(struct ev_signals *s)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	sigemptyset(&s->mask);
}

static void signals_ready(struct evloop *loop, struct ev_io *io, int fd, unsigned events, void *arg)
{
	struct ev_signals *s = arg;
	struct signalfd_siginfo si;

	(void)io, (void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		for (size_t i = 0; i < s->n; i++)
			if (s->v[i].signo == (int)si.ssi_signo)
				s->v[i].cb(loop, (int)si.ssi_signo, s->v[i].arg);
	}
}

int ev_signals_add(struct ev_signals *s, struct evloop *loop, int signo, ev_signal_cb cb, void *arg)
{
	int fd;

	if (s->n == EV_MAX_SIGNALS)
		return -ENOMEM;
	sigaddset(&s->mask, signo);
	if (sigprocmask(SIG_BLOCK, &s->mask, NULL) < 0)
		return -errno;
	fd = signalfd(s->fd, &s->mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (s->fd < 0) {
		s->fd = fd;
		s->io = evloop_io_add(loop, fd, EV_READ, signals_ready, s);
		if (!s->io)
			return -errno;
	}
	s->v[s->n].signo = signo;
	s->v[s->n].cb = cb;
	s->v[s->n].arg = arg;
	s->n++;
	return 0;
}

void ev_signals_close(struct ev_signals *s)
{
	evloop_io_del(&s->io);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* --- the core of a loop ----------------------------------------------------------------------- */

uint64_t ev_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ev_core_init(struct ev_core *c)
{
	ev_signals_init(&c->sigs);
	c->now = ev_mono_ms();
}

void ev_core_fini(struct ev_core *c)
{
	ev_signals_close(&c->sigs);
	timer_set_free(&c->timers);
	ev_core_free_dead(c);
}

struct ev_io *ev_io_new(struct evloop *loop, int fd, unsigned events, ev_io_cb cb, void *arg)
{
	struct ev_io *io = calloc(1, sizeof(*io));

	if (!io)
		return NULL;
	io->loop = loop;
	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->arg = arg;
	return io;
}

struct ev_io *ev_io_take(struct ev_io **iop)
{
	struct ev_io *io = iop ? *iop : NULL;

	if (!io)
		return NULL;
	*iop = NULL;
	return io->dead ? NULL : io;
}

void ev_io_bury(struct ev_io *io)
{
	struct ev_core *c = ev_core(io->loop);

	io->dead = true;
	io->next_dead = c->dead;
	c->dead = io;
}

void ev_core_free_dead(struct ev_core *c)
{
	while (c->dead) {
		struct ev_io *io = c->dead;

		c->dead = io->next_dead;
		free(io);
	}
}

/* --- evloop.h, the same on both backends ------------------------------------------------------ */

unsigned evloop_io_events(const struct ev_io *io)
{
	return io->events;
}

int evloop_before_sleep(struct evloop *loop, ev_hook_cb cb, void *arg)
{
	return ev_hooks_add(&ev_core(loop)->hooks, cb, arg);
}

int evloop_before_sleep_del(struct evloop *loop, ev_hook_cb cb, void *arg)
{
	return ev_hooks_del(&ev_core(loop)->hooks, cb, arg);
}

int evloop_signal(struct evloop *loop, int signo, ev_signal_cb cb, void *arg)
{
	return ev_signals_add(&ev_core(loop)->sigs, loop, signo, cb, arg);
}

uint64_t evloop_now(const struct evloop *loop)
{
	return ((const struct ev_core *)(const void *)loop)->now;
}

int evloop_run(struct evloop *loop)
{
	struct ev_core *c = ev_core(loop);

	c->stop = false;
	while (!c->stop) {
		int r = evloop_run_once(loop, -1);

		if (r < 0)
			return r;
	}
	return 0;
}
