/* SPDX-License-Identifier: MIT */
/*
 * vhost-user-net's device (tools/net_device.c) in tap mode, in-process, in a private network
 * namespace of its own (unshare(CLONE_NEWNET): needs root; without it the test fails). A
 * hand-made driver (vh_driver) on one side, an AF_PACKET socket on the tap on the other:
 *
 *  - tx_to_tap: TX frames of 60..1514 bytes reach the tap, every byte as sent;
 *  - rx_waits_without_buffers: frames sent into the tap while the driver offers no RX buffer
 *    wait in the tap and the device does not spin (process CPU time over 300 ms); once buffers
 *    are posted they all arrive, in order, byte for byte;
 *  - tx_csum_offload: with CSUM negotiated a NEEDS_CSUM frame reaches the tap as a
 *    checksum-partial packet (TP_STATUS_CSUMNOTREADY), bytes unchanged: the header is passed;
 *  - mtu_and_rarp: NET_SET_MTU sets the tap's MTU (and a bad one is refused, MTU unchanged);
 *    SEND_RARP puts a RARP broadcast for the MAC on the tap.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "nettest.h"

#define TAP "vhntest0"
#define ETHERTYPE_TEST 0x88b5

static int ctl_ioctl(unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (s < 0)
		return -errno;
	r = ioctl(s, req, ifr);
	r = r < 0 ? -errno : 0;
	close(s);
	return r;
}

static int tap_mtu(void)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP);
	return ctl_ioctl(SIOCGIFMTU, &ifr) < 0 ? -1 : ifr.ifr_mtu;
}

static int tap_up(void)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP);
	if (ctl_ioctl(SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	ifr.ifr_flags |= IFF_UP;
	return ctl_ioctl(SIOCSIFFLAGS, &ifr);
}

/* An AF_PACKET socket on the tap, with PACKET_AUXDATA. */
static int host_sock(int *ifindex)
{
	struct sockaddr_ll sll;
	struct ifreq ifr;
	int s, one = 1;

	s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (s < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP);
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
		close(s);
		return -1;
	}
	*ifindex = ifr.ifr_ifindex;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = *ifindex;
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0 ||
	    setsockopt(s, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* The next frame of `type` the tap received from the device (bounded wait). Returns its
 * length (0 on timeout) and the auxdata status. */
static int host_recv(int s, uint16_t type, uint8_t *buf, size_t cap, uint32_t *status)
{
	int64_t end = t_now_ms() + WAIT_MS;

	while (t_now_ms() < end) {
		union {
			char b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
			struct cmsghdr align;
		} ctl;
		struct sockaddr_ll from;
		struct iovec iov = { buf, cap };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from),
				     .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recvmsg(s, &mh, 0);
		if (n < 14 || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		if (((buf[12] << 8) | buf[13]) != type)
			continue;
		*status = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA)
				*status = ((struct tpacket_auxdata *)(void *)CMSG_DATA(c))->tp_status;
		return (int)n;
	}
	return 0;
}

static int tap_open_dev(struct raw *w, uint64_t extra, uint64_t proto)
{
	struct net_dev_opts o;

	memset(w, 0, sizeof(*w));
	memset(&o, 0, sizeof(o));
	o.mode = NET_MODE_TAP;
	o.tap_name = TAP;
	o.queue_pairs = 1;
	o.log = logger();
	if (srv_start_opts(&w->s, &o))
		return -1;
	CHECK_EQ(tap_up(), 0);
	return raw_connect(w, 0, extra, proto);
}

static size_t test_len(unsigned i)
{
	return 60 + (i * 397u) % (1514 - 60 + 1);
}

