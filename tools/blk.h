/* SPDX-License-Identifier: MIT */
/*
 * vhost-user-blk internals shared by tools/vhost-user-blk.c (command line, config space,
 * server callbacks), tools/blk_req.c (request parsing: pure functions over iovecs, unit
 * tested) and tools/blk_io.c (the queue data path: io_uring or synchronous I/O).
 *
 * Request layout (virtio 1.x, 5.2.6): a 16-byte header {le32 type, le32 ioprio, le64 sector}
 * in the device-readable part, then data (readable for OUT, writable for IN / GET_ID), and the
 * status byte, the last device-writable byte. With VERSION_1 (ANY_LAYOUT) any of these may be
 * split over descriptors or share one, so parsing never assumes descriptor boundaries.
 */
#ifndef LIBVHOST_TOOLS_BLK_H
#define LIBVHOST_TOOLS_BLK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include <libvhost/ring.h>

#define BLK_SECTOR 512u
#define BLK_SECTOR_SHIFT 9
#define BLK_ID_BYTES 20u
/* Segments one DISCARD / WRITE_ZEROES request may carry (config max_*_seg). */
#define BLK_MAX_SEGS 16u
/* Sectors per DISCARD / WRITE_ZEROES segment (config max_*_sectors): 2 GiB - 512. */
#define BLK_MAX_RANGE_SECTORS 0x3fffffu

/* Request types and statuses (virtio 1.x 5.2.6). */
#define BLK_T_IN 0u
#define BLK_T_OUT 1u
#define BLK_T_FLUSH 4u
#define BLK_T_GET_ID 8u
#define BLK_T_DISCARD 11u
#define BLK_T_WRITE_ZEROES 13u
#define BLK_S_OK 0u
#define BLK_S_IOERR 1u
#define BLK_S_UNSUPP 2u
#define BLK_WZ_FLAG_UNMAP 1u

/* Device feature bits (virtio 1.x 5.2.3). */
#define BLK_F_SIZE_MAX 1
#define BLK_F_SEG_MAX 2
#define BLK_F_RO 5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9
#define BLK_F_TOPOLOGY 10
#define BLK_F_CONFIG_WCE 11
#define BLK_F_MQ 12
#define BLK_F_DISCARD 13
#define BLK_F_WRITE_ZEROES 14

/* struct virtio_blk_config as Linux 6.3+ lays it out (zoned fields included, left zero), so any
 * front-end's GET_CONFIG size is covered. Little-endian; this host is little-endian. */
struct blk_config {
	uint64_t capacity;                  /* 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;                 /* geometry: not offered */
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;         /* topology */
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;                  /* CONFIG_WCE */
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
	uint32_t max_secure_erase_sectors;
	uint32_t max_secure_erase_seg;
	uint32_t secure_erase_sector_alignment;
	uint32_t zone_sectors;
	uint32_t max_open_zones;
	uint32_t max_active_zones;
	uint32_t max_append_sectors;
	uint32_t write_granularity;
	uint8_t model;
	uint8_t unused2[3];
};
_Static_assert(sizeof(struct blk_config) == 96, "virtio_blk_config size");
_Static_assert(offsetof(struct blk_config, blk_size) == 20, "blk_size offset");
_Static_assert(offsetof(struct blk_config, writeback) == 32, "writeback offset");
_Static_assert(offsetof(struct blk_config, num_queues) == 34, "num_queues offset");
_Static_assert(offsetof(struct blk_config, max_discard_sectors) == 36, "discard offset");
_Static_assert(offsetof(struct blk_config, write_zeroes_may_unmap) == 56, "wz offset");
_Static_assert(offsetof(struct blk_config, zone_sectors) == 72, "zoned offset");

struct blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};
_Static_assert(sizeof(struct blk_outhdr) == 16, "virtio_blk_outhdr size");

/* One DISCARD / WRITE_ZEROES segment. */
struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};
_Static_assert(sizeof(struct blk_range) == 16, "virtio_blk_discard_write_zeroes size");

/* ---- Gather-copy helpers (bounded by the iovecs; never read or write past them) ---------- */

