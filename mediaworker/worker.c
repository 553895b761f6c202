/*
 * worker.c - the mediaworker's legs.
 *
 *   signaler --CREATE_LEG--> leg = rtp_leg (RTP/SRTP socket) + transcoder, state -> Redis
 *   signaler --MEDIA (RTMP audio frame)--> transcoder_rtmp_to_sip --> rtp_leg_send
 *   RTP frame on arrival (in order, rtp_leg.h) --> transcoder_sip_to_rtmp / conceal --> MEDIA
 *                                                  --> owning signaler (batched per iteration)
 *   DTMF / RTP timeout / failure --> EVENT --> owning signaler
 *   signaler --ADOPT_LEG--> state <- Redis --> leg rebuilt with the same SSRC, keys and a
 *                                              sequence/timestamp continuing past the last sent
 *
 * A Speex RTMP stream keeps one decoder on a leg (transcode.h): until the answer gives the leg
 * its remote and its SIP codec, a leg that does not decode the stream yet keeps a decoder following
 * it, and an UPDATE_LEG that changes the codec hands the old transcoder's codec states over.
 *
 * A leg's state is written to Redis whole (one transaction) when it is created or changed and
 * then every state_interval_ms, so an adopting worker continues the stream; the worker's own
 * record is refreshed every second. Every write is asynchronous: media never waits for Redis,
 * and when Redis comes back after an outage everything is written again.
 */
#include "worker_int.h"

#include "evloop.h"
#include "port_pool.h"
#include "redis.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Configuration. */

/*
 * The endpoint @bound ("tcp://HOST:PORT", as ZeroMQ reports it) with @host in place of HOST
 * (bracketed when it is an IPv6 address), into @out; @bound itself when @host is "".
 */
static void advertised_endpoint(char *out, size_t size, const char *bound, const char *host)
{
	const char *port = strrchr(bound, ':');

	if (!host[0] || !port || strncmp(bound, "tcp://", 6) != 0) {
		snprintf(out, size, "%s", bound);
		return;
	}
	snprintf(out, size, strchr(host, ':') ? "tcp://[%s]%s" : "tcp://%s%s", host, port);
}

/* Leg table. */

struct leg *worker_leg_find(struct worker *w, const char *id)
{
	return strmap_get(w->by_id, id);
}

/* True when the leg decodes or encodes audio (a video leg never does). */
static bool leg_transcodes(const struct leg *l)
{
	return l->tc && !transcoder_is_passthrough(l->tc);
}

/* Adds @l to the worker's legs. 0 or -ENOMEM (nothing changed). */
static int leg_link(struct worker *w, struct leg *l)
{
	if (strmap_put(w->by_id, l->id, l) < 0)
		return -ENOMEM;
	l->prev = NULL;
	l->next = w->legs;
	if (w->legs)
		w->legs->prev = l;
	w->legs = l;
	w->n_legs++;
	if (leg_transcodes(l))
		w->n_transcoding++;
	return 0;
}

static void leg_unlink(struct worker *w, struct leg *l)
{
	if (strmap_get(w->by_id, l->id) == l)
		strmap_del(w->by_id, l->id);
	if (l->prev)
		l->prev->next = l->next;
	else
		w->legs = l->next;
	if (l->next)
		l->next->prev = l->prev;
	w->n_legs--;
	if (leg_transcodes(l))
		w->n_transcoding--;
}

/* Redis state. */

static void write_done(int err, const char *errmsg, void *arg)
{
	if (err && err != -ENOTCONN && err != -ECANCELED)
		log_warn(arg ? (const char *)arg : NULL, "redis: leg state not written: %s",
			 errmsg ? errmsg : strerror(-err));
}

static void leg_record_fill(const struct leg *l, struct leg_record *rec)
{
	struct rtp_leg_state st;

	rtp_leg_get_state(l->rtp, &st);
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->leg_id, sizeof(rec->leg_id), "%s", l->id);
	snprintf(rec->call_id, sizeof(rec->call_id), "%s", l->call_id);
	snprintf(rec->owner, sizeof(rec->owner), "%s", l->owner);
	snprintf(rec->worker, sizeof(rec->worker), "%s", l->w->worker_id);
	snprintf(rec->rtmp_codec, sizeof(rec->rtmp_codec), "%s", l->rtmp_codec->name);
	snprintf(rec->rtmp_out, sizeof(rec->rtmp_out), "%s", l->rtmp_out ? l->rtmp_out->name : "");
	rec->rtmp_rate = l->rtmp_rate;
	rec->rtmp_channels = (uint8_t)(l->rtmp_channels <= 2 ? l->rtmp_channels : 2);
	snprintf(rec->sip_fmtp, sizeof(rec->sip_fmtp), "%s", l->sip_fmtp);
	rec->sip_pt = (uint8_t)l->sip_pt;
	snprintf(rec->sip_codec, sizeof(rec->sip_codec), "%s", l->sip_codec->name);
	rec->sip_rate = l->sip_codec->clock_rate;
	rec->dtmf_pt = (int16_t)l->dtmf_pt;
	snprintf(rec->remote_ip, sizeof(rec->remote_ip), "%.*s", (int)sizeof(rec->remote_ip) - 1, st.remote_ip);
	rec->remote_port = st.remote_port;
	rec->local_port = rtp_leg_local_port(l->rtp);
	rec->ssrc = st.ssrc;
	rec->seq = st.next_seq;
	rec->timestamp = st.next_ts;
	if (l->srtp != RTP_LEG_SRTP_NONE) {
		snprintf(rec->srtp_suite, sizeof(rec->srtp_suite), "%s",
			 l->srtp == RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_32 ? "AES_CM_128_HMAC_SHA1_32"
									: "AES_CM_128_HMAC_SHA1_80");
		snprintf(rec->srtp_local_key, sizeof(rec->srtp_local_key), "%s", l->local_key);
		snprintf(rec->srtp_remote_key, sizeof(rec->srtp_remote_key), "%s", l->remote_key);
		rec->srtp_roc = st.send_roc;
	}
	rec->hold = l->hold;
	rec->created_ms = l->created_ms;
}

static void leg_store(struct leg *l)
{
	struct leg_record rec;
	int err;

	if (!l->w->redis || !redis_is_up(l->w->redis))
		return;
	leg_record_fill(l, &rec);
	err = state_leg_write(l->w->redis, &rec, l->w->cfg.leg_ttl_s, write_done, NULL);
	if (err < 0 && err != -ENOTCONN)
		log_warn(l->id, "redis: leg state not queued: %s", strerror(-err));
}

static void worker_store(struct worker *w)
{
	struct worker_record rec = {0};

	if (!w->redis || !redis_is_up(w->redis))
		return;
	snprintf(rec.worker_id, sizeof(rec.worker_id), "%s", w->worker_id);
	snprintf(rec.instance_id, sizeof(rec.instance_id), "%016" PRIx64,
		 ctl_server_instance_id(w->ctl));
	rec.pid = (uint32_t)getpid();
	snprintf(rec.host, sizeof(rec.host), "%s", w->host);
	snprintf(rec.ctl_endpoint, sizeof(rec.ctl_endpoint), "%s", w->ctl_ep);
	snprintf(rec.media_endpoint, sizeof(rec.media_endpoint), "%s", w->media_ep);
	rec.legs = w->n_legs;
	rec.cpu = w->cpu_permille;
	rec.draining = w->draining;
	rec.started_ms = w->started_ms;
	if (curve_enabled(w->cfg.curve))
		snprintf(rec.curve_key, sizeof(rec.curve_key), "%s", curve_public_key(w->cfg.curve));
	state_worker_write(w->redis, &rec, STATE_WORKER_TTL_S, write_done, NULL);
}

