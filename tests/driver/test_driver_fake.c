/* SPDX-License-Identifier: MIT */
/*
 * Driver-side clients against an in-process device (fakedev.h): negotiation and fallback, the
 * set-up order, queue sizes, blk requests of every kind checked against the RAM disk, net
 * frames through a loopback with and without mergeable buffers, split and packed rings, POLL
 * mode, and a device that misbehaves in each way the driver must survive (errors, bounded
 * waits, no crash), with fds and mappings back to their baseline after every case.
 */
#include "fakedev.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define FAST_TIMEOUT 300

static struct vh_blk *blk_open(struct fake_dev *f, unsigned nq, uint64_t features, unsigned flags,
			       int timeout_ms, int *err)
{
	struct vh_blk_opts o;
	struct vh_blk *b = NULL;

	memset(&o, 0, sizeof(o));
	o.num_queues = nq;
	o.features = features;
	o.flags = flags;
	o.timeout_ms = timeout_ms;
	o.buf_mem = 1u << 20;
	*err = vh_blk_open(&b, &f->dev, &o);
	return b;
}

static void blk_io_checks(struct fake_dev *f, struct vh_blk *b)
{
	static uint8_t w[300 * 1024], r[300 * 1024];
	char id[VH_BLK_ID_BYTES + 1];
	unsigned nq = vh_blk_num_queues(b);

	for (unsigned q = 0; q < nq; q++) {
		uint64_t sector = 1000 + 777 * q;

		for (size_t i = 0; i < sizeof(w); i++)
			w[i] = (uint8_t)(i * 7 + q * 13 + (i >> 9));
		/* larger than the bounce buffer and than seg_max x size_max: split twice */
		CHECK_EQ(vh_blk_write(b, q, sector, w, sizeof(w)), 0);
		CHECK(memcmp(f->disk + sector * 512, w, sizeof(w)) == 0);
		memset(r, 0, sizeof(r));
		CHECK_EQ(vh_blk_read(b, q, sector, r, sizeof(r)), 0);
		CHECK(memcmp(r, w, sizeof(r)) == 0);
		CHECK_EQ(vh_blk_flush(b, q), 0);
		CHECK_EQ(vh_blk_write_zeroes(b, q, sector + 3, 5, 1), 0);
		for (unsigned i = 0; i < 5 * 512; i++)
			if (f->disk[(sector + 3) * 512 + i]) {
				T_FAIL("write zeroes left data");
				break;
			}
		memset(f->disk + (sector + 20) * 512, 0xaa, 4096);
		CHECK_EQ(vh_blk_discard(b, q, sector + 20, 8), 0);
		CHECK_EQ(f->disk[(sector + 20) * 512], 0); /* this device zeroes discarded data */
		CHECK_EQ(vh_blk_get_id(b, q, id), 0);
		CHECK(strcmp(id, "fake-blk-0123456789a") == 0);
	}
}

static void async_checks(struct fake_dev *f, struct vh_blk *b)
{
	enum { N = 100 };
	struct vh_blk_req rq[N];
	struct vh_blk_done d[N];
	uint8_t *buf;
	unsigned got = 0, sent = 0;

	CHECK_EQ(vh_blk_buf_alloc(b, N * 4096, 4096, (void **)&buf), 0);
	for (unsigned i = 0; i < N; i++) {
		memset(buf + i * 4096, (int)(i + 1), 4096);
		rq[i] = (struct vh_blk_req){ .op = VH_BLK_OP_WRITE, .sector = 5000 + i * 8,
					     .buf = buf + i * 4096, .len = 4096, .user_data = i };
	}
	while (got < N) {
		if (sent < N) {
			int r = vh_blk_submit(b, 0, rq + sent, N - sent);

			CHECK(r >= 0);
			if (r < 0)
				return;
			sent += (unsigned)r;
		}
		int c = vh_blk_complete(b, 0, d, N, 1, -1);

		CHECK(c > 0);
		if (c <= 0)
			return;
		for (int i = 0; i < c; i++) {
			CHECK_EQ(d[i].status, 0);
			CHECK(d[i].user_data < N);
		}
		got += (unsigned)c;
	}
	for (unsigned i = 0; i < N; i++)
		CHECK_EQ(f->disk[(5000 + i * 8) * 512 + 4095], i + 1);
	CHECK_EQ(vh_blk_inflight(b, 0), 0);
	/* completing with nothing in flight returns at once */
	CHECK_EQ(vh_blk_complete(b, 0, d, N, 1, 5000), 0);
}

