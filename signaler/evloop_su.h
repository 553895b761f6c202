/*
 * evloop_su.h - the evloop.h API on sofia-sip's su_root (the signaler's backend).
 *
 * signaler/evloop_su.c implements evloop.h on top of a su_root_t (what does not depend on the
 * backend is common/evloop_core.c's and common/timer_heap.c's), so that sofia-sip's own
 * transports, timers and messages run in the same thread and the same epoll set as the RTMP
 * sockets, ZeroMQ and Redis. A binary links either evloop_su.o or evloop.o (from
 * libcommon.a), never both: the Makefile links evloop_su.o ahead of the archives for the
 * signaler and for the tools and tests that use SIP.
 *
 * The root is created with threading disabled, so a nua_create() on it runs the SIP stack in
 * this thread on the same port instead of starting its own thread.
 */
#ifndef RS_EVLOOP_SU_H
#define RS_EVLOOP_SU_H

#include "evloop.h"

#include <sofia-sip/su_wait.h>

/* The su_root behind @loop; owned by the loop (valid until evloop_destroy). */
su_root_t *evloop_su_root(struct evloop *loop);

#endif
