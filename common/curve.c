/*
 * curve.c - CURVE key pairs and allowed lists from files and the environment (curve.h).
 *
 *   curve_from_env: ZMQ_INSECURE=1 --> not enabled (a warning)
 *                   else  pair <-- CURVE_SECRET_KEY_FILE (keyfile_parse) | CURVE_SECRET_KEY
 *                         list <-- CURVE_ALLOWED_KEYS_FILE | CURVE_ALLOWED_KEYS (list_parse)
 *   curve_reload:   list <-- CURVE_ALLOWED_KEYS_FILE again; the old list stays on any error
 *
 * Everything read is bounded before it is used: file sizes (CURVE_LIST_MAX, CURVE_KEYFILE_MAX),
 * the number of keys, labels; a key is accepted only when libzmq's Z85 decoder takes it whole.
 */
#include "curve.h"

#include "config.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define SID "curve"

struct allowed {
	char key[CURVE_KEY_LEN + 1];
	char label[CURVE_LABEL_MAX + 1];
};

struct keylist {
	struct allowed *v;
	size_t n;
};

struct curve {
	bool enabled;
	char public_key[CURVE_KEY_LEN + 1];
	char secret_key[CURVE_KEY_LEN + 1];
	char peers[32];
	char allowed_file[PATH_MAX]; /* "": the list came from CURVE_ALLOWED_KEYS */
	struct keylist allowed;
};

/* --- keys --------------------------------------------------------------------------------- */

bool curve_key_valid(const char *key)
{
	uint8_t raw[32];

	return key && strlen(key) == CURVE_KEY_LEN && zmq_z85_decode(raw, key) != NULL;
}

bool curve_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > CURVE_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* @s..@e without surrounding blanks. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && is_space(**s))
		(*s)++;
	while (*e > *s && is_space((*e)[-1]))
		(*e)--;
}

/* A key of @len bytes at @s, copied into @out when it is one. */
static bool key_at(const char *s, size_t len, char out[CURVE_KEY_LEN + 1])
{
	if (len != CURVE_KEY_LEN)
		return false;
	memcpy(out, s, CURVE_KEY_LEN);
	out[CURVE_KEY_LEN] = '\0';
	return curve_key_valid(out);
}

/* --- files (read by config_read_file: bounded, regular files only) ---------------------------- */

/*
 * Parses an allowed list (one key per line, an optional label after it; lines starting with '#'
 * and blank lines are skipped) into @out. @origin names the source in errors. Duplicates are
 * kept once.
 */
static int list_parse(const char *text, size_t len, const char *origin, struct keylist *out,
		      char *why, size_t whylen)
{
	const char *p = text, *end = text + len;
	struct keylist l = {0};
	unsigned line = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *s = p, *e = nl ? nl : end, *w;
		struct allowed a = {0};
		bool dup = false;

		p = nl ? nl + 1 : end;
		line++;
		trim(&s, &e);
		if (s == e || *s == '#')
			continue;
		for (w = s; w < e && !is_space(*w); w++)
			;
		if (!key_at(s, (size_t)(w - s), a.key)) {
			snprintf(why, whylen, "%s line %u: \"%.*s\" is not a key (40 Z85 characters)",
				 origin, line, (int)(w - s > 48 ? 48 : w - s), s);
			goto out_free;
		}
		trim(&w, &e);
		if ((size_t)(e - w) > CURVE_LABEL_MAX) {
			snprintf(why, whylen, "%s line %u: label longer than %d characters", origin,
				 line, CURVE_LABEL_MAX);
			goto out_free;
		}
		for (const char *c = w; c < e; c++) {
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) {
				snprintf(why, whylen, "%s line %u: label with a control or non-ASCII byte",
					 origin, line);
				goto out_free;
			}
		}
		memcpy(a.label, w, (size_t)(e - w));
		for (size_t i = 0; i < l.n && !dup; i++)
			dup = strcmp(l.v[i].key, a.key) == 0;
		if (dup)
			continue;
		if (l.n == CURVE_MAX_ALLOWED) {
			snprintf(why, whylen, "%s: more than %d keys", origin, CURVE_MAX_ALLOWED);
			goto out_free;
		}
		if (l.n % 16 == 0) {
			struct allowed *v = realloc(l.v, (l.n + 16) * sizeof(*v));

			if (!v) {
				snprintf(why, whylen, "%s: out of memory", origin);
				free(l.v);
				return -ENOMEM;
			}
			l.v = v;
		}
		l.v[l.n++] = a;
	}
	*out = l;
	return 0;

