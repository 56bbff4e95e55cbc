/* SPDX-License-Identifier: MIT */
/*
 * vh_validate_request() and vh_validate_reply(): a correct message for every request id in both
 * directions is accepted, and each rule's violation is rejected with its documented error.
 * Message shapes come from the protocol reference (§2, §4, §6), not from the table under test.
 */
#include <stddef.h>
#include <stdint.h>

#include <libvhost/wire.h>
#include "testutil.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NQ 4u /* queue count in the validation context */

/* Every protocol feature except XEN_MMAP (it changes region sizes) and, for the postcopy
 * requests, CONFIGURE_MEM_SLOTS (they are refused with it). */
static struct vh_validate_ctx full_ctx(uint32_t id, int backend)
{
	struct vh_validate_ctx c = { 0 };

	c.features_offered = VH_BIT(VH_USER_F_PROTOCOL_FEATURES);
	c.features_acked = VH_BIT(VH_F_ACCESS_PLATFORM) | VH_BIT(VH_F_VERSION_1);
	c.protocol_features = (VH_BIT(VH_USER_PROTOCOL_F_MAX + 1) - 1) &
			      ~VH_BIT(VH_USER_PROTOCOL_F_XEN_MMAP);
	if (!backend && id >= VH_USER_POSTCOPY_ADVISE && id <= VH_USER_POSTCOPY_END)
		c.protocol_features &= ~VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	c.num_queues = NQ;
	c.is_backend_channel = backend;
	return c;
}

/* Queue-naming kind of each request, from the reference: S = vring state/address index,
 * F = low byte of index|NOFD. */
enum { Q_NO, Q_S, Q_F };

struct shape {
	uint32_t size;   /* a correct payload size */
	unsigned nfds;   /* a correct fd count */
	int queue;
	int gate;        /* protocol bit, or VH_GATE_* */
};

#define P(b) VH_USER_PROTOCOL_F_##b

/* Correct shapes of the front-end requests 1..44 (index = id). */
static const struct shape fe_shape[45] = {
	[1] = { 0, 0, Q_NO, VH_GATE_NONE },
	[2] = { 8, 0, Q_NO, VH_GATE_NONE },
	[3] = { 0, 0, Q_NO, VH_GATE_NONE },
	[4] = { 0, 0, Q_NO, VH_GATE_NONE },
	[5] = { 8 + 2 * 32, 2, Q_NO, VH_GATE_NONE },
	[6] = { 16, 1, Q_NO, P(LOG_SHMFD) },
	[7] = { 0, 1, Q_NO, P(LOG_SHMFD) },
	[8] = { 8, 0, Q_S, VH_GATE_NONE },
	[9] = { 40, 0, Q_S, VH_GATE_NONE },
	[10] = { 8, 0, Q_S, VH_GATE_NONE },
	[11] = { 8, 0, Q_S, VH_GATE_NONE },
	[12] = { 8, 1, Q_F, VH_GATE_NONE },
	[13] = { 8, 1, Q_F, VH_GATE_NONE },
	[14] = { 8, 1, Q_F, VH_GATE_NONE },
	[15] = { 0, 0, Q_NO, VH_GATE_PROTOCOL_FEATURES },
	[16] = { 8, 0, Q_NO, VH_GATE_PROTOCOL_FEATURES },
	[17] = { 0, 0, Q_NO, P(MQ) },
	[18] = { 8, 0, Q_S, VH_GATE_PROTOCOL_FEATURES },
	[19] = { 8, 0, Q_NO, P(RARP) },
	[20] = { 8, 0, Q_NO, P(NET_MTU) },
	[21] = { 0, 1, Q_NO, P(BACKEND_REQ) },
	[22] = { 32, 0, Q_NO, VH_GATE_ACCESS_PLATFORM },
	[23] = { 8, 0, Q_S, P(CROSS_ENDIAN) },
	[24] = { 12 + 16, 0, Q_NO, P(CONFIG) },
	[25] = { 12 + 16, 0, Q_NO, P(CONFIG) },
	[26] = { 64, 0, Q_NO, P(CRYPTO_SESSION) },
	[27] = { 8, 0, Q_NO, P(CRYPTO_SESSION) },
	[28] = { 0, 0, Q_NO, P(PAGEFAULT) },
	[29] = { 0, 0, Q_NO, P(PAGEFAULT) },
	[30] = { 0, 0, Q_NO, P(PAGEFAULT) },
	[31] = { 24, 0, Q_NO, P(INFLIGHT_SHMFD) },
	[32] = { 24, 1, Q_NO, P(INFLIGHT_SHMFD) },
	[33] = { 0, 1, Q_NO, VH_GATE_NONE },
	[34] = { 0, 0, Q_NO, P(RESET_DEVICE) },
	[35] = { 8, 0, Q_S, P(INBAND_NOTIFICATIONS) },
	[36] = { 0, 0, Q_NO, P(CONFIGURE_MEM_SLOTS) },
	[37] = { 40, 1, Q_NO, P(CONFIGURE_MEM_SLOTS) },
	[38] = { 40, 0, Q_NO, P(CONFIGURE_MEM_SLOTS) },
	[39] = { 8, 0, Q_NO, P(STATUS) },
	[40] = { 0, 0, Q_NO, P(STATUS) },
	[41] = { 16, 0, Q_NO, P(SHARED_OBJECT) },
	[42] = { 8, 1, Q_NO, P(DEVICE_STATE) },
	[43] = { 0, 0, Q_NO, P(DEVICE_STATE) },
	[44] = { 0, 0, Q_NO, P(SHMEM) },
};

