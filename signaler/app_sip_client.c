/*
 * app_sip_client.c - the sip app's clients: one RTMP connection per AOR, the one incoming INVITEs
 * for that AOR go to (app_sip.c holds their calls; app_sip_int.h what the two files share).
 *
 *   connect sip/<user@domain> (authName, authPass, displayName[, rate])
 *        authPass "" --> _result at once (calls are made as the AOR, without a registration)
 *        otherwise   --> REGISTER --2xx--> _result | failure --> _error Connect.Rejected
 *
 * A new connection for an AOR replaces the one before it (whose call ends), unless it comes
 * without a REGISTER and the one before is registered.
 */
#include "app_sip_int.h"

#include "amf.h"
#include "call_policy.h"
#include "callrec.h"
#include "log.h"
#include "players.h"
#include "regrec.h"
#include "sip_ua.h"
#include "strmap.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_MAX       128
#define CLIENT_BUCKETS 256

static struct strmap *clients; /* AOR -> struct sip_client, made with the first client */

/* --- the clients by AOR --------------------------------------------------------------------- */

static void client_unlink(struct sip_client *cl)
{
	if (strmap_get(clients, cl->aor) == cl)
		strmap_del(clients, cl->aor);
}

/* The one connected client whose AOR's user part is @user, found by app_sip_client_for. */
struct user_match {
	const char *user;
	size_t n;
	struct sip_client *found;
	bool ambiguous;
};

static bool match_user(const char *aor, void *val, void *arg)
{
	struct sip_client *cl = val;
	struct user_match *um = arg;

	if (!cl->connect_pending && strncmp(aor, um->user, um->n) == 0 && aor[um->n] == '@') {
		um->ambiguous = um->found != NULL;
		um->found = cl;
	}
	return false;
}

struct sip_client *app_sip_client_for(const char *to, const char *ruri)
{
	char aor[AOR_MAX + 1], user[AOR_MAX + 1];
	struct user_match um = {.user = user};
	const char *p;
	size_t n;

	for (int pass = 0; pass < 2; pass++) {
		p = pass == 0 ? to : ruri;
		if (!p)
			continue;
		if (strncasecmp(p, "sip:", 4) == 0)
			p += 4;
		else if (strncasecmp(p, "sips:", 5) == 0)
			p += 5;
		n = strcspn(p, ";?>");
		if (n > AOR_MAX)
			continue;
		memcpy(aor, p, n);
		aor[n] = '\0';
		if (pass == 0) {
			struct sip_client *cl = strmap_get(clients, aor);

			if (cl && !cl->connect_pending)
				return cl;
			continue;
		}
		n = strcspn(aor, "@");
		if (!aor[n])
			return NULL;
		memcpy(user, aor, n);
		user[n] = '\0';
		um.n = n;
		strmap_sweep(clients, match_user, &um);
	}
	return um.ambiguous ? NULL : um.found;
}

/* --- registration ---------------------------------------------------------------------------- */

void app_sip_client_free(struct sip_client *cl)
{
	struct sip_client *holder = strmap_get(clients, cl->aor);

	if (cl->call) {
		cl->call->cl = NULL;
		app_sip_call_end(cl->call, &(struct pc_end){.local = CALLREC_END_CLIENT_LEFT,
							    .reason = "the RTMP client left"});
		cl->call = NULL;
	}
	if (holder && holder != cl && holder->reg) {
		sip_reg_drop(&cl->reg);
	} else {
		if (cl->reg && !cl->connect_pending)
			regrec_delete(cl->aor);
		sip_reg_destroy(&cl->reg);
	}
	client_unlink(cl);
	players_free(&cl->players); /* the far end's kept sequence headers */
	free(cl);
}

/*
 * Makes @cl the client of its AOR, closing the connection it replaces (whose call ends).
 * 0, or -ENOMEM (@cl is not installed).
 */
