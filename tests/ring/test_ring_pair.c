/* SPDX-License-Identifier: MIT */
/*
 * Device side against driver side, in one process on memfd guest memory, for every layout and
 * feature combination (split/packed x indirect x EVENT_IDX x IN_ORDER), batched and single.
 *
 * Each request carries a numbered, patterned payload in 1..3 device-readable segments and
 * 1..2 device-writable segments; some buffers straddle a region boundary. The device checks
 * the payload byte for byte, writes a response derived from it (sometimes shorter than the
 * writable space) and completes requests out of order unless IN_ORDER is negotiated. The
 * driver checks the length and every response byte, and that bytes past the length were not
 * written.
 *
 * Notifications are simulated strictly: the device only runs after a kick (or while awake),
 * the driver only collects after an interrupt, and each side goes to sleep through the
 * ring's re-arm protocol. A lost kick or interrupt therefore stalls the run and fails it.
 * Runs of more than 65536 requests wrap the 16-bit indexes and the packed wrap counters many
 * times.
 */
#include "ringtest.h"

#define SLOT_OUT 512u
#define SLOT_IN 512u
#define SLOT_SIZE (SLOT_OUT + SLOT_IN)
#define MAX_BATCH 8u
#define ELEM_IOV 16u
#define CANARY 0xc3u

struct pending {
	uint16_t id;
	uint32_t req;
	uint32_t wlen;
};

struct run {
	struct rt_env env;
	unsigned nslots;
	uint64_t data_gpa;
	uint32_t *req_slot;    /* request -> slot */
	uint32_t *req_wlen;    /* request -> bytes the device wrote (oracle) */
	uint32_t *req_inlen;   /* request -> writable bytes offered */
	uint32_t *free_slots;
	unsigned nfree;
	struct pending *pend;
	unsigned npend;
	struct rt_elems el;
	int single;
	int in_order;
	uint32_t total;
	uint32_t next_req, completed;
	unsigned kicks, irqs;
};

static uint8_t out_byte(uint32_t req, unsigned j)
{
	return (uint8_t)(req * 131u + j * 7u + 3u);
}

static uint8_t in_byte(uint32_t req, unsigned j)
{
	return (uint8_t)(out_byte(req, j % 8u) ^ 0x5au ^ j);
}

static uint64_t slot_gpa(const struct run *r, unsigned slot)
{
	return r->data_gpa + (uint64_t)slot * SLOT_SIZE;
}

/* Splits [gpa, gpa + len) into k segments. */
static unsigned split_segs(struct vh_vq_seg *segs, uint64_t gpa, uint32_t len, unsigned k)
{
	unsigned i, n = 0;

	if (k > len)
		k = len;
	for (i = 0; i < k; i++) {
		uint32_t l = i + 1 == k ? len : (uint32_t)(1 + rnd_below(len - (k - i - 1)));

		segs[n].gpa = gpa;
		segs[n].len = l;
		n++;
		gpa += l;
		len -= l;
	}
	return n;
}

