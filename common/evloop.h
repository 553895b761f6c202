/*
 * evloop.h - the one event loop of a process: fd readiness, timers, signals, before-sleep hooks.
 *
 * Every daemon runs a single thread around one evloop. RTMP sockets, ZeroMQ sockets (through
 * ZMQ_FD, draining ZMQ_EVENTS in the callback), hiredis async connections and, in the
 * signaler, sofia-sip are all driven from it; nothing may block inside a callback.
 *
 * Handles (struct ev_io, struct ev_timer) are owned by the loop and released with their _del
 * function, which is safe from inside any callback, including the handle's own.
 */
#ifndef RS_EVLOOP_H
#define RS_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

struct evloop;
struct ev_io;
struct ev_timer;

enum { EV_READ = 1u << 0, EV_WRITE = 1u << 1, EV_ERROR = 1u << 2 };

typedef void (*ev_io_cb)(struct evloop *loop, struct ev_io *io, int fd, unsigned events,
			 void *arg);
typedef void (*ev_timer_cb)(struct evloop *loop, struct ev_timer *t, void *arg);
typedef void (*ev_hook_cb)(struct evloop *loop, void *arg);
typedef void (*ev_signal_cb)(struct evloop *loop, int signo, void *arg);

/* Creates a loop; NULL on failure (errno set). */
struct evloop *evloop_new(void);

/* Frees the loop and every handle still registered; NULL-safe, clears *loopp. */
void evloop_destroy(struct evloop **loopp);

/*
 * Watches @fd for @events (EV_READ|EV_WRITE). @cb gets the ready set, with EV_ERROR on
 * hang-up or error. The loop does not own @fd (the caller closes it after evloop_io_del).
 * Returns the handle, or NULL with errno set.
 */
struct ev_io *evloop_io_add(struct evloop *loop, int fd, unsigned events, ev_io_cb cb, void *arg);

/* Changes the watched events; returns 0 or a negative errno. */
int evloop_io_set(struct ev_io *io, unsigned events);

/* Events currently watched. */
unsigned evloop_io_events(const struct ev_io *io);

/* Stops watching and releases the handle; NULL-safe, clears *iop. */
void evloop_io_del(struct ev_io **iop);

/* Creates a stopped one-shot timer; NULL on ENOMEM. */
struct ev_timer *evloop_timer_new(struct evloop *loop, ev_timer_cb cb, void *arg);

/* (Re)arms @t to fire once, @ms milliseconds from now. */
void evloop_timer_start(struct ev_timer *t, uint64_t ms);

/* Disarms @t (no-op when not armed). */
void evloop_timer_stop(struct ev_timer *t);

/* True while @t is armed. */
bool evloop_timer_armed(const struct ev_timer *t);

/* Disarms and frees @t; NULL-safe, clears *tp. */
void evloop_timer_del(struct ev_timer **tp);

/* Calls @cb once per iteration, after dispatching events and before waiting. 0 or -ENOMEM. */
int evloop_before_sleep(struct evloop *loop, ev_hook_cb cb, void *arg);

/* Removes the hook added with @cb and @arg (not from inside a hook); 0 or -ENOENT. */
int evloop_before_sleep_del(struct evloop *loop, ev_hook_cb cb, void *arg);

/* Delivers @signo through the loop (signalfd) instead of an async handler. 0 or -errno. */
int evloop_signal(struct evloop *loop, int signo, ev_signal_cb cb, void *arg);

/* Monotonic milliseconds, sampled once per iteration. */
uint64_t evloop_now(const struct evloop *loop);

/* Runs until evloop_stop(); returns 0, or a negative errno if waiting failed. */
int evloop_run(struct evloop *loop);

/* Runs one iteration, waiting at most @max_wait_ms (-1: until an event or timer). */
int evloop_run_once(struct evloop *loop, int max_wait_ms);

/* Makes evloop_run() return after the current iteration. */
void evloop_stop(struct evloop *loop);

#endif
