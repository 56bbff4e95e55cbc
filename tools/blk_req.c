/* SPDX-License-Identifier: MIT */
/* virtio-blk request parsing: header, data pieces, status byte, discard / write-zeroes ranges. */
#include <string.h>

#include "blk.h"

/* Copies between a flat buffer and the bytes starting `off` into iov[0..n), bounded by both. */
static size_t iov_copy(const struct iovec *iov, unsigned n, uint64_t off, uint8_t *buf, size_t len,
		       int to_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, k;
		uint8_t *p;

		if (off >= l) {
			off -= l;
			continue;
		}
		k = l - (size_t)off;
		if (k > len - done)
			k = len - done;
		p = (uint8_t *)iov[i].iov_base + off;
		if (to_iov)
			memcpy(p, buf + done, k);
		else
			memcpy(buf + done, p, k);
		done += k;
		off = 0;
	}
	return done;
}

size_t blk_iov_to_buf(const struct iovec *iov, unsigned n, uint64_t off, void *dst, size_t len)
{
	return iov_copy(iov, n, off, dst, len, 0);
}

size_t blk_buf_to_iov(const struct iovec *iov, unsigned n, uint64_t off, const void *src,
		      size_t len)
{
	return iov_copy(iov, n, off, (uint8_t *)(uintptr_t)src, len, 1);
}

/* [sector, sector + count) lies inside the disk. */
static int in_range(uint64_t sector, uint64_t count, uint64_t capacity)
{
	return sector <= capacity && count <= capacity - sector;
}

/* The writable pieces without the status byte: the data area of IN and GET_ID. */
static void writable_data(struct vh_vq_elem *e, struct blk_parsed *p)
{
	struct iovec *last = &e->iov[e->out_num + e->in_num - 1];

	p->data = &e->iov[e->out_num];
	p->data_len = e->in_len - 1;
	if (last->iov_len == 1) {
		p->ndata = e->in_num - 1;
	} else {
		p->trim_last = last;
		p->saved_last = *last;
		last->iov_len--;
		p->ndata = e->in_num;
	}
}

/* The readable pieces after the header: the data of OUT. */
static void readable_data(struct vh_vq_elem *e, struct blk_parsed *p)
{
	uint64_t skip = sizeof(struct blk_outhdr);
	unsigned i = 0;

	while (i < e->out_num && skip >= e->iov[i].iov_len) {
		skip -= e->iov[i].iov_len;
		i++;
	}
	p->data = &e->iov[i];
	p->ndata = e->out_num - i;
	p->data_len = e->out_len - sizeof(struct blk_outhdr);
	if (skip && i < e->out_num) {
		p->trim_first = &e->iov[i];
		p->saved_first = e->iov[i];
		e->iov[i].iov_base = (uint8_t *)e->iov[i].iov_base + skip;
		e->iov[i].iov_len -= (size_t)skip;
	}
}

static unsigned parse_ranges(struct vh_vq_elem *e, const struct blk_geometry *g,
			     struct blk_parsed *p)
{
	uint64_t bytes = e->out_len - sizeof(struct blk_outhdr);
	uint64_t n = bytes / sizeof(struct blk_range);

	if (g->read_only)
		return BLK_S_IOERR;
	if (bytes == 0 || bytes % sizeof(struct blk_range) || n > g->max_segs)
		return BLK_S_IOERR;
	p->nranges = (uint32_t)n;
	for (uint32_t i = 0; i < p->nranges; i++) {
		struct blk_range *r = &p->ranges[i];
		uint64_t off = sizeof(struct blk_outhdr) + (uint64_t)i * sizeof(*r);

		if (blk_iov_to_buf(e->iov, e->out_num, off, r, sizeof(*r)) != sizeof(*r))
			return BLK_S_IOERR;
		/* Unknown flags are unsupported; UNMAP means something only for WRITE_ZEROES. */
		if (r->flags & ~BLK_WZ_FLAG_UNMAP)
			return BLK_S_UNSUPP;
		if (p->type == BLK_T_DISCARD && r->flags)
			return BLK_S_UNSUPP;
		if (r->num_sectors > g->max_range || !in_range(r->sector, r->num_sectors, g->capacity))
			return BLK_S_IOERR;
	}
	return BLK_S_OK;
}

unsigned blk_req_parse_slow(struct vh_vq_elem *e, const struct blk_geometry *g,
			    struct blk_parsed *p)
{
	struct blk_outhdr h;
	struct iovec *last;

	p->status = NULL;
	p->data = NULL;
	p->ndata = 0;
	p->data_len = 0;
	p->nranges = 0;
	p->trim_first = NULL;
	p->trim_last = NULL;
	p->type = UINT32_MAX;
	p->sector = 0;

	if (e->in_num == 0 || e->in_len == 0)
		return BLK_S_IOERR;  /* nowhere to put a status */
	last = &e->iov[e->out_num + e->in_num - 1];
	if (last->iov_len == 0)
		return BLK_S_IOERR;  /* the ring layer never makes empty pieces; be safe anyway */
	p->status = (uint8_t *)last->iov_base + last->iov_len - 1;

	if (e->out_len < sizeof(h) ||
	    blk_iov_to_buf(e->iov, e->out_num, 0, &h, sizeof(h)) != sizeof(h))
		return BLK_S_IOERR;
	p->type = h.type;
	p->sector = h.sector;

	switch (h.type) {
	case BLK_T_IN:
	case BLK_T_OUT: {
		uint64_t len = h.type == BLK_T_IN ? e->in_len - 1 : e->out_len - sizeof(h);

		if (h.type == BLK_T_OUT && g->read_only)
			return BLK_S_IOERR;
		if (len % BLK_SECTOR || !in_range(h.sector, len >> BLK_SECTOR_SHIFT, g->capacity))
			return BLK_S_IOERR;
		if (h.type == BLK_T_IN)
			writable_data(e, p);
		else
			readable_data(e, p);
		return BLK_S_OK;
	}
	case BLK_T_FLUSH:
		return BLK_S_OK;
	case BLK_T_GET_ID:
		writable_data(e, p);
		return BLK_S_OK;
	case BLK_T_DISCARD:
	case BLK_T_WRITE_ZEROES:
		return parse_ranges(e, g, p);
	default:
		return BLK_S_UNSUPP;
	}
}

void blk_req_restore_slow(struct blk_parsed *p)
{
	if (p->trim_first) {
		*p->trim_first = p->saved_first;
		p->trim_first = NULL;
	}
	if (p->trim_last) {
		*p->trim_last = p->saved_last;
		p->trim_last = NULL;
	}
}
