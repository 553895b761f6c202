/*
 * rtmp_cmd.c - NetConnection and NetStream commands.
 *
 * A command message is a list of AMF0 values: name, transaction id, command object, arguments.
 * The core handles the standard commands from the table below; everything else goes to the
 * connection's app, and an unknown command with a transaction id gets an _error.
 *
 *   connect --> (app accepts now | later | rejects) --> createStream --> publish | play
 *                                                          --> closeStream / deleteStream
 */
#include "rtmp_cmd.h"

#include "amf.h"
#include "app.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Positions in the decoded list. */
enum { ARG_NAME, ARG_TXID, ARG_OBJ, ARG_FIRST };

typedef void (*cmd_fn)(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
		       const struct amf_value *args);

struct cmd {
	const char *name;
	cmd_fn fn;
	bool before_connect; /* allowed before connect was accepted */
};

/* Masks the values of secret query parameters (pass=, token=) in a command dump. */
static void redact(char *text)
{
	static const char *const keys[] = {"pass=", "token="};

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		for (char *p = strstr(text, keys[k]); p; p = strstr(p, keys[k]))
			for (p += strlen(keys[k]); *p && *p != '&' && *p != '"'; p++)
				*p = '*';
}

/* Copies string argument @i of @args into @out; false when absent, not a string, empty, too
 * long or holding a NUL. A "?query" suffix is cut (it carries parameters, not the name) unless
 * @keep_query: the app then reads it and cuts it itself. */
