/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: inflight recovery (INFLIGHT_SHMFD) as after a reconnect. A vh_server (event-
 * loop agnostic use, no thread) gets a connection over a socketpair and the messages a front-end
 * sends when it reconnects to a restarted back-end: features, the memory table, SET_INFLIGHT_FD
 * with a sealed memfd holding the input's inflight buffer, then per queue the ring size,
 * addresses, base and kick. The kick starts the ring, which recovers what the buffer says was in
 * flight; the device pops everything (resubmitted requests first), touches every byte of every
 * iovec and checks each piece against the guest memory file at its GPA, completes or holds each
 * request, and pushes (which writes the buffer's records).
 *
 * With FI_F_RESTART the connection is then closed after a GET_VRING_BASE and a second one sends
 * the same buffer back, with the base QEMU falls back to (the used position): the requests held
 * in the first round must come back, in the order they were popped, and nothing else, whenever
 * the first round left a consistent state (ring not broken, nothing left unpopped, the avail
 * position equal to the used position plus what was held).
 *
 * Input format: fuzz_inflight.h. Everything is bounded (pops per round, bytes touched), and after
 * each input the process's fd and mapping counts must be back to the baseline.
 */
#include <poll.h>
#include <sys/mman.h>

#include <libvhost/server.h>
#include <libvhost/wire.h>
#include "fuzz_common.h"
#include "fuzz_inflight.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* UBSan only reports by default: here a finding fails the run (libFuzzer's and the replay's)
 * unless UBSAN_OPTIONS says otherwise. Unused in builds without UBSan. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:abort_on_error=1:print_stacktrace=1";
}

#define FI_NQ 2u
#define FI_BATCH 8u
#define FI_MAX_POPS 1040u          /* per queue and round: 4 x 256 + 16 */
#define FI_TOUCH_BUDGET (1u << 20) /* bytes read and compared per input; then ends only */
#define FI_MAX_IOV 64u

struct fi_q {
	uint16_t popped[FI_MAX_POPS]; /* ids in pop order */
	unsigned npopped;
	uint16_t held[FI_MAX_POPS];
	unsigned nheld;
	unsigned held_desc;           /* ring descriptors the held requests occupy */
	int empty;                    /* a pop found nothing, with room for more */
	int started;                  /* SET_VRING_KICK acked */
	int broken;
};

static struct {
	struct fi_q q[FI_NQ];
	int round;
	uint8_t hold;
	int reverse, in_order;
	int memfd;
	size_t budget;
	unsigned errors;              /* error-level log lines this round */
	int verbose;
} D;

static void fi_log(void *opaque, enum vh_log_level level, const char *msg)
{
	(void)opaque;
	if (level == VH_LOG_ERR)
		D.errors++;
	if (D.verbose)
		fprintf(stderr, "[%d] %s\n", (int)level, msg);
}

/* Reads every byte of every piece and compares it with the guest memory file at the piece's
 * GPA, and writes each device-writable byte back unchanged (so the ring and the buffers stay
 * what the input made them). Past the budget only each piece's ends are touched. */
static void touch(const struct vh_vq_elem *e)
{
	static uint8_t file[FI_MEM_SIZE];

	for (uint32_t k = 0; k < e->out_num + e->in_num; k++) {
		volatile uint8_t *b = e->iov[k].iov_base;
		size_t len = e->iov[k].iov_len;
		uint64_t gpa = e->iov_gpa[k];

		if (len == 0)
			continue;
		if (gpa >= FI_MEM_SIZE || len > FI_MEM_SIZE - gpa) {
			fprintf(stderr, "piece %u at GPA 0x%llx (%zu bytes) is outside guest memory\n",
				k, (unsigned long long)gpa, len);
			abort();
		}
		if (len > D.budget) {
			b[0] = b[0];
			b[len - 1] = b[len - 1];
			continue;
		}
		D.budget -= len;
		if (pread(D.memfd, file, len, (off_t)gpa) != (ssize_t)len)
			abort();
		for (size_t i = 0; i < len; i++) {
			uint8_t v = b[i];

			if (v != file[i]) {
				fprintf(stderr, "piece %u byte %zu: 0x%02x in the iovec, 0x%02x at GPA "
					"0x%llx\n", k, i, v, file[i], (unsigned long long)(gpa + i));
				abort();
			}
			if (k >= e->out_num)
				b[i] = v;
		}
	}
}

