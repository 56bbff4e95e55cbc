/* SPDX-License-Identifier: MIT */
/*
 * vhost-user back-end protocol server: connection handling, validation and the protocol state.
 *
 * Every message goes through vh_validate_request() (the request table in wire.c) before any
 * handler sees it. Received fds live in one array owned by dispatch_message(); a handler that
 * keeps an fd sets its slot to -1, and the one cleanup path closes the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvhost/backend.h>
#include "backend_priv.h"
#include "internal.h"

#define LOG(be) (&(be)->cfg.log)

/* Outcome of a handler beyond 0 / -errno: the handler already sent the request's reply. */
#define REPLIED 1

static int has_pf(const struct vh_backend *be, unsigned bit)
{
	return !!(be->protocol_features & VH_BIT(bit));
}

static int packed_ring(const struct vh_backend *be)
{
	return !!(be->features & VH_BIT(VH_F_RING_PACKED));
}

/* A callback's result: 0 or a negative errno (positive values count as failure). */
static int cb_result(int r)
{
	return r == 0 ? 0 : (r < 0 ? r : -EIO);
}

/* Runs an optional callback: 0 when the device has none. */
#define OPT_CB(be, name, ...) \
	((be)->ops.name ? cb_result((be)->ops.name((be), ##__VA_ARGS__)) : 0)

static void set_negotiated(struct vh_backend *be, uint64_t features, uint64_t protocol_features)
{
	pthread_mutex_lock(&be->chan_lock);
	be->features = features;
	be->protocol_features = protocol_features;
	pthread_mutex_unlock(&be->chan_lock);
}

/* ---- Vring state -------------------------------------------------------------------------- */

static void vring_init(struct vh_backend_vring *vr, unsigned idx)
{
	memset(vr, 0, sizeof(*vr));
	vr->addr.index = idx;
	vr->base.avail_wrap_counter = 1; /* packed rings start with both wrap counters set */
	vr->base.used_wrap_counter = 1;
	vr->kick_fd = -1;
	vr->call_fd = -1;
	vr->err_fd = -1;
}

static void vring_reset(struct vh_backend_vring *vr, unsigned idx)
{
	vhp_close(vr->kick_fd);
	vhp_close(vr->call_fd);
	vhp_close(vr->err_fd);
	vring_init(vr, idx);
}

static void reset_all_vrings(struct vh_backend *be)
{
	for (unsigned i = 0; i < be->cfg.num_queues; i++)
		vring_reset(&be->vrings[i], i);
}

static int any_ring_started(const struct vh_backend *be)
{
	for (unsigned i = 0; i < be->cfg.num_queues; i++)
		if (be->vrings[i].started)
			return 1;
	return 0;
}

/* Drops every piece of per-connection state; the connection itself is handled by the caller. */
static void reset_connection_state(struct vh_backend *be)
{
	vhp_backend_close_channel(be);
	reset_all_vrings(be);
	vhp_close(be->log_fd);
	be->log_fd = -1;
	be->nregions = 0;
	be->owner = 0;
	be->status = 0;
	be->postcopy = VHP_POSTCOPY_NONE;
	set_negotiated(be, 0, 0);
}

static void teardown(struct vh_backend *be)
{
	if (!be->connected)
		return;
	/* Cleared first so that a callback calling vh_backend_close_connection() is a no-op. */
	be->connected = 0;
	/* The device first: it must quiesce workers before their fds go away. */
	if (be->ops.disconnected)
		be->ops.disconnected(be);
	vh_endpoint_close(&be->conn);
	reset_connection_state(be);
}

/* ---- Replies ------------------------------------------------------------------------------ */

static int send_reply(struct vh_backend *be, uint32_t request, const void *payload, uint32_t size,
		      const int *fds, unsigned nfds)
{
	struct vh_msg_hdr hdr = {
		.request = request,
		.flags = VH_USER_VERSION | VH_USER_FLAG_REPLY,
		.size = size,
	};
	int r = vh_endpoint_send(&be->conn, &hdr, payload, fds, nfds);

	if (r)
		vhp_warn(LOG(be), "backend: sending %s reply failed: %d", vh_request_name(request), r);
	return r;
}

static int reply_u64(struct vh_backend *be, uint32_t request, uint64_t v)
{
	return send_reply(be, request, &v, sizeof(v), NULL, 0);
}

/* The u64 of a NAK: non-zero; the positive errno is informative. */
static uint64_t nak_value(int err)
{
	return err < 0 ? (uint64_t)-err : (err ? (uint64_t)err : 0);
}

/* Whether a request with an ack-style reply gets an answer: NEED_REPLY with REPLY_ACK
 * negotiated, or NEED_REPLY on the rows whose front-end always waits for one. */
static int ack_wanted(const struct vh_backend *be, const struct vh_request_info *row,
		      const struct vh_msg_hdr *hdr)
{
	if (!(hdr->flags & VH_USER_FLAG_NEED_REPLY))
		return 0;
	if (row && (row->flags & VH_REQ_ALWAYS_NEED_REPLY))
		return 1;
	return has_pf(be, VH_USER_PROTOCOL_F_REPLY_ACK);
}

/*
 * The error form of a request that has a reply of its own, sent when it is rejected or its
 * handler fails. Returns 0 when sent, a send error, or `err` itself when the request has no
 * error form (the front-end waits for a reply we cannot give: the connection must go).
 */
static int error_reply(struct vh_backend *be, uint32_t request, int err)
{
	switch (request) {
	case VH_USER_GET_CONFIG:
	case VH_USER_POSTCOPY_ADVISE:
		/* Size 0: GET_CONFIG's documented failure; POSTCOPY_ADVISE without a uffd. */
		return send_reply(be, request, NULL, 0, NULL, 0);
	case VH_USER_GET_INFLIGHT_FD: {
		struct vh_inflight inf = { 0 }; /* mmap_size 0: no inflight buffer */

		return send_reply(be, request, &inf, sizeof(inf), NULL, 0);
	}
	case VH_USER_SET_DEVICE_STATE_FD: {
		uint64_t v = nak_value(err) & 0xff;

		return reply_u64(be, request, (v ? v : 1) | VH_USER_VRING_NOFD_MASK);
	}
	case VH_USER_SET_LOG_BASE:
	case VH_USER_CHECK_DEVICE_STATE:
	case VH_USER_GET_SHARED_OBJECT:
		return reply_u64(be, request, nak_value(err) ? nak_value(err) : 1);
	default:
		return err ? err : -EPROTO;
	}
}

/* ---- Argument checks shared by several handlers ------------------------------------------- */

static int range_ok(uint64_t start, uint64_t len)
{
	uint64_t end;

	return len != 0 && !__builtin_add_overflow(start, len - 1, &end);
}

static int ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	/* Both ranges are known not to wrap. */
	return a <= b + (blen - 1) && b <= a + (alen - 1);
}

/*
 * An fd the device will mmap: a regular file (memfd, tmpfs, hugetlbfs) at least offset + size
 * long, or a character device (DAX), opened read-write. A pipe, socket or short file would map
 * and then SIGBUS or fail later.
 */
static int check_map_fd(struct vh_backend *be, int fd, uint64_t offset, uint64_t size,
			const char *what)
{
	struct stat st;
	uint64_t end;
	int fl;

	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st))
		return -errno;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if ((fl & O_ACCMODE) != O_RDWR || (fl & O_PATH)) {
		vhp_warn(LOG(be), "backend: %s fd is not open read-write", what);
		return -EACCES;
	}
	if (__builtin_add_overflow(offset, size, &end))
		return -EINVAL;
	if (S_ISCHR(st.st_mode))
		return 0;
	if (!S_ISREG(st.st_mode)) {
		vhp_warn(LOG(be), "backend: %s fd is not a file (mode 0%o)", what,
			 (unsigned)(st.st_mode & S_IFMT));
		return -EINVAL;
	}
	if (st.st_size < 0 || end > (uint64_t)st.st_size) {
		vhp_warn(LOG(be), "backend: %s needs %llu bytes, file has %lld", what,
			 (unsigned long long)end, (long long)st.st_size);
		return -EINVAL;
	}
	return 0;
}

