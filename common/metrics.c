/*
 * metrics.c - a small Prometheus metrics registry and its text exposition (see metrics.h).
 *
 * Families are a list in registration order; each holds a growable array of series, looked up
 * linearly (a family has few series: at most METRICS_MAX_SERIES, usually a handful).
 *
 * A daemon's server (metrics_server_*) routes three paths of one httpd:
 *
 *   GET /metrics --> metrics_http_handler --> collectors, then the exposition
 *   GET /healthz --> "ok"
 *   GET /readyz  --> def.ready(def.arg): "ready", or 503 "not ready: <reasons>"
 */
#include "metrics.h"

#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct series {
	char *values[METRICS_MAX_LABELS];
	double v;
};

struct metric {
	struct metric *next;
	enum metric_type type;
	char *name; /* with the prefix */
	char *help;
	char *labels[METRICS_MAX_LABELS];
	size_t n_labels;
	struct series *series;
	size_t n_series, cap_series;
};

struct collector {
	metrics_collect_fn fn;
	void *arg;
};

struct metrics {
	char *prefix;
	struct metric *first, *last;
	struct collector collectors[METRICS_MAX_COLLECTORS];
	size_t n_collectors;
};

struct metrics *metrics_new(const char *prefix)
{
	struct metrics *reg = calloc(1, sizeof(*reg));

	if (!reg)
		return NULL;
	reg->prefix = strdup(prefix ? prefix : "");
	if (!reg->prefix) {
		free(reg);
		return NULL;
	}
	return reg;
}

static void series_free(struct series *s, size_t n_labels)
{
	for (size_t i = 0; i < n_labels; i++)
		free(s->values[i]);
}

static void metric_free(struct metric *m)
{
	for (size_t i = 0; i < m->n_series; i++)
		series_free(&m->series[i], m->n_labels);
	for (size_t i = 0; i < m->n_labels; i++)
		free(m->labels[i]);
	free(m->series);
	free(m->name);
	free(m->help);
	free(m);
}

void metrics_destroy(struct metrics **regp)
{
	struct metrics *reg = regp ? *regp : NULL;

	if (!reg)
		return;
	while (reg->first) {
		struct metric *m = reg->first;

		reg->first = m->next;
		metric_free(m);
	}
	free(reg->prefix);
	free(reg);
	*regp = NULL;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (metric names; label names without ':'). */
static bool name_valid(const char *s, bool colon)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (colon && c == ':')))
			return false;
	}
	return true;
}

static struct metric *find_family(const struct metrics *reg, const char *full)
{
	for (struct metric *m = reg->first; m; m = m->next)
		if (strcmp(m->name, full) == 0)
			return m;
	return NULL;
}

struct metric *metrics_add(struct metrics *reg, enum metric_type type, const char *name,
			   const char *help, const char *const *labels)
{
	struct metric *m;
	size_t n = 0;
	int e = ENOMEM;

	if (!reg || !name_valid(name, true) || (type != METRIC_COUNTER && type != METRIC_GAUGE)) {
		errno = EINVAL;
		return NULL;
	}
	for (; labels && labels[n]; n++)
		if (n == METRICS_MAX_LABELS || !name_valid(labels[n], false) ||
		    strncmp(labels[n], "__", 2) == 0) {
			errno = EINVAL;
			return NULL;
		}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->type = type;
	m->n_labels = n;
	if (asprintf(&m->name, "%s%s", reg->prefix, name) < 0) {
		m->name = NULL;
		goto out_free;
	}
	if (find_family(reg, m->name)) {
		e = EEXIST;
		goto out_free;
	}
	m->help = strdup(help ? help : "");
	if (!m->help)
		goto out_free;
	for (size_t i = 0; i < n; i++) {
		m->labels[i] = strdup(labels[i]);
		if (!m->labels[i])
			goto out_free;
	}
	if (n == 0) { /* the one series, present from the start */
		m->series = calloc(1, sizeof(*m->series));
		if (!m->series)
			goto out_free;
		m->n_series = m->cap_series = 1;
	}
	if (reg->last)
		reg->last->next = m;
	else
		reg->first = m;
	reg->last = m;
	return m;

out_free:
	metric_free(m);
	errno = e;
	return NULL;
}

int metrics_add_collector(struct metrics *reg, metrics_collect_fn fn, void *arg)
{
	if (reg->n_collectors == METRICS_MAX_COLLECTORS)
		return -ENOSPC;
	reg->collectors[reg->n_collectors++] = (struct collector){.fn = fn, .arg = arg};
	return 0;
}

static bool values_valid(const struct metric *m, const char *const *values)
{
	if (m->n_labels && !values)
		return false;
	for (size_t i = 0; i < m->n_labels; i++)
		if (!values[i] ||
		    strnlen(values[i], METRICS_MAX_LABEL_VALUE + 1) > METRICS_MAX_LABEL_VALUE)
			return false;
	return true;
}

