/*
 * callbench.h - what the files of callbench share (callbench.c: options, time, CPU, failure
 * reasons, main; callbench_conn.c: one RTMP connection and its call commands;
 * callbench_setup.c: setup mode; callbench_hold.c: hold mode; callbench_e2e.c: hold mode's
 * end-to-end delay, callbench as the far end's media). See callbench.c for the tool.
 */
#ifndef RS_CALLBENCH_H
#define RS_CALLBENCH_H

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <librtmp/amf.h>
#include <librtmp/log.h>
#include <librtmp/rtmp.h>
#include <speex/speex.h>

#define MAX_CLIENTS   1000
#define MAX_CALLS     5000
#define MAX_PIDS      8
#define MAX_TARGETS   8
#define MAX_CODECS    8
#define MAX_REASONS   32
#define NAME_LEN      32
#define TEXT_LEN      96  /* a string taken from a server message */
#define REASON_LEN    160 /* a failure reason: a prefix and a TEXT_LEN string */
#define URL_LEN	      512
#define CONN_URL_LEN  (3 * URL_LEN)
#define BODY_MAX      2048 /* an invoke we send */
#define FRAME_MAX     200  /* one audio message body: tag byte + frame */
#define TONE_FRAMES   50   /* 1 s of 20 ms frames: whole cycles of 1000 Hz */
#define WHEEL_SLOTS   20   /* 1 ms ticks per 20 ms frame period */
#define TICK_S	      0.001
#define LATE_SKIP_S   0.2 /* the sender skips ticks when this late */
#define FAIL_PAUSE_S  0.010
#define SETUP_THREADS 16
#define DRAIN_MAX     64 /* packets read from one connection per poll round */
#define POLL_MS	      10
#define LAT_MAX	      (1u << 22) /* latencies kept per client */
#define CHAN_INVOKE   3		 /* chunk streams: commands on stream 0 */
#define CHAN_AUDIO    4		 /* audio */
#define CHAN_STREAM   8		 /* NetStream commands */
#define E2E_DRAIN_S   2.0	 /* --e2e: a frame not back this long after the window is lost */
#define GAP_S	      0.100	 /* hold: a pause this long between received frames is a gap */

enum mode { MODE_NONE, MODE_SETUP, MODE_HOLD };

struct watched {
	char name[NAME_LEN];
	int pid;
};

struct options {
	enum mode mode;
	const char *url;		  /* rtmp://host:port/app (no trailing slash) */
	const char *app;		  /* the app part of url */
	const char *target;		  /* SIP URI invited: the first --target */
	const char *targets[MAX_TARGETS]; /* every --target: invites take them in turn */
	int ntargets;
	const char *codecs; /* invite codec tokens, space separated */
	const char *codec;  /* hold: speex | pcmu */
	const char *publish_name, *play_name;
	int clients, calls, ramp, timeout_s;
	double seconds, settle;
	bool no_call, verbose, help;
	bool e2e; /* hold: callbench is the far end's media (callbench_e2e.c) */
	double progress; /* hold: seconds between PROGRESS blocks (0: none) */
	char url_buf[URL_LEN];
	char codec_buf[MAX_CODECS * NAME_LEN];
	const char *tokens[MAX_CODECS];
	int ntokens;
	struct watched pids[MAX_PIDS];
	int npids;
};


struct cpu_sample {
	long long ticks[MAX_PIDS + 1]; /* the --pid processes, then this one */
	double t;
};

struct conn {
	RTMP *r;
	pthread_mutex_t lock;	/* hold: guards r once the call is up (sender, reader, bye) */
	char url[CONN_URL_LEN]; /* librtmp keeps pointers into it: lives as long as r */
	int txid;		/* the last transaction id used */
	char uri_user[16];	/* hold --e2e: the user part invited instead of the target's */
};

enum ev_kind {
	EV_OTHER,
	EV_RESULT,
	EV_ERROR,
	EV_RINGING,
	EV_ACCEPTED,
	EV_REJECTED,
	EV_BYED,
	EV_STATUS,
};

