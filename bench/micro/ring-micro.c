/* SPDX-License-Identifier: MIT */
/*
 * ring-micro: instructions per request of the device side of the ring layer, counted by
 * callgrind. One process holds both sides: a driver ring (vh_vq_driver) keeps the queue full,
 * and the device side pops a batch, does the work, pushes the batch and takes one notification
 * decision. Only the device side is counted: it runs in dev_round(), which callgrind collects
 * by name (--toggle-collect); a warm-up pass through dev_warm() is not counted, so the
 * per-ring and per-table caches start warm, as in a long-running back-end.
 *
 *   ring-micro                     the table: every case under valgrind, Ir per request
 *   ring-micro --only 'split w0'   the table, only the rows whose label contains the text
 *   ring-micro --case L W B R      one case natively (L split|packed, W w0|copy64|blk,
 *                                  B batch, R regions); prints requests done
 *
 * Work per request:
 *   w0      1-descriptor chain (a 1536-byte device-writable buffer), not touched, used len 0
 *   copy64  the same chain, 64 bytes written into it with vh_buf_to_iov(), used len 64
 *   blk     3 descriptors: 16-byte header (read), 4 KiB data (untouched), 1-byte status
 *           (written), used len 1
 *   blk-ind the same 3 pieces in an indirect table (INDIRECT_DESC), one ring descriptor
 *
 * Memory: vh_guest_mem_new_opts() splits guest memory into R equal regions of at least 2 MiB
 * (contiguous in GPA), the device maps each region separately (vh_memory_map_regions()).
 * max(queue size, R) buffers are placed round-robin over the regions, piece by piece (the
 * header, data and status of one blk request lie in three different regions), and the driver
 * uses them in turn, so consecutive buffers lie in different regions and every region is
 * used. Queue size 256 (blk: 512, so a batch of 128 three-descriptor chains fits), EVENT_IDX
 * on, kicks left enabled (the ring is never found empty).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvhost/memory.h>
#include <libvhost/ring.h>

#define QSIZE 512u       /* largest queue size used (blk) */
#define MAX_BATCH 128u
#define IOV_CAP 8u
#define RING_RESERVE (64u * 1024u) /* start of region 0 holds the ring */
#define MIN_REGION (2ull << 20)
#define IND_MAX 4u                 /* blk-ind: entries per indirect table */
#define WARM_REQS 4096u
#define MEASURE_REQS 16384u

enum work { W0, COPY64, BLK, BLKIND, NWORK };

static const char *const work_names[] = { "w0", "copy64", "blk", "blk-ind" };

struct bench {
	enum work work;
	unsigned batch;
	struct vh_guest_mem *gm;
	struct vh_memory *mem;
	struct vh_vq_driver *drv;
	struct vh_vq *vq;
	unsigned qsize, nbuf, next_buf;
	uint64_t *buf_gpa;          /* per piece of each buffer (blk: header, data, status) */
	struct vh_vq_elem el[MAX_BATCH];
	struct iovec iov[MAX_BATCH][IOV_CAP];
	struct vh_vq_used used[MAX_BATCH];
	uint64_t reqs, notifies, hdr_sum;
	int failed;
};

static const uint8_t pkt[64] = { 1, 2, 3, 4, 5, 6, 7, 8 };

/* Pieces per request (blk: header, data, status) and the guest memory each one takes. */
static unsigned buf_pieces(enum work w)
{
	return w == BLK || w == BLKIND ? 3u : 1u;
}

static uint64_t buf_stride(enum work w)
{
	return w == BLK || w == BLKIND ? 4096u : 2048u;
}