/* Back-end -> front-end requests 1..10. */
static const struct shape be_shape[11] = {
	[1] = { 32, 0, Q_NO, VH_GATE_ACCESS_PLATFORM },
	[2] = { 0, 0, Q_NO, P(CONFIG) },
	[3] = { 24, 1, Q_F, P(HOST_NOTIFIER) },
	[4] = { 8, 0, Q_S, P(INBAND_NOTIFICATIONS) },
	[5] = { 8, 0, Q_S, P(INBAND_NOTIFICATIONS) },
	[6] = { 16, 0, Q_NO, P(SHARED_OBJECT) },
	[7] = { 16, 0, Q_NO, P(SHARED_OBJECT) },
	[8] = { 16, 0, Q_NO, P(SHARED_OBJECT) },
	[9] = { 40, 1, Q_NO, P(SHMEM) },
	[10] = { 40, 0, Q_NO, P(SHMEM) },
};

/* Builds a correct request: header, payload contents that the variable-size rules read, and
 * returns its fd count. */
static unsigned build_good(struct vh_msg *m, uint32_t id, int backend)
{
	const struct shape *s = backend ? &be_shape[id] : &fe_shape[id];

	memset(m, 0, sizeof(*m));
	m->hdr.request = id;
	m->hdr.flags = VH_USER_VERSION;
	m->hdr.size = s->size;
	if (s->queue == Q_S) {
		m->payload.state.index = 1;
		m->payload.state.num = 256;
	} else if (s->queue == Q_F) {
		m->payload.u64 = 1; /* queue 1 with an fd */
	}
	if (!backend) {
		switch (id) {
		case VH_USER_SET_MEM_TABLE:
			m->payload.mem.nregions = 2;
			for (unsigned i = 0; i < 2; i++) {
				m->payload.mem.regions[i].guest_phys_addr = i * 0x100000;
				m->payload.mem.regions[i].memory_size = 0x100000;
				m->payload.mem.regions[i].userspace_addr = 0x7f0000000000ull + i * 0x100000;
			}
			break;
		case VH_USER_GET_CONFIG:
		case VH_USER_SET_CONFIG:
			m->payload.config.offset = 0;
			m->payload.config.size = 16;
			break;
		case VH_USER_ADD_MEM_REG:
		case VH_USER_REM_MEM_REG:
			m->payload.mem_single.region.memory_size = 0x1000;
			break;
		case VH_USER_GET_INFLIGHT_FD:
			m->payload.inflight.num_queues = 1;
			m->payload.inflight.queue_size = 256;
			break;
		case VH_USER_IOTLB_MSG:
			m->payload.iotlb.size = 0x1000;
			m->payload.iotlb.perm = VH_ACCESS_RW;
			m->payload.iotlb.type = VH_IOTLB_UPDATE;
			break;
		default:
			break;
		}
	} else if (id == VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG) {
		m->payload.area.size = 4096;
	}
	return s->nfds;
}

static int validate(const struct vh_validate_ctx *c, const struct vh_msg *m, unsigned nfds)
{
	return vh_validate_request(c, &m->hdr, &m->payload, nfds);
}

