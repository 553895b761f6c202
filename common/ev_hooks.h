/*
 * ev_hooks.h - the before-sleep hooks of an event loop, shared by both backends (evloop.c on
 * epoll, evloop_su.c on sofia-sip's su_root).
 */
#ifndef RS_EV_HOOKS_H
#define RS_EV_HOOKS_H

#include "evloop.h"

#include <stddef.h>

#define EV_MAX_HOOKS 8

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

#endif
