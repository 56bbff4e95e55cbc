/* SPDX-License-Identifier: MIT */
/*
 * vhbench: the benchmark driver. A minimal vhost-user front-end that owns guest memory (a memfd
 * split into N regions), lays out split or packed rings in it, and drives any vhost-user
 * back-end with one of three workloads:
 *
 *   ring  W0: one-descriptor chains (device-readable, `size` bytes) the back-end only pops and
 *         pushes;
 *   blk   W1: virtio-blk requests (16-byte header, `size` bytes of data, 1 status byte), reads
 *         or writes at successive sectors;
 *   net   W2: 12-byte virtio-net header + 64-byte frame on each TX ring; a request is complete
 *         when the frame comes back on the paired RX ring (a forwarding back-end);
 *   tx    the same frames, complete when the TX descriptor is used (a back-end that only
 *         receives, e.g. DPDK testpmd rxonly: the nearest DPDK path to W0).
 *
 * The same driver runs against every back-end, so they all see the same features, the same
 * rings, the same memory layout and the same request stream. It polls the used rings with
 * used-buffer notifications suppressed (or sleeps on the call eventfds with --notify) and
 * kicks only when the back-end asks for it.
 *
 * A measured window is exactly `count` requests: the driver warms up, drains, runs the
 * --on-start command (e.g. `callgrind_control --zero PID`), submits and completes `count`
 * requests, drains, and runs the --on-stop command (e.g. `callgrind_control --dump PID`), so the
 * back-end's work inside the window is exactly those requests plus its empty polls. One line of
 * key=value results is printed per window.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <libvhost/frontend.h>
#include <libvhost/memory.h>
#include <libvhost/ring.h>
#include <libvhost/wire.h>

enum workload { W_RING, W_BLK, W_NET, W_TX };

#define MAX_VRINGS 16
#define BATCH 32
#define NET_HDR 12u
#define NET_FRAME 64u
#define NET_RXBUF 2048u
#define BLK_HDR 16u
#define BLK_T_IN 0u
#define BLK_T_OUT 1u
#define F_MRG_RXBUF 15

struct opts {
	const char *socket;
	enum workload wl;
	int packed, event_idx, mrg, notify, write, verbose;
	unsigned queues, qsize, depth, regions, runs;
	uint32_t size;
	uint64_t count, warmup, disk_sectors;
	long idle_ms;
	int timeout_s;
	const char *on_start, *on_stop;
};

/* One request slot: its segments in guest memory. */
struct slot {
	struct vh_vq_seg segs[3];
	uint8_t nsegs_out, nsegs_in;
	uint8_t *hdr;    /* blk: request header in this process */
	uint8_t *status; /* blk: status byte in this process */
};

struct vring_state {
	unsigned idx;           /* vring index */
	struct vh_vq_driver *vq;
	int kick, call;
	unsigned num;
	struct slot *slots;
	unsigned nslots;
	unsigned *freelist;
	unsigned nfree;
	int is_rx;              /* net RX ring: slots are receive buffers, always posted */
	uint64_t kicks;
};

struct bench {
	struct opts o;
	struct vh_frontend *fe;
	struct vh_guest_mem *gm;
	const struct vh_region *regs;
	unsigned nregs;
	uint64_t features;
	unsigned nvrings;
	struct vring_state vr[MAX_VRINGS];
	/* allocator: per-region bump pointer */
	uint64_t *reg_used;
	uint64_t reg_cap;
	unsigned next_region;
	/* counters */
	uint64_t submitted, completed, errors, sector;
	uint64_t tx_sent[MAX_VRINGS], rx_got[MAX_VRINGS];
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time this thread got: with wall time, the share of the window the driver actually ran
 * (a preempted driver leaves the back-end polling an empty ring). */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "vhbench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(2);
}

/* ---- Guest memory layout ------------------------------------------------------------------- */

/* Round-robin over regions so buffers (and rings) spread over all of them: with many regions
 * every translation then exercises the region lookup, not only the last-hit cache. In dry mode
 * only the usage is counted (to size the memory). */
