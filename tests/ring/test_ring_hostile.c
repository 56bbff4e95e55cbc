/* SPDX-License-Identifier: MIT */
/*
 * Hostile rings (bad-inputs classes 25-29): every rule a driver can break in a split or packed
 * ring, written by hand into guest memory. Each case must mark the device ring broken with the
 * expected fault, return -EIO from then on for every call, never crash or loop, and leave the
 * fd and mapping counts at their baseline after teardown. Then the same for a hostile device
 * against the driver side, and the tricky-but-valid layouts that must keep working (buffers
 * and indirect tables straddling regions, a chain ending in an indirect descriptor, a chain as
 * long as the ring).
 */
#include <linux/virtio_ring.h>
#include "ringtest.h"

#define DATA (RT_GPA_BASE + RT_REGION_SIZE) /* start of region 1 */
#define MEM_END (RT_GPA_BASE + 3 * RT_REGION_SIZE)
#define UNMAPPED 0x1000ull

/* ---- Raw ring writers -------------------------------------------------------------------- */

static struct vring_desc *sdesc(struct rt_env *e)
{
	return (struct vring_desc *)(e->ring_host + e->lay.desc_off);
}

static struct vring_avail *savail(struct rt_env *e)
{
	return (struct vring_avail *)(e->ring_host + e->lay.driver_off);
}

static struct vring_used *sused(struct rt_env *e)
{
	return (struct vring_used *)(e->ring_host + e->lay.device_off);
}

static void s_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags,
		   uint16_t next)
{
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

/* Makes `head` available at avail slot idx and publishes idx + 1. */
static void s_avail(struct rt_env *e, uint16_t idx, uint16_t head)
{
	savail(e)->ring[idx & (e->num - 1)] = head;
	__atomic_store_n(&savail(e)->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static struct vring_packed_desc *pdesc(struct rt_env *e)
{
	return (struct vring_packed_desc *)(e->ring_host + e->lay.desc_off);
}

/* A packed descriptor made available in the first lap (driver wrap counter 1). */
static void p_desc(struct vring_packed_desc *d, uint64_t addr, uint32_t len, uint16_t id,
		   uint16_t flags)
{
	d->addr = addr;
	d->len = len;
	d->id = id;
	__atomic_store_n(&d->flags, (uint16_t)(flags | (1u << VRING_PACKED_DESC_F_AVAIL)),
			 __ATOMIC_RELEASE);
}

/* Writes an indirect table of n entries at gpa from (addr, len, flags, next) quadruples. */
static void ind_table(struct rt_env *e, uint64_t gpa, const struct vring_desc *ents, unsigned n)
{
	memcpy(rt_host(e, gpa), ents, n * sizeof(*ents));
}

/* ---- Split cases ------------------------------------------------------------------------- */

#define F_NEXT VRING_DESC_F_NEXT
#define F_WRITE VRING_DESC_F_WRITE
#define F_IND VRING_DESC_F_INDIRECT

static void s_avail_jump(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 64, 0, 0);
	savail(e)->ring[0] = 0;
	__atomic_store_n(&savail(e)->idx, (uint16_t)(e->num + 1), __ATOMIC_RELEASE);
}

static void s_head_range(struct rt_env *e)
{
	s_avail(e, 0, (uint16_t)e->num);
}

static void s_next_range(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 64, F_NEXT, (uint16_t)e->num);
	s_avail(e, 0, 0);
}

static void s_loop(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 64, F_NEXT, 1);
	s_desc(&sdesc(e)[1], DATA, 64, F_NEXT, 0);
	s_avail(e, 0, 0);
}

static void s_self_loop(struct rt_env *e)
{
	s_desc(&sdesc(e)[2], DATA, 64, F_NEXT | F_WRITE, 2);
	s_avail(e, 0, 2);
}

static void s_ind_no_feature(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 32, F_IND, 0);
	s_avail(e, 0, 0);
}

static void s_ind_len_zero(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 0, F_IND, 0);
	s_avail(e, 0, 0);
}

static void s_ind_len_odd(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 24, F_IND, 0);
	s_avail(e, 0, 0);
}

static void s_ind_len_big(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 16 * 9, F_IND, 0); /* the bound is 8 entries */
	s_avail(e, 0, 0);
}

