/* SPDX-License-Identifier: MIT */
/*
 * Test harness for the protocol suite: a libvhost back-end (backend.h) served by a dispatch
 * thread, connected to a libvhost front-end (frontend.h) over a socketpair, a listening back-end
 * or a listening front-end. The back-end's callbacks record what they were given (values and the
 * identity of every fd, captured while the fd is still open) so tests can compare it with what
 * the front-end sent.
 */
#ifndef LIBVHOST_PROTOCOL_HARNESS_H
#define LIBVHOST_PROTOCOL_HARNESS_H

#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <libvhost/backend.h>
#include <libvhost/endpoint.h>
#include <libvhost/frontend.h>
#include "testutil.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Identity of an open file: compared with t_same_file() style checks after the fd is gone. */
struct fid {
	dev_t dev;
	ino_t ino;
	int valid;
};

static inline struct fid fid_of(int fd)
{
	struct fid f = { 0, 0, 0 };
	struct stat st;

	if (fd >= 0 && !fstat(fd, &st)) {
		f.dev = st.st_dev;
		f.ino = st.st_ino;
		f.valid = 1;
	}
	return f;
}

static inline int fid_is(struct fid f, int fd)
{
	struct fid g = fid_of(fd);

	return f.valid && g.valid && f.dev == g.dev && f.ino == g.ino;
}

/* ---- What the back-end's callbacks saw ------------------------------------------------------ */

/* Which callback ran last (names follow backend.h's ops). */
enum be_op {
	BE_NONE = 0, BE_CONNECTED, BE_DISCONNECTED, BE_SET_FEATURES, BE_SET_PROTOCOL_FEATURES,
	BE_SET_OWNER, BE_RESET_OWNER, BE_RESET_DEVICE, BE_SET_MEM_TABLE, BE_ADD_MEM_REG,
	BE_REM_MEM_REG, BE_SET_LOG_BASE, BE_SET_LOG_FD, BE_SET_VRING_NUM, BE_SET_VRING_ADDR,
	BE_SET_VRING_BASE, BE_GET_VRING_BASE, BE_SET_VRING_KICK, BE_SET_VRING_CALL,
	BE_SET_VRING_ERR, BE_SET_VRING_ENABLE, BE_SET_VRING_ENDIAN, BE_VRING_KICK_INBAND,
	BE_SEND_RARP, BE_NET_SET_MTU, BE_IOTLB_MSG, BE_GET_CONFIG, BE_SET_CONFIG,
	BE_CREATE_CRYPTO_SESSION, BE_CLOSE_CRYPTO_SESSION, BE_POSTCOPY_ADVISE, BE_POSTCOPY_LISTEN,
	BE_POSTCOPY_END, BE_GET_INFLIGHT_FD, BE_SET_INFLIGHT_FD, BE_GPU_SET_SOCKET, BE_SET_STATUS,
	BE_GET_STATUS, BE_GET_SHARED_OBJECT, BE_SET_DEVICE_STATE_FD, BE_CHECK_DEVICE_STATE,
	BE_GET_SHMEM_CONFIG, BE_OP_COUNT
};

struct be_rec {
	pthread_mutex_t lock;
	enum be_op last;
	unsigned calls[BE_OP_COUNT];
	unsigned idx;
	uint64_t u64;         /* features, mtu, session id, status ... */
	uint64_t u64b;
	int fd_was_nofd;      /* vring fd callbacks: fd -1 */
	struct fid fids[VH_USER_MAX_FDS];
	unsigned nfids;
	struct vh_vring_addr addr;
	struct vh_backend_vring_base base;
	struct vh_backend_mem_region regions[VH_USER_MAX_TABLE_REGIONS];
	unsigned nregions;
	struct vh_log log;
	struct vh_iotlb_msg iotlb;
	struct vh_inflight inflight;
	uint8_t mac[6];
	uint8_t uuid[16];
	uint32_t cfg_offset, cfg_size, cfg_flags;
	uint8_t data[VH_USER_MAX_PAYLOAD];
	size_t len;
	uint32_t direction, phase;
};

