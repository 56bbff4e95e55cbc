/* SPDX-License-Identifier: MIT */
/*
 * Data both ways through a vh_server driven by libvhost's front-end: split and packed rings
 * (with EVENT_IDX, indirect, IN_ORDER), over a socketpair and over a socket path, several
 * queues on two worker threads with traffic on all of them at once, the event-loop agnostic
 * API, NOFD (polled) kicks, busy-poll (kicks off while polling, on again before sleeping),
 * a device that pops a few requests per call, and client mode with reconnect. Every response byte and
 * length is checked by the driver, every request payload byte by the device; fd and mapping
 * counts return to their baseline.
 */
#include <signal.h>
#include "srvtest.h"

static void check_clean(struct tsrv *t, struct tdrv *dr)
{
	for (unsigned i = 0; i < dr->nq; i++) {
		CHECK_EQ(dr->q[i].bad, 0);
		CHECK_EQ(t->dev.q[i].bad, 0);
		CHECK_EQ(t->dev.q[i].pop_errors, 0);
	}
}

static void status_ok(struct tdrv *dr)
{
	uint8_t st = 0xff;

	if (!(dr->pf & VH_BIT(VH_USER_PROTOCOL_F_STATUS)))
		return;
	CHECK_EQ(vh_frontend_get_status(dr->fe, &st), 0);
	CHECK_EQ(st & 0x40, 0);
}

/* One queue over a socketpair: handshake, traffic, stats, disconnect. */
static void one_queue(const struct tdrv_cfg *dc, unsigned nthreads, unsigned total)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = nthreads };
	struct vh_server_queue_stats st;
	struct tsrv t;
	struct tdrv dr;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	tdrv_init(&dr, dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK_EQ(tdrv_traffic(&dr, 0, total, 32), 0);
	CHECK_EQ(dr.q[0].done, total);
	/* Calls the driver never had to wait for are still counted in the eventfd. */
	CHECK(dr.q[0].calls > 0 || t_read_counter(dr.q[0].call) > 0);
	check_clean(&t, &dr);
	status_ok(&dr);
	vh_server_queue_get_stats(vh_server_get_queue(t.s, 0), &st);
	CHECK_EQ(st.popped, total);
	CHECK_EQ(st.pushed, total);
	CHECK(st.notifies > 0);
	CHECK_EQ(st.faults, 0);
	CHECK_EQ(vh_server_queue_size(vh_server_get_queue(t.s, 0)), dc->num);
	CHECK_EQ(vh_server_features(t.s) & VH_BIT(VH_F_RING_PACKED),
		 dc->packed ? VH_BIT(VH_F_RING_PACKED) : 0);
	vh_frontend_free(dr.fe);
	dr.fe = NULL;
	/* The only connection went: run() returns by itself. */
	pthread_join(t.thread, NULL);
	t.running = 0;
	CHECK_EQ(t.result, -ECONNRESET);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.disconnects), 1);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].stops), 1);
	tsrv_destroy(&t);
	tdrv_fini(&dr);
	CHECK_BASELINE(b);
}

static void test_split(void)
{
	struct tdrv_cfg c = { .nq = 1, .num = 128, .event_idx = 1 };

	one_queue(&c, 1, 3000);
}

static void test_split_indirect_noevent(void)
{
	struct tdrv_cfg c = { .nq = 1, .num = 64, .indirect = 1 };

	one_queue(&c, 2, 1500);
}

static void test_split_in_order_regions(void)
{
	struct tdrv_cfg c = { .nq = 1, .num = 256, .event_idx = 1, .in_order = 1,
			      .nregions = 4, .mem_size = 32u << 20 };

	one_queue(&c, 1, 2000);
}

static void test_packed(void)
{
	struct tdrv_cfg c = { .nq = 1, .num = 100, .packed = 1, .event_idx = 1 };

	one_queue(&c, 1, 3000);
}

