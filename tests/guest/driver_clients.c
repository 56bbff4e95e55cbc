/* SPDX-License-Identifier: MIT */
/*
 * The driver-side blk and net clients (driver.h) on kernel devices, with the SAME client code
 * that the host tests run over vhost-user sockets; only the open call differs:
 *   - vdpa_sim_blk and a VDUSE blk device (qemu-storage-daemon's vduse-blk export: the image
 *     file is checked with pread) through vhost-vdpa: status handshake, IOVA mapping;
 *   - vdpa_sim_net through vhost-vdpa: frames sent on TX come back on RX (the simulator loops
 *     them), byte for byte;
 *   - /dev/vhost-net with a tap device as backend: frames we send appear on the tap (read with a
 *     packet socket), frames written to the tap arrive through our RX ring.
 * Runs inside the guest (devices 'vdpa'); built static.
 */
#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <libvhost/libvhost.h>
#include "../wire/testutil.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ETH_TEST 0x88b5

static void log_fn(void *opaque, enum vh_log_level level, const char *msg)
{
	(void)opaque;
	if (level <= VH_LOG_INFO)
		printf("    [libvhost] %s\n", msg);
}

static const struct vh_logger logger = { log_fn, NULL, VH_LOG_INFO };

static void print_features(const char *what, struct vh_driver *d,
			   const char *(*name)(unsigned))
{
	uint64_t f = vh_driver_features(d);

	printf("  %s: negotiated 0x%" PRIx64 " (offered 0x%" PRIx64 "):", what, f,
	       vh_driver_features_offered(d));
	for (unsigned b = 0; b < 64; b++)
		if (f & (1ull << b))
			printf(" %s", name(b) ? name(b) : "?");
	printf("\n");
}

static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len);

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 131 + seed * 7) ^ (i >> 9));
	return p;
}

/* ---- blk ----------------------------------------------------------------------------------- */

