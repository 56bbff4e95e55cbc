/* SPDX-License-Identifier: MIT */
/*
 * Harness for the back-end framework tests: a test device on a vh_server (run by
 * vh_server_run() on its own thread) and a driver made of libvhost's front-end (frontend.h),
 * memfd guest memory (vh_guest_mem) and driver rings (vh_vq_driver).
 *
 * The device answers each request by writing the bitwise complement of its device-readable
 * bytes into its device-writable bytes (as many as fit) and checks the request's payload
 * pattern byte for byte. It can hold requests instead (to complete them later, out of order,
 * or never) and records the order in which request numbers were popped. The driver fills a
 * numbered, patterned payload, checks every response byte and length, and that nothing past the
 * length was written.
 */
#ifndef LIBVHOST_SRVTEST_H
#define LIBVHOST_SRVTEST_H

#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <libvhost/endpoint.h>
#include <libvhost/frontend.h>
#include <libvhost/memory.h>
#include <libvhost/ring.h>
#include <libvhost/server.h>
#include "testutil.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define T_MAXQ 8u
#define T_SLOT 4096u      /* per request: out area, then in area */
#define T_SLOT_IN 2048u
#define T_CANARY 0xccu
#define T_HOLD_MAX 1024u
#define T_ORDER_MAX 8192u

/* Timeouts are generous: valgrind runs these too. */
#define T_WAIT_MS 20000

/* Test log: warnings and errors to stderr when VH_TEST_VERBOSE is set. */
static inline void t_log_fn(void *opaque, enum vh_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	fprintf(stderr, "  [lib] %s\n", msg);
}

static inline struct vh_logger t_logger(void)
{
	struct vh_logger l = { 0 };

	if (getenv("VH_TEST_VERBOSE")) {
		l.fn = t_log_fn;
		l.max_level = VH_LOG_DEBUG;
	}
	return l;
}

/* ---- Request pattern --------------------------------------------------------------------- */

static inline uint32_t t_out_len(uint32_t req)
{
	return 8u + 16u + (req * 37u) % 1500u;
}

static inline uint32_t t_in_len(uint32_t req)
{
	return 64u + (req * 53u) % 1900u;
}

static inline uint8_t t_pat(uint32_t req, uint32_t j)
{
	return (uint8_t)(req * 31u + j * 7u + 1u);
}

/* ---- Test device --------------------------------------------------------------------------- */

struct tdev_q {
	struct vh_vq_elem held[T_HOLD_MAX];
	uint32_t held_req[T_HOLD_MAX];
	unsigned nheld;
	uint32_t order[T_ORDER_MAX];
	unsigned norder;
	unsigned bad;            /* payload mismatches seen by the device */
	unsigned pop_errors;     /* pop returned -EIO */
	unsigned completed;
	unsigned starts, stops;
	unsigned abandoned;      /* held requests dropped at queue_stop */
};

struct tdev {
	pthread_mutex_t lock;
	struct vh_server *s;
	struct tdev_q q[T_MAXQ];
	int hold;                /* hold every popped request */
	unsigned hold_mod;       /* > 1: hold requests whose number is not a multiple of it */
	int skip_disabled;       /* return at once on a disabled ring */
	int complete_at_stop;    /* queue_stop completes held requests instead of dropping */
	int watch_efd;           /* >= 0: watched for queue 0; readable = complete what is held */
	unsigned budget;         /* > 0: pop at most this many (<= 16) per process call */
	unsigned process_calls;
	unsigned connects, disconnects, resets;
};

/* Reads the request number and checks the payload; returns the number or UINT32_MAX. */
static inline uint32_t tdev_check(struct tdev_q *dq, const struct vh_vq_elem *e, uint8_t *buf)
{
	uint32_t req, len;
	size_t got;

	if (e->out_len < 8 || e->out_len > T_SLOT_IN) {
		dq->bad++;
		return UINT32_MAX;
	}
	got = vh_iov_to_buf(e->iov, e->out_num, 0, buf, (size_t)e->out_len);
	memcpy(&req, buf, 4);
	memcpy(&len, buf + 4, 4);
	if (got != e->out_len || len != e->out_len || len != t_out_len(req)) {
		dq->bad++;
		return req;
	}
	for (uint32_t j = 8; j < len; j++)
		if (buf[j] != t_pat(req, j)) {
			dq->bad++;
			break;
		}
	return req;
}