static void s_ind_nested(struct rt_env *e)
{
	struct vring_desc t[2] = { { DATA + 4096, 64, F_NEXT, 1 }, { DATA + 8192, 32, F_IND, 0 } };

	ind_table(e, DATA, t, 2);
	s_desc(&sdesc(e)[0], DATA, sizeof(t), F_IND, 0);
	s_avail(e, 0, 0);
}

static void s_ind_next(struct rt_env *e)
{
	struct vring_desc t[1] = { { DATA + 4096, 64, 0, 0 } };

	ind_table(e, DATA, t, 1);
	s_desc(&sdesc(e)[0], DATA, sizeof(t), F_IND | F_NEXT, 1);
	s_desc(&sdesc(e)[1], DATA + 8192, 64, 0, 0);
	s_avail(e, 0, 0);
}

static void s_ind_unmapped(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], UNMAPPED, 32, F_IND, 0);
	s_avail(e, 0, 0);
}

static void s_ind_wraps(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], ~0ull - 15, 32, F_IND, 0);
	s_avail(e, 0, 0);
}

static void s_ind_past_end(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], MEM_END - 16, 32, F_IND, 0);
	s_avail(e, 0, 0);
}

static void s_ind_loop(struct rt_env *e)
{
	struct vring_desc t[2] = { { DATA + 4096, 64, F_NEXT, 1 }, { DATA + 8192, 64, F_NEXT, 0 } };

	ind_table(e, DATA, t, 2);
	s_desc(&sdesc(e)[0], DATA, sizeof(t), F_IND, 0);
	s_avail(e, 0, 0);
}

static void s_ind_next_range(struct rt_env *e)
{
	struct vring_desc t[2] = { { DATA + 4096, 64, F_NEXT, 2 }, { DATA + 8192, 64, 0, 0 } };

	ind_table(e, DATA, t, 2);
	s_desc(&sdesc(e)[0], DATA, sizeof(t), F_IND, 0);
	s_avail(e, 0, 0);
}

static void s_ind_zero_buf(struct rt_env *e)
{
	struct vring_desc t[1] = { { DATA + 4096, 0, 0, 0 } };

	ind_table(e, DATA, t, 1);
	s_desc(&sdesc(e)[0], DATA, sizeof(t), F_IND, 0);
	s_avail(e, 0, 0);
}

static void s_buf_unmapped(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], UNMAPPED, 64, 0, 0);
	s_avail(e, 0, 0);
}

static void s_buf_wraps(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], ~0ull - 10, 100, 0, 0);
	s_avail(e, 0, 0);
}

static void s_buf_past_end(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], MEM_END - 10, 100, F_WRITE, 0);
	s_avail(e, 0, 0);
}

static void s_buf_zero(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 64, F_NEXT, 1);
	s_desc(&sdesc(e)[1], DATA + 64, 0, F_WRITE, 0);
	s_avail(e, 0, 0);
}

static void s_buf_order(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 64, F_WRITE | F_NEXT, 1);
	s_desc(&sdesc(e)[1], DATA + 64, 64, 0, 0);
	s_avail(e, 0, 0);
}

/* 4097 readable descriptors of 1 MiB each (the same memory): more than 4 GiB in total. */
static void s_buf_total(struct rt_env *e)
{
	unsigned i;

	for (i = 0; i < 4097; i++)
		s_desc(&sdesc(e)[i], DATA, 1u << 20, F_NEXT, (uint16_t)(i + 1));
	sdesc(e)[4096].flags = 0;
	s_avail(e, 0, 0);
}

static void s_iov_full(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 64, F_NEXT, 1);
	s_desc(&sdesc(e)[1], DATA + 64, 64, F_NEXT, 2);
	s_desc(&sdesc(e)[2], DATA + 128, 64, 0, 0);
	s_avail(e, 0, 0);
}

/* A valid chain followed by a bad one in the same batch: the batch fails as a whole. */
static void s_bad_second(struct rt_env *e)
{
	s_desc(&sdesc(e)[0], DATA, 64, 0, 0);
	s_desc(&sdesc(e)[1], DATA, 64, F_NEXT, 9);
	savail(e)->ring[0] = 0;
	savail(e)->ring[1] = 1;
	__atomic_store_n(&savail(e)->idx, 2, __ATOMIC_RELEASE);
}

/* ---- Packed cases ------------------------------------------------------------------------ */

