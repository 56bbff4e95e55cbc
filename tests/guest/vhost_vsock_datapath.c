/* SPDX-License-Identifier: MIT */
/*
 * vhost-vsock through the library: this program is the driver of a vsock device with guest
 * CID 3 and, in the same process, the host side (an AF_VSOCK listener of the guest kernel,
 * which is the vhost host here). OP_REQUEST on TX must be answered by OP_RESPONSE on RX and
 * complete accept(); bytes sent by the host socket must arrive in an OP_RW packet, and an
 * OP_RW packet from the driver must be read back from the host socket, both byte for byte.
 */
#define KG_WITH_RINGS
#include <linux/virtio_vsock.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>

#include <libvhost/kernel.h>
#include "kguest.h"

#define F_VERSION_1 (1ULL << 32)
#define GUEST_CID 3
#define HOST_CID 2
#define HOST_PORT 1234
#define GUEST_PORT 5000
#define NRXBUF 16
#define RXBUF 4096
#define HDR sizeof(struct virtio_vsock_hdr)

struct rxbuf {
	uint8_t *p;
	uint64_t gpa;
};

static struct vh_guest_mem *gm;
static struct kg_q rx = { .kick = -1, .call = -1 }, tx = { .kick = -1, .call = -1 };
static struct rxbuf bufs[NRXBUF];

static void post_rx(unsigned b)
{
	struct vh_vq_seg s = { bufs[b].gpa, RXBUF };
	struct vh_vq_driver_req r = { &s, 0, 1, b };

	memset(bufs[b].p, 0, RXBUF);
	if (vh_vq_driver_add_batch(rx.drv, &r, 1) != 1)
		kg_report(false, "post rx buffer %u", b);
	kg_q_kick(&rx);
}

/* Waits for an RX packet with op; copies it out and re-posts every buffer it consumed. */
static int wait_rx_op(uint16_t op, uint8_t *pkt, size_t cap, int timeout_ms)
{
	int64_t deadline = t_now_ms() + timeout_ms;

	while (t_now_ms() < deadline) {
		struct vh_vq_driver_used u;
		int n = kg_q_wait(&rx, &u, 1, 100);
		struct virtio_vsock_hdr h;

		if (n < 0)
			return n;
		if (n == 0 || u.token >= NRXBUF)
			continue;
		memcpy(&h, bufs[u.token].p, HDR);
		printf("     rx op %u len %u from %llu:%u\n", h.op, h.len,
		       (unsigned long long)h.src_cid, h.src_port);
		if (h.op == op && u.len <= cap) {
			memcpy(pkt, bufs[u.token].p, u.len);
			post_rx((unsigned)u.token);
			return (int)u.len;
		}
		post_rx((unsigned)u.token);
	}
	return -ETIMEDOUT;
}

static void send_tx(uint16_t op, const void *payload, uint32_t len)
{
	struct virtio_vsock_hdr *h;
	uint8_t *data;
	uint64_t hgpa, dgpa;
	struct vh_vq_seg s[2];
	struct vh_vq_driver_req r = { s, 1, 0, 0 };
	struct vh_vq_driver_used u;

	if (vh_guest_mem_alloc(gm, HDR, 8, &hgpa, (void **)&h) < 0)
		return;
	memset(h, 0, HDR);
	h->src_cid = GUEST_CID;
	h->dst_cid = HOST_CID;
	h->src_port = GUEST_PORT;
	h->dst_port = HOST_PORT;
	h->len = len;
	h->type = VIRTIO_VSOCK_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = 65536;
	h->fwd_cnt = 0;
	s[0] = (struct vh_vq_seg){ hgpa, HDR };
	if (len) {
		if (vh_guest_mem_alloc(gm, len, 8, &dgpa, (void **)&data) < 0)
			return;
		memcpy(data, payload, len);
		s[1] = (struct vh_vq_seg){ dgpa, len };
		r.out_num = 2;
	}
	KG_RET(vh_vq_driver_add_batch(tx.drv, &r, 1), 1);
	kg_q_kick(&tx);
	KG_EQ(kg_q_wait(&tx, &u, 1, 5000), 1);
}

