/* SPDX-License-Identifier: MIT */
/*
 * vhost-vdpa transport: the VHOST_VDPA_* ioctls, DMA mapping through IOTLB messages, the
 * virtio status handshake, and device-control operations that translate process addresses to
 * IOVAs through the memory table.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvhost/kernel.h>
#include <libvhost/uapi_compat.h>
#include <libvhost/vdpa.h>
#include "internal.h"
#include "vhost_fd.h"

#define VIRTIO_RING_F_EVENT_IDX_BIT 29
#define VIRTIO_F_VERSION_1_BIT 32
#define VIRTIO_F_ACCESS_PLATFORM_BIT 33
#define VIRTIO_F_RING_PACKED_BIT 34

#define STATUS_KNOWN_BITS                                                                     \
	(VH_STATUS_ACKNOWLEDGE | VH_STATUS_DRIVER | VH_STATUS_DRIVER_OK | VH_STATUS_FEATURES_OK | \
	 VH_STATUS_NEEDS_RESET | VH_STATUS_FAILED)
/* Backend features this library understands (bit numbers 1..8). */
#define BACKEND_KNOWN                                                                         \
	((1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) | (1ULL << VHOST_BACKEND_F_IOTLB_BATCH) |     \
	 (1ULL << VHOST_BACKEND_F_IOTLB_ASID) | (1ULL << VHOST_BACKEND_F_SUSPEND) |           \
	 (1ULL << VHOST_BACKEND_F_RESUME) | (1ULL << VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK) | \
	 (1ULL << VHOST_BACKEND_F_DESC_ASID) | (1ULL << VHOST_BACKEND_F_IOTLB_PERSIST))
#define VRING_INDEX_MAX 0xffffu
#define VRING_SIZE_MAX 32768u   /* virtio's largest queue */
#define CONFIG_SIZE_MAX 0x10000u /* sanity bound on what the kernel reports */
#define VQS_MAX 0x10000u
/* Ring sizes are remembered for this many queues to check ring lengths in set_vring_addr. */
#define TRACK_VQS 256u

struct vdpa_map {
	uint64_t iova;
	uint64_t size;
	uint64_t uaddr;
};

struct vdpa {
	struct vhp_vhost vh; /* first */
	uint32_t device_id;
	uint32_t config_size; /* 0: unknown */
	uint32_t nvqs;        /* 0: unknown */
	uint32_t ngroups;     /* 0: unknown */
	uint32_t nas;         /* 0: unknown */
	uint64_t iova_first;
	uint64_t iova_last;
	bool in_batch;
	uint32_t batch_asid;
	struct vdpa_map *maps; /* the memory table as mapped, sorted by iova */
	unsigned nmaps;
	uint16_t vring_num[TRACK_VQS]; /* 0: not set through this handle */
};

static int get_vdpa(struct vh_device *dev, struct vdpa **v)
{
	if (!dev)
		return -EINVAL;
	if (dev->transport != VH_TRANSPORT_VDPA)
		return -ENODEV;
	*v = (struct vdpa *)dev;
	return 0;
}

static uint64_t acked(const struct vdpa *v, unsigned bit)
{
	return v->vh.backend_acked & (1ULL << bit);
}

/* ------------------------------------------------------------------------------------------ */
/* VHOST_VDPA_* ioctls */

static int get_u32(struct vh_device *dev, unsigned long req, uint32_t *out)
{
	struct vdpa *v;
	uint32_t val = 0;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	if (!out)
		return -EINVAL;
	r = vhp_vhost_ioctl(v->vh.fd, req, &val);
	if (r == 0)
		*out = val;
	return r;
}

int vh_vdpa_get_device_id(struct vh_device *dev, uint32_t *id)
{
	uint32_t val = 0;
	int r = get_u32(dev, VHOST_VDPA_GET_DEVICE_ID, &val);

	if (r < 0)
		return r;
	if (val == 0 || val > 0xffff) /* virtio id 0 is reserved */
		return -EPROTO;
	*id = val;
	return 0;
}

