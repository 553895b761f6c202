/*
 * strmap.c - a map from strings to pointers (see strmap.h).
 */
#include "strmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *next;
	void *val;
	char key[]; /* NUL-terminated */
};

struct strmap {
	struct entry **buckets;
	size_t mask; /* buckets - 1 */
	size_t count, max;
};

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

struct strmap *strmap_new(size_t buckets, size_t max)
{
	struct strmap *m = calloc(1, sizeof(*m));
	size_t n = 16;

	if (!m)
		return NULL;
	while (n < buckets && n < ((size_t)1 << 24))
		n <<= 1;
	m->buckets = calloc(n, sizeof(*m->buckets));
	if (!m->buckets) {
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	m->mask = n - 1;
	m->max = max;
	return m;
}

void strmap_destroy(struct strmap **mp, void (*free_val)(void *val))
{
	struct strmap *m = mp ? *mp : NULL;

	if (!m)
		return;
	for (size_t i = 0; i <= m->mask; i++) {
		struct entry *e = m->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			if (free_val)
				free_val(e->val);
			free(e);
		}
	}
	free(m->buckets);
	free(m);
	*mp = NULL;
}

/* The link that points at @key's entry, or at the end of its chain. */
static struct entry **slot(const struct strmap *m, const char *key)
{
	struct entry **pp = &m->buckets[hash(key) & m->mask];

	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct entry *e = m && key ? *slot(m, key) : NULL;

	return e ? e->val : NULL;
}

int strmap_put(struct strmap *m, const char *key, void *val)
{
	struct entry **pp, *e;
	size_t len;

	if (!m || !key || !val)
		return -EINVAL;
	len = strnlen(key, STRMAP_KEY_MAX + 1);
	if (len > STRMAP_KEY_MAX)
		return -ENAMETOOLONG;
	pp = slot(m, key);
	if (*pp)
		return -EEXIST;
	if (m->max && m->count >= m->max)
		return -ENOSPC;
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, len + 1);
	e->val = val;
	e->next = NULL;
	*pp = e;
	m->count++;
	return 0;
}

void *strmap_set(struct strmap *m, const char *key, void *val)
{
	struct entry *e = m && key && val ? *slot(m, key) : NULL;
	void *old;

	if (!e)
		return NULL;
	old = e->val;
	e->val = val;
	return old;
}

void *strmap_del(struct strmap *m, const char *key)
{
	struct entry **pp, *e;
	void *val;

	if (!m || !key)
		return NULL;
	pp = slot(m, key);
	e = *pp;
	if (!e)
		return NULL;
	*pp = e->next;
	val = e->val;
	free(e);
	m->count--;
	return val;
}

size_t strmap_count(const struct strmap *m)
{
	return m ? m->count : 0;
}

size_t strmap_sweep(struct strmap *m, bool (*fn)(const char *key, void *val, void *arg),
		    void *arg)
{
	size_t removed = 0;

	for (size_t i = 0; m && i <= m->mask; i++) {
		struct entry **pp = &m->buckets[i];

		while (*pp) {
			struct entry *e = *pp;

			if (fn(e->key, e->val, arg)) {
				*pp = e->next;
				free(e);
				m->count--;
				removed++;
			} else {
				pp = &e->next;
			}
		}
	}
	return removed;
}