static int client_install(struct sip_client *cl)
{
	struct sip_client *old = strmap_get(clients, cl->aor);

	if (old) {

		log_info(rtmp_conn_sid(cl->conn), "sip: %s replaces %s", cl->aor,
			 rtmp_conn_sid(old->conn));
		client_unlink(old);
		if (old->call) {
			old->call->cl = NULL;
			app_sip_call_end(
			    old->call, &(struct pc_end){.local = CALLREC_END_CLIENT_LEFT,
							.reason = "replaced by a new connection"});
			old->call = NULL;
		}
		if (cl->reg)
			sip_reg_drop(&old->reg); /* our REGISTER refreshed the same binding */
		rtmp_conn_close(old->conn, "replaced by a new connection for %s", cl->aor);
	}
	if (!clients)
		clients = strmap_new(CLIENT_BUCKETS, 0);
	return strmap_put(clients, cl->aor, cl) < 0 ? -ENOMEM : 0;
}

void app_sip_reg_result(struct sip_reg *reg, int status, const char *phrase, int expires, void *arg)
{
	struct sip_client *cl = arg;
	char text[REASON_MAX + 1];

	if (!cl)
		return;
	status_text(text, sizeof(text), status, phrase);
	if (status >= 200 && status < 300) {
		struct reg_record rec = {0};

		snprintf(rec.aor, sizeof(rec.aor), "%s", cl->aor);
		snprintf(rec.registrar, sizeof(rec.registrar), "%s",
			 app_sip_registrar ? app_sip_registrar : "");
		snprintf(rec.rtmp_client, sizeof(rec.rtmp_client), "%.63s",
			 rtmp_conn_sid(cl->conn));
		snprintf(rec.display, sizeof(rec.display), "%s", cl->display);
		rec.expires_s = expires > 0 ? (uint32_t)expires : app_sip_reg_expires;
		rec.registered_ms = state_now_ms();
		regrec_write(&rec);
	}
	if (cl->connect_pending) {
		cl->connect_pending = false;
		if (status >= 200 && status < 300) {
			log_info(rtmp_conn_sid(cl->conn), "sip: %s registered for %d s", cl->aor,
				 expires);
			if (client_install(cl) == 0) {
				rtmp_conn_accept(cl->conn);
				return;
			}
			snprintf(text, sizeof(text), "out of memory");
		}
		/* The core forgets the app on reject: free the client first. */
		{
			struct rtmp_conn *conn = cl->conn;

			rtmp_conn_set_app_data(conn, NULL);
			app_sip_client_free(cl);
			rtmp_conn_reject(conn, text);
		}
		return;
	}
	if (status < 200 || status >= 300)
		log_warn(rtmp_conn_sid(cl->conn), "sip: registration refresh of %s failed: %s",
			 cl->aor, text);
}

/* The AOR of "sip/<aor>", checked and normalised (domain in lower case). */
static int aor_of(const char *app_name, char *aor, size_t len, char *why, size_t whylen)
{
	static const char user_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					 "0123456789-_.!~*'()&=+$,;?/";
	static const char host_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					 "0123456789-.:[]";
	const char *p = strchr(app_name, '/');
	const char *at;

	if (!p || !p[1]) {
		snprintf(why, whylen, "connect to sip/<user@domain>");
		return -EINVAL;
	}
	p++;
	if (strncasecmp(p, "sip:", 4) == 0)
		p += 4;
	at = strchr(p, '@');
	if (!at || at == p || !at[1] || strlen(p) >= len || strchr(at + 1, '@') ||
	    strspn(p, user_chars) != (size_t)(at - p) ||
	    strspn(at + 1, host_chars) != strlen(at + 1)) {
		snprintf(why, whylen, "'%.64s' is not a SIP address of record (user@domain)", p);
		return -EINVAL;
	}
	snprintf(aor, len, "%s", p);
	for (char *h = aor + (at - p) + 1; *h; h++)
		*h = (char)tolower((unsigned char)*h);
	return 0;
}

