/* SPDX-License-Identifier: MIT */
/*
 * Virtqueue rings: split and packed layouts, device side and driver side.
 *
 * Each layout has one implementation of its index, wrap-counter, descriptor and event-index
 * logic (src/ring_split.c, src/ring_packed.c); the device side (back-ends, device servers) and
 * the driver side (virtio-user style clients, kernel/vDPA tests) are two views of it.
 * Only VIRTIO 1.x little-endian rings are handled (VERSION_1; on a little-endian host legacy
 * rings are byte-identical).
 *
 * Device side (struct vh_vq)
 * --------------------------
 * Created with vh_vq_new() once the ring is fully described (size, addresses, base, acked
 * features, memory table); destroyed with vh_vq_free(). The main calls:
 *
 *   n = vh_vq_pop_batch(vq, elems, max);   elements with iovecs into guest memory (zero copy)
 *   ... process, write into the in-iovecs ...
 *   vh_vq_push_batch(vq, used, n);          one release store of the used index / head flags
 *   if (vh_vq_should_notify(vq) > 0) write(callfd, ...);   one decision per batch
 *
 * The usual loop runs pop until it returns 0, then waits for a kick: when notifications are
 * enabled (the default), a pop that finds the ring empty re-arms the driver's kick
 * (avail_event / event suppression) and looks again, so no kick is lost. A busy-polling
 * worker calls vh_vq_disable_notify() once and never pays for that.
 *
 * Everything read from guest memory is treated as hostile. A descriptor chain that breaks a
 * rule (see enum vh_vq_fault) marks the ring broken: the call returns -EIO, and every later
 * call on the ring returns -EIO without touching guest memory (vh_vq_is_broken(),
 * vh_vq_fault()). The owner then reports NEEDS_RESET / VRING_ERR; nothing crashes or loops.
 *
 * Ownership: a vh_vq owns only its private bookkeeping (allocated by vh_vq_new(); the data path
 * never allocates). It owns no fd. It BORROWS the ring memory and the vh_memory table: both
 * must stay mapped until vh_vq_free() or until vh_vq_set_memory() installs another table (see
 * the replacement rule in memory.h; a table change that moves the ring itself needs a new
 * vh_vq, started from vh_vq_get_base()). Element iovec arrays are caller storage.
 *
 * Threading: a vh_vq is used by one thread at a time (no internal locking).
 *
 * Driver side (struct vh_vq_driver)
 * ---------------------------------
 * Lays the ring out in caller-provided guest memory (normally a chunk of a vh_guest_mem),
 * exposes its three addresses as GPAs and as pointers in this process, adds descriptor chains
 * whose segments are GPAs, publishes them with one release store, decides whether to kick,
 * collects used buffers and enables/disables used-buffer notifications. The device is
 * untrusted here too: a used id that is not in flight or a used index that jumps marks the
 * driver ring broken (-EIO).
 *
 * Ownership: the driver ring owns its private bookkeeping; it BORROWS the ring memory and the
 * indirect-table memory, which must outlive it. It owns no fd.
 */
#ifndef LIBVHOST_RING_H
#define LIBVHOST_RING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <libvhost/log.h>
#include <libvhost/memory.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest queue size of either layout (split: power of two; packed: any value). */
#define VH_VQ_MAX_SIZE 32768u

/* Default bound on the entries of one indirect table (vh_vq_config.max_indirect == 0). */
#define VH_VQ_DEFAULT_MAX_INDIRECT 1024u

/* Features the ring layer understands (bit masks of the virtio feature bits). */
#define VH_VQ_F_NOTIFY_ON_EMPTY (1ull << 24)
#define VH_VQ_F_INDIRECT_DESC   (1ull << 28)
#define VH_VQ_F_EVENT_IDX       (1ull << 29)
#define VH_VQ_F_RING_PACKED     (1ull << 34)
#define VH_VQ_F_IN_ORDER        (1ull << 35)

/*
 * Event-index test shared by both sides and both layouts: true if event_idx lies in
 * [old_idx, new_idx) modulo 2^16, i.e. the other side asked to be notified when the index
 * moved past event_idx and this batch moved it from old_idx to new_idx.
 */
