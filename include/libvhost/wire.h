/* SPDX-License-Identifier: MIT */
/*
 * vhost-user wire format: request ids, feature bits, payload layouts and the request tables.
 *
 * Everything here is plain data in host byte order, exactly as it travels on the socket. Host-only
 * bookkeeping (file descriptors, lengths) never lives in these structs; fds travel beside a message
 * (see endpoint.h). Every struct has its size and key offsets asserted at compile time.
 */
#ifndef LIBVHOST_WIRE_H
#define LIBVHOST_WIRE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Header ---------------------------------------------------------------------------- */

#define VH_USER_VERSION          0x1u
#define VH_USER_VERSION_MASK     0x3u
#define VH_USER_FLAG_REPLY       0x4u
#define VH_USER_FLAG_NEED_REPLY  0x8u
#define VH_USER_FLAGS_KNOWN      (VH_USER_VERSION_MASK | VH_USER_FLAG_REPLY | VH_USER_FLAG_NEED_REPLY)

/* Largest payload we accept or send. Covers every defined message (the largest is the
 * GET_SHMEM_CONFIG reply, 2056 bytes); a header announcing more closes the connection. */
#define VH_USER_MAX_PAYLOAD      4096u
/* File descriptors per message, as in the spec and QEMU (VHOST_MEMORY_BASELINE_NREGIONS). */
#define VH_USER_MAX_FDS          8u
/* SET_MEM_TABLE carries at most this many regions (one fd each). */
#define VH_USER_MAX_TABLE_REGIONS 8u
/* Memory slots we allow with CONFIGURE_MEM_SLOTS (ADD/REM_MEM_REG), as QEMU and rust-vmm. */
#define VH_USER_MAX_MEM_SLOTS    509u
/* Largest config space transferred by GET/SET_CONFIG. */
#define VH_USER_MAX_CONFIG_SIZE  256u
/* Largest virtqueue size virtio allows. */
#define VH_VIRTQ_MAX_SIZE        32768u
/* Vring fd payload (SET_VRING_KICK/CALL/ERR, host notifier): low byte index, bit 8 "no fd". */
#define VH_USER_VRING_IDX_MASK   0xffull
#define VH_USER_VRING_NOFD_MASK  (1ull << 8)

struct vh_msg_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
};

/* ---- Front-end -> back-end request ids ---------------------------------------------------- */

enum vh_user_request {
	VH_USER_NONE = 0,
	VH_USER_GET_FEATURES = 1,
	VH_USER_SET_FEATURES = 2,
	VH_USER_SET_OWNER = 3,
	VH_USER_RESET_OWNER = 4,
	VH_USER_SET_MEM_TABLE = 5,
	VH_USER_SET_LOG_BASE = 6,
	VH_USER_SET_LOG_FD = 7,
	VH_USER_SET_VRING_NUM = 8,
	VH_USER_SET_VRING_ADDR = 9,
	VH_USER_SET_VRING_BASE = 10,
	VH_USER_GET_VRING_BASE = 11,
	VH_USER_SET_VRING_KICK = 12,
	VH_USER_SET_VRING_CALL = 13,
	VH_USER_SET_VRING_ERR = 14,
	VH_USER_GET_PROTOCOL_FEATURES = 15,
	VH_USER_SET_PROTOCOL_FEATURES = 16,
	VH_USER_GET_QUEUE_NUM = 17,
	VH_USER_SET_VRING_ENABLE = 18,
	VH_USER_SEND_RARP = 19,
	VH_USER_NET_SET_MTU = 20,
	VH_USER_SET_BACKEND_REQ_FD = 21,
	VH_USER_IOTLB_MSG = 22,
	VH_USER_SET_VRING_ENDIAN = 23,
	VH_USER_GET_CONFIG = 24,
	VH_USER_SET_CONFIG = 25,
	VH_USER_CREATE_CRYPTO_SESSION = 26,
	VH_USER_CLOSE_CRYPTO_SESSION = 27,
	VH_USER_POSTCOPY_ADVISE = 28,
	VH_USER_POSTCOPY_LISTEN = 29,
	VH_USER_POSTCOPY_END = 30,
	VH_USER_GET_INFLIGHT_FD = 31,
	VH_USER_SET_INFLIGHT_FD = 32,
	VH_USER_GPU_SET_SOCKET = 33,
	VH_USER_RESET_DEVICE = 34,
	VH_USER_VRING_KICK = 35,
	VH_USER_GET_MAX_MEM_SLOTS = 36,
	VH_USER_ADD_MEM_REG = 37,
	VH_USER_REM_MEM_REG = 38,
	VH_USER_SET_STATUS = 39,
	VH_USER_GET_STATUS = 40,
	VH_USER_GET_SHARED_OBJECT = 41,
	VH_USER_SET_DEVICE_STATE_FD = 42,
	VH_USER_CHECK_DEVICE_STATE = 43,
	VH_USER_GET_SHMEM_CONFIG = 44,
	VH_USER_REQUEST_MAX = 44,
};

