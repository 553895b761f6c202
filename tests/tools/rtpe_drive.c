/*
 * rtpe_drive.c - the same media load as our worker benchmark, through a running rtpengine (the
 * peer we measure against): sets up --calls calls with its ng protocol, drives RTP both ways at
 * real-time pacing for --warmup + --seconds, measures the delay rtpengine adds in each direction,
 * loss, and rtpengine's CPU (/proc/--pid/stat) and our own over the measured window.
 *
 *   rtpe_drive --ng 127.0.0.1:PORT --pid PID --calls N --seconds S [--warmup S]
 *              [--mode passthrough|transcode]
 *
 * Modes: passthrough, PCMU on both sides (rtpengine relays the payload; a frame number rides in
 * its first bytes); transcode, side A offers Speex WB (speex/16000, a 1 kHz tone encoded with
 * libspeex) with the offer's codec dict asking rtpengine to transcode to PCMU, and side B answers
 * PCMU only (a 1 kHz tone in G.711). Transcoded frames are matched by their RTP timestamp
 * relative to the first one received (rtpengine keeps 20 ms per packet); a timestamp that is not a
 * whole number of frames from the first falls back to the arrival order.
 *
 * One call, as rtpengine sees it (ng over UDP, "<cookie> <bencoded dict>", one request at a time,
 * each retried with the same cookie: rtpengine answers a repeated cookie from its cache):
 *
 *   offer(call-id, from-tag, SDP of A) --> result ok, SDP for B: rtpengine's B-facing port
 *     |
 *   answer(call-id, from-tag, to-tag, SDP of B) --> result ok, SDP for A: its A-facing port
 *     |
 *   media: every 20 ms one packet A -> A-facing port, one B -> B-facing port   ... delete
 *
 * Sides A and B are two UDP sockets of this tool shared by every call; a packet that comes back
 * is told to its call by the rtpengine port it came from. Dir a_to_b: sent by A, received by B.
 * Pacing: a wheel of 20 slots of 1 ms; call i sends in slot i % 20 (sendmmsg, at most
 * SEND_BATCH a syscall, the send time read just before each batch); replies are drained with
 * recvmmsg and stamped when the batch is read. All times on CLOCK_MONOTONIC.
 *
 * Phases by 20 ms tick: warm-up (not counted), the window (--seconds: frames sent in it are
 * counted, their delays go to the histograms), then a drain of up to 5 s during which the load
 * goes on but nothing new is counted, until every counted frame is back; one not back by then is
 * lost. The send time of every frame of the run is kept (a late frame is matched however late,
 * uncapped). Then every call is deleted.
 *
 * Output on stdout: two "DELAY path=rtpengine mode=M dir=a_to_b|b_to_a legs=N n=..." lines in
 * delay_hist.h's format, one "CPU path=rtpengine mode=M legs=N ..." line and one "RESULT ..."
 * line. legs = calls set up: one rtpengine call stands for one of our legs. Exit status: 0 when
 * the run completed, 1 when no call could be set up or rtpengine stopped answering, 2 on a usage
 * error. Figures, never pass/fail.
 */
#include "delay_hist.h"
#include "g711.h"
#include "proc_stat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <speex/speex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CALLS    8000
#define SLOTS	     20 /* 1 ms slots in a 20 ms period */
#define SEND_BATCH   32 /* messages per sendmmsg: bounds the error of the send time */
#define RECV_BATCH   64
#define PKT_MAX	     1500
#define TONE_FRAMES  50		/* one second of 20 ms frames: whole cycles of 1 kHz */
#define DRAIN_TICKS  250	/* at most 5 s */
#define GOT	     UINT32_MAX /* a sent_at entry whose frame came back */
#define NG_REPLY_MAX 65000
#define NG_TRIES     3
#define NG_WAIT_MS   1000
#define BENC_DEPTH   16 /* nesting of a reply's lists and dicts we walk */
#define TAG_LEN	     8	/* pass-through: frame number and call index ahead of the tone */

enum side { SIDE_A, SIDE_B };
enum dir { A_TO_B, B_TO_A };
static const char *const dir_name[] = {[A_TO_B] = "a_to_b", [B_TO_A] = "b_to_a"};

/* What one side sends: payload type and rtpmap of its SDP, RTP clock ticks per 20 ms. */
struct side_codec {
	uint8_t pt;
	const char *rtpmap;
	uint32_t ts_step;
	bool speex;
};

static const struct side_codec pcmu = {.pt = 0, .rtpmap = "PCMU/8000", .ts_step = 160};
static const struct side_codec speex_wb = {
    .pt = 97, .rtpmap = "speex/16000", .ts_step = 320, .speex = true};

