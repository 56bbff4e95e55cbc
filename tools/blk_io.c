/* SPDX-License-Identifier: MIT */
/*
 * vhost-user-blk data path: per queue, pop requests in batches, parse them, hand reads and
 * writes to io_uring with the guest's own iovecs (zero copy), keep many in flight, and push
 * completions in batches with one notification each.
 *
 * Each queue owns an io_uring and an eventfd the ring signals on completion; the eventfd is
 * registered with the server (vh_server_queue_watch_fd), so completions run `process` on the
 * queue's worker like kicks do, with the queue lock held: the queue's state needs no lock of
 * its own. Without io_uring (--aio=sync, or io_uring unavailable) each request is executed
 * synchronously on the worker.
 *
 * On queue stop (GET_VRING_BASE, reset, disconnect) everything in flight is waited for and
 * completed before the ring goes away: the kernel must not write into guest memory the
 * server is about to unmap. A request the front-end never sees completed (the process was
 * killed) is resubmitted by the next server instance from the inflight buffer.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <libvhost/server.h>

#include "blk.h"
#include "common/devserver.h"

#define BLK_POP_BATCH 32u
/* Request types counted in the statistics: IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES. */
#define BLK_NTYPES 6u
#define BLK_CQE_BATCH 64u
#define BLK_URING_MAX_ENTRIES 1024u
/* How long a stopping queue waits for the kernel to finish a request before giving up. */
#define BLK_STOP_WAIT_S 30

#define ST_ADD(dev, f, n) atomic_fetch_add_explicit(&(dev)->st.f, (n), memory_order_relaxed)

/* A request in flight (operations in io_uring or run one by one), or, while free, the place a
 * popped request is parsed into: one that completes at once never takes the slot. */
struct blk_req {
	struct vh_vq_elem elem;  /* copied from the pop array only when the request stays */
	struct blk_parsed p;
	uint32_t idx;            /* this slot's index in reqs[] */
	uint8_t status;
	uint8_t wz_fallback;     /* per range: ZERO_RANGE/PUNCH_HOLE was refused */
	uint16_t pending;        /* io_uring operations not completed yet */
};

struct blk_queue {
	struct blk_dev *dev;
	struct vh_server_queue *q;
	struct blk_req *reqs;
	uint32_t *free_list;
	unsigned nreq, nfree;
	struct vh_vq_used *done;  /* completions not pushed yet */
	unsigned ndone;
	int in_process;           /* in `process` (queue lock held): push_locked */
	struct io_uring ring;
	int have_ring;
	int efd;
	unsigned io_reqs;         /* requests with operations in io_uring */
	/* Requests counted by type during one `process`, added to the device's statistics at
	 * its end (one atomic add per type and call, not per request). */
	uint32_t counts[BLK_NTYPES];
	uint64_t bytes[2];        /* bytes read, written */
	int counted_other;        /* counts[2..] or bytes[] are not all zero */
	/* Pop destination, reused across calls; kept with null iovec pointers between pops (the
	 * server's cheap case: it points such elements at its own storage). */
	struct vh_vq_elem elems[BLK_POP_BATCH];
};

/* ---- Synchronous operations (the fallback engine, and fallbacks of the async one) ---------- */

/*
 * Reads or writes len bytes at off through iov, the first `done` bytes of which are already
 * transferred (a short io_uring result). Vectored first, then piece by piece.
 */
static int rw_sync(int fd, int write, const struct iovec *iov, unsigned n, uint64_t off,
		   uint64_t len, uint64_t done, int dsync)
{
	uint64_t skip;

	if (done == 0 && n > 0) {
		int cnt = n > IOV_MAX ? IOV_MAX : (int)n;
		ssize_t k;

		do {
			k = write ? pwritev2(fd, iov, cnt, (off_t)off, dsync ? RWF_DSYNC : 0)
				  : preadv(fd, iov, cnt, (off_t)off);
		} while (k < 0 && errno == EINTR);
		if (k < 0)
			return -errno;
		done = (uint64_t)k;
	}
	skip = done;
	for (unsigned i = 0; i < n && done < len; i++) {
		uint8_t *b = iov[i].iov_base;
		size_t rem = iov[i].iov_len;

		if (skip >= rem) {
			skip -= rem;
			continue;
		}
		b += skip;
		rem -= (size_t)skip;
		skip = 0;
		while (rem) {
			ssize_t k = write ? pwrite(fd, b, rem, (off_t)(off + done))
					  : pread(fd, b, rem, (off_t)(off + done));

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return -errno;
			if (k == 0)
				return -EIO;  /* end of file inside the disk: the file shrank */
			b += k;
			rem -= (size_t)k;
			done += (uint64_t)k;
		}
	}
	if (done != len)
		return -EIO;
	if (write && dsync && fdatasync(fd) < 0)
		return -errno;
	return 0;
}

