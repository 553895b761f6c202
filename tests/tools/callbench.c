/*
 * callbench.c - end-to-end call benchmark on librtmp: many clients of the signaler's `sip` app
 * place calls through the gateway to a SIP peer (SIPp answering every INVITE) and measure.
 *
 *   setup  --clients N connections, each looping invite -> accepted -> bye for --seconds:
 *          set-ups per second, invite->accepted latency percentiles, failures by reason
 *   hold   --calls N calls set up at --ramp per second, held with audio both ways at 20 ms
 *          pacing for a window of --seconds: frames sent and received, loss, CPU
 *
 * One call as the client sees it (transaction ids count up per connection):
 *
 *   connect(app "sip/benchI@bench.local"; authName, authPass "", displayName) --> _result(1)
 *     |
 *     v
 *   invite(uri, codec...) --> [_result] [ringing]* --> accepted ---------------> bye() --> _result
 *     |                                                   | hold only: createStream x2,
 *     | _error / rejected / byed / timeout: a failure     | publish "local", play "remote",
 *     | with its reason (a timeout is cancelled by bye)   | audio both ways until the window ends
 *
 * setup: every client connects first; then all start together. After a failure a client pauses
 * 10 ms (a server refusing at full speed would otherwise be hammered); a connection closed by
 * the server ends that client. Calls accepted after the end of the run are hung up, not counted.
 *
 * hold: a few set-up threads bring the calls up (blocking librtmp calls, one call at a time
 * each). A call that is up belongs to two threads, each RTMP object guarded by its own mutex:
 *   sender  one thread, a wheel of 20 slots of 1 ms: call i sends in slot i % 20, so every call
 *           sends one frame each 20 ms and the sends of all calls spread over the 20 ms
 *   reader  one poll loop over every socket; bytes already buffered inside librtmp count as
 *           readable; a packet is read to its end before the next socket is served
 * The audio is encoded once (1 s of a 1 kHz tone: Speex WB q8, or G.711 u-law) and replayed
 * cyclically. After --settle seconds the window is measured; then sending stops and every call
 * is hung up. Loss = frames sent in the window that did not come back in it (the far end is
 * SIPp's RTP echo; the edges of the window cancel out). Received frames are the audio messages
 * of the codec sent (one frame per message, as the gateway sends them).
 *
 * CPU: --pid NAME=PID (repeatable) reads /proc/PID/stat at the start and the end of the measured
 * period (setup: the run; hold: the window); callbench itself is always reported.
 *
 * Output on stdout: one "RESULT key=value ..." line, one "FAILURE count=N reason=\"...\"" line per
 * distinct failure reason (most frequent first) and one "callbench: ..." line for people.
 * Exit status: 0 when the run completed (failures counted in the output), 1 when a connection
 * could not be made (TCP, handshake or connect refused; setup mode then does not run at all),
 * 2 on a usage error. Every wait is bounded by --timeout.
 */
#include "proc_stat.h"

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
	char url_buf[URL_LEN];
	char codec_buf[MAX_CODECS * NAME_LEN];
	const char *tokens[MAX_CODECS];
	int ntokens;
	struct watched pids[MAX_PIDS];
	int npids;
};

/* ------------------------------------------------------------------ options */

enum opt_kind { OPT_STR, OPT_INT, OPT_NUM, OPT_FLAG, OPT_PID, OPT_TARGET };

#define M_SETUP 1u
#define M_HOLD	2u
#define M_ALL	(M_SETUP | M_HOLD)

struct opt_spec {
	const char *name;
	enum opt_kind kind;
	unsigned modes;
	size_t off;
	double min, max;
};

/* One option: name, kind, modes, field of struct options, bounds of a number. */
#define OPT(n, k, m, f, lo, hi)                                                                    \
	{                                                                                          \
		.name = n, .kind = k, .modes = m, .off = offsetof(struct options, f), .min = lo,   \
		.max = hi                                                                          \
	}
static const struct opt_spec opt_specs[] = {
    OPT("--url", OPT_STR, M_ALL, url, 0, 0),
    OPT("--target", OPT_TARGET, M_ALL, targets, 0, 0),
    OPT("--codecs", OPT_STR, M_ALL, codecs, 0, 0),
    OPT("--seconds", OPT_NUM, M_ALL, seconds, 1, 3600),
    OPT("--timeout", OPT_INT, M_ALL, timeout_s, 1, 120),
    OPT("--pid", OPT_PID, M_ALL, pids, 0, 0),
    OPT("--verbose", OPT_FLAG, M_ALL, verbose, 0, 0),
    OPT("--clients", OPT_INT, M_SETUP, clients, 1, MAX_CLIENTS),
    OPT("--calls", OPT_INT, M_HOLD, calls, 1, MAX_CALLS),
    OPT("--codec", OPT_STR, M_HOLD, codec, 0, 0),
    OPT("--ramp", OPT_INT, M_HOLD, ramp, 1, 10000),
    OPT("--settle", OPT_NUM, M_HOLD, settle, 0, 60),
    OPT("--no-call", OPT_FLAG, M_HOLD, no_call, 0, 0),
    OPT("--publish", OPT_STR, M_HOLD, publish_name, 0, 0),
    OPT("--play", OPT_STR, M_HOLD, play_name, 0, 0),
};
#undef OPT

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: callbench setup --url rtmp://HOST:PORT/sip --target sip:USER@HOST:PORT\n"
	    "                       [--clients N (32)] [--seconds S (15)] [--codecs 'wideband "
	    "ulaw']\n"
	    "       callbench hold  --url rtmp://HOST:PORT/sip --target sip:USER@HOST:PORT\n"
	    "                       [--calls N (200)] [--seconds S (20)] [--codec speex|pcmu]\n"
	    "                       [--codecs TOKENS] [--ramp CALLS_PER_S (50)] [--settle S (2)]\n"
	    "                       [--no-call] [--publish NAME (local)] [--play NAME (remote)]\n"
	    "       common: [--timeout S (5)] [--pid NAME=PID]... [--verbose]\n"
	    "  setup  N clients (user benchI@bench.local, empty password) loop "
	    "invite->accepted->bye\n"
	    "  hold   N calls held with audio at 20 ms pacing; --codec speex invites 'wideband "
	    "ulaw'\n"
	    "         (the gateway transcodes to PCMU), pcmu invites 'pcmu' (pass-through)\n"
	    "  --codecs     the invite's codec tokens instead (wideband narrowband pcmu pcma ulaw\n"
	    "               alaw dtmf)\n"
	    "  --no-call    hold without invite/bye: only connect, publish and play (a self-test "
	    "of\n"
	    "               the media path, e.g. against the echo app with --play local)\n"
	    "  --target     repeatable: successive invites take the targets in turn (e.g. several\n"
	    "               SIPp UASs, so that no one RTP echo socket carries every call)\n"
	    "  --pid        report the CPU of process PID as cpu_NAME_pct (percent of one core "
	    "over\n"
	    "               the measured period; -1 when it could not be read)\n"
	    "Prints a RESULT key=value line, FAILURE lines and a summary. Exit 0: run completed;\n"
	    "1: a connection could not be made; 2: usage error.\n");
}

static bool parse_double(const char *s, double *out)
{
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && *end == '\0' && isfinite(*out);
}

