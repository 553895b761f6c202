/*
 * rtp_srtp_crypto.c - the two primitives of our SRTP suites, AES-128 in counter mode (RFC 3711
 * 4.1.1, "AES-ICM") and HMAC-SHA1 (RFC 3711 4.2.1), on OpenSSL's libcrypto, put into libsrtp2's
 * crypto kernel in place of the library's own with srtp_replace_cipher_type() and
 * srtp_replace_auth_type() (its public <srtp2/cipher.h>, <srtp2/auth.h>). Nothing else of
 * libsrtp2 changes: key derivation, rollover counters, replay windows, the packet formats and
 * every other suite are still its own.
 *
 * Why: Debian's libsrtp2 runs them on NSS, whose cost grows with the number of live contexts (a
 * process-wide list walked by every destroy, fixed-size PKCS#11 session tables walked several
 * times a packet: the sources and the figures at rtp_srtp_nss_preinit() in rtp_srtp.c). Ours
 * keep no state outside the context, an EVP_CIPHER_CTX or an EVP_MAC_CTX each, made and freed
 * in constant time; the algorithms are fetched once (rtp_srtp_crypto_install).
 *
 * Correctness: libsrtp2 accepts a replacement only after it passes its own known-answer tests
 * and those of the implementation it replaces (crypto_kernel.c); ours are RFC 3711 B.2 and
 * RFC 2202 case 2. If anything fails, the library's own stay in place (slower, still correct).
 *
 * Counter mode as RFC 3711 has it: the counter is the salt (112 bits, two zero octets) XOR the
 * IV libsrtp2 gives, which never sets the low 16 bits; at most 2^16 blocks of keystream are
 * taken per IV (more is refused, as libsrtp2's builtin AES-ICM does), so the low 16 bits never
 * carry and OpenSSL's 128-bit counter runs as the RFC's 16-bit one.
 */
#include "rtp_leg_int.h"

#include "log.h"

#include <srtp2/auth.h>
#include <srtp2/cipher.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ICM_KEY_LEN   16			 /* AES-128 */
#define ICM_SALT_LEN  14			 /* 112 bits */
#define ICM_MAX_BYTES ((uint32_t)0x10000u * 16u) /* 2^16 blocks per IV */
#define SHA1_LEN      20

static EVP_CIPHER *g_aes_ctr;
static EVP_MAC *g_hmac;
static bool g_ours;

/* ---------------------------------------------------------------- AES-ICM-128 */

struct icm {
	EVP_CIPHER_CTX *ctx;
	uint8_t offset[16]; /* the salt, then two zero octets */
	uint32_t used;	    /* octets of keystream since the IV was set */
	bool keyed, iv_set;
};

static const srtp_cipher_type_t icm_type;

static srtp_err_status_t icm_alloc(srtp_cipher_t **cp, int key_len, int tag_len)
{
	srtp_cipher_t *c;
	struct icm *s;

	(void)tag_len;
	if (key_len != ICM_KEY_LEN + ICM_SALT_LEN)
		return srtp_err_status_bad_param;
	c = calloc(1, sizeof(*c));
	s = calloc(1, sizeof(*s));
	if (s)
		s->ctx = EVP_CIPHER_CTX_new();
	if (!c || !s || !s->ctx) {
		if (s)
			EVP_CIPHER_CTX_free(s->ctx);
		free(s);
		free(c);
		return srtp_err_status_alloc_fail;
	}
	c->type = &icm_type;
	c->state = s;
	c->key_len = key_len;
	c->algorithm = SRTP_AES_ICM_128;
	*cp = c;
	return srtp_err_status_ok;
}

static srtp_err_status_t icm_dealloc(srtp_cipher_t *c)
{
	struct icm *s = c->state;

	if (s) {
		EVP_CIPHER_CTX_free(s->ctx); /* cleanses the key schedule */
		OPENSSL_cleanse(s, sizeof(*s));
		free(s);
	}
	free(c);
	return srtp_err_status_ok;
}

/* @key: the 16-octet key, then the 14-octet salt. */
static srtp_err_status_t icm_init(void *state, const uint8_t *key)
{
	struct icm *s = state;

	memset(s->offset, 0, sizeof(s->offset));
	memcpy(s->offset, key + ICM_KEY_LEN, ICM_SALT_LEN);
	s->keyed = s->iv_set = false;
	if (EVP_EncryptInit_ex(s->ctx, g_aes_ctr, NULL, key, NULL) != 1)
		return srtp_err_status_cipher_fail;
	s->keyed = true;
	return srtp_err_status_ok;
}

