/* SPDX-License-Identifier: MIT */
/*
 * A hostile driver against a vh_server: rings written by hand with loops, out-of-range heads,
 * indexes and addresses, indirect abuse, a head or buffer id twice in flight, inconsistent
 * packed flags. Each must break the queue (NEEDS_RESET in GET_STATUS, the err eventfd
 * signalled, pops return -EIO) and nothing else: the server keeps answering, the queue serves
 * again after a stop and restart, and fds and mappings return to their baseline.
 *
 * Then hostile inflight buffers: before each start the buffer is filled with random bytes or
 * with structured garbage (right version and size, every other field random or at an edge).
 * Recovery must stay bounded and the server must survive whatever it resubmits.
 */
#include <linux/virtio_ring.h>
#include <sys/mman.h>
#include "srvtest.h"

#define HNUM 16u

static uint64_t h_rng = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
	h_rng ^= h_rng >> 12;
	h_rng ^= h_rng << 25;
	h_rng ^= h_rng >> 27;
	return h_rng * 0x2545f4914f6cdd1dull;
}

/* ---- Hand-written rings ---------------------------------------------------------------------- */

struct hcase {
	const char *name;
	int packed;
	int indirect;     /* negotiate INDIRECT_DESC */
	void (*write)(struct tdrv_q *dq);
};

