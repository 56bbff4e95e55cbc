/* SPDX-License-Identifier: MIT */
/*
 * Kernel vhost transport: one wrapper per ioctl of <linux/vhost.h> (6.12) for vhost devices,
 * IOTLB messages over the fd, and the device-control operations on top.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <libvhost/kernel.h>
#include <libvhost/uapi_compat.h>
#include "internal.h"
#include "vhost_fd.h"

#define VIRTIO_F_RING_PACKED_BIT 34
/* vhost_vring_set_num() accepts powers of two up to this. */
#define KERNEL_VRING_MAX 32768u
#define VRING_INDEX_MAX 0xffffu

_Static_assert(sizeof(struct vh_vring_addr) == sizeof(struct vhost_vring_addr), "vring addr");
_Static_assert(VH_ACCESS_RW == VHOST_ACCESS_RW && VH_ACCESS_RO == VHOST_ACCESS_RO &&
		       VH_ACCESS_WO == VHOST_ACCESS_WO, "iotlb perm");
_Static_assert(VH_IOTLB_MISS == VHOST_IOTLB_MISS && VH_IOTLB_UPDATE == VHOST_IOTLB_UPDATE &&
		       VH_IOTLB_INVALIDATE == VHOST_IOTLB_INVALIDATE &&
		       VH_IOTLB_ACCESS_FAIL == VHOST_IOTLB_ACCESS_FAIL &&
		       VH_IOTLB_BATCH_BEGIN == VHOST_IOTLB_BATCH_BEGIN &&
		       VH_IOTLB_BATCH_END == VHOST_IOTLB_BATCH_END,
	       "iotlb types");

/* ------------------------------------------------------------------------------------------ */
/* Shared with vdpa.c */

struct vhp_vhost *vhp_vhost_of(struct vh_device *dev)
{
	if (!dev)
		return NULL;
	if (dev->transport != VH_TRANSPORT_KERNEL && dev->transport != VH_TRANSPORT_VDPA)
		return NULL;
	return (struct vhp_vhost *)dev;
}

int vhp_vhost_ioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static enum vh_kernel_kind kind_from_name(const char *name)
{
	if (!strcmp(name, "vhost-net"))
		return VH_KERNEL_NET;
	if (!strcmp(name, "vhost-vsock"))
		return VH_KERNEL_VSOCK;
	if (!strcmp(name, "vhost-scsi"))
		return VH_KERNEL_SCSI;
	if (!strncmp(name, "vhost-vdpa-", 11))
		return VH_KERNEL_VDPA;
	return VH_KERNEL_UNKNOWN;
}

/* Basename of a symlink's target, or "" when it cannot be read. */
static void link_basename(const char *link, char *out, size_t outsz)
{
	char target[PATH_MAX];
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	const char *base;

	out[0] = '\0';
	if (n <= 0)
		return;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) < outsz)
		memcpy(out, base, strlen(base) + 1);
}

static enum vh_kernel_kind name_kind(int fd, const struct stat *st)
{
	char link[64], name[NAME_MAX + 1];
	enum vh_kernel_kind kind;

	/* The driver names its device in sysfs; the node itself may have any name. */
	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u", major(st->st_rdev),
		 minor(st->st_rdev));
	link_basename(link, name, sizeof(name));
	kind = kind_from_name(name);
	if (kind != VH_KERNEL_UNKNOWN)
		return kind;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	link_basename(link, name, sizeof(name));
	return kind_from_name(name);
}

int vhp_vhost_probe(int fd, enum vh_kernel_kind *kind, const struct vh_logger *log)
{
	struct stat st;
	uint64_t features;
	uint32_t id;
	int r;

	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISCHR(st.st_mode)) {
		vhp_dbg(log, "vhost: fd %d is not a character device", fd);
		return -ENOTTY;
	}
	/* Every vhost driver answers GET_FEATURES, owner or not. */
	r = vhp_vhost_ioctl(fd, VHOST_GET_FEATURES, &features);
	if (r < 0) {
		vhp_dbg(log, "vhost: VHOST_GET_FEATURES on fd %d: %s", fd, strerror(-r));
		return r;
	}
	*kind = name_kind(fd, &st);
	/* vhost-vdpa answers GET_DEVICE_ID without an owner; the others refuse it. */
	if (*kind == VH_KERNEL_UNKNOWN && vhp_vhost_ioctl(fd, VHOST_VDPA_GET_DEVICE_ID, &id) == 0)
		*kind = VH_KERNEL_VDPA;
	return 0;
}

