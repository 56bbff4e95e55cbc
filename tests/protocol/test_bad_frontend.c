/* SPDX-License-Identifier: MIT */
/*
 * A malicious back-end against the libvhost front-end (bad-inputs class 30, and class 24 on the
 * front-end's side): a fake back-end thread answers with wrong ids, flags, sizes, fds and
 * contents, never answers, or hangs up; on the back-end channel it sends crafted requests
 * (host notifiers for queues that do not exist, shared memory maps out of range, ...). Each case
 * asserts the front-end's error (sticky where the stream is lost, a NAK where it is not), that
 * every fd that came with the bad message is closed and the fd and mapping counts are back to the
 * baseline, and that a new connection is then served normally.
 */
#include <signal.h>
#include <sys/uio.h>

#include "harness.h"

#define PF(b) VH_BIT(VH_USER_PROTOCOL_F_##b)
#define V1 VH_USER_VERSION
#define RF (VH_USER_VERSION | VH_USER_FLAG_REPLY)
#define OFFERED (H_FEATURES | VH_BIT(VH_USER_F_PROTOCOL_FEATURES))
#define PROTO (H_PROTOCOL_ALL & ~PF(PAGEFAULT) & ~PF(XEN_MMAP))
#define FE_TIMEOUT_MS 300
#define NQ 2u

static long page;

/* ---- The fake back-end ----------------------------------------------------------------------- */

struct fake;
typedef void (*responder)(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds);

struct fake {
	struct vh_endpoint ep;
	pthread_t th;
	int chan;          /* our end of the back-end channel, once set up */
	uint32_t bad_id;   /* requests with this id go to `bad` */
	responder bad;
	int arg;
	int requests;
};

static void fsend(struct fake *f, uint32_t id, uint32_t flags, const void *p, uint32_t size,
		  const int *fds, unsigned nfds)
{
	struct vh_msg_hdr h = { id, flags, size };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)p, size } };

	if (t_sendmsg_fds(f->ep.fd, iov, size && p ? 2 : 1, fds, nfds, 0) < 0 && errno != EPIPE &&
	    errno != ECONNRESET)
		T_FAIL("fake send: %s", strerror(errno));
}

static void reply_u64(struct fake *f, uint32_t id, uint64_t v)
{
	fsend(f, id, RF, &v, 8, NULL, 0);
}

/* What a correct back-end answers. */
static void respond_good(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	const struct vh_request_info *row = vh_request_info(req->hdr.request);
	uint32_t id = req->hdr.request;
	static struct vh_msg rep;

	if (!row)
		return;
	switch (id) {
	case VH_USER_GET_FEATURES:
		reply_u64(f, id, OFFERED);
		return;
	case VH_USER_GET_PROTOCOL_FEATURES:
		reply_u64(f, id, H_PROTOCOL_ALL);
		return;
	case VH_USER_GET_QUEUE_NUM:
		reply_u64(f, id, NQ);
		return;
	case VH_USER_SET_BACKEND_REQ_FD:
		if (f->chan >= 0)
			close(f->chan);
		f->chan = nfds ? fds[0] : -1;
		if (nfds)
			fds[0] = -1;
		break;
	case VH_USER_GET_VRING_BASE:
		fsend(f, id, RF, &req->payload, 8, NULL, 0);
		return;
	case VH_USER_GET_CONFIG:
		memcpy(&rep.payload, &req->payload, req->hdr.size);
		fsend(f, id, RF, &rep.payload, req->hdr.size, NULL, 0);
		return;
	case VH_USER_GET_SHMEM_CONFIG:
		memset(&rep.payload.shmem_config, 0, sizeof(rep.payload.shmem_config));
		rep.payload.shmem_config.nregions = 2;
		rep.payload.shmem_config.memory_sizes[0] = 16 * (uint64_t)page;
		rep.payload.shmem_config.memory_sizes[1] = 16 * (uint64_t)page;
		fsend(f, id, RF, &rep.payload, sizeof(rep.payload.shmem_config), NULL, 0);
		return;
	case VH_USER_GET_INFLIGHT_FD: {
		struct vh_inflight inf = req->payload.inflight;
		int fd = t_memfd("fake-inflight", 4096);

		inf.mmap_size = 4096;
		inf.mmap_offset = 0;
		fsend(f, id, RF, &inf, 24, &fd, 1);
		close(fd);
		return;
	}
	default:
		break;
	}
	if (row->reply == VH_REPLY_U64)
		reply_u64(f, id, 0);
	else if (row->reply == VH_REPLY_ACK && (req->hdr.flags & VH_USER_FLAG_NEED_REPLY))
		reply_u64(f, id, 0);
}

static void *fake_thread(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		static __thread struct vh_msg req;
		int fds[VH_USER_MAX_FDS];
		unsigned nfds = 0;
		int r = vh_endpoint_recv(&f->ep, &req, fds, &nfds, -1);

		if (r)
			break;
		__atomic_add_fetch(&f->requests, 1, __ATOMIC_RELEASE);
		if (f->bad && req.hdr.request == f->bad_id)
			f->bad(f, &req, fds, nfds);
		else
			respond_good(f, &req, fds, nfds);
		vh_close_fds(fds, nfds);
	}
	return NULL;
}

struct ctx {
	struct fake f;
	struct vh_frontend *fe;
};

static const struct vh_frontend_config fe_cfg = {
	.timeout_ms = FE_TIMEOUT_MS,
	.flags = VH_FRONTEND_F_TRUST_NEW_PROTOCOL_BITS,
};

/* Extra VH_FRONTEND_F_* for the next ctx_open() (a case that needs them reopens its ctx). */
static unsigned case_fe_flags;

static void ctx_open(struct ctx *c)
{
	struct vh_frontend_config cfg = fe_cfg;
	int sv[2];

	memset(c, 0, sizeof(*c));
	c->f.chan = -1;
	vh_socketpair(sv);
	vh_endpoint_init(&c->f.ep, sv[0], "fake");
	c->f.ep.timeout_ms = 1000;
	cfg.flags |= case_fe_flags;
	if (vh_frontend_new(&c->fe, sv[1], &cfg))
		T_FAIL("vh_frontend_new");
	pthread_create(&c->f.th, NULL, fake_thread, &c->f);
	CHECK_EQ(vh_frontend_assume_negotiated(c->fe, OFFERED, PROTO), 0);
	CHECK_EQ(vh_frontend_set_queue_count(c->fe, NQ), 0);
	CHECK_EQ(vh_frontend_set_features(c->fe, OFFERED), 0);
}

static void ctx_close(struct ctx *c)
{
	vh_frontend_free(c->fe);
	c->fe = NULL;
	pthread_join(c->f.th, NULL);
	vh_endpoint_close(&c->f.ep);
	if (c->f.chan >= 0)
		close(c->f.chan);
}

/* Routes the next request with this id to a bad responder. */
static void badly(struct ctx *c, uint32_t id, responder r, int arg)
{
	c->f.bad_id = id;
	c->f.bad = r;
	c->f.arg = arg;
}

