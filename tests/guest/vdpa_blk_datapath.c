/* SPDX-License-Identifier: MIT */
/*
 * Block I/O through vhost-vdpa with the library's driver rings: vdpa_sim_blk and a VDUSE disk
 * served by qemu-storage-daemon. Sectors are written in multi-segment requests, read back and
 * compared; for VDUSE the bytes must also be in the image file behind the export, at the same
 * offset, and the capacity must match the image size.
 */
#define KG_WITH_RINGS
#include <sys/stat.h>

#include <libvhost/kernel.h>
#include <libvhost/vdpa.h>
#include "kguest.h"

#define BLK_T_IN 0u
#define BLK_T_OUT 1u
#define BLK_T_FLUSH 4u
#define F_BLK_FLUSH (1ULL << 9)
#define NREQ 8
#define CHUNK 8192u           /* bytes per request, in two segments */
#define FIRST_SECTOR 2048ull  /* 1 MiB into the disk */

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct io {
	struct blk_hdr *hdr;
	uint8_t *data, *status;
	uint64_t hdr_gpa, data_gpa, status_gpa;
};

static int alloc_io(struct vh_guest_mem *gm, struct io *io)
{
	int r = vh_guest_mem_alloc(gm, sizeof(*io->hdr), 16, &io->hdr_gpa, (void **)&io->hdr);

	if (r == 0)
		r = vh_guest_mem_alloc(gm, CHUNK, 4096, &io->data_gpa, (void **)&io->data);
	if (r == 0)
		r = vh_guest_mem_alloc(gm, 1, 1, &io->status_gpa, (void **)&io->status);
	return r;
}

/* Submits one request per io (type for all) and waits for them; returns completed count. */
static int submit(struct kg_q *q, struct io *ios, unsigned n, uint32_t type)
{
	struct vh_vq_seg segs[NREQ][4];
	struct vh_vq_driver_req reqs[NREQ];
	struct vh_vq_driver_used used[NREQ];
	int r;

	for (unsigned i = 0; i < n; i++) {
		unsigned k = 0;

		ios[i].hdr->type = type;
		ios[i].hdr->reserved = 0;
		/* The sector is 0 for anything but reads and writes (the simulator checks). */
		ios[i].hdr->sector =
			type == BLK_T_FLUSH ? 0 : FIRST_SECTOR + (uint64_t)i * (CHUNK / 512);
		*ios[i].status = 0xff;
		segs[i][k++] = (struct vh_vq_seg){ ios[i].hdr_gpa, sizeof(struct blk_hdr) };
		if (type != BLK_T_FLUSH) {
			segs[i][k++] = (struct vh_vq_seg){ ios[i].data_gpa, CHUNK / 2 };
			segs[i][k++] = (struct vh_vq_seg){ ios[i].data_gpa + CHUNK / 2, CHUNK / 2 };
		}
		segs[i][k++] = (struct vh_vq_seg){ ios[i].status_gpa, 1 };
		reqs[i].segs = segs[i];
		reqs[i].out_num = type == BLK_T_OUT ? 3 : 1;
		reqs[i].in_num = (uint16_t)(k - reqs[i].out_num);
		reqs[i].token = i;
	}
	r = vh_vq_driver_add_batch(q->drv, reqs, n);
	if (r != (int)n)
		return r < 0 ? r : -ENOSPC;
	kg_q_kick(q);
	return kg_q_wait(q, used, n, 20000);
}