static void p_id_range(struct rt_env *e)
{
	p_desc(&pdesc(e)[0], DATA, 64, (uint16_t)e->num, 0);
}

static void p_flags_tail(struct rt_env *e)
{
	/* The head says NEXT, the second descriptor is not available in this lap. */
	pdesc(e)[1].addr = DATA + 64;
	pdesc(e)[1].len = 64;
	pdesc(e)[1].flags = 1u << VRING_PACKED_DESC_F_USED;
	p_desc(&pdesc(e)[0], DATA, 64, 0, F_NEXT);
}

static void p_flags_used_bits(struct rt_env *e)
{
	/* AVAIL and USED both set: a used descriptor of lap 1 offered as the tail. */
	pdesc(e)[1].addr = DATA + 64;
	pdesc(e)[1].len = 64;
	pdesc(e)[1].flags = (1u << VRING_PACKED_DESC_F_AVAIL) | (1u << VRING_PACKED_DESC_F_USED);
	p_desc(&pdesc(e)[0], DATA, 64, 0, F_NEXT);
}

static void p_chain_longer(struct rt_env *e)
{
	unsigned i;

	for (i = e->num; i-- > 0;)
		p_desc(&pdesc(e)[i], DATA + 64 * i, 64, 0, F_NEXT);
}

static void p_ind_no_feature(struct rt_env *e)
{
	p_desc(&pdesc(e)[0], DATA, 32, 0, F_IND);
}

static void p_ind_in_chain(struct rt_env *e)
{
	p_desc(&pdesc(e)[1], DATA + 4096, 32, 0, F_IND);
	p_desc(&pdesc(e)[0], DATA, 64, 0, F_NEXT);
}

static void p_ind_next(struct rt_env *e)
{
	p_desc(&pdesc(e)[1], DATA + 4096, 64, 0, 0);
	p_desc(&pdesc(e)[0], DATA, 32, 0, F_IND | F_NEXT);
}

static void p_ind_nested(struct rt_env *e)
{
	struct vring_packed_desc t[2] = { { DATA + 4096, 64, 0, 0 }, { DATA + 8192, 32, 0, F_IND } };

	memcpy(rt_host(e, DATA), t, sizeof(t));
	p_desc(&pdesc(e)[0], DATA, sizeof(t), 0, F_IND);
}

static void p_ind_len_odd(struct rt_env *e)
{
	p_desc(&pdesc(e)[0], DATA, 40, 0, F_IND);
}

static void p_ind_len_big(struct rt_env *e)
{
	p_desc(&pdesc(e)[0], DATA, 16 * 9, 0, F_IND);
}

static void p_dup_id(struct rt_env *e)
{
	p_desc(&pdesc(e)[0], DATA, 64, 3, 0);
	p_desc(&pdesc(e)[1], DATA + 64, 64, 3, 0);
}

static void p_buf_zero(struct rt_env *e)
{
	p_desc(&pdesc(e)[0], DATA, 0, 0, 0);
}

static void p_buf_unmapped(struct rt_env *e)
{
	p_desc(&pdesc(e)[0], UNMAPPED, 64, 0, F_WRITE);
}

static void p_buf_order(struct rt_env *e)
{
	p_desc(&pdesc(e)[1], DATA + 64, 64, 0, 0);
	p_desc(&pdesc(e)[0], DATA, 64, 0, F_WRITE | F_NEXT);
}

/* ---- Runner ------------------------------------------------------------------------------ */

struct hcase {
	const char *name;
	uint64_t features;
	unsigned num;
	unsigned iov_cap;
	enum vh_vq_fault expect;
	enum vh_vq_fault expect_alt; /* also accepted (0: none) */
	void (*build)(struct rt_env *e);
	unsigned good_first; /* valid chains ahead of the bad one */
};

#define IND VH_VQ_F_INDIRECT_DESC