static int discard_sync(const struct blk_dev *dev, uint64_t off, uint64_t len)
{
	int r;

	if (dev->is_blockdev) {
		uint64_t range[2] = { off, len };

		r = ioctl(dev->fd, BLKDISCARD, range);
	} else {
		r = fallocate(dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)len);
	}
	/* Discard is a hint: a store that cannot deallocate has done its part. */
	if (r < 0 && errno != EOPNOTSUPP)
		return -errno;
	return 0;
}

/* Zeroes when the fast path was refused: punch and re-allocate (files), else write zeroes. */
static int zero_fallback(struct blk_dev *dev, uint64_t off, uint64_t len, int unmap)
{
	static const uint8_t zeros[64 * 1024];

	ST_ADD(dev, fallbacks, 1);
	if (!dev->is_blockdev &&
	    fallocate(dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) == 0) {
		/* A hole reads as zeroes; without UNMAP the blocks are allocated again. */
		if (!unmap && fallocate(dev->fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0 &&
		    errno != EOPNOTSUPP)
			return -errno;
		return 0;
	}
	while (len) {
		size_t k = len > sizeof(zeros) ? sizeof(zeros) : (size_t)len;
		ssize_t w = pwrite(dev->fd, zeros, k, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	if (!atomic_load_explicit(&dev->writeback, memory_order_relaxed) && fdatasync(dev->fd) < 0)
		return -errno;
	return 0;
}

/* The fallocate mode for a WRITE_ZEROES range. */
static int wz_mode(const struct blk_dev *dev, const struct blk_range *r)
{
	/* On a file a punched hole reads as zeroes: UNMAP lets us free the blocks. */
	if ((r->flags & BLK_WZ_FLAG_UNMAP) && !dev->is_blockdev)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

static int wz_sync(struct blk_dev *dev, const struct blk_range *r)
{
	uint64_t off = r->sector << BLK_SECTOR_SHIFT, len = (uint64_t)r->num_sectors << BLK_SECTOR_SHIFT;
	int unmap = (r->flags & BLK_WZ_FLAG_UNMAP) != 0;

	if (!atomic_load_explicit(&dev->no_zero_range, memory_order_relaxed)) {
		if (fallocate(dev->fd, wz_mode(dev, r), (off_t)off, (off_t)len) == 0)
			return 0;
		if (errno != EOPNOTSUPP && errno != EINVAL)
			return -errno;
		atomic_store_explicit(&dev->no_zero_range, 1, memory_order_relaxed);
	}
	return zero_fallback(dev, off, len, unmap);
}

/* ---- Completion --------------------------------------------------------------------------- */

static void flush_done(struct blk_queue *bq)
{
	int r;

	if (!bq->ndone)
		return;
	r = bq->in_process ? vh_server_queue_push_locked(bq->q, bq->done, bq->ndone)
			   : vh_server_queue_push(bq->q, bq->done, bq->ndone);
	if (r < 0)
		vhd_log(VH_LOG_WARN, "queue %u: %u completions not delivered: %s",
			vh_server_queue_index(bq->q), bq->ndone, strerror(-r));
	else
		vh_server_queue_notify(bq->q);
	bq->ndone = 0;
}

/* Writes the status byte, puts the pieces back, queues the used entry of e (parsed into p). */
static inline __attribute__((always_inline)) void req_done(struct blk_queue *bq,
							   const struct vh_vq_elem *e,
							   struct blk_parsed *p, unsigned status)
{
	uint32_t len = 0;

	if (p->status) {
		*p->status = (uint8_t)status;
		/* The whole writable part counts as written: the status byte is its last byte, and
		 * dirty logging covers the first `len` bytes. */
		len = e->in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)e->in_len;
	}
	blk_req_restore(p);
	if (__builtin_expect(status != BLK_S_OK, 0)) {
		if (status == BLK_S_IOERR)
			ST_ADD(bq->dev, ioerr, 1);
		else if (status == BLK_S_UNSUPP)
			ST_ADD(bq->dev, unsupp, 1);
	}
	if (__builtin_expect(bq->ndone == bq->nreq, 0))
		flush_done(bq);
	bq->done[bq->ndone].id = e->id;
	bq->done[bq->ndone].len = len;
	bq->ndone++;
}

/* Completes a request that took its slot, and frees the slot. */
static void req_finish(struct blk_queue *bq, struct blk_req *r)
{
	req_done(bq, &r->elem, &r->p, r->status);
	bq->free_list[bq->nfree++] = r->idx;
}

static void set_error(struct blk_req *r, int err)
{
	(void)err;
	if (r->status == BLK_S_OK)
		r->status = BLK_S_IOERR;
}

/* One operation of request r (range ri for DISCARD / WRITE_ZEROES) ended with res. */
static void op_done(struct blk_queue *bq, struct blk_req *r, unsigned ri, int res)
{
	struct blk_dev *dev = bq->dev;
	struct blk_parsed *p = &r->p;

	switch (p->type) {
	case BLK_T_IN:
	case BLK_T_OUT:
		if (res >= 0 && (uint64_t)res < p->data_len)
			res = rw_sync(dev->fd, p->type == BLK_T_OUT, p->data, p->ndata,
				      p->sector << BLK_SECTOR_SHIFT, p->data_len, (uint64_t)res,
				      !atomic_load_explicit(&dev->writeback, memory_order_relaxed));
		if (res < 0) {
			set_error(r, res);
		} else {
			bq->bytes[p->type == BLK_T_OUT] += p->data_len;
			bq->counted_other = 1;
		}
		break;
	case BLK_T_DISCARD:
		if (res < 0 && res != -EOPNOTSUPP)
			set_error(r, res);
		break;
	case BLK_T_WRITE_ZEROES:
		if (res == -EOPNOTSUPP || res == -EINVAL) {
			atomic_store_explicit(&dev->no_zero_range, 1, memory_order_relaxed);
			res = zero_fallback(dev, p->ranges[ri].sector << BLK_SECTOR_SHIFT,
					    (uint64_t)p->ranges[ri].num_sectors << BLK_SECTOR_SHIFT,
					    (p->ranges[ri].flags & BLK_WZ_FLAG_UNMAP) != 0);
		}
		if (res < 0)
			set_error(r, res);
		break;
	default:  /* FLUSH */
		if (res < 0)
			set_error(r, res);
		break;
	}
	if (res < 0)
		vhd_log(VH_LOG_DEBUG, "queue %u: request type %u sector %" PRIu64 ": %s",
			vh_server_queue_index(bq->q), p->type, p->sector, strerror(-res));
}

/* ---- Submission --------------------------------------------------------------------------- */

static struct io_uring_sqe *get_sqe(struct blk_queue *bq)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&bq->ring);

	if (!sqe) {
		/* The submission ring is full of prepared entries: hand them over, retry once. */
		io_uring_submit(&bq->ring);
		sqe = io_uring_get_sqe(&bq->ring);
	}
	return sqe;
}

/* Prepares operation ri of request r in io_uring; 0, or -EBUSY when no entry was free (the
 * caller then runs it synchronously). */
static inline __attribute__((always_inline)) int op_submit(struct blk_queue *bq,
							   struct blk_req *r, unsigned ri)
{
	struct blk_dev *dev = bq->dev;
	struct blk_parsed *p = &r->p;
	struct io_uring_sqe *sqe = get_sqe(bq);
	off_t off = (off_t)(p->sector << BLK_SECTOR_SHIFT);

	if (!sqe)
		return -EBUSY;
	switch (p->type) {
	case BLK_T_IN:
		io_uring_prep_readv(sqe, dev->fd, p->data, p->ndata, (uint64_t)off);
		break;
	case BLK_T_OUT:
		io_uring_prep_writev(sqe, dev->fd, p->data, p->ndata, (uint64_t)off);
		if (!atomic_load_explicit(&dev->writeback, memory_order_relaxed))
			sqe->rw_flags = RWF_DSYNC;
		break;
	case BLK_T_FLUSH:
		io_uring_prep_fsync(sqe, dev->fd, IORING_FSYNC_DATASYNC);
		break;
	case BLK_T_DISCARD:
		io_uring_prep_fallocate(sqe, dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)(p->ranges[ri].sector << BLK_SECTOR_SHIFT),
					(off_t)((uint64_t)p->ranges[ri].num_sectors << BLK_SECTOR_SHIFT));
		break;
	default:  /* WRITE_ZEROES */
		io_uring_prep_fallocate(sqe, dev->fd, wz_mode(dev, &p->ranges[ri]),
					(off_t)(p->ranges[ri].sector << BLK_SECTOR_SHIFT),
					(off_t)((uint64_t)p->ranges[ri].num_sectors << BLK_SECTOR_SHIFT));
		break;
	}
	io_uring_sqe_set_data64(sqe, ((uint64_t)r->idx << 8) | ri);
	if (r->pending++ == 0)
		bq->io_reqs++;
	return 0;
}

