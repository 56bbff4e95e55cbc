/* SPDX-License-Identifier: MIT */
/*
 * Lookup correctness: binary search (GPA and front-end address) and the last-hit cache against
 * a linear reference, on random tables of 1..509 regions with random holes, sizes and orders.
 * Local tables (no mapping) are enough: only addresses are compared, never dereferenced.
 */
#include <libvhost/memory.h>
#include "memtest.h"


/* Linear reference: the region fully holding [a, a + len) in the chosen address space. */
static const struct vh_region *ref_find(const struct vh_region *r, unsigned n, uint64_t a,
					uint64_t len, int by_uaddr)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t start = by_uaddr ? r[i].userspace_addr : r[i].guest_phys_addr;

		if (a >= start && a - start < r[i].size && len <= r[i].size - (a - start))
			return &r[i];
	}
	return NULL;
}

/* Random non-overlapping layout; uaddr order is a random permutation of gpa order. */
static void make_table(struct vh_region *r, unsigned n, int dense)
{
	uint64_t g = rnd_below(4) * 0x1000, u = 0x100000000000ull;
	unsigned *perm = malloc(n * sizeof(*perm));
	uint64_t *uoff = malloc(n * sizeof(*uoff));

	for (unsigned i = 0; i < n; i++) {
		uint64_t size = (1 + rnd_below(dense ? 4 : 64)) * 0x1000;

		if (rnd_below(8) == 0)
			size = 1 + rnd_below(0x3000); /* odd sizes are allowed by the protocol */
		r[i].guest_phys_addr = g;
		r[i].size = size;
		r[i].fd = -1;
		r[i].fd_offset = 0;
		g += size + (dense && rnd_below(2) ? 0 : rnd_below(16) * 0x1000);
		perm[i] = i;
	}
	for (unsigned i = n; i > 1; i--) {
		unsigned j = (unsigned)rnd_below(i), t = perm[i - 1];

		perm[i - 1] = perm[j];
		perm[j] = t;
	}
	for (unsigned k = 0; k < n; k++) {
		unsigned i = perm[k];

		uoff[i] = u;
		u += r[i].size + rnd_below(3) * 0x1000;
	}
	for (unsigned i = 0; i < n; i++)
		r[i].userspace_addr = uoff[i];
	/* hand the regions to the table in a random order too */
	for (unsigned i = n; i > 1; i--) {
		unsigned j = (unsigned)rnd_below(i);
		struct vh_region t = r[i - 1];

		r[i - 1] = r[j];
		r[j] = t;
	}
	free(perm);
	free(uoff);
}

/* A query near something interesting: a region edge, inside, in a hole, far away. */
static uint64_t pick_addr(const struct vh_region *r, unsigned n, int by_uaddr)
{
	const struct vh_region *x = &r[rnd_below(n)];
	uint64_t start = by_uaddr ? x->userspace_addr : x->guest_phys_addr;

	switch (rnd_below(6)) {
	case 0: return start;
	case 1: return start + x->size - 1;
	case 2: return start + x->size;
	case 3: return start - 1;
	case 4: return start + rnd_below(x->size);
	default: return rnd_below(8) ? start + rnd_below(0x40000) : rnd();
	}
}

static void test_random_tables(void)
{
	struct vh_region *r = calloc(VH_MEMORY_MAX_REGIONS, sizeof(*r));
	unsigned sizes[] = { 1, 2, 3, 7, 8, 9, 31, 64, 100, 255, 256, 257, 508, 509 };
	unsigned tables = 0;
	uint64_t queries = 0, hits = 0;

	for (unsigned round = 0; round < 200; round++) {
		unsigned n = round < sizeof(sizes) / sizeof(sizes[0])
				     ? sizes[round]
				     : 1 + (unsigned)rnd_below(VH_MEMORY_MAX_REGIONS);
		struct vh_memory *mem;

		make_table(r, n, (int)(round & 1));
		CHECK_EQ_M(vh_memory_new_local(&mem, r, n, NULL), 0, "table of %u", n);
		if (t_failures)
			break;
		tables++;
		CHECK_EQ(vh_memory_nregions(mem), n);
		for (unsigned i = 1; i < n; i++)
			CHECK(mem->regions[i - 1].gpa < mem->regions[i].gpa);
		for (unsigned q = 0; q < 3000; q++) {
			int by_uaddr = (int)(q & 1);
			uint64_t a = pick_addr(r, n, by_uaddr);
			uint64_t len = rnd_below(4) ? rnd_below(64) : rnd_below(0x8000);
			const struct vh_region *ref = ref_find(r, n, a, len, by_uaddr);
			void *want = NULL, *got;

			if (ref) {
				uint64_t start = by_uaddr ? ref->userspace_addr : ref->guest_phys_addr;

				want = (uint8_t *)(uintptr_t)ref->userspace_addr + (a - start);
				hits++;
			}
			got = by_uaddr ? vh_memory_uaddr_to_host(mem, a, len)
				       : vh_memory_gpa_to_host(mem, a, len);
			if (got != want) {
				T_FAIL("n=%u %s 0x%llx len %llu: got %p want %p", n,
				       by_uaddr ? "uaddr" : "gpa", (unsigned long long)a,
				       (unsigned long long)len, got, want);
				break;
			}
			if (!by_uaddr) {
				/* find() is about the start byte only */
				const struct vh_region *r1 = ref_find(r, n, a, 1, 0);
				int idx = vh_memory_find(mem, a);

				if (r1) {
					CHECK(idx >= 0 && mem->regions[idx].gpa == r1->guest_phys_addr);
				} else {
					CHECK_EQ(idx, -ENOENT);
				}
				/* iov over the same range: a single piece iff the fast path hits */
				struct iovec iov[4];
				int k = vh_memory_gpa_to_iov(mem, a, len, iov, 4);
				if (len == 0)
					CHECK_EQ(k, 0);
				else if (want)
					CHECK(k == 1 && iov[0].iov_base == want && iov[0].iov_len == len);
			} else {
				uint64_t g = 0;
				int ret = vh_memory_uaddr_to_gpa(mem, a, len, &g);

				if (ref)
					CHECK(ret == 0 && g == ref->guest_phys_addr +
								     (a - ref->userspace_addr));
				else
					CHECK_EQ(ret, -EFAULT);
			}
			queries++;
		}
		vh_memory_unref(mem);
		if (t_failures)
			break;
	}
	printf("# %u tables, %llu queries, %llu hits\n", tables, (unsigned long long)queries,
	       (unsigned long long)hits);
	CHECK(hits > queries / 4); /* the picker must actually exercise hits */
	free(r);
}

