/* SPDX-License-Identifier: MIT */
/*
 * vhost-user-blk: a virtio-blk device served over vhost-user, backed by a file or a block
 * device (or nothing, for benchmarks), with asynchronous zero-copy I/O through io_uring,
 * several queues on worker threads, and inflight tracking so that a restarted server resumes
 * the requests a killed one left behind.
 *
 *   vhost-user-blk --socket-path=/tmp/blk.sock --blk-file=disk.img [--num-queues=2]
 *   qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=1G,share=on \
 *       -numa node,memdev=mem -chardev socket,id=c0,path=/tmp/blk.sock,reconnect=1 \
 *       -device vhost-user-blk-pci,chardev=c0,num-queues=2
 *
 * This file: command line, the backing store, config space and the server callbacks. Request
 * parsing is in blk_req.c, the data path in blk_io.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvhost/server.h>

#include "blk.h"
#include "common/devserver.h"

#define BLK_DEFAULT_QUEUE_SIZE 1024u
#define BLK_DEFAULT_NULL_SIZE (1ull << 30)
#define BLK_SIZE_MAX (1u << 20)   /* largest data segment (config size_max) */

struct blk_opts {
	const char *file;
	int read_only;
	int null_io;
	int writethrough;
	int sync_io;
	uint64_t null_size;
	unsigned num_queues;
	unsigned queue_size;
	const char *serial;
};

enum {
	OPT_BLK_FILE = 1,
	OPT_READ_ONLY,
	OPT_NULL,
	OPT_SIZE,
	OPT_NUM_QUEUES,
	OPT_QUEUE_SIZE,
	OPT_SERIAL,
	OPT_WRITETHROUGH,
	OPT_AIO,
};

static const struct vhd_option blk_options[] = {
	{ "blk-file", 1, "PATH", "backing file or block device", OPT_BLK_FILE },
	{ "read-only", 0, NULL, "offer a read-only disk (writes fail with IOERR)", OPT_READ_ONLY },
	{ "null", 0, NULL, "no backing store: requests complete without I/O (benchmarks)",
	  OPT_NULL },
	{ "size", 1, "BYTES", "disk size with --null (default 1G; K/M/G/T suffixes)", OPT_SIZE },
	{ "num-queues", 1, "N", "request queues, 1-256 (default 1)", OPT_NUM_QUEUES },
	{ "queue-size", 1, "N", "largest ring accepted, 1-32768 (default 1024)", OPT_QUEUE_SIZE },
	{ "serial", 1, "STR", "disk serial for GET_ID, up to 20 bytes (default: the file name)",
	  OPT_SERIAL },
	{ "writethrough", 0, NULL, "start with the write cache off (the guest may switch it)",
	  OPT_WRITETHROUGH },
	{ "aio", 1, "io_uring|sync", "I/O engine (default io_uring)", OPT_AIO },
	{ NULL, 0, NULL, NULL, 0 },
};

static const char *const blk_cap_features[] = { "read-only", "blk-file", NULL };

static int blk_parse_opt(void *opaque, int id, const char *arg)
{
	struct blk_opts *o = opaque;

	switch (id) {
	case OPT_BLK_FILE:
		if (!*arg)
			return vhd_usage_error("--blk-file needs a path");
		o->file = arg;
		return 0;
	case OPT_READ_ONLY:
		o->read_only = 1;
		return 0;
	case OPT_NULL:
		o->null_io = 1;
		return 0;
	case OPT_SIZE:
		return vhd_parse_u64("size", arg, BLK_SECTOR, UINT64_MAX >> BLK_SECTOR_SHIFT, 1,
				     &o->null_size);
	case OPT_NUM_QUEUES:
		return vhd_parse_uint("num-queues", arg, 1, VH_BACKEND_MAX_QUEUES, &o->num_queues);
	case OPT_QUEUE_SIZE:
		return vhd_parse_uint("queue-size", arg, 1, VH_VQ_MAX_SIZE, &o->queue_size);
	case OPT_SERIAL:
		if (strlen(arg) > BLK_ID_BYTES)
			return vhd_usage_error("--serial: '%s' is longer than %u bytes", arg,
					       BLK_ID_BYTES);
		o->serial = arg;
		return 0;
	case OPT_WRITETHROUGH:
		o->writethrough = 1;
		return 0;
	case OPT_AIO:
		if (!strcmp(arg, "io_uring"))
			o->sync_io = 0;
		else if (!strcmp(arg, "sync"))
			o->sync_io = 1;
		else
			return vhd_usage_error("--aio: '%s' is neither io_uring nor sync", arg);
		return 0;
	default:
		return 0;
	}
}

