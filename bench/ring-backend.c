/* SPDX-License-Identifier: MIT */
/*
 * vhbench-ring: the W0 back-end. A vhost-user back-end (protocol server from backend.h, rings
 * from ring.h) that pops every available chain and pushes it back untouched (used length 0),
 * so the benchmark prices the ring layer and nothing else. One thread busy-polls every started
 * ring with kicks disabled; control messages are read between polls.
 *
 * The data path is one function per poll, ring_poll(), kept out of line so callgrind can count
 * it by name; pushes go through vh_vq_push_batch() only for non-empty polls, so
 * calls(ring_poll) - calls(vh_vq_push_batch) is the number of empty polls.
 *
 * On SIGINT/SIGTERM or (with --once) when the front-end disconnects, prints its counters and
 * exits.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvhost/backend.h>
#include <libvhost/memory.h>
#include <libvhost/ring.h>
#include <libvhost/wire.h>

#define MAXQ 16
#define BATCH 32
#define IOV_PER_ELEM 8

struct ring {
	struct vh_vq *vq;
	/* element storage set up once, so a poll does not re-initialise it */
	struct vh_vq_elem el[BATCH];
	struct iovec iov[BATCH][IOV_PER_ELEM];
	struct vh_vq_used u[BATCH];
	int call_fd;  /* borrowed from the protocol server */
	int enabled;
	uint64_t polls, empty, reqs;
};

struct dev {
	struct vh_backend *be;
	struct vh_memory *mem;
	struct ring q[MAXQ];
	unsigned nq;
	unsigned running;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void stop_ring(struct dev *d, unsigned idx)
{
	if (d->q[idx].vq) {
		vh_vq_free(d->q[idx].vq);
		d->q[idx].vq = NULL;
		d->running--;
	}
}

static void replace_mem(struct dev *d, struct vh_memory *m)
{
	for (unsigned i = 0; i < d->nq; i++)
		if (d->q[i].vq)
			vh_vq_set_memory(d->q[i].vq, m);
	vh_memory_unref(d->mem);
	d->mem = m;
}

static int cb_set_mem_table(struct vh_backend *be, struct vh_backend_mem_region *regions,
			    unsigned n, int *fds)
{
	struct dev *d = vh_backend_opaque(be);
	struct vh_mem_region r[8];
	struct vh_memory *m;
	int ret;

	if (n > 8)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		r[i] = regions[i].r;
	ret = vh_memory_map(&m, r, fds, n, NULL);
	if (ret)
		return ret;
	replace_mem(d, m);
	return 0;
}

static int cb_add_mem_reg(struct vh_backend *be, const struct vh_backend_mem_region *region,
			  int *fd)
{
	struct dev *d = vh_backend_opaque(be);
	struct vh_memory *m;
	int ret;

	if (!d->mem && (ret = vh_memory_new_empty(&d->mem, NULL)))
		return ret;
	ret = vh_memory_add(&m, d->mem, &region->r, *fd);
	if (ret)
		return ret;
	replace_mem(d, m);
	return 0;
}

static int cb_rem_mem_reg(struct vh_backend *be, const struct vh_backend_mem_region *region)
{
	struct dev *d = vh_backend_opaque(be);
	struct vh_memory *m;
	int ret;

	if (!d->mem)
		return -ENOENT;
	ret = vh_memory_remove(&m, d->mem, &region->r);
	if (ret)
		return ret;
	replace_mem(d, m);
	return 0;
}

static int cb_set_vring_call(struct vh_backend *be, unsigned idx, int fd)
{
	struct dev *d = vh_backend_opaque(be);

	if (idx >= d->nq)
		return -ERANGE;
	d->q[idx].call_fd = fd;
	return 0;
}

static int cb_set_vring_enable(struct vh_backend *be, unsigned idx, int enable)
{
	struct dev *d = vh_backend_opaque(be);

	if (idx >= d->nq)
		return -ERANGE;
	d->q[idx].enabled = enable;
	return 0;
}

static int cb_set_vring_kick(struct vh_backend *be, unsigned idx, int fd)
{
	struct dev *d = vh_backend_opaque(be);
	struct vh_backend_vring v;
	struct vh_vq_config cfg;
	int ret;

	(void)fd; /* polled: the kick fd is never read */
	if (idx >= d->nq || !d->mem)
		return -EINVAL;
	ret = vh_backend_get_vring(be, idx, &v);
	if (ret)
		return ret;
	stop_ring(d, idx);
	cfg = (struct vh_vq_config){
		.num = v.num,
		.features = vh_backend_features(be),
		.addr_kind = VH_VQ_ADDR_UADDR,
		.desc_addr = v.addr.desc_user_addr,
		.driver_addr = v.addr.avail_user_addr,
		.device_addr = v.addr.used_user_addr,
		.base = { v.base.last_avail_idx, v.base.last_used_idx, v.base.avail_wrap_counter,
			  v.base.used_wrap_counter },
		.mem = d->mem,
	};
	ret = vh_vq_new(&d->q[idx].vq, &cfg);
	if (ret)
		return ret;
	vh_vq_disable_notify(d->q[idx].vq);
	/* Without bit 30 every ring is enabled once started. */
	if (!(vh_backend_features(be) & VH_BIT(VH_USER_F_PROTOCOL_FEATURES)))
		d->q[idx].enabled = 1;
	d->running++;
	return 0;
}

static int cb_get_vring_base(struct vh_backend *be, unsigned idx,
			     struct vh_backend_vring_base *base)
{
	struct dev *d = vh_backend_opaque(be);
	struct vh_vq_base b;