int vh_vdpa_get_status(struct vh_device *dev, uint8_t *status)
{
	struct vdpa *v;
	uint8_t s = 0;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	if (!status)
		return -EINVAL;
	r = vhp_vhost_ioctl(v->vh.fd, VHOST_VDPA_GET_STATUS, &s);
	if (r < 0)
		return r;
	if (s & ~STATUS_KNOWN_BITS)
		return -EPROTO;
	*status = s;
	return 0;
}

int vh_vdpa_set_status(struct vh_device *dev, uint8_t status)
{
	struct vdpa *v;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	if (status & ~STATUS_KNOWN_BITS)
		return -EINVAL;
	r = vhp_vhost_ioctl(v->vh.fd, VHOST_VDPA_SET_STATUS, &status);
	if (r == 0 && status == 0)
		v->in_batch = false; /* the kernel ends any open batch on reset */
	return r;
}

int vh_vdpa_get_config_size(struct vh_device *dev, uint32_t *size)
{
	uint32_t val = 0;
	int r = get_u32(dev, VHOST_VDPA_GET_CONFIG_SIZE, &val);

	if (r < 0)
		return r;
	if (val > CONFIG_SIZE_MAX)
		return -EPROTO;
	*size = val;
	return 0;
}

static int config_check(struct vdpa *v, uint32_t offset, const void *buf, uint32_t len)
{
	uint32_t end;

	if (!buf || len == 0)
		return -EINVAL;
	if (len > VH_VDPA_MAX_CONFIG)
		return -E2BIG;
	if (__builtin_add_overflow(offset, len, &end))
		return -EINVAL;
	if (v->config_size && end > v->config_size)
		return -EINVAL;
	return 0;
}

static int config_ioctl(struct vh_device *dev, unsigned long req, uint32_t offset, void *buf,
			uint32_t len, bool set)
{
	struct vdpa *v;
	struct vhost_vdpa_config *c;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	r = config_check(v, offset, buf, len);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c) + len);
	if (!c)
		return -ENOMEM;
	c->off = offset;
	c->len = len;
	if (set)
		memcpy(c->buf, buf, len);
	r = vhp_vhost_ioctl(v->vh.fd, req, c);
	if (r == 0 && !set)
		memcpy(buf, c->buf, len);
	free(c);
	return r;
}

int vh_vdpa_get_config(struct vh_device *dev, uint32_t offset, void *buf, uint32_t len)
{
	return config_ioctl(dev, VHOST_VDPA_GET_CONFIG, offset, buf, len, false);
}

int vh_vdpa_set_config(struct vh_device *dev, uint32_t offset, const void *buf, uint32_t len)
{
	/* Not written through: set only copies from buf. */
	return config_ioctl(dev, VHOST_VDPA_SET_CONFIG, offset, (void *)buf, len, true);
}

static int vring_state(struct vh_device *dev, unsigned long req, unsigned index, uint32_t in,
		       uint32_t *out)
{
	struct vdpa *v;
	int r = get_vdpa(dev, &v);

	return r < 0 ? r : vhp_vhost_vring_state(v->vh.fd, req, index, in, out);
}

int vh_vdpa_set_vring_enable(struct vh_device *dev, unsigned index, int enable)
{
	return vring_state(dev, VHOST_VDPA_SET_VRING_ENABLE, index, enable ? 1 : 0, NULL);
}

int vh_vdpa_get_vring_num(struct vh_device *dev, uint16_t *max_num)
{
	struct vdpa *v;
	uint16_t n = 0;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	if (!max_num)
		return -EINVAL;
	r = vhp_vhost_ioctl(v->vh.fd, VHOST_VDPA_GET_VRING_NUM, &n);
	if (r < 0)
		return r;
	if (n == 0 || n > VRING_SIZE_MAX)
		return -EPROTO;
	*max_num = n;
	return 0;
}