/* The connection failed for good with err: later calls return it too, nothing is sent. */
static void expect_sticky(struct ctx *c, int err)
{
	uint64_t v;
	int before = __atomic_load_n(&c->f.requests, __ATOMIC_ACQUIRE);

	CHECK_EQ(vh_frontend_error(c->fe), err);
	CHECK_EQ(vh_frontend_get_features(c->fe, &v), err);
	CHECK_EQ(vh_frontend_set_owner(c->fe), err);
	t_sleep_ms(20);
	CHECK_EQ(__atomic_load_n(&c->f.requests, __ATOMIC_ACQUIRE), before);
}

/* The connection is still good. */
static void expect_usable(struct ctx *c)
{
	uint64_t v = 0;

	badly(c, 0, NULL, 0);
	CHECK_EQ(vh_frontend_error(c->fe), 0);
	CHECK_EQ(vh_frontend_get_features(c->fe, &v), 0);
	CHECK_EQ(v, OFFERED);
}

/* ==== Bad replies on the main socket ============================================================== */

static void r_wrong_id(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	(void)fds, (void)nfds;
	reply_u64(f, req->hdr.request + 1 + (uint32_t)f->arg, OFFERED);
}

static void r_flags(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	static const uint32_t flags[] = { 0x1, 0x4, 0x6, 0x7, RF | VH_USER_FLAG_NEED_REPLY, 0xd,
					  RF | 0x10, 0x80000005u };
	uint64_t v = OFFERED;

	(void)fds, (void)nfds;
	fsend(f, req->hdr.request, flags[f->arg], &v, 8, NULL, 0);
}

static void r_size(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	static const uint32_t sizes[] = { 0, 4, 7, 9, 16, 4096 };
	static uint8_t junk[4096];

	(void)fds, (void)nfds;
	fsend(f, req->hdr.request, RF, junk, sizes[f->arg], NULL, 0);
}

static void r_oversize(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	int fd = t_memfd("oversize", 0);

	(void)fds, (void)nfds;
	fsend(f, req->hdr.request, RF, NULL, VH_USER_MAX_PAYLOAD + 1 + (uint32_t)f->arg, &fd, 1);
	close(fd);
}

static void r_silent(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	(void)f, (void)req, (void)fds, (void)nfds;
}

static void r_hangup(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	(void)req, (void)fds, (void)nfds;
	shutdown(f->ep.fd, SHUT_RDWR);
}

static void r_half(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	struct vh_msg_hdr h = { req->hdr.request, RF, 8 };

	(void)fds, (void)nfds;
	/* the header and half the payload, then nothing */
	if (send(f->ep.fd, &h, sizeof(h), MSG_NOSIGNAL) < 0 || send(f->ep.fd, "abcd", 4, MSG_NOSIGNAL) < 0)
		T_FAIL("send");
}

static void r_fds(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	int mine[12];
	uint64_t v = OFFERED;
	unsigned n = (unsigned)f->arg;

	(void)fds, (void)nfds;
	for (unsigned i = 0; i < n; i++)
		mine[i] = t_memfd("stray-reply-fd", 0);
	fsend(f, req->hdr.request, RF, &v, 8, mine, n);
	vh_close_fds(mine, n);
}

static void r_nak(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	(void)fds, (void)nfds;
	reply_u64(f, req->hdr.request, 1);
}

/* Two replies for one request: the second is unsolicited. */
static void r_twice(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	(void)fds, (void)nfds;
	reply_u64(f, req->hdr.request, OFFERED);
	reply_u64(f, req->hdr.request, OFFERED);
}

static void f_wrong_id(struct ctx *c)
{
	uint64_t v = 0;

	badly(c, VH_USER_GET_FEATURES, r_wrong_id, 0);
	CHECK_EQ(vh_frontend_get_features(c->fe, &v), -EPROTO);
	expect_sticky(c, -EPROTO);
}

static void f_flags(struct ctx *c, int arg)
{
	uint64_t v = 0;

	badly(c, VH_USER_GET_FEATURES, r_flags, arg);
	CHECK_EQ(vh_frontend_get_features(c->fe, &v), -EPROTO);
	expect_sticky(c, -EPROTO);
}

static void f_size(struct ctx *c, int arg)
{
	uint64_t v = 0;

	badly(c, VH_USER_GET_FEATURES, r_size, arg);
	CHECK_EQ(vh_frontend_get_features(c->fe, &v), -EPROTO);
	expect_sticky(c, -EPROTO);
}

static void f_oversize(struct ctx *c, int arg)
{
	uint64_t v = 0;
	int r;

	badly(c, VH_USER_GET_FEATURES, r_oversize, arg);
	r = vh_frontend_get_features(c->fe, &v);
	/* The endpoint reports -EMSGSIZE; either it or -EPROTO is a protocol failure. */
	if (r != -EMSGSIZE && r != -EPROTO)
		T_FAIL("oversize reply: %d (%s)", r, t_errname(r));
	expect_sticky(c, r);
}

static void f_timeout(struct ctx *c, int arg)
{
	uint64_t v = 0;
	int64_t t0 = t_now_ms(), dt;

	badly(c, VH_USER_GET_FEATURES, arg ? r_half : r_silent, 0);
	CHECK_EQ(vh_frontend_get_features(c->fe, &v), -ETIMEDOUT);
	dt = t_now_ms() - t0;
	if (dt < FE_TIMEOUT_MS - 20 || dt > FE_TIMEOUT_MS * 4)
		T_FAIL("timed out after %lld ms (timeout %d)", (long long)dt, FE_TIMEOUT_MS);
	expect_sticky(c, -ETIMEDOUT);
}

static void f_hangup(struct ctx *c)
{
	uint64_t v = 0;

	badly(c, VH_USER_GET_FEATURES, r_hangup, 0);
	CHECK_EQ(vh_frontend_get_features(c->fe, &v), -ECONNRESET);
	expect_sticky(c, -ECONNRESET);
}

static void f_reply_fds(struct ctx *c, int n)
{
	uint64_t v = 0;
	int r;

	badly(c, VH_USER_GET_FEATURES, r_fds, n);
	r = vh_frontend_get_features(c->fe, &v);
	/* more than 8 fds is already a framing error (-EBADMSG) */
	CHECK_EQ(r, n > 8 ? -EBADMSG : -EPROTO);
	expect_sticky(c, r);
}

/* A NAK is an answer, not a broken stream. */
static void f_nak(struct ctx *c)
{
	badly(c, VH_USER_SET_VRING_NUM, r_nak, 0);
	CHECK_EQ(vh_frontend_set_vring_num(c->fe, 0, 256), -EIO);
	expect_usable(c);
}

static void f_ack_size(struct ctx *c, int arg)
{
	badly(c, VH_USER_SET_VRING_NUM, r_size, arg);
	CHECK_EQ(vh_frontend_set_vring_num(c->fe, 0, 256), -EPROTO);
	expect_sticky(c, -EPROTO);
}

