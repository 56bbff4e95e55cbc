/* SPDX-License-Identifier: MIT */
/*
 * vhost-user-net's device (tools/net_device.c) in echo mode, in-process: the server runs on
 * its own thread (vh_server_run, two workers so the RX and TX rings of a pair run on different
 * threads), the driver side of the library drives it over a vhost-user socket.
 *
 *  - echo_*: frames of many sizes through vh_net (the library's net client), split and packed
 *    rings, mergeable RX buffers of 256 bytes (frames span several) or none, two pairs; every
 *    byte compared, the device's counters checked;
 *  - malformed_*: a hand-made driver (vh_driver) sends TX chains the device must drop and count
 *    (header shorter than 12 bytes, offload flags or GSO not negotiated, DATA_VALID on TX, runt
 *    frame, device-writable TX descriptor) between valid ones, one with its header spread over
 *    three descriptors; only the valid frames come back, byte for byte;
 *  - rx_bad_buffers: an RX buffer smaller than the header is returned empty and counted;
 *  - disabled_rings: a started but disabled TX ring is consumed and dropped; a disabled RX ring
 *    gets nothing until it is enabled again;
 *  - tx_before_enable: frames on a TX ring not enabled since it started wait for the enable;
 *  - rx_short: RX buffers run out within a burst; the rest waits and arrives in order;
 *  - overlapping_buffers: a TX buffer inside the RX buffer it is echoed into;
 *  - *_1w: the same with both rings of a pair on one worker, where TX puts frames straight into
 *    RX buffers.
 * Every test checks the fd and mapping counts are back to where they started.
 */
#include "nettest.h"

/* ---- Echo through the net client ------------------------------------------------------------ */

#define CHECK_M_OK(r, name)                                                      \
	do {                                                                     \
		if ((r) <= 0)                                                    \
			T_FAIL("%s: send returned %d", name, (int)(r));          \
	} while (0)


struct echo_case {
	const char *name;
	int packed;
	int mrg;
	uint32_t rx_buf;
	unsigned pairs;
};