	if (idx >= d->nq || !d->q[idx].vq)
		return 0;
	vh_vq_get_base(d->q[idx].vq, &b);
	base->last_avail_idx = b.last_avail_idx;
	base->last_used_idx = b.used_idx;
	base->avail_wrap_counter = b.avail_wrap;
	base->used_wrap_counter = b.used_wrap;
	stop_ring(d, idx);
	return 0;
}

static void cb_disconnected(struct vh_backend *be)
{
	struct dev *d = vh_backend_opaque(be);

	for (unsigned i = 0; i < d->nq; i++) {
		stop_ring(d, i);
		d->q[i].call_fd = -1;
		d->q[i].enabled = 0;
	}
	vh_memory_unref(d->mem);
	d->mem = NULL;
}

/* One poll of one ring: pop a batch, push it back untouched, notify if asked. */
__attribute__((noinline)) int ring_poll(struct ring *r)
{
	struct vh_vq_elem *el = r->el;
	struct vh_vq_used *u = r->u;
	int n;

	r->polls++;
	n = vh_vq_pop_batch(r->vq, el, BATCH);
	if (n <= 0) {
		r->empty++;
		return n;
	}
	for (int i = 0; i < n; i++)
		u[i] = (struct vh_vq_used){ el[i].id, 0 };
	if (vh_vq_push_batch(r->vq, u, (unsigned)n))
		return -EIO;
	if (vh_vq_should_notify(r->vq) > 0 && r->call_fd >= 0) {
		uint64_t one = 1;

		if (write(r->call_fd, &one, sizeof(one)) < 0)
			return -errno;
	}
	r->reqs += (unsigned)n;
	return n;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", 1, 0, 's' }, { "queues", 1, 0, 'q' }, { "once", 0, 0, 'o' },
		{ "no-packed", 0, 0, 'P' }, { 0, 0, 0, 0 },
	};
	static struct dev d;
	const char *path = NULL;
	int once = 0, packed = 1, c, ret;

	d.nq = 8;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': path = optarg; break;
		case 'q': d.nq = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'o': once = 1; break;
		case 'P': packed = 0; break;
		default:
			fprintf(stderr, "usage: vhbench-ring --socket PATH [--queues N] [--once]\n");
			return 1;
		}
	}
	if (!path || !d.nq || d.nq > MAXQ) {
		fprintf(stderr, "usage: vhbench-ring --socket PATH [--queues N<=%d] [--once]\n", MAXQ);
		return 1;
	}
	for (unsigned i = 0; i < MAXQ; i++) {
		d.q[i].call_fd = -1;
		for (unsigned k = 0; k < BATCH; k++) {
			d.q[i].el[k].iov = d.q[i].iov[k];
			d.q[i].el[k].iov_cap = IOV_PER_ELEM;
		}
	}

	struct vh_backend_config cfg = {
		.features = VH_BIT(VH_F_VERSION_1) | VH_BIT(VH_F_EVENT_IDX) |
			    VH_BIT(VH_F_INDIRECT_DESC) | (packed ? VH_BIT(VH_F_RING_PACKED) : 0),
		.protocol_features = VH_BIT(VH_USER_PROTOCOL_F_MQ) |
				     VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK) |
				     VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
		.num_queues = d.nq,
		.max_mem_slots = VH_MEMORY_MAX_REGIONS,
	};
	struct vh_backend_ops ops = {
		.set_mem_table = cb_set_mem_table,
		.add_mem_reg = cb_add_mem_reg,
		.rem_mem_reg = cb_rem_mem_reg,
		.set_vring_call = cb_set_vring_call,
		.set_vring_kick = cb_set_vring_kick,
		.set_vring_enable = cb_set_vring_enable,
		.get_vring_base = cb_get_vring_base,
		.disconnected = cb_disconnected,
	};

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	ret = vh_backend_new(&d.be, &cfg, &ops, &d);
	if (ret || (ret = vh_backend_listen(d.be, path))) {
		fprintf(stderr, "vhbench-ring: %s: %s\n", path, strerror(-ret));
		return 2;
	}
	int served = 0;

	while (!stop_flag) {
		if (!d.running) {
			ret = vh_backend_poll(d.be, 200);
		} else {
			/* Busy-poll the rings; look at the control socket every 256 rounds. */
			for (unsigned k = 0; k < 256; k++)
				for (unsigned i = 0; i < d.nq; i++)
					if (d.q[i].vq && d.q[i].enabled && ring_poll(&d.q[i]) < 0) {
						fprintf(stderr, "vhbench-ring: ring %u broken: %s\n", i,
							vh_vq_fault_name(vh_vq_fault(d.q[i].vq)));
						stop_ring(&d, i);
					}
			ret = vh_backend_poll(d.be, 0);
		}
		if (ret == 0 && vh_backend_is_connected(d.be))
			served = 1;
		if (ret < 0 && ret != -EAGAIN) {
			if (once && served)
				break;
			if (ret == -ENOTCONN)
				break;
		}
	}
	uint64_t polls = 0, empty = 0, reqs = 0;

	for (unsigned i = 0; i < MAXQ; i++) {
		polls += d.q[i].polls;
		empty += d.q[i].empty;
		reqs += d.q[i].reqs;
	}
	fprintf(stderr, "vhbench-ring: polls=%" PRIu64 " empty=%" PRIu64 " requests=%" PRIu64 "\n",
		polls, empty, reqs);
	cb_disconnected(d.be);
	vh_backend_free(d.be);
	return 0;
}