static void f_unsolicited(struct ctx *c)
{
	badly(c, VH_USER_GET_FEATURES, r_twice, 0);
	{
		uint64_t v = 0;

		CHECK_EQ(vh_frontend_get_features(c->fe, &v), 0);
	}
	t_sleep_ms(20);
	/* the next call finds the extra message before it sends anything */
	CHECK_EQ(vh_frontend_set_owner(c->fe), -EPROTO);
	expect_sticky(c, -EPROTO);
}

/* A message from the back-end out of the blue, between requests. */
static void f_unsolicited_idle(struct ctx *c)
{
	int fd = t_memfd("unsolicited", 0);

	fsend(&c->f, VH_USER_GET_FEATURES, RF, &(uint64_t){ 0 }, 8, &fd, 1);
	close(fd);
	t_sleep_ms(20);
	CHECK_EQ(vh_frontend_set_owner(c->fe), -EPROTO);
	expect_sticky(c, -EPROTO);
}

/* ---- Request-specific reply contents -------------------------------------------------------------- */

static void r_vring_base_other_queue(struct fake *f, const struct vh_msg *req, int *fds,
				     unsigned nfds)
{
	struct vh_vring_state st = req->payload.state;

	(void)fds, (void)nfds;
	st.index ^= 1;
	fsend(f, req->hdr.request, RF, &st, 8, NULL, 0);
}

static void f_vring_base(struct ctx *c)
{
	uint32_t base = 0;

	badly(c, VH_USER_GET_VRING_BASE, r_vring_base_other_queue, 0);
	CHECK_EQ(vh_frontend_get_vring_base(c->fe, 0, &base), -EPROTO);
	expect_sticky(c, -EPROTO);
}

/* The right queue, a position out of range for a split ring (16 bits); packed rings carry
 * their wrap counters in bits 15 and 31, so any value is a position there. */
static void r_vring_base_value(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	struct vh_vring_state st = { req->payload.state.index, 0 };

	(void)fds, (void)nfds;
	st.num = f->arg ? 0x80018001u : 0x10000u;
	fsend(f, req->hdr.request, RF, &st, 8, NULL, 0);
}

static void f_vring_base_value(struct ctx *c, int arg)
{
	uint32_t base = 7;

	if (arg) {
		CHECK_EQ(vh_frontend_assume_negotiated(c->fe, OFFERED | VH_BIT(VH_F_RING_PACKED),
						       PROTO), 0);
		CHECK_EQ(vh_frontend_set_features(c->fe, OFFERED | VH_BIT(VH_F_RING_PACKED)), 0);
	}
	badly(c, VH_USER_GET_VRING_BASE, r_vring_base_value, arg);
	if (arg) {
		CHECK_EQ(vh_frontend_get_vring_base(c->fe, 1, &base), 0);
		CHECK_EQ(base, 0x80018001u);
		expect_usable(c);
		return;
	}
	CHECK_EQ(vh_frontend_get_vring_base(c->fe, 1, &base), -EPROTO);
	CHECK_EQ(base, 7);
	expect_sticky(c, -EPROTO);
}

static void r_config(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	static struct vh_msg rep;
	uint32_t size = req->hdr.size;

	(void)fds, (void)nfds;
	memcpy(&rep.payload, &req->payload, req->hdr.size);
	switch (f->arg) {
	case 0: rep.payload.config.offset += 4; break;   /* another offset */
	case 1: rep.payload.config.size -= 1; break;     /* another size in the struct */
	case 2: size -= 1; break;                        /* a shorter message */
	case 3: size += 4; break;                        /* a longer one */
	case 4: size = 8; break;                         /* shorter than the config header */
	}
	fsend(f, req->hdr.request, RF, &rep.payload, size, NULL, 0);
}

static void f_config(struct ctx *c, int arg)
{
	uint8_t buf[32];

	badly(c, VH_USER_GET_CONFIG, r_config, arg);
	CHECK_EQ(vh_frontend_get_config(c->fe, 8, buf, sizeof(buf), 0), -EPROTO);
	expect_sticky(c, -EPROTO);
}

static void r_inflight(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	struct vh_inflight inf = req->payload.inflight;
	int fd = t_memfd("evil-inflight", 4 * (size_t)page);
	unsigned n = 1;

	(void)fds, (void)nfds;
	inf.mmap_offset = 0;
	switch (f->arg) {
	case 0: inf.mmap_size = 1ull << 40; break;                      /* huge */
	case 1: inf.mmap_size = 64 * (uint64_t)page; break;             /* > what 1 x 64 needs */
	case 2: inf.mmap_size = 4096; n = 0; break;                     /* no fd */
	case 3: inf.mmap_size = 4096; inf.mmap_offset = ~0ull - 100; break; /* wraps */
	case 4: inf.mmap_size = 4096; inf.mmap_offset = 100; break;     /* misaligned */
	case 5: inf.mmap_size = 4096; inf.mmap_offset = 8 * (uint64_t)page; break; /* past EOF */
	case 6: inf.mmap_size = 4096; n = 2; break;                     /* two fds */
	}
	{
		int two[2] = { fd, fd };

		fsend(f, req->hdr.request, RF, &inf, 24, two, n);
	}
	close(fd);
}

static void f_inflight(struct ctx *c, int arg)
{
	struct vh_inflight out;
	int fd = 77;

	badly(c, VH_USER_GET_INFLIGHT_FD, r_inflight, arg);
	CHECK_EQ(vh_frontend_get_inflight_fd(c->fe, 1, 64, &out, &fd), -EPROTO);
	CHECK_EQ(fd, -1);
	expect_sticky(c, -EPROTO);
}

/* A well-formed inflight answer whose buffer is not sealed: arg 0 a memfd that allows sealing,
 * arg 1 one that does not (as DPDK creates it). */
static void r_inflight_unsealed(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	struct vh_inflight inf = req->payload.inflight;
	int fd = memfd_create("unsealed-inflight", MFD_CLOEXEC | (f->arg ? 0 : MFD_ALLOW_SEALING));

	(void)fds, (void)nfds;
	if (fd < 0 || ftruncate(fd, page))
		T_FAIL("memfd");
	inf.mmap_offset = 0;
	inf.mmap_size = (uint64_t)page;
	fsend(f, req->hdr.request, RF, &inf, 24, &fd, 1);
	close(fd);
}

/* Sealable: sealed by the front-end, so the back-end can no longer shrink it. */
static void f_inflight_sealed_by_us(struct ctx *c, int arg)
{
	struct vh_inflight out;
	int fd = -1;

	badly(c, VH_USER_GET_INFLIGHT_FD, r_inflight_unsealed, arg);
	CHECK_EQ(vh_frontend_get_inflight_fd(c->fe, 1, 64, &out, &fd), 0);
	CHECK(fd >= 0);
	if (fd >= 0) {
		int seals = fcntl(fd, F_GET_SEALS);

		if (arg == 0) {
			CHECK(seals >= 0 && (seals & F_SEAL_SHRINK));
			CHECK(ftruncate(fd, 0) < 0 && errno == EPERM);
		}
		close(fd);
	}
	expect_usable(c);
}

