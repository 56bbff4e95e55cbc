/* SPDX-License-Identifier: MIT */
/*
 * tools/vhost-user-blk driven request by request through the library's driver side (raw
 * descriptor chains over a real vhost-user connection), so every request shape a guest may
 * build is checked against the status byte, the used length and the image file:
 *   - header, data and status split over descriptors or sharing them (ANY_LAYOUT), on both
 *     sides of the server's fast path (header whole in the first piece, status alone or
 *     sharing the data's piece), with a file and with --null;
 *   - unknown types (UNSUPP), short headers, lengths that are not whole sectors, sectors at,
 *     past and far past the capacity, a chain without a writable byte (IOERR, or length 0);
 *   - GET_ID (full and short buffers), FLUSH, DISCARD and WRITE_ZEROES with several ranges
 *     (holes and zeroes in the image), their flag and limit rules;
 *   - many requests in flight at once, two queues;
 *   - read-only (writes refused by the device), --null, the writeback config byte, the
 *     config space, reconnects, --fd with a connected and with a listening socket, --connect
 *     (client mode, reconnecting).
 * Each case runs with io_uring and with --aio=sync.
 *   usage: test_blk_server VHOST_USER_BLK [TEST-NAME-FILTER]
 */
#include <poll.h>
#include <sys/un.h>

#include "peer.h"

#define IMG_SIZE (4u << 20)
#define CAP (IMG_SIZE / 512u)
#define AREA (2u << 20)           /* client buffer area */
#define DATA_OFF (64u * 1024)     /* data buffers start here in the area */

/* Request types and statuses as the virtio spec numbers them. */
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WZ = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

static const char *prog;
static char dir[64];
static uint8_t *model;
static const char *aio = "--aio=io_uring";

struct hdr {
	uint32_t type, ioprio;
	uint64_t sector;
};

struct range {
	uint64_t sector;
	uint32_t num, flags;
};

struct srv {
	struct peer p;
	char sock[200], img[200], log[200];
};

/* BLK_TEST_BLOCKDEV=1: the server gets a loop device over the image instead of the file, and
 * the checks read the device (its page cache is what the server wrote through). */
static int use_loop;
static char loops[16][32];
static unsigned nloops;

static void detach_loops(void)
{
	for (unsigned i = 0; i < nloops; i++) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "losetup -d %s", loops[i]);
		if (system(cmd) != 0)
			fprintf(stderr, "note: could not detach %s\n", loops[i]);
	}
	nloops = 0;
}

/* Attaches a loop device to file; its path replaces `path`. */
static int attach_loop(char *path, size_t len)
{
	char cmd[300], dev[32] = "";
	FILE *f;

	if (nloops == 16)
		return -1;
	snprintf(cmd, sizeof(cmd), "losetup -f --show '%s' 2>&1", path);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (!fgets(dev, sizeof(dev), f))
		dev[0] = 0;
	pclose(f);
	dev[strcspn(dev, "\n")] = 0;
	if (strncmp(dev, "/dev/loop", 9)) {
		T_FAIL("cannot attach a loop device to %s (%s): block-device tests need root", path,
		       dev);
		return -1;
	}
	snprintf(loops[nloops++], sizeof(loops[0]), "%s", dev);
	snprintf(path, len, "%s", dev);
	return 0;
}

struct cli {
	struct vh_device *dev;
	struct vh_driver *drv;
	uint8_t *area;
	uint64_t gpa;
};

static void make_image(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	p_fill(model, IMG_SIZE, 11);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, model, IMG_SIZE, 0), (ssize_t)IMG_SIZE);
	close(fd);
}

/* Starts the server with the image and extra options (NULL-terminated). */
static int srv_start(struct srv *s, const char *tag, const char *const *extra)
{
	char *argv[16];
	char sockopt[256], fileopt[256];
	int n = 0, null_disk = 0;

	snprintf(s->sock, sizeof(s->sock), "%s/%s.sock", dir, tag);
	snprintf(s->img, sizeof(s->img), "%s/%s.img", dir, tag);
	snprintf(s->log, sizeof(s->log), "%s/%s.log", dir, tag);
	snprintf(sockopt, sizeof(sockopt), "--socket-path=%s", s->sock);
	make_image(s->img);
	if (use_loop && attach_loop(s->img, sizeof(s->img)))
		return -1;
	snprintf(fileopt, sizeof(fileopt), "--blk-file=%s", s->img);
	argv[n++] = (char *)prog;
	argv[n++] = sockopt;
	argv[n++] = (char *)aio;
	argv[n++] = "--serial=blk-serial-012345678";
	for (; extra && *extra && n < 14; extra++) {
		if (!strcmp(*extra, "--null"))
			null_disk = 1;
		argv[n++] = (char *)*extra;
	}
	if (!null_disk)
		argv[n++] = fileopt;
	argv[n] = NULL;
	if (p_spawn(&s->p, argv, s->log, NULL, -1) < 0 || p_wait_socket(&s->p, s->sock, 10000) < 0) {
		p_dump_log(&s->p, 40);
		T_FAIL("%s did not start", prog);
		return -1;
	}
	return 0;
}

/* SIGTERM; the server must exit 0 and print its statistics. */
static void srv_stop(struct srv *s)
{
	int st = p_stop(&s->p);

	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(p_wait_log(&s->p, ": stats: ", 1000), 0);
}

