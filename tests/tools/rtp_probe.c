/*
 * rtp_probe.c - drives one or many rtp_leg instances from the command line, for interop tests
 * against independent peers (ffmpeg, SIPp) and for measuring the per-packet cost.
 *
 *   rtp_probe send  --to PORT [--seconds S] [--freq HZ] [--dtmf DIGITS] [SRTP] [COMMON]
 *       sends a G.711 u-law tone (20 ms frames) to 127.0.0.1:PORT
 *   rtp_probe recv  --out FILE.wav [--seconds S] [SRTP] [COMMON]
 *       prints "PORT <n>" at once, then pulls frames for S seconds and writes them to a WAV
 *       (u-law decoded; lost frames as silence); ends with a "STATS ..." line (counters of
 *       the leg, strict latching's unexpected_source and latch_changes among them)
 *   rtp_probe echo  --to PORT --out FILE.wav [--seconds S] [--freq HZ] [COMMON]
 *       sends a tone to PORT and records what comes back on the same leg (SIPp -rtp_echo)
 *   rtp_probe marks --to PORT [--seconds S] [--every-ms MS] [--ppm N] [COMMON]
 *       the far end of a delay test: G.711 u-law low noise with an audio_mark.h marker frame
 *       every MS (1000) ms, the first after MS; prints "PORT <n>", then "MARK <k> <us>" for each
 *       marker (k from 0; us: CLOCK_MONOTONIC just before its packet was sent); what comes back
 *       is pulled and dropped; ends with the STATS line. --ppm: the far end's clock runs N
 *       parts per million fast (negative: slow; |N| <= 10000), as a real peer's may
 *   rtp_probe bench --legs N [--seconds S] [--srtp] [--destroy K] [COMMON]
 *       N legs in pairs on loopback, one 20 ms tick: each leg sends a frame and pulls one;
 *       prints the CPU time per packet (send + receive + pull) and how late the ticks ran;
 *       then destroys K legs (20 by default; spread from the oldest to the newest), one every
 *       20 ms while the others run, and prints the time of each rtp_leg_destroy (p50, p90,
 *       max) and the longest the loop was held by one of those destroy callbacks
 *   rtp_probe keygen
 *       prints a random SDES key
 *
 *   SRTP:   --suite AES_CM_128_HMAC_SHA1_80|AES_CM_128_HMAC_SHA1_32 --key B64 --peer-key B64
 *   COMMON: --bind IP (127.0.0.1) --ports MIN-MAX (50000-59999) --log LEVEL
 *
 * send, recv, echo and marks tick every 20 ms on CLOCK_MONOTONIC from the start (no drift: a
 * late tick is caught up at once; marks --ppm shortens or stretches the 20 ms) and stop after
 * S * 50 ticks.
 */
#include "audio_mark.h"
#include "delay_hist.h"
#include "evloop.h"
#include "log.h"
#include "port_pool.h"
#include "rtp_leg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define FRAME 160 /* 20 ms at 8 kHz */

struct opts {
	const char *mode, *out, *bind, *key, *peer_key, *dtmf;
	enum rtp_leg_srtp_suite suite;
	unsigned to, seconds, freq, legs, pmin, pmax, every_ms, destroy;
	int ppm;
	bool srtp;
};

struct probe {
	struct opts o;
	struct evloop *loop;
	struct port_pool *pool;
	struct rtp_leg *leg;
	struct ev_timer *tick;
	FILE *wav;
	uint32_t wav_samples;
	double phase;
	unsigned ticks, max_ticks;
	uint64_t frames, lost, nothing;
	unsigned dtmf_idx;
	uint64_t start_us; /* the ticks' origin: tick n is due at start_us + n * 20 ms (+ ppm) */
	uint32_t noise;	   /* xorshift32 state of the marks mode's noise */
	unsigned marks;
};

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---------------------------------------------------------------- G.711 u-law */