out_free:
	free(l.v);
	return -EINVAL;
}

/* Reads allowed-list file @path into @out. */
static int list_read(const char *path, struct keylist *out, char *why, size_t whylen)
{
	char *text;
	size_t len;
	int ret = config_read_file(path, CURVE_LIST_MAX, &text, &len, why, whylen);

	if (ret < 0)
		return ret;
	ret = list_parse(text, len, path, out, why, whylen);
	free(text);
	return ret;
}

/* "public = K" / "secret = K" lines, comments and blank lines; nothing else. */
static int keyfile_parse(const char *text, size_t len, const char *path, char *public_key,
			 char *secret_key, char *why, size_t whylen)
{
	const char *p = text, *end = text + len;
	char derived[CURVE_KEY_LEN + 1];
	unsigned line = 0;

	public_key[0] = secret_key[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *s = p, *e = nl ? nl : end, *eq, *ne, *vs;
		char *dst;

		p = nl ? nl + 1 : end;
		line++;
		trim(&s, &e);
		if (s == e || *s == '#')
			continue;
		eq = memchr(s, '=', (size_t)(e - s));
		if (!eq) {
			snprintf(why, whylen, "%s line %u: not \"public = KEY\" or \"secret = KEY\"",
				 path, line);
			return -EINVAL;
		}
		ne = eq;
		trim(&s, &ne);
		if ((size_t)(ne - s) == 6 && memcmp(s, "public", 6) == 0) {
			dst = public_key;
		} else if ((size_t)(ne - s) == 6 && memcmp(s, "secret", 6) == 0) {
			dst = secret_key;
		} else {
			snprintf(why, whylen, "%s line %u: unknown name \"%.*s\"", path, line,
				 (int)(ne - s > 16 ? 16 : ne - s), s);
			return -EINVAL;
		}
		vs = eq + 1;
		trim(&vs, &e);
		if (dst[0] || !key_at(vs, (size_t)(e - vs), dst)) {
			snprintf(why, whylen, "%s line %u: %s", path, line,
				 dst[0] ? "key given twice" : "not a key (40 Z85 characters)");
			return -EINVAL;
		}
	}
	if (!secret_key[0]) {
		snprintf(why, whylen, "%s: no \"secret = KEY\" line", path);
		return -EINVAL;
	}
	if (zmq_curve_public(derived, secret_key) < 0) {
		snprintf(why, whylen, "%s: libzmq cannot derive the public key (%s)", path,
			 zmq_strerror(errno));
		return -EINVAL;
	}
	if (public_key[0] && strcmp(derived, public_key) != 0) {
		snprintf(why, whylen, "%s: the public key does not belong to the secret key", path);
		return -EINVAL;
	}
	memcpy(public_key, derived, sizeof(derived));
	return 0;
}

int curve_keyfile_read(const char *path, char *public_key, char *secret_key, char *why,
		       size_t whylen)
{
	struct stat st;
	char *text;
	size_t len;
	int ret = config_read_file(path, CURVE_KEYFILE_MAX, &text, &len, why, whylen);

	if (ret < 0)
		return ret;
	ret = keyfile_parse(text, len, path, public_key, secret_key, why, whylen);
	explicit_bzero(text, len);
	free(text);
	if (ret == 0 && stat(path, &st) == 0 && (st.st_mode & 077))
		log_warn(SID, "%s is readable by others (mode %03o): a secret key belongs in a "
			      "0600 file",
			 path, (unsigned)(st.st_mode & 0777));
	return ret;
}

/* --- the curve ---------------------------------------------------------------------------- */

static struct curve *curve_alloc(const char *peers)
{
	struct curve *c = calloc(1, sizeof(*c));

	if (c)
		snprintf(c->peers, sizeof(c->peers), "%s", peers ? peers : "peers");
	return c;
}