static inline int vh_vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

/* ---- Layout --------------------------------------------------------------------------- */

/*
 * Sizes of the three ring areas for a queue of `num` entries (the byte counts a device must
 * translate in full) and the offsets the driver side uses when it lays them out contiguously
 * (each area starts on a 64-byte boundary so the driver- and device-written parts do not
 * share a cache line).
 */
struct vh_vring_layout {
	size_t desc_size;    /* split: 16 * num;            packed: 16 * num */
	size_t driver_size;  /* split: avail, 6 + 2 * num;   packed: driver event suppression, 4 */
	size_t device_size;  /* split: used, 6 + 8 * num;    packed: device event suppression, 4 */
	size_t desc_off, driver_off, device_off;
	size_t total;        /* bytes of the contiguous layout */
};

/* Alignment the spec requires of each area, for checking ring addresses. */
#define VH_VRING_DESC_ALIGN   16u
#define VH_VRING_SPLIT_AVAIL_ALIGN 2u
#define VH_VRING_SPLIT_USED_ALIGN  4u
#define VH_VRING_PACKED_EVENT_ALIGN 4u

/*
 * Fills *lay for `num` entries of the layout selected by features (VH_VQ_F_RING_PACKED).
 * -EINVAL if num is 0, above VH_VQ_MAX_SIZE or (split) not a power of two.
 */
int vh_vring_layout(unsigned num, uint64_t features, struct vh_vring_layout *lay);

/* ---- Ring position (SET/GET_VRING_BASE) ------------------------------------------------- */

/*
 * Where a device resumes. Split: last_avail_idx is the free-running 16-bit index and the used
 * index is read back from the used ring when the ring starts (as vhost does); used_idx and the
 * wrap counters are ignored on input. Packed: indexes are 0..num-1 plus wrap counters (a fresh
 * packed ring is {0, 0, 1, 1}).
 */
struct vh_vq_base {
	uint16_t last_avail_idx;
	uint16_t used_idx;
	uint8_t avail_wrap;
	uint8_t used_wrap;
};

/*
 * Wire encoding of the vhost-user / vhost base value. Split: the 16-bit last avail index.
 * Packed: bits 0-14 last avail index, bit 15 avail wrap, bits 16-30 used index, bit 31 used
 * wrap.
 */
uint32_t vh_vq_base_encode(const struct vh_vq_base *b, int packed);
void vh_vq_base_decode(uint32_t v, int packed, struct vh_vq_base *b);

/* ---- Device side ---------------------------------------------------------------------- */

struct vh_vq;

/* How vh_vq_config's ring addresses are to be read. */
enum vh_vq_addr_kind {
	VH_VQ_ADDR_GPA = 0,   /* guest-physical: translated through mem (vDPA, virtio) */
	VH_VQ_ADDR_UADDR = 1, /* front-end virtual (vhost-user SET_VRING_ADDR): through mem */
	VH_VQ_ADDR_HOST = 2,  /* already pointers in this process; the caller vouches that each
			       * area is mapped over its whole vh_vring_layout size */
};

struct vh_vq_config {
	unsigned num;             /* queue size (SET_VRING_NUM) */
	uint64_t features;        /* acked virtio features; VH_VQ_F_* bits are used */
	enum vh_vq_addr_kind addr_kind;
	uint64_t desc_addr;       /* descriptor area */
	uint64_t driver_addr;     /* split: avail ring; packed: driver event suppression */
	uint64_t device_addr;     /* split: used ring;  packed: device event suppression */
	struct vh_vq_base base;   /* SET_VRING_BASE, decoded */
	const struct vh_memory *mem; /* borrowed; descriptor buffers are translated through it */
	unsigned max_indirect;    /* entries allowed in one indirect table; 0 = default
				   * (VH_VQ_DEFAULT_MAX_INDIRECT); at most VH_VQ_MAX_SIZE */
	const struct vh_logger *log; /* copied; may be NULL */
};

/*
 * Creates a device-side ring. Checks num, the addresses (alignment, translation of each area
 * over its whole size, in one region), and the base (packed indexes < num). Returns 0 and
 * *out, or -EINVAL / -EFAULT / -ENOMEM with nothing allocated.
 */
