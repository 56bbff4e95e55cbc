/* SPDX-License-Identifier: MIT */
/*
 * Lookup correctness: the GPA index, binary search (GPA and front-end address) and the last-hit
 * cache against a linear reference, on random tables of 1..509 regions with random holes,
 * sizes and orders, and on layouts made to hit the index's edge cases.
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

/* CHECK with a case label. */
#define CHECK_M(cond, ...)                  \
	do {                                \
		if (!(cond))                \
			T_FAIL(__VA_ARGS__);  \
	} while (0)

/* Every non-empty slot of the GPA index is an exact copy of a region of the table. */
static void check_index_slots(const struct vh_memory *mem)
{
	for (unsigned s = 0; s < VH_MEMORY_INDEX_SLOTS; s++) {
		const struct vh_memory_slot *x = &mem->index[s];
		const struct vh_memory_region *r;

		if (x->size == 0)
			continue;
		CHECK(x->idx < mem->nregions);
		if (x->idx >= mem->nregions)
			return;
		r = &mem->regions[x->idx];
		CHECK(x->gpa == r->gpa && x->size == r->size && x->host == r->host);
	}
}

/* The slot gpa falls into, as the ring layer and the lookups compute it. */
static const struct vh_memory_slot *slot_of(const struct vh_memory *mem, uint64_t gpa)
{
	return &mem->index[(gpa * mem->index_mul) >> (64 - VH_MEMORY_INDEX_BITS)];
}

/* gpa_to_host, find and gpa_to_iov against the linear reference at the given addresses. */
static void check_addrs(const struct vh_memory *mem, const struct vh_region *r, unsigned n,
			const uint64_t *addrs, unsigned na)
{
	static const uint64_t lens[] = { 0, 1, 2, 16, 4096, 0x10000, 0xffffffffull };

	for (unsigned i = 0; i < na; i++) {
		for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			uint64_t a = addrs[i], len = lens[l];
			const struct vh_region *ref = ref_find(r, n, a, len, 0);
			const struct vh_region *r1 = ref_find(r, n, a, 1, 0);
			void *want = ref ? (uint8_t *)(uintptr_t)ref->userspace_addr +
						   (a - ref->guest_phys_addr)
					 : NULL;
			int idx = vh_memory_find(mem, a);

			CHECK_M(vh_memory_gpa_to_host(mem, a, len) == want, "gpa 0x%llx len %llu",
				(unsigned long long)a, (unsigned long long)len);
			if (r1)
				CHECK_M(idx >= 0 && mem->regions[idx].gpa == r1->guest_phys_addr,
					"find 0x%llx", (unsigned long long)a);
			else
				CHECK_EQ_M(idx, -ENOENT, "find 0x%llx", (unsigned long long)a);
			if (want && len) {
				struct iovec iov[2];

				CHECK(vh_memory_gpa_to_iov(mem, a, len, iov, 2) == 1 &&
				      iov[0].iov_base == want);
			}
		}
	}
}

/* Addresses around every region edge and every granule edge of the index. */
static unsigned edge_addrs(const struct vh_memory *mem, uint64_t *a, unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < mem->nregions && k + 6 <= max; i++) {
		const struct vh_memory_region *x = &mem->regions[i];

		a[k++] = x->gpa;
		a[k++] = x->gpa - 1;
		a[k++] = x->gpa + x->size - 1;
		a[k++] = x->gpa + x->size;
		a[k++] = x->gpa + x->size / 2;
		a[k++] = x->gpa + x->size - 16;
	}
	if (k + 4 <= max) {
		a[k++] = 0;
		a[k++] = UINT64_MAX;
		a[k++] = UINT64_MAX - 15;
		a[k++] = 1ull << 63;
	}
	return k;
}

static void index_case(const char *what, struct vh_region *r, unsigned n)
{
	struct vh_memory *mem;
	uint64_t *addrs = calloc(6 * n + 4, sizeof(*addrs));
	unsigned na;

	for (unsigned i = 0; i < n; i++)
		r[i].fd = -1;
	CHECK_EQ_M(vh_memory_new_local(&mem, r, n, NULL), 0, "%s", what);
	if (t_failures) {
		free(addrs);
		return;
	}
	check_index_slots(mem);
	na = edge_addrs(mem, addrs, 6 * n + 4);
	check_addrs(mem, r, n, addrs, na);
	vh_memory_unref(mem);
	free(addrs);
}

