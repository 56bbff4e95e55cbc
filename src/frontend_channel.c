/* SPDX-License-Identifier: MIT */
/*
 * The back-end channel of a vhost-user front-end: requests the back-end sends on the socket
 * handed over with SET_BACKEND_REQ_FD. Everything in them is hostile: each request is checked
 * against the table and against what this front-end set up (queues, shared memory regions,
 * earlier mappings) before a callback sees it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvhost/frontend.h>
#include "frontend_internal.h"
#include "internal.h"

static uint64_t page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > 0 ? (uint64_t)ps : 4096;
}

void vhp_fe_channel_close(struct vh_frontend *fe)
{
	if (fe->chan.fd >= 0)
		vhp_dbg(&fe->log, "vhost-user front-end: back-end channel closed");
	vh_endpoint_close(&fe->chan);
}

void vh_frontend_set_backend_ops(struct vh_frontend *fe, const struct vh_frontend_backend_ops *ops,
				 void *opaque)
{
	if (!fe)
		return;
	if (ops) {
		fe->ops = *ops;
		fe->have_ops = 1;
	} else {
		memset(&fe->ops, 0, sizeof(fe->ops));
		fe->have_ops = 0;
	}
	fe->ops_opaque = opaque;
}

int vh_frontend_backend_channel_fd(const struct vh_frontend *fe)
{
	return fe ? fe->chan.fd : -1;
}

/* Queues a back-end may name: the count the caller gave, else the ones we configured. */
static int check_queue(const struct vh_frontend *fe, uint64_t idx)
{
	unsigned limit = fe->queue_count ? fe->queue_count : fe->queues_seen;

	return idx < limit ? 0 : -ERANGE;
}

/*
 * An fd a callback will mmap at [offset, offset + len): a file must reach that far (mapping past
 * its end succeeds and the first access raises SIGBUS in this process); a pipe, socket or
 * directory cannot back memory. Anything else (a device's BAR, a dma-buf) is the callback's to
 * judge. offset + len is known not to wrap.
 */
static int check_backing_fd(int fd, uint64_t offset, uint64_t len)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISDIR(st.st_mode))
		return -EINVAL;
	if (S_ISREG(st.st_mode) && (st.st_size < 0 || offset + len > (uint64_t)st.st_size))
		return -EINVAL;
	return 0;
}

static int handle_host_notifier(struct vh_frontend *fe, const struct vh_vring_area *area,
				const int *fds, unsigned nfds)
{
	uint64_t idx = area->u64 & VH_USER_VRING_IDX_MASK;
	uint64_t end, page = page_size();
	int r = check_queue(fe, idx);

	if (r)
		return r;
	if (!fe->ops.vring_host_notifier)
		return -ENOSYS;
	if (area->u64 & VH_USER_VRING_NOFD_MASK)
		return fe->ops.vring_host_notifier(fe->ops_opaque, (unsigned)idx, -1, 0, 0);
	/* The table already required exactly one fd here. */
	if (nfds != 1)
		return -EINVAL;
	if (!(fe->protocol & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_SEND_FD)))
		return -ENOTSUP;
	/* One page, page-aligned: the notify area of one queue, as QEMU requires. */
	if (area->size != page || area->offset % page ||
	    __builtin_add_overflow(area->offset, area->size, &end))
		return -EINVAL;
	r = check_backing_fd(fds[0], area->offset, area->size);
	if (r)
		return r;
	return fe->ops.vring_host_notifier(fe->ops_opaque, (unsigned)idx, fds[0], area->size,
					   area->offset);
}

static int find_shmem_map(const struct vh_frontend *fe, const struct vh_shmem_mmap *m)
{
	for (unsigned i = 0; i < fe->nshmem_maps; i++) {
		const struct vhp_shmem_range *x = &fe->shmem_maps[i];

		if (x->shmid == m->shmid && x->offset == m->shm_offset && x->len == m->len)
			return (int)i;
	}
	return -1;
}

/* Checks a SHMEM_MAP/UNMAP range against GET_SHMEM_CONFIG. */
static int check_shmem_range(const struct vh_frontend *fe, const struct vh_shmem_mmap *m)
{
	uint64_t end, page = page_size();

	if (!fe->have_shmem_config)
		return -ENXIO; /* we never asked which regions exist */
	if (m->shmid >= fe->shmem.nregions)
		return -EINVAL;
	if (m->len == 0 || m->len % page || m->shm_offset % page || m->fd_offset % page)
		return -EINVAL;
	if (__builtin_add_overflow(m->shm_offset, m->len, &end) ||
	    end > fe->shmem.memory_sizes[m->shmid])
		return -EINVAL;
	if (__builtin_add_overflow(m->fd_offset, m->len, &end))
		return -EINVAL;
	return 0;
}

