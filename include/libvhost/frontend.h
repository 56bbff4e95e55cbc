/* SPDX-License-Identifier: MIT */
/*
 * vhost-user front-end: the side that owns the guest memory and drives a vhost-user back-end
 * over a Unix socket (what QEMU, DPDK virtio_user or a test harness does).
 *
 * One function per front-end request (ids 1-44), named after the request. Each one:
 *   - refuses locally, without sending anything, a request whose gate is not negotiated
 *     (-ENOTSUP), an argument that cannot be encoded (-EINVAL), or any call once the connection
 *     has failed (the sticky error, see vh_frontend_error());
 *   - for a request without a reply of its own, sets NEED_REPLY when REPLY_ACK is negotiated and
 *     waits for the u64 ack (non-zero ack => -EIO), unless VH_FRONTEND_F_NO_AUTO_REPLY_ACK;
 *   - for a request with its own reply (GET_*), never asks for an extra ack;
 *   - validates every reply before using it (vh_validate_reply() plus the request's own rules:
 *     same id, flags exactly VERSION|REPLY, exact size, fd count) and waits at most
 *     timeout_ms for it. A bad, unsolicited or late reply, a timeout or a peer hang-up makes the
 *     connection fail for good: the call returns -EPROTO / -ETIMEDOUT / -ECONNRESET, every fd that
 *     arrived with the bad message is closed, and every later call returns the same error.
 *
 * Return values: 0 (or a count where stated) on success, a negative errno on failure.
 * Errors that leave the connection usable: -ENOTSUP, -EINVAL, -EBUSY (local refusals), -EIO (the
 * back-end NAKed the request or reported a failure in its reply).
 *
 * Fd ownership: fds passed in are borrowed (sent, never closed, never kept). Fds handed back
 * through an `int *..._out` parameter belong to the caller, who must close them; on failure the
 * out parameter is set to -1 and nothing is left open.
 *
 * Threads: a vh_frontend is not thread-safe; use it from one thread at a time. While a call waits
 * for a reply on the main socket it also serves the back-end channel (if one was set up), because
 * a back-end may send a request there and wait for its answer before answering ours. Callbacks
 * run inside that wait; a callback that calls a main-socket function of the same front-end gets
 * -EBUSY.
 *
 * Errata (reference §3) handled here: E1 GET_INFLIGHT_FD's reply is an inflight struct + fd;
 * E2 ADD/REM_MEM_REG carry the region in the request; E3 SET_LOG_BASE sends the 16-byte log
 * struct; E4 the SET_LOG_BASE reply is consumed at the size its header announces (u64 or the
 * 16-byte echo); E7/E8 inflight and IOTLB payloads are 24 and 32 bytes with zeroed padding;
 * E9/E10/E11 INBAND_NOTIFICATIONS, GPA_ADDRESSES, SHMEM and unknown bits are never offered by
 * vh_frontend_negotiate() unless asked for; E12 an ack of 0 is treated as "accepted", callers that
 * must know should verify with a GET_* request.
 */
#ifndef LIBVHOST_FRONTEND_H
#define LIBVHOST_FRONTEND_H

#include <stddef.h>
#include <stdint.h>
#include <libvhost/log.h>
#include <libvhost/wire.h>
#include <libvhost/device.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_frontend;

/* vh_frontend_config.flags */
/* Never set NEED_REPLY by itself (requests without a reply are sent and not waited for, even
 * with REPLY_ACK negotiated). */
#define VH_FRONTEND_F_NO_AUTO_REPLY_ACK   0x1u
/* Do not serve the back-end channel while waiting for a main-socket reply. */
#define VH_FRONTEND_F_NO_BACKEND_WHILE_WAITING 0x2u
/* Allow SET_PROTOCOL_FEATURES to carry GPA_ADDRESSES (21) and SHMEM (22). Their numbering
 * differs between implementations (erratum E10); set this only for a peer known to follow
 * the upstream spec. */
#define VH_FRONTEND_F_TRUST_NEW_PROTOCOL_BITS 0x4u
/* Refuse (-EPROTO) an inflight buffer (GET_INFLIGHT_FD) that cannot be sealed against shrinking.
 * Without the flag such a buffer is accepted with a warning: DPDK-based back-ends hand out a
 * memfd created without MFD_ALLOW_SEALING. A back-end that truncates an unsealed buffer later
 * makes the caller's accesses to its mapping fault (SIGBUS). */
