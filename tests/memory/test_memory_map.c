/* SPDX-License-Identifier: MIT */
/*
 * Device-side memory table over real memfds: data through the translated pointers, every
 * rejection class (with fd and mapping counts back to baseline and the old table intact),
 * ADD/REM up to the slot limit, and cross-region iovec splitting.
 */
#include <sys/socket.h>
#include <libvhost/memory.h>
#include "memtest.h"


/* Fills [p, p + len) with a pattern that depends on the absolute GPA. */
static void fill_gpa(uint8_t *p, uint64_t gpa, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)((gpa + i) * 131u + ((gpa + i) >> 12));
}

static int check_gpa(const uint8_t *p, uint64_t gpa, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)((gpa + i) * 131u + ((gpa + i) >> 12)))
			return 0;
	return 1;
}

/* Regions of a guest_mem mapped the way a back-end maps them: data written by the driver is
 * read through the device's own mapping and the other way round. */
static void test_map_guest_mem_data(void)
{
	struct m_baseline b = m_baseline();
	struct vh_guest_mem_opts o = { .size = 4 * 64 * PAGE, .nregions = 4,
				       .gpa_base = 0x100000, .gpa_gap = 16 * PAGE };
	struct vh_guest_mem *gm;
	struct vh_memory *mem;
	const struct vh_region *r;
	unsigned n;

	CHECK_EQ(vh_guest_mem_new_opts(&gm, &o), 0);
	r = vh_guest_mem_regions(gm, &n);
	CHECK_EQ(n, 4);
	for (unsigned i = 0; i < n; i++)
		fill_gpa((uint8_t *)(uintptr_t)r[i].userspace_addr, r[i].guest_phys_addr, r[i].size);
	CHECK_EQ(vh_memory_map_regions(&mem, r, n, NULL), 0);
	CHECK_EQ(vh_memory_nregions(mem), 4);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *h = vh_memory_gpa_to_host(mem, r[i].guest_phys_addr, r[i].size);

		CHECK(h != NULL);
		/* a separate mapping of the same file, not the driver's pointer */
		CHECK(h != (uint8_t *)(uintptr_t)r[i].userspace_addr);
		CHECK(check_gpa(h, r[i].guest_phys_addr, r[i].size));
		/* front-end address of the same byte translates to the same place */
		CHECK(vh_memory_uaddr_to_host(mem, r[i].userspace_addr + 100, 8) == h + 100);
		uint64_t g = 0;
		CHECK_EQ(vh_memory_uaddr_to_gpa(mem, r[i].userspace_addr + 100, 8, &g), 0);
		CHECK_EQ(g, r[i].guest_phys_addr + 100);
		/* device writes, driver reads */
		memset(h + 7, 0xa5, 33);
		CHECK_EQ(((uint8_t *)(uintptr_t)r[i].userspace_addr)[7 + 32], 0xa5);
		fill_gpa(h + 7, r[i].guest_phys_addr + 7, 33);
		/* last byte ok, one past is not in this region */
		CHECK(vh_memory_gpa_to_host(mem, r[i].guest_phys_addr + r[i].size - 1, 1) != NULL);
		CHECK(vh_memory_gpa_to_host(mem, r[i].guest_phys_addr + r[i].size - 1, 2) == NULL);
		CHECK(vh_memory_gpa_to_host(mem, r[i].guest_phys_addr + r[i].size, 1) == NULL);
		CHECK(vh_memory_uaddr_to_host(mem, r[i].userspace_addr + r[i].size - 4, 8) == NULL);
	}
	CHECK(vh_memory_gpa_to_host(mem, 0, 1) == NULL);
	CHECK(vh_memory_gpa_to_host(mem, 0x100000 - 1, 1) == NULL);
	CHECK(vh_memory_gpa_to_host(mem, UINT64_MAX, 1) == NULL);
	CHECK(vh_memory_uaddr_to_host(mem, 0, 1) == NULL);
	vh_memory_unref(mem);
	vh_guest_mem_free(gm);
	CHECK_BASELINE_M(b);
}