static void decode_region(const struct vh_backend *be, const uint8_t *src,
			  struct vh_backend_mem_region *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(&out->r, src, sizeof(out->r));
	if (has_pf(be, VH_USER_PROTOCOL_F_XEN_MMAP)) {
		struct vh_mem_region_xen x;

		memcpy(&x, src, sizeof(x));
		out->xen_mmap_flags = x.xen_mmap_flags;
		out->xen_domid = x.domid;
	}
}

static int region_ok(const struct vh_mem_region *r)
{
	uint64_t end;

	return range_ok(r->guest_phys_addr, r->memory_size) &&
	       range_ok(r->userspace_addr, r->memory_size) &&
	       !__builtin_add_overflow(r->mmap_offset, r->memory_size, &end);
}

static int regions_conflict(const struct vh_mem_region *a, const struct vh_mem_region *b)
{
	return ranges_overlap(a->guest_phys_addr, a->memory_size, b->guest_phys_addr,
			      b->memory_size) ||
	       ranges_overlap(a->userspace_addr, a->memory_size, b->userspace_addr,
			      b->memory_size);
}

static int cmp_region(const void *a, const void *b)
{
	const struct vh_backend_mem_region *x = a, *y = b;

	return x->r.guest_phys_addr < y->r.guest_phys_addr ? -1 :
	       x->r.guest_phys_addr > y->r.guest_phys_addr;
}

/* ---- Handlers ----------------------------------------------------------------------------
 * Each returns 0 (success; an ack is sent if wanted), a negative errno (NAK or ignored), or
 * REPLIED after sending the request's own reply (then a negative send error is fatal and
 * returned as is by the caller through `*fatal`).
 */

struct req {
	struct vh_backend *be;
	const struct vh_request_info *row;
	struct vh_msg_hdr *hdr;
	union vh_payload *p;
	int *fds;
	unsigned nfds;
	int fatal; /* set when the connection must go (send failed, protocol broken) */
};

static int replied(struct req *rq, int send_result)
{
	if (send_result)
		rq->fatal = send_result;
	return REPLIED;
}

static int h_get_features(struct req *rq)
{
	return replied(rq, reply_u64(rq->be, rq->hdr->request, rq->be->features_offered));
}

static int h_set_features(struct req *rq)
{
	struct vh_backend *be = rq->be;
	uint64_t v = rq->p->u64;
	int r;

	if (v & ~be->features_offered) {
		vhp_warn(LOG(be), "backend: SET_FEATURES 0x%llx has bits not offered (0x%llx)",
			 (unsigned long long)v, (unsigned long long)(v & ~be->features_offered));
		return -EINVAL;
	}
	/* While rings run only dirty logging may change (QEMU toggles LOG_ALL for migration). */
	if (((v ^ be->features) & ~VH_BIT(VH_F_LOG_ALL)) && any_ring_started(be))
		return -EBUSY;
	if (be->ops.set_features) {
		r = cb_result(be->ops.set_features(be, v));
		if (r)
			return r;
	}
	set_negotiated(be, v, be->protocol_features);
	/* Without PROTOCOL_FEATURES there is no SET_VRING_ENABLE: rings are enabled. */
	if (!(v & VH_BIT(VH_USER_F_PROTOCOL_FEATURES))) {
		for (unsigned i = 0; i < be->cfg.num_queues; i++) {
			struct vh_backend_vring *vr = &be->vrings[i];

			if (vr->enabled)
				continue;
			if (be->ops.set_vring_enable &&
			    cb_result(be->ops.set_vring_enable(be, i, 1)))
				vhp_warn(LOG(be), "backend: enabling vring %u failed", i);
			vr->enabled = 1;
		}
	}
	return 0;
}

static int h_set_owner(struct req *rq)
{
	struct vh_backend *be = rq->be;
	int r;

	r = OPT_CB(be, set_owner);
	if (r)
		return r;
	be->owner = 1;
	return 0;
}

/* RESET_OWNER (deprecated; sent by older QEMU as the device reset) and RESET_DEVICE. */
static int h_reset(struct req *rq)
{
	struct vh_backend *be = rq->be;
	int (*cb)(struct vh_backend *) = rq->hdr->request == VH_USER_RESET_OWNER ?
		be->ops.reset_owner : be->ops.reset_device;

	if (cb) {
		int r = cb_result(cb(be));

		if (r)
			return r;
	}
	reset_all_vrings(be);
	be->status = 0;
	if (rq->hdr->request == VH_USER_RESET_OWNER)
		be->owner = 0;
	set_negotiated(be, 0, be->protocol_features);
	return 0;
}

static int mem_fd_checks(struct vh_backend *be, const struct vh_backend_mem_region *r, int fd)
{
	return check_map_fd(be, fd, r->r.mmap_offset, r->r.memory_size, "memory region");
}

/* After POSTCOPY_LISTEN the table goes back with the back-end's addresses, and the front-end
 * confirms with a u64 0 under the same request id before faults may be served. */
static int postcopy_table_reply(struct req *rq, struct vh_backend_mem_region *nr, unsigned n)
{
	struct vh_backend *be = rq->be;
	size_t rsize = has_pf(be, VH_USER_PROTOCOL_F_XEN_MMAP) ? sizeof(struct vh_mem_region_xen)
							       : sizeof(struct vh_mem_region);
	uint8_t *out = be->reply.payload.bytes;
	struct vh_msg *ack = &be->reply;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 0;
	int r;

	memcpy(out, rq->p->bytes, rq->hdr->size);
	for (unsigned i = 0; i < n; i++) {
		struct vh_mem_region reg = nr[i].r;

		reg.userspace_addr = nr[i].host_addr;
		memcpy(out + 8 + i * rsize, &reg, sizeof(reg));
	}
	r = send_reply(be, rq->hdr->request, out, rq->hdr->size, NULL, 0);
	if (r) {
		rq->fatal = r;
		return REPLIED;
	}
	r = vh_endpoint_recv(&be->conn, ack, fds, &nfds, be->conn.timeout_ms);
	if (r == -EAGAIN)
		r = -ETIMEDOUT;
	if (!r) {
		vh_close_fds(fds, nfds);
		if (ack->hdr.request != VH_USER_SET_MEM_TABLE || ack->hdr.size != 8 || nfds ||
		    (ack->hdr.flags & ~VH_USER_FLAG_NEED_REPLY) != VH_USER_VERSION ||
		    ack->payload.u64 != 0)
			r = -EPROTO;
	}
	if (r) {
		vhp_err(LOG(be), "backend: postcopy SET_MEM_TABLE confirmation missing: %d", r);
		rq->fatal = r;
	}
	return REPLIED;
}

