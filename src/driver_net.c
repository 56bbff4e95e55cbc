/* SPDX-License-Identifier: MIT */
/*
 * Driver side: the virtio-net client. Queue pair k uses ring 2k (RX) and 2k+1 (TX). TX frames
 * are copied with their header into per-slot buffers in guest memory; RX buffers are fixed
 * size, posted as one device-writable segment each, and frames are copied out of them (with
 * MRG_RXBUF a frame may span several buffers, as its header's num_buffers says).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libvhost/driver.h>
#include <libvhost/kernel.h>
#include "driver_internal.h"
#include "internal.h"

_Static_assert(sizeof(struct vh_net_hdr) == 12, "virtio_net_hdr_v1 is 12 bytes");
_Static_assert(offsetof(struct vh_net_hdr, num_buffers) == 10, "num_buffers at 10");

#define DEFAULT_BUF 2048u
#define BATCH 32u
#define F_VERSION_1 32
#define F_ANY_LAYOUT 27

struct net_rxq {
	unsigned nbufs;
	uint8_t *mem;
	uint64_t gpa;
	uint16_t *free;    /* buffers not posted */
	unsigned nfree;
	/* used entries collected but not yet turned into frames (a frame may be incomplete) */
	struct vh_vq_driver_used *pend;
	unsigned pend_head, npend;
	struct vh_vq_driver_used *scratch;
	struct vh_vq_seg segs[BATCH];
	struct vh_vq_driver_req vreqs[BATCH];
};

struct net_txq {
	unsigned nslots;
	uint8_t *mem;
	uint64_t gpa;
	uint16_t *free;
	unsigned nfree;
	struct vh_vq_driver_used *scratch;
	struct vh_vq_seg segs[2 * BATCH];
	struct vh_vq_driver_req vreqs[BATCH];
};

struct vh_net {
	struct vh_driver *drv;
	struct vh_net_config cfg;
	uint64_t features;
	unsigned pairs;
	size_t hdr_len;
	int mrg;
	int split_hdr;      /* header and frame in separate descriptors (legacy without ANY_LAYOUT) */
	uint32_t rx_buf, tx_buf;
	int backend_fd;
	struct vh_logger log;
	struct net_rxq *rx;
	struct net_txq *tx;
};

static int has(const struct vh_net *n, unsigned bit)
{
	return (n->features >> bit) & 1;
}

const char *vh_net_feature_name(unsigned bit)
{
	static const char *const low[24] = {
		"CSUM", "GUEST_CSUM", "CTRL_GUEST_OFFLOADS", "MTU", NULL, "MAC", "GSO",
		"GUEST_TSO4", "GUEST_TSO6", "GUEST_ECN", "GUEST_UFO", "HOST_TSO4", "HOST_TSO6",
		"HOST_ECN", "HOST_UFO", "MRG_RXBUF", "STATUS", "CTRL_VQ", "CTRL_RX", "CTRL_VLAN",
		"CTRL_RX_EXTRA", "GUEST_ANNOUNCE", "MQ", "CTRL_MAC_ADDR",
	};

	if (bit < 24)
		return low[bit];
	switch (bit) {
	case 52: return "VQ_NOTF_COAL";
	case 53: return "NOTF_COAL";
	case 54: return "GUEST_USO4";
	case 55: return "GUEST_USO6";
	case 56: return "HOST_USO";
	case 57: return "HASH_REPORT";
	case 59: return "GUEST_HDRLEN";
	case 60: return "RSS";
	case 61: return "RSC_EXT";
	case 62: return "STANDBY";
	case 63: return "SPEED_DUPLEX";
	default: return vh_driver_feature_name(bit);
	}
}

/* ---- Open / close ------------------------------------------------------------------------- */

