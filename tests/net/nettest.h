/* SPDX-License-Identifier: MIT */
/*
 * Harness of the vhost-user-net device tests (tools/net_device.c in-process): the server on
 * its own thread (vh_server_run, two workers so a pair's RX and TX rings run on different
 * threads), a connected vh_device, a hand-made driver (vh_driver: rings, buffers in its guest
 * memory, completions with a bounded wait) and patterned frames.
 */
#ifndef LIBVHOST_NETTEST_H
#define LIBVHOST_NETTEST_H

#include <endian.h>
#include <inttypes.h>
#include <pthread.h>

#include <libvhost/driver.h>
#include <libvhost/frontend.h>
#include <libvhost/server.h>

#include "testutil.h"
#include "net_device.h"

#define MAXF 1514u
#define WAIT_MS 10000

struct srv {
	struct net_dev *d;
	pthread_t th;
	char path[108];
	int rc;
};

/* Worker threads of the servers tests start: 2 puts the RX and TX rings of a pair on
 * different threads (round robin), 1 on the same one (vhost-user-net's default placement). */
static unsigned srv_nthreads = 2;

static inline void *srv_thread(void *arg)
{
	struct srv *s = arg;
	struct vh_server_run_opts ro = { .nthreads = srv_nthreads };

	s->rc = vh_server_run(net_dev_server(s->d), &ro);
	return NULL;
}

static inline void log_fn(void *opaque, enum vh_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	fprintf(stderr, "  [net] %s\n", msg);
}

static inline struct vh_logger logger(void)
{
	struct vh_logger l = { 0 };

	if (getenv("VH_TEST_VERBOSE")) {
		l.fn = log_fn;
		l.max_level = VH_LOG_DEBUG;
	}
	return l;
}

