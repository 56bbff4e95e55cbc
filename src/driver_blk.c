/* SPDX-License-Identifier: MIT */
/*
 * Driver side: the virtio-blk client. Each request is a header (16 bytes, device-readable),
 * data segments, an optional discard/write-zeroes range and a status byte (device-writable);
 * header, range and status live in a per-request slot in guest memory, data in buffers the
 * caller allocated there (or the queue's bounce buffer for the copying calls).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libvhost/driver.h>
#include "driver_internal.h"
#include "internal.h"

/* virtio-blk request types and status values (virtio spec 5.2.6) */
#define T_IN 0u
#define T_OUT 1u
#define T_FLUSH 4u
#define T_GET_ID 8u
#define T_DISCARD 11u
#define T_WRITE_ZEROES 13u
#define S_OK 0u
#define S_IOERR 1u
#define S_UNSUPP 2u

/* Written by us only (device-readable). */
struct blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};
_Static_assert(sizeof(struct blk_outhdr) == 16, "virtio_blk_outhdr is 16 bytes");

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags; /* bit 0: unmap (write zeroes) */
};
_Static_assert(sizeof(struct blk_range) == 16, "virtio_blk_discard_write_zeroes is 16 bytes");

/* Per-request area in guest memory. */
#define SLOT_SIZE 64u
#define SLOT_HDR 0u
#define SLOT_RANGE 16u
#define SLOT_STATUS 32u
/* Requests built per add call. */
#define BATCH 32u
/* Data segments per request when the device sets no SEG_MAX. */
#define DEFAULT_SEGS 126u
#define MAX_INDIRECT 32u

#define DEFAULT_BUF_MEM (4u << 20)
#define DEFAULT_BOUNCE (256u << 10)

struct blk_slot {
	uint64_t user_data;
	uint8_t busy;
};

struct blk_queue {
	unsigned nslots;
	uint8_t *slot_mem;
	uint64_t slot_gpa;
	struct blk_slot *slots;
	uint16_t *free;      /* stack of free slot indexes */
	unsigned nfree;
	uint8_t *bounce;
	uint64_t bounce_gpa;
	struct vh_vq_seg *segs;            /* BATCH * (max_segs + 2) */
	struct vh_vq_driver_req *vreqs;    /* BATCH */
	struct vh_vq_driver_used *used;    /* nslots */
};

struct vh_blk {
	struct vh_driver *drv;
	struct vh_blk_config cfg;
	uint64_t features;
	unsigned nq;
	unsigned max_segs;   /* data segments per request */
	uint32_t seg_len;    /* largest data segment (size_max), 0 = no limit */
	uint32_t bounce_size;
	int timeout_ms;
	struct vh_logger log;
	struct blk_queue *q;
};

static int has(const struct vh_blk *b, unsigned bit)
{
	return (b->features >> bit) & 1;
}

const char *vh_blk_feature_name(unsigned bit)
{
	switch (bit) {
	case 0: return "BARRIER";
	case VH_BLK_F_SIZE_MAX: return "SIZE_MAX";
	case VH_BLK_F_SEG_MAX: return "SEG_MAX";
	case VH_BLK_F_GEOMETRY: return "GEOMETRY";
	case VH_BLK_F_RO: return "RO";
	case VH_BLK_F_BLK_SIZE: return "BLK_SIZE";
	case 7: return "SCSI";
	case VH_BLK_F_FLUSH: return "FLUSH";
	case VH_BLK_F_TOPOLOGY: return "TOPOLOGY";
	case VH_BLK_F_CONFIG_WCE: return "CONFIG_WCE";
	case VH_BLK_F_MQ: return "MQ";
	case VH_BLK_F_DISCARD: return "DISCARD";
	case VH_BLK_F_WRITE_ZEROES: return "WRITE_ZEROES";
	case 15: return "LIFETIME";
	case 17: return "SECURE_ERASE";
	case 18: return "ZONED";
	default: return vh_driver_feature_name(bit);
	}
}

/* ---- Config space ------------------------------------------------------------------------- */

