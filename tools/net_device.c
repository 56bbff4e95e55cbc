/* SPDX-License-Identifier: MIT */
/*
 * virtio-net device on the back-end framework: see net_device.h.
 *
 * Data path rules kept here:
 *  - The virtio-net header of a TX frame is gather-copied (it may straddle descriptors) into a
 *    local struct and checked there; the tap gets that checked copy, never the guest's bytes
 *    (which the guest could change after the check). A malformed frame is dropped and counted.
 *  - Popped elements that cannot be used yet (RX buffers while the tap is empty, TX frames while
 *    the echo hand-over is full) wait in a per-ring FIFO ("stash"); the ring has no way to give
 *    them back. When the ring stops they are returned with length 0 so the driver keeps every
 *    buffer (and IN_ORDER stays in order).
 *  - No allocation per frame: per-ring arrays are allocated when the ring starts.
 *  - One push and one notify per batch of NET_BATCH frames; at most NET_BUDGET frames per call,
 *    then the queue wakes itself through its eventfd so other rings on the worker get a turn.
 *  - RX without buffers does not spin: the tap fd is unwatched until the driver kicks.
 *  - Echo: the TX worker copies frames straight into RX buffers when it can take the RX ring's
 *    state (rx_lock) and nothing waits in the hand-over (so order holds); otherwise frames go
 *    through the hand-over to the RX worker. Guest-to-guest copies are memmoves (a guest may
 *    make the buffers overlap). The tap data path does not take part in this.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include <libvhost/backend.h>
#include <libvhost/driver.h>
#include <libvhost/ring.h>
#include <libvhost/server.h>
#include <libvhost/wire.h>

#include "net_device.h"

#define NET_BATCH 32u
#define NET_BUDGET 256u
#define NET_MAX_IOV 1024u           /* UIO_MAXIOV */
#define NET_CONFIG_SIZE 12u         /* mac, status, max_virtqueue_pairs, mtu */
#define NET_S_LINK_UP 1u

/* virtio_net_hdr flags and gso types */
#define HDR_F_NEEDS_CSUM 1u
#define HDR_F_DATA_VALID 2u
#define HDR_GSO_NONE 0u
#define HDR_GSO_TCPV4 1u
#define HDR_GSO_TCPV6 4u
#define HDR_GSO_ECN 0x80u

/* The header is struct vh_net_hdr (driver.h): 12 bytes, 10 without num_buffers (legacy). */

/* ---- Echo hand-over: one producer (the TX ring's worker), one consumer (the RX ring's) ---- */

#define HO_SIZE (1u << 20)
#define HO_WRAP UINT32_MAX

struct ho_rec {
	uint32_t len;                /* frame bytes that follow, or HO_WRAP: continue at 0 */
	uint32_t reserved[3];
};
_Static_assert(sizeof(struct ho_rec) == 16, "records are 16-byte aligned");
_Static_assert(NET_MAX_FRAME + 2 * sizeof(struct ho_rec) < HO_SIZE / 4, "hand-over too small");

struct ho_ring {
	uint8_t *buf;
	size_t head;                 /* written by the producer (release), bytes ever produced */
	size_t tail;                 /* written by the consumer (release) */
	size_t resv;                 /* producer: where the reserved record starts */
};

static size_t ho_rec_size(uint32_t len)
{
	return sizeof(struct ho_rec) + (((size_t)len + 15u) & ~(size_t)15u);
}

/* Producer: room for a frame of len bytes, or NULL when full. */
static uint8_t *ho_reserve(struct ho_ring *h, uint32_t len)
{
	size_t head = h->head;
	size_t tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
	size_t rec = ho_rec_size(len);
	size_t pos = head & (HO_SIZE - 1);
	size_t end = HO_SIZE - pos;
	size_t need = rec <= end ? rec : end + rec;

	if (HO_SIZE - (head - tail) < need)
		return NULL;
	if (rec > end) {
		((struct ho_rec *)(void *)(h->buf + pos))->len = HO_WRAP;
		pos = 0;
		head += end;
	}
	h->resv = head;
	((struct ho_rec *)(void *)(h->buf + pos))->len = len;
	return h->buf + pos + sizeof(struct ho_rec);
}

static void ho_commit(struct ho_ring *h, uint32_t len)
{
	/* Publishes the record (and any wrap marker before it) to the consumer. */
	__atomic_store_n(&h->head, h->resv + ho_rec_size(len), __ATOMIC_RELEASE);
}

/* Consumer: the oldest record, or NULL. */
static const struct ho_rec *ho_peek(struct ho_ring *h)
{
	size_t tail = h->tail;
	size_t head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
	const struct ho_rec *r;
	size_t pos;

	if (tail == head)
		return NULL;
	pos = tail & (HO_SIZE - 1);
	r = (const void *)(h->buf + pos);
	if (r->len == HO_WRAP) {
		/* The producer commits a marker together with the record after it. */
		tail += HO_SIZE - pos;
		__atomic_store_n(&h->tail, tail, __ATOMIC_RELEASE);
		if (tail == head)
			return NULL;
		r = (const void *)h->buf;
	}
	return r;
}

static void ho_consume(struct ho_ring *h, const struct ho_rec *r)
{
	/* seq_cst: the TX side sets tx_blocked and then looks at the tail; we store the tail
	 * and then look at tx_blocked, so one of us sees the other. */
	__atomic_store_n(&h->tail, h->tail + ho_rec_size(r->len), __ATOMIC_SEQ_CST);
}

/* ---- Device state ------------------------------------------------------------------------ */

struct net_dev;
struct net_pair;

/* Per ring, allocated when the ring starts (queue_start), freed when it stops. */
struct net_q {
	struct net_pair *p;
	struct vh_server_queue *q;
	unsigned num;
	int tx;
	unsigned hdr_len;
	uint64_t features;
	size_t rx_need;              /* tap RX with MRG_RXBUF: buffer bytes to gather before a read */
	/* popped, not yet used: FIFO of up to num elements */
	struct vh_vq_elem *stash;
	unsigned st_head, st_n;
	uint64_t st_space;           /* RX: sum of in_len over the stash */
	unsigned pop_ask;            /* echo TX: elements asked of a pop (tx_pop) */
	struct vh_vq_used *used;     /* num entries */
	uint8_t *full;               /* used[i] filled its buffer completely */
	unsigned nused;
	int split_full;              /* publish a full buffer as the last entry of a push */
	int watched;                 /* fd registered with vh_server_queue_watch_fd, or -1 */
	int broken;
	int was_enabled;             /* TX: enabled at some point since the ring started */
	int foreign;                 /* echo RX used by the TX worker, which does not hold the RX
				      * queue's lock: push with the locking call */
	int warned;
	uint8_t *bounce;             /* NET_MAX_FRAME + header: TX linearising, RX overflow */
	struct iovec iov[NET_MAX_IOV];
};

struct net_pair {
	struct net_dev *d;
	unsigned idx;
	int tap_fd;                  /* tap mode: this pair's queue of the tap; -1 */
	int rx_evt, tx_evt;          /* eventfds watched by the RX / TX ring */
	int rx_set, tx_set;          /* atomic: the eventfd may be signalled (evt_wake) */
	struct ho_ring ho;           /* echo mode */
	int rx_started;              /* atomic: the RX ring is started and not broken */
	int tx_blocked;              /* atomic: TX waits for room in the hand-over */
	/* Echo: the RX ring's device state (rxq and the net_q it points to) belongs to whoever
	 * holds rx_lock: the RX worker during its process call, the TX worker while it copies
	 * frames straight into RX buffers, queue_start / queue_stop of the RX ring. Workers only
	 * try it (a worker holding its own queue lock must not wait for it); an RX worker that
	 * found it taken sets rx_missed, and the holder wakes it when it lets go. */
	int rx_lock;                 /* atomic: 0 free, 1 taken */
	int rx_missed;               /* atomic */
	struct net_q *rxq;           /* the started echo RX ring, or NULL */
	int attached;                /* tap queue attached (multi-queue taps; RX worker / stop) */
	struct net_pair_stats st;    /* relaxed atomics */
};