static int setup(struct bench *b, int packed, enum work w, unsigned batch, unsigned nreg)
{
	uint64_t feat = VH_VQ_F_EVENT_IDX | (packed ? VH_VQ_F_RING_PACKED : 0) |
			(w == BLKIND ? VH_VQ_F_INDIRECT_DESC : 0);
	struct vh_guest_mem_opts o;
	struct vh_vq_driver_config dc;
	struct vh_vq_driver_addrs a;
	struct vh_vring_layout lay;
	struct vh_vq_config c;
	const struct vh_region *regs;
	uint64_t per_region, rsize;
	unsigned n, i;
	int r;

	memset(b, 0, sizeof(*b));
	b->work = w;
	b->batch = batch;
	b->qsize = w == BLK ? 512u : 256u; /* indirect: one descriptor per request */
	b->nbuf = nreg > b->qsize ? nreg : b->qsize;
	per_region = ((uint64_t)b->nbuf * buf_pieces(w) + nreg - 1) / nreg;
	rsize = RING_RESERVE + per_region * buf_stride(w);
	rsize = (rsize + MIN_REGION - 1) / MIN_REGION * MIN_REGION;
	memset(&o, 0, sizeof(o));
	o.size = rsize * nreg;
	o.nregions = nreg;
	o.gpa_base = 1ull << 20;
	r = vh_guest_mem_new_opts(&b->gm, &o);
	if (r < 0)
		return r;
	regs = vh_guest_mem_regions(b->gm, &n);
	if (n != nreg)
		return -EINVAL;
	r = vh_memory_map_regions(&b->mem, regs, n, NULL);
	if (r < 0)
		return r;
	b->buf_gpa = calloc((size_t)b->nbuf * buf_pieces(w), sizeof(*b->buf_gpa));
	if (b->buf_gpa == NULL)
		return -ENOMEM;
	/* Pieces round-robin over the regions: consecutive pieces, also those of one request,
	 * lie in different regions. */
	for (i = 0; i < b->nbuf * buf_pieces(w); i++) {
		unsigned reg = i % nreg, slot = i / nreg;

		b->buf_gpa[i] = regs[reg].guest_phys_addr + (reg == 0 ? RING_RESERVE : 0) +
				(uint64_t)slot * buf_stride(w);
	}
	r = vh_vring_layout(b->qsize, feat, &lay);
	if (r < 0)
		return r;
	if (lay.total > RING_RESERVE / 2)
		return -ENOSPC;
	memset(&dc, 0, sizeof(dc));
	dc.num = b->qsize;
	dc.features = feat;
	dc.ring_host = vh_guest_mem_gpa_to_host(b->gm, regs[0].guest_phys_addr, lay.total);
	dc.ring_gpa = regs[0].guest_phys_addr;
	dc.ring_size = lay.total;
	if (w == BLKIND) {
		/* The second half of the reserve: one table of IND_MAX entries per id. */
		dc.indirect_gpa = regs[0].guest_phys_addr + RING_RESERVE / 2;
		dc.indirect_host = vh_guest_mem_gpa_to_host(b->gm, dc.indirect_gpa, RING_RESERVE / 2);
		dc.indirect_size = RING_RESERVE / 2;
		dc.indirect_max = IND_MAX;
		if ((uint64_t)b->qsize * IND_MAX * 16u > dc.indirect_size)
			return -ENOSPC;
	}
	r = vh_vq_driver_new(&b->drv, &dc);
	if (r < 0)
		return r;
	vh_vq_driver_addrs(b->drv, &a);
	memset(&c, 0, sizeof(c));
	c.num = b->qsize;
	c.features = feat;
	c.addr_kind = VH_VQ_ADDR_GPA;
	c.desc_addr = a.desc_gpa;
	c.driver_addr = a.driver_gpa;
	c.device_addr = a.device_gpa;
	vh_vq_driver_base(b->drv, &c.base);
	c.mem = b->mem;
	r = vh_vq_new(&b->vq, &c);
	if (r < 0)
		return r;
	for (i = 0; i < MAX_BATCH; i++) {
		b->el[i].iov = b->iov[i];
		b->el[i].iov_cap = IOV_CAP;
	}
	return 0;
}

static void teardown(struct bench *b)
{
	vh_vq_free(b->vq);
	vh_vq_driver_free(b->drv);
	vh_memory_unref(b->mem);
	vh_guest_mem_free(b->gm);
	free(b->buf_gpa);
}

