/* SPDX-License-Identifier: MIT */
/*
 * Driver-side guest memory: one sealed memfd mapped once, exposed as N equal regions, with a
 * bump allocator whose chunks never cross a region boundary (so a ring or a buffer allocated
 * here translates through a single region on the device side).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libvhost/memory.h>
#include "internal.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

#define GUEST_MEM_HUGE_PAGE (2ull << 20) /* default hugetlbfs page size on x86-64 and arm64 */

/* The default huge page size (what MFD_HUGETLB without a size flag uses). */
static uint64_t hugetlb_page_size(void)
{
	uint64_t kb = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return GUEST_MEM_HUGE_PAGE;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (sscanf(line, "Hugepagesize: %llu kB", &v) == 1) {
			kb = v;
			break;
		}
	}
	fclose(f);
	/* a power of two of at least 4 KiB, else the usual default */
	if (kb < 4 || (kb & (kb - 1)) || kb > (1ull << 30))
		return GUEST_MEM_HUGE_PAGE;
	return kb << 10;
}

struct vh_guest_mem {
	int fd;
	uint8_t *base;
	uint64_t size;        /* whole mapping = nregions * region_size */
	uint64_t region_size;
	uint64_t stride;      /* GPA distance between region starts: region_size + gap */
	uint64_t gpa_base;
	unsigned nregions;
	unsigned cursor;      /* region the allocator tries first */
	uint64_t *used;       /* bytes handed out per region */
	struct vh_region *regions;
};

static void guest_mem_release(struct vh_guest_mem *gm)
{
	if (gm->base)
		munmap(gm->base, (size_t)gm->size);
	vhp_close(gm->fd);
	free(gm->used);
	free(gm->regions);
	free(gm);
}

int vh_guest_mem_new_opts(struct vh_guest_mem **out, const struct vh_guest_mem_opts *o)
{
	struct vh_guest_mem *gm;
	unsigned n, i, mfd_flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	uint64_t page, per, total, last_gpa;
	void *p;
	int ret;

	if (!out || !o || o->size == 0 || (o->flags & ~VH_GUEST_MEM_HUGETLB))
		return -EINVAL;
	n = o->nregions ? o->nregions : 1;
	if (n > VH_MEMORY_MAX_REGIONS)
		return -ENOSPC;
	page = (uint64_t)sysconf(_SC_PAGESIZE);
	if (o->flags & VH_GUEST_MEM_HUGETLB) {
		page = hugetlb_page_size();
		mfd_flags |= MFD_HUGETLB;
	}
	/* per-region size: size / n rounded up to whole pages */
	per = o->size / n + (o->size % n != 0);
	if (__builtin_add_overflow(per, page - 1, &per))
		return -EINVAL;
	per &= ~(page - 1);
	if (__builtin_mul_overflow(per, (uint64_t)n, &total) || total > SIZE_MAX ||
	    total > (uint64_t)INT64_MAX)
		return -EINVAL;
	/* the last region's end must be representable in the GPA space */
	if (__builtin_add_overflow(per, o->gpa_gap, &last_gpa) ||
	    __builtin_mul_overflow(last_gpa, (uint64_t)(n - 1), &last_gpa) ||
	    __builtin_add_overflow(last_gpa, o->gpa_base, &last_gpa) ||
	    __builtin_add_overflow(last_gpa, per, &last_gpa))
		return -EINVAL;

	gm = calloc(1, sizeof(*gm));
	if (!gm)
		return -ENOMEM;
	gm->fd = -1;
	gm->used = calloc(n, sizeof(*gm->used));
	gm->regions = calloc(n, sizeof(*gm->regions));
	if (!gm->used || !gm->regions) {
		ret = -ENOMEM;
		goto fail;
	}
	gm->fd = memfd_create("libvhost-guest-mem", mfd_flags);
	if (gm->fd < 0) {
		ret = -errno;
		goto fail;
	}
	if (ftruncate(gm->fd, (off_t)total) < 0) {
		ret = -errno;
		goto fail;
	}
	/* the device maps this file: it must not be able to shrink it under our mapping */
	if (fcntl(gm->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		goto fail;
	}
	p = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE, MAP_SHARED, gm->fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		goto fail;
	}
	gm->base = p;
	gm->size = total;
	gm->region_size = per;
	gm->stride = per + o->gpa_gap;
	gm->gpa_base = o->gpa_base;
	gm->nregions = n;
	for (i = 0; i < n; i++) {
		struct vh_region *r = &gm->regions[i];

		r->guest_phys_addr = o->gpa_base + (uint64_t)i * gm->stride;
		r->size = per;
		r->userspace_addr = (uint64_t)(uintptr_t)(gm->base + (uint64_t)i * per);
		r->fd = gm->fd;
		r->fd_offset = (uint64_t)i * per;
	}
	*out = gm;
	return 0;
fail:
	guest_mem_release(gm);
	return ret;
}