/* Writes the response; returns the length written. */
static inline uint32_t tdev_answer(const struct vh_vq_elem *e)
{
	uint8_t in[T_SLOT_IN], out[T_SLOT_IN];
	uint64_t n = e->out_len < e->in_len ? e->out_len : e->in_len;

	if (n > T_SLOT_IN)
		n = T_SLOT_IN;
	vh_iov_to_buf(e->iov, e->out_num, 0, out, (size_t)n);
	for (uint64_t j = 0; j < n; j++)
		in[j] = (uint8_t)(0xffu ^ out[j]);
	return (uint32_t)vh_buf_to_iov(e->iov + e->out_num, e->in_num, 0, in, (size_t)n);
}

static inline unsigned tdev_complete(struct tdev *dev, unsigned qi, const unsigned *idx,
				     unsigned n);

static inline void tdev_process(void *opaque, struct vh_server_queue *q)
{
	struct tdev *dev = opaque;
	unsigned qi = vh_server_queue_index(q);
	struct tdev_q *dq = &dev->q[qi];
	struct vh_vq_elem el[16];
	struct vh_vq_used used[16];
	uint8_t buf[T_SLOT_IN];

	pthread_mutex_lock(&dev->lock);
	dev->process_calls++;
	pthread_mutex_unlock(&dev->lock);
	if (qi == 0 && dev->watch_efd >= 0) {
		uint64_t v;

		/* An "I/O completion" arrived: finish what is held. */
		if (read(dev->watch_efd, &v, sizeof(v)) == sizeof(v))
			tdev_complete(dev, 0, NULL, 0);
	}
	if (dev->skip_disabled && !vh_server_queue_enabled(q))
		return;
	memset(el, 0, sizeof(el));
	for (unsigned round = 0; round < (dev->budget ? 1u : 64u); round++) {
		int n = vh_server_queue_pop(q, el, dev->budget ? dev->budget : NELEM(el)), k = 0;

		if (n < 0) {
			pthread_mutex_lock(&dev->lock);
			dq->pop_errors++;
			pthread_mutex_unlock(&dev->lock);
			return;
		}
		if (n == 0)
			break;
		pthread_mutex_lock(&dev->lock);
		for (int i = 0; i < n; i++) {
			uint32_t req = tdev_check(dq, &el[i], buf);

			if (dq->norder < T_ORDER_MAX)
				dq->order[dq->norder++] = req;
			if ((dev->hold || (dev->hold_mod > 1 && req % dev->hold_mod != 0)) &&
			    dq->nheld < T_HOLD_MAX) {
				dq->held_req[dq->nheld] = req;
				dq->held[dq->nheld++] = el[i];
				continue;
			}
			used[k].id = el[i].id;
			used[k].len = tdev_answer(&el[i]);
			k++;
		}
		dq->completed += (unsigned)k;
		pthread_mutex_unlock(&dev->lock);
		if (k) {
			if (vh_server_queue_push(q, used, (unsigned)k))
				dq->bad++;
			vh_server_queue_notify(q);
		}
	}
}

/* Completes held requests of queue qi in the order given by idx[] (indexes into held[]), or
 * all in order when idx is NULL; from any thread. Returns how many. The elements are taken
 * under the device lock and pushed after it is released: `process` takes the device lock
 * with the queue lock held, so the device lock is never held while taking a queue lock. */
