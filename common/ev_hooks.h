/*
 * ev_hooks.h - the parts of an event loop shared by both backends (evloop.c on epoll,
 * signaler/evloop_su.c on sofia-sip's su_root): before-sleep hooks, and signals on one signalfd.
 */
#ifndef RS_EV_HOOKS_H
#define RS_EV_HOOKS_H

#include "evloop.h"

#include <signal.h>
#include <stddef.h>

#define EV_MAX_HOOKS   8
#define EV_MAX_SIGNALS 8

struct ev_hooks {
	struct {
		ev_hook_cb cb;
		void *arg;
	} v[EV_MAX_HOOKS];
	size_t n;
};

/* Adds a hook; 0 or -ENOMEM when all EV_MAX_HOOKS are taken. */
int ev_hooks_add(struct ev_hooks *h, ev_hook_cb cb, void *arg);

/* Removes the hook added with @cb and @arg (not from inside a hook); 0 or -ENOENT. */
int ev_hooks_del(struct ev_hooks *h, ev_hook_cb cb, void *arg);

/* Calls every hook in the order they were added. */
void ev_hooks_run(struct ev_hooks *h, struct evloop *loop);

/* The signals routed to callbacks: blocked, and read from one signalfd watched by the loop. */
struct ev_signals {
	int fd; /* -1 until the first signal */
	struct ev_io *io;
	sigset_t mask;
	struct {
		int signo;
		ev_signal_cb cb;
		void *arg;
	} v[EV_MAX_SIGNALS];
	size_t n;
};

void ev_signals_init(struct ev_signals *s);

/* Blocks @signo and calls @cb from @loop when it arrives (the signalfd is added to @loop at the
 * first call). 0, -ENOMEM when all EV_MAX_SIGNALS are taken, or -errno. */
int ev_signals_add(struct ev_signals *s, struct evloop *loop, int signo, ev_signal_cb cb,
		   void *arg);

/* Removes the signalfd from its loop and closes it (the signals stay blocked). */
void ev_signals_close(struct ev_signals *s);

#endif
