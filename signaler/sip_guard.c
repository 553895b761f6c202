/*
 * sip_guard.c - a size bound on every SIP message sofia-sip parses (see sip_guard.h).
 */
#include "sip_guard.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <string.h>

#include <sofia-sip/msg.h>
#include <sofia-sip/msg_mclass.h>
#include <sofia-sip/sip_parser.h>

/* sofia-sip's own declaration of the function this file interposes. */
#include <sofia-sip/msg_parser.h>

typedef int (*msg_extract_fn)(msg_t *msg);

static size_t guard_max = SIP_GUARD_DEFAULT_MAX;
static atomic_uint_fast64_t guard_calls;
static atomic_uint_fast64_t guard_too_large;
static atomic_uint_fast64_t guard_malformed;

/* The library's msg_extract (the next definition after this executable's). */
static msg_extract_fn real_extract(void)
{
	static msg_extract_fn fn;

	if (!fn)
		fn = (msg_extract_fn)dlsym(RTLD_NEXT, "msg_extract");
	return fn;
}

/* Interposes sofia-sip's msg_extract(): every message gets a size limit before it is parsed. */
int msg_extract(msg_t *msg)
{
	msg_extract_fn fn = real_extract();
	unsigned before, after;
	usize_t cur;
	int ret;

	atomic_fetch_add_explicit(&guard_calls, 1, memory_order_relaxed);
	if (!fn)
		return -1; /* not linked against sofia-sip: nothing to parse with */
	if (!msg)
		return fn(msg);
	cur = msg_maxsize(msg, 0); /* 0: read without changing */
	if (cur == 0 || cur > guard_max)
		msg_maxsize(msg, guard_max);
	before = msg_get_flags(msg, MSG_FLG_TOOLARGE | MSG_FLG_ERROR);
	ret = fn(msg);
	after = msg_get_flags(msg, MSG_FLG_TOOLARGE | MSG_FLG_ERROR) & ~before;
	if (after & MSG_FLG_TOOLARGE)
		atomic_fetch_add_explicit(&guard_too_large, 1, memory_order_relaxed);
	else if (after & MSG_FLG_ERROR)
		atomic_fetch_add_explicit(&guard_malformed, 1, memory_order_relaxed);
	return ret;
}

void sip_guard_set_max(size_t max_bytes)
{
	if (max_bytes < SIP_GUARD_MIN_MAX)
		max_bytes = SIP_GUARD_MIN_MAX;
	if (max_bytes > SIP_GUARD_MAX_MAX)
		max_bytes = SIP_GUARD_MAX_MAX;
	guard_max = max_bytes;
}

size_t sip_guard_max(void)
{
	return guard_max;
}

uint64_t sip_guard_too_large(void)
{
	return atomic_load_explicit(&guard_too_large, memory_order_relaxed);
}

uint64_t sip_guard_malformed(void)
{
	return atomic_load_explicit(&guard_malformed, memory_order_relaxed);
}

bool sip_guard_check(void)
{
	static const char probe[] = "OPTIONS sip:guard@127.0.0.1 SIP/2.0\r\n"
				    "Call-ID: guard-check\r\n"
				    "CSeq: 1 OPTIONS\r\n"
				    "Content-Length: 0\r\n\r\n";
	uint64_t before = atomic_load_explicit(&guard_calls, memory_order_relaxed);
	msg_t *msg;

	if (!real_extract())
		return false;
	/* msg_make() lives in the library and calls msg_extract() there. */
	msg = msg_make(sip_default_mclass(), 0, probe, (isize_t)strlen(probe));
	msg_destroy(msg);
	return atomic_load_explicit(&guard_calls, memory_order_relaxed) != before;
}