/* Copies up to len bytes starting `off` bytes into iov[0..n) to dst; returns bytes copied. */
size_t blk_iov_to_buf(const struct iovec *iov, unsigned n, uint64_t off, void *dst, size_t len);
/* Copies up to len bytes from src into iov[0..n) starting `off` bytes in; returns bytes copied. */
size_t blk_buf_to_iov(const struct iovec *iov, unsigned n, uint64_t off, const void *src,
		      size_t len);

/* ---- Request parsing ---------------------------------------------------------------------- */

/* What the device knows when it parses. */
struct blk_geometry {
	uint64_t capacity;       /* sectors */
	int read_only;
	uint32_t max_segs;       /* per DISCARD / WRITE_ZEROES request */
	uint32_t max_range;      /* sectors per segment */
};

/*
 * A parsed request. The data iovecs point INTO the element's iovec array, whose first data
 * piece (OUT: where the header ends inside a piece) and last piece (the status byte sharing
 * a piece) may have been trimmed in place; blk_req_restore() puts them back before the element
 * is pushed (the server logs dirty pages from the untouched array).
 */
struct blk_parsed {
	uint32_t type;
	uint64_t sector;
	uint8_t *status;          /* the last writable byte; NULL if the chain has none */
	struct iovec *data;       /* IN/OUT payload; GET_ID: where the id goes */
	unsigned ndata;
	uint64_t data_len;
	uint32_t nranges;         /* DISCARD / WRITE_ZEROES */
	struct blk_range ranges[BLK_MAX_SEGS];
	/* trimmed pieces and their original values */
	struct iovec *trim_first, *trim_last;
	struct iovec saved_first, saved_last;
};

/*
 * Parses elem (popped, iovecs filled). Returns BLK_S_OK if the request is to be executed,
 * or the status to complete it with at once (IOERR: malformed, out of range, a write to a
 * read-only disk; UNSUPP: unknown type or flags). p->status is set whenever the chain has a
 * writable byte, also on failure. The element's iovecs are trimmed only on BLK_S_OK.
 *
 * blk_req_parse() is the inline fast path for the layout guests use: the whole header in the
 * first readable piece, a non-empty last writable piece, a valid IN or OUT. Anything else, and
 * every failure, goes to blk_req_parse_slow(), the general parser, which reads the request
 * afresh and gives the same result for any layout (so the fast path never decides a status
 * other than OK).
 */
unsigned blk_req_parse_slow(struct vh_vq_elem *elem, const struct blk_geometry *g,
			    struct blk_parsed *p);
/* Undoes the trimming (blk_req_restore()'s out-of-line part). */
void blk_req_restore_slow(struct blk_parsed *p);

/* What the fast path learns from a request of the usual layout. */
struct blk_fast {
	uint32_t type;           /* BLK_T_IN or BLK_T_OUT */
	uint64_t sector;
	uint64_t len;            /* data bytes: whole sectors, inside the disk */
	uint8_t *status;         /* the last byte of the last writable piece */
};

/*
 * 1 if e is a valid IN or OUT whose header lies wholly in the first readable piece and whose
 * last writable piece is not empty; f then says what it asks. 0 for anything else (another
 * layout, type or any error): blk_req_parse_slow() decides those. Touches nothing.
 */
static inline int blk_req_fast(const struct vh_vq_elem *e, const struct blk_geometry *g,
			       struct blk_fast *f)
{
	const struct iovec *iov = e->iov, *last;
	uint32_t type;
	uint64_t sector, len;

	if (__builtin_expect(e->out_num == 0 || e->in_num == 0 ||
			     iov[0].iov_len < sizeof(struct blk_outhdr), 0))
		return 0;
	last = &iov[e->out_num + e->in_num - 1];
	if (__builtin_expect(last->iov_len == 0, 0))
		return 0;
	memcpy(&type, (const uint8_t *)iov[0].iov_base + offsetof(struct blk_outhdr, type),
	       sizeof(type));
	memcpy(&sector, (const uint8_t *)iov[0].iov_base + offsetof(struct blk_outhdr, sector),
	       sizeof(sector));
	/* The guest may rewrite the header meanwhile: decide on one read of it, held in
	 * registers, never on a second load from guest memory. */
	__asm__("" : "+r"(type), "+r"(sector));
	if (type == BLK_T_IN)
		len = e->in_len - 1;
	else if (type == BLK_T_OUT && !g->read_only)
		len = e->out_len - sizeof(struct blk_outhdr);
	else
		return 0;
	if (__builtin_expect((len & (BLK_SECTOR - 1)) != 0 || sector > g->capacity ||
			     (len >> BLK_SECTOR_SHIFT) > g->capacity - sector, 0))
		return 0;
	f->type = type;
	f->sector = sector;
	f->len = len;
	f->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	return 1;
}

