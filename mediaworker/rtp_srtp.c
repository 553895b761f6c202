/*
 * rtp_srtp.c - SRTP for the RTP leg (rtp_leg_int.h): SDES keys (RFC 4568) decoded and made, the
 * libsrtp2 contexts built and re-keyed with both rollover counters kept, received packets
 * unprotected for the receive path (rtp_input.c), their failures counted. Packets are protected
 * in our endpoint (rtp_ortp.c); an SRTP leg latches to the first authentic packet (rtp_latch.c).
 */
#include "rtp_leg_int.h"

#include "log.h"

#include <openssl/evp.h>

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* ---------------------------------------------------------------- keys */

#define B64_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/*
 * Decodes an SDES key parameter: optional "inline:", exactly 40 base64 characters (30 bytes),
 * optionally "|lifetime". MKIs ("|n:m") are refused. Writes the bare base64 to @norm.
 */
static int key_decode(const char *in, uint8_t out[KEY_LEN], char norm[RTP_LEG_KEY_B64_LEN + 1])
{
	const char *b64 = in && strncmp(in, "inline:", 7) == 0 ? in + 7 : in;
	const char *rest = b64 ? b64 + strspn(b64, B64_CHARS) : NULL;
	uint8_t tmp[KEY_LEN + 3];

	if (!b64 || rest - b64 != RTP_LEG_KEY_B64_LEN)
		return -EINVAL;
	if (*rest && (*rest != '|' || strchr(rest, ':') || strchr(rest + 1, '|')))
		return -EINVAL;
	if (EVP_DecodeBlock(tmp, (const unsigned char *)b64, RTP_LEG_KEY_B64_LEN) != KEY_LEN)
		return -EINVAL;
	memcpy(out, tmp, KEY_LEN);
	explicit_bzero(tmp, sizeof(tmp));
	memcpy(norm, b64, RTP_LEG_KEY_B64_LEN);
	norm[RTP_LEG_KEY_B64_LEN] = '\0';
	return 0;
}

int rtp_leg_srtp_key_generate(char out[RTP_LEG_KEY_B64_LEN + 1])
{
	uint8_t key[KEY_LEN];

	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
		return -EIO;
	EVP_EncodeBlock((unsigned char *)out, key, KEY_LEN); /* 40 characters and a NUL */
	explicit_bzero(key, sizeof(key));
	return 0;
}

int rtp_srtp_keys(struct rtp_leg *leg, enum rtp_leg_srtp_suite suite, const char *lk,
		  const char *rk, uint8_t lkey[KEY_LEN], uint8_t rkey[KEY_LEN])
{
	if (suite == RTP_LEG_SRTP_NONE)
		return 0;
	if (suite != RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80 &&
	    suite != RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_32)
		return -EINVAL;
	if (key_decode(lk, lkey, leg->local_key) || key_decode(rk, rkey, leg->remote_key))
		return -EINVAL;
	return 0;
}

/* ---------------------------------------------------------------- NSS */

/*
 * Debian builds libsrtp2 on NSS (crypto/cipher/aes_icm_nss.c, crypto/hash/hmac_nss.c). For our
 * suites libsrtp2 runs on rtp_srtp_crypto.c instead; NSS is left its start-up self-tests, the
 * other suites, and ours again should libsrtp2 refuse rtp_srtp_crypto.c. Why NSS costs more with
 * every live context, eight a leg (a cipher and an HMAC for RTP and for RTCP, send and receive):
 *
 *   - each cipher and HMAC holds an NSSInitContext (NSS_InitContext at alloc), and
 *     NSS_ShutdownContext() unlinks it from one process-wide singly linked list, newest first
 *     (nss_RemoveList, nss/lib/nss/nssinit.c): freeing a leg walks past every context made
 *     since, so destroy grows with the number of live legs;
 *   - each holds a PKCS#11 session object (its key) and two sessions (the key's, the
 *     PK11Context's: pk11_GetNewSession, pk11wrap/pk11obj.c), and AES-ICM makes a new
 *     PK11Context, so opens and closes a session, on every packet (set_iv). The softoken finds
 *     them in chained hash tables of a fixed size (sftk_SessionFromHandle, sftk_ObjectFromHandle
 *     in softoken/pkcs11u.c, NSC_OpenSession's duplicate check), several times a packet: 1024
 *     buckets (TIME_SESSION_HASH_SIZE, softoken/pkcs11i.h), 32 with NSS_INIT_OPTIMIZESPACE,
 *     which libsrtp2's own NSS_InitContext() asks for. The flag is the only size parameter.
 *
 * Measured on NSS (rtp_probe bench, median of 3; before rtp_srtp_crypto.c): CPU per packet with
 * SRTP 22.3, 17.7, 15.1 and 19.7 us at 10, 100, 1,000 and 3,000 legs (RTP: 12.3, 7.1, 6.7, 5.8),
 * a third of it walking those hash chains at 3,000 legs; rtp_leg_destroy 0.19, 0.26, 1.7 and
 * 5.6 ms (p50; max 33 ms at 3,000): nss_RemoveList alone took 53% of the CPU of a whole
 * 3,000-leg run, most of it in the teardown.
 *
 * Initialising NSS first, without OPTIMIZESPACE, gives the tables 1024 buckets rather than 32
 * (seen in the softoken's slot); libsrtp2's later NSS_InitContext() calls reuse that set-up
 * (nss_Init skips the modules when NSS is up and NOCERTDB|NOMODDB are asked). That only
 * shortens the chains: 17-19 us per packet at 1,000 legs without it, 15 with it. Looked up at
 * run time so that neither a libsrtp2 built on OpenSSL nor the link line needs NSS.
 */
