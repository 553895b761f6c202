/*
 * rtmp_client_audio.h - the audio of rtmp_client's media phase (rtmp_client.c): the messages
 * --publish sends, and what --wav records of the played stream.
 *
 * Sent (one message per 20 ms, RTMP timestamp 20 * k ms):
 *   pcmu   0x82 + 160 bytes of G.711 u-law at 8 kHz: silence, or the --tone
 *   opus   Enhanced RTMP (veovera enhanced-rtmp v2, "Enhanced Audio"): first one SequenceStart,
 *          0x90 (SoundFormat 9 ExHeader << 4 | AudioPacketType 0) "Opus" + the OpusHead
 *          identification header of RFC 7845 5.1 (channel count 1, pre-skip = the encoder's
 *          lookahead, input rate 48000, gain 0, mapping family 0), at timestamp 0; then per
 *          20 ms one CodedFrames message, 0x91 "Opus" + one Opus packet (libopus, 48 kHz mono);
 *          at the end one SequenceEnd, 0x92 "Opus"
 *
 * Recorded (--wav): each played audio message is decoded to 16-bit mono PCM and appended to a
 * WAV whose rate is that of the first decoded message: G.711 u-law/A-law (8 kHz), Speex
 * wideband (16 kHz, the frames of a message in turn), Enhanced RTMP Opus (48 kHz; stereo
 * mixed down; the OpusHead's pre-skip dropped). Other formats (AAC, MP3, Nellymoser, PCM,
 * other FourCCs), and audio at another rate than the file's, are counted as not recorded.
 * The message headers are read here by our own reading of FLV and E-RTMP, not by the
 * gateway's parser (common/codec.c): the client checks the gateway, it does not share its bugs.
 */
#ifndef RS_RTMP_CLIENT_AUDIO_H
#define RS_RTMP_CLIENT_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#define TX_AUDIO_MAX 1500 /* the longest message tx_audio_* writes */

enum tx_codec { TX_PCMU, TX_OPUS };

struct tx_audio;

/*
 * A sender of @codec carrying a sine of @tone_hz (0: silence) at @tone_dbfs dBFS RMS (as
 * wavcheck measures: a full-scale sine is -3 dBFS). NULL when the encoder cannot be made
 * (after printing why).
 */
struct tx_audio *tx_audio_new(enum tx_codec codec, double tone_hz, double tone_dbfs);

/* Frees @*tp (NULL-safe) and clears it. */
void tx_audio_destroy(struct tx_audio **tp);

/*
 * The message that opens the stream, written into @out (at least TX_AUDIO_MAX bytes), sent
 * before the first frame with the same timestamp: Opus's SequenceStart. Returns its length, 0
 * when the codec has none (pcmu).
 */
size_t tx_audio_start(struct tx_audio *t, uint8_t *out);

/* The next 20 ms into @out (at least TX_AUDIO_MAX bytes); *ts is its RTMP timestamp in ms.
 * Returns its length, or a negative errno after printing why. */
int tx_audio_frame(struct tx_audio *t, uint8_t *out, uint32_t *ts);

/* The message that closes the stream (Opus: SequenceEnd) into @out; 0 when none. */
size_t tx_audio_end(struct tx_audio *t, uint8_t *out);

struct rx_audio;

/* A recorder into the WAV file @path (created at the first decoded message, or empty at 8 kHz
 * by rx_audio_destroy when nothing decoded). NULL on allocation failure. */
struct rx_audio *rx_audio_new(const char *path);

/* Decodes one played audio message (@msg, @len bytes, the FLV tag byte first) and appends it
 * to the file. Returns the samples appended (0 for a sequence start or end), -ENOTSUP for a
 * format not decoded here or at another rate, -EPROTO for a message that does not decode. */
int rx_audio_feed(struct rx_audio *r, const uint8_t *msg, size_t len);

/* Messages decoded and samples recorded so far. */
unsigned long rx_audio_decoded(const struct rx_audio *r);

/* Finishes the WAV file, frees @*rp (NULL-safe) and clears it. Returns 0 or a negative errno
 * (the file could not be written; printed). */
int rx_audio_destroy(struct rx_audio **rp);

#endif