static int cli_start(struct cli *c, struct vh_device *dev, unsigned nq)
{
	/* RO, FLUSH, CONFIG_WCE, MQ, DISCARD, WRITE_ZEROES and the ring features. */
	struct vh_driver_config dc = { .features = (1ull << 5) | (1ull << 9) | (1ull << 11) |
						   (1ull << 12) | (1ull << 13) | (1ull << 14) |
						   VH_DRIVER_RING_FEATURES,
				       .timeout_ms = 5000 };
	struct vh_driver_queues q = { .num_queues = nq, .queue_size = 256, .mem_size = AREA + 4096 };
	void *host = NULL;

	c->dev = dev;
	c->drv = NULL;
	if (!dev)
		return -1;
	CHECK_EQ(vh_driver_new(&c->drv, dev, &dc), 0);
	if (!c->drv)
		return -1;
	CHECK_EQ(vh_driver_start(c->drv, &q), 0);
	CHECK_EQ(vh_driver_alloc(c->drv, AREA, 4096, &host, &c->gpa), 0);
	c->area = host;
	return c->area ? 0 : -1;
}

static int cli_open(struct cli *c, const char *sock, unsigned nq)
{
	struct vh_frontend_config fc = { .timeout_ms = 5000 };
	struct vh_device *dev = NULL;

	CHECK_EQ(vh_frontend_device_open(&dev, sock, &fc, VH_DRIVER_USER_PROTOCOL_FEATURES), 0);
	return cli_start(c, dev, nq);
}

static void cli_close(struct cli *c)
{
	if (c->drv)
		CHECK_EQ(vh_driver_error(c->drv), 0);
	vh_driver_free(c->drv);
	vh_device_close(c->dev);
	c->drv = NULL;
	c->dev = NULL;
}

/* A piece of the buffer area: [off, off + len). */
struct piece {
	uint32_t off, len;
};

/*
 * Sends one request on queue q made of `nout` readable then `nin` writable pieces, waits for
 * it, returns the status byte (the last writable byte, preset to 0xee) or -1 if there is no
 * writable piece, and the used length in *used.
 */
static int xfer(struct cli *c, unsigned q, const struct piece *pc, unsigned nout, unsigned nin,
		uint32_t *used)
{
	struct vh_vq_seg segs[64];
	struct vh_vq_driver_req rq = { .segs = segs, .out_num = (uint16_t)nout,
				       .in_num = (uint16_t)nin, .token = 77 };
	struct vh_vq_driver_used u = { 0 };
	uint8_t *status = NULL;
	int r;

	for (unsigned i = 0; i < nout + nin; i++) {
		segs[i].gpa = c->gpa + pc[i].off;
		segs[i].len = pc[i].len;
	}
	if (nin) {
		status = c->area + pc[nout + nin - 1].off + pc[nout + nin - 1].len - 1;
		*status = 0xee;
	}
	CHECK_EQ(vh_driver_submit(c->drv, q, &rq, 1), 1);
	for (int tries = 0; tries < 100; tries++) {
		r = vh_driver_get_used(c->drv, q, &u, 1);
		if (r != 0)
			break;
		r = vh_driver_wait(c->drv, q, 5000);
		if (r < 0)
			break;
	}
	CHECK_EQ(r, 1);
	CHECK_EQ(u.token, 77);
	if (used)
		*used = u.len;
	return status ? *status : -1;
}

static void put_hdr(struct cli *c, uint32_t off, uint32_t type, uint64_t sector)
{
	struct hdr h = { type, 0, sector };

	memcpy(c->area + off, &h, sizeof(h));
}