int vh_vq_new(struct vh_vq **out, const struct vh_vq_config *cfg);
/* Frees the private state. NULL is allowed. Guest memory is not touched. */
void vh_vq_free(struct vh_vq *vq);

/* Installs another memory table for descriptor buffers (e.g. the one a worker got from
 * vh_memory_read_lock() for this batch). The ring areas themselves keep their pointers. */
void vh_vq_set_memory(struct vh_vq *vq, const struct vh_memory *mem);

/* Current position (GET_VRING_BASE): after the last popped element, and the used index. */
void vh_vq_get_base(const struct vh_vq *vq, struct vh_vq_base *b);
/* The same, wire-encoded for this ring's layout. */
uint32_t vh_vq_get_base_u32(const struct vh_vq *vq);

unsigned vh_vq_num(const struct vh_vq *vq);
/* Elements popped and not pushed yet. */
unsigned vh_vq_inflight(const struct vh_vq *vq);

/*
 * One buffer (descriptor chain) handed to the device. The caller sets iov/iov_cap (and
 * optionally iov_gpa) once; pop fills the rest. Device-readable pieces come first:
 * iov[0..out_num) are readable ("out"), iov[out_num..out_num+in_num) writable ("in"). Pieces
 * are split at memory-region boundaries, so one descriptor may give several iovecs.
 */
struct vh_vq_elem {
	struct iovec *iov;  /* caller storage, iov_cap entries */
	uint64_t *iov_gpa;  /* NULL, or caller storage of iov_cap entries: the GPA of each piece
			     * (for dirty logging of written pieces) */
	uint32_t iov_cap;
	uint32_t out_num;
	uint32_t in_num;
	uint16_t id;        /* pass back in vh_vq_used.id */
	uint16_t ndesc;     /* ring descriptors the chain occupied */
	uint64_t out_len;   /* bytes readable */
	uint64_t in_len;    /* bytes writable */
};

/* A completion: the element's id and the number of bytes written into its in-iovecs. */
struct vh_vq_used {
	uint32_t id;
	uint32_t len;
};

/*
 * Pops up to max available buffers into elems[0..n). Returns n (0 = none available), or -EIO
 * if the ring is (or just became) broken; then no element of the failed batch is valid.
 * A chain needing more than iov_cap iovecs is a ring fault (VH_VQ_FAULT_IOV_FULL): give each
 * element at least queue-size entries (plus some for region splits) if drivers may use long
 * chains.
 */
int vh_vq_pop_batch(struct vh_vq *vq, struct vh_vq_elem *elems, unsigned max);

/*
 * Returns n completions. Ids must be ones popped and not yet pushed (with IN_ORDER: in pop
 * order). Entries become visible to the driver together (one release store). With IN_ORDER
 * negotiated, runs of completions whose len equals the element's in_len are written as one
 * used entry (the spec's batched form). Returns 0, -EINVAL for an id >= num or (packed) an id
 * not in flight (nothing is published then), or -EIO if the ring is broken.
 */
int vh_vq_push_batch(struct vh_vq *vq, const struct vh_vq_used *used, unsigned n);

/* Single-element forms (a batch of one). Pop returns 1, 0 or -EIO. */
static inline int vh_vq_pop(struct vh_vq *vq, struct vh_vq_elem *elem)
{
	return vh_vq_pop_batch(vq, elem, 1);
}

static inline int vh_vq_push(struct vh_vq *vq, uint32_t id, uint32_t len)
{
	struct vh_vq_used u = { id, len };

	return vh_vq_push_batch(vq, &u, 1);
}

/*
 * After pushing: 1 if the driver wants a used-buffer notification for what was pushed since
 * the previous call (EVENT_IDX used_event / packed driver event suppression, or the
 * NO_INTERRUPT flag; NOTIFY_ON_EMPTY honoured), 0 if not (or nothing was pushed), -EIO if
 * broken. Costs one full fence when something was pushed.
 */
int vh_vq_should_notify(struct vh_vq *vq);

