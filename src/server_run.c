/* SPDX-License-Identifier: MIT */
/*
 * The daemon: vh_server_run() serves the control connection on the calling thread and runs the
 * queues on epoll worker threads (each queue belongs to one worker). Kick fds and device fds
 * are registered with the owning worker's epoll while a queue runs; polled queues (NOFD kick,
 * busy-poll) are run by their worker on every loop. vh_server_stop() ends it from anywhere,
 * signal handlers included.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <libvhost/endpoint.h>
#include "server_priv.h"

#define VHP_MAX_WORKERS 64u
#define VHP_RECONNECT_MS 1000
/* Control loop wake-up period, to release memory tables workers stopped using. */
#define VHP_RECLAIM_MS 200
/* A polled queue with nothing to do is looked at again after this long. */
#define VHP_IDLE_POLL_MS 1
#define VHP_POLL_GRACE_NS 50000ull

struct vhp_worker {
	struct vh_server *s;
	unsigned idx;
	int epfd;
	int wake_fd;
	struct vhp_src wake_src;
	pthread_t thread;
	int started;
};

struct vhp_run {
	unsigned nthreads;
	struct vhp_worker *w;
	uint64_t poll_ns;
	int stop; /* atomic */
};

static struct vhp_run *cur_run(const struct vh_server *s)
{
	return __atomic_load_n(&s->run, __ATOMIC_ACQUIRE);
}

int vhp_run_watch(struct vh_server_queue *q, int kind, int fd)
{
	struct vhp_run *run = cur_run(q->s);
	struct epoll_event ev;
	int *reg = kind == VHP_SRC_KICK ? &q->kick_reg : &q->watch_reg;
	struct vhp_worker *w;

	if (!run || fd < 0)
		return 0;
	w = &run->w[q->worker];
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = kind == VHP_SRC_KICK ? &q->kick_src : &q->watch_src;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) &&
	    (errno != EEXIST || epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev))) {
		int e = -errno;

		vhp_warn(SLOG(q->s), "server: queue %u: cannot watch fd %d: %d", q->idx, fd, e);
		return e;
	}
	*reg = fd;
	return 0;
}