static uint64_t alloc_rr(struct bench *b, uint64_t size, uint64_t align, void **host, int dry)
{
	unsigned r = b->next_region++ % b->o.regions;
	uint64_t off = (b->reg_used[r] + align - 1) & ~(align - 1);

	b->reg_used[r] = off + size;
	if (dry) {
		*host = NULL;
		return 0;
	}
	if (b->reg_used[r] > b->regs[r].size)
		die("guest memory layout overflow", ENOMEM);
	*host = (uint8_t *)(uintptr_t)b->regs[r].userspace_addr + off;
	return b->regs[r].guest_phys_addr + off;
}

static int is_net(const struct opts *o)
{
	return o->wl == W_NET || o->wl == W_TX;
}

static unsigned vring_count(const struct opts *o)
{
	return is_net(o) ? 2 * o->queues : o->queues;
}

static unsigned segs_per_req(const struct opts *o)
{
	return o->wl == W_BLK ? 3 : 1;
}

static unsigned pow2_at_least(unsigned v)
{
	unsigned p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* Lays out rings and buffers; with dry != 0 only computes per-region usage. */
static void layout(struct bench *b, int dry)
{
	const struct opts *o = &b->o;
	uint64_t feats = b->features;

	memset(b->reg_used, 0, sizeof(*b->reg_used) * o->regions);
	b->next_region = 0;
	b->nvrings = vring_count(o);
	for (unsigned v = 0; v < b->nvrings; v++) {
		struct vring_state *vs = &b->vr[v];
		struct vh_vring_layout lay;
		void *host;
		uint64_t gpa;
		int ret;

		vs->idx = v;
		vs->num = o->qsize;
		vs->is_rx = is_net(o) && (v % 2) == 0;
		ret = vh_vring_layout(vs->num, feats, &lay);
		if (ret)
			die("vring layout", ret);
		gpa = alloc_rr(b, lay.total, 4096, &host, dry);
		if (!dry) {
			struct vh_vq_driver_config dc = {
				.num = vs->num, .features = feats, .ring_host = host,
				.ring_gpa = gpa, .ring_size = lay.total,
			};
			ret = vh_vq_driver_new(&vs->vq, &dc);
			if (ret)
				die("vh_vq_driver_new", ret);
		}
		/* Slots: RX rings post a buffer in every descriptor; request rings keep `depth`
		 * requests in flight (net TX may briefly hold more while RX lags: a full ring). */
		if (is_net(o))
			vs->nslots = vs->num;
		else
			vs->nslots = o->depth;
		if (!dry) {
			vs->slots = calloc(vs->nslots, sizeof(*vs->slots));
			vs->freelist = calloc(vs->nslots, sizeof(*vs->freelist));
			if (!vs->slots || !vs->freelist)
				die("calloc", ENOMEM);
		}
		for (unsigned i = 0; i < vs->nslots; i++) {
			struct slot *s = dry ? NULL : &vs->slots[i];
			uint64_t g;
			void *h;

			if (o->wl == W_RING) {
				g = alloc_rr(b, o->size, 64, &h, dry);
				if (s) {
					s->segs[0] = (struct vh_vq_seg){ g, o->size };
					s->nsegs_out = 1;
				}
			} else if (is_net(o) && vs->is_rx) {
				g = alloc_rr(b, NET_RXBUF, 64, &h, dry);
				if (s) {
					s->segs[0] = (struct vh_vq_seg){ g, NET_RXBUF };
					s->nsegs_in = 1;
				}
			} else if (is_net(o)) {
				g = alloc_rr(b, NET_HDR + NET_FRAME, 64, &h, dry);
				if (s) {
					uint8_t *p = h;

					memset(p, 0, NET_HDR);
					/* broadcast destination, locally administered source,
					 * an experimental ethertype, then a payload pattern */
					memset(p + NET_HDR, 0xff, 6);
					memcpy(p + NET_HDR + 6, "\x02\x00\x00\x00\x00\x01", 6);
					p[NET_HDR + 12] = 0x88;
					p[NET_HDR + 13] = 0xb5;
					for (unsigned k = 14; k < NET_FRAME; k++)
						p[NET_HDR + k] = (uint8_t)k;
					s->segs[0] = (struct vh_vq_seg){ g, NET_HDR + NET_FRAME };
					s->nsegs_out = 1;
				}
			} else { /* blk: header, data, status */
				uint64_t gh, gd;
				void *hh, *hd;

				gh = alloc_rr(b, 64, 64, &hh, dry);
				gd = alloc_rr(b, o->size, 64, &hd, dry);
				if (s) {
					s->segs[0] = (struct vh_vq_seg){ gh, BLK_HDR };
					s->segs[1] = (struct vh_vq_seg){ gd, o->size };
					s->segs[2] = (struct vh_vq_seg){ gh + 32, 1 };
					s->hdr = hh;
					s->status = (uint8_t *)hh + 32;
					if (o->write) {
						s->nsegs_out = 2;
						s->nsegs_in = 1;
						memset(hd, 0xa5, o->size);
					} else {
						s->nsegs_out = 1;
						s->nsegs_in = 2;
					}
				}
			}
		}
		if (!dry) {
			for (unsigned i = 0; i < vs->nslots; i++)
				vs->freelist[i] = vs->nslots - 1 - i;
			vs->nfree = vs->nslots;
		}
	}
}

/* ---- Set-up over the vhost-user front-end ------------------------------------------------- */

static void setup(struct bench *b)
{
	const struct opts *o = &b->o;
	struct vh_frontend_config fcfg = { .timeout_ms = 30000 };
	uint64_t offered, proto = 0, want;
	int ret;

	ret = vh_frontend_connect(&b->fe, o->socket, &fcfg);
	if (ret)
		die("connect", ret);
	ret = vh_frontend_negotiate(b->fe,
				    VH_BIT(VH_USER_PROTOCOL_F_MQ) |
					    VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK) |
					    VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
				    &offered, &proto);
	if (ret)
		die("negotiate", ret);
	ret = vh_frontend_set_owner(b->fe);
	if (ret)
		die("SET_OWNER", ret);

	want = VH_BIT(VH_F_VERSION_1);
	if (o->event_idx)
		want |= VH_BIT(VH_F_EVENT_IDX);
	if (o->packed)
		want |= VH_BIT(VH_F_RING_PACKED);
	if (o->mrg)
		want |= VH_BIT(F_MRG_RXBUF);
	if ((offered & want) != want) {
		fprintf(stderr, "vhbench: back-end offers 0x%" PRIx64 ", missing 0x%" PRIx64 "\n",
			offered, want & ~offered);
		exit(2);
	}
	b->features = want;
	if (offered & VH_BIT(VH_USER_F_PROTOCOL_FEATURES))
		want |= VH_BIT(VH_USER_F_PROTOCOL_FEATURES);
	ret = vh_frontend_set_features(b->fe, want);
	if (ret)
		die("SET_FEATURES", ret);

	if (proto & VH_BIT(VH_USER_PROTOCOL_F_MQ)) {
		uint64_t qn = 0;

		ret = vh_frontend_get_queue_num(b->fe, &qn);
		if (ret)
			die("GET_QUEUE_NUM", ret);
		if (qn < (is_net(o) ? o->queues : vring_count(o))) {
			fprintf(stderr, "vhbench: back-end has %" PRIu64 " queues\n", qn);
			exit(2);
		}
	}

	/* Guest memory: size each region for the larger of the layouts' needs. */
	b->reg_used = calloc(o->regions, sizeof(*b->reg_used));
	if (!b->reg_used)
		die("calloc", ENOMEM);
	layout(b, 1);
	uint64_t need = 0;
	for (unsigned r = 0; r < o->regions; r++)
		if (b->reg_used[r] > need)
			need = b->reg_used[r];
	need = (need + 4095) & ~4095ull;
	struct vh_guest_mem_opts gmo = {
		.size = need * o->regions, .nregions = o->regions, .gpa_base = 0x100000,
	};
	ret = vh_guest_mem_new_opts(&b->gm, &gmo);
	if (ret)
		die("guest memory", ret);
	b->regs = vh_guest_mem_regions(b->gm, &b->nregs);
	if (b->nregs != o->regions)
		die("guest memory regions", EINVAL);
	layout(b, 0);

	if (o->regions <= 8) {
		struct vh_mem_region mr[8];
		int fds[8];

		for (unsigned r = 0; r < b->nregs; r++) {
			mr[r] = (struct vh_mem_region){ b->regs[r].guest_phys_addr, b->regs[r].size,
							b->regs[r].userspace_addr,
							b->regs[r].fd_offset };
			fds[r] = b->regs[r].fd;
		}
		ret = vh_frontend_set_mem_table(b->fe, mr, fds, b->nregs);
		if (ret)
			die("SET_MEM_TABLE", ret);
	} else {
		uint64_t slots = 0;

		if (!(proto & VH_BIT(VH_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))) {
			fprintf(stderr, "vhbench: %u regions need CONFIGURE_MEM_SLOTS\n", o->regions);
			exit(3);
		}
		ret = vh_frontend_get_max_mem_slots(b->fe, &slots);
		if (ret)
			die("GET_MAX_MEM_SLOTS", ret);
		if (slots < o->regions) {
			fprintf(stderr, "vhbench: back-end has %" PRIu64 " memory slots, need %u\n",
				slots, o->regions);
			exit(3);
		}
		for (unsigned r = 0; r < b->nregs; r++) {
			struct vh_mem_region mr = { b->regs[r].guest_phys_addr, b->regs[r].size,
						    b->regs[r].userspace_addr,
						    b->regs[r].fd_offset };

			ret = vh_frontend_add_mem_reg(b->fe, &mr, b->regs[r].fd);
			if (ret)
				die("ADD_MEM_REG", ret);
		}
	}

	for (unsigned v = 0; v < b->nvrings; v++) {
		struct vring_state *vs = &b->vr[v];
		struct vh_vq_driver_addrs a;
		struct vh_vq_base base;

		vh_vq_driver_addrs(vs->vq, &a);
		vh_vq_driver_base(vs->vq, &base);
		vs->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		vs->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vs->kick < 0 || vs->call < 0)
			die("eventfd", errno);
		struct vh_vring_addr va = {
			.index = v,
			.desc_user_addr = (uint64_t)(uintptr_t)a.desc,
			.avail_user_addr = (uint64_t)(uintptr_t)a.driver,
			.used_user_addr = (uint64_t)(uintptr_t)a.device,
		};
		if ((ret = vh_frontend_set_vring_num(b->fe, v, vs->num)) ||
		    (ret = vh_frontend_set_vring_base(b->fe, v, vh_vq_base_encode(&base, o->packed))) ||
		    (ret = vh_frontend_set_vring_addr(b->fe, &va)) ||
		    (ret = vh_frontend_set_vring_call(b->fe, v, vs->call)) ||
		    (ret = vh_frontend_set_vring_kick(b->fe, v, vs->kick)))
			die("vring set-up", ret);
		if (offered & VH_BIT(VH_USER_F_PROTOCOL_FEATURES)) {
			ret = vh_frontend_set_vring_enable(b->fe, v, 1);
			if (ret)
				die("SET_VRING_ENABLE", ret);
		}
		if (!o->notify)
			vh_vq_driver_disable_cb(vs->vq);
	}
	if (o->verbose)
		fprintf(stderr, "vhbench: features 0x%" PRIx64 " protocol 0x%" PRIx64
			" regions %u x %" PRIu64 " KiB\n", want, proto, b->nregs, need >> 10);
}