/*
 * The GPA index: regions whose edges are not on its granule (two regions in one slot), holes,
 * sizes below a page, GPAs at the top of the address space (spans above 2^62, where slots are
 * shared by distant granules), and 509 regions (each region must be reachable through the
 * index alone when regions are granule-aligned: no search).
 */
static void test_gpa_index(void)
{
	struct vh_region *r = calloc(VH_MEMORY_MAX_REGIONS, sizeof(*r));
	uint64_t u = 0x100000000000ull;
	struct vh_memory *mem;

	/* three regions inside one 4 KiB granule and one beyond a hole */
	r[0] = (struct vh_region){ .guest_phys_addr = 0x10000, .size = 0x100, .userspace_addr = u };
	r[1] = (struct vh_region){ .guest_phys_addr = 0x10100, .size = 0x80,
				   .userspace_addr = u + 0x1000 };
	r[2] = (struct vh_region){ .guest_phys_addr = 0x10200, .size = 0x3e00,
				   .userspace_addr = u + 0x2000 };
	r[3] = (struct vh_region){ .guest_phys_addr = 0x90000, .size = 0x1001,
				   .userspace_addr = u + 0x10000 };
	index_case("shared granules", r, 4);

	/* the top of the GPA space: a region ending at 2^64 - 1, one at 2^63, one at 0 */
	r[0] = (struct vh_region){ .guest_phys_addr = 0, .size = 0x200000, .userspace_addr = u };
	r[1] = (struct vh_region){ .guest_phys_addr = 1ull << 63, .size = 0x3000,
				   .userspace_addr = u + 0x400000 };
	r[2] = (struct vh_region){ .guest_phys_addr = UINT64_MAX - 0x1ffe, .size = 0x1ffe,
				   .userspace_addr = u + 0x800000 };
	index_case("huge span", r, 3);

	/* a region at the very top alone (span of one granule) */
	r[0] = (struct vh_region){ .guest_phys_addr = UINT64_MAX - 0xfff, .size = 0xfff,
				   .userspace_addr = u };
	index_case("top only", r, 1);

	/* slots shared by granules 2^62 apart: 2^k * 1024 with k = 52 wraps every 2^62 */
	for (unsigned i = 0; i < 4; i++)
		r[i] = (struct vh_region){ .guest_phys_addr = (uint64_t)i << 62 | 0x5000,
					   .size = 0x2000, .userspace_addr = u + i * 0x10000 };
	index_case("colliding slots", r, 4);

	/* random unaligned layouts of many small regions */
	for (unsigned round = 0; round < 40; round++) {
		unsigned n = 1 + (unsigned)rnd_below(VH_MEMORY_MAX_REGIONS);
		uint64_t g = rnd() & 0x0000ffffffffffffull;

		for (unsigned i = 0; i < n; i++) {
			uint64_t size = 1 + rnd_below(rnd_below(2) ? 0x800 : 0x40000);

			r[i] = (struct vh_region){ .guest_phys_addr = g, .size = size,
						   .userspace_addr = u + i * 0x100000ull };
			g += size + (rnd_below(3) ? 0 : rnd_below(0x10000));
		}
		index_case("random unaligned", r, n);
		if (t_failures)
			break;
	}

	/* 509 regions of 2 MiB (as guest memory splits them): each one reached by the index */
	for (unsigned i = 0; i < VH_MEMORY_MAX_REGIONS; i++)
		r[i] = (struct vh_region){ .guest_phys_addr = 0x100000000ull + i * 0x200000ull,
					   .size = 0x200000, .userspace_addr = u + i * 0x200000ull,
					   .fd = -1 };
	index_case("509 regions", r, VH_MEMORY_MAX_REGIONS);
	CHECK_EQ(vh_memory_new_local(&mem, r, VH_MEMORY_MAX_REGIONS, NULL), 0);
	if (!t_failures) {
		for (unsigned i = 0; i < VH_MEMORY_MAX_REGIONS; i++) {
			uint64_t g = r[i].guest_phys_addr;
			uint64_t probe[3] = { g, g + 0x100000, g + 0x1fffff };

			for (unsigned p = 0; p < 3; p++) {
				const struct vh_memory_slot *x = slot_of(mem, probe[p]);

				CHECK_M(x->gpa == g && x->size == 0x200000 && x->idx == i,
					"region %u not in its slot", i);
			}
		}
		vh_memory_unref(mem);
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
	T_TEST(test_gpa_index),
};

T_MAIN(tests)
