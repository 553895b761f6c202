/*
 * wavcheck.c - measure a WAV recording and check it against expectations (integration tests).
 *
 *   wavcheck [options] FILE.wav
 *
 * Reads 16-bit PCM WAV (WAVE_FORMAT_PCM or WAVE_FORMAT_EXTENSIBLE with the PCM sub-format), any
 * rate, 1..8 channels (mixed down to mono), skipping chunks it does not know. It finds the
 * non-silent part (20 ms frames louder than both -70 dBFS and the loudest frame - 40 dB, from the
 * first such frame to the last) and prints one line:
 *
 *   duration=<sec> rate=<hz> freq=<dominant Hz> rms_dbfs=<level>
 *
 * duration is that of the non-silent part; freq is the peak of a Hann-windowed power spectrum
 * (Goertzel scan 50..rate/2 Hz in 5 Hz steps, refined to 1 Hz) summed over up to four 1 s windows
 * spread over the non-silent part; rms_dbfs is its RMS level (a full-scale sine is -3 dBFS).
 *
 * Options (each check failing prints "wavcheck: FAIL: <reason>" and makes the exit status 1):
 *   --expect-freq F --tol T   dominant frequency within F +- T Hz (T defaults to 30)
 *   --min-duration D          non-silent duration >= D seconds
 *   --max-duration D          non-silent duration <= D seconds
 *   --min-rms-dbfs L          RMS level of the non-silent part >= L dBFS
 *   --max-rms-dbfs L          RMS level of the non-silent part <= L dBFS (with --min-rms-dbfs:
 *                             the level of a known tone, within a window)
 *   --max-gap S               no silent stretch longer than S seconds inside the non-silent part
 *   --max-peak-dbfs L         no sample of the non-silent part above L dBFS (0: clipping)
 *   --max-level-swing D       no 100 ms window of the non-silent part louder than the median
 *                             window by more than D dB (a level that builds up, a burst)
 *   --ignore-start S          skip the first S seconds of the file before anything else
 *   --verbose                 print the header fields, total length, longest gap, peak and
 *                             level swing too
 * Exit status: 0 all checks hold, 1 a check failed or the file is not a usable WAV, 2 usage.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse_num.h"

#define WAV_MAX_FILE	 (512u * 1024u * 1024u) /* refuse anything larger: tests record seconds */
#define WAV_MAX_CHANNELS 8u
#define WAV_MIN_RATE	 1000u
#define WAV_MAX_RATE	 384000u
#define FRAME_SEC	 0.020
#define SILENCE_ABS_DBFS (-70.0)
#define SILENCE_REL_DB	 40.0
#define SCAN_MIN_HZ	 50.0
#define SCAN_STEP_HZ	 5.0
#define MAX_WINDOWS	 4
#define LEVEL_WIN_SEC	 0.100

#define WAVE_FORMAT_PCM	       0x0001u
#define WAVE_FORMAT_EXTENSIBLE 0xFFFEu

struct wav {
	unsigned rate;
	unsigned channels;
	unsigned format; /* the effective format tag (the sub-format for EXTENSIBLE) */
	size_t frames;	 /* samples per channel */
	float *mono;	 /* frames samples in [-1, 1), owned */
};

struct opts {
	const char *path;
	double expect_freq, tol;
	double min_dur, max_dur, min_rms, max_rms, max_gap, ignore_start, max_peak, max_swing;
	bool has_freq, has_min_dur, has_max_dur, has_min_rms, has_max_rms, has_max_gap;
	bool has_max_peak, has_max_swing, verbose;
};

struct measure {
	double duration, total, freq, rms_dbfs, longest_gap;
	double peak_dbfs;      /* loudest sample of the non-silent part */
	double level_swing_db; /* loudest 100 ms window minus the median one, in dB */
	size_t start, end; /* non-silent part [start, end) in samples */
};

static uint16_t rd16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* Reads the whole file (at most WAV_MAX_FILE bytes) into a malloc'ed buffer the caller frees. */
static int read_file(const char *path, unsigned char **bufp, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	int ret = 0;

	if (!f) {
		fprintf(stderr, "wavcheck: FAIL: cannot open %s: %s\n", path, strerror(errno));
		return -errno;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			unsigned char *nbuf;

			if (cap >= WAV_MAX_FILE) {
				fprintf(stderr, "wavcheck: FAIL: %s is larger than %u bytes\n",
					path, WAV_MAX_FILE);
				ret = -EFBIG;
				goto out_free;
			}
			if (ncap > WAV_MAX_FILE)
				ncap = WAV_MAX_FILE;
			nbuf = realloc(buf, ncap);
			if (!nbuf) {
				ret = -ENOMEM;
				goto out_free;
			}
			buf = nbuf;
			cap = ncap;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f)) {
				fprintf(stderr, "wavcheck: FAIL: reading %s failed\n", path);
				ret = -EIO;
				goto out_free;
			}
			break;
		}
	}
	fclose(f);
	*bufp = buf;
	*lenp = len;
	return 0;

