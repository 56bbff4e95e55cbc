/* SPDX-License-Identifier: MIT */
/*
 * Both ends of the QEMU test of vhost-user-net (qemu-tap.sh): one static program, run in the
 * guest on eth0 and on the host on the tap inside a private network namespace.
 *
 *   netcheck raw-guest IFACE COUNT [MAX]  send COUNT frames, expect each one's reply
 *   netcheck raw-host IFACE COUNT [MAX]   check COUNT frames from the guest, reply to each
 *   netcheck tcp-host ADDR PORT BYTES   accept one connection: read BYTES, write BYTES back
 *   netcheck tcp-guest ADDR PORT BYTES  connect: write BYTES, read BYTES
 *
 * Raw frames use ethertype 0x88b5 (local experimental). Frame i from the guest is broadcast,
 * 60..MAX bytes long (default 1514; the length depends on i), carries "VHNA", i, its length and bytes
 * derived from i; the host checks every byte and answers with frame "VHNB" i to the guest's
 * MAC, of another length and other bytes, which the guest checks byte for byte. Each number
 * must come exactly once; the order may change (several queue pairs). TCP streams
 * carry a position-dependent pattern, checked byte for byte (this crosses the checksum and
 * segmentation offloads when the device offers them). Exit 0 only if everything matched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>

#define ETHERTYPE 0x88b5
#define MINLEN 60u
#define MAXLEN 1514u
#define WINDOW 8u

static unsigned maxlen = MAXLEN;    /* longest frame sent (MTU + 14) */

static const uint8_t host_mac[6] = { 0x02, 0x76, 0x68, 0x6e, 0x00, 0x01 };

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned frame_len(char kind, uint32_t seq)
{
	unsigned span = maxlen - MINLEN + 1;

	return MINLEN + (kind == 'A' ? (seq * 397u) % span : (seq * 211u + 100u) % span);
}

static uint8_t pattern(char kind, uint32_t seq, unsigned i)
{
	uint32_t x = seq * 2654435761u + i * 40503u + (kind == 'A' ? 17u : 91u);

	x ^= x >> 13;
	x *= 0x5bd1e995u;
	return (uint8_t)(x >> 24);
}

/* Builds frame `kind` number seq from src to dst; returns its length. */
static unsigned build(uint8_t *f, char kind, uint32_t seq, const uint8_t dst[6],
		      const uint8_t src[6])
{
	unsigned len = frame_len(kind, seq);

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETHERTYPE >> 8;
	f[13] = ETHERTYPE & 0xff;
	memcpy(f + 14, kind == 'A' ? "VHNA" : "VHNB", 4);
	memcpy(f + 18, &seq, 4);
	memcpy(f + 22, &len, 4);
	for (unsigned i = 26; i < len; i++)
		f[i] = pattern(kind, seq, i);
	return len;
}

static int open_raw(const char *ifname, int *ifindex, uint8_t mac[6])
{
	struct sockaddr_ll sll;
	struct ifreq ifr;
	int s;

	s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE));
	if (s < 0) {
		perror("netcheck: socket(AF_PACKET)");
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
		fprintf(stderr, "netcheck: no interface %s: %s\n", ifname, strerror(errno));
		close(s);
		return -1;
	}
	*ifindex = ifr.ifr_ifindex;
	if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) {
		perror("netcheck: SIOCGIFHWADDR");
		close(s);
		return -1;
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETHERTYPE);
	sll.sll_ifindex = *ifindex;
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		perror("netcheck: bind");
		close(s);
		return -1;
	}
	return s;
}

static int send_frame(int s, int ifindex, const uint8_t *f, unsigned len)
{
	struct sockaddr_ll sll;

	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = ifindex;
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, f, 6);
	if (sendto(s, f, len, 0, (struct sockaddr *)&sll, sizeof(sll)) != (ssize_t)len) {
		perror("netcheck: sendto");
		return -1;
	}
	return 0;
}

/* Next incoming frame (own transmissions skipped): its length, 0 on timeout, -1 on error. */
static int recv_frame(int s, uint8_t *buf, unsigned cap, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		int64_t left = end - now_ms();
		ssize_t n;

		if (left <= 0)
			return 0;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = recvfrom(s, buf, cap, MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("netcheck: recvfrom");
			return -1;
		}
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		return (int)n;
	}
}

