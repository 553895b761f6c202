/*
 * rtmp_chunk.h - the RTMP chunk stream layer: reassembling messages from chunks and splitting
 * messages into chunks.
 *
 * The reader is fed from the connection's input buffer and never allocates more than the bytes
 * the peer actually sent, bounded by the limits given at creation. The writer compresses headers
 * (types 1-3) where that is unambiguous for every known client.
 */
#ifndef RS_RTMP_CHUNK_H
#define RS_RTMP_CHUNK_H

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>

#define RTMP_DEFAULT_CHUNK_SIZE 128
#define RTMP_MAX_CHUNK_SIZE_PROTO 0x7fffffffu /* what the wire can express */

/* Message types. */
enum rtmp_msg_type {
	RTMP_MSG_SET_CHUNK_SIZE = 1,
	RTMP_MSG_ABORT = 2,
	RTMP_MSG_ACK = 3,
	RTMP_MSG_USER_CONTROL = 4,
	RTMP_MSG_WINDOW_ACK_SIZE = 5,
	RTMP_MSG_SET_PEER_BW = 6,
	RTMP_MSG_AUDIO = 8,
	RTMP_MSG_VIDEO = 9,
	RTMP_MSG_DATA_AMF3 = 15,
	RTMP_MSG_SHARED_OBJECT_AMF3 = 16,
	RTMP_MSG_COMMAND_AMF3 = 17,
	RTMP_MSG_DATA_AMF0 = 18,
	RTMP_MSG_SHARED_OBJECT_AMF0 = 19,
	RTMP_MSG_COMMAND_AMF0 = 20,
	RTMP_MSG_AGGREGATE = 22,
};

/* Chunk stream ids the server uses when sending. */
enum {
	RTMP_CSID_CONTROL = 2,
	RTMP_CSID_COMMAND = 3,
	RTMP_CSID_AUDIO = 4,
	RTMP_CSID_VIDEO = 6,
	RTMP_CSID_DATA = 5,
};

struct rtmp_msg {
	uint32_t csid;
	uint32_t timestamp; /* absolute, milliseconds, wraps at 2^32 */
	uint32_t stream_id;
	uint32_t len;
	uint8_t type;
	const uint8_t *data; /* reader: valid until the next rtmp_chunk_read() call */
};

struct rtmp_chunk_limits {
	uint32_t max_chunk_size; /* largest Set Chunk Size accepted from the peer */
	uint32_t max_message;    /* largest message length accepted */
	unsigned max_streams;    /* distinct chunk stream ids per connection */
};

struct rtmp_chunk_reader;

/* Creates a reader with the peer's chunk size at the default 128. NULL on ENOMEM. */
struct rtmp_chunk_reader *rtmp_chunk_reader_new(const struct rtmp_chunk_limits *lim);

/* Frees the reader and any partial messages; NULL-safe, clears *rp. */
void rtmp_chunk_reader_destroy(struct rtmp_chunk_reader **rp);

/*
 * Parses chunks from @in (@len bytes) until one message is complete. Sets *used to the bytes
 * consumed (an incomplete chunk header is left unconsumed: call again with more bytes).
 * Returns 1 with *msg filled when a message is complete, 0 when more input is needed, or a
 * negative errno when the peer broke the protocol or a limit (-E2BIG, -EPROTO, -ENOMEM);
 * rtmp_chunk_reader_error() then says why. After an error the reader must not be fed again.
 */
int rtmp_chunk_read(struct rtmp_chunk_reader *r, const uint8_t *in, size_t len, size_t *used,
		    struct rtmp_msg *msg);

/* Applies the peer's Set Chunk Size; returns 0, -EINVAL for 0 or a set top bit, -E2BIG above
 * the limit. */
int rtmp_chunk_reader_set_chunk_size(struct rtmp_chunk_reader *r, uint32_t size);

/* Drops the partial message on chunk stream @csid (the Abort message). */
void rtmp_chunk_reader_abort(struct rtmp_chunk_reader *r, uint32_t csid);

/* Why the last read failed. */
const char *rtmp_chunk_reader_error(const struct rtmp_chunk_reader *r);

struct rtmp_chunk_writer;

/* Creates a writer with our chunk size at the default 128. NULL on ENOMEM. */
struct rtmp_chunk_writer *rtmp_chunk_writer_new(void);

/* NULL-safe, clears *wp. */
void rtmp_chunk_writer_destroy(struct rtmp_chunk_writer **wp);

/* Sets the chunk size used for messages written from now on (the caller sends the Set Chunk
 * Size message first). @size must be 1..0x7fffffff. */
void rtmp_chunk_writer_set_chunk_size(struct rtmp_chunk_writer *w, uint32_t size);

uint32_t rtmp_chunk_writer_chunk_size(const struct rtmp_chunk_writer *w);

/*
 * Appends @msg (csid 2..65599, timestamp absolute, len at most 0xffffff; data may be NULL when
 * len is 0) as chunks to @out. Returns 0, -EINVAL for a bad csid or length, or -ENOMEM. On
 * -ENOMEM @out may hold part of the message: the connection must close.
 */
int rtmp_chunk_write(struct rtmp_chunk_writer *w, struct buf *out, const struct rtmp_msg *msg);

#endif
