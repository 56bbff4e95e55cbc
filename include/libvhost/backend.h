/* SPDX-License-Identifier: MIT */
/*
 * vhost-user back-end protocol server.
 *
 * The server owns one vhost-user connection at a time (server mode: a listening socket kept
 * across connections; client mode: one connected socket). It validates every message against
 * the request table (wire.h) before any handler runs, keeps the protocol state (features,
 * protocol features, owner, per-vring state, the back-end channel) and calls typed callbacks
 * for the device-specific parts. It is event-loop agnostic: poll vh_backend_fd() for POLLIN and
 * call vh_backend_dispatch().
 *
 * Threading: vh_backend_dispatch(), the accessors and every callback run on the caller's
 * dispatch thread. A callback may call vh_backend_close_connection() and the send functions
 * (mind that the front-end may not serve the back-end channel while it waits for our reply),
 * never vh_backend_free(). The vh_backend_send_*() functions (back-end -> front-end requests) may be
 * called from any thread; a mutex serialises the back-end channel.
 *
 * File descriptors:
 *  - The server owns the connection, the listener, the back-end channel socket and each vring's
 *    kick/call/err eventfds and the log eventfd. Callbacks receive those as borrowed fds, valid
 *    until the server replaces or closes them (the next callback for the same slot, a reset, or
 *    a disconnect); a callee that needs one longer dup()s it.
 *  - Callbacks that receive an `int *fd` (memory regions, log base, inflight, GPU socket, device
 *    state) get ownership on offer: the callee sets the slot to -1 if it keeps the fd; the
 *    server closes whatever is left, on success and on failure.
 *  - Fds a callback returns for a reply (`int *fd_out`: userfaultfd, inflight memfd, shared
 *    object, device state) pass to the server, which sends and then closes them.
 *
 * Errors: every callback returns 0 or a negative errno. The server turns a failure into a NAK
 * (u64 non-zero, when the front-end set NEED_REPLY and REPLY_ACK is negotiated) or into the
 * request's own error reply (GET_CONFIG: size 0; GET_INFLIGHT_FD: mmap_size 0; device state:
 * error bits; ...). A failed callback leaves the server's state unchanged.
 */
#ifndef LIBVHOST_BACKEND_H
#define LIBVHOST_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <libvhost/log.h>
#include <libvhost/wire.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_backend;

/* Vring indexes travel in 8 bits in the kick/call/err payloads, so more cannot be addressed. */
#define VH_BACKEND_MAX_QUEUES 256u
/* Default bound on a half-received message and on waiting for a back-end channel reply. */
#define VH_BACKEND_DEFAULT_TIMEOUT_MS 5000

struct vh_backend_config {
	/* Virtio + vhost feature bits offered by GET_FEATURES. VH_USER_F_PROTOCOL_FEATURES (bit 30)
	 * is added when protocol_features != 0. */
	uint64_t features;
	/* Protocol feature bits offered by GET_PROTOCOL_FEATURES (VH_BIT(VH_USER_PROTOCOL_F_*)).
	 * Inconsistent sets are refused by vh_backend_new() (-EINVAL): INBAND_NOTIFICATIONS
	 * without REPLY_ACK + BACKEND_REQ, HOST_NOTIFIER or SHARED_OBJECT or SHMEM without
	 * BACKEND_REQ, HOST_NOTIFIER without BACKEND_SEND_FD, undefined bits. */
	uint64_t protocol_features;
	uint32_t num_queues;     /* 1..VH_BACKEND_MAX_QUEUES; answered by GET_QUEUE_NUM */
	uint32_t max_queue_size; /* SET_VRING_NUM bound; 0 = VH_VIRTQ_MAX_SIZE */
	uint32_t max_mem_slots;  /* GET_MAX_MEM_SLOTS; 0 = VH_USER_MAX_MEM_SLOTS (also the cap) */
	uint32_t config_size;    /* device config space size for GET/SET_CONFIG, <= 256 */
	struct vh_logger log;
	int timeout_ms;          /* 0 = VH_BACKEND_DEFAULT_TIMEOUT_MS; negative is refused */
};