static uint8_t ulaw_encode(int16_t pcm)
{
	int sign = pcm < 0 ? 0x80 : 0;
	int v = pcm < 0 ? -(int)pcm : pcm;
	int exp = 7;

	if (v > 32635)
		v = 32635;
	v += 0x84;
	for (int mask = 0x4000; !(v & mask) && exp > 0; mask >>= 1)
		exp--;
	return (uint8_t) ~(sign | exp << 4 | ((v >> (exp + 3)) & 0x0f));
}

static int16_t ulaw_decode(uint8_t u)
{
	int t;

	u = (uint8_t)~u;
	t = ((u & 0x0f) << 3) + 0x84;
	t <<= (u & 0x70) >> 4;
	return (int16_t)((u & 0x80) ? 0x84 - t : t - 0x84);
}

/* ---------------------------------------------------------------- WAV */

static void put_le(FILE *f, uint32_t v, int n)
{
	for (int i = 0; i < n; i++)
		fputc((int)(v >> (8 * i)) & 0xff, f);
}

static void wav_header(FILE *f, uint32_t samples)
{
	fseek(f, 0, SEEK_SET);
	fwrite("RIFF", 1, 4, f);
	put_le(f, 36 + samples * 2, 4);
	fwrite("WAVEfmt ", 1, 8, f);
	put_le(f, 16, 4);
	put_le(f, 1, 2); /* PCM */
	put_le(f, 1, 2); /* mono */
	put_le(f, 8000, 4);
	put_le(f, 16000, 4);
	put_le(f, 2, 2);
	put_le(f, 16, 2);
	fwrite("data", 1, 4, f);
	put_le(f, samples * 2, 4);
}

static void wav_write(struct probe *p, const uint8_t *ulaw, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_le(p->wav, (uint16_t)ulaw_decode(ulaw ? ulaw[i] : 0xff), 2);
	p->wav_samples += (uint32_t)n;
}

/* ---------------------------------------------------------------- modes */

static void tone_frame(struct probe *p, uint8_t *out)
{
	for (int i = 0; i < FRAME; i++) {
		out[i] = ulaw_encode((int16_t)(12000.0 * sin(p->phase)));
		p->phase += 2.0 * M_PI * p->o.freq / 8000.0;
		if (p->phase > 2.0 * M_PI)
			p->phase -= 2.0 * M_PI;
	}
}

/* The marks mode's frame: low noise, or the next marker every every_ms; sent and, for a
 * marker, printed with the time just before the send. */
static void marks_frame(struct probe *p)
{
	int16_t pcm[FRAME];
	uint8_t frame[FRAME];
	unsigned every = p->o.every_ms / 20;
	bool mark = p->ticks % every == every - 1;
	uint64_t t;

	if (mark) {
		audio_mark_frame(pcm, (uint16_t)p->marks);
	} else {
		for (int i = 0; i < FRAME; i++) {
			p->noise ^= p->noise << 13;
			p->noise ^= p->noise >> 17;
			p->noise ^= p->noise << 5;
			pcm[i] = (int16_t)((int)(p->noise % (2 * AUDIO_MARK_NOISE + 1)) -
					   AUDIO_MARK_NOISE);
		}
	}
	for (int i = 0; i < FRAME; i++)
		frame[i] = ulaw_encode(pcm[i]);
	t = mono_us();
	rtp_leg_send(p->leg, frame, sizeof(frame), FRAME);
	if (mark) {
		printf("MARK %u %llu\n", p->marks++, (unsigned long long)t);
		fflush(stdout);
	}
}