static int h_set_mem_table(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_backend_mem_region nr[VH_USER_MAX_TABLE_REGIONS];
	size_t rsize = has_pf(be, VH_USER_PROTOCOL_F_XEN_MMAP) ? sizeof(struct vh_mem_region_xen)
							       : sizeof(struct vh_mem_region);
	unsigned n = rq->p->mem.nregions; /* validated: <= 8, == nfds, size matches */
	int postcopy = be->postcopy == VHP_POSTCOPY_LISTENING;
	int r;

	if (n > be->cfg.max_mem_slots)
		return -ENOSPC;
	for (unsigned i = 0; i < n; i++) {
		decode_region(be, rq->p->bytes + 8 + i * rsize, &nr[i]);
		if (!region_ok(&nr[i].r))
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (regions_conflict(&nr[i].r, &nr[j].r))
				return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		r = mem_fd_checks(be, &nr[i], rq->fds[i]);
		if (r)
			return r;
	}
	if (be->ops.set_mem_table) {
		r = cb_result(be->ops.set_mem_table(be, nr, n, rq->fds));
		if (r)
			return r; /* in postcopy, reject() ends the connection */
	}
	/* Commit: the recorded table changes only now. Fds the callee left are closed by the
	 * dispatcher. */
	for (unsigned i = 0; i < n; i++) {
		be->regions[i] = nr[i];
		be->region_refs[i] = 1;
	}
	be->nregions = n;
	qsort(be->regions, n, sizeof(*be->regions), cmp_region);
	if (postcopy)
		return postcopy_table_reply(rq, nr, n);
	return 0;
}

static int same_region(const struct vh_backend_mem_region *a, const struct vh_backend_mem_region *b)
{
	return a->r.guest_phys_addr == b->r.guest_phys_addr &&
	       a->r.memory_size == b->r.memory_size &&
	       a->r.userspace_addr == b->r.userspace_addr;
}

static int h_add_mem_reg(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_backend_mem_region reg;
	unsigned pos;
	int r;

	decode_region(be, rq->p->bytes + 8, &reg);
	if (!region_ok(&reg.r))
		return -EINVAL;
	for (unsigned i = 0; i < be->nregions; i++) {
		/* The same region again (another queue pair's vhost device): one more holder,
		 * nothing to map. The file must be the same one at the same offset. */
		if (same_region(&reg, &be->regions[i]) &&
		    reg.r.mmap_offset == be->regions[i].r.mmap_offset) {
			if (be->region_refs[i] == UINT32_MAX)
				return -ENOSPC;
			r = mem_fd_checks(be, &reg, rq->fds[0]);
			if (r)
				return r;
			be->region_refs[i]++;
			return 0;
		}
		if (regions_conflict(&reg.r, &be->regions[i].r))
			return -EINVAL;
	}
	if (be->nregions >= be->cfg.max_mem_slots)
		return -ENOSPC;
	r = mem_fd_checks(be, &reg, rq->fds[0]);
	if (r)
		return r;
	if (be->ops.add_mem_reg) {
		r = cb_result(be->ops.add_mem_reg(be, &reg, &rq->fds[0]));
		if (r)
			return r;
	}
	/* Insert in guest-address order, keeping the holder counts beside their regions. */
	for (pos = 0; pos < be->nregions; pos++)
		if (be->regions[pos].r.guest_phys_addr > reg.r.guest_phys_addr)
			break;
	memmove(&be->regions[pos + 1], &be->regions[pos],
		(be->nregions - pos) * sizeof(*be->regions));
	memmove(&be->region_refs[pos + 1], &be->region_refs[pos],
		(be->nregions - pos) * sizeof(*be->region_refs));
	be->regions[pos] = reg;
	be->region_refs[pos] = 1;
	be->nregions++;
	return 0;
}

static int h_rem_mem_reg(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_backend_mem_region reg;
	unsigned i;
	int r;

	/* A passed fd (allowed by the spec) is closed by the dispatcher. */
	decode_region(be, rq->p->bytes + 8, &reg);
	for (i = 0; i < be->nregions; i++)
		if (same_region(&reg, &be->regions[i]))
			break;
	if (i == be->nregions)
		return -ENOENT;
	if (be->region_refs[i] > 1) {
		be->region_refs[i]--; /* another holder still uses it */
		return 0;
	}
	if (be->ops.rem_mem_reg) {
		r = cb_result(be->ops.rem_mem_reg(be, &be->regions[i]));
		if (r)
			return r;
	}
	memmove(&be->regions[i], &be->regions[i + 1],
		(be->nregions - i - 1) * sizeof(*be->regions));
	memmove(&be->region_refs[i], &be->region_refs[i + 1],
		(be->nregions - i - 1) * sizeof(*be->region_refs));
	be->nregions--;
	return 0;
}

static int h_set_log_base(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_log log = rq->p->log;
	int r;

	if (!log.mmap_size)
		r = -EINVAL;
	else
		r = check_map_fd(be, rq->fds[0], log.mmap_offset, log.mmap_size, "dirty log");
	if (!r)
		r = be->ops.set_log_base ? cb_result(be->ops.set_log_base(be, &log, &rq->fds[0]))
					 : -ENOTSUP;
	/* Erratum E4: the reply is a u64 (0 = success), always sent. */
	if (r)
		return replied(rq, error_reply(be, rq->hdr->request, r));
	return replied(rq, reply_u64(be, rq->hdr->request, 0));
}

static int h_set_log_fd(struct req *rq)
{
	struct vh_backend *be = rq->be;
	int fd = rq->fds[0];
	int r;

	r = OPT_CB(be, set_log_fd, fd);
	if (r)
		return r;
	vhp_close(be->log_fd);
	be->log_fd = fd;
	rq->fds[0] = -1;
	return 0;
}

static int h_set_vring_num(struct req *rq)
{
	struct vh_backend *be = rq->be;
	unsigned idx = rq->p->state.index;
	uint32_t num = rq->p->state.num;
	int r;

	if (num == 0 || num > be->cfg.max_queue_size || num > VH_VIRTQ_MAX_SIZE)
		return -EINVAL;
	/* Split rings need a power of two; packed rings any size up to 32768. */
	if (!packed_ring(be) && (num & (num - 1)))
		return -EINVAL;
	if (be->vrings[idx].started)
		return -EBUSY;
	r = OPT_CB(be, set_vring_num, idx, num);
	if (r)
		return r;
	be->vrings[idx].num = num;
	return 0;
}

static int h_set_vring_addr(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_vring_addr a = rq->p->addr;
	unsigned idx = a.index;
	int r;

	/* Packed rings: descriptors 16, driver and device event areas 4. Split: 16, 2, 4. */
	uint64_t avail_align = packed_ring(be) ? 4 : 2;

	if (a.flags & ~VH_BIT(VH_VRING_F_LOG))
		return -EINVAL;
	if ((a.desc_user_addr & 15) || (a.avail_user_addr & (avail_align - 1)) ||
	    (a.used_user_addr & 3) || ((a.flags & VH_BIT(VH_VRING_F_LOG)) && (a.log_guest_addr & 3)))
		return -EINVAL;
	/* Allowed on a running ring: QEMU flips F_LOG there for migration. */
	r = OPT_CB(be, set_vring_addr, idx, &a);
	if (r)
		return r;
	be->vrings[idx].addr = a;
	be->vrings[idx].log = !!(a.flags & VH_BIT(VH_VRING_F_LOG));
	return 0;
}

