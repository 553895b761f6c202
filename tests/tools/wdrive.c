/*
 * wdrive.c - drives mediaworkers as a signaler would, through the same dispatcher the signaler
 * uses: creates legs, streams a tone into them as RTMP-side frames at real-time pacing, records
 * what comes back to a WAV, and reports. Scenarios (one per run):
 *
 *   tone    one leg toward --remote (e.g. SIPp -rtp_echo): tone in, echo back out
 *   late    like tone, but the leg is created without a remote and the tone already flows when
 *           UPDATE_LEG gives it --remote (and --update-codec, a codec from --sip-codecs), after
 *           --late-ms, as a signaler does when the callee answers
 *   pair    two legs on the worker(s) sending RTP to each other (optionally SRTP, optionally
 *           DTMF from A that B must report); tone into A, recorded from B
 *   failover  like tone, then SIGKILLs the worker (--kill-pid) and adopts the leg on the second
 *           worker from Redis; reports the audio gap (and the longest silence from the kill on)
 *           and checks the SSRC did not change
 *   churn   creates and destroys --count legs (--inflight at a time); prints the worker's stats
 *   garbage sends malformed ZeroMQ messages to the worker, then checks it still answers
 *   bench   --legs N legs in pairs, every leg fed at 20 ms; prints loss, the pairs' round trip
 *           (pass-through: the send time rides in the G.711 bytes), worker CPU, the codec-only
 *           cost, and its own CPU (the signaler's side of the ZeroMQ channel). Besides the pairs,
 *           --probe-legs N (10) legs whose far end is wdrive itself (one UDP socket of its own,
 *           the legs' signalled remote): wdrive plays their SIP peer too, one RTP packet per
 *           20 ms each, and measures the one-way delay through the worker in each direction
 *           (below: "Probes")
 *
 * ZeroMQ security as a signaler's: CURVE_SECRET_KEY_FILE / CURVE_ALLOWED_KEYS_FILE (the workers'
 * keys; a --worker's third field, or the one allowed key), or ZMQ_INSECURE=1.
 *
 * Exit 0 when the scenario's checks hold; a "RESULT key=value ..." line gives the figures.
 */
#include "codec.h"
#include "curve.h"
#include "delay_hist.h"
#include "delay_track.h"
#include "dispatcher.h"
#include "evloop.h"
#include "g711.h"
#include "log.h"
#include "transcode.h"
#include "wire.h"
#include "zsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <signal.h>
#include <speex/speex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_LEGS 4096
#define TONE_FRAMES 50 /* one second of 20 ms frames: a whole number of cycles for 1000 Hz */
#define MAX_REC (16000 * 120)
#define MAX_PROBES 256
#define PROBE_DRAIN_MS 2000 /* a probe's frame not back this long after the last send is lost */

struct opts {
	const char *scenario;
	const char *workers[2]; /* "ctl,media" */
	const char *rtmp_codec, *sip_codecs, *remote, *out, *update_codec;
	double seconds;
	unsigned late_ms;
	unsigned freq, count, inflight, legs, probe_legs;
	bool srtp, passthrough;
	char dtmf;
	int kill_pid, pid[2], n_pid;
};

struct leg {
	char id[32];
	struct dispatcher_worker *w;
	bool created, destroyed;
	char ip[64];
	uint16_t port;
	uint32_t ssrc;
	uint8_t key[30];
	size_t key_len;
	struct leg *peer;
	uint64_t frames_in;
	struct probe *probe; /* bench: a probe leg's measurements, else NULL */
	uint32_t last_stamp; /* bench: the send time the last frame back carried */
};

static struct evloop *loop;
static struct dispatcher *disp;
static struct opts o = {
	.rtmp_codec = "speex", .sip_codecs = "PCMU/8000", .seconds = 3, .freq = 1000,
	.count = 1000, .inflight = 32, .legs = 100, .late_ms = 1000, .probe_legs = 10,
};
static struct leg legs[MAX_LEGS];
static unsigned n_legs, pending;
static int failures;
static const struct codec *rtmp_codec;
static uint8_t tone[TONE_FRAMES][400];
static size_t tone_len[TONE_FRAMES];
static int16_t *rec;
static size_t rec_n, rec_rate;
static void *spx_dec;
static SpeexBits spx_bits;
static uint64_t first_in_ms, last_in_ms, gap_max_ms, last_frame_ms;
static uint32_t dtmf_events;
static char dtmf_seen;
static struct delay_hist round_trip; /* bench: the pairs, frame in -> RTP -> frame out */
static struct dispatcher_worker *workers[2];
static struct curve *curve; /* CURVE_* from the environment, as a signaler (or ZMQ_INSECURE=1) */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One second of the tone as RTMP frames of the RTMP codec, encoded once. */
static int make_tone(void)
{
	int16_t pcm[320];
	unsigned rate = rtmp_codec->clock_rate, n = rate / 50;

	if (rtmp_codec->id == CODEC_SPEEX_WB) {
		void *enc = speex_encoder_init(&speex_wb_mode);
		SpeexBits bits;
		int q = 8, c = 2;

		speex_encoder_ctl(enc, SPEEX_SET_QUALITY, &q);
		speex_encoder_ctl(enc, SPEEX_SET_COMPLEXITY, &c);
		speex_bits_init(&bits);
		for (unsigned f = 0; f < TONE_FRAMES; f++) {
			for (unsigned i = 0; i < n; i++)
				pcm[i] = (int16_t)(8000 * sin(2 * M_PI * o.freq * (f * n + i) / rate));
			speex_bits_reset(&bits);
			speex_encode_int(enc, pcm, &bits);
			tone[f][0] = rtmp_codec->rtmp_audio_byte;
			tone_len[f] = 1 + (size_t)speex_bits_write(&bits, (char *)tone[f] + 1, 399);
		}
		speex_bits_destroy(&bits);
		speex_encoder_destroy(enc);
		return 0;
	}
	for (unsigned f = 0; f < TONE_FRAMES; f++) {
		for (unsigned i = 0; i < n; i++)
			pcm[i] = (int16_t)(8000 * sin(2 * M_PI * o.freq * (f * n + i) / rate));
		tone[f][0] = rtmp_codec->rtmp_audio_byte;
		if (rtmp_codec->id == CODEC_PCMU)
			g711_ulaw_encode_buf(tone[f] + 1, pcm, n);
		else
			g711_alaw_encode_buf(tone[f] + 1, pcm, n);
		tone_len[f] = 1 + n;
	}
	return 0;
}

/*
 * The tone of the late scenario, encoded as it is sent by one Speex encoder that runs over the
 * whole stream, as a real publisher's does. The looped frames of make_tone() are not one stream:
 * every second the decoder gets a frame encoded from a fresh encoder's zero state, which hides
 * a decoder that starts in the middle of a stream (its state differs from the encoder's, and on
 * a steady tone libspeex never recovers from that: the level grows until it clips).
 */
static void *live_enc;
static SpeexBits live_bits;
static unsigned live_next;
static uint8_t live_frame[400];
static size_t live_len;

