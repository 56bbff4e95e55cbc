/* SPDX-License-Identifier: MIT */
/*
 * Back-end -> front-end requests on the SET_BACKEND_REQ_FD channel.
 *
 * Worker threads may call these at any time, so one mutex serialises the channel: a request and
 * its reply are never interleaved with another. Outgoing requests pass the same table check as
 * incoming ones (gate, size, fds, queue index). A reply that does not match the request, or none
 * within the timeout, leaves the stream out of step: the channel is closed.
 */
#include <errno.h>
#include <string.h>

#include <libvhost/backend.h>
#include "backend_priv.h"
#include "internal.h"

#define LOG(be) (&(be)->cfg.log)

static void close_channel_locked(struct vh_backend *be)
{
	vh_endpoint_close(&be->chan);
}

void vhp_backend_close_channel(struct vh_backend *be)
{
	pthread_mutex_lock(&be->chan_lock);
	close_channel_locked(be);
	pthread_mutex_unlock(&be->chan_lock);
}

void vhp_backend_set_channel(struct vh_backend *be, int fd)
{
	pthread_mutex_lock(&be->chan_lock);
	close_channel_locked(be);
	vh_endpoint_init(&be->chan, fd, "backend-channel");
	be->chan.timeout_ms = be->cfg.timeout_ms;
	be->chan.log = be->cfg.log;
	pthread_mutex_unlock(&be->chan_lock);
}

int vh_backend_has_channel(struct vh_backend *be)
{
	int open;

	if (!be)
		return 0;
	pthread_mutex_lock(&be->chan_lock);
	open = be->chan.fd >= 0;
	pthread_mutex_unlock(&be->chan_lock);
	return open;
}

/*
 * Sends one request and, when one is due, waits for its reply. *u64_out receives the reply
 * value (for U64 replies), *fd_out a reply fd (caller owns) or -1.
 */
static int chan_request(struct vh_backend *be, uint32_t id, const void *payload, uint32_t size,
			const int *fds, unsigned nfds, uint64_t *u64_out, int *fd_out)
{
	const struct vh_request_info *row = vh_backend_request_info(id);
	struct vh_msg_hdr hdr = { .request = id, .flags = VH_USER_VERSION, .size = size };
	union vh_payload *check = &be->chan_msg.payload;
	struct vh_msg *rep = &be->chan_msg;
	int rfds[VH_USER_MAX_FDS];
	unsigned rnfds = 0;
	int acked = 0, want_reply;
	int r;

	if (fd_out)
		*fd_out = -1;
	if (!row || size > VH_USER_MAX_PAYLOAD)
		return -EINVAL;
	pthread_mutex_lock(&be->chan_lock);
	if (be->chan.fd < 0) {
		r = -ENOTCONN;
		goto out;
	}
	{
		struct vh_validate_ctx ctx = {
			.features_offered = be->features_offered,
			.features_acked = be->features,
			.protocol_features = be->protocol_features,
			.num_queues = be->cfg.num_queues,
			.is_backend_channel = 1,
		};

		memset(check, 0, sizeof(*check));
		if (size)
			memcpy(check, payload, size);
		r = vh_validate_request(&ctx, &hdr, check, nfds);
		if (r) {
			/* Our own argument error, or a feature the front-end did not take. */
			if (r == -ERANGE)
				r = -EINVAL;
			goto out;
		}
		if (nfds && !(be->protocol_features & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_SEND_FD))) {
			r = -ENOTSUP;
			goto out;
		}
	}
	if (row->reply == VH_REPLY_ACK &&
	    (be->protocol_features & VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK))) {
		hdr.flags |= VH_USER_FLAG_NEED_REPLY;
		acked = 1;
	}
	want_reply = acked || row->reply == VH_REPLY_U64 || row->reply == VH_REPLY_PAYLOAD;
	r = vh_endpoint_send(&be->chan, &hdr, check, fds, nfds);
	if (r) {
		if (r != -EBADF && r != -EINVAL) /* a bad fd argument sent nothing */
			goto broken;
		goto out;
	}
	if (!want_reply)
		goto out;
	r = vh_endpoint_recv(&be->chan, rep, rfds, &rnfds, be->chan.timeout_ms);
	if (r == -EAGAIN)
		r = -ETIMEDOUT;
	if (r)
		goto broken;
	r = vh_validate_reply(row, id, &rep->hdr, rnfds, acked);
	if (r || rep->hdr.size != sizeof(uint64_t)) {
		vh_close_fds(rfds, rnfds);
		r = r ? r : -EPROTO;
		goto broken;
	}
	if (u64_out)
		*u64_out = rep->payload.u64;
	if (rep->payload.u64 != 0) {
		vh_close_fds(rfds, rnfds);
		r = -EIO;
		goto out;
	}
	if (rnfds && fd_out) {
		*fd_out = rfds[0];
		rfds[0] = -1;
	}
	vh_close_fds(rfds, rnfds);
	r = 0;
	goto out;