out_free:
	free(buf);
	fclose(f);
	return ret;
}

/* Parses the "fmt " chunk body; returns 0 or -EINVAL after printing why. */
static int parse_fmt(const unsigned char *p, uint32_t size, struct wav *w)
{
	unsigned bits, block;

	if (size < 16) {
		fprintf(stderr, "wavcheck: FAIL: fmt chunk too short (%u bytes)\n", size);
		return -EINVAL;
	}
	w->format = rd16(p);
	w->channels = rd16(p + 2);
	w->rate = rd32(p + 4);
	block = rd16(p + 12);
	bits = rd16(p + 14);
	if (w->format == WAVE_FORMAT_EXTENSIBLE) {
		/* cbSize(2) validBits(2) channelMask(4) subFormat GUID(16): first 2 bytes = tag */
		if (size < 40 || rd16(p + 16) < 22) {
			fprintf(stderr,
				"wavcheck: FAIL: WAVE_FORMAT_EXTENSIBLE fmt chunk too short\n");
			return -EINVAL;
		}
		w->format = rd16(p + 24);
	}
	if (w->format != WAVE_FORMAT_PCM || bits != 16) {
		fprintf(stderr, "wavcheck: FAIL: not 16-bit PCM (format 0x%04x, %u bits)\n",
			w->format, bits);
		return -EINVAL;
	}
	if (w->channels < 1 || w->channels > WAV_MAX_CHANNELS) {
		fprintf(stderr, "wavcheck: FAIL: unsupported channel count %u\n", w->channels);
		return -EINVAL;
	}
	if (w->rate < WAV_MIN_RATE || w->rate > WAV_MAX_RATE) {
		fprintf(stderr, "wavcheck: FAIL: unsupported sample rate %u\n", w->rate);
		return -EINVAL;
	}
	if (block != 2 * w->channels) {
		fprintf(stderr, "wavcheck: FAIL: block align %u does not match %u channels\n",
			block, w->channels);
		return -EINVAL;
	}
	return 0;
}

/*
 * Parses a RIFF/WAVE image into @w (w->mono is malloc'ed; the caller frees it). A data chunk whose
 * size runs past the end of the file (a recording cut short, or 0 / 0xFFFFFFFF written by a muxer
 * that could not seek back) is taken up to the end of the file. Returns 0 or a negative errno.
 */
static int parse_wav(const unsigned char *buf, size_t len, struct wav *w)
{
	const unsigned char *data = NULL;
	size_t off = 12, data_len = 0;
	bool have_fmt = false;

	if (len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0) {
		fprintf(stderr, "wavcheck: FAIL: not a RIFF/WAVE file\n");
		return -EINVAL;
	}
	while (off + 8 <= len && !data) {
		const unsigned char *id = buf + off;
		uint32_t size = rd32(buf + off + 4);
		size_t avail = len - off - 8;

		off += 8;
		if (memcmp(id, "data", 4) == 0) {
			if (!have_fmt) {
				fprintf(stderr, "wavcheck: FAIL: data chunk before fmt chunk\n");
				return -EINVAL;
			}
			data = buf + off;
			data_len = (size == 0 || size > avail) ? avail : size;
			break;
		}
		if (size > avail) {
			fprintf(stderr,
				"wavcheck: FAIL: chunk '%.4s' runs past the end of the file\n",
				(const char *)id);
			return -EINVAL;
		}
		if (memcmp(id, "fmt ", 4) == 0) {
			if (parse_fmt(buf + off, size, w) < 0)
				return -EINVAL;
			have_fmt = true;
		}
		off += size + (size & 1u); /* chunks are padded to an even size */
	}
	if (!data) {
		fprintf(stderr, "wavcheck: FAIL: no %s chunk\n", have_fmt ? "data" : "fmt");
		return -EINVAL;
	}

	w->frames = data_len / (2u * w->channels);
	w->mono = malloc((w->frames ? w->frames : 1) * sizeof(*w->mono));
	if (!w->mono)
		return -ENOMEM;
	for (size_t i = 0; i < w->frames; i++) {
		long sum = 0;

		for (unsigned c = 0; c < w->channels; c++)
			sum += (int16_t)rd16(data + 2u * (i * w->channels + c));
		w->mono[i] = (float)((double)sum / (32768.0 * w->channels));
	}
	return 0;
}