static void read_config(struct vh_net *n)
{
	uint8_t c[12];
	int r;

	memset(&n->cfg, 0, sizeof(n->cfg));
	memset(c, 0, sizeof(c));
	r = vh_device_get_config(vh_driver_device(n->drv), 0, c, sizeof(c));
	if (r < 0) {
		vhp_info(&n->log, "net: no config space (%s)", strerror(-r));
		return;
	}
	n->cfg.have_config = 1;
	if (has(n, VH_NET_F_MAC)) {
		memcpy(n->cfg.mac, c, 6);
		n->cfg.have_mac = 1;
	}
	if (has(n, VH_NET_F_STATUS))
		n->cfg.status = vhp_le16(c + 6);
	if (has(n, VH_NET_F_MQ))
		n->cfg.max_virtqueue_pairs = vhp_le16(c + 8);
	if (has(n, VH_NET_F_MTU))
		n->cfg.mtu = vhp_le16(c + 10);
}

static int attach_backend(void *opaque, struct vh_driver *drv)
{
	struct vh_net *n = opaque;
	int r;

	(void)drv;
	for (unsigned i = 0; i < 2; i++) {
		r = vh_kernel_net_set_backend(vh_driver_device(n->drv), i, n->backend_fd);
		if (r < 0) {
			vhp_err(&n->log, "net: VHOST_NET_SET_BACKEND ring %u: %s", i, strerror(-r));
			if (i)
				(void)vh_kernel_net_set_backend(vh_driver_device(n->drv), 0, -1);
			return r;
		}
	}
	return 0;
}

static void detach_backend(void *opaque, struct vh_driver *drv)
{
	struct vh_net *n = opaque;

	(void)drv;
	for (unsigned i = 0; i < 2; i++)
		(void)vh_kernel_net_set_backend(vh_driver_device(n->drv), i, -1);
}

static int setup_pair(struct vh_net *n, unsigned p)
{
	struct net_rxq *rx = &n->rx[p];
	struct net_txq *tx = &n->tx[p];
	void *host;
	int r;

	rx->nbufs = vh_driver_queue_size(n->drv, 2 * p);
	tx->nslots = vh_driver_queue_size(n->drv, 2 * p + 1);
	rx->free = calloc(rx->nbufs, sizeof(*rx->free));
	rx->pend = calloc(rx->nbufs, sizeof(*rx->pend));
	rx->scratch = calloc(rx->nbufs, sizeof(*rx->scratch));
	tx->free = calloc(tx->nslots, sizeof(*tx->free));
	tx->scratch = calloc(tx->nslots, sizeof(*tx->scratch));
	if (!rx->free || !rx->pend || !rx->scratch || !tx->free || !tx->scratch)
		return -ENOMEM;
	r = vh_driver_alloc(n->drv, (size_t)rx->nbufs * n->rx_buf, 64, &host, &rx->gpa);
	if (r < 0)
		return r;
	rx->mem = host;
	r = vh_driver_alloc(n->drv, (size_t)tx->nslots * n->tx_buf, 64, &host, &tx->gpa);
	if (r < 0)
		return r;
	tx->mem = host;
	for (unsigned i = 0; i < rx->nbufs; i++)
		rx->free[i] = (uint16_t)(rx->nbufs - 1 - i);
	rx->nfree = rx->nbufs;
	for (unsigned i = 0; i < tx->nslots; i++)
		tx->free[i] = (uint16_t)(tx->nslots - 1 - i);
	tx->nfree = tx->nslots;
	return 0;
}

static void free_pairs(struct vh_net *n)
{
	for (unsigned p = 0; n->rx && p < n->pairs; p++) {
		free(n->rx[p].free);
		free(n->rx[p].pend);
		free(n->rx[p].scratch);
	}
	for (unsigned p = 0; n->tx && p < n->pairs; p++) {
		free(n->tx[p].free);
		free(n->tx[p].scratch);
	}
	free(n->rx);
	free(n->tx);
	n->rx = NULL;
	n->tx = NULL;
}

