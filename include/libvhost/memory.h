/* SPDX-License-Identifier: MIT */
/*
 * Guest memory: the device-side memory table, the driver-side guest memory allocator and the
 * dirty log.
 *
 * Device side (struct vh_memory)
 * ------------------------------
 * A vh_memory is an IMMUTABLE snapshot of the guest memory table: regions sorted by
 * guest-physical address (GPA), each mapped into this process. A change (SET_MEM_TABLE,
 * ADD_MEM_REG, REM_MEM_REG) never edits a table: it builds a new one. Building either fully
 * succeeds or returns a negative errno, unmaps whatever it mapped and leaves the old table
 * untouched. A table derived from an older one (add/remove) shares the mappings of the regions
 * it keeps; every mapping is reference counted and unmapped when the last table using it is
 * released with vh_memory_unref().
 *
 * Fd ownership: region fds passed to the build functions are BORROWED. The table keeps no fd
 * (the mapping keeps the file alive); the caller closes its fds after the call, whether it
 * succeeded or not.
 *
 * Mapping rules (each checked before any mmap): size != 0; gpa + size, userspace_addr + size
 * and mmap_offset + size do not wrap; no two regions overlap in GPA or in front-end virtual
 * address; the fd is a regular file opened read-write and mmap_offset + size <= its size
 * (otherwise an access would raise SIGBUS); at most VH_MEMORY_MAX_REGIONS regions. Regions are
 * mapped MAP_SHARED | MAP_NORESERVE from the offset aligned down to the file's page size
 * (hugetlbfs page size found with fstatfs), and marked MADV_DONTDUMP.
 *
 * Replacing the table under running workers (the rule)
 * ----------------------------------------------------
 * A worker may dereference host pointers of a table only while it holds that table. A table is
 * released (and its mappings possibly unmapped) only when no worker can still hold it. Two ways
 * to obey this:
 *  1. Quiesce: the owner stops every ring that uses the table (waits until each worker has left
 *     its ring loop), swaps the pointer, restarts the rings, then calls vh_memory_unref() on the
 *     old table.
 *  2. vh_memory_rcu (below): workers bracket each batch with vh_memory_read_lock()/
 *     vh_memory_read_unlock() and use only the table returned by the lock; the owner publishes
 *     a new table with vh_memory_rcu_publish(), which waits until every registered reader has
 *     left the section that could still see the old table before releasing it. Host pointers
 *     obtained inside a section must not be used after the unlock.
 *
 * The same holds for pointers a worker keeps across batches (translated ring addresses): they
 * must be translated again through the new table before the old one is released. Regions that
 * the new table shares with the old one (vh_memory_add/remove, identical regions in
 * vh_memory_map_update) keep their host addresses; vh_memory_same_host() tells.
 *
 * Threads: building, vh_memory_ref() and vh_memory_unref() belong to the owner (the control
 * thread); lookups are safe from any number of threads at once (the only thing they write is
 * the last-hit hint, a relaxed atomic).
 *
 * Translations
 * ------------
 * vh_memory_gpa_to_host() is the hot path: a last-hit check inline, then the GPA index (O(1),
 * below), then a binary search. It returns a pointer only if [gpa, gpa + len) lies in ONE
 * region; otherwise NULL. Buffers that may cross regions go through vh_memory_gpa_to_iov(),
 * which splits them per region and fails with -EFAULT if any byte is unmapped. Vring addresses
 * from SET_VRING_ADDR are front-end virtual addresses: use vh_memory_uaddr_to_host() (O(log n),
 * over a second index).
 *
 * Driver side (struct vh_guest_mem)
 * ---------------------------------
 * Memory a driver (virtio-user style client, tests) shares with a device: one sealed memfd,
 * mapped MAP_SHARED once, exposed as 1..VH_MEMORY_MAX_REGIONS regions (struct vh_region from
 * device.h) that are contiguous in this process, plus a bump allocator of aligned chunks that
 * never cross a region boundary.
 *
 * Dirty log (struct vh_dirty_log)
 * -------------------------------
 * The vhost-user log: one bit per 4 KiB guest page, bit (gpa / 4096) % 8 of byte
 * gpa / 4096 / 8, set with an atomic OR. Writes are bounds-checked: a page past the end of the
 * log is reported (-ERANGE), never written. The same replacement rule as for the memory table
 * applies to a log in use by workers.
 */