static void good_and_framing(int backend)
{
	const uint32_t max = backend ? VH_USER_BACKEND_REQUEST_MAX : VH_USER_REQUEST_MAX;
	static const uint32_t bad_flags[] = {
		0x0, 0x2, 0x3,                       /* version != 1 */
		VH_USER_VERSION | VH_USER_FLAG_REPLY, /* REPLY bit on a request */
		VH_USER_VERSION | VH_USER_FLAG_REPLY | VH_USER_FLAG_NEED_REPLY,
		VH_USER_VERSION | 0x10, VH_USER_VERSION | 0x100, VH_USER_VERSION | 0x80000000u,
		0x2 | VH_USER_FLAG_NEED_REPLY,
	};
	const char *side = backend ? "backend" : "frontend";
	struct vh_msg m;

	for (uint32_t id = 1; id <= max; id++) {
		struct vh_validate_ctx c = full_ctx(id, backend);
		unsigned nfds = build_good(&m, id, backend);

		CHECK_EQ_M(validate(&c, &m, nfds), 0, "%s id %u correct", side, id);
		m.hdr.flags |= VH_USER_FLAG_NEED_REPLY;
		CHECK_EQ_M(validate(&c, &m, nfds), 0, "%s id %u with NEED_REPLY", side, id);
		for (size_t f = 0; f < NELEM(bad_flags); f++) {
			m.hdr.flags = bad_flags[f];
			CHECK_EQ_M(validate(&c, &m, nfds), -EPROTO, "%s id %u flags 0x%x", side, id,
				   bad_flags[f]);
		}
		m.hdr.flags = VH_USER_VERSION;
		m.hdr.size = VH_USER_MAX_PAYLOAD + 1;
		CHECK_EQ_M(validate(&c, &m, nfds), -EMSGSIZE, "%s id %u size 4097", side, id);
		m.hdr.size = UINT32_MAX;
		CHECK_EQ_M(validate(&c, &m, nfds), -EMSGSIZE, "%s id %u size ~0", side, id);
	}
}

static void test_good_and_framing_frontend(void) { good_and_framing(0); }
static void test_good_and_framing_backend(void) { good_and_framing(1); }

/* size +-1 and fds +-1 for every id. */
static void size_and_fds(int backend)
{
	const uint32_t max = backend ? VH_USER_BACKEND_REQUEST_MAX : VH_USER_REQUEST_MAX;
	const char *side = backend ? "backend" : "frontend";
	struct vh_msg m;

	for (uint32_t id = 1; id <= max; id++) {
		const struct shape *s = backend ? &be_shape[id] : &fe_shape[id];
		struct vh_validate_ctx c = full_ctx(id, backend);
		unsigned nfds = build_good(&m, id, backend);

		/* The opaque crypto session accepts any size within its bounds. */
		if (backend || id != VH_USER_CREATE_CRYPTO_SESSION) {
			m.hdr.size = s->size + 1;
			CHECK_EQ_M(validate(&c, &m, nfds), -EINVAL, "%s id %u size+1", side, id);
			if (s->size) {
				m.hdr.size = s->size - 1;
				CHECK_EQ_M(validate(&c, &m, nfds), -EINVAL, "%s id %u size-1", side, id);
			}
		} else {
			m.hdr.size = 7;
			CHECK_EQ_M(validate(&c, &m, nfds), -EINVAL, "crypto session size 7");
			m.hdr.size = VH_USER_MAX_PAYLOAD;
			CHECK_EQ_M(validate(&c, &m, nfds), 0, "crypto session size 4096");
		}
		m.hdr.size = s->size;
		/* Only REM_MEM_REG takes an optional fd (which the back-end must close). */
		if (!backend && id == VH_USER_REM_MEM_REG)
			CHECK_EQ_M(validate(&c, &m, nfds + 1), 0, "%s id %u optional fd", side, id);
		else
			CHECK_EQ_M(validate(&c, &m, nfds + 1), -EINVAL, "%s id %u fds+1", side, id);
		if (nfds)
			CHECK_EQ_M(validate(&c, &m, nfds - 1), -EINVAL, "%s id %u fds-1", side, id);
		CHECK_EQ_M(validate(&c, &m, 9), -EINVAL, "%s id %u 9 fds", side, id);
	}
}

static void test_size_fds_frontend(void) { size_and_fds(0); }
static void test_size_fds_backend(void) { size_and_fds(1); }

