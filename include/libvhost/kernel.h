/* SPDX-License-Identifier: MIT */
/*
 * Kernel vhost transport: /dev/vhost-net, /dev/vhost-vsock, /dev/vhost-scsi.
 *
 * vh_kernel_open() returns a struct vh_device driven through device.h; the vh_kernel_*
 * functions below wrap every ioctl of Linux 6.12's <linux/vhost.h> that applies to vhost
 * devices, plus the IOTLB messages written to and read from the fd. They accept a handle from
 * vh_kernel_open() and also one from vh_vdpa_open() (a vhost-vdpa fd is a vhost fd too).
 *
 * Ownership: the handle owns its fd (opened O_RDWR | O_CLOEXEC | O_NONBLOCK, or taken over by
 * vh_kernel_from_fd()) and closes it in vh_device_close(). fds passed to the functions below
 * (eventfds, tap, log fd) are borrowed: the kernel takes its own reference during the ioctl.
 * Memory passed by address (regions, rings, the dirty-log bitmap) must stay mapped while the
 * kernel may use it. A handle is not thread-safe: serialise calls on one handle.
 *
 * Errors (negative errno):
 *   -EINVAL      NULL handle/pointer, or an argument the library rejects before any ioctl
 *                (index > 0xffff, unaligned or overflowing range, unknown enum value)
 *   -ENODEV      the handle is not a kernel vhost/vdpa handle, or the call is specific to
 *                another device kind (e.g. vh_kernel_net_set_backend on /dev/vhost-vsock)
 *   -ENOTTY      the kernel does not know the ioctl: an older kernel (6.1 has no worker,
 *                fork-owner or features-array ioctls), or a device that does not implement it
 *   -EOPNOTSUPP  a library-side capability check failed (e.g. IOTLB batching without the
 *                IOTLB_BATCH backend feature acknowledged), or the kernel refused the value
 *   -EPROTO      the kernel returned a value outside its documented range
 *   -EBADF       the fd is not open
 *   -EPERM       the ioctl needs SET_OWNER first, or this process is not the owner
 *   anything else is the kernel's errno for the ioctl, unchanged.
 */
#ifndef LIBVHOST_KERNEL_H
#define LIBVHOST_KERNEL_H

#include <stdint.h>
#include <libvhost/device.h>
#include <libvhost/log.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Which vhost driver an fd belongs to, found from sysfs or the device node's name. */
enum vh_kernel_kind {
	VH_KERNEL_UNKNOWN = 0, /* a vhost fd whose driver could not be named */
	VH_KERNEL_NET = 1,
	VH_KERNEL_VSOCK = 2,
	VH_KERNEL_SCSI = 3,
	VH_KERNEL_VDPA = 4,
};

/*
 * Opens a kernel vhost device node (O_RDWR | O_CLOEXEC | O_NONBLOCK) and checks that it is
 * one (VHOST_GET_FEATURES must work). A vhost-vdpa node is refused with -ENODEV: use
 * vh_vdpa_open(). Errors: -ENOENT (no such node, e.g. module not loaded), -ENOTTY (not a vhost
 * device), -EACCES, -EBUSY, -ENOMEM. log may be NULL; it is copied.
 */
int vh_kernel_open(struct vh_device **out, const char *path, const struct vh_logger *log);

/* Same for an fd the caller already has; ownership of fd is taken, also on failure (then it is
 * closed). -EBADF if fd is not open. */
int vh_kernel_from_fd(struct vh_device **out, int fd, const struct vh_logger *log);

/* The handle's fd (still owned by the handle), or -ENODEV / -EINVAL. */
int vh_kernel_fd(const struct vh_device *dev);
/* The driver behind the handle; VH_KERNEL_UNKNOWN for NULL or a non-kernel handle. */
enum vh_kernel_kind vh_kernel_kind(const struct vh_device *dev);

