/* SPDX-License-Identifier: MIT */
/*
 * Driver side, generic part: one set-up sequence for every transport (device.h), guest memory
 * from a memfd, driver rings from the ring layer, kick/call eventfds and bounded waits.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <libvhost/driver.h>
#include <libvhost/frontend.h>
#include <libvhost/memory.h>
#include <libvhost/ring.h>
#include <libvhost/vdpa.h>
#include "driver_internal.h"
#include "internal.h"

#define DEFAULT_QUEUE_SIZE 256u
#define PAGE 4096u
/* Sleep between looks at a used ring in POLL mode: long enough not to burn a core. */
#define POLL_SLEEP_NS 50000L

/* Device feature bits (0-23 and 41-63); 24-40 are the transport's. */
#define DEVICE_BITS (0xffffffull | ~((1ull << 41) - 1))

struct drv_queue {
	struct vh_vq_driver *vq;
	unsigned size;
	int kick_fd;
	int call_fd;
	int configured; /* the device knows this ring (stop it on free) */
	uint64_t kicks;  /* relaxed atomics: read by vh_driver_kicks() from any thread */
	uint64_t calls;
};

struct vh_driver {
	struct vh_device *dev;
	struct vh_logger log;
	int timeout_ms;
	unsigned flags;
	uint64_t offered;
	uint64_t features;
	int has_status;
	uint8_t status;
	int started;    /* vh_driver_start() was called */
	int mem_sent;
	int err;        /* sticky, atomic */
	struct vh_guest_mem *gm;
	unsigned nq;
	struct drv_queue *q;
	int attached;
	void (*detach)(void *opaque, struct vh_driver *drv);
	void *opaque;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int vhp_driver_deadline(const struct vh_driver *d, int timeout_ms, int64_t *deadline)
{
	int ms = timeout_ms < 0 ? d->timeout_ms : timeout_ms;

	*deadline = now_ns() + (int64_t)ms * 1000000;
	return ms;
}

int vhp_driver_remaining_ms(int64_t deadline)
{
	int64_t left = deadline - now_ns();

	if (left <= 0)
		return 0;
	left = (left + 999999) / 1000000;
	return left > 3600000 ? 3600000 : (int)left;
}

int vhp_driver_fail(struct vh_driver *d, int err)
{
	int zero = 0;

	if (__atomic_compare_exchange_n(&d->err, &zero, err, 0, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED))
		vhp_err(&d->log, "driver: device unusable: %s", strerror(-err));
	return __atomic_load_n(&d->err, __ATOMIC_RELAXED);
}

int vh_driver_error(const struct vh_driver *d)
{
	return d ? __atomic_load_n(&d->err, __ATOMIC_RELAXED) : -EINVAL;
}

static int no_op(int r)
{
	return r == -EOPNOTSUPP || r == -ENOTSUP || r == -ENOTTY;
}

/* ---- Status ------------------------------------------------------------------------------ */

static int status_set(struct vh_driver *d, uint8_t s)
{
	int r = vh_device_set_status(d->dev, s);

	if (r == 0)
		d->status = s;
	return r;
}

/* After writing a status with FEATURES_OK or DRIVER_OK: read it back where the transport can. */
static int status_check(struct vh_driver *d, uint8_t must)
{
	uint8_t s = 0;
	int r = vh_device_get_status(d->dev, &s);

	if (no_op(r))
		return 0;
	if (r < 0)
		return r;
	if ((s & must) != must || (s & (VH_STATUS_NEEDS_RESET | VH_STATUS_FAILED))) {
		vhp_err(&d->log, "driver: device status 0x%02x lacks 0x%02x", s, must);
		return must == VH_STATUS_FEATURES_OK ? -EOPNOTSUPP : -EIO;
	}
	return 0;
}

/* ---- Set-up ------------------------------------------------------------------------------- */

int vh_driver_new(struct vh_driver **out, struct vh_device *dev, const struct vh_driver_config *cfg)
{
	struct vh_driver *d;
	uint64_t wanted;
	int r;

	if (!out || !dev || !cfg || cfg->timeout_ms < 0)
		return -EINVAL;
	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->dev = dev;
	d->log = cfg->log;
	d->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : VH_DRIVER_DEFAULT_TIMEOUT_MS;
	d->flags = cfg->flags;

	r = vh_device_set_owner(dev);
	if (r == -EBUSY) /* the caller took ownership already */
		r = 0;
	if (r < 0) {
		vhp_err(&d->log, "driver: SET_OWNER: %s", strerror(-r));
		goto fail;
	}
	r = vh_device_get_features(dev, &d->offered);
	if (r < 0) {
		vhp_err(&d->log, "driver: GET_FEATURES: %s", strerror(-r));
		goto fail;
	}
	if ((d->offered & cfg->required) != cfg->required) {
		vhp_err(&d->log, "driver: device lacks required features 0x%llx",
			(unsigned long long)(cfg->required & ~d->offered));
		r = -EOPNOTSUPP;
		goto fail;
	}
	wanted = cfg->features & (DEVICE_BITS | VH_DRIVER_RING_FEATURES);

	if (vh_device_transport(dev) == VH_TRANSPORT_VDPA) {
		/* The whole virtio handshake; it adds VERSION_1 and ACCESS_PLATFORM. */
		r = vh_vdpa_negotiate(dev, wanted, &d->features);
		if (r < 0) {
			vhp_err(&d->log, "driver: vdpa negotiation: %s", strerror(-r));
			goto fail;
		}
		d->has_status = 1;
		d->status = VH_STATUS_ACKNOWLEDGE | VH_STATUS_DRIVER | VH_STATUS_FEATURES_OK;
	} else {
		d->features = d->offered & wanted;
		r = status_set(d, VH_STATUS_ACKNOWLEDGE);
		if (r == 0) {
			d->has_status = 1;
			r = status_set(d, VH_STATUS_ACKNOWLEDGE | VH_STATUS_DRIVER);
		} else if (no_op(r)) {
			r = 0; /* kernel vhost; vhost-user without STATUS */
		}
		if (r < 0)
			goto fail;
		r = vh_device_set_features(dev, d->features);
		if (r < 0) {
			vhp_err(&d->log, "driver: SET_FEATURES: %s", strerror(-r));
			goto fail;
		}
		if (d->has_status) {
			r = status_set(d, VH_STATUS_ACKNOWLEDGE | VH_STATUS_DRIVER |
						  VH_STATUS_FEATURES_OK);
			if (r == 0)
				r = status_check(d, VH_STATUS_FEATURES_OK);
			if (r < 0)
				goto fail;
		}
	}
	if ((d->features & cfg->required) != cfg->required) {
		r = -EOPNOTSUPP;
		goto fail;
	}
	vhp_info(&d->log, "driver: features offered 0x%llx, negotiated 0x%llx%s",
		 (unsigned long long)d->offered, (unsigned long long)d->features,
		 d->has_status ? ", with status" : "");
	*out = d;
	return 0;
fail:
	free(d);
	return r;
}

static unsigned round_down_pow2(unsigned v)
{
	while (v & (v - 1))
		v &= v - 1;
	return v;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Picks the ring size for queue i and the bytes the queue needs in guest memory. */
static int size_queue(struct vh_driver *d, unsigned i, unsigned want, unsigned indirect_max,
		      uint64_t *bytes)
{
	struct vh_vring_layout lay;
	unsigned max = 0, size = want;
	int r;

	r = vh_device_get_vring_max(d->dev, i, &max);
	if (r == 0 && max > 0 && size > max)
		size = max;
	else if (r < 0 && !no_op(r))
		return r;
	if (size > VH_VQ_MAX_SIZE)
		size = VH_VQ_MAX_SIZE;
	if (!(d->features & VH_VQ_F_RING_PACKED))
		size = round_down_pow2(size);
	if (size == 0)
		return -EINVAL;
	r = vh_vring_layout(size, d->features, &lay);
	if (r < 0)
		return r;
	d->q[i].size = size;
	*bytes = align_up(lay.total, PAGE);
	if ((d->features & VH_VQ_F_INDIRECT_DESC) && indirect_max >= 2)
		*bytes += align_up((uint64_t)size * indirect_max * 16u, PAGE);
	return 0;
}

static int make_queue(struct vh_driver *d, unsigned i, unsigned indirect_max)
{
	struct drv_queue *dq = &d->q[i];
	struct vh_vq_driver_config vc;
	struct vh_vring_layout lay;
	uint64_t gpa;
	void *host;
	int r;

	r = vh_vring_layout(dq->size, d->features, &lay);
	if (r < 0)
		return r;
	memset(&vc, 0, sizeof(vc));
	vc.num = dq->size;
	vc.features = d->features;
	r = vh_guest_mem_alloc(d->gm, lay.total, PAGE, &gpa, &host);
	if (r < 0)
		return r;
	vc.ring_host = host;
	vc.ring_gpa = gpa;
	vc.ring_size = lay.total;
	if ((d->features & VH_VQ_F_INDIRECT_DESC) && indirect_max >= 2) {
		size_t isz = (size_t)dq->size * indirect_max * 16u;

		r = vh_guest_mem_alloc(d->gm, isz, PAGE, &gpa, &host);
		if (r < 0)
			return r;
		vc.indirect_host = host;
		vc.indirect_gpa = gpa;
		vc.indirect_size = isz;
		vc.indirect_max = indirect_max;
	}
	vc.log = &d->log;
	return vh_vq_driver_new(&dq->vq, &vc);
}

static int configure_ring(struct vh_driver *d, unsigned i)
{
	struct drv_queue *dq = &d->q[i];
	struct vh_vq_driver_addrs a;
	struct vh_vring_addr va;
	struct vh_vq_base b;
	int r;

	r = vh_device_set_vring_num(d->dev, i, dq->size);
	if (r < 0)
		return r;
	dq->configured = 1;
	vh_vq_driver_base(dq->vq, &b);
	r = vh_device_set_vring_base(d->dev, i,
				     vh_vq_base_encode(&b, !!(d->features & VH_VQ_F_RING_PACKED)));
	if (r < 0)
		return r;
	vh_vq_driver_addrs(dq->vq, &a);
	memset(&va, 0, sizeof(va));
	va.index = i;
	va.desc_user_addr = (uint64_t)(uintptr_t)a.desc;
	va.avail_user_addr = (uint64_t)(uintptr_t)a.driver;
	va.used_user_addr = (uint64_t)(uintptr_t)a.device;
	va.log_guest_addr = a.device_gpa;
	r = vh_device_set_vring_addr(d->dev, &va);
	if (r < 0)
		return r;
	dq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dq->kick_fd < 0)
		return -errno;
	r = vh_device_set_vring_kick(d->dev, i, dq->kick_fd);
	if (r < 0)
		return r;
	/* A call eventfd in POLL mode too: back-ends such as libvhost-user fail on a ring
	 * without one. There, used-buffer notifications stay disabled instead. */
	dq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dq->call_fd < 0)
		return -errno;
	if (d->flags & VH_DRIVER_F_POLL)
		vh_vq_driver_disable_cb(dq->vq);
	return vh_device_set_vring_call(d->dev, i, dq->call_fd);
}

