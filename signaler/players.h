/*
 * players.h - the clients playing one stream: a list of NetStreams, each with its own timestamp
 * base, so what a player receives starts at 0 and never goes backwards, whenever it joined.
 * Shared by the apps that fan one source out to players (echo, rtp, call).
 */
#ifndef RS_PLAYERS_H
#define RS_PLAYERS_H

#include "rtmp_conn.h"

#include <stdbool.h>
#include <stdint.h>

struct player {
	struct rtmp_conn *conn;
	struct rtmp_stream *stream;
	void *owner; /* the app's object for the stream name */
	bool started;
	uint32_t base;    /* source timestamp that maps to 0 for this player */
	uint32_t last_ts; /* last timestamp sent */
	struct player *next, *prev;
};

struct player_list {
	struct player *head;
	/* The last audio sequence header sent (AAC AudioSpecificConfig, Enhanced RTMP SequenceStart):
	 * a player joining later gets it before its first audio. */
	uint8_t seq[64];
	uint8_t seq_len;
};

/* Adds stream @s of @c as a player of @owner and sets s->app_data to it. NULL on ENOMEM. */
struct player *players_add(struct player_list *l, struct rtmp_conn *c, struct rtmp_stream *s,
			   void *owner);

/* Unlinks and frees @p. */
void players_remove(struct player_list *l, struct player *p);

/* The timestamp @p gets for source timestamp @ts; *first is set on its first message (the caller
 * may send codec headers ahead of it, at 0). */
uint32_t player_rebase(struct player *p, uint32_t ts, bool *first);

/*
 * Sends one message to every player, timestamps rebased; media to slow players is dropped. An
 * audio sequence header is kept and sent again ahead of a new player's first audio.
 */
void players_send(struct player_list *l, uint8_t type, uint32_t ts, const uint8_t *data,
		  uint32_t len);

/* A new source: bases restart and each player gets onStatus NetStream.Play.PublishNotify. */
void players_published(struct player_list *l);

/* The source is gone: onStatus NetStream.Play.UnpublishNotify with @desc, then StreamEOF. */
void players_unpublished(struct player_list *l, const char *desc);

#endif
