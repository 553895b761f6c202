/*
 * players.c - the clients playing one stream, with per-player timestamp rebasing.
 */
#include "players.h"

#include "codec.h"

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

uint32_t player_rebase(struct player *p, uint32_t ts, bool *first)
{
	uint32_t out;

	*first = !p->started;
	if (!p->started) {
		p->started = true;
		p->base = ts;
		p->last_ts = 0;
	}
	out = ts - p->base;
	/* A source timestamp that goes backwards (or before this player's base) is held at the last
	 * one sent: players must never see time run backwards. */
	if ((int32_t)(out - p->last_ts) < 0)
		out = p->last_ts;
	p->last_ts = out;
	return out;
}

void players_send(struct player_list *l, uint8_t type, uint32_t ts, const uint8_t *data,
		  uint32_t len)
{
	struct rtmp_audio ra;
	bool seq = false;

	if (type == RTMP_MSG_AUDIO && codec_rtmp_parse(data, len, &ra, NULL) == 0 && ra.config) {
		seq = true;
		l->seq_len = 0;
		if (len <= sizeof(l->seq)) {
			memcpy(l->seq, data, len);
			l->seq_len = (uint8_t)len;
		}
	}
	for (struct player *p = l->head; p; p = p->next) {
		bool first;
		uint32_t out = player_rebase(p, ts, &first);

		if (first && !seq && l->seq_len && type == RTMP_MSG_AUDIO)
			rtmp_conn_send_media(p->conn, p->stream->id, type, out, l->seq, l->seq_len);
		rtmp_conn_send_media(p->conn, p->stream->id, type, out, data, len);
	}
}

void players_published(struct player_list *l)
{
	l->seq_len = 0; /* the new source sends its own */
	for (struct player *p = l->head; p; p = p->next) {
		p->started = false;
		rtmp_conn_send_status(p->conn, p->stream->id, "status", "NetStream.Play.PublishNotify",
				      "Stream is now published.");
	}
}

void players_unpublished(struct player_list *l, const char *desc)
{
	for (struct player *p = l->head; p; p = p->next) {
		rtmp_conn_send_status(p->conn, p->stream->id, "status",
				      "NetStream.Play.UnpublishNotify", desc);
		rtmp_conn_send_user_control(p->conn, 1, p->stream->id); /* StreamEOF */
	}
}
