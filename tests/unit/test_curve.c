/*
 * test_curve.c - CURVE keys: key pair files written by curve_keygen and read back (modes,
 * refusal to overwrite), allowed lists (comments, labels, keys starting with '#', duplicates,
 * malformed lines), the environment's rules (no keys, ZMQ_INSECURE=1, both variables of a kind)
 * and the reload of the allowed list that keeps the old list when the new one is bad.
 */
#include "curve.h"
#include "harness.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static char dir[64];

static void clear_env(void)
{
	unsetenv("ZMQ_INSECURE");
	unsetenv("CURVE_SECRET_KEY_FILE");
	unsetenv("CURVE_SECRET_KEY");
	unsetenv("CURVE_ALLOWED_KEYS_FILE");
	unsetenv("CURVE_ALLOWED_KEYS");
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

static void path_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static void test_key_valid(void)
{
	char pub[41], sec[41];

	CHECK_EQ_INT(zmq_curve_keypair(pub, sec), 0);
	CHECK(curve_key_valid(pub));
	CHECK(curve_key_valid(sec));
	CHECK(!curve_key_valid(NULL));
	CHECK(!curve_key_valid(""));
	pub[39] = '\0';
	CHECK(!curve_key_valid(pub)); /* 39 characters */
	CHECK(!curve_key_valid("0123456789012345678901234567890123456789 ")); /* 41 */
	CHECK(!curve_key_valid("012345678901234567890123456789012345678\"")); /* '"' not Z85 */
	CHECK(!curve_key_valid("#####0123456789012345678901234567890123")); /* overflows 2^32 */
	CHECK(curve_name_valid("mw-1.node_2"));
	CHECK(!curve_name_valid(".hidden"));
	CHECK(!curve_name_valid("a/b"));
	CHECK(!curve_name_valid(""));
	CHECK(!curve_name_valid("x y"));
}

static void test_keygen_roundtrip(void)
{
	char pub[41], pub2[41], sec[41], why[256], path[128];
	struct stat st;

	CHECK_EQ_INT(curve_keygen(dir, "sig", false, pub, why, sizeof(why)), 0);
	CHECK(curve_key_valid(pub));
	path_of(path, sizeof(path), "sig.key");
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(curve_keyfile_read(path, pub2, sec, why, sizeof(why)), 0);
	CHECK_EQ_STR(pub2, pub);
	path_of(path, sizeof(path), "sig.pub");
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0644);

	/* Never replaced without force; replaced with it (a new key). */
	CHECK_EQ_INT(curve_keygen(dir, "sig", false, pub2, why, sizeof(why)), -EEXIST);
	CHECK(strstr(why, "exists") != NULL);
	CHECK_EQ_INT(curve_keygen(dir, "sig", true, pub2, why, sizeof(why)), 0);
	CHECK(strcmp(pub2, pub) != 0);
	path_of(path, sizeof(path), "sig.key");
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(curve_keygen(dir, "../x", false, pub2, why, sizeof(why)), -EINVAL);
	CHECK_EQ_INT(curve_keygen("/nonexistent-dir", "x", false, pub2, why, sizeof(why)),
		     -ENOTDIR);
}

static void test_keyfile_errors(void)
{
	char pub[41], sec[41], pub2[41], sec2[41], why[256], path[128], text[512];

	CHECK_EQ_INT(zmq_curve_keypair(pub, sec), 0);
	CHECK_EQ_INT(zmq_curve_keypair(pub2, sec2), 0);
	path_of(path, sizeof(path), "bad.key");

	/* secret alone: the public key is derived */
	snprintf(text, sizeof(text), "# only the secret\n  secret =  %s  \n", sec);
	write_text(path, text);
	chmod(path, 0600);
	CHECK_EQ_INT(curve_keyfile_read(path, pub2, sec2, why, sizeof(why)), 0);
	CHECK_EQ_STR(pub2, pub);
	CHECK_EQ_STR(sec2, sec);

	/* a public key that is not the secret's */
	CHECK_EQ_INT(zmq_curve_keypair(pub2, sec2), 0);
	snprintf(text, sizeof(text), "public = %s\nsecret = %s\n", pub2, sec);
	write_text(path, text);
	CHECK_EQ_INT(curve_keyfile_read(path, pub2, sec2, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "does not belong") != NULL);

	snprintf(text, sizeof(text), "public = %s\n", pub);
	write_text(path, text);
	CHECK_EQ_INT(curve_keyfile_read(path, pub2, sec2, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "no \"secret") != NULL);

	snprintf(text, sizeof(text), "secret = %s\nsecret = %s\n", sec, sec);
	write_text(path, text);
	CHECK_EQ_INT(curve_keyfile_read(path, pub2, sec2, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "twice") != NULL);

	write_text(path, "private = abc\n");
	CHECK_EQ_INT(curve_keyfile_read(path, pub2, sec2, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "line 1") != NULL);

	write_text(path, "secret = tooshort\n");
	CHECK_EQ_INT(curve_keyfile_read(path, pub2, sec2, why, sizeof(why)), -EINVAL);

	path_of(path, sizeof(path), "missing.key");
	CHECK_EQ_INT(curve_keyfile_read(path, pub2, sec2, why, sizeof(why)), -ENOENT);
	CHECK_EQ_INT(curve_keyfile_read(dir, pub2, sec2, why, sizeof(why)), -EINVAL); /* a dir */
}

