/* SPDX-License-Identifier: MIT */
/*
 * tools/blk_req.c on its own: the header gathered from any split, the status as the last
 * writable byte, data pieces trimmed in place and put back exactly (the server logs dirty pages
 * from the untouched array), ranges and their rules, and the gather-copy bounds. Every way of
 * cutting a request into pieces (1..5 cuts at every position) is tried for IN and OUT, and the
 * inline fast path (blk.h) is checked against the general parser on both sides of its
 * boundary.
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

/* ---- The fast path's boundary ----------------------------------------------------------- */

/* A layout: piece lengths of the readable part, then of the writable part (0-terminated
 * lists would forbid empty pieces, so each has its count). */
struct layout {
	unsigned nr, nw;
	size_t r[4], w[4];
};

/* Lays the readable pieces over buf[0..) and the writable ones over buf[4096..), each piece
 * 32 bytes after the previous one's end (so no two touch). Returns the element. */
static struct vh_vq_elem lay(struct iovec *iov, const struct layout *l)
{
	struct vh_vq_elem e = { .iov = iov, .iov_cap = 8, .out_num = l->nr, .in_num = l->nw };
	size_t at = 0;

	for (unsigned i = 0; i < l->nr; i++) {
		iov[i].iov_base = buf + at;
		iov[i].iov_len = l->r[i];
		e.out_len += l->r[i];
		at += l->r[i] + 32;
	}
	at = 4096;
	for (unsigned i = 0; i < l->nw; i++) {
		iov[l->nr + i].iov_base = buf + at;
		iov[l->nr + i].iov_len = l->w[i];
		e.in_len += l->w[i];
		at += l->w[i] + 32;
	}
	return e;
}

/* Writes bytes [0, len) of a request's readable part through its pieces. */
static void fill_readable(const struct vh_vq_elem *e, const uint8_t *src, size_t len)
{
	CHECK_EQ(blk_buf_to_iov(e->iov, e->out_num, 0, src, len), len);
}

/* Whether the fast path must take this request (the usual layout, a valid IN or OUT). */
static int fast_expected(const struct layout *l, uint32_t type, uint64_t sector,
			 const struct blk_geometry *g)
{
	uint64_t len, out = 0, in = 0;

	if (l->nr == 0 || l->nw == 0 || l->r[0] < 16 || l->w[l->nw - 1] == 0)
		return 0;
	for (unsigned i = 0; i < l->nr; i++)
		out += l->r[i];
	for (unsigned i = 0; i < l->nw; i++)
		in += l->w[i];
	if (type == BLK_T_IN)
		len = in - 1;
	else if (type == BLK_T_OUT && !g->read_only)
		len = out - 16;
	else
		return 0;
	return len % 512 == 0 && sector <= g->capacity && len / 512 <= g->capacity - sector;
}

/*
 * Every layout at the boundary of the fast path (header whole in the first piece or split,
 * status alone or sharing the data's piece, empty pieces anywhere, data in the header's
 * piece), for IN, OUT and the types the fast path leaves alone, on a writable and a read-only
 * disk, at sectors inside, at and past the end: the inline parse (fast where it can) and the
 * general one must agree on the status, the status byte, the type, the sector and the data
 * bytes, the fast path must take exactly the usual layout, and the pieces must come back
 * exactly.
 */
