/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the ring tests: a driver ring and a device ring over the same memfd guest
 * memory, the device side mapping each region separately as another process would. The guest
 * memory has three regions contiguous in GPA; region 0 holds the ring and indirect tables,
 * regions 1 and 2 hold data, so buffers can straddle the 1/2 boundary (two iovecs on the
 * device side).
 */
#ifndef LIBVHOST_RINGTEST_H
#define LIBVHOST_RINGTEST_H

#include <libvhost/ring.h>
#include <libvhost/memory.h>
#include "memtest.h"

#define RT_REGION_SIZE (2ull << 20)
#define RT_GPA_BASE 0x100000ull

struct rt_env {
	struct vh_guest_mem *gm;
	struct vh_memory *mem;          /* device-side table (separate mappings) */
	uint8_t *base;                  /* driver-side mapping of all regions */
	struct vh_vring_layout lay;
	uint64_t ring_gpa;
	uint8_t *ring_host;
	uint64_t ind_gpa;
	uint8_t *ind_host;
	size_t ind_size;
	unsigned ind_max;
	uint64_t features;
	unsigned num;
	struct vh_vq_driver *drv;
	struct vh_vq *vq;
};

/* Driver-side pointer of any GPA of the guest memory (regions are contiguous in both). */
static inline uint8_t *rt_host(const struct rt_env *e, uint64_t gpa)
{
	return e->base + (gpa - RT_GPA_BASE);
}

/* GPA of the boundary between regions 1 and 2. */
static inline uint64_t rt_boundary(void)
{
	return RT_GPA_BASE + 2 * RT_REGION_SIZE;
}

/* Creates guest memory, the device table, and the driver ring (not the device ring). */
static inline int rt_setup_driver(struct rt_env *e, unsigned num, uint64_t features,
				  unsigned ind_max)
{
	struct vh_guest_mem_opts o = { 3 * RT_REGION_SIZE, 3, 0, RT_GPA_BASE, 0 };
	struct vh_vq_driver_config dc;
	const struct vh_region *regs;
	unsigned nregs;
	void *p;
	int r;

	memset(e, 0, sizeof(*e));
	e->num = num;
	e->features = features;
	e->ind_max = ind_max;
	r = vh_guest_mem_new_opts(&e->gm, &o);
	if (r < 0)
		return r;
	e->base = vh_guest_mem_base(e->gm);
	regs = vh_guest_mem_regions(e->gm, &nregs);
	r = vh_memory_map_regions(&e->mem, regs, nregs, NULL);
	if (r < 0)
		return r;
	r = vh_vring_layout(num, features, &e->lay);
	if (r < 0)
		return r;
	r = vh_guest_mem_alloc(e->gm, e->lay.total, 4096, &e->ring_gpa, &p);
	if (r < 0)
		return r;
	e->ring_host = p;
	if (ind_max) {
		e->ind_size = (size_t)num * ind_max * 16u;
		r = vh_guest_mem_alloc(e->gm, e->ind_size, 4096, &e->ind_gpa, &p);
		if (r < 0)
			return r;
		e->ind_host = p;
	}
	if (e->ring_gpa + e->lay.total > RT_GPA_BASE + RT_REGION_SIZE ||
	    (ind_max && e->ind_gpa + e->ind_size > RT_GPA_BASE + RT_REGION_SIZE))
		return -ENOSPC; /* rings must stay in region 0 */
	memset(&dc, 0, sizeof(dc));
	dc.num = num;
	dc.features = features;
	dc.ring_host = e->ring_host;
	dc.ring_gpa = e->ring_gpa;
	dc.ring_size = e->lay.total;
	dc.indirect_host = e->ind_host;
	dc.indirect_gpa = e->ind_gpa;
	dc.indirect_size = e->ind_size;
	dc.indirect_max = ind_max;
	return vh_vq_driver_new(&e->drv, &dc);
}

/* A device ring over the driver's ring, from `base` (NULL: the driver's current base). */
static inline int rt_start_device(struct rt_env *e, const struct vh_vq_base *base,
				  unsigned max_indirect)
{
	struct vh_vq_driver_addrs a;
	struct vh_vq_config c;

	vh_vq_driver_addrs(e->drv, &a);
	memset(&c, 0, sizeof(c));
	c.num = e->num;
	c.features = e->features;
	c.addr_kind = VH_VQ_ADDR_GPA;
	c.desc_addr = a.desc_gpa;
	c.driver_addr = a.driver_gpa;
	c.device_addr = a.device_gpa;
	if (base)
		c.base = *base;
	else
		vh_vq_driver_base(e->drv, &c.base);
	c.mem = e->mem;
	c.max_indirect = max_indirect;
	return vh_vq_new(&e->vq, &c);
}

static inline int rt_setup(struct rt_env *e, unsigned num, uint64_t features, unsigned ind_max)
{
	int r = rt_setup_driver(e, num, features, ind_max);

	return r < 0 ? r : rt_start_device(e, NULL, 0);
}

static inline void rt_teardown(struct rt_env *e)
{
	vh_vq_free(e->vq);
	vh_vq_driver_free(e->drv);
	vh_memory_unref(e->mem);
	vh_guest_mem_free(e->gm);
	memset(e, 0, sizeof(*e));
}

/* Element storage: n elements of cap iovecs each, with GPA arrays. */
struct rt_elems {
	struct vh_vq_elem *e;
	struct iovec *iov;
	uint64_t *gpa;
	unsigned n;
};

static inline int rt_elems_new(struct rt_elems *s, unsigned n, unsigned cap)
{
	unsigned i;

	s->n = n;
	s->e = calloc(n, sizeof(*s->e));
	s->iov = calloc((size_t)n * cap, sizeof(*s->iov));
	s->gpa = calloc((size_t)n * cap, sizeof(*s->gpa));
	if (!s->e || !s->iov || !s->gpa)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		s->e[i].iov = s->iov + (size_t)i * cap;
		s->e[i].iov_gpa = s->gpa + (size_t)i * cap;
		s->e[i].iov_cap = cap;
	}
	return 0;
}

static inline void rt_elems_free(struct rt_elems *s)
{
	free(s->e);
	free(s->iov);
	free(s->gpa);
	memset(s, 0, sizeof(*s));
}

#define RT_SPLIT 0ull
#define RT_PACKED VH_VQ_F_RING_PACKED

#endif