/* VH_FRONTEND_F_REQUIRE_SEALED_INFLIGHT: a buffer that cannot be sealed is refused. */
static void f_inflight_unsealable_strict(struct ctx *c, int arg)
{
	struct vh_inflight out;
	int fd = 77;

	ctx_close(c);
	case_fe_flags = VH_FRONTEND_F_REQUIRE_SEALED_INFLIGHT;
	ctx_open(c);
	case_fe_flags = 0;
	badly(c, VH_USER_GET_INFLIGHT_FD, r_inflight_unsealed, arg);
	CHECK_EQ(vh_frontend_get_inflight_fd(c->fe, 1, 64, &out, &fd), -EPROTO);
	CHECK_EQ(fd, -1);
	expect_sticky(c, -EPROTO);
}

static void r_shmem_config(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	static struct vh_shmem_config cfg;

	(void)fds, (void)nfds;
	memset(&cfg, 0, sizeof(cfg));
	cfg.nregions = f->arg ? UINT32_MAX : 257;
	fsend(f, req->hdr.request, RF, &cfg, sizeof(cfg), NULL, 0);
}

static void f_shmem_config(struct ctx *c, int arg)
{
	struct vh_shmem_config out;

	badly(c, VH_USER_GET_SHMEM_CONFIG, r_shmem_config, arg);
	CHECK_EQ(vh_frontend_get_shmem_config(c->fe, &out), -EPROTO);
	expect_sticky(c, -EPROTO);
}

static void r_fd_reply(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	int fd = t_memfd("reply-fd", 0), two[2] = { fd, fd };
	uint64_t v;

	(void)fds, (void)nfds;
	switch (f->arg) {
	case 0: /* POSTCOPY_ADVISE without its fd */
		fsend(f, req->hdr.request, RF, NULL, 0, NULL, 0);
		break;
	case 1: /* POSTCOPY_ADVISE with two */
		fsend(f, req->hdr.request, RF, NULL, 0, two, 2);
		break;
	case 2: /* SET_DEVICE_STATE_FD: "fd follows" without one */
		v = 0;
		fsend(f, req->hdr.request, RF, &v, 8, NULL, 0);
		break;
	case 3: /* SET_DEVICE_STATE_FD: NOFD and an fd */
		v = VH_USER_VRING_NOFD_MASK;
		fsend(f, req->hdr.request, RF, &v, 8, &fd, 1);
		break;
	case 4: /* GET_SHARED_OBJECT: success without the dma-buf */
		v = 0;
		fsend(f, req->hdr.request, RF, &v, 8, NULL, 0);
		break;
	case 5: /* GET_STATUS: more than a byte */
		reply_u64(f, req->hdr.request, 0x100);
		break;
	case 6: /* SET_LOG_BASE: neither a u64 nor the 16-byte echo */
		fsend(f, req->hdr.request, RF, &req->payload, 12, NULL, 0);
		break;
	case 7: /* CREATE_CRYPTO_SESSION: another size than asked */
		fsend(f, req->hdr.request, RF, &req->payload, req->hdr.size - 8, NULL, 0);
		break;
	}
	close(fd);
}

static void f_request_replies(struct ctx *c, int arg)
{
	static const uint8_t uuid[16] = { 1 };
	int fd = 77, state = t_memfd("state", 0), log = t_memfd("log", 8192);
	uint8_t desc[64] = { 0 }, out[64];
	uint8_t status;
	int r = 0;

	switch (arg) {
	case 0:
	case 1:
		CHECK_EQ(vh_frontend_assume_negotiated(c->fe, OFFERED,
						       (PROTO & ~PF(CONFIGURE_MEM_SLOTS)) |
						       PF(PAGEFAULT)), 0);
		badly(c, VH_USER_POSTCOPY_ADVISE, r_fd_reply, arg);
		r = vh_frontend_postcopy_advise(c->fe, &fd);
		break;
	case 2:
	case 3:
		badly(c, VH_USER_SET_DEVICE_STATE_FD, r_fd_reply, arg);
		r = vh_frontend_set_device_state_fd(c->fe, 0, 0, state, &fd);
		break;
	case 4:
		badly(c, VH_USER_GET_SHARED_OBJECT, r_fd_reply, arg);
		r = vh_frontend_get_shared_object(c->fe, uuid, &fd);
		break;
	case 5:
		badly(c, VH_USER_GET_STATUS, r_fd_reply, arg);
		r = vh_frontend_get_status(c->fe, &status);
		fd = -1;
		break;
	case 6:
		badly(c, VH_USER_SET_LOG_BASE, r_fd_reply, arg);
		r = vh_frontend_set_log_base(c->fe, 4096, 0, log);
		fd = -1;
		break;
	case 7:
		badly(c, VH_USER_CREATE_CRYPTO_SESSION, r_fd_reply, arg);
		r = vh_frontend_create_crypto_session(c->fe, desc, sizeof(desc), out);
		fd = -1;
		break;
	}
	if (arg == 0) {
		/* A back-end that could not open a userfaultfd answers without one (ours does):
		 * the request fails, the connection stays usable, as with QEMU. */
		CHECK_EQ(r, -EIO);
		CHECK_EQ(fd, -1);
		close(state);
		close(log);
		expect_usable(c);
		return;
	}
	CHECK_EQ(r, -EPROTO);
	CHECK_EQ(fd, -1);
	close(state);
	close(log);
	expect_sticky(c, -EPROTO);
}

/* E4: the 16-byte SET_LOG_BASE echo some back-ends send is consumed and accepted. */
static void r_log_echo(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	(void)fds, (void)nfds;
	fsend(f, req->hdr.request, RF, &req->payload, 16, NULL, 0);
}

static void f_log_echo(struct ctx *c)
{
	int log = t_memfd("log", 8192);

	badly(c, VH_USER_SET_LOG_BASE, r_log_echo, 0);
	CHECK_EQ(vh_frontend_set_log_base(c->fe, 4096, 0, log), 0);
	close(log);
	expect_usable(c);
}

/* ==== The back-end channel ============================================================================ */

static struct fe_rec chan_rec; /* the channel callbacks' record (opaque of the ops) */

/* Sets up the channel (the fake keeps its end) and returns it. */
static int chan_open(struct ctx *c)
{
	CHECK_EQ(vh_frontend_set_backend_req_fd(c->fe, &test_fe_ops, &chan_rec), 0);
	if (c->f.chan < 0)
		T_FAIL("the fake got no channel");
	return c->f.chan;
}


static void chan_send(int chan, uint32_t id, uint32_t flags, const void *p, uint32_t size,
		      const int *fds, unsigned nfds)
{
	struct fake tmp = { 0 };

	tmp.ep.fd = chan;
	fsend(&tmp, id, flags, p, size, fds, nfds);
}