static inline unsigned tdev_complete(struct tdev *dev, unsigned qi, const unsigned *idx,
				     unsigned n)
{
	struct vh_server_queue *q = vh_server_get_queue(dev->s, qi);
	struct tdev_q *dq = &dev->q[qi];
	static __thread struct vh_vq_elem take[T_HOLD_MAX];
	unsigned nt = 0, done = 0;

	pthread_mutex_lock(&dev->lock);
	if (!idx)
		n = dq->nheld;
	for (unsigned i = 0; i < n; i++) {
		unsigned h = idx ? idx[i] : i;

		if (h >= dq->nheld || !dq->held[h].iov)
			continue;
		take[nt++] = dq->held[h];
		dq->held[h].iov = NULL;
	}
	if (!idx)
		dq->nheld = 0;
	pthread_mutex_unlock(&dev->lock);
	for (unsigned i = 0; i < nt; i++) {
		struct vh_vq_used u;

		u.id = take[i].id;
		u.len = tdev_answer(&take[i]);
		if (vh_server_queue_push(q, &u, 1) == 0)
			done++;
	}
	pthread_mutex_lock(&dev->lock);
	dq->completed += done;
	pthread_mutex_unlock(&dev->lock);
	vh_server_queue_notify(q);
	return done;
}

static inline int tdev_queue_start(void *opaque, struct vh_server_queue *q)
{
	struct tdev *dev = opaque;

	pthread_mutex_lock(&dev->lock);
	dev->q[vh_server_queue_index(q)].starts++;
	pthread_mutex_unlock(&dev->lock);
	if (vh_server_queue_index(q) == 0 && dev->watch_efd >= 0)
		return vh_server_queue_watch_fd(q, dev->watch_efd);
	return 0;
}

static inline void tdev_queue_stop(void *opaque, struct vh_server_queue *q)
{
	struct tdev *dev = opaque;
	struct tdev_q *dq = &dev->q[vh_server_queue_index(q)];

	if (dev->complete_at_stop) {
		tdev_complete(dev, vh_server_queue_index(q), NULL, 0);
	} else {
		pthread_mutex_lock(&dev->lock);
		for (unsigned i = 0; i < dq->nheld; i++)
			if (dq->held[i].iov)
				dq->abandoned++;
		dq->nheld = 0;
		pthread_mutex_unlock(&dev->lock);
	}
	pthread_mutex_lock(&dev->lock);
	dq->stops++;
	pthread_mutex_unlock(&dev->lock);
}

static inline void tdev_connected(void *opaque)
{
	struct tdev *dev = opaque;

	pthread_mutex_lock(&dev->lock);
	dev->connects++;
	pthread_mutex_unlock(&dev->lock);
}

static inline void tdev_disconnected(void *opaque)
{
	struct tdev *dev = opaque;

	pthread_mutex_lock(&dev->lock);
	dev->disconnects++;
	pthread_mutex_unlock(&dev->lock);
}

static inline void tdev_reset(void *opaque)
{
	struct tdev *dev = opaque;

	pthread_mutex_lock(&dev->lock);
	dev->resets++;
	pthread_mutex_unlock(&dev->lock);
}

static inline int tdev_get_config(void *opaque, uint32_t offset, uint32_t size, uint8_t *buf)
{
	(void)opaque;
	for (uint32_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(0x40 + offset + i);
	return 0;
}

static const struct vh_server_ops tdev_ops = {
	.get_config = tdev_get_config,
	.queue_start = tdev_queue_start,
	.queue_stop = tdev_queue_stop,
	.process = tdev_process,
	.connected = tdev_connected,
	.disconnected = tdev_disconnected,
	.reset = tdev_reset,
};

static inline unsigned tdev_get(struct tdev *dev, const unsigned *field)
{
	unsigned v;

	pthread_mutex_lock(&dev->lock);
	v = *field;
	pthread_mutex_unlock(&dev->lock);
	return v;
}

/* ---- Server on a thread --------------------------------------------------------------------- */

struct tsrv {
	struct vh_server *s;
	struct tdev dev;
	struct vh_server_run_opts opts;
	unsigned queue_thread[T_MAXQ];
	pthread_t thread;
	int running;
	int result;
};

struct tsrv_cfg {
	unsigned nq;
	unsigned nthreads;
	uint64_t features_mask;
	uint64_t protocol_mask;
	int poll_us;
	int reconnect;
	unsigned max_iov;
	unsigned max_queue_size;
};

static inline void *tsrv_main(void *arg)
{
	struct tsrv *t = arg;

	t->result = vh_server_run(t->s, &t->opts);
	return NULL;
}

static inline int tsrv_create(struct tsrv *t, const struct tsrv_cfg *c)
{
	struct vh_server_config cfg;

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->dev.lock, NULL);
	t->dev.watch_efd = -1;
	memset(&cfg, 0, sizeof(cfg));
	cfg.num_queues = c->nq;
	cfg.config_size = 16;
	cfg.features_mask = c->features_mask;
	cfg.protocol_mask = c->protocol_mask;
	cfg.max_iov = c->max_iov;
	cfg.max_queue_size = c->max_queue_size;
	cfg.log = t_logger();
	cfg.timeout_ms = 20000;
	t->opts.nthreads = c->nthreads;
	t->opts.poll_us = c->poll_us;
	t->opts.reconnect = c->reconnect;
	return vh_server_new(&t->s, &cfg, &tdev_ops, &t->dev);
}

