/*
 * app.h - RTMP applications: the first path element of the URL (rtmp://host/<app>/...) selects
 * one from a table. Each app decides what connect, publish, play and media mean.
 */
#ifndef RS_APP_H
#define RS_APP_H

#include "rtmp_conn.h"

#include <stddef.h>

struct amf_value;
struct media;

struct rtmp_app {
	const char *name;

	/* Publish and play names keep their "?query" for the app, which must cut it from s->name
	 * before returning (the core logs and echoes the name). false: the core cuts it. */
	bool keep_query;

	/*
	 * A client connects. @cmdobj is the connect command object, @args the whole command (name,
	 * txid, object, then the arguments). Return 0 to accept now, 1 when the decision comes
	 * later through rtmp_conn_accept()/rtmp_conn_reject(), or a negative errno with @why
	 * filled to reject.
	 */
	int (*connect)(struct rtmp_conn *c, const struct amf_value *cmdobj,
		       const struct amf_value *args, char *why, size_t whylen);

	/* A command the core does not know. @args is the whole decoded command (name, txid,
	 * object, arguments...). Return 0 when handled, -ENOENT when unknown to the app. */
	int (*command)(struct rtmp_conn *c, uint32_t stream_id, const char *name, double txid,
		       const struct amf_value *args);

	/* The client publishes or plays @s (its name is set). Return 0, or a negative errno with
	 * @why filled: the core then answers with a failure status. */
	int (*publish)(struct rtmp_conn *c, struct rtmp_stream *s, char *why, size_t whylen);
	int (*play)(struct rtmp_conn *c, struct rtmp_stream *s, char *why, size_t whylen);

	/* Audio, video or data from a publishing stream. */
	void (*media)(struct rtmp_conn *c, struct rtmp_stream *s, const struct rtmp_msg *m);

	/* @s stops publishing or playing (unpublish, closeStream, deleteStream, disconnect). */
	void (*stop)(struct rtmp_conn *c, struct rtmp_stream *s);

	/* The connection is going away (after stop for each active stream). */
	void (*disconnect)(struct rtmp_conn *c);
};

/* The app named @name (length @len, not NUL-terminated), or NULL. */
const struct rtmp_app *app_find(const char *name, size_t len);

extern const struct rtmp_app app_echo;
extern const struct rtmp_app app_rtp;
extern const struct rtmp_app app_call;
extern const struct rtmp_app app_sip;

/* Gives the rtp app its media bridge (NULL: publishing to rtp/ is refused) and reads RTP_APP and
 * RTP_APP_CODECS. Returns 0 or -EINVAL (logged). */
int app_rtp_init(struct media *m);

/* The echo app reads ECHO_APP (off unless 1); 0 or -EINVAL. */
int app_echo_init(void);

struct sip_ua;
struct sip_ua_callbacks;
/* The call app's media bridge and SIP UA (NULL, NULL to detach); 0 or -EINVAL (config). */
int app_call_init(struct media *m, struct sip_ua *ua);
/* The sip app's media bridge and SIP UA (NULL, NULL to detach); 0 or -EINVAL (config). */
int app_sip_init(struct media *m, struct sip_ua *ua);
/* The UA-level callbacks (incoming INVITEs, registrations), for sip_ua_new. */
extern const struct sip_ua_callbacks app_sip_ua_callbacks;

#endif