/* Sets @c's pair from secret @sk. */
static int set_secret(struct curve *c, const char *sk)
{
	if (!curve_key_valid(sk) || zmq_curve_public(c->public_key, sk) < 0)
		return -EINVAL;
	memcpy(c->secret_key, sk, CURVE_KEY_LEN + 1);
	c->enabled = true;
	return 0;
}

/* CURVE_ALLOWED_KEYS's commas as lines. */
static int list_from_csv(const char *csv, const char *origin, struct keylist *out, char *why,
			 size_t whylen)
{
	size_t len = strlen(csv);
	char *text;
	int ret;

	if (len > CURVE_LIST_MAX) {
		snprintf(why, whylen, "%s: longer than %d bytes", origin, CURVE_LIST_MAX);
		return -EINVAL;
	}
	text = strdup(csv);
	if (!text)
		return -ENOMEM;
	for (char *p = text; *p; p++)
		if (*p == ',')
			*p = '\n';
	ret = list_parse(text, len, origin, out, why, whylen);
	free(text);
	return ret;
}

struct curve *curve_new(const char *secret_key, const char *allowed)
{
	struct curve *c = curve_alloc(NULL);
	char why[256];
	int ret;

	if (!c)
		return NULL;
	if (!secret_key)
		return c;
	ret = set_secret(c, secret_key);
	if (ret == 0)
		ret = list_from_csv(allowed ? allowed : "", "allowed keys", &c->allowed, why,
				    sizeof(why));
	if (ret < 0) {
		curve_destroy(&c);
		errno = -ret;
	}
	return c;
}

void curve_destroy(struct curve **cp)
{
	struct curve *c = cp ? *cp : NULL;

	if (!c)
		return;
	*cp = NULL;
	explicit_bzero(c->secret_key, sizeof(c->secret_key));
	free(c->allowed.v);
	free(c);
}

static int insecure(struct curve *c)
{
	static const char *const vars[] = {"CURVE_SECRET_KEY_FILE", "CURVE_SECRET_KEY",
					   "CURVE_ALLOWED_KEYS_FILE", "CURVE_ALLOWED_KEYS"};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (config_str(vars[i], NULL))
			log_warn(SID, "ZMQ_INSECURE=1: %s is ignored", vars[i]);
	log_warn(SID, "ZMQ_INSECURE=1: ZeroMQ without CURVE: no authentication, no encryption; "
		      "anyone who reaches the ZeroMQ endpoints is believed (trusted networks only)");
	c->enabled = false;
	return 0;
}

/* The key pair of CURVE_SECRET_KEY_FILE or CURVE_SECRET_KEY. */
static int pair_from_env(struct curve *c, const char *sk_file, const char *sk)
{
	char why[PATH_MAX + 128];
	int ret;

	if (sk_file && sk) {
		log_error(SID, "config: CURVE_SECRET_KEY_FILE and CURVE_SECRET_KEY are both set: "
			       "use one");
		return -EINVAL;
	}
	if (sk) {
		if (set_secret(c, sk) < 0) {
			log_error(SID, "config: CURVE_SECRET_KEY is not a Z85 secret key (40 "
				       "characters)");
			return -EINVAL;
		}
		return 0;
	}
	ret = curve_keyfile_read(sk_file, c->public_key, c->secret_key, why, sizeof(why));
	if (ret < 0) {
		log_error(SID, "config: CURVE_SECRET_KEY_FILE: %s", why);
		return ret == -ENOMEM ? ret : -EINVAL;
	}
	c->enabled = true;
	return 0;
}