static void decode_config(struct vh_blk *b, const uint8_t *c, uint32_t len)
{
	struct vh_blk_config *k = &b->cfg;

	memset(k, 0, sizeof(*k));
	k->have_config = 1;
	k->capacity = vhp_le64(c);
	if (len >= 16) {
		if (has(b, VH_BLK_F_SIZE_MAX))
			k->size_max = vhp_le32(c + 8);
		if (has(b, VH_BLK_F_SEG_MAX))
			k->seg_max = vhp_le32(c + 12);
	}
	if (len >= 24 && has(b, VH_BLK_F_BLK_SIZE))
		k->blk_size = vhp_le32(c + 20);
	if (len >= 32 && has(b, VH_BLK_F_TOPOLOGY)) {
		k->physical_block_exp = c[24];
		k->alignment_offset = c[25];
		k->min_io_size = vhp_le16(c + 26);
		k->opt_io_size = vhp_le32(c + 28);
	}
	if (len >= 36) {
		if (has(b, VH_BLK_F_CONFIG_WCE))
			k->writeback = c[32];
		if (has(b, VH_BLK_F_MQ))
			k->num_queues = vhp_le16(c + 34);
	}
	if (len >= 48 && has(b, VH_BLK_F_DISCARD)) {
		k->max_discard_sectors = vhp_le32(c + 36);
		k->max_discard_seg = vhp_le32(c + 40);
		k->discard_sector_alignment = vhp_le32(c + 44);
	}
	if (len >= 60 && has(b, VH_BLK_F_WRITE_ZEROES)) {
		k->max_write_zeroes_sectors = vhp_le32(c + 48);
		k->max_write_zeroes_seg = vhp_le32(c + 52);
		k->write_zeroes_may_unmap = c[56];
	}
}

static void read_config(struct vh_blk *b)
{
	static const uint32_t sizes[] = { 60, 36, 24, 8 };
	struct vh_device *dev = vh_driver_device(b->drv);
	uint8_t c[60];

	/* Older devices have shorter config spaces and may refuse a longer read. */
	for (unsigned i = 0; i < VHP_ARRAY_SIZE(sizes); i++) {
		memset(c, 0, sizeof(c));
		int r = vh_device_get_config(dev, 0, c, sizes[i]);

		if (r == 0) {
			decode_config(b, c, sizes[i]);
			return;
		}
		if (r == -ENOTSUP || r == -EOPNOTSUPP || r == -ENOTTY)
			break;
	}
	memset(&b->cfg, 0, sizeof(b->cfg));
	vhp_info(&b->log, "blk: no config space (capacity unknown)");
}

/* ---- Open / close ------------------------------------------------------------------------- */

static int setup_queue(struct vh_blk *b, unsigned i)
{
	struct blk_queue *bq = &b->q[i];
	void *host;
	int r;

	bq->nslots = vh_driver_queue_size(b->drv, i);
	bq->slots = calloc(bq->nslots, sizeof(*bq->slots));
	bq->free = calloc(bq->nslots, sizeof(*bq->free));
	bq->used = calloc(bq->nslots, sizeof(*bq->used));
	bq->vreqs = calloc(BATCH, sizeof(*bq->vreqs));
	bq->segs = calloc((size_t)BATCH * (b->max_segs + 2), sizeof(*bq->segs));
	if (!bq->slots || !bq->free || !bq->used || !bq->vreqs || !bq->segs)
		return -ENOMEM;
	r = vh_driver_alloc(b->drv, (size_t)bq->nslots * SLOT_SIZE, 64, &host, &bq->slot_gpa);
	if (r < 0)
		return r;
	bq->slot_mem = host;
	r = vh_driver_alloc(b->drv, b->bounce_size, 4096, &host, &bq->bounce_gpa);
	if (r < 0)
		return r;
	bq->bounce = host;
	for (unsigned s = 0; s < bq->nslots; s++)
		bq->free[s] = (uint16_t)(bq->nslots - 1 - s);
	bq->nfree = bq->nslots;
	return 0;
}