/* Driver side (not counted): collect completions, refill every free slot, publish. */
static int driver_refill(struct bench *b)
{
	struct vh_vq_driver_used u[QSIZE];
	struct vh_vq_driver_req req[QSIZE];
	struct vh_vq_seg seg[QSIZE][3];
	unsigned n = 0;
	int r;

	r = vh_vq_driver_get_used(b->drv, u, QSIZE);
	if (r < 0)
		return r;
	while (vh_vq_driver_num_free(b->drv) >= (b->work == BLK ? 3u : 1u) * (n + 1) && n < QSIZE) {
		const uint64_t *g = &b->buf_gpa[(size_t)b->next_buf * buf_pieces(b->work)];

		if (b->work == BLK || b->work == BLKIND) {
			seg[n][0] = (struct vh_vq_seg){ g[0], 16 };
			seg[n][1] = (struct vh_vq_seg){ g[1], 4096 };
			seg[n][2] = (struct vh_vq_seg){ g[2], 1 };
			req[n] = (struct vh_vq_driver_req){ seg[n], 1, 2, b->next_buf };
		} else {
			seg[n][0] = (struct vh_vq_seg){ g[0], 1536 };
			req[n] = (struct vh_vq_driver_req){ seg[n], 0, 1, b->next_buf };
		}
		b->next_buf = b->next_buf + 1 == b->nbuf ? 0 : b->next_buf + 1;
		n++;
	}
	if (n) {
		r = vh_vq_driver_add_batch(b->drv, req, n);
		if (r != (int)n)
			return r < 0 ? r : -EIO;
		vh_vq_driver_publish(b->drv);
	}
	return 0;
}

/* Device side: what a back-end does per poll. */
static inline __attribute__((always_inline)) void device_round(struct bench *b)
{
	int n = vh_vq_pop_batch(b->vq, b->el, b->batch), i;

	if (n <= 0) {
		b->failed |= n < 0;
		return;
	}
	for (i = 0; i < n; i++) {
		struct vh_vq_elem *e = &b->el[i];
		uint32_t len = 0;

		if (b->work == COPY64) {
			len = (uint32_t)vh_buf_to_iov(e->iov + e->out_num, e->in_num, 0, pkt,
						      sizeof(pkt));
		} else if (b->work == BLK || b->work == BLKIND) {
			uint64_t hdr[2];

			if (vh_iov_to_buf(e->iov, e->out_num, 0, hdr, sizeof(hdr)) == sizeof(hdr))
				b->hdr_sum += hdr[0];
			if (e->in_num) {
				struct iovec *st = &e->iov[e->out_num + e->in_num - 1];

				((uint8_t *)st->iov_base)[st->iov_len - 1] = 0;
				len = 1;
			}
		}
		b->used[i].id = e->id;
		b->used[i].len = len;
	}
	if (vh_vq_push_batch(b->vq, b->used, (unsigned)n) < 0)
		b->failed = 1;
	if (vh_vq_should_notify(b->vq) > 0)
		b->notifies++;
	b->reqs += (unsigned)n;
}

/* Two names for the same work: callgrind collects only dev_round. */
__attribute__((noinline)) void dev_warm(struct bench *b);
__attribute__((noinline)) void dev_round(struct bench *b);

void dev_warm(struct bench *b)
{
	device_round(b);
}

void dev_round(struct bench *b)
{
	device_round(b);
}

static int run_case(int packed, enum work w, unsigned batch, unsigned nreg, uint64_t *reqs)
{
	struct bench *b = calloc(1, sizeof(*b));
	int r;

	if (b == NULL)
		return -ENOMEM;
	r = setup(b, packed, w, batch, nreg);
	while (r == 0 && b->reqs < WARM_REQS && !b->failed) {
		r = driver_refill(b);
		if (r == 0)
			dev_warm(b);
	}
	b->reqs = 0;
	while (r == 0 && b->reqs < MEASURE_REQS && !b->failed) {
		r = driver_refill(b);
		if (r == 0)
			dev_round(b);
	}
	if (r == 0 && b->failed)
		r = -EIO;
	*reqs = b->reqs;
	teardown(b);
	free(b);
	return r;
}

static int parse_work(const char *s, enum work *w)
{
	for (unsigned i = 0; i < NWORK; i++)
		if (strcmp(s, work_names[i]) == 0) {
			*w = (enum work)i;
			return 0;
		}
	return -1;
}

