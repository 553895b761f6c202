/*
 * sipua_probe.c - a small command line over signaler/sip_ua for integration tests (SIPp peers).
 *
 *   sipua_probe register --aor USER@DOMAIN --user U --password P --registrar sip:IP:PORT
 *                        [--display NAME] [--expires S]
 *       prints "REGISTERED expires=N" or "FAILED <status> <phrase>", then un-REGISTERs
 *   sipua_probe call --target URI [--sdp-port N] [--hold-ms MS] [--no-reinvite]
 *                    [--dtmf DIGITS] [--refer URI]
 *       INVITE with a PCMU offer; prints "PROGRESS <status>", "ANSWERED port=N"; after
 *       --hold-ms (2000) re-INVITEs with a=sendonly ("REINVITE <status> port=N dir=D"), sends
 *       the DTMF digits by INFO ("DTMF-SENT d"), REFERs ("TRANSFER <status>") and hangs up;
 *       "ENDED local|peer <reason>" or "FAILED <status> <phrase>" at the end
 *       with --aor/--user/--password/--registrar: REGISTERs first and calls as that AOR (its
 *       credentials answer a 401/407 on the INVITE)
 *   sipua_probe busy ...     the same as call (the peer is expected to refuse: FAILED 486)
 *   sipua_probe cancel --target URI
 *       INVITE, CANCEL on the first provisional response; expects "FAILED 487"
 *   sipua_probe answer [--calls N] [--ring-ms MS] [--accept-refer]
 *       waits for INVITEs: no PCMU in the offer -> 488 ("REJECTED 488"), else 180 then 200
 *       with an SDP answer; prints "INCOMING from=URI", "CONFIRMED", "DTMF d",
 *       "REINVITE-IN dir=D", "CANCELLED", "ENDED peer|local <reason>"; exits after N calls
 *
 *   common: --bind IP (127.0.0.1) --port P (0: a free one; printed as "PORT P")
 *           --advertise IP --timeout S (20) --log LEVEL (warn)
 *           --tls-dir DIR --tls-port P (SIP over TLS; DIR holds agent.pem, key and certificate)
 *
 * Result lines go to stdout; logs to stderr. Exit status 0 when the run ended as the mode
 * expects, 1 otherwise, 2 on bad usage, 3 on timeout.
 */
#include "evloop_su.h"
#include "free_port.h"
#include "log.h"
#include "sip_ua.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct opts {
	const char *mode, *bind, *advertise, *aor, *user, *password, *display, *registrar, *target,
	    *dtmf, *refer, *log, *tls_dir;
	unsigned tls_port, port, sdp_port, hold_ms, ring_ms, calls, timeout, expires;
	bool no_reinvite, accept_refer;
};

struct probe {
	struct opts o;
	struct evloop *loop;
	struct sip_ua *ua;
	struct sip_reg *reg;
	struct sip_call *call;	   /* the call being driven */
	struct sip_call *referrer; /* answer mode: the call whose REFER we accepted */
	struct sip_call *xfer;	   /* answer mode: the call placed for that REFER */
	struct ev_timer *step;	   /* the next scripted action */
	struct ev_timer *deadline;
	int action;
	unsigned dtmf_idx;
	unsigned calls_done;
	int rc;
};

enum {
	ACT_NONE,
	ACT_REINVITE, /* hold: re-INVITE a=sendonly */
	ACT_CONTINUE, /* after the hold time without re-INVITE */
	ACT_DTMF,
	ACT_REFER,
	ACT_BYE,
	ACT_ANSWER,
	ACT_REFERRED, /* answer mode: INVITE the Refer-To target */
	ACT_XFER_BYE,
};

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void finish(struct probe *p, int rc)
{
	p->rc = rc;
	evloop_stop(p->loop);
}

static int sdp_port(const char *sdp)
{
	const char *m = sdp ? strstr(sdp, "m=audio ") : NULL;

	return m ? atoi(m + 8) : -1;
}