static void test_packed_indirect_in_order(void)
{
	struct tdrv_cfg c = { .nq = 1, .num = 64, .packed = 1, .indirect = 1, .in_order = 1 };

	one_queue(&c, 2, 1500);
}

/* Guest memory on hugetlbfs (2 MiB pages), two regions; needs reserved huge pages (CI reserves
 * them and sets LIBVHOST_REQUIRE_HUGEPAGES, so there it cannot pass without running). */
static void test_hugetlb_memory(void)
{
	struct vh_guest_mem_opts o = { .size = 4u << 20, .flags = VH_GUEST_MEM_HUGETLB };
	struct vh_guest_mem *probe = NULL;
	struct tdrv_cfg c = { .nq = 1, .num = 128, .event_idx = 1, .nregions = 2,
			      .mem_size = 4u << 20, .mem_flags = VH_GUEST_MEM_HUGETLB };
	int r = vh_guest_mem_new_opts(&probe, &o);
	const char *req = getenv("LIBVHOST_REQUIRE_HUGEPAGES");

	vh_guest_mem_free(probe);
	if (r) {
		printf("# hugetlb guest memory not available (%s)%s\n", t_errname(r),
		       req && *req == '1' ? "" : ": not run");
		CHECK(!(req && *req == '1'));
		return;
	}
	one_queue(&c, 1, 1000);
	c.packed = 1;
	c.num = 100;
	one_queue(&c, 2, 1000);
}

/* ---- Several queues on two workers, traffic on all at once -------------------------------- */

struct mq_arg {
	struct tdrv *dr;
	unsigned q;
	unsigned total;
	int r;
};

static void *mq_traffic(void *arg)
{
	struct mq_arg *a = arg;

	a->r = tdrv_traffic(a->dr, a->q, a->total, 24);
	return NULL;
}

static void multiqueue(int packed)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 4, .nthreads = 2 };
	struct tdrv_cfg dc = { .nq = 4, .num = 64, .packed = packed, .event_idx = 1 };
	struct mq_arg args[4];
	pthread_t th[4];
	struct tsrv t;
	struct tdrv dr;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	/* Queues 0 and 2 on worker 1, 1 and 3 on worker 0. */
	t.queue_thread[0] = 1;
	t.queue_thread[1] = 0;
	t.queue_thread[2] = 1;
	t.queue_thread[3] = 0;
	t.opts.queue_thread = t.queue_thread;
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	for (unsigned i = 0; i < 4; i++) {
		args[i] = (struct mq_arg){ &dr, i, 1500 + i * 100, -1 };
		pthread_create(&th[i], NULL, mq_traffic, &args[i]);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_M(args[i].r, 0, "queue %u", i);
		CHECK_EQ(dr.q[i].done, args[i].total);
	}
	check_clean(&t, &dr);
	status_ok(&dr);
	CHECK_EQ(tsrv_join(&t), 0); /* stopped while connected */
	vh_frontend_free(dr.fe);
	dr.fe = NULL;
	tsrv_destroy(&t);
	tdrv_fini(&dr);
	CHECK_BASELINE(b);
}

static void test_multiqueue_split(void)
{
	multiqueue(0);
}

static void test_multiqueue_packed(void)
{
	multiqueue(1);
}

/* ---- Socket path, reconnect in server mode ---------------------------------------------- */

