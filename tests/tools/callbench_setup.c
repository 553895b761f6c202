/*
 * callbench_setup.c - callbench's setup mode: --clients connections, each looping
 * invite -> accepted -> bye for --seconds (callbench.c describes the run and its output).
 */
#include "callbench.h"

/* ------------------------------------------------------------------ setup mode */

struct client {
	struct conn c;
	int index;
	int connect_rc;
	char why[REASON_LEN];
	double *lat_ms; /* invite->accepted of the set-ups counted */
	size_t nlat, cap;
	unsigned long setups, failed, bye_failed, late;
};

static struct {
	const struct options *o;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int arrived;	/* clients done connecting (either way) */
	bool go, abort; /* set by main once all arrived */
	double deadline;
} srun = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void lat_add(struct client *cl, double ms)
{
	if (cl->nlat == cl->cap) {
		size_t cap = cl->cap ? cl->cap * 2 : 1024;
		double *v;

		if (cap > LAT_MAX)
			return;
		v = realloc(cl->lat_ms, cap * sizeof(*v));
		if (!v)
			return;
		cl->lat_ms = v;
		cl->cap = cap;
	}
	cl->lat_ms[cl->nlat++] = ms;
}

/* One client's calls until @deadline. */
static void setup_loop(struct client *cl, double deadline)
{
	const struct options *o = srun.o;
	char why[REASON_LEN];

	while (now_s() < deadline) {
		double lat = 0;
		int rc = call_invite(&cl->c, o, &lat, why, sizeof(why));

		if (rc == 0) {
			if (now_s() <= deadline) {
				cl->setups++;
				lat_add(cl, lat * 1000);
			} else {
				cl->late++;
			}
			rc = call_bye(&cl->c, o, why, sizeof(why));
			if (rc < 0) {
				cl->bye_failed++;
				reason_add(why);
			}
		} else {
			cl->failed++;
			reason_add(why);
			if (rc == -ETIMEDOUT) /* cancel it; the outcome adds nothing */
				rc = call_bye(&cl->c, o, why, sizeof(why));
			if (rc != -ECONNRESET)
				sleep_s(FAIL_PAUSE_S);
		}
		if (rc == -ECONNRESET)
			break;
	}
}

static void *setup_client_main(void *arg)
{
	struct client *cl = arg;
	double deadline;
	bool abort_run;

	cl->connect_rc = conn_open(&cl->c, srun.o, cl->index, cl->why, sizeof(cl->why));
	pthread_mutex_lock(&srun.lock);
	srun.arrived++;
	pthread_cond_broadcast(&srun.cv);
	while (!srun.go)
		pthread_cond_wait(&srun.cv, &srun.lock);
	abort_run = srun.abort;
	deadline = srun.deadline;
	pthread_mutex_unlock(&srun.lock);
	if (cl->connect_rc == 0 && !abort_run)
		setup_loop(cl, deadline);
	conn_close(&cl->c);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile @p of the sorted @v. */
static double percentile(const double *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return 0;
	k = (size_t)ceil(p / 100.0 * (double)n);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

/* Waits until all @n clients finished connecting, bounded. Returns true when they did. */
static bool wait_arrivals(int n, double deadline)
{
	bool all;

	pthread_mutex_lock(&srun.lock);
	while (srun.arrived < n) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&srun.cv, &srun.lock, &ts);
		if (now_s() > deadline)
			break;
	}
	all = srun.arrived >= n;
	pthread_mutex_unlock(&srun.lock);
	return all;
}