static int decode_base(const struct vh_backend *be, uint32_t num, struct vh_backend_vring_base *b)
{
	memset(b, 0, sizeof(*b));
	if (!packed_ring(be)) {
		if (num > 0xffff)
			return -EINVAL;
		b->last_avail_idx = (uint16_t)num;
		b->last_used_idx = (uint16_t)num;
		b->avail_wrap_counter = 1;
		b->used_wrap_counter = 1;
		return 0;
	}
	b->last_avail_idx = num & 0x7fff;
	b->avail_wrap_counter = (num >> 15) & 1;
	if (num >> 16) {
		b->last_used_idx = (num >> 16) & 0x7fff;
		b->used_wrap_counter = (num >> 31) & 1;
	} else {
		/* Front-ends that send only the avail half: used catches up with avail. */
		b->last_used_idx = b->last_avail_idx;
		b->used_wrap_counter = b->avail_wrap_counter;
	}
	return 0;
}

static uint32_t encode_base(const struct vh_backend *be, const struct vh_backend_vring_base *b)
{
	if (!packed_ring(be))
		return b->last_avail_idx;
	return (uint32_t)(b->last_avail_idx & 0x7fff) | ((uint32_t)(b->avail_wrap_counter & 1) << 15) |
	       ((uint32_t)(b->last_used_idx & 0x7fff) << 16) |
	       ((uint32_t)(b->used_wrap_counter & 1) << 31);
}

static int h_set_vring_base(struct req *rq)
{
	struct vh_backend *be = rq->be;
	unsigned idx = rq->p->state.index;
	struct vh_backend_vring_base b;
	int r;

	r = decode_base(be, rq->p->state.num, &b);
	if (r)
		return r;
	/* Packed indexes are ring positions: below the ring size once it is known. */
	if (packed_ring(be) && be->vrings[idx].num &&
	    (b.last_avail_idx >= be->vrings[idx].num || b.last_used_idx >= be->vrings[idx].num))
		return -EINVAL;
	if (be->vrings[idx].started)
		return -EBUSY;
	if (be->ops.set_vring_base) {
		r = cb_result(be->ops.set_vring_base(be, idx, &b));
		if (r)
			return r;
	}
	be->vrings[idx].base = b;
	return 0;
}

static int h_get_vring_base(struct req *rq)
{
	struct vh_backend *be = rq->be;
	unsigned idx = rq->p->state.index;
	struct vh_backend_vring *vr = &be->vrings[idx];
	struct vh_backend_vring_base b = vr->base;
	struct vh_vring_state st;

	vr->started = 0;
	if (be->ops.get_vring_base) {
		struct vh_backend_vring_base tmp = b;

		if (cb_result(be->ops.get_vring_base(be, idx, &tmp)))
			vhp_warn(LOG(be), "backend: GET_VRING_BASE %u: device failed, "
				 "reporting the recorded position", idx);
		else
			b = tmp;
	}
	vr->base = b;
	/* A stopped ring has no kick source; the next SET_VRING_KICK brings a new one. */
	vhp_close(vr->kick_fd);
	vr->kick_fd = -1;
	vr->kick_nofd = 0;
	st.index = idx;
	st.num = encode_base(be, &b);
	return replied(rq, send_reply(be, rq->hdr->request, &st, sizeof(st), NULL, 0));
}

static int h_set_vring_file(struct req *rq)
{
	struct vh_backend *be = rq->be;
	uint64_t v = rq->p->u64;
	unsigned idx = (unsigned)(v & VH_USER_VRING_IDX_MASK);
	int nofd = !!(v & VH_USER_VRING_NOFD_MASK);
	int fd = nofd ? -1 : rq->fds[0]; /* validated: exactly one fd unless NOFD */
	struct vh_backend_vring *vr = &be->vrings[idx];
	int (*cb)(struct vh_backend *, unsigned, int);
	int *slot;
	uint8_t *nofd_slot = NULL;
	int r;

	switch (rq->hdr->request) {
	case VH_USER_SET_VRING_KICK:
		cb = be->ops.set_vring_kick;
		slot = &vr->kick_fd;
		nofd_slot = &vr->kick_nofd;
		break;
	case VH_USER_SET_VRING_CALL:
		cb = be->ops.set_vring_call;
		slot = &vr->call_fd;
		nofd_slot = &vr->call_nofd;
		break;
	default:
		cb = be->ops.set_vring_err;
		slot = &vr->err_fd;
		break;
	}
	if (cb) {
		r = cb_result(cb(be, idx, fd));
		if (r)
			return r; /* the new fd is closed by the dispatcher; the old one stays */
	}
	vhp_close(*slot);
	*slot = fd;
	if (!nofd)
		rq->fds[0] = -1;
	if (nofd_slot)
		*nofd_slot = (uint8_t)nofd;
	if (rq->hdr->request == VH_USER_SET_VRING_KICK)
		vr->started = 1;
	return 0;
}

static int h_get_protocol_features(struct req *rq)
{
	return replied(rq, reply_u64(rq->be, rq->hdr->request, rq->be->cfg.protocol_features));
}

static int h_set_protocol_features(struct req *rq)
{
	struct vh_backend *be = rq->be;
	uint64_t v = rq->p->u64;
	const uint64_t inband_needs = VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK) |
				      VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ);
	int r;

	if (v & ~be->cfg.protocol_features) {
		vhp_warn(LOG(be), "backend: SET_PROTOCOL_FEATURES 0x%llx has bits not offered",
			 (unsigned long long)v);
		return -EINVAL;
	}
	if ((v & VH_BIT(VH_USER_PROTOCOL_F_INBAND_NOTIFICATIONS)) &&
	    (v & inband_needs) != inband_needs)
		return -EINVAL;
	if (v != be->protocol_features && any_ring_started(be))
		return -EBUSY;
	r = OPT_CB(be, set_protocol_features, v);
	if (r)
		return r;
	set_negotiated(be, be->features, v);
	return 0;
}

static int h_get_queue_num(struct req *rq)
{
	return replied(rq, reply_u64(rq->be, rq->hdr->request, rq->be->cfg.num_queues));
}

static int h_get_max_mem_slots(struct req *rq)
{
	return replied(rq, reply_u64(rq->be, rq->hdr->request, rq->be->cfg.max_mem_slots));
}

static int h_set_vring_enable(struct req *rq)
{
	struct vh_backend *be = rq->be;
	unsigned idx = rq->p->state.index;
	uint32_t en = rq->p->state.num;
	int r;

	if (en > 1)
		return -EINVAL;
	r = OPT_CB(be, set_vring_enable, idx, (int)en);
	if (r)
		return r;
	be->vrings[idx].enabled = (uint8_t)en;
	return 0;
}

static int h_set_vring_endian(struct req *rq)
{
	struct vh_backend *be = rq->be;
	unsigned idx = rq->p->state.index;
	uint32_t big = rq->p->state.num;
	int r;

	if (big > 1)
		return -EINVAL;
	if (be->vrings[idx].started)
		return -EBUSY;
	r = OPT_CB(be, set_vring_endian, idx, (int)big);
	if (r)
		return r;
	be->vrings[idx].big_endian = (uint8_t)big;
	return 0;
}