static void run_echo(const struct echo_case *c)
{
	static uint8_t tx[32][MAXF], rx[32][MAXF + 64];
	struct t_baseline b = t_baseline();
	struct srv s;
	struct vh_device *dev;
	struct vh_net *net = NULL;
	struct vh_net_opts o;
	unsigned total = 0, multi = 0;
	uint64_t bytes = 0;
	int r;

	if (srv_start(&s, c->pairs))
		return;
	dev = connect_dev(&s);
	if (!dev)
		goto out;
	memset(&o, 0, sizeof(o));
	o.features = VH_BIT(VH_NET_F_MAC) | VH_BIT(VH_NET_F_STATUS) | VH_BIT(VH_NET_F_MTU) |
		     (VH_DRIVER_RING_FEATURES & ~VH_VQ_F_RING_PACKED) |
		     (c->packed ? VH_VQ_F_RING_PACKED : 0) |
		     (c->mrg ? VH_BIT(VH_NET_F_MRG_RXBUF) : 0);
	o.queue_pairs = c->pairs;
	o.queue_size = 128;
	o.rx_buf_size = c->rx_buf;
	o.kernel_backend_fd = -1;
	o.log = logger();
	r = vh_net_open(&net, dev, &o);
	CHECK_EQ_M(r, 0, "%s: open", c->name);
	if (r)
		goto out_dev;
	CHECK_EQ_M(!!(vh_driver_features(vh_net_driver(net)) & VH_VQ_F_RING_PACKED), c->packed,
		   "%s: packed", c->name);
	CHECK_EQ_M(!!(vh_driver_features(vh_net_driver(net)) & VH_BIT(VH_NET_F_MRG_RXBUF)), c->mrg,
		   "%s: mrg", c->name);
	/* The config space as the device offers it. */
	CHECK_EQ(vh_net_config(net)->have_mac, 1);
	CHECK(!memcmp(vh_net_config(net)->mac, (const uint8_t[6]){ 0x52, 0x54, 0, 0x12, 0x34, 0x56 },
		      6));
	CHECK_EQ(vh_net_config(net)->status, 1);
	CHECK_EQ(vh_net_config(net)->mtu, 1500);

	for (unsigned round = 0; round < 8; round++) {
		for (unsigned p = 0; p < c->pairs; p++) {
			struct vh_net_tx out[32];
			struct vh_net_rx in[32];
			unsigned n = 0, got = 0;

			for (unsigned i = 0; i < 32; i++) {
				out[i].data = tx[i];
				out[i].len = (uint32_t)frame_len(round * 32 + i);
				out[i].hdr = NULL;
				fill(tx[i], out[i].len, p, round * 32 + i);
			}
			while (n < 32) {
				r = vh_net_send(net, p, out + n, 32 - n);
				CHECK_M_OK(r, c->name);
				if (r <= 0)
					goto out_net;
				n += (unsigned)r;
			}
			while (got < 32) {
				for (unsigned i = 0; i < 32; i++) {
					in[i].buf = rx[i];
					in[i].cap = sizeof(rx[i]);
				}
				r = vh_net_recv(net, p, in, 32 - got, WAIT_MS);
				if (r <= 0) {
					T_FAIL("%s: pair %u round %u: %u of 32 frames back (%d)",
					       c->name, p, round, got, r);
					goto out_net;
				}
				for (int i = 0; i < r; i++, got++) {
					const struct vh_net_tx *want = &out[got];

					CHECK_EQ_M(in[i].frame_len, want->len, "%s frame %u", c->name,
						   got);
					CHECK_EQ_M(in[i].flags, 0, "%s frame %u", c->name, got);
					CHECK_EQ_M(in[i].hdr.flags, 0, "%s frame %u", c->name, got);
					CHECK_EQ_M(in[i].hdr.gso_type, 0, "%s frame %u", c->name, got);
					if (in[i].len != want->len ||
					    memcmp(in[i].buf, want->data, want->len))
						T_FAIL("%s: pair %u frame %u: bytes differ", c->name, p,
						       got);
					if (!c->mrg)
						CHECK_EQ(in[i].nbufs, 1);
					if (in[i].nbufs > 1)
						multi++;
					bytes += want->len;
				}
			}
			total += got;
		}
	}
	if (c->mrg && c->rx_buf < 512)
		CHECK(multi > total / 4);   /* most frames spread over several RX buffers */
	printf("  %s: %u frames back, %u over several RX buffers\n", c->name, total, multi);
	{
		struct net_pair_stats st = stats(&s, -1);

		CHECK_EQ(st.tx_frames, total);
		CHECK_EQ(st.rx_frames, total);
		CHECK_EQ(st.tx_bytes, bytes);
		CHECK_EQ(st.rx_bytes, bytes);
		CHECK_EQ(st.tx_malformed + st.tx_no_rx + st.tx_disabled + st.tx_errors, 0);
		CHECK_EQ(st.rx_too_big + st.rx_bad_buf + st.rx_errors, 0);
		for (unsigned p = 0; p < c->pairs; p++)
			CHECK_EQ(stats(&s, (int)p).rx_frames, total / c->pairs);
	}
out_net:
	vh_net_close(net);
out_dev:
	vh_device_close(dev);
out:
	srv_stop(&s);
	CHECK_BASELINE(b);
}

static void echo_split_mrg_small(void)
{
	run_echo(&(struct echo_case){ "split, MRG_RXBUF, 256-byte RX buffers", 0, 1, 256, 1 });
}

static void echo_packed_mrg_small(void)
{
	run_echo(&(struct echo_case){ "packed, MRG_RXBUF, 256-byte RX buffers", 1, 1, 256, 1 });
}

static void echo_split_nomrg(void)
{
	run_echo(&(struct echo_case){ "split, no MRG_RXBUF", 0, 0, 2048, 1 });
}