void vhp_run_unwatch(struct vh_server_queue *q, int kind)
{
	struct vhp_run *run = cur_run(q->s);
	int *reg = kind == VHP_SRC_KICK ? &q->kick_reg : &q->watch_reg;

	if (*reg < 0)
		return;
	if (run)
		(void)epoll_ctl(run->w[q->worker].epfd, EPOLL_CTL_DEL, *reg, NULL);
	*reg = -1;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;
	ssize_t r;

	do
		r = write(fd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
}

void vhp_run_wake(struct vh_server_queue *q)
{
	struct vhp_run *run = cur_run(q->s);

	if (run)
		signal_fd(run->w[q->worker].wake_fd);
}

void vh_server_stop(struct vh_server *s)
{
	/* Only an atomic store and write(2): safe in a signal handler. */
	if (!s)
		return;
	__atomic_store_n(&s->stop_req, 1, __ATOMIC_RELEASE);
	signal_fd(s->stop_fd);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t work_count(const struct vh_server_queue *q)
{
	return __atomic_load_n(&q->st.popped, __ATOMIC_RELAXED) +
	       __atomic_load_n(&q->st.pushed, __ATOMIC_RELAXED);
}

/* ---- Worker -------------------------------------------------------------------------------- */

/* Turns the kicks of w's queues back on before it sleeps (they were off while it busy-polled)
 * and runs, once and with kicks on, each queue that got buffers meanwhile, so none waits for
 * a kick that was never sent. Returns 1 if that found work. */
static int worker_kicks_on(struct vhp_worker *w)
{
	struct vh_server *s = w->s;
	int work = 0;

	for (unsigned i = 0; i < s->nq; i++) {
		struct vh_server_queue *q = &s->queues[i];
		uint64_t before;

		if (q->worker != w->idx || vhp_queue_kicks_on(q) <= 0)
			continue;
		before = work_count(q);
		(void)vhp_queue_run(q, 0, 0);
		if (work_count(q) != before)
			work = 1;
	}
	return work;
}

static void *worker_main(void *arg)
{
	struct vhp_worker *w = arg;
	struct vh_server *s = w->s;
	struct vhp_run *run = cur_run(s);
	struct epoll_event evs[64];
	uint64_t last_work = 0;
	int kicks_off = 0;       /* some queue of this worker runs with kicks off */
	int again = 0;           /* some queue of this worker has rerun set */

	while (!__atomic_load_n(&run->stop, __ATOMIC_ACQUIRE)) {
		int polled = 0, busy, timeout, n, work = 0;
		uint64_t t;

		for (unsigned i = 0; i < s->nq; i++)
			if (s->queues[i].worker == w->idx &&
			    __atomic_load_n(&s->queues[i].polled, __ATOMIC_RELAXED))
				polled = 1;
		t = now_ns();
		busy = last_work && t - last_work < (run->poll_ns > VHP_POLL_GRACE_NS
						     ? run->poll_ns : VHP_POLL_GRACE_NS);
		if ((busy && (run->poll_ns || polled)) || again)
			timeout = 0;
		else if (polled)
			timeout = VHP_IDLE_POLL_MS;
		else
			timeout = -1;
		if (timeout != 0 && kicks_off) {
			/* Leaving the busy-poll window: ask for kicks again, and look once more. */
			kicks_off = 0;
			if (worker_kicks_on(w)) {
				work = 1;
				timeout = 0;
			}
		}
		n = epoll_wait(w->epfd, evs, 64, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vhp_err(SLOG(s), "server: worker %u: epoll_wait: %d", w->idx, -errno);
			break;
		}
		for (int i = 0; i < n; i++) {
			struct vhp_src *src = evs[i].data.ptr;
			uint64_t before;

			if (src->kind == VHP_SRC_WAKE) {
				uint64_t v;

				if (read(w->wake_fd, &v, sizeof(v)) < 0) {
					/* nothing pending: another wake-up drained it */
				}
				continue;
			}
			before = work_count(src->q);
			/* A device fd runs process even on a broken queue: the device must reap. */
			(void)vhp_queue_run(src->q, src->kind == VHP_SRC_KICK,
					    src->kind == VHP_SRC_WATCH);
			if (work_count(src->q) != before) {
				work = 1;
				if (!run->poll_ns && vhp_queue_rearm(src->q) > 0)
					again = src->q->rerun = 1;
			}
		}
		/* Polled queues; with busy-poll every queue of this worker while work keeps coming
		 * (with the driver's kicks off meanwhile); without it, queues that did work on a
		 * kick and still have buffers once the kick is re-armed: a device may leave buffers
		 * in the ring (a budget per call), and only a pop that finds the ring empty asks
		 * the driver for the next kick. */
		if (polled || (run->poll_ns && busy) || again) {
			again = 0;
			for (unsigned i = 0; i < s->nq; i++) {
				struct vh_server_queue *q = &s->queues[i];
				uint64_t before;

				if (q->worker != w->idx)
					continue;
				if (!__atomic_load_n(&q->polled, __ATOMIC_RELAXED) && !run->poll_ns &&
				    !q->rerun)
					continue;
				q->rerun = 0;
				before = work_count(q);
				if (run->poll_ns && busy) {
					if (vhp_queue_poll(q) == 0)
						kicks_off = 1;
				} else {
					(void)vhp_queue_run(q, 0, 0);
				}
				if (work_count(q) != before) {
					work = 1;
					if (!run->poll_ns &&
					    !__atomic_load_n(&q->polled, __ATOMIC_RELAXED) &&
					    vhp_queue_rearm(q) > 0)
						again = q->rerun = 1;
				}
			}
		}
		if (work)
			last_work = now_ns();
	}
	/* Whoever runs the queues next (another vh_server_run(), or the application) needs the
	 * kicks, and a readable kick fd for buffers that came without one. */
	if (kicks_off)
		for (unsigned i = 0; i < s->nq; i++)
			if (s->queues[i].worker == w->idx && vhp_queue_kicks_on(&s->queues[i]) > 0)
				vhp_queue_self_kick(&s->queues[i]);
	return NULL;
}

/* ---- Control loop -------------------------------------------------------------------------- */

static int stop_requested(struct vh_server *s)
{
	return __atomic_load_n(&s->stop_req, __ATOMIC_ACQUIRE);
}

/* Sleeps up to ms, returning early (1) when a stop is requested. */
static int wait_stop(struct vh_server *s, int ms)
{
	struct pollfd p = { .fd = s->stop_fd, .events = POLLIN };

	if (stop_requested(s))
		return 1;
	(void)poll(&p, 1, ms);
	return stop_requested(s);
}

static int control_loop(struct vh_server *s, const struct vh_server_run_opts *opts)
{
	int reconnect = opts && opts->reconnect && s->connect_path;

	for (;;) {
		struct pollfd p[2];
		int fd, r;

		if (stop_requested(s))
			return 0;
		vhp_queue_reclaim(s);
		fd = vh_backend_fd(s->be);
		if (fd < 0) {
			if (!reconnect)
				return s->connect_path ? -ECONNRESET : -ENOTCONN;
			if (wait_stop(s, VHP_RECONNECT_MS))
				return 0;
			fd = vh_socket_connect(s->connect_path, 1, 0);
			if (fd >= 0) {
				r = vh_backend_set_connection(s->be, fd);
				if (r)
					vhp_warn(SLOG(s), "server: reconnect refused: %d", r);
			}
			continue;
		}
		p[0].fd = fd;
		p[0].events = POLLIN;
		p[0].revents = 0;
		p[1].fd = s->stop_fd;
		p[1].events = POLLIN;
		p[1].revents = 0;
		r = poll(p, 2, VHP_RECLAIM_MS);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0 || !p[0].revents)
			continue;
		r = vh_server_dispatch(s);
		if (r == 0 || r == -EAGAIN)
			continue;
		if (vh_backend_is_connected(s->be))
			continue;
		if (!s->connect_path) {
			/* Server mode: the listener stays; a failed accept (out of fds) is retried
			 * after a pause. */
			if (vh_backend_fd(s->be) < 0)
				return r;
			if (r != -ECONNRESET && r != -EPROTO && r != -EMSGSIZE && r != -EBADMSG &&
			    r != -ETIMEDOUT && wait_stop(s, 100))
				return 0;
			continue;
		}
		if (!reconnect)
			return r == -ENOTCONN ? -ECONNRESET : r;
	}
}

/* ---- vh_server_run --------------------------------------------------------------------------- */

static void run_teardown(struct vh_server *s, struct vhp_run *run)
{
	__atomic_store_n(&run->stop, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < run->nthreads; i++)
		if (run->w[i].wake_fd >= 0)
			signal_fd(run->w[i].wake_fd);
	for (unsigned i = 0; i < run->nthreads; i++)
		if (run->w[i].started)
			pthread_join(run->w[i].thread, NULL);
	/* Unpublish, then pass every queue lock so nobody still registers with these epolls. */
	__atomic_store_n(&s->run, NULL, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < s->nq; i++) {
		struct vh_server_queue *q = &s->queues[i];

		vhp_q_lock(q);
		q->kick_reg = -1;
		q->watch_reg = -1;
		vhp_q_unlock(q);
	}
	for (unsigned i = 0; i < run->nthreads; i++) {
		vhp_close(run->w[i].epfd);
		vhp_close(run->w[i].wake_fd);
	}
	free(run->w);
	free(run);
}

int vh_server_run(struct vh_server *s, const struct vh_server_run_opts *opts)
{
	unsigned nthreads = opts && opts->nthreads ? opts->nthreads : 1;
	struct vhp_run *run;
	uint64_t v;
	int r = 0;

	if (!s)
		return -EINVAL;
	if (cur_run(s))
		return -EBUSY;
	if (nthreads > VHP_MAX_WORKERS || (opts && opts->poll_us < 0))
		return -EINVAL;
	if (opts && opts->queue_thread)
		for (unsigned i = 0; i < s->nq; i++)
			if (opts->queue_thread[i] >= nthreads)
				return -EINVAL;
	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	run->w = calloc(nthreads, sizeof(*run->w));
	if (!run->w) {
		free(run);
		return -ENOMEM;
	}
	run->nthreads = nthreads;
	run->poll_ns = opts ? (uint64_t)opts->poll_us * 1000u : 0;
	for (unsigned i = 0; i < nthreads; i++) {
		struct vhp_worker *w = &run->w[i];
		struct epoll_event ev;

		w->s = s;
		w->idx = i;
		w->wake_src.kind = VHP_SRC_WAKE;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = &w->wake_src;
		if (w->epfd < 0 || w->wake_fd < 0 ||
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev)) {
			r = -errno;
			run->nthreads = i + 1;
			run_teardown(s, run);
			return r;
		}
	}
	for (unsigned i = 0; i < s->nq; i++)
		s->queues[i].worker = opts && opts->queue_thread ? opts->queue_thread[i]
								 : i % nthreads;
	__atomic_store_n(&s->run, run, __ATOMIC_RELEASE);
	/* Queues already running (run() called again after a stop) join their workers. */
	for (unsigned i = 0; i < s->nq; i++) {
		struct vh_server_queue *q = &s->queues[i];

		vhp_q_lock(q);
		q->rerun = 0;
		if (q->runnable) {
			if (q->kick_fd >= 0)
				(void)vhp_run_watch(q, VHP_SRC_KICK, q->kick_fd);
			if (q->watch_fd >= 0)
				(void)vhp_run_watch(q, VHP_SRC_WATCH, q->watch_fd);
		}
		vhp_q_unlock(q);
	}
	for (unsigned i = 0; i < nthreads; i++) {
		int e = pthread_create(&run->w[i].thread, NULL, worker_main, &run->w[i]);

		if (e) {
			run_teardown(s, run);
			return -e;
		}
		run->w[i].started = 1;
	}
	for (unsigned i = 0; i < s->nq; i++)
		vhp_queue_self_kick(&s->queues[i]);

	r = control_loop(s, opts);

	run_teardown(s, run);
	/* A stop is consumed by the run it ended. */
	__atomic_store_n(&s->stop_req, 0, __ATOMIC_RELEASE);
	while (read(s->stop_fd, &v, sizeof(v)) > 0)
		;
	return r;
}