static void on_tick(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct probe *p = arg;
	uint8_t frame[FRAME], out[1500];
	size_t len = sizeof(out);
	bool lost, pulls = strcmp(p->o.mode, "send") != 0;
	uint64_t now, due;

	if (!strcmp(p->o.mode, "send") || !strcmp(p->o.mode, "echo")) {
		tone_frame(p, frame);
		rtp_leg_send(p->leg, frame, sizeof(frame), FRAME);
		if (p->o.dtmf && p->o.dtmf[p->dtmf_idx] && p->ticks % 25 == 10)
			rtp_leg_send_dtmf(p->leg, p->o.dtmf[p->dtmf_idx++], 150);
	} else if (!strcmp(p->o.mode, "marks")) {
		marks_frame(p);
	}
	if (pulls) {
		rtp_leg_pull(p->leg, out, &len, &lost);
		if (len) {
			p->frames++;
			if (p->wav)
				wav_write(p, out, len);
		} else if (lost) {
			p->lost++;
			if (p->wav)
				wav_write(p, NULL, FRAME);
		} else {
			p->nothing++;
		}
	}
	if (++p->ticks >= p->max_ticks) {
		evloop_stop(loop);
		return;
	}
	due = p->start_us + (uint64_t)llround(p->ticks * 20000.0 * (1.0 - p->o.ppm / 1e6));
	now = mono_us();
	evloop_timer_start(t, due > now ? (due - now + 999) / 1000 : 0);
}

static void on_dtmf(struct rtp_leg *leg, char digit, unsigned ms, void *arg)
{
	(void)leg, (void)arg;
	printf("DTMF %c %u\n", digit, ms);
	fflush(stdout);
}

static int run_single(struct probe *p)
{
	struct rtp_leg_params lp;
	struct rtp_leg_stats st;

	rtp_leg_params_init(&lp);
	lp.loop = p->loop;
	lp.pool = p->pool;
	lp.sid = p->o.mode;
	lp.bind_ip = p->o.bind;
	lp.rtcp_interval_ms = 1000;
	lp.cb.on_dtmf = on_dtmf;
	if (p->o.to) {
		lp.remote_ip = "127.0.0.1";
		lp.remote_port = (uint16_t)p->o.to;
	}
	lp.srtp_suite = p->o.suite;
	lp.local_key = p->o.key;
	lp.remote_key = p->o.peer_key;
	p->leg = rtp_leg_new(&lp);
	if (!p->leg) {
		fprintf(stderr, "rtp_probe: rtp_leg_new: %s\n", strerror(errno));
		return 1;
	}
	printf("PORT %u\n", rtp_leg_local_port(p->leg));
	fflush(stdout);
	if (p->o.out) {
		p->wav = fopen(p->o.out, "wb");
		if (!p->wav) {
			perror(p->o.out);
			rtp_leg_destroy(&p->leg);
			return 1;
		}
		wav_header(p->wav, 0);
	}
	p->max_ticks = p->o.seconds * 50;
	p->noise = 0x9e3779b9u;
	p->start_us = mono_us() + 20000;
	p->ticks = 0;
	p->tick = evloop_timer_new(p->loop, on_tick, p);
	evloop_timer_start(p->tick, 20);
	evloop_run(p->loop);
	rtp_leg_get_stats(p->leg, &st);
	printf("STATS sent=%llu received=%llu frames=%llu lost=%llu nothing=%llu auth_fail=%llu "
	       "bad=%llu unknown_pt=%llu rtcp_sent=%llu rtcp_received=%llu jitter_ms=%u "
	       "unexpected_source=%llu latch_changes=%llu\n",
	       (unsigned long long)st.packets_sent, (unsigned long long)st.packets_received,
	       (unsigned long long)p->frames, (unsigned long long)p->lost,
	       (unsigned long long)p->nothing, (unsigned long long)st.srtp_auth_failures,
	       (unsigned long long)st.bad_packets, (unsigned long long)st.unknown_pt,
	       (unsigned long long)st.rtcp_sent, (unsigned long long)st.rtcp_received,
	       st.jitter_ms, (unsigned long long)st.unexpected_source,
	       (unsigned long long)st.latch_changes);
	if (p->wav) {
		wav_header(p->wav, p->wav_samples);
		fclose(p->wav);
	}
	evloop_timer_del(&p->tick);
	rtp_leg_destroy(&p->leg);
	return 0;
}

