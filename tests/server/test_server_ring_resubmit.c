/* SPDX-License-Identifier: MIT */
/*
 * The ring-layer calls inflight resubmission is built on: vh_vq_pop_head() (split: re-walk a
 * chain from a known head), vh_vq_pop_descs() (packed: walk recorded descriptor copies) and
 * vh_vq_read_desc(). A device pops requests, "restarts" (a new vh_vq at the position the
 * requests in flight imply), re-creates them from the head / the copies, and completes them;
 * the driver must get every completion with the right bytes. Bad heads and bad copies break
 * the ring, nothing else.
 */
#include <linux/virtio_ring.h>
#include <libvhost/memory.h>
#include <libvhost/ring.h>
#include "testutil.h"

#define NUM 16u
#define NREQ 5u

struct env {
	struct vh_guest_mem *gm;
	struct vh_memory *mem;
	struct vh_vq_driver *drv;
	struct vh_vq_driver_addrs a;
	uint64_t features;
	uint64_t data_gpa;
	uint8_t *data;
};

static void env_init(struct env *e, uint64_t features)
{
	struct vh_vq_driver_config dc;
	struct vh_vring_layout lay;
	const struct vh_region *regs;
	unsigned n;
	void *ring;
	uint64_t ring_gpa;

	memset(e, 0, sizeof(*e));
	e->features = features;
	CHECK_EQ(vh_guest_mem_new(&e->gm, 1u << 20, 0), 0);
	regs = vh_guest_mem_regions(e->gm, &n);
	CHECK_EQ(vh_memory_new_local(&e->mem, regs, n, NULL), 0);
	CHECK_EQ(vh_vring_layout(NUM, features, &lay), 0);
	CHECK_EQ(vh_guest_mem_alloc(e->gm, lay.total, 4096, &ring_gpa, &ring), 0);
	CHECK_EQ(vh_guest_mem_alloc(e->gm, 64 * 1024, 4096, &e->data_gpa, (void **)&e->data), 0);
	memset(&dc, 0, sizeof(dc));
	dc.num = NUM;
	dc.features = features;
	dc.ring_host = ring;
	dc.ring_gpa = ring_gpa;
	dc.ring_size = lay.total;
	CHECK_EQ(vh_vq_driver_new(&e->drv, &dc), 0);
	vh_vq_driver_addrs(e->drv, &e->a);
}

static void env_fini(struct env *e)
{
	vh_vq_driver_free(e->drv);
	vh_memory_unref(e->mem);
	vh_guest_mem_free(e->gm);
}

static struct vh_vq *device_vq(struct env *e, const struct vh_vq_base *base)
{
	struct vh_vq_config c;
	struct vh_vq *vq = NULL;

	memset(&c, 0, sizeof(c));
	c.num = NUM;
	c.features = e->features;
	c.addr_kind = VH_VQ_ADDR_GPA;
	c.desc_addr = e->a.desc_gpa;
	c.driver_addr = e->a.driver_gpa;
	c.device_addr = e->a.device_gpa;
	if (base)
		c.base = *base;
	else if (e->features & VH_VQ_F_RING_PACKED)
		c.base.avail_wrap = c.base.used_wrap = 1;
	c.mem = e->mem;
	CHECK_EQ(vh_vq_new(&vq, &c), 0);
	return vq;
}

/* Request i: 2 readable segments (the second 1 byte), 1 writable one. */
static void add_requests(struct env *e)
{
	struct vh_vq_seg segs[NREQ][3];
	struct vh_vq_driver_req reqs[NREQ];

	for (unsigned i = 0; i < NREQ; i++) {
		uint64_t g = e->data_gpa + i * 1024u;

		memset(e->data + i * 1024u, 0x10 + (int)i, 100);
		memset(e->data + i * 1024u + 512, 0, 512);
		segs[i][0] = (struct vh_vq_seg){ g, 99 };
		segs[i][1] = (struct vh_vq_seg){ g + 99, 1 };
		segs[i][2] = (struct vh_vq_seg){ g + 512, 200 };
		reqs[i].segs = segs[i];
		reqs[i].out_num = 2;
		reqs[i].in_num = 1;
		reqs[i].token = 1000 + i;
	}
	CHECK_EQ(vh_vq_driver_add_batch(e->drv, reqs, NREQ), (int)NREQ);
	vh_vq_driver_publish(e->drv);
}

static void check_elem(const struct vh_vq_elem *el, unsigned req)
{
	uint8_t buf[100];

	CHECK_EQ(el->out_len, 100);
	CHECK_EQ(el->in_len, 200);
	CHECK_EQ(vh_iov_to_buf(el->iov, el->out_num, 0, buf, sizeof(buf)), 100);
	for (unsigned k = 0; k < 100; k++)
		if (buf[k] != 0x10 + req) {
			T_FAIL("request %u byte %u is 0x%x", req, k, buf[k]);
			break;
		}
}

