/* SPDX-License-Identifier: MIT */
/*
 * vhost-user front-end: one call per request, validated locally before sending and validated
 * again on the way back. Every rule about sizes, fds and gates comes from the request table
 * (wire.c); what is written here is what the table cannot say (per-request reply contents,
 * negotiation, the postcopy exchange).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvhost/frontend.h>
#include "frontend_internal.h"
#include "internal.h"

enum expect {
	EXPECT_AUTO,   /* what the table says: own reply, or an ack when NEED_REPLY is used */
	EXPECT_NONE,   /* send only (SET_PROTOCOL_FEATURES: REPLY_ACK is not in force yet) */
	EXPECT_TABLE,  /* postcopy SET_MEM_TABLE: the back-end answers with its table */
};

/* What came back for a request: the message and the fds that rode with it (owned here until
 * taken with take_fd() or released with release()). */
struct reply {
	struct vh_msg msg;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds;
};

/* ---- Helpers ------------------------------------------------------------------------------ */

static void release(struct reply *rep)
{
	vh_close_fds(rep->fds, rep->nfds);
	rep->nfds = 0;
}

/* Hands the reply's one fd to the caller and closes any other. */
static int take_fd(struct reply *rep)
{
	int fd = -1;

	if (rep->nfds) {
		fd = rep->fds[0];
		rep->fds[0] = -1;
	}
	release(rep);
	return fd;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void msg_init(struct vh_msg *m, uint32_t request, uint32_t size)
{
	memset(&m->hdr, 0, sizeof(m->hdr));
	/* Zero the payload so no stale byte or padding ever reaches the wire. */
	memset(&m->payload, 0, sizeof(m->payload));
	m->hdr.request = request;
	m->hdr.flags = VH_USER_VERSION;
	m->hdr.size = size;
}

static int has_pf(const struct vh_frontend *fe, unsigned bit)
{
	return !!(fe->protocol & VH_BIT(bit));
}

/* Ends the connection for good: the stream can no longer be trusted to be in step. */
static int fe_fail(struct vh_frontend *fe, int err)
{
	if (!fe->error) {
		fe->error = err;
		vhp_warn(&fe->log, "vhost-user front-end: connection failed (%s)", strerror(-err));
	}
	vh_endpoint_close(&fe->ep);
	vhp_fe_channel_close(fe);
	return fe->error;
}

static void note_queue(struct vh_frontend *fe, unsigned idx)
{
	if (idx < 256 && idx + 1 > fe->queues_seen)
		fe->queues_seen = idx + 1;
}

/* ---- Reply checking ------------------------------------------------------------------------ */

static int check_u64_reply(const struct vh_msg *reply, unsigned nfds)
{
	return (reply->hdr.size == 8 && nfds == 0) ? 0 : -EPROTO;
}

int vh_frontend_check_reply(const struct vh_msg *request, int acked, const struct vh_msg *reply,
			    unsigned reply_nfds)
{
	const struct vh_request_info *row;
	const union vh_payload *rq, *rp;

	if (!request || !reply)
		return -EINVAL;
	row = vh_request_info(request->hdr.request);
	if (!row)
		return -EINVAL;
	if (reply_nfds > VH_USER_MAX_FDS || reply->hdr.size > VH_USER_MAX_PAYLOAD)
		return -EPROTO;
	rq = &request->payload;
	rp = &reply->payload;

	if (row->reply == VH_REPLY_ACK && !acked) {
		/* Only the postcopy form of SET_MEM_TABLE answers without NEED_REPLY: the table as
		 * the back-end mapped it, same size and the same regions in the same order. */
		if (request->hdr.request != VH_USER_SET_MEM_TABLE)
			return -EPROTO;
		if (vh_validate_reply(row, request->hdr.request, &reply->hdr, reply_nfds, 0))
			return -EPROTO;
		if (reply->hdr.size != request->hdr.size || reply_nfds)
			return -EPROTO;
		if (request->hdr.size < 8 || rp->mem.nregions != rq->mem.nregions ||
		    rq->mem.nregions > VH_USER_MAX_TABLE_REGIONS)
			return -EPROTO;
		if (request->hdr.size != 8 + rq->mem.nregions * sizeof(struct vh_mem_region))
			return -EPROTO; /* the XEN layout is never sent in postcopy by this library */
		for (uint32_t i = 0; i < rq->mem.nregions; i++) {
			if (rp->mem.regions[i].guest_phys_addr != rq->mem.regions[i].guest_phys_addr ||
			    rp->mem.regions[i].memory_size != rq->mem.regions[i].memory_size)
				return -EPROTO;
		}
		return 0;
	}
	if (row->reply == VH_REPLY_NONE)
		return -EPROTO;
	if (vh_validate_reply(row, request->hdr.request, &reply->hdr, reply_nfds, acked))
		return -EPROTO;
	if (acked)
		return check_u64_reply(reply, reply_nfds);

	switch (request->hdr.request) {
	case VH_USER_SET_LOG_BASE:
		/* Erratum E4: a u64 status, or the 16-byte log struct echoed. */
		if ((reply->hdr.size != 8 && reply->hdr.size != 16) || reply_nfds)
			return -EPROTO;
		return 0;
	case VH_USER_GET_VRING_BASE:
		if (check_u64_reply(reply, reply_nfds))
			return -EPROTO;
		return rp->state.index == rq->state.index ? 0 : -EPROTO;
	case VH_USER_GET_CONFIG:
		if (reply_nfds)
			return -EPROTO;
		if (reply->hdr.size == 0)
			return 0; /* the back-end's way of saying it failed */
		if (reply->hdr.size != request->hdr.size || reply->hdr.size < VH_CONFIG_HDR_SIZE)
			return -EPROTO;
		if (rp->config.offset != rq->config.offset || rp->config.size != rq->config.size)
			return -EPROTO;
		return 0;
	case VH_USER_CREATE_CRYPTO_SESSION:
		return (reply->hdr.size == request->hdr.size && !reply_nfds) ? 0 : -EPROTO;
	case VH_USER_POSTCOPY_ADVISE:
		/* No fd is how a back-end says it could not open a userfaultfd: a failed request,
		 * not a broken stream (QEMU reports it the same way). */
		return (reply->hdr.size == 0 && reply_nfds <= 1) ? 0 : -EPROTO;
	case VH_USER_GET_INFLIGHT_FD: {
		uint64_t end;
		uint64_t limit, per_queue, page = 4096;
		long ps = sysconf(_SC_PAGESIZE);

		if (ps > 0)
			page = (uint64_t)ps;
		if (reply->hdr.size != VH_INFLIGHT_WIRE_SIZE)
			return -EPROTO;
		if (rp->inflight.mmap_size == 0)
			return reply_nfds <= 1 ? 0 : -EPROTO; /* no buffer; a stray fd is closed */
		if (reply_nfds != 1)
			return -EPROTO;
		if (__builtin_add_overflow(rp->inflight.mmap_offset, rp->inflight.mmap_size, &end))
			return -EPROTO;
		if (rp->inflight.mmap_offset % page)
			return -EPROTO;
		/* Largest layout any implementation uses: a packed queue region is 32 bytes of
		 * header plus 32 per descriptor; allow page rounding per queue. */
		per_queue = (32 + 32 * (uint64_t)rq->inflight.queue_size + page - 1) / page * page;
		limit = per_queue * rq->inflight.num_queues;
		return rp->inflight.mmap_size <= limit ? 0 : -EPROTO;
	}
	case VH_USER_GET_SHARED_OBJECT:
		if (reply->hdr.size != 8)
			return -EPROTO;
		if (rp->u64 == 0)
			return reply_nfds == 1 ? 0 : -EPROTO;
		return reply_nfds <= 1 ? 0 : -EPROTO;
	case VH_USER_SET_DEVICE_STATE_FD:
		if (reply->hdr.size != 8)
			return -EPROTO;
		if (rp->u64 & 0xff)
			return reply_nfds <= 1 ? 0 : -EPROTO; /* failed: a stray fd is closed */
		if (rp->u64 & VH_USER_VRING_NOFD_MASK)
			return reply_nfds == 0 ? 0 : -EPROTO;
		return reply_nfds == 1 ? 0 : -EPROTO;
	case VH_USER_GET_SHMEM_CONFIG:
		if (reply->hdr.size != sizeof(struct vh_shmem_config) || reply_nfds)
			return -EPROTO;
		return rp->shmem_config.nregions <= VH_USER_MAX_SHMEM_REGIONS ? 0 : -EPROTO;
	default:
		/* GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, GET_STATUS,
		 * CHECK_DEVICE_STATE, POSTCOPY_END and every other u64 answer. */
		return check_u64_reply(reply, reply_nfds);
	}
}

/* ---- Transport ----------------------------------------------------------------------------- */

static void fill_ctx(const struct vh_frontend *fe, struct vh_validate_ctx *ctx, int channel)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->features_offered = fe->features_offered;
	ctx->features_acked = fe->features_acked;
	ctx->protocol_features = fe->protocol;
	ctx->num_queues = channel ? 0 : fe->queue_count;
	ctx->is_backend_channel = channel;
}