/* Turning the gate off refuses the request with -ENOTSUP. */
static void gates(int backend)
{
	const uint32_t max = backend ? VH_USER_BACKEND_REQUEST_MAX : VH_USER_REQUEST_MAX;
	const char *side = backend ? "backend" : "frontend";
	struct vh_msg m;

	for (uint32_t id = 1; id <= max; id++) {
		const struct shape *s = backend ? &be_shape[id] : &fe_shape[id];
		struct vh_validate_ctx c = full_ctx(id, backend);
		unsigned nfds = build_good(&m, id, backend);

		switch (s->gate) {
		case VH_GATE_NONE:
			c.protocol_features = 0;
			c.features_acked = 0;
			if (backend) /* the channel itself needs BACKEND_REQ */
				continue;
			/* Everything but bit 30 is irrelevant for an ungated request. */
			CHECK_EQ_M(validate(&c, &m, nfds), 0, "%s id %u ungated", side, id);
			continue;
		case VH_GATE_PROTOCOL_FEATURES:
			c.features_offered &= ~VH_BIT(VH_USER_F_PROTOCOL_FEATURES);
			break;
		case VH_GATE_ACCESS_PLATFORM:
			c.features_acked &= ~VH_BIT(VH_F_ACCESS_PLATFORM);
			break;
		default:
			c.protocol_features &= ~VH_BIT(s->gate);
			break;
		}
		CHECK_EQ_M(validate(&c, &m, nfds), -ENOTSUP, "%s id %u gate off", side, id);
		if (backend) {
			c = full_ctx(id, backend);
			c.protocol_features &= ~VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ);
			CHECK_EQ_M(validate(&c, &m, nfds), -ENOTSUP, "backend id %u without BACKEND_REQ",
				   id);
		}
	}
}

static void test_gates_frontend(void) { gates(0); }
static void test_gates_backend(void) { gates(1); }

/* Queue index = num_queues is out of range; num_queues - 1 is fine; 0 disables the check. */
static void queue_index(int backend)
{
	const uint32_t max = backend ? VH_USER_BACKEND_REQUEST_MAX : VH_USER_REQUEST_MAX;
	const char *side = backend ? "backend" : "frontend";
	struct vh_msg m;
	int seen = 0;

	for (uint32_t id = 1; id <= max; id++) {
		const struct shape *s = backend ? &be_shape[id] : &fe_shape[id];
		struct vh_validate_ctx c = full_ctx(id, backend);
		unsigned nfds = build_good(&m, id, backend);

		if (s->queue == Q_NO)
			continue;
		seen++;
		if (s->queue == Q_S)
			m.payload.state.index = NQ;
		else
			m.payload.u64 = NQ;
		CHECK_EQ_M(validate(&c, &m, nfds), -ERANGE, "%s id %u index = num_queues", side, id);
		if (s->queue == Q_S)
			m.payload.state.index = NQ - 1;
		else
			m.payload.u64 = NQ - 1;
		CHECK_EQ_M(validate(&c, &m, nfds), 0, "%s id %u index = num_queues-1", side, id);
		if (s->queue == Q_S)
			m.payload.state.index = 0xffffffffu;
		else
			m.payload.u64 = 0xff;
		CHECK_EQ_M(validate(&c, &m, nfds), -ERANGE, "%s id %u index max", side, id);
		c.num_queues = 0;
		CHECK_EQ_M(validate(&c, &m, nfds), 0, "%s id %u unchecked index", side, id);
	}
	CHECK_EQ(seen, backend ? 3 : 10);
}

static void test_queue_index_frontend(void) { queue_index(0); }
static void test_queue_index_backend(void) { queue_index(1); }

/* index|NOFD payloads (kick/call/err, host notifier). */
static void test_vring_file_rules(void)
{
	static const struct { uint32_t id; int backend; } reqs[] = {
		{ VH_USER_SET_VRING_KICK, 0 }, { VH_USER_SET_VRING_CALL, 0 }, { VH_USER_SET_VRING_ERR, 0 },
		{ VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, 1 },
	};
	struct vh_msg m;

	for (size_t i = 0; i < NELEM(reqs); i++) {
		struct vh_validate_ctx c = full_ctx(reqs[i].id, reqs[i].backend);
		uint32_t id = reqs[i].id;

		build_good(&m, id, reqs[i].backend);
		m.payload.u64 = 2 | VH_USER_VRING_NOFD_MASK;
		CHECK_EQ_M(validate(&c, &m, 0), 0, "id %u NOFD without fd", id);
		CHECK_EQ_M(validate(&c, &m, 1), -EINVAL, "id %u NOFD with fd", id);
		m.payload.u64 = 2;
		CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u no NOFD, no fd", id);
		CHECK_EQ_M(validate(&c, &m, 1), 0, "id %u fd", id);
		for (unsigned bit = 9; bit < 64; bit++) {
			m.payload.u64 = 2 | (1ull << bit);
			CHECK_EQ_M(validate(&c, &m, 1), -EINVAL, "id %u reserved bit %u", id, bit);
			m.payload.u64 = 2 | VH_USER_VRING_NOFD_MASK | (1ull << bit);
			CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u NOFD + reserved bit %u", id, bit);
		}
	}
}

