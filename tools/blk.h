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
 */
unsigned blk_req_parse(struct vh_vq_elem *elem, const struct blk_geometry *g,
		       struct blk_parsed *p);
/* Undoes the in-place trimming of blk_req_parse(). */
void blk_req_restore(struct blk_parsed *p);

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
