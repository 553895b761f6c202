/*
 * test_tls.c - the RTMPS TLS layer against an OpenSSL client on a non-blocking socketpair:
 * handshake, plaintext both ways, data left decrypted in OpenSSL (tls_conn_pending) while the
 * socket has nothing to announce, what each side waits for, refusals (not TLS, TLS 1.1, a peer
 * gone), and certificate reloads (good, then broken). Certificates are made here (EC P-256,
 * self-signed) in a temporary directory.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "evloop.h"
#include "harness.h"
#include "log.h"
#include "tls.h"

static char dir[64];
static char crt_path[128], key_path[128];

/* Writes a self-signed certificate for @cn and its key to crt_path / key_path. */
static int make_cert(const char *cn)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f;
	int ok = 0;

	if (!key || !x)
		goto out;
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (!X509_sign(x, key, EVP_sha256()))
		goto out;
	f = fopen(crt_path, "w");
	if (!f)
		goto out;
	ok = PEM_write_X509(f, x);
	fclose(f);
	f = fopen(key_path, "w");
	if (!f)
		goto out;
	ok = ok && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return ok ? 0 : -1;
}

struct pair {
	int sfd, cfd;
	struct tls_conn *srv;
	SSL_CTX *cctx;
	SSL *cli;
};

static int pair_open(struct pair *p, struct tls_ctx *ctx, int max_version)
{
	int sv[2];

	memset(p, 0, sizeof(*p));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return -1;
	p->sfd = sv[0];
	p->cfd = sv[1];
	p->srv = tls_conn_new(ctx, p->sfd);
	p->cctx = SSL_CTX_new(TLS_client_method());
	if (max_version) {
		SSL_CTX_set_min_proto_version(p->cctx, max_version);
		SSL_CTX_set_max_proto_version(p->cctx, max_version);
		SSL_CTX_set_security_level(p->cctx, 0);
		SSL_CTX_set_cipher_list(p->cctx, "DEFAULT@SECLEVEL=0");
	}
	p->cli = SSL_new(p->cctx);
	SSL_set_fd(p->cli, p->cfd);
	SSL_set_connect_state(p->cli);
	return p->srv && p->cli ? 0 : -1;
}

static void pair_close(struct pair *p)
{
	tls_conn_destroy(&p->srv);
	SSL_free(p->cli);
	SSL_CTX_free(p->cctx);
	if (p->sfd >= 0)
		close(p->sfd);
	if (p->cfd >= 0)
		close(p->cfd);
	ERR_clear_error();
}

/* Steps both handshakes; the server's last result (1 done, 0 waiting, < 0 failed). */
static int pair_handshake(struct pair *p)
{
	int r = 0;

	for (int i = 0; i < 50; i++) {
		SSL_do_handshake(p->cli);
		r = tls_conn_handshake(p->srv);
		if (r != 0)
			break;
	}
	if (r == 1)
		SSL_do_handshake(p->cli); /* reads the server's last flight */
	ERR_clear_error();
	return r;
}

/* SHA-256 of the certificate the client was served. */
static void served(struct pair *p, unsigned char md[32])
{
	X509 *x = SSL_get1_peer_certificate(p->cli);
	unsigned n = 0;

	memset(md, 0, 32);
	if (x)
		X509_digest(x, EVP_sha256(), md, &n);
	X509_free(x);
}