static struct series *find_series(const struct metric *m, const char *const *values)
{
	for (size_t i = 0; i < m->n_series; i++) {
		size_t j = 0;

		while (j < m->n_labels && strcmp(m->series[i].values[j], values[j]) == 0)
			j++;
		if (j == m->n_labels)
			return &m->series[i];
	}
	return NULL;
}

/* The series for @values, created at 0 when missing; NULL with *err set. */
static struct series *get_series(struct metric *m, const char *const *values, int *err)
{
	struct series *s;

	if (!values_valid(m, values)) {
		*err = -EINVAL;
		return NULL;
	}
	s = find_series(m, values);
	if (s)
		return s;
	if (m->n_series == METRICS_MAX_SERIES) {
		*err = -ENOSPC;
		return NULL;
	}
	if (m->n_series == m->cap_series) {
		size_t cap = m->cap_series ? m->cap_series * 2 : 4;
		struct series *ns;

		if (cap > METRICS_MAX_SERIES)
			cap = METRICS_MAX_SERIES;
		ns = realloc(m->series, cap * sizeof(*ns));
		if (!ns) {
			*err = -ENOMEM;
			return NULL;
		}
		m->series = ns;
		m->cap_series = cap;
	}
	s = &m->series[m->n_series];
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < m->n_labels; i++) {
		s->values[i] = strdup(values[i]);
		if (!s->values[i]) {
			series_free(s, i);
			*err = -ENOMEM;
			return NULL;
		}
	}
	m->n_series++;
	return s;
}

int metric_set_l(struct metric *m, const char *const *values, double v)
{
	int err = 0;
	struct series *s = get_series(m, values, &err);

	if (!s)
		return err;
	s->v = v;
	return 0;
}

int metric_add_l(struct metric *m, const char *const *values, double delta)
{
	int err = 0;
	struct series *s;

	if (m->type == METRIC_COUNTER && !(delta >= 0))
		return -EINVAL;
	s = get_series(m, values, &err);
	if (!s)
		return err;
	s->v += delta;
	return 0;
}

int metric_set(struct metric *m, double v)
{
	return metric_set_l(m, NULL, v);
}

int metric_add(struct metric *m, double delta)
{
	return metric_add_l(m, NULL, delta);
}

void metric_clear(struct metric *m)
{
	if (m->n_labels == 0) {
		m->series[0].v = 0;
		return;
	}
	for (size_t i = 0; i < m->n_series; i++)
		series_free(&m->series[i], m->n_labels);
	m->n_series = 0;
}

double metric_value_l(const struct metric *m, const char *const *values)
{
	const struct series *s = values_valid(m, values) ? find_series(m, values) : NULL;

	return s ? s->v : 0;
}

/* --- exposition ---------------------------------------------------------------------------- */

static int put_str(struct buf *out, const char *s)
{
	return buf_append(out, s, strlen(s));
}

/* Appends @s escaped: backslash and newline always, the double quote in label values. */
static int put_escaped(struct buf *out, const char *s, bool quote)
{
	int err = 0;

	for (const char *p = s; *p && !err; p++) {
		if (*p == '\\')
			err = put_str(out, "\\\\");
		else if (*p == '\n')
			err = put_str(out, "\\n");
		else if (quote && *p == '"')
			err = put_str(out, "\\\"");
		else
			err = buf_append(out, p, 1);
	}
	return err;
}

/* The shortest of %.15g / %.17g that reads back exactly; Prometheus' spellings otherwise. */
static void format_value(double v, char *out, size_t len)
{
	if (isnan(v)) {
		snprintf(out, len, "NaN");
	} else if (isinf(v)) {
		snprintf(out, len, "%s", v > 0 ? "+Inf" : "-Inf");
	} else if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, len, "%.0f", v);
	} else {
		snprintf(out, len, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, len, "%.17g", v);
	}
}

static int render_series(const struct metric *m, const struct series *s, struct buf *out)
{
	char val[40];
	int err = put_str(out, m->name);

	for (size_t i = 0; i < m->n_labels && !err; i++) {
		err = put_str(out, i ? "," : "{");
		err = err ? err : put_str(out, m->labels[i]);
		err = err ? err : put_str(out, "=\"");
		err = err ? err : put_escaped(out, s->values[i], true);
		err = err ? err : put_str(out, "\"");
	}
	if (!err && m->n_labels)
		err = put_str(out, "}");
	format_value(s->v, val, sizeof(val));
	err = err ? err : put_str(out, " ");
	err = err ? err : put_str(out, val);
	return err ? err : put_str(out, "\n");
}

