/* SPDX-License-Identifier: MIT */
/*
 * Ring layer: what both layouts share. Layout sizes, base encoding, ring setup and address
 * checks, the once-per-call dispatch to ring_split.c / ring_packed.c, the slow paths of the
 * descriptor walker (region-spanning buffers, indirect tables), copy helpers, dirty logging of
 * ring writes, the driver-side setup and the fuzzing entry point.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ring_internal.h"

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

int vh_vring_layout(unsigned num, uint64_t features, struct vh_vring_layout *lay)
{
	int packed = (features & VH_VQ_F_RING_PACKED) != 0;

	if (num == 0 || num > VH_VQ_MAX_SIZE)
		return -EINVAL;
	if (!packed && (num & (num - 1)) != 0)
		return -EINVAL;
	lay->desc_size = 16u * (size_t)num;
	if (packed) {
		lay->driver_size = sizeof(struct vring_packed_desc_event);
		lay->device_size = sizeof(struct vring_packed_desc_event);
	} else {
		lay->driver_size = 6u + 2u * (size_t)num;
		lay->device_size = 6u + 8u * (size_t)num;
	}
	lay->desc_off = 0;
	lay->driver_off = align_up(lay->desc_size, 64);
	lay->device_off = align_up(lay->driver_off + lay->driver_size, 64);
	lay->total = align_up(lay->device_off + lay->device_size, 64);
	return 0;
}

uint32_t vh_vq_base_encode(const struct vh_vq_base *b, int packed)
{
	if (!packed)
		return b->last_avail_idx;
	return (uint32_t)(b->last_avail_idx & 0x7fffu) | ((uint32_t)(b->avail_wrap & 1u) << 15) |
	       ((uint32_t)(b->used_idx & 0x7fffu) << 16) | ((uint32_t)(b->used_wrap & 1u) << 31);
}

void vh_vq_base_decode(uint32_t v, int packed, struct vh_vq_base *b)
{
	memset(b, 0, sizeof(*b));
	if (!packed) {
		b->last_avail_idx = (uint16_t)v;
		return;
	}
	b->last_avail_idx = v & 0x7fffu;
	b->avail_wrap = (v >> 15) & 1u;
	b->used_idx = (v >> 16) & 0x7fffu;
	b->used_wrap = (v >> 31) & 1u;
}

/* ---- Device side: setup ------------------------------------------------------------------ */

static void *ring_area(const struct vh_vq_config *cfg, uint64_t addr, size_t size, size_t align)
{
	void *p;

	if (addr % align != 0)
		return NULL;
	switch (cfg->addr_kind) {
	case VH_VQ_ADDR_GPA:
		p = vh_memory_gpa_to_host(cfg->mem, addr, size);
		break;
	case VH_VQ_ADDR_UADDR:
		p = vh_memory_uaddr_to_host(cfg->mem, addr, size);
		break;
	case VH_VQ_ADDR_HOST:
		p = (void *)(uintptr_t)addr;
		break;
	default:
		return NULL;
	}
	/* The host address must be aligned too: fields are accessed atomically. */
	if (p != NULL && (uintptr_t)p % align != 0)
		return NULL;
	return p;
}

static int areas_overlap(const void *a, size_t alen, const void *b, size_t blen)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

	return x < y + blen && y < x + alen;
}