static void blk_roundtrip(const char *what, const char *node, const char *image)
{
	struct t_baseline base = t_baseline();
	struct vh_device *dev = NULL;
	struct vh_blk_opts o;
	struct vh_blk *blk = NULL;
	const struct vh_blk_config *c;
	const size_t len = 192 * 1024;
	const uint64_t sector = 2048 + 3;
	char id[VH_BLK_ID_BYTES + 1];
	uint8_t *w, *r;
	int e;

	printf("%s (%s)\n", what, node ? node : "(none)");
	if (!node) {
		T_FAIL("%s: device node not created by the harness", what);
		return;
	}
	CHECK_EQ(vh_vdpa_open(&dev, node, &logger), 0);
	if (!dev)
		return;
	memset(&o, 0, sizeof(o));
	o.log = logger;
	o.timeout_ms = 20000; /* TCG guests are slow */
	e = vh_blk_open(&blk, dev, &o);
	CHECK_EQ(e, 0);
	if (e) {
		vh_device_close(dev);
		return;
	}
	c = vh_blk_config(blk);
	print_features(what, vh_blk_driver(blk), vh_blk_feature_name);
	printf("  capacity %" PRIu64 " sectors, size_max %u, seg_max %u, blk_size %u, ring %u\n",
	       c->capacity, c->size_max, c->seg_max, c->blk_size,
	       vh_driver_queue_size(vh_blk_driver(blk), 0));
	CHECK(c->have_config);
	CHECK(c->capacity > sector + len / 512);
	CHECK(!(vh_driver_features(vh_blk_driver(blk)) & VH_VQ_F_RING_PACKED) ||
	      (vh_driver_features_offered(vh_blk_driver(blk)) & VH_VQ_F_RING_PACKED));
	CHECK(vh_driver_features(vh_blk_driver(blk)) & (1ull << 33)); /* ACCESS_PLATFORM */

	w = pattern(len, 1);
	r = calloc(1, len);
	CHECK_EQ(vh_blk_write(blk, 0, sector, w, len), 0);
	CHECK_EQ(vh_blk_read(blk, 0, sector, r, len), 0);
	CHECK(memcmp(w, r, len) == 0);
	if (vh_driver_features(vh_blk_driver(blk)) & VH_BIT(VH_BLK_F_FLUSH))
		CHECK_EQ(vh_blk_flush(blk, 0), 0);
	if (image) {
		int fd = open(image, O_RDONLY | O_CLOEXEC);
		ssize_t n;

		memset(r, 0, len);
		n = fd >= 0 ? pread(fd, r, len, (off_t)(sector * 512)) : -1;
		CHECK_EQ(n, (ssize_t)len);
		if (n == (ssize_t)len && memcmp(w, r, len) != 0)
			T_FAIL("%s: the image file does not hold what was written", what);
		else if (n == (ssize_t)len)
			printf("  image file %s holds the data at byte %" PRIu64 ": ok\n", image,
			       sector * 512);
		if (fd >= 0)
			close(fd);
	}
	if (vh_driver_features(vh_blk_driver(blk)) & VH_BIT(VH_BLK_F_WRITE_ZEROES)) {
		CHECK_EQ(vh_blk_write_zeroes(blk, 0, sector + 8, 16, 0), 0);
		CHECK_EQ(vh_blk_read(blk, 0, sector, r, len), 0);
		memset(w + 8 * 512, 0, 16 * 512);
		CHECK(memcmp(w, r, len) == 0);
	}
	if (vh_driver_features(vh_blk_driver(blk)) & VH_BIT(VH_BLK_F_DISCARD))
		CHECK_EQ(vh_blk_discard(blk, 0, sector + 100, 8), 0);
	e = vh_blk_get_id(blk, 0, id);
	printf("  get-id: %s \"%s\"\n", e ? strerror(-e) : "ok", e ? "" : id);
	CHECK(e == 0 || e == -EOPNOTSUPP);
	CHECK_EQ(vh_blk_read(blk, 0, c->capacity, r, 512), -ERANGE);
	CHECK_EQ(vh_driver_error(vh_blk_driver(blk)), 0);
	printf("  kicks %" PRIu64 ", calls %" PRIu64 "\n", vh_driver_kicks(vh_blk_driver(blk)),
	       vh_driver_calls(vh_blk_driver(blk)));
	free(w);
	free(r);
	vh_blk_close(blk);
	vh_device_close(dev);
	CHECK_BASELINE(base);
}

static void t_vdpa_sim_blk(void)
{
	blk_roundtrip("vdpa_sim_blk", getenv("LIBVHOST_VDPA_BLK"), NULL);
}

static void t_vduse_blk(void)
{
	blk_roundtrip("VDUSE blk (qemu-storage-daemon)", getenv("LIBVHOST_VDPA_VDUSE"),
		      getenv("LIBVHOST_VDUSE_IMAGE"));
}

/* ---- net ----------------------------------------------------------------------------------- */

static size_t make_frame(uint8_t *f, unsigned i)
{
	size_t len = 60 + (i * 211) % 1455;

	for (size_t j = 0; j < len; j++)
		f[j] = (uint8_t)(i * 17 + j * 3);
	memset(f, 0xff, 6);
	memcpy(f + 6, (const uint8_t[6]){ 0x02, 0x00, 0x5e, 0x10, 0x20, (uint8_t)i }, 6);
	f[12] = ETH_TEST >> 8;
	f[13] = ETH_TEST & 0xff;
	return len;
}