static const char *sdp_dir(const char *sdp)
{
	static const char *const dirs[] = {"sendonly", "recvonly", "inactive", "sendrecv"};

	for (size_t i = 0; sdp && i < 4; i++) {
		char a[32];

		snprintf(a, sizeof(a), "a=%s", dirs[i]);
		if (strstr(sdp, a))
			return dirs[i];
	}
	return "sendrecv";
}

/* True when the offer's audio line lists payload type 0 (PCMU). */
static bool offers_pcmu(const char *sdp)
{
	const char *m = sdp ? strstr(sdp, "m=audio ") : NULL;
	const char *e;
	char line[256], *tok, *save = NULL;
	int field = 0;

	if (!m)
		return false;
	e = m + strcspn(m, "\r\n");
	if ((size_t)(e - m) >= sizeof(line))
		return false;
	memcpy(line, m, (size_t)(e - m));
	line[e - m] = '\0';
	for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (++field > 3 && strcmp(tok, "0") == 0)
			return true;
	return false;
}

static void make_sdp(char *buf, size_t len, unsigned port, unsigned version, const char *dir)
{
	snprintf(buf, len,
		 "v=0\r\n"
		 "o=probe 4242 %u IN IP4 127.0.0.1\r\n"
		 "s=probe\r\n"
		 "c=IN IP4 127.0.0.1\r\n"
		 "t=0 0\r\n"
		 "m=audio %u RTP/AVP 0 101\r\n"
		 "a=rtpmap:0 PCMU/8000\r\n"
		 "a=rtpmap:101 telephone-event/8000\r\n"
		 "a=fmtp:101 0-15\r\n"
		 "a=%s\r\n",
		 version, port, dir);
}

static void schedule(struct probe *p, int action, unsigned ms)
{
	p->action = action;
	evloop_timer_start(p->step, ms);
}

/* After the re-INVITE: DTMF digits, then the REFER, then BYE. */
static void next_after_reinvite(struct probe *p)
{
	if (p->o.dtmf && p->o.dtmf[p->dtmf_idx])
		schedule(p, ACT_DTMF, 100);
	else if (p->o.refer)
		schedule(p, ACT_REFER, 100);
	else
		schedule(p, ACT_BYE, 200);
}

static void on_step(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct probe *p = arg;
	char sdp[512];
	int r = 0;

	if (!p->call && p->action != ACT_REFERRED && p->action != ACT_XFER_BYE)
		return;
	switch (p->action) {
	case ACT_REINVITE:
		make_sdp(sdp, sizeof(sdp), p->o.sdp_port, 2, "sendonly");
		r = sip_call_reinvite(p->call, sdp);
		break;
	case ACT_CONTINUE:
		next_after_reinvite(p);
		break;
	case ACT_DTMF:
		r = sip_call_info_dtmf(p->call, p->o.dtmf[p->dtmf_idx], 160);
		if (r == 0)
			out("DTMF-SENT %c", p->o.dtmf[p->dtmf_idx++]);
		next_after_reinvite(p);
		break;
	case ACT_REFER:
		r = sip_call_refer(p->call, p->o.refer);
		break;
	case ACT_BYE:
		r = sip_call_hangup(p->call);
		break;
	case ACT_ANSWER:
		make_sdp(sdp, sizeof(sdp), p->o.sdp_port, 1, "sendrecv");
		r = sip_call_respond(p->call, 200, NULL, sdp);
		break;
	case ACT_REFERRED:
		if (!p->referrer)
			break;
		make_sdp(sdp, sizeof(sdp), p->o.sdp_port + 2, 1, "sendrecv");
		p->xfer = sip_call_invite_referred(p->referrer, sdp, p);
		r = p->xfer ? 0 : -errno;
		break;
	case ACT_XFER_BYE:
		r = p->xfer ? sip_call_hangup(p->xfer) : 0;
		break;
	default:
		break;
	}
	if (r < 0) {
		out("ERROR action %d: %s", p->action, strerror(-r));
		finish(p, 1);
	}
}

