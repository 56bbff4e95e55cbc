/* SPDX-License-Identifier: MIT */
/*
 * The driver-side blk client against qemu-storage-daemon's vhost-user-blk export (QEMU's own
 * back-end, libvhost-user based) on a file image, or, with LIBVHOST_BLK_SERVER=PATH, against
 * the library's own vhost-user-blk server at PATH:
 *   - config space: capacity of this (odd-sized) image, blk_size, seg_max, num_queues = 2;
 *   - reads of a host-written pattern, batched asynchronous writes at random offsets on both
 *     queues with many requests in flight, FLUSH, write-zeroes and discard; every write is
 *     checked by reading the image file on the host (pread) and through the client;
 *   - fallback: the same I/O with EVENT_IDX and INDIRECT_DESC withheld, in POLL mode, and with a
 *     small ring that fills up; qemu-storage-daemon offers no packed rings, so split is used;
 *   - fds and mappings back to their baseline after each close.
 *   usage: [LIBVHOST_BLK_SERVER=path/to/vhost-user-blk] peer_blk_qsd [TEST-NAME-FILTER]
 */
#include "peer.h"

#define VHP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define IMG_SIZE ((16u << 20) + 7u * 512u)
#define CHUNK 8192u
#define NCHUNKS (IMG_SIZE / CHUNK)

static char sock[256], img[256];
static int img_fd = -1;
static uint8_t *model; /* what the image must contain */
static uint64_t seed = 0x1234567;
static const char *ours; /* our server's path, or NULL for qemu-storage-daemon */

static struct vh_device *open_dev(void)
{
	struct vh_frontend_config fc;
	struct vh_device *dev = NULL;
	int r;

	memset(&fc, 0, sizeof(fc));
	fc.timeout_ms = 5000;
	if (getenv("LIBVHOST_TEST_VERBOSE")) {
		fc.log.fn = p_log_stderr;
		fc.log.max_level = VH_LOG_DEBUG;
	}
	r = vh_frontend_device_open(&dev, sock, &fc, VH_DRIVER_USER_PROTOCOL_FEATURES);
	CHECK_EQ(r, 0);
	return r ? NULL : dev;
}

static struct vh_blk *open_blk(struct vh_device *dev, const struct vh_blk_opts *o)
{
	struct vh_blk *blk = NULL;
	int r = vh_blk_open(&blk, dev, o);

	CHECK_EQ(r, 0);
	return r ? NULL : blk;
}

static void opts_init(struct vh_blk_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = 10000;
	if (getenv("LIBVHOST_TEST_VERBOSE")) {
		o->log.fn = p_log_stderr;
		o->log.max_level = VH_LOG_DEBUG;
	}
}

/* The image file as the host sees it must equal the model over [off, off + len). */
static void check_host(uint64_t off, size_t len, const char *what)
{
	uint8_t *buf = malloc(len);
	ssize_t n = pread(img_fd, buf, len, (off_t)off);

	CHECK_EQ(n, (ssize_t)len);
	if (n == (ssize_t)len && memcmp(buf, model + off, len) != 0) {
		size_t i = 0;

		while (i < len && buf[i] == model[off + i])
			i++;
		T_FAIL("%s: image differs from what was written at byte %" PRIu64, what,
		       off + i);
	}
	free(buf);
}

static void check_client(struct vh_blk *blk, unsigned q, uint64_t off, size_t len,
			 const char *what)
{
	uint8_t *buf = malloc(len);

	memset(buf, 0xee, len);
	CHECK_EQ(vh_blk_read(blk, q, off / 512, buf, len), 0);
	if (memcmp(buf, model + off, len) != 0)
		T_FAIL("%s: read back through the client differs", what);
	free(buf);
}