static void tx_to_tap(void)
{
	struct t_baseline b = t_baseline();
	struct vh_vq_driver_used u[32];
	uint8_t buf[2048], ref[2048];
	struct raw w;
	int hs = -1, ifindex;

	if (tap_open_dev(&w, 0, VH_DRIVER_USER_PROTOCOL_FEATURES))
		goto out;
	hs = host_sock(&ifindex);
	CHECK(hs >= 0);
	for (unsigned i = 0; i < 20; i++) {
		struct vh_vq_seg seg[2];
		struct vh_vq_driver_req req = { seg, 2, 0, i };
		uint8_t *p;

		/* Header and frame in separate descriptors. */
		seg[0].gpa = piece(&w, 12, &p);
		seg[0].len = 12;
		memset(p, 0, 12);
		seg[1].gpa = piece(&w, test_len(i), &p);
		seg[1].len = (uint32_t)test_len(i);
		fill(p, test_len(i), 1, i);
		CHECK_EQ(vh_driver_submit(w.drv, 1, &req, 1), 1);
	}
	CHECK_EQ(collect(&w, 1, u, 20), 20);
	for (unsigned i = 0; hs >= 0 && i < 20; i++) {
		uint32_t st;
		int n = host_recv(hs, ETHERTYPE_TEST, buf, sizeof(buf), &st);

		fill(ref, test_len(i), 1, i);
		CHECK_EQ_M(n, (int)test_len(i), "frame %u", i);
		if (n == (int)test_len(i) && memcmp(buf, ref, (size_t)n))
			T_FAIL("frame %u: bytes differ on the tap", i);
	}
	CHECK_EQ(stats(&w.s, 0).tx_frames, 20);
	CHECK_EQ(stats(&w.s, 0).tx_errors + stats(&w.s, 0).tx_malformed, 0);
out:
	if (hs >= 0)
		close(hs);
	raw_close(&w);
	CHECK_BASELINE(b);
}

static int64_t cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static void rx_waits_without_buffers(void)
{
	struct t_baseline b = t_baseline();
	struct vh_vq_driver_used u[32];
	uint8_t f[2048];
	struct raw w;
	int hs = -1, ifindex;
	int64_t c0, c1;
	uint8_t *rx;

	if (tap_open_dev(&w, 0, VH_DRIVER_USER_PROTOCOL_FEATURES))
		goto out;
	hs = host_sock(&ifindex);
	CHECK(hs >= 0);
	if (hs < 0)
		goto out;
	/* The host sends 20 frames out of the tap, towards the device; no RX buffer exists. */
	for (unsigned i = 0; i < 20; i++) {
		struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = ifindex,
					   .sll_halen = 6 };

		fill(f, test_len(i), 2, i);
		CHECK_EQ(sendto(hs, f, test_len(i), 0, (struct sockaddr *)&sll, sizeof(sll)),
			 (ssize_t)test_len(i));
	}
	c0 = cpu_ms();
	t_sleep_ms(300);
	c1 = cpu_ms();
	printf("  CPU time while 20 frames waited for RX buffers: %" PRId64 " ms in 300 ms\n",
	       c1 - c0);
	CHECK(c1 - c0 < 100);
	CHECK_EQ(stats(&w.s, 0).rx_frames, 0);
	/* Buffers now: every frame arrives, in order (the kick brings the device back). */
	rx = post_rx(&w, 32, 2048, 100);
	CHECK_EQ(collect(&w, 0, u, 20), 20);
	for (unsigned i = 0; i < 20; i++) {
		const uint8_t *buf = rx + 2048 * (u[i].token - 100);
		struct vh_net_hdr h;

		fill(f, test_len(i), 2, i);
		CHECK_EQ_M(u[i].len, 12 + test_len(i), "frame %u", i);
		memcpy(&h, buf, sizeof(h));
		CHECK_EQ_M(le16toh(h.num_buffers), 1, "frame %u", i);
		CHECK_EQ_M(h.flags, 0, "frame %u", i);
		if (memcmp(buf + 12, f, test_len(i)))
			T_FAIL("frame %u: bytes differ in the RX buffer", i);
	}
	CHECK_EQ(stats(&w.s, 0).rx_frames, 20);
out:
	if (hs >= 0)
		close(hs);
	raw_close(&w);
	CHECK_BASELINE(b);
}

