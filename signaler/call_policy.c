/*
 * call_policy.c - limits on the calls RTMP clients place toward SIP (see call_policy.h).
 *
 * Rates are token buckets refilled continuously (a minute's allowance, burst of the same size);
 * the global one and the client's one must both have a token. Clients are kept in a strmap by
 * address; a sweep (at most once a second, when the map is half full) forgets those with no
 * call up whose bucket is full again.
 */
#include "call_policy.h"

#include "config.h"
#include "dest.h"
#include "log.h"
#include "strmap.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PATTERN_MAX 128

enum pattern_kind { PAT_DOMAIN, PAT_PREFIX, PAT_GLOB };

struct pattern {
	enum pattern_kind kind;
	char text[PATTERN_MAX + 1]; /* lower-cased for domains and globs */
};

struct bucket {
	double tokens;
	uint64_t last_ms;
};

struct client {
	unsigned active;
	struct bucket rate;
};

static struct {
	bool ready;
	struct pattern patterns[CALL_POLICY_MAX_PATTERNS];
	size_t n_patterns; /* 0: any destination */
	int64_t max_active, max_active_client, per_minute, per_minute_client;
	struct strmap *clients;
	struct bucket rate;
	uint64_t active;
	uint64_t refused[CALL_POLICY_REASONS];
	uint64_t last_sweep_ms;
} P;

static const char *const reason_names[CALL_POLICY_REASONS] = {
    [CALL_POLICY_DESTINATION] = "destination", [CALL_POLICY_CLIENT_RATE] = "client_rate",
    [CALL_POLICY_RATE] = "rate",	       [CALL_POLICY_CLIENT_ACTIVE] = "client_active",
    [CALL_POLICY_ACTIVE] = "active",	       [CALL_POLICY_AUTH] = "auth",
};