static double to_dbfs(double rms)
{
	return rms > 1e-9 ? 20.0 * log10(rms) : -180.0;
}

static double frame_rms(const float *x, size_t n)
{
	double e = 0;

	for (size_t i = 0; i < n; i++)
		e += (double)x[i] * x[i];
	return n ? sqrt(e / (double)n) : 0.0;
}

/* Power of frequency @hz in the Hann-windowed block @x[0..n) (Goertzel). */
static double goertzel(const float *x, const float *win, size_t n, double hz, unsigned rate)
{
	double coef = 2.0 * cos(2.0 * M_PI * hz / rate);
	double s1 = 0, s2 = 0;

	for (size_t i = 0; i < n; i++) {
		double s0 = x[i] * win[i] + coef * s1 - s2;

		s2 = s1;
		s1 = s0;
	}
	return s1 * s1 + s2 * s2 - coef * s1 * s2;
}

/* Summed power at @hz over the analysis windows starting at @starts. */
static double power_at(const float *x, const size_t *starts, int nwin, const float *win, size_t n,
		       double hz, unsigned rate)
{
	double p = 0;

	for (int k = 0; k < nwin; k++)
		p += goertzel(x + starts[k], win, n, hz, rate);
	return p;
}

/* Dominant frequency of x[start, end): coarse 5 Hz scan, then 1 Hz refinement. */
static double dominant_freq(const float *x, size_t start, size_t end, unsigned rate)
{
	size_t total = end - start, n = rate; /* 1 s windows */
	size_t starts[MAX_WINDOWS];
	double best_hz = 0, best_p = -1, nyq = rate / 2.0;
	float *win;
	int nwin;

	if (total < rate / 10) /* under 100 ms: nothing meaningful */
		return 0;
	if (n > total)
		n = total;
	nwin = (int)(total / n);
	if (nwin > MAX_WINDOWS)
		nwin = MAX_WINDOWS;
	for (int k = 0; k < nwin; k++) /* spread the windows evenly over the part */
		starts[k] = start + (nwin > 1 ? (total - n) * (size_t)k / (size_t)(nwin - 1) : 0);

	win = malloc(n * sizeof(*win));
	if (!win)
		return 0;
	for (size_t i = 0; i < n; i++)
		win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * (double)i / (double)(n - 1)));

	for (double hz = SCAN_MIN_HZ; hz < nyq; hz += SCAN_STEP_HZ) {
		double p = power_at(x, starts, nwin, win, n, hz, rate);

		if (p > best_p) {
			best_p = p;
			best_hz = hz;
		}
	}
	for (double hz = best_hz - SCAN_STEP_HZ + 1; hz < best_hz + SCAN_STEP_HZ; hz += 1.0) {
		double p;

		if (hz < SCAN_MIN_HZ || hz >= nyq)
			continue;
		p = power_at(x, starts, nwin, win, n, hz, rate);
		if (p > best_p) {
			best_p = p;
			best_hz = hz;
		}
	}
	free(win);
	return best_hz;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * How far the loudest LEVEL_WIN_SEC window of x[start, end) is above the median window, in dB
 * (0 with fewer than three windows). A steady tone stays within a dB or two.
 */
static double level_swing(const float *x, size_t start, size_t end, unsigned rate)
{
	size_t wlen = (size_t)(rate * LEVEL_WIN_SEC), n = wlen ? (end - start) / wlen : 0;
	double *db, swing;

	if (n < 3)
		return 0;
	db = malloc(n * sizeof(*db));
	if (!db)
		return 0;
	for (size_t k = 0; k < n; k++)
		db[k] = to_dbfs(frame_rms(x + start + k * wlen, wlen));
	qsort(db, n, sizeof(*db), cmp_double);
	swing = db[n - 1] - db[n / 2];
	free(db);
	return swing;
}

