/* SPDX-License-Identifier: MIT */
/*
 * tools/blk_req.c on its own: the header gathered from any split, the status as the last
 * writable byte, data pieces trimmed in place and put back exactly (the server logs dirty pages
 * from the untouched array), ranges and their rules, and the gather-copy bounds. Every way of
 * cutting a request into pieces (1..5 cuts at every position) is tried for IN and OUT.
 */
#include <stdio.h>
#include <string.h>

#include "blk.h"
#include "testutil.h"

static uint8_t buf[8192];

/* Cuts [0, len) of buf at the given positions into iov; returns the number of pieces. */
static unsigned cut(struct iovec *iov, size_t base, size_t len, const size_t *cuts, unsigned n)
{
	size_t prev = 0;
	unsigned k = 0;

	for (unsigned i = 0; i <= n; i++) {
		size_t end = i < n ? cuts[i] : len;

		if (end <= prev)
			continue;
		iov[k].iov_base = buf + base + prev;
		iov[k].iov_len = end - prev;
		k++;
		prev = end;
	}
	return k;
}

static const struct blk_geometry geo = { .capacity = 64, .read_only = 0, .max_segs = 4,
					 .max_range = 16 };

static void put_hdr(size_t off, uint32_t type, uint64_t sector)
{
	struct blk_outhdr h = { type, 0, sector };

	memcpy(buf + off, &h, sizeof(h));
}

/* OUT: 16-byte header + 1024 data bytes readable (cut at c1, c2), one status byte. */
static void t_out_splits(void)
{
	for (size_t c1 = 1; c1 < 1040; c1 += 7) {
		for (size_t c2 = c1; c2 < 1040; c2 += 131) {
			struct iovec iov[8] = { { 0 } }, orig[8];
			size_t cuts[2] = { c1, c2 };
			struct vh_vq_elem e = { .iov = iov, .iov_cap = 8 };
			struct blk_parsed p;
			unsigned s;
			uint64_t total = 0;

			put_hdr(0, BLK_T_OUT, 3);
			for (unsigned i = 16; i < 1040; i++)
				buf[i] = (uint8_t)i;
			e.out_num = cut(iov, 0, 1040, cuts, 2);
			iov[e.out_num].iov_base = buf + 4000;
			iov[e.out_num].iov_len = 1;
			e.in_num = 1;
			e.out_len = 1040;
			e.in_len = 1;
			memcpy(orig, iov, sizeof(iov));
			s = blk_req_parse(&e, &geo, &p);
			CHECK_EQ(s, BLK_S_OK);
			CHECK_EQ(p.type, BLK_T_OUT);
			CHECK_EQ(p.sector, 3);
			CHECK(p.status == buf + 4000);
			CHECK_EQ(p.data_len, 1024);
			for (unsigned i = 0; i < p.ndata; i++) {
				total += p.data[i].iov_len;
				CHECK(p.data[i].iov_len > 0);
			}
			CHECK_EQ(total, 1024);
			CHECK(p.ndata > 0 && p.data[0].iov_base == buf + 16);
			blk_req_restore(&p);
			CHECK(memcmp(orig, iov, sizeof(iov)) == 0);
		}
	}
}

/* IN: header readable (cut at h), 1024 data bytes + status writable (cut at c). */
static void t_in_splits(void)
{
	for (size_t h = 1; h <= 16; h++) {
		for (size_t c = 1; c <= 1025; c += 3) {
			struct iovec iov[8] = { { 0 } }, orig[8];
			size_t hc[1] = { h }, dc[1] = { c };
			struct vh_vq_elem e = { .iov = iov, .iov_cap = 8 };
			struct blk_parsed p;
			uint64_t total = 0;

			put_hdr(0, BLK_T_IN, 63 - 1);
			e.out_num = cut(iov, 0, 16, hc, 1);
			e.in_num = cut(iov + e.out_num, 2048, 1025, dc, 1);
			e.out_len = 16;
			e.in_len = 1025;
			memcpy(orig, iov, sizeof(iov));
			CHECK_EQ(blk_req_parse(&e, &geo, &p), BLK_S_OK);
			CHECK(p.status == buf + 2048 + 1024);
			for (unsigned i = 0; i < p.ndata; i++)
				total += p.data[i].iov_len;
			CHECK_EQ(total, 1024);
			CHECK_EQ(p.data_len, 1024);
			blk_req_restore(&p);
			CHECK(memcmp(orig, iov, sizeof(iov)) == 0);
		}
	}
}

