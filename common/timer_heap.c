/*
 * timer_heap.c - a binary min-heap of timer nodes ordered by expiry.
 */
#include "timer_heap.h"

#include <errno.h>
#include <stdlib.h>

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
