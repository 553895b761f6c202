/*
 * test_dest.c - unit tests for signaler/dest.c's dest_parts (the URI parts call_policy and
 * sip_trust decide on).
 */
#include "dest.h"
#include "harness.h"

#include <errno.h>
#include <string.h>

static void test_parts(void)
{
	struct dest_parts d;

	CHECK_EQ_INT(dest_parts("sip:Bob@PBX.Example.com:5061;transport=tcp", &d), 0);
	CHECK_EQ_STR(d.user, "Bob");
	CHECK_EQ_STR(d.host, "pbx.example.com");
	CHECK_EQ_INT(d.port, 5061);
	CHECK_EQ_INT(dest_parts("<sips:registrar.example.org>", &d), 0);
	CHECK_EQ_STR(d.user, "");
	CHECK_EQ_STR(d.host, "registrar.example.org");
	CHECK_EQ_INT(d.port, 0);
	CHECK_EQ_INT(dest_parts("sip:+4930123@[2001:DB8::1]:5060", &d), 0);
	CHECK_EQ_STR(d.user, "+4930123");
	CHECK_EQ_STR(d.host, "2001:db8::1");
	CHECK_EQ_INT(d.port, 5060);
	CHECK_EQ_INT(dest_parts("alice@10.0.0.5", &d), 0);
	CHECK_EQ_STR(d.host, "10.0.0.5");
	CHECK_EQ_INT(dest_parts("sip:127.0.0.1:5070?x=y", &d), 0);
	CHECK_EQ_STR(d.host, "127.0.0.1");
	CHECK_EQ_INT(d.port, 5070);
}

static void test_bad(void)
{
	struct dest_parts d;
	char big[400];

	CHECK_EQ_INT(dest_parts("sip:", &d), -EINVAL);
	CHECK_EQ_INT(dest_parts("sip:user@", &d), -EINVAL);
	CHECK_EQ_INT(dest_parts("sip:user@:5060", &d), -EINVAL);
	CHECK_EQ_INT(dest_parts("sip:[2001:db8::1", &d), -EINVAL);
	CHECK_EQ_INT(dest_parts("sip:host:0", &d), -EINVAL);
	CHECK_EQ_INT(dest_parts("sip:host:65536", &d), -EINVAL);
	CHECK_EQ_INT(dest_parts("sip:host:+5", &d), -EINVAL);
	CHECK_EQ_INT(dest_parts("sip:host:5x", &d), -EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_INT(dest_parts(big, &d), -EINVAL);
}

int main(void)
{
	TEST_RUN(test_parts);
	TEST_RUN(test_bad);
	return TEST_DONE();
}