struct mode {
	const char *name;
	const struct side_codec *a, *b;
	bool transcode; /* the offer's codec dict: transcode to b's codec */
};

static const struct mode modes[] = {
    {.name = "passthrough", .a = &pcmu, .b = &pcmu},
    {.name = "transcode", .a = &speex_wb, .b = &pcmu, .transcode = true},
};

struct call {
	unsigned id;		  /* call-id and tags are made of it */
	struct sockaddr_in to[2]; /* rtpengine's A-facing, B-facing address */
	uint32_t ssrc[2], rx[2];  /* ssrc sent by side; packets received per direction */
	uint32_t ts_first[2];	  /* transcode: first timestamp received per direction */
	bool have_first[2];
	uint32_t rx_win[2];   /* counted frames received in the window */
	uint32_t *sent_at[2]; /* per direction and frame: µs after t_base + 1, 0 unsent */
};

struct dir_stats {
	uint64_t sent_win, recv_win, dup, unmatched, ts_fallback;
	struct delay_hist hist;
};

static struct {
	const char *ng;
	int pid;
	unsigned calls;
	double seconds, warmup;
	const struct mode *mode;
} o = {.warmup = 2, .mode = &modes[0]};

static struct call *calls;
static unsigned n_up;
static int32_t port_owner[2][65536]; /* by side that receives, rtpengine's source port -> call */
static struct dir_stats ds[2];
static uint64_t stray;
static int sock[2], ng_fd;
static uint16_t sock_port[2];
static uint8_t tone[2][TONE_FRAMES][PKT_MAX]; /* per side, encoded once */
static size_t tone_len[2][TONE_FRAMES];
static uint32_t win_first, win_end; /* counted frames: [win_first, win_end) */
static uint32_t n_frames;	    /* frames of the run: win_end + DRAIN_TICKS */
static uint32_t *sent_store;	    /* every call's sent_at */
static uint64_t t_base;
static uint64_t relayed; /* packets back from rtpengine (each direction, any frame) */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- bencode: written by hand, read with bounds ---- */

/* Appends bencode string @s to @b (capacity @cap, used *@len). -ENOSPC when it does not fit. */
static int benc_str(char *b, size_t cap, size_t *len, const char *s)
{
	int n = snprintf(b + *len, cap - *len, "%zu:%s", strlen(s), s);

	if (n < 0 || (size_t)n >= cap - *len)
		return -ENOSPC;
	*len += (size_t)n;
	return 0;
}

static int benc_raw(char *b, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (n >= cap - *len)
		return -ENOSPC;
	memcpy(b + *len, s, n + 1);
	*len += n;
	return 0;
}

/* A bencode string at *@p (before @end): its bytes in *@s, *@n; advances *@p. False when
 * malformed or longer than what is left. */
static bool bdec_str(const char **p, const char *end, const char **s, size_t *n)
{
	size_t v = 0;
	const char *q = *p;

	if (q >= end || *q < '0' || *q > '9')
		return false;
	while (q < end && *q >= '0' && *q <= '9') {
		if (v > (size_t)(end - *p))
			return false;
		v = v * 10 + (size_t)(*q++ - '0');
	}
	if (q >= end || *q != ':' || v > (size_t)(end - q - 1))
		return false;
	*s = q + 1;
	*n = v;
	*p = q + 1 + v;
	return true;
}

/* Skips one bencoded value at *@p, nested at most @depth deep. */
static bool bdec_skip(const char **p, const char *end, unsigned depth)
{
	const char *s;
	size_t n;

	if (*p >= end || !depth)
		return false;
	switch (**p) {
	case 'i':
		while (*p < end && **p != 'e')
			(*p)++;
		if (*p >= end)
			return false;
		(*p)++;
		return true;
	case 'l':
	case 'd':
		(*p)++;
		while (*p < end && **p != 'e')
			if (!bdec_skip(p, end, depth - 1))
				return false;
		if (*p >= end)
			return false;
		(*p)++;
		return true;
	default:
		return bdec_str(p, end, &s, &n);
	}
}

struct ng_reply {
	char result[32];
	char why[128];	     /* error-reason, when given */
	struct in_addr addr; /* c= of the SDP */
	uint16_t port;	     /* m=audio of the SDP */
	bool have_sdp;
};

/* The value after "\n<key>" in @sdp (@n bytes), up to the line's end, into @out (@cap). */
static bool sdp_line(const char *sdp, size_t n, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i + kl <= n; i++) {
		size_t j = 0;

		if ((i && sdp[i - 1] != '\n') || memcmp(sdp + i, key, kl))
			continue;
		i += kl;
		while (i + j < n && sdp[i + j] != '\r' && sdp[i + j] != '\n' && j + 1 < cap) {
			out[j] = sdp[i + j];
			j++;
		}
		out[j] = '\0';
		return true;
	}
	return false;
}

