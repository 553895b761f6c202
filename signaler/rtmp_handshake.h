/*
 * rtmp_handshake.h - the server side of the RTMP handshake (C0 C1 C2 / S0 S1 S2), bytes in,
 * bytes out: no sockets, no logging (the caller logs with its session id).
 *
 * Two variants are answered:
 *   - simple: C1 bytes 4..7 are zero; S1 is our time + zero + random, S2 is C1 verbatim.
 *   - digest (Flash Player 9+, ffmpeg, librtmp with SWF verification): C1 carries an
 *     HMAC-SHA256 digest keyed with "Genuine Adobe Flash Player 001"; S1 carries ours keyed with
 *     "Genuine Adobe Flash Media Server 001", placed with the client's scheme, and S2 ends with a
 *     signature the client checks.
 * A C1 with a non-zero version but no valid digest gets the simple answer (not an error).
 * RTMPE/RTMPTE (C0 6, 8, 9) and any C0 other than 3 are refused.
 *
 * Digest schemes, named as in the Adobe/SRS write-ups (librtmp numbers them the other way):
 *   scheme 0: digest offset = (p[772] + p[773] + p[774] + p[775]) % 728 + 776
 *   scheme 1: digest offset = (p[8] + p[9] + p[10] + p[11]) % 728 + 12
 */
#ifndef RS_RTMP_HANDSHAKE_H
#define RS_RTMP_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Size of C1, C2, S1 and S2. */
#define RTMP_HS_SIZE 1536
/* What rtmp_hs_feed() appends once C0+C1 are in: S0 + S1 + S2. */
#define RTMP_HS_REPLY_SIZE (1 + 2 * RTMP_HS_SIZE)

struct rtmp_hs;

/* Creates a server handshake waiting for C0. Returns NULL on ENOMEM. The caller owns it. */
struct rtmp_hs *rtmp_hs_new(void);

/* Frees @*hsp (NULL or *hsp == NULL is fine) and sets *hsp to NULL. */
void rtmp_hs_destroy(struct rtmp_hs **hsp);

/*
 * Feeds @len received bytes at @in (borrowed; in may be NULL when len is 0). Input may come in
 * any fragmentation, one byte at a time included; at most C0 + C1 + C2 = 3073 bytes are ever
 * consumed and at most 1536 are held.
 * *used is set to the number of bytes consumed: bytes after C2 are NOT consumed, they are the
 * start of the chunk stream and stay with the caller.
 * S0+S1+S2 (RTMP_HS_REPLY_SIZE bytes) are appended to @out (caller's buffer) in the call that
 * completes C1, and nothing else is ever appended.
 * Returns 0 while more input is needed, 1 once C2 has been received (and on every later call,
 * consuming nothing), or a negative errno:
 *   -EPROTONOSUPPORT  C0 is not 3 (RTMPE 6/8/9, or an unknown version; see rtmp_hs_error())
 *   -ENOMEM           S0S1S2 could not be appended; nothing was appended, the state is kept and
 *                     a later call (len 0 is fine) retries
 *   -EIO              OpenSSL failed (random or HMAC)
 *   -EINVAL           NULL @hs, @used or @out, or NULL @in with len > 0
 * Except for -ENOMEM and -EINVAL, an error is final: later calls return it again and consume
 * nothing.
 */
int rtmp_hs_feed(struct rtmp_hs *hs, const uint8_t *in, size_t len, size_t *used, struct buf *out);

/* Human-readable reason of the last error, for the log; "" when there was none. Owned by @hs. */
const char *rtmp_hs_error(const struct rtmp_hs *hs);

/* True once C2 has been received. */
bool rtmp_hs_done(const struct rtmp_hs *hs);

/* True when the client's C1 carried a valid digest and we answered with the digest variant;
 * false for the simple variant (also when C1 had a version but no valid digest). Meaningful once
 * S0S1S2 have been produced. */
bool rtmp_hs_is_digest(const struct rtmp_hs *hs);

/* Digest scheme the client used (0 or 1, see the top of this file), -1 for the simple variant. */
int rtmp_hs_digest_scheme(const struct rtmp_hs *hs);

/* C1 bytes 0..3: the client's epoch (big endian). 0 before C1 is complete. */
uint32_t rtmp_hs_client_epoch(const struct rtmp_hs *hs);

/* C1 bytes 4..7 as a big-endian number, e.g. 0x09007c02 for Flash Player 9.0.124.2; 0 for the
 * simple variant. Lets the caller log "version set but no digest → simple handshake". */
uint32_t rtmp_hs_client_version(const struct rtmp_hs *hs);

/* True when C2 was what a strict client sends: in digest mode, its last 32 bytes are the
 * signature keyed from our S1 digest; in simple mode, its bytes 8.. echo S1's random bytes.
 * A false value is not an error (many clients are lax, ffmpeg publishing echoes S1 even after a
 * digest C1): it is only worth a debug log line. Meaningful once rtmp_hs_done(). */
bool rtmp_hs_c2_verified(const struct rtmp_hs *hs);

/*
 * Client side, for the unit tests, the fuzz seeds and the test tools.
 */

/* Appends C0 (3) + C1 to @out and copies C1 to @c1. @digest: a Flash Player 9 style C1
 * (version 9.0.124.2, digest placed with @scheme 0 or 1); otherwise a simple C1 (bytes 4..7
 * zero). Returns 0, -EINVAL for a bad @scheme or NULL pointers, -ENOMEM, -EIO. */
int rtmp_hs_client_c0c1(struct buf *out, bool digest, int scheme, uint8_t c1[RTMP_HS_SIZE]);

/*
 * Checks the server's S0 S1 S2 (@s, @len >= RTMP_HS_REPLY_SIZE bytes) against the C1 we sent,
 * the way ffmpeg and librtmp do, then appends our C2 to @c2_out.
 *  - C1 with a digest and S1 with a non-zero version: S1's digest must validate with the FMS key
 *    in scheme 0 or 1 (*server_scheme is set to it), and S2's last 32 bytes must be
 *    HMAC(HMAC(FMS key + 32 fixed bytes, our C1 digest), S2[0..1503]). C2 = random bytes signed
 *    with HMAC(HMAC(FP key + 32 fixed bytes, S1 digest), C2[0..1503]).
 *  - otherwise: S2 must echo C1 (time and random; bytes 4..7 may differ); C2 = copy of S1, and
 *    *server_scheme = -1.
 * @server_scheme may be NULL. Returns 0, -EINVAL (short input or NULL pointers), -EPROTO (S0 is
 * not 3, or a check failed), -ENOMEM, -EIO.
 */
int rtmp_hs_client_finish(const uint8_t c1[RTMP_HS_SIZE], const uint8_t *s, size_t len,
			  int *server_scheme, struct buf *c2_out);

#endif