/* Waits for at least min write completions and applies them to the model. */
static int collect(struct vh_blk *blk, unsigned q, unsigned min, const unsigned *chunk,
		   uint8_t *const *bufs, unsigned *got)
{
	struct vh_blk_done done[64];
	int c = vh_blk_complete(blk, q, done, 64, min, -1);

	CHECK(c > 0);
	for (int k = 0; k < c; k++) {
		CHECK_EQ(done[k].status, 0);
		memcpy(model + (uint64_t)chunk[done[k].user_data] * CHUNK, bufs[done[k].user_data],
		       CHUNK);
	}
	if (c > 0)
		*got += (unsigned)c;
	return c > 0;
}

/* Batched asynchronous writes of random data to distinct random chunks on every queue. */
static void async_writes(struct vh_blk *blk, unsigned rounds, unsigned per_round)
{
	unsigned nq = vh_blk_num_queues(blk);
	uint8_t *bufs[64];
	unsigned chunk[64];
	struct vh_blk_req rq[64];

	if (per_round > 64)
		per_round = 64;
	for (unsigned i = 0; i < per_round; i++)
		CHECK_EQ(vh_blk_buf_alloc(blk, CHUNK, 4096, (void **)&bufs[i]), 0);
	for (unsigned round = 0; round < rounds; round++) {
		/* distinct chunks: requests in flight together never overlap */
		for (unsigned i = 0; i < per_round; i++) {
			unsigned c;
			int dup;

			do {
				c = (unsigned)(p_rand(&seed) % NCHUNKS);
				dup = 0;
				for (unsigned j = 0; j < i; j++)
					dup |= chunk[j] == c;
			} while (dup);
			chunk[i] = c;
			p_fill(bufs[i], CHUNK, p_rand(&seed));
		}
		for (unsigned q = 0; q < nq; q++) {
			unsigned n = 0, sent = 0, got = 0;

			for (unsigned i = q; i < per_round; i += nq) {
				memset(&rq[n], 0, sizeof(rq[n]));
				rq[n].op = VH_BLK_OP_WRITE;
				rq[n].sector = (uint64_t)chunk[i] * CHUNK / 512;
				rq[n].buf = bufs[i];
				rq[n].len = CHUNK;
				rq[n].user_data = i;
				n++;
			}
			while (sent < n) {
				int r = vh_blk_submit(blk, q, rq + sent, n - sent);

				if (r < 0) {
					CHECK_EQ(r, 0);
					return;
				}
				sent += (unsigned)r;
				/* ring full: make room */
				if (sent < n && !collect(blk, q, 1, chunk, bufs, &got))
					return;
			}
			if (got < n && !collect(blk, q, n - got, chunk, bufs, &got))
				return;
			CHECK_EQ(vh_blk_inflight(blk, q), 0);
		}
		for (unsigned i = 0; i < per_round; i++)
			check_host((uint64_t)chunk[i] * CHUNK, CHUNK, "async write");
	}
}

