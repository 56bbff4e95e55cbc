/* SPDX-License-Identifier: MIT */
/*
 * vhost-user-net: a virtio-net device served over vhost-user, its frames bridged to a Linux tap
 * interface or echoed back to the driver (for tests and benchmarks). The device itself is in
 * net_device.c; this file is the command line.
 *
 *   vhost-user-net --socket-path=/tmp/net.sock --tap=vhu0
 *   qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=1G,share=on \
 *       -numa node,memdev=mem -chardev socket,id=n0,path=/tmp/net.sock \
 *       -netdev vhost-user,id=net0,chardev=n0 -device virtio-net-pci,netdev=net0
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvhost/driver.h>
#include <libvhost/server.h>
#include <libvhost/wire.h>

#include "common/devserver.h"
#include "net_device.h"

enum {
	OPT_TAP = 1,
	OPT_ECHO,
	OPT_PAIRS,
	OPT_MAC,
	OPT_MTU,
	OPT_NO_OFFLOAD,
	OPT_NO_MRG,
	OPT_NO_PACKED,
	OPT_NO_INDIRECT,
};

static const struct vhd_option net_options[] = {
	{ "tap", 1, "NAME", "bridge frames to tap interface NAME (created if missing)", OPT_TAP },
	{ "echo", 0, NULL, "send every TX frame back on RX of the same queue pair", OPT_ECHO },
	{ "queue-pairs", 1, "N", "queue pairs (default 1; more offers MQ, multi-queue tap)",
	  OPT_PAIRS },
	{ "mac", 1, "MAC", "offer MAC with this address (xx:xx:xx:xx:xx:xx)", OPT_MAC },
	{ "mtu", 1, "N", "offer MTU with this value (68..65535)", OPT_MTU },
	{ "no-offload", 0, NULL, "tap: offer no checksum or TSO offloads", OPT_NO_OFFLOAD },
	{ "no-mrg-rxbuf", 0, NULL, "do not offer mergeable RX buffers", OPT_NO_MRG },
	{ "no-packed", 0, NULL, "do not offer packed rings", OPT_NO_PACKED },
	{ "no-indirect", 0, NULL, "do not offer indirect descriptors", OPT_NO_INDIRECT },
	{ NULL, 0, NULL, NULL, 0 },
};

struct net_cli {
	struct net_dev_opts o;
	int mode_set;
	struct net_dev *d;
};

static int parse_mac(const char *arg, uint8_t mac[6])
{
	const char *p = arg;

	for (int i = 0; i < 6; i++) {
		unsigned v = 0;

		for (int k = 0; k < 2; k++, p++) {
			if (!isxdigit((unsigned char)*p))
				return -1;
			v = v * 16 + (unsigned)(isdigit((unsigned char)*p) ? *p - '0'
							       : tolower((unsigned char)*p) - 'a' + 10);
		}
		mac[i] = (uint8_t)v;
		if (i < 5 && *p++ != ':')
			return -1;
	}
	return *p ? -1 : 0;
}

static int net_parse(void *opaque, int id, const char *arg)
{
	struct net_cli *c = opaque;

	switch (id) {
	case OPT_TAP:
		if (c->mode_set)
			return vhd_usage_error("--tap and --echo exclude each other (give one)");
		if (!*arg || strlen(arg) >= 16 || strchr(arg, '/') || strchr(arg, ' '))
			return vhd_usage_error("--tap: '%s' is not an interface name (1-15 "
					       "characters, no '/' or space)", arg);
		c->o.mode = NET_MODE_TAP;
		c->o.tap_name = arg;
		c->mode_set = 1;
		return 0;
	case OPT_ECHO:
		if (c->mode_set)
			return vhd_usage_error("--tap and --echo exclude each other (give one)");
		c->o.mode = NET_MODE_ECHO;
		c->mode_set = 1;
		return 0;
	case OPT_PAIRS:
		return vhd_parse_uint("queue-pairs", arg, 1, NET_MAX_PAIRS, &c->o.queue_pairs);
	case OPT_MAC:
		if (parse_mac(arg, c->o.mac) < 0)
			return vhd_usage_error("--mac: '%s' is not xx:xx:xx:xx:xx:xx", arg);
		if (c->o.mac[0] & 1)
			return vhd_usage_error("--mac: %s is a multicast address", arg);
		c->o.have_mac = 1;
		return 0;
	case OPT_MTU:
		return vhd_parse_uint("mtu", arg, 68, 65535, &c->o.mtu);
	case OPT_NO_OFFLOAD:
		c->o.no_offload = 1;
		return 0;
	case OPT_NO_MRG:
		c->o.no_mrg_rxbuf = 1;
		return 0;
	case OPT_NO_PACKED:
		c->o.features_mask |= VH_BIT(VH_F_RING_PACKED);
		return 0;
	case OPT_NO_INDIRECT:
		c->o.features_mask |= VH_BIT(VH_F_INDIRECT_DESC);
		return 0;
	default:
		return 0;
	}
}

static void net_stats(void *opaque, char *buf, size_t len)
{
	struct net_cli *c = opaque;
	size_t n;
	int k;

	if (!c->d)
		return;
	k = snprintf(buf, len, "net: ");
	n = k > 0 ? (size_t)k : 0;
	if (n < len)
		k = net_dev_format_stats(c->d, -1, buf + n, len - n);
	n += k > 0 ? (size_t)k : 0;
	/* With several pairs, where the frames went. */
	for (unsigned p = 0; net_dev_pairs(c->d) > 1 && p < net_dev_pairs(c->d) && n < len; p++) {
		struct net_pair_stats st;

		net_dev_pair_stats(c->d, p, &st);
		k = snprintf(buf + n, len - n, " pair%u=%" PRIu64 "/%" PRIu64, p, st.rx_frames,
			     st.tx_frames);
		n += k > 0 ? (size_t)k : 0;
	}
}

