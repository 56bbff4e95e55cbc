/* SPDX-License-Identifier: MIT */
/*
 * Packed virtqueue: the one implementation of its descriptor, wrap-counter and event logic,
 * for the device side (pop/push/notify) and the driver side (add/publish/kick/get used).
 *
 * Layout (virtio 1.x, little-endian): a ring of num 16-byte descriptors {addr, len, id, flags}
 * used by both sides, a driver event suppression area {off_wrap, flags} written by the driver
 * and a device one written by the device. num need not be a power of two; positions run
 * 0..num-1 and each side flips its wrap counter (starting at 1) when it passes the end.
 * A descriptor is available when its AVAIL bit equals the driver's wrap counter and its USED
 * bit does not; used when both bits equal the device's wrap counter.
 */
#include <errno.h>
#include "ring_internal.h"

/* AVAIL/USED bits for a descriptor the driver makes available (AVAIL = wrap, USED = !wrap)
 * or the device marks used (both = wrap). */
static inline uint16_t avail_bits(uint8_t wrap)
{
	return wrap ? VHP_PACKED_F_AVAIL : VHP_PACKED_F_USED;
}

static inline uint16_t used_bits(uint8_t wrap)
{
	return wrap ? (uint16_t)(VHP_PACKED_F_AVAIL | VHP_PACKED_F_USED) : 0;
}

#define VHP_PACKED_F_BOTH ((uint16_t)(VHP_PACKED_F_AVAIL | VHP_PACKED_F_USED))

static inline int desc_avail(uint16_t flags, uint8_t wrap)
{
	return (flags & VHP_PACKED_F_BOTH) == avail_bits(wrap);
}

static inline int desc_used(uint16_t flags, uint8_t wrap)
{
	return (flags & VHP_PACKED_F_BOTH) == used_bits(wrap);
}

/* One step in the hot loops, which track the wrap counter as the AVAIL/USED bits an
 * available descriptor must carry (avail_bits(w)); passing the end flips both. */
static inline void step(uint16_t *pos, uint16_t *expect, uint16_t num)
{
	if (++*pos == num) {
		*pos = 0;
		*expect ^= VHP_PACKED_F_BOTH;
	}
}

static inline void advance(uint16_t *pos, uint8_t *wrap, uint16_t num, unsigned by)
{
	unsigned p = *pos + by;

	if (p >= num) {
		p -= num;
		*wrap ^= 1;
	}
	*pos = (uint16_t)p;
}

/*
 * Event-index test in packed terms. A suppression structure names a ring position plus the
 * wrap counter of the lap it belongs to; positions of the previous lap are mapped below zero
 * so one 16-bit window [old, new) covers a batch that crossed the end of the ring (batches are
 * smaller than the ring, checked by the callers).
 */
static inline int packed_need_event(uint16_t off_wrap, uint16_t new_pos, uint8_t wrap,
				    uint32_t added, uint16_t num)
{
	uint16_t off = off_wrap & 0x7fffu;

	if ((off_wrap >> VHP_PACKED_WRAP_SHIFT) != wrap)
		off = (uint16_t)(off - num);
	return vh_vring_need_event(off, new_pos, (uint16_t)(new_pos - added));
}

/* ---- Device side ---------------------------------------------------------------------- */

static void packed_write_kick_event(struct vh_vq *vq)
{
	struct vring_packed_desc_event *ev = vq->r.p.device;

	/* off_wrap before flags: a driver that sees DESC reads a current position. */
	vhp_st16(&ev->off_wrap, (uint16_t)(vq->last_avail |
					   ((unsigned)vq->avail_wrap << VHP_PACKED_WRAP_SHIFT)));
	vhp_st16(&ev->flags, VRING_PACKED_EVENT_FLAG_DESC);
	vq->armed = 1;
	vq->armed_idx = vq->last_avail;
	vq->armed_wrap = vq->avail_wrap;
}

int vhp_packed_init(struct vh_vq *vq)
{
	if (vq->event_idx)
		packed_write_kick_event(vq);
	else
		vhp_st16(&vq->r.p.device->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
	return 0;
}

static inline __attribute__((always_inline)) int
packed_walk_indirect(struct vh_vq *vq, struct vhp_tcache *tc, struct vhp_cursor *c,
		     uint64_t addr, uint32_t len)
{
	const struct vring_packed_desc *tab = vhp_vq_indirect_table(vq, tc, addr, len);
	unsigned i, n = len / 16u;

	if (tab == NULL)
		return -EIO;
	/* Table entries follow one another; only WRITE is meaningful in them. */
	for (i = 0; i < n; i++) {
		uint16_t flags = vhp_ld16(&tab[i].flags);

		if (vhp_unlikely(flags & VRING_DESC_F_INDIRECT))
			return vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_NESTED);
		if (vhp_unlikely(vhp_vq_add_buf(vq, tc, c, vhp_ld64(&tab[i].addr),
						vhp_ld32(&tab[i].len),
						flags & VRING_DESC_F_WRITE) < 0))
			return -EIO;
	}
	return 0;
}

