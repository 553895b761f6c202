/*
 * fuzz_target.h - what the libFuzzer targets here share: the entry point each one defines,
 * EXPECT for the properties they check beyond "no crash, no leak, no UB" (a broken one aborts,
 * which libFuzzer reports with the input), and the small PRNG that turns input bytes into
 * choices (how a stream is cut into reads).
 */
#ifndef RS_FUZZ_TARGET_H
#define RS_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EXPECT(x)                                                                                  \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

/* xorshift32: advances the state @x and returns it (a zero state stays zero). */
static inline uint32_t fuzz_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

#endif
