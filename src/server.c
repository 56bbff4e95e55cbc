/* SPDX-License-Identifier: MIT */
/*
 * Back-end framework: the vh_backend callbacks that turn protocol requests into server state
 * (guest memory, vring lifecycle, dirty log, status, features), connection handling and the
 * event-loop agnostic entry points. The data path is in server_queue.c, inflight tracking in
 * inflight.c, the daemon in server_run.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server_priv.h"

#define VHP_STATUS_NEEDS_RESET 0x40u

static struct vh_server *srv(struct vh_backend *be)
{
	return vh_backend_opaque(be);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* A notification fd: anything pollable (eventfd, pipe, socket), never a file or directory.
 * Made non-blocking so a peer that never drains it cannot stall a worker. */
static int notify_fd_ok(struct vh_server *s, int fd, const char *what, unsigned idx)
{
	struct stat st;
	int r;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
		vhp_warn(SLOG(s), "server: queue %u: %s fd is not pollable", idx, what);
		return -EINVAL;
	}
	r = set_nonblock(fd);
	if (r)
		vhp_warn(SLOG(s), "server: queue %u: %s fd: %d", idx, what, r);
	return r;
}

static int inband(const struct vh_server *s)
{
	return (s->protocol & VH_BIT(VH_USER_PROTOCOL_F_INBAND_NOTIFICATIONS)) != 0;
}

/* Passes every queue lock once: after it, no worker still uses a value replaced before. */
static void queue_barrier(struct vh_server *s)
{
	for (unsigned i = 0; i < s->nq; i++) {
		vhp_q_lock(&s->queues[i]);
		vhp_q_unlock(&s->queues[i]);
	}
}

static void apply_log_all(struct vh_server *s)
{
	for (unsigned i = 0; i < s->nq; i++) {
		struct vh_server_queue *q = &s->queues[i];

		vhp_q_lock(q);
		vhp_queue_apply_log(q);
		vhp_q_unlock(q);
	}
}

static void stop_all(struct vh_server *s)
{
	for (unsigned i = 0; i < s->nq; i++)
		(void)vhp_queue_stop(s, i, NULL);
}

/* Forgets the vring fds the vh_backend is about to close, and the enable state. */
static void forget_vring_fds(struct vh_server *s)
{
	for (unsigned i = 0; i < s->nq; i++) {
		struct vh_server_queue *q = &s->queues[i];

		vhp_q_lock(q);
		q->call_fd = -1;
		q->err_fd = -1;
		q->call_inband = 0;
		q->err_inband = 0;
		__atomic_store_n(&q->enabled, 0, __ATOMIC_RELAXED);
		vhp_q_unlock(q);
	}
}

static void drop_log(struct vh_server *s)
{
	struct vh_dirty_log *old = s->dlog;

	s->dlog = NULL;
	s->log_all = 0;
	__atomic_store_n(&s->log_fd, -1, __ATOMIC_RELAXED);
	apply_log_all(s);
	if (old) {
		vh_dirty_log_clear(old);
		free(old);
	}
}

static void drop_memory(struct vh_server *s)
{
	struct vh_memory *empty = NULL;

	if (vh_memory_new_empty(&empty, SLOG(s)) == 0) {
		/* Queues are stopped: this cannot be refused. */
		if (vhp_queue_set_memory(s, empty))
			vh_memory_unref(empty);
	}
	vhp_queue_reclaim(s);
}

/* Everything that belongs to a connection (or an owner): rings, memory, log, inflight. */
static void reset_state(struct vh_server *s, int memory_too)
{
	stop_all(s);
	forget_vring_fds(s);
	__atomic_store_n(&s->features, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->needs_reset, 0, __ATOMIC_RELAXED);
	s->status = 0;
	if (memory_too) {
		drop_log(s);
		drop_memory(s);
		vhp_inflight_unmap(s);
		s->protocol = 0;
	} else {
		s->log_all = 0;
		apply_log_all(s);
	}
}

