/*
 * app_echo.c - the "echo" app: what a client publishes to echo/<name> is delivered to every
 * client playing echo/<name>. A microphone test for users and the test bed of the RTMP core.
 *
 * Players may come before the publisher (they wait) and after it (they join mid-stream: the
 * cached metadata and codec headers are sent first). Timestamps are rebased per player so each
 * starts at 0 and stays monotonic; a slow player only loses its own media.
 *
 * Anyone may publish and anyone may play: on a listener others reach, that is a free relay for
 * any stream. The app is off unless ECHO_APP=1 (`make run` on loopback turns it on).
 */
#include "app.h"

#include "amf.h"
#include "config.h"
#include "log.h"
#include "players.h"
#include "strmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECHO_BUCKETS 256

struct echo_stream {
	struct stream_slot slot;  /* its players keep metadata and headers for late ones */
	char name[RTMP_NAME_MAX]; /* "<app instance>/<stream name>" */
};

static struct strmap *streams; /* name -> struct echo_stream, made with the first stream */
static bool enabled;

int app_echo_init(void)
{
	if (config_bool("ECHO_APP", false, &enabled) < 0)
		return -EINVAL;
	if (enabled)
		log_warn(NULL, "echo app: on (ECHO_APP=1): any RTMP client may publish to echo/<name> "
			       "and any may play it");
	return 0;
}

/* The stream for @s of @c, created when @create. */
static struct echo_stream *get_stream(struct rtmp_conn *c, const struct rtmp_stream *s, bool create)
{
	char name[RTMP_NAME_MAX];
	struct echo_stream *es;
	int n;

	n = snprintf(name, sizeof(name), "%s/%s", rtmp_conn_app_name(c), s->name);
	if (n < 0 || (size_t)n >= sizeof(name))
		return NULL;
	es = slot_get(&streams, ECHO_BUCKETS, name, sizeof(*es), create);
	if (es && !es->name[0])
		memcpy(es->name, name, (size_t)n + 1);
	return es;
}

static void release_if_unused(struct echo_stream *es)
{
	if (slot_in_use(&es->slot))
		return;
	slot_forget(streams, es->name, &es->slot);
	free(es);
}

static int echo_connect(struct rtmp_conn *c, const struct amf_value *cmdobj,
			const struct amf_value *args, char *why, size_t whylen)
{
	return 0;
}

/* echo(args...): answers _result(txid, null, args...), a round trip of any AMF value. */
static int echo_command(struct rtmp_conn *c, uint32_t stream_id, const char *name, double txid,
			const struct amf_value *args)
{
	struct buf b = {0};
	int err = 0;

	if (strcmp(name, "echo") != 0)
		return -ENOENT;
	if (amf0_put_string(&b, "_result") < 0 || amf0_put_number(&b, txid) < 0 ||
	    amf0_put_null(&b) < 0)
		err = -ENOMEM;
	for (size_t i = 3; !err && i < amf_count(args); i++)
		err = amf0_encode(&b, amf_index(args, i));
	if (err)
		rtmp_conn_close(c, "cannot encode the echo reply: %s", strerror(-err));
	else
		rtmp_conn_send_command(c, stream_id, &b);
	buf_free(&b);
	return 0;
}

static int echo_publish(struct rtmp_conn *c, struct rtmp_stream *s, char *why, size_t whylen)
{
	struct echo_stream *es;

	if (!enabled) {
		snprintf(why, whylen, "echo: the echo app is off (ECHO_APP)");
		return -EACCES;
	}
	es = get_stream(c, s, true);
	if (!es) {
		snprintf(why, whylen, "Stream name too long");
		return -ENAMETOOLONG;
	}
	if (es->slot.publisher) {
		snprintf(why, whylen, "%s is already being published", s->name);
		return -EBUSY;
	}
	es->slot.publisher = c;
	es->slot.pub_stream = s;
	s->app_data = es;
	players_published(&es->slot.players);
	return 0;
}

static int echo_play(struct rtmp_conn *c, struct rtmp_stream *s, char *why, size_t whylen)
{
	struct echo_stream *es;

	if (!enabled) {
		snprintf(why, whylen, "echo: the echo app is off (ECHO_APP)");
		return -EACCES;
	}
	es = get_stream(c, s, true);
	if (!es) {
		snprintf(why, whylen, "Stream name too long");
		return -ENAMETOOLONG;
	}
	if (!players_add(&es->slot.players, c, s, es)) {
		snprintf(why, whylen, "Out of memory");
		release_if_unused(es);
		return -ENOMEM;
	}
	return 0;
}

/* "@setDataFrame", "onMetaData", {...}: kept and passed on without the first value. */
static void handle_data(struct rtmp_conn *c, struct echo_stream *es, const struct rtmp_msg *m)
{
	static const uint8_t set_data_frame[] = {0x02, 0x00, 0x0d, '@', 's', 'e', 't', 'D', 'a',
						 't', 'a', 'F', 'r', 'a', 'm', 'e'};
	const uint8_t *data = m->data;
	uint32_t len = m->len;

	if (m->type == RTMP_MSG_DATA_AMF3 && len > 0 && data[0] == 0) {
		data++;
		len--;
	}
	if (len > sizeof(set_data_frame) && memcmp(data, set_data_frame, sizeof(set_data_frame)) == 0) {
		data += sizeof(set_data_frame);
		len -= (uint32_t)sizeof(set_data_frame);
		if (players_set_metadata(&es->slot.players, data, len) < 0)
			log_warn(rtmp_conn_sid(c), "echo: no memory to keep metadata");
	}
	players_send(&es->slot.players, RTMP_MSG_DATA_AMF0, m->timestamp, data, len);
}

static void echo_media(struct rtmp_conn *c, struct rtmp_stream *s, const struct rtmp_msg *m)
{
	struct echo_stream *es = s->app_data;

	if (!es)
		return;
	switch (m->type) {
	case RTMP_MSG_AUDIO:
	case RTMP_MSG_VIDEO:
		break;
	case RTMP_MSG_DATA_AMF0:
	case RTMP_MSG_DATA_AMF3:
		handle_data(c, es, m);
		return;
	default:
		return;
	}
	players_send(&es->slot.players, m->type, m->timestamp, m->data, m->len);
}

static void echo_stop(struct rtmp_conn *c, struct rtmp_stream *s)
{
	if (s->state == RTMP_STREAM_PUBLISHING) {
		struct echo_stream *es = s->app_data;

		if (!es)
			return;
		es->slot.publisher = NULL;
		es->slot.pub_stream = NULL;
		players_unpublished(&es->slot.players, "Stream is now unpublished.");
		if (!rtmp_conn_closing(c))
			rtmp_conn_send_status(c, s->id, "status", "NetStream.Unpublish.Success",
					      "Stream is now unpublished.");
		release_if_unused(es);
	} else if (s->state == RTMP_STREAM_PLAYING) {
		struct player *p = s->app_data;
		struct echo_stream *es;

		if (!p)
			return;
		es = p->owner;
		players_remove(&es->slot.players, p);
		release_if_unused(es);
	}
}

const struct rtmp_app app_echo = {
	.name = "echo",
	.connect = echo_connect,
	.command = echo_command,
	.publish = echo_publish,
	.play = echo_play,
	.media = echo_media,
	.stop = echo_stop,
};