static void test_socket_path_reconnect(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 2, .nthreads = 2 };
	struct tdrv_cfg dc = { .nq = 2, .num = 32, .event_idx = 1 };
	char path[108];
	struct tsrv t;
	struct tdrv dr;

	t_sock_path(path, sizeof(path), "srv");
	CHECK_EQ(tsrv_create(&t, &sc), 0);
	CHECK_EQ(vh_server_listen(t.s, path), 0);
	tdrv_init(&dr, &dc);
	tsrv_run(&t);
	for (int round = 0; round < 3; round++) {
		CHECK_EQ(tdrv_connect(&dr, path), 0);
		/* The rings continue where the last connection left them (all completed). */
		CHECK_EQ(tdrv_handshake(&dr, 0), 0);
		for (unsigned i = 0; i < 2; i++)
			CHECK_EQ(tdrv_traffic(&dr, i, 500, 16), 0);
		vh_frontend_free(dr.fe);
		dr.fe = NULL;
		/* The server notices, stops the queues and serves the next connection. */
		for (int k = 0; k < 400 && tdev_get(&t.dev, &t.dev.disconnects) < (unsigned)round + 1;
		     k++)
			t_sleep_ms(10);
		CHECK_EQ(tdev_get(&t.dev, &t.dev.disconnects), round + 1);
	}
	CHECK_EQ(dr.q[0].done, 1500);
	CHECK_EQ(dr.q[1].done, 1500);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].starts), 3);
	check_clean(&t, &dr);
	CHECK_EQ(tsrv_join(&t), 0);
	tsrv_destroy(&t);
	CHECK_EQ(access(path, F_OK), -1); /* the socket file went with the server */
	tdrv_fini(&dr);
	CHECK_BASELINE(b);
}

/* ---- Client mode with reconnect ------------------------------------------------------------ */

static void test_client_mode_reconnect(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1, .reconnect = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = 32, .packed = 1, .event_idx = 1 };
	struct vh_frontend_config fc = t_fe_cfg();
	char path[108];
	struct tsrv t;
	struct tdrv dr;
	int lfd;

	t_sock_path(path, sizeof(path), "cli");
	lfd = vh_socket_listen(path);
	CHECK(lfd >= 0);
	CHECK_EQ(tsrv_create(&t, &sc), 0);
	CHECK_EQ(vh_server_connect(t.s, path), 0);
	tdrv_init(&dr, &dc);
	tsrv_run(&t);
	for (int round = 0; round < 2; round++) {
		int fd;

		CHECK(t_wait_readable(lfd, T_WAIT_MS));
		fd = vh_socket_accept(lfd);
		CHECK(fd >= 0);
		CHECK_EQ(vh_frontend_new(&dr.fe, fd, &fc), 0);
		CHECK_EQ(tdrv_handshake(&dr, 0), 0);
		CHECK_EQ(tdrv_traffic(&dr, 0, 400, 16), 0);
		vh_frontend_free(dr.fe);
		dr.fe = NULL;
	}
	CHECK_EQ(dr.q[0].done, 800);
	check_clean(&t, &dr);
	CHECK_EQ(tsrv_join(&t), 0);
	tsrv_destroy(&t);
	close(lfd);
	unlink(path);
	tdrv_fini(&dr);
	CHECK_BASELINE(b);
}

/* Client mode without reconnect: run() returns when the front-end goes. */
static void test_client_mode_no_reconnect(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = 16 };
	struct vh_frontend_config fc = t_fe_cfg();
	char path[108];
	struct tsrv t;
	struct tdrv dr;
	int lfd, fd;

	t_sock_path(path, sizeof(path), "cli1");
	lfd = vh_socket_listen(path);
	CHECK(lfd >= 0);
	CHECK_EQ(tsrv_create(&t, &sc), 0);
	CHECK_EQ(vh_server_connect(t.s, path), 0);
	tdrv_init(&dr, &dc);
	tsrv_run(&t);
	fd = vh_socket_accept(lfd);
	if (fd < 0 && t_wait_readable(lfd, T_WAIT_MS))
		fd = vh_socket_accept(lfd);
	CHECK(fd >= 0);
	CHECK_EQ(vh_frontend_new(&dr.fe, fd, &fc), 0);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK_EQ(tdrv_traffic(&dr, 0, 100, 8), 0);
	vh_frontend_free(dr.fe);
	dr.fe = NULL;
	pthread_join(t.thread, NULL);
	t.running = 0;
	CHECK_EQ(t.result, -ECONNRESET);
	tsrv_destroy(&t);
	close(lfd);
	unlink(path);
	tdrv_fini(&dr);
	CHECK_BASELINE(b);
}

