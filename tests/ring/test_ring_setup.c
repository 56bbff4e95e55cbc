/* SPDX-License-Identifier: MIT */
/*
 * Ring setup and state: layout sizes, the event-index test, base encoding, saving and
 * restoring a device ring's position mid-run (split and packed, across wrap-counter laps),
 * vh_vq_new() argument checks (sizes, alignment, translation, overlap, packed base), the
 * three address kinds, notification-suppression fields, dirty logging of ring writes and
 * the copy helpers.
 */
#include <linux/virtio_ring.h>
#include "ringtest.h"

#define DATA (RT_GPA_BASE + RT_REGION_SIZE)

static void test_layout(void)
{
	struct vh_vring_layout l;

	CHECK_EQ(vh_vring_layout(256, 0, &l), 0);
	CHECK_EQ(l.desc_size, 4096);
	CHECK_EQ(l.driver_size, 6 + 2 * 256);
	CHECK_EQ(l.device_size, 6 + 8 * 256);
	CHECK_EQ(l.driver_off, 4096);
	CHECK_EQ(l.device_off % 64, 0);
	CHECK(l.device_off >= l.driver_off + l.driver_size);
	CHECK(l.total >= l.device_off + l.device_size);
	CHECK_EQ(vh_vring_layout(100, VH_VQ_F_RING_PACKED, &l), 0);
	CHECK_EQ(l.desc_size, 1600);
	CHECK_EQ(l.driver_size, 4);
	CHECK_EQ(l.device_size, 4);
	CHECK_EQ(vh_vring_layout(32768, VH_VQ_F_RING_PACKED, &l), 0);
	CHECK_EQ(vh_vring_layout(32768, 0, &l), 0);
	CHECK_EQ(vh_vring_layout(0, 0, &l), -EINVAL);
	CHECK_EQ(vh_vring_layout(100, 0, &l), -EINVAL);
	CHECK_EQ(vh_vring_layout(65536, 0, &l), -EINVAL);
	CHECK_EQ(vh_vring_layout(32769, VH_VQ_F_RING_PACKED, &l), -EINVAL);
}

static void test_need_event(void)
{
	/* notify when the index moves past event: event in [old, new) */
	CHECK_EQ(vh_vring_need_event(5, 6, 5), 1);
	CHECK_EQ(vh_vring_need_event(5, 5, 4), 0);
	CHECK_EQ(vh_vring_need_event(5, 10, 6), 0);
	CHECK_EQ(vh_vring_need_event(5, 10, 5), 1);
	CHECK_EQ(vh_vring_need_event(65535, 1, 65534), 1);
	CHECK_EQ(vh_vring_need_event(0, 1, 65535), 1);
	CHECK_EQ(vh_vring_need_event(2, 1, 65535), 0);
	CHECK_EQ(vh_vring_need_event(7, 7, 7), 0);
}

static void test_base_encoding(void)
{
	struct vh_vq_base b = { 0x1234, 0x0567, 1, 0 }, d;

	CHECK_EQ(vh_vq_base_encode(&b, 0), 0x1234);
	CHECK_EQ(vh_vq_base_encode(&b, 1), 0x1234 | 0x8000 | (0x0567u << 16));
	vh_vq_base_decode(0x80008000u, 1, &d);
	CHECK_EQ(d.last_avail_idx, 0);
	CHECK_EQ(d.avail_wrap, 1);
	CHECK_EQ(d.used_idx, 0);
	CHECK_EQ(d.used_wrap, 1);
	vh_vq_base_decode(0x7fff0003u, 1, &d);
	CHECK_EQ(d.last_avail_idx, 3);
	CHECK_EQ(d.avail_wrap, 0);
	CHECK_EQ(d.used_idx, 0x7fff);
	CHECK_EQ(d.used_wrap, 0);
	vh_vq_base_decode(0xabcdef12u, 0, &d);
	CHECK_EQ(d.last_avail_idx, 0xef12);
	CHECK_EQ(d.used_idx, 0);
}

/*
 * Runs requests through a pair, replacing the device ring every few rounds by a new one
 * started from the old one's GET_VRING_BASE value (encoded, decoded). Requests must complete
 * in order with the right tokens whatever lap the rings are in.
 */