static int render_family(const struct metric *m, struct buf *out)
{
	int err = put_str(out, "# HELP ");

	err = err ? err : put_str(out, m->name);
	err = err ? err : put_str(out, " ");
	err = err ? err : put_escaped(out, m->help, false);
	err = err ? err : put_str(out, "\n# TYPE ");
	err = err ? err : put_str(out, m->name);
	err = err ? err : put_str(out, m->type == METRIC_COUNTER ? " counter\n" : " gauge\n");
	for (size_t i = 0; i < m->n_series && !err; i++)
		err = render_series(m, &m->series[i], out);
	return err;
}

int metrics_render(struct metrics *reg, struct buf *out)
{
	int err = 0;

	for (size_t i = 0; i < reg->n_collectors; i++)
		reg->collectors[i].fn(reg, reg->collectors[i].arg);
	for (const struct metric *m = reg->first; m && !err; m = m->next)
		err = render_family(m, out);
	return err;
}

void metrics_http_handler(struct httpd_reply *r, void *reg)
{
	if (metrics_render(reg, &r->body) < 0) {
		buf_free(&r->body);
		r->status = 500;
		return;
	}
	r->content_type = METRICS_CONTENT_TYPE;
}

/* --- a daemon's server ------------------------------------------------------------------- */

#define SID "metrics"

struct metrics_server {
	struct metrics *reg;
	struct httpd *http;
	metrics_ready_fn ready;
	void *arg;
};

int metrics_server_config(struct httpd_config *cfg, uint16_t default_port)
{
	if (httpd_config_from_env(cfg, "METRICS", default_port) < 0)
		return -EINVAL;
	if (cfg->port == 0)
		log_info(SID, "METRICS_PORT=0: no metrics or health endpoints");
	return 0;
}

int metrics_add_families(struct metrics *reg, const struct metrics_family_def *defs, size_t n,
			 void *slots)
{
	for (size_t i = 0; i < n; i++) {
		const struct metrics_family_def *d = &defs[i];
		struct metric **slot = (struct metric **)((char *)slots + d->off);

		*slot = metrics_add(reg, d->type, d->name, d->help, d->labels);
		if (!*slot) {
			log_error(SID, "metric %s not registered: %s", d->name, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static void on_healthz(struct httpd_reply *r, void *arg)
{
	(void)arg;
	buf_append(&r->body, "ok\n", 3);
}

static void on_readyz(struct httpd_reply *r, void *arg)
{
	const struct metrics_server *ms = arg;
	char why[256], line[300];

	if (ms->ready(ms->arg, why, sizeof(why))) {
		buf_append(&r->body, "ready\n", 6);
		return;
	}
	r->status = 503;
	snprintf(line, sizeof(line), "not ready: %s\n", why);
	buf_append(&r->body, line, strlen(line));
}

struct metrics_server *metrics_server_new(struct evloop *loop, const struct httpd_config *cfg,
					  const struct metrics_server_def *def)
{
	struct metrics_server *ms = calloc(1, sizeof(*ms));
	struct httpd_route routes[3];
	int e;

	if (!ms)
		return NULL;
	ms->ready = def->ready;
	ms->arg = def->arg;
	ms->reg = metrics_new(def->prefix);
	e = ms->reg ? metrics_add_families(ms->reg, def->families, def->n_families, def->slots)
		    : -ENOMEM;
	if (e == 0)
		e = metrics_add_collector(ms->reg, def->collect, def->arg);
	if (e < 0) {
		metrics_server_destroy(&ms);
		errno = -e;
		return NULL;
	}
	routes[0] =
	    (struct httpd_route){.path = "/metrics", .fn = metrics_http_handler, .arg = ms->reg};
	routes[1] = (struct httpd_route){.path = "/healthz", .fn = on_healthz, .arg = ms};
	routes[2] = (struct httpd_route){.path = "/readyz", .fn = on_readyz, .arg = ms};
	ms->http = httpd_new(loop, cfg, routes, sizeof(routes) / sizeof(routes[0]));
	if (!ms->http)
		log_error(SID, "no metrics or health endpoints (%s:%u: %s)%s%s", cfg->bind,
			  cfg->port, strerror(errno), def->bind_hint ? "; " : "",
			  def->bind_hint ? def->bind_hint : "");
	else
		log_info(SID, "metrics on http://%s%s%s:%u/metrics (also /healthz, /readyz)",
			 strchr(cfg->bind, ':') ? "[" : "", cfg->bind,
			 strchr(cfg->bind, ':') ? "]" : "", httpd_port(ms->http));
	return ms;
}

void metrics_server_destroy(struct metrics_server **msp)
{
	struct metrics_server *ms = msp ? *msp : NULL;

	if (!ms)
		return;
	httpd_destroy(&ms->http);
	metrics_destroy(&ms->reg);
	free(ms);
	*msp = NULL;
}

unsigned metrics_server_port(const struct metrics_server *ms)
{
	return ms && ms->http ? httpd_port(ms->http) : 0;
}