/* 0 if buf[0..n) is exactly frame kind/seq from src to dst, else -1 (reported). */
static int check(const uint8_t *buf, int n, char kind, uint32_t seq, const uint8_t dst[6],
		 const uint8_t src[6])
{
	static uint8_t want[MAXLEN];
	unsigned len = build(want, kind, seq, dst, src);
	unsigned i = 0;

	if (n == (int)len && !memcmp(buf, want, len))
		return 0;
	while (i < len && (int)i < n && buf[i] == want[i])
		i++;
	fprintf(stderr, "netcheck: frame %c%u: %d bytes, %u expected, first difference at %u\n",
		kind, seq, n, len, i);
	return -1;
}

/*
 * The sequence number a frame of `kind` claims, if it is one of ours (checked in full by
 * check() afterwards), else -1. With several queue pairs frames may legitimately pass each
 * other on different queues, so each side accepts them in any order, each number once.
 */
static long frame_seq(const uint8_t *buf, int n, char kind)
{
	uint32_t seq;

	if (n < 26 || memcmp(buf + 14, kind == 'A' ? "VHNA" : "VHNB", 4))
		return -1;
	memcpy(&seq, buf + 18, 4);
	return seq;
}

static int raw_guest(const char *ifname, uint32_t count)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t mac[6], f[MAXLEN], buf[65536];
	uint32_t sent = 0, got = 0, base = 0;
	int ifindex, s = open_raw(ifname, &ifindex, mac);
	uint8_t *seen = calloc(count ? count : 1, 1);
	int64_t t0 = now_ms();

	if (s < 0 || !seen)
		return 1;
	while (got < count) {
		long seq;
		int n;

		while (sent < count && sent - base < WINDOW) {
			unsigned len = build(f, 'A', sent, bcast, mac);

			if (send_frame(s, ifindex, f, len) < 0)
				return 1;
			sent++;
		}
		n = recv_frame(s, buf, sizeof(buf), 5000);
		if (n <= 0) {
			fprintf(stderr, "netcheck: no reply to frame %u within 5 s (%u of %u back)\n",
				base, got, count);
			return 1;
		}
		seq = frame_seq(buf, n, 'B');
		if (seq < (long)base || seq >= (long)sent || seen[seq]) {
			fprintf(stderr, "netcheck: unexpected reply %ld (waiting for %u..%u)\n", seq,
				base, sent - 1);
			return 1;
		}
		if (check(buf, n, 'B', (uint32_t)seq, mac, host_mac) < 0)
			return 1;
		seen[seq] = 1;
		got++;
		while (base < sent && seen[base])
			base++;
	}
	printf("netcheck: %u frames (%u..%u bytes) out and %u back, every byte as sent, %.1f s\n",
	       count, MINLEN, maxlen, got, (double)(now_ms() - t0) / 1000.0);
	free(seen);
	close(s);
	return 0;
}

static int raw_host(const char *ifname, uint32_t count)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t mac[6], guest[6] = { 0 }, f[MAXLEN], buf[65536];
	int ifindex, s = open_raw(ifname, &ifindex, mac);
	uint8_t *seen = calloc(count ? count : 1, 1);
	uint32_t got;

	if (s < 0 || !seen)
		return 1;
	for (got = 0; got < count; got++) {
		/* The first frame may wait for the guest to boot. */
		int n = recv_frame(s, buf, sizeof(buf), got ? 10000 : 120000);
		long seq = frame_seq(buf, n, 'A');
		unsigned len;

		if (n <= 0) {
			fprintf(stderr, "netcheck: %u of %u frames came from the guest\n", got, count);
			return 1;
		}
		if (seq < 0 || seq >= (long)count || seen[seq]) {
			fprintf(stderr, "netcheck: unexpected frame %ld from the guest\n", seq);
			return 1;
		}
		if (n >= 12)
			memcpy(guest, buf + 6, 6);
		if (check(buf, n, 'A', (uint32_t)seq, bcast, guest) < 0)
			return 1;
		seen[seq] = 1;
		len = build(f, 'B', (uint32_t)seq, guest, host_mac);
		if (send_frame(s, ifindex, f, len) < 0)
			return 1;
	}
	printf("netcheck: %u frames from the guest checked and answered\n", count);
	free(seen);
	close(s);
	return 0;
}

