/* SPDX-License-Identifier: MIT */
/*
 * Kernel vhost / vhost-vdpa / VDUSE UAPI as of Linux 6.12 (plus the features-array ioctls of
 * later kernels), on top of whatever <linux/vhost.h> the build host has.
 *
 * Debian 12 ships the 6.1 UAPI headers, which lack the worker ioctls, VDPA_RESUME,
 * VDPA_GET_VRING_DESC_GROUP, VDPA_GET_VRING_SIZE, the fork-owner ioctls, the features array and
 * the newer backend feature bits. Everything missing is defined here and only here, each item
 * guarded so that newer headers win. Struct types cannot be tested with #ifndef, so each struct
 * is guarded by an ioctl macro that the same kernel release added together with it.
 *
 * A definition here says nothing about the running kernel: an ioctl it does not know fails with
 * ENOTTY, a backend feature it does not offer is absent from VHOST_GET_BACKEND_FEATURES.
 */
#ifndef LIBVHOST_UAPI_COMPAT_H
#define LIBVHOST_UAPI_COMPAT_H

#include <stddef.h>
#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/vhost_types.h>
#include <linux/vhost.h>
#include <linux/vduse.h>

/* Workers (Linux 6.5). The structs arrived in vhost_types.h with VHOST_NEW_WORKER. */
#ifndef VHOST_NEW_WORKER
struct vhost_worker_state {
	/* NEW_WORKER: the id of the new worker (out); FREE_WORKER: the worker to free (in). */
	unsigned int worker_id;
};

struct vhost_vring_worker {
	unsigned int index;     /* vring index */
	unsigned int worker_id; /* from VHOST_NEW_WORKER */
};
#define VHOST_NEW_WORKER _IOR(VHOST_VIRTIO, 0x8, struct vhost_worker_state)
#endif
#ifndef VHOST_FREE_WORKER
#define VHOST_FREE_WORKER _IOW(VHOST_VIRTIO, 0x9, struct vhost_worker_state)
#endif
#ifndef VHOST_ATTACH_VRING_WORKER
#define VHOST_ATTACH_VRING_WORKER _IOW(VHOST_VIRTIO, 0x15, struct vhost_vring_worker)
#endif
#ifndef VHOST_GET_VRING_WORKER
#define VHOST_GET_VRING_WORKER _IOWR(VHOST_VIRTIO, 0x16, struct vhost_vring_worker)
#endif

/* vhost-vdpa additions (Linux 6.3–6.10). */
#ifndef VHOST_VDPA_RESUME
#define VHOST_VDPA_RESUME _IO(VHOST_VIRTIO, 0x7E)
#endif
#ifndef VHOST_VDPA_GET_VRING_DESC_GROUP
#define VHOST_VDPA_GET_VRING_DESC_GROUP _IOWR(VHOST_VIRTIO, 0x7F, struct vhost_vring_state)
#endif
#ifndef VHOST_VDPA_GET_VRING_SIZE
#define VHOST_VDPA_GET_VRING_SIZE _IOWR(VHOST_VIRTIO, 0x82, struct vhost_vring_state)
#endif

/* Feature bits beyond 63 (Linux 6.17). The struct came with the ioctls. */
#ifndef VHOST_GET_FEATURES_ARRAY
struct vhost_features_array {
	__u64 count; /* number of entries in features[] */
	__u64 features[];
};
#define VHOST_GET_FEATURES_ARRAY _IOR(VHOST_VIRTIO, 0x83, struct vhost_features_array)
#endif
#ifndef VHOST_SET_FEATURES_ARRAY
#define VHOST_SET_FEATURES_ARRAY _IOW(VHOST_VIRTIO, 0x83, struct vhost_features_array)
#endif