/* How the test device behaves. */
struct be_behaviour {
	int fail[BE_OP_COUNT];        /* non-zero: the callback returns this (a negative errno) */
	uint8_t config[VH_USER_MAX_CONFIG_SIZE];
	uint16_t get_base_avail;      /* GET_VRING_BASE reports this avail index */
	int device_state_reply_fd;    /* return a pipe end of our own for SET_DEVICE_STATE_FD */
	struct fid device_state_reply_fid;
	struct fid inflight_fid;      /* the memfd GET_INFLIGHT_FD handed out */
	struct fid shared_object_fid;
	struct fid postcopy_fid;
	uint64_t postcopy_host_base;  /* host_addr = base + gpa for the postcopy table */
	uint32_t shmem_nregions;
	uint64_t shmem_sizes[4];
	/* A back-end channel request sent from inside the GET_CONFIG callback: the front-end must
	 * serve the channel while it waits for our reply. */
	int channel_request_in_get_config;
	int channel_request_result;
};

struct harness;

static inline struct harness *h_of(struct vh_backend *be);

/* ---- Front-end channel side ------------------------------------------------------------------ */

enum fe_op {
	FE_NONE = 0, FE_IOTLB, FE_CONFIG_CHANGE, FE_HOST_NOTIFIER, FE_VRING_CALL, FE_VRING_ERR,
	FE_SO_ADD, FE_SO_REMOVE, FE_SO_LOOKUP, FE_SHMEM_MAP, FE_SHMEM_UNMAP, FE_OP_COUNT
};

struct fe_rec {
	enum fe_op last;
	unsigned calls[FE_OP_COUNT];
	int fail;                 /* non-zero: every callback returns this */
	unsigned idx;
	struct fid fid;
	int fd_was_none;
	uint64_t size, offset;
	struct vh_iotlb_msg iotlb;
	uint8_t uuid[16];
	struct vh_shmem_mmap map;
	int lookup_fd;            /* handed out by shared_object_lookup (dup'ed per call) */
};

/* ---- The harness ---------------------------------------------------------------------------- */

enum topology { TOPO_SOCKETPAIR, TOPO_BACKEND_LISTENS, TOPO_FRONTEND_LISTENS };

static const char *const topo_names[] = { "socketpair", "backend-listens", "frontend-listens" };

struct harness {
	struct vh_backend *be;
	struct vh_frontend *fe;
	struct be_rec rec;
	struct be_behaviour beh;
	struct fe_rec ferec;
	enum topology topo;
	char path[108];

	pthread_t thread;
	int thread_running;
	int stop_fd;     /* eventfd: ends the dispatch thread */
	int call_fd;     /* eventfd: run call_fn on the dispatch thread */
	sem_t call_done;
	void (*call_fn)(struct harness *, void *);
	void *call_arg;
	/* Written by the dispatch thread. */
	int last_error;          /* last non-zero, non-EAGAIN result of vh_backend_dispatch */
	unsigned errors;
	unsigned dispatched;
};

/* be opaque -> harness */
static inline struct harness *h_of(struct vh_backend *be)
{
	return vh_backend_opaque(be);
}

#define REC_BEGIN(be, op)                                       \
	struct harness *h_ = h_of(be);                          \
	struct be_rec *rec = &h_->rec;                          \
	pthread_mutex_lock(&rec->lock);                         \
	rec->last = (op);                                       \
	rec->calls[(op)]++;                                     \
	int ret_ = h_->beh.fail[(op)]

#define REC_END()                                               \
	pthread_mutex_unlock(&rec->lock);                       \
	return ret_

static int be_connected(struct vh_backend *be)
{
	REC_BEGIN(be, BE_CONNECTED);
	REC_END();
}

static void be_disconnected(struct vh_backend *be)
{
	struct harness *h = h_of(be);

	pthread_mutex_lock(&h->rec.lock);
	h->rec.last = BE_DISCONNECTED;
	h->rec.calls[BE_DISCONNECTED]++;
	pthread_mutex_unlock(&h->rec.lock);
}

static int be_set_features(struct vh_backend *be, uint64_t f)
{
	REC_BEGIN(be, BE_SET_FEATURES);
	rec->u64 = f;
	REC_END();
}

static int be_set_protocol_features(struct vh_backend *be, uint64_t f)
{
	REC_BEGIN(be, BE_SET_PROTOCOL_FEATURES);
	rec->u64 = f;
	REC_END();
}

static int be_set_owner(struct vh_backend *be)
{
	REC_BEGIN(be, BE_SET_OWNER);
	REC_END();
}

