/* SPDX-License-Identifier: MIT */
/*
 * The request tables: one row per vhost-user request id, read by the front-end, the back-end
 * dispatcher, the back-end channel, the tests and the fuzzers. A rule about a request is written
 * here once.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <libvhost/wire.h>
#include "internal.h"

/* ---- Layout checks: every wire struct, size and key offsets ---------------------------------- */

_Static_assert(sizeof(struct vh_msg_hdr) == 12, "header");
_Static_assert(offsetof(struct vh_msg_hdr, flags) == 4 && offsetof(struct vh_msg_hdr, size) == 8,
	       "header offsets");
_Static_assert(sizeof(struct vh_vring_state) == 8, "vring state");
_Static_assert(sizeof(struct vh_vring_addr) == 40, "vring addr");
_Static_assert(offsetof(struct vh_vring_addr, desc_user_addr) == 8, "vring addr desc");
_Static_assert(offsetof(struct vh_vring_addr, used_user_addr) == 16, "vring addr used");
_Static_assert(offsetof(struct vh_vring_addr, avail_user_addr) == 24, "vring addr avail");
_Static_assert(offsetof(struct vh_vring_addr, log_guest_addr) == 32, "vring addr log");
_Static_assert(sizeof(struct vh_mem_region) == 32, "region");
_Static_assert(offsetof(struct vh_mem_region, userspace_addr) == 16, "region uaddr");
_Static_assert(offsetof(struct vh_mem_region, mmap_offset) == 24, "region offset");
_Static_assert(sizeof(struct vh_mem_region_xen) == 40, "xen region");
_Static_assert(sizeof(struct vh_mem_table) == 8 + 32 * VH_USER_MAX_TABLE_REGIONS, "mem table");
_Static_assert(offsetof(struct vh_mem_table, regions) == 8, "mem table regions");
_Static_assert(sizeof(struct vh_mem_single) == 40, "single region");
_Static_assert(offsetof(struct vh_mem_single, region) == 8, "single region offset");
_Static_assert(sizeof(struct vh_log) == 16, "log");
_Static_assert(sizeof(struct vh_iotlb_msg) == 32, "iotlb");
_Static_assert(offsetof(struct vh_iotlb_msg, perm) == 24 && offsetof(struct vh_iotlb_msg, type) == 25,
	       "iotlb perm/type");
_Static_assert(sizeof(struct vh_config) == VH_CONFIG_HDR_SIZE + VH_USER_MAX_CONFIG_SIZE, "config");
_Static_assert(offsetof(struct vh_config, region) == VH_CONFIG_HDR_SIZE, "config data");
_Static_assert(sizeof(struct vh_inflight) == VH_INFLIGHT_WIRE_SIZE, "inflight");
_Static_assert(offsetof(struct vh_inflight, num_queues) == 16 &&
	       offsetof(struct vh_inflight, queue_size) == 18, "inflight fields");
_Static_assert(sizeof(struct vh_vring_area) == 24, "vring area");
_Static_assert(sizeof(struct vh_shared_object) == 16, "uuid");
_Static_assert(sizeof(struct vh_device_state_transfer) == 8, "device state");
_Static_assert(sizeof(struct vh_shmem_config) == 8 + 8 * VH_USER_MAX_SHMEM_REGIONS, "shmem config");
_Static_assert(sizeof(struct vh_shmem_config) == 2056, "shmem config size");
_Static_assert(sizeof(struct vh_shmem_mmap) == 40, "shmem map");
_Static_assert(offsetof(struct vh_shmem_mmap, fd_offset) == 8, "shmem map fd_offset");
_Static_assert(sizeof(union vh_payload) == VH_USER_MAX_PAYLOAD, "payload union");

/* ---- Front-end -> back-end table ------------------------------------------------------------ */

#define P(bit) VH_USER_PROTOCOL_F_##bit
#define NONE VH_GATE_NONE
#define PF VH_GATE_PROTOCOL_FEATURES
#define IOMMU VH_GATE_ACCESS_PLATFORM