static void t_blk_all_features(void)
{
	struct t_baseline base = t_baseline();
	struct fake_dev *f = fake_new(FAKE_BLK, FAKE_BLK_FEATURES);
	const struct vh_blk_config *c;
	uint64_t feat;
	int err;
	struct vh_blk *b = blk_open(f, 2, 0, 0, 0, &err);

	CHECK_EQ(err, 0);
	if (!b)
		goto out;
	feat = vh_driver_features(vh_blk_driver(b));
	CHECK(feat & VH_VQ_F_RING_PACKED);
	CHECK(feat & VH_VQ_F_EVENT_IDX);
	CHECK(feat & VH_VQ_F_INDIRECT_DESC);
	CHECK(feat & VH_BIT(VH_BLK_F_MQ));
	CHECK_EQ(f->acked, feat);
	c = vh_blk_config(b);
	CHECK_EQ(c->capacity, FAKE_DISK / 512);
	CHECK_EQ(c->size_max, 4096);
	CHECK_EQ(c->seg_max, 8);
	CHECK_EQ(c->num_queues, 4);
	CHECK_EQ(c->max_discard_sectors, 2048);
	CHECK_EQ(f->status, VH_STATUS_ACKNOWLEDGE | VH_STATUS_DRIVER | VH_STATUS_FEATURES_OK |
				    VH_STATUS_DRIVER_OK);
	/* owner, status x2, features, status (FEATURES_OK), memory, enable x2, DRIVER_OK */
	CHECK(strcmp(f->op_log, "OSSFSMEES") == 0);
	blk_io_checks(f, b);
	async_checks(f, b);
	CHECK_EQ(vh_driver_error(vh_blk_driver(b)), 0);
	vh_blk_close(b);
	/* closing stops the rings and resets the status; the device stays open */
	CHECK_EQ(f->status, 0);
	CHECK(!f->running);
out:
	vh_device_close(&f->dev);
	CHECK_BASELINE(base);
}

/* The device offers less: each missing feature is simply not used. */
static void t_blk_fallback(void)
{
	static const uint64_t drops[] = {
		VH_VQ_F_RING_PACKED,
		VH_VQ_F_RING_PACKED | VH_VQ_F_EVENT_IDX,
		VH_VQ_F_INDIRECT_DESC,
		VH_VQ_F_IN_ORDER | VH_VQ_F_EVENT_IDX,
		VH_BIT(VH_BLK_F_SEG_MAX) | VH_BIT(VH_BLK_F_SIZE_MAX) | VH_BIT(VH_BLK_F_MQ) |
			VH_BIT(VH_BLK_F_DISCARD),
	};

	for (size_t i = 0; i < ARRAY_SIZE(drops); i++) {
		struct t_baseline base = t_baseline();
		struct fake_dev *f = fake_new(FAKE_BLK, FAKE_BLK_FEATURES & ~drops[i]);
		int err;
		struct vh_blk *b = blk_open(f, 1, 0, 0, 0, &err);

		CHECK_EQ_M(err, 0, "drop 0x%llx", (unsigned long long)drops[i]);
		if (b) {
			CHECK_EQ(vh_driver_features(vh_blk_driver(b)) & drops[i], 0);
			if (drops[i] & VH_BIT(VH_BLK_F_DISCARD)) {
				CHECK_EQ(vh_blk_discard(b, 0, 0, 1), -EOPNOTSUPP);
				CHECK_EQ(vh_blk_config(b)->seg_max, 0);
			} else {
				blk_io_checks(f, b);
			}
			async_checks(f, b);
			vh_blk_close(b);
		}
		vh_device_close(&f->dev);
		CHECK_BASELINE(base);
	}
}