/* ---- Connection and reset ------------------------------------------------------------------ */

static int cb_connected(struct vh_backend *be)
{
	struct vh_server *s = srv(be);

	if (s->ops.connected)
		s->ops.connected(s->opaque);
	return 0;
}

static void cb_disconnected(struct vh_backend *be)
{
	struct vh_server *s = srv(be);

	reset_state(s, 1);
	if (s->ops.disconnected)
		s->ops.disconnected(s->opaque);
}

static int cb_reset_owner(struct vh_backend *be)
{
	struct vh_server *s = srv(be);

	reset_state(s, 1);
	if (s->ops.reset)
		s->ops.reset(s->opaque);
	return 0;
}

static int cb_reset_device(struct vh_backend *be)
{
	struct vh_server *s = srv(be);

	reset_state(s, 0);
	if (s->ops.reset)
		s->ops.reset(s->opaque);
	return 0;
}

/* ---- Features and status --------------------------------------------------------------------- */

static int cb_set_features(struct vh_backend *be, uint64_t features)
{
	struct vh_server *s = srv(be);
	int log_all = (features & VH_BIT(VH_F_LOG_ALL)) != 0;

	if (s->ops.set_features) {
		int r = s->ops.set_features(s->opaque, features);

		if (r)
			return r < 0 ? r : -EINVAL;
	}
	__atomic_store_n(&s->features, features, __ATOMIC_RELAXED);
	/* LOG_ALL may be toggled while rings run (migration); both ways take effect now. */
	if (log_all != s->log_all) {
		s->log_all = log_all;
		apply_log_all(s);
	}
	return 0;
}

static int cb_set_protocol_features(struct vh_backend *be, uint64_t pf)
{
	srv(be)->protocol = pf;
	return 0;
}

static int cb_set_status(struct vh_backend *be, uint8_t status)
{
	struct vh_server *s = srv(be);

	/* Writing 0 resets the device status, NEEDS_RESET included. Rings are not touched here:
	 * QEMU writes 0 before GET_VRING_BASE on stop. */
	if (status == 0)
		__atomic_store_n(&s->needs_reset, 0, __ATOMIC_RELAXED);
	s->status = status;
	return 0;
}

static int cb_get_status(struct vh_backend *be, uint8_t *status)
{
	struct vh_server *s = srv(be);

	if (__atomic_load_n(&s->needs_reset, __ATOMIC_ACQUIRE))
		*status |= VHP_STATUS_NEEDS_RESET;
	return 0;
}

/* ---- Memory ------------------------------------------------------------------------------ */

/* Installs a table just built by a vh_memory call that returned ret. */
static int install_memory(struct vh_server *s, int ret, struct vh_memory *mem)
{
	if (ret)
		return ret;
	ret = vhp_queue_set_memory(s, mem);
	if (ret)
		vh_memory_unref(mem);
	return ret;
}

static int cb_set_mem_table(struct vh_backend *be, struct vh_backend_mem_region *regions,
			    unsigned n, int *fds)
{
	struct vh_server *s = srv(be);
	struct vh_mem_region r[VH_USER_MAX_TABLE_REGIONS];
	struct vh_memory *mem = NULL;
	int ret;

	if (n > VH_USER_MAX_TABLE_REGIONS)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		r[i] = regions[i].r;
	/* Regions identical to ones already mapped keep their mapping (and ring pointers). */
	ret = vh_memory_map_update(&mem, s->mem, r, fds, n, SLOG(s));
	return install_memory(s, ret, mem);
}

static int cb_add_mem_reg(struct vh_backend *be, const struct vh_backend_mem_region *region,
			  int *fd)
{
	struct vh_server *s = srv(be);
	struct vh_memory *mem = NULL;
	int ret = vh_memory_add(&mem, s->mem, &region->r, *fd);

	return install_memory(s, ret, mem);
}

