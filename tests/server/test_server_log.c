/* SPDX-License-Identifier: MIT */
/*
 * Dirty page logging through a vh_server (LOG_SHMFD): with LOG_ALL acked and the ring's LOG
 * flag set, exactly the pages the device wrote are marked: the device-writable buffers (as
 * far as the reported length goes) and the used ring (split) / descriptor ring (packed), and
 * not the buffers it only read. The SET_LOG_FD eventfd is signalled. Turning LOG_ALL off (while
 * the ring runs) stops the marking; without the ring's LOG flag only buffers are marked; a log
 * smaller than guest memory marks what it covers and nothing else breaks.
 */
#include <sys/mman.h>
#include "srvtest.h"

#define LNUM 64u
#define LREQ 19u

static uint64_t pg(uint64_t gpa)
{
	return gpa >> 12;
}

struct lreq {
	uint64_t out_gpa, in_gpa;
	uint32_t in_len;
	uint32_t req;
};

/* Request k reads page 2k and writes from page 2k+1 of the data area; the last one writes
 * across a page boundary (pages 2k+1 and 2k+2, which no other request uses). Requests fit
 * the data area: 2 * LREQ + 1 pages <= LNUM slots of 4096 bytes. */
static void lsubmit(struct tdrv_q *dq, struct lreq *r, uint32_t base_req)
{
	struct vh_vq_seg segs[LREQ][2];
	struct vh_vq_driver_req reqs[LREQ];

	for (unsigned k = 0; k < LREQ; k++) {
		uint32_t req = base_req + k, ol = t_out_len(req);
		uint64_t out_off = (uint64_t)(2 * k) * 4096, in_off = out_off + 4096;
		uint8_t *o = dq->data + out_off;

		if (k + 1 == LREQ)
			in_off += 4080; /* 16 bytes left in the page; every answer is longer */
		r[k].req = req;
		r[k].out_gpa = dq->data_gpa + out_off;
		r[k].in_gpa = dq->data_gpa + in_off;
		r[k].in_len = k + 1 == LREQ ? 1000 : t_in_len(req);
		memcpy(o, &req, 4);
		memcpy(o + 4, &ol, 4);
		for (uint32_t j = 8; j < ol; j++)
			o[j] = t_pat(req, j);
		segs[k][0] = (struct vh_vq_seg){ r[k].out_gpa, ol };
		segs[k][1] = (struct vh_vq_seg){ r[k].in_gpa, r[k].in_len };
		reqs[k].segs = segs[k];
		reqs[k].out_num = 1;
		reqs[k].in_num = 1;
		reqs[k].token = k;
	}
	CHECK_EQ(vh_vq_driver_add_batch(dq->d, reqs, LREQ), (int)LREQ);
	vh_vq_driver_publish(dq->d);
	tdrv_kick(dq);
}

/* Waits for the LREQ completions, checks them, returns the bytes written per request. */
static void lwait(struct tdrv_q *dq, const struct lreq *r, uint32_t *written)
{
	unsigned got = 0;
	int64_t end = t_now_ms() + T_WAIT_MS;

	while (got < LREQ && t_now_ms() < end) {
		struct vh_vq_driver_used u[LREQ];
		int n = vh_vq_driver_get_used(dq->d, u, LREQ);

		CHECK(n >= 0);
		if (n <= 0) {
			t_wait_readable(dq->call, 20);
			(void)t_read_counter(dq->call);
			continue;
		}
		for (int i = 0; i < n; i++) {
			unsigned k = (unsigned)u[i].token;
			uint32_t ol = t_out_len(r[k].req);
			uint32_t want = ol < r[k].in_len ? ol : r[k].in_len;
			const uint8_t *o = dq->data + (r[k].out_gpa - dq->data_gpa);
			const uint8_t *in = dq->data + (r[k].in_gpa - dq->data_gpa);

			CHECK_EQ(u[i].len, want);
			for (uint32_t j = 0; j < want; j++)
				if ((in[j] ^ o[j]) != 0xff) {
					T_FAIL("request %u byte %u", r[k].req, j);
					break;
				}
			written[k] = u[i].len;
		}
		got += (unsigned)n;
	}
	CHECK_EQ(got, LREQ);
}

