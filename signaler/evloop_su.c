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
 * timers:  common/timer_heap.c's, shared with evloop.c, driven by ONE su_timer armed for the
 *          earliest expiry.
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
#include "evloop_core.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/su.h>

struct evloop {
	struct ev_core c; /* first: ev_core() */
	su_root_t *root;
	su_timer_t *driver;   /* fires when the earliest evloop timer is due */
	uint64_t driver_when; /* UINT64_MAX when the driver is not armed */
	bool in_phase;	      /* inside the prepoll phase */
	bool resample;	      /* sample the clock at the next dispatch */
	bool sofia_busy;      /* the last step left sofia work queued: do not block */
	unsigned depth;	      /* our callbacks on the stack: dead handles are freed at 0 */
	uint64_t iter_seq;    /* c.timers.arm_seq at the start of the iteration */
};

static void prepoll(su_prepoll_magic_t *magic, su_root_t *root);
static void driver_fired(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg);

static void refresh_now(struct evloop *loop)
{
	if (loop->resample) {
		loop->c.now = ev_mono_ms();
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
	ev_core_init(&loop->c);
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

void evloop_destroy(struct evloop **loopp)
{
	struct evloop *loop = loopp ? *loopp : NULL;

	if (!loop)
		return;
	ev_core_fini(&loop->c);
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
	io = ev_io_new(loop, fd, events, cb, arg);
	if (!io)
		return NULL;
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

void evloop_io_del(struct ev_io **iop)
{
	struct ev_io *io = ev_io_take(iop);

	if (!io)
		return;
	/* Deregistering changes the port's registration count: it dispatches nothing more from
	 * the batch in progress, so this handle's queued event is dropped. */
	su_root_deregister(io->loop->root, io->index);
	ev_io_bury(io);
}

/* Arms the driver su_timer for @when (monotonic ms), at least @min_ms from now. */
static void driver_arm(struct evloop *loop, uint64_t when, uint64_t min_ms)
{
	uint64_t now = ev_mono_ms(), ms = when > now ? when - now : 0;

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
	uint64_t next = timer_set_next(&loop->c.timers);

	if (next == UINT64_MAX) {
		if (loop->driver_when != UINT64_MAX)
			su_timer_reset(loop->driver);
		loop->driver_when = UINT64_MAX;
		return;
	}
	driver_arm(loop, next, min_ms);
}

void evloop_timer_armed_at(struct evloop *loop, uint64_t when)
{
	/* Armed from a sofia callback (between the prepoll and the wait): bring the driver
	 * forward so the wait does not overshoot. The prepoll re-arms it anyway. */
	if (!loop->in_phase && when < loop->driver_when)
		driver_arm(loop, when, 0);
}

/* Fires the due timers armed before this iteration began. */
static void fire_timers(struct evloop *loop)
{
	loop->depth++;
	timer_set_fire(&loop->c.timers, loop->c.now, loop->iter_seq);
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
	loop->c.now = ev_mono_ms();
	loop->iter_seq = loop->c.timers.arm_seq;
	fire_timers(loop);
	loop->depth++;
	ev_hooks_run(&loop->c.hooks, loop);
	loop->depth--;
	if (loop->depth == 0)
		ev_core_free_dead(&loop->c);
	driver_sync(loop, 0);
	loop->resample = true;
	loop->in_phase = false;
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
		ev_core_free_dead(&loop->c);
	return 0;
}

void evloop_stop(struct evloop *loop)
{
	loop->c.stop = true;
	su_root_break(loop->root);
}
