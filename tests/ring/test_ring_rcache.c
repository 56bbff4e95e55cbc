/* SPDX-License-Identifier: MIT */
/*
 * The device side's translations (the batch's cached region and the memory table's GPA
 * index) against the table itself: guest memory of 3 to 509 regions, small (several per
 * 2 MiB) and large, with and without GPA holes; requests of 1 to 3 segments spread over random
 * regions, some crossing from one region into the next. Every element's iovecs must equal
 * what vh_memory_gpa_to_iov() gives for its segments, and the bytes must go both ways.
 * Then the table is replaced under the ring (new mappings of the same memory, the old ones
 * unmapped; a region removed, so region indexes shift): translations must follow the new
 * table and a buffer in the removed region must break the ring (BUF_ADDR).
 */
#include <linux/virtio_ring.h>
#include <libvhost/ring.h>
#include <libvhost/memory.h>
#include "memtest.h"

#define QNUM 64u
#define MAX_REQ 8u
#define MAX_SEG 3u
#define IOV_CAP 8u
#define RING_AREA (16u * 1024u) /* start of region 0 holds the ring */
#define GPA_BASE 0x100000ull

struct rc_env {
	struct vh_guest_mem *gm;
	const struct vh_region *regs;
	unsigned nregs;
	uint64_t rsize;
	int gap;
	struct vh_memory *mem;  /* the device's current table */
	struct vh_vq_driver *drv;
	struct vh_vq *vq;
	struct vh_vq_elem el[MAX_REQ];
	struct iovec iov[MAX_REQ][IOV_CAP];
	uint64_t gpa[MAX_REQ][IOV_CAP];
	unsigned skip_region;   /* no buffers here (removed); nregs = none */
};

struct rc_req {
	struct vh_vq_seg seg[MAX_SEG];
	unsigned nseg, out;
};

/* Driver-side pointer of a GPA range (regions are contiguous in the driver's mapping). */
static uint8_t *rc_host(const struct rc_env *r, uint64_t gpa)
{
	uint64_t stride = r->nregs > 1 ? r->regs[1].guest_phys_addr - r->regs[0].guest_phys_addr : 0;
	uint64_t rel = gpa - GPA_BASE, i = stride ? rel / stride : 0;

	return (uint8_t *)vh_guest_mem_base(r->gm) + i * r->rsize + (rel - i * stride);
}

static int rc_setup(struct rc_env *r, uint64_t features, unsigned nregs, uint64_t rsize,
		    int gap)
{
	struct vh_guest_mem_opts o = { rsize * nregs, nregs, 0, GPA_BASE, gap ? 65536 : 0 };
	struct vh_vq_driver_config dc;
	struct vh_vq_driver_addrs a;
	struct vh_vring_layout lay;
	struct vh_vq_config c;
	unsigned n, i;
	int ret;

	memset(r, 0, sizeof(*r));
	r->rsize = rsize;
	r->gap = gap;
	ret = vh_guest_mem_new_opts(&r->gm, &o);
	if (ret < 0)
		return ret;
	r->regs = vh_guest_mem_regions(r->gm, &n);
	r->nregs = n;
	r->skip_region = n;
	if (n != nregs || r->regs[0].size != rsize)
		return -EINVAL;
	ret = vh_memory_map_regions(&r->mem, r->regs, n, NULL);
	if (ret < 0)
		return ret;
	ret = vh_vring_layout(QNUM, features, &lay);
	if (ret < 0 || lay.total > RING_AREA)
		return -EINVAL;
	memset(&dc, 0, sizeof(dc));
	dc.num = QNUM;
	dc.features = features;
	dc.ring_host = rc_host(r, GPA_BASE);
	dc.ring_gpa = GPA_BASE;
	dc.ring_size = lay.total;
	ret = vh_vq_driver_new(&r->drv, &dc);
	if (ret < 0)
		return ret;
	vh_vq_driver_addrs(r->drv, &a);
	memset(&c, 0, sizeof(c));
	c.num = QNUM;
	c.features = features;
	c.addr_kind = VH_VQ_ADDR_GPA;
	c.desc_addr = a.desc_gpa;
	c.driver_addr = a.driver_gpa;
	c.device_addr = a.device_gpa;
	vh_vq_driver_base(r->drv, &c.base);
	c.mem = r->mem;
	ret = vh_vq_new(&r->vq, &c);
	for (i = 0; i < MAX_REQ; i++) {
		r->el[i].iov = r->iov[i];
		r->el[i].iov_gpa = r->gpa[i];
		r->el[i].iov_cap = IOV_CAP;
	}
	return ret;
}