static void teardown(struct bench *b)
{
	for (unsigned v = 0; v < b->nvrings; v++) {
		uint32_t base;

		/* Stops the ring in the back-end; errors are irrelevant at this point. */
		(void)vh_frontend_get_vring_base(b->fe, v, &base);
	}
	vh_frontend_free(b->fe);
	for (unsigned v = 0; v < b->nvrings; v++) {
		vh_vq_driver_free(b->vr[v].vq);
		close(b->vr[v].kick);
		close(b->vr[v].call);
		free(b->vr[v].slots);
		free(b->vr[v].freelist);
	}
	vh_guest_mem_free(b->gm);
	free(b->reg_used);
}

/* ---- Data path ----------------------------------------------------------------------------- */

static void publish_kick(struct vring_state *vs)
{
	vh_vq_driver_publish(vs->vq);
	if (vh_vq_driver_should_kick(vs->vq) > 0) {
		uint64_t one = 1;

		if (write(vs->kick, &one, sizeof(one)) < 0 && errno != EAGAIN)
			die("kick", errno);
		vs->kicks++;
	}
}

/* Adds up to n requests from the ring's free slots. Returns how many were added. */
static unsigned submit(struct bench *b, struct vring_state *vs, unsigned n)
{
	struct vh_vq_driver_req reqs[BATCH];
	unsigned k = 0;
	int ret;

	if (n > vs->nfree)
		n = vs->nfree;
	if (n > BATCH)
		n = BATCH;
	for (; k < n; k++) {
		unsigned id = vs->freelist[--vs->nfree];
		struct slot *s = &vs->slots[id];

		if (b->o.wl == W_BLK) {
			uint8_t *hdr = s->hdr;
			uint32_t type = b->o.write ? BLK_T_OUT : BLK_T_IN;
			uint64_t per = b->o.size / 512, sec = b->sector;

			b->sector += per;
			if (b->sector + per > b->o.disk_sectors)
				b->sector = 0;
			memcpy(hdr, &type, 4);
			memset(hdr + 4, 0, 4);
			memcpy(hdr + 8, &sec, 8);
			*s->status = 0xff;
		}
		reqs[k] = (struct vh_vq_driver_req){ s->segs, s->nsegs_out, s->nsegs_in, id };
	}
	if (!k)
		return 0;
	ret = vh_vq_driver_add_batch(vs->vq, reqs, k);
	if (ret < 0)
		die("add_batch", ret);
	if ((unsigned)ret < k) {
		/* Ring full: give the slots that did not fit back. */
		for (unsigned i = k; i-- > (unsigned)ret;)
			vs->freelist[vs->nfree++] = (unsigned)reqs[i].token;
		k = (unsigned)ret;
	}
	publish_kick(vs);
	return k;
}