static int be_reset_owner(struct vh_backend *be)
{
	REC_BEGIN(be, BE_RESET_OWNER);
	REC_END();
}

static int be_reset_device(struct vh_backend *be)
{
	REC_BEGIN(be, BE_RESET_DEVICE);
	REC_END();
}

static int be_set_mem_table(struct vh_backend *be, struct vh_backend_mem_region *regions,
			    unsigned n, int *fds)
{
	REC_BEGIN(be, BE_SET_MEM_TABLE);
	rec->nregions = n;
	rec->nfids = n;
	for (unsigned i = 0; i < n && i < VH_USER_MAX_TABLE_REGIONS; i++) {
		rec->regions[i] = regions[i];
		rec->fids[i] = fid_of(fds[i]);
		/* postcopy: tell the front-end where "we" mapped it */
		regions[i].host_addr = h_->beh.postcopy_host_base + regions[i].r.guest_phys_addr;
	}
	REC_END();
}

static int be_add_mem_reg(struct vh_backend *be, const struct vh_backend_mem_region *region,
			  int *fd)
{
	REC_BEGIN(be, BE_ADD_MEM_REG);
	rec->regions[0] = *region;
	rec->nregions = 1;
	rec->fids[0] = fid_of(*fd);
	rec->nfids = 1;
	REC_END();
}

static int be_rem_mem_reg(struct vh_backend *be, const struct vh_backend_mem_region *region)
{
	REC_BEGIN(be, BE_REM_MEM_REG);
	rec->regions[0] = *region;
	rec->nregions = 1;
	REC_END();
}

static int be_set_log_base(struct vh_backend *be, const struct vh_log *log, int *fd)
{
	REC_BEGIN(be, BE_SET_LOG_BASE);
	rec->log = *log;
	rec->fids[0] = fid_of(*fd);
	rec->nfids = 1;
	REC_END();
}

static int be_set_log_fd(struct vh_backend *be, int fd)
{
	REC_BEGIN(be, BE_SET_LOG_FD);
	rec->fids[0] = fid_of(fd);
	rec->nfids = 1;
	REC_END();
}

static int be_set_vring_num(struct vh_backend *be, unsigned idx, uint32_t num)
{
	REC_BEGIN(be, BE_SET_VRING_NUM);
	rec->idx = idx;
	rec->u64 = num;
	REC_END();
}

static int be_set_vring_addr(struct vh_backend *be, unsigned idx, const struct vh_vring_addr *a)
{
	REC_BEGIN(be, BE_SET_VRING_ADDR);
	rec->idx = idx;
	rec->addr = *a;
	REC_END();
}

static int be_set_vring_base(struct vh_backend *be, unsigned idx,
			     const struct vh_backend_vring_base *b)
{
	REC_BEGIN(be, BE_SET_VRING_BASE);
	rec->idx = idx;
	rec->base = *b;
	REC_END();
}

static int be_get_vring_base(struct vh_backend *be, unsigned idx, struct vh_backend_vring_base *b)
{
	REC_BEGIN(be, BE_GET_VRING_BASE);
	rec->idx = idx;
	rec->base = *b;
	if (h_->beh.get_base_avail) {
		b->last_avail_idx = h_->beh.get_base_avail;
		b->last_used_idx = h_->beh.get_base_avail;
	}
	REC_END();
}

static int vring_fd_rec(struct vh_backend *be, enum be_op op, unsigned idx, int fd)
{
	REC_BEGIN(be, op);
	rec->idx = idx;
	rec->fd_was_nofd = fd < 0;
	rec->fids[0] = fid_of(fd);
	rec->nfids = fd >= 0;
	REC_END();
}

static int be_set_vring_kick(struct vh_backend *be, unsigned idx, int fd)
{
	return vring_fd_rec(be, BE_SET_VRING_KICK, idx, fd);
}

static int be_set_vring_call(struct vh_backend *be, unsigned idx, int fd)
{
	return vring_fd_rec(be, BE_SET_VRING_CALL, idx, fd);
}

static int be_set_vring_err(struct vh_backend *be, unsigned idx, int fd)
{
	return vring_fd_rec(be, BE_SET_VRING_ERR, idx, fd);
}

static int be_set_vring_enable(struct vh_backend *be, unsigned idx, int enable)
{
	REC_BEGIN(be, BE_SET_VRING_ENABLE);
	rec->idx = idx;
	rec->u64 = (uint64_t)enable;
	REC_END();
}