static void echo_packed_nomrg(void)
{
	run_echo(&(struct echo_case){ "packed, no MRG_RXBUF", 1, 0, 2048, 1 });
}

static void echo_two_pairs(void)
{
	run_echo(&(struct echo_case){ "two pairs, split, MRG_RXBUF", 0, 1, 1024, 2 });
}


struct txspec {
	const char *what;
	int valid;
	uint8_t flags, gso;
	unsigned hdr_pieces;     /* descriptors the 12-byte header is spread over */
	unsigned hdr_bytes;      /* bytes of header given (12 = whole) */
	unsigned frame;          /* frame bytes after the header */
	int writable;            /* add a device-writable descriptor */
};

static void run_malformed(int packed)
{
	static const struct txspec specs[] = {
		{ "valid", 1, 0, 0, 1, 12, 100, 0 },
		{ "header of 8 bytes only", 0, 0, 0, 1, 8, 0, 0 },
		{ "NEEDS_CSUM without CSUM", 0, 1, 0, 1, 12, 80, 0 },
		{ "GSO TCPv4 without HOST_TSO4", 0, 1, 1, 1, 12, 1400, 0 },
		{ "valid, header over 3 descriptors", 1, 0, 0, 3, 12, 333, 0 },
		{ "DATA_VALID on TX", 0, 2, 0, 1, 12, 60, 0 },
		{ "runt frame (10 bytes)", 0, 0, 0, 1, 12, 10, 0 },
		{ "device-writable TX descriptor", 0, 0, 0, 1, 12, 70, 1 },
		{ "unknown flag bit", 0, 0x40, 0, 1, 12, 60, 0 },
		{ "valid, largest frame", 1, 0, 0, 2, 12, 1514, 0 },
	};
	const unsigned n = sizeof(specs) / sizeof(specs[0]);
	struct t_baseline b = t_baseline();
	struct vh_vq_driver_used u[16];
	struct raw w;
	uint8_t frames[16][MAXF];
	unsigned nvalid = 0, nbad = 0;
	uint8_t *rxbuf;

	if (raw_open(&w, packed))
		goto out;
	rxbuf = post_rx(&w, 8, 2048, 1000);
	for (unsigned i = 0; i < n; i++) {
		const struct txspec *t = &specs[i];
		struct vh_vq_seg seg[8];
		struct vh_vq_driver_req req;
		struct vh_net_hdr h;
		unsigned k = 0, off = 0;
		uint8_t *p;

		memset(&h, 0, sizeof(h));
		h.flags = t->flags;
		h.gso_type = t->gso;
		if (t->gso)
			h.gso_size = htole16(1400);
		h.csum_start = htole16(34);
		h.csum_offset = htole16(6);
		/* The header in hdr_pieces descriptors. */
		for (unsigned piece_i = 0; piece_i < t->hdr_pieces; piece_i++) {
			unsigned len = t->hdr_bytes / t->hdr_pieces +
				       (piece_i + 1 == t->hdr_pieces ? t->hdr_bytes % t->hdr_pieces : 0);

			seg[k].gpa = piece(&w, len, &p);
			seg[k].len = len;
			memcpy(p, (uint8_t *)&h + off, len);
			off += len;
			k++;
		}
		if (t->frame) {
			/* The frame in two descriptors when it is long enough. */
			unsigned first = t->frame > 100 ? t->frame / 3 : t->frame;

			fill(frames[i], t->frame, 0, i);
			seg[k].gpa = piece(&w, first, &p);
			seg[k].len = first;
			memcpy(p, frames[i], first);
			k++;
			if (first < t->frame) {
				seg[k].gpa = piece(&w, t->frame - first, &p);
				seg[k].len = t->frame - first;
				memcpy(p, frames[i] + first, t->frame - first);
				k++;
			}
		}
		req.segs = seg;
		req.out_num = (uint16_t)k;
		req.in_num = 0;
		if (t->writable) {
			seg[k].gpa = piece(&w, 64, &p);
			seg[k].len = 64;
			req.in_num = 1;
		}
		req.token = i;
		CHECK_EQ_M(vh_driver_submit(w.drv, 1, &req, 1), 1, "%s", t->what);
		if (t->valid)
			nvalid++;
		else
			nbad++;
	}
	/* Every TX chain is consumed, bad or not. */
	CHECK_EQ(collect(&w, 1, u, n), (int)n);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(u[i].len, 0);
	/* Only the valid frames come back, in order, each in one 2048-byte buffer. */
	CHECK_EQ(collect(&w, 0, u, nvalid), (int)nvalid);
	expect_quiet(&w, 0, 100);
	for (unsigned i = 0, v = 0; i < n && v < nvalid; i++) {
		const struct txspec *t = &specs[i];
		const uint8_t *buf = rxbuf + 2048 * (u[v].token - 1000);
		struct vh_net_hdr h;

		if (!t->valid)
			continue;
		CHECK_EQ_M(u[v].token, 1000 + v, "%s", t->what);
		CHECK_EQ_M(u[v].len, 12 + t->frame, "%s", t->what);
		memcpy(&h, buf, sizeof(h));
		CHECK_EQ_M(h.flags, 0, "%s", t->what);
		CHECK_EQ_M(h.gso_type, 0, "%s", t->what);
		CHECK_EQ_M(le16toh(h.num_buffers), 1, "%s", t->what);
		if (memcmp(buf + 12, frames[i], t->frame))
			T_FAIL("%s: the echoed frame differs", t->what);
		CHECK_EQ_M(buf[12 + t->frame], 0xcc, "%s: written past the frame", t->what);
		v++;
	}
	{
		struct net_pair_stats st = stats(&w.s, 0);

		CHECK_EQ(st.tx_malformed, nbad);
		CHECK_EQ(st.tx_frames, nvalid);
		CHECK_EQ(st.rx_frames, nvalid);
	}
	printf("  %s: %u malformed chains dropped and counted, %u valid ones echoed\n",
	       packed ? "packed" : "split", nbad, nvalid);
out:
	raw_close(&w);
	CHECK_BASELINE(b);
}