int vh_driver_start(struct vh_driver *d, const struct vh_driver_queues *qs)
{
	struct vh_guest_mem_opts mo;
	const struct vh_region *regions;
	uint64_t total = 0, bytes;
	unsigned i, nregions, want;
	int r;

	if (!d || !qs || qs->num_queues == 0 || qs->num_queues > VH_DRIVER_MAX_QUEUES)
		return -EINVAL;
	if (d->started)
		return -EBUSY;
	d->started = 1;
	d->q = calloc(qs->num_queues, sizeof(*d->q));
	if (!d->q)
		return vhp_driver_fail(d, -ENOMEM);
	d->nq = qs->num_queues;
	for (i = 0; i < d->nq; i++)
		d->q[i].kick_fd = d->q[i].call_fd = -1;
	d->detach = qs->detach;
	d->opaque = qs->opaque;

	want = qs->queue_size ? qs->queue_size : DEFAULT_QUEUE_SIZE;
	for (i = 0; i < d->nq; i++) {
		r = size_queue(d, i, want, qs->indirect_max, &bytes);
		if (r < 0)
			goto fail;
		total += bytes;
	}
	if (qs->mem_size > (1ull << 40)) {
		r = -EINVAL;
		goto fail;
	}
	total += align_up(qs->mem_size, PAGE) + PAGE;

	memset(&mo, 0, sizeof(mo));
	mo.size = total;
	if (vh_device_transport(d->dev) == VH_TRANSPORT_VDPA) {
		uint64_t first = 0, last = UINT64_MAX;

		/* The device sees GPAs as IOVAs: place the memory in its range. */
		r = vh_vdpa_get_iova_range(d->dev, &first, &last);
		if (r < 0 && !no_op(r))
			goto fail;
		mo.gpa_base = align_up(first, 1ull << 21);
		if (mo.gpa_base < first || mo.gpa_base > last || last - mo.gpa_base < total - 1) {
			r = -ERANGE;
			goto fail;
		}
	}
	r = vh_guest_mem_new_opts(&d->gm, &mo);
	if (r < 0)
		goto fail;
	for (i = 0; i < d->nq; i++) {
		r = make_queue(d, i, qs->indirect_max);
		if (r < 0)
			goto fail;
	}
	regions = vh_guest_mem_regions(d->gm, &nregions);
	r = vh_device_set_mem_table(d->dev, regions, nregions);
	if (r < 0) {
		vhp_err(&d->log, "driver: memory table: %s", strerror(-r));
		goto fail;
	}
	d->mem_sent = 1;
	for (i = 0; i < d->nq; i++) {
		r = configure_ring(d, i);
		if (r < 0) {
			vhp_err(&d->log, "driver: ring %u: %s", i, strerror(-r));
			goto fail;
		}
	}
	if (qs->attach) {
		r = qs->attach(qs->opaque, d);
		if (r < 0)
			goto fail;
		d->attached = 1;
	}
	for (i = 0; i < d->nq; i++) {
		r = vh_device_set_vring_enable(d->dev, i, 1);
		if (r < 0 && !no_op(r)) {
			vhp_err(&d->log, "driver: enable ring %u: %s", i, strerror(-r));
			goto fail;
		}
	}
	r = 0;
	if (vh_device_transport(d->dev) == VH_TRANSPORT_VDPA) {
		r = vh_vdpa_driver_ok(d->dev);
	} else if (d->has_status) {
		r = status_set(d, d->status | VH_STATUS_DRIVER_OK);
		if (r == 0)
			r = status_check(d, VH_STATUS_DRIVER_OK);
	}
	if (r < 0) {
		vhp_err(&d->log, "driver: DRIVER_OK: %s", strerror(-r));
		goto fail;
	}
	vhp_info(&d->log, "driver: %u queue(s) of %u entries, %s rings, memory %llu bytes", d->nq,
		 d->q[0].size, (d->features & VH_VQ_F_RING_PACKED) ? "packed" : "split",
		 (unsigned long long)total);
	return 0;
fail:
	if (r == 0)
		r = -EIO;
	return vhp_driver_fail(d, r);
}