static const struct hcase cases[] = {
	{ "split avail idx jump", 0, 8, 8, VH_VQ_FAULT_AVAIL_IDX, 0, s_avail_jump, 0 },
	{ "split head >= num", 0, 8, 8, VH_VQ_FAULT_HEAD, 0, s_head_range, 0 },
	{ "split next >= num", 0, 8, 8, VH_VQ_FAULT_NEXT, 0, s_next_range, 0 },
	{ "split chain loop", 0, 8, 64, VH_VQ_FAULT_CHAIN_LEN, 0, s_loop, 0 },
	{ "split self loop", 0, 8, 64, VH_VQ_FAULT_CHAIN_LEN, 0, s_self_loop, 0 },
	{ "split indirect without feature", 0, 8, 8, VH_VQ_FAULT_INDIRECT_FEATURE, 0,
	  s_ind_no_feature, 0 },
	{ "split indirect len 0", IND, 8, 8, VH_VQ_FAULT_INDIRECT_LEN, 0, s_ind_len_zero, 0 },
	{ "split indirect len 24", IND, 8, 8, VH_VQ_FAULT_INDIRECT_LEN, 0, s_ind_len_odd, 0 },
	{ "split indirect above bound", IND, 8, 8, VH_VQ_FAULT_INDIRECT_LEN, 0, s_ind_len_big, 0 },
	{ "split nested indirect", IND, 8, 8, VH_VQ_FAULT_INDIRECT_NESTED, 0, s_ind_nested, 0 },
	{ "split indirect|next", IND, 8, 8, VH_VQ_FAULT_INDIRECT_NEXT, 0, s_ind_next, 0 },
	{ "split indirect unmapped", IND, 8, 8, VH_VQ_FAULT_INDIRECT_ADDR, 0, s_ind_unmapped, 0 },
	{ "split indirect wraps", IND, 8, 8, VH_VQ_FAULT_INDIRECT_ADDR, 0, s_ind_wraps, 0 },
	{ "split indirect past end", IND, 8, 8, VH_VQ_FAULT_INDIRECT_ADDR, 0, s_ind_past_end, 0 },
	{ "split indirect loop", IND, 8, 64, VH_VQ_FAULT_CHAIN_LEN, 0, s_ind_loop, 0 },
	{ "split indirect next >= len", IND, 8, 8, VH_VQ_FAULT_NEXT, 0, s_ind_next_range, 0 },
	{ "split indirect zero buffer", IND, 8, 8, VH_VQ_FAULT_BUF_ZERO, 0, s_ind_zero_buf, 0 },
	{ "split buffer unmapped", 0, 8, 8, VH_VQ_FAULT_BUF_ADDR, 0, s_buf_unmapped, 0 },
	{ "split buffer wraps", 0, 8, 8, VH_VQ_FAULT_BUF_ADDR, 0, s_buf_wraps, 0 },
	{ "split buffer past end", 0, 8, 8, VH_VQ_FAULT_BUF_ADDR, 0, s_buf_past_end, 0 },
	{ "split zero-length buffer", 0, 8, 8, VH_VQ_FAULT_BUF_ZERO, 0, s_buf_zero, 0 },
	{ "split readable after writable", 0, 8, 8, VH_VQ_FAULT_BUF_ORDER, 0, s_buf_order, 0 },
	{ "split chain above 4 GiB", 0, 8192, 8192, VH_VQ_FAULT_BUF_TOTAL, 0, s_buf_total, 0 },
	{ "split iovecs exhausted", 0, 8, 2, VH_VQ_FAULT_IOV_FULL, 0, s_iov_full, 0 },
	{ "split bad second chain", 0, 8, 8, VH_VQ_FAULT_NEXT, 0, s_bad_second, 1 },
	{ "packed id >= num", RT_PACKED, 6, 8, VH_VQ_FAULT_PACKED_ID, 0, p_id_range, 0 },
	{ "packed tail not available", RT_PACKED, 6, 8, VH_VQ_FAULT_PACKED_FLAGS, 0,
	  p_flags_tail, 0 },
	{ "packed tail used bits", RT_PACKED, 6, 8, VH_VQ_FAULT_PACKED_FLAGS, 0,
	  p_flags_used_bits, 0 },
	{ "packed chain longer than num", RT_PACKED, 6, 64, VH_VQ_FAULT_PACKED_FLAGS,
	  VH_VQ_FAULT_CHAIN_LEN, p_chain_longer, 0 },
	{ "packed indirect without feature", RT_PACKED, 6, 8, VH_VQ_FAULT_INDIRECT_FEATURE, 0,
	  p_ind_no_feature, 0 },
	{ "packed indirect inside chain", RT_PACKED | IND, 6, 8, VH_VQ_FAULT_INDIRECT_NEXT, 0,
	  p_ind_in_chain, 0 },
	{ "packed indirect|next", RT_PACKED | IND, 6, 8, VH_VQ_FAULT_INDIRECT_NEXT, 0,
	  p_ind_next, 0 },
	{ "packed nested indirect", RT_PACKED | IND, 6, 8, VH_VQ_FAULT_INDIRECT_NESTED, 0,
	  p_ind_nested, 0 },
	{ "packed indirect len 40", RT_PACKED | IND, 6, 8, VH_VQ_FAULT_INDIRECT_LEN, 0,
	  p_ind_len_odd, 0 },
	{ "packed indirect above bound", RT_PACKED | IND, 6, 8, VH_VQ_FAULT_INDIRECT_LEN, 0,
	  p_ind_len_big, 0 },
	{ "packed duplicate id in flight", RT_PACKED, 6, 8, VH_VQ_FAULT_PACKED_ID, 0, p_dup_id, 1 },
	{ "packed zero-length buffer", RT_PACKED, 6, 8, VH_VQ_FAULT_BUF_ZERO, 0, p_buf_zero, 0 },
	{ "packed buffer unmapped", RT_PACKED, 6, 8, VH_VQ_FAULT_BUF_ADDR, 0, p_buf_unmapped, 0 },
	{ "packed readable after writable", RT_PACKED, 6, 8, VH_VQ_FAULT_BUF_ORDER, 0,
	  p_buf_order, 0 },
};