/* Driver: add up to a random number of requests. */
static void driver_add(struct run *r)
{
	struct vh_vq_seg segs[MAX_BATCH][5];
	struct vh_vq_driver_req reqs[MAX_BATCH];
	unsigned want = r->single ? 1 : 1 + (unsigned)rnd_below(MAX_BATCH), n = 0, i;
	int got;

	while (n < want && r->nfree > 0 && r->next_req + n < r->total) {
		uint32_t req = r->next_req + n;
		unsigned slot = r->free_slots[--r->nfree];
		uint64_t g = slot_gpa(r, slot);
		uint8_t *h = rt_host(&r->env, g);
		uint32_t olen = 8 + (uint32_t)rnd_below(SLOT_OUT - 8 + 1);
		uint32_t ilen = 1 + (uint32_t)rnd_below(SLOT_IN);
		unsigned j, no, ni;

		for (j = 0; j < olen; j++)
			h[j] = out_byte(req, j);
		memcpy(h, &req, sizeof(req)); /* the request number leads the payload */
		memset(h + SLOT_OUT, CANARY, SLOT_IN);
		no = split_segs(segs[n], g, olen, 1 + (unsigned)rnd_below(3));
		ni = split_segs(segs[n] + no, g + SLOT_OUT, ilen, 1 + (unsigned)rnd_below(2));
		reqs[n].segs = segs[n];
		reqs[n].out_num = (uint16_t)no;
		reqs[n].in_num = (uint16_t)ni;
		reqs[n].token = req;
		r->req_slot[req] = slot;
		r->req_inlen[req] = ilen;
		n++;
	}
	if (n == 0)
		return;
	got = vh_vq_driver_add_batch(r->env.drv, reqs, n);
	if (got == -ENOSPC)
		got = 0;
	CHECK(got >= 0);
	if (got < 0)
		got = 0;
	/* Give back the slots of requests that did not fit (taken last, returned first). */
	for (i = n; i > (unsigned)got; i--)
		r->free_slots[r->nfree++] = r->req_slot[r->next_req + i - 1];
	r->next_req += (uint32_t)got;
	if (got > 0) {
		vh_vq_driver_publish(r->env.drv);
		if (vh_vq_driver_should_kick(r->env.drv))
			r->kicks++;
	}
}

/* Device: check one popped element's payload and write the response. */
static void device_serve(struct run *r, const struct vh_vq_elem *e)
{
	uint8_t buf[SLOT_OUT], resp[SLOT_IN];
	uint32_t req, j, wlen;
	size_t got;

	CHECK(e->out_len >= 8 && e->out_len <= SLOT_OUT);
	got = vh_iov_to_buf(e->iov, e->out_num, 0, buf, sizeof(buf));
	CHECK_EQ(got, e->out_len);
	memcpy(&req, buf, sizeof(req));
	if (req >= r->total) {
		T_FAIL("request number %u out of range", req);
		return;
	}
	for (j = 8; j < got; j++)
		if (buf[j] != out_byte(req, j)) {
			T_FAIL("request %u payload byte %u", req, j);
			break;
		}
	CHECK_EQ(e->in_len, r->req_inlen[req]);
	/* Mostly fill the whole writable space (exercises the IN_ORDER batched form). */
	wlen = (uint32_t)e->in_len;
	if (rnd_below(4) == 0)
		wlen = (uint32_t)rnd_below(e->in_len + 1);
	for (j = 0; j < wlen; j++)
		resp[j] = in_byte(req, j);
	CHECK_EQ(vh_buf_to_iov(e->iov + e->out_num, e->in_num, 0, resp, wlen), wlen);
	r->req_wlen[req] = wlen;
	r->pend[r->npend].id = e->id;
	r->pend[r->npend].req = req;
	r->pend[r->npend].wlen = wlen;
	r->npend++;
}

/* Device: pop what is available. Returns the number popped, 0 when empty, -1 on error. */
static int device_pop(struct run *r)
{
	unsigned max = r->single ? 1 : 1 + (unsigned)rnd_below(MAX_BATCH), i;
	int n = vh_vq_pop_batch(r->env.vq, r->el.e, max);

	if (n < 0) {
		T_FAIL("pop: %d (%s)", n, vh_vq_fault_name(vh_vq_fault(r->env.vq)));
		return -1;
	}
	for (i = 0; i < (unsigned)n; i++)
		device_serve(r, &r->el.e[i]);
	return n;
}

/* Device: complete some pending requests (any order unless IN_ORDER). Returns 1 if the
 * driver should get an interrupt. */
