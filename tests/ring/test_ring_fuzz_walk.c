/* SPDX-License-Identifier: MIT */
/*
 * A bounded, deterministic run of vh_vq_fuzz_walk(), the entry point a libFuzzer target
 * drives: valid rings built with the driver side in the fuzz input's memory image (so the
 * walker goes deep), then the same images with random bytes flipped, then pure noise. Every
 * run must return without crashing (the walker touches every byte of every iovec, so a
 * sanitizer build catches any out-of-bounds piece), and fds and mappings stay at baseline.
 *
 * Input format (see vh_vq_fuzz_walk): 8 header bytes, then the memory image. Region A is GPA
 * 0..8K at image offset 0 (the ring sits at GPA 0), region B is GPA 0x2000..0x3000 at image
 * offset 12K, region C is GPA 0x10000..0x11000 at image offset 16K.
 */
#include "ringtest.h"
#include "ring_seed.h"

#define IMG 20480u
#define HDR RING_SEED_HDR

static uint8_t *img_host(uint8_t *img, uint64_t gpa)
{
	if (gpa < 0x2000)
		return img + gpa;
	if (gpa < 0x3000)
		return img + 12288 + (gpa - 0x2000);
	return img + 16384 + (gpa - 0x10000);
}

/* Builds an input holding a ring of num entries with a few requests made available. */
static size_t build_seed(uint8_t *in, uint64_t features, unsigned num, unsigned ind_max)
{
	struct vh_vq_driver *d;
	/* Built aligned, then copied behind the header (the walker copies it into an aligned
	 * buffer too). */
	static uint8_t img[IMG] __attribute__((aligned(64)));
	/* A buffer in A, one straddling A/B, one in B, one in C. */
	struct vh_vq_seg segs[4] = {
		{ 0x1800, 64 }, { 0x1f80, 256 }, { 0x2400, 512 }, { 0x10100, 300 }
	};
	unsigned i;

	memset(img, 0, IMG);
	ring_seed_header(in, features, num);
	d = ring_seed_driver(img, features, num, ind_max);
	CHECK(d != NULL);
	if (!d)
		return 0;
	for (i = 0; i < 4; i++)
		memset(img_host(img, segs[i].gpa), 0x11 * (int)(i + 1), segs[i].len);
	for (i = 0; i < num; i++) {
		struct vh_vq_driver_req req = { &segs[i % 3], 1, 1, i };

		if (vh_vq_driver_add_batch(d, &req, 1) != 1)
			break;
	}
	vh_vq_driver_publish(d);
	vh_vq_driver_free(d);
	memcpy(in + HDR, img, IMG);
	return HDR + IMG;
}

static void test_seeds_and_mutations(void)
{
	static const struct {
		uint64_t f;
		unsigned num, ind;
	} seeds[] = {
		{ 0, 8, 0 },
		{ VH_VQ_F_INDIRECT_DESC, 8, 4 },
		{ VH_VQ_F_EVENT_IDX | VH_VQ_F_IN_ORDER, 16, 0 },
		{ VH_VQ_F_RING_PACKED, 7, 0 },
		{ VH_VQ_F_RING_PACKED | VH_VQ_F_INDIRECT_DESC, 5, 4 },
		{ VH_VQ_F_RING_PACKED | VH_VQ_F_EVENT_IDX | VH_VQ_F_IN_ORDER, 12, 0 },
	};
	struct m_baseline b = m_baseline();
	static uint8_t in[HDR + IMG], mut[HDR + IMG];
	unsigned s, k;

	t_rng_state = 0x5eedull;
	for (s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		size_t len = build_seed(in, seeds[s].f, seeds[s].num, seeds[s].ind);

		if (len == 0)
			continue;
		CHECK_EQ(vh_vq_fuzz_walk(in, len), 0);
		for (k = 0; k < 400; k++) {
			unsigned flips = 1 + (unsigned)rnd_below(8), j;
			/* Mostly hit the ring and the indirect tables (first 5K of the image). */
			size_t span = rnd_below(4) ? HDR + 5120 : len;

			memcpy(mut, in, len);
			for (j = 0; j < flips; j++)
				mut[rnd_below(span)] ^= (uint8_t)(1u << rnd_below(8));
			CHECK_EQ(vh_vq_fuzz_walk(mut, rnd_below(8) ? len : rnd_below(len + 1)), 0);
		}
	}
	CHECK_BASELINE_M(b);
}

static void test_noise(void)
{
	struct m_baseline b = m_baseline();
	static uint8_t in[HDR + 6000];
	unsigned k;
	size_t i;

	t_rng_state = 0x401ull;
	for (k = 0; k < 2000; k++) {
		size_t len = rnd_below(sizeof(in) + 1);

		for (i = 0; i < len; i++)
			in[i] = (uint8_t)rnd();
		CHECK_EQ(vh_vq_fuzz_walk(in, len), 0);
	}
	CHECK_EQ(vh_vq_fuzz_walk(NULL, 0), 0);
	CHECK_BASELINE_M(b);
}

static const struct t_test tests[] = {
	T_TEST(test_seeds_and_mutations),
	T_TEST(test_noise),
};

T_MAIN(tests)