void vhp_vhost_init(struct vhp_vhost *vh, const struct vh_device_ops *ops,
		    enum vh_transport transport, int fd, enum vh_kernel_kind kind,
		    const struct vh_logger *log)
{
	memset(vh, 0, sizeof(*vh));
	vh->dev.ops = ops;
	vh->dev.transport = transport;
	if (log)
		vh->dev.log = *log;
	vh->fd = fd;
	vh->kind = kind;
}

/* ------------------------------------------------------------------------------------------ */
/* Argument helpers */

static int get_vh(struct vh_device *dev, struct vhp_vhost **vh)
{
	if (!dev)
		return -EINVAL;
	*vh = vhp_vhost_of(dev);
	return *vh ? 0 : -ENODEV;
}

/* Device-specific ioctls: refuse a device known to be of another kind. */
static int get_vh_kind(struct vh_device *dev, enum vh_kernel_kind want, struct vhp_vhost **vh)
{
	int r = get_vh(dev, vh);

	if (r < 0)
		return r;
	if ((*vh)->kind != want && (*vh)->kind != VH_KERNEL_UNKNOWN)
		return -ENODEV;
	return 0;
}

int vhp_vhost_vring_state(int fd, unsigned long req, unsigned index, uint32_t num,
			  uint32_t *out)
{
	struct vhost_vring_state s = { .index = index, .num = num };
	int r;

	if (index > VRING_INDEX_MAX)
		return -EINVAL;
	r = vhp_vhost_ioctl(fd, req, &s);
	if (r < 0 || !out)
		return r;
	if (s.index != index) /* the kernel never rewrites the index */
		return -EPROTO;
	*out = s.num;
	return 0;
}

static int vring_state_ioctl(struct vh_device *dev, unsigned long req, unsigned index,
			     unsigned num)
{
	struct vhp_vhost *vh;
	int r = get_vh(dev, &vh);

	return r < 0 ? r : vhp_vhost_vring_state(vh->fd, req, index, num, NULL);
}

/* GET-style vring ioctls: index in, num out. */
static int vring_state_get(struct vh_device *dev, unsigned long req, unsigned index,
			   uint32_t *num)
{
	struct vhp_vhost *vh;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (!num)
		return -EINVAL;
	return vhp_vhost_vring_state(vh->fd, req, index, 0, num);
}

static int vring_file_ioctl(struct vh_device *dev, unsigned long req, unsigned index, int fd)
{
	struct vhp_vhost *vh;
	struct vhost_vring_file f = { .index = index, .fd = fd };
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (index > VRING_INDEX_MAX || fd < VHOST_FILE_UNBIND)
		return -EINVAL;
	return vhp_vhost_ioctl(vh->fd, req, &f);
}

/* ------------------------------------------------------------------------------------------ */
/* Generic vhost ioctls */

int vh_kernel_fd(const struct vh_device *dev)
{
	struct vhp_vhost *vh;

	if (!dev)
		return -EINVAL;
	vh = vhp_vhost_of((struct vh_device *)dev);
	return vh ? vh->fd : -ENODEV;
}

enum vh_kernel_kind vh_kernel_kind(const struct vh_device *dev)
{
	struct vhp_vhost *vh = vhp_vhost_of((struct vh_device *)dev);

	return vh ? vh->kind : VH_KERNEL_UNKNOWN;
}

int vh_kernel_get_features(struct vh_device *dev, uint64_t *features)
{
	struct vhp_vhost *vh;
	uint64_t f = 0;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (!features)
		return -EINVAL;
	r = vhp_vhost_ioctl(vh->fd, VHOST_GET_FEATURES, &f);
	if (r == 0)
		*features = f;
	return r;
}

int vh_kernel_set_features(struct vh_device *dev, uint64_t features)
{
	struct vhp_vhost *vh;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	r = vhp_vhost_ioctl(vh->fd, VHOST_SET_FEATURES, &features);
	if (r == 0)
		vh->features_acked = features;
	return r;
}

/* GET/SET_FEATURES_ARRAY: count 64-bit words in (set) or out (get). */
static int features_array(struct vh_device *dev, unsigned long req, uint64_t *features,
			  unsigned count, bool set)
{
	struct vhp_vhost *vh;
	struct vhost_features_array *a;
	size_t bytes = (size_t)count * sizeof(uint64_t);
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (!features || count == 0)
		return -EINVAL;
	if (count > VH_KERNEL_MAX_FEATURE_WORDS)
		return -E2BIG;
	a = calloc(1, sizeof(*a) + bytes);
	if (!a)
		return -ENOMEM;
	a->count = count;
	if (set)
		memcpy(a->features, features, bytes);
	r = vhp_vhost_ioctl(vh->fd, req, a);
	/* A kernel without these ioctls hands them to its vring code, which reads count as a
	 * ring index and answers ENOBUFS when it is out of range: report that as unknown. */
	if (r == -ENOBUFS)
		r = -ENOTTY;
	if (r == 0 && set)
		vh->features_acked = features[0];
	else if (r == 0)
		memcpy(features, a->features, bytes);
	free(a);
	return r;
}