/* Finds the non-silent part of x[skip, frames) and measures it into @m. */
static void measure(const struct wav *w, size_t skip, struct measure *m)
{
	size_t flen = (size_t)(w->rate * FRAME_SEC), nframes, first = SIZE_MAX, last = 0, gap = 0;
	size_t longest = 0;
	double peak = -180.0, thr, energy = 0;

	memset(m, 0, sizeof(*m));
	m->rms_dbfs = -180.0;
	m->peak_dbfs = -180.0;
	m->total = (double)w->frames / w->rate;
	if (skip >= w->frames)
		return;
	nframes = (w->frames - skip) / flen;
	for (size_t f = 0; f < nframes; f++) {
		double db = to_dbfs(frame_rms(w->mono + skip + f * flen, flen));

		if (db > peak)
			peak = db;
	}
	thr = peak - SILENCE_REL_DB;
	if (thr < SILENCE_ABS_DBFS)
		thr = SILENCE_ABS_DBFS;
	for (size_t f = 0; f < nframes; f++) {
		double db = to_dbfs(frame_rms(w->mono + skip + f * flen, flen));

		if (db < thr) {
			gap++;
			continue;
		}
		if (first == SIZE_MAX)
			first = f;
		else if (gap > longest)
			longest = gap;
		gap = 0;
		last = f;
	}
	if (first == SIZE_MAX)
		return;
	m->start = skip + first * flen;
	m->end = skip + (last + 1) * flen;
	m->duration = (double)(m->end - m->start) / w->rate;
	m->longest_gap = (double)(longest * flen) / w->rate;
	for (size_t i = m->start; i < m->end; i++) {
		double a = fabs((double)w->mono[i]);

		energy += a * a;
		if (to_dbfs(a) > m->peak_dbfs)
			m->peak_dbfs = to_dbfs(a);
	}
	m->rms_dbfs = to_dbfs(sqrt(energy / (double)(m->end - m->start)));
	m->level_swing_db = level_swing(w->mono, m->start, m->end, w->rate);
	m->freq = dominant_freq(w->mono, m->start, m->end, w->rate);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: wavcheck [--expect-freq F [--tol T]] [--min-duration D] "
		     "[--max-duration D] [--min-rms-dbfs L] [--max-rms-dbfs L] [--max-gap S] "
		     "[--max-peak-dbfs L] [--max-level-swing D] [--ignore-start S] [--verbose] "
		     "FILE.wav\n");
}

static bool parse_num(const char *opt, const char *s, double *out)
{
	if (!parse_double(s, out)) {
		fprintf(stderr, "wavcheck: %s needs a number, got '%s'\n", opt, s);
		return false;
	}
	return true;
}

/* Parses argv into @o; returns false (after a message) on a usage error. */
static bool parse_args(int argc, char **argv, struct opts *o)
{
	static const struct {
		const char *name;
		size_t val_off;	 /* offsetof the double in struct opts */
		size_t flag_off; /* offsetof the bool, or SIZE_MAX */
	} table[] = {
	    {"--expect-freq", offsetof(struct opts, expect_freq), offsetof(struct opts, has_freq)},
	    {"--tol", offsetof(struct opts, tol), SIZE_MAX},
	    {"--min-duration", offsetof(struct opts, min_dur), offsetof(struct opts, has_min_dur)},
	    {"--max-duration", offsetof(struct opts, max_dur), offsetof(struct opts, has_max_dur)},
	    {"--min-rms-dbfs", offsetof(struct opts, min_rms), offsetof(struct opts, has_min_rms)},
	    {"--max-rms-dbfs", offsetof(struct opts, max_rms), offsetof(struct opts, has_max_rms)},
	    {"--max-gap", offsetof(struct opts, max_gap), offsetof(struct opts, has_max_gap)},
	    {"--max-peak-dbfs", offsetof(struct opts, max_peak),
	     offsetof(struct opts, has_max_peak)},
	    {"--max-level-swing", offsetof(struct opts, max_swing),
	     offsetof(struct opts, has_max_swing)},
	    {"--ignore-start", offsetof(struct opts, ignore_start), SIZE_MAX},
	};

	memset(o, 0, sizeof(*o));
	o->tol = 30.0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool known = false;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			o->verbose = true;
			continue;
		}
		for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
			if (strcmp(a, table[t].name) != 0)
				continue;
			if (i + 1 >= argc) {
				fprintf(stderr, "wavcheck: %s needs a value\n", a);
				return false;
			}
			if (!parse_num(a, argv[++i], (double *)((char *)o + table[t].val_off)))
				return false;
			if (table[t].flag_off != SIZE_MAX)
				*(bool *)((char *)o + table[t].flag_off) = true;
			known = true;
			break;
		}
		if (known)
			continue;
		if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "wavcheck: unknown option %s\n", a);
			return false;
		}
		if (o->path) {
			fprintf(stderr, "wavcheck: more than one file given\n");
			return false;
		}
		o->path = a;
	}
	if (!o->path) {
		fprintf(stderr, "wavcheck: no file given\n");
		return false;
	}
	if (o->tol < 0 || o->ignore_start < 0) {
		fprintf(stderr, "wavcheck: --tol and --ignore-start must not be negative\n");
		return false;
	}
	return true;
}