static int h_vring_kick(struct req *rq)
{
	struct vh_backend *be = rq->be;
	unsigned idx = rq->p->state.index;
	int r;

	if (rq->p->state.num != 0) /* reserved */
		return -EINVAL;
	r = OPT_CB(be, vring_kick_inband, idx);
	if (r)
		return r;
	be->vrings[idx].started = 1;
	return 0;
}

static int h_send_rarp(struct req *rq)
{
	struct vh_backend *be = rq->be;
	uint8_t mac[6];

	memcpy(mac, rq->p->bytes, sizeof(mac));
	return be->ops.send_rarp ? cb_result(be->ops.send_rarp(be, mac)) : -ENOTSUP;
}

static int h_net_set_mtu(struct req *rq)
{
	struct vh_backend *be = rq->be;
	uint64_t mtu = rq->p->u64;

	if (mtu == 0 || mtu > 0xffff)
		return -EINVAL;
	return be->ops.net_set_mtu ? cb_result(be->ops.net_set_mtu(be, mtu)) : -ENOTSUP;
}

static int h_set_backend_req_fd(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct stat st;

	if (fstat(rq->fds[0], &st))
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	vhp_backend_set_channel(be, rq->fds[0]);
	rq->fds[0] = -1;
	return 0;
}

static int h_iotlb_msg(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_iotlb_msg m = rq->p->iotlb;

	switch (m.type) {
	case VH_IOTLB_UPDATE:
		if (m.perm < VH_ACCESS_RO || m.perm > VH_ACCESS_RW)
			return -EINVAL;
		if (!range_ok(m.uaddr, m.size))
			return -EINVAL;
		/* fall through */
	case VH_IOTLB_INVALIDATE:
		/* Never an entry covering nothing or wrapping (an all-zero message would). */
		if (!range_ok(m.iova, m.size))
			return -EINVAL;
		break;
	case VH_IOTLB_BATCH_BEGIN:
	case VH_IOTLB_BATCH_END:
		break;
	default: /* MISS and ACCESS_FAIL travel the other way */
		return -EINVAL;
	}
	return be->ops.iotlb_msg ? cb_result(be->ops.iotlb_msg(be, &m)) : -ENOTSUP;
}

static int config_range_ok(const struct vh_backend *be, const struct vh_config *c)
{
	return (uint64_t)c->offset + c->size <= be->cfg.config_size;
}

static int h_get_config(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_config *c = &be->reply.payload.config;
	int r;

	memcpy(c, &rq->p->config, VH_CONFIG_HDR_SIZE);
	if (!config_range_ok(be, c) || c->size == 0)
		r = -EINVAL;
	else if (!be->ops.get_config)
		r = -ENOTSUP;
	else {
		memset(c->region, 0, c->size);
		r = cb_result(be->ops.get_config(be, c->offset, c->size, c->region));
	}
	if (r) {
		vhp_warn(LOG(be), "backend: GET_CONFIG offset %u size %u failed: %d", c->offset,
			 c->size, r);
		return replied(rq, error_reply(be, rq->hdr->request, r));
	}
	return replied(rq, send_reply(be, rq->hdr->request, c, VH_CONFIG_HDR_SIZE + c->size,
				      NULL, 0));
}

static int h_set_config(struct req *rq)
{
	struct vh_backend *be = rq->be;
	const struct vh_config *c = &rq->p->config;

	if (!config_range_ok(be, c) || c->size == 0 || c->flags > VH_CONFIG_FLAG_MIGRATION)
		return -EINVAL;
	if (!be->ops.set_config)
		return -ENOTSUP;
	return cb_result(be->ops.set_config(be, c->offset, c->size, c->flags, c->region));
}

static int h_create_crypto_session(struct req *rq)
{
	struct vh_backend *be = rq->be;
	uint32_t len = rq->hdr->size;
	int r;

	/* No generic error form exists (the session id's place depends on QEMU's layout). */
	if (!be->ops.create_crypto_session)
		return -ENOTSUP;
	memcpy(be->reply.payload.bytes, rq->p->bytes, len);
	r = cb_result(be->ops.create_crypto_session(be, rq->p->bytes, len,
						    be->reply.payload.bytes));
	if (r)
		vhp_warn(LOG(be), "backend: CREATE_CRYPTO_SESSION failed: %d", r);
	return replied(rq, send_reply(be, rq->hdr->request, be->reply.payload.bytes, len, NULL, 0));
}

static int h_close_crypto_session(struct req *rq)
{
	struct vh_backend *be = rq->be;

	if (!be->ops.close_crypto_session)
		return -ENOTSUP;
	return cb_result(be->ops.close_crypto_session(be, rq->p->u64));
}

static int h_postcopy_advise(struct req *rq)
{
	struct vh_backend *be = rq->be;
	int fd = -1;
	int r;

	if (!be->ops.postcopy_advise)
		r = -ENOTSUP;
	else
		r = cb_result(be->ops.postcopy_advise(be, &fd));
	if (!r && fd < 0)
		r = -EIO;
	if (r) {
		vhp_close(fd);
		return replied(rq, error_reply(be, rq->hdr->request, r));
	}
	r = send_reply(be, rq->hdr->request, NULL, 0, &fd, 1);
	vhp_close(fd);
	if (!r)
		be->postcopy = VHP_POSTCOPY_ADVISED;
	return replied(rq, r);
}

static int h_postcopy_listen(struct req *rq)
{
	struct vh_backend *be = rq->be;
	int r;

	if (be->postcopy != VHP_POSTCOPY_ADVISED)
		return -EINVAL;
	r = OPT_CB(be, postcopy_listen);
	if (r)
		return r;
	be->postcopy = VHP_POSTCOPY_LISTENING;
	return 0;
}

static int h_postcopy_end(struct req *rq)
{
	struct vh_backend *be = rq->be;
	int r;

	r = OPT_CB(be, postcopy_end);
	if (r)
		return r;
	be->postcopy = VHP_POSTCOPY_NONE;
	return 0;
}

static int inflight_ok(const struct vh_backend *be, const struct vh_inflight *inf)
{
	return inf->num_queues >= 1 && inf->num_queues <= be->cfg.num_queues &&
	       inf->queue_size >= 1 && inf->queue_size <= be->cfg.max_queue_size;
}

static int h_get_inflight_fd(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_inflight req = rq->p->inflight;
	struct vh_inflight rep = req;
	int fd = -1;
	int r;

	rep.mmap_size = 0;
	rep.mmap_offset = 0;
	rep.padding = 0;
	if (!inflight_ok(be, &req))
		r = -EINVAL;
	else if (!be->ops.get_inflight_fd)
		r = -ENOTSUP;
	else
		r = cb_result(be->ops.get_inflight_fd(be, &req, &rep, &fd));
	if (!r && (fd < 0 || rep.mmap_size == 0))
		r = -EIO;
	if (r) {
		vhp_close(fd);
		vhp_warn(LOG(be), "backend: GET_INFLIGHT_FD failed: %d", r);
		return replied(rq, error_reply(be, rq->hdr->request, r));
	}
	rep.padding = 0;
	r = send_reply(be, rq->hdr->request, &rep, sizeof(rep), &fd, 1);
	vhp_close(fd);
	return replied(rq, r);
}