static void stop_device(struct vh_driver *d)
{
	enum vh_transport t = vh_device_transport(d->dev);
	uint32_t base;
	unsigned i;

	if (t == VH_TRANSPORT_VDPA) {
		/* A reset stops every ring; then drop the DMA mappings of our memory. */
		(void)vh_vdpa_reset(d->dev);
		if (d->mem_sent)
			(void)vh_device_set_mem_table(d->dev, NULL, 0);
		return;
	}
	for (i = 0; i < d->nq; i++) {
		if (!d->q[i].configured)
			continue;
		(void)vh_device_set_vring_enable(d->dev, i, 0);
		(void)vh_device_get_vring_base(d->dev, i, &base);
	}
	if (d->attached && d->detach)
		d->detach(d->opaque, d);
	d->attached = 0;
	if (d->has_status)
		(void)vh_device_set_status(d->dev, 0);
	/* The kernel reads our memory through its table: empty it before we unmap. (A vhost-user
	 * back-end has its own mapping of the memfd.) */
	if (t == VH_TRANSPORT_KERNEL && d->mem_sent)
		(void)vh_device_set_mem_table(d->dev, NULL, 0);
}

void vh_driver_free(struct vh_driver *d)
{
	unsigned i;

	if (!d)
		return;
	if (d->started)
		stop_device(d);
	for (i = 0; i < d->nq; i++) {
		vhp_close(d->q[i].kick_fd);
		vhp_close(d->q[i].call_fd);
		vh_vq_driver_free(d->q[i].vq);
	}
	free(d->q);
	vh_guest_mem_free(d->gm);
	free(d);
}