/* Runs operation ri of request r on this thread. */
static void op_sync(struct blk_queue *bq, struct blk_req *r, unsigned ri)
{
	struct blk_dev *dev = bq->dev;
	struct blk_parsed *p = &r->p;
	int res;

	switch (p->type) {
	case BLK_T_IN:
	case BLK_T_OUT:
		res = rw_sync(dev->fd, p->type == BLK_T_OUT, p->data, p->ndata,
			      p->sector << BLK_SECTOR_SHIFT, p->data_len, 0,
			      !atomic_load_explicit(&dev->writeback, memory_order_relaxed));
		break;
	case BLK_T_FLUSH:
		res = fdatasync(dev->fd) < 0 ? -errno : 0;
		break;
	case BLK_T_DISCARD:
		res = discard_sync(dev, p->ranges[ri].sector << BLK_SECTOR_SHIFT,
				   (uint64_t)p->ranges[ri].num_sectors << BLK_SECTOR_SHIFT);
		break;
	default:
		res = wz_sync(dev, &p->ranges[ri]);
		break;
	}
	op_done(bq, r, ri, res);
}

static void count_request(struct blk_queue *bq, uint32_t type)
{
	bq->counted_other |= type != BLK_T_IN && type != BLK_T_OUT;
	switch (type) {
	case BLK_T_IN: bq->counts[0]++; break;
	case BLK_T_OUT: bq->counts[1]++; break;
	case BLK_T_FLUSH: bq->counts[2]++; break;
	case BLK_T_GET_ID: bq->counts[3]++; break;
	case BLK_T_DISCARD: bq->counts[4]++; break;
	case BLK_T_WRITE_ZEROES: bq->counts[5]++; break;
	default: break;
	}
}