/* A memory region as received by SET_MEM_TABLE / ADD_MEM_REG / REM_MEM_REG. */
struct vh_backend_mem_region {
	struct vh_mem_region r;  /* guest_phys_addr, memory_size, userspace_addr (front-end
				  * address), mmap_offset (into the region's fd) */
	uint32_t xen_mmap_flags; /* XEN_MMAP only, else 0 */
	uint32_t xen_domid;
	/* Out, postcopy only (set_mem_table after POSTCOPY_LISTEN): the address where the callee
	 * mapped the region; returned to the front-end in place of userspace_addr. */
	uint64_t host_addr;
};

/* A vring position, decoded from SET_VRING_BASE / encoded for GET_VRING_BASE.
 * Split rings: last_avail_idx is the 16-bit index, last_used_idx equals it on SET, and the wrap
 * counters are unused. Packed rings: 15-bit indexes plus wrap counters; a SET_VRING_BASE whose
 * upper 16 bits are zero (front-ends that send only the avail half) sets used = avail. */
struct vh_backend_vring_base {
	uint16_t last_avail_idx;
	uint16_t last_used_idx;
	uint8_t avail_wrap_counter;
	uint8_t used_wrap_counter;
	uint8_t padding[2];
};

/* Snapshot of one vring's protocol state (vh_backend_get_vring()). */
struct vh_backend_vring {
	uint32_t num;                      /* 0 until SET_VRING_NUM */
	struct vh_vring_addr addr;         /* last SET_VRING_ADDR (index = this ring) */
	struct vh_backend_vring_base base;
	uint8_t started;                   /* SET_VRING_KICK / inband kick .. GET_VRING_BASE */
	uint8_t enabled;                   /* SET_VRING_ENABLE, or all rings without bit 30 */
	uint8_t log;                       /* addr.flags has VH_VRING_F_LOG */
	uint8_t big_endian;                /* SET_VRING_ENDIAN 1 */
	int kick_fd;                       /* borrowed; -1 = none / NOFD (poll the ring) */
	int call_fd;                       /* borrowed; -1 = none */
	int err_fd;                        /* borrowed; -1 = none */
	uint8_t kick_nofd;                 /* kick was set with NOFD: the device must poll */
	uint8_t call_nofd;                 /* call set with NOFD: notify in band (INBAND) */
	uint8_t padding[2];
};

/*
 * Device-specific callbacks, each optional. `be` is the server (vh_backend_opaque(be) gives the
 * opaque pointer passed to vh_backend_new()). Unless noted, a NULL callback means "bookkeeping
 * and ack": the server records the state and answers success.
 */
struct vh_backend_ops {
	/* Connection events. A failing `connected` closes the new connection at once.
	 * `disconnected` runs before the server closes the per-connection fds, so the device can
	 * quiesce workers that still use them. */
	int (*connected)(struct vh_backend *be);
	void (*disconnected)(struct vh_backend *be);

	/* Features. Called with the validated new value before it is committed. */
	int (*set_features)(struct vh_backend *be, uint64_t features);
	int (*set_protocol_features)(struct vh_backend *be, uint64_t protocol_features);
	int (*set_owner)(struct vh_backend *be);
	/* RESET_OWNER and RESET_DEVICE: called first (stop workers), then the server stops every
	 * ring, closes the vring fds and returns rings and acked features to their initial state. */
	int (*reset_owner)(struct vh_backend *be);
	int (*reset_device)(struct vh_backend *be);

