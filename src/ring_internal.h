/* SPDX-License-Identifier: MIT */
/*
 * Ring internals shared by ring.c (setup, dispatch, helpers), ring_split.c and ring_packed.c
 * (one implementation of each layout, device and driver side). Not installed.
 */
#ifndef LIBVHOST_RING_INTERNAL_H
#define LIBVHOST_RING_INTERNAL_H

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <linux/virtio_ring.h>
#include <libvhost/ring.h>
#include "internal.h"

/* Packed flag bits as masks (the UAPI header gives them as shifts). */
#define VHP_PACKED_F_AVAIL ((uint16_t)(1u << VRING_PACKED_DESC_F_AVAIL))
#define VHP_PACKED_F_USED  ((uint16_t)(1u << VRING_PACKED_DESC_F_USED))
#define VHP_PACKED_WRAP_SHIFT VRING_PACKED_EVENT_F_WRAP_CTR

/* Largest chain total the spec allows (2^32 bytes). */
#define VHP_MAX_CHAIN_BYTES (1ull << 32)

/*
 * Guest-memory accessors. Ring memory is shared with a peer that may change it at any time, so
 * every field is read exactly once into a local (relaxed atomic loads: the compiler can
 * neither re-read nor tear them) and ordering comes from the explicit acquire/release points
 * in the layout code.
 */
static inline uint16_t vhp_ld16(const void *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static inline uint32_t vhp_ld32(const void *p)
{
	return le32toh(__atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED));
}

static inline uint64_t vhp_ld64(const void *p)
{
	return le64toh(__atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED));
}

static inline void vhp_st16(void *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELAXED);
}

static inline void vhp_st32(void *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)p, htole32(v), __ATOMIC_RELAXED);
}

static inline void vhp_st64(void *p, uint64_t v)
{
	__atomic_store_n((uint64_t *)p, htole64(v), __ATOMIC_RELAXED);
}

/* ---- Device side ---------------------------------------------------------------------- */

/* The three ring areas as seen from this process. */
union vhp_rings {
	struct {
		struct vring_desc *desc;
		struct vring_avail *avail;   /* written by the driver */
		struct vring_used *used;     /* written by the device */
	} s;
	struct {
		struct vring_packed_desc *desc;
		struct vring_packed_desc_event *driver; /* written by the driver */
		struct vring_packed_desc_event *device; /* written by the device */
	} p;
};

struct vh_vq {
	const struct vh_memory *mem;
	union vhp_rings r;
	uint16_t num;
	uint16_t mask;            /* split: num - 1 */
	uint16_t last_avail;      /* split: free-running; packed: position */
	uint16_t shadow_avail;    /* split: avail idx seen by the last acquire load */
	uint16_t used_idx;        /* split: free-running; packed: position */
	uint8_t avail_wrap;       /* packed */
	uint8_t used_wrap;        /* packed */
	uint8_t packed;
	uint8_t event_idx;
	uint8_t indirect;
	uint8_t in_order;
	uint8_t notify_on_empty;
	uint8_t notify_enabled;   /* re-arm kicks when a pop finds the ring empty */
	uint8_t armed;            /* the kick event already names armed_idx (and armed_wrap) */
	uint8_t armed_wrap;
	uint16_t armed_idx;
	int err;                  /* 0, or -EIO once broken (sticky) */
	enum vh_vq_fault fault;
	uint32_t inflight;        /* popped, not pushed */
	uint32_t notify_added;    /* split: used idx steps, packed: descriptors, since the last
				   * vh_vq_should_notify() */
	unsigned max_indirect;
	uint16_t *ndesc;          /* packed: ring descriptors per buffer id */
	uint64_t *in_len;         /* IN_ORDER: writable bytes per id (batched used entries) */
	uint8_t *ind_buf;         /* bounce buffer for indirect tables crossing regions */
	unsigned tc_idx;          /* region of the last translation (a hint, checked) */
	struct vh_dirty_log *dlog;
	uint64_t log_gpa;         /* GPA of the used ring (split) / descriptor ring (packed) */
	struct vh_logger log;
};

/* Marks the ring broken (cold path); returns -EIO. */
int vhp_vq_fail(struct vh_vq *vq, enum vh_vq_fault fault);