static void t_vdpa_sim_net(void)
{
	struct t_baseline base = t_baseline();
	const char *node = getenv("LIBVHOST_VDPA_NET");
	struct vh_device *dev = NULL;
	struct vh_net_opts o;
	struct vh_net *net = NULL;
	static uint8_t tx[16][1514], rx[16][1600];
	struct vh_net_tx out[16];
	struct vh_net_rx in[16];
	unsigned got = 0, rounds = 4;
	int e;

	printf("vdpa_sim_net (%s)\n", node ? node : "(none)");
	if (!node) {
		T_FAIL("no vdpa_sim_net node");
		return;
	}
	CHECK_EQ(vh_vdpa_open(&dev, node, &logger), 0);
	if (!dev)
		return;
	memset(&o, 0, sizeof(o));
	o.log = logger;
	o.kernel_backend_fd = -1;
	o.timeout_ms = 20000;
	e = vh_net_open(&net, dev, &o);
	CHECK_EQ(e, 0);
	if (e) {
		vh_device_close(dev);
		return;
	}
	print_features("vdpa_sim_net", vh_net_driver(net), vh_net_feature_name);
	CHECK_EQ(vh_net_hdr_len(net), 12);
	for (unsigned round = 0; round < rounds; round++) {
		unsigned n = 16, back = 0;

		for (unsigned i = 0; i < n; i++)
			out[i] = (struct vh_net_tx){ tx[i], (uint32_t)make_frame(tx[i], round * n + i),
						     NULL };
		CHECK_EQ(vh_net_send(net, 0, out, n), (int)n);
		while (back < n) {
			for (unsigned i = 0; i < n; i++)
				in[i] = (struct vh_net_rx){ .buf = rx[i], .cap = sizeof(rx[i]) };
			e = vh_net_recv(net, 0, in, n - back, -1);
			if (e <= 0) {
				T_FAIL("round %u: %u of %u frames came back (%d)", round, back, n, e);
				break;
			}
			for (int k = 0; k < e; k++, back++) {
				CHECK_EQ(in[k].len, out[back].len);
				if (in[k].len == out[back].len &&
				    memcmp(in[k].buf, out[back].data, out[back].len))
					T_FAIL("frame %u differs", round * n + back);
			}
		}
		got += back;
		CHECK_EQ(vh_net_tx_wait(net, 0, -1), 0);
	}
	printf("  %u of %u frames looped back byte for byte; kicks %" PRIu64 ", calls %" PRIu64
	       "\n", got, rounds * 16, vh_driver_kicks(vh_net_driver(net)),
	       vh_driver_calls(vh_net_driver(net)));
	CHECK_EQ(got, rounds * 16);
	CHECK_EQ(vh_driver_error(vh_net_driver(net)), 0);
	vh_net_close(net);
	vh_device_close(dev);
	CHECK_BASELINE(base);
}

static int tap_open(const char *name, int *ifindex)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), s;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI; /* plain frames: vhost adds and strips the header */
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		goto fail;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		goto fail;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags |= IFF_UP, 0) ||
	    ioctl(s, SIOCSIFFLAGS, &ifr) < 0 || ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
		close(s);
		goto fail;
	}
	*ifindex = ifr.ifr_ifindex;
	close(s);
	return fd;
fail:
	s = -errno;
	close(fd);
	return s;
}

/* Waits for a frame of our ethertype on the packet socket; returns its length or -1. */
static ssize_t pkt_recv(int ps, uint8_t *buf, size_t cap, int timeout_ms)
{
	int64_t end = t_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { ps, POLLIN, 0 };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		int left = (int)(end - t_now_ms());
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		n = recvfrom(ps, buf, cap, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n >= 14 && from.sll_pkttype != PACKET_OUTGOING && buf[12] == (ETH_TEST >> 8) &&
		    buf[13] == (ETH_TEST & 0xff))
			return n;
	}
}

