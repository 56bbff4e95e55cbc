/* SPDX-License-Identifier: MIT */
/*
 * Back-end framework, per-queue part: starting and stopping a queue, element storage, the data
 * path (pop / push / notify with dirty logging and inflight tracking), ring faults, and the
 * memory-table generations that keep old mappings alive while popped elements point into them.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "server_priv.h"

/* Writes an eventfd-style 1. The fds are non-blocking (set when received), so a full pipe or a
 * saturated counter is dropped instead of stalling a worker. */
static void fd_signal(int fd)
{
	uint64_t one = 1;
	ssize_t r;

	if (fd < 0)
		return;
	do
		r = write(fd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
}

/* ---- Element storage ---------------------------------------------------------------------
 * One block per element in flight (at most num): max_iov iovecs and max_iov GPAs. Blocks are
 * handed out from a LIFO stack of pointers, so the hot ones stay in cache and untouched ones
 * never get memory (the store is a MAP_NORESERVE mapping). Nothing is allocated per request.
 */

static size_t block_bytes(const struct vh_server_queue *q)
{
	return (size_t)q->max_iov * (sizeof(struct iovec) + sizeof(uint64_t));
}

static int own_storage(const struct vh_server_queue *q, const void *p)
{
	return (uintptr_t)p - (uintptr_t)q->store < q->store_len;
}

/* The block whose iovecs start at iov. */
static inline struct vhp_block block_at(const struct vh_server_queue *q, struct iovec *iov)
{
	struct vhp_block b = { iov, (uint64_t *)(void *)((uint8_t *)iov + q->gpa_off) };

	return b;
}

void vhp_queue_free_storage(struct vh_server_queue *q)
{
	free(q->slots);
	free(q->free_blocks);
	if (q->store)
		munmap(q->store, q->store_len);
	q->slots = NULL;
	q->free_blocks = NULL;
	q->store = NULL;
	q->store_len = 0;
	q->slots_num = 0;
	q->nfree = 0;
}

static int alloc_storage(struct vh_server_queue *q, unsigned num)
{
	size_t len = (size_t)num * block_bytes(q);
	void *m;

	vhp_queue_free_storage(q);
	/* Cache-line aligned, one line per slot. */
	if (posix_memalign((void **)&q->slots, 64, (size_t)num * sizeof(*q->slots)))
		q->slots = NULL;
	else
		memset(q->slots, 0, (size_t)num * sizeof(*q->slots));
	q->free_blocks = calloc(num, sizeof(*q->free_blocks));
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (!q->slots || !q->free_blocks || m == MAP_FAILED) {
		if (m != MAP_FAILED)
			munmap(m, len);
		vhp_queue_free_storage(q);
		return -ENOMEM;
	}
	q->store = m;
	q->store_len = len;
	q->gpa_off = (size_t)q->max_iov * sizeof(struct iovec);
	q->slots_num = num;
	/* Block 0 on top of the stack. */
	for (unsigned i = 0; i < num; i++)
		q->free_blocks[i] = block_at(q, (struct iovec *)(void *)(q->store +
						 (size_t)(num - 1 - i) * block_bytes(q)));
	q->nfree = num;
	return 0;
}

/* Points the element at block b where the caller gave no storage of its own. Storage of ours
 * left in a reused element array counts as none. */
static void elem_prepare_slow(struct vh_server_queue *q, struct vh_vq_elem *e,
			      struct vhp_block b)
{
	if (!e->iov || own_storage(q, e->iov)) {
		e->iov = b.iov;
		e->iov_cap = q->max_iov;
	}
	if (!e->iov_gpa || own_storage(q, e->iov_gpa)) {
		e->iov_gpa = b.gpa;
		if (e->iov_cap > q->max_iov)
			e->iov_cap = q->max_iov;
	}
}

_Static_assert(offsetof(struct vh_vq_elem, iov_gpa) == offsetof(struct vh_vq_elem, iov) +
	       sizeof(struct iovec *), "iov and iov_gpa are copied as one block");

/* Points elems[0..n) at the n blocks on top of the stack (element i at the i-th from the top),
 * without taking them. An element that comes zeroed, or with both pointers into our storage
 * (an array reused as it is), gets the block with one 16-byte copy and the capacity. Returns 1
 * if every element got its block that way (its iov and iov_gpa are the block's), else 0. */
static inline __attribute__((always_inline)) int
elems_prepare(struct vh_server_queue *q, struct vh_vq_elem *elems, unsigned n)
{
	const struct vhp_block *top = q->free_blocks + q->nfree - 1;
	uintptr_t base = (uintptr_t)q->store, len = q->store_len;
	uint32_t cap = q->max_iov;
	int own = 1;

	/* Unrolled: the loop's own counting is a third of each short iteration. */
#pragma GCC unroll 4
	for (unsigned i = 0; i < n; i++) {
		struct vh_vq_elem *e = &elems[i];
		uintptr_t a = (uintptr_t)e->iov, g = (uintptr_t)e->iov_gpa;

		if (vhp_likely((a | g) == 0) || (a - base < len && g - base < len)) {
			struct vhp_block b = top[-(ptrdiff_t)i];

			memcpy(&e->iov, &b, sizeof(b)); /* iov and iov_gpa, adjacent */
			e->iov_cap = cap;
		} else {
			elem_prepare_slow(q, e, top[-(ptrdiff_t)i]);
			own = 0;
		}
	}
	return own;
}

/* Gives an old memory table back one element. */
static void old_release(struct vh_server_queue *q, uint32_t gen)
{
	for (unsigned k = 0; k < q->nold; k++) {
		if (q->old[k].gen != gen)
			continue;
		if (--q->old[k].pending == 0)
			__atomic_store_n(&q->s->reclaim, 1, __ATOMIC_RELEASE);
		break;
	}
}

/* Elements popped under the current table: every one in flight holds a block. */
static uint32_t cur_pending(const struct vh_server_queue *q)
{
	uint32_t n = q->slots_num - q->nfree;

	for (unsigned k = 0; k < q->nold; k++)
		n -= q->old[k].pending;
	return n;
}

/* ---- Faults -------------------------------------------------------------------------------- */

void vhp_queue_mark_broken(struct vh_server_queue *q, const char *why)
{
	struct vh_server *s = q->s;

	if (q->broken)
		return;
	__atomic_store_n(&q->broken, 1, __ATOMIC_RELAXED);
	vhp_stat_add(&q->st.faults, 1);
	__atomic_store_n(&s->needs_reset, 1, __ATOMIC_RELEASE);
	vhp_err(SLOG(s), "server: queue %u broken (%s): device needs reset", q->idx, why);
	if (q->err_fd >= 0)
		fd_signal(q->err_fd);
	else if (q->err_inband)
		(void)vh_backend_send_vring_err(s->be, q->idx);
}

static void ring_fault(struct vh_server_queue *q)
{
	vhp_queue_mark_broken(q, q->vq ? vh_vq_fault_name(vh_vq_fault(q->vq)) : "ring error");
}

/* ---- Logging ------------------------------------------------------------------------------- */

static uint64_t ring_log_gpa(const struct vh_server_queue *q)
{
	uint64_t gpa;

	/* Packed rings write used descriptors into the descriptor ring: log relative to it.
	 * Split rings log the used ring at the address the front-end gave for it. */
	if (q->packed && q->ring_mem &&
	    vh_memory_uaddr_to_gpa(q->ring_mem, q->addr.desc_user_addr, 16ull * q->num, &gpa) == 0)
		return gpa;
	return q->addr.log_guest_addr;
}

void vhp_queue_apply_log(struct vh_server_queue *q)
{
	struct vh_server *s = q->s;
	int on = s->log_all && s->dlog && s->dlog->bitmap;

	q->dlog = on ? s->dlog : NULL;
	if (!q->vq)
		return;
	if (on && (q->addr.flags & VH_BIT(VH_VRING_F_LOG)))
		vh_vq_set_log(q->vq, s->dlog, ring_log_gpa(q));
	else
		vh_vq_set_log(q->vq, NULL, 0);
}

/* Marks the bytes written into each completed element's device-writable pieces. */
static void log_buffers(struct vh_server_queue *q, const struct vh_vq_used *used, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const struct vhp_slot *e = &q->slots[used[i].id];
		/* The writable pieces add up to the element's in_len, which bounds len. */
		uint64_t len = used[i].len;

		for (uint32_t k = e->out_num; k < e->out_num + e->in_num && len > 0; k++) {
			uint64_t l = e->iov[k].iov_len < len ? e->iov[k].iov_len : len;

			if (vh_dirty_log_mark(q->dlog, e->iov_gpa[k], l) == -ERANGE)
				vhp_warn(SLOG(q->s), "server: queue %u: write at 0x%llx is past the "
					 "dirty log", q->idx, (unsigned long long)e->iov_gpa[k]);
			len -= l;
			q->logged = 1;
		}
	}
}

