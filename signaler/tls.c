/*
 * tls.c - TLS for RTMPS on OpenSSL (see tls.h).
 *
 * One connection's TLS, driven by rtmp_conn.c:
 *
 *   (first byte readable) --tls_conn_new--> HANDSHAKE --SSL_do_handshake == 1--> OPEN
 *                                              |   \ WANT_READ / WANT_WRITE: -EAGAIN, wait
 *                                              |                               |
 *                                              +--- alert, EOF, not TLS -------+--> FAILED
 *                                                 (-EPROTO / -ECONNRESET, final)
 *
 *   OPEN: SSL_read_ex / SSL_write_ex; each side remembers the socket event its last -EAGAIN
 *         waits for (a read may wait for EV_WRITE and a write for EV_READ).
 *
 * The context: SSL_CTX with TLS 1.2 minimum, OpenSSL's default cipher list, renegotiation off,
 * no server-side session cache (resumption by stateless tickets only, so a handshake flood leaves
 * nothing behind), released buffers on idle connections, partial writes from a queue that may
 * move. A reload builds a whole new SSL_CTX and swaps it in: each SSL holds a reference to the
 * SSL_CTX it was made from, so connections already open keep theirs.
 *
 * OpenSSL's error queue is per thread and shared by every connection: it is cleared before each
 * call whose result is examined, and read (emptied) when a call fails.
 */
#include "tls.h"

#include "evloop.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct tls_ctx {
	SSL_CTX *ssl;
	char *cert_file, *key_file;
	struct tls_ctx_stats st;
};

struct tls_conn {
	SSL *ssl;
	bool open;
	int failed;		   /* the handshake's final error, 0 until then */
	unsigned want_rd, want_wr; /* event the last -EAGAIN of each side waits for */
	char desc[96];
	char err[200];
};

/* The oldest queued OpenSSL error as text (or @fallback), and the queue emptied. */
static void ssl_reason(char *out, size_t len, const char *fallback)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, out, len);
	else
		snprintf(out, len, "%s", fallback);
	ERR_clear_error();
}

/* "AB:CD:..." SHA-256 of @x; "?" when it cannot be computed. */
static void fingerprint(X509 *x, char *out, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	size_t at = 0;

	if (!x || X509_digest(x, EVP_sha256(), md, &n) != 1 || n == 0) {
		snprintf(out, len, "?");
		return;
	}
	for (unsigned i = 0; i < n && at + 3 < len; i++)
		at += (size_t)snprintf(out + at, len - at, "%s%02X", i ? ":" : "", md[i]);
}

static int64_t not_after(X509 *x)
{
	struct tm tm;

	if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

/* A new SSL_CTX with the files' certificate and key, or NULL after logging why. */
static SSL_CTX *load(const char *cert_file, const char *key_file)
{
	char why[200], fp[EVP_MAX_MD_SIZE * 3 + 1];
	SSL_CTX *c;

	ERR_clear_error();
	c = SSL_CTX_new(TLS_server_method());
	if (!c) {
		ssl_reason(why, sizeof(why), "out of memory");
		log_error(NULL, "rtmps: cannot create a TLS context: %s", why);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
				       | SSL_OP_IGNORE_UNEXPECTED_EOF
#endif
	);
	SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				    SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1) {
		ssl_reason(why, sizeof(why), "no certificate");
		log_error(NULL, "rtmps: cannot load the certificate chain from %s: %s", cert_file, why);
		goto out_free;
	}
	if (SSL_CTX_use_PrivateKey_file(c, key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_reason(why, sizeof(why), "no key");
		log_error(NULL, "rtmps: cannot load the private key from %s: %s", key_file, why);
		goto out_free;
	}
	if (SSL_CTX_check_private_key(c) != 1) {
		ssl_reason(why, sizeof(why), "mismatch");
		log_error(NULL, "rtmps: the key in %s does not match the certificate in %s: %s",
			  key_file, cert_file, why);
		goto out_free;
	}
	fingerprint(SSL_CTX_get0_certificate(c), fp, sizeof(fp));
	log_info(NULL, "rtmps: certificate %s loaded (SHA-256 %s)", cert_file, fp);
	return c;

out_free:
	SSL_CTX_free(c);
	return NULL;
}

struct tls_ctx *tls_ctx_new(const char *cert_file, const char *key_file)
{
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->cert_file = strdup(cert_file);
	ctx->key_file = strdup(key_file);
	if (!ctx->cert_file || !ctx->key_file)
		goto out_free;
	ctx->ssl = load(cert_file, key_file);
	if (!ctx->ssl)
		goto out_free;
	ctx->st.not_after = not_after(SSL_CTX_get0_certificate(ctx->ssl));
	return ctx;

out_free:
	free(ctx->cert_file);
	free(ctx->key_file);
	free(ctx);
	return NULL;
}

void tls_ctx_destroy(struct tls_ctx **ctxp)
{
	struct tls_ctx *ctx = ctxp ? *ctxp : NULL;

	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx->cert_file);
	free(ctx->key_file);
	free(ctx);
	*ctxp = NULL;
}