static void save_restore(uint64_t features, unsigned num)
{
	struct m_baseline b = m_baseline();
	struct rt_elems el;
	struct rt_env e;
	uint64_t next_token = 0, expect_token = 0;
	unsigned round, restarts = 0;

	t_rng_state = 0xabcdefull + features;
	CHECK_EQ(rt_setup(&e, num, features, 0), 0);
	CHECK_EQ(rt_elems_new(&el, 8, 8), 0);
	for (round = 0; round < 4000 && !t_failures; round++) {
		struct vh_vq_seg seg = { DATA + 64 * (next_token % 64), 64 };
		struct vh_vq_driver_req req = { &seg, 1, 0, 0 };
		struct vh_vq_driver_used u[8];
		struct vh_vq_used used[8];
		unsigned k = (unsigned)rnd_below(4), i;
		int n;

		for (i = 0; i < k; i++) {
			req.token = next_token;
			if (vh_vq_driver_add_batch(e.drv, &req, 1) != 1)
				break;
			next_token++;
		}
		vh_vq_driver_publish(e.drv);
		n = vh_vq_pop_batch(e.vq, el.e, 1 + (unsigned)rnd_below(8));
		CHECK(n >= 0);
		for (i = 0; i < (unsigned)(n > 0 ? n : 0); i++) {
			used[i].id = el.e[i].id;
			used[i].len = 0;
		}
		if (n > 0)
			CHECK_EQ(vh_vq_push_batch(e.vq, used, (unsigned)n), 0);
		n = vh_vq_driver_get_used(e.drv, u, 8);
		CHECK(n >= 0);
		for (i = 0; i < (unsigned)(n > 0 ? n : 0); i++)
			CHECK_EQ(u[i].token, expect_token++);
		if (rnd_below(7) == 0) {
			uint32_t v = vh_vq_get_base_u32(e.vq);
			struct vh_vq_base base, drvb;
			int packed = (features & VH_VQ_F_RING_PACKED) != 0;

			/* Nothing is in flight on the device side, so the driver agrees. */
			vh_vq_driver_base(e.drv, &drvb);
			CHECK_EQ(v, vh_vq_base_encode(&drvb, packed) & (packed ? ~0u : 0xffffu));
			vh_vq_free(e.vq);
			e.vq = NULL;
			vh_vq_base_decode(v, packed, &base);
			CHECK_EQ(rt_start_device(&e, &base, 0), 0);
			CHECK_EQ(vh_vq_get_base_u32(e.vq), v);
			restarts++;
		}
	}
	CHECK(expect_token > 1000);
	CHECK(restarts > 100);
	rt_elems_free(&el);
	rt_teardown(&e);
	CHECK_BASELINE_M(b);
}

static void test_save_restore(void)
{
	save_restore(0, 8);
	save_restore(VH_VQ_F_EVENT_IDX, 4);
	save_restore(VH_VQ_F_RING_PACKED, 7);
	save_restore(VH_VQ_F_RING_PACKED | VH_VQ_F_EVENT_IDX, 3);
}

static int new_vq(struct rt_env *e, void (*tweak)(struct vh_vq_config *c))
{
	struct vh_vq_driver_addrs a;
	struct vh_vq_config c;
	struct vh_vq *vq = NULL;
	int r;

	vh_vq_driver_addrs(e->drv, &a);
	memset(&c, 0, sizeof(c));
	c.num = e->num;
	c.features = e->features;
	c.desc_addr = a.desc_gpa;
	c.driver_addr = a.driver_gpa;
	c.device_addr = a.device_gpa;
	c.mem = e->mem;
	vh_vq_driver_base(e->drv, &c.base);
	tweak(&c);
	r = vh_vq_new(&vq, &c);
	CHECK(r < 0 || vq != NULL);
	vh_vq_free(vq);
	return r;
}