static int cb_rem_mem_reg(struct vh_backend *be, const struct vh_backend_mem_region *region)
{
	struct vh_server *s = srv(be);
	struct vh_memory *mem = NULL;
	int ret = vh_memory_remove(&mem, s->mem, &region->r);

	return install_memory(s, ret, mem);
}

/* ---- Dirty log ---------------------------------------------------------------------------- */

static int cb_set_log_base(struct vh_backend *be, const struct vh_log *log, int *fd)
{
	struct vh_server *s = srv(be);
	struct vh_dirty_log *nl, *old;
	int seals, r;

	/* A log the front-end could shrink would SIGBUS this process at the next mark. */
	seals = fcntl(*fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		vhp_warn(SLOG(s), "server: dirty log fd is not sealed against shrinking");
		return -EPERM;
	}
	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	r = vh_dirty_log_set(nl, *fd, log->mmap_size, log->mmap_offset);
	if (r) {
		free(nl);
		return r;
	}
	old = s->dlog;
	s->dlog = nl;
	apply_log_all(s); /* after this no queue uses the old log */
	if (old) {
		vh_dirty_log_clear(old);
		free(old);
	}
	return 0;
}

static int cb_set_log_fd(struct vh_backend *be, int fd)
{
	struct vh_server *s = srv(be);
	int r = set_nonblock(fd);

	if (r)
		return r;
	__atomic_store_n(&s->log_fd, fd, __ATOMIC_RELAXED);
	/* The vh_backend closes the previous fd after we return. */
	queue_barrier(s);
	return 0;
}

/* ---- Vrings ------------------------------------------------------------------------------- */

static int cb_set_vring_addr(struct vh_backend *be, unsigned idx, const struct vh_vring_addr *a)
{
	struct vh_server *s = srv(be);
	struct vh_server_queue *q = &s->queues[idx];
	int r = 0;

	vhp_q_lock(q);
	if (q->vq && (a->desc_user_addr != q->addr.desc_user_addr ||
		      a->avail_user_addr != q->addr.avail_user_addr ||
		      a->used_user_addr != q->addr.used_user_addr)) {
		/* Only the log flag and address may change on a running ring. */
		r = -EBUSY;
	} else {
		q->addr = *a;
		vhp_queue_apply_log(q);
	}
	vhp_q_unlock(q);
	return r;
}

static int cb_get_vring_base(struct vh_backend *be, unsigned idx,
			     struct vh_backend_vring_base *base)
{
	struct vh_server *s = srv(be);
	struct vh_vq_base b;
	int r = vhp_queue_stop(s, idx, &b);

	if (r == -ENOENT)
		return 0; /* never started: the recorded base is the answer */
	if (r)
		return r;
	base->last_avail_idx = b.last_avail_idx;
	base->last_used_idx = b.used_idx;
	if (__atomic_load_n(&s->features, __ATOMIC_RELAXED) & VH_BIT(VH_F_RING_PACKED)) {
		base->avail_wrap_counter = b.avail_wrap;
		base->used_wrap_counter = b.used_wrap;
	}
	return 0;
}

static int cb_set_vring_kick(struct vh_backend *be, unsigned idx, int fd)
{
	struct vh_server *s = srv(be);
	int r;

	if (fd >= 0) {
		r = notify_fd_ok(s, fd, "kick", idx);
		if (r)
			return r;
	}
	/* NOFD: the device polls the ring, unless kicks come in band. */
	return vhp_queue_start(s, idx, fd, fd < 0 && !inband(s));
}

static int cb_set_vring_call(struct vh_backend *be, unsigned idx, int fd)
{
	struct vh_server *s = srv(be);
	struct vh_server_queue *q = &s->queues[idx];

	if (fd >= 0) {
		int r = notify_fd_ok(s, fd, "call", idx);

		if (r)
			return r;
	}
	vhp_q_lock(q);
	q->call_fd = fd;
	q->call_inband = fd < 0 && inband(s);
	vhp_q_unlock(q);
	return 0;
}