/* The image file must equal the model over [off, off + len). */
static void check_image(const struct srv *s, uint64_t off, size_t len, const char *what)
{
	uint8_t *buf = malloc(len);
	int fd = open(s->img, O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	if (memcmp(buf, model + off, len))
		T_FAIL("%s: the image differs from the model", what);
	free(buf);
	close(fd);
}

/* ---- Request shapes --------------------------------------------------------------------- */

static void t_layouts(void)
{
	struct srv s = { 0 };
	struct cli c = { 0 };
	uint32_t used = 0;

	if (srv_start(&s, "layouts", NULL) || cli_open(&c, s.sock, 1)) {
		p_stop(&s.p);
		return;
	}
	/* OUT: header split 8 + 8, data in three pieces, status alone. */
	put_hdr(&c, 0, T_OUT, 8);
	p_fill(c.area + DATA_OFF, 4096, 21);
	{
		struct piece pc[] = { { 0, 8 }, { 8, 8 }, { DATA_OFF, 512 }, { DATA_OFF + 512, 1024 },
				      { DATA_OFF + 1536, 2560 }, { 100, 1 } };

		CHECK_EQ(xfer(&c, 0, pc, 5, 1, &used), S_OK);
		CHECK_EQ(used, 1);
	}
	memcpy(model + 8 * 512, c.area + DATA_OFF, 4096);
	/* OUT: header and data in one piece (the header ends inside it). */
	put_hdr(&c, 4096 - 16, T_OUT, 100);
	p_fill(c.area + 4096, 1024, 22);
	{
		struct piece pc[] = { { 4096 - 16, 16 + 1024 }, { 101, 1 } };

		CHECK_EQ(xfer(&c, 0, pc, 1, 1, NULL), S_OK);
	}
	memcpy(model + 100 * 512, c.area + 4096, 1024);
	/* An OUT without data changes nothing and succeeds. */
	put_hdr(&c, 0, T_OUT, 8);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { 102, 1 } }, 1, 1, NULL), S_OK);
	put_hdr(&c, 0, T_FLUSH, 0);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { 103, 1 } }, 1, 1, NULL), S_OK);
	check_image(&s, 0, IMG_SIZE, "after the writes");

	/* IN: header split 4 + 4 + 8, data and status share the last piece. */
	put_hdr(&c, 0, T_IN, 8);
	memset(c.area + DATA_OFF, 0, 8192);
	{
		struct piece pc[] = { { 0, 4 }, { 4, 4 }, { 8, 8 }, { DATA_OFF, 1000 },
				      { DATA_OFF + 1000, 3096 + 1 } };

		CHECK_EQ(xfer(&c, 0, pc, 3, 2, &used), S_OK);
		CHECK_EQ(used, 4097);
		CHECK(memcmp(c.area + DATA_OFF, model + 8 * 512, 4096) == 0);
	}
	/* IN of the last sector works; one past the capacity, far past, and overflowing fail. */
	put_hdr(&c, 0, T_IN, CAP - 1);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 513 } }, 1, 1, NULL), S_OK);
	CHECK(memcmp(c.area + DATA_OFF, model + (CAP - 1) * 512ull, 512) == 0);
	put_hdr(&c, 0, T_IN, CAP - 1);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 1025 } }, 1, 1, NULL),
		 S_IOERR);
	put_hdr(&c, 0, T_IN, CAP);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 513 } }, 1, 1, NULL),
		 S_IOERR);
	put_hdr(&c, 0, T_IN, UINT64_MAX);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 513 } }, 1, 1, NULL),
		 S_IOERR);
	put_hdr(&c, 0, T_OUT, UINT64_MAX / 512);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 512 }, { 104, 1 } }, 2, 1,
		      NULL), S_IOERR);
	/* Not whole sectors. */
	put_hdr(&c, 0, T_IN, 0);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 101 } }, 1, 1, NULL),
		 S_IOERR);
	put_hdr(&c, 0, T_OUT, 0);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 100 }, { 104, 1 } }, 2, 1,
		      NULL), S_IOERR);
	/* A short header; unknown types (SCSI 2, GET_LIFETIME 10, anything). */
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 8 }, { 104, 1 } }, 1, 1, NULL), S_IOERR);
	for (uint32_t t = 2; t < 0x20; t++) {
		if (t == T_IN || t == T_OUT || t == T_FLUSH || t == T_GET_ID || t == T_DISCARD ||
		    t == T_WZ)
			continue;
		put_hdr(&c, 0, t, 0);
		CHECK_EQ_M(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { 104, 1 } }, 1, 1, NULL),
			   S_UNSUPP, "type %u", t);
	}
	put_hdr(&c, 0, 0x80000001u, 0);  /* the legacy BARRIER bit is not a type we know */
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { 104, 1 } }, 1, 1, NULL), S_UNSUPP);
	/* No writable byte at all: nothing to report a status in; completed with length 0. */
	put_hdr(&c, 0, T_FLUSH, 0);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 } }, 1, 0, &used), -1);
	CHECK_EQ(used, 0);

	/* GET_ID: 20 bytes, then a short buffer gets the first 8. */
	put_hdr(&c, 0, T_GET_ID, 0);
	memset(c.area + DATA_OFF, 0, 64);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 20 }, { 105, 1 } }, 1, 2, NULL),
		 S_OK);
	CHECK(memcmp(c.area + DATA_OFF, "blk-serial-012345678", 20) == 0);
	memset(c.area + DATA_OFF, 0, 64);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 9 } }, 1, 1, NULL), S_OK);
	CHECK(memcmp(c.area + DATA_OFF, "blk-seri\0", 9) == 0);

	check_image(&s, 0, IMG_SIZE, "after the refused requests");
	CHECK_EQ(vh_driver_error(c.drv), 0);
	cli_close(&c);
	srv_stop(&s);
}

/*
 * Lays the bytes src[0..len) over pieces of the given lengths at separate places of the area
 * from *at on (each piece 64 bytes after the previous one's end), appending them to pc.
 */
static unsigned scatter(struct cli *c, struct piece *pc, unsigned k, uint32_t *at,
			const uint8_t *src, const uint32_t *lens, unsigned n)
{
	uint32_t done = 0;

	for (unsigned i = 0; i < n; i++) {
		pc[k].off = *at;
		pc[k].len = lens[i];
		if (src)
			memcpy(c->area + *at, src + done, lens[i]);
		else
			memset(c->area + *at, 0x5a, lens[i]);
		done += lens[i];
		*at += lens[i] + 64;
		k++;
	}
	return k;
}

/* Request layouts at the boundary of the server's fast path (the header whole in the first
 * piece, the status byte last in the last piece): readable then writable piece lengths. */
struct shape {
	unsigned nr, nw;
	uint32_t r[4], w[4];
};