static void setup_report(const struct options *o, struct client *cls, int n,
			 const struct cpu_sample *c0, const struct cpu_sample *c1)
{
	unsigned long setups = 0, failed = 0, bye_failed = 0, late = 0;
	char line[2048];
	size_t nlat = 0, k = 0;
	double *all, span = c1->t - c0->t;

	for (int i = 0; i < n; i++) {
		setups += cls[i].setups;
		failed += cls[i].failed;
		bye_failed += cls[i].bye_failed;
		late += cls[i].late;
		nlat += cls[i].nlat;
	}
	all = malloc((nlat ? nlat : 1) * sizeof(*all));
	if (all) {
		for (int i = 0; i < n; i++) {
			if (!cls[i].nlat)
				continue;
			memcpy(all + k, cls[i].lat_ms, cls[i].nlat * sizeof(*all));
			k += cls[i].nlat;
		}
		qsort(all, nlat, sizeof(*all), cmp_double);
	} else {
		nlat = 0;
	}
	snprintf(line, sizeof(line),
		 "RESULT mode=setup clients=%d seconds=%.1f setups=%lu rate=%.1f p50_ms=%.2f "
		 "p95_ms=%.2f p99_ms=%.2f max_ms=%.2f failed=%lu bye_failed=%lu late=%lu "
		 "connect_failed=0",
		 n, span, setups, span > 0 ? (double)setups / span : 0, percentile(all, nlat, 50),
		 percentile(all, nlat, 95), percentile(all, nlat, 99), nlat ? all[nlat - 1] : 0,
		 failed, bye_failed, late);
	cpu_format(o, c0, c1, line, sizeof(line));
	printf("%s\n", line);
	reasons_print();
	printf("callbench: %lu set-ups in %.1f s = %.1f/s with %d clients (codecs '%s'); "
	       "invite->accepted p50 %.1f ms, p99 %.1f ms; %lu failed\n",
	       setups, span, span > 0 ? (double)setups / span : 0, n, o->codecs,
	       percentile(all, nlat, 50), percentile(all, nlat, 99), failed);
	free(all);
}

int run_setup(const struct options *o)
{
	struct cpu_sample c0, c1;
	struct client *cls;
	pthread_t *th;
	int n = o->clients, started = 0, connect_failed = 0, status = 0;

	cls = calloc((size_t)n, sizeof(*cls));
	th = calloc((size_t)n, sizeof(*th));
	if (!cls || !th) {
		fprintf(stderr, "callbench: out of memory\n");
		free(cls);
		free(th);
		return 1;
	}
	srun.o = o;
	for (; started < n; started++) {
		cls[started].index = started;
		if (pthread_create(&th[started], NULL, setup_client_main, &cls[started]) != 0) {
			fprintf(stderr, "callbench: cannot start client thread %d\n", started);
			break;
		}
	}
	/* Each connect is bounded by librtmp's timeout; TCP connect itself by the kernel. */
	if (!wait_arrivals(started, now_s() + 3.0 * o->timeout_s + 5)) {
		fprintf(stderr, "callbench: clients still connecting after %d s: giving up\n",
			3 * o->timeout_s + 5);
		return 1; /* threads still run: exit without freeing what they use */
	}
	for (int i = 0; i < started; i++) {
		if (cls[i].connect_rc == 0)
			continue;
		if (connect_failed++ < 5)
			fprintf(stderr, "callbench: client %d: %s\n", i, cls[i].why);
	}
	pthread_mutex_lock(&srun.lock);
	srun.abort = connect_failed > 0 || started < n;
	cpu_sample(o, &c0);
	srun.deadline = c0.t + o->seconds;
	srun.go = true;
	pthread_cond_broadcast(&srun.cv);
	pthread_mutex_unlock(&srun.lock);
	if (!srun.abort) {
		sleep_until(srun.deadline);
		cpu_sample(o, &c1);
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (srun.abort) {
		printf("RESULT mode=setup clients=%d setups=0 connect_failed=%d\n", n,
		       connect_failed + (n - started));
		printf("callbench: %d of %d clients could not connect: no run\n",
		       connect_failed + (n - started), n);
		status = 1;
	} else {
		setup_report(o, cls, n, &c0, &c1);
	}
	for (int i = 0; i < n; i++)
		free(cls[i].lat_ms);
	free(cls);
	free(th);
	return status;
}