static void on_deadline(struct evloop *loop, struct ev_timer *t, void *arg)
{
	out("TIMEOUT");
	finish(arg, 3);
}

/* ---- callbacks ---- */

static int place_call(struct probe *p)
{
	char sdp[512];

	make_sdp(sdp, sizeof(sdp), p->o.sdp_port, 1, "sendrecv");
	p->call = sip_call_invite(p->ua, p->reg, p->o.target, sdp, p);
	if (!p->call) {
		out("ERROR invite: %s", strerror(errno));
		return -1;
	}
	out("CALL-ID %s", sip_call_callid(p->call));
	return 0;
}

static void on_reg(struct sip_reg *reg, int status, const char *phrase, int expires, void *arg)
{
	struct probe *p = arg;

	if (status < 300)
		out("REGISTERED expires=%d", expires);
	else
		out("FAILED %d %s", status, phrase);
	if (strcmp(p->o.mode, "register") != 0 && status < 300) {
		/* call modes with --registrar: the call goes out as the registered AOR. */
		if (!p->call && place_call(p) < 0)
			finish(p, 1);
		return;
	}
	sip_reg_destroy(&p->reg);
	finish(p, status < 300 ? 0 : 1);
}

static void on_incoming(struct sip_ua *ua, struct sip_call *call, const struct sip_call_info *info,
			void *arg)
{
	struct probe *p = arg;

	out("INCOMING from=%s", info->from);
	sip_call_set_arg(call, p);
	if (p->call) {
		sip_call_respond(call, 486, NULL, NULL);
		return;
	}
	if (!offers_pcmu(info->sdp)) {
		/* Before any 180: the caller never hears ringing for a call we cannot take. */
		out("REJECTED 488");
		sip_call_respond(call, 488, NULL, NULL);
		return;
	}
	p->call = call;
	sip_call_respond(call, 180, NULL, NULL);
	schedule(p, ACT_ANSWER, p->o.ring_ms);
}

static void on_progress(struct sip_call *call, int status, const char *phrase, const char *sdp,
			void *arg)
{
	struct probe *p = arg;

	out("PROGRESS %d%s", status, sdp ? " sdp" : "");
	if (strcmp(p->o.mode, "cancel") == 0 && sip_call_cancel(call) == 0)
		out("CANCEL-SENT");
}

static void on_answered(struct sip_call *call, const char *sdp, void *arg)
{
	struct probe *p = arg;

	if (call == p->xfer) {
		out("XFER-ANSWERED port=%d", sdp_port(sdp));
		schedule(p, ACT_XFER_BYE, 500);
		return;
	}
	if (strcmp(p->o.mode, "answer") == 0) {
		out("CONFIRMED");
		return;
	}
	out("ANSWERED port=%d", sdp_port(sdp));
	if (p->o.no_reinvite)
		schedule(p, ACT_CONTINUE, p->o.hold_ms);
	else
		schedule(p, ACT_REINVITE, p->o.hold_ms);
}

/* A call is over: answer mode counts them, the other modes end with their one call. */
static void call_over(struct probe *p, struct sip_call *call, int rc)
{
	if (call == p->referrer)
		p->referrer = NULL;
	if (call == p->xfer)
		p->xfer = NULL;
	if (call == p->call) {
		p->call = NULL;
		if (p->action != ACT_REFERRED && p->action != ACT_XFER_BYE)
			evloop_timer_stop(p->step);
	}
	if (strcmp(p->o.mode, "answer") == 0) {
		if (++p->calls_done >= p->o.calls)
			finish(p, 0);
		return;
	}
	finish(p, rc);
}

static void on_failed(struct sip_call *call, int status, const char *phrase, void *arg)
{
	struct probe *p = arg;
	bool expected = strcmp(p->o.mode, "busy") == 0 || strcmp(p->o.mode, "cancel") == 0 ||
			strcmp(p->o.mode, "answer") == 0;

	out("%sFAILED %d %s", call == p->xfer ? "XFER-" : "", status, phrase);
	call_over(p, call, expected ? 0 : 1);
}

