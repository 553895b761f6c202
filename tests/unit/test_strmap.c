/*
 * test_strmap.c - unit tests for common/strmap.c.
 */
#include "harness.h"
#include "strmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int freed;

static void count_free(void *v)
{
	freed++;
	free(v);
}

static void test_put_get_del(void)
{
	struct strmap *m = strmap_new(4, 0);
	int a = 1, b = 2;

	CHECK(m != NULL);
	CHECK(strmap_get(m, "a") == NULL);
	CHECK_EQ_INT(strmap_put(m, "a", &a), 0);
	CHECK_EQ_INT(strmap_put(m, "b", &b), 0);
	CHECK_EQ_INT(strmap_put(m, "a", &b), -EEXIST);
	CHECK(strmap_get(m, "a") == &a);
	CHECK(strmap_get(m, "b") == &b);
	CHECK_EQ_INT(strmap_count(m), 2);
	CHECK(strmap_del(m, "a") == &a);
	CHECK(strmap_del(m, "a") == NULL);
	CHECK(strmap_get(m, "a") == NULL);
	CHECK_EQ_INT(strmap_count(m), 1);
	CHECK_EQ_INT(strmap_put(m, NULL, &a), -EINVAL);
	CHECK_EQ_INT(strmap_put(m, "x", NULL), -EINVAL);
	strmap_destroy(&m, NULL);
	CHECK(m == NULL);
	strmap_destroy(NULL, NULL);
}

static void test_set(void)
{
	struct strmap *m = strmap_new(16, 1);
	int a = 1, b = 2;

	CHECK_EQ_INT(strmap_put(m, "k", &a), 0);
	CHECK(strmap_set(m, "k", &b) == &a);
	CHECK(strmap_get(m, "k") == &b);
	CHECK(strmap_set(m, "k", NULL) == NULL);
	CHECK(strmap_get(m, "k") == &b);
	CHECK(strmap_set(m, "absent", &a) == NULL);
	CHECK(strmap_get(m, "absent") == NULL);
	CHECK_EQ_INT(strmap_count(m), 1);
	CHECK(strmap_set(NULL, "k", &a) == NULL);
	strmap_destroy(&m, NULL);
}

static void test_many_and_cap(void)
{
	struct strmap *m = strmap_new(16, 1000);
	char key[32], big[STRMAP_KEY_MAX + 2];
	int ok = 0;

	for (int i = 0; i < 1200; i++) {
		int *v = malloc(sizeof(*v));

		*v = i;
		snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
		if (strmap_put(m, key, v) == 0)
			ok++;
		else
			free(v);
	}
	CHECK_EQ_INT(ok, 1000);
	CHECK_EQ_INT(strmap_count(m), 1000);
	snprintf(key, sizeof(key), "10.0.%d.%d", 999 / 256, 999 % 256);
	CHECK(strmap_get(m, key) && *(int *)strmap_get(m, key) == 999);
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_INT(strmap_put(m, big, &ok), -ENAMETOOLONG);
	freed = 0;
	strmap_destroy(&m, count_free);
	CHECK_EQ_INT(freed, 1000);
}

static bool drop_odd(const char *key, void *val, void *arg)
{
	int *v = val;

	(void)key;
	(void)arg;
	if (*v % 2 == 0)
		return false;
	free(v);
	return true;
}

static bool count_all(const char *key, void *val, void *arg)
{
	(void)key;
	(void)val;
	++*(int *)arg;
	return false;
}

static void test_sweep(void)
{
	struct strmap *m = strmap_new(16, 0);
	char key[16];
	int visited = 0;

	for (int i = 0; i < 100; i++) {
		int *v = malloc(sizeof(*v));

		*v = i;
		snprintf(key, sizeof(key), "k%d", i);
		CHECK_EQ_INT(strmap_put(m, key, v), 0);
	}
	CHECK_EQ_INT(strmap_sweep(m, count_all, &visited), 0); /* iteration: keeps every entry */
	CHECK_EQ_INT(visited, 100);
	CHECK_EQ_INT(strmap_count(m), 100);
	CHECK_EQ_INT(strmap_sweep(m, drop_odd, NULL), 50);
	CHECK_EQ_INT(strmap_count(m), 50);
	CHECK(strmap_get(m, "k3") == NULL);
	CHECK(strmap_get(m, "k4") != NULL);
	freed = 0;
	strmap_destroy(&m, count_free);
	CHECK_EQ_INT(freed, 50);
}

int main(void)
{
	TEST_RUN(test_put_get_del);
	TEST_RUN(test_set);
	TEST_RUN(test_many_and_cap);
	TEST_RUN(test_sweep);
	return TEST_DONE();
}