int vh_vq_new(struct vh_vq **out, const struct vh_vq_config *cfg)
{
	struct vh_vring_layout lay;
	struct vh_vq *vq;
	void *desc, *drv, *dev;
	int packed, r;

	if (out == NULL || cfg == NULL || cfg->mem == NULL)
		return -EINVAL;
	packed = (cfg->features & VH_VQ_F_RING_PACKED) != 0;
	r = vh_vring_layout(cfg->num, cfg->features, &lay);
	if (r < 0)
		return r;
	if (cfg->max_indirect > VH_VQ_MAX_SIZE)
		return -EINVAL;
	desc = ring_area(cfg, cfg->desc_addr, lay.desc_size, VH_VRING_DESC_ALIGN);
	drv = ring_area(cfg, cfg->driver_addr, lay.driver_size,
			packed ? VH_VRING_PACKED_EVENT_ALIGN : VH_VRING_SPLIT_AVAIL_ALIGN);
	dev = ring_area(cfg, cfg->device_addr, lay.device_size,
			packed ? VH_VRING_PACKED_EVENT_ALIGN : VH_VRING_SPLIT_USED_ALIGN);
	if (desc == NULL || drv == NULL || dev == NULL)
		return -EFAULT;
	/* Areas the device writes must not alias the others. */
	if (areas_overlap(dev, lay.device_size, desc, lay.desc_size) ||
	    areas_overlap(dev, lay.device_size, drv, lay.driver_size) ||
	    (!packed && areas_overlap(desc, lay.desc_size, drv, lay.driver_size)))
		return -EINVAL;
	if (packed && (cfg->base.last_avail_idx >= cfg->num || cfg->base.used_idx >= cfg->num ||
		       cfg->base.avail_wrap > 1 || cfg->base.used_wrap > 1))
		return -EINVAL;

	vq = calloc(1, sizeof(*vq));
	if (vq == NULL)
		return -ENOMEM;
	vq->mem = cfg->mem;
	vq->num = (uint16_t)cfg->num;
	vq->mask = (uint16_t)(cfg->num - 1);
	vq->packed = (uint8_t)packed;
	vq->event_idx = (cfg->features & VH_VQ_F_EVENT_IDX) != 0;
	vq->indirect = (cfg->features & VH_VQ_F_INDIRECT_DESC) != 0;
	vq->in_order = (cfg->features & VH_VQ_F_IN_ORDER) != 0;
	vq->notify_on_empty = (cfg->features & VH_VQ_F_NOTIFY_ON_EMPTY) != 0;
	vq->notify_enabled = 1;
	vq->max_indirect = cfg->max_indirect ? cfg->max_indirect : VH_VQ_DEFAULT_MAX_INDIRECT;
	if (cfg->log)
		vq->log = *cfg->log;
	if (vq->indirect) {
		vq->ind_buf = malloc((size_t)vq->max_indirect * 16u);
		if (vq->ind_buf == NULL)
			goto nomem;
	}
	if (packed) {
		vq->ndesc = calloc(cfg->num, sizeof(*vq->ndesc));
		if (vq->ndesc == NULL)
			goto nomem;
	}
	if (vq->in_order) {
		vq->in_len = calloc(cfg->num, sizeof(*vq->in_len));
		if (vq->in_len == NULL)
			goto nomem;
	}
	vq->last_avail = cfg->base.last_avail_idx;
	vq->used_idx = cfg->base.used_idx;
	vq->avail_wrap = cfg->base.avail_wrap;
	vq->used_wrap = cfg->base.used_wrap;
	if (packed) {
		vq->r.p.desc = desc;
		vq->r.p.driver = drv;
		vq->r.p.device = dev;
		r = vhp_packed_init(vq);
	} else {
		vq->r.s.desc = desc;
		vq->r.s.avail = drv;
		vq->r.s.used = dev;
		r = vhp_split_init(vq);
	}
	if (r < 0) {
		vh_vq_free(vq);
		return r;
	}
	*out = vq;
	return 0;
nomem:
	vh_vq_free(vq);
	return -ENOMEM;
}

void vh_vq_free(struct vh_vq *vq)
{
	if (vq == NULL)
		return;
	free(vq->ind_buf);
	free(vq->ndesc);
	free(vq->in_len);
	free(vq);
}

void vh_vq_set_memory(struct vh_vq *vq, const struct vh_memory *mem)
{
	/* The GPA index belongs to the table; tc_idx is a hint checked at each batch. */
	vq->mem = mem;
}

void vh_vq_get_base(const struct vh_vq *vq, struct vh_vq_base *b)
{
	b->last_avail_idx = vq->last_avail;
	b->used_idx = vq->used_idx;
	b->avail_wrap = vq->packed ? vq->avail_wrap : 0;
	b->used_wrap = vq->packed ? vq->used_wrap : 0;
}

uint32_t vh_vq_get_base_u32(const struct vh_vq *vq)
{
	struct vh_vq_base b;

	vh_vq_get_base(vq, &b);
	return vh_vq_base_encode(&b, vq->packed);
}