struct net_dev {
	struct net_dev_opts o;
	struct vh_server *s;
	struct net_pair *pairs;
	unsigned npairs;
	uint64_t features;           /* device features offered */
	uint64_t offloads;           /* offload features offered (tap accepted them) */
	unsigned tap_mtu;            /* atomic: MTU of the tap, for RX buffer gathering */
	unsigned gso_rx;             /* atomic: the tap may hand us GSO frames */
	uint8_t config[NET_CONFIG_SIZE];
	uint64_t rarp;               /* atomic: SEND_RARP requests */
};

static void dlog(const struct net_dev *d, enum vh_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void dlog(const struct net_dev *d, enum vh_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!d->o.log.fn || lvl > d->o.log.max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->o.log.fn(d->o.log.opaque, lvl, msg);
}

static void stat_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static int has(uint64_t features, unsigned bit)
{
	return (features >> bit) & 1;
}

/* Each of a pair's eventfds has a flag "may be signalled": a poll that finds it clear makes
 * no read(), a wake that finds it set makes no write(). The waker publishes its data, then
 * swaps the flag to 1 and writes only if it was 0; the woken side swaps it to 0 before it
 * reads the eventfd and then the data. Both swaps are full barriers, so a waker that finds
 * the flag set has its data seen after the reader's swap. */
static void evt_wake(int *set, int fd)
{
	uint64_t one = 1;
	ssize_t r;

	if (__atomic_exchange_n(set, 1, __ATOMIC_SEQ_CST))
		return;
	/* EAGAIN means the counter is already non-zero: the reader wakes anyway. */
	r = write(fd, &one, sizeof(one));
	(void)r;
}

static void evt_drain(int *set, int fd)
{
	uint64_t v;

	if (!__atomic_load_n(set, __ATOMIC_RELAXED) || !__atomic_exchange_n(set, 0, __ATOMIC_SEQ_CST))
		return;
	if (read(fd, &v, sizeof(v)) < 0)
		/* The waker set the flag and has not written yet: it will, so the next drain
		 * must read. */
		__atomic_store_n(set, 1, __ATOMIC_SEQ_CST);
}

/* ---- Echo: who owns the RX ring's state ---------------------------------------------------- */

static int rx_trylock(struct net_pair *p)
{
	return !__atomic_load_n(&p->rx_lock, __ATOMIC_RELAXED) &&
	       !__atomic_exchange_n(&p->rx_lock, 1, __ATOMIC_SEQ_CST);
}

/* The control thread (queue_start / queue_stop), which holds no queue lock; a worker keeps
 * the lock for one process call at most. */
static void rx_lock_wait(struct net_pair *p)
{
	while (!rx_trylock(p))
		sched_yield();
}

/* Lets go; wakes the RX worker if it came by meanwhile. */
static void rx_unlock(struct net_pair *p)
{
	__atomic_store_n(&p->rx_lock, 0, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&p->rx_missed, __ATOMIC_SEQ_CST) &&
	    __atomic_exchange_n(&p->rx_missed, 0, __ATOMIC_SEQ_CST))
		evt_wake(&p->rx_set, p->rx_evt);
}

/* The RX worker: 1 with the lock, or 0 after asking the holder to wake it (the second try
 * covers a holder that let go before it could see rx_missed). */
static int rx_enter(struct net_pair *p)
{
	if (rx_trylock(p))
		return 1;
	__atomic_store_n(&p->rx_missed, 1, __ATOMIC_SEQ_CST);
	return rx_trylock(p);
}

static void rx_leave(struct net_pair *p)
{
	__atomic_store_n(&p->rx_missed, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&p->rx_lock, 0, __ATOMIC_RELEASE);
}

/* ---- Stash and used batch ------------------------------------------------------------------ */

static struct vh_vq_elem *st_at(struct net_q *qs, unsigned i)
{
	return &qs->stash[(qs->st_head + i) % qs->num];
}

/* Pops up to max more elements into the stash. Returns the count, 0, or -EIO (broken). */
static int st_pop(struct net_q *qs, unsigned max)
{
	unsigned tail = (qs->st_head + qs->st_n) % qs->num;
	unsigned room = qs->num - qs->st_n;
	unsigned n = max;
	int r;

	if (qs->broken)
		return -EIO;
	if (n > room)
		n = room;
	if (n > qs->num - tail)
		n = qs->num - tail;     /* contiguous part; the next call wraps */
	if (n == 0)
		return 0;
	/* No clearing here: the stash starts zeroed, an element is cleared when it leaves the
	 * stash (st_complete), and one the server prepared but did not fill keeps pointers into
	 * the server's storage, which it takes for none given. */
	r = vh_server_queue_pop(qs->q, &qs->stash[tail], n);
	if (r < 0) {
		qs->broken = 1;
		return r;
	}
	for (int i = 0; !qs->tx && i < r; i++)
		qs->st_space += qs->stash[tail + (unsigned)i].in_len;
	qs->st_n += (unsigned)r;
	return r;
}

/* The head element leaves the stash as a completion of len bytes. */
static void st_complete(struct net_q *qs, uint32_t len)
{
	struct vh_vq_elem *e = st_at(qs, 0);

	qs->used[qs->nused].id = e->id;
	qs->used[qs->nused].len = len;
	qs->full[qs->nused] = len == e->in_len;
	qs->nused++;
	if (!qs->tx)
		qs->st_space -= e->in_len;
	e->iov = NULL;              /* the next pop prepares it with one copy */
	e->iov_gpa = NULL;
	qs->st_head = (qs->st_head + 1) % qs->num;
	qs->st_n--;
}

static int q_push(struct net_q *qs, const struct vh_vq_used *u, unsigned n)
{
	return qs->foreign ? vh_server_queue_push(qs->q, u, n) :
			     vh_server_queue_push_locked(qs->q, u, n);
}

/* Publishes the collected completions (one release store) and notifies once.
 *
 * With IN_ORDER the ring writes a run of completely filled buffers as one used entry (the
 * spec's batched form). DPDK's in-order RX paths read one entry per buffer and take its length
 * from it, so on RX a full buffer is published as the last entry of its push instead: one more
 * release store per full buffer, still one notification. */
static void q_flush(struct net_q *qs)
{
	unsigned start = 0;
	int r = 0;

	if (!qs->nused)
		return;
	for (unsigned i = 0; qs->split_full && r >= 0 && i + 1 < qs->nused; i++) {
		if (!qs->full[i])
			continue;
		r = q_push(qs, qs->used + start, i + 1 - start);
		start = i + 1;
	}
	if (r >= 0)
		r = q_push(qs, qs->used + start, qs->nused - start);
	qs->nused = 0;
	if (r < 0) {
		qs->broken = 1;
		return;
	}
	(void)vh_server_queue_notify(qs->q);
}

static void q_watch(struct net_q *qs, int fd)
{
	int r;

	if (qs->watched == fd)
		return;
	r = vh_server_queue_watch_fd(qs->q, fd);
	if (r < 0) {
		if (!qs->warned++)
			dlog(qs->p->d, VH_LOG_WARN, "ring %u: cannot watch fd %d: %s",
			     vh_server_queue_index(qs->q), fd, strerror(-r));
		return;
	}
	qs->watched = fd;
}

/* A broken ring is not processed any more: stop watching so nothing wakes it in vain, and
 * (RX) take no more echo frames for it. */
static void q_broken(struct net_q *qs)
{
	q_watch(qs, -1);
	if (!qs->tx)
		__atomic_store_n(&qs->p->rx_started, 0, __ATOMIC_RELEASE);
}

/* ---- iovec helpers -------------------------------------------------------------------------- */