/* IN: header (16, maybe with 8 spare readable bytes), 2048 data bytes and the status. */
static const struct shape in_shapes[] = {
	{ 1, 2, { 16 }, { 2048, 1 } },          /* the usual: status alone */
	{ 1, 1, { 16 }, { 2049 } },             /* status shares the data's piece */
	{ 1, 3, { 16 }, { 1024, 1024, 1 } },
	{ 1, 2, { 16 }, { 1024, 1025 } },
	{ 1, 2, { 16 }, { 2047, 2 } },          /* status and a data byte share a piece */
	{ 1, 2, { 16 }, { 1, 2048 } },
	{ 1, 2, { 24 }, { 2048, 1 } },          /* spare readable bytes after the header */
	{ 2, 2, { 8, 8 }, { 2048, 1 } },        /* header split */
	{ 2, 1, { 15, 1 }, { 2049 } },
	{ 2, 2, { 1, 15 }, { 2048, 1 } },
	{ 3, 2, { 4, 4, 8 }, { 1000, 1049 } },
};

/* OUT: header, 2048 data bytes (some maybe in the header's piece), status (maybe after
 * spare writable bytes). */
static const struct shape out_shapes[] = {
	{ 2, 1, { 16, 2048 }, { 1 } },          /* the usual */
	{ 3, 1, { 16, 1024, 1024 }, { 1 } },
	{ 1, 1, { 2064 }, { 1 } },              /* header and data share a piece */
	{ 2, 1, { 17, 2047 }, { 1 } },          /* one data byte in the header's piece */
	{ 2, 1, { 528, 1536 }, { 1 } },
	{ 3, 1, { 8, 8, 2048 }, { 1 } },        /* header split */
	{ 2, 1, { 15, 2049 }, { 1 } },          /* ...its last byte with the data */
	{ 2, 1, { 8, 2056 }, { 1 } },
	{ 2, 2, { 16, 2048 }, { 3, 1 } },       /* status after spare writable bytes */
	{ 2, 1, { 16, 2048 }, { 4 } },
};

/*
 * Every shape of in_shapes / out_shapes at a different sector: the status byte, the used
 * length (the whole writable part), the bytes read against the image, the bytes written in
 * the image, and that nothing before the status byte in its piece was overwritten. With
 * --null (null_disk) the data is neither read nor written: only status, length and the bytes
 * beside the status are checked.
 */
static void boundary_shapes(struct srv *s, struct cli *c, int null_disk, uint64_t cap)
{
	uint8_t src[2048 + 24], got[2048 + 8];

	for (unsigned set = 0; set < 2; set++) {
		const struct shape *sh = set ? out_shapes : in_shapes;
		unsigned nsh = set ? sizeof(out_shapes) / sizeof(out_shapes[0])
				   : sizeof(in_shapes) / sizeof(in_shapes[0]);

		for (unsigned i = 0; i < nsh; i++) {
			struct piece pc[8];
			struct hdr h = { set ? T_OUT : T_IN, 0, (cap - 64) - 8 * (set * 16 + i) };
			uint32_t at = 256 * 1024, in_len = 0, used = 0;
			unsigned k, last;
			uint8_t before;

			memcpy(src, &h, sizeof(h));
			p_fill(src + 16, sizeof(src) - 16, 40 + set * 16 + i);
			k = scatter(c, pc, 0, &at, src, sh[i].r, sh[i].nr);
			k = scatter(c, pc, k, &at, NULL, sh[i].w, sh[i].nw);
			last = k - 1;
			for (unsigned j = 0; j < sh[i].nw; j++)
				in_len += sh[i].w[j];
			before = pc[last].len > 1 ? c->area[pc[last].off + pc[last].len - 2] : 0;
			CHECK_EQ_M(xfer(c, 0, pc, sh[i].nr, sh[i].nw, &used), S_OK, "%s shape %u",
				   set ? "OUT" : "IN", i);
			CHECK_EQ_M(used, in_len, "%s shape %u", set ? "OUT" : "IN", i);
			if (pc[last].len > 1 && (set || null_disk))
				CHECK_EQ_M(c->area[pc[last].off + pc[last].len - 2], before,
					   "%s shape %u: the byte before the status", set ? "OUT" : "IN",
					   i);
			if (null_disk)
				continue;
			if (!set) {
				/* Gather the writable part: 2048 data bytes, then the status. */
				uint32_t n = 0;

				for (unsigned j = sh[i].nr; j <= last; j++) {
					memcpy(got + n, c->area + pc[j].off, pc[j].len);
					n += pc[j].len;
				}
				CHECK_EQ(n, 2049);
				if (memcmp(got, model + h.sector * 512, 2048))
					T_FAIL("IN shape %u: the data read differs from the image", i);
			} else {
				memcpy(model + h.sector * 512, src + 16, 2048);
			}
		}
	}
	if (!null_disk)
		check_image(s, 0, IMG_SIZE, "after the boundary shapes");
}

static void t_boundary(void)
{
	struct srv s = { 0 };
	struct cli c = { 0 };

	if (srv_start(&s, "boundary", NULL) || cli_open(&c, s.sock, 1)) {
		p_stop(&s.p);
		return;
	}
	boundary_shapes(&s, &c, 0, CAP);
	CHECK_EQ(vh_driver_error(c.drv), 0);
	cli_close(&c);
	srv_stop(&s);
	/* The counters the device adds up per call reach the statistics line. */
	CHECK_EQ(p_wait_log(&s.p, " reads=11 writes=10 flushes=0 get_id=0 discards=0 "
			    "write_zeroes=0 bytes_read=22528 bytes_written=20480 ioerr=0 unsupp=0 ",
			    1000), 0);
}