int vh_kernel_get_features_array(struct vh_device *dev, uint64_t *features, unsigned count)
{
	return features_array(dev, VHOST_GET_FEATURES_ARRAY, features, count, false);
}

int vh_kernel_set_features_array(struct vh_device *dev, const uint64_t *features,
				 unsigned count)
{
	/* Not written through: set only copies from features. */
	return features_array(dev, VHOST_SET_FEATURES_ARRAY, (uint64_t *)features, count, true);
}

int vh_kernel_set_owner(struct vh_device *dev)
{
	struct vhp_vhost *vh;
	int r = get_vh(dev, &vh);

	return r < 0 ? r : vhp_vhost_ioctl(vh->fd, VHOST_SET_OWNER, NULL);
}

int vh_kernel_reset_owner(struct vh_device *dev)
{
	struct vhp_vhost *vh;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	r = vhp_vhost_ioctl(vh->fd, VHOST_RESET_OWNER, NULL);
	if (r == 0) {
		/* The kernel resets every ring, which forgets the acked features. */
		vh->features_acked = 0;
		vh->backend_acked = 0;
	}
	return r;
}

/* A kernel that knows the fork-owner ioctls answers them before SET_OWNER; one that does not
 * passes them to its common code, which refuses everything with EPERM until there is an
 * owner. EPERM therefore means "unknown ioctl" here. */
static int fork_owner_errno(int r)
{
	return r == -EPERM ? -ENOTTY : r;
}

int vh_kernel_set_fork_from_owner(struct vh_device *dev, uint8_t mode)
{
	struct vhp_vhost *vh;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (mode != VHOST_FORK_OWNER_KTHREAD && mode != VHOST_FORK_OWNER_TASK)
		return -EINVAL;
	return fork_owner_errno(vhp_vhost_ioctl(vh->fd, VHOST_SET_FORK_FROM_OWNER, &mode));
}

int vh_kernel_get_fork_from_owner(struct vh_device *dev, uint8_t *mode)
{
	struct vhp_vhost *vh;
	uint8_t m = 0xff;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (!mode)
		return -EINVAL;
	r = fork_owner_errno(vhp_vhost_ioctl(vh->fd, VHOST_GET_FORK_FROM_OWNER, &m));
	if (r < 0)
		return r;
	if (m != VHOST_FORK_OWNER_KTHREAD && m != VHOST_FORK_OWNER_TASK)
		return -EPROTO;
	*mode = m;
	return 0;
}

int vh_kernel_set_mem_table(struct vh_device *dev, const struct vh_region *regions, unsigned n)
{
	struct vhp_vhost *vh;
	struct vhost_memory *m;
	uint64_t end;
	unsigned i;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (n && !regions)
		return -EINVAL;
	if (n > VH_KERNEL_MAX_REGIONS)
		return -E2BIG;
	for (i = 0; i < n; i++) {
		if (regions[i].size == 0 ||
		    __builtin_add_overflow(regions[i].guest_phys_addr, regions[i].size - 1, &end) ||
		    __builtin_add_overflow(regions[i].userspace_addr, regions[i].size - 1, &end))
			return -EINVAL;
	}
	m = calloc(1, sizeof(*m) + (size_t)n * sizeof(struct vhost_memory_region));
	if (!m)
		return -ENOMEM;
	m->nregions = n;
	for (i = 0; i < n; i++) {
		m->regions[i].guest_phys_addr = regions[i].guest_phys_addr;
		m->regions[i].memory_size = regions[i].size;
		m->regions[i].userspace_addr = regions[i].userspace_addr;
	}
	r = vhp_vhost_ioctl(vh->fd, VHOST_SET_MEM_TABLE, m);
	free(m);
	return r;
}

int vh_kernel_set_log_base(struct vh_device *dev, uint64_t log_addr)
{
	struct vhp_vhost *vh;
	int r = get_vh(dev, &vh);

	return r < 0 ? r : vhp_vhost_ioctl(vh->fd, VHOST_SET_LOG_BASE, &log_addr);
}

int vh_kernel_set_log_fd(struct vh_device *dev, int eventfd)
{
	struct vhp_vhost *vh;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (eventfd < -1)
		return -EINVAL;
	return vhp_vhost_ioctl(vh->fd, VHOST_SET_LOG_FD, &eventfd);
}