/* Records a walked chain under its buffer id (checked) and finishes the element. */
static inline __attribute__((always_inline)) int
packed_take_id(struct vh_vq *vq, const struct vhp_cursor *c, struct vh_vq_elem *e, uint16_t id,
	       unsigned count)
{
	if (vhp_unlikely(id >= vq->num))
		return vhp_vq_fail(vq, VH_VQ_FAULT_PACKED_ID);
	/* Two buffers in flight under one id cannot both be completed correctly. */
	if (vhp_unlikely(vq->ndesc[id] != 0))
		return vhp_vq_fail(vq, VH_VQ_FAULT_PACKED_ID);
	vq->ndesc[id] = (uint16_t)count;
	if (vq->in_order)
		vq->in_len[id] = c->in_len;
	vhp_cursor_finish(c, e);
	e->id = id;
	e->ndesc = (uint16_t)count;
	return 0;
}

/* The general walk of the chain starting at *pos (its head already seen available with an
 * acquire load): indirect tables, buffers outside the cached region, elements short of
 * iovecs, and every fault. Reads the chain from the start, whatever the faster paths saw, and
 * advances *pos / *expect_bits (see step()) past it. Ends within num steps. */
static __attribute__((noinline)) int
packed_walk(struct vh_vq *vq, struct vhp_tcache *tc, const struct vring_packed_desc *ring,
	    uint16_t num, struct vh_vq_elem *e, uint16_t *pos, uint16_t *expect_bits)
{
	uint16_t p = *pos, id = 0, expect = *expect_bits;
	unsigned count = 0;
	struct vhp_cursor c;

	vhp_cursor_start(&c, e);
	for (;;) {
		const struct vring_packed_desc *d = &ring[p];
		uint16_t flags = vhp_ld16(&d->flags);
		uint64_t addr = vhp_ld64(&d->addr);
		uint32_t len = vhp_ld32(&d->len);

		/* The buffer id is the one in the last descriptor of the chain. */
		id = vhp_ld16(&d->id);
		if (vhp_unlikely((flags & VHP_PACKED_F_BOTH) != expect))
			return vhp_vq_fail(vq, VH_VQ_FAULT_PACKED_FLAGS);
		if (vhp_unlikely(++count > num))
			return vhp_vq_fail(vq, VH_VQ_FAULT_CHAIN_LEN);
		step(&p, &expect, num);
		if (vhp_unlikely(flags & VRING_DESC_F_INDIRECT)) {
			if (!vq->indirect)
				return vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_FEATURE);
			/* An indirect descriptor must be a list of its own. */
			if (count != 1 || (flags & VRING_DESC_F_NEXT))
				return vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_NEXT);
			if (packed_walk_indirect(vq, tc, &c, addr, len) < 0)
				return -EIO;
			break;
		}
		if (vhp_unlikely(vhp_vq_add_buf(vq, tc, &c, addr, len, flags & VRING_DESC_F_WRITE) < 0))
			return -EIO;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
	}
	if (vhp_unlikely(packed_take_id(vq, &c, e, id, count) < 0))
		return -EIO;
	*pos = p;
	*expect_bits = expect;
	return 0;
}

/* A chain from descriptor copies (inflight resubmission): the walk of packed_walk over an
 * array instead of the ring, with the chain shape checked against n. */
int vhp_packed_pop_descs(struct vh_vq *vq, const struct vh_vq_desc *descs, unsigned n,
			 struct vh_vq_elem *e)
{
	struct vhp_tcache tc;
	struct vhp_cursor c;
	unsigned i;