/* dst = src without its first `skip` bytes. Returns the count, or -1 if more than cap. */
static int iov_tail(const struct iovec *src, unsigned n, size_t skip, struct iovec *dst,
		    unsigned cap)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		size_t len = src[i].iov_len;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		if (k == cap)
			return -1;
		dst[k].iov_base = (uint8_t *)src[i].iov_base + skip;
		dst[k].iov_len = len - skip;
		skip = 0;
		k++;
	}
	return (int)k;
}

/* Copies bytes [off, off + len) of the stream "hdr then data" into iov at offset 0. */
static void put_stream(const struct iovec *iov, unsigned n, const void *hdr, size_t hdr_len,
		       const uint8_t *data, size_t off, size_t len)
{
	size_t done = 0;

	if (off < hdr_len) {
		size_t h = hdr_len - off < len ? hdr_len - off : len;

		vh_buf_to_iov(iov, n, 0, (const uint8_t *)hdr + off, h);
		done = h;
		off += h;
	}
	if (done < len)
		vh_buf_to_iov(iov, n, done, data + (off - hdr_len), len - done);
}

/* ---- TX ----------------------------------------------------------------------------------- */

/* Checks a TX element and its header. 0 and *h, *frame_len, or -1: malformed. */
static int tx_check(const struct net_q *qs, const struct vh_vq_elem *e, struct vh_net_hdr *h,
		    uint32_t *frame_len)
{
	uint64_t f = qs->features;
	uint32_t len;
	unsigned gso;

	if (e->in_num)                              /* TX buffers are device-readable only */
		return -1;
	if (e->out_len < (uint64_t)qs->hdr_len + NET_MIN_FRAME ||
	    e->out_len - qs->hdr_len > NET_MAX_FRAME)
		return -1;
	len = (uint32_t)(e->out_len - qs->hdr_len);
	memset(h, 0, sizeof(*h));
	/* Bounded gather-copy: the header may be spread over several descriptors. */
	if (vh_iov_to_buf(e->iov, e->out_num, 0, h, qs->hdr_len) != qs->hdr_len)
		return -1;
	if (h->flags & ~HDR_F_NEEDS_CSUM)           /* DATA_VALID / RSC_INFO are RX-only */
		return -1;
	if (h->flags & HDR_F_NEEDS_CSUM) {
		uint32_t start = le16toh(h->csum_start), off = le16toh(h->csum_offset);

		if (!has(f, NETF_CSUM) || start + off + 2u > len)
			return -1;
	}
	gso = h->gso_type & ~HDR_GSO_ECN;
	if (h->gso_type != HDR_GSO_NONE) {
		if (!(h->flags & HDR_F_NEEDS_CSUM) || !h->gso_size)
			return -1;
		if (gso == HDR_GSO_TCPV4) {
			if (!has(f, NETF_HOST_TSO4))
				return -1;
		} else if (gso == HDR_GSO_TCPV6) {
			if (!has(f, NETF_HOST_TSO6))
				return -1;
		} else {
			return -1;
		}
		if ((h->gso_type & HDR_GSO_ECN) && !has(f, NETF_HOST_ECN))
			return -1;
	}
	h->num_buffers = 0;
	*frame_len = len;
	return 0;
}

