/* SPDX-License-Identifier: MIT */
/*
 * An in-process virtio device behind the device-control interface (its own vh_device_ops), for
 * unit tests of the driver side without a peer process: a RAM-disk virtio-blk or a loopback
 * virtio-net (TX frames come back on RX, with mergeable buffers when negotiated). Like a
 * vhost-user back-end it maps the driver's memory through the region fds (a mapping of its
 * own), runs the device-side rings of the ring layer in a thread woken by the kick eventfds,
 * and signals the call eventfds. It can misbehave on purpose (enum fake_mode) to check that the
 * driver side turns a broken device into errors and never crashes or hangs.
 */
#ifndef LIBVHOST_DRIVER_FAKEDEV_H
#define LIBVHOST_DRIVER_FAKEDEV_H

#include <poll.h>
#include <pthread.h>
#include <sys/uio.h>

#include <libvhost/libvhost.h>
#include "testutil.h"

#define FAKE_MAXQ 8
#define FAKE_DISK (4u << 20)
#define FAKE_IOV 160

enum fake_kind { FAKE_BLK, FAKE_NET };

enum fake_mode {
	FAKE_OK = 0,
	FAKE_SILENT,         /* takes requests, never completes them */
	FAKE_NO_STATUS,      /* blk: completes without writing the status byte */
	FAKE_IOERR,          /* blk: status IOERR */
	FAKE_BAD_ID,         /* writes a used entry whose id was never made available */
	FAKE_USED_JUMP,      /* moves the used index far ahead */
	FAKE_BIG_LEN,        /* reports more bytes written than the buffer holds */
	FAKE_BAD_NUM_BUFFERS,/* net: num_buffers 0 in a mergeable RX header */
	FAKE_SPURIOUS_CALLS, /* signals the call eventfd all the time, completes nothing */
};

struct fake_q {
	unsigned num;
	uint32_t base;
	struct vh_vring_addr addr;
	int have_addr;
	int kick, call;
	int enabled;
	struct vh_vq *vq;
};

struct fake_dev {
	struct vh_device dev;        /* first: the handle the driver gets */
	enum fake_kind kind;
	uint64_t offered;
	uint64_t acked;
	uint8_t status;
	int refuse_features_ok;
	unsigned max_queues;
	unsigned vring_max;
	int mode;                    /* enum fake_mode, atomic */
	struct vh_memory *mem;
	struct fake_q q[FAKE_MAXQ];
	pthread_t thread;
	int running;
	int stop;                    /* atomic */
	uint8_t *disk;
	uint8_t config[60];
	uint32_t config_len;
	/* counters (device thread) */
	uint64_t requests, frames;
	char op_log[64];             /* device-control calls, one letter each, for order checks */
	unsigned nops;
};

static struct fake_dev *fake_of(struct vh_device *d)
{
	return (struct fake_dev *)d;
}

static void fake_op(struct fake_dev *f, char c)
{
	if (f->nops < sizeof(f->op_log) - 1)
		f->op_log[f->nops++] = c;
}

static int fk_get_features(struct vh_device *d, uint64_t *v)
{
	*v = fake_of(d)->offered;
	return 0;
}

static int fk_set_features(struct vh_device *d, uint64_t v)
{
	struct fake_dev *f = fake_of(d);

	if (v & ~f->offered)
		return -EINVAL;
	f->acked = v;
	fake_op(f, 'F');
	return 0;
}

static int fk_set_owner(struct vh_device *d)
{
	fake_op(fake_of(d), 'O');
	return 0;
}

static int fk_set_mem_table(struct vh_device *d, const struct vh_region *r, unsigned n)
{
	struct fake_dev *f = fake_of(d);
	struct vh_memory *m = NULL;
	int e;

	fake_op(f, 'M');
	if (n == 0) {
		vh_memory_unref(f->mem);
		f->mem = NULL;
		return 0;
	}
	e = vh_memory_map_regions(&m, r, n, NULL);
	if (e)
		return e;
	vh_memory_unref(f->mem);
	f->mem = m;
	return 0;
}

static int fk_set_vring_num(struct vh_device *d, unsigned i, unsigned num)
{
	if (i >= FAKE_MAXQ)
		return -ERANGE;
	fake_of(d)->q[i].num = num;
	return 0;
}