static void test_mem_table_rules(void)
{
	struct vh_validate_ctx c = full_ctx(VH_USER_SET_MEM_TABLE, 0);
	struct vh_msg m;

	build_good(&m, VH_USER_SET_MEM_TABLE, 0);
	for (unsigned n = 0; n <= 8; n++) {
		m.payload.mem.nregions = n;
		m.hdr.size = 8 + 32 * n;
		CHECK_EQ_M(validate(&c, &m, n), 0, "%u regions, %u fds", n, n);
		if (n < 8)
			CHECK_EQ_M(validate(&c, &m, n + 1), -EINVAL, "%u regions, %u fds", n, n + 1);
		if (n > 0)
			CHECK_EQ_M(validate(&c, &m, n - 1), -EINVAL, "%u regions, %u fds", n, n - 1);
	}
	/* nregions > 8, with a size that matches it and as many fds as allowed */
	m.payload.mem.nregions = 9;
	m.hdr.size = 8 + 32 * 9;
	CHECK_EQ(validate(&c, &m, 8), -EINVAL);
	CHECK_EQ(validate(&c, &m, 9), -EINVAL);
	/* nregions whose size product wraps 32 bits */
	m.payload.mem.nregions = 0x08000000u;
	m.hdr.size = 8;
	CHECK_EQ(validate(&c, &m, 0), -EINVAL);
	m.payload.mem.nregions = UINT32_MAX;
	CHECK_EQ(validate(&c, &m, 8), -EINVAL);
	/* size disagreeing with nregions */
	m.payload.mem.nregions = 2;
	m.hdr.size = 8 + 32 * 3;
	CHECK_EQ(validate(&c, &m, 2), -EINVAL);
	m.hdr.size = 8 + 32;
	CHECK_EQ(validate(&c, &m, 2), -EINVAL);
	/* XEN_MMAP: 40-byte regions */
	c.protocol_features |= VH_BIT(VH_USER_PROTOCOL_F_XEN_MMAP);
	m.hdr.size = 8 + 40 * 2;
	CHECK_EQ(validate(&c, &m, 2), 0);
	m.hdr.size = 8 + 32 * 2;
	CHECK_EQ(validate(&c, &m, 2), -EINVAL);
	m.payload.mem.nregions = 8;
	m.hdr.size = 8 + 40 * 8;
	CHECK_EQ(validate(&c, &m, 8), 0);
}

static void test_single_region_rules(void)
{
	struct vh_validate_ctx c = full_ctx(VH_USER_ADD_MEM_REG, 0);
	struct vh_msg m;

	build_good(&m, VH_USER_ADD_MEM_REG, 0);
	CHECK_EQ(validate(&c, &m, 1), 0);
	CHECK_EQ(validate(&c, &m, 0), -EINVAL);
	CHECK_EQ(validate(&c, &m, 2), -EINVAL);
	m.hdr.size = 48;
	CHECK_EQ(validate(&c, &m, 1), -EINVAL);
	c.protocol_features |= VH_BIT(VH_USER_PROTOCOL_F_XEN_MMAP);
	CHECK_EQ(validate(&c, &m, 1), 0);
	m.hdr.size = 40;
	CHECK_EQ(validate(&c, &m, 1), -EINVAL);

	c = full_ctx(VH_USER_REM_MEM_REG, 0);
	build_good(&m, VH_USER_REM_MEM_REG, 0);
	CHECK_EQ(validate(&c, &m, 0), 0);
	CHECK_EQ(validate(&c, &m, 1), 0); /* allowed; the back-end must close it */
	CHECK_EQ(validate(&c, &m, 2), -EINVAL);
}