static int device_complete(struct run *r)
{
	struct vh_vq_used used[MAX_BATCH * 4];
	unsigned n, i;
	int notify = 0;

	if (r->npend == 0)
		return 0;
	n = 1 + (unsigned)rnd_below(r->npend < MAX_BATCH * 4 ? r->npend : MAX_BATCH * 4);
	for (i = 0; i < n; i++) {
		unsigned pick = r->in_order ? 0 : (unsigned)rnd_below(r->npend);

		used[i].id = r->pend[pick].id;
		used[i].len = r->pend[pick].wlen;
		memmove(&r->pend[pick], &r->pend[pick + 1],
			(r->npend - pick - 1) * sizeof(r->pend[0]));
		r->npend--;
	}
	if (r->single) {
		for (i = 0; i < n; i++) {
			CHECK_EQ(vh_vq_push(r->env.vq, used[i].id, used[i].len), 0);
			if (vh_vq_should_notify(r->env.vq) > 0)
				notify = 1;
		}
	} else {
		CHECK_EQ(vh_vq_push_batch(r->env.vq, used, n), 0);
		notify = vh_vq_should_notify(r->env.vq) > 0;
	}
	return notify;
}

static void driver_check(struct run *r, const struct vh_vq_driver_used *u)
{
	uint32_t req = (uint32_t)u->token, j;
	const uint8_t *h;

	if (req >= r->next_req) {
		T_FAIL("completion for request %u never added", req);
		return;
	}
	CHECK_EQ(u->len, r->req_wlen[req]);
	h = rt_host(&r->env, slot_gpa(r, r->req_slot[req])) + SLOT_OUT;
	for (j = 0; j < r->req_wlen[req]; j++)
		if (h[j] != in_byte(req, j)) {
			T_FAIL("request %u response byte %u: %#x", req, j, h[j]);
			break;
		}
	for (j = r->req_wlen[req]; j < r->req_inlen[req]; j++)
		if (h[j] != CANARY) {
			T_FAIL("request %u byte %u past the length was written", req, j);
			break;
		}
	r->free_slots[r->nfree++] = r->req_slot[req];
	r->req_wlen[req] = UINT32_MAX; /* a second completion would fail the length check */
	r->completed++;
}

/* Driver: interrupt handler. Collect with interrupts off, re-enable, collect again if the
 * re-enable found more. */
static void driver_collect(struct run *r)
{
	struct vh_vq_driver_used u[MAX_BATCH];
	unsigned i;

	vh_vq_driver_disable_cb(r->env.drv);
	for (;;) {
		int n = vh_vq_driver_get_used(r->env.drv, u,
					      r->single ? 1 : 1 + (unsigned)rnd_below(MAX_BATCH));

		if (n < 0) {
			T_FAIL("get_used: %d (%s)", n,
			       vh_vq_fault_name(vh_vq_driver_fault(r->env.drv)));
			return;
		}
		for (i = 0; i < (unsigned)n; i++)
			driver_check(r, &u[i]);
		if (n == 0 && vh_vq_driver_enable_cb(r->env.drv) == 0)
			return;
	}
}