/* Parses the dict of an ng reply (@p .. @end): result, error-reason and the SDP's audio port and
 * connection address. Other keys are skipped. False when the dict is malformed. */
static bool ng_parse(const char *p, const char *end, struct ng_reply *r)
{
	char line[64];

	memset(r, 0, sizeof(*r));
	if (p >= end || *p++ != 'd')
		return false;
	while (p < end && *p != 'e') {
		const char *k, *v;
		size_t kn, vn;

		if (!bdec_str(&p, end, &k, &kn))
			return false;
		if (p < end && *p >= '0' && *p <= '9') {
			if (!bdec_str(&p, end, &v, &vn))
				return false;
		} else {
			if (!bdec_skip(&p, end, BENC_DEPTH))
				return false;
			continue;
		}
		if (kn == 6 && !memcmp(k, "result", 6))
			snprintf(r->result, sizeof(r->result), "%.*s", (int)vn, v);
		else if (kn == 12 && !memcmp(k, "error-reason", 12))
			snprintf(r->why, sizeof(r->why), "%.*s", (int)vn, v);
		else if (kn == 3 && !memcmp(k, "sdp", 3)) {
			unsigned long port;
			char *e;

			if (!sdp_line(v, vn, "m=audio ", line, sizeof(line)))
				continue;
			port = strtoul(line, &e, 10);
			if (e == line || !port || port > 65535)
				continue;
			if (!sdp_line(v, vn, "c=IN IP4 ", line, sizeof(line)) ||
			    inet_pton(AF_INET, line, &r->addr) != 1)
				continue;
			r->port = (uint16_t)port;
			r->have_sdp = true;
		}
	}
	return p < end;
}

/* One ng request: @dict (bencoded) under a cookie of its own, sent up to NG_TRIES times; the
 * reply parsed into @r. 0, or -ETIMEDOUT when rtpengine did not answer, -EPROTO when the reply
 * did not parse, or a negative errno of the socket. */
static int ng_request(const char *dict, size_t len, struct ng_reply *r)
{
	static char out[16384], in[NG_REPLY_MAX + 1];
	static unsigned seq;
	char cookie[48];
	int cl;

	cl = snprintf(cookie, sizeof(cookie), "rd%d_%llu_%u", (int)getpid(),
		      (unsigned long long)now_us(), seq++);
	if (cl < 0 || (size_t)cl + 1 + len > sizeof(out))
		return -ENOSPC;
	memcpy(out, cookie, (size_t)cl);
	out[cl] = ' ';
	memcpy(out + cl + 1, dict, len);
	for (int t = 0; t < NG_TRIES; t++) {
		uint64_t until = now_us() + NG_WAIT_MS * 1000u;
		ssize_t n;

		if (send(ng_fd, out, (size_t)cl + 1 + len, 0) < 0)
			return -errno;
		for (;;) {
			uint64_t t0 = now_us();
			struct pollfd pf = {.fd = ng_fd, .events = POLLIN};

			if (t0 >= until || poll(&pf, 1, (int)((until - t0) / 1000u) + 1) <= 0)
				break;
			n = recv(ng_fd, in, NG_REPLY_MAX, MSG_DONTWAIT);
			if (n < 0)
				continue;
			/* A late reply to an earlier request carries its own cookie: skipped. */
			if ((size_t)n <= (size_t)cl || memcmp(in, cookie, (size_t)cl) ||
			    in[cl] != ' ')
				continue;
			return ng_parse(in + cl + 1, in + n, r) ? 0 : -EPROTO;
		}
	}
	return -ETIMEDOUT;
}

/* The SDP of @side for call @i (its socket's port, its codec). */
static void side_sdp(enum side side, unsigned i, char *sdp, size_t cap)
{
	const struct side_codec *c = side == SIDE_A ? o.mode->a : o.mode->b;

	snprintf(sdp, cap,
		 "v=0\r\no=- %u 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
		 "m=audio %u RTP/AVP %u\r\na=rtpmap:%u %s\r\na=sendrecv\r\n",
		 i * 2 + (unsigned)side + 1, sock_port[side], c->pt, c->pt, c->rtpmap);
}

/* The ng command @cmd for call @c ("offer", "answer" or "delete"): the offer carries side A's
 * SDP (and, when transcoding, the codec dict asking for side B's codec), the answer side B's SDP
 * and the to-tag. Keys in bencode's sorted order. The reply in @r; 0, -EPROTO when rtpengine
 * refused (said why on stderr, once a run), or ng_request's error. */