/* Lets the front-end serve one channel request; returns its result. */
static int chan_serve(struct ctx *c)
{
	struct pollfd p = { .fd = vh_frontend_backend_channel_fd(c->fe), .events = POLLIN };

	if (p.fd < 0 || poll(&p, 1, 1000) != 1)
		return -ETIME;
	return vh_frontend_backend_channel_dispatch(c->fe);
}

/* Reads the front-end's u64 answer on the channel. */
static uint64_t chan_reply(int chan, uint32_t id, int *fd_out)
{
	struct vh_endpoint ep;
	static struct vh_msg m;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 0;
	int r;

	vh_endpoint_init(&ep, dup(chan), "chan-reader");
	ep.timeout_ms = 1000;
	r = vh_endpoint_recv(&ep, &m, fds, &nfds, 1000);
	vh_endpoint_close(&ep);
	if (fd_out)
		*fd_out = -1;
	if (r) {
		T_FAIL("no channel reply to %u: %d", id, r);
		return 0;
	}
	if (m.hdr.request != id || m.hdr.flags != RF || m.hdr.size != 8)
		T_FAIL("channel reply id %u flags 0x%x size %u", m.hdr.request, m.hdr.flags,
		       m.hdr.size);
	if (fd_out && nfds) {
		*fd_out = fds[0];
		fds[0] = -1;
	}
	vh_close_fds(fds, nfds);
	return m.payload.u64;
}

/* A well-formed request the front-end must refuse: NAK, no callback, fds closed. */
static void chan_expect_nak(struct ctx *c, int chan, uint32_t id, const void *p, uint32_t size,
			    const int *fds, unsigned nfds, const char *what)
{
	int fds0 = t_count_fds();
	unsigned calls = 0;

	for (int i = 0; i < FE_OP_COUNT; i++)
		calls += chan_rec.calls[i];
	chan_send(chan, id, V1 | VH_USER_FLAG_NEED_REPLY, p, size, fds, nfds);
	CHECK_EQ_M(chan_serve(c), 1, "%s: served", what);
	if (!chan_reply(chan, id, NULL))
		T_FAIL("%s: acked", what);
	{
		unsigned after = 0;

		for (int i = 0; i < FE_OP_COUNT; i++)
			after += chan_rec.calls[i];
		if (after != calls)
			T_FAIL("%s: a callback ran", what);
	}
	CHECK_EQ_M(t_count_fds(), fds0, "%s: fds closed", what);
	CHECK(vh_frontend_backend_channel_fd(c->fe) >= 0);
}

static void f_host_notifier(struct ctx *c)
{
	int chan = chan_open(c);
	int fd = t_memfd("notify", 4 * (size_t)page);
	struct vh_vring_area bad[6];
	unsigned k = 0;

	bad[k++] = (struct vh_vring_area){ NQ, (uint64_t)page, 0 };          /* queue >= nvq */
	bad[k++] = (struct vh_vring_area){ 255, (uint64_t)page, 0 };
	bad[k++] = (struct vh_vring_area){ 0, (uint64_t)page * 2, 0 };       /* size != page */
	bad[k++] = (struct vh_vring_area){ 0, 4096 / 2, 0 };
	bad[k++] = (struct vh_vring_area){ 0, (uint64_t)page, 100 };         /* misaligned */
	bad[k++] = (struct vh_vring_area){ 0, (uint64_t)page, ~0ull - (uint64_t)page + 1 }; /* wraps */
	for (unsigned i = 0; i < k; i++) {
		char what[64];

		snprintf(what, sizeof(what), "host notifier #%u", i);
		chan_expect_nak(c, chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, &bad[i],
				sizeof(bad[i]), &fd, 1, what);
	}
	/* a good one reaches the callback */
	{
		struct vh_vring_area ok = { 1, (uint64_t)page, (uint64_t)page };

		chan_send(chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG,
			  V1 | VH_USER_FLAG_NEED_REPLY, &ok, sizeof(ok), &fd, 1);
		CHECK_EQ(chan_serve(c), 1);
		CHECK_EQ(chan_reply(chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, NULL), 0);
		CHECK_EQ(chan_rec.last, FE_HOST_NOTIFIER);
		CHECK(fid_is(chan_rec.fid, fd));
	}
	close(fd);
	expect_usable(c);
}

static void f_host_notifier_malformed(struct ctx *c, int arg)
{
	int chan = chan_open(c);
	int fd = t_memfd("notify", (size_t)page), fds0;
	struct vh_vring_area a = { 0 | VH_USER_VRING_NOFD_MASK, (uint64_t)page, 0 };

	fds0 = t_count_fds();
	if (arg == 0) /* NOFD with an fd */
		chan_send(chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, V1, &a, sizeof(a), &fd, 1);
	else if (arg == 1) /* reserved bits */
		a.u64 = 1ull << 40,
		chan_send(chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, V1, &a, sizeof(a), &fd, 1);
	else /* short */
		chan_send(chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, V1, &a, 16, &fd, 1);
	close(fd);
	CHECK_EQ(chan_serve(c), -EPROTO);
	/* the channel is gone (our fd and the front-end's end), the main connection is not */
	CHECK_EQ(vh_frontend_backend_channel_fd(c->fe), -1);
	CHECK_EQ(t_count_fds(), fds0 - 2);
	expect_usable(c);
}

static void f_shmem(struct ctx *c)
{
	int chan = chan_open(c);
	int fd = t_memfd("shm", 64 * (size_t)page);
	uint64_t P = (uint64_t)page;
	struct vh_shmem_mmap ok = { 0, { 0 }, 0, 4 * P, 2 * P, VH_SHMEM_MAP_F_WRITABLE };
	struct vh_shmem_mmap bad[10];
	struct vh_shmem_config cfg;
	unsigned k = 0;

	/* before GET_SHMEM_CONFIG nothing is mappable */
	chan_expect_nak(c, chan, VH_USER_BACKEND_SHMEM_MAP, &ok, sizeof(ok), &fd, 1, "no config");
	CHECK_EQ(vh_frontend_get_shmem_config(c->fe, &cfg), 0);
	CHECK_EQ(cfg.nregions, 2);
	bad[k] = ok, bad[k++].shmid = 2;                                  /* shmid >= nregions */
	bad[k] = ok, bad[k++].shmid = 255;
	bad[k] = ok, bad[k++].shm_offset = 15 * P;                        /* beyond the region */
	bad[k] = ok, bad[k].shm_offset = ~0ull - P + 1, k++;              /* wraps */
	bad[k] = ok, bad[k].fd_offset = ~0ull - P + 1, k++;               /* fd offset wraps */
	bad[k] = ok, bad[k++].len = 0;                                    /* empty */
	bad[k] = ok, bad[k++].len = P + 1;                                /* misaligned */
	bad[k] = ok, bad[k++].shm_offset = 100;
	bad[k] = ok, bad[k++].flags = 0x2;                                /* unknown flag */
	for (unsigned i = 0; i < k; i++) {
		char what[64];

		snprintf(what, sizeof(what), "SHMEM_MAP #%u", i);
		chan_expect_nak(c, chan, VH_USER_BACKEND_SHMEM_MAP, &bad[i], sizeof(bad[i]), &fd, 1,
				what);
	}
	/* map, then overlap it, then unmap something else */
	chan_send(chan, VH_USER_BACKEND_SHMEM_MAP, V1 | VH_USER_FLAG_NEED_REPLY, &ok, sizeof(ok),
		  &fd, 1);
	CHECK_EQ(chan_serve(c), 1);
	CHECK_EQ(chan_reply(chan, VH_USER_BACKEND_SHMEM_MAP, NULL), 0);
	{
		struct vh_shmem_mmap over = ok, other = ok;

		over.shm_offset = 5 * P;
		chan_expect_nak(c, chan, VH_USER_BACKEND_SHMEM_MAP, &over, sizeof(over), &fd, 1,
				"overlapping map");
		other.len = P; /* part of the mapping only */
		chan_expect_nak(c, chan, VH_USER_BACKEND_SHMEM_UNMAP, &other, sizeof(other), NULL, 0,
				"partial unmap");
		other = ok;
		other.shmid = 1;
		chan_expect_nak(c, chan, VH_USER_BACKEND_SHMEM_UNMAP, &other, sizeof(other), NULL, 0,
				"unmap in another region");
	}
	close(fd);
	expect_usable(c);
}

