/* SPDX-License-Identifier: MIT */
/* The device-control interface: dispatch to the transport's operations. */
#include <errno.h>
#include <stddef.h>

#include <libvhost/device.h>
#include "internal.h"

#define CALL(dev, op, ...)                                                  \
	do {                                                                \
		if (!(dev) || !(dev)->ops)                                  \
			return -EINVAL;                                     \
		if (!(dev)->ops->op)                                        \
			return -EOPNOTSUPP;                                 \
		return (dev)->ops->op((dev), ##__VA_ARGS__);                \
	} while (0)

int vh_device_get_features(struct vh_device *dev, uint64_t *features)
{
	if (!features)
		return -EINVAL;
	CALL(dev, get_features, features);
}

int vh_device_set_features(struct vh_device *dev, uint64_t features)
{
	CALL(dev, set_features, features);
}

int vh_device_set_owner(struct vh_device *dev)
{
	CALL(dev, set_owner);
}

int vh_device_reset_owner(struct vh_device *dev)
{
	CALL(dev, reset_owner);
}

int vh_device_set_mem_table(struct vh_device *dev, const struct vh_region *regions, unsigned n)
{
	if (n && !regions)
		return -EINVAL;
	CALL(dev, set_mem_table, regions, n);
}

int vh_device_set_log_base(struct vh_device *dev, uint64_t log_addr, int log_fd, uint64_t size,
			   uint64_t offset)
{
	CALL(dev, set_log_base, log_addr, log_fd, size, offset);
}

int vh_device_set_log_fd(struct vh_device *dev, int fd)
{
	CALL(dev, set_log_fd, fd);
}

int vh_device_set_vring_num(struct vh_device *dev, unsigned index, unsigned num)
{
	CALL(dev, set_vring_num, index, num);
}

int vh_device_set_vring_addr(struct vh_device *dev, const struct vh_vring_addr *addr)
{
	if (!addr)
		return -EINVAL;
	CALL(dev, set_vring_addr, addr);
}

int vh_device_set_vring_base(struct vh_device *dev, unsigned index, uint32_t base)
{
	CALL(dev, set_vring_base, index, base);
}

int vh_device_get_vring_base(struct vh_device *dev, unsigned index, uint32_t *base)
{
	if (!base)
		return -EINVAL;
	CALL(dev, get_vring_base, index, base);
}

int vh_device_set_vring_kick(struct vh_device *dev, unsigned index, int fd)
{
	CALL(dev, set_vring_kick, index, fd);
}

int vh_device_set_vring_call(struct vh_device *dev, unsigned index, int fd)
{
	CALL(dev, set_vring_call, index, fd);
}

int vh_device_set_vring_err(struct vh_device *dev, unsigned index, int fd)
{
	CALL(dev, set_vring_err, index, fd);
}

int vh_device_set_vring_enable(struct vh_device *dev, unsigned index, int enable)
{
	CALL(dev, set_vring_enable, index, enable);
}

int vh_device_get_config(struct vh_device *dev, uint32_t offset, void *buf, uint32_t len)
{
	if (len && !buf)
		return -EINVAL;
	CALL(dev, get_config, offset, buf, len);
}

int vh_device_set_config(struct vh_device *dev, uint32_t offset, const void *buf, uint32_t len)
{
	if (len && !buf)
		return -EINVAL;
	CALL(dev, set_config, offset, buf, len);
}

int vh_device_get_status(struct vh_device *dev, uint8_t *status)
{
	if (!status)
		return -EINVAL;
	CALL(dev, get_status, status);
}

int vh_device_set_status(struct vh_device *dev, uint8_t status)
{
	CALL(dev, set_status, status);
}

int vh_device_get_queue_num(struct vh_device *dev, unsigned *max_queues)
{
	if (!max_queues)
		return -EINVAL;
	CALL(dev, get_queue_num, max_queues);
}

int vh_device_get_vring_max(struct vh_device *dev, unsigned index, unsigned *max_num)
{
	if (!max_num)
		return -EINVAL;
	CALL(dev, get_vring_max, index, max_num);
}

enum vh_transport vh_device_transport(const struct vh_device *dev)
{
	return dev ? dev->transport : 0;
}

void vh_device_close(struct vh_device *dev)
{
	if (dev && dev->ops && dev->ops->close)
		dev->ops->close(dev);
}