static void t_blk_poll_mode(void)
{
	struct t_baseline base = t_baseline();
	struct fake_dev *f = fake_new(FAKE_BLK, FAKE_BLK_FEATURES);
	int err;
	struct vh_blk *b = blk_open(f, 1, 0, VH_DRIVER_F_POLL, 0, &err);

	CHECK_EQ(err, 0);
	if (b) {
		blk_io_checks(f, b);
		async_checks(f, b);
		vh_blk_close(b);
	}
	vh_device_close(&f->dev);
	CHECK_BASELINE(base);
}

static void t_queue_sizes(void)
{
	static const struct {
		unsigned vring_max;
		int packed;
		unsigned want;
	} cases[] = { { 64, 1, 64 }, { 100, 0, 64 }, { 100, 1, 100 }, { 1024, 0, 256 } };

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct fake_dev *f = fake_new(FAKE_BLK, FAKE_BLK_FEATURES &
							   ~(cases[i].packed ? 0 : VH_VQ_F_RING_PACKED));
		int err;
		struct vh_blk *b;

		f->vring_max = cases[i].vring_max;
		b = blk_open(f, 1, 0, 0, 0, &err);
		CHECK_EQ(err, 0);
		if (b) {
			CHECK_EQ_M(vh_driver_queue_size(vh_blk_driver(b), 0), cases[i].want,
				   "case %zu", i);
			async_checks(f, b);
			vh_blk_close(b);
		}
		vh_device_close(&f->dev);
	}
}

static void t_refusals(void)
{
	struct t_baseline base = t_baseline();
	struct fake_dev *f;
	struct vh_blk *b;
	int err;

	/* FEATURES_OK does not stick */
	f = fake_new(FAKE_BLK, FAKE_BLK_FEATURES);
	f->refuse_features_ok = 1;
	b = blk_open(f, 1, 0, 0, 0, &err);
	CHECK(!b);
	CHECK_EQ(err, -EOPNOTSUPP);
	vh_device_close(&f->dev);
	/* more queues than the config's num_queues */
	f = fake_new(FAKE_BLK, FAKE_BLK_FEATURES);
	b = blk_open(f, 5, 0, 0, 0, &err);
	CHECK(!b);
	CHECK_EQ(err, -ERANGE);
	vh_device_close(&f->dev);
	/* several queues without MQ */
	f = fake_new(FAKE_BLK, FAKE_BLK_FEATURES & ~VH_BIT(VH_BLK_F_MQ));
	b = blk_open(f, 2, 0, 0, 0, &err);
	CHECK(!b);
	CHECK_EQ(err, -EOPNOTSUPP);
	vh_device_close(&f->dev);
	/* requests refused locally */
	f = fake_new(FAKE_BLK, FAKE_BLK_FEATURES);
	b = blk_open(f, 1, 0, 0, 0, &err);
	CHECK_EQ(err, 0);
	if (b) {
		uint8_t x[512], *g;
		struct vh_blk_req rq;

		CHECK_EQ(vh_blk_buf_alloc(b, 64 * 4096, 4096, (void **)&g), 0);
		CHECK_EQ(vh_blk_read(b, 0, FAKE_DISK / 512, x, 512), -ERANGE);
		CHECK_EQ(vh_blk_read(b, 0, UINT64_MAX, x, 512), -ERANGE);
		CHECK_EQ(vh_blk_write(b, 0, 0, x, 511), -EINVAL);
		CHECK_EQ(vh_blk_read(b, 1, 0, x, 512), -EINVAL);
		CHECK_EQ(vh_blk_discard(b, 0, 0, 4096), 0); /* split by max_discard_sectors */
		rq = (struct vh_blk_req){ .op = VH_BLK_OP_WRITE, .buf = x, .len = 512 };
		CHECK_EQ(vh_blk_submit(b, 0, &rq, 1), -EFAULT);
		/* 64 KiB in one request: 16 segments of size_max, seg_max is 8 */
		rq = (struct vh_blk_req){ .op = VH_BLK_OP_WRITE, .buf = g, .len = 65536 };
		CHECK_EQ(vh_blk_submit(b, 0, &rq, 1), -EINVAL);
		rq = (struct vh_blk_req){ .op = VH_BLK_OP_DISCARD, .nsectors = 4096 };
		CHECK_EQ(vh_blk_submit(b, 0, &rq, 1), -EINVAL);
		rq = (struct vh_blk_req){ .op = (enum vh_blk_op)99 };
		CHECK_EQ(vh_blk_submit(b, 0, &rq, 1), -EINVAL);
		CHECK_EQ(vh_blk_submit(NULL, 0, &rq, 1), -EINVAL);
		CHECK_EQ(vh_driver_error(vh_blk_driver(b)), 0);
		vh_blk_close(b);
	}
	vh_device_close(&f->dev);
	CHECK_EQ(vh_blk_open(NULL, NULL, NULL), -EINVAL);
	vh_blk_close(NULL);
	vh_net_close(NULL);
	vh_driver_free(NULL);
	CHECK_BASELINE(base);
}