static int cb_set_vring_err(struct vh_backend *be, unsigned idx, int fd)
{
	struct vh_server *s = srv(be);
	struct vh_server_queue *q = &s->queues[idx];

	if (fd >= 0) {
		int r = notify_fd_ok(s, fd, "err", idx);

		if (r)
			return r;
	}
	vhp_q_lock(q);
	q->err_fd = fd;
	q->err_inband = fd < 0 && inband(s);
	vhp_q_unlock(q);
	return 0;
}

static int cb_set_vring_enable(struct vh_backend *be, unsigned idx, int enable)
{
	struct vh_server *s = srv(be);
	struct vh_server_queue *q = &s->queues[idx];

	vhp_q_lock(q);
	__atomic_store_n(&q->enabled, enable ? 1 : 0, __ATOMIC_RELAXED);
	vhp_q_unlock(q);
	/* Buffers made available while disabled get no new kick: look now. */
	if (enable)
		vhp_queue_self_kick(q);
	return 0;
}

static int cb_vring_kick_inband(struct vh_backend *be, unsigned idx)
{
	struct vh_server *s = srv(be);
	struct vh_server_queue *q = &s->queues[idx];

	if (!q->vq) {
		int r = vhp_queue_start(s, idx, -1, 0);

		if (r)
			return r;
	}
	(void)vhp_queue_run(q, 0, 0);
	return 0;
}

/* ---- Device pass-through ------------------------------------------------------------------- */

static int cb_get_config(struct vh_backend *be, uint32_t offset, uint32_t size, uint8_t *buf)
{
	struct vh_server *s = srv(be);

	return s->ops.get_config ? s->ops.get_config(s->opaque, offset, size, buf) : -ENOTSUP;
}

static int cb_set_config(struct vh_backend *be, uint32_t offset, uint32_t size, uint32_t flags,
			 const uint8_t *buf)
{
	struct vh_server *s = srv(be);

	return s->ops.set_config ? s->ops.set_config(s->opaque, offset, size, flags, buf)
				 : -ENOTSUP;
}

static int cb_send_rarp(struct vh_backend *be, const uint8_t mac[6])
{
	struct vh_server *s = srv(be);

	return s->ops.send_rarp ? s->ops.send_rarp(s->opaque, mac) : -ENOTSUP;
}

static int cb_net_set_mtu(struct vh_backend *be, uint64_t mtu)
{
	struct vh_server *s = srv(be);

	return s->ops.net_set_mtu ? s->ops.net_set_mtu(s->opaque, mtu) : -ENOTSUP;
}

static int cb_get_inflight_fd(struct vh_backend *be, const struct vh_inflight *req,
			      struct vh_inflight *reply, int *fd_out)
{
	return vhp_inflight_get(srv(be), req, reply, fd_out);
}

static int cb_set_inflight_fd(struct vh_backend *be, const struct vh_inflight *inflight, int *fd)
{
	/* The fd stays the vh_backend's (closed after the call); the mapping keeps the file. */
	return vhp_inflight_set(srv(be), inflight, *fd);
}

static const struct vh_backend_ops server_backend_ops = {
	.connected = cb_connected,
	.disconnected = cb_disconnected,
	.set_features = cb_set_features,
	.set_protocol_features = cb_set_protocol_features,
	.reset_owner = cb_reset_owner,
	.reset_device = cb_reset_device,
	.set_mem_table = cb_set_mem_table,
	.add_mem_reg = cb_add_mem_reg,
	.rem_mem_reg = cb_rem_mem_reg,
	.set_log_base = cb_set_log_base,
	.set_log_fd = cb_set_log_fd,
	.set_vring_addr = cb_set_vring_addr,
	.get_vring_base = cb_get_vring_base,
	.set_vring_kick = cb_set_vring_kick,
	.set_vring_call = cb_set_vring_call,
	.set_vring_err = cb_set_vring_err,
	.set_vring_enable = cb_set_vring_enable,
	.vring_kick_inband = cb_vring_kick_inband,
	.send_rarp = cb_send_rarp,
	.net_set_mtu = cb_net_set_mtu,
	.get_config = cb_get_config,
	.set_config = cb_set_config,
	.get_inflight_fd = cb_get_inflight_fd,
	.set_inflight_fd = cb_set_inflight_fd,
	.set_status = cb_set_status,
	.get_status = cb_get_status,
};