static void test_config_rules(void)
{
	static const uint32_t ids[] = { VH_USER_GET_CONFIG, VH_USER_SET_CONFIG };
	struct vh_msg m;

	for (size_t i = 0; i < NELEM(ids); i++) {
		struct vh_validate_ctx c = full_ctx(ids[i], 0);
		uint32_t id = ids[i];

		build_good(&m, id, 0);
		m.payload.config.size = 256;
		m.hdr.size = 12 + 256;
		CHECK_EQ_M(validate(&c, &m, 0), 0, "id %u size 256", id);
		m.payload.config.size = 257;
		m.hdr.size = 12 + 257;
		CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u size 257", id);
		m.payload.config.size = 4000;
		m.hdr.size = 12 + 4000;
		CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u size 4000", id);
		/* size != hdr.size - 12 */
		m.payload.config.size = 16;
		m.hdr.size = 12 + 15;
		CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u size 16 in 27 bytes", id);
		m.hdr.size = 12 + 17;
		CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u size 16 in 29 bytes", id);
		m.payload.config.size = 0xfffffff4u; /* 12 + size wraps to 0 */
		m.hdr.size = 12;
		CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u size wrapping hdr", id);
		/* offset + size overflow and beyond the config space */
		m.payload.config.size = 16;
		m.hdr.size = 12 + 16;
		m.payload.config.offset = 0xfffffff8u;
		CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u offset wraps", id);
		m.payload.config.offset = 241;
		CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u offset 241 + 16", id);
		m.payload.config.offset = 240;
		CHECK_EQ_M(validate(&c, &m, 0), 0, "id %u offset 240 + 16", id);
		/* 0x100 is the virtio-pci offset of the config space, not a vhost-user one */
		m.payload.config.offset = 0x100;
		CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u offset 0x100", id);
		m.payload.config.offset = 0;
		m.hdr.size = 11;
		CHECK_EQ_M(validate(&c, &m, 0), -EINVAL, "id %u 11 bytes", id);
	}
}

/* Ids without a row, and rules tied to other negotiated features. */
static void test_unknown_and_exclusions(void)
{
	static const uint32_t fe_unknown[] = { 0, 45, 46, 0x100, 0x80000000u, UINT32_MAX };
	static const uint32_t be_unknown[] = { 0, 11, 44, UINT32_MAX };
	struct vh_validate_ctx c = full_ctx(1, 0);
	struct vh_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.flags = VH_USER_VERSION;
	for (size_t i = 0; i < NELEM(fe_unknown); i++) {
		m.hdr.request = fe_unknown[i];
		CHECK_EQ_M(validate(&c, &m, 0), -ENOSYS, "front-end id %u", fe_unknown[i]);
	}
	c = full_ctx(1, 1);
	for (size_t i = 0; i < NELEM(be_unknown); i++) {
		m.hdr.request = be_unknown[i];
		CHECK_EQ_M(validate(&c, &m, 0), -ENOSYS, "back-end id %u", be_unknown[i]);
	}
	/* POSTCOPY_* must not be sent with CONFIGURE_MEM_SLOTS */
	for (uint32_t id = VH_USER_POSTCOPY_ADVISE; id <= VH_USER_POSTCOPY_END; id++) {
		c = full_ctx(id, 0);
		build_good(&m, id, 0);
		CHECK_EQ_M(validate(&c, &m, 0), 0, "id %u", id);
		c.protocol_features |= VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
		CHECK_EQ_M(validate(&c, &m, 0), -ENOTSUP, "id %u with CONFIGURE_MEM_SLOTS", id);
	}
	/* A front-end request id is not a back-end channel request and vice versa */
	c = full_ctx(1, 1);
	build_good(&m, VH_USER_GET_SHMEM_CONFIG, 0);
	CHECK_EQ(validate(&c, &m, 0), -ENOSYS);
	/* Misuse */
	CHECK_EQ(vh_validate_request(NULL, &m.hdr, &m.payload, 0), -EINVAL);
	build_good(&m, VH_USER_SET_FEATURES, 0);
	c = full_ctx(VH_USER_SET_FEATURES, 0);
	CHECK_EQ(vh_validate_request(&c, &m.hdr, NULL, 0), -EINVAL);
}

/* ---- Replies -------------------------------------------------------------------------------- */

/* Correct reply shapes by request: kind 'a' = ack (u64 only with NEED_REPLY), 'u' = u64 always,
 * 'p' = payload of size rsize, fds up to rfds. */
struct reply_shape {
	char kind;
	uint32_t rsize;
	unsigned rfds;
	int fixed; /* rsize is the only size allowed */
};