int curve_from_env(const char *peers, struct curve **out)
{
	const char *sk_file = config_str("CURVE_SECRET_KEY_FILE", NULL);
	const char *sk = config_str("CURVE_SECRET_KEY", NULL);
	const char *al_file = config_str("CURVE_ALLOWED_KEYS_FILE", NULL);
	const char *al = config_str("CURVE_ALLOWED_KEYS", NULL);
	struct curve *c = curve_alloc(peers);
	char why[PATH_MAX + 128];
	bool off = false;
	int ret;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	ret = config_bool("ZMQ_INSECURE", false, &off);
	if (ret == 0 && off) {
		*out = c;
		return insecure(c);
	}
	if (ret < 0)
		goto out_free;
	ret = -EINVAL;
	if (!sk_file && !sk) {
		log_error(SID, "config: no CURVE keys for ZeroMQ: set CURVE_SECRET_KEY_FILE (or "
			       "CURVE_SECRET_KEY) and CURVE_ALLOWED_KEYS_FILE (or CURVE_ALLOWED_KEYS, "
			       "the %s allowed); make them with `relayctl keygen NAME` "
			       "(docs/configuration.md), or set ZMQ_INSECURE=1 to run without "
			       "authentication",
			  c->peers);
		goto out_free;
	}
	if (!al_file == !al) {
		log_error(SID, "config: %s CURVE_ALLOWED_KEYS_FILE or CURVE_ALLOWED_KEYS (the "
			       "public keys of the %s allowed; `relayctl keygen` writes NAME.pub)",
			  al ? "both set: use one of" : "no allowed keys: set", c->peers);
		goto out_free;
	}
	ret = pair_from_env(c, sk_file, sk);
	if (ret < 0)
		goto out_free;
	if (al_file) {
		if (strlen(al_file) >= sizeof(c->allowed_file)) {
			log_error(SID, "config: CURVE_ALLOWED_KEYS_FILE: path too long");
			ret = -EINVAL;
			goto out_free;
		}
		snprintf(c->allowed_file, sizeof(c->allowed_file), "%s", al_file);
		ret = list_read(al_file, &c->allowed, why, sizeof(why));
	} else {
		ret = list_from_csv(al, "CURVE_ALLOWED_KEYS", &c->allowed, why, sizeof(why));
	}
	if (ret == 0 && c->allowed.n == 0) {
		snprintf(why, sizeof(why), "%s lists no key", al_file ? al_file : "CURVE_ALLOWED_KEYS");
		ret = -EINVAL;
	}
	if (ret < 0) {
		log_error(SID, "config: %s: %s", al_file ? "CURVE_ALLOWED_KEYS_FILE" : "CURVE_ALLOWED_KEYS",
			  why);
		goto out_free;
	}
	log_info(SID, "ZeroMQ CURVE on: public key %s, %zu %s allowed (%s)", c->public_key,
		 c->allowed.n, c->peers, al_file ? al_file : "CURVE_ALLOWED_KEYS");
	*out = c;
	return 0;

out_free:
	curve_destroy(&c);
	return ret == -ENOMEM ? ret : -EINVAL;
}

bool curve_enabled(const struct curve *c)
{
	return c && c->enabled;
}

const char *curve_public_key(const struct curve *c)
{
	return c->enabled ? c->public_key : "";
}

const char *curve_secret_key(const struct curve *c)
{
	return c->enabled ? c->secret_key : "";
}

static const struct allowed *find(const struct curve *c, const char *key)
{
	for (size_t i = 0; key && i < c->allowed.n; i++)
		if (strcmp(c->allowed.v[i].key, key) == 0)
			return &c->allowed.v[i];
	return NULL;
}

bool curve_allows(const struct curve *c, const char *key)
{
	return c->enabled && find(c, key) != NULL;
}

const char *curve_label(const struct curve *c, const char *key)
{
	const struct allowed *a = find(c, key);

	return a ? a->label : "";
}

size_t curve_allowed_count(const struct curve *c)
{
	return c->allowed.n;
}

const char *curve_allowed_key(const struct curve *c, size_t i)
{
	return i < c->allowed.n ? c->allowed.v[i].key : NULL;
}

/* Keys of @a missing from @b. */
static size_t missing(const struct keylist *a, const struct keylist *b)
{
	size_t n = 0;

	for (size_t i = 0; i < a->n; i++) {
		bool found = false;

		for (size_t j = 0; j < b->n && !found; j++)
			found = strcmp(a->v[i].key, b->v[j].key) == 0;
		n += !found;
	}
	return n;
}