static int handle_shmem_map(struct vh_frontend *fe, const struct vh_shmem_mmap *m, int fd)
{
	struct vhp_shmem_range *x;
	int r = check_shmem_range(fe, m);

	if (r)
		return r;
	if (m->flags & ~VH_SHMEM_MAP_F_WRITABLE)
		return -EINVAL;
	r = check_backing_fd(fd, m->fd_offset, m->len);
	if (r)
		return r;
	for (unsigned i = 0; i < fe->nshmem_maps; i++) {
		x = &fe->shmem_maps[i];
		/* Half-open ranges; neither end wraps (checked above). */
		if (x->shmid == m->shmid && m->shm_offset < x->offset + x->len &&
		    x->offset < m->shm_offset + m->len)
			return -EEXIST;
	}
	if (fe->nshmem_maps >= VHP_FE_MAX_SHMEM_MAPS)
		return -ENOSPC;
	if (!fe->ops.shmem_map)
		return -ENOSYS;
	if (!fe->shmem_maps) {
		fe->shmem_maps = calloc(VHP_FE_MAX_SHMEM_MAPS, sizeof(*fe->shmem_maps));
		if (!fe->shmem_maps)
			return -ENOMEM;
	}
	r = fe->ops.shmem_map(fe->ops_opaque, m, fd);
	if (r)
		return r < 0 ? r : -EIO;
	x = &fe->shmem_maps[fe->nshmem_maps++];
	x->shmid = m->shmid;
	x->offset = m->shm_offset;
	x->len = m->len;
	return 0;
}

static int handle_shmem_unmap(struct vh_frontend *fe, const struct vh_shmem_mmap *m)
{
	int i, r = check_shmem_range(fe, m);

	if (r)
		return r;
	i = find_shmem_map(fe, m);
	if (i < 0)
		return -ENOENT; /* only exactly what was mapped can be unmapped */
	if (!fe->ops.shmem_unmap)
		return -ENOSYS;
	r = fe->ops.shmem_unmap(fe->ops_opaque, m);
	if (r)
		return r < 0 ? r : -EIO;
	fe->shmem_maps[i] = fe->shmem_maps[--fe->nshmem_maps];
	return 0;
}

static int handle_iotlb(struct vh_frontend *fe, const struct vh_iotlb_msg *m)
{
	/* A back-end reports misses and access failures; nothing else is its to send. */
	if (m->type != VH_IOTLB_MISS && m->type != VH_IOTLB_ACCESS_FAIL)
		return -EINVAL;
	if (m->perm < VH_ACCESS_RO || m->perm > VH_ACCESS_RW)
		return -EINVAL;
	if (!fe->ops.iotlb_msg)
		return -ENOSYS;
	return fe->ops.iotlb_msg(fe->ops_opaque, m);
}

/* Runs the request's callback after the per-request checks. fds stay owned by the caller. */
static int handle(struct vh_frontend *fe, const struct vh_msg *msg, const int *fds, unsigned nfds,
		  int *lookup_fd)
{
	const union vh_payload *p = &msg->payload;
	void *op = fe->ops_opaque;
	int r;

	switch (msg->hdr.request) {
	case VH_USER_BACKEND_IOTLB_MSG:
		return handle_iotlb(fe, &p->iotlb);
	case VH_USER_BACKEND_CONFIG_CHANGE_MSG:
		return fe->ops.config_change ? fe->ops.config_change(op) : -ENOSYS;
	case VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG:
		return handle_host_notifier(fe, &p->area, fds, nfds);
	case VH_USER_BACKEND_VRING_CALL:
	case VH_USER_BACKEND_VRING_ERR:
		r = check_queue(fe, p->state.index);
		if (r)
			return r;
		if (msg->hdr.request == VH_USER_BACKEND_VRING_CALL)
			return fe->ops.vring_call ? fe->ops.vring_call(op, p->state.index) : -ENOSYS;
		return fe->ops.vring_err ? fe->ops.vring_err(op, p->state.index) : -ENOSYS;
	case VH_USER_BACKEND_SHARED_OBJECT_ADD:
		return fe->ops.shared_object_add ? fe->ops.shared_object_add(op, p->object.uuid)
						 : -ENOSYS;
	case VH_USER_BACKEND_SHARED_OBJECT_REMOVE:
		return fe->ops.shared_object_remove ?
			fe->ops.shared_object_remove(op, p->object.uuid) : -ENOSYS;
	case VH_USER_BACKEND_SHARED_OBJECT_LOOKUP:
		if (!fe->ops.shared_object_lookup)
			return -ENOSYS;
		return fe->ops.shared_object_lookup(op, p->object.uuid, lookup_fd);
	case VH_USER_BACKEND_SHMEM_MAP:
		return nfds == 1 ? handle_shmem_map(fe, &p->shmem_map, fds[0]) : -EINVAL;
	case VH_USER_BACKEND_SHMEM_UNMAP:
		return handle_shmem_unmap(fe, &p->shmem_map);
	default:
		return -ENOSYS;
	}
}