/* iov against a byte-by-byte reference on dense tables (adjacent regions, random holes). */
static void test_random_iov(void)
{
	struct vh_region *r = calloc(64, sizeof(*r));
	struct iovec iov[64];

	for (unsigned round = 0; round < 300; round++) {
		unsigned n = 1 + (unsigned)rnd_below(64);
		struct vh_memory *mem;

		make_table(r, n, 1);
		CHECK_EQ(vh_memory_new_local(&mem, r, n, NULL), 0);
		for (unsigned q = 0; q < 200; q++) {
			uint64_t a = pick_addr(r, n, 0), len = 1 + rnd_below(0x6000);
			unsigned max = 1 + (unsigned)rnd_below(64);
			int k = vh_memory_gpa_to_iov(mem, a, len, iov, max);
			/* reference: walk region by region with the linear finder */
			uint64_t g = a, left = len;
			unsigned pieces = 0;
			int fault = 0;

			while (left) {
				const struct vh_region *x = ref_find(r, n, g, 1, 0);
				uint64_t take;

				if (!x) {
					fault = 1;
					break;
				}
				take = x->size - (g - x->guest_phys_addr);
				if (take > left)
					take = left;
				if (pieces < max && k > 0 && (unsigned)k > pieces) {
					CHECK(iov[pieces].iov_base ==
					      (uint8_t *)(uintptr_t)x->userspace_addr +
						      (g - x->guest_phys_addr));
					CHECK_EQ(iov[pieces].iov_len, take);
				}
				pieces++;
				g += take;
				left -= take;
			}
			if (fault)
				CHECK_EQ(k, -EFAULT);
			else if (pieces > max)
				CHECK_EQ(k, -ENOBUFS);
			else
				CHECK_EQ(k, (int)pieces);
			if (t_failures)
				break;
		}
		vh_memory_unref(mem);
		if (t_failures)
			break;
	}
	free(r);
}

/* The hint follows the last hit and never makes a lookup wrong. */
static void test_hint(void)
{
	struct vh_region r[3] = {
		{ .guest_phys_addr = 0x0, .size = 0x1000, .userspace_addr = 0x10000000 },
		{ .guest_phys_addr = 0x1000, .size = 0x1000, .userspace_addr = 0x30000000 },
		{ .guest_phys_addr = 0x8000, .size = 0x1000, .userspace_addr = 0x20000000 },
	};
	struct vh_memory *mem, *empty;

	CHECK_EQ(vh_memory_new_local(&mem, r, 3, NULL), 0);
	CHECK(vh_memory_gpa_to_host(mem, 0x8010, 4) == (void *)(uintptr_t)0x20000010);
	CHECK_EQ(mem->hint, 2);
	CHECK(vh_memory_gpa_to_host(mem, 0x8ffc, 4) == (void *)(uintptr_t)0x20000ffc);
	CHECK(vh_memory_gpa_to_host(mem, 0x8ffc, 5) == NULL);
	CHECK(vh_memory_gpa_to_host(mem, 0x0ffc, 4) == (void *)(uintptr_t)0x10000ffc);
	CHECK_EQ(mem->hint, 0);
	CHECK(vh_memory_gpa_to_host(mem, 0x2000, 1) == NULL);
	CHECK_EQ(mem->hint, 0); /* misses do not move it */
	CHECK(vh_memory_uaddr_to_host(mem, 0x30000004, 4) == (void *)(uintptr_t)0x30000004);
	CHECK(vh_memory_uaddr_to_host(mem, 0x20000fff, 2) == NULL);
	vh_memory_unref(mem);
	CHECK_EQ(vh_memory_new_empty(&empty, NULL), 0);
	CHECK(vh_memory_gpa_to_host(empty, 0, 0) == NULL);
	CHECK(vh_memory_uaddr_to_host(empty, 0, 0) == NULL);
	CHECK_EQ(vh_memory_find(empty, 0), -ENOENT);
	vh_memory_unref(empty);
}

static const struct t_test tests[] = {
	T_TEST(test_random_tables),
	T_TEST(test_random_iov),
	T_TEST(test_hint),
};

T_MAIN(tests)