static void run_case(const struct hcase *c, unsigned batch)
{
	struct m_baseline b = m_baseline();
	struct rt_elems el;
	struct rt_env e;
	int r;

	memset(&el, 0, sizeof(el));
	r = rt_setup_driver(&e, c->num, c->features, 0);
	if (r == 0)
		r = rt_start_device(&e, NULL, 8);
	if (r == 0)
		r = rt_elems_new(&el, batch, c->iov_cap);
	if (r < 0) {
		T_FAIL("%s: setup %d", c->name, r);
		goto out;
	}
	c->build(&e);
	/* One at a time, the valid chains come out first; in a batch they fail with it. */
	if (batch == 1)
		for (unsigned i = 0; i < c->good_first; i++)
			CHECK_EQ_M(vh_vq_pop_batch(e.vq, el.e, 1), 1, "%s good %u", c->name, i);
	r = vh_vq_pop_batch(e.vq, el.e, batch);
	CHECK_EQ_M(r, -EIO, "%s (batch %u)", c->name, batch);
	CHECK_EQ_M(vh_vq_is_broken(e.vq), -EIO, "%s", c->name);
	if (vh_vq_fault(e.vq) != c->expect && (c->expect_alt == 0 || vh_vq_fault(e.vq) != c->expect_alt))
		T_FAIL("%s: fault %s, expected %s", c->name, vh_vq_fault_name(vh_vq_fault(e.vq)),
		       vh_vq_fault_name(c->expect));
	/* Sticky: nothing works any more, nothing touches the ring. */
	CHECK_EQ_M(vh_vq_pop_batch(e.vq, el.e, batch), -EIO, "%s again", c->name);
	CHECK_EQ_M(vh_vq_push(e.vq, 0, 0), -EIO, "%s push", c->name);
	CHECK_EQ_M(vh_vq_should_notify(e.vq), -EIO, "%s notify", c->name);
	CHECK_EQ_M(vh_vq_enable_notify(e.vq), -EIO, "%s enable", c->name);
	CHECK_EQ_M(vh_vq_has_avail(e.vq), -EIO, "%s has_avail", c->name);
	CHECK_EQ_M(vh_vq_inflight(e.vq), batch == 1 ? c->good_first : 0, "%s inflight", c->name);
out:
	rt_elems_free(&el);
	rt_teardown(&e);
	CHECK_BASELINE_M(b);
}

static void test_device_hostile_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_case(&cases[i], 1);
		run_case(&cases[i], 4);
	}
}

/* ---- Valid layouts that must keep working ---------------------------------------------- */

static struct vh_vq_elem *pop_one(struct rt_env *e, struct rt_elems *el)
{
	int r = vh_vq_pop_batch(e->vq, el->e, 1);

	CHECK_EQ(r, 1);
	if (r != 1) {
		T_FAIL("fault: %s", vh_vq_fault_name(vh_vq_fault(e->vq)));
		return NULL;
	}
	return &el->e[0];
}

