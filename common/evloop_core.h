/*
 * evloop_core.h - the parts of an event loop shared by both backends (evloop.c on epoll,
 * signaler/evloop_su.c on sofia-sip's su_root): the fd handle, the clock, the timers
 * (timer_heap.c), before-sleep hooks, signals on one signalfd, and the list of deleted handles.
 * evloop.h's functions that do not depend on the backend are defined here, once.
 *
 * A backend's struct evloop begins with a struct ev_core (its FIRST member), so that ev_core()
 * finds it; the backend defines the rest of evloop.h and evloop_timer_armed_at().
 */
#ifndef RS_EVLOOP_CORE_H
#define RS_EVLOOP_CORE_H

#include "evloop.h"
#include "timer_heap.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* --- the core of a loop ----------------------------------------------------------------------- */

struct ev_io {
	struct evloop *loop;
	int fd;
	int index; /* su_root registration (evloop_su.c only) */
	unsigned events;
	bool dead;
	ev_io_cb cb;
	void *arg;
	struct ev_io *next_dead;
};

struct ev_core {
	uint64_t now; /* evloop_now(): monotonic ms, sampled by the backend */
	bool stop;
	struct timer_set timers;
	struct ev_io *dead; /* deleted handles, freed by ev_core_free_dead() */
	struct ev_hooks hooks;
	struct ev_signals sigs;
};

/* The core of @loop (the first member of every backend's struct evloop). */
static inline struct ev_core *ev_core(struct evloop *loop)
{
	return (struct ev_core *)(void *)loop;
}

/* CLOCK_MONOTONIC in ms. */
uint64_t ev_mono_ms(void);

/* Sets up @c (no signals yet, the clock read now); ev_core_fini() releases it. */
void ev_core_init(struct ev_core *c);
void ev_core_fini(struct ev_core *c);

/* A new handle of @loop for @fd, not yet registered with the backend; NULL on ENOMEM. */
struct ev_io *ev_io_new(struct evloop *loop, int fd, unsigned events, ev_io_cb cb, void *arg);

/* The live handle *@iop (NULL when there is none or it is dead already), clearing *@iop: what
 * evloop_io_del() deregisters from the backend and then buries. */
struct ev_io *ev_io_take(struct ev_io **iop);

/* Marks @io dead (its callback is never called again) and queues it to be freed by
 * ev_core_free_dead() once no callback is on the stack; the backend has deregistered it. */
void ev_io_bury(struct ev_io *io);

/* Frees the handles deleted so far. */
void ev_core_free_dead(struct ev_core *c);

#endif
