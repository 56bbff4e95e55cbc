/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the device-side descriptor walker (split and packed, direct and indirect)
 * through vh_vq_fuzz_walk(), which builds guest memory and a ring from the input, pops, touches
 * every byte of every iovec and pushes until the ring is empty or broken. Fds and mappings must
 * stay at the baseline.
 */
#include <libvhost/ring.h>
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (vh_vq_fuzz_walk(data, size) != 0 && size >= 8) {
		/* -ENOMEM is the only failure it may report */
		fprintf(stderr, "vh_vq_fuzz_walk failed\n");
		abort();
	}
	fz_check_leaks("fuzz_ring_walk");
	return 0;
}
