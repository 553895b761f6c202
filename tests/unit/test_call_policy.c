/*
 * test_call_policy.c - unit tests for signaler/call_policy.c: destinations, per-client and
 * global attempt rates (token buckets on an injected clock), calls up, release, counters.
 */
#include "call_policy.h"
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void set(const char *name, const char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
}

static void config(const char *dest, const char *active, const char *active_client,
		   const char *rate, const char *rate_client)
{
	set("CALL_DESTINATIONS", dest);
	set("CALL_MAX_ACTIVE", active);
	set("CALL_MAX_ACTIVE_PER_CLIENT", active_client);
	set("CALL_ATTEMPTS_PER_MINUTE", rate);
	set("CALL_ATTEMPTS_PER_MINUTE_PER_CLIENT", rate_client);
}

static void test_destinations(void)
{
	char why[300];

	config("example.com, +4930,0800, *@10.0.0.5:5060", "100", "100", "1000", "1000");
	CHECK_EQ_INT(call_policy_init(), 0);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sip:bob@example.com", 1, why, sizeof(why)), 0);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sip:bob@PBX.Example.COM:5061;transport=tcp",
					  2, why, sizeof(why)),
		     0);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sip:bob@badexample.com", 3, why, sizeof(why)),
		     -EACCES);
	CHECK(strstr(why, "not allowed") != NULL);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sip:+493012345@trunk.net", 4, why,
					  sizeof(why)),
		     0);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sip:+4940123@trunk.net", 5, why, sizeof(why)),
		     -EACCES);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sips:08001234@trunk.net", 6, why, sizeof(why)),
		     0);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sip:alice@10.0.0.5:5060", 7, why, sizeof(why)),
		     0);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sip:alice@10.0.0.5:5070", 8, why, sizeof(why)),
		     -EACCES);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sip:10.0.0.5:5060", 9, why, sizeof(why)),
		     -EACCES); /* no user part: no number prefix, the glob wants '@' */
	CHECK_EQ_INT(call_policy_refused(CALL_POLICY_DESTINATION), 4);
	CHECK_EQ_INT(call_policy_active(), 5);

	config("", NULL, NULL, NULL, NULL);
	CHECK_EQ_INT(call_policy_init(), 0); /* resets everything */
	CHECK_EQ_INT(call_policy_refused(CALL_POLICY_DESTINATION), 0);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sip:x@anywhere.example", 1, why, sizeof(why)),
		     0);
	config("a.example, *", NULL, NULL, NULL, NULL);
	CHECK_EQ_INT(call_policy_init(), 0);
	CHECK_EQ_INT(call_policy_admit_at("1.1.1.1", "sip:x@b.example", 1, why, sizeof(why)), 0);
	call_policy_shutdown();
}

static void test_bad_config(void)
{
	config("exa mple.com", NULL, NULL, NULL, NULL);
	CHECK_EQ_INT(call_policy_init(), -EINVAL);
	config("+49x", NULL, NULL, NULL, NULL);
	CHECK_EQ_INT(call_policy_init(), -EINVAL);
	config("", "0", NULL, NULL, NULL);
	CHECK_EQ_INT(call_policy_init(), -EINVAL);
	config("", NULL, NULL, "-5", NULL);
	CHECK_EQ_INT(call_policy_init(), -EINVAL);
	config(NULL, NULL, NULL, NULL, NULL);
	call_policy_shutdown();
}

static void test_client_limits(void)
{
	char why[300];

	config(NULL, "3", "2", "1000", "3");
	CHECK_EQ_INT(call_policy_init(), 0);
	CHECK_EQ_INT(call_policy_admit_at("10.0.0.1", "sip:a@b", 1000, why, sizeof(why)), 0);
	CHECK_EQ_INT(call_policy_admit_at("10.0.0.1", "sip:a@b", 1000, why, sizeof(why)), 0);
	/* two up from this client: the third waits */
	CHECK_EQ_INT(call_policy_admit_at("10.0.0.1", "sip:a@b", 1000, why, sizeof(why)), -EBUSY);
	CHECK(strstr(why, "CALL_MAX_ACTIVE_PER_CLIENT") != NULL);
	/* another client: one more fits the global three, then the global limit */
	CHECK_EQ_INT(call_policy_admit_at("10.0.0.2", "sip:a@b", 1000, why, sizeof(why)), 0);
	CHECK_EQ_INT(call_policy_admit_at("10.0.0.3", "sip:a@b", 1000, why, sizeof(why)), -EBUSY);
	CHECK(strstr(why, "CALL_MAX_ACTIVE)") != NULL);
	CHECK_EQ_INT(call_policy_active(), 3);
	call_policy_release("10.0.0.1");
	CHECK_EQ_INT(call_policy_active(), 2);
	/* a slot is free; refusals spend no attempt, so 10.0.0.1 has one of its three left */
	CHECK_EQ_INT(call_policy_admit_at("10.0.0.1", "sip:a@b", 1000, why, sizeof(why)), 0);
	call_policy_release("10.0.0.1");
	call_policy_release("10.0.0.1");
	/* its bucket is empty now: refused for the rate until it refills (20 s per token) */
	CHECK_EQ_INT(call_policy_admit_at("10.0.0.1", "sip:a@b", 1000, why, sizeof(why)), -EAGAIN);
	CHECK(strstr(why, "CALL_ATTEMPTS_PER_MINUTE_PER_CLIENT") != NULL);
	CHECK_EQ_INT(call_policy_admit_at("10.0.0.1", "sip:a@b", 15000, why, sizeof(why)), -EAGAIN);
	CHECK_EQ_INT(call_policy_admit_at("10.0.0.1", "sip:a@b", 21000, why, sizeof(why)), 0);
	CHECK_EQ_INT(call_policy_refused(CALL_POLICY_CLIENT_ACTIVE), 1);
	CHECK_EQ_INT(call_policy_refused(CALL_POLICY_ACTIVE), 1);
	CHECK_EQ_INT(call_policy_refused(CALL_POLICY_CLIENT_RATE), 2);
	/* releases never go below zero */
	for (int i = 0; i < 10; i++)
		call_policy_release("10.0.0.9");
	call_policy_shutdown();
}