/* ---------------------------------------------------------------- bench */

struct bench {
	struct rtp_leg **legs; /* NULL: destroyed in the destroy phase */
	unsigned n;
	uint64_t next_us, late_sum_us, late_max_us, ticks;
	uint64_t pulled;
	unsigned destroy_left, destroy_k, destroy_i; /* the destroy phase */
	struct delay_hist destroy_us;		     /* each rtp_leg_destroy */
	uint64_t stall_max_us;			     /* the longest destroy callback */
};

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void on_bench_tick(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct bench *b = arg;
	uint64_t now = mono_us(), late = now > b->next_us ? now - b->next_us : 0;
	uint8_t frame[FRAME], out[1500];

	(void)loop;
	memset(frame, 0x55, sizeof(frame));
	b->late_sum_us += late;
	if (late > b->late_max_us)
		b->late_max_us = late;
	b->ticks++;
	for (unsigned i = 0; i < b->n; i++) {
		size_t len = sizeof(out);
		bool lost;

		if (!b->legs[i])
			continue;
		rtp_leg_send(b->legs[i], frame, sizeof(frame), FRAME);
		rtp_leg_pull(b->legs[i], out, &len, &lost);
		b->pulled += len != 0;
	}
	b->next_us += 20000;
	now = mono_us();
	evloop_timer_start(t, b->next_us > now ? (b->next_us - now + 999) / 1000 : 0);
}

/* One leg of the destroy phase: the i-th of K, spread over the legs' creation order. */
static void on_bench_destroy(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct bench *b = arg;
	uint64_t t0 = mono_us(), t1;
	unsigned idx = (unsigned)((uint64_t)b->destroy_i++ * b->n / b->destroy_k);

	(void)loop;
	rtp_leg_destroy(&b->legs[idx]);
	t1 = mono_us();
	delay_hist_add(&b->destroy_us, t1 - t0);
	if (t1 - t0 > b->stall_max_us)
		b->stall_max_us = t1 - t0;
	if (--b->destroy_left)
		evloop_timer_start(t, 20);
}

/* Destroys o.destroy legs, one every 20 ms, while the others run; prints their times. */
static int bench_destroy_phase(struct probe *p, struct bench *b)
{
	struct ev_timer *t;
	unsigned live = b->n;

	b->destroy_k = b->destroy_left = p->o.destroy < b->n / 2 ? p->o.destroy : b->n / 2;
	if (!b->destroy_k)
		return 0;
	t = evloop_timer_new(p->loop, on_bench_destroy, b);
	if (!t)
		return 1;
	evloop_timer_start(t, 10); /* between two ticks */
	while (b->destroy_left)
		evloop_run_once(p->loop, 10);
	evloop_timer_del(&t);
	printf("DESTROY legs=%u srtp=%d n=%u p50_us=%llu p90_us=%llu max_us=%llu "
	       "stall_max_ms=%.2f\n",
	       live, p->o.srtp, b->destroy_k,
	       (unsigned long long)delay_hist_quantile(&b->destroy_us, 0.5),
	       (unsigned long long)delay_hist_quantile(&b->destroy_us, 0.9),
	       (unsigned long long)b->destroy_us.max, b->stall_max_us / 1000.0);
	return 0;
}