static void rc_teardown(struct rc_env *r)
{
	vh_vq_free(r->vq);
	vh_vq_driver_free(r->drv);
	vh_memory_unref(r->mem);
	vh_guest_mem_free(r->gm);
}

static int overlaps(const struct rc_req *reqs, unsigned nreq, uint64_t gpa, uint32_t len)
{
	for (unsigned i = 0; i < nreq; i++)
		for (unsigned k = 0; k < reqs[i].nseg; k++)
			if (gpa < reqs[i].seg[k].gpa + reqs[i].seg[k].len &&
			    reqs[i].seg[k].gpa < gpa + len)
				return 1;
	return 0;
}

/* A random segment that overlaps no earlier one of the round: inside one region, or (without
 * holes) crossing from one region into the next. */
static struct vh_vq_seg rc_seg(const struct rc_env *r, const struct rc_req *reqs, unsigned nreq)
{
	for (;;) {
		unsigned reg = (unsigned)rnd_below(r->nregs);
		uint64_t lo = reg == 0 ? RING_AREA : 0, base = r->regs[reg].guest_phys_addr;
		uint32_t len = (uint32_t)(1 + rnd_below(3000));
		struct vh_vq_seg s;

		if (reg == r->skip_region)
			continue;
		if (!r->gap && reg + 1 < r->nregs && reg + 1 != r->skip_region && rnd_below(8) == 0) {
			uint64_t before = 1 + rnd_below(len - (len > 1)); /* bytes in reg */

			s.gpa = base + r->rsize - before;
			s.len = len > before ? len : (uint32_t)before + 1;
		} else {
			s.gpa = base + lo + rnd_below(r->rsize - lo - len);
			s.len = len;
		}
		if (!overlaps(reqs, nreq, s.gpa, s.len))
			return s;
	}
}

static uint8_t pat(uint64_t gpa, unsigned round)
{
	return (uint8_t)(gpa * 131u + round * 7u + (gpa >> 9));
}

/* What the device writes back. */
static uint8_t answer(uint64_t gpa, unsigned round)
{
	return (uint8_t)(pat(gpa, round) + 0x5bu);
}