static unsigned one(uint32_t type, uint64_t sector, size_t out_extra, size_t in_len,
		    const struct blk_geometry *g, struct blk_parsed *p)
{
	struct iovec iov[2] = { { buf, 16 + out_extra }, { buf + 4096, in_len } };
	struct vh_vq_elem e = { .iov = iov, .iov_cap = 2, .out_num = 1, .in_num = in_len ? 1 : 0,
				.out_len = 16 + out_extra, .in_len = in_len };
	unsigned s;

	put_hdr(0, type, sector);
	s = blk_req_parse(&e, g, p);
	if (s == BLK_S_OK)
		blk_req_restore(p);
	return s;
}

static void t_rules(void)
{
	struct blk_geometry ro = geo;
	struct blk_parsed p;

	ro.read_only = 1;
	/* Bounds: the last sector; one past; overflowing sector numbers; partial sectors. */
	CHECK_EQ(one(BLK_T_IN, 63, 0, 513, &geo, &p), BLK_S_OK);
	CHECK_EQ(one(BLK_T_IN, 63, 0, 1025, &geo, &p), BLK_S_IOERR);
	CHECK_EQ(one(BLK_T_IN, 64, 0, 1, &geo, &p), BLK_S_OK);  /* zero bytes at the end */
	CHECK_EQ(one(BLK_T_IN, 65, 0, 1, &geo, &p), BLK_S_IOERR);
	CHECK_EQ(one(BLK_T_OUT, UINT64_MAX, 512, 1, &geo, &p), BLK_S_IOERR);
	CHECK_EQ(one(BLK_T_OUT, UINT64_MAX >> 9, 512, 1, &geo, &p), BLK_S_IOERR);
	CHECK_EQ(one(BLK_T_IN, 0, 0, 100, &geo, &p), BLK_S_IOERR);
	CHECK_EQ(one(BLK_T_OUT, 0, 100, 1, &geo, &p), BLK_S_IOERR);
	/* No status byte: nothing can be reported. */
	CHECK_EQ(one(BLK_T_FLUSH, 0, 0, 0, &geo, &p), BLK_S_IOERR);
	CHECK(p.status == NULL);
	/* Read-only: writes, discards and write-zeroes refused; reads and flushes fine. */
	CHECK_EQ(one(BLK_T_OUT, 0, 512, 1, &ro, &p), BLK_S_IOERR);
	CHECK(p.status == buf + 4096);
	CHECK_EQ(one(BLK_T_IN, 0, 0, 513, &ro, &p), BLK_S_OK);
	CHECK_EQ(one(BLK_T_FLUSH, 0, 0, 1, &ro, &p), BLK_S_OK);
	/* Unknown types. */
	CHECK_EQ(one(2, 0, 0, 1, &geo, &p), BLK_S_UNSUPP);
	CHECK_EQ(one(0xffffffffu, 0, 0, 1, &geo, &p), BLK_S_UNSUPP);
	/* GET_ID: the data area is the writable part without the status. */
	CHECK_EQ(one(BLK_T_GET_ID, 0, 0, 21, &geo, &p), BLK_S_OK);
	CHECK_EQ(p.data_len, 20);

	/* Ranges. */
	{
		struct blk_range r[5] = { { 0, 8, 0 }, { 8, 8, 0 }, { 60, 4, 0 }, { 0, 1, 0 },
					  { 0, 1, 0 } };

		memcpy(buf + 16, r, sizeof(r));
		CHECK_EQ(one(BLK_T_DISCARD, 0, 3 * 16, 1, &geo, &p), BLK_S_OK);
		CHECK_EQ(p.nranges, 3);
		CHECK_EQ(p.ranges[2].sector, 60);
		CHECK_EQ(one(BLK_T_DISCARD, 0, 5 * 16, 1, &geo, &p), BLK_S_IOERR); /* > max_segs */
		CHECK_EQ(one(BLK_T_DISCARD, 0, 0, 1, &geo, &p), BLK_S_IOERR);      /* none */
		CHECK_EQ(one(BLK_T_DISCARD, 0, 20, 1, &geo, &p), BLK_S_IOERR);     /* partial */
		CHECK_EQ(one(BLK_T_DISCARD, 0, 3 * 16, 1, &ro, &p), BLK_S_IOERR);
		r[1].flags = BLK_WZ_FLAG_UNMAP;
		memcpy(buf + 16, r, sizeof(r));
		CHECK_EQ(one(BLK_T_DISCARD, 0, 2 * 16, 1, &geo, &p), BLK_S_UNSUPP);
		CHECK_EQ(one(BLK_T_WRITE_ZEROES, 0, 2 * 16, 1, &geo, &p), BLK_S_OK);
		r[1].flags = 4;
		memcpy(buf + 16, r, sizeof(r));
		CHECK_EQ(one(BLK_T_WRITE_ZEROES, 0, 2 * 16, 1, &geo, &p), BLK_S_UNSUPP);
		r[1] = (struct blk_range){ 60, 5, 0 };  /* past the end */
		memcpy(buf + 16, r, sizeof(r));
		CHECK_EQ(one(BLK_T_WRITE_ZEROES, 0, 2 * 16, 1, &geo, &p), BLK_S_IOERR);
		r[1] = (struct blk_range){ 0, 17, 0 };  /* above max_range */
		memcpy(buf + 16, r, sizeof(r));
		CHECK_EQ(one(BLK_T_WRITE_ZEROES, 0, 2 * 16, 1, &geo, &p), BLK_S_IOERR);
		r[1] = (struct blk_range){ UINT64_MAX, 1, 0 };
		memcpy(buf + 16, r, sizeof(r));
		CHECK_EQ(one(BLK_T_DISCARD, 0, 2 * 16, 1, &geo, &p), BLK_S_IOERR);
	}
}