/* Anything readable on the main socket while no request is outstanding is unsolicited. */
static int check_idle(struct vh_frontend *fe)
{
	struct vh_msg stray;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 0;
	int r = vh_endpoint_recv(&fe->ep, &stray, fds, &nfds, 0);

	if (r == -EAGAIN)
		return 0;
	if (r)
		return fe_fail(fe, r);
	vh_close_fds(fds, nfds);
	vhp_warn(&fe->log, "vhost-user front-end: unsolicited message %u (%s) from the back-end",
		 stray.hdr.request, vh_request_name(stray.hdr.request));
	return fe_fail(fe, -EPROTO);
}

static int wait_reply(struct vh_frontend *fe, struct vh_msg *reply, int *rfds, unsigned *rnfds)
{
	int64_t deadline = fe->timeout_ms >= 0 ? now_ms() + fe->timeout_ms : -1;

	*rnfds = 0;
	for (;;) {
		struct pollfd pfd[2];
		nfds_t n = 1;
		int timeout = -1;
		int r;

		if (fe->ep.fd < 0)
			return fe->error ? fe->error : -ENOTCONN;
		pfd[0].fd = fe->ep.fd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		/* Serve the back-end channel meanwhile: a back-end may wait for our answer there
		 * before it answers us here. Never from inside a channel callback (no recursion). */
		if (fe->chan.fd >= 0 && !fe->dispatching &&
		    !(fe->flags & VH_FRONTEND_F_NO_BACKEND_WHILE_WAITING)) {
			pfd[1].fd = fe->chan.fd;
			pfd[1].events = POLLIN;
			pfd[1].revents = 0;
			n = 2;
		}
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			timeout = left > 0x7fffffff ? 0x7fffffff : (int)left;
		}
		r = poll(pfd, n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			continue;
		if (pfd[0].revents) {
			r = vh_endpoint_recv(&fe->ep, reply, rfds, rnfds, 0);
			if (r == -EAGAIN)
				continue;
			return r;
		}
		if (n == 2 && pfd[1].revents)
			vhp_fe_channel_serve(fe); /* a channel failure closes only the channel */
	}
}

/*
 * Sends req (flags are set here) with fds and collects what the request gets back into rep
 * (which may be NULL only with EXPECT_NONE). Returns 0 with rep filled when a reply came (its
 * fds then belong to rep), -EIO for a NAK, a local refusal (-ENOTSUP, -EINVAL, -EBUSY) or a
 * sticky connection error; on any error rep holds no fd.
 */
static int transact(struct vh_frontend *fe, struct vh_msg *req, const int *fds, unsigned nfds,
		    enum expect expect, struct reply *rep)
{
	struct vh_msg *reply = rep ? &rep->msg : NULL;
	int *rfds = rep ? rep->fds : NULL;
	unsigned *rnfds = rep ? &rep->nfds : NULL;
	const struct vh_request_info *row = vh_request_info(req->hdr.request);
	struct vh_validate_ctx ctx;
	int want_reply = 0, acked = 0;
	int r;

	if (rnfds)
		*rnfds = 0;
	if (fe->error)
		return fe->error;
	if (fe->busy)
		return -EBUSY;
	if (!row)
		return -EINVAL;

	/* Our own request must pass the same rules a strict back-end applies. */
	fill_ctx(fe, &ctx, 0);
	r = vh_validate_request(&ctx, &req->hdr, &req->payload, nfds);
	if (r == -ERANGE || r == -EMSGSIZE || r == -EPROTO || r == -ENOSYS)
		r = -EINVAL;
	if (r) {
		vhp_dbg(&fe->log, "vhost-user front-end: %s refused locally (%s)", row->name,
			strerror(-r));
		return r;
	}

	switch (expect) {
	case EXPECT_NONE:
		break;
	case EXPECT_TABLE:
		want_reply = 1;
		break;
	case EXPECT_AUTO:
		if (row->reply == VH_REPLY_U64 || row->reply == VH_REPLY_PAYLOAD) {
			want_reply = 1;
		} else if (row->reply == VH_REPLY_ACK) {
			if ((row->flags & VH_REQ_ALWAYS_NEED_REPLY) ||
			    (has_pf(fe, VH_USER_PROTOCOL_F_REPLY_ACK) &&
			     !(fe->flags & VH_FRONTEND_F_NO_AUTO_REPLY_ACK)))
				acked = want_reply = 1;
		}
		break;
	}
	if (acked)
		req->hdr.flags |= VH_USER_FLAG_NEED_REPLY;
	if (want_reply && (!reply || !rfds || !rnfds))
		return -EINVAL;