/* ---- generic vhost ioctls ---- */
int vh_kernel_get_features(struct vh_device *dev, uint64_t *features);
int vh_kernel_set_features(struct vh_device *dev, uint64_t features);
/* Feature words beyond bit 63 (VHOST_GET/SET_FEATURES_ARRAY). count is the number of 64-bit
 * words, 1..VH_KERNEL_MAX_FEATURE_WORDS; the kernel zero-fills words it does not know.
 * -ENOTTY on kernels without them (all up to 6.12; such a kernel's ENOBUFS for this ioctl is
 * reported as -ENOTTY). */
#define VH_KERNEL_MAX_FEATURE_WORDS 64u
int vh_kernel_get_features_array(struct vh_device *dev, uint64_t *features, unsigned count);
int vh_kernel_set_features_array(struct vh_device *dev, const uint64_t *features,
				 unsigned count);
int vh_kernel_set_owner(struct vh_device *dev);
int vh_kernel_reset_owner(struct vh_device *dev);
/* Worker mode before SET_OWNER: VHOST_FORK_OWNER_KTHREAD (0) or _TASK (1). -ENOTTY when the
 * kernel lacks them (6.1, or built without CONFIG_VHOST_ENABLE_FORK_OWNER_CONTROL; such a
 * kernel's EPERM before SET_OWNER is reported as -ENOTTY), -EBUSY after SET_OWNER. */
int vh_kernel_set_fork_from_owner(struct vh_device *dev, uint8_t mode);
int vh_kernel_get_fork_from_owner(struct vh_device *dev, uint8_t *mode);

/* Memory table: guest_phys_addr/size/userspace_addr of each region (fd fields unused). At most
 * VH_KERNEL_MAX_REGIONS regions (the kernel's own limit, module parameter max_mem_regions,
 * defaults to 64 and answers -E2BIG above it). Sizes must be non-zero, ranges must not wrap. */
#define VH_KERNEL_MAX_REGIONS 65535u
int vh_kernel_set_mem_table(struct vh_device *dev, const struct vh_region *regions, unsigned n);
/* Dirty log: log_addr is the bitmap's address in this process (one bit per 4 KiB page). */
int vh_kernel_set_log_base(struct vh_device *dev, uint64_t log_addr);
int vh_kernel_set_log_fd(struct vh_device *dev, int eventfd); /* -1 = none */

/* Workers (Linux >= 6.5; -ENOTTY before). Only drivers that opted in answer them: vhost-scsi
 * and vhost-vsock do, vhost-net (up to 6.12 at least) answers -ENOTTY. */
int vh_kernel_new_worker(struct vh_device *dev, uint32_t *worker_id);
int vh_kernel_free_worker(struct vh_device *dev, uint32_t worker_id);
int vh_kernel_attach_vring_worker(struct vh_device *dev, unsigned index, uint32_t worker_id);
int vh_kernel_get_vring_worker(struct vh_device *dev, unsigned index, uint32_t *worker_id);

/* Vrings. index <= 0xffff. Addresses in vh_vring_addr are addresses in this process. */
int vh_kernel_set_vring_num(struct vh_device *dev, unsigned index, unsigned num);
int vh_kernel_set_vring_addr(struct vh_device *dev, const struct vh_vring_addr *addr);
int vh_kernel_set_vring_base(struct vh_device *dev, unsigned index, uint32_t base);
/* Stops the ring. For a split ring (VIRTIO_F_RING_PACKED not set through this handle) the
 * value is checked to fit 16 bits. */
int vh_kernel_get_vring_base(struct vh_device *dev, unsigned index, uint32_t *base);
/* Legacy byte order: 0 little-endian, 1 big-endian. Not in every kernel configuration. */
int vh_kernel_set_vring_endian(struct vh_device *dev, unsigned index, unsigned big_endian);
int vh_kernel_get_vring_endian(struct vh_device *dev, unsigned index, unsigned *big_endian);
int vh_kernel_set_vring_kick(struct vh_device *dev, unsigned index, int eventfd); /* -1 unbinds */
int vh_kernel_set_vring_call(struct vh_device *dev, unsigned index, int eventfd);
int vh_kernel_set_vring_err(struct vh_device *dev, unsigned index, int eventfd);
int vh_kernel_set_vring_busyloop_timeout(struct vh_device *dev, unsigned index, uint32_t usec);
int vh_kernel_get_vring_busyloop_timeout(struct vh_device *dev, unsigned index, uint32_t *usec);

