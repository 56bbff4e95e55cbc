/* SPDX-License-Identifier: MIT */
/*
 * vhost-scsi through the library against a LIO vhost target (the harness's fileio LUN):
 * INQUIRY and READ CAPACITY on LUN 0, then a WRITE(10) of 8 KiB, a READ(10) of the same
 * blocks compared byte for byte, and the same bytes found in the backing file.
 */
#define KG_WITH_RINGS
#include <sys/stat.h>

#include <libvhost/kernel.h>
#include "kguest.h"

#define F_VERSION_1 (1ULL << 32)
#define REQ_VQ 2 /* 0 control, 1 event, 2.. requests */
#define LBA 64u
#define NBLK 16u
#define BLK 512u

struct scsi_req { /* virtio_scsi_cmd_req */
	uint8_t lun[8];
	uint64_t tag;
	uint8_t task_attr, prio, crn;
	uint8_t cdb[32];
} __attribute__((packed));

struct scsi_resp { /* virtio_scsi_cmd_resp */
	uint32_t sense_len, resid;
	uint16_t status_qualifier;
	uint8_t status, response;
	uint8_t sense[96];
} __attribute__((packed));

_Static_assert(sizeof(struct scsi_req) == 51, "virtio_scsi_cmd_req");
_Static_assert(sizeof(struct scsi_resp) == 108, "virtio_scsi_cmd_resp");

static struct vh_guest_mem *gm;
static struct kg_q q = { .kick = -1, .call = -1 };
static uint64_t tag;
static uint8_t target; /* vhost-scsi addresses each TPG by its tpgt as the target id */

/* One command; data_out or data_in (at most one) of len bytes. Returns the SCSI status or
 * a negative errno; *resp_out gets the response. */
static int command(const uint8_t *cdb, size_t cdblen, const void *data_out, void *data_in,
		   uint32_t len, struct scsi_resp *resp_out)
{
	struct scsi_req *req;
	struct scsi_resp *resp;
	uint8_t *data = NULL;
	uint64_t rg, sg, dg = 0;
	struct vh_vq_seg s[3];
	struct vh_vq_driver_req r = { s, 1, 1, ++tag };
	struct vh_vq_driver_used u;
	int n;

	if (vh_guest_mem_alloc(gm, sizeof(*req), 8, &rg, (void **)&req) < 0 ||
	    vh_guest_mem_alloc(gm, sizeof(*resp), 8, &sg, (void **)&resp) < 0 ||
	    (len && vh_guest_mem_alloc(gm, len, 4096, &dg, (void **)&data) < 0))
		return -ENOMEM;
	memset(req, 0, sizeof(*req));
	req->lun[0] = 1;    /* single-level LUN structure */
	req->lun[1] = target;
	req->lun[2] = 0x40; /* flat addressing, LUN 0 */
	req->tag = tag;
	memcpy(req->cdb, cdb, cdblen);
	memset(resp, 0xff, sizeof(*resp));
	s[0] = (struct vh_vq_seg){ rg, sizeof(*req) };
	if (data_out) {
		memcpy(data, data_out, len);
		s[1] = (struct vh_vq_seg){ dg, len };
		s[2] = (struct vh_vq_seg){ sg, sizeof(*resp) };
		r.out_num = 2;
	} else if (data_in) {
		s[1] = (struct vh_vq_seg){ sg, sizeof(*resp) };
		s[2] = (struct vh_vq_seg){ dg, len };
		r.in_num = 2;
	} else {
		s[1] = (struct vh_vq_seg){ sg, sizeof(*resp) };
	}
	if (vh_vq_driver_add_batch(q.drv, &r, 1) != 1)
		return -ENOSPC;
	kg_q_kick(&q);
	n = kg_q_wait(&q, &u, 1, 10000);
	if (n != 1)
		return n < 0 ? n : -ETIMEDOUT;
	if (data_in)
		memcpy(data_in, data, len);
	*resp_out = *resp;
	if (resp->response != 0)
		printf("     virtio-scsi response %u\n", resp->response);
	return resp->response == 0 ? resp->status : -EIO;
}

