/*
 * sip_guard.h - a size bound on every SIP message sofia-sip parses, in front of its parser.
 *
 * Why: sofia-sip 1.12.11 (Debian's libsofia-sip-ua0, and upstream to this day) crashes on one
 * TCP write holding a request followed by a pipelined request with "Content-Length: 4294967295".
 * Two defects meet there:
 *   1. msg_next() makes the message for bytes left over after a complete message on a stream
 *      with msg_create() alone, so that message has no size limit (m_maxsize 0): the
 *      NTATAG_MAXSIZE limit holds only for the first message of each read.
 *   2. msg_buf_exact() compares the room left with "(unsigned)size": a body of 2^32 bytes or
 *      more truncates to a small size, the current buffer is handed back as big enough, and
 *      msg_extract_payload() writes the body's terminating NUL 4 GB past it (SEGV on a WRITE in
 *      msg_extract_payload <- sip_extract_body <- msg_extract <- tport_recv_event).
 * Any message that carries a limit is refused at that limit before (2) is reached, so bounding
 * every message closes both.
 *
 * How: this module defines msg_extract(), the parser entry point sofia's transports call through
 * the PLT (tport_parse -> msg_extract for every message, the pipelined ones included). The
 * signaler's definition takes precedence over the library's (the executable exports it), sets
 * the size limit of a message that has none (or a larger one) and calls the library's own
 * msg_extract (dlsym RTLD_NEXT). A message over the limit is flagged too large by sofia itself:
 * it answers 400/413 where it can and stops reading that connection.
 *
 * sip_guard_check() proves at start-up that calls made inside the library reach this wrapper
 * (a library linked with -Bsymbolic or protected symbols would bypass it); sip_ua.c serves SIP
 * over UDP only when it fails.
 */
#ifndef RS_SIP_GUARD_H
#define RS_SIP_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIP_GUARD_DEFAULT_MAX 65536u
#define SIP_GUARD_MIN_MAX     4096u
#define SIP_GUARD_MAX_MAX     (2u * 1024 * 1024)

/* Sets the largest SIP message accepted, in bytes (clamped to [SIP_GUARD_MIN_MAX,
 * SIP_GUARD_MAX_MAX]); the same value should go to NTATAG_MAXSIZE. Process-wide. */
void sip_guard_set_max(size_t max_bytes);

/* The limit in force. */
size_t sip_guard_max(void);

/*
 * True when a call from inside libsofia-sip-ua to msg_extract() runs this module's wrapper:
 * parses a small message with msg_make() (which calls msg_extract through the library's PLT)
 * and checks that the wrapper saw it. Cheap; callable any time after the library is loaded.
 */
bool sip_guard_check(void);

/* Messages the parser refused since start: over the limit, and otherwise malformed (messages
 * whose parse failed: sofia answers 400 where it can, and closes a stream). */
uint64_t sip_guard_too_large(void);
uint64_t sip_guard_malformed(void);

#endif
