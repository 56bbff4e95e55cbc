/* SPDX-License-Identifier: MIT */
/*
 * The driver-side net client against DPDK testpmd's net_vhost PMD (DPDK's own vhost-user
 * back-end), forwarding in io mode: every frame testpmd receives from our TX ring it sends back
 * into our RX ring unchanged. Frames of many sizes go out in bursts; each must come back, in
 * order, byte for byte. Cases: split and packed rings, mergeable RX buffers on (with small RX
 * buffers, so frames span several) and off, IN_ORDER off, and two queue pairs.
 *
 * testpmd is the one busy-polling process: its forwarding lcore is pinned to CPU 0 and this
 * process to CPU 1, and this process never spins (it sleeps on the call eventfds).
 *
 * With LIBVHOST_NET_SERVER=PATH the peer is the library's own vhost-user-net server at PATH in
 * its echo mode (--echo: every TX frame comes back on RX of the same pair) instead.
 *   usage: [LIBVHOST_NET_SERVER=path/to/vhost-user-net] peer_net_testpmd [TEST-NAME-FILTER]
 */
#include <sched.h>

#include "peer.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BURST 32u
#define ROUNDS 12u
#define MAXF 1514u

static char sock[256];

static size_t frame_len(unsigned i)
{
	static const size_t sizes[] = { 60, 64, 128, 333, 512, 777, 1000, 1200, 1499, 1514 };

	return sizes[i % ARRAY_SIZE(sizes)];
}

static void make_frame(uint8_t *f, size_t len, unsigned pair, unsigned seq)
{
	p_fill(f, len, 0x9e3779b97f4a7c15ull * (seq + 1) + pair);
	memset(f, 0xff, 6);                                  /* broadcast */
	memcpy(f + 6, (const uint8_t[6]){ 0x02, 0, 0, 0, 0, (uint8_t)pair }, 6);
	f[12] = 0x88;                                         /* local experimental ethertype */
	f[13] = 0xb5;
	f[14] = (uint8_t)(seq >> 8);
	f[15] = (uint8_t)seq;
}

struct netcase {
	const char *name;
	uint64_t drop;      /* features withheld */
	uint64_t need;      /* features that must be negotiated */
	uint32_t rx_buf;
	unsigned pairs;
};

/* Waits until testpmd forwards: DPDK starts forwarding once every ring of the device is ready,
 * and drops what it dequeues before that (io forwarding has nowhere to put it). One probe frame
 * per pair per try, until one comes back on each pair; then whatever else comes back is
 * drained, so the counted rounds start from empty rings. 0, or -1 after about 10 s. */
static int wait_forwarding(struct vh_net *net)
{
	static uint8_t probe[64], back[MAXF + 64];

	for (unsigned p = 0; p < vh_net_queue_pairs(net); p++) {
		int ok = 0;

		make_frame(probe, sizeof(probe), p, 0xffff);
		for (unsigned t = 0; t < 50 && !ok; t++) {
			struct vh_net_tx out = { probe, sizeof(probe), NULL };
			struct vh_net_rx in = { .buf = back, .cap = sizeof(back) };

			if (vh_net_send(net, p, &out, 1) < 0)
				return -1;
			ok = vh_net_recv(net, p, &in, 1, 200) > 0;
		}
		if (!ok)
			return -1;
		for (;;) {
			struct vh_net_rx in = { .buf = back, .cap = sizeof(back) };

			if (vh_net_recv(net, p, &in, 1, 100) <= 0)
				break;
		}
		if (vh_net_tx_wait(net, p, 5000) < 0)
			return -1;
	}
	return 0;
}