static void wz_or_discard(struct cli *c, uint32_t type, const struct range *r, unsigned n,
			  int want)
{
	put_hdr(c, 0, type, 0);
	memcpy(c->area + 16, r, n * sizeof(*r));
	CHECK_EQ_M(xfer(c, 0, (struct piece[]){ { 0, 16 + n * (uint32_t)sizeof(*r) }, { 1000, 1 } },
			1, 1, NULL), want, "type %u, %u ranges", type, n);
}

/* Bytes allocated to a regular file; for a block device, a value that always decreases, since
 * its allocation is not visible here. */
static uint64_t allocated(const char *path)
{
	static uint64_t fake = UINT64_MAX;
	struct stat st;

	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return fake--;
	return (uint64_t)st.st_blocks * 512;
}

static void t_discard_write_zeroes(void)
{
	struct srv s = { 0 };
	struct cli c = { 0 };
	struct range r[17];
	uint64_t before;

	if (srv_start(&s, "dwz", NULL) || cli_open(&c, s.sock, 1)) {
		p_stop(&s.p);
		return;
	}
	before = allocated(s.img);
	/* Two discard ranges of 64 KiB: holes that read as zeroes; the rest untouched. */
	r[0] = (struct range){ 256, 128, 0 };
	r[1] = (struct range){ 1024, 128, 0 };
	wz_or_discard(&c, T_DISCARD, r, 2, S_OK);
	memset(model + 256 * 512, 0, 128 * 512);
	memset(model + 1024 * 512, 0, 128 * 512);
	check_image(&s, 0, IMG_SIZE, "after discard");
	CHECK(allocated(s.img) < before);
	/* Write-zeroes without UNMAP (allocated zeroes), then with UNMAP (a hole). */
	r[0] = (struct range){ 2048, 64, 0 };
	wz_or_discard(&c, T_WZ, r, 1, S_OK);
	memset(model + 2048 * 512, 0, 64 * 512);
	before = allocated(s.img);
	r[0] = (struct range){ 4096, 256, 1 };
	wz_or_discard(&c, T_WZ, r, 1, S_OK);
	memset(model + 4096 * 512, 0, 256 * 512);
	CHECK(allocated(s.img) < before);
	check_image(&s, 0, IMG_SIZE, "after write-zeroes");

	/* Rules: UNMAP on a discard, unknown flags, too many ranges, past the end, too long. */
	r[0] = (struct range){ 0, 8, 1 };
	wz_or_discard(&c, T_DISCARD, r, 1, S_UNSUPP);
	r[0] = (struct range){ 0, 8, 2 };
	wz_or_discard(&c, T_WZ, r, 1, S_UNSUPP);
	wz_or_discard(&c, T_DISCARD, r, 1, S_UNSUPP);
	for (int i = 0; i < 17; i++)
		r[i] = (struct range){ (uint64_t)i * 8, 8, 0 };
	wz_or_discard(&c, T_DISCARD, r, 17, S_IOERR);
	r[0] = (struct range){ CAP - 4, 8, 0 };
	wz_or_discard(&c, T_WZ, r, 1, S_IOERR);
	r[0] = (struct range){ UINT64_MAX - 3, 8, 0 };
	wz_or_discard(&c, T_DISCARD, r, 1, S_IOERR);
	r[0] = (struct range){ 0, 0x400000, 0 };
	wz_or_discard(&c, T_DISCARD, r, 1, S_IOERR);
	/* No range at all, and a range cut short. */
	put_hdr(&c, 0, T_DISCARD, 0);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { 1000, 1 } }, 1, 1, NULL), S_IOERR);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 24 }, { 1000, 1 } }, 1, 1, NULL), S_IOERR);
	check_image(&s, 0, IMG_SIZE, "after the refused ranges");
	cli_close(&c);
	srv_stop(&s);
	CHECK(p_wait_log(&s.p, "discards=8 write_zeroes=4", 10) == 0);
}

/* 80 writes of 4 KiB in flight on each of two queues (240 of 256 descriptors). */
static void t_many_in_flight(void)
{
	const char *extra[] = { "--num-queues=2", NULL };
	struct srv s = { 0 };
	struct cli c = { 0 };
	enum { N = 80 };

	if (srv_start(&s, "many", extra) || cli_open(&c, s.sock, 2)) {
		p_stop(&s.p);
		return;
	}
	for (unsigned q = 0; q < 2; q++) {
		static struct vh_vq_seg segs[N][3];
		struct vh_vq_driver_req rq[N];
		struct vh_vq_driver_used u[N];
		unsigned got = 0;

		for (unsigned i = 0; i < N; i++) {
			uint32_t hoff = 1024 + i * 32, doff = DATA_OFF + i * 4096;
			uint64_t sector = (q * N + i) * 8ull;

			put_hdr(&c, hoff, T_OUT, sector);
			p_fill(c.area + doff, 4096, 1000 + q * N + i);
			memcpy(model + sector * 512, c.area + doff, 4096);
			c.area[hoff + 16] = 0xee;
			segs[i][0] = (struct vh_vq_seg){ c.gpa + hoff, 16 };
			segs[i][1] = (struct vh_vq_seg){ c.gpa + doff, 4096 };
			segs[i][2] = (struct vh_vq_seg){ c.gpa + hoff + 16, 1 };
			rq[i] = (struct vh_vq_driver_req){ segs[i], 2, 1, i };
		}
		CHECK_EQ(vh_driver_submit(c.drv, q, rq, N), N);
		for (int tries = 0; got < N && tries < 1000; tries++) {
			int r = vh_driver_get_used(c.drv, q, u, N);

			if (r > 0) {
				for (int k = 0; k < r; k++)
					CHECK_EQ(c.area[1024 + u[k].token * 32 + 16], S_OK);
				got += (unsigned)r;
			} else if (vh_driver_wait(c.drv, q, 5000) < 0) {
				break;
			}
		}
		CHECK_EQ(got, N);
	}
	check_image(&s, 0, IMG_SIZE, "after the batches");
	cli_close(&c);
	srv_stop(&s);
	/* Both queues carried requests and several were in flight at once. */
	CHECK(p_wait_log(&s.p, " q0=", 10) == 0 && p_wait_log(&s.p, " q1=", 10) == 0);
}

