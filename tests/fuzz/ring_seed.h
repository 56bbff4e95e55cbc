/* SPDX-License-Identifier: MIT */
/*
 * Seeds for vh_vq_fuzz_walk(): the input header and a driver-side ring built in the input's
 * memory image, so the walker starts from a valid ring and goes deep. Shared by the corpus
 * generator (gen_corpus.c) and the bounded walk test (tests/ring/test_ring_fuzz_walk.c).
 */
#ifndef LIBVHOST_TESTS_RING_SEED_H
#define LIBVHOST_TESTS_RING_SEED_H

#include <stdint.h>
#include <string.h>

#include <libvhost/ring.h>

#define RING_SEED_HDR 8u

/* The 8 header bytes for a ring of num entries with these features, fresh wrap counters, pops
 * of 8, 16 iovecs and 8 indirect entries per element. */
static inline void ring_seed_header(uint8_t hdr[RING_SEED_HDR], uint64_t features, unsigned num)
{
	memset(hdr, 0, RING_SEED_HDR);
	hdr[0] = (uint8_t)(((features & VH_VQ_F_RING_PACKED) ? 1 : 0) |
			   ((features & VH_VQ_F_EVENT_IDX) ? 2 : 0) |
			   ((features & VH_VQ_F_INDIRECT_DESC) ? 4 : 0) |
			   ((features & VH_VQ_F_IN_ORDER) ? 8 : 0) | 0x60);
	if (features & VH_VQ_F_RING_PACKED)
		hdr[1] = (uint8_t)(num - 1);
	else
		while ((1u << hdr[1]) < num)
			hdr[1]++;
	hdr[2] = 7;  /* batch of 8 */
	hdr[3] = 15; /* 16 iovecs */
	hdr[4] = 7;  /* 8 indirect entries */
}

/* A driver for a ring of num entries at GPA 0 of img (img is GPA 0 onwards), with indirect
 * tables of ind_max entries at GPA 0x1000 when ind_max > 0. NULL on failure. The caller adds
 * requests, publishes and frees it; the ring stays in img. */
static inline struct vh_vq_driver *ring_seed_driver(uint8_t *img, uint64_t features, unsigned num,
						    unsigned ind_max)
{
	struct vh_vq_driver_config dc;
	struct vh_vq_driver *d = NULL;
	struct vh_vring_layout lay;

	if (vh_vring_layout(num, features, &lay))
		return NULL;
	memset(&dc, 0, sizeof(dc));
	dc.num = num;
	dc.features = features;
	dc.ring_host = img;
	dc.ring_gpa = 0;
	dc.ring_size = lay.total;
	if (ind_max) {
		dc.indirect_host = img + 0x1000;
		dc.indirect_gpa = 0x1000;
		dc.indirect_size = (size_t)num * ind_max * 16u;
		dc.indirect_max = ind_max;
	}
	return vh_vq_driver_new(&d, &dc) ? NULL : d;
}

#endif