static void on_redis_up(struct redis *r, void *arg)
{
	struct worker *w = arg;

	/* Redis may have lost everything (restart without persistence): write it all again. */
	log_info(NULL, "redis up: rewriting the worker record and %u legs", w->n_legs);
	worker_store(w);
	for (struct leg *l = w->legs; l; l = l->next)
		leg_store(l);
}

static void on_redis_down(struct redis *r, void *arg)
{
	log_warn(NULL, "redis down: media goes on, state is rewritten when it is back");
}

/* Events toward the owning signaler. */

static void send_event(struct leg *l, uint8_t kind, char digit, unsigned duration_ms,
		       const char *reason)
{
	struct wire_builder b = {0};

	wire_builder_init(&b, WIRE_EVENT, 0);
	wire_put_str(&b, WIRE_T_LEG_ID, l->id);
	wire_put_u8(&b, WIRE_T_EVENT_KIND, kind);
	if (kind == WIRE_EV_DTMF) {
		wire_put_u8(&b, WIRE_T_DIGIT, (uint8_t)digit);
		wire_put_u16(&b, WIRE_T_DURATION_MS, (uint16_t)(duration_ms > 65535 ? 65535 : duration_ms));
	}
	if (reason)
		wire_put_str(&b, WIRE_T_REASON, reason);
	if (ctl_server_send_event(l->w->ctl, l->owner, &b) < 0)
		log_warn(l->id, "event %u not delivered to %s", kind, l->owner);
	wire_builder_free(&b);
}

static void on_dtmf(struct rtp_leg *rtp, char digit, unsigned duration_ms, void *arg)
{
	struct leg *l = arg;

	log_info(l->id, "DTMF '%c' received (%u ms)", digit, duration_ms);
	send_event(l, WIRE_EV_DTMF, digit, duration_ms, NULL);
}

static void on_rtp_timeout(struct rtp_leg *rtp, void *arg)
{
	struct leg *l = arg;

	log_info(l->id, "no RTP for %u s", l->w->cfg.rtp_timeout_ms / 1000);
	send_event(l, WIRE_EV_RTP_TIMEOUT, 0, 0, NULL);
}

static void on_rtp_failure(struct rtp_leg *rtp, int err, void *arg)
{
	struct leg *l = arg;
	char reason[96];

	snprintf(reason, sizeof(reason), "RTP leg failed: %s", strerror(-err));
	log_warn(l->id, "%s", reason);
	send_event(l, WIRE_EV_LEG_FAILED, 0, 0, reason);
}

/* Keys: the wire carries raw key+salt bytes, rtp_leg and Redis base64 (SDES inline form). */

/*
 * The RTMP timestamp of the peer's frame with RTP timestamp @ts at loop time @now. The RTMP
 * timeline follows the RTP clock, so a player hears the peer's own timing (pauses included):
 * anchored on the loop clock at the first frame, and anchored again when the RTP clock jumps
 * (a restarted stream, another codec, a peer's clock step: backwards, or further ahead than
 * the loop time elapsed since the last frame plus one second). Never decreasing.
 */
uint32_t worker_rtmp_time(struct leg *l, uint32_t ts, uint64_t now)
{
	uint32_t elapsed = (uint32_t)(now - l->start_mono);
	uint32_t khz = l->sip_codec->clock_rate / 1000u;
	int32_t d = (int32_t)(ts - l->rtp_ts_last);
	uint32_t t;

	if (!khz)
		khz = 8;
	if (l->out_started && d >= 0 &&
	    (uint32_t)d / khz <= (uint32_t)(now - l->rtp_wall_last) + 1000u) {
		l->rtp_ts_frac += (uint32_t)d;
		t = l->rtp_anchor + l->rtp_ts_frac / khz;
	} else {
		/* the first frame, or a jump: the loop clock, and never behind what was sent */
		t = l->out_started && (int32_t)(l->out_ts - elapsed) > 0 ? l->out_ts : elapsed;
		l->rtp_anchor = t;
		l->rtp_ts_frac = 0;
		l->out_started = true;
	}
	if ((int32_t)(t - l->out_ts) < 0)
		t = l->out_ts;
	l->rtp_ts_last = ts;
	l->rtp_wall_last = now;
	return t;
}

/*
 * RTP -> RTMP: the peer's next frame in order, on arrival (rtp_leg.h): passed on or decoded,
 * concealed when lost, and queued toward the owning signaler in this loop iteration's batch.
 */
static void on_rtp_frame(struct rtp_leg *rtp, const uint8_t *payload, size_t len, uint32_t ts,
			 bool lost, void *arg)
{
	struct leg *l = arg;
	struct worker *w = l->w;
	struct tc_out *out = &w->out;
	uint32_t t;
	int err;

	(void)rtp;
	err = lost ? transcoder_conceal(l->tc, payload, len, out)
		   : transcoder_sip_to_rtmp(l->tc, payload, len, out);
	if (err < 0) {
		if (l->media_errors++ % 100 == 0)
			log_warn(l->id, "RTP payload not usable: %s", transcoder_error(l->tc));
		return;
	}
	if (!out->n)
		return;
	t = worker_rtmp_time(l, ts, evloop_now(w->loop));
	/* the first frame's sound started before this input's: stamped when it started (an
	 * encoder's FIFO and delay; not before what was already sent) */
	if (out->lead > 0 && out->rate) {
		uint32_t lead_ms = (uint32_t)((uint64_t)out->lead * 1000u / out->rate);

		t = (int32_t)(t - lead_ms - l->out_ts) > 0 ? t - lead_ms : l->out_ts;
	}
	for (unsigned i = 0; i < out->n; i++) {
		ctl_server_send_media(w->ctl, l->owner, l->id, t, 0, tc_frame_data(out, i),
				      out->f[i].len);
		/* a sequence header (0 samples) goes with the frame after it */
		t += out->f[i].samples == 0 ? 0 : out->f[i].ms ? out->f[i].ms : FRAME_MS;
		l->media_out++;
	}
	l->out_ts = t;
}

static int key_to_b64(const uint8_t *raw, size_t len, char out[RTP_LEG_KEY_B64_LEN + 1])
{
	if (len != 30)
		return -EINVAL;
	EVP_EncodeBlock((unsigned char *)out, raw, (int)len);
	return 0;
}

static int key_from_b64(const char *b64, uint8_t raw[32], size_t *len)
{
	uint8_t tmp[48];
	int n;

	if (strlen(b64) != RTP_LEG_KEY_B64_LEN)
		return -EINVAL;
	n = EVP_DecodeBlock(tmp, (const unsigned char *)b64, RTP_LEG_KEY_B64_LEN);
	if (n < 30)
		return -EINVAL;
	memcpy(raw, tmp, 30);
	*len = 30;
	return 0;
}

