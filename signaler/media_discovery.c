/*
 * media_discovery.c - the media bridge's workers found in Redis (see media.h).
 *
 * Workers: WORKER_ENDPOINTS at creation; with Redis, every discovery_ms the live worker records
 * (state_workers_list) add the endpoints not known yet; a discovered worker that is dead and has
 * been missing from Redis for remove_grace_ms is removed. With CURVE a record is used only when
 * the key it announces is in our allowed list (Redis is not trusted: anyone who can write it
 * could announce a worker); a discovered worker announcing a new key is connected again.
 */
#include "media_int.h"

#include "curve.h"
#include "dispatcher.h"
#include "evloop.h"
#include "log.h"
#include "redis.h"
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void remove_worker(struct media *m, size_t idx, const char *why)
{
	struct dispatcher_worker *w = m->workers[idx].w;

	log_info(media_wname(w), "mediaworker removed: %s", why);
	memmove(&m->workers[idx], &m->workers[idx + 1], (m->n_workers - idx - 1) * sizeof(*m->workers));
	m->n_workers--;
	/* Requests still pending on it end with -ECANCELED from here (their legs try elsewhere);
	 * then nothing may point at it: the dispatcher frees it at the end of the iteration. */
	dispatcher_remove_worker(m->d, w);
	media_orphans_settle(m, w, false);
	for (struct media_leg *leg = m->legs; leg; leg = leg->next) {
		if (leg->lost_w == w)
			leg->lost_w = NULL;
		if (leg->w == w) /* not expected: a dead worker holds no leg of ours */
			leg->w = NULL;
	}
}

/*
 * The key to connect to worker @rec with: "" without CURVE, its announced key when we allow it,
 * else NULL (refused: logged and counted once per worker and key).
 */
static const char *discovered_key(struct media *m, const struct worker_record *rec)
{
	if (!curve_enabled(m->cfg.curve))
		return "";
	if (curve_allows(m->cfg.curve, rec->curve_key))
		return rec->curve_key;
	for (unsigned i = 0; i < REFUSED_SEEN; i++)
		if (strcmp(m->refused[i].id, rec->worker_id) == 0 &&
		    strcmp(m->refused[i].key, rec->curve_key) == 0)
			return NULL;
	snprintf(m->refused[m->refused_next].id, sizeof(m->refused[0].id), "%s", rec->worker_id);
	snprintf(m->refused[m->refused_next].key, sizeof(m->refused[0].key), "%s", rec->curve_key);
	m->refused_next = (m->refused_next + 1) % REFUSED_SEEN;
	m->workers_refused++;
	log_warn(rec->worker_id, "mediaworker in Redis (ctl %s) not used: its CURVE key %s is not in "
				 "our allowed list (CURVE_ALLOWED_KEYS%s)",
		 rec->ctl_endpoint, rec->curve_key[0] ? rec->curve_key : "(none announced)",
		 rec->curve_key[0] ? "; add it and SIGHUP to use it" : "");
	return NULL;
}

static void on_workers_listed(int err, const char *errmsg, const struct worker_record *recs,
			      size_t n, void *arg)
{
	struct media *m = arg;
	uint64_t now;

	m->listing = false;
	if (err) {
		if (err != -ECANCELED && !m->redis_failing)
			log_warn(SID, "worker discovery: %s", errmsg);
		m->redis_failing = err != -ECANCELED;
		return;
	}
	if (m->redis_failing)
		log_info(SID, "worker discovery: Redis answers again");
	m->redis_failing = false;
	now = evloop_now(m->loop);
	for (size_t i = 0; i < n; i++) {
		const struct worker_record *rec = &recs[i];
		struct dispatcher_worker *w = dispatcher_find_endpoint(m->d, rec->ctl_endpoint);
		const char *key = discovered_key(m, rec);
		struct dispatcher_worker_info in;
		struct media_worker *mw;
		int ret;

		if (!key)
			continue;
		mw = w ? media_worker_find(m, w) : NULL;
		if (w)
			dispatcher_worker_info(w, &in);
		if (mw && mw->discovered && strcmp(in.server_key, key) != 0) {
			/* The worker there restarted with another key pair: connect anew. */
			remove_worker(m, (size_t)(mw - m->workers), "it announces a new CURVE key");
			w = NULL;
		}
		if (w) {
			if (mw)
				mw->last_listed = now;
			continue;
		}
		ret = dispatcher_add_worker(m->d, rec->ctl_endpoint, rec->media_endpoint,
					    key[0] ? key : NULL, &w);
		if (ret < 0) {
			log_warn(rec->worker_id, "cannot add discovered mediaworker (ctl %s, media %s): %s",
				 rec->ctl_endpoint, rec->media_endpoint, strerror(-ret));
			continue;
		}
		if (media_worker_add(m, w, true) < 0) {
			dispatcher_remove_worker(m->d, w);
			continue;
		}
		log_info(rec->worker_id, "mediaworker discovered in Redis: ctl %s, media %s, host %s, %u legs%s%s",
			 rec->ctl_endpoint, rec->media_endpoint, rec->host, rec->legs,
			 key[0] ? ", key " : "", key);
	}
	for (size_t i = m->n_workers; i-- > 0;) {
		struct media_worker *mw = &m->workers[i];

		if (mw->discovered && !dispatcher_worker_alive(mw->w) &&
		    now - mw->last_listed >= m->cfg.remove_grace_ms)
			remove_worker(m, i, "gone from Redis and dead");
	}
}

static void discover(struct media *m)
{
	int ret;

	if (!m->redis || m->listing || !redis_is_up(m->redis))
		return;
	ret = state_workers_list(m->redis, 0, 0, on_workers_listed, m);
	if (ret == 0)
		m->listing = true;
	else
		log_debug(SID, "worker discovery not sent: %s", strerror(-ret));
}

void media_on_discovery_timer(struct evloop *loop, struct ev_timer *t, void *arg)
{
	struct media *m = arg;

	(void)loop;
	discover(m);
	evloop_timer_start(t, m->cfg.discovery_ms);
}

void media_on_redis_up(struct redis *r, void *arg)
{
	(void)r;
	discover(arg);
}