/* ---- Data path ---------------------------------------------------------------------------- */

/* Records popped elements under their ids; element i took the i-th block from the top of the
 * stack (elems_prepare; own: every element's iov and iov_gpa are that block's, which pop does
 * not change). Fails if an id is already in flight (a split driver that put one head in the
 * avail ring twice); the elements before it stay taken. */
static inline __attribute__((always_inline)) int
slots_take(struct vh_server_queue *q, const struct vh_vq_elem *elems, unsigned n, int own)
{
	struct vhp_slot *slots = q->slots;
	const struct vhp_block *top = q->free_blocks + q->nfree - 1;
	const struct vh_vq_elem *e = elems, *end = elems + n;
	uint32_t gen = q->gen;

	if (vhp_likely(own)) {
#pragma GCC unroll 4
		for (; e != end; e++, top--) {
			/* The ring hands out ids below num == slots_num only. */
			struct vhp_slot *sl = &slots[e->id];
			struct vhp_block b = *top;

			if (vhp_unlikely(sl->blk.iov != NULL))
				break;
			sl->blk = b;
			memcpy(&sl->iov, &b, 16);                /* iov, iov_gpa */
			memcpy(&sl->iov_cap, &e->iov_cap, 16);   /* iov_cap .. ndesc */
			sl->gen = gen;
		}
	} else {
		for (; e != end; e++, top--) {
			struct vhp_slot *sl = &slots[e->id];

			if (vhp_unlikely(sl->blk.iov != NULL))
				break;
			memcpy(&sl->iov, e, 32); /* iov .. ndesc */
			sl->blk = *top;
			sl->gen = gen;
		}
	}
	q->nfree -= (unsigned)(e - elems);
	return e != end ? -1 : 0;
}

