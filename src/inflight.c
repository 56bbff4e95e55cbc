/* SPDX-License-Identifier: MIT */
/*
 * Inflight I/O tracking (INFLIGHT_SHMFD), split and packed, with the buffer layouts of the
 * vhost-user spec ("Inflight I/O tracking"; packed desc[] at byte 32, erratum E6).
 *
 * The buffer outlives this process: the front-end keeps it and hands it back with
 * SET_INFLIGHT_FD after a restart, and the requests that were in flight are resubmitted, in
 * the order they were first popped, before anything new. Its contents are hostile: every value
 * read from it is read once into a local, bounded before use, and every walk over it is capped
 * by the queue size. The data path never reads the buffer back: it writes the spec's records
 * and keeps private mirrors (free list, chain ends) for what it needs itself.
 *
 * Crash consistency: the records are written in the spec's order with release fences between
 * the steps, so whatever prefix of a pop or push reached memory, recovery finds a consistent
 * state. Recovery itself rewrites the queue's records in place; a crash during recovery can
 * lose the requests being recovered.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "server_priv.h"

/* ---- Layouts (machine byte order, as the spec says) ---------------------------------------- */

struct inf_split_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct inf_split {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct inf_split_desc desc[];
};

struct inf_packed_desc {
	uint8_t inflight;
	uint8_t padding;
	uint16_t next;
	uint16_t last;
	uint16_t num;
	uint64_t counter;
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

struct inf_packed {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[10]; /* spec: padding[7]; desc[] is 8-byte aligned at 32 (E6) */
	struct inf_packed_desc desc[];
};

_Static_assert(sizeof(struct inf_split_desc) == 16, "DescStateSplit is 16 bytes");
_Static_assert(offsetof(struct inf_split_desc, next) == 6, "DescStateSplit.next at 6");
_Static_assert(offsetof(struct inf_split_desc, counter) == 8, "DescStateSplit.counter at 8");
_Static_assert(sizeof(struct inf_split) == 16, "QueueRegionSplit header is 16 bytes");
_Static_assert(offsetof(struct inf_split, used_idx) == 14, "QueueRegionSplit.used_idx at 14");
_Static_assert(offsetof(struct inf_split, desc) == 16, "QueueRegionSplit.desc at 16");
_Static_assert(sizeof(struct inf_packed_desc) == 32, "DescStatePacked is 32 bytes");
_Static_assert(offsetof(struct inf_packed_desc, counter) == 8, "DescStatePacked.counter at 8");
_Static_assert(offsetof(struct inf_packed_desc, id) == 16, "DescStatePacked.id at 16");
_Static_assert(offsetof(struct inf_packed_desc, len) == 20, "DescStatePacked.len at 20");
_Static_assert(offsetof(struct inf_packed_desc, addr) == 24, "DescStatePacked.addr at 24");
_Static_assert(offsetof(struct inf_packed, used_idx) == 16, "QueueRegionPacked.used_idx at 16");
_Static_assert(offsetof(struct inf_packed, used_wrap_counter) == 20,
	       "QueueRegionPacked.used_wrap_counter at 20");
_Static_assert(offsetof(struct inf_packed, desc) == 32, "QueueRegionPacked.desc at 32 (E6)");
_Static_assert(_Alignof(struct inf_packed) == 8 && _Alignof(struct inf_split) == 8,
	       "regions need 8-byte alignment");

#define INF_VERSION 1

/* Packed descriptor flag bits (virtio 1.1): AVAIL is bit 7, USED bit 15. */
#define INF_F_NEXT 1u
#define INF_F_AVAIL (1u << 7)
#define INF_F_USED (1u << 15)

/* Every access to the shared buffer: one relaxed atomic load or store, never re-read. */
#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static size_t region_bytes(unsigned qsize, int packed)
{
	return packed ? sizeof(struct inf_packed) + (size_t)qsize * sizeof(struct inf_packed_desc)
		      : sizeof(struct inf_split) + (size_t)qsize * sizeof(struct inf_split_desc);
}

static int any_started(const struct vh_server *s)
{
	for (unsigned i = 0; i < s->nq; i++)
		if (s->queues[i].vq)
			return 1;
	return 0;
}

static int is_packed(const struct vh_server *s)
{
	return (__atomic_load_n(&s->features, __ATOMIC_RELAXED) & VH_BIT(VH_F_RING_PACKED)) != 0;
}

void vhp_inflight_unmap(struct vh_server *s)
{
	if (s->inf.map)
		munmap(s->inf.map, s->inf.map_len);
	memset(&s->inf, 0, sizeof(s->inf));
}

/* A fresh region: no request in flight. */
static void init_split_region(uint8_t *reg, unsigned num, uint16_t used_idx)
{
	struct inf_split *r = (struct inf_split *)(void *)reg;

	for (unsigned i = 0; i < num; i++) {
		ST(r->desc[i].inflight, 0);
		ST(r->desc[i].next, 0);
		ST(r->desc[i].counter, 0);
	}
	ST(r->features, 0);
	ST(r->desc_num, (uint16_t)num);
	ST(r->last_batch_head, 0);
	ST(r->used_idx, used_idx);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	ST(r->version, INF_VERSION);
}

static void init_packed_region(uint8_t *reg, unsigned num, uint16_t used, uint8_t wrap)
{
	struct inf_packed *r = (struct inf_packed *)(void *)reg;

	for (unsigned i = 0; i < num; i++) {
		ST(r->desc[i].inflight, 0);
		ST(r->desc[i].next, (uint16_t)(i + 1)); /* the last one names num: end of list */
		ST(r->desc[i].last, 0);
		ST(r->desc[i].num, 0);
		ST(r->desc[i].counter, 0);
	}
	ST(r->features, 0);
	ST(r->desc_num, (uint16_t)num);
	ST(r->free_head, 0);
	ST(r->old_free_head, 0);
	ST(r->used_idx, used);
	ST(r->old_used_idx, used);
	ST(r->used_wrap_counter, wrap);
	ST(r->old_used_wrap_counter, wrap);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	ST(r->version, INF_VERSION);
}

/* ---- GET_INFLIGHT_FD / SET_INFLIGHT_FD ------------------------------------------------------ */

int vhp_inflight_get(struct vh_server *s, const struct vh_inflight *req, struct vh_inflight *rep,
		     int *fd_out)
{
	int packed = is_packed(s);
	long pg = sysconf(_SC_PAGESIZE);
	size_t per, len;
	void *map;
	int fd;

	if (any_started(s))
		return -EBUSY;
	/* The vh_backend bounded num_queues by ours and queue_size by the maximum ring size, so
	 * this is at most 256 x (32 + 32 x 32768) bytes. */
	per = region_bytes(req->queue_size, packed);
	len = per * req->num_queues;
	len = (len + (size_t)pg - 1) & ~((size_t)pg - 1);
	fd = memfd_create("libvhost-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		int e = -errno;

		close(fd);
		return e;
	}
	/* A fresh memfd reads as zeros: every region is "version 0, uninitialised" and is set up
	 * for its ring's actual size when the ring starts, so queues never started cost no
	 * memory. */
	vhp_inflight_unmap(s);
	s->inf.map = map;
	s->inf.map_len = len;
	s->inf.base = map;
	s->inf.qsize_bytes = per;
	s->inf.nq = req->num_queues;
	s->inf.qsize = req->queue_size;
	s->inf.packed = packed;
	rep->mmap_size = len;
	rep->mmap_offset = 0;
	*fd_out = fd;
	vhp_info(SLOG(s), "server: inflight buffer of %zu bytes (%u queues of %u, %s)", len,
		 req->num_queues, req->queue_size, packed ? "packed" : "split");
	return 0;
}

int vhp_inflight_set(struct vh_server *s, const struct vh_inflight *inf, int fd)
{
	int packed = is_packed(s);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t per, need, delta, maplen;
	uint64_t aoff;
	int seals;
	void *map;

	if (any_started(s))
		return -EBUSY;
	/* The records hold 8-byte fields read and written as atomics: the buffer must start on an
	 * 8-byte boundary (every region size is a multiple of 8, so then all of them do). */
	if (inf->mmap_offset % _Alignof(struct inf_packed)) {
		vhp_warn(SLOG(s), "server: inflight buffer at offset %llu is not 8-byte aligned",
			 (unsigned long long)inf->mmap_offset);
		return -EINVAL;
	}
	per = region_bytes(inf->queue_size, packed);
	need = per * inf->num_queues;
	if (inf->mmap_size < need) {
		vhp_warn(SLOG(s), "server: inflight buffer of %llu bytes cannot hold %u queues of %u",
			 (unsigned long long)inf->mmap_size, inf->num_queues, inf->queue_size);
		return -EINVAL;
	}
	/* A file the front-end could shrink under the mapping would SIGBUS this process: only a
	 * buffer sealed against shrinking (as GET_INFLIGHT_FD makes it) is accepted. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		vhp_warn(SLOG(s), "server: inflight fd is not sealed against shrinking");
		return -EPERM;
	}
	/* Only what the queues need is mapped, however large the file. */
	aoff = inf->mmap_offset & ~(uint64_t)(pg - 1);
	delta = (size_t)(inf->mmap_offset - aoff);
	maplen = need + delta;
	map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)aoff);
	if (map == MAP_FAILED)
		return -errno;
	vhp_inflight_unmap(s);
	s->inf.map = map;
	s->inf.map_len = maplen;
	s->inf.base = (uint8_t *)map + delta;
	s->inf.qsize_bytes = per;
	s->inf.nq = inf->num_queues;
	s->inf.qsize = inf->queue_size;
	s->inf.packed = packed;
	return 0;
}