/* ---- Back-end -> front-end request ids (on the SET_BACKEND_REQ_FD channel) ---------------- */

enum vh_user_backend_request {
	VH_USER_BACKEND_NONE = 0,
	VH_USER_BACKEND_IOTLB_MSG = 1,
	VH_USER_BACKEND_CONFIG_CHANGE_MSG = 2,
	VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG = 3,
	VH_USER_BACKEND_VRING_CALL = 4,
	VH_USER_BACKEND_VRING_ERR = 5,
	VH_USER_BACKEND_SHARED_OBJECT_ADD = 6,
	VH_USER_BACKEND_SHARED_OBJECT_REMOVE = 7,
	VH_USER_BACKEND_SHARED_OBJECT_LOOKUP = 8,
	VH_USER_BACKEND_SHMEM_MAP = 9,
	VH_USER_BACKEND_SHMEM_UNMAP = 10,
	VH_USER_BACKEND_REQUEST_MAX = 10,
};

/* ---- Feature bits (bit numbers; use VH_BIT()) ---------------------------------------------- */

#define VH_BIT(n) (1ull << (n))

/* vhost-level virtio feature bits */
#define VH_F_NOTIFY_ON_EMPTY          24
#define VH_F_LOG_ALL                  26
#define VH_F_ANY_LAYOUT               27 /* also VHOST_NET_F_VIRTIO_NET_HDR */
#define VH_F_INDIRECT_DESC            28
#define VH_F_EVENT_IDX                29
#define VH_USER_F_PROTOCOL_FEATURES   30
#define VH_F_VERSION_1                32
#define VH_F_ACCESS_PLATFORM          33 /* a.k.a. IOMMU_PLATFORM */
#define VH_F_RING_PACKED              34
#define VH_F_IN_ORDER                 35
#define VH_F_ORDER_PLATFORM           36
#define VH_F_SR_IOV                   37
#define VH_F_NOTIFICATION_DATA        38
#define VH_F_NOTIF_CONFIG_DATA        39
#define VH_F_RING_RESET               40

/* vhost-user protocol feature bits 0-22 */
enum vh_user_protocol_feature {
	VH_USER_PROTOCOL_F_MQ = 0,
	VH_USER_PROTOCOL_F_LOG_SHMFD = 1,
	VH_USER_PROTOCOL_F_RARP = 2,
	VH_USER_PROTOCOL_F_REPLY_ACK = 3,
	VH_USER_PROTOCOL_F_NET_MTU = 4,
	VH_USER_PROTOCOL_F_BACKEND_REQ = 5,
	VH_USER_PROTOCOL_F_CROSS_ENDIAN = 6,
	VH_USER_PROTOCOL_F_CRYPTO_SESSION = 7,
	VH_USER_PROTOCOL_F_PAGEFAULT = 8,
	VH_USER_PROTOCOL_F_CONFIG = 9,
	VH_USER_PROTOCOL_F_BACKEND_SEND_FD = 10,
	VH_USER_PROTOCOL_F_HOST_NOTIFIER = 11,
	VH_USER_PROTOCOL_F_INFLIGHT_SHMFD = 12,
	VH_USER_PROTOCOL_F_RESET_DEVICE = 13,
	VH_USER_PROTOCOL_F_INBAND_NOTIFICATIONS = 14,
	VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15,
	VH_USER_PROTOCOL_F_STATUS = 16,
	VH_USER_PROTOCOL_F_XEN_MMAP = 17,
	VH_USER_PROTOCOL_F_SHARED_OBJECT = 18,
	VH_USER_PROTOCOL_F_DEVICE_STATE = 19,
	VH_USER_PROTOCOL_F_GET_VRING_BASE_INFLIGHT = 20,
	VH_USER_PROTOCOL_F_GPA_ADDRESSES = 21,
	VH_USER_PROTOCOL_F_SHMEM = 22,
	VH_USER_PROTOCOL_F_MAX = 22,
};

/* ---- Payloads ------------------------------------------------------------------------------ */