static int be_set_vring_endian(struct vh_backend *be, unsigned idx, int big)
{
	REC_BEGIN(be, BE_SET_VRING_ENDIAN);
	rec->idx = idx;
	rec->u64 = (uint64_t)big;
	REC_END();
}

static int be_vring_kick_inband(struct vh_backend *be, unsigned idx)
{
	REC_BEGIN(be, BE_VRING_KICK_INBAND);
	rec->idx = idx;
	REC_END();
}

static int be_send_rarp(struct vh_backend *be, const uint8_t mac[6])
{
	REC_BEGIN(be, BE_SEND_RARP);
	memcpy(rec->mac, mac, 6);
	REC_END();
}

static int be_net_set_mtu(struct vh_backend *be, uint64_t mtu)
{
	REC_BEGIN(be, BE_NET_SET_MTU);
	rec->u64 = mtu;
	REC_END();
}

static int be_iotlb_msg(struct vh_backend *be, const struct vh_iotlb_msg *m)
{
	REC_BEGIN(be, BE_IOTLB_MSG);
	rec->iotlb = *m;
	REC_END();
}

static int be_get_config(struct vh_backend *be, uint32_t offset, uint32_t size, uint8_t *buf)
{
	struct harness *h = h_of(be);
	int ret;

	/* Outside the record lock: the front-end serves this request on its channel while it
	 * waits for our reply. */
	if (h->beh.channel_request_in_get_config)
		h->beh.channel_request_result = vh_backend_send_config_change(be);
	{
		REC_BEGIN(be, BE_GET_CONFIG);
		rec->cfg_offset = offset;
		rec->cfg_size = size;
		if ((uint64_t)offset + size <= sizeof(h_->beh.config))
			memcpy(buf, h_->beh.config + offset, size);
		ret = ret_;
		pthread_mutex_unlock(&rec->lock);
	}
	return ret;
}

static int be_set_config(struct vh_backend *be, uint32_t offset, uint32_t size, uint32_t flags,
			 const uint8_t *buf)
{
	REC_BEGIN(be, BE_SET_CONFIG);
	rec->cfg_offset = offset;
	rec->cfg_size = size;
	rec->cfg_flags = flags;
	memcpy(rec->data, buf, size);
	rec->len = size;
	if (!ret_ && (uint64_t)offset + size <= sizeof(h_->beh.config))
		memcpy(h_->beh.config + offset, buf, size);
	REC_END();
}

/* The session id travels in the first 8 bytes of the reply in this test's "layout". */
#define TEST_SESSION_ID 0x5e55101d

static int be_create_crypto_session(struct vh_backend *be, const void *req, size_t len,
				    void *reply)
{
	REC_BEGIN(be, BE_CREATE_CRYPTO_SESSION);
	uint64_t id = TEST_SESSION_ID;

	memcpy(rec->data, req, len);
	rec->len = len;
	memcpy(reply, &id, sizeof(id));
	REC_END();
}

static int be_close_crypto_session(struct vh_backend *be, uint64_t id)
{
	REC_BEGIN(be, BE_CLOSE_CRYPTO_SESSION);
	rec->u64 = id;
	REC_END();
}

static int be_postcopy_advise(struct vh_backend *be, int *fd_out)
{
	REC_BEGIN(be, BE_POSTCOPY_ADVISE);
	/* Any fd stands in for the userfaultfd: the test checks it arrives intact. */
	if (!ret_) {
		*fd_out = t_memfd("uffd-stand-in", 0);
		h_->beh.postcopy_fid = fid_of(*fd_out);
	}
	REC_END();
}

static int be_postcopy_listen(struct vh_backend *be)
{
	REC_BEGIN(be, BE_POSTCOPY_LISTEN);
	REC_END();
}

static int be_postcopy_end(struct vh_backend *be)
{
	REC_BEGIN(be, BE_POSTCOPY_END);
	REC_END();
}

#define INFLIGHT_MAGIC 0x1f11647a