/* Frame @f of the tone; with the live encoder @f only grows (the frame is encoded once). */
static const uint8_t *tone_frame(unsigned f, size_t *len)
{
	int16_t pcm[320];
	unsigned n = rtmp_codec->clock_rate / 50;

	if (!live_enc || rtmp_codec->id != CODEC_SPEEX_WB) {
		*len = tone_len[f % TONE_FRAMES];
		return tone[f % TONE_FRAMES];
	}
	while (live_next <= f) {
		for (unsigned i = 0; i < n; i++)
			pcm[i] = (int16_t)(8000 * sin(2 * M_PI * o.freq * (live_next * n + i) /
						      rtmp_codec->clock_rate));
		speex_bits_reset(&live_bits);
		speex_encode_int(live_enc, pcm, &live_bits);
		live_frame[0] = rtmp_codec->rtmp_audio_byte;
		live_len = 1 + (size_t)speex_bits_write(&live_bits, (char *)live_frame + 1, 399);
		live_next++;
	}
	*len = live_len;
	return live_frame;
}

static int live_tone_start(void)
{
	int q = 8, c = 2;

	live_enc = speex_encoder_init(&speex_wb_mode);
	if (!live_enc)
		return -ENOMEM;
	speex_encoder_ctl(live_enc, SPEEX_SET_QUALITY, &q);
	speex_encoder_ctl(live_enc, SPEEX_SET_COMPLEXITY, &c);
	speex_bits_init(&live_bits);
	return 0;
}

static void live_tone_stop(void)
{
	if (!live_enc)
		return;
	speex_bits_destroy(&live_bits);
	speex_encoder_destroy(live_enc);
	live_enc = NULL;
}

/* Decodes one RTMP frame from a worker into the recording. */
static void record_frame(const uint8_t *p, size_t len)
{
	int16_t pcm[320 * 8];
	size_t n = 0;

	if (len < 2 || !rec)
		return;
	if ((p[0] >> 4) == 11) {
		speex_bits_read_from(&spx_bits, (const char *)p + 1, (int)len - 1);
		while (n + 320 <= sizeof(pcm) / sizeof(pcm[0]) &&
		       speex_decode_int(spx_dec, &spx_bits, pcm + n) == 0)
			n += 320;
	} else if ((p[0] >> 4) == 8 && len - 1 <= sizeof(pcm) / sizeof(pcm[0])) {
		g711_ulaw_decode_buf(pcm, p + 1, len - 1);
		n = len - 1;
	} else if ((p[0] >> 4) == 7 && len - 1 <= sizeof(pcm) / sizeof(pcm[0])) {
		g711_alaw_decode_buf(pcm, p + 1, len - 1);
		n = len - 1;
	}
	if (rec_n + n <= MAX_REC) {
		memcpy(rec + rec_n, pcm, n * sizeof(pcm[0]));
		rec_n += n;
	}
}

static int write_wav(const char *path)
{
	FILE *f = fopen(path, "wb");
	uint32_t data = (uint32_t)(rec_n * 2), v;
	uint16_t s;

	if (!f)
		return -errno;
#define W32(x) (v = (x), fwrite(&v, 4, 1, f))
#define W16(x) (s = (x), fwrite(&s, 2, 1, f))
	fwrite("RIFF", 1, 4, f);
	W32(36 + data);
	fwrite("WAVEfmt ", 1, 8, f);
	W32(16);
	W16(1);
	W16(1);
	W32((uint32_t)rec_rate);
	W32((uint32_t)rec_rate * 2);
	W16(2);
	W16(16);
	fwrite("data", 1, 4, f);
	W32(data);
	fwrite(rec, 2, rec_n, f);
#undef W32
#undef W16
	return fclose(f) == 0 ? 0 : -EIO;
}

/*
 * Probes (bench). A probe leg's remote is wdrive's own UDP socket (127.0.0.1), which is also
 * where wdrive sends the leg's RTP from: the leg's strict latching takes it as the signalled
 * peer. Each probe has a track (delay_track.h) per direction, on this process's clock:
 *   rtmp_to_rtp  frame handed to the dispatcher -> its RTP packet read from the socket (the leg
 *                is known by the packet's source port, the leg's own)
 *   rtp_to_rtmp  RTP packet sent -> its frame back over ZeroMQ
 * A frame is named by the index its G.711 bytes carry (pass-through), else by its timestamp:
 * RTP (the worker stamps the k-th frame ts0 + k * samples; a marker bit after the first packet
 * says frames went missing: resync) or RTMP (20 ms per frame, on the RTP clock).
 */
struct probe {
	struct leg *l;
	struct delay_track up, down; /* rtmp_to_rtp, rtp_to_rtmp */
	uint16_t seq;
	uint32_t ts, ssrc;
};

static struct probe probes[MAX_PROBES];
static unsigned n_probes;
static int probe_fd = -1;
static struct ev_io *probe_io;
static uint16_t probe_port;
static struct delay_hist probe_hist[2]; /* rtmp_to_rtp, rtp_to_rtmp */
static uint8_t sip_tone[TONE_FRAMES][160];
static uint8_t sip_pt;
static unsigned sip_spf; /* RTP timestamp units per 20 ms frame */

/* A probe's RTMP-side frame (@buf, @len bytes) about to be handed to the dispatcher. */
static void probe_frame_out(struct probe *p, uint8_t *buf, size_t len)
{
	uint32_t idx = delay_track_sent(&p->up, now_us());

	if (o.passthrough && len >= 9 && idx != DELAY_TRACK_NONE)
		delay_track_put_seq(buf + 1, idx);
}

/* A probe's frame back from the worker. */
static void probe_frame_in(struct probe *p, const struct wire_media *md)
{
	uint64_t now = now_us();
	uint32_t idx;

	if (md->len < 2)
		return;
	if (o.passthrough) {
		idx = delay_track_get_seq(md->payload + 1, md->len - 1);
		if (idx == DELAY_TRACK_NONE) { /* concealment: names no frame */
			p->down.dups++;
			return;
		}
	} else {
		idx = delay_track_name_ts(&p->down, md->ts, 20, false, now);
	}
	delay_track_arrived(&p->down, idx, now, &probe_hist[1]);
}

/* RTP from the probe legs: each packet to its leg's rtmp_to_rtp track. */
static void on_probe_rtp(struct evloop *lp, struct ev_io *io, int fd, unsigned events, void *arg)
{
	uint8_t buf[1500];

	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		uint64_t now = now_us();
		struct probe *p = NULL;
		uint32_t ts, idx;
		size_t hl;
		bool marker;

		if (n < 0)
			return;
		for (unsigned i = 0; i < n_probes && !p; i++)
			if (probes[i].l && probes[i].l->port == ntohs(from.sin_port))
				p = &probes[i];
		if (!p || !delay_track_rtp(buf, (size_t)n, &ts, &marker, &hl))
			continue;
		if (o.passthrough) {
			idx = delay_track_get_seq(buf + hl, (size_t)n - hl);
			if (idx == DELAY_TRACK_NONE) {
				p->up.dups++;
				continue;
			}
		} else {
			idx = delay_track_name_ts(&p->up, ts, sip_spf, marker, now);
		}
		delay_track_arrived(&p->up, idx, now, &probe_hist[0]);
	}
}