static void run_config(const char *name, uint64_t features, unsigned num, unsigned ind_max,
		       uint32_t total, int single)
{
	struct m_baseline b = m_baseline();
	struct run r;
	int awake = 0, kicked = 0, irq = 0, explicit_mode = 0, failures = t_failures;
	unsigned idle = 0, i;
	uint64_t iter = 0;

	memset(&r, 0, sizeof(r));
	t_rng_state = 0x1234567ull + features + num + single;
	r.single = single;
	r.in_order = (features & VH_VQ_F_IN_ORDER) != 0;
	r.total = total;
	if (rt_setup(&r.env, num, features, ind_max) < 0) {
		T_FAIL("%s: setup", name);
		rt_teardown(&r.env);
		return;
	}
	r.nslots = num;
	/* Half the slots before the region 1/2 boundary, half after: some straddle it. */
	r.data_gpa = rt_boundary() - (uint64_t)(r.nslots / 2) * SLOT_SIZE - 100;
	r.req_slot = calloc(total, sizeof(uint32_t));
	r.req_wlen = calloc(total, sizeof(uint32_t));
	r.req_inlen = calloc(total, sizeof(uint32_t));
	r.free_slots = calloc(r.nslots, sizeof(uint32_t));
	r.pend = calloc(num, sizeof(*r.pend));
	if (!r.req_slot || !r.req_wlen || !r.req_inlen || !r.free_slots || !r.pend ||
	    rt_elems_new(&r.el, MAX_BATCH, ELEM_IOV) < 0) {
		T_FAIL("%s: alloc", name);
		goto out;
	}
	for (i = 0; i < r.nslots; i++)
		r.free_slots[r.nfree++] = r.nslots - 1 - i;

	while (r.completed < total && t_failures == failures) {
		uint32_t before = r.next_req + r.completed;
		unsigned before_pend = r.npend, kicks = r.kicks;

		iter++;
		driver_add(&r);
		if (r.kicks != kicks)
			kicked = 1;
		if (kicked) {
			kicked = 0;
			if (!awake) {
				awake = 1;
				/* Half the wake-ups poll with kicks explicitly disabled. */
				explicit_mode = (int)rnd_below(2);
				if (explicit_mode)
					vh_vq_disable_notify(r.env.vq);
			}
		}
		if (awake) {
			int n = device_pop(&r);

			if (n < 0)
				break;
			if (n == 0) {
				if (explicit_mode) {
					int more = vh_vq_enable_notify(r.env.vq);

					CHECK(more >= 0);
					if (more > 0)
						vh_vq_disable_notify(r.env.vq);
					else
						awake = 0;
				} else {
					awake = 0; /* the empty pop re-armed the kick */
				}
			}
		}
		if (rnd_below(2) && device_complete(&r)) {
			r.irqs++;
			irq = 1;
		}
		if (irq) {
			irq = 0;
			driver_collect(&r);
		}
		if (r.next_req + r.completed == before && r.npend == before_pend && !awake) {
			if (++idle > 1000) {
				T_FAIL("%s: stalled at request %u, %u completed, %u pending "
				       "(lost notification?)",
				       name, r.next_req, r.completed, r.npend);
				break;
			}
		} else {
			idle = 0;
		}
	}
	if (t_failures == failures) {
		struct vh_vq_base db, vb;

		CHECK_EQ(r.completed, total);
		CHECK_EQ(vh_vq_inflight(r.env.vq), 0);
		CHECK_EQ(vh_vq_driver_inflight(r.env.drv), 0);
		CHECK_EQ(vh_vq_driver_num_free(r.env.drv), num);
		CHECK_EQ(vh_vq_is_broken(r.env.vq), 0);
		CHECK_EQ(vh_vq_driver_is_broken(r.env.drv), 0);
		vh_vq_get_base(r.env.vq, &vb);
		vh_vq_driver_base(r.env.drv, &db);
		CHECK_EQ(vb.last_avail_idx, db.last_avail_idx);
		CHECK_EQ(vb.used_idx, db.used_idx);
		CHECK_EQ(vb.avail_wrap, db.avail_wrap);
		CHECK_EQ(vb.used_wrap, db.used_wrap);
		if (features & VH_VQ_F_EVENT_IDX)
			CHECK(r.kicks < total); /* suppression did suppress */
		printf("# %-28s %-6s %u requests, %u kicks, %u interrupts, %llu steps\n", name,
		       single ? "single" : "batch", total, r.kicks, r.irqs,
		       (unsigned long long)iter);
	}
out:
	rt_elems_free(&r.el);
	free(r.req_slot);
	free(r.req_wlen);
	free(r.req_inlen);
	free(r.free_slots);
	free(r.pend);
	rt_teardown(&r.env);
	CHECK_BASELINE_M(b);
}