static __attribute__((noinline)) void flush_counts_other(struct blk_queue *bq)
{
	struct blk_dev *dev = bq->dev;
	_Atomic uint64_t *const st[BLK_NTYPES] = {
		&dev->st.reads, &dev->st.writes, &dev->st.flushes, &dev->st.get_ids,
		&dev->st.discards, &dev->st.write_zeroes,
	};

	for (unsigned i = 2; i < BLK_NTYPES; i++) {
		if (bq->counts[i]) {
			atomic_fetch_add_explicit(st[i], bq->counts[i], memory_order_relaxed);
			bq->counts[i] = 0;
		}
	}
	if (bq->bytes[0])
		ST_ADD(dev, bytes_read, bq->bytes[0]);
	if (bq->bytes[1])
		ST_ADD(dev, bytes_written, bq->bytes[1]);
	bq->bytes[0] = 0;
	bq->bytes[1] = 0;
	bq->counted_other = 0;
}

static void flush_counts(struct blk_queue *bq)
{
	if (bq->counts[0]) {
		ST_ADD(bq->dev, reads, bq->counts[0]);
		bq->counts[0] = 0;
	}
	if (bq->counts[1]) {
		ST_ADD(bq->dev, writes, bq->counts[1]);
		bq->counts[1] = 0;
	}
	if (bq->counted_other)
		flush_counts_other(bq);
}