/* Sends frame @f of the SIP-side tone as RTP to every probe leg. */
static void probe_tick(unsigned f)
{
	for (unsigned i = 0; i < n_probes; i++) {
		struct probe *p = &probes[i];
		uint8_t pkt[12 + 160];
		struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(p->l->port)};
		uint32_t idx;

		pkt[0] = 0x80;
		pkt[1] = (uint8_t)(sip_pt | (p->seq == 0 ? 0x80 : 0));
		pkt[2] = (uint8_t)(p->seq >> 8);
		pkt[3] = (uint8_t)p->seq;
		for (int b = 0; b < 4; b++) {
			pkt[4 + b] = (uint8_t)(p->ts >> (24 - 8 * b));
			pkt[8 + b] = (uint8_t)(p->ssrc >> (24 - 8 * b));
		}
		memcpy(pkt + 12, sip_tone[f % TONE_FRAMES], 160);
		inet_pton(AF_INET, p->l->ip[0] ? p->l->ip : "127.0.0.1", &to.sin_addr);
		idx = delay_track_sent(&p->down, now_us());
		if (o.passthrough && idx != DELAY_TRACK_NONE)
			delay_track_put_seq(pkt + 12, idx);
		sendto(probe_fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to));
		p->seq++;
		p->ts += sip_spf;
	}
}

/* The probes' socket and SIP-side tone for @np probes of @frames frames each. Returns 0, or -1
 * after saying why (the SIP codec is not G.711, no socket). */