static void t_ok(struct vh_vq_config *c) { (void)c; }
static void t_num0(struct vh_vq_config *c) { c->num = 0; }
static void t_num3(struct vh_vq_config *c) { c->num = 3; }
static void t_num_big(struct vh_vq_config *c) { c->num = 65536; }
static void t_desc_mis(struct vh_vq_config *c) { c->desc_addr += 8; }
static void t_avail_mis(struct vh_vq_config *c) { c->driver_addr += 1; }
static void t_used_mis(struct vh_vq_config *c) { c->device_addr += 2; }
static void t_desc_unmapped(struct vh_vq_config *c) { c->desc_addr = 0x1000; }
static void t_used_past_end(struct vh_vq_config *c)
{
	c->device_addr = RT_GPA_BASE + 3 * RT_REGION_SIZE - 64;
}
static void t_used_straddles(struct vh_vq_config *c)
{
	c->device_addr = RT_GPA_BASE + 2 * RT_REGION_SIZE - 64; /* regions 1/2 */
}
static void t_overlap(struct vh_vq_config *c) { c->device_addr = c->driver_addr & ~3ull; }
static void t_overlap_desc(struct vh_vq_config *c) { c->device_addr = c->desc_addr; }
static void t_ind_big(struct vh_vq_config *c) { c->max_indirect = 32769; }
static void t_no_mem(struct vh_vq_config *c) { c->mem = NULL; }
static void t_bad_kind(struct vh_vq_config *c) { c->addr_kind = (enum vh_vq_addr_kind)7; }
static void t_pbase_avail(struct vh_vq_config *c) { c->base.last_avail_idx = (uint16_t)c->num; }
static void t_pbase_used(struct vh_vq_config *c) { c->base.used_idx = (uint16_t)c->num; }
static void t_pbase_wrap(struct vh_vq_config *c) { c->base.avail_wrap = 2; }

static void test_new_checks(void)
{
	struct m_baseline b = m_baseline();
	struct rt_env e;

	CHECK_EQ(rt_setup_driver(&e, 16, 0, 0), 0);
	CHECK_EQ(new_vq(&e, t_ok), 0);
	CHECK_EQ(new_vq(&e, t_num0), -EINVAL);
	CHECK_EQ(new_vq(&e, t_num3), -EINVAL);
	CHECK_EQ(new_vq(&e, t_num_big), -EINVAL);
	CHECK_EQ(new_vq(&e, t_desc_mis), -EFAULT);
	CHECK_EQ(new_vq(&e, t_avail_mis), -EFAULT);
	CHECK_EQ(new_vq(&e, t_used_mis), -EFAULT);
	CHECK_EQ(new_vq(&e, t_desc_unmapped), -EFAULT);
	CHECK_EQ(new_vq(&e, t_used_past_end), -EFAULT);
	CHECK_EQ(new_vq(&e, t_used_straddles), -EFAULT);
	CHECK_EQ(new_vq(&e, t_overlap), -EINVAL);
	CHECK_EQ(new_vq(&e, t_overlap_desc), -EINVAL);
	CHECK_EQ(new_vq(&e, t_ind_big), -EINVAL);
	CHECK_EQ(new_vq(&e, t_no_mem), -EINVAL);
	CHECK_EQ(new_vq(&e, t_bad_kind), -EFAULT);
	rt_teardown(&e);

	CHECK_EQ(rt_setup_driver(&e, 10, RT_PACKED, 0), 0);
	CHECK_EQ(new_vq(&e, t_ok), 0);
	CHECK_EQ(new_vq(&e, t_pbase_avail), -EINVAL);
	CHECK_EQ(new_vq(&e, t_pbase_used), -EINVAL);
	CHECK_EQ(new_vq(&e, t_pbase_wrap), -EINVAL);
	CHECK_EQ(new_vq(&e, t_desc_mis), -EFAULT);
	CHECK_EQ(new_vq(&e, t_used_mis), -EFAULT);
	CHECK_EQ(new_vq(&e, t_overlap_desc), -EINVAL);
	rt_teardown(&e);
	CHECK_BASELINE_M(b);
}