/* A connect argument: a string without control characters of at most @max bytes, or none. */
static int conn_arg(const struct amf_value *args, size_t i, char *out, size_t max,
		    const char *what, char *why, size_t whylen)
{
	const struct amf_value *v = amf_index(args, i);
	const char *s;
	size_t len;

	out[0] = '\0';
	if (!v || amf_type_of(v) == AMF_NULL || amf_type_of(v) == AMF_UNDEFINED)
		return 0;
	s = amf_get_string(v, &len);
	if (!s || len >= max) {
		snprintf(why, whylen, "%s must be a string of at most %zu bytes", what, max - 1);
		return -EINVAL;
	}
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f) {
			snprintf(why, whylen, "%s has control characters", what);
			return -EINVAL;
		}
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

int app_sip_connect(struct rtmp_conn *c, const struct amf_value *cmdobj,
		    const struct amf_value *args, char *why, size_t whylen)
{
	char aor[AOR_MAX + 1], auth[AUTH_MAX + 1], pass[AUTH_MAX + 1], rate[16];
	struct sip_client *cl;

	if (!app_sip_bridge || !app_sip_ua) {
		snprintf(why, whylen, "sip: no SIP or media in this signaler");
		return -EINVAL;
	}
	if (aor_of(rtmp_conn_app_name(c), aor, sizeof(aor), why, whylen) < 0)
		return -EINVAL;
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	if (conn_arg(args, 3, auth, sizeof(auth), "authName", why, whylen) < 0 ||
	    conn_arg(args, 4, pass, sizeof(pass), "authPass", why, whylen) < 0 ||
	    conn_arg(args, 5, cl->display, sizeof(cl->display), "displayName", why, whylen) < 0 ||
	    conn_arg(args, 6, rate, sizeof(rate), "rate", why, whylen) < 0) {
		free(cl);
		return -EINVAL;
	}
	if (rate[0] && strcmp(rate, "wideband") != 0 && strcmp(rate, "narrowband") != 0) {
		snprintf(why, whylen, "rate must be \"wideband\" or \"narrowband\"");
		free(cl);
		return -EINVAL;
	}
	cl->narrowband = strcmp(rate, "narrowband") == 0;
	cl->conn = c;
	snprintf(cl->aor, sizeof(cl->aor), "%s", aor);
	if (!pass[0]) {
		/* No REGISTER: such a client may not take the place of a registered one. */
		struct sip_client *old = strmap_get(clients, aor);

		if (old && old->reg) {
			snprintf(why, whylen, "%s is in use by a registered client", aor);
			free(cl);
			return -EBUSY;
		}
		if (client_install(cl) < 0) {
			snprintf(why, whylen, "out of memory");
			free(cl);
			return -ENOMEM;
		}
		rtmp_conn_set_app_data(c, cl);
		return 0;
	}
	/* Without SIP_REGISTRAR the REGISTER goes to the AOR's domain, which the client names:
	 * as for a call, the destination list and the attempt rates decide. */
	if (!app_sip_registrar) {
		char uri[AOR_MAX + 8];

		snprintf(uri, sizeof(uri), "sip:%s", aor);
		if (call_policy_attempt(rtmp_conn_peer_ip(c), uri, why, whylen) < 0) {
			log_warn(rtmp_conn_sid(c), "sip: REGISTER of %s from %s refused: %s", aor,
				 rtmp_conn_peer_ip(c), why);
			free(cl);
			return -EACCES;
		}
	}
	/* Registered clients join the table when their REGISTER succeeds. */
	cl->reg = sip_ua_register(app_sip_ua, aor, auth[0] ? auth : NULL, pass,
				  cl->display[0] ? cl->display : NULL, app_sip_reg_expires,
				  app_sip_registrar, cl);
	if (!cl->reg) {
		snprintf(why, whylen, "cannot register %s: %s", aor, strerror(errno));
		free(cl);
		return -EINVAL;
	}
	rtmp_conn_set_app_data(c, cl);
	cl->connect_pending = true;
	return 1;
}