/* ---- Accessors ---------------------------------------------------------------------------- */

struct vh_device *vh_driver_device(const struct vh_driver *d)
{
	return d ? d->dev : NULL;
}

uint64_t vh_driver_features_offered(const struct vh_driver *d)
{
	return d ? d->offered : 0;
}

uint64_t vh_driver_features(const struct vh_driver *d)
{
	return d ? d->features : 0;
}

unsigned vh_driver_num_queues(const struct vh_driver *d)
{
	return d ? d->nq : 0;
}

unsigned vh_driver_queue_size(const struct vh_driver *d, unsigned q)
{
	return d && q < d->nq && d->q[q].vq ? d->q[q].size : 0;
}

struct vh_vq_driver *vh_driver_vq(const struct vh_driver *d, unsigned q)
{
	return d && q < d->nq ? d->q[q].vq : NULL;
}

uint64_t vh_driver_kicks(const struct vh_driver *d)
{
	uint64_t n = 0;

	for (unsigned i = 0; d && i < d->nq; i++)
		n += __atomic_load_n(&d->q[i].kicks, __ATOMIC_RELAXED);
	return n;
}

uint64_t vh_driver_calls(const struct vh_driver *d)
{
	uint64_t n = 0;

	for (unsigned i = 0; d && i < d->nq; i++)
		n += __atomic_load_n(&d->q[i].calls, __ATOMIC_RELAXED);
	return n;
}