	r = check_idle(fe);
	if (r)
		return r;
	fe->busy = 1;
	vhp_dbg(&fe->log, "vhost-user front-end: -> %s size %u fds %u%s", row->name, req->hdr.size,
		nfds, acked ? " need-reply" : "");
	r = vh_endpoint_send(&fe->ep, &req->hdr, &req->payload, fds, nfds);
	if (r) {
		fe->busy = 0;
		/* A bad fd to pass is refused before anything is written; everything else broke
		 * the stream. */
		return fe->ep.error ? fe_fail(fe, r) : r;
	}
	if (!want_reply) {
		fe->busy = 0;
		return 0;
	}
	r = wait_reply(fe, reply, rfds, rnfds);
	fe->busy = 0;
	if (r) {
		vhp_warn(&fe->log, "vhost-user front-end: no valid reply to %s (%s)", row->name,
			 strerror(-r));
		return fe_fail(fe, r);
	}
	vhp_dbg(&fe->log, "vhost-user front-end: <- %u flags 0x%x size %u fds %u",
		reply->hdr.request, reply->hdr.flags, reply->hdr.size, *rnfds);
	if (vh_frontend_check_reply(req, acked, reply, *rnfds)) {
		vhp_warn(&fe->log, "vhost-user front-end: bad reply to %s: id %u flags 0x%x size %u "
			 "fds %u", row->name, reply->hdr.request, reply->hdr.flags, reply->hdr.size,
			 *rnfds);
		vh_close_fds(rfds, *rnfds);
		*rnfds = 0;
		return fe_fail(fe, -EPROTO);
	}
	if (acked) {
		if (reply->payload.u64) {
			vhp_info(&fe->log, "vhost-user front-end: back-end refused %s (ack %llu)",
				 row->name, (unsigned long long)reply->payload.u64);
			return -EIO;
		}
	}
	return 0;
}

/* A request whose reply is at most an ack. */
static int send_simple(struct vh_frontend *fe, struct vh_msg *req, const int *fds, unsigned nfds)
{
	struct reply rep;
	int r = transact(fe, req, fds, nfds, EXPECT_AUTO, &rep);

	release(&rep); /* acks carry none; never leak one */
	return r;
}

/* A request answered by a u64 without fds. */
static int get_u64(struct vh_frontend *fe, uint32_t request, uint64_t *value)
{
	struct vh_msg req;
	struct reply rep;
	int r;

	if (!fe || !value)
		return -EINVAL;
	msg_init(&req, request, 0);
	r = transact(fe, &req, NULL, 0, EXPECT_AUTO, &rep);
	release(&rep);
	if (r)
		return r;
	*value = rep.msg.payload.u64;
	return 0;
}

static int set_u64(struct vh_frontend *fe, uint32_t request, uint64_t value)
{
	struct vh_msg req;

	if (!fe)
		return -EINVAL;
	msg_init(&req, request, 8);
	req.payload.u64 = value;
	return send_simple(fe, &req, NULL, 0);
}

static int send_empty(struct vh_frontend *fe, uint32_t request, const int *fds, unsigned nfds)
{
	struct vh_msg req;

	if (!fe)
		return -EINVAL;
	msg_init(&req, request, 0);
	return send_simple(fe, &req, fds, nfds);
}

static int check_queue(const struct vh_frontend *fe, unsigned idx)
{
	if (fe->queue_count ? idx >= fe->queue_count : idx > 0xff)
		return -EINVAL;
	return 0;
}

static int set_vring_state(struct vh_frontend *fe, uint32_t request, unsigned idx, uint32_t num)
{
	struct vh_msg req;
	int r;

	if (!fe)
		return -EINVAL;
	r = check_queue(fe, idx);
	if (r)
		return r;
	msg_init(&req, request, sizeof(struct vh_vring_state));
	req.payload.state.index = idx;
	req.payload.state.num = num;
	r = send_simple(fe, &req, NULL, 0);
	if (!r)
		note_queue(fe, idx);
	return r;
}