static srtp_err_status_t icm_set_iv(void *state, uint8_t *iv, srtp_cipher_direction_t dir)
{
	struct icm *s = state;
	uint8_t counter[16];

	(void)dir; /* counter mode: both directions are the same */
	if (!s->keyed)
		return srtp_err_status_bad_param;
	for (int i = 0; i < 16; i++)
		counter[i] = s->offset[i] ^ iv[i];
	s->iv_set = EVP_EncryptInit_ex(s->ctx, NULL, NULL, NULL, counter) == 1;
	s->used = 0;
	OPENSSL_cleanse(counter, sizeof(counter));
	return s->iv_set ? srtp_err_status_ok : srtp_err_status_cipher_fail;
}

/* XORs the keystream into @buf in place, continuing where the previous call stopped. */
static srtp_err_status_t icm_crypt(void *state, uint8_t *buf, unsigned int *len)
{
	struct icm *s = state;
	int out = 0;

	if (!s->iv_set)
		return srtp_err_status_bad_param;
	if (*len > ICM_MAX_BYTES - s->used)
		return srtp_err_status_terminus;
	if (!*len)
		return srtp_err_status_ok;
	if (EVP_EncryptUpdate(s->ctx, buf, &out, buf, (int)*len) != 1 || (unsigned int)out != *len)
		return srtp_err_status_cipher_fail;
	s->used += *len;
	return srtp_err_status_ok;
}

/* RFC 3711 B.2: the first two keystream blocks of session key 2B7E...4F3C, salt F0F1...FCFD. */
static const uint8_t icm_kat_key[ICM_KEY_LEN + ICM_SALT_LEN] = {
    0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f,
    0x3c, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd};
static uint8_t icm_kat_iv[16]; /* index 0, SSRC 0 (libsrtp2's test case type wants it mutable) */
static const uint8_t icm_kat_zero[32];
static const uint8_t icm_kat_stream[32] = {
    0xe0, 0x3e, 0xad, 0x09, 0x35, 0xc9, 0x5e, 0x80, 0xe1, 0x66, 0xb1, 0x6d, 0xd9, 0x2b, 0x4e, 0xb4,
    0xd2, 0x35, 0x13, 0x16, 0x2b, 0x02, 0xd0, 0xf7, 0x2a, 0x43, 0xa2, 0xfe, 0x4a, 0x5f, 0x97, 0xab};

static const srtp_cipher_test_case_t icm_kat = {
    .key_length_octets = sizeof(icm_kat_key),
    .key = icm_kat_key,
    .idx = icm_kat_iv,
    .plaintext_length_octets = sizeof(icm_kat_zero),
    .plaintext = icm_kat_zero,
    .ciphertext_length_octets = sizeof(icm_kat_stream),
    .ciphertext = icm_kat_stream,
};

static const srtp_cipher_type_t icm_type = {
    .alloc = icm_alloc,
    .dealloc = icm_dealloc,
    .init = icm_init,
    .encrypt = icm_crypt,
    .decrypt = icm_crypt,
    .set_iv = icm_set_iv,
    .description = "AES-128 counter mode (OpenSSL libcrypto, rtp_srtp_crypto.c)",
    .test_data = &icm_kat,
    .id = SRTP_AES_ICM_128,
};

/* ---------------------------------------------------------------- HMAC-SHA1 */

static const srtp_auth_type_t hmac_type;

static srtp_err_status_t hmac_alloc(srtp_auth_t **ap, int key_len, int out_len)
{
	srtp_auth_t *a;
	EVP_MAC_CTX *ctx;

	if (key_len < 0 || key_len > SHA1_LEN || out_len < 0 || out_len > SHA1_LEN)
		return srtp_err_status_bad_param;
	a = calloc(1, sizeof(*a));
	ctx = EVP_MAC_CTX_new(g_hmac);
	if (!a || !ctx) {
		EVP_MAC_CTX_free(ctx);
		free(a);
		return srtp_err_status_alloc_fail;
	}
	a->type = &hmac_type;
	a->state = ctx;
	a->out_len = out_len;
	a->key_len = key_len;
	a->prefix_len = 0;
	*ap = a;
	return srtp_err_status_ok;
}

static srtp_err_status_t hmac_dealloc(srtp_auth_t *a)
{
	EVP_MAC_CTX_free(a->state); /* cleanses the key */
	free(a);
	return srtp_err_status_ok;
}