/* SET_MEM_TABLE shaped input: wire regions + fds, unaligned mmap_offset, several files. */
static void test_map_wire_offsets(void)
{
	struct m_baseline b = m_baseline();
	int fd1 = t_memfd("a", 16 * PAGE), fd2 = t_memfd("b", 8 * PAGE);
	struct vh_mem_region wr[3] = {
		/* unaligned offset inside the file */
		{ .guest_phys_addr = 0x0, .memory_size = 4 * PAGE, .userspace_addr = 0x7f0000000000,
		  .mmap_offset = 3 * PAGE + 100 },
		{ .guest_phys_addr = 0x100000, .memory_size = 8 * PAGE,
		  .userspace_addr = 0x7f0000100000, .mmap_offset = 0 },
		/* the same file again, a different part */
		{ .guest_phys_addr = 0x4000, .memory_size = 2 * PAGE,
		  .userspace_addr = 0x7f0000010000, .mmap_offset = 10 * PAGE },
	};
	int fds[3] = { fd1, fd2, fd1 };
	struct vh_memory *mem;
	uint8_t buf[64];

	CHECK(fd1 >= 0 && fd2 >= 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i + 1);
	CHECK_EQ(pwrite(fd1, buf, sizeof(buf), 3 * PAGE + 100), sizeof(buf));
	CHECK_EQ(pwrite(fd1, buf, 1, 10 * PAGE + PAGE - 1 + PAGE), 1);
	CHECK_EQ(pwrite(fd2, buf + 5, 1, 8 * PAGE - 1), 1);
	CHECK_EQ(vh_memory_map(&mem, wr, fds, 3, NULL), 0);
	/* caller keeps its fds: closing them does not affect the mappings */
	close(fd1);
	close(fd2);
	CHECK_EQ(vh_memory_nregions(mem), 3);
	/* sorted by gpa */
	CHECK_EQ(mem->regions[0].gpa, 0);
	CHECK_EQ(mem->regions[1].gpa, 0x4000);
	CHECK_EQ(mem->regions[2].gpa, 0x100000);
	uint8_t *h = vh_memory_gpa_to_host(mem, 0, sizeof(buf));
	CHECK(h && memcmp(h, buf, sizeof(buf)) == 0);
	/* shared, no swap reservation, kept out of core dumps */
	const char *fl = t_vmflags(h);
	CHECK(strstr(fl, " sh") && strstr(fl, " nr") && strstr(fl, " dd"));
	if (!strstr(fl, " dd"))
		printf("# VmFlags:%s", fl);
	h = vh_memory_gpa_to_host(mem, 0x4000 + 2 * PAGE - 1, 1);
	CHECK(h && *h == 1);
	h = vh_memory_gpa_to_host(mem, 0x100000 + 8 * PAGE - 1, 1);
	CHECK(h && *h == 6);
	CHECK_EQ(vh_memory_find(mem, 0x4000), 1);
	CHECK_EQ(vh_memory_find(mem, 0x3fff), 0);
	CHECK_EQ(vh_memory_find(mem, 0x6000), -ENOENT);
	vh_memory_unref(mem);
	CHECK_BASELINE_M(b);
}

struct bad_case {
	const char *name;
	struct vh_mem_region r;
	int expect;
};

