/* SPDX-License-Identifier: MIT */
/*
 * The device-control interface (device.h) over a vhost-user front-end. The handle lives inside
 * the vh_frontend; regions go out with this process's addresses as front-end addresses and their
 * backing fds.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libvhost/device.h>
#include <libvhost/frontend.h>
#include "frontend_internal.h"
#include "internal.h"

static const struct vh_device_ops user_ops;

static struct vh_frontend *fe_of(struct vh_device *dev)
{
	return ((struct vhp_user_device *)dev)->fe;
}

static struct vhp_user_device *udev_of(struct vh_device *dev)
{
	return (struct vhp_user_device *)dev;
}

static int u_get_features(struct vh_device *dev, uint64_t *features)
{
	return vh_frontend_get_features(fe_of(dev), features);
}

static int u_set_features(struct vh_device *dev, uint64_t features)
{
	struct vh_frontend *fe = fe_of(dev);

	/* Acking bit 30 keeps SET_VRING_ENABLE meaningful; without it the back-end enables every
	 * ring by itself (QEMU always acks it when offered). */
	features |= fe->features_offered & VH_BIT(VH_USER_F_PROTOCOL_FEATURES);
	return vh_frontend_set_features(fe, features);
}

static int u_set_owner(struct vh_device *dev)
{
	return vh_frontend_set_owner(fe_of(dev));
}

static int u_reset_owner(struct vh_device *dev)
{
	return vh_frontend_reset_owner(fe_of(dev));
}

static void to_wire(const struct vh_region *in, struct vh_mem_region *out)
{
	out->guest_phys_addr = in->guest_phys_addr;
	out->memory_size = in->size;
	out->userspace_addr = in->userspace_addr;
	out->mmap_offset = in->fd_offset;
}

static int same_region(const struct vhp_shadow_region *s, const struct vh_mem_region *r,
		       const struct stat *st)
{
	return s->r.guest_phys_addr == r->guest_phys_addr && s->r.memory_size == r->memory_size &&
	       s->r.userspace_addr == r->userspace_addr && s->r.mmap_offset == r->mmap_offset &&
	       s->fd_dev == st->st_dev && s->fd_ino == st->st_ino;
}

static int max_slots(struct vhp_user_device *ud)
{
	uint64_t slots;
	int r;

	if (ud->max_slots)
		return (int)ud->max_slots;
	r = vh_frontend_get_max_mem_slots(ud->fe, &slots);
	if (r)
		return r;
	if (slots == 0)
		return -EPROTO;
	ud->max_slots = slots > VH_USER_MAX_MEM_SLOTS ? VH_USER_MAX_MEM_SLOTS : (unsigned)slots;
	return (int)ud->max_slots;
}

/*
 * CONFIGURE_MEM_SLOTS: send the differences against what the back-end has (removals first, so
 * the slot count never exceeds the limit). The shadow follows each acknowledged step, so after a
 * failure it still describes the back-end's table.
 */
static int set_mem_slots(struct vhp_user_device *ud, const struct vh_region *regions, unsigned n,
			 const struct vh_mem_region *wire, const struct stat *st)
{
	struct vhp_shadow_region *shadow = ud->shadow;
	unsigned char *keep = NULL, *have = NULL;
	int limit, r = 0;

	limit = max_slots(ud);
	if (limit < 0)
		return limit;
	if (n > (unsigned)limit)
		return -ENOSPC;
	if (!shadow) {
		shadow = calloc(VH_USER_MAX_MEM_SLOTS, sizeof(*shadow));
		if (!shadow)
			return -ENOMEM;
		ud->shadow = shadow;
	}
	keep = calloc(VH_USER_MAX_MEM_SLOTS, 1);
	have = calloc(n ? n : 1, 1);
	if (!keep || !have) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < ud->nshadow; i++) {
		for (unsigned j = 0; j < n; j++) {
			if (!have[j] && same_region(&shadow[i], &wire[j], &st[j])) {
				keep[i] = 1;
				have[j] = 1;
				break;
			}
		}
	}
	/* Remove from the end so the indexes of entries still to visit do not move. */
	for (unsigned i = ud->nshadow; i-- > 0;) {
		if (keep[i])
			continue;
		r = vh_frontend_rem_mem_reg(ud->fe, &shadow[i].r);
		if (r)
			goto out;
		memmove(&shadow[i], &shadow[i + 1], (ud->nshadow - i - 1) * sizeof(*shadow));
		memmove(&keep[i], &keep[i + 1], ud->nshadow - i - 1);
		ud->nshadow--;
	}
	for (unsigned j = 0; j < n; j++) {
		if (have[j])
			continue;
		if (ud->nshadow >= (unsigned)limit) {
			r = -ENOSPC;
			goto out;
		}
		r = vh_frontend_add_mem_reg(ud->fe, &wire[j], regions[j].fd);
		if (r)
			goto out;
		shadow[ud->nshadow].r = wire[j];
		shadow[ud->nshadow].fd_dev = st[j].st_dev;
		shadow[ud->nshadow].fd_ino = st[j].st_ino;
		ud->nshadow++;
	}
