/* SPDX-License-Identifier: MIT */
/*
 * Input format of fuzz_inflight (shared with gen_corpus). All values little-endian.
 *
 *   [0]     flags (FI_F_*)
 *   [1]     ring size: split 1 << (v % 9), packed v + 1
 *   [2]     bits 0-1: entries the inflight regions have beyond the ring size (0-2; 3: one
 *           fewer, too small to track the ring); bits 2-7: mmap_offset code (used with
 *           FI_F_OFFSET, see fi_mmap_offset())
 *   [3..4]  split: the used ring's idx; packed: the used position of SET_VRING_BASE
 *           (bits 0-14, taken modulo the size) and its wrap counter (bit 15)
 *   [5..6]  SET_VRING_BASE: split the last avail index; packed the avail position (bits 0-14,
 *           modulo the size) and its wrap counter (bit 15)
 *   [7]     hold mask: the k-th request a round pops is held (never completed) if bit k % 8 is
 *           set
 *   [8..9]  n: bytes of inflight buffer that follow
 *   n bytes the inflight buffer from mmap_offset on (queue 0's region first); the rest of the
 *           file reads as zeros
 *   rest    guest memory from GPA 0 (FI_MEM_SIZE bytes, zero-filled): queue 0's ring at GPA 0,
 *           queue 1's at fi_ring_gpa(1, ...), each laid out contiguously (vh_vring_layout)
 */
#ifndef LIBVHOST_FUZZ_INFLIGHT_H
#define LIBVHOST_FUZZ_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#define FI_HDR 10u
#define FI_MEM_SIZE 0x10000u
/* The front-end's virtual address of GPA 0 (ring addresses are sent as such). */
#define FI_UADDR 0x7f5a00000000ull

#define FI_F_PACKED 0x01u
#define FI_F_EVENT_IDX 0x02u
#define FI_F_INDIRECT 0x04u
#define FI_F_IN_ORDER 0x08u
#define FI_F_TWO_QUEUES 0x10u
#define FI_F_RESTART 0x20u  /* reconnect after the first round and recover again */
#define FI_F_REVERSE 0x40u  /* complete each batch in reverse (ignored with IN_ORDER) */
#define FI_F_OFFSET 0x80u   /* non-zero mmap_offset */

static inline unsigned fi_num(uint8_t flags, uint8_t v)
{
	return (flags & FI_F_PACKED) ? (unsigned)v + 1u : 1u << (v % 9u);
}

/* Entries of each inflight region for a ring of num. */
static inline unsigned fi_entries(unsigned num, uint8_t v)
{
	return (v & 3u) == 3u ? num - 1u : num + (v & 3u);
}

/* 4-byte steps up to 124, optionally one page further. */
static inline uint64_t fi_mmap_offset(uint8_t flags, uint8_t v)
{
	unsigned code = v >> 2;

	if (!(flags & FI_F_OFFSET))
		return 0;
	return (uint64_t)(code & 0x1fu) * 4u + ((code & 0x20u) ? 4096u : 0u);
}

/* Bytes of one queue's region (the spec's QueueRegionSplit / QueueRegionPacked). */
static inline size_t fi_region_bytes(unsigned entries, int packed)
{
	return packed ? 32u + 32u * (size_t)entries : 16u + 16u * (size_t)entries;
}

/* Where queue q's ring starts, given the bytes one contiguous ring takes. */
static inline uint64_t fi_ring_gpa(unsigned q, size_t ring_total)
{
	return q ? ((uint64_t)ring_total + 255u) & ~(uint64_t)255u : 0;
}

#endif
