/* SPDX-License-Identifier: MIT */
/*
 * Device side and driver side on two threads, notifying each other through eventfds the way a
 * back-end and a guest do: each side sleeps in poll() once its ring work is done and its
 * notifications are re-armed. Exercises the barriers and the re-arm protocol under real
 * concurrency; a lost kick or interrupt shows up as a poll() timeout and fails the run. Every
 * payload and response is checked byte for byte.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include "ringtest.h"

#define SLOT 256u
#define BATCH 16u
#define WAIT_MS 10000

struct pair {
	struct rt_env env;
	int kick_fd, call_fd;
	uint32_t total;
	unsigned nslots;
	uint64_t data_gpa;
	int dev_failed;
	unsigned kicks, calls;
};

static uint8_t pat(uint32_t req, unsigned j)
{
	return (uint8_t)(req * 29u + j * 13u + 1u);
}

static uint64_t slot_gpa(const struct pair *p, uint32_t req)
{
	return p->data_gpa + (uint64_t)(req % p->nslots) * 2u * SLOT;
}

static int wait_fd(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	uint64_t v;

	if (poll(&pfd, 1, WAIT_MS) != 1)
		return -1;
	return read(fd, &v, sizeof(v)) == sizeof(v) ? 0 : -1;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		abort();
}

static void *device_thread(void *arg)
{
	struct pair *p = arg;
	struct rt_elems el;
	struct vh_vq_used used[BATCH];
	uint32_t served = 0;
	uint8_t buf[SLOT];

	if (rt_elems_new(&el, BATCH, 8) < 0) {
		p->dev_failed = 1;
		return NULL;
	}
	while (served < __atomic_load_n(&p->total, __ATOMIC_ACQUIRE)) {
		int n = vh_vq_pop_batch(p->env.vq, el.e, BATCH), i;

		if (n < 0) {
			p->dev_failed = 2;
			break;
		}
		if (n == 0) {
			/* The empty pop re-armed the kick; sleep until the driver sends one. */
			if (wait_fd(p->kick_fd) < 0) {
				p->dev_failed = 3;
				break;
			}
			continue;
		}
		for (i = 0; i < n; i++) {
			struct vh_vq_elem *e = &el.e[i];
			uint32_t req, j;
			size_t got = vh_iov_to_buf(e->iov, e->out_num, 0, buf, sizeof(buf));

			memcpy(&req, buf, sizeof(req));
			if (got != SLOT || e->in_len != SLOT)
				p->dev_failed = 4;
			for (j = 4; j < SLOT; j++)
				if (buf[j] != pat(req, j))
					p->dev_failed = 5;
			for (j = 0; j < SLOT; j++)
				buf[j] = (uint8_t)(0xffu ^ pat(req, j));
			vh_buf_to_iov(e->iov + e->out_num, e->in_num, 0, buf, SLOT);
			used[i].id = e->id;
			used[i].len = SLOT;
		}
		if (vh_vq_push_batch(p->env.vq, used, (unsigned)n) < 0)
			p->dev_failed = 6;
		if (vh_vq_should_notify(p->env.vq) > 0) {
			p->calls++;
			signal_fd(p->call_fd);
		}
		served += (uint32_t)n;
	}
	rt_elems_free(&el);
	return NULL;
}

