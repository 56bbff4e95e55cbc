/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueue: the one implementation of its index, descriptor and event-index logic, for
 * the device side (pop/push/notify) and the driver side (add/publish/kick/get used).
 *
 * Layout (virtio 1.x, little-endian): descriptor table (16 bytes x num), available ring
 * {flags, idx, ring[num], used_event}, used ring {flags, idx, {id, len}[num], avail_event}.
 * Indexes are free-running 16-bit counters; num is a power of two, so slot = idx & (num - 1).
 */
#include <errno.h>
#include <string.h>
#include "ring_internal.h"

/* used_event lives after the avail ring, avail_event after the used ring. */
static inline uint16_t *used_event_ptr(struct vring_avail *avail, uint16_t num)
{
	return (uint16_t *)&avail->ring[num];
}

static inline uint16_t *avail_event_ptr(struct vring_used *used, uint16_t num)
{
	return (uint16_t *)&used->ring[num];
}

/* ---- Device side ---------------------------------------------------------------------- */

int vhp_split_init(struct vh_vq *vq)
{
	/* Like vhost, resume the used index from the ring; the avail position comes from the
	 * base (SET_VRING_BASE). */
	vq->used_idx = vhp_ld16(&vq->r.s.used->idx);
	vq->shadow_avail = vq->last_avail;
	vhp_st16(&vq->r.s.used->flags, 0);
	if (vq->event_idx)
		vhp_st16(avail_event_ptr(vq->r.s.used, vq->num), vq->last_avail);
	return 0;
}

/*
 * Reads the driver's avail index. Returns how many new heads are available (0..num) or -EIO
 * when the index moved more than a ring's worth (the driver cannot have made that many
 * buffers available).
 */
static int split_load_avail(struct vh_vq *vq)
{
	/* Acquire: pairs with the driver's release store of avail->idx, so the ring entries and
	 * descriptors it wrote before are visible to the walk that follows. */
	uint16_t avail = le16toh(__atomic_load_n(&vq->r.s.avail->idx, __ATOMIC_ACQUIRE));
	uint16_t n = (uint16_t)(avail - vq->last_avail);

	if (vhp_unlikely(n > vq->num))
		return vhp_vq_fail(vq, VH_VQ_FAULT_AVAIL_IDX);
	vq->shadow_avail = avail;
	return n;
}

static void split_arm_kick(struct vh_vq *vq)
{
	vhp_st16(avail_event_ptr(vq->r.s.used, vq->num), vq->last_avail);
	vhp_vq_log(vq, 4u + 8u * (uint64_t)vq->num, 2);
	vq->armed = 1;
	vq->armed_idx = vq->last_avail;
}

/* split_load_avail(), and when the ring is empty and kicks are wanted, re-arm the kick
 * before reporting it empty. */