static inline void tsrv_run(struct tsrv *t)
{
	t->dev.s = t->s;
	CHECK_EQ(pthread_create(&t->thread, NULL, tsrv_main, t), 0);
	t->running = 1;
}

static inline int tsrv_join(struct tsrv *t)
{
	if (t->running) {
		vh_server_stop(t->s);
		pthread_join(t->thread, NULL);
		t->running = 0;
	}
	return t->result;
}

static inline void tsrv_destroy(struct tsrv *t)
{
	tsrv_join(t);
	vh_server_free(t->s);
	t->s = NULL;
	pthread_mutex_destroy(&t->dev.lock);
}

/* ---- Driver --------------------------------------------------------------------------------- */

struct tdrv;
static inline void tdrv_fini(struct tdrv *dr);

struct tdrv_q {
	struct vh_vq_driver *d;
	struct vh_vq_driver_addrs a;
	void *ring;
	uint64_t ring_gpa;
	uint8_t *data;
	uint64_t data_gpa;
	uint8_t *ind;
	uint64_t ind_gpa;
	int kick, call, err;
	unsigned num;
	uint16_t free_slots[1024];
	unsigned nfree;
	uint32_t slot_req[1024];
	uint32_t next_req;
	unsigned inflight;
	unsigned done;
	unsigned bad;
	unsigned calls;
	unsigned kicks;          /* kicks written */
	uint32_t done_order[T_ORDER_MAX];
	unsigned ndone_order;
};

struct tdrv {
	struct vh_guest_mem *gm;
	struct vh_frontend *fe;
	unsigned nq;
	unsigned num;
	int packed;
	int indirect;
	uint64_t features;   /* acked (without bit 30) */
	uint64_t pf;
	struct tdrv_q q[T_MAXQ];
	int inflight_fd;
	struct vh_inflight inf;
};

struct tdrv_cfg {
	unsigned nq;
	unsigned num;
	int packed;
	int indirect;
	int event_idx;
	int in_order;
	unsigned nregions;
	uint64_t mem_size;
	unsigned mem_flags;      /* VH_GUEST_MEM_* */
};

static inline void tdrv_q_ring(struct tdrv *dr, struct tdrv_q *dq)
{
	struct vh_vq_driver_config dc;
	struct vh_vring_layout lay;
	uint64_t f = dr->features;

	CHECK_EQ(vh_vring_layout(dq->num, f, &lay), 0);
	memset(&dc, 0, sizeof(dc));
	dc.num = dq->num;
	dc.features = f;
	dc.ring_host = dq->ring;
	dc.ring_gpa = dq->ring_gpa;
	dc.ring_size = lay.total;
	if (dr->indirect) {
		dc.indirect_host = dq->ind;
		dc.indirect_gpa = dq->ind_gpa;
		dc.indirect_size = (size_t)dq->num * 4 * 16;
		dc.indirect_max = 4;
	}
	vh_vq_driver_free(dq->d);
	dq->d = NULL;
	CHECK_EQ(vh_vq_driver_new(&dq->d, &dc), 0);
	vh_vq_driver_addrs(dq->d, &dq->a);
	dq->nfree = 0;
	for (unsigned i = dq->num; i-- > 0;)
		dq->free_slots[dq->nfree++] = (uint16_t)i;
	dq->inflight = 0;
}