/*
 * Walk state of one element, kept in locals: the project builds with -fno-strict-aliasing, so
 * counters kept in the element itself would be reloaded after every iovec store.
 */
struct vhp_cursor {
	struct iovec *iov;
	uint64_t *gpa;
	uint32_t cap;
	uint32_t n;        /* pieces so far */
	uint32_t in_n;     /* of which device-writable */
	uint64_t total;    /* bytes, both directions */
	uint64_t in_len;
};

static inline __attribute__((always_inline)) void vhp_cursor_start(struct vhp_cursor *c,
								   const struct vh_vq_elem *e)
{
	c->iov = e->iov;
	c->gpa = e->iov_gpa;
	c->cap = e->iov_cap;
	c->n = 0;
	c->in_n = 0;
	c->total = 0;
	c->in_len = 0;
}

static inline __attribute__((always_inline)) void vhp_cursor_finish(const struct vhp_cursor *c,
								    struct vh_vq_elem *e)
{
	e->out_num = c->n - c->in_n;
	e->in_num = c->in_n;
	e->out_len = c->total - c->in_len;
	e->in_len = c->in_len;
}

/*
 * The region of the last translation of the slower walks (chains, indirect tables), copied
 * out of the (immutable) memory table for one batch, so a buffer in the same region as the
 * one before costs a subtraction and two compares on registers. mem, index and mul are what
 * a miss needs (vhp_tc_lookup()).
 */
struct vhp_tcache {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
	const struct vh_memory *mem;
	const struct vh_memory_slot *index; /* mem->index */
	uint64_t mul;             /* mem->index_mul */
	unsigned idx;             /* index of the region in mem */
};

static inline __attribute__((always_inline)) void vhp_tc_set(struct vhp_tcache *tc, unsigned i)
{
	const struct vh_memory_region *r = &tc->mem->regions[i];

	tc->gpa = r->gpa;
	tc->size = r->size;
	tc->host = r->host;
	tc->idx = i;
}

/* Starts a batch with the region this ring used last. The index is a hint kept across table
 * changes, so it is checked; a table always has a regions[0] (zero-sized when empty). */
static inline __attribute__((always_inline)) void vhp_tcache_load(struct vhp_tcache *tc,
								  const struct vh_vq *vq)
{
	tc->mem = vq->mem;
	tc->index = vq->mem->index;
	tc->mul = vq->mem->index_mul;
	vhp_tc_set(tc, vq->tc_idx < vq->mem->nregions ? vq->tc_idx : 0);
}

/* Ends a batch: the next one starts from the region used last. */
static inline __attribute__((always_inline)) void vhp_tcache_save(const struct vhp_tcache *tc,
								  struct vh_vq *vq)
{
	vq->tc_idx = tc->idx;
}

/* The fast-path test of a buffer against a region: [addr, addr + len) inside it and len != 0
 * (len - 1 wraps to 2^64 - 1 for 0, which no region size exceeds). off is addr minus the
 * region's GPA (wrapped to a huge value below the region). */
static inline __attribute__((always_inline)) int vhp_tc_fits(uint64_t off, uint32_t len,
							     uint64_t size)
{
	return off < size && (uint64_t)len - 1 < size - off;
}

/* Miss of the table's GPA index (a hole, a granule two regions share, or no region):
 * binary search. Returns 1 with tc moved to the region holding all of [addr, addr + len),
 * else 0. */
int vhp_tc_search(struct vhp_tcache *tc, uint64_t addr, uint32_t len);

/*
 * The table's GPA index alone (struct vh_memory; no search, no call, so the pop loops can
 * use it without spilling their state): the slot of addr if its region holds all of
 * [addr, addr + len) and len != 0, else NULL. An empty slot has size 0 and fits nothing.
 */
static inline __attribute__((always_inline)) const struct vh_memory_slot *
vhp_ix_slot(const struct vh_memory_slot *index, uint64_t mul, uint64_t addr)
{
	/* The slot's byte offset straight from the product: its top bits, times the slot size
	 * (a power of two), with the bits below masked off. */
	const unsigned sh = 64 - VH_MEMORY_INDEX_BITS - 5;

	_Static_assert(sizeof(struct vh_memory_slot) == 32, "slot size");
	return (const struct vh_memory_slot *)((const char *)index +
					       (((addr * mul) >> sh) & ~(uint64_t)31));
}