/* Writes one checked frame to the tap: our copy of the header, then the guest's bytes. */
static int tap_write(struct net_q *qs, const struct vh_vq_elem *e, const struct vh_net_hdr *h,
		     uint32_t len)
{
	struct iovec *v = qs->iov;
	ssize_t r;
	int n;

	v[0].iov_base = (void *)h;
	v[0].iov_len = qs->hdr_len;
	n = iov_tail(e->iov, e->out_num, qs->hdr_len, v + 1, NET_MAX_IOV - 1);
	if (n < 0) {
		/* More pieces than writev takes: linearise. */
		vh_iov_to_buf(e->iov, e->out_num, qs->hdr_len, qs->bounce, len);
		v[1].iov_base = qs->bounce;
		v[1].iov_len = len;
		n = 1;
	}
	do {
		r = writev(qs->p->tap_fd, v, n + 1);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == (ssize_t)(qs->hdr_len + len) ? 0 : -EIO;
}

/* ---- Echo straight into RX buffers ----------------------------------------------------------- */

static int rx_gather(struct net_q *qs, size_t need, int mrg, unsigned want);
static int rx_echo_frame(struct net_q *qs, const uint8_t *data, uint32_t len, int mrg);

/* When TX and RX of a pair run on one worker (or the RX worker is idle), the TX worker copies
 * frames into RX buffers itself: one copy instead of two, no hand-over record. Only while it
 * holds the RX ring's state and only behind every frame handed over before (order). Returns
 * the RX ring, or NULL to use the hand-over. */
static struct net_q *direct_begin(struct net_q *qs)
{
	struct net_pair *p = qs->p;
	struct net_q *rx;

	if (!rx_trylock(p))
		return NULL;
	rx = p->rxq;
	if (!rx || rx->broken ||
	    __atomic_load_n(&p->ho.head, __ATOMIC_RELAXED) !=
		    __atomic_load_n(&p->ho.tail, __ATOMIC_ACQUIRE)) {
		rx_unlock(p);
		return NULL;
	}
	rx->foreign = 1;
	return rx;
}

/* Publishes what went into RX buffers and lets the RX ring go. */
static void direct_end(struct net_q *rx)
{
	struct net_pair *p = rx->p;

	q_flush(rx);
	rx->foreign = 0;
	if (rx->broken)
		q_broken(rx);
	rx_unlock(p);
}

/* One checked TX frame into an RX buffer, with the RX worker's own checks (rx_gather, then
 * rx_echo_frame's one-piece case). 0, or -1 when it must go through the hand-over instead:
 * the frame in pieces, no RX buffer, one that does not take header and frame in its first
 * piece (spreading and dropping are the RX worker's), or RX broke. */
static int tx_direct_one(struct net_q *qs, struct net_q *rx, const struct vh_vq_elem *e,
			 uint32_t len)
{
	int mrg = has(rx->features, NETF_MRG_RXBUF);
	uint64_t need = (uint64_t)rx->hdr_len + len;
	const struct vh_vq_elem *b = rx->st_n ? st_at(rx, 0) : NULL;

	if (e->out_num != 1 || e->iov[0].iov_len < (uint64_t)qs->hdr_len + len)
		return -1;
	if (!b || b->out_num || b->in_len < rx->hdr_len + (mrg ? 0u : NET_MIN_FRAME) ||
	    (mrg && rx->st_space < need)) {
		/* As many RX buffers as TX frames wait (this one included). */
		unsigned want = qs->st_n < NET_BATCH ? qs->st_n : NET_BATCH;

		if (rx_gather(rx, need, mrg, want) <= 0)
			return -1;
		b = st_at(rx, 0);
	}
	if (!b->in_num || b->iov[0].iov_len < need)
		return -1;
	(void)rx_echo_frame(rx, (const uint8_t *)e->iov[0].iov_base + qs->hdr_len, len, mrg);
	stat_add(&qs->p->st.rx_frames, 1);
	stat_add(&qs->p->st.rx_bytes, len);
	return 0;
}

/* The usual case of direct echo in one loop: TX frames in one piece whose header asks for
 * nothing (no flags, no GSO), each into an RX buffer whose first piece takes header and frame;
 * the bookkeeping of both stashes and both completion batches in locals, counters added once.
 * Stops at the first frame that needs more (the per-frame path then decides), at the end of
 * either stash's contiguous run, and before either batch reaches NET_BATCH. Returns the frames
 * done. */
static unsigned tx_direct_burst(struct net_q *qs, struct net_q *rx, unsigned max)
{
	struct net_pair *p = qs->p;
	struct vh_vq_elem *te = qs->stash + qs->st_head, *re = rx->stash + rx->st_head;
	struct vh_vq_used *tu = qs->used + qs->nused, *ru = rx->used + rx->nused;
	uint8_t *tfull = qs->full + qs->nused, *rfull = rx->full + rx->nused;
	uint64_t hl = qs->hdr_len, bytes = 0, rspace = 0;
	unsigned n = qs->st_n < rx->st_n ? qs->st_n : rx->st_n, i;
	struct vh_net_hdr h;

	if (n > max)
		n = max;
	/* RX may hold more than NET_BATCH completions already (rx_gather returns unusable
	 * buffers empty): then nothing is done here and the caller flushes. */
	if (qs->nused >= NET_BATCH || rx->nused >= NET_BATCH)
		return 0;
	if (n > NET_BATCH - qs->nused)
		n = NET_BATCH - qs->nused;
	if (n > NET_BATCH - rx->nused)
		n = NET_BATCH - rx->nused;
	if (n > qs->num - qs->st_head)
		n = qs->num - qs->st_head;
	if (n > rx->num - rx->st_head)
		n = rx->num - rx->st_head;
	if (hl != rx->hdr_len)
		return 0;
	memset(&h, 0, sizeof(h));
	h.num_buffers = htole16(1);
	for (i = 0; i < n; i++) {
		const uint8_t *src = te[i].iov[0].iov_base;
		uint64_t len = te[i].out_len - hl;
		uint8_t *dst;

		/* One readable piece (so out_len is its length), a frame within bounds, the
		 * header's flags and gso_type zero (the rest of it is not used); an RX buffer
		 * whose first writable piece takes header and frame. */
		if (te[i].in_num || te[i].out_num != 1 || te[i].out_len < hl + NET_MIN_FRAME ||
		    len > NET_MAX_FRAME || te[i].iov[0].iov_len < hl + len || (src[0] | src[1]) ||
		    re[i].out_num || !re[i].in_num || re[i].iov[0].iov_len < hl + len)
			break;
		dst = re[i].iov[0].iov_base;
		if (hl == sizeof(h))
			memcpy(dst, &h, sizeof(h));
		else
			memcpy(dst, &h, 10);
		memmove(dst + hl, src + hl, len);   /* a guest may make the buffers overlap */
		tu[i].id = te[i].id;
		tu[i].len = 0;
		tfull[i] = 0;
		ru[i].id = re[i].id;
		ru[i].len = (uint32_t)(hl + len);
		rfull[i] = hl + len == re[i].in_len;
		rspace += re[i].in_len;
		bytes += len;
		te[i].iov = NULL;
		te[i].iov_gpa = NULL;
		re[i].iov = NULL;
		re[i].iov_gpa = NULL;
	}
	if (!i)
		return 0;
	qs->st_head = qs->st_head + i == qs->num ? 0 : qs->st_head + i;
	qs->st_n -= i;
	qs->nused += i;
	rx->st_head = rx->st_head + i == rx->num ? 0 : rx->st_head + i;
	rx->st_n -= i;
	rx->nused += i;
	rx->st_space -= rspace;
	/* Counted before the completions are published (q_flush). */
	stat_add(&p->st.tx_frames, i);
	stat_add(&p->st.tx_bytes, bytes);
	stat_add(&p->st.rx_frames, i);
	stat_add(&p->st.rx_bytes, bytes);
	return i;
}

/* A pop prepares every element it is asked for when the ring is not empty, however few it
 * fills. Echo TX asks for about twice what the last pop found (4 to NET_BATCH), so a driver
 * sending a frame at a time costs a few prepared elements, not NET_BATCH. */
static int tx_pop(struct net_q *qs, int echo)
{
	int r = st_pop(qs, echo ? qs->pop_ask : NET_BATCH);

	if (echo && r > 0) {
		unsigned next = 2 * (unsigned)r;

		qs->pop_ask = next < 4 ? 4 : next > NET_BATCH ? NET_BATCH : next;
	}
	return r;
}

static void tx_process(struct net_q *qs)
{
	struct net_pair *p = qs->p;
	struct net_dev *d = p->d;
	int enabled = vh_server_queue_enabled(qs->q);
	unsigned frames = 0, added = 0;
	int blocked = 0;
	/* Echo: frames go to RX only while it is started and enabled (looked up here, not left
	 * to RX's worker, which may not have run yet after a start or an enable). */
	int rx_ready = __atomic_load_n(&p->rx_started, __ATOMIC_ACQUIRE) &&
		       vh_server_queue_enabled(vh_server_get_queue(d->s, 2 * p->idx));
	int echo = d->o.mode == NET_MODE_ECHO;
	struct net_q *rx = NULL;     /* echo straight into RX buffers while set */
	int direct = -1;             /* -1 not tried in this call, 0 off for the rest of it */

	evt_drain(&p->tx_set, p->tx_evt);
	q_watch(qs, p->tx_evt);
	if (!enabled && !qs->was_enabled)
		/* Not enabled since it started: the front-end is still setting the ring up and its
		 * SET_VRING_ENABLE may be behind its kick on the socket. Frames wait in the ring;
		 * the enable runs it again. (A ring disabled later is consumed and dropped.) */
		return;
	qs->was_enabled = 1;
	while (frames < NET_BUDGET) {
		struct vh_vq_elem *e;
		struct vh_net_hdr h;
		uint32_t len;
		int r;

		if (!qs->st_n) {
			r = tx_pop(qs, echo);
			if (r < 0) {
				q_broken(qs);
				break;
			}
			if (r == 0)
				break;
		}
		if (direct > 0 && rx->st_n && enabled) {
			unsigned k = tx_direct_burst(qs, rx, NET_BUDGET - frames);

			if (k) {
				frames += k;
				goto flush;
			}
		}
		e = st_at(qs, 0);
		if (!enabled) {
			/* Started but disabled: consume and drop, no side effects. */
			stat_add(&p->st.tx_disabled, 1);
		} else if (tx_check(qs, e, &h, &len) < 0) {
			stat_add(&p->st.tx_malformed, 1);
		} else if (d->o.mode == NET_MODE_TAP) {
			r = tap_write(qs, e, &h, len);
			if (r < 0) {
				stat_add(&p->st.tx_errors, 1);
				if (!qs->warned++)
					dlog(d, VH_LOG_WARN, "pair %u: tap write: %s", p->idx,
					     strerror(-r));
			} else {
				stat_add(&p->st.tx_frames, 1);
				stat_add(&p->st.tx_bytes, len);
				if (h.gso_type != HDR_GSO_NONE)
					stat_add(&p->st.tx_gso, 1);
			}
		} else if (!rx_ready) {
			stat_add(&p->st.tx_no_rx, 1);
		} else {
			if (direct < 0) {
				rx = direct_begin(qs);
				direct = rx != NULL;
			}
			if (direct > 0 && tx_direct_one(qs, rx, e, len) < 0) {
				/* This frame and the rest of the call go behind it, in order. */
				direct_end(rx);
				rx = NULL;
				direct = 0;
			}
			if (!direct) {
				uint8_t *dst = ho_reserve(&p->ho, len);

				if (!dst) {
					/* Full: say so, then look again (RX may have made room
					 * meanwhile). */
					__atomic_store_n(&p->tx_blocked, 1, __ATOMIC_SEQ_CST);
					__atomic_thread_fence(__ATOMIC_SEQ_CST);
					dst = ho_reserve(&p->ho, len);
					if (!dst) {
						blocked = 1;
						break;
					}
					__atomic_store_n(&p->tx_blocked, 0, __ATOMIC_RELAXED);
				}
				vh_iov_to_buf(e->iov, e->out_num, qs->hdr_len, dst, len);
				ho_commit(&p->ho, len);
				added++;
			}
			stat_add(&p->st.tx_frames, 1);
			stat_add(&p->st.tx_bytes, len);
		}
		st_complete(qs, 0);
		frames++;
flush:
		if (qs->nused >= NET_BATCH || (rx && rx->nused >= NET_BATCH)) {
			if (rx) {
				q_flush(rx);
				if (rx->broken) {
					direct_end(rx);
					rx = NULL;
					direct = 0;
				}
			}
			q_flush(qs);
			if (added) {
				evt_wake(&p->rx_set, p->rx_evt);
				added = 0;
			}
		}
	}
	if (rx)
		direct_end(rx);
	q_flush(qs);
	if (added)
		evt_wake(&p->rx_set, p->rx_evt);
	if (qs->broken)
		q_broken(qs);
	else if (frames == NET_BUDGET && !blocked)
		evt_wake(&p->tx_set, p->tx_evt);  /* more may be waiting: come back after the others */
}

/* ---- RX ----------------------------------------------------------------------------------- */

/* Returns RX buffers at the head of the stash that cannot hold a header (or are not
 * device-writable) to the driver empty. */
static void rx_drop_bad_heads(struct net_q *qs, size_t min)
{
	while (qs->st_n) {
		struct vh_vq_elem *e = st_at(qs, 0);

		if (!e->out_num && e->in_len >= min)
			return;
		stat_add(&qs->p->st.rx_bad_buf, 1);
		st_complete(qs, 0);
		if (qs->nused >= NET_BATCH)
			q_flush(qs);
	}
}

/* Gathers RX buffers for a frame of up to `need` bytes (header included); without MRG_RXBUF
 * `want` buffers are popped at a time. Returns 1 when the stash can take it (or the whole ring
 * is popped and is all there is), 0 to wait for buffers, -EIO when the ring broke. */
static int rx_gather(struct net_q *qs, size_t need, int mrg, unsigned want)
{
	size_t first_min = mrg ? qs->hdr_len : qs->hdr_len + NET_MIN_FRAME;

	for (;;) {
		rx_drop_bad_heads(qs, first_min);
		if (qs->st_n && (!mrg || qs->st_space >= need || qs->st_n == qs->num))
			return 1;
		int r = st_pop(qs, mrg ? NET_BATCH : want);

		if (r < 0)
			return r;
		if (r == 0)
			return 0;
	}
}

/* Uses the first buffers of the stash for a frame of `total` bytes (header included) already
 * in them; fixes the header (num_buffers, flags). */
static void rx_complete(struct net_q *qs, uint64_t total, struct vh_net_hdr *h)
{
	unsigned k = 0;
	uint64_t left = total;

	/* Buffers the frame spans (MRG_RXBUF), in stash order. */
	while (left && k < qs->st_n) {
		struct vh_vq_elem *e = st_at(qs, k);

		left -= e->in_len < left ? e->in_len : left;
		k++;
	}
	if (qs->hdr_len >= sizeof(*h))
		h->num_buffers = htole16((uint16_t)k);
	vh_buf_to_iov(st_at(qs, 0)->iov + st_at(qs, 0)->out_num, st_at(qs, 0)->in_num, 0, h,
		      qs->hdr_len);
	left = total;
	for (unsigned i = 0; i < k; i++) {
		uint64_t take = st_at(qs, 0)->in_len < left ? st_at(qs, 0)->in_len : left;

		left -= take;
		st_complete(qs, (uint32_t)take);
	}
}

static void tap_attach(struct net_q *qs, int on)
{
	struct net_pair *p = qs->p;
	struct ifreq ifr;

	if (p->d->npairs < 2 || p->attached == on)
		return;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	if (ioctl(p->tap_fd, TUNSETQUEUE, &ifr) < 0) {
		dlog(p->d, VH_LOG_WARN, "pair %u: TUNSETQUEUE %s: %s", p->idx,
		     on ? "attach" : "detach", strerror(errno));
		return;
	}
	p->attached = on;
}

static void rx_tap(struct net_q *qs)
{
	struct net_pair *p = qs->p;
	int mrg = has(qs->features, NETF_MRG_RXBUF);
	unsigned frames = 0;

	tap_attach(qs, 1);
	while (frames < NET_BUDGET) {
		struct vh_net_hdr h;
		uint64_t space = 0;
		unsigned cnt = 0, nb = 0;
		ssize_t n;
		int r;

		r = rx_gather(qs, qs->rx_need, mrg, 1);
		if (r <= 0) {
			/* No buffers: leave frames in the tap; the driver's kick brings us back. */
			q_watch(qs, -1);
			break;
		}
		q_watch(qs, p->tap_fd);
		/* The buffers the read may fill, then the overflow area to catch larger frames. */
		while (nb < qs->st_n && (nb == 0 || (mrg && space < qs->rx_need))) {
			struct vh_vq_elem *e = st_at(qs, nb);
			const struct iovec *in = e->iov + e->out_num;

			if (cnt + e->in_num > NET_MAX_IOV - 1) {
				if (nb)
					break;
				/* One buffer in more pieces than readv takes: use what fits. */
				for (; cnt < NET_MAX_IOV - 1; cnt++) {
					qs->iov[cnt] = in[cnt];
					space += in[cnt].iov_len;
				}
				nb = 1;
				break;
			}
			memcpy(&qs->iov[cnt], in, e->in_num * sizeof(struct iovec));
			cnt += e->in_num;
			space += e->in_len;
			nb++;
		}
		qs->iov[cnt].iov_base = qs->bounce;
		qs->iov[cnt].iov_len = qs->hdr_len + NET_MAX_FRAME;
		cnt++;
		n = readv(p->tap_fd, qs->iov, (int)cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				stat_add(&p->st.rx_errors, 1);
				if (!qs->warned++)
					dlog(p->d, VH_LOG_WARN, "pair %u: tap read: %s", p->idx,
					     strerror(errno));
			}
			break;
		}
		frames++;
		if ((uint64_t)n > space) {
			stat_add(&p->st.rx_too_big, 1);     /* the buffers are used again */
			continue;
		}
		if ((size_t)n < qs->hdr_len + NET_MIN_FRAME) {
			stat_add(&p->st.rx_errors, 1);
			continue;
		}
		memset(&h, 0, sizeof(h));
		vh_iov_to_buf(st_at(qs, 0)->iov + st_at(qs, 0)->out_num, st_at(qs, 0)->in_num, 0, &h,
			      qs->hdr_len);
		/* Only what the driver negotiated may reach it. */
		if (!has(qs->features, NETF_GUEST_CSUM))
			h.flags = 0;
		if (h.gso_type != HDR_GSO_NONE) {
			unsigned g = h.gso_type & ~HDR_GSO_ECN;

			if (!((g == HDR_GSO_TCPV4 && has(qs->features, NETF_GUEST_TSO4)) ||
			      (g == HDR_GSO_TCPV6 && has(qs->features, NETF_GUEST_TSO6))) ||
			    ((h.gso_type & HDR_GSO_ECN) && !has(qs->features, NETF_GUEST_ECN))) {
				stat_add(&p->st.rx_errors, 1);
				continue;
			}
		}
		rx_complete(qs, (uint64_t)n, &h);
		if (h.gso_type != HDR_GSO_NONE)
			stat_add(&p->st.rx_gso, 1);
		stat_add(&p->st.rx_frames, 1);
		stat_add(&p->st.rx_bytes, (uint64_t)n - qs->hdr_len);
		if (qs->nused >= NET_BATCH)
			q_flush(qs);
	}
	q_flush(qs);
	if (qs->broken)
		q_broken(qs);
	/* Budget used up: the tap is still readable and watched, so we run again. */
}