/* A device that misbehaves: the call fails cleanly, in bounded time, and stays failed. */
static void t_blk_hostile(void)
{
	static const struct {
		enum fake_mode mode;
		int want;       /* from the synchronous read */
		int sticky;     /* the driver is broken afterwards */
	} cases[] = {
		{ FAKE_SILENT, -ETIMEDOUT, 0 },
		{ FAKE_NO_STATUS, -EPROTO, 0 },
		{ FAKE_IOERR, -EIO, 0 },
		{ FAKE_BAD_ID, -EIO, 1 },
		{ FAKE_USED_JUMP, -EIO, 1 },
		{ FAKE_SPURIOUS_CALLS, -ETIMEDOUT, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		for (int packed = 0; packed < 2; packed++) {
			struct t_baseline base = t_baseline();
			struct fake_dev *f;
			struct vh_blk *b;
			uint8_t x[4096];
			int64_t t0;
			int err;

			/* the raw used-ring writes are for split rings */
			if (packed && (cases[i].mode == FAKE_BAD_ID || cases[i].mode == FAKE_USED_JUMP))
				continue;
			f = fake_new(FAKE_BLK, FAKE_BLK_FEATURES & ~(packed ? 0 : VH_VQ_F_RING_PACKED));
			b = blk_open(f, 1, 0, 0, FAST_TIMEOUT, &err);
			CHECK_EQ(err, 0);
			if (!b) {
				vh_device_close(&f->dev);
				continue;
			}
			fake_set_mode(f, cases[i].mode);
			t0 = t_now_ms();
			CHECK_EQ_M(vh_blk_read(b, 0, 8, x, sizeof(x)), cases[i].want, "mode %d packed %d",
				   (int)cases[i].mode, packed);
			CHECK(t_now_ms() - t0 < 3 * FAST_TIMEOUT);
			CHECK_EQ_M(vh_driver_error(vh_blk_driver(b)), cases[i].sticky ? -EIO : 0,
				   "mode %d", (int)cases[i].mode);
			if (cases[i].sticky) {
				CHECK_EQ(vh_blk_write(b, 0, 8, x, sizeof(x)), -EIO);
				CHECK_EQ(vh_blk_flush(b, 0), -EIO);
			}
			t0 = t_now_ms();
			vh_blk_close(b);
			CHECK(t_now_ms() - t0 < 3 * FAST_TIMEOUT);
			vh_device_close(&f->dev);
			CHECK_BASELINE(base);
		}
	}
}

/* Data-path calls on different queues from different threads at once. */
struct qworker {
	struct vh_blk *b;
	struct fake_dev *f;
	unsigned q;
	int errors;
};

static void *qworker_run(void *arg)
{
	struct qworker *w = arg;
	uint8_t wbuf[8192], rbuf[8192];

	for (unsigned it = 0; it < 200; it++) {
		uint64_t sector = 4000 + w->q * 1000 + (it % 50) * 16;

		memset(wbuf, (int)(it + w->q * 100), sizeof(wbuf));
		if (vh_blk_write(w->b, w->q, sector, wbuf, sizeof(wbuf)) ||
		    vh_blk_read(w->b, w->q, sector, rbuf, sizeof(rbuf)) ||
		    memcmp(wbuf, rbuf, sizeof(rbuf)))
			w->errors++;
	}
	return NULL;
}

static void t_blk_two_threads(void)
{
	struct t_baseline base = t_baseline();
	struct fake_dev *f = fake_new(FAKE_BLK, FAKE_BLK_FEATURES);
	struct qworker w[2];
	pthread_t th[2];
	int err;
	struct vh_blk *b = blk_open(f, 2, 0, 0, 0, &err);

	CHECK_EQ(err, 0);
	if (b) {
		for (unsigned i = 0; i < 2; i++) {
			w[i] = (struct qworker){ b, f, i, 0 };
			CHECK_EQ(pthread_create(&th[i], NULL, qworker_run, &w[i]), 0);
		}
		for (unsigned i = 0; i < 2; i++) {
			pthread_join(th[i], NULL);
			CHECK_EQ(w[i].errors, 0);
		}
		CHECK_EQ(vh_driver_error(vh_blk_driver(b)), 0);
		vh_blk_close(b);
	}
	vh_device_close(&f->dev);
	CHECK_BASELINE(base);
}

/* ---- net ------------------------------------------------------------------------------------ */

static struct vh_net *net_open(struct fake_dev *f, uint64_t features, uint32_t rx_buf,
			       unsigned flags, int timeout_ms, int *err)
{
	struct vh_net_opts o;
	struct vh_net *n = NULL;

	memset(&o, 0, sizeof(o));
	o.features = features;
	o.rx_buf_size = rx_buf;
	o.kernel_backend_fd = -1;
	o.flags = flags;
	o.timeout_ms = timeout_ms;
	*err = vh_net_open(&n, &f->dev, &o);
	return n;
}

static void net_roundtrip(struct vh_net *n, unsigned count, size_t maxlen, int *multi)
{
	static uint8_t tx[32][1514], rx[32][1600];
	struct vh_net_tx out[32];
	struct vh_net_rx in[32];
	unsigned got = 0;
	int r;

	for (unsigned i = 0; i < count; i++) {
		size_t len = 60 + (i * 97) % (maxlen - 59);

		for (size_t j = 0; j < len; j++)
			tx[i][j] = (uint8_t)(i * 31 + j);
		out[i] = (struct vh_net_tx){ tx[i], (uint32_t)len, NULL };
	}
	r = vh_net_send(n, 0, out, count);
	CHECK_EQ(r, (int)count);
	while (got < count) {
		for (unsigned i = 0; i < count; i++)
			in[i] = (struct vh_net_rx){ .buf = rx[i], .cap = sizeof(rx[i]) };
		r = vh_net_recv(n, 0, in, count - got, 2000);
		CHECK(r > 0);
		if (r <= 0)
			return;
		for (int k = 0; k < r; k++, got++) {
			CHECK_EQ(in[k].len, out[got].len);
			CHECK_EQ(in[k].frame_len, out[got].len);
			CHECK(memcmp(in[k].buf, out[got].data, out[got].len) == 0);
			if (in[k].nbufs > 1)
				(*multi)++;
		}
	}
	CHECK_EQ(vh_net_tx_wait(n, 0, 2000), 0);
	CHECK_EQ(vh_net_tx_pending(n, 0), 0);
}

static void t_net_loopback(void)
{
	static const struct {
		uint64_t drop;
		uint32_t rx_buf;
		int expect_multi;
	} cases[] = {
		{ 0, 0, 0 },
		{ 0, 256, 1 },
		{ VH_VQ_F_RING_PACKED, 200, 1 },
		{ VH_BIT(VH_NET_F_MRG_RXBUF), 0, 0 },
		{ VH_BIT(VH_NET_F_MRG_RXBUF) | VH_VQ_F_RING_PACKED | VH_VQ_F_EVENT_IDX, 0, 0 },
		/* legacy layout: 10-byte header in its own descriptor */
		{ VH_BIT(VH_NET_F_MRG_RXBUF) | VH_BIT(32) | VH_BIT(27) | VH_VQ_F_RING_PACKED, 0, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct t_baseline base = t_baseline();
		struct fake_dev *f = fake_new(FAKE_NET, FAKE_NET_FEATURES & ~cases[i].drop);
		const struct vh_net_config *c;
		int err, multi = 0;
		struct vh_net *n = net_open(f, 0, cases[i].rx_buf, 0, 0, &err);

		CHECK_EQ(err, 0);
		if (n) {
			CHECK_EQ(vh_driver_features(vh_net_driver(n)) & VH_BIT(VH_NET_F_CTRL_VQ), 0);
			CHECK_EQ(vh_net_hdr_len(n), (cases[i].drop & VH_BIT(32)) ? 10 : 12);
			c = vh_net_config(n);
			CHECK_EQ(c->have_mac, 1);
			CHECK_EQ(c->mac[5], 0x56);
			CHECK_EQ(c->mtu, 1500);
			for (int round = 0; round < 10; round++)
				net_roundtrip(n, 32, 1514, &multi);
			CHECK_EQ_M(multi > 0, cases[i].expect_multi, "case %zu", i);
			CHECK_EQ(vh_net_rx_posted(n, 0), vh_driver_queue_size(vh_net_driver(n), 0));
			CHECK_EQ(vh_driver_error(vh_net_driver(n)), 0);
			vh_net_close(n);
		}
		vh_device_close(&f->dev);
		CHECK_BASELINE(base);
	}
}

static void t_net_truncate_and_limits(void)
{
	struct fake_dev *f = fake_new(FAKE_NET, FAKE_NET_FEATURES);
	uint8_t frame[1514], small[100];
	struct vh_net_tx t = { frame, sizeof(frame), NULL };
	struct vh_net_rx r = { .buf = small, .cap = sizeof(small) };
	int err;
	struct vh_net *n = net_open(f, 0, 0, 0, 0, &err);

	CHECK_EQ(err, 0);
	if (n) {
		memset(frame, 0x5a, sizeof(frame));
		CHECK_EQ(vh_net_send(n, 0, &t, 1), 1);
		CHECK_EQ(vh_net_recv(n, 0, &r, 1, 2000), 1);
		CHECK_EQ(r.len, sizeof(small));
		CHECK_EQ(r.frame_len, sizeof(frame));
		CHECK_EQ(r.flags, VH_NET_RX_TRUNCATED);
		t.len = 2048; /* larger than a TX slot minus the header */
		CHECK_EQ(vh_net_send(n, 0, &t, 1), -EMSGSIZE);
		t.len = 0;
		CHECK_EQ(vh_net_send(n, 0, &t, 1), -EMSGSIZE);
		CHECK_EQ(vh_net_send(n, 1, &t, 1), -EINVAL);
		/* nothing arrives: recv returns 0 after its timeout, without error */
		CHECK_EQ(vh_net_recv(n, 0, &r, 1, 50), 0);
		CHECK_EQ(vh_net_recv(n, 0, &r, 1, 0), 0);
		vh_net_close(n);
	}
	vh_device_close(&f->dev);
}

static void t_net_hostile(void)
{
	static const struct {
		enum fake_mode mode;
		int want_recv;
		int sticky;
	} cases[] = {
		{ FAKE_BAD_NUM_BUFFERS, -EIO, 1 },
		{ FAKE_BIG_LEN, -EIO, 1 },
		{ FAKE_SILENT, 0, 0 },
		{ FAKE_BAD_ID, 0, 1 },
		{ FAKE_SPURIOUS_CALLS, 0, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct t_baseline base = t_baseline();
		struct fake_dev *f = fake_new(FAKE_NET, FAKE_NET_FEATURES & ~VH_VQ_F_RING_PACKED);
		uint8_t frame[200] = { 1, 2, 3 }, back[256];
		struct vh_net_tx t = { frame, sizeof(frame), NULL };
		struct vh_net_rx r = { .buf = back, .cap = sizeof(back) };
		int64_t t0;
		int err;
		struct vh_net *n = net_open(f, 0, 0, 0, FAST_TIMEOUT, &err);

		CHECK_EQ(err, 0);
		if (!n) {
			vh_device_close(&f->dev);
			continue;
		}
		fake_set_mode(f, cases[i].mode);
		CHECK_EQ(vh_net_send(n, 0, &t, 1), 1);
		t0 = t_now_ms();
		err = vh_net_recv(n, 0, &r, 1, -1);
		if (cases[i].mode == FAKE_BAD_ID && err == 0) /* the TX ring breaks, found on send */
			err = vh_net_tx_wait(n, 0, -1);
		CHECK_EQ_M(err, cases[i].want_recv ? cases[i].want_recv : (cases[i].sticky ? -EIO : 0),
			   "mode %d", (int)cases[i].mode);
		CHECK(t_now_ms() - t0 < 3 * FAST_TIMEOUT);
		CHECK_EQ_M(vh_driver_error(vh_net_driver(n)), cases[i].sticky ? -EIO : 0, "mode %d",
			   (int)cases[i].mode);
		if (cases[i].mode == FAKE_SILENT)
			CHECK_EQ(vh_net_tx_wait(n, 0, 100), -ETIMEDOUT);
		t0 = t_now_ms();
		vh_net_close(n);
		CHECK(t_now_ms() - t0 < 3 * FAST_TIMEOUT);
		vh_device_close(&f->dev);
		CHECK_BASELINE(base);
	}
}

static void t_names(void)
{
	CHECK(strcmp(vh_blk_feature_name(VH_BLK_F_FLUSH), "FLUSH") == 0);
	CHECK(strcmp(vh_blk_feature_name(34), "RING_PACKED") == 0);
	CHECK(strcmp(vh_net_feature_name(VH_NET_F_MRG_RXBUF), "MRG_RXBUF") == 0);
	CHECK(strcmp(vh_net_feature_name(32), "VERSION_1") == 0);
	CHECK(vh_net_feature_name(4) == NULL);
	CHECK(vh_blk_feature_name(3) == NULL);
}

static void *warm_up(void *arg)
{
	return arg;
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		{ "blk_all_features", t_blk_all_features },
		{ "blk_fallback", t_blk_fallback },
		{ "blk_poll_mode", t_blk_poll_mode },
		{ "queue_sizes", t_queue_sizes },
		{ "refusals", t_refusals },
		{ "blk_hostile", t_blk_hostile },
		{ "blk_two_threads", t_blk_two_threads },
		{ "net_loopback", t_net_loopback },
		{ "net_truncate_and_limits", t_net_truncate_and_limits },
		{ "net_hostile", t_net_hostile },
		{ "names", t_names },
	};

	pthread_t warm[3];
	int nw = 0;

	/* glibc keeps the stacks of joined threads for reuse: start as many as a test runs at
	 * once (device thread + two workers) so every mapping baseline already includes them. */
	for (int i = 0; i < 3; i++)
		if (pthread_create(&warm[nw], NULL, warm_up, NULL) == 0)
			nw++;
	while (nw > 0)
		pthread_join(warm[--nw], NULL);
	return t_run(tests, ARRAY_SIZE(tests), argc, argv);
}
