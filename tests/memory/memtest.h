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

/*
 * Mapping counts. The library's mappings are all file-backed (memfds and the files it is given),
 * so the count of file-backed lines of /proc/self/maps is exact in every build. The count of
 * all lines is compared too, except where the allocator itself maps anonymous memory on
 * demand (ASan, TSan, valgrind).
 */
static inline int t_count_file_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[1024];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* address perms offset dev inode [path]: file-backed iff inode != 0 */
		unsigned long long inode = 0;

		if (sscanf(line, "%*s %*s %*s %*s %llu", &inode) == 1 && inode != 0)
			n++;
	}
	fclose(f);
	return n;
}

static inline int t_all_maps_stable(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	return 0;
#endif
#endif
	const char *pre = getenv("LD_PRELOAD");

	return !(pre && strstr(pre, "vgpreload"));
}

struct m_baseline {
	int fds;
	int maps;
	int file_maps;
};

static inline struct m_baseline m_baseline(void)
{
	struct m_baseline b = { t_count_fds(), t_count_maps(), t_count_file_maps() };

	return b;
}

#define CHECK_BASELINE_M(b)                                                             \
	do {                                                                            \
		int t_f_ = t_count_fds(), t_m_ = t_count_maps();                        \
		int t_fm_ = t_count_file_maps();                                        \
		if (t_f_ != (b).fds)                                                    \
			T_FAIL("fd count %d, baseline %d", t_f_, (b).fds);              \
		if (t_fm_ != (b).file_maps)                                             \
			T_FAIL("file mapping count %d, baseline %d", t_fm_,             \
			       (b).file_maps);                                          \
		if (t_all_maps_stable() && t_m_ != (b).maps)                            \
			T_FAIL("mapping count %d, baseline %d", t_m_, (b).maps);        \
	} while (0)

/* The VmFlags line of the /proc/self/smaps entry holding addr, or "" (static buffer). */
static inline const char *t_vmflags(const void *addr)
{
	static char flags[512];
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	int in = 0;

	flags[0] = 0;
	if (!f)
		return flags;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		/* a mapping's header line; "Key: value" lines fail at the '-' */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(flags, sizeof(flags), "%s", line + 8);
			break;
		}
	}
	fclose(f);
	return flags;
}

#define T_MAIN(tests)                                                               \
	int main(int argc, char **argv)                                             \
	{                                                                           \
		return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);  \
	}

#endif