static inline void tdrv_init(struct tdrv *dr, const struct tdrv_cfg *c)
{
	struct vh_guest_mem_opts go;

	memset(dr, 0, sizeof(*dr));
	dr->nq = c->nq;
	dr->num = c->num;
	dr->packed = c->packed;
	dr->indirect = c->indirect;
	dr->inflight_fd = -1;
	dr->features = VH_BIT(VH_F_VERSION_1) | (c->packed ? VH_BIT(VH_F_RING_PACKED) : 0) |
		       (c->event_idx ? VH_BIT(VH_F_EVENT_IDX) : 0) |
		       (c->indirect ? VH_BIT(VH_F_INDIRECT_DESC) : 0) |
		       (c->in_order ? VH_BIT(VH_F_IN_ORDER) : 0);
	memset(&go, 0, sizeof(go));
	go.size = c->mem_size ? c->mem_size : 16u << 20;
	go.nregions = c->nregions ? c->nregions : 1;
	go.gpa_base = 0x100000;
	go.gpa_gap = c->nregions > 1 ? 0x10000 : 0;
	go.flags = c->mem_flags;
	if (c->mem_flags & VH_GUEST_MEM_HUGETLB) {
		go.gpa_base = 2u << 20;
		go.gpa_gap = c->nregions > 1 ? 2u << 20 : 0;
	}
	CHECK_EQ(vh_guest_mem_new_opts(&dr->gm, &go), 0);
	for (unsigned i = 0; i < c->nq; i++) {
		struct tdrv_q *dq = &dr->q[i];
		struct vh_vring_layout lay;

		dq->num = c->num;
		CHECK_EQ(vh_vring_layout(c->num, dr->features, &lay), 0);
		CHECK_EQ(vh_guest_mem_alloc(dr->gm, lay.total, 4096, &dq->ring_gpa, &dq->ring), 0);
		CHECK_EQ(vh_guest_mem_alloc(dr->gm, (uint64_t)c->num * T_SLOT, 4096, &dq->data_gpa,
					    (void **)&dq->data), 0);
		if (c->indirect)
			CHECK_EQ(vh_guest_mem_alloc(dr->gm, (uint64_t)c->num * 4 * 16, 64,
						    &dq->ind_gpa, (void **)&dq->ind), 0);
		dq->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		dq->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		dq->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		tdrv_q_ring(dr, dq);
	}
}

static inline void tdrv_fini(struct tdrv *dr)
{
	vh_frontend_free(dr->fe);
	dr->fe = NULL;
	for (unsigned i = 0; i < dr->nq; i++) {
		vh_vq_driver_free(dr->q[i].d);
		close(dr->q[i].kick);
		close(dr->q[i].call);
		close(dr->q[i].err);
	}
	if (dr->inflight_fd >= 0)
		close(dr->inflight_fd);
	vh_guest_mem_free(dr->gm);
}

static inline struct vh_frontend_config t_fe_cfg(void)
{
	struct vh_frontend_config c;

	memset(&c, 0, sizeof(c));
	c.log = t_logger();
	c.timeout_ms = 20000;
	return c;
}

/* Connects over one end of a socketpair; the other end is the server's. */
static inline int tdrv_socketpair(struct tdrv *dr, struct tsrv *t)
{
	struct vh_frontend_config c = t_fe_cfg();
	int sv[2];

	if (vh_socketpair(sv))
		return -1;
	CHECK_EQ(vh_server_set_connection(t->s, sv[1]), 0);
	return vh_frontend_new(&dr->fe, sv[0], &c);
}

/* Stops the server while still connected, then drops the connection and frees both sides. */
static inline void t_teardown(struct tsrv *t, struct tdrv *dr)
{
	CHECK_EQ(tsrv_join(t), 0);
	vh_frontend_free(dr->fe);
	dr->fe = NULL;
	tsrv_destroy(t);
	tdrv_fini(dr);
}

