/* SPDX-License-Identifier: MIT */
/*
 * Driver side ("virtio-user"): a process that owns guest memory and drives a virtio device
 * through the device-control interface (device.h), the way a guest's virtio driver would.
 *
 * One code path for every transport: the caller opens the device with vh_frontend_device_open()
 * (vhost-user socket), vh_vdpa_open() (/dev/vhost-vdpa-N) or vh_kernel_open() (/dev/vhost-net)
 * and hands the struct vh_device to a client:
 *
 *   vh_driver    the generic part: feature negotiation, guest memory (a memfd, vh_guest_mem),
 *                memory table, vrings (num/base/addr/kick/call), ring enable, the status
 *                handshake, batched submit/complete with notification suppression, bounded
 *                waits;
 *   vh_blk       a virtio-blk client on top of it: read, write, flush, discard, write-zeroes and
 *                get-id at sector offsets, several queues, the config space decoded;
 *   vh_net       a virtio-net client: frames with the virtio-net header, RX refill, mergeable
 *                RX buffers on or off, several queue pairs.
 *
 * What differs between transports is decided inside, by what each transport answers:
 *   - vhost-vdpa: the virtio status handshake (reset, ACKNOWLEDGE, DRIVER, features,
 *     FEATURES_OK, DRIVER_OK; vh_vdpa_negotiate()), ACCESS_PLATFORM acked, guest memory placed
 *     inside the device's IOVA range;
 *   - vhost-user: SET_STATUS only when the STATUS protocol feature was negotiated (a transport
 *     that refuses SET_STATUS is taken as having no status); ring enable with bit 30;
 *   - kernel vhost: no status and no ring enable; vhost-net needs a backend fd (tap or packet
 *     socket), given in vh_net_opts.kernel_backend_fd.
 *
 * Features: the device's offer is intersected with what the client wants, so a device that
 * offers less is used with less: no RING_PACKED gives split rings, no EVENT_IDX gives flag
 * based suppression, no INDIRECT_DESC direct chains, no MQ one queue. A feature in `required`
 * that the device does not offer fails the open with -EOPNOTSUPP.
 *
 * The device is untrusted: every index, length and status it writes is checked. A device that
 * breaks a ring (a used id not in flight, a used index that jumps, a length beyond the buffer,
 * a bad num_buffers) makes the client broken: the call returns -EIO and so does every later
 * data-path call (vh_driver_error()). Every wait is bounded by the configured timeout
 * (-ETIMEDOUT); a vhost-user back-end that hangs up ends a wait with -ECONNRESET. Nothing a
 * device does crashes or hangs the process.
 *
 * Ownership: a client BORROWS the vh_device (the caller closes it after closing the client,
 * whose close stops the rings first) and OWNS the guest memory (memfd and mapping), the kick
 * and call eventfds and the ring bookkeeping. Buffers returned by the *_buf_alloc calls live
 * in the guest memory and are released by the client's close.
 *
 * Threads: set-up and close belong to one thread. Data-path calls on DIFFERENT queues may run
 * concurrently from different threads (each queue's state is its own); calls on one queue must
 * be serialised by the caller.
 *
 * Errors: 0 (or a count) on success, a negative errno on failure.
 */
#ifndef LIBVHOST_DRIVER_H
#define LIBVHOST_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <libvhost/device.h>
#include <libvhost/log.h>
#include <libvhost/ring.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Generic driver ======================================================================= */

/* Most queues one driver sets up (blk queues, or net RX+TX rings). */
#define VH_DRIVER_MAX_QUEUES 64u
/* Default bound on a wait, in milliseconds. */
#define VH_DRIVER_DEFAULT_TIMEOUT_MS 5000