static void dev_process(void *opaque, struct vh_server_queue *q)
{
	struct fi_q *fq = &D.q[vh_server_queue_index(q) % FI_NQ];
	struct vh_vq_elem el[FI_BATCH];
	struct vh_vq_used u[FI_BATCH];

	(void)opaque;
	for (unsigned calls = 0; calls < FI_MAX_POPS; calls++) {
		unsigned room = FI_MAX_POPS - fq->npopped, nu = 0;
		int n, r;

		if (room == 0)
			break;
		/* Zeroed: the server points each element at its own storage. */
		memset(el, 0, sizeof(el));
		n = vh_server_queue_pop(q, el, room < FI_BATCH ? room : FI_BATCH);
		if (n < 0) {
			fq->broken = 1;
			break;
		}
		if (n == 0) {
			fq->empty = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			unsigned k = fq->npopped++;
			int hold = D.round == 1 && ((D.hold >> (k % 8u)) & 1u);

			touch(&el[i]);
			fq->popped[k] = el[i].id;
			/* IN_ORDER: completions in pop order, so after one held request all are. */
			if (D.in_order && fq->nheld)
				hold = 1;
			if (hold) {
				fq->held[fq->nheld++] = el[i].id;
				fq->held_desc += el[i].ndesc;
			} else {
				u[nu].id = el[i].id;
				u[nu].len = el[i].in_len > 64 ? 64u : (uint32_t)el[i].in_len;
				nu++;
			}
		}
		if (D.reverse && !D.in_order) {
			for (unsigned i = 0; i < nu / 2; i++) {
				struct vh_vq_used t = u[i];

				u[i] = u[nu - 1 - i];
				u[nu - 1 - i] = t;
			}
		}
		r = vh_server_queue_push(q, u, nu);
		if (r == -EIO) {
			fq->broken = 1;
			break;
		}
		if (r) {
			fprintf(stderr, "push of %u popped requests refused: %d\n", nu, r);
			abort();
		}
		(void)vh_server_queue_notify(q);
	}
}

static const struct vh_server_ops dev_ops = {
	.process = dev_process,
};

/* ---- A front-end in a few messages ------------------------------------------------------------ */

/* Sends one request (with NEED_REPLY when asked) and an optional fd, and lets the server
 * dispatch it. Returns the reply's payload size (its bytes in rp[64]), 0 without a reply
 * wanted, -1 if the connection is gone or no reply came. */
static int request(struct vh_server *s, int sock, uint32_t id, const void *p, uint32_t size,
		   int fd, int need_reply, uint8_t *rp)
{
	uint8_t m[12 + 64];
	struct vh_msg_hdr h = { id, VH_USER_VERSION | (need_reply ? VH_USER_FLAG_NEED_REPLY : 0),
				size };
	struct iovec iov = { m, 12 + size };
	struct vh_msg_hdr rh;

	if (size > 64)
		abort();
	memcpy(m, &h, 12);
	if (size)
		memcpy(m + 12, p, size);
	if (t_sendmsg_fds(sock, &iov, 1, &fd, fd >= 0 ? 1 : 0, MSG_DONTWAIT) != (ssize_t)iov.iov_len)
		return -1;
	for (int i = 0; i < 4; i++)
		if (vh_server_dispatch(s) != 0)
			break;
	if (!need_reply)
		return 0;
	if (recv(sock, &rh, sizeof(rh), MSG_DONTWAIT) != (ssize_t)sizeof(rh) || rh.size > 64 ||
	    (rh.size && recv(sock, rp, rh.size, MSG_DONTWAIT) != (ssize_t)rh.size))
		return -1;
	return (int)rh.size;
}

/* A request that wants an ack: 1 if the server accepted it. */
static int acked(struct vh_server *s, int sock, uint32_t id, const void *p, uint32_t size, int fd)
{
	uint8_t rp[64];
	uint64_t v;

	if (request(s, sock, id, p, size, fd, 1, rp) != 8)
		return 0;
	memcpy(&v, rp, 8);
	return v == 0;
}