/* ---- Lifecycle ------------------------------------------------------------------------------ */

int vh_server_new(struct vh_server **out, const struct vh_server_config *cfg,
		  const struct vh_server_ops *ops, void *opaque)
{
	struct vh_backend_config bc;
	uint64_t ring, pf;
	struct vh_server *s;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg || !ops || !ops->process)
		return -EINVAL;
	if (cfg->num_queues < 1 || cfg->num_queues > VH_BACKEND_MAX_QUEUES ||
	    cfg->max_queue_size > VH_VQ_MAX_SIZE || cfg->max_iov > VH_VQ_MAX_SIZE ||
	    cfg->config_size > VH_USER_MAX_CONFIG_SIZE)
		return -EINVAL;

	ring = VH_SERVER_RING_FEATURES & ~cfg->features_mask;
	pf = VH_SERVER_PROTOCOL_FEATURES;
	if (!ops->get_config)
		pf &= ~VH_BIT(VH_USER_PROTOCOL_F_CONFIG);
	pf = (pf & ~cfg->protocol_mask) | cfg->protocol_extra;
	if (!(pf & VH_BIT(VH_USER_PROTOCOL_F_BACKEND_REQ)))
		pf &= ~VH_BIT(VH_USER_PROTOCOL_F_BACKEND_SEND_FD);
	/* Without a shared log there is nothing to log into. */
	if (!(pf & VH_BIT(VH_USER_PROTOCOL_F_LOG_SHMFD)))
		ring &= ~VH_BIT(VH_F_LOG_ALL);

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (!s->cfg.max_iov)
		s->cfg.max_iov = VHP_SERVER_DEFAULT_MAX_IOV;
	s->ops = *ops;
	s->opaque = opaque;
	s->nq = cfg->num_queues;
	s->log_fd = -1;
	s->stop_fd = -1;
	s->queues = calloc(s->nq, sizeof(*s->queues));
	if (!s->queues) {
		free(s);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < s->nq; i++) {
		struct vh_server_queue *q = &s->queues[i];

		q->s = s;
		q->idx = i;
		q->kick_fd = q->call_fd = q->err_fd = q->watch_fd = -1;
		q->kick_reg = q->watch_reg = -1;
		q->max_iov = s->cfg.max_iov;
		q->kick_src.q = q;
		q->kick_src.kind = VHP_SRC_KICK;
		q->watch_src.q = q;
		q->watch_src.kind = VHP_SRC_WATCH;
		pthread_mutex_init(&q->lock, NULL);
	}
	r = vh_memory_new_empty(&s->mem, SLOG(s));
	if (!r) {
		s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->stop_fd < 0)
			r = -errno;
	}
	if (!r) {
		memset(&bc, 0, sizeof(bc));
		bc.features = cfg->device_features | ring;
		bc.protocol_features = pf;
		bc.num_queues = cfg->num_queues;
		bc.max_queue_size = cfg->max_queue_size;
		bc.config_size = cfg->config_size;
		bc.log = cfg->log;
		bc.timeout_ms = cfg->timeout_ms;
		r = vh_backend_new(&s->be, &bc, &server_backend_ops, s);
	}
	if (r) {
		vh_server_free(s);
		return r;
	}
	*out = s;
	return 0;
}