static int fk_set_vring_addr(struct vh_device *d, const struct vh_vring_addr *a)
{
	if (a->index >= FAKE_MAXQ)
		return -ERANGE;
	fake_of(d)->q[a->index].addr = *a;
	fake_of(d)->q[a->index].have_addr = 1;
	return 0;
}

static int fk_set_vring_base(struct vh_device *d, unsigned i, uint32_t b)
{
	if (i >= FAKE_MAXQ)
		return -ERANGE;
	fake_of(d)->q[i].base = b;
	return 0;
}

static void fake_stop(struct fake_dev *f);

static int fk_get_vring_base(struct vh_device *d, unsigned i, uint32_t *b)
{
	struct fake_dev *f = fake_of(d);

	if (i >= FAKE_MAXQ)
		return -ERANGE;
	fake_stop(f);
	*b = f->q[i].vq ? vh_vq_get_base_u32(f->q[i].vq) : f->q[i].base;
	return 0;
}

static int fk_set_fd(int *slot, int fd)
{
	if (*slot >= 0)
		close(*slot);
	*slot = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	return fd >= 0 && *slot < 0 ? -errno : 0;
}

static int fk_set_vring_kick(struct vh_device *d, unsigned i, int fd)
{
	return i < FAKE_MAXQ ? fk_set_fd(&fake_of(d)->q[i].kick, fd) : -ERANGE;
}

static int fk_set_vring_call(struct vh_device *d, unsigned i, int fd)
{
	return i < FAKE_MAXQ ? fk_set_fd(&fake_of(d)->q[i].call, fd) : -ERANGE;
}

static int fk_set_vring_enable(struct vh_device *d, unsigned i, int e)
{
	if (i >= FAKE_MAXQ)
		return -ERANGE;
	fake_of(d)->q[i].enabled = e;
	fake_op(fake_of(d), e ? 'E' : 'e');
	return 0;
}

static int fk_get_config(struct vh_device *d, uint32_t off, void *buf, uint32_t len)
{
	struct fake_dev *f = fake_of(d);

	if (off > f->config_len || len > f->config_len - off)
		return -EINVAL;
	memcpy(buf, f->config + off, len);
	return 0;
}

static int fk_get_status(struct vh_device *d, uint8_t *s)
{
	*s = fake_of(d)->status;
	return 0;
}

static void fake_start(struct fake_dev *f);

static int fk_set_status(struct vh_device *d, uint8_t s)
{
	struct fake_dev *f = fake_of(d);

	fake_op(f, 'S');
	if (f->refuse_features_ok)
		s &= (uint8_t)~VH_STATUS_FEATURES_OK;
	if (s == 0)
		fake_stop(f);
	f->status = s;
	if ((s & VH_STATUS_DRIVER_OK) && !f->running)
		fake_start(f);
	return 0;
}

static int fk_get_queue_num(struct vh_device *d, unsigned *n)
{
	*n = fake_of(d)->max_queues;
	return 0;
}

static int fk_get_vring_max(struct vh_device *d, unsigned i, unsigned *n)
{
	(void)i;
	*n = fake_of(d)->vring_max;
	return 0;
}

static void fk_close(struct vh_device *d)
{
	struct fake_dev *f = fake_of(d);

	fake_stop(f);
	for (unsigned i = 0; i < FAKE_MAXQ; i++) {
		if (f->q[i].kick >= 0)
			close(f->q[i].kick);
		if (f->q[i].call >= 0)
			close(f->q[i].call);
	}
	vh_memory_unref(f->mem);
	free(f->disk);
	free(f);
}

static const struct vh_device_ops fake_ops = {
	.get_features = fk_get_features,
	.set_features = fk_set_features,
	.set_owner = fk_set_owner,
	.set_mem_table = fk_set_mem_table,
	.set_vring_num = fk_set_vring_num,
	.set_vring_addr = fk_set_vring_addr,
	.set_vring_base = fk_set_vring_base,
	.get_vring_base = fk_get_vring_base,
	.set_vring_kick = fk_set_vring_kick,
	.set_vring_call = fk_set_vring_call,
	.set_vring_enable = fk_set_vring_enable,
	.get_config = fk_get_config,
	.get_status = fk_get_status,
	.set_status = fk_set_status,
	.get_queue_num = fk_get_queue_num,
	.get_vring_max = fk_get_vring_max,
	.close = fk_close,
};

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#define FAKE_BLK_FEATURES                                                                  \
	(VH_BIT(VH_BLK_F_SIZE_MAX) | VH_BIT(VH_BLK_F_SEG_MAX) | VH_BIT(VH_BLK_F_BLK_SIZE) |  \
	 VH_BIT(VH_BLK_F_FLUSH) | VH_BIT(VH_BLK_F_MQ) | VH_BIT(VH_BLK_F_DISCARD) |            \
	 VH_BIT(VH_BLK_F_WRITE_ZEROES) | VH_DRIVER_RING_FEATURES)