static void malformed_split(void)
{
	run_malformed(0);
}

static void malformed_packed(void)
{
	run_malformed(1);
}


static void rx_bad_buffers(void)
{
	struct t_baseline b = t_baseline();
	struct vh_vq_driver_used u[8];
	uint8_t ref[200];
	struct raw w;
	uint8_t *small, *good;

	if (raw_open(&w, 0))
		goto out;
	/* An 8-byte buffer cannot hold the 12-byte header (MRG_RXBUF: every buffer must). */
	small = post_rx(&w, 1, 8, 1);
	good = post_rx(&w, 1, 2048, 2);
	send_frame(&w, 200, 7, 50);
	CHECK_EQ(collect(&w, 1, u, 1), 1);
	CHECK_EQ(collect(&w, 0, u, 2), 2);
	CHECK_EQ(u[0].token, 1);
	CHECK_EQ(u[0].len, 0);
	CHECK_EQ(small[0], 0xcc);
	CHECK_EQ(u[1].token, 2);
	CHECK_EQ(u[1].len, 212);
	fill(ref, 200, 0, 7);
	CHECK(!memcmp(good + 12, ref, 200));
	CHECK_EQ(stats(&w.s, 0).rx_bad_buf, 1);
	CHECK_EQ(stats(&w.s, 0).rx_frames, 1);
out:
	raw_close(&w);
	CHECK_BASELINE(b);
}

