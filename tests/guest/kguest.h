/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the in-guest programs of the kernel vhost / vhost-vdpa transports: checks that
 * print one line each ("ok   ..." or "FAIL ...") and count failures, errno names, the running
 * kernel's version, eventfds and a page-aligned buffer laid out as split rings.
 */
#ifndef LIBVHOST_KGUEST_H
#define LIBVHOST_KGUEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../wire/testutil.h"

static int kg_failures;

static inline const char *kg_err(long long v)
{
	static char buf[4][48];
	static int slot;
	char *b = buf[slot++ & 3];
	const char *n;

	if (v >= 0 || v < -4095) {
		snprintf(b, 48, "%lld", v);
		return b;
	}
	n = strerrorname_np((int)-v);
	snprintf(b, 48, "-%s", n ? n : "?");
	return b;
}

static inline void kg_report(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf(ok ? "ok   " : "FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!ok)
		kg_failures++;
}

/* A call's result must be `want` (0 or a negative errno). */
#define KG_RET(call, want)                                                               \
	do {                                                                             \
		long long kg_r_ = (long long)(call), kg_w_ = (long long)(want);          \
		kg_report(kg_r_ == kg_w_, "%s = %s%s%s", #call, kg_err(kg_r_),           \
			  kg_r_ == kg_w_ ? "" : ", expected ", kg_r_ == kg_w_ ? "" : kg_err(kg_w_)); \
	} while (0)

/* A call's result must be one of two values (a kernel option may be on or off). */
#define KG_RET2(call, a, b)                                                              \
	do {                                                                             \
		long long kg_r_ = (long long)(call);                                     \
		kg_report(kg_r_ == (long long)(a) || kg_r_ == (long long)(b),            \
			  "%s = %s (accepts %s or %s)", #call, kg_err(kg_r_),            \
			  kg_err((long long)(a)), kg_err((long long)(b)));               \
	} while (0)

#define KG_EQ(got, want)                                                                 \
	do {                                                                             \
		unsigned long long kg_g_ = (unsigned long long)(got),                    \
				   kg_w_ = (unsigned long long)(want);                   \
		kg_report(kg_g_ == kg_w_, "%s = 0x%llx%s0x%llx", #got, kg_g_,            \
			  kg_g_ == kg_w_ ? " == " : ", expected ", kg_w_);               \
	} while (0)

#define KG_TRUE(cond, ...)                                                               \
	do {                                                                             \
		char kg_m_[200];                                                         \
		snprintf(kg_m_, sizeof(kg_m_), __VA_ARGS__);                             \
		kg_report(!!(cond), "%s (%s)", kg_m_, #cond);                            \
	} while (0)

/* Kernel version as major * 1000 + minor. */
static inline int kg_kernel_version(void)
{
	struct utsname u;
	int maj = 0, min = 0;

	if (uname(&u) == 0)
		sscanf(u.release, "%d.%d", &maj, &min);
	return maj * 1000 + min;
}

/* Open fds of this process (the host tests' counter). */
static inline int kg_count_fds(void)
{
	return t_count_fds();
}

static inline int kg_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0)
		kg_report(false, "eventfd: %s", strerror(errno));
	return fd;
}

/* Page-aligned, populated, shared memfd memory: vdpa_sim (use_va) maps only shared file
 * mappings, vhost-net/vsock take any memory. */
static inline void *kg_alloc(size_t size)
{
	int fd = memfd_create("kguest", MFD_CLOEXEC);
	void *p = MAP_FAILED;

	if (fd >= 0 && ftruncate(fd, (off_t)size) == 0)
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (fd >= 0)
		close(fd);
	if (p == MAP_FAILED) {
		kg_report(false, "mmap %zu: %s", size, strerror(errno));
		return NULL;
	}
	return p;
}

/* Split-ring areas of queue q inside a buffer: 16 KiB per queue (desc 4 KiB for 256 entries,
 * avail at +4 KiB, used at +8 KiB). */
#define KG_RING_NUM 256u
#define KG_RING_STRIDE 0x4000u
struct kg_ring_addr {
	uint64_t desc, avail, used;
};

static inline struct kg_ring_addr kg_ring_at(uint64_t base, unsigned q)
{
	struct kg_ring_addr a;

	a.desc = base + (uint64_t)q * KG_RING_STRIDE;
	a.avail = a.desc + 0x1000;
	a.used = a.desc + 0x2000;
	return a;
}

static inline int kg_done(const char *name)
{
	printf("%s: %d failure(s)\n", name, kg_failures);
	return kg_failures ? 1 : 0;
}

#endif