	/* Memory. The server has already checked counts, sizes, overflow, overlap, and that each fd
	 * is a read-write regular file (or device) large enough for mmap_offset + memory_size.
	 * Region fds are offered (see above). set_mem_table replaces the whole table; NULL = the
	 * server keeps only its region list and closes the fds. These may arrive while rings run
	 * (memory hot-plug): the callee quiesces the workers that read guest memory before it
	 * unmaps anything. */
	int (*set_mem_table)(struct vh_backend *be, struct vh_backend_mem_region *regions,
			     unsigned nregions, int *fds);
	int (*add_mem_reg)(struct vh_backend *be, const struct vh_backend_mem_region *region,
			   int *fd);
	/* The region is the server's recorded one matching the request (gpa, size, address). */
	int (*rem_mem_reg)(struct vh_backend *be, const struct vh_backend_mem_region *region);

	/* Dirty log. set_log_base NULL = -ENOTSUP (nothing sensible to do with the log). The log
	 * eventfd is owned by the server (vh_backend_log_fd()); set_log_fd gets it borrowed. */
	int (*set_log_base)(struct vh_backend *be, const struct vh_log *log, int *fd);
	int (*set_log_fd)(struct vh_backend *be, int fd);

	/* Vrings; idx < num_queues always. */
	int (*set_vring_num)(struct vh_backend *be, unsigned idx, uint32_t num);
	int (*set_vring_addr)(struct vh_backend *be, unsigned idx, const struct vh_vring_addr *addr);
	int (*set_vring_base)(struct vh_backend *be, unsigned idx,
			      const struct vh_backend_vring_base *base);
	/* The ring is already marked stopped; the callee stops processing it and may update *base
	 * (prefilled with the server's record) with the device's real position. The server then
	 * closes the kick fd and replies. Errors are logged; the reply is always sent. */
	int (*get_vring_base)(struct vh_backend *be, unsigned idx, struct vh_backend_vring_base *base);
	/* fd borrowed, -1 for NOFD. For kick, success starts the ring. */
	int (*set_vring_kick)(struct vh_backend *be, unsigned idx, int fd);
	int (*set_vring_call)(struct vh_backend *be, unsigned idx, int fd);
	int (*set_vring_err)(struct vh_backend *be, unsigned idx, int fd);
	int (*set_vring_enable)(struct vh_backend *be, unsigned idx, int enable);
	int (*set_vring_endian)(struct vh_backend *be, unsigned idx, int big_endian);
	/* VRING_KICK (in-band notification; starts the ring if it was not started). */
	int (*vring_kick_inband)(struct vh_backend *be, unsigned idx);

	/* Net. */
	int (*send_rarp)(struct vh_backend *be, const uint8_t mac[6]);
	int (*net_set_mtu)(struct vh_backend *be, uint64_t mtu);

	/* IOTLB (ACCESS_PLATFORM); the server rejected size 0, wrap-around, bad type/perm.
	 * NULL = -ENOTSUP. */
	int (*iotlb_msg)(struct vh_backend *be, const struct vh_iotlb_msg *msg);

	/* Config space; offset + size <= config_size checked. NULL = -ENOTSUP. */
	int (*get_config)(struct vh_backend *be, uint32_t offset, uint32_t size, uint8_t *buf);
	int (*set_config)(struct vh_backend *be, uint32_t offset, uint32_t size, uint32_t flags,
			  const uint8_t *buf);

	/* Crypto sessions; the request is opaque (QEMU's own layout, see wire.h). `reply` is
	 * prefilled with the request bytes and sent back as left, also on failure (the callee sets
	 * the session id field of its layout negative to report failure). NULL = -ENOTSUP. */
	int (*create_crypto_session)(struct vh_backend *be, const void *req, size_t len,
				     void *reply);
	int (*close_crypto_session)(struct vh_backend *be, uint64_t session_id);

	/* Postcopy. advise returns a userfaultfd in *fd_out (NULL = -ENOTSUP). */
	int (*postcopy_advise)(struct vh_backend *be, int *fd_out);
	int (*postcopy_listen)(struct vh_backend *be);
	int (*postcopy_end)(struct vh_backend *be);