/* Echo: one frame (our header, then data) into the RX buffers at the head of the stash, which
 * rx_gather made ready. Returns 0, or -1 when it cannot fit: with MRG_RXBUF not even the whole
 * ring holds it; without, the head buffer does not (the buffers stay for the next frame). */
static int rx_echo_frame(struct net_q *qs, const uint8_t *data, uint32_t len, int mrg)
{
	struct vh_vq_elem *e = st_at(qs, 0);
	const struct iovec *in = e->iov + e->out_num;
	unsigned hl = qs->hdr_len;
	uint64_t need = (uint64_t)hl + len;
	struct vh_net_hdr h;

	memset(&h, 0, sizeof(h));
	if (e->in_num && in->iov_len >= need) {
		/* The first piece takes it all (num_buffers 1): a header store and one copy. */
		uint8_t *dst = in->iov_base;

		h.num_buffers = htole16(1);
		if (hl == sizeof(h))
			memcpy(dst, &h, sizeof(h));
		else
			memcpy(dst, &h, 10);
		memmove(dst + hl, data, len);       /* data may be guest memory (direct echo) */
		st_complete(qs, (uint32_t)need);
		return 0;
	}
	if (mrg ? qs->st_space < need : e->in_len < need)
		return -1;
	/* Copy the stream (header, frame) over as many buffers as it needs. */
	for (uint64_t off = 0, i = 0; off < need; i++) {
		struct vh_vq_elem *b = st_at(qs, (unsigned)i);
		uint64_t take = b->in_len < need - off ? b->in_len : need - off;

		put_stream(b->iov + b->out_num, b->in_num, &h, hl, data, (size_t)off, (size_t)take);
		off += take;
	}
	rx_complete(qs, need, &h);
	return 0;
}