out:
	free(keep);
	free(have);
	return r;
}

static int u_set_mem_table(struct vh_device *dev, const struct vh_region *regions, unsigned n)
{
	struct vhp_user_device *ud = udev_of(dev);
	struct vh_frontend *fe = ud->fe;
	struct vh_mem_region *wire = NULL;
	struct stat *st = NULL;
	int *fds = NULL;
	int slots = !!(fe->protocol & VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
	int r;

	if (n > (slots ? VH_USER_MAX_MEM_SLOTS : VH_USER_MAX_TABLE_REGIONS))
		return slots ? -ENOSPC : -ENOTSUP; /* more than 8 needs CONFIGURE_MEM_SLOTS */
	wire = calloc(n ? n : 1, sizeof(*wire));
	st = calloc(n ? n : 1, sizeof(*st));
	fds = calloc(n ? n : 1, sizeof(*fds));
	if (!wire || !st || !fds) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		/* vhost-user maps guest memory through its fd: anonymous memory cannot be shared. */
		if (regions[i].fd < 0 || fstat(regions[i].fd, &st[i])) {
			r = -EBADF;
			goto out;
		}
		to_wire(&regions[i], &wire[i]);
		fds[i] = regions[i].fd;
	}
	r = vhp_fe_check_regions(wire, n);
	if (r)
		goto out;
	if (slots)
		r = set_mem_slots(ud, regions, n, wire, st);
	else
		r = vh_frontend_set_mem_table(fe, wire, fds, n);
out:
	free(wire);
	free(st);
	free(fds);
	return r;
}

static int u_set_log_base(struct vh_device *dev, uint64_t log_addr, int log_fd, uint64_t size,
			  uint64_t offset)
{
	(void)log_addr; /* the back-end maps the log from the fd */
	return vh_frontend_set_log_base(fe_of(dev), size, offset, log_fd);
}

static int u_set_log_fd(struct vh_device *dev, int fd)
{
	return vh_frontend_set_log_fd(fe_of(dev), fd);
}

static int u_set_vring_num(struct vh_device *dev, unsigned index, unsigned num)
{
	return vh_frontend_set_vring_num(fe_of(dev), index, num);
}

static int u_set_vring_addr(struct vh_device *dev, const struct vh_vring_addr *addr)
{
	return vh_frontend_set_vring_addr(fe_of(dev), addr);
}

static int u_set_vring_base(struct vh_device *dev, unsigned index, uint32_t base)
{
	return vh_frontend_set_vring_base(fe_of(dev), index, base);
}

static int u_get_vring_base(struct vh_device *dev, unsigned index, uint32_t *base)
{
	return vh_frontend_get_vring_base(fe_of(dev), index, base);
}

static int u_set_vring_kick(struct vh_device *dev, unsigned index, int fd)
{
	return vh_frontend_set_vring_kick(fe_of(dev), index, fd);
}

static int u_set_vring_call(struct vh_device *dev, unsigned index, int fd)
{
	return vh_frontend_set_vring_call(fe_of(dev), index, fd);
}

static int u_set_vring_err(struct vh_device *dev, unsigned index, int fd)
{
	return vh_frontend_set_vring_err(fe_of(dev), index, fd);
}