static int h_set_inflight_fd(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_inflight inf = rq->p->inflight;
	int r;

	if (!inflight_ok(be, &inf) || inf.mmap_size == 0)
		return -EINVAL;
	r = check_map_fd(be, rq->fds[0], inf.mmap_offset, inf.mmap_size, "inflight");
	if (r)
		return r;
	if (!be->ops.set_inflight_fd)
		return -ENOTSUP;
	return cb_result(be->ops.set_inflight_fd(be, &inf, &rq->fds[0]));
}

static int h_gpu_set_socket(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct stat st;

	if (fstat(rq->fds[0], &st))
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	if (!be->ops.gpu_set_socket)
		return -ENOTSUP;
	return cb_result(be->ops.gpu_set_socket(be, &rq->fds[0]));
}

static int h_set_status(struct req *rq)
{
	struct vh_backend *be = rq->be;
	uint64_t v = rq->p->u64;
	int r;

	if (v > 0xff)
		return -EINVAL;
	r = OPT_CB(be, set_status, (uint8_t)v);
	if (r)
		return r;
	be->status = (uint8_t)v;
	return 0;
}

static int h_get_status(struct req *rq)
{
	struct vh_backend *be = rq->be;
	uint8_t st = be->status;

	if (be->ops.get_status) {
		uint8_t tmp = st;

		if (!cb_result(be->ops.get_status(be, &tmp)))
			st = tmp;
	}
	return replied(rq, reply_u64(be, rq->hdr->request, st));
}

static int h_get_shared_object(struct req *rq)
{
	struct vh_backend *be = rq->be;
	uint8_t uuid[16];
	int fd = -1;
	int r;

	memcpy(uuid, rq->p->object.uuid, sizeof(uuid));
	r = be->ops.get_shared_object ? cb_result(be->ops.get_shared_object(be, uuid, &fd))
				      : -ENOTSUP;
	if (!r && fd < 0)
		r = -ENOENT;
	if (r) {
		vhp_close(fd);
		return replied(rq, error_reply(be, rq->hdr->request, r));
	}
	{
		uint64_t v = 0;

		r = send_reply(be, rq->hdr->request, &v, sizeof(v), &fd, 1);
	}
	vhp_close(fd);
	return replied(rq, r);
}

static int h_set_device_state_fd(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_device_state_transfer t = rq->p->transfer;
	int reply_fd = -1;
	uint64_t v;
	int r;

	if (t.direction > VH_DEVICE_STATE_LOAD || t.phase != VH_DEVICE_STATE_PHASE_STOPPED)
		r = -EINVAL;
	else if (any_ring_started(be))
		r = -EBUSY; /* the device must be suspended first */
	else if (!be->ops.set_device_state_fd)
		r = -ENOTSUP;
	else
		r = cb_result(be->ops.set_device_state_fd(be, t.direction, t.phase, &rq->fds[0],
							  &reply_fd));
	if (r) {
		vhp_close(reply_fd);
		return replied(rq, error_reply(be, rq->hdr->request, r));
	}
	v = reply_fd < 0 ? VH_USER_VRING_NOFD_MASK : 0;
	r = send_reply(be, rq->hdr->request, &v, sizeof(v), &reply_fd, reply_fd < 0 ? 0 : 1);
	vhp_close(reply_fd);
	return replied(rq, r);
}

static int h_check_device_state(struct req *rq)
{
	struct vh_backend *be = rq->be;
	int r = be->ops.check_device_state ? cb_result(be->ops.check_device_state(be)) : -ENOTSUP;

	if (r)
		return replied(rq, error_reply(be, rq->hdr->request, r));
	return replied(rq, reply_u64(be, rq->hdr->request, 0));
}

static int h_get_shmem_config(struct req *rq)
{
	struct vh_backend *be = rq->be;
	struct vh_shmem_config *c = &be->reply.payload.shmem_config;

	memset(c, 0, sizeof(*c));
	if (be->ops.get_shmem_config) {
		int r = cb_result(be->ops.get_shmem_config(be, c));

		if (r || c->nregions > VH_USER_MAX_SHMEM_REGIONS) {
			vhp_warn(LOG(be), "backend: GET_SHMEM_CONFIG failed: %d", r);
			memset(c, 0, sizeof(*c));
		}
	}
	c->padding = 0;
	return replied(rq, send_reply(be, rq->hdr->request, c, sizeof(*c), NULL, 0));
}

typedef int (*handler_fn)(struct req *rq);

static const handler_fn handlers[VH_USER_REQUEST_MAX + 1] = {
	[VH_USER_GET_FEATURES] = h_get_features,
	[VH_USER_SET_FEATURES] = h_set_features,
	[VH_USER_SET_OWNER] = h_set_owner,
	[VH_USER_RESET_OWNER] = h_reset,
	[VH_USER_SET_MEM_TABLE] = h_set_mem_table,
	[VH_USER_SET_LOG_BASE] = h_set_log_base,
	[VH_USER_SET_LOG_FD] = h_set_log_fd,
	[VH_USER_SET_VRING_NUM] = h_set_vring_num,
	[VH_USER_SET_VRING_ADDR] = h_set_vring_addr,
	[VH_USER_SET_VRING_BASE] = h_set_vring_base,
	[VH_USER_GET_VRING_BASE] = h_get_vring_base,
	[VH_USER_SET_VRING_KICK] = h_set_vring_file,
	[VH_USER_SET_VRING_CALL] = h_set_vring_file,
	[VH_USER_SET_VRING_ERR] = h_set_vring_file,
	[VH_USER_GET_PROTOCOL_FEATURES] = h_get_protocol_features,
	[VH_USER_SET_PROTOCOL_FEATURES] = h_set_protocol_features,
	[VH_USER_GET_QUEUE_NUM] = h_get_queue_num,
	[VH_USER_SET_VRING_ENABLE] = h_set_vring_enable,
	[VH_USER_SEND_RARP] = h_send_rarp,
	[VH_USER_NET_SET_MTU] = h_net_set_mtu,
	[VH_USER_SET_BACKEND_REQ_FD] = h_set_backend_req_fd,
	[VH_USER_IOTLB_MSG] = h_iotlb_msg,
	[VH_USER_SET_VRING_ENDIAN] = h_set_vring_endian,
	[VH_USER_GET_CONFIG] = h_get_config,
	[VH_USER_SET_CONFIG] = h_set_config,
	[VH_USER_CREATE_CRYPTO_SESSION] = h_create_crypto_session,
	[VH_USER_CLOSE_CRYPTO_SESSION] = h_close_crypto_session,
	[VH_USER_POSTCOPY_ADVISE] = h_postcopy_advise,
	[VH_USER_POSTCOPY_LISTEN] = h_postcopy_listen,
	[VH_USER_POSTCOPY_END] = h_postcopy_end,
	[VH_USER_GET_INFLIGHT_FD] = h_get_inflight_fd,
	[VH_USER_SET_INFLIGHT_FD] = h_set_inflight_fd,
	[VH_USER_GPU_SET_SOCKET] = h_gpu_set_socket,
	[VH_USER_RESET_DEVICE] = h_reset,
	[VH_USER_VRING_KICK] = h_vring_kick,
	[VH_USER_GET_MAX_MEM_SLOTS] = h_get_max_mem_slots,
	[VH_USER_ADD_MEM_REG] = h_add_mem_reg,
	[VH_USER_REM_MEM_REG] = h_rem_mem_reg,
	[VH_USER_SET_STATUS] = h_set_status,
	[VH_USER_GET_STATUS] = h_get_status,
	[VH_USER_GET_SHARED_OBJECT] = h_get_shared_object,
	[VH_USER_SET_DEVICE_STATE_FD] = h_set_device_state_fd,
	[VH_USER_CHECK_DEVICE_STATE] = h_check_device_state,
	[VH_USER_GET_SHMEM_CONFIG] = h_get_shmem_config,
};