static int ng_command(const char *cmd, const struct call *c, struct ng_reply *r)
{
	static bool said;
	bool offer = !strcmp(cmd, "offer"), answer = !strcmp(cmd, "answer");
	char dict[4096], sdp[512], id[40], ft[16], tt[16];
	size_t len = 0;
	int rc = 0;

	snprintf(id, sizeof(id), "rtpe-drive-%d-%u", (int)getpid(), c->id);
	snprintf(ft, sizeof(ft), "a%u", c->id);
	snprintf(tt, sizeof(tt), "b%u", c->id);
	rc |= benc_raw(dict, sizeof(dict), &len, "d7:call-id");
	rc |= benc_str(dict, sizeof(dict), &len, id);
	if (offer && o.mode->transcode) {
		char codec[32];

		snprintf(codec, sizeof(codec), "%.*s", (int)strcspn(o.mode->b->rtpmap, "/"),
			 o.mode->b->rtpmap);
		rc |= benc_raw(dict, sizeof(dict), &len, "5:codecd9:transcodel");
		rc |= benc_str(dict, sizeof(dict), &len, codec);
		rc |= benc_raw(dict, sizeof(dict), &len, "ee");
	}
	rc |= benc_raw(dict, sizeof(dict), &len, "7:command");
	rc |= benc_str(dict, sizeof(dict), &len, cmd);
	rc |= benc_raw(dict, sizeof(dict), &len, "8:from-tag");
	rc |= benc_str(dict, sizeof(dict), &len, ft);
	if (offer || answer) {
		side_sdp(offer ? SIDE_A : SIDE_B, c->id, sdp, sizeof(sdp));
		rc |= benc_raw(dict, sizeof(dict), &len, "3:sdp");
		rc |= benc_str(dict, sizeof(dict), &len, sdp);
	}
	if (answer) {
		rc |= benc_raw(dict, sizeof(dict), &len, "6:to-tag");
		rc |= benc_str(dict, sizeof(dict), &len, tt);
	}
	rc |= benc_raw(dict, sizeof(dict), &len, "e");
	if (rc)
		return -ENOSPC;
	rc = ng_request(dict, len, r);
	if (rc || !strcmp(r->result, "ok"))
		return rc;
	if (!said)
		fprintf(stderr, "rtpe_drive: %s of call %s: result=%s %s\n", cmd, id, r->result,
			r->why);
	said = true;
	return -EPROTO;
}

/* offer (from A) then answer (from B) for @c, whose id is set; fills its rtpengine addresses:
 * the offer's reply (the SDP for B) holds the B-facing port, the answer's the A-facing one. 0,
 * -EPROTO when rtpengine refused or sent no usable SDP, or ng_request's error. */
static int call_setup(struct call *c)
{
	static const char *const cmd[] = {[SIDE_A] = "answer", [SIDE_B] = "offer"};
	struct ng_reply r;

	for (int s = SIDE_B; s >= SIDE_A; s--) {
		int rc = ng_command(cmd[s], c, &r);

		if (rc)
			return rc;
		if (!r.have_sdp)
			return -EPROTO;
		c->to[s] = (struct sockaddr_in){
		    .sin_family = AF_INET, .sin_port = htons(r.port), .sin_addr = r.addr};
	}
	return 0;
}

/* delete of call @c; 0 or ng_request's error (a refusal is not one: the run is over). */
static int call_delete(const struct call *c)
{
	struct ng_reply r;
	int rc = ng_command("delete", c, &r);

	return rc == -EPROTO ? 0 : rc;
}

/* ---- audio: one second of a 1 kHz tone per side, in its codec ---- */

static int make_tone(enum side side)
{
	const struct side_codec *c = side == SIDE_A ? o.mode->a : o.mode->b;
	unsigned n = c->speex ? 320 : 160, rate = n * 50;
	int16_t pcm[320];
	void *enc = NULL;
	SpeexBits bits;

	if (c->speex) {
		int q = 8, cx = 2;

		enc = speex_encoder_init(&speex_wb_mode);
		if (!enc)
			return -ENOMEM;
		speex_encoder_ctl(enc, SPEEX_SET_QUALITY, &q);
		speex_encoder_ctl(enc, SPEEX_SET_COMPLEXITY, &cx);
		speex_bits_init(&bits);
	}
	for (unsigned f = 0; f < TONE_FRAMES; f++) {
		for (unsigned i = 0; i < n; i++)
			pcm[i] = (int16_t)(8000 * sin(2 * M_PI * 1000.0 * (f * n + i) / rate));
		if (c->speex) {
			speex_bits_reset(&bits);
			speex_encode_int(enc, pcm, &bits);
			tone_len[side][f] =
			    (size_t)speex_bits_write(&bits, (char *)tone[side][f], PKT_MAX);
		} else {
			g711_ulaw_encode_buf(tone[side][f], pcm, n);
			tone_len[side][f] = n;
		}
	}
	if (enc) {
		speex_bits_destroy(&bits);
		speex_encoder_destroy(enc);
	}
	return 0;
}