#define VH_FRONTEND_F_REQUIRE_SEALED_INFLIGHT 0x8u

struct vh_frontend_config {
	struct vh_logger log;  /* zero value: no logging */
	int timeout_ms;        /* bound on waiting for a reply and on a stalled message;
				* 0 = default (5000), -1 = wait for ever (not recommended) */
	unsigned flags;        /* VH_FRONTEND_F_* */
};

/* The recommended want_protocol for vh_frontend_negotiate(): every defined protocol feature this
 * front-end implements, except INBAND_NOTIFICATIONS (QEMU-style back-ends do not expect it,
 * erratum E9; ask for it explicitly), GPA_ADDRESSES and SHMEM (erratum E10; accepted only with
 * VH_FRONTEND_F_TRUST_NEW_PROTOCOL_BITS) and the proposed bit 23 (E11, never). */
#define VH_FRONTEND_PROTOCOL_FEATURES \
	(VH_BIT(VH_USER_PROTOCOL_F_MQ) | VH_BIT(VH_USER_PROTOCOL_F_LOG_SHMFD) | \
	 VH_BIT(VH_USER_PROTOCOL_F_RARP) | VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK) | \
	 VH_BIT(VH_USER_PROTOCOL_F_NET_MTU) | VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ) | \
	 VH_BIT(VH_USER_PROTOCOL_F_CROSS_ENDIAN) | VH_BIT(VH_USER_PROTOCOL_F_CRYPTO_SESSION) | \
	 VH_BIT(VH_USER_PROTOCOL_F_PAGEFAULT) | VH_BIT(VH_USER_PROTOCOL_F_CONFIG) | \
	 VH_BIT(VH_USER_PROTOCOL_F_BACKEND_SEND_FD) | VH_BIT(VH_USER_PROTOCOL_F_HOST_NOTIFIER) | \
	 VH_BIT(VH_USER_PROTOCOL_F_INFLIGHT_SHMFD) | VH_BIT(VH_USER_PROTOCOL_F_RESET_DEVICE) | \
	 VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | VH_BIT(VH_USER_PROTOCOL_F_STATUS) | \
	 VH_BIT(VH_USER_PROTOCOL_F_XEN_MMAP) | VH_BIT(VH_USER_PROTOCOL_F_SHARED_OBJECT) | \
	 VH_BIT(VH_USER_PROTOCOL_F_DEVICE_STATE) | VH_BIT(VH_USER_PROTOCOL_F_GET_VRING_BASE_INFLIGHT))

/* ---- Life cycle ------------------------------------------------------------------------ */

/*
 * Wraps a connected AF_UNIX stream socket. Takes ownership of sock_fd, also on error (it is then
 * closed). cfg may be NULL (defaults). Sends nothing.
 */
int vh_frontend_new(struct vh_frontend **out, int sock_fd, const struct vh_frontend_config *cfg);
/* Connects to a back-end listening at path (retries ECONNREFUSED/ENOENT for about a second)
 * and wraps the socket. */
int vh_frontend_connect(struct vh_frontend **out, const char *path,
			const struct vh_frontend_config *cfg);
/* Closes the main socket and the back-end channel. NULL is allowed. A device handle obtained
 * with vh_frontend_device() becomes invalid. */
void vh_frontend_free(struct vh_frontend *fe);
/* Main socket (for poll()ing for hang-up only; replies are read by the request calls), or -1.
 * Borrowed. */
int vh_frontend_fd(const struct vh_frontend *fe);
/* Sticky error: 0 while the connection is usable, else the negative errno that ended it. */
int vh_frontend_error(const struct vh_frontend *fe);

/* ---- Negotiated state ------------------------------------------------------------------ */

/* Features offered by the back-end (last GET_FEATURES reply), 0 before. */
uint64_t vh_frontend_features_offered(const struct vh_frontend *fe);
/* Features last acked with SET_FEATURES, 0 before. */
uint64_t vh_frontend_features_acked(const struct vh_frontend *fe);
/* Protocol features offered by the back-end (last GET_PROTOCOL_FEATURES), 0 before. */
uint64_t vh_frontend_protocol_features_offered(const struct vh_frontend *fe);
/* Protocol features negotiated by the last successful SET_PROTOCOL_FEATURES, 0 before. The
 * local gates and automatic NEED_REPLY use this value. */