/* SIGTERM while requests are in flight: the server completes or abandons them and exits 0
 * with its statistics; the client sees the connection end, nothing hangs. */
static void t_stop_under_load(void)
{
	struct srv s = { 0 };
	struct cli c = { 0 };
	static struct vh_vq_seg segs[80][3];
	struct vh_vq_driver_req rq[80];
	int st;

	if (srv_start(&s, "stop", NULL) || cli_open(&c, s.sock, 1)) {
		p_stop(&s.p);
		return;
	}
	for (unsigned i = 0; i < 80; i++) {
		uint32_t hoff = 1024 + i * 32, doff = DATA_OFF + i * 16384;

		put_hdr(&c, hoff, T_OUT, i * 32ull);
		segs[i][0] = (struct vh_vq_seg){ c.gpa + hoff, 16 };
		segs[i][1] = (struct vh_vq_seg){ c.gpa + doff, 16384 };
		segs[i][2] = (struct vh_vq_seg){ c.gpa + hoff + 16, 1 };
		rq[i] = (struct vh_vq_driver_req){ segs[i], 2, 1, i };
	}
	CHECK_EQ(vh_driver_submit(c.drv, 0, rq, 80), 80);
	st = p_stop(&s.p);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(p_wait_log(&s.p, ": stats: ", 10), 0);
	vh_driver_free(c.drv);
	vh_device_close(c.dev);
}

/* ---- Variants of the device ------------------------------------------------------------- */

static void t_read_only(void)
{
	const char *extra[] = { "--read-only", NULL };
	struct srv s = { 0 };
	struct cli c = { 0 };
	struct range r = { 0, 8, 0 };

	if (srv_start(&s, "ro", extra) || cli_open(&c, s.sock, 1)) {
		p_stop(&s.p);
		return;
	}
	CHECK(vh_driver_features(c.drv) & (1ull << 5));        /* RO */
	CHECK(!(vh_driver_features_offered(c.drv) & (1ull << 13))); /* no DISCARD */
	CHECK(!(vh_driver_features_offered(c.drv) & (1ull << 14))); /* no WRITE_ZEROES */
	put_hdr(&c, 0, T_OUT, 0);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 512 }, { 104, 1 } }, 2, 1,
		      NULL), S_IOERR);
	wz_or_discard(&c, T_DISCARD, &r, 1, S_IOERR);
	wz_or_discard(&c, T_WZ, &r, 1, S_IOERR);
	put_hdr(&c, 0, T_IN, 0);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 4097 } }, 1, 1, NULL), S_OK);
	CHECK(memcmp(c.area + DATA_OFF, model, 4096) == 0);
	put_hdr(&c, 0, T_FLUSH, 0);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { 104, 1 } }, 1, 1, NULL), S_OK);
	check_image(&s, 0, IMG_SIZE, "read-only");
	cli_close(&c);
	srv_stop(&s);
}

static void t_null(void)
{
	const char *extra[] = { "--size=1M", "--null", NULL };
	struct srv s = { 0 };
	struct cli c = { 0 };
	uint64_t cap = 0;

	if (srv_start(&s, "null", extra) || cli_open(&c, s.sock, 1)) {
		p_stop(&s.p);
		return;
	}
	CHECK_EQ(vh_device_get_config(c.dev, 0, &cap, 8), 0);
	CHECK_EQ(cap, 2048);
	put_hdr(&c, 0, T_OUT, 2040);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 4096 }, { 104, 1 } }, 2, 1,
		      NULL), S_OK);
	put_hdr(&c, 0, T_IN, 2041);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 4097 } }, 1, 1, NULL),
		 S_IOERR);
	/* The null disk's own shortcut (no I/O: the pieces are never split into data and
	 * status) on every shape, in the usual layout and beside it. */
	boundary_shapes(&s, &c, 1, cap);
	cli_close(&c);
	srv_stop(&s);
}