/*
 * Answers a request that failed (validation or handler) with no reply of its own yet.
 * Returns 0 if the connection survives, else the connection-fatal error.
 */
static int reject(struct req *rq, int err)
{
	struct vh_backend *be = rq->be;
	const struct vh_request_info *row = rq->row;

	/* After POSTCOPY_LISTEN the front-end waits for the table to come back (QEMU without a
	 * timeout, NEED_REPLY or not); a refused table has no answer it would take. */
	if (rq->hdr->request == VH_USER_SET_MEM_TABLE && be->postcopy == VHP_POSTCOPY_LISTENING)
		return err ? err : -EPROTO;
	if (!row || row->reply == VH_REPLY_ACK || row->reply == VH_REPLY_NONE) {
		if (ack_wanted(be, row, rq->hdr))
			return reply_u64(be, rq->hdr->request, nak_value(err));
		return 0; /* the stream is still in step: ignore it, keep the connection */
	}
	/* The front-end waits for the request's own reply. */
	return error_reply(be, rq->hdr->request, err);
}

/* Validates and handles the message in be->msg; owns fds[0..nfds) and closes what is left. */
static int dispatch_message(struct vh_backend *be, int *fds, unsigned nfds)
{
	struct vh_msg_hdr *hdr = &be->msg.hdr;
	struct vh_validate_ctx ctx = {
		.features_offered = be->features_offered,
		.features_acked = be->features,
		.protocol_features = be->protocol_features,
		.num_queues = be->cfg.num_queues,
		.is_backend_channel = 0,
	};
	struct req rq = {
		.be = be,
		.row = vh_request_info(hdr->request),
		.hdr = hdr,
		.p = &be->msg.payload,
		.fds = fds,
		.nfds = nfds,
	};
	int r, ret = 0;

	/* Bytes past hdr.size are stale: never let a handler read them as payload. */
	if (hdr->size < sizeof(be->msg.payload))
		memset(be->msg.payload.bytes + hdr->size, 0, sizeof(be->msg.payload) - hdr->size);

	r = vh_validate_request(&ctx, hdr, &be->msg.payload, nfds);
	if (r) {
		vhp_warn(LOG(be), "backend: rejected %s (id %u, flags 0x%x, size %u, %u fds): %d",
			 vh_request_name(hdr->request), hdr->request, hdr->flags, hdr->size, nfds, r);
		/* Framing broken (version, flags, size cap): nothing on this stream can be trusted. */
		ret = (r == -EPROTO || r == -EMSGSIZE) ? r : reject(&rq, r);
		goto out;
	}
	vhp_dbg(LOG(be), "backend: %s size %u fds %u", rq.row->name, hdr->size, nfds);
	r = handlers[hdr->request](&rq);
	if (r == REPLIED) {
		ret = rq.fatal;
		goto out;
	}
	if (rq.fatal) {
		ret = rq.fatal;
		goto out;
	}
	if (r) {
		vhp_warn(LOG(be), "backend: %s failed: %d", rq.row->name, r);
		ret = reject(&rq, r);
		goto out;
	}
	if (rq.row->reply == VH_REPLY_ACK && ack_wanted(be, rq.row, hdr))
		ret = reply_u64(be, hdr->request, 0);
out:
	vh_close_fds(fds, nfds);
	return ret;
}

/* ---- Lifecycle ---------------------------------------------------------------------------- */

static int check_config(const struct vh_backend_config *cfg)
{
	uint64_t pf = cfg->protocol_features;
	uint64_t known = VH_BIT(VH_USER_PROTOCOL_F_MAX + 1) - 1;
	const uint64_t req = VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ);

	if (cfg->num_queues < 1 || cfg->num_queues > VH_BACKEND_MAX_QUEUES)
		return -EINVAL;
	if (cfg->max_queue_size > VH_VIRTQ_MAX_SIZE || cfg->max_mem_slots > VH_USER_MAX_MEM_SLOTS)
		return -EINVAL;
	if (cfg->config_size > VH_USER_MAX_CONFIG_SIZE || cfg->timeout_ms < 0)
		return -EINVAL;
	if (pf & ~known)
		return -EINVAL;
	if ((pf & VH_BIT(VH_USER_PROTOCOL_F_INBAND_NOTIFICATIONS)) &&
	    (!(pf & VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK)) || !(pf & req)))
		return -EINVAL;
	if ((pf & (VH_BIT(VH_USER_PROTOCOL_F_HOST_NOTIFIER) |
		   VH_BIT(VH_USER_PROTOCOL_F_SHARED_OBJECT) | VH_BIT(VH_USER_PROTOCOL_F_SHMEM))) &&
	    !(pf & req))
		return -EINVAL;
	if ((pf & VH_BIT(VH_USER_PROTOCOL_F_HOST_NOTIFIER)) &&
	    !(pf & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_SEND_FD)))
		return -EINVAL;
	return 0;
}

int vh_backend_new(struct vh_backend **out, const struct vh_backend_config *cfg,
		   const struct vh_backend_ops *ops, void *opaque)
{
	struct vh_backend *be;
	int r;

	if (!out || !cfg)
		return -EINVAL;
	*out = NULL;
	r = check_config(cfg);
	if (r)
		return r;
	be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->cfg = *cfg;
	if (!be->cfg.max_queue_size)
		be->cfg.max_queue_size = VH_VIRTQ_MAX_SIZE;
	if (!be->cfg.max_mem_slots)
		be->cfg.max_mem_slots = VH_USER_MAX_MEM_SLOTS;
	if (!be->cfg.timeout_ms)
		be->cfg.timeout_ms = VH_BACKEND_DEFAULT_TIMEOUT_MS;
	if (ops)
		be->ops = *ops;
	be->opaque = opaque;
	be->features_offered = cfg->features;
	if (cfg->protocol_features)
		be->features_offered |= VH_BIT(VH_USER_F_PROTOCOL_FEATURES);
	be->listen_fd = -1;
	be->log_fd = -1;
	vh_endpoint_init(&be->conn, -1, "main");
	vh_endpoint_init(&be->chan, -1, "backend-channel");
	be->vrings = calloc(be->cfg.num_queues, sizeof(*be->vrings));
	be->regions = calloc(be->cfg.max_mem_slots, sizeof(*be->regions));
	be->region_refs = calloc(be->cfg.max_mem_slots, sizeof(*be->region_refs));
	if (!be->vrings || !be->regions || !be->region_refs ||
	    pthread_mutex_init(&be->chan_lock, NULL)) {
		free(be->vrings);
		free(be->regions);
		free(be->region_refs);
		free(be);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < be->cfg.num_queues; i++)
		vring_init(&be->vrings[i], i);
	*out = be;
	return 0;
}

