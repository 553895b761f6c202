/*
 * rtmp_chunk.c - RTMP chunk stream reassembly and splitting.
 *
 * Reading one chunk:
 *
 *   basic header (1-3 bytes: fmt, csid)
 *     -> message header (fmt 0: 11 bytes, 1: 7, 2: 3, 3: 0)
 *     -> extended timestamp (4 bytes, when the 24-bit field is 0xffffff; on fmt 3 chunks too)
 *     -> payload (min(chunk size, bytes left in the message))
 *     -> message complete? deliver : wait for the next chunk of that stream
 *
 * A chunk is parsed and consumed only once all its bytes (header and payload) are available.
 * A message's buffer grows with the bytes received, never with the length the peer announced,
 * so memory follows what the peer really sent.
 *
 * fmt 3 starting a new message reuses the previous header's timestamp field as its delta; after
 * a fmt 0 header that field is the absolute timestamp, as the specification's wording and the
 * common clients have it. The writer never relies on that case: it uses fmt 3 for a new message
 * only after a fmt 1 or 2 header with the same delta.
 */
#include "rtmp_chunk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_EXTENDED 0xffffffu

struct cstream {
	uint32_t csid;
	bool used;        /* a header was seen on this stream */
	bool ext;         /* the last header carried an extended timestamp */
	uint32_t ts_field; /* the last timestamp field (absolute for fmt 0, else a delta) */
	uint32_t timestamp; /* absolute timestamp of the current message */
	uint32_t len;
	uint32_t stream_id;
	uint8_t type;
	uint32_t received; /* payload bytes of the current message; 0 between messages */
	uint8_t *data;
	uint32_t cap;
};

struct rtmp_chunk_reader {
	struct rtmp_chunk_limits lim;
	uint32_t chunk_size;
	struct cstream *streams;
	unsigned n_streams;
	struct cstream *last; /* the stream whose message was delivered last (its buffer is lent) */
	char error[128];
};

struct rtmp_chunk_reader *rtmp_chunk_reader_new(const struct rtmp_chunk_limits *lim)
{
	struct rtmp_chunk_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->lim = *lim;
	if (r->lim.max_streams == 0)
		r->lim.max_streams = 1;
	r->streams = calloc(r->lim.max_streams, sizeof(*r->streams));
	if (!r->streams) {
		free(r);
		return NULL;
	}
	r->chunk_size = RTMP_DEFAULT_CHUNK_SIZE;
	return r;
}

void rtmp_chunk_reader_destroy(struct rtmp_chunk_reader **rp)
{
	struct rtmp_chunk_reader *r = rp ? *rp : NULL;

	if (!r)
		return;
	for (unsigned i = 0; i < r->n_streams; i++)
		free(r->streams[i].data);
	free(r->streams);
	free(r);
	*rp = NULL;
}

const char *rtmp_chunk_reader_error(const struct rtmp_chunk_reader *r)
{
	return r->error;
}

static int fail(struct rtmp_chunk_reader *r, int err, const char *what, unsigned long v)
{
	snprintf(r->error, sizeof(r->error), "%s (%lu)", what, v);
	return err;
}

int rtmp_chunk_reader_set_chunk_size(struct rtmp_chunk_reader *r, uint32_t size)
{
	if (size == 0 || size > RTMP_MAX_CHUNK_SIZE_PROTO)
		return fail(r, -EINVAL, "invalid chunk size", size);
	if (size > r->lim.max_chunk_size)
		return fail(r, -E2BIG, "chunk size above limit", size);
	r->chunk_size = size;
	return 0;
}

static struct cstream *find_stream(struct rtmp_chunk_reader *r, uint32_t csid)
{
	for (unsigned i = 0; i < r->n_streams; i++)
		if (r->streams[i].csid == csid)
			return &r->streams[i];
	return NULL;
}

void rtmp_chunk_reader_abort(struct rtmp_chunk_reader *r, uint32_t csid)
{
	struct cstream *cs = find_stream(r, csid);

	if (cs)
		cs->received = 0;
}

/* Makes room for @need payload bytes, growing geometrically but never past the message. */
static int grow(struct cstream *cs, uint32_t need)
{
	uint32_t cap;
	uint8_t *p;

	if (need <= cs->cap)
		return 0;
	cap = cs->cap ? cs->cap : 256;
	while (cap < need)
		cap = cap > cs->len / 2 ? cs->len : cap * 2;
	p = realloc(cs->data, cap);
	if (!p)
		return -ENOMEM;
	cs->data = p;
	cs->cap = cap;
	return 0;
}

int rtmp_chunk_read(struct rtmp_chunk_reader *r, const uint8_t *in, size_t len, size_t *used,
		    struct rtmp_msg *msg)
{
	static const uint8_t hdr_len[4] = {11, 7, 3, 0};
	size_t pos = 0;