static void sdesc(struct tdrv_q *dq, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		  uint16_t next)
{
	struct vring_desc *d = (struct vring_desc *)dq->a.desc + i;

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

/* Publishes heads[0..n) and moves the avail index by idx_step (n when 0). */
static void spublish(struct tdrv_q *dq, const uint16_t *heads, unsigned n, uint16_t idx_step)
{
	struct vring_avail *av = dq->a.driver;

	for (unsigned i = 0; i < n; i++)
		av->ring[i] = heads[i];
	__atomic_store_n(&av->idx, idx_step ? idx_step : (uint16_t)n, __ATOMIC_RELEASE);
}

static uint64_t dgpa(const struct tdrv_q *dq, unsigned off)
{
	return dq->data_gpa + off;
}

static void s_loop(struct tdrv_q *dq)
{
	sdesc(dq, 0, dgpa(dq, 0), 64, VRING_DESC_F_NEXT, 1);
	sdesc(dq, 1, dgpa(dq, 64), 64, VRING_DESC_F_NEXT, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_head_range(struct tdrv_q *dq)
{
	spublish(dq, (uint16_t[]){ HNUM + 3 }, 1, 0);
}

static void s_avail_jump(struct tdrv_q *dq)
{
	sdesc(dq, 0, dgpa(dq, 0), 64, 0, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, HNUM + 1);
}

static void s_addr_out(struct tdrv_q *dq)
{
	sdesc(dq, 0, 1ull << 45, 64, 0, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_addr_wrap(struct tdrv_q *dq)
{
	sdesc(dq, 0, ~0ull - 10, 64, VRING_DESC_F_WRITE, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_next_range(struct tdrv_q *dq)
{
	sdesc(dq, 0, dgpa(dq, 0), 64, VRING_DESC_F_NEXT, 40);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_zero_len(struct tdrv_q *dq)
{
	sdesc(dq, 0, dgpa(dq, 0), 0, 0, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_order(struct tdrv_q *dq)
{
	sdesc(dq, 0, dgpa(dq, 0), 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	sdesc(dq, 1, dgpa(dq, 64), 64, 0, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_dup_head(struct tdrv_q *dq)
{
	sdesc(dq, 0, dgpa(dq, 0), 64, 0, 0);
	spublish(dq, (uint16_t[]){ 0, 0 }, 2, 0);
}

/* Indirect tables live at data + 8192. */
static struct vring_desc *itab(struct tdrv_q *dq)
{
	return (struct vring_desc *)(void *)(dq->data + 8192);
}

static void s_ind_nested(struct tdrv_q *dq)
{
	struct vring_desc *t = itab(dq);

	t[0] = (struct vring_desc){ dgpa(dq, 0), 64, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ dgpa(dq, 8192 + 256), 32, VRING_DESC_F_INDIRECT, 0 };
	sdesc(dq, 0, dgpa(dq, 8192), 32, VRING_DESC_F_INDIRECT, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_ind_len(struct tdrv_q *dq)
{
	sdesc(dq, 0, dgpa(dq, 8192), 24, VRING_DESC_F_INDIRECT, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_ind_huge(struct tdrv_q *dq)
{
	/* More entries than the configured bound (max_iov) allows. */
	sdesc(dq, 0, dgpa(dq, 8192), 16u * 4096u, VRING_DESC_F_INDIRECT, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_ind_addr(struct tdrv_q *dq)
{
	sdesc(dq, 0, 1ull << 45, 64, VRING_DESC_F_INDIRECT, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_ind_next(struct tdrv_q *dq)
{
	itab(dq)[0] = (struct vring_desc){ dgpa(dq, 0), 64, 0, 0 };
	sdesc(dq, 0, dgpa(dq, 8192), 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	sdesc(dq, 1, dgpa(dq, 64), 64, 0, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_ind_loop(struct tdrv_q *dq)
{
	struct vring_desc *t = itab(dq);

	t[0] = (struct vring_desc){ dgpa(dq, 0), 64, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ dgpa(dq, 64), 64, VRING_DESC_F_NEXT, 0 };
	sdesc(dq, 0, dgpa(dq, 8192), 32, VRING_DESC_F_INDIRECT, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

static void s_ind_nofeature(struct tdrv_q *dq)
{
	itab(dq)[0] = (struct vring_desc){ dgpa(dq, 0), 64, 0, 0 };
	sdesc(dq, 0, dgpa(dq, 8192), 16, VRING_DESC_F_INDIRECT, 0);
	spublish(dq, (uint16_t[]){ 0 }, 1, 0);
}

#define PF_AVAIL ((uint16_t)(1u << VRING_PACKED_DESC_F_AVAIL))
#define PF_USED ((uint16_t)(1u << VRING_PACKED_DESC_F_USED))

static void pdesc(struct tdrv_q *dq, unsigned i, uint64_t addr, uint32_t len, uint16_t id,
		  uint16_t flags)
{
	struct vring_packed_desc *d = (struct vring_packed_desc *)dq->a.desc + i;

	d->addr = addr;
	d->len = len;
	d->id = id;
	/* Flags last, released: the head becomes visible with its contents. */
	__atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
}

static void p_chain_flags(struct tdrv_q *dq)
{
	/* The tail is marked for the next lap (AVAIL 0, USED 1): not available with its head. */
	pdesc(dq, 1, dgpa(dq, 64), 64, 0, PF_USED);
	pdesc(dq, 0, dgpa(dq, 0), 64, 0, PF_AVAIL | VRING_DESC_F_NEXT);
}

static void p_id_range(struct tdrv_q *dq)
{
	pdesc(dq, 0, dgpa(dq, 0), 64, HNUM + 1, PF_AVAIL);
}

static void p_ind_chain(struct tdrv_q *dq)
{
	itab(dq)[0] = (struct vring_desc){ dgpa(dq, 0), 64, 0, 0 };
	pdesc(dq, 1, dgpa(dq, 64), 64, 0, PF_AVAIL);
	pdesc(dq, 0, dgpa(dq, 8192), 16, 0, PF_AVAIL | VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT);
}

static void p_addr_out(struct tdrv_q *dq)
{
	pdesc(dq, 0, 1ull << 45, 64, 0, PF_AVAIL | VRING_DESC_F_WRITE);
}

static void p_dup_id(struct tdrv_q *dq)
{
	pdesc(dq, 1, dgpa(dq, 64), 64, 3, PF_AVAIL);
	pdesc(dq, 0, dgpa(dq, 0), 64, 3, PF_AVAIL);
}

static void p_endless(struct tdrv_q *dq)
{
	/* Every descriptor says NEXT: the chain would go round the ring. */
	for (unsigned i = HNUM; i-- > 0;)
		pdesc(dq, i, dgpa(dq, 64 * i), 64, 0, PF_AVAIL | VRING_DESC_F_NEXT);
}

static void p_ind_nested(struct tdrv_q *dq)
{
	/* Packed indirect tables hold packed descriptors: {addr, len, id, flags}. */
	struct vring_packed_desc *t = (struct vring_packed_desc *)(void *)(dq->data + 8192);

	t[0] = (struct vring_packed_desc){ dgpa(dq, 0), 64, 0, 0 };
	t[1] = (struct vring_packed_desc){ dgpa(dq, 8192), 32, 0, VRING_DESC_F_INDIRECT };
	pdesc(dq, 0, dgpa(dq, 8192), 32, 0, PF_AVAIL | VRING_DESC_F_INDIRECT);
}

static const struct hcase hcases[] = {
	{ "split loop", 0, 0, s_loop },
	{ "split head out of range", 0, 0, s_head_range },
	{ "split avail index jump", 0, 0, s_avail_jump },
	{ "split address outside memory", 0, 0, s_addr_out },
	{ "split address wraps", 0, 0, s_addr_wrap },
	{ "split next out of range", 0, 0, s_next_range },
	{ "split zero length", 0, 0, s_zero_len },
	{ "split readable after writable", 0, 0, s_order },
	{ "split head twice in flight", 0, 0, s_dup_head },
	{ "split indirect nested", 0, 1, s_ind_nested },
	{ "split indirect length", 0, 1, s_ind_len },
	{ "split indirect too long", 0, 1, s_ind_huge },
	{ "split indirect outside memory", 0, 1, s_ind_addr },
	{ "split indirect with next", 0, 1, s_ind_next },
	{ "split indirect loop", 0, 1, s_ind_loop },
	{ "split indirect not negotiated", 0, 0, s_ind_nofeature },
	{ "packed chain flags", 1, 0, p_chain_flags },
	{ "packed id out of range", 1, 0, p_id_range },
	{ "packed indirect in a chain", 1, 1, p_ind_chain },
	{ "packed address outside memory", 1, 0, p_addr_out },
	{ "packed id twice in flight", 1, 0, p_dup_id },
	{ "packed endless chain", 1, 0, p_endless },
	{ "packed indirect nested", 1, 1, p_ind_nested },
};

static void one_case(const struct hcase *c)
{
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1, .max_iov = 64 };
	struct tdrv_cfg dc = { .nq = 1, .num = HNUM, .packed = c->packed, .indirect = c->indirect,
			      .event_idx = 1 };
	struct vh_server_queue_stats st;
	struct tsrv t;
	struct tdrv dr;
	uint8_t status = 0;
	uint64_t f;
	uint32_t v;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	c->write(&dr.q[0]);
	tdrv_kick(&dr.q[0]);
	/* The err eventfd says so, and NEEDS_RESET shows in the status. */
	CHECK_EQ_M(t_wait_readable(dr.q[0].err, T_WAIT_MS), 1, "%s: err fd", c->name);
	CHECK_EQ(t_read_counter(dr.q[0].err) >= 1, 1);
	CHECK_EQ(vh_frontend_get_status(dr.fe, &status), 0);
	CHECK_EQ_M(status & 0x40, 0x40, "%s: status 0x%x", c->name, status);
	vh_server_queue_get_stats(vh_server_get_queue(t.s, 0), &st);
	CHECK_EQ_M(st.faults, 1, "%s", c->name);
	CHECK_EQ(vh_server_queue_is_broken(vh_server_get_queue(t.s, 0)), -EIO);
	/* The server itself is fine: it answers, and the queue stops and starts again. */
	CHECK_EQ(vh_frontend_get_features(dr.fe, &f), 0);
	CHECK_EQ(vh_frontend_get_vring_base(dr.fe, 0, &v), 0);
	CHECK_EQ(vh_frontend_set_status(dr.fe, 0), 0);
	CHECK_EQ(vh_frontend_get_status(dr.fe, &status), 0);
	CHECK_EQ(status, 0);
	tdrv_q_ring(&dr, &dr.q[0]); /* a clean ring from position 0 */
	CHECK_EQ(tdrv_start_ring(&dr, 0, 0), 0);
	CHECK_EQ(vh_server_queue_is_broken(vh_server_get_queue(t.s, 0)), 0);
	CHECK_EQ_M(tdrv_traffic(&dr, 0, 50, 8), 0, "%s: traffic after restart", c->name);
	CHECK_EQ(t.dev.q[0].bad, 0);
	t_teardown(&t, &dr);
}

static void test_hostile_rings(void)
{
	struct t_baseline b = t_baseline();

	for (unsigned i = 0; i < NELEM(hcases); i++) {
		int before = t_failures;

		one_case(&hcases[i]);
		if (t_failures != before)
			fprintf(stderr, "  case failed: %s\n", hcases[i].name);
	}
	CHECK_BASELINE(b);
}

/* ---- Hostile inflight buffers ------------------------------------------------------------------ */

/* Values at the edges of a u16 field for a ring of num entries. */
static uint16_t edge16(unsigned num)
{
	static const uint16_t e[] = { 0, 1, 2, 0x7fff, 0x8000, 0xffff };

	switch (rnd() % 4) {
	case 0:
		return e[rnd() % NELEM(e)];
	case 1:
		return (uint16_t)(num - 1 + rnd() % 3);
	default:
		return (uint16_t)(rnd() % (num + 1));
	}
}

static void garbage_split(uint8_t *p, unsigned num)
{
	uint16_t *h = (uint16_t *)(void *)(p + 8);

	h[0] = 1;                 /* version */
	h[1] = (uint16_t)num;     /* desc_num */
	h[2] = edge16(num);       /* last_batch_head */
	/* used_idx: a fresh ring's used index is 0, so values just below 0 are "a batch behind" */
	h[3] = rnd() % 4 ? (uint16_t)(0u - rnd() % (num + 2)) : (uint16_t)rnd();
	for (unsigned i = 0; i < num; i++) {
		uint8_t *d = p + 16 + 16 * i;
		uint16_t next = edge16(num);
		uint64_t counter = rnd() % 3 ? rnd() % 64 : rnd();

		d[0] = (uint8_t)(rnd() % 3 ? rnd() % 2 : rnd());
		memcpy(d + 6, &next, 2);
		memcpy(d + 8, &counter, 8);
	}
}

static void garbage_packed(uint8_t *p, unsigned num, struct tdrv_q *dq)
{
	uint16_t *h = (uint16_t *)(void *)(p + 8);

	h[0] = 1;
	h[1] = (uint16_t)num;
	for (int i = 2; i < 6; i++)
		h[i] = rnd() % 4 ? (uint16_t)(rnd() % (num + (i < 4))) : edge16(num);
	p[20] = (uint8_t)(rnd() % 4 ? 1 : rnd() % 3);
	p[21] = (uint8_t)(rnd() % 4 ? 1 : rnd() % 3);
	for (unsigned i = 0; i < num; i++) {
		uint8_t *d = p + 32 + 32 * i;
		uint16_t next = edge16(num), last = edge16(num), n = edge16(num);
		uint16_t id = edge16(num), flags = (uint16_t)rnd();
		uint32_t len = rnd() % 2 ? (uint32_t)(rnd() % 8192) : (uint32_t)rnd();
		uint64_t counter = rnd() % 64;
		uint64_t addr = rnd() % 2 ? dq->data_gpa + rnd() % 65536 : rnd();

		d[0] = (uint8_t)(rnd() % 3 ? rnd() % 2 : rnd());
		memcpy(d + 2, &next, 2);
		memcpy(d + 4, &last, 2);
		memcpy(d + 6, &n, 2);
		memcpy(d + 8, &counter, 8);
		memcpy(d + 16, &id, 2);
		memcpy(d + 18, &flags, 2);
		memcpy(d + 20, &len, 4);
		memcpy(d + 24, &addr, 8);
	}
}

/* A well-formed split region with requests in flight (heads that hold real chains), then a few
 * bytes changed. */
static void valid_split(uint8_t *p, unsigned num, const struct tdrv_q *dq)
{
	uint16_t *h = (uint16_t *)(void *)(p + 8);
	const struct vring_avail *av = dq->a.driver;

	memset(p, 0, 16 + 16 * num);
	h[0] = 1;
	h[1] = (uint16_t)num;
	for (unsigned i = 0; i < 6; i++) {
		uint16_t head = av->ring[i] % num;
		uint64_t counter = 1 + rnd() % 100;

		p[16 + 16 * head] = 1;
		memcpy(p + 16 + 16 * head + 8, &counter, 8);
	}
}

/* A well-formed packed region: chains copied from the ring as the pop records them. */
static void valid_packed(uint8_t *p, unsigned num, const struct tdrv_q *dq)
{
	const struct vring_packed_desc *ring = dq->a.desc;
	uint16_t *h = (uint16_t *)(void *)(p + 8);
	unsigned e = 0, pos = 0;

	memset(p, 0, 32 + 32 * num);
	for (unsigned i = 0; i < num; i++) {
		uint16_t next = (uint16_t)(i + 1);

		memcpy(p + 32 + 32 * i + 2, &next, 2);
	}
	for (unsigned c = 0; c < 6 && pos < num; c++) {
		unsigned head = e, n = 0;
		uint64_t counter = 1 + rnd() % 100;

		do {
			uint8_t *d = p + 32 + 32 * e;

			memcpy(d + 16, &ring[pos].id, 2);
			memcpy(d + 18, &ring[pos].flags, 2);
			memcpy(d + 20, &ring[pos].len, 4);
			memcpy(d + 24, &ring[pos].addr, 8);
			n++;
			e++;
		} while ((ring[pos++].flags & VRING_DESC_F_NEXT) && pos < num);
		p[32 + 32 * head] = 1;
		{
			uint16_t last = (uint16_t)(e - 1), cnt = (uint16_t)n;

			memcpy(p + 32 + 32 * head + 4, &last, 2);
			memcpy(p + 32 + 32 * head + 6, &cnt, 2);
			memcpy(p + 32 + 32 * head + 8, &counter, 8);
		}
	}
	h[0] = 1;
	h[1] = (uint16_t)num;
	h[2] = h[3] = (uint16_t)e; /* free_head, old_free_head */
	p[20] = p[21] = 1;         /* wrap counters */
}

static void mutate(uint8_t *p, size_t len)
{
	unsigned n = (unsigned)(rnd() % 4);

	for (unsigned i = 0; i < n; i++)
		p[rnd() % len] = (uint8_t)rnd();
}

static void hostile_inflight(int packed, unsigned iterations)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 2, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 2, .num = HNUM, .packed = packed, .event_idx = 1 };
	size_t per = packed ? 32 + 32 * HNUM : 16 + 16 * HNUM;
	struct tdrv dr;
	uint8_t *map = MAP_FAILED;

	tdrv_init(&dr, &dc);
	for (unsigned it = 0; it < iterations; it++) {
		struct tsrv t;
		uint8_t status = 0;
		uint32_t v;

		CHECK_EQ(tsrv_create(&t, &sc), 0);
		CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
		tsrv_run(&t);
		/* Pre-fill some real requests so resubmitted heads have chains to walk. */
		for (unsigned q = 0; q < 2; q++) {
			tdrv_q_ring(&dr, &dr.q[q]);
			tdrv_submit(&dr.q[q], 6);
		}
		if (it == 0) {
			CHECK_EQ(tdrv_handshake(&dr, TDRV_INFLIGHT | TDRV_NO_RINGS), 0);
			map = mmap(NULL, dr.inf.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
				   dr.inflight_fd, (off_t)dr.inf.mmap_offset);
			CHECK(map != MAP_FAILED);
			if (map == MAP_FAILED)
				break;
		}
		/* Random bytes, structured garbage, or a valid region with a few bytes changed. */
		for (unsigned q = 0; q < 2; q++) {
			uint8_t *p = map + q * per;

			if (it % 3 == 0) {
				for (size_t k = 0; k < per; k++)
					p[k] = (uint8_t)rnd();
			} else if (it % 3 == 1) {
				if (packed)
					garbage_packed(p, HNUM, &dr.q[q]);
				else
					garbage_split(p, HNUM);
			} else {
				if (packed)
					valid_packed(p, HNUM, &dr.q[q]);
				else
					valid_split(p, HNUM, &dr.q[q]);
				mutate(p, per);
			}
		}
		if (it != 0)
			CHECK_EQ(tdrv_handshake(&dr, TDRV_INFLIGHT | TDRV_NO_RINGS), 0);
		for (unsigned q = 0; q < 2; q++)
			(void)tdrv_start_ring(&dr, q, 0);
		for (unsigned q = 0; q < 2; q++)
			tdrv_kick(&dr.q[q]);
		/* Whatever was resubmitted, the server answers and stops the queues. */
		t_sleep_ms(2);
		CHECK_EQ(vh_frontend_get_status(dr.fe, &status), 0);
		for (unsigned q = 0; q < 2; q++)
			CHECK_EQ(vh_frontend_get_vring_base(dr.fe, q, &v), 0);
		CHECK_EQ(tsrv_join(&t), 0);
		vh_frontend_free(dr.fe);
		dr.fe = NULL;
		tsrv_destroy(&t);
	}
	/* And a clean buffer still works: recovery from a zeroed region starts afresh. */
	if (map != MAP_FAILED) {
		struct tsrv t;

		memset(map, 0, 2 * per);
		CHECK_EQ(tsrv_create(&t, &sc), 0);
		CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
		tsrv_run(&t);
		for (unsigned q = 0; q < 2; q++)
			tdrv_q_ring(&dr, &dr.q[q]);
		CHECK_EQ(tdrv_handshake(&dr, TDRV_INFLIGHT), 0);
		for (unsigned q = 0; q < 2; q++) {
			dr.q[q].bad = 0;
			CHECK_EQ(tdrv_traffic(&dr, q, 100, 8), 0);
		}
		CHECK_EQ(tsrv_join(&t), 0);
		vh_frontend_free(dr.fe);
		dr.fe = NULL;
		tsrv_destroy(&t);
		munmap(map, dr.inf.mmap_size);
	}
	tdrv_fini(&dr);
	CHECK_BASELINE(b);
}

static void test_hostile_inflight_split(void)
{
	hostile_inflight(0, 150);
}

static void test_hostile_inflight_packed(void)
{
	hostile_inflight(1, 150);
}

/* ---- Inflight buffers the server refuses --------------------------------------------------- */

static void test_inflight_refused(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 2, .nthreads = 1, .max_queue_size = 1024 };
	struct tdrv_cfg dc = { .nq = 2, .num = HNUM };
	struct vh_inflight inf, got;
	struct tsrv t;
	struct tdrv dr;
	int fd = -1, plain;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, TDRV_NO_RINGS), 0);
	/* More queues or a larger queue than the server has: refused (mmap_size 0 answer). */
	CHECK_EQ(vh_frontend_get_inflight_fd(dr.fe, 3, HNUM, &got, &fd), 0);
	CHECK_EQ(fd, -1);
	CHECK_EQ(got.mmap_size, 0);
	CHECK_EQ(vh_frontend_get_inflight_fd(dr.fe, 2, 2048, &got, &fd), 0);
	CHECK_EQ(fd, -1);
	CHECK_EQ(vh_frontend_get_inflight_fd(dr.fe, 2, HNUM, &got, &fd), 0);
	CHECK(fd >= 0);
	CHECK_EQ(got.mmap_size, 4096);
	/* Too small for what it claims to hold. */
	inf = got;
	inf.queue_size = 2000;
	inf.mmap_size = 4096;
	CHECK_EQ(vh_frontend_set_inflight_fd(dr.fe, &inf, fd), -EIO);
	/* Not sealed against shrinking: refused (it could SIGBUS us). */
	plain = t_memfd("plain-inflight", 4096);
	CHECK_EQ(vh_frontend_set_inflight_fd(dr.fe, &got, plain), -EIO);
	close(plain);
	/* A huge file is fine: only what the queues need is mapped. */
	CHECK_EQ(vh_frontend_set_inflight_fd(dr.fe, &got, fd), 0);
	/* Not while a ring runs. */
	CHECK_EQ(tdrv_start_ring(&dr, 0, 0), 0);
	CHECK_EQ(vh_frontend_set_inflight_fd(dr.fe, &got, fd), -EIO);
	close(fd);
	t_teardown(&t, &dr);
	CHECK_BASELINE(b);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_hostile_rings),
		T_TEST(test_inflight_refused),
		T_TEST(test_hostile_inflight_split),
		T_TEST(test_hostile_inflight_packed),
	};

	t_warm_threads();
	return t_run(tests, NELEM(tests), argc, argv);
}