static int run_bench(struct probe *p)
{
	struct bench b = {0};
	struct rtp_leg_params lp;
	struct rtp_leg_stats st;
	uint64_t sent = 0, recv = 0, auth = 0, t0;
	double c0, c1, wall;
	char ka[RTP_LEG_KEY_B64_LEN + 1], kb[RTP_LEG_KEY_B64_LEN + 1];
	int rc = 0;

	b.n = p->o.legs & ~1u;
	b.legs = calloc(b.n, sizeof(*b.legs));
	if (!b.legs || !b.n || rtp_leg_srtp_key_generate(ka) || rtp_leg_srtp_key_generate(kb))
		return 1;
	rtp_leg_params_init(&lp);
	lp.loop = p->loop;
	lp.pool = p->pool;
	lp.bind_ip = p->o.bind;
	lp.sid = "bench";
	t0 = mono_us();
	for (unsigned i = 0; i < b.n; i += 2) {
		lp.srtp_suite =
		    p->o.srtp ? RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80 : RTP_LEG_SRTP_NONE;
		lp.local_key = ka;
		lp.remote_key = kb;
		lp.remote_ip = NULL;
		lp.remote_port = 0;
		b.legs[i] = rtp_leg_new(&lp);
		lp.local_key = kb;
		lp.remote_key = ka;
		lp.remote_ip = "127.0.0.1";
		lp.remote_port = b.legs[i] ? rtp_leg_local_port(b.legs[i]) : 9;
		b.legs[i + 1] = rtp_leg_new(&lp);
		if (!b.legs[i] || !b.legs[i + 1]) {
			fprintf(stderr, "rtp_probe: leg %u: %s\n", i, strerror(errno));
			b.n = i + (b.legs[i] ? 1 : 0);
			rc = 1;
			goto out;
		}
		rtp_leg_set_remote(b.legs[i], "127.0.0.1", rtp_leg_local_port(b.legs[i + 1]), 0);
	}
	printf("created %u legs in %.1f ms (%.1f us each)\n", b.n, (mono_us() - t0) / 1000.0,
	       (double)(mono_us() - t0) / b.n);
	p->tick = evloop_timer_new(p->loop, on_bench_tick, &b);
	/* one second of warm-up, then measure */
	b.next_us = mono_us() + 20000;
	evloop_timer_start(p->tick, 20);
	for (uint64_t end = mono_us() + 1000000; mono_us() < end;)
		evloop_run_once(p->loop, 10);
	for (unsigned i = 0; i < b.n; i++) {
		rtp_leg_get_stats(b.legs[i], &st);
		sent -= st.packets_sent;
		recv -= st.packets_received;
	}
	b.late_sum_us = b.late_max_us = b.ticks = b.pulled = 0;
	c0 = cpu_s();
	t0 = mono_us();
	for (uint64_t end = t0 + (uint64_t)p->o.seconds * 1000000u; mono_us() < end;)
		evloop_run_once(p->loop, 10);
	c1 = cpu_s();
	wall = (mono_us() - t0) / 1e6;
	for (unsigned i = 0; i < b.n; i++) {
		rtp_leg_get_stats(b.legs[i], &st);
		sent += st.packets_sent;
		recv += st.packets_received;
		auth += st.srtp_auth_failures;
	}
	printf("BENCH legs=%u srtp=%d seconds=%.1f cpu_s=%.3f cpu_pct=%.1f sent=%llu received=%llu "
	       "pulled=%llu auth_fail=%llu us_per_packet=%.2f us_per_leg_tick=%.2f "
	       "tick_late_avg_ms=%.2f tick_late_max_ms=%.2f\n",
	       b.n, p->o.srtp, wall, c1 - c0, 100.0 * (c1 - c0) / wall, (unsigned long long)sent,
	       (unsigned long long)recv, (unsigned long long)b.pulled, (unsigned long long)auth,
	       (c1 - c0) * 1e6 / (double)(sent + recv ? sent + recv : 1),
	       (c1 - c0) * 1e6 / (double)(b.ticks * b.n > 0 ? b.ticks * b.n : 1),
	       b.ticks ? b.late_sum_us / 1000.0 / b.ticks : 0.0, b.late_max_us / 1000.0);
	fflush(stdout);
	rc = bench_destroy_phase(p, &b);
	t0 = mono_us();
out:
	for (unsigned i = 0; i < b.n; i++)
		rtp_leg_destroy(&b.legs[i]);
	printf("destroyed in %.1f ms\n", (mono_us() - t0) / 1000.0);
	evloop_timer_del(&p->tick);
	free(b.legs);
	return rc;
}