static inline __attribute__((always_inline)) const struct vh_memory_slot *
vhp_ix_probe(const struct vh_memory_slot *index, uint64_t mul, uint64_t addr, uint32_t len)
{
	const struct vh_memory_slot *s = vhp_ix_slot(index, mul, addr);

	if (vhp_unlikely(!vhp_tc_fits(addr - s->gpa, len, s->size)))
		return NULL;
	return s;
}

/* Same, giving the host address of addr (NULL: not in one region by the index). */
static inline __attribute__((always_inline)) uint8_t *
vhp_ix_host(const struct vh_memory_slot *index, uint64_t mul, uint64_t addr, uint32_t len)
{
	const struct vh_memory_slot *s = vhp_ix_slot(index, mul, addr);
	uint64_t off = addr - s->gpa;

	if (vhp_unlikely(!vhp_tc_fits(off, len, s->size)))
		return NULL;
	return s->host + off;
}

/*
 * [addr, addr + len) is not in tc's region: looks it up in another one. Returns 1 with tc
 * moved to the region holding the whole buffer, or 0 if no single region does (len 0,
 * unmapped, or across regions: the general walk splits or rejects it; tc is unchanged).
 */
static inline __attribute__((always_inline)) int vhp_tc_lookup(struct vhp_tcache *tc,
							       uint64_t addr, uint32_t len)
{
	const struct vh_memory_slot *r = vhp_ix_probe(tc->index, tc->mul, addr, len);

	if (vhp_likely(r != NULL)) {
		tc->gpa = r->gpa;
		tc->size = r->size;
		tc->host = r->host;
		tc->idx = r->idx;
		return 1;
	}
	return vhp_tc_search(tc, addr, len);
}

/* A buffer that needs more than the cached single-region case: another region, several
 * regions, no iovec room, or no mapping. Fills up to `room` pieces at iov (and gpa unless
 * NULL); returns pieces added or -EIO. May move tc to another region. */
int vhp_vq_add_buf_slow(struct vh_vq *vq, struct vhp_tcache *tc, struct iovec *iov,
			uint64_t *gpa, uint32_t room, uint64_t addr, uint32_t len);

/*
 * Returns a pointer to an indirect table of len bytes at addr (in guest memory when it lies in
 * one region, else a copy in vq->ind_buf made through a bounded byte cursor), or NULL after
 * marking the ring broken (length, bound or address fault).
 */
const void *vhp_vq_indirect_table(struct vh_vq *vq, struct vhp_tcache *tc, uint64_t addr,
				  uint32_t len);

/*
 * Appends descriptor buffer [addr, addr + len) to the element being walked. Hot path: a hit
 * in the batch's region cache and one iovec; everything else goes to vhp_vq_add_buf_slow().
 * Returns 0 or -EIO (ring marked broken).
 */
static inline __attribute__((always_inline)) int
vhp_vq_add_buf(struct vh_vq *vq, struct vhp_tcache *tc, struct vhp_cursor *c, uint64_t addr,
	       uint32_t len, int write)
{
	uint64_t off = addr - tc->gpa; /* wraps to a huge value below the region: a miss */
	int cnt;

	if (vhp_unlikely(len == 0))
		return vhp_vq_fail(vq, VH_VQ_FAULT_BUF_ZERO);
	if (write)
		c->in_len += len;
	else if (vhp_unlikely(c->in_n != 0))
		return vhp_vq_fail(vq, VH_VQ_FAULT_BUF_ORDER);
	/* A 64-bit sum of at most 2 * 32768 u32 lengths cannot overflow. */
	c->total += len;
	if (vhp_unlikely(c->total > VHP_MAX_CHAIN_BYTES))
		return vhp_vq_fail(vq, VH_VQ_FAULT_BUF_TOTAL);
	if (vhp_likely(off < tc->size && len <= tc->size - off && c->n < c->cap)) {
		c->iov[c->n].iov_base = tc->host + off;
		c->iov[c->n].iov_len = len;
		if (c->gpa)
			c->gpa[c->n] = addr;
		cnt = 1;
	} else {
		cnt = vhp_vq_add_buf_slow(vq, tc, c->iov + c->n, c->gpa ? c->gpa + c->n : NULL,
					  c->cap - c->n, addr, len);
		if (cnt < 0)
			return cnt;
	}
	c->n += (uint32_t)cnt;
	if (write)
		c->in_n += (uint32_t)cnt;
	return 0;
}