int main(void)
{
	struct vh_device *d = NULL;
	const struct vh_region *regs;
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				    .svm_port = HOST_PORT };
	static const char to_guest[] = "bytes from the host socket to the vsock driver";
	static const char to_host[] = "and bytes from the driver's TX ring to the host socket";
	uint8_t pkt[RXBUF];
	char in[256];
	struct virtio_vsock_hdr h;
	unsigned nregs;
	int lst = -1, conn = -1, n, fds0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fds0 = kg_count_fds();
	lst = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	KG_TRUE(lst >= 0, "AF_VSOCK socket (%s)", strerror(errno));
	KG_RET(bind(lst, (struct sockaddr *)&addr, sizeof(addr)), 0);
	KG_RET(listen(lst, 1), 0);
	KG_RET(vh_guest_mem_new(&gm, 2u << 20, 0), 0);
	KG_RET(vh_kernel_open(&d, "/dev/vhost-vsock", NULL), 0);
	if (lst < 0 || !gm || !d)
		goto out;
	KG_RET(vh_device_set_owner(d), 0);
	KG_RET(vh_device_set_features(d, F_VERSION_1), 0);
	regs = vh_guest_mem_regions(gm, &nregs);
	KG_RET(vh_device_set_mem_table(d, regs, nregs), 0);
	KG_RET(kg_q_setup(&rx, d, gm, 0, 64, F_VERSION_1, 0, NULL), 0);
	KG_RET(kg_q_setup(&tx, d, gm, 1, 64, F_VERSION_1, 0, NULL), 0);
	KG_RET(vh_kernel_vsock_set_guest_cid(d, GUEST_CID), 0);
	KG_RET(vh_kernel_vsock_set_running(d, 1), 0);
	if (!rx.drv || !tx.drv)
		goto out;
	for (unsigned b = 0; b < NRXBUF; b++) {
		if (vh_guest_mem_alloc(gm, RXBUF, 4096, &bufs[b].gpa, (void **)&bufs[b].p) < 0)
			goto out;
		post_rx(b);
	}

	/* Connect: REQUEST out, RESPONSE back, and the listener has a connection. */
	send_tx(VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	n = wait_rx_op(VIRTIO_VSOCK_OP_RESPONSE, pkt, sizeof(pkt), 5000);
	KG_EQ(n, HDR);
	memcpy(&h, pkt, HDR);
	KG_EQ(h.src_cid, HOST_CID);
	KG_EQ(h.dst_cid, GUEST_CID);
	KG_EQ(h.src_port, HOST_PORT);
	KG_EQ(h.dst_port, GUEST_PORT);
	{
		struct pollfd p = { .fd = lst, .events = POLLIN };

		KG_RET(poll(&p, 1, 5000), 1);
		conn = accept4(lst, NULL, NULL, SOCK_CLOEXEC);
		KG_TRUE(conn >= 0, "accept (%s)", strerror(errno));
	}
	if (conn < 0)
		goto out;

	/* Host to driver */
	KG_RET(send(conn, to_guest, sizeof(to_guest), 0), (long long)sizeof(to_guest));
	n = wait_rx_op(VIRTIO_VSOCK_OP_RW, pkt, sizeof(pkt), 5000);
	KG_EQ(n, HDR + sizeof(to_guest));
	memcpy(&h, pkt, HDR);
	KG_EQ(h.len, sizeof(to_guest));
	KG_TRUE(n > 0 && !memcmp(pkt + HDR, to_guest, sizeof(to_guest)),
		"host bytes arrived intact in the RX buffer");

	/* Driver to host */
	send_tx(VIRTIO_VSOCK_OP_RW, to_host, sizeof(to_host));
	{
		struct pollfd p = { .fd = conn, .events = POLLIN };

		KG_RET(poll(&p, 1, 5000), 1);
		memset(in, 0, sizeof(in));
		KG_RET(recv(conn, in, sizeof(in), 0), (long long)sizeof(to_host));
		KG_TRUE(!memcmp(in, to_host, sizeof(to_host)), "driver bytes read intact by host");
	}
	KG_RET(vh_kernel_vsock_set_running(d, 0), 0);
out:
	if (conn >= 0)
		close(conn);
	if (lst >= 0)
		close(lst);
	vh_device_close(d);
	kg_q_free(&rx);
	kg_q_free(&tx);
	vh_guest_mem_free(gm);
	KG_EQ(kg_count_fds(), fds0);
	return kg_done("vhost_vsock_datapath");
}
