/*
 * redis_server.h - real redis-server processes for the unit tests that need one (test_redis,
 * test_state, test_ctlq): a free port, whether redis-server is installed, start on 127.0.0.1
 * without persistence (files in the test's temporary directory, the process killed with the
 * test), stop.
 *
 *   if (!have_redis_server())                 print SKIP
 *   port = free_port()
 *   pid = redis_server_start(tmpdir, port, NULL)   waits until the port answers (5 s)
 *   redis_server_stop(pid, SIGTERM)           or SIGKILL for a crash
 *   redis_server_rmdir(tmpdir)                at exit
 *
 * and, for the tests' own commands to it, RUN_UNTIL (turns the test's evloop) and
 * redis_cmd_argv() (one command, its reply waited for and kept as a struct cmd_reply).
 *
 * Header-only (static inline) so that every unit test stays one .c file.
 */
#ifndef RS_TEST_REDIS_SERVER_H
#define RS_TEST_REDIS_SERVER_H

#include "evloop.h"
#include "redis.h"

#include "../tools/free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Milliseconds of the monotonic clock. */
static inline uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A port free on 127.0.0.1 now, or -1. */
static inline int free_port(void)
{
	unsigned port = free_port_on("127.0.0.1");

	return port ? (int)port : -1;
}

/* True when something accepts TCP connections on 127.0.0.1:@port. */
static inline bool port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* True when an executable redis-server is in $PATH. */
static inline bool have_redis_server(void)
{
	const char *path = getenv("PATH");
	char buf[4096], file[4200];

	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof(file), "%s/redis-server", dir);
		if (access(file, X_OK) == 0)
			return true;
	}
	return false;
}

/*
 * Starts redis-server on 127.0.0.1:@port, its files and log (redis-<port>.log) in @dir, with
 * optional @extra arguments (NULL-terminated; a leading "--sentinel-conf", FILE runs a sentinel
 * on FILE). Waits up to 5 s for the port to answer (logs to stderr if it does not). Returns the
 * child's pid (killed when the test dies), or -1 when fork() failed.
 */
static inline pid_t redis_server_start(const char *dir, int port, const char *const *extra)
{
	char portbuf[16], logfile[256];
	const char *argv[32];
	int argc = 0;
	pid_t pid;

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	snprintf(logfile, sizeof(logfile), "%s/redis-%d.log", dir, port);
	argv[argc++] = "redis-server";
	if (extra && extra[0] && strcmp(extra[0], "--sentinel-conf") == 0) {
		argv[argc++] = extra[1];
		argv[argc++] = "--sentinel";
		extra += 2;
	}
	const char *base[] = {"--port",	      portbuf, "--bind",      "127.0.0.1", "--save", "",
			      "--appendonly", "no",    "--daemonize", "no",	   "--dir",  dir,
			      "--logfile",    logfile};
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		argv[argc++] = base[i];
	for (; extra && *extra && argc < 30; extra++)
		argv[argc++] = *extra;
	argv[argc] = NULL;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execvp("redis-server", (char *const *)argv);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	for (uint64_t t0 = mono_ms(); mono_ms() - t0 < 5000; usleep(20000))
		if (port_open(port))
			return pid;
	fprintf(stderr, "redis-server on port %d did not start (see %s)\n", port, logfile);
	return pid;
}

/* Sends @sig (after SIGCONT, in case it was stopped) to server @pid and reaps it; pid <= 0: no-op.
 */
static inline void redis_server_stop(pid_t pid, int sig)
{
	if (pid <= 0)
		return;
	kill(pid, SIGCONT);
	kill(pid, sig);
	waitpid(pid, NULL, 0);
}

/* Removes the temporary directory @dir and what the servers left in it. */
static inline void redis_server_rmdir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Runs the test's loop (a `struct evloop *loop` in scope) until @cond holds or @ms passed. */
#define RUN_UNTIL(cond, ms)                                                                        \
	do {                                                                                       \
		uint64_t ru_t0 = mono_ms();                                                        \
		while (!(cond) && mono_ms() - ru_t0 < (uint64_t)(ms))                              \
			evloop_run_once(loop, 10);                                                 \
	} while (0)

/* A command's reply as the tests look at it. */
struct cmd_reply {
	bool done;
	int err;
	int type;
	long long integer;
	size_t elements; /* of an array reply */
	char str[512];	 /* of a string, status or error reply (truncated) */
};

/* The redis_reply_fn filling the struct cmd_reply at @arg. */
static inline void cmd_reply_cb(struct redis *r, int err, const redisReply *reply, void *arg)
{
	struct cmd_reply *x = arg;

	(void)r;
	x->done = true;
	x->err = err;
	if (reply) {
		x->type = reply->type;
		x->integer = reply->integer;
		x->elements = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
		if (reply->str)
			snprintf(x->str, sizeof(x->str), "%.*s", (int)reply->len, reply->str);
	}
}

/*
 * Sends the command @argv (@argc C strings) on @r and turns @loop until its reply (3 s at most).
 * .err: the negative errno when it could not be sent, 1 when no reply came, else the reply's.
 */
static inline struct cmd_reply redis_cmd_argv(struct evloop *loop, struct redis *r, int argc,
					      const char **argv)
{
	struct cmd_reply x = {.err = 1};
	int ret = redis_command_argv(r, cmd_reply_cb, &x, argc, argv, NULL);

	if (ret < 0) {
		x.err = ret;
		return x;
	}
	RUN_UNTIL(x.done, 3000);
	return x;
}

#endif