/* Every rejection class for a single region, against a good table that must stay intact. */
static void test_reject_classes(void)
{
	int fd = t_memfd("good", 32 * PAGE), fd2 = t_memfd("bad", 16 * PAGE);
	struct vh_mem_region good = { .guest_phys_addr = 0x10000, .memory_size = 16 * PAGE,
				      .userspace_addr = 0x500000000, .mmap_offset = 0 };
	struct vh_memory *mem, *out;
	struct m_baseline b;
	const struct bad_case cases[] = {
		{ "size 0", { 0x100000, 0, 0x600000000, 0 }, -EINVAL },
		{ "gpa wrap", { UINT64_MAX - PAGE + 1, 2 * PAGE, 0x600000000, 0 }, -EINVAL },
		{ "uaddr wrap", { 0x100000, 2 * PAGE, UINT64_MAX - PAGE, 0 }, -EINVAL },
		{ "offset wrap", { 0x100000, 2 * PAGE, 0x600000000, UINT64_MAX - PAGE }, -EINVAL },
		{ "gpa overlap start", { 0x10000 - PAGE, 2 * PAGE, 0x600000000, 0 }, -EINVAL },
		{ "gpa overlap inside", { 0x12000, PAGE, 0x600000000, 0 }, -EINVAL },
		{ "gpa overlap around", { 0x0, 0x100000, 0x600000000, 0 }, -EINVAL },
		{ "uaddr overlap", { 0x100000, 2 * PAGE, 0x500000000 + 15 * PAGE, 0 }, -EINVAL },
		{ "offset past end", { 0x100000, 2 * PAGE, 0x600000000, 15 * PAGE }, -EINVAL },
		{ "size past end", { 0x100000, 17 * PAGE, 0x600000000, 0 }, -EINVAL },
		{ "offset at end", { 0x100000, PAGE, 0x600000000, 16 * PAGE }, -EINVAL },
	};
	uint8_t *h;

	CHECK(fd >= 0 && fd2 >= 0);
	CHECK_EQ(vh_memory_map(&mem, &good, &fd, 1, NULL), 0);
	h = vh_memory_gpa_to_host(mem, 0x10000, 16 * PAGE);
	CHECK(h != NULL);
	memset(h, 0x5a, 16 * PAGE);
	b = m_baseline();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = (struct vh_memory *)0x1;
		CHECK_EQ_M(vh_memory_add(&out, mem, &cases[i].r, fd2), cases[i].expect, "add %s",
			   cases[i].name);
		CHECK(out == (struct vh_memory *)0x1);
		/* the same region as part of a fresh SET_MEM_TABLE with the good one */
		struct vh_mem_region two[2] = { good, cases[i].r };
		int fds[2] = { fd, fd2 };
		CHECK_EQ_M(vh_memory_map(&out, two, fds, 2, NULL), cases[i].expect, "map %s",
			   cases[i].name);
		CHECK(out == (struct vh_memory *)0x1);
		CHECK_BASELINE_M(b);
	}
	/* a region that is fine on its own does map: the cases above failed for their reason */
	struct vh_mem_region ok = { 0x100000, 16 * PAGE, 0x600000000, 0 };
	CHECK_EQ(vh_memory_add(&out, mem, &ok, fd2), 0);
	CHECK_EQ(vh_memory_nregions(out), 2);
	vh_memory_unref(out);
	CHECK_BASELINE_M(b);
	/* old table intact and still holds the data */
	CHECK_EQ(vh_memory_nregions(mem), 1);
	CHECK(vh_memory_gpa_to_host(mem, 0x10000, 16 * PAGE) == h);
	CHECK(h[0] == 0x5a && h[16 * PAGE - 1] == 0x5a);
	vh_memory_unref(mem);
	close(fd);
	close(fd2);
}