broken:
	vhp_warn(LOG(be), "backend: channel %s failed (%d); closing the channel",
		 vh_backend_request_name(id), r);
	close_channel_locked(be);
out:
	pthread_mutex_unlock(&be->chan_lock);
	return r;
}

int vh_backend_send_iotlb_msg(struct vh_backend *be, const struct vh_iotlb_msg *msg)
{
	struct vh_iotlb_msg m;

	if (!be || !msg)
		return -EINVAL;
	if (msg->type != VH_IOTLB_MISS && msg->type != VH_IOTLB_ACCESS_FAIL)
		return -EINVAL;
	if (msg->perm < VH_ACCESS_RO || msg->perm > VH_ACCESS_RW)
		return -EINVAL;
	m = *msg;
	memset(m.padding, 0, sizeof(m.padding));
	return chan_request(be, VH_USER_BACKEND_IOTLB_MSG, &m, sizeof(m), NULL, 0, NULL, NULL);
}

int vh_backend_send_config_change(struct vh_backend *be)
{
	if (!be)
		return -EINVAL;
	return chan_request(be, VH_USER_BACKEND_CONFIG_CHANGE_MSG, NULL, 0, NULL, 0, NULL, NULL);
}

int vh_backend_send_vring_host_notifier(struct vh_backend *be, unsigned idx, int fd,
					uint64_t size, uint64_t offset)
{
	struct vh_vring_area area = { .size = size, .offset = offset };

	if (!be || idx > VH_USER_VRING_IDX_MASK)
		return -EINVAL;
	area.u64 = idx | (fd < 0 ? VH_USER_VRING_NOFD_MASK : 0);
	return chan_request(be, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, &area, sizeof(area),
			    fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1, NULL, NULL);
}

static int send_vring_state(struct vh_backend *be, uint32_t id, unsigned idx)
{
	struct vh_vring_state st = { .index = idx, .num = 0 };

	if (!be)
		return -EINVAL;
	return chan_request(be, id, &st, sizeof(st), NULL, 0, NULL, NULL);
}

int vh_backend_send_vring_call(struct vh_backend *be, unsigned idx)
{
	return send_vring_state(be, VH_USER_BACKEND_VRING_CALL, idx);
}

int vh_backend_send_vring_err(struct vh_backend *be, unsigned idx)
{
	return send_vring_state(be, VH_USER_BACKEND_VRING_ERR, idx);
}

static int send_uuid(struct vh_backend *be, uint32_t id, const uint8_t uuid[16], int *fd_out)
{
	struct vh_shared_object obj;
	uint64_t v = 0;

	if (!be || !uuid)
		return -EINVAL;
	memcpy(obj.uuid, uuid, sizeof(obj.uuid));
	return chan_request(be, id, &obj, sizeof(obj), NULL, 0, &v, fd_out);
}

int vh_backend_send_shared_object_add(struct vh_backend *be, const uint8_t uuid[16])
{
	return send_uuid(be, VH_USER_BACKEND_SHARED_OBJECT_ADD, uuid, NULL);
}

int vh_backend_send_shared_object_remove(struct vh_backend *be, const uint8_t uuid[16])
{
	return send_uuid(be, VH_USER_BACKEND_SHARED_OBJECT_REMOVE, uuid, NULL);
}

int vh_backend_send_shared_object_lookup(struct vh_backend *be, const uint8_t uuid[16],
					 int *fd_out)
{
	if (!fd_out)
		return -EINVAL;
	return send_uuid(be, VH_USER_BACKEND_SHARED_OBJECT_LOOKUP, uuid, fd_out);
}

static int shmem_args_ok(const struct vh_shmem_mmap *map)
{
	uint64_t end;

	return map->len != 0 && !__builtin_add_overflow(map->shm_offset, map->len, &end) &&
	       !__builtin_add_overflow(map->fd_offset, map->len, &end) &&
	       !(map->flags & ~VH_SHMEM_MAP_F_WRITABLE);
}

int vh_backend_send_shmem_map(struct vh_backend *be, const struct vh_shmem_mmap *map, int fd)
{
	struct vh_shmem_mmap m;

	if (!be || !map || fd < 0 || !shmem_args_ok(map))
		return -EINVAL;
	m = *map;
	memset(m.padding, 0, sizeof(m.padding));
	return chan_request(be, VH_USER_BACKEND_SHMEM_MAP, &m, sizeof(m), &fd, 1, NULL, NULL);
}

int vh_backend_send_shmem_unmap(struct vh_backend *be, const struct vh_shmem_mmap *map)
{
	struct vh_shmem_mmap m;

	if (!be || !map || map->len == 0)
		return -EINVAL;
	m = *map;
	memset(m.padding, 0, sizeof(m.padding));
	return chan_request(be, VH_USER_BACKEND_SHMEM_UNMAP, &m, sizeof(m), NULL, 0, NULL, NULL);
}