/* ---- Backing store ------------------------------------------------------------------------ */

static int open_backing(struct blk_dev *dev, const struct blk_opts *o, uint32_t *lbs,
			uint32_t *pbs)
{
	struct stat st;
	uint64_t bytes;

	*lbs = BLK_SECTOR;
	*pbs = BLK_SECTOR;
	if (o->null_io) {
		dev->fd = -1;
		dev->geo.capacity = o->null_size >> BLK_SECTOR_SHIFT;
		return 0;
	}
	dev->fd = open(o->file, (o->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (dev->fd < 0) {
		vhd_log(VH_LOG_ERR, "cannot open %s: %s", o->file, strerror(errno));
		return -1;
	}
	if (fstat(dev->fd, &st) < 0) {
		vhd_log(VH_LOG_ERR, "%s: %s", o->file, strerror(errno));
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		int l = 0;
		unsigned p = 0;

		dev->is_blockdev = 1;
		if (ioctl(dev->fd, BLKGETSIZE64, &bytes) < 0) {
			vhd_log(VH_LOG_ERR, "%s: cannot read the device size: %s", o->file,
				strerror(errno));
			return -1;
		}
		if (ioctl(dev->fd, BLKSSZGET, &l) == 0 && l >= (int)BLK_SECTOR && l <= 65536)
			*lbs = (uint32_t)l;
		if (ioctl(dev->fd, BLKPBSZGET, &p) == 0 && p >= *lbs && p <= 65536)
			*pbs = p;
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else {
		vhd_log(VH_LOG_ERR, "%s is neither a regular file nor a block device", o->file);
		return -1;
	}
	if (bytes % BLK_SECTOR)
		vhd_log(VH_LOG_WARN, "%s: the last %" PRIu64 " bytes (less than a sector) are not "
			"part of the disk", o->file, bytes % BLK_SECTOR);
	dev->geo.capacity = bytes >> BLK_SECTOR_SHIFT;
	if (dev->geo.capacity == 0) {
		vhd_log(VH_LOG_ERR, "%s is smaller than one sector", o->file);
		return -1;
	}
	return 0;
}

static unsigned ilog2(uint32_t v)
{
	unsigned r = 0;

	while (v > 1) {
		v >>= 1;
		r++;
	}
	return r;
}

static void fill_config(struct blk_dev *dev, uint32_t lbs, uint32_t pbs)
{
	struct blk_config *c = &dev->config;
	unsigned ring = dev->queue_size < 128 ? dev->queue_size : 128;

	memset(c, 0, sizeof(*c));
	c->capacity = dev->geo.capacity;
	c->size_max = BLK_SIZE_MAX;
	/* Data pieces per request: what a 128-entry ring holds without indirect tables, less
	 * the header and the status (as QEMU does). */
	c->seg_max = ring > 2 ? ring - 2 : 1;
	c->blk_size = lbs;
	c->physical_block_exp = (uint8_t)ilog2(pbs / lbs);
	c->min_io_size = 1;
	c->writeback = (uint8_t)atomic_load(&dev->writeback);
	c->num_queues = (uint16_t)dev->num_queues;
	c->max_discard_sectors = BLK_MAX_RANGE_SECTORS;
	c->max_discard_seg = BLK_MAX_SEGS;
	c->discard_sector_alignment = lbs / BLK_SECTOR;
	c->max_write_zeroes_sectors = BLK_MAX_RANGE_SECTORS;
	c->max_write_zeroes_seg = BLK_MAX_SEGS;
	c->write_zeroes_may_unmap = 1;
}

/* ---- Server callbacks --------------------------------------------------------------------- */

static int blk_get_config(void *opaque, uint32_t offset, uint32_t size, uint8_t *buf)
{
	struct blk_dev *dev = opaque;
	struct blk_config c = dev->config;

	c.writeback = (uint8_t)atomic_load(&dev->writeback);
	memcpy(buf, (const uint8_t *)&c + offset, size);
	return 0;
}

static int blk_set_config(void *opaque, uint32_t offset, uint32_t size, uint32_t flags,
			  const uint8_t *buf)
{
	struct blk_dev *dev = opaque;
	uint32_t wb = offsetof(struct blk_config, writeback);

	(void)flags;
	/* Only the write-cache byte is writable; the rest of the space is read-only. */
	if (offset <= wb && wb - offset < size) {
		int on = buf[wb - offset] != 0;

		atomic_store(&dev->writeback, on);
		vhd_log(VH_LOG_INFO, "write cache %s", on ? "on (writeback)" : "off (writethrough)");
	}
	return 0;
}

static void blk_connected(void *opaque)
{
	struct blk_dev *dev = opaque;

	atomic_fetch_add(&dev->st.connections, 1);
	vhd_log(VH_LOG_INFO, "front-end connected");
}

static void blk_disconnected(void *opaque)
{
	(void)opaque;
	vhd_log(VH_LOG_INFO, "front-end disconnected");
}

static void blk_stats(void *opaque, char *buf, size_t len)
{
	struct blk_dev *dev = opaque;
	const struct blk_stats *s = &dev->st;

	snprintf(buf, len, "blk: connections=%" PRIu64 " reads=%" PRIu64 " writes=%" PRIu64
		 " flushes=%" PRIu64 " get_id=%" PRIu64 " discards=%" PRIu64 " write_zeroes=%" PRIu64
		 " bytes_read=%" PRIu64 " bytes_written=%" PRIu64 " ioerr=%" PRIu64 " unsupp=%" PRIu64
		 " fallbacks=%" PRIu64 " max_inflight=%" PRIu64,
		 atomic_load(&s->connections), atomic_load(&s->reads), atomic_load(&s->writes),
		 atomic_load(&s->flushes), atomic_load(&s->get_ids), atomic_load(&s->discards),
		 atomic_load(&s->write_zeroes), atomic_load(&s->bytes_read),
		 atomic_load(&s->bytes_written), atomic_load(&s->ioerr), atomic_load(&s->unsupp),
		 atomic_load(&s->fallbacks), atomic_load(&s->max_inflight));
}

static const char blk_usage_extra[] =
	"The disk's capacity is the file's size rounded down to 512-byte sectors. Discard punches\n"
	"holes (BLKDISCARD on block devices); write-zeroes uses fallocate(ZERO_RANGE), else holes\n"
	"or written zeroes. Inflight tracking is offered: a restarted server on the same socket\n"
	"completes the requests a killed one left (QEMU: -chardev socket,...,reconnect=1).\n";

int main(int argc, char **argv)
{
	static struct blk_dev dev;
	struct blk_opts o = {
		.null_size = BLK_DEFAULT_NULL_SIZE,
		.num_queues = 1,
		.queue_size = BLK_DEFAULT_QUEUE_SIZE,
	};
	const struct vhd_program prog = {
		.name = "vhost-user-blk",
		.summary = "virtio-blk device for vhost-user front-ends (file, block device or null)",
		.usage_extra = blk_usage_extra,
		.cap_type = "block",
		.cap_features = blk_cap_features,
		.options = blk_options,
		.parse = blk_parse_opt,
		.dev = &o,
	};
	const struct vh_server_ops ops = {
		.get_config = blk_get_config,
		.set_config = blk_set_config,
		.queue_start = blk_queue_start,
		.queue_stop = blk_queue_stop,
		.process = blk_process,
		.connected = blk_connected,
		.disconnected = blk_disconnected,
	};
	struct vh_server_config cfg = { 0 };
	struct vhd_common c;
	struct vh_server *s;
	uint32_t lbs, pbs;
	unsigned threads;
	char namebuf[4096];
	int ret;

	vhd_block_signals();
	ret = vhd_parse_args(&prog, argc, argv, &c);
	if (ret)
		return ret > 0 ? VHD_EXIT_OK : VHD_EXIT_USAGE;
	if (!o.file == !o.null_io) {
		vhd_usage_error(o.null_io ? "--null and --blk-file cannot be combined"
					  : "--blk-file=PATH (or --null) is required");
		return VHD_EXIT_USAGE;
	}

	dev.fd = -1;
	dev.read_only = o.read_only;
	dev.null_io = o.null_io;
	dev.use_uring = !o.sync_io;
	dev.busy_poll = c.poll_us > 0;
	dev.num_queues = o.num_queues;
	dev.queue_size = o.queue_size;
	atomic_store(&dev.writeback, !o.writethrough);
	dev.geo.read_only = o.read_only;
	dev.geo.max_segs = BLK_MAX_SEGS;
	dev.geo.max_range = BLK_MAX_RANGE_SECTORS;
	if (open_backing(&dev, &o, &lbs, &pbs) < 0) {
		if (dev.fd >= 0)
			close(dev.fd);
		return VHD_EXIT_FAIL;
	}
	/* GET_ID: the serial, else the file's name (the last 20 bytes, the distinctive end). */
	if (o.serial) {
		memcpy(dev.serial, o.serial, strlen(o.serial));
	} else {
		const char *base = o.null_io ? "null" : o.file;
		size_t n;

		snprintf(namebuf, sizeof(namebuf), "%s", base);
		base = basename(namebuf);
		n = strlen(base);
		memcpy(dev.serial, n > BLK_ID_BYTES ? base + n - BLK_ID_BYTES : base,
		       n > BLK_ID_BYTES ? BLK_ID_BYTES : n);
	}
	fill_config(&dev, lbs, pbs);

	cfg.device_features = VH_BIT(BLK_F_SIZE_MAX) | VH_BIT(BLK_F_SEG_MAX) |
			      VH_BIT(BLK_F_BLK_SIZE) | VH_BIT(BLK_F_FLUSH) | VH_BIT(BLK_F_TOPOLOGY) |
			      VH_BIT(BLK_F_CONFIG_WCE) | VH_BIT(BLK_F_MQ);
	if (o.read_only)
		cfg.device_features |= VH_BIT(BLK_F_RO);
	else
		cfg.device_features |= VH_BIT(BLK_F_DISCARD) | VH_BIT(BLK_F_WRITE_ZEROES);
	cfg.num_queues = o.num_queues;
	cfg.max_queue_size = o.queue_size;
	cfg.config_size = sizeof(struct blk_config);
	cfg.log = vhd_logger();

	ret = vh_server_new(&s, &cfg, &ops, &dev);
	if (ret < 0) {
		vhd_log(VH_LOG_ERR, "cannot create the server: %s", strerror(-ret));
		if (dev.fd >= 0)
			close(dev.fd);
		return VHD_EXIT_FAIL;
	}
	vhd_log(VH_LOG_INFO, "%s: %" PRIu64 " sectors of %u bytes%s, %u queue%s, %s I/O",
		o.null_io ? "null disk" : o.file, dev.geo.capacity, lbs,
		o.read_only ? ", read-only" : "", o.num_queues, o.num_queues > 1 ? "s" : "",
		o.null_io ? "no" : o.sync_io ? "synchronous" : "io_uring");

	/* One worker per queue, as many as there are CPUs to run them. */
	threads = c.threads ? c.threads : o.num_queues;
	if (!c.threads && threads > vhd_ncpus())
		threads = vhd_ncpus();
	ret = vhd_serve(s, &c, threads, NULL, blk_stats, &dev);
	vh_server_free(s);
	if (dev.fd >= 0)
		close(dev.fd);
	return ret;
}
