/* SPDX-License-Identifier: MIT */
/*
 * The back-end framework: a vhost-user device server in a few callbacks.
 *
 * A vh_server sits on a vh_backend (backend.h: protocol validation and state) and adds what
 * every device needs: the guest memory table (memory.h), one device-side ring per queue
 * (ring.h, split and packed), kick/call handling, dirty logging (LOG_ALL / LOG_SHMFD), inflight
 * tracking (INFLIGHT_SHMFD, split and packed) and the vring lifecycle of the spec (started /
 * stopped, enabled / disabled, GET_VRING_BASE stops and drains). The device supplies config
 * space, feature checks and a `process` callback that pops requests, handles them and pushes
 * completions through the vh_server_queue_* calls.
 *
 * Two ways to run it:
 *  - Event-loop agnostic: the application polls vh_server_control_fd() and each
 *    vh_server_queue_fd() and calls vh_server_dispatch() / vh_server_run_queue().
 *  - The daemon (vh_server_run()): one control thread plus epoll worker threads, queues mapped
 *    to threads, server or client mode, reconnect, clean shutdown with vh_server_stop().
 *
 * Threading and memory safety: a queue's `process` callback runs with that queue's lock held
 * (one thread at a time per queue). Control requests that change what a worker reads (memory
 * table, ring addresses, stop, log base, reset) take the queue locks first, so a worker never
 * sees memory unmapped under it. Guest pointers handed out by vh_server_queue_pop() stay valid
 * until the element is pushed, even across a memory table change (the old mappings are
 * released only when no popped element can still refer to them; a queue keeps at most 16 such
 * old tables, a further change is refused with a NAK). A table change that removes or remaps
 * the memory of a running ring breaks that queue (NEEDS_RESET).
 *
 * Pop, push and notify take the queue lock themselves unless the calling thread already holds
 * it (inside `process`, queue_start, queue_stop), so they may be called from any thread: a
 * device completing requests asynchronously pushes from its own completion thread. The server
 * never holds a queue lock while it calls queue_start / queue_stop, so a device may wait there
 * for its own threads to push.
 *
 * Hostile guests: a ring fault marks the queue broken (it stops being processed), sets
 * NEEDS_RESET in the device status and, when the front-end gave an err fd, signals it. The
 * process is never taken down.
 *
 * Ownership: the server owns its vh_backend, the memory tables, rings, the dirty log mapping
 * and the inflight memfd and mapping. Nothing it hands to callbacks needs freeing by them. The
 * kick, call, err and log fds belong to the vh_backend; the server makes them non-blocking
 * (O_NONBLOCK on the shared file description) so a peer that never drains one cannot stall a
 * worker, and refuses a regular file or directory there. Fds given to
 * vh_server_queue_watch_fd() stay the device's.
 *
 * Protocol details the framework settles:
 *  - Vring lifecycle: SET_VRING_KICK starts a ring (NOFD: the ring is polled, unless kicks come
 *    in band); GET_VRING_BASE stops it (waits for `process` to return, runs queue_stop) and
 *    answers the ring's real position (split: the next avail index, counting requests popped and
 *    abandoned in queue_stop; packed: avail and used positions with wrap counters). After a
 *    start and after SET_VRING_ENABLE 1 the ring is looked at without waiting for a kick.
 *  - Without PROTOCOL_FEATURES every ring is enabled (the vh_backend enables them at
 *    SET_FEATURES).
 *  - Dirty log: SET_LOG_BASE maps the log (the fd must be sealed against shrinking, as QEMU's
 *    is); with LOG_ALL acked, bytes pushed into buffers are marked and, on rings whose address
 *    has the LOG flag, ring writes are marked too (split: at log_guest_addr, the used ring;
 *    packed: at the descriptor ring's guest address, where used descriptors are written). The
 *    SET_LOG_FD eventfd is signalled after a push that marked pages.
 *  - Inflight (INFLIGHT_SHMFD): GET_INFLIGHT_FD creates a sealed memfd laid out as the spec
 *    says for the acked ring layout (split 16 + 16 n, packed 32 + 32 n bytes per queue; every
 *    region starts at version 0 and is set up for its ring's size when the ring starts);
 *    SET_INFLIGHT_FD maps only what num_queues x queue_size needs and requires the shrink seal
 *    and an 8-byte aligned mmap_offset. Both are refused while a ring runs. At ring start the
 *    buffer is validated and recovered (hostile values bounded, an unusable region starts
 *    afresh), and requests found in flight come back from pop first, in counter order; the
 *    ring resumes after them.
 *  - Device status (STATUS): a broken ring sets NEEDS_RESET (0x40) in what GET_STATUS answers
 *    until SET_STATUS 0, RESET_DEVICE, RESET_OWNER or a disconnect.
 *  - RESET_DEVICE stops every ring and forgets acked features; RESET_OWNER and a disconnect
 *    also drop the memory table, the dirty log and the inflight mapping.
 */