/* Parses "NAME=PID" into the next --pid slot. Returns 0 or -EINVAL. */
static int add_pid(struct options *o, const char *v)
{
	const char *eq = strchr(v, '=');
	double pid;
	size_t n;

	if (o->npids >= MAX_PIDS || !eq)
		return -EINVAL;
	n = (size_t)(eq - v);
	if (n == 0 || n >= NAME_LEN ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz"
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") < n)
		return -EINVAL;
	if (!parse_double(eq + 1, &pid) || pid < 1 || pid > INT_MAX || pid != floor(pid))
		return -EINVAL;
	memcpy(o->pids[o->npids].name, v, n);
	o->pids[o->npids].name[n] = '\0';
	o->pids[o->npids].pid = (int)pid;
	o->npids++;
	return 0;
}

/* Sets one option from @spec and its value @v. Returns 0 or -EINVAL. */
static int set_option(struct options *o, const struct opt_spec *spec, const char *v)
{
	char *field = (char *)o + spec->off;
	double d;

	switch (spec->kind) {
	case OPT_STR:
		*(const char **)(void *)field = v;
		return 0;
	case OPT_INT:
	case OPT_NUM:
		if (!parse_double(v, &d) || d < spec->min || d > spec->max)
			return -EINVAL;
		if (spec->kind == OPT_NUM) {
			*(double *)(void *)field = d;
			return 0;
		}
		if (d != floor(d))
			return -EINVAL;
		*(int *)(void *)field = (int)d;
		return 0;
	case OPT_FLAG:
		*(bool *)(void *)field = true;
		return 0;
	case OPT_PID:
		return add_pid(o, v);
	case OPT_TARGET:
		if (o->ntargets >= MAX_TARGETS || !*v || strlen(v) >= URL_LEN)
			return -EINVAL;
		o->targets[o->ntargets++] = v;
		o->target = o->targets[0];
		return 0;
	}
	return -EINVAL;
}

/* Splits o->codecs into o->tokens. Returns 0 or -EINVAL. */
static int split_codecs(struct options *o)
{
	char *save = NULL, *tok;

	if (strlen(o->codecs) >= sizeof(o->codec_buf))
		return -EINVAL;
	strcpy(o->codec_buf, o->codecs);
	for (tok = strtok_r(o->codec_buf, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
		if (o->ntokens >= MAX_CODECS || strlen(tok) >= NAME_LEN)
			return -EINVAL;
		o->tokens[o->ntokens++] = tok;
	}
	return 0;
}

/* Checks the URL (rtmp://host[:port]/app) and keeps its app part. Returns 0 or -EINVAL. */
static int check_url(struct options *o)
{
	size_t n = strlen(o->url);
	const char *slash;

	if (n >= sizeof(o->url_buf) || strncmp(o->url, "rtmp://", 7) != 0 || strpbrk(o->url, " \\"))
		return -EINVAL;
	memcpy(o->url_buf, o->url, n + 1);
	while (n > 7 && o->url_buf[n - 1] == '/')
		o->url_buf[--n] = '\0';
	slash = strchr(o->url_buf + 7, '/');
	if (!slash || !slash[1] || slash == o->url_buf + 7)
		return -EINVAL;
	o->url = o->url_buf;
	o->app = slash + 1;
	return 0;
}

/* Parses argv into @o, fills in the defaults and checks the result. Returns 0 or -EINVAL
 * after printing why (or with o->help set). */
static int parse_options(int argc, char **argv, struct options *o)
{
	unsigned mask;

	memset(o, 0, sizeof(*o));
	o->timeout_s = 5;
	o->ramp = 50;
	o->settle = 2;
	o->publish_name = "local";
	o->play_name = "remote";
	if (argc < 2) {
		fprintf(stderr, "callbench: no mode (setup or hold)\n");
		return -EINVAL;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		o->help = true;
		return 0;
	}
	if (strcmp(argv[1], "setup") == 0) {
		o->mode = MODE_SETUP;
		mask = M_SETUP;
	} else if (strcmp(argv[1], "hold") == 0) {
		o->mode = MODE_HOLD;
		mask = M_HOLD;
	} else {
		fprintf(stderr, "callbench: unknown mode '%s' (setup or hold)\n", argv[1]);
		return -EINVAL;
	}
	for (int i = 2; i < argc; i++) {
		const struct opt_spec *spec = NULL;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			o->help = true;
			return 0;
		}
		for (size_t k = 0; k < sizeof(opt_specs) / sizeof(opt_specs[0]); k++)
			if (strcmp(argv[i], opt_specs[k].name) == 0)
				spec = &opt_specs[k];
		if (!spec) {
			fprintf(stderr, "callbench: unknown option %s\n", argv[i]);
			return -EINVAL;
		}
		if (!(spec->modes & mask)) {
			fprintf(stderr, "callbench: %s does not apply to %s\n", argv[i], argv[1]);
			return -EINVAL;
		}
		if (spec->kind == OPT_FLAG) {
			set_option(o, spec, NULL);
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "callbench: %s needs a value\n", argv[i]);
			return -EINVAL;
		}
		if (set_option(o, spec, argv[i + 1]) < 0) {
			fprintf(stderr, "callbench: bad value '%s' for %s\n", argv[i + 1], argv[i]);
			return -EINVAL;
		}
		i++;
	}
	if (!o->url || check_url(o) < 0) {
		fprintf(stderr,
			"callbench: --url rtmp://HOST[:PORT]/APP is required (no spaces)\n");
		return -EINVAL;
	}
	if (!o->no_call && (!o->target || !*o->target || strlen(o->target) >= URL_LEN)) {
		fprintf(stderr, "callbench: --target sip:USER@HOST[:PORT] is required\n");
		return -EINVAL;
	}
	if (!o->codec)
		o->codec = "speex";
	if (strcmp(o->codec, "speex") != 0 && strcmp(o->codec, "pcmu") != 0) {
		fprintf(stderr, "callbench: --codec is speex or pcmu\n");
		return -EINVAL;
	}
	if (!o->codecs)
		o->codecs = strcmp(o->codec, "pcmu") == 0 ? "pcmu" : "wideband ulaw";
	if (split_codecs(o) < 0) {
		fprintf(stderr, "callbench: --codecs: at most %d tokens of < %d characters\n",
			MAX_CODECS, NAME_LEN);
		return -EINVAL;
	}
	if (!*o->publish_name || !*o->play_name || strlen(o->publish_name) >= NAME_LEN ||
	    strlen(o->play_name) >= NAME_LEN) {
		fprintf(stderr, "callbench: --publish/--play: a name of 1..%d characters\n",
			NAME_LEN - 1);
		return -EINVAL;
	}
	if (!o->clients)
		o->clients = 32;
	if (!o->calls)
		o->calls = 200;
	if (o->seconds == 0)
		o->seconds = o->mode == MODE_SETUP ? 15 : 20;
	return 0;
}

/* ------------------------------------------------------------------ time and CPU */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts;

	if (t <= 0)
		return;
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void sleep_s(double s)
{
	sleep_until(now_s() + s);
}

struct cpu_sample {
	long long ticks[MAX_PIDS + 1]; /* the --pid processes, then this one */
	double t;
};

static void cpu_sample(const struct options *o, struct cpu_sample *s)
{
	for (int i = 0; i < o->npids; i++)
		s->ticks[i] = proc_cpu_ticks(o->pids[i].pid);
	s->ticks[o->npids] = proc_cpu_ticks(0);
	s->t = now_s();
}

/* Appends " cpu_NAME_pct=X" for every watched process and this one to @out. */
static void cpu_format(const struct options *o, const struct cpu_sample *a,
		       const struct cpu_sample *b, char *out, size_t len)
{
	double hz = (double)sysconf(_SC_CLK_TCK), span = b->t - a->t;
	size_t used = strlen(out);

	for (int i = 0; i <= o->npids && used < len; i++) {
		const char *name = i < o->npids ? o->pids[i].name : "callbench";
		double pct = -1;
		int r;

		if (a->ticks[i] >= 0 && b->ticks[i] >= 0 && span > 0)
			pct = (double)(b->ticks[i] - a->ticks[i]) / hz / span * 100;
		r = snprintf(out + used, len - used, " cpu_%s_pct=%.1f", name, pct);
		if (r < 0)
			break;
		used += (size_t)r;
	}
}

/* ------------------------------------------------------------------ failure reasons */

static struct {
	pthread_mutex_t lock;
	struct {
		char text[REASON_LEN];
		unsigned long count;
	} r[MAX_REASONS];
	int n;
	unsigned long other;
} reasons = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Counts one failure of reason @text (copied). Any thread. */
static void reason_add(const char *text)
{
	pthread_mutex_lock(&reasons.lock);
	for (int i = 0; i < reasons.n; i++) {
		if (strcmp(reasons.r[i].text, text) == 0) {
			reasons.r[i].count++;
			goto out;
		}
	}
	if (reasons.n < MAX_REASONS) {
		snprintf(reasons.r[reasons.n].text, REASON_LEN, "%s", text);
		reasons.r[reasons.n++].count = 1;
	} else {
		reasons.other++;
	}
out:
	pthread_mutex_unlock(&reasons.lock);
}