static const struct reply_shape fe_reply[45] = {
	[1] = { 'u', 8, 0, 1 }, [2] = { 'a', 8, 0, 1 }, [3] = { 'a', 8, 0, 1 },
	[4] = { 'a', 8, 0, 1 }, [5] = { 'a', 8, 0, 0 }, [6] = { 'u', 8, 0, 0 },
	[7] = { 'a', 8, 0, 1 }, [8] = { 'a', 8, 0, 1 }, [9] = { 'a', 8, 0, 1 },
	[10] = { 'a', 8, 0, 1 }, [11] = { 'p', 8, 0, 1 }, [12] = { 'a', 8, 0, 1 },
	[13] = { 'a', 8, 0, 1 }, [14] = { 'a', 8, 0, 1 }, [15] = { 'u', 8, 0, 1 },
	[16] = { 'a', 8, 0, 1 }, [17] = { 'u', 8, 0, 1 }, [18] = { 'a', 8, 0, 1 },
	[19] = { 'a', 8, 0, 1 }, [20] = { 'a', 8, 0, 1 }, [21] = { 'a', 8, 0, 1 },
	[22] = { 'u', 8, 0, 1 }, [23] = { 'a', 8, 0, 1 }, [24] = { 'p', 28, 0, 0 },
	[25] = { 'a', 8, 0, 1 }, [26] = { 'p', 64, 0, 0 }, [27] = { 'a', 8, 0, 1 },
	[28] = { 'p', 0, 1, 1 }, [29] = { 'u', 8, 0, 1 }, [30] = { 'u', 8, 0, 1 },
	[31] = { 'p', 24, 1, 1 }, [32] = { 'a', 8, 0, 1 }, [33] = { 'a', 8, 0, 1 },
	[34] = { 'a', 8, 0, 1 }, [35] = { 'a', 8, 0, 1 }, [36] = { 'u', 8, 0, 1 },
	[37] = { 'a', 8, 0, 1 }, [38] = { 'a', 8, 0, 1 }, [39] = { 'a', 8, 0, 1 },
	[40] = { 'u', 8, 0, 1 }, [41] = { 'u', 8, 1, 1 }, [42] = { 'u', 8, 1, 1 },
	[43] = { 'u', 8, 0, 1 }, [44] = { 'p', 2056, 0, 1 },
};

static const struct reply_shape be_reply[11] = {
	[1] = { 'a', 8, 0, 1 }, [2] = { 'a', 8, 0, 1 }, [3] = { 'a', 8, 0, 1 },
	[4] = { 'a', 8, 0, 1 }, [5] = { 'a', 8, 0, 1 }, [6] = { 'a', 8, 0, 1 },
	[7] = { 'a', 8, 0, 1 }, [8] = { 'u', 8, 1, 1 }, [9] = { 'a', 8, 0, 1 },
	[10] = { 'a', 8, 0, 1 },
};

static void replies(int backend)
{
	const uint32_t max = backend ? VH_USER_BACKEND_REQUEST_MAX : VH_USER_REQUEST_MAX;
	const char *side = backend ? "backend" : "frontend";
	static const uint32_t bad_flags[] = {
		0x0, 0x1, 0x4, 0x6, 0x7, VH_USER_VERSION | VH_USER_FLAG_REPLY | VH_USER_FLAG_NEED_REPLY,
		VH_USER_VERSION | VH_USER_FLAG_REPLY | 0x10, 0x80000005u, 0x2 | VH_USER_FLAG_REPLY,
	};

	for (uint32_t id = 1; id <= max; id++) {
		const struct vh_request_info *row = backend ? vh_backend_request_info(id)
							    : vh_request_info(id);
		const struct reply_shape *s = backend ? &be_reply[id] : &fe_reply[id];
		int acked = s->kind == 'a';
		struct vh_msg_hdr h = { id, VH_USER_VERSION | VH_USER_FLAG_REPLY, s->rsize };

		if (!row) {
			T_FAIL("%s id %u: no row", side, id);
			continue;
		}
		CHECK_EQ_M(vh_validate_reply(row, id, &h, 0, acked), 0, "%s id %u reply", side, id);
		if (s->rfds)
			CHECK_EQ_M(vh_validate_reply(row, id, &h, s->rfds, acked), 0,
				   "%s id %u reply with %u fds", side, id, s->rfds);
		CHECK_EQ_M(vh_validate_reply(row, id, &h, s->rfds + 1, acked), -EPROTO,
			   "%s id %u reply with %u fds", side, id, s->rfds + 1);
		/* wrong id: the reply to another request, and the right id for a different ask */
		h.request = id + 1;
		CHECK_EQ_M(vh_validate_reply(row, id, &h, 0, acked), -EPROTO, "%s id %u reply id+1",
			   side, id);
		h.request = id;
		CHECK_EQ_M(vh_validate_reply(row, id + 1, &h, 0, acked), -EPROTO,
			   "%s id %u reply to id+1", side, id);
		for (size_t f = 0; f < NELEM(bad_flags); f++) {
			h.flags = bad_flags[f];
			CHECK_EQ_M(vh_validate_reply(row, id, &h, 0, acked), -EPROTO,
				   "%s id %u reply flags 0x%x", side, id, bad_flags[f]);
		}
		h.flags = VH_USER_VERSION | VH_USER_FLAG_REPLY;
		if (s->fixed) {
			h.size = s->rsize + 1;
			CHECK_EQ_M(vh_validate_reply(row, id, &h, 0, acked), -EPROTO,
				   "%s id %u reply size+1", side, id);
			if (s->rsize) {
				h.size = s->rsize - 1;
				CHECK_EQ_M(vh_validate_reply(row, id, &h, 0, acked), -EPROTO,
					   "%s id %u reply size-1", side, id);
			}
		}
		h.size = VH_USER_MAX_PAYLOAD + 1;
		CHECK_EQ_M(vh_validate_reply(row, id, &h, 0, acked), -EMSGSIZE,
			   "%s id %u reply size 4097", side, id);
		h.size = UINT32_MAX;
		CHECK_EQ_M(vh_validate_reply(row, id, &h, 0, acked), -EMSGSIZE,
			   "%s id %u reply size ~0", side, id);
		/* Any request asked with NEED_REPLY is answered by a bare u64 without fds. */
		if (s->kind == 'a') {
			h.size = 8;
			CHECK_EQ_M(vh_validate_reply(row, id, &h, 1, 1), -EPROTO, "%s id %u ack + fd",
				   side, id);
			h.size = 16;
			CHECK_EQ_M(vh_validate_reply(row, id, &h, 0, 1), -EPROTO, "%s id %u ack of 16",
				   side, id);
			h.size = 0;
			CHECK_EQ_M(vh_validate_reply(row, id, &h, 0, 1), -EPROTO, "%s id %u ack of 0",
				   side, id);
		}
	}
}