unsigned vh_vq_num(const struct vh_vq *vq)
{
	return vq->num;
}

unsigned vh_vq_inflight(const struct vh_vq *vq)
{
	return vq->inflight;
}

/* ---- Device side: dispatch (once per call, never per descriptor) ------------------------- */

int vh_vq_pop_batch(struct vh_vq *vq, struct vh_vq_elem *elems, unsigned max)
{
	if (vhp_unlikely(vq->err))
		return vq->err;
	if (vhp_unlikely(max == 0))
		return 0;
	return vq->packed ? vhp_packed_pop(vq, elems, max) : vhp_split_pop(vq, elems, max);
}

int vh_vq_push_batch(struct vh_vq *vq, const struct vh_vq_used *used, unsigned n)
{
	if (vhp_unlikely(vq->err))
		return vq->err;
	if (vhp_unlikely(n == 0))
		return 0;
	return vq->packed ? vhp_packed_push(vq, used, n) : vhp_split_push(vq, used, n);
}

int vh_vq_should_notify(struct vh_vq *vq)
{
	if (vhp_unlikely(vq->err))
		return vq->err;
	if (vq->notify_added == 0)
		return 0;
	return vq->packed ? vhp_packed_should_notify(vq) : vhp_split_should_notify(vq);
}

void vh_vq_disable_notify(struct vh_vq *vq)
{
	if (vq->err)
		return;
	vq->notify_enabled = 0;
	if (vq->packed)
		vhp_packed_disable_notify(vq);
	else
		vhp_split_disable_notify(vq);
}

int vh_vq_enable_notify(struct vh_vq *vq)
{
	if (vq->err)
		return vq->err;
	vq->notify_enabled = 1;
	return vq->packed ? vhp_packed_enable_notify(vq) : vhp_split_enable_notify(vq);
}

int vh_vq_has_avail(struct vh_vq *vq)
{
	if (vq->err)
		return vq->err;
	return vq->packed ? vhp_packed_has_avail(vq) : vhp_split_has_avail(vq);
}

/* ---- Device side: resubmission ------------------------------------------------------------ */

int vh_vq_pop_head(struct vh_vq *vq, uint16_t head, struct vh_vq_elem *elem)
{
	if (vhp_unlikely(vq->err))
		return vq->err;
	if (vq->packed)
		return -EINVAL;
	return vhp_split_pop_head(vq, head, elem);
}

int vh_vq_pop_descs(struct vh_vq *vq, const struct vh_vq_desc *descs, unsigned n,
		    struct vh_vq_elem *elem)
{
	if (vhp_unlikely(vq->err))
		return vq->err;
	if (!vq->packed)
		return -EINVAL;
	return vhp_packed_pop_descs(vq, descs, n, elem);
}

int vh_vq_read_desc(const struct vh_vq *vq, unsigned pos, struct vh_vq_desc *d)
{
	const struct vring_packed_desc *r;

	if (!vq->packed || pos >= vq->num)
		return -EINVAL;
	r = &vq->r.p.desc[pos];
	d->addr = vhp_ld64(&r->addr);
	d->len = vhp_ld32(&r->len);
	d->id = vhp_ld16(&r->id);
	d->flags = vhp_ld16(&r->flags);
	return 0;
}

/* ---- Faults ---------------------------------------------------------------------------- */