/* Requests in flight before a restart, in their original order. Returns how many were put in
 * elems (up to max), or -EIO. */
static int pop_resubmitted(struct vh_server_queue *q, struct vh_vq_elem *elems, unsigned max)
{
	unsigned n = 0;
	int r, own;

	while (n < max && q->inf.resub_pos < q->inf.resub_n && q->nfree > 0) {
		own = elems_prepare(q, &elems[n], 1);
		r = vhp_inflight_resubmit(q, &elems[n]);
		if (r < 0) {
			ring_fault(q);
			return -EIO;
		}
		if (r == 0)
			break;
		if (slots_take(q, &elems[n], 1, own)) {
			vhp_queue_mark_broken(q, "inflight buffer names one request twice");
			return -EIO;
		}
		n++;
	}
	return (int)n;
}

static int pop_locked(struct vh_server_queue *q, struct vh_vq_elem *elems, unsigned max)
{
	struct vh_vq_base b0 = { 0 };
	unsigned n = 0, room;
	int r, own;

	if (vhp_unlikely(!q->vq))
		return 0;
	if (vhp_unlikely(q->broken))
		return -EIO;
	if (vhp_unlikely(q->inf.resub_pos < q->inf.resub_n)) {
		r = pop_resubmitted(q, elems, max);
		if (r < 0)
			return r;
		n = (unsigned)r;
		if (q->inf.resub_pos < q->inf.resub_n)
			goto out;
	}
	room = max - n;
	if (room > q->nfree)
		room = q->nfree;
	if (room == 0)
		goto out;
	/* Look before preparing: an empty poll then prepares one element, not room. That one
	 * still goes through the pop, which re-arms the kick on an empty ring and looks again
	 * (so no kick is lost) and may take a buffer published meanwhile. */
	r = vh_vq_has_avail(q->vq);
	if (vhp_unlikely(r < 0)) {
		ring_fault(q);
		return -EIO;
	}
	if (r == 0)
		room = 1;
	own = elems_prepare(q, elems + n, room);
	if (q->inf.region && q->packed)
		vh_vq_get_base(q->vq, &b0);
	r = vh_vq_pop_batch(q->vq, elems + n, room);
	if (vhp_unlikely(r < 0)) {
		ring_fault(q);
		return -EIO;
	}
	if (vhp_unlikely(slots_take(q, elems + n, (unsigned)r, own))) {
		vhp_queue_mark_broken(q, "head made available twice");
		return -EIO;
	}
	if (q->inf.region)
		vhp_inflight_pop(q, elems + n, (unsigned)r, b0.last_avail_idx, b0.avail_wrap);
	n += (unsigned)r;
out:
	if (n)
		vhp_stat_add(&q->st.popped, n);
	return (int)n;
}