static void t_basic_two_queues(void)
{
	struct t_baseline base = t_baseline();
	struct vh_blk_opts o;
	struct vh_device *dev = open_dev();
	struct vh_blk *blk;
	const struct vh_blk_config *c;
	uint64_t f;
	char id[VH_BLK_ID_BYTES + 1];
	uint8_t *big;

	if (!dev)
		return;
	opts_init(&o);
	o.num_queues = 2;
	blk = open_blk(dev, &o);
	if (!blk) {
		vh_device_close(dev);
		return;
	}
	c = vh_blk_config(blk);
	f = vh_driver_features(vh_blk_driver(blk));
	printf("negotiated features 0x%" PRIx64 ", kicks so far %" PRIu64 "\n", f,
	       vh_driver_kicks(vh_blk_driver(blk)));
	CHECK_EQ(c->have_config, 1);
	CHECK_EQ(c->capacity, IMG_SIZE / 512);
	CHECK_EQ(c->blk_size, 512);
	CHECK(c->seg_max > 0);
	CHECK_EQ(c->num_queues, 2);
	CHECK_EQ(vh_blk_num_queues(blk), 2);
	CHECK(f & VH_BIT(VH_BLK_F_MQ));
	CHECK(f & VH_BIT(VH_BLK_F_FLUSH));
	CHECK(f & VH_BIT(32)); /* VERSION_1 */
	CHECK(f & VH_VQ_F_EVENT_IDX);
	CHECK(f & VH_VQ_F_INDIRECT_DESC);
	/* packed exactly when offered (qemu-storage-daemon 7.2 does not: split rings) */
	CHECK_EQ(!!(f & VH_VQ_F_RING_PACKED),
		 !!(vh_driver_features_offered(vh_blk_driver(blk)) & VH_VQ_F_RING_PACKED));
	if (!ours)
		CHECK(!(f & VH_VQ_F_RING_PACKED));

	/* The pattern the host wrote reads back through both queues. */
	check_client(blk, 0, 0, 64 * 1024, "host pattern, queue 0");
	check_client(blk, 1, IMG_SIZE - 7 * 512, 7 * 512, "host pattern at the end, queue 1");

	async_writes(blk, 6, 48);
	CHECK_EQ(vh_blk_flush(blk, 0), 0);
	CHECK_EQ(vh_blk_flush(blk, 1), 0);
	check_host(0, IMG_SIZE, "whole image after flush");

	/* 1 MiB + 512 through the bounce buffer: split into several requests and segments. */
	big = malloc((1u << 20) + 512);
	p_fill(big, (1u << 20) + 512, 99);
	CHECK_EQ(vh_blk_write(blk, 1, 3, big, (1u << 20) + 512), 0);
	memcpy(model + 3 * 512, big, (1u << 20) + 512);
	check_host(0, 2u << 20, "large write");
	check_client(blk, 0, 0, 2u << 20, "large write");
	free(big);

	/* Write-zeroes and discard (qemu-storage-daemon offers both). */
	CHECK(f & VH_BIT(VH_BLK_F_WRITE_ZEROES));
	CHECK_EQ(vh_blk_write_zeroes(blk, 0, 100, 37, 0), 0);
	memset(model + 100 * 512, 0, 37 * 512);
	check_host(0, 256 * 1024, "write zeroes");
	CHECK(f & VH_BIT(VH_BLK_F_DISCARD));
	CHECK_EQ(vh_blk_discard(blk, 1, 4096, 64), 0); /* contents undefined afterwards */
	CHECK_EQ(vh_blk_read(blk, 1, 4096, model + 4096 * 512, 64 * 512), 0);

	memset(id, 'x', sizeof(id));
	CHECK_EQ(vh_blk_get_id(blk, 0, id), 0);
	printf("device id: \"%s\"\n", id);
	CHECK(strlen(id) > 0 && strlen(id) <= VH_BLK_ID_BYTES);

	/* Refused locally: beyond the capacity, misaligned, not in guest memory. */
	{
		uint8_t b[512];
		struct vh_blk_req rq = { .op = VH_BLK_OP_READ, .buf = b, .len = 512 };

		CHECK_EQ(vh_blk_read(blk, 0, IMG_SIZE / 512, b, 512), -ERANGE);
		CHECK_EQ(vh_blk_read(blk, 0, 0, b, 100), -EINVAL);
		CHECK_EQ(vh_blk_submit(blk, 0, &rq, 1), -EFAULT);
		CHECK_EQ(vh_blk_read(blk, 2, 0, b, 512), -EINVAL);
	}
	CHECK_EQ(vh_driver_error(vh_blk_driver(blk)), 0);
	printf("kicks %" PRIu64 ", calls %" PRIu64 "\n", vh_driver_kicks(vh_blk_driver(blk)),
	       vh_driver_calls(vh_blk_driver(blk)));
	vh_blk_close(blk);
	vh_device_close(dev);
	CHECK_BASELINE(base);
}