#ifndef LIBVHOST_MEMORY_H
#define LIBVHOST_MEMORY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <libvhost/log.h>
#include <libvhost/wire.h>
#include <libvhost/device.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most regions a table holds (the vhost-user memory slot limit). */
#define VH_MEMORY_MAX_REGIONS VH_USER_MAX_MEM_SLOTS

/* ---- Device-side memory table ------------------------------------------------------------ */

struct vh_mapping; /* one mmap, shared by the tables that use it (internal) */

/* One region of a table. Read-only for callers. */
struct vh_memory_region {
	uint64_t gpa;    /* guest-physical start */
	uint64_t size;   /* bytes, never 0 */
	uint8_t *host;   /* host address of gpa in this process */
	uint64_t uaddr;  /* front-end virtual address of gpa */
	uint64_t mmap_offset;       /* offset of the region in its file, as received */
	struct vh_mapping *mapping; /* NULL when the table does not own the memory */
};

/*
 * GPA index: VH_MEMORY_INDEX_SLOTS slots, slot s for the guest-physical addresses whose bits
 * k .. k + VH_MEMORY_INDEX_BITS - 1 equal s, where the granule 2^k (at least a page) is the
 * smallest that puts the table's whole GPA span in distinct slots. Each slot holds a copy of
 * the region covering most of its granule (size 0: none), so a lookup reads one slot and
 * checks the range against it; a miss (a hole, a granule shared by two regions, an address
 * outside the span) falls back to the binary search. Built with the table, read-only after.
 */
#define VH_MEMORY_INDEX_BITS 10
#define VH_MEMORY_INDEX_SLOTS (1u << VH_MEMORY_INDEX_BITS)

struct vh_memory_slot {
	uint64_t gpa;    /* the region's, as in regions[idx] */
	uint64_t size;   /* 0: empty slot, nothing fits */
	uint8_t *host;
	uint32_t idx;    /* index into regions */
	uint32_t pad;
};

/*
 * A memory table. Read-only once built; the fields are public only so the inline fast path can
 * read them. `hint` is the last-hit cache: a relaxed atomic, written only on a miss, so workers
 * that keep hitting the same region share the cache line without writing it.
 */
struct vh_memory {
	unsigned nregions;
	unsigned hint;                   /* index of the last region hit, < max(nregions, 1) */
	unsigned uaddr_hint;             /* same, for front-end addresses (index into regions) */
	unsigned refcnt;                 /* changed only by the owner (control thread) */
	uint16_t *by_uaddr;              /* region indexes sorted by uaddr */
	struct vh_memory_slot *index;    /* VH_MEMORY_INDEX_SLOTS slots, see above */
	uint64_t index_mul;              /* 2^(64 - VH_MEMORY_INDEX_BITS - k): the slot of gpa is
					  * (gpa * index_mul) >> (64 - VH_MEMORY_INDEX_BITS) */
	struct vh_logger log;            /* copied at build time; its opaque must outlive the table */
	/* nregions entries sorted by gpa; at least one (zero-sized) entry so the hint is valid */
	struct vh_memory_region regions[];
};

/*
 * SET_MEM_TABLE: builds a table of n regions (0..VH_MEMORY_MAX_REGIONS, any order), region i
 * mapped from fds[i]. fds are borrowed. log may be NULL. On success *out holds a new table with
 * one reference; on failure *out is untouched and nothing stays mapped.
 */
int vh_memory_map(struct vh_memory **out, const struct vh_mem_region *regions, const int *fds,
		  unsigned n, const struct vh_logger *log);

/*
 * SET_MEM_TABLE replacing `old` (may be NULL): like vh_memory_map, but a region identical to
 * one of old (same gpa, size, userspace_addr, mmap_offset, and an fd for the same file, by
 * device and inode) shares old's mapping instead of being mapped again, so its host pointers
 * (e.g. a ring's) stay valid. QEMU resends the whole table on every memory change.
 */
int vh_memory_map_update(struct vh_memory **out, const struct vh_memory *old,
			 const struct vh_mem_region *regions, const int *fds, unsigned n,
			 const struct vh_logger *log);

/* An empty table (no regions), e.g. before the first SET_MEM_TABLE. */
int vh_memory_new_empty(struct vh_memory **out, const struct vh_logger *log);

