/* SPDX-License-Identifier: MIT */
/*
 * Device-side guest memory table: validation, mapping, immutable sorted snapshots, lookups,
 * and the RCU-like publication of a table to worker threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <libvhost/memory.h>
#include "internal.h"

/* One mmap. Counted by the tables that reference it; only the owner thread touches refcnt. */
struct vh_mapping {
	unsigned refcnt;
	void *base;
	size_t len;
	dev_t dev;   /* the file it maps, to recognise the same region in a new SET_MEM_TABLE */
	ino_t ino;
};

/* A region being built: either to map from fd, or already mapped (existing or local). */
struct spec {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint64_t offset;
	int fd;                     /* >= 0: map from it; -1: host already known */
	uint8_t *host;
	struct vh_mapping *mapping; /* shared with an older table, or NULL */
	uint64_t page;              /* page size of fd's file system (set by check_file) */
	dev_t dev;                  /* fd's file (set by check_file) */
	ino_t ino;
};

static void mapping_put(struct vh_mapping *m)
{
	if (!m || --m->refcnt)
		return;
	munmap(m->base, m->len);
	free(m);
}

static int cmp_spec_gpa(const void *a, const void *b)
{
	const struct spec *x = a, *y = b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/* Sort context for the uaddr index (qsort has no context argument). */
struct uaddr_key {
	uint64_t uaddr;
	uint64_t size;
	uint16_t idx;
};

static int cmp_uaddr_key(const void *a, const void *b)
{
	const struct uaddr_key *x = a, *y = b;

	return x->uaddr < y->uaddr ? -1 : x->uaddr > y->uaddr;
}

/* Checks that do not need the file: size, wraps. */
static int check_ranges(const struct spec *s, const struct vh_logger *log)
{
	uint64_t end;

	if (s->size == 0) {
		vhp_err(log, "memory: region at gpa 0x%llx has size 0",
			(unsigned long long)s->gpa);
		return -EINVAL;
	}
	if (__builtin_add_overflow(s->gpa, s->size, &end) ||
	    __builtin_add_overflow(s->uaddr, s->size, &end) ||
	    __builtin_add_overflow(s->offset, s->size, &end)) {
		vhp_err(log, "memory: region gpa 0x%llx size 0x%llx uaddr 0x%llx offset 0x%llx wraps",
			(unsigned long long)s->gpa, (unsigned long long)s->size,
			(unsigned long long)s->uaddr, (unsigned long long)s->offset);
		return -EINVAL;
	}
	/* The host range must fit the address space too. */
	if (s->size > SIZE_MAX)
		return -EINVAL;
	return 0;
}

/* Everything checked on the fd before mapping (class 10). Sets s->page. */
static int check_file(struct spec *s, const struct vh_logger *log)
{
	struct stat st;
	struct statfs sfs;
	int fl;

	if (s->fd < 0)
		return -EBADF;
	if (fstat(s->fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		vhp_err(log, "memory: region fd %d is not a regular file (mode 0%o)", s->fd,
			(unsigned)st.st_mode);
		return -EINVAL;
	}
	fl = fcntl(s->fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if ((fl & O_ACCMODE) != O_RDWR) {
		vhp_err(log, "memory: region fd %d is not open read-write", s->fd);
		return -EACCES;
	}
	/* check_ranges() ruled out a wrap of offset + size */
	if (st.st_size < 0 || s->offset + s->size > (uint64_t)st.st_size) {
		vhp_err(log, "memory: region offset 0x%llx + size 0x%llx beyond file size 0x%llx",
			(unsigned long long)s->offset, (unsigned long long)s->size,
			(unsigned long long)st.st_size);
		return -EINVAL;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->page = (uint64_t)sysconf(_SC_PAGESIZE);
	if (fstatfs(s->fd, &sfs) == 0 && (unsigned long)sfs.f_type == HUGETLBFS_MAGIC &&
	    sfs.f_bsize > 0 && ((uint64_t)sfs.f_bsize & ((uint64_t)sfs.f_bsize - 1)) == 0)
		s->page = (uint64_t)sfs.f_bsize;
	return 0;
}

/* Maps s from its fd, from the offset aligned down to the page size. */
static int map_spec(struct spec *s, const struct vh_logger *log)
{
	uint64_t aligned = s->offset & ~(s->page - 1);
	uint64_t delta = s->offset - aligned;
	uint64_t len;
	struct vh_mapping *m;
	void *p;

	if (__builtin_add_overflow(s->size, delta, &len) ||
	    __builtin_add_overflow(len, s->page - 1, &len))
		return -EINVAL;
	len &= ~(s->page - 1);
	if (len > SIZE_MAX || aligned > (uint64_t)INT64_MAX)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, s->fd,
		 (off_t)aligned);
	if (p == MAP_FAILED) {
		int err = -errno;

		vhp_err(log, "memory: mmap of 0x%llx bytes at offset 0x%llx failed: %d",
			(unsigned long long)len, (unsigned long long)aligned, err);
		free(m);
		return err;
	}
	/* Guest memory has no business in a core dump of the device process. */
	if (madvise(p, (size_t)len, MADV_DONTDUMP) < 0)
		vhp_warn(log, "memory: MADV_DONTDUMP failed: %d", -errno);
	m->refcnt = 1;
	m->base = p;
	m->len = (size_t)len;
	m->dev = s->dev;
	m->ino = s->ino;
	s->mapping = m;
	s->host = (uint8_t *)p + delta;
	return 0;
}

static struct spec *specs_alloc(unsigned n)
{
	return calloc(n ? n : 1, sizeof(struct spec));
}

static void spec_set(struct spec *s, uint64_t gpa, uint64_t size, uint64_t uaddr,
		     uint64_t offset, int fd)
{
	s->gpa = gpa;
	s->size = size;
	s->uaddr = uaddr;
	s->offset = offset;
	s->fd = fd;
}

/* A region of an existing table: shared, nothing to map. */
static void spec_from_region(struct spec *s, const struct vh_memory_region *r)
{
	spec_set(s, r->gpa, r->size, r->uaddr, r->mmap_offset, -1);
	s->host = r->host;
	s->mapping = r->mapping;
}

static struct vh_memory *table_alloc(unsigned n)
{
	unsigned cap = n ? n : 1;
	size_t sz = sizeof(struct vh_memory) + (size_t)cap * sizeof(struct vh_memory_region);
	size_t isz = VH_MEMORY_INDEX_SLOTS * sizeof(struct vh_memory_slot);
	struct vh_memory *mem;
	void *index;

	/* Cache-line aligned: a lookup reads one slot, and two share a line. */
	if (posix_memalign(&index, 64, isz))
		return NULL;
	memset(index, 0, isz);
	mem = calloc(1, sz + (size_t)cap * sizeof(uint16_t));
	if (!mem) {
		free(index);
		return NULL;
	}
	mem->index = index;
	mem->by_uaddr = (uint16_t *)((char *)mem + sz);
	mem->refcnt = 1;
	return mem;
}

static void table_free(struct vh_memory *mem)
{
	free(mem->index);
	free(mem);
}

/* Bytes of granule g (2^k bytes) that region r covers; inclusive ends, so nothing wraps. */
static uint64_t granule_cover(const struct vh_memory_slot *r, uint64_t g, unsigned k)
{
	uint64_t glo = g << k, ghi = glo + ((1ull << k) - 1);
	uint64_t lo = r->gpa > glo ? r->gpa : glo;
	uint64_t last = r->gpa + (r->size - 1);
	uint64_t hi = last < ghi ? last : ghi;

	return r->size == 0 || hi < lo ? 0 : hi - lo + 1;
}

/*
 * Fills the GPA index of a table whose regions are set (sorted, non-overlapping, none
 * wrapping). k is the smallest granule (2^12 up) that gives every granule of the span
 * [first gpa, last end) a slot of its own, so only granules shared by two regions (a boundary
 * not aligned to 2^k) lose one of them, and only spans above 2^62 share slots. Each slot gets
 * the region that covers the larger part of its granule. At most nregions + 2^10 slot writes
 * for spans up to 2^62 (each region's granules are capped at the slot count).
 */
static void index_build(struct vh_memory *mem)
{
	const unsigned bits = VH_MEMORY_INDEX_BITS;
	const uint64_t slots = VH_MEMORY_INDEX_SLOTS;
	unsigned k = 12, i;
	uint64_t first, last;

	if (mem->nregions == 0) {
		mem->index_mul = 1ull << (64 - bits - k);
		return;
	}
	first = mem->regions[0].gpa;
	last = mem->regions[mem->nregions - 1].gpa + (mem->regions[mem->nregions - 1].size - 1);
	while (k < 64 - bits - 2 && (last >> k) - (first >> k) >= slots)
		k++;
	mem->index_mul = 1ull << (64 - bits - k);
	for (i = 0; i < mem->nregions; i++) {
		const struct vh_memory_region *r = &mem->regions[i];
		struct vh_memory_slot cand = { r->gpa, r->size, r->host, i, 0 };
		uint64_t g = r->gpa >> k, g1 = (r->gpa + (r->size - 1)) >> k;

		if (g1 - g >= slots)
			g1 = g + slots - 1;
		for (;; g++) {
			struct vh_memory_slot *s = &mem->index[g & (slots - 1)];

			if (granule_cover(&cand, g, k) > granule_cover(s, g, k))
				*s = cand;
			if (g == g1)
				break;
		}
	}
}

static inline int find_gpa(const struct vh_memory *mem, uint64_t gpa);

/* A region of `old` that already maps exactly what s asks for (same place in the same file). */
static const struct vh_memory_region *find_reusable(const struct vh_memory *old,
						    const struct spec *s)
{
	const struct vh_memory_region *r;
	int i;

	if (!old)
		return NULL;
	i = find_gpa(old, s->gpa);
	if (i < 0)
		return NULL;
	r = &old->regions[i];
	if (r->mapping && r->gpa == s->gpa && r->size == s->size && r->uaddr == s->uaddr &&
	    r->mmap_offset == s->offset && r->mapping->dev == s->dev && r->mapping->ino == s->ino)
		return r;
	return NULL;
}

/*
 * The one builder. specs[0..n) is sorted here. Specs with fd >= 0 are mapped, unless `reuse`
 * has a region that maps the same part of the same file (then that mapping is shared); the
 * others keep their host pointer and (if any) take a reference on their mapping. Validation of
 * every spec precedes the first mmap; a failure unmaps what this call mapped.
 */
static int build(struct vh_memory **out, struct spec *specs, unsigned n,
		 const struct vh_logger *log, const struct vh_memory *reuse)
{
	struct vh_logger nolog = {0};
	struct uaddr_key *keys = NULL;
	struct vh_memory *mem;
	unsigned i, mapped = 0;
	int ret;

	if (!out || (n && !specs))
		return -EINVAL;
	if (!log)
		log = &nolog;
	if (n > VH_MEMORY_MAX_REGIONS) {
		vhp_err(log, "memory: %u regions, at most %u", n, VH_MEMORY_MAX_REGIONS);
		return -ENOSPC;
	}
	for (i = 0; i < n; i++) {
		ret = check_ranges(&specs[i], log);
		if (ret)
			return ret;
	}
	if (n > 1)
		qsort(specs, n, sizeof(*specs), cmp_spec_gpa);
	for (i = 1; i < n; i++) {
		/* sorted by start, so overlap iff the previous region ends past this start */
		if (specs[i - 1].gpa + specs[i - 1].size > specs[i].gpa) {
			vhp_err(log, "memory: regions overlap in guest-physical address at 0x%llx",
				(unsigned long long)specs[i].gpa);
			return -EINVAL;
		}
	}
	if (n) {
		keys = malloc(n * sizeof(*keys));
		if (!keys)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		keys[i].uaddr = specs[i].uaddr;
		keys[i].size = specs[i].size;
		keys[i].idx = (uint16_t)i;
	}
	if (n > 1)
		qsort(keys, n, sizeof(*keys), cmp_uaddr_key);
	for (i = 1; i < n; i++) {
		if (keys[i - 1].uaddr + keys[i - 1].size > keys[i].uaddr) {
			vhp_err(log, "memory: regions overlap in front-end address at 0x%llx",
				(unsigned long long)keys[i].uaddr);
			ret = -EINVAL;
			goto fail;
		}
	}
	for (i = 0; i < n; i++) {
		if (specs[i].fd < 0)
			continue;
		ret = check_file(&specs[i], log);
		if (ret)
			goto fail;
	}
	for (i = 0; i < n; i++) {
		const struct vh_memory_region *same;

		if (specs[i].fd < 0)
			continue;
		same = find_reusable(reuse, &specs[i]);
		if (same) {
			specs[i].fd = -1;
			specs[i].host = same->host;
			specs[i].mapping = same->mapping;
		}
	}
	mem = table_alloc(n);
	if (!mem) {
		ret = -ENOMEM;
		goto fail;
	}
	for (mapped = 0; mapped < n; mapped++) {
		if (specs[mapped].fd < 0)
			continue;
		ret = map_spec(&specs[mapped], log);
		if (ret) {
			table_free(mem);
			goto fail;
		}
	}
	mem->nregions = n;
	mem->log = *log;
	for (i = 0; i < n; i++) {
		struct vh_memory_region *r = &mem->regions[i];

		r->gpa = specs[i].gpa;
		r->size = specs[i].size;
		r->host = specs[i].host;
		r->uaddr = specs[i].uaddr;
		r->mmap_offset = specs[i].offset;
		r->mapping = specs[i].mapping;
		/* fresh mappings come with their one reference; shared ones get another */
		if (r->mapping && specs[i].fd < 0)
			r->mapping->refcnt++;
		mem->by_uaddr[i] = keys[i].idx;
	}
	index_build(mem);
	free(keys);
	*out = mem;
	return 0;
fail:
	for (i = 0; i < mapped; i++) {
		if (specs[i].fd >= 0 && specs[i].mapping) {
			mapping_put(specs[i].mapping);
			specs[i].mapping = NULL;
		}
	}
	free(keys);
	return ret;
}

int vh_memory_map(struct vh_memory **out, const struct vh_mem_region *regions, const int *fds,
		  unsigned n, const struct vh_logger *log)
{
	return vh_memory_map_update(out, NULL, regions, fds, n, log);
}

int vh_memory_map_update(struct vh_memory **out, const struct vh_memory *old,
			 const struct vh_mem_region *regions, const int *fds, unsigned n,
			 const struct vh_logger *log)
{
	struct spec *specs;
	unsigned i;
	int ret;

	if (!out || (n && (!regions || !fds)))
		return -EINVAL;
	if (n > VH_MEMORY_MAX_REGIONS)
		return -ENOSPC;
	for (i = 0; i < n; i++)
		if (fds[i] < 0)
			return -EBADF;
	specs = specs_alloc(n);
	if (!specs)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		spec_set(&specs[i], regions[i].guest_phys_addr, regions[i].memory_size,
			 regions[i].userspace_addr, regions[i].mmap_offset, fds[i]);
	ret = build(out, specs, n, log, old);
	free(specs);
	return ret;
}

int vh_memory_new_empty(struct vh_memory **out, const struct vh_logger *log)
{
	return build(out, NULL, 0, log, NULL);
}

int vh_memory_add(struct vh_memory **out, const struct vh_memory *old,
		  const struct vh_mem_region *region, int fd)
{
	struct spec *specs;
	unsigned i, n;
	int ret;

	if (!out || !old || !region)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	if (old->nregions >= VH_MEMORY_MAX_REGIONS) {
		vhp_err(&old->log, "memory: no free slot for another region (%u in use)",
			old->nregions);
		return -ENOSPC;
	}
	n = old->nregions + 1;
	specs = specs_alloc(n);
	if (!specs)
		return -ENOMEM;
	for (i = 0; i < old->nregions; i++)
		spec_from_region(&specs[i], &old->regions[i]);
	spec_set(&specs[n - 1], region->guest_phys_addr, region->memory_size,
		 region->userspace_addr, region->mmap_offset, fd);
	ret = build(out, specs, n, &old->log, NULL);
	free(specs);
	return ret;
}

int vh_memory_remove(struct vh_memory **out, const struct vh_memory *old,
		     const struct vh_mem_region *region)
{
	struct spec *specs;
	unsigned i, j, found;
	int ret;

	if (!out || !old || !region)
		return -EINVAL;
	for (found = 0; found < old->nregions; found++) {
		const struct vh_memory_region *r = &old->regions[found];

		if (r->gpa == region->guest_phys_addr && r->size == region->memory_size &&
		    r->uaddr == region->userspace_addr)
			break;
	}
	if (found == old->nregions) {
		vhp_err(&old->log, "memory: no region gpa 0x%llx size 0x%llx uaddr 0x%llx to remove",
			(unsigned long long)region->guest_phys_addr,
			(unsigned long long)region->memory_size,
			(unsigned long long)region->userspace_addr);
		return -ENOENT;
	}
	specs = specs_alloc(old->nregions - 1);
	if (!specs)
		return -ENOMEM;
	for (i = 0, j = 0; i < old->nregions; i++)
		if (i != found)
			spec_from_region(&specs[j++], &old->regions[i]);
	ret = build(out, specs, j, &old->log, NULL);
	free(specs);
	return ret;
}

/* The two ways of taking driver-side regions: mapped from their fds, or used in place. */
static int build_from_regions(struct vh_memory **out, const struct vh_region *regions,
			      unsigned n, const struct vh_logger *log, int local)
{
	struct spec *specs;
	unsigned i;
	int ret;

	if (!out || (n && !regions))
		return -EINVAL;
	if (n > VH_MEMORY_MAX_REGIONS)
		return -ENOSPC;
	for (i = 0; i < n; i++) {
		if (local && regions[i].userspace_addr > UINTPTR_MAX)
			return -EINVAL;
		if (!local && regions[i].fd < 0)
			return -EBADF;
	}
	specs = specs_alloc(n);
	if (!specs)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const struct vh_region *r = &regions[i];

		spec_set(&specs[i], r->guest_phys_addr, r->size, r->userspace_addr,
			 local ? 0 : r->fd_offset, local ? -1 : r->fd);
		if (local)
			specs[i].host = (uint8_t *)(uintptr_t)r->userspace_addr;
	}
	ret = build(out, specs, n, log, NULL);
	free(specs);
	return ret;
}

int vh_memory_new_local(struct vh_memory **out, const struct vh_region *regions, unsigned n,
			const struct vh_logger *log)
{
	return build_from_regions(out, regions, n, log, 1);
}

int vh_memory_map_regions(struct vh_memory **out, const struct vh_region *regions, unsigned n,
			  const struct vh_logger *log)
{
	return build_from_regions(out, regions, n, log, 0);
}

struct vh_memory *vh_memory_ref(struct vh_memory *mem)
{
	if (mem)
		mem->refcnt++;
	return mem;
}

void vh_memory_unref(struct vh_memory *mem)
{
	unsigned i;

	if (!mem || --mem->refcnt)
		return;
	for (i = 0; i < mem->nregions; i++)
		mapping_put(mem->regions[i].mapping);
	table_free(mem);
}

/* Index of the last region starting at or below gpa if gpa lies in it, else -1. */
static inline int find_gpa(const struct vh_memory *mem, uint64_t gpa)
{
	const struct vh_memory_region *r = mem->regions;
	unsigned lo = 0, n = mem->nregions;

	/* fixed number of halvings for a given n: no data-dependent early exit */
	while (n > 1) {
		unsigned half = n / 2;

		if (r[lo + half].gpa <= gpa)
			lo += half;
		n -= half;
	}
	if (mem->nregions == 0 || gpa - r[lo].gpa >= r[lo].size)
		return -1;
	return (int)lo;
}

/* find_gpa() through the GPA index first. */
static inline int index_find(const struct vh_memory *mem, uint64_t gpa)
{
	const struct vh_memory_slot *s =
		&mem->index[(gpa * mem->index_mul) >> (64 - VH_MEMORY_INDEX_BITS)];

	if (gpa - s->gpa < s->size)
		return (int)s->idx;
	return find_gpa(mem, gpa);
}

static inline int find_uaddr(const struct vh_memory *mem, uint64_t uaddr)
{
	const struct vh_memory_region *r = mem->regions;
	const uint16_t *ix = mem->by_uaddr;
	unsigned lo = 0, n = mem->nregions;

	while (n > 1) {
		unsigned half = n / 2;

		if (r[ix[lo + half]].uaddr <= uaddr)
			lo += half;
		n -= half;
	}
	if (mem->nregions == 0 || uaddr - r[ix[lo]].uaddr >= r[ix[lo]].size)
		return -1;
	return ix[lo];
}

void *vh_memory_gpa_to_host_slow(const struct vh_memory *mem, uint64_t gpa, uint64_t len)
{
	const struct vh_memory_region *r;
	int i = index_find(mem, gpa);
	uint64_t off;

	if (i < 0)
		return NULL;
	r = &mem->regions[i];
	off = gpa - r->gpa;
	if (len > r->size - off)
		return NULL;
	/* the table is otherwise read-only; the hint is a relaxed atomic owned by nobody */
	__atomic_store_n((unsigned *)&mem->hint, (unsigned)i, __ATOMIC_RELAXED);
	return r->host + off;
}

int vh_memory_find(const struct vh_memory *mem, uint64_t gpa)
{
	int i;

	if (!mem)
		return -EINVAL;
	i = index_find(mem, gpa);
	return i < 0 ? -ENOENT : i;
}

static const struct vh_memory_region *uaddr_region(const struct vh_memory *mem, uint64_t uaddr,
						   uint64_t len)
{
	const struct vh_memory_region *r;
	unsigned h;
	int i;

	if (!mem)
		return NULL;
	h = __atomic_load_n(&mem->uaddr_hint, __ATOMIC_RELAXED);
	r = &mem->regions[h];
	if (uaddr - r->uaddr < r->size && len <= r->size - (uaddr - r->uaddr))
		return r;
	i = find_uaddr(mem, uaddr);
	if (i < 0)
		return NULL;
	r = &mem->regions[i];
	if (len > r->size - (uaddr - r->uaddr))
		return NULL;
	__atomic_store_n((unsigned *)&mem->uaddr_hint, (unsigned)i, __ATOMIC_RELAXED);
	return r;
}

void *vh_memory_uaddr_to_host(const struct vh_memory *mem, uint64_t uaddr, uint64_t len)
{
	const struct vh_memory_region *r = uaddr_region(mem, uaddr, len);

	return r ? r->host + (uaddr - r->uaddr) : NULL;
}

int vh_memory_uaddr_to_gpa(const struct vh_memory *mem, uint64_t uaddr, uint64_t len,
			   uint64_t *gpa)
{
	const struct vh_memory_region *r = uaddr_region(mem, uaddr, len);

	if (!r)
		return -EFAULT;
	if (gpa)
		*gpa = r->gpa + (uaddr - r->uaddr);
	return 0;
}

int vh_memory_gpa_to_iov(const struct vh_memory *mem, uint64_t gpa, uint64_t len,
			 struct iovec *iov, unsigned max_iov)
{
	uint64_t end;
	unsigned n = 0;

	if (!mem || (max_iov && !iov))
		return -EINVAL;
	if (len == 0)
		return 0;
	if (__builtin_add_overflow(gpa, len, &end))
		return -EFAULT;
	/* each step consumes a whole region (or the rest of the buffer): at most nregions steps */
	while (gpa < end) {
		const struct vh_memory_region *r;
		uint64_t off, chunk;
		unsigned h = __atomic_load_n(&mem->hint, __ATOMIC_RELAXED);
		int i;

		r = &mem->regions[h];
		off = gpa - r->gpa;
		if (off >= r->size) {
			i = index_find(mem, gpa);
			if (i < 0)
				return -EFAULT;
			r = &mem->regions[i];
			off = gpa - r->gpa;
			__atomic_store_n((unsigned *)&mem->hint, (unsigned)i, __ATOMIC_RELAXED);
		}
		chunk = r->size - off;
		if (chunk > end - gpa)
			chunk = end - gpa;
		if (chunk > SIZE_MAX)
			return -EFAULT;
		/* out of iovecs: keep walking so that an unmapped byte still reports -EFAULT */
		if (n < max_iov) {
			iov[n].iov_base = r->host + off;
			iov[n].iov_len = (size_t)chunk;
		}
		n++;
		gpa += chunk;
	}
	return n > max_iov ? -ENOBUFS : (int)n;
}

/* ---- RCU-like publication ------------------------------------------------------------------ */

struct vh_memory_retired {
	struct vh_memory *mem;
	uint64_t gen; /* readers active with a generation below this may still hold mem */
	struct vh_memory_retired *next;
};

int vh_memory_rcu_init(struct vh_memory_rcu *rcu, struct vh_memory *initial)
{
	int ret;

	if (!rcu)
		return -EINVAL;
	memset(rcu, 0, sizeof(*rcu));
	ret = pthread_mutex_init(&rcu->lock, NULL);
	if (ret)
		return -ret;
	rcu->cur = initial;
	rcu->gen = 1;
	return 0;
}

int vh_memory_rcu_register(struct vh_memory_rcu *rcu, struct vh_memory_reader *reader)
{
	if (!rcu || !reader)
		return -EINVAL;
	pthread_mutex_lock(&rcu->lock);
	__atomic_store_n(&reader->active, 0, __ATOMIC_RELAXED);
	reader->rcu = rcu;
	reader->next = rcu->readers;
	rcu->readers = reader;
	pthread_mutex_unlock(&rcu->lock);
	return 0;
}

void vh_memory_rcu_unregister(struct vh_memory_reader *reader)
{
	struct vh_memory_rcu *rcu;
	struct vh_memory_reader **pp;

	if (!reader || !reader->rcu)
		return;
	rcu = reader->rcu;
	pthread_mutex_lock(&rcu->lock);
	for (pp = &rcu->readers; *pp; pp = &(*pp)->next) {
		if (*pp == reader) {
			*pp = reader->next;
			break;
		}
	}
	pthread_mutex_unlock(&rcu->lock);
	reader->next = NULL;
	reader->rcu = NULL;
}

static int reader_may_hold(const struct vh_memory_rcu *rcu, uint64_t gen)
{
	const struct vh_memory_reader *r;

	for (r = rcu->readers; r; r = r->next) {
		uint64_t a = __atomic_load_n(&r->active, __ATOMIC_ACQUIRE);

		if (a != 0 && a < gen)
			return 1;
	}
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Releases what no reader can hold, waiting up to timeout_ms. Called with the lock held. */
static int reclaim_locked(struct vh_memory_rcu *rcu, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)timeout_ms;
	int left;

	/* pairs with the fence in vh_memory_read_lock(): our pointer/generation stores come
	 * before the loads of the readers' `active` */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (;;) {
		struct vh_memory_retired **pp = &rcu->retired;

		left = 0;
		while (*pp) {
			struct vh_memory_retired *e = *pp;

			if (reader_may_hold(rcu, e->gen)) {
				left++;
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			vh_memory_unref(e->mem);
			free(e);
		}
		if (!left || now_ms() >= deadline)
			break;
		{
			struct timespec ts = { 0, 50 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	return left;
}

int vh_memory_rcu_publish(struct vh_memory_rcu *rcu, struct vh_memory *mem, int timeout_ms)
{
	struct vh_memory_retired *e = NULL;
	struct vh_memory *old;
	int left;

	if (!rcu)
		return -EINVAL;
	pthread_mutex_lock(&rcu->lock);
	/* publishers serialise on the lock, so cur cannot change between here and the swap;
	 * the retirement record is allocated first so that a failure changes nothing */
	if (__atomic_load_n(&rcu->cur, __ATOMIC_RELAXED)) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&rcu->lock);
			return -ENOMEM;
		}
	}
	old = __atomic_exchange_n(&rcu->cur, mem, __ATOMIC_SEQ_CST);
	if (e) {
		e->mem = old;
		e->gen = __atomic_add_fetch(&rcu->gen, 1, __ATOMIC_SEQ_CST);
		e->next = rcu->retired;
		rcu->retired = e;
	} else {
		__atomic_add_fetch(&rcu->gen, 1, __ATOMIC_SEQ_CST);
	}
	left = reclaim_locked(rcu, timeout_ms);
	pthread_mutex_unlock(&rcu->lock);
	return left;
}

int vh_memory_rcu_reclaim(struct vh_memory_rcu *rcu, int timeout_ms)
{
	int left;

	if (!rcu)
		return -EINVAL;
	pthread_mutex_lock(&rcu->lock);
	left = reclaim_locked(rcu, timeout_ms);
	pthread_mutex_unlock(&rcu->lock);
	return left;
}

void vh_memory_rcu_destroy(struct vh_memory_rcu *rcu)
{
	struct vh_memory_retired *e;

	if (!rcu)
		return;
	while ((e = rcu->retired)) {
		rcu->retired = e->next;
		vh_memory_unref(e->mem);
		free(e);
	}
	vh_memory_unref(rcu->cur);
	rcu->cur = NULL;
	pthread_mutex_destroy(&rcu->lock);
}

int vh_memory_same_host(const struct vh_memory *a, const struct vh_memory *b, uint64_t gpa,
			uint64_t len)
{
	int ia, ib;
	const struct vh_memory_region *ra, *rb;

	if (!a || !b)
		return 0;
	ia = find_gpa(a, gpa);
	ib = find_gpa(b, gpa);
	if (ia < 0 || ib < 0)
		return 0;
	ra = &a->regions[ia];
	rb = &b->regions[ib];
	if (len > ra->size - (gpa - ra->gpa) || len > rb->size - (gpa - rb->gpa))
		return 0;
	/* the same mapping object (or both local) means the same memory, alive while b is */
	return ra->mapping == rb->mapping && ra->host + (gpa - ra->gpa) == rb->host + (gpa - rb->gpa);
}