/* Collects completions of one ring. Returns the number of completed requests (net: frames
 * received on an RX ring; TX completions only free slots). */
static unsigned reap(struct bench *b, struct vring_state *vs)
{
	struct vh_vq_driver_used u[BATCH];
	int n = vh_vq_driver_get_used(vs->vq, u, BATCH);
	unsigned done = 0;

	if (n < 0)
		die("get_used (the back-end broke the ring)", n);
	for (int i = 0; i < n; i++) {
		unsigned id = (unsigned)u[i].token;
		struct slot *s = &vs->slots[id];

		if (b->o.wl == W_BLK) {
			if (*s->status != 0)
				b->errors++;
		} else if (vs->is_rx) {
			if (u[i].len != NET_HDR + NET_FRAME)
				b->errors++;
		}
		vs->freelist[vs->nfree++] = id;
		/* net: a request completes when its frame is back; tx: when it was consumed */
		if ((b->o.wl != W_NET && b->o.wl != W_TX) || (b->o.wl == W_NET) == vs->is_rx)
			done++;
	}
	if (vs->is_rx && n > 0) {
		/* Re-post the buffers at once. */
		unsigned left = (unsigned)n;

		while (left) {
			unsigned k = submit(b, vs, left);

			if (!k)
				break;
			left -= k;
		}
	}
	return done;
}