static void file_digest(unsigned char md[32])
{
	FILE *f = fopen(crt_path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned n = 0;

	memset(md, 0xee, 32);
	if (x)
		X509_digest(x, EVP_sha256(), md, &n);
	X509_free(x);
	if (f)
		fclose(f);
}

static void test_handshake_and_data(void)
{
	struct tls_ctx *ctx = tls_ctx_new(crt_path, key_path);
	struct pair p;
	char buf[64];
	ssize_t n;

	CHECK(ctx != NULL);
	if (!ctx)
		return;
	CHECK(pair_open(&p, ctx, 0) == 0);
	CHECK_EQ_INT(pair_handshake(&p), 1);
	CHECK(strncmp(tls_conn_describe(p.srv), "TLSv1.3 ", 8) == 0);
	n = tls_conn_read(p.srv, buf, sizeof(buf));
	CHECK_EQ_INT(n, -EAGAIN);
	CHECK_EQ_INT(tls_conn_wants(p.srv, true), EV_READ);
	CHECK_EQ_INT(SSL_write(p.cli, "hello", 5), 5);
	n = tls_conn_read(p.srv, buf, sizeof(buf));
	CHECK_EQ_INT(n, 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ_INT(tls_conn_wants(p.srv, true), 0);
	CHECK_EQ_INT(tls_conn_write(p.srv, "world!", 6), 6);
	CHECK_EQ_INT(SSL_read(p.cli, buf, sizeof(buf)), 6);
	CHECK(memcmp(buf, "world!", 6) == 0);
	/* The peer goes away: a read says so with 0. */
	close(p.cfd);
	p.cfd = -1;
	CHECK_EQ_INT(tls_conn_read(p.srv, buf, sizeof(buf)), 0);
	pair_close(&p);
	tls_ctx_destroy(&ctx);
	CHECK(ctx == NULL);
}

/* A record read in part leaves plaintext in OpenSSL that the socket does not announce. */
static void test_pending_not_announced(void)
{
	struct tls_ctx *ctx = tls_ctx_new(crt_path, key_path);
	struct pollfd pfd;
	char big[3000], buf[3000];
	struct pair p;
	size_t got;

	if (!ctx) {
		CHECK(ctx != NULL);
		return;
	}
	CHECK(pair_open(&p, ctx, 0) == 0);
	CHECK_EQ_INT(pair_handshake(&p), 1);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	CHECK_EQ_INT(SSL_write(p.cli, big, sizeof(big)), (int)sizeof(big)); /* one record */
	CHECK_EQ_INT(tls_conn_read(p.srv, buf, 100), 100);
	CHECK_EQ_INT(tls_conn_pending(p.srv), sizeof(big) - 100);
	pfd = (struct pollfd){.fd = p.sfd, .events = POLLIN};
	CHECK_EQ_INT(poll(&pfd, 1, 0), 0); /* nothing for the loop to wake up on */
	got = 100;
	while (tls_conn_pending(p.srv) > 0) {
		ssize_t n = tls_conn_read(p.srv, buf + got, sizeof(buf) - got);

		CHECK(n > 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CHECK_EQ_INT(got, sizeof(big));
	CHECK(memcmp(buf, big, sizeof(big)) == 0);
	pair_close(&p);
	tls_ctx_destroy(&ctx);
}

static void test_refusals(void)
{
	static const unsigned char rtmp_c0c1[1 + 1536] = {3};
	struct tls_ctx *ctx = tls_ctx_new(crt_path, key_path);
	struct pair p;

	if (!ctx) {
		CHECK(ctx != NULL);
		return;
	}
	/* A plain RTMP client. */
	CHECK(pair_open(&p, ctx, 0) == 0);
	CHECK_EQ_INT(write(p.cfd, rtmp_c0c1, sizeof(rtmp_c0c1)), (long)sizeof(rtmp_c0c1));
	CHECK_EQ_INT(tls_conn_handshake(p.srv), -EPROTO);
	CHECK(tls_conn_error(p.srv)[0] != '\0');
	CHECK_EQ_INT(tls_conn_handshake(p.srv), -EPROTO);
	pair_close(&p);
	/* TLS 1.1. */
	CHECK(pair_open(&p, ctx, TLS1_1_VERSION) == 0);
	CHECK(pair_handshake(&p) < 0);
	CHECK(strstr(tls_conn_error(p.srv), "unsupported protocol") != NULL);
	pair_close(&p);
	/* A peer that leaves in the middle. */
	CHECK(pair_open(&p, ctx, 0) == 0);
	SSL_do_handshake(p.cli);
	CHECK_EQ_INT(tls_conn_handshake(p.srv), 0);
	CHECK_EQ_INT(tls_conn_wants(p.srv, true), EV_READ);
	close(p.cfd);
	p.cfd = -1;
	CHECK_EQ_INT(tls_conn_handshake(p.srv), -ECONNRESET);
	pair_close(&p);
	tls_ctx_destroy(&ctx);
	CHECK(tls_ctx_new("/nonexistent/rtmps.crt", key_path) == NULL);
}

static void test_reload(void)
{
	unsigned char first[32], second[32], md[32];
	struct tls_ctx_stats st;
	struct tls_ctx *ctx;
	struct pair old, p;
	FILE *f;

	CHECK(make_cert("first.test") == 0);
	file_digest(first);
	ctx = tls_ctx_new(crt_path, key_path);
	if (!ctx) {
		CHECK(ctx != NULL);
		return;
	}
	tls_ctx_get_stats(ctx, &st);
	CHECK(st.not_after > (int64_t)time(NULL) && st.not_after <= (int64_t)time(NULL) + 86400 + 60);
	CHECK(pair_open(&old, ctx, 0) == 0); /* made before the reload, handshakes after it */

	CHECK(make_cert("second.test") == 0);
	file_digest(second);
	CHECK(memcmp(first, second, 32) != 0);
	CHECK_EQ_INT(tls_ctx_reload(ctx), 0);
	CHECK(pair_open(&p, ctx, 0) == 0);
	CHECK_EQ_INT(pair_handshake(&p), 1);
	served(&p, md);
	CHECK(memcmp(md, second, 32) == 0);
	pair_close(&p);
	CHECK_EQ_INT(pair_handshake(&old), 1);
	served(&old, md);
	CHECK(memcmp(md, first, 32) == 0);
	pair_close(&old);

	f = fopen(crt_path, "w");
	if (f) {
		fputs("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n", f);
		fclose(f);
	}
	CHECK_EQ_INT(tls_ctx_reload(ctx), -EINVAL);
	CHECK(pair_open(&p, ctx, 0) == 0);
	CHECK_EQ_INT(pair_handshake(&p), 1);
	served(&p, md);
	CHECK(memcmp(md, second, 32) == 0);
	pair_close(&p);
	tls_ctx_get_stats(ctx, &st);
	CHECK_EQ_INT(st.reloads, 1);
	CHECK_EQ_INT(st.reload_failures, 1);
	tls_ctx_destroy(&ctx);
}

int main(void)
{
	int ret;

	log_init("test_tls", LOG_LVL_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/test_tls.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(crt_path, sizeof(crt_path), "%s/server.crt", dir);
	snprintf(key_path, sizeof(key_path), "%s/server.key", dir);
	if (make_cert("test.rtmps") < 0) {
		fprintf(stderr, "cannot make a test certificate\n");
		return 1;
	}
	TEST_RUN(test_handshake_and_data);
	TEST_RUN(test_pending_not_announced);
	TEST_RUN(test_refusals);
	TEST_RUN(test_reload);
	ret = TEST_DONE();
	unlink(crt_path);
	unlink(key_path);
	rmdir(dir);
	return ret;
}
