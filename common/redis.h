/*
 * redis.h - an asynchronous Redis client driven by the process's evloop.
 *
 * One struct redis is one logical link to the Redis master: hiredis's async API on a
 * non-blocking socket, registered with the loop through a small adapter, so nothing here ever
 * blocks. The link reconnects on its own (backoff 100 ms doubling to 2 s) when the connection
 * drops or Redis restarts; listeners hear "up" after every successful (re)connect, and "down"
 * once for every up that ends. Redis without persistence forgets everything on restart, so an
 * owner rewrites all of its state from the up callback (see state.h).
 *
 * With REDIS_SENTINELS and REDIS_MASTER_NAME configured, the master's address is asked of the
 * sentinels (SENTINEL get-master-addr-by-name, asynchronously, one sentinel after the other)
 * before every connect, and the connected server must answer ROLE with "master".
 *
 * Commands fail fast: -ENOTCONN while the link is not up (callers decide what to do: owners mark
 * their records dirty), -EAGAIN when max_inflight requests already wait for replies, so a
 * stalled Redis cannot grow memory without bound. A request unanswered for command_timeout_ms
 * drops the link (its callback and all others in flight get -ETIMEDOUT) and reconnects.
 *
 * Callback contract: a command accepted (return 0) gets its callback exactly once, with
 *   err == 0           reply is a valid non-error reply (validate its shape before use: the
 *                      redis_reply_* helpers below bound types and sizes)
 *   err == -EREMOTEIO  Redis answered with an error; reply->str holds its text
 *   err == -ENOTCONN   the link went down before the reply (reply NULL)
 *   err == -ETIMEDOUT  no reply within command_timeout_ms; the link was dropped (reply NULL)
 *   err == -ECANCELED  redis_cancel() or redis_destroy() (reply NULL)
 * The reply belongs to the client and is freed when the callback returns.
 *
 * Not thread-safe: one loop, one thread.
 */
#ifndef RS_REDIS_H
#define RS_REDIS_H

#include <hiredis/hiredis.h>

#include <stdbool.h>
#include <stddef.h>

struct evloop;
struct redis;

#define REDIS_HOST_MAX	      255
#define REDIS_PASSWORD_MAX    255
#define REDIS_USERNAME_MAX    127
#define REDIS_MASTER_NAME_MAX 127
#define REDIS_SENTINELS_MAX   8
#define REDIS_MULTI_MAX	      64 /* commands in one redis_multi() */
#define REDIS_LISTENERS_MAX   8

struct redis_endpoint {
	char host[REDIS_HOST_MAX + 1]; /* name or numeric address (IPv6 without brackets) */
	int port;
};

struct redis_config {
	struct redis_endpoint master;	       /* REDIS_HOST (127.0.0.1), REDIS_PORT (6379) */
	char username[REDIS_USERNAME_MAX + 1]; /* REDIS_USERNAME (an ACL user); "": default */
	char password[REDIS_PASSWORD_MAX + 1]; /* REDIS_PASSWORD or REDIS_PASSWORD_FILE; "" = no AUTH */
	int db;				       /* REDIS_DB (0) */
	struct redis_endpoint sentinels[REDIS_SENTINELS_MAX]; /* REDIS_SENTINELS "h:p,h:p" */
	size_t n_sentinels;
	char master_name[REDIS_MASTER_NAME_MAX + 1]; /* REDIS_MASTER_NAME */
	unsigned connect_timeout_ms;		 /* connect + handshake, or one sentinel query */
	unsigned command_timeout_ms;		 /* 0 = never time out */
	unsigned max_inflight;			 /* requests awaiting replies */
	unsigned backoff_min_ms, backoff_max_ms; /* reconnect delays */
	unsigned ping_idle_ms;			 /* PING an idle link this often; 0 = never */
};

/* Fills @cfg with the defaults: 127.0.0.1:6379, db 0, no password, no sentinels, connect
 * timeout 2000 ms, command timeout 5000 ms, 10000 in flight, backoff 100..2000 ms, ping 1000 ms. */
void redis_config_defaults(struct redis_config *cfg);

/*
 * Fills @cfg with the defaults, then REDIS_HOST, REDIS_PORT, REDIS_PASSWORD or
 * REDIS_PASSWORD_FILE (a file holding it: one line; not both), REDIS_USERNAME (AUTH as that ACL
 * user; needs a password), REDIS_DB, REDIS_SENTINELS ("host:port,host:port", "[v6addr]:port"
 * for IPv6) and REDIS_MASTER_NAME (both or neither). Returns 0, or -EINVAL after logging which
 * variable is wrong.
 */