/* ---- Event-loop agnostic use ---------------------------------------------------------------- */

struct agn {
	struct vh_server *s;
	unsigned nq;
	int stop;
	unsigned dispatches, runs;
};

static void *agn_main(void *arg)
{
	struct agn *a = arg;

	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p[1 + T_MAXQ];
		unsigned map[1 + T_MAXQ], n = 0;

		p[n].fd = vh_server_control_fd(a->s);
		p[n].events = POLLIN;
		map[n++] = UINT32_MAX;
		for (unsigned i = 0; i < a->nq; i++) {
			int fd = vh_server_queue_fd(a->s, i);

			if (fd >= 0) {
				p[n].fd = fd;
				p[n].events = POLLIN;
				map[n++] = i;
			}
		}
		if (poll(p, n, 10) < 0)
			continue;
		for (unsigned k = 0; k < n; k++) {
			if (!(p[k].revents & POLLIN))
				continue;
			if (map[k] == UINT32_MAX) {
				vh_server_dispatch(a->s);
				a->dispatches++;
				break; /* queue fds may have changed */
			}
			if (vh_server_run_queue(a->s, map[k]) == 0)
				a->runs++;
		}
		for (unsigned i = 0; i < a->nq; i++)
			if (vh_server_queue_polled(a->s, i))
				vh_server_run_queue(a->s, i);
	}
	return NULL;
}

static void agnostic(int nofd, unsigned budget)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 2 };
	struct tdrv_cfg dc = { .nq = 2, .num = 64, .event_idx = 1 };
	struct agn a = { 0 };
	pthread_t th;
	struct tsrv t;
	struct tdrv dr;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	t.dev.s = t.s;
	t.dev.budget = budget;
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	a.s = t.s;
	a.nq = 2;
	pthread_create(&th, NULL, agn_main, &a);
	CHECK_EQ(tdrv_handshake(&dr, nofd ? TDRV_NOFD_KICK : 0), 0);
	CHECK_EQ(vh_server_queue_polled(t.s, 0), nofd);
	CHECK_EQ(vh_server_queue_fd(t.s, 0) >= 0, !nofd);
	CHECK_EQ(vh_server_run_queue(t.s, 7), -EINVAL);
	for (unsigned i = 0; i < 2; i++)
		CHECK_EQ(tdrv_traffic(&dr, i, 800, 16), 0);
	check_clean(&t, &dr);
	vh_frontend_free(dr.fe);
	dr.fe = NULL;
	for (int k = 0; k < 400 && tdev_get(&t.dev, &t.dev.disconnects) == 0; k++)
		t_sleep_ms(10);
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK(a.dispatches > 10);
	if (!nofd)
		CHECK(a.runs > 0);
	CHECK_EQ(vh_server_control_fd(t.s), -1); /* no connection, no listener */
	CHECK_EQ(vh_server_dispatch(t.s), -ENOTCONN);
	tsrv_destroy(&t);
	tdrv_fini(&dr);
	CHECK_BASELINE(b);
}

static void test_agnostic(void)
{
	agnostic(0, 0);
	/* A device that pops 3 per call: the kick fd stays readable while buffers wait. */
	agnostic(0, 3);
}

static void test_agnostic_nofd(void)
{
	agnostic(1, 0);
}

/* ---- NOFD kick and busy-poll under the daemon ---------------------------------------------- */

static void daemon_polled(int nofd, int poll_us, int packed)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1, .poll_us = poll_us };
	struct tdrv_cfg dc = { .nq = 1, .num = 64, .packed = packed, .event_idx = 1 };
	struct vh_server_queue_stats st;
	struct tsrv t;
	struct tdrv dr;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, nofd ? TDRV_NOFD_KICK : 0), 0);
	CHECK_EQ(tdrv_traffic(&dr, 0, 1000, 16), 0);
	check_clean(&t, &dr);
	vh_server_queue_get_stats(vh_server_get_queue(t.s, 0), &st);
	if (nofd)
		CHECK_EQ(st.kicks, 0); /* nothing to read: served by polling alone */
	t_teardown(&t, &dr);
	CHECK_BASELINE(b);
}

