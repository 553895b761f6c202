/*
 * test_netacl.c - unit tests for common/netacl.c (networks, addresses, mapped IPv4, bounds).
 */
#include "harness.h"
#include "netacl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in s = {.sin_family = AF_INET};

	inet_pton(AF_INET, ip, &s.sin_addr);
	return s;
}

static struct sockaddr_in6 v6(const char *ip)
{
	struct sockaddr_in6 s = {.sin6_family = AF_INET6};

	inet_pton(AF_INET6, ip, &s.sin6_addr);
	return s;
}

static void test_networks(void)
{
	struct netacl *a = netacl_new();
	char why[160];

	CHECK(a != NULL);
	CHECK(!netacl_match_str(a, "127.0.0.1"));
	CHECK_EQ_INT(netacl_add_list(a, " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,,::1", why,
				     sizeof(why)),
		     0);
	CHECK_EQ_INT(netacl_count(a), 4);
	CHECK(netacl_match_str(a, "10.255.1.2"));
	CHECK(!netacl_match_str(a, "11.0.0.1"));
	CHECK(netacl_match_str(a, "192.0.2.7"));
	CHECK(!netacl_match_str(a, "192.0.2.8"));
	CHECK(netacl_match_str(a, "2001:db8:ffff::1"));
	CHECK(!netacl_match_str(a, "2001:db9::1"));
	CHECK(netacl_match_str(a, "::1"));
	CHECK(!netacl_match_str(a, "::2"));
	CHECK(!netacl_match_str(a, "not an address"));
	/* IPv4-mapped IPv6 matches the IPv4 entries */
	CHECK(netacl_match_str(a, "::ffff:10.1.2.3"));
	struct sockaddr_in s4 = v4("10.9.9.9");
	struct sockaddr_in6 s6 = v6("::ffff:192.0.2.7");
	CHECK(netacl_match(a, (struct sockaddr *)&s4));
	CHECK(netacl_match(a, (struct sockaddr *)&s6));
	CHECK(!netacl_is_any(a));
	netacl_destroy(&a);
	CHECK(a == NULL);
	netacl_destroy(NULL);
}

static void test_prefix_edges(void)
{
	struct netacl *a = netacl_new();
	char why[160];

	CHECK_EQ_INT(netacl_add_list(a, "192.0.2.128/25", why, sizeof(why)), 0);
	CHECK(netacl_match_str(a, "192.0.2.129"));
	CHECK(!netacl_match_str(a, "192.0.2.127"));
	CHECK_EQ_INT(netacl_add_list(a, "198.51.100.1/0", why, sizeof(why)), 0);
	CHECK(netacl_match_str(a, "203.0.113.5"));
	CHECK(!netacl_match_str(a, "2001:db8::1")); /* 0.0.0.0/0 is IPv4 only */
	CHECK(!netacl_is_any(a));
	CHECK_EQ_INT(netacl_add_list(a, "any", why, sizeof(why)), 0);
	CHECK(netacl_match_str(a, "2001:db8::1"));
	CHECK(netacl_is_any(a));
	netacl_destroy(&a);
}