void rtp_srtp_nss_preinit(void)
{
	typedef int (*is_init_fn)(void);
	typedef int (*init_fn)(const char *, const char *, const char *, const char *, uint32_t);
	is_init_fn is_init;
	init_fn init;

	*(void **)&is_init = dlsym(RTLD_DEFAULT, "NSS_IsInitialized");
	*(void **)&init = dlsym(RTLD_DEFAULT, "NSS_Initialize");
	if (!is_init || !init || is_init())
		return;
	/* READONLY | NOCERTDB | NOMODDB | FORCEOPEN | NOROOTINIT, and no OPTIMIZESPACE */
	if (init("", "", "", "", 0x1 | 0x2 | 0x4 | 0x8 | 0x10) != 0)
		log_warn(NULL, "rtp_leg: NSS_Initialize failed, libsrtp2 initialises NSS itself");
}

/* ---------------------------------------------------------------- contexts */

static void srtp_policy_init(srtp_policy_t *pol, enum rtp_leg_srtp_suite suite, uint8_t *key)
{
	memset(pol, 0, sizeof(*pol));
	if (suite == RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_32)
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&pol->rtp);
	else
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol->rtp);
	/* RFC 4568 6.2.2: SRTCP keeps the 80-bit tag with the _32 suite too. */
	srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol->rtcp);
	pol->key = key;
	pol->window_size = 128;
}

int rtp_srtp_build(struct rtp_leg *leg, enum rtp_leg_srtp_suite suite, uint8_t *lkey, uint8_t *rkey,
		   uint32_t tx_roc, bool rx_known, uint32_t rx_ssrc, uint32_t rx_roc, srtp_t *txp,
		   srtp_t *rxp)
{
	srtp_policy_t pol;
	srtp_t tx = NULL, rx = NULL;

	srtp_policy_init(&pol, suite, lkey);
	pol.ssrc.type = ssrc_specific;
	pol.ssrc.value = leg->ssrc;
	if (srtp_create(&tx, &pol) != srtp_err_status_ok)
		goto out_fail;
	if (tx_roc && srtp_set_stream_roc(tx, leg->ssrc, tx_roc) != srtp_err_status_ok)
		goto out_free_tx;
	srtp_policy_init(&pol, suite, rkey);
	pol.ssrc.type = ssrc_any_inbound;
	if (srtp_create(&rx, &pol) != srtp_err_status_ok)
		goto out_free_tx;
	if (rx_known && rx_roc) {
		srtp_policy_init(&pol, suite, rkey);
		pol.ssrc.type = ssrc_specific;
		pol.ssrc.value = rx_ssrc;
		if (srtp_add_stream(rx, &pol) != srtp_err_status_ok ||
		    srtp_set_stream_roc(rx, rx_ssrc, rx_roc) != srtp_err_status_ok)
			goto out_free_rx;
	}
	*txp = tx;
	*rxp = rx;
	return 0;

out_free_rx:
	srtp_dealloc(rx);
out_free_tx:
	srtp_dealloc(tx);
out_fail:
	return -ENOMEM;
}

static int unprotect_error(struct rtp_leg *leg, srtp_err_status_t e)
{
	switch (e) {
	case srtp_err_status_auth_fail:
		leg->st.srtp_auth_failures++;
		return -EACCES;
	case srtp_err_status_replay_fail:
	case srtp_err_status_replay_old:
		leg->st.srtp_replays++;
		return -EALREADY;
	default:
		leg->st.bad_packets++;
		return -EBADMSG;
	}
}

int rtp_srtp_unprotect(struct rtp_leg *leg, uint8_t *p, size_t *len, bool rtcp)
{
	int l = (int)*len;
	srtp_err_status_t e =
	    rtcp ? srtp_unprotect_rtcp(leg->rx, p, &l) : srtp_unprotect(leg->rx, p, &l);

	if (e != srtp_err_status_ok)
		return unprotect_error(leg, e);
	*len = (size_t)l;
	return 0;
}

int rtp_leg_set_srtp(struct rtp_leg *leg, enum rtp_leg_srtp_suite suite, const char *local_key,
		     const char *remote_key)
{
	uint8_t lkey[KEY_LEN], rkey[KEY_LEN];
	srtp_t tx = NULL, rx = NULL;
	uint32_t rx_roc = 0;
	int err;

	err = rtp_srtp_keys(leg, suite, local_key, remote_key, lkey, rkey);
	if (err)
		return err;
	if (suite != RTP_LEG_SRTP_NONE) {
		if (leg->rx && leg->know_remote_ssrc)
			(void)srtp_get_stream_roc(leg->rx, leg->remote_ssrc, &rx_roc);
		err = rtp_srtp_build(leg, suite, lkey, rkey, leg->send_roc, leg->know_remote_ssrc,
				     leg->remote_ssrc, rx_roc, &tx, &rx);
		explicit_bzero(lkey, sizeof(lkey));
		explicit_bzero(rkey, sizeof(rkey));
		if (err)
			return err;
	} else {
		leg->local_key[0] = leg->remote_key[0] = '\0';
	}
	if (leg->tx)
		srtp_dealloc(leg->tx);
	if (leg->rx)
		srtp_dealloc(leg->rx);
	leg->tx = tx;
	leg->rx = rx;
	leg->suite = suite;
	return 0;
}
