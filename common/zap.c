/*
 * zap.c - the ZAP handler: CURVE client keys checked against the allowed list (zap.h).
 *
 *   libzmq (I/O thread, a CURVE handshake) --> inproc://zeromq.zap.01 --REP zsock--> on_request
 *     [version "1.0"] [request id] [domain] [address] [routing id] [mechanism] [credentials...]
 *   on_request --> [version "1.0"] [request id] [status 200|400|500] [text] [user id] [metadata ""]
 *
 * Status 200 only for mechanism "CURVE" with a 32-byte client key that the curve allows now; the
 * user id is that key in Z85, so that the server's sockets can tell who sent each message. A
 * request that is not ZAP 1.0 (libzmq never sends one) is answered 500: a REP socket must answer
 * every request, or the next handshakes would wait forever.
 */
#include "zap.h"

#include "curve.h"
#include "log.h"
#include "zsock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES_MIN 6
#define SID "zap"

struct zap {
	struct zsock *zs;
	const struct curve *c;
	struct zap_stats st;
};

static void reply(struct zap *z, const struct zsock_frame *req_id, const char *status,
		  const char *text, const char *user_id)
{
	const struct zsock_frame f[6] = {
		{"1.0", 3},
		{req_id->data, req_id->len},
		{status, strlen(status)},
		{text, strlen(text)},
		{user_id, strlen(user_id)},
		{"", 0},
	};

	if (zsock_send(z->zs, f, 6) < 0 && zsock_log_ok(z->zs))
		log_error(SID, "cannot answer a ZAP request: handshakes may stall");
}

static bool frame_is(const struct zsock_frame *f, const char *s)
{
	return f->len == strlen(s) && memcmp(f->data, s, f->len) == 0;
}

static void on_request(struct zsock *zs, const struct zsock_frame *f, size_t n, void *arg)
{
	static const struct zsock_frame none = {"", 0};
	struct zap *z = arg;
	char key[CURVE_KEY_LEN + 1], addr[64];
	const char *label;

	if (n < ZAP_FRAMES_MIN || !frame_is(&f[0], "1.0")) {
		z->st.malformed++;
		if (zsock_log_ok(zs))
			log_error(SID, "not a ZAP 1.0 request (%zu frames): answered 500", n);
		reply(z, n >= 2 ? &f[1] : &none, "500", "malformed ZAP request", "");
		return;
	}
	snprintf(addr, sizeof(addr), "%.*s", (int)(f[3].len < 63 ? f[3].len : 63),
		 (const char *)f[3].data);
	for (char *p = addr; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	if (!frame_is(&f[5], "CURVE") || n != 7 || f[6].len != 32 ||
	    !zmq_z85_encode(key, f[6].data, 32)) {
		z->st.refused++;
		if (zsock_log_ok(zs))
			log_warn(SID, "refused a connection from %s: mechanism %.*s, not CURVE", addr,
				 (int)(f[5].len < 16 ? f[5].len : 16), (const char *)f[5].data);
		reply(z, &f[1], "400", "CURVE required", "");
		return;
	}
	if (!curve_allows(z->c, key)) {
		z->st.refused++;
		if (zsock_log_ok(zs))
			log_warn(SID, "refused a connection from %s: CURVE key %s is not allowed",
				 addr, key);
		reply(z, &f[1], "400", "key not allowed", "");
		return;
	}
	z->st.allowed++;
	label = curve_label(z->c, key);
	log_debug(SID, "allowed a connection from %s: key %s%s%s", addr, key, label[0] ? " " : "",
		  label);
	reply(z, &f[1], "200", "OK", key);
}

struct zap *zap_new(struct evloop *loop, const struct curve *c)
{
	struct zsock_opts o = {.name = SID, .max_frames = 8, .max_frame_size = 1024};
	struct zap *z;
	int ret;

	if (!curve_enabled(c)) {
		errno = EINVAL;
		return NULL;
	}
	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	z->c = c;
	z->zs = zsock_new(loop, ZMQ_REP, &o, on_request, z);
	if (!z->zs)
		goto out_free;
	ret = zsock_bind(z->zs, ZAP_ENDPOINT);
	if (ret < 0) {
		log_error(SID, "cannot bind %s: %s", ZAP_ENDPOINT, zmq_strerror(-ret));
		errno = -ret;
		goto out_close;
	}
	return z;

out_close: {
	int e = errno;

	zsock_destroy(&z->zs);
	errno = e;
}
out_free: {
	int e = errno;

	free(z);
	errno = e;
}
	return NULL;
}

void zap_destroy(struct zap **zp)
{
	struct zap *z = zp ? *zp : NULL;

	if (!z)
		return;
	*zp = NULL;
	zsock_destroy(&z->zs);
	free(z);
}

void zap_get_stats(const struct zap *z, struct zap_stats *st)
{
	*st = z->st;
}