int vh_kernel_new_worker(struct vh_device *dev, uint32_t *worker_id)
{
	struct vhp_vhost *vh;
	struct vhost_worker_state w = { .worker_id = 0 };
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (!worker_id)
		return -EINVAL;
	r = vhp_vhost_ioctl(vh->fd, VHOST_NEW_WORKER, &w);
	if (r == 0)
		*worker_id = w.worker_id;
	return r;
}

int vh_kernel_free_worker(struct vh_device *dev, uint32_t worker_id)
{
	struct vhp_vhost *vh;
	struct vhost_worker_state w = { .worker_id = worker_id };
	int r = get_vh(dev, &vh);

	return r < 0 ? r : vhp_vhost_ioctl(vh->fd, VHOST_FREE_WORKER, &w);
}

int vh_kernel_attach_vring_worker(struct vh_device *dev, unsigned index, uint32_t worker_id)
{
	struct vhp_vhost *vh;
	struct vhost_vring_worker w = { .index = index, .worker_id = worker_id };
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (index > VRING_INDEX_MAX)
		return -EINVAL;
	return vhp_vhost_ioctl(vh->fd, VHOST_ATTACH_VRING_WORKER, &w);
}

int vh_kernel_get_vring_worker(struct vh_device *dev, unsigned index, uint32_t *worker_id)
{
	struct vhp_vhost *vh;
	struct vhost_vring_worker w = { .index = index, .worker_id = 0 };
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (!worker_id || index > VRING_INDEX_MAX)
		return -EINVAL;
	r = vhp_vhost_ioctl(vh->fd, VHOST_GET_VRING_WORKER, &w);
	if (r < 0)
		return r;
	if (w.index != index)
		return -EPROTO;
	*worker_id = w.worker_id;
	return 0;
}

int vh_kernel_set_vring_num(struct vh_device *dev, unsigned index, unsigned num)
{
	return vring_state_ioctl(dev, VHOST_SET_VRING_NUM, index, num);
}

int vh_kernel_set_vring_addr(struct vh_device *dev, const struct vh_vring_addr *addr)
{
	struct vhp_vhost *vh;
	struct vhost_vring_addr a;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (!addr || addr->index > VRING_INDEX_MAX)
		return -EINVAL;
	a.index = addr->index;
	a.flags = addr->flags;
	a.desc_user_addr = addr->desc_user_addr;
	a.used_user_addr = addr->used_user_addr;
	a.avail_user_addr = addr->avail_user_addr;
	a.log_guest_addr = addr->log_guest_addr;
	return vhp_vhost_ioctl(vh->fd, VHOST_SET_VRING_ADDR, &a);
}

int vh_kernel_set_vring_base(struct vh_device *dev, unsigned index, uint32_t base)
{
	return vring_state_ioctl(dev, VHOST_SET_VRING_BASE, index, base);
}

int vh_kernel_get_vring_base(struct vh_device *dev, unsigned index, uint32_t *base)
{
	uint32_t v;
	int r = vring_state_get(dev, VHOST_GET_VRING_BASE, index, &v);

	if (r < 0)
		return r;
	/* A split ring's index is 16 bits; only packed rings encode wrap counters above. */
	if (!(((struct vhp_vhost *)dev)->features_acked & (1ULL << VIRTIO_F_RING_PACKED_BIT)) &&
	    v > 0xffff)
		return -EPROTO;
	*base = v;
	return 0;
}

int vh_kernel_set_vring_endian(struct vh_device *dev, unsigned index, unsigned big_endian)
{
	if (big_endian != VHOST_VRING_LITTLE_ENDIAN && big_endian != VHOST_VRING_BIG_ENDIAN)
		return -EINVAL;
	return vring_state_ioctl(dev, VHOST_SET_VRING_ENDIAN, index, big_endian);
}

int vh_kernel_get_vring_endian(struct vh_device *dev, unsigned index, unsigned *big_endian)
{
	uint32_t v;
	int r;

	if (!big_endian)
		return -EINVAL;
	r = vring_state_get(dev, VHOST_GET_VRING_ENDIAN, index, &v);
	if (r < 0)
		return r;
	if (v != VHOST_VRING_LITTLE_ENDIAN && v != VHOST_VRING_BIG_ENDIAN)
		return -EPROTO;
	*big_endian = v;
	return 0;
}

int vh_kernel_set_vring_kick(struct vh_device *dev, unsigned index, int eventfd)
{
	return vring_file_ioctl(dev, VHOST_SET_VRING_KICK, index, eventfd);
}

int vh_kernel_set_vring_call(struct vh_device *dev, unsigned index, int eventfd)
{
	return vring_file_ioctl(dev, VHOST_SET_VRING_CALL, index, eventfd);
}