	if (vhp_unlikely(n == 0 || n > vq->num))
		return vhp_vq_fail(vq, VH_VQ_FAULT_CHAIN_LEN);
	vhp_tcache_load(&tc, vq);
	vhp_cursor_start(&c, e);
	for (i = 0; i < n; i++) {
		uint16_t flags = descs[i].flags;
		int last = i + 1 == n;

		if (vhp_unlikely(((flags & VRING_DESC_F_NEXT) != 0) == last))
			return vhp_vq_fail(vq, VH_VQ_FAULT_PACKED_FLAGS);
		if (vhp_unlikely(flags & VRING_DESC_F_INDIRECT)) {
			if (!vq->indirect)
				return vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_FEATURE);
			if (n != 1)
				return vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_NEXT);
			if (packed_walk_indirect(vq, &tc, &c, descs[i].addr, descs[i].len) < 0)
				return -EIO;
			continue;
		}
		if (vhp_unlikely(vhp_vq_add_buf(vq, &tc, &c, descs[i].addr, descs[i].len,
						flags & VRING_DESC_F_WRITE) < 0))
			return -EIO;
	}
	if (vhp_unlikely(packed_take_id(vq, &c, e, descs[n - 1].id, n) < 0))
		return -EIO;
	vhp_tcache_save(&tc, vq);
	vq->inflight++;
	return 1;
}

/*
 * Chains of several direct descriptors (vhp_dchain_add()). The head at pos (fields from the
 * caller) was seen available. Returns the number of descriptors, with e filled but for id and
 * ndesc and the chain's buffer id in *id, or 0 for anything else (also a descriptor not
 * available): the caller then runs packed_walk(), which starts over.
 */
static inline __attribute__((always_inline)) unsigned
packed_chain_direct(const struct vring_packed_desc *ring, uint16_t num, struct vhp_tcache *tc,
		    struct vh_vq_elem *e, uint16_t pos, uint16_t expect, uint64_t addr,
		    uint32_t len, uint16_t flags, uint16_t *id)
{
	const struct vring_packed_desc *d = &ring[pos];
	struct vhp_dchain c;
	unsigned k;

	vhp_dchain_start(&c, e, num);
	for (;;) {
		if (vhp_unlikely(vhp_dchain_add(&c, tc, addr, len, flags)))
			return 0;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		step(&pos, &expect, num);
		d = &ring[pos];
		flags = vhp_ld16(&d->flags);
		if (vhp_unlikely((flags & VHP_PACKED_F_BOTH) != expect))
			return 0;
		addr = vhp_ld64(&d->addr);
		len = vhp_ld32(&d->len);
	}
	k = vhp_dchain_finish(&c, e);
	/* The buffer id is the one in the last descriptor of the chain. */
	if (k != 0)
		*id = vhp_ld16(&d->id);
	return k;
}

/*
 * A descriptor pointing to an indirect table whose entries are direct buffers the GPA index
 * translates (vhp_dchain_add()). Returns 0 with e filled but for id and ndesc, 1 for
 * anything else (the caller runs packed_walk(), which reports the fault if there is one), or
 * -EIO if the table itself is bad (the ring is broken then).
 */
static inline __attribute__((always_inline)) int
packed_indirect_direct(struct vh_vq *vq, struct vhp_tcache *tc, struct vh_vq_elem *e,
		       uint64_t addr, uint32_t len, uint16_t flags)
{
	const struct vring_packed_desc *tab;
	struct vhp_dchain c;
	unsigned n = 0, i;
	int r;

	tab = vhp_dchain_table(vq, tc, &c, e, addr, len, flags, &n, &r);
	if (tab == NULL)
		return r;
	/* Table entries follow one another; only WRITE (and a nested INDIRECT) matters. */
	for (i = 0; i < n; i++)
		if (vhp_unlikely(vhp_dchain_add(&c, tc, vhp_ld64(&tab[i].addr), vhp_ld32(&tab[i].len),
						vhp_ld16(&tab[i].flags))))
			return 1;
	return vhp_dchain_finish(&c, e) != 0 ? 0 : 1;
}

/*
 * Fast loop of vhp_packed_pop(): from the ring's position on into e .. end - 1, while the
 * descriptors are chains of one, with an id not in flight and room for their iovec, whose
 * buffer lies in a region the memory table's GPA index holds (looked up for every buffer, as in
 * split_pop_fast()). A function of its own that calls nothing, so its state stays in
 * registers. Moves the ring's position past what it took (the caller counts the elements in
 * flight) and returns the element it stopped at: end, one for which the ring holds nothing
 * (*empty set), or one for packed_pop_run() (what it read of that one is not used).
 */
