/* SPDX-License-Identifier: MIT */
/*
 * State of the back-end framework (server.h), shared by server.c (protocol callbacks, memory,
 * log, lifecycle), server_queue.c (queue start/stop and the data path), inflight.c (inflight
 * tracking) and server_run.c (the daemon). Not installed.
 *
 * Locking: each queue has one mutex. `process`, pop, push and notify run with it held; the
 * control thread takes it to change anything a worker reads (ring, memory table, log, fds). The
 * control thread never holds a queue lock while it waits for a worker or calls a device
 * callback, so a device may push from its own threads at any time (push takes the lock).
 * Memory table references (vh_memory_ref/unref) are taken and dropped on the control thread
 * only; workers just count what is still in use.
 */
#ifndef LIBVHOST_SERVER_PRIV_H
#define LIBVHOST_SERVER_PRIV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <libvhost/server.h>
#include "internal.h"

/* Memory tables older than the current one that a queue's popped elements may still point
 * into. A table change that would need more is refused (-EBUSY). */
#define VHP_SERVER_MAX_OLD_TABLES 16u
#define VHP_SERVER_DEFAULT_MAX_IOV 1024u

/* epoll data.ptr kinds */
enum vhp_src_kind {
	VHP_SRC_KICK = 1,
	VHP_SRC_WATCH = 2,
	VHP_SRC_WAKE = 3,
};

struct vhp_src {
	struct vh_server_queue *q;
	int kind;
};

/* A memory table kept alive for elements popped before a table change. */
struct vhp_old_mem {
	struct vh_memory *mem;   /* the queue's reference (dropped on the control thread) */
	uint32_t gen;
	uint32_t pending;        /* elements popped under it and not pushed yet */
};

/* A storage block: where an element's iovecs and GPAs go (one 16-byte copy into it). */
struct vhp_block {
	struct iovec *iov;
	uint64_t *gpa;
};

/* Per element id: what push needs, in one cache line. iov .. ndesc mirror the first 32 bytes
 * of the popped vh_vq_elem (copied as one block): its pieces for logging written bytes (their
 * lengths bound what is marked), ndesc for packed inflight records. */
struct vhp_slot {
	struct vhp_block blk;    /* block it holds; blk.iov NULL = the id is not in flight */
	struct iovec *iov;
	uint64_t *iov_gpa;
	uint32_t iov_cap;
	uint32_t out_num;
	uint32_t in_num;
	uint16_t id;
	uint16_t ndesc;
	uint32_t gen;            /* memory generation it was popped under */
	uint32_t pad[3];
};
_Static_assert(sizeof(struct vhp_slot) == 64, "one slot per cache line");
_Static_assert(offsetof(struct vhp_slot, ndesc) - offsetof(struct vhp_slot, iov) ==
	       offsetof(struct vh_vq_elem, ndesc) - offsetof(struct vh_vq_elem, iov) &&
	       offsetof(struct vh_vq_elem, iov) == 0 && offsetof(struct vh_vq_elem, ndesc) == 30 &&
	       offsetof(struct vhp_slot, out_num) - offsetof(struct vhp_slot, iov) ==
	       offsetof(struct vh_vq_elem, out_num) &&
	       offsetof(struct vhp_slot, in_num) - offsetof(struct vhp_slot, iov) ==
	       offsetof(struct vh_vq_elem, in_num) &&
	       offsetof(struct vhp_slot, iov_gpa) - offsetof(struct vhp_slot, iov) ==
	       offsetof(struct vh_vq_elem, iov_gpa),
	       "the slot mirrors the head of vh_vq_elem");

/* Per-queue inflight tracking (inflight.c). */
struct vhp_inflight_q {
	uint8_t *region;         /* this queue's part of the shared buffer; NULL = not tracked */
	int packed;
	unsigned num;
	uint64_t counter;        /* last counter value given to a popped request */
	/* split */
	uint16_t last_batch_head;
	/* packed: private mirrors, so the data path never reads the shared buffer back */
	uint16_t *next;          /* free list links (num) */
	uint16_t free_head;      /* == num: list empty */
	uint16_t *id_head;       /* buffer id -> first entry of its chain */
	uint16_t *id_last;       /* buffer id -> last entry */
	/* resubmission after a restart, in counter order */
	unsigned resub_n, resub_pos;
	uint16_t *resub;         /* split: heads; packed: first index into resub_desc */
	uint16_t *resub_cnt;     /* packed: descriptors per chain */
	struct vh_vq_desc *resub_desc;
};

struct vh_server_queue {
	struct vh_server *s;
	unsigned idx;
	pthread_mutex_t lock;
	uintptr_t holder;        /* atomic: thread holding `lock`, 0 = none */