#ifndef LIBVHOST_SERVER_H
#define LIBVHOST_SERVER_H

#include <stdint.h>
#include <sys/uio.h>

#include <libvhost/backend.h>
#include <libvhost/log.h>
#include <libvhost/memory.h>
#include <libvhost/ring.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_server;
struct vh_server_queue;

/* Virtio features the framework itself implements and offers unless masked out. */
#define VH_SERVER_RING_FEATURES                                                        \
	(VH_BIT(VH_F_VERSION_1) | VH_BIT(VH_F_INDIRECT_DESC) | VH_BIT(VH_F_EVENT_IDX) |  \
	 VH_BIT(VH_F_RING_PACKED) | VH_BIT(VH_F_IN_ORDER) | VH_BIT(VH_F_NOTIFY_ON_EMPTY) | \
	 VH_BIT(VH_F_LOG_ALL))

/* Protocol features the framework implements and offers unless masked out. CONFIG is offered
 * only when the device has get_config. */
#define VH_SERVER_PROTOCOL_FEATURES                                                               \
	(VH_BIT(VH_USER_PROTOCOL_F_MQ) | VH_BIT(VH_USER_PROTOCOL_F_LOG_SHMFD) |                    \
	 VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK) | VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ) |           \
	 VH_BIT(VH_USER_PROTOCOL_F_BACKEND_SEND_FD) | VH_BIT(VH_USER_PROTOCOL_F_CONFIG) |          \
	 VH_BIT(VH_USER_PROTOCOL_F_INFLIGHT_SHMFD) | VH_BIT(VH_USER_PROTOCOL_F_RESET_DEVICE) |    \
	 VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | VH_BIT(VH_USER_PROTOCOL_F_STATUS))

struct vh_server_config {
	uint64_t device_features;   /* device-type bits (e.g. virtio-blk SEG_MAX, FLUSH) */
	uint64_t features_mask;     /* framework bits NOT to offer (e.g. RING_PACKED) */
	uint64_t protocol_extra;    /* protocol bits beyond VH_SERVER_PROTOCOL_FEATURES the
				     * device implements itself (e.g. NET_MTU, RARP) */
	uint64_t protocol_mask;     /* framework protocol bits NOT to offer */
	uint32_t num_queues;        /* 1..VH_BACKEND_MAX_QUEUES */
	uint32_t max_queue_size;    /* 0 = VH_VQ_MAX_SIZE */
	uint32_t config_size;       /* bytes of device config space (<= 256) */
	uint32_t max_iov;           /* iovecs per popped element; 0 = 1024 */
	struct vh_logger log;
	int timeout_ms;             /* protocol timeout; 0 = default */
};

/* Device callbacks. `opaque` is the pointer given to vh_server_new(). All optional except
 * process. Control callbacks run on the control (dispatch) thread. */