/*
 * Kick (available-buffer notification) control. disable: tell the driver not to kick (flag /
 * event suppression; with split EVENT_IDX nothing is written) and stop re-arming on empty
 * pops. enable: re-arm, full fence, and return 1 if buffers are already available (poll
 * again before sleeping), 0 if empty, -EIO if broken.
 */
void vh_vq_disable_notify(struct vh_vq *vq);
int vh_vq_enable_notify(struct vh_vq *vq);

/* 1 if at least one buffer is available (a hint; acquire load), 0 if none, -EIO if broken. */
int vh_vq_has_avail(struct vh_vq *vq);

/* Why a ring is broken. */
enum vh_vq_fault {
	VH_VQ_FAULT_NONE = 0,
	VH_VQ_FAULT_AVAIL_IDX,      /* split: avail idx moved more than num past last avail */
	VH_VQ_FAULT_HEAD,           /* split: head index >= num */
	VH_VQ_FAULT_NEXT,           /* next index >= num (or >= indirect table entries) */
	VH_VQ_FAULT_CHAIN_LEN,      /* chain loops or is longer than num / the table */
	VH_VQ_FAULT_INDIRECT_FEATURE, /* INDIRECT without VIRTIO_F_INDIRECT_DESC */
	VH_VQ_FAULT_INDIRECT_LEN,   /* table length 0, not a multiple of 16, above the bound */
	VH_VQ_FAULT_INDIRECT_NESTED,/* INDIRECT inside an indirect table */
	VH_VQ_FAULT_INDIRECT_NEXT,  /* INDIRECT|NEXT, or (packed) INDIRECT inside a chain */
	VH_VQ_FAULT_INDIRECT_ADDR,  /* indirect table not (entirely) in guest memory */
	VH_VQ_FAULT_BUF_ADDR,       /* buffer wraps or is not (entirely) in guest memory */
	VH_VQ_FAULT_BUF_ZERO,       /* zero-length buffer */
	VH_VQ_FAULT_BUF_ORDER,      /* device-readable buffer after a device-writable one */
	VH_VQ_FAULT_BUF_TOTAL,      /* chain total above 4 GiB */
	VH_VQ_FAULT_IOV_FULL,       /* more pieces than the element's iov_cap */
	VH_VQ_FAULT_PACKED_ID,      /* packed: buffer id >= num */
	VH_VQ_FAULT_PACKED_FLAGS,   /* packed: chain descriptor not available with its head */
	VH_VQ_FAULT_USED_ID,        /* driver side: used id not in flight / >= num */
	VH_VQ_FAULT_USED_IDX,       /* driver side: used index moved past what is in flight */
	VH_VQ_FAULT_MAX
};

/* -EIO if broken, else 0. */
int vh_vq_is_broken(const struct vh_vq *vq);
enum vh_vq_fault vh_vq_fault(const struct vh_vq *vq);
/* Constant text for a fault ("avail index jump", ...). */
const char *vh_vq_fault_name(enum vh_vq_fault f);

/*
 * Dirty logging (vhost-user LOG_ALL with the ring's LOG flag). With a log set, every used-ring
 * (split) or descriptor-ring (packed) write is marked in it; used_gpa is the guest address of
 * the used ring / descriptor ring (SET_VRING_ADDR log_guest_addr). log is borrowed; NULL turns
 * logging off. Buffers the device writes are marked by the caller with vh_vq_log_elem().
 */
void vh_vq_set_log(struct vh_vq *vq, struct vh_dirty_log *log, uint64_t ring_log_gpa);
/* Marks the first `len` bytes of elem's in-pieces dirty (needs elem->iov_gpa). 0, or a
 * negative errno from vh_dirty_log_mark() / -EINVAL without iov_gpa. */
int vh_vq_log_elem(struct vh_vq *vq, const struct vh_vq_elem *elem, uint64_t len);

/* ---- Resubmission after a restart (inflight tracking) ----------------------------------- */

/* A descriptor as a packed ring holds it (and as a packed inflight record keeps a copy). */
struct vh_vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;   /* VRING_DESC_F_NEXT / _WRITE / _INDIRECT; packed AVAIL/USED ignored */
};