static int be_get_inflight_fd(struct vh_backend *be, const struct vh_inflight *req,
			      struct vh_inflight *reply, int *fd_out)
{
	REC_BEGIN(be, BE_GET_INFLIGHT_FD);
	rec->inflight = *req;
	if (!ret_) {
		uint64_t size = 4096;
		uint32_t magic = INFLIGHT_MAGIC;
		int fd = t_memfd("inflight", size);

		if (fd >= 0 && pwrite(fd, &magic, sizeof(magic), 0) == sizeof(magic)) {
			reply->mmap_size = size;
			reply->mmap_offset = 0;
			*fd_out = fd;
			h_->beh.inflight_fid = fid_of(fd);
		} else {
			ret_ = -EIO;
			if (fd >= 0)
				close(fd);
		}
	}
	REC_END();
}

static int be_set_inflight_fd(struct vh_backend *be, const struct vh_inflight *inf, int *fd)
{
	REC_BEGIN(be, BE_SET_INFLIGHT_FD);
	rec->inflight = *inf;
	rec->fids[0] = fid_of(*fd);
	rec->nfids = 1;
	REC_END();
}

static int be_gpu_set_socket(struct vh_backend *be, int *fd)
{
	REC_BEGIN(be, BE_GPU_SET_SOCKET);
	rec->fids[0] = fid_of(*fd);
	rec->nfids = 1;
	REC_END();
}

static int be_set_status(struct vh_backend *be, uint8_t status)
{
	REC_BEGIN(be, BE_SET_STATUS);
	rec->u64 = status;
	REC_END();
}

static int be_get_status(struct vh_backend *be, uint8_t *status)
{
	REC_BEGIN(be, BE_GET_STATUS);
	(void)status; /* keep the server's byte */
	REC_END();
}

static int be_get_shared_object(struct vh_backend *be, const uint8_t uuid[16], int *fd_out)
{
	REC_BEGIN(be, BE_GET_SHARED_OBJECT);
	memcpy(rec->uuid, uuid, 16);
	if (!ret_) {
		*fd_out = t_memfd("dmabuf-stand-in", 4096);
		h_->beh.shared_object_fid = fid_of(*fd_out);
	}
	REC_END();
}

static int be_set_device_state_fd(struct vh_backend *be, uint32_t direction, uint32_t phase,
				  int *fd, int *reply_fd)
{
	REC_BEGIN(be, BE_SET_DEVICE_STATE_FD);
	rec->direction = direction;
	rec->phase = phase;
	rec->fids[0] = fid_of(*fd);
	rec->nfids = 1;
	if (!ret_ && h_->beh.device_state_reply_fd) {
		int p[2];

		if (!pipe2(p, O_CLOEXEC)) {
			close(p[1]);
			*reply_fd = p[0];
			h_->beh.device_state_reply_fid = fid_of(p[0]);
		}
	}
	REC_END();
}

static int be_check_device_state(struct vh_backend *be)
{
	REC_BEGIN(be, BE_CHECK_DEVICE_STATE);
	REC_END();
}

static int be_get_shmem_config(struct vh_backend *be, struct vh_shmem_config *cfg)
{
	REC_BEGIN(be, BE_GET_SHMEM_CONFIG);
	cfg->nregions = h_->beh.shmem_nregions;
	for (unsigned i = 0; i < h_->beh.shmem_nregions && i < 4; i++)
		cfg->memory_sizes[i] = h_->beh.shmem_sizes[i];
	REC_END();
}

static const struct vh_backend_ops test_be_ops = {
	.connected = be_connected,
	.disconnected = be_disconnected,
	.set_features = be_set_features,
	.set_protocol_features = be_set_protocol_features,
	.set_owner = be_set_owner,
	.reset_owner = be_reset_owner,
	.reset_device = be_reset_device,
	.set_mem_table = be_set_mem_table,
	.add_mem_reg = be_add_mem_reg,
	.rem_mem_reg = be_rem_mem_reg,
	.set_log_base = be_set_log_base,
	.set_log_fd = be_set_log_fd,
	.set_vring_num = be_set_vring_num,
	.set_vring_addr = be_set_vring_addr,
	.set_vring_base = be_set_vring_base,
	.get_vring_base = be_get_vring_base,
	.set_vring_kick = be_set_vring_kick,
	.set_vring_call = be_set_vring_call,
	.set_vring_err = be_set_vring_err,
	.set_vring_enable = be_set_vring_enable,
	.set_vring_endian = be_set_vring_endian,
	.vring_kick_inband = be_vring_kick_inband,
	.send_rarp = be_send_rarp,
	.net_set_mtu = be_net_set_mtu,
	.iotlb_msg = be_iotlb_msg,
	.get_config = be_get_config,
	.set_config = be_set_config,
	.create_crypto_session = be_create_crypto_session,
	.close_crypto_session = be_close_crypto_session,
	.postcopy_advise = be_postcopy_advise,
	.postcopy_listen = be_postcopy_listen,
	.postcopy_end = be_postcopy_end,
	.get_inflight_fd = be_get_inflight_fd,
	.set_inflight_fd = be_set_inflight_fd,
	.gpu_set_socket = be_gpu_set_socket,
	.set_status = be_set_status,
	.get_status = be_get_status,
	.get_shared_object = be_get_shared_object,
	.set_device_state_fd = be_set_device_state_fd,
	.check_device_state = be_check_device_state,
	.get_shmem_config = be_get_shmem_config,
};