static void disabled_rings(void)
{
	struct t_baseline b = t_baseline();
	struct vh_vq_driver_used u[16];
	struct net_pair_stats st;
	struct raw w;
	unsigned held;

	if (raw_open(&w, 0))
		goto out;
	(void)post_rx(&w, 16, 2048, 100);
	/* One frame while enabled (a ring not enabled since it started keeps its frames:
	 * tx_before_enable). */
	send_frame(&w, 100, 9, 9);
	CHECK_EQ(collect(&w, 1, u, 1), 1);
	CHECK_EQ(collect(&w, 0, u, 1), 1);

	/* TX disabled: consumed and dropped, nothing reaches RX. */
	CHECK_EQ(vh_device_set_vring_enable(vh_driver_device(w.drv), 1, 0), 0);
	for (unsigned i = 0; i < 4; i++)
		send_frame(&w, 100, i, i);
	CHECK_EQ(collect(&w, 1, u, 4), 4);
	expect_quiet(&w, 0, 100);
	st = stats(&w.s, 0);
	CHECK_EQ(st.tx_disabled, 4);
	CHECK_EQ(st.tx_frames, 1);
	CHECK_EQ(vh_device_set_vring_enable(vh_driver_device(w.drv), 1, 1), 0);
	send_frame(&w, 100, 10, 10);
	CHECK_EQ(collect(&w, 1, u, 1), 1);
	CHECK_EQ(collect(&w, 0, u, 1), 1);
	CHECK_EQ(u[0].len, 112);

	/* RX disabled: no RX buffer is used; echoed frames wait or are dropped (counted). */
	CHECK_EQ(vh_device_set_vring_enable(vh_driver_device(w.drv), 0, 0), 0);
	for (unsigned i = 0; i < 6; i++)
		send_frame(&w, 100, 20 + i, 20 + i);
	CHECK_EQ(collect(&w, 1, u, 6), 6);
	expect_quiet(&w, 0, 200);
	st = stats(&w.s, 0);
	CHECK_EQ(st.rx_frames, 2);
	held = (unsigned)(st.tx_frames - 2);
	CHECK_EQ(held + st.tx_no_rx, 6);
	/* Enabled again: what was waiting arrives. */
	CHECK_EQ(vh_device_set_vring_enable(vh_driver_device(w.drv), 0, 1), 0);
	if (held)
		CHECK_EQ(collect(&w, 0, u, held), (int)held);
	expect_quiet(&w, 0, 100);
	CHECK_EQ(stats(&w.s, 0).rx_frames, 2 + held);
	printf("  disabled RX: %u frames waited, %u dropped\n", held, 6 - held);
out:
	raw_close(&w);
	CHECK_BASELINE(b);
}

/* RX buffers run short in the middle of a burst: the frames without one wait in the device
 * and arrive, in order, once buffers come; later frames follow them. */
/* Frames on a TX ring that started but is not enabled yet (the front-end's SET_VRING_ENABLE is
 * still behind its kick on the socket: DPDK's virtio-user enables a pair after kicking it)
 * wait in the ring and go out once it is enabled; none is dropped as "disabled". */
static void send_before_enable(struct raw *w)
{
	for (unsigned i = 0; i < 4; i++)
		send_frame(w, 100 + i, i, i);
	t_sleep_ms(100);        /* the device sees the kick while the ring is not enabled */
}

static void tx_before_enable(void)
{
	struct t_baseline b = t_baseline();
	struct vh_vq_driver_used u[8];
	struct net_pair_stats st;
	uint8_t *rx, ref[200];
	struct raw w;

	memset(&w, 0, sizeof(w));
	if (srv_start(&w.s, 1))
		goto out;
	w.before_enable = send_before_enable;
	if (raw_connect(&w, 0, 0, VH_DRIVER_USER_PROTOCOL_FEATURES))
		goto out;
	rx = post_rx(&w, 4, 2048, 100);
	CHECK_EQ(collect(&w, 1, u, 4), 4);
	CHECK_EQ(collect(&w, 0, u, 4), 4);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ_M(u[i].token, 100 + i, "frame %u", i);
		CHECK_EQ_M(u[i].len, 12 + 100 + i, "frame %u", i);
		fill(ref, 100 + i, 0, i);
		if (memcmp(rx + 2048 * i + 12, ref, 100 + i))
			T_FAIL("frame %u: bytes differ", i);
	}
	st = stats(&w.s, 0);
	CHECK_EQ(st.tx_disabled, 0);
	CHECK_EQ(st.tx_frames, 4);
	CHECK_EQ(st.rx_frames, 4);
