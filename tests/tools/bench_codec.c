/*
 * bench_codec.c - per-frame CPU cost of the codec building blocks and of whole transcoded frame
 * pairs, to compare with the limits measured in docs (REFERENCE.md: Speex WB q8 c2 encode 68 us,
 * decode 8.7 us; NB 29 / 4.4 us; resampling ~2 us; G.711 < 0.5 us).
 *
 *   bench_codec [frames]      (default 3000 frames of 20 ms per measurement)
 *
 * Figures are thread CPU microseconds per 20 ms frame (per frame pair: one frame each way, for
 * the transcoder lines). The FRAMED codecs (mediaworker/acodec.h) run in their own frames (AAC
 * 1024 samples, MP3 1152/576, Nellymoser 256): their figures are scaled to 20 ms of audio, the
 * codec's frame and payload size shown beside them. "codec" is the bare codec work the
 * transcoder does for those frames,
 * measured in the same run; "legs/2 cores" is 2 x 20000 us / transcoder us, the ceiling if the
 * transcoder were the only work. Prints figures, never pass/fail.
 */
#include "acodec.h"
#include "codec.h"
#include "g711.h"
#include "transcode.h"

#include <speex/speex.h>
#include <speex/speex_resampler.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void signal_fill(int16_t *pcm, size_t n, unsigned rate)
{
	for (size_t i = 0; i < n; i++) {
		double x = (double)i / rate;

		pcm[i] = (int16_t)(8000 * sin(6.283185307179586 * 1000 * x) +
				   3000 * sin(6.283185307179586 * 300 * x));
	}
}

/* Speex encode and decode cost for @mode at quality 8, complexity 2. */
static void bench_speex(const char *name, const SpeexMode *mode, unsigned frames)
{
	void *enc = speex_encoder_init(mode), *dec = speex_decoder_init(mode);
	spx_int32_t q = 8, c = 2, fs = 0, one = 1;
	SpeexBits bits;
	int16_t *pcm, out[320];
	char(*pk)[200];
	int *len;
	double t0, t1, t2;

	speex_encoder_ctl(enc, SPEEX_SET_QUALITY, &q);
	speex_encoder_ctl(enc, SPEEX_SET_COMPLEXITY, &c);
	speex_encoder_ctl(enc, SPEEX_GET_FRAME_SIZE, &fs);
	speex_decoder_ctl(dec, SPEEX_SET_ENH, &one);
	speex_bits_init(&bits);
	pcm = malloc(sizeof(*pcm) * (size_t)fs * frames);
	pk = malloc(sizeof(*pk) * frames);
	len = malloc(sizeof(*len) * frames);
	if (!pcm || !pk || !len)
		exit(1);
	signal_fill(pcm, (size_t)fs * frames, fs == 320 ? 16000 : 8000);
	t0 = cpu_us();
	for (unsigned f = 0; f < frames; f++) {
		speex_bits_reset(&bits);
		speex_encode_int(enc, pcm + (size_t)f * fs, &bits);
		len[f] = speex_bits_write(&bits, pk[f], 200);
	}
	t1 = cpu_us();
	for (unsigned f = 0; f < frames; f++) {
		speex_bits_read_from(&bits, pk[f], len[f]);
		speex_decode_int(dec, &bits, out);
	}
	t2 = cpu_us();
	printf("%-28s encode %6.1f us  decode %5.1f us  (%d bytes/frame)\n", name,
	       (t1 - t0) / frames, (t2 - t1) / frames, len[frames / 2]);
	free(pcm);
	free(pk);
	free(len);
	speex_bits_destroy(&bits);
	speex_encoder_destroy(enc);
	speex_decoder_destroy(dec);
}

static void bench_resampler(unsigned in_rate, unsigned out_rate, unsigned frames)
{
	int err = 0;
	SpeexResamplerState *rs = speex_resampler_init(1, in_rate, out_rate, 3, &err);
	int16_t in[320], out[640];
	unsigned n = in_rate / 50;
	double t0;

	signal_fill(in, n, in_rate);
	t0 = cpu_us();
	for (unsigned f = 0; f < frames; f++) {
		spx_uint32_t il = n, ol = 640;

		speex_resampler_process_int(rs, 0, in, &il, out, &ol);
	}
	printf("resample %5u -> %5u q3      %6.2f us\n", in_rate, out_rate,
	       (cpu_us() - t0) / frames);
	speex_resampler_destroy(rs);
}