static inline int tdrv_connect(struct tdrv *dr, const char *path)
{
	struct vh_frontend_config c = t_fe_cfg();

	return vh_frontend_connect(&dr->fe, path, &c);
}

static inline void tdrv_region(const struct tdrv *dr, unsigned i, struct vh_mem_region *r, int *fd)
{
	unsigned n;
	const struct vh_region *regs = vh_guest_mem_regions(dr->gm, &n);

	r->guest_phys_addr = regs[i].guest_phys_addr;
	r->memory_size = regs[i].size;
	r->userspace_addr = regs[i].userspace_addr;
	r->mmap_offset = regs[i].fd_offset;
	*fd = regs[i].fd;
}

static inline int tdrv_set_mem(struct tdrv *dr)
{
	struct vh_mem_region r[8];
	int fds[8];
	unsigned n;

	vh_guest_mem_regions(dr->gm, &n);
	if (n > 8)
		n = 8;
	for (unsigned i = 0; i < n; i++)
		tdrv_region(dr, i, &r[i], &fds[i]);
	return vh_frontend_set_mem_table(dr->fe, r, fds, n);
}

static inline void tdrv_vring_addr(const struct tdrv_q *dq, unsigned i, int log, struct vh_vring_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->index = i;
	a->flags = log ? VH_BIT(VH_VRING_F_LOG) : 0;
	a->desc_user_addr = (uint64_t)(uintptr_t)dq->a.desc;
	a->avail_user_addr = (uint64_t)(uintptr_t)dq->a.driver;
	a->used_user_addr = (uint64_t)(uintptr_t)dq->a.device;
	a->log_guest_addr = dq->a.device_gpa;
}

/* Starts ring i: NUM, BASE (from the driver ring), ADDR, KICK (kick_fd: the queue's eventfd, or
 * -1 for NOFD), CALL, ERR. */
static inline int tdrv_start_ring(struct tdrv *dr, unsigned i, int nofd_kick)
{
	struct tdrv_q *dq = &dr->q[i];
	struct vh_vring_addr a;
	struct vh_vq_base b;
	int r;

	vh_vq_driver_base(dq->d, &b);
	tdrv_vring_addr(dq, i, 0, &a);
	if ((r = vh_frontend_set_vring_num(dr->fe, i, dq->num)) ||
	    (r = vh_frontend_set_vring_base(dr->fe, i, vh_vq_base_encode(&b, dr->packed))) ||
	    (r = vh_frontend_set_vring_addr(dr->fe, &a)) ||
	    (r = vh_frontend_set_vring_call(dr->fe, i, dq->call)) ||
	    (r = vh_frontend_set_vring_err(dr->fe, i, dq->err)) ||
	    (r = vh_frontend_set_vring_kick(dr->fe, i, nofd_kick ? -1 : dq->kick)))
		return r;
	if (dr->pf)
		r = vh_frontend_set_vring_enable(dr->fe, i, 1);
	return r;
}

#define TDRV_INFLIGHT 0x1u  /* GET_INFLIGHT_FD (first start) / SET_INFLIGHT_FD */
#define TDRV_NO_RINGS 0x2u
#define TDRV_NOFD_KICK 0x4u

/* QEMU's order: negotiate, SET_OWNER, SET_FEATURES, [GET/SET_INFLIGHT_FD], SET_MEM_TABLE, rings,
 * SET_VRING_ENABLE. */
