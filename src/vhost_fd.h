/* SPDX-License-Identifier: MIT */
/*
 * What the kernel vhost and vhost-vdpa transports share: both are an fd speaking the ioctls of
 * <linux/vhost.h>. Not installed.
 */
#ifndef LIBVHOST_VHOST_FD_H
#define LIBVHOST_VHOST_FD_H

#include <stdint.h>
#include <libvhost/device.h>
#include <libvhost/kernel.h>

/* Common head of the kernel and vdpa handles; struct vh_device must stay first. */
struct vhp_vhost {
	struct vh_device dev;
	int fd;                  /* owned */
	enum vh_kernel_kind kind;
	uint64_t backend_acked;  /* last successful VHOST_SET_BACKEND_FEATURES */
	uint64_t features_acked; /* last successful VHOST_SET_FEATURES */
};

/* The vhost part of a kernel or vdpa handle, or NULL for anything else. */
struct vhp_vhost *vhp_vhost_of(struct vh_device *dev);

/* ioctl() returning 0 or -errno, retried on EINTR. */
int vhp_vhost_ioctl(int fd, unsigned long req, void *arg);

/*
 * A ring ioctl taking struct vhost_vring_state: index (<= 0xffff, else -EINVAL) and num in;
 * with out, the answer's num is stored there after checking it names the same ring (-EPROTO).
 */
int vhp_vhost_vring_state(int fd, unsigned long req, unsigned index, uint32_t num,
			  uint32_t *out);

/*
 * Validates fd as a vhost device (EBADF, char device, VHOST_GET_FEATURES) and names its driver.
 * Nothing is closed here.
 */
int vhp_vhost_probe(int fd, enum vh_kernel_kind *kind, const struct vh_logger *log);

/* Opens a device node the way both transports do; returns the fd or -errno. */
int vhp_vhost_open_node(const char *path, const struct vh_logger *log);

/* Initialises the common head (no ioctl). */
void vhp_vhost_init(struct vhp_vhost *vh, const struct vh_device_ops *ops,
		    enum vh_transport transport, int fd, enum vh_kernel_kind kind,
		    const struct vh_logger *log);

/*
 * Wraps fd in a kernel handle without probing it (tests use this to drive every wrapper
 * against fds that are not vhost devices). Takes ownership of fd on success only.
 */
int vhp_kernel_wrap(struct vh_device **out, int fd, enum vh_kernel_kind kind,
		    const struct vh_logger *log);
/* Same for a vdpa handle: no probing, no backend negotiation, no cached limits. */
int vhp_vdpa_wrap(struct vh_device **out, int fd, const struct vh_logger *log);

/* Operations of the kernel transport that the vdpa transport reuses. */
int vhp_kernel_op_get_features(struct vh_device *dev, uint64_t *features);
int vhp_kernel_op_set_features(struct vh_device *dev, uint64_t features);
int vhp_kernel_op_set_owner(struct vh_device *dev);
int vhp_kernel_op_reset_owner(struct vh_device *dev);
int vhp_kernel_op_set_log_fd(struct vh_device *dev, int fd);
int vhp_kernel_op_set_vring_num(struct vh_device *dev, unsigned index, unsigned num);
int vhp_kernel_op_set_vring_base(struct vh_device *dev, unsigned index, uint32_t base);
int vhp_kernel_op_get_vring_base(struct vh_device *dev, unsigned index, uint32_t *base);
int vhp_kernel_op_set_vring_kick(struct vh_device *dev, unsigned index, int fd);
int vhp_kernel_op_set_vring_call(struct vh_device *dev, unsigned index, int fd);
int vhp_kernel_op_set_vring_err(struct vh_device *dev, unsigned index, int fd);

#endif