static void test_replies_frontend(void) { replies(0); }
static void test_replies_backend(void) { replies(1); }

/* Specific reply rules: erratum E4 (SET_LOG_BASE answered by the 16-byte echo), the config
 * reply's range, GET_SHMEM_CONFIG's fixed 2056 bytes, misuse. */
static void test_reply_specifics(void)
{
	const struct vh_request_info *row = vh_request_info(VH_USER_SET_LOG_BASE);
	struct vh_msg_hdr h = { VH_USER_SET_LOG_BASE, VH_USER_VERSION | VH_USER_FLAG_REPLY, 16 };

	CHECK_EQ(vh_validate_reply(row, VH_USER_SET_LOG_BASE, &h, 0, 0), 0);
	h.size = 8;
	CHECK_EQ(vh_validate_reply(row, VH_USER_SET_LOG_BASE, &h, 0, 0), 0);
	h.size = 24;
	CHECK_EQ(vh_validate_reply(row, VH_USER_SET_LOG_BASE, &h, 0, 0), -EPROTO);
	h.size = 0;
	CHECK_EQ(vh_validate_reply(row, VH_USER_SET_LOG_BASE, &h, 0, 0), -EPROTO);

	row = vh_request_info(VH_USER_GET_CONFIG);
	h.request = VH_USER_GET_CONFIG;
	h.size = 12 + 256;
	CHECK_EQ(vh_validate_reply(row, VH_USER_GET_CONFIG, &h, 0, 0), 0);
	h.size = 12 + 257;
	CHECK_EQ(vh_validate_reply(row, VH_USER_GET_CONFIG, &h, 0, 0), -EPROTO);

	row = vh_request_info(VH_USER_GET_SHMEM_CONFIG);
	h.request = VH_USER_GET_SHMEM_CONFIG;
	h.size = 2056;
	CHECK_EQ(vh_validate_reply(row, VH_USER_GET_SHMEM_CONFIG, &h, 0, 0), 0);
	h.size = 2048;
	CHECK_EQ(vh_validate_reply(row, VH_USER_GET_SHMEM_CONFIG, &h, 0, 0), -EPROTO);

	CHECK_EQ(vh_validate_reply(NULL, 1, &h, 0, 0), -EINVAL);
	CHECK_EQ(vh_validate_reply(row, VH_USER_GET_SHMEM_CONFIG, NULL, 0, 0), -EINVAL);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_good_and_framing_frontend),
		T_TEST(test_good_and_framing_backend),
		T_TEST(test_size_fds_frontend),
		T_TEST(test_size_fds_backend),
		T_TEST(test_gates_frontend),
		T_TEST(test_gates_backend),
		T_TEST(test_queue_index_frontend),
		T_TEST(test_queue_index_backend),
		T_TEST(test_vring_file_rules),
		T_TEST(test_mem_table_rules),
		T_TEST(test_single_region_rules),
		T_TEST(test_config_rules),
		T_TEST(test_unknown_and_exclusions),
		T_TEST(test_replies_frontend),
		T_TEST(test_replies_backend),
		T_TEST(test_reply_specifics),
	};

	return t_run(tests, NELEM(tests), argc, argv);
}