/* Echo device options with pairs, MAC 52:54:00:12:34:56 and MTU 1500 offered. */
static inline struct net_dev_opts echo_opts(unsigned pairs)
{
	struct net_dev_opts o;

	memset(&o, 0, sizeof(o));
	o.mode = NET_MODE_ECHO;
	o.queue_pairs = pairs;
	o.have_mac = 1;
	memcpy(o.mac, (const uint8_t[6]){ 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, 6);
	o.mtu = 1500;
	o.log = logger();
	return o;
}

static inline int srv_start_opts(struct srv *s, const struct net_dev_opts *o)
{
	int r;

	memset(s, 0, sizeof(*s));
	r = net_dev_new(&s->d, o);
	CHECK_EQ(r, 0);
	if (r)
		return r;
	t_sock_path(s->path, sizeof(s->path), "net");
	r = vh_server_listen(net_dev_server(s->d), s->path);
	CHECK_EQ(r, 0);
	if (!r) {
		r = pthread_create(&s->th, NULL, srv_thread, s);
		CHECK_EQ(r, 0);
	}
	if (r) {
		net_dev_free(s->d);
		s->d = NULL;
	}
	return r;
}

static inline int srv_start(struct srv *s, unsigned pairs)
{
	struct net_dev_opts o = echo_opts(pairs);

	return srv_start_opts(s, &o);
}

static inline void srv_stop(struct srv *s)
{
	if (!s->d)
		return;
	vh_server_stop(net_dev_server(s->d));
	pthread_join(s->th, NULL);
	CHECK_EQ(s->rc, 0);
	net_dev_free(s->d);
	s->d = NULL;
}

/* A vhost-user device on the server's socket, asking for protocol features `want`. */
static inline struct vh_device *connect_dev_proto(const struct srv *s, uint64_t want)
{
	struct vh_frontend_config fc = { .log = logger(), .timeout_ms = 5000 };
	struct vh_device *dev = NULL;
	int r = vh_frontend_device_open(&dev, s->path, &fc, want);

	CHECK_EQ(r, 0);
	return r ? NULL : dev;
}

static inline struct vh_device *connect_dev(const struct srv *s)
{
	return connect_dev_proto(s, VH_DRIVER_USER_PROTOCOL_FEATURES);
}

static inline struct net_pair_stats stats(const struct srv *s, int pair)
{
	struct net_pair_stats t, st;
	uint64_t *a = (uint64_t *)&t;

	memset(&t, 0, sizeof(t));
	for (unsigned p = 0; p < net_dev_pairs(s->d); p++) {
		const uint64_t *b = (const uint64_t *)&st;

		if (pair >= 0 && (unsigned)pair != p)
			continue;
		net_dev_pair_stats(s->d, p, &st);
		for (size_t k = 0; k < sizeof(st) / sizeof(uint64_t); k++)
			a[k] += b[k];
	}
	return t;
}

static inline void fill(uint8_t *f, size_t len, unsigned pair, unsigned seq)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (seq + 1) + pair * 7919u;

	for (size_t i = 0; i < len; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		f[i] = (uint8_t)((x * 0x2545F4914F6CDD1Dull) >> 56);
	}
	memset(f, 0xff, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	if (len > 16) {
		f[14] = (uint8_t)pair;
		f[15] = (uint8_t)seq;
	}
}

static inline size_t frame_len(unsigned i)
{
	static const size_t sizes[] = { 14, 60, 64, 255, 256, 257, 500, 1000, 1499, 1514 };

	return sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
}

/* ---- A hand-made driver ---------------------------------------------------------------------- */

struct raw {
	struct srv s;
	struct vh_device *dev;
	struct vh_driver *drv;
	uint8_t *mem;
	uint64_t gpa;
	size_t used;
	/* If set, run by vh_driver_start once the rings are configured and before they are
	 * enabled (w->mem is usable by then). */
	void (*before_enable)(struct raw *w);
};

static inline int raw_attach(void *opaque, struct vh_driver *drv)
{
	struct raw *w = opaque;
	void *host;
	int r;

	(void)drv;
	r = vh_driver_alloc(w->drv, 512 * 1024, 64, &host, &w->gpa);
	CHECK_EQ(r, 0);
	if (r)
		return r;
	w->mem = host;
	w->before_enable(w);
	return 0;
}

/* Connects a driver to the server already started in w->s: MRG_RXBUF, split or packed, plus
 * `extra` device features if offered; protocol features `proto`. */
static inline int raw_connect(struct raw *w, int packed, uint64_t extra, uint64_t proto)
{
	struct vh_driver_config dc;
	struct vh_driver_queues dq;
	void *host;
	int r;

	w->dev = connect_dev_proto(&w->s, proto);
	if (!w->dev)
		return -1;
	memset(&dc, 0, sizeof(dc));
	dc.features = VH_BIT(VH_NET_F_MRG_RXBUF) | VH_BIT(VH_NET_F_STATUS) | extra |
		      (VH_DRIVER_RING_FEATURES & ~VH_VQ_F_RING_PACKED) |
		      (packed ? VH_VQ_F_RING_PACKED : 0);
	dc.required = VH_BIT(VH_NET_F_MRG_RXBUF);
	dc.timeout_ms = WAIT_MS;
	dc.log = logger();
	r = vh_driver_new(&w->drv, w->dev, &dc);
	CHECK_EQ(r, 0);
	if (r)
		return r;
	memset(&dq, 0, sizeof(dq));
	dq.num_queues = 2;
	dq.queue_size = 64;
	dq.mem_size = 1 << 20;
	if (w->before_enable) {
		dq.attach = raw_attach;
		dq.opaque = w;
	}
	r = vh_driver_start(w->drv, &dq);
	CHECK_EQ(r, 0);
	if (r || w->mem)
		return r;
	r = vh_driver_alloc(w->drv, 512 * 1024, 64, &host, &w->gpa);
	CHECK_EQ(r, 0);
	w->mem = host;
	return r;
}

/* Starts an echo server with one pair and connects a driver to it. */
static inline int raw_open(struct raw *w, int packed)
{
	memset(w, 0, sizeof(*w));
	if (srv_start(&w->s, 1))
		return -1;
	return raw_connect(w, packed, 0, VH_DRIVER_USER_PROTOCOL_FEATURES);
}

static inline void raw_close(struct raw *w)
{
	vh_driver_free(w->drv);
	if (w->dev)
		vh_device_close(w->dev);
	srv_stop(&w->s);
}

/* A piece of the driver's memory: its GPA, and the bytes at *p. */
static inline uint64_t piece(struct raw *w, size_t len, uint8_t **p)
{
	size_t off = w->used;

	w->used += (len + 63) & ~(size_t)63;
	*p = w->mem + off;
	return w->gpa + off;
}

/* Posts n RX buffers of len bytes; returns the first one's bytes (consecutive, len apart). */
static inline uint8_t *post_rx(struct raw *w, unsigned n, uint32_t len, uint64_t token0)
{
	struct vh_vq_seg seg[64];
	struct vh_vq_driver_req req[64];
	uint8_t *first = NULL;

	for (unsigned i = 0; i < n; i++) {
		uint8_t *p;

		seg[i].gpa = piece(w, len, &p);
		seg[i].len = len;
		memset(p, 0xcc, len);
		if (!first)
			first = p;
		req[i] = (struct vh_vq_driver_req){ &seg[i], 0, 1, token0 + i };
	}
	CHECK_EQ(vh_driver_submit(w->drv, 0, req, n), (int)n);
	return first;
}

/* Collects exactly n completions of queue q (bounded wait). */
static inline int collect(struct raw *w, unsigned q, struct vh_vq_driver_used *u, unsigned n)
{
	unsigned got = 0;
	int64_t end = t_now_ms() + WAIT_MS;

	while (got < n && t_now_ms() < end) {
		int r = vh_driver_get_used(w->drv, q, u + got, n - got);

		if (r < 0)
			return r;
		got += (unsigned)r;
		if (got < n)
			(void)vh_driver_wait(w->drv, q, 100);
	}
	return (int)got;
}

/* Nothing more completes on queue q within ms. */
static inline void expect_quiet(struct raw *w, unsigned q, unsigned ms)
{
	struct vh_vq_driver_used u[4];

	t_sleep_ms(ms);
	CHECK_EQ(vh_driver_get_used(w->drv, q, u, 4), 0);
}

/* One TX frame of len bytes with a zero header (token). */
static inline void send_frame(struct raw *w, unsigned len, unsigned seq, uint64_t token)
{
	struct vh_vq_seg seg;
	struct vh_vq_driver_req req = { &seg, 1, 0, token };
	uint8_t *p;

	seg.gpa = piece(w, 12 + len, &p);
	seg.len = 12 + len;
	memset(p, 0, 12);
	fill(p + 12, len, 0, seq);
	CHECK_EQ(vh_driver_submit(w->drv, 1, &req, 1), 1);
}

/* The first server threads leave their stacks in glibc's cache (mappings that stay): run one
 * connection before the first test takes its baseline. */
static inline void warm_up(void)
{
	struct srv s;

	if (srv_start(&s, 1) == 0) {
		struct vh_device *dev = connect_dev(&s);

		if (dev)
			vh_device_close(dev);
		srv_stop(&s);
	}
}

#endif