static inline int tdrv_handshake(struct tdrv *dr, unsigned flags)
{
	uint64_t offered;
	int r;

	r = vh_frontend_negotiate(dr->fe, VH_FRONTEND_PROTOCOL_FEATURES &
				  ~VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ), &offered, &dr->pf);
	if (r)
		return r;
	if ((dr->features & offered) != dr->features)
		return -ENOTSUP;
	if (dr->pf)
		CHECK_EQ(vh_frontend_set_queue_count(dr->fe, dr->nq), 0);
	if ((r = vh_frontend_set_owner(dr->fe)))
		return r;
	r = vh_frontend_set_features(dr->fe, dr->features |
				     (offered & VH_BIT(VH_USER_F_PROTOCOL_FEATURES)));
	if (r)
		return r;
	if (flags & TDRV_INFLIGHT) {
		if (dr->inflight_fd < 0) {
			r = vh_frontend_get_inflight_fd(dr->fe, (uint16_t)dr->nq, (uint16_t)dr->num,
							&dr->inf, &dr->inflight_fd);
			if (r)
				return r;
		}
		r = vh_frontend_set_inflight_fd(dr->fe, &dr->inf, dr->inflight_fd);
		if (r)
			return r;
	}
	if ((r = tdrv_set_mem(dr)))
		return r;
	if (flags & TDRV_NO_RINGS)
		return 0;
	for (unsigned i = 0; i < dr->nq; i++)
		if ((r = tdrv_start_ring(dr, i, !!(flags & TDRV_NOFD_KICK))))
			return r;
	return 0;
}

/* Fills slot s with request req and builds its segments (1-3 readable, 1-2 writable). */
static inline unsigned tdrv_fill(struct tdrv_q *dq, unsigned s, uint32_t req, struct vh_vq_seg *segs,
			  uint16_t *out_num, uint16_t *in_num)
{
	uint8_t *p = dq->data + (size_t)s * T_SLOT;
	uint64_t g = dq->data_gpa + (uint64_t)s * T_SLOT;
	uint32_t ol = t_out_len(req), il = t_in_len(req), no = 1 + req % 3, ni = 1 + req % 2;
	unsigned n = 0;

	memcpy(p, &req, 4);
	memcpy(p + 4, &ol, 4);
	for (uint32_t j = 8; j < ol; j++)
		p[j] = t_pat(req, j);
	memset(p + T_SLOT_IN, T_CANARY, T_SLOT_IN);
	for (uint32_t k = 0, off = 0; k < no; k++) {
		uint32_t l = k + 1 == no ? ol - off : ol / no;

		segs[n].gpa = g + off;
		segs[n++].len = l;
		off += l;
	}
	for (uint32_t k = 0, off = 0; k < ni; k++) {
		uint32_t l = k + 1 == ni ? il - off : il / ni;

		segs[n].gpa = g + T_SLOT_IN + off;
		segs[n++].len = l;
		off += l;
	}
	*out_num = (uint16_t)no;
	*in_num = (uint16_t)ni;
	return n;
}

static inline void tdrv_kick(struct tdrv_q *dq)
{
	uint64_t one = 1;

	if (write(dq->kick, &one, sizeof(one)) != sizeof(one))
		T_FAIL("kick write");
	dq->kicks++;
}

/* Adds up to n requests (as slots allow), publishes, kicks if the device wants it. */
static inline unsigned tdrv_submit(struct tdrv_q *dq, unsigned n)
{
	struct vh_vq_seg segs[16][5];
	struct vh_vq_driver_req reqs[16];
	unsigned added = 0;

	while (added < n) {
		unsigned k = 0;
		int got;

		while (k < 16 && added + k < n && dq->nfree > k) {
			unsigned s = dq->free_slots[dq->nfree - 1 - k];
			uint32_t req = dq->next_req + k;

			tdrv_fill(dq, s, req, segs[k], &reqs[k].out_num, &reqs[k].in_num);
			reqs[k].segs = segs[k];
			reqs[k].token = s;
			dq->slot_req[s] = req;
			k++;
		}
		if (k == 0)
			break;
		got = vh_vq_driver_add_batch(dq->d, reqs, k);
		if (got <= 0)
			break;
		dq->nfree -= (unsigned)got;
		dq->next_req += (uint32_t)got;
		dq->inflight += (unsigned)got;
		added += (unsigned)got;
		if ((unsigned)got < k)
			break;
	}
	if (added) {
		vh_vq_driver_publish(dq->d);
		if (vh_vq_driver_should_kick(dq->d))
			tdrv_kick(dq);
	}
	return added;
}