static void test_nofd_kick_polled(void)
{
	daemon_polled(1, 0, 0);
	daemon_polled(1, 0, 1);
}

static void test_busy_poll(void)
{
	daemon_polled(0, 300, 0);
}

/* ---- Kicks: a device with a budget; busy-poll turning them off and on -------------------- */

/* The device pops at most 3 requests per call and is woken by kicks alone. The driver kicks
 * only after a pop found the ring empty, so the worker must look again after a call that did
 * work instead of waiting for a kick that never comes. */
static void kick_budget(int packed)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = 128, .packed = packed, .event_idx = 1 };
	struct tsrv t;
	struct tdrv dr;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	t.dev.budget = 3;
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK_EQ(tdrv_traffic(&dr, 0, 3000, 64), 0);
	CHECK_EQ(dr.q[0].done, 3000);
	check_clean(&t, &dr);
	t_teardown(&t, &dr);
	CHECK_BASELINE(b);
}

static void test_kick_budget(void)
{
	kick_budget(0);
	kick_budget(1);
}

/*
 * Busy-poll with a 1 ms window: the worker turns the driver's kicks off while it polls and
 * must turn them back on (and look once more) before it sleeps. Bursts separated by pauses of
 * 0 to 3 ms cross that transition at every point; a burst published after the kicks were left
 * off, or between turning them on and sleeping without a last look, would wait forever.
 */
static void poll_sleep(int packed, int event_idx)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1, .poll_us = 1000 };
	struct tdrv_cfg dc = { .nq = 1, .num = 64, .packed = packed, .event_idx = event_idx };
	struct tsrv t;
	struct tdrv dr;
	struct tdrv_q *dq = &dr.q[0];

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	for (unsigned round = 0; round < 240; round++) {
		unsigned k = 1 + round % 7, target = dq->done + k;

		CHECK_EQ(tdrv_submit(dq, k), k);
		if (tdrv_wait_done(dq, target, 5000)) {
			T_FAIL("round %u: %u of %u requests done: a kick was lost", round,
			       dq->done - (target - k), k);
			break;
		}
		t_sleep_ms(round % 4);
	}
	check_clean(&t, &dr);
	t_teardown(&t, &dr);
	CHECK_BASELINE(b);
}

static void test_poll_sleep_kicks(void)
{
	poll_sleep(0, 1);
	poll_sleep(0, 0);
	poll_sleep(1, 1);
	poll_sleep(1, 0);
}

/* While the worker busy-polls (a window longer than the test), steady traffic needs no kicks:
 * at most the ones before the first poll. */
static void poll_no_kicks(int packed)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1, .poll_us = 1000000 };
	struct tdrv_cfg dc = { .nq = 1, .num = 128, .packed = packed, .event_idx = 1 };
	struct vh_server_queue_stats st;
	struct tsrv t;
	struct tdrv dr;
	unsigned k0;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK_EQ(tdrv_traffic(&dr, 0, 200, 32), 0);
	k0 = dr.q[0].kicks;
	CHECK_EQ(tdrv_traffic(&dr, 0, 6000, 32), 0);
	/* Without turning them off: a kick after nearly every pass that emptied the ring. */
	CHECK(dr.q[0].kicks - k0 <= 3);
	check_clean(&t, &dr);
	vh_server_queue_get_stats(vh_server_get_queue(t.s, 0), &st);
	CHECK_EQ(st.popped, 6200);
	t_teardown(&t, &dr);
	CHECK_BASELINE(b);
}

static void test_poll_no_kicks(void)
{
	poll_no_kicks(0);
	poll_no_kicks(1);
}

/* ---- A device fd watched by the queue's worker (asynchronous completions) ------------------ */