static void wait_notify(struct bench *b)
{
	struct pollfd p[MAX_VRINGS];
	int again = 0;

	for (unsigned v = 0; v < b->nvrings; v++) {
		p[v] = (struct pollfd){ .fd = b->vr[v].call, .events = POLLIN };
		if (vh_vq_driver_enable_cb(b->vr[v].vq) > 0)
			again = 1;
	}
	if (!again)
		(void)poll(p, b->nvrings, 100);
	for (unsigned v = 0; v < b->nvrings; v++) {
		uint64_t c;

		if (read(b->vr[v].call, &c, sizeof(c)) < 0 && errno != EAGAIN)
			die("call eventfd", errno);
	}
}

/*
 * Submits and completes `count` requests with at most depth in flight per queue, then waits
 * until nothing is in flight. Returns the elapsed nanoseconds.
 */
static uint64_t run_window(struct bench *b, uint64_t count)
{
	const struct opts *o = &b->o;
	uint64_t start = now_ns(), last_progress = start, sub = 0, done = 0;
	unsigned nq = o->queues;

	b->errors = 0;
	while (done < count || sub > done) {
		unsigned progress = 0;

		for (unsigned q = 0; q < nq; q++) {
			if (o->wl == W_NET) {
				struct vring_state *rx = &b->vr[2 * q], *tx = &b->vr[2 * q + 1];
				unsigned got = reap(b, rx);

				b->rx_got[q] += got;
				done += got;
				progress += got;
				progress += reap(b, tx) ? 1 : 0;
				uint64_t infl = b->tx_sent[q] - b->rx_got[q];
				if (sub < count && infl < o->depth) {
					uint64_t want = o->depth - infl;

					if (want > count - sub)
						want = count - sub;
					unsigned k = submit(b, tx, (unsigned)want);

					b->tx_sent[q] += k;
					sub += k;
					progress += k;
				}
			} else if (o->wl == W_TX) {
				struct vring_state *tx = &b->vr[2 * q + 1];
				unsigned got = reap(b, tx);

				(void)reap(b, &b->vr[2 * q]);
				done += got;
				progress += got;
				unsigned infl = tx->nslots - tx->nfree;
				if (sub < count && infl < o->depth) {
					uint64_t want = o->depth - infl;

					if (want > count - sub)
						want = count - sub;
					unsigned k = submit(b, tx, (unsigned)want);

					sub += k;
					progress += k;
				}
			} else {
				struct vring_state *vs = &b->vr[q];
				unsigned got = reap(b, vs);

				done += got;
				progress += got;
				if (sub < count && vs->nfree) {
					uint64_t want = count - sub;
					unsigned k = submit(b, vs, want > vs->nfree ? vs->nfree : (unsigned)want);

					sub += k;
					progress += k;
				}
			}
		}
		if (progress) {
			last_progress = 0;
			continue;
		}
		/* Check the clock only when idle, so the loop stays cheap. */
		uint64_t t = now_ns();

		if (!last_progress)
			last_progress = t;
		if (t - last_progress > (uint64_t)o->timeout_s * 1000000000ull || stop_flag) {
			fprintf(stderr,
				"vhbench: stalled: %" PRIu64 " submitted, %" PRIu64 " completed of %" PRIu64 "\n",
				sub, done, count);
			exit(4);
		}
		if (o->notify)
			wait_notify(b);
	}
	/* net: also collect the last TX completions so the next window starts clean. */
	if (o->wl == W_NET) {
		uint64_t t0 = now_ns();

		for (unsigned q = 0; q < nq; q++)
			while (b->vr[2 * q + 1].nfree < b->vr[2 * q + 1].nslots) {
				reap(b, &b->vr[2 * q + 1]);
				if (now_ns() - t0 > (uint64_t)o->timeout_s * 1000000000ull) {
					fprintf(stderr, "vhbench: TX completions missing\n");
					exit(4);
				}
			}
	}
	return now_ns() - start;
}