static void free_queues(struct vh_blk *b)
{
	for (unsigned i = 0; b->q && i < b->nq; i++) {
		free(b->q[i].slots);
		free(b->q[i].free);
		free(b->q[i].used);
		free(b->q[i].vreqs);
		free(b->q[i].segs);
	}
	free(b->q);
	b->q = NULL;
}

int vh_blk_open(struct vh_blk **out, struct vh_device *dev, const struct vh_blk_opts *opts)
{
	struct vh_driver_config dc;
	struct vh_driver_queues dq;
	struct vh_blk *b;
	unsigned qmax = 0, qsize;
	uint64_t mem;
	int r;

	if (!out || !dev || !opts || opts->timeout_ms < 0)
		return -EINVAL;
	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->log = opts->log;
	b->nq = opts->num_queues ? opts->num_queues : 1;
	b->bounce_size = opts->bounce_size ? opts->bounce_size : DEFAULT_BOUNCE;
	b->bounce_size &= ~(VH_BLK_SECTOR_SIZE - 1);
	b->timeout_ms = opts->timeout_ms ? opts->timeout_ms : VH_DRIVER_DEFAULT_TIMEOUT_MS;
	if (b->nq > VH_DRIVER_MAX_QUEUES || b->bounce_size == 0 || b->bounce_size > (64u << 20)) {
		r = -EINVAL;
		goto fail;
	}

	memset(&dc, 0, sizeof(dc));
	dc.features = opts->features ? opts->features : VH_BLK_DEFAULT_FEATURES;
	if (b->nq > 1) {
		dc.features |= VH_BIT(VH_BLK_F_MQ);
		dc.required = VH_BIT(VH_BLK_F_MQ);
	}
	dc.timeout_ms = opts->timeout_ms;
	dc.flags = opts->flags;
	dc.log = opts->log;
	r = vh_driver_new(&b->drv, dev, &dc);
	if (r < 0)
		goto fail;
	b->features = vh_driver_features(b->drv);
	read_config(b);

	if (b->nq > 1) {
		/* The config's num_queues is the device's own limit; the transport may add one. */
		if (b->cfg.have_config && b->cfg.num_queues && b->nq > b->cfg.num_queues) {
			vhp_err(&b->log, "blk: %u queues asked, the device has %u", b->nq,
				b->cfg.num_queues);
			r = -ERANGE;
			goto fail;
		}
		r = vh_device_get_queue_num(dev, &qmax);
		if (r == 0 && vh_device_transport(dev) == VH_TRANSPORT_USER && b->nq > qmax) {
			vhp_err(&b->log, "blk: %u queues asked, the back-end has %u", b->nq, qmax);
			r = -ERANGE;
			goto fail;
		}
	}

	qsize = opts->queue_size ? opts->queue_size : 256;
	b->max_segs = DEFAULT_SEGS;
	if (b->cfg.seg_max && b->cfg.seg_max < b->max_segs)
		b->max_segs = b->cfg.seg_max;
	if (b->max_segs + 2 > qsize)
		b->max_segs = qsize > 3 ? qsize - 2 : 1;
	b->seg_len = b->cfg.size_max;

	mem = opts->buf_mem ? opts->buf_mem : DEFAULT_BUF_MEM;
	mem += (uint64_t)b->nq * ((uint64_t)qsize * SLOT_SIZE + b->bounce_size + 8192);
	memset(&dq, 0, sizeof(dq));
	dq.num_queues = b->nq;
	dq.queue_size = qsize;
	dq.indirect_max = b->max_segs + 2 < MAX_INDIRECT ? b->max_segs + 2 : MAX_INDIRECT;
	dq.mem_size = mem;
	r = vh_driver_start(b->drv, &dq);
	if (r < 0)
		goto fail;
	/* The rings may be smaller than asked: a request must still fit one without indirect. */
	qsize = vh_driver_queue_size(b->drv, 0);
	for (unsigned i = 1; i < b->nq; i++)
		if (vh_driver_queue_size(b->drv, i) < qsize)
			qsize = vh_driver_queue_size(b->drv, i);
	if (b->max_segs + 2 > qsize)
		b->max_segs = qsize > 3 ? qsize - 2 : 1;

	b->q = calloc(b->nq, sizeof(*b->q));
	if (!b->q) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < b->nq; i++) {
		r = setup_queue(b, i);
		if (r < 0)
			goto fail;
	}
	vhp_info(&b->log, "blk: capacity %llu sectors, %u queue(s), %u segments of %u bytes max",
		 (unsigned long long)b->cfg.capacity, b->nq, b->max_segs, b->seg_len);
	*out = b;
	return 0;