struct vh_server_ops {
	/* Config space (offset + size <= config_size already checked). */
	int (*get_config)(void *opaque, uint32_t offset, uint32_t size, uint8_t *buf);
	int (*set_config)(void *opaque, uint32_t offset, uint32_t size, uint32_t flags,
			  const uint8_t *buf);
	/* The front-end acked these features (device bits and framework bits); refuse with
	 * a negative errno. */
	int (*set_features)(void *opaque, uint64_t features);
	/* A queue starts (kick fd set, ring mapped) or stops (after its worker has left it and
	 * before its ring is torn down: complete or abandon in-flight requests here; with inflight
	 * tracking, abandoned ones are resubmitted after a restart). Neither runs with the queue
	 * lock held; `process` does not run during them. queue_start failing refuses the kick.
	 * After queue_stop returns, popped elements are invalid and pushes return -EINVAL. */
	int (*queue_start)(void *opaque, struct vh_server_queue *q);
	void (*queue_stop)(void *opaque, struct vh_server_queue *q);
	/* The queue may have work (kick, start, enable, or an fd the device registered). Pop,
	 * handle, push, notify. Runs on the queue's worker with the queue lock held; must not
	 * block for long. Also runs on a started ring that is disabled (SET_VRING_ENABLE 0):
	 * check vh_server_queue_enabled() and process without side effects, or return without
	 * popping (the ring is looked at again when it is enabled). For a device fd
	 * (vh_server_queue_watch_fd) it also runs on a broken queue, so the device can reap its
	 * own completions (pop and push then return -EIO). It need not empty the ring: after
	 * a call that popped or pushed, the kick is re-armed and, while buffers wait, the
	 * worker calls again (vh_server_run_queue() makes the kick fd readable instead). */
	void (*process)(void *opaque, struct vh_server_queue *q);
	/* Connection events. disconnected runs after every queue was stopped. */
	void (*connected)(void *opaque);
	void (*disconnected)(void *opaque);
	/* Net and other device-specific requests, forwarded when set. */
	int (*send_rarp)(void *opaque, const uint8_t mac[6]);
	int (*net_set_mtu)(void *opaque, uint64_t mtu);
	/* Device reset (RESET_DEVICE, RESET_OWNER), after every queue was stopped. Optional. */
	void (*reset)(void *opaque);
};

int vh_server_new(struct vh_server **out, const struct vh_server_config *cfg,
		  const struct vh_server_ops *ops, void *opaque);
/* Stops everything, closes every fd and mapping. NULL is a no-op. */
void vh_server_free(struct vh_server *s);

/* The protocol server underneath (accessors, back-end -> front-end requests). */
struct vh_backend *vh_server_backend(struct vh_server *s);
void *vh_server_opaque(const struct vh_server *s);

/* Where the connection comes from (as vh_backend_listen() etc.). */
int vh_server_listen(struct vh_server *s, const char *path);
int vh_server_set_listen_fd(struct vh_server *s, int fd);
int vh_server_connect(struct vh_server *s, const char *path);
int vh_server_set_connection(struct vh_server *s, int fd);

/* ---- Event-loop agnostic use ------------------------------------------------------------- */

/* Poll for POLLIN; then vh_server_dispatch() (returns as vh_backend_dispatch()). Dispatch also
 * releases memory tables that no popped element points into any more (the daemon does it at
 * least every 200 ms), so an application should dispatch, or call it when the fd is idle,
 * now and then. */
int vh_server_control_fd(const struct vh_server *s);
int vh_server_dispatch(struct vh_server *s);
/* A started queue's kick fd to poll (-1 when stopped, or when the ring is polled: NOFD). It
 * changes with SET_VRING_KICK and GET_VRING_BASE: poll it again after each dispatch. */
int vh_server_queue_fd(struct vh_server *s, unsigned qidx);
/* 1 if the queue is started with a NOFD kick: call vh_server_run_queue() for it regularly. */
int vh_server_queue_polled(struct vh_server *s, unsigned qidx);
/* Drains the kick and runs `process` for the queue if it is started and not broken (enabled
 * or not, see `process`); if that did work and buffers still wait, the kick fd is left
 * readable. Returns 0, -EAGAIN if the queue is not runnable. Any thread; serialised per
 * queue. */
int vh_server_run_queue(struct vh_server *s, unsigned qidx);

/* ---- Daemon ------------------------------------------------------------------------------- */

struct vh_server_run_opts {
	unsigned nthreads;          /* worker threads; 0 = 1 */
	/* queue_thread[q] = worker index for queue q (q < num_queues); NULL = round robin */
	const unsigned *queue_thread;
	int reconnect;              /* client mode: reconnect after a disconnect (path given to
				     * vh_server_connect()), retrying every second */
	int poll_us;                /* busy-poll queues this long after the last work before
				     * sleeping; 0 = never. While it polls, the worker asks the
				     * driver not to kick, and asks again (then looks once more)
				     * before it sleeps. Queues with a NOFD kick are always polled
				     * (with a 1 ms pause when idle). */
};