/* ---- media ---- */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Sends frame @k of every call of slot @slot from @side (one direction). Returns the greatest
 * lateness of a batch behind @due_us. */
static uint64_t send_slot(enum side side, unsigned slot, uint32_t k, uint64_t due_us)
{
	static uint8_t hdr[SEND_BATCH][12 + TAG_LEN];
	struct mmsghdr mm[SEND_BATCH];
	struct iovec iov[SEND_BATCH][2];
	const struct side_codec *c = side == SIDE_A ? o.mode->a : o.mode->b;
	enum dir d = side == SIDE_A ? A_TO_B : B_TO_A;
	bool pass = !o.mode->transcode;
	unsigned idx[SEND_BATCH], nb = 0, f = k % TONE_FRAMES;
	uint64_t late = 0;

	for (unsigned i = slot;; i += SLOTS) {
		if (i < n_up) {
			uint8_t *h = hdr[nb];

			h[0] = 0x80;
			h[1] = c->pt;
			h[2] = (uint8_t)(k >> 8);
			h[3] = (uint8_t)k;
			put32(h + 4, 1000u + k * c->ts_step);
			put32(h + 8, calls[i].ssrc[side]);
			if (pass) {
				put32(h + 12, k);
				put32(h + 16, i);
			}
			iov[nb][0] = (struct iovec){h, pass ? 12 + TAG_LEN : 12};
			iov[nb][1] = (struct iovec){tone[side][f] + (pass ? TAG_LEN : 0),
						    tone_len[side][f] - (pass ? TAG_LEN : 0)};
			mm[nb] =
			    (struct mmsghdr){.msg_hdr = {.msg_name = &calls[i].to[side],
							 .msg_namelen = sizeof(calls[i].to[side]),
							 .msg_iov = iov[nb],
							 .msg_iovlen = 2}};
			idx[nb++] = i;
		}
		if (nb == SEND_BATCH || (i >= n_up && nb)) {
			uint64_t t = now_us();
			int sent = sendmmsg(sock[side], mm, nb, 0);

			if (t > due_us && t - due_us > late)
				late = t - due_us;
			for (int m = 0; m < sent; m++) {
				calls[idx[m]].sent_at[d][k] = (uint32_t)(t - t_base + 1);
				if (k >= win_first && k < win_end)
					ds[d].sent_win++;
			}
			nb = 0;
		}
		if (i >= n_up)
			break;
	}
	return late;
}

/* One packet received by @side at @t from rtpengine's port @src_port. */
static void on_packet(enum side side, const uint8_t *p, size_t n, uint16_t src_port, uint64_t t)
{
	enum dir d = side == SIDE_B ? A_TO_B : B_TO_A;
	const struct side_codec *out = side == SIDE_B ? o.mode->b : o.mode->a;
	int32_t ci = port_owner[side][src_port];
	struct call *c;
	size_t hl;
	uint32_t frame, ts, *sa;

	if (ci < 0 || n < 12 || (p[0] >> 6) != 2 || (p[1] >= 200 && p[1] <= 204)) {
		stray++;
		return;
	}
	c = &calls[ci];
	hl = 12u + 4u * (p[0] & 0x0f);
	if ((p[0] & 0x10) && hl + 4 <= n)
		hl += 4u + 4u * ((size_t)p[hl + 2] << 8 | p[hl + 3]);
	if (hl > n) {
		stray++;
		return;
	}
	ts = get32(p + 4);
	if (!o.mode->transcode) {
		if (n < hl + TAG_LEN || get32(p + hl + 4) != (uint32_t)ci) {
			stray++;
			return;
		}
		frame = get32(p + hl);
	} else if (!c->have_first[d]) {
		c->have_first[d] = true;
		c->ts_first[d] = ts;
		frame = 0;
	} else if ((ts - c->ts_first[d]) % out->ts_step == 0) {
		frame = (ts - c->ts_first[d]) / out->ts_step;
	} else {
		frame = c->rx[d];
		ds[d].ts_fallback++;
	}
	c->rx[d]++;
	sa = frame < n_frames ? &c->sent_at[d][frame] : NULL;
	if (!sa || !*sa) {
		ds[d].unmatched++;
		return;
	}
	if (*sa == GOT) {
		ds[d].dup++;
		return;
	}
	relayed++;
	t -= t_base;
	if (frame >= win_first && frame < win_end) {
		ds[d].recv_win++;
		c->rx_win[d]++;
		delay_hist_add(&ds[d].hist, t + 1 > *sa ? t + 1 - *sa : 0);
	}
	*sa = GOT;
}