/*
 * Class 10 on the front-end's side: the callbacks mmap the fd a back-end passes with a host
 * notifier or SHMEM_MAP. A file shorter than offset + size maps fine and then raises SIGBUS in
 * the front-end at the first guest access (a doorbell write); a pipe or a socket cannot back
 * memory at all. Such fds are refused before a callback sees them; a file long enough (also a
 * character device, e.g. a BAR) still reaches the callback.
 */
static void f_channel_short_file(struct ctx *c)
{
	int chan = chan_open(c);
	uint64_t P = (uint64_t)page;
	int empty = t_memfd("notify-empty", 0);
	int shortf = t_memfd("notify-short", (size_t)P); /* one page: offset P lies past it */
	int pipefd[2];
	struct vh_vring_area at0 = { 0, P, 0 }, at1 = { 1, P, P };
	struct vh_shmem_mmap map = { 0, { 0 }, 0, 4 * P, 2 * P, VH_SHMEM_MAP_F_WRITABLE };
	struct vh_shmem_mmap map_far = map;
	struct vh_shmem_config cfg;

	CHECK_EQ(pipe2(pipefd, O_CLOEXEC), 0);
	chan_expect_nak(c, chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, &at0, sizeof(at0), &empty,
			1, "host notifier on an empty file");
	chan_expect_nak(c, chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, &at1, sizeof(at1),
			&shortf, 1, "host notifier past the end of the file");
	chan_expect_nak(c, chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, &at0, sizeof(at0),
			&pipefd[0], 1, "host notifier on a pipe");
	CHECK_EQ(vh_frontend_get_shmem_config(c->fe, &cfg), 0);
	chan_expect_nak(c, chan, VH_USER_BACKEND_SHMEM_MAP, &map, sizeof(map), &shortf, 1,
			"SHMEM_MAP longer than the file");
	map_far.fd_offset = P; /* one page file: [P, 3P) lies past its end */
	map_far.len = P;
	chan_expect_nak(c, chan, VH_USER_BACKEND_SHMEM_MAP, &map_far, sizeof(map_far), &shortf, 1,
			"SHMEM_MAP past the end of the file");
	chan_expect_nak(c, chan, VH_USER_BACKEND_SHMEM_MAP, &map, sizeof(map), &pipefd[1], 1,
			"SHMEM_MAP of a pipe");
	/* what fits reaches the callbacks, with the very fd */
	chan_send(chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, V1 | VH_USER_FLAG_NEED_REPLY, &at0,
		  sizeof(at0), &shortf, 1);
	CHECK_EQ(chan_serve(c), 1);
	CHECK_EQ(chan_reply(chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, NULL), 0);
	CHECK_EQ(chan_rec.last, FE_HOST_NOTIFIER);
	CHECK(fid_is(chan_rec.fid, shortf));
	map.len = P;
	chan_send(chan, VH_USER_BACKEND_SHMEM_MAP, V1 | VH_USER_FLAG_NEED_REPLY, &map, sizeof(map),
		  &shortf, 1);
	CHECK_EQ(chan_serve(c), 1);
	CHECK_EQ(chan_reply(chan, VH_USER_BACKEND_SHMEM_MAP, NULL), 0);
	CHECK_EQ(chan_rec.last, FE_SHMEM_MAP);
	CHECK(fid_is(chan_rec.fid, shortf));
	{
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		chan_send(chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG,
			  V1 | VH_USER_FLAG_NEED_REPLY, &at1, sizeof(at1), &null, 1);
		CHECK_EQ(chan_serve(c), 1);
		CHECK_EQ(chan_reply(chan, VH_USER_BACKEND_VRING_HOST_NOTIFIER_MSG, NULL), 0);
		CHECK(fid_is(chan_rec.fid, null));
		close(null);
	}
	close(empty);
	close(shortf);
	close(pipefd[0]);
	close(pipefd[1]);
	expect_usable(c);
}

static void f_channel_misc(struct ctx *c)
{
	int chan = chan_open(c);
	struct vh_vring_state st = { NQ, 0 };
	struct vh_iotlb_msg io = { 0x1000, 0x1000, 0, VH_ACCESS_RW, VH_IOTLB_UPDATE, { 0 } };
	static const uint8_t uuid[16] = { 9 };
	int fd = -1;

	chan_expect_nak(c, chan, VH_USER_BACKEND_VRING_CALL, &st, 8, NULL, 0, "VRING_CALL q >= nvq");
	chan_expect_nak(c, chan, VH_USER_BACKEND_VRING_ERR, &st, 8, NULL, 0, "VRING_ERR q >= nvq");
	chan_expect_nak(c, chan, VH_USER_BACKEND_IOTLB_MSG, &io, 32, NULL, 0, "IOTLB UPDATE");
	io.type = VH_IOTLB_MISS;
	io.perm = 0;
	chan_expect_nak(c, chan, VH_USER_BACKEND_IOTLB_MSG, &io, 32, NULL, 0, "IOTLB perm 0");
	chan_expect_nak(c, chan, 11, NULL, 0, NULL, 0, "unknown id 11");
	chan_expect_nak(c, chan, 0, NULL, 0, NULL, 0, "id 0");
	/* a shared-object lookup the front-end refuses: non-zero u64 and no fd */
	chan_rec.fail = -ENOENT;
	chan_send(chan, VH_USER_BACKEND_SHARED_OBJECT_LOOKUP, V1, uuid, 16, NULL, 0);
	CHECK_EQ(chan_serve(c), 1);
	if (!chan_reply(chan, VH_USER_BACKEND_SHARED_OBJECT_LOOKUP, &fd))
		T_FAIL("refused lookup answered 0");
	CHECK_EQ(fd, -1);
	/* a removal the front-end's policy refuses (not the exporter) is NAKed */
	chan_send(chan, VH_USER_BACKEND_SHARED_OBJECT_REMOVE, V1 | VH_USER_FLAG_NEED_REPLY, uuid, 16,
		  NULL, 0);
	CHECK_EQ(chan_serve(c), 1);
	if (!chan_reply(chan, VH_USER_BACKEND_SHARED_OBJECT_REMOVE, NULL))
		T_FAIL("refused removal acked");
	chan_rec.fail = 0;
	/* without NEED_REPLY an ack-type request gets no answer */
	chan_send(chan, VH_USER_BACKEND_CONFIG_CHANGE_MSG, V1, NULL, 0, NULL, 0);
	CHECK_EQ(chan_serve(c), 1);
	{
		struct pollfd p = { chan, POLLIN, 0 };

		CHECK_EQ(poll(&p, 1, 50), 0);
	}
	/* a gate the front-end did not negotiate */
	CHECK_EQ(vh_frontend_set_protocol_features(c->fe, PROTO & ~PF(INBAND_NOTIFICATIONS)), 0);
	st.index = 0;
	chan_expect_nak(c, chan, VH_USER_BACKEND_VRING_CALL, &st, 8, NULL, 0, "VRING_CALL ungated");
	expect_usable(c);
}

