/*
 * sip_reg.c - the SIP user agent's registrations (sip_ua.h; what it shares with sip_ua.c in
 * sip_ua_int.h).
 *
 * Registrations: nua_register(); a 401/407 is answered once per attempt with nua_authenticate()
 * (again only for stale=true); each final outcome goes to reg_result. sip_reg_destroy() sends
 * the un-REGISTER and frees the registration on its final response.
 *
 * Logs carry "reg:<aor>" as the session id.
 */
#include "sip_ua_int.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>

/* A display name fit for quoting: printable, no quote or backslash. */
static bool display_ok(const char *d)
{
	if (strlen(d) > 128)
		return false;
	for (const char *p = d; *p; p++)
		if ((unsigned char)*p < ' ' || *p == '"' || *p == '\\')
			return false;
	return true;
}

void sip_reg_free(struct sip_reg *reg)
{
	if (reg->nh) {
		nua_handle_bind(reg->nh, NULL);
		nua_handle_destroy(reg->nh);
	}
	*reg->pprev = reg->next;
	if (reg->next)
		reg->next->pprev = reg->pprev;
	free(reg->sid);
	free(reg->aor_uri);
	free(reg->from);
	free(reg->user);
	free(reg->auth_user);
	free(reg->password);
	free(reg);
}

static int granted_expires(const struct sip_reg *reg, sip_t const *sip)
{
	sip_contact_t const *m, *first = NULL;

	for (m = sip ? sip->sip_contact : NULL; m; m = m->m_next) {
		if (!m->m_expires)
			continue;
		if (!first)
			first = m;
		if (m->m_url->url_user && strcmp(m->m_url->url_user, reg->user) == 0)
			return atoi(m->m_expires);
	}
	if (first)
		return atoi(first->m_expires);
	if (sip && sip->sip_expires)
		return (int)sip->sip_expires->ex_delta;
	return (int)reg->expires;
}

void sip_reg_event(struct sip_reg *reg, nua_event_t ev, int status, const char *phrase,
		   sip_t const *sip)
{
	struct sip_ua *ua = reg->ua;
	int expires = 0;

	if (ev != nua_r_register && ev != nua_r_unregister) {
		log_debug(reg->sid, "sip: %s %d %s", nua_event_name(ev), status,
			  phrase_of(status, phrase));
		return;
	}
	if (status < 200)
		return;
	if ((status == 401 || status == 407) &&
	    (reg->auth_tries == 0 || sip_ua_challenge_stale(sip))) {
		if (sip_ua_auth_answer(reg->nh, sip, reg->auth_user, reg->password,
				       reg->sid) == 0) {
			reg->auth_tries++;
			return;
		}
	}
	reg->auth_tries = 0;
	reg->pending = false;
	if (ev == nua_r_unregister || reg->destroying) {
		log_info(reg->sid, "sip: un-REGISTER answered %d %s", status,
			 phrase_of(status, phrase));
		if (ev == nua_r_unregister)
			sip_reg_free(reg);
		return;
	}
	reg->registered = status < 300;
	if (reg->registered) {
		/* the registrar as reached: it sends this AOR's calls */
		sip_ua_learn_source(ua, ua->nua, "a registrar");
		expires = granted_expires(reg, sip);
		log_info(reg->sid, "sip: registered, expires %d", expires);
	} else {
		log_warn(reg->sid, "sip: REGISTER failed %d %s", status, phrase_of(status, phrase));
	}
	if (ua->cb.reg_result)
		ua->cb.reg_result(reg, status, phrase_of(status, phrase), expires, reg->arg);
}

/* ---- public API ---- */

struct sip_reg *sip_ua_register(struct sip_ua *ua, const char *aor, const char *auth_user,
				const char *password, const char *display, unsigned expires,
				const char *registrar, void *arg)
{
	struct sip_reg *reg;
	const char *at;
	char exp[16];

	if (aor && strncasecmp(aor, "sip:", 4) == 0)
		aor += 4;
	at = aor ? strchr(aor, '@') : NULL;
	if (!at || at == aor || !at[1] || strlen(aor) > 256 || strpbrk(aor, " \t\r\n<>\";") ||
	    (display && !display_ok(display)) || (registrar && !sip_ua_uri_ok(registrar)) ||
	    (auth_user && strpbrk(auth_user, ":\r\n")) || (password && strpbrk(password, "\r\n")) ||
	    ua->closing) {
		errno = EINVAL;
		return NULL;
	}
	reg = calloc(1, sizeof(*reg));
	if (!reg)
		return NULL;
	reg->h.kind = H_REG;
	reg->ua = ua;
	reg->arg = arg;
	reg->expires = expires ? expires : 3600;
	reg->user = strndup(aor, (size_t)(at - aor));
	reg->auth_user = xstrdup(auth_user ? auth_user : reg->user);
	reg->password = xstrdup(password);
	if (asprintf(&reg->aor_uri, "sip:%s", aor) < 0)
		reg->aor_uri = NULL;
	if (asprintf(&reg->sid, "reg:%s", aor) < 0)
		reg->sid = NULL;
	if (asprintf(&reg->from, "%s%s%s<sip:%s>", display ? "\"" : "", display ? display : "",
		     display ? "\" " : "", aor) < 0)
		reg->from = NULL;
	reg->next = ua->regs;
	if (reg->next)
		reg->next->pprev = &reg->next;
	reg->pprev = &ua->regs;
	ua->regs = reg;
	if (!reg->user || !reg->auth_user || (password && !reg->password) || !reg->aor_uri ||
	    !reg->sid || !reg->from)
		goto out_free;
	reg->nh = nua_handle(ua->nua, &reg->h, SIPTAG_TO_STR(reg->aor_uri),
			     SIPTAG_FROM_STR(reg->from), TAG_END());
	if (!reg->nh)
		goto out_free;
	snprintf(exp, sizeof(exp), "%u", reg->expires);
	reg->pending = true;
	nua_register(reg->nh, NUTAG_M_USERNAME(reg->user),
		     TAG_IF(display != NULL, NUTAG_M_DISPLAY(display)), SIPTAG_EXPIRES_STR(exp),
		     TAG_IF(registrar != NULL, NUTAG_REGISTRAR(registrar)), TAG_END());
	log_info(reg->sid, "sip: REGISTER %s (expires %u)%s%s", reg->aor_uri, reg->expires,
		 registrar ? " at " : "", registrar ? registrar : "");
	return reg;

out_free:
	sip_reg_free(reg);
	errno = ENOMEM;
	return NULL;
}

void sip_reg_destroy(struct sip_reg **regp)
{
	struct sip_reg *reg = regp ? *regp : NULL;

	if (!reg)
		return;
	*regp = NULL;
	if (reg->destroying)
		return;
	reg->destroying = true;
	reg->arg = NULL;
	if (reg->registered || reg->pending) {
		log_info(reg->sid, "sip: un-REGISTER %s", reg->aor_uri);
		reg->pending = true;
		nua_unregister(reg->nh, TAG_END());
		return;
	}
	sip_reg_free(reg);
}

void sip_reg_drop(struct sip_reg **regp)
{
	struct sip_reg *reg = regp ? *regp : NULL;

	if (!reg)
		return;
	*regp = NULL;
	if (reg->destroying)
		return;
	log_info(reg->sid, "sip: %s handed over (no un-REGISTER)", reg->aor_uri);
	sip_reg_free(reg);
}

bool sip_reg_registered(const struct sip_reg *reg)
{
	return reg->registered;
}
