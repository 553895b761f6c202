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
 * --progress S (hold): every S seconds of the hold (settle and window; counted from the ramp's
 * start) and once at the end of the window, one line
 * per call, then an end line, flushed (scripts/soak.sh reads them while the calls are held):
 *
 *   PROGRESS t=<s since the ramp started> call=<i> up=0|1 dead=0|1 byed=0|1 tx=<frames sent>
 *            rx=<frames received> bytes_in=<bytes librtmp read on the connection>
 *            bytes_acked=<the count in librtmp's last Acknowledgement> window=<the peer
 *            bandwidth the server set: librtmp acknowledges every window / 10 bytes>
 *            gaps=<pauses > 100 ms between received frames> max_gap_ms=<the longest pause>
 *   PROGRESS_END t=<s> calls=<n>
 *
 * SIGTERM or SIGINT during the hold ends the window there: the calls are hung up and reported as
 * after a full window.
 *
 * --e2e (hold): callbench is also the far end's media instead of SIPp's RTP echo, and measures
 * the one-way delay through the gateway in each direction and the round trip: DELAY and LOSS
 * lines (callbench_e2e.c).
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
#include "parse_num.h"
#include "proc_stat.h"
#include "callbench.h"

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
    OPT("--seconds", OPT_NUM, M_ALL, seconds, 1, 86400),
    OPT("--timeout", OPT_INT, M_ALL, timeout_s, 1, 120),
    OPT("--pid", OPT_PID, M_ALL, pids, 0, 0),
    OPT("--verbose", OPT_FLAG, M_ALL, verbose, 0, 0),
    OPT("--clients", OPT_INT, M_SETUP, clients, 1, MAX_CLIENTS),
    OPT("--calls", OPT_INT, M_HOLD, calls, 1, MAX_CALLS),
    OPT("--codec", OPT_STR, M_HOLD, codec, 0, 0),
    OPT("--ramp", OPT_INT, M_HOLD, ramp, 1, 10000),
    OPT("--settle", OPT_NUM, M_HOLD, settle, 0, 60),
    OPT("--no-call", OPT_FLAG, M_HOLD, no_call, 0, 0),
    OPT("--e2e", OPT_FLAG, M_HOLD, e2e, 0, 0),
    OPT("--publish", OPT_STR, M_HOLD, publish_name, 0, 0),
    OPT("--play", OPT_STR, M_HOLD, play_name, 0, 0),
    OPT("--progress", OPT_NUM, M_HOLD, progress, 1, 3600),
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
	    "                       [--e2e] [--progress S]\n"
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
	    "  --e2e        callbench is the far end's media: each call invites sip:PORT@<target's\n"
	    "               host>, PORT its own UDP socket (SIPp: bench_uas_port.xml answers with it),\n"
	    "               echoes the RTP and prints the one-way delays (DELAY/LOSS lines)\n"
	    "  --progress   every S seconds of the hold, a PROGRESS line per call (up, dead, byed,\n"
	    "               frames sent and received, bytes received, gaps > 100 ms between\n"
	    "               received frames, the longest) and a PROGRESS_END line (scripts/soak.sh)\n"
	    "  --target     repeatable: successive invites take the targets in turn (e.g. several\n"
	    "               SIPp UASs, so that no one RTP echo socket carries every call)\n"
	    "  --pid        report the CPU of process PID as cpu_NAME_pct (percent of one core "
	    "over\n"
	    "               the measured period; -1 when it could not be read)\n"
	    "Prints a RESULT key=value line, FAILURE lines and a summary. Exit 0: run completed;\n"
	    "1: a connection could not be made; 2: usage error.\n");
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

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_until(double t)
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

void sleep_s(double s)
{
	sleep_until(now_s() + s);
}

void cpu_sample(const struct options *o, struct cpu_sample *s)
{
	for (int i = 0; i < o->npids; i++)
		s->ticks[i] = proc_cpu_ticks(o->pids[i].pid);
	s->ticks[o->npids] = proc_cpu_ticks(0);
	s->t = now_s();
}

/* Appends " cpu_NAME_pct=X" for every watched process and this one to @out. */
void cpu_format(const struct options *o, const struct cpu_sample *a,
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
void reason_add(const char *text)
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
void reasons_print(void)
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