/* Applies the requested checks; returns the number that failed (each printed). */
static int run_checks(const struct opts *o, const struct measure *m)
{
	int failed = 0;

	if (m->duration <= 0 && (o->has_freq || o->has_min_dur || o->has_min_rms ||
				 o->has_max_rms || o->has_max_swing)) {
		fprintf(stderr, "wavcheck: FAIL: no signal: the recording is silent\n");
		return 1;
	}
	if (o->has_freq && m->freq <= 0) {
		fprintf(stderr, "wavcheck: FAIL: no frequency measurable in %.3f s of signal\n",
			m->duration);
		failed++;
	} else if (o->has_freq && fabs(m->freq - o->expect_freq) > o->tol) {
		fprintf(stderr,
			"wavcheck: FAIL: dominant frequency %.0f Hz, expected %.0f +- %.0f Hz\n",
			m->freq, o->expect_freq, o->tol);
		failed++;
	}
	if (o->has_min_dur && m->duration < o->min_dur) {
		fprintf(stderr, "wavcheck: FAIL: non-silent duration %.2f s < minimum %.2f s\n",
			m->duration, o->min_dur);
		failed++;
	}
	if (o->has_max_dur && m->duration > o->max_dur) {
		fprintf(stderr, "wavcheck: FAIL: non-silent duration %.2f s > maximum %.2f s\n",
			m->duration, o->max_dur);
		failed++;
	}
	if (o->has_min_rms && m->rms_dbfs < o->min_rms) {
		fprintf(stderr, "wavcheck: FAIL: level %.1f dBFS < minimum %.1f dBFS\n",
			m->rms_dbfs, o->min_rms);
		failed++;
	}
	if (o->has_max_rms && m->rms_dbfs > o->max_rms) {
		fprintf(stderr, "wavcheck: FAIL: level %.1f dBFS > maximum %.1f dBFS\n",
			m->rms_dbfs, o->max_rms);
		failed++;
	}
	if (o->has_max_gap && m->longest_gap > o->max_gap) {
		fprintf(stderr,
			"wavcheck: FAIL: silent gap of %.2f s inside the signal > maximum %.2f s\n",
			m->longest_gap, o->max_gap);
		failed++;
	}
	if (o->has_max_peak && m->peak_dbfs > o->max_peak) {
		fprintf(stderr, "wavcheck: FAIL: peak %.1f dBFS > maximum %.1f dBFS\n",
			m->peak_dbfs, o->max_peak);
		failed++;
	}
	if (o->has_max_swing && m->level_swing_db > o->max_swing) {
		fprintf(stderr, "wavcheck: FAIL: level swing %.1f dB > maximum %.1f dB\n",
			m->level_swing_db, o->max_swing);
		failed++;
	}
	return failed;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct wav w = {0};
	struct measure m;
	unsigned char *buf = NULL;
	size_t len = 0, skip;
	int status = 1;

	if (!parse_args(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	if (read_file(o.path, &buf, &len) < 0)
		return 1;
	if (parse_wav(buf, len, &w) < 0)
		goto out_free_buf;

	skip = o.ignore_start * w.rate >= (double)w.frames ? w.frames
							   : (size_t)(o.ignore_start * w.rate);
	measure(&w, skip, &m);
	printf("duration=%.3f rate=%u freq=%.0f rms_dbfs=%.1f\n", m.duration, w.rate, m.freq,
	       m.rms_dbfs);
	if (o.verbose)
		printf("channels=%u frames=%zu total=%.3f start=%.3f end=%.3f longest_gap=%.3f "
		       "peak_dbfs=%.1f level_swing_db=%.1f\n",
		       w.channels, w.frames, m.total, (double)m.start / w.rate,
		       (double)m.end / w.rate, m.longest_gap, m.peak_dbfs, m.level_swing_db);
	fflush(stdout);
	status = run_checks(&o, &m) ? 1 : 0;

	free(w.mono);
out_free_buf:
	free(buf);
	return status;
}