static srtp_err_status_t hmac_init(void *state, const uint8_t *key, int key_len)
{
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0),
	    OSSL_PARAM_construct_end(),
	};

	if (key_len < 0 || EVP_MAC_init(state, key, (size_t)key_len, params) != 1)
		return srtp_err_status_auth_fail;
	return srtp_err_status_ok;
}

/* A new message under the same key. */
static srtp_err_status_t hmac_start(void *state)
{
	return EVP_MAC_init(state, NULL, 0, NULL) == 1 ? srtp_err_status_ok
						       : srtp_err_status_auth_fail;
}

static srtp_err_status_t hmac_update(void *state, const uint8_t *msg, int len)
{
	if (len < 0 || EVP_MAC_update(state, msg, (size_t)len) != 1)
		return srtp_err_status_auth_fail;
	return srtp_err_status_ok;
}

/* The last part @msg of the message, then the tag cut to @tag_len octets into @out. */
static srtp_err_status_t hmac_compute(void *state, const uint8_t *msg, int len, int tag_len,
				      uint8_t *out)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t n = 0;

	if (tag_len < 0 || tag_len > SHA1_LEN || hmac_update(state, msg, len))
		return srtp_err_status_auth_fail;
	if (EVP_MAC_final(state, mac, &n, sizeof(mac)) != 1 || n != SHA1_LEN)
		return srtp_err_status_auth_fail;
	memcpy(out, mac, (size_t)tag_len);
	OPENSSL_cleanse(mac, sizeof(mac));
	return srtp_err_status_ok;
}

/* RFC 2202, HMAC-SHA1 test case 2. */
static const uint8_t hmac_kat_key[] = "Jefe";
static const uint8_t hmac_kat_data[] = "what do ya want for nothing?";
static const uint8_t hmac_kat_tag[SHA1_LEN] = {0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f,
					       0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84,
					       0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79};

static const srtp_auth_test_case_t hmac_kat = {
    .key_length_octets = sizeof(hmac_kat_key) - 1,
    .key = hmac_kat_key,
    .data_length_octets = sizeof(hmac_kat_data) - 1,
    .data = hmac_kat_data,
    .tag_length_octets = sizeof(hmac_kat_tag),
    .tag = hmac_kat_tag,
};

static const srtp_auth_type_t hmac_type = {
    .alloc = hmac_alloc,
    .dealloc = hmac_dealloc,
    .init = hmac_init,
    .compute = hmac_compute,
    .update = hmac_update,
    .start = hmac_start,
    .description = "HMAC-SHA1 (OpenSSL libcrypto, rtp_srtp_crypto.c)",
    .test_data = &hmac_kat,
    .id = SRTP_HMAC_SHA1,
};

/* ---------------------------------------------------------------- install */

int rtp_srtp_crypto_install(void)
{
	srtp_err_status_t e;

	if (g_ours)
		return 0;
	if (!g_aes_ctr)
		g_aes_ctr = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
	if (!g_hmac)
		g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!g_aes_ctr || !g_hmac) {
		log_warn(NULL,
			 "rtp_leg: no AES-128-CTR or HMAC in libcrypto, SRTP on libsrtp2's own");
		rtp_srtp_crypto_release();
		return -ENOSYS;
	}
	/* Each runs its known-answer tests and those of the one it replaces first. */
	e = srtp_replace_cipher_type(&icm_type, SRTP_AES_ICM_128);
	if (e == srtp_err_status_ok)
		e = srtp_replace_auth_type(&hmac_type, SRTP_HMAC_SHA1);
	if (e != srtp_err_status_ok) {
		/* A cipher replaced stays until srtp_shutdown(): correct, half the gain. */
		log_warn(NULL,
			 "rtp_leg: libsrtp2 refused our SRTP crypto (error %d), using its own",
			 (int)e);
		return -EIO;
	}
	g_ours = true;
	log_info(NULL, "rtp_leg: SRTP on libcrypto's AES-128-CTR and HMAC-SHA1");
	return 0;
}

void rtp_srtp_crypto_release(void)
{
	EVP_CIPHER_free(g_aes_ctr);
	EVP_MAC_free(g_hmac);
	g_aes_ctr = NULL;
	g_hmac = NULL;
	g_ours = false;
}

bool rtp_srtp_crypto_ours(void)
{
	return g_ours;
}