int vh_server_queue_pop(struct vh_server_queue *q, struct vh_vq_elem *elems, unsigned max)
{
	int taken, r;

	if (!q || (!elems && max))
		return -EINVAL;
	taken = vhp_q_lock_auto(q);
	r = pop_locked(q, elems, max);
	vhp_q_unlock_auto(q, taken);
	return r;
}

/* Takes back the first n ids of a batch whose release failed: their blocks are still on the
 * stack above nfree, in batch order. */
static void slots_restore(struct vh_server_queue *q, const struct vh_vq_used *used, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		q->slots[used[k].id].blk = q->free_blocks[q->nfree + k];
}

int vh_server_queue_push_locked(struct vh_server_queue *q, const struct vh_vq_used *used,
				unsigned n)
{
	struct vhp_slot *slots;
	struct vhp_block *stack;
	unsigned i, num;
	int r;

	if (!q || (!used && n))
		return -EINVAL;
	if (vhp_unlikely(!q->vq))
		return -EINVAL; /* stopped: the elements were given up at queue_stop */
	if (vhp_unlikely(q->broken))
		return -EIO;
	if (n == 0)
		return 0;
	/* One pass checks and releases: an id not in flight, or one released already earlier in
	 * this batch, stops it; the ids before it are taken back and nothing is published. The
	 * slots keep their element for logging and inflight records below. */
	slots = q->slots;
	stack = q->free_blocks + q->nfree;
	num = q->slots_num;
#pragma GCC unroll 4
	for (i = 0; i < n; i++) {
		uint32_t id = used[i].id;
		struct vhp_slot *sl;

		if (vhp_unlikely(id >= num))
			break;
		sl = &slots[id];
		if (vhp_unlikely(sl->blk.iov == NULL))
			break;
		/* Within the stack's room: each id released here held a block. */
		stack[i] = sl->blk;
		sl->blk.iov = NULL;
	}
	if (vhp_unlikely(i < n)) {
		slots_restore(q, used, i);
		return -EINVAL;
	}
	if (q->dlog)
		log_buffers(q, used, n);
	if (q->inf.region)
		vhp_inflight_push_begin(q, used, n);
	r = vh_vq_push_batch(q->vq, used, n);
	if (vhp_unlikely(r < 0)) {
		slots_restore(q, used, n);
		if (r == -EIO)
			ring_fault(q);
		return r;
	}
	q->nfree += n;
	if (vhp_unlikely(q->nold != 0)) {
		/* Elements popped under an older table let go of it. */
		for (i = 0; i < n; i++) {
			uint32_t g = slots[used[i].id].gen;

			if (g != q->gen)
				old_release(q, g);
		}
	}
	if (q->inf.region)
		vhp_inflight_push_end(q, used, n);
	vhp_stat_add(&q->st.pushed, n);
	if (q->logged) {
		/* SET_LOG_FD: tell the front-end the log changed. */
		fd_signal(__atomic_load_n(&q->s->log_fd, __ATOMIC_RELAXED));
		q->logged = 0;
	}
	return 0;
}

int vh_server_queue_push(struct vh_server_queue *q, const struct vh_vq_used *used, unsigned n)
{
	int taken, r;

	if (!q)
		return -EINVAL;
	taken = vhp_q_lock_auto(q);
	r = vh_server_queue_push_locked(q, used, n);
	vhp_q_unlock_auto(q, taken);
	return r;
}