fail:
	free_queues(b);
	vh_driver_free(b->drv);
	free(b);
	return r;
}

void vh_blk_close(struct vh_blk *b)
{
	struct vh_blk_done done[BATCH];

	if (!b)
		return;
	/* Let requests in flight finish (bounded) so the device is not stopped under them. */
	for (unsigned i = 0; b->q && i < b->nq; i++) {
		int64_t deadline;

		vhp_driver_deadline(b->drv, -1, &deadline);
		while (vh_blk_inflight(b, i) && !vh_driver_error(b->drv)) {
			int left = vhp_driver_remaining_ms(deadline);

			if (left == 0 || vh_blk_complete(b, i, done, BATCH, 1, left) < 0)
				break;
		}
	}
	vh_driver_free(b->drv);
	free_queues(b);
	free(b);
}

const struct vh_blk_config *vh_blk_config(const struct vh_blk *b)
{
	return b ? &b->cfg : NULL;
}

struct vh_driver *vh_blk_driver(const struct vh_blk *b)
{
	return b ? b->drv : NULL;
}

unsigned vh_blk_num_queues(const struct vh_blk *b)
{
	return b ? b->nq : 0;
}

unsigned vh_blk_inflight(const struct vh_blk *b, unsigned q)
{
	if (!b || q >= b->nq)
		return 0;
	return b->q[q].nslots - b->q[q].nfree;
}

int vh_blk_buf_alloc(struct vh_blk *b, size_t size, size_t align, void **buf)
{
	if (!b || !buf)
		return -EINVAL;
	return vh_driver_alloc(b->drv, size, align ? align : VH_BLK_SECTOR_SIZE, buf, NULL);
}

/* ---- Building requests -------------------------------------------------------------------- */

static int check_range(const struct vh_blk *b, uint64_t sector, uint64_t nsectors)
{
	uint64_t end;

	if (__builtin_add_overflow(sector, nsectors, &end))
		return -ERANGE;
	if (b->cfg.have_config && end > b->cfg.capacity)
		return -ERANGE;
	return 0;
}

/*
 * Fills segs for request r using slot s; returns the number of segments and sets *out_num,
 * or a negative errno when the request is invalid.
 */
static int build(struct vh_blk *b, struct blk_queue *bq, const struct vh_blk_req *r, unsigned s,
		 struct vh_vq_seg *segs, uint16_t *out_num)
{
	uint8_t *slot = bq->slot_mem + (size_t)s * SLOT_SIZE;
	uint64_t slot_gpa = bq->slot_gpa + (uint64_t)s * SLOT_SIZE, gpa;
	struct blk_outhdr hdr;
	struct blk_range range;
	unsigned n = 0, type;
	int e;

