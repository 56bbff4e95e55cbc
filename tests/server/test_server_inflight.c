/* SPDX-License-Identifier: MIT */
/*
 * Inflight resubmission (INFLIGHT_SHMFD), split and packed. A device pops requests, completes
 * some of them out of order and holds the rest; then the server goes away without completing
 * them: killed with SIGKILL in a child process (a real crash), or freed in-process, or just
 * the ring stopped with GET_VRING_BASE. The front-end reconnects to a new server on the same
 * socket and sends the same inflight buffer back (SET_INFLIGHT_FD), with the base QEMU falls
 * back to (the used index); the held requests must come back first, in the order they were
 * popped, each exactly once, and new requests after them. The driver checks every response
 * byte and that no request completes twice.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "srvtest.h"

#define INUM 64u
#define NSUB 12u

/* Requests 1, 2, 4, 5, 7, 8, 10, 11 are held; 0, 3, 6, 9 completed. */
static const uint32_t held_order[] = { 1, 2, 4, 5, 7, 8, 10, 11 };

static pid_t child_server(const char *path, int packed)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* Child: a server whose device holds what is not a multiple of 3, until killed. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	{
		struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
		struct tsrv t;

		(void)packed;
		if (tsrv_create(&t, &sc) || vh_server_listen(t.s, path))
			_exit(2);
		t.dev.hold_mod = 3;
		t.dev.s = t.s;
		vh_server_run(t.s, &t.opts);
		_exit(3);
	}
}

/* Connects to a fresh server on path, with the saved inflight buffer and the used index as
 * base; checks the resubmitted order, then runs new traffic. */
static void reconnect_and_check(struct tdrv *dr, const char *path, unsigned completed_before)
{
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tsrv t;
	unsigned n;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	CHECK_EQ(vh_server_listen(t.s, path), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_connect(dr, path), 0);
	CHECK(dr->inflight_fd >= 0);
	CHECK_EQ(tdrv_handshake(dr, TDRV_INFLIGHT), 0);
	/* The held requests come back (the start looks at the ring without a kick). */
	CHECK_EQ(tdrv_wait_done(&dr->q[0], completed_before + NELEM(held_order), T_WAIT_MS), 0);
	n = tdev_get(&t.dev, &t.dev.q[0].norder);
	CHECK_EQ(n, NELEM(held_order));
	pthread_mutex_lock(&t.dev.lock);
	for (unsigned i = 0; i < NELEM(held_order) && i < n; i++)
		CHECK_EQ_M(t.dev.q[0].order[i], held_order[i], "resubmitted #%u", i);
	pthread_mutex_unlock(&t.dev.lock);
	/* New requests after them, on the same ring. */
	CHECK_EQ(tdrv_traffic(dr, 0, 200, 16), 0);
	CHECK_EQ(dr->q[0].done, NSUB + 200);
	pthread_mutex_lock(&t.dev.lock);
	CHECK_EQ(t.dev.q[0].order[NELEM(held_order)], NSUB);
	CHECK_EQ(t.dev.q[0].bad, 0);
	CHECK_EQ(t.dev.q[0].pop_errors, 0);
	pthread_mutex_unlock(&t.dev.lock);
	CHECK_EQ(dr->q[0].bad, 0);
	CHECK_EQ(vh_vq_driver_is_broken(dr->q[0].d), 0);
	CHECK_EQ(tsrv_join(&t), 0);
	vh_frontend_free(dr->fe);
	dr->fe = NULL;
	tsrv_destroy(&t);
}

/* Submits NSUB requests and waits for the 4 the device completes. */
static void submit_and_hold(struct tdrv *dr)
{
	CHECK_EQ(tdrv_submit(&dr->q[0], NSUB), NSUB);
	CHECK_EQ(tdrv_wait_done(&dr->q[0], 4, T_WAIT_MS), 0);
	CHECK_EQ(dr->q[0].done, 4);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(dr->q[0].done_order[i], 3 * i);
}