/* Queues the used entry of a request whose status byte is written. */
static inline __attribute__((always_inline)) void used_add(struct blk_queue *bq,
							   const struct vh_vq_elem *e)
{
	/* The whole writable part counts as written: the status byte is its last byte, and
	 * dirty logging covers the first `len` bytes. */
	uint32_t len = e->in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)e->in_len;

	if (__builtin_expect(bq->ndone == bq->nreq, 0))
		flush_done(bq);
	bq->done[bq->ndone].id = e->id;
	bq->done[bq->ndone].len = len;
	bq->ndone++;
}

/* Submits or runs the operations of request r, which has taken its slot. */
static void req_submit(struct blk_queue *bq, struct blk_req *r, unsigned nops)
{
	struct blk_dev *dev = bq->dev;

	r->status = BLK_S_OK;
	r->pending = 0;
	/* A block device's discard is an ioctl, which io_uring cannot run here. */
	if (r->p.type == BLK_T_DISCARD && dev->is_blockdev) {
		for (unsigned i = 0; i < nops; i++)
			op_sync(bq, r, i);
		nops = 0;
	}
	for (unsigned i = 0; i < nops; i++) {
		if (!bq->have_ring || op_submit(bq, r, i) < 0)
			op_sync(bq, r, i);
	}
	if (r->pending == 0)
		req_finish(bq, r);
}

/* Takes slot r (the first free one) for e, in flight until its operations end. */
static void req_take(struct blk_queue *bq, struct blk_req *r, const struct vh_vq_elem *e,
		     unsigned nops)
{
	bq->nfree--;
	r->elem = *e;
	req_submit(bq, r, nops);
}

/* req_take() for one read or write (the fast path's requests): straight into io_uring. */
static inline __attribute__((always_inline)) void req_take_rw(struct blk_queue *bq,
							      struct blk_req *r,
							      const struct vh_vq_elem *e)
{
	bq->nfree--;
	r->elem = *e;
	r->status = BLK_S_OK;
	r->pending = 0;
	if (__builtin_expect(!bq->have_ring || op_submit(bq, r, 0) < 0, 0)) {
		op_sync(bq, r, 0);
		req_finish(bq, r);
	}
}

/* Any request the fast path did not take: the general parse, every type and error. */
static __attribute__((noinline)) void req_start_slow(struct blk_queue *bq, struct blk_req *r,
						     struct vh_vq_elem *e)
{
	struct blk_dev *dev = bq->dev;
	struct blk_parsed *p = &r->p;
	unsigned nops, status = blk_req_parse_slow(e, &dev->geo, p);

	count_request(bq, p->type);
	if (status != BLK_S_OK) {
		if (!p->status)
			vhd_log(VH_LOG_DEBUG, "queue %u: request without a status byte",
				vh_server_queue_index(bq->q));
		req_done(bq, e, p, status);
		return;
	}
	switch (p->type) {
	case BLK_T_GET_ID: {
		uint64_t n = p->data_len < BLK_ID_BYTES ? p->data_len : BLK_ID_BYTES;

		blk_buf_to_iov(p->data, p->ndata, 0, dev->serial, (size_t)n);
		req_done(bq, e, p, BLK_S_OK);
		return;
	}
	case BLK_T_IN:
	case BLK_T_OUT:
		nops = p->data_len ? 1 : 0;
		break;
	case BLK_T_FLUSH:
		nops = 1;
		break;
	default:
		nops = p->nranges;
		break;
	}
	if (dev->null_io || nops == 0) {
		req_done(bq, e, p, BLK_S_OK);
		return;
	}
	req_take(bq, r, e, nops);
}

/*
 * Starts the popped request e; bq->nfree > 0 and r is the first free slot. A request that
 * completes at once (--null, no data, any failure) never takes the slot. The usual IN / OUT
 * is decided here without the general parser; with no I/O to do, its pieces are not even
 * split into data and status (nothing reads them).
 */
static inline __attribute__((always_inline)) void req_start(struct blk_queue *bq,
							    struct blk_req *r,
							    struct vh_vq_elem *e)
{
	struct blk_dev *dev = bq->dev;
	struct blk_fast f;

	if (__builtin_expect(!blk_req_fast(e, &dev->geo, &f), 0)) {
		req_start_slow(bq, r, e);
		return;
	}
	bq->counts[f.type]++;  /* IN and OUT are counts[0] and [1] */
	if (dev->null_io || f.len == 0) {
		*f.status = BLK_S_OK;
		used_add(bq, e);
		return;
	}
	blk_req_fast_fill(e, &f, &r->p);
	req_take_rw(bq, r, e);
}