static void test_watch_fd_async(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 2 };
	struct tdrv_cfg dc = { .nq = 1, .num = 64, .event_idx = 1 };
	struct tsrv t;
	struct tdrv dr;
	unsigned calls;
	uint32_t v = 0;
	uint64_t one = 1;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	t.dev.watch_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t.dev.hold = 1;
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	for (int round = 0; round < 20; round++) {
		unsigned target = dr.q[0].done + 5;

		CHECK_EQ(tdrv_submit(&dr.q[0], 5), 5);
		for (int k = 0; k < 2000 && tdev_get(&t.dev, &t.dev.q[0].nheld) < 5; k++)
			t_sleep_ms(1);
		CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].nheld), 5);
		t_sleep_ms(2);
		CHECK_EQ(tdrv_collect(&dr.q[0]), 0); /* held until the device fd fires */
		CHECK_EQ(write(t.dev.watch_efd, &one, sizeof(one)), (ssize_t)sizeof(one));
		CHECK_EQ(tdrv_wait_done(&dr.q[0], target, T_WAIT_MS), 0);
	}
	CHECK_EQ(dr.q[0].bad, 0);
	/* A stopped queue's device fd does not run process. */
	CHECK_EQ(vh_frontend_get_vring_base(dr.fe, 0, &v), 0);
	calls = tdev_get(&t.dev, &t.dev.process_calls);
	CHECK_EQ(write(t.dev.watch_efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	t_sleep_ms(50);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.process_calls), calls);
	/* Restarted, it is watched again (queue_start registers it once more). */
	CHECK_EQ(vh_frontend_set_vring_base(dr.fe, 0, v), 0);
	CHECK_EQ(vh_frontend_set_vring_kick(dr.fe, 0, dr.q[0].kick), 0);
	CHECK_EQ(tdrv_submit(&dr.q[0], 3), 3);
	for (int k = 0; k < 2000 && tdev_get(&t.dev, &t.dev.q[0].nheld) < 3; k++)
		t_sleep_ms(1);
	CHECK_EQ(write(t.dev.watch_efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	CHECK_EQ(tdrv_wait_done(&dr.q[0], 103, T_WAIT_MS), 0);
	CHECK_EQ(tsrv_join(&t), 0);
	vh_frontend_free(dr.fe);
	dr.fe = NULL;
	close(t.dev.watch_efd);
	tsrv_destroy(&t);
	tdrv_fini(&dr);
	CHECK_BASELINE(b);
}

/* ---- vh_server_stop() from a signal handler --------------------------------------------------- */

static struct vh_server *sig_server;

static void on_sigusr1(int sig)
{
	(void)sig;
	vh_server_stop(sig_server);
}

static void test_stop_from_signal(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 2, .nthreads = 2 };
	struct tdrv_cfg dc = { .nq = 2, .num = 32 };
	struct sigaction sa, old;
	struct tsrv t;
	struct tdrv dr;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK_EQ(tdrv_traffic(&dr, 0, 200, 8), 0);
	sig_server = t.s;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigaction(SIGUSR1, &sa, &old);
	kill(getpid(), SIGUSR1);
	pthread_join(t.thread, NULL);
	t.running = 0;
	CHECK_EQ(t.result, 0);
	sigaction(SIGUSR1, &old, NULL);
	/* Every worker is gone; the connection stays and a new run serves it again. */
	tsrv_run(&t);
	CHECK_EQ(tdrv_traffic(&dr, 1, 200, 8), 0);
	t_teardown(&t, &dr);
	CHECK_BASELINE(b);
}

/* ---- Misc API contracts ------------------------------------------------------------------- */

