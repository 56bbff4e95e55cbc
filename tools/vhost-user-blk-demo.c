/* SPDX-License-Identifier: MIT */
/*
 * vhost-user-blk-demo: be the guest for a vhost-user-blk back-end. Connects to its socket,
 * negotiates, shares memfd guest memory, sets up real virtqueues and drives them with the
 * library's blk client (driver.h): prints what was negotiated by name, writes and verifies
 * data, and measures a sequential write and read-back with a progress bar.
 *
 *   vhost-user-blk-demo [--image disk.img] /tmp/vhost-user-blk.sock
 *
 * Exit status: 0 ok, 1 cannot connect, 2 usage, 3 the back-end failed or broke the protocol,
 * 4 data read back (or found in the image) differs from what was written.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvhost/libvhost.h>

#define PROG "vhost-user-blk-demo"

enum { EXIT_OK, EXIT_CONNECT, EXIT_USAGE, EXIT_DEVICE, EXIT_DATA };

struct opts {
	const char *socket;
	const char *image;
	unsigned queues;
	unsigned mib;
	unsigned depth;
	unsigned block_kib;
	int timeout_ms;
	int verbose;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: " PROG " [OPTIONS] SOCKET\n"
"\n"
"Acts as the guest of the vhost-user-blk back-end listening at SOCKET: negotiates features,\n"
"shares memory, sets up virtqueues, then writes, reads back and verifies data.\n"
"WARNING: it writes to the disk (the first sectors and the area of the throughput run).\n"
"\n"
"  -q, --queues N       request queues to use (default 1; more needs the back-end's MQ)\n"
"  -m, --mib N          MiB for the throughput run (default 32; capped to the disk size)\n"
"  -d, --depth N        requests in flight per queue (default 32)\n"
"  -b, --block-kib N    KiB per request (default 64)\n"
"  -i, --image FILE     the back-end's image file: check on the host that the data landed\n"
"  -T, --timeout SEC    bound on every wait for the back-end (default 10)\n"
"  -v, --verbose        print the library's log\n"
"  -h, --help\n");
}

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help'.\n");
	exit(EXIT_USAGE);
}

static unsigned parse_uint(const char *what, const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || *s == '-' || v < lo || v > hi)
		die_usage("%s must be %u-%u, not '%s'", what, lo, hi, s);
	return (unsigned)v;
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "queues", required_argument, NULL, 'q' },
		{ "mib", required_argument, NULL, 'm' },
		{ "depth", required_argument, NULL, 'd' },
		{ "block-kib", required_argument, NULL, 'b' },
		{ "image", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->queues = 1;
	o->mib = 32;
	o->depth = 32;
	o->block_kib = 64;
	o->timeout_ms = 10000;
	while ((c = getopt_long(argc, argv, "q:m:d:b:i:T:vh", lo, NULL)) != -1) {
		switch (c) {
		case 'q': o->queues = parse_uint("--queues", optarg, 1, 16); break;
		case 'm': o->mib = parse_uint("--mib", optarg, 1, 65536); break;
		case 'd': o->depth = parse_uint("--depth", optarg, 1, 128); break;
		case 'b': o->block_kib = parse_uint("--block-kib", optarg, 4, 1024); break;
		case 'i': o->image = optarg; break;
		case 'T': o->timeout_ms = (int)parse_uint("--timeout", optarg, 1, 3600) * 1000; break;
		case 'v': o->verbose++; break;
		case 'h': usage(stdout); exit(EXIT_OK);
		default: fprintf(stderr, "Try '" PROG " --help'.\n"); exit(EXIT_USAGE);
		}
	}
	if (optind + 1 != argc)
		die_usage(optind >= argc ? "missing SOCKET" : "unexpected argument '%s'",
			  argv[optind + 1 < argc ? optind + 1 : optind]);
	o->socket = argv[optind];
}

static void log_fn(void *opaque, enum vh_log_level level, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "  [libvhost%s] %s\n", level == VH_LOG_ERR ? " error" : "", msg);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Bytes of block `blk` of the pattern (a cheap generator, different for every block). */
static void fill(uint8_t *p, size_t len, uint64_t blk)
{
	uint64_t s = (blk + 1) * 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		memcpy(p + i, &s, 8);
	}
}

