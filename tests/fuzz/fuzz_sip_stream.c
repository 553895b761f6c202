/*
 * fuzz_sip_stream.c - libFuzzer target: a byte stream through sofia-sip's SIP message parser
 * the way its TCP transport feeds it (tport_recv_stream + tport_parse), SDP bodies through
 * signaler/sdp.c.
 *
 * Input: two bytes of framing seed, then the stream. The seed picks the size of each read (1 to
 * 2,048 bytes, sometimes everything left) and the message flags, so the same bytes arrive cut
 * in many places: a header split in its CRLF, a body in pieces, several pipelined requests in
 * one read. Per read, as the transport does: a message is created when none is pending, the
 * bytes go into the buffer msg_recv_iovec() hands out (possibly several fragments), are
 * committed, and msg_extract() runs; each complete message is "delivered" (its headers read, an
 * application/sdp body parsed with sdp_parse_desc()), and msg_next() makes the message for the
 * bytes left over. A message flagged too large or erroneous stops the stream, like the
 * transport's tp_recv_close. At the end of the input the stream ends (eos).
 *
 * Every message gets the signaler's size limit (SIP_GUARD_DEFAULT_MAX), as signaler/sip_guard.c
 * does in front of sofia's transports. With FUZZ_SIP_UNGUARDED=1 in the environment only the
 * first message of each read gets it, as sofia-sip alone does: that reproduces the pipelined
 * Content-Length crash in a few thousand runs (see docs/security.md).
 *
 * Built two ways (Makefile): against Debian's libsofia-sip-ua (fuzz smoke in `make test`: only
 * this harness and sdp.c are instrumented) and, by `make fuzz`, against a static sofia-sip built
 * from Debian's source with the fuzzer's coverage and ASan (scripts/sofia-fuzz.sh).
 */
#include "sdp.h"
#include "sip_guard.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_mclass.h>
#include <sofia-sip/msg_parser.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_parser.h>

#include "fuzz_target.h"

#define MAX_READ      2048
#define MAX_FRAGMENTS 8

struct stream {
	const uint8_t *p;
	size_t left;
	uint32_t rng;
	int flags;
	bool unguarded;
	msg_t *pending; /* the message waiting for more bytes (tport's tp_msg) */
	bool closed;	/* too large or erroneous: no more reads */
};

static msg_t *new_msg(struct stream *s)
{
	msg_t *msg = msg_create(sip_default_mclass(), s->flags);

	if (msg)
		msg_maxsize(msg, SIP_GUARD_DEFAULT_MAX); /* nta: NTATAG_MAXSIZE */
	return msg;
}

/* What the stack does with a complete message: reads its headers, parses an SDP body. Guarded,
 * no body may be over the limit. */
static void deliver(msg_t *msg, bool guarded)
{
	sip_t *sip = sip_object(msg);
	struct sdp_media_desc d;
	char why[160];
	int ret;

	if (!sip || msg_get_flags(msg, MSG_FLG_ERROR | MSG_FLG_TOOLARGE))
		return;
	if (guarded && sip->sip_content_length)
		EXPECT(!sip->sip_payload ||
		       sip->sip_payload->pl_len <= (usize_t)SIP_GUARD_DEFAULT_MAX + 1);
	if (!sip->sip_payload || !sip->sip_content_type || !sip->sip_content_type->c_type ||
	    strcasecmp(sip->sip_content_type->c_type, "application/sdp") != 0)
		return;
	ret = sdp_parse_desc(sip->sip_payload->pl_data, sip->sip_payload->pl_len, &d, why,
			     sizeof(why));
	if (ret < 0)
		EXPECT(why[0] != '\0');
	else
		EXPECT(d.n_codecs <= SDP_MAX_CODECS && d.n_mlines <= SDP_MAX_MLINES);
}

/* tport_parse(): extracts every complete message of the pending one and those after it. */
static void parse(struct stream *s, bool eos)
{
	msg_t *msg = s->pending, *next;
	int n;

	s->pending = NULL;
	for (; msg; msg = next) {
		if (!s->unguarded)
			msg_maxsize(msg, SIP_GUARD_DEFAULT_MAX); /* sip_guard.c's msg_extract */
		n = msg_extract(msg);
		if (n == 0) {
			if (!eos) {
				s->pending = msg;
				return;
			}
			msg_mark_as_complete(msg, MSG_FLG_ERROR);
			n = -1;
		}
		if (msg_get_flags(msg, MSG_FLG_TOOLARGE | MSG_FLG_ERROR))
			s->closed = true;
		next = n == -1 ? NULL : msg_next(msg);
		if (n > 0)
			deliver(msg, !s->unguarded);
		msg_destroy(msg);
	}
}

/* tport_recv_stream(): one read of @len bytes into the pending message's buffer. */
static void recv_bytes(struct stream *s, const uint8_t *bytes, size_t len)
{
	msg_iovec_t iov[MAX_FRAGMENTS];
	isize_t veclen;
	size_t done = 0;

	if (!s->pending && !(s->pending = new_msg(s))) {
		s->closed = true;
		return;
	}
	veclen = msg_recv_iovec(s->pending, iov, MAX_FRAGMENTS, len, 0);
	if (veclen < 0 || veclen > MAX_FRAGMENTS) {
		s->closed = true;
		return;
	}
	for (isize_t i = 0; i < veclen && done < len; i++) {
		size_t k = iov[i].mv_len < len - done ? iov[i].mv_len : len - done;

		memcpy(iov[i].mv_base, bytes + done, k);
		done += k;
	}
	EXPECT(done == len);
	msg_recv_commit(s->pending, len, 0);
	parse(s, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int unguarded = -1;
	struct stream s = {0};

	if (unguarded < 0) {
		const char *v = getenv("FUZZ_SIP_UNGUARDED");

		unguarded = v && v[0] == '1';
	}
	if (size < 2)
		return 0;
	s.rng = 0x9e3779b9u ^ ((uint32_t)data[0] << 8 | data[1]);
	s.flags = MSG_DO_CANONIC | ((data[0] & 0x80) ? MSG_DO_EXTRACT_COPY : 0);
	s.unguarded = unguarded == 1;
	s.p = data + 2;
	s.left = size - 2;
	while (s.left > 0 && !s.closed) {
		uint32_t r = fuzz_rand(&s.rng);
		size_t n = (r & 7) == 0 ? s.left : 1 + (r >> 8) % MAX_READ;

		if (n > s.left)
			n = s.left;
		recv_bytes(&s, s.p, n);
		s.p += n;
		s.left -= n;
	}
	if (s.pending && !s.closed) {
		msg_recv_commit(s.pending, 0, 1); /* end of stream */
		parse(&s, true);
	}
	msg_destroy(s.pending);
	return 0;
}