static void test_device_valid_tricky(void)
{
	struct m_baseline b = m_baseline();
	uint64_t bnd = rt_boundary();
	struct vh_vq_elem *el;
	struct rt_elems els;
	struct rt_env e;
	uint8_t buf[600];
	unsigned i;

	CHECK_EQ(rt_setup_driver(&e, 8, IND, 0), 0);
	CHECK_EQ(rt_start_device(&e, NULL, 8), 0);
	CHECK_EQ(rt_elems_new(&els, 1, 16), 0);

	/* A buffer straddling regions 1/2: two iovecs, right bytes, right GPAs. */
	for (i = 0; i < 600; i++)
		rt_host(&e, bnd - 300)[i] = (uint8_t)(i * 3);
	s_desc(&sdesc(&e)[0], bnd - 300, 600, 0, 0);
	s_avail(&e, 0, 0);
	el = pop_one(&e, &els);
	if (el) {
		CHECK_EQ(el->out_num, 2);
		CHECK_EQ(el->out_len, 600);
		CHECK_EQ(el->iov[0].iov_len, 300);
		CHECK_EQ(el->iov_gpa[0], bnd - 300);
		CHECK_EQ(el->iov_gpa[1], bnd);
		CHECK_EQ(vh_iov_to_buf(el->iov, el->out_num, 0, buf, sizeof(buf)), 600);
		for (i = 0; i < 600; i++)
			if (buf[i] != (uint8_t)(i * 3)) {
				T_FAIL("straddling byte %u", i);
				break;
			}
		CHECK_EQ(vh_vq_push(e.vq, el->id, 0), 0);
	}

	/* An indirect table straddling regions 1/2, misaligned by 8 bytes: copied through the
	 * bounce buffer. Two normal descriptors chained before it (allowed by the spec). */
	{
		struct vring_desc t[3] = { { DATA + 100, 10, F_NEXT, 1 },
					   { DATA + 200, 20, F_NEXT, 2 },
					   { DATA + 300, 30, F_WRITE, 0 } };

		memcpy(rt_host(&e, bnd - 24), t, sizeof(t));
		s_desc(&sdesc(&e)[1], DATA, 5, F_NEXT, 2);
		s_desc(&sdesc(&e)[2], DATA + 50, 6, F_NEXT, 3);
		s_desc(&sdesc(&e)[3], bnd - 24, sizeof(t), F_IND | F_WRITE, 0);
		s_avail(&e, 1, 1);
		el = pop_one(&e, &els);
		if (el) {
			CHECK_EQ(el->id, 1);
			CHECK_EQ(el->out_num, 4);
			CHECK_EQ(el->in_num, 1);
			CHECK_EQ(el->out_len, 5 + 6 + 10 + 20);
			CHECK_EQ(el->in_len, 30);
			CHECK(el->iov[4].iov_base == (void *)vh_memory_gpa_to_host(e.mem, DATA + 300, 30));
			CHECK_EQ(vh_vq_push(e.vq, el->id, 30), 0);
		}
	}

	/* A chain exactly as long as the ring. */
	for (i = 0; i < 8; i++)
		s_desc(&sdesc(&e)[i], DATA + 64 * i, 64, i < 7 ? F_NEXT : 0, (uint16_t)(i + 1));
	s_avail(&e, 2, 0);
	el = pop_one(&e, &els);
	if (el) {
		CHECK_EQ(el->out_num, 8);
		CHECK_EQ(el->ndesc, 8);
		CHECK_EQ(vh_vq_push(e.vq, el->id, 0), 0);
	}
	/* Used ring: three entries, ids in order, lengths as pushed. */
	CHECK_EQ(sused(&e)->idx, 3);
	CHECK_EQ(sused(&e)->ring[1].id, 1);
	CHECK_EQ(sused(&e)->ring[1].len, 30);
	CHECK_EQ(vh_vq_is_broken(e.vq), 0);

	/* Caller errors are not ring faults. */
	CHECK_EQ(vh_vq_push(e.vq, 8, 0), -EINVAL);
	CHECK_EQ(vh_vq_is_broken(e.vq), 0);

	rt_elems_free(&els);
	rt_teardown(&e);
	CHECK_BASELINE_M(b);
}