static __attribute__((noinline)) struct vh_vq_elem *
packed_pop_fast(struct vh_vq *vq, struct vh_vq_elem *e, const struct vh_vq_elem *end,
		int *empty)
{
	/* Copied first: stores into elements may alias vq (no strict aliasing). */
	const struct vring_packed_desc *ring = vq->r.p.desc;
	uint16_t *ndesc = vq->ndesc;
	uint64_t *in_len = vq->in_order ? vq->in_len : NULL;
	const struct vh_memory_slot *index = vq->mem->index;
	uint64_t mul = vq->mem->index_mul;
	uint16_t num = vq->num, pos = vq->last_avail, expect = avail_bits(vq->avail_wrap);

	for (; e != end; e++) {
		const struct vring_packed_desc *d = &ring[pos];
		/* Acquire: pairs with the driver's release store of the head's flags; the chain's
		 * descriptors, written before it, are visible to what follows. */
		uint16_t flags = le16toh(__atomic_load_n(&d->flags, __ATOMIC_ACQUIRE)), id;
		const struct vh_memory_slot *r;
		uint64_t addr;
		uint32_t len;

		if ((flags & VHP_PACKED_F_BOTH) != expect) {
			*empty = 1;
			break;
		}
		addr = vhp_ld64(&d->addr);
		len = vhp_ld32(&d->len);
		id = vhp_ld16(&d->id);
		if (vhp_unlikely((flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) ||
				 id >= num || ndesc[id] != 0 || e->iov_cap == 0))
			break;
		r = vhp_ix_probe(index, mul, addr, len);
		if (vhp_unlikely(r == NULL))
			break;
		ndesc[id] = 1;
		vhp_elem_one(e, r->host + (addr - r->gpa), addr, len, flags & VRING_DESC_F_WRITE, id,
			     in_len);
		step(&pos, &expect, num);
	}
	vq->last_avail = pos;
	vq->avail_wrap = expect == VHP_PACKED_F_AVAIL;
	return e;
}

/*
 * Everything else, from e on: chains (direct ones through the GPA index, else the general
 * walk), indirect tables, ids in flight, buffers the GPA index misses, faults.
 * Goes on while the next descriptor is of the same kind (the head of a chain; or, with ind,
 * an indirect one), so runs of them (a block device's requests) stay in one loop; the two
 * kinds have a loop each, which keeps each one's state in registers. Moves the ring's
 * position past what it took; returns the element to continue with (e itself if the ring
 * holds nothing), or NULL after marking the ring broken.
 */
static inline __attribute__((always_inline)) struct vh_vq_elem *
packed_pop_run(struct vh_vq *vq, struct vh_vq_elem *e, const struct vh_vq_elem *end,
	       const int ind)
{
	const struct vring_packed_desc *ring = vq->r.p.desc;
	uint16_t num = vq->num, pos = vq->last_avail, expect = avail_bits(vq->avail_wrap);
	struct vh_vq_elem *start = e;
	struct vhp_tcache tc;

	vhp_tcache_load(&tc, vq);
	for (; e != end; e++) {
		const struct vring_packed_desc *d = &ring[pos];
		/* Acquire: as in packed_pop_fast(). */
		uint16_t flags = le16toh(__atomic_load_n(&d->flags, __ATOMIC_ACQUIRE)), id, p2, x2;
		unsigned cnt = 0, p;
		int r;

		if ((flags & VHP_PACKED_F_BOTH) != expect)
			break;
		/* After the first element, only this loop's kind stays here. */
		if (e != start && (ind ? !(flags & VRING_DESC_F_INDIRECT) :
				   (flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) !=
					   VRING_DESC_F_NEXT))
			break;
		if (ind) {
			r = packed_indirect_direct(vq, &tc, e, vhp_ld64(&d->addr), vhp_ld32(&d->len),
						   flags);
			if (vhp_unlikely(r < 0))
				return NULL;
			cnt = r == 0;
			id = vhp_ld16(&d->id);
		} else if (flags & VRING_DESC_F_NEXT) {
			cnt = packed_chain_direct(ring, num, &tc, e, pos, expect, vhp_ld64(&d->addr),
						  vhp_ld32(&d->len), flags, &id);
		}
		if (cnt != 0 && id < num && vq->ndesc[id] == 0) {
			vq->ndesc[id] = (uint16_t)cnt;
			e->id = id;
			e->ndesc = (uint16_t)cnt;
			if (vq->in_order)
				vq->in_len[id] = e->in_len;
			p = pos + cnt;
			if (p >= num) {
				p -= num;
				expect ^= VHP_PACKED_F_BOTH;
			}
			pos = (uint16_t)p;
			continue;
		}
		/* Copies: pos and expect themselves stay in registers. */
		p2 = pos;
		x2 = expect;
		if (vhp_unlikely(packed_walk(vq, &tc, ring, num, e, &p2, &x2) < 0))
			return NULL;
		pos = p2;
		expect = x2;
	}
	vhp_tcache_save(&tc, vq);
	vq->last_avail = pos;
	vq->avail_wrap = expect == VHP_PACKED_F_AVAIL;
	return e;
}

