/*
 * players.c - the clients playing one stream, with per-player timestamp rebasing.
 */
#include "players.h"

#include "codec.h"
#include "strmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct player *players_add(struct player_list *l, struct rtmp_conn *c, struct rtmp_stream *s,
			   void *owner)
{
	struct player *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->conn = c;
	p->stream = s;
	p->owner = owner;
	p->next = l->head;
	if (l->head)
		l->head->prev = p;
	l->head = p;
	s->app_data = p;
	return p;
}

void players_remove(struct player_list *l, struct player *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		l->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	free(p);
}

uint32_t player_rebase(struct player *p, uint8_t type, uint32_t ts, bool *first)
{
	unsigned k = type == RTMP_MSG_AUDIO ? 0 : type == RTMP_MSG_VIDEO ? 1 : 2;
	uint32_t out;

	*first = !p->started;
	if (!p->started) {
		p->started = true;
		p->base = ts;
		memset(p->last_ts, 0, sizeof(p->last_ts));
	}
	out = ts - p->base;
	/* A source timestamp that goes backwards (or before this player's base) is held at the last
	 * one sent of its kind: players must never see time run backwards. */
	if ((int32_t)(out - p->last_ts[k]) < 0)
		out = p->last_ts[k];
	p->last_ts[k] = out;
	return out;
}

/* True when @data (of message @type) is a codec sequence header. */
static bool is_header(uint8_t type, const uint8_t *data, uint32_t len)
{
	struct rtmp_audio ra;

	if (type == RTMP_MSG_AUDIO)
		return codec_rtmp_parse(data, len, &ra, NULL) == 0 && ra.config;
	if (type == RTMP_MSG_VIDEO) /* AVC: codec id 7, packet type 0 */
		return len >= 2 && (data[0] & 0x0f) == 7 && data[1] == 0;
	return false;
}

void players_send(struct player_list *l, uint8_t type, uint32_t ts, const uint8_t *data,
		  uint32_t len)
{
	bool header = is_header(type, data, len);
	struct buf *kept = type == RTMP_MSG_AUDIO   ? &l->audio_header
			   : type == RTMP_MSG_VIDEO ? &l->video_header
						    : NULL;

	if (header) {
		buf_reset(kept);
		if (buf_append(kept, data, len) < 0)
			buf_reset(kept); /* out of memory: late players go without */
	}
	for (struct player *p = l->head; p; p = p->next) {
		bool first, *hdr_sent = type == RTMP_MSG_AUDIO	 ? &p->audio_header
					: type == RTMP_MSG_VIDEO ? &p->video_header
								 : NULL;
		uint32_t out;

		if (type == RTMP_MSG_VIDEO && !header && !p->video_key) {
			if (len < 1 || data[0] >> 4 != 1)
				continue; /* not a key frame: nothing to start from */
			p->video_key = true;
		}
		out = player_rebase(p, type, ts, &first);
		if (first && buf_used(&l->metadata) && type != RTMP_MSG_DATA_AMF0)
			rtmp_conn_send_media(p->conn, p->stream->id, RTMP_MSG_DATA_AMF0, 0,
					     buf_head(&l->metadata), (uint32_t)buf_used(&l->metadata));
		if (hdr_sent && !*hdr_sent && !header && buf_used(kept))
			rtmp_conn_send_media(p->conn, p->stream->id, type, out, buf_head(kept),
					     (uint32_t)buf_used(kept));
		if (hdr_sent)
			*hdr_sent = true;
		rtmp_conn_send_media(p->conn, p->stream->id, type, out, data, len);
	}
}

int players_set_metadata(struct player_list *l, const uint8_t *data, uint32_t len)
{
	buf_reset(&l->metadata);
	return buf_append(&l->metadata, data, len) < 0 ? -ENOMEM : 0;
}

void players_free(struct player_list *l)
{
	buf_free(&l->metadata);
	buf_free(&l->audio_header);
	buf_free(&l->video_header);
}

void players_published(struct player_list *l)
{
	for (struct player *p = l->head; p; p = p->next) {
		p->started = false;
		p->audio_header = p->video_header = p->video_key = false;
		rtmp_conn_send_status(p->conn, p->stream->id, "status", "NetStream.Play.PublishNotify",
				      "Stream is now published.");
	}
}

void players_unpublished(struct player_list *l, const char *desc)
{
	buf_reset(&l->metadata); /* what the next source says is its own */
	buf_reset(&l->audio_header);
	buf_reset(&l->video_header);
	for (struct player *p = l->head; p; p = p->next) {
		rtmp_conn_send_status(p->conn, p->stream->id, "status",
				      "NetStream.Play.UnpublishNotify", desc);
		rtmp_conn_send_user_control(p->conn, 1, p->stream->id); /* StreamEOF */
	}
}

/* --- named slots --------------------------------------------------------------------------------
 */

void *slot_get(struct strmap **tab, unsigned buckets, const char *key, size_t size, bool create)
{
	void *obj = strmap_get(*tab, key);

	if (obj || !create)
		return obj;
	if (!*tab)
		*tab = strmap_new(buckets, 0);
	obj = calloc(1, size);
	if (!obj || !*tab || strmap_put(*tab, key, obj) < 0) {
		free(obj);
		return NULL;
	}
	return obj;
}

bool slot_in_use(const struct stream_slot *sl)
{
	return sl->publisher || sl->players.head;
}

void slot_forget(struct strmap *tab, const char *key, struct stream_slot *sl)
{
	if (strmap_get(tab, key) == sl)
		strmap_del(tab, key);
	players_free(&sl->players);
}

void slot_tell_publisher(const struct stream_slot *sl, const char *level, const char *code,
			 const char *text)
{
	if (sl->publisher && !rtmp_conn_closing(sl->publisher))
		rtmp_conn_send_status(sl->publisher, sl->pub_stream->id, level, code, text);
}