static int split_refresh_avail(struct vh_vq *vq)
{
	int n = split_load_avail(vq);

	if (n == 0 && vq->notify_enabled && vq->event_idx &&
	    !(vq->armed && vq->armed_idx == vq->last_avail)) {
		split_arm_kick(vq);
		/* Full fence: the avail_event store must be visible before avail->idx is read
		 * again; a driver that published after our first read and saw the old
		 * avail_event (no kick) is caught by this second read. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		n = split_load_avail(vq);
	}
	return n;
}

/*
 * The general walk of the chain at `head` (< num, checked by the caller) into e: indirect
 * tables, buffers outside the cached region, elements short of iovecs, and every fault. It
 * reads the chain from the start, whatever the faster walks saw before handing it over. Every
 * index and length is checked before use; the walk ends within num + max_indirect steps.
 */
static __attribute__((noinline)) int split_walk(struct vh_vq *vq, struct vhp_tcache *tc,
						struct vh_vq_elem *e, uint16_t head)
{
	const struct vring_desc *tab = vq->r.s.desc;
	unsigned limit = vq->num, i = head, count = 0, ring_count = 0;
	uint64_t addr = vhp_ld64(&tab[head].addr);
	uint32_t len = vhp_ld32(&tab[head].len);
	uint16_t flags = vhp_ld16(&tab[head].flags);
	struct vhp_cursor c;
	int in_table = 0;

	vhp_cursor_start(&c, e);
	for (;;) {
		const struct vring_desc *d;
		uint16_t next;

		if (vhp_unlikely(++count > limit))
			return vhp_vq_fail(vq, VH_VQ_FAULT_CHAIN_LEN);
		if (vhp_unlikely(flags & VRING_DESC_F_INDIRECT)) {
			if (!vq->indirect)
				return vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_FEATURE);
			if (in_table)
				return vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_NESTED);
			if (flags & VRING_DESC_F_NEXT)
				return vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_NEXT);
			tab = vhp_vq_indirect_table(vq, tc, addr, len);
			if (tab == NULL)
				return -EIO;
			ring_count = count;
			in_table = 1;
			limit = len / 16u;
			i = 0;
			count = 0;
		} else {
			if (vhp_unlikely(vhp_vq_add_buf(vq, tc, &c, addr, len,
							flags & VRING_DESC_F_WRITE) < 0))
				return -EIO;
			if (!(flags & VRING_DESC_F_NEXT))
				break;
			next = vhp_ld16(&tab[i].next);
			if (vhp_unlikely(next >= limit))
				return vhp_vq_fail(vq, VH_VQ_FAULT_NEXT);
			i = next;
		}
		d = &tab[i];
		addr = vhp_ld64(&d->addr);
		len = vhp_ld32(&d->len);
		flags = vhp_ld16(&d->flags);
	}
	vhp_cursor_finish(&c, e);
	e->id = head;
	e->ndesc = (uint16_t)(in_table ? ring_count : count);
	if (vq->in_order)
		vq->in_len[head] = c.in_len;
	return 0;
}

/*
 * Chains of direct descriptors (vhp_dchain_add()). The head's fields come from the caller.
 * Returns 0 with e filled, or 1: the caller then runs split_walk(), which starts over.
 */
static inline __attribute__((always_inline)) int
split_chain_direct(const struct vring_desc *desc, unsigned num, struct vhp_tcache *tc,
		   struct vh_vq_elem *e, uint16_t head, uint64_t addr, uint32_t len, uint16_t flags)
{
	const struct vring_desc *d = &desc[head];
	struct vhp_dchain c;
	unsigned k;

	vhp_dchain_start(&c, e, num);
	for (;;) {
		uint16_t next;

		if (vhp_unlikely(vhp_dchain_add(&c, tc, addr, len, flags)))
			return 1;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		next = vhp_ld16(&d->next);
		if (vhp_unlikely(next >= num))
			return 1;
		d = &desc[next];
		addr = vhp_ld64(&d->addr);
		len = vhp_ld32(&d->len);
		flags = vhp_ld16(&d->flags);
	}
	k = vhp_dchain_finish(&c, e);
	if (vhp_unlikely(k == 0))
		return 1;
	e->id = head;
	e->ndesc = (uint16_t)k;
	return 0;
}

/*
 * A head descriptor pointing to an indirect table whose entries are direct buffers the GPA
 * index translates (vhp_dchain_add()), e.g. a block request's pieces behind one descriptor.
 * Returns 0 with e filled, 1 for anything else (the caller runs split_walk(), which reports
 * the fault if there is one), or -EIO if the table itself is bad (the ring is broken then).
 */
static inline __attribute__((always_inline)) int
split_indirect_direct(struct vh_vq *vq, struct vhp_tcache *tc, struct vh_vq_elem *e,
		      uint16_t head, uint64_t addr, uint32_t len, uint16_t flags)
{
	const struct vring_desc *tab, *d;
	struct vhp_dchain c;
	unsigned n = 0, k;
	int r;

	tab = vhp_dchain_table(vq, tc, &c, e, addr, len, flags, &n, &r);
	if (tab == NULL)
		return r;
	d = tab;
	for (;;) {
		uint16_t f = vhp_ld16(&d->flags), next;

		if (vhp_unlikely(vhp_dchain_add(&c, tc, vhp_ld64(&d->addr), vhp_ld32(&d->len), f)))
			return 1;
		if (!(f & VRING_DESC_F_NEXT))
			break;
		next = vhp_ld16(&d->next);
		if (vhp_unlikely(next >= n))
			return 1;
		d = &tab[next];
	}
	k = vhp_dchain_finish(&c, e);
	if (vhp_unlikely(k == 0))
		return 1;
	e->id = head;
	e->ndesc = 1;
	return 0;
}