static const char *const fault_names[VH_VQ_FAULT_MAX] = {
	[VH_VQ_FAULT_NONE] = "none",
	[VH_VQ_FAULT_AVAIL_IDX] = "avail index moved more than the queue size",
	[VH_VQ_FAULT_HEAD] = "head index out of range",
	[VH_VQ_FAULT_NEXT] = "next index out of range",
	[VH_VQ_FAULT_CHAIN_LEN] = "descriptor chain loops or is too long",
	[VH_VQ_FAULT_INDIRECT_FEATURE] = "indirect descriptor without INDIRECT_DESC",
	[VH_VQ_FAULT_INDIRECT_LEN] = "bad indirect table length",
	[VH_VQ_FAULT_INDIRECT_NESTED] = "nested indirect descriptor",
	[VH_VQ_FAULT_INDIRECT_NEXT] = "indirect descriptor inside a chain",
	[VH_VQ_FAULT_INDIRECT_ADDR] = "indirect table outside guest memory",
	[VH_VQ_FAULT_BUF_ADDR] = "buffer outside guest memory",
	[VH_VQ_FAULT_BUF_ZERO] = "zero-length buffer",
	[VH_VQ_FAULT_BUF_ORDER] = "device-readable buffer after a writable one",
	[VH_VQ_FAULT_BUF_TOTAL] = "chain longer than 4 GiB",
	[VH_VQ_FAULT_IOV_FULL] = "chain needs more iovecs than the element holds",
	[VH_VQ_FAULT_PACKED_ID] = "buffer id out of range",
	[VH_VQ_FAULT_PACKED_FLAGS] = "inconsistent packed descriptor flags",
	[VH_VQ_FAULT_USED_ID] = "used id not in flight",
	[VH_VQ_FAULT_USED_IDX] = "used index moved past the requests in flight",
};

const char *vh_vq_fault_name(enum vh_vq_fault f)
{
	if ((unsigned)f >= VH_VQ_FAULT_MAX)
		return "unknown";
	return fault_names[f];
}

__attribute__((cold)) int vhp_vq_fail(struct vh_vq *vq, enum vh_vq_fault fault)
{
	if (vq->err == 0) {
		vq->err = -EIO;
		vq->fault = fault;
		vhp_err(&vq->log, "virtqueue broken: %s (last avail %u, used %u)",
			vh_vq_fault_name(fault), vq->last_avail, vq->used_idx);
	}
	return -EIO;
}

int vh_vq_is_broken(const struct vh_vq *vq)
{
	return vq->err;
}

enum vh_vq_fault vh_vq_fault(const struct vh_vq *vq)
{
	return vq->fault;
}

/* ---- Device side: walker slow paths ------------------------------------------------------ */

int vhp_tc_search(struct vhp_tcache *tc, uint64_t addr, uint32_t len)
{
	int i = vh_memory_find(tc->mem, addr);
	const struct vh_memory_region *r;

	if (i < 0)
		return 0;
	r = &tc->mem->regions[i];
	if (!vhp_tc_fits(addr - r->gpa, len, r->size))
		return 0;
	vhp_tc_set(tc, (unsigned)i);
	return 1;
}

int vhp_vq_add_buf_slow(struct vh_vq *vq, struct vhp_tcache *tc, struct iovec *iov,
			uint64_t *gpa, uint32_t room, uint64_t addr, uint32_t len)
{
	int r, i;

	if (len != 0 && vhp_tc_lookup(tc, addr, len)) {
		/* One region (not the one cached before). */
		if (room == 0)
			return vhp_vq_fail(vq, VH_VQ_FAULT_IOV_FULL);
		iov[0].iov_base = tc->host + (addr - tc->gpa);
		iov[0].iov_len = len;
		if (gpa)
			gpa[0] = addr;
		return 1;
	}
	r = vh_memory_gpa_to_iov(vq->mem, addr, len, room ? iov : NULL, room);
	if (r == -ENOBUFS)
		return vhp_vq_fail(vq, VH_VQ_FAULT_IOV_FULL);
	if (r <= 0)
		return vhp_vq_fail(vq, VH_VQ_FAULT_BUF_ADDR);
	if (gpa) {
		for (i = 0; i < r; i++) {
			gpa[i] = addr;
			addr += iov[i].iov_len;
		}
	}
	return r;
}