/*
 * Fast path of both layouts: a chain of one descriptor whose buffer lies in one region (the
 * caller found it: host is the buffer's address in this process) and an element with room
 * for one iovec (checked by the caller). Fills e completely,
 * and in_len[id] with the writable bytes when in_len is not NULL (IN_ORDER). The element's
 * pointers are read before anything is stored through them (no strict aliasing); the two
 * directions are written out separately so the counts are constants.
 */
static inline __attribute__((always_inline)) void
vhp_elem_one(struct vh_vq_elem *e, uint8_t *host, uint64_t addr, uint32_t len, int write,
	     uint16_t id, uint64_t *in_len)
{
	struct iovec *iov = e->iov;
	uint64_t *gpa = e->iov_gpa;

	iov->iov_base = host;
	iov->iov_len = len;
	if (gpa)
		*gpa = addr;
	e->id = id;
	e->ndesc = 1;
	if (write) {
		e->out_num = 0;
		e->in_num = 1;
		e->out_len = 0;
		e->in_len = len;
		if (in_len)
			in_len[id] = len;
	} else {
		e->out_num = 1;
		e->in_num = 0;
		e->out_len = len;
		e->in_len = 0;
		if (in_len)
			in_len[id] = 0;
	}
}

/*
 * The loop of both layouts for chains of direct descriptors that need no more than the GPA
 * index and iovec room (e.g. a block request's header, data and status), with its state in a
 * struct the compiler keeps in registers. Every buffer is looked up in the index, not
 * compared with the previous buffer's region first: the same instructions whatever the
 * number of regions and however buffers spread over them. Anything else (indirect, no room,
 * a buffer not inside one region, a readable buffer after a writable one, a chain above
 * 4 GiB) makes the caller hand the chain to its general walk, which starts over and reports
 * the fault.
 */
struct vhp_dchain {
	struct iovec *v, *vend;
	unsigned in_n;            /* device-writable pieces so far */
	uint64_t *g;
	uint64_t out_len, in_len;
};

static inline __attribute__((always_inline)) void
vhp_dchain_start(struct vhp_dchain *c, const struct vh_vq_elem *e, unsigned num)
{
	c->v = e->iov;
	c->in_n = 0;
	/* One bound for both the element's room and the chain length (a chain of more than
	 * num descriptors loops): the general walk tells which was hit. */
	c->vend = c->v + (e->iov_cap < num ? e->iov_cap : num);
	c->g = e->iov_gpa;
	c->out_len = 0;
	c->in_len = 0;
}

/* Adds one descriptor: 0, or 1 if the chain needs the general walk. A buffer the index
 * misses is searched for (vhp_tc_search() moves tc); tc is not moved on an index hit. */
static inline __attribute__((always_inline)) int
vhp_dchain_add(struct vhp_dchain *c, struct vhp_tcache *tc, uint64_t addr, uint32_t len,
	       uint16_t flags)
{
	uint8_t *host;

	if (vhp_unlikely((flags & VRING_DESC_F_INDIRECT) || c->v == c->vend))
		return 1;
	host = vhp_ix_host(tc->index, tc->mul, addr, len);
	if (vhp_unlikely(host == NULL)) {
		if (!vhp_tc_search(tc, addr, len))
			return 1;
		host = tc->host + (addr - tc->gpa);
	}
	if (flags & VRING_DESC_F_WRITE) {
		c->in_n++;
		c->in_len += len;
	} else if (vhp_unlikely(c->in_n != 0)) {
		return 1;
	} else {
		c->out_len += len;
	}
	c->v->iov_base = host;
	c->v->iov_len = len;
	c->v++;
	if (c->g)
		*c->g++ = addr;
	return 0;
}

/*
 * Start of the direct walk of an indirect table (both layouts): returns the table with c
 * started over its *n entries, or NULL with *r = 1 when the general walk must take the
 * descriptor (no INDIRECT_DESC, or NEXT with INDIRECT: it reports the fault) or *r = -EIO
 * when the table itself is bad (the ring is broken then).
 */
