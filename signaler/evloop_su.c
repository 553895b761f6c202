/*
 * evloop_su.c - the evloop.h API on sofia-sip's su_root (see evloop_su.h).
 *
 * One evloop iteration is one su_root_step():
 *
 *     su_root_step(tout)
 *       |
 *       +-> prepoll: [ fire due timers --> before-sleep hooks --> free dead handles
 *       |              --> arm the driver su_timer for the earliest timer ]
 *       +-> sofia messages (nua events, stack requests) and sofia timers
 *       +-> epoll_wait(tout, lowered by the su timers) --> fd callbacks
 *       +-> sofia messages and timers again; the driver timer fires due evloop timers
 *       |
 *     returns 0 when sofia has queued work: the next step does not block
 *
 * Seen as a cycle this is evloop.c's "fds -> timers -> hooks -> wait", so output queued by any
 * callback is flushed by the hooks before the loop blocks again. evloop_run() is a loop of
 * steps rather than su_root_run(): su_root_run() delivers sofia's messages (the nua events)
 * after the prepoll hook and then blocks, so anything a SIP event callback queued would wait for
 * the next wake-up; stepping, and not blocking while sofia reports pending work, closes that gap.
 *
 * fds:     su_wait_create() + su_root_register(); su_root_eventmask(); su_root_deregister().
 *          su_wait_create() forces O_NONBLOCK on the fd: the caller's flags are restored.
 * timers:  our own heap (common/timer_heap.c, shared with evloop.c) driven by ONE su_timer armed for the earliest expiry.
 *          Per-handle su_timers would not keep evloop.c's rules: su_timer_expire() loops while
 *          the first timer is due, so a callback re-arming itself for 0 ms spins, and su timers
 *          follow the wall clock while evloop_now() is monotonic.
 * signals: signalfd, registered as an ordinary fd.
 * run:     evloop_run() loops su_root_step(); evloop_stop() also calls su_root_break().
 *
 * Deletion: a deleted ev_io is deregistered from the port at once (the port stops dispatching
 * the rest of its batch when registrations change), marked dead so it is never called again,
 * and freed once no callback of ours is on the stack. A timer (re)armed during an iteration
 * fires at the earliest in the next one, so a timer re-arming itself for 0 ms cannot starve fds.
 *
 * Costs that differ from evloop.c: sofia's epoll port reads at most 4 events per wait (evloop.c
 * 256), and after a callback adds or deletes a handle it leaves the rest of the batch to the next
 * step (level-triggered, so nothing is lost): more iterations, hence more hook runs, under load.
 */
#include "evloop_su.h"
#include "ev_hooks.h"
#include "timer_heap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/su.h>


struct ev_io {
	struct evloop *loop;
	int fd;
	int index; /* su_root registration */
	unsigned events;
	bool dead;
	ev_io_cb cb;
	void *arg;
	struct ev_io *next_dead;
};

struct ev_timer {
	struct heap_node hn; /* first: the heap holds &hn */
	struct evloop *loop;
	uint64_t armed_seq; /* loop->arm_seq when armed: orders arming against iterations */
	ev_timer_cb cb;
	void *arg;
};

struct evloop {
	su_root_t *root;
	su_timer_t *driver;   /* fires when the earliest evloop timer is due */
	uint64_t driver_when; /* UINT64_MAX when the driver is not armed */
	bool stop;
	bool in_phase;	 /* inside the prepoll phase */
	bool resample;	 /* sample the clock at the next dispatch */
	bool sofia_busy; /* the last step left sofia work queued: do not block */
	unsigned depth;	 /* our callbacks on the stack: dead handles are freed at 0 */
	uint64_t now;
	struct timer_heap timers;
	size_t n_timers;
	uint64_t arm_seq;
	uint64_t iter_seq; /* arm_seq at the start of the iteration */
	struct ev_io *dead;
	struct ev_hooks hooks;
	struct ev_signals sigs;
};