int vh_frontend_backend_request_handle(struct vh_frontend *fe, const struct vh_msg *msg,
				       int *fds, unsigned nfds, struct vh_msg *reply,
				       int *reply_fd)
{
	const struct vh_request_info *row;
	struct vh_validate_ctx ctx;
	int lookup_fd = -1;
	int status;

	if (reply_fd)
		*reply_fd = -1;
	/* The fds are ours whatever else is wrong: close them on every refusal. */
	if (!fe || !msg || !reply || !reply_fd || nfds > VH_USER_MAX_FDS) {
		if (fds)
			vh_close_fds(fds, nfds);
		return nfds > VH_USER_MAX_FDS ? -EPROTO : -EINVAL;
	}
	if (nfds && !fds)
		return -EINVAL;
	memset(&ctx, 0, sizeof(ctx));
	ctx.features_offered = fe->features_offered;
	ctx.features_acked = fe->features_acked;
	ctx.protocol_features = fe->protocol;
	ctx.is_backend_channel = 1;
	status = vh_validate_request(&ctx, &msg->hdr, &msg->payload, nfds);
	row = vh_backend_request_info(msg->hdr.request);
	vhp_dbg(&fe->log, "vhost-user front-end: back-end request %u (%s) size %u fds %u: %d",
		msg->hdr.request, vh_backend_request_name(msg->hdr.request), msg->hdr.size, nfds,
		status);
	if (status == -EPROTO || status == -EMSGSIZE || status == -EINVAL) {
		/* Framing, size or fd rules broken: the peer is not speaking the protocol. */
		vhp_warn(&fe->log, "vhost-user front-end: malformed back-end request %u flags 0x%x "
			 "size %u fds %u", msg->hdr.request, msg->hdr.flags, msg->hdr.size, nfds);
		vh_close_fds(fds, nfds);
		return -EPROTO;
	}
	if (!status) {
		/* The request is well-formed; from here on a refusal is a NAK, not a failure. */
		fe->dispatching++;
		status = handle(fe, msg, fds, nfds, &lookup_fd);
		fe->dispatching--;
		if (status > 0)
			status = -EIO;
	}
	vh_close_fds(fds, nfds);

	memset(&reply->hdr, 0, sizeof(reply->hdr));
	memset(&reply->payload, 0, sizeof(reply->payload.u64));
	reply->hdr.request = msg->hdr.request;
	reply->hdr.flags = VH_USER_VERSION | VH_USER_FLAG_REPLY;
	reply->hdr.size = 8;
	if (row && row->reply == VH_REPLY_U64) {
		/* SHARED_OBJECT_LOOKUP: always answered, with the dma-buf on success. */
		if (!status && lookup_fd < 0)
			status = -ENOENT;
		if (status) {
			if (lookup_fd >= 0)
				vhp_close(lookup_fd);
			/* A negative errno in the u64, as QEMU answers. */
			reply->payload.u64 = (uint64_t)(int64_t)status;
		} else {
			reply->payload.u64 = 0;
			*reply_fd = lookup_fd;
		}
		return 1;
	}
	if (lookup_fd >= 0)
		vhp_close(lookup_fd);
	if (!(msg->hdr.flags & VH_USER_FLAG_NEED_REPLY))
		return 0;
	reply->payload.u64 = status ? 1 : 0;
	return 1;
}

int vh_frontend_backend_channel_dispatch(struct vh_frontend *fe)
{
	struct vh_msg msg, reply;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 0;
	int reply_fd = -1;
	int r;

	if (!fe)
		return -EINVAL;
	if (fe->chan.fd < 0)
		return -ENOTCONN;
	r = vh_endpoint_recv(&fe->chan, &msg, fds, &nfds, 0);
	if (r == -EAGAIN)
		return 0;
	if (r) {
		vhp_fe_channel_close(fe);
		return r;
	}
	r = vh_frontend_backend_request_handle(fe, &msg, fds, nfds, &reply, &reply_fd);
	if (r < 0) {
		vhp_fe_channel_close(fe);
		return r;
	}
	/* A callback may have ended the channel (or the whole connection). */
	if (r == 1 && fe->chan.fd >= 0) {
		r = vh_endpoint_send(&fe->chan, &reply.hdr, &reply.payload,
				     reply_fd >= 0 ? &reply_fd : NULL, reply_fd >= 0 ? 1 : 0);
		if (r) {
			vhp_close(reply_fd);
			vhp_fe_channel_close(fe);
			return r;
		}
	}
	vhp_close(reply_fd);
	return 1;
}

int vhp_fe_channel_serve(struct vh_frontend *fe)
{
	return vh_frontend_backend_channel_dispatch(fe);
}