/* Fewer features than offered: the client falls back and the data is still right. */
static void t_fallback(void)
{
	static const struct {
		const char *name;
		uint64_t drop;
		unsigned flags, qsize;
	} cases[] = {
		{ "no EVENT_IDX", VH_VQ_F_EVENT_IDX, 0, 0 },
		{ "no INDIRECT_DESC", VH_VQ_F_INDIRECT_DESC, 0, 0 },
		{ "neither, POLL mode", VH_VQ_F_EVENT_IDX | VH_VQ_F_INDIRECT_DESC, VH_DRIVER_F_POLL, 0 },
		{ "8-entry ring, no indirect", VH_VQ_F_INDIRECT_DESC, 0, 8 },
		{ "no SEG_MAX/SIZE_MAX/MQ", VH_BIT(VH_BLK_F_SEG_MAX) | VH_BIT(VH_BLK_F_SIZE_MAX) |
			VH_BIT(VH_BLK_F_MQ), 0, 0 },
	};

	for (size_t i = 0; i < VHP_ARRAY_SIZE(cases); i++) {
		struct t_baseline base = t_baseline();
		struct vh_device *dev = open_dev();
		struct vh_blk_opts o;
		struct vh_blk *blk;
		uint64_t f;

		if (!dev)
			return;
		opts_init(&o);
		o.features = VH_BLK_DEFAULT_FEATURES & ~cases[i].drop;
		o.flags = cases[i].flags;
		o.queue_size = cases[i].qsize;
		blk = open_blk(dev, &o);
		if (!blk) {
			vh_device_close(dev);
			return;
		}
		f = vh_driver_features(vh_blk_driver(blk));
		printf("%s: negotiated 0x%" PRIx64 ", ring %u\n", cases[i].name, f,
		       vh_driver_queue_size(vh_blk_driver(blk), 0));
		CHECK_EQ_M(f & cases[i].drop, 0, "%s", cases[i].name);
		if (cases[i].qsize)
			CHECK_EQ(vh_driver_queue_size(vh_blk_driver(blk), 0), cases[i].qsize);
		async_writes(blk, 3, 40);
		CHECK_EQ(vh_blk_flush(blk, 0), 0);
		check_host(0, IMG_SIZE, cases[i].name);
		check_client(blk, 0, 0, 1u << 20, cases[i].name);
		CHECK_EQ(vh_driver_error(vh_blk_driver(blk)), 0);
		vh_blk_close(blk);
		vh_device_close(dev);
		CHECK_BASELINE(base);
	}
}

static char *const *spawn_argv; /* how main started the back-end */

/*
 * A second back-end on its own socket is killed while the client has it set up: the next
 * request fails at once (the hang-up is seen, no timeout needed), close is bounded, and nothing
 * leaks.
 */