uint64_t vh_frontend_protocol_features(const struct vh_frontend *fe);
/*
 * Sets the negotiated state without sending anything: for a process that takes over a connection
 * negotiated elsewhere, and for tests and fuzzers driving a front-end without a handshake.
 * protocol_features may hold any defined bit (0-22) in a combination the spec allows (see
 * vh_frontend_set_protocol_features()); -EINVAL otherwise. Nothing is sent.
 */
int vh_frontend_assume_negotiated(struct vh_frontend *fe, uint64_t features_offered,
				  uint64_t protocol_features);
/*
 * Number of virtqueues the device uses (at most 256: vring fd messages carry the index in one
 * byte). Bounds queue indexes in our requests (an index >= count is refused with -EINVAL) and in
 * back-end channel requests (-ERANGE, NAKed).
 * 0 (the default) means: the front-end only bounds indexes by the wire encoding (0-255) and
 * refuses back-end channel requests naming a queue this front-end never configured.
 */
int vh_frontend_set_queue_count(struct vh_frontend *fe, unsigned count);

/*
 * The usual handshake (QEMU's device-init steps 1-2): GET_FEATURES; if bit 30 is offered,
 * GET_PROTOCOL_FEATURES and SET_PROTOCOL_FEATURES with
 *   offered & want_protocol & (VH_FRONTEND_PROTOCOL_FEATURES | INBAND_NOTIFICATIONS
 *                              | bits 21-22 only with the trust flag),
 * dropping INBAND_NOTIFICATIONS unless REPLY_ACK and BACKEND_REQ remain, and HOST_NOTIFIER unless
 * BACKEND_REQ and BACKEND_SEND_FD remain. Every offered bit is logged (debug). Sends no
 * SET_FEATURES (that belongs to device start). Either out pointer may be NULL; on success
 * *protocol_features is the negotiated set (0 when bit 30 was not offered).
 */
int vh_frontend_negotiate(struct vh_frontend *fe, uint64_t want_protocol,
			  uint64_t *features_offered, uint64_t *protocol_features);

/* ---- One function per request ------------------------------------------------------------
 * Gate in brackets: the protocol feature that must be negotiated (else -ENOTSUP). "bit 30" = the
 * back-end offered VHOST_USER_F_PROTOCOL_FEATURES in GET_FEATURES. Queue indexes are checked
 * against vh_frontend_set_queue_count(). Vring fds: -1 sends NOFD. */

/* 1 */
int vh_frontend_get_features(struct vh_frontend *fe, uint64_t *features);
/* 2: bits the back-end did not offer are refused (-EINVAL) once GET_FEATURES was answered. Sent
 * exactly as given (the device adapter adds bit 30 when offered, as QEMU does). With LOG_ALL and
 * no REPLY_ACK, a GET_FEATURES follows as a barrier. */
int vh_frontend_set_features(struct vh_frontend *fe, uint64_t features);
/* 3, 4 */
int vh_frontend_set_owner(struct vh_frontend *fe);
int vh_frontend_reset_owner(struct vh_frontend *fe);
/*
 * 5: n <= 8 regions, one fd each (fds[i] backs regions[i], borrowed). Regions must have a size,
 * must not wrap and must not overlap (GPA or user address); use ADD_MEM_REG for more than 8.
 * After a successful POSTCOPY_LISTEN (and until POSTCOPY_END) the back-end answers with the
 * table as it mapped it; this call checks it, keeps it (vh_frontend_postcopy_backend_table())
 * and sends the front-end's ack, as QEMU does. With XEN_MMAP negotiated use
 * vh_frontend_set_mem_table_xen() (this call returns -EINVAL).
 */
int vh_frontend_set_mem_table(struct vh_frontend *fe, const struct vh_mem_region *regions,
			      const int *fds, unsigned n);
/* 5 with the XEN_MMAP layout (40-byte regions) [XEN_MMAP]. */
int vh_frontend_set_mem_table_xen(struct vh_frontend *fe, const struct vh_mem_region_xen *regions,
				  const int *fds, unsigned n);
