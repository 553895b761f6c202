/*
 * timer_heap.h - the timers of both event loop backends (evloop.c on epoll, signaler/evloop_su.c
 * on sofia-sip's su_root): evloop.h's evloop_timer_* functions are implemented once, in
 * timer_heap.c, on a min-heap of armed timers ordered by expiry.
 *
 * A backend's loop holds a struct timer_set (in its struct ev_core, evloop_core.h), defines
 * evloop_timer_armed_at() below, and calls timer_set_fire() once an iteration.
 *
 * A timer embeds a struct heap_node as its FIRST member; the heap holds pointers to the nodes
 * and keeps each node's index so a timer can be moved or removed in O(log n).
 */
#ifndef RS_TIMER_HEAP_H
#define RS_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;

struct heap_node {
	uint64_t when; /* expiry, monotonic ms */
	size_t idx;    /* position in the heap, SIZE_MAX when not in it */
};

struct timer_heap {
	struct heap_node **v;
	size_t len, cap;
};

/* Makes room for @n nodes so that timer_heap_set() cannot fail; 0 or -ENOMEM. */
int timer_heap_reserve(struct timer_heap *h, size_t n);

/* Puts @node in the heap at @when, or moves it there when it is in already. The caller has
 * reserved room for every node it may insert. */
void timer_heap_set(struct timer_heap *h, struct heap_node *node, uint64_t when);

/* Takes @node out (no-op when it is not in). */
void timer_heap_remove(struct timer_heap *h, struct heap_node *node);

/* The earliest node, or NULL. */
static inline struct heap_node *timer_heap_top(const struct timer_heap *h)
{
	return h->len ? h->v[0] : NULL;
}

static inline bool heap_node_armed(const struct heap_node *node)
{
	return node->idx != SIZE_MAX;
}

/* Marks every node out and frees the array. */
void timer_heap_free(struct timer_heap *h);

/* --- the loop's timers ------------------------------------------------------------------------ */

struct timer_set {
	struct timer_heap heap;
	size_t n;	  /* timers alive: the heap always has room for all of them */
	uint64_t arm_seq; /* counts the armings: orders them against iterations */
};

/* Defined by the backend: a timer of @loop was armed for @when (evloop_now() based), e.g. to
 * wake an earlier wait. */
void evloop_timer_armed_at(struct evloop *loop, uint64_t when);

/*
 * Fires, earliest first, the timers of @ts due at @now that were armed before @seq was taken
 * from ts->arm_seq (at the start of the pass or iteration): a timer (re)armed by a callback waits
 * for the next one, even when due "now", so a timer re-arming itself for 0 ms cannot starve fds.
 */
void timer_set_fire(struct timer_set *ts, uint64_t now, uint64_t seq);

/* The earliest expiry of @ts, UINT64_MAX when no timer is armed. */
uint64_t timer_set_next(const struct timer_set *ts);

/* Frees the heap; the timers themselves are their owners' to delete. */
void timer_set_free(struct timer_set *ts);

#endif
