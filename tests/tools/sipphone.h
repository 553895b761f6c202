/*
 * sipphone.h - what the files of sipphone share (sipphone.c: output lines, sending, receiving,
 * the steps and main; sipphone_media.c: G.711, codecs, WAV recording; sipphone_script.c: step
 * argument parsing, reading the script). See sipphone.c for the tool.
 */
#ifndef RS_SIPPHONE_H
#define RS_SIPPHONE_H

#include "flv_read.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librtmp/amf.h>
#include <librtmp/log.h>
#include <librtmp/rtmp.h>
#include <speex/speex.h>

#define MAX_URL		2048
#define SCRIPT_LINE_MAX 4096
#define MAX_STEPS	512
#define MAX_TOKENS	40
#define MAX_ARGS	32
#define BODY_MAX	65536	   /* our own messages */
#define RECV_BODY_MAX	(1u << 20) /* larger incoming messages are dropped */
#define PRINT_MAX_DEPTH 8	   /* levels of nesting printed inside a value; deeper: "..." */
#define PRINT_MAX_ARGS	32	   /* values printed of one argument list, object or array */
#define MAX_EVENTS	1024
#define EVENT_NAME_MAX	64
#define EVENT_MAX_ARGS	16
#define EVENT_ARG_MAX	1024 /* text kept of each event argument */
#define DESC_MAX	512
#define DEFAULT_WAIT_S	10.0
#define DEFAULT_TIMEOUT 60.0
#define FRAME_S		0.020
#define FRAME_MS	20u
#define MAX_FRAME_PCM	320 /* samples in 20 ms at 16 kHz */
#define MAX_DECODED	(MAX_FRAME_PCM * 8)
#define MAX_BURST	25 /* audio messages sent per loop turn when late */
#define WAV_MAX_SECONDS 600u
#define WAV_FLUSH_S	1.0
#define TONE_AMPLITUDE	10362.0 /* -10 dBFS peak */
#define SPEEX_QUALITY	8
#define CHANNEL_NC	3 /* chunk streams: NetConnection commands, */
#define CHANNEL_NS	8 /* NetStream commands, */
#define CHANNEL_AUDIO	6 /* published audio */
#define CHANNEL_VIDEO	7 /* published video */

/* ---- values, lines --------------------------------------------------------------------------- */

enum val_kind { VAL_STR, VAL_NUM, VAL_BOOL, VAL_NULL };

struct val {
	enum val_kind kind;
	const char *str;
	double num;
	bool flag;
};

/* ---- codecs ---------------------------------------------------------------------------------- */

struct publisher;
struct player;

/* One audio codec of the FLV/RTMP audio tag: 20 ms of @rate Hz per published message. */
struct codec {
	const char *name;
	unsigned flv_format; /* high nibble of the audio tag byte */
	uint8_t tag;	     /* the whole tag byte we send */
	unsigned rate;
	/* Encodes @n samples into @out; returns the payload size or a negative errno. */
	int (*encode)(struct publisher *p, const int16_t *pcm, unsigned n, uint8_t *out,
		      size_t outlen);
	/* Decodes one message payload into @pcm (room for @max); returns the sample count. */
	size_t (*decode)(struct player *pl, const uint8_t *in, size_t len, int16_t *pcm,
			 size_t max);
};

struct publisher {
	uint32_t stream; /* message stream id; 0 when nothing is published */
	struct flv_tag *vt; /* video to send beside the audio, by its timestamps */
	size_t n_vt, next_vt;
	bool vfirst_sent;
	const char *name;
	const struct codec *codec;
	bool sending;
	bool first_sent;
	double t0;
	uint32_t frame, frames; /* sent so far, to send */
	double phase, phase_step, amplitude;
	void *enc;
	SpeexBits bits;
	bool bits_init;
};

struct player {
	uint32_t stream; /* 0 when nothing is played */
	const char *name;
	const char *path;
	FILE *wav;
	const struct codec *codec; /* of the first audio message; NULL before */
	unsigned rate;
	uint32_t samples, max_samples;
	double next_flush;
	bool noted_other, noted_cap;
	uint64_t video_msgs, video_keys; /* video messages received (key frames among them) */
	void *dec;
	SpeexBits bits;
	bool bits_init;
};

/* ---- script ---------------------------------------------------------------------------------- */

enum step_rc { STEP_WAIT, STEP_DONE, STEP_FAIL };

struct phone;
struct step;