/*
 * Fast loop of vhp_split_pop(): heads at avail indexes idx, idx + 1, ... into e .. end - 1,
 * while they are chains of one descriptor, with room for their iovec, whose buffer lies in a
 * region the memory table's GPA index holds. Every buffer is looked up there (not compared with
 * the previous one's region first), so the cost does not depend on how buffers spread over
 * the regions. A function of its own that calls nothing, so its state stays in registers.
 * Returns the element it stopped at (end, or one for split_pop_run(): a bad head, a chain,
 * a buffer the GPA index misses); what it read of that element is not used.
 */
static __attribute__((noinline)) struct vh_vq_elem *
split_pop_fast(const struct vh_vq *vq, struct vh_vq_elem *e, const struct vh_vq_elem *end,
	       uint16_t idx)
{
	/* Copied first: stores into elements may alias vq (no strict aliasing). */
	const uint16_t *ring = vq->r.s.avail->ring;
	const struct vring_desc *desc = vq->r.s.desc;
	uint64_t *in_len = vq->in_order ? vq->in_len : NULL;
	const struct vh_memory_slot *index = vq->mem->index;
	uint64_t mul = vq->mem->index_mul;
	uint16_t mask = vq->mask; /* num - 1: head > mask is head >= num */

	for (; e != end; e++, idx++) {
		uint16_t head = vhp_ld16(&ring[idx & mask]), flags;
		const struct vh_memory_slot *r;
		const struct vring_desc *d;
		uint64_t addr;
		uint32_t len;

		if (vhp_unlikely(head > mask))
			break;
		d = &desc[head];
		addr = vhp_ld64(&d->addr);
		len = vhp_ld32(&d->len);
		flags = vhp_ld16(&d->flags);
		if (vhp_unlikely((flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) ||
				 e->iov_cap == 0))
			break;
		r = vhp_ix_probe(index, mul, addr, len);
		if (vhp_unlikely(r == NULL))
			break;
		vhp_elem_one(e, r->host + (addr - r->gpa), addr, len, flags & VRING_DESC_F_WRITE, head,
			     in_len);
	}
	return e;
}

/*
 * Everything else, from e on: chains (direct ones through the GPA index, else the general
 * walk), indirect tables, buffers the GPA index misses, faults. Goes on while
 * the next head is of the same kind (a chain; or, with ind, an indirect table), so runs of
 * them (a block device's requests) stay in one loop; the two kinds have a loop each, which
 * keeps each one's state in registers. Returns the element to continue with in
 * split_pop_fast() (or end), or NULL after marking the ring broken.
 */
static inline __attribute__((always_inline)) struct vh_vq_elem *
split_pop_run(struct vh_vq *vq, struct vh_vq_elem *e, const struct vh_vq_elem *end,
	      uint16_t idx, const int ind)
{
	const uint16_t *ring = vq->r.s.avail->ring;
	const struct vring_desc *desc = vq->r.s.desc;
	uint16_t mask = vq->mask;
	struct vhp_tcache tc;
	int r;

	vhp_tcache_load(&tc, vq);
	for (;;) {
		uint16_t head = vhp_ld16(&ring[idx & mask]), flags;
		const struct vring_desc *d;

		if (vhp_unlikely(head > mask)) {
			vhp_vq_fail(vq, VH_VQ_FAULT_HEAD);
			return NULL;
		}
		d = &desc[head];
		flags = vhp_ld16(&d->flags);
		if (ind)
			r = split_indirect_direct(vq, &tc, e, head, vhp_ld64(&d->addr),
						  vhp_ld32(&d->len), flags);
		else
			r = split_chain_direct(desc, vq->num, &tc, e, head, vhp_ld64(&d->addr),
					       vhp_ld32(&d->len), flags);
		if (r == 0) {
			if (vq->in_order)
				vq->in_len[head] = e->in_len;
		} else if (vhp_unlikely(r < 0 || split_walk(vq, &tc, e, head) < 0)) {
			return NULL;
		}
		e++;
		idx++;
		if (e == end)
			break;
		/* A look at the next head: one of this loop's kind stays here (what is read is
		 * read again). */
		head = vhp_ld16(&ring[idx & mask]);
		if (head > mask)
			break;
		flags = vhp_ld16(&desc[head].flags);
		if (ind ? !(flags & VRING_DESC_F_INDIRECT) :
			  (flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)) != VRING_DESC_F_NEXT)
			break;
	}
	vhp_tcache_save(&tc, vq);
	return e;
}