	/* The buffer lent with the previous message may be reused now. */
	if (r->last) {
		r->last->received = 0;
		r->last = NULL;
	}
	*used = 0;
	for (;;) {
		size_t p = pos, need;
		uint32_t csid, fmt, ts_field, mlen, sid, take;
		uint8_t type;
		struct cstream *cs;
		bool new_msg, ext;
		int err;

		if (len - p < 1)
			return 0;
		fmt = in[p] >> 6;
		csid = in[p] & 0x3f;
		p++;
		if (csid == 0) {
			if (len - p < 1)
				return 0;
			csid = 64u + in[p];
			p++;
		} else if (csid == 1) {
			if (len - p < 2)
				return 0;
			csid = 64u + in[p] + 256u * in[p + 1];
			p += 2;
		}
		if (len - p < hdr_len[fmt])
			return 0;
		cs = find_stream(r, csid);
		if (!cs) {
			/*
			 * A new chunk stream normally starts with a type 0 header, but librtmp
			 * opens its acknowledgement stream (2) with type 1, and servers in use
			 * accept that: a field not seen yet on the stream starts at zero (message
			 * stream 0, timestamp base 0; for type 2, length 0). A type 3 chunk has no
			 * header at all to start from.
			 */
			if (fmt == 3)
				return fail(r, -EPROTO,
					    "type 3 chunk without a previous header on chunk stream",
					    csid);
			if (r->n_streams == r->lim.max_streams)
				return fail(r, -E2BIG, "too many chunk streams; limit",
					    r->lim.max_streams);
			cs = &r->streams[r->n_streams++];
			memset(cs, 0, sizeof(*cs));
			cs->csid = csid;
		}
		new_msg = cs->received == 0;
		if (!new_msg && fmt != 3)
			return fail(r, -EPROTO, "new message header in the middle of a message on chunk stream",
				    csid);
		if (fmt == 3 && !cs->used)
			return fail(r, -EPROTO, "type 3 chunk without a previous header on chunk stream",
				    csid);

		/* Message header, parsed into locals and committed only once the whole chunk
		 * is available, so a partial chunk leaves no trace. */
		ext = cs->ext;
		ts_field = cs->ts_field;
		mlen = cs->len;
		type = cs->type;
		sid = cs->stream_id;
		if (fmt <= 2) {
			ts_field = rd_be24(in + p);
			ext = ts_field == TS_EXTENDED;
		}
		need = hdr_len[fmt] + (ext ? 4u : 0u);
		if (ext && fmt == 3 && !new_msg) {
			/* Some clients repeat the extended timestamp on continuation chunks and
			 * some do not: take the 4 bytes only when they repeat the value. Bytes
			 * that already differ settle it, so a last chunk shorter than 4 bytes
			 * is not held back waiting for bytes the peer will never send. */
			uint8_t rep[4];
			size_t have = len - p < 4 ? len - p : 4;

			wr_be32(rep, cs->ts_field);
			if (memcmp(in + p, rep, have) != 0)
				need = 0;
		}
		if (len - p < need)
			return 0;
		if (ext && (fmt <= 2 || new_msg))
			ts_field = rd_be32(in + p + hdr_len[fmt]);
		if (fmt <= 1) {
			mlen = rd_be24(in + p + 3);
			if (mlen > r->lim.max_message)
				return fail(r, -E2BIG, "message length above limit", mlen);
			type = in[p + 6];
			if (fmt == 0)
				sid = rd_le32(in + p + 7);
		}
		p += need;

		/* Payload: the chunk is consumed only when all of it is there (the caller's
		 * input buffer holds at least one maximal chunk). */
		take = mlen - (new_msg ? 0 : cs->received);
		if (take > r->chunk_size)
			take = r->chunk_size;
		if (len - p < take)
			return 0;

		if (new_msg) {
			cs->len = mlen;
			cs->type = type;
			cs->stream_id = sid;
			cs->timestamp = fmt == 0 ? ts_field : cs->timestamp + ts_field;
		}
		cs->ts_field = ts_field;
		cs->ext = ext;
		cs->used = true;
		err = grow(cs, cs->received + take);
		if (err < 0)
			return fail(r, err, "out of memory for message of length", cs->len);
		if (take)
			memcpy(cs->data + cs->received, in + p, take);
		cs->received += take;
		p += take;
		pos = p;
		*used = pos;
		if (cs->received == cs->len) {
			msg->csid = cs->csid;
			msg->timestamp = cs->timestamp;
			msg->stream_id = cs->stream_id;
			msg->len = cs->len;
			msg->type = cs->type;
			msg->data = cs->data;
			/* Zero-length messages complete at once; keep received at 0 for them. */
			if (cs->len > 0)
				r->last = cs;
			return 1;
		}
	}
}