int main(void)
{
	const char *wwpn = getenv("LIBVHOST_VHOST_SCSI_WWPN");
	const char *tpgt_s = getenv("LIBVHOST_VHOST_SCSI_TPGT");
	const char *image = getenv("LIBVHOST_VHOST_SCSI_IMAGE");
	uint16_t tpgt = tpgt_s ? (uint16_t)atoi(tpgt_s) : 1;
	struct vh_device *d = NULL;
	struct kg_q other[2] = { { .kick = -1, .call = -1 }, { .kick = -1, .call = -1 } };
	const struct vh_region *regs;
	struct scsi_resp resp;
	uint8_t inq[96], cap[8], wbuf[NBLK * BLK], rbuf[NBLK * BLK];
	unsigned nregs, nvqs = 0;
	int fds0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fds0 = kg_count_fds();
	target = (uint8_t)tpgt;
	KG_TRUE(wwpn && image, "LIO vhost target provided (%s)", wwpn ? wwpn : "none");
	if (!wwpn || !image)
		return kg_done("vhost_scsi_datapath");
	KG_RET(vh_guest_mem_new(&gm, 4u << 20, 0), 0);
	KG_RET(vh_kernel_open(&d, "/dev/vhost-scsi", NULL), 0);
	if (!gm || !d)
		goto out;
	KG_RET(vh_device_set_owner(d), 0);
	KG_RET(vh_device_set_features(d, F_VERSION_1), 0);
	regs = vh_guest_mem_regions(gm, &nregs);
	KG_RET(vh_device_set_mem_table(d, regs, nregs), 0);
	/* Count the rings (SET_VRING_NUM answers ENOBUFS past the last one). */
	while (nvqs < 1024 && vh_kernel_set_vring_num(d, nvqs, 64) == 0)
		nvqs++;
	printf("     vhost-scsi has %u rings\n", nvqs);
	KG_TRUE(nvqs >= 3, "control, event and at least one request ring");
	KG_RET(kg_q_setup(&other[0], d, gm, 0, 64, F_VERSION_1, 0, NULL), 0);
	KG_RET(kg_q_setup(&other[1], d, gm, 1, 64, F_VERSION_1, 0, NULL), 0);
	KG_RET(kg_q_setup(&q, d, gm, REQ_VQ, 64, F_VERSION_1, 0, NULL), 0);
	KG_RET(vh_kernel_scsi_set_endpoint(d, wwpn, tpgt), 0);
	if (!q.drv)
		goto out_ep;

	KG_RET(command((const uint8_t[]){ 0x12, 0, 0, 0, sizeof(inq), 0 }, 6, NULL, inq,
		       sizeof(inq), &resp), 0);
	printf("     inquiry: type %u, vendor %.8s, product %.16s\n", inq[0] & 0x1f, inq + 8,
	       inq + 16);
	KG_EQ(inq[0] & 0x1f, 0); /* direct-access block device */
	KG_RET(command((const uint8_t[]){ 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 10, NULL, cap,
		       sizeof(cap), &resp), 0);
	{
		uint32_t last = (uint32_t)cap[0] << 24 | cap[1] << 16 | cap[2] << 8 | cap[3];
		uint32_t bl = (uint32_t)cap[4] << 24 | cap[5] << 16 | cap[6] << 8 | cap[7];
		struct stat st;

		KG_EQ(bl, BLK);
		KG_RET(stat(image, &st), 0);
		KG_EQ(((uint64_t)last + 1) * bl, (uint64_t)st.st_size);
	}
	for (unsigned i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i * 29 + (i >> 9) * 5 + 1);
	KG_RET(command((const uint8_t[]){ 0x2a, 0, 0, 0, 0, LBA, 0, 0, NBLK, 0 }, 10, wbuf, NULL,
		       sizeof(wbuf), &resp), 0);
	memset(rbuf, 0, sizeof(rbuf));
	KG_RET(command((const uint8_t[]){ 0x28, 0, 0, 0, 0, LBA, 0, 0, NBLK, 0 }, 10, NULL, rbuf,
		       sizeof(rbuf), &resp), 0);
	KG_TRUE(!memcmp(rbuf, wbuf, sizeof(wbuf)), "READ(10) returns what WRITE(10) wrote");
	{
		int fd = open(image, O_RDONLY | O_CLOEXEC);

		memset(rbuf, 0, sizeof(rbuf));
		KG_RET(pread(fd, rbuf, sizeof(rbuf), (off_t)LBA * BLK), (long long)sizeof(rbuf));
		KG_TRUE(!memcmp(rbuf, wbuf, sizeof(wbuf)), "the bytes are in the backing file");
		if (fd >= 0)
			close(fd);
	}
out_ep:
	KG_RET(vh_kernel_scsi_clear_endpoint(d, wwpn, tpgt), 0);
out:
	vh_device_close(d);
	kg_q_free(&q);
	kg_q_free(&other[0]);
	kg_q_free(&other[1]);
	vh_guest_mem_free(gm);
	KG_EQ(kg_count_fds(), fds0);
	return kg_done("vhost_scsi_datapath");
}