static int u_set_vring_enable(struct vh_device *dev, unsigned index, int enable)
{
	struct vh_frontend *fe = fe_of(dev);

	/* Without bit 30 the back-end enables rings itself; only disabling is impossible. */
	if (!(fe->features_offered & VH_BIT(VH_USER_F_PROTOCOL_FEATURES)))
		return enable ? 0 : -EOPNOTSUPP;
	return vh_frontend_set_vring_enable(fe, index, enable);
}

static int u_get_config(struct vh_device *dev, uint32_t offset, void *buf, uint32_t len)
{
	return vh_frontend_get_config(fe_of(dev), offset, buf, len, 0);
}

static int u_set_config(struct vh_device *dev, uint32_t offset, const void *buf, uint32_t len)
{
	return vh_frontend_set_config(fe_of(dev), offset, buf, len, 0);
}

static int u_get_status(struct vh_device *dev, uint8_t *status)
{
	return vh_frontend_get_status(fe_of(dev), status);
}

static int u_set_status(struct vh_device *dev, uint8_t status)
{
	return vh_frontend_set_status(fe_of(dev), status);
}

static int u_get_queue_num(struct vh_device *dev, unsigned *max_queues)
{
	struct vh_frontend *fe = fe_of(dev);
	uint64_t v;
	int r;

	if (!(fe->protocol & VH_BIT(VH_USER_PROTOCOL_F_MQ))) {
		*max_queues = 1;
		return 0;
	}
	r = vh_frontend_get_queue_num(fe, &v);
	if (r)
		return r;
	if (v == 0 || v > 0xffff) /* virtio has at most 65535 queues */
		return -ERANGE;
	*max_queues = (unsigned)v;
	return 0;
}

static void u_close(struct vh_device *dev)
{
	struct vhp_user_device *ud = udev_of(dev);

	if (ud->owns_fe)
		vh_frontend_free(ud->fe);
}

static const struct vh_device_ops user_ops = {
	.get_features = u_get_features,
	.set_features = u_set_features,
	.set_owner = u_set_owner,
	.reset_owner = u_reset_owner,
	.set_mem_table = u_set_mem_table,
	.set_log_base = u_set_log_base,
	.set_log_fd = u_set_log_fd,
	.set_vring_num = u_set_vring_num,
	.set_vring_addr = u_set_vring_addr,
	.set_vring_base = u_set_vring_base,
	.get_vring_base = u_get_vring_base,
	.set_vring_kick = u_set_vring_kick,
	.set_vring_call = u_set_vring_call,
	.set_vring_err = u_set_vring_err,
	.set_vring_enable = u_set_vring_enable,
	.get_config = u_get_config,
	.set_config = u_set_config,
	.get_status = u_get_status,
	.set_status = u_set_status,
	.get_queue_num = u_get_queue_num,
	.get_vring_max = NULL, /* vhost-user has no such query */
	.close = u_close,
};

void vhp_user_device_init(struct vh_frontend *fe)
{
	struct vhp_user_device *ud = &fe->udev;

	memset(ud, 0, sizeof(*ud));
	ud->dev.ops = &user_ops;
	ud->dev.transport = VH_TRANSPORT_USER;
	ud->dev.log = fe->log;
	ud->fe = fe;
}

void vhp_user_device_fini(struct vh_frontend *fe)
{
	free(fe->udev.shadow);
	fe->udev.shadow = NULL;
	fe->udev.nshadow = 0;
}

struct vh_device *vh_frontend_device(struct vh_frontend *fe)
{
	return fe ? &fe->udev.dev : NULL;
}

int vh_frontend_device_open(struct vh_device **out, const char *path,
			    const struct vh_frontend_config *cfg, uint64_t want_protocol)
{
	struct vh_frontend *fe;
	int r;

	if (!out || !path)
		return -EINVAL;
	*out = NULL;
	r = vh_frontend_connect(&fe, path, cfg);
	if (r)
		return r;
	r = vh_frontend_negotiate(fe, want_protocol, NULL, NULL);
	if (r) {
		vh_frontend_free(fe);
		return r;
	}
	fe->udev.owns_fe = 1;
	*out = &fe->udev.dev;
	return 0;
}

struct vh_frontend *vh_device_frontend(struct vh_device *dev)
{
	if (!dev || dev->ops != &user_ops)
		return NULL;
	return fe_of(dev);
}