/* Sends ROUNDS bursts on each pair and checks every frame comes back. Returns frames seen. */
static unsigned run_traffic(struct vh_net *net, const struct netcase *c)
{
	static uint8_t tx[BURST][MAXF], rx[BURST][MAXF + 64];
	struct vh_net_tx out[BURST];
	struct vh_net_rx in[BURST];
	unsigned seen = 0, multi = 0, seq = 0;

	for (unsigned round = 0; round < ROUNDS; round++) {
		for (unsigned p = 0; p < vh_net_queue_pairs(net); p++) {
			unsigned sent = 0, got = 0;

			for (unsigned i = 0; i < BURST; i++) {
				size_t len = frame_len(seq + i);

				make_frame(tx[i], len, p, seq + i);
				out[i] = (struct vh_net_tx){ tx[i], (uint32_t)len, NULL };
			}
			while (sent < BURST) {
				int r = vh_net_send(net, p, out + sent, BURST - sent);

				if (r < 0) {
					CHECK_EQ_M(r, 0, "%s: send", c->name);
					return seen;
				}
				sent += (unsigned)r;
				if (r == 0 && vh_net_tx_wait(net, p, 5000) < 0) {
					T_FAIL("%s: TX ring never drained", c->name);
					return seen;
				}
			}
			while (got < BURST) {
				int r;

				for (unsigned i = 0; i < BURST; i++)
					in[i] = (struct vh_net_rx){ .buf = rx[i], .cap = sizeof(rx[i]) };
				r = vh_net_recv(net, p, in, BURST - got, 5000);
				if (r <= 0) {
					T_FAIL("%s: pair %u round %u: %u of %u frames came back (%d)",
					       c->name, p, round, got, BURST, r);
					return seen;
				}
				for (int k = 0; k < r; k++, got++) {
					size_t len = frame_len(seq + got);

					CHECK_EQ_M(in[k].len, len, "%s: frame %u length", c->name,
						   seq + got);
					CHECK_EQ(in[k].flags, 0);
					if (in[k].len == len && memcmp(in[k].buf, tx[got], len) != 0)
						T_FAIL("%s: frame %u differs", c->name, seq + got);
					if (in[k].nbufs > 1)
						multi++;
					seen++;
				}
			}
			CHECK_EQ(vh_net_tx_wait(net, p, 5000), 0);
		}
		seq += BURST;
	}
	printf("  %s: %u frames back, %u spanned several RX buffers, kicks %" PRIu64
	       ", calls %" PRIu64 "\n",
	       c->name, seen, multi, vh_driver_kicks(vh_net_driver(net)),
	       vh_driver_calls(vh_net_driver(net)));
	if (c->rx_buf && c->rx_buf < 1024 && !(c->drop & VH_BIT(VH_NET_F_MRG_RXBUF)))
		CHECK(multi > 0);
	return seen;
}

static void run_case(const struct netcase *c)
{
	struct t_baseline base = t_baseline();
	struct vh_frontend_config fc;
	struct vh_device *dev = NULL;
	struct vh_net_opts o;
	struct vh_net *net = NULL;
	uint64_t f;
	int r;

	memset(&fc, 0, sizeof(fc));
	fc.timeout_ms = 5000;
	memset(&o, 0, sizeof(o));
	o.features = VH_NET_DEFAULT_FEATURES & ~c->drop;
	o.queue_pairs = c->pairs;
	o.rx_buf_size = c->rx_buf;
	o.kernel_backend_fd = -1;
	o.timeout_ms = 5000;
	if (getenv("LIBVHOST_TEST_VERBOSE")) {
		fc.log.fn = o.log.fn = p_log_stderr;
		fc.log.max_level = o.log.max_level = VH_LOG_DEBUG;
	}
	r = vh_frontend_device_open(&dev, sock, &fc, VH_DRIVER_USER_PROTOCOL_FEATURES);
	CHECK_EQ_M(r, 0, "%s: connect", c->name);
	if (r)
		return;
	r = vh_net_open(&net, dev, &o);
	CHECK_EQ_M(r, 0, "%s: open", c->name);
	if (r == 0) {
		f = vh_driver_features(vh_net_driver(net));
		printf("%s: negotiated 0x%" PRIx64 " (offered 0x%" PRIx64 "), header %zu\n", c->name,
		       f, vh_driver_features_offered(vh_net_driver(net)), vh_net_hdr_len(net));
		CHECK_EQ_M(f & c->drop, 0, "%s: withheld features", c->name);
		CHECK_EQ_M(f & c->need, c->need, "%s: features", c->name);
		CHECK_EQ(vh_net_hdr_len(net), 12);
		CHECK_EQ(vh_net_queue_pairs(net), c->pairs ? c->pairs : 1);
		CHECK_EQ_M(wait_forwarding(net), 0, "%s: testpmd never forwarded a probe frame",
			   c->name);
		CHECK_EQ(run_traffic(net, c), ROUNDS * BURST * (c->pairs ? c->pairs : 1));
		CHECK_EQ(vh_driver_error(vh_net_driver(net)), 0);
		vh_net_close(net);
	}
	vh_device_close(dev);
	CHECK_BASELINE(base);
}

static void t_split_mrg(void)
{
	struct netcase c = { "split, mergeable RX buffers of 512", VH_VQ_F_RING_PACKED,
			     VH_BIT(VH_NET_F_MRG_RXBUF), 512, 1 };
	run_case(&c);
}

static void t_split_nomrg(void)
{
	struct netcase c = { "split, no mergeable RX buffers", VH_VQ_F_RING_PACKED |
			     VH_BIT(VH_NET_F_MRG_RXBUF), 0, 0, 1 };
	run_case(&c);
}

static void t_packed_mrg(void)
{
	struct netcase c = { "packed, mergeable RX buffers of 384", 0,
			     VH_VQ_F_RING_PACKED | VH_BIT(VH_NET_F_MRG_RXBUF), 384, 1 };
	run_case(&c);
}