static void t_gather_bounds(void)
{
	uint8_t out[64];
	struct iovec iov[3] = { { buf, 3 }, { buf + 100, 5 }, { buf + 200, 2 } };

	memset(buf, 0, sizeof(buf));
	for (unsigned i = 0; i < 10; i++)
		buf[i < 3 ? i : i < 8 ? 100 + i - 3 : 200 + i - 8] = (uint8_t)(i + 1);
	memset(out, 0, sizeof(out));
	CHECK_EQ(blk_iov_to_buf(iov, 3, 0, out, 64), 10);
	for (unsigned i = 0; i < 10; i++)
		CHECK_EQ(out[i], i + 1);
	CHECK_EQ(blk_iov_to_buf(iov, 3, 4, out, 64), 6);
	CHECK_EQ(out[0], 5);
	CHECK_EQ(blk_iov_to_buf(iov, 3, 10, out, 64), 0);
	CHECK_EQ(blk_iov_to_buf(iov, 3, UINT64_MAX, out, 64), 0);
	CHECK_EQ(blk_iov_to_buf(iov, 0, 0, out, 64), 0);
	memset(out, 0xab, sizeof(out));
	CHECK_EQ(blk_buf_to_iov(iov, 3, 2, out, 64), 8);
	CHECK_EQ(buf[1], 2);
	CHECK_EQ(buf[2], 0xab);
	CHECK_EQ(buf[201], 0xab);
	CHECK_EQ(buf[202], 0);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(t_out_splits),
		T_TEST(t_in_splits),
		T_TEST(t_rules),
		T_TEST(t_gather_bounds),
	};

	return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
