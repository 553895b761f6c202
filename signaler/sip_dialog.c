/*
 * sip_dialog.c - what the SIP user agent knows of each call's dialog, for the call records, and
 * the BYE in a dialog another process held (sip_ua.h; what it shares with sip_ua.c in
 * sip_ua_int.h).
 *
 * sip_dialog_capture() learns from every message of a call what a later request in its dialog
 * needs (RFC 3261 12.2.1.1: tags, URIs, remote target, route set, our CSeq) and tells the
 * observer (callrec.c) when it changed; from such a record, sip_ua_bye_dialog() ends the call.
 */
#include "sip_ua_int.h"

#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/url.h>

/* ---- dialog data (for the call records) ---- */

/*
 * Copies @src into @dst when it fits and is printable ASCII without spaces (what a call record
 * stores); else leaves @dst empty. Returns true when copied.
 */
static bool dlg_put(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	dst[0] = '\0';
	if (!src || n == 0 || n >= size)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)src[i] <= 0x20 || (unsigned char)src[i] >= 0x7f)
			return false;
	memcpy(dst, src, n + 1);
	return true;
}

/* Like dlg_put() for a URI; true when @dst changed. */
static bool dlg_put_uri(char *dst, size_t size, url_t const *url)
{
	char buf[SIP_DIALOG_URI_MAX + 1], old[SIP_DIALOG_URI_MAX + 1];
	issize_t n;

	if (!url)
		return false;
	n = url_e(buf, sizeof(buf), url);
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return false;
	snprintf(old, sizeof(old), "%s", dst);
	dlg_put(dst, size, buf);
	return strcmp(old, dst) != 0;
}

/* Sets @dst to @tag; true when it changed. */
static bool dlg_put_tag(char *dst, size_t size, const char *tag)
{
	char old[SIP_DIALOG_TAG_MAX + 1];

	if (!tag || !tag[0])
		return false;
	snprintf(old, sizeof(old), "%s", dst);
	dlg_put(dst, size, tag);
	return strcmp(old, dst) != 0;
}

/*
 * The route set from Record-Route @rr as "<u1>,<u2>" in request order: as received for the
 * callee, reversed for the caller (RFC 3261 12.1.1, 12.1.2). More than SIP_DIALOG_ROUTES
 * entries, or a set too long to store, leaves it empty (logged). True when it changed.
 */
static bool dlg_put_route(struct sip_call *call, sip_record_route_t const *rr, bool reverse)
{
	char *out = call->dlg.route, old[SIP_DIALOG_ROUTE_MAX + 1], uri[SIP_DIALOG_URI_MAX + 1];
	const char *items[SIP_DIALOG_ROUTES];
	char bufs[SIP_DIALOG_ROUTES][SIP_DIALOG_URI_MAX + 1];
	size_t n = 0, len = 0;

	snprintf(old, sizeof(old), "%s", out);
	out[0] = '\0';
	for (; rr; rr = rr->r_next) {
		if (n == SIP_DIALOG_ROUTES || !dlg_put_uri(bufs[n], sizeof(bufs[n]), rr->r_url)) {
			log_warn(call_sid(call), "sip: route set too long or unusable: not stored");
			return strcmp(old, out) != 0;
		}
		items[n] = bufs[n];
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		const char *u = items[reverse ? n - 1 - i : i];
		int k = snprintf(uri, sizeof(uri), "%s<%s>", i ? "," : "", u);

		if (k < 0 || len + (size_t)k > SIP_DIALOG_ROUTE_MAX) {
			log_warn(call_sid(call), "sip: route set too long: not stored");
			out[0] = '\0';
			return strcmp(old, out) != 0;
		}
		memcpy(out + len, uri, (size_t)k + 1);
		len += (size_t)k;
	}
	return strcmp(old, out) != 0;
}