static void print_names(const char *label, uint64_t bits, const char *(*name)(unsigned))
{
	int col = (int)strlen(label) + 2, any = 0;

	printf("  %s:", label);
	for (unsigned b = 0; b < 64; b++) {
		char unk[12];
		const char *n;

		if (!(bits & (1ull << b)))
			continue;
		n = name(b);
		if (!n) {
			snprintf(unk, sizeof(unk), "bit%u", b);
			n = unk;
		}
		if (col + (int)strlen(n) + 1 > 94) {
			printf("\n   %*s", (int)strlen(label), "");
			col = (int)strlen(label) + 2;
		}
		printf(" %s", n);
		col += (int)strlen(n) + 1;
		any = 1;
	}
	printf("%s\n", any ? "" : " (none)");
}

static const char *proto_name(unsigned b)
{
	return vh_protocol_feature_name(b);
}

static int failed(const char *what, int err)
{
	fprintf(stderr, PROG ": %s: %s\n", what, strerror(-err));
	return err == -ECONNREFUSED || err == -ENOENT ? EXIT_CONNECT : EXIT_DEVICE;
}

/* ---- progress ---- */

struct progress {
	int tty;
	int shown;
	const char *label;
};

static void progress(struct progress *p, uint64_t done, uint64_t total)
{
	int pct = total ? (int)(done * 100 / total) : 100, bar = pct / 4;

	if (!p->tty && pct < 100)
		return;
	if (!p->tty || pct != p->shown) {
		printf("\r  %-6s [%.*s%*s] %3d%%", p->label, bar, "#########################",
		       25 - bar, "", pct);
		fflush(stdout);
		p->shown = pct;
	}
}

/* Sequential pass over [0, bytes) in blocks with `depth` requests in flight per queue. */
static int pass(struct vh_blk *blk, const struct opts *o, uint8_t **bufs, int write,
		uint64_t bytes, uint64_t *bad_block, double *secs)
{
	const uint32_t bs = o->block_kib * 1024;
	const uint64_t nblocks = bytes / bs;
	unsigned nq = vh_blk_num_queues(blk);
	uint64_t next = 0, done = 0;
	/* slot -> block number it holds, per queue */
	uint64_t *held = calloc((size_t)nq * o->depth, sizeof(*held));
	uint8_t *expect = write ? NULL : malloc(bs);
	unsigned *freelist = calloc((size_t)nq * o->depth, sizeof(*freelist)), *nfree;
	struct progress pr = { isatty(STDOUT_FILENO), -1, write ? "write" : "read" };
	struct vh_blk_done d[128];
	double t0 = now();
	int ret = 0;

	nfree = calloc(nq, sizeof(*nfree));
	if (!held || !freelist || !nfree || (!write && !expect)) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned q = 0; q < nq; q++) {
		for (unsigned s = 0; s < o->depth; s++)
			freelist[q * o->depth + s] = s;
		nfree[q] = o->depth;
	}
	*bad_block = UINT64_MAX;
	while (done < nblocks) {
		for (unsigned q = 0; q < nq && next < nblocks; q++) {
			struct vh_blk_req rq[128];
			unsigned k = 0;
			int r;

			while (k < nfree[q] && next + k < nblocks && k < 128) {
				unsigned s = freelist[q * o->depth + nfree[q] - 1 - k];
				uint8_t *b = bufs[q * o->depth + s];

				if (write)
					fill(b, bs, next + k);
				held[q * o->depth + s] = next + k;
				rq[k] = (struct vh_blk_req){ .op = write ? VH_BLK_OP_WRITE : VH_BLK_OP_READ,
							     .sector = (next + k) * (bs / 512), .buf = b,
							     .len = bs, .user_data = s };
				k++;
			}
			if (!k)
				continue;
			r = vh_blk_submit(blk, q, rq, k);
			if (r < 0) {
				ret = r;
				goto out;
			}
			nfree[q] -= (unsigned)r;
			next += (unsigned)r;
		}
		for (unsigned q = 0; q < nq; q++) {
			int n;

			if (vh_blk_inflight(blk, q) == 0)
				continue;
			/* Wait on one queue at a time; the others are collected without waiting. */
			n = vh_blk_complete(blk, q, d, 128, q == done % nq ? 1 : 0, -1);
			if (n < 0) {
				ret = n;
				goto out;
			}
			for (int i = 0; i < n; i++) {
				unsigned s = (unsigned)d[i].user_data;

				if (d[i].status) {
					ret = d[i].status;
					goto out;
				}
				if (!write) {
					fill(expect, bs, held[q * o->depth + s]);
					if (memcmp(expect, bufs[q * o->depth + s], bs) &&
					    *bad_block == UINT64_MAX)
						*bad_block = held[q * o->depth + s];
				}
				freelist[q * o->depth + nfree[q]++] = s;
			}
			done += (uint64_t)n;
		}
		progress(&pr, done, nblocks);
	}
	*secs = now() - t0;