static void test_bad_input(void)
{
	struct netacl *a = netacl_new();
	char why[160], big[400];

	CHECK_EQ_INT(netacl_add_list(a, "10.0.0.0/33", why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "prefix") != NULL);
	CHECK_EQ_INT(netacl_add_list(a, "10.0.0.0/", why, sizeof(why)), -EINVAL);
	CHECK_EQ_INT(netacl_add_list(a, "10.0.0.0/-1", why, sizeof(why)), -EINVAL);
	CHECK_EQ_INT(netacl_add_list(a, "::/129", why, sizeof(why)), -EINVAL);
	CHECK_EQ_INT(netacl_add_list(a, "host name/8", why, sizeof(why)), -EINVAL);
	CHECK_EQ_INT(netacl_add_list(a, "a;b", why, sizeof(why)), -EINVAL);
	CHECK_EQ_INT(netacl_add_list(a, "no-such-host.invalid", why, sizeof(why)), -ENOENT);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_INT(netacl_add_list(a, big, why, sizeof(why)), -EINVAL);
	/* a failing list adds nothing, even its good entries */
	CHECK_EQ_INT(netacl_add_list(a, "10.0.0.1, 10.0.0.0/99", why, sizeof(why)), -EINVAL);
	CHECK_EQ_INT(netacl_count(a), 0);
	CHECK_EQ_INT(netacl_add_list(a, NULL, why, sizeof(why)), 0);
	CHECK_EQ_INT(netacl_add_list(a, "", why, sizeof(why)), 0);
	CHECK_EQ_INT(netacl_count(a), 0);
	netacl_destroy(&a);
}

static void test_bounds_and_dedup(void)
{
	struct netacl *a = netacl_new();
	struct sockaddr_in s = v4("10.0.0.1");
	char why[160], ip[32];
	int added = 0;

	CHECK_EQ_INT(netacl_add_addr(a, (struct sockaddr *)&s, -1), 1);
	CHECK_EQ_INT(netacl_add_addr(a, (struct sockaddr *)&s, -1), 0);
	CHECK_EQ_INT(netacl_add_addr(a, (struct sockaddr *)&s, 33), -EINVAL);
	CHECK_EQ_INT(netacl_add_list(a, "10.0.0.1", why, sizeof(why)), 0);
	CHECK_EQ_INT(netacl_count(a), 1);
	for (int i = 0; i < NETACL_MAX + 10; i++) {
		snprintf(ip, sizeof(ip), "172.16.%d.%d", i / 250, i % 250);
		s = v4(ip);
		if (netacl_add_addr(a, (struct sockaddr *)&s, -1) == 1)
			added++;
	}
	CHECK_EQ_INT(netacl_count(a), NETACL_MAX);
	CHECK_EQ_INT(added, NETACL_MAX - 1);
	CHECK_EQ_INT(netacl_add_list(a, "192.0.2.1", why, sizeof(why)), -ENOSPC);
	netacl_destroy(&a);
}

static void test_describe(void)
{
	struct netacl *a = netacl_new();
	char why[160], out[256];

	CHECK_EQ_INT(netacl_add_list(a, "127.0.0.0/8,::1,any", why, sizeof(why)), 0);
	CHECK_EQ_STR(netacl_describe(a, out, sizeof(out)), "127.0.0.0/8, ::1/128, any");
	CHECK_EQ_STR(netacl_describe(a, out, 8), "127.0.0");
	netacl_destroy(&a);
}

static void test_addr_str(void)
{
	struct sockaddr_in s4 = v4("192.0.2.7");
	struct sockaddr_in6 s6 = v6("2001:db8::1");
	struct sockaddr other = {.sa_family = AF_UNIX};
	char buf[64], tiny[4];

	CHECK_EQ_STR(netacl_addr_str((struct sockaddr *)&s4, buf, sizeof(buf)), "192.0.2.7");
	CHECK_EQ_STR(netacl_addr_str((struct sockaddr *)&s6, buf, sizeof(buf)), "2001:db8::1");
	CHECK_EQ_STR(netacl_addr_str(&other, buf, sizeof(buf)), "?");
	CHECK_EQ_STR(netacl_addr_str(NULL, buf, sizeof(buf)), "?");
	CHECK_EQ_STR(netacl_addr_str((struct sockaddr *)&s4, tiny, sizeof(tiny)), "?");
}

int main(void)
{
	TEST_RUN(test_networks);
	TEST_RUN(test_prefix_edges);
	TEST_RUN(test_bad_input);
	TEST_RUN(test_bounds_and_dedup);
	TEST_RUN(test_describe);
	TEST_RUN(test_addr_str);
	return TEST_DONE();
}
