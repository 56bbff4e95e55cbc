/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of the fuzz targets: gen_corpus <corpus-dir>
 *   <dir>/backend_dispatch/  a valid message for every front-end request id (1-44) with its
 *                            fds, plus whole sessions (QEMU's start sequence, postcopy)
 *   <dir>/frontend/          a valid reply to each request the target makes, and a valid
 *                            back-end channel request for every id (1-10)
 *   <dir>/ring_walk/         split and packed rings with requests, built with the driver side
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
	struct vh_vq_driver_config dc;
	struct vh_vq_driver *d = NULL;
	struct vh_vring_layout lay;
	struct buf o = { .n = 0 };
	size_t len;

	memset(img, 0, sizeof(img));
	put_u8(&o, (uint8_t)(((features & VH_VQ_F_RING_PACKED) ? 1 : 0) |
			     ((features & VH_VQ_F_EVENT_IDX) ? 2 : 0) |
			     ((features & VH_VQ_F_INDIRECT_DESC) ? 4 : 0) |
			     ((features & VH_VQ_F_IN_ORDER) ? 8 : 0) | 0x60));
	if (features & VH_VQ_F_RING_PACKED) {
		put_u8(&o, (uint8_t)(num - 1));
	} else {
		uint8_t l = 0;

		while ((1u << l) < num)
			l++;
		put_u8(&o, l);
	}
	put_u8(&o, 7);  /* batch of 8 */
	put_u8(&o, 15); /* 16 iovecs */
	put_u8(&o, 7);  /* 8 indirect entries */
	put_u8(&o, 0);
	put_u8(&o, 0);
	put_u8(&o, 0);
	if (vh_vring_layout(num, features, &lay)) {
		fprintf(stderr, "layout %u\n", num);
		exit(1);
	}
	memset(&dc, 0, sizeof(dc));
	dc.num = num;
	dc.features = features;
	dc.ring_host = img;
	dc.ring_gpa = 0;
	dc.ring_size = lay.total;
	if (ind_max) {
		dc.indirect_host = img + 0x1000;
		dc.indirect_gpa = 0x1000;
		dc.indirect_size = (size_t)num * ind_max * 16u;
		dc.indirect_max = ind_max;
	}
	if (vh_vq_driver_new(&d, &dc)) {
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
	return 0;
}