int redis_config_from_env(struct redis_config *cfg);

/*
 * Creates a client on @loop and starts connecting (non-blocking; a host name is resolved with
 * getaddrinfo, so prefer addresses). @password may be NULL or "" for no AUTH. Returns the client
 * or NULL (errno set: EINVAL for a bad argument, ENOMEM). The client is not up on return: add a
 * listener, then run the loop.
 */
struct redis *redis_new(struct evloop *loop, const char *host, int port, const char *password,
			int db);

/* Like redis_new() with a full configuration (copied); sentinels are used when configured. */
struct redis *redis_new_config(struct evloop *loop, const struct redis_config *cfg);

/*
 * Closes the link and frees the client; NULL-safe, clears *rp. Every request still in flight
 * gets its callback with -ECANCELED before this returns; listeners are not called. Safe from
 * inside any of the client's callbacks (the memory is then released on the next loop iteration).
 * Destroy clients before their loop.
 */
void redis_destroy(struct redis **rp);

typedef void (*redis_state_cb)(struct redis *r, void *arg);

/*
 * Adds a listener: @up after each successful (re)connect (AUTH, SELECT, ROLE check done),
 * @down once when a link that was up is lost. Either may be NULL. Nothing is called at once if
 * the link is already up (check redis_is_up()). Returns 0, or -ENOSPC beyond
 * REDIS_LISTENERS_MAX.
 */
int redis_add_listener(struct redis *r, redis_state_cb up, redis_state_cb down, void *arg);

/* Removes every listener registered with @arg (safe from inside a listener). */
void redis_remove_listener(struct redis *r, const void *arg);

/* True while commands can be sent. */
bool redis_is_up(const struct redis *r);

/* "host:port" of the master currently used (or last tried); owned by the client. */
const char *redis_address(const struct redis *r);

/* The last connection or handshake error as text ("" when none); owned by the client. */
const char *redis_last_error(const struct redis *r);

/* Requests awaiting replies. */
unsigned redis_inflight(const struct redis *r);

typedef void (*redis_reply_cb)(struct redis *r, int err, const redisReply *reply, void *arg);

/*
 * Sends a command formatted like redisCommand() ("%s" a C string, "%b" pointer + length).
 * @cb may be NULL (fire and forget). Returns 0 (the callback will be called once), -ENOTCONN
 * while not up, -EAGAIN when max_inflight requests are pending, -EINVAL for a bad format,
 * -ENOMEM.
 */
int redis_command(struct redis *r, redis_reply_cb cb, void *arg, const char *fmt, ...);

/* The same with an argument vector (@argvlen NULL: C strings). */
int redis_command_argv(struct redis *r, redis_reply_cb cb, void *arg, int argc, const char **argv,
		       const size_t *argvlen);

/* One command of a transaction: an argument vector (@argvlen NULL: C strings). */
struct redis_cmd {
	int argc;
	const char **argv;
	const size_t *argvlen;
};

/*
 * Sends MULTI, the @n commands (1..REDIS_MULTI_MAX) and EXEC back to back on the one
 * connection, so Redis applies them atomically; counts as one request. @cb gets EXEC's reply:
 * an array with one reply per command (each may itself be an error), or -EREMOTEIO when Redis
 * refused the transaction (EXECABORT). Returns as redis_command().
 */
int redis_multi(struct redis *r, redis_reply_cb cb, void *arg, const struct redis_cmd *cmds,
		size_t n);

/*
 * Completes at once, with -ECANCELED, every request in flight whose callback argument is @arg;
 * their replies are discarded when they arrive. Call before freeing an object that requests
 * point at.
 */
void redis_cancel(struct redis *r, const void *arg);

/* The same for requests where @match(cb, arg, @key) is true (for layers with private args). */
void redis_cancel_match(struct redis *r,
			bool (*match)(redis_reply_cb cb, void *arg, const void *key),
			const void *key);

/* Reply validation: nothing from Redis is used before its type and size are checked. */

/* 0 when @reply is a bulk or status string of at most @max bytes (*s, *len set); else -EPROTO. */
int redis_reply_str(const redisReply *reply, size_t max, const char **s, size_t *len);

/* 0 when @reply is an integer in [@min, @max] (*out set); else -EPROTO. */
int redis_reply_int(const redisReply *reply, long long min, long long max, long long *out);

/* 0 when @reply is an array of at most @max elements, none NULL; else -EPROTO. */
int redis_reply_array(const redisReply *reply, size_t max);

/* True when @reply is the status (or bulk string) @text, e.g. "OK", "PONG". */
bool redis_reply_is(const redisReply *reply, const char *text);

#endif