static __attribute__((noinline)) struct vh_vq_elem *
split_pop_chains(struct vh_vq *vq, struct vh_vq_elem *e, const struct vh_vq_elem *end,
		 uint16_t idx)
{
	return split_pop_run(vq, e, end, idx, 0);
}

static __attribute__((noinline)) struct vh_vq_elem *
split_pop_indirect(struct vh_vq *vq, struct vh_vq_elem *e, const struct vh_vq_elem *end,
		   uint16_t idx)
{
	return split_pop_run(vq, e, end, idx, 1);
}

int vhp_split_pop(struct vh_vq *vq, struct vh_vq_elem *elems, unsigned max)
{
	uint16_t last = vq->last_avail, idx, head;
	unsigned n = (uint16_t)(vq->shadow_avail - last);
	struct vh_vq_elem *e = elems, *end;

	/* Heads between last_avail and shadow_avail were covered by an earlier acquire load;
	 * only when they are used up is the driver's index read again (once per batch). */
	if (n == 0) {
		int r = split_refresh_avail(vq);

		if (r <= 0)
			return r;
		n = (unsigned)r;
	}
	if (n > max)
		n = max;
	end = elems + n;
	for (;;) {
		e = split_pop_fast(vq, e, end, (uint16_t)(last + (e - elems)));
		if (e == end)
			break;
		idx = (uint16_t)(last + (e - elems));
		head = vhp_ld16(&vq->r.s.avail->ring[idx & vq->mask]);
		/* (A bad head is reported by the loop.) */
		if (head <= vq->mask && (vhp_ld16(&vq->r.s.desc[head].flags) & VRING_DESC_F_INDIRECT))
			e = split_pop_indirect(vq, e, end, idx);
		else
			e = split_pop_chains(vq, e, end, idx);
		if (vhp_unlikely(e == NULL))
			return -EIO;
		if (e == end)
			break;
	}
	vq->last_avail = (uint16_t)(last + n);
	vq->inflight += n;
	return (int)n;
}

int vhp_split_pop_head(struct vh_vq *vq, uint16_t head, struct vh_vq_elem *e)
{
	struct vhp_tcache tc;

	if (vhp_unlikely(head >= vq->num))
		return vhp_vq_fail(vq, VH_VQ_FAULT_HEAD);
	vhp_tcache_load(&tc, vq);
	if (vhp_unlikely(split_walk(vq, &tc, e, head) < 0))
		return -EIO;
	vhp_tcache_save(&tc, vq);
	vq->inflight++;
	return 1;
}

/* One used entry {id, len}: both halves in one store (the entry is only 4-byte aligned, so
 * no atomic; nothing reads it before the release of the used index). struct vh_vq_used has
 * the same layout, so on a little-endian host it is copied as it is. */
static inline void split_write_used(struct vring_used_elem *e, const struct vh_vq_used *u)
{
#if __BYTE_ORDER == __LITTLE_ENDIAN
	_Static_assert(sizeof(*u) == sizeof(*e), "used element layout");
	memcpy(e, u, sizeof(*e));
#else
	uint32_t v[2] = { htole32(u->id), htole32(u->len) };

	memcpy(e, v, sizeof(v));
#endif
}

/* IN_ORDER: a buffer the device filled completely need not get its own entry; the next entry
 * written (at the slot of the first buffer of the run) covers it. Returns 0 or -EINVAL. */