/*
 * Split: re-creates the element of the chain starting at descriptor `head` (a request that was
 * in flight before a restart, found in the inflight buffer) with the same checks as a pop, and
 * counts it in flight. The avail position does not move. Returns 1, -EINVAL for a packed ring,
 * or -EIO (the ring is broken, e.g. head >= num or a bad chain).
 */
int vh_vq_pop_head(struct vh_vq *vq, uint16_t head, struct vh_vq_elem *elem);

/*
 * Packed: re-creates an element from n descriptor copies of one chain (in ring order; all but
 * the last carry NEXT; an INDIRECT one stands alone), as recorded by inflight tracking. The
 * buffer id is the last descriptor's. Same checks as a pop, plus the chain shape; the id is
 * counted in flight (pushing it advances the used position by n). The avail position does not
 * move. Returns 1, -EINVAL for a split ring, or -EIO (the ring is broken).
 */
int vh_vq_pop_descs(struct vh_vq *vq, const struct vh_vq_desc *descs, unsigned n,
		    struct vh_vq_elem *elem);

/* Packed: copies the ring descriptor at position pos (< num), read once with relaxed loads
 * (what a pop just walked, for inflight records). -EINVAL for split or pos >= num. */
int vh_vq_read_desc(const struct vh_vq *vq, unsigned pos, struct vh_vq_desc *d);

/* ---- Copy helpers -------------------------------------------------------------------- */

/*
 * Copies up to len bytes starting `offset` bytes into the iovec list to/from buf. Returns the
 * number of bytes copied (less than len if the list is shorter).
 */
size_t vh_iov_to_buf(const struct iovec *iov, unsigned iovcnt, size_t offset, void *buf,
		     size_t len);
size_t vh_buf_to_iov(const struct iovec *iov, unsigned iovcnt, size_t offset, const void *buf,
		     size_t len);

/*
 * Inline fast path of both (calls through the macros below): a range inside the first iovec,
 * the usual case of a request header, a status byte or a small packet, becomes a memcpy the
 * compiler can expand; anything else calls the function. Taking the address of either
 * function, or calling it as (vh_iov_to_buf)(...), bypasses the macro.
 */
static inline size_t vhp_iov_to_buf_fast(const struct iovec *iov, unsigned iovcnt, size_t offset,
					 void *buf, size_t len)
{
	if (__builtin_expect(iovcnt != 0 && len != 0 && offset < iov[0].iov_len &&
			     len <= iov[0].iov_len - offset, 1)) {
		memcpy(buf, (const uint8_t *)iov[0].iov_base + offset, len);
		return len;
	}
	return (vh_iov_to_buf)(iov, iovcnt, offset, buf, len);
}

static inline size_t vhp_buf_to_iov_fast(const struct iovec *iov, unsigned iovcnt, size_t offset,
					 const void *buf, size_t len)
{
	if (__builtin_expect(iovcnt != 0 && len != 0 && offset < iov[0].iov_len &&
			     len <= iov[0].iov_len - offset, 1)) {
		memcpy((uint8_t *)iov[0].iov_base + offset, buf, len);
		return len;
	}
	return (vh_buf_to_iov)(iov, iovcnt, offset, buf, len);
}

#define vh_iov_to_buf(iov, iovcnt, offset, buf, len) \
	vhp_iov_to_buf_fast(iov, iovcnt, offset, buf, len)
#define vh_buf_to_iov(iov, iovcnt, offset, buf, len) \
	vhp_buf_to_iov_fast(iov, iovcnt, offset, buf, len)

/* ---- Driver side ---------------------------------------------------------------------- */

struct vh_vq_driver;

struct vh_vq_driver_config {
	unsigned num;           /* queue size */
	uint64_t features;      /* acked virtio features; VH_VQ_F_* bits are used */
	void *ring_host;        /* ring memory in this process: vh_vring_layout().total bytes,
				 * 64-byte aligned, inside one guest memory region */
	uint64_t ring_gpa;      /* its guest-physical address */
	size_t ring_size;       /* bytes available at ring_host (>= layout total) */
	/* Indirect tables (used only with VH_VQ_F_INDIRECT_DESC and indirect_max >= 2): num
	 * tables of indirect_max 16-byte entries, 16-byte aligned, in guest memory. */
	void *indirect_host;
	uint64_t indirect_gpa;
	size_t indirect_size;   /* bytes available (>= num * indirect_max * 16) */
	unsigned indirect_max;  /* segments per indirect table; 0 = no indirect */
	const struct vh_logger *log;
};