static uint8_t stream_byte(uint64_t off, unsigned key)
{
	uint32_t x = (uint32_t)off * 2246822519u + (uint32_t)(off >> 32) + key * 374761393u;

	x ^= x >> 15;
	x *= 0x2c1b3c6du;
	return (uint8_t)(x >> 24);
}

/* Writes or reads-and-checks `bytes` of stream `key` on fd with a 60 s inactivity limit. */
static int stream(int fd, uint64_t bytes, unsigned key, int writing)
{
	uint8_t buf[65536];
	uint64_t off = 0;

	while (off < bytes) {
		struct pollfd p = { .fd = fd, .events = writing ? POLLOUT : POLLIN };
		size_t chunk = bytes - off < sizeof(buf) ? (size_t)(bytes - off) : sizeof(buf);
		ssize_t n;

		if (poll(&p, 1, 60000) <= 0) {
			fprintf(stderr, "netcheck: stream stalled at byte %llu of %llu\n",
				(unsigned long long)off, (unsigned long long)bytes);
			return -1;
		}
		if (writing) {
			for (size_t i = 0; i < chunk; i++)
				buf[i] = stream_byte(off + i, key);
			n = write(fd, buf, chunk);
		} else {
			n = read(fd, buf, chunk);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "netcheck: stream ended at byte %llu of %llu: %s\n",
				(unsigned long long)off, (unsigned long long)bytes,
				n < 0 ? strerror(errno) : "closed");
			return -1;
		}
		for (ssize_t i = 0; !writing && i < n; i++) {
			if (buf[i] != stream_byte(off + (uint64_t)i, key)) {
				fprintf(stderr, "netcheck: stream byte %llu differs\n",
					(unsigned long long)(off + (uint64_t)i));
				return -1;
			}
		}
		off += (uint64_t)n;
	}
	return 0;
}

static int tcp(const char *addr, const char *port, uint64_t bytes, int host)
{
	struct sockaddr_in sa;
	int64_t t0 = now_ms();
	int s, c = -1, one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(port));
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "netcheck: bad address %s\n", addr);
		return 1;
	}
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 1;
	if (host) {
		struct pollfd p = { .fd = s, .events = POLLIN };

		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0) {
			perror("netcheck: bind/listen");
			return 1;
		}
		if (poll(&p, 1, 180000) <= 0) {
			fprintf(stderr, "netcheck: no connection from the guest\n");
			return 1;
		}
		c = accept(s, NULL, NULL);
		if (c < 0) {
			perror("netcheck: accept");
			return 1;
		}
		if (stream(c, bytes, 1, 0) < 0 || stream(c, bytes, 2, 1) < 0)
			return 1;
		shutdown(c, SHUT_WR);
		close(c);
	} else {
		int tries = 0;

		while (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			if (++tries > 50) {
				perror("netcheck: connect");
				return 1;
			}
			close(s);
			usleep(100000);
			s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (s < 0)
				return 1;
		}
		if (stream(s, bytes, 1, 1) < 0 || stream(s, bytes, 2, 0) < 0)
			return 1;
		printf("netcheck: TCP %llu bytes each way, every byte as sent, %.1f s\n",
		       (unsigned long long)bytes, (double)(now_ms() - t0) / 1000.0);
	}
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strncmp(argv[1], "raw-", 4)) {
		maxlen = (unsigned)strtoul(argv[4], NULL, 0);
		if (maxlen < MINLEN || maxlen > MAXLEN) {
			fprintf(stderr, "netcheck: MAX must be %u..%u\n", MINLEN, MAXLEN);
			return 2;
		}
		argc = 4;
	}
	if (argc == 4 && !strcmp(argv[1], "raw-guest"))
		return raw_guest(argv[2], (uint32_t)strtoul(argv[3], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "raw-host"))
		return raw_host(argv[2], (uint32_t)strtoul(argv[3], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "tcp-host"))
		return tcp(argv[2], argv[3], strtoull(argv[4], NULL, 0), 1);
	if (argc == 5 && !strcmp(argv[1], "tcp-guest"))
		return tcp(argv[2], argv[3], strtoull(argv[4], NULL, 0), 0);
	fprintf(stderr, "usage: netcheck raw-guest|raw-host IFACE COUNT [MAX]\n"
			"       netcheck tcp-host|tcp-guest ADDR PORT BYTES\n");
	return 2;
}