	memset(&hdr, 0, sizeof(hdr));
	segs[n++] = (struct vh_vq_seg){ slot_gpa + SLOT_HDR, sizeof(hdr) };
	switch (r->op) {
	case VH_BLK_OP_READ:
	case VH_BLK_OP_WRITE: {
		uint32_t left = r->len, piece;

		type = r->op == VH_BLK_OP_READ ? T_IN : T_OUT;
		if (r->len == 0 || r->len % VH_BLK_SECTOR_SIZE || !r->buf)
			return -EINVAL;
		if (r->op == VH_BLK_OP_WRITE && has(b, VH_BLK_F_RO))
			return -EROFS;
		e = check_range(b, r->sector, r->len / VH_BLK_SECTOR_SIZE);
		if (e < 0)
			return e;
		e = vh_driver_gpa(b->drv, r->buf, r->len, &gpa);
		if (e < 0)
			return -EFAULT;
		while (left) {
			if (n - 1 >= b->max_segs)
				return -EINVAL; /* more segments than the device takes */
			piece = b->seg_len && left > b->seg_len ? b->seg_len : left;
			segs[n++] = (struct vh_vq_seg){ gpa, piece };
			gpa += piece;
			left -= piece;
		}
		*out_num = r->op == VH_BLK_OP_WRITE ? (uint16_t)n : 1;
		break;
	}
	case VH_BLK_OP_FLUSH:
		if (!has(b, VH_BLK_F_FLUSH))
			return -EOPNOTSUPP;
		type = T_FLUSH;
		*out_num = 1;
		break;
	case VH_BLK_OP_GET_ID:
		if (!r->buf || r->len < VH_BLK_ID_BYTES)
			return -EINVAL;
		if (vh_driver_gpa(b->drv, r->buf, VH_BLK_ID_BYTES, &gpa) < 0)
			return -EFAULT;
		type = T_GET_ID;
		segs[n++] = (struct vh_vq_seg){ gpa, VH_BLK_ID_BYTES };
		*out_num = 1;
		break;
	case VH_BLK_OP_DISCARD:
	case VH_BLK_OP_WRITE_ZEROES: {
		int dis = r->op == VH_BLK_OP_DISCARD;
		uint32_t max = dis ? b->cfg.max_discard_sectors : b->cfg.max_write_zeroes_sectors;

		if (!has(b, dis ? VH_BLK_F_DISCARD : VH_BLK_F_WRITE_ZEROES))
			return -EOPNOTSUPP;
		if (has(b, VH_BLK_F_RO))
			return -EROFS;
		if (r->nsectors == 0 || (max && r->nsectors > max))
			return -EINVAL;
		e = check_range(b, r->sector, r->nsectors);
		if (e < 0)
			return e;
		type = dis ? T_DISCARD : T_WRITE_ZEROES;
		range.sector = htole64(r->sector);
		range.num_sectors = htole32(r->nsectors);
		range.flags = htole32(!dis && (r->flags & VH_BLK_REQ_F_UNMAP) ? 1u : 0u);
		memcpy(slot + SLOT_RANGE, &range, sizeof(range));
		segs[n++] = (struct vh_vq_seg){ slot_gpa + SLOT_RANGE, sizeof(range) };
		*out_num = 2;
		break;
	}
	default:
		return -EINVAL;
	}
	hdr.type = htole32(type);
	hdr.sector = htole64(type == T_IN || type == T_OUT ? r->sector : 0);
	memcpy(slot + SLOT_HDR, &hdr, sizeof(hdr));
	/* A device that completes without writing a status is caught by this value. */
	__atomic_store_n(slot + SLOT_STATUS, 0xff, __ATOMIC_RELAXED);
	segs[n++] = (struct vh_vq_seg){ slot_gpa + SLOT_STATUS, 1 };
	return (int)n;
}

int vh_blk_submit(struct vh_blk *b, unsigned q, const struct vh_blk_req *reqs, unsigned n)
{
	struct blk_queue *bq;
	unsigned done = 0;
	int first_err = 0, r;

	if (!b || q >= b->nq || (n && !reqs))
		return -EINVAL;
	r = vh_driver_error(b->drv);
	if (r)
		return r;
	bq = &b->q[q];
	while (done < n && !first_err) {
		unsigned k = 0, segs_used = 0;

		while (k < BATCH && done + k < n && bq->nfree > k) {
			const struct vh_blk_req *rq = &reqs[done + k];
			unsigned s = bq->free[bq->nfree - 1 - k];
			struct vh_vq_seg *segs = bq->segs + segs_used;
			uint16_t out_num = 0;
			int ns = build(b, bq, rq, s, segs, &out_num);

			if (ns < 0) {
				first_err = ns;
				break;
			}
			bq->vreqs[k] = (struct vh_vq_driver_req){ segs, out_num,
								  (uint16_t)(ns - out_num), s };
			segs_used += (unsigned)ns;
			k++;
		}
		if (k == 0)
			break;
		r = vh_driver_add(b->drv, q, bq->vreqs, k);
		if (r < 0) {
			if (done)
				break;
			return r;
		}
		for (int i = 0; i < r; i++) {
			unsigned s = bq->free[bq->nfree - 1];

			bq->nfree--;
			bq->slots[s].busy = 1;
			bq->slots[s].user_data = reqs[done + (unsigned)i].user_data;
		}
		done += (unsigned)r;
		if ((unsigned)r < k)
			break; /* ring full */
	}
	if (done) {
		r = vh_driver_kick(b->drv, q);
		if (r < 0)
			return r;
		return (int)done;
	}
	return first_err;
}

