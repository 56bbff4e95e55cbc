/* SPDX-License-Identifier: MIT */
/*
 * Vring lifecycle and memory changes on a running vh_server: GET_VRING_BASE stops a ring and
 * reports its real position (split and packed, across wrap-arounds), the same data continues
 * after SET_VRING_BASE + SET_VRING_KICK; requests held by the device are completed or
 * abandoned at stop; enable/disable (a ring enabled late is looked at without a new kick);
 * rings enabled without PROTOCOL_FEATURES; a kick fd replaced on a running ring; RESET_DEVICE;
 * ADD_MEM_REG / REM_MEM_REG / SET_MEM_TABLE while traffic runs; and an element popped from a
 * region that is then removed stays writable until it is pushed, after which the mapping goes.
 */
#include <linux/virtio_ring.h>
#include "srvtest.h"

static void start(struct tsrv *t, struct tdrv *dr, const struct tsrv_cfg *sc,
		  const struct tdrv_cfg *dc)
{
	CHECK_EQ(tsrv_create(t, sc), 0);
	tdrv_init(dr, dc);
	CHECK_EQ(tdrv_socketpair(dr, t), 0);
	tsrv_run(t);
}

static void finish(struct tsrv *t, struct tdrv *dr)
{
	t_teardown(t, dr);
}

/* ---- GET_VRING_BASE stop / resume ----------------------------------------------------------- */

static void base_stop_resume(int packed)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = 48, .packed = packed, .event_idx = 1 };
	struct tsrv t;
	struct tdrv dr;

	if (!packed)
		dc.num = 64;
	start(&t, &dr, &sc, &dc);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	for (int round = 0; round < 5; round++) {
		struct vh_vq_base want, got;
		uint32_t v = 0;

		/* Odd totals move the position through the ring and its wrap counters. */
		CHECK_EQ(tdrv_traffic(&dr, 0, 37 + 50 * (unsigned)round, 16), 0);
		CHECK_EQ(vh_frontend_get_vring_base(dr.fe, 0, &v), 0);
		vh_vq_driver_base(dr.q[0].d, &want);
		vh_vq_base_decode(v, packed, &got);
		CHECK_EQ(got.last_avail_idx, want.last_avail_idx);
		if (packed) {
			CHECK_EQ(got.avail_wrap, want.avail_wrap);
			CHECK_EQ(got.used_idx, want.used_idx);
			CHECK_EQ(got.used_wrap, want.used_wrap);
		}
		CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].stops), round + 1);
		/* Stopped: the queue has no fd; requests wait. */
		CHECK_EQ(vh_server_queue_fd(t.s, 0), -1);
		CHECK_EQ(tdrv_submit(&dr.q[0], 3), 3);
		t_sleep_ms(30);
		CHECK_EQ(tdrv_collect(&dr.q[0]), 0);
		/* Resume from the reported position; the waiting requests are served without a
		 * new kick. */
		CHECK_EQ(vh_frontend_set_vring_base(dr.fe, 0, v), 0);
		CHECK_EQ(vh_frontend_set_vring_kick(dr.fe, 0, dr.q[0].kick), 0);
		CHECK_EQ(tdrv_wait_done(&dr.q[0], dr.q[0].done + 3, T_WAIT_MS), 0);
	}
	CHECK_EQ(dr.q[0].bad, 0);
	CHECK_EQ(t.dev.q[0].bad, 0);
	finish(&t, &dr);
	CHECK_BASELINE(b);
}

static void test_base_stop_resume_split(void)
{
	base_stop_resume(0);
}

static void test_base_stop_resume_packed(void)
{
	base_stop_resume(1);
}

/* Requests held by the device when GET_VRING_BASE comes: completed in queue_stop (then the
 * base is exact), or abandoned (the base counts them as popped). */
static void held_at_stop(int complete)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = 32, .event_idx = 1 };
	struct tsrv t;
	struct tdrv dr;
	struct vh_vq_base got;
	uint32_t v = 0;

	start(&t, &dr, &sc, &dc);
	t.dev.hold = 1;
	t.dev.complete_at_stop = complete;
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK_EQ(tdrv_submit(&dr.q[0], 5), 5);
	for (int k = 0; k < 2000 && tdev_get(&t.dev, &t.dev.q[0].norder) < 5; k++)
		t_sleep_ms(5);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].norder), 5);
	CHECK_EQ(vh_frontend_get_vring_base(dr.fe, 0, &v), 0);
	vh_vq_base_decode(v, 0, &got);
	CHECK_EQ(got.last_avail_idx, 5);
	if (complete) {
		CHECK_EQ(tdrv_wait_done(&dr.q[0], 5, T_WAIT_MS), 0);
		CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].abandoned), 0);
	} else {
		CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].abandoned), 5);
		t_sleep_ms(20);
		CHECK_EQ(tdrv_collect(&dr.q[0]), 0);
	}
	finish(&t, &dr);
	CHECK_BASELINE(b);
}