int vh_server_queue_notify(struct vh_server_queue *q)
{
	int taken, r = 0;

	if (!q)
		return -EINVAL;
	taken = vhp_q_lock_auto(q);
	if (q->vq && !q->broken) {
		r = vh_vq_should_notify(q->vq);
		if (r > 0) {
			if (q->call_fd >= 0)
				fd_signal(q->call_fd);
			else if (q->call_inband)
				(void)vh_backend_send_vring_call(q->s->be, q->idx);
			vhp_stat_add(&q->st.notifies, 1);
			r = 1;
		} else if (r < 0) {
			ring_fault(q);
		}
	}
	vhp_q_unlock_auto(q, taken);
	return r;
}

/* ---- Running a queue ---------------------------------------------------------------------- */

static void drain_kick(struct vh_server_queue *q)
{
	uint64_t v;
	int got = 0;

	/* An eventfd drains in one read; other fd types are bounded to a few reads per wakeup. */
	for (int k = 0; k < 4; k++) {
		ssize_t r = read(q->kick_fd, &v, sizeof(v));

		if (r == (ssize_t)sizeof(v)) {
			got = 1;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		break;
	}
	if (got)
		vhp_stat_add(&q->st.kicks, 1);
}

int vhp_queue_run(struct vh_server_queue *q, int drain, int any)
{
	struct vh_server *s = q->s;
	int taken = vhp_q_lock_auto(q);

	if (drain && q->kick_fd >= 0)
		drain_kick(q);
	if (!q->runnable || (q->broken && !any)) {
		vhp_q_unlock_auto(q, taken);
		return -EAGAIN;
	}
	s->ops.process(s->opaque, q);
	vhp_q_unlock_auto(q, taken);
	return 0;
}

int vhp_queue_poll(struct vh_server_queue *q)
{
	struct vh_server *s = q->s;
	int taken;

	/* Queues that never started cost a load, not a lock. */
	if (!__atomic_load_n(&q->runnable, __ATOMIC_RELAXED))
		return -EAGAIN;
	taken = vhp_q_lock_auto(q);
	if (!q->runnable || q->broken) {
		vhp_q_unlock_auto(q, taken);
		return -EAGAIN;
	}
	/* The worker looks at the ring anyway: the driver need not kick while it does. A polled
	 * ring (NOFD kick) gets no kicks in the first place. */
	if (!q->kicks_off && !q->kick_poll) {
		vh_vq_disable_notify(q->vq);
		q->kicks_off = 1;
	}
	s->ops.process(s->opaque, q);
	vhp_q_unlock_auto(q, taken);
	return 0;
}

int vhp_queue_rearm(struct vh_server_queue *q)
{
	int taken, r = 0;

	taken = vhp_q_lock_auto(q);
	if (q->vq && q->runnable && !q->broken && !q->kicks_off) {
		r = vh_vq_enable_notify(q->vq);
		if (r < 0) {
			ring_fault(q);
			r = 0;
		}
	}
	vhp_q_unlock_auto(q, taken);
	return r;
}

int vhp_queue_kicks_on(struct vh_server_queue *q)
{
	int r = 0;

	vhp_q_lock(q);
	if (q->kicks_off) {
		q->kicks_off = 0;
		if (q->vq && !q->broken) {
			r = vh_vq_enable_notify(q->vq);
			if (r < 0) {
				ring_fault(q);
				r = 0;
			}
		}
	}
	vhp_q_unlock(q);
	return r;
}

void vhp_queue_self_kick(struct vh_server_queue *q)
{
	int fd;

	vhp_q_lock(q);
	fd = q->runnable ? q->kick_fd : -1;
	vhp_q_unlock(q);
	fd_signal(fd);
}

/* ---- Start / stop -------------------------------------------------------------------------- */

/* Drops everything a started queue holds; the memory references go to refs[] for the caller
 * to release after unlocking. Lock held. */
static unsigned teardown_locked(struct vh_server_queue *q, struct vh_memory **refs)
{
	unsigned n = 0;

	vh_vq_free(q->vq);
	q->vq = NULL;
	q->kicks_off = 0;
	__atomic_store_n(&q->runnable, 0, __ATOMIC_RELAXED);
	if (q->mem)
		refs[n++] = q->mem;
	if (q->ring_mem)
		refs[n++] = q->ring_mem;
	for (unsigned k = 0; k < q->nold; k++)
		refs[n++] = q->old[k].mem;
	q->mem = NULL;
	q->ring_mem = NULL;
	q->nold = 0;
	q->dlog = NULL;
	q->logged = 0;
	q->kick_fd = -1;
	q->kick_poll = 0;
	vhp_inflight_queue_stop(q);
	vhp_queue_free_storage(q);
	return n;
}

static void unref_all(struct vh_memory **refs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		vh_memory_unref(refs[i]);
}

int vhp_queue_start(struct vh_server *s, unsigned idx, int kick_fd, int poll)
{
	struct vh_server_queue *q = &s->queues[idx];
	struct vh_memory *refs[2 + VHP_SERVER_MAX_OLD_TABLES];
	struct vh_backend_vring vr;
	struct vh_vq_config cfg;
	struct vh_vq *vq = NULL;
	uint64_t features = __atomic_load_n(&s->features, __ATOMIC_RELAXED);
	int r;

	if (q->vq) {
		/* A new kick fd for a running ring. */
		vhp_q_lock(q);
		vhp_run_unwatch(q, VHP_SRC_KICK);
		q->kick_fd = kick_fd;
		q->kick_poll = poll;
		__atomic_store_n(&q->polled, poll, __ATOMIC_RELAXED);
		if (kick_fd >= 0)
			(void)vhp_run_watch(q, VHP_SRC_KICK, kick_fd);
		vhp_q_unlock(q);
		vhp_run_wake(q);
		vhp_queue_self_kick(q);
		return 0;
	}
	r = vh_backend_get_vring(s->be, idx, &vr);
	if (r)
		return r;
	if (vr.num == 0) {
		vhp_warn(SLOG(s), "server: queue %u: kick before SET_VRING_NUM", idx);
		return -EINVAL;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.num = vr.num;
	cfg.features = features;
	cfg.addr_kind = VH_VQ_ADDR_UADDR;
	cfg.desc_addr = vr.addr.desc_user_addr;
	cfg.driver_addr = vr.addr.avail_user_addr;
	cfg.device_addr = vr.addr.used_user_addr;
	cfg.base.last_avail_idx = vr.base.last_avail_idx;
	cfg.base.used_idx = vr.base.last_used_idx;
	cfg.base.avail_wrap = vr.base.avail_wrap_counter;
	cfg.base.used_wrap = vr.base.used_wrap_counter;
	cfg.mem = s->mem;
	cfg.max_indirect = q->max_iov < VH_VQ_MAX_SIZE ? q->max_iov : VH_VQ_MAX_SIZE;
	cfg.log = SLOG(s);
	r = vh_vq_new(&vq, &cfg);
	if (r) {
		vhp_warn(SLOG(s), "server: queue %u: ring of %u at desc 0x%llx avail 0x%llx used "
			 "0x%llx not usable: %d", idx, vr.num,
			 (unsigned long long)cfg.desc_addr, (unsigned long long)cfg.driver_addr,
			 (unsigned long long)cfg.device_addr, r);
		return r;
	}

	vhp_q_lock(q);
	__atomic_store_n(&q->num, vr.num, __ATOMIC_RELAXED);
	q->packed = (features & VH_BIT(VH_F_RING_PACKED)) != 0;
	q->addr = vr.addr;
	__atomic_store_n(&q->broken, 0, __ATOMIC_RELAXED);
	r = alloc_storage(q, vr.num);
	vhp_q_unlock(q);
	if (r) {
		vh_vq_free(vq);
		return r;
	}
	r = vhp_inflight_queue_start(q, vq, &cfg.base);
	if (r == 1) {
		/* Requests were in flight: the ring resumes after them. */
		vh_vq_free(vq);
		vq = NULL;
		r = vh_vq_new(&vq, &cfg);
		if (r) {
			vhp_warn(SLOG(s), "server: queue %u: ring not usable at the recovered "
				 "position: %d", idx, r);
			vhp_q_lock(q);
			vhp_inflight_queue_stop(q);
			vhp_queue_free_storage(q);
			vhp_q_unlock(q);
			return r;
		}
	}

	vhp_q_lock(q);
	q->vq = vq;
	q->kicks_off = 0;       /* a new ring asks for kicks */
	q->mem = vh_memory_ref(s->mem);
	q->ring_mem = vh_memory_ref(s->mem);
	q->gen = s->mem_gen;
	q->nold = 0;
	q->kick_fd = kick_fd;
	q->kick_poll = poll;
	__atomic_store_n(&q->runnable, 0, __ATOMIC_RELAXED);
	vhp_queue_apply_log(q);
	vhp_q_unlock(q);

	if (s->ops.queue_start) {
		r = s->ops.queue_start(s->opaque, q);
		if (r) {
			unsigned n;

			vhp_warn(SLOG(s), "server: queue %u: the device refused to start: %d", idx, r);
			vhp_q_lock(q);
			n = teardown_locked(q, refs);
			vhp_q_unlock(q);
			unref_all(refs, n);
			return r < 0 ? r : -EIO;
		}
	}
	vhp_q_lock(q);
	__atomic_store_n(&q->runnable, 1, __ATOMIC_RELAXED);
	if (kick_fd >= 0)
		(void)vhp_run_watch(q, VHP_SRC_KICK, kick_fd);
	if (q->watch_fd >= 0)
		(void)vhp_run_watch(q, VHP_SRC_WATCH, q->watch_fd);
	__atomic_store_n(&q->polled, poll, __ATOMIC_RELAXED);
	vhp_q_unlock(q);
	vhp_info(SLOG(s), "server: queue %u started (%s, %u entries%s)", idx,
		 q->packed ? "packed" : "split", q->num, poll ? ", polled" : "");
	/* Buffers may be waiting already: look without waiting for a kick. */
	vhp_run_wake(q);
	vhp_queue_self_kick(q);
	return 0;
}

int vhp_queue_stop(struct vh_server *s, unsigned idx, struct vh_vq_base *base)
{
	struct vh_server_queue *q = &s->queues[idx];
	struct vh_memory *refs[2 + VHP_SERVER_MAX_OLD_TABLES];
	unsigned n;

	vhp_q_lock(q);
	if (!q->vq) {
		vhp_q_unlock(q);
		return -ENOENT;
	}
	/* From here no worker enters process: it ran only under the lock we now hold. */
	__atomic_store_n(&q->runnable, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&q->polled, 0, __ATOMIC_RELAXED);
	vhp_run_unwatch(q, VHP_SRC_KICK);
	vhp_run_unwatch(q, VHP_SRC_WATCH);
	vhp_q_unlock(q);
	/* Unlocked, so the device may complete requests from its own threads while it waits. */
	if (s->ops.queue_stop)
		s->ops.queue_stop(s->opaque, q);
	vhp_q_lock(q);
	if (base)
		vh_vq_get_base(q->vq, base);
	n = teardown_locked(q, refs);
	vhp_q_unlock(q);
	unref_all(refs, n);
	vhp_info(SLOG(s), "server: queue %u stopped", idx);
	return 0;
}

/* ---- Memory table changes ----------------------------------------------------------------- */

/* Whether the ring areas stay at the same host address through the same mapping in b, so the
 * ring's pointers (taken from a) remain valid. */
static int ring_stays(const struct vh_server_queue *q, const struct vh_memory *a,
		      const struct vh_memory *b)
{
	struct vh_vring_layout lay;
	const uint64_t ua[3] = { q->addr.desc_user_addr, q->addr.avail_user_addr,
				 q->addr.used_user_addr };
	size_t sz[3];

	if (vh_vring_layout(q->num, q->packed ? VH_VQ_F_RING_PACKED : 0, &lay))
		return 0;
	sz[0] = lay.desc_size;
	sz[1] = lay.driver_size;
	sz[2] = lay.device_size;
	for (int i = 0; i < 3; i++) {
		uint64_t gpa;

		if (vh_memory_uaddr_to_gpa(a, ua[i], sz[i], &gpa) ||
		    !vh_memory_same_host(a, b, gpa, sz[i]))
			return 0;
	}
	return 1;
}

int vhp_queue_set_memory(struct vh_server *s, struct vh_memory *mem)
{
	struct vh_memory *old = s->mem;
	unsigned i;

	vhp_queue_reclaim(s);
	for (i = 0; i < s->nq; i++) {
		struct vh_server_queue *q = &s->queues[i];
		int full;

		vhp_q_lock(q);
		full = q->vq && q->nold >= VHP_SERVER_MAX_OLD_TABLES;
		vhp_q_unlock(q);
		if (full) {
			vhp_warn(SLOG(s), "server: queue %u holds requests across %u memory tables; "
				 "refusing another change", i, q->nold);
			return -EBUSY;
		}
	}
	s->mem = mem;
	s->mem_gen++;
	for (i = 0; i < s->nq; i++) {
		struct vh_server_queue *q = &s->queues[i];
		struct vh_memory *drop[2];
		unsigned nd = 0;
		uint32_t pending;

		vhp_q_lock(q);
		if (q->vq) {
			if (ring_stays(q, q->ring_mem, mem)) {
				drop[nd++] = q->ring_mem;
				q->ring_mem = vh_memory_ref(mem);
			} else {
				/* The old mapping stays alive with ring_mem until the stop. */
				vhp_queue_mark_broken(q, "ring memory removed or remapped");
			}
			pending = cur_pending(q);
			if (pending) {
				/* Popped elements point into q->mem: keep it until they are pushed. */
				q->old[q->nold].mem = q->mem;
				q->old[q->nold].gen = q->gen;
				q->old[q->nold].pending = pending;
				q->nold++;
			} else {
				drop[nd++] = q->mem;
			}
			q->mem = vh_memory_ref(mem);
			q->gen = s->mem_gen;
			vh_vq_set_memory(q->vq, mem);
		}
		vhp_q_unlock(q);
		unref_all(drop, nd);
	}
	vh_memory_unref(old);
	return 0;
}

void vhp_queue_reclaim(struct vh_server *s)
{
	if (!__atomic_exchange_n(&s->reclaim, 0, __ATOMIC_ACQ_REL))
		return;
	for (unsigned i = 0; i < s->nq; i++) {
		struct vh_server_queue *q = &s->queues[i];
		struct vh_memory *drop[VHP_SERVER_MAX_OLD_TABLES];
		unsigned nd = 0, k, w = 0;

		vhp_q_lock(q);
		for (k = 0; k < q->nold; k++) {
			if (q->old[k].pending == 0)
				drop[nd++] = q->old[k].mem;
			else
				q->old[w++] = q->old[k];
		}
		q->nold = w;
		vhp_q_unlock(q);
		unref_all(drop, nd);
	}
}

/* ---- Accessors ------------------------------------------------------------------------------ */

unsigned vh_server_queue_index(const struct vh_server_queue *q)
{
	return q ? q->idx : 0;
}

struct vh_server *vh_server_queue_server(const struct vh_server_queue *q)
{
	return q ? q->s : NULL;
}

void *vh_server_queue_get_priv(const struct vh_server_queue *q)
{
	return q ? __atomic_load_n(&q->priv, __ATOMIC_ACQUIRE) : NULL;
}

void vh_server_queue_set_priv(struct vh_server_queue *q, void *priv)
{
	if (q)
		__atomic_store_n(&q->priv, priv, __ATOMIC_RELEASE);
}

int vh_server_queue_enabled(const struct vh_server_queue *q)
{
	return q ? __atomic_load_n(&q->enabled, __ATOMIC_RELAXED) : 0;
}

unsigned vh_server_queue_size(const struct vh_server_queue *q)
{
	return q ? __atomic_load_n(&q->num, __ATOMIC_RELAXED) : 0;
}

int vh_server_queue_is_broken(const struct vh_server_queue *q)
{
	return q && __atomic_load_n(&q->broken, __ATOMIC_RELAXED) ? -EIO : 0;
}

void vh_server_queue_get_stats(const struct vh_server_queue *q, struct vh_server_queue_stats *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!q)
		return;
	st->popped = __atomic_load_n(&q->st.popped, __ATOMIC_RELAXED);
	st->pushed = __atomic_load_n(&q->st.pushed, __ATOMIC_RELAXED);
	st->notifies = __atomic_load_n(&q->st.notifies, __ATOMIC_RELAXED);
	st->kicks = __atomic_load_n(&q->st.kicks, __ATOMIC_RELAXED);
	st->faults = __atomic_load_n(&q->st.faults, __ATOMIC_RELAXED);
}

int vh_server_queue_watch_fd(struct vh_server_queue *q, int fd)
{
	int taken, r = 0;

	if (!q)
		return -EINVAL;
	taken = vhp_q_lock_auto(q);
	vhp_run_unwatch(q, VHP_SRC_WATCH);
	q->watch_fd = fd < 0 ? -1 : fd;
	if (fd >= 0 && q->runnable)
		r = vhp_run_watch(q, VHP_SRC_WATCH, fd);
	vhp_q_unlock_auto(q, taken);
	return r;
}