/* Prints the FAILURE lines, most frequent first. */
static void reasons_print(void)
{
	bool done[MAX_REASONS] = {false};

	for (int k = 0; k < reasons.n; k++) {
		int best = -1;

		for (int i = 0; i < reasons.n; i++)
			if (!done[i] && (best < 0 || reasons.r[i].count > reasons.r[best].count))
				best = i;
		done[best] = true;
		printf("FAILURE count=%lu reason=\"%s\"\n", reasons.r[best].count,
		       reasons.r[best].text);
	}
	if (reasons.other)
		printf("FAILURE count=%lu reason=\"(other reasons: more than %d distinct)\"\n",
		       reasons.other, MAX_REASONS);
}

/* ------------------------------------------------------------------ one RTMP connection */

struct conn {
	RTMP *r;
	pthread_mutex_t lock;	/* hold: guards r once the call is up (sender, reader, bye) */
	char url[CONN_URL_LEN]; /* librtmp keeps pointers into it: lives as long as r */
	int txid;		/* the last transaction id used */
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

static const struct {
	const char *name;
	enum ev_kind kind;
} ev_names[] = {
    {.name = "_result", .kind = EV_RESULT},    {.name = "_error", .kind = EV_ERROR},
    {.name = "ringing", .kind = EV_RINGING},   {.name = "accepted", .kind = EV_ACCEPTED},
    {.name = "rejected", .kind = EV_REJECTED}, {.name = "byed", .kind = EV_BYED},
    {.name = "onStatus", .kind = EV_STATUS},
};

/* Copies @v into @dst (size @len), control characters and quotes replaced by '?'. */
static void copy_text(char *dst, size_t len, const AVal *v)
{
	size_t n = v->av_len > 0 ? (size_t)v->av_len : 0;

	if (n >= len)
		n = len - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v->av_val[i];

		dst[i] = ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\' ? '?' : (char)ch;
	}
	dst[n] = '\0';
}

static bool aval_is(const AVal *v, const char *s)
{
	size_t n = strlen(s);

	return v->av_len == (int)n && memcmp(v->av_val, s, n) == 0;
}

/* The string property @key of object @o, or NULL. */
static const AVal *obj_string(AMFObject *o, const char *key)
{
	AVal k = {(char *)key, (int)strlen(key)};
	AMFObjectProperty *p = AMF_GetProp(o, &k, -1);

	return p && p->p_type == AMF_STRING ? &p->p_vu.p_aval : NULL;
}

/* Describes property @p as text: a string as is, a number, or an object's description/code. */
static void prop_text(AMFObjectProperty *p, char *dst, size_t len)
{
	const AVal *s = NULL;

	dst[0] = '\0';
	if (p->p_type == AMF_STRING) {
		s = &p->p_vu.p_aval;
	} else if (p->p_type == AMF_NUMBER) {
		snprintf(dst, len, "%g", p->p_vu.p_number);
	} else if (p->p_type == AMF_OBJECT || p->p_type == AMF_ECMA_ARRAY) {
		s = obj_string(&p->p_vu.p_object, "description");
		if (!s || s->av_len == 0)
			s = obj_string(&p->p_vu.p_object, "code");
	}
	if (s)
		copy_text(dst, len, s);
}

/* Decodes the command in @pkt (invoke or AMF3 command) into @ev. Returns 0, or -EINVAL when it
 * is not a decodable command with a name and a transaction id. */
static int decode_event(const RTMPPacket *pkt, struct event *ev)
{
	const char *body = pkt->m_body;
	int size = (int)pkt->m_nBodySize;
	AMFObject obj;
	double txid;

	if (pkt->m_packetType == RTMP_PACKET_TYPE_FLEX_MESSAGE) {
		body++; /* AMF3 command: one 0x00 byte before an AMF0 body */
		size--;
	}
	if (size <= 0)
		return -EINVAL;
	memset(&obj, 0, sizeof(obj));
	if (AMF_Decode(&obj, body, size, FALSE) < 0 || obj.o_num < 2 ||
	    obj.o_props[0].p_type != AMF_STRING || obj.o_props[1].p_type != AMF_NUMBER) {
		AMF_Reset(&obj);
		return -EINVAL;
	}
	memset(ev, 0, sizeof(*ev));
	for (size_t i = 0; i < sizeof(ev_names) / sizeof(ev_names[0]); i++)
		if (aval_is(&obj.o_props[0].p_vu.p_aval, ev_names[i].name))
			ev->kind = ev_names[i].kind;
	txid = obj.o_props[1].p_vu.p_number;
	ev->txid = txid >= 0 && txid < INT_MAX ? (int)txid : -1;
	switch (ev->kind) {
	case EV_RESULT:
		for (int i = 3; i < obj.o_num; i++) {
			if (obj.o_props[i].p_type == AMF_NUMBER) {
				ev->num = obj.o_props[i].p_vu.p_number;
				break;
			}
		}
		break;
	case EV_ERROR:
		for (int i = 2; i < obj.o_num && !ev->text[0]; i++)
			if (obj.o_props[i].p_type == AMF_OBJECT ||
			    obj.o_props[i].p_type == AMF_ECMA_ARRAY)
				prop_text(&obj.o_props[i], ev->text, sizeof(ev->text));
		if (!ev->text[0])
			snprintf(ev->text, sizeof(ev->text), "(no description)");
		break;
	case EV_RINGING:
	case EV_ACCEPTED:
	case EV_REJECTED:
		if (obj.o_num > 3)
			prop_text(&obj.o_props[3], ev->text, sizeof(ev->text));
		break;
	case EV_STATUS:
		if (obj.o_num > 3 && obj.o_props[3].p_type == AMF_OBJECT) {
			AMFObject *info = &obj.o_props[3].p_vu.p_object;
			const AVal *code = obj_string(info, "code");
			const AVal *level = obj_string(info, "level");

			if (code)
				copy_text(ev->text, sizeof(ev->text), code);
			ev->is_error = level && aval_is(level, "error");
		}
		break;
	default:
		break;
	}
	AMF_Reset(&obj);
	return 0;
}

/* Waits until @r has bytes to read or @deadline passes. Returns true when readable (bytes
 * already buffered inside librtmp count). */
static bool wait_readable(RTMP *r, double deadline)
{
	struct pollfd pfd = {.fd = RTMP_Socket(r), .events = POLLIN};

	if (r->m_sb.sb_size > 0)
		return true;
	for (;;) {
		double left = deadline - now_s();
		int rc;

		if (left <= 0)
			return false;
		rc = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (rc > 0)
			return true;
		if (rc < 0 && errno != EINTR)
			return true; /* let the read report the error */
	}
}

/*
 * Reads packets on @c until a command arrives (decoded into @ev) or @deadline passes. Control
 * messages go to librtmp (chunk size, window, pings); media and data are dropped. Only for a
 * connection no other thread uses. Returns 0, -ETIMEDOUT or -ECONNRESET (closed or broken).
 */
static int next_event(struct conn *c, double deadline, struct event *ev)
{
	RTMPPacket pkt;

	memset(&pkt, 0, sizeof(pkt));
	for (;;) {
		if (!RTMP_IsConnected(c->r))
			return -ECONNRESET;
		if (now_s() > deadline || !wait_readable(c->r, deadline))
			return -ETIMEDOUT;
		if (!RTMP_ReadPacket(c->r, &pkt)) {
			RTMPPacket_Free(&pkt);
			return RTMP_IsConnected(c->r) && RTMP_IsTimedout(c->r) ? -ETIMEDOUT
									       : -ECONNRESET;
		}
		if (!RTMPPacket_IsReady(&pkt))
			continue;
		if (!pkt.m_body || pkt.m_nBodySize == 0) {
			RTMPPacket_Free(&pkt);
			continue;
		}
		switch (pkt.m_packetType) {
		case RTMP_PACKET_TYPE_INVOKE:
		case RTMP_PACKET_TYPE_FLEX_MESSAGE:
			if (decode_event(&pkt, ev) == 0) {
				RTMPPacket_Free(&pkt);
				return 0;
			}
			break;
		case RTMP_PACKET_TYPE_AUDIO:
		case RTMP_PACKET_TYPE_VIDEO:
		case RTMP_PACKET_TYPE_INFO:
		case RTMP_PACKET_TYPE_FLEX_STREAM_SEND:
			break;
		default:
			RTMP_ClientPacket(c->r, &pkt);
			break;
		}
		RTMPPacket_Free(&pkt);
	}
}