/* Collects completions and checks each response byte. */
static inline unsigned tdrv_collect(struct tdrv_q *dq)
{
	struct vh_vq_driver_used u[32];
	unsigned total = 0;
	int n;

	while ((n = vh_vq_driver_get_used(dq->d, u, NELEM(u))) > 0) {
		for (int i = 0; i < n; i++) {
			unsigned s = (unsigned)u[i].token;
			uint32_t req = dq->slot_req[s], ol = t_out_len(req), il = t_in_len(req);
			uint32_t want = ol < il ? ol : il;
			const uint8_t *out = dq->data + (size_t)s * T_SLOT, *in = out + T_SLOT_IN;

			if (u[i].len != want) {
				T_FAIL("request %u: length %u, expected %u", req, u[i].len, want);
				dq->bad++;
			}
			for (uint32_t j = 0; j < want; j++)
				if ((in[j] ^ out[j]) != 0xffu) {
					T_FAIL("request %u: byte %u is 0x%x", req, j, in[j]);
					dq->bad++;
					break;
				}
			for (uint32_t j = want; j < il; j++)
				if (in[j] != T_CANARY) {
					T_FAIL("request %u: byte %u past the length written", req, j);
					dq->bad++;
					break;
				}
			if (dq->ndone_order < T_ORDER_MAX)
				dq->done_order[dq->ndone_order++] = req;
			dq->free_slots[dq->nfree++] = (uint16_t)s;
			dq->inflight--;
			dq->done++;
		}
		total += (unsigned)n;
	}
	if (n < 0)
		T_FAIL("driver ring broken by the device: %s",
		       vh_vq_fault_name(vh_vq_driver_fault(dq->d)));
	return total;
}

/* Waits (call fd) until the queue has `target` completions in total. */
static inline int tdrv_wait_done(struct tdrv_q *dq, unsigned target, int timeout_ms)
{
	int64_t end = t_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = dq->call, .events = POLLIN };
		uint64_t v;

		tdrv_collect(dq);
		if (dq->done >= target)
			return 0;
		if (vh_vq_driver_enable_cb(dq->d) > 0)
			continue;
		if (t_now_ms() > end)
			return -ETIMEDOUT;
		if (poll(&p, 1, 50) > 0 && read(dq->call, &v, sizeof(v)) == sizeof(v))
			dq->calls++;
	}
}

/* Submits and completes `total` requests on queue i, keeping up to `depth` in flight. */
static inline int tdrv_traffic(struct tdrv *dr, unsigned i, unsigned total, unsigned depth)
{
	struct tdrv_q *dq = &dr->q[i];
	unsigned target = dq->done + total, sent = 0;
	int64_t end = t_now_ms() + T_WAIT_MS;

	while (dq->done < target) {
		unsigned want = depth > dq->inflight ? depth - dq->inflight : 0;

		if (want > total - sent)
			want = total - sent;
		sent += tdrv_submit(dq, want);
		if (tdrv_wait_done(dq, dq->done + 1 < target ? dq->done + 1 : target, 200) &&
		    t_now_ms() > end)
			return -ETIMEDOUT;
	}
	return dq->bad ? -EIO : 0;
}

static inline int t_wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1;
}

static inline uint64_t t_read_counter(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Threads leave glibc's stack cache and malloc arenas mapped the first time they are needed.
 * One arena for every thread, and a warm-up with as many threads at once as a test uses, keep
 * the mapping count comparable before and after a test. */
static pthread_barrier_t t_warm_barrier;

static inline void *t_warm_one(void *a)
{
	void *p = malloc(4096);

	pthread_barrier_wait(&t_warm_barrier);
	free(p);
	return a;
}

static inline void t_warm_threads(void)
{
	pthread_t th[12];

	mallopt(M_ARENA_MAX, 1);
	pthread_barrier_init(&t_warm_barrier, NULL, NELEM(th));
	for (unsigned i = 0; i < NELEM(th); i++)
		pthread_create(&th[i], NULL, t_warm_one, NULL);
	for (unsigned i = 0; i < NELEM(th); i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&t_warm_barrier);
}

#endif