int worker_suite_parse(const char *s, enum rtp_leg_srtp_suite *out)
{
	if (strcmp(s, "AES_CM_128_HMAC_SHA1_80") == 0)
		*out = RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80;
	else if (strcmp(s, "AES_CM_128_HMAC_SHA1_32") == 0)
		*out = RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_32;
	else
		return -EINVAL;
	return 0;
}

static void leg_free(struct leg *l)
{
	rtp_leg_destroy(&l->rtp);
	transcoder_destroy(&l->tc);
	worker_video_free(l);
	free(l);
}

static void check_drained(struct worker *w)
{
	if (w->draining && w->n_legs == 0 && w->drain_done) {
		void (*done)(struct worker *, void *) = w->drain_done;

		w->drain_done = NULL;
		done(w, w->drain_arg);
	}
}

void worker_leg_destroy(struct leg *l, bool forget_state)
{
	struct worker *w = l->w;

	leg_unlink(w, l);
	if (forget_state && w->redis && redis_is_up(w->redis))
		state_leg_delete(w->redis, l->id, w->worker_id, NULL, NULL);
	{
		struct rtp_leg_stats st;

		rtp_leg_get_stats(l->rtp, &st);
		log_info(l->id,
			 "leg destroyed (media in %" PRIu64 ", out %" PRIu64 ", errors %" PRIu64
			 ", dropped late %" PRIu64 "; RTP sent %" PRIu64 ", received %" PRIu64
			 ", late %" PRIu64 ", concealed %" PRIu64 "; refused: bad %" PRIu64
			 ", payload type %" PRIu64 ", ssrc %" PRIu64 ", source %" PRIu64
			 ", srtp %" PRIu64 "; latch changes %" PRIu64 ")",
			 l->media_in, l->media_out, l->media_errors, l->media_stale, st.packets_sent,
			 st.packets_received, st.frames_late, st.frames_lost, st.bad_packets,
			 st.unknown_pt, st.wrong_ssrc, st.unexpected_source, st.srtp_auth_failures,
			 st.latch_changes);
		if (l->vid)
			worker_video_log_stats(l);
	}
	leg_free(l);
	check_drained(w);
}

/* Picks the SIP codec: one equal to the RTMP codec first (pass-through), else the first in
 * the signaler's order that the transcoder can reach. -1 when none. */
static int choose_codec(const struct worker *w, const struct leg_spec *s)
{
	int first_ok = -1;

	for (unsigned i = 0; i < s->n_offered; i++) {
		const struct codec *c = codec_by_name(s->offered[i].name, s->offered[i].rate);
		struct transcoder *t;

		if (!c || c->id == CODEC_TELEPHONE_EVENT)
			continue;
		if (c->id == s->rtmp_codec->id)
			return (int)i;
		if (c->family == CODEC_FAMILY_VIDEO || s->rtmp_codec->family == CODEC_FAMILY_VIDEO)
			continue; /* video is carried as it is, never transcoded */
		if (first_ok >= 0)
			continue;
		t = transcoder_new(&w->cfg.topts, s->rtmp_codec->id, c->id);
		if (t)
			first_ok = (int)i;
		transcoder_destroy(&t);
	}
	return first_ok;
}

/*
 * Turns following the RTMP stream on or off (see struct leg's track). A failure only costs the
 * continuity of a later codec change: logged, not fatal.
 */
static void leg_track(struct leg *l, bool on)
{
	l->track = on;
	if (!l->tc)
		return;
	if (transcoder_track_rtmp(l->tc, on) < 0)
		log_warn(l->id, "cannot follow the RTMP stream: out of memory");
}