/* ---- Queue start: attach and recover -------------------------------------------------------- */

static void free_queue_state(struct vhp_inflight_q *t)
{
	free(t->next);
	free(t->id_head);
	free(t->id_last);
	free(t->resub);
	free(t->resub_cnt);
	free(t->resub_desc);
	memset(t, 0, sizeof(*t));
}

void vhp_inflight_queue_stop(struct vh_server_queue *q)
{
	free_queue_state(&q->inf);
}

struct order {
	uint64_t counter;
	uint16_t idx;    /* split: head; packed: head entry */
	uint16_t start;  /* packed: first descriptor in resub_desc */
	uint16_t cnt;    /* packed: descriptors */
};

static int cmp_order(const void *a, const void *b)
{
	const struct order *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

static int recover_split(struct vh_server_queue *q, struct vh_vq *vq, struct vh_vq_base *base)
{
	struct vhp_inflight_q *t = &q->inf;
	struct inf_split *r = (struct inf_split *)(void *)t->region;
	unsigned num = t->num, n = 0, i;
	struct vh_vq_base cur;
	uint16_t version = LD(r->version), desc_num = LD(r->desc_num);
	uint16_t lbh = LD(r->last_batch_head), used_idx = LD(r->used_idx), ring_used;
	struct order *list;
	uint8_t *listed;

	vh_vq_get_base(vq, &cur); /* split: used index read from the used ring */
	ring_used = cur.used_idx;
	if (version != INF_VERSION || desc_num != num) {
		if (version != 0)
			vhp_warn(SLOG(q->s), "server: queue %u: inflight region (version %u, %u "
				 "entries) not for this ring of %u: starting afresh", q->idx,
				 version, desc_num, num);
		init_split_region(t->region, num, ring_used);
		return 0;
	}
	if (used_idx != ring_used) {
		/* Completions published but not recorded: the last batch is in the list at
		 * last_batch_head; clear it. A batch is never larger than the ring. */
		uint16_t batch = (uint16_t)(ring_used - used_idx), h = lbh;

		if (batch > num) {
			vhp_warn(SLOG(q->s), "server: queue %u: inflight used index %u is %u behind "
				 "the ring: starting afresh", q->idx, used_idx, batch);
			init_split_region(t->region, num, ring_used);
			return 0;
		}
		for (unsigned k = 0; k < batch && h < num; k++) {
			ST(r->desc[h].inflight, 0);
			h = LD(r->desc[h].next);
		}
	}
	list = calloc(num, sizeof(*list));
	listed = calloc(num, 1);
	if (!list || !listed) {
		free(list);
		free(listed);
		return -ENOMEM;
	}
	for (i = 0; i < num; i++) {
		if (LD(r->desc[i].inflight) == 1) {
			list[n].counter = LD(r->desc[i].counter);
			list[n].idx = (uint16_t)i;
			listed[i] = 1;
			n++;
		}
	}
	qsort(list, n, sizeof(*list), cmp_order);
	/* Renumber 1..n in the recovered order (a partial renumbering keeps the order of a
	 * well-formed buffer: its k-th counter is at least k) and clear anything not in flight. */
	for (i = 0; i < num; i++)
		if (!listed[i])
			ST(r->desc[i].inflight, 0);
	for (i = 0; i < n; i++) {
		ST(r->desc[list[i].idx].counter, (uint64_t)i + 1);
		t->resub[i] = list[i].idx;
	}
	ST(r->used_idx, ring_used);
	t->last_batch_head = lbh < num ? lbh : 0;
	ST(r->last_batch_head, t->last_batch_head);
	t->counter = n;
	t->resub_n = n;
	t->resub_pos = 0;
	free(list);
	free(listed);
	if (n)
		vhp_info(SLOG(q->s), "server: queue %u: %u requests in flight before the restart "
			 "are resubmitted", q->idx, n);
	/* Each completion advanced the used index by one, so the next new head follows the
	 * used index by the requests still in flight. */
	if ((uint16_t)(ring_used + n) == cur.last_avail_idx)
		return 0;
	base->last_avail_idx = (uint16_t)(ring_used + n);
	return 1;
}

/* Records one chain (cnt descriptors, buffer id `id`) as the spec's pop steps do, taking entries
 * from the private free list. Descriptors come from arr, or from the ring at ring_pos when arr
 * is NULL. Returns 0, or -1 if the list ran out (then tracking stops for the queue). */
static int record_chain(struct vh_server_queue *q, const struct vh_vq_desc *arr,
			uint16_t ring_pos, unsigned cnt, uint16_t id)
{
	struct vhp_inflight_q *t = &q->inf;
	struct inf_packed *r = (struct inf_packed *)(void *)t->region;
	uint16_t h = t->free_head, e = h, pos = ring_pos;

	if (h >= t->num || cnt == 0)
		return -1;
	ST(r->desc[h].num, 0);
	ST(r->desc[h].counter, ++t->counter);
	ST(r->desc[h].inflight, 1);
	for (unsigned k = 0; k < cnt; k++) {
		struct vh_vq_desc d;

		e = t->free_head;
		if (e >= t->num)
			return -1;
		if (arr) {
			d = arr[k];
		} else {
			(void)vh_vq_read_desc(q->vq, pos, &d);
			pos = (uint16_t)(pos + 1u == t->num ? 0 : pos + 1u);
		}
		if (k + 1 == cnt)
			d.id = id; /* the id the ring accepted, whatever the memory says now */
		ST(r->desc[e].addr, d.addr);
		ST(r->desc[e].len, d.len);
		ST(r->desc[e].flags, d.flags);
		ST(r->desc[e].id, d.id);
		ST(r->desc[h].num, (uint16_t)(k + 1));
		if (k + 1 == cnt)
			ST(r->desc[h].last, e);
		t->free_head = t->next[e];
	}
	__atomic_thread_fence(__ATOMIC_RELEASE);
	ST(r->free_head, t->free_head);
	ST(r->old_free_head, t->free_head);
	t->id_head[id] = h;
	t->id_last[id] = e;
	return 0;
}

static void init_packed_state(struct vh_server_queue *q, uint16_t used, uint8_t wrap)
{
	struct vhp_inflight_q *t = &q->inf;

	init_packed_region(t->region, t->num, used, wrap);
	for (unsigned i = 0; i < t->num; i++)
		t->next[i] = (uint16_t)(i + 1);
	t->free_head = 0;
	t->counter = 0;
}

static int recover_packed(struct vh_server_queue *q, struct vh_vq *vq, struct vh_vq_base *base)
{
	struct vhp_inflight_q *t = &q->inf;
	struct inf_packed *r = (struct inf_packed *)(void *)t->region;
	unsigned num = t->num, nch = 0, total = 0, i;
	struct vh_vq_base cur;
	uint16_t version = LD(r->version), desc_num = LD(r->desc_num);
	uint16_t fh = LD(r->free_head), ofh = LD(r->old_free_head);
	uint16_t ui = LD(r->used_idx), oui = LD(r->old_used_idx);
	uint8_t uw = LD(r->used_wrap_counter), ouw = LD(r->old_used_wrap_counter);
	uint8_t *state = NULL, *idseen = NULL;
	struct order *list = NULL;
	const char *why = NULL;
	uint16_t ap;
	uint8_t aw;

	vh_vq_get_base(vq, &cur);
	if (version != INF_VERSION || desc_num != num) {
		if (version != 0)
			vhp_warn(SLOG(q->s), "server: queue %u: inflight region (version %u, %u "
				 "entries) not for this ring of %u: starting afresh", q->idx,
				 version, desc_num, num);
		init_packed_state(q, cur.used_idx, cur.used_wrap);
		return 0;
	}
	if (fh > num || ofh > num || ui >= num || oui >= num || uw > 1 || ouw > 1) {
		why = "header out of range";
		goto fresh;
	}
	if (ui != oui || uw != ouw || fh != ofh) {
		/* A push was under way. If the descriptor at old_used_idx no longer looks available
		 * for that lap, its completion reached the driver: commit; else roll back. */
		struct vh_vq_desc d;
		uint16_t avail = ouw ? INF_F_AVAIL : INF_F_USED;

		(void)vh_vq_read_desc(vq, oui, &d);
		if ((d.flags & (INF_F_AVAIL | INF_F_USED)) != avail) {
			ofh = fh;
			oui = ui;
			ouw = uw;
		}
	}
	state = calloc(num, 1);  /* 1 free, 2 in a chain */
	idseen = calloc(num, 1);
	list = calloc(num, sizeof(*list));
	if (!state || !idseen || !list) {
		free(state);
		free(idseen);
		free(list);
		return -ENOMEM;
	}
	/* The free list from the rolled-back head: nothing on it is in flight. */
	for (uint16_t e = ofh, steps = 0; e < num; steps++) {
		if (state[e] || steps >= num) {
			why = "free list loops";
			goto fresh;
		}
		state[e] = 1;
		ST(r->desc[e].inflight, 0);
		e = LD(r->desc[e].next);
	}
	/* Heads in flight, each with its chain of `num` entries ending at `last`. */
	for (i = 0; i < num; i++) {
		uint16_t cnt, last, e = (uint16_t)i, id;

		if (state[i] || LD(r->desc[i].inflight) != 1)
			continue;
		cnt = LD(r->desc[i].num);
		last = LD(r->desc[i].last);
		if (cnt == 0 || cnt > num - total) {
			why = "chain length out of range";
			goto fresh;
		}
		for (unsigned k = 0; k < cnt; k++) {
			struct vh_vq_desc *d = &t->resub_desc[total + k];

			if (e >= num || state[e]) {
				why = "chains overlap or leave the region";
				goto fresh;
			}
			state[e] = 2;
			d->addr = LD(r->desc[e].addr);
			d->len = LD(r->desc[e].len);
			d->flags = LD(r->desc[e].flags);
			d->id = LD(r->desc[e].id);
			if (k + 1 < cnt)
				e = LD(r->desc[e].next);
		}
		id = t->resub_desc[total + cnt - 1].id;
		if (e != last || id >= num || idseen[id]) {
			why = "chain end or buffer id inconsistent";
			goto fresh;
		}
		idseen[id] = 1;
		list[nch].counter = LD(r->desc[i].counter);
		list[nch].idx = (uint16_t)i;
		list[nch].start = (uint16_t)total;
		list[nch].cnt = cnt;
		nch++;
		total += cnt;
	}
	qsort(list, nch, sizeof(*list), cmp_order);
	/* The chains in flight sit between the used position and the next available one. */
	ap = (uint16_t)(oui + total);
	aw = ouw;
	if (ap >= num) {
		ap = (uint16_t)(ap - num);
		aw ^= 1;
	}
	/* Rewrite the region in the recovered order (new counters, a linear free list). */
	init_packed_state(q, oui, ouw);
	for (i = 0; i < nch; i++) {
		const struct vh_vq_desc *d = &t->resub_desc[list[i].start];

		if (record_chain(q, d, 0, list[i].cnt, d[list[i].cnt - 1].id)) {
			why = "free list exhausted";
			goto fresh;
		}
		t->resub[i] = list[i].start;
		t->resub_cnt[i] = list[i].cnt;
	}
	t->resub_n = nch;
	t->resub_pos = 0;
	free(state);
	free(idseen);
	free(list);
	if (nch)
		vhp_info(SLOG(q->s), "server: queue %u: %u requests in flight before the restart "
			 "are resubmitted", q->idx, nch);
	if (cur.last_avail_idx == ap && cur.avail_wrap == aw && cur.used_idx == oui &&
	    cur.used_wrap == ouw)
		return 0;
	base->last_avail_idx = ap;
	base->avail_wrap = aw;
	base->used_idx = oui;
	base->used_wrap = ouw;
	return 1;
fresh:
	vhp_warn(SLOG(q->s), "server: queue %u: inflight region unusable (%s): starting afresh",
		 q->idx, why);
	free(state);
	free(idseen);
	free(list);
	t->resub_n = 0;
	t->resub_pos = 0;
	init_packed_state(q, cur.used_idx, cur.used_wrap);
	return 0;
}

int vhp_inflight_queue_start(struct vh_server_queue *q, struct vh_vq *vq, struct vh_vq_base *base)
{
	struct vh_server *s = q->s;
	struct vhp_inflight_q *t = &q->inf;
	unsigned num = vh_vq_num(vq);
	int r;

	free_queue_state(t);
	if (!s->inf.map || q->idx >= s->inf.nq)
		return 0;
	if (s->inf.packed != q->packed || num > s->inf.qsize) {
		vhp_warn(SLOG(s), "server: queue %u: inflight buffer (%s, %u entries) does not fit "
			 "the ring (%s, %u): not tracked", q->idx, s->inf.packed ? "packed" : "split",
			 s->inf.qsize, q->packed ? "packed" : "split", num);
		return 0;
	}
	t->region = s->inf.base + (size_t)q->idx * s->inf.qsize_bytes;
	t->packed = q->packed;
	t->num = num;
	t->resub = calloc(num, sizeof(*t->resub));
	if (t->packed) {
		t->next = calloc(num, sizeof(*t->next));
		t->id_head = calloc(num, sizeof(*t->id_head));
		t->id_last = calloc(num, sizeof(*t->id_last));
		t->resub_cnt = calloc(num, sizeof(*t->resub_cnt));
		t->resub_desc = calloc(num, sizeof(*t->resub_desc));
	}
	if (!t->resub || (t->packed && (!t->next || !t->id_head || !t->id_last || !t->resub_cnt ||
					!t->resub_desc))) {
		free_queue_state(t);
		return -ENOMEM;
	}
	r = t->packed ? recover_packed(q, vq, base) : recover_split(q, vq, base);
	if (r < 0)
		free_queue_state(t);
	return r;
}

/* ---- Data path ------------------------------------------------------------------------------ */

static void stop_tracking(struct vh_server_queue *q, const char *why)
{
	vhp_err(SLOG(q->s), "server: queue %u: inflight tracking stops: %s", q->idx, why);
	q->inf.region = NULL;
}

void vhp_inflight_pop(struct vh_server_queue *q, const struct vh_vq_elem *elems, unsigned n,
		      uint16_t pos, uint8_t wrap)
{
	struct vhp_inflight_q *t = &q->inf;

	(void)wrap;
	if (!t->packed) {
		struct inf_split *r = (struct inf_split *)(void *)t->region;

		for (unsigned i = 0; i < n; i++) {
			uint16_t h = elems[i].id;

			ST(r->desc[h].counter, ++t->counter);
			__atomic_thread_fence(__ATOMIC_RELEASE);
			ST(r->desc[h].inflight, 1);
		}
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (record_chain(q, NULL, pos, elems[i].ndesc, elems[i].id)) {
			stop_tracking(q, "more descriptors in flight than entries");
			return;
		}
		pos = (uint16_t)(pos + elems[i].ndesc);
		if (pos >= t->num)
			pos = (uint16_t)(pos - t->num);
	}
}

void vhp_inflight_push_begin(struct vh_server_queue *q, const struct vh_vq_used *used,
			     unsigned n)
{
	struct vhp_inflight_q *t = &q->inf;

	if (!t->packed) {
		struct inf_split *r = (struct inf_split *)(void *)t->region;

		for (unsigned i = 0; i < n; i++) {
			uint16_t h = (uint16_t)used[i].id;

			ST(r->desc[h].next, t->last_batch_head);
			t->last_batch_head = h;
			__atomic_thread_fence(__ATOMIC_RELEASE);
			ST(r->last_batch_head, h);
		}
	} else {
		struct inf_packed *r = (struct inf_packed *)(void *)t->region;
		struct vh_vq_base b;
		unsigned total = 0, p;

		for (unsigned i = 0; i < n; i++) {
			uint16_t id = (uint16_t)used[i].id, h = t->id_head[id], l = t->id_last[id];

			ST(r->desc[l].next, t->free_head);
			t->next[l] = t->free_head;
			t->free_head = h;
			total += q->slots[id].ndesc;
		}
		vh_vq_get_base(q->vq, &b);
		p = b.used_idx + total;
		/* At most num descriptors are in flight, so this wraps at most once. */
		if (p >= t->num) {
			p -= t->num;
			b.used_wrap ^= 1;
		}
		__atomic_thread_fence(__ATOMIC_RELEASE);
		ST(r->free_head, t->free_head);
		ST(r->used_idx, (uint16_t)p);
		ST(r->used_wrap_counter, b.used_wrap);
	}
	/* The records above reach memory before the ring publishes the completions. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

void vhp_inflight_push_end(struct vh_server_queue *q, const struct vh_vq_used *used, unsigned n)
{
	struct vhp_inflight_q *t = &q->inf;
	struct vh_vq_base b;

	__atomic_thread_fence(__ATOMIC_RELEASE);
	vh_vq_get_base(q->vq, &b);
	if (!t->packed) {
		struct inf_split *r = (struct inf_split *)(void *)t->region;

		for (unsigned i = 0; i < n; i++)
			ST(r->desc[used[i].id].inflight, 0);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		ST(r->used_idx, b.used_idx);
	} else {
		struct inf_packed *r = (struct inf_packed *)(void *)t->region;

		for (unsigned i = 0; i < n; i++)
			ST(r->desc[t->id_head[used[i].id]].inflight, 0);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		ST(r->old_free_head, t->free_head);
		ST(r->old_used_idx, b.used_idx);
		ST(r->old_used_wrap_counter, b.used_wrap);
	}
}

int vhp_inflight_resubmit(struct vh_server_queue *q, struct vh_vq_elem *e)
{
	struct vhp_inflight_q *t = &q->inf;
	unsigned k;

	if (t->resub_pos >= t->resub_n)
		return 0;
	k = t->resub_pos++;
	if (!t->packed)
		return vh_vq_pop_head(q->vq, t->resub[k], e);
	return vh_vq_pop_descs(q->vq, &t->resub_desc[t->resub[k]], t->resub_cnt[k], e);
}