/* One round: up to MAX_REQ requests placed, popped, checked against the table, answered. */
static void rc_round(struct rc_env *r, unsigned round, const char *what)
{
	struct rc_req reqs[MAX_REQ];
	struct vh_vq_driver_req dreq[MAX_REQ];
	struct vh_vq_driver_used u[MAX_REQ];
	unsigned nreq = 1 + (unsigned)rnd_below(MAX_REQ), i, k;
	int n, got = 0;

	for (i = 0; i < nreq; i++) {
		unsigned nseg = 1 + (unsigned)rnd_below(MAX_SEG);

		reqs[i].out = (unsigned)rnd_below(nseg + 1);
		/* Segments chosen so far (this request's too) are avoided by the next one. */
		for (k = 0; k < nseg; k++) {
			reqs[i].nseg = k;
			reqs[i].seg[k] = rc_seg(r, reqs, i + 1);
		}
		reqs[i].nseg = nseg;
		for (k = 0; k < reqs[i].nseg; k++) {
			uint8_t *h = rc_host(r, reqs[i].seg[k].gpa);

			for (uint32_t b = 0; b < reqs[i].seg[k].len; b++)
				h[b] = k < reqs[i].out ? pat(reqs[i].seg[k].gpa + b, round) : 0xee;
		}
		dreq[i] = (struct vh_vq_driver_req){ reqs[i].seg, (uint16_t)reqs[i].out,
						     (uint16_t)(reqs[i].nseg - reqs[i].out), i };
	}
	CHECK_EQ_M(vh_vq_driver_add_batch(r->drv, dreq, nreq), nreq, "%s round %u", what, round);
	vh_vq_driver_publish(r->drv);
	n = vh_vq_pop_batch(r->vq, r->el, MAX_REQ);
	CHECK_EQ_M(n, nreq, "%s round %u: pop", what, round);
	for (i = 0; i < (unsigned)(n > 0 ? n : 0); i++) {
		struct vh_vq_elem *e = &r->el[i];
		const struct rc_req *q = NULL;
		struct iovec want[IOV_CAP];
		unsigned nw = 0, p;
		uint64_t in_total = 0;

		for (k = 0; k < nreq; k++)
			if (reqs[k].seg[0].gpa == e->iov_gpa[0])
				q = &reqs[k];
		if (q == NULL) {
			T_FAIL("%s round %u: element %u matches no request", what, round, i);
			continue;
		}
		/* What the table itself says the pieces are. */
		for (k = 0; k < q->nseg; k++) {
			int m = vh_memory_gpa_to_iov(r->mem, q->seg[k].gpa, q->seg[k].len, want + nw,
						     IOV_CAP - nw);

			CHECK(m > 0);
			if (m > 0)
				nw += (unsigned)m;
			if (k >= q->out)
				in_total += q->seg[k].len;
		}
		CHECK_EQ_M(e->out_num + e->in_num, nw, "%s round %u pieces", what, round);
		CHECK_EQ_M(e->in_len, in_total, "%s round %u in_len", what, round);
		for (p = 0; p < nw && p < e->out_num + e->in_num; p++) {
			CHECK(e->iov[p].iov_base == want[p].iov_base);
			CHECK_EQ(e->iov[p].iov_len, want[p].iov_len);
		}
		/* The readable bytes arrive; the writable ones get the answer. */
		for (k = 0, p = 0; k < q->out; k++) {
			uint8_t buf[3001];
			uint32_t len = q->seg[k].len, bad = 0;
			size_t got_b = vh_iov_to_buf(e->iov, e->out_num, p, buf, len);

			CHECK_EQ(got_b, len);
			for (uint32_t b = 0; b < len && b < got_b; b++)
				bad += buf[b] != pat(q->seg[k].gpa + b, round);
			CHECK_EQ_M(bad, 0, "%s round %u readable bytes", what, round);
			p += len;
		}
		for (k = q->out, p = 0; k < q->nseg; k++) {
			uint8_t buf[3001];

			for (uint32_t b = 0; b < q->seg[k].len; b++)
				buf[b] = answer(q->seg[k].gpa + b, round);
			CHECK_EQ(vh_buf_to_iov(e->iov + e->out_num, e->in_num, p, buf,
					       q->seg[k].len), q->seg[k].len);
			p += q->seg[k].len;
		}
		CHECK_EQ(vh_vq_push(r->vq, e->id, (uint32_t)e->in_len), 0);
	}
	while (got < n) {
		int m = vh_vq_driver_get_used(r->drv, u, MAX_REQ);

		CHECK(m > 0);
		if (m <= 0)
			break;
		for (i = 0; i < (unsigned)m; i++) {
			const struct rc_req *q = &reqs[u[i].token];
			uint32_t bad = 0;

			for (k = q->out; k < q->nseg; k++) {
				const uint8_t *h = rc_host(r, q->seg[k].gpa);

				for (uint32_t b = 0; b < q->seg[k].len; b++)
					bad += h[b] != answer(q->seg[k].gpa + b, round);
			}
			CHECK_EQ_M(bad, 0, "%s round %u written bytes", what, round);
		}
		got += m;
	}
}