int vh_driver_call_fd(const struct vh_driver *d, unsigned q)
{
	return d && q < d->nq ? d->q[q].call_fd : -1;
}

const char *vh_driver_feature_name(unsigned bit)
{
	return vh_transport_feature_name(bit);
}

int vh_driver_alloc(struct vh_driver *d, size_t size, size_t align, void **host, uint64_t *gpa)
{
	if (!d || !d->gm || size == 0)
		return -EINVAL;
	return vh_guest_mem_alloc(d->gm, size, align ? align : 64, gpa, host);
}

int vh_driver_gpa(const struct vh_driver *d, const void *host, size_t len, uint64_t *gpa)
{
	if (!d || !d->gm || !gpa)
		return -EINVAL;
	return vh_guest_mem_host_to_gpa(d->gm, host, len ? len : 1, gpa);
}

/* ---- Data path ---------------------------------------------------------------------------- */

static struct drv_queue *queue_of(struct vh_driver *d, unsigned q, int *err)
{
	int e;

	*err = 0;
	if (!d || q >= d->nq || !d->q[q].vq) {
		*err = -EINVAL;
		return NULL;
	}
	e = __atomic_load_n(&d->err, __ATOMIC_RELAXED);
	if (e) {
		*err = e;
		return NULL;
	}
	return &d->q[q];
}

int vh_driver_add(struct vh_driver *d, unsigned q, const struct vh_vq_driver_req *reqs, unsigned n)
{
	struct drv_queue *dq;
	int r = 0;

	dq = queue_of(d, q, &r);
	if (!dq)
		return r;
	if (n && !reqs)
		return -EINVAL;
	r = vh_vq_driver_add_batch(dq->vq, reqs, n);
	if (r == -EIO)
		return vhp_driver_fail(d, -EIO);
	return r == -ENOSPC ? 0 : r;
}