	/* Inflight tracking. get: *reply prefilled (mmap_size 0) from the request; the callee sets
	 * mmap_size/mmap_offset and returns the memfd in *fd_out. set: fd offered. The server has
	 * checked num_queues <= config num_queues, queue_size <= max_queue_size, no overflow, and
	 * (set) the file is large enough. NULL = -ENOTSUP. */
	int (*get_inflight_fd)(struct vh_backend *be, const struct vh_inflight *req,
			       struct vh_inflight *reply, int *fd_out);
	int (*set_inflight_fd)(struct vh_backend *be, const struct vh_inflight *inflight, int *fd);

	/* GPU socket, offered. NULL = -ENOTSUP. */
	int (*gpu_set_socket)(struct vh_backend *be, int *fd);

	/* Device status (STATUS). NULL = the server keeps the byte. */
	int (*set_status)(struct vh_backend *be, uint8_t status);
	int (*get_status)(struct vh_backend *be, uint8_t *status);

	/* Shared objects; *fd_out is the dmabuf. NULL = -ENOTSUP. */
	int (*get_shared_object)(struct vh_backend *be, const uint8_t uuid[16], int *fd_out);

	/* Device state transfer. The server has checked direction/phase and that every ring is
	 * stopped. *fd is offered; the callee may return its own pipe end in *reply_fd (sent with
	 * NOFD clear). NULL = -ENOTSUP. */
	int (*set_device_state_fd)(struct vh_backend *be, uint32_t direction, uint32_t phase,
				   int *fd, int *reply_fd);
	int (*check_device_state)(struct vh_backend *be);

	/* Shared memory regions (SHMEM). NULL = zero regions. */
	int (*get_shmem_config)(struct vh_backend *be, struct vh_shmem_config *cfg);
};

/* ---- Lifecycle --------------------------------------------------------------------------- */

/* Creates a server. cfg and ops are copied; ops may be NULL (all defaults). */
int vh_backend_new(struct vh_backend **be, const struct vh_backend_config *cfg,
		   const struct vh_backend_ops *ops, void *opaque);
/* Closes the connection (calling `disconnected`), the listener (unlinking the socket path it
 * created, if still the same socket) and everything else. NULL is a no-op. */
void vh_backend_free(struct vh_backend *be);
void *vh_backend_opaque(const struct vh_backend *be);

/* Server mode: listens on path (a stale socket is replaced; see vh_socket_listen()). The
 * listener stays open across connections. */
int vh_backend_listen(struct vh_backend *be, const char *path);
/* Server mode on an inherited listening socket (e.g. vh_socket_activation_fd()). On success
 * ownership passes to the server (the socket file is left alone on free); on failure
 * (-ENOTSOCK or another errno when fd is not a listening Unix stream socket, -EBUSY) the fd
 * stays the caller's. */
int vh_backend_set_listen_fd(struct vh_backend *be, int fd);
/* Client mode: connects to a listening front-end (retries briefly while it is not there). */
int vh_backend_connect(struct vh_backend *be, const char *path);
/* Uses an already connected stream socket (ownership passes to the server, also on error). */
int vh_backend_set_connection(struct vh_backend *be, int fd);
/* Drops the current connection (as on a disconnect). */
void vh_backend_close_connection(struct vh_backend *be);

/* ---- Event loop -------------------------------------------------------------------------- */

/* The fd to poll for POLLIN: the connection, else the listener, else -1. Changes after a
 * dispatch that accepted or lost a connection. */
int vh_backend_fd(const struct vh_backend *be);
/*
 * Accepts a pending connection, or receives and handles exactly one message. Never blocks
 * waiting for a message to start; a started message must complete within timeout_ms.
 * Returns 0 (handled, including requests that were rejected with a NAK or ignored),
 * -EAGAIN (nothing pending), -ENOTCONN (no connection and no listener), or, after tearing
 * the connection down (every per-connection fd closed, `disconnected` called):
 * -ECONNRESET (the peer closed) or the connection-fatal error (-EPROTO, -EMSGSIZE, -EBADMSG,
 * -ETIMEDOUT, ...). In server mode the next call accepts the next connection.
 */
