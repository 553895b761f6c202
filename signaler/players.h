/*
 * players.h - the clients playing one stream: a list of NetStreams, each with its own timestamp
 * base, so what a player receives starts at 0 and never goes backwards, whenever it joined.
 * Shared by the apps that fan one source out to players (echo, rtp, call).
 */
#ifndef RS_PLAYERS_H
#define RS_PLAYERS_H

#include "buf.h"
#include "rtmp_conn.h"

#include <stdbool.h>
#include <stdint.h>

struct player {
	struct rtmp_conn *conn;
	struct rtmp_stream *stream;
	void *owner; /* the app's object for the stream name */
	bool started;
	bool audio_header, video_header; /* the kept sequence header of the kind went out */
	bool video_key;			 /* a video key frame went out: pictures may follow */
	uint32_t base;	      /* source timestamp that maps to 0 for this player */
	uint32_t last_ts[3];  /* last timestamp sent: audio, video, data (each never goes back) */
	struct player *next, *prev;
};

/*
 * The players of one stream, and what a player joining mid-stream needs before its first
 * message: the stream's metadata (onMetaData), and the last audio and video sequence headers
 * sent (AAC AudioSpecificConfig or Enhanced RTMP SequenceStart; AVC configuration). A zeroed
 * struct is an empty list; players_free() frees what it keeps.
 */
struct player_list {
	struct player *head;
	struct buf metadata;	 /* onMetaData body, AMF0 */
	struct buf audio_header; /* the last audio sequence header */
	struct buf video_header; /* the last video sequence header */
};

/* Adds stream @s of @c as a player of @owner and sets s->app_data to it. NULL on ENOMEM. */
struct player *players_add(struct player_list *l, struct rtmp_conn *c, struct rtmp_stream *s,
			   void *owner);

/* Unlinks and frees @p. */
void players_remove(struct player_list *l, struct player *p);

/* The timestamp @p gets for source timestamp @ts of a message of @type; *first is set on its
 * first message (the caller may send codec headers ahead of it, at 0). Each kind's timestamps
 * never go back; audio and video may interleave slightly out of order, as RTMP allows. */
uint32_t player_rebase(struct player *p, uint8_t type, uint32_t ts, bool *first);

/*
 * Sends one message to every player, timestamps rebased; media to slow players is dropped.
 * Sequence headers are kept; a player's first message is preceded by the metadata, its first
 * audio or video message by the kept header of that kind; video starts at a key frame (the
 * pictures before it could not be decoded).
 */
void players_send(struct player_list *l, uint8_t type, uint32_t ts, const uint8_t *data,
		  uint32_t len);

/* Keeps @data (an onMetaData body, AMF0) for players joining later. -ENOMEM or 0. */
int players_set_metadata(struct player_list *l, const uint8_t *data, uint32_t len);

/* Frees the kept metadata and headers (the players themselves are removed by their owner). */
void players_free(struct player_list *l);

/* A new source: bases restart and each player gets onStatus NetStream.Play.PublishNotify. */
void players_published(struct player_list *l);

/* The source is gone: onStatus NetStream.Play.UnpublishNotify with @desc, then StreamEOF; the
 * kept metadata and headers are dropped. */
void players_unpublished(struct player_list *l, const char *desc);

/* --- named slots --------------------------------------------------------------------------------
 */

struct strmap;

/*
 * What a stream name of an app holds: its publisher and its players. The apps' objects (an echo
 * stream, an rtp target, a call) hold one, and live in a strmap under their name from slot_get()
 * to slot_forget().
 */
struct stream_slot {
	struct rtmp_conn *publisher; /* NULL while nobody publishes */
	struct rtmp_stream *pub_stream;
	struct player_list players;
};

/* The object under @key in *@tab (made with @buckets at first use), or, when @create, a new
 * zeroed one of @size bytes (>= sizeof(struct stream_slot)) put there. NULL: none, or ENOMEM. */
void *slot_get(struct strmap **tab, unsigned buckets, const char *key, size_t size, bool create);

/* True while @sl has a publisher or a player. */
bool slot_in_use(const struct stream_slot *sl);

/* Takes @sl out of @tab (when @key still maps to it) and frees what its player list keeps; the
 * caller frees the object. */
void slot_forget(struct strmap *tab, const char *key, struct stream_slot *sl);

/* onStatus @level/@code/@text to the publisher, when there is one and its connection is open. */
void slot_tell_publisher(const struct stream_slot *sl, const char *level, const char *code,
			 const char *text);

#endif