/* ---- Front-end channel callbacks ------------------------------------------------------------- */

static int fe_iotlb(void *op, const struct vh_iotlb_msg *m)
{
	struct fe_rec *r = op;

	r->last = FE_IOTLB;
	r->calls[FE_IOTLB]++;
	r->iotlb = *m;
	return r->fail;
}

static int fe_config_change(void *op)
{
	struct fe_rec *r = op;

	r->last = FE_CONFIG_CHANGE;
	r->calls[FE_CONFIG_CHANGE]++;
	return r->fail;
}

static int fe_host_notifier(void *op, unsigned idx, int fd, uint64_t size, uint64_t offset)
{
	struct fe_rec *r = op;

	r->last = FE_HOST_NOTIFIER;
	r->calls[FE_HOST_NOTIFIER]++;
	r->idx = idx;
	r->fd_was_none = fd < 0;
	r->fid = fid_of(fd);
	r->size = size;
	r->offset = offset;
	return r->fail;
}

static int fe_vring_call(void *op, unsigned idx)
{
	struct fe_rec *r = op;

	r->last = FE_VRING_CALL;
	r->calls[FE_VRING_CALL]++;
	r->idx = idx;
	return r->fail;
}

static int fe_vring_err(void *op, unsigned idx)
{
	struct fe_rec *r = op;

	r->last = FE_VRING_ERR;
	r->calls[FE_VRING_ERR]++;
	r->idx = idx;
	return r->fail;
}

static int fe_so_add(void *op, const uint8_t uuid[16])
{
	struct fe_rec *r = op;

	r->last = FE_SO_ADD;
	r->calls[FE_SO_ADD]++;
	memcpy(r->uuid, uuid, 16);
	return r->fail;
}

static int fe_so_remove(void *op, const uint8_t uuid[16])
{
	struct fe_rec *r = op;

	r->last = FE_SO_REMOVE;
	r->calls[FE_SO_REMOVE]++;
	memcpy(r->uuid, uuid, 16);
	return r->fail;
}

static int fe_so_lookup(void *op, const uint8_t uuid[16], int *fd_out)
{
	struct fe_rec *r = op;

	r->last = FE_SO_LOOKUP;
	r->calls[FE_SO_LOOKUP]++;
	memcpy(r->uuid, uuid, 16);
	if (r->fail)
		return r->fail;
	*fd_out = r->lookup_fd >= 0 ? fcntl(r->lookup_fd, F_DUPFD_CLOEXEC, 0) : -1;
	return 0;
}

static int fe_shmem_map(void *op, const struct vh_shmem_mmap *m, int fd)
{
	struct fe_rec *r = op;

	r->last = FE_SHMEM_MAP;
	r->calls[FE_SHMEM_MAP]++;
	r->map = *m;
	r->fid = fid_of(fd);
	return r->fail;
}

static int fe_shmem_unmap(void *op, const struct vh_shmem_mmap *m)
{
	struct fe_rec *r = op;

	r->last = FE_SHMEM_UNMAP;
	r->calls[FE_SHMEM_UNMAP]++;
	r->map = *m;
	return r->fail;
}

static const struct vh_frontend_backend_ops test_fe_ops = {
	.iotlb_msg = fe_iotlb,
	.config_change = fe_config_change,
	.vring_host_notifier = fe_host_notifier,
	.vring_call = fe_vring_call,
	.vring_err = fe_vring_err,
	.shared_object_add = fe_so_add,
	.shared_object_remove = fe_so_remove,
	.shared_object_lookup = fe_so_lookup,
	.shmem_map = fe_shmem_map,
	.shmem_unmap = fe_shmem_unmap,
};

