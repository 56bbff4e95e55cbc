/* SPDX-License-Identifier: MIT */
/*
 * The request tables against an independent list transcribed from the protocol reference
 * (vhost-user-protocol.md §2 and §4, with the errata of §3): a wrong row in src/wire.c fails here.
 * Also layout constants, names and feature numbering.
 */
#include <stddef.h>
#include <stdint.h>

#include <libvhost/wire.h>
#include "testutil.h"

#define P(b) VH_USER_PROTOCOL_F_##b
#define NONE VH_GATE_NONE
#define PF VH_GATE_PROTOCOL_FEATURES
#define IOMMU VH_GATE_ACCESS_PLATFORM

/* Reply kinds as the reference states them. ALWAYS = a u64 the back-end always sends (either
 * VH_REPLY_U64, or VH_REPLY_ACK with VH_REQ_ALWAYS_NEED_REPLY: the front-end always asks). */
enum { R_ACK, R_U64, R_ALWAYS, R_PAYLOAD };

/* Queue-naming kinds: S = index in a vring state/address, F = low byte of an index|NOFD u64. */
enum { Q_NO, Q_S, Q_F };

struct ref_row {
	uint32_t id;
	const char *name;
	unsigned smin, smax;   /* request payload bytes */
	unsigned fmin, fmax;   /* request fds */
	int gate;
	int queue;             /* Q_* */
	int per_device;
	int reply;             /* R_* */
	unsigned rmin, rmax;   /* reply payload bytes (R_PAYLOAD; 8..8 for u64 replies) */
	unsigned rfds;         /* fds the reply may carry */
	int not_with_slots;    /* refused with CONFIGURE_MEM_SLOTS */
};

/* 8 + 32 n, n <= 8; 8 + 40 n with XEN_MMAP. */
#define MEMT_MAX (8 + 40 * 8)