	/* Under the lock. */
	struct vh_vq *vq;        /* from start to stop */
	int runnable;            /* started and handed to the device; process may run (written
				  * with atomic stores: the worker peeks at it unlocked) */
	int broken;
	int enabled;
	int kick_fd;             /* borrowed from the vh_backend; -1 */
	int call_fd;
	int err_fd;
	int kick_poll;           /* NOFD kick: the ring is polled */
	int call_inband;         /* NOFD call with INBAND_NOTIFICATIONS */
	int err_inband;
	int watch_fd;            /* the device's extra fd, -1 */
	unsigned num;
	int packed;
	struct vh_vring_addr addr;
	struct vh_memory *mem;   /* table the ring translates buffers through (reference) */
	uint32_t gen;
	struct vh_memory *ring_mem; /* table the ring area pointers come from (reference) */
	struct vhp_old_mem old[VHP_SERVER_MAX_OLD_TABLES];
	unsigned nold;
	struct vh_dirty_log *dlog; /* buffer writes are logged here (LOG_ALL with a log) */
	int logged;              /* something was logged since the log fd was last signalled */

	/* Element storage, allocated at start for `num` elements. Every element in flight holds
	 * one block, so slots_num - nfree of them are in flight, and those popped under the
	 * current table are that minus the old tables' pending counts. */
	struct vhp_slot *slots;
	struct vhp_block *free_blocks; /* stack of free blocks */
	unsigned nfree;
	unsigned slots_num;      /* size of the arrays above */
	uint8_t *store;          /* mmap: slots_num blocks of max_iov iovecs + max_iov u64 */
	size_t store_len;
	size_t gpa_off;          /* bytes from a block's iovecs to its GPAs */
	unsigned max_iov;
	int kicks_off;           /* the worker turned kicks off while it busy-polls */

	struct vhp_inflight_q inf;

	void *priv;
	struct vh_server_queue_stats st; /* relaxed atomics */

	/* Daemon (server_run.c). */
	unsigned worker;
	struct vhp_src kick_src, watch_src;
	int kick_reg;            /* fd registered with the worker's epoll, -1 */
	int watch_reg;
	int polled;              /* atomic: the worker polls this queue */
	int rerun;               /* worker-private: run again without waiting for a kick */
};

/* Inflight buffer mapping (GET/SET_INFLIGHT_FD). */
struct vhp_inflight {
	void *map;               /* what to munmap */
	size_t map_len;
	uint8_t *base;           /* queue 0's region */
	size_t qsize_bytes;      /* bytes per queue region */
	unsigned nq;
	unsigned qsize;          /* entries per queue region */
	int packed;
};

struct vhp_run;

struct vh_server {
	struct vh_server_config cfg;
	struct vh_server_ops ops;
	void *opaque;
	struct vh_backend *be;
	struct vh_server_queue *queues;
	unsigned nq;
	uint64_t features;       /* atomic: acked */
	uint64_t protocol;       /* negotiated protocol features (control thread) */

	/* Control thread. */
	struct vh_memory *mem;   /* current table (reference) */
	uint32_t mem_gen;
	struct vh_dirty_log *dlog; /* SET_LOG_BASE, heap, NULL = none */
	int log_all;
	int log_fd;              /* atomic: borrowed from the vh_backend */
	struct vhp_inflight inf;
	int reclaim;             /* atomic: a queue has an old table to release */

	int needs_reset;         /* atomic */
	int status;              /* last SET_STATUS */

	/* Daemon. */
	int stop_fd;             /* eventfd written by vh_server_stop() */
	int stop_req;            /* atomic */
	struct vhp_run *run;     /* atomic pointer: set while vh_server_run() runs */
	char *connect_path;      /* client mode */
};

/* ---- Queue locking ----------------------------------------------------------------------- */

#if defined(__has_builtin)
#if __has_builtin(__builtin_thread_pointer)
#define VHP_HAVE_THREAD_POINTER 1
#endif
#endif

/* A value unique to the calling thread: the thread pointer where the compiler gives it (one
 * instruction instead of a call), else pthread_self(). */
static inline uintptr_t vhp_self(void)
{
#ifdef VHP_HAVE_THREAD_POINTER
	return (uintptr_t)__builtin_thread_pointer();
#else
	return (uintptr_t)pthread_self();
#endif
}

static inline void vhp_q_lock(struct vh_server_queue *q)
{
	pthread_mutex_lock(&q->lock);
	__atomic_store_n(&q->holder, vhp_self(), __ATOMIC_RELAXED);
}

static inline void vhp_q_unlock(struct vh_server_queue *q)
{
	__atomic_store_n(&q->holder, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&q->lock);
}

/* Takes the lock unless this thread holds it already (inside `process`); 1 if taken. Only the
 * holder ever stores its own id, so a match cannot be another thread's. */