static void crash_child(int packed)
{
	struct t_baseline b;
	struct tdrv_cfg dc = { .nq = 1, .num = INUM, .packed = packed, .event_idx = 1 };
	struct tdrv dr;
	char path[108];
	int status = 0;
	uint64_t f;
	pid_t pid;

	t_sock_path(path, sizeof(path), packed ? "crashp" : "crashs");
	pid = child_server(path, packed);
	CHECK(pid > 0);
	b = t_baseline();
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_connect(&dr, path), 0);
	CHECK_EQ(tdrv_handshake(&dr, TDRV_INFLIGHT), 0);
	submit_and_hold(&dr);
	/* Crash: nothing runs in the server any more. */
	kill(pid, SIGKILL);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK(vh_frontend_get_features(dr.fe, &f) < 0);
	vh_frontend_free(dr.fe);
	dr.fe = NULL;
	reconnect_and_check(&dr, path, 4);
	tdrv_fini(&dr);
	unlink(path);
	CHECK_BASELINE(b);
}

static void test_crash_split(void)
{
	crash_child(0);
}

static void test_crash_packed(void)
{
	crash_child(1);
}

/* The same with the first server freed in-process (its device gives the requests up). */
static void restart_in_process(int packed, int indirect)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 2 };
	struct tdrv_cfg dc = { .nq = 1, .num = INUM, .packed = packed, .indirect = indirect,
			      .event_idx = 1 };
	struct tdrv dr;
	struct tsrv t;
	char path[108];

	t_sock_path(path, sizeof(path), "restart");
	tdrv_init(&dr, &dc);
	CHECK_EQ(tsrv_create(&t, &sc), 0);
	CHECK_EQ(vh_server_listen(t.s, path), 0);
	t.dev.hold_mod = 3;
	tsrv_run(&t);
	CHECK_EQ(tdrv_connect(&dr, path), 0);
	CHECK_EQ(tdrv_handshake(&dr, TDRV_INFLIGHT), 0);
	submit_and_hold(&dr);
	CHECK_EQ(tsrv_join(&t), 0);
	tsrv_destroy(&t); /* queue_stop gives up the 8 held requests */
	vh_frontend_free(dr.fe);
	dr.fe = NULL;
	reconnect_and_check(&dr, path, 4);
	tdrv_fini(&dr);
	CHECK_BASELINE(b);
}

static void test_restart_split(void)
{
	restart_in_process(0, 0);
}

static void test_restart_packed(void)
{
	restart_in_process(1, 0);
}

static void test_restart_split_indirect(void)
{
	restart_in_process(0, 1);
}

static void test_restart_packed_indirect(void)
{
	restart_in_process(1, 1);
}

/* Same connection: GET_VRING_BASE with requests held (given up at stop), then the ring
 * restarts from the reported base and the held requests come back first. */
static void stop_resume(int packed)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = INUM, .packed = packed, .event_idx = 1 };
	struct tdrv dr;
	struct tsrv t;
	uint32_t v = 0;
	unsigned n;

	tdrv_init(&dr, &dc);
	CHECK_EQ(tsrv_create(&t, &sc), 0);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	t.dev.hold_mod = 3;
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, TDRV_INFLIGHT), 0);
	submit_and_hold(&dr);
	CHECK_EQ(vh_frontend_get_vring_base(dr.fe, 0, &v), 0);
	CHECK_EQ(tdev_get(&t.dev, &t.dev.q[0].abandoned), NELEM(held_order));
	pthread_mutex_lock(&t.dev.lock);
	t.dev.hold_mod = 0;
	t.dev.q[0].norder = 0;
	pthread_mutex_unlock(&t.dev.lock);
	CHECK_EQ(vh_frontend_set_vring_base(dr.fe, 0, v), 0);
	CHECK_EQ(vh_frontend_set_vring_kick(dr.fe, 0, dr.q[0].kick), 0);
	CHECK_EQ(tdrv_wait_done(&dr.q[0], NSUB, T_WAIT_MS), 0);
	n = tdev_get(&t.dev, &t.dev.q[0].norder);
	CHECK_EQ(n, NELEM(held_order));
	pthread_mutex_lock(&t.dev.lock);
	for (unsigned i = 0; i < NELEM(held_order) && i < n; i++)
		CHECK_EQ_M(t.dev.q[0].order[i], held_order[i], "resubmitted #%u", i);
	pthread_mutex_unlock(&t.dev.lock);
	CHECK_EQ(tdrv_traffic(&dr, 0, 100, 16), 0);
	CHECK_EQ(dr.q[0].bad, 0);
	t_teardown(&t, &dr);
	CHECK_BASELINE(b);
}

