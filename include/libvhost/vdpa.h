/* SPDX-License-Identifier: MIT */
/*
 * vhost-vdpa transport: /dev/vhost-vdpa-N (vdpa_sim, VDUSE, hardware vDPA).
 *
 * vh_vdpa_open() returns a struct vh_device driven through device.h. Generic vhost ioctls
 * (features, owner, vring num/base/kick/call, backend features, IOTLB) are the vh_kernel_*
 * functions of kernel.h, which accept this handle too; the vh_vdpa_* functions below wrap every
 * VHOST_VDPA_* ioctl of Linux 6.12 and add DMA mapping and the virtio status handshake.
 *
 * Addresses. The device sees I/O virtual addresses (IOVAs) only. The device-control operations
 * keep a table of the memory regions: vh_device_set_mem_table() maps each region's
 * guest_phys_addr as the IOVA of its userspace_addr (DMA map through IOTLB messages, in one
 * batch when the kernel offers batching), and vh_device_set_vring_addr() converts ring
 * addresses in this process to IOVAs through that table (-EFAULT if a ring is not inside one
 * region). vh_vdpa_dma_map()/unmap() give direct control and bypass the table.
 *
 * Backend features. Opening negotiates every backend feature this library knows that the
 * kernel offers (IOTLB_MSG_V2, IOTLB_BATCH, IOTLB_ASID, SUSPEND, RESUME,
 * ENABLE_AFTER_DRIVER_OK, DESC_ASID, IOTLB_PERSIST); vh_kernel_acked_backend_features()
 * tells which. Without IOTLB_MSG_V2 messages are v1 and only ASID 0 exists.
 *
 * Memory. Parents that work on process virtual addresses (vdpa_sim by default, use_va=1) map
 * only shared file mappings (memfd or a file with MAP_SHARED): the kernel skips anonymous or
 * private memory of a map request without an error, and the device then reads nothing there.
 * Parents that pin pages (use_va=0, hardware) take any memory within RLIMIT_MEMLOCK. Use
 * memfd-backed shared memory (memory.h's guest_mem) to be safe with both.
 *
 * Ownership: the handle owns the fd and closes it in vh_device_close(); closing the fd makes
 * the kernel drop every mapping and reset the device. Borrowed fds (eventfds) stay the
 * caller's. Mapped memory must stay mapped while the device may use it. Not thread-safe.
 *
 * The kernel requires VHOST_SET_OWNER before IOTLB messages and the vring ioctls (-EPERM
 * from ioctls; an IOTLB write made before SET_OWNER fails with -EFAULT, the errno the kernel
 * reports for every refused IOTLB message).
 *
 * Errors as in kernel.h; in addition -ERANGE for an IOVA outside the device's IOVA range and
 * -ENODEV when the handle is not a vhost-vdpa handle (or the node is not vhost-vdpa).
 */
#ifndef LIBVHOST_VDPA_H
#define LIBVHOST_VDPA_H

#include <stdint.h>
#include <libvhost/device.h>
#include <libvhost/kernel.h>
#include <libvhost/log.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Virtio device status bits. */
#define VH_STATUS_ACKNOWLEDGE 0x01u
#define VH_STATUS_DRIVER 0x02u
#define VH_STATUS_DRIVER_OK 0x04u
#define VH_STATUS_FEATURES_OK 0x08u
#define VH_STATUS_NEEDS_RESET 0x40u
#define VH_STATUS_FAILED 0x80u

/* Largest config read/write accepted (virtio config spaces are far smaller). */
#define VH_VDPA_MAX_CONFIG 4096u
/* Most regions vh_device_set_mem_table() accepts on a vdpa handle. */
#define VH_VDPA_MAX_REGIONS 1024u

/*
 * Opens /dev/vhost-vdpa-N (O_RDWR | O_CLOEXEC | O_NONBLOCK; the kernel allows one open at a
 * time: -EBUSY), checks it is vhost-vdpa (-ENODEV otherwise, -ENOTTY for a non-vhost node),
 * negotiates backend features and caches device id, config size, queue count, group and
 * address-space counts and the IOVA range.
 */
int vh_vdpa_open(struct vh_device **out, const char *path, const struct vh_logger *log);
/* Same for an fd; ownership is taken, also on failure. */
int vh_vdpa_from_fd(struct vh_device **out, int fd, const struct vh_logger *log);