#define MEM_TABLE_MAX (8 + (uint16_t)sizeof(struct vh_mem_region_xen) * VH_USER_MAX_TABLE_REGIONS)
#define CONFIG_MAX (VH_CONFIG_HDR_SIZE + VH_USER_MAX_CONFIG_SIZE)

/*            id                          size      fds   gate               flags                                      reply            rfds  reply size */
#define ROW(id, smin, smax, fmin, fmax, gate, flags, reply, rfds, rmin, rmax) \
	[VH_USER_##id] = { VH_USER_##id, #id, smin, smax, fmin, fmax, gate, flags, reply, rfds, rmin, rmax }

static const struct vh_request_info frontend_table[VH_USER_REQUEST_MAX + 1] = {
	ROW(GET_FEATURES,          0, 0,     0, 0, NONE,  0,                                   VH_REPLY_U64,     0, 8, 8),
	ROW(SET_FEATURES,          8, 8,     0, 0, NONE,  0,                                   VH_REPLY_ACK,     0, 8, 8),
	ROW(SET_OWNER,             0, 0,     0, 0, NONE,  VH_REQ_PER_DEVICE,                   VH_REPLY_ACK,     0, 8, 8),
	ROW(RESET_OWNER,           0, 0,     0, 0, NONE,  VH_REQ_PER_DEVICE,                   VH_REPLY_ACK,     0, 8, 8),
	/* In postcopy the back-end answers with the table (same size as the request). */
	ROW(SET_MEM_TABLE,         8, MEM_TABLE_MAX, 0, VH_USER_MAX_TABLE_REGIONS, NONE,
	    VH_REQ_PER_DEVICE | VH_REQ_VARIABLE,                                               VH_REPLY_ACK,     0, 8, MEM_TABLE_MAX),
	/* Erratum E3/E4: 16-byte request; replies seen as u64 and as the echoed 16 bytes. */
	ROW(SET_LOG_BASE,          16, 16,   1, 1, P(LOG_SHMFD), VH_REQ_PER_DEVICE,            VH_REPLY_U64,     0, 8, 16),
	ROW(SET_LOG_FD,            0, 0,     1, 1, P(LOG_SHMFD), 0,                            VH_REPLY_ACK,     0, 8, 8),
	ROW(SET_VRING_NUM,         8, 8,     0, 0, NONE,  VH_REQ_VRING_STATE,                  VH_REPLY_ACK,     0, 8, 8),
	ROW(SET_VRING_ADDR,        40, 40,   0, 0, NONE,  VH_REQ_VRING_STATE,                  VH_REPLY_ACK,     0, 8, 8),
	ROW(SET_VRING_BASE,        8, 8,     0, 0, NONE,  VH_REQ_VRING_STATE,                  VH_REPLY_ACK,     0, 8, 8),
	ROW(GET_VRING_BASE,        8, 8,     0, 0, NONE,  VH_REQ_VRING_STATE,                  VH_REPLY_PAYLOAD, 0, 8, 8),
	ROW(SET_VRING_KICK,        8, 8,     0, 1, NONE,  VH_REQ_VRING_FILE,                   VH_REPLY_ACK,     0, 8, 8),
	ROW(SET_VRING_CALL,        8, 8,     0, 1, NONE,  VH_REQ_VRING_FILE,                   VH_REPLY_ACK,     0, 8, 8),
	ROW(SET_VRING_ERR,         8, 8,     0, 1, NONE,  VH_REQ_VRING_FILE,                   VH_REPLY_ACK,     0, 8, 8),
	ROW(GET_PROTOCOL_FEATURES, 0, 0,     0, 0, PF,    0,                                   VH_REPLY_U64,     0, 8, 8),
	ROW(SET_PROTOCOL_FEATURES, 8, 8,     0, 0, PF,    0,                                   VH_REPLY_ACK,     0, 8, 8),
	ROW(GET_QUEUE_NUM,         0, 0,     0, 0, P(MQ), VH_REQ_PER_DEVICE,                   VH_REPLY_U64,     0, 8, 8),
	ROW(SET_VRING_ENABLE,      8, 8,     0, 0, PF,    VH_REQ_VRING_STATE,                  VH_REPLY_ACK,     0, 8, 8),
	ROW(SEND_RARP,             8, 8,     0, 0, P(RARP), 0,                                 VH_REPLY_ACK,     0, 8, 8),
	ROW(NET_SET_MTU,           8, 8,     0, 0, P(NET_MTU), VH_REQ_PER_DEVICE,              VH_REPLY_ACK,     0, 8, 8),
	ROW(SET_BACKEND_REQ_FD,    0, 0,     1, 1, P(BACKEND_REQ), 0,                          VH_REPLY_ACK,     0, 8, 8),
	/* Erratum E8: 26 bytes of fields, 32 on the wire. QEMU always asks for the ack. */
	ROW(IOTLB_MSG,             32, 32,   0, 0, IOMMU, VH_REQ_ALWAYS_NEED_REPLY,            VH_REPLY_ACK,     0, 8, 8),
	ROW(SET_VRING_ENDIAN,      8, 8,     0, 0, P(CROSS_ENDIAN), VH_REQ_VRING_STATE,        VH_REPLY_ACK,     0, 8, 8),
	ROW(GET_CONFIG,            VH_CONFIG_HDR_SIZE, CONFIG_MAX, 0, 0, P(CONFIG), VH_REQ_VARIABLE,
	                                                                                       VH_REPLY_PAYLOAD, 0, 0, CONFIG_MAX),
	ROW(SET_CONFIG,            VH_CONFIG_HDR_SIZE, CONFIG_MAX, 0, 0, P(CONFIG), VH_REQ_VARIABLE,
	                                                                                       VH_REPLY_ACK,     0, 8, 8),
	/* Opaque QEMU-internal layout: bounded, echoed back with the same size. */
	ROW(CREATE_CRYPTO_SESSION, 8, VH_USER_MAX_PAYLOAD, 0, 0, P(CRYPTO_SESSION), VH_REQ_VARIABLE,
	                                                                                       VH_REPLY_PAYLOAD, 0, 8, VH_USER_MAX_PAYLOAD),
	ROW(CLOSE_CRYPTO_SESSION,  8, 8,     0, 0, P(CRYPTO_SESSION), 0,                       VH_REPLY_ACK,     0, 8, 8),
	ROW(POSTCOPY_ADVISE,       0, 0,     0, 0, P(PAGEFAULT), VH_REQ_NOT_WITH_MEM_SLOTS,    VH_REPLY_PAYLOAD, 1, 0, 0),
	ROW(POSTCOPY_LISTEN,       0, 0,     0, 0, P(PAGEFAULT),
	    VH_REQ_NOT_WITH_MEM_SLOTS | VH_REQ_ALWAYS_NEED_REPLY,                              VH_REPLY_ACK,     0, 8, 8),
	ROW(POSTCOPY_END,          0, 0,     0, 0, P(PAGEFAULT),
	    VH_REQ_NOT_WITH_MEM_SLOTS | VH_REQ_ALWAYS_NEED_REPLY,                              VH_REPLY_ACK,     0, 8, 8),
	/* Erratum E1: the reply is the inflight description plus its fd. */
	ROW(GET_INFLIGHT_FD,       24, 24,   0, 0, P(INFLIGHT_SHMFD), 0,                       VH_REPLY_PAYLOAD, 1, 24, 24),
	ROW(SET_INFLIGHT_FD,       24, 24,   1, 1, P(INFLIGHT_SHMFD), 0,                       VH_REPLY_ACK,     0, 8, 8),
	/* No protocol feature exists for it; only vhost-user-gpu back-ends implement it. */
	ROW(GPU_SET_SOCKET,        0, 0,     1, 1, NONE,  0,                                   VH_REPLY_ACK,     0, 8, 8),
	ROW(RESET_DEVICE,          0, 0,     0, 0, P(RESET_DEVICE), VH_REQ_PER_DEVICE,         VH_REPLY_ACK,     0, 8, 8),
	ROW(VRING_KICK,            8, 8,     0, 0, P(INBAND_NOTIFICATIONS), VH_REQ_VRING_STATE, VH_REPLY_ACK,    0, 8, 8),
	ROW(GET_MAX_MEM_SLOTS,     0, 0,     0, 0, P(CONFIGURE_MEM_SLOTS), 0,                  VH_REPLY_U64,     0, 8, 8),
	/* Erratum E2: the region is in the request. 48 bytes with XEN_MMAP. */
	ROW(ADD_MEM_REG,           40, 48,   1, 1, P(CONFIGURE_MEM_SLOTS),
	    VH_REQ_PER_DEVICE | VH_REQ_VARIABLE,                                               VH_REPLY_ACK,     0, 8, 8),
	/* The spec allows one fd on REM_MEM_REG, which must be closed. */
	ROW(REM_MEM_REG,           40, 48,   0, 1, P(CONFIGURE_MEM_SLOTS),
	    VH_REQ_PER_DEVICE | VH_REQ_VARIABLE,                                               VH_REPLY_ACK,     0, 8, 8),
	ROW(SET_STATUS,            8, 8,     0, 0, P(STATUS), 0,                               VH_REPLY_ACK,     0, 8, 8),
	ROW(GET_STATUS,            0, 0,     0, 0, P(STATUS), 0,                               VH_REPLY_U64,     0, 8, 8),
	ROW(GET_SHARED_OBJECT,     16, 16,   0, 0, P(SHARED_OBJECT), 0,                        VH_REPLY_U64,     1, 8, 8),
	ROW(SET_DEVICE_STATE_FD,   8, 8,     1, 1, P(DEVICE_STATE), 0,                         VH_REPLY_U64,     1, 8, 8),
	ROW(CHECK_DEVICE_STATE,    0, 0,     0, 0, P(DEVICE_STATE), 0,                         VH_REPLY_U64,     0, 8, 8),
	ROW(GET_SHMEM_CONFIG,      0, 0,     0, 0, P(SHMEM), 0,                                VH_REPLY_PAYLOAD, 0,
	    (uint16_t)sizeof(struct vh_shmem_config), (uint16_t)sizeof(struct vh_shmem_config)),
};
#undef ROW

/* ---- Back-end -> front-end table ------------------------------------------------------------ */

#define ROW(id, smin, smax, fmin, fmax, gate, flags, reply, rfds, rmin, rmax) \
	[VH_USER_BACKEND_##id] = { VH_USER_BACKEND_##id, #id, smin, smax, fmin, fmax, gate, flags, \
				   reply, rfds, rmin, rmax }

static const struct vh_request_info backend_table[VH_USER_BACKEND_REQUEST_MAX + 1] = {
	ROW(IOTLB_MSG,                32, 32, 0, 0, IOMMU, 0,                         VH_REPLY_ACK, 0, 8, 8),
	ROW(CONFIG_CHANGE_MSG,        0, 0,   0, 0, P(CONFIG), 0,                     VH_REPLY_ACK, 0, 8, 8),
	ROW(VRING_HOST_NOTIFIER_MSG,  24, 24, 0, 1, P(HOST_NOTIFIER), VH_REQ_VRING_FILE, VH_REPLY_ACK, 0, 8, 8),
	ROW(VRING_CALL,               8, 8,   0, 0, P(INBAND_NOTIFICATIONS), VH_REQ_VRING_STATE, VH_REPLY_ACK, 0, 8, 8),
	ROW(VRING_ERR,                8, 8,   0, 0, P(INBAND_NOTIFICATIONS), VH_REQ_VRING_STATE, VH_REPLY_ACK, 0, 8, 8),
	ROW(SHARED_OBJECT_ADD,        16, 16, 0, 0, P(SHARED_OBJECT), 0,              VH_REPLY_ACK, 0, 8, 8),
	ROW(SHARED_OBJECT_REMOVE,     16, 16, 0, 0, P(SHARED_OBJECT), 0,              VH_REPLY_ACK, 0, 8, 8),
	ROW(SHARED_OBJECT_LOOKUP,     16, 16, 0, 0, P(SHARED_OBJECT), 0,              VH_REPLY_U64, 1, 8, 8),
	ROW(SHMEM_MAP,                40, 40, 1, 1, P(SHMEM), 0,                      VH_REPLY_ACK, 0, 8, 8),
	ROW(SHMEM_UNMAP,              40, 40, 0, 0, P(SHMEM), 0,                      VH_REPLY_ACK, 0, 8, 8),
};
#undef ROW

/* Every id from 1 to the maximum has a row; the zero id and the holes are NULL. */
_Static_assert(VHP_ARRAY_SIZE(frontend_table) == 45, "front-end table covers ids 0..44");
_Static_assert(VHP_ARRAY_SIZE(backend_table) == 11, "back-end table covers ids 0..10");

const struct vh_request_info *vh_request_info(uint32_t id)
{
	if (id == 0 || id > VH_USER_REQUEST_MAX)
		return NULL;
	return &frontend_table[id];
}

const struct vh_request_info *vh_backend_request_info(uint32_t id)
{
	if (id == 0 || id > VH_USER_BACKEND_REQUEST_MAX)
		return NULL;
	return &backend_table[id];
}

const char *vh_request_name(uint32_t id)
{
	const struct vh_request_info *row = vh_request_info(id);

	return row ? row->name : "UNKNOWN";
}

const char *vh_backend_request_name(uint32_t id)
{
	const struct vh_request_info *row = vh_backend_request_info(id);

	return row ? row->name : "UNKNOWN";
}

static const char *const protocol_names[VH_USER_PROTOCOL_F_MAX + 1] = {
	[VH_USER_PROTOCOL_F_MQ] = "MQ",
	[VH_USER_PROTOCOL_F_LOG_SHMFD] = "LOG_SHMFD",
	[VH_USER_PROTOCOL_F_RARP] = "RARP",
	[VH_USER_PROTOCOL_F_REPLY_ACK] = "REPLY_ACK",
	[VH_USER_PROTOCOL_F_NET_MTU] = "NET_MTU",
	[VH_USER_PROTOCOL_F_BACKEND_REQ] = "BACKEND_REQ",
	[VH_USER_PROTOCOL_F_CROSS_ENDIAN] = "CROSS_ENDIAN",
	[VH_USER_PROTOCOL_F_CRYPTO_SESSION] = "CRYPTO_SESSION",
	[VH_USER_PROTOCOL_F_PAGEFAULT] = "PAGEFAULT",
	[VH_USER_PROTOCOL_F_CONFIG] = "CONFIG",
	[VH_USER_PROTOCOL_F_BACKEND_SEND_FD] = "BACKEND_SEND_FD",
	[VH_USER_PROTOCOL_F_HOST_NOTIFIER] = "HOST_NOTIFIER",
	[VH_USER_PROTOCOL_F_INFLIGHT_SHMFD] = "INFLIGHT_SHMFD",
	[VH_USER_PROTOCOL_F_RESET_DEVICE] = "RESET_DEVICE",
	[VH_USER_PROTOCOL_F_INBAND_NOTIFICATIONS] = "INBAND_NOTIFICATIONS",
	[VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS] = "CONFIGURE_MEM_SLOTS",
	[VH_USER_PROTOCOL_F_STATUS] = "STATUS",
	[VH_USER_PROTOCOL_F_XEN_MMAP] = "XEN_MMAP",
	[VH_USER_PROTOCOL_F_SHARED_OBJECT] = "SHARED_OBJECT",
	[VH_USER_PROTOCOL_F_DEVICE_STATE] = "DEVICE_STATE",
	[VH_USER_PROTOCOL_F_GET_VRING_BASE_INFLIGHT] = "GET_VRING_BASE_INFLIGHT",
	[VH_USER_PROTOCOL_F_GPA_ADDRESSES] = "GPA_ADDRESSES",
	[VH_USER_PROTOCOL_F_SHMEM] = "SHMEM",
};

const char *vh_protocol_feature_name(unsigned bit)
{
	return bit <= VH_USER_PROTOCOL_F_MAX ? protocol_names[bit] : NULL;
}

const char *vh_transport_feature_name(unsigned bit)
{
	switch (bit) {
	case VH_F_NOTIFY_ON_EMPTY: return "NOTIFY_ON_EMPTY";
	case VH_F_LOG_ALL: return "LOG_ALL";
	case VH_F_ANY_LAYOUT: return "ANY_LAYOUT";
	case VH_F_INDIRECT_DESC: return "RING_INDIRECT_DESC";
	case VH_F_EVENT_IDX: return "RING_EVENT_IDX";
	case VH_USER_F_PROTOCOL_FEATURES: return "PROTOCOL_FEATURES";
	case VH_F_VERSION_1: return "VERSION_1";
	case VH_F_ACCESS_PLATFORM: return "ACCESS_PLATFORM";
	case VH_F_RING_PACKED: return "RING_PACKED";
	case VH_F_IN_ORDER: return "IN_ORDER";
	case VH_F_ORDER_PLATFORM: return "ORDER_PLATFORM";
	case VH_F_SR_IOV: return "SR_IOV";
	case VH_F_NOTIFICATION_DATA: return "NOTIFICATION_DATA";
	case VH_F_NOTIF_CONFIG_DATA: return "NOTIF_CONFIG_DATA";
	case VH_F_RING_RESET: return "RING_RESET";
	default: return NULL;
	}
}

/* ---- Validation --------------------------------------------------------------------------- */

static int check_gate(const struct vh_validate_ctx *ctx, const struct vh_request_info *row)
{
	if (row->gate == VH_GATE_NONE)
		return 0;
	if (row->gate == VH_GATE_PROTOCOL_FEATURES)
		return (ctx->features_offered & VH_BIT(VH_USER_F_PROTOCOL_FEATURES)) ? 0 : -ENOTSUP;
	if (row->gate == VH_GATE_ACCESS_PLATFORM)
		return (ctx->features_acked & VH_BIT(VH_F_ACCESS_PLATFORM)) ? 0 : -ENOTSUP;
	if (row->gate < 0 || row->gate > VH_USER_PROTOCOL_F_MAX)
		return -ENOTSUP;
	return (ctx->protocol_features & VH_BIT(row->gate)) ? 0 : -ENOTSUP;
}

static int check_variable(const struct vh_validate_ctx *ctx, const struct vh_msg_hdr *hdr,
			  const union vh_payload *p, unsigned nfds)
{
	const int xen = !!(ctx->protocol_features & VH_BIT(VH_USER_PROTOCOL_F_XEN_MMAP));
	uint32_t region_size = xen ? sizeof(struct vh_mem_region_xen) : sizeof(struct vh_mem_region);

	switch (hdr->request) {
	case VH_USER_SET_MEM_TABLE:
		if (p->mem.nregions > VH_USER_MAX_TABLE_REGIONS)
			return -EINVAL;
		if (hdr->size != 8 + region_size * p->mem.nregions)
			return -EINVAL;
		return nfds == p->mem.nregions ? 0 : -EINVAL;
	case VH_USER_ADD_MEM_REG:
	case VH_USER_REM_MEM_REG:
		return hdr->size == 8 + region_size ? 0 : -EINVAL;
	case VH_USER_GET_CONFIG:
	case VH_USER_SET_CONFIG:
		if (p->config.size > VH_USER_MAX_CONFIG_SIZE)
			return -EINVAL;
		if (hdr->size != VH_CONFIG_HDR_SIZE + p->config.size)
			return -EINVAL;
		/* Offsets are 0-based within the device config space (at most 256 bytes here). */
		if ((uint64_t)p->config.offset + p->config.size > VH_USER_MAX_CONFIG_SIZE)
			return -EINVAL;
		return 0;
	case VH_USER_CREATE_CRYPTO_SESSION:
		return 0;
	default:
		return -EINVAL;
	}
}

int vh_validate_request(const struct vh_validate_ctx *ctx, const struct vh_msg_hdr *hdr,
			const union vh_payload *payload, unsigned nfds)
{
	const struct vh_request_info *row;
	int ret;

	if (!ctx || !hdr || (!payload && hdr->size))
		return -EINVAL;
	/* Framing first: version 1, known bits only, never the REPLY bit on a request. */
	if ((hdr->flags & VH_USER_VERSION_MASK) != VH_USER_VERSION ||
	    (hdr->flags & ~VH_USER_FLAGS_KNOWN) || (hdr->flags & VH_USER_FLAG_REPLY))
		return -EPROTO;
	if (hdr->size > VH_USER_MAX_PAYLOAD)
		return -EMSGSIZE;
	row = ctx->is_backend_channel ? vh_backend_request_info(hdr->request)
				      : vh_request_info(hdr->request);
	if (!row)
		return -ENOSYS;
	ret = check_gate(ctx, row);
	if (ret)
		return ret;
	if (ctx->is_backend_channel &&
	    !(ctx->protocol_features & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ)))
		return -ENOTSUP;
	if ((row->flags & VH_REQ_NOT_WITH_MEM_SLOTS) &&
	    (ctx->protocol_features & VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
		return -ENOTSUP;
	if (hdr->size < row->size_min || hdr->size > row->size_max)
		return -EINVAL;
	if (nfds < row->fds_min || nfds > row->fds_max)
		return -EINVAL;
	if (row->flags & VH_REQ_VARIABLE) {
		ret = check_variable(ctx, hdr, payload, nfds);
		if (ret)
			return ret;
	}
	if (row->flags & VH_REQ_VRING_STATE) {
		if (ctx->num_queues && payload->state.index >= ctx->num_queues)
			return -ERANGE;
	}
	if (row->flags & VH_REQ_VRING_FILE) {
		uint64_t v = payload->u64;
		uint64_t idx = v & VH_USER_VRING_IDX_MASK;

		/* Reserved bits must be clear; "no fd" and an attached fd exclude each other. */
		if (v & ~(VH_USER_VRING_IDX_MASK | VH_USER_VRING_NOFD_MASK))
			return -EINVAL;
		if ((v & VH_USER_VRING_NOFD_MASK) ? nfds != 0 : nfds != 1)
			return -EINVAL;
		if (ctx->num_queues && idx >= ctx->num_queues)
			return -ERANGE;
	}
	return 0;
}

int vh_validate_reply(const struct vh_request_info *row, uint32_t request,
		      const struct vh_msg_hdr *hdr, unsigned nfds, int acked)
{
	if (!row || !hdr)
		return -EINVAL;
	if (hdr->request != request)
		return -EPROTO;
	if (hdr->flags != (VH_USER_VERSION | VH_USER_FLAG_REPLY))
		return -EPROTO;
	if (hdr->size > VH_USER_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (acked || row->reply == VH_REPLY_ACK) {
		/* An ack is a bare u64 without fds; except the postcopy form of SET_MEM_TABLE, which
		 * the caller asks for explicitly by passing acked = 0 with a table-sized bound. */
		if (acked && (hdr->size != 8 || nfds))
			return -EPROTO;
		if (!acked && (hdr->size < row->reply_size_min || hdr->size > row->reply_size_max ||
			       nfds))
			return -EPROTO;
		return 0;
	}
	if (row->reply == VH_REPLY_NONE)
		return -EPROTO;
	if (hdr->size < row->reply_size_min || hdr->size > row->reply_size_max)
		return -EPROTO;
	if (nfds > row->reply_fds_max)
		return -EPROTO;
	return 0;
}