const void *vhp_vq_indirect_table(struct vh_vq *vq, struct vhp_tcache *tc, uint64_t addr,
				  uint32_t len)
{
	const void *t;
	uint64_t gpa = addr, left = len, end;
	uint8_t *dst;

	if (len == 0 || len % 16u != 0 || len / 16u > vq->max_indirect) {
		vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_LEN);
		return NULL;
	}
	if (__builtin_add_overflow(addr, (uint64_t)len, &end)) {
		vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_ADDR);
		return NULL;
	}
	/* Through the walk's cached region and the GPA index (the table's region becomes the
	 * cached one). */
	if (vhp_tc_fits(addr - tc->gpa, len, tc->size) || vhp_tc_lookup(tc, addr, len)) {
		t = tc->host + (addr - tc->gpa);
		if (vhp_likely(((uintptr_t)t & 7u) == 0))
			return t;
	}
	/*
	 * The table crosses regions (or is misaligned in this process): copy it through a byte
	 * cursor into the bounce buffer, which holds max_indirect entries, one region piece at a
	 * time. Each step copies at least one byte, so the loop ends within len steps.
	 */
	dst = vq->ind_buf;
	while (left > 0) {
		const struct vh_memory_region *r;
		uint64_t chunk;
		int i = vh_memory_find(vq->mem, gpa);

		if (i < 0) {
			vhp_vq_fail(vq, VH_VQ_FAULT_INDIRECT_ADDR);
			return NULL;
		}
		r = &vq->mem->regions[i];
		chunk = r->size - (gpa - r->gpa);
		if (chunk > left)
			chunk = left;
		memcpy(dst, r->host + (gpa - r->gpa), chunk);
		dst += chunk;
		gpa += chunk;
		left -= chunk;
	}
	return vq->ind_buf;
}

/* ---- Dirty logging ------------------------------------------------------------------------ */

void vh_vq_set_log(struct vh_vq *vq, struct vh_dirty_log *log, uint64_t ring_log_gpa)
{
	vq->dlog = log;
	vq->log_gpa = ring_log_gpa;
}

int vh_vq_log_elem(struct vh_vq *vq, const struct vh_vq_elem *elem, uint64_t len)
{
	uint32_t i;
	int r, ret = 0;

	if (vq->dlog == NULL)
		return 0;
	if (elem->iov_gpa == NULL)
		return -EINVAL;
	for (i = elem->out_num; i < elem->out_num + elem->in_num && len > 0; i++) {
		uint64_t l = elem->iov[i].iov_len < len ? elem->iov[i].iov_len : len;

		r = vh_dirty_log_mark(vq->dlog, elem->iov_gpa[i], l);
		if (r < 0 && ret == 0)
			ret = r;
		len -= l;
	}
	return ret;
}

/* ---- Copy helpers ------------------------------------------------------------------------- */

/* Copies between an iovec list (from `offset` on) and a flat buffer, in either direction. */
static size_t iov_copy(const struct iovec *iov, unsigned iovcnt, size_t offset, uint8_t *buf,
		       size_t len, int to_iov)
{
	size_t done = 0;
	unsigned i;

	for (i = 0; i < iovcnt && done < len; i++) {
		size_t l = iov[i].iov_len;
		uint8_t *p = iov[i].iov_base;

		if (offset >= l) {
			offset -= l;
			continue;
		}
		l -= offset;
		if (l > len - done)
			l = len - done;
		if (to_iov)
			memcpy(p + offset, buf + done, l);
		else
			memcpy(buf + done, p + offset, l);
		done += l;
		offset = 0;
	}
	return done;
}

/* Parenthesised names: the header's macros route calls through its inline fast path. */
size_t (vh_iov_to_buf)(const struct iovec *iov, unsigned iovcnt, size_t offset, void *buf,
		       size_t len)
{
	return iov_copy(iov, iovcnt, offset, buf, len, 0);
}

size_t (vh_buf_to_iov)(const struct iovec *iov, unsigned iovcnt, size_t offset,
		       const void *buf, size_t len)
{
	/* The buffer is only read in this direction. */
	return iov_copy(iov, iovcnt, offset, (uint8_t *)(uintptr_t)buf, len, 1);
}

/* ---- Driver side -------------------------------------------------------------------------- */