int vh_vdpa_get_vring_size(struct vh_device *dev, unsigned index, uint32_t *size)
{
	uint32_t n;
	int r;

	if (!size)
		return -EINVAL;
	r = vring_state(dev, VHOST_VDPA_GET_VRING_SIZE, index, 0, &n);
	if (r < 0)
		return r;
	if (n == 0 || n > VRING_SIZE_MAX)
		return -EPROTO;
	*size = n;
	return 0;
}

static int vring_group(struct vh_device *dev, unsigned long req, unsigned index,
		       uint32_t *group)
{
	uint32_t g;
	int r;

	if (!group)
		return -EINVAL;
	r = vring_state(dev, req, index, 0, &g);
	if (r < 0)
		return r;
	if (((struct vdpa *)dev)->ngroups && g >= ((struct vdpa *)dev)->ngroups)
		return -EPROTO;
	*group = g;
	return 0;
}

int vh_vdpa_get_vring_group(struct vh_device *dev, unsigned index, uint32_t *group)
{
	return vring_group(dev, VHOST_VDPA_GET_VRING_GROUP, index, group);
}

int vh_vdpa_get_vring_desc_group(struct vh_device *dev, unsigned index, uint32_t *group)
{
	return vring_group(dev, VHOST_VDPA_GET_VRING_DESC_GROUP, index, group);
}

int vh_vdpa_set_config_call(struct vh_device *dev, int eventfd)
{
	struct vdpa *v;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	if (eventfd < -1)
		return -EINVAL;
	return vhp_vhost_ioctl(v->vh.fd, VHOST_VDPA_SET_CONFIG_CALL, &eventfd);
}

int vh_vdpa_get_iova_range(struct vh_device *dev, uint64_t *first, uint64_t *last)
{
	struct vdpa *v;
	struct vhost_vdpa_iova_range range = { 0, 0 };
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	if (!first || !last)
		return -EINVAL;
	r = vhp_vhost_ioctl(v->vh.fd, VHOST_VDPA_GET_IOVA_RANGE, &range);
	if (r < 0)
		return r;
	if (range.first > range.last)
		return -EPROTO;
	*first = range.first;
	*last = range.last;
	return 0;
}

static int get_count(struct vh_device *dev, unsigned long req, uint32_t max, uint32_t *out)
{
	uint32_t n = 0;
	int r;

	if (!out)
		return -EINVAL;
	r = get_u32(dev, req, &n);
	if (r < 0)
		return r;
	if (n == 0 || n > max)
		return -EPROTO;
	*out = n;
	return 0;
}

int vh_vdpa_get_as_num(struct vh_device *dev, uint32_t *as_num)
{
	return get_count(dev, VHOST_VDPA_GET_AS_NUM, VQS_MAX, as_num);
}

int vh_vdpa_get_group_num(struct vh_device *dev, uint32_t *group_num)
{
	return get_count(dev, VHOST_VDPA_GET_GROUP_NUM, VQS_MAX, group_num);
}

int vh_vdpa_get_vqs_count(struct vh_device *dev, uint32_t *vqs)
{
	return get_count(dev, VHOST_VDPA_GET_VQS_COUNT, VQS_MAX, vqs);
}

int vh_vdpa_set_group_asid(struct vh_device *dev, uint32_t group, uint32_t asid)
{
	struct vdpa *v;
	struct vhost_vring_state s = { .index = group, .num = asid };
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	if ((v->ngroups && group >= v->ngroups) || (v->nas && asid >= v->nas))
		return -EINVAL;
	return vhp_vhost_ioctl(v->vh.fd, VHOST_VDPA_SET_GROUP_ASID, &s);
}

int vh_vdpa_suspend(struct vh_device *dev)
{
	struct vdpa *v;
	int r = get_vdpa(dev, &v);

	return r < 0 ? r : vhp_vhost_ioctl(v->vh.fd, VHOST_VDPA_SUSPEND, NULL);
}