int vh_driver_kick(struct vh_driver *d, unsigned q)
{
	static const uint64_t one = 1;
	struct drv_queue *dq;
	int r = 0;

	dq = queue_of(d, q, &r);
	if (!dq)
		return r;
	vh_vq_driver_publish(dq->vq);
	if (!vh_vq_driver_should_kick(dq->vq))
		return 0;
	/* EAGAIN only if the counter is about to overflow: the device has a kick pending. */
	if (write(dq->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	__atomic_fetch_add(&dq->kicks, 1, __ATOMIC_RELAXED);
	return 1;
}

int vh_driver_submit(struct vh_driver *d, unsigned q, const struct vh_vq_driver_req *reqs,
		     unsigned n)
{
	int r = vh_driver_add(d, q, reqs, n), k;

	if (r <= 0)
		return r;
	k = vh_driver_kick(d, q);
	return k < 0 ? k : r;
}

int vh_driver_get_used(struct vh_driver *d, unsigned q, struct vh_vq_driver_used *used,
		       unsigned max)
{
	struct drv_queue *dq;
	int r = 0;

	dq = queue_of(d, q, &r);
	if (!dq)
		return r;
	if (max && !used)
		return -EINVAL;
	r = vh_vq_driver_get_used(dq->vq, used, max);
	if (r < 0)
		return vhp_driver_fail(d, -EIO);
	return r;
}

/* A vhost-user back-end that hung up will never complete anything. */
static int peer_gone(struct vh_driver *d, struct pollfd *p)
{
	struct vh_frontend *fe = vh_device_frontend(d->dev);

	if (!fe)
		return 0;
	if (vh_frontend_error(fe))
		return 1;
	p->fd = vh_frontend_fd(fe);
	p->events = POLLRDHUP;
	p->revents = 0;
	return p->fd < 0;
}

int vh_driver_wait(struct vh_driver *d, unsigned q, int timeout_ms)
{
	struct drv_queue *dq;
	struct pollfd pfd[2];
	int64_t deadline;
	uint64_t v;
	int r = 0, left;

	dq = queue_of(d, q, &r);
	if (!dq)
		return r;
	if (vh_vq_driver_inflight(dq->vq) == 0)
		return -ENODATA;
	vhp_driver_deadline(d, timeout_ms, &deadline);
	for (;;) {
		/* enable_cb re-arms and tells whether completions are already there. */
		r = vh_vq_driver_enable_cb(dq->vq);
		if (r < 0)
			return vhp_driver_fail(d, -EIO);
		if (r > 0 || (d->flags & VH_DRIVER_F_POLL)) {
			/* Collecting now (or polling): no calls wanted until the next wait. */
			vh_vq_driver_disable_cb(dq->vq);
			if (r > 0)
				return 0;
		}
		left = vhp_driver_remaining_ms(deadline);
		if (left == 0) {
			vh_vq_driver_disable_cb(dq->vq);
			return -ETIMEDOUT;
		}
		if (d->flags & VH_DRIVER_F_POLL) {
			struct timespec ts = { 0, POLL_SLEEP_NS };

			if (peer_gone(d, &pfd[1]))
				return vhp_driver_fail(d, -ECONNRESET);
			/* Drain what a device signalled anyway, so the counter never fills. */
			if (read(dq->call_fd, &v, sizeof(v)) == sizeof(v))
				__atomic_fetch_add(&dq->calls, 1, __ATOMIC_RELAXED);
			nanosleep(&ts, NULL);
			continue;
		}
		pfd[0].fd = dq->call_fd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		if (peer_gone(d, &pfd[1]))
			return vhp_driver_fail(d, -ECONNRESET);
		r = poll(pfd, vh_device_frontend(d->dev) ? 2 : 1, left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		if (vh_device_frontend(d->dev) && (pfd[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return vhp_driver_fail(d, -ECONNRESET);
		if ((pfd[0].revents & POLLIN) && read(dq->call_fd, &v, sizeof(v)) == sizeof(v))
			__atomic_fetch_add(&dq->calls, 1, __ATOMIC_RELAXED);
	}
}