int vh_vq_driver_new(struct vh_vq_driver **out, const struct vh_vq_driver_config *cfg)
{
	struct vh_vring_layout lay;
	struct vh_vq_driver *d;
	uint8_t *base;
	int packed, r;

	if (out == NULL || cfg == NULL || cfg->ring_host == NULL)
		return -EINVAL;
	packed = (cfg->features & VH_VQ_F_RING_PACKED) != 0;
	r = vh_vring_layout(cfg->num, cfg->features, &lay);
	if (r < 0)
		return r;
	if (cfg->ring_size < lay.total || (uintptr_t)cfg->ring_host % VH_VRING_DESC_ALIGN != 0 ||
	    cfg->ring_gpa % VH_VRING_DESC_ALIGN != 0)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->num = (uint16_t)cfg->num;
	d->mask = (uint16_t)(cfg->num - 1);
	d->packed = (uint8_t)packed;
	d->event_idx = (cfg->features & VH_VQ_F_EVENT_IDX) != 0;
	d->in_order = (cfg->features & VH_VQ_F_IN_ORDER) != 0;
	if (cfg->log)
		d->log = *cfg->log;
	if ((cfg->features & VH_VQ_F_INDIRECT_DESC) && cfg->indirect_max >= 2) {
		uint64_t need = (uint64_t)cfg->num * cfg->indirect_max * 16u;

		if (cfg->indirect_max > VH_VQ_MAX_SIZE || cfg->indirect_host == NULL ||
		    cfg->indirect_size < need || (uintptr_t)cfg->indirect_host % 16u != 0 ||
		    cfg->indirect_gpa % 16u != 0) {
			free(d);
			return -EINVAL;
		}
		d->ind_host = cfg->indirect_host;
		d->ind_gpa = cfg->indirect_gpa;
		d->ind_max = cfg->indirect_max;
	}
	d->slots = calloc(cfg->num, sizeof(*d->slots));
	d->free_next = calloc(cfg->num, sizeof(*d->free_next));
	if (d->in_order)
		d->fifo = calloc(cfg->num, sizeof(*d->fifo));
	if (d->slots == NULL || d->free_next == NULL || (d->in_order && d->fifo == NULL)) {
		vh_vq_driver_free(d);
		return -ENOMEM;
	}
	base = cfg->ring_host;
	memset(base, 0, lay.total);
	d->desc_gpa = cfg->ring_gpa + lay.desc_off;
	d->driver_gpa = cfg->ring_gpa + lay.driver_off;
	d->device_gpa = cfg->ring_gpa + lay.device_off;
	if (packed) {
		d->r.p.desc = (struct vring_packed_desc *)(base + lay.desc_off);
		d->r.p.driver = (struct vring_packed_desc_event *)(base + lay.driver_off);
		d->r.p.device = (struct vring_packed_desc_event *)(base + lay.device_off);
		vhp_packed_drv_init(d);
	} else {
		d->r.s.desc = (struct vring_desc *)(base + lay.desc_off);
		d->r.s.avail = (struct vring_avail *)(base + lay.driver_off);
		d->r.s.used = (struct vring_used *)(base + lay.device_off);
		vhp_split_drv_init(d);
	}
	*out = d;
	return 0;
}

void vh_vq_driver_free(struct vh_vq_driver *d)
{
	if (d == NULL)
		return;
	free(d->slots);
	free(d->free_next);
	free(d->fifo);
	free(d);
}

void vh_vq_driver_addrs(const struct vh_vq_driver *d, struct vh_vq_driver_addrs *a)
{
	a->desc_gpa = d->desc_gpa;
	a->driver_gpa = d->driver_gpa;
	a->device_gpa = d->device_gpa;
	if (d->packed) {
		a->desc = d->r.p.desc;
		a->driver = d->r.p.driver;
		a->device = d->r.p.device;
	} else {
		a->desc = d->r.s.desc;
		a->driver = d->r.s.avail;
		a->device = d->r.s.used;
	}
}

void vh_vq_driver_base(const struct vh_vq_driver *d, struct vh_vq_base *b)
{
	memset(b, 0, sizeof(*b));
	if (d->packed) {
		b->last_avail_idx = d->next_used;
		b->avail_wrap = d->used_wrap;
		b->used_idx = d->next_used;
		b->used_wrap = d->used_wrap;
	} else {
		b->last_avail_idx = d->last_used;
		b->used_idx = d->last_used;
	}
}

__attribute__((cold)) int vhp_drv_fail(struct vh_vq_driver *d, enum vh_vq_fault fault)
{
	if (d->err == 0) {
		d->err = -EIO;
		d->fault = fault;
		vhp_err(&d->log, "driver virtqueue broken by the device: %s",
			vh_vq_fault_name(fault));
	}
	return -EIO;
}