/* One request through a device ring whose addresses are given as kind k. */
static void addr_kind(enum vh_vq_addr_kind k)
{
	struct vh_vq_driver_addrs a;
	struct vh_vq_seg seg = { DATA, 16 };
	struct vh_vq_driver_req req = { &seg, 0, 1, 77 };
	struct vh_vq_driver_used u;
	struct rt_elems el;
	struct vh_vq_config c;
	struct rt_env e;

	CHECK_EQ(rt_setup_driver(&e, 4, 0, 0), 0);
	CHECK_EQ(rt_elems_new(&el, 1, 4), 0);
	vh_vq_driver_addrs(e.drv, &a);
	memset(&c, 0, sizeof(c));
	c.num = 4;
	c.addr_kind = k;
	c.mem = e.mem;
	if (k == VH_VQ_ADDR_GPA) {
		c.desc_addr = a.desc_gpa;
		c.driver_addr = a.driver_gpa;
		c.device_addr = a.device_gpa;
	} else if (k == VH_VQ_ADDR_UADDR) {
		/* The front-end address of a region is where the driver mapped it. */
		c.desc_addr = (uintptr_t)a.desc;
		c.driver_addr = (uintptr_t)a.driver;
		c.device_addr = (uintptr_t)a.device;
	} else {
		c.desc_addr = (uintptr_t)vh_memory_gpa_to_host(e.mem, a.desc_gpa, 64);
		c.driver_addr = (uintptr_t)vh_memory_gpa_to_host(e.mem, a.driver_gpa, 14);
		c.device_addr = (uintptr_t)vh_memory_gpa_to_host(e.mem, a.device_gpa, 38);
	}
	CHECK_EQ(vh_vq_new(&e.vq, &c), 0);
	CHECK_EQ(vh_vq_driver_add_batch(e.drv, &req, 1), 1);
	vh_vq_driver_publish(e.drv);
	if (e.vq && vh_vq_pop(e.vq, &el.e[0]) == 1) {
		CHECK_EQ(vh_buf_to_iov(el.e[0].iov, el.e[0].in_num, 0, "0123456789abcdef", 16), 16);
		CHECK_EQ(vh_vq_push(e.vq, el.e[0].id, 16), 0);
		CHECK_EQ(vh_vq_driver_get_used(e.drv, &u, 1), 1);
		CHECK_EQ(u.token, 77);
		CHECK_EQ(u.len, 16);
		CHECK(memcmp(rt_host(&e, DATA), "0123456789abcdef", 16) == 0);
	} else {
		T_FAIL("kind %d: no element", (int)k);
	}
	rt_elems_free(&el);
	rt_teardown(&e);
}

static void test_addr_kinds(void)
{
	struct m_baseline b = m_baseline();

	addr_kind(VH_VQ_ADDR_GPA);
	addr_kind(VH_VQ_ADDR_UADDR);
	addr_kind(VH_VQ_ADDR_HOST);
	CHECK_BASELINE_M(b);
}

