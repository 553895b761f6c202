/*
 * wire_video.h - RTMP video messages on the media socket, cut into MEDIA pieces and put together
 * again (docs/protocol.md, "Video legs").
 *
 * One MEDIA payload holds at most WIRE_MAX_PAYLOAD bytes, an RTMP video message (a key frame)
 * far more. A video leg's MEDIA payload is therefore one piece of one message:
 *
 *     +-------------------+-----------------------------+
 *     | u32 offset (BE)   | up to WIRE_VIDEO_PIECE_MAX  |   flag WIRE_MEDIA_F_MORE on every
 *     +-------------------+-----------------------------+   piece but the last; all carry the
 *                                                            message's timestamp
 *
 * The receiver appends a piece only at the offset it has reached, so a piece lost on the way
 * (a full queue drops whole batches) drops that message, never splices two. Messages are
 * bounded by WIRE_VIDEO_MAX_MESSAGE.
 */
#ifndef RS_WIRE_VIDEO_H
#define RS_WIRE_VIDEO_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_VIDEO_PIECE_HDR   4
#define WIRE_VIDEO_PIECE_MAX   (WIRE_MAX_PAYLOAD - WIRE_VIDEO_PIECE_HDR)
#define WIRE_VIDEO_MAX_MESSAGE (1u << 20) /* 1 MiB: a 1080p key frame at a high rate fits */

/* Receives one piece: @payload (offset + bytes) of @len bytes and its MEDIA @flags. */
typedef int (*wire_video_piece_fn)(void *arg, const uint8_t *payload, size_t len, uint8_t flags);

/*
 * Cuts @msg (@len bytes, 1..WIRE_VIDEO_MAX_MESSAGE) into pieces, in order, through @fn; stops
 * at the first error @fn returns. 0, -EINVAL (empty), -E2BIG (too long), or @fn's error.
 */
int wire_video_split(const uint8_t *msg, size_t len, wire_video_piece_fn fn, void *arg);

/* Puts the pieces of one leg's messages together. Zero it to start; wire_video_asm_free(). */
struct wire_video_asm {
	uint8_t *buf;
	size_t len, cap;
	uint32_t ts;	  /* the message being assembled */
	bool open;	  /* a message is being assembled */
	uint64_t dropped; /* messages dropped: a piece out of place, too long, no memory */
};

/*
 * Adds one MEDIA payload of a video leg (timestamp @ts, @flags). Returns 1 when a message is
 * complete: *msg and *msglen give it (valid until the next call: into @payload when it came
 * whole, else into the assembly buffer); 0 when more pieces are needed; -EBADMSG (shorter
 * than the offset, or a piece not at the offset reached, or of another timestamp: what was
 * assembled is dropped and counted), -E2BIG (beyond WIRE_VIDEO_MAX_MESSAGE), -ENOMEM.
 */
int wire_video_asm_add(struct wire_video_asm *a, uint32_t ts, uint8_t flags, const uint8_t *payload,
		       size_t len, const uint8_t **msg, size_t *msglen);

/* Frees the buffer; @a can be used again. */
void wire_video_asm_free(struct wire_video_asm *a);

#endif