static __attribute__((noinline)) int split_fill_used_in_order(struct vh_vq *vq,
							       const struct vh_vq_used *used,
							       unsigned n)
{
	struct vring_used *u = vq->r.s.used;
	const uint64_t *in_len = vq->in_len;
	uint16_t start = vq->used_idx, slot = start, mask = vq->mask;
	unsigned i, num = vq->num;

	for (i = 0; i < n; i++) {
		if (vhp_unlikely(used[i].id >= num))
			return -EINVAL;
		if (i + 1 < n && used[i].len == in_len[used[i].id])
			continue;
		split_write_used(&u->ring[slot & mask], &used[i]);
		slot = (uint16_t)(start + i + 1);
	}
	return 0;
}

/* Dirty logging of the used entries and index a push wrote. */
static __attribute__((noinline)) void split_log_used(struct vh_vq *vq, uint16_t start, unsigned n)
{
	unsigned first = start & vq->mask, cnt = n < vq->num ? n : vq->num;
	unsigned tail = first + cnt > vq->num ? vq->num - first : cnt;

	vhp_vq_log(vq, 4u + 8u * (uint64_t)first, 8u * (uint64_t)tail);
	if (tail < cnt)
		vhp_vq_log(vq, 4u, 8u * (uint64_t)(cnt - tail));
	vhp_vq_log(vq, 2, 2);
}

int vhp_split_push(struct vh_vq *vq, const struct vh_vq_used *used, unsigned n)
{
	/* Locals, not vq fields: stores into the ring may alias vq (no strict aliasing). */
	struct vring_used *u = vq->r.s.used;
	uint16_t start = vq->used_idx, mask = vq->mask;
	unsigned i, num = vq->num;

	/* Entries past the used index are invisible to the driver until the release below, so
	 * a bad id found midway publishes nothing. */
	if (vhp_unlikely(vq->in_order)) {
		if (split_fill_used_in_order(vq, used, n) < 0)
			return -EINVAL;
	} else {
		for (i = 0; i < n; i++) {
			if (vhp_unlikely(used[i].id >= num))
				return -EINVAL;
			split_write_used(&u->ring[(uint16_t)(start + i) & mask], &used[i]);
		}
	}
	if (vhp_unlikely(vq->dlog != NULL))
		split_log_used(vq, start, n);
	/* Release: the used entries, and whatever the caller wrote into the buffers, become
	 * visible to the driver before the index that hands them over. */
	__atomic_store_n(&u->idx, htole16((uint16_t)(start + n)), __ATOMIC_RELEASE);
	vq->used_idx = (uint16_t)(start + n);
	vq->inflight = n <= vq->inflight ? vq->inflight - n : 0;
	vq->notify_added += n;
	return 0;
}

int vhp_split_should_notify(struct vh_vq *vq)
{
	uint32_t added = vq->notify_added;
	uint16_t new_idx = vq->used_idx, old_idx = (uint16_t)(new_idx - added);
	struct vring_avail *avail = vq->r.s.avail;

	vq->notify_added = 0;
	/* Full fence: the used index store must be visible before the driver's suppression
	 * fields are read; otherwise a driver that re-enables notifications and re-checks the
	 * used index in between would be missed by both sides. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->notify_on_empty && vq->inflight == 0 && vhp_ld16(&avail->idx) == vq->last_avail)
		return 1;
	if (!vq->event_idx)
		return !(vhp_ld16(&avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	if (added > 0xffffu)
		return 1;
	return vh_vring_need_event(vhp_ld16(used_event_ptr(avail, vq->num)), new_idx, old_idx);
}

void vhp_split_disable_notify(struct vh_vq *vq)
{
	/* With EVENT_IDX the flag must stay 0; a stale avail_event already limits kicks to one
	 * per lap. */
	if (!vq->event_idx) {
		vhp_st16(&vq->r.s.used->flags, VRING_USED_F_NO_NOTIFY);
		vhp_vq_log(vq, 0, 2);
	}
	vq->armed = 0;
}