int vh_vdpa_resume(struct vh_device *dev)
{
	struct vdpa *v;
	int r = get_vdpa(dev, &v);

	return r < 0 ? r : vhp_vhost_ioctl(v->vh.fd, VHOST_VDPA_RESUME, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* DMA mapping */

static int iova_check(const struct vdpa *v, uint64_t iova, uint64_t size)
{
	uint64_t end;

	if (size == 0 || __builtin_add_overflow(iova, size - 1, &end))
		return -EINVAL;
	if (iova < v->iova_first || end > v->iova_last)
		return -ERANGE;
	return 0;
}

int vh_vdpa_dma_map(struct vh_device *dev, uint32_t asid, uint64_t iova, uint64_t size,
		    void *vaddr, unsigned perm)
{
	struct vdpa *v;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	r = iova_check(v, iova, size);
	if (r < 0)
		return r;
	if ((v->nas && asid >= v->nas) || (v->in_batch && asid != v->batch_asid))
		return -EINVAL;
	return vh_kernel_iotlb_update(dev, asid, iova, size, (uint64_t)(uintptr_t)vaddr, perm);
}

int vh_vdpa_dma_unmap(struct vh_device *dev, uint32_t asid, uint64_t iova, uint64_t size)
{
	struct vdpa *v;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	r = iova_check(v, iova, size);
	if (r < 0)
		return r;
	if ((v->nas && asid >= v->nas) || (v->in_batch && asid != v->batch_asid))
		return -EINVAL;
	return vh_kernel_iotlb_invalidate(dev, asid, iova, size);
}

int vh_vdpa_dma_batch_begin(struct vh_device *dev, uint32_t asid)
{
	struct vdpa *v;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	if (v->nas && asid >= v->nas)
		return -EINVAL;
	if (!acked(v, VHOST_BACKEND_F_IOTLB_BATCH) || !acked(v, VHOST_BACKEND_F_IOTLB_MSG_V2))
		return 0;
	if (v->in_batch)
		return -EBUSY;
	r = vh_kernel_iotlb_batch_begin(dev, asid);
	if (r == 0) {
		v->in_batch = true;
		v->batch_asid = asid;
	}
	return r;
}

int vh_vdpa_dma_batch_end(struct vh_device *dev)
{
	struct vdpa *v;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	if (!v->in_batch)
		return 0;
	v->in_batch = false;
	return vh_kernel_iotlb_batch_end(dev, v->batch_asid);
}

/* ------------------------------------------------------------------------------------------ */
/* Status handshake */

int vh_vdpa_reset(struct vh_device *dev)
{
	uint8_t s = 0xff;
	int r = vh_vdpa_set_status(dev, 0);

	if (r < 0)
		return r;
	r = vh_vdpa_get_status(dev, &s);
	if (r < 0)
		return r;
	return s == 0 ? 0 : -EIO;
}

int vh_vdpa_negotiate(struct vh_device *dev, uint64_t wanted, uint64_t *negotiated)
{
	uint64_t offered = 0, f;
	uint8_t s = 0;
	int r;

	r = vh_vdpa_reset(dev);
	if (r < 0)
		return r;
	r = vh_vdpa_set_status(dev, VH_STATUS_ACKNOWLEDGE);
	if (r < 0)
		return r;
	r = vh_vdpa_set_status(dev, VH_STATUS_ACKNOWLEDGE | VH_STATUS_DRIVER);
	if (r < 0)
		return r;
	r = vh_kernel_get_features(dev, &offered);
	if (r < 0)
		return r;
	/* Every vhost-vdpa device works on IOVAs, and only modern devices exist. */
	f = (wanted | (1ULL << VIRTIO_F_VERSION_1_BIT) | (1ULL << VIRTIO_F_ACCESS_PLATFORM_BIT)) &
	    offered;
	r = vh_kernel_set_features(dev, f);
	if (r < 0)
		return r;
	r = vh_vdpa_set_status(dev, VH_STATUS_ACKNOWLEDGE | VH_STATUS_DRIVER |
					    VH_STATUS_FEATURES_OK);
	if (r < 0)
		return r;
	r = vh_vdpa_get_status(dev, &s);
	if (r < 0)
		return r;
	if (!(s & VH_STATUS_FEATURES_OK)) {
		vhp_err(&dev->log, "vdpa: device refused features 0x%llx",
			(unsigned long long)f);
		(void)vh_vdpa_set_status(dev, s | VH_STATUS_FAILED);
		return -EOPNOTSUPP;
	}
	if (negotiated)
		*negotiated = f;
	return 0;
}

int vh_vdpa_driver_ok(struct vh_device *dev)
{
	uint8_t s = 0;
	int r = vh_vdpa_get_status(dev, &s);

	if (r < 0)
		return r;
	if (!(s & VH_STATUS_FEATURES_OK))
		return -EINVAL; /* negotiate first */
	r = vh_vdpa_set_status(dev, s | VH_STATUS_DRIVER_OK);
	if (r < 0)
		return r;
	r = vh_vdpa_get_status(dev, &s);
	if (r < 0)
		return r;
	if (!(s & VH_STATUS_DRIVER_OK) || (s & (VH_STATUS_NEEDS_RESET | VH_STATUS_FAILED)))
		return -EIO;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Device-control operations */

static int map_cmp(const void *a, const void *b)
{
	const struct vdpa_map *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

static bool map_eq(const struct vdpa_map *a, const struct vdpa_map *b)
{
	return a->iova == b->iova && a->size == b->size && a->uaddr == b->uaddr;
}

static int map_one(struct vh_device *dev, const struct vdpa_map *m)
{
	return vh_kernel_iotlb_update(dev, 0, m->iova, m->size, m->uaddr, VH_ACCESS_RW);
}

static int unmap_one(struct vh_device *dev, const struct vdpa_map *m)
{
	return vh_kernel_iotlb_invalidate(dev, 0, m->iova, m->size);
}

/*
 * Maps the new table in ASID 0: regions that did not change stay mapped (rings keep working),
 * removed ones are unmapped first (the kernel refuses overlapping maps), then new ones are
 * mapped. On failure the previous table is restored as far as the kernel allows.
 */
static int op_set_mem_table(struct vh_device *dev, const struct vh_region *regions, unsigned n)
{
	struct vdpa *v;
	struct vdpa_map *nm = NULL;
	bool *keep_old = NULL, *have_new = NULL, own_batch = false;
	unsigned i, j, undo;
	uint64_t end;
	int r = get_vdpa(dev, &v), r2;

	if (r < 0)
		return r;
	if (n && !regions)
		return -EINVAL;
	if (n > VH_VDPA_MAX_REGIONS)
		return -E2BIG;
	nm = calloc(n ? n : 1, sizeof(*nm));
	keep_old = calloc(v->nmaps ? v->nmaps : 1, sizeof(*keep_old));
	have_new = calloc(n ? n : 1, sizeof(*have_new));
	if (!nm || !keep_old || !have_new) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (regions[i].size == 0 ||
		    __builtin_add_overflow(regions[i].userspace_addr, regions[i].size - 1, &end)) {
			r = -EINVAL;
			goto out;
		}
		r = iova_check(v, regions[i].guest_phys_addr, regions[i].size);
		if (r < 0)
			goto out;
		nm[i].iova = regions[i].guest_phys_addr;
		nm[i].size = regions[i].size;
		nm[i].uaddr = regions[i].userspace_addr;
	}
	qsort(nm, n, sizeof(*nm), map_cmp);
	for (i = 1; i < n; i++) {
		if (nm[i].iova <= nm[i - 1].iova + (nm[i - 1].size - 1)) {
			r = -EINVAL; /* overlapping guest ranges */
			goto out;
		}
	}
	for (i = 0; i < v->nmaps; i++)
		for (j = 0; j < n; j++)
			if (!have_new[j] && map_eq(&v->maps[i], &nm[j])) {
				keep_old[i] = have_new[j] = true;
				break;
			}

	if (v->in_batch && v->batch_asid != 0) {
		r = -EBUSY; /* the table lives in ASID 0 */
		goto out;
	}
	if (!v->in_batch) {
		r = vh_vdpa_dma_batch_begin(dev, 0);
		if (r < 0)
			goto out;
		own_batch = v->in_batch;
	}
	for (i = 0; i < v->nmaps; i++) {
		if (keep_old[i])
			continue;
		r = unmap_one(dev, &v->maps[i]);
		if (r < 0) {
			for (undo = 0; undo < i; undo++)
				if (!keep_old[undo])
					(void)map_one(dev, &v->maps[undo]);
			goto end_batch;
		}
	}
	for (j = 0; j < n; j++) {
		if (have_new[j])
			continue;
		r = map_one(dev, &nm[j]);
		if (r < 0) {
			vhp_err(&dev->log, "vdpa: map iova 0x%llx size 0x%llx: %s",
				(unsigned long long)nm[j].iova, (unsigned long long)nm[j].size,
				strerror(-r));
			for (undo = 0; undo < j; undo++)
				if (!have_new[undo])
					(void)unmap_one(dev, &nm[undo]);
			for (undo = 0; undo < v->nmaps; undo++)
				if (!keep_old[undo])
					(void)map_one(dev, &v->maps[undo]);
			goto end_batch;
		}
	}
	/* Committed: the kernel's table now matches nm. */
	free(v->maps);
	v->maps = nm;
	v->nmaps = n;
	nm = NULL;
end_batch:
	if (own_batch) {
		r2 = vh_vdpa_dma_batch_end(dev);
		if (r2 < 0 && r == 0)
			r = r2;
	}
out:
	free(nm);
	free(keep_old);
	free(have_new);
	return r;
}

/* IOVA of [uaddr, uaddr + len) if it lies inside one mapped region. */
static int to_iova(const struct vdpa *v, uint64_t uaddr, uint64_t len, uint64_t *iova)
{
	unsigned i;

	for (i = 0; i < v->nmaps; i++) {
		const struct vdpa_map *m = &v->maps[i];
		uint64_t off;

		if (uaddr < m->uaddr)
			continue;
		off = uaddr - m->uaddr;
		if (off > m->size - 1 || len - 1 > m->size - 1 - off)
			continue;
		*iova = m->iova + off;
		return 0;
	}
	return -EFAULT;
}

static int op_set_vring_addr(struct vh_device *dev, const struct vh_vring_addr *addr)
{
	struct vdpa *v;
	struct vh_vring_addr a;
	uint64_t num = 0, ev, desc_len = 1, drv_len = 1, dev_len = 1;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	if (!addr || addr->index > VRING_INDEX_MAX)
		return -EINVAL;
	if (addr->index < TRACK_VQS)
		num = v->vring_num[addr->index];
	if (num) {
		/* Whole rings must be mapped, not just their first byte. */
		ev = (v->vh.features_acked & (1ULL << VIRTIO_RING_F_EVENT_IDX_BIT)) ? 2 : 0;
		desc_len = 16 * num;
		if (v->vh.features_acked & (1ULL << VIRTIO_F_RING_PACKED_BIT)) {
			drv_len = 4;
			dev_len = 4;
		} else {
			drv_len = 4 + 2 * num + ev;
			dev_len = 4 + 8 * num + ev;
		}
	}
	a = *addr;
	r = to_iova(v, addr->desc_user_addr, desc_len, &a.desc_user_addr);
	if (r == 0)
		r = to_iova(v, addr->avail_user_addr, drv_len, &a.avail_user_addr);
	if (r == 0)
		r = to_iova(v, addr->used_user_addr, dev_len, &a.used_user_addr);
	if (r < 0) {
		vhp_err(&dev->log, "vdpa: vring %u is not inside a mapped region", addr->index);
		return r;
	}
	return vh_kernel_set_vring_addr(dev, &a);
}

static int op_set_vring_num(struct vh_device *dev, unsigned index, unsigned num)
{
	struct vdpa *v;
	int r = get_vdpa(dev, &v);

	if (r < 0)
		return r;
	r = vh_kernel_set_vring_num(dev, index, num);
	if (r == 0 && index < TRACK_VQS && num <= VRING_SIZE_MAX)
		v->vring_num[index] = (uint16_t)num;
	return r;
}

static int op_set_vring_enable(struct vh_device *dev, unsigned index, int enable)
{
	return vh_vdpa_set_vring_enable(dev, index, enable);
}

static int op_get_config(struct vh_device *dev, uint32_t offset, void *buf, uint32_t len)
{
	return vh_vdpa_get_config(dev, offset, buf, len);
}

static int op_set_config(struct vh_device *dev, uint32_t offset, const void *buf, uint32_t len)
{
	return vh_vdpa_set_config(dev, offset, buf, len);
}

static int op_get_status(struct vh_device *dev, uint8_t *status)
{
	return vh_vdpa_get_status(dev, status);
}

static int op_set_status(struct vh_device *dev, uint8_t status)
{
	return vh_vdpa_set_status(dev, status);
}

static int op_get_queue_num(struct vh_device *dev, unsigned *max_queues)
{
	uint32_t n;
	int r;

	if (!max_queues)
		return -EINVAL;
	r = vh_vdpa_get_vqs_count(dev, &n);
	if (r == 0)
		*max_queues = n;
	return r;
}

static int op_get_vring_max(struct vh_device *dev, unsigned index, unsigned *max_num)
{
	uint32_t size;
	uint16_t num;
	int r;

	if (!max_num)
		return -EINVAL;
	r = vh_vdpa_get_vring_size(dev, index, &size);
	/* Before Linux 6.10, or a parent without per-queue sizes: one limit for all queues. */
	if (r == -ENOTTY || r == -EOPNOTSUPP) {
		r = vh_vdpa_get_vring_num(dev, &num);
		size = num;
	}
	if (r == 0)
		*max_num = size;
	return r;
}

static void op_close(struct vh_device *dev)
{
	struct vdpa *v;

	if (get_vdpa(dev, &v) < 0)
		return;
	/* Closing the fd makes the kernel unmap everything and reset the device. */
	vhp_close(v->vh.fd);
	free(v->maps);
	free(v);
}

static const struct vh_device_ops vdpa_ops = {
	.get_features = vhp_kernel_op_get_features,
	.set_features = vhp_kernel_op_set_features,
	.set_owner = vhp_kernel_op_set_owner,
	.reset_owner = vhp_kernel_op_reset_owner,
	.set_mem_table = op_set_mem_table,
	/* vhost-vdpa has no dirty log (SET_LOG_BASE/FD answer ENOTTY). */
	.set_vring_num = op_set_vring_num,
	.set_vring_addr = op_set_vring_addr,
	.set_vring_base = vhp_kernel_op_set_vring_base,
	.get_vring_base = vhp_kernel_op_get_vring_base,
	.set_vring_kick = vhp_kernel_op_set_vring_kick,
	.set_vring_call = vhp_kernel_op_set_vring_call,
	.set_vring_err = vhp_kernel_op_set_vring_err,
	.set_vring_enable = op_set_vring_enable,
	.get_config = op_get_config,
	.set_config = op_set_config,
	.get_status = op_get_status,
	.set_status = op_set_status,
	.get_queue_num = op_get_queue_num,
	.get_vring_max = op_get_vring_max,
	.close = op_close,
};

/* ------------------------------------------------------------------------------------------ */
/* Open */

int vhp_vdpa_wrap(struct vh_device **out, int fd, const struct vh_logger *log)
{
	struct vdpa *v;

	if (!out)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	vhp_vhost_init(&v->vh, &vdpa_ops, VH_TRANSPORT_VDPA, fd, VH_KERNEL_VDPA, log);
	v->iova_last = UINT64_MAX;
	*out = &v->vh.dev;
	return 0;
}

/* Optional queries: a kernel that lacks one leaves the default. */
static int optional(int r)
{
	return r == -ENOTTY || r == -EOPNOTSUPP ? 0 : r;
}

static int vdpa_setup(struct vdpa *v)
{
	struct vh_device *dev = &v->vh.dev;
	uint64_t offered = 0, want;
	int r;

	r = vh_vdpa_get_device_id(dev, &v->device_id);
	if (r < 0)
		return r;
	r = optional(vh_kernel_get_backend_features(dev, &offered));
	if (r < 0)
		return r;
	want = offered & BACKEND_KNOWN;
	if (!(want & (1ULL << VHOST_BACKEND_F_IOTLB_ASID)))
		want &= ~(1ULL << VHOST_BACKEND_F_DESC_ASID);
	if (want) {
		r = vh_kernel_set_backend_features(dev, want);
		if (r < 0)
			return r;
	}
	r = optional(vh_vdpa_get_config_size(dev, &v->config_size));
	if (r == 0)
		r = optional(vh_vdpa_get_vqs_count(dev, &v->nvqs));
	if (r == 0)
		r = optional(vh_vdpa_get_group_num(dev, &v->ngroups));
	if (r == 0)
		r = optional(vh_vdpa_get_as_num(dev, &v->nas));
	if (r == 0)
		r = optional(vh_vdpa_get_iova_range(dev, &v->iova_first, &v->iova_last));
	if (r < 0)
		return r;
	vhp_info(&dev->log,
		 "vdpa: device id %u, %u vqs, %u groups, %u address spaces, config %u bytes, "
		 "backend features 0x%llx of 0x%llx, iova 0x%llx-0x%llx",
		 v->device_id, v->nvqs, v->ngroups, v->nas, v->config_size,
		 (unsigned long long)want, (unsigned long long)offered,
		 (unsigned long long)v->iova_first, (unsigned long long)v->iova_last);
	return 0;
}

int vh_vdpa_from_fd(struct vh_device **out, int fd, const struct vh_logger *log)
{
	enum vh_kernel_kind kind = VH_KERNEL_UNKNOWN;
	struct vh_device *dev = NULL;
	int r;

	if (!out) {
		r = -EINVAL;
		goto fail;
	}
	*out = NULL;
	r = vhp_vhost_probe(fd, &kind, log);
	if (r < 0)
		goto fail;
	if (kind != VH_KERNEL_VDPA) {
		vhp_err(log, "vdpa: fd %d is a vhost device but not vhost-vdpa", fd);
		r = -ENODEV;
		goto fail;
	}
	r = vhp_vdpa_wrap(&dev, fd, log);
	if (r < 0)
		goto fail;
	r = vdpa_setup((struct vdpa *)dev);
	if (r < 0) {
		vhp_err(log, "vdpa: setup of fd %d: %s", fd, strerror(-r));
		op_close(dev); /* closes fd */
		return r;
	}
	*out = dev;
	return 0;
fail:
	if (r != -EBADF)
		vhp_close(fd);
	return r;
}

int vh_vdpa_open(struct vh_device **out, const char *path, const struct vh_logger *log)
{
	int fd;

	if (!out || !path)
		return -EINVAL;
	*out = NULL;
	fd = vhp_vhost_open_node(path, log);
	return fd < 0 ? fd : vh_vdpa_from_fd(out, fd, log);
}
