/*
 * test_config.c - configuration files: a secret file (one line, bounded, no NUL) and the
 * environment file `make run` writes (NAME=value, quotes, comments; only the names asked for,
 * never over a variable already set; a broken file sets nothing).
 */
#include "config.h"
#include "harness.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static const char *file(const char *name, const void *text, size_t len)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fwrite(text, 1, len, f);
		fclose(f);
	}
	return path;
}

#define TEXT(name, s) file(name, s, sizeof(s) - 1)

static void test_secret_file(void)
{
	char out[16], why[256];

	CHECK_EQ_INT(config_secret_file(TEXT("p1", "s3cret\n"), out, sizeof(out), why, sizeof(why)),
		     0);
	CHECK_EQ_STR(out, "s3cret");
	CHECK_EQ_INT(config_secret_file(TEXT("p2", "with space\r\n"), out, sizeof(out), why,
					sizeof(why)),
		     0);
	CHECK_EQ_STR(out, "with space");
	CHECK_EQ_INT(config_secret_file(TEXT("p3", "fifteen-chars-x"), out, sizeof(out), why,
					sizeof(why)),
		     0);
	CHECK_EQ_INT(config_secret_file(TEXT("p4", "sixteen-chars-xx"), out, sizeof(out), why,
					sizeof(why)),
		     -EINVAL);
	CHECK(strstr(why, "too long") != NULL);
	CHECK_EQ_INT(config_secret_file(TEXT("p5", "two\nlines\n"), out, sizeof(out), why,
					sizeof(why)),
		     -EINVAL);
	CHECK_EQ_INT(config_secret_file(TEXT("p6", "\n"), out, sizeof(out), why, sizeof(why)),
		     -EINVAL);
	CHECK_EQ_INT(config_secret_file(file("p7", "a\0b", 3), out, sizeof(out), why, sizeof(why)),
		     -EINVAL);
	CHECK_EQ_INT(config_secret_file("/nonexistent/x", out, sizeof(out), why, sizeof(why)),
		     -ENOENT);
	CHECK_EQ_INT(config_secret_file(dir, out, sizeof(out), why, sizeof(why)), -EINVAL);
}

static void test_env_file(void)
{
	static const char *const names[] = {"T_A", "T_B", "T_C", "T_SET", NULL};
	char why[256];

	unsetenv("T_A");
	unsetenv("T_B");
	unsetenv("T_C");
	unsetenv("T_OTHER");
	setenv("T_SET", "mine", 1);
	CHECK_EQ_INT(config_env_file(TEXT("e1", "# a make run stack\n"
						"T_A=127.0.0.1\n"
						"\n"
						"T_B='/path with space/redis.pass'\n"
						"T_OTHER=ignored\n"
						"T_SET=theirs\n"
						"T_C=\n"),
				     names, why, sizeof(why)),
		     3); /* T_C is set empty (config_str() takes it for unset) */
	CHECK_EQ_STR(getenv("T_A"), "127.0.0.1");
	CHECK_EQ_STR(getenv("T_B"), "/path with space/redis.pass");
	CHECK_EQ_STR(getenv("T_SET"), "mine");
	CHECK(getenv("T_OTHER") == NULL);
	unsetenv("T_A");
	unsetenv("T_B");
	unsetenv("T_C");

	/* a broken line: nothing is set */
	CHECK_EQ_INT(config_env_file(TEXT("e2", "T_A=1\nT_B='unbalanced\n"), names, why,
				     sizeof(why)),
		     -EINVAL);
	CHECK(strstr(why, "line 2") != NULL);
	CHECK(getenv("T_A") == NULL);
	CHECK_EQ_INT(config_env_file(TEXT("e3", "no equals sign\n"), names, why, sizeof(why)),
		     -EINVAL);
	CHECK_EQ_INT(config_env_file(TEXT("e4", "lower=case\n"), names, why, sizeof(why)),
		     -EINVAL);
	CHECK_EQ_INT(config_env_file(TEXT("e5", "T_A='a'b'\n"), names, why, sizeof(why)), -EINVAL);
	CHECK_EQ_INT(config_env_file("/nonexistent/env", names, why, sizeof(why)), -ENOENT);
	unsetenv("T_SET");
}

static void test_enum(void)
{
	static const char *const names[] = {"off", "optional", "required", NULL};
	int v;

	unsetenv("TEST_ENUM");
	CHECK_EQ_INT(config_enum("TEST_ENUM", 1, names, &v), 0);
	CHECK_EQ_INT(v, 1);
	CHECK_EQ_INT(config_enum("TEST_ENUM", -1, names, &v), 0);
	CHECK_EQ_INT(v, -1);
	setenv("TEST_ENUM", "", 1);
	CHECK_EQ_INT(config_enum("TEST_ENUM", 0, names, &v), 0);
	CHECK_EQ_INT(v, 0);
	setenv("TEST_ENUM", "required", 1);
	CHECK_EQ_INT(config_enum("TEST_ENUM", 0, names, &v), 0);
	CHECK_EQ_INT(v, 2);
	setenv("TEST_ENUM", "Required", 1); /* exact */
	v = 7;
	CHECK_EQ_INT(config_enum("TEST_ENUM", 0, names, &v), -EINVAL);
	setenv("TEST_ENUM", "on", 1);
	CHECK_EQ_INT(config_enum("TEST_ENUM", 0, names, &v), -EINVAL);
	unsetenv("TEST_ENUM");
}

int main(void)
{
	int ret;

	log_init("test_config", LOG_LVL_ERROR);
	if (!th_tmpdir(dir, sizeof(dir), "test_config"))
		return 1;
	TEST_RUN(test_secret_file);
	TEST_RUN(test_env_file);
	TEST_RUN(test_enum);
	ret = TEST_DONE();
	th_rmtree(dir);
	return ret;
}