static void rx_echo(struct net_q *qs)
{
	struct net_pair *p = qs->p;
	int mrg = has(qs->features, NETF_MRG_RXBUF);
	unsigned frames = 0, consumed = 0;
	const struct ho_rec *rec = NULL;

	evt_drain(&p->rx_set, p->rx_evt);
	q_watch(qs, p->rx_evt);
	while (frames < NET_BUDGET && (rec = ho_peek(&p->ho)) != NULL) {
		int r;

		r = rx_gather(qs, (uint64_t)qs->hdr_len + rec->len, mrg, 1);
		if (r <= 0)
			break;                  /* frames wait; the driver's kick brings us back */
		if (rx_echo_frame(qs, (const uint8_t *)(rec + 1), rec->len, mrg) < 0) {
			stat_add(&p->st.rx_too_big, 1);
		} else {
			stat_add(&p->st.rx_frames, 1);
			stat_add(&p->st.rx_bytes, rec->len);
		}
		ho_consume(&p->ho, rec);
		consumed++;
		frames++;
		if (qs->nused >= NET_BATCH)
			q_flush(qs);
	}
	q_flush(qs);
	if (qs->broken)
		q_broken(qs);
	if (consumed) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_exchange_n(&p->tx_blocked, 0, __ATOMIC_SEQ_CST))
			evt_wake(&p->tx_set, p->tx_evt);
	}
	if (frames == NET_BUDGET && ho_peek(&p->ho))
		evt_wake(&p->rx_set, p->rx_evt);
}

static void rx_process(struct net_q *qs)
{
	struct net_pair *p = qs->p;
	int echo = p->d->o.mode == NET_MODE_ECHO;

	if (echo && !rx_enter(p))
		return;                 /* the TX worker has the RX ring; it wakes us when done */
	if (qs->broken) {
		/* broken meanwhile (echo: by the TX worker, which also stopped watching) */
	} else if (!vh_server_queue_enabled(qs->q)) {
		/* Started but disabled: supply nothing; frames wait (tap) or are refused (echo). */
		if (!echo) {
			q_watch(qs, -1);
			tap_attach(qs, 0);
		} else {
			evt_drain(&p->rx_set, p->rx_evt);
			q_watch(qs, p->rx_evt);
		}
	} else if (!echo) {
		rx_tap(qs);
	} else {
		rx_echo(qs);
	}
	if (echo)
		rx_leave(p);
}

/* ---- Server callbacks ---------------------------------------------------------------------- */

static void op_process(void *opaque, struct vh_server_queue *q)
{
	struct net_q *qs = vh_server_queue_get_priv(q);

	(void)opaque;
	if (!qs)
		return;
	if (!qs->tx)
		rx_process(qs);         /* looks at broken itself (echo: the TX worker may set it) */
	else if (!qs->broken)
		tx_process(qs);
}

static unsigned hdr_len_for(uint64_t features)
{
	return has(features, VH_F_VERSION_1) || has(features, NETF_MRG_RXBUF) ? 12u : 10u;
}

static unsigned read_tap_mtu(const struct net_dev *d)
{
	struct ifreq ifr;
	int s, r;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 1500;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", d->o.tap_name);
	r = ioctl(s, SIOCGIFMTU, &ifr);
	close(s);
	return r < 0 || ifr.ifr_mtu < 68 ? 1500u : (unsigned)ifr.ifr_mtu;
}

static int op_queue_start(void *opaque, struct vh_server_queue *q)
{
	struct net_dev *d = opaque;
	unsigned idx = vh_server_queue_index(q);
	struct vh_backend_vring vr;
	struct net_q *qs;
	int r;

	if (idx / 2 >= d->npairs)
		return -EINVAL;
	r = vh_backend_get_vring(vh_server_backend(d->s), idx, &vr);
	if (r < 0)
		return r;
	if (!vr.num)
		return -EINVAL;
	qs = calloc(1, sizeof(*qs));
	if (!qs)
		return -ENOMEM;
	qs->p = &d->pairs[idx / 2];
	qs->q = q;
	qs->num = vr.num;
	qs->tx = idx & 1;
	qs->features = vh_server_features(d->s);
	qs->hdr_len = hdr_len_for(qs->features);
	qs->split_full = !qs->tx && has(qs->features, VH_F_IN_ORDER);
	qs->pop_ask = NET_BATCH;
	qs->watched = -1;
	qs->stash = calloc(qs->num, sizeof(*qs->stash));
	qs->used = calloc(qs->num, sizeof(*qs->used));
	qs->full = calloc(qs->num, 1);
	qs->bounce = malloc(NET_MAX_FRAME + sizeof(struct vh_net_hdr));
	if (!qs->stash || !qs->used || !qs->full || !qs->bounce) {
		free(qs->stash);
		free(qs->used);
		free(qs->full);
		free(qs->bounce);
		free(qs);
		return -ENOMEM;
	}
	if (d->o.mode == NET_MODE_TAP && !qs->tx) {
		unsigned mtu = read_tap_mtu(d);

		__atomic_store_n(&d->tap_mtu, mtu, __ATOMIC_RELAXED);
		qs->rx_need = qs->hdr_len +
			      (__atomic_load_n(&d->gso_rx, __ATOMIC_RELAXED) ? NET_MAX_FRAME : mtu + 18u);
	}
	vh_server_queue_set_priv(q, qs);
	if (!qs->tx && d->o.mode == NET_MODE_ECHO) {
		/* Watched from the start: the TX worker's wakes (frames handed over, a process
		 * call it made us miss) must reach us before our first call too. */
		q_watch(qs, qs->p->rx_evt);
		rx_lock_wait(qs->p);
		qs->p->rxq = qs;
		rx_unlock(qs->p);
	}
	if (!qs->tx)
		__atomic_store_n(&qs->p->rx_started, 1, __ATOMIC_RELEASE);
	dlog(d, VH_LOG_INFO, "ring %u (%s of pair %u) started: %u entries, header %u bytes", idx,
	     qs->tx ? "TX" : "RX", idx / 2, qs->num, qs->hdr_len);
	return 0;
}