struct vh_vring_state {
	uint32_t index;
	uint32_t num;
};

#define VH_VRING_F_LOG 0 /* bit number in vh_vring_addr.flags */

struct vh_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
};

struct vh_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

/* Region as sent when XEN_MMAP is negotiated. */
struct vh_mem_region_xen {
	struct vh_mem_region r;
	uint32_t xen_mmap_flags;
	uint32_t domid;
};

struct vh_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vh_mem_region regions[VH_USER_MAX_TABLE_REGIONS];
};

/* ADD_MEM_REG / REM_MEM_REG */
struct vh_mem_single {
	uint64_t padding;
	struct vh_mem_region region;
};

struct vh_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

/* IOTLB message types and permissions (same numbers as the kernel's vhost_iotlb_msg) */
#define VH_IOTLB_MISS        1
#define VH_IOTLB_UPDATE      2
#define VH_IOTLB_INVALIDATE  3
#define VH_IOTLB_ACCESS_FAIL 4
#define VH_IOTLB_BATCH_BEGIN 5
#define VH_IOTLB_BATCH_END   6
#define VH_ACCESS_RO 1
#define VH_ACCESS_WO 2
#define VH_ACCESS_RW 3

struct vh_iotlb_msg {
	uint64_t iova;
	uint64_t size;
	uint64_t uaddr;
	uint8_t perm;
	uint8_t type;
	uint8_t padding[6];
};

#define VH_CONFIG_FLAG_WRITABLE  0 /* SET_CONFIG written by the front-end (driver) */
#define VH_CONFIG_FLAG_MIGRATION 1 /* SET_CONFIG during live migration */

struct vh_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VH_USER_MAX_CONFIG_SIZE];
};
#define VH_CONFIG_HDR_SIZE 12u

struct vh_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
};
/* The spec lists 20 bytes of fields; C layout and every implementation send 24 (erratum E7). */
#define VH_INFLIGHT_WIRE_SIZE 24u

struct vh_vring_area {
	uint64_t u64; /* vring index | NOFD */
	uint64_t size;
	uint64_t offset;
};

struct vh_shared_object {
	uint8_t uuid[16];
};

#define VH_DEVICE_STATE_SAVE 0
#define VH_DEVICE_STATE_LOAD 1
#define VH_DEVICE_STATE_PHASE_STOPPED 0

struct vh_device_state_transfer {
	uint32_t direction;
	uint32_t phase;
};

#define VH_USER_MAX_SHMEM_REGIONS 256u
struct vh_shmem_config {
	uint32_t nregions;
	uint32_t padding;
	uint64_t memory_sizes[VH_USER_MAX_SHMEM_REGIONS];
};

#define VH_SHMEM_MAP_F_WRITABLE 0x1ull
struct vh_shmem_mmap {
	uint8_t shmid;
	uint8_t padding[7];
	uint64_t fd_offset;
	uint64_t shm_offset;
	uint64_t len;
	uint64_t flags;
};

/*
 * CREATE_CRYPTO_SESSION's payload is QEMU's internal session description, whose layout has
 * changed between QEMU versions (symmetric/asymmetric unions). It is carried as opaque bytes
 * between 8 and VH_USER_MAX_PAYLOAD; the reply has the same size. The library never interprets
 * it beyond its bounds.
 */

union vh_payload {
	uint64_t u64;
	struct vh_vring_state state;
	struct vh_vring_addr addr;
	struct vh_mem_table mem;
	struct vh_mem_single mem_single;
	struct vh_log log;
	struct vh_iotlb_msg iotlb;
	struct vh_config config;
	struct vh_inflight inflight;
	struct vh_vring_area area;
	struct vh_shared_object object;
	struct vh_device_state_transfer transfer;
	struct vh_shmem_config shmem_config;
	struct vh_shmem_mmap shmem_map;
	uint8_t bytes[VH_USER_MAX_PAYLOAD];
};

/* One message: header, then hdr.size payload bytes. On the wire the payload follows the 12-byte
 * header directly; in memory it is 8-byte aligned (the endpoint sends and reads the two parts
 * separately), so payload fields can be accessed in place. */
struct vh_msg {
	struct vh_msg_hdr hdr;
	union vh_payload payload;
};

/* ---- Request tables ------------------------------------------------------------------------ */

enum vh_reply_kind {
	VH_REPLY_NONE = 0,   /* no reply ever */
	VH_REPLY_ACK,        /* u64 reply only when NEED_REPLY was set and REPLY_ACK negotiated */
	VH_REPLY_U64,        /* always a u64 reply */
	VH_REPLY_PAYLOAD,    /* always a reply with a request-specific payload */
};