static void test_held_completed_at_stop(void)
{
	held_at_stop(1);
}

static void test_held_abandoned_at_stop(void)
{
	held_at_stop(0);
}

/* A GET_VRING_BASE on a ring that never started answers the recorded base. */
static void test_base_never_started(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 2, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 2, .num = 16 };
	struct tsrv t;
	struct tdrv dr;
	uint32_t v = 0;

	start(&t, &dr, &sc, &dc);
	CHECK_EQ(tdrv_handshake(&dr, TDRV_NO_RINGS), 0);
	CHECK_EQ(vh_frontend_set_vring_num(dr.fe, 1, 16), 0);
	CHECK_EQ(vh_frontend_set_vring_base(dr.fe, 1, 1234), 0);
	CHECK_EQ(vh_frontend_get_vring_base(dr.fe, 1, &v), 0);
	CHECK_EQ(v, 1234);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.q[1].stops), 0);
	finish(&t, &dr);
	CHECK_BASELINE(b);
}

/* ---- Enable / disable ----------------------------------------------------------------------- */

static void test_enable_late(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = 32, .event_idx = 1 };
	struct vh_vring_addr a;
	struct tsrv t;
	struct tdrv dr;

	start(&t, &dr, &sc, &dc);
	t.dev.skip_disabled = 1;
	CHECK_EQ(tdrv_handshake(&dr, TDRV_NO_RINGS), 0);
	CHECK(dr.pf != 0);
	tdrv_vring_addr(&dr.q[0], 0, 0, &a);
	CHECK_EQ(vh_frontend_set_vring_num(dr.fe, 0, 32), 0);
	CHECK_EQ(vh_frontend_set_vring_base(dr.fe, 0, 0), 0);
	CHECK_EQ(vh_frontend_set_vring_addr(dr.fe, &a), 0);
	CHECK_EQ(vh_frontend_set_vring_call(dr.fe, 0, dr.q[0].call), 0);
	CHECK_EQ(vh_frontend_set_vring_kick(dr.fe, 0, dr.q[0].kick), 0);
	/* Started but disabled (PROTOCOL_FEATURES): this device does nothing then. */
	CHECK_EQ(vh_server_queue_enabled(vh_server_get_queue(t.s, 0)), 0);
	CHECK_EQ(tdrv_submit(&dr.q[0], 4), 4);
	t_sleep_ms(50);
	CHECK_EQ(tdrv_collect(&dr.q[0]), 0);
	/* Enabling looks at the ring: no kick needed. */
	CHECK_EQ(vh_frontend_set_vring_enable(dr.fe, 0, 1), 0);
	CHECK_EQ(tdrv_wait_done(&dr.q[0], 4, T_WAIT_MS), 0);
	CHECK_EQ(vh_frontend_set_vring_enable(dr.fe, 0, 0), 0);
	CHECK_EQ(tdrv_submit(&dr.q[0], 2), 2);
	t_sleep_ms(50);
	CHECK_EQ(tdrv_collect(&dr.q[0]), 0);
	CHECK_EQ(vh_frontend_set_vring_enable(dr.fe, 0, 1), 0);
	CHECK_EQ(tdrv_wait_done(&dr.q[0], 6, T_WAIT_MS), 0);
	CHECK_EQ(dr.q[0].bad, 0);
	finish(&t, &dr);
	CHECK_BASELINE(b);
}

/* Without PROTOCOL_FEATURES every ring is enabled. */
static void test_no_protocol_features(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1, .protocol_mask = ~0ull };
	struct tdrv_cfg dc = { .nq = 1, .num = 32 };
	struct tsrv t;
	struct tdrv dr;

	start(&t, &dr, &sc, &dc);
	t.dev.skip_disabled = 1;
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK_EQ(dr.pf, 0);
	{
		uint64_t f; /* without REPLY_ACK nothing was waited for: a reply is the barrier */

		CHECK_EQ(vh_frontend_get_features(dr.fe, &f), 0);
	}
	CHECK_EQ(vh_server_queue_enabled(vh_server_get_queue(t.s, 0)), 1);
	CHECK_EQ(tdrv_traffic(&dr, 0, 200, 8), 0);
	finish(&t, &dr);
	CHECK_BASELINE(b);
}