static void op_queue_stop(void *opaque, struct vh_server_queue *q)
{
	struct net_dev *d = opaque;
	struct net_q *qs = vh_server_queue_get_priv(q);
	struct net_pair *p;
	unsigned flushed = 0;

	if (!qs)
		return;
	p = qs->p;
	if (!qs->tx)
		__atomic_store_n(&p->rx_started, 0, __ATOMIC_RELEASE);
	if (!qs->tx && d->o.mode == NET_MODE_ECHO) {
		/* Wait for a TX worker copying into our buffers, then keep it out. */
		rx_lock_wait(p);
		p->rxq = NULL;
	}
	if (qs->watched >= 0)
		(void)vh_server_queue_watch_fd(q, -1);
	/* Give every popped element back so the driver keeps its buffers (length 0). */
	qs->nused = 0;
	while (qs->st_n) {
		if (!qs->tx)
			flushed++;
		st_complete(qs, 0);
	}
	if (qs->nused && !qs->broken)
		(void)vh_server_queue_push(q, qs->used, qs->nused);
	if (!qs->tx && d->o.mode == NET_MODE_ECHO) {
		/* The RX worker has left: this thread is the only consumer now. */
		const struct ho_rec *r;

		while ((r = ho_peek(&p->ho)) != NULL) {
			ho_consume(&p->ho, r);
			flushed++;
		}
		if (__atomic_exchange_n(&p->tx_blocked, 0, __ATOMIC_SEQ_CST))
			evt_wake(&p->tx_set, p->tx_evt);
	}
	if (flushed)
		stat_add(&p->st.rx_flushed, flushed);
	if (d->o.mode == NET_MODE_TAP && !qs->tx)
		tap_attach(qs, 0);
	if (!qs->tx && d->o.mode == NET_MODE_ECHO)
		rx_unlock(p);
	vh_server_queue_set_priv(q, NULL);
	dlog(d, VH_LOG_INFO, "ring %u stopped", vh_server_queue_index(q));
	free(qs->stash);
	free(qs->used);
	free(qs->full);
	free(qs->bounce);
	free(qs);
}

static int op_get_config(void *opaque, uint32_t offset, uint32_t size, uint8_t *buf)
{
	struct net_dev *d = opaque;

	/* offset + size <= config_size is checked by the server. */
	memcpy(buf, d->config + offset, size);
	return 0;
}

/* TUNSETOFFLOAD flags for what the driver acked on its receive side. */
static unsigned tun_offloads(uint64_t f)
{
	unsigned t = 0;

	if (!has(f, NETF_GUEST_CSUM))
		return 0;
	t |= TUN_F_CSUM;
	if (has(f, NETF_GUEST_TSO4))
		t |= TUN_F_TSO4;
	if (has(f, NETF_GUEST_TSO6))
		t |= TUN_F_TSO6;
	if ((t & (TUN_F_TSO4 | TUN_F_TSO6)) && has(f, NETF_GUEST_ECN))
		t |= TUN_F_TSO_ECN;
	return t;
}