/* Config space as QEMU reads it, and the writeback byte QEMU writes (CONFIG_WCE). */
static void t_config(void)
{
	const char *extra[] = { "--num-queues=3", NULL };
	struct srv s = { 0 };
	struct cli c = { 0 };
	uint8_t cfg[96];
	uint8_t off = 0;
	uint32_t u32;
	uint16_t u16;
	uint64_t u64;

	if (srv_start(&s, "config", extra) || cli_open(&c, s.sock, 1)) {
		p_stop(&s.p);
		return;
	}
	memset(cfg, 0xff, sizeof(cfg));
	CHECK_EQ(vh_device_get_config(c.dev, 0, cfg, sizeof(cfg)), 0);
	memcpy(&u64, cfg, 8);
	CHECK_EQ(u64, CAP);
	memcpy(&u32, cfg + 12, 4);
	CHECK_EQ(u32, 126);                 /* seg_max */
	memcpy(&u32, cfg + 20, 4);
	CHECK_EQ(u32, 512);                 /* blk_size */
	CHECK_EQ(cfg[32], 1);               /* writeback */
	memcpy(&u16, cfg + 34, 2);
	CHECK_EQ(u16, 3);                   /* num_queues */
	memcpy(&u32, cfg + 40, 4);
	CHECK_EQ(u32, 16);                  /* max_discard_seg */
	CHECK_EQ(cfg[56], 1);               /* write_zeroes_may_unmap */
	for (unsigned i = 72; i < 96; i++)
		CHECK_EQ_M(cfg[i], 0, "zoned byte %u", i);
	CHECK_EQ(vh_device_set_config(c.dev, 32, &off, 1), 0);
	memset(cfg, 0xff, sizeof(cfg));
	CHECK_EQ(vh_device_get_config(c.dev, 32, cfg, 1), 0);
	CHECK_EQ(cfg[0], 0);
	/* Writethrough writes still land. */
	put_hdr(&c, 0, T_OUT, 16);
	p_fill(c.area + DATA_OFF, 512, 31);
	memcpy(model + 16 * 512, c.area + DATA_OFF, 512);
	CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 512 }, { 104, 1 } }, 2, 1,
		      NULL), S_OK);
	check_image(&s, 0, IMG_SIZE, "writethrough");
	/* Read-only fields do not change. */
	u64 = 1;
	CHECK_EQ(vh_device_set_config(c.dev, 0, &u64, 8), 0);
	CHECK_EQ(vh_device_get_config(c.dev, 0, &u64, 8), 0);
	CHECK_EQ(u64, CAP);
	cli_close(&c);
	srv_stop(&s);
	CHECK_EQ(p_wait_log(&s.p, "write cache off", 10), 0);
}

/* Server mode serves one connection after another; state does not leak between them. */
static void t_reconnect(void)
{
	struct srv s = { 0 };

	if (srv_start(&s, "reconnect", NULL))
		return;
	for (int round = 0; round < 3; round++) {
		struct cli c = { 0 };

		if (cli_open(&c, s.sock, 1))
			break;
		put_hdr(&c, 0, T_OUT, 64 + (uint64_t)round * 8);
		p_fill(c.area + DATA_OFF, 4096, 40 + (uint64_t)round);
		memcpy(model + (64 + round * 8) * 512, c.area + DATA_OFF, 4096);
		CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 4096 }, { 104, 1 } },
			      2, 1, NULL), S_OK);
		cli_close(&c);
	}
	check_image(&s, 0, IMG_SIZE, "after three connections");
	CHECK(p_alive(&s.p));
	srv_stop(&s);
	CHECK_EQ(p_wait_log(&s.p, "connections=3", 10), 0);
}

/* --fd: a connected socket is served once (the server exits 0 when it closes); a listening
 * one like --socket-path. */
static void t_inherited_fd(void)
{
	struct vh_frontend_config fc = { .timeout_ms = 5000 };
	struct peer p = { 0 };
	char log[256], img[256], fileopt[300], fdopt[32];
	int sv[2], st;

	snprintf(log, sizeof(log), "%s/fd.log", dir);
	snprintf(img, sizeof(img), "%s/fd.img", dir);
	snprintf(fileopt, sizeof(fileopt), "--blk-file=%s", img);
	make_image(img);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* Only the server's end is inherited, or our close would not end its connection. */
	CHECK_EQ(fcntl(sv[0], F_SETFD, FD_CLOEXEC), 0);
	snprintf(fdopt, sizeof(fdopt), "--fd=%d", sv[1]);
	{
		char *argv[] = { (char *)prog, fdopt, fileopt, (char *)aio, NULL };
		struct vh_frontend *fe = NULL;
		struct cli c = { 0 };

		CHECK_EQ(p_spawn(&p, argv, log, NULL, -1), 0);
		close(sv[1]);
		CHECK_EQ(vh_frontend_new(&fe, sv[0], &fc), 0);
		if (fe) {
			CHECK_EQ(vh_frontend_negotiate(fe, VH_DRIVER_USER_PROTOCOL_FEATURES, NULL,
						       NULL), 0);
			if (cli_start(&c, vh_frontend_device(fe), 1) == 0) {
				put_hdr(&c, 0, T_IN, 0);
				CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 513 } },
					      1, 1, NULL), S_OK);
				CHECK(memcmp(c.area + DATA_OFF, model, 512) == 0);
			}
			vh_driver_free(c.drv);
			vh_frontend_free(fe);  /* closes sv[0]: the server's only connection ends */
		}
		st = -1;
		for (int i = 0; i < 100; i++) {
			if (waitpid(p.pid, &st, WNOHANG) == p.pid) {
				p.pid = 0;
				break;
			}
			t_sleep_ms(50);
		}
		CHECK_EQ(p.pid, 0);  /* it ended by itself */
		if (p.pid)
			p_stop(&p);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		CHECK_EQ(p_wait_log(&p, "the front-end closed the connection", 10), 0);
	}
	/* A listening socket handed over. */
	{
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int l = socket(AF_UNIX, SOCK_STREAM, 0);
		char *argv[] = { (char *)prog, fdopt, fileopt, (char *)aio, NULL };
		struct cli c = { 0 };

		snprintf(a.sun_path, sizeof(a.sun_path), "%s/fd-listen.sock", dir);
		CHECK(l >= 0);
		CHECK_EQ(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
		CHECK_EQ(listen(l, 4), 0);
		snprintf(fdopt, sizeof(fdopt), "--fd=%d", l);
		snprintf(log, sizeof(log), "%s/fd-listen.log", dir);
		CHECK_EQ(p_spawn(&p, argv, log, NULL, -1), 0);
		close(l);
		for (int round = 0; round < 2; round++) {
			if (cli_open(&c, a.sun_path, 1) == 0) {
				put_hdr(&c, 0, T_IN, 8);
				CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 513 } },
					      1, 1, NULL), S_OK);
				CHECK(memcmp(c.area + DATA_OFF, model + 4096, 512) == 0);
			}
			cli_close(&c);
		}
		st = p_stop(&p);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