/* Worker thread mode; only with CONFIG_VHOST_ENABLE_FORK_OWNER_CONTROL, before SET_OWNER. */
#ifndef VHOST_FORK_OWNER_KTHREAD
#define VHOST_FORK_OWNER_KTHREAD 0
#endif
#ifndef VHOST_FORK_OWNER_TASK
#define VHOST_FORK_OWNER_TASK 1
#endif
#ifndef VHOST_SET_FORK_FROM_OWNER
#define VHOST_SET_FORK_FROM_OWNER _IOW(VHOST_VIRTIO, 0x84, __u8)
#endif
#ifndef VHOST_GET_FORK_FROM_OWNER
#define VHOST_GET_FORK_FROM_OWNER _IOR(VHOST_VIRTIO, 0x85, __u8)
#endif

/* Backend feature bit numbers (use 1ULL << n). */
#ifndef VHOST_BACKEND_F_IOTLB_MSG_V2
#define VHOST_BACKEND_F_IOTLB_MSG_V2 0x1
#endif
#ifndef VHOST_BACKEND_F_IOTLB_BATCH
#define VHOST_BACKEND_F_IOTLB_BATCH 0x2
#endif
#ifndef VHOST_BACKEND_F_IOTLB_ASID
#define VHOST_BACKEND_F_IOTLB_ASID 0x3
#endif
#ifndef VHOST_BACKEND_F_SUSPEND
#define VHOST_BACKEND_F_SUSPEND 0x4
#endif
#ifndef VHOST_BACKEND_F_RESUME
#define VHOST_BACKEND_F_RESUME 0x5
#endif
#ifndef VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK
#define VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK 0x6
#endif
#ifndef VHOST_BACKEND_F_DESC_ASID
#define VHOST_BACKEND_F_DESC_ASID 0x7
#endif
#ifndef VHOST_BACKEND_F_IOTLB_PERSIST
#define VHOST_BACKEND_F_IOTLB_PERSIST 0x8
#endif

/* The layouts the library writes to and reads from the kernel. */
_Static_assert(sizeof(struct vhost_vring_state) == 8, "vhost_vring_state");
_Static_assert(sizeof(struct vhost_vring_file) == 8, "vhost_vring_file");
_Static_assert(sizeof(struct vhost_vring_addr) == 40, "vhost_vring_addr");
_Static_assert(offsetof(struct vhost_vring_addr, log_guest_addr) == 32, "vhost_vring_addr.log");
_Static_assert(sizeof(struct vhost_memory) == 8, "vhost_memory");
_Static_assert(sizeof(struct vhost_memory_region) == 32, "vhost_memory_region");
_Static_assert(sizeof(struct vhost_iotlb_msg) == 32, "vhost_iotlb_msg");
_Static_assert(offsetof(struct vhost_iotlb_msg, perm) == 24, "vhost_iotlb_msg.perm");
_Static_assert(offsetof(struct vhost_iotlb_msg, type) == 25, "vhost_iotlb_msg.type");
_Static_assert(sizeof(struct vhost_msg) == 72, "vhost_msg");
_Static_assert(offsetof(struct vhost_msg, iotlb) == 8, "vhost_msg.iotlb");
_Static_assert(sizeof(struct vhost_msg_v2) == 72, "vhost_msg_v2");
_Static_assert(offsetof(struct vhost_msg_v2, asid) == 4, "vhost_msg_v2.asid");
_Static_assert(offsetof(struct vhost_msg_v2, iotlb) == 8, "vhost_msg_v2.iotlb");
_Static_assert(sizeof(struct vhost_scsi_target) == 232, "vhost_scsi_target");
_Static_assert(sizeof(struct vhost_vdpa_config) == 8, "vhost_vdpa_config");
_Static_assert(sizeof(struct vhost_vdpa_iova_range) == 16, "vhost_vdpa_iova_range");
_Static_assert(sizeof(struct vhost_worker_state) == 4, "vhost_worker_state");
_Static_assert(sizeof(struct vhost_vring_worker) == 8, "vhost_vring_worker");
_Static_assert(sizeof(struct vhost_features_array) == 8, "vhost_features_array");
_Static_assert(offsetof(struct vhost_features_array, features) == 8, "features_array.features");

#endif