static bool arg_name(const struct amf_value *args, size_t i, char *out, size_t outlen,
		     bool keep_query)
{
	size_t len;
	const char *s = amf_get_string(amf_index(args, i), &len);
	const char *q;

	if (!s || len == 0 || len >= outlen || memchr(s, '\0', len))
		return false;
	q = keep_query ? NULL : memchr(s, '?', len);
	if (q)
		len = (size_t)(q - s);
	if (len == 0)
		return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

static void reply_ok(struct rtmp_conn *c, double txid, const struct amf_value *value)
{
	if (txid != 0)
		rtmp_conn_send_reply(c, true, txid, NULL, value);
}

static void cmd_connect(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
			const struct amf_value *args)
{
	const struct amf_value *obj = amf_index(args, ARG_OBJ);
	const struct rtmp_app *app;
	char name[RTMP_NAME_MAX], why[256] = "";
	const char *app_str;
	size_t app_len, base_len;
	double enc = 0;
	int r;

	if (rtmp_conn_app_name(c)[0] || rtmp_conn_connected(c)) {
		rtmp_conn_close(c, "second connect on one connection");
		return;
	}
	rtmp_conn_set_connect_txid(c, txid);
	if (amf_type_of(obj) != AMF_OBJECT && amf_type_of(obj) != AMF_TYPED_OBJECT &&
	    amf_type_of(obj) != AMF_ECMA_ARRAY) {
		rtmp_conn_set_app(c, NULL, "-", 0);
		rtmp_conn_reject(c, "connect needs a command object");
		return;
	}
	app_str = amf_get_string(amf_get(obj, "app"), &app_len);
	if (!app_str || app_len == 0 || app_len >= sizeof(name) || memchr(app_str, '\0', app_len)) {
		rtmp_conn_set_app(c, NULL, "-", 0);
		rtmp_conn_reject(c, "connect without a valid 'app' name");
		return;
	}
	memcpy(name, app_str, app_len);
	name[app_len] = '\0';
	name[strcspn(name, "?")] = '\0';
	if (amf_get_number(amf_get(obj, "objectEncoding"), &enc) && enc != 3)
		enc = 0;
	if (rtmp_conn_send_connect_preamble(c) < 0)
		return;
	/* "echo/room" selects app "echo"; the rest is the app's instance. */
	base_len = strcspn(name, "/");
	app = app_find(name, base_len);
	rtmp_conn_set_app(c, app, name, enc);
	if (!app) {
		snprintf(why, sizeof(why), "Unknown application '%.*s'", (int)base_len, name);
		rtmp_conn_reject(c, why);
		return;
	}
	log_info(rtmp_conn_sid(c), "connect app='%s' objectEncoding=%g", name, enc);
	r = app->connect ? app->connect(c, obj, args, why, sizeof(why)) : 0;
	if (r == 0)
		rtmp_conn_accept(c);
	else if (r < 0)
		rtmp_conn_reject(c, why[0] ? why : "rejected by the application");
}

static void cmd_create_stream(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
			      const struct amf_value *args)
{
	struct rtmp_stream *s = rtmp_conn_create_stream(c);
	struct amf_value *id;

	if (!s) {
		rtmp_conn_send_error(c, txid, "NetConnection.Call.Failed", "Too many streams");
		return;
	}
	id = amf_number(s->id);
	if (!id) {
		rtmp_conn_close(c, "out of memory");
		return;
	}
	rtmp_conn_send_reply(c, true, txid, NULL, id);
	amf_free(id);
}

/* The stream a NetStream command addresses: the message's stream, or for deleteStream the
 * number argument. */
static struct rtmp_stream *stream_of(struct rtmp_conn *c, uint32_t id, const char *cmd)
{
	struct rtmp_stream *s = rtmp_conn_stream(c, id);

	if (!s)
		log_warn(rtmp_conn_sid(c), "%s on unknown stream %u: ignored", cmd, id);
	return s;
}

static void cmd_publish(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
			const struct amf_value *args)
{
	struct rtmp_stream *s = stream_of(c, m->stream_id, "publish");
	const struct rtmp_app *app = rtmp_conn_app(c);
	char why[256] = "", desc[RTMP_NAME_MAX + 64];

	if (!s)
		return;
	if (s->state != RTMP_STREAM_IDLE) {
		rtmp_conn_send_status(c, s->id, "error", "NetStream.Publish.BadName",
				      "Stream is already publishing or playing");
		return;
	}
	if (!arg_name(args, ARG_FIRST, s->name, sizeof(s->name), app->keep_query)) {
		rtmp_conn_send_status(c, s->id, "error", "NetStream.Publish.BadName",
				      "Missing or invalid stream name");
		return;
	}
	if (!app->publish || app->publish(c, s, why, sizeof(why)) < 0) {
		log_info(rtmp_conn_sid(c), "publish '%s' refused: %s", s->name, why);
		rtmp_conn_send_status(c, s->id, "error", "NetStream.Publish.BadName",
				      why[0] ? why : "Publishing is not allowed here");
		s->name[0] = '\0';
		return;
	}
	s->state = RTMP_STREAM_PUBLISHING;
	log_info(rtmp_conn_sid(c), "publishing '%s' on stream %u", s->name, s->id);
	snprintf(desc, sizeof(desc), "%s is now published.", s->name);
	rtmp_conn_send_user_control(c, 0, s->id);
	rtmp_conn_send_status(c, s->id, "status", "NetStream.Publish.Start", desc);
}

static void cmd_play(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
		     const struct amf_value *args)
{
	static const uint8_t sample_access[] = {
		/* "|RtmpSampleAccess", true, true: lets Flash players read the samples */
		0x02, 0x00, 0x11, '|', 'R', 't', 'm', 'p', 'S', 'a', 'm', 'p', 'l', 'e',
		'A', 'c', 'c', 'e', 's', 's', 0x01, 0x01, 0x01, 0x01,
	};
	struct rtmp_stream *s = stream_of(c, m->stream_id, "play");
	const struct rtmp_app *app = rtmp_conn_app(c);
	char why[256] = "", desc[RTMP_NAME_MAX + 64];

	if (!s)
		return;
	if (s->state != RTMP_STREAM_IDLE)
		rtmp_conn_stop_stream(c, s); /* play on a playing stream switches streams */
	if (!arg_name(args, ARG_FIRST, s->name, sizeof(s->name), app->keep_query)) {
		rtmp_conn_send_status(c, s->id, "error", "NetStream.Play.StreamNotFound",
				      "Missing or invalid stream name");
		return;
	}
	rtmp_conn_send_user_control(c, 0, s->id);
	if (!app->play || app->play(c, s, why, sizeof(why)) < 0) {
		log_info(rtmp_conn_sid(c), "play '%s' refused: %s", s->name, why);
		rtmp_conn_send_status(c, s->id, "error", "NetStream.Play.StreamNotFound",
				      why[0] ? why : "Playing is not allowed here");
		s->name[0] = '\0';
		return;
	}
	s->state = RTMP_STREAM_PLAYING;
	log_info(rtmp_conn_sid(c), "playing '%s' on stream %u", s->name, s->id);
	snprintf(desc, sizeof(desc), "Playing and resetting %s.", s->name);
	rtmp_conn_send_status(c, s->id, "status", "NetStream.Play.Reset", desc);
	snprintf(desc, sizeof(desc), "Started playing %s.", s->name);
	rtmp_conn_send_status(c, s->id, "status", "NetStream.Play.Start", desc);
	rtmp_conn_send_media(c, s->id, RTMP_MSG_DATA_AMF0, 0, sample_access,
			     sizeof(sample_access));
}

static void cmd_close_stream(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
			     const struct amf_value *args)
{
	struct rtmp_stream *s = stream_of(c, m->stream_id, "closeStream");

	if (s)
		rtmp_conn_stop_stream(c, s);
}

static void cmd_delete_stream(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
			      const struct amf_value *args)
{
	double id;
	struct rtmp_stream *s;

	if (!amf_get_number(amf_index(args, ARG_FIRST), &id) || id < 1 || id > 0xffffffffu)
		return;
	s = stream_of(c, (uint32_t)id, "deleteStream");
	if (s)
		rtmp_conn_delete_stream(c, s);
}

/* releaseStream, getStreamLength and friends: acknowledged, nothing to do for live streams. */
static void cmd_ack_only(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
			 const struct amf_value *args)
{
	reply_ok(c, txid, NULL);
}

static void cmd_get_stream_length(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
				  const struct amf_value *args)
{
	struct amf_value *zero = amf_number(0);

	if (zero)
		reply_ok(c, txid, zero);
	amf_free(zero);
}

/* FCPublish / FCUnpublish / FCSubscribe: the Flash Media Server extensions many encoders send;
 * answered with the notification they wait for. */
static void fc_notify(struct rtmp_conn *c, double txid, const struct amf_value *args,
		      const char *event, const char *code)
{
	struct amf_value *info = amf_object();
	char name[RTMP_NAME_MAX] = "";
	struct buf b = {0};

	reply_ok(c, txid, NULL);
	arg_name(args, ARG_FIRST, name, sizeof(name), false);
	if (!info || amf_object_set(info, "code", amf_string(code)) < 0 ||
	    amf_object_set(info, "description", amf_string(name)) < 0 ||
	    amf0_put_string(&b, event) < 0 || amf0_put_number(&b, 0) < 0 ||
	    amf0_put_null(&b) < 0 || amf0_encode(&b, info) < 0)
		rtmp_conn_close(c, "out of memory");
	else
		rtmp_conn_send_command(c, 0, &b);
	amf_free(info);
	buf_free(&b);
}

static void cmd_fc_publish(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
			   const struct amf_value *args)
{
	fc_notify(c, txid, args, "onFCPublish", "NetStream.Publish.Start");
}

static void cmd_fc_unpublish(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
			     const struct amf_value *args)
{
	fc_notify(c, txid, args, "onFCUnpublish", "NetStream.Unpublish.Success");
}

static void cmd_fc_subscribe(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
			     const struct amf_value *args)
{
	fc_notify(c, txid, args, "onFCSubscribe", "NetStream.Play.Start");
}

/* Replies from the client to calls we never make, and notifications needing no answer. */
static void cmd_ignore(struct rtmp_conn *c, const struct rtmp_msg *m, double txid,
		       const struct amf_value *args)
{
}

static const struct cmd commands[] = {
	{.name = "connect", .fn = cmd_connect, .before_connect = true},
	{.name = "createStream", .fn = cmd_create_stream},
	{.name = "publish", .fn = cmd_publish},
	{.name = "play", .fn = cmd_play},
	{.name = "closeStream", .fn = cmd_close_stream},
	{.name = "deleteStream", .fn = cmd_delete_stream},
	{.name = "releaseStream", .fn = cmd_ack_only},
	{.name = "FCPublish", .fn = cmd_fc_publish},
	{.name = "FCUnpublish", .fn = cmd_fc_unpublish},
	{.name = "FCSubscribe", .fn = cmd_fc_subscribe},
	{.name = "FCUnsubscribe", .fn = cmd_ack_only},
	{.name = "getStreamLength", .fn = cmd_get_stream_length},
	{.name = "_checkbw", .fn = cmd_ack_only},
	{.name = "receiveAudio", .fn = cmd_ignore},
	{.name = "receiveVideo", .fn = cmd_ignore},
	{.name = "_result", .fn = cmd_ignore, .before_connect = true},
	{.name = "_error", .fn = cmd_ignore, .before_connect = true},
	{.name = "onStatus", .fn = cmd_ignore, .before_connect = true},
};

void rtmp_cmd_dispatch(struct rtmp_conn *c, const struct rtmp_msg *m)
{
	const struct rtmp_limits *lim = rtmp_conn_limits(c);
	const struct amf_limits alim = {
		.max_depth = lim->amf_max_depth,
		.max_elements = lim->amf_max_elements,
	};
	const uint8_t *body = m->data;
	size_t len = m->len;
	struct amf_value *args = NULL;
	const struct rtmp_app *app;
	const char *name;
	size_t name_len;
	double txid = 0;
	int err;

	if (m->type == RTMP_MSG_COMMAND_AMF3 && len > 0 && body[0] == 0) {
		body++;
		len--;
	}
	err = amf0_decode_all(body, len, &alim, &args);
	if (err < 0) {
		rtmp_conn_close(c, "undecodable command (%s)",
				err == -E2BIG ? "AMF limits exceeded: nesting or element count"
					      : "malformed AMF");
		return;
	}
	name = amf_get_string(amf_index(args, ARG_NAME), &name_len);
	if (!name || name_len == 0 || name_len > 128 || memchr(name, '\0', name_len)) {
		rtmp_conn_close(c, "command without a valid name");
		goto out;
	}
	amf_get_number(amf_index(args, ARG_TXID), &txid);
	if (log_enabled(LOG_LVL_DEBUG)) {
		struct buf d = {0};

		amf_dump(&d, args);
		buf_put_u8(&d, 0);
		if (d.data)
			redact((char *)d.data);
		log_debug(rtmp_conn_sid(c), "command on stream %u: %s", m->stream_id,
			  d.data ? (const char *)d.data : "");
		buf_free(&d);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		if (!commands[i].before_connect && !rtmp_conn_connected(c)) {
			rtmp_conn_close(c, "'%s' before a successful connect", name);
			goto out;
		}
		commands[i].fn(c, m, txid, args);
		goto out;
	}
	if (!rtmp_conn_connected(c)) {
		rtmp_conn_close(c, "'%.64s' before a successful connect", name);
		goto out;
	}
	app = rtmp_conn_app(c);
	err = app && app->command ? app->command(c, m->stream_id, name, txid, args) : -ENOENT;
	if (err == -ENOENT) {
		char desc[192];

		snprintf(desc, sizeof(desc), "Method '%.128s' not found", name);
		log_info(rtmp_conn_sid(c), "unknown command '%.128s'", name);
		if (txid != 0)
			rtmp_conn_send_error(c, txid, "NetConnection.Call.Failed", desc);
	}
out:
	amf_free(args);
}