static int op_set_features(void *opaque, uint64_t features)
{
	struct net_dev *d = opaque;
	int hdr = (int)hdr_len_for(features);
	unsigned off = tun_offloads(features & d->offloads);

	dlog(d, VH_LOG_INFO, "features acked: 0x%" PRIx64, features);
	if (d->o.mode != NET_MODE_TAP)
		return 0;
	/* One tap device behind all queue fds: setting it on the first sets it for all. */
	if (ioctl(d->pairs[0].tap_fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int e = errno;

		dlog(d, VH_LOG_ERR, "TUNSETVNETHDRSZ %d: %s", hdr, strerror(e));
		return -e;
	}
	if (d->offloads && ioctl(d->pairs[0].tap_fd, TUNSETOFFLOAD, (unsigned long)off) < 0) {
		int e = errno;

		dlog(d, VH_LOG_ERR, "TUNSETOFFLOAD 0x%x: %s", off, strerror(e));
		return -e;
	}
	__atomic_store_n(&d->gso_rx, (off & (TUN_F_TSO4 | TUN_F_TSO6)) ? 1u : 0u, __ATOMIC_RELAXED);
	dlog(d, VH_LOG_INFO, "tap: header %d bytes, offloads 0x%x", hdr, off);
	return 0;
}

static int op_net_set_mtu(void *opaque, uint64_t mtu)
{
	struct net_dev *d = opaque;
	struct ifreq ifr;
	int s, r, e;

	if (mtu < 68 || mtu > 65535) {
		dlog(d, VH_LOG_WARN, "NET_SET_MTU %" PRIu64 " refused (68..65535)", mtu);
		return -EINVAL;
	}
	if (d->o.mode != NET_MODE_TAP) {
		dlog(d, VH_LOG_INFO, "NET_SET_MTU %" PRIu64, mtu);
		return 0;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", d->o.tap_name);
	ifr.ifr_mtu = (int)mtu;
	r = ioctl(s, SIOCSIFMTU, &ifr);
	e = errno;
	close(s);
	if (r < 0) {
		dlog(d, VH_LOG_ERR, "NET_SET_MTU %" PRIu64 ": setting the tap's MTU: %s", mtu,
		     strerror(e));
		return -e;
	}
	__atomic_store_n(&d->tap_mtu, (unsigned)mtu, __ATOMIC_RELAXED);
	dlog(d, VH_LOG_INFO, "NET_SET_MTU %" PRIu64 ": tap MTU set", mtu);
	return 0;
}

/* After a migration the front-end asks us to announce the guest's MAC (RARP broadcast). */
static int op_send_rarp(void *opaque, const uint8_t mac[6])
{
	struct net_dev *d = opaque;
	uint8_t frame[12 + 60];
	uint8_t *f = frame + 12;
	unsigned hdr = hdr_len_for(vh_server_features(d->s));
	ssize_t r;

	stat_add(&d->rarp, 1);
	if (d->o.mode != NET_MODE_TAP)
		return 0;
	memset(frame, 0, sizeof(frame));
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x80; f[13] = 0x35;                 /* ETH_P_RARP */
	f[14] = 0; f[15] = 1;                       /* hardware: Ethernet */
	f[16] = 0x08; f[17] = 0x00;                 /* protocol: IPv4 */
	f[18] = 6; f[19] = 4;
	f[20] = 0; f[21] = 3;                       /* reverse request */
	memcpy(f + 22, mac, 6);
	memcpy(f + 32, mac, 6);
	r = write(d->pairs[0].tap_fd, frame + 12 - hdr, hdr + 60);
	if (r < 0) {
		dlog(d, VH_LOG_WARN, "RARP to the tap: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static void op_connected(void *opaque)
{
	dlog(opaque, VH_LOG_INFO, "front-end connected");
}

static void op_disconnected(void *opaque)
{
	dlog(opaque, VH_LOG_INFO, "front-end disconnected");
}

/* ---- Tap ------------------------------------------------------------------------------------ */

static int tap_open(struct net_dev *d, int mq)
{
	struct ifreq ifr;
	unsigned feat = 0;
	int fd, e, sz = 12;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		dlog(d, VH_LOG_ERR, "cannot open /dev/net/tun: %s", strerror(e));
		return -e;
	}
	if (ioctl(fd, TUNGETFEATURES, &feat) < 0 || !(feat & IFF_VNET_HDR) ||
	    (mq && !(feat & IFF_MULTI_QUEUE))) {
		dlog(d, VH_LOG_ERR, "this kernel's tun has no %s",
		     mq ? "IFF_VNET_HDR | IFF_MULTI_QUEUE" : "IFF_VNET_HDR");
		close(fd);
		return -EOPNOTSUPP;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (mq ? IFF_MULTI_QUEUE : 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", d->o.tap_name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		e = errno;
		dlog(d, VH_LOG_ERR, "tap %s: TUNSETIFF: %s%s", d->o.tap_name, strerror(e),
		     e == EPERM ? " (needs CAP_NET_ADMIN)" :
		     e == EINVAL || e == EBUSY ?
		     " (the interface exists with other flags, or is in use; multi-queue must "
		     "match --queue-pairs > 1)" : "");
		close(fd);
		return -e;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
		e = errno;
		dlog(d, VH_LOG_ERR, "tap %s: TUNSETVNETHDRSZ: %s", d->o.tap_name, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

/* Offloads the tap can pass both ways: it accepts checksum-partial and TSO frames from us
 * whenever it has a vnet header, and hands such frames to us once TUNSETOFFLOAD allows it. */
static uint64_t tap_probe_offloads(struct net_dev *d)
{
	unsigned all = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
	int fd = d->pairs[0].tap_fd;

	if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)all) < 0) {
		dlog(d, VH_LOG_INFO, "tap refuses TUNSETOFFLOAD (%s): no offloads offered",
		     strerror(errno));
		return 0;
	}
	(void)ioctl(fd, TUNSETOFFLOAD, 0ul);
	return VH_BIT(NETF_CSUM) | VH_BIT(NETF_GUEST_CSUM) | VH_BIT(NETF_HOST_TSO4) |
	       VH_BIT(NETF_HOST_TSO6) | VH_BIT(NETF_HOST_ECN) | VH_BIT(NETF_GUEST_TSO4) |
	       VH_BIT(NETF_GUEST_TSO6) | VH_BIT(NETF_GUEST_ECN);
}

/* ---- Lifecycle ------------------------------------------------------------------------------ */

static void free_pairs(struct net_dev *d)
{
	for (unsigned i = 0; d->pairs && i < d->npairs; i++) {
		struct net_pair *p = &d->pairs[i];

		if (p->tap_fd >= 0)
			close(p->tap_fd);
		if (p->rx_evt >= 0)
			close(p->rx_evt);
		if (p->tx_evt >= 0)
			close(p->tx_evt);
		free(p->ho.buf);
	}
	free(d->pairs);
	d->pairs = NULL;
}

int net_dev_new(struct net_dev **out, const struct net_dev_opts *o)
{
	static const struct vh_server_ops ops = {
		.get_config = op_get_config,
		.set_features = op_set_features,
		.queue_start = op_queue_start,
		.queue_stop = op_queue_stop,
		.process = op_process,
		.connected = op_connected,
		.disconnected = op_disconnected,
		.send_rarp = op_send_rarp,
		.net_set_mtu = op_net_set_mtu,
	};
	struct vh_server_config cfg;
	struct net_dev *d;
	int r;

	if (!out || !o || o->queue_pairs < 1 || o->queue_pairs > NET_MAX_PAIRS ||
	    (o->mtu && (o->mtu < 68 || o->mtu > 65535)) ||
	    (o->mode == NET_MODE_TAP && (!o->tap_name || !*o->tap_name ||
					  strlen(o->tap_name) >= IFNAMSIZ)) ||
	    (o->mode != NET_MODE_TAP && o->mode != NET_MODE_ECHO)) {
		if (o)
			dlog(&(struct net_dev){ .o = *o }, VH_LOG_ERR, "invalid device options");
		return -EINVAL;
	}
	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->o = *o;
	d->npairs = o->queue_pairs;
	d->tap_mtu = 1500;
	d->pairs = calloc(d->npairs, sizeof(*d->pairs));
	if (!d->pairs) {
		dlog(d, VH_LOG_ERR, "no memory for %u queue pairs", d->npairs);
		free(d);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < d->npairs; i++) {
		struct net_pair *p = &d->pairs[i];

		p->d = d;
		p->idx = i;
		p->tap_fd = -1;
		p->attached = 1;
		p->rx_evt = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		p->tx_evt = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->rx_evt < 0 || p->tx_evt < 0) {
			r = -errno;
			dlog(d, VH_LOG_ERR, "eventfd: %s", strerror(-r));
			goto fail;
		}
		if (o->mode == NET_MODE_ECHO) {
			p->ho.buf = malloc(HO_SIZE);
			if (!p->ho.buf) {
				r = -ENOMEM;
				dlog(d, VH_LOG_ERR, "no memory for the echo hand-over of pair %u", i);
				goto fail;
			}
		} else {
			r = tap_open(d, d->npairs > 1);
			if (r < 0)
				goto fail;
			p->tap_fd = r;
		}
	}
	if (o->mode == NET_MODE_TAP && !o->no_offload)
		d->offloads = tap_probe_offloads(d);

	d->features = VH_BIT(VH_F_ANY_LAYOUT) | VH_BIT(NETF_STATUS) | d->offloads;
	if (!o->no_mrg_rxbuf)
		d->features |= VH_BIT(NETF_MRG_RXBUF);
	if (o->have_mac)
		d->features |= VH_BIT(NETF_MAC);
	if (o->mtu)
		d->features |= VH_BIT(NETF_MTU);
	/* The control queue stays with the front-end (QEMU and DPDK virtio-user emulate it and
	 * enable pairs with SET_VRING_ENABLE), so MQ is offered without CTRL_VQ. */
	if (d->npairs > 1)
		d->features |= VH_BIT(NETF_MQ);
	memcpy(d->config, o->mac, 6);
	d->config[6] = NET_S_LINK_UP;
	d->config[7] = 0;
	d->config[8] = (uint8_t)(d->npairs & 0xff);
	d->config[9] = (uint8_t)(d->npairs >> 8);
	d->config[10] = (uint8_t)(o->mtu & 0xff);
	d->config[11] = (uint8_t)(o->mtu >> 8);

	memset(&cfg, 0, sizeof(cfg));
	cfg.device_features = d->features;
	cfg.features_mask = o->features_mask;
	cfg.protocol_extra = VH_BIT(VH_USER_PROTOCOL_F_NET_MTU) | VH_BIT(VH_USER_PROTOCOL_F_RARP);
	cfg.num_queues = 2 * d->npairs;
	cfg.config_size = NET_CONFIG_SIZE;
	cfg.log = o->log;
	r = vh_server_new(&d->s, &cfg, &ops, d);
	if (r < 0) {
		dlog(d, VH_LOG_ERR, "cannot create the server: %s", strerror(-r));
		goto fail;
	}
	*out = d;
	return 0;
fail:
	free_pairs(d);
	free(d);
	return r;
}

void net_dev_free(struct net_dev *d)
{
	if (!d)
		return;
	vh_server_free(d->s);
	free_pairs(d);
	free(d);
}

struct vh_server *net_dev_server(struct net_dev *d)
{
	return d->s;
}

unsigned net_dev_pairs(const struct net_dev *d)
{
	return d->npairs;
}

uint64_t net_dev_features(const struct net_dev *d)
{
	return d->features;
}

uint64_t net_dev_offloads(const struct net_dev *d)
{
	return d->offloads;
}

void net_dev_pair_stats(const struct net_dev *d, unsigned pair, struct net_pair_stats *st)
{
	const uint64_t *src;
	uint64_t *dst = (uint64_t *)st;

	memset(st, 0, sizeof(*st));
	if (pair >= d->npairs)
		return;
	src = (const uint64_t *)&d->pairs[pair].st;
	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

int net_dev_format_stats(const struct net_dev *d, int pair, char *buf, size_t len)
{
	struct net_pair_stats t, st;
	unsigned first = pair < 0 ? 0 : (unsigned)pair;
	unsigned last = pair < 0 ? d->npairs : (unsigned)pair + 1;

	memset(&t, 0, sizeof(t));
	if (last > d->npairs)
		last = d->npairs;
	for (unsigned i = first; i < last; i++) {
		uint64_t *a = (uint64_t *)&t;
		const uint64_t *b = (const uint64_t *)&st;

		net_dev_pair_stats(d, i, &st);
		for (size_t k = 0; k < sizeof(st) / sizeof(uint64_t); k++)
			a[k] += b[k];
	}
	return snprintf(buf, len,
			"rx_frames=%" PRIu64 " rx_bytes=%" PRIu64 " tx_frames=%" PRIu64
			" tx_bytes=%" PRIu64 " tx_malformed=%" PRIu64 " tx_disabled=%" PRIu64
			" tx_no_rx=%" PRIu64 " tx_errors=%" PRIu64 " rx_too_big=%" PRIu64
			" rx_bad_buf=%" PRIu64 " rx_errors=%" PRIu64 " rx_flushed=%" PRIu64
			" tx_gso=%" PRIu64 " rx_gso=%" PRIu64 " rarp=%" PRIu64,
			t.rx_frames, t.rx_bytes, t.tx_frames, t.tx_bytes, t.tx_malformed,
			t.tx_disabled, t.tx_no_rx, t.tx_errors, t.rx_too_big, t.rx_bad_buf,
			t.rx_errors, t.rx_flushed, t.tx_gso, t.rx_gso,
			__atomic_load_n(&d->rarp, __ATOMIC_RELAXED));
}