static int set_vring_file(struct vh_frontend *fe, uint32_t request, unsigned idx, int fd)
{
	struct vh_msg req;
	int r;

	if (!fe)
		return -EINVAL;
	/* The wire carries the index in one byte. */
	if (idx > 0xff)
		return -EINVAL;
	r = check_queue(fe, idx);
	if (r)
		return r;
	msg_init(&req, request, 8);
	req.payload.u64 = idx;
	if (fd < 0)
		req.payload.u64 |= VH_USER_VRING_NOFD_MASK;
	r = send_simple(fe, &req, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
	if (!r)
		note_queue(fe, idx);
	return r;
}

/* QEMU's barrier when a request must have taken effect and REPLY_ACK cannot say so: any
 * back-end answers GET_FEATURES only after it handled what came before. */
static int barrier(struct vh_frontend *fe, uint32_t sent_flags)
{
	uint64_t dummy;

	if (sent_flags & VH_USER_FLAG_NEED_REPLY)
		return 0;
	return vh_frontend_get_features(fe, &dummy);
}

/* ---- Life cycle ---------------------------------------------------------------------------- */

int vh_frontend_new(struct vh_frontend **out, int sock_fd, const struct vh_frontend_config *cfg)
{
	struct vh_frontend *fe;

	if (!out) {
		vhp_close(sock_fd);
		return -EINVAL;
	}
	*out = NULL;
	if (sock_fd < 0)
		return -EBADF;
	fe = calloc(1, sizeof(*fe));
	if (!fe) {
		vhp_close(sock_fd);
		return -ENOMEM;
	}
	if (cfg) {
		fe->log = cfg->log;
		fe->flags = cfg->flags;
		fe->timeout_ms = cfg->timeout_ms;
	}
	if (fe->timeout_ms == 0)
		fe->timeout_ms = VHP_FE_DEFAULT_TIMEOUT_MS;
	else if (fe->timeout_ms < 0)
		fe->timeout_ms = -1;
	vh_endpoint_init(&fe->ep, sock_fd, "main");
	fe->ep.log = fe->log;
	fe->ep.timeout_ms = fe->timeout_ms;
	vh_endpoint_init(&fe->chan, -1, "backend-channel");
	fe->chan.log = fe->log;
	fe->chan.timeout_ms = fe->timeout_ms;
	vhp_user_device_init(fe);
	*out = fe;
	return 0;
}

int vh_frontend_connect(struct vh_frontend **out, const char *path,
			const struct vh_frontend_config *cfg)
{
	int fd;

	if (!out || !path)
		return -EINVAL;
	*out = NULL;
	fd = vh_socket_connect(path, VHP_FE_CONNECT_ATTEMPTS, VHP_FE_CONNECT_DELAY_MS);
	if (fd < 0)
		return fd;
	return vh_frontend_new(out, fd, cfg);
}

void vh_frontend_free(struct vh_frontend *fe)
{
	if (!fe)
		return;
	vh_endpoint_close(&fe->ep);
	vhp_fe_channel_close(fe);
	vhp_user_device_fini(fe);
	free(fe->shmem_maps);
	free(fe);
}

int vh_frontend_fd(const struct vh_frontend *fe)
{
	return fe ? fe->ep.fd : -1;
}

int vh_frontend_error(const struct vh_frontend *fe)
{
	return fe ? fe->error : -EINVAL;
}

/* ---- Negotiated state ---------------------------------------------------------------------- */

uint64_t vh_frontend_features_offered(const struct vh_frontend *fe)
{
	return fe ? fe->features_offered : 0;
}

uint64_t vh_frontend_features_acked(const struct vh_frontend *fe)
{
	return fe ? fe->features_acked : 0;
}

uint64_t vh_frontend_protocol_features_offered(const struct vh_frontend *fe)
{
	return fe ? fe->protocol_offered : 0;
}

uint64_t vh_frontend_protocol_features(const struct vh_frontend *fe)
{
	return fe ? fe->protocol : 0;
}

#define KNOWN_PROTOCOL_BITS ((VH_BIT(VH_USER_PROTOCOL_F_MAX) << 1) - 1)
#define NEW_PROTOCOL_BITS \
	(VH_BIT(VH_USER_PROTOCOL_F_GPA_ADDRESSES) | VH_BIT(VH_USER_PROTOCOL_F_SHMEM))

/* Combinations the spec forbids, whoever asks for them. */
static int check_protocol_combination(uint64_t f)
{
	if ((f & VH_BIT(VH_USER_PROTOCOL_F_INBAND_NOTIFICATIONS)) &&
	    (!(f & VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK)) ||
	     !(f & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ))))
		return -EINVAL;
	if ((f & VH_BIT(VH_USER_PROTOCOL_F_HOST_NOTIFIER)) &&
	    (!(f & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ)) ||
	     !(f & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_SEND_FD))))
		return -EINVAL;
	return 0;
}

int vh_frontend_assume_negotiated(struct vh_frontend *fe, uint64_t features_offered,
				  uint64_t protocol_features)
{
	if (!fe)
		return -EINVAL;
	if (protocol_features & ~KNOWN_PROTOCOL_BITS)
		return -EINVAL;
	if (check_protocol_combination(protocol_features))
		return -EINVAL;
	fe->features_offered = features_offered;
	fe->have_features = 1;
	fe->protocol_offered = protocol_features;
	fe->have_protocol_offered = 1;
	fe->protocol = protocol_features;
	return 0;
}

int vh_frontend_set_queue_count(struct vh_frontend *fe, unsigned count)
{
	if (!fe || count > 256) /* vring fd messages carry the index in one byte */
		return -EINVAL;
	fe->queue_count = count;
	return 0;
}

int vh_frontend_negotiate(struct vh_frontend *fe, uint64_t want_protocol,
			  uint64_t *features_offered, uint64_t *protocol_features)
{
	uint64_t features, offered, use, allowed;
	int r;

	if (!fe)
		return -EINVAL;
	r = vh_frontend_get_features(fe, &features);
	if (r)
		return r;
	if (features_offered)
		*features_offered = features;
	if (protocol_features)
		*protocol_features = 0;
	if (!(features & VH_BIT(VH_USER_F_PROTOCOL_FEATURES)))
		return 0;
	r = vh_frontend_get_protocol_features(fe, &offered);
	if (r)
		return r;
	for (unsigned bit = 0; bit < 64; bit++) {
		if (offered & VH_BIT(bit))
			vhp_dbg(&fe->log, "vhost-user front-end: back-end offers protocol bit %u (%s)",
				bit, vh_protocol_feature_name(bit) ? vh_protocol_feature_name(bit)
								   : "unknown");
	}
	allowed = VH_FRONTEND_PROTOCOL_FEATURES | VH_BIT(VH_USER_PROTOCOL_F_INBAND_NOTIFICATIONS);
	if (fe->flags & VH_FRONTEND_F_TRUST_NEW_PROTOCOL_BITS)
		allowed |= NEW_PROTOCOL_BITS;
	else if (offered & NEW_PROTOCOL_BITS)
		vhp_info(&fe->log, "vhost-user front-end: not accepting protocol bits 21/22 "
			 "(offered 0x%llx): their numbering differs between implementations",
			 (unsigned long long)(offered & NEW_PROTOCOL_BITS));
	use = offered & want_protocol & allowed;
	/* Drop what cannot work without its companions rather than failing the handshake. */
	if ((use & VH_BIT(VH_USER_PROTOCOL_F_INBAND_NOTIFICATIONS)) &&
	    (!(use & VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK)) ||
	     !(use & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ))))
		use &= ~VH_BIT(VH_USER_PROTOCOL_F_INBAND_NOTIFICATIONS);
	if ((use & VH_BIT(VH_USER_PROTOCOL_F_HOST_NOTIFIER)) &&
	    (!(use & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ)) ||
	     !(use & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_SEND_FD))))
		use &= ~VH_BIT(VH_USER_PROTOCOL_F_HOST_NOTIFIER);
	r = vh_frontend_set_protocol_features(fe, use);
	if (r)
		return r;
	if (protocol_features)
		*protocol_features = use;
	return 0;
}

/* ---- Requests ------------------------------------------------------------------------------ */

int vh_frontend_get_features(struct vh_frontend *fe, uint64_t *features)
{
	uint64_t v;
	int r = get_u64(fe, VH_USER_GET_FEATURES, &v);

	if (r)
		return r;
	fe->features_offered = v;
	fe->have_features = 1;
	*features = v;
	return 0;
}

int vh_frontend_set_features(struct vh_frontend *fe, uint64_t features)
{
	struct vh_msg req;
	int r;

	if (!fe)
		return -EINVAL;
	if (fe->have_features && (features & ~fe->features_offered)) {
		vhp_dbg(&fe->log, "vhost-user front-end: SET_FEATURES 0x%llx not offered",
			(unsigned long long)(features & ~fe->features_offered));
		return -EINVAL;
	}
	msg_init(&req, VH_USER_SET_FEATURES, 8);
	req.payload.u64 = features;
	r = send_simple(fe, &req, NULL, 0);
	if (r)
		return r;
	fe->features_acked = features;
	/* Logging must be on before the caller relies on it. */
	if (features & VH_BIT(VH_F_LOG_ALL))
		return barrier(fe, req.hdr.flags);
	return 0;
}