static void close_listener(struct vh_backend *be)
{
	struct stat st;

	if (be->listen_path) {
		/* Remove the socket file only if it is still the one we created. */
		if (lstat(be->listen_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    st.st_dev == be->listen_dev && st.st_ino == be->listen_ino)
			unlink(be->listen_path);
		free(be->listen_path);
		be->listen_path = NULL;
	}
	vhp_close(be->listen_fd);
	be->listen_fd = -1;
}

void vh_backend_free(struct vh_backend *be)
{
	if (!be)
		return;
	teardown(be);
	reset_connection_state(be); /* also when never connected */
	close_listener(be);
	pthread_mutex_destroy(&be->chan_lock);
	free(be->vrings);
	free(be->regions);
	free(be->region_refs);
	free(be);
}

void *vh_backend_opaque(const struct vh_backend *be)
{
	return be ? be->opaque : NULL;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int vh_backend_listen(struct vh_backend *be, const char *path)
{
	struct stat st;
	int fd, r;

	if (!be || !path)
		return -EINVAL;
	if (be->listen_fd >= 0 || be->connected)
		return -EBUSY;
	fd = vh_socket_listen(path);
	if (fd < 0)
		return fd;
	/* A client may vanish between poll and accept: never block in accept. */
	r = set_nonblock(fd);
	if (!r && stat(path, &st))
		r = -errno;
	if (!r && !(be->listen_path = strdup(path)))
		r = -ENOMEM;
	if (r) {
		vhp_close(fd);
		unlink(path);
		return r;
	}
	be->listen_dev = st.st_dev;
	be->listen_ino = st.st_ino;
	be->listen_fd = fd;
	vhp_info(LOG(be), "backend: listening on %s", path);
	return 0;
}

int vh_backend_set_listen_fd(struct vh_backend *be, int fd)
{
	int r;

	if (!be)
		return -EINVAL;
	if (be->listen_fd >= 0 || be->connected)
		return -EBUSY;
	r = vh_socket_is_listening(fd);
	if (r)
		return r == -EINVAL ? -ENOTSOCK : r;
	r = set_nonblock(fd);
	if (r)
		return r;
	be->listen_fd = fd;
	return 0;
}

static int attach(struct vh_backend *be, int fd)
{
	vh_endpoint_init(&be->conn, fd, "main");
	be->conn.timeout_ms = be->cfg.timeout_ms;
	be->conn.log = be->cfg.log;
	reset_connection_state(be);
	if (be->ops.connected) {
		int r = cb_result(be->ops.connected(be));

		if (r) {
			vh_endpoint_close(&be->conn);
			vhp_warn(LOG(be), "backend: connection refused by the device: %d", r);
			return r;
		}
	}
	be->connected = 1;
	vhp_info(LOG(be), "backend: connected");
	return 0;
}

int vh_backend_set_connection(struct vh_backend *be, int fd)
{
	if (!be) {
		vhp_close(fd);
		return -EINVAL;
	}
	if (fd < 0)
		return -EBADF;
	if (be->connected) {
		vhp_close(fd);
		return -EBUSY;
	}
	return attach(be, fd);
}

int vh_backend_connect(struct vh_backend *be, const char *path)
{
	unsigned attempts;
	int fd;

	if (!be || !path)
		return -EINVAL;
	if (be->connected)
		return -EBUSY;
	/* Retry for about the configured timeout while the front-end is not there yet. */
	attempts = (unsigned)be->cfg.timeout_ms / 100 + 1;
	fd = vh_socket_connect(path, attempts, 100);
	if (fd < 0)
		return fd;
	return attach(be, fd);
}

void vh_backend_close_connection(struct vh_backend *be)
{
	if (be)
		teardown(be);
}

/* ---- Event loop --------------------------------------------------------------------------- */

int vh_backend_fd(const struct vh_backend *be)
{
	if (!be)
		return -1;
	return be->connected ? be->conn.fd : be->listen_fd;
}

static int accept_one(struct vh_backend *be)
{
	int fd = vh_socket_accept(be->listen_fd);

	if (fd < 0) {
		if (fd == -EAGAIN || fd == -EWOULDBLOCK || fd == -EINTR || fd == -ECONNABORTED ||
		    fd == -EPROTO)
			return -EAGAIN;
		vhp_warn(LOG(be), "backend: accept failed: %d", fd);
		/* Out of fds or memory: the listener stays, the caller may retry later. */
		return fd;
	}
	return attach(be, fd);
}

int vh_backend_dispatch(struct vh_backend *be)
{
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 0;
	int r;

	if (!be)
		return -EINVAL;
	if (!be->connected) {
		if (be->listen_fd < 0)
			return -ENOTCONN;
		return accept_one(be);
	}
	/* Never block for a message that has not started: look first, then receive (the
	 * endpoint bounds the rest of a started message by timeout_ms). */
	{
		struct pollfd pfd = { .fd = be->conn.fd, .events = POLLIN };

		r = poll(&pfd, 1, 0);
		if (r < 0)
			return errno == EINTR ? -EAGAIN : -errno;
		if (r == 0)
			return -EAGAIN;
	}
	r = vh_endpoint_recv(&be->conn, &be->msg, fds, &nfds, -1);
	if (r == -EAGAIN)
		return -EAGAIN;
	if (r) {
		/* The endpoint closed any fds it had received. */
		if (r == -ECONNRESET)
			vhp_info(LOG(be), "backend: front-end disconnected");
		else
			vhp_warn(LOG(be), "backend: connection error %d", r);
		teardown(be);
		return r;
	}
	r = dispatch_message(be, fds, nfds);
	if (r) {
		vhp_warn(LOG(be), "backend: closing the connection: %d", r);
		teardown(be);
		return r;
	}
	return 0;
}

int vh_backend_poll(struct vh_backend *be, int timeout_ms)
{
	struct pollfd pfd;
	int r;

	if (!be)
		return -EINVAL;
	pfd.fd = vh_backend_fd(be);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0)
		return -ENOTCONN;
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	if (r == 0)
		return -EAGAIN;
	return vh_backend_dispatch(be);
}

/* ---- Accessors ---------------------------------------------------------------------------- */

int vh_backend_is_connected(const struct vh_backend *be)
{
	return be ? be->connected : 0;
}

uint64_t vh_backend_features(const struct vh_backend *be)
{
	return be ? be->features : 0;
}

uint64_t vh_backend_features_offered(const struct vh_backend *be)
{
	return be ? be->features_offered : 0;
}

uint64_t vh_backend_protocol_features(const struct vh_backend *be)
{
	return be ? be->protocol_features : 0;
}

int vh_backend_has_owner(const struct vh_backend *be)
{
	return be ? be->owner : 0;
}

uint32_t vh_backend_num_queues(const struct vh_backend *be)
{
	return be ? be->cfg.num_queues : 0;
}

uint8_t vh_backend_status(const struct vh_backend *be)
{
	return be ? be->status : 0;
}

int vh_backend_get_vring(const struct vh_backend *be, unsigned idx, struct vh_backend_vring *out)
{
	if (!be || !out)
		return -EINVAL;
	if (idx >= be->cfg.num_queues)
		return -ERANGE;
	*out = be->vrings[idx];
	return 0;
}

int vh_backend_log_fd(const struct vh_backend *be)
{
	return be ? be->log_fd : -1;
}

int vh_backend_get_mem_table(const struct vh_backend *be, struct vh_backend_mem_region *out,
			     unsigned max)
{
	unsigned n;

	if (!be || (!out && max))
		return -EINVAL;
	n = be->nregions < max ? be->nregions : max;
	if (n)
		memcpy(out, be->regions, n * sizeof(*out));
	return (int)n;
}