out:
	raw_close(&w);
	CHECK_BASELINE(b);
}

static void rx_short(void)
{
	struct t_baseline b = t_baseline();
	struct vh_vq_driver_used u[16];
	uint8_t *rx[3], ref[200];
	struct raw w;
	unsigned seq = 0;

	if (raw_open(&w, 0))
		goto out;
	rx[0] = post_rx(&w, 3, 2048, 100);
	{
		struct vh_vq_seg seg[8];
		struct vh_vq_driver_req req[8];

		for (unsigned i = 0; i < 8; i++, seq++) {
			uint8_t *p;

			seg[i].gpa = piece(&w, 12 + 100 + seq, &p);
			seg[i].len = 12 + 100 + seq;
			memset(p, 0, 12);
			fill(p + 12, 100 + seq, 0, seq);
			req[i] = (struct vh_vq_driver_req){ &seg[i], 1, 0, seq };
		}
		CHECK_EQ(vh_driver_submit(w.drv, 1, req, 8), 8);
	}
	CHECK_EQ(collect(&w, 1, u, 8), 8);
	CHECK_EQ(collect(&w, 0, u, 3), 3);
	expect_quiet(&w, 0, 100);
	CHECK_EQ(stats(&w.s, 0).rx_frames, 3);
	rx[1] = post_rx(&w, 5, 2048, 103);
	CHECK_EQ(collect(&w, 0, u + 3, 5), 5);
	rx[2] = post_rx(&w, 4, 2048, 108);
	for (unsigned i = 0; i < 4; i++, seq++)
		send_frame(&w, 100 + seq, seq, seq);
	CHECK_EQ(collect(&w, 1, u + 8, 4), 4);
	CHECK_EQ(collect(&w, 0, u + 8, 4), 4);
	for (unsigned i = 0; i < 12; i++) {
		unsigned base = i < 3 ? 0 : i < 8 ? 1 : 2, first = i < 3 ? 0 : i < 8 ? 3 : 8;
		const uint8_t *buf = rx[base] + 2048 * (i - first);

		CHECK_EQ_M(u[i].token, 100 + i, "frame %u", i);
		CHECK_EQ_M(u[i].len, 12 + 100 + i, "frame %u", i);
		CHECK_EQ_M(le16toh(((const struct vh_net_hdr *)(const void *)buf)->num_buffers), 1,
			   "frame %u", i);
		fill(ref, 100 + i, 0, i);
		if (memcmp(buf + 12, ref, 100 + i))
			T_FAIL("frame %u: bytes differ (out of order?)", i);
	}
	{
		struct net_pair_stats st = stats(&w.s, 0);

		CHECK_EQ(st.tx_frames, 12);
		CHECK_EQ(st.rx_frames, 12);
		CHECK_EQ(st.rx_too_big + st.rx_bad_buf + st.tx_no_rx + st.tx_malformed, 0);
	}
out:
	raw_close(&w);
	CHECK_BASELINE(b);
}

/* A hostile driver points a TX buffer into the RX buffer it is echoed into: the frame is
 * copied guest to guest over an overlap (a memmove), so the RX buffer holds it as sent. Two
 * frames in one burst, so the second takes the direct loop (tx_direct_burst) on one worker. */
