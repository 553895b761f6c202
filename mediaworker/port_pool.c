/*
 * port_pool.c - RTP port pairs: a FIFO ring of free pairs, a FIFO ring of busy pairs with
 * their expiry, and one state byte per pair.
 *
 *              alloc                      release
 *     FREE ------------> ALLOCATED ----------------> FREE (tail of the free ring)
 *       ^                    |
 *       |                    | mark_busy (another process holds it)
 *       |   expiry, checked  v
 *       +------------------ BUSY (tail of the busy ring, until now + busy_ms)
 *            on alloc
 *
 * Every pair is in at most one ring, so both rings are sized to the number of pairs and all
 * operations are O(1) (reclaiming expired busy pairs is amortised O(1)).
 */
#include "port_pool.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

enum pair_state { PAIR_FREE = 0, PAIR_ALLOCATED, PAIR_BUSY };

struct port_pool {
	uint16_t first; /* lowest RTP port (even) */
	unsigned n;	/* number of pairs */
	uint8_t *state; /* enum pair_state per pair */
	uint16_t *free_ring;
	unsigned free_head, free_count;
	uint16_t *busy_ring;
	uint64_t *busy_until; /* parallel to busy_ring */
	unsigned busy_head, busy_count;
	unsigned in_use;
	uint32_t busy_ms;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct port_pool *port_pool_new(uint16_t min, uint16_t max)
{
	struct port_pool *pool;
	uint32_t first, last;

	if (min == 0 || max <= min) {
		errno = EINVAL;
		return NULL;
	}
	first = (uint32_t)min + (min & 1u);
	last = ((uint32_t)max - 1u) & ~1u; /* largest even P with P + 1 <= max */
	if (last < first) {
		errno = EINVAL;
		return NULL;
	}
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return NULL;
	pool->first = (uint16_t)first;
	pool->n = (last - first) / 2u + 1u;
	pool->busy_ms = PORT_POOL_BUSY_MS;
	pool->state = calloc(pool->n, sizeof(*pool->state));
	pool->free_ring = calloc(pool->n, sizeof(*pool->free_ring));
	pool->busy_ring = calloc(pool->n, sizeof(*pool->busy_ring));
	pool->busy_until = calloc(pool->n, sizeof(*pool->busy_until));
	if (!pool->state || !pool->free_ring || !pool->busy_ring || !pool->busy_until) {
		port_pool_destroy(&pool);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned i = 0; i < pool->n; i++)
		pool->free_ring[i] = (uint16_t)i;
	pool->free_count = pool->n;
	return pool;
}

void port_pool_destroy(struct port_pool **poolp)
{
	struct port_pool *pool = poolp ? *poolp : NULL;

	if (!pool)
		return;
	free(pool->state);
	free(pool->free_ring);
	free(pool->busy_ring);
	free(pool->busy_until);
	free(pool);
	*poolp = NULL;
}

static void free_push(struct port_pool *pool, unsigned idx)
{
	pool->free_ring[(pool->free_head + pool->free_count) % pool->n] = (uint16_t)idx;
	pool->free_count++;
	pool->state[idx] = PAIR_FREE;
}

static void reclaim_busy(struct port_pool *pool)
{
	uint64_t now;

	if (!pool->busy_count)
		return;
	now = now_ms();
	while (pool->busy_count && pool->busy_until[pool->busy_head] <= now) {
		unsigned idx = pool->busy_ring[pool->busy_head];

		pool->busy_head = (pool->busy_head + 1) % pool->n;
		pool->busy_count--;
		free_push(pool, idx);
	}
}

int port_pool_alloc(struct port_pool *pool, uint16_t *rtp_port)
{
	unsigned idx;

	reclaim_busy(pool);
	if (!pool->free_count)
		return -ENOSPC;
	idx = pool->free_ring[pool->free_head];
	pool->free_head = (pool->free_head + 1) % pool->n;
	pool->free_count--;
	pool->state[idx] = PAIR_ALLOCATED;
	pool->in_use++;
	*rtp_port = (uint16_t)(pool->first + 2u * idx);
	return 0;
}

/* Index of the allocated pair of @rtp_port, or -1 (logged) when it is not one. */
static int allocated_index(const struct port_pool *pool, uint16_t rtp_port, const char *what)
{
	unsigned idx;

	if (rtp_port < pool->first || (rtp_port - pool->first) % 2u) {
		log_warn(NULL, "port_pool: %s of port %u, not a pair of this pool", what, rtp_port);
		return -1;
	}
	idx = (rtp_port - pool->first) / 2u;
	if (idx >= pool->n) {
		log_warn(NULL, "port_pool: %s of port %u, not a pair of this pool", what, rtp_port);
		return -1;
	}
	if (pool->state[idx] != PAIR_ALLOCATED) {
		log_error(NULL, "port_pool: double %s of port %u (pair is %s), ignored", what,
			  rtp_port, pool->state[idx] == PAIR_BUSY ? "busy" : "free");
		return -1;
	}
	return (int)idx;
}

int port_pool_release(struct port_pool *pool, uint16_t rtp_port)
{
	int idx = allocated_index(pool, rtp_port, "release");

	if (idx < 0)
		return -EINVAL;
	pool->in_use--;
	free_push(pool, (unsigned)idx);
	return 0;
}

int port_pool_mark_busy(struct port_pool *pool, uint16_t rtp_port)
{
	int idx = allocated_index(pool, rtp_port, "mark_busy");
	unsigned slot;

	if (idx < 0)
		return -EINVAL;
	pool->in_use--;
	slot = (pool->busy_head + pool->busy_count) % pool->n;
	pool->busy_ring[slot] = (uint16_t)idx;
	pool->busy_until[slot] = now_ms() + pool->busy_ms;
	pool->busy_count++;
	pool->state[idx] = PAIR_BUSY;
	return 0;
}

unsigned port_pool_in_use(const struct port_pool *pool)
{
	return pool->in_use;
}

unsigned port_pool_busy(const struct port_pool *pool)
{
	return pool->busy_count;
}

unsigned port_pool_capacity(const struct port_pool *pool)
{
	return pool->n;
}

bool port_pool_is_allocated(const struct port_pool *pool, uint16_t rtp_port)
{
	unsigned idx;

	if (rtp_port < pool->first || (rtp_port - pool->first) % 2u)
		return false;
	idx = (rtp_port - pool->first) / 2u;
	return idx < pool->n && pool->state[idx] == PAIR_ALLOCATED;
}

void port_pool_set_busy_ms(struct port_pool *pool, uint32_t ms)
{
	pool->busy_ms = ms;
}