static void prepoll(su_prepoll_magic_t *magic, su_root_t *root);
static void driver_fired(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg);

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void refresh_now(struct evloop *loop)
{
	if (loop->resample) {
		loop->now = mono_ms();
		loop->resample = false;
	}
}

struct evloop *evloop_new(void)
{
	struct evloop *loop = calloc(1, sizeof(*loop));
	int e;

	if (!loop)
		return NULL;
	if (su_init() != 0) {
		e = EIO;
		goto out_free;
	}
	loop->root = su_root_create(loop);
	if (!loop->root) {
		e = errno ? errno : ENOMEM;
		goto out_deinit;
	}
	/* Clones (the nua stack) share this thread and this port. */
	su_root_threading(loop->root, 0);
	loop->driver = su_timer_create(su_root_task(loop->root), 0);
	if (!loop->driver) {
		e = ENOMEM;
		goto out_root;
	}
	if (su_root_add_prepoll(loop->root, prepoll, loop) != 0) {
		e = EBUSY;
		goto out_timer;
	}
	loop->driver_when = UINT64_MAX;
	ev_signals_init(&loop->sigs);
	loop->now = mono_ms();
	return loop;

out_timer:
	su_timer_destroy(loop->driver);
out_root:
	su_root_destroy(loop->root);
out_deinit:
	su_deinit();
out_free:
	free(loop);
	errno = e;
	return NULL;
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
	/* The driver goes first: su_root_destroy() frees the timers still armed on the root. */
	su_timer_destroy(loop->driver);
	su_root_remove_prepoll(loop->root);
	su_root_destroy(loop->root);
	su_deinit();
	free(loop);
	*loopp = NULL;
}

su_root_t *evloop_su_root(struct evloop *loop)
{
	return loop->root;
}

/* fds */

static int to_su(unsigned events)
{
	return (events & EV_READ ? SU_WAIT_IN : 0) | (events & EV_WRITE ? SU_WAIT_OUT : 0);
}

static int io_ready(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
	struct ev_io *io = arg;
	struct evloop *loop = io->loop;
	int rev;
	unsigned ready = 0;

	if (io->dead)
		return 0;
	rev = su_wait_events(w, io->fd);
	if (rev & SU_WAIT_IN)
		ready |= EV_READ;
	if (rev & SU_WAIT_OUT)
		ready |= EV_WRITE;
	if (rev & (SU_WAIT_ERR | SU_WAIT_HUP))
		ready |= EV_ERROR | (io->events & EV_READ);
	refresh_now(loop);
	loop->depth++;
	io->cb(loop, io, io->fd, ready, io->arg);
	loop->depth--;
	return 0;
}

struct ev_io *evloop_io_add(struct evloop *loop, int fd, unsigned events, ev_io_cb cb, void *arg)
{
	struct ev_io *io;
	su_wait_t w;
	int flags, e;

	flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return NULL;
	io = calloc(1, sizeof(*io));
	if (!io)
		return NULL;
	io->loop = loop;
	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->arg = arg;
	su_wait_init(&w);
	/* su_wait_create() refuses an empty mask: errors and hang-ups are reported anyway. */
	if (su_wait_create(&w, fd, events ? to_su(events) : SU_WAIT_ERR) < 0) {
		e = errno;
		goto out_free;
	}
	/* ... and it sets O_NONBLOCK: the fd belongs to the caller, keep its flags. */
	if (!(flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, flags);
	errno = 0;
	io->index = su_root_register(loop->root, &w, io_ready, io, su_pri_normal);
	if (io->index <= 0) {
		e = errno ? errno : EINVAL;
		su_wait_destroy(&w);
		goto out_free;
	}
	if (!events && su_root_eventmask(loop->root, io->index, fd, 0) < 0) {
		e = errno;
		su_root_deregister(loop->root, io->index);
		goto out_free;
	}
	return io;

out_free:
	free(io);
	errno = e;
	return NULL;
}

int evloop_io_set(struct ev_io *io, unsigned events)
{
	if (io->dead)
		return -EBADF;
	if (events == io->events)
		return 0;
	if (su_root_eventmask(io->loop->root, io->index, io->fd, to_su(events)) < 0)
		return errno ? -errno : -EINVAL;
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
	/* Deregistering changes the port's registration count: it dispatches nothing more from
	 * the batch in progress, so this handle's queued event is dropped. */
	su_root_deregister(io->loop->root, io->index);
	io->dead = true;
	io->next_dead = io->loop->dead;
	io->loop->dead = io;
}

/* Arms the driver su_timer for @when (monotonic ms), at least @min_ms from now. */
static void driver_arm(struct evloop *loop, uint64_t when, uint64_t min_ms)
{
	uint64_t now = mono_ms(), ms = when > now ? when - now : 0;

	if (ms < min_ms)
		ms = min_ms;
	if (ms > 3600000u)
		ms = 3600000u;
	if (su_timer_set_interval(loop->driver, driver_fired, loop, (su_duration_t)ms) == 0)
		loop->driver_when = when;
	else
		loop->driver_when = UINT64_MAX;
}

static void driver_sync(struct evloop *loop, uint64_t min_ms)
{
	if (!timer_heap_top(&loop->timers)) {
		if (loop->driver_when != UINT64_MAX)
			su_timer_reset(loop->driver);
		loop->driver_when = UINT64_MAX;
		return;
	}
	driver_arm(loop, timer_heap_top(&loop->timers)->when, min_ms);
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
	/* Armed from a sofia callback (between the prepoll and the wait): bring the driver
	 * forward so the wait does not overshoot. The prepoll re-arms it anyway. */
	if (!loop->in_phase && t->hn.when < loop->driver_when)
		driver_arm(loop, t->hn.when, 0);
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

/* Fires the due timers armed before this iteration began. */
static void fire_timers(struct evloop *loop)
{
	uint64_t now = loop->now, seq = loop->iter_seq;

	loop->depth++;
	for (;;) {
		struct ev_timer *t = (struct ev_timer *)timer_heap_top(&loop->timers);

		if (!t || t->hn.when > now || t->armed_seq > seq)
			break;
		timer_heap_remove(&loop->timers, &t->hn);
		t->cb(loop, t, t->arg);
	}
	loop->depth--;
}

static void driver_fired(su_root_magic_t *magic, su_timer_t *st, su_timer_arg_t *arg)
{
	struct evloop *loop = arg;

	loop->driver_when = UINT64_MAX;
	loop->resample = true;
	refresh_now(loop);
	fire_timers(loop);
	/* Normally the next prepoll re-arms the driver; this covers su_root_run() and nested
	 * steps. At least 1 ms: su_timer_expire() re-runs a timer that is due "now". */
	if (!loop->in_phase)
		driver_sync(loop, 1);
}

/* The prepoll hook: the evloop part of every su_root_step(). */
static void prepoll(su_prepoll_magic_t *magic, su_root_t *root)
{
	struct evloop *loop = magic;

	if (loop->in_phase)
		return;
	loop->in_phase = true;
	loop->now = mono_ms();
	loop->iter_seq = loop->arm_seq;
	fire_timers(loop);
	loop->depth++;
	ev_hooks_run(&loop->hooks, loop);
	loop->depth--;
	if (loop->depth == 0)
		free_dead(loop);
	driver_sync(loop, 0);
	loop->resample = true;
	loop->in_phase = false;
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

int evloop_run_once(struct evloop *loop, int max_wait_ms)
{
	su_duration_t tout = max_wait_ms < 0 ? SU_DURATION_MAX : (su_duration_t)max_wait_ms;

	/* A step returns 0 while sofia has messages queued; such a step's callbacks may have
	 * queued output that only the next prepoll flushes, so do not block now. */
	if (loop->sofia_busy)
		tout = 0;
	loop->sofia_busy = su_root_step(loop->root, tout) == 0;
	if (loop->depth == 0)
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
	su_root_break(loop->root);
}