/* Transport feature bits the driver side knows how to use (ring layer, layout). */
#define VH_DRIVER_RING_FEATURES                                                              \
	((1ull << 27) /* ANY_LAYOUT (vhost-net: VHOST_NET_F_VIRTIO_NET_HDR) */ |              \
	 VH_VQ_F_INDIRECT_DESC | VH_VQ_F_EVENT_IDX | (1ull << 32) /* VERSION_1 */ |           \
	 VH_VQ_F_RING_PACKED | VH_VQ_F_IN_ORDER)

/* vh_driver_config.flags */
/* Used-buffer notifications stay disabled: waits look at the used rings every ~50 us
 * (sleeping in between, never spinning) instead of sleeping on the call eventfd. For devices
 * that never signal, and to save the device its notifications. */
#define VH_DRIVER_F_POLL 0x1u

/* Protocol features a vhost-user driver needs (pass to vh_frontend_device_open()). */
#define VH_DRIVER_USER_PROTOCOL_FEATURES                                                    \
	(VH_BIT(VH_USER_PROTOCOL_F_MQ) | VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK) |              \
	 VH_BIT(VH_USER_PROTOCOL_F_CONFIG) | VH_BIT(VH_USER_PROTOCOL_F_STATUS) |             \
	 VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

struct vh_driver;

struct vh_driver_config {
	uint64_t features;  /* features wanted (device bits and VH_DRIVER_RING_FEATURES bits;
			     * other transport bits are dropped) */
	uint64_t required;  /* subset of features that must be negotiated, else -EOPNOTSUPP */
	int timeout_ms;     /* bound on every wait; 0 = VH_DRIVER_DEFAULT_TIMEOUT_MS */
	unsigned flags;     /* VH_DRIVER_F_* */
	struct vh_logger log; /* copied; zero value: silent */
};

/* The rings and memory vh_driver_start() sets up. */
struct vh_driver_queues {
	unsigned num_queues;   /* 1..VH_DRIVER_MAX_QUEUES */
	unsigned queue_size;   /* entries per ring; 0 = 256. Lowered to the device's limit
				* (and, for split rings, to a power of two) */
	unsigned indirect_max; /* segments per indirect table when INDIRECT_DESC is negotiated;
				* 0 or 1 = no indirect tables */
	uint64_t mem_size;     /* guest memory for vh_driver_alloc(), beyond the rings */
	/* Called once the rings are configured, before they are enabled and DRIVER_OK is set
	 * (vhost-net: attach the backend). A negative return fails the start. May be NULL. */
	int (*attach)(void *opaque, struct vh_driver *drv);
	/* Called by vh_driver_free() after the rings are stopped (vhost-net: detach). */
	void (*detach)(void *opaque, struct vh_driver *drv);
	void *opaque;
};

/*
 * Takes the device (SET_OWNER), reads its features and negotiates offered & wanted; on vDPA
 * with the status handshake up to FEATURES_OK, elsewhere with ACKNOWLEDGE|DRIVER, SET_FEATURES
 * and FEATURES_OK when the transport has a status. Nothing is mapped yet. dev is borrowed and
 * must outlive the driver.
 */
int vh_driver_new(struct vh_driver **out, struct vh_device *dev, const struct vh_driver_config *cfg);
/*
 * Creates the guest memory (rings + q->mem_size), sends the memory table, configures every
 * ring (num, base, addr, kick and call eventfds), calls q->attach, enables the rings and sets
 * DRIVER_OK (vDPA; vhost-user with STATUS). Once only; on failure the driver can only be freed.
 */
int vh_driver_start(struct vh_driver *drv, const struct vh_driver_queues *q);
/*
 * Stops the device (vDPA: status reset and memory unmapped; vhost-user: GET_VRING_BASE on each
 * ring, then SET_STATUS 0 with STATUS; kernel: GET_VRING_BASE, q->detach, empty memory table),
 * then frees the rings, eventfds and guest memory. NULL is allowed. The device stays open.
 */
void vh_driver_free(struct vh_driver *drv);

