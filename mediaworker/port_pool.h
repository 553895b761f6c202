/*
 * port_pool.h - RTP/RTCP port pairs from a configured range, handed out in O(1).
 *
 * A pair is an even RTP port P and its RTCP port P + 1. The pool covers every even P with
 * min <= P and P + 1 <= max. Allocation takes the pair released longest ago (FIFO), so a
 * port is reused as late as possible and stray packets of an ended call rarely reach the next
 * one.
 *
 * The pool only books numbers; it does not bind. When the caller's bind fails because another
 * process holds the port (EADDRINUSE), it hands the pair back with port_pool_mark_busy(): the
 * pair then sits out for a while (PORT_POOL_BUSY_MS by default) and returns to the free list by
 * itself, checked lazily on the next allocation.
 *
 * Releasing a pair that is not allocated (double release, foreign port) is logged and ignored;
 * the books stay consistent. Single-threaded, like everything driven by the event loop.
 */
#ifndef RS_PORT_POOL_H
#define RS_PORT_POOL_H

#include <stdbool.h>
#include <stdint.h>

/* How long a pair found held by another process stays out of circulation. */
#define PORT_POOL_BUSY_MS 30000u

struct port_pool;

/*
 * Creates a pool of the pairs in [min, max]. Returns NULL with errno EINVAL when the range
 * holds no pair (min > max, max - min < 1, min 0), or ENOMEM.
 */
struct port_pool *port_pool_new(uint16_t min, uint16_t max);

/* Frees the pool; NULL-safe, clears *poolp. Allocated pairs are simply forgotten. */
void port_pool_destroy(struct port_pool **poolp);

/*
 * Takes a free pair and stores its RTP (even) port in *rtp_port. Returns 0, or -ENOSPC when
 * every pair is allocated or sitting out as busy.
 */
int port_pool_alloc(struct port_pool *pool, uint16_t *rtp_port);

/*
 * Gives the pair of @rtp_port back. A port that is outside the range, odd, or not allocated
 * is logged (double release) and ignored; returns 0 or -EINVAL in that case.
 */
int port_pool_release(struct port_pool *pool, uint16_t rtp_port);

/*
 * Gives back an allocated pair that another process holds: it is not handed out again for
 * the busy period. Same errors as port_pool_release().
 */
int port_pool_mark_busy(struct port_pool *pool, uint16_t rtp_port);

/* Pairs currently allocated (not counting busy ones). */
unsigned port_pool_in_use(const struct port_pool *pool);

/* Pairs sitting out as busy (some may have expired and not been reclaimed yet). */
unsigned port_pool_busy(const struct port_pool *pool);

/* Total number of pairs in the range. */
unsigned port_pool_capacity(const struct port_pool *pool);

/* True when @rtp_port is a pair of this pool that is currently allocated. */
bool port_pool_is_allocated(const struct port_pool *pool, uint16_t rtp_port);

/* Changes the busy period (tests use a short one). */
void port_pool_set_busy_ms(struct port_pool *pool, uint32_t ms);

#endif