static void run(const char *name, uint64_t features, unsigned num, unsigned ind_max,
		uint32_t total)
{
	struct m_baseline b = m_baseline();
	struct vh_vq_seg segs[BATCH][2];
	struct vh_vq_driver_req reqs[BATCH];
	struct vh_vq_driver_used u[BATCH];
	uint32_t next = 0, done = 0;
	struct pair p;
	pthread_t th;
	int failures = t_failures;

	memset(&p, 0, sizeof(p));
	p.total = total;
	p.nslots = 2 * num;
	p.kick_fd = eventfd(0, EFD_CLOEXEC);
	p.call_fd = eventfd(0, EFD_CLOEXEC);
	CHECK_EQ(rt_setup(&p.env, num, features, ind_max), 0);
	p.data_gpa = rt_boundary() - (uint64_t)num * 2u * SLOT - 8; /* some straddle */
	if (pthread_create(&th, NULL, device_thread, &p) != 0) {
		T_FAIL("%s: thread", name);
		goto out;
	}
	while (done < total && t_failures == failures && !__atomic_load_n(&p.dev_failed, __ATOMIC_ACQUIRE)) {
		unsigned n = 0, i;
		int got, added = 0;

		while (n < BATCH && next + n < total && vh_vq_driver_inflight(p.env.drv) + n < num) {
			uint32_t req = next + n, j;
			uint64_t g = slot_gpa(&p, req);
			uint8_t *h = rt_host(&p.env, g);

			for (j = 0; j < SLOT; j++)
				h[j] = pat(req, j);
			memcpy(h, &req, sizeof(req));
			segs[n][0] = (struct vh_vq_seg){ g, SLOT };
			segs[n][1] = (struct vh_vq_seg){ g + SLOT, SLOT };
			reqs[n] = (struct vh_vq_driver_req){ segs[n], 1, 1, req };
			n++;
		}
		if (n) {
			added = vh_vq_driver_add_batch(p.env.drv, reqs, n);
			if (added == -ENOSPC)
				added = 0;
			CHECK(added >= 0);
			if (added > 0) {
				next += (uint32_t)added;
				vh_vq_driver_publish(p.env.drv);
				if (vh_vq_driver_should_kick(p.env.drv)) {
					p.kicks++;
					signal_fd(p.kick_fd);
				}
			}
		}
		got = vh_vq_driver_get_used(p.env.drv, u, BATCH);
		CHECK(got >= 0);
		for (i = 0; i < (unsigned)(got > 0 ? got : 0); i++) {
			const uint8_t *h = rt_host(&p.env, slot_gpa(&p, (uint32_t)u[i].token) + SLOT);
			unsigned j;

			CHECK_EQ(u[i].token, done + i); /* the device completes in order */
			CHECK_EQ(u[i].len, SLOT);
			for (j = 0; j < SLOT; j++) {
				uint8_t want = (uint8_t)(0xffu ^ pat((uint32_t)u[i].token, j));

				if (h[j] != want) {
					T_FAIL("%s: request %llu byte %u", name,
					       (unsigned long long)u[i].token, j);
					break;
				}
			}
		}
		done += (uint32_t)(got > 0 ? got : 0);
		if (got <= 0 && added <= 0 && done < total) {
			/* Nothing to do: re-enable interrupts, sleep unless work slipped in. */
			if (vh_vq_driver_enable_cb(p.env.drv) == 0 && wait_fd(p.call_fd) < 0) {
				T_FAIL("%s: no interrupt for %d ms at %u/%u (lost notification?)",
				       name, WAIT_MS, done, total);
				break;
			}
			vh_vq_driver_disable_cb(p.env.drv);
		}
	}
	if (t_failures != failures || __atomic_load_n(&p.dev_failed, __ATOMIC_ACQUIRE)) {
		/* Let a device thread stuck in poll() run out of its wait. */
		__atomic_store_n(&p.total, 0, __ATOMIC_RELEASE);
		signal_fd(p.kick_fd);
	}
	pthread_join(th, NULL);
	CHECK_EQ(p.dev_failed, 0);
	CHECK_EQ(done, total);
	printf("# %-24s %u requests, %u kicks, %u interrupts\n", name, total, p.kicks, p.calls);
out:
	rt_teardown(&p.env);
	close(p.kick_fd);
	close(p.call_fd);
	if (strcmp(name, "warm-up") != 0)
		CHECK_BASELINE_M(b);
	else
		CHECK_FDS_BASELINE(b);
}

static unsigned requests(void)
{
	const char *s = getenv("RING_TEST_REQUESTS");

	return s ? (unsigned)strtoul(s, NULL, 0) : 100000;
}

static void test_threads(void)
{
	/* A first short run leaves glibc's thread stack cache and the thread's malloc arena
	 * mapped for good; the baselines of the runs that follow include them. */
	run("warm-up", 0, 64, 0, 1000);
	run("split", 0, 64, 0, requests());
	run("split+event", VH_VQ_F_EVENT_IDX, 64, 0, requests());
	run("split+event+indirect", VH_VQ_F_EVENT_IDX | VH_VQ_F_INDIRECT_DESC, 32, 4, requests());
	run("packed", RT_PACKED, 63, 0, requests());
	run("packed+event", RT_PACKED | VH_VQ_F_EVENT_IDX, 63, 0, requests());
	run("packed+event+indirect", RT_PACKED | VH_VQ_F_EVENT_IDX | VH_VQ_F_INDIRECT_DESC, 31, 4,
	    requests());
}

static const struct t_test tests[] = {
	T_TEST(test_threads),
};

T_MAIN(tests)