/*
 * ADD_MEM_REG: *out = old plus one region mapped from fd (borrowed). Fails (-EINVAL) on the
 * same rules as vh_memory_map, including overlap with a region of old, and with -ENOSPC when
 * old already has VH_MEMORY_MAX_REGIONS regions. old is unchanged either way.
 */
int vh_memory_add(struct vh_memory **out, const struct vh_memory *old,
		  const struct vh_mem_region *region, int fd);

/*
 * REM_MEM_REG: *out = old without the region whose guest_phys_addr, memory_size and
 * userspace_addr equal `region`'s (mmap_offset is ignored, as QEMU does). -ENOENT if there is
 * no such region. old is unchanged either way; the removed mapping is unmapped when old is
 * released.
 */
int vh_memory_remove(struct vh_memory **out, const struct vh_memory *old,
		     const struct vh_mem_region *region);

/*
 * A table over memory already mapped in this process (driver side, in-process tests):
 * host = (uint8_t *)userspace_addr, nothing is mapped or unmapped, fds are ignored. Same
 * validation as vh_memory_map apart from the file checks.
 */
int vh_memory_new_local(struct vh_memory **out, const struct vh_region *regions, unsigned n,
			const struct vh_logger *log);

/*
 * What a vhost-user back-end would do with the driver's regions: maps each region's fd at its
 * fd_offset (a separate mapping per region, as in another process) with userspace_addr as the
 * front-end address. Same rules and results as vh_memory_map.
 */
int vh_memory_map_regions(struct vh_memory **out, const struct vh_region *regions, unsigned n,
			  const struct vh_logger *log);

/* Takes one more reference (owner thread only). Returns mem. */
struct vh_memory *vh_memory_ref(struct vh_memory *mem);
/* Drops one reference; the last one frees the table and unmaps the mappings no other table
 * uses. NULL is allowed. See "Replacing the table under running workers". */
void vh_memory_unref(struct vh_memory *mem);

/* Out-of-line part of vh_memory_gpa_to_host(): the GPA index, then a binary search; updates
 * the hint. */
void *vh_memory_gpa_to_host_slow(const struct vh_memory *mem, uint64_t gpa, uint64_t len);

/*
 * Host pointer for [gpa, gpa + len) if the whole range lies in one region, else NULL.
 * len 0 is allowed (gpa must still be mapped).
 */
static inline void *vh_memory_gpa_to_host(const struct vh_memory *mem, uint64_t gpa,
					  uint64_t len)
{
	const struct vh_memory_region *r =
		&mem->regions[__atomic_load_n(&mem->hint, __ATOMIC_RELAXED)];
	uint64_t off = gpa - r->gpa; /* wraps to a huge value below the region: rejected */

	if (__builtin_expect(off < r->size && len <= r->size - off, 1))
		return r->host + off;
	return vh_memory_gpa_to_host_slow(mem, gpa, len);
}

/* Same for a front-end virtual address (vring addresses). NULL if not inside one region. */
void *vh_memory_uaddr_to_host(const struct vh_memory *mem, uint64_t uaddr, uint64_t len);

/* Front-end virtual address -> GPA; -EFAULT if [uaddr, uaddr + len) is not in one region. */
int vh_memory_uaddr_to_gpa(const struct vh_memory *mem, uint64_t uaddr, uint64_t len,
			   uint64_t *gpa);

/*
 * Whole-range translation: fills iov[0..n) with the host pieces of [gpa, gpa + len), one per
 * region crossed (adjacent pieces are not merged). Returns n (0 for len 0), -EFAULT if any byte
 * is unmapped or gpa + len wraps (checked first), else -ENOBUFS if more than max_iov pieces are
 * needed. iov is undefined after a failure.
 */
int vh_memory_gpa_to_iov(const struct vh_memory *mem, uint64_t gpa, uint64_t len,
			 struct iovec *iov, unsigned max_iov);

/* Index of the region holding gpa, or -ENOENT. The GPA index, then a binary search; no hint
 * update. */
int vh_memory_find(const struct vh_memory *mem, uint64_t gpa);

/*
 * 1 if [gpa, gpa + len) translates to the same host address in both tables through the same
 * mapping (so pointers into it taken from `a` stay valid while `b` lives), else 0.
 */
int vh_memory_same_host(const struct vh_memory *a, const struct vh_memory *b, uint64_t gpa,
			uint64_t len);