int vh_vq_driver_add_batch(struct vh_vq_driver *d, const struct vh_vq_driver_req *reqs,
			   unsigned n)
{
	unsigned i, j;

	if (vhp_unlikely(d->err))
		return d->err;
	/* Validate the whole batch first so a bad request places nothing. */
	for (i = 0; i < n; i++) {
		unsigned segs = (unsigned)reqs[i].out_num + reqs[i].in_num;

		if (segs == 0 || (segs > d->num && segs > d->ind_max))
			return -EINVAL;
		for (j = 0; j < segs; j++)
			if (reqs[i].segs[j].len == 0)
				return -EINVAL;
	}
	if (n == 0)
		return 0;
	return d->packed ? vhp_packed_drv_add(d, reqs, n) : vhp_split_drv_add(d, reqs, n);
}

void vh_vq_driver_publish(struct vh_vq_driver *d)
{
	if (d->packed)
		vhp_packed_drv_publish(d);
	else
		vhp_split_drv_publish(d);
}

int vh_vq_driver_should_kick(struct vh_vq_driver *d)
{
	if (d->err)
		return 0;
	return d->packed ? vhp_packed_drv_should_kick(d) : vhp_split_drv_should_kick(d);
}

int vh_vq_driver_get_used(struct vh_vq_driver *d, struct vh_vq_driver_used *out, unsigned max)
{
	if (vhp_unlikely(d->err))
		return d->err;
	if (max == 0)
		return 0;
	return d->packed ? vhp_packed_drv_get_used(d, out, max)
			 : vhp_split_drv_get_used(d, out, max);
}

void vh_vq_driver_disable_cb(struct vh_vq_driver *d)
{
	if (d->packed)
		vhp_packed_drv_disable_cb(d);
	else
		vhp_split_drv_disable_cb(d);
}

int vh_vq_driver_enable_cb(struct vh_vq_driver *d)
{
	if (d->err)
		return d->err;
	return d->packed ? vhp_packed_drv_enable_cb(d) : vhp_split_drv_enable_cb(d);
}

unsigned vh_vq_driver_num_free(const struct vh_vq_driver *d)
{
	return d->num_free;
}

unsigned vh_vq_driver_inflight(const struct vh_vq_driver *d)
{
	return d->inflight;
}

int vh_vq_driver_is_broken(const struct vh_vq_driver *d)
{
	return d->err;
}

enum vh_vq_fault vh_vq_driver_fault(const struct vh_vq_driver *d)
{
	return d->fault;
}

/* ---- Fuzzing entry point ------------------------------------------------------------------ */

/*
 * Guest memory for vh_vq_fuzz_walk: region A at GPA 0 (8 KiB, holds the ring), region B right
 * after it in GPA (4 KiB) but not in host memory, so buffers crossing A/B split into two
 * iovecs, and region C behind a GPA hole. Host bytes 8K..12K belong to no region.
 */
#define FZ_HOST_SIZE (20u * 1024u)
#define FZ_MAX_ROUNDS 64u
#define FZ_BATCH 16u
#define FZ_IOV 64u