static inline int vhp_q_lock_auto(struct vh_server_queue *q)
{
	if (__atomic_load_n(&q->holder, __ATOMIC_RELAXED) == vhp_self())
		return 0;
	vhp_q_lock(q);
	return 1;
}

static inline void vhp_q_unlock_auto(struct vh_server_queue *q, int taken)
{
	if (taken)
		vhp_q_unlock(q);
}

static inline void vhp_stat_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

#define SLOG(s) (&(s)->cfg.log)

/* ---- server_queue.c ------------------------------------------------------------------------ */

int vhp_queue_start(struct vh_server *s, unsigned idx, int kick_fd, int poll);
/* Stops a started queue (the device's queue_stop runs without the lock); *base gets the
 * position if not NULL. -ENOENT if it was not started. */
int vhp_queue_stop(struct vh_server *s, unsigned idx, struct vh_vq_base *base);
void vhp_queue_mark_broken(struct vh_server_queue *q, const char *why);
/* Re-applies the server's log state to q (lock held). */
void vhp_queue_apply_log(struct vh_server_queue *q);
/* Runs process for q: drains the kick (drain), then calls process if runnable (and not broken,
 * unless `any`). 0, or -EAGAIN. */
int vhp_queue_run(struct vh_server_queue *q, int drain, int any);
/* Busy-poll form of vhp_queue_run(q, 0, 0): also turns the driver's kicks off (once) while the
 * worker keeps looking at the ring. 0, or -EAGAIN. */
int vhp_queue_poll(struct vh_server_queue *q);
/* Turns kicks back on before the worker sleeps (no-op unless vhp_queue_poll() turned them
 * off). 1 if buffers are available already (run the queue before sleeping), else 0. */
int vhp_queue_kicks_on(struct vh_server_queue *q);
/* After a kick-driven run that did work: makes sure the driver's next buffer brings a kick
 * (the device may have stopped popping before the ring was empty). 1 if buffers are
 * available already (run the queue again instead of waiting), else 0. */
int vhp_queue_rearm(struct vh_server_queue *q);
/* Makes the queue's fd readable so whoever polls it looks at the ring again. */
void vhp_queue_self_kick(struct vh_server_queue *q);
/* Releases old memory tables no element refers to any more (control thread). */
void vhp_queue_reclaim(struct vh_server *s);
/* Swaps in a new memory table (takes over the caller's reference). -EBUSY if a queue cannot
 * keep one more old table; then nothing changed. */
int vhp_queue_set_memory(struct vh_server *s, struct vh_memory *mem);
void vhp_queue_free_storage(struct vh_server_queue *q);

/* ---- inflight.c ---------------------------------------------------------------------------- */

int vhp_inflight_get(struct vh_server *s, const struct vh_inflight *req, struct vh_inflight *rep,
		     int *fd_out);
int vhp_inflight_set(struct vh_server *s, const struct vh_inflight *inf, int fd);
void vhp_inflight_unmap(struct vh_server *s);
/*
 * At queue start, with the ring created from the front-end's base: attaches q to its region,
 * recovers what was in flight, and, if the ring must start elsewhere (requests in flight),
 * stores the position in *base and returns 1 (the caller recreates the ring). 0 = keep the
 * ring; negative = out of memory (tracking is then off for this queue).
 */
int vhp_inflight_queue_start(struct vh_server_queue *q, struct vh_vq *vq, struct vh_vq_base *base);
void vhp_inflight_queue_stop(struct vh_server_queue *q);
/* Records popped elements (lock held); pos/wrap: packed avail position before the pop. */
void vhp_inflight_pop(struct vh_server_queue *q, const struct vh_vq_elem *elems, unsigned n,
		      uint16_t pos, uint8_t wrap);
/* Before and after the ring publishes n completions. */
void vhp_inflight_push_begin(struct vh_server_queue *q, const struct vh_vq_used *used,
			     unsigned n);
void vhp_inflight_push_end(struct vh_server_queue *q, const struct vh_vq_used *used, unsigned n);
/* The next request to resubmit into *e: 1, 0 when none is left, -EIO (ring broken). */
int vhp_inflight_resubmit(struct vh_server_queue *q, struct vh_vq_elem *e);

/* ---- server_run.c -------------------------------------------------------------------------- */

/* Register / unregister a queue fd with its worker's epoll while the daemon runs (no-ops
 * otherwise). Lock held. */
int vhp_run_watch(struct vh_server_queue *q, int kind, int fd);
void vhp_run_unwatch(struct vh_server_queue *q, int kind);
/* Wakes the queue's worker so it re-reads which queues it polls. */
void vhp_run_wake(struct vh_server_queue *q);

#endif