void vh_server_free(struct vh_server *s)
{
	if (!s)
		return;
	/* The connection goes first: its teardown stops the queues (device callbacks run). */
	vh_backend_free(s->be);
	s->be = NULL;
	stop_all(s);
	vhp_queue_reclaim(s);
	if (s->dlog) {
		vh_dirty_log_clear(s->dlog);
		free(s->dlog);
	}
	vhp_inflight_unmap(s);
	vh_memory_unref(s->mem);
	for (unsigned i = 0; i < s->nq; i++) {
		vhp_queue_free_storage(&s->queues[i]);
		pthread_mutex_destroy(&s->queues[i].lock);
	}
	vhp_close(s->stop_fd);
	free(s->connect_path);
	free(s->queues);
	free(s);
}

struct vh_backend *vh_server_backend(struct vh_server *s)
{
	return s ? s->be : NULL;
}

void *vh_server_opaque(const struct vh_server *s)
{
	return s ? s->opaque : NULL;
}

uint64_t vh_server_features(const struct vh_server *s)
{
	return s ? __atomic_load_n(&s->features, __ATOMIC_RELAXED) : 0;
}

struct vh_server_queue *vh_server_get_queue(struct vh_server *s, unsigned qidx)
{
	if (!s || qidx >= s->nq)
		return NULL;
	return &s->queues[qidx];
}

/* ---- Connections ----------------------------------------------------------------------------- */

int vh_server_listen(struct vh_server *s, const char *path)
{
	return s ? vh_backend_listen(s->be, path) : -EINVAL;
}

int vh_server_set_listen_fd(struct vh_server *s, int fd)
{
	return s ? vh_backend_set_listen_fd(s->be, fd) : -EINVAL;
}

int vh_server_connect(struct vh_server *s, const char *path)
{
	char *p;

	if (!s || !path)
		return -EINVAL;
	p = strdup(path);
	if (!p)
		return -ENOMEM;
	free(s->connect_path);
	s->connect_path = p;
	return vh_backend_connect(s->be, path);
}

int vh_server_set_connection(struct vh_server *s, int fd)
{
	if (!s) {
		vhp_close(fd);
		return -EINVAL;
	}
	return vh_backend_set_connection(s->be, fd);
}

/* ---- Event-loop agnostic entry points ----------------------------------------------------- */

int vh_server_control_fd(const struct vh_server *s)
{
	return s ? vh_backend_fd(s->be) : -1;
}

int vh_server_dispatch(struct vh_server *s)
{
	if (!s)
		return -EINVAL;
	vhp_queue_reclaim(s);
	return vh_backend_dispatch(s->be);
}

int vh_server_queue_fd(struct vh_server *s, unsigned qidx)
{
	struct vh_server_queue *q;
	int fd;

	if (!s || qidx >= s->nq)
		return -1;
	q = &s->queues[qidx];
	vhp_q_lock(q);
	fd = q->runnable ? q->kick_fd : -1;
	vhp_q_unlock(q);
	return fd;
}

int vh_server_queue_polled(struct vh_server *s, unsigned qidx)
{
	if (!s || qidx >= s->nq)
		return 0;
	return __atomic_load_n(&s->queues[qidx].polled, __ATOMIC_RELAXED);
}

static uint64_t work_done(const struct vh_server_queue *q)
{
	return __atomic_load_n(&q->st.popped, __ATOMIC_RELAXED) +
	       __atomic_load_n(&q->st.pushed, __ATOMIC_RELAXED);
}

int vh_server_run_queue(struct vh_server *s, unsigned qidx)
{
	struct vh_server_queue *q;
	uint64_t before;
	int r;

	if (!s || qidx >= s->nq)
		return -EINVAL;
	q = &s->queues[qidx];
	before = work_done(q);
	r = vhp_queue_run(q, 1, 0);
	/* The device may have left buffers in the ring, and only a pop that found it empty
	 * asked for the next kick: re-arm it, and if buffers wait, make the kick fd readable
	 * so the caller's poll comes back. A polled queue is run regularly anyway. */
	if (r == 0 && work_done(q) != before && !__atomic_load_n(&q->polled, __ATOMIC_RELAXED) &&
	    vhp_queue_rearm(q) > 0)
		vhp_queue_self_kick(q);
	return r;
}