/* A new kick fd on a running ring. */
static void test_kick_replaced(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = 32 };
	struct tsrv t;
	struct tdrv dr;
	int nk;

	start(&t, &dr, &sc, &dc);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK_EQ(tdrv_traffic(&dr, 0, 100, 8), 0);
	nk = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK_EQ(vh_frontend_set_vring_kick(dr.fe, 0, nk), 0);
	close(dr.q[0].kick);
	dr.q[0].kick = nk;
	CHECK_EQ(tdrv_traffic(&dr, 0, 100, 8), 0);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].starts), 1);
	finish(&t, &dr);
	CHECK_BASELINE(b);
}

/* A regular file is not a kick or call fd. */
static void test_bad_notify_fds(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = 32 };
	struct tsrv t;
	struct tdrv dr;
	int mf = t_memfd("notfd", 64);

	start(&t, &dr, &sc, &dc);
	CHECK_EQ(tdrv_handshake(&dr, TDRV_NO_RINGS), 0);
	CHECK_EQ(vh_frontend_set_vring_call(dr.fe, 0, mf), -EIO);
	CHECK_EQ(vh_frontend_set_vring_err(dr.fe, 0, mf), -EIO);
	CHECK_EQ(vh_frontend_set_vring_num(dr.fe, 0, 32), 0);
	CHECK_EQ(vh_frontend_set_vring_kick(dr.fe, 0, mf), -EIO);
	/* Kick before addresses that map: refused, nothing started. */
	CHECK_EQ(vh_frontend_set_vring_kick(dr.fe, 0, dr.q[0].kick), -EIO);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].starts), 0);
	close(mf);
	finish(&t, &dr);
	CHECK_BASELINE(b);
}

/* RESET_DEVICE stops every ring and calls the device's reset; rings start again after. */
static void test_reset_device(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 2, .nthreads = 2 };
	struct tdrv_cfg dc = { .nq = 2, .num = 32, .packed = 1 };
	struct tsrv t;
	struct tdrv dr;
	uint8_t cfg[8];

	start(&t, &dr, &sc, &dc);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK_EQ(vh_frontend_get_config(dr.fe, 4, cfg, 4, 0), 0);
	CHECK_EQ(cfg[0], 0x44);
	CHECK_EQ(cfg[3], 0x47);
	CHECK_EQ(tdrv_traffic(&dr, 0, 100, 8), 0);
	CHECK_EQ(tdrv_traffic(&dr, 1, 100, 8), 0);
	CHECK_EQ(vh_frontend_reset_device(dr.fe), 0);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.resets), 1);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].stops), 1);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.q[1].stops), 1);
	CHECK_EQ(vh_server_features(t.s), 0);
	/* Memory stays; features and rings are set up again. */
	CHECK_EQ(vh_frontend_set_features(dr.fe, dr.features | VH_BIT(VH_USER_F_PROTOCOL_FEATURES)),
		 0);
	for (unsigned i = 0; i < 2; i++) {
		CHECK_EQ(tdrv_start_ring(&dr, i, 0), 0);
		CHECK_EQ(tdrv_traffic(&dr, i, 100, 8), 0);
	}
	finish(&t, &dr);
	CHECK_BASELINE(b);
}

/* ---- Memory changes while rings run ---------------------------------------------------------- */

struct bg {
	struct tdrv *dr;
	unsigned q;
	int stop;
	int r;
	unsigned rounds;
};

static void *bg_traffic(void *arg)
{
	struct bg *g = arg;

	while (!__atomic_load_n(&g->stop, __ATOMIC_ACQUIRE) && g->r == 0) {
		g->r = tdrv_traffic(g->dr, g->q, 64, 16);
		g->rounds++;
	}
	return NULL;
}

/* Maps of the file behind fd in this process. */
static int maps_of(int fd)
{
	struct stat st;
	char line[512];
	FILE *f;
	int n = 0;

	if (fstat(fd, &st))
		return -1;
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long inode = 0;

		if (sscanf(line, "%*s %*s %*s %*s %lu", &inode) == 1 && inode == st.st_ino)
			n++;
	}
	fclose(f);
	return n;
}