int vh_net_open(struct vh_net **out, struct vh_device *dev, const struct vh_net_opts *opts)
{
	struct vh_driver_config dc;
	struct vh_driver_queues dq;
	enum vh_transport t;
	struct vh_net *n;
	unsigned qsize, qmax;
	uint64_t mem;
	int r;

	if (!out || !dev || !opts || opts->timeout_ms < 0)
		return -EINVAL;
	*out = NULL;
	t = vh_device_transport(dev);
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->log = opts->log;
	n->pairs = opts->queue_pairs ? opts->queue_pairs : 1;
	n->rx_buf = opts->rx_buf_size ? opts->rx_buf_size : DEFAULT_BUF;
	n->tx_buf = opts->tx_buf_size ? opts->tx_buf_size : DEFAULT_BUF;
	n->backend_fd = opts->kernel_backend_fd;
	r = -EINVAL;
	if (n->pairs * 2 > VH_DRIVER_MAX_QUEUES || n->rx_buf < 64 || n->rx_buf > (1u << 20) ||
	    n->tx_buf < 64 || n->tx_buf > (1u << 20))
		goto fail;
	r = -EOPNOTSUPP;
	if (n->pairs > 1 && t != VH_TRANSPORT_USER) {
		vhp_err(&n->log, "net: several queue pairs need a control queue on this transport");
		goto fail;
	}
	if (t == VH_TRANSPORT_KERNEL && n->backend_fd < 0) {
		vhp_err(&n->log, "net: /dev/vhost-net needs kernel_backend_fd");
		r = -EINVAL;
		goto fail;
	}

	memset(&dc, 0, sizeof(dc));
	dc.features = opts->features ? opts->features : VH_NET_DEFAULT_FEATURES;
	/* No control queue is driven: never ack what would need one. */
	dc.features &= ~(VH_BIT(VH_NET_F_CTRL_VQ) | VH_BIT(VH_NET_F_MQ) | VH_BIT(18) | VH_BIT(19) |
			 VH_BIT(20) | VH_BIT(21) | VH_BIT(23) | VH_BIT(2));
	dc.timeout_ms = opts->timeout_ms;
	dc.flags = opts->flags;
	dc.log = opts->log;
	r = vh_driver_new(&n->drv, dev, &dc);
	if (r < 0)
		goto fail;
	n->features = vh_driver_features(n->drv);
	n->mrg = has(n, VH_NET_F_MRG_RXBUF);
	n->hdr_len = n->mrg || has(n, F_VERSION_1) ? 12 : 10;
	n->split_hdr = !has(n, F_VERSION_1) && !has(n, F_ANY_LAYOUT);
	if (n->rx_buf <= n->hdr_len || n->tx_buf <= n->hdr_len) {
		r = -EINVAL;
		goto fail;
	}
	read_config(n);
	if (n->pairs > 1) {
		r = vh_device_get_queue_num(dev, &qmax);
		if (r < 0 || n->pairs > qmax) {
			vhp_err(&n->log, "net: %u queue pairs asked, the back-end has %u", n->pairs,
				r < 0 ? 1 : qmax);
			r = -ERANGE;
			goto fail;
		}
	}

	qsize = opts->queue_size ? opts->queue_size : 256;
	if (qsize > VH_VQ_MAX_SIZE)
		qsize = VH_VQ_MAX_SIZE;
	mem = (uint64_t)n->pairs * qsize * ((uint64_t)n->rx_buf + n->tx_buf + 128) + 65536;
	memset(&dq, 0, sizeof(dq));
	dq.num_queues = 2 * n->pairs;
	dq.queue_size = qsize;
	dq.mem_size = mem;
	if (t == VH_TRANSPORT_KERNEL) {
		dq.attach = attach_backend;
		dq.detach = detach_backend;
		dq.opaque = n;
	}
	r = vh_driver_start(n->drv, &dq);
	if (r < 0)
		goto fail;
	n->rx = calloc(n->pairs, sizeof(*n->rx));
	n->tx = calloc(n->pairs, sizeof(*n->tx));
	if (!n->rx || !n->tx) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned p = 0; p < n->pairs; p++) {
		r = setup_pair(n, p);
		if (r < 0)
			goto fail;
		/* Transmit completions are collected when sending: no calls wanted. */
		vh_vq_driver_disable_cb(vh_driver_vq(n->drv, 2 * p + 1));
		r = vh_net_rx_refill(n, p);
		if (r < 0)
			goto fail;
	}
	vhp_info(&n->log, "net: %u pair(s), header %zu bytes, mergeable RX buffers %s", n->pairs,
		 n->hdr_len, n->mrg ? "on" : "off");
	*out = n;
	return 0;