static void test_global_rate(void)
{
	char why[300], ip[32];
	int ok = 0;

	config(NULL, "100000", "10", "60", "10");
	CHECK_EQ_INT(call_policy_init(), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", i);
		if (call_policy_admit_at(ip, "sip:a@b", 5000, why, sizeof(why)) == 0)
			ok++;
	}
	CHECK_EQ_INT(ok, 60);
	CHECK_EQ_INT(call_policy_refused(CALL_POLICY_RATE), 40);
	/* a second later one more token */
	CHECK_EQ_INT(call_policy_admit_at("198.51.100.1", "sip:a@b", 6000, why, sizeof(why)), 0);
	CHECK_EQ_INT(call_policy_admit_at("198.51.100.2", "sip:a@b", 6000, why, sizeof(why)),
		     -EAGAIN);
	call_policy_count(CALL_POLICY_AUTH);
	CHECK_EQ_INT(call_policy_refused(CALL_POLICY_AUTH), 1);
	CHECK_EQ_STR(call_policy_reason_name(CALL_POLICY_CLIENT_RATE), "client_rate");
	CHECK_EQ_STR(call_policy_reason_name(CALL_POLICY_REASONS), "?");
	call_policy_shutdown();
}

static void test_attempt_without_call(void)
{
	char why[300];

	config("example.com", "1", "1", "1000", "2");
	CHECK_EQ_INT(call_policy_init(), 0);
	/* a REGISTER: destination and rate as for a call, nothing stays up */
	CHECK_EQ_INT(call_policy_attempt("10.1.1.1", "sip:alice@evil.example", why, sizeof(why)),
		     -EACCES);
	CHECK_EQ_INT(call_policy_attempt("10.1.1.1", "sip:alice@example.com", why, sizeof(why)), 0);
	CHECK_EQ_INT(call_policy_active(), 0);
	/* the one call allowed still fits; the client's second attempt of the minute spent */
	CHECK_EQ_INT(call_policy_admit("10.1.1.1", "sip:bob@example.com", why, sizeof(why)), 0);
	CHECK_EQ_INT(call_policy_attempt("10.1.1.1", "sip:alice@example.com", why, sizeof(why)),
		     -EAGAIN);
	CHECK_EQ_INT(call_policy_refused(CALL_POLICY_DESTINATION), 1);
	CHECK_EQ_INT(call_policy_refused(CALL_POLICY_CLIENT_RATE), 1);
	call_policy_shutdown();
}

static void test_many_clients_forgotten(void)
{
	char why[300], ip[32];
	int refused = 0;

	config(NULL, "1000000", "1", "6000000", "1");
	CHECK_EQ_INT(call_policy_init(), 0);
	/* more addresses than the table holds, each one call that ends at once: the idle ones are
	 * forgotten once their allowance is back (a minute later), so the table never blocks */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < CALL_POLICY_MAX_CLIENTS / 2 + 100; i++) {
			snprintf(ip, sizeof(ip), "10.%d.%d.%d", round, i / 256, i % 256);
			if (call_policy_admit_at(ip, "sip:a@b", (uint64_t)round * 120000 + 1, why,
						 sizeof(why)) < 0)
				refused++;
			else
				call_policy_release(ip);
		}
	}
	CHECK_EQ_INT(refused, 0);
	call_policy_shutdown();
}

int main(void)
{
	TEST_RUN(test_destinations);
	TEST_RUN(test_bad_config);
	TEST_RUN(test_client_limits);
	TEST_RUN(test_global_rate);
	TEST_RUN(test_attempt_without_call);
	TEST_RUN(test_many_clients_forgotten);
	return TEST_DONE();
}