static void run(const char *what, const char *path, const char *image)
{
	struct vh_guest_mem *gm = NULL;
	struct vh_device *d = NULL;
	struct kg_q q = { .kick = -1, .call = -1 };
	struct io ios[NREQ];
	const struct vh_region *regs;
	uint64_t neg = 0, cap = 0;
	unsigned nregs, good = 0;
	int fds0 = kg_count_fds();

	printf("== %s %s\n", what, path);
	KG_RET(vh_guest_mem_new(&gm, 4u << 20, 0), 0);
	KG_RET(vh_vdpa_open(&d, path, NULL), 0);
	if (!gm || !d)
		goto out;
	KG_RET(vh_device_set_owner(d), 0);
	KG_RET(vh_vdpa_negotiate(d, F_BLK_FLUSH | VH_VQ_F_RING_PACKED, &neg), 0);
	printf("     negotiated 0x%llx\n", (unsigned long long)neg);
	KG_RET(vh_device_get_config(d, 0, &cap, sizeof(cap)), 0);
	printf("     capacity %llu sectors\n", (unsigned long long)cap);
	if (image) {
		struct stat st;

		KG_RET(stat(image, &st), 0);
		KG_EQ(cap, (uint64_t)st.st_size / 512);
	}
	KG_TRUE(cap >= FIRST_SECTOR + NREQ * CHUNK / 512, "disk large enough");
	regs = vh_guest_mem_regions(gm, &nregs);
	KG_RET(vh_device_set_mem_table(d, regs, nregs), 0);
	KG_RET(kg_q_setup(&q, d, gm, 0, 128, neg, 0, NULL), 0);
	KG_RET(vh_device_set_vring_enable(d, 0, 1), 0);
	KG_RET(vh_vdpa_driver_ok(d), 0);
	for (unsigned i = 0; i < NREQ; i++)
		if (alloc_io(gm, &ios[i]) < 0)
			goto out;
	if (!q.drv)
		goto out;

	/* Write a pattern that differs per sector, then read it back into cleared buffers. */
	for (unsigned i = 0; i < NREQ; i++)
		for (unsigned j = 0; j < CHUNK; j++)
			ios[i].data[j] = (uint8_t)((i * CHUNK + j) * 31 / 7 + (j >> 9));
	KG_EQ(submit(&q, ios, NREQ, BLK_T_OUT), NREQ);
	for (unsigned i = 0; i < NREQ; i++)
		KG_EQ(*ios[i].status, 0);
	if (neg & F_BLK_FLUSH) {
		KG_EQ(submit(&q, ios, 1, BLK_T_FLUSH), 1);
		KG_EQ(*ios[0].status, 0);
	}
	for (unsigned i = 0; i < NREQ; i++)
		memset(ios[i].data, 0, CHUNK);
	KG_EQ(submit(&q, ios, NREQ, BLK_T_IN), NREQ);
	for (unsigned i = 0; i < NREQ; i++) {
		uint8_t want[CHUNK];

		for (unsigned j = 0; j < CHUNK; j++)
			want[j] = (uint8_t)((i * CHUNK + j) * 31 / 7 + (j >> 9));
		good += *ios[i].status == 0 && !memcmp(ios[i].data, want, CHUNK);
	}
	KG_EQ(good, NREQ);

	if (image) {
		/* The export wrote through to the file: the same bytes at the same offset. */
		int fd = open(image, O_RDONLY | O_CLOEXEC);
		uint8_t *file = malloc(NREQ * CHUNK);
		unsigned same = 0;

		if (fd >= 0 && file &&
		    pread(fd, file, NREQ * CHUNK, FIRST_SECTOR * 512) == NREQ * CHUNK)
			for (unsigned i = 0; i < NREQ; i++)
				same += !memcmp(file + i * CHUNK, ios[i].data, CHUNK);
		KG_EQ(same, NREQ);
		free(file);
		if (fd >= 0)
			close(fd);
	}
	KG_RET(vh_vdpa_reset(d), 0);
out:
	vh_device_close(d);
	kg_q_free(&q);
	vh_guest_mem_free(gm);
	KG_EQ(kg_count_fds(), fds0);
}

int main(void)
{
	const char *blk = getenv("LIBVHOST_VDPA_BLK");
	const char *vduse = getenv("LIBVHOST_VDPA_VDUSE");

	setvbuf(stdout, NULL, _IOLBF, 0);
	KG_TRUE(blk && vduse, "vdpa_sim_blk and VDUSE devices provided");
	if (blk)
		run("vdpa_sim_blk", blk, NULL);
	if (vduse)
		run("VDUSE blk (qemu-storage-daemon)", vduse, getenv("LIBVHOST_VDUSE_IMAGE"));
	return kg_done("vdpa_blk_datapath");
}