int vh_backend_dispatch(struct vh_backend *be);
/* Waits up to timeout_ms (-1 = for ever) for vh_backend_fd() to become readable, then
 * dispatches. Returns as vh_backend_dispatch(); -EAGAIN on timeout. */
int vh_backend_poll(struct vh_backend *be, int timeout_ms);

/* ---- Accessors (dispatch thread) ----------------------------------------------------------- */

int vh_backend_is_connected(const struct vh_backend *be);
/* Negotiated (acked) virtio features, 0 before SET_FEATURES. */
uint64_t vh_backend_features(const struct vh_backend *be);
/* Offered features (cfg.features with bit 30 if any protocol features are offered). */
uint64_t vh_backend_features_offered(const struct vh_backend *be);
/* Negotiated protocol features, 0 before SET_PROTOCOL_FEATURES. */
uint64_t vh_backend_protocol_features(const struct vh_backend *be);
int vh_backend_has_owner(const struct vh_backend *be);
uint32_t vh_backend_num_queues(const struct vh_backend *be);
uint8_t vh_backend_status(const struct vh_backend *be);
/* Copies vring idx's state into *out; -ERANGE if idx >= num_queues. */
int vh_backend_get_vring(const struct vh_backend *be, unsigned idx, struct vh_backend_vring *out);
/* The log eventfd (borrowed), or -1. */
int vh_backend_log_fd(const struct vh_backend *be);
/* Copies up to max recorded memory regions (sorted by guest address); returns the count. */
int vh_backend_get_mem_table(const struct vh_backend *be, struct vh_backend_mem_region *out,
			     unsigned max);
/* 1 if a back-end channel (SET_BACKEND_REQ_FD) is open. Any thread. */
int vh_backend_has_channel(struct vh_backend *be);

/* ---- Back-end -> front-end requests (any thread) ---------------------------------------------
 *
 * Each needs the back-end channel and its protocol features (BACKEND_REQ plus the one named);
 * otherwise -ENOTSUP (-ENOTCONN without a channel). With REPLY_ACK negotiated the request
 * carries NEED_REPLY and the call waits (timeout_ms) for the ack: 0, or -EIO when the front-end
 * reports failure. A broken channel (-ETIMEDOUT, -ECONNRESET, bad reply) is closed; later calls
 * return -ENOTCONN until the front-end sends a new one. Fds passed in are borrowed.
 */

/* ACCESS_PLATFORM virtio feature; type VH_IOTLB_MISS or VH_IOTLB_ACCESS_FAIL. */
int vh_backend_send_iotlb_msg(struct vh_backend *be, const struct vh_iotlb_msg *msg);
/* CONFIG. */
int vh_backend_send_config_change(struct vh_backend *be);
/* HOST_NOTIFIER; fd -1 removes the notifier (NOFD), else needs BACKEND_SEND_FD. */
int vh_backend_send_vring_host_notifier(struct vh_backend *be, unsigned idx, int fd,
					uint64_t size, uint64_t offset);
/* INBAND_NOTIFICATIONS. */
int vh_backend_send_vring_call(struct vh_backend *be, unsigned idx);
int vh_backend_send_vring_err(struct vh_backend *be, unsigned idx);
/* SHARED_OBJECT. lookup returns the dmabuf in *fd_out (caller owns) or -1 if none came. */
int vh_backend_send_shared_object_add(struct vh_backend *be, const uint8_t uuid[16]);
int vh_backend_send_shared_object_remove(struct vh_backend *be, const uint8_t uuid[16]);
int vh_backend_send_shared_object_lookup(struct vh_backend *be, const uint8_t uuid[16],
					 int *fd_out);
/* SHMEM (needs BACKEND_SEND_FD for map). */
int vh_backend_send_shmem_map(struct vh_backend *be, const struct vh_shmem_mmap *map, int fd);
int vh_backend_send_shmem_unmap(struct vh_backend *be, const struct vh_shmem_mmap *map);

#ifdef __cplusplus
}
#endif
#endif