int vh_kernel_set_vring_err(struct vh_device *dev, unsigned index, int eventfd)
{
	return vring_file_ioctl(dev, VHOST_SET_VRING_ERR, index, eventfd);
}

int vh_kernel_set_vring_busyloop_timeout(struct vh_device *dev, unsigned index, uint32_t usec)
{
	return vring_state_ioctl(dev, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, index, usec);
}

int vh_kernel_get_vring_busyloop_timeout(struct vh_device *dev, unsigned index, uint32_t *usec)
{
	return vring_state_get(dev, VHOST_GET_VRING_BUSYLOOP_TIMEOUT, index, usec);
}

int vh_kernel_get_backend_features(struct vh_device *dev, uint64_t *features)
{
	struct vhp_vhost *vh;
	uint64_t f = 0;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (!features)
		return -EINVAL;
	r = vhp_vhost_ioctl(vh->fd, VHOST_GET_BACKEND_FEATURES, &f);
	if (r < 0)
		return r;
	/* Bit 0 has never been assigned. */
	if (f & 1)
		return -EPROTO;
	*features = f;
	return 0;
}

int vh_kernel_set_backend_features(struct vh_device *dev, uint64_t features)
{
	struct vhp_vhost *vh;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if ((features & (1ULL << VHOST_BACKEND_F_DESC_ASID)) &&
	    !(features & (1ULL << VHOST_BACKEND_F_IOTLB_ASID)))
		return -EINVAL;
	r = vhp_vhost_ioctl(vh->fd, VHOST_SET_BACKEND_FEATURES, &features);
	if (r == 0)
		vh->backend_acked = features;
	return r;
}

uint64_t vh_kernel_acked_backend_features(const struct vh_device *dev)
{
	struct vhp_vhost *vh = vhp_vhost_of((struct vh_device *)dev);

	return vh ? vh->backend_acked : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Device-specific ioctls */

int vh_kernel_net_set_backend(struct vh_device *dev, unsigned index, int fd)
{
	struct vhp_vhost *vh;
	int r = get_vh_kind(dev, VH_KERNEL_NET, &vh);

	if (r < 0)
		return r;
	return vring_file_ioctl(dev, VHOST_NET_SET_BACKEND, index, fd);
}

int vh_kernel_vsock_set_guest_cid(struct vh_device *dev, uint64_t cid)
{
	struct vhp_vhost *vh;
	int r = get_vh_kind(dev, VH_KERNEL_VSOCK, &vh);

	return r < 0 ? r : vhp_vhost_ioctl(vh->fd, VHOST_VSOCK_SET_GUEST_CID, &cid);
}

int vh_kernel_vsock_set_running(struct vh_device *dev, int running)
{
	struct vhp_vhost *vh;
	int r = get_vh_kind(dev, VH_KERNEL_VSOCK, &vh);

	if (r < 0)
		return r;
	running = running ? 1 : 0;
	return vhp_vhost_ioctl(vh->fd, VHOST_VSOCK_SET_RUNNING, &running);
}

static int scsi_target_ioctl(struct vh_device *dev, unsigned long req, const char *wwpn,
			     uint16_t tpgt)
{
	struct vhp_vhost *vh;
	struct vhost_scsi_target t;
	size_t len;
	int r = get_vh_kind(dev, VH_KERNEL_SCSI, &vh);

	if (r < 0)
		return r;
	if (!wwpn)
		return -EINVAL;
	len = strnlen(wwpn, sizeof(t.vhost_wwpn));
	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(t.vhost_wwpn))
		return -ENAMETOOLONG;
	memset(&t, 0, sizeof(t));
	t.abi_version = VHOST_SCSI_ABI_VERSION;
	memcpy(t.vhost_wwpn, wwpn, len);
	t.vhost_tpgt = tpgt;
	return vhp_vhost_ioctl(vh->fd, req, &t);
}

int vh_kernel_scsi_set_endpoint(struct vh_device *dev, const char *wwpn, uint16_t tpgt)
{
	return scsi_target_ioctl(dev, VHOST_SCSI_SET_ENDPOINT, wwpn, tpgt);
}

int vh_kernel_scsi_clear_endpoint(struct vh_device *dev, const char *wwpn, uint16_t tpgt)
{
	return scsi_target_ioctl(dev, VHOST_SCSI_CLEAR_ENDPOINT, wwpn, tpgt);
}