struct fi_setup {
	int packed;
	unsigned num, nq;
	uint64_t features;
	uint64_t ring_gpa[FI_NQ];
	struct vh_vring_layout lay;
	int inffd;
	struct vh_inflight inf;
	int fits;                     /* regions hold the ring: tracked if SET_INFLIGHT_FD is ok */
	uint32_t base[FI_NQ];         /* SET_VRING_BASE values */
};

/* Connects and sends what a reconnecting front-end sends; starts every queue it can and runs
 * each started one once. Returns the front-end's socket, *inflight_ok whether SET_INFLIGHT_FD
 * was accepted; -1 on a local failure. */
static int session(struct vh_server *s, const struct fi_setup *st, int *inflight_ok)
{
	uint64_t pf = VH_BIT(VH_USER_PROTOCOL_F_MQ) | VH_BIT(VH_USER_PROTOCOL_F_REPLY_ACK) |
		      VH_BIT(VH_USER_PROTOCOL_F_INFLIGHT_SHMFD);
	struct {
		uint32_t n, pad;
		struct vh_mem_region r;
	} mt = { 1, 0, { 0, FI_MEM_SIZE, FI_UADDR, 0 } };
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	if (vh_server_set_connection(s, sv[0])) {
		close(sv[1]);
		return -1;
	}
	(void)request(s, sv[1], VH_USER_SET_PROTOCOL_FEATURES, &pf, 8, -1, 0, NULL);
	(void)acked(s, sv[1], VH_USER_SET_OWNER, NULL, 0, -1);
	(void)acked(s, sv[1], VH_USER_SET_FEATURES, &st->features, 8, -1);
	(void)acked(s, sv[1], VH_USER_SET_MEM_TABLE, &mt, sizeof(mt), D.memfd);
	*inflight_ok = acked(s, sv[1], VH_USER_SET_INFLIGHT_FD, &st->inf, 24, st->inffd);
	for (unsigned qi = 0; qi < st->nq; qi++) {
		struct vh_vring_state num = { qi, st->num }, base = { qi, st->base[qi] };
		struct vh_vring_state en = { qi, 1 };
		struct vh_vring_addr a = {
			qi, 0, FI_UADDR + st->ring_gpa[qi] + st->lay.desc_off,
			FI_UADDR + st->ring_gpa[qi] + st->lay.device_off,
			FI_UADDR + st->ring_gpa[qi] + st->lay.driver_off, 0
		};
		uint64_t file = qi;
		int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

		if (kick < 0)
			abort();
		(void)acked(s, sv[1], VH_USER_SET_VRING_NUM, &num, 8, -1);
		(void)acked(s, sv[1], VH_USER_SET_VRING_ADDR, &a, sizeof(a), -1);
		(void)acked(s, sv[1], VH_USER_SET_VRING_BASE, &base, 8, -1);
		D.q[qi].started = acked(s, sv[1], VH_USER_SET_VRING_KICK, &file, 8, kick);
		close(kick);
		(void)acked(s, sv[1], VH_USER_SET_VRING_ENABLE, &en, 8, -1);
	}
	for (unsigned qi = 0; qi < st->nq; qi++) {
		if (!D.q[qi].started)
			continue;
		(void)vh_server_run_queue(s, qi);
		if (vh_server_queue_is_broken(vh_server_get_queue(s, qi)))
			D.q[qi].broken = 1;
	}
	return sv[1];
}

/* Closes the front-end's side; the server tears the connection down (queues stop, held
 * requests are given up, the inflight mapping goes). */
