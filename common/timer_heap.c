/*
 * timer_heap.c - a binary min-heap of timer nodes ordered by expiry, and on it the event loops'
 * timers (evloop_timer_*), for both backends.
 */
#include "timer_heap.h"
#include "evloop_core.h"

#include <errno.h>
#include <stdlib.h>

struct ev_timer {
	struct heap_node hn; /* first: the heap holds &hn */
	struct evloop *loop;
	struct timer_set *set;
	uint64_t armed_seq; /* set->arm_seq when armed: orders arming against iterations */
	ev_timer_cb cb;
	void *arg;
};

static void swap(struct timer_heap *h, size_t a, size_t b)
{
	struct heap_node *t = h->v[a];

	h->v[a] = h->v[b];
	h->v[b] = t;
	h->v[a]->idx = a;
	h->v[b]->idx = b;
}

static void up(struct timer_heap *h, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->v[parent]->when <= h->v[i]->when)
			break;
		swap(h, i, parent);
		i = parent;
	}
}

static void down(struct timer_heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;

		if (l < h->len && h->v[l]->when < h->v[min]->when)
			min = l;
		if (r < h->len && h->v[r]->when < h->v[min]->when)
			min = r;
		if (min == i)
			break;
		swap(h, i, min);
		i = min;
	}
}

int timer_heap_reserve(struct timer_heap *h, size_t n)
{
	struct heap_node **v;
	size_t cap;

	if (n <= h->cap)
		return 0;
	cap = h->cap ? h->cap * 2 : 64;
	while (cap < n)
		cap *= 2;
	v = realloc(h->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

void timer_heap_set(struct timer_heap *h, struct heap_node *node, uint64_t when)
{
	node->when = when;
	if (node->idx != SIZE_MAX) {
		down(h, node->idx);
		up(h, node->idx);
		return;
	}
	node->idx = h->len++;
	h->v[node->idx] = node;
	up(h, node->idx);
}

void timer_heap_remove(struct timer_heap *h, struct heap_node *node)
{
	size_t i = node->idx;

	if (i == SIZE_MAX)
		return;
	h->len--;
	if (i != h->len) {
		h->v[i] = h->v[h->len];
		h->v[i]->idx = i;
		down(h, i);
		up(h, i);
	}
	node->idx = SIZE_MAX;
}

void timer_heap_free(struct timer_heap *h)
{
	for (size_t i = 0; i < h->len; i++)
		h->v[i]->idx = SIZE_MAX;
	free(h->v);
	h->v = NULL;
	h->len = h->cap = 0;
}

/* --- the loop's timers ------------------------------------------------------------------------ */

struct ev_timer *evloop_timer_new(struct evloop *loop, ev_timer_cb cb, void *arg)
{
	struct timer_set *ts = &ev_core(loop)->timers;
	struct ev_timer *t;

	if (timer_heap_reserve(&ts->heap, ts->n + 1) < 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	ts->n++;
	t->loop = loop;
	t->set = ts;
	t->hn.idx = SIZE_MAX;
	t->cb = cb;
	t->arg = arg;
	return t;
}

void evloop_timer_start(struct ev_timer *t, uint64_t ms)
{
	uint64_t when = evloop_now(t->loop) + ms;

	t->armed_seq = ++t->set->arm_seq;
	/* evloop_timer_new() reserved a heap slot for every timer: this cannot fail. */
	timer_heap_set(&t->set->heap, &t->hn, when);
	evloop_timer_armed_at(t->loop, when);
}

void evloop_timer_stop(struct ev_timer *t)
{
	if (t)
		timer_heap_remove(&t->set->heap, &t->hn);
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
	t->set->n--;
	free(t);
	*tp = NULL;
}

void timer_set_fire(struct timer_set *ts, uint64_t now, uint64_t seq)
{
	for (;;) {
		struct ev_timer *t = (struct ev_timer *)timer_heap_top(&ts->heap);

		if (!t || t->hn.when > now || t->armed_seq > seq)
			break;
		timer_heap_remove(&ts->heap, &t->hn);
		t->cb(t->loop, t, t->arg);
	}
}

uint64_t timer_set_next(const struct timer_set *ts)
{
	const struct heap_node *top = timer_heap_top(&ts->heap);

	return top ? top->when : UINT64_MAX;
}

void timer_set_free(struct timer_set *ts)
{
	timer_heap_free(&ts->heap);
}