int vh_kernel_scsi_get_abi_version(struct vh_device *dev, int *version)
{
	struct vhp_vhost *vh;
	int v = -1;
	int r = get_vh_kind(dev, VH_KERNEL_SCSI, &vh);

	if (r < 0)
		return r;
	if (!version)
		return -EINVAL;
	r = vhp_vhost_ioctl(vh->fd, VHOST_SCSI_GET_ABI_VERSION, &v);
	if (r < 0)
		return r;
	if (v < 0)
		return -EPROTO;
	*version = v;
	return 0;
}

int vh_kernel_scsi_set_events_missed(struct vh_device *dev, uint32_t missed)
{
	struct vhp_vhost *vh;
	int r = get_vh_kind(dev, VH_KERNEL_SCSI, &vh);

	return r < 0 ? r : vhp_vhost_ioctl(vh->fd, VHOST_SCSI_SET_EVENTS_MISSED, &missed);
}

int vh_kernel_scsi_get_events_missed(struct vh_device *dev, uint32_t *missed)
{
	struct vhp_vhost *vh;
	uint32_t v = UINT32_MAX;
	int r = get_vh_kind(dev, VH_KERNEL_SCSI, &vh);

	if (r < 0)
		return r;
	if (!missed)
		return -EINVAL;
	r = vhp_vhost_ioctl(vh->fd, VHOST_SCSI_GET_EVENTS_MISSED, &v);
	if (r < 0)
		return r;
	if (v > 1) /* a flag in the kernel */
		return -EPROTO;
	*missed = v;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* IOTLB messages */

union iotlb_wire {
	struct vhost_msg v1;
	struct vhost_msg_v2 v2;
};
_Static_assert(sizeof(union iotlb_wire) == 72, "iotlb wire size");

static int iotlb_send(struct vh_device *dev, uint32_t asid, uint8_t type, uint64_t iova,
		      uint64_t size, uint64_t uaddr, uint8_t perm)
{
	struct vhp_vhost *vh;
	union iotlb_wire m;
	struct vhost_iotlb_msg *io;
	size_t len;
	ssize_t n;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	memset(&m, 0, sizeof(m));
	if (vh->backend_acked & (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2)) {
		if (asid && !(vh->backend_acked & (1ULL << VHOST_BACKEND_F_IOTLB_ASID)))
			return -EOPNOTSUPP;
		m.v2.type = VHOST_IOTLB_MSG_V2;
		m.v2.asid = asid;
		io = &m.v2.iotlb;
		len = sizeof(m.v2);
	} else {
		if (asid)
			return -EOPNOTSUPP;
		m.v1.type = VHOST_IOTLB_MSG;
		io = &m.v1.iotlb;
		len = sizeof(m.v1);
	}
	io->iova = iova;
	io->size = size;
	io->uaddr = uaddr;
	io->perm = perm;
	io->type = type;
	do {
		n = write(vh->fd, &m, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int vh_kernel_iotlb_update(struct vh_device *dev, uint32_t asid, uint64_t iova, uint64_t size,
			   uint64_t uaddr, unsigned perm)
{
	uint64_t end;

	if (size == 0 || __builtin_add_overflow(iova, size - 1, &end) ||
	    __builtin_add_overflow(uaddr, size - 1, &end))
		return -EINVAL;
	if (perm != VH_ACCESS_RO && perm != VH_ACCESS_WO && perm != VH_ACCESS_RW)
		return -EINVAL;
	return iotlb_send(dev, asid, VHOST_IOTLB_UPDATE, iova, size, uaddr, (uint8_t)perm);
}

int vh_kernel_iotlb_invalidate(struct vh_device *dev, uint32_t asid, uint64_t iova,
			       uint64_t size)
{
	uint64_t end;

	if (size == 0 || __builtin_add_overflow(iova, size - 1, &end))
		return -EINVAL;
	return iotlb_send(dev, asid, VHOST_IOTLB_INVALIDATE, iova, size, 0, 0);
}

static int iotlb_batch(struct vh_device *dev, uint32_t asid, uint8_t type)
{
	struct vhp_vhost *vh;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	/* Batches exist only in message v2. */
	if (!(vh->backend_acked & (1ULL << VHOST_BACKEND_F_IOTLB_BATCH)) ||
	    !(vh->backend_acked & (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2)))
		return -EOPNOTSUPP;
	return iotlb_send(dev, asid, type, 0, 0, 0, 0);
}

int vh_kernel_iotlb_batch_begin(struct vh_device *dev, uint32_t asid)
{
	return iotlb_batch(dev, asid, VHOST_IOTLB_BATCH_BEGIN);
}

int vh_kernel_iotlb_batch_end(struct vh_device *dev, uint32_t asid)
{
	return iotlb_batch(dev, asid, VHOST_IOTLB_BATCH_END);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int iotlb_parse(const struct vhp_vhost *vh, const union iotlb_wire *m,
		       struct vh_iotlb_event *ev)
{
	const struct vhost_iotlb_msg *io;
	uint32_t asid = 0;

	if (vh->backend_acked & (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2)) {
		if (m->v2.type != VHOST_IOTLB_MSG_V2)
			return -EPROTO;
		io = &m->v2.iotlb;
		if (vh->backend_acked & (1ULL << VHOST_BACKEND_F_IOTLB_ASID))
			asid = m->v2.asid;
	} else {
		if (m->v1.type != VHOST_IOTLB_MSG)
			return -EPROTO;
		io = &m->v1.iotlb;
	}
	if (io->type != VHOST_IOTLB_MISS && io->type != VHOST_IOTLB_ACCESS_FAIL)
		return -EPROTO;
	if (io->perm != VHOST_ACCESS_RO && io->perm != VHOST_ACCESS_WO &&
	    io->perm != VHOST_ACCESS_RW)
		return -EPROTO;
	ev->iova = io->iova;
	ev->size = io->size;
	ev->uaddr = io->uaddr;
	ev->asid = asid;
	ev->perm = io->perm;
	ev->type = io->type;
	return 0;
}

int vh_kernel_iotlb_read(struct vh_device *dev, struct vh_iotlb_event *ev, int timeout_ms)
{
	struct vhp_vhost *vh;
	union iotlb_wire m;
	int64_t deadline = 0;
	int r = get_vh(dev, &vh);

	if (r < 0)
		return r;
	if (!ev)
		return -EINVAL;
	if (timeout_ms > 0)
		deadline = now_ms() + timeout_ms;
	for (;;) {
		struct pollfd p = { .fd = vh->fd, .events = POLLIN };
		int wait = timeout_ms;
		ssize_t n;

		if (timeout_ms > 0) {
			int64_t left = deadline - now_ms();

			wait = left > 0 ? (int)left : 0;
		}
		r = poll(&p, 1, wait);
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		if (p.revents & POLLNVAL)
			return -EBADF;
		if (!(p.revents & (POLLIN | POLLERR | POLLHUP)))
			return -EIO;
		n = read(vh->fd, &m, sizeof(m));
		if (n < 0) {
			if (errno == EINTR)
				return -EINTR;
			if (errno != EAGAIN)
				return -errno;
			/* Someone else took the message: wait again within the same deadline. */
			if (timeout_ms == 0)
				return -ETIMEDOUT;
			continue;
		}
		if ((size_t)n != sizeof(m))
			return -EIO;
		return iotlb_parse(vh, &m, ev);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Device-control operations */

int vhp_kernel_op_get_features(struct vh_device *dev, uint64_t *features)
{
	return vh_kernel_get_features(dev, features);
}

int vhp_kernel_op_set_features(struct vh_device *dev, uint64_t features)
{
	return vh_kernel_set_features(dev, features);
}

int vhp_kernel_op_set_owner(struct vh_device *dev)
{
	return vh_kernel_set_owner(dev);
}

int vhp_kernel_op_reset_owner(struct vh_device *dev)
{
	return vh_kernel_reset_owner(dev);
}

int vhp_kernel_op_set_log_fd(struct vh_device *dev, int fd)
{
	return vh_kernel_set_log_fd(dev, fd);
}

int vhp_kernel_op_set_vring_num(struct vh_device *dev, unsigned index, unsigned num)
{
	return vh_kernel_set_vring_num(dev, index, num);
}

int vhp_kernel_op_set_vring_base(struct vh_device *dev, unsigned index, uint32_t base)
{
	return vh_kernel_set_vring_base(dev, index, base);
}

int vhp_kernel_op_get_vring_base(struct vh_device *dev, unsigned index, uint32_t *base)
{
	return vh_kernel_get_vring_base(dev, index, base);
}

int vhp_kernel_op_set_vring_kick(struct vh_device *dev, unsigned index, int fd)
{
	return vh_kernel_set_vring_kick(dev, index, fd);
}

int vhp_kernel_op_set_vring_call(struct vh_device *dev, unsigned index, int fd)
{
	return vh_kernel_set_vring_call(dev, index, fd);
}

int vhp_kernel_op_set_vring_err(struct vh_device *dev, unsigned index, int fd)
{
	return vh_kernel_set_vring_err(dev, index, fd);
}

static int op_set_mem_table(struct vh_device *dev, const struct vh_region *regions, unsigned n)
{
	return vh_kernel_set_mem_table(dev, regions, n);
}

static int op_set_log_base(struct vh_device *dev, uint64_t log_addr, int log_fd, uint64_t size,
			   uint64_t offset)
{
	/* The kernel writes the bitmap through this process's mapping; fd and size are for
	 * vhost-user peers. */
	(void)log_fd;
	(void)size;
	(void)offset;
	return vh_kernel_set_log_base(dev, log_addr);
}

static int op_set_vring_addr(struct vh_device *dev, const struct vh_vring_addr *addr)
{
	return vh_kernel_set_vring_addr(dev, addr);
}

static int op_get_queue_num(struct vh_device *dev, unsigned *max_queues)
{
	struct vhp_vhost *vh = vhp_vhost_of(dev);

	if (!vh || !max_queues)
		return -EINVAL;
	switch (vh->kind) {
	case VH_KERNEL_NET: /* RX and TX */
	case VH_KERNEL_VSOCK: /* TX and RX; the event queue stays with the VMM */
		*max_queues = 2;
		return 0;
	default: /* vhost-scsi's count is a module parameter */
		return -EOPNOTSUPP;
	}
}

static int op_get_vring_max(struct vh_device *dev, unsigned index, unsigned *max_num)
{
	if (!vhp_vhost_of(dev) || !max_num || index > VRING_INDEX_MAX)
		return -EINVAL;
	*max_num = KERNEL_VRING_MAX;
	return 0;
}

static void op_close(struct vh_device *dev)
{
	struct vhp_vhost *vh = vhp_vhost_of(dev);

	if (!vh)
		return;
	vhp_close(vh->fd);
	free(vh);
}

static const struct vh_device_ops kernel_ops = {
	.get_features = vhp_kernel_op_get_features,
	.set_features = vhp_kernel_op_set_features,
	.set_owner = vhp_kernel_op_set_owner,
	.reset_owner = vhp_kernel_op_reset_owner,
	.set_mem_table = op_set_mem_table,
	.set_log_base = op_set_log_base,
	.set_log_fd = vhp_kernel_op_set_log_fd,
	.set_vring_num = vhp_kernel_op_set_vring_num,
	.set_vring_addr = op_set_vring_addr,
	.set_vring_base = vhp_kernel_op_set_vring_base,
	.get_vring_base = vhp_kernel_op_get_vring_base,
	.set_vring_kick = vhp_kernel_op_set_vring_kick,
	.set_vring_call = vhp_kernel_op_set_vring_call,
	.set_vring_err = vhp_kernel_op_set_vring_err,
	/* Kernel vhost has no ring enable, config space or status: a vhost-net ring runs
	 * once it has a backend (vh_kernel_net_set_backend), vsock with set_running. */
	.get_queue_num = op_get_queue_num,
	.get_vring_max = op_get_vring_max,
	.close = op_close,
};

/* ------------------------------------------------------------------------------------------ */
/* Open */

int vhp_kernel_wrap(struct vh_device **out, int fd, enum vh_kernel_kind kind,
		    const struct vh_logger *log)
{
	struct vhp_vhost *vh;

	if (!out)
		return -EINVAL;
	vh = malloc(sizeof(*vh));
	if (!vh)
		return -ENOMEM;
	vhp_vhost_init(vh, &kernel_ops, VH_TRANSPORT_KERNEL, fd, kind, log);
	*out = &vh->dev;
	return 0;
}

int vh_kernel_from_fd(struct vh_device **out, int fd, const struct vh_logger *log)
{
	enum vh_kernel_kind kind = VH_KERNEL_UNKNOWN;
	int r;

	if (!out) {
		r = -EINVAL;
		goto fail;
	}
	*out = NULL;
	r = vhp_vhost_probe(fd, &kind, log);
	if (r < 0)
		goto fail;
	if (kind == VH_KERNEL_VDPA) {
		vhp_err(log, "vhost: fd %d is a vhost-vdpa device; use vh_vdpa_open", fd);
		r = -ENODEV;
		goto fail;
	}
	r = vhp_kernel_wrap(out, fd, kind, log);
	if (r < 0)
		goto fail;
	return 0;
fail:
	if (r != -EBADF)
		vhp_close(fd);
	return r;
}

int vhp_vhost_open_node(const char *path, const struct vh_logger *log)
{
	/* O_NONBLOCK only affects read(): IOTLB reads poll first and never block. */
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		int r = -errno;

		vhp_dbg(log, "vhost: open %s: %s", path, strerror(-r));
		return r;
	}
	return fd;
}

int vh_kernel_open(struct vh_device **out, const char *path, const struct vh_logger *log)
{
	int fd;

	if (!out || !path)
		return -EINVAL;
	*out = NULL;
	fd = vhp_vhost_open_node(path, log);
	return fd < 0 ? fd : vh_kernel_from_fd(out, fd, log);
}