static void log_features(const struct net_dev *d)
{
	char line[512];
	uint64_t f = net_dev_features(d);
	size_t n = 0;

	line[0] = 0;
	for (unsigned b = 0; b < 64 && n < sizeof(line); b++) {
		const char *name = vh_net_feature_name(b);
		int k;

		if (!(f >> b & 1))
			continue;
		k = snprintf(line + n, sizeof(line) - n, " %s", name ? name : "?");
		n += k > 0 ? (size_t)k : 0;
	}
	vhd_log(VH_LOG_INFO, "device features (besides the ring features):%s", line);
}

int main(int argc, char **argv)
{
	static struct net_cli cli;
	const struct vhd_program prog = {
		.name = "vhost-user-net",
		.summary = "virtio-net device for vhost-user front-ends, bridged to a tap or echoing",
		.usage_extra =
			"Exactly one of --tap and --echo is required. With --tap the interface\n"
			"is created (or an existing one attached) with a virtio-net header and,\n"
			"for several queue pairs, multi-queue; bring it up and address it yourself.\n"
			"Offloads (CSUM, GUEST_CSUM, TSO4/6, ECN) are offered only with --tap and\n"
			"only when the tap accepts them; --echo offers none. The control queue is\n"
			"left to the front-end (QEMU and DPDK virtio-user emulate it).\n"
			"SIGUSR1 prints a statistics line; SIGTERM/SIGINT end the program.\n",
		.cap_type = "net",
		.options = net_options,
		.parse = net_parse,
		.dev = &cli,
	};
	unsigned queue_thread[2 * NET_MAX_PAIRS];
	struct vhd_common c;
	unsigned threads;
	int ret;

	vhd_block_signals();
	cli.o.queue_pairs = 1;
	ret = vhd_parse_args(&prog, argc, argv, &c);
	if (ret)
		return ret > 0 ? VHD_EXIT_OK : VHD_EXIT_USAGE;
	if (!cli.mode_set) {
		vhd_usage_error("give --tap=NAME or --echo");
		return VHD_EXIT_USAGE;
	}
	/* The device's messages are the tool's own: the tool's level, not the library's. */
	cli.o.log = vhd_logger();
	cli.o.log.max_level = vhd_log_level();
	ret = net_dev_new(&cli.d, &cli.o);
	if (ret < 0)
		return VHD_EXIT_FAIL;     /* the device said why */
	log_features(cli.d);
	/* Both rings of a pair on one worker: echo hand-over and tap queue stay on one CPU. */
	threads = c.threads ? c.threads : cli.o.queue_pairs;
	if (!c.threads && threads > vhd_ncpus())
		threads = vhd_ncpus();
	if (threads > cli.o.queue_pairs * 2)
		threads = cli.o.queue_pairs * 2;
	for (unsigned i = 0; i < 2 * cli.o.queue_pairs; i++)
		queue_thread[i] = threads >= 2 * cli.o.queue_pairs ? i : (i / 2) % threads;
	ret = vhd_serve(net_dev_server(cli.d), &c, threads, queue_thread, net_stats, &cli);
	net_dev_free(cli.d);
	return ret;
}