/* Framing errors on the channel close it and only it. */
static void f_channel_framing(struct ctx *c, int arg)
{
	int chan = chan_open(c);
	int fds[10], fds0;
	uint64_t v = 0, uuid[2] = { 0, 0 };

	for (unsigned i = 0; i < 10; i++)
		fds[i] = t_memfd("chan-fd", 0);
	fds0 = t_count_fds() - 10;
	switch (arg) {
	case 0: /* a reply where a request belongs */
		chan_send(chan, VH_USER_BACKEND_CONFIG_CHANGE_MSG, RF, &v, 8, fds, 1);
		break;
	case 1: /* version 2 */
		chan_send(chan, VH_USER_BACKEND_CONFIG_CHANGE_MSG, 0x2, NULL, 0, fds, 1);
		break;
	case 2: /* wrong size */
		chan_send(chan, VH_USER_BACKEND_CONFIG_CHANGE_MSG, V1, &v, 8, fds, 1);
		break;
	case 3: /* more than 8 fds */
		chan_send(chan, VH_USER_BACKEND_CONFIG_CHANGE_MSG, V1, NULL, 0, fds, 10);
		break;
	case 4: /* oversize */
		chan_send(chan, VH_USER_BACKEND_SHMEM_MAP, V1, NULL, VH_USER_MAX_PAYLOAD + 1, fds, 2);
		break;
	case 5: /* an fd on an fd-less request */
		chan_send(chan, VH_USER_BACKEND_SHARED_OBJECT_ADD, V1, uuid, 16, fds, 1);
		break;
	}
	vh_close_fds(fds, 10);
	{
		int r = chan_serve(c);

		if (r >= 0)
			T_FAIL("channel framing case %d served (%d)", arg, r);
	}
	CHECK_EQ(vh_frontend_backend_channel_fd(c->fe), -1);
	CHECK_EQ(t_count_fds(), fds0 - 1); /* and our end of the channel is gone */
	expect_usable(c);
}

/* A back-end that sends channel requests before answering: served while waiting. */
static void r_chan_flood(struct fake *f, const struct vh_msg *req, int *fds, unsigned nfds)
{
	struct vh_vring_state st = { 1, 0 };

	(void)fds, (void)nfds;
	for (int i = 0; i < 50; i++)
		chan_send(f->chan, VH_USER_BACKEND_VRING_CALL, V1, &st, 8, NULL, 0);
	reply_u64(f, req->hdr.request, OFFERED);
}

static void f_channel_while_waiting(struct ctx *c)
{
	uint64_t v = 0;

	chan_open(c);
	chan_rec.calls[FE_VRING_CALL] = 0;
	badly(c, VH_USER_GET_FEATURES, r_chan_flood, 0);
	CHECK_EQ(vh_frontend_get_features(c->fe, &v), 0);
	CHECK_EQ(v, OFFERED);
	/* some may still wait; serve the rest */
	while (chan_rec.calls[FE_VRING_CALL] < 50 && chan_serve(c) == 1)
		;
	CHECK_EQ(chan_rec.calls[FE_VRING_CALL], 50);
	expect_usable(c);
}

/* The socket-free entry point owns the fds it is given, whatever happens. */
static void f_request_handle_fds(struct ctx *c)
{
	static struct vh_msg m, rep;
	int fds[VH_USER_MAX_FDS + 3], rfd = -5, fds0 = t_count_fds();
	int r, n;

	for (unsigned i = 0; i < VH_USER_MAX_FDS + 3; i++)
		fds[i] = t_memfd("handle", 0);
	m.hdr = (struct vh_msg_hdr){ VH_USER_BACKEND_CONFIG_CHANGE_MSG, V1, 0 };
	r = vh_frontend_backend_request_handle(c->fe, &m, fds, 2, &rep, &rfd);
	CHECK_EQ(r, -EPROTO); /* fds on an fd-less request */
	CHECK_EQ(rfd, -1);
	n = t_count_fds();
	if (n != fds0 + (int)VH_USER_MAX_FDS + 1)
		T_FAIL("request_handle with 2 fds left %d open", n - fds0 - (int)VH_USER_MAX_FDS - 1);
	/* more fds than a message can carry: the header says they are still taken over */
	r = vh_frontend_backend_request_handle(c->fe, &m, fds + 2, VH_USER_MAX_FDS + 1, &rep, &rfd);
	CHECK(r < 0);
	n = t_count_fds();
	if (n != fds0) {
		T_FAIL("request_handle with %u fds left %d of them open", VH_USER_MAX_FDS + 1,
		       n - fds0);
		for (unsigned i = 2; i < VH_USER_MAX_FDS + 3; i++)
			if (fcntl(fds[i], F_GETFD) >= 0)
				close(fds[i]);
	}
	expect_usable(c);
}

/* ---- Runner -------------------------------------------------------------------------------------- */

struct fcase {
	const char *name;
	void (*fn)(struct ctx *c, int arg);
	int arg;
};

#define W(fn) static void fn##_a(struct ctx *c, int arg) { (void)arg; fn(c); }
W(f_wrong_id) W(f_hangup) W(f_nak) W(f_unsolicited) W(f_unsolicited_idle) W(f_vring_base)
W(f_log_echo) W(f_host_notifier) W(f_shmem) W(f_channel_misc) W(f_channel_while_waiting)
W(f_request_handle_fds) W(f_channel_short_file)

