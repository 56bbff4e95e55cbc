/* SPDX-License-Identifier: MIT */
/*
 * vhost-net with a tap, driven through the library: frames placed on the TX ring must appear
 * on the tap byte for byte (seen by a packet socket on the interface); frames sent out of the
 * tap must land in RX buffers byte for byte after the 12-byte virtio-net header; with
 * VHOST_F_LOG_ALL the dirty bitmap must hold exactly the pages the kernel wrote (the RX data
 * and the used ring) and the log eventfd must fire.
 */
#define KG_WITH_RINGS
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <libvhost/kernel.h>
#include <libvhost/uapi_compat.h>
#include "kguest.h"

#define NET_HDR 12
#define ETHERTYPE_TEST 0x88b5
#define F_VERSION_1 (1ULL << 32)
#define F_LOG_ALL (1ULL << 26)
#define MEM_SIZE (4u << 20)
#define PAGE 4096u
#define NTX 8
#define NRX 6

static const uint8_t src_mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0x01 };

static void sysctl_write(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, v, strlen(v)) < 0)
			printf("     %s: %s\n", path, strerror(errno));
		close(fd);
	}
}

/* A tap with a 12-byte vnet header, up, with IPv6 off so the kernel sends nothing itself. */
static int make_tap(char *name, int *ifindex)
{
	struct ifreq ifr;
	int hdr = NET_HDR, s, fd;

	sysctl_write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "kvnet%%d");
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
		goto fail;
	snprintf(name, IFNAMSIZ, "%s", ifr.ifr_name);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		goto fail;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto fail_s;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0 || ioctl(s, SIOCGIFINDEX, &ifr) < 0)
		goto fail_s;
	*ifindex = ifr.ifr_ifindex;
	close(s);
	return fd;
fail_s:
	close(s);
fail:
	{
		int r = -errno;

		close(fd);
		return r;
	}
}

static int packet_socket(int ifindex)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = ifindex };
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));

	if (s < 0)
		return -errno;
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		int r = -errno;

		close(s);
		return r;
	}
	return s;
}

/* Next frame of our test ethertype that came INTO the interface (not our own sends). */
static ssize_t recv_test_frame(int s, uint8_t *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = t_now_ms() + timeout_ms;

	while (t_now_ms() < deadline) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recvfrom(s, buf, cap, 0, (struct sockaddr *)&from, &fl);
		if (n < 14 || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		if (buf[12] == (ETHERTYPE_TEST >> 8) && buf[13] == (ETHERTYPE_TEST & 0xff))
			return n;
	}
	return -ETIMEDOUT;
}

static size_t make_frame(uint8_t *f, unsigned i, unsigned salt)
{
	size_t len = 60 + (size_t)i * 97;

	memset(f, 0xff, 6); /* broadcast */
	memcpy(f + 6, src_mac, 6);
	f[12] = ETHERTYPE_TEST >> 8;
	f[13] = ETHERTYPE_TEST & 0xff;
	for (size_t j = 14; j < len; j++)
		f[j] = (uint8_t)(salt + i * 11 + j * 3);
	return len;
}

static int bit_set(const uint8_t *bm, uint64_t page)
{
	return (bm[page / 8] >> (page % 8)) & 1;
}