static void test_packed_push_not_in_flight(void)
{
	struct m_baseline b = m_baseline();
	struct rt_env e;

	CHECK_EQ(rt_setup(&e, 6, RT_PACKED, 0), 0);
	CHECK_EQ(vh_vq_push(e.vq, 2, 0), -EINVAL);
	CHECK_EQ(vh_vq_push(e.vq, 6, 0), -EINVAL);
	CHECK_EQ(vh_vq_is_broken(e.vq), 0);
	rt_teardown(&e);
	CHECK_BASELINE_M(b);
}

/* ---- Hostile device against the driver side ------------------------------------------- */

static void drv_add_two(struct rt_env *e)
{
	struct vh_vq_seg s[2] = { { DATA, 64 }, { DATA + 64, 64 } };
	struct vh_vq_driver_req r[2] = { { &s[0], 1, 0, 100 }, { &s[1], 0, 1, 101 } };

	CHECK_EQ(vh_vq_driver_add_batch(e->drv, r, 2), 2);
	vh_vq_driver_publish(e->drv);
}

static void drv_expect_broken(struct rt_env *e, enum vh_vq_fault f, const char *what)
{
	struct vh_vq_driver_used u[4];

	CHECK_EQ_M(vh_vq_driver_get_used(e->drv, u, 4), -EIO, "%s", what);
	CHECK_EQ_M(vh_vq_driver_is_broken(e->drv), -EIO, "%s", what);
	CHECK_EQ_M(vh_vq_driver_fault(e->drv), f, "%s", what);
	CHECK_EQ_M(vh_vq_driver_get_used(e->drv, u, 4), -EIO, "%s again", what);
	CHECK_EQ_M(vh_vq_driver_add_batch(e->drv, NULL, 0), -EIO, "%s add", what);
}

static void drv_split_case(uint64_t features, unsigned what)
{
	static const char *const names[] = { "used idx jump", "used id >= num",
					     "used id not in flight", "in-order run too long" };
	struct m_baseline b = m_baseline();
	struct vring_used *u;
	struct rt_env e;

	CHECK_EQ(rt_setup_driver(&e, 8, features, 0), 0);
	drv_add_two(&e);
	u = sused(&e);
	switch (what) {
	case 0:
		__atomic_store_n(&u->idx, 3, __ATOMIC_RELEASE); /* only 2 in flight */
		break;
	case 1:
		u->ring[0].id = 8;
		__atomic_store_n(&u->idx, 1, __ATOMIC_RELEASE);
		break;
	case 2:
		u->ring[0].id = 5;
		__atomic_store_n(&u->idx, 1, __ATOMIC_RELEASE);
		break;
	case 3:
		u->ring[0].id = 1; /* batched entry for both buffers, index moved by one */
		__atomic_store_n(&u->idx, 1, __ATOMIC_RELEASE);
		break;
	}
	drv_expect_broken(&e, what == 0 || what == 3 ? VH_VQ_FAULT_USED_IDX : VH_VQ_FAULT_USED_ID,
			  names[what % 4]);
	rt_teardown(&e);
	CHECK_BASELINE_M(b);
}

static void drv_packed_case(uint16_t id)
{
	struct m_baseline b = m_baseline();
	struct vring_packed_desc *d;
	struct rt_env e;

	CHECK_EQ(rt_setup_driver(&e, 6, RT_PACKED, 0), 0);
	drv_add_two(&e);
	d = pdesc(&e);
	d[0].id = id;
	__atomic_store_n(&d[0].flags,
			 (uint16_t)((1u << VRING_PACKED_DESC_F_AVAIL) | (1u << VRING_PACKED_DESC_F_USED)),
			 __ATOMIC_RELEASE);
	drv_expect_broken(&e, VH_VQ_FAULT_USED_ID, "packed used id");
	rt_teardown(&e);
	CHECK_BASELINE_M(b);
}

static void test_driver_hostile_device(void)
{
	unsigned w;

	for (w = 0; w < 3; w++)
		drv_split_case(0, w);
	drv_split_case(VH_VQ_F_IN_ORDER, 3);
	drv_packed_case(6);     /* >= num */
	drv_packed_case(4);     /* never made available */
}

static const struct t_test tests[] = {
	T_TEST(test_device_hostile_cases),
	T_TEST(test_device_valid_tricky),
	T_TEST(test_packed_push_not_in_flight),
	T_TEST(test_driver_hostile_device),
};

T_MAIN(tests)
