/* SPDX-License-Identifier: MIT */
/*
 * Builds the compat header on top of headers that already define everything it supplies
 * (newer-uapi/ is searched before the system headers): no redefinition, same numbers, and the
 * library's own headers still compile beside it.
 */
#include <stdio.h>

#include <libvhost/uapi_compat.h>
#include <libvhost/libvhost.h>

#ifndef LIBVHOST_TEST_NEWER_VHOST_H
#error "newer-uapi/linux/vhost.h was not used"
#endif

_Static_assert(VHOST_NEW_WORKER == 0x8004af08, "NEW_WORKER");
_Static_assert(VHOST_GET_VRING_WORKER == 0xc008af16, "GET_VRING_WORKER");
_Static_assert(VHOST_VDPA_GET_VRING_SIZE == 0xc008af82, "GET_VRING_SIZE");
_Static_assert(VHOST_SET_FEATURES_ARRAY == 0x4008af83, "SET_FEATURES_ARRAY");
_Static_assert(VHOST_GET_FORK_FROM_OWNER == 0x8001af85, "GET_FORK_FROM_OWNER");
_Static_assert(VHOST_BACKEND_F_IOTLB_PERSIST == 8, "IOTLB_PERSIST");

int main(void)
{
	struct vhost_vring_worker w = { .index = 1, .worker_id = 2 };

	printf("1..1\nok 1 - compat header builds on newer headers (%u)\n", w.index + w.worker_id);
	return 0;
}