int vh_vq_fuzz_walk(const uint8_t *data, size_t size)
{
	struct vh_vq_elem elems[FZ_BATCH];
	struct vh_vq_used used[FZ_BATCH];
	struct vh_vring_layout lay;
	struct vh_vq_config cfg;
	struct vh_region regs[3];
	struct vh_memory *mem = NULL;
	struct iovec *iov = NULL;
	struct vh_vq *vq = NULL;
	uint8_t *host = NULL;
	unsigned num, batch, iov_cap, round, i;
	volatile uint8_t sink = 0;
	size_t copy;
	int r;

	if (size < 8)
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	cfg.features = ((data[0] & 1u) ? VH_VQ_F_RING_PACKED : 0) |
		       ((data[0] & 2u) ? VH_VQ_F_EVENT_IDX : 0) |
		       ((data[0] & 4u) ? VH_VQ_F_INDIRECT_DESC : 0) |
		       ((data[0] & 8u) ? VH_VQ_F_IN_ORDER : 0) |
		       ((data[0] & 16u) ? VH_VQ_F_NOTIFY_ON_EMPTY : 0);
	if (cfg.features & VH_VQ_F_RING_PACKED)
		num = (unsigned)data[1] % 256u + 1u;
	else
		num = 1u << (data[1] % 9u);
	batch = (unsigned)data[2] % FZ_BATCH + 1u;
	iov_cap = (unsigned)data[3] % FZ_IOV + 1u;
	cfg.max_indirect = (unsigned)data[4] % 64u + 1u;
	cfg.num = num;
	cfg.base.last_avail_idx = (uint16_t)(data[5] | (data[6] << 8));
	cfg.base.used_idx = cfg.base.last_avail_idx;
	if (cfg.features & VH_VQ_F_RING_PACKED) {
		cfg.base.last_avail_idx %= num;
		cfg.base.used_idx = (uint16_t)(data[7] % num);
		cfg.base.avail_wrap = (data[0] >> 5) & 1u;
		cfg.base.used_wrap = (data[0] >> 6) & 1u;
	}
	if (vh_vring_layout(num, cfg.features, &lay) < 0)
		return 0;

	host = calloc(1, FZ_HOST_SIZE);
	iov = calloc((size_t)FZ_BATCH * iov_cap, sizeof(*iov));
	if (host == NULL || iov == NULL) {
		r = -ENOMEM;
		goto out;
	}
	copy = size - 8 < FZ_HOST_SIZE ? size - 8 : FZ_HOST_SIZE;
	memcpy(host, data + 8, copy);
	memset(regs, 0, sizeof(regs));
	regs[0] = (struct vh_region){ 0x0, 8192, (uint64_t)(uintptr_t)host, -1, 0 };
	regs[1] = (struct vh_region){ 0x2000, 4096, (uint64_t)(uintptr_t)(host + 12288), -1, 0 };
	regs[2] = (struct vh_region){ 0x10000, 4096, (uint64_t)(uintptr_t)(host + 16384), -1, 0 };
	r = vh_memory_new_local(&mem, regs, 3, NULL);
	if (r < 0)
		goto out;
	cfg.mem = mem;
	cfg.addr_kind = VH_VQ_ADDR_GPA;
	cfg.desc_addr = lay.desc_off;
	cfg.driver_addr = lay.driver_off;
	cfg.device_addr = lay.device_off;
	r = vh_vq_new(&vq, &cfg);
	if (r < 0) {
		r = r == -ENOMEM ? r : 0;
		goto out;
	}
	for (i = 0; i < FZ_BATCH; i++) {
		elems[i].iov = iov + (size_t)i * iov_cap;
		elems[i].iov_gpa = NULL;
		elems[i].iov_cap = iov_cap;
	}
	if (data[2] & 0x80u)
		vh_vq_disable_notify(vq);
	for (round = 0; round < FZ_MAX_ROUNDS; round++) {
		int n = vh_vq_pop_batch(vq, elems, batch);

		if (n <= 0)
			break;
		for (i = 0; i < (unsigned)n; i++) {
			struct vh_vq_elem *e = &elems[i];
			uint32_t k;

			/* Touch every byte so a sanitizer sees any iovec outside the regions. */
			for (k = 0; k < e->out_num + e->in_num; k++) {
				uint8_t *b = e->iov[k].iov_base;
				size_t l;

				for (l = 0; l < e->iov[k].iov_len; l++)
					sink ^= b[l];
				if (k >= e->out_num)
					memset(b, 0x5a, e->iov[k].iov_len);
			}
			used[i].id = e->id;
			used[i].len = e->in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)e->in_len;
		}
		if (vh_vq_push_batch(vq, used, (unsigned)n) < 0)
			break;
		(void)vh_vq_should_notify(vq);
	}
	(void)vh_vq_enable_notify(vq);
	(void)vh_vq_get_base_u32(vq);
	(void)sink;
	r = 0;
out:
	vh_vq_free(vq);
	vh_memory_unref(mem);
	free(iov);
	free(host);
	return r;
}