/* ---- Dispatch thread ------------------------------------------------------------------------- */

static void *h_dispatch_thread(void *arg)
{
	struct harness *h = arg;

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = vh_backend_fd(h->be), .events = POLLIN },
			{ .fd = h->stop_fd, .events = POLLIN },
			{ .fd = h->call_fd, .events = POLLIN },
		};
		int r;

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (p[2].revents) {
			uint64_t v;

			if (read(h->call_fd, &v, sizeof(v)) == sizeof(v)) {
				h->call_fn(h, h->call_arg);
				sem_post(&h->call_done);
			}
			continue;
		}
		if (!p[0].revents)
			continue;
		r = vh_backend_dispatch(h->be);
		h->dispatched++;
		if (r && r != -EAGAIN) {
			h->last_error = r;
			h->errors++;
		}
	}
	return NULL;
}

/* Runs fn on the dispatch thread (the back-end's accessors belong to it) and waits. */
static inline void h_call(struct harness *h, void (*fn)(struct harness *, void *), void *arg)
{
	uint64_t one = 1;

	if (!h->thread_running) {
		fn(h, arg);
		return;
	}
	h->call_fn = fn;
	h->call_arg = arg;
	if (write(h->call_fd, &one, sizeof(one)) != sizeof(one))
		T_FAIL("eventfd write");
	while (sem_wait(&h->call_done) && errno == EINTR)
		;
}

static inline void h_start_thread(struct harness *h)
{
	if (h->thread_running)
		return;
	if (pthread_create(&h->thread, NULL, h_dispatch_thread, h))
		T_FAIL("pthread_create");
	else
		h->thread_running = 1;
}

static inline void h_stop_thread(struct harness *h)
{
	uint64_t one = 1, v;

	if (!h->thread_running)
		return;
	if (write(h->stop_fd, &one, sizeof(one)) != sizeof(one))
		T_FAIL("eventfd write");
	pthread_join(h->thread, NULL);
	h->thread_running = 0;
	if (read(h->stop_fd, &v, sizeof(v)) != sizeof(v))
		T_FAIL("eventfd read");
}

/* Waits (bounded) until the dispatch thread has seen `n` errors in total. */
static inline int h_wait_errors(struct harness *h, unsigned n, int ms)
{
	int64_t end = t_now_ms() + ms;

	while (__atomic_load_n(&h->errors, __ATOMIC_ACQUIRE) < n && t_now_ms() < end)
		t_sleep_ms(2);
	return __atomic_load_n(&h->errors, __ATOMIC_ACQUIRE) >= n;
}

/* Default back-end: every protocol feature the tests need, four queues, a 256-byte config. */
#define H_FEATURES (VH_BIT(VH_F_VERSION_1) | VH_BIT(VH_F_ACCESS_PLATFORM) | VH_BIT(VH_F_LOG_ALL) | \
		    VH_BIT(VH_F_EVENT_IDX) | VH_BIT(VH_F_INDIRECT_DESC))
#define H_PROTOCOL_ALL ((VH_BIT(VH_USER_PROTOCOL_F_MAX + 1) - 1))
#define H_NQ 4u

static inline void h_default_config(struct vh_backend_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->features = H_FEATURES;
	cfg->protocol_features = H_PROTOCOL_ALL;
	cfg->num_queues = H_NQ;
	cfg->max_queue_size = 1024;
	cfg->max_mem_slots = 32;
	cfg->config_size = 256;
	cfg->timeout_ms = 2000;
}

/* Creates the back-end (not connected, no thread). */
static inline int h_init(struct harness *h, const struct vh_backend_config *cfg_in)
{
	struct vh_backend_config cfg;
	int r;

	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->rec.lock, NULL);
	sem_init(&h->call_done, 0, 0);
	h->stop_fd = eventfd(0, EFD_CLOEXEC);
	h->call_fd = eventfd(0, EFD_CLOEXEC);
	h->ferec.lookup_fd = -1;
	for (unsigned i = 0; i < sizeof(h->beh.config); i++)
		h->beh.config[i] = (uint8_t)(i * 7 + 3);
	if (cfg_in)
		cfg = *cfg_in;
	else
		h_default_config(&cfg);
	r = vh_backend_new(&h->be, &cfg, &test_be_ops, h);
	if (r)
		T_FAIL("vh_backend_new: %d", r);
	return r;
}