static void answer(const struct vh_vq_elem *el, unsigned req)
{
	uint8_t resp[50];

	memset(resp, 0xa0 + (int)req, sizeof(resp));
	CHECK_EQ(vh_buf_to_iov(el->iov + el->out_num, el->in_num, 0, resp, sizeof(resp)), 50);
}

static void collect(struct env *e, unsigned want)
{
	struct vh_vq_driver_used u[NREQ];
	unsigned got = 0;
	int n;

	while ((n = vh_vq_driver_get_used(e->drv, u + got, NREQ - got)) > 0)
		got += (unsigned)n;
	CHECK_EQ(got, want);
	for (unsigned i = 0; i < got; i++) {
		unsigned req = (unsigned)(u[i].token - 1000);

		CHECK(req < NREQ);
		CHECK_EQ(u[i].len, 50);
		if (req < NREQ)
			CHECK_EQ(e->data[req * 1024u + 512 + 49], 0xa0 + req);
	}
	CHECK_EQ(vh_vq_driver_is_broken(e->drv), 0);
}

static void test_split_pop_head(void)
{
	struct env e;
	struct iovec iov[NREQ][8];
	struct vh_vq_elem el[NREQ], re;
	struct iovec riov[8];
	struct vh_vq_base b;
	struct vh_vq *vq, *vq2;
	uint16_t heads[NREQ];

	env_init(&e, 0);
	add_requests(&e);
	vq = device_vq(&e, NULL);
	for (unsigned i = 0; i < NREQ; i++) {
		memset(&el[i], 0, sizeof(el[i]));
		el[i].iov = iov[i];
		el[i].iov_cap = 8;
	}
	CHECK_EQ(vh_vq_pop_batch(vq, el, NREQ), (int)NREQ);
	for (unsigned i = 0; i < NREQ; i++)
		heads[i] = el[i].id;
	/* Complete request 1 only, then "crash". */
	answer(&el[1], 1);
	CHECK_EQ(vh_vq_push(vq, el[1].id, 50), 0);
	vh_vq_free(vq);
	collect(&e, 1);

	/* Restart: the next new head follows the used index by the 4 still in flight. */
	memset(&b, 0, sizeof(b));
	b.last_avail_idx = 1 + 4;
	vq2 = device_vq(&e, &b);
	vh_vq_get_base(vq2, &b);
	CHECK_EQ(b.used_idx, 1);
	CHECK_EQ(vh_vq_inflight(vq2), 0);
	for (unsigned i = 0; i < NREQ; i++) {
		if (i == 1)
			continue;
		memset(&re, 0, sizeof(re));
		re.iov = riov;
		re.iov_cap = 8;
		CHECK_EQ(vh_vq_pop_head(vq2, heads[i], &re), 1);
		CHECK_EQ(re.id, heads[i]);
		CHECK_EQ(re.out_num, 2);
		CHECK_EQ(re.in_num, 1);
		check_elem(&re, i);
		answer(&re, i);
		CHECK_EQ(vh_vq_push(vq2, re.id, 50), 0);
	}
	CHECK_EQ(vh_vq_inflight(vq2), 0);
	/* Nothing new is available past the restarted position. */
	CHECK_EQ(vh_vq_pop(vq2, &re), 0);
	collect(&e, 4);
	/* A packed call on a split ring, and a bad head. */
	CHECK_EQ(vh_vq_pop_descs(vq2, NULL, 0, &re), -EINVAL);
	CHECK_EQ(vh_vq_read_desc(vq2, 0, &(struct vh_vq_desc){ 0 }), -EINVAL);
	CHECK_EQ(vh_vq_pop_head(vq2, NUM, &re), -EIO);
	CHECK_EQ(vh_vq_fault(vq2), VH_VQ_FAULT_HEAD);
	vh_vq_free(vq2);
	env_fini(&e);
}