static void overlapping_buffers(void)
{
	struct t_baseline b = t_baseline();
	struct vh_vq_driver_used u[4];
	struct vh_vq_seg seg[2];
	struct vh_vq_driver_req req[2] = { { &seg[0], 1, 0, 7 }, { &seg[1], 1, 0, 8 } };
	uint8_t ref[2][200];
	struct raw w;
	uint8_t *rx, *p;

	if (raw_open(&w, 0))
		goto out;
	rx = post_rx(&w, 2, 2048, 100);
	seg[0].gpa = piece(&w, 12 + 100, &p);
	seg[0].len = 12 + 100;
	memset(p, 0, 12);
	fill(p + 12, 100, 0, 8);
	fill(ref[0], 100, 0, 8);
	/* The second frame lies inside the second RX buffer, 64 bytes in. */
	seg[1].gpa = w.gpa + (uint64_t)(rx + 2048 - w.mem) + 64;
	seg[1].len = 12 + 200;
	memset(rx + 2048 + 64, 0, 12);
	fill(rx + 2048 + 64 + 12, 200, 0, 9);
	fill(ref[1], 200, 0, 9);
	CHECK_EQ(vh_driver_submit(w.drv, 1, req, 2), 2);
	CHECK_EQ(collect(&w, 1, u, 2), 2);
	CHECK_EQ(collect(&w, 0, u + 2, 2), 2);
	CHECK_EQ(u[2].token, 100);
	CHECK_EQ(u[2].len, 112);
	CHECK_EQ(u[3].token, 101);
	CHECK_EQ(u[3].len, 212);
	if (memcmp(rx + 12, ref[0], 100) || memcmp(rx + 2048 + 12, ref[1], 200))
		T_FAIL("a frame echoed over an overlap differs");
	CHECK_EQ(stats(&w.s, 0).rx_frames, 2);
out:
	raw_close(&w);
	CHECK_BASELINE(b);
}

/* The same with both rings of the pair on one worker thread: TX puts frames straight into RX
 * buffers (and falls back to the hand-over when it must). */
static void one_worker(void (*fn)(void))
{
	srv_nthreads = 1;
	fn();
	srv_nthreads = 2;
}

#define ONE_WORKER(fn)                                                                          \
	static void fn##_1w(void)                                                               \
	{                                                                                       \
		one_worker(fn);                                                                 \
	}
ONE_WORKER(echo_split_mrg_small)
ONE_WORKER(echo_packed_mrg_small)
ONE_WORKER(echo_split_nomrg)
ONE_WORKER(echo_packed_nomrg)
ONE_WORKER(echo_two_pairs)
ONE_WORKER(malformed_split)
ONE_WORKER(malformed_packed)
ONE_WORKER(rx_bad_buffers)
ONE_WORKER(disabled_rings)
ONE_WORKER(tx_before_enable)
ONE_WORKER(rx_short)
ONE_WORKER(overlapping_buffers)

static const struct t_test tests[] = {
	T_TEST(echo_split_mrg_small),
	T_TEST(echo_packed_mrg_small),
	T_TEST(echo_split_nomrg),
	T_TEST(echo_packed_nomrg),
	T_TEST(echo_two_pairs),
	T_TEST(malformed_split),
	T_TEST(malformed_packed),
	T_TEST(rx_bad_buffers),
	T_TEST(disabled_rings),
	T_TEST(tx_before_enable),
	T_TEST(rx_short),
	T_TEST(overlapping_buffers),
	T_TEST(echo_split_mrg_small_1w),
	T_TEST(echo_packed_mrg_small_1w),
	T_TEST(echo_split_nomrg_1w),
	T_TEST(echo_packed_nomrg_1w),
	T_TEST(echo_two_pairs_1w),
	T_TEST(malformed_split_1w),
	T_TEST(malformed_packed_1w),
	T_TEST(rx_bad_buffers_1w),
	T_TEST(disabled_rings_1w),
	T_TEST(tx_before_enable_1w),
	T_TEST(rx_short_1w),
	T_TEST(overlapping_buffers_1w),
};

int main(int argc, char **argv)
{
	warm_up();
	return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
