/*
 * timer_heap.h - the min-heap of armed timers ordered by expiry, shared by both event loop
 * backends (evloop.c on epoll, signaler/evloop_su.c on sofia-sip's su_root).
 *
 * A timer embeds a struct heap_node as its FIRST member; the heap holds pointers to the nodes
 * and keeps each node's index so a timer can be moved or removed in O(log n).
 */
#ifndef RS_TIMER_HEAP_H
#define RS_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