/* "udp", "tcp", "tls", "sctp" from the top Via's protocol ("SIP/2.0/UDP"), else "". */
static void dlg_put_transport(char *dst, size_t size, sip_via_t const *v)
{
	const char *p = v && v->v_protocol ? strrchr(v->v_protocol, '/') : NULL;
	char t[8] = "";

	dst[0] = '\0';
	if (!p || strlen(p + 1) >= sizeof(t))
		return;
	for (size_t i = 0; p[1 + i]; i++)
		t[i] = (char)((p[1 + i] >= 'A' && p[1 + i] <= 'Z') ? p[1 + i] + 32 : p[1 + i]);
	if (strcmp(t, "udp") == 0 || strcmp(t, "tcp") == 0 || strcmp(t, "tls") == 0 ||
	    strcmp(t, "sctp") == 0)
		snprintf(dst, size, "%s", t);
}

/* The peer's source from the top Via of its request (received / rport, RFC 3581). */
static void dlg_put_dest(char *dst, size_t size, sip_via_t const *v)
{
	const char *host, *port;
	char buf[SIP_DIALOG_DEST_MAX + 1];
	bool v6;
	int n;

	dst[0] = '\0';
	if (!v || !v->v_host)
		return;
	host = v->v_received && v->v_received[0] ? v->v_received : v->v_host;
	port = v->v_rport && v->v_rport[0] ? v->v_rport : v->v_port;
	if (!port || !port[0])
		port = "5060";
	v6 = strchr(host, ':') && host[0] != '[';
	n = snprintf(buf, sizeof(buf), "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
	if (n > 0 && (size_t)n < sizeof(buf))
		dlg_put(dst, size, buf);
}

void sip_dialog_from_invite(struct sip_call *call, sip_t const *sip)
{
	struct sip_dialog_info *d = &call->dlg;

	d->outgoing = false;
	dlg_put(d->call_id, sizeof(d->call_id), call->call_id);
	dlg_put_tag(d->remote_tag, sizeof(d->remote_tag), sip->sip_from->a_tag);
	dlg_put_uri(d->remote_uri, sizeof(d->remote_uri), sip->sip_from->a_url);
	dlg_put_uri(d->local_uri, sizeof(d->local_uri), sip->sip_to->a_url);
	if (sip->sip_contact)
		dlg_put_uri(d->remote_target, sizeof(d->remote_target), sip->sip_contact->m_url);
	dlg_put_route(call, sip->sip_record_route, false);
	dlg_put_transport(d->transport, sizeof(d->transport), sip->sip_via);
	dlg_put_dest(d->dest, sizeof(d->dest), sip->sip_via);
}

/* Events that carry the response to one of our requests on the call's handle. */
static bool our_response(nua_event_t ev)
{
	switch (ev) {
	case nua_r_invite:
	case nua_r_bye:
	case nua_r_info:
	case nua_r_refer:
	case nua_r_notify:
	case nua_r_update:
	case nua_r_prack:
	case nua_r_method:
	case nua_r_message:
	case nua_r_options:
		return true;
	default:
		return false;
	}
}

void sip_dialog_capture(struct sip_call *call, nua_event_t ev, int status, sip_t const *sip)
{
	struct sip_dialog_info *d = &call->dlg;
	bool changed = false;

	if (!sip)
		return;
	if (!d->call_id[0] && call->call_id)
		changed |= dlg_put(d->call_id, sizeof(d->call_id), call->call_id);
	d->outgoing = call->outgoing;
	if (our_response(ev) && sip->sip_status && sip->sip_cseq &&
	    sip->sip_cseq->cs_seq > d->local_cseq && sip->sip_cseq->cs_seq <= INT32_MAX) {
		d->local_cseq = sip->sip_cseq->cs_seq;
		changed = true;
	}
	if (ev == nua_r_invite && call->outgoing && !d->confirmed && !call->reinvite_out &&
	    status > 100 && status < 300 && sip->sip_from && sip->sip_to && sip->sip_to->a_tag) {
		/* The caller's dialog (early on 1xx with a tag, fixed by the 2xx). */
		changed |= dlg_put_tag(d->local_tag, sizeof(d->local_tag), sip->sip_from->a_tag);
		changed |= dlg_put_tag(d->remote_tag, sizeof(d->remote_tag), sip->sip_to->a_tag);
		changed |= dlg_put_uri(d->local_uri, sizeof(d->local_uri), sip->sip_from->a_url);
		changed |= dlg_put_uri(d->remote_uri, sizeof(d->remote_uri), sip->sip_to->a_url);
		if (sip->sip_contact)
			changed |= dlg_put_uri(d->remote_target, sizeof(d->remote_target),
					       sip->sip_contact->m_url);
		changed |= dlg_put_route(call, sip->sip_record_route, true);
		dlg_put_transport(d->transport, sizeof(d->transport), sip->sip_via);
		if (status >= 200)
			d->confirmed = true;
	} else if ((ev == nua_r_invite && status >= 200 && status < 300 && d->confirmed) ||
		   ev == nua_i_invite || ev == nua_i_update) {
		/* Target refresh: a re-INVITE (UPDATE) or its 2xx. */
		if (sip->sip_contact && (ev != nua_i_invite || call->state == CS_CONFIRMED))
			changed |= dlg_put_uri(d->remote_target, sizeof(d->remote_target),
					       sip->sip_contact->m_url);
	} else if (ev == nua_i_ack && !call->outgoing && sip->sip_to) {
		/* The ACK of our 2xx carries the tag nua gave us. */
		changed |= dlg_put_tag(d->local_tag, sizeof(d->local_tag), sip->sip_to->a_tag);
		if (!d->confirmed)
			changed = true;
		d->confirmed = true;
	}
	if (changed && call->ua->dialog_cb)
		call->ua->dialog_cb(call, call->ua->dialog_arg);
}

/* The URI of a name-addr ("Name" <sip:u@h>;tag=x -> sip:u@h), or the string itself. */
static void dlg_put_addr(char *dst, size_t size, const char *addr)
{
	const char *lt = addr ? strchr(addr, '<') : NULL;
	const char *gt = lt ? strchr(lt, '>') : NULL;
	char buf[SIP_DIALOG_URI_MAX + 1];

	dst[0] = '\0';
	if (lt && gt && (size_t)(gt - lt - 1) < sizeof(buf)) {
		memcpy(buf, lt + 1, (size_t)(gt - lt - 1));
		buf[gt - lt - 1] = '\0';
		dlg_put(dst, size, buf);
	} else if (addr && !lt) {
		dlg_put(dst, size, addr);
	}
}

int sip_call_dialog(const struct sip_call *call, struct sip_dialog_info *out)
{
	const struct sip_dialog_info *d = &call->dlg;

	*out = *d;
	if (!out->call_id[0] && call->call_id)
		dlg_put(out->call_id, sizeof(out->call_id), call->call_id);
	out->outgoing = call->outgoing;
	/* Before any response: our identity and the target as the INVITE names them. */
	if (!out->local_uri[0])
		dlg_put_addr(out->local_uri, sizeof(out->local_uri), call->local_uri);
	if (!out->remote_uri[0])
		dlg_put_addr(out->remote_uri, sizeof(out->remote_uri),
			     call->outgoing ? call->to : call->from);
	if (!out->call_id[0] || !d->local_tag[0] || !d->remote_tag[0] || !d->local_uri[0] ||
	    !d->remote_uri[0] || !d->remote_target[0])
		return -EAGAIN;
	return 0;
}

struct sip_call *sip_ua_find_call(struct sip_ua *ua, const char *call_id)
{
	if (!ua || !call_id)
		return NULL;
	for (struct sip_call *c = ua->calls; c; c = c->next)
		if (c->call_id && strcmp(c->call_id, call_id) == 0)
			return c;
	return NULL;
}

void sip_ua_set_dialog_observer(struct sip_ua *ua, void (*cb)(struct sip_call *call, void *arg),
				void *arg)
{
	ua->dialog_cb = cb;
	ua->dialog_arg = cb ? arg : NULL;
}

/* ---- BYE in a dialog held by another process ---- */

/*
 *   sip_ua_bye_dialog --> handle with Call-ID, From/To with the tags --> nua_method BYE in a
 *   new dialog leg whose local CSeq is local_cseq (the BYE gets local_cseq + 1)
 *        --> 200 / 481 / other final --> callback, handle destroyed
 *        --> 500 (CSeq behind the peer's) --> once more with local_cseq + 1000
 */
#define BYE_RETRY_CSEQ_STEP 1000

struct sip_bye {
	struct sip_hobj h;
	struct sip_ua *ua;
	nua_handle_t *nh;
	struct sip_dialog_info d;
	char sid[96];
	uint32_t cseq_base; /* the BYE carries cseq_base + 1 */
	bool retried;
	sip_bye_cb cb;
	void *arg;
	struct sip_bye *next, **pprev;
};

void sip_bye_free(struct sip_bye *b)
{
	if (b->nh) {
		nua_handle_bind(b->nh, NULL);
		nua_handle_destroy(b->nh);
	}
	*b->pprev = b->next;
	if (b->next)
		b->next->pprev = b->pprev;
	free(b);
}

/* True when the first "<uri>" of a route set has the lr parameter (loose routing). */
static bool first_route_loose(const char *route)
{
	const char *end = strchr(route, '>');
	const char *p = route;

	if (!end)
		return false;
	while ((p = strchr(p, ';')) && p < end) {
		p++;
		if (strncasecmp(p, "lr", 2) == 0 && (p[2] == ';' || p[2] == '>' || p[2] == '='))
			return true;
	}
	return false;
}

/* Builds and sends the BYE of @b with CSeq cseq_base + 1. 0 or -ENOMEM / -EINVAL. */
static int bye_send(struct sip_bye *b)
{
	const struct sip_dialog_info *d = &b->d;
	char from[SIP_DIALOG_URI_MAX + SIP_DIALOG_TAG_MAX + 16];
	char to[SIP_DIALOG_URI_MAX + SIP_DIALOG_TAG_MAX + 16];
	char cseq[32], ruri[SIP_DIALOG_URI_MAX + 1], proxy[SIP_DIALOG_DEST_MAX + 40] = "";
	char routes[SIP_DIALOG_ROUTE_MAX + SIP_DIALOG_URI_MAX + 8] = "";

	snprintf(from, sizeof(from), "<%s>;tag=%s", d->local_uri, d->local_tag);
	snprintf(to, sizeof(to), "<%s>;tag=%s", d->remote_uri, d->remote_tag);
	snprintf(cseq, sizeof(cseq), "%u BYE", b->cseq_base);
	snprintf(ruri, sizeof(ruri), "%s", d->remote_target);
	if (d->route[0] && first_route_loose(d->route)) {
		snprintf(routes, sizeof(routes), "%s", d->route);
	} else if (d->route[0]) {
		/* Strict first route: it becomes the Request-URI, the target goes last. */
		const char *end = strchr(d->route, '>');
		size_t n = end ? (size_t)(end - d->route - 1) : 0;

		if (!end || d->route[0] != '<' || n == 0 || n >= sizeof(ruri))
			return -EINVAL;
		memcpy(ruri, d->route + 1, n);
		ruri[n] = '\0';
		snprintf(routes, sizeof(routes), "%s%s<%s>", end[1] == ',' ? end + 2 : "",
			 end[1] == ',' ? "," : "", d->remote_target);
	} else if (d->dest[0]) {
		snprintf(proxy, sizeof(proxy), "sip:%s;transport=%s", d->dest,
			 d->transport[0] ? d->transport : "udp");
	}
	b->nh = nua_handle(b->ua->nua, &b->h, SIPTAG_CALL_ID_STR(d->call_id), SIPTAG_FROM_STR(from),
			   SIPTAG_TO_STR(to), TAG_IF(proxy[0], NUTAG_PROXY(proxy)), TAG_END());
	if (!b->nh)
		return -ENOMEM;
	/* NUTAG_DIALOG(2): nua makes a dialog leg from these headers, its local CSeq from ours.
	 * None sent yet (the callee's side, 0): sofia picks the initial one, as RFC 3261 12.2.1.1
	 * says for an empty local sequence number. */
	nua_method(b->nh, NUTAG_METHOD("BYE"), NUTAG_URL(ruri), NUTAG_DIALOG(2),
		   TAG_IF(b->cseq_base > 0, SIPTAG_CSEQ_STR(cseq)), SIPTAG_CONTACT(SIP_NONE),
		   TAG_IF(routes[0], SIPTAG_ROUTE_STR(routes)), TAG_END());
	snprintf(cseq, sizeof(cseq), "%u", b->cseq_base + 1);
	log_info(b->sid, "sip: BYE for an orphaned dialog (Call-ID %s, CSeq %s) to %s%s%s%s%s",
		 d->call_id, b->cseq_base ? cseq : "new", ruri, routes[0] ? " via " : "", routes,
		 proxy[0] ? " at " : "", proxy);
	return 0;
}

void sip_bye_event(struct sip_bye *b, nua_event_t ev, int status, const char *phrase)
{
	sip_bye_cb cb = b->cb;
	void *arg = b->arg;

	if (ev != nua_r_method) {
		log_debug(b->sid, "sip: %s %d %s on an orphan BYE handle", nua_event_name(ev),
			  status, phrase_of(status, phrase));
		return;
	}
	if (status < 200)
		return;
	if (status == 500 && !b->retried && b->cseq_base > 0 &&
	    b->cseq_base < INT32_MAX - 2 * BYE_RETRY_CSEQ_STEP) {
		log_info(b->sid, "sip: orphan BYE answered 500: again with a higher CSeq");
		b->retried = true;
		nua_handle_bind(b->nh, NULL);
		nua_handle_destroy(b->nh);
		b->nh = NULL;
		b->cseq_base += BYE_RETRY_CSEQ_STEP;
		if (bye_send(b) == 0)
			return;
		status = 500, phrase = "BYE not sent";
	}
	log_info(b->sid, "sip: orphan BYE answered %d %s%s", status, phrase_of(status, phrase),
		 status == 481 ? " (the peer had ended the dialog already)" : "");
	sip_bye_free(b);
	if (cb)
		cb(status, phrase_of(status, phrase), arg);
}

int sip_ua_bye_dialog(struct sip_ua *ua, const struct sip_dialog_info *d, const char *sid,
		      sip_bye_cb cb, void *arg)
{
	struct sip_bye *b;
	int ret;

	if (!ua || ua->closing || !d || !d->call_id[0] || !d->local_tag[0] || !d->remote_tag[0] ||
	    !d->local_uri[0] || !d->remote_uri[0] || !sip_ua_uri_ok(d->remote_target) ||
	    !sip_ua_uri_ok(d->local_uri) || !sip_ua_uri_ok(d->remote_uri) ||
	    d->local_cseq > INT32_MAX - 1 ||
	    strpbrk(d->local_tag, " \t\r\n;,<>\"") || strpbrk(d->remote_tag, " \t\r\n;,<>\"") ||
	    strpbrk(d->call_id, " \t\r\n") || strpbrk(d->route, " \t\r\n\"") ||
	    strpbrk(d->dest, " \t\r\n;<>\"") || strpbrk(d->transport, " \t\r\n;<>\""))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->h.kind = H_BYE;
	b->ua = ua;
	b->d = *d;
	b->cseq_base = d->local_cseq;
	b->cb = cb;
	b->arg = arg;
	snprintf(b->sid, sizeof(b->sid), "%.95s", sid ? sid : d->call_id);
	b->next = ua->byes;
	if (b->next)
		b->next->pprev = &b->next;
	b->pprev = &ua->byes;
	ua->byes = b;
	ret = bye_send(b);
	if (ret < 0)
		sip_bye_free(b);
	return ret;
}

void sip_ua_bye_forget(struct sip_ua *ua, const void *arg)
{
	if (!ua)
		return;
	for (struct sip_bye *b = ua->byes; b; b = b->next) {
		if (b->arg == arg) {
			b->cb = NULL;
			b->arg = NULL;
		}
	}
}