static int map_status(uint8_t s)
{
	switch (s) {
	case S_OK: return 0;
	case S_IOERR: return -EIO;
	case S_UNSUPP: return -EOPNOTSUPP;
	default: return -EPROTO;
	}
}

/* Collects what is done without waiting. */
static int harvest(struct vh_blk *b, unsigned q, struct vh_blk_done *out, unsigned max)
{
	struct blk_queue *bq = &b->q[q];
	int n, i;

	if (max > bq->nslots)
		max = bq->nslots;
	n = vh_driver_get_used(b->drv, q, bq->used, max);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		uint64_t s = bq->used[i].token;

		/* The ring layer only returns tokens it was given; check anyway. */
		if (s >= bq->nslots || !bq->slots[s].busy)
			return vhp_driver_fail(b->drv, -EIO);
		out[i].user_data = bq->slots[s].user_data;
		out[i].status = map_status(
			__atomic_load_n(bq->slot_mem + s * SLOT_SIZE + SLOT_STATUS, __ATOMIC_RELAXED));
		bq->slots[s].busy = 0;
		bq->free[bq->nfree++] = (uint16_t)s;
	}
	return n;
}

int vh_blk_complete(struct vh_blk *b, unsigned q, struct vh_blk_done *done, unsigned max,
		    unsigned min, int timeout_ms)
{
	unsigned count = 0;
	int64_t deadline;
	int r;

	if (!b || q >= b->nq || (max && !done))
		return -EINVAL;
	if (min > max)
		min = max;
	vhp_driver_deadline(b->drv, timeout_ms, &deadline);
	for (;;) {
		r = harvest(b, q, done + count, max - count);
		if (r < 0)
			return count ? (int)count : r;
		count += (unsigned)r;
		if (count >= min || count == max || timeout_ms == 0)
			return (int)count;
		if (vhp_driver_remaining_ms(deadline) == 0) /* bounded even if waits keep waking */
			return count ? (int)count : -ETIMEDOUT;
		r = vh_driver_wait(b->drv, q, vhp_driver_remaining_ms(deadline));
		if (r == -ENODATA)
			return (int)count;
		if (r < 0)
			return count ? (int)count : r;
	}
}

/* ---- Synchronous calls -------------------------------------------------------------------- */

static int run_one(struct vh_blk *b, unsigned q, const struct vh_blk_req *rq)
{
	struct vh_blk_done d;
	int r;

	if (!b || q >= b->nq)
		return -EINVAL;
	r = vh_driver_error(b->drv);
	if (r)
		return r;
	if (vh_blk_inflight(b, q))
		return -EBUSY;
	r = vh_blk_submit(b, q, rq, 1);
	if (r < 0)
		return r;
	if (r == 0)
		return -EAGAIN;
	r = vh_blk_complete(b, q, &d, 1, 1, -1);
	if (r < 0)
		return r;
	if (r == 0)
		return -ETIMEDOUT;
	return d.status;
}

/* Largest transfer of one request through the bounce buffer. */
static uint32_t chunk_max(const struct vh_blk *b)
{
	uint64_t m = b->bounce_size;

	if (b->seg_len) {
		uint64_t lim = (uint64_t)b->seg_len * b->max_segs;

		lim &= ~(uint64_t)(VH_BLK_SECTOR_SIZE - 1);
		if (lim && lim < m)
			m = lim;
	}
	return (uint32_t)m;
}