static int probe_setup(unsigned np, uint32_t frames)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int rcvbuf = 4 << 20;
	char name[32];
	char *slash;
	const struct codec *k;
	int16_t pcm[160];

	snprintf(name, sizeof(name), "%s", o.sip_codecs);
	name[strcspn(name, ",")] = '\0';
	slash = strchr(name, '/');
	if (slash)
		*slash = '\0';
	k = codec_by_name(name, slash ? (unsigned)atoi(slash + 1) : 8000);
	if (!k || (k->id != CODEC_PCMU && k->id != CODEC_PCMA)) {
		fprintf(stderr, "wdrive: probes need a G.711 SIP codec, not %s\n", o.sip_codecs);
		return -1;
	}
	sip_pt = (uint8_t)k->default_pt;
	sip_spf = k->clock_rate / 50;
	for (unsigned f = 0; f < TONE_FRAMES; f++) {
		for (unsigned i = 0; i < 160; i++)
			pcm[i] = (int16_t)(8000 * sin(2 * M_PI * o.freq * (f * 160 + i) / 8000.0));
		if (k->id == CODEC_PCMU)
			g711_ulaw_encode_buf(sip_tone[f], pcm, 160);
		else
			g711_alaw_encode_buf(sip_tone[f], pcm, 160);
	}
	probe_fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (probe_fd < 0 || bind(probe_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(probe_fd, (struct sockaddr *)&a, &al) < 0) {
		fprintf(stderr, "wdrive: probe socket: %s\n", strerror(errno));
		return -1;
	}
	if (setsockopt(probe_fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(probe_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	probe_port = ntohs(a.sin_port);
	probe_io = evloop_io_add(loop, probe_fd, EV_READ, on_probe_rtp, NULL);
	for (unsigned i = 0; i < np; i++) {
		if (delay_track_init(&probes[i].up, frames) < 0 ||
		    delay_track_init(&probes[i].down, frames) < 0) {
			fprintf(stderr, "wdrive: out of memory\n");
			return -1;
		}
		RAND_bytes((uint8_t *)&probes[i].ssrc, sizeof(probes[i].ssrc));
		RAND_bytes((uint8_t *)&probes[i].seq, sizeof(probes[i].seq));
		probes[i].seq |= 1; /* never 0: 0 marks the first packet */
	}
	n_probes = np;
	return probe_io ? 0 : -1;
}

/* Starts (@start) or ends the measured window of every probe track. */
static void probe_window(bool start)
{
	for (unsigned i = 0; i < n_probes; i++) {
		struct delay_track *t[2] = {&probes[i].up, &probes[i].down};

		for (int d = 0; d < 2; d++) {
			if (start)
				delay_track_window_start(t[d]);
			else
				delay_track_window_end(t[d]);
		}
	}
	if (start)
		memset(probe_hist, 0, sizeof(probe_hist));
}

/* The DELAY and LOSS lines of each direction; @n_all: every leg on the workers. */
static void probe_report(unsigned n_all)
{
	static const char *const dirs[2] = {"rtmp_to_rtp", "rtp_to_rtmp"};
	const char *mode = o.passthrough ? "passthrough" : "transcode";
	char prefix[160];

	for (int d = 0; d < 2 && n_probes; d++) {
		struct delay_tally y = {0};

		for (unsigned i = 0; i < n_probes; i++)
			delay_track_tally(d ? &probes[i].down : &probes[i].up, &y);
		snprintf(prefix, sizeof(prefix), "path=worker mode=%s dir=%s legs=%u", mode, dirs[d],
			 n_all);
		delay_report(stdout, prefix, &probe_hist[d], &y);
	}
	snprintf(prefix, sizeof(prefix), "DELAY path=worker mode=%s dir=round_trip legs=%u", mode,
		 n_all);
	if (o.passthrough && n_all > n_probes)
		delay_hist_print(&round_trip, stdout, prefix);
}

static void probe_teardown(void)
{
	for (unsigned i = 0; i < n_probes; i++) {
		delay_track_free(&probes[i].up);
		delay_track_free(&probes[i].down);
	}
	evloop_io_del(&probe_io);
	if (probe_fd >= 0)
		close(probe_fd);
	probe_fd = -1;
	n_probes = 0;
}

/* The leg named @id. Ids that end in "-<i>", i the leg's place in legs[] (bench), are found
 * at once; others by a search. */
static struct leg *leg_by_id(const char *id)
{
	const char *dash = strrchr(id, '-');
	unsigned long k = dash ? strtoul(dash + 1, NULL, 10) : MAX_LEGS;

	if (k < n_legs && strcmp(legs[k].id, id) == 0)
		return &legs[k];
	for (unsigned i = 0; i < n_legs; i++)
		if (strcmp(legs[i].id, id) == 0)
			return &legs[i];
	return NULL;
}

static void on_media(struct dispatcher *d, struct dispatcher_worker *w, const struct wire_media *md,
		     void *arg)
{
	struct leg *l = leg_by_id(md->leg_id);
	uint64_t t = now_ms();

	if (!l)
		return;
	l->frames_in++;
	if (!first_in_ms)
		first_in_ms = t;
	if (last_in_ms && t - last_in_ms > gap_max_ms && strcmp(o.scenario, "bench") != 0)
		gap_max_ms = t - last_in_ms;
	last_in_ms = t;
	if (strcmp(o.scenario, "bench") == 0) {
		if (l->probe) {
			probe_frame_in(l->probe, md);
		} else if (o.passthrough && md->len >= 9) {
			/* Pass-through: the G.711 bytes carry the send time in µs, modulo 2^32; a
			 * frame without it, or with the last one again, is concealment. */
			uint32_t sent = delay_track_get_seq(md->payload + 1, md->len - 1);

			if (sent != DELAY_TRACK_NONE && sent != l->last_stamp)
				delay_hist_add(&round_trip, (uint32_t)now_us() - sent);
			l->last_stamp = sent;
		}
		return;
	}
	record_frame(md->payload, md->len);
}

static void on_event(struct dispatcher *d, struct dispatcher_worker *w, const struct wire_msg *ev,
		     void *arg)
{
	uint8_t kind = 0, digit = 0;
	char id[WIRE_MAX_ID + 1] = "";

	wire_get_u8(ev, WIRE_T_EVENT_KIND, &kind);
	wire_get_cstr(ev, WIRE_T_LEG_ID, id, sizeof(id));
	if (kind == WIRE_EV_DTMF && wire_get_u8(ev, WIRE_T_DIGIT, &digit) == 0) {
		dtmf_events++;
		dtmf_seen = (char)digit;
		printf("EVENT dtmf leg=%s digit=%c\n", id, digit);
	} else {
		printf("EVENT kind=%u leg=%s\n", kind, id);
	}
}

/* Builds CREATE_LEG for @l. */
static void build_create(struct wire_builder *b, struct leg *l, const char *remote)
{
	struct wire_codec rc = {.pt = 96, .channels = 1, .rate = rtmp_codec->clock_rate};
	char list[256], *save = NULL;

	snprintf(rc.name, sizeof(rc.name), "%s", rtmp_codec->name);
	wire_builder_init(b, WIRE_CREATE_LEG, 0);
	wire_put_str(b, WIRE_T_LEG_ID, l->id);
	wire_put_str(b, WIRE_T_CALL_ID, l->id);
	wire_put_str(b, WIRE_T_OWNER, dispatcher_signaler_id(disp));
	wire_put_codec(b, WIRE_T_RTMP_CODEC, &rc);
	snprintf(list, sizeof(list), "%s", o.sip_codecs);
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct wire_codec c = {.channels = 1};
		char *slash = strchr(tok, '/');
		const struct codec *k;

		c.rate = slash ? (uint32_t)atoi(slash + 1) : 8000;
		if (slash)
			*slash = '\0';
		k = codec_by_name(tok, c.rate);
		c.pt = k ? (uint8_t)k->default_pt : 96;
		snprintf(c.name, sizeof(c.name), "%s", tok);
		wire_put_codec(b, WIRE_T_SIP_CODEC, &c);
	}
	if (remote) {
		char ip[64];
		const char *colon = strrchr(remote, ':');

		snprintf(ip, sizeof(ip), "%.*s", colon ? (int)(colon - remote) : 0, remote);
		wire_put_str(b, WIRE_T_REMOTE_IP, ip);
		wire_put_u16(b, WIRE_T_REMOTE_PORT, colon ? (uint16_t)atoi(colon + 1) : 0);
	}
	if (o.srtp)
		wire_put_bool(b, WIRE_T_WANT_SRTP, true);
}

static void on_created(struct dispatcher *d, struct dispatcher_worker *w, int status,
		       const struct wire_msg *reply, void *arg)
{
	struct leg *l = arg;
	const uint8_t *key;
	size_t klen;

	pending--;
	if (status < 0) {
		char text[200] = "";

		if (reply)
			wire_get_cstr(reply, WIRE_T_ERR_TEXT, text, sizeof(text));
		fprintf(stderr, "wdrive: create %s failed: %s %s\n", l->id, strerror(-status), text);
		failures++;
		return;
	}
	l->created = true;
	wire_get_cstr(reply, WIRE_T_LOCAL_IP, l->ip, sizeof(l->ip));
	wire_get_u16(reply, WIRE_T_LOCAL_PORT, &l->port);
	wire_get_u32(reply, WIRE_T_SSRC, &l->ssrc);
	if (wire_get_bytes(reply, WIRE_T_SRTP_LOCAL_KEY, &key, &klen) == 0 && klen <= sizeof(l->key)) {
		memcpy(l->key, key, klen);
		l->key_len = klen;
	}
}

static void on_done(struct dispatcher *d, struct dispatcher_worker *w, int status,
		    const struct wire_msg *reply, void *arg)
{
	pending--;
	if (status < 0) {
		fprintf(stderr, "wdrive: request failed: %s\n", strerror(-status));
		failures++;
	}
}

static void on_destroyed(struct dispatcher *d, struct dispatcher_worker *w, int status,
			 const struct wire_msg *reply, void *arg)
{
	struct leg *l = arg;

	l->destroyed = status == 0;
	on_done(d, w, status, reply, arg);
}

/* Runs the loop until @cond holds or @ms pass; returns whether it holds. */
static bool run_until(bool (*cond)(void), uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (!cond() && now_ms() < end)
		evloop_run_once(loop, 10);
	return cond();
}

static bool nothing_pending(void)
{
	return pending == 0;
}

static bool workers_ready(void)
{
	for (int i = 0; i < 2; i++) {
		struct dispatcher_worker_info wi;

		if (!workers[i])
			continue;
		dispatcher_worker_info(workers[i], &wi);
		if (!wi.alive || !wi.media_ready)
			return false;
	}
	return true;
}

static int request(struct dispatcher_worker *w, struct wire_builder *b, dispatcher_reply_cb cb,
		   void *arg)
{
	int err = dispatcher_request(disp, w, b, 2000, 2, cb, arg, NULL);

	wire_builder_free(b);
	if (err < 0) {
		fprintf(stderr, "wdrive: request not sent: %s\n", strerror(-err));
		failures++;
		return err;
	}
	pending++;
	return 0;
}

static int create_leg(struct leg *l, const char *remote)
{
	struct wire_builder b = {0};

	build_create(&b, l, remote);
	return request(l->w, &b, on_created, l);
}

static int destroy_leg(struct leg *l)
{
	struct wire_builder b = {0};

	wire_builder_init(&b, WIRE_DESTROY_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, l->id);
	return request(l->w, &b, on_destroyed, l);
}

/* Points @l at @peer (and gives it @peer's SRTP key). */
static int connect_leg(struct leg *l, const struct leg *peer)
{
	struct wire_builder b = {0};

	wire_builder_init(&b, WIRE_UPDATE_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, l->id);
	wire_put_str(&b, WIRE_T_REMOTE_IP, peer->ip);
	wire_put_u16(&b, WIRE_T_REMOTE_PORT, peer->port);
	if (o.srtp && peer->key_len) {
		wire_put_str(&b, WIRE_T_SRTP_SUITE, "AES_CM_128_HMAC_SHA1_80");
		wire_put_bytes(&b, WIRE_T_SRTP_REMOTE_KEY, peer->key, peer->key_len);
	}
	return request(l->w, &b, on_done, NULL);
}

static void send_frame(struct leg *l, unsigned f, uint32_t ts)
{
	uint8_t buf[400];
	size_t len;
	const uint8_t *frame = tone_frame(f, &len);

	memcpy(buf, frame, len);
	if (l->probe) {
		probe_frame_out(l->probe, buf, len);
	} else if (o.passthrough && len >= 9) {
		/* G.711 bytes survive pass-through unchanged; never the "none" value */
		uint32_t t = (uint32_t)now_us();

		delay_track_put_seq(buf + 1, t == DELAY_TRACK_NONE ? 0 : t);
	}
	if (dispatcher_send_media(disp, l->w, l->id, ts, 0, buf, len) < 0)
		failures += 0; /* counted by the dispatcher */
}

/* Streams the tone into @n legs for @seconds at 20 ms pacing. @tick (may be NULL) runs each
 * frame with its index. */
static void stream(struct leg **ls, unsigned n, double seconds, void (*tick)(unsigned f))
{
	unsigned frames = (unsigned)(seconds * 50);
	uint64_t start = now_ms();

	for (unsigned f = 0; f < frames; f++) {
		uint64_t due = start + (uint64_t)f * 20;

		while (now_ms() < due)
			evloop_run_once(loop, (int)(due - now_ms()));
		for (unsigned i = 0; i < n; i++)
			send_frame(ls[i], f, f * 20);
		if (tick)
			tick(f);
	}
	/* Let the last frames come back. */
	for (uint64_t end = now_ms() + 300; now_ms() < end;)
		evloop_run_once(loop, 10);
}

static void print_leg_stats(struct leg *l);

static int scenario_tone(void)
{
	struct leg *l = &legs[n_legs++];
	struct leg *ls[1] = {l};

	snprintf(l->id, sizeof(l->id), "tone-%d", (int)getpid());
	l->w = workers[0];
	if (create_leg(l, o.remote) < 0 || !run_until(nothing_pending, 5000) || !l->created)
		return 1;
	printf("leg %s local %s:%u ssrc %08x\n", l->id, l->ip, l->port, l->ssrc);
	stream(ls, 1, o.seconds, NULL);
	print_leg_stats(l);
	destroy_leg(l);
	run_until(nothing_pending, 3000);
	printf("RESULT frames_in=%llu gap_max_ms=%llu\n", (unsigned long long)l->frames_in,
	       (unsigned long long)gap_max_ms);
	return l->frames_in > 0 && failures == 0 ? 0 : 1;
}

/* late: the remote (and the codec) arrive while the tone flows. */
static struct leg *late_leg;
static int late_pt = -1;

static void late_tick(unsigned f)
{
	struct wire_builder b = {0};
	char ip[64];
	const char *colon = strrchr(o.remote, ':');

	if (f + 1 != o.late_ms / 20)
		return;
	snprintf(ip, sizeof(ip), "%.*s", colon ? (int)(colon - o.remote) : 0, o.remote);
	wire_builder_init(&b, WIRE_UPDATE_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, late_leg->id);
	wire_put_str(&b, WIRE_T_REMOTE_IP, ip);
	wire_put_u16(&b, WIRE_T_REMOTE_PORT, colon ? (uint16_t)atoi(colon + 1) : 0);
	if (late_pt >= 0)
		wire_put_u8(&b, WIRE_T_CODEC_PT, (uint8_t)late_pt);
	request(late_leg->w, &b, on_done, NULL);
	printf("remote %s set after %u ms of audio%s%s\n", o.remote, (f + 1) * 20,
	       late_pt >= 0 ? ", codec " : "", late_pt >= 0 ? o.update_codec : "");
}

static int scenario_late(void)
{
	struct leg *l = &legs[n_legs++];
	struct leg *ls[1] = {l};

	if (!o.remote || o.late_ms < 20 || o.late_ms >= o.seconds * 1000) {
		fprintf(stderr, "wdrive: late needs --remote and 20 <= --late-ms < --seconds\n");
		return 2;
	}
	if (o.update_codec) {
		char name[32];
		char *slash;
		const struct codec *k;

		snprintf(name, sizeof(name), "%s", o.update_codec);
		slash = strchr(name, '/');
		if (slash)
			*slash = '\0';
		k = codec_by_name(name, slash ? (unsigned)atoi(slash + 1) : 8000);
		if (!k) {
			fprintf(stderr, "wdrive: unknown codec %s\n", o.update_codec);
			return 2;
		}
		late_pt = k->default_pt;
	}
	if (rtmp_codec->id == CODEC_SPEEX_WB && live_tone_start() < 0)
		return 1;
	snprintf(l->id, sizeof(l->id), "late-%d", (int)getpid());
	l->w = workers[0];
	late_leg = l;
	if (create_leg(l, NULL) < 0 || !run_until(nothing_pending, 5000) || !l->created)
		return 1;
	printf("leg %s local %s:%u ssrc %08x, no remote yet\n", l->id, l->ip, l->port, l->ssrc);
	stream(ls, 1, o.seconds, late_tick);
	print_leg_stats(l);
	destroy_leg(l);
	run_until(nothing_pending, 3000);
	printf("RESULT frames_in=%llu gap_max_ms=%llu\n", (unsigned long long)l->frames_in,
	       (unsigned long long)gap_max_ms);
	return l->frames_in > 0 && failures == 0 ? 0 : 1;
}

static void send_dtmf_tick(unsigned f)
{
	struct wire_builder b = {0};

	if (!o.dtmf || f != 50)
		return;
	wire_builder_init(&b, WIRE_SEND_DTMF, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, legs[0].id);
	wire_put_u8(&b, WIRE_T_DIGIT, (uint8_t)o.dtmf);
	wire_put_u16(&b, WIRE_T_DURATION_MS, 160);
	request(legs[0].w, &b, on_done, NULL);
}

static int scenario_pair(void)
{
	struct leg *a = &legs[n_legs++], *b = &legs[n_legs++];
	struct leg *ls[1] = {a};

	snprintf(a->id, sizeof(a->id), "pairA-%d", (int)getpid());
	snprintf(b->id, sizeof(b->id), "pairB-%d", (int)getpid());
	a->w = workers[0];
	b->w = workers[1] ? workers[1] : workers[0];
	if (create_leg(a, NULL) < 0 || create_leg(b, NULL) < 0 || !run_until(nothing_pending, 5000) ||
	    !a->created || !b->created)
		return 1;
	if (connect_leg(a, b) < 0 || connect_leg(b, a) < 0 || !run_until(nothing_pending, 5000) ||
	    failures)
		return 1;
	printf("legs %s:%u <-> %s:%u%s\n", a->ip, a->port, b->ip, b->port, o.srtp ? " (SRTP)" : "");
	stream(ls, 1, o.seconds, send_dtmf_tick);
	print_leg_stats(a);
	print_leg_stats(b);
	destroy_leg(a);
	destroy_leg(b);
	run_until(nothing_pending, 3000);
	printf("RESULT frames_in=%llu dtmf_events=%u dtmf_digit=%c\n",
	       (unsigned long long)b->frames_in, dtmf_events, dtmf_seen ? dtmf_seen : '-');
	if (o.dtmf && (dtmf_events != 1 || dtmf_seen != o.dtmf))
		return 1;
	return b->frames_in > 0 && failures == 0 ? 0 : 1;
}

/* failover */
static bool killed, adopted_ok;
static uint64_t kill_ms, first_after_ms;
static uint32_t ssrc_after;

static void on_adopted(struct dispatcher *d, struct dispatcher_worker *w, int status,
		       const struct wire_msg *reply, void *arg)
{
	struct leg *l = arg;

	pending--;
	if (status < 0) {
		fprintf(stderr, "wdrive: adopt failed: %s\n", strerror(-status));
		failures++;
		return;
	}
	wire_get_u32(reply, WIRE_T_SSRC, &ssrc_after);
	wire_get_u16(reply, WIRE_T_LOCAL_PORT, &l->port);
	l->w = w;
	adopted_ok = true;
	printf("adopted on the second worker: port %u ssrc %08x (%llu ms after the kill)\n", l->port,
	       ssrc_after, (unsigned long long)(now_ms() - kill_ms));
}

static void on_worker_down(struct dispatcher *d, struct dispatcher_worker *w, void *arg)
{
	struct wire_builder b = {0};

	if (w != workers[0] || !killed || strcmp(o.scenario, "failover") != 0)
		return;
	printf("worker down noticed %llu ms after the kill\n", (unsigned long long)(now_ms() - kill_ms));
	wire_builder_init(&b, WIRE_ADOPT_LEG, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, legs[0].id);
	request(workers[1], &b, on_adopted, &legs[0]);
}

static void failover_tick(unsigned f)
{
	if (f == 100 && !killed) {
		killed = true;
		kill_ms = now_ms();
		last_frame_ms = last_in_ms;
		gap_max_ms = 0;
		kill(o.kill_pid, SIGKILL);
		printf("killed worker pid %d\n", o.kill_pid);
	}
	if (killed && !first_after_ms && adopted_ok && legs[0].frames_in && last_in_ms > kill_ms)
		first_after_ms = last_in_ms;
}

static int scenario_failover(void)
{
	struct leg *l = &legs[n_legs++];
	struct leg *ls[1] = {l};
	uint32_t ssrc_before;
	uint64_t gap;

	if (!workers[1] || o.kill_pid <= 0) {
		fprintf(stderr, "wdrive: failover needs two workers and --kill-pid\n");
		return 2;
	}
	snprintf(l->id, sizeof(l->id), "fo-%d", (int)getpid());
	l->w = workers[0];
	if (create_leg(l, o.remote) < 0 || !run_until(nothing_pending, 5000) || !l->created)
		return 1;
	ssrc_before = l->ssrc;
	/* Let the worker store the leg's state with a sequence past the first packets. */
	stream(ls, 1, o.seconds, failover_tick);
	gap = first_after_ms && last_frame_ms ? first_after_ms - last_frame_ms : 0;
	print_leg_stats(l);
	destroy_leg(l);
	run_until(nothing_pending, 3000);
	/* gap_ms: the last frame before the kill to the first from the survivor. silence_max_ms:
	 * the longest time without a frame from the kill on (gap_max_ms restarts at the kill). */
	printf("RESULT adopted=%d ssrc_same=%d gap_ms=%llu frames_in=%llu silence_max_ms=%llu\n",
	       adopted_ok, ssrc_after == ssrc_before, (unsigned long long)gap,
	       (unsigned long long)l->frames_in, (unsigned long long)gap_max_ms);
	return adopted_ok && ssrc_after == ssrc_before && first_after_ms ? 0 : 1;
}

static int scenario_churn(void)
{
	unsigned created = 0;

	n_legs = 0;
	for (unsigned i = 0; i < o.count;) {
		while (i < o.count && pending < o.inflight) {
			struct leg *l = &legs[i % MAX_LEGS];

			memset(l, 0, sizeof(*l));
			snprintf(l->id, sizeof(l->id), "churn-%u", i);
			l->w = workers[0];
			n_legs = i % MAX_LEGS + 1 > n_legs ? i % MAX_LEGS + 1 : n_legs;
			create_leg(l, "127.0.0.1:9");
			i++;
		}
		evloop_run_once(loop, 10);
		/* Destroy what was created. */
		for (unsigned k = 0; k < n_legs; k++) {
			if (legs[k].created && !legs[k].destroyed && pending < o.inflight * 2) {
				legs[k].destroyed = true;
				created++;
				destroy_leg(&legs[k]);
			}
		}
	}
	run_until(nothing_pending, 10000);
	for (unsigned k = 0; k < n_legs; k++)
		if (legs[k].created && !legs[k].destroyed) {
			legs[k].destroyed = true;
			created++;
			destroy_leg(&legs[k]);
		}
	run_until(nothing_pending, 10000);
	printf("RESULT churned=%u failures=%d\n", created, failures);
	return failures == 0 && created == o.count ? 0 : 1;
}

static uint32_t stats_legs = UINT32_MAX;

static void on_wstats(struct dispatcher *d, struct dispatcher_worker *w, int status,
		      const struct wire_msg *reply, void *arg)
{
	pending--;
	if (status == 0)
		wire_get_u32(reply, WIRE_T_LEGS, &stats_legs);
	else
		failures++;
}

static int worker_stats(void)
{
	struct wire_builder b = {0};

	wire_builder_init(&b, WIRE_WORKER_STATS, 0);
	stats_legs = UINT32_MAX;
	if (request(workers[0], &b, on_wstats, NULL) < 0 || !run_until(nothing_pending, 5000))
		return -1;
	return stats_legs == UINT32_MAX ? -1 : (int)stats_legs;
}

static int scenario_garbage(void)
{
	void *ctx = zsock_context();
	const char *eps[2];
	char ctl[256], media[256];
	int legs_now;

	snprintf(ctl, sizeof(ctl), "%s", o.workers[0]);
	*strchr(ctl, ',') = '\0';
	snprintf(media, sizeof(media), "%s", strchr(o.workers[0], ',') + 1);
	eps[0] = ctl;
	eps[1] = media;
	for (int e = 0; e < 2; e++) {
		void *s = zmq_socket(ctx, ZMQ_DEALER);
		int linger = 0;
		uint8_t junk[300];

		zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
		if (curve_enabled(curve)) { /* garbage on an authenticated connection */
			struct dispatcher_worker_info in;

			dispatcher_worker_info(workers[0], &in);
			zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, in.server_key, 40);
			zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, curve_public_key(curve), 40);
			zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, curve_secret_key(curve), 40);
		}
		zmq_connect(s, eps[e]);
		for (int i = 0; i < 200; i++) {
			size_t n = (size_t)(i % 40) * 7 + 1;

			RAND_bytes(junk, (int)n);
			if (i % 5 == 0) { /* right magic, broken rest */
				junk[0] = 'R';
				junk[1] = 'S';
				if (n > 3)
					junk[2] = (uint8_t)(i % 3);
			}
			zmq_send(s, junk, n, (i % 3 == 0 ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
			if (i % 3 == 0)
				zmq_send(s, junk, n / 2 + 1, ZMQ_DONTWAIT);
		}
		usleep(200000);
		zmq_close(s);
	}
	legs_now = worker_stats();
	printf("RESULT garbage_sent=400 worker_answers=%d legs=%d\n", legs_now >= 0, legs_now);
	return legs_now >= 0 ? 0 : 1;
}

/* CPU ticks (user + system) of the worker processes given with --pid. */
static double tv_s(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static long proc_ticks(void)
{
	long total = 0;

	for (int i = 0; i < o.n_pid; i++) {
		char path[64];
		long ut, st;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", o.pid[i]);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) == 2)
			total += ut + st;
		fclose(f);
	}
	return total;
}

/* Creates the --probe-legs probes after the @n load legs (their remote: the probe socket).
 * Returns 0 or -1. */
static int bench_probes(unsigned n)
{
	unsigned np = o.probe_legs < MAX_PROBES ? o.probe_legs : MAX_PROBES;
	char remote[32];

	if (np > MAX_LEGS - n)
		np = MAX_LEGS - n;
	if (np && probe_setup(np, (uint32_t)((o.seconds + 4) * 50)) < 0)
		return -1;
	snprintf(remote, sizeof(remote), "127.0.0.1:%u", probe_port);
	for (unsigned i = 0; i < n_probes; i++) {
		struct leg *l = &legs[n_legs];

		snprintf(l->id, sizeof(l->id), "probe-%u", n_legs++);
		l->w = workers[1] && i % 2 ? workers[1] : workers[0];
		l->probe = &probes[i];
		probes[i].l = l;
		create_leg(l, remote);
	}
	return 0;
}

/* The bench's stream: the probes' RTP each frame, and the measured window's edges. */
#define BENCH_WARMUP_FRAMES 100
static struct {
	struct leg **ls;
	unsigned n, window_from, window_to; /* frames [window_from, window_to) are measured */
	long ticks[2];
	struct rusage ru[2];
	uint64_t t_us[2];
} bench;

static void bench_tick(unsigned f)
{
	int end = f + 1 == bench.window_to;

	probe_tick(f);
	if (f + 1 != bench.window_from && !end)
		return;
	if (!end) {
		for (unsigned i = 0; i < bench.n; i++)
			bench.ls[i]->frames_in = 0;
		memset(&round_trip, 0, sizeof(round_trip));
	}
	probe_window(!end);
	bench.ticks[end] = proc_ticks();
	getrusage(RUSAGE_SELF, &bench.ru[end]);
	bench.t_us[end] = now_us();
}

static int scenario_bench(void)
{
	struct leg *ls[MAX_LEGS];
	unsigned n = o.legs & ~1u, all;
	int ret = 1;
	uint64_t expected, got = 0;
	struct tc_bench tb = {0};
	struct transcode_opts topts;
	const struct codec *sip;
	char sipname[32];
	unsigned siprate = 8000;
	long ticks0 = 0, ticks1 = 0, hz = sysconf(_SC_CLK_TCK);
	struct rusage ru0, ru1; /* our own CPU: the signaler's side of the ZeroMQ media channel */

	if (n > MAX_LEGS)
		n = MAX_LEGS;
	for (unsigned i = 0; i < n; i++) {
		struct leg *l = &legs[n_legs++];

		snprintf(l->id, sizeof(l->id), "bench-%u", i);
		/* Pairs stay on one worker; pairs alternate between the workers given. */
		l->w = workers[1] && (i / 2) % 2 ? workers[1] : workers[0];
		ls[i] = l;
		create_leg(l, NULL);
		if (pending >= o.inflight)
			run_until(nothing_pending, 5000);
	}
	if (bench_probes(n) < 0 || !run_until(nothing_pending, 10000) || failures)
		goto out_destroy;
	/* The probes spread among the load legs, so they wait as long as any in each burst. */
	all = n + n_probes;
	for (unsigned i = 0, k = 0, p = 0; i < all; i++)
		ls[i] = p < n_probes && (uint64_t)p * all <= (uint64_t)i * n_probes ? probes[p++].l
										      : &legs[k++];
	for (unsigned i = 0; i < n; i += 2) {
		connect_leg(&legs[i], &legs[i + 1]);
		connect_leg(&legs[i + 1], &legs[i]);
		if (pending >= o.inflight)
			run_until(nothing_pending, 5000);
	}
	if (!run_until(nothing_pending, 10000) || failures)
		goto out_destroy;

	/* Warm up, then measure, in one stream: a pause would reset the jitter buffers. */
	bench.ls = ls;
	bench.n = all;
	bench.window_from = BENCH_WARMUP_FRAMES;
	bench.window_to = BENCH_WARMUP_FRAMES + (unsigned)(o.seconds * 50);
	stream(ls, all, (double)bench.window_to / 50, bench_tick);
	ticks0 = bench.ticks[0];
	ticks1 = bench.ticks[1];
	ru0 = bench.ru[0];
	ru1 = bench.ru[1];
	if (n_probes) /* stream() waited 300 ms already */
		for (uint64_t end = now_ms() + PROBE_DRAIN_MS - 300; now_ms() < end;)
			evloop_run_once(loop, 10);
	expected = (uint64_t)(o.seconds * 50) * n;
	for (unsigned i = 0; i < n; i++)
		got += legs[i].frames_in;
	snprintf(sipname, sizeof(sipname), "%s", o.sip_codecs);
	if (strchr(sipname, '/')) {
		siprate = (unsigned)atoi(strchr(sipname, '/') + 1);
		*strchr(sipname, '/') = '\0';
	}
	sip = codec_by_name(sipname, siprate);
	transcode_opts_default(&topts);
	if (sip)
		transcode_bench(rtmp_codec->id, sip->id, &topts, 500, &tb);
	{
		double span = (double)(bench.t_us[1] - bench.t_us[0]) / 1e6;
		double cpu = (double)(ticks1 - ticks0) / (double)hz / span; /* cores */
		double per_leg = all ? cpu * 1e6 * 0.02 / all : 0;               /* µs per 20 ms */
		double self = (tv_s(&ru1.ru_utime) + tv_s(&ru1.ru_stime) - tv_s(&ru0.ru_utime) -
			       tv_s(&ru0.ru_stime)) / span;
		bool rt = o.passthrough && round_trip.n;

		printf("RESULT legs=%u probe_legs=%u mode=%s frames_expected=%llu frames_received=%llu "
		       "loss_pct=%.3f worker_cpu_pct=%.1f cpu_us_per_leg_per_20ms=%.2f "
		       "codec_only_us_per_frame_pair=%.2f ratio=%.2f latency_p50_ms=%.2f "
		       "latency_p99_ms=%.2f driver_cpu_pct=%.1f driver_us_per_leg_per_20ms=%.2f "
		       "curve=%d\n",
		       n, n_probes, o.passthrough ? "passthrough" : "transcode",
		       (unsigned long long)expected, (unsigned long long)got,
		       expected ? 100.0 * (double)(expected - (got < expected ? got : expected)) /
					  (double)expected
				: 0,
		       cpu * 100, per_leg, tb.codec_us, tb.codec_us > 0 ? per_leg / tb.codec_us : 0,
		       rt ? delay_hist_quantile(&round_trip, 0.5) / 1000.0 : -1,
		       rt ? delay_hist_quantile(&round_trip, 0.99) / 1000.0 : -1, self * 100,
		       all ? self * 1e6 * 0.02 / all : 0, curve_enabled(curve));
	}
	probe_report(all);
	ret = 0;
out_destroy: /* what was created, so that the next run on these workers starts clean */
	run_until(nothing_pending, 5000);
	for (unsigned i = 0; i < n_legs; i++) {
		if (!legs[i].created || legs[i].destroyed)
			continue;
		destroy_leg(&legs[i]);
		if (pending >= o.inflight)
			run_until(nothing_pending, 5000);
	}
	run_until(nothing_pending, 10000);
	probe_teardown();
	return ret;
}

static void on_stats_reply(struct dispatcher *d, struct dispatcher_worker *w, int status,
			   const struct wire_msg *reply, void *arg)
{
	struct leg *l = arg;
	uint64_t in = 0, out = 0, lost = 0, authf = 0, bad = 0;

	pending--;
	if (status < 0)
		return;
	wire_get_u64(reply, WIRE_T_PKTS_IN, &in);
	wire_get_u64(reply, WIRE_T_PKTS_OUT, &out);
	wire_get_u64(reply, WIRE_T_LOST, &lost);
	wire_get_u64(reply, WIRE_T_SRTP_AUTH_FAIL, &authf);
	wire_get_u64(reply, WIRE_T_BAD_PKTS, &bad);
	printf("leg %s: rtp in %llu out %llu lost %llu srtp_auth_fail %llu bad %llu\n", l->id,
	       (unsigned long long)in, (unsigned long long)out, (unsigned long long)lost,
	       (unsigned long long)authf, (unsigned long long)bad);
}

static void print_leg_stats(struct leg *l)
{
	struct wire_builder b = {0};

	wire_builder_init(&b, WIRE_LEG_STATS, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, l->id);
	if (request(l->w, &b, on_stats_reply, l) == 0)
		run_until(nothing_pending, 3000);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: wdrive --worker CTL,MEDIA[,KEY] [--worker CTL,MEDIA[,KEY]] [--rtmp-codec speex|PCMU|PCMA]\n"
		"  [--sip-codecs PCMU/8000,...] [--remote IP:PORT] [--seconds S] [--freq HZ] [--out WAV]\n"
		"  [--srtp] [--dtmf D] [--kill-pid PID] [--pid PID] [--count N] [--inflight N]\n"
		"  [--legs N] [--probe-legs N] [--passthrough] [--late-ms MS] [--update-codec NAME/RATE]\n"
		"  tone|late|pair|failover|churn|garbage|bench\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"worker", required_argument, NULL, 'w'}, {"rtmp-codec", required_argument, NULL, 'r'},
		{"sip-codecs", required_argument, NULL, 's'}, {"remote", required_argument, NULL, 'R'},
		{"seconds", required_argument, NULL, 'S'}, {"freq", required_argument, NULL, 'f'},
		{"out", required_argument, NULL, 'o'}, {"srtp", no_argument, NULL, 'k'},
		{"dtmf", required_argument, NULL, 'd'}, {"kill-pid", required_argument, NULL, 'K'},
		{"pid", required_argument, NULL, 'p'}, {"count", required_argument, NULL, 'c'},
		{"inflight", required_argument, NULL, 'i'}, {"legs", required_argument, NULL, 'l'},
		{"passthrough", no_argument, NULL, 'P'}, {"late-ms", required_argument, NULL, 'L'},
		{"update-codec", required_argument, NULL, 'U'},
		{"probe-legs", required_argument, NULL, 'B'}, {NULL, 0, NULL, 0},
	};
	struct dispatcher_callbacks cbs = {
		.media = on_media, .event = on_event, .worker_down = on_worker_down,
	};
	char sid[32];
	int c, nw = 0, ret;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'w': if (nw < 2) o.workers[nw++] = optarg; break;
		case 'r': o.rtmp_codec = optarg; break;
		case 's': o.sip_codecs = optarg; break;
		case 'R': o.remote = optarg; break;
		case 'S': o.seconds = atof(optarg); break;
		case 'f': o.freq = (unsigned)atoi(optarg); break;
		case 'o': o.out = optarg; break;
		case 'k': o.srtp = true; break;
		case 'd': o.dtmf = optarg[0]; break;
		case 'K': o.kill_pid = atoi(optarg); break;
		case 'p': if (o.n_pid < 2) o.pid[o.n_pid++] = atoi(optarg); break;
		case 'c': o.count = (unsigned)atoi(optarg); break;
		case 'i': o.inflight = (unsigned)atoi(optarg); break;
		case 'l': o.legs = (unsigned)atoi(optarg); break;
		case 'P': o.passthrough = true; break;
		case 'L': o.late_ms = (unsigned)atoi(optarg); break;
		case 'U': o.update_codec = optarg; break;
		case 'B': o.probe_legs = (unsigned)atoi(optarg); break;
		default: usage(); return 2;
		}
	}
	if (optind >= argc || nw == 0 || !strchr(o.workers[0], ',') ||
	    (nw == 2 && !strchr(o.workers[1], ','))) {
		usage();
		return 2;
	}
	o.scenario = argv[optind];
	setvbuf(stdout, NULL, _IOLBF, 0); /* tests read progress lines while it runs */
	log_init("wdrive", getenv("WDRIVE_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_WARN);
	rtmp_codec = codec_by_name(o.rtmp_codec, strcasecmp(o.rtmp_codec, "speex") == 0 ? 16000 : 8000);
	if (!rtmp_codec || !codec_rtmp_capable(rtmp_codec)) {
		fprintf(stderr, "wdrive: unknown RTMP codec %s\n", o.rtmp_codec);
		return 2;
	}
	make_tone();
	rec = calloc(MAX_REC, sizeof(*rec));
	rec_rate = rtmp_codec->clock_rate;
	spx_dec = speex_decoder_init(&speex_wb_mode);
	speex_bits_init(&spx_bits);
	if (curve_from_env("mediaworkers", &curve) < 0)
		return 2;
	loop = evloop_new();
	snprintf(sid, sizeof(sid), "wdrive-%d", (int)getpid());
	cbs.arg = NULL;
	disp = dispatcher_new(loop, sid, &cbs, &(struct dispatcher_config){.curve = curve});
	if (!loop || !disp || !rec)
		return 1;
	for (int i = 0; i < nw; i++) {
		char ctl[256];

		/* "ctl,media[,key]" as in WORKER_ENDPOINTS */
		snprintf(ctl, sizeof(ctl), "%.*s", (int)(strchr(o.workers[i], ',') - o.workers[i]),
			 o.workers[i]);
		if (dispatcher_add_workers(disp, o.workers[i]) != 1 ||
		    !(workers[i] = dispatcher_find_endpoint(disp, ctl))) {
			fprintf(stderr, "wdrive: bad worker endpoints %s\n", o.workers[i]);
			return 2;
		}
	}
	if (!run_until(workers_ready, 5000)) {
		fprintf(stderr, "wdrive: worker(s) not answering\n");
		return 1;
	}
	if (strcmp(o.scenario, "tone") == 0)
		ret = scenario_tone();
	else if (strcmp(o.scenario, "late") == 0)
		ret = scenario_late();
	else if (strcmp(o.scenario, "pair") == 0)
		ret = scenario_pair();
	else if (strcmp(o.scenario, "failover") == 0)
		ret = scenario_failover();
	else if (strcmp(o.scenario, "churn") == 0)
		ret = scenario_churn();
	else if (strcmp(o.scenario, "garbage") == 0)
		ret = scenario_garbage();
	else if (strcmp(o.scenario, "bench") == 0)
		ret = scenario_bench();
	else {
		usage();
		ret = 2;
	}
	if (o.out && rec_n && write_wav(o.out) < 0) {
		fprintf(stderr, "wdrive: cannot write %s\n", o.out);
		ret = 1;
	}
	dispatcher_destroy(&disp);
	evloop_run_once(loop, 0);
	zsock_context_term();
	evloop_destroy(&loop);
	curve_destroy(&curve);
	live_tone_stop();
	speex_bits_destroy(&spx_bits);
	speex_decoder_destroy(spx_dec);
	free(rec);
	return ret;
}
