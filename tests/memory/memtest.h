/* SPDX-License-Identifier: MIT */
/* Helpers shared by the memory tests, on top of ../wire/testutil.h. */
#ifndef LIBVHOST_MEMTEST_H
#define LIBVHOST_MEMTEST_H

#include <stdint.h>
#include "testutil.h"

#define PAGE 4096ull

/* xorshift64*: reproducible sequences without libc state; each program seeds its own. */
static uint64_t t_rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t rnd(void)
{
	t_rng_state ^= t_rng_state >> 12;
	t_rng_state ^= t_rng_state << 25;
	t_rng_state ^= t_rng_state >> 27;
	return t_rng_state * 0x2545f4914f6cdd1dull;
}

static inline uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

#define T_MAIN(tests)                                                               \
	int main(int argc, char **argv)                                             \
	{                                                                           \
		return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);  \
	}

#endif
