/*
 * curve.h - a daemon's CURVE keys: its own key pair and the public keys of the peers it allows
 * (docs/configuration.md "ZeroMQ authentication", docs/protocol.md §1.1).
 *
 * Every ZeroMQ connection between signalers and mediaworkers is authenticated and encrypted with
 * libzmq's CURVE. A mediaworker is the CURVE server of both its sockets: it accepts a signaler
 * only when the signaler's public key is in its allowed list (common/zap.h checks each
 * handshake). A signaler is the CURVE client: it connects to a worker only with that worker's
 * public key, and only when the key is in its own allowed list. Keys travel as Z85 text, 40
 * characters for 32 bytes; nothing here does cryptography itself (libzmq's zmq_curve_keypair,
 * zmq_curve_public, zmq_z85_decode do).
 *
 * Environment (both daemons):
 *   CURVE_SECRET_KEY_FILE   this daemon's key pair file (below), or
 *   CURVE_SECRET_KEY        its Z85 secret key (the public key is derived from it)
 *   CURVE_ALLOWED_KEYS_FILE the peers allowed: one Z85 public key per line, or
 *   CURVE_ALLOWED_KEYS      the same, comma separated
 *   ZMQ_INSECURE=1          no CURVE at all (plain ZeroMQ, anyone reaching the sockets is
 *                           believed): the only way to run without keys, with a warning
 * With neither keys nor ZMQ_INSECURE=1 a daemon refuses to start.
 *
 * Key pair file (written 0600 by curve_keygen, `relayctl keygen`):
 *   # comment
 *   public = <40 Z85 characters>
 *   secret = <40 Z85 characters>
 * Allowed list (a NAME.pub file written by curve_keygen is one):
 *   # comment                       (a Z85 key never starts with '#': its first character
 *                                    encodes a value below 85^4 * 83)
 *   <40 Z85 characters> [label]     the label (up to 63 characters) is shown in log lines
 *
 * Key rotation: curve_reload() re-reads CURVE_ALLOWED_KEYS_FILE (the daemons call it on
 * SIGHUP); connections already authenticated go on, new handshakes use the new list.
 */
#ifndef RS_CURVE_H
#define RS_CURVE_H

#include <stdbool.h>
#include <stddef.h>

#define CURVE_KEY_LEN	   40	/* Z85 text of a 32-byte key */
#define CURVE_LABEL_MAX	   63	/* label of an allowed key */
#define CURVE_MAX_ALLOWED  1024 /* keys in an allowed list */
#define CURVE_LIST_MAX	   (256 * 1024) /* bytes of an allowed-list file */
#define CURVE_KEYFILE_MAX  4096 /* bytes of a key pair file */
#define CURVE_NAME_MAX	   64	/* a key name for curve_keygen: [A-Za-z0-9._-]{1,64} */

struct curve;

/*
 * Reads a daemon's settings from the environment (above) into a new struct curve (*out, owned
 * by the caller). @peers names the allowed peers in messages ("signalers" on a worker,
 * "mediaworkers" on a signaler). With ZMQ_INSECURE=1 *out is a curve that is not enabled (one
 * warning line). Returns 0, -EINVAL after logging what is wrong (variables named, and how to
 * make keys), or -ENOMEM.
 */
int curve_from_env(const char *peers, struct curve **out);

/*
 * A curve from values instead of the environment (tools and tests): @secret_key Z85 (NULL: not
 * enabled, @allowed ignored), @allowed a comma-separated list of Z85 public keys. Returns NULL
 * with errno EINVAL (a bad key) or ENOMEM.
 */
struct curve *curve_new(const char *secret_key, const char *allowed);

/* Frees @*cp; NULL-safe, clears *cp. */
void curve_destroy(struct curve **cp);

/* True when CURVE is on (false: ZMQ_INSECURE=1). NULL-safe (NULL: false). */
bool curve_enabled(const struct curve *c);

/* This daemon's keys, Z85; "" when not enabled. Owned by @c. */
const char *curve_public_key(const struct curve *c);
const char *curve_secret_key(const struct curve *c);

/* True when @key (Z85) is in the allowed list now. */
bool curve_allows(const struct curve *c, const char *key);

/* The label given to @key in the allowed list ("" when none or not listed). Owned by @c. */
const char *curve_label(const struct curve *c, const char *key);

/* Number of allowed keys, and the @i-th one (NULL beyond). */
size_t curve_allowed_count(const struct curve *c);
const char *curve_allowed_key(const struct curve *c, size_t i);

/*
 * Re-reads CURVE_ALLOWED_KEYS_FILE (key rotation, on SIGHUP). On success the new list replaces
 * the old one and a line says how many keys were added and removed; on failure (unreadable,
 * malformed) the old list stays and the error is logged. Returns 0, -ENOENT when the list came
 * from CURVE_ALLOWED_KEYS (nothing to re-read; logged), -EINVAL, -EIO or -ENOMEM.
 */
int curve_reload(struct curve *c);

/* True when @key is 40 Z85 characters that decode to 32 bytes. */
bool curve_key_valid(const char *key);

/* True when @name can name a key pair: [A-Za-z0-9._-]{1,64}, not starting with '.'. */
bool curve_name_valid(const char *name);

/*
 * Reads a key pair file: @public_key and @secret_key (CURVE_KEY_LEN + 1 bytes each) get its
 * keys, checked to belong together. Returns 0, or -ENOENT / -EACCES / -EIO / -EINVAL with
 * @why (@whylen bytes) saying what is wrong.
 */
int curve_keyfile_read(const char *path, char *public_key, char *secret_key, char *why,
		       size_t whylen);

/*
 * Makes a new key pair (zmq_curve_keypair) and writes @dir/@name.key (the pair, mode 0600) and
 * @dir/@name.pub (the public key line "<key> @name", mode 0644, for allowed lists). Existing
 * files are kept (-EEXIST) unless @force. @public_key (CURVE_KEY_LEN + 1 bytes, may be NULL) gets
 * the new public key. Returns 0 or a negative errno with @why saying what failed.
 */
int curve_keygen(const char *dir, const char *name, bool force, char *public_key, char *why,
		 size_t whylen);

#endif