/* A command from the server, its strings copied out of the packet. */
struct event {
	enum ev_kind kind;
	int txid;
	double num;	     /* _result: the first number after the command object */
	bool is_error;	     /* onStatus with level "error" */
	char text[TEXT_LEN]; /* _error description, ringing/rejected reason, accepted codec,
			      * onStatus code */
};

/* ---- callbench.c */

double now_s(void);
/* Sleeps until CLOCK_MONOTONIC time @t (seconds), or for @s seconds. */
void sleep_until(double t);
void sleep_s(double s);
/* Samples the CPU ticks of every --pid process and of callbench. */
void cpu_sample(const struct options *o, struct cpu_sample *s);
/* Appends " cpu_NAME_pct=X" for every watched process and this one to @out (@len bytes). */
void cpu_format(const struct options *o, const struct cpu_sample *a, const struct cpu_sample *b,
		char *out, size_t len);
/* Counts one failure of reason @text (copied). Any thread. */
void reason_add(const char *text);
/* Prints the FAILURE lines, most frequent first. */
void reasons_print(void);

/* ---- callbench_conn.c */

/* Decodes the command in @pkt (invoke or AMF3 command) into @ev. 0 or -EINVAL. */
int decode_event(const RTMPPacket *pkt, struct event *ev);
/* Reads packets on @c until a command arrives or @deadline: 0, -ETIMEDOUT or -ECONNRESET. */
int next_event(struct conn *c, double deadline, struct event *ev);
/* Sends NAME(txid, null, args...) on message stream @stream, chunk stream @chan: 0, -E2BIG,
 * -EIO. */
int send_invoke(struct conn *c, int chan, uint32_t stream, const char *name, int txid,
		const char *const *args, int nargs);
void conn_close(struct conn *c);
/* Connects @c as client @index and waits for connect's _result: 0 or a negative errno with
 * @why set (@c closed). */
int conn_open(struct conn *c, const struct options *o, int index, char *why, size_t whylen);
/* Invites the next --target (its user part replaced by c->uri_user when set) and waits for
 * the outcome: 0 (accepted, *lat_s), -EPROTO, -ETIMEDOUT or -ECONNRESET, @why set on failure. */
int call_invite(struct conn *c, const struct options *o, double *lat_s, char *why,
		size_t whylen);
/* Hangs up (or cancels) the call on @c: 0, -EPROTO, -ETIMEDOUT or -ECONNRESET. */
int call_bye(struct conn *c, const struct options *o, char *why, size_t whylen);

/* ---- callbench_e2e.c: hold --e2e, callbench as the far end's media */

struct e2e_call;

/* Starts the RTP thread for up to @ncalls calls; G.711 pass-through when @passthrough (frames
 * named by the index in their bytes), else by timestamps. 0 or a negative errno. */
int e2e_start(int ncalls, bool passthrough);
/* The media side of call @index: a UDP socket of its own and tracks of @frames frames; writes
 * the socket's port into @user (@len bytes), the user part to invite. Owned by the module
 * (e2e_free); NULL on failure. */
struct e2e_call *e2e_call_new(int index, uint32_t frames, char *user, size_t len);
void e2e_call_destroy(struct e2e_call **ep);
/* Sender: audio message @body (@len bytes, tag byte first) is about to be published; in
 * pass-through its frame index is written into its bytes. */
void e2e_frame_out(struct e2e_call *e, uint8_t *body, size_t len);
/* Reader: audio message @body (@len bytes) of RTMP timestamp @ts reached the player. */
void e2e_frame_in(struct e2e_call *e, const uint8_t *body, size_t len, uint32_t ts);
/* The measured window starts (@start) or ends with the next frame published. */
void e2e_window(struct e2e_call *e, bool start);
/* Ends the RTP thread (then e2e_report may read what it measured). */
void e2e_stop(void);
/* Prints the DELAY and LOSS lines of both directions and the round trip's DELAY line. */
void e2e_report(int calls_up);
/* Stops the thread and frees every call's media side. */
void e2e_free(void);

/* ---- the modes: exit status of the run */

int run_setup(const struct options *o);
int run_hold(const struct options *o);

#endif
