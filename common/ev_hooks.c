/*
 * ev_hooks.c - before-sleep hooks of the event loop backends.
 */
#include "ev_hooks.h"

#include <errno.h>
#include <string.h>

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