/* Gate values for vh_request_info.gate beyond protocol feature bit numbers. */
#define VH_GATE_NONE            (-1) /* always allowed */
#define VH_GATE_PROTOCOL_FEATURES (-2) /* virtio bit 30 offered by the back-end */
#define VH_GATE_ACCESS_PLATFORM (-3) /* virtio ACCESS_PLATFORM (IOMMU) acked: IOTLB messages */

/* vh_request_info.flags */
#define VH_REQ_VRING_STATE   0x01u /* payload is vh_vring_state/addr: .index names a queue */
#define VH_REQ_VRING_FILE    0x02u /* payload is u64 index|NOFD: low byte names a queue */
#define VH_REQ_PER_DEVICE    0x04u /* QEMU sends it only from the vhost_dev with vq_index 0 */
#define VH_REQ_VARIABLE      0x08u /* size between min and max; a per-request check decides */
#define VH_REQ_REPLY_FDS     0x10u /* the reply may carry fds (reply_fds_max) */
#define VH_REQ_NOT_WITH_MEM_SLOTS 0x20u /* refused when CONFIGURE_MEM_SLOTS is negotiated */
#define VH_REQ_ALWAYS_NEED_REPLY 0x40u /* the front-end always sets NEED_REPLY (QEMU does) and the
					* back-end always answers it */

struct vh_request_info {
	uint32_t id;
	const char *name;       /* e.g. "SET_MEM_TABLE" */
	uint16_t size_min;      /* request payload size bounds (bytes) */
	uint16_t size_max;
	uint8_t fds_min;        /* ancillary fds on the request */
	uint8_t fds_max;
	int8_t gate;            /* protocol feature bit, or VH_GATE_* */
	uint8_t flags;          /* VH_REQ_* */
	uint8_t reply;          /* enum vh_reply_kind */
	uint8_t reply_fds_max;
	uint16_t reply_size_min; /* reply payload bounds for VH_REPLY_PAYLOAD / U64 */
	uint16_t reply_size_max;
};

/* Row for a front-end -> back-end request id, or NULL for an unknown id (0 or > 44). */
const struct vh_request_info *vh_request_info(uint32_t id);
/* Row for a back-end -> front-end request id, or NULL. */
const struct vh_request_info *vh_backend_request_info(uint32_t id);
/* Names for logging; "UNKNOWN" for ids outside the tables. Never NULL. */
const char *vh_request_name(uint32_t id);
const char *vh_backend_request_name(uint32_t id);
/* Name of a protocol feature bit (e.g. "REPLY_ACK"), or NULL if undefined. */
const char *vh_protocol_feature_name(unsigned bit);
/* Name of a vhost/virtio transport-level feature bit (24..40), or NULL. */
const char *vh_transport_feature_name(unsigned bit);

/*
 * Checks a message's header and payload against a table row for the given negotiated state.
 * Returns 0 if acceptable, -EPROTO (framing: bad version/flags), -EINVAL (size or fds),
 * -ENOTSUP (feature gate not negotiated) or -ERANGE (queue index >= num_queues).
 * num_queues = 0 disables the queue-index check. This is the single place the rules live; the
 * back-end dispatcher, the front-end's back-end channel and the tests all call it.
 */
struct vh_validate_ctx {
	uint64_t features_offered;   /* virtio features the back-end offered (for bit 30) */
	uint64_t features_acked;     /* virtio features the front-end set (ACCESS_PLATFORM gate) */
	uint64_t protocol_features;  /* negotiated protocol features */
	uint32_t num_queues;         /* queue index bound, 0 = unchecked */
	int is_backend_channel;      /* validating a back-end -> front-end request */
};
int vh_validate_request(const struct vh_validate_ctx *ctx, const struct vh_msg_hdr *hdr,
			const union vh_payload *payload, unsigned nfds);

/* Validates a reply to `request` (front-end side, or the back-end side of the back-end channel):
 * same id, flags exactly VERSION|REPLY, size within the row's reply bounds, fd count.
 * acked != 0: the reply is a REPLY_ACK u64 (8 bytes, no fds) to a request sent with NEED_REPLY.
 * Returns 0, -EPROTO or -EMSGSIZE. */
int vh_validate_reply(const struct vh_request_info *row, uint32_t request,
		      const struct vh_msg_hdr *hdr, unsigned nfds, int acked);

#ifdef __cplusplus
}
#endif
#endif