static void test_packed_pop_descs(void)
{
	struct env e;
	struct iovec iov[NREQ][8], riov[8];
	struct vh_vq_elem el[NREQ], re;
	struct vh_vq_desc rec[NREQ][3], bad[3];
	unsigned ndesc[NREQ];
	struct vh_vq_base b0, b;
	struct vh_vq *vq, *vq2;
	uint16_t pos;

	env_init(&e, VH_VQ_F_RING_PACKED);
	add_requests(&e);
	vq = device_vq(&e, NULL);
	vh_vq_get_base(vq, &b0);
	for (unsigned i = 0; i < NREQ; i++) {
		memset(&el[i], 0, sizeof(el[i]));
		el[i].iov = iov[i];
		el[i].iov_cap = 8;
	}
	CHECK_EQ(vh_vq_pop_batch(vq, el, NREQ), (int)NREQ);
	/* Record each chain's ring descriptors as inflight tracking does. */
	pos = b0.last_avail_idx;
	for (unsigned i = 0; i < NREQ; i++) {
		ndesc[i] = el[i].ndesc;
		CHECK_EQ(ndesc[i], 3);
		for (unsigned k = 0; k < ndesc[i] && k < 3; k++) {
			CHECK_EQ(vh_vq_read_desc(vq, pos, &rec[i][k]), 0);
			pos = (uint16_t)((pos + 1) % NUM);
		}
		CHECK_EQ(rec[i][2].id, el[i].id);
		CHECK(rec[i][0].flags & VRING_DESC_F_NEXT);
		CHECK(!(rec[i][2].flags & VRING_DESC_F_NEXT));
	}
	CHECK_EQ(vh_vq_read_desc(vq, NUM, &rec[0][0]), -EINVAL);
	/* Complete request 3 (3 descriptors), then "crash". */
	answer(&el[3], 3);
	CHECK_EQ(vh_vq_push(vq, el[3].id, 50), 0);
	vh_vq_get_base(vq, &b);
	CHECK_EQ(b.used_idx, 3);
	vh_vq_free(vq);
	collect(&e, 1);

	/* Restart at used 3, avail 3 + 12 descriptors in flight. */
	memset(&b, 0, sizeof(b));
	b.used_idx = 3;
	b.used_wrap = 1;
	b.last_avail_idx = 15;
	b.avail_wrap = 1;
	vq2 = device_vq(&e, &b);
	for (unsigned i = 0; i < NREQ; i++) {
		if (i == 3)
			continue;
		memset(&re, 0, sizeof(re));
		re.iov = riov;
		re.iov_cap = 8;
		CHECK_EQ(vh_vq_pop_descs(vq2, rec[i], ndesc[i], &re), 1);
		CHECK_EQ(re.id, el[i].id);
		CHECK_EQ(re.ndesc, 3);
		check_elem(&re, i);
		answer(&re, i);
		CHECK_EQ(vh_vq_push(vq2, re.id, 50), 0);
	}
	CHECK_EQ(vh_vq_pop(vq2, &re), 0);
	collect(&e, 4);
	vh_vq_get_base(vq2, &b);
	CHECK_EQ(b.used_idx, 15);
	CHECK_EQ(vh_vq_pop_head(vq2, 0, &re), -EINVAL);

	/* Bad copies: each breaks the ring with its own fault. */
	for (int c = 0; c < 5; c++) {
		unsigned n = 3;
		enum vh_vq_fault want;

		memcpy(bad, rec[0], sizeof(bad));
		switch (c) {
		case 0: /* last copy still says NEXT */
			bad[2].flags |= VRING_DESC_F_NEXT;
			want = VH_VQ_FAULT_PACKED_FLAGS;
			break;
		case 1: /* id out of range */
			bad[2].id = NUM;
			want = VH_VQ_FAULT_PACKED_ID;
			break;
		case 2: /* buffer outside guest memory */
			bad[1].addr = 1ull << 40;
			want = VH_VQ_FAULT_BUF_ADDR;
			break;
		case 3: /* indirect without the feature */
			bad[0].flags = VRING_DESC_F_INDIRECT;
			n = 1;
			want = VH_VQ_FAULT_INDIRECT_FEATURE;
			break;
		default: /* more descriptors than the ring */
			n = NUM + 1;
			want = VH_VQ_FAULT_CHAIN_LEN;
			break;
		}
		vh_vq_free(vq2);
		vq2 = device_vq(&e, &b);
		memset(&re, 0, sizeof(re));
		re.iov = riov;
		re.iov_cap = 8;
		CHECK_EQ_M(vh_vq_pop_descs(vq2, bad, n, &re), -EIO, "case %d", c);
		CHECK_EQ_M(vh_vq_fault(vq2), want, "case %d", c);
		CHECK_EQ(vh_vq_pop_descs(vq2, rec[0], 3, &re), -EIO);
	}
	/* A buffer id in flight twice. */
	vh_vq_free(vq2);
	vq2 = device_vq(&e, &b);
	memset(&re, 0, sizeof(re));
	re.iov = riov;
	re.iov_cap = 8;
	CHECK_EQ(vh_vq_pop_descs(vq2, rec[0], 3, &re), 1);
	CHECK_EQ(vh_vq_pop_descs(vq2, rec[0], 3, &re), -EIO);
	CHECK_EQ(vh_vq_fault(vq2), VH_VQ_FAULT_PACKED_ID);
	vh_vq_free(vq2);
	env_fini(&e);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_split_pop_head),
		T_TEST(test_packed_pop_descs),
	};

	return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