static const struct ref_row frontend_ref[] = {
	{ 1, "GET_FEATURES", 0, 0, 0, 0, NONE, Q_NO, 0, R_U64, 8, 8, 0, 0 },
	{ 2, "SET_FEATURES", 8, 8, 0, 0, NONE, Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 3, "SET_OWNER", 0, 0, 0, 0, NONE, Q_NO, 1, R_ACK, 8, 8, 0, 0 },
	{ 4, "RESET_OWNER", 0, 0, 0, 0, NONE, Q_NO, 1, R_ACK, 8, 8, 0, 0 },
	{ 5, "SET_MEM_TABLE", 8, MEMT_MAX, 0, 8, NONE, Q_NO, 1, R_ACK, 8, 8, 0, 0 },
	/* E3: 16-byte request; E4: u64 reply (some peers echo the 16 bytes). */
	{ 6, "SET_LOG_BASE", 16, 16, 1, 1, P(LOG_SHMFD), Q_NO, 1, R_U64, 8, 16, 0, 0 },
	/* §2 lists no gate; bad-inputs R6 counts an ungated SET_LOG_FD as a dispatcher gap, and the
	 * log only exists with LOG_SHMFD, so the stricter gate is what we expect. */
	{ 7, "SET_LOG_FD", 0, 0, 1, 1, P(LOG_SHMFD), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 8, "SET_VRING_NUM", 8, 8, 0, 0, NONE, Q_S, 0, R_ACK, 8, 8, 0, 0 },
	{ 9, "SET_VRING_ADDR", 40, 40, 0, 0, NONE, Q_S, 0, R_ACK, 8, 8, 0, 0 },
	{ 10, "SET_VRING_BASE", 8, 8, 0, 0, NONE, Q_S, 0, R_ACK, 8, 8, 0, 0 },
	{ 11, "GET_VRING_BASE", 8, 8, 0, 0, NONE, Q_S, 0, R_PAYLOAD, 8, 8, 0, 0 },
	{ 12, "SET_VRING_KICK", 8, 8, 0, 1, NONE, Q_F, 0, R_ACK, 8, 8, 0, 0 },
	{ 13, "SET_VRING_CALL", 8, 8, 0, 1, NONE, Q_F, 0, R_ACK, 8, 8, 0, 0 },
	{ 14, "SET_VRING_ERR", 8, 8, 0, 1, NONE, Q_F, 0, R_ACK, 8, 8, 0, 0 },
	{ 15, "GET_PROTOCOL_FEATURES", 0, 0, 0, 0, PF, Q_NO, 0, R_U64, 8, 8, 0, 0 },
	{ 16, "SET_PROTOCOL_FEATURES", 8, 8, 0, 0, PF, Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 17, "GET_QUEUE_NUM", 0, 0, 0, 0, P(MQ), Q_NO, 1, R_U64, 8, 8, 0, 0 },
	{ 18, "SET_VRING_ENABLE", 8, 8, 0, 0, PF, Q_S, 0, R_ACK, 8, 8, 0, 0 },
	{ 19, "SEND_RARP", 8, 8, 0, 0, P(RARP), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 20, "NET_SET_MTU", 8, 8, 0, 0, P(NET_MTU), Q_NO, 1, R_ACK, 8, 8, 0, 0 },
	{ 21, "SET_BACKEND_REQ_FD", 0, 0, 1, 1, P(BACKEND_REQ), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	/* E8: 32 bytes on the wire; QEMU always sets NEED_REPLY. */
	{ 22, "IOTLB_MSG", 32, 32, 0, 0, IOMMU, Q_NO, 0, R_ALWAYS, 8, 8, 0, 0 },
	{ 23, "SET_VRING_ENDIAN", 8, 8, 0, 0, P(CROSS_ENDIAN), Q_S, 0, R_ACK, 8, 8, 0, 0 },
	/* 12 + size, size <= 256; reply of the same size, size 0 = error. */
	{ 24, "GET_CONFIG", 12, 268, 0, 0, P(CONFIG), Q_NO, 0, R_PAYLOAD, 0, 268, 0, 0 },
	{ 25, "SET_CONFIG", 12, 268, 0, 0, P(CONFIG), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	/* Opaque, bounded by the receive cap; echoed with the same size. */
	{ 26, "CREATE_CRYPTO_SESSION", 8, 4096, 0, 0, P(CRYPTO_SESSION), Q_NO, 0, R_PAYLOAD, 8, 4096, 0, 0 },
	{ 27, "CLOSE_CRYPTO_SESSION", 8, 8, 0, 0, P(CRYPTO_SESSION), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	/* Reply: no payload, the userfaultfd as its one fd. */
	{ 28, "POSTCOPY_ADVISE", 0, 0, 0, 0, P(PAGEFAULT), Q_NO, 0, R_PAYLOAD, 0, 0, 1, 1 },
	{ 29, "POSTCOPY_LISTEN", 0, 0, 0, 0, P(PAGEFAULT), Q_NO, 0, R_ALWAYS, 8, 8, 0, 1 },
	{ 30, "POSTCOPY_END", 0, 0, 0, 0, P(PAGEFAULT), Q_NO, 0, R_ALWAYS, 8, 8, 0, 1 },
	/* E1, E7: 24-byte inflight reply with the buffer's fd. */
	{ 31, "GET_INFLIGHT_FD", 24, 24, 0, 0, P(INFLIGHT_SHMFD), Q_NO, 0, R_PAYLOAD, 24, 24, 1, 0 },
	{ 32, "SET_INFLIGHT_FD", 24, 24, 1, 1, P(INFLIGHT_SHMFD), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 33, "GPU_SET_SOCKET", 0, 0, 1, 1, NONE, Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 34, "RESET_DEVICE", 0, 0, 0, 0, P(RESET_DEVICE), Q_NO, 1, R_ACK, 8, 8, 0, 0 },
	{ 35, "VRING_KICK", 8, 8, 0, 0, P(INBAND_NOTIFICATIONS), Q_S, 0, R_ACK, 8, 8, 0, 0 },
	{ 36, "GET_MAX_MEM_SLOTS", 0, 0, 0, 0, P(CONFIGURE_MEM_SLOTS), Q_NO, 0, R_U64, 8, 8, 0, 0 },
	/* E2: the region is in the request; 40 bytes, 48 with XEN_MMAP. */
	{ 37, "ADD_MEM_REG", 40, 48, 1, 1, P(CONFIGURE_MEM_SLOTS), Q_NO, 1, R_ACK, 8, 8, 0, 0 },
	{ 38, "REM_MEM_REG", 40, 48, 0, 1, P(CONFIGURE_MEM_SLOTS), Q_NO, 1, R_ACK, 8, 8, 0, 0 },
	{ 39, "SET_STATUS", 8, 8, 0, 0, P(STATUS), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 40, "GET_STATUS", 0, 0, 0, 0, P(STATUS), Q_NO, 0, R_U64, 8, 8, 0, 0 },
	{ 41, "GET_SHARED_OBJECT", 16, 16, 0, 0, P(SHARED_OBJECT), Q_NO, 0, R_U64, 8, 8, 1, 0 },
	{ 42, "SET_DEVICE_STATE_FD", 8, 8, 1, 1, P(DEVICE_STATE), Q_NO, 0, R_U64, 8, 8, 1, 0 },
	{ 43, "CHECK_DEVICE_STATE", 0, 0, 0, 0, P(DEVICE_STATE), Q_NO, 0, R_U64, 8, 8, 0, 0 },
	{ 44, "GET_SHMEM_CONFIG", 0, 0, 0, 0, P(SHMEM), Q_NO, 0, R_PAYLOAD, 2056, 2056, 0, 0 },
};

static const struct ref_row backend_ref[] = {
	{ 1, "IOTLB_MSG", 32, 32, 0, 0, IOMMU, Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 2, "CONFIG_CHANGE_MSG", 0, 0, 0, 0, P(CONFIG), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 3, "VRING_HOST_NOTIFIER_MSG", 24, 24, 0, 1, P(HOST_NOTIFIER), Q_F, 0, R_ACK, 8, 8, 0, 0 },
	{ 4, "VRING_CALL", 8, 8, 0, 0, P(INBAND_NOTIFICATIONS), Q_S, 0, R_ACK, 8, 8, 0, 0 },
	{ 5, "VRING_ERR", 8, 8, 0, 0, P(INBAND_NOTIFICATIONS), Q_S, 0, R_ACK, 8, 8, 0, 0 },
	{ 6, "SHARED_OBJECT_ADD", 16, 16, 0, 0, P(SHARED_OBJECT), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 7, "SHARED_OBJECT_REMOVE", 16, 16, 0, 0, P(SHARED_OBJECT), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 8, "SHARED_OBJECT_LOOKUP", 16, 16, 0, 0, P(SHARED_OBJECT), Q_NO, 0, R_U64, 8, 8, 1, 0 },
	{ 9, "SHMEM_MAP", 40, 40, 1, 1, P(SHMEM), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
	{ 10, "SHMEM_UNMAP", 40, 40, 0, 0, P(SHMEM), Q_NO, 0, R_ACK, 8, 8, 0, 0 },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void check_row(const struct vh_request_info *row, const struct ref_row *ref, int backend)
{
	const char *side = backend ? "backend" : "frontend";
	int has_state, has_file;

	if (!row) {
		T_FAIL("%s id %u (%s): no table row", side, ref->id, ref->name);
		return;
	}
	CHECK_EQ_M(row->id, ref->id, "%s %s id", side, ref->name);
	if (!row->name || strcmp(row->name, ref->name))
		T_FAIL("%s id %u: name \"%s\", expected \"%s\"", side, ref->id,
		       row->name ? row->name : "(null)", ref->name);
	CHECK_EQ_M(row->size_min, ref->smin, "%s %s size_min", side, ref->name);
	CHECK_EQ_M(row->size_max, ref->smax, "%s %s size_max", side, ref->name);
	CHECK_EQ_M(row->fds_min, ref->fmin, "%s %s fds_min", side, ref->name);
	CHECK_EQ_M(row->fds_max, ref->fmax, "%s %s fds_max", side, ref->name);
	CHECK_EQ_M(row->gate, ref->gate, "%s %s gate", side, ref->name);
	has_state = !!(row->flags & VH_REQ_VRING_STATE);
	has_file = !!(row->flags & VH_REQ_VRING_FILE);
	CHECK_EQ_M(has_state, ref->queue == Q_S, "%s %s VRING_STATE flag", side, ref->name);
	CHECK_EQ_M(has_file, ref->queue == Q_F, "%s %s VRING_FILE flag", side, ref->name);
	CHECK_EQ_M(!!(row->flags & VH_REQ_PER_DEVICE), ref->per_device, "%s %s PER_DEVICE", side,
		   ref->name);
	CHECK_EQ_M(!!(row->flags & VH_REQ_NOT_WITH_MEM_SLOTS), ref->not_with_slots,
		   "%s %s NOT_WITH_MEM_SLOTS", side, ref->name);
	CHECK_EQ_M(!!(row->flags & VH_REQ_VARIABLE), ref->smin != ref->smax, "%s %s VARIABLE",
		   side, ref->name);
	CHECK_EQ_M(row->reply_fds_max, ref->rfds, "%s %s reply_fds_max", side, ref->name);
	if ((row->flags & VH_REQ_REPLY_FDS) && !row->reply_fds_max)
		T_FAIL("%s %s: REPLY_FDS flag without reply_fds_max", side, ref->name);
	switch (ref->reply) {
	case R_ACK:
		CHECK_EQ_M(row->reply, VH_REPLY_ACK, "%s %s reply kind", side, ref->name);
		CHECK_EQ_M(!!(row->flags & VH_REQ_ALWAYS_NEED_REPLY), 0, "%s %s always-ack", side,
			   ref->name);
		break;
	case R_U64:
		CHECK_EQ_M(row->reply, VH_REPLY_U64, "%s %s reply kind", side, ref->name);
		break;
	case R_ALWAYS:
		if (!(row->reply == VH_REPLY_U64 ||
		      (row->reply == VH_REPLY_ACK && (row->flags & VH_REQ_ALWAYS_NEED_REPLY))))
			T_FAIL("%s %s: reply kind %u flags 0x%x, expected a u64 always sent", side,
			       ref->name, row->reply, row->flags);
		break;
	case R_PAYLOAD:
		CHECK_EQ_M(row->reply, VH_REPLY_PAYLOAD, "%s %s reply kind", side, ref->name);
		break;
	}
	if (ref->reply != R_ACK || ref->id == VH_USER_SET_MEM_TABLE) {
		/* SET_MEM_TABLE's postcopy reply is the table: its bound is the table's. */
		if (ref->id != VH_USER_SET_MEM_TABLE || backend) {
			CHECK_EQ_M(row->reply_size_min, ref->rmin, "%s %s reply_size_min", side,
				   ref->name);
			CHECK_EQ_M(row->reply_size_max, ref->rmax, "%s %s reply_size_max", side,
				   ref->name);
		} else {
			CHECK_EQ_M(row->reply_size_min, 8, "SET_MEM_TABLE reply min");
			CHECK_EQ_M(row->reply_size_max, MEMT_MAX, "SET_MEM_TABLE postcopy reply max");
		}
	} else {
		CHECK_EQ_M(row->reply_size_min, 8, "%s %s ack size", side, ref->name);
		CHECK_EQ_M(row->reply_size_max, 8, "%s %s ack size", side, ref->name);
	}
}

static void test_frontend_table(void)
{
	CHECK_EQ(NELEM(frontend_ref), 44);
	CHECK_EQ(VH_USER_REQUEST_MAX, 44);
	for (size_t i = 0; i < NELEM(frontend_ref); i++) {
		CHECK_EQ(frontend_ref[i].id, i + 1);
		check_row(vh_request_info(frontend_ref[i].id), &frontend_ref[i], 0);
		CHECK(!strcmp(vh_request_name(frontend_ref[i].id), frontend_ref[i].name));
	}
	CHECK(vh_request_info(0) == NULL);
	CHECK(vh_request_info(45) == NULL);
	CHECK(vh_request_info(UINT32_MAX) == NULL);
	CHECK(!strcmp(vh_request_name(0), "UNKNOWN"));
	CHECK(!strcmp(vh_request_name(45), "UNKNOWN"));
	CHECK(!strcmp(vh_request_name(0x80000001u), "UNKNOWN"));
}

static void test_backend_table(void)
{
	CHECK_EQ(NELEM(backend_ref), 10);
	CHECK_EQ(VH_USER_BACKEND_REQUEST_MAX, 10);
	for (size_t i = 0; i < NELEM(backend_ref); i++) {
		CHECK_EQ(backend_ref[i].id, i + 1);
		check_row(vh_backend_request_info(backend_ref[i].id), &backend_ref[i], 1);
		CHECK(!strcmp(vh_backend_request_name(backend_ref[i].id), backend_ref[i].name));
	}
	CHECK(vh_backend_request_info(0) == NULL);
	CHECK(vh_backend_request_info(11) == NULL);
	CHECK(vh_backend_request_info(UINT32_MAX) == NULL);
	CHECK(!strcmp(vh_backend_request_name(11), "UNKNOWN"));
}

/* Request ids and the numbering of §4 (an enum typo would pass the row check only if the
 * row used the same wrong constant). */
static void test_ids(void)
{
	static const struct { unsigned v, want; } ids[] = {
		{ VH_USER_GET_FEATURES, 1 }, { VH_USER_SET_MEM_TABLE, 5 },
		{ VH_USER_SET_LOG_BASE, 6 }, { VH_USER_GET_VRING_BASE, 11 },
		{ VH_USER_SET_VRING_ERR, 14 }, { VH_USER_GET_QUEUE_NUM, 17 },
		{ VH_USER_SET_BACKEND_REQ_FD, 21 }, { VH_USER_IOTLB_MSG, 22 },
		{ VH_USER_GET_CONFIG, 24 }, { VH_USER_POSTCOPY_ADVISE, 28 },
		{ VH_USER_GET_INFLIGHT_FD, 31 }, { VH_USER_GPU_SET_SOCKET, 33 },
		{ VH_USER_VRING_KICK, 35 }, { VH_USER_ADD_MEM_REG, 37 },
		{ VH_USER_SET_STATUS, 39 }, { VH_USER_GET_SHARED_OBJECT, 41 },
		{ VH_USER_CHECK_DEVICE_STATE, 43 }, { VH_USER_GET_SHMEM_CONFIG, 44 },
		{ VH_USER_BACKEND_IOTLB_MSG, 1 }, { VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, 3 },
		{ VH_USER_BACKEND_VRING_ERR, 5 }, { VH_USER_BACKEND_SHARED_OBJECT_LOOKUP, 8 },
		{ VH_USER_BACKEND_SHMEM_UNMAP, 10 },
	};

	for (size_t i = 0; i < NELEM(ids); i++)
		CHECK_EQ_M(ids[i].v, ids[i].want, "id #%zu", i);
}

/* Protocol feature numbers from §5, including the upstream numbering of 20-22 (erratum E10). */
static void test_protocol_feature_bits(void)
{
	static const char *const names[] = {
		"MQ", "LOG_SHMFD", "RARP", "REPLY_ACK", "NET_MTU", "BACKEND_REQ", "CROSS_ENDIAN",
		"CRYPTO_SESSION", "PAGEFAULT", "CONFIG", "BACKEND_SEND_FD", "HOST_NOTIFIER",
		"INFLIGHT_SHMFD", "RESET_DEVICE", "INBAND_NOTIFICATIONS", "CONFIGURE_MEM_SLOTS",
		"STATUS", "XEN_MMAP", "SHARED_OBJECT", "DEVICE_STATE", "GET_VRING_BASE_INFLIGHT",
		"GPA_ADDRESSES", "SHMEM",
	};

	CHECK_EQ(VH_USER_PROTOCOL_F_MAX, 22);
	for (unsigned b = 0; b < NELEM(names); b++) {
		const char *n = vh_protocol_feature_name(b);

		if (!n || strcmp(n, names[b]))
			T_FAIL("protocol bit %u named %s, expected %s", b, n ? n : "(null)", names[b]);
	}
	CHECK(vh_protocol_feature_name(23) == NULL);
	CHECK(vh_protocol_feature_name(63) == NULL);
	CHECK(vh_protocol_feature_name(~0u) == NULL);
	CHECK_EQ(VH_USER_PROTOCOL_F_BACKEND_REQ, 5);
	CHECK_EQ(VH_USER_PROTOCOL_F_HOST_NOTIFIER, 11);
	CHECK_EQ(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, 15);
	CHECK_EQ(VH_USER_PROTOCOL_F_SHMEM, 22);
	CHECK_EQ(VH_USER_F_PROTOCOL_FEATURES, 30);
	CHECK_EQ(VH_F_LOG_ALL, 26);
	CHECK_EQ(VH_F_ACCESS_PLATFORM, 33);
	CHECK_EQ(VH_F_RING_PACKED, 34);
	CHECK(!strcmp(vh_transport_feature_name(30), "PROTOCOL_FEATURES"));
	CHECK(vh_transport_feature_name(0) == NULL);
	CHECK(vh_transport_feature_name(64) == NULL);
}

/* Wire layouts of §6 (the library asserts them at compile time; this checks the constants a
 * caller uses to build messages by hand). */
static void test_layouts(void)
{
	CHECK_EQ(sizeof(struct vh_msg_hdr), 12);
	CHECK_EQ(sizeof(struct vh_vring_state), 8);
	CHECK_EQ(sizeof(struct vh_vring_addr), 40);
	CHECK_EQ(offsetof(struct vh_vring_addr, log_guest_addr), 32);
	CHECK_EQ(sizeof(struct vh_mem_region), 32);
	CHECK_EQ(sizeof(struct vh_mem_region_xen), 40);
	CHECK_EQ(offsetof(struct vh_mem_table, regions), 8);
	CHECK_EQ(sizeof(struct vh_mem_single), 40);
	CHECK_EQ(sizeof(struct vh_log), 16);
	CHECK_EQ(sizeof(struct vh_iotlb_msg), 32);
	CHECK_EQ(offsetof(struct vh_iotlb_msg, perm), 24);
	CHECK_EQ(offsetof(struct vh_iotlb_msg, type), 25);
	CHECK_EQ(offsetof(struct vh_config, region), 12);
	CHECK_EQ(sizeof(struct vh_inflight), 24);
	CHECK_EQ(offsetof(struct vh_inflight, queue_size), 18);
	CHECK_EQ(sizeof(struct vh_vring_area), 24);
	CHECK_EQ(sizeof(struct vh_shmem_config), 2056);
	CHECK_EQ(sizeof(struct vh_shmem_mmap), 40);
	CHECK_EQ(offsetof(struct vh_shmem_mmap, shm_offset), 16);
	CHECK_EQ(offsetof(struct vh_shmem_mmap, flags), 32);
	CHECK_EQ(offsetof(struct vh_msg, payload) % 8, 0);
	CHECK_EQ(VH_USER_MAX_PAYLOAD, 4096);
	CHECK_EQ(VH_USER_MAX_FDS, 8);
	CHECK_EQ(VH_USER_VRING_NOFD_MASK, 0x100);
	CHECK_EQ(VH_USER_FLAG_REPLY, 0x4);
	CHECK_EQ(VH_USER_FLAG_NEED_REPLY, 0x8);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_frontend_table),
		T_TEST(test_backend_table),
		T_TEST(test_ids),
		T_TEST(test_protocol_feature_bits),
		T_TEST(test_layouts),
	};

	return t_run(tests, NELEM(tests), argc, argv);
}