/* 6 [LOG_SHMFD]: log of size bytes (> 0) at offset in fd (borrowed, required). Waits for the
 * back-end's reply, consumed at the size it announces (u64, or the 16-byte echo some back-ends
 * send, erratum E4); its content is not interpreted (libvhost-user leaves mmap_size in the u64;
 * QEMU ignores it too). */
int vh_frontend_set_log_base(struct vh_frontend *fe, uint64_t size, uint64_t offset, int fd);
/* 7 [LOG_SHMFD, as the request table has it]: eventfd the back-end signals after updating the
 * log (borrowed; required). */
int vh_frontend_set_log_fd(struct vh_frontend *fe, int fd);
/* 8: num 1..32768 (the back-end checks power of two for split rings). */
int vh_frontend_set_vring_num(struct vh_frontend *fe, unsigned idx, unsigned num);
/* 9: addresses are front-end (this process's) addresses, or GPAs with GPA_ADDRESSES. */
int vh_frontend_set_vring_addr(struct vh_frontend *fe, const struct vh_vring_addr *addr);
/* 10, 11: base encoding as in the spec (split: avail idx; packed: idx|wrap bits). */
int vh_frontend_set_vring_base(struct vh_frontend *fe, unsigned idx, uint32_t base);
int vh_frontend_get_vring_base(struct vh_frontend *fe, unsigned idx, uint32_t *base);
/* 12, 13, 14: fd borrowed; -1 => NOFD (poll the ring / no notifier). */
int vh_frontend_set_vring_kick(struct vh_frontend *fe, unsigned idx, int fd);
int vh_frontend_set_vring_call(struct vh_frontend *fe, unsigned idx, int fd);
int vh_frontend_set_vring_err(struct vh_frontend *fe, unsigned idx, int fd);
/* 15 [bit 30] */
int vh_frontend_get_protocol_features(struct vh_frontend *fe, uint64_t *features);
/* 16 [bit 30]: refused with -EINVAL if it carries bits the back-end did not offer (once known),
 * bits above 22, INBAND_NOTIFICATIONS without REPLY_ACK + BACKEND_REQ, or HOST_NOTIFIER without
 * BACKEND_REQ + BACKEND_SEND_FD; -ENOTSUP for bits 21-22 without the trust flag.
 * Never sent with NEED_REPLY (REPLY_ACK is not in force before it is answered). On success the
 * value becomes the negotiated set. */
int vh_frontend_set_protocol_features(struct vh_frontend *fe, uint64_t features);
/* 17 [MQ] */
int vh_frontend_get_queue_num(struct vh_frontend *fe, uint64_t *num);
/* 18 [bit 30] */
int vh_frontend_set_vring_enable(struct vh_frontend *fe, unsigned idx, int enable);
/* 19 [RARP] */
int vh_frontend_send_rarp(struct vh_frontend *fe, const uint8_t mac[6]);
/* 20 [NET_MTU]: a NAK means the back-end refused the MTU (-EIO). */
int vh_frontend_net_set_mtu(struct vh_frontend *fe, uint64_t mtu);
/* 21 [BACKEND_REQ]: see "Back-end channel" below. */
/* 22 [ACCESS_PLATFORM acked with SET_FEATURES]: always sent with NEED_REPLY (as QEMU; QEMU
 * needs REPLY_ACK for an IOMMU); the u64 reply 0 = ok, else -EIO. UPDATE and INVALIDATE need a
 * non-empty, non-wrapping range (UPDATE a valid perm); BATCH_BEGIN/END are passed through. */
int vh_frontend_iotlb_msg(struct vh_frontend *fe, const struct vh_iotlb_msg *msg);
/* 23 [CROSS_ENDIAN]: big_endian 0 = little-endian ring, 1 = big-endian. */
int vh_frontend_set_vring_endian(struct vh_frontend *fe, unsigned idx, unsigned big_endian);
/* 24 [CONFIG]: reads size (1..256) bytes at offset (offset + size <= 256) into buf. An empty
 * reply is the back-end's failure: -EIO. A reply of any other size, or one echoing a different
 * offset/size, is a protocol error. */
int vh_frontend_get_config(struct vh_frontend *fe, uint32_t offset, void *buf, uint32_t size,
			   uint32_t flags);