static const struct fcase cases[] = {
	{ "c30-reply-wrong-id", f_wrong_id_a, 0 },
	{ "c30-reply-flags-0x1", f_flags, 0 },
	{ "c30-reply-flags-0x4", f_flags, 1 },
	{ "c30-reply-flags-0x6", f_flags, 2 },
	{ "c30-reply-flags-0x7", f_flags, 3 },
	{ "c30-reply-flags-need-reply", f_flags, 4 },
	{ "c30-reply-flags-0xd", f_flags, 5 },
	{ "c30-reply-flags-0x15", f_flags, 6 },
	{ "c30-reply-flags-bit31", f_flags, 7 },
	{ "c30-reply-size-0", f_size, 0 },
	{ "c30-reply-size-4", f_size, 1 },
	{ "c30-reply-size-7", f_size, 2 },
	{ "c30-reply-size-9", f_size, 3 },
	{ "c30-reply-size-16", f_size, 4 },
	{ "c30-reply-size-4096", f_size, 5 },
	{ "c30-reply-size-4097", f_oversize, 0 },
	{ "c30-reply-size-huge", f_oversize, 1000000 },
	{ "c30-never-replies", f_timeout, 0 },
	{ "c30-reply-stalls-half-way", f_timeout, 1 },
	{ "c30-hangs-up", f_hangup_a, 0 },
	{ "c30-reply-with-fd", f_reply_fds, 1 },
	{ "c30-reply-with-8-fds", f_reply_fds, 8 },
	{ "c30-reply-with-12-fds", f_reply_fds, 12 },
	{ "c30-nak", f_nak_a, 0 },
	{ "c30-ack-size-0", f_ack_size, 0 },
	{ "c30-ack-size-16", f_ack_size, 4 },
	{ "c30-vring-base-other-queue", f_vring_base_a, 0 },
	{ "c30-vring-base-split-above-16-bits", f_vring_base_value, 0 },
	{ "c30-vring-base-packed-wrap-bits", f_vring_base_value, 1 },
	{ "c30-config-other-offset", f_config, 0 },
	{ "c30-config-other-size", f_config, 1 },
	{ "c30-config-short", f_config, 2 },
	{ "c30-config-long", f_config, 3 },
	{ "c30-config-no-header", f_config, 4 },
	{ "c30-inflight-huge", f_inflight, 0 },
	{ "c30-inflight-too-large", f_inflight, 1 },
	{ "c30-inflight-no-fd", f_inflight, 2 },
	{ "c30-inflight-wraps", f_inflight, 3 },
	{ "c30-inflight-misaligned", f_inflight, 4 },
	{ "c30-inflight-past-eof", f_inflight, 5 },
	{ "c30-inflight-two-fds", f_inflight, 6 },
	{ "c30-inflight-unsealed-gets-sealed", f_inflight_sealed_by_us, 0 },
	{ "c30-inflight-unsealable-accepted", f_inflight_sealed_by_us, 1 },
	{ "c30-inflight-unsealable-strict", f_inflight_unsealable_strict, 1 },
	{ "c30-shmem-config-257", f_shmem_config, 0 },
	{ "c30-shmem-config-max", f_shmem_config, 1 },
	{ "c30-postcopy-no-fd", f_request_replies, 0 },
	{ "c30-postcopy-two-fds", f_request_replies, 1 },
	{ "c30-device-state-missing-fd", f_request_replies, 2 },
	{ "c30-device-state-nofd-with-fd", f_request_replies, 3 },
	{ "c30-shared-object-no-fd", f_request_replies, 4 },
	{ "c30-status-above-byte", f_request_replies, 5 },
	{ "c30-log-base-12-bytes", f_request_replies, 6 },
	{ "c30-crypto-other-size", f_request_replies, 7 },
	{ "c30-log-base-echo-accepted", f_log_echo_a, 0 },
	{ "c30-host-notifier", f_host_notifier_a, 0 },
	{ "c30-host-notifier-nofd-with-fd", f_host_notifier_malformed, 0 },
	{ "c30-host-notifier-reserved-bits", f_host_notifier_malformed, 1 },
	{ "c30-host-notifier-short", f_host_notifier_malformed, 2 },
	{ "c30-shmem-map", f_shmem_a, 0 },
	{ "c10-channel-fd-too-short", f_channel_short_file_a, 0 },
	{ "c30-channel-misc", f_channel_misc_a, 0 },
	{ "c30-channel-while-waiting", f_channel_while_waiting_a, 0 },
	{ "c30-request-handle-fds", f_request_handle_fds_a, 0 },
	{ "c24-unsolicited-second-reply", f_unsolicited_a, 0 },
	{ "c24-unsolicited-while-idle", f_unsolicited_idle_a, 0 },
	{ "c24-channel-reply-as-request", f_channel_framing, 0 },
	{ "c24-channel-version-2", f_channel_framing, 1 },
	{ "c24-channel-wrong-size", f_channel_framing, 2 },
	{ "c24-channel-9-fds", f_channel_framing, 3 },
	{ "c24-channel-oversize", f_channel_framing, 4 },
	{ "c24-channel-fd-on-fdless", f_channel_framing, 5 },
};

/* A normal session with a well-behaved back-end (ours) after each case. */
static void normal_session(void)
{
	struct harness h;
	struct vh_frontend_config cfg = { .timeout_ms = 2000 };
	uint64_t f = 0, q = 0;

	if (h_init(&h, NULL))
		return;
	CHECK_EQ(h_connect(&h, TOPO_SOCKETPAIR, &cfg), 0);
	if (h.fe) {
		CHECK_EQ(vh_frontend_negotiate(h.fe, VH_FRONTEND_PROTOCOL_FEATURES, &f, NULL), 0);
		CHECK_EQ(f, OFFERED);
		CHECK_EQ(vh_frontend_get_queue_num(h.fe, &q), 0);
		CHECK_EQ(q, H_NQ);
	}
	h_fini(&h);
}

static const char *filter;

static void test_cases(void)
{
	for (size_t i = 0; i < NELEM(cases); i++) {
		int before = t_failures;
		struct t_baseline base;
		struct ctx c;

		if (filter && !strstr(cases[i].name, filter))
			continue;
		t_current = cases[i].name;
		base = t_baseline();
		memset(&chan_rec, 0, sizeof(chan_rec));
		chan_rec.lookup_fd = -1;
		ctx_open(&c);
		cases[i].fn(&c, cases[i].arg);
		ctx_close(&c);
		CHECK_BASELINE(base);
		normal_session();
		CHECK_BASELINE(base);
		printf("# %s %s\n", t_failures == before ? "pass" : "FAIL", cases[i].name);
	}
	t_current = "test_cases";
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_cases),
	};

	signal(SIGPIPE, SIG_IGN);
	page = sysconf(_SC_PAGESIZE);
	if (argc > 1 && argv[1][0] == 'c') {
		filter = argv[1];
		argc = 1;
	}
	normal_session(); /* warm-up: thread stacks, allocator */
	{
		struct ctx c;

		ctx_open(&c);
		ctx_close(&c);
	}
	return t_run(tests, NELEM(tests), argc, argv);
}