/* ---------------------------------------------------------------- main */

static int parse(int argc, char **argv, struct opts *o)
{
	if (argc < 2)
		return -1;
	*o = (struct opts){.mode = argv[1],
			   .bind = "127.0.0.1",
			   .seconds = 3,
			   .freq = 1000,
			   .every_ms = 1000,
			   .legs = 100,
			   .destroy = 20,
			   .pmin = 50000,
			   .pmax = 59999};
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--srtp")) {
			o->srtp = true;
			continue;
		}
		if (!v)
			return -1;
		i++;
		if (!strcmp(a, "--to"))
			o->to = (unsigned)atoi(v);
		else if (!strcmp(a, "--seconds"))
			o->seconds = (unsigned)atoi(v);
		else if (!strcmp(a, "--freq"))
			o->freq = (unsigned)atoi(v);
		else if (!strcmp(a, "--ppm") && abs(atoi(v)) <= 10000)
			o->ppm = atoi(v);
		else if (!strcmp(a, "--every-ms") && atoi(v) >= 100 && atoi(v) <= 60000)
			o->every_ms = (unsigned)atoi(v) / 20 * 20;
		else if (!strcmp(a, "--legs"))
			o->legs = (unsigned)atoi(v);
		else if (!strcmp(a, "--destroy"))
			o->destroy = (unsigned)atoi(v);
		else if (!strcmp(a, "--out"))
			o->out = v;
		else if (!strcmp(a, "--bind"))
			o->bind = v;
		else if (!strcmp(a, "--key"))
			o->key = v;
		else if (!strcmp(a, "--peer-key"))
			o->peer_key = v;
		else if (!strcmp(a, "--dtmf"))
			o->dtmf = v;
		else if (!strcmp(a, "--log"))
			log_init("rtp_probe", log_level_parse(v) < 0
						  ? LOG_LVL_WARN
						  : (enum log_level)log_level_parse(v));
		else if (!strcmp(a, "--ports") && sscanf(v, "%u-%u", &o->pmin, &o->pmax) == 2)
			continue;
		else if (!strcmp(a, "--suite") && !strcmp(v, "AES_CM_128_HMAC_SHA1_80"))
			o->suite = RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80;
		else if (!strcmp(a, "--suite") && !strcmp(v, "AES_CM_128_HMAC_SHA1_32"))
			o->suite = RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_32;
		else
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct probe p = {0};
	int rc;

	log_init("rtp_probe", LOG_LVL_WARN);
	if (parse(argc, argv, &p.o) < 0) {
		fprintf(stderr, "usage: rtp_probe send|recv|echo|marks|bench|keygen [options] (see "
				"the source)\n");
		return 2;
	}
	if (!strcmp(p.o.mode, "keygen")) {
		char k[RTP_LEG_KEY_B64_LEN + 1];

		if (rtp_leg_srtp_key_generate(k))
			return 1;
		printf("%s\n", k);
		return 0;
	}
	p.loop = evloop_new();
	p.pool = port_pool_new((uint16_t)p.o.pmin, (uint16_t)p.o.pmax);
	if (!p.loop || !p.pool) {
		fprintf(stderr, "rtp_probe: setup failed\n");
		return 1;
	}
	if (!strcmp(p.o.mode, "bench"))
		rc = run_bench(&p);
	else if (!strcmp(p.o.mode, "send") || !strcmp(p.o.mode, "recv") ||
		 !strcmp(p.o.mode, "echo") || !strcmp(p.o.mode, "marks"))
		rc = run_single(&p);
	else
		rc = 2;
	port_pool_destroy(&p.pool);
	evloop_destroy(&p.loop);
	rtp_leg_global_cleanup();
	return rc;
}
