/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of the fuzz targets: gen_corpus <corpus-dir>
 *   <dir>/backend_dispatch/  a valid message for every front-end request id (1-44) with its
 *                            fds, plus whole sessions (QEMU's start sequence, postcopy)
 *   <dir>/frontend/          a valid reply to each request the target makes, and a valid
 *                            back-end channel request for every id (1-10)
 *   <dir>/ring_walk/         split and packed rings with requests, built with the driver side
 *   <dir>/inflight/          inflight buffers for split and packed rings with 0, 1 and several
 *                            requests in flight (rings built with the driver side, the
 *                            buffers as the spec lays them out), and corrupted ones
 * The files are committed under tests/fuzz/corpus/; rerun this after a format change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libvhost/ring.h>
#include <libvhost/wire.h>
#include "fuzz_common.h"
#include "fuzz_inflight.h"
#include "ring_seed.h"

#define PF(b) VH_BIT(VH_USER_PROTOCOL_F_##b)
#define ALL_PF (VH_BIT(VH_USER_PROTOCOL_F_MAX + 1) - 1)
#define V1 VH_USER_VERSION
#define NEED VH_USER_FLAG_NEED_REPLY
#define RF (VH_USER_VERSION | VH_USER_FLAG_REPLY)

static const char *outdir;

struct buf {
	uint8_t b[16384];
	size_t n;
};

static void put(struct buf *o, const void *p, size_t n)
{
	if (o->n + n > sizeof(o->b)) {
		fprintf(stderr, "seed too large\n");
		exit(1);
	}
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void put_u8(struct buf *o, uint8_t v) { put(o, &v, 1); }

/* One record: fdspec, length, header + payload. */
static void record(struct buf *o, uint8_t fdspec, uint32_t id, uint32_t flags, const void *p,
		   uint32_t size)
{
	struct vh_msg_hdr h = { id, flags, size };
	uint16_t len = (uint16_t)(12 + size);

	put_u8(o, fdspec);
	put(o, &len, 2);
	put(o, &h, 12);
	if (size)
		put(o, p, size);
}

static void save(const char *sub, const char *name, const struct buf *o)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	f = fopen(path, "wb");
	if (!f || fwrite(o->b, 1, o->n, f) != o->n || fclose(f)) {
		fprintf(stderr, "writing %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* ---- Back-end dispatch -------------------------------------------------------------------- */

static void prelude(struct buf *o, uint64_t proto, uint8_t fmask)
{
	uint32_t p = (uint32_t)proto;

	o->n = 0;
	put(o, &p, 4);
	put_u8(o, fmask);
}

static struct vh_mem_region region(unsigned i)
{
	struct vh_mem_region r = { 0x100000ull * (i + 1), 0x4000, 0x7f0000000000ull + 0x100000ull * i,
				   0x4000ull * i };

	return r;
}

/* A valid request of each id, its fds, and a protocol set that lets it through. */
static void backend_request(struct buf *o, uint32_t id)
{
	union vh_payload p;
	uint32_t size = 0, flags = V1 | NEED;
	uint8_t fdspec = 0;
	uint64_t proto = ALL_PF & ~PF(XEN_MMAP) & ~PF(PAGEFAULT);

	memset(&p, 0, sizeof(p));
	switch (id) {
	case VH_USER_SET_FEATURES:
		p.u64 = (1ull << 32) | (1ull << 30);
		size = 8;
		break;
	case VH_USER_SET_MEM_TABLE:
		p.mem.nregions = 2;
		p.mem.regions[0] = region(0);
		p.mem.regions[1] = region(1);
		size = 8 + 64;
		fdspec = fz_fdspec(2, FZ_FD_MEMFD);
		break;
	case VH_USER_SET_LOG_BASE:
		p.log.mmap_size = 4096;
		size = 16;
		fdspec = fz_fdspec(1, FZ_FD_MEMFD);
		flags = V1;
		break;
	case VH_USER_SET_LOG_FD:
		fdspec = fz_fdspec(1, FZ_FD_EVENTFD);
		break;
	case VH_USER_SET_VRING_NUM:
	case VH_USER_SET_VRING_BASE:
	case VH_USER_GET_VRING_BASE:
	case VH_USER_SET_VRING_ENABLE:
	case VH_USER_SET_VRING_ENDIAN:
		p.state.index = 1;
		p.state.num = id == VH_USER_SET_VRING_NUM ? 256 : id == VH_USER_SET_VRING_BASE ? 7 : 1;
		size = 8;
		if (id == VH_USER_GET_VRING_BASE)
			flags = V1;
		break;
	case VH_USER_SET_VRING_ADDR:
		p.addr = (struct vh_vring_addr){ 1, 1, 0x10000, 0x12000, 0x11000, 0x12000 };
		size = 40;
		break;
	case VH_USER_SET_VRING_KICK:
	case VH_USER_SET_VRING_CALL:
	case VH_USER_SET_VRING_ERR:
		p.u64 = 1;
		size = 8;
		fdspec = fz_fdspec(1, FZ_FD_EVENTFD);
		break;
	case VH_USER_SET_PROTOCOL_FEATURES:
		p.u64 = proto;
		size = 8;
		break;
	case VH_USER_SEND_RARP:
		memcpy(p.bytes, "\x52\x54\x00\x12\x34\x56", 6);
		size = 8;
		break;
	case VH_USER_NET_SET_MTU:
		p.u64 = 1500;
		size = 8;
		break;
	case VH_USER_SET_BACKEND_REQ_FD:
	case VH_USER_GPU_SET_SOCKET:
		fdspec = fz_fdspec(1, FZ_FD_SOCKET);
		break;
	case VH_USER_IOTLB_MSG:
		p.iotlb = (struct vh_iotlb_msg){ 0x1000, 0x1000, 0x7f0000001000ull, VH_ACCESS_RW,
						 VH_IOTLB_UPDATE, { 0 } };
		size = 32;
		break;
	case VH_USER_GET_CONFIG:
	case VH_USER_SET_CONFIG:
		p.config.offset = 8;
		p.config.size = 16;
		size = 12 + 16;
		if (id == VH_USER_GET_CONFIG)
			flags = V1;
		break;
	case VH_USER_CREATE_CRYPTO_SESSION:
		size = 64;
		flags = V1;
		break;
	case VH_USER_CLOSE_CRYPTO_SESSION:
	case VH_USER_SET_STATUS:
		p.u64 = 0xf;
		size = 8;
		break;
	case VH_USER_POSTCOPY_ADVISE:
	case VH_USER_POSTCOPY_LISTEN:
	case VH_USER_POSTCOPY_END:
		proto = ALL_PF & ~PF(XEN_MMAP) & ~PF(CONFIGURE_MEM_SLOTS);
		flags = id == VH_USER_POSTCOPY_ADVISE ? V1 : V1 | NEED;
		break;
	case VH_USER_GET_INFLIGHT_FD:
	case VH_USER_SET_INFLIGHT_FD:
		p.inflight = (struct vh_inflight){ id == VH_USER_SET_INFLIGHT_FD ? 4096 : 0, 0, 2, 256, 0 };
		size = 24;
		if (id == VH_USER_SET_INFLIGHT_FD)
			fdspec = fz_fdspec(1, FZ_FD_MEMFD);
		else
			flags = V1;
		break;
	case VH_USER_VRING_KICK:
		p.state.index = 1;
		size = 8;
		break;
	case VH_USER_ADD_MEM_REG:
	case VH_USER_REM_MEM_REG:
		p.mem_single.region = region(2);
		size = 40;
		if (id == VH_USER_ADD_MEM_REG)
			fdspec = fz_fdspec(1, FZ_FD_MEMFD);
		break;
	case VH_USER_GET_SHARED_OBJECT:
		memset(p.object.uuid, 0x42, 16);
		size = 16;
		flags = V1;
		break;
	case VH_USER_SET_DEVICE_STATE_FD:
		size = 8;
		fdspec = fz_fdspec(1, FZ_FD_PIPE);
		flags = V1;
		break;
	default: /* the requests without payload */
		flags = V1;
		if (id == VH_USER_SET_OWNER || id == VH_USER_RESET_OWNER ||
		    id == VH_USER_RESET_DEVICE)
			flags = V1 | NEED;
		break;
	}
	prelude(o, proto, 0);
	record(o, fdspec, id, flags, &p, size);
}

static void backend_seeds(void)
{
	struct buf o;
	char name[64];

	for (uint32_t id = 1; id <= VH_USER_REQUEST_MAX; id++) {
		backend_request(&o, id);
		if (id == VH_USER_REM_MEM_REG) { /* remove what an ADD brought */
			struct buf add;

			backend_request(&add, VH_USER_ADD_MEM_REG);
			memmove(o.b + 5 + add.n - 5, o.b + 5, o.n - 5);
			memcpy(o.b + 5, add.b + 5, add.n - 5);
			o.n += add.n - 5;
		}
		snprintf(name, sizeof(name), "id-%02u-%s", id, vh_request_name(id));
		save("backend_dispatch", name, &o);
	}
	/* QEMU's device start: features, owner, memory, one ring started and stopped */
	{
		uint64_t f = (1ull << 32) | (1ull << 30);
		struct vh_vring_state num = { 0, 256 }, base = { 0, 0 }, en = { 0, 1 };
		struct vh_vring_addr a = { 0, 0, 0x100000, 0x102000, 0x101000, 0 };
		uint64_t file = 0;
		struct { uint32_t n, pad; struct vh_mem_region r; } mt = { 1, 0, region(0) };

		mt.r.guest_phys_addr = 0x100000;
		mt.r.memory_size = 0x10000;
		mt.r.mmap_offset = 0;
		prelude(&o, ALL_PF & ~PF(XEN_MMAP) & ~PF(PAGEFAULT), 0);
		record(&o, 0, VH_USER_GET_FEATURES, V1, NULL, 0);
		record(&o, 0, VH_USER_GET_PROTOCOL_FEATURES, V1, NULL, 0);
		record(&o, 0, VH_USER_SET_OWNER, V1 | NEED, NULL, 0);
		record(&o, 0, VH_USER_GET_QUEUE_NUM, V1, NULL, 0);
		record(&o, 0, VH_USER_SET_FEATURES, V1 | NEED, &f, 8);
		record(&o, fz_fdspec(1, FZ_FD_MEMFD), VH_USER_SET_MEM_TABLE, V1 | NEED, &mt, 40);
		record(&o, 0, VH_USER_SET_VRING_NUM, V1 | NEED, &num, 8);
		record(&o, 0, VH_USER_SET_VRING_BASE, V1 | NEED, &base, 8);
		record(&o, 0, VH_USER_SET_VRING_ADDR, V1 | NEED, &a, 40);
		record(&o, fz_fdspec(1, FZ_FD_EVENTFD), VH_USER_SET_VRING_KICK, V1 | NEED, &file, 8);
		record(&o, fz_fdspec(1, FZ_FD_EVENTFD), VH_USER_SET_VRING_CALL, V1 | NEED, &file, 8);
		record(&o, 0, VH_USER_SET_VRING_ENABLE, V1 | NEED, &en, 8);
		record(&o, 0, VH_USER_GET_VRING_BASE, V1, &base, 8);
		save("backend_dispatch", "session-qemu-start", &o);
	}
	/* postcopy: advise, listen, the table with its confirmation, end */
	{
		struct { uint32_t n, pad; struct vh_mem_region r; } mt = { 1, 0, region(0) };
		uint64_t zero = 0;

		prelude(&o, ALL_PF & ~PF(XEN_MMAP) & ~PF(CONFIGURE_MEM_SLOTS), 0);
		record(&o, 0, VH_USER_POSTCOPY_ADVISE, V1, NULL, 0);
		record(&o, 0, VH_USER_POSTCOPY_LISTEN, V1 | NEED, NULL, 0);
		record(&o, fz_fdspec(1, FZ_FD_MEMFD), VH_USER_SET_MEM_TABLE, V1, &mt, 40);
		record(&o, 0, VH_USER_SET_MEM_TABLE, V1, &zero, 8);
		record(&o, 0, VH_USER_POSTCOPY_END, V1 | NEED, NULL, 0);
		save("backend_dispatch", "session-postcopy", &o);
	}
	/* XEN_MMAP table */
	{
		struct { uint32_t n, pad; struct vh_mem_region_xen r; } mt = { 1, 0, { region(0), 1, 2 } };

		prelude(&o, ALL_PF & ~PF(PAGEFAULT), 0);
		record(&o, fz_fdspec(1, FZ_FD_MEMFD), VH_USER_SET_MEM_TABLE, V1 | NEED, &mt, 48);
		save("backend_dispatch", "session-xen-table", &o);
	}
	/* a message split over two sendmsg() calls, fds on the first */
	{
		uint8_t m[12 + 8];
		struct vh_msg_hdr h = { VH_USER_SET_VRING_CALL, V1 | NEED, 8 };
		uint16_t l1 = 5, l2 = 15;

		memcpy(m, &h, 12);
		memset(m + 12, 0, 8);
		prelude(&o, ALL_PF & ~PF(XEN_MMAP) & ~PF(PAGEFAULT), 0);
		put_u8(&o, fz_fdspec(1, FZ_FD_EVENTFD));
		put(&o, &l1, 2);
		put(&o, m, 5);
		put_u8(&o, 0);
		put(&o, &l2, 2);
		put(&o, m + 5, 15);
		save("backend_dispatch", "split-message", &o);
	}
}

/* ---- Front-end ---------------------------------------------------------------------------- */

/* Selectors as in fuzz_frontend.c's call(). */
static void reply_seed(unsigned sel, const char *name, uint32_t id, const void *p, uint32_t size,
		       uint8_t fdspec)
{
	struct buf o = { .n = 0 };
	struct vh_msg_hdr h = { id, RF, size };

	put_u8(&o, 0);
	put_u8(&o, (uint8_t)sel);
	put_u8(&o, fdspec);
	put(&o, &h, 12);
	if (size)
		put(&o, p, size);
	save("frontend", name, &o);
}

static void frontend_seeds(void)
{
	uint64_t offered = (1ull << 24) | (1ull << 26) | (1ull << 28) | (1ull << 29) | (1ull << 30) |
			   (1ull << 32) | (1ull << 33);
	uint64_t v;
	union vh_payload p;
	long ps = sysconf(_SC_PAGESIZE);

	v = offered;
	reply_seed(0, "reply-00-GET_FEATURES", VH_USER_GET_FEATURES, &v, 8, 0);
	v = ALL_PF;
	reply_seed(1, "reply-01-GET_PROTOCOL_FEATURES", VH_USER_GET_PROTOCOL_FEATURES, &v, 8, 0);
	v = 2;
	reply_seed(2, "reply-02-GET_QUEUE_NUM", VH_USER_GET_QUEUE_NUM, &v, 8, 0);
	p.state = (struct vh_vring_state){ 1, 0x10 };
	reply_seed(3, "reply-03-GET_VRING_BASE", VH_USER_GET_VRING_BASE, &p, 8, 0);
	memset(&p, 0x33, sizeof(p));
	p.config.offset = 16;
	p.config.size = 32;
	p.config.flags = 0;
	reply_seed(4, "reply-04-GET_CONFIG", VH_USER_GET_CONFIG, &p, 12 + 32, 0);
	memset(&p, 0, sizeof(p));
	p.u64 = 42;
	reply_seed(5, "reply-05-CREATE_CRYPTO_SESSION", VH_USER_CREATE_CRYPTO_SESSION, &p, 64, 0);
	reply_seed(6, "reply-06-POSTCOPY_ADVISE", VH_USER_POSTCOPY_ADVISE, NULL, 0,
		   fz_fdspec(1, FZ_FD_MEMFD));
	p.inflight = (struct vh_inflight){ 4096, 0, 2, 128, 0 };
	reply_seed(7, "reply-07-GET_INFLIGHT_FD", VH_USER_GET_INFLIGHT_FD, &p, 24,
		   fz_fdspec(1, FZ_FD_MEMFD));
	v = 0;
	reply_seed(8, "reply-08-GET_SHARED_OBJECT", VH_USER_GET_SHARED_OBJECT, &v, 8,
		   fz_fdspec(1, FZ_FD_MEMFD));
	v = VH_USER_VRING_NOFD_MASK;
	reply_seed(9, "reply-09-SET_DEVICE_STATE_FD-nofd", VH_USER_SET_DEVICE_STATE_FD, &v, 8, 0);
	v = 0;
	reply_seed(9, "reply-09-SET_DEVICE_STATE_FD-fd", VH_USER_SET_DEVICE_STATE_FD, &v, 8,
		   fz_fdspec(1, FZ_FD_PIPE));
	reply_seed(10, "reply-10-CHECK_DEVICE_STATE", VH_USER_CHECK_DEVICE_STATE, &v, 8, 0);
	memset(&p, 0, sizeof(p));
	p.shmem_config.nregions = 2;
	p.shmem_config.memory_sizes[0] = 16 * (uint64_t)ps;
	p.shmem_config.memory_sizes[1] = 1 << 20;
	reply_seed(11, "reply-11-GET_SHMEM_CONFIG", VH_USER_GET_SHMEM_CONFIG, &p,
		   sizeof(struct vh_shmem_config), 0);
	v = 0;
	reply_seed(12, "reply-12-SET_LOG_BASE", VH_USER_SET_LOG_BASE, &v, 8, 0);
	p.log = (struct vh_log){ 4096, 0 };
	reply_seed(12, "reply-12-SET_LOG_BASE-echo", VH_USER_SET_LOG_BASE, &p, 16, 0);
	v = 0xf;
	reply_seed(13, "reply-13-GET_STATUS", VH_USER_GET_STATUS, &v, 8, 0);
	v = 32;
	reply_seed(14, "reply-14-GET_MAX_MEM_SLOTS", VH_USER_GET_MAX_MEM_SLOTS, &v, 8, 0);
	v = 0;
	reply_seed(15, "reply-15-SET_VRING_NUM-ack", VH_USER_SET_VRING_NUM, &v, 8, 0);
	reply_seed(16, "reply-16-IOTLB_MSG-ack", VH_USER_IOTLB_MSG, &v, 8, 0);
	reply_seed(17, "reply-17-SET_VRING_ADDR-ack", VH_USER_SET_VRING_ADDR, &v, 8, 0);
	reply_seed(18, "reply-18-POSTCOPY_END", VH_USER_POSTCOPY_END, &v, 8, 0);
	reply_seed(19, "reply-19-SET_OWNER-ack", VH_USER_SET_OWNER, &v, 8, 0);
	v = 1;
	reply_seed(15, "reply-15-SET_VRING_NUM-nak", VH_USER_SET_VRING_NUM, &v, 8, 0);

	/* back-end channel requests 1-10, each asking for the ack */
	for (uint32_t id = 1; id <= VH_USER_BACKEND_REQUEST_MAX; id++) {
		struct buf o = { .n = 0 };
		uint32_t size = 0;
		uint8_t fdspec = 0;
		char name[64];

		memset(&p, 0, sizeof(p));
		switch (id) {
		case VH_USER_BACKEND_IOTLB_MSG:
			p.iotlb = (struct vh_iotlb_msg){ 0x1000, 0x1000, 0, VH_ACCESS_RO,
							 VH_IOTLB_MISS, { 0 } };
			size = 32;
			break;
		case VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG:
			p.area = (struct vh_vring_area){ 1, (uint64_t)ps, 0 };
			size = 24;
			fdspec = fz_fdspec(1, FZ_FD_MEMFD);
			break;
		case VH_USER_BACKEND_VRING_CALL:
		case VH_USER_BACKEND_VRING_ERR:
			p.state.index = 1;
			size = 8;
			break;
		case VH_USER_BACKEND_SHARED_OBJECT_ADD:
		case VH_USER_BACKEND_SHARED_OBJECT_REMOVE:
		case VH_USER_BACKEND_SHARED_OBJECT_LOOKUP:
			memset(p.object.uuid, 0x5a, 16);
			size = 16;
			break;
		case VH_USER_BACKEND_SHMEM_MAP:
		case VH_USER_BACKEND_SHMEM_UNMAP:
			p.shmem_map = (struct vh_shmem_mmap){ 1, { 0 }, 0, 2 * (uint64_t)ps,
							      2 * (uint64_t)ps, 1 };
			size = 40;
			if (id == VH_USER_BACKEND_SHMEM_MAP)
				fdspec = fz_fdspec(1, FZ_FD_MEMFD);
			break;
		default:
			break;
		}
		put_u8(&o, 1);  /* channel mode */
		put_u8(&o, 0);  /* every feature */
		put_u8(&o, 2);  /* two queues */
		record(&o, fdspec, id, V1 | NEED, &p, size);
		if (id == VH_USER_BACKEND_SHMEM_MAP) /* map, unmap it, unmap again */
			record(&o, 0, VH_USER_BACKEND_SHMEM_UNMAP, V1 | NEED, &p, size),
			record(&o, 0, VH_USER_BACKEND_SHMEM_UNMAP, V1 | NEED, &p, size);
		snprintf(name, sizeof(name), "chan-%02u-%s", id, vh_backend_request_name(id));
		save("frontend", name, &o);
	}
}

/* ---- Ring walk ---------------------------------------------------------------------------- */

/* Input format of vh_vq_fuzz_walk(): 8 header bytes, then the guest memory image (region A at
 * GPA 0, 8 KiB, holding the ring; region B at GPA 0x2000 from image offset 12 KiB). */
static void ring_seed(const char *name, uint64_t features, unsigned num, unsigned ind_max)
{
	static uint8_t img[12288 + 4096] __attribute__((aligned(64)));
	struct vh_vq_seg segs[3] = { { 0x1800, 64 }, { 0x1fc0, 128 }, { 0x2100, 256 } };
	uint8_t hdr[RING_SEED_HDR];
	struct vh_vq_driver *d;
	struct buf o = { .n = 0 };
	size_t len;

	memset(img, 0, sizeof(img));
	ring_seed_header(hdr, features, num);
	put(&o, hdr, sizeof(hdr));
	d = ring_seed_driver(img, features, num, ind_max);
	if (!d) {
		fprintf(stderr, "driver ring %s\n", name);
		exit(1);
	}
	for (unsigned i = 0; i < num; i++) {
		/* one readable and one writable piece; the B piece crosses the A/B boundary */
		struct vh_vq_seg two[2] = { segs[i % 3], segs[(i + 1) % 3] };
		struct vh_vq_driver_req req = { two, 1, 1, i };

		if (vh_vq_driver_add_batch(d, &req, 1) != 1)
			break;
	}
	vh_vq_driver_publish(d);
	vh_vq_driver_free(d);
	/* trailing zeros add nothing: the walker zero-fills what the input does not cover */
	len = sizeof(img);
	while (len && !img[len - 1])
		len--;
	put(&o, img, len);
	save("ring_walk", name, &o);
}

static void ring_seeds(void)
{
	ring_seed("split-8", 0, 8, 0);
	ring_seed("split-8-indirect", VH_VQ_F_INDIRECT_DESC, 8, 4);
	ring_seed("split-16-event-idx-in-order", VH_VQ_F_EVENT_IDX | VH_VQ_F_IN_ORDER, 16, 0);
	ring_seed("packed-7", VH_VQ_F_RING_PACKED, 7, 0);
	ring_seed("packed-5-indirect", VH_VQ_F_RING_PACKED | VH_VQ_F_INDIRECT_DESC, 5, 4);
	ring_seed("packed-12-event-idx-in-order",
		  VH_VQ_F_RING_PACKED | VH_VQ_F_EVENT_IDX | VH_VQ_F_IN_ORDER, 12, 0);
}

/* ---- Inflight ---------------------------------------------------------------------------- */

/* Seeds for fuzz_inflight (format in fuzz_inflight.h). Rings of 8 with five requests: three of
 * two segments (one readable, one writable), two of one. The first `popped` were popped before
 * the restart; done[] says which of those completed (in that order). */
#define IS_NUM 8u
#define IS_REQS 5u
#define IS_DATA 0x1000u  /* buffers; indirect tables at 0x800 and 0xa00 */
#define IS_QDATA 0x600u  /* buffer bytes per queue */

struct iseed {
	uint8_t hdr[FI_HDR];
	uint8_t reg[2][4096];      /* one region per queue */
	uint8_t img[FI_MEM_SIZE] __attribute__((aligned(64))); /* the driver rings need it */
	struct vh_vring_layout lay;
	size_t per;                /* bytes per region (ring size + extra entries) */
	unsigned nq;
	int packed;
	/* per queue: where each request sits in the ring */
	uint16_t head[2][IS_REQS];  /* split: head; packed: first position */
	uint16_t ndesc[2][IS_REQS];
	uint16_t bid[2][IS_REQS];   /* packed buffer id */
};

static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* Region field helpers (offsets of the spec's layouts). */
static uint8_t *sdesc(struct iseed *z, unsigned q, unsigned i) { return z->reg[q] + 16 + 16 * i; }
static uint8_t *pdesc(struct iseed *z, unsigned q, unsigned i) { return z->reg[q] + 32 + 32 * i; }

/* Lays out the rings (and their requests) with the driver side. */
static void iseed_rings(struct iseed *z, uint8_t flags, unsigned b2)
{
	uint64_t f = ((flags & FI_F_PACKED) ? VH_VQ_F_RING_PACKED : 0) |
		     ((flags & FI_F_EVENT_IDX) ? VH_VQ_F_EVENT_IDX : 0) |
		     ((flags & FI_F_INDIRECT) ? VH_VQ_F_INDIRECT_DESC : 0) |
		     ((flags & FI_F_IN_ORDER) ? VH_VQ_F_IN_ORDER : 0);

	memset(z, 0, sizeof(*z));
	z->packed = (flags & FI_F_PACKED) != 0;
	z->nq = (flags & FI_F_TWO_QUEUES) ? 2 : 1;
	z->hdr[0] = flags;
	z->hdr[1] = z->packed ? IS_NUM - 1 : 3;
	z->hdr[2] = (uint8_t)b2;
	z->per = fi_region_bytes(fi_entries(IS_NUM, (uint8_t)b2), z->packed);
	if (vh_vring_layout(IS_NUM, f, &z->lay)) {
		fprintf(stderr, "inflight: layout\n");
		exit(1);
	}
	for (unsigned i = 0; i < 2 * IS_QDATA; i++)
		z->img[IS_DATA + i] = (uint8_t)(i * 7 + 1);
	for (unsigned q = 0; q < z->nq; q++) {
		uint64_t gpa = fi_ring_gpa(q, z->lay.total);
		struct vh_vq_driver_config dc;
		struct vh_vq_driver *d = NULL;
		unsigned pos = 0;

		memset(&dc, 0, sizeof(dc));
		dc.num = IS_NUM;
		dc.features = f;
		dc.ring_host = z->img + gpa;
		dc.ring_gpa = gpa;
		dc.ring_size = z->lay.total;
		if (f & VH_VQ_F_INDIRECT_DESC) {
			dc.indirect_host = z->img + 0x800 + 0x200 * q;
			dc.indirect_gpa = 0x800 + 0x200 * q;
			dc.indirect_size = IS_NUM * 4 * 16;
			dc.indirect_max = 4;
		}
		if (vh_vq_driver_new(&d, &dc)) {
			fprintf(stderr, "inflight: driver ring\n");
			exit(1);
		}
		for (unsigned i = 0; i < IS_REQS; i++) {
			uint64_t base = IS_DATA + IS_QDATA * q + 0x100 * i;
			struct vh_vq_seg sg[2] = { { base, 64 }, { base + 0x80, 128 } };
			struct vh_vq_driver_req r = { sg, 1, i < 3 ? 1 : 0, i };

			if (vh_vq_driver_add_batch(d, &r, 1) != 1) {
				fprintf(stderr, "inflight: request %u\n", i);
				exit(1);
			}
		}
		vh_vq_driver_publish(d);
		vh_vq_driver_free(d);
		for (unsigned i = 0; i < IS_REQS; i++) {
			uint8_t *ring = z->img + gpa;

			if (!z->packed) {
				z->head[q][i] = rd16(ring + z->lay.driver_off + 4 + 2 * i);
				continue;
			}
			/* packed: the chain runs while NEXT is set; the id is the last one's */
			z->head[q][i] = (uint16_t)pos;
			z->ndesc[q][i] = 0;
			for (;;) {
				uint16_t fl = rd16(ring + 16 * pos + 14);

				z->bid[q][i] = rd16(ring + 16 * pos + 12);
				z->ndesc[q][i]++;
				pos++;
				if (!(fl & 1u))
					break;
			}
		}
	}
}

/* The state after popping the first `popped` requests, completing done[0..ndone) (indexes into
 * the requests, in completion order) and holding the rest, with counters in pop order. Writes
 * the regions, the header's used index and base (the used position, as QEMU falls back to). */
static void iseed_state(struct iseed *z, unsigned popped, const unsigned *done, unsigned ndone)
{
	unsigned used = 0, udesc = 0;

	for (unsigned q = 0; q < z->nq; q++) {
		uint8_t *r = z->reg[q];
		uint8_t isdone[IS_REQS] = { 0 };
		unsigned e = 0;

		for (unsigned k = 0; k < ndone; k++)
			isdone[done[k]] = 1;
		used = ndone;
		udesc = 0;
		for (unsigned k = 0; k < ndone; k++)
			udesc += z->ndesc[q][done[k]];
		wr16(r + 8, 1);
		wr16(r + 10, IS_NUM);
		if (!z->packed) {
			wr16(r + 12, 0);
			wr16(r + 14, (uint16_t)used);
			for (unsigned i = 0; i < popped; i++) {
				uint8_t *d = sdesc(z, q, z->head[q][i]);

				if (isdone[i])
					continue;
				d[0] = 1;
				wr64(d + 8, i + 1);
			}
			continue;
		}
		/* packed: each chain in flight takes entries from 0 up; the rest are free */
		for (unsigned i = 0; i < popped; i++) {
			uint8_t *h;

			if (isdone[i])
				continue;
			h = pdesc(z, q, e);
			h[0] = 1;
			wr16(h + 4, (uint16_t)(e + z->ndesc[q][i] - 1));
			wr16(h + 6, z->ndesc[q][i]);
			wr64(h + 8, i + 1);
			for (unsigned k = 0; k < z->ndesc[q][i]; k++, e++) {
				const uint8_t *rd = z->img + fi_ring_gpa(q, z->lay.total) +
						    16 * (z->head[q][i] + k);
				uint8_t *d = pdesc(z, q, e);

				wr16(d + 2, (uint16_t)(e + 1));
				memcpy(d + 24, rd, 8);      /* addr */
				memcpy(d + 20, rd + 8, 4);  /* len */
				memcpy(d + 16, rd + 12, 2); /* id */
				memcpy(d + 18, rd + 14, 2); /* flags */
			}
		}
		for (unsigned k = e; k < IS_NUM; k++)
			wr16(pdesc(z, q, k) + 2, (uint16_t)(k + 1));
		wr16(r + 12, (uint16_t)e);
		wr16(r + 14, (uint16_t)e);
		wr16(r + 16, (uint16_t)udesc);
		wr16(r + 18, (uint16_t)udesc);
		r[20] = 1;
		r[21] = 1;
	}
	if (!z->packed) {
		wr16(z->hdr + 3, (uint16_t)used);
		wr16(z->hdr + 5, (uint16_t)used);
	} else {
		wr16(z->hdr + 3, (uint16_t)(udesc | 0x8000u));
		wr16(z->hdr + 5, (uint16_t)(udesc | 0x8000u));
	}
}

static void iseed_save(const char *name, const struct iseed *z, uint8_t hold)
{
	static struct buf o;
	size_t len = FI_MEM_SIZE, rlen = z->per * z->nq;
	uint8_t hdr[FI_HDR];

	memcpy(hdr, z->hdr, FI_HDR);
	hdr[7] = hold;
	wr16(hdr + 8, (uint16_t)rlen);
	o.n = 0;
	put(&o, hdr, FI_HDR);
	for (unsigned q = 0; q < z->nq; q++)
		put(&o, z->reg[q], z->per);
	while (len && !z->img[len - 1])
		len--;
	put(&o, z->img, len);
	save("inflight", name, &o);
}

/* A scenario: rings laid out with `flags` and header byte 2 `b2`, the first `popped` requests
 * popped, those in done[] completed. */
static struct iseed *iseed_mk(uint8_t flags, uint8_t b2, unsigned popped, const unsigned *done,
			      unsigned ndone)
{
	static struct iseed z;

	iseed_rings(&z, flags, b2);
	iseed_state(&z, popped, done, ndone);
	return &z;
}

static const unsigned DONE_0[] = { 0 }, DONE_01[] = { 0, 1 }, DONE_2[] = { 2 };

/* Consistent buffers, for both layouts: 0, 1, 3 and 5 requests in flight, two queues, an
 * in-order ring, regions larger than the ring (and one too small: not tracked), buffers at an
 * offset in the file (the last one misaligned: refused, a regression seed). */
static void inflight_valid_seeds(uint8_t layout, const char *prefix)
{
	static const struct {
		const char *name;
		uint8_t flags, b2, hold;
		unsigned popped;
		const unsigned *done;
		unsigned ndone;
	} v[] = {
		{ "0-inflight", 0, 0, 0x05, 2, DONE_01, 2 },
		{ "1-inflight", 0, 0, 0x02, 2, DONE_0, 1 },
		{ "3-inflight", FI_F_REVERSE, 0, 0x09, 4, DONE_2, 1 },
		{ "5-inflight-none-done", 0, 0, 0x00, 5, DONE_0, 0 },
		{ "two-queues-indirect", FI_F_TWO_QUEUES | FI_F_INDIRECT | FI_F_EVENT_IDX, 0, 0x0a,
		  4, DONE_2, 1 },
		{ "in-order", FI_F_IN_ORDER, 0, 0x04, 3, DONE_0, 1 },
		{ "extra-entries", 0, 2, 0x01, 3, DONE_0, 1 },
		{ "region-smaller-than-ring", 0, 3, 0x01, 3, DONE_0, 1 },
		{ "offset-page-8", FI_F_OFFSET, 0x20 << 2 | 2 << 2, 0x01, 3, DONE_0, 1 },
		{ "offset-4-misaligned", FI_F_OFFSET, 1 << 2, 0x01, 3, DONE_0, 1 },
	};
	char name[64];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		snprintf(name, sizeof(name), "%s-%s", prefix, v[i].name);
		iseed_save(name, iseed_mk(FI_F_RESTART | layout | v[i].flags, v[i].b2, v[i].popped,
					  v[i].done, v[i].ndone), v[i].hold);
	}
}

static void inflight_split_seeds(void)
{
	const uint8_t R = FI_F_RESTART;
	struct iseed *z;

	inflight_valid_seeds(0, "split");
	/* a completion published but not recorded: the last batch is still marked in flight */
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	sdesc(z, 0, z->head[0][0])[0] = 1;
	wr64(sdesc(z, 0, z->head[0][0]) + 8, 1);
	wr16(z->reg[0] + 12, z->head[0][0]);
	wr16(z->reg[0] + 14, 0);
	iseed_save("split-last-batch", z, 0x00);

	/* corrupted */
	z = iseed_mk(R, 0, 4, DONE_2, 1);
	wr16(z->reg[0] + 8, 2);
	iseed_save("split-bad-version", z, 0x01);
	z = iseed_mk(R, 0, 4, DONE_2, 1);
	wr16(z->reg[0] + 10, 16);
	iseed_save("split-bad-desc-num", z, 0x01);
	z = iseed_mk(R, 0, 4, DONE_2, 1);
	wr64(sdesc(z, 0, z->head[0][0]) + 8, 3);
	wr64(sdesc(z, 0, z->head[0][1]) + 8, 3);
	iseed_save("split-counter-twice", z, 0x01);
	z = iseed_mk(R, 0, 4, DONE_2, 1);
	sdesc(z, 0, z->head[0][1])[0] = 2;
	iseed_save("split-inflight-2", z, 0x01);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(z->reg[0] + 14, (uint16_t)(1 - 9));
	iseed_save("split-used-far-behind", z, 0x00);
	z = iseed_mk(R, 0, 4, DONE_2, 1);
	wr16(z->reg[0] + 14, (uint16_t)-2);  /* a batch of 3 */
	wr16(z->reg[0] + 12, z->head[0][0]);
	wr16(sdesc(z, 0, z->head[0][0]) + 6, z->head[0][0]); /* the batch list loops */
	iseed_save("split-batch-loop", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(z->reg[0] + 12, 200);
	wr16(z->reg[0] + 14, 0);
	iseed_save("split-batch-head-out-of-range", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	sdesc(z, 0, z->head[0][3])[0] = 1;  /* also made available after the restart */
	wr64(sdesc(z, 0, z->head[0][3]) + 8, 9);
	iseed_save("split-head-in-flight-and-available", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr64(z->img + z->lay.desc_off + 16 * z->head[0][1], FI_MEM_SIZE - 16); /* crosses the end */
	iseed_save("split-resubmitted-buffer-outside", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	memset(z->reg[0] + 16, 0xff, z->per - 16);
	iseed_save("split-all-ones", z, 0x00);
}

static void inflight_packed_seeds(void)
{
	const uint8_t R = FI_F_RESTART | FI_F_PACKED;
	struct iseed *z;

	inflight_valid_seeds(FI_F_PACKED, "packed");
	/* a push under way (request 1 completing): rolled back while its descriptor still looks
	 * available, committed once it looks used */
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(z->reg[0] + 12, 0);             /* free_head: the chain (entries 0-1) went back, */
	wr16(pdesc(z, 0, 1) + 2, 2);         /* its last entry linked to the old free head */
	wr16(z->reg[0] + 16, 4);             /* used_idx moved by its two descriptors */
	iseed_save("packed-push-rolled-back", z, 0x00);
	wr16(z->img + 16 * 2 + 14, (uint16_t)(rd16(z->img + 16 * 2 + 14) | 0x8080u));
	iseed_save("packed-push-committed", z, 0x00);

	/* corrupted */
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(pdesc(z, 0, IS_NUM - 1) + 2, 3);
	iseed_save("packed-free-list-loops", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(z->reg[0] + 12, 1);             /* the free list starts inside the chain */
	wr16(z->reg[0] + 14, 1);
	iseed_save("packed-chain-on-free-list", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(pdesc(z, 0, 0) + 6, 0);
	iseed_save("packed-chain-num-0", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(pdesc(z, 0, 0) + 6, IS_NUM + 1);
	iseed_save("packed-chain-num-too-big", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(pdesc(z, 0, 0) + 4, 5);
	iseed_save("packed-chain-last-wrong", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(pdesc(z, 0, 1) + 16, IS_NUM);
	iseed_save("packed-id-out-of-range", z, 0x00);
	z = iseed_mk(R, 0, 4, DONE_2, 1);
	wr16(pdesc(z, 0, 3) + 16, rd16(pdesc(z, 0, 1) + 16));
	iseed_save("packed-id-twice", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(pdesc(z, 0, 0) + 2, 200);
	iseed_save("packed-chain-leaves-region", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(z->reg[0] + 12, IS_NUM + 1);
	iseed_save("packed-free-head-out-of-range", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(z->reg[0] + 18, IS_NUM);
	iseed_save("packed-used-idx-out-of-range", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	z->reg[0][21] = 2;
	iseed_save("packed-wrap-2", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr64(pdesc(z, 0, 1) + 24, FI_MEM_SIZE - 16); /* crosses the end of guest memory */
	iseed_save("packed-resubmitted-buffer-outside", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	wr16(pdesc(z, 0, 0) + 18, 0x4);      /* an indirect descriptor inside a chain */
	iseed_save("packed-indirect-in-chain", z, 0x00);
	z = iseed_mk(R, 0, 2, DONE_0, 1);
	memset(z->reg[0] + 32, 0xff, z->per - 32);
	iseed_save("packed-all-ones", z, 0x00);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	backend_seeds();
	frontend_seeds();
	ring_seeds();
	inflight_split_seeds();
	inflight_packed_seeds();
	return 0;
}