/* Fds that cannot back guest memory: pipe, socket, read-only, directory, closed/negative. */
static void test_reject_fds(void)
{
	struct vh_mem_region r = { 0, PAGE, 0x500000000, 0 };
	struct vh_memory *out = NULL, *mem;
	int p[2], sv[2], mfd = t_memfd("ro", PAGE), ro, dir;
	char path[64];
	struct m_baseline b;

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(ro >= 0 && dir >= 0);
	CHECK_EQ(vh_memory_new_empty(&mem, NULL), 0);
	b = m_baseline();
	CHECK_EQ(vh_memory_map(&out, &r, &p[0], 1, NULL), -EINVAL);
	CHECK_EQ(vh_memory_map(&out, &r, &p[1], 1, NULL), -EINVAL);
	CHECK_EQ(vh_memory_map(&out, &r, &sv[0], 1, NULL), -EINVAL);
	CHECK_EQ(vh_memory_map(&out, &r, &ro, 1, NULL), -EACCES);
	CHECK_EQ(vh_memory_map(&out, &r, &dir, 1, NULL), -EINVAL);
	CHECK_EQ(vh_memory_add(&out, mem, &r, p[0]), -EINVAL);
	CHECK_EQ(vh_memory_add(&out, mem, &r, sv[1]), -EINVAL);
	CHECK_EQ(vh_memory_add(&out, mem, &r, -1), -EBADF);
	int bad = 1000;
	CHECK_EQ(vh_memory_add(&out, mem, &r, bad), -EBADF);
	int neg = -1;
	CHECK_EQ(vh_memory_map(&out, &r, &neg, 1, NULL), -EBADF);
	CHECK(out == NULL);
	CHECK_BASELINE_M(b);
	CHECK_EQ(vh_memory_nregions(mem), 0);
	CHECK(vh_memory_gpa_to_host(mem, 0, 1) == NULL);
	CHECK_EQ(vh_memory_gpa_to_iov(mem, 0, 1, NULL, 0), -EFAULT);
	vh_memory_unref(mem);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	close(ro);
	close(dir);
	close(mfd);
}

static char last_msg[256];

static void capture_fn(void *opaque, enum vh_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	snprintf(last_msg, sizeof(last_msg), "%s", msg);
}

static const struct vh_logger capture = { capture_fn, NULL, VH_LOG_DEBUG };

/* A failing mmap after other regions were already mapped: everything this call mapped is
 * unmapped again. A sysfs attribute passes the file checks (regular, read-write, 4 KiB) but
 * cannot be mapped. */
static void test_reject_mmap_failure_midway(void)
{
	int sysfd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDWR | O_CLOEXEC);
	int fd = t_memfd("ok", 8 * PAGE);
	struct vh_mem_region r[4] = {
		{ 0x0000, PAGE, 0x500000000, 0 },
		{ 0x1000, PAGE, 0x500001000, PAGE },
		{ 0x2000, PAGE, 0x500002000, 2 * PAGE },
		{ 0x3000, PAGE, 0x500003000, 0 }, /* the sysfs file, mapped last (highest gpa) */
	};
	int fds[4] = { fd, fd, fd, sysfd };
	struct vh_memory *out = NULL;
	struct m_baseline b;

	if (sysfd < 0) {
		printf("# no writable sysfs attribute (%s): mmap-failure case not run\n",
		       strerror(errno));
		close(fd);
		return;
	}
	b = m_baseline();
	int ret = vh_memory_map(&out, r, fds, 4, &capture);
	CHECK(ret < 0);
	/* it failed in mmap, after the three memfd regions were mapped */
	CHECK(strstr(last_msg, "mmap") != NULL);
	CHECK(out == NULL);
	CHECK_BASELINE_M(b);
	close(sysfd);
	close(fd);
}