/* --connect: client mode against a listening front-end, reconnecting after each disconnect. */
static void t_client_mode(void)
{
	struct vh_frontend_config fc = { .timeout_ms = 5000 };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct peer p = { 0 };
	char log[256], img[256], fileopt[300], connopt[160];
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), st;

	snprintf(log, sizeof(log), "%s/client.log", dir);
	snprintf(img, sizeof(img), "%s/client.img", dir);
	snprintf(fileopt, sizeof(fileopt), "--blk-file=%s", img);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/fe.sock", dir);
	snprintf(connopt, sizeof(connopt), "--connect=%s", a.sun_path);
	make_image(img);
	CHECK(l >= 0);
	CHECK_EQ(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(listen(l, 4), 0);
	{
		char *argv[] = { (char *)prog, connopt, fileopt, (char *)aio, NULL };

		CHECK_EQ(p_spawn(&p, argv, log, NULL, -1), 0);
	}
	for (int round = 0; round < 2; round++) {
		struct pollfd pf = { .fd = l, .events = POLLIN };
		struct vh_frontend *fe = NULL;
		struct cli c = { 0 };
		int fd = -1;

		/* The first connection comes at once, the next within the retry period. */
		if (poll(&pf, 1, 5000) == 1)
			fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		CHECK_EQ_M(fd >= 0, 1, "connection %d", round);
		if (fd < 0)
			break;
		CHECK_EQ(vh_frontend_new(&fe, fd, &fc), 0);
		if (!fe)
			break;
		CHECK_EQ(vh_frontend_negotiate(fe, VH_DRIVER_USER_PROTOCOL_FEATURES, NULL, NULL), 0);
		if (cli_start(&c, vh_frontend_device(fe), 1) == 0) {
			put_hdr(&c, 0, T_IN, 16 + (uint64_t)round);
			CHECK_EQ(xfer(&c, 0, (struct piece[]){ { 0, 16 }, { DATA_OFF, 513 } }, 1, 1,
				      NULL), S_OK);
			CHECK(memcmp(c.area + DATA_OFF, model + (16 + round) * 512, 512) == 0);
		}
		vh_driver_free(c.drv);
		vh_frontend_free(fe);
	}
	close(l);
	st = p_stop(&p);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(p_wait_log(&p, "connections=2", 10), 0);
}

/* Each engine in turn; BLK_TEST_AIO=sync (or io_uring) runs only that one (valgrind runs
 * the synchronous engine only). */
static void run_all(void (*fn)(void))
{
	const char *only = getenv("BLK_TEST_AIO"), *saved = aio;

	if (!only || !strcmp(only, "io_uring")) {
		aio = "--aio=io_uring";
		fn();
	}
	if (!only || !strcmp(only, "sync")) {
		aio = "--aio=sync";
		fn();
	}
	aio = saved;
}

static void t_layouts_both(void) { run_all(t_layouts); }
static void t_boundary_both(void) { run_all(t_boundary); }
static void t_discard_write_zeroes_both(void) { run_all(t_discard_write_zeroes); }
static void t_many_in_flight_both(void) { run_all(t_many_in_flight); }
static void t_read_only_both(void) { run_all(t_read_only); }

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		{ "layouts", t_layouts_both },
		{ "boundary", t_boundary_both },
		{ "discard_write_zeroes", t_discard_write_zeroes_both },
		{ "many_in_flight", t_many_in_flight_both },
		{ "stop_under_load", t_stop_under_load },
		{ "read_only", t_read_only_both },
		{ "null", t_null },
		{ "config", t_config },
		{ "reconnect", t_reconnect },
		{ "inherited_fd", t_inherited_fd },
		{ "client_mode", t_client_mode },
	};

	if (argc < 2 || access(argv[1], X_OK)) {
		fprintf(stderr, "usage: test_blk_server VHOST_USER_BLK [FILTER]\n");
		return 2;
	}
	prog = argv[1];
	use_loop = getenv("BLK_TEST_BLOCKDEV") != NULL;
	atexit(detach_loops);
	if (getenv("BLK_TEST_AIO") && !strcmp(getenv("BLK_TEST_AIO"), "sync"))
		aio = "--aio=sync";
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "%s", p_tmpdir());
	model = malloc(IMG_SIZE);
	return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc - 1, argv + 1);
}