static void t_backend_dies(void)
{
	struct t_baseline base = t_baseline();
	struct vh_frontend_config fc;
	struct vh_device *dev = NULL;
	struct vh_blk_opts o;
	struct vh_blk *blk = NULL;
	struct peer p2 = { 0 };
	char sock2[240], log2[250], *argv2[16];
	uint8_t buf[4096];
	int64_t t0;
	int i, r;

	snprintf(sock2, sizeof(sock2), "%s/blk2.sock", p_dir);
	snprintf(log2, sizeof(log2), "%s/peer2.log", p_dir);
	/* the same command line with the socket path replaced */
	for (i = 0; spawn_argv[i] && i < 15; i++) {
		static char repl[8][600];
		const char *at = strstr(spawn_argv[i], sock);

		argv2[i] = spawn_argv[i];
		if (at && i < 8) {
			snprintf(repl[i], sizeof(repl[i]), "%.*s%s%s", (int)(at - spawn_argv[i]),
				 spawn_argv[i], sock2, at + strlen(sock));
			argv2[i] = repl[i];
		}
	}
	argv2[i] = NULL;
	CHECK_EQ(p_spawn(&p2, argv2, log2, NULL, -1), 0);
	CHECK_EQ(p_wait_socket(&p2, sock2, 10000), 0);
	memset(&fc, 0, sizeof(fc));
	fc.timeout_ms = 5000;
	r = vh_frontend_device_open(&dev, sock2, &fc, VH_DRIVER_USER_PROTOCOL_FEATURES);
	CHECK_EQ(r, 0);
	if (r == 0) {
		opts_init(&o);
		o.timeout_ms = 5000;
		r = vh_blk_open(&blk, dev, &o);
		CHECK_EQ(r, 0);
	}
	if (blk) {
		CHECK_EQ(vh_blk_read(blk, 0, 0, buf, sizeof(buf)), 0);
		kill(p2.pid, SIGKILL);
		waitpid(p2.pid, NULL, 0);
		p2.pid = 0;
		t0 = t_now_ms();
		r = vh_blk_read(blk, 0, 0, buf, sizeof(buf));
		printf("read after the back-end died: %d (%s) after %lld ms\n", r, strerror(-r),
		       (long long)(t_now_ms() - t0));
		CHECK(r == -ECONNRESET || r == -EPIPE);
		CHECK(t_now_ms() - t0 < 1000);
		CHECK_EQ(vh_blk_read(blk, 0, 0, buf, sizeof(buf)), r); /* sticky */
		t0 = t_now_ms();
		vh_blk_close(blk);
		CHECK(t_now_ms() - t0 < 1000);
	}
	vh_device_close(dev);
	p_stop(&p2);
	CHECK_BASELINE(base);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		{ "basic_two_queues", t_basic_two_queues },
		{ "fallback", t_fallback },
		{ "backend_dies", t_backend_dies },
	};
	const char *dir = p_tmpdir();
	char log[256], blockdev[512], export[512];
	struct peer qsd = { 0 };
	const char *prog;
	int rc;

	ours = getenv("LIBVHOST_BLK_SERVER");
	if (ours && access(ours, X_OK) != 0) {
		fprintf(stderr, "FAIL: LIBVHOST_BLK_SERVER=%s is not an executable\n", ours);
		return 1;
	}
	prog = ours ? ours : p_need("qemu-storage-daemon");

	signal(SIGPIPE, SIG_IGN);
	snprintf(sock, sizeof(sock), "%s/blk.sock", dir);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(log, sizeof(log), "%s/qsd.log", dir);
	model = malloc(IMG_SIZE);
	p_fill(model, IMG_SIZE, 7);
	img_fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (img_fd < 0 || pwrite(img_fd, model, IMG_SIZE, 0) != (ssize_t)IMG_SIZE) {
		perror("image");
		return 1;
	}
	snprintf(blockdev, sizeof(blockdev), "driver=file,node-name=file0,filename=%s", img);
	snprintf(export, sizeof(export),
		 "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=%s,"
		 "writable=on,num-queues=2", sock);
	char *argv_qsd[] = { (char *)prog, "--blockdev", blockdev, "--blockdev",
			     "driver=raw,node-name=disk0,file=file0", "--export", export, NULL };
	char sockopt[300], fileopt[300];

	snprintf(sockopt, sizeof(sockopt), "--socket-path=%s", sock);
	snprintf(fileopt, sizeof(fileopt), "--blk-file=%s", img);
	char *argv_ours[] = { (char *)prog, sockopt, fileopt, "--num-queues=2", NULL };

	spawn_argv = ours ? argv_ours : argv_qsd;
	printf("back-end: %s\n", prog);
	if (p_spawn(&qsd, ours ? argv_ours : argv_qsd, log, NULL, -1) < 0 ||
	    p_wait_socket(&qsd, sock, 10000) < 0) {
		p_dump_log(&qsd, 50);
		fprintf(stderr, "FAIL: %s did not listen on %s\n", prog, sock);
		p_stop(&qsd);
		return 1;
	}
	rc = t_run(tests, VHP_ARRAY_SIZE(tests), argc, argv);
	if (!p_alive(&qsd)) {
		fprintf(stderr, "FAIL: the back-end died during the test\n");
		rc = 1;
	}
	if (rc)
		p_dump_log(&qsd, 50);
	p_stop(&qsd);
	close(img_fd);
	free(model);
	return rc;
}
