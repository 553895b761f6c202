/*
 * ev_hooks.c - before-sleep hooks and signals of the event loop backends.
 */
#include "ev_hooks.h"

#include <errno.h>
#include <string.h>
#include <sys/signalfd.h>
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

static void signals_ready(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
			  void *arg)
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

int ev_signals_add(struct ev_signals *s, struct evloop *loop, int signo, ev_signal_cb cb,
		   void *arg)
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