out:
	if (pr.shown >= 0 || !pr.tty)
		printf("\n");
	free(held);
	free(expect);
	free(freelist);
	free(nfree);
	return ret;
}

/* Checks the image file holds the pattern over [0, bytes). */
static int check_image(const char *path, uint64_t bytes, uint32_t bs, uint64_t *bad)
{
	uint8_t *got = malloc(bs), *want = malloc(bs);
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	*bad = UINT64_MAX;
	if (fd < 0 || !got || !want) {
		ret = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (uint64_t b = 0; b < bytes / bs; b++) {
		if (pread(fd, got, bs, (off_t)(b * bs)) != (ssize_t)bs) {
			ret = -EIO;
			break;
		}
		fill(want, bs, b);
		if (memcmp(got, want, bs)) {
			*bad = b;
			break;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(got);
	free(want);
	return ret;
}

int main(int argc, char **argv)
{
	struct vh_frontend_config fc;
	struct vh_blk_opts bo;
	struct vh_device *dev = NULL;
	struct vh_blk *blk = NULL;
	struct vh_frontend *fe;
	const struct vh_blk_config *c;
	struct vh_driver *drv;
	struct opts o;
	char id[VH_BLK_ID_BYTES + 1];
	uint8_t **bufs = NULL;
	uint64_t bytes, bad, kicks0;
	double ws = 0, rs = 0;
	int r, code = EXIT_OK;

	parse(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	memset(&fc, 0, sizeof(fc));
	fc.timeout_ms = o.timeout_ms;
	memset(&bo, 0, sizeof(bo));
	bo.num_queues = o.queues;
	bo.timeout_ms = o.timeout_ms;
	bo.buf_mem = (uint64_t)o.queues * o.depth * o.block_kib * 1024 + (1u << 20);
	if (o.verbose) {
		fc.log.fn = bo.log.fn = log_fn;
		fc.log.max_level = bo.log.max_level = o.verbose > 1 ? VH_LOG_DEBUG : VH_LOG_INFO;
	}

	r = vh_frontend_device_open(&dev, o.socket, &fc, VH_DRIVER_USER_PROTOCOL_FEATURES);
	if (r < 0)
		return failed(o.socket, r);
	printf("connected to %s\n", o.socket);
	r = vh_blk_open(&blk, dev, &bo);
	if (r < 0) {
		code = failed("setting up the device", r);
		goto out;
	}
	drv = vh_blk_driver(blk);
	fe = vh_device_frontend(dev);
	c = vh_blk_config(blk);

	printf("\nnegotiated (virtio features 0x%" PRIx64 " of 0x%" PRIx64 " offered):\n",
	       vh_driver_features(drv), vh_driver_features_offered(drv));
	print_names("features", vh_driver_features(drv), vh_blk_feature_name);
	print_names("offered, not used",
		    vh_driver_features_offered(drv) & ~vh_driver_features(drv) &
			    ~(1ull << VH_USER_F_PROTOCOL_FEATURES),
		    vh_blk_feature_name);
	print_names("protocol", vh_frontend_protocol_features(fe), proto_name);
	printf("  rings: %u x %s, %u entries; %s; %s\n", vh_blk_num_queues(blk),
	       vh_driver_features(drv) & VH_VQ_F_RING_PACKED ? "packed" : "split",
	       vh_driver_queue_size(drv, 0),
	       vh_driver_features(drv) & VH_VQ_F_EVENT_IDX ? "event-index notification suppression"
							    : "flag notification suppression",
	       vh_driver_features(drv) & VH_VQ_F_INDIRECT_DESC ? "indirect descriptors"
								: "direct descriptors");
	if (c->have_config)
		printf("  disk: %" PRIu64 " sectors (%.1f MiB), blk_size %u, seg_max %u, "
		       "num_queues %u\n",
		       c->capacity, c->capacity / 2048.0, c->blk_size, c->seg_max, c->num_queues);
	else
		printf("  disk: size unknown (the back-end has no config space)\n");
	r = vh_blk_get_id(blk, 0, id);
	if (r == 0)
		printf("  id: \"%s\"\n", id);

	/* Writes at a few places, read back and compared. */
	{
		const uint64_t cap = c->have_config ? c->capacity : 2048;
		const uint64_t where[] = { 0, 1, cap / 3, cap - 8 };
		uint8_t w[4096], rd[4096];
		int ok = 1;

		printf("\nwrite and verify (4 KiB at sectors");
		for (size_t i = 0; i < 4; i++)
			printf(" %" PRIu64, where[i] < cap - 8 ? where[i] : cap - 8);
		printf("): ");
		for (size_t i = 0; i < 4 && ok; i++) {
			uint64_t s = where[i] < cap - 8 ? where[i] : cap - 8;

			fill(w, sizeof(w), 1000 + i);
			r = vh_blk_write(blk, (unsigned)(i % vh_blk_num_queues(blk)), s, w, sizeof(w));
			if (r == 0)
				r = vh_blk_read(blk, 0, s, rd, sizeof(rd));
			if (r < 0) {
				printf("failed\n");
				code = failed("write and verify", r);
				goto out;
			}
			ok = !memcmp(w, rd, sizeof(w));
		}
		printf("%s\n", ok ? "ok" : "MISMATCH");
		if (!ok) {
			code = EXIT_DATA;
			goto out;
		}
	}

	/* Throughput: sequential write, flush, read back and verify. */
	bytes = (uint64_t)o.mib << 20;
	if (c->have_config && bytes > c->capacity * 512)
		bytes = c->capacity * 512;
	bytes -= bytes % ((uint64_t)o.block_kib * 1024);
	if (bytes == 0) {
		fprintf(stderr, PROG ": the disk is smaller than one request\n");
		code = EXIT_USAGE;
		goto out;
	}
	bufs = calloc((size_t)o.queues * o.depth, sizeof(*bufs));
	for (unsigned i = 0; bufs && i < o.queues * o.depth; i++) {
		r = vh_blk_buf_alloc(blk, (size_t)o.block_kib * 1024, 4096, (void **)&bufs[i]);
		if (r < 0) {
			code = failed("buffers", r);
			goto out;
		}
	}
	printf("\nthroughput: %" PRIu64 " MiB in %u KiB requests, %u in flight per queue, "
	       "%u queue(s)\n", bytes >> 20, o.block_kib, o.depth, vh_blk_num_queues(blk));
	kicks0 = vh_driver_kicks(drv);
	r = pass(blk, &o, bufs, 1, bytes, &bad, &ws);
	if (r == 0 && (vh_driver_features(drv) & VH_BIT(VH_BLK_F_FLUSH)))
		r = vh_blk_flush(blk, 0);
	if (r == 0)
		r = pass(blk, &o, bufs, 0, bytes, &bad, &rs);
	if (r < 0) {
		code = failed("throughput run", r);
		goto out;
	}
	{
		uint64_t reqs = 2 * bytes / ((uint64_t)o.block_kib * 1024);
		uint64_t kicks = vh_driver_kicks(drv) - kicks0;

		printf("  write %.1f MiB/s, read %.1f MiB/s (%.3f s + %.3f s); %" PRIu64
		       " requests, %" PRIu64 " kicks (%.2f per request)\n",
		       (double)bytes / 1048576.0 / ws, (double)bytes / 1048576.0 / rs, ws, rs, reqs,
		       kicks, reqs ? (double)kicks / (double)reqs : 0.0);
	}
	if (bad != UINT64_MAX) {
		printf("  read back: MISMATCH in block %" PRIu64 "\n", bad);
		code = EXIT_DATA;
		goto out;
	}
	printf("  read back: all %" PRIu64 " MiB verified\n", bytes >> 20);
	if (o.image) {
		r = check_image(o.image, bytes, o.block_kib * 1024, &bad);
		if (r < 0) {
			code = failed(o.image, r);
			goto out;
		}
		if (bad != UINT64_MAX) {
			printf("  host check: %s differs in block %" PRIu64 "\n", o.image, bad);
			code = EXIT_DATA;
			goto out;
		}
		printf("  host check: %s holds the same %" PRIu64 " MiB (read with pread)\n",
		       o.image, bytes >> 20);
	}
	if (vh_driver_error(drv)) {
		code = failed("device", vh_driver_error(drv));
		goto out;
	}
out:
	free(bufs);
	vh_blk_close(blk);
	vh_device_close(dev);
	return code;
}