int curve_reload(struct curve *c)
{
	struct keylist l = {0};
	char why[PATH_MAX + 128];
	int ret;

	if (!c->enabled) {
		log_info(SID, "reload: ZMQ_INSECURE=1: no CURVE keys to re-read");
		return -ENOENT;
	}
	if (!c->allowed_file[0]) {
		log_warn(SID, "reload: the allowed %s come from CURVE_ALLOWED_KEYS: nothing to "
			      "re-read (set CURVE_ALLOWED_KEYS_FILE to rotate keys without a restart)",
			 c->peers);
		return -ENOENT;
	}
	ret = list_read(c->allowed_file, &l, why, sizeof(why));
	if (ret < 0) {
		log_error(SID, "reload: %s; the %zu keys allowed so far stay", why, c->allowed.n);
		return ret;
	}
	log_info(SID, "reload: %s: %zu %s allowed (%zu added, %zu removed); connections already "
		      "authenticated go on",
		 c->allowed_file, l.n, c->peers, missing(&l, &c->allowed), missing(&c->allowed, &l));
	if (l.n == 0)
		log_warn(SID, "reload: %s lists no key: no new connection will be accepted",
			 c->allowed_file);
	free(c->allowed.v);
	c->allowed = l;
	return 0;
}

/* --- keygen ------------------------------------------------------------------------------- */

/* Writes @text to @path with @mode: exclusively, or (with @force) replacing it atomically. */
static int write_file(const char *path, const char *text, mode_t mode, bool force, char *why,
		      size_t whylen)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text), done = 0;
	int fd, err = 0;

	if (force) {
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
			snprintf(why, whylen, "%s: path too long", path);
			return -ENAMETOOLONG;
		}
		fd = mkstemp(tmp);
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0) {
		err = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return err;
	}
	if (fchmod(fd, mode) < 0)
		err = -errno;
	while (!err && done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = -errno;
		else
			done += (size_t)n;
	}
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && force && rename(tmp, path) < 0)
		err = -errno;
	if (err) {
		snprintf(why, whylen, "%s: %s", path, strerror(-err));
		unlink(force ? tmp : path);
	}
	return err;
}

int curve_keygen(const char *dir, const char *name, bool force, char *public_key, char *why,
		 size_t whylen)
{
	char pub[CURVE_KEY_LEN + 1], sec[CURVE_KEY_LEN + 1];
	char key_path[PATH_MAX], pub_path[PATH_MAX], text[512];
	struct stat st;
	int ret;

	if (!curve_name_valid(name)) {
		snprintf(why, whylen, "name \"%.70s\" is not [A-Za-z0-9._-]{1,%d} (and does not "
				      "start with '.')",
			 name ? name : "", CURVE_NAME_MAX);
		return -EINVAL;
	}
	if (!dir || !*dir)
		dir = ".";
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	if ((size_t)snprintf(key_path, sizeof(key_path), "%s/%s.key", dir, name) >=
		    sizeof(key_path) ||
	    (size_t)snprintf(pub_path, sizeof(pub_path), "%s/%s.pub", dir, name) >=
		    sizeof(pub_path)) {
		snprintf(why, whylen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	if (!force && (lstat(key_path, &st) == 0 || lstat(pub_path, &st) == 0)) {
		snprintf(why, whylen, "%s exists (--force replaces it)",
			 lstat(key_path, &st) == 0 ? key_path : pub_path);
		return -EEXIST;
	}
	if (zmq_curve_keypair(pub, sec) < 0) {
		snprintf(why, whylen, "libzmq cannot make a key pair: %s", zmq_strerror(errno));
		return -ENOTSUP;
	}
	snprintf(text, sizeof(text),
		 "# rtmp2sip CURVE key pair \"%s\" (relayctl keygen): the secret key stays here\n"
		 "# (CURVE_SECRET_KEY_FILE of the daemons that use it)\n"
		 "public = %s\n"
		 "secret = %s\n",
		 name, pub, sec);
	ret = write_file(key_path, text, 0600, force, why, whylen);
	explicit_bzero(text, sizeof(text));
	explicit_bzero(sec, sizeof(sec));
	if (ret < 0)
		return ret;
	snprintf(text, sizeof(text),
		 "# rtmp2sip CURVE public key \"%s\": add this line to the CURVE_ALLOWED_KEYS_FILE "
		 "of its peers\n%s %s\n",
		 name, pub, name);
	ret = write_file(pub_path, text, 0644, force, why, whylen);
	if (ret < 0) {
		unlink(key_path);
		return ret;
	}
	if (public_key)
		memcpy(public_key, pub, sizeof(pub));
	return 0;
}