/* Compares the marked pages with the expected set exactly (and clears the log). */
static void check_pages(struct vh_dirty_log *log, const uint64_t *want, unsigned nwant,
			const char *what)
{
	uint64_t pages[256], sorted[256];
	int64_t n = vh_dirty_log_collect(log, pages, NELEM(pages), 1);
	unsigned ns = 0;

	/* Sort and deduplicate the expectation. */
	for (unsigned i = 0; i < nwant; i++) {
		unsigned j = ns;

		while (j > 0 && sorted[j - 1] > want[i])
			j--;
		if (j > 0 && sorted[j - 1] == want[i])
			continue;
		memmove(&sorted[j + 1], &sorted[j], (ns - j) * sizeof(sorted[0]));
		sorted[j] = want[i];
		ns++;
	}
	CHECK_EQ_M(n, ns, "%s: marked pages", what);
	for (unsigned i = 0; i < ns && i < (unsigned)n; i++)
		CHECK_EQ_M(pages[i], sorted[i], "%s: page #%u", what, i);
}

static unsigned expected(const struct lreq *r, const uint32_t *written, uint64_t limit_page,
			 uint64_t *want)
{
	unsigned n = 0;

	for (unsigned k = 0; k < LREQ; k++) {
		if (!written[k])
			continue;
		for (uint64_t p = pg(r[k].in_gpa); p <= pg(r[k].in_gpa + written[k] - 1); p++)
			if (p < limit_page)
				want[n++] = p;
	}
	return n;
}

static void set_ring_log(struct tdrv *dr, int on)
{
	struct vh_vring_addr a;

	tdrv_vring_addr(&dr->q[0], 0, on, &a);
	CHECK_EQ(vh_frontend_set_vring_addr(dr->fe, &a), 0);
}

static void dirty_log(int packed)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = LNUM, .packed = packed, .event_idx = 1 };
	struct vh_dirty_log log = { 0 }, small = { 0 };
	struct lreq r[LREQ];
	uint32_t written[LREQ];
	uint64_t want[128], ring_page, mem_end, f30;
	struct tsrv t;
	struct tdrv dr;
	struct tdrv_q *dq;
	unsigned n;
	int lfd = -1, sfd = -1, efd;

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	tdrv_init(&dr, &dc);
	dq = &dr.q[0];
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK(dr.pf & VH_BIT(VH_USER_PROTOCOL_F_LOG_SHMFD));
	f30 = dr.features | VH_BIT(VH_USER_F_PROTOCOL_FEATURES);
	/* Split: the used ring; packed: the descriptor ring (used descriptors go there). */
	ring_page = packed ? pg(dq->a.desc_gpa) : pg(dq->a.device_gpa);
	CHECK_EQ(pg(dq->a.device_gpa + 6 + 8 * LNUM - 1), pg(dq->a.device_gpa));

	mem_end = vh_guest_mem_regions(dr.gm, &n)[0].guest_phys_addr + vh_guest_mem_size(dr.gm);
	CHECK_EQ(vh_dirty_log_new_memfd(&log, mem_end, &lfd), 0);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK_EQ(vh_frontend_set_log_base(dr.fe, log.size, 0, lfd), 0);
	CHECK_EQ(vh_frontend_set_log_fd(dr.fe, efd), 0);
	/* Migration starts on the running ring: LOG_ALL, then the ring's LOG flag. */
	CHECK_EQ(vh_frontend_set_features(dr.fe, f30 | VH_BIT(VH_F_LOG_ALL)), 0);
	set_ring_log(&dr, 1);
	check_pages(&log, NULL, 0, "before any request");

	memset(written, 0, sizeof(written));
	lsubmit(dq, r, 1000);
	lwait(dq, r, written);
	n = expected(r, written, UINT64_MAX, want);
	CHECK(n > LREQ); /* the last request wrote across a page boundary */
	want[n++] = ring_page;
	check_pages(&log, want, n, "LOG_ALL with ring LOG");
	CHECK(t_wait_readable(efd, T_WAIT_MS));
	CHECK(t_read_counter(efd) >= 1);

	/* Without the ring's LOG flag only the buffers are marked. */
	set_ring_log(&dr, 0);
	memset(written, 0, sizeof(written));
	lsubmit(dq, r, 2000);
	lwait(dq, r, written);
	n = expected(r, written, UINT64_MAX, want);
	check_pages(&log, want, n, "LOG_ALL without ring LOG");

	/* LOG_ALL off: nothing is marked any more. */
	set_ring_log(&dr, 1);
	CHECK_EQ(vh_frontend_set_features(dr.fe, f30), 0);
	(void)t_read_counter(efd);
	lsubmit(dq, r, 3000);
	lwait(dq, r, written);
	check_pages(&log, NULL, 0, "LOG_ALL off");
	CHECK_EQ(t_read_counter(efd), 0);

	/* A log covering only the first 16 pages of the data area: what is past it is not
	 * marked (and nothing else happens). */
	CHECK_EQ(vh_dirty_log_new_memfd(&small, dq->data_gpa + 16 * 4096, &sfd), 0);
	CHECK_EQ(vh_frontend_set_log_base(dr.fe, small.size, 0, sfd), 0);
	CHECK_EQ(vh_frontend_set_features(dr.fe, f30 | VH_BIT(VH_F_LOG_ALL)), 0);
	memset(written, 0, sizeof(written));
	lsubmit(dq, r, 4000);
	lwait(dq, r, written);
	n = expected(r, written, small.size * 8, want);
	if (ring_page < small.size * 8)
		want[n++] = ring_page;
	check_pages(&small, want, n, "short log");
	check_pages(&log, NULL, 0, "replaced log");
	CHECK_EQ(t.dev.q[0].bad, 0);

	t_teardown(&t, &dr);
	vh_dirty_log_clear(&log);
	vh_dirty_log_clear(&small);
	close(lfd);
	close(sfd);
	close(efd);
	CHECK_BASELINE(b);
}