static void test_allowed_list(void)
{
	char sk[41], pk[41], k1[41], k2[41], kh[41], junk[41], path[128], text[1024];
	struct curve *c;

	clear_env();
	CHECK_EQ_INT(zmq_curve_keypair(pk, sk), 0);
	CHECK_EQ_INT(zmq_curve_keypair(k1, junk), 0);
	CHECK_EQ_INT(zmq_curve_keypair(k2, junk), 0);
	CHECK_EQ_INT(zmq_curve_keypair(kh, junk), 0);
	/* '#' would stand for a first 4-byte group above 2^32: never the start of a key */
	memcpy(junk, kh, sizeof(junk));
	junk[0] = '#';
	CHECK(!curve_key_valid(junk));
	path_of(path, sizeof(path), "allowed");
	snprintf(text, sizeof(text),
		 "# signalers allowed\n"
		 "\n"
		 "   %s   sig-a   \n"
		 "#%s\n" /* a comment, even with a key in it */
		 "%s\n"
		 "%s sig-a again\n" /* duplicate: kept once, first label */
		 "%s third key\n",
		 k1, k2, k2, k1, kh);
	write_text(path, text);
	setenv("CURVE_SECRET_KEY", sk, 1);
	setenv("CURVE_ALLOWED_KEYS_FILE", path, 1);
	CHECK_EQ_INT(curve_from_env("signalers", &c), 0);
	CHECK(c && curve_enabled(c));
	if (c) {
		CHECK_EQ_STR(curve_public_key(c), pk);
		CHECK_EQ_STR(curve_secret_key(c), sk);
		CHECK_EQ_INT(curve_allowed_count(c), 3);
		CHECK(curve_allows(c, k1));
		CHECK(curve_allows(c, k2));
		CHECK(curve_allows(c, kh));
		CHECK(!curve_allows(c, pk));
		CHECK(!curve_allows(c, NULL));
		CHECK_EQ_STR(curve_label(c, k1), "sig-a");
		CHECK_EQ_STR(curve_label(c, k2), "");
		CHECK_EQ_STR(curve_label(c, kh), "third key");
		CHECK_EQ_STR(curve_allowed_key(c, 0), k1);
		CHECK(curve_allowed_key(c, 3) == NULL);

		/* rotation: a new list replaces it... */
		snprintf(text, sizeof(text), "%s new\n", k2);
		write_text(path, text);
		CHECK_EQ_INT(curve_reload(c), 0);
		CHECK_EQ_INT(curve_allowed_count(c), 1);
		CHECK(!curve_allows(c, k1));
		CHECK(curve_allows(c, k2));
		/* ...a broken one does not */
		write_text(path, "not-a-key\n");
		CHECK_EQ_INT(curve_reload(c), -EINVAL);
		CHECK(curve_allows(c, k2));
		unlink(path);
		CHECK_EQ_INT(curve_reload(c), -ENOENT);
		CHECK(curve_allows(c, k2));
		curve_destroy(&c);
		CHECK(c == NULL);
	}

	/* a label with a control byte, a line that is no key */
	snprintf(text, sizeof(text), "%s bad\001label\n", k1);
	write_text(path, text);
	CHECK_EQ_INT(curve_from_env("signalers", &c), -EINVAL);
	CHECK(c == NULL);
	write_text(path, "tooshort\n");
	CHECK_EQ_INT(curve_from_env("signalers", &c), -EINVAL);
	write_text(path, "# nothing but comments\n");
	CHECK_EQ_INT(curve_from_env("signalers", &c), -EINVAL); /* an empty list at start */

	/* CURVE_ALLOWED_KEYS: comma separated, not reloadable */
	unsetenv("CURVE_ALLOWED_KEYS_FILE");
	snprintf(text, sizeof(text), " %s , %s,", k1, k2);
	setenv("CURVE_ALLOWED_KEYS", text, 1);
	CHECK_EQ_INT(curve_from_env("signalers", &c), 0);
	if (c) {
		CHECK_EQ_INT(curve_allowed_count(c), 2);
		CHECK_EQ_INT(curve_reload(c), -ENOENT);
		CHECK_EQ_INT(curve_allowed_count(c), 2);
	}
	curve_destroy(&c);
	clear_env();
}