int vh_frontend_set_owner(struct vh_frontend *fe)
{
	return send_empty(fe, VH_USER_SET_OWNER, NULL, 0);
}

int vh_frontend_reset_owner(struct vh_frontend *fe)
{
	return send_empty(fe, VH_USER_RESET_OWNER, NULL, 0);
}

int vhp_fe_check_regions(const struct vh_mem_region *regions, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const struct vh_mem_region *a = &regions[i];
		uint64_t end;

		if (a->memory_size == 0)
			return -EINVAL;
		if (__builtin_add_overflow(a->guest_phys_addr, a->memory_size - 1, &end) ||
		    __builtin_add_overflow(a->userspace_addr, a->memory_size - 1, &end) ||
		    __builtin_add_overflow(a->mmap_offset, a->memory_size - 1, &end))
			return -EINVAL;
		for (unsigned j = 0; j < i; j++) {
			const struct vh_mem_region *b = &regions[j];

			/* Inclusive ends: a region may end at 2^64 - 1. */
			if (a->guest_phys_addr <= b->guest_phys_addr + (b->memory_size - 1) &&
			    b->guest_phys_addr <= a->guest_phys_addr + (a->memory_size - 1))
				return -EINVAL;
			if (a->userspace_addr <= b->userspace_addr + (b->memory_size - 1) &&
			    b->userspace_addr <= a->userspace_addr + (a->memory_size - 1))
				return -EINVAL;
		}
	}
	return 0;
}

static int check_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] < 0)
			return -EBADF;
	}
	return 0;
}

/* The postcopy exchange: table back, then our ack (a plain message, not a reply). */
static int set_mem_table_postcopy(struct vh_frontend *fe, struct vh_msg *req, const int *fds,
				  unsigned n)
{
	struct vh_msg ack;
	struct reply rep;
	int r;

	r = transact(fe, req, fds, n, EXPECT_TABLE, &rep);
	release(&rep);
	if (r)
		return r;
	fe->postcopy_n = n;
	memcpy(fe->postcopy_table, rep.msg.payload.mem.regions, n * sizeof(struct vh_mem_region));
	msg_init(&ack, VH_USER_SET_MEM_TABLE, 8);
	ack.payload.u64 = 0;
	r = vh_endpoint_send(&fe->ep, &ack.hdr, &ack.payload, NULL, 0);
	if (r)
		return fe_fail(fe, r);
	return 0;
}

int vh_frontend_set_mem_table(struct vh_frontend *fe, const struct vh_mem_region *regions,
			      const int *fds, unsigned n)
{
	struct vh_msg req;
	int r;

	if (!fe || n > VH_USER_MAX_TABLE_REGIONS || (n && (!regions || !fds)))
		return -EINVAL;
	if (has_pf(fe, VH_USER_PROTOCOL_F_XEN_MMAP))
		return -EINVAL; /* the table must use the XEN layout: vh_frontend_set_mem_table_xen */
	r = check_fds(fds, n);
	if (r)
		return r;
	r = vhp_fe_check_regions(regions, n);
	if (r)
		return r;
	msg_init(&req, VH_USER_SET_MEM_TABLE, 8 + n * (uint32_t)sizeof(struct vh_mem_region));
	req.payload.mem.nregions = n;
	if (n)
		memcpy(req.payload.mem.regions, regions, n * sizeof(struct vh_mem_region));
	if (fe->postcopy_listening)
		return set_mem_table_postcopy(fe, &req, fds, n);
	return send_simple(fe, &req, fds, n);
}

int vh_frontend_set_mem_table_xen(struct vh_frontend *fe, const struct vh_mem_region_xen *regions,
				  const int *fds, unsigned n)
{
	struct vh_mem_region plain[VH_USER_MAX_TABLE_REGIONS] = { { 0 } };
	struct vh_msg req;
	int r;

	if (!fe || n > VH_USER_MAX_TABLE_REGIONS || (n && (!regions || !fds)))
		return -EINVAL;
	if (!has_pf(fe, VH_USER_PROTOCOL_F_XEN_MMAP))
		return -ENOTSUP;
	r = check_fds(fds, n);
	if (r)
		return r;
	for (unsigned i = 0; i < n; i++)
		plain[i] = regions[i].r;
	r = vhp_fe_check_regions(plain, n);
	if (r)
		return r;
	msg_init(&req, VH_USER_SET_MEM_TABLE, 8 + n * (uint32_t)sizeof(struct vh_mem_region_xen));
	req.payload.mem.nregions = n;
	/* The 40-byte regions are laid out back to back after the 8-byte table header. */
	if (n)
		memcpy(req.payload.bytes + 8, regions, n * sizeof(struct vh_mem_region_xen));
	return send_simple(fe, &req, fds, n);
}

int vh_frontend_set_log_base(struct vh_frontend *fe, uint64_t size, uint64_t offset, int fd)
{
	struct vh_msg req;
	struct reply rep;
	uint64_t end;
	int r;

	if (!fe)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	if (size == 0 || __builtin_add_overflow(size, offset, &end))
		return -EINVAL;
	msg_init(&req, VH_USER_SET_LOG_BASE, sizeof(struct vh_log));
	req.payload.log.mmap_size = size;
	req.payload.log.mmap_offset = offset;
	r = transact(fe, &req, &fd, 1, EXPECT_AUTO, &rep);
	release(&rep);
	/* Erratum E4: the reply only says "done". Its content means nothing: libvhost-user leaves
	 * mmap_size in the u64, rust-vmm echoes the 16-byte struct, and QEMU ignores it. */
	return r;
}

int vh_frontend_set_log_fd(struct vh_frontend *fe, int fd)
{
	if (fd < 0)
		return -EBADF;
	return send_empty(fe, VH_USER_SET_LOG_FD, &fd, 1);
}

int vh_frontend_set_vring_num(struct vh_frontend *fe, unsigned idx, unsigned num)
{
	if (num == 0 || num > VH_VIRTQ_MAX_SIZE)
		return -EINVAL;
	return set_vring_state(fe, VH_USER_SET_VRING_NUM, idx, num);
}

