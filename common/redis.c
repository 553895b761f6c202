/*
 * redis.c - an asynchronous Redis client on the evloop (hiredis async API + our own adapter).
 *
 * The link's life, one state at a time:
 *
 *                 sentinels configured                       master address known
 *   redis_new --+----------------------> RESOLVING --------------------------------+
 *               |                         (ask one sentinel after the other)        |
 *               +-----------------------------------------------------------------> CONNECTING
 *                                                                                    | connected
 *                                                                                    v
 *                          UP <-------- PONG ----------- HANDSHAKE (AUTH, SELECT, ROLE, PING)
 *                          |
 *   any failure, timeout,  |  link lost (listeners hear "down")
 *   or the link lost  -----+----> WAITING --(backoff 100 ms .. 2 s)--> RESOLVING or CONNECTING
 *
 * Every request is a struct redis_req on a FIFO list (replies come back in order on one
 * connection), which gives the in-flight bound, the command timeout (the oldest request's age),
 * cancellation, and synchronous -ECANCELED completion on destroy.
 *
 * Re-entrancy: user callbacks may call anything, redis_destroy() included. While the client is
 * inside hiredis (r->depth > 0) the final free is deferred to a zero-delay timer; hiredis itself
 * defers freeing a context asked for from inside one of its reply callbacks.
 */
#include "redis.h"

#include "config.h"
#include "evloop.h"
#include "log.h"

#include <hiredis/async.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REDIS_SID	 "redis"
#define REDIS_TICK_MS	 100
#define REDIS_ADDR_MAX	 (REDIS_HOST_MAX + 16)
#define REDIS_LOGGED_MAX 6

enum rstate { R_WAITING, R_RESOLVING, R_CONNECTING, R_HANDSHAKE, R_UP };

enum hs_step { HS_AUTH = 1, HS_SELECT, HS_ROLE, HS_PING };

struct redis_req {
	struct redis_req *prev, *next;
	struct redis *r;
	redis_reply_cb cb; /* NULL once cancelled or fire-and-forget */
	void *arg;
	uint64_t sent_ms;
	bool internal; /* handshake or keep-alive: never cancelled by a caller */
};

struct listener {
	redis_state_cb up, down;
	void *arg;
	bool used;
};

struct redis {
	struct evloop *loop;
	struct redis_config cfg;
	enum rstate state;
	redisAsyncContext *ac;	/* the master link */
	redisAsyncContext *sac; /* a sentinel query in progress */
	size_t sentinel_next, sentinel_tried, sentinel_cur;
	char host[REDIS_HOST_MAX + 1];
	int port;
	char addr[REDIS_ADDR_MAX];
	struct ev_timer *retry, *tick, *reap;
	uint64_t phase_start_ms, last_activity_ms;
	unsigned backoff_ms;
	struct redis_req *head, *tail;
	unsigned inflight;
	int lost_err; /* what requests dropped with the link are told */
	bool hs_failed;
	struct listener listeners[REDIS_LISTENERS_MAX];
	size_t n_listeners;
	unsigned depth;
	bool closing;
	char last_error[256];
	char logged[REDIS_LOGGED_MAX][256]; /* recent lines, not repeated */
	size_t logged_next;
};

/* Configuration */

void redis_config_defaults(struct redis_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->master.host, sizeof(cfg->master.host), "127.0.0.1");
	cfg->master.port = 6379;
	cfg->connect_timeout_ms = 2000;
	cfg->command_timeout_ms = 5000;
	cfg->max_inflight = 10000;
	cfg->backoff_min_ms = 100;
	cfg->backoff_max_ms = 2000;
	cfg->ping_idle_ms = 1000;
}

/* Parses "host:port" or "[v6]:port" of length @len into @ep; 0 or -EINVAL. */
static int parse_endpoint(const char *s, size_t len, struct redis_endpoint *ep)
{
	const char *colon, *host = s;
	size_t hlen;
	char port[8];
	char *end;
	long p;

	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
		host = s;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	colon = len ? memrchr(s, ':', len) : NULL;
	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		host = s + 1;
		hlen -= 2;
	} else if (memchr(s, ':', hlen)) {
		return -EINVAL; /* IPv6 needs brackets */
	}
	if (hlen == 0 || hlen > REDIS_HOST_MAX || memchr(host, '[', hlen) ||
	    memchr(host, ']', hlen))
		return -EINVAL;
	if (len - hlen - 1 == 0 || (size_t)(s + len - colon - 1) >= sizeof(port))
		return -EINVAL;
	memcpy(port, colon + 1, (size_t)(s + len - colon - 1));
	port[s + len - colon - 1] = '\0';
	if (port[0] < '0' || port[0] > '9')
		return -EINVAL;
	p = strtol(port, &end, 10);
	if (*end || p < 1 || p > 65535)
		return -EINVAL;
	memcpy(ep->host, host, hlen);
	ep->host[hlen] = '\0';
	ep->port = (int)p;
	return 0;
}