int vh_guest_mem_new(struct vh_guest_mem **gm, uint64_t size, unsigned flags)
{
	struct vh_guest_mem_opts o = { .size = size, .nregions = 1, .flags = flags };

	return vh_guest_mem_new_opts(gm, &o);
}

void vh_guest_mem_free(struct vh_guest_mem *gm)
{
	if (gm)
		guest_mem_release(gm);
}

const struct vh_region *vh_guest_mem_regions(const struct vh_guest_mem *gm, unsigned *n)
{
	if (n)
		*n = gm ? gm->nregions : 0;
	return gm ? gm->regions : NULL;
}

int vh_guest_mem_fd(const struct vh_guest_mem *gm)
{
	return gm ? gm->fd : -EINVAL;
}

void *vh_guest_mem_base(const struct vh_guest_mem *gm)
{
	return gm ? gm->base : NULL;
}

uint64_t vh_guest_mem_size(const struct vh_guest_mem *gm)
{
	return gm ? gm->size : 0;
}

int vh_guest_mem_alloc(struct vh_guest_mem *gm, uint64_t size, uint64_t align, uint64_t *gpa,
		       void **host)
{
	unsigned k;

	if (!gm || size == 0)
		return -EINVAL;
	if (align == 0)
		align = 16;
	if (align & (align - 1))
		return -EINVAL;
	if (size > gm->region_size)
		return -ENOMEM;
	/* first fit, starting at the region that served the last request */
	for (k = 0; k < gm->nregions; k++) {
		unsigned i = (gm->cursor + k) % gm->nregions;
		uint64_t start = gm->used[i];

		if (__builtin_add_overflow(start, align - 1, &start))
			continue;
		start &= ~(align - 1);
		if (start > gm->region_size || size > gm->region_size - start)
			continue;
		gm->used[i] = start + size;
		gm->cursor = i;
		if (gpa)
			*gpa = gm->regions[i].guest_phys_addr + start;
		if (host)
			*host = gm->base + (uint64_t)i * gm->region_size + start;
		return 0;
	}
	return -ENOMEM;
}

void vh_guest_mem_alloc_reset(struct vh_guest_mem *gm)
{
	if (!gm)
		return;
	memset(gm->used, 0, gm->nregions * sizeof(*gm->used));
	gm->cursor = 0;
}

void *vh_guest_mem_gpa_to_host(const struct vh_guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t rel, i, off;

	if (!gm || gpa < gm->gpa_base)
		return NULL;
	rel = gpa - gm->gpa_base;
	i = rel / gm->stride;
	off = rel % gm->stride;
	if (i >= gm->nregions || off >= gm->region_size || len > gm->region_size - off)
		return NULL;
	return gm->base + i * gm->region_size + off;
}

int vh_guest_mem_host_to_gpa(const struct vh_guest_mem *gm, const void *host, uint64_t len,
			     uint64_t *gpa)
{
	uintptr_t h = (uintptr_t)host, b;
	uint64_t rel, i, off;

	if (!gm)
		return -EINVAL;
	b = (uintptr_t)gm->base;
	if (h < b || (uint64_t)(h - b) >= gm->size)
		return -EFAULT;
	rel = (uint64_t)(h - b);
	i = rel / gm->region_size;
	off = rel % gm->region_size;
	if (len > gm->region_size - off)
		return -EFAULT;
	if (gpa)
		*gpa = gm->regions[i].guest_phys_addr + off;
	return 0;
}