int vh_frontend_set_vring_addr(struct vh_frontend *fe, const struct vh_vring_addr *addr)
{
	struct vh_msg req;
	int r;

	if (!fe || !addr)
		return -EINVAL;
	r = check_queue(fe, addr->index);
	if (r)
		return r;
	if (addr->flags & ~VH_BIT(VH_VRING_F_LOG))
		return -EINVAL;
	msg_init(&req, VH_USER_SET_VRING_ADDR, sizeof(struct vh_vring_addr));
	req.payload.addr = *addr;
	r = send_simple(fe, &req, NULL, 0);
	if (r)
		return r;
	note_queue(fe, addr->index);
	/* As QEMU: the ring must be logging before migration relies on it. */
	if (addr->flags & VH_BIT(VH_VRING_F_LOG))
		return barrier(fe, req.hdr.flags);
	return 0;
}

int vh_frontend_set_vring_base(struct vh_frontend *fe, unsigned idx, uint32_t base)
{
	return set_vring_state(fe, VH_USER_SET_VRING_BASE, idx, base);
}

int vh_frontend_get_vring_base(struct vh_frontend *fe, unsigned idx, uint32_t *base)
{
	struct vh_msg req;
	struct reply rep;
	int r;

	if (!fe || !base)
		return -EINVAL;
	r = check_queue(fe, idx);
	if (r)
		return r;
	msg_init(&req, VH_USER_GET_VRING_BASE, sizeof(struct vh_vring_state));
	req.payload.state.index = idx;
	r = transact(fe, &req, NULL, 0, EXPECT_AUTO, &rep);
	release(&rep);
	if (r)
		return r;
	/* A split ring's position is 16 bits (as the kernel transport checks); packed rings
	 * carry wrap counters in bits 15 and 31. */
	if (!(fe->features_acked & VH_BIT(VH_F_RING_PACKED)) && rep.msg.payload.state.num > 0xffff)
		return fe_fail(fe, -EPROTO);
	*base = rep.msg.payload.state.num;
	return 0;
}

int vh_frontend_set_vring_kick(struct vh_frontend *fe, unsigned idx, int fd)
{
	return set_vring_file(fe, VH_USER_SET_VRING_KICK, idx, fd);
}

int vh_frontend_set_vring_call(struct vh_frontend *fe, unsigned idx, int fd)
{
	return set_vring_file(fe, VH_USER_SET_VRING_CALL, idx, fd);
}

int vh_frontend_set_vring_err(struct vh_frontend *fe, unsigned idx, int fd)
{
	return set_vring_file(fe, VH_USER_SET_VRING_ERR, idx, fd);
}

int vh_frontend_get_protocol_features(struct vh_frontend *fe, uint64_t *features)
{
	uint64_t v;
	int r = get_u64(fe, VH_USER_GET_PROTOCOL_FEATURES, &v);

	if (r)
		return r;
	fe->protocol_offered = v;
	fe->have_protocol_offered = 1;
	*features = v;
	return 0;
}

int vh_frontend_set_protocol_features(struct vh_frontend *fe, uint64_t features)
{
	struct vh_msg req;
	int r;

	if (!fe)
		return -EINVAL;
	if (features & ~KNOWN_PROTOCOL_BITS)
		return -EINVAL; /* bit 23 and up: unknown or only proposed (erratum E11) */
	if (fe->have_protocol_offered && (features & ~fe->protocol_offered))
		return -EINVAL;
	if ((features & NEW_PROTOCOL_BITS) && !(fe->flags & VH_FRONTEND_F_TRUST_NEW_PROTOCOL_BITS))
		return -ENOTSUP;
	r = check_protocol_combination(features);
	if (r)
		return r;
	msg_init(&req, VH_USER_SET_PROTOCOL_FEATURES, 8);
	req.payload.u64 = features;
	r = transact(fe, &req, NULL, 0, EXPECT_NONE, NULL);
	if (r)
		return r;
	fe->protocol = features;
	return 0;
}

int vh_frontend_get_queue_num(struct vh_frontend *fe, uint64_t *num)
{
	return get_u64(fe, VH_USER_GET_QUEUE_NUM, num);
}

int vh_frontend_set_vring_enable(struct vh_frontend *fe, unsigned idx, int enable)
{
	return set_vring_state(fe, VH_USER_SET_VRING_ENABLE, idx, enable ? 1 : 0);
}

int vh_frontend_send_rarp(struct vh_frontend *fe, const uint8_t mac[6])
{
	struct vh_msg req;

	if (!fe || !mac)
		return -EINVAL;
	msg_init(&req, VH_USER_SEND_RARP, 8);
	memcpy(req.payload.bytes, mac, 6);
	return send_simple(fe, &req, NULL, 0);
}

int vh_frontend_net_set_mtu(struct vh_frontend *fe, uint64_t mtu)
{
	return set_u64(fe, VH_USER_NET_SET_MTU, mtu);
}

int vh_frontend_iotlb_msg(struct vh_frontend *fe, const struct vh_iotlb_msg *msg)
{
	struct vh_msg req;
	uint64_t end;

	if (!fe || !msg)
		return -EINVAL;
	switch (msg->type) {
	case VH_IOTLB_UPDATE:
		if (msg->perm < VH_ACCESS_RO || msg->perm > VH_ACCESS_RW)
			return -EINVAL;
		/* fall through */
	case VH_IOTLB_INVALIDATE:
		/* Never describe an empty or wrapping range: back-ends have hung on [0, ~0]. */
		if (msg->size == 0 || __builtin_add_overflow(msg->iova, msg->size - 1, &end))
			return -EINVAL;
		break;
	case VH_IOTLB_BATCH_BEGIN:
	case VH_IOTLB_BATCH_END:
		break;
	default:
		return -EINVAL;
	}
	msg_init(&req, VH_USER_IOTLB_MSG, sizeof(struct vh_iotlb_msg));
	req.payload.iotlb.iova = msg->iova;
	req.payload.iotlb.size = msg->size;
	req.payload.iotlb.uaddr = msg->uaddr;
	req.payload.iotlb.perm = msg->perm;
	req.payload.iotlb.type = msg->type;
	return send_simple(fe, &req, NULL, 0);
}

int vh_frontend_set_vring_endian(struct vh_frontend *fe, unsigned idx, unsigned big_endian)
{
	if (big_endian > 1)
		return -EINVAL;
	return set_vring_state(fe, VH_USER_SET_VRING_ENDIAN, idx, big_endian);
}

int vh_frontend_get_config(struct vh_frontend *fe, uint32_t offset, void *buf, uint32_t size,
			   uint32_t flags)
{
	struct vh_msg req;
	struct reply rep;
	int r;

	if (!fe || !buf || size == 0 || size > VH_USER_MAX_CONFIG_SIZE)
		return -EINVAL;
	msg_init(&req, VH_USER_GET_CONFIG, VH_CONFIG_HDR_SIZE + size);
	req.payload.config.offset = offset;
	req.payload.config.size = size;
	req.payload.config.flags = flags;
	r = transact(fe, &req, NULL, 0, EXPECT_AUTO, &rep);
	release(&rep);
	if (r)
		return r;
	if (rep.msg.hdr.size == 0)
		return -EIO;
	memcpy(buf, rep.msg.payload.config.region, size);
	return 0;
}