fail:
	vh_driver_free(n->drv);
	free_pairs(n);
	free(n);
	return r;
}

void vh_net_close(struct vh_net *n)
{
	if (!n)
		return;
	/* Frames still queued for transmission get a bounded chance to leave. */
	for (unsigned p = 0; n->tx && p < n->pairs; p++)
		if (!vh_driver_error(n->drv))
			(void)vh_net_tx_wait(n, p, -1);
	vh_driver_free(n->drv);
	free_pairs(n);
	free(n);
}

const struct vh_net_config *vh_net_config(const struct vh_net *n)
{
	return n ? &n->cfg : NULL;
}

struct vh_driver *vh_net_driver(const struct vh_net *n)
{
	return n ? n->drv : NULL;
}

unsigned vh_net_queue_pairs(const struct vh_net *n)
{
	return n ? n->pairs : 0;
}

size_t vh_net_hdr_len(const struct vh_net *n)
{
	return n ? n->hdr_len : 0;
}

/* ---- Transmit ----------------------------------------------------------------------------- */

/* Takes back finished TX slots; returns how many, or -EIO. */
static int tx_reclaim(struct vh_net *n, unsigned p)
{
	struct net_txq *tx = &n->tx[p];
	int got, total = 0;

	do {
		got = vh_driver_get_used(n->drv, 2 * p + 1, tx->scratch, tx->nslots);
		if (got < 0)
			return got;
		for (int i = 0; i < got; i++) {
			uint64_t s = tx->scratch[i].token;

			if (s >= tx->nslots || tx->nfree >= tx->nslots)
				return vhp_driver_fail(n->drv, -EIO);
			tx->free[tx->nfree++] = (uint16_t)s;
		}
		total += got;
	} while (got > 0);
	return total;
}

int vh_net_send(struct vh_net *n, unsigned pair, const struct vh_net_tx *frames, unsigned count)
{
	struct net_txq *tx;
	unsigned done = 0;
	int r;

	if (!n || pair >= n->pairs || (count && !frames))
		return -EINVAL;
	tx = &n->tx[pair];
	r = tx_reclaim(n, pair);
	if (r < 0)
		return r;
	while (done < count) {
		unsigned k = 0, ns = 0;

		while (k < BATCH && done + k < count && k < tx->nfree) {
			const struct vh_net_tx *f = &frames[done + k];
			unsigned s = tx->free[tx->nfree - 1 - k];
			uint8_t *slot = tx->mem + (size_t)s * n->tx_buf;
			uint64_t gpa = tx->gpa + (uint64_t)s * n->tx_buf;
			struct vh_net_hdr h;

			if (f->len == 0 || !f->data || f->len > n->tx_buf - n->hdr_len) {
				if (done + k == 0)
					return -EMSGSIZE;
				break;
			}
			memset(&h, 0, sizeof(h));
			if (f->hdr) {
				h = *f->hdr;
				h.hdr_len = htole16(h.hdr_len);
				h.gso_size = htole16(h.gso_size);
				h.csum_start = htole16(h.csum_start);
				h.csum_offset = htole16(h.csum_offset);
				h.num_buffers = 0; /* receive side only */
			}
			memcpy(slot, &h, n->hdr_len);
			memcpy(slot + n->hdr_len, f->data, f->len);
			if (n->split_hdr) {
				tx->segs[ns] = (struct vh_vq_seg){ gpa, (uint32_t)n->hdr_len };
				tx->segs[ns + 1] = (struct vh_vq_seg){ gpa + n->hdr_len, f->len };
				tx->vreqs[k] = (struct vh_vq_driver_req){ &tx->segs[ns], 2, 0, s };
				ns += 2;
			} else {
				tx->segs[ns] = (struct vh_vq_seg){ gpa,
								   (uint32_t)(n->hdr_len + f->len) };
				tx->vreqs[k] = (struct vh_vq_driver_req){ &tx->segs[ns], 1, 0, s };
				ns++;
			}
			k++;
		}
		if (k == 0)
			break;
		r = vh_driver_add(n->drv, 2 * pair + 1, tx->vreqs, k);
		if (r < 0) {
			if (done)
				break;
			return r;
		}
		tx->nfree -= (unsigned)r;
		done += (unsigned)r;
		if ((unsigned)r < k)
			break;
	}
	if (done) {
		r = vh_driver_kick(n->drv, 2 * pair + 1);
		if (r < 0)
			return r;
	}
	return (int)done;
}

