/* SPDX-License-Identifier: MIT */
/*
 * vhost-user-rng: a virtio entropy device (virtio-rng, device id 4) served over vhost-user.
 *
 * The smallest complete device server on libvhost's back-end framework (server.h): one queue
 * whose buffers the driver offers writable; the device fills them from getrandom() and returns
 * them. docs/tutorial-rng.md walks through this file.
 *
 *   vhost-user-rng --socket-path=/tmp/rng.sock
 *   qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=1G,share=on \
 *       -numa node,memdev=mem -chardev socket,id=rng0,path=/tmp/rng.sock \
 *       -device vhost-user-rng-pci,chardev=rng0
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <libvhost/server.h>

#include "common/devserver.h"

/* The most bytes one request gets: a huge chain (up to 4 GiB) must not stall the queue. */
#define RNG_MAX_PER_REQUEST (64u * 1024)
/* Elements popped per round: enough to batch the used-index update and the notification. */
#define RNG_BATCH 32u

struct rng_dev {
	uint64_t max_bytes;              /* --max-bytes per request */
	_Atomic uint64_t requests, bytes, errors;
};

/* Fills up to `max` bytes of the element's writable pieces; returns the count written. */
static uint32_t fill_random(const struct vh_vq_elem *e, uint64_t max)
{
	uint64_t done = 0;

	/* Readable pieces come first (iov[0..out_num)); virtio-rng has none, and any the driver
	 * sent anyway are ignored. */
	for (uint32_t i = e->out_num; i < e->out_num + e->in_num && done < max; i++) {
		uint8_t *p = e->iov[i].iov_base;
		size_t want = e->iov[i].iov_len;

		if (want > max - done)
			want = (size_t)(max - done);
		while (want) {
			ssize_t n = getrandom(p, want, 0);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				return (uint32_t)done;  /* report what was really written */
			}
			p += n;
			want -= (size_t)n;
			done += (uint64_t)n;
		}
	}
	return (uint32_t)done;
}

/* The data path: runs on the queue's worker thread whenever the queue may have work. */
static void rng_process(void *opaque, struct vh_server_queue *q)
{
	struct rng_dev *dev = opaque;
	struct vh_vq_elem elems[RNG_BATCH];
	struct vh_vq_used used[RNG_BATCH];

	/* Leaving iov/iov_cap zero lets the server supply the iovec storage (its pointers count
	 * as "none given" when the array is reused). */
	memset(elems, 0, sizeof(elems));
	for (;;) {
		int n = vh_server_queue_pop(q, elems, RNG_BATCH);

		if (n <= 0)
			break;  /* 0: ring empty (the kick is re-armed); <0: the ring is broken */
		for (int i = 0; i < n; i++) {
			uint64_t want = elems[i].in_len < dev->max_bytes ? elems[i].in_len
									  : dev->max_bytes;

			used[i].id = elems[i].id;
			used[i].len = 0;
			/* A disabled queue is processed without side effects: nothing is written. */
			if (!vh_server_queue_enabled(q))
				continue;
			used[i].len = fill_random(&elems[i], want);
			if (used[i].len < want)
				atomic_fetch_add_explicit(&dev->errors, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&dev->bytes, used[i].len, memory_order_relaxed);
		}
		atomic_fetch_add_explicit(&dev->requests, (uint64_t)n, memory_order_relaxed);
		/* One push (one release store of the used index) and one notification per batch. */
		vh_server_queue_push_locked(q, used, (unsigned)n);
		vh_server_queue_notify(q);
	}
}

static void rng_stats(void *opaque, char *buf, size_t len)
{
	struct rng_dev *dev = opaque;

	snprintf(buf, len, "rng: requests=%" PRIu64 " bytes=%" PRIu64 " errors=%" PRIu64,
		 atomic_load(&dev->requests), atomic_load(&dev->bytes), atomic_load(&dev->errors));
}

/* ---- Command line ------------------------------------------------------------------------ */

enum { OPT_MAX_BYTES = 1 };

static const struct vhd_option rng_options[] = {
	{ "max-bytes", 1, "N", "most bytes of entropy per request (default 64K)", OPT_MAX_BYTES },
	{ NULL, 0, NULL, NULL, 0 },
};

static int rng_parse(void *opaque, int id, const char *arg)
{
	struct rng_dev *dev = opaque;

	if (id == OPT_MAX_BYTES)
		return vhd_parse_u64("max-bytes", arg, 1, UINT32_MAX, 1, &dev->max_bytes);
	return 0;
}

int main(int argc, char **argv)
{
	static struct rng_dev dev = { .max_bytes = RNG_MAX_PER_REQUEST };
	const struct vhd_program prog = {
		.name = "vhost-user-rng",
		.summary = "virtio entropy device (getrandom) for vhost-user front-ends",
		.cap_type = "rng",
		.options = rng_options,
		.parse = rng_parse,
		.dev = &dev,
	};
	const struct vh_server_ops ops = { .process = rng_process };
	struct vh_server_config cfg = {
		/* virtio-rng has no device feature bits and no config space. */
		.num_queues = 1,
		.log = { 0 },
	};
	struct vhd_common c;
	struct vh_server *s;
	int ret;

	vhd_block_signals();
	ret = vhd_parse_args(&prog, argc, argv, &c);
	if (ret)
		return ret > 0 ? VHD_EXIT_OK : VHD_EXIT_USAGE;

	cfg.log = vhd_logger();
	ret = vh_server_new(&s, &cfg, &ops, &dev);
	if (ret < 0) {
		vhd_log(VH_LOG_ERR, "cannot create the server: %s", strerror(-ret));
		return VHD_EXIT_FAIL;
	}
	ret = vhd_serve(s, &c, 1, NULL, rng_stats, &dev);
	vh_server_free(s);
	return ret;
}