/* Connects a new front-end according to topology (the back-end keeps its listener, if any). */
static inline int h_connect(struct harness *h, enum topology topo,
			    const struct vh_frontend_config *fecfg)
{
	int r, fd = -1;

	h->topo = topo;
	switch (topo) {
	case TOPO_SOCKETPAIR: {
		int sv[2];

		r = vh_socketpair(sv);
		if (r)
			return r;
		r = vh_backend_set_connection(h->be, sv[0]);
		if (r) {
			close(sv[1]);
			return r;
		}
		fd = sv[1];
		break;
	}
	case TOPO_BACKEND_LISTENS:
		if (!h->path[0]) {
			t_sock_path(h->path, sizeof(h->path), "be");
			r = vh_backend_listen(h->be, h->path);
			if (r)
				return r;
		}
		h_start_thread(h);
		return vh_frontend_connect(&h->fe, h->path, fecfg);
	case TOPO_FRONTEND_LISTENS: {
		int l;

		t_sock_path(h->path, sizeof(h->path), "fe");
		l = vh_socket_listen(h->path);
		if (l < 0)
			return l;
		r = vh_backend_connect(h->be, h->path);
		if (r) {
			close(l);
			unlink(h->path);
			return r;
		}
		fd = vh_socket_accept(l);
		close(l);
		unlink(h->path);
		h->path[0] = 0;
		if (fd < 0)
			return fd;
		break;
	}
	}
	r = vh_frontend_new(&h->fe, fd, fecfg);
	if (r)
		return r;
	h_start_thread(h);
	return 0;
}

/* Ends the front-end side; the back-end notices the hang-up on its own. */
static inline void h_disconnect(struct harness *h)
{
	vh_frontend_free(h->fe);
	h->fe = NULL;
}

static inline void h_fini(struct harness *h)
{
	h_disconnect(h);
	h_stop_thread(h);
	vh_backend_free(h->be);
	h->be = NULL;
	if (h->path[0])
		unlink(h->path);
	close(h->stop_fd);
	close(h->call_fd);
	sem_destroy(&h->call_done);
	pthread_mutex_destroy(&h->rec.lock);
	if (h->ferec.lookup_fd >= 0)
		close(h->ferec.lookup_fd);
}

/* Snapshot of the record (the dispatch thread writes it under the lock). */
static inline struct be_rec h_rec(struct harness *h)
{
	struct be_rec r;

	pthread_mutex_lock(&h->rec.lock);
	r = h->rec;
	pthread_mutex_unlock(&h->rec.lock);
	return r;
}

/* Back-end state read on its own thread. */
struct be_state {
	int connected, owner, has_channel, log_fd_valid;
	uint64_t features, protocol_features;
	uint8_t status;
	struct vh_backend_vring vr[H_NQ];
	struct fid kick[H_NQ], call[H_NQ], err[H_NQ], log_fid;
	struct vh_backend_mem_region regions[64];
	int nregions;
};

static void h_read_state(struct harness *h, void *arg)
{
	struct be_state *s = arg;
	unsigned nq = vh_backend_num_queues(h->be);

	memset(s, 0, sizeof(*s));
	s->connected = vh_backend_is_connected(h->be);
	s->owner = vh_backend_has_owner(h->be);
	s->has_channel = vh_backend_has_channel(h->be);
	s->features = vh_backend_features(h->be);
	s->protocol_features = vh_backend_protocol_features(h->be);
	s->status = vh_backend_status(h->be);
	s->log_fid = fid_of(vh_backend_log_fd(h->be));
	for (unsigned i = 0; i < H_NQ && i < nq; i++) {
		vh_backend_get_vring(h->be, i, &s->vr[i]);
		s->kick[i] = fid_of(s->vr[i].kick_fd);
		s->call[i] = fid_of(s->vr[i].call_fd);
		s->err[i] = fid_of(s->vr[i].err_fd);
	}
	s->nregions = vh_backend_get_mem_table(h->be, s->regions, 64);
}

static inline struct be_state h_state(struct harness *h)
{
	struct be_state s;

	h_call(h, h_read_state, &s);
	return s;
}

#endif
