/* SPDX-License-Identifier: MIT */
/*
 * vdpa_sim_net through the library, as a virtio-net driver would use it: device id, status
 * handshake, MAC in the config space, memory mapped as IOVAs, split rings on the driver side
 * (the ring layer), frames sent on TX and compared byte for byte where the simulator loops
 * them back into RX buffers; a frame to another unicast MAC must be filtered out. The
 * simulator offers no packed rings (vringh is split only): the negotiation must say so.
 *
 * The harness creates the device without a MAC; this program re-creates it with one
 * (vdpa dev del/add), so it owns the device "vdpa-net" for the run.
 */
#define KG_WITH_RINGS
#include <glob.h>

#include <libvhost/kernel.h>
#include <libvhost/vdpa.h>
#include "kguest.h"

#define NET_HDR 12 /* virtio_net_hdr with num_buffers (VERSION_1) */
#define F_NET_MAC (1ULL << 5)
#define NFRAMES 24
#define RXBUF 2048

static const uint8_t dev_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t other_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };

/* Re-creates vdpa-net with dev_mac; returns its /dev node or NULL. */
static const char *recreate_with_mac(void)
{
	static char node[64];
	glob_t g;

	if (system("vdpa dev del vdpa-net && vdpa dev add mgmtdev vdpasim_net name vdpa-net "
		   "mac 52:54:00:12:34:56") != 0)
		return NULL;
	for (int i = 0; i < 100; i++) {
		if (glob("/sys/bus/vdpa/devices/vdpa-net/vhost-vdpa-*", 0, NULL, &g) == 0) {
			const char *base = strrchr(g.gl_pathv[0], '/') + 1;

			snprintf(node, sizeof(node), "/dev/%s", base);
			globfree(&g);
			if (access(node, R_OK | W_OK) == 0)
				return node;
		}
		usleep(50000);
	}
	return NULL;
}

static size_t make_frame(uint8_t *buf, unsigned i)
{
	size_t len = NET_HDR + 14 + 46 + (size_t)i * 53;

	memset(buf, 0, NET_HDR);
	memcpy(buf + NET_HDR, i % 3 == 0 ? (const uint8_t[6]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }
					 : dev_mac, 6);
	memcpy(buf + NET_HDR + 6, (const uint8_t[6]){ 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc }, 6);
	buf[NET_HDR + 12] = 0x88;
	buf[NET_HDR + 13] = 0xb5;
	for (size_t j = NET_HDR + 14; j < len; j++)
		buf[j] = (uint8_t)(i * 7 + j * 13);
	return len;
}