int main(void)
{
	struct vh_guest_mem *gm = NULL;
	struct vh_device *d = NULL;
	struct kg_q rx = { .kick = -1, .call = -1 }, tx = { .kick = -1, .call = -1 };
	struct vh_vq_driver_used used[16];
	const struct vh_region *regs;
	uint8_t *bitmap = NULL, frame[2048], got[2048];
	uint8_t *txbuf[NTX], *rxbuf[NRX];
	uint64_t txgpa[NTX], rxgpa[NRX], rx_used_gpa = 0, f = 0, cnt = 0;
	size_t flen[NRX];
	char tapname[IFNAMSIZ] = "";
	unsigned nregs, ok_tx = 0, ok_rx = 0, wrong = 0, missing = 0;
	int tap = -1, ps = -1, ifindex = 0, logfd = -1, n, fds0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fds0 = kg_count_fds();
	tap = make_tap(tapname, &ifindex);
	KG_TRUE(tap >= 0, "tap %s up (%s)", tapname, kg_err(tap));
	ps = packet_socket(ifindex);
	KG_TRUE(ps >= 0, "packet socket on %s (%s)", tapname, kg_err(ps));
	KG_RET(vh_guest_mem_new(&gm, MEM_SIZE, 0), 0);
	KG_RET(vh_kernel_open(&d, "/dev/vhost-net", NULL), 0);
	if (tap < 0 || ps < 0 || !gm || !d)
		goto out;

	KG_RET(vh_device_set_owner(d), 0);
	KG_RET(vh_device_get_features(d, &f), 0);
	KG_RET(vh_device_set_features(d, F_VERSION_1 | F_LOG_ALL), 0);
	regs = vh_guest_mem_regions(gm, &nregs);
	KG_RET(vh_device_set_mem_table(d, regs, nregs), 0);
	/* One bit per 4 KiB page of guest memory, in this process. */
	bitmap = kg_alloc(PAGE);
	logfd = kg_eventfd();
	KG_RET(vh_device_set_log_base(d, (uint64_t)(uintptr_t)bitmap, -1, PAGE, 0), 0);
	KG_RET(vh_device_set_log_fd(d, logfd), 0);
	KG_RET(kg_q_setup(&rx, d, gm, 0, 256, F_VERSION_1, 1u << VHOST_VRING_F_LOG, &rx_used_gpa),
	       0);
	KG_RET(kg_q_setup(&tx, d, gm, 1, 256, F_VERSION_1, 1u << VHOST_VRING_F_LOG, NULL), 0);
	KG_RET(vh_kernel_net_set_backend(d, 0, tap), 0);
	KG_RET(vh_kernel_net_set_backend(d, 1, tap), 0);
	if (!rx.drv || !tx.drv || !bitmap)
		goto out;

	/* TX: header + frame in two segments; the tap side sees the frame alone. */
	for (unsigned i = 0; i < NTX; i++) {
		struct vh_vq_seg s[2];
		struct vh_vq_driver_req r = { s, 2, 0, i };
		size_t len;

		vh_guest_mem_alloc(gm, PAGE, PAGE, &txgpa[i], (void **)&txbuf[i]);
		memset(txbuf[i], 0, NET_HDR);
		len = make_frame(txbuf[i] + NET_HDR, i, 1);
		s[0] = (struct vh_vq_seg){ txgpa[i], NET_HDR };
		s[1] = (struct vh_vq_seg){ txgpa[i] + NET_HDR, (uint32_t)len };
		KG_RET(vh_vq_driver_add_batch(tx.drv, &r, 1), 1);
	}
	kg_q_kick(&tx);
	KG_EQ(kg_q_wait(&tx, used, NTX, 10000), NTX);
	for (unsigned i = 0; i < NTX; i++) {
		size_t len = make_frame(frame, i, 1);
		ssize_t m = recv_test_frame(ps, got, sizeof(got), 5000);

		ok_tx += m == (ssize_t)len && !memcmp(got, frame, len);
	}
	KG_EQ(ok_tx, NTX);

	/* RX with a clean log: post buffers, each in its own page, then send out of the tap. */
	memset(bitmap, 0, PAGE);
	for (unsigned i = 0; i < NRX; i++) {
		struct vh_vq_seg s;
		struct vh_vq_driver_req r = { &s, 0, 1, 100 + i };

		vh_guest_mem_alloc(gm, PAGE, PAGE, &rxgpa[i], (void **)&rxbuf[i]);
		memset(rxbuf[i], 0xee, PAGE);
		s = (struct vh_vq_seg){ rxgpa[i], 2048 };
		KG_RET(vh_vq_driver_add_batch(rx.drv, &r, 1), 1);
	}
	kg_q_kick(&rx);
	for (unsigned i = 0; i < NRX - 2; i++) {
		struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = ifindex,
					  .sll_halen = 6 };

		flen[i] = make_frame(frame, i, 77);
		memset(to.sll_addr, 0xff, 6);
		KG_RET(sendto(ps, frame, flen[i], 0, (struct sockaddr *)&to, sizeof(to)),
		       (long long)flen[i]);
	}
	n = kg_q_wait(&rx, used, NRX - 2, 10000);
	KG_EQ(n, NRX - 2);
	for (int k = 0; k < n; k++) {
		unsigned b = (unsigned)(used[k].token - 100);

		make_frame(frame, (unsigned)k, 77);
		if (b < NRX && used[k].len == NET_HDR + flen[k] &&
		    !memcmp(rxbuf[b] + NET_HDR, frame, flen[k]))
			ok_rx++;
		else
			kg_report(false, "rx %d: buffer %u len %u", k, b, used[k].len);
	}
	KG_EQ(ok_rx, NRX - 2);

	/* Exactly the written pages: the used ring's page and the filled buffers' pages. */
	for (uint64_t p = 0; p < MEM_SIZE / PAGE; p++) {
		int want = p == rx_used_gpa / PAGE;

		for (int k = 0; k < n; k++) {
			unsigned b = (unsigned)(used[k].token - 100);

			if (b < NRX && p >= rxgpa[b] / PAGE &&
			    p <= (rxgpa[b] + used[k].len - 1) / PAGE)
				want = 1;
		}
		if (bit_set(bitmap, p) && !want)
			wrong++;
		if (!bit_set(bitmap, p) && want)
			missing++;
	}
	KG_EQ(wrong, 0);
	KG_EQ(missing, 0);
	if (read(logfd, &cnt, 8) != 8)
		cnt = 0;
	KG_TRUE(cnt > 0, "log eventfd signalled %llu time(s)", (unsigned long long)cnt);

	KG_RET(vh_kernel_net_set_backend(d, 0, -1), 0);
	KG_RET(vh_kernel_net_set_backend(d, 1, -1), 0);
out:
	vh_device_close(d);
	kg_q_free(&rx);
	kg_q_free(&tx);
	vh_guest_mem_free(gm);
	if (bitmap)
		munmap(bitmap, PAGE);
	if (logfd >= 0)
		close(logfd);
	if (ps >= 0)
		close(ps);
	if (tap >= 0)
		close(tap);
	KG_EQ(kg_count_fds(), fds0);
	return kg_done("vhost_net_datapath");
}