static inline unsigned vh_memory_nregions(const struct vh_memory *mem)
{
	return mem->nregions;
}

/* ---- Publishing a table to worker threads (RCU-like) ------------------------------------- */

struct vh_memory_rcu;

/* One per worker thread; lives in the worker's memory. */
struct vh_memory_reader {
	uint64_t active;             /* generation seen at lock time; 0 = outside a section */
	struct vh_memory_rcu *rcu;
	struct vh_memory_reader *next;
};

struct vh_memory_retired;

struct vh_memory_rcu {
	struct vh_memory *cur;       /* atomic; the published table (may be NULL) */
	uint64_t gen;                /* atomic; bumped by every publish, starts at 1 */
	pthread_mutex_t lock;        /* protects readers and retired; never taken by readers */
	struct vh_memory_reader *readers;
	struct vh_memory_retired *retired; /* tables still possibly in use after a timeout */
};

/* Initialises rcu with `initial` (the rcu takes over the caller's reference; may be NULL). */
int vh_memory_rcu_init(struct vh_memory_rcu *rcu, struct vh_memory *initial);
/* Releases the published table and every retired one. No reader may be registered. */
void vh_memory_rcu_destroy(struct vh_memory_rcu *rcu);
/* Registers / unregisters a worker's reader (any thread, not inside a read section). */
int vh_memory_rcu_register(struct vh_memory_rcu *rcu, struct vh_memory_reader *reader);
void vh_memory_rcu_unregister(struct vh_memory_reader *reader);

/*
 * Publishes `mem` (takes over the caller's reference) and releases the previous table once no
 * reader can hold it. Waits at most timeout_ms for readers (-1: no limit); tables still held
 * then are kept and released by a later publish, vh_memory_rcu_reclaim() or destroy.
 * Returns the number of tables still waiting (0: all released).
 */
int vh_memory_rcu_publish(struct vh_memory_rcu *rcu, struct vh_memory *mem, int timeout_ms);
/* Retries releasing waiting tables; returns how many still wait. */
int vh_memory_rcu_reclaim(struct vh_memory_rcu *rcu, int timeout_ms);

/*
 * Worker side: enter a read section and get the current table (NULL if none). Costs one full
 * fence (the store of `active` must be visible before the table pointer is read); call once per
 * batch, not per request. Sections do not nest.
 */
static inline struct vh_memory *vh_memory_read_lock(struct vh_memory_reader *r)
{
	uint64_t g = __atomic_load_n(&r->rcu->gen, __ATOMIC_ACQUIRE);

	__atomic_store_n(&r->active, g, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&r->rcu->cur, __ATOMIC_ACQUIRE);
}

/* Leave the section: pointers obtained inside it must not be used any more. */
static inline void vh_memory_read_unlock(struct vh_memory_reader *r)
{
	__atomic_store_n(&r->active, 0, __ATOMIC_RELEASE);
}

/* ---- Driver side: guest memory allocator -------------------------------------------------- */

struct vh_guest_mem;

#define VH_GUEST_MEM_HUGETLB 0x1u /* back the memfd with hugetlbfs (MFD_HUGETLB, default size) */

struct vh_guest_mem_opts {
	uint64_t size;      /* total bytes wanted (rounded up, see nregions) */
	unsigned nregions;  /* 0 or 1 = one region; up to VH_MEMORY_MAX_REGIONS */
	unsigned flags;     /* VH_GUEST_MEM_* */
	uint64_t gpa_base;  /* GPA of the first region */
	uint64_t gpa_gap;   /* unmapped GPA bytes between consecutive regions (page multiple) */
};

/*
 * Creates the memfd (sealed against shrinking and growing), sizes it, maps it MAP_SHARED once
 * and splits it into nregions regions of equal size: each region is size / nregions rounded up
 * to the page size (2 MiB with HUGETLB). Region i has fd_offset = i * region size and
 * userspace_addr inside the single mapping. The guest memory owns the memfd and the mapping;
 * the fds in the regions it exposes are borrowed from it.
 */
int vh_guest_mem_new_opts(struct vh_guest_mem **gm, const struct vh_guest_mem_opts *opts);
/* One region at GPA 0. */
int vh_guest_mem_new(struct vh_guest_mem **gm, uint64_t size, unsigned flags);
/* Unmaps and closes. NULL is allowed. */
void vh_guest_mem_free(struct vh_guest_mem *gm);