int vh_frontend_set_config(struct vh_frontend *fe, uint32_t offset, const void *buf,
			   uint32_t size, uint32_t flags)
{
	struct vh_msg req;

	if (!fe || !buf || size == 0 || size > VH_USER_MAX_CONFIG_SIZE)
		return -EINVAL;
	msg_init(&req, VH_USER_SET_CONFIG, VH_CONFIG_HDR_SIZE + size);
	req.payload.config.offset = offset;
	req.payload.config.size = size;
	req.payload.config.flags = flags;
	memcpy(req.payload.config.region, buf, size);
	return send_simple(fe, &req, NULL, 0);
}

int vh_frontend_create_crypto_session(struct vh_frontend *fe, const void *desc, size_t len,
				      void *reply_buf)
{
	struct vh_msg req;
	struct reply rep;
	int r;

	if (!fe || !desc || !reply_buf || len < 8 || len > VH_USER_MAX_PAYLOAD)
		return -EINVAL;
	msg_init(&req, VH_USER_CREATE_CRYPTO_SESSION, (uint32_t)len);
	memcpy(req.payload.bytes, desc, len);
	r = transact(fe, &req, NULL, 0, EXPECT_AUTO, &rep);
	release(&rep);
	if (r)
		return r;
	memcpy(reply_buf, rep.msg.payload.bytes, len);
	return 0;
}

int vh_frontend_close_crypto_session(struct vh_frontend *fe, uint64_t session_id)
{
	return set_u64(fe, VH_USER_CLOSE_CRYPTO_SESSION, session_id);
}

int vh_frontend_postcopy_advise(struct vh_frontend *fe, int *ufd_out)
{
	struct vh_msg req;
	struct reply rep;
	int r;

	if (!fe || !ufd_out)
		return -EINVAL;
	*ufd_out = -1;
	msg_init(&req, VH_USER_POSTCOPY_ADVISE, 0);
	r = transact(fe, &req, NULL, 0, EXPECT_AUTO, &rep);
	if (r)
		return r;
	*ufd_out = take_fd(&rep); /* check_reply allows at most one */
	return *ufd_out >= 0 ? 0 : -EIO;
}

int vh_frontend_postcopy_listen(struct vh_frontend *fe)
{
	int r = send_empty(fe, VH_USER_POSTCOPY_LISTEN, NULL, 0);

	if (!r)
		fe->postcopy_listening = 1;
	return r;
}

int vh_frontend_postcopy_end(struct vh_frontend *fe)
{
	int r = send_empty(fe, VH_USER_POSTCOPY_END, NULL, 0);

	if (!r) {
		fe->postcopy_listening = 0;
		fe->postcopy_n = 0;
	}
	return r;
}

int vh_frontend_postcopy_backend_table(const struct vh_frontend *fe, struct vh_mem_region *out,
				       unsigned max)
{
	unsigned n;

	if (!fe || (max && !out))
		return -EINVAL;
	n = fe->postcopy_n < max ? fe->postcopy_n : max;
	if (n)
		memcpy(out, fe->postcopy_table, n * sizeof(*out));
	return (int)fe->postcopy_n;
}

/* Makes sure the file cannot shrink any more: 0 if sealed (already or now), -1 if it cannot be
 * (not a memfd/tmpfs file, or created without MFD_ALLOW_SEALING, or F_SEAL_SEAL set without
 * F_SEAL_SHRINK). */
static int seal_shrink(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals >= 0 && (seals & F_SEAL_SHRINK))
		return 0;
	return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0 ? 0 : -1;
}

int vh_frontend_get_inflight_fd(struct vh_frontend *fe, uint16_t num_queues, uint16_t queue_size,
				struct vh_inflight *out, int *fd_out)
{
	struct vh_msg req;
	struct reply rep;
	struct stat st;
	uint64_t end;
	int r;

	if (!fe || !out || !fd_out)
		return -EINVAL;
	*fd_out = -1;
	if (num_queues == 0 || queue_size == 0 || queue_size > VH_VIRTQ_MAX_SIZE)
		return -EINVAL;
	msg_init(&req, VH_USER_GET_INFLIGHT_FD, VH_INFLIGHT_WIRE_SIZE);
	req.payload.inflight.num_queues = num_queues;
	req.payload.inflight.queue_size = queue_size;
	r = transact(fe, &req, NULL, 0, EXPECT_AUTO, &rep);
	if (r)
		return r;
	*out = rep.msg.payload.inflight;
	out->padding = 0;
	if (rep.msg.payload.inflight.mmap_size == 0) {
		/* The back-end keeps no inflight buffer (QEMU then goes on without one). */
		release(&rep);
		return 0;
	}
	/* The buffer must really be that large: mapping beyond the end of a file faults later. */
	end = rep.msg.payload.inflight.mmap_offset + rep.msg.payload.inflight.mmap_size;
	if (fstat(rep.fds[0], &st) || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size < end) {
		vhp_warn(&fe->log, "vhost-user front-end: inflight fd does not hold %llu bytes",
			 (unsigned long long)end);
		release(&rep);
		return fe_fail(fe, -EPROTO);
	}
	if (seal_shrink(rep.fds[0]) < 0) {
		if (fe->flags & VH_FRONTEND_F_REQUIRE_SEALED_INFLIGHT) {
			vhp_warn(&fe->log, "vhost-user front-end: inflight fd cannot be sealed "
				 "against shrinking: refused");
			release(&rep);
			return fe_fail(fe, -EPROTO);
		}
		vhp_warn(&fe->log, "vhost-user front-end: inflight fd cannot be sealed against "
			 "shrinking: the back-end could truncate it under our mapping");
	}
	*fd_out = take_fd(&rep);
	return 0;
}

int vh_frontend_set_inflight_fd(struct vh_frontend *fe, const struct vh_inflight *inflight, int fd)
{
	struct vh_msg req;
	uint64_t end;

	if (!fe || !inflight)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	if (inflight->mmap_size == 0 || inflight->num_queues == 0 || inflight->queue_size == 0 ||
	    __builtin_add_overflow(inflight->mmap_offset, inflight->mmap_size, &end))
		return -EINVAL;
	msg_init(&req, VH_USER_SET_INFLIGHT_FD, VH_INFLIGHT_WIRE_SIZE);
	req.payload.inflight = *inflight;
	req.payload.inflight.padding = 0; /* erratum E7: the tail padding goes out as zero */
	return send_simple(fe, &req, &fd, 1);
}