static __attribute__((noinline)) struct vh_vq_elem *
packed_pop_chains(struct vh_vq *vq, struct vh_vq_elem *e, const struct vh_vq_elem *end)
{
	return packed_pop_run(vq, e, end, 0);
}

static __attribute__((noinline)) struct vh_vq_elem *
packed_pop_indirect(struct vh_vq *vq, struct vh_vq_elem *e, const struct vh_vq_elem *end)
{
	return packed_pop_run(vq, e, end, 1);
}

int vhp_packed_pop(struct vh_vq *vq, struct vh_vq_elem *elems, unsigned max)
{
	struct vh_vq_elem *e = elems, *end = elems + max, *s;
	uint16_t start_pos = vq->last_avail;
	uint8_t start_wrap = vq->avail_wrap;
	int rearmed = 0;

	for (;;) {
		int empty = 0;

		e = packed_pop_fast(vq, e, end, &empty);
		if (e == end)
			break;
		if (!empty) {
			/* (What this reads is read again by the loop.) */
			if (vhp_ld16(&vq->r.p.desc[vq->last_avail].flags) & VRING_DESC_F_INDIRECT)
				s = packed_pop_indirect(vq, e, end);
			else
				s = packed_pop_chains(vq, e, end);
			if (vhp_unlikely(s == NULL)) {
				/* Nothing of the failed batch was taken. */
				vq->last_avail = start_pos;
				vq->avail_wrap = start_wrap;
				return -EIO;
			}
			if (s != e) {
				e = s;
				continue;
			}
		}
		/* Nothing available. */
		if (e != elems || rearmed || !vq->notify_enabled || !vq->event_idx ||
		    (vq->armed && vq->armed_idx == vq->last_avail && vq->armed_wrap == vq->avail_wrap))
			break;
		/* Ring empty: ask for a kick at the next descriptor before going idle. */
		packed_write_kick_event(vq);
		/* Full fence: the event must be visible before the ring is looked at again; a
		 * driver that made a buffer available after the first look and read the old event
		 * is caught by this second look. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		rearmed = 1;
	}
	vq->inflight += (unsigned)(e - elems);
	return (int)(e - elems);
}

/* Logging or IN_ORDER: the general form of vhp_packed_push() (ids already checked). */
static __attribute__((noinline)) void packed_push_general(struct vh_vq *vq,
							 const struct vh_vq_used *used, unsigned n)
{
	/* Locals, not vq fields: stores into the ring may alias vq (no strict aliasing). */
	struct vring_packed_desc *ring = vq->r.p.desc;
	uint16_t *ndesc = vq->ndesc;
	const uint64_t *in_len = vq->in_order ? vq->in_len : NULL;
	int logging = vq->dlog != NULL;
	uint16_t pos = vq->used_idx, head_pos = pos, head_flags = 0, num = vq->num;
	uint8_t w = vq->used_wrap;
	uint32_t run = 0, total = 0;
	unsigned i;
	int first = 1;

	for (i = 0; i < n; i++) {
		uint16_t id = (uint16_t)used[i].id;
		uint32_t len = used[i].len;
		uint16_t flags;
		struct vring_packed_desc *d;

		run += ndesc[id];
		ndesc[id] = 0;
		/* IN_ORDER: a buffer filled completely is covered by the next used descriptor,
		 * which is written at the position of the first buffer of the run. */
		if (in_len && i + 1 < n && len == in_len[id])
			continue;
		d = &ring[pos];
		flags = (uint16_t)(used_bits(w) | (len ? VRING_DESC_F_WRITE : 0));
		vhp_st16(&d->id, id);
		vhp_st32(&d->len, len);
		if (first) {
			/* The first used descriptor is exposed last, below. */
			head_pos = pos;
			head_flags = flags;
			first = 0;
		} else {
			vhp_st16(&d->flags, flags);
		}
		if (vhp_unlikely(logging))
			vhp_vq_log(vq, 16u * (uint64_t)pos, 16);
		advance(&pos, &w, num, run);
		total += run;
		run = 0;
	}
	/* Release: ids, lengths, the other used descriptors of this batch and the buffer
	 * contents are visible before the driver sees the first descriptor marked used. */
	__atomic_store_n(&ring[head_pos].flags, htole16(head_flags), __ATOMIC_RELEASE);
	vq->used_idx = pos;
	vq->used_wrap = w;
	vq->inflight = n <= vq->inflight ? vq->inflight - n : 0;
	vq->notify_added += total;
}

int vhp_packed_push(struct vh_vq *vq, const struct vh_vq_used *used, unsigned n)
{
	/* Locals, not vq fields: stores into the ring may alias vq (no strict aliasing). */
	struct vring_packed_desc *ring = vq->r.p.desc;
	const struct vh_vq_used *u, *end = used + n;
	uint16_t *ndesc = vq->ndesc;
	/* Full-width copies: 16-bit ones would be widened again at every use. */
	unsigned pos = vq->used_idx, head_pos, num = vq->num;
	uint16_t head_flags, bits;
	uint64_t fl_read, fl_written;
	uint32_t total, cnt;

	/* Only buffers in flight can be completed (their descriptor count is known). Checked
	 * before anything is written: used flags written here are visible at once. */
	for (u = used; u != end; u++)
		if (vhp_unlikely(u->id >= num || ndesc[u->id] == 0))
			return -EINVAL;
	if (vhp_unlikely(vq->dlog != NULL || vq->in_order)) {
		packed_push_general(vq, used, n);
		return 0;
	}
	bits = used_bits(vq->used_wrap);
	/* The first used descriptor gets its id and length now and its flags last, below. */
	head_pos = pos;
	head_flags = (uint16_t)(bits | (used[0].len ? VRING_DESC_F_WRITE : 0));
	vhp_st32(&ring[pos].len, used[0].len);
	vhp_st16(&ring[pos].id, (uint16_t)used[0].id);
	cnt = ndesc[used[0].id];
	ndesc[used[0].id] = 0;
	/* Bytes 8..15 of a descriptor {len, id, flags} are written as one 64-bit value; these
	 * are its flags for an unwritten and a written buffer. */
	fl_read = (uint64_t)bits << 48;
	fl_written = (uint64_t)(bits | VRING_DESC_F_WRITE) << 48;
	for (u = used + 1;; u++) {
		unsigned p = pos + cnt; /* < 2 * num: no 16-bit wrap */
		uint32_t id, len;

		if (p >= num) {
			p -= num;
			fl_read ^= (uint64_t)VHP_PACKED_F_BOTH << 48;
			fl_written ^= (uint64_t)VHP_PACKED_F_BOTH << 48;
		}
		pos = p;
		if (u == end)
			break;
		/* Later used descriptors: length, id and flags in one store, ordered before the
		 * head's release. */
		id = u->id;
		len = u->len;
		cnt = ndesc[id];
		ndesc[id] = 0;
		vhp_st64(&ring[pos].len, (uint64_t)len | (uint64_t)id << 32 |
					 (len ? fl_written : fl_read));
	}
	/* Release: ids, lengths, the other used descriptors of this batch and the buffer
	 * contents are visible before the driver sees the first descriptor marked used. */
	__atomic_store_n(&ring[head_pos].flags, htole16(head_flags), __ATOMIC_RELEASE);
	/* Descriptors used: the distance moved, plus a ring if the wrap counter flipped (the
	 * batch's descriptors were all in flight: at most num of them). */
	total = pos - head_pos + ((fl_read != 0) != (bits != 0) ? num : 0);
	vq->used_idx = (uint16_t)pos;
	vq->used_wrap = fl_read != 0;
	vq->inflight = n <= vq->inflight ? vq->inflight - n : 0;
	vq->notify_added += total;
	return 0;
}

int vhp_packed_should_notify(struct vh_vq *vq)
{
	const struct vring_packed_desc_event *ev = vq->r.p.driver;
	uint32_t added = vq->notify_added;
	uint16_t flags;

	vq->notify_added = 0;
	/* Full fence: the used flags must be visible before the driver's suppression structure
	 * is read; otherwise a driver that re-enables and re-checks in between is missed. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->notify_on_empty && vq->inflight == 0 &&
	    !desc_avail(vhp_ld16(&vq->r.p.desc[vq->last_avail].flags), vq->avail_wrap))
		return 1;
	flags = vhp_ld16(&ev->flags) & 3u;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !vq->event_idx)
		return flags != VRING_PACKED_EVENT_FLAG_DISABLE;
	if (added >= vq->num)
		return 1;
	return packed_need_event(vhp_ld16(&ev->off_wrap), vq->used_idx, vq->used_wrap, added,
				 vq->num);
}

void vhp_packed_disable_notify(struct vh_vq *vq)
{
	vhp_st16(&vq->r.p.device->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
	vq->armed = 0;
}

int vhp_packed_enable_notify(struct vh_vq *vq)
{
	if (vq->event_idx)
		packed_write_kick_event(vq);
	else
		vhp_st16(&vq->r.p.device->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
	/* Full fence: the re-enabled event must be visible before the ring is looked at
	 * again, so a buffer made available meanwhile is either seen here or kicked. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vhp_packed_has_avail(vq);
}

int vhp_packed_has_avail(struct vh_vq *vq)
{
	return desc_avail(vhp_ld16(&vq->r.p.desc[vq->last_avail].flags), vq->avail_wrap);
}

/* ---- Driver side ---------------------------------------------------------------------- */

void vhp_packed_drv_init(struct vh_vq_driver *d)
{
	unsigned i;

	for (i = 0; i < d->num; i++)
		d->free_next[i] = (uint16_t)(i + 1 < d->num ? i + 1 : 0);
	d->free_head = 0;
	d->num_free = d->num;
	d->avail_wrap = 1;
	d->used_wrap = 1;
	d->pub_wrap = 1;
	/* Ring memory is zeroed (flags ENABLE). With EVENT_IDX, ask for a notification at the
	 * first used descriptor, like a split ring's used_event of 0. */
	if (d->event_idx) {
		vhp_st16(&d->r.p.driver->off_wrap, (uint16_t)(1u << VHP_PACKED_WRAP_SHIFT));
		vhp_st16(&d->r.p.driver->flags, VRING_PACKED_EVENT_FLAG_DESC);
	}
}

static inline void packed_write_desc(struct vring_packed_desc *desc, uint64_t addr,
				     uint32_t len, uint16_t id)
{
	vhp_st64(&desc->addr, addr);
	vhp_st32(&desc->len, len);
	vhp_st16(&desc->id, id);
}

int vhp_packed_drv_add(struct vh_vq_driver *d, const struct vh_vq_driver_req *reqs, unsigned n)
{
	struct vring_packed_desc *ring = d->r.p.desc;
	unsigned i, j;

	for (i = 0; i < n; i++) {
		const struct vh_vq_driver_req *req = &reqs[i];
		unsigned segs = (unsigned)req->out_num + req->in_num, k;
		int ind = d->ind_max != 0 && segs >= 2 && segs <= d->ind_max;
		uint16_t id, head_pos = d->next_avail, head_flags;
		uint64_t in_len = 0;
		struct vhp_drv_slot *s;

		k = ind ? 1u : segs;
		/* Every buffer in flight holds at least one descriptor, so a free descriptor
		 * implies a free id. */
		if (k > d->num_free)
			break;
		id = d->free_head;
		d->free_head = d->free_next[id];
		for (j = req->out_num; j < segs; j++)
			in_len += req->segs[j].len;
		if (ind) {
			uint64_t tgpa;
			struct vring_packed_desc *t = vhp_drv_ind_table(d, id, &tgpa);

			for (j = 0; j < segs; j++) {
				packed_write_desc(&t[j], req->segs[j].gpa, req->segs[j].len, 0);
				vhp_st16(&t[j].flags, j >= req->out_num ? VRING_DESC_F_WRITE : 0);
			}
			packed_write_desc(&ring[head_pos], tgpa, segs * 16u, id);
			head_flags = (uint16_t)(VRING_DESC_F_INDIRECT | avail_bits(d->avail_wrap));
			advance(&d->next_avail, &d->avail_wrap, d->num, 1);
		} else {
			head_flags = 0;
			for (j = 0; j < segs; j++) {
				uint16_t pos = d->next_avail;
				uint16_t f = (uint16_t)((j >= req->out_num ? VRING_DESC_F_WRITE : 0) |
							(j + 1 < segs ? VRING_DESC_F_NEXT : 0) |
							avail_bits(d->avail_wrap));

				/* The id goes in every descriptor; the device reads the last. */
				packed_write_desc(&ring[pos], req->segs[j].gpa, req->segs[j].len, id);
				if (j == 0)
					head_flags = f;
				else
					vhp_st16(&ring[pos].flags, f);
				advance(&d->next_avail, &d->avail_wrap, d->num, 1);
			}
		}
		/* The batch's first head is exposed by publish; later heads are covered by it. */
		if (!d->pend) {
			d->pend = 1;
			d->pend_pos = head_pos;
			d->pend_flags = head_flags;
		} else {
			vhp_st16(&ring[head_pos].flags, head_flags);
		}
		d->num_free = (uint16_t)(d->num_free - k);
		d->unpub += k;
		s = &d->slots[id];
		s->token = req->token;
		s->in_len = in_len;
		s->ndesc = (uint16_t)k;
		s->active = 1;
		if (d->in_order)
			vhp_drv_fifo_push(d, id);
		d->inflight++;
	}
	return i ? (int)i : -ENOSPC;
}

void vhp_packed_drv_publish(struct vh_vq_driver *d)
{
	if (!d->pend)
		return;
	/* Release: every descriptor written since the last publish, later heads included, is
	 * visible before the first head is marked available. */
	__atomic_store_n(&d->r.p.desc[d->pend_pos].flags, htole16(d->pend_flags), __ATOMIC_RELEASE);
	d->pend = 0;
	d->kick_added += d->unpub;
	d->unpub = 0;
	d->pub_pos = d->next_avail;
	d->pub_wrap = d->avail_wrap;
}

int vhp_packed_drv_should_kick(struct vh_vq_driver *d)
{
	const struct vring_packed_desc_event *ev = d->r.p.device;
	uint32_t added = d->kick_added;
	uint16_t flags;

	if (added == 0)
		return 0;
	d->kick_added = 0;
	/* Full fence: the published flags must be visible before the device's suppression
	 * structure is read, or a device that re-arms and re-checks in between is missed. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	flags = vhp_ld16(&ev->flags) & 3u;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !d->event_idx)
		return flags != VRING_PACKED_EVENT_FLAG_DISABLE;
	if (added >= d->num)
		return 1;
	return packed_need_event(vhp_ld16(&ev->off_wrap), d->pub_pos, d->pub_wrap, added, d->num);
}

static inline void packed_drv_complete(struct vh_vq_driver *d, uint16_t id, uint32_t len,
				       struct vh_vq_driver_used *out)
{
	struct vhp_drv_slot *s = vhp_drv_take(d, id, len, out);

	advance(&d->next_used, &d->used_wrap, d->num, s->ndesc);
	d->num_free = (uint16_t)(d->num_free + s->ndesc);
	d->free_next[id] = d->free_head;
	d->free_head = id;
}

int vhp_packed_drv_get_used(struct vh_vq_driver *d, struct vh_vq_driver_used *out,
			    unsigned max)
{
	const struct vring_packed_desc *ring = d->r.p.desc;
	unsigned k = 0;

	while (k < max) {
		const struct vring_packed_desc *desc;
		uint16_t flags, id;
		uint32_t len;

		if (d->run_active) {
			id = vhp_drv_run_next(d, &len);
			packed_drv_complete(d, id, len, &out[k++]);
			continue;
		}
		if (d->inflight == 0)
			break;
		desc = &ring[d->next_used];
		/* Acquire: pairs with the device's release store of this descriptor's flags; its
		 * id and len (and the buffer contents) are read after it. */
		flags = le16toh(__atomic_load_n(&desc->flags, __ATOMIC_ACQUIRE));
		if (!desc_used(flags, d->used_wrap))
			break;
		id = vhp_ld16(&desc->id);
		/* The length is meaningful only when the device says it wrote. */
		len = (flags & VRING_DESC_F_WRITE) ? vhp_ld32(&desc->len) : 0;
		if (vhp_unlikely(id >= d->num || !d->slots[id].active))
			return vhp_drv_fail(d, VH_VQ_FAULT_USED_ID);
		if (d->in_order) {
			vhp_drv_run_start(d, id, len);
			continue;
		}
		packed_drv_complete(d, id, len, &out[k++]);
	}
	return (int)k;
}

void vhp_packed_drv_disable_cb(struct vh_vq_driver *d)
{
	vhp_st16(&d->r.p.driver->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
}

int vhp_packed_drv_enable_cb(struct vh_vq_driver *d)
{
	if (d->event_idx) {
		vhp_st16(&d->r.p.driver->off_wrap,
			 (uint16_t)(d->next_used | ((unsigned)d->used_wrap << VHP_PACKED_WRAP_SHIFT)));
		vhp_st16(&d->r.p.driver->flags, VRING_PACKED_EVENT_FLAG_DESC);
	} else {
		vhp_st16(&d->r.p.driver->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
	}
	/* Full fence: the enable must be visible before the ring is re-read, so a completion
	 * landing meanwhile is either seen here or notified. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->run_active)
		return 1;
	return d->inflight != 0 &&
	       desc_used(le16toh(__atomic_load_n(&d->r.p.desc[d->next_used].flags, __ATOMIC_ACQUIRE)),
			 d->used_wrap);
}