/* 25 [CONFIG]: flags VH_BIT(VH_CONFIG_FLAG_*) values: 0 = written by the driver,
 * VH_BIT(VH_CONFIG_FLAG_MIGRATION) during migration. */
int vh_frontend_set_config(struct vh_frontend *fe, uint32_t offset, const void *buf,
			   uint32_t size, uint32_t flags);
/* 26 [CRYPTO_SESSION]: desc is the opaque session description (8..VH_USER_MAX_PAYLOAD bytes);
 * reply receives exactly len bytes (the back-end's answer; the caller decodes the session id). */
int vh_frontend_create_crypto_session(struct vh_frontend *fe, const void *desc, size_t len,
				      void *reply);
/* 27 [CRYPTO_SESSION] */
int vh_frontend_close_crypto_session(struct vh_frontend *fe, uint64_t session_id);
/* 28 [PAGEFAULT, refused with CONFIGURE_MEM_SLOTS]: *ufd_out receives the back-end's
 * userfaultfd (caller owns it). */
int vh_frontend_postcopy_advise(struct vh_frontend *fe, int *ufd_out);
/* 29, 30 [PAGEFAULT, refused with CONFIGURE_MEM_SLOTS]: always sent with NEED_REPLY and answered
 * by a u64 (as QEMU). LISTEN switches SET_MEM_TABLE to the postcopy exchange, END back. */
int vh_frontend_postcopy_listen(struct vh_frontend *fe);
int vh_frontend_postcopy_end(struct vh_frontend *fe);
/* The back-end's addresses for the regions of the last SET_MEM_TABLE sent while postcopy was
 * listening (their userspace_addr is the back-end's mapping, used to resolve userfaults). Copies
 * up to max regions into out and returns how many the table has (0 if none). */
int vh_frontend_postcopy_backend_table(const struct vh_frontend *fe, struct vh_mem_region *out,
				       unsigned max);
/*
 * 31 [INFLIGHT_SHMFD]: asks for a buffer for num_queues queues of queue_size. On success *out holds
 * the back-end's answer and *fd_out the buffer's fd (caller owns). A back-end that keeps no buffer
 * answers mmap_size 0: success with *fd_out = -1 (QEMU goes on without one). Checked before
 * returning:
 * mmap_size > 0, mmap_offset + mmap_size does not wrap, fits in the file (fstat), and is at most
 * what num_queues x queue_size can need (32 + 32 x queue_size per queue, page-rounded), so a
 * back-end cannot make the caller map a huge area. The file is then sealed against shrinking
 * (F_SEAL_SHRINK) unless it is already: a back-end cannot truncate it under the caller's mapping
 * afterwards. A file that cannot be sealed is accepted with a warning, or refused (-EPROTO) with
 * VH_FRONTEND_F_REQUIRE_SEALED_INFLIGHT.
 */
int vh_frontend_get_inflight_fd(struct vh_frontend *fe, uint16_t num_queues, uint16_t queue_size,
				struct vh_inflight *out, int *fd_out);
/* 32 [INFLIGHT_SHMFD]: fd borrowed. */
int vh_frontend_set_inflight_fd(struct vh_frontend *fe, const struct vh_inflight *inflight, int fd);
/* 33: a socket for the vhost-user-gpu protocol (borrowed). No gate in the spec. */
int vh_frontend_gpu_set_socket(struct vh_frontend *fe, int fd);
/* 34 [RESET_DEVICE] */
int vh_frontend_reset_device(struct vh_frontend *fe);
/* 35 [INBAND_NOTIFICATIONS]: kick queue idx in-band. */
int vh_frontend_vring_kick(struct vh_frontend *fe, unsigned idx);
/* 36 [CONFIGURE_MEM_SLOTS] */
int vh_frontend_get_max_mem_slots(struct vh_frontend *fe, uint64_t *slots);
/* 37 [CONFIGURE_MEM_SLOTS]: one region and its fd (borrowed). Not with XEN_MMAP (-EINVAL). */
int vh_frontend_add_mem_reg(struct vh_frontend *fe, const struct vh_mem_region *region, int fd);
/* 38 [CONFIGURE_MEM_SLOTS]: sent without an fd. */
int vh_frontend_rem_mem_reg(struct vh_frontend *fe, const struct vh_mem_region *region);
/* 39, 40 [STATUS] */
int vh_frontend_set_status(struct vh_frontend *fe, uint8_t status);
int vh_frontend_get_status(struct vh_frontend *fe, uint8_t *status);
/* 41 [SHARED_OBJECT]: *fd_out receives the dma-buf (caller owns). A non-zero u64 => -ENOENT. */
int vh_frontend_get_shared_object(struct vh_frontend *fe, const uint8_t uuid[16], int *fd_out);
/*
 * 42 [DEVICE_STATE]: direction VH_DEVICE_STATE_SAVE/LOAD, phase VH_DEVICE_STATE_PHASE_STOPPED;
 * fd (borrowed) is our end of the state pipe. If the back-end substitutes its own end, it is
 * returned in *reply_fd_out (caller owns), else *reply_fd_out = -1. Error bits => -EIO.
 */