/* Runs one case under callgrind; returns Ir per request (< 0 on failure). */
static double measure(const char *self, const char *layout, const char *work, unsigned batch,
		      unsigned nreg)
{
	char out[] = "/tmp/ring-micro-XXXXXX";
	char cmd[8192], line[512];
	unsigned long long reqs = 0, total = 0;
	int fd = mkstemp(out), n;
	FILE *p;

	if (fd < 0)
		return -1;
	close(fd);
	n = snprintf(cmd, sizeof(cmd),
		     "valgrind --tool=callgrind --toggle-collect=dev_round "
		     "--callgrind-out-file=%s '%s' --case %s %s %u %u 2>/dev/null", out, self,
		     layout, work, batch, nreg);
	p = n > 0 && (size_t)n < sizeof(cmd) && !strchr(self, '\'') ? popen(cmd, "r") : NULL;
	if (p == NULL) {
		unlink(out);
		return -1;
	}
	while (fgets(line, sizeof(line), p))
		sscanf(line, "requests=%llu", &reqs);
	if (pclose(p) != 0)
		reqs = 0;
	p = fopen(out, "r");
	if (p) {
		while (fgets(line, sizeof(line), p))
			if (sscanf(line, "totals: %llu", &total) != 1)
				(void)sscanf(line, "summary: %llu", &total);
		fclose(p);
	}
	unlink(out);
	if (reqs == 0 || total == 0)
		return -1;
	return (double)total / (double)reqs;
}

static int table(const char *only)
{
	static const unsigned batches[] = { 1, 32, 128 };
	static const unsigned regions[] = { 1, 8, 64, 509 };
	static const char *const layouts[] = { "split", "packed" };
	char self[2048];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int bad = 0;

	if (sl <= 0)
		return 1;
	self[sl] = 0;
	printf("device side, Ir per request (callgrind; pop + work + push + one notify decision "
	       "per batch)\n");
	printf("%-22s %9s %9s %9s %9s %9s\n", "case", "1 reg", "8 reg", "64 reg", "509 reg",
	       "509/1");
	for (unsigned l = 0; l < 2; l++)
		for (unsigned w = 0; w < NWORK; w++)
			for (unsigned bi = 0; bi < 3; bi++) {
				char label[64];
				double v[4];

				snprintf(label, sizeof(label), "%s %s batch %u", layouts[l],
					 work_names[w], batches[bi]);
				if (only && !strstr(label, only))
					continue;
				for (unsigned ri = 0; ri < 4; ri++) {
					v[ri] = measure(self, layouts[l], work_names[w], batches[bi],
							regions[ri]);
					bad |= v[ri] < 0;
				}
				printf("%-22s %9.1f %9.1f %9.1f %9.1f %8.2fx\n", label, v[0], v[1],
				       v[2], v[3], v[0] > 0 ? v[3] / v[0] : 0.0);
				fflush(stdout);
			}
	return bad;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "--case") == 0) {
		int packed = strcmp(argv[2], "packed") == 0;
		unsigned batch = (unsigned)strtoul(argv[4], NULL, 0);
		unsigned nreg = (unsigned)strtoul(argv[5], NULL, 0);
		uint64_t reqs = 0;
		enum work w;
		int r;

		if ((!packed && strcmp(argv[2], "split") != 0) || parse_work(argv[3], &w) < 0 ||
		    batch == 0 || batch > MAX_BATCH || nreg == 0 ||
		    nreg > VH_MEMORY_MAX_REGIONS) {
			fprintf(stderr, "bad case\n");
			return 2;
		}
		r = run_case(packed, w, batch, nreg, &reqs);
		if (r < 0) {
			fprintf(stderr, "case failed: %s\n", strerror(-r));
			return 1;
		}
		printf("requests=%" PRIu64 "\n", reqs);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "--only") == 0)
		return table(argv[2]);
	if (argc == 1)
		return table(NULL);
	fprintf(stderr, "usage: %s [--only TEXT] | --case split|packed w0|copy64|blk BATCH "
		"REGIONS\n", argv[0]);
	return 2;
}