static int parse_sentinels(const char *list, struct redis_config *cfg)
{
	const char *p = list;

	cfg->n_sentinels = 0;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (cfg->n_sentinels == REDIS_SENTINELS_MAX) {
			log_error(NULL, "config: REDIS_SENTINELS lists more than %d sentinels",
				  REDIS_SENTINELS_MAX);
			return -EINVAL;
		}
		if (parse_endpoint(p, len, &cfg->sentinels[cfg->n_sentinels]) < 0) {
			log_error(NULL,
				  "config: REDIS_SENTINELS entry \"%.*s\" is not host:port (port "
				  "1-65535, "
				  "IPv6 as [addr]:port)",
				  (int)(len > 300 ? 300 : len), p);
			return -EINVAL;
		}
		cfg->n_sentinels++;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (cfg->n_sentinels == 0) {
		log_error(NULL, "config: REDIS_SENTINELS=\"%s\" names no sentinel", list);
		return -EINVAL;
	}
	return 0;
}

static int copy_env_str(const char *name, char *dst, size_t size)
{
	const char *v = config_str(name, NULL);

	if (!v)
		return 0;
	if (strlen(v) >= size) {
		log_error(NULL, "config: %s is longer than %zu bytes", name, size - 1);
		return -EINVAL;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* REDIS_PASSWORD_FILE, when set, into cfg->password (REDIS_PASSWORD must not be set too). */
static int password_file(struct redis_config *cfg)
{
	const char *path = config_str("REDIS_PASSWORD_FILE", NULL);
	char why[512];

	if (!path)
		return 0;
	if (cfg->password[0]) {
		log_error(NULL, "config: REDIS_PASSWORD and REDIS_PASSWORD_FILE are both set: use one");
		return -EINVAL;
	}
	if (config_secret_file(path, cfg->password, sizeof(cfg->password), why, sizeof(why)) < 0) {
		log_error(NULL, "config: REDIS_PASSWORD_FILE: %s", why);
		return -EINVAL;
	}
	return 0;
}

int redis_config_from_env(struct redis_config *cfg)
{
	const char *sentinels;
	int64_t port, db;

	redis_config_defaults(cfg);
	if (copy_env_str("REDIS_HOST", cfg->master.host, sizeof(cfg->master.host)) < 0 ||
	    copy_env_str("REDIS_PASSWORD", cfg->password, sizeof(cfg->password)) < 0 ||
	    copy_env_str("REDIS_USERNAME", cfg->username, sizeof(cfg->username)) < 0 ||
	    copy_env_str("REDIS_MASTER_NAME", cfg->master_name, sizeof(cfg->master_name)) < 0 ||
	    password_file(cfg) < 0)
		return -EINVAL;
	if (cfg->username[0] && !cfg->password[0]) {
		log_error(NULL, "config: REDIS_USERNAME needs REDIS_PASSWORD or REDIS_PASSWORD_FILE");
		return -EINVAL;
	}
	if (config_int("REDIS_PORT", 6379, 1, 65535, &port) < 0 ||
	    config_int("REDIS_DB", 0, 0, 65535, &db) < 0)
		return -EINVAL;
	cfg->master.port = (int)port;
	cfg->db = (int)db;
	sentinels = config_str("REDIS_SENTINELS", NULL);
	if (sentinels && parse_sentinels(sentinels, cfg) < 0)
		return -EINVAL;
	if (cfg->n_sentinels > 0 && !cfg->master_name[0]) {
		log_error(NULL, "config: REDIS_SENTINELS is set but REDIS_MASTER_NAME is not");
		return -EINVAL;
	}
	if (cfg->n_sentinels == 0 && cfg->master_name[0]) {
		log_error(NULL, "config: REDIS_MASTER_NAME is set but REDIS_SENTINELS is not");
		return -EINVAL;
	}
	return 0;
}

/* Errors and listeners */

static void set_error(struct redis *r, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Records the latest problem. It is logged at @lvl unless it is one of the last few lines
 * logged (a Redis that stays down, retried every 2 s, must not flood the log); go_up() forgets
 * them, so every outage is reported.
 */
static void set_error(struct redis *r, enum log_level lvl, const char *fmt, ...)
{
	char msg[sizeof(r->last_error)];
	bool seen = false;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < REDIS_LOGGED_MAX; i++)
		if (strcmp(msg, r->logged[i]) == 0)
			seen = true;
	if (seen) {
		log_debug(REDIS_SID, "%s", msg);
	} else {
		log_msg(lvl, REDIS_SID, "%s", msg);
		memcpy(r->logged[r->logged_next], msg, sizeof(msg));
		r->logged_next = (r->logged_next + 1) % REDIS_LOGGED_MAX;
	}
	memcpy(r->last_error, msg, sizeof(msg)); /* @fmt's arguments may include last_error */
}

static void notify(struct redis *r, bool up)
{
	for (size_t i = 0; i < r->n_listeners && !r->closing; i++) {
		struct listener l = r->listeners[i];
		redis_state_cb cb = up ? l.up : l.down;

		if (l.used && cb)
			cb(r, l.arg);
	}
}

int redis_add_listener(struct redis *r, redis_state_cb up, redis_state_cb down, void *arg)
{
	size_t i;

	for (i = 0; i < r->n_listeners; i++)
		if (!r->listeners[i].used)
			break;
	if (i == REDIS_LISTENERS_MAX)
		return -ENOSPC;
	r->listeners[i] = (struct listener){.up = up, .down = down, .arg = arg, .used = true};
	if (i == r->n_listeners)
		r->n_listeners++;
	return 0;
}

void redis_remove_listener(struct redis *r, const void *arg)
{
	for (size_t i = 0; i < r->n_listeners; i++)
		if (r->listeners[i].used && r->listeners[i].arg == arg)
			r->listeners[i] = (struct listener){0};
}

/* The hiredis <-> evloop adapter: one struct rev per async context. */

struct rev {
	struct redis *owner;
	redisAsyncContext *ac;
	struct ev_io *io;
	unsigned want;
	bool in_cb, dead;
};

static void rev_want(struct rev *e, unsigned want)
{
	if (e->dead || want == e->want)
		return;
	e->want = want;
	evloop_io_set(e->io, want);
}

static void rev_add_read(void *p)
{
	struct rev *e = p;

	rev_want(e, e->want | EV_READ);
}

static void rev_del_read(void *p)
{
	struct rev *e = p;

	rev_want(e, e->want & ~(unsigned)EV_READ);
}

static void rev_add_write(void *p)
{
	struct rev *e = p;

	rev_want(e, e->want | EV_WRITE);
}

static void rev_del_write(void *p)
{
	struct rev *e = p;

	rev_want(e, e->want & ~(unsigned)EV_WRITE);
}

/* hiredis is done with the socket: stop watching it; idempotent. */
static void rev_cleanup(void *p)
{
	struct rev *e = p;

	if (!e || e->dead)
		return;
	e->dead = true;
	evloop_io_del(&e->io);
	if (e->ac) {
		e->ac->ev.data = NULL;
		e->ac->ev.addRead = e->ac->ev.delRead = NULL;
		e->ac->ev.addWrite = e->ac->ev.delWrite = NULL;
		e->ac->ev.cleanup = NULL;
		e->ac = NULL;
	}
	if (!e->in_cb)
		free(e);
}

static void rev_io(struct evloop *loop, struct ev_io *io, int fd, unsigned events, void *arg)
{
	struct rev *e = arg;
	struct redis *r = e->owner;
	redisAsyncContext *ac = e->ac;

	(void)loop;
	(void)io;
	(void)fd;
	if (e->dead || !ac)
		return;
	if (events & EV_ERROR) /* let hiredis find the error through the calls it expects */
		events |= e->want ? e->want : EV_READ;
	r->depth++;
	e->in_cb = true;
	if (events & EV_READ)
		redisAsyncHandleRead(ac);
	if (!e->dead && (events & EV_WRITE))
		redisAsyncHandleWrite(ac);
	e->in_cb = false;
	if (e->dead)
		free(e);
	r->depth--;
}

static int rev_attach(struct redis *r, redisAsyncContext *ac)
{
	struct rev *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->owner = r;
	e->ac = ac;
	e->io = evloop_io_add(r->loop, ac->c.fd, 0, rev_io, e);
	if (!e->io) {
		int err = -errno;

		free(e);
		return err ? err : -ENOMEM;
	}
	ac->ev.data = e;
	ac->ev.addRead = rev_add_read;
	ac->ev.delRead = rev_del_read;
	ac->ev.addWrite = rev_add_write;
	ac->ev.delWrite = rev_del_write;
	ac->ev.cleanup = rev_cleanup;
	return 0;
}

/* Requests */

static void req_unlink(struct redis *r, struct redis_req *req)
{
	if (req->prev)
		req->prev->next = req->next;
	else
		r->head = req->next;
	if (req->next)
		req->next->prev = req->prev;
	else
		r->tail = req->prev;
	r->inflight--;
}

static void req_link(struct redis *r, struct redis_req *req)
{
	req->prev = r->tail;
	req->next = NULL;
	if (r->tail)
		r->tail->next = req;
	else
		r->head = req;
	r->tail = req;
	r->inflight++;
}

/* hiredis reply callback of every request: NULL reply when the context is being freed. */
static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
	struct redis_req *req = privdata;
	struct redis *r = req->r;
	const redisReply *reply = reply_;
	redis_reply_cb cb = req->cb;
	void *arg = req->arg;
	int err = 0;

	(void)ac;
	req_unlink(r, req);
	free(req);
	if (reply)
		r->last_activity_ms = evloop_now(r->loop);
	if (!cb)
		return;
	if (!reply)
		err = r->closing ? -ECANCELED : r->lost_err;
	else if (reply->type == REDIS_REPLY_ERROR)
		err = -EREMOTEIO;
	cb(r, err, reply, arg);
}

static bool link_open(const struct redis *r)
{
	return !r->closing && r->ac && !(r->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

bool redis_is_up(const struct redis *r)
{
	return r->state == R_UP && link_open(r);
}

/* Queues one formatted command; @cmd stays the caller's. */
static int submit(struct redis *r, redis_reply_cb cb, void *arg, bool internal, const char *cmd,
		  size_t len)
{
	struct redis_req *req;

	if (!link_open(r))
		return -ENOTCONN;
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->r = r;
	req->cb = cb;
	req->arg = arg;
	req->internal = internal;
	req->sent_ms = evloop_now(r->loop);
	if (redisAsyncFormattedCommand(r->ac, on_reply, req, cmd, len) != REDIS_OK) {
		free(req);
		return -ENOTCONN;
	}
	req_link(r, req);
	return 0;
}

static int submit_argv(struct redis *r, redis_reply_cb cb, void *arg, bool internal, int argc,
		       const char **argv, const size_t *argvlen)
{
	char *cmd = NULL;
	int len, ret;

	if (argc < 1 || !argv)
		return -EINVAL;
	len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
	if (len < 0)
		return -ENOMEM;
	ret = submit(r, cb, arg, internal, cmd, (size_t)len);
	redisFreeCommand(cmd);
	return ret;
}

static int check_can_send(const struct redis *r)
{
	if (!redis_is_up(r))
		return -ENOTCONN;
	if (r->inflight >= r->cfg.max_inflight)
		return -EAGAIN;
	return 0;
}

int redis_command(struct redis *r, redis_reply_cb cb, void *arg, const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	int len, ret = check_can_send(r);

	if (ret < 0)
		return ret;
	va_start(ap, fmt);
	len = redisvFormatCommand(&cmd, fmt, ap);
	va_end(ap);
	if (len == -2)
		return -EINVAL;
	if (len < 0)
		return -ENOMEM;
	ret = submit(r, cb, arg, false, cmd, (size_t)len);
	redisFreeCommand(cmd);
	return ret;
}

int redis_command_argv(struct redis *r, redis_reply_cb cb, void *arg, int argc, const char **argv,
		       const size_t *argvlen)
{
	int ret = check_can_send(r);

	if (ret < 0)
		return ret;
	return submit_argv(r, cb, arg, false, argc, argv, argvlen);
}

static void drop_link(struct redis *r, int err, const char *reason);

int redis_multi(struct redis *r, redis_reply_cb cb, void *arg, const struct redis_cmd *cmds,
		size_t n)
{
	static const char multi[] = "*1\r\n$5\r\nMULTI\r\n";
	static const char exec[] = "*1\r\n$4\r\nEXEC\r\n";
	char *parts[REDIS_MULTI_MAX];
	int lens[REDIS_MULTI_MAX];
	size_t i, made = 0;
	int ret = check_can_send(r);

	if (ret < 0)
		return ret;
	if (n < 1 || n > REDIS_MULTI_MAX || !cmds)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (cmds[i].argc < 1 || !cmds[i].argv) {
			ret = -EINVAL;
			goto out_free;
		}
		lens[i] =
		    redisFormatCommandArgv(&parts[i], cmds[i].argc, cmds[i].argv, cmds[i].argvlen);
		if (lens[i] < 0) {
			ret = -ENOMEM;
			goto out_free;
		}
		made++;
	}
	/* Only the first send can meet a closed link: the rest follow it synchronously. */
	if (redisAsyncFormattedCommand(r->ac, NULL, NULL, multi, sizeof(multi) - 1) != REDIS_OK) {
		ret = -ENOTCONN;
		goto out_free;
	}
	for (i = 0; i < n && ret == 0; i++)
		if (redisAsyncFormattedCommand(r->ac, NULL, NULL, parts[i], (size_t)lens[i]) !=
		    REDIS_OK)
			ret = -ENOMEM;
	if (ret == 0)
		ret = submit(r, cb, arg, false, exec, sizeof(exec) - 1);
	if (ret < 0) /* half a transaction is queued: only closing the connection discards it */
		drop_link(r, -ENOTCONN, "could not queue a whole transaction: reconnecting");
out_free:
	for (i = 0; i < made; i++)
		redisFreeCommand(parts[i]);
	return ret;
}

void redis_cancel_match(struct redis *r,
			bool (*match)(redis_reply_cb cb, void *arg, const void *key),
			const void *key)
{
	r->depth++;
	for (struct redis_req *req = r->head; req; req = req->next) {
		redis_reply_cb cb = req->cb;
		void *arg = req->arg;

		if (req->internal || !cb || !match(cb, arg, key))
			continue;
		req->cb = NULL;
		cb(r, -ECANCELED, NULL, arg);
	}
	r->depth--;
}

static bool match_arg(redis_reply_cb cb, void *arg, const void *key)
{
	(void)cb;
	return arg == key;
}

void redis_cancel(struct redis *r, const void *arg)
{
	redis_cancel_match(r, match_arg, arg);
}

/* The link */

static void connect_master(struct redis *r);
static void resolve_start(struct redis *r);

static void schedule_retry(struct redis *r)
{
	r->state = R_WAITING;
	if (r->closing)
		return;
	evloop_timer_start(r->retry, r->backoff_ms);
	r->backoff_ms =
	    r->backoff_ms * 2 > r->cfg.backoff_max_ms ? r->cfg.backoff_max_ms : r->backoff_ms * 2;
}

/* Bookkeeping once the master link is gone (the context is freed or being freed). */
static void link_lost(struct redis *r, const char *reason)
{
	bool was_up = r->state == R_UP;

	r->ac = NULL;
	set_error(r, was_up ? LOG_LVL_WARN : LOG_LVL_INFO, "%s", reason);
	schedule_retry(r);
	if (was_up)
		notify(r, false);
}

/* Closes the master link ourselves; pending requests complete with @err. */
static void drop_link(struct redis *r, int err, const char *reason)
{
	redisAsyncContext *ac = r->ac;

	if (!ac)
		return;
	r->depth++; /* callbacks run from here: a redis_destroy() in them is deferred */
	ac->data = NULL;
	r->ac = NULL; /* callbacks of the dropped requests see the client down */
	r->lost_err = err;
	/* Deferred by hiredis when called from inside one of its reply callbacks. */
	redisAsyncFree(ac);
	link_lost(r, reason);
	r->depth--;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;
	char reason[REDIS_ADDR_MAX + 128];

	(void)status;
	if (!r || r->ac != ac)
		return;
	snprintf(reason, sizeof(reason), "connection to %s lost: %s", r->addr,
		 ac->err && ac->errstr ? ac->errstr : "closed");
	link_lost(r, reason);
}

static void go_up(struct redis *r)
{
	r->state = R_UP;
	r->backoff_ms = r->cfg.backoff_min_ms;
	r->last_activity_ms = evloop_now(r->loop);
	r->last_error[0] = '\0';
	memset(r->logged, 0, sizeof(r->logged));
	log_info(REDIS_SID, "up: %s db %d%s", r->addr, r->cfg.db,
		 r->cfg.n_sentinels ? " (from sentinels)" : "");
	notify(r, true);
}

static void hs_fail(struct redis *r, const char *what, const redisReply *reply)
{
	const char *text = reply && reply->type == REDIS_REPLY_ERROR && reply->str
			       ? reply->str
			       : "unexpected reply";

	r->hs_failed = true;
	if (strncmp(text, "NOAUTH", 6) == 0)
		set_error(r, LOG_LVL_ERROR, "%s requires a password (NOAUTH): set REDIS_PASSWORD or REDIS_PASSWORD_FILE",
			  r->addr);
	else if (strncmp(text, "WRONGPASS", 9) == 0 || strstr(text, "invalid password") ||
		 strstr(text, "without any password"))
		set_error(r, LOG_LVL_ERROR, "%s refused AUTH (check REDIS_PASSWORD / REDIS_PASSWORD_FILE, REDIS_USERNAME): %.120s",
			  r->addr, text);
	else
		set_error(r, LOG_LVL_ERROR, "%s: %s failed: %.120s", r->addr, what, text);
	drop_link(r, -ENOTCONN, r->last_error);
}

static void hs_reply(struct redis *r, int err, const redisReply *reply, void *arg)
{
	enum hs_step step = (enum hs_step)(uintptr_t)arg;
	const char *role;
	size_t len;

	if (r->hs_failed || r->state != R_HANDSHAKE || (err && err != -EREMOTEIO))
		return; /* link already lost: link_lost() handles it */
	switch (step) {
	case HS_AUTH:
		if (err || !redis_reply_is(reply, "OK"))
			hs_fail(r, "AUTH", reply);
		break;
	case HS_SELECT:
		if (err || !redis_reply_is(reply, "OK"))
			hs_fail(r, "SELECT", reply);
		break;
	case HS_ROLE:
		if (err || redis_reply_array(reply, 16) < 0 || reply->elements < 1 ||
		    redis_reply_str(reply->element[0], 16, &role, &len) < 0) {
			hs_fail(r, "ROLE", reply);
		} else if (len != 6 || memcmp(role, "master", 6) != 0) {
			r->hs_failed = true;
			set_error(r, LOG_LVL_WARN,
				  "%s is a %.*s, not a master: asking the sentinels again", r->addr,
				  (int)len, role);
			drop_link(r, -ENOTCONN, r->last_error);
		}
		break;
	case HS_PING:
		if (err || !redis_reply_is(reply, "PONG"))
			hs_fail(r, "PING", reply);
		else
			go_up(r);
		break;
	}
}

static int hs_send(struct redis *r, enum hs_step step, int argc, const char **argv)
{
	return submit_argv(r, hs_reply, (void *)(uintptr_t)step, true, argc, argv, NULL);
}

static void start_handshake(struct redis *r)
{
	char db[16];
	int ret = 0;

	r->state = R_HANDSHAKE;
	r->hs_failed = false;
	if (r->cfg.password[0] && r->cfg.username[0])
		ret = hs_send(r, HS_AUTH, 3,
			      (const char *[]){"AUTH", r->cfg.username, r->cfg.password});
	else if (r->cfg.password[0])
		ret = hs_send(r, HS_AUTH, 2, (const char *[]){"AUTH", r->cfg.password});
	snprintf(db, sizeof(db), "%d", r->cfg.db);
	if (ret == 0 && r->cfg.db != 0)
		ret = hs_send(r, HS_SELECT, 2, (const char *[]){"SELECT", db});
	if (ret == 0 && r->cfg.n_sentinels > 0)
		ret = hs_send(r, HS_ROLE, 1, (const char *[]){"ROLE"});
	if (ret == 0)
		ret = hs_send(r, HS_PING, 1, (const char *[]){"PING"});
	if (ret < 0) {
		/* Inside hiredis's connect callback the context cannot be freed: the connect
		 * timeout will drop it. */
		r->hs_failed = true;
		set_error(r, LOG_LVL_ERROR, "%s: cannot queue the handshake (%s)", r->addr,
			  strerror(-ret));
	}
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;

	if (!r || r->ac != ac)
		return;
	if (status != REDIS_OK) {
		r->ac = NULL; /* hiredis frees it on return */
		set_error(r, LOG_LVL_WARN, "cannot connect to %s: %s", r->addr,
			  ac->errstr ? ac->errstr : "error");
		schedule_retry(r);
		return;
	}
	start_handshake(r);
}

static void set_addr(struct redis *r, const char *host, int port)
{
	if (host != r->host)
		snprintf(r->host, sizeof(r->host), "%s", host);
	r->port = port;
	snprintf(r->addr, sizeof(r->addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

static void connect_master(struct redis *r)
{
	redisAsyncContext *ac;

	r->state = R_CONNECTING;
	r->phase_start_ms = evloop_now(r->loop);
	r->lost_err = -ENOTCONN;
	ac = redisAsyncConnect(r->host, r->port);
	if (!ac) {
		set_error(r, LOG_LVL_ERROR, "cannot connect to %s: out of memory", r->addr);
		schedule_retry(r);
		return;
	}
	if (ac->err) {
		set_error(r, LOG_LVL_WARN, "cannot connect to %s: %s", r->addr, ac->errstr);
		redisAsyncFree(ac);
		schedule_retry(r);
		return;
	}
	if (rev_attach(r, ac) < 0) {
		set_error(r, LOG_LVL_ERROR, "cannot watch the socket to %s", r->addr);
		redisAsyncFree(ac);
		schedule_retry(r);
		return;
	}
	ac->data = r;
	r->ac = ac;
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	redisAsyncSetConnectCallback(ac, on_connect);
}

/* Sentinels */

static void ask_next_sentinel(struct redis *r);

static void drop_sentinel(struct redis *r)
{
	redisAsyncContext *ac = r->sac;

	if (!ac)
		return;
	r->sac = NULL;
	ac->data = NULL;
	redisAsyncFree(ac);
}

static const char *sentinel_name(const struct redis *r, char *buf, size_t size)
{
	const struct redis_endpoint *ep = &r->cfg.sentinels[r->sentinel_cur];

	snprintf(buf, size, strchr(ep->host, ':') ? "[%s]:%d" : "%s:%d", ep->host, ep->port);
	return buf;
}

static void s_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
	struct redis *r = privdata;
	const redisReply *reply = reply_;
	char sname[REDIS_ADDR_MAX], host[REDIS_HOST_MAX + 1];
	const char *h, *p;
	size_t hlen, plen;
	long port = 0;

	if (!reply || r->sac != ac)
		return;
	sentinel_name(r, sname, sizeof(sname));
	if (reply->type == REDIS_REPLY_NIL) {
		set_error(r, LOG_LVL_WARN, "sentinel %s does not know master '%s'", sname,
			  r->cfg.master_name);
	} else if (reply->type == REDIS_REPLY_ERROR) {
		set_error(r, LOG_LVL_WARN, "sentinel %s: %.120s", sname,
			  reply->str ? reply->str : "");
	} else if (redis_reply_array(reply, 2) < 0 || reply->elements != 2 ||
		   redis_reply_str(reply->element[0], REDIS_HOST_MAX, &h, &hlen) < 0 || hlen == 0 ||
		   memchr(h, '\0', hlen) || redis_reply_str(reply->element[1], 5, &p, &plen) < 0 ||
		   plen == 0 || strspn(p, "0123456789") != plen ||
		   (port = strtol(p, NULL, 10)) < 1 || port > 65535) {
		set_error(r, LOG_LVL_WARN,
			  "sentinel %s: malformed reply to get-master-addr-by-name", sname);
	} else {
		memcpy(host, h, hlen);
		host[hlen] = '\0';
		if (strcmp(host, r->host) != 0 || port != r->port)
			log_info(REDIS_SID, "sentinel %s: master '%s' is at %s:%ld", sname,
				 r->cfg.master_name, host, port);
		set_addr(r, host, (int)port);
		r->sentinel_next = r->sentinel_cur; /* ask the one that answered first next time */
		drop_sentinel(r);
		connect_master(r);
		return;
	}
	drop_sentinel(r);
	ask_next_sentinel(r);
}

static void s_on_connect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;
	char sname[REDIS_ADDR_MAX];

	if (!r || r->sac != ac || status == REDIS_OK)
		return;
	r->sac = NULL; /* hiredis frees it on return */
	set_error(r, LOG_LVL_WARN, "cannot connect to sentinel %s: %s",
		  sentinel_name(r, sname, sizeof(sname)), ac->errstr ? ac->errstr : "error");
	ask_next_sentinel(r);
}

static void s_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;
	char sname[REDIS_ADDR_MAX];

	(void)status;
	if (!r || r->sac != ac)
		return;
	r->sac = NULL;
	set_error(r, LOG_LVL_WARN, "sentinel %s closed the connection before answering",
		  sentinel_name(r, sname, sizeof(sname)));
	ask_next_sentinel(r);
}

static void ask_next_sentinel(struct redis *r)
{
	char sname[REDIS_ADDR_MAX];

	while (!r->closing && r->sentinel_tried < r->cfg.n_sentinels) {
		const struct redis_endpoint *ep;
		redisAsyncContext *ac;

		r->sentinel_cur = r->sentinel_next;
		r->sentinel_next = (r->sentinel_next + 1) % r->cfg.n_sentinels;
		r->sentinel_tried++;
		ep = &r->cfg.sentinels[r->sentinel_cur];
		sentinel_name(r, sname, sizeof(sname));
		ac = redisAsyncConnect(ep->host, ep->port);
		if (!ac)
			continue;
		if (ac->err || rev_attach(r, ac) < 0) {
			set_error(r, LOG_LVL_WARN, "cannot connect to sentinel %s: %s", sname,
				  ac->err ? ac->errstr : "cannot watch the socket");
			redisAsyncFree(ac);
			continue;
		}
		ac->data = r;
		r->sac = ac;
		redisAsyncSetDisconnectCallback(ac, s_on_disconnect);
		redisAsyncSetConnectCallback(ac, s_on_connect);
		if (redisAsyncCommand(ac, s_reply, r, "SENTINEL get-master-addr-by-name %s",
				      r->cfg.master_name) != REDIS_OK) {
			drop_sentinel(r);
			continue;
		}
		r->state = R_RESOLVING;
		r->phase_start_ms = evloop_now(r->loop);
		return;
	}
	if (r->closing)
		return;
	set_error(r, LOG_LVL_WARN, "no sentinel named master '%s' (last: %.160s)",
		  r->cfg.master_name, r->last_error);
	schedule_retry(r);
}

static void resolve_start(struct redis *r)
{
	r->sentinel_tried = 0;
	ask_next_sentinel(r);
}

/* Timers */

static void on_retry(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct redis *r = arg;

	(void)loop;
	(void)t;
	r->depth++;
	if (r->cfg.n_sentinels > 0)
		resolve_start(r);
	else
		connect_master(r);
	r->depth--;
}

static void on_keepalive(struct redis *r, int err, const redisReply *reply, void *arg)
{
	(void)r;
	(void)err;
	(void)reply;
	(void)arg;
}

static void on_tick(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct redis *r = arg;
	uint64_t now = evloop_now(loop);
	char msg[REDIS_ADDR_MAX + 96];

	r->depth++;
	switch (r->state) {
	case R_RESOLVING:
		if (now - r->phase_start_ms > r->cfg.connect_timeout_ms) {
			char sname[REDIS_ADDR_MAX];

			set_error(r, LOG_LVL_WARN, "sentinel %s did not answer within %u ms",
				  sentinel_name(r, sname, sizeof(sname)),
				  r->cfg.connect_timeout_ms);
			drop_sentinel(r);
			ask_next_sentinel(r);
		}
		break;
	case R_CONNECTING:
	case R_HANDSHAKE:
		if (now - r->phase_start_ms > r->cfg.connect_timeout_ms) {
			snprintf(msg, sizeof(msg), "connecting to %s timed out after %u ms",
				 r->addr, r->cfg.connect_timeout_ms);
			drop_link(r, -ETIMEDOUT, msg);
		}
		break;
	case R_UP:
		if (r->head && r->cfg.command_timeout_ms &&
		    now - r->head->sent_ms > r->cfg.command_timeout_ms) {
			snprintf(msg, sizeof(msg), "%s did not answer for %u ms: reconnecting",
				 r->addr, r->cfg.command_timeout_ms);
			drop_link(r, -ETIMEDOUT, msg);
		} else if (!r->head && r->cfg.ping_idle_ms &&
			   now - r->last_activity_ms >= r->cfg.ping_idle_ms) {
			r->last_activity_ms = now;
			submit_argv(r, on_keepalive, NULL, true, 1, (const char *[]){"PING"}, NULL);
		}
		break;
	case R_WAITING:
		break;
	}
	if (!r->closing)
		evloop_timer_start(t, REDIS_TICK_MS);
	r->depth--;
}

static void finish_destroy(struct redis *r)
{
	evloop_timer_del(&r->retry);
	evloop_timer_del(&r->tick);
	evloop_timer_del(&r->reap);
	drop_sentinel(r);
	if (r->ac) {
		redisAsyncContext *ac = r->ac;

		r->ac = NULL;
		ac->data = NULL;
		redisAsyncFree(
		    ac); /* completes what is still queued (callbacks already detached) */
	}
	while (r->head) { /* defensive: nothing should remain */
		struct redis_req *req = r->head;

		req_unlink(r, req);
		free(req);
	}
	free(r);
}

static void on_reap(struct evloop *loop, struct ev_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	finish_destroy(arg);
}

/* Public life cycle */

struct redis *redis_new_config(struct evloop *loop, const struct redis_config *cfg)
{
	struct redis *r;

	if (!loop || !cfg || !cfg->master.host[0] || cfg->master.port < 1 ||
	    cfg->master.port > 65535 || cfg->db < 0 || cfg->n_sentinels > REDIS_SENTINELS_MAX ||
	    (cfg->n_sentinels > 0 && !cfg->master_name[0]) || cfg->max_inflight < 1 ||
	    cfg->backoff_min_ms < 1 || cfg->backoff_max_ms < cfg->backoff_min_ms) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		errno = ENOMEM;
		return NULL;
	}
	r->loop = loop;
	r->cfg = *cfg;
	r->cfg.master.host[REDIS_HOST_MAX] = '\0';
	r->cfg.password[REDIS_PASSWORD_MAX] = '\0';
	r->cfg.username[REDIS_USERNAME_MAX] = '\0';
	r->cfg.master_name[REDIS_MASTER_NAME_MAX] = '\0';
	r->backoff_ms = cfg->backoff_min_ms;
	r->lost_err = -ENOTCONN;
	r->retry = evloop_timer_new(loop, on_retry, r);
	r->tick = evloop_timer_new(loop, on_tick, r);
	r->reap = evloop_timer_new(loop, on_reap, r);
	if (!r->retry || !r->tick || !r->reap) {
		evloop_timer_del(&r->retry);
		evloop_timer_del(&r->tick);
		evloop_timer_del(&r->reap);
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	if (cfg->n_sentinels > 0) {
		snprintf(r->addr, sizeof(r->addr), "master '%s'", cfg->master_name);
		resolve_start(r);
	} else {
		set_addr(r, cfg->master.host, cfg->master.port);
		connect_master(r);
	}
	evloop_timer_start(r->tick, REDIS_TICK_MS);
	return r;
}

struct redis *redis_new(struct evloop *loop, const char *host, int port, const char *password,
			int db)
{
	struct redis_config cfg;

	redis_config_defaults(&cfg);
	if (!host || strlen(host) > REDIS_HOST_MAX ||
	    (password && strlen(password) > REDIS_PASSWORD_MAX)) {
		errno = EINVAL;
		return NULL;
	}
	snprintf(cfg.master.host, sizeof(cfg.master.host), "%s", host);
	cfg.master.port = port;
	if (password)
		snprintf(cfg.password, sizeof(cfg.password), "%s", password);
	cfg.db = db;
	return redis_new_config(loop, &cfg);
}

void redis_destroy(struct redis **rp)
{
	struct redis *r = rp ? *rp : NULL;

	if (!r)
		return;
	*rp = NULL;
	if (r->closing)
		return;
	r->closing = true;
	memset(r->listeners, 0, sizeof(r->listeners));
	r->n_listeners = 0;
	evloop_timer_stop(r->retry);
	evloop_timer_stop(r->tick);
	r->depth++;
	for (struct redis_req *req = r->head; req; req = req->next) {
		redis_reply_cb cb = req->cb;

		req->cb = NULL;
		if (cb && !req->internal)
			cb(r, -ECANCELED, NULL, req->arg);
	}
	r->depth--;
	if (r->depth > 0)
		evloop_timer_start(r->reap, 0);
	else
		finish_destroy(r);
}

const char *redis_address(const struct redis *r)
{
	return r->addr;
}

const char *redis_last_error(const struct redis *r)
{
	return r->last_error;
}

unsigned redis_inflight(const struct redis *r)
{
	return r->inflight;
}

/* Reply validation */

int redis_reply_str(const redisReply *reply, size_t max, const char **s, size_t *len)
{
	if (!reply || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS) ||
	    !reply->str || reply->len > max)
		return -EPROTO;
	*s = reply->str;
	*len = reply->len;
	return 0;
}

int redis_reply_int(const redisReply *reply, long long min, long long max, long long *out)
{
	if (!reply || reply->type != REDIS_REPLY_INTEGER || reply->integer < min ||
	    reply->integer > max)
		return -EPROTO;
	*out = reply->integer;
	return 0;
}

int redis_reply_array(const redisReply *reply, size_t max)
{
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements > max ||
	    (reply->elements && !reply->element))
		return -EPROTO;
	for (size_t i = 0; i < reply->elements; i++)
		if (!reply->element[i])
			return -EPROTO;
	return 0;
}

bool redis_reply_is(const redisReply *reply, const char *text)
{
	size_t n = strlen(text);

	return reply && (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING) &&
	       reply->str && reply->len == n && strncasecmp(reply->str, text, n) == 0;
}