/* Slot limit on SET_MEM_TABLE-style builds and on ADD; REM of unknown regions. */
static void test_slots_add_remove(void)
{
	struct m_baseline b = m_baseline();
	const unsigned max = VH_MEMORY_MAX_REGIONS;
	int fd = t_memfd("slots", 2 * (max + 1) * PAGE);
	struct vh_mem_region *r = calloc(max + 1, sizeof(*r));
	int *fds = calloc(max + 1, sizeof(*fds));
	unsigned *order = calloc(max, sizeof(*order));
	struct vh_memory *mem, *next;
	uint64_t *page0;

	CHECK(fd >= 0 && r && fds && order);
	/* each region's page of the file holds its index, to check each region maps its own
	 * page; every other page is skipped so that no two mappings could merge into one VMA
	 * (which would make the mapping count meaningless) */
	for (unsigned i = 0; i <= max; i++) {
		uint64_t v = 0xabc00000u + i;

		CHECK_EQ(pwrite(fd, &v, sizeof(v), (off_t)(2 * i * PAGE)), sizeof(v));
		/* descending GPA to exercise the sort; a hole after each region */
		r[i].guest_phys_addr = (uint64_t)(max - i) * 2 * PAGE;
		r[i].memory_size = PAGE;
		r[i].userspace_addr = 0x600000000000ull + (uint64_t)i * 3 * PAGE;
		r[i].mmap_offset = (uint64_t)2 * i * PAGE;
		fds[i] = fd;
	}
	struct m_baseline b1 = m_baseline(); /* with the memfd open */
	mem = (struct vh_memory *)0x1;
	CHECK_EQ(vh_memory_map(&mem, r, fds, max + 1, NULL), -ENOSPC);
	CHECK(mem == (struct vh_memory *)0x1);
	CHECK_BASELINE_M(b1);
	int fails0 = t_failures;

	/* ADD one by one up to the limit, releasing each previous table */
	CHECK_EQ(vh_memory_new_empty(&mem, NULL), 0);
	for (unsigned i = 0; i < max; i++) {
		CHECK_EQ_M(vh_memory_add(&next, mem, &r[i], fd), 0, "add %u", i);
		if (t_failures != fails0)
			break;
		vh_memory_unref(mem);
		mem = next;
	}
	CHECK_EQ(vh_memory_nregions(mem), max);
	CHECK_EQ(vh_memory_add(&next, mem, &r[max], fd), -ENOSPC);
	for (unsigned i = 0; i < max; i++) {
		page0 = vh_memory_gpa_to_host(mem, r[i].guest_phys_addr, PAGE);
		CHECK(page0 && *page0 == 0xabc00000u + i);
		CHECK(vh_memory_gpa_to_host(mem, r[i].guest_phys_addr + PAGE, 1) == NULL);
		CHECK(vh_memory_uaddr_to_host(mem, r[i].userspace_addr, PAGE) == (void *)page0);
	}
	int maps_full = t_count_file_maps();
	CHECK(maps_full >= b.file_maps + (int)max);

	/* REM of unknown regions: wrong size, wrong uaddr, never added */
	struct vh_mem_region unk = r[3];
	unk.memory_size = 2 * PAGE;
	CHECK_EQ(vh_memory_remove(&next, mem, &unk), -ENOENT);
	unk = r[3];
	unk.userspace_addr += PAGE;
	CHECK_EQ(vh_memory_remove(&next, mem, &unk), -ENOENT);
	CHECK_EQ(vh_memory_remove(&next, mem, &r[max]), -ENOENT);
	CHECK_EQ(t_count_file_maps(), maps_full);

	/* remove all in a shuffled order; each removal unmaps exactly one region */
	fails0 = t_failures;
	srand(7);
	for (unsigned i = 0; i < max; i++)
		order[i] = i;
	for (unsigned i = max - 1; i > 0; i--) {
		unsigned j = (unsigned)rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned k = 0; k < max; k++) {
		unsigned i = order[k];

		CHECK_EQ_M(vh_memory_remove(&next, mem, &r[i]), 0, "remove %u", i);
		if (t_failures != fails0)
			break;
		/* the old table still maps it until released */
		CHECK(vh_memory_gpa_to_host(mem, r[i].guest_phys_addr, 1) != NULL);
		CHECK(vh_memory_gpa_to_host(next, r[i].guest_phys_addr, 1) == NULL);
		vh_memory_unref(mem);
		mem = next;
		if (k % 64 == 0)
			CHECK_EQ(t_count_file_maps(), maps_full - (int)k - 1);
	}
	CHECK_EQ(vh_memory_nregions(mem), 0);
	CHECK_EQ(vh_memory_remove(&next, mem, &r[0]), -ENOENT);
	vh_memory_unref(mem);
	close(fd);
	free(r);
	free(fds);
	free(order);
	CHECK_BASELINE_M(b);
}