static void hang_up(struct vh_server *s, int sock)
{
	struct vh_backend *be = vh_server_backend(s);

	close(sock);
	for (int i = 0; i < 16 && vh_backend_is_connected(be); i++)
		(void)vh_server_dispatch(s);
	if (vh_backend_is_connected(be)) {
		fprintf(stderr, "server still connected after the hang-up\n");
		abort();
	}
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Linear position of a packed index and wrap counter, modulo 2 x num. */
static unsigned lin(unsigned pos, unsigned wrap, unsigned num)
{
	return pos + (wrap ? 0 : num);
}

/* After round 1 (restart only): GET_VRING_BASE, and whether what round 2 must recover is
 * known. Sets the base a front-end falls back to after a crash (the used position). */
static int end_round1(struct vh_server *s, int sock, struct fi_setup *st, unsigned qi,
		      int inflight_ok, int *expect)
{
	struct fi_q *fq = &D.q[qi];
	struct vh_vring_state vs = { qi, 0 };
	uint8_t rp[64];
	uint32_t v;
	uint16_t used;

	*expect = 0;
	if (!fq->started)
		return 0;
	if (request(s, sock, VH_USER_GET_VRING_BASE, &vs, 8, -1, 1, rp) != 8)
		return -1;
	memcpy(&v, rp + 4, 4);
	if (!st->packed) {
		if (pread(D.memfd, &used, 2, (off_t)(st->ring_gpa[qi] + st->lay.device_off + 2)) != 2)
			abort();
		st->base[qi] = used;
		*expect = (uint16_t)(used + fq->nheld) == (uint16_t)v;
	} else {
		unsigned ap = v & 0x7fffu, aw = (v >> 15) & 1u;
		unsigned up = (v >> 16) & 0x7fffu, uw = (unsigned)(v >> 31) & 1u, n2 = 2 * st->num;

		st->base[qi] = (uint32_t)(up | uw << 15 | up << 16 | uw << 31);
		*expect = ap < st->num && up < st->num &&
			  (lin(ap, aw, st->num) + n2 - lin(up, uw, st->num)) % n2 ==
				  fq->held_desc % n2;
	}
	*expect = *expect && inflight_ok && st->fits && !fq->broken && fq->empty && fq->nheld < st->num &&
		  D.errors == 0;
	return 0;
}

/* FZ_LOG=1: what each round did. */
static void report(const struct fi_setup *st, const int *expect)
{
	if (!D.verbose)
		return;
	for (unsigned qi = 0; qi < st->nq; qi++) {
		const struct fi_q *fq = &D.q[qi];

		fprintf(stderr, "round %d queue %u: started %d broken %d empty %d, popped", D.round,
			qi, fq->started, fq->broken, fq->empty);
		for (unsigned i = 0; i < fq->npopped && i < 32; i++)
			fprintf(stderr, " %u", fq->popped[i]);
		fprintf(stderr, ", held");
		for (unsigned i = 0; i < fq->nheld && i < 32; i++)
			fprintf(stderr, " %u", fq->held[i]);
		fprintf(stderr, "%s\n", expect && expect[qi] ? ", checked after the restart" : "");
	}
}

static void init_once(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	D.verbose = getenv("FZ_LOG") != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vh_server_config cfg;
	struct vh_server *s = NULL;
	struct fi_setup st;
	const uint8_t *img;
	size_t n, per, need, flen, imglen;
	uint64_t off;
	int sock, inf_ok = 0, expect[FI_NQ] = { 0, 0 };
	uint8_t flags;

	init_once();
	if (size < FI_HDR)
		return 0;
	memset(&st, 0, sizeof(st));
	memset(D.q, 0, sizeof(D.q));
	flags = data[0];
	st.packed = (flags & FI_F_PACKED) != 0;
	st.num = fi_num(flags, data[1]);
	st.nq = (flags & FI_F_TWO_QUEUES) ? 2 : 1;
	st.features = VH_BIT(VH_F_VERSION_1) | VH_BIT(VH_USER_F_PROTOCOL_FEATURES) |
		      (st.packed ? VH_BIT(VH_F_RING_PACKED) : 0) |
		      ((flags & FI_F_EVENT_IDX) ? VH_BIT(VH_F_EVENT_IDX) : 0) |
		      ((flags & FI_F_INDIRECT) ? VH_BIT(VH_F_INDIRECT_DESC) : 0) |
		      ((flags & FI_F_IN_ORDER) ? VH_BIT(VH_F_IN_ORDER) : 0);
	if (vh_vring_layout(st.num, st.packed ? VH_VQ_F_RING_PACKED : 0, &st.lay))
		return 0;
	for (unsigned qi = 0; qi < FI_NQ; qi++) {
		st.ring_gpa[qi] = fi_ring_gpa(qi, st.lay.total);
		if (st.packed) {
			unsigned up = (le16(data + 3) & 0x7fffu) % st.num, uw = data[4] >> 7;
			unsigned ap = (le16(data + 5) & 0x7fffu) % st.num, aw = data[6] >> 7;

			st.base[qi] = (uint32_t)(ap | aw << 15 | up << 16 | uw << 31);
		} else {
			st.base[qi] = le16(data + 5);
		}
	}
	D.hold = data[7];
	D.reverse = (flags & FI_F_REVERSE) != 0;
	D.in_order = (flags & FI_F_IN_ORDER) != 0;
	D.budget = FI_TOUCH_BUDGET;
	n = le16(data + 8);
	if (n > size - FI_HDR)
		n = size - FI_HDR;
	img = data + FI_HDR + n;
	imglen = size - FI_HDR - n;
	if (imglen > FI_MEM_SIZE)
		imglen = FI_MEM_SIZE;

	/* Guest memory: the image, with the split used index of the header. */
	D.memfd = t_memfd("fi-guest", FI_MEM_SIZE);
	if (D.memfd < 0 || (imglen && pwrite(D.memfd, img, imglen, 0) != (ssize_t)imglen))
		abort();
	for (unsigned qi = 0; qi < st.nq && !st.packed; qi++)
		if (pwrite(D.memfd, data + 3, 2,
			   (off_t)(st.ring_gpa[qi] + st.lay.device_off + 2)) != 2)
			abort();

	/* The inflight file: the input's bytes at mmap_offset, sealed as GET_INFLIGHT_FD makes it. */
	off = fi_mmap_offset(flags, data[2]);
	per = fi_region_bytes(fi_entries(st.num, data[2]), st.packed);
	need = per * st.nq;
	flen = (size_t)off + (need > n ? need : n);
	st.inffd = memfd_create("fi-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (st.inffd < 0 || ftruncate(st.inffd, (off_t)flen) ||
	    (n && pwrite(st.inffd, data + FI_HDR, n, (off_t)off) != (ssize_t)n) ||
	    fcntl(st.inffd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		abort();
	st.inf = (struct vh_inflight){ need, off, (uint16_t)st.nq,
				       (uint16_t)fi_entries(st.num, data[2]), 0 };
	st.fits = fi_entries(st.num, data[2]) >= st.num;

	memset(&cfg, 0, sizeof(cfg));
	cfg.num_queues = FI_NQ;
	cfg.max_iov = FI_MAX_IOV;
	cfg.log.fn = fi_log;
	cfg.log.max_level = D.verbose ? VH_LOG_DEBUG : VH_LOG_ERR;
	cfg.timeout_ms = 50;
	if (vh_server_new(&s, &cfg, &dev_ops, NULL))
		abort();

	D.round = 1;
	D.errors = 0;
	sock = session(s, &st, &inf_ok);
	if (sock >= 0 && (flags & FI_F_RESTART)) {
		struct fi_q r1[FI_NQ];
		int ok = 1;

		for (unsigned qi = 0; qi < st.nq && ok; qi++)
			ok = end_round1(s, sock, &st, qi, inf_ok, &expect[qi]) == 0;
		report(&st, expect);
		hang_up(s, sock);
		memcpy(r1, D.q, sizeof(r1));
		memset(D.q, 0, sizeof(D.q));
		D.round = 2;
		D.errors = 0;
		sock = ok ? session(s, &st, &inf_ok) : -1;
		for (unsigned qi = 0; qi < st.nq && sock >= 0; qi++) {
			const struct fi_q *a = &r1[qi], *b = &D.q[qi];

			/* Round 2 completes everything; a broken ring or a logged error (tracking
			 * stopped) leaves nothing to compare. */
			if (!expect[qi] || !inf_ok || !b->started || b->broken || D.errors)
				continue;
			if (b->npopped != a->nheld ||
			    memcmp(b->popped, a->held, a->nheld * sizeof(a->held[0]))) {
				fprintf(stderr, "queue %u: %u requests held before the restart, %u "
					"popped after it\n", qi, a->nheld, b->npopped);
				for (unsigned i = 0; i < a->nheld || i < b->npopped; i++)
					fprintf(stderr, "  #%u held %d popped %d\n", i,
						i < a->nheld ? a->held[i] : -1,
						i < b->npopped ? b->popped[i] : -1);
				abort();
			}
		}
	}
	if (sock >= 0) {
		report(&st, NULL);
		hang_up(s, sock);
	}
	vh_server_free(s);
	close(st.inffd);
	close(D.memfd);
	D.memfd = -1;
	fz_check_leaks("fuzz_inflight");
	return 0;
}