static void on_cancelled(struct sip_call *call, void *arg)
{
	out("CANCELLED");
	call_over(arg, call, 0);
}

static void on_ended(struct sip_call *call, bool by_peer, const char *reason, void *arg)
{
	struct probe *p = arg;

	out("%sENDED %s %s", call == p->xfer ? "XFER-" : "", by_peer ? "peer" : "local", reason);
	call_over(arg, call, 0);
}

static void on_reinvite(struct sip_call *call, const char *sdp, void *arg)
{
	struct probe *p = arg;
	const char *dir = sdp_dir(sdp);
	const char *rev = strcmp(dir, "sendonly") == 0	 ? "recvonly"
			  : strcmp(dir, "recvonly") == 0 ? "sendonly"
							 : dir;
	char ans[512];

	out("REINVITE-IN dir=%s", dir);
	make_sdp(ans, sizeof(ans), p->o.sdp_port, 2, rev);
	sip_call_respond(call, 200, NULL, ans);
}

static void on_reinvite_result(struct sip_call *call, int status, const char *phrase,
			       const char *sdp, void *arg)
{
	struct probe *p = arg;

	out("REINVITE %d port=%d dir=%s", status, sdp_port(sdp), sdp_dir(sdp));
	next_after_reinvite(p);
}

static int on_refer(struct sip_call *call, const char *refer_to, const char *referred_by, void *arg)
{
	struct probe *p = arg;

	out("REFER to=%s", refer_to);
	if (!p->o.accept_refer)
		return 603;
	p->referrer = call;
	p->o.calls++; /* the transferred call counts too */
	schedule(p, ACT_REFERRED, 0);
	return 202;
}

static void on_transfer(struct sip_call *call, int status, const char *phrase, void *arg)
{
	struct probe *p = arg;

	out("TRANSFER %d", status);
	if (status >= 200 && status != 202)
		schedule(p, ACT_BYE, 100);
}

static void on_dtmf(struct sip_call *call, char digit, unsigned duration_ms, void *arg)
{
	out("DTMF %c", digit);
}

/* ---- main ---- */

static int parse(int argc, char **argv, struct opts *o)
{
	if (argc < 2)
		return -1;
	*o = (struct opts){.mode = argv[1],
			   .bind = "127.0.0.1",
			   .log = "warn",
			   .sdp_port = 40000,
			   .hold_ms = 2000,
			   .ring_ms = 200,
			   .calls = 1,
			   .timeout = 20,
			   .expires = 3600};
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **sv = NULL;
		unsigned *uv = NULL;

		if (strcmp(a, "--no-reinvite") == 0) {
			o->no_reinvite = true;
			continue;
		}
		if (strcmp(a, "--accept-refer") == 0) {
			o->accept_refer = true;
			continue;
		}
		if (strcmp(a, "--bind") == 0)
			sv = &o->bind;
		else if (strcmp(a, "--advertise") == 0)
			sv = &o->advertise;
		else if (strcmp(a, "--aor") == 0)
			sv = &o->aor;
		else if (strcmp(a, "--user") == 0)
			sv = &o->user;
		else if (strcmp(a, "--password") == 0)
			sv = &o->password;
		else if (strcmp(a, "--display") == 0)
			sv = &o->display;
		else if (strcmp(a, "--registrar") == 0)
			sv = &o->registrar;
		else if (strcmp(a, "--target") == 0)
			sv = &o->target;
		else if (strcmp(a, "--dtmf") == 0)
			sv = &o->dtmf;
		else if (strcmp(a, "--refer") == 0)
			sv = &o->refer;
		else if (strcmp(a, "--log") == 0)
			sv = &o->log;
		else if (strcmp(a, "--tls-dir") == 0)
			sv = &o->tls_dir;
		else if (strcmp(a, "--tls-port") == 0)
			uv = &o->tls_port;
		else if (strcmp(a, "--port") == 0)
			uv = &o->port;
		else if (strcmp(a, "--sdp-port") == 0)
			uv = &o->sdp_port;
		else if (strcmp(a, "--hold-ms") == 0)
			uv = &o->hold_ms;
		else if (strcmp(a, "--ring-ms") == 0)
			uv = &o->ring_ms;
		else if (strcmp(a, "--calls") == 0)
			uv = &o->calls;
		else if (strcmp(a, "--timeout") == 0)
			uv = &o->timeout;
		else if (strcmp(a, "--expires") == 0)
			uv = &o->expires;
		if ((!sv && !uv) || !v) {
			fprintf(stderr, "sipua_probe: bad option %s\n", a);
			return -1;
		}
		if (sv)
			*sv = v;
		else
			*uv = (unsigned)strtoul(v, NULL, 10);
		i++;
	}
	if (strcmp(o->mode, "register") == 0)
		return o->aor && o->registrar ? 0 : -1;
	if (strcmp(o->mode, "call") == 0 || strcmp(o->mode, "busy") == 0 ||
	    strcmp(o->mode, "cancel") == 0)
		return o->target ? 0 : -1;
	if (strcmp(o->mode, "answer") == 0)
		return 0;
	return -1;
}