/* A table shared by two derived tables: mappings live until the last user is released. */
static void test_shared_mappings(void)
{
	struct m_baseline b = m_baseline();
	int fd = t_memfd("shared", 4 * PAGE);
	struct vh_mem_region r0 = { 0, 2 * PAGE, 0x500000000, 0 };
	struct vh_mem_region r1 = { 0x10000, 2 * PAGE, 0x500010000, 2 * PAGE };
	struct vh_memory *a, *ab, *none;
	uint8_t *p;

	CHECK_EQ(vh_memory_map(&a, &r0, &fd, 1, NULL), 0);
	CHECK_EQ(vh_memory_add(&ab, a, &r1, fd), 0);
	p = vh_memory_gpa_to_host(ab, 0, 2 * PAGE);
	CHECK(p == vh_memory_gpa_to_host(a, 0, 2 * PAGE)); /* same mapping, not remapped */
	vh_memory_unref(a);
	p[0] = 42; /* still mapped through ab */
	CHECK_EQ(vh_memory_remove(&none, ab, &r1), 0);
	CHECK(vh_memory_ref(none) == none);
	vh_memory_unref(ab);
	CHECK(vh_memory_gpa_to_host(none, 0, 1) == p);
	CHECK_EQ(p[0], 42);
	vh_memory_unref(none);
	vh_memory_unref(none);
	close(fd);
	CHECK_BASELINE_M(b);
}

/* SET_MEM_TABLE resent with mostly the same regions: identical ones keep their mapping. */
static void test_map_update_reuses(void)
{
	struct m_baseline b = m_baseline();
	int fa = t_memfd("upd-a", 16 * PAGE), fb = t_memfd("upd-b", 8 * PAGE);
	int fa2 = dup(fa), fc = t_memfd("upd-c", 8 * PAGE);
	/* file offsets with gaps: two mappings of one file never become one VMA */
	struct vh_mem_region r[3] = {
		{ 0x00000, 4 * PAGE, 0x500000000, 0 },
		{ 0x10000, 4 * PAGE, 0x500010000, 8 * PAGE },
		{ 0x20000, 8 * PAGE, 0x500020000, 0 },
	};
	int fds[3] = { fa, fa, fb };
	struct vh_memory *m1, *m2, *bad;
	struct m_baseline b1;

	CHECK_EQ(vh_memory_map(&m1, r, fds, 3, NULL), 0);
	b1 = m_baseline();
	/* region 0 same (through another fd of the same file), region 1 moved in the file,
	 * region 2 same place but another file */
	struct vh_mem_region r2[3] = { r[0], r[1], r[2] };
	r2[1].mmap_offset = 0;
	int fds2[3] = { fa2, fa, fc };
	CHECK_EQ(vh_memory_map_update(&m2, m1, r2, fds2, 3, NULL), 0);
	CHECK_EQ(vh_memory_same_host(m1, m2, 0x0, 4 * PAGE), 1);
	CHECK_EQ(vh_memory_same_host(m1, m2, 0x10000, 1), 0);
	CHECK_EQ(vh_memory_same_host(m1, m2, 0x20000, 1), 0);
	CHECK_EQ(vh_memory_same_host(m1, m2, 0x0, 4 * PAGE + 1), 0);
	CHECK_EQ(vh_memory_same_host(m1, m2, 0x8000, 1), 0);
	CHECK(vh_memory_gpa_to_host(m1, 0x100, 1) == vh_memory_gpa_to_host(m2, 0x100, 1));
	CHECK_EQ(t_count_file_maps(), b1.file_maps + 2); /* only the two changed regions */
	/* region 1 of m2 maps file offset 0, i.e. the same bytes as region 0 */
	*(uint8_t *)vh_memory_gpa_to_host(m2, 0x10, 1) = 0x3c;
	CHECK_EQ(*(uint8_t *)vh_memory_gpa_to_host(m2, 0x10010, 1), 0x3c);
	/* a rejected update changes nothing and shares nothing */
	struct vh_mem_region r3[2] = { r[0], r[0] };
	int fds3[2] = { fa, fa };
	CHECK_EQ(vh_memory_map_update(&bad, m2, r3, fds3, 2, NULL), -EINVAL);
	CHECK_EQ(t_count_file_maps(), b1.file_maps + 2);
	vh_memory_unref(m1);
	/* m1's two unshared mappings are gone, m2's two new ones remain */
	CHECK_EQ(t_count_file_maps(), b1.file_maps);
	CHECK(*(uint8_t *)vh_memory_gpa_to_host(m2, 0x10, 1) == 0x3c); /* shared one alive */
	vh_memory_unref(m2);
	close(fa);
	close(fa2);
	close(fb);
	close(fc);
	CHECK_BASELINE_M(b);
}