unsigned vh_net_tx_pending(const struct vh_net *n, unsigned pair)
{
	if (!n || pair >= n->pairs)
		return 0;
	return n->tx[pair].nslots - n->tx[pair].nfree;
}

int vh_net_tx_wait(struct vh_net *n, unsigned pair, int timeout_ms)
{
	struct vh_vq_driver *vq;
	int64_t deadline;
	int r;

	if (!n || pair >= n->pairs)
		return -EINVAL;
	vq = vh_driver_vq(n->drv, 2 * pair + 1);
	vhp_driver_deadline(n->drv, timeout_ms, &deadline);
	for (;;) {
		r = tx_reclaim(n, pair);
		if (r < 0)
			return r;
		if (vh_net_tx_pending(n, pair) == 0)
			return 0;
		if (vhp_driver_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		r = vh_driver_wait(n->drv, 2 * pair + 1, vhp_driver_remaining_ms(deadline));
		/* Leave TX calls off again: only this wait wants them. */
		vh_vq_driver_disable_cb(vq);
		if (r == -ENODATA)
			continue;
		if (r < 0)
			return r;
	}
}

/* ---- Receive ------------------------------------------------------------------------------ */

int vh_net_rx_refill(struct vh_net *n, unsigned pair)
{
	struct net_rxq *rx;
	int posted = 0, r;

	if (!n || pair >= n->pairs)
		return -EINVAL;
	rx = &n->rx[pair];
	while (rx->nfree) {
		unsigned k = 0;

		while (k < BATCH && k < rx->nfree) {
			unsigned b = rx->free[rx->nfree - 1 - k];

			rx->segs[k] = (struct vh_vq_seg){ rx->gpa + (uint64_t)b * n->rx_buf,
							  n->rx_buf };
			rx->vreqs[k] = (struct vh_vq_driver_req){ &rx->segs[k], 0, 1, b };
			k++;
		}
		r = vh_driver_add(n->drv, 2 * pair, rx->vreqs, k);
		if (r < 0)
			return posted ? posted : r;
		rx->nfree -= (unsigned)r;
		posted += r;
		if ((unsigned)r < k)
			break;
	}
	if (posted) {
		r = vh_driver_kick(n->drv, 2 * pair);
		if (r < 0)
			return r;
	}
	return posted;
}

unsigned vh_net_rx_posted(const struct vh_net *n, unsigned pair)
{
	if (!n || pair >= n->pairs)
		return 0;
	return n->rx[pair].nbufs - n->rx[pair].nfree - n->rx[pair].npend;
}

/* Moves used RX entries into the pending list. */
static int rx_collect(struct vh_net *n, unsigned p)
{
	struct net_rxq *rx = &n->rx[p];
	unsigned room = rx->nbufs - rx->npend;
	int got;

	if (room == 0)
		return 0;
	got = vh_driver_get_used(n->drv, 2 * p, rx->scratch, room);
	if (got < 0)
		return got;
	for (int i = 0; i < got; i++) {
		if (rx->scratch[i].token >= rx->nbufs || rx->scratch[i].len > n->rx_buf)
			return vhp_driver_fail(n->drv, -EIO);
		rx->pend[(rx->pend_head + rx->npend) % rx->nbufs] = rx->scratch[i];
		rx->npend++;
	}
	return got;
}

/*
 * Turns the pending entries at the head into one frame if it is complete: 1 done, 0 needs more
 * buffers, -EIO if the device described it wrongly.
 */
static int rx_frame(struct vh_net *n, unsigned p, struct vh_net_rx *f)
{
	struct net_rxq *rx = &n->rx[p];
	const struct vh_vq_driver_used *first;
	struct vh_net_hdr h;
	unsigned nb = 1, i;
	uint64_t total = 0;
	uint32_t copied = 0;

	if (rx->npend == 0)
		return 0;
	first = &rx->pend[rx->pend_head];
	if (first->len < n->hdr_len)
		return vhp_driver_fail(n->drv, -EIO);
	memset(&h, 0, sizeof(h));
	/* One copy of the header: the device may change the buffer under us. */
	memcpy(&h, rx->mem + first->token * n->rx_buf, n->hdr_len);
	if (n->mrg) {
		nb = le16toh(h.num_buffers);
		if (nb == 0 || nb > rx->nbufs)
			return vhp_driver_fail(n->drv, -EIO);
		if (nb > rx->npend)
			return 0;
	}
	f->hdr.flags = h.flags;
	f->hdr.gso_type = h.gso_type;
	f->hdr.hdr_len = le16toh(h.hdr_len);
	f->hdr.gso_size = le16toh(h.gso_size);
	f->hdr.csum_start = le16toh(h.csum_start);
	f->hdr.csum_offset = le16toh(h.csum_offset);
	f->hdr.num_buffers = (uint16_t)nb;
	f->flags = 0;
	for (i = 0; i < nb; i++) {
		const struct vh_vq_driver_used *u = &rx->pend[(rx->pend_head + i) % rx->nbufs];
		uint32_t off = i == 0 ? (uint32_t)n->hdr_len : 0, len = u->len - off, take;

		total += len;
		take = len;
		if (f->buf && copied < f->cap) {
			if (take > f->cap - copied)
				take = f->cap - copied;
			memcpy((uint8_t *)f->buf + copied, rx->mem + u->token * n->rx_buf + off,
			       take);
			copied += take;
		}
	}
	f->len = copied;
	f->frame_len = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
	f->nbufs = (uint16_t)nb;
	if (total > copied)
		f->flags |= VH_NET_RX_TRUNCATED;
	for (i = 0; i < nb; i++) {
		rx->free[rx->nfree++] = (uint16_t)rx->pend[rx->pend_head].token;
		rx->pend_head = (rx->pend_head + 1) % rx->nbufs;
		rx->npend--;
	}
	return 1;
}

int vh_net_recv(struct vh_net *n, unsigned pair, struct vh_net_rx *frames, unsigned max,
		int timeout_ms)
{
	unsigned got = 0;
	int64_t deadline;
	int r;

	if (!n || pair >= n->pairs || (max && !frames))
		return -EINVAL;
	vhp_driver_deadline(n->drv, timeout_ms, &deadline);
	for (;;) {
		r = rx_collect(n, pair);
		if (r < 0)
			return got ? (int)got : r;
		while (got < max) {
			r = rx_frame(n, pair, &frames[got]);
			if (r < 0)
				return got ? (int)got : r;
			if (r == 0)
				break;
			got++;
		}
		if (got || timeout_ms == 0 || max == 0 || vhp_driver_remaining_ms(deadline) == 0)
			break;
		r = vh_driver_wait(n->drv, 2 * pair, vhp_driver_remaining_ms(deadline));
		if (r == -ENODATA) {
			/* Nothing posted: post what is free and wait once more, unless empty. */
			r = vh_net_rx_refill(n, pair);
			if (r < 0)
				return r;
			if (r == 0)
				break;
			continue;
		}
		if (r == -ETIMEDOUT)
			break;
		if (r < 0)
			return r;
	}
	r = vh_net_rx_refill(n, pair);
	if (r < 0 && !got)
		return r;
	return (int)got;
}