static const struct {
	const char *name;
	uint64_t features;
} configs[] = {
	{ "split", 0 },
	{ "split+indirect", VH_VQ_F_INDIRECT_DESC },
	{ "split+event", VH_VQ_F_EVENT_IDX },
	{ "split+indirect+event", VH_VQ_F_INDIRECT_DESC | VH_VQ_F_EVENT_IDX },
	{ "split+inorder", VH_VQ_F_IN_ORDER },
	{ "split+inorder+indirect", VH_VQ_F_IN_ORDER | VH_VQ_F_INDIRECT_DESC },
	{ "split+inorder+event", VH_VQ_F_IN_ORDER | VH_VQ_F_EVENT_IDX },
	{ "split+inorder+ind+event",
	  VH_VQ_F_IN_ORDER | VH_VQ_F_INDIRECT_DESC | VH_VQ_F_EVENT_IDX },
	{ "packed", RT_PACKED },
	{ "packed+indirect", RT_PACKED | VH_VQ_F_INDIRECT_DESC },
	{ "packed+event", RT_PACKED | VH_VQ_F_EVENT_IDX },
	{ "packed+indirect+event", RT_PACKED | VH_VQ_F_INDIRECT_DESC | VH_VQ_F_EVENT_IDX },
	{ "packed+inorder", RT_PACKED | VH_VQ_F_IN_ORDER },
	{ "packed+inorder+indirect", RT_PACKED | VH_VQ_F_IN_ORDER | VH_VQ_F_INDIRECT_DESC },
	{ "packed+inorder+event", RT_PACKED | VH_VQ_F_IN_ORDER | VH_VQ_F_EVENT_IDX },
	{ "packed+inorder+ind+event",
	  RT_PACKED | VH_VQ_F_IN_ORDER | VH_VQ_F_INDIRECT_DESC | VH_VQ_F_EVENT_IDX },
};

/* Small rings (many laps); packed uses a size that is not a power of two. */
static unsigned cfg_num(uint64_t f)
{
	return (f & VH_VQ_F_RING_PACKED) ? 13 : 16;
}

static unsigned requests(unsigned dflt)
{
	const char *s = getenv("RING_TEST_REQUESTS");

	return s ? (unsigned)strtoul(s, NULL, 0) : dflt;
}

static void test_batched_all_configs(void)
{
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
		run_config(configs[i].name, configs[i].features, cfg_num(configs[i].features),
			   (configs[i].features & VH_VQ_F_INDIRECT_DESC) ? 4 : 0, requests(70000),
			   0);
}

static void test_single_all_configs(void)
{
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
		run_config(configs[i].name, configs[i].features, cfg_num(configs[i].features),
			   (configs[i].features & VH_VQ_F_INDIRECT_DESC) ? 4 : 0, requests(4000),
			   1);
}

/* Single-element calls over more than 65536 requests, both layouts. */
static void test_single_many_laps(void)
{
	run_config("split", 0, 8, 0, requests(70000), 1);
	run_config("packed", RT_PACKED, 5, 0, requests(70000), 1);
}

/* Larger rings with long indirect tables and the largest packed size that is odd. */
static void test_larger_rings(void)
{
	run_config("split-256+ind", VH_VQ_F_INDIRECT_DESC | VH_VQ_F_EVENT_IDX, 256, 5,
		   requests(20000), 0);
	run_config("packed-255+ind", RT_PACKED | VH_VQ_F_INDIRECT_DESC | VH_VQ_F_EVENT_IDX, 255, 5,
		   requests(20000), 0);
	/* One-entry rings: every request needs an indirect table (out + in segments). */
	run_config("split-1+ind", VH_VQ_F_INDIRECT_DESC, 1, 5, requests(3000), 0);
	run_config("packed-1+ind", RT_PACKED | VH_VQ_F_INDIRECT_DESC, 1, 5, requests(3000), 0);
}

static const struct t_test tests[] = {
	T_TEST(test_batched_all_configs),
	T_TEST(test_single_all_configs),
	T_TEST(test_single_many_laps),
	T_TEST(test_larger_rings),
};

T_MAIN(tests)
