/*
 * config.c - configuration from environment variables, validated and bounded.
 */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENV_FILE_MAX (64 * 1024)
#define ENV_VARS_MAX 64

int config_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out)
{
	const char *s = getenv(name);
	char *end;
	long long v;

	if (!s || !*s) {
		*out = def;
		return 0;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end) {
		log_error(NULL, "config: %s=\"%s\" is not a whole number", name, s);
		return -EINVAL;
	}
	if (v < min || v > max) {
		log_error(NULL, "config: %s=%lld is outside [%" PRId64 ", %" PRId64 "]", name, v, min,
			  max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

const char *config_str(const char *name, const char *def)
{
	const char *s = getenv(name);

	return s && *s ? s : def;
}

int config_bool(const char *name, bool def, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	const char *s = getenv(name);

	if (!s || !*s) {
		*out = def;
		return 0;
	}
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	log_error(NULL, "config: %s=\"%s\" is not a boolean (use 1/0, true/false)", name, s);
	return -EINVAL;
}

int config_enum(const char *name, int def, const char *const choices[], int *out)
{
	const char *s = getenv(name);
	char list[256] = "";
	size_t used = 0;

	*out = def;
	if (!s || !*s)
		return 0;
	for (int i = 0; choices[i]; i++) {
		int k;

		if (strcmp(s, choices[i]) == 0) {
			*out = i;
			return 0;
		}
		if (used >= sizeof(list))
			continue; /* the list is cut; the search goes on */
		k = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", choices[i]);
		used += k > 0 ? (size_t)k : 0;
	}
	log_error(NULL, "config: %s=\"%.32s\": expected one of %s", name, s, list);
	return -EINVAL;
}

int config_read_file(const char *path, size_t max, char **out, size_t *len, char *why,
		     size_t whylen)
{
	struct stat st;
	size_t got = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0) {
		err = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return err;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		close(fd);
		snprintf(why, whylen, "%s: not a regular file of at most %zu bytes", path, max);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		snprintf(why, whylen, "%s: out of memory", path);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size || memchr(buf, '\0', got)) {
		snprintf(why, whylen, "%s: %s", path,
			 got != (size_t)st.st_size ? "read failed" : "holds a NUL byte");
		explicit_bzero(buf, got);
		free(buf);
		return got != (size_t)st.st_size ? -EIO : -EINVAL;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

int config_secret_file(const char *path, char *out, size_t size, char *why, size_t whylen)
{
	size_t len, got;
	char *buf;
	int ret;

	if (size < 2)
		return -EINVAL;
	ret = config_read_file(path, size + 1, &buf, &got, why, whylen); /* + "\r\n" */
	if (ret < 0) {
		if (ret == -EINVAL && strstr(why, "at most"))
			snprintf(why, whylen, "%s: too long", path);
		return ret;
	}
	len = got;
	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len == 0 || len >= size || strpbrk(buf, "\r\n")) {
		snprintf(why, whylen, "%s: %s", path,
			 len == 0 ? "empty" : len >= size ? "too long" : "more than one line");
		ret = -EINVAL;
	} else {
		memcpy(out, buf, len + 1);
	}
	explicit_bzero(buf, got);
	free(buf);
	return ret;
}

static bool name_in(const char *const *names, const char *s, size_t len)
{
	for (; *names; names++)
		if (strlen(*names) == len && memcmp(*names, s, len) == 0)
			return true;
	return false;
}

int config_env_file(const char *path, const char *const *names, char *why, size_t whylen)
{
	struct {
		char name[64];
		const char *value;
	} vars[ENV_VARS_MAX];
	char *buf, *p, *nl;
	unsigned line = 0, n = 0, set = 0;
	size_t len;
	int ret;

	ret = config_read_file(path, ENV_FILE_MAX, &buf, &len, why, whylen);
	if (ret < 0)
		return ret;
	/* Parse it all first: a broken file sets nothing. */
	for (p = buf; *p; p = nl ? nl + 1 : p + strlen(p)) {
		char *eq, *v, *e;

		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		line++;
		if (!*p || *p == '#')
			continue;
		eq = strchr(p, '=');
		if (!eq || eq == p || (size_t)(eq - p) >= sizeof(vars[0].name)) {
			snprintf(why, whylen, "%s line %u: not NAME=value", path, line);
			ret = -EINVAL;
			goto out_free;
		}
		for (char *c = p; c < eq; c++) {
			if (!(*c == '_' || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) {
				snprintf(why, whylen, "%s line %u: bad variable name", path, line);
				ret = -EINVAL;
				goto out_free;
			}
		}
		v = eq + 1;
		e = v + strlen(v);
		if (*v == '\'') {
			if (e - v < 2 || e[-1] != '\'' || memchr(v + 1, '\'', (size_t)(e - v - 2))) {
				snprintf(why, whylen, "%s line %u: unbalanced quote", path, line);
				ret = -EINVAL;
				goto out_free;
			}
			*--e = '\0';
			v++;
		}
		if (!name_in(names, p, (size_t)(eq - p)))
			continue;
		if (n == ENV_VARS_MAX) {
			snprintf(why, whylen, "%s: too many variables", path);
			ret = -EINVAL;
			goto out_free;
		}
		snprintf(vars[n].name, sizeof(vars[n].name), "%.*s", (int)(eq - p), p);
		vars[n++].value = v;
	}
	for (unsigned i = 0; i < n; i++) {
		if (getenv(vars[i].name))
			continue;
		if (setenv(vars[i].name, vars[i].value, 0) < 0) {
			ret = -errno;
			snprintf(why, whylen, "setenv %s: %s", vars[i].name, strerror(errno));
			goto out_free;
		}
		set++;
	}
	ret = (int)set;
out_free:
	free(buf);
	return ret;
}