#define FAKE_NET_FEATURES                                                                  \
	(VH_BIT(VH_NET_F_MAC) | VH_BIT(VH_NET_F_MTU) | VH_BIT(VH_NET_F_STATUS) |              \
	 VH_BIT(VH_NET_F_MRG_RXBUF) | VH_BIT(VH_NET_F_CTRL_VQ) | VH_DRIVER_RING_FEATURES)

static struct fake_dev *fake_new(enum fake_kind kind, uint64_t offered)
{
	struct fake_dev *f = calloc(1, sizeof(*f));

	f->dev.ops = &fake_ops;
	f->dev.transport = VH_TRANSPORT_USER;
	f->kind = kind;
	f->offered = offered;
	f->max_queues = 4;
	f->vring_max = 1024;
	for (unsigned i = 0; i < FAKE_MAXQ; i++)
		f->q[i].kick = f->q[i].call = -1;
	if (kind == FAKE_BLK) {
		f->disk = calloc(1, FAKE_DISK);
		put_le(f->config, FAKE_DISK / 512, 8);     /* capacity */
		put_le(f->config + 8, 4096, 4);            /* size_max */
		put_le(f->config + 12, 8, 4);              /* seg_max */
		put_le(f->config + 20, 512, 4);            /* blk_size */
		put_le(f->config + 34, 4, 2);              /* num_queues */
		put_le(f->config + 36, 2048, 4);           /* max_discard_sectors */
		put_le(f->config + 40, 1, 4);
		put_le(f->config + 48, 2048, 4);           /* max_write_zeroes_sectors */
		put_le(f->config + 52, 1, 4);
		f->config_len = 60;
	} else {
		memcpy(f->config, (const uint8_t[6]){ 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, 6);
		put_le(f->config + 6, 1, 2);                /* link up */
		put_le(f->config + 8, 1, 2);
		put_le(f->config + 10, 1500, 2);
		f->config_len = 12;
	}
	return f;
}

static void fake_set_mode(struct fake_dev *f, enum fake_mode m)
{
	__atomic_store_n(&f->mode, (int)m, __ATOMIC_RELEASE);
}

static enum fake_mode fake_mode(struct fake_dev *f)
{
	return (enum fake_mode)__atomic_load_n(&f->mode, __ATOMIC_ACQUIRE);
}

/* ---- Raw ring writes for the hostile modes (split rings) ---------------------------------- */

static void raw_used(struct fake_dev *f, unsigned qi, uint32_t id, uint32_t len, uint16_t bump)
{
	struct fake_q *q = &f->q[qi];
	uint8_t *used = vh_memory_uaddr_to_host(f->mem, q->addr.used_user_addr, 4 + 8u * q->num);
	uint16_t idx;

	if (!used || (f->acked & VH_VQ_F_RING_PACKED))
		return;
	idx = __atomic_load_n((uint16_t *)(used + 2), __ATOMIC_RELAXED);
	put_le(used + 4 + 8u * (idx % q->num), id, 4);
	put_le(used + 8 + 8u * (idx % q->num), len, 4);
	__atomic_store_n((uint16_t *)(used + 2), (uint16_t)(idx + bump), __ATOMIC_RELEASE);
}

static void fake_notify(struct fake_dev *f, unsigned qi)
{
	uint64_t one = 1;

	if (vh_vq_should_notify(f->q[qi].vq) > 0 && f->q[qi].call >= 0 &&
	    write(f->q[qi].call, &one, sizeof(one)) < 0) {
		/* counter full: the driver has a notification pending anyway */
	}
}

/* ---- Device behaviour --------------------------------------------------------------------- */

static void blk_request(struct fake_dev *f, unsigned qi, struct vh_vq_elem *e)
{
	uint8_t hdr[16], range[16], st = 0;
	uint64_t sector, off;
	uint32_t type, written = 0;
	enum fake_mode m = fake_mode(f);
	const struct iovec *in = e->iov + e->out_num;

	if (e->out_len < 16 || e->in_len < 1) {
		vh_vq_push(f->q[qi].vq, e->id, 0);
		return;
	}
	vh_iov_to_buf(e->iov, e->out_num, 0, hdr, 16);
	type = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8;
	memcpy(&sector, hdr + 8, 8);
	off = sector * 512;
	switch (type) {
	case 0: /* IN */
		if (off > FAKE_DISK || e->in_len - 1 > FAKE_DISK - off) {
			st = 1;
			break;
		}
		written = (uint32_t)vh_buf_to_iov(in, e->in_num, 0, f->disk + off, e->in_len - 1);
		break;
	case 1: /* OUT */
		if (off > FAKE_DISK || e->out_len - 16 > FAKE_DISK - off) {
			st = 1;
			break;
		}
		vh_iov_to_buf(e->iov, e->out_num, 16, f->disk + off, e->out_len - 16);
		break;
	case 4: /* FLUSH */
		break;
	case 8: /* GET_ID */
		written = (uint32_t)vh_buf_to_iov(in, e->in_num, 0, "fake-blk-0123456789abc", 20);
		break;
	case 11: /* DISCARD */
	case 13: { /* WRITE_ZEROES */
		uint64_t s;
		uint32_t n;

		vh_iov_to_buf(e->iov, e->out_num, 16, range, 16);
		memcpy(&s, range, 8);
		memcpy(&n, range + 8, 4);
		if (s * 512 > FAKE_DISK || (uint64_t)n * 512 > FAKE_DISK - s * 512)
			st = 1;
		else
			memset(f->disk + s * 512, 0, (size_t)n * 512);
		break;
	}
	default:
		st = 2;
	}
	if (m == FAKE_IOERR)
		st = 1;
	if (m != FAKE_NO_STATUS)
		vh_buf_to_iov(in, e->in_num, e->in_len - 1, &st, 1);
	f->requests++;
	vh_vq_push(f->q[qi].vq, e->id, m == FAKE_NO_STATUS ? written : written + 1);
}

/* Loops one TX frame (header + data) into RX buffers. */
static void net_frame(struct fake_dev *f, unsigned pair, const uint8_t *fr, size_t len)
{
	struct vh_vq *rx = f->q[2 * pair].vq;
	int mrg = !!(f->acked & VH_BIT(VH_NET_F_MRG_RXBUF));
	size_t hlen = mrg || (f->acked & VH_BIT(32)) ? 12 : 10, done = 0;
	struct iovec iov[8][FAKE_IOV];
	struct vh_vq_elem el[8];
	struct vh_vq_used used[8];
	unsigned n = 0;
	uint8_t h[12];

	memcpy(h, fr, hlen);
	while (done < len && n < 8) {
		el[n].iov = iov[n];
		el[n].iov_gpa = NULL;
		el[n].iov_cap = FAKE_IOV;
		if (vh_vq_pop(rx, &el[n]) != 1)
			break;
		size_t take = el[n].in_len < len - done ? el[n].in_len : len - done;

		vh_buf_to_iov(el[n].iov + el[n].out_num, el[n].in_num, 0, fr + done, take);
		used[n] = (struct vh_vq_used){ el[n].id, (uint32_t)take };
		done += take;
		n++;
		if (!mrg)
			break;
	}
	if (n == 0)
		return; /* no RX buffer: dropped */
	put_le(h + 10, fake_mode(f) == FAKE_BAD_NUM_BUFFERS ? 0 : n, 2);
	if (hlen == 12)
		vh_buf_to_iov(el[0].iov + el[0].out_num, el[0].in_num, 0, h, hlen);
	if (fake_mode(f) == FAKE_BIG_LEN) {
		raw_used(f, 2 * pair, el[0].id, 1u << 20, 1);
		return;
	}
	vh_vq_push_batch(rx, used, n);
	f->frames++;
	fake_notify(f, 2 * pair);
}

static void serve_queue(struct fake_dev *f, unsigned qi)
{
	static __thread struct iovec iov[16][FAKE_IOV];
	static __thread uint8_t frame[70000];
	struct vh_vq_elem el[16];
	enum fake_mode m = fake_mode(f);
	struct vh_vq *vq = f->q[qi].vq;
	int n;

	if (f->kind == FAKE_NET && qi % 2 == 0)
		return; /* RX rings are filled from TX */
	if (m == FAKE_SPURIOUS_CALLS) {
		uint64_t one = 1;

		if (write(f->q[qi].call, &one, sizeof(one)) < 0) {
			/* full counter */
		}
		return;
	}
	for (unsigned i = 0; i < 16; i++) {
		el[i].iov = iov[i];
		el[i].iov_gpa = NULL;
		el[i].iov_cap = FAKE_IOV;
	}
	while ((n = vh_vq_pop_batch(vq, el, 16)) > 0) {
		for (int i = 0; i < n; i++) {
			if (m == FAKE_SILENT)
				continue;
			if (m == FAKE_BAD_ID) {
				raw_used(f, qi, f->q[qi].num + 5, 0, 1);
				continue;
			}
			if (m == FAKE_USED_JUMP) {
				raw_used(f, qi, el[i].id, 0, 1000);
				continue;
			}
			if (m == FAKE_BIG_LEN && f->kind == FAKE_BLK) {
				raw_used(f, qi, el[i].id, 1u << 20, 1);
				continue;
			}
			if (f->kind == FAKE_BLK) {
				blk_request(f, qi, &el[i]);
			} else {
				size_t len = vh_iov_to_buf(el[i].iov, el[i].out_num, 0, frame,
							   sizeof(frame));

				net_frame(f, qi / 2, frame, len);
				vh_vq_push(vq, el[i].id, 0);
			}
		}
		if (m == FAKE_OK || m == FAKE_NO_STATUS || m == FAKE_IOERR ||
		    m == FAKE_BAD_NUM_BUFFERS || (m == FAKE_BIG_LEN && f->kind == FAKE_NET))
			fake_notify(f, qi);
		else if (f->q[qi].call >= 0) {
			uint64_t one = 1;

			if (write(f->q[qi].call, &one, sizeof(one)) < 0) {
				/* full counter */
			}
		}
	}
}

static void *fake_thread(void *arg)
{
	struct fake_dev *f = arg;
	struct pollfd p[FAKE_MAXQ];
	unsigned idx[FAKE_MAXQ], n = 0;
	uint64_t v;

	for (unsigned i = 0; i < FAKE_MAXQ; i++) {
		if (f->q[i].vq && f->q[i].kick >= 0) {
			p[n].fd = f->q[i].kick;
			p[n].events = POLLIN;
			idx[n++] = i;
		}
	}
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		for (unsigned i = 0; i < n; i++)
			serve_queue(f, idx[i]);
		if (poll(p, n, 5) > 0)
			for (unsigned i = 0; i < n; i++)
				if ((p[i].revents & POLLIN) && read(p[i].fd, &v, sizeof(v)) < 0) {
					/* spurious */
				}
	}
	return NULL;
}