/* Backend features (VHOST_BACKEND_F_* bit numbers, as 1ULL << n). A successful set is
 * remembered: it selects IOTLB message v2 and allows batching and ASIDs. */
int vh_kernel_get_backend_features(struct vh_device *dev, uint64_t *features);
int vh_kernel_set_backend_features(struct vh_device *dev, uint64_t features);
/* The last value set successfully through this handle (0 initially). */
uint64_t vh_kernel_acked_backend_features(const struct vh_device *dev);

/* ---- device-specific ioctls (-ENODEV on another kind of device) ---- */
/* vhost-net: attach vring index (0 RX, 1 TX) to a tap or packet socket; -1 detaches. */
int vh_kernel_net_set_backend(struct vh_device *dev, unsigned index, int fd);
/* vhost-vsock */
int vh_kernel_vsock_set_guest_cid(struct vh_device *dev, uint64_t cid);
int vh_kernel_vsock_set_running(struct vh_device *dev, int running);
/* vhost-scsi: wwpn is a NUL-terminated target port name shorter than 224 bytes. */
int vh_kernel_scsi_set_endpoint(struct vh_device *dev, const char *wwpn, uint16_t tpgt);
int vh_kernel_scsi_clear_endpoint(struct vh_device *dev, const char *wwpn, uint16_t tpgt);
int vh_kernel_scsi_get_abi_version(struct vh_device *dev, int *version);
int vh_kernel_scsi_set_events_missed(struct vh_device *dev, uint32_t missed);
int vh_kernel_scsi_get_events_missed(struct vh_device *dev, uint32_t *missed);

/* ---- IOTLB messages over the fd ----
 * Written as struct vhost_msg_v2 when backend feature IOTLB_MSG_V2 is acknowledged on this
 * handle, else as struct vhost_msg (then asid must be 0). asid != 0 needs IOTLB_ASID;
 * batch_begin/end need IOTLB_BATCH (-EOPNOTSUPP otherwise). perm: VH_ACCESS_RO/WO/RW and the
 * message types VH_IOTLB_* come from wire.h (the kernel's numbers). */

int vh_kernel_iotlb_update(struct vh_device *dev, uint32_t asid, uint64_t iova, uint64_t size,
			   uint64_t uaddr, unsigned perm);
int vh_kernel_iotlb_invalidate(struct vh_device *dev, uint32_t asid, uint64_t iova,
			       uint64_t size);
/* A batch belongs to one ASID: vhost-vdpa refuses messages for another ASID until the end,
 * and applies the batch to the ASID named by BATCH_END. */
int vh_kernel_iotlb_batch_begin(struct vh_device *dev, uint32_t asid);
int vh_kernel_iotlb_batch_end(struct vh_device *dev, uint32_t asid);

/* A message the kernel sent (MISS when the device touched an unmapped IOVA). */
struct vh_iotlb_event {
	uint64_t iova;
	uint64_t size;
	uint64_t uaddr;
	uint32_t asid; /* 0 with message v1 */
	uint8_t perm;  /* VH_ACCESS_RO/WO/RW: the access that missed */
	uint8_t type;  /* VH_IOTLB_MISS or VH_IOTLB_ACCESS_FAIL */
};

/* Waits up to timeout_ms (< 0: no limit, 0: just poll) for one message and validates it
 * (message type matching the version in use, IOTLB type, permission). Returns 0, -ETIMEDOUT,
 * -EINTR, -EPROTO (malformed message), -EIO (short read). */
int vh_kernel_iotlb_read(struct vh_device *dev, struct vh_iotlb_event *ev, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