int vh_frontend_gpu_set_socket(struct vh_frontend *fe, int fd)
{
	if (fd < 0)
		return -EBADF;
	return send_empty(fe, VH_USER_GPU_SET_SOCKET, &fd, 1);
}

int vh_frontend_reset_device(struct vh_frontend *fe)
{
	return send_empty(fe, VH_USER_RESET_DEVICE, NULL, 0);
}

int vh_frontend_vring_kick(struct vh_frontend *fe, unsigned idx)
{
	return set_vring_state(fe, VH_USER_VRING_KICK, idx, 0);
}

int vh_frontend_get_max_mem_slots(struct vh_frontend *fe, uint64_t *slots)
{
	return get_u64(fe, VH_USER_GET_MAX_MEM_SLOTS, slots);
}

static int mem_reg(struct vh_frontend *fe, uint32_t request, const struct vh_mem_region *region,
		   int fd)
{
	struct vh_msg req;
	int r;

	if (!fe || !region)
		return -EINVAL;
	if (has_pf(fe, VH_USER_PROTOCOL_F_XEN_MMAP))
		return -EINVAL; /* would need the 48-byte XEN layout */
	r = vhp_fe_check_regions(region, 1);
	if (r)
		return r;
	msg_init(&req, request, sizeof(struct vh_mem_single));
	req.payload.mem_single.region = *region;
	if (request == VH_USER_REM_MEM_REG)
		req.payload.mem_single.region.mmap_offset = 0; /* ignored by the back-end */
	return send_simple(fe, &req, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
}

int vh_frontend_add_mem_reg(struct vh_frontend *fe, const struct vh_mem_region *region, int fd)
{
	if (fd < 0)
		return -EBADF;
	return mem_reg(fe, VH_USER_ADD_MEM_REG, region, fd);
}

int vh_frontend_rem_mem_reg(struct vh_frontend *fe, const struct vh_mem_region *region)
{
	return mem_reg(fe, VH_USER_REM_MEM_REG, region, -1);
}

int vh_frontend_set_status(struct vh_frontend *fe, uint8_t status)
{
	return set_u64(fe, VH_USER_SET_STATUS, status);
}

int vh_frontend_get_status(struct vh_frontend *fe, uint8_t *status)
{
	uint64_t v;
	int r;

	if (!status)
		return -EINVAL;
	r = get_u64(fe, VH_USER_GET_STATUS, &v);
	if (r)
		return r;
	if (v > 0xff) /* the virtio status is one byte */
		return fe_fail(fe, -EPROTO);
	*status = (uint8_t)v;
	return 0;
}

int vh_frontend_get_shared_object(struct vh_frontend *fe, const uint8_t uuid[16], int *fd_out)
{
	struct vh_msg req;
	struct reply rep;
	int r;

	if (!fe || !uuid || !fd_out)
		return -EINVAL;
	*fd_out = -1;
	msg_init(&req, VH_USER_GET_SHARED_OBJECT, sizeof(struct vh_shared_object));
	memcpy(req.payload.object.uuid, uuid, 16);
	r = transact(fe, &req, NULL, 0, EXPECT_AUTO, &rep);
	if (r)
		return r;
	if (rep.msg.payload.u64) {
		release(&rep);
		return -ENOENT;
	}
	*fd_out = take_fd(&rep);
	return 0;
}

int vh_frontend_set_device_state_fd(struct vh_frontend *fe, uint32_t direction, uint32_t phase,
				    int fd, int *reply_fd_out)
{
	struct vh_msg req;
	struct reply rep;
	int r;

	if (!fe || !reply_fd_out)
		return -EINVAL;
	*reply_fd_out = -1;
	if (fd < 0)
		return -EBADF;
	if (direction > VH_DEVICE_STATE_LOAD || phase != VH_DEVICE_STATE_PHASE_STOPPED)
		return -EINVAL;
	msg_init(&req, VH_USER_SET_DEVICE_STATE_FD, sizeof(struct vh_device_state_transfer));
	req.payload.transfer.direction = direction;
	req.payload.transfer.phase = phase;
	r = transact(fe, &req, &fd, 1, EXPECT_AUTO, &rep);
	if (r)
		return r;
	if (rep.msg.payload.u64 & 0xff) {
		release(&rep);
		return -EIO;
	}
	*reply_fd_out = take_fd(&rep); /* -1 when the back-end keeps our fd (NOFD) */
	return 0;
}

int vh_frontend_check_device_state(struct vh_frontend *fe)
{
	uint64_t v;
	int r = get_u64(fe, VH_USER_CHECK_DEVICE_STATE, &v);

	if (r)
		return r;
	return v ? -EIO : 0;
}

int vh_frontend_get_shmem_config(struct vh_frontend *fe, struct vh_shmem_config *out)
{
	struct vh_msg req;
	struct reply rep;
	int r;

	if (!fe || !out)
		return -EINVAL;
	msg_init(&req, VH_USER_GET_SHMEM_CONFIG, 0);
	r = transact(fe, &req, NULL, 0, EXPECT_AUTO, &rep);
	release(&rep);
	if (r)
		return r;
	fe->shmem = rep.msg.payload.shmem_config;
	fe->shmem.padding = 0;
	/* Sizes past nregions mean nothing; keep them zero so no check can use them. */
	for (uint32_t i = fe->shmem.nregions; i < VH_USER_MAX_SHMEM_REGIONS; i++)
		fe->shmem.memory_sizes[i] = 0;
	fe->have_shmem_config = 1;
	*out = fe->shmem;
	return 0;
}

/* ---- Back-end channel set-up --------------------------------------------------------------- */

int vh_frontend_set_backend_req_fd(struct vh_frontend *fe, const struct vh_frontend_backend_ops *ops,
				   void *opaque)
{
	struct vh_msg req;
	int sv[2];
	int r;

	if (!fe)
		return -EINVAL;
	if (fe->error)
		return fe->error;
	if (fe->busy)
		return -EBUSY;
	if (!has_pf(fe, VH_USER_PROTOCOL_F_BACKEND_REQ))
		return -ENOTSUP;
	r = vh_socketpair(sv);
	if (r)
		return r;
	vh_frontend_set_backend_ops(fe, ops, opaque);
	/* Installed before sending: the back-end may use it before it acks. */
	vhp_fe_channel_close(fe);
	vh_endpoint_init(&fe->chan, sv[0], "backend-channel");
	fe->chan.log = fe->log;
	fe->chan.timeout_ms = fe->timeout_ms;
	msg_init(&req, VH_USER_SET_BACKEND_REQ_FD, 0);
	r = send_simple(fe, &req, &sv[1], 1);
	vhp_close(sv[1]); /* the back-end has its own copy now */
	if (r)
		vhp_fe_channel_close(fe);
	return r;
}