struct vh_device *vh_driver_device(const struct vh_driver *drv);
uint64_t vh_driver_features_offered(const struct vh_driver *drv);
uint64_t vh_driver_features(const struct vh_driver *drv); /* negotiated */
unsigned vh_driver_num_queues(const struct vh_driver *drv);
/* Ring size of queue q (0 for a bad q or before start). */
unsigned vh_driver_queue_size(const struct vh_driver *drv, unsigned q);
/* The driver ring of queue q (for vh_vq_driver_num_free() etc.), NULL if none. Borrowed. */
struct vh_vq_driver *vh_driver_vq(const struct vh_driver *drv, unsigned q);
/* The sticky error: 0 while usable, else the negative errno that broke the driver. */
int vh_driver_error(const struct vh_driver *drv);
/* Kicks the driver wrote and used-buffer notifications it received, over all queues. */
uint64_t vh_driver_kicks(const struct vh_driver *drv);
uint64_t vh_driver_calls(const struct vh_driver *drv);

/*
 * Guest memory for buffers (after start): size bytes aligned to align (power of two, 0 = 64)
 * inside one region; *host and *gpa may be NULL. Lives until vh_driver_free(). -ENOMEM when
 * mem_size is used up.
 */
int vh_driver_alloc(struct vh_driver *drv, size_t size, size_t align, void **host, uint64_t *gpa);
/* GPA of [host, host + len) if it lies in the guest memory (one region), else -EFAULT. */
int vh_driver_gpa(const struct vh_driver *drv, const void *host, size_t len, uint64_t *gpa);

/*
 * Data path on queue q. Segments are GPAs in the guest memory.
 *   add:      places up to n requests, not yet visible to the device; returns how many.
 *   kick:     makes them visible (one release store) and kicks only if the device asked for
 *             it (vh_vq_driver_should_kick); returns 1 if it kicked, 0 if not.
 *   submit:   add + kick.
 *   get_used: collects up to max completions without waiting; returns the count.
 *   wait:     sleeps until a completion can be collected: 0, -ETIMEDOUT after timeout_ms
 *             (< 0: the configured timeout), -ENODATA if nothing is in flight, -EIO broken,
 *             -ECONNRESET when a vhost-user back-end hung up.
 * A device that breaks the ring turns the driver broken (-EIO from every call).
 */
int vh_driver_add(struct vh_driver *drv, unsigned q, const struct vh_vq_driver_req *reqs,
		  unsigned n);
int vh_driver_kick(struct vh_driver *drv, unsigned q);
int vh_driver_submit(struct vh_driver *drv, unsigned q, const struct vh_vq_driver_req *reqs,
		     unsigned n);
int vh_driver_get_used(struct vh_driver *drv, unsigned q, struct vh_vq_driver_used *used,
		       unsigned max);
int vh_driver_wait(struct vh_driver *drv, unsigned q, int timeout_ms);
/* The call eventfd of queue q (borrowed; for the caller's own poll loop), or -1. */
int vh_driver_call_fd(const struct vh_driver *drv, unsigned q);

/* Name of a device-independent feature bit (24..40) or NULL. */
const char *vh_driver_feature_name(unsigned bit);

/* ==== virtio-blk ============================================================================ */

#define VH_BLK_F_SIZE_MAX 1
#define VH_BLK_F_SEG_MAX 2
#define VH_BLK_F_GEOMETRY 4
#define VH_BLK_F_RO 5
#define VH_BLK_F_BLK_SIZE 6
#define VH_BLK_F_FLUSH 9
#define VH_BLK_F_TOPOLOGY 10
#define VH_BLK_F_CONFIG_WCE 11
#define VH_BLK_F_MQ 12
#define VH_BLK_F_DISCARD 13
#define VH_BLK_F_WRITE_ZEROES 14

#define VH_BLK_SECTOR_SIZE 512u
#define VH_BLK_ID_BYTES 20u