static inline __attribute__((always_inline)) const void *
vhp_dchain_table(struct vh_vq *vq, struct vhp_tcache *tc, struct vhp_dchain *c,
		 const struct vh_vq_elem *e, uint64_t addr, uint32_t len, uint16_t flags,
		 unsigned *n, int *r)
{
	const void *tab;

	*r = 1;
	if (!vq->indirect || (flags & VRING_DESC_F_NEXT))
		return NULL;
	tab = vhp_vq_indirect_table(vq, tc, addr, len);
	if (tab == NULL) {
		*r = -EIO;
		return NULL;
	}
	*n = len / 16u;
	/* The table's entries bound the chain in it (a longer one loops). */
	vhp_dchain_start(c, e, *n);
	return tab;
}

/* Fills e's counts and lengths; returns the number of descriptors, or 0 if the chain needs
 * the general walk (above 4 GiB). */
static inline __attribute__((always_inline)) unsigned
vhp_dchain_finish(const struct vhp_dchain *c, struct vh_vq_elem *e)
{
	unsigned k, in_n;

	/* At most num u32 lengths: the sum cannot overflow 64 bits. */
	if (vhp_unlikely(c->out_len + c->in_len > VHP_MAX_CHAIN_BYTES))
		return 0;
	k = (unsigned)(c->v - e->iov);
	in_n = c->in_n;
	e->out_num = k - in_n;
	e->in_num = in_n;
	e->out_len = c->out_len;
	e->in_len = c->in_len;
	return k;
}

static inline void vhp_vq_log(struct vh_vq *vq, uint64_t off, uint64_t len)
{
	if (vhp_unlikely(vq->dlog != NULL))
		(void)vh_dirty_log_mark(vq->dlog, vq->log_gpa + off, len);
}

/* Layout implementations (the public functions in ring.c dispatch on vq->packed once per
 * call). */
int vhp_split_init(struct vh_vq *vq);
int vhp_split_pop(struct vh_vq *vq, struct vh_vq_elem *elems, unsigned max);
int vhp_split_push(struct vh_vq *vq, const struct vh_vq_used *used, unsigned n);
int vhp_split_should_notify(struct vh_vq *vq);
void vhp_split_disable_notify(struct vh_vq *vq);
int vhp_split_enable_notify(struct vh_vq *vq);
int vhp_split_has_avail(struct vh_vq *vq);
int vhp_split_pop_head(struct vh_vq *vq, uint16_t head, struct vh_vq_elem *e);

int vhp_packed_init(struct vh_vq *vq);
int vhp_packed_pop(struct vh_vq *vq, struct vh_vq_elem *elems, unsigned max);
int vhp_packed_push(struct vh_vq *vq, const struct vh_vq_used *used, unsigned n);
int vhp_packed_should_notify(struct vh_vq *vq);
void vhp_packed_disable_notify(struct vh_vq *vq);
int vhp_packed_enable_notify(struct vh_vq *vq);
int vhp_packed_has_avail(struct vh_vq *vq);
int vhp_packed_pop_descs(struct vh_vq *vq, const struct vh_vq_desc *descs, unsigned n,
			 struct vh_vq_elem *e);

/* ---- Driver side ---------------------------------------------------------------------- */

/* Private per-id state; the device can overwrite ring memory, so nothing the driver needs to
 * free or account for is read back from it. */
struct vhp_drv_slot {
	uint64_t token;
	uint64_t in_len;   /* writable bytes (reported for in-order skipped buffers) */
	uint16_t ndesc;    /* ring descriptors taken */
	uint16_t last;     /* split: last descriptor of the chain (free-list splice) */
	uint8_t active;
	uint8_t pad[3];
};

