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


/* ---- Driver-side queues on a vh_device (needs the library's ring and memory layers) ---- */
#ifdef KG_WITH_RINGS
#include <poll.h>
#include <libvhost/device.h>
#include <libvhost/memory.h>
#include <libvhost/ring.h>

struct kg_q {
	struct vh_vq_driver *drv;
	int kick, call;
	unsigned index;
};

/*
 * Lays queue `index` out in guest memory and hands it to the device through the
 * device-control interface (ring addresses as pointers of this process: the kernel uses them
 * as they are, vdpa converts them to IOVAs through the memory table).
 */
static inline int kg_q_setup(struct kg_q *q, struct vh_device *dev, struct vh_guest_mem *gm,
			     unsigned index, unsigned num, uint64_t features, unsigned log_flags,
			     uint64_t *ring_gpa_out)
{
	struct vh_vring_layout lay;
	struct vh_vq_driver_config cfg;
	struct vh_vq_driver_addrs a;
	struct vh_vq_base b;
	struct vh_vring_addr va;
	uint64_t gpa;
	void *host;
	int r;

	memset(q, 0, sizeof(*q));
	q->index = index;
	q->kick = kg_eventfd();
	q->call = kg_eventfd();
	r = vh_vring_layout(num, features, &lay);
	if (r == 0)
		r = vh_guest_mem_alloc(gm, lay.total, 4096, &gpa, &host);
	if (r < 0)
		return r;
	memset(&cfg, 0, sizeof(cfg));
	cfg.num = num;
	cfg.features = features;
	cfg.ring_host = host;
	cfg.ring_gpa = gpa;
	cfg.ring_size = lay.total;
	r = vh_vq_driver_new(&q->drv, &cfg);
	if (r < 0)
		return r;
	vh_vq_driver_addrs(q->drv, &a);
	vh_vq_driver_base(q->drv, &b);
	memset(&va, 0, sizeof(va));
	va.index = index;
	va.flags = log_flags;
	va.desc_user_addr = (uint64_t)(uintptr_t)a.desc;
	va.avail_user_addr = (uint64_t)(uintptr_t)a.driver;
	va.used_user_addr = (uint64_t)(uintptr_t)a.device;
	va.log_guest_addr = a.device_gpa;
	if (ring_gpa_out)
		*ring_gpa_out = a.device_gpa;
	if ((r = vh_device_set_vring_num(dev, index, num)) < 0 ||
	    (r = vh_device_set_vring_base(dev, index,
					  vh_vq_base_encode(&b, !!(features & VH_VQ_F_RING_PACKED)))) < 0 ||
	    (r = vh_device_set_vring_addr(dev, &va)) < 0 ||
	    (r = vh_device_set_vring_kick(dev, index, q->kick)) < 0 ||
	    (r = vh_device_set_vring_call(dev, index, q->call)) < 0)
		return r;
	return 0;
}

static inline void kg_q_free(struct kg_q *q)
{
	vh_vq_driver_free(q->drv);
	if (q->kick >= 0)
		close(q->kick);
	if (q->call >= 0)
		close(q->call);
	q->drv = NULL;
	q->kick = q->call = -1;
}

/* Publishes what was added and kicks when the device asks for it. */
static inline void kg_q_kick(struct kg_q *q)
{
	uint64_t one = 1;

	vh_vq_driver_publish(q->drv);
	if (vh_vq_driver_should_kick(q->drv) && write(q->kick, &one, 8) != 8)
		kg_report(false, "kick queue %u: %s", q->index, strerror(errno));
}

/* Collects completions until `want` arrived or timeout_ms passed; returns the count. */
static inline int kg_q_wait(struct kg_q *q, struct vh_vq_driver_used *out, unsigned want,
			    int timeout_ms)
{
	unsigned got = 0;
	int64_t deadline = t_now_ms() + timeout_ms;

	while (got < want) {
		struct pollfd p = { .fd = q->call, .events = POLLIN };
		uint64_t v;
		int n = vh_vq_driver_get_used(q->drv, out + got, want - got);

		if (n < 0)
			return n;
		got += (unsigned)n;
		if (got >= want)
			break;
		if (t_now_ms() >= deadline)
			break;
		/* The call eventfd, or a short sleep: some devices do not signal every batch. */
		if (poll(&p, 1, 10) > 0 && read(q->call, &v, 8) < 0 && errno != EAGAIN)
			return -errno;
	}
	return (int)got;
}
#endif

#endif