const char *call_policy_reason_name(enum call_policy_reason reason)
{
	return (unsigned)reason < CALL_POLICY_REASONS ? reason_names[reason] : "?";
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static int add_pattern(const char *s, size_t len)
{
	struct pattern *p;

	if (len == 1 && s[0] == '*') {
		P.n_patterns = 0; /* any */
		return 1;
	}
	if (len > PATTERN_MAX) {
		log_error(NULL, "config: CALL_DESTINATIONS: an entry is longer than %d bytes",
			  PATTERN_MAX);
		return -EINVAL;
	}
	if (P.n_patterns == CALL_POLICY_MAX_PATTERNS) {
		log_error(NULL, "config: CALL_DESTINATIONS: more than %d entries",
			  CALL_POLICY_MAX_PATTERNS);
		return -EINVAL;
	}
	p = &P.patterns[P.n_patterns++];
	memcpy(p->text, s, len);
	p->text[len] = '\0';
	if (memchr(s, '@', len)) {
		p->kind = PAT_GLOB;
		lower(p->text);
	} else if (s[0] == '+' || isdigit((unsigned char)s[0])) {
		p->kind = PAT_PREFIX;
		if (strspn(p->text, "+0123456789#*") != len) {
			log_error(NULL, "config: CALL_DESTINATIONS: '%s' is not a number prefix",
				  p->text);
			return -EINVAL;
		}
	} else {
		p->kind = PAT_DOMAIN;
		lower(p->text);
		if (strspn(p->text, "abcdefghijklmnopqrstuvwxyz0123456789.-") != len) {
			log_error(NULL, "config: CALL_DESTINATIONS: '%s' is neither a domain, a "
					"number prefix nor a user@host glob",
				  p->text);
			return -EINVAL;
		}
	}
	return 0;
}

/* 0, or -EINVAL (logged). A "*" entry anywhere means any destination. */
static int parse_destinations(const char *list)
{
	bool any = false;

	P.n_patterns = 0;
	while (list && *list) {
		size_t len = strcspn(list, ","), n = len;
		const char *s = list;
		int ret;

		while (n && isspace((unsigned char)*s))
			s++, n--;
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		list += len + (list[len] == ',');
		if (!n)
			continue;
		ret = add_pattern(s, n);
		if (ret < 0)
			return ret;
		any = any || ret == 1;
	}
	if (any)
		P.n_patterns = 0;
	return 0;
}

int call_policy_init(void)
{
	const char *dest = config_str("CALL_DESTINATIONS", "");

	call_policy_shutdown();
	if (config_int("CALL_MAX_ACTIVE", 1000, 1, 1000000, &P.max_active) < 0 ||
	    config_int("CALL_MAX_ACTIVE_PER_CLIENT", 4, 1, 1000000, &P.max_active_client) < 0 ||
	    config_int("CALL_ATTEMPTS_PER_MINUTE", 600, 1, 6000000, &P.per_minute) < 0 ||
	    config_int("CALL_ATTEMPTS_PER_MINUTE_PER_CLIENT", 10, 1, 6000000,
		       &P.per_minute_client) < 0 ||
	    parse_destinations(dest) < 0)
		return -EINVAL;
	P.clients = strmap_new(1024, CALL_POLICY_MAX_CLIENTS);
	if (!P.clients)
		return -ENOMEM;
	P.rate.tokens = (double)P.per_minute;
	P.rate.last_ms = now_ms();
	P.ready = true;
	log_info(NULL,
		 "calls out: %s destination%s; at most %lld up (%lld per client), %lld attempts a "
		 "minute (%lld per client)",
		 P.n_patterns ? "listed" : "any", P.n_patterns ? "s only (CALL_DESTINATIONS)" : "",
		 (long long)P.max_active, (long long)P.max_active_client, (long long)P.per_minute,
		 (long long)P.per_minute_client);
	return 0;
}

void call_policy_shutdown(void)
{
	strmap_destroy(&P.clients, free);
	memset(&P, 0, sizeof(P));
}

/* Refills @b at @per_minute a minute, up to @per_minute, to time @now. */
static void refill(struct bucket *b, int64_t per_minute, uint64_t now)
{
	if (now > b->last_ms) {
		b->tokens += (double)(now - b->last_ms) * (double)per_minute / 60000.0;
		if (b->tokens > (double)per_minute)
			b->tokens = (double)per_minute;
	}
	b->last_ms = now;
}

static bool destination_allowed(const char *uri)
{
	struct dest_parts d;
	char target[2 * DEST_URI_MAX + 16];
	size_t hl;

	if (P.n_patterns == 0)
		return true;
	if (dest_parts(uri, &d) < 0)
		return false;
	/* what the globs see: "user@host[:port]", lower-cased, IPv6 in brackets */
	snprintf(target, sizeof(target), "%s%s%s%s%s", d.user, d.user[0] ? "@" : "",
		 strchr(d.host, ':') ? "[" : "", d.host, strchr(d.host, ':') ? "]" : "");
	if (d.port)
		snprintf(target + strlen(target), sizeof(target) - strlen(target), ":%u", d.port);
	lower(target);
	hl = strlen(d.host);
	for (size_t i = 0; i < P.n_patterns; i++) {
		const struct pattern *p = &P.patterns[i];
		size_t pl = strlen(p->text);

		switch (p->kind) {
		case PAT_GLOB:
			if (fnmatch(p->text, target, FNM_NOESCAPE) == 0)
				return true;
			break;
		case PAT_PREFIX:
			if (d.user[0] && strncmp(d.user, p->text, pl) == 0)
				return true;
			break;
		case PAT_DOMAIN:
			if (strcmp(d.host, p->text) == 0 ||
			    (hl > pl && d.host[hl - pl - 1] == '.' && strcmp(d.host + hl - pl, p->text) == 0))
				return true;
			break;
		}
	}
	return false;
}

static bool forget_idle(const char *key, void *val, void *arg)
{
	struct client *c = val;
	uint64_t now = *(const uint64_t *)arg;

	(void)key;
	refill(&c->rate, P.per_minute_client, now);
	if (c->active || c->rate.tokens < (double)P.per_minute_client)
		return false;
	free(c);
	return true;
}

static struct client *client_of(const char *ip, uint64_t now)
{
	struct client *c = strmap_get(P.clients, ip);

	if (c)
		return c;
	if (strmap_count(P.clients) >= CALL_POLICY_MAX_CLIENTS / 2 &&
	    now - P.last_sweep_ms >= 1000) {
		P.last_sweep_ms = now;
		strmap_sweep(P.clients, forget_idle, &now);
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->rate.tokens = (double)P.per_minute_client;
	c->rate.last_ms = now;
	if (strmap_put(P.clients, ip, c) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

/* Counts a refusal for @r; returns @err. */
static int refuse(enum call_policy_reason r, int err)
{
	P.refused[r]++;
	return err;
}

/* The checks of a call (@call) or of another attempt that sends SIP where a client says. */
static int admit(const char *client, const char *uri, uint64_t now, bool call, char *why,
		 size_t whylen)
{
	struct client *c;

	if (!P.ready)
		return 0; /* not initialised: no limits (unit tests of the apps) */
	if (!destination_allowed(uri)) {
		P.refused[CALL_POLICY_DESTINATION]++;
		snprintf(why, whylen, "call: destination %.200s is not allowed (CALL_DESTINATIONS)",
			 uri);
		return -EACCES;
	}
	c = client_of(client ? client : "?", now);
	if (!c) {
		snprintf(why, whylen, "call: too many clients calling (%zu tracked): try later",
			 strmap_count(P.clients));
		return refuse(CALL_POLICY_CLIENT_RATE, -EAGAIN);
	}
	if (call && c->active >= (unsigned)P.max_active_client) {
		snprintf(why, whylen,
			 "call: this client has %u calls up already (CALL_MAX_ACTIVE_PER_CLIENT)",
			 c->active);
		return refuse(CALL_POLICY_CLIENT_ACTIVE, -EBUSY);
	}
	if (call && P.active >= (uint64_t)P.max_active) {
		snprintf(why, whylen,
			 "call: the gateway has %llu calls up, its limit (CALL_MAX_ACTIVE)",
			 (unsigned long long)P.active);
		return refuse(CALL_POLICY_ACTIVE, -EBUSY);
	}
	refill(&c->rate, P.per_minute_client, now);
	if (c->rate.tokens < 1.0) {
		snprintf(why, whylen,
			 "call: more than %lld call attempts a minute from this client "
			 "(CALL_ATTEMPTS_PER_MINUTE_PER_CLIENT): try later",
			 (long long)P.per_minute_client);
		return refuse(CALL_POLICY_CLIENT_RATE, -EAGAIN);
	}
	refill(&P.rate, P.per_minute, now);
	if (P.rate.tokens < 1.0) {
		snprintf(why, whylen,
			 "call: more than %lld call attempts a minute at the gateway "
			 "(CALL_ATTEMPTS_PER_MINUTE): try later",
			 (long long)P.per_minute);
		return refuse(CALL_POLICY_RATE, -EAGAIN);
	}
	c->rate.tokens -= 1.0;
	P.rate.tokens -= 1.0;
	if (call) {
		c->active++;
		P.active++;
	}
	return 0;
}

int call_policy_admit_at(const char *client, const char *uri, uint64_t now, char *why,
			 size_t whylen)
{
	return admit(client, uri, now, true, why, whylen);
}

int call_policy_admit(const char *client, const char *uri, char *why, size_t whylen)
{
	return admit(client, uri, now_ms(), true, why, whylen);
}

int call_policy_attempt(const char *client, const char *uri, char *why, size_t whylen)
{
	return admit(client, uri, now_ms(), false, why, whylen);
}

void call_policy_release(const char *client)
{
	struct client *c;

	if (!P.ready)
		return;
	c = strmap_get(P.clients, client ? client : "?");
	if (c && c->active)
		c->active--;
	if (P.active)
		P.active--;
}

void call_policy_count(enum call_policy_reason reason)
{
	if ((unsigned)reason < CALL_POLICY_REASONS)
		P.refused[reason]++;
}

uint64_t call_policy_refused(enum call_policy_reason reason)
{
	return (unsigned)reason < CALL_POLICY_REASONS ? P.refused[reason] : 0;
}

uint64_t call_policy_active(void)
{
	return P.active;
}