struct vh_vq_driver {
	union vhp_rings r;
	uint16_t num;
	uint16_t mask;
	uint8_t packed;
	uint8_t event_idx;
	uint8_t in_order;
	uint8_t run_active;      /* in-order: a batched used entry is being expanded */
	int err;
	enum vh_vq_fault fault;
	uint16_t num_free;       /* free ring descriptors */
	uint16_t free_head;      /* split: descriptor free list; packed: id free list */
	uint16_t *free_next;
	struct vhp_drv_slot *slots; /* per id (split: head descriptor index) */
	uint16_t *fifo;          /* in-order: ids in the order they were made available */
	uint16_t fifo_head;
	uint16_t run_id;
	uint32_t run_len;
	unsigned inflight;
	/* split */
	uint16_t avail_idx;      /* next avail index (private) */
	uint16_t avail_pub;      /* last published */
	uint16_t kick_old;       /* avail index at the previous kick decision */
	uint16_t last_used;
	uint16_t next_desc;      /* in-order: next descriptor to use */
	/* packed */
	uint16_t next_avail;
	uint16_t next_used;
	uint8_t avail_wrap;
	uint8_t used_wrap;
	uint8_t pend;            /* a head whose flags wait for publish */
	uint16_t pend_pos;
	uint16_t pend_flags;
	uint32_t unpub;          /* descriptors added, not published */
	uint32_t kick_added;     /* descriptors published since the previous kick decision */
	uint16_t pub_pos;        /* next_avail / avail_wrap as of the last publish */
	uint8_t pub_wrap;
	/* indirect tables */
	uint8_t *ind_host;
	uint64_t ind_gpa;
	unsigned ind_max;
	uint64_t desc_gpa, driver_gpa, device_gpa;
	struct vh_logger log;
};

int vhp_drv_fail(struct vh_vq_driver *d, enum vh_vq_fault fault);

/* Hands a completed request to the caller and forgets its slot; the layout code frees the
 * descriptors. */
static inline struct vhp_drv_slot *vhp_drv_take(struct vh_vq_driver *d, uint16_t id,
						uint32_t len, struct vh_vq_driver_used *out)
{
	struct vhp_drv_slot *s = &d->slots[id];

	out->token = s->token;
	out->len = len;
	out->id = id;
	s->active = 0;
	d->inflight--;
	return s;
}

/* In order: a used entry naming run_id completes every buffer up to it. */
static inline void vhp_drv_run_start(struct vh_vq_driver *d, uint16_t id, uint32_t len)
{
	d->run_active = 1;
	d->run_id = id;
	d->run_len = len;
}

/* The next buffer of that run; those before run_id were used whole (spec: "assumed to have
 * been used completely"), so they report their whole writable length. */
static inline uint16_t vhp_drv_run_next(struct vh_vq_driver *d, uint32_t *len)
{
	uint16_t id = d->fifo[d->fifo_head];

	if (id == d->run_id) {
		*len = d->run_len;
		d->run_active = 0;
	} else {
		*len = d->slots[id].in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)d->slots[id].in_len;
	}
	d->fifo_head = (uint16_t)(d->fifo_head + 1u == d->num ? 0 : d->fifo_head + 1u);
	return id;
}

/* In order: remembers the order buffers were made available in. */
static inline void vhp_drv_fifo_push(struct vh_vq_driver *d, uint16_t id)
{
	unsigned q = d->fifo_head + d->inflight;

	d->fifo[q >= d->num ? q - d->num : q] = id;
}

static inline void *vhp_drv_ind_table(const struct vh_vq_driver *d, unsigned id, uint64_t *gpa)
{
	uint64_t off = (uint64_t)id * d->ind_max * 16u;

	*gpa = d->ind_gpa + off;
	return d->ind_host + off;
}

void vhp_split_drv_init(struct vh_vq_driver *d);
int vhp_split_drv_add(struct vh_vq_driver *d, const struct vh_vq_driver_req *reqs, unsigned n);
void vhp_split_drv_publish(struct vh_vq_driver *d);
int vhp_split_drv_should_kick(struct vh_vq_driver *d);
int vhp_split_drv_get_used(struct vh_vq_driver *d, struct vh_vq_driver_used *out,
			   unsigned max);
void vhp_split_drv_disable_cb(struct vh_vq_driver *d);
int vhp_split_drv_enable_cb(struct vh_vq_driver *d);

void vhp_packed_drv_init(struct vh_vq_driver *d);
int vhp_packed_drv_add(struct vh_vq_driver *d, const struct vh_vq_driver_req *reqs, unsigned n);
void vhp_packed_drv_publish(struct vh_vq_driver *d);
int vhp_packed_drv_should_kick(struct vh_vq_driver *d);
int vhp_packed_drv_get_used(struct vh_vq_driver *d, struct vh_vq_driver_used *out,
			    unsigned max);
void vhp_packed_drv_disable_cb(struct vh_vq_driver *d);
int vhp_packed_drv_enable_cb(struct vh_vq_driver *d);

#endif