/* Device features the blk client asks for when vh_blk_opts.features is 0. */
#define VH_BLK_DEFAULT_FEATURES                                                              \
	(VH_BIT(VH_BLK_F_SIZE_MAX) | VH_BIT(VH_BLK_F_SEG_MAX) | VH_BIT(VH_BLK_F_BLK_SIZE) |    \
	 VH_BIT(VH_BLK_F_RO) | VH_BIT(VH_BLK_F_FLUSH) | VH_BIT(VH_BLK_F_TOPOLOGY) |            \
	 VH_BIT(VH_BLK_F_MQ) | VH_BIT(VH_BLK_F_DISCARD) | VH_BIT(VH_BLK_F_WRITE_ZEROES) |      \
	 VH_DRIVER_RING_FEATURES)

/* The decoded config space (fields whose feature was not negotiated are 0). */
struct vh_blk_config {
	uint64_t capacity;         /* sectors of 512 bytes */
	uint32_t size_max;         /* largest segment (SIZE_MAX) */
	uint32_t seg_max;          /* most data segments per request (SEG_MAX) */
	uint32_t blk_size;         /* logical block size (BLK_SIZE) */
	uint16_t num_queues;       /* MQ */
	uint8_t writeback;         /* CONFIG_WCE */
	uint8_t physical_block_exp, alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint32_t max_discard_sectors, max_discard_seg, discard_sector_alignment;
	uint32_t max_write_zeroes_sectors, max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t have_config;       /* 0: the transport gives no config space (capacity unknown) */
};

struct vh_blk_opts {
	uint64_t features;      /* wanted features; 0 = VH_BLK_DEFAULT_FEATURES */
	unsigned num_queues;    /* 0 = 1; more needs MQ (and num_queues in the config) */
	unsigned queue_size;    /* 0 = 256 */
	uint64_t buf_mem;       /* bytes of guest memory for vh_blk_buf_alloc(); 0 = 4 MiB */
	uint32_t bounce_size;   /* per-queue bounce buffer of the copying calls; 0 = 256 KiB */
	int timeout_ms;         /* 0 = VH_DRIVER_DEFAULT_TIMEOUT_MS */
	unsigned flags;         /* VH_DRIVER_F_* */
	struct vh_logger log;
};

struct vh_blk;

/* Negotiates, reads the config, starts the queues. dev is borrowed (see the top). */
int vh_blk_open(struct vh_blk **out, struct vh_device *dev, const struct vh_blk_opts *opts);
/* Waits (bounded) for requests in flight, stops the device and frees. NULL is allowed. */
void vh_blk_close(struct vh_blk *blk);
const struct vh_blk_config *vh_blk_config(const struct vh_blk *blk);
struct vh_driver *vh_blk_driver(const struct vh_blk *blk);
unsigned vh_blk_num_queues(const struct vh_blk *blk);
/* Name of a blk feature bit (device or transport), or NULL. */
const char *vh_blk_feature_name(unsigned bit);

/* Buffers usable by the asynchronous API (in guest memory). align 0 = 512. A set-up call: not
 * concurrently with another allocation. */
int vh_blk_buf_alloc(struct vh_blk *blk, size_t size, size_t align, void **buf);

enum vh_blk_op {
	VH_BLK_OP_READ = 0,
	VH_BLK_OP_WRITE = 1,
	VH_BLK_OP_FLUSH = 4,
	VH_BLK_OP_GET_ID = 8,
	VH_BLK_OP_DISCARD = 11,
	VH_BLK_OP_WRITE_ZEROES = 13,
};

#define VH_BLK_REQ_F_UNMAP 0x1u /* write-zeroes may unmap */

/*
 * One request. READ/WRITE: len bytes (a multiple of 512) at sector, buf from
 * vh_blk_buf_alloc(); split into segments of at most size_max, at most seg_max of them.
 * GET_ID: buf of VH_BLK_ID_BYTES. DISCARD/WRITE_ZEROES: nsectors at sector (buf unused).
 * FLUSH: nothing.
 */