struct step_type {
	const char *name;
	int min_args, max_args; /* tokens after the command */
	const char *method;	/* shortcuts: the invoked method */
	bool needs_conn;	/* fails once we closed the connection ourselves */
	bool expects_close;	/* a close by the server is what it waits for */
	int (*parse)(struct step *st, int argc, char **argv, const bool *quoted);
	enum step_rc (*start)(struct phone *ph, struct step *st, double now);
	enum step_rc (*poll)(struct phone *ph, struct step *st, double now);
};

struct step {
	const struct step_type *type;
	int lineno;
	char *text; /* the line, for messages; owned (but for the connect's default) */
	char *buf;  /* the tokens point into it; owned */
	/* parsed */
	const char *name; /* method, event, stream name */
	struct val args[MAX_ARGS];
	int nargs;
	bool want_error;
	double seconds;
	int index;
	const char *substr;
	const struct codec *codec;
	double freq;
	const char *path;
	const char *video; /* publish: an FLV file whose video goes with the audio */
	/* run state */
	bool started;
	int phase;
	double deadline;
	uint64_t first_seq;
};

struct reply {
	int txid; /* of the pending invoke; 0 when none */
	const char *method;
	bool arrived, is_result, has_number;
	double number;
	char desc[DESC_MAX];
};

struct event {
	uint64_t seq;
	char name[EVENT_NAME_MAX];
	char *args[EVENT_MAX_ARGS]; /* text of each argument after the null (bounded), owned */
	int nargs;
	uint32_t stream;
	bool consumed;
};

struct phone {
	RTMP *r;
	bool up, closed_by_peer, closed_by_us;
	bool verbose;
	double deadline; /* of the whole run */
	int next_txid;
	struct reply reply;
	struct event events[MAX_EVENTS];
	size_t nevents;
	uint64_t next_seq;
	struct publisher pub;
	struct player play;
	/* connect expectations (expect-connect) */
	bool connect_want_error;
	const char *connect_substr;
};

struct script {
	struct step steps[MAX_STEPS + 1]; /* [0] is the connect */
	int nsteps;
};

/* ---- sipphone.c ------------------------------------------------------------------------------ */

/* Reports why @st failed on stderr: "sipphone: line N (text): reason". */
void step_fail(const struct step *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The connect reply, as the first step of every run (not a script command). */
extern const struct step_type connect_type;
/* The script command @name, or NULL. */
const struct step_type *step_type_find(const char *name);

/* ---- sipphone_media.c ------------------------------------------------------------------------ */

/* The codec named @name (speex, pcmu, pcma) / of FLV audio format @format, or NULL. */
const struct codec *codec_by_name(const char *name);
const struct codec *codec_by_format(unsigned format);
/* Rewrites the WAV header for the samples written so far and flushes. */
void wav_finalize(struct player *pl);
/* Appends @n samples at @rate to the WAV of @pl, converted to the file's rate. */
void wav_append(struct player *pl, const int16_t *pcm, size_t n, unsigned rate);

/* ---- sipphone_script.c ----------------------------------------------------------------------- */

/* A duration in seconds: (0, 3600], or 0 too when @zero_ok. */
bool parse_seconds(const char *s, double *out, bool zero_ok);
/* One typed argument: s:TEXT, n:NUM, b:true|false, null, or a bare (or quoted) string. Returns 0
 * or -EINVAL. */
int parse_value(const char *tok, bool quoted, struct val *v);
/* Step argument parsers (struct step_type.parse): 0 or a negative errno. */
int parse_invoke(struct step *st, int argc, char **argv, const bool *quoted);
int parse_shortcut(struct step *st, int argc, char **argv, const bool *quoted);
int parse_wait(struct step *st, int argc, char **argv, const bool *quoted);
int parse_no_event(struct step *st, int argc, char **argv, const bool *quoted);
int parse_publish(struct step *st, int argc, char **argv, const bool *quoted);
int parse_play(struct step *st, int argc, char **argv, const bool *quoted);
int parse_seconds_arg(struct step *st, int argc, char **argv, const bool *quoted);
int parse_nothing(struct step *st, int argc, char **argv, const bool *quoted);
/* Reads the script from @f into @sc (steps[0] is the connect; expect-connect goes into @ph).
 * Returns 0, -ENOMEM, or -EINVAL / -EIO after printing why. */
int read_script(struct phone *ph, struct script *sc, FILE *f);
void script_free(struct script *sc);

#endif
