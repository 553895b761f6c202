/*
 * metrics.h - a small Prometheus metrics registry and its text exposition (format 0.0.4).
 *
 * A registry holds metric families (counters and gauges), each with a fixed list of at most
 * METRICS_MAX_LABELS label names given when it is registered, and the series (one value per
 * combination of label values) set so far. Values are read from the daemon's existing state at
 * scrape time by collectors: metrics_render() runs every collector, then writes every family in
 * the order they were registered, names prefixed (e.g. "rtmp2sip_").
 *
 *   reg = metrics_new("rtmp2sip_")
 *   legs = metrics_add(reg, METRIC_GAUGE, "worker_legs", "Legs carried now.", NULL)
 *   metrics_add_collector(reg, collect, w)      collect(): metric_set(legs, n)
 *   metrics_render(reg, &buf)                   "# HELP rtmp2sip_worker_legs ...\n..."
 *
 * A family whose label values come and go (one series per worker, say) is emptied by its
 * collector with metric_clear() before it is filled, so series of things that are gone vanish.
 * Every family keeps at most METRICS_MAX_SERIES series: beyond that metric_set_l() refuses.
 * Single-threaded, like the loop it runs on.
 */
#ifndef RS_METRICS_H
#define RS_METRICS_H

#include "buf.h"
#include "httpd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_LABELS	3
#define METRICS_MAX_SERIES	256 /* per family */
#define METRICS_MAX_COLLECTORS	8
#define METRICS_MAX_LABEL_VALUE 256 /* bytes of one label value */

/* The Content-Type of metrics_render()'s output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics;
struct metric;

enum metric_type { METRIC_COUNTER, METRIC_GAUGE };

/* Runs at scrape time, before rendering: sets the values of the registry's families. */
typedef void (*metrics_collect_fn)(struct metrics *reg, void *arg);

/* Creates an empty registry whose names get @prefix (copied; "" for none). NULL on ENOMEM. */
struct metrics *metrics_new(const char *prefix);

/* Frees the registry, its families and series; NULL-safe, clears *regp. */
void metrics_destroy(struct metrics **regp);

/*
 * Registers a family: @name ([a-zA-Z_:][a-zA-Z0-9_:]*, the prefix is added), @help (one line
 * of text, copied), @labels a NULL-terminated list of at most METRICS_MAX_LABELS label names
 * ([a-zA-Z_][a-zA-Z0-9_]*, not "__"-prefixed) or NULL for none. A family without labels starts
 * with its one series at 0. Returns the family (owned by the registry), or NULL with errno
 * EINVAL (bad name or labels), EEXIST (name taken) or ENOMEM.
 */
struct metric *metrics_add(struct metrics *reg, enum metric_type type, const char *name,
			   const char *help, const char *const *labels);

/* Adds a collector (called in the order added). 0, or -ENOSPC beyond METRICS_MAX_COLLECTORS. */
int metrics_add_collector(struct metrics *reg, metrics_collect_fn fn, void *arg);

/*
 * Sets the value of the series with label values @values (as many as the family has label
 * names, each at most METRICS_MAX_LABEL_VALUE bytes, any bytes: they are escaped on output),
 * creating it. 0, -EINVAL (a value too long or missing), -ENOSPC (METRICS_MAX_SERIES reached),
 * -ENOMEM.
 */
int metric_set_l(struct metric *m, const char *const *values, double v);

/* Adds @delta to that series (a counter refuses a negative @delta: -EINVAL). As above. */
int metric_add_l(struct metric *m, const char *const *values, double delta);

/* The same for a family without labels. */
int metric_set(struct metric *m, double v);
int metric_add(struct metric *m, double delta);

/* Forgets every series of @m (a family without labels keeps its one series, set to 0). */
void metric_clear(struct metric *m);

/* The value of a series, or 0 when it does not exist (for tests). */
double metric_value_l(const struct metric *m, const char *const *values);

/*
 * Runs the collectors, then appends the text exposition of every family to @out: "# HELP" and
 * "# TYPE" lines, then one line per series, label values and help escaped as the format asks.
 * Returns 0 or -ENOMEM (@out then holds a partial text: discard it).
 */
int metrics_render(struct metrics *reg, struct buf *out);

/* An httpd handler serving registry @reg (struct metrics *): 200 with the exposition, or 500
 * when memory ran out. */
void metrics_http_handler(struct httpd_reply *r, void *reg);

/*
 * A daemon's endpoints: the registry of its families served on /metrics, with /healthz (200
 * "ok" while the loop runs) and /readyz (200 "ready", or 503 "not ready: <reasons>"). The daemon
 * keeps only its table of families, its collector and its readiness rule:
 *
 *   metrics_server_config(&cfg, 9100)            METRICS_PORT / METRICS_BIND; port 0: no server
 *   ms = metrics_server_new(loop, &cfg, &def)    registry + families + collector + HTTP
 *   metrics_server_destroy(&ms)
 */
struct evloop;
struct metrics_server;

/* One row of a daemon's table of families: metrics_add() of type, name, help and labels, the
 * family stored in the struct metric * at byte offset @off of the daemon's struct of families. */
struct metrics_family_def {
	size_t off;
	enum metric_type type;
	const char *name;
	const char *help;
	const char *const *labels;
};

/* True when the daemon is ready; otherwise @why (may be NULL) gets the reasons, "; "-separated. */
typedef bool (*metrics_ready_fn)(const void *arg, char *why, size_t len);

/* What metrics_server_new() serves; every pointer borrowed, and must outlive the server. */
struct metrics_server_def {
	const char *prefix; /* of every name, e.g. "rtmp2sip_" */
	const struct metrics_family_def *families;
	size_t n_families;
	void *slots;		    /* the daemon's struct of families (the offsets' base) */
	metrics_collect_fn collect; /* called with @arg at each scrape */
	metrics_ready_fn ready;	    /* called with @arg for /readyz */
	void *arg;
	const char
	    *bind_hint; /* added to the error logged when the port cannot be bound, or NULL */
};

/*
 * Reads METRICS_PORT (default @default_port) and METRICS_BIND into @cfg (httpd_config_from_env()),
 * and logs when the port is 0 (no endpoints: the caller then makes no server). Returns 0, or
 * -EINVAL after logging which variable is wrong.
 */
int metrics_server_config(struct httpd_config *cfg, uint16_t default_port);

/*
 * Registers the @n families of @defs in @reg, each into the struct metric * at @slots +
 * defs[i].off. Returns 0, or a negative errno of metrics_add() after logging the family.
 */
int metrics_add_families(struct metrics *reg, const struct metrics_family_def *defs, size_t n,
			 void *slots);

/*
 * Creates the registry of @def (families and collector) and serves it on @cfg (port not 0). A
 * port that cannot be bound is logged and the server is still returned, without HTTP
 * (metrics_server_port() 0). Returns NULL with errno EINVAL / EEXIST (a bad family, logged) or
 * ENOMEM.
 */
struct metrics_server *metrics_server_new(struct evloop *loop, const struct httpd_config *cfg,
					  const struct metrics_server_def *def);

/* Stops serving and frees the registry; NULL-safe, clears *msp. */
void metrics_server_destroy(struct metrics_server **msp);

/* The port served; 0 for none (NULL-safe). */
unsigned metrics_server_port(const struct metrics_server *ms);

#endif