/* One request on queue q whose buffers lie in extra memory at gpa/host. */
static void submit_extra(struct tdrv_q *dq, uint64_t gpa, uint8_t *host, uint32_t req)
{
	struct vh_vq_seg segs[2];
	struct vh_vq_driver_req r;
	uint32_t ol = t_out_len(req);

	memcpy(host, &req, 4);
	memcpy(host + 4, &ol, 4);
	for (uint32_t j = 8; j < ol; j++)
		host[j] = t_pat(req, j);
	memset(host + 4096, T_CANARY, 4096);
	segs[0] = (struct vh_vq_seg){ gpa, ol };
	segs[1] = (struct vh_vq_seg){ gpa + 4096, t_in_len(req) };
	r.segs = segs;
	r.out_num = 1;
	r.in_num = 1;
	r.token = 0xe000 + req;
	CHECK_EQ(vh_vq_driver_add_batch(dq->d, &r, 1), 1);
	vh_vq_driver_publish(dq->d);
	tdrv_kick(dq);
}

static int extra_done(struct tdrv_q *dq, const uint8_t *host, uint32_t req)
{
	struct vh_vq_driver_used u;
	uint32_t ol = t_out_len(req), il = t_in_len(req), want = ol < il ? ol : il;
	int64_t end = t_now_ms() + T_WAIT_MS;
	int n;

	while ((n = vh_vq_driver_get_used(dq->d, &u, 1)) == 0 && t_now_ms() < end)
		t_sleep_ms(2);
	if (n != 1)
		return -1;
	CHECK_EQ(u.token, 0xe000 + req);
	CHECK_EQ(u.len, want);
	for (uint32_t j = 0; j < want; j++)
		if ((host[4096 + j] ^ host[j]) != 0xff) {
			T_FAIL("extra request %u byte %u", req, j);
			return -1;
		}
	return 0;
}

static void test_memory_change_while_running(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 2, .nthreads = 2 };
	struct tdrv_cfg dc = { .nq = 2, .num = 64, .event_idx = 1, .nregions = 2,
			      .mem_size = 8u << 20 };
	struct vh_guest_mem_opts go = { .size = 1u << 20, .nregions = 1, .gpa_base = 1ull << 32 };
	struct vh_guest_mem *gm2 = NULL;
	struct vh_mem_region r2, r0;
	struct bg g;
	pthread_t th;
	struct tsrv t;
	struct tdrv dr;
	uint8_t *x;
	uint64_t xg, slots = 0;
	unsigned n;
	int fd2, fd0, base_maps;

	start(&t, &dr, &sc, &dc);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK(dr.pf & VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
	CHECK_EQ(vh_frontend_get_max_mem_slots(dr.fe, &slots), 0);
	CHECK_EQ(slots, 509);
	CHECK_EQ(vh_guest_mem_new_opts(&gm2, &go), 0);
	{
		const struct vh_region *rr = vh_guest_mem_regions(gm2, &n);

		r2.guest_phys_addr = rr[0].guest_phys_addr;
		r2.memory_size = rr[0].size;
		r2.userspace_addr = rr[0].userspace_addr;
		r2.mmap_offset = rr[0].fd_offset;
		fd2 = rr[0].fd;
	}
	CHECK_EQ(vh_guest_mem_alloc(gm2, 8192, 4096, &xg, (void **)&x), 0);
	base_maps = maps_of(fd2);
	CHECK_EQ(base_maps, 1); /* ours */

	g = (struct bg){ &dr, 0, 0, 0, 0 };
	pthread_create(&th, NULL, bg_traffic, &g);
	for (int i = 0; i < 20; i++) {
		/* Hot-plug and unplug while queue 0 runs; QEMU-style full table resends too. */
		CHECK_EQ(vh_frontend_add_mem_reg(dr.fe, &r2, fd2), 0);
		CHECK_EQ(maps_of(fd2), 2);
		submit_extra(&dr.q[1], xg, x, 100 + (uint32_t)i);
		CHECK_EQ(extra_done(&dr.q[1], x, 100 + (uint32_t)i), 0);
		CHECK_EQ(vh_frontend_rem_mem_reg(dr.fe, &r2), 0);
		CHECK_EQ(tdrv_set_mem(&dr), 0);
	}
	/* The running rings' region cannot go while they run: it breaks them, not the server
	 * (checked last, below). */
	__atomic_store_n(&g.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK_EQ(g.r, 0);
	CHECK(g.rounds > 0);
	for (int k = 0; k < 100 && maps_of(fd2) != base_maps; k++)
		t_sleep_ms(10);
	CHECK_EQ(maps_of(fd2), base_maps);

	/* An element popped from the extra region, held while the region is removed: its
	 * pointers stay good until the push, then the mapping goes. */
	t.dev.hold = 1;
	CHECK_EQ(vh_frontend_add_mem_reg(dr.fe, &r2, fd2), 0);
	submit_extra(&dr.q[1], xg, x, 500);
	for (int k = 0; k < 2000 && tdev_get(&t.dev, &t.dev.q[1].nheld) < 1; k++)
		t_sleep_ms(5);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.q[1].nheld), 1);
	CHECK_EQ(vh_frontend_rem_mem_reg(dr.fe, &r2), 0);
	CHECK_EQ(maps_of(fd2), 2); /* still mapped: an element points into it */
	t.dev.hold = 0;
	CHECK_EQ(tdev_complete(&t.dev, 1, NULL, 0), 1);
	CHECK_EQ(extra_done(&dr.q[1], x, 500), 0);
	for (int k = 0; k < 200 && maps_of(fd2) != base_maps; k++)
		t_sleep_ms(10); /* released by the control thread within its period */
	CHECK_EQ(maps_of(fd2), base_maps);
	CHECK_EQ(tdrv_traffic(&dr, 0, 100, 8), 0);
	CHECK_EQ(tdrv_traffic(&dr, 1, 100, 8), 0);

	/* Removing the region the rings live in breaks them (NEEDS_RESET), nothing worse. */
	tdrv_region(&dr, 0, &r0, &fd0);
	CHECK_EQ(vh_frontend_rem_mem_reg(dr.fe, &r0), 0);
	CHECK(t_wait_readable(dr.q[0].err, T_WAIT_MS));
	{
		uint8_t st = 0;

		CHECK_EQ(vh_frontend_get_status(dr.fe, &st), 0);
		CHECK(st & 0x40);
	}
	CHECK_EQ(vh_server_queue_is_broken(vh_server_get_queue(t.s, 0)), -EIO);
	finish(&t, &dr);
	vh_guest_mem_free(gm2);
	CHECK_BASELINE(b);
}