struct vh_blk_req {
	enum vh_blk_op op;
	uint32_t flags;       /* VH_BLK_REQ_F_* */
	uint64_t sector;
	void *buf;
	uint32_t len;
	uint32_t nsectors;    /* DISCARD / WRITE_ZEROES */
	uint64_t user_data;
};

/* A completion. status: 0, -EIO (device I/O error), -EOPNOTSUPP (device: unsupported), or
 * -EPROTO (the device wrote no valid status byte). */
struct vh_blk_done {
	uint64_t user_data;
	int status;
};

/*
 * Places up to n requests on queue q and kicks once. Returns how many were placed (fewer when
 * the ring or the request slots are full: collect completions and retry). A request that is
 * invalid (-EINVAL: length, alignment, size_max/seg_max, buffer outside guest memory -EFAULT,
 * op not negotiated -EOPNOTSUPP, beyond the capacity -ERANGE, RO device -EROFS) is reported
 * when it is the first of the batch, else the batch stops before it.
 */
int vh_blk_submit(struct vh_blk *blk, unsigned q, const struct vh_blk_req *reqs, unsigned n);
/* Collects up to max completions; waits up to timeout_ms (0: no wait, < 0: the configured
 * timeout) for at least min of them. Returns the count (may be below min on timeout: then
 * -ETIMEDOUT if none). */
int vh_blk_complete(struct vh_blk *blk, unsigned q, struct vh_blk_done *done, unsigned max,
		    unsigned min, int timeout_ms);
/* Requests in flight on queue q. */
unsigned vh_blk_inflight(const struct vh_blk *blk, unsigned q);

/*
 * Synchronous calls on queue q, copying through the queue's bounce buffer (buf may be any
 * memory; larger transfers are split). -EBUSY if asynchronous requests are in flight on q.
 */
int vh_blk_read(struct vh_blk *blk, unsigned q, uint64_t sector, void *buf, size_t len);
int vh_blk_write(struct vh_blk *blk, unsigned q, uint64_t sector, const void *buf, size_t len);
int vh_blk_flush(struct vh_blk *blk, unsigned q);
int vh_blk_discard(struct vh_blk *blk, unsigned q, uint64_t sector, uint64_t nsectors);
int vh_blk_write_zeroes(struct vh_blk *blk, unsigned q, uint64_t sector, uint64_t nsectors,
			int unmap);
/* The device's id string: up to 20 bytes, NUL-terminated into id[21]. */
int vh_blk_get_id(struct vh_blk *blk, unsigned q, char id[VH_BLK_ID_BYTES + 1]);

/* ==== virtio-net ============================================================================ */

#define VH_NET_F_CSUM 0
#define VH_NET_F_GUEST_CSUM 1
#define VH_NET_F_MTU 3
#define VH_NET_F_MAC 5
#define VH_NET_F_MRG_RXBUF 15
#define VH_NET_F_STATUS 16
#define VH_NET_F_CTRL_VQ 17
#define VH_NET_F_MQ 22

/* Device features the net client asks for when vh_net_opts.features is 0. Offloads are not
 * asked for (frames are whole and need no checksum help). */
#define VH_NET_DEFAULT_FEATURES                                                              \
	(VH_BIT(VH_NET_F_MTU) | VH_BIT(VH_NET_F_MAC) | VH_BIT(VH_NET_F_MRG_RXBUF) |            \
	 VH_BIT(VH_NET_F_STATUS) | VH_DRIVER_RING_FEATURES)

/* struct virtio_net_hdr_v1: the 12-byte header (10 bytes, without num_buffers, for a legacy
 * device without MRG_RXBUF). Little-endian. */
struct vh_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

struct vh_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
	uint8_t have_mac;      /* MAC negotiated and the config space readable */
	uint8_t have_config;   /* the transport gives a config space */
};