static void rc_case(uint64_t features, unsigned nregs, uint64_t rsize, int gap)
{
	struct m_baseline b = m_baseline();
	char what[96];
	struct rc_env r;
	struct vh_memory *t1, *t2, *t3;
	struct vh_mem_region rm;
	unsigned round, k;
	int ret;

	snprintf(what, sizeof(what), "%s, %u regions of %llu KiB%s",
		 features & VH_VQ_F_RING_PACKED ? "packed" : "split", nregs,
		 (unsigned long long)(rsize >> 10), gap ? ", holes" : "");
	ret = rc_setup(&r, features, nregs, rsize, gap);
	CHECK_EQ_M(ret, 0, "%s: setup", what);
	if (ret < 0) {
		rc_teardown(&r);
		return;
	}
	for (round = 0; round < 150; round++)
		rc_round(&r, round, what);

	/* The same memory mapped again: buffers translate to the new host addresses. The ring
	 * keeps its pointers into the first table, which therefore stays (a ring that moves
	 * needs a new vh_vq). */
	CHECK_EQ(vh_memory_map_regions(&t2, r.regs, r.nregs, NULL), 0);
	vh_vq_set_memory(r.vq, t2);
	t1 = r.mem;
	r.mem = t2;
	for (round = 150; round < 300; round++)
		rc_round(&r, round, what);

	/* A region in the middle removed: the indexes of the later ones shift down, and its
	 * second mapping goes away with the second table. */
	k = nregs / 2;
	memset(&rm, 0, sizeof(rm));
	rm.guest_phys_addr = r.regs[k].guest_phys_addr;
	rm.memory_size = r.regs[k].size;
	rm.userspace_addr = r.regs[k].userspace_addr;
	CHECK_EQ(vh_memory_remove(&t3, r.mem, &rm), 0);
	vh_vq_set_memory(r.vq, t3);
	vh_memory_unref(r.mem);
	r.mem = t3;
	r.skip_region = k;
	for (round = 300; round < 450; round++)
		rc_round(&r, round, what);

	/* A buffer in the removed region breaks the ring. */
	{
		struct vh_vq_seg s = { r.regs[k].guest_phys_addr + 64, 100 };
		struct vh_vq_driver_req q = { &s, 0, 1, 0 };

		CHECK_EQ(vh_vq_driver_add_batch(r.drv, &q, 1), 1);
		vh_vq_driver_publish(r.drv);
		CHECK_EQ_M(vh_vq_pop_batch(r.vq, r.el, MAX_REQ), -EIO, "%s: removed region", what);
		CHECK_EQ(vh_vq_fault(r.vq), VH_VQ_FAULT_BUF_ADDR);
	}
	rc_teardown(&r);
	vh_memory_unref(t1);
	CHECK_BASELINE_M(b);
}

static void test_split_regions(void)
{
	rc_case(VH_VQ_F_EVENT_IDX, 3, 2ull << 20, 0);
	rc_case(0, 64, 64 << 10, 0);
	rc_case(VH_VQ_F_EVENT_IDX, 64, 64 << 10, 1);
	rc_case(VH_VQ_F_EVENT_IDX, 509, 2ull << 20, 0);
	rc_case(VH_VQ_F_EVENT_IDX, 40, 3ull << 20, 1);
}

static void test_packed_regions(void)
{
	rc_case(VH_VQ_F_RING_PACKED | VH_VQ_F_EVENT_IDX, 3, 2ull << 20, 0);
	rc_case(VH_VQ_F_RING_PACKED, 64, 64 << 10, 0);
	rc_case(VH_VQ_F_RING_PACKED | VH_VQ_F_EVENT_IDX, 64, 64 << 10, 1);
	rc_case(VH_VQ_F_RING_PACKED | VH_VQ_F_EVENT_IDX, 509, 2ull << 20, 0);
	rc_case(VH_VQ_F_RING_PACKED | VH_VQ_F_IN_ORDER, 40, 3ull << 20, 1);
}

static void test_in_order(void)
{
	rc_case(VH_VQ_F_IN_ORDER | VH_VQ_F_EVENT_IDX, 8, 64 << 10, 0);
}

static const struct t_test tests[] = {
	T_TEST(test_split_regions),
	T_TEST(test_packed_regions),
	T_TEST(test_in_order),
};

T_MAIN(tests)