static void reap(struct blk_queue *bq)
{
	struct io_uring_cqe *cqes[BLK_CQE_BATCH];

	for (;;) {
		unsigned n = io_uring_peek_batch_cqe(&bq->ring, cqes, BLK_CQE_BATCH);

		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++) {
			uint64_t ud = io_uring_cqe_get_data64(cqes[i]);
			uint64_t idx = ud >> 8;
			struct blk_req *r;

			if (idx >= bq->nreq)
				continue;  /* not ours: cannot happen */
			r = &bq->reqs[idx];
			op_done(bq, r, (unsigned)(ud & 0xff), cqes[i]->res);
			if (r->pending && --r->pending == 0) {
				bq->io_reqs--;
				req_finish(bq, r);
			}
		}
		io_uring_cq_advance(&bq->ring, n);
	}
}

/* Nulls the iovec pointers the last pop set. The server prepares a run of elements from the
 * first: at most as many as were asked for, as many as it might fill (the requests taken
 * copied theirs). So the run ends within the first group of four that starts with a null
 * element, and testing one element per four finds it. An element left with pointers into the
 * server's storage is still correct, only slower to prepare. */
static inline void elems_clear(struct vh_vq_elem *elems, unsigned max)
{
	struct vh_vq_elem *e = elems, *end4 = elems + (max & ~3u), *end = elems + max;

	for (; e < end4 && e->iov; e += 4) {
		e[0].iov = NULL;
		e[0].iov_gpa = NULL;
		e[1].iov = NULL;
		e[1].iov_gpa = NULL;
		e[2].iov = NULL;
		e[2].iov_gpa = NULL;
		e[3].iov = NULL;
		e[3].iov_gpa = NULL;
	}
	if (e == end4) {
		for (; e < end; e++) {
			e->iov = NULL;
			e->iov_gpa = NULL;
		}
	}
}

static void note_inflight(struct blk_dev *dev, uint64_t n)
{
	uint64_t cur = atomic_load_explicit(&dev->st.max_inflight, memory_order_relaxed);

	while (n > cur && !atomic_compare_exchange_weak_explicit(&dev->st.max_inflight, &cur, n,
								 memory_order_relaxed,
								 memory_order_relaxed))
		;
}