/*
 * Sends NAME(txid, null, args...) with string arguments on message stream @stream, chunk stream
 * @chan. Returns 0, -E2BIG when it does not fit in BODY_MAX, or -EIO when librtmp fails.
 * The caller holds c->lock when other threads use @c.
 */
static int send_invoke(struct conn *c, int chan, uint32_t stream, const char *name, int txid,
		       const char *const *args, int nargs)
{
	char buf[RTMP_MAX_HEADER_SIZE + BODY_MAX];
	char *body = buf + RTMP_MAX_HEADER_SIZE, *end = buf + sizeof(buf), *enc = body;
	AVal nm = {(char *)name, (int)strlen(name)};
	RTMPPacket pkt;

	enc = AMF_EncodeString(enc, end, &nm);
	enc = AMF_EncodeNumber(enc, end, txid);
	if (enc && enc < end)
		*enc++ = AMF_NULL;
	else
		enc = NULL;
	for (int i = 0; i < nargs && enc; i++) {
		AVal s = {(char *)args[i], (int)strlen(args[i])};

		enc = AMF_EncodeString(enc, end, &s);
	}
	if (!enc)
		return -E2BIG;
	memset(&pkt, 0, sizeof(pkt));
	pkt.m_nChannel = chan;
	pkt.m_headerType = RTMP_PACKET_SIZE_LARGE;
	pkt.m_packetType = RTMP_PACKET_TYPE_INVOKE;
	pkt.m_nInfoField2 = (int32_t)stream;
	pkt.m_body = body;
	pkt.m_nBodySize = (uint32_t)(enc - body);
	return RTMP_SendPacket(c->r, &pkt, FALSE) ? 0 : -EIO;
}

static void conn_close(struct conn *c)
{
	if (!c->r)
		return;
	RTMP_Close(c->r);
	/* librtmp does not free the "conn=" arguments it parsed into Link.extras. */
	AMF_Reset(&c->r->Link.extras);
	RTMP_Free(c->r);
	c->r = NULL;
}

/*
 * Connects @c as client @index (user bench<index>@bench.local, empty password: no REGISTER)
 * and waits for the connect's _result. On failure @c is closed and @why says what failed.
 * Returns 0, -EINVAL (URL), -ECONNREFUSED (TCP or handshake), -EACCES (connect _error),
 * -ETIMEDOUT or -ECONNRESET.
 */