int main(int argc, char **argv)
{
	struct probe p = {.rc = 1};
	struct sip_ua_callbacks cb = {
	    .arg = &p,
	    .reg_result = on_reg,
	    .incoming = on_incoming,
	    .progress = on_progress,
	    .answered = on_answered,
	    .failed = on_failed,
	    .cancelled = on_cancelled,
	    .ended = on_ended,
	    .reinvite = on_reinvite,
	    .reinvite_result = on_reinvite_result,
	    .refer = on_refer,
	    .transfer_status = on_transfer,
	    .dtmf = on_dtmf,
	};
	struct sip_ua_config cfg = {0};
	int lvl;

	if (parse(argc, argv, &p.o) < 0) {
		fprintf(stderr, "usage: see the top of tests/tools/sipua_probe.c\n");
		return 2;
	}
	lvl = log_level_parse(p.o.log);
	log_init("sipua_probe", lvl < 0 ? LOG_LVL_WARN : (enum log_level)lvl);
	if (!p.o.port)
		p.o.port = free_port_on(p.o.bind);
	cfg.bind_ip = p.o.bind;
	cfg.port = (uint16_t)p.o.port;
	cfg.advertise_ip = p.o.advertise;
	cfg.tls_dir = p.o.tls_dir;
	cfg.tls_port = (uint16_t)p.o.tls_port;
	cfg.user_agent = "sipua_probe";
	p.loop = evloop_new();
	if (!p.loop)
		return 1;
	p.step = evloop_timer_new(p.loop, on_step, &p);
	p.deadline = evloop_timer_new(p.loop, on_deadline, &p);
	p.ua = sip_ua_new(p.loop, &cfg, &cb);
	if (!p.step || !p.deadline || !p.ua) {
		out("ERROR cannot start the UA on %s:%u", p.o.bind, p.o.port);
		goto out_loop;
	}
	out("PORT %u", p.o.port);
	evloop_timer_start(p.deadline, (uint64_t)p.o.timeout * 1000);
	if (strcmp(p.o.mode, "register") == 0 || (p.o.registrar && p.o.aor)) {
		p.reg = sip_ua_register(p.ua, p.o.aor, p.o.user, p.o.password, p.o.display,
					p.o.expires, p.o.registrar, &p);
		if (!p.reg) {
			out("ERROR register: %s", strerror(errno));
			goto out_ua;
		}
	} else if (strcmp(p.o.mode, "answer") != 0 && place_call(&p) < 0) {
		goto out_ua;
	}
	evloop_run(p.loop);
out_ua:
	sip_reg_destroy(&p.reg);
	sip_ua_destroy(&p.ua);
out_loop:
	evloop_timer_del(&p.step);
	evloop_timer_del(&p.deadline);
	evloop_destroy(&p.loop);
	return p.rc;
}
