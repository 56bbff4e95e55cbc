/* SPDX-License-Identifier: MIT */
/*
 * The device-control interface: one way to set up a vhost device ("owner, features, memory
 * table, vring num/addr/base, kick/call/err, log") whatever the transport is. Only the open call
 * differs:
 *
 *   vh_kernel_open()        /dev/vhost-net, /dev/vhost-vsock, /dev/vhost-scsi   (kernel.h)
 *   vh_vdpa_open()          /dev/vhost-vdpa-N                                   (vdpa.h)
 *   vh_frontend_device()    a vhost-user back-end through a vh_frontend         (frontend.h)
 *
 * Transport-specific extras (vDPA config/status/groups, vsock CID, vhost-user inflight and the
 * back-end channel) are extra functions in the transport's header that take the same handle.
 *
 * Addresses: regions and vring addresses are given as addresses in the calling process (the
 * "user address" of the kernel's vhost ABI). Each transport converts them to what it needs:
 * the kernel uses them as they are, vhost-user sends them as front-end addresses with the
 * backing fd, vhost-vdpa maps guest-physical addresses as IOVAs and converts ring addresses
 * through the memory table.
 *
 * Ownership: fds passed in (region fds, kick/call/err, log) are borrowed; the transport dup()s
 * what it must keep. vh_device_close() frees the handle and everything the handle owns.
 */
#ifndef LIBVHOST_DEVICE_H
#define LIBVHOST_DEVICE_H

#include <stdint.h>
#include <libvhost/log.h>
#include <libvhost/wire.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vh_transport {
	VH_TRANSPORT_KERNEL = 1,
	VH_TRANSPORT_VDPA = 2,
	VH_TRANSPORT_USER = 3,
};

/* One region of the driver's memory as seen from this process. */
struct vh_region {
	uint64_t guest_phys_addr; /* address the rings and descriptors use */
	uint64_t size;
	uint64_t userspace_addr;  /* where it is mapped in this process */
	int fd;                   /* backing fd (required by vhost-user), -1 if none; borrowed */
	uint64_t fd_offset;       /* offset of the region in fd */
};

struct vh_device;

/* Operations each transport implements; a NULL entry means -EOPNOTSUPP. */
struct vh_device_ops {
	int (*get_features)(struct vh_device *dev, uint64_t *features);
	int (*set_features)(struct vh_device *dev, uint64_t features);
	int (*set_owner)(struct vh_device *dev);
	int (*reset_owner)(struct vh_device *dev);
	int (*set_mem_table)(struct vh_device *dev, const struct vh_region *regions, unsigned n);
	/* Dirty log: log_addr is the bitmap in this process, log_fd/size/offset its backing
	 * (vhost-user sends the fd; the kernel takes the address). */
	int (*set_log_base)(struct vh_device *dev, uint64_t log_addr, int log_fd,
			    uint64_t size, uint64_t offset);
	int (*set_log_fd)(struct vh_device *dev, int fd);
	int (*set_vring_num)(struct vh_device *dev, unsigned index, unsigned num);
	int (*set_vring_addr)(struct vh_device *dev, const struct vh_vring_addr *addr);
	int (*set_vring_base)(struct vh_device *dev, unsigned index, uint32_t base);
	int (*get_vring_base)(struct vh_device *dev, unsigned index, uint32_t *base);
	int (*set_vring_kick)(struct vh_device *dev, unsigned index, int fd); /* -1 = none */
	int (*set_vring_call)(struct vh_device *dev, unsigned index, int fd);
	int (*set_vring_err)(struct vh_device *dev, unsigned index, int fd);
	int (*set_vring_enable)(struct vh_device *dev, unsigned index, int enable);
	int (*get_config)(struct vh_device *dev, uint32_t offset, void *buf, uint32_t len);
	int (*set_config)(struct vh_device *dev, uint32_t offset, const void *buf, uint32_t len);
	int (*get_status)(struct vh_device *dev, uint8_t *status);
	int (*set_status)(struct vh_device *dev, uint8_t status);
	int (*get_queue_num)(struct vh_device *dev, unsigned *max_queues);
	int (*get_vring_max)(struct vh_device *dev, unsigned index, unsigned *max_num);
	void (*close)(struct vh_device *dev);
};

/* Common head of every transport's handle. Transports embed it first. */
struct vh_device {
	const struct vh_device_ops *ops;
	enum vh_transport transport;
	struct vh_logger log;
};

int vh_device_get_features(struct vh_device *dev, uint64_t *features);
int vh_device_set_features(struct vh_device *dev, uint64_t features);
int vh_device_set_owner(struct vh_device *dev);
int vh_device_reset_owner(struct vh_device *dev);
int vh_device_set_mem_table(struct vh_device *dev, const struct vh_region *regions, unsigned n);
int vh_device_set_log_base(struct vh_device *dev, uint64_t log_addr, int log_fd, uint64_t size,
			   uint64_t offset);
int vh_device_set_log_fd(struct vh_device *dev, int fd);
int vh_device_set_vring_num(struct vh_device *dev, unsigned index, unsigned num);
int vh_device_set_vring_addr(struct vh_device *dev, const struct vh_vring_addr *addr);
int vh_device_set_vring_base(struct vh_device *dev, unsigned index, uint32_t base);
int vh_device_get_vring_base(struct vh_device *dev, unsigned index, uint32_t *base);
int vh_device_set_vring_kick(struct vh_device *dev, unsigned index, int fd);
int vh_device_set_vring_call(struct vh_device *dev, unsigned index, int fd);
int vh_device_set_vring_err(struct vh_device *dev, unsigned index, int fd);
int vh_device_set_vring_enable(struct vh_device *dev, unsigned index, int enable);
int vh_device_get_config(struct vh_device *dev, uint32_t offset, void *buf, uint32_t len);
int vh_device_set_config(struct vh_device *dev, uint32_t offset, const void *buf, uint32_t len);
int vh_device_get_status(struct vh_device *dev, uint8_t *status);
int vh_device_set_status(struct vh_device *dev, uint8_t status);
int vh_device_get_queue_num(struct vh_device *dev, unsigned *max_queues);
int vh_device_get_vring_max(struct vh_device *dev, unsigned index, unsigned *max_num);
enum vh_transport vh_device_transport(const struct vh_device *dev);
/* Frees the handle and what it owns. NULL is allowed. */
void vh_device_close(struct vh_device *dev);

#ifdef __cplusplus
}
#endif
#endif