static void run(const char *path, uint64_t ring_features)
{
	struct vh_guest_mem *gm = NULL;
	struct vh_device *d = NULL;
	struct kg_q rx = { .kick = -1, .call = -1 }, tx = { .kick = -1, .call = -1 };
	const struct vh_region *regs;
	uint8_t *txbuf[NFRAMES + 1], *rxbuf[NFRAMES + 4], mac[6];
	uint64_t txgpa[NFRAMES + 1], rxgpa[NFRAMES + 4], neg = 0;
	size_t txlen[NFRAMES + 1];
	struct vh_vq_driver_used used[NFRAMES + 8];
	unsigned nregs, matched = 0;
	int n, fds0 = kg_count_fds();

	printf("== vdpa_sim_net %s, %s ring\n", path,
	       ring_features & VH_VQ_F_RING_PACKED ? "packed" : "split");
	KG_RET(vh_guest_mem_new(&gm, 4u << 20, 0), 0);
	KG_RET(vh_vdpa_open(&d, path, NULL), 0);
	if (!gm || !d)
		goto out;
	KG_RET(vh_device_set_owner(d), 0);
	KG_RET(vh_vdpa_negotiate(d, F_NET_MAC | ring_features, &neg), 0);
	if ((ring_features & VH_VQ_F_RING_PACKED) && !(neg & VH_VQ_F_RING_PACKED)) {
		KG_TRUE(1, "vdpa_sim_net does not offer RING_PACKED (negotiated 0x%llx)",
			(unsigned long long)neg);
		goto out;
	}
	KG_TRUE(neg & F_NET_MAC, "MAC negotiated (0x%llx)", (unsigned long long)neg);
	KG_RET(vh_device_get_config(d, 0, mac, 6), 0);
	KG_TRUE(!memcmp(mac, dev_mac, 6), "config MAC %02x:%02x:%02x:%02x:%02x:%02x", mac[0],
		mac[1], mac[2], mac[3], mac[4], mac[5]);

	regs = vh_guest_mem_regions(gm, &nregs);
	KG_RET(vh_device_set_mem_table(d, regs, nregs), 0);
	KG_RET(kg_q_setup(&rx, d, gm, 0, 256, neg, 0, NULL), 0);
	KG_RET(kg_q_setup(&tx, d, gm, 1, 256, neg, 0, NULL), 0);
	KG_RET(vh_device_set_vring_enable(d, 0, 1), 0);
	KG_RET(vh_device_set_vring_enable(d, 1, 1), 0);
	KG_RET(vh_vdpa_driver_ok(d), 0);
	if (!rx.drv || !tx.drv)
		goto out;

	/* RX buffers first: the simulator drops frames when it has none. */
	for (unsigned i = 0; i < NFRAMES + 4; i++) {
		struct vh_vq_seg s;
		struct vh_vq_driver_req r = { &s, 0, 1, 1000 + i };

		if (vh_guest_mem_alloc(gm, RXBUF, 64, &rxgpa[i], (void **)&rxbuf[i]) < 0)
			goto out;
		memset(rxbuf[i], 0xee, RXBUF);
		s.gpa = rxgpa[i];
		s.len = RXBUF;
		KG_RET(vh_vq_driver_add_batch(rx.drv, &r, 1), 1);
	}
	kg_q_kick(&rx);

	/* Frames to our MAC and to broadcast, and one to another MAC in the middle. */
	for (unsigned i = 0; i <= NFRAMES; i++) {
		struct vh_vq_seg s;
		struct vh_vq_driver_req r = { &s, 1, 0, i };

		if (vh_guest_mem_alloc(gm, RXBUF, 64, &txgpa[i], (void **)&txbuf[i]) < 0)
			goto out;
		txlen[i] = make_frame(txbuf[i], i);
		if (i == NFRAMES / 2)
			memcpy(txbuf[i] + NET_HDR, other_mac, 6);
		s.gpa = txgpa[i];
		s.len = (uint32_t)txlen[i];
		KG_RET(vh_vq_driver_add_batch(tx.drv, &r, 1), 1);
	}
	kg_q_kick(&tx);

	n = kg_q_wait(&tx, used, NFRAMES + 1, 10000);
	KG_EQ(n, NFRAMES + 1);
	n = kg_q_wait(&rx, used, NFRAMES, 10000);
	KG_EQ(n, NFRAMES);
	/* In order, skipping the filtered frame. */
	for (int k = 0, i = 0; k < n && i <= NFRAMES; k++, i++) {
		unsigned b = (unsigned)(used[k].token - 1000);

		if (i == NFRAMES / 2)
			i++;
		if (b >= NFRAMES + 4)
			continue;
		if (used[k].len == txlen[i] && !memcmp(rxbuf[b], txbuf[i], txlen[i]))
			matched++;
		else
			kg_report(false, "rx %d (buffer %u, len %u) differs from tx frame %d (len %zu)",
				  k, b, used[k].len, i, txlen[i]);
	}
	KG_EQ(matched, NFRAMES);
	/* The filtered frame never shows up. */
	KG_EQ(kg_q_wait(&rx, used, 1, 300), 0);
	KG_RET(vh_vdpa_reset(d), 0);
out:
	vh_device_close(d);
	kg_q_free(&rx);
	kg_q_free(&tx);
	vh_guest_mem_free(gm);
	KG_EQ(kg_count_fds(), fds0);
}

int main(void)
{
	const char *path;

	setvbuf(stdout, NULL, _IOLBF, 0);
	path = recreate_with_mac();
	KG_TRUE(path != NULL, "vdpa-net re-created with MAC 52:54:00:12:34:56 at %s",
		path ? path : "(none)");
	if (!path)
		return kg_done("vdpa_net_datapath");
	run(path, 0);
	run(path, VH_VQ_F_RING_PACKED);
	return kg_done("vdpa_net_datapath");
}