/* ---- VHOST_VDPA_* ioctls ---- */
int vh_vdpa_get_device_id(struct vh_device *dev, uint32_t *id);
int vh_vdpa_get_status(struct vh_device *dev, uint8_t *status);
int vh_vdpa_set_status(struct vh_device *dev, uint8_t status);
int vh_vdpa_get_config_size(struct vh_device *dev, uint32_t *size);
/* len 1..VH_VDPA_MAX_CONFIG; offset + len must fit the config size when it is known. */
int vh_vdpa_get_config(struct vh_device *dev, uint32_t offset, void *buf, uint32_t len);
int vh_vdpa_set_config(struct vh_device *dev, uint32_t offset, const void *buf, uint32_t len);
int vh_vdpa_set_vring_enable(struct vh_device *dev, unsigned index, int enable);
/* Largest ring size of any queue (VHOST_VDPA_GET_VRING_NUM). */
int vh_vdpa_get_vring_num(struct vh_device *dev, uint16_t *max_num);
/* Ring size of one queue (VHOST_VDPA_GET_VRING_SIZE, Linux >= 6.10; -ENOTTY before,
 * -EOPNOTSUPP from parents without per-queue sizes such as vdpa_sim). Needs SET_OWNER. */
int vh_vdpa_get_vring_size(struct vh_device *dev, unsigned index, uint32_t *size);
/* Group of a queue, and group of its descriptor areas (the latter needs DESC_ASID). */
int vh_vdpa_get_vring_group(struct vh_device *dev, unsigned index, uint32_t *group);
int vh_vdpa_get_vring_desc_group(struct vh_device *dev, unsigned index, uint32_t *group);
int vh_vdpa_set_config_call(struct vh_device *dev, int eventfd); /* -1 = none */
int vh_vdpa_get_iova_range(struct vh_device *dev, uint64_t *first, uint64_t *last);
int vh_vdpa_get_as_num(struct vh_device *dev, uint32_t *as_num);
int vh_vdpa_get_group_num(struct vh_device *dev, uint32_t *group_num);
int vh_vdpa_get_vqs_count(struct vh_device *dev, uint32_t *vqs);
/* Binds virtqueue group `group` to address space `asid` (VHOST_VDPA_SET_GROUP_ASID). */
int vh_vdpa_set_group_asid(struct vh_device *dev, uint32_t group, uint32_t asid);
int vh_vdpa_suspend(struct vh_device *dev);
int vh_vdpa_resume(struct vh_device *dev); /* Linux >= 6.3; -ENOTTY before */

/* ---- DMA mapping (IOTLB v2 with ASID when acknowledged, else v1 and asid 0) ---- */
/* perm: VH_ACCESS_RO/WO/RW (wire.h). */
int vh_vdpa_dma_map(struct vh_device *dev, uint32_t asid, uint64_t iova, uint64_t size,
		    void *vaddr, unsigned perm);
int vh_vdpa_dma_unmap(struct vh_device *dev, uint32_t asid, uint64_t iova, uint64_t size);
/* Group several maps of one ASID into one device update; a no-op returning 0 without
 * IOTLB_BATCH. Inside a batch, maps of another ASID are refused (-EINVAL), as the kernel
 * would; a second begin is -EBUSY. */
int vh_vdpa_dma_batch_begin(struct vh_device *dev, uint32_t asid);
int vh_vdpa_dma_batch_end(struct vh_device *dev);

/* ---- virtio status handshake ----
 * vh_vdpa_reset: status 0, checked to read back 0.
 * vh_vdpa_negotiate: reset → ACKNOWLEDGE → DRIVER → SET_FEATURES(wanted ∩ offered, plus
 * VERSION_1 and ACCESS_PLATFORM when offered: vhost-vdpa always translates IOVAs) →
 * FEATURES_OK, then checks FEATURES_OK stuck (-EOPNOTSUPP and FAILED set otherwise). The
 * negotiated set is stored in *negotiated (may be NULL). Rings are set up after this.
 * vh_vdpa_driver_ok: sets DRIVER_OK and checks it reads back without NEEDS_RESET/FAILED. */
int vh_vdpa_reset(struct vh_device *dev);
int vh_vdpa_negotiate(struct vh_device *dev, uint64_t wanted, uint64_t *negotiated);
int vh_vdpa_driver_ok(struct vh_device *dev);

#ifdef __cplusplus
}
#endif
#endif