int vhp_split_enable_notify(struct vh_vq *vq)
{
	int n;

	if (vq->event_idx) {
		split_arm_kick(vq);
	} else {
		vhp_st16(&vq->r.s.used->flags, 0);
		vhp_vq_log(vq, 0, 2);
	}
	/* Full fence: the re-enabled notification must be visible before avail->idx is
	 * re-read, so a buffer published meanwhile is either seen here or kicked. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	n = split_load_avail(vq);
	return n < 0 ? n : n != 0;
}

int vhp_split_has_avail(struct vh_vq *vq)
{
	int n;

	if (vq->shadow_avail != vq->last_avail)
		return 1;
	n = split_load_avail(vq);
	return n < 0 ? n : n != 0;
}

/* ---- Driver side ---------------------------------------------------------------------- */

void vhp_split_drv_init(struct vh_vq_driver *d)
{
	unsigned i;

	for (i = 0; i < d->num; i++)
		d->free_next[i] = (uint16_t)((i + 1) & d->mask);
	d->free_head = 0;
	d->num_free = d->num;
	/* Ring memory is zeroed: used_event 0 asks for a notification at the first used
	 * buffer, and avail flags 0 enable notifications without EVENT_IDX. */
}

static inline void split_drv_write_desc(struct vring_desc *desc, uint64_t addr, uint32_t len,
					uint16_t flags, uint16_t next)
{
	vhp_st64(&desc->addr, addr);
	vhp_st32(&desc->len, len);
	vhp_st16(&desc->flags, flags);
	vhp_st16(&desc->next, next);
}

int vhp_split_drv_add(struct vh_vq_driver *d, const struct vh_vq_driver_req *reqs, unsigned n)
{
	struct vring_desc *desc = d->r.s.desc;
	unsigned i;

	for (i = 0; i < n; i++) {
		const struct vh_vq_driver_req *req = &reqs[i];
		unsigned segs = (unsigned)req->out_num + req->in_num, k, j;
		int ind = d->ind_max != 0 && segs >= 2 && segs <= d->ind_max;
		uint16_t head, idx, last;
		uint64_t in_len = 0;
		struct vhp_drv_slot *s;

		k = ind ? 1u : segs;
		if (k > d->num_free)
			break;
		head = d->in_order ? d->next_desc : d->free_head;
		for (j = req->out_num; j < segs; j++)
			in_len += req->segs[j].len;
		if (ind) {
			uint64_t tgpa;
			struct vring_desc *t = vhp_drv_ind_table(d, head, &tgpa);

			for (j = 0; j < segs; j++)
				split_drv_write_desc(&t[j], req->segs[j].gpa, req->segs[j].len,
						     (uint16_t)((j >= req->out_num ? VRING_DESC_F_WRITE : 0) |
								(j + 1 < segs ? VRING_DESC_F_NEXT : 0)),
						     (uint16_t)(j + 1 < segs ? j + 1 : 0));
			split_drv_write_desc(&desc[head], tgpa, segs * 16u, VRING_DESC_F_INDIRECT, 0);
			last = head;
			idx = d->in_order ? (uint16_t)((head + 1) & d->mask) : d->free_next[head];
		} else {
			idx = head;
			last = head;
			for (j = 0; j < segs; j++) {
				/* In order: descriptors are used in table order (next = x + 1,
				 * wrapping to 0); otherwise follow the private free list. */
				uint16_t nxt = d->in_order ? (uint16_t)((idx + 1) & d->mask)
							   : d->free_next[idx];

				split_drv_write_desc(&desc[idx], req->segs[j].gpa, req->segs[j].len,
						     (uint16_t)((j >= req->out_num ? VRING_DESC_F_WRITE : 0) |
								(j + 1 < segs ? VRING_DESC_F_NEXT : 0)),
						     j + 1 < segs ? nxt : 0);
				last = idx;
				idx = nxt;
			}
		}
		if (d->in_order)
			d->next_desc = idx;
		else
			d->free_head = idx;
		d->num_free = (uint16_t)(d->num_free - k);
		s = &d->slots[head];
		s->token = req->token;
		s->in_len = in_len;
		s->ndesc = (uint16_t)k;
		s->last = last;
		s->active = 1;
		if (d->in_order)
			vhp_drv_fifo_push(d, head);
		vhp_st16(&d->r.s.avail->ring[d->avail_idx & d->mask], head);
		d->avail_idx++;
		d->inflight++;
	}
	return i ? (int)i : -ENOSPC;
}

void vhp_split_drv_publish(struct vh_vq_driver *d)
{
	if (d->avail_pub == d->avail_idx)
		return;
	/* Release: the descriptors and avail ring entries written since the last publish are
	 * visible to the device before the index that exposes them. */
	__atomic_store_n(&d->r.s.avail->idx, htole16(d->avail_idx), __ATOMIC_RELEASE);
	d->avail_pub = d->avail_idx;
}

int vhp_split_drv_should_kick(struct vh_vq_driver *d)
{
	uint16_t new_idx = d->avail_pub, old_idx = d->kick_old;

	if (new_idx == old_idx)
		return 0;
	d->kick_old = new_idx;
	/* Full fence: the avail index store must be visible before the device's suppression
	 * fields are read, or a device that re-arms and re-checks in between is missed. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->event_idx)
		return vh_vring_need_event(vhp_ld16(avail_event_ptr(d->r.s.used, d->num)), new_idx,
					   old_idx);
	return !(vhp_ld16(&d->r.s.used->flags) & VRING_USED_F_NO_NOTIFY);
}

static inline void split_drv_complete(struct vh_vq_driver *d, uint16_t id, uint32_t len,
				      struct vh_vq_driver_used *out)
{
	struct vhp_drv_slot *s = vhp_drv_take(d, id, len, out);

	if (!d->in_order) {
		d->free_next[s->last] = d->free_head;
		d->free_head = id;
	}
	d->num_free = (uint16_t)(d->num_free + s->ndesc);
	d->last_used++;
}

int vhp_split_drv_get_used(struct vh_vq_driver *d, struct vh_vq_driver_used *out, unsigned max)
{
	struct vring_used *u = d->r.s.used;
	/* Acquire: pairs with the device's release store of used->idx; the entries before it
	 * are visible. */
	uint16_t uidx = le16toh(__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE));
	unsigned k = 0;

	if (vhp_unlikely((uint16_t)(uidx - d->last_used) > d->inflight))
		return vhp_drv_fail(d, VH_VQ_FAULT_USED_IDX);
	while (k < max && d->last_used != uidx) {
		uint16_t id;
		uint32_t len;

		if (d->run_active) {
			id = vhp_drv_run_next(d, &len);
		} else {
			const struct vring_used_elem *e = &u->ring[d->last_used & d->mask];
			uint32_t id32 = vhp_ld32(&e->id);

			len = vhp_ld32(&e->len);
			if (vhp_unlikely(id32 >= d->num || !d->slots[id32].active))
				return vhp_drv_fail(d, VH_VQ_FAULT_USED_ID);
			id = (uint16_t)id32;
			if (d->in_order) {
				vhp_drv_run_start(d, id, len);
				continue;
			}
		}
		split_drv_complete(d, id, len, &out[k++]);
	}
	/* A batched entry claiming more buffers than the used index covers. */
	if (vhp_unlikely(d->run_active && d->last_used == uidx && k < max))
		return vhp_drv_fail(d, VH_VQ_FAULT_USED_IDX);
	return (int)k;
}

void vhp_split_drv_disable_cb(struct vh_vq_driver *d)
{
	if (d->event_idx)
		/* An event index just behind the device: no notification for a whole lap. */
		vhp_st16(used_event_ptr(d->r.s.avail, d->num), (uint16_t)(d->last_used - 1));
	else
		vhp_st16(&d->r.s.avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
}

int vhp_split_drv_enable_cb(struct vh_vq_driver *d)
{
	if (d->event_idx)
		vhp_st16(used_event_ptr(d->r.s.avail, d->num), d->last_used);
	else
		vhp_st16(&d->r.s.avail->flags, 0);
	/* Full fence: the enable must be visible before used->idx is re-read, so a completion
	 * landing meanwhile is either seen here or notified. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return d->run_active ||
	       le16toh(__atomic_load_n(&d->r.s.used->idx, __ATOMIC_ACQUIRE)) != d->last_used;
}