static int rw(struct vh_blk *b, unsigned q, uint64_t sector, void *rbuf, const void *wbuf,
	      size_t len)
{
	struct vh_blk_req rq;
	size_t off = 0;
	int r;

	if (!b || q >= b->nq || len % VH_BLK_SECTOR_SIZE || (len && !rbuf && !wbuf))
		return -EINVAL;
	while (off < len) {
		uint32_t n = chunk_max(b);

		if (len - off < n)
			n = (uint32_t)(len - off);
		memset(&rq, 0, sizeof(rq));
		rq.op = rbuf ? VH_BLK_OP_READ : VH_BLK_OP_WRITE;
		rq.sector = sector + off / VH_BLK_SECTOR_SIZE;
		rq.buf = b->q[q].bounce;
		rq.len = n;
		if (wbuf)
			memcpy(b->q[q].bounce, (const uint8_t *)wbuf + off, n);
		r = run_one(b, q, &rq);
		if (r < 0)
			return r;
		if (rbuf)
			memcpy((uint8_t *)rbuf + off, b->q[q].bounce, n);
		off += n;
	}
	return 0;
}

int vh_blk_read(struct vh_blk *b, unsigned q, uint64_t sector, void *buf, size_t len)
{
	if (len && !buf)
		return -EINVAL;
	return rw(b, q, sector, buf ? buf : (void *)"", NULL, len);
}

int vh_blk_write(struct vh_blk *b, unsigned q, uint64_t sector, const void *buf, size_t len)
{
	if (len && !buf)
		return -EINVAL;
	return rw(b, q, sector, NULL, buf ? buf : "", len);
}

int vh_blk_flush(struct vh_blk *b, unsigned q)
{
	struct vh_blk_req rq = { .op = VH_BLK_OP_FLUSH };

	return run_one(b, q, &rq);
}

static int ranges(struct vh_blk *b, unsigned q, enum vh_blk_op op, uint64_t sector,
		  uint64_t nsectors, int unmap)
{
	struct vh_blk_req rq;
	uint32_t max;
	int r;

	if (!b || q >= b->nq || nsectors == 0)
		return -EINVAL;
	max = op == VH_BLK_OP_DISCARD ? b->cfg.max_discard_sectors : b->cfg.max_write_zeroes_sectors;
	if (max == 0)
		max = UINT32_MAX;
	r = check_range(b, sector, nsectors);
	if (r < 0)
		return r;
	while (nsectors) {
		uint32_t n = nsectors > max ? max : (uint32_t)nsectors;

		memset(&rq, 0, sizeof(rq));
		rq.op = op;
		rq.sector = sector;
		rq.nsectors = n;
		rq.flags = unmap ? VH_BLK_REQ_F_UNMAP : 0;
		r = run_one(b, q, &rq);
		if (r < 0)
			return r;
		sector += n;
		nsectors -= n;
	}
	return 0;
}

int vh_blk_discard(struct vh_blk *b, unsigned q, uint64_t sector, uint64_t nsectors)
{
	return ranges(b, q, VH_BLK_OP_DISCARD, sector, nsectors, 0);
}

int vh_blk_write_zeroes(struct vh_blk *b, unsigned q, uint64_t sector, uint64_t nsectors,
			int unmap)
{
	return ranges(b, q, VH_BLK_OP_WRITE_ZEROES, sector, nsectors, unmap);
}

int vh_blk_get_id(struct vh_blk *b, unsigned q, char id[VH_BLK_ID_BYTES + 1])
{
	struct vh_blk_req rq;
	int r;

	if (!b || q >= b->nq || !id)
		return -EINVAL;
	memset(&rq, 0, sizeof(rq));
	rq.op = VH_BLK_OP_GET_ID;
	rq.buf = b->q[q].bounce;
	rq.len = VH_BLK_ID_BYTES;
	memset(b->q[q].bounce, 0, VH_BLK_ID_BYTES);
	r = run_one(b, q, &rq);
	if (r < 0)
		return r;
	memcpy(id, b->q[q].bounce, VH_BLK_ID_BYTES);
	id[VH_BLK_ID_BYTES] = '\0';
	return 0;
}