/* The regions (valid until free) and their count. */
const struct vh_region *vh_guest_mem_regions(const struct vh_guest_mem *gm, unsigned *n);
/* The memfd (borrowed), the whole mapping and its size. */
int vh_guest_mem_fd(const struct vh_guest_mem *gm);
void *vh_guest_mem_base(const struct vh_guest_mem *gm);
uint64_t vh_guest_mem_size(const struct vh_guest_mem *gm);

/*
 * Allocates size bytes aligned to align (a power of two, 0 = 16) that do not cross a region
 * boundary; returns the GPA in *gpa and the pointer in this process in *host (either may be
 * NULL). Memory is zeroed when the guest memory is created, not on reuse. -ENOMEM if no region
 * has room, -EINVAL on size 0 or a bad alignment.
 */
int vh_guest_mem_alloc(struct vh_guest_mem *gm, uint64_t size, uint64_t align, uint64_t *gpa,
		       void **host);
/* Forgets every allocation (the memory is not cleared). */
void vh_guest_mem_alloc_reset(struct vh_guest_mem *gm);

/* Driver-side translation: NULL unless [gpa, gpa + len) lies in one region. */
void *vh_guest_mem_gpa_to_host(const struct vh_guest_mem *gm, uint64_t gpa, uint64_t len);
/* GPA of a pointer into the mapping; -EFAULT if [host, host + len) is not in one region. */
int vh_guest_mem_host_to_gpa(const struct vh_guest_mem *gm, const void *host, uint64_t len,
			     uint64_t *gpa);

/* ---- Dirty log ---------------------------------------------------------------------------- */

#define VH_LOG_PAGE_SHIFT 12
#define VH_LOG_PAGE_SIZE  (1ull << VH_LOG_PAGE_SHIFT)

/* A zero-initialised struct is a valid "no log". The struct owns its mapping. */
struct vh_dirty_log {
	uint8_t *bitmap;     /* NULL when no log is set */
	uint64_t size;       /* bitmap bytes */
	void *map_base;      /* what to munmap */
	size_t map_len;
};

/*
 * SET_LOG_BASE (LOG_SHMFD): maps size bytes of fd at offset (fd borrowed, not kept) and
 * replaces the current log, unmapping it. Validation (size 0, offset + size wrapping or past
 * the end of the file, fd not a regular read-write file, mmap failure) happens before anything
 * changes: on failure the log keeps its previous state.
 */
int vh_dirty_log_set(struct vh_dirty_log *log, int fd, uint64_t size, uint64_t offset);
/* The same over memory this process already has (no mapping is owned). */
int vh_dirty_log_set_local(struct vh_dirty_log *log, void *bitmap, uint64_t size);
/* Unmaps (if owned) and returns to "no log". */
void vh_dirty_log_clear(struct vh_dirty_log *log);

/* Smallest log in bytes covering guest memory [0, mem_end). */
uint64_t vh_dirty_log_size_for(uint64_t mem_end);

/*
 * Marks every page touched by [gpa, gpa + len) dirty (len 0 marks nothing). Pages beyond the
 * log are not written: returns -ERANGE if any page was out of range (the in-range pages are
 * marked), -EINVAL if no log is set, 0 otherwise. Safe from several threads at once.
 */
int vh_dirty_log_mark(struct vh_dirty_log *log, uint64_t gpa, uint64_t len);

/* 1 if the page holding gpa is marked, 0 if not, -ERANGE past the log, -EINVAL no log. */
int vh_dirty_log_test(const struct vh_dirty_log *log, uint64_t gpa);

/*
 * Reader for tests and the driver side: stores the page numbers (gpa >> 12) of marked pages in
 * ascending order into pages[0..max) and returns how many are marked in total (may exceed max).
 * With clear != 0, the bits are atomically cleared as they are read.
 */
int64_t vh_dirty_log_collect(struct vh_dirty_log *log, uint64_t *pages, uint64_t max,
			     int clear);

/*
 * Driver side: creates a memfd log covering guest memory [0, mem_end), maps it into `log`
 * (owned by log) and returns the memfd in *fd (owned by the caller, e.g. to send with
 * SET_LOG_BASE; size from log->size, offset 0).
 */
int vh_dirty_log_new_memfd(struct vh_dirty_log *log, uint64_t mem_end, int *fd);

#ifdef __cplusplus
}
#endif
#endif