/* Buffers crossing regions: split per region; any hole, wrap or lack of iovecs fails. */
static void test_iov_split(void)
{
	struct m_baseline b = m_baseline();
	struct vh_guest_mem_opts o = { .size = 8 * 4 * PAGE, .nregions = 8, .gpa_base = 0x40000 };
	struct vh_guest_mem_opts og = { .size = 4 * 4 * PAGE, .nregions = 4, .gpa_base = 0,
					.gpa_gap = PAGE };
	struct vh_guest_mem *gm, *gg;
	struct vh_memory *mem, *memg;
	const struct vh_region *r;
	struct iovec iov[16];
	unsigned n;

	CHECK_EQ(vh_guest_mem_new_opts(&gm, &o), 0);
	r = vh_guest_mem_regions(gm, &n);
	fill_gpa(vh_guest_mem_base(gm), 0x40000, vh_guest_mem_size(gm));
	CHECK_EQ(vh_memory_map_regions(&mem, r, n, NULL), 0);

	/* inside one region: one piece */
	CHECK_EQ(vh_memory_gpa_to_iov(mem, 0x40000 + 10, 100, iov, 16), 1);
	CHECK_EQ(iov[0].iov_len, 100);
	CHECK(iov[0].iov_base == vh_memory_gpa_to_host(mem, 0x40000 + 10, 100));
	/* from the last 5 bytes of region 1 over regions 2 and 3 into 7 bytes of region 4 */
	uint64_t start = r[1].guest_phys_addr + r[1].size - 5;
	uint64_t len = 5 + r[2].size + r[3].size + 7;
	int k = vh_memory_gpa_to_iov(mem, start, len, iov, 16);
	CHECK_EQ(k, 4);
	if (k == 4) {
		uint64_t sum = 0, g = start;

		CHECK_EQ(iov[0].iov_len, 5);
		CHECK_EQ(iov[1].iov_len, r[2].size);
		CHECK_EQ(iov[2].iov_len, r[3].size);
		CHECK_EQ(iov[3].iov_len, 7);
		for (int i = 0; i < k; i++) {
			CHECK(check_gpa(iov[i].iov_base, g, iov[i].iov_len));
			/* each piece is in the device's own mapping */
			CHECK(iov[i].iov_base == vh_memory_gpa_to_host(mem, g, iov[i].iov_len));
			g += iov[i].iov_len;
			sum += iov[i].iov_len;
		}
		CHECK_EQ(sum, len);
	}
	/* the whole memory: 8 pieces */
	CHECK_EQ(vh_memory_gpa_to_iov(mem, 0x40000, vh_guest_mem_size(gm), iov, 16), 8);
	CHECK_EQ(vh_memory_gpa_to_iov(mem, 0x40000, vh_guest_mem_size(gm), iov, 8), 8);
	CHECK_EQ(vh_memory_gpa_to_iov(mem, 0x40000, vh_guest_mem_size(gm), iov, 7), -ENOBUFS);
	CHECK_EQ(vh_memory_gpa_to_iov(mem, start, len, iov, 0), -ENOBUFS);
	/* one byte past the end, before the start, wrap, zero length */
	CHECK_EQ(vh_memory_gpa_to_iov(mem, 0x40000, vh_guest_mem_size(gm) + 1, iov, 16), -EFAULT);
	CHECK_EQ(vh_memory_gpa_to_iov(mem, 0x40000 - 1, 2, iov, 16), -EFAULT);
	CHECK_EQ(vh_memory_gpa_to_iov(mem, 0x40000 + 8, UINT64_MAX, iov, 16), -EFAULT);
	CHECK_EQ(vh_memory_gpa_to_iov(mem, UINT64_MAX, 2, iov, 16), -EFAULT);
	CHECK_EQ(vh_memory_gpa_to_iov(mem, 0x40000, 0, iov, 16), 0);
	/* the single-region fast path refuses a crossing buffer */
	CHECK(vh_memory_gpa_to_host(mem, start, 6) == NULL);

	/* with holes between regions: crossing a hole fails even if both ends are mapped */
	CHECK_EQ(vh_guest_mem_new_opts(&gg, &og), 0);
	r = vh_guest_mem_regions(gg, &n);
	CHECK_EQ(r[1].guest_phys_addr, r[0].size + PAGE);
	CHECK_EQ(vh_memory_map_regions(&memg, r, n, NULL), 0);
	CHECK_EQ(vh_memory_gpa_to_iov(memg, r[0].size - 1, PAGE + 2, iov, 16), -EFAULT);
	CHECK_EQ(vh_memory_gpa_to_iov(memg, r[0].size - 1, 1, iov, 16), 1);
	CHECK_EQ(vh_memory_gpa_to_iov(memg, r[1].guest_phys_addr, r[1].size, iov, 16), 1);
	CHECK_EQ(vh_memory_gpa_to_iov(memg, r[1].guest_phys_addr, r[1].size + 1, iov, 16),
		 -EFAULT);
	vh_memory_unref(memg);
	vh_guest_mem_free(gg);
	vh_memory_unref(mem);
	vh_guest_mem_free(gm);
	CHECK_BASELINE_M(b);
}