/* The arrival time of a packet read with @mh: the kernel's receive time (SO_TIMESTAMPNS, on
 * CLOCK_REALTIME) moved onto CLOCK_MONOTONIC by @rt_to_mono (µs), or @fallback without it. Time
 * a packet waits in our queue while the tool is busy sending is thus not rtpengine's. */
static uint64_t arrival_us(struct msghdr *mh, int64_t rt_to_mono, uint64_t fallback)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		struct timespec ts;
		int64_t us;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS ||
		    cm->cmsg_len < CMSG_LEN(sizeof(ts)))
			continue;
		memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
		us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + rt_to_mono;
		return us > 0 && (uint64_t)us < fallback ? (uint64_t)us : fallback;
	}
	return fallback;
}

/* Reads everything queued on @side's socket. */
static void drain(enum side side)
{
	static uint8_t buf[RECV_BATCH][PKT_MAX];
	static struct sockaddr_in from[RECV_BATCH];
	static union {
		char b[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl[RECV_BATCH];
	struct mmsghdr mm[RECV_BATCH];
	struct iovec iov[RECV_BATCH];

	for (;;) {
		struct timespec rt;
		int64_t rt_to_mono;
		uint64_t t;
		int n;

		for (unsigned m = 0; m < RECV_BATCH; m++) {
			iov[m] = (struct iovec){buf[m], PKT_MAX};
			mm[m] = (struct mmsghdr){.msg_hdr = {.msg_name = &from[m],
							     .msg_namelen = sizeof(from[m]),
							     .msg_iov = &iov[m],
							     .msg_iovlen = 1,
							     .msg_control = ctl[m].b,
							     .msg_controllen = sizeof(ctl[m].b)}};
		}
		n = recvmmsg(sock[side], mm, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		clock_gettime(CLOCK_REALTIME, &rt);
		t = now_us();
		rt_to_mono = (int64_t)t - ((int64_t)rt.tv_sec * 1000000 + rt.tv_nsec / 1000);
		for (int m = 0; m < n; m++)
			on_packet(side, buf[m], mm[m].msg_len, ntohs(from[m].sin_port),
				  arrival_us(&mm[m].msg_hdr, rt_to_mono, t));
	}
}

/* Waits for replies until @until_us, reading them as they come. */
static void wait_until(uint64_t until_us)
{
	for (;;) {
		uint64_t t = now_us();
		struct pollfd pf[2] = {{.fd = sock[0], .events = POLLIN},
				       {.fd = sock[1], .events = POLLIN}};
		struct timespec ts;

		drain(SIDE_A);
		drain(SIDE_B);
		if (t >= until_us)
			return;
		ts = (struct timespec){.tv_sec = (time_t)((until_us - t) / 1000000u),
				       .tv_nsec = (long)((until_us - t) % 1000000u) * 1000};
		ppoll(pf, 2, &ts, NULL);
	}
}

/* CPU time of @pid (user + system) in µs, or -1 when it cannot be read. */
static double proc_cpu_us(int pid)
{
	long long t = proc_cpu_ticks(pid);

	return t < 0 ? -1 : (double)t * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int udp_socket(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), sz = 8 << 20, one = 1;

	if (fd < 0)
		return -1;
	/* Room for a few periods of every call's packets: FORCE as root, else the sysctl cap. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static int ng_socket(const char *hostport)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	char host[64];
	const char *colon = strrchr(hostport, ':');
	unsigned long port;
	int fd;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		return -1;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
	port = strtoul(colon + 1, NULL, 10);
	if (!port || port > 65535 || inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return -1;
	a.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: rtpe_drive --ng IP:PORT --pid PID --calls N --seconds S "
			"[--warmup S] [--mode passthrough|transcode]\n");
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {{"ng", required_argument, NULL, 'n'},
					   {"pid", required_argument, NULL, 'p'},
					   {"calls", required_argument, NULL, 'c'},
					   {"seconds", required_argument, NULL, 's'},
					   {"warmup", required_argument, NULL, 'w'},
					   {"mode", required_argument, NULL, 'm'},
					   {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'n':
			o.ng = optarg;
			break;
		case 'p':
			o.pid = atoi(optarg);
			break;
		case 'c':
			o.calls = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			o.seconds = atof(optarg);
			break;
		case 'w':
			o.warmup = atof(optarg);
			break;
		case 'm':
			o.mode = NULL;
			for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
				if (!strcmp(optarg, modes[i].name))
					o.mode = &modes[i];
			if (!o.mode)
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
	}
	if (!o.ng || o.pid <= 0 || !o.calls || o.calls > MAX_CALLS || !(o.seconds >= 0.2) ||
	    o.seconds > 3600 || !(o.warmup >= 0) || o.warmup > 60)
		return -EINVAL;
	return 0;
}

/* Sets up the calls; n_up = how many rtpengine accepted. 0, or ng_request's error when
 * rtpengine stopped answering. */
static int setup_all(void)
{
	for (unsigned i = 0; i < o.calls; i++) {
		int rc;

		calls[n_up].id = i;
		rc = call_setup(&calls[n_up]);
		if (rc == -EPROTO) {
			call_delete(&calls[n_up]); /* an offer may have been taken */
			continue;
		}
		if (rc) {
			fprintf(stderr, "rtpe_drive: ng %s: %s after %u calls\n", o.ng,
				strerror(-rc), n_up);
			return rc;
		}
		for (int s = 0; s < 2; s++) {
			uint16_t p = ntohs(calls[n_up].to[s].sin_port);

			port_owner[s][p] = (int32_t)n_up;
		}
		calls[n_up].ssrc[SIDE_A] = 0x10000000u + n_up;
		calls[n_up].ssrc[SIDE_B] = 0x20000000u + n_up;
		n_up++;
	}
	return 0;
}

/* CPU so far (µs) of rtpengine (-1: unreadable) and of this tool, at @t_us. */
struct cpu_sample {
	double rtpe_us, self_us;
	uint64_t t_us, relayed;
};

/* The media phases, tick by tick; @cpu sampled at the start and the end of the window. */
static void run_media(struct cpu_sample cpu[2], uint64_t *late_max)
{
	uint64_t t0 = now_us() + 20000u;

	for (uint32_t k = 0; k < n_frames; k++) {
		if (k > win_end && ds[A_TO_B].recv_win == ds[A_TO_B].sent_win &&
		    ds[B_TO_A].recv_win == ds[B_TO_A].sent_win)
			break;
		for (unsigned s = 0; s < SLOTS; s++) {
			uint64_t due = t0 + (uint64_t)k * 20000u + s * (20000u / SLOTS), l, l2;

			wait_until(due);
			if (s == 0 && (k == win_first || k == win_end)) {
				int e = k == win_end;

				cpu[e].rtpe_us = proc_cpu_us(o.pid);
				cpu[e].self_us = self_cpu_us();
				cpu[e].t_us = now_us();
				cpu[e].relayed = relayed;
			}
			/* Which side goes first alternates: neither waits behind the other. */
			l = send_slot((k + s) & 1 ? SIDE_B : SIDE_A, s, k, due);
			l2 = send_slot((k + s) & 1 ? SIDE_A : SIDE_B, s, k, due);
			if (l2 > l)
				l = l2;
			if (k >= win_first && k < win_end && l > *late_max)
				*late_max = l;
		}
	}
	wait_until(now_us() + 20000u);
}

/* The DELAY, CPU and RESULT lines. CPU per call per 20 ms divides rtpengine's CPU in the window
 * by the call periods it relayed in that time (packets back, per direction: an rtpengine that
 * falls behind is charged for the work it did, not for what queued up), ours by the periods we
 * sent; the CPU percentages divide by the window's wall time: a tool that fell behind its pace
 * (pace_pct < 100) offered less than the nominal load, and says so. */
static void report(const struct cpu_sample cpu[2], uint64_t late_max, uint64_t setup_ms)
{
	double win_s = (double)(win_end - win_first) / 50.0;
	double wall_us = (double)(cpu[1].t_us - cpu[0].t_us);
	double periods = (double)(ds[A_TO_B].sent_win + ds[B_TO_A].sent_win) / 2.0;
	double done = (double)(cpu[1].relayed - cpu[0].relayed) / 2.0;
	double rt =
	    cpu[0].rtpe_us >= 0 && cpu[1].rtpe_us >= 0 ? cpu[1].rtpe_us - cpu[0].rtpe_us : -1;
	double self = cpu[1].self_us - cpu[0].self_us;
	uint64_t sent = 0, lost = 0;
	unsigned silent = 0;
	char prefix[160];

	for (int d = 0; d < 2; d++) {
		snprintf(prefix, sizeof(prefix), "DELAY path=rtpengine mode=%s dir=%s legs=%u",
			 o.mode->name, dir_name[d], n_up);
		delay_hist_print(&ds[d].hist, stdout, prefix);
		sent += ds[d].sent_win;
		lost += ds[d].sent_win - ds[d].recv_win;
	}
	for (unsigned i = 0; i < n_up; i++)
		silent += !calls[i].rx_win[A_TO_B] || !calls[i].rx_win[B_TO_A];
	printf("CPU path=rtpengine mode=%s legs=%u cpu_pct=%.1f us_per_call_per_20ms=%.2f "
	       "tool_cpu_pct=%.1f tool_us_per_call_per_20ms=%.2f pace_pct=%.1f\n",
	       o.mode->name, n_up, rt >= 0 && wall_us > 0 ? rt * 100 / wall_us : -1.0,
	       rt >= 0 && done > 0 ? rt / done : -1.0, wall_us > 0 ? self * 100 / wall_us : 0.0,
	       periods > 0 ? self / periods : 0.0, wall_us > 0 ? win_s * 1e8 / wall_us : 0.0);
	printf("RESULT path=rtpengine mode=%s calls=%u calls_up=%u seconds=%.1f wall_s=%.2f "
	       "setup_ms=%llu",
	       o.mode->name, o.calls, n_up, win_s, wall_us / 1e6, (unsigned long long)setup_ms);
	for (int d = 0; d < 2; d++) {
		uint64_t l = ds[d].sent_win - ds[d].recv_win;

		printf(" sent_%s=%llu lost_%s=%llu loss_%s_pct=%.3f", dir_name[d],
		       (unsigned long long)ds[d].sent_win, dir_name[d], (unsigned long long)l,
		       dir_name[d], ds[d].sent_win ? l * 100.0 / (double)ds[d].sent_win : 0.0);
	}
	printf(" loss_pct=%.3f silent_calls=%u unmatched=%llu dup=%llu ts_fallback=%llu stray=%llu "
	       "send_late_max_ms=%.2f\n",
	       sent ? lost * 100.0 / (double)sent : 0.0, silent,
	       (unsigned long long)(ds[0].unmatched + ds[1].unmatched),
	       (unsigned long long)(ds[0].dup + ds[1].dup),
	       (unsigned long long)(ds[0].ts_fallback + ds[1].ts_fallback),
	       (unsigned long long)stray, (double)late_max / 1000.0);
}

int main(int argc, char **argv)
{
	struct cpu_sample cpu[2] = {{.rtpe_us = -1}, {.rtpe_us = -1}};
	uint64_t late_max = 0, t_setup;
	int rc = 1;

	if (parse_args(argc, argv)) {
		usage();
		return 2;
	}
	memset(port_owner, 0xff, sizeof(port_owner));
	calls = calloc(o.calls, sizeof(*calls));
	ng_fd = ng_socket(o.ng);
	sock[SIDE_A] = udp_socket(&sock_port[SIDE_A]);
	sock[SIDE_B] = udp_socket(&sock_port[SIDE_B]);
	if (!calls || ng_fd < 0 || sock[SIDE_A] < 0 || sock[SIDE_B] < 0) {
		fprintf(stderr, "rtpe_drive: sockets or memory: %s\n", strerror(errno));
		goto out_free;
	}
	if (make_tone(SIDE_A) || make_tone(SIDE_B)) {
		fprintf(stderr, "rtpe_drive: cannot encode the tone\n");
		goto out_free;
	}
	win_first = (uint32_t)lround(o.warmup * 50);
	win_end = win_first + (uint32_t)lround(o.seconds * 50);
	n_frames = win_end + DRAIN_TICKS;
	sent_store = calloc((size_t)o.calls * 2 * n_frames, sizeof(*sent_store));
	if (!sent_store) {
		fprintf(stderr, "rtpe_drive: no memory for %u calls of %u frames\n", o.calls,
			n_frames);
		goto out_free;
	}
	t_base = now_us();
	t_setup = t_base;
	if (setup_all() || !n_up) {
		fprintf(stderr, "rtpe_drive: no call set up (%u of %u)\n", n_up, o.calls);
		goto out_delete;
	}
	t_setup = (now_us() - t_setup) / 1000u;
	for (unsigned i = 0; i < n_up; i++)
		for (int d = 0; d < 2; d++)
			calls[i].sent_at[d] = sent_store + ((size_t)i * 2 + (size_t)d) * n_frames;
	run_media(cpu, &late_max);
	report(cpu, late_max, t_setup);
	rc = 0;

out_delete:
	for (unsigned i = 0; i < n_up; i++)
		if (call_delete(&calls[i]) == -ETIMEDOUT)
			break;
out_free:
	free(sent_store);
	free(calls);
	return rc;
}