void blk_process(void *opaque, struct vh_server_queue *q)
{
	struct blk_queue *bq = vh_server_queue_get_priv(q);
	struct vh_vq_elem *elems;
	int popped = 0;

	(void)opaque;
	if (!bq)
		return;
	bq->in_process = 1;
	if (bq->efd >= 0) {
		uint64_t v;

		/* Read before reaping: a completion after the reap signals again. */
		if (read(bq->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			vhd_log(VH_LOG_DEBUG, "eventfd: %s", strerror(errno));
	}
	if (bq->have_ring)
		reap(bq);
	elems = bq->elems;
	/* A disabled queue is left alone: its requests wait until it is enabled. */
	while (bq->nfree && vh_server_queue_enabled(q)) {
		unsigned nfree = bq->nfree, max = nfree < BLK_POP_BATCH ? nfree : BLK_POP_BATCH;
		struct blk_req *slot = &bq->reqs[bq->free_list[nfree - 1]];
		int n = vh_server_queue_pop(q, elems, max);

		if (n <= 0) {
			elems_clear(elems, max);
			break;
		}
		popped = 1;
		for (int i = 0; i < n; i++) {
			req_start(bq, slot, &elems[i]);
			if (__builtin_expect(bq->nfree != nfree, 0)) {
				/* the request took the slot: the next free one */
				nfree = bq->nfree;
				slot = nfree ? &bq->reqs[bq->free_list[nfree - 1]] : NULL;
			}
		}
		elems_clear(elems, max);
		note_inflight(bq->dev, bq->nreq - bq->nfree);
		/* A short batch emptied the ring. Polling, the worker calls again soon and that
		 * call's empty pop re-arms the kick before the worker sleeps; with kicks only,
		 * pop until the ring says empty (that pop re-arms it). */
		if ((unsigned)n < max && bq->dev->busy_poll)
			break;
	}
	if (bq->have_ring && io_uring_sq_ready(&bq->ring)) {
		int r = io_uring_submit(&bq->ring);

		/* -EBUSY/-EAGAIN: the kernel is short of room; completions will call us again. */
		if (r < 0 && r != -EBUSY && r != -EAGAIN)
			vhd_log(VH_LOG_WARN, "queue %u: io_uring submit: %s", vh_server_queue_index(q),
				strerror(-r));
		/* Reads and writes the page cache serves complete inside the submit call: push
		 * them with this batch rather than a wake-up later. */
		if (r > 0)
			reap(bq);
	}
	flush_done(bq);
	if (popped || bq->counted_other)
		flush_counts(bq);
	bq->in_process = 0;
}

/* ---- Start / stop --------------------------------------------------------------------------- */

static void queue_free(struct blk_queue *bq)
{
	if (bq->have_ring)
		io_uring_queue_exit(&bq->ring);
	if (bq->efd >= 0)
		close(bq->efd);
	free(bq->reqs);
	free(bq->free_list);
	free(bq->done);
	free(bq);
}

static unsigned pow2_at_least(unsigned n)
{
	unsigned p = 1;

	while (p < n && p < BLK_URING_MAX_ENTRIES)
		p <<= 1;
	return p;
}

int blk_queue_start(void *opaque, struct vh_server_queue *q)
{
	struct blk_dev *dev = opaque;
	struct blk_queue *bq = calloc(1, sizeof(*bq));
	/* Requests in flight never outnumber the ring's entries. */
	unsigned n = vh_server_queue_size(q) ? vh_server_queue_size(q) : dev->queue_size;

	if (!bq)
		return -ENOMEM;
	bq->dev = dev;
	bq->q = q;
	bq->efd = -1;
	bq->nreq = n;
	bq->reqs = calloc(n, sizeof(*bq->reqs));
	bq->free_list = calloc(n, sizeof(*bq->free_list));
	bq->done = calloc(n, sizeof(*bq->done));
	if (!bq->reqs || !bq->free_list || !bq->done) {
		queue_free(bq);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		bq->free_list[i] = n - 1 - i;
		bq->reqs[i].idx = i;
	}
	bq->nfree = n;

	if (dev->use_uring && !dev->null_io) {
		int r = io_uring_queue_init(pow2_at_least(n), &bq->ring, 0);

		if (r < 0) {
			vhd_log(VH_LOG_WARN, "io_uring unavailable (%s): synchronous I/O", strerror(-r));
			dev->use_uring = 0;
		} else {
			bq->have_ring = 1;
			bq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (bq->efd < 0 || io_uring_register_eventfd(&bq->ring, bq->efd) < 0 ||
			    vh_server_queue_watch_fd(q, bq->efd) < 0) {
				vhd_log(VH_LOG_ERR, "queue %u: cannot set up completion events",
					vh_server_queue_index(q));
				queue_free(bq);
				return -EIO;
			}
		}
	}
	vh_server_queue_set_priv(q, bq);
	return 0;
}

void blk_queue_stop(void *opaque, struct vh_server_queue *q)
{
	struct blk_queue *bq = vh_server_queue_get_priv(q);
	time_t last_progress = time(NULL);

	(void)opaque;
	if (!bq)
		return;
	vh_server_queue_watch_fd(q, -1);
	/* Every request the kernel still works on ends before the ring (and maybe the guest
	 * memory) goes away. */
	while (bq->have_ring && bq->io_reqs) {
		struct __kernel_timespec ts = { .tv_sec = 1, .tv_nsec = 0 };
		struct io_uring_cqe *cqe;
		unsigned before = bq->io_reqs;

		if (io_uring_sq_ready(&bq->ring))
			io_uring_submit(&bq->ring);
		(void)io_uring_wait_cqe_timeout(&bq->ring, &cqe, &ts);
		reap(bq);
		if (bq->io_reqs != before)
			last_progress = time(NULL);
		else if (time(NULL) - last_progress > BLK_STOP_WAIT_S) {
			vhd_log(VH_LOG_ERR, "queue %u: %u requests did not complete in %d s; "
				"abandoning them", vh_server_queue_index(q), bq->io_reqs, BLK_STOP_WAIT_S);
			break;
		}
	}
	flush_done(bq);
	flush_counts(bq);
	vh_server_queue_set_priv(q, NULL);
	queue_free(bq);
}