/* The rejection rules hold for local tables too (no files involved). */
static void test_local_table_rules(void)
{
	struct vh_region r[2] = {
		{ .guest_phys_addr = 0, .size = PAGE, .userspace_addr = 0x10000, .fd = -1 },
		{ .guest_phys_addr = PAGE, .size = PAGE, .userspace_addr = 0x20000, .fd = -1 },
	};
	struct vh_memory *mem;

	CHECK_EQ(vh_memory_new_local(&mem, r, 2, NULL), 0);
	CHECK(vh_memory_gpa_to_host(mem, PAGE + 5, 1) == (void *)(uintptr_t)0x20005);
	vh_memory_unref(mem);
	r[1].guest_phys_addr = PAGE - 1;
	CHECK_EQ(vh_memory_new_local(&mem, r, 2, NULL), -EINVAL);
	r[1].guest_phys_addr = PAGE;
	r[1].userspace_addr = 0x10000 + PAGE - 1;
	CHECK_EQ(vh_memory_new_local(&mem, r, 2, NULL), -EINVAL);
	r[1].userspace_addr = 0x20000;
	r[1].size = 0;
	CHECK_EQ(vh_memory_new_local(&mem, r, 2, NULL), -EINVAL);
	CHECK_EQ(vh_memory_new_local(&mem, NULL, 1, NULL), -EINVAL);
	CHECK_EQ(vh_memory_new_local(NULL, r, 1, NULL), -EINVAL);
}

static const struct t_test tests[] = {
	T_TEST(test_map_guest_mem_data),
	T_TEST(test_map_wire_offsets),
	T_TEST(test_reject_classes),
	T_TEST(test_reject_fds),
	T_TEST(test_reject_mmap_failure_midway),
	T_TEST(test_slots_add_remove),
	T_TEST(test_shared_mappings),
	T_TEST(test_map_update_reuses),
	T_TEST(test_iov_split),
	T_TEST(test_local_table_rules),
};

T_MAIN(tests)
