/*
 * callbench_hold.c - callbench's hold mode: --calls calls held with audio both ways at 20 ms
 * pacing (callbench.c describes the threads, the window and the output).
 */
#include "callbench.h"

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
	double last_rx_t;	   /* reader only: when the last frame came (0: none yet) */
	atomic_ulong gaps, max_gap_us; /* pauses > GAP_S between received frames, the longest */
	struct e2e_call *e2e; /* --e2e: its media side (owned by callbench_e2e.c), else NULL */
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
	uint32_t e2e_frames; /* --e2e: frames tracked per call */
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
	if (o->e2e) {
		cl->e2e = e2e_call_new(cl->index, hrun.e2e_frames, cl->c.uri_user,
				       sizeof(cl->c.uri_user));
		if (!cl->e2e) {
			snprintf(why, sizeof(why), "e2e: no UDP socket");
			goto out_close;
		}
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
		    ((unsigned char)pkt->m_body[0] >> 4) == hrun.tone.codec_nibble) {
			double t = now_s();

			if (cl->last_rx_t > 0 && t - cl->last_rx_t > GAP_S) {
				unsigned long us = (unsigned long)((t - cl->last_rx_t) * 1e6);

				atomic_fetch_add(&cl->gaps, 1);
				if (us > atomic_load(&cl->max_gap_us))
					atomic_store(&cl->max_gap_us, us);
			}
			cl->last_rx_t = t;
			atomic_fetch_add(&cl->rx, 1);
			if (cl->e2e)
				e2e_frame_in(cl->e2e, (const uint8_t *)pkt->m_body,
					     pkt->m_nBodySize, pkt->m_nTimeStamp);
		} else
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
	if (cl->e2e)
		e2e_frame_out(cl->e2e, (uint8_t *)buf + RTMP_MAX_HEADER_SIZE, fr->len);
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

/* Prints a PROGRESS line per call and the PROGRESS_END line (--progress), flushed. */
static void hold_progress(void)
{
	double t = now_s() - hrun.t0;

	for (int i = 0; i < hrun.n; i++) {
		struct call *cl = &hrun.calls[i];
		bool live = atomic_load(&cl->live), dead = atomic_load(&cl->dead);
		long long bytes_in = 0, bytes_acked = 0, window = 0;

		if (live) { /* the connection stays allocated until the end of the run */
			pthread_mutex_lock(&cl->c.lock);
			if (cl->c.r) {
				bytes_in = (long long)(unsigned)cl->c.r->m_nBytesIn;
				bytes_acked = (long long)(unsigned)cl->c.r->m_nBytesInSent;
				window = cl->c.r->m_nClientBW;
			}
			pthread_mutex_unlock(&cl->c.lock);
		}
		printf("PROGRESS t=%.1f call=%d up=%d dead=%d byed=%d tx=%lu rx=%lu bytes_in=%lld "
		       "bytes_acked=%lld window=%lld gaps=%lu max_gap_ms=%.1f\n",
		       t, i, live && !dead, dead, (int)atomic_load(&cl->byed), atomic_load(&cl->tx),
		       atomic_load(&cl->rx), bytes_in, bytes_acked, window, atomic_load(&cl->gaps),
		       (double)atomic_load(&cl->max_gap_us) / 1000);
	}
	printf("PROGRESS_END t=%.1f calls=%d\n", t, hrun.n);
	fflush(stdout);
}

/* SIGTERM or SIGINT: the hold ends early (its window is cut short, the calls hung up). */
static volatile sig_atomic_t hold_stop;

static void hold_on_signal(int sig)
{
	(void)sig;
	hold_stop = 1;
}

/* Sleeps @s seconds, or until SIGTERM/SIGINT; with --progress, prints the progress every
 * o->progress seconds of the run meanwhile (counted from the ramp's start). */
static void hold_sleep(const struct options *o, double s)
{
	double end = now_s() + s, next = INFINITY;

	if (o->progress > 0)
		next = hrun.t0 + (floor((now_s() - hrun.t0) / o->progress) + 1) * o->progress;
	while (!hold_stop && now_s() < end) {
		double until = fmin(fmin(end, next), now_s() + 0.2);

		sleep_until(until);
		if (o->progress > 0 && now_s() >= next && now_s() < end) {
			hold_progress();
			next += o->progress;
		}
	}
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
		if (cl->e2e && up)
			e2e_window(cl->e2e, end == 0);
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

int run_hold(const struct options *o)
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
	hrun.e2e_frames = (uint32_t)((o->calls / o->ramp + o->settle + o->seconds + 10) * 50);
	if (o->e2e && e2e_start(o->calls, strcmp(o->codec, "pcmu") == 0) < 0) {
		fprintf(stderr, "callbench: cannot start the e2e RTP thread\n");
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
	signal(SIGTERM, hold_on_signal);
	signal(SIGINT, hold_on_signal);
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
		hold_sleep(o, o->settle);
	hold_snapshot(&w, 0);
	atomic_store(&hrun.late_max_us, 0);
	atomic_store(&hrun.ticks_skipped, 0);
	cpu_sample(o, &w.c0);
	if (up)
		hold_sleep(o, o->seconds);
	cpu_sample(o, &w.c1);
	if (o->progress > 0)
		hold_progress();
	hold_snapshot(&w, 1);
	atomic_store(&hrun.stop_sender, true);
	pthread_join(sender, NULL);
	if (o->e2e && up) /* the window's last frames on their way */
		sleep_s(E2E_DRAIN_S);
	if (!o->no_call)
		bye_failed = hold_bye_all(o);
	hold_report(o, &w, bye_failed);
	if (atomic_load(&hrun.connect_failed) > 0)
		status = 1;
out_reader:
	atomic_store(&hrun.stop_reader, true);
	pthread_join(reader, NULL);
	if (o->e2e) {
		int n_up = 0;

		e2e_stop();
		for (int i = 0; i < hrun.n; i++)
			n_up += atomic_load(&hrun.calls[i].live);
		e2e_report(n_up);
	}
out_free:
	if (hrun.calls) {
		for (int i = 0; i < hrun.n; i++) {
			conn_close(&hrun.calls[i].c);
			pthread_mutex_destroy(&hrun.calls[i].c.lock);
		}
	}
	free(hrun.calls);
	e2e_free();
	for (int k = 0; k < 2; k++) {
		free(w.tx[k]);
		free(w.rx[k]);
	}
	return status;
}