int vh_frontend_set_device_state_fd(struct vh_frontend *fe, uint32_t direction, uint32_t phase,
				    int fd, int *reply_fd_out);
/* 43 [DEVICE_STATE]: 0 when the back-end reports the transfer succeeded, -EIO if not. */
int vh_frontend_check_device_state(struct vh_frontend *fe);
/* 44 [SHMEM]: nregions <= 256 is checked. The sizes are remembered to validate SHMEM_MAP. */
int vh_frontend_get_shmem_config(struct vh_frontend *fe, struct vh_shmem_config *out);

/* ---- Back-end channel (SET_BACKEND_REQ_FD, back-end -> front-end requests 1-10) -----------
 *
 * Each callback returns 0 (ack 0) or a negative errno (ack non-zero). A NULL callback NAKs the
 * request. Requests are validated before any callback runs (vh_validate_request() with
 * is_backend_channel = 1, plus: queue index < queue count; HOST_NOTIFIER size == page size and
 * page-aligned offset when an fd is attached, NOFD with an fd refused; SHMEM_MAP shmid < the
 * GET_SHMEM_CONFIG region count, len > 0, page-aligned, no wrap, inside the region and not
 * overlapping an earlier mapping; SHMEM_UNMAP naming exactly a mapped range; the fd of a host
 * notifier or SHMEM_MAP not a pipe, socket or directory, and a regular file at least
 * offset + size long, so that mapping it cannot fault later). A request that
 * breaks a size/flag/fd rule ends the channel (it cannot resynchronise); a request that is
 * well-formed but refused (bad index, range, not negotiated) is NAKed and the channel stays.
 *
 * Fds given to callbacks are borrowed for the duration of the call (dup() to keep one); the
 * dispatcher closes them afterwards. A callback must not free the front-end; it may call
 * main-socket functions only when the dispatch was not started by a wait inside one (else
 * -EBUSY), and those calls then do not serve the channel (no recursion). shared_object_lookup hands an fd to the dispatcher through
 * *fd_out (ownership passes to the library, which sends and closes it; leave -1 for none).
 */
struct vh_frontend_backend_ops {
	/* 1: IOTLB miss (type VH_IOTLB_MISS) or access failure; answer misses with
	 * vh_frontend_iotlb_msg() after the callback returns (not from inside it). */
	int (*iotlb_msg)(void *opaque, const struct vh_iotlb_msg *msg);
	/* 2: device config space changed */
	int (*config_change)(void *opaque);
	/* 3: fd >= 0: map size bytes at offset of fd as queue idx's notify area; fd < 0: remove it */
	int (*vring_host_notifier)(void *opaque, unsigned idx, int fd, uint64_t size,
				   uint64_t offset);
	/* 4, 5: in-band call / error notification for queue idx */
	int (*vring_call)(void *opaque, unsigned idx);
	int (*vring_err)(void *opaque, unsigned idx);
	/* 6, 7, 8: shared objects. Ownership policy (only the exporter removes) is the
	 * callback's; lookup sets *fd_out (passed to the library) or returns an error. */
	int (*shared_object_add)(void *opaque, const uint8_t uuid[16]);
	int (*shared_object_remove)(void *opaque, const uint8_t uuid[16]);
	int (*shared_object_lookup)(void *opaque, const uint8_t uuid[16], int *fd_out);
	/* 9, 10: map/unmap into shared memory region shmid (ranges validated already). */
	int (*shmem_map)(void *opaque, const struct vh_shmem_mmap *map, int fd);
	int (*shmem_unmap)(void *opaque, const struct vh_shmem_mmap *map);
};