/* Writer. Header compression state is kept for the low chunk stream ids the server uses;
 * any other id always gets a type 0 header. */
#define WRITER_STREAMS 16

struct wstream {
	bool used;
	uint8_t last_fmt;
	uint32_t timestamp;
	uint32_t delta;
	uint32_t len;
	uint32_t stream_id;
	uint8_t type;
};

struct rtmp_chunk_writer {
	uint32_t chunk_size;
	struct wstream streams[WRITER_STREAMS];
};

struct rtmp_chunk_writer *rtmp_chunk_writer_new(void)
{
	struct rtmp_chunk_writer *w = calloc(1, sizeof(*w));

	if (w)
		w->chunk_size = RTMP_DEFAULT_CHUNK_SIZE;
	return w;
}

void rtmp_chunk_writer_destroy(struct rtmp_chunk_writer **wp)
{
	if (!wp || !*wp)
		return;
	free(*wp);
	*wp = NULL;
}

void rtmp_chunk_writer_set_chunk_size(struct rtmp_chunk_writer *w, uint32_t size)
{
	if (size >= 1 && size <= RTMP_MAX_CHUNK_SIZE_PROTO)
		w->chunk_size = size;
}

uint32_t rtmp_chunk_writer_chunk_size(const struct rtmp_chunk_writer *w)
{
	return w->chunk_size;
}

static int put_basic_header(struct buf *out, uint8_t fmt, uint32_t csid)
{
	uint8_t h[3];

	if (csid < 64) {
		h[0] = (uint8_t)(fmt << 6 | csid);
		return buf_append(out, h, 1);
	}
	if (csid < 320) {
		h[0] = (uint8_t)(fmt << 6);
		h[1] = (uint8_t)(csid - 64);
		return buf_append(out, h, 2);
	}
	h[0] = (uint8_t)(fmt << 6 | 1);
	h[1] = (uint8_t)((csid - 64) & 0xff);
	h[2] = (uint8_t)((csid - 64) >> 8);
	return buf_append(out, h, 3);
}

int rtmp_chunk_write(struct rtmp_chunk_writer *w, struct buf *out, const struct rtmp_msg *msg)
{
	struct wstream scratch = {0};
	struct wstream *ws = msg->csid < WRITER_STREAMS ? &w->streams[msg->csid] : &scratch;
	uint8_t hdr[11 + 4];
	uint8_t fmt = 0;
	uint32_t field, off = 0, delta = 0;
	size_t hlen;
	bool ext;
	int err;

	if (msg->csid < 2 || msg->csid > 65599 || msg->len > 0xffffff)
		return -EINVAL;
	if (ws->used && ws->stream_id == msg->stream_id &&
	    (int32_t)(msg->timestamp - ws->timestamp) >= 0) {
		delta = msg->timestamp - ws->timestamp;
		if (ws->len != msg->len || ws->type != msg->type)
			fmt = 1;
		else if (ws->last_fmt == 0 || delta != ws->delta)
			fmt = 2;
		else
			fmt = 3;
	}
	field = fmt == 0 ? msg->timestamp : delta;
	ext = field >= TS_EXTENDED;
	hlen = 0;
	if (fmt <= 2) {
		wr_be24(hdr, ext ? TS_EXTENDED : field);
		hlen = 3;
	}
	if (fmt <= 1) {
		wr_be24(hdr + 3, msg->len);
		hdr[6] = msg->type;
		hlen = 7;
	}
	if (fmt == 0) {
		/* The message stream id is little-endian, the one oddity of the format. */
		hdr[7] = (uint8_t)msg->stream_id;
		hdr[8] = (uint8_t)(msg->stream_id >> 8);
		hdr[9] = (uint8_t)(msg->stream_id >> 16);
		hdr[10] = (uint8_t)(msg->stream_id >> 24);
		hlen = 11;
	}
	if (ext) {
		wr_be32(hdr + hlen, field);
		hlen += 4;
	}
	err = put_basic_header(out, fmt, msg->csid);
	if (!err)
		err = buf_append(out, hdr, hlen);
	do {
		uint32_t n = msg->len - off;

		if (n > w->chunk_size)
			n = w->chunk_size;
		if (!err && off > 0) {
			err = put_basic_header(out, 3, msg->csid);
			/* Continuation chunks repeat the extended timestamp, as most readers expect. */
			if (!err && ext)
				err = buf_put_be32(out, field);
		}
		if (!err && n)
			err = buf_append(out, msg->data + off, n);
		off += n;
	} while (!err && off < msg->len);
	if (err)
		return err;
	ws->used = true;
	ws->last_fmt = fmt;
	ws->timestamp = msg->timestamp;
	ws->delta = fmt == 0 ? 0 : delta;
	ws->len = msg->len;
	ws->type = msg->type;
	ws->stream_id = msg->stream_id;
	return 0;
}