static void t_fast_boundary(void)
{
	static const struct layout in_lay[] = {
		{ 1, 1, { 16 }, { 1025 } },            /* status shares the data's piece */
		{ 1, 2, { 16 }, { 1024, 1 } },         /* status alone */
		{ 1, 3, { 16 }, { 512, 512, 1 } },
		{ 1, 2, { 16 }, { 1023, 2 } },         /* status and a data byte share a piece */
		{ 1, 2, { 24 }, { 1024, 1 } },         /* readable bytes after the header */
		{ 2, 2, { 8, 8 }, { 1024, 1 } },       /* header split */
		{ 2, 2, { 15, 1 }, { 1024, 1 } },
		{ 2, 2, { 1, 15 }, { 1025, 0 } },      /* ...and an empty last piece */
		{ 2, 2, { 0, 16 }, { 1024, 1 } },      /* an empty piece before the header */
		{ 2, 2, { 16, 0 }, { 1024, 1 } },      /* ...after it */
		{ 1, 3, { 16 }, { 0, 1024, 1 } },      /* empty writable pieces */
		{ 1, 3, { 16 }, { 1024, 0, 1 } },
		{ 1, 2, { 16 }, { 1025, 0 } },         /* empty last piece: no status byte */
		{ 1, 1, { 16 }, { 1 } },               /* no data */
		{ 1, 1, { 16 }, { 0 } },
		{ 1, 0, { 16 }, { 0 } },               /* nothing writable */
		{ 0, 2, { 0 }, { 1024, 1 } },          /* nothing readable */
		{ 1, 2, { 15 }, { 1024, 1 } },         /* short header */
	};
	static const struct layout out_lay[] = {
		{ 2, 1, { 16, 1024 }, { 1 } },         /* header alone */
		{ 1, 1, { 1040 }, { 1 } },             /* header and data share a piece */
		{ 2, 1, { 17, 1023 }, { 1 } },         /* one data byte in the header's piece */
		{ 3, 1, { 16, 512, 512 }, { 1 } },
		{ 3, 1, { 8, 8, 1024 }, { 1 } },       /* header split */
		{ 2, 1, { 15, 1025 }, { 1 } },         /* ...its last byte with the data */
		{ 3, 1, { 16, 0, 1024 }, { 1 } },      /* empty pieces */
		{ 3, 1, { 0, 16, 1024 }, { 1 } },
		{ 3, 1, { 16, 1024, 0 }, { 1 } },
		{ 2, 2, { 16, 1024 }, { 0, 1 } },
		{ 2, 2, { 16, 1024 }, { 1, 0 } },      /* empty last piece: no status byte */
		{ 2, 1, { 16, 1024 }, { 3 } },         /* the status is the last of 3 writable bytes */
		{ 1, 1, { 16 }, { 1 } },               /* no data */
		{ 2, 1, { 16, 1000 }, { 1 } },         /* not whole sectors */
		{ 2, 0, { 16, 1024 }, { 0 } },
	};
	static const uint64_t sectors[] = { 0, 61, 62, 63, 64, 65, UINT64_MAX >> 9, UINT64_MAX };
	static const uint32_t types[] = { BLK_T_IN, BLK_T_OUT, BLK_T_FLUSH, BLK_T_GET_ID, 2 };
	struct blk_geometry ro = geo;
	unsigned fast_seen = 0, slow_seen = 0;

	ro.read_only = 1;
	for (unsigned set = 0; set < 2; set++) {
		const struct layout *ls = set ? out_lay : in_lay;
		unsigned nls = set ? sizeof(out_lay) / sizeof(out_lay[0])
				   : sizeof(in_lay) / sizeof(in_lay[0]);

		for (unsigned li = 0; li < nls; li++)
		for (unsigned ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++)
		for (unsigned si = 0; si < sizeof(sectors) / sizeof(sectors[0]); si++)
		for (unsigned gi = 0; gi < 2; gi++) {
			const struct layout *l = &ls[li];
			const struct blk_geometry *g = gi ? &ro : &geo;
			struct iovec iov_a[8] = { { 0 } }, iov_b[8] = { { 0 } }, orig[8];
			struct vh_vq_elem ea, eb;
			struct blk_parsed pa, pb;
			struct blk_fast f;
			uint8_t src[1040 + 16], da[1100], db[1100];
			unsigned sa, sb;
			int fast, want;

			memset(buf, 0, sizeof(buf));
			ea = lay(iov_a, l);
			eb = lay(iov_b, l);
			{
				struct blk_outhdr h = { types[ti], 0, sectors[si] };

				memcpy(src, &h, sizeof(h));
				for (unsigned i = 16; i < sizeof(src); i++)
					src[i] = (uint8_t)(i * 7 + 1);
				fill_readable(&ea, src, ea.out_len < sizeof(src) ? ea.out_len
										 : sizeof(src));
			}
			memcpy(orig, iov_a, sizeof(orig));
			want = fast_expected(l, types[ti], sectors[si], g);
			fast = blk_req_fast(&ea, g, &f);
			CHECK_EQ_M(fast, want, "set %u layout %u type %u sector %llu ro %u", set, li,
				   types[ti], (unsigned long long)sectors[si], gi);
			if (fast) {
				fast_seen++;
				CHECK_EQ(f.type, types[ti]);
				CHECK_EQ(f.sector, sectors[si]);
				CHECK(f.status == (uint8_t *)iov_a[l->nr + l->nw - 1].iov_base +
						  l->w[l->nw - 1] - 1);
			} else {
				slow_seen++;
			}
			/* blk_req_fast() touches nothing. */
			CHECK(memcmp(orig, iov_a, sizeof(orig)) == 0);

			sa = blk_req_parse(&ea, g, &pa);
			sb = blk_req_parse_slow(&eb, g, &pb);
			CHECK_EQ_M(sa, sb, "set %u layout %u type %u sector %llu ro %u", set, li,
				   types[ti], (unsigned long long)sectors[si], gi);
			if (fast)
				CHECK_EQ(sa, BLK_S_OK);
			/* Same status byte (the same offset in the same piece). */
			CHECK_EQ(pa.status == NULL, pb.status == NULL);
			if (pa.status)
				CHECK_EQ(pa.status - (uint8_t *)iov_a[l->nr + l->nw - 1].iov_base,
					 pb.status - (uint8_t *)iov_b[l->nr + l->nw - 1].iov_base);
			if (sa == BLK_S_OK) {
				uint64_t tot_a = 0, tot_b = 0;

				CHECK_EQ(pa.type, pb.type);
				CHECK_EQ(pa.sector, pb.sector);
				CHECK_EQ(pa.data_len, pb.data_len);
				for (unsigned i = 0; i < pa.ndata; i++)
					tot_a += pa.data[i].iov_len;
				for (unsigned i = 0; i < pb.ndata; i++)
					tot_b += pb.data[i].iov_len;
				if (pa.type == BLK_T_IN || pa.type == BLK_T_OUT ||
				    pa.type == BLK_T_GET_ID) {
					CHECK_EQ(tot_a, pa.data_len);
					CHECK_EQ(tot_b, pb.data_len);
				}
				/* The data pieces hold the same bytes, and never the status. */
				if (pa.data_len <= sizeof(da)) {
					CHECK_EQ(blk_iov_to_buf(pa.data, pa.ndata, 0, da, sizeof(da)),
						 pa.data_len);
					CHECK_EQ(blk_iov_to_buf(pb.data, pb.ndata, 0, db, sizeof(db)),
						 pb.data_len);
					CHECK(memcmp(da, db, (size_t)pa.data_len) == 0);
					if (pa.type == BLK_T_OUT)
						CHECK(memcmp(da, src + 16, (size_t)pa.data_len) == 0);
				}
				for (unsigned i = 0; i < pa.ndata; i++)
					CHECK(pa.status < (uint8_t *)pa.data[i].iov_base ||
					      pa.status >= (uint8_t *)pa.data[i].iov_base +
							   pa.data[i].iov_len);
				blk_req_restore(&pa);
				blk_req_restore(&pb);
			}
			CHECK(memcmp(orig, iov_a, sizeof(orig)) == 0);
			{
				/* b's pieces are a's, laid at the same places. */
				struct iovec ob[8];
				struct vh_vq_elem e2 = lay(ob, l);

				(void)e2;
				CHECK(memcmp(ob, iov_b, sizeof(struct iovec) * (l->nr + l->nw)) == 0);
			}
		}
	}
	/* Both sides of the boundary were crossed many times. */
	CHECK(fast_seen > 100);
	CHECK(slow_seen > 100);
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
		T_TEST(t_fast_boundary),
		T_TEST(t_gather_bounds),
	};

	return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