static void t_packed_nomrg(void)
{
	struct netcase c = { "packed, no mergeable RX buffers", VH_BIT(VH_NET_F_MRG_RXBUF),
			     VH_VQ_F_RING_PACKED, 0, 1 };
	run_case(&c);
}

static void t_no_in_order(void)
{
	struct netcase c = { "split and packed without IN_ORDER", VH_VQ_F_IN_ORDER, 0, 1024, 1 };
	run_case(&c);
	c.drop |= VH_VQ_F_RING_PACKED;
	run_case(&c);
}

static void t_two_pairs(void)
{
	struct netcase c = { "two queue pairs, packed", 0, VH_VQ_F_RING_PACKED, 0, 2 };
	run_case(&c);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		{ "split_mrg", t_split_mrg },
		{ "split_nomrg", t_split_nomrg },
		{ "packed_mrg", t_packed_mrg },
		{ "packed_nomrg", t_packed_nomrg },
		{ "no_in_order", t_no_in_order },
		{ "two_pairs", t_two_pairs },
	};
	const char *dir = p_tmpdir();
	const char *ours = getenv("LIBVHOST_NET_SERVER");
	const char *prog;
	char log[256], fifo[256], prefix[64], vdev[512], rundir[128];
	struct peer tp = { 0 };
	cpu_set_t set;
	int rc, cmd = -1;

	signal(SIGPIPE, SIG_IGN);
	if (ours && access(ours, X_OK) != 0) {
		fprintf(stderr, "FAIL: LIBVHOST_NET_SERVER=%s is not an executable\n", ours);
		return 1;
	}
	prog = ours ? ours : p_need("dpdk-testpmd");
	snprintf(sock, sizeof(sock), "%s/net.sock", dir);
	snprintf(log, sizeof(log), "%s/testpmd.log", dir);
	snprintf(fifo, sizeof(fifo), "%s/stdin", dir);
	snprintf(prefix, sizeof(prefix), "--file-prefix=vhdrv%d", (int)getpid());
	snprintf(rundir, sizeof(rundir), "/var/run/dpdk/vhdrv%d", (int)getpid());
	snprintf(vdev, sizeof(vdev), "net_vhost0,iface=%s,queues=2", sock);
	if (mkfifo(fifo, 0600) < 0) {
		perror("mkfifo");
		return 1;
	}
	/* Main lcore 0 sleeps reading stdin; the forwarding lcore 1 polls, pinned to CPU 0. */
	char *argv_tp[] = { (char *)prog, "--no-pci", "--no-huge", "-m", "512", prefix,
			    "--lcores", "0@0,1@0", "--vdev", vdev, "--log-level", "lib.eal:error",
			    "--", "--nb-cores=1", "--forward-mode=io", "--auto-start", "--rxq=2",
			    "--txq=2", "--total-num-mbufs=8192", NULL };
	char sockopt[300];

	snprintf(sockopt, sizeof(sockopt), "--socket-path=%s", sock);
	char *argv_ours[] = { (char *)prog, sockopt, "--echo", "--queue-pairs=2", NULL };

	printf("back-end: %s\n", prog);
	if (p_spawn(&tp, ours ? argv_ours : argv_tp, log, fifo, ours ? -1 : 0) < 0) {
		perror("spawn");
		return 1;
	}
	cmd = open(fifo, O_WRONLY | O_CLOEXEC); /* meets the child's open of its stdin */
	CPU_ZERO(&set);
	CPU_SET(1, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		perror("note: cannot pin to CPU 1");
	if (cmd < 0 || p_wait_socket(&tp, sock, 20000) < 0) {
		p_dump_log(&tp, 60);
		fprintf(stderr, "FAIL: %s did not listen on %s\n", prog, sock);
		p_stop(&tp);
		return 1;
	}
	rc = t_run(tests, ARRAY_SIZE(tests), argc, argv);
	if (!p_alive(&tp)) {
		fprintf(stderr, "FAIL: the back-end died during the test\n");
		rc = 1;
	}
	/* "Press enter to exit": a clean shutdown removes DPDK's run-time files. */
	if (write(cmd, "\n", 1) != 1)
		perror("note: testpmd stdin");
	close(cmd);
	for (int i = 0; i < 100 && p_alive(&tp); i++)
		t_sleep_ms(50);
	if (rc)
		p_dump_log(&tp, 80);
	p_stop(&tp);
	{
		char rm[192];

		snprintf(rm, sizeof(rm), "rm -rf '%s'", rundir);
		if (system(rm) != 0)
			fprintf(stderr, "note: could not remove %s\n", rundir);
	}
	return rc;
}