static void test_env_rules(void)
{
	char sk[41], pk[41], path[128], why[256];
	struct curve *c = (struct curve *)1;

	clear_env();
	/* default deny: nothing set */
	CHECK_EQ_INT(curve_from_env("signalers", &c), -EINVAL);
	CHECK(c == NULL);
	/* the explicit opt-out */
	setenv("ZMQ_INSECURE", "1", 1);
	CHECK_EQ_INT(curve_from_env("signalers", &c), 0);
	CHECK(c != NULL && !curve_enabled(c));
	if (c) {
		CHECK_EQ_STR(curve_public_key(c), "");
		CHECK(!curve_allows(c, "anything"));
	}
	curve_destroy(&c);
	setenv("ZMQ_INSECURE", "maybe", 1);
	CHECK_EQ_INT(curve_from_env("signalers", &c), -EINVAL);
	setenv("ZMQ_INSECURE", "0", 1);

	/* a secret without allowed keys, and both forms of one setting */
	CHECK_EQ_INT(curve_keygen(dir, "env", false, pk, why, sizeof(why)), 0);
	path_of(path, sizeof(path), "env.key");
	setenv("CURVE_SECRET_KEY_FILE", path, 1);
	CHECK_EQ_INT(curve_from_env("signalers", &c), -EINVAL);
	setenv("CURVE_ALLOWED_KEYS", pk, 1);
	CHECK_EQ_INT(curve_from_env("signalers", &c), 0);
	if (c)
		CHECK_EQ_STR(curve_public_key(c), pk);
	curve_destroy(&c);
	CHECK_EQ_INT(zmq_curve_keypair(pk, sk), 0);
	setenv("CURVE_SECRET_KEY", sk, 1);
	CHECK_EQ_INT(curve_from_env("signalers", &c), -EINVAL); /* file and value */
	unsetenv("CURVE_SECRET_KEY_FILE");
	CHECK_EQ_INT(curve_from_env("signalers", &c), 0);
	curve_destroy(&c);
	path_of(path, sizeof(path), "env.pub");
	setenv("CURVE_ALLOWED_KEYS_FILE", path, 1);
	CHECK_EQ_INT(curve_from_env("signalers", &c), -EINVAL); /* file and value */
	unsetenv("CURVE_ALLOWED_KEYS");
	CHECK_EQ_INT(curve_from_env("signalers", &c), 0); /* a .pub file is an allowed list */
	if (c)
		CHECK_EQ_STR(curve_label(c, curve_allowed_key(c, 0)), "env");
	curve_destroy(&c);
	setenv("CURVE_SECRET_KEY", "not a key", 1);
	CHECK_EQ_INT(curve_from_env("signalers", &c), -EINVAL);
	clear_env();

	/* curve_new: tools and tests */
	c = curve_new(sk, pk);
	CHECK(c && curve_enabled(c) && curve_allows(c, pk));
	curve_destroy(&c);
	c = curve_new(NULL, NULL);
	CHECK(c && !curve_enabled(c));
	curve_destroy(&c);
	CHECK(curve_new("bad", NULL) == NULL);
	curve_destroy(NULL);
}

int main(void)
{
	int ret;

	log_init("test_curve", LOG_LVL_ERROR);
	if (!th_tmpdir(dir, sizeof(dir), "test_curve"))
		return 1;
	TEST_RUN(test_key_valid);
	TEST_RUN(test_keygen_roundtrip);
	TEST_RUN(test_keyfile_errors);
	TEST_RUN(test_allowed_list);
	TEST_RUN(test_env_rules);
	ret = TEST_DONE();
	th_rmtree(dir);
	return ret;
}