static void bench_g711(unsigned frames)
{
	int16_t pcm[160];
	uint8_t b[160], c[160];
	volatile unsigned sink = 0;
	double t0, t1, t2;

	signal_fill(pcm, 160, 8000);
	t0 = cpu_us();
	for (unsigned f = 0; f < frames * 10; f++) {
		pcm[f % 160] ^= 1;
		g711_ulaw_encode_buf(b, pcm, 160);
		sink += b[f % 160];
	}
	t1 = cpu_us();
	for (unsigned f = 0; f < frames * 10; f++) {
		b[f % 160] ^= 1;
		g711_ulaw_decode_buf(pcm, b, 160);
		sink += (unsigned)pcm[f % 160];
	}
	t2 = cpu_us();
	printf("G.711 u-law 160 samples      encode %6.2f us  decode %5.2f us",
	       (t1 - t0) / frames / 10, (t2 - t1) / frames / 10);
	t0 = cpu_us();
	for (unsigned f = 0; f < frames * 10; f++) {
		b[f % 160] ^= 1;
		g711_ulaw_to_alaw_buf(c, b, 160);
		sink += c[f % 160];
	}
	printf("  u->A %5.2f us\n", (cpu_us() - t0) / frames / 10);
	(void)sink;
}

/* acodec encode and decode cost of @id at @rate (mono), per 20 ms of audio, over as many codec
 * frames as @frames 20 ms frames hold. */
static void bench_acodec(const char *name, enum codec_id id, unsigned rate,
			 const struct acodec_enc_opts *o, unsigned frames)
{
	const struct codec *c = codec_by_id(id);
	char why[160];
	struct acodec_enc *e = acodec_enc_new(c, rate, 1, o, NULL, why, sizeof(why));
	struct acodec_dec *d = NULL;
	uint8_t cfg[ACODEC_MAX_CONFIG], *pk = NULL;
	int16_t *pcm = NULL, out[8192];
	size_t cl, *len = NULL, bytes = 0, coded = 0;
	unsigned fr, n;
	double t0, t1, t2, per20;

	if (!e) {
		printf("%-28s cannot bench: %s\n", name, why);
		return;
	}
	fr = acodec_enc_frame(e);
	n = (unsigned)((double)frames * rate / 50 / fr) + 1;
	cl = acodec_enc_config(e, cfg, sizeof(cfg));
	d = acodec_dec_new(c, rate, 1, cl ? cfg : NULL, cl, NULL, why, sizeof(why));
	pcm = malloc(sizeof(*pcm) * (size_t)fr * n);
	pk = malloc((size_t)n * 2048);
	len = calloc(n, sizeof(*len));
	if (!d || !pcm || !pk || !len) {
		printf("%-28s cannot bench: %s\n", name, d ? "no memory" : why);
		goto out;
	}
	signal_fill(pcm, (size_t)fr * n, rate);
	t0 = cpu_us();
	for (unsigned f = 0; f < n; f++) {
		int b = acodec_encode(e, pcm + (size_t)f * fr, pk + (size_t)f * 2048, 2048);

		len[f] = b > 0 ? (size_t)b : 0;
	}
	t1 = cpu_us();
	for (unsigned f = 0; f < n; f++) {
		if (len[f] == 0)
			continue;
		acodec_decode(d, pk + (size_t)f * 2048, len[f], out, sizeof(out) / sizeof(out[0]));
		bytes += len[f];
		coded++;
	}
	t2 = cpu_us();
	per20 = (double)rate / 50 / fr / n; /* codec frames per 20 ms, over n frames */
	printf("%-28s encode %6.1f us  decode %5.1f us  (%zu bytes/%u samples)\n", name,
	       (t1 - t0) * per20, (t2 - t1) * per20, coded ? bytes / coded : 0, fr);
out:
	free(pcm);
	free(pk);
	free(len);
	acodec_dec_free(&d);
	acodec_enc_free(&e);
}

