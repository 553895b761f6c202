/*
 * strmap.h - a map from strings to pointers (chained hash table, FNV-1a).
 *
 * Keys are copied (at most STRMAP_KEY_MAX bytes); values are the caller's. The bucket count is
 * fixed at creation and the number of entries may be capped, so a map fed from the network has
 * a known worst case. Not thread-safe.
 */
#ifndef RS_STRMAP_H
#define RS_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

#define STRMAP_KEY_MAX 255

struct strmap;

/* A map of @buckets chains (rounded up to a power of two, at least 16) holding at most @max
 * entries (0: no cap). NULL with errno ENOMEM. */
struct strmap *strmap_new(size_t buckets, size_t max);

/* Frees the map, calling @free_val (may be NULL) on each value. NULL-safe; clears *mp. */
void strmap_destroy(struct strmap **mp, void (*free_val)(void *val));

/* The value of @key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);

/* Adds @key -> @val (@val not NULL). 0, -EEXIST (key present, nothing changed), -ENOSPC (the
 * cap is reached), -ENAMETOOLONG (key over STRMAP_KEY_MAX), -EINVAL, -ENOMEM. */
int strmap_put(struct strmap *m, const char *key, void *val);

/* Replaces the value of @key with @val (not NULL) and returns the old one; NULL (nothing
 * changed) when @key is absent. Never allocates, so it cannot fail on a present key. */
void *strmap_set(struct strmap *m, const char *key, void *val);

/* Removes @key; returns its value (the caller frees it), or NULL when absent. */
void *strmap_del(struct strmap *m, const char *key);

/* Entries now. */
size_t strmap_count(const struct strmap *m);

/*
 * Calls @fn on every entry; an entry for which it returns true is removed (@fn frees the value
 * then). @fn must not touch the map otherwise. Returns the number removed.
 */
size_t strmap_sweep(struct strmap *m, bool (*fn)(const char *key, void *val, void *arg),
		    void *arg);

#endif