/* The whole vhost-user slot count: 8 regions by SET_MEM_TABLE, 501 more by ADD_MEM_REG, data
 * through rings spread over them, then a 510th region is refused. */
static void test_509_regions(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 2, .nthreads = 2 };
	struct tdrv_cfg dc = { .nq = 2, .num = 8, .event_idx = 1, .nregions = 509,
			      .mem_size = 509ull * 65536 };
	struct vh_guest_mem_opts go = { .size = 65536, .gpa_base = 1ull << 40 };
	struct vh_guest_mem *extra = NULL;
	struct vh_mem_region r;
	struct tsrv t;
	struct tdrv dr;
	unsigned n;
	int fd;

	start(&t, &dr, &sc, &dc);
	vh_guest_mem_regions(dr.gm, &n);
	CHECK_EQ(n, 509);
	CHECK_EQ(tdrv_handshake(&dr, TDRV_NO_RINGS), 0);
	for (unsigned i = 8; i < n; i++) {
		tdrv_region(&dr, i, &r, &fd);
		CHECK_EQ_M(vh_frontend_add_mem_reg(dr.fe, &r, fd), 0, "region %u", i);
	}
	for (unsigned i = 0; i < 2; i++) {
		CHECK_EQ(tdrv_start_ring(&dr, i, 0), 0);
		CHECK_EQ(tdrv_traffic(&dr, i, 200, 4), 0);
	}
	CHECK_EQ(vh_guest_mem_new_opts(&extra, &go), 0);
	{
		const struct vh_region *x = vh_guest_mem_regions(extra, &n);

		r.guest_phys_addr = x[0].guest_phys_addr;
		r.memory_size = x[0].size;
		r.userspace_addr = x[0].userspace_addr;
		r.mmap_offset = x[0].fd_offset;
		CHECK_EQ(vh_frontend_add_mem_reg(dr.fe, &r, x[0].fd), -EIO);
	}
	CHECK_EQ(tdrv_traffic(&dr, 0, 50, 4), 0);
	finish(&t, &dr);
	vh_guest_mem_free(extra);
	CHECK_BASELINE(b);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_base_stop_resume_split),
		T_TEST(test_base_stop_resume_packed),
		T_TEST(test_held_completed_at_stop),
		T_TEST(test_held_abandoned_at_stop),
		T_TEST(test_base_never_started),
		T_TEST(test_enable_late),
		T_TEST(test_no_protocol_features),
		T_TEST(test_kick_replaced),
		T_TEST(test_bad_notify_fds),
		T_TEST(test_reset_device),
		T_TEST(test_memory_change_while_running),
		T_TEST(test_509_regions),
	};

	t_warm_threads();
	return t_run(tests, NELEM(tests), argc, argv);
}