static void tx_csum_offload(void)
{
	struct t_baseline b = t_baseline();
	struct vh_vq_driver_used u[2];
	struct vh_vq_seg seg;
	struct vh_vq_driver_req req = { &seg, 1, 0, 1 };
	struct vh_net_hdr h;
	uint8_t buf[256], *p, *frame;
	uint32_t st = 0;
	struct raw w;
	int hs = -1, ifindex, n;

	if (tap_open_dev(&w, VH_BIT(VH_NET_F_CSUM), VH_DRIVER_USER_PROTOCOL_FEATURES))
		goto out;
	CHECK(vh_driver_features(w.drv) & VH_BIT(VH_NET_F_CSUM));
	hs = host_sock(&ifindex);
	CHECK(hs >= 0);
	/* Ethernet, IPv4 10.0.0.1 -> 10.0.0.2, UDP 1000 -> 2000 with 100 bytes; the UDP checksum
	 * left for the device side to complete (csum_start 34, csum_offset 6). */
	seg.gpa = piece(&w, 12 + 142, &p);
	seg.len = 12 + 142;
	memset(&h, 0, sizeof(h));
	h.flags = 1;
	h.csum_start = htole16(34);
	h.csum_offset = htole16(6);
	memcpy(p, &h, 12);
	frame = p + 12;
	memset(frame, 0, 142);
	memset(frame, 0xff, 6);
	memcpy(frame + 6, (const uint8_t[6]){ 2, 0, 0, 0, 0, 9 }, 6);
	frame[12] = 0x08;
	frame[14] = 0x45;
	frame[17] = 128;                      /* total length 20 + 8 + 100 */
	frame[22] = 64;
	frame[23] = 17;
	memcpy(frame + 26, (const uint8_t[8]){ 10, 0, 0, 1, 10, 0, 0, 2 }, 8);
	{
		uint32_t sum = 0;

		for (unsigned i = 14; i < 34; i += 2)
			sum += (uint32_t)(frame[i] << 8 | frame[i + 1]);
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		frame[24] = (uint8_t)(~sum >> 8);
		frame[25] = (uint8_t)~sum;
	}
	frame[34] = 0x03; frame[35] = 0xe8; frame[36] = 0x07; frame[37] = 0xd0;
	frame[39] = 108;
	frame[40] = 0x12; frame[41] = 0x34;   /* the partial sum a driver would leave */
	for (unsigned i = 42; i < 142; i++)
		frame[i] = (uint8_t)(i * 7);
	CHECK_EQ(vh_driver_submit(w.drv, 1, &req, 1), 1);
	CHECK_EQ(collect(&w, 1, u, 1), 1);
	n = hs >= 0 ? host_recv(hs, 0x0800, buf, sizeof(buf), &st) : 0;
	CHECK_EQ(n, 142);
	if (n == 142 && memcmp(buf, frame, 142))
		T_FAIL("the frame changed on its way to the tap");
	CHECK(st & TP_STATUS_CSUMNOTREADY);
	CHECK_EQ(stats(&w.s, 0).tx_frames, 1);
out:
	if (hs >= 0)
		close(hs);
	raw_close(&w);
	CHECK_BASELINE(b);
}

static void mtu_and_rarp(void)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0xab, 0xcd, 0xef };
	struct t_baseline b = t_baseline();
	uint8_t buf[128];
	uint32_t st;
	struct raw w;
	struct vh_frontend *fe;
	int hs = -1, ifindex, n;

	if (tap_open_dev(&w, 0, VH_DRIVER_USER_PROTOCOL_FEATURES |
			 VH_BIT(VH_USER_PROTOCOL_F_NET_MTU) | VH_BIT(VH_USER_PROTOCOL_F_RARP)))
		goto out;
	fe = vh_device_frontend(w.dev);
	CHECK(fe != NULL);
	if (!fe)
		goto out;
	CHECK_EQ(tap_mtu(), 1500);
	CHECK_EQ(vh_frontend_net_set_mtu(fe, 1400), 0);
	CHECK_EQ(tap_mtu(), 1400);
	CHECK(vh_frontend_net_set_mtu(fe, 20) < 0);
	CHECK_EQ(tap_mtu(), 1400);

	hs = host_sock(&ifindex);
	CHECK(hs >= 0);
	CHECK_EQ(vh_frontend_send_rarp(fe, mac), 0);
	n = hs >= 0 ? host_recv(hs, 0x8035, buf, sizeof(buf), &st) : 0;
	CHECK_EQ(n, 60);
	if (n >= 42) {
		static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

		CHECK(!memcmp(buf, bcast, 6));
		CHECK(!memcmp(buf + 6, mac, 6));
		CHECK_EQ(buf[21], 3);                /* reverse request */
		CHECK(!memcmp(buf + 22, mac, 6));
		CHECK(!memcmp(buf + 32, mac, 6));
	}
out:
	if (hs >= 0)
		close(hs);
	raw_close(&w);
	CHECK_BASELINE(b);
}

static const struct t_test tests[] = {
	T_TEST(tx_to_tap),
	T_TEST(rx_waits_without_buffers),
	T_TEST(tx_csum_offload),
	T_TEST(mtu_and_rarp),
};

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			fprintf(stderr, "note: %s: %s\n", path, strerror(errno));
		close(fd);
	}
}

int main(int argc, char **argv)
{
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "FAIL: unshare(CLONE_NEWNET): %s (the tap tests need root)\n",
			strerror(errno));
		return 1;
	}
	/* No IPv6 chatter (router solicitations) on the tap in this namespace. */
	write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	warm_up();
	return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