static void hook(const char *cmd)
{
	int ret;

	if (!cmd || !*cmd)
		return;
	ret = system(cmd);
	if (ret != 0) {
		fprintf(stderr, "vhbench: hook '%s' failed (%d)\n", cmd, ret);
		exit(5);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vhbench --socket PATH [--workload ring|blk|net|tx] [--packed] [--no-event-idx]\n"
		"               [--queues N] [--qsize N] [--depth N] [--size BYTES] [--regions N]\n"
		"               [--count N] [--warmup N] [--runs N] [--write] [--mrg] [--notify]\n"
		"               [--disk-sectors N] [--idle-ms MS] [--on-start CMD] [--on-stop CMD]\n"
		"               [--timeout-s S] [--verbose]\n"
		"Drives the vhost-user back-end at PATH; prints one line per measured window.\n");
	exit(1);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", 1, 0, 's' },      { "workload", 1, 0, 'w' },   { "packed", 0, 0, 'p' },
		{ "no-event-idx", 0, 0, 'E' }, { "queues", 1, 0, 'q' },    { "qsize", 1, 0, 'Q' },
		{ "depth", 1, 0, 'd' },       { "size", 1, 0, 'S' },       { "regions", 1, 0, 'r' },
		{ "count", 1, 0, 'n' },       { "warmup", 1, 0, 'W' },     { "runs", 1, 0, 'R' },
		{ "write", 0, 0, 'o' },       { "mrg", 0, 0, 'm' },        { "notify", 0, 0, 'N' },
		{ "disk-sectors", 1, 0, 'D' }, { "idle-ms", 1, 0, 'i' },   { "on-start", 1, 0, 'a' },
		{ "on-stop", 1, 0, 'b' },     { "timeout-s", 1, 0, 't' },  { "verbose", 0, 0, 'v' },
		{ "help", 0, 0, 'h' },        { 0, 0, 0, 0 },
	};
	struct bench *b = calloc(1, sizeof(*b));
	struct opts *o;
	int c;

	if (!b)
		return 2;
	o = &b->o;
	*o = (struct opts){ .wl = W_RING, .event_idx = 1, .queues = 1, .qsize = 0, .depth = 32,
			    .size = 0, .regions = 1, .runs = 1, .count = 1000000, .warmup = ~0ull,
			    .disk_sectors = 131072, .idle_ms = -1, .timeout_s = 60 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'w':
			if (!strcmp(optarg, "ring")) o->wl = W_RING;
			else if (!strcmp(optarg, "blk")) o->wl = W_BLK;
			else if (!strcmp(optarg, "net")) o->wl = W_NET;
			else if (!strcmp(optarg, "tx")) o->wl = W_TX;
			else usage();
			break;
		case 'p': o->packed = 1; break;
		case 'E': o->event_idx = 0; break;
		case 'q': o->queues = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'Q': o->qsize = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'd': o->depth = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'S': o->size = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': o->regions = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'n': o->count = strtoull(optarg, NULL, 0); break;
		case 'W': o->warmup = strtoull(optarg, NULL, 0); break;
		case 'R': o->runs = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'o': o->write = 1; break;
		case 'm': o->mrg = 1; break;
		case 'N': o->notify = 1; break;
		case 'D': o->disk_sectors = strtoull(optarg, NULL, 0); break;
		case 'i': o->idle_ms = strtol(optarg, NULL, 0); break;
		case 'a': o->on_start = optarg; break;
		case 'b': o->on_stop = optarg; break;
		case 't': o->timeout_s = atoi(optarg); break;
		case 'v': o->verbose = 1; break;
		default: usage();
		}
	}
	if (!o->socket || !o->queues || !o->depth || !o->regions || !o->runs ||
	    o->regions > VH_MEMORY_MAX_REGIONS || vring_count(o) > MAX_VRINGS || o->timeout_s <= 0)
		usage();
	if (!o->size)
		o->size = o->wl == W_BLK ? 4096 : 64;
	if (o->wl == W_BLK && (o->size % 512 || o->size / 512 > o->disk_sectors))
		usage();
	if (!o->qsize) {
		/* Room for `depth` requests of this workload's chain length, at least 256. */
		unsigned need = o->depth * segs_per_req(o);

		o->qsize = pow2_at_least(need < 256 ? 256 : need);
	}
	if (o->depth * segs_per_req(o) > o->qsize || o->qsize > 32768 ||
	    (is_net(o) && o->depth > o->qsize))
		usage();
	if (o->warmup == ~0ull)
		o->warmup = o->count / 10 > 4 * o->depth ? o->count / 10 : 4 * o->depth;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	setup(b);
	/* net: post every RX buffer before anything is sent. */
	if (is_net(o))
		for (unsigned q = 0; q < o->queues; q++)
			while (submit(b, &b->vr[2 * q], b->vr[2 * q].nfree))
				;
	if (o->warmup)
		run_window(b, o->warmup);
	for (unsigned r = 0; r < o->runs && !stop_flag; r++) {
		uint64_t kicks0 = 0, kicks1 = 0, ns, cpu;

		for (unsigned v = 0; v < b->nvrings; v++)
			kicks0 += b->vr[v].kicks;
		hook(o->on_start);
		cpu = cpu_ns();
		ns = run_window(b, o->count);
		cpu = cpu_ns() - cpu;
		hook(o->on_stop);
		for (unsigned v = 0; v < b->nvrings; v++)
			kicks1 += b->vr[v].kicks;
		printf("run=%u requests=%" PRIu64 " ns=%" PRIu64 " rps=%.0f kicks=%" PRIu64
		       " errors=%" PRIu64 " drv_cpu=%.2f\n",
		       r + 1, o->count, ns, (double)o->count * 1e9 / (double)ns, kicks1 - kicks0,
		       b->errors, (double)cpu / (double)ns);
		fflush(stdout);
		if (b->errors) {
			fprintf(stderr, "vhbench: %" PRIu64 " requests failed\n", b->errors);
			teardown(b);
			free(b);
			return 4;
		}
	}
	/* Idle window (after the measured ones): the back-end's cost of polling nothing. */
	if (o->idle_ms >= 0 && !stop_flag) {
		struct timespec ts = { o->idle_ms / 1000, (o->idle_ms % 1000) * 1000000L };
		uint64_t t0, t1;

		hook(o->on_start);
		t0 = now_ns();
		nanosleep(&ts, NULL);
		t1 = now_ns();
		hook(o->on_stop);
		printf("idle_ms=%ld ns=%" PRIu64 "\n", o->idle_ms, t1 - t0);
	}
	teardown(b);
	free(b);
	return 0;
}