/* The suppression fields each side writes, and how the other side reads them. */
static void test_suppression_fields(void)
{
	struct m_baseline b = m_baseline();
	struct vh_vq_seg seg = { DATA, 16 };
	struct vh_vq_driver_req req = { &seg, 1, 0, 1 };
	struct vh_vq_driver_used u;
	struct rt_elems el;
	struct rt_env e;
	struct vring_used *used;
	struct vring_avail *avail;
	struct vring_packed_desc_event *dev_ev, *drv_ev;

	CHECK_EQ(rt_elems_new(&el, 1, 4), 0);

	/* Split, flags. */
	CHECK_EQ(rt_setup(&e, 8, VH_VQ_F_NOTIFY_ON_EMPTY, 0), 0);
	used = (struct vring_used *)(e.ring_host + e.lay.device_off);
	avail = (struct vring_avail *)(e.ring_host + e.lay.driver_off);
	vh_vq_disable_notify(e.vq);
	CHECK_EQ(used->flags, VRING_USED_F_NO_NOTIFY);
	CHECK_EQ(vh_vq_driver_add_batch(e.drv, &req, 1), 1);
	vh_vq_driver_publish(e.drv);
	CHECK_EQ(vh_vq_driver_should_kick(e.drv), 0);
	CHECK_EQ(vh_vq_has_avail(e.vq), 1);
	CHECK_EQ(vh_vq_enable_notify(e.vq), 1);
	CHECK_EQ(used->flags, 0);
	vh_vq_driver_disable_cb(e.drv);
	CHECK_EQ(avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
	CHECK_EQ(vh_vq_pop(e.vq, &el.e[0]), 1);
	CHECK_EQ(vh_vq_push(e.vq, el.e[0].id, 0), 0);
	/* NO_INTERRUPT, but the ring ran empty and NOTIFY_ON_EMPTY is on. */
	CHECK_EQ(vh_vq_should_notify(e.vq), 1);
	CHECK_EQ(vh_vq_should_notify(e.vq), 0); /* nothing new pushed */
	CHECK_EQ(vh_vq_driver_enable_cb(e.drv), 1);
	CHECK_EQ(avail->flags, 0);
	CHECK_EQ(vh_vq_driver_get_used(e.drv, &u, 1), 1);
	rt_teardown(&e);

	/* Split, event index. */
	CHECK_EQ(rt_setup(&e, 8, VH_VQ_F_EVENT_IDX, 0), 0);
	used = (struct vring_used *)(e.ring_host + e.lay.device_off);
	avail = (struct vring_avail *)(e.ring_host + e.lay.driver_off);
	CHECK_EQ(vh_vq_driver_add_batch(e.drv, &req, 1), 1);
	vh_vq_driver_publish(e.drv);
	CHECK_EQ(vh_vq_driver_should_kick(e.drv), 1); /* avail_event 0, idx 0 -> 1 */
	CHECK_EQ(vh_vq_pop(e.vq, &el.e[0]), 1);
	CHECK_EQ(vh_vq_pop(e.vq, &el.e[0]), 0); /* empty: re-arms at 1 */
	CHECK_EQ(*(uint16_t *)&used->ring[8], 1);
	CHECK_EQ(vh_vq_push(e.vq, el.e[0].id, 0), 0);
	CHECK_EQ(vh_vq_should_notify(e.vq), 1); /* used_event 0 */
	vh_vq_driver_disable_cb(e.drv);
	CHECK_EQ(avail->ring[8], 0xffff);
	CHECK_EQ(vh_vq_driver_get_used(e.drv, &u, 1), 1);
	CHECK_EQ(vh_vq_driver_add_batch(e.drv, &req, 1), 1);
	vh_vq_driver_publish(e.drv);
	CHECK_EQ(vh_vq_driver_should_kick(e.drv), 1);
	CHECK_EQ(vh_vq_pop(e.vq, &el.e[0]), 1);
	CHECK_EQ(vh_vq_push(e.vq, el.e[0].id, 0), 0);
	CHECK_EQ(vh_vq_should_notify(e.vq), 0); /* interrupts disabled */
	CHECK_EQ(vh_vq_driver_enable_cb(e.drv), 1);
	CHECK_EQ(avail->ring[8], 1);
	rt_teardown(&e);

	/* Packed, event index. */
	CHECK_EQ(rt_setup(&e, 5, RT_PACKED | VH_VQ_F_EVENT_IDX, 0), 0);
	drv_ev = (struct vring_packed_desc_event *)(e.ring_host + e.lay.driver_off);
	dev_ev = (struct vring_packed_desc_event *)(e.ring_host + e.lay.device_off);
	CHECK_EQ(dev_ev->flags, VRING_PACKED_EVENT_FLAG_DESC);
	CHECK_EQ(dev_ev->off_wrap, 0x8000);
	CHECK_EQ(drv_ev->flags, VRING_PACKED_EVENT_FLAG_DESC);
	vh_vq_disable_notify(e.vq);
	CHECK_EQ(dev_ev->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
	CHECK_EQ(vh_vq_driver_add_batch(e.drv, &req, 1), 1);
	vh_vq_driver_publish(e.drv);
	CHECK_EQ(vh_vq_driver_should_kick(e.drv), 0);
	CHECK_EQ(vh_vq_enable_notify(e.vq), 1);
	CHECK_EQ(dev_ev->flags, VRING_PACKED_EVENT_FLAG_DESC);
	CHECK_EQ(vh_vq_pop(e.vq, &el.e[0]), 1);
	CHECK_EQ(vh_vq_pop(e.vq, &el.e[0]), 0); /* re-arms at position 1 */
	CHECK_EQ(dev_ev->off_wrap, 0x8001);
	vh_vq_driver_disable_cb(e.drv);
	CHECK_EQ(drv_ev->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
	CHECK_EQ(vh_vq_push(e.vq, el.e[0].id, 0), 0);
	CHECK_EQ(vh_vq_should_notify(e.vq), 0);
	CHECK_EQ(vh_vq_driver_enable_cb(e.drv), 1);
	CHECK_EQ(drv_ev->off_wrap, 0x8000);
	CHECK_EQ(vh_vq_driver_get_used(e.drv, &u, 1), 1);
	CHECK_EQ(vh_vq_driver_enable_cb(e.drv), 0);
	CHECK_EQ(drv_ev->off_wrap, 0x8001);
	rt_teardown(&e);

	rt_elems_free(&el);
	CHECK_BASELINE_M(b);
}

/* Used-ring / descriptor-ring writes and written buffer pieces land in the dirty log. */
static void dirty_log(uint64_t features)
{
	struct m_baseline b = m_baseline();
	struct vh_vq_seg segs[2] = { { DATA + 8 * 4096, 100 }, { DATA + 20 * 4096 - 50, 100 } };
	struct vh_vq_driver_req req = { segs, 1, 1, 5 };
	struct vh_vq_driver_addrs a;
	struct vh_dirty_log log;
	struct rt_elems el;
	struct rt_env e;
	uint64_t mem_end = RT_GPA_BASE + 3 * RT_REGION_SIZE, log_gpa;
	size_t bytes = (size_t)vh_dirty_log_size_for(mem_end);
	uint8_t *bitmap = calloc(1, bytes);

	memset(&log, 0, sizeof(log));
	CHECK(bitmap != NULL);
	CHECK_EQ(vh_dirty_log_set_local(&log, bitmap, bytes), 0);
	CHECK_EQ(rt_setup(&e, 8, features, 0), 0);
	CHECK_EQ(rt_elems_new(&el, 1, 4), 0);
	vh_vq_driver_addrs(e.drv, &a);
	log_gpa = (features & VH_VQ_F_RING_PACKED) ? a.desc_gpa : a.device_gpa;
	vh_vq_set_log(e.vq, &log, log_gpa);
	CHECK_EQ(vh_vq_driver_add_batch(e.drv, &req, 1), 1);
	vh_vq_driver_publish(e.drv);
	CHECK_EQ(vh_vq_pop(e.vq, &el.e[0]), 1);
	CHECK_EQ(vh_dirty_log_test(&log, log_gpa), 0);
	CHECK_EQ(vh_vq_log_elem(e.vq, &el.e[0], 60), 0);
	CHECK_EQ(vh_dirty_log_test(&log, DATA + 8 * 4096), 0);      /* readable: not marked */
	CHECK_EQ(vh_dirty_log_test(&log, DATA + 20 * 4096 - 50), 1); /* writable, first page */
	CHECK_EQ(vh_dirty_log_test(&log, DATA + 20 * 4096), 1);      /* 60 bytes cross a page */
	CHECK_EQ(vh_dirty_log_test(&log, DATA + 21 * 4096), 0);
	CHECK_EQ(vh_vq_push(e.vq, el.e[0].id, 60), 0);
	CHECK_EQ(vh_dirty_log_test(&log, log_gpa), 1);
	vh_vq_set_log(e.vq, NULL, 0);
	rt_elems_free(&el);
	rt_teardown(&e);
	vh_dirty_log_clear(&log);
	free(bitmap);
	CHECK_BASELINE_M(b);
}

static void test_dirty_log(void)
{
	dirty_log(0);
	dirty_log(RT_PACKED);
}

static void test_copy_helpers(void)
{
	uint8_t a[3] = { 1, 2, 3 }, bb[5] = { 4, 5, 6, 7, 8 }, out[16];
	struct iovec iov[3] = { { a, 3 }, { NULL, 0 }, { bb, 5 } };
	uint8_t src[4] = { 9, 9, 9, 9 };

	CHECK_EQ(vh_iov_to_buf(iov, 3, 0, out, sizeof(out)), 8);
	CHECK(memcmp(out, "\1\2\3\4\5\6\7\10", 8) == 0);
	CHECK_EQ(vh_iov_to_buf(iov, 3, 2, out, 3), 3);
	CHECK(memcmp(out, "\3\4\5", 3) == 0);
	CHECK_EQ(vh_iov_to_buf(iov, 3, 8, out, 3), 0);
	CHECK_EQ(vh_iov_to_buf(iov, 3, 100, out, 3), 0);
	CHECK_EQ(vh_buf_to_iov(iov, 3, 1, src, 4), 4);
	CHECK_EQ(a[0], 1);
	CHECK_EQ(a[1], 9);
	CHECK_EQ(bb[1], 9);
	CHECK_EQ(bb[2], 6);
	CHECK_EQ(vh_buf_to_iov(iov, 3, 6, src, 4), 2);
	CHECK_EQ(bb[4], 9);
}


/*
 * Resubmission after a device restart (inflight tracking): requests popped by one device ring
 * and never completed are re-created on its successor from the chain head (split) or from
 * copies of their descriptors (packed), completed, and reach the driver with their data.
 */
static void test_resubmit_split(void)
{
	struct m_baseline b = m_baseline();
	struct vh_vq_seg segs[3][2];
	struct vh_vq_driver_req req[3];
	struct vh_vq_driver_used u[4];
	struct vh_vq_base base;
	struct rt_elems el;
	struct rt_env e;
	uint16_t heads[3];
	unsigned i;

	CHECK_EQ(rt_setup(&e, 8, 0, 0), 0);
	CHECK_EQ(rt_elems_new(&el, 3, 4), 0);
	for (i = 0; i < 3; i++) {
		segs[i][0] = (struct vh_vq_seg){ DATA + 256 * i, 16 };
		segs[i][1] = (struct vh_vq_seg){ DATA + 256 * i + 128, 16 };
		req[i] = (struct vh_vq_driver_req){ segs[i], 1, 1, 10 + i };
	}
	CHECK_EQ(vh_vq_driver_add_batch(e.drv, req, 3), 3);
	vh_vq_driver_publish(e.drv);
	CHECK_EQ(vh_vq_pop_batch(e.vq, el.e, 3), 3);
	for (i = 0; i < 3; i++)
		heads[i] = el.e[i].id;
	/* The first completes before the "crash"; two stay in flight. */
	CHECK_EQ(vh_vq_push(e.vq, heads[0], 0), 0);
	vh_vq_get_base(e.vq, &base);
	vh_vq_free(e.vq);
	e.vq = NULL;
	CHECK_EQ(rt_start_device(&e, &base, 0), 0);
	CHECK_EQ(vh_vq_pop_descs(e.vq, NULL, 0, &el.e[0]), -EINVAL); /* packed only */
	for (i = 1; i < 3; i++) {
		CHECK_EQ(vh_vq_pop_head(e.vq, heads[i], &el.e[i]), 1);
		CHECK_EQ(el.e[i].id, heads[i]);
		CHECK_EQ(el.e[i].out_num, 1);
		CHECK_EQ(el.e[i].in_num, 1);
		CHECK_EQ(vh_buf_to_iov(el.e[i].iov + 1, 1, 0, "resubmitted!!!!!", 16), 16);
	}
	CHECK_EQ(vh_vq_inflight(e.vq), 2);
	CHECK_EQ(vh_vq_pop_batch(e.vq, el.e, 3), 0); /* the avail position did not move */
	CHECK_EQ(vh_vq_push(e.vq, heads[2], 16), 0);
	CHECK_EQ(vh_vq_push(e.vq, heads[1], 16), 0);
	CHECK_EQ(vh_vq_driver_get_used(e.drv, u, 4), 3);
	CHECK_EQ(u[0].token, 10);
	CHECK_EQ(u[1].token, 12);
	CHECK_EQ(u[2].token, 11);
	CHECK(memcmp(rt_host(&e, DATA + 256 + 128), "resubmitted!!!!!", 16) == 0);
	/* A head out of range is a ring fault like any other. */
	CHECK_EQ(vh_vq_pop_head(e.vq, 8, &el.e[0]), -EIO);
	CHECK_EQ(vh_vq_fault(e.vq), VH_VQ_FAULT_HEAD);
	rt_elems_free(&el);
	rt_teardown(&e);
	CHECK_BASELINE_M(b);
}

static void test_resubmit_packed(void)
{
	struct m_baseline b = m_baseline();
	struct vh_vq_seg segs[3] = { { DATA, 16 }, { DATA + 256, 16 }, { DATA + 512, 16 } };
	struct vh_vq_driver_req req[2] = { { segs, 1, 1, 20 }, { segs + 2, 0, 1, 21 } };
	struct vh_vq_desc rec[3], bad[2];
	struct vh_vq_driver_used u[4];
	struct vh_vq_base base;
	struct rt_elems el;
	struct rt_env e;
	unsigned i;

	CHECK_EQ(rt_setup(&e, 5, RT_PACKED, 0), 0);
	CHECK_EQ(rt_elems_new(&el, 2, 4), 0);
	CHECK_EQ(vh_vq_driver_add_batch(e.drv, req, 2), 2);
	vh_vq_driver_publish(e.drv);
	CHECK_EQ(vh_vq_pop_batch(e.vq, el.e, 2), 2);
	/* What inflight tracking records: the descriptors the pop walked (positions 0..2). */
	for (i = 0; i < 3; i++)
		CHECK_EQ(vh_vq_read_desc(e.vq, i, &rec[i]), 0);
	CHECK_EQ(vh_vq_read_desc(e.vq, 5, &bad[0]), -EINVAL);
	CHECK(rec[0].flags & VRING_DESC_F_NEXT);
	CHECK(!(rec[1].flags & VRING_DESC_F_NEXT));
	vh_vq_get_base(e.vq, &base);
	CHECK_EQ(base.last_avail_idx, 3);
	vh_vq_free(e.vq);
	e.vq = NULL;
	CHECK_EQ(rt_start_device(&e, &base, 0), 0);
	CHECK_EQ(vh_vq_pop_head(e.vq, 0, &el.e[0]), -EINVAL); /* split only */
	CHECK_EQ(vh_vq_pop_descs(e.vq, rec, 2, &el.e[0]), 1);
	CHECK_EQ(vh_vq_pop_descs(e.vq, rec + 2, 1, &el.e[1]), 1);
	CHECK_EQ(el.e[0].ndesc, 2);
	CHECK_EQ(el.e[0].in_len, 16);
	CHECK_EQ(vh_buf_to_iov(el.e[0].iov + 1, 1, 0, "0123456789abcdef", 16), 16);
	CHECK_EQ(vh_vq_push(e.vq, el.e[0].id, 16), 0);
	CHECK_EQ(vh_vq_push(e.vq, el.e[1].id, 0), 0);
	CHECK_EQ(vh_vq_driver_get_used(e.drv, u, 4), 2);
	CHECK_EQ(u[0].token, 20);
	CHECK_EQ(u[0].len, 16);
	CHECK_EQ(u[1].token, 21);
	CHECK(memcmp(rt_host(&e, DATA + 256), "0123456789abcdef", 16) == 0);
	/* A recorded chain whose shape is wrong (NEXT on the last copy) breaks the ring. */
	bad[0] = rec[0];
	bad[1] = rec[0];
	CHECK_EQ(vh_vq_pop_descs(e.vq, bad, 2, &el.e[0]), -EIO);
	CHECK_EQ(vh_vq_fault(e.vq), VH_VQ_FAULT_PACKED_FLAGS);
	rt_elems_free(&el);
	rt_teardown(&e);
	CHECK_BASELINE_M(b);
}

static const struct t_test tests[] = {
	T_TEST(test_layout),
	T_TEST(test_need_event),
	T_TEST(test_base_encoding),
	T_TEST(test_save_restore),
	T_TEST(test_new_checks),
	T_TEST(test_addr_kinds),
	T_TEST(test_suppression_fields),
	T_TEST(test_dirty_log),
	T_TEST(test_copy_helpers),
	T_TEST(test_resubmit_split),
	T_TEST(test_resubmit_packed),
};

T_MAIN(tests)