struct vh_net_opts {
	uint64_t features;      /* wanted features; 0 = VH_NET_DEFAULT_FEATURES */
	unsigned queue_pairs;   /* 0 = 1; more only over vhost-user (the back-end serves every
				 * enabled pair; no control queue is used) */
	unsigned queue_size;    /* 0 = 256 */
	uint32_t rx_buf_size;   /* bytes per RX buffer incl. the header; 0 = 2048. Without
				 * MRG_RXBUF a frame must fit one buffer */
	uint32_t tx_buf_size;   /* bytes per TX slot incl. the header; 0 = 2048 (largest frame
				 * = tx_buf_size - header) */
	int kernel_backend_fd;  /* /dev/vhost-net only: tap or AF_PACKET socket attached to both
				 * rings (borrowed; the kernel keeps its own reference). With
				 * ANY_LAYOUT negotiated (bit 27 = VHOST_NET_F_VIRTIO_NET_HDR)
				 * vhost adds and strips the header, so the fd carries plain
				 * frames. Ignored by other transports; set -1 when unused */
	int timeout_ms;
	unsigned flags;         /* VH_DRIVER_F_* */
	struct vh_logger log;
};

struct vh_net;

int vh_net_open(struct vh_net **out, struct vh_device *dev, const struct vh_net_opts *opts);
void vh_net_close(struct vh_net *net);
const struct vh_net_config *vh_net_config(const struct vh_net *net);
struct vh_driver *vh_net_driver(const struct vh_net *net);
unsigned vh_net_queue_pairs(const struct vh_net *net);
/* Header bytes in front of each frame: 12 (VERSION_1 or MRG_RXBUF) or 10. */
size_t vh_net_hdr_len(const struct vh_net *net);
/* Name of a net feature bit (device or transport), or NULL. */
const char *vh_net_feature_name(unsigned bit);

/* A frame to send: the Ethernet frame without the virtio header. hdr NULL = all zero. */
struct vh_net_tx {
	const void *data;
	uint32_t len;
	const struct vh_net_hdr *hdr;
};

/*
 * Copies up to n frames into TX slots of pair `pair` (after collecting finished ones) and kicks
 * once. Returns how many were queued (fewer when the ring is full); -EMSGSIZE if the first
 * frame does not fit a slot (or is empty).
 */
int vh_net_send(struct vh_net *net, unsigned pair, const struct vh_net_tx *frames, unsigned n);
/* Waits until every queued frame of the pair was consumed by the device: 0, -ETIMEDOUT. */
int vh_net_tx_wait(struct vh_net *net, unsigned pair, int timeout_ms);
unsigned vh_net_tx_pending(const struct vh_net *net, unsigned pair);

#define VH_NET_RX_TRUNCATED 0x1u /* the frame was longer than cap: len bytes were copied */

/* A received frame, copied out of the RX buffers (the header is not part of buf). */
struct vh_net_rx {
	void *buf;          /* in: caller memory */
	uint32_t cap;       /* in: its size */
	uint32_t len;       /* out: frame bytes copied */
	uint32_t frame_len; /* out: frame bytes the device delivered */
	uint16_t nbufs;     /* out: RX buffers the frame used (num_buffers with MRG_RXBUF) */
	uint16_t flags;     /* out: VH_NET_RX_* */
	struct vh_net_hdr hdr; /* out */
};

/*
 * Receives up to max frames on pair `pair`, waiting up to timeout_ms (0: no wait, < 0: the
 * configured timeout) for the first one, and reposts the buffers it emptied. Returns the count
 * (0 when none arrived in time).
 */
int vh_net_recv(struct vh_net *net, unsigned pair, struct vh_net_rx *frames, unsigned max,
		int timeout_ms);
/* Posts every free RX buffer of the pair; returns how many were posted. */
int vh_net_rx_refill(struct vh_net *net, unsigned pair);
/* RX buffers currently posted to the device. */
unsigned vh_net_rx_posted(const struct vh_net *net, unsigned pair);

#ifdef __cplusplus
}
#endif
#endif