/* Runs the control loop in the calling thread and the queues on worker threads (at most 64)
 * until vh_server_stop(), or a fatal error (returned). A disconnect is not fatal: server mode
 * waits for the next connection; client mode reconnects if asked, else returns -ECONNRESET.
 * -ENOTCONN without a connection or listener, -EBUSY if already running. On return every
 * worker is joined; the connection (if any) stays, and run may be called again. */
int vh_server_run(struct vh_server *s, const struct vh_server_run_opts *opts);
/* Asks vh_server_run() to return 0 soon (a stop requested before run() starts ends the next
 * run at once). Async-signal-safe. vh_server_free() only after run() returned. */
void vh_server_stop(struct vh_server *s);

/* ---- Queue API for `process` ------------------------------------------------------------- */

unsigned vh_server_queue_index(const struct vh_server_queue *q);
struct vh_server *vh_server_queue_server(const struct vh_server_queue *q);
/* Per-queue device data. */
void *vh_server_queue_get_priv(const struct vh_server_queue *q);
void vh_server_queue_set_priv(struct vh_server_queue *q, void *priv);
/* 1 if enabled (SET_VRING_ENABLE); a started but disabled queue must be processed without
 * side effects (net: consume TX and drop it, supply no RX). */
int vh_server_queue_enabled(const struct vh_server_queue *q);
/* Ring size (SET_VRING_NUM of the running ring; 0 before the first start). */
unsigned vh_server_queue_size(const struct vh_server_queue *q);
/* -EIO once the ring is broken (until the next start), else 0. */
int vh_server_queue_is_broken(const struct vh_server_queue *q);
/* Acked features (for the device's own parsing of requests). */
uint64_t vh_server_features(const struct vh_server *s);

/*
 * Pops up to max elements. Each elem's iov/iov_gpa/iov_cap may be left zero: the server then
 * points them at per-queue storage (max_iov entries) that stays valid until the element is
 * pushed (at most queue-size elements in flight). An element array may be reused across calls
 * as it is: pointers into the server's storage count as "none given". Storage a caller gives
 * must stay untouched until the push (the server reads the pieces to log written bytes).
 * After a restart with inflight tracking, the requests that were in flight are returned first,
 * in their original order. Returns n, 0 (nothing available, or the queue is stopped), or -EIO
 * (the queue is broken: NEEDS_RESET was raised).
 */
int vh_server_queue_pop(struct vh_server_queue *q, struct vh_vq_elem *elems, unsigned max);
/*
 * Completes n elements: marks written bytes dirty when logging, updates inflight tracking,
 * publishes with one release store. Then call vh_server_queue_notify() once per batch.
 * Any thread holding no other queue lock, for asynchronous completions (takes the queue lock
 * unless this thread holds it). used[i].len is what was written into the element's device-
 * writable pieces. Returns 0; -EINVAL (nothing published) for an id not in flight, an id twice
 * in the batch, or a stopped queue; -EIO if the ring is broken.
 */
int vh_server_queue_push(struct vh_server_queue *q, const struct vh_vq_used *used, unsigned n);
/* Signals the call fd if the driver wants it (event idx / flags). Returns 1 if signalled, 0 if
 * not, -EIO if the ring broke. Any thread (takes the queue lock unless this thread holds it). */
int vh_server_queue_notify(struct vh_server_queue *q);
/* Variants for code that already holds the queue lock (inside `process`). */
int vh_server_queue_push_locked(struct vh_server_queue *q, const struct vh_vq_used *used,
				unsigned n);

/* Registers an extra fd (e.g. an io_uring or tap fd) that should run `process` for this queue
 * when readable, on the queue's worker (level-triggered: `process` must consume what made it
 * readable). Watched while the queue runs under vh_server_run(); kept across stops. -1 removes
 * it; remove it before closing it. In event-loop agnostic use the application polls its own fd
 * and calls vh_server_run_queue(). */
int vh_server_queue_watch_fd(struct vh_server_queue *q, int fd);

/* Counters for statistics lines. */
struct vh_server_queue_stats {
	uint64_t popped, pushed, notifies, kicks, faults;
};
void vh_server_queue_get_stats(const struct vh_server_queue *q, struct vh_server_queue_stats *st);
/* NULL if qidx >= num_queues. */
struct vh_server_queue *vh_server_get_queue(struct vh_server *s, unsigned qidx);

#ifdef __cplusplus
}
#endif
#endif