static void bench_acodecs(unsigned frames)
{
	struct acodec_enc_opts fec = {.fec = true, .loss_pct = 10};
	struct acodec_enc_opts c9 = {.complexity = 9};

	bench_acodec("G.722 (16 kHz)", CODEC_G722, 16000, NULL, frames);
	bench_acodec("Opus 48 kHz 32k VOIP c5", CODEC_OPUS, 48000, NULL, frames);
	bench_acodec("Opus 48 kHz 32k VOIP c5 FEC", CODEC_OPUS, 48000, &fec, frames);
	bench_acodec("Opus 48 kHz 32k VOIP c9", CODEC_OPUS, 48000, &c9, frames);
	bench_acodec("Opus 16 kHz 32k VOIP c5", CODEC_OPUS, 16000, NULL, frames);
	bench_acodec("AAC-LC 48 kHz 64k", CODEC_AAC, 48000, NULL, frames);
	bench_acodec("AAC-LC 44.1 kHz 64k", CODEC_AAC, 44100, NULL, frames);
	bench_acodec("AAC-LC 16 kHz 48k", CODEC_AAC, 16000, NULL, frames);
	bench_acodec("MP3 44.1 kHz 64k", CODEC_MP3, 44100, NULL, frames);
	bench_acodec("MP3 22.05 kHz 32k", CODEC_MP3, 22050, NULL, frames);
	bench_acodec("Nellymoser 8 kHz", CODEC_NELLYMOSER, 8000, NULL, frames);
	bench_acodec("Nellymoser 16 kHz", CODEC_NELLYMOSER, 16000, NULL, frames);
	bench_acodec("Nellymoser 44.1 kHz", CODEC_NELLYMOSER, 44100, NULL, frames);
}

int main(int argc, char **argv)
{
	static const struct {
		enum codec_id r, s;
	} pairs[] = {
	    {CODEC_SPEEX_WB, CODEC_PCMU},     {CODEC_SPEEX_WB, CODEC_PCMA},
	    {CODEC_PCMU, CODEC_SPEEX_WB},     {CODEC_SPEEX_WB, CODEC_SPEEX_NB},
	    {CODEC_PCMU, CODEC_SPEEX_NB},     {CODEC_PCMU, CODEC_PCMA},
	    {CODEC_SPEEX_WB, CODEC_SPEEX_WB}, {CODEC_PCMU, CODEC_PCMU},
	    {CODEC_AAC, CODEC_PCMU},	      {CODEC_AAC, CODEC_G722},
	    {CODEC_AAC, CODEC_OPUS},	      {CODEC_PCMU, CODEC_G722},
	    {CODEC_PCMU, CODEC_OPUS},	      {CODEC_SPEEX_WB, CODEC_G722},
	    {CODEC_SPEEX_WB, CODEC_OPUS},     {CODEC_OPUS, CODEC_OPUS},
	    {CODEC_OPUS, CODEC_PCMU},	      {CODEC_MP3, CODEC_PCMU},
	    {CODEC_NELLYMOSER, CODEC_PCMU},
	};
	unsigned frames = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 3000;

	if (frames < 100)
		frames = 100;
	printf("== codec building blocks, per 20 ms frame (%u frames) ==\n", frames);
	bench_speex("Speex WB (16 kHz) q8 c2", &speex_wb_mode, frames);
	bench_speex("Speex NB (8 kHz)  q8 c2", &speex_nb_mode, frames);
	bench_resampler(16000, 8000, frames);
	bench_resampler(8000, 16000, frames);
	bench_g711(frames);
	bench_acodecs(frames);
	printf("\n== transcoder, per frame pair (one frame each way: 20 ms, or the RTMP codec's own\n"
	       "   frame for AAC 1024, MP3 1152, Nellymoser 256 samples; a publisher at 44.1 kHz) ==\n");
	printf("%-34s %-5s %9s %14s %6s %13s\n", "RTMP <-> SIP", "core", "codec_us",
	       "transcoder_us", "ratio", "legs/2 cores");
	for (unsigned i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		/* the narrowband core matters only where Speex WB meets an 8 kHz side */
		bool speex = pairs[i].r == CODEC_SPEEX_WB || pairs[i].s == CODEC_SPEEX_WB;

		for (int nb = 1; nb >= (speex ? 0 : 1); nb--) {
			struct transcode_opts o;
			struct tc_bench b;
			char name[64];

			transcode_opts_default(&o);
			o.narrowband_core = nb;
			if (transcode_bench(pairs[i].r, pairs[i].s, &o, frames, &b) < 0) {
				printf("%s <-> %s: cannot bench\n", codec_by_id(pairs[i].r)->label,
				       codec_by_id(pairs[i].s)->label);
				continue;
			}
			snprintf(name, sizeof(name), "%s <-> %s", codec_by_id(pairs[i].r)->label,
				 codec_by_id(pairs[i].s)->label);
			printf("%-34s %-5s %9.1f %14.1f %6.2f %13.0f\n", name, !speex ? "-" : nb ? "nb" : "full",
			       b.codec_us, b.transcoder_us, b.ratio, 40000.0 / b.transcoder_us);
		}
	}
	return 0;
}