int tls_ctx_reload(struct tls_ctx *ctx)
{
	SSL_CTX *fresh = load(ctx->cert_file, ctx->key_file);

	if (!fresh) {
		ctx->st.reload_failures++;
		log_error(NULL, "rtmps: reload failed: new connections keep the certificate loaded before");
		return -EINVAL;
	}
	SSL_CTX_free(ctx->ssl);
	ctx->ssl = fresh;
	ctx->st.reloads++;
	ctx->st.not_after = not_after(SSL_CTX_get0_certificate(fresh));
	return 0;
}

void tls_ctx_get_stats(const struct tls_ctx *ctx, struct tls_ctx_stats *out)
{
	*out = ctx->st;
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd)
{
	struct tls_conn *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	ERR_clear_error();
	t->ssl = SSL_new(ctx->ssl);
	if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
		SSL_free(t->ssl);
		ERR_clear_error();
		free(t);
		return NULL;
	}
	SSL_set_accept_state(t->ssl);
	return t;
}

void tls_conn_destroy(struct tls_conn **tp)
{
	struct tls_conn *t = tp ? *tp : NULL;

	if (!t)
		return;
	SSL_free(t->ssl);
	free(t);
	*tp = NULL;
}

/*
 * What the failed SSL call @r of one side (@want: that side's wait) means: -EAGAIN with *want
 * set, 0 for a closed connection, or a negative errno with t->err set.
 */
static int failure(struct tls_conn *t, int r, unsigned *want)
{
	int saved = errno;
	int e = SSL_get_error(t->ssl, r);

	*want = 0;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want = EV_READ;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want = EV_WRITE;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN: /* close_notify, or a bare EOF (SSL_OP_IGNORE_UNEXPECTED_EOF) */
		snprintf(t->err, sizeof(t->err), "peer closed the connection");
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && (saved == 0 || saved == EPIPE || saved == ECONNRESET)) {
			snprintf(t->err, sizeof(t->err), "peer closed the connection%s%s",
				 saved ? ": " : "", saved ? strerror(saved) : "");
			ERR_clear_error();
			return 0;
		}
		if (ERR_peek_error() == 0) {
			snprintf(t->err, sizeof(t->err), "%s", strerror(saved));
			return saved ? -saved : -EIO;
		}
		ssl_reason(t->err, sizeof(t->err), "system error");
		return -EIO;
	case SSL_ERROR_SSL:
		ssl_reason(t->err, sizeof(t->err), "protocol error");
		return -EPROTO;
	default:
		ssl_reason(t->err, sizeof(t->err), "unexpected OpenSSL state");
		return -EIO;
	}
}

int tls_conn_handshake(struct tls_conn *t)
{
	int r;

	if (t->open)
		return 1;
	if (t->failed)
		return t->failed;
	ERR_clear_error();
	r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		t->open = true;
		t->want_rd = 0;
		return 1;
	}
	r = failure(t, r, &t->want_rd);
	if (r == -EAGAIN)
		return 0;
	t->failed = r == 0 ? -ECONNRESET : -EPROTO;
	return t->failed;
}

ssize_t tls_conn_read(struct tls_conn *t, void *p, size_t len)
{
	size_t n = 0;

	ERR_clear_error();
	if (SSL_read_ex(t->ssl, p, len, &n) == 1) {
		t->want_rd = 0;
		return (ssize_t)n;
	}
	return failure(t, 0, &t->want_rd);
}

ssize_t tls_conn_write(struct tls_conn *t, const void *p, size_t len)
{
	size_t n = 0;
	int r;

	if (len == 0)
		return 0;
	ERR_clear_error();
	if (SSL_write_ex(t->ssl, p, len, &n) == 1) {
		t->want_wr = 0;
		return (ssize_t)n;
	}
	r = failure(t, 0, &t->want_wr);
	return r == 0 ? -EPIPE : r;
}

size_t tls_conn_pending(const struct tls_conn *t)
{
	int n = SSL_pending(t->ssl);

	return n > 0 ? (size_t)n : 0;
}

unsigned tls_conn_wants(const struct tls_conn *t, bool read_side)
{
	return read_side ? t->want_rd : t->want_wr;
}

void tls_conn_shutdown(struct tls_conn *t)
{
	if (!t->open)
		return;
	ERR_clear_error();
	SSL_shutdown(t->ssl);
	ERR_clear_error();
}

const char *tls_conn_describe(struct tls_conn *t)
{
	if (!t->desc[0] && t->open)
		snprintf(t->desc, sizeof(t->desc), "%s %s", SSL_get_version(t->ssl),
			 SSL_get_cipher_name(t->ssl));
	return t->desc;
}

const char *tls_conn_error(const struct tls_conn *t)
{
	return t->err;
}