static void test_dirty_log_split(void)
{
	dirty_log(0);
}

static void test_dirty_log_packed(void)
{
	dirty_log(1);
}

/* A log fd that is not sealed against shrinking is refused (it could SIGBUS the server): the
 * reply cannot say so (a u64 the front-end does not interpret), but nothing is marked in it. */
static void test_log_unsealed(void)
{
	struct t_baseline b = t_baseline();
	struct tsrv_cfg sc = { .nq = 1, .nthreads = 1 };
	struct tdrv_cfg dc = { .nq = 1, .num = 16 };
	struct tsrv t;
	struct tdrv dr;
	int fd = t_memfd("unsealed-log", 4096);
	uint8_t *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);

	CHECK_EQ(tsrv_create(&t, &sc), 0);
	tdrv_init(&dr, &dc);
	CHECK_EQ(tdrv_socketpair(&dr, &t), 0);
	tsrv_run(&t);
	CHECK_EQ(tdrv_handshake(&dr, 0), 0);
	CHECK_EQ(vh_frontend_set_log_base(dr.fe, 4096, 0, fd), 0);
	CHECK_EQ(vh_frontend_set_features(dr.fe, dr.features | VH_BIT(VH_F_LOG_ALL) |
					 VH_BIT(VH_USER_F_PROTOCOL_FEATURES)), 0);
	CHECK_EQ(tdrv_traffic(&dr, 0, 50, 8), 0);
	CHECK(m != MAP_FAILED);
	for (unsigned i = 0; m != MAP_FAILED && i < 4096; i++)
		if (m[i]) {
			T_FAIL("byte %u of the refused log was marked", i);
			break;
		}
	munmap(m, 4096);
	close(fd);
	t_teardown(&t, &dr);
	CHECK_BASELINE(b);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_dirty_log_split),
		T_TEST(test_dirty_log_packed),
		T_TEST(test_log_unsealed),
	};

	t_warm_threads();
	return t_run(tests, NELEM(tests), argc, argv);
}