static void t_vhost_net_tap(void)
{
	struct t_baseline base;
	struct vh_device *dev = NULL;
	struct vh_net_opts o;
	struct vh_net *net = NULL;
	struct sockaddr_ll ll;
	uint8_t f[1514], got[2048];
	int tap, ps, ifindex = 0, e, ok_out = 0, ok_in = 0;
	const unsigned n = 12;

	printf("vhost-net with a tap backend\n");
	tap = tap_open("vhdrv0", &ifindex);
	CHECK(tap >= 0);
	if (tap < 0)
		return;
	/* No IPv6 chatter on the tap (router solicitations would reach our RX ring too). */
	{
		int fd = open("/proc/sys/net/ipv6/conf/vhdrv0/disable_ipv6", O_WRONLY | O_CLOEXEC);

		if (fd >= 0) {
			if (write(fd, "1", 1) < 0)
				printf("  note: could not disable IPv6 on the tap\n");
			close(fd);
		}
	}
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	CHECK(ps >= 0);
	memset(&ll, 0, sizeof(ll));
	ll.sll_family = AF_PACKET;
	ll.sll_protocol = htons(ETH_P_ALL);
	ll.sll_ifindex = ifindex;
	CHECK_EQ(bind(ps, (struct sockaddr *)&ll, sizeof(ll)), 0);
	base = t_baseline();

	CHECK_EQ(vh_kernel_open(&dev, "/dev/vhost-net", &logger), 0);
	if (!dev)
		goto out;
	memset(&o, 0, sizeof(o));
	o.log = logger;
	o.kernel_backend_fd = tap;
	o.timeout_ms = 20000;
	e = vh_net_open(&net, dev, &o);
	CHECK_EQ(e, 0);
	if (e) {
		vh_device_close(dev);
		goto out;
	}
	print_features("vhost-net", vh_net_driver(net), vh_net_feature_name);
	/* ours -> tap */
	for (unsigned i = 0; i < n; i++) {
		size_t len = make_frame(f, i);
		struct vh_net_tx t = { f, (uint32_t)len, NULL };
		ssize_t r;

		CHECK_EQ(vh_net_send(net, 0, &t, 1), 1);
		r = pkt_recv(ps, got, sizeof(got), 5000);
		if (r == (ssize_t)len && memcmp(got, f, len) == 0)
			ok_out++;
		else
			T_FAIL("frame %u sent through vhost-net: tap saw %zd bytes", i, r);
	}
	CHECK_EQ(vh_net_tx_wait(net, 0, -1), 0);
	/* tap -> ours */
	for (unsigned i = 0; i < n; i++) {
		size_t len = make_frame(f, 100 + i);
		struct vh_net_rx rx = { .buf = got, .cap = sizeof(got) };
		int64_t end = t_now_ms() + 5000;

		ll.sll_halen = 6;
		memset(ll.sll_addr, 0xff, 6);
		CHECK_EQ(sendto(ps, f, len, 0, (struct sockaddr *)&ll, sizeof(ll)), (ssize_t)len);
		for (;;) { /* skip frames that are not ours (none expected) */
			e = vh_net_recv(net, 0, &rx, 1, (int)(end - t_now_ms()));
			if (e <= 0 || (rx.len >= 14 && got[12] == (ETH_TEST >> 8)))
				break;
			rx = (struct vh_net_rx){ .buf = got, .cap = sizeof(got) };
		}
		if (e == 1 && rx.len == len && memcmp(got, f, len) == 0)
			ok_in++;
		else
			T_FAIL("frame %u written to the tap: received %d (len %u)", i, e, rx.len);
	}
	printf("  %d/%u frames out through vhost-net to the tap, %d/%u frames in from the tap\n",
	       ok_out, n, ok_in, n);
	CHECK_EQ(vh_driver_error(vh_net_driver(net)), 0);
	vh_net_close(net);
	vh_device_close(dev);
	CHECK_BASELINE(base);
out:
	close(ps);
	close(tap);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		{ "vdpa_sim_blk", t_vdpa_sim_blk },
		{ "vduse_blk", t_vduse_blk },
		{ "vdpa_sim_net", t_vdpa_sim_net },
		{ "vhost_net_tap", t_vhost_net_tap },
	};

	return t_run(tests, ARRAY_SIZE(tests), argc, argv);
}