/*
 * 21 [BACKEND_REQ]: creates a socketpair, sends one end with SET_BACKEND_REQ_FD (closed locally
 * once sent) and keeps the other as the back-end channel. ops (copied) and opaque are used for
 * every request. Replaces an earlier channel.
 */
int vh_frontend_set_backend_req_fd(struct vh_frontend *fe, const struct vh_frontend_backend_ops *ops,
				   void *opaque);
/* Installs ops/opaque without sending anything (for an existing channel, or for
 * vh_frontend_backend_request_handle() without a socket). ops NULL clears them. */
void vh_frontend_set_backend_ops(struct vh_frontend *fe, const struct vh_frontend_backend_ops *ops,
				 void *opaque);
/* The channel to poll for input (borrowed), or -1 if there is none. */
int vh_frontend_backend_channel_fd(const struct vh_frontend *fe);
/*
 * Receives and handles one back-end request if one is waiting (does not block for its first
 * byte), and replies on the channel as the spec says (u64 ack when NEED_REPLY; u64 + fd for
 * SHARED_OBJECT_LOOKUP). Returns 1 if a request was handled, 0 if none was waiting, or a negative
 * errno; on a channel failure the channel is closed (vh_frontend_backend_channel_fd() becomes -1)
 * and the error returned, while the main connection stays usable.
 */
int vh_frontend_backend_channel_dispatch(struct vh_frontend *fe);

/*
 * Socket-free core of the dispatcher, for fuzzers and for callers that read the channel
 * themselves. Takes ownership of fds[0..nfds) (always closed or passed on). Validates msg and runs
 * the callback. Returns 1 and fills *reply (and *reply_fd, owned by the caller; -1 if none) when
 * a reply is due, 0 when none is due, -EPROTO when the message breaks a framing, size or fd rule
 * (the channel must then be closed; no reply), or -EINVAL for bad arguments.
 */
int vh_frontend_backend_request_handle(struct vh_frontend *fe, const struct vh_msg *msg,
				       int *fds, unsigned nfds, struct vh_msg *reply,
				       int *reply_fd);

/* ---- Reply checking without a socket ------------------------------------------------------ */

/*
 * Checks that `reply` (with reply_nfds fds) is a valid answer to `request` as this front-end sent
 * it (`acked`: NEED_REPLY was set and REPLY_ACK negotiated). Applies vh_validate_reply() and the
 * request's own rules (GET_VRING_BASE names the asked queue, GET_CONFIG echoes offset and size,
 * GET_INFLIGHT_FD bounds, GET_SHMEM_CONFIG nregions <= 256, SET_DEVICE_STATE_FD fd vs NOFD, ...).
 * Returns 0 or -EPROTO. Pure: no state, no fds closed. This is what every request call runs.
 */
int vh_frontend_check_reply(const struct vh_msg *request, int acked, const struct vh_msg *reply,
			    unsigned reply_nfds);

/* ---- Device-control interface (device.h) over vhost-user ---------------------------------- */

/*
 * The vh_device view of fe, embedded in it: valid until vh_frontend_free(); vh_device_close() on
 * it does nothing (fe stays). Regions go out as SET_MEM_TABLE (their userspace_addr as the
 * front-end address, their fd and fd_offset), or, with CONFIGURE_MEM_SLOTS, as REM/ADD_MEM_REG
 * differences against the last table (needed for more than 8 regions). set_features adds bit 30
 * when the back-end offered it. get_queue_num answers 1 without MQ. get_vring_max is not
 * available over vhost-user (-EOPNOTSUPP).
 */
struct vh_device *vh_frontend_device(struct vh_frontend *fe);
/* Connects (vh_frontend_connect), negotiates (vh_frontend_negotiate with want_protocol) and
 * returns a device that owns the front-end: vh_device_close() frees both. */
int vh_frontend_device_open(struct vh_device **out, const char *path,
			    const struct vh_frontend_config *cfg, uint64_t want_protocol);
/* The front-end behind a vhost-user device handle, or NULL for another transport. Borrowed. */
struct vh_frontend *vh_device_frontend(struct vh_device *dev);

#ifdef __cplusplus
}
#endif
#endif