static void fake_start(struct fake_dev *f)
{
	for (unsigned i = 0; i < FAKE_MAXQ; i++) {
		struct fake_q *q = &f->q[i];
		struct vh_vq_config c;

		if (!q->have_addr || !q->enabled || !f->mem)
			continue;
		memset(&c, 0, sizeof(c));
		c.num = q->num;
		c.features = f->acked;
		c.addr_kind = VH_VQ_ADDR_UADDR;
		c.desc_addr = q->addr.desc_user_addr;
		c.driver_addr = q->addr.avail_user_addr;
		c.device_addr = q->addr.used_user_addr;
		vh_vq_base_decode(q->base, !!(f->acked & VH_VQ_F_RING_PACKED), &c.base);
		c.mem = f->mem;
		if (vh_vq_new(&q->vq, &c) != 0)
			fprintf(stderr, "fake: ring %u refused\n", i);
	}
	__atomic_store_n(&f->stop, 0, __ATOMIC_RELEASE);
	if (pthread_create(&f->thread, NULL, fake_thread, f) == 0)
		f->running = 1;
}

static void fake_stop(struct fake_dev *f)
{
	if (f->running) {
		__atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
		pthread_join(f->thread, NULL);
		f->running = 0;
	}
	for (unsigned i = 0; i < FAKE_MAXQ; i++) {
		if (f->q[i].vq)
			f->q[i].base = vh_vq_get_base_u32(f->q[i].vq);
		vh_vq_free(f->q[i].vq);
		f->q[i].vq = NULL;
	}
}

#endif