/* Creates a driver ring and initialises the ring memory (zeroed flags and indexes). */
int vh_vq_driver_new(struct vh_vq_driver **out, const struct vh_vq_driver_config *cfg);
void vh_vq_driver_free(struct vh_vq_driver *d);

/* Ring addresses to hand to the device (SET_VRING_ADDR / virtio queue registers). */
struct vh_vq_driver_addrs {
	uint64_t desc_gpa, driver_gpa, device_gpa;
	void *desc, *driver, *device; /* the same areas in this process */
};
void vh_vq_driver_addrs(const struct vh_vq_driver *d, struct vh_vq_driver_addrs *a);

/* The base a device must start from to continue this ring (SET_VRING_BASE): the position
 * after the last completed request. Exact when nothing is in flight (a fresh ring, or after
 * every request completed); requests still in flight are the device's to report. */
void vh_vq_driver_base(const struct vh_vq_driver *d, struct vh_vq_base *b);

/* One buffer segment in guest memory. */
struct vh_vq_seg {
	uint64_t gpa;
	uint32_t len;
};

/* One request: segs[0..out_num) device-readable, then in_num device-writable ones. */
struct vh_vq_driver_req {
	const struct vh_vq_seg *segs;
	uint16_t out_num;
	uint16_t in_num;
	uint64_t token;         /* returned with the completion */
};

/*
 * Places up to n requests in the ring (not yet visible to the device). Uses an indirect table
 * for a request of 2..indirect_max segments when indirect is configured. Returns the number
 * placed (< n when the ring fills), -ENOSPC if none fit, -EINVAL for a request with no
 * segment or more than num segments (without indirect), -EIO if broken.
 */
int vh_vq_driver_add_batch(struct vh_vq_driver *d, const struct vh_vq_driver_req *reqs,
			   unsigned n);
/* Makes everything added so far visible to the device with one release store. */
void vh_vq_driver_publish(struct vh_vq_driver *d);
/* After publishing: 1 if the device wants a kick for what was published since the previous
 * call (EVENT_IDX avail_event / event suppression / NO_NOTIFY flag), else 0. One full fence. */
int vh_vq_driver_should_kick(struct vh_vq_driver *d);

/* A completed request. */
struct vh_vq_driver_used {
	uint64_t token;
	uint32_t len;   /* bytes the device wrote (for in-order skipped buffers: all of in) */
	uint16_t id;
};

/* Collects up to max completions. Returns the count, or -EIO if the device broke the ring. */
int vh_vq_driver_get_used(struct vh_vq_driver *d, struct vh_vq_driver_used *out, unsigned max);

/* Used-buffer notifications: disable, or enable and return 1 if completions are already
 * pending (collect again before sleeping). */
void vh_vq_driver_disable_cb(struct vh_vq_driver *d);
int vh_vq_driver_enable_cb(struct vh_vq_driver *d);

/* Free descriptors, requests in flight. */
unsigned vh_vq_driver_num_free(const struct vh_vq_driver *d);
unsigned vh_vq_driver_inflight(const struct vh_vq_driver *d);
int vh_vq_driver_is_broken(const struct vh_vq_driver *d);
enum vh_vq_fault vh_vq_driver_fault(const struct vh_vq_driver *d);

/* ---- Fuzzing -------------------------------------------------------------------------- */

/*
 * Entry point for a libFuzzer target over the device-side descriptor walker: builds a small
 * guest memory (three regions, two of them adjacent, one behind a hole) from `data`, places a
 * ring of a layout and feature set chosen by the first bytes, then pops, touches every byte of
 * every iovec, and pushes until the ring is empty or broken (bounded). Never fails on any
 * input; returns 0, or -ENOMEM.
 */
int vh_vq_fuzz_walk(const uint8_t *data, size_t size);

#ifdef __cplusplus
}
#endif
#endif