static void test_stop_resume_split(void)
{
	stop_resume(0);
}

static void test_stop_resume_packed(void)
{
	stop_resume(1);
}

/* Long traffic with tracking on, wrapping the indexes and the packed wrap counters, with
 * out-of-order completions: the records stay consistent (a restart after it resubmits
 * nothing and the ring continues). */
static void long_run(int packed)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = 64, .packed = packed, .event_idx = 1 };
	struct tdrv dr;
	struct tsrv t;
	char path[108];

	t_sock_path(path, sizeof(path), "long");
	tdrv_init(&dr, &dc);
	for (int round = 0; round < 2; round++) {
		CHECK_EQ(tsrv_create(&t, &sc), 0);
		CHECK_EQ(vh_server_listen(t.s, path), 0);
		tsrv_run(&t);
		CHECK_EQ(tdrv_connect(&dr, path), 0);
		CHECK_EQ(tdrv_handshake(&dr, TDRV_INFLIGHT), 0);
		/* Hold two of every three, complete the held ones in reverse from this thread. */
		for (int k = 0; k < 40; k++) {
			unsigned idx[16], nh;

			t.dev.hold = 1;
			CHECK_EQ(tdrv_submit(&dr.q[0], 7), 7);
			for (int w = 0; w < 2000 && tdev_get(&t.dev, &t.dev.q[0].nheld) < 7; w++)
				t_sleep_ms(1);
			nh = tdev_get(&t.dev, &t.dev.q[0].nheld);
			CHECK_EQ(nh, 7);
			for (unsigned i = 0; i < nh; i++)
				idx[i] = nh - 1 - i;
			CHECK_EQ(tdev_complete(&t.dev, 0, idx, nh), nh);
			pthread_mutex_lock(&t.dev.lock);
			t.dev.q[0].nheld = 0;
			pthread_mutex_unlock(&t.dev.lock);
			CHECK_EQ(tdrv_wait_done(&dr.q[0], dr.q[0].done + 7, T_WAIT_MS), 0);
		}
		CHECK_EQ(dr.q[0].bad, 0);
		CHECK_EQ(tsrv_join(&t), 0);
		vh_frontend_free(dr.fe);
		dr.fe = NULL;
		tsrv_destroy(&t);
	}
	CHECK_EQ(dr.q[0].done, 2 * 40 * 7);
	tdrv_fini(&dr);
	unlink(path);
	CHECK_BASELINE(b);
}

static void test_long_split(void)
{
	long_run(0);
}

static void test_long_packed(void)
{
	long_run(1);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_crash_split),
		T_TEST(test_crash_packed),
		T_TEST(test_restart_split),
		T_TEST(test_restart_packed),
		T_TEST(test_restart_split_indirect),
		T_TEST(test_restart_packed_indirect),
		T_TEST(test_stop_resume_split),
		T_TEST(test_stop_resume_packed),
		T_TEST(test_long_split),
		T_TEST(test_long_packed),
	};

	signal(SIGPIPE, SIG_IGN);
	t_warm_threads();
	return t_run(tests, NELEM(tests), argc, argv);
}