struct leg *worker_leg_create(struct worker *w, const struct leg_spec *s, int *err, char *why,
			      size_t whylen)
{
	const struct wire_codec *wc = &s->offered[s->chosen];
	const struct codec *sip = codec_by_name(wc->name, wc->rate);
	struct rtp_leg_params p;
	struct transcode_opts topts = w->cfg.topts;
	struct leg *l = calloc(1, sizeof(*l));

	if (!l) {
		*err = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	l->w = w;
	snprintf(l->id, sizeof(l->id), "%s", s->id);
	snprintf(l->call_id, sizeof(l->call_id), "%s", s->call_id);
	snprintf(l->owner, sizeof(l->owner), "%s", s->owner);
	l->rtmp_codec = s->rtmp_codec;
	l->sip_codec = sip;
	l->sip_pt = wc->pt;
	l->dtmf_pt = s->dtmf_pt;
	memcpy(l->offered, s->offered, sizeof(s->offered[0]) * s->n_offered);
	l->n_offered = s->n_offered;
	l->srtp = s->srtp;
	l->hold = s->hold;
	l->created_ms = s->created_ms ? s->created_ms : state_now_ms();
	/* The timeline starts TIMELINE_HEADROOM_MS before now: audio whose sound began before the
	 * frame that completed it (an encoder's FIFO and delay) is stamped when it began, which
	 * the first frames could not be at 0. */
	l->start_mono = evloop_now(w->loop) - TIMELINE_HEADROOM_MS;
	if (s->sync_leg) { /* video beside its audio: one RTMP timeline */
		const struct leg *a = worker_leg_find(w, s->sync_leg);

		if (a && strcmp(a->owner, l->owner) == 0)
			l->start_mono = a->start_mono;
	}
	if (s->srtp != RTP_LEG_SRTP_NONE) {
		if (s->local_key)
			snprintf(l->local_key, sizeof(l->local_key), "%s", s->local_key);
		else if (rtp_leg_srtp_key_generate(l->local_key) < 0) {
			*err = -EIO;
			snprintf(why, whylen, "cannot generate an SRTP key");
			goto out_free;
		}
		if (s->remote_key)
			snprintf(l->remote_key, sizeof(l->remote_key), "%s", s->remote_key);
	}
	topts.sid = l->id;
	l->rtmp_out = s->rtmp_out;
	l->rtmp_rate = s->rtmp_rate;
	l->rtmp_channels = s->rtmp_channels;
	snprintf(l->sip_fmtp, sizeof(l->sip_fmtp), "%s", s->sip_fmtp ? s->sip_fmtp : "");
	topts.rtmp_out = l->rtmp_out ? l->rtmp_out->id : CODEC_NONE;
	topts.rtmp_rate = l->rtmp_rate;
	topts.rtmp_channels = l->rtmp_channels;
	if (sip->id == CODEC_OPUS)
		transcode_opts_opus_fmtp(&topts, l->sip_fmtp);
	if (sip->family == CODEC_FAMILY_VIDEO) {
		if (worker_video_new(l) < 0) {
			*err = -ENOMEM;
			snprintf(why, whylen, "out of memory");
			goto out_free;
		}
	} else if (!(l->tc = transcoder_new(&topts, s->rtmp_codec->id, sip->id))) {
		*err = -EINVAL;
		snprintf(why, whylen, "no transcoding path %s -> %s", s->rtmp_codec->label, sip->label);
		goto out_free;
	}
	rtp_leg_params_init(&p);
	if (s->adopt)
		rtp_leg_params_adopt(&p, s->adopt, state_now_ms());
	p.loop = w->loop;
	p.pool = w->pool;
	p.sid = l->id;
	p.bind_ip = w->cfg.rtp_bind_ip;
	p.advertised_ip = w->cfg.advertised_ip;
	if (!s->adopt) {
		/* SRTP without the peer's key yet (we are offering): nothing may go out in the
		 * clear, so the remote is only set once UPDATE_LEG brings the key. */
		bool keyless = s->srtp != RTP_LEG_SRTP_NONE && !l->remote_key[0];

		if (keyless && s->remote_ip) {
			snprintf(l->held_ip, sizeof(l->held_ip), "%s", s->remote_ip);
			l->held_port = s->remote_port;
		}
		p.remote_ip = keyless ? NULL : s->remote_ip;
		p.remote_port = keyless ? 0 : s->remote_port;
		p.payload_type = wc->pt;
		p.clock_rate = sip->clock_rate;
		p.samples_per_frame = sip->frame_samples;
		p.tev_payload_type = s->dtmf_pt;
		p.srtp_suite = keyless ? RTP_LEG_SRTP_NONE : s->srtp;
		p.local_key = keyless || s->srtp == RTP_LEG_SRTP_NONE ? NULL : l->local_key;
		p.remote_key = keyless ? NULL : l->remote_key;
	}
	if (l->vid) { /* video: no frame of its own, no DTMF (a stored record says neither) */
		p.samples_per_frame = VIDEO_FRAME_TS;
		p.tev_payload_type = -1;
	}
	p.rtp_timeout_ms = w->cfg.rtp_timeout_ms;
	p.latch_packets = w->cfg.latch_packets;
	p.latch_guard_ms = w->cfg.latch_guard_ms;
	p.video = l->vid != NULL;
	p.cb = (struct rtp_leg_callbacks){
		.on_dtmf = on_dtmf,
		.on_timeout = on_rtp_timeout,
		.on_failure = on_rtp_failure,
		.on_frame = l->vid ? NULL : on_rtp_frame,
		.on_packet = l->vid ? worker_video_on_packet : NULL,
		.on_keyframe_request = l->vid ? worker_video_on_keyframe_request : NULL,
		.arg = l,
	};
	l->rtp = rtp_leg_new(&p);
	if (!l->rtp) {
		*err = errno == ENOSPC ? -ENOSPC : -(errno ? errno : EIO);
		snprintf(why, whylen, "cannot open the RTP session: %s", strerror(-*err));
		goto out_free;
	}
	if (s->hold)
		rtp_leg_set_hold(l->rtp, true);
	if (!p.remote_ip)
		leg_track(l, true);
	if (leg_link(w, l) < 0) {
		*err = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		goto out_free;
	}
	log_info(l->id, "leg %s: call %s owner %s, %s, local %s:%u%s", s->adopt ? "adopted" : "created",
		 l->call_id, l->owner, l->tc ? transcoder_describe(l->tc) : "H.264 video, carried",
		 rtp_leg_advertised_ip(l->rtp),
		 rtp_leg_local_port(l->rtp), l->srtp != RTP_LEG_SRTP_NONE ? ", SRTP" : "");
	leg_store(l);
	return l;

out_free:
	leg_free(l);
	return NULL;
}

void worker_reply_leg(struct worker *w, const struct ctl_request *req, const struct leg *l)
{
	struct wire_builder b = {0};
	struct rtp_leg_state st;
	struct wire_codec chosen = {
		.pt = (uint8_t)l->sip_pt, .channels = 1, .rate = l->sip_codec->clock_rate,
	};

	rtp_leg_get_state(l->rtp, &st);
	snprintf(chosen.name, sizeof(chosen.name), "%s", l->sip_codec->name);
	wire_builder_init(&b, WIRE_OK, 0);
	wire_put_str(&b, WIRE_T_LOCAL_IP, rtp_leg_advertised_ip(l->rtp));
	wire_put_u16(&b, WIRE_T_LOCAL_PORT, rtp_leg_local_port(l->rtp));
	wire_put_codec(&b, WIRE_T_CHOSEN_CODEC, &chosen);
	wire_put_u32(&b, WIRE_T_SSRC, st.ssrc);
	wire_put_bool(&b, WIRE_T_TRANSCODING, leg_transcodes(l));
	if (l->srtp != RTP_LEG_SRTP_NONE) {
		uint8_t raw[32];
		size_t len;

		if (key_from_b64(l->local_key, raw, &len) == 0) {
			wire_put_str(&b, WIRE_T_SRTP_SUITE,
				     l->srtp == RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_32 ? "AES_CM_128_HMAC_SHA1_32"
										    : "AES_CM_128_HMAC_SHA1_80");
			wire_put_bytes(&b, WIRE_T_SRTP_LOCAL_KEY, raw, len);
		}
	}
	ctl_server_reply(w->ctl, req, &b);
	wire_builder_free(&b);
}

/* Reads the SRTP suite and remote key of a request into @s (keys stored in @b64). */
static int parse_srtp(const struct wire_msg *m, enum rtp_leg_srtp_suite *suite,
		      char b64[RTP_LEG_KEY_B64_LEN + 1], char *why, size_t whylen)
{
	char name[64];
	const uint8_t *key;
	size_t klen;

	if (!wire_has(m, WIRE_T_SRTP_SUITE))
		return 0;
	if (wire_get_cstr(m, WIRE_T_SRTP_SUITE, name, sizeof(name)) < 0 ||
	    worker_suite_parse(name, suite) < 0) {
		snprintf(why, whylen, "unsupported SRTP suite");
		return -EINVAL;
	}
	if (wire_get_bytes(m, WIRE_T_SRTP_REMOTE_KEY, &key, &klen) == 0 &&
	    key_to_b64(key, klen, b64) < 0) {
		snprintf(why, whylen, "SRTP key must be 30 bytes (key + salt), got %zu", klen);
		return -EINVAL;
	}
	return 0;
}

static void on_create_leg(struct ctl_server *s, const struct ctl_request *req,
			  const struct wire_msg *m, void *arg)
{
	struct worker *w = arg;
	struct leg_spec spec = {.dtmf_pt = RTP_LEG_DEFAULT_TEV_PT};
	char id[WIRE_MAX_ID + 1], call_id[WIRE_MAX_STR + 1], owner[WIRE_MAX_ID + 1];
	char remote_ip[64] = "", remote_key[RTP_LEG_KEY_B64_LEN + 1] = "", why[160] = "";
	char sync_leg[WIRE_MAX_ID + 1];
	struct wire_codec rc;
	struct leg *l;
	uint8_t dtmf;
	bool want_srtp = false;
	int err;

	if (wire_get_cstr(m, WIRE_T_LEG_ID, id, sizeof(id)) < 0 ||
	    wire_get_cstr(m, WIRE_T_CALL_ID, call_id, sizeof(call_id)) < 0 ||
	    wire_get_cstr(m, WIRE_T_OWNER, owner, sizeof(owner)) < 0 ||
	    wire_get_codec(m, WIRE_T_RTMP_CODEC, 0, &rc) < 0) {
		ctl_server_reply_error(s, req, EINVAL, 0, "CREATE_LEG needs LEG_ID, CALL_ID, OWNER, RTMP_CODEC");
		return;
	}
	if (!worker_owner_is_requester(w, req, owner, id))
		return;
	l = worker_leg_find(w, id);
	if (l) {
		if (strcmp(l->owner, owner) == 0)
			worker_reply_leg(w, req, l);
		else
			ctl_server_reply_error(s, req, EEXIST, WIRE_T_LEG_ID,
					       "leg %s exists with owner %s", id, l->owner);
		return;
	}
	if (w->draining) {
		ctl_server_reply_error(s, req, EBUSY, 0, "worker %s is draining", w->worker_id);
		return;
	}
	if (w->cfg.capacity && w->n_legs >= w->cfg.capacity) {
		ctl_server_reply_error(s, req, ENOSPC, 0, "worker at capacity (%u legs)", w->cfg.capacity);
		return;
	}
	spec.id = id;
	spec.call_id = call_id;
	spec.owner = owner;
	spec.rtmp_codec = codec_by_rtmp_name(rc.name);
	spec.rtmp_rate = rc.rate;
	spec.rtmp_channels = rc.channels;
	if (!spec.rtmp_codec || !codec_rtmp_capable(spec.rtmp_codec)) {
		ctl_server_reply_error(s, req, EINVAL, WIRE_T_RTMP_CODEC,
				       "RTMP codec %s/%u is not supported", rc.name, rc.rate);
		return;
	}
	if (wire_get_codec(m, WIRE_T_RTMP_OUT_CODEC, 0, &rc) == 0) {
		spec.rtmp_out = codec_by_rtmp_name(rc.name);
		if (!spec.rtmp_out) {
			ctl_server_reply_error(s, req, EINVAL, WIRE_T_RTMP_OUT_CODEC,
					       "RTMP codec %s is not supported", rc.name);
			return;
		}
	}
	spec.n_offered = (unsigned)wire_count(m, WIRE_T_SIP_CODEC);
	if (spec.n_offered > LEG_MAX_CODECS)
		spec.n_offered = LEG_MAX_CODECS;
	for (unsigned i = 0; i < spec.n_offered; i++)
		wire_get_codec(m, WIRE_T_SIP_CODEC, i, &spec.offered[i]);
	spec.chosen = choose_codec(w, &spec);
	if (spec.chosen < 0) {
		ctl_server_reply_error(s, req, EINVAL, WIRE_T_SIP_CODEC,
				       "no offered SIP codec can be reached from %s", spec.rtmp_codec->label);
		return;
	}
	if (wire_get_u8(m, WIRE_T_DTMF_PT, &dtmf) == 0)
		spec.dtmf_pt = dtmf;
	if (wire_has(m, WIRE_T_REMOTE_IP)) {
		wire_get_cstr(m, WIRE_T_REMOTE_IP, remote_ip, sizeof(remote_ip));
		wire_get_u16(m, WIRE_T_REMOTE_PORT, &spec.remote_port);
		spec.remote_ip = remote_ip;
	}
	if (parse_srtp(m, &spec.srtp, remote_key, why, sizeof(why)) < 0) {
		ctl_server_reply_error(s, req, EINVAL, WIRE_T_SRTP_SUITE, "%s", why);
		return;
	}
	wire_get_bool(m, WIRE_T_WANT_SRTP, &want_srtp);
	if (wire_get_cstr(m, WIRE_T_SYNC_LEG, sync_leg, sizeof(sync_leg)) == 0)
		spec.sync_leg = sync_leg;
	if (want_srtp && spec.srtp == RTP_LEG_SRTP_NONE)
		spec.srtp = RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80;
	spec.remote_key = remote_key[0] ? remote_key : NULL;
	l = worker_leg_create(w, &spec, &err, why, sizeof(why));
	if (!l) {
		log_warn(id, "CREATE_LEG failed: %s", why);
		ctl_server_reply_error(s, req, -err, 0, "%s", why);
		return;
	}
	worker_reply_leg(w, req, l);
}

static void reply_ok(struct ctl_server *s, const struct ctl_request *req)
{
	struct wire_builder b = {0};

	wire_builder_init(&b, WIRE_OK, 0);
	ctl_server_reply(s, req, &b);
	wire_builder_free(&b);
}

/* True when @pt is one of the H.264 payload types the signaler offered for video leg @l. */
static bool offered_video_pt(const struct leg *l, uint8_t pt)
{
	for (unsigned i = 0; i < l->n_offered; i++) {
		const struct codec *c = codec_by_name(l->offered[i].name, l->offered[i].rate);

		if (l->offered[i].pt == pt && c && c->family == CODEC_FAMILY_VIDEO)
			return true;
	}
	return false;
}

static void on_update_leg(struct ctl_server *s, const struct ctl_request *req,
			  const struct wire_msg *m, void *arg)
{
	struct worker *w = arg;
	struct leg *l = worker_owned_leg(w, req, m);
	char remote_ip[64], remote_key[RTP_LEG_KEY_B64_LEN + 1] = "", why[160] = "";
	enum rtp_leg_srtp_suite suite = RTP_LEG_SRTP_NONE;
	uint16_t port = 0;
	uint8_t pt;
	bool hold;
	char fmtp[129] = "";

	if (!l)
		return;
	if (wire_has(m, WIRE_T_CODEC_FMTP))
		wire_get_cstr(m, WIRE_T_CODEC_FMTP, fmtp, sizeof(fmtp));
	if (l->vid && wire_get_u8(m, WIRE_T_CODEC_PT, &pt) == 0 && pt != l->sip_pt) {
		/* video: another payload type of the same codec, nothing to rebuild */
		if (!offered_video_pt(l, pt) ||
		    rtp_leg_set_payload(l->rtp, pt, 90000, VIDEO_FRAME_TS, -1) < 0) {
			ctl_server_reply_error(s, req, EINVAL, WIRE_T_CODEC_PT,
					       "payload type %u was not offered for this leg", pt);
			return;
		}
		l->sip_pt = pt;
		snprintf(l->sip_fmtp, sizeof(l->sip_fmtp), "%s", fmtp);
	} else if (!l->vid && wire_get_u8(m, WIRE_T_CODEC_PT, &pt) == 0 &&
		   (pt != l->sip_pt || strcmp(fmtp, l->sip_fmtp) != 0)) {
		const struct codec *c = NULL;
		struct transcoder *t;
		struct transcode_opts topts = w->cfg.topts;

		for (unsigned i = 0; i < l->n_offered && !c; i++)
			if (l->offered[i].pt == pt)
				c = codec_by_name(l->offered[i].name, l->offered[i].rate);
		topts.sid = l->id;
		topts.rtmp_out = l->rtmp_out ? l->rtmp_out->id : CODEC_NONE;
		topts.rtmp_rate = l->rtmp_rate;
		topts.rtmp_channels = l->rtmp_channels;
		if (c && c->id == CODEC_OPUS)
			transcode_opts_opus_fmtp(&topts, fmtp);
		t = c ? transcoder_new(&topts, l->rtmp_codec->id, c->id) : NULL;
		if (!t || rtp_leg_set_payload(l->rtp, pt, c->clock_rate, c->frame_samples, l->dtmf_pt) < 0) {
			transcoder_destroy(&t);
			ctl_server_reply_error(s, req, EINVAL, WIRE_T_CODEC_PT,
					       "payload type %u was not offered for this leg", pt);
			return;
		}
		/* The audio may be flowing: the new transcoder continues the RTMP stream's decoder
		 * (and the encoder toward RTMP) instead of starting them in its middle. */
		if (l->track && transcoder_track_rtmp(t, true) < 0)
			log_warn(l->id, "cannot follow the RTMP stream: out of memory");
		transcoder_handover(l->tc, t);
		if (!transcoder_is_passthrough(l->tc))
			w->n_transcoding--;
		transcoder_destroy(&l->tc);
		l->tc = t;
		if (!transcoder_is_passthrough(l->tc))
			w->n_transcoding++;
		l->sip_codec = c;
		l->sip_pt = pt;
		snprintf(l->sip_fmtp, sizeof(l->sip_fmtp), "%s", fmtp);
		log_info(l->id, "codec now %s%s%s", transcoder_describe(l->tc), fmtp[0] ? ", fmtp " : "",
			 fmtp);
	}
	if (parse_srtp(m, &suite, remote_key, why, sizeof(why)) < 0) {
		ctl_server_reply_error(s, req, EINVAL, WIRE_T_SRTP_SUITE, "%s", why);
		return;
	}
	/* Keys before the address, so the first packet to a new remote is already protected. */
	if (suite != RTP_LEG_SRTP_NONE && remote_key[0]) {
		if (!l->local_key[0] && rtp_leg_srtp_key_generate(l->local_key) < 0) {
			ctl_server_reply_error(s, req, EIO, 0, "cannot generate an SRTP key");
			return;
		}
		if (rtp_leg_set_srtp(l->rtp, suite, l->local_key, remote_key) < 0) {
			ctl_server_reply_error(s, req, EINVAL, WIRE_T_SRTP_REMOTE_KEY, "bad SRTP key");
			return;
		}
		l->srtp = suite;
		snprintf(l->remote_key, sizeof(l->remote_key), "%s", remote_key);
		if (l->held_ip[0] && !wire_has(m, WIRE_T_REMOTE_IP) &&
		    rtp_leg_set_remote(l->rtp, l->held_ip, l->held_port, 0) == 0 && l->track)
			leg_track(l, false);
		l->held_ip[0] = '\0';
	}
	if (wire_has(m, WIRE_T_REMOTE_IP)) {
		wire_get_cstr(m, WIRE_T_REMOTE_IP, remote_ip, sizeof(remote_ip));
		wire_get_u16(m, WIRE_T_REMOTE_PORT, &port);
		if (l->srtp != RTP_LEG_SRTP_NONE && !l->remote_key[0]) {
			ctl_server_reply_error(s, req, EINVAL, WIRE_T_SRTP_REMOTE_KEY,
					       "SRTP leg: the peer's key must come with its address");
			return;
		}
		if (rtp_leg_set_remote(l->rtp, remote_ip, port, 0) < 0) {
			ctl_server_reply_error(s, req, EINVAL, WIRE_T_REMOTE_IP, "bad remote address %s",
					       remote_ip);
			return;
		}
		/* The answer came: the SIP codec is settled (a re-INVITE that changes it later
		 * starts a decoder in the middle of the stream; following every pass-through leg
		 * for the whole call would cost a decode per frame). */
		if (l->track)
			leg_track(l, false);
	}
	if (wire_get_bool(m, WIRE_T_HOLD, &hold) == 0 && hold != l->hold) {
		rtp_leg_set_hold(l->rtp, hold);
		l->hold = hold;
		log_info(l->id, "%s", hold ? "on hold" : "off hold");
	}
	if (l->vid && wire_get_bool(m, WIRE_T_KEYFRAME, &hold) == 0 && hold)
		worker_video_request_keyframe(l);
	leg_store(l);
	worker_reply_leg(w, req, l); /* with the codec it runs now and whether it transcodes */
}

static void on_send_dtmf(struct ctl_server *s, const struct ctl_request *req,
			 const struct wire_msg *m, void *arg)
{
	struct leg *l = worker_owned_leg(arg, req, m);
	uint8_t digit;
	uint16_t ms = 100;
	int err;

	if (!l)
		return;
	if (wire_get_u8(m, WIRE_T_DIGIT, &digit) < 0) {
		ctl_server_reply_error(s, req, EINVAL, WIRE_T_DIGIT, "DIGIT required");
		return;
	}
	wire_get_u16(m, WIRE_T_DURATION_MS, &ms);
	err = rtp_leg_send_dtmf(l->rtp, (char)digit, ms);
	if (err < 0) {
		ctl_server_reply_error(s, req, -err, WIRE_T_DIGIT, "DTMF '%c' not sent: %s", digit,
				       strerror(-err));
		return;
	}
	log_info(l->id, "DTMF '%c' sent (%u ms)", digit, ms);
	reply_ok(s, req);
}

static void on_leg_stats(struct ctl_server *s, const struct ctl_request *req,
			 const struct wire_msg *m, void *arg)
{
	struct leg *l = worker_owned_leg(arg, req, m);
	struct rtp_leg_stats st;
	struct wire_builder b = {0};

	if (!l)
		return;
	rtp_leg_get_stats(l->rtp, &st);
	wire_builder_init(&b, WIRE_OK, 0);
	wire_put_u64(&b, WIRE_T_PKTS_IN, st.packets_received);
	wire_put_u64(&b, WIRE_T_PKTS_OUT, st.packets_sent);
	wire_put_u64(&b, WIRE_T_BYTES_IN, st.bytes_received);
	wire_put_u64(&b, WIRE_T_BYTES_OUT, st.bytes_sent);
	wire_put_u64(&b, WIRE_T_LOST, st.packets_lost > 0 ? (uint64_t)st.packets_lost : 0);
	wire_put_u32(&b, WIRE_T_JITTER_MS, st.jitter_ms);
	wire_put_u64(&b, WIRE_T_SRTP_AUTH_FAIL, st.srtp_auth_failures);
	wire_put_u64(&b, WIRE_T_BAD_PKTS, st.bad_packets + st.unexpected_source);
	ctl_server_reply(s, req, &b);
	wire_builder_free(&b);
}

static void on_worker_stats(struct ctl_server *s, const struct ctl_request *req,
			    const struct wire_msg *m, void *arg)
{
	struct worker *w = arg;
	struct wire_builder b = {0};
	uint64_t in = 0, out = 0;

	for (struct leg *l = w->legs; l; l = l->next) {
		struct rtp_leg_stats st;

		rtp_leg_get_stats(l->rtp, &st);
		in += st.packets_received;
		out += st.packets_sent;
	}
	wire_builder_init(&b, WIRE_OK, 0);
	wire_put_u32(&b, WIRE_T_LEGS, w->n_legs);
	wire_put_u32(&b, WIRE_T_TRANSCODING_LEGS, w->n_transcoding);
	wire_put_u32(&b, WIRE_T_PASSTHROUGH_LEGS, w->n_legs - w->n_transcoding);
	wire_put_u16(&b, WIRE_T_CPU_PERMILLE, w->cpu_permille);
	wire_put_u64(&b, WIRE_T_PKTS_IN, in);
	wire_put_u64(&b, WIRE_T_PKTS_OUT, out);
	ctl_server_reply(s, req, &b);
	wire_builder_free(&b);
}

static const struct ctl_handler handlers[] = {
	{.type = WIRE_CREATE_LEG, .fn = on_create_leg},
	{.type = WIRE_UPDATE_LEG, .fn = on_update_leg},
	{.type = WIRE_DESTROY_LEG, .fn = worker_on_destroy_leg},
	{.type = WIRE_SEND_DTMF, .fn = on_send_dtmf},
	{.type = WIRE_LEG_STATS, .fn = on_leg_stats},
	{.type = WIRE_WORKER_STATS, .fn = on_worker_stats},
	{.type = WIRE_ADOPT_LEG, .fn = worker_on_adopt_leg},
};

/* Media. */

static void on_media(struct ctl_server *s, const char *signaler_id, const struct wire_media *md,
		     void *arg)
{
	struct worker *w = arg;
	struct leg *l = worker_leg_find(w, md->leg_id);
	struct tc_out *out = &w->out;
	int err;

	if (!l) {
		if (w->media_unknown_leg++ % 1000 == 0)
			log_warn(NULL, "media for unknown leg %s dropped (%" PRIu64 " so far)",
				 md->leg_id, w->media_unknown_leg);
		return;
	}
	if (!signaler_id || strcmp(signaler_id, l->owner) != 0) {
		if (w->media_wrong_owner++ % 1000 == 0)
			log_warn(l->id, "media from %s, not the owner %s: dropped",
				 signaler_id ? signaler_id : "?", l->owner);
		return;
	}
	l->media_in++;
	if (l->vid) { /* pieces of video messages: each counts, none is dropped here */
		worker_video_from_rtmp(l, md);
		return;
	}
	/*
	 * A frame that waited too long on its way here (this worker short of CPU, a backlog in
	 * the queues) would reach the peer late and keep every later frame late: dropped without
	 * decoding, which also frees the CPU to catch up. The next packet sent carries the marker
	 * bit, as after a pause.
	 */
	if (w->cfg.media_max_delay_ms && md->queued_ms > w->cfg.media_max_delay_ms) {
		w->media_stale++;
		if (l->media_stale++ % 500 == 0)
			log_warn(l->id,
				 "RTMP frame %u ms late dropped (%" PRIu64
				 " on this leg so far; MEDIA_MAX_DELAY_MS %u)",
				 md->queued_ms, l->media_stale, w->cfg.media_max_delay_ms);
		rtp_leg_skip(l->rtp, 0);
		return;
	}
	err = transcoder_rtmp_to_sip(l->tc, md->payload, md->len, out);
	if (err < 0) {
		if (l->media_errors++ % 100 == 0)
			log_warn(l->id, "RTMP frame not usable: %s", transcoder_error(l->tc));
		return;
	}
	for (unsigned i = 0; i < out->n; i++) {
		if (out->f[i].len == 0) /* Opus DTX: no packet, the clock goes on */
			rtp_leg_skip(l->rtp, out->f[i].samples);
		else
			rtp_leg_send(l->rtp, tc_frame_data(out, i), out->f[i].len,
				     out->f[i].samples);
	}
}

static void sample_cpu(struct worker *w)
{
	struct rusage ru;
	uint64_t now = evloop_now(w->loop), used, wall;

	getrusage(RUSAGE_SELF, &ru);
	used = (uint64_t)(ru.ru_utime.tv_sec - w->ru_last.ru_utime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_stime.tv_sec - w->ru_last.ru_stime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_utime.tv_usec - w->ru_last.ru_utime.tv_usec) +
	       (uint64_t)(ru.ru_stime.tv_usec - w->ru_last.ru_stime.tv_usec);
	wall = (now - w->ru_last_mono) * 1000u;
	if (wall > 0)
		w->cpu_permille = (uint16_t)(used * 1000u / wall > 65535 ? 65535 : used * 1000u / wall);
	w->ru_last = ru;
	w->ru_last_mono = now;
}

static void on_slow(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct worker *w = arg;
	uint64_t now = evloop_now(loop);

	sample_cpu(w);
	worker_store(w);
	if (now - w->last_state_write >= w->cfg.state_interval_ms) {
		w->last_state_write = now;
		for (struct leg *l = w->legs; l; l = l->next)
			leg_store(l);
	}
	evloop_timer_start(t, 1000);
}

static void on_load(struct ctl_server *s, struct ctl_load *out, void *arg)
{
	struct worker *w = arg;

	out->legs = w->n_legs;
	out->cpu_permille = w->cpu_permille;
	out->draining = w->draining;
}

static void on_peer(struct ctl_server *s, const char *signaler_id, bool up, void *arg)
{
	log_info(NULL, "signaler %s %s", signaler_id, up ? "connected" : "gone");
}

struct worker *worker_new(struct evloop *loop, const struct worker_config *cfg, struct redis *r)
{
	struct worker *w = calloc(1, sizeof(*w));
	struct ctl_server_config ccfg = {0};
	struct ctl_server_callbacks cbs = {
		.handlers = handlers,
		.n_handlers = sizeof(handlers) / sizeof(handlers[0]),
		.load = on_load,
		.media = on_media,
		.peer = on_peer,
	};

	if (!w)
		return NULL;
	w->by_id = strmap_new(LEG_BUCKETS, 0);
	if (!w->by_id)
		goto out_free;
	w->loop = loop;
	w->cfg = *cfg;
	w->redis = r;
	snprintf(w->worker_id, sizeof(w->worker_id), "%s", cfg->worker_id);
	if (gethostname(w->host, sizeof(w->host) - 1) < 0 || !w->host[0])
		snprintf(w->host, sizeof(w->host), "localhost");
	w->started_ms = state_now_ms();
	w->pool = port_pool_new(cfg->rtp_port_min, cfg->rtp_port_max);
	if (!w->pool) {
		log_error(NULL, "cannot create the RTP port pool %u-%u", cfg->rtp_port_min,
			  cfg->rtp_port_max);
		goto out_free;
	}
	ccfg.ctl_bind = cfg->ctl_bind;
	ccfg.media_bind = cfg->media_bind;
	ccfg.worker_id = w->worker_id;
	ccfg.capacity = cfg->capacity;
	ccfg.heartbeat_ms = cfg->heartbeat_ms;
	ccfg.curve = cfg->curve;
	cbs.arg = w;
	w->ctl = ctl_server_new(loop, &ccfg, &cbs);
	if (!w->ctl) {
		log_error(NULL, "cannot bind the worker sockets (%s, %s): %s", cfg->ctl_bind,
			  cfg->media_bind, strerror(errno));
		goto out_pool;
	}
	advertised_endpoint(w->ctl_ep, sizeof(w->ctl_ep), ctl_server_ctl_endpoint(w->ctl),
			    cfg->advertised_host);
	advertised_endpoint(w->media_ep, sizeof(w->media_ep), ctl_server_media_endpoint(w->ctl),
			    cfg->advertised_host);
	if (strstr(w->ctl_ep, "//0.0.0.0:") || strstr(w->ctl_ep, "//[::]:") ||
	    strstr(w->media_ep, "//0.0.0.0:") || strstr(w->media_ep, "//[::]:"))
		log_warn(NULL, "the ZeroMQ endpoints are bound to every address and announced as such "
			       "(%s, %s): signalers cannot reach them; set WORKER_ADVERTISED_HOST",
			 w->ctl_ep, w->media_ep);
	w->slow = evloop_timer_new(loop, on_slow, w);
	if (!w->slow)
		goto out_ctl;
	getrusage(RUSAGE_SELF, &w->ru_last);
	w->ru_last_mono = evloop_now(loop);
	evloop_timer_start(w->slow, 1000);
	if (r && redis_add_listener(r, on_redis_up, on_redis_down, w) < 0)
		goto out_ctl;
	if (r && redis_is_up(r))
		worker_store(w);
	log_info(NULL, "worker %s: control %s, media %s, RTP %s:%u-%u (advertised %s)", w->worker_id,
		 w->ctl_ep, w->media_ep, cfg->rtp_bind_ip,
		 cfg->rtp_port_min, cfg->rtp_port_max, cfg->advertised_ip);
	return w;

out_ctl:
	evloop_timer_del(&w->slow);
	ctl_server_destroy(&w->ctl);
out_pool:
	port_pool_destroy(&w->pool);
out_free:
	strmap_destroy(&w->by_id, NULL);
	free(w);
	return NULL;
}

void worker_destroy(struct worker **wp)
{
	struct worker *w = wp ? *wp : NULL;

	if (!w)
		return;
	w->drain_done = NULL;
	if (w->redis)
		redis_remove_listener(w->redis, w);
	worker_takes_cancel(w);
	while (w->handovers) {
		struct handover *h = w->handovers;

		w->handovers = h->next;
		state_cancel(w->redis, h);
		free(h);
	}
	while (w->legs)
		worker_leg_destroy(w->legs, true);
	evloop_timer_del(&w->slow);
	ctl_server_destroy(&w->ctl);
	port_pool_destroy(&w->pool);
	strmap_destroy(&w->by_id, NULL);
	free(w);
	*wp = NULL;
}

/* The leg's state is in Redis (or could not be written): tell its owner, drop the leg but not
 * its state. */
static void handover_written(int err, const char *errmsg, void *arg)
{
	struct handover *h = arg, **pp;
	struct worker *w = h->w;
	struct leg *l;

	if (err == -ECANCELED)
		return; /* worker_destroy frees it */
	l = worker_leg_find(w, h->leg_id);
	for (pp = &w->handovers; *pp && *pp != h; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = h->next;
	free(h);
	if (!l)
		return;
	if (err)
		log_warn(l->id, "handover: state not written (%s): the owner may not adopt it",
			 errmsg ? errmsg : strerror(-err));
	send_event(l, WIRE_EV_LEG_HANDOVER, 0, 0, err ? "state not written" : NULL);
	worker_leg_destroy(l, false);
}

void worker_handover(struct worker *w)
{
	struct leg *next;

	log_info(NULL, "handing %u leg%s over to other workers", w->n_legs, w->n_legs == 1 ? "" : "s");
	for (struct leg *l = w->legs; l; l = next) {
		struct handover *h = calloc(1, sizeof(*h));
		struct leg_record rec;

		next = l->next;
		if (!h || !w->redis || !redis_is_up(w->redis)) {
			free(h);
			log_warn(l->id, "handover: Redis is down: the owner may not adopt the leg");
			send_event(l, WIRE_EV_LEG_HANDOVER, 0, 0, "state not written");
			worker_leg_destroy(l, false);
			continue;
		}
		h->w = w;
		snprintf(h->leg_id, sizeof(h->leg_id), "%s", l->id);
		leg_record_fill(l, &rec);
		if (state_leg_write(w->redis, &rec, w->cfg.leg_ttl_s, handover_written, h) < 0) {
			free(h);
			send_event(l, WIRE_EV_LEG_HANDOVER, 0, 0, "state not written");
			worker_leg_destroy(l, false);
			continue;
		}
		h->next = w->handovers;
		w->handovers = h;
	}
}

void worker_undrain(struct worker *w)
{
	if (!w->draining)
		return;
	log_info(NULL, "drain cancelled: taking new legs again");
	w->draining = false;
	w->drain_done = NULL;
	worker_store(w);
}

void worker_drain(struct worker *w, void (*done)(struct worker *w, void *arg), void *arg)
{
	if (!w->draining)
		log_info(NULL, "draining: no new legs; %u legs left", w->n_legs);
	w->draining = true;
	w->drain_done = done;
	w->drain_arg = arg;
	worker_store(w);
	check_drained(w);
}

const char *worker_ctl_endpoint(const struct worker *w)
{
	return w->ctl_ep;
}

const char *worker_media_endpoint(const struct worker *w)
{
	return w->media_ep;
}

unsigned worker_leg_count(const struct worker *w)
{
	return w->n_legs;
}

unsigned worker_transcoding_count(const struct worker *w)
{
	return w->n_transcoding;
}

/* --- read-only views for metrics ---------------------------------------------------------- */

void worker_get_stats(const struct worker *w, struct worker_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->legs = w->n_legs;
	out->transcoding = w->n_transcoding;
	out->cpu_permille = w->cpu_permille;
	out->draining = w->draining;
	out->capacity = w->cfg.capacity;
	out->media_unknown_leg = w->media_unknown_leg;
	out->media_wrong_owner = w->media_wrong_owner;
	out->media_stale = w->media_stale;
	out->adopts_pending = worker_takes_adopting(w);
	memcpy(out->refused, w->refused, sizeof(out->refused));
}

void worker_foreach_leg(const struct worker *w, worker_leg_visit_fn fn, void *arg)
{
	for (const struct leg *l = w->legs; l; l = l->next) {
		struct worker_leg_stats ls = {.id = l->id};
		struct rtp_leg_stats st;

		rtp_leg_get_stats(l->rtp, &st);
		ls.transcoding = leg_transcodes(l);
		ls.packets_in = st.packets_received;
		ls.packets_out = st.packets_sent;
		ls.packets_lost = st.packets_lost > 0 ? (uint64_t)st.packets_lost : 0;
		ls.jitter_ms = st.jitter_ms;
		ls.srtp_auth_failures = st.srtp_auth_failures;
		ls.frames_late = st.frames_late;
		ls.frames_concealed = st.frames_lost;
		ls.send_errors = st.send_errors;
		ls.unexpected_source = st.unexpected_source;
		ls.latch_changes = st.latch_changes;
		ls.media_in = l->media_in;
		ls.media_out = l->media_out;
		ls.media_errors = l->media_errors;
		fn(&ls, arg);
	}
}

void worker_get_ctl_stats(const struct worker *w, struct ctl_server_stats *out)
{
	ctl_server_get_stats(w->ctl, out);
}