static int conn_open(struct conn *c, const struct options *o, int index, char *why, size_t whylen)
{
	struct timeval tv = {.tv_sec = o->timeout_s};
	char user[NAME_LEN];
	struct event ev;
	double deadline;
	int n, rc;

	snprintf(user, sizeof(user), "bench%d@bench.local", index);
	/* app and tcUrl carry the user as a Flash client's NetConnection.connect would. */
	n = snprintf(c->url, sizeof(c->url),
		     "%s app=%s/%s tcUrl=%s/%s conn=S:bench%d conn=S: conn=S:bench%d", o->url,
		     o->app, user, o->url, user, index, index);
	if (n < 0 || (size_t)n >= sizeof(c->url)) {
		snprintf(why, whylen, "connect: URL too long");
		return -EINVAL;
	}
	c->r = RTMP_Alloc();
	if (!c->r) {
		snprintf(why, whylen, "connect: out of memory");
		return -ENOMEM;
	}
	RTMP_Init(c->r);
	c->txid = 1;
	if (!RTMP_SetupURL(c->r, c->url)) {
		snprintf(why, whylen, "connect: librtmp refused the URL %s", o->url);
		rc = -EINVAL;
		goto out_close;
	}
	c->r->Link.timeout = o->timeout_s;
	if (!RTMP_Connect(c->r, NULL)) {
		snprintf(why, whylen, "connect: TCP connect or RTMP handshake to %s failed",
			 o->url);
		rc = -ECONNREFUSED;
		goto out_close;
	}
	/* librtmp bounds reads (SO_RCVTIMEO); bound writes too, or a stalled server blocks us. */
	setsockopt(RTMP_Socket(c->r), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	deadline = now_s() + o->timeout_s;
	for (;;) {
		rc = next_event(c, deadline, &ev);
		if (rc < 0) {
			snprintf(why, whylen, "connect: %s",
				 rc == -ETIMEDOUT ? "no reply" : "connection closed by the server");
			goto out_close;
		}
		if (ev.txid != 1 || (ev.kind != EV_RESULT && ev.kind != EV_ERROR))
			continue;
		if (ev.kind == EV_RESULT)
			return 0;
		snprintf(why, whylen, "connect refused: %s", ev.text);
		rc = -EACCES;
		goto out_close;
	}
out_close:
	conn_close(c);
	return rc;
}

static atomic_uint next_target; /* the --target of the next invite, modulo o->ntargets */

/*
 * Places a call on @c: invite(target, codecs...) to the next --target in turn, and waits for its
 * outcome. Returns 0 when accepted (*lat_s: invite to accepted), -EPROTO on a failure the server
 * reported (_error, rejected, byed; the call is over), -ETIMEDOUT (the caller cancels it with
 * bye) or -ECONNRESET. @why says why on failure.
 */
static int call_invite(struct conn *c, const struct options *o, double *lat_s, char *why,
		       size_t whylen)
{
	const char *args[1 + MAX_CODECS];
	int txid = ++c->txid;
	double t0 = now_s(), deadline = t0 + o->timeout_s;

	args[0] = o->targets[atomic_fetch_add(&next_target, 1) % (unsigned)o->ntargets];
	for (int i = 0; i < o->ntokens; i++)
		args[1 + i] = o->tokens[i];
	if (send_invoke(c, CHAN_INVOKE, 0, "invite", txid, args, 1 + o->ntokens) < 0) {
		snprintf(why, whylen, "invite: send failed");
		return -ECONNRESET;
	}
	for (;;) {
		struct event ev;
		int rc = next_event(c, deadline, &ev);

		if (rc == -ETIMEDOUT) {
			snprintf(why, whylen, "invite: not accepted within %d s", o->timeout_s);
			return rc;
		}
		if (rc < 0) {
			snprintf(why, whylen, "invite: connection closed by the server");
			return rc;
		}
		switch (ev.kind) {
		case EV_ACCEPTED:
			*lat_s = now_s() - t0;
			return 0;
		case EV_ERROR:
			if (ev.txid != txid)
				break;
			snprintf(why, whylen, "invite _error: %s", ev.text);
			return -EPROTO;
		case EV_REJECTED:
			snprintf(why, whylen, "rejected: %s", ev.text);
			return -EPROTO;
		case EV_BYED:
			snprintf(why, whylen, "byed before accepted");
			return -EPROTO;
		default:
			break; /* _result of the invite, ringing, late replies */
		}
	}
}

/* Hangs up (or cancels) the call on @c and waits for bye's reply. Returns 0, -EPROTO (bye
 * _error), -ETIMEDOUT or -ECONNRESET; @why says why on failure. */
static int call_bye(struct conn *c, const struct options *o, char *why, size_t whylen)
{
	int txid = ++c->txid;
	double deadline = now_s() + o->timeout_s;

	if (send_invoke(c, CHAN_INVOKE, 0, "bye", txid, NULL, 0) < 0) {
		snprintf(why, whylen, "bye: send failed");
		return -ECONNRESET;
	}
	for (;;) {
		struct event ev;
		int rc = next_event(c, deadline, &ev);

		if (rc < 0) {
			snprintf(why, whylen, "bye: %s",
				 rc == -ETIMEDOUT ? "no reply" : "connection closed by the server");
			return rc;
		}
		if (ev.txid != txid)
			continue;
		if (ev.kind == EV_RESULT)
			return 0;
		if (ev.kind == EV_ERROR) {
			snprintf(why, whylen, "bye _error: %s", ev.text);
			return -EPROTO;
		}
	}
}

/* ------------------------------------------------------------------ setup mode */

struct client {
	struct conn c;
	int index;
	int connect_rc;
	char why[REASON_LEN];
	double *lat_ms; /* invite->accepted of the set-ups counted */
	size_t nlat, cap;
	unsigned long setups, failed, bye_failed, late;
};

static struct {
	const struct options *o;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int arrived;	/* clients done connecting (either way) */
	bool go, abort; /* set by main once all arrived */
	double deadline;
} srun = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void lat_add(struct client *cl, double ms)
{
	if (cl->nlat == cl->cap) {
		size_t cap = cl->cap ? cl->cap * 2 : 1024;
		double *v;

		if (cap > LAT_MAX)
			return;
		v = realloc(cl->lat_ms, cap * sizeof(*v));
		if (!v)
			return;
		cl->lat_ms = v;
		cl->cap = cap;
	}
	cl->lat_ms[cl->nlat++] = ms;
}

/* One client's calls until @deadline. */
static void setup_loop(struct client *cl, double deadline)
{
	const struct options *o = srun.o;
	char why[REASON_LEN];

	while (now_s() < deadline) {
		double lat = 0;
		int rc = call_invite(&cl->c, o, &lat, why, sizeof(why));

		if (rc == 0) {
			if (now_s() <= deadline) {
				cl->setups++;
				lat_add(cl, lat * 1000);
			} else {
				cl->late++;
			}
			rc = call_bye(&cl->c, o, why, sizeof(why));
			if (rc < 0) {
				cl->bye_failed++;
				reason_add(why);
			}
		} else {
			cl->failed++;
			reason_add(why);
			if (rc == -ETIMEDOUT) /* cancel it; the outcome adds nothing */
				rc = call_bye(&cl->c, o, why, sizeof(why));
			if (rc != -ECONNRESET)
				sleep_s(FAIL_PAUSE_S);
		}
		if (rc == -ECONNRESET)
			break;
	}
}

static void *setup_client_main(void *arg)
{
	struct client *cl = arg;
	double deadline;
	bool abort_run;

	cl->connect_rc = conn_open(&cl->c, srun.o, cl->index, cl->why, sizeof(cl->why));
	pthread_mutex_lock(&srun.lock);
	srun.arrived++;
	pthread_cond_broadcast(&srun.cv);
	while (!srun.go)
		pthread_cond_wait(&srun.cv, &srun.lock);
	abort_run = srun.abort;
	deadline = srun.deadline;
	pthread_mutex_unlock(&srun.lock);
	if (cl->connect_rc == 0 && !abort_run)
		setup_loop(cl, deadline);
	conn_close(&cl->c);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile @p of the sorted @v. */
static double percentile(const double *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return 0;
	k = (size_t)ceil(p / 100.0 * (double)n);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

/* Waits until all @n clients finished connecting, bounded. Returns true when they did. */
static bool wait_arrivals(int n, double deadline)
{
	bool all;

	pthread_mutex_lock(&srun.lock);
	while (srun.arrived < n) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&srun.cv, &srun.lock, &ts);
		if (now_s() > deadline)
			break;
	}
	all = srun.arrived >= n;
	pthread_mutex_unlock(&srun.lock);
	return all;
}

static void setup_report(const struct options *o, struct client *cls, int n,
			 const struct cpu_sample *c0, const struct cpu_sample *c1)
{
	unsigned long setups = 0, failed = 0, bye_failed = 0, late = 0;
	char line[2048];
	size_t nlat = 0, k = 0;
	double *all, span = c1->t - c0->t;

	for (int i = 0; i < n; i++) {
		setups += cls[i].setups;
		failed += cls[i].failed;
		bye_failed += cls[i].bye_failed;
		late += cls[i].late;
		nlat += cls[i].nlat;
	}
	all = malloc((nlat ? nlat : 1) * sizeof(*all));
	if (all) {
		for (int i = 0; i < n; i++) {
			if (!cls[i].nlat)
				continue;
			memcpy(all + k, cls[i].lat_ms, cls[i].nlat * sizeof(*all));
			k += cls[i].nlat;
		}
		qsort(all, nlat, sizeof(*all), cmp_double);
	} else {
		nlat = 0;
	}
	snprintf(line, sizeof(line),
		 "RESULT mode=setup clients=%d seconds=%.1f setups=%lu rate=%.1f p50_ms=%.2f "
		 "p95_ms=%.2f p99_ms=%.2f max_ms=%.2f failed=%lu bye_failed=%lu late=%lu "
		 "connect_failed=0",
		 n, span, setups, span > 0 ? (double)setups / span : 0, percentile(all, nlat, 50),
		 percentile(all, nlat, 95), percentile(all, nlat, 99), nlat ? all[nlat - 1] : 0,
		 failed, bye_failed, late);
	cpu_format(o, c0, c1, line, sizeof(line));
	printf("%s\n", line);
	reasons_print();
	printf("callbench: %lu set-ups in %.1f s = %.1f/s with %d clients (codecs '%s'); "
	       "invite->accepted p50 %.1f ms, p99 %.1f ms; %lu failed\n",
	       setups, span, span > 0 ? (double)setups / span : 0, n, o->codecs,
	       percentile(all, nlat, 50), percentile(all, nlat, 99), failed);
	free(all);
}

static int run_setup(const struct options *o)
{
	struct cpu_sample c0, c1;
	struct client *cls;
	pthread_t *th;
	int n = o->clients, started = 0, connect_failed = 0, status = 0;

	cls = calloc((size_t)n, sizeof(*cls));
	th = calloc((size_t)n, sizeof(*th));
	if (!cls || !th) {
		fprintf(stderr, "callbench: out of memory\n");
		free(cls);
		free(th);
		return 1;
	}
	srun.o = o;
	for (; started < n; started++) {
		cls[started].index = started;
		if (pthread_create(&th[started], NULL, setup_client_main, &cls[started]) != 0) {
			fprintf(stderr, "callbench: cannot start client thread %d\n", started);
			break;
		}
	}
	/* Each connect is bounded by librtmp's timeout; TCP connect itself by the kernel. */
	if (!wait_arrivals(started, now_s() + 3.0 * o->timeout_s + 5)) {
		fprintf(stderr, "callbench: clients still connecting after %d s: giving up\n",
			3 * o->timeout_s + 5);
		return 1; /* threads still run: exit without freeing what they use */
	}
	for (int i = 0; i < started; i++) {
		if (cls[i].connect_rc == 0)
			continue;
		if (connect_failed++ < 5)
			fprintf(stderr, "callbench: client %d: %s\n", i, cls[i].why);
	}
	pthread_mutex_lock(&srun.lock);
	srun.abort = connect_failed > 0 || started < n;
	cpu_sample(o, &c0);
	srun.deadline = c0.t + o->seconds;
	srun.go = true;
	pthread_cond_broadcast(&srun.cv);
	pthread_mutex_unlock(&srun.lock);
	if (!srun.abort) {
		sleep_until(srun.deadline);
		cpu_sample(o, &c1);
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (srun.abort) {
		printf("RESULT mode=setup clients=%d setups=0 connect_failed=%d\n", n,
		       connect_failed + (n - started));
		printf("callbench: %d of %d clients could not connect: no run\n",
		       connect_failed + (n - started), n);
		status = 1;
	} else {
		setup_report(o, cls, n, &c0, &c1);
	}
	for (int i = 0; i < n; i++)
		free(cls[i].lat_ms);
	free(cls);
	free(th);
	return status;
}

/* ------------------------------------------------------------------ hold mode: audio */

struct frame {
	uint16_t len; /* tag byte included */
	uint8_t data[FRAME_MAX];
};

struct tone {
	struct frame f[TONE_FRAMES];
	unsigned codec_nibble; /* high nibble of the tag byte: 11 Speex, 8 G.711 u-law */
};

/* G.711 u-law of one 16-bit sample (the ITU table's algorithm: bias, segment, mantissa). */
static uint8_t ulaw_encode(int pcm)
{
	int sign = pcm < 0 ? 0x80 : 0, mag = pcm < 0 ? -pcm : pcm, exp = 7;

	if (mag > 32635)
		mag = 32635;
	mag += 0x84;
	for (int mask = 0x4000; !(mag & mask) && exp > 0; mask >>= 1)
		exp--;
	return (uint8_t) ~(sign | (exp << 4) | ((mag >> (exp + 3)) & 0x0f));
}

/* 1 s of a 1 kHz tone as PCMU messages (tag 0x82 + 160 bytes). */
static void tone_pcmu(struct tone *t)
{
	t->codec_nibble = 8;
	for (int f = 0; f < TONE_FRAMES; f++) {
		t->f[f].data[0] = 0x82;
		for (int i = 0; i < 160; i++) {
			double s = sin(2 * M_PI * 1000.0 * (f * 160 + i) / 8000.0);

			t->f[f].data[1 + i] = ulaw_encode((int)lrint(s * 0.3 * 32767));
		}
		t->f[f].len = 161;
	}
}

/* 1 s of a 1 kHz tone as Speex WB messages (tag 0xB2 + one 20 ms frame), encoded once. The
 * second second of the encoding is kept: the encoder has warmed up and, the tone being whole
 * cycles per second, the loop joins without a jump. Returns 0 or -EIO. */
static int tone_speex(struct tone *t)
{
	void *enc = speex_encoder_init(speex_lib_get_mode(SPEEX_MODEID_WB));
	int quality = 8, frame_size = 0, rc = 0;
	spx_int16_t pcm[640];
	SpeexBits bits;

	if (!enc)
		return -EIO;
	speex_encoder_ctl(enc, SPEEX_SET_QUALITY, &quality);
	speex_encoder_ctl(enc, SPEEX_GET_FRAME_SIZE, &frame_size);
	if (frame_size != 320) {
		speex_encoder_destroy(enc);
		return -EIO;
	}
	t->codec_nibble = 11;
	speex_bits_init(&bits);
	for (int f = 0; f < 2 * TONE_FRAMES && rc == 0; f++) {
		struct frame *fr = &t->f[f % TONE_FRAMES];
		int n;

		for (int i = 0; i < frame_size; i++) {
			double s = sin(2 * M_PI * 1000.0 * (f * frame_size + i) / 16000.0);

			pcm[i] = (spx_int16_t)lrint(s * 0.3 * 32767);
		}
		speex_bits_reset(&bits);
		speex_encode_int(enc, pcm, &bits);
		speex_bits_insert_terminator(&bits);
		n = speex_bits_write(&bits, (char *)fr->data + 1, FRAME_MAX - 1);
		if (n <= 0 || n >= FRAME_MAX - 1)
			rc = -EIO;
		fr->data[0] = 0xB2;
		fr->len = (uint16_t)(n + 1);
	}
	speex_bits_destroy(&bits);
	speex_encoder_destroy(enc);
	return rc;
}

/* ------------------------------------------------------------------ hold mode: calls */

enum bye_state { BYE_NONE, BYE_SENT, BYE_DONE, BYE_FAILED };

struct call {
	struct conn c;
	int index;
	uint32_t pub_stream, play_stream;
	uint32_t frame_no; /* sender thread only */
	int bye_txid;	   /* written before bye = BYE_SENT */
	atomic_bool live;  /* up: the sender and reader use it, under c.lock */
	atomic_bool dead;  /* closed or broken */
	atomic_bool byed;  /* the far end hung up */
	atomic_int bye;	   /* enum bye_state */
	atomic_ulong tx, rx, rx_other;
};

static struct {
	const struct options *o;
	struct call *calls;
	int n;
	struct tone tone;
	double t0; /* ramp start */
	atomic_int next_setup;
	atomic_uint gen; /* bumped when a call goes live or dies */
	atomic_bool stop_sender, stop_reader;
	atomic_int connect_failed, setup_failed;
	atomic_ulong late_max_us, ticks_skipped;
} hrun;

static void call_mark_dead(struct call *cl)
{
	if (!atomic_exchange(&cl->dead, true))
		atomic_fetch_add(&hrun.gen, 1);
}

/* createStream on @c; waits for its _result. Returns 0 with *id set, or -EPROTO/-ETIMEDOUT/
 * -ECONNRESET with @why set. */
static int create_stream(struct conn *c, const struct options *o, uint32_t *id, char *why,
			 size_t whylen)
{
	int txid = ++c->txid;
	double deadline = now_s() + o->timeout_s;

	if (send_invoke(c, CHAN_INVOKE, 0, "createStream", txid, NULL, 0) < 0) {
		snprintf(why, whylen, "createStream: send failed");
		return -ECONNRESET;
	}
	for (;;) {
		struct event ev;
		int rc = next_event(c, deadline, &ev);

		if (rc < 0) {
			snprintf(why, whylen, "createStream: %s",
				 rc == -ETIMEDOUT ? "no reply" : "connection closed by the server");
			return rc;
		}
		if (ev.kind == EV_BYED) {
			snprintf(why, whylen, "byed while opening the streams");
			return -EPROTO;
		}
		if (ev.txid != txid)
			continue;
		if (ev.kind == EV_ERROR) {
			snprintf(why, whylen, "createStream _error: %s", ev.text);
			return -EPROTO;
		}
		if (ev.kind == EV_RESULT) {
			if (ev.num < 1 || ev.num > 65535) {
				snprintf(why, whylen, "createStream: bad stream id %g", ev.num);
				return -EPROTO;
			}
			*id = (uint32_t)ev.num;
			return 0;
		}
	}
}

/* Publishes the local stream and plays the remote one on @cl. Returns 0 or a negative errno
 * with @why set. Stream errors reported later (onStatus level error) are counted by the
 * reader. */
static int open_streams(struct call *cl, const struct options *o, char *why, size_t whylen)
{
	const char *pub_args[2] = {o->publish_name, "live"};
	const char *play_args[1] = {o->play_name};
	int rc;

	rc = create_stream(&cl->c, o, &cl->pub_stream, why, whylen);
	if (rc == 0 &&
	    send_invoke(&cl->c, CHAN_STREAM, cl->pub_stream, "publish", 0, pub_args, 2) < 0)
		rc = -ECONNRESET;
	if (rc == 0)
		rc = create_stream(&cl->c, o, &cl->play_stream, why, whylen);
	if (rc == 0 &&
	    send_invoke(&cl->c, CHAN_STREAM, cl->play_stream, "play", 0, play_args, 1) < 0)
		rc = -ECONNRESET;
	if (rc == -ECONNRESET && !why[0])
		snprintf(why, whylen, "publish/play: send failed");
	return rc;
}

/* Brings call @cl up (connect, invite, streams) and hands it to the sender and the reader. */
static void hold_setup_call(struct call *cl)
{
	const struct options *o = hrun.o;
	char why[REASON_LEN] = "", why2[REASON_LEN];
	double lat;
	int rc;

	if (conn_open(&cl->c, o, cl->index, why, sizeof(why)) < 0) {
		atomic_fetch_add(&hrun.connect_failed, 1);
		reason_add(why);
		return;
	}
	if (!o->no_call) {
		rc = call_invite(&cl->c, o, &lat, why, sizeof(why));
		if (rc < 0) {
			if (rc == -ETIMEDOUT)
				call_bye(&cl->c, o, why2, sizeof(why2));
			goto out_close;
		}
	}
	why[0] = '\0';
	rc = open_streams(cl, o, why, sizeof(why));
	if (rc < 0) {
		if (!o->no_call && rc != -ECONNRESET)
			call_bye(&cl->c, o, why2, sizeof(why2));
		goto out_close;
	}
	atomic_store(&cl->live, true);
	atomic_fetch_add(&hrun.gen, 1);
	return;
out_close:
	atomic_fetch_add(&hrun.setup_failed, 1);
	reason_add(why);
	conn_close(&cl->c);
}

static void *hold_setup_main(void *arg)
{
	const struct options *o = hrun.o;

	for (;;) {
		int i = atomic_fetch_add(&hrun.next_setup, 1);

		if (i >= hrun.n)
			break;
		sleep_until(hrun.t0 + (double)i / o->ramp);
		hold_setup_call(&hrun.calls[i]);
	}
	return NULL;
}

/* A command that reached an up call (reader thread, c.lock held). */
static void hold_event(struct call *cl, const struct event *ev)
{
	char why[REASON_LEN];

	switch (ev->kind) {
	case EV_RESULT:
	case EV_ERROR:
		if (atomic_load(&cl->bye) != BYE_SENT || ev->txid != cl->bye_txid)
			break;
		if (ev->kind == EV_ERROR) {
			snprintf(why, sizeof(why), "bye _error: %s", ev->text);
			reason_add(why);
		}
		atomic_store(&cl->bye, ev->kind == EV_RESULT ? BYE_DONE : BYE_FAILED);
		break;
	case EV_BYED:
		if (!atomic_exchange(&cl->byed, true))
			reason_add("byed: the far end hung up during the hold");
		break;
	case EV_STATUS:
		if (ev->is_error) {
			snprintf(why, sizeof(why), "stream error: %s", ev->text);
			reason_add(why);
		}
		break;
	default:
		break;
	}
}

/* One complete packet of an up call (reader thread, c.lock held). */
static void hold_packet(struct call *cl, RTMPPacket *pkt)
{
	struct event ev;

	switch (pkt->m_packetType) {
	case RTMP_PACKET_TYPE_AUDIO:
		if (pkt->m_nBodySize >= 2 &&
		    ((unsigned char)pkt->m_body[0] >> 4) == hrun.tone.codec_nibble)
			atomic_fetch_add(&cl->rx, 1);
		else
			atomic_fetch_add(&cl->rx_other, 1);
		break;
	case RTMP_PACKET_TYPE_INVOKE:
	case RTMP_PACKET_TYPE_FLEX_MESSAGE:
		if (decode_event(pkt, &ev) == 0)
			hold_event(cl, &ev);
		break;
	case RTMP_PACKET_TYPE_VIDEO:
	case RTMP_PACKET_TYPE_INFO:
	case RTMP_PACKET_TYPE_FLEX_STREAM_SEND:
		break;
	default:
		RTMP_ClientPacket(cl->c.r, pkt);
		break;
	}
}

/* Reads what @cl has: packets to their end, then while librtmp holds buffered bytes. */
static void hold_drain(struct call *cl)
{
	RTMPPacket pkt;
	int handled = 0;

	memset(&pkt, 0, sizeof(pkt));
	pthread_mutex_lock(&cl->c.lock);
	for (;;) {
		if (!RTMP_ReadPacket(cl->c.r, &pkt)) {
			RTMPPacket_Free(&pkt);
			call_mark_dead(cl);
			break;
		}
		if (!RTMPPacket_IsReady(&pkt))
			continue; /* the rest of the packet: bounded by librtmp's read timeout */
		if (pkt.m_body && pkt.m_nBodySize > 0)
			hold_packet(cl, &pkt);
		RTMPPacket_Free(&pkt);
		if (++handled >= DRAIN_MAX || cl->c.r->m_sb.sb_size <= 0)
			break;
	}
	pthread_mutex_unlock(&cl->c.lock);
}

static void *hold_reader_main(void *arg)
{
	struct pollfd *pfd = calloc((size_t)hrun.n, sizeof(*pfd));
	struct call **who = calloc((size_t)hrun.n, sizeof(*who));
	unsigned seen = 0;
	int m = 0;

	if (!pfd || !who) {
		fprintf(stderr, "callbench: reader: out of memory\n");
		goto out;
	}
	while (!atomic_load(&hrun.stop_reader)) {
		unsigned g = atomic_load(&hrun.gen);
		bool buffered = false;
		int rc;

		if (g != seen) {
			m = 0;
			for (int i = 0; i < hrun.n; i++) {
				struct call *cl = &hrun.calls[i];

				if (!atomic_load(&cl->live) || atomic_load(&cl->dead))
					continue;
				who[m] = cl;
				pfd[m].fd = RTMP_Socket(cl->c.r);
				pfd[m].events = POLLIN;
				m++;
			}
			seen = g;
		}
		/* Only this thread reads an up call, so librtmp's read buffer is ours to look at.
		 */
		for (int k = 0; k < m && !buffered; k++)
			buffered = who[k]->c.r->m_sb.sb_size > 0;
		rc = poll(pfd, (nfds_t)m, buffered ? 0 : POLL_MS);
		if (rc < 0 && errno != EINTR) {
			fprintf(stderr, "callbench: reader: poll: %s\n", strerror(errno));
			break;
		}
		for (int k = 0; k < m; k++) {
			if (atomic_load(&who[k]->dead))
				continue;
			if ((rc > 0 && pfd[k].revents) || who[k]->c.r->m_sb.sb_size > 0)
				hold_drain(who[k]);
		}
	}
out:
	free(pfd);
	free(who);
	return NULL;
}

/* Sends the next tone frame of @cl (sender thread). */
static void hold_send_frame(struct call *cl)
{
	const struct frame *fr;
	char buf[RTMP_MAX_HEADER_SIZE + FRAME_MAX];
	RTMPPacket pkt;
	int ok;

	if (!atomic_load(&cl->live) || atomic_load(&cl->dead) || atomic_load(&cl->bye) != BYE_NONE)
		return;
	fr = &hrun.tone.f[cl->frame_no % TONE_FRAMES];
	memcpy(buf + RTMP_MAX_HEADER_SIZE, fr->data, fr->len);
	memset(&pkt, 0, sizeof(pkt));
	pkt.m_nChannel = CHAN_AUDIO;
	/* The first message carries the stream id; later ones a timestamp delta (librtmp). */
	pkt.m_headerType = cl->frame_no == 0 ? RTMP_PACKET_SIZE_LARGE : RTMP_PACKET_SIZE_MEDIUM;
	pkt.m_packetType = RTMP_PACKET_TYPE_AUDIO;
	pkt.m_nTimeStamp = cl->frame_no * 20;
	pkt.m_nInfoField2 = (int32_t)cl->pub_stream;
	pkt.m_body = buf + RTMP_MAX_HEADER_SIZE;
	pkt.m_nBodySize = fr->len;
	pthread_mutex_lock(&cl->c.lock);
	ok = RTMP_SendPacket(cl->c.r, &pkt, FALSE);
	pthread_mutex_unlock(&cl->c.lock);
	if (!ok) {
		call_mark_dead(cl);
		return;
	}
	cl->frame_no++;
	atomic_fetch_add(&cl->tx, 1);
}

static void *hold_sender_main(void *arg)
{
	double t0 = now_s();
	uint64_t k = 0;

	while (!atomic_load(&hrun.stop_sender)) {
		double due = t0 + (double)k * TICK_S, late = now_s() - due;
		unsigned long us;

		if (late < 0) {
			sleep_until(due);
			continue;
		}
		if (late > LATE_SKIP_S) {
			uint64_t skip = (uint64_t)(late / TICK_S);

			k += skip;
			atomic_fetch_add(&hrun.ticks_skipped, (unsigned long)skip);
			continue;
		}
		us = (unsigned long)(late * 1e6);
		if (us > atomic_load(&hrun.late_max_us))
			atomic_store(&hrun.late_max_us, us);
		for (int i = (int)(k % WHEEL_SLOTS); i < hrun.n; i += WHEEL_SLOTS)
			hold_send_frame(&hrun.calls[i]);
		k++;
	}
	return NULL;
}

/* Sends bye on every up call and waits (bounded) for the replies, read by the reader. Returns
 * the number of byes that got no _result. */
static int hold_bye_all(const struct options *o)
{
	double deadline;
	int pending, failed = 0;

	for (int i = 0; i < hrun.n; i++) {
		struct call *cl = &hrun.calls[i];
		int rc;

		if (!atomic_load(&cl->live) || atomic_load(&cl->dead))
			continue;
		pthread_mutex_lock(&cl->c.lock);
		cl->bye_txid = ++cl->c.txid;
		atomic_store(&cl->bye, BYE_SENT);
		rc = send_invoke(&cl->c, CHAN_INVOKE, 0, "bye", cl->bye_txid, NULL, 0);
		pthread_mutex_unlock(&cl->c.lock);
		if (rc < 0) {
			atomic_store(&cl->bye, BYE_FAILED);
			reason_add("bye: send failed");
		}
	}
	deadline = now_s() + o->timeout_s;
	do {
		pending = 0;
		for (int i = 0; i < hrun.n; i++) {
			struct call *cl = &hrun.calls[i];

			if (atomic_load(&cl->bye) == BYE_SENT && !atomic_load(&cl->dead))
				pending++;
		}
		if (pending)
			sleep_s(0.01);
	} while (pending && now_s() < deadline);
	for (int i = 0; i < hrun.n; i++) {
		int b = atomic_load(&hrun.calls[i].bye);

		if (b == BYE_FAILED || b == BYE_SENT)
			failed++;
		if (b == BYE_SENT)
			reason_add("bye: no reply");
	}
	return failed;
}

/* Counters of every call at the start [0] and the end [1] of the window; NOT_UP for a call
 * that was not up then. */
#define NOT_UP ULONG_MAX
struct hold_window {
	unsigned long *tx[2], *rx[2];
	struct cpu_sample c0, c1;
};

static void hold_snapshot(struct hold_window *w, int end)
{
	for (int i = 0; i < hrun.n; i++) {
		struct call *cl = &hrun.calls[i];
		bool up = atomic_load(&cl->live) && !atomic_load(&cl->dead);

		w->tx[end][i] = up ? atomic_load(&cl->tx) : NOT_UP;
		w->rx[end][i] = up ? atomic_load(&cl->rx) : NOT_UP;
	}
}

static void hold_report(const struct options *o, const struct hold_window *w, int bye_failed)
{
	unsigned long tx = 0, rx = 0, rx_other = 0;
	int up = 0, measured = 0, silent = 0, lost = 0, byed = 0;
	double span = w->c1.t - w->c0.t, loss;
	char line[2048];

	for (int i = 0; i < hrun.n; i++) {
		struct call *cl = &hrun.calls[i];
		unsigned long t, r;

		if (!atomic_load(&cl->live))
			continue;
		up++;
		byed += atomic_load(&cl->byed);
		rx_other += atomic_load(&cl->rx_other);
		if (w->tx[0][i] == NOT_UP)
			continue;
		measured++;
		if (w->tx[1][i] == NOT_UP) {
			/* died in the window: what it did until then still counts */
			lost++;
			t = atomic_load(&cl->tx) - w->tx[0][i];
			r = atomic_load(&cl->rx) - w->rx[0][i];
		} else {
			t = w->tx[1][i] - w->tx[0][i];
			r = w->rx[1][i] - w->rx[0][i];
		}
		tx += t;
		rx += r;
		silent += r == 0;
	}
	loss = tx ? 100.0 * (double)(tx > rx ? tx - rx : 0) / (double)tx : 0;
	snprintf(line, sizeof(line),
		 "RESULT mode=hold calls=%d calls_up=%d setup_failed=%d connect_failed=%d "
		 "codec=%s window_s=%.1f measured_calls=%d tx_frames=%lu tx_expected=%.0f "
		 "rx_frames=%lu loss_pct=%.3f silent_calls=%d calls_lost=%d byed=%d rx_other=%lu "
		 "send_late_max_ms=%.1f ticks_skipped=%lu bye_failed=%d",
		 hrun.n, up, atomic_load(&hrun.setup_failed), atomic_load(&hrun.connect_failed),
		 o->codec, span, measured, tx, (double)measured * span * 50, rx, loss, silent, lost,
		 byed, rx_other, (double)atomic_load(&hrun.late_max_us) / 1000,
		 atomic_load(&hrun.ticks_skipped), bye_failed);
	cpu_format(o, &w->c0, &w->c1, line, sizeof(line));
	printf("%s\n", line);
	reasons_print();
	printf("callbench: %d of %d calls up (%s, invite '%s'); over %.1f s sent %lu frames, "
	       "received %lu (loss %.2f%%), %d silent calls\n",
	       up, hrun.n, o->codec, o->no_call ? "none" : o->codecs, span, tx, rx, loss, silent);
}

static int run_hold(const struct options *o)
{
	pthread_t setup_th[SETUP_THREADS], reader, sender;
	struct hold_window w;
	int nsetup = o->calls < SETUP_THREADS ? o->calls : SETUP_THREADS, started = 0;
	int status = 0, bye_failed = 0;
	bool up = false;

	memset(&w, 0, sizeof(w));
	hrun.o = o;
	hrun.n = o->calls;
	if (strcmp(o->codec, "pcmu") == 0) {
		tone_pcmu(&hrun.tone);
	} else if (tone_speex(&hrun.tone) < 0) {
		fprintf(stderr, "callbench: cannot encode the Speex tone\n");
		return 1;
	}
	hrun.calls = calloc((size_t)hrun.n, sizeof(*hrun.calls));
	for (int k = 0; k < 2; k++) {
		w.tx[k] = calloc((size_t)hrun.n, sizeof(*w.tx[k]));
		w.rx[k] = calloc((size_t)hrun.n, sizeof(*w.rx[k]));
		if (!w.tx[k] || !w.rx[k])
			status = 1;
	}
	if (!hrun.calls || status) {
		fprintf(stderr, "callbench: out of memory\n");
		status = 1;
		goto out_free;
	}
	for (int i = 0; i < hrun.n; i++) {
		hrun.calls[i].index = i;
		pthread_mutex_init(&hrun.calls[i].c.lock, NULL);
	}
	if (pthread_create(&reader, NULL, hold_reader_main, NULL) != 0) {
		fprintf(stderr, "callbench: cannot start the reader thread\n");
		status = 1;
		goto out_free;
	}
	if (pthread_create(&sender, NULL, hold_sender_main, NULL) != 0) {
		fprintf(stderr, "callbench: cannot start the sender thread\n");
		status = 1;
		goto out_reader;
	}
	hrun.t0 = now_s();
	for (; started < nsetup; started++)
		if (pthread_create(&setup_th[started], NULL, hold_setup_main, NULL) != 0)
			break;
	if (started == 0) {
		fprintf(stderr, "callbench: cannot start set-up threads\n");
		status = 1;
	}
	for (int i = 0; i < started; i++)
		pthread_join(setup_th[i], NULL);
	fprintf(
	    stderr, "callbench: set-up done in %.1f s; %d connect failures, %d set-up failures\n",
	    now_s() - hrun.t0, atomic_load(&hrun.connect_failed), atomic_load(&hrun.setup_failed));
	for (int i = 0; i < hrun.n && !up; i++)
		up = atomic_load(&hrun.calls[i].live);
	if (up) /* nothing to measure otherwise: the window is empty */
		sleep_s(o->settle);
	hold_snapshot(&w, 0);
	atomic_store(&hrun.late_max_us, 0);
	atomic_store(&hrun.ticks_skipped, 0);
	cpu_sample(o, &w.c0);
	if (up)
		sleep_s(o->seconds);
	cpu_sample(o, &w.c1);
	hold_snapshot(&w, 1);
	atomic_store(&hrun.stop_sender, true);
	pthread_join(sender, NULL);
	if (!o->no_call)
		bye_failed = hold_bye_all(o);
	hold_report(o, &w, bye_failed);
	if (atomic_load(&hrun.connect_failed) > 0)
		status = 1;
out_reader:
	atomic_store(&hrun.stop_reader, true);
	pthread_join(reader, NULL);
out_free:
	if (hrun.calls) {
		for (int i = 0; i < hrun.n; i++) {
			conn_close(&hrun.calls[i].c);
			pthread_mutex_destroy(&hrun.calls[i].c.lock);
		}
	}
	free(hrun.calls);
	for (int k = 0; k < 2; k++) {
		free(w.tx[k]);
		free(w.rx[k]);
	}
	return status;
}

/* ------------------------------------------------------------------ main */

/* Hundreds of connections: lift the soft limit on open files to the hard one. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static struct options opts;

	signal(SIGPIPE, SIG_IGN);
	if (parse_options(argc, argv, &opts) < 0) {
		usage(stderr);
		return 2;
	}
	if (opts.help) {
		usage(stdout);
		return 0;
	}
	RTMP_LogSetLevel(opts.verbose ? RTMP_LOGDEBUG : RTMP_LOGERROR);
	raise_nofile();
	/* RTMP_Init creates librtmp's process-wide TLS context on first use, without a lock: do it
	 * here, before the threads, or two of them race and one context leaks. */
	{
		RTMP *first = RTMP_Alloc();

		if (first) {
			RTMP_Init(first);
			RTMP_Free(first);
		}
	}
	return opts.mode == MODE_SETUP ? run_setup(&opts) : run_hold(&opts);
}