/* Fills p for a request blk_req_fast() accepted as f: the data pieces, trimmed in place where
 * the header or the status shares a piece with data. */
static inline void blk_req_fast_fill(struct vh_vq_elem *e, const struct blk_fast *f,
				     struct blk_parsed *p)
{
	struct iovec *iov = e->iov;

	p->type = f->type;
	p->sector = f->sector;
	p->status = f->status;
	p->data_len = f->len;
	p->nranges = 0;
	p->trim_first = NULL;
	p->trim_last = NULL;
	if (f->type == BLK_T_IN) {
		struct iovec *last = &iov[e->out_num + e->in_num - 1];

		/* Data: the writable pieces without the status byte. */
		p->data = &iov[e->out_num];
		p->ndata = e->in_num - 1;
		if (last->iov_len != 1) {
			p->trim_last = last;
			p->saved_last = *last;
			last->iov_len--;
			p->ndata++;
		}
	} else if (iov[0].iov_len == sizeof(struct blk_outhdr)) {
		/* Data: the readable pieces after the header's own. */
		p->data = &iov[1];
		p->ndata = e->out_num - 1;
	} else {
		/* The data starts in the header's piece. */
		p->trim_first = &iov[0];
		p->saved_first = iov[0];
		iov[0].iov_base = (uint8_t *)iov[0].iov_base + sizeof(struct blk_outhdr);
		iov[0].iov_len -= sizeof(struct blk_outhdr);
		p->data = iov;
		p->ndata = e->out_num;
	}
}

static inline unsigned blk_req_parse(struct vh_vq_elem *e, const struct blk_geometry *g,
				     struct blk_parsed *p)
{
	struct blk_fast f;

	if (__builtin_expect(!blk_req_fast(e, g, &f), 0))
		return blk_req_parse_slow(e, g, p);
	blk_req_fast_fill(e, &f, p);
	return BLK_S_OK;
}

/* Undoes the in-place trimming of blk_req_parse(). */
static inline void blk_req_restore(struct blk_parsed *p)
{
	if (__builtin_expect(p->trim_first != NULL || p->trim_last != NULL, 0))
		blk_req_restore_slow(p);
}

/* ---- Device and queues (blk_io.c) ------------------------------------------------------- */

struct vh_server_queue;

/* Counters for the statistics line (relaxed atomics: any thread). */
struct blk_stats {
	_Atomic uint64_t reads, writes, flushes, get_ids, discards, write_zeroes;
	_Atomic uint64_t bytes_read, bytes_written;
	_Atomic uint64_t ioerr, unsupp, fallbacks, connections, max_inflight;
};

struct blk_dev {
	int fd;                  /* backing file or block device (owned); -1 with --null */
	int is_blockdev;
	int read_only;
	int null_io;             /* --null: complete without touching any backing store */
	int use_uring;           /* 0: synchronous preadv/pwritev on the worker */
	int busy_poll;           /* the server busy-polls queues (--poll-us): `process` is
				  * called again soon after it found work */
	_Atomic int writeback;   /* config writeback byte: 0 = writes are made durable first */
	_Atomic int no_zero_range; /* fallocate ZERO_RANGE refused once: go straight to fallback */
	struct blk_geometry geo;
	unsigned num_queues;
	unsigned queue_size;     /* largest ring accepted; requests per queue are bounded by it */
	char serial[BLK_ID_BYTES];
	struct blk_config config;
	struct blk_stats st;
};

/* Server callbacks (blk_io.c); opaque is the struct blk_dev. */
int blk_queue_start(void *opaque, struct vh_server_queue *q);
void blk_queue_stop(void *opaque, struct vh_server_queue *q);
void blk_process(void *opaque, struct vh_server_queue *q);

#endif