static void test_api_contracts(void)
{
	struct t_baseline b = t_baseline();
	struct vh_server_config cfg;
	struct vh_server_ops ops = { .process = tdev_process };
	struct vh_server_run_opts ro = { .nthreads = 65 };
	unsigned qt[1] = { 1 };
	struct vh_server *s = NULL;
	uint64_t f;

	memset(&cfg, 0, sizeof(cfg));
	cfg.num_queues = 1;
	CHECK_EQ(vh_server_new(&s, &cfg, NULL, NULL), -EINVAL);
	CHECK_EQ(vh_server_new(&s, &cfg, &(struct vh_server_ops){ 0 }, NULL), -EINVAL);
	cfg.num_queues = 0;
	CHECK_EQ(vh_server_new(&s, &cfg, &ops, NULL), -EINVAL);
	cfg.num_queues = 257;
	CHECK_EQ(vh_server_new(&s, &cfg, &ops, NULL), -EINVAL);
	cfg.num_queues = 1;
	cfg.features_mask = VH_BIT(VH_F_RING_PACKED);
	cfg.protocol_mask = VH_BIT(VH_USER_PROTOCOL_F_LOG_SHMFD);
	cfg.device_features = 1ull << 9;
	CHECK_EQ(vh_server_new(&s, &cfg, &ops, NULL), 0);
	f = vh_backend_features_offered(vh_server_backend(s));
	CHECK(f & (1ull << 9));
	CHECK(!(f & VH_BIT(VH_F_RING_PACKED)));
	CHECK(!(f & VH_BIT(VH_F_LOG_ALL))); /* no log without LOG_SHMFD */
	CHECK(f & VH_BIT(VH_F_EVENT_IDX));
	CHECK(f & VH_BIT(VH_USER_F_PROTOCOL_FEATURES));
	CHECK_EQ(vh_server_get_queue(s, 1), NULL);
	CHECK(vh_server_get_queue(s, 0) != NULL);
	CHECK_EQ(vh_server_queue_fd(s, 0), -1);
	CHECK_EQ(vh_server_run_queue(s, 0), -EAGAIN);
	CHECK_EQ(vh_server_queue_pop(vh_server_get_queue(s, 0), NULL, 0), 0);
	CHECK_EQ(vh_server_queue_push(vh_server_get_queue(s, 0), &(struct vh_vq_used){ 0, 0 }, 1),
		 -EINVAL);
	CHECK_EQ(vh_server_queue_notify(vh_server_get_queue(s, 0)), 0);
	CHECK_EQ(vh_server_run(s, &ro), -EINVAL);
	ro.nthreads = 1;
	ro.queue_thread = qt;
	CHECK_EQ(vh_server_run(s, &ro), -EINVAL);
	ro.queue_thread = NULL;
	CHECK_EQ(vh_server_run(s, &ro), -ENOTCONN);
	/* A stop requested before run() ends the next run at once. */
	CHECK_EQ(vh_server_listen(s, "/tmp/vh-test-api-contract.sock"), 0);
	vh_server_stop(s);
	CHECK_EQ(vh_server_run(s, &ro), 0);
	vh_server_free(s);
	vh_server_free(NULL);
	CHECK_EQ(access("/tmp/vh-test-api-contract.sock", F_OK), -1);
	CHECK_BASELINE(b);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_api_contracts),
		T_TEST(test_split),
		T_TEST(test_split_indirect_noevent),
		T_TEST(test_split_in_order_regions),
		T_TEST(test_packed),
		T_TEST(test_packed_indirect_in_order),
		T_TEST(test_hugetlb_memory),
		T_TEST(test_multiqueue_split),
		T_TEST(test_multiqueue_packed),
		T_TEST(test_socket_path_reconnect),
		T_TEST(test_client_mode_reconnect),
		T_TEST(test_client_mode_no_reconnect),
		T_TEST(test_agnostic),
		T_TEST(test_agnostic_nofd),
		T_TEST(test_nofd_kick_polled),
		T_TEST(test_busy_poll),
		T_TEST(test_kick_budget),
		T_TEST(test_poll_sleep_kicks),
		T_TEST(test_poll_no_kicks),
		T_TEST(test_watch_fd_async),
		T_TEST(test_stop_from_signal),
	};

	t_warm_threads();
	return t_run(tests, NELEM(tests), argc, argv);
}
