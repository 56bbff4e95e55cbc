/* SPDX-License-Identifier: MIT */
/*
 * Hostile front-end input to the libvhost back-end: the protocol-level classes 1-24 of
 * bad-inputs.md, sent raw (hand-built headers, payloads and fds) to a listening back-end served
 * by a dispatch thread. Each case is named after its class and asserts the specific outcome
 * (NAK, the request's own error reply, silence, or the connection closed), that rejected fds are
 * closed at once, that the old state survives a rejected change, and afterwards that the fd and
 * mapping counts are back to the baseline and the next connection is served normally.
 */
#include <signal.h>
#include <sys/uio.h>

#include "harness.h"

#define PF(b) VH_BIT(VH_USER_PROTOCOL_F_##b)
#define NEED VH_USER_FLAG_NEED_REPLY
#define V1 VH_USER_VERSION
#define OFFERED (H_FEATURES | VH_BIT(VH_USER_F_PROTOCOL_FEATURES))
/* Default negotiation: everything but PAGEFAULT (not with CONFIGURE_MEM_SLOTS) and XEN_MMAP. */
#define PROTO_DEFAULT (H_PROTOCOL_ALL & ~PF(PAGEFAULT) & ~PF(XEN_MMAP))
#define BE_TIMEOUT_MS 300

static struct harness H; /* one listening back-end for the whole program */

struct rawc {
	struct vh_endpoint ep; /* our side; replies are read with the (separately tested) endpoint */
	int fds0;              /* process fd count once the connection is set up */
	unsigned errors0;
	int arg;
};

/* ---- Raw I/O --------------------------------------------------------------------------------- */

static int rsend_parts(struct rawc *c, const struct vh_msg_hdr *h, const void *p, size_t plen,
		       const int *fds, unsigned nfds)
{
	struct iovec iov[2] = { { (void *)h, sizeof(*h) }, { (void *)p, plen } };

	return t_sendmsg_fds(c->ep.fd, iov, plen ? 2 : 1, fds, nfds, 0) ==
	       (ssize_t)(sizeof(*h) + plen) ? 0 : -errno;
}

/* One message: header with `size` (which may lie), then plen payload bytes, fds on the first
 * byte. */
static void rsend(struct rawc *c, uint32_t id, uint32_t flags, uint32_t size, const void *p,
		  size_t plen, const int *fds, unsigned nfds)
{
	struct vh_msg_hdr h = { id, flags, size };

	if (rsend_parts(c, &h, p, plen, fds, nfds))
		T_FAIL("sending id %u: %s", id, strerror(errno));
}

/* Same, payload length = size. */
static void rmsg(struct rawc *c, uint32_t id, uint32_t flags, const void *p, uint32_t size,
		 const int *fds, unsigned nfds)
{
	rsend(c, id, flags, size, p, size, fds, nfds);
}

static int rrecv(struct rawc *c, struct vh_msg *m, int *fds, unsigned *nfds, int ms)
{
	return vh_endpoint_recv(&c->ep, m, fds, nfds, ms);
}

/* ---- Expectations ------------------------------------------------------------------------------ */

static uint64_t expect_u64(struct rawc *c, uint32_t id, const char *what)
{
	static struct vh_msg m;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 0;
	int r = rrecv(c, &m, fds, &nfds, 1000);

	if (r) {
		T_FAIL("%s: no reply to id %u: %d (%s)", what, id, r, t_errname(r));
		return 0;
	}
	if (m.hdr.request != id || m.hdr.flags != (V1 | VH_USER_FLAG_REPLY) || m.hdr.size != 8 || nfds)
		T_FAIL("%s: reply id %u flags 0x%x size %u fds %u, expected a u64 to %u", what,
		       m.hdr.request, m.hdr.flags, m.hdr.size, nfds, id);
	vh_close_fds(fds, nfds);
	return m.payload.u64;
}

#define EXPECT_NAK(c, id) do { if (!expect_u64((c), (id), "NAK")) T_FAIL("id %u: acked, expected a NAK", (unsigned)(id)); } while (0)
#define EXPECT_ACK(c, id) do { uint64_t v_ = expect_u64((c), (id), "ACK"); if (v_) T_FAIL("id %u: NAK %llu, expected an ack", (unsigned)(id), (unsigned long long)v_); } while (0)

/* The back-end must close the connection (EOF on our side) within a second. */
static void expect_close(struct rawc *c, const char *what)
{
	static struct vh_msg m;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 0;
	int r = rrecv(c, &m, fds, &nfds, 1000);

	vh_close_fds(fds, nfds);
	if (r != -ECONNRESET)
		T_FAIL("%s: expected the back-end to close the connection, got %d (%s) id %u", what, r,
		       t_errname(r), r ? 0 : m.hdr.request);
	/* ...and finish tearing it down before anyone counts fds */
	if (!h_wait_errors(&H, c->errors0 + 1, 2000))
		T_FAIL("%s: the back-end did not report the connection's end", what);
}

/* No reply at all. */
static void expect_silence(struct rawc *c, const char *what)
{
	static struct vh_msg m;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 0;
	int r = rrecv(c, &m, fds, &nfds, 150);

	vh_close_fds(fds, nfds);
	if (r != -EAGAIN)
		T_FAIL("%s: expected no reply, got %d (%s) id %u", what, r, t_errname(r),
		       r ? 0 : m.hdr.request);
}

/* The connection still works and is in step: GET_FEATURES answers with the offered set. */
static void expect_alive(struct rawc *c)
{
	rmsg(c, VH_USER_GET_FEATURES, V1, NULL, 0, NULL, 0);
	if (expect_u64(c, VH_USER_GET_FEATURES, "alive") != OFFERED)
		T_FAIL("GET_FEATURES after the bad input answered a different value");
}

/* Every fd of a rejected message is closed with the message, not at disconnect. The server
 * closes a message's fds right after its reply went out, so the count may lag the reply by a
 * moment: wait for it (bounded). */
static int fds_settle(int want)
{
	int64_t end = t_now_ms() + 1000;
	int n;

	while ((n = t_count_fds()) != want && t_now_ms() < end)
		t_sleep_ms(1);
	return n;
}

#define CHECK_FDS_NOW(c, extra)                                                        \
	do {                                                                           \
		int n_ = fds_settle((c)->fds0 + (extra));                              \
		if (n_ != (c)->fds0 + (extra))                                         \
			T_FAIL("fd count %d after the reply, expected %d", n_,         \
			       (c)->fds0 + (extra));                                   \
	} while (0)

/* ---- Connection set-up ----------------------------------------------------------------------- */

static void negotiate(struct rawc *c, uint64_t proto, uint64_t features)
{
	rmsg(c, VH_USER_SET_PROTOCOL_FEATURES, V1, &proto, 8, NULL, 0);
	rmsg(c, VH_USER_SET_FEATURES, V1 | NEED, &features, 8, NULL, 0);
	if (proto & PF(REPLY_ACK))
		EXPECT_ACK(c, VH_USER_SET_FEATURES);
	else
		expect_alive(c);
}

static void raw_open(struct rawc *c)
{
	int fd = vh_socket_connect(H.path, 10, 20);

	if (fd < 0)
		T_FAIL("connect: %d", fd);
	vh_endpoint_init(&c->ep, fd, "raw");
	c->ep.timeout_ms = 2000;
	negotiate(c, PROTO_DEFAULT, OFFERED);
	rmsg(c, VH_USER_SET_OWNER, V1 | NEED, NULL, 0, NULL, 0);
	EXPECT_ACK(c, VH_USER_SET_OWNER);
	c->fds0 = t_count_fds();
	c->errors0 = __atomic_load_n(&H.errors, __ATOMIC_ACQUIRE);
}

/* ---- Fixtures ---------------------------------------------------------------------------------- */

#define RAM_SIZE 0x100000u

static int ram_fd(void)
{
	return t_memfd("ram", RAM_SIZE);
}

static struct vh_mem_region region(unsigned i)
{
	struct vh_mem_region r = {
		.guest_phys_addr = 0x100000ull * (i + 1),
		.memory_size = 0x10000,
		.userspace_addr = 0x7f0000000000ull + 0x100000ull * i,
		.mmap_offset = 0x10000ull * i,
	};

	return r;
}

/* SET_MEM_TABLE of n regions all backed by fd (one fd per region on the wire). */
static void send_table(struct rawc *c, const struct vh_mem_region *r, unsigned n, int fd,
		       unsigned nfds, uint32_t nregions_field)
{
	static uint8_t buf[8 + 32 * 16];
	int fds[16];

	memset(buf, 0, sizeof(buf));
	memcpy(buf, &nregions_field, 4);
	memcpy(buf + 8, r, 32 * n);
	for (unsigned i = 0; i < nfds; i++)
		fds[i] = fd;
	rmsg(c, VH_USER_SET_MEM_TABLE, V1 | NEED, buf, 8 + 32 * n, fds, nfds);
}

/* A good one-region table; returns the backing fd's identity. */
static struct fid good_table(struct rawc *c)
{
	struct vh_mem_region r = region(0);
	int fd = ram_fd();
	struct fid f = fid_of(fd);

	send_table(c, &r, 1, fd, 1, 1);
	close(fd);
	EXPECT_ACK(c, VH_USER_SET_MEM_TABLE);
	/* The server closes its copy of the fd just after the reply: one more round trip, so
	 * a caller that counts fds next counts it gone. */
	expect_alive(c);
	return f;
}

static void check_table_is_good(const char *what)
{
	struct be_state s = h_state(&H);
	struct vh_mem_region r = region(0);

	if (s.nregions != 1 || memcmp(&s.regions[0].r, &r, sizeof(r)))
		T_FAIL("%s: the old memory table did not survive (%d regions)", what, s.nregions);
}

static void add_mem_reg(struct rawc *c, const struct vh_mem_region *r, const int *fds,
			unsigned nfds)
{
	struct vh_mem_single s = { 0, *r };

	rmsg(c, VH_USER_ADD_MEM_REG, V1 | NEED, &s, sizeof(s), fds, nfds);
}

static void vring_state(struct rawc *c, uint32_t id, uint32_t idx, uint32_t num)
{
	struct vh_vring_state st = { idx, num };

	rmsg(c, id, V1 | NEED, &st, sizeof(st), NULL, 0);
}

static void vring_file(struct rawc *c, uint32_t id, uint64_t v, const int *fds, unsigned nfds)
{
	rmsg(c, id, V1 | NEED, &v, 8, fds, nfds);
}

/* Starts ring idx (size 256, a kick fd). */
static void start_ring(struct rawc *c, unsigned idx)
{
	int kick = t_memfd("kick", 0);

	vring_state(c, VH_USER_SET_VRING_NUM, idx, 256);
	EXPECT_ACK(c, VH_USER_SET_VRING_NUM);
	vring_file(c, VH_USER_SET_VRING_KICK, idx, &kick, 1);
	EXPECT_ACK(c, VH_USER_SET_VRING_KICK);
	close(kick);
	c->fds0 = t_count_fds();
}

static int pipe_read_end(int *other)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return -1;
	*other = p[1];
	return p[0];
}

/* A read-only fd of a memfd of size bytes. */
static int readonly_fd(size_t size)
{
	char path[64];
	int fd = t_memfd("ro", size), ro;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	close(fd);
	return ro;
}

/* ==== The cases ==================================================================================
 * Each runs on a fresh, negotiated connection (REPLY_ACK on, so a rejection is a visible NAK). */

/* -- class 1: EOF or short read inside the header or payload; request id 0 ---------------------- */

static void c01_eof(struct rawc *c)
{
	static const unsigned bytes[] = { 0, 5, 12, 16 }; /* of a 12 + 40 byte SET_VRING_ADDR */
	uint8_t buf[12 + 40] = { 0 };
	struct vh_msg_hdr h = { VH_USER_SET_VRING_ADDR, V1, 40 };

	memcpy(buf, &h, sizeof(h));
	if (bytes[c->arg] && send(c->ep.fd, buf, bytes[c->arg], MSG_NOSIGNAL) < 0)
		T_FAIL("send");
	shutdown(c->ep.fd, SHUT_WR);
	expect_close(c, "EOF inside a message");
}

static void c01_eof_with_fd(struct rawc *c)
{
	struct vh_msg_hdr h = { VH_USER_SET_VRING_CALL, V1, 8 };
	uint32_t half = 1;
	int fd = t_memfd("eof-fd", 0);

	if (rsend_parts(c, &h, &half, 4, &fd, 1))
		T_FAIL("send");
	close(fd);
	shutdown(c->ep.fd, SHUT_WR);
	expect_close(c, "EOF inside the payload, fd attached");
	CHECK_FDS_NOW(c, -1); /* the back-end's end of the connection went too */
}

static void c01_stall(struct rawc *c)
{
	uint8_t buf[6] = { VH_USER_SET_VRING_NUM, 0, 0, 0, V1, 0 };
	int64_t t0 = t_now_ms();

	if (send(c->ep.fd, buf, sizeof(buf), MSG_NOSIGNAL) < 0)
		T_FAIL("send");
	expect_close(c, "header stalled half-way");
	if (t_now_ms() - t0 < BE_TIMEOUT_MS - 20)
		T_FAIL("closed after %lld ms, before the %d ms timeout", (long long)(t_now_ms() - t0),
		       BE_TIMEOUT_MS);
}

static void c01_request_zero(struct rawc *c)
{
	rmsg(c, VH_USER_NONE, V1 | NEED, NULL, 0, NULL, 0);
	EXPECT_NAK(c, VH_USER_NONE);
	rmsg(c, VH_USER_NONE, V1, NULL, 0, NULL, 0);
	expect_silence(c, "request 0 without NEED_REPLY");
	expect_alive(c);
}

/* -- class 2: size above the maximum payload ----------------------------------------------------- */

static void c02_oversize(struct rawc *c)
{
	static const uint32_t sizes[] = { VH_USER_MAX_PAYLOAD + 1, 0x100000, UINT32_MAX };
	int fds[2] = { t_memfd("big", 0), t_memfd("big", 0) };

	rsend(c, VH_USER_SET_CONFIG, V1 | NEED, sizes[c->arg], NULL, 0, fds, 2);
	vh_close_fds(fds, 2);
	expect_close(c, "oversize header");
	CHECK_FDS_NOW(c, -1);
}

/* -- class 3: payload size not the request's ----------------------------------------------------- */

static void c03_short_vring_addr(struct rawc *c)
{
	struct vh_vring_addr a = { 1, 0, 0x10000, 0x12000, 0x11000, 0 };
	struct be_state s;

	rmsg(c, VH_USER_SET_VRING_ADDR, V1 | NEED, &a, sizeof(a), NULL, 0);
	EXPECT_ACK(c, VH_USER_SET_VRING_ADDR);
	a.desc_user_addr = 0x20000;
	rmsg(c, VH_USER_SET_VRING_ADDR, V1 | NEED, &a, 4, NULL, 0); /* index only */
	EXPECT_NAK(c, VH_USER_SET_VRING_ADDR);
	rmsg(c, VH_USER_SET_VRING_ADDR, V1 | NEED, &a, 39, NULL, 0);
	EXPECT_NAK(c, VH_USER_SET_VRING_ADDR);
	s = h_state(&H);
	CHECK_EQ(s.vr[1].addr.desc_user_addr, 0x10000);
	expect_alive(c);
}

/* A short message must not be completed with the previous message's bytes. */
static void c03_no_stale_bytes(struct rawc *c)
{
	unsigned calls;

	vring_state(c, VH_USER_SET_VRING_NUM, 1, 256);
	EXPECT_ACK(c, VH_USER_SET_VRING_NUM);
	calls = h_rec(&H).calls[BE_SET_VRING_NUM];
	{
		uint32_t idx = 1;

		rmsg(c, VH_USER_SET_VRING_NUM, V1 | NEED, &idx, 4, NULL, 0);
	}
	EXPECT_NAK(c, VH_USER_SET_VRING_NUM);
	CHECK_EQ(h_rec(&H).calls[BE_SET_VRING_NUM], calls);
	CHECK_EQ(h_state(&H).vr[1].num, 256);
	expect_alive(c);
}

static void c03_sizes(struct rawc *c)
{
	static const struct { uint32_t id; uint32_t size; } cases[] = {
		{ VH_USER_SET_FEATURES, 0 }, { VH_USER_SET_FEATURES, 16 },
		{ VH_USER_SET_VRING_NUM, 16 }, { VH_USER_SET_VRING_CALL, 4 },
		{ VH_USER_SET_OWNER, 8 }, { VH_USER_SET_STATUS, 7 }, { VH_USER_SET_INFLIGHT_FD, 20 },
		{ VH_USER_SET_LOG_FD, 8 }, { VH_USER_ADD_MEM_REG, 32 }, { VH_USER_SET_CONFIG, 11 },
		{ VH_USER_IOTLB_MSG, 26 }, { VH_USER_SET_VRING_ENABLE, 9 },
	};
	static uint8_t zero[64];

	for (size_t i = 0; i < NELEM(cases); i++) {
		rmsg(c, cases[i].id, V1 | NEED, zero, cases[i].size, NULL, 0);
		if (!expect_u64(c, cases[i].id, "NAK"))
			T_FAIL("id %u with %u bytes was acked", cases[i].id, cases[i].size);
	}
	expect_alive(c);
}

/* SET_MEM_TABLE whose size disagrees with nregions; the fd is closed at once. */
static void c03_mem_table_size(struct rawc *c)
{
	struct vh_mem_region r[2] = { region(0), region(1) };
	int fd;

	good_table(c);
	fd = ram_fd();
	send_table(c, r, 2, fd, 1, 1); /* nregions 1, two regions' bytes */
	close(fd);
	EXPECT_NAK(c, VH_USER_SET_MEM_TABLE);
	CHECK_FDS_NOW(c, 0);
	check_table_is_good("size mismatch");
	expect_alive(c);
}

/* A request with a reply of its own and a wrong size: no error form exists, the back-end must
 * not answer as if it were valid; it ends the connection. */
static void c03_get_with_payload(struct rawc *c)
{
	uint64_t junk = 0x4141414141414141ull;

	rmsg(c, VH_USER_GET_FEATURES, V1, &junk, 8, NULL, 0);
	expect_close(c, "GET_FEATURES with a payload");
}

/* -- class 4: version, REPLY bit, unknown flag bits ---------------------------------------------- */

static void c04_flags(struct rawc *c)
{
	static const uint32_t flags[] = {
		0x0, 0x2, 0x3, V1 | VH_USER_FLAG_REPLY, V1 | 0x10, V1 | 0x80000000u, V1 | NEED | 0x100,
	};
	uint64_t v = 256;
	int fd = t_memfd("flags", 0);

	rmsg(c, VH_USER_SET_VRING_CALL, flags[c->arg], &v, 8, &fd, 1);
	close(fd);
	expect_close(c, "bad header flags");
	CHECK_FDS_NOW(c, -1);
}

/* -- class 5: unknown id, id 0, feature not negotiated -------------------------------------------- */

static void c05_unknown_ids(struct rawc *c)
{
	static const uint32_t ids[] = { 45, 46, 100, 0x7fffffff, UINT32_MAX };
	int fd = t_memfd("unknown", 0);

	for (size_t i = 0; i < NELEM(ids); i++) {
		rmsg(c, ids[i], V1 | NEED, NULL, 0, &fd, 1);
		if (!expect_u64(c, ids[i], "NAK"))
			T_FAIL("unknown id %u acked", ids[i]);
	}
	close(fd);
	CHECK_FDS_NOW(c, 0);
	rmsg(c, 45, V1, NULL, 0, NULL, 0);
	expect_silence(c, "unknown id without NEED_REPLY");
	expect_alive(c);
}

static void c05_not_negotiated(struct rawc *c)
{
	struct vh_mem_region r = region(0);
	struct vh_vring_state st = { 0, 0 };
	uint64_t mtu = 1500;
	int fd = ram_fd();

	/* without CONFIGURE_MEM_SLOTS, INBAND_NOTIFICATIONS and NET_MTU */
	negotiate(c, PROTO_DEFAULT & ~PF(CONFIGURE_MEM_SLOTS) & ~PF(INBAND_NOTIFICATIONS) &
		     ~PF(NET_MTU), OFFERED);
	add_mem_reg(c, &r, &fd, 1);
	close(fd);
	EXPECT_NAK(c, VH_USER_ADD_MEM_REG);
	CHECK_FDS_NOW(c, 0);
	CHECK_EQ(h_state(&H).nregions, 0);
	rmsg(c, VH_USER_VRING_KICK, V1 | NEED, &st, 8, NULL, 0);
	EXPECT_NAK(c, VH_USER_VRING_KICK);
	rmsg(c, VH_USER_NET_SET_MTU, V1 | NEED, &mtu, 8, NULL, 0);
	EXPECT_NAK(c, VH_USER_NET_SET_MTU);
	CHECK_EQ(h_rec(&H).calls[BE_NET_SET_MTU], 0);
	expect_alive(c);
}

/* POSTCOPY_ADVISE with CONFIGURE_MEM_SLOTS negotiated: its error form (no fd). */
static void c05_postcopy_with_mem_slots(struct rawc *c)
{
	static struct vh_msg m;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 9;

	rmsg(c, VH_USER_POSTCOPY_ADVISE, V1, NULL, 0, NULL, 0);
	CHECK_EQ(rrecv(c, &m, fds, &nfds, 1000), 0);
	CHECK_EQ(m.hdr.request, VH_USER_POSTCOPY_ADVISE);
	CHECK_EQ(m.hdr.size, 0);
	CHECK_EQ(nfds, 0);
	vh_close_fds(fds, nfds);
	CHECK_EQ(h_rec(&H).calls[BE_POSTCOPY_ADVISE], 0);
	expect_alive(c);
}

/* A request with its own reply and its gate off: no error form, the connection ends. */
static void c05_get_not_negotiated(struct rawc *c)
{
	negotiate(c, PROTO_DEFAULT & ~PF(MQ), OFFERED);
	rmsg(c, VH_USER_GET_QUEUE_NUM, V1, NULL, 0, NULL, 0);
	expect_close(c, "GET_QUEUE_NUM without MQ");
}

/* -- class 6: too many fds, fds on fd-less requests, fds after the first byte ---------------------- */

static void c06_too_many_fds(struct rawc *c)
{
	static const unsigned counts[] = { 9, 64 };
	unsigned n = counts[c->arg];
	int fds[64];
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		fds[i] = t_memfd("many", 0);
	rmsg(c, VH_USER_SET_VRING_CALL, V1 | NEED, &v, 8, fds, n);
	vh_close_fds(fds, n);
	expect_close(c, "more than 8 fds");
	CHECK_FDS_NOW(c, -1);
}

static void c06_fd_on_fdless(struct rawc *c)
{
	static const uint32_t ids[] = { VH_USER_SET_VRING_NUM, VH_USER_SET_FEATURES,
					VH_USER_SET_VRING_ENABLE, VH_USER_SET_STATUS };
	struct vh_vring_state st = { 0, 1 };
	int fds[2] = { t_memfd("stray", 0), t_memfd("stray", 0) };

	for (size_t i = 0; i < NELEM(ids); i++) {
		rmsg(c, ids[i], V1 | NEED, &st, 8, fds, 1 + (i & 1));
		if (!expect_u64(c, ids[i], "NAK"))
			T_FAIL("id %u with a stray fd acked", ids[i]);
	}
	vh_close_fds(fds, 2);
	CHECK_FDS_NOW(c, 0);
	expect_alive(c);
}

static void c06_fd_after_first_byte(struct rawc *c)
{
	struct vh_msg_hdr h = { VH_USER_SET_VRING_CALL, V1 | NEED, 8 };
	uint64_t v = 0;
	int fd = t_memfd("late", 0);
	struct iovec iov = { &v, 8 };

	if (send(c->ep.fd, &h, sizeof(h), MSG_NOSIGNAL) != sizeof(h))
		T_FAIL("send");
	t_sleep_ms(50); /* the back-end reads the header alone */
	if (t_sendmsg_fds(c->ep.fd, &iov, 1, &fd, 1, 0) != 8)
		T_FAIL("sendmsg");
	close(fd);
	expect_close(c, "fd after the first byte");
	CHECK_FDS_NOW(c, -1);
}

/* -- class 7: features not offered, incomplete combinations, changes while running --------------- */

static void c07_features(struct rawc *c)
{
	uint64_t v;
	struct be_state s;

	v = OFFERED | VH_BIT(VH_F_RING_PACKED); /* not offered */
	rmsg(c, VH_USER_SET_FEATURES, V1 | NEED, &v, 8, NULL, 0);
	EXPECT_NAK(c, VH_USER_SET_FEATURES);
	v = PROTO_DEFAULT | VH_BIT(23) | VH_BIT(40); /* not offered, not defined */
	rmsg(c, VH_USER_SET_PROTOCOL_FEATURES, V1 | NEED, &v, 8, NULL, 0);
	EXPECT_NAK(c, VH_USER_SET_PROTOCOL_FEATURES);
	/* INBAND_NOTIFICATIONS without BACKEND_REQ */
	v = (PROTO_DEFAULT & ~PF(BACKEND_REQ) & ~PF(HOST_NOTIFIER) & ~PF(SHARED_OBJECT) &
	     ~PF(SHMEM)) | PF(INBAND_NOTIFICATIONS);
	rmsg(c, VH_USER_SET_PROTOCOL_FEATURES, V1 | NEED, &v, 8, NULL, 0);
	EXPECT_NAK(c, VH_USER_SET_PROTOCOL_FEATURES);
	s = h_state(&H);
	CHECK_EQ(s.features, OFFERED);
	CHECK_EQ(s.protocol_features, PROTO_DEFAULT);
	expect_alive(c);
}

static void c07_change_while_running(struct rawc *c)
{
	uint64_t v;

	start_ring(c, 0);
	v = OFFERED & ~VH_BIT(VH_F_EVENT_IDX);
	rmsg(c, VH_USER_SET_FEATURES, V1 | NEED, &v, 8, NULL, 0);
	EXPECT_NAK(c, VH_USER_SET_FEATURES);
	v = PROTO_DEFAULT & ~PF(MQ);
	rmsg(c, VH_USER_SET_PROTOCOL_FEATURES, V1 | NEED, &v, 8, NULL, 0);
	EXPECT_NAK(c, VH_USER_SET_PROTOCOL_FEATURES);
	/* dirty logging may change on a running ring (migration) */
	v = OFFERED & ~VH_BIT(VH_F_LOG_ALL);
	rmsg(c, VH_USER_SET_FEATURES, V1 | NEED, &v, 8, NULL, 0);
	EXPECT_ACK(c, VH_USER_SET_FEATURES);
	CHECK_EQ(h_state(&H).features, v);
	expect_alive(c);
}

/* -- class 8: SET_MEM_TABLE nregions > 8 or != fd count; the old table stays ---------------------- */

static void c08_nregions(struct rawc *c)
{
	static const struct { unsigned n, nfds; uint32_t field; } cases[] = {
		{ 9, 8, 9 },       /* more than 8 regions */
		{ 2, 1, 2 },       /* fewer fds than regions */
		{ 2, 3, 2 },       /* more fds than regions */
		{ 1, 0, 1 },       /* no fd at all */
		{ 0, 1, 0 },       /* an fd for no region */
	};
	struct vh_mem_region r[9];
	int fd = ram_fd();

	for (unsigned i = 0; i < 9; i++)
		r[i] = region(i);
	good_table(c);
	c->fds0 = t_count_fds();
	for (size_t i = 0; i < NELEM(cases); i++) {
		send_table(c, r, cases[i].n, fd, cases[i].nfds, cases[i].field);
		EXPECT_NAK(c, VH_USER_SET_MEM_TABLE);
		CHECK_FDS_NOW(c, 0);
		check_table_is_good("nregions");
	}
	close(fd);
	expect_alive(c);
}

/*
 * After POSTCOPY_LISTEN the front-end answers SET_MEM_TABLE by waiting for the table to come
 * back (QEMU reads it with no timeout, NEED_REPLY or not). A table the back-end rejects has no
 * such answer, and a u64 NAK is not one either: the connection must end, whichever check
 * refused it (the region rules, the fd checks, the slot limit or the device).
 */
static void c08_postcopy_bad_table(struct rawc *c)
{
	static const char *const what[] = { "empty region", "fd past its end", "device refused",
					    "no fd for the region" };
	struct vh_mem_region r = region(0);
	int fd = ram_fd(), ufd_fds[VH_USER_MAX_FDS];
	uint32_t flags = c->arg & 1 ? V1 | NEED : V1;
	unsigned kind = (unsigned)c->arg >> 1, nfds = 0;
	static struct vh_msg m;
	uint8_t buf[8 + 32];
	uint32_t one = 1;

	negotiate(c, (PROTO_DEFAULT | PF(PAGEFAULT)) & ~PF(CONFIGURE_MEM_SLOTS), OFFERED);
	rmsg(c, VH_USER_POSTCOPY_ADVISE, V1, NULL, 0, NULL, 0);
	CHECK_EQ(rrecv(c, &m, ufd_fds, &nfds, 1000), 0);
	CHECK_EQ(nfds, 1);
	vh_close_fds(ufd_fds, nfds);
	rmsg(c, VH_USER_POSTCOPY_LISTEN, V1 | NEED, NULL, 0, NULL, 0);
	EXPECT_ACK(c, VH_USER_POSTCOPY_LISTEN);
	if (kind == 0)
		r.memory_size = 0;
	else if (kind == 1)
		r.mmap_offset = RAM_SIZE; /* the region lies past the end of the file */
	else if (kind == 2)
		H.beh.fail[BE_SET_MEM_TABLE] = -EIO;
	memcpy(buf, &one, 4);
	memset(buf + 4, 0, 4);
	memcpy(buf + 8, &r, 32);
	/* kind 3 breaks a table rule (fd count), refused before any handler */
	rmsg(c, VH_USER_SET_MEM_TABLE, flags, buf, sizeof(buf), &fd, kind == 3 ? 0 : 1);
	close(fd);
	expect_close(c, what[kind]);
	CHECK_EQ(h_state(&H).nregions, 0);
}

/* -- class 9: empty, wrapping and overlapping regions --------------------------------------------- */

static void c09_regions(struct rawc *c)
{
	struct vh_mem_region bad[8][2];
	unsigned n[8];
	int fd = ram_fd();
	unsigned k = 0;

	bad[k][0] = region(0), bad[k][0].memory_size = 0, n[k++] = 1;
	bad[k][0] = region(0), bad[k][0].guest_phys_addr = ~0ull - 0x1000, n[k++] = 1;
	bad[k][0] = region(0), bad[k][0].userspace_addr = ~0ull - 0x1000, n[k++] = 1;
	bad[k][0] = region(0), bad[k][0].mmap_offset = ~0ull - 0x1000, n[k++] = 1;
	/* same GPA range, different user addresses */
	bad[k][0] = region(0), bad[k][1] = region(1);
	bad[k][1].guest_phys_addr = bad[k][0].guest_phys_addr + 0x8000, n[k++] = 2;
	/* same user address range, different GPAs */
	bad[k][0] = region(0), bad[k][1] = region(1);
	bad[k][1].userspace_addr = bad[k][0].userspace_addr + 0xf000, n[k++] = 2;
	/* a region covering all of memory */
	bad[k][0] = region(0), bad[k][0].guest_phys_addr = 0, bad[k][0].memory_size = ~0ull,
	n[k++] = 1;
	good_table(c);
	c->fds0 = t_count_fds();
	for (unsigned i = 0; i < k; i++) {
		send_table(c, bad[i], n[i], fd, n[i], n[i]);
		if (!expect_u64(c, VH_USER_SET_MEM_TABLE, "NAK"))
			T_FAIL("bad table %u accepted", i);
		CHECK_FDS_NOW(c, 0);
		check_table_is_good("bad regions");
	}
	/* the same through ADD_MEM_REG (with CONFIGURE_MEM_SLOTS): overlapping the table's region */
	{
		struct vh_mem_region r = region(0);

		r.userspace_addr += 0x1000000; /* only the GPA overlaps */
		add_mem_reg(c, &r, &fd, 1);
		EXPECT_NAK(c, VH_USER_ADD_MEM_REG);
		r = region(1);
		r.memory_size = 0;
		add_mem_reg(c, &r, &fd, 1);
		EXPECT_NAK(c, VH_USER_ADD_MEM_REG);
		CHECK_FDS_NOW(c, 0);
		check_table_is_good("ADD_MEM_REG");
	}
	close(fd);
	expect_alive(c);
}

/* -- class 10: the fd cannot back the region ------------------------------------------------------ */

static void c10_region_fds(struct rawc *c)
{
	struct vh_mem_region r = region(0);
	int other = -1, fds[5], nf = 0;

	good_table(c);
	fds[nf++] = t_memfd("short", 0x8000);         /* offset + size beyond the end */
	fds[nf++] = pipe_read_end(&other);            /* a pipe */
	{
		int sv[2];

		vh_socketpair(sv);
		close(sv[1]);
		fds[nf++] = sv[0];                    /* a socket */
	}
	fds[nf++] = readonly_fd(RAM_SIZE);            /* read-only */
	fds[nf++] = open("/proc/self/maps", O_RDONLY | O_CLOEXEC); /* not a memory file */
	c->fds0 = t_count_fds() - nf - 1;
	for (int i = 0; i < nf; i++) {
		send_table(c, &r, 1, fds[i], 1, 1);
		if (!expect_u64(c, VH_USER_SET_MEM_TABLE, "NAK"))
			T_FAIL("SET_MEM_TABLE with bad fd #%d accepted", i);
		add_mem_reg(c, &(struct vh_mem_region){ .guest_phys_addr = 0x40000000,
							.memory_size = 0x10000,
							.userspace_addr = 0x7e0000000000ull }, &fds[i], 1);
		if (!expect_u64(c, VH_USER_ADD_MEM_REG, "NAK"))
			T_FAIL("ADD_MEM_REG with bad fd #%d accepted", i);
		check_table_is_good("bad fd");
	}
	vh_close_fds(fds, (unsigned)nf);
	close(other);
	CHECK_FDS_NOW(c, 0);
	expect_alive(c);
}

/* -- class 11: ADD_MEM_REG fd count and slot limit, REM_MEM_REG unknown or with an fd ------------- */

static void c11_mem_slots(struct rawc *c)
{
	int fd = ram_fd();
	int two[2] = { fd, fd };
	struct vh_mem_region r = region(0);
	struct vh_mem_single s = { 0, r };
	unsigned added = 0;

	add_mem_reg(c, &r, NULL, 0);
	EXPECT_NAK(c, VH_USER_ADD_MEM_REG);
	add_mem_reg(c, &r, two, 2);
	EXPECT_NAK(c, VH_USER_ADD_MEM_REG);
	CHECK_EQ(h_state(&H).nregions, 0);
	/* fill every slot (32), then one more */
	for (unsigned i = 0; i < 33; i++) {
		struct vh_mem_region x = {
			.guest_phys_addr = 0x100000ull * i, .memory_size = 0x8000,
			.userspace_addr = 0x7f0000000000ull + 0x100000ull * i,
			.mmap_offset = 0x8000ull * (i % 32),
		};

		add_mem_reg(c, &x, &fd, 1);
		if (expect_u64(c, VH_USER_ADD_MEM_REG, "ADD") == 0)
			added++;
	}
	CHECK_EQ(added, 32);
	CHECK_EQ(h_state(&H).nregions, 32);
	/* REM of a region that is not there */
	s.region.guest_phys_addr = 0x7770000000ull;
	rmsg(c, VH_USER_REM_MEM_REG, V1 | NEED, &s, sizeof(s), NULL, 0);
	EXPECT_NAK(c, VH_USER_REM_MEM_REG);
	/* REM with an fd: allowed, and the fd is closed */
	s.region = (struct vh_mem_region){ 0, 0x8000, 0x7f0000000000ull, 0 };
	rmsg(c, VH_USER_REM_MEM_REG, V1 | NEED, &s, sizeof(s), &fd, 1);
	EXPECT_ACK(c, VH_USER_REM_MEM_REG);
	close(fd);
	CHECK_FDS_NOW(c, 0);
	CHECK_EQ(h_state(&H).nregions, 31);
	expect_alive(c);
}

/* -- class 12: memory removed under a started ring ----------------------------------------------- */

static void c12_remove_under_ring(struct rawc *c)
{
	struct vh_mem_region r = region(0);
	struct vh_mem_single s = { 0, r };
	unsigned rem;

	good_table(c);
	start_ring(c, 0);
	rem = h_rec(&H).calls[BE_REM_MEM_REG];
	rmsg(c, VH_USER_REM_MEM_REG, V1 | NEED, &s, sizeof(s), NULL, 0);
	/* The device is told (its callback quiesces the ring) before the table changes. */
	EXPECT_ACK(c, VH_USER_REM_MEM_REG);
	CHECK_EQ(h_rec(&H).calls[BE_REM_MEM_REG], rem + 1);
	CHECK_EQ(h_state(&H).nregions, 0);
	CHECK_EQ(h_state(&H).vr[0].started, 1);
	/* a replacing table under the running ring: the device's callback runs first too */
	good_table(c);
	CHECK_EQ(h_state(&H).nregions, 1);
	expect_alive(c);
}

/* -- class 13: queue index >= the queue count ------------------------------------------------------ */

static void c13_queue_index(struct rawc *c)
{
	static const uint32_t state_ids[] = {
		VH_USER_SET_VRING_NUM, VH_USER_SET_VRING_BASE, VH_USER_SET_VRING_ENABLE,
		VH_USER_SET_VRING_ENDIAN, VH_USER_VRING_KICK,
	};
	static const uint32_t file_ids[] = {
		VH_USER_SET_VRING_KICK, VH_USER_SET_VRING_CALL, VH_USER_SET_VRING_ERR,
	};
	static const uint32_t bad_idx[] = { H_NQ, H_NQ + 1, 255, 256, 0x10000, UINT32_MAX };
	struct vh_vring_addr a = { 0, 0, 0x10000, 0x12000, 0x11000, 0 };
	int fd = t_memfd("q", 0);

	for (size_t k = 0; k < NELEM(bad_idx); k++) {
		for (size_t i = 0; i < NELEM(state_ids); i++) {
			vring_state(c, state_ids[i], bad_idx[k], state_ids[i] == VH_USER_VRING_KICK ? 0 : 1);
			if (!expect_u64(c, state_ids[i], "NAK"))
				T_FAIL("id %u index %u acked", state_ids[i], bad_idx[k]);
		}
		a.index = bad_idx[k];
		rmsg(c, VH_USER_SET_VRING_ADDR, V1 | NEED, &a, sizeof(a), NULL, 0);
		EXPECT_NAK(c, VH_USER_SET_VRING_ADDR);
		for (size_t i = 0; i < NELEM(file_ids) && bad_idx[k] <= 0xff; i++) {
			vring_file(c, file_ids[i], bad_idx[k], &fd, 1);
			if (!expect_u64(c, file_ids[i], "NAK"))
				T_FAIL("id %u index %u acked", file_ids[i], bad_idx[k]);
			vring_file(c, file_ids[i], bad_idx[k] | VH_USER_VRING_NOFD_MASK, NULL, 0);
			if (!expect_u64(c, file_ids[i], "NAK"))
				T_FAIL("id %u index %u NOFD acked", file_ids[i], bad_idx[k]);
		}
	}
	close(fd);
	CHECK_FDS_NOW(c, 0);
	expect_alive(c);
}

/* GET_VRING_BASE names a queue and has a reply of its own: out of range ends the connection. */
static void c13_get_vring_base(struct rawc *c)
{
	struct vh_vring_state st = { H_NQ, 0 };

	rmsg(c, VH_USER_GET_VRING_BASE, V1, &st, 8, NULL, 0);
	expect_close(c, "GET_VRING_BASE out of range");
}

/* -- class 14: ring sizes -------------------------------------------------------------------------- */

static void c14_vring_num(struct rawc *c)
{
	static const uint32_t nums[] = { 0, 3, 255, 2048, 32768, 65536, UINT32_MAX };

	vring_state(c, VH_USER_SET_VRING_NUM, 0, 128);
	EXPECT_ACK(c, VH_USER_SET_VRING_NUM);
	for (size_t i = 0; i < NELEM(nums); i++) {
		vring_state(c, VH_USER_SET_VRING_NUM, 0, nums[i]);
		if (!expect_u64(c, VH_USER_SET_VRING_NUM, "NAK"))
			T_FAIL("ring size %u accepted (device max 1024, split ring)", nums[i]);
	}
	CHECK_EQ(h_state(&H).vr[0].num, 128);
	expect_alive(c);
}

/* -- class 15: ring addresses ------------------------------------------------------------------------ */

static void c15_vring_addr(struct rawc *c)
{
	struct vh_vring_addr good = { 0, 0, 0x10000, 0x12000, 0x11000, 0 };
	struct vh_vring_addr bad[6];
	unsigned k = 0;

	bad[k] = good, bad[k++].desc_user_addr = 0x10008;    /* desc 16-aligned */
	bad[k] = good, bad[k++].avail_user_addr = 0x11001;   /* avail 2-aligned */
	bad[k] = good, bad[k++].used_user_addr = 0x12002;    /* used 4-aligned */
	bad[k] = good, bad[k].flags = VH_BIT(VH_VRING_F_LOG), bad[k++].log_guest_addr = 0x3; /* log */
	bad[k] = good, bad[k++].flags = 0x2;                 /* undefined flag */
	bad[k] = good, bad[k++].flags = 0x80000000u;
	rmsg(c, VH_USER_SET_VRING_ADDR, V1 | NEED, &good, sizeof(good), NULL, 0);
	EXPECT_ACK(c, VH_USER_SET_VRING_ADDR);
	for (unsigned i = 0; i < k; i++) {
		rmsg(c, VH_USER_SET_VRING_ADDR, V1 | NEED, &bad[i], sizeof(bad[i]), NULL, 0);
		if (!expect_u64(c, VH_USER_SET_VRING_ADDR, "NAK"))
			T_FAIL("bad ring address %u accepted", i);
	}
	CHECK(!memcmp(&h_state(&H).vr[0].addr, &good, sizeof(good)));
	expect_alive(c);
}

/* -- class 16: kick/call/err fd rules, repeats ------------------------------------------------------ */

static void c16_vring_fds(struct rawc *c)
{
	static const uint32_t ids[] = { VH_USER_SET_VRING_KICK, VH_USER_SET_VRING_CALL,
					VH_USER_SET_VRING_ERR };
	int a = t_memfd("call-a", 0), b = t_memfd("call-b", 0);
	struct fid fb = fid_of(b);
	struct be_state s;

	for (size_t i = 0; i < NELEM(ids); i++) {
		vring_file(c, ids[i], 1 | VH_USER_VRING_NOFD_MASK, &a, 1); /* NOFD with an fd */
		EXPECT_NAK(c, ids[i]);
		vring_file(c, ids[i], 1, NULL, 0);                         /* no NOFD, no fd */
		EXPECT_NAK(c, ids[i]);
		vring_file(c, ids[i], 1 | (1ull << 9), &a, 1);             /* reserved bits */
		EXPECT_NAK(c, ids[i]);
		vring_file(c, ids[i], 1 | (1ull << 63), &a, 1);
		EXPECT_NAK(c, ids[i]);
		vring_file(c, ids[i], 1, &a, 1);
		EXPECT_ACK(c, ids[i]);
	}
	/* repeats replace the old fd, which is closed */
	for (size_t i = 0; i < NELEM(ids); i++) {
		vring_file(c, ids[i], 1, &b, 1);
		EXPECT_ACK(c, ids[i]);
	}
	close(a);
	close(b);
	s = h_state(&H);
	CHECK(s.kick[1].dev == fb.dev && s.kick[1].ino == fb.ino);
	CHECK(s.call[1].dev == fb.dev && s.call[1].ino == fb.ino);
	CHECK(s.err[1].dev == fb.dev && s.err[1].ino == fb.ino);
	CHECK_FDS_NOW(c, 3); /* b held three times by the back-end, a nowhere */
	/* NOFD drops the fd */
	for (size_t i = 0; i < NELEM(ids); i++) {
		vring_file(c, ids[i], 1 | VH_USER_VRING_NOFD_MASK, NULL, 0);
		EXPECT_ACK(c, ids[i]);
	}
	CHECK_FDS_NOW(c, 0);
	expect_alive(c);
}

/* -- class 17: SET_LOG_BASE ------------------------------------------------------------------------ */

static void c17_log_base(struct rawc *c)
{
	struct { struct vh_log log; int kind; unsigned nfds; } cases[] = {
		{ { 4096, 0 }, 0, 0 },          /* no fd */
		{ { 4096, 0 }, 0, 2 },          /* two fds */
		{ { 0, 0 }, 0, 1 },             /* size 0 */
		{ { 4096, ~0ull - 100 }, 0, 1 },/* offset + size wraps */
		{ { 0x100000, 0 }, 0, 1 },      /* larger than the file (64 KiB) */
		{ { 4096, 0 }, 1, 1 },          /* a pipe */
		{ { 4096, 0 }, 2, 1 },          /* read-only */
	};
	int other = -1;
	int fds[3] = { t_memfd("log", 0x10000), pipe_read_end(&other), readonly_fd(0x10000) };

	c->fds0 = t_count_fds() - 4;
	for (size_t i = 0; i < NELEM(cases); i++) {
		int send_fds[2] = { fds[cases[i].kind], fds[cases[i].kind] };
		uint64_t v;

		rmsg(c, VH_USER_SET_LOG_BASE, V1, &cases[i].log, sizeof(cases[i].log), send_fds,
		     cases[i].nfds);
		v = expect_u64(c, VH_USER_SET_LOG_BASE, "SET_LOG_BASE reply");
		if (!v)
			T_FAIL("bad SET_LOG_BASE #%zu accepted", i);
	}
	{
		struct vh_log ok = { 4096, 4096 };

		rmsg(c, VH_USER_SET_LOG_BASE, V1, &ok, sizeof(ok), fds, 1);
		CHECK_EQ(expect_u64(c, VH_USER_SET_LOG_BASE, "SET_LOG_BASE reply"), 0);
	}
	vh_close_fds(fds, 3);
	close(other);
	CHECK_FDS_NOW(c, 0);
	expect_alive(c);
}

/* -- class 18: GET_INFLIGHT_FD flood and huge sizes ------------------------------------------------- */

static void c18_inflight_get(struct rawc *c)
{
	struct vh_inflight bad[] = {
		{ 0, 0, 0xffff, 256, 0 }, { 0, 0, 1, 0xffff, 0 }, { 0, 0, 0, 256, 0 },
		{ 0, 0, 1, 0, 0 }, { 0, 0, H_NQ + 1, 1024, 0 },
	};
	static struct vh_msg m;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds;

	for (unsigned i = 0; i < 200; i++) {
		struct vh_inflight q = { 0, 0, 2, 256, 0 };

		rmsg(c, VH_USER_GET_INFLIGHT_FD, V1, &q, sizeof(q), NULL, 0);
		if (rrecv(c, &m, fds, &nfds, 1000) || m.hdr.size != 24 || nfds != 1) {
			T_FAIL("GET_INFLIGHT_FD #%u: no proper reply", i);
			break;
		}
		vh_close_fds(fds, nfds);
	}
	CHECK_FDS_NOW(c, 0);
	for (size_t i = 0; i < NELEM(bad); i++) {
		rmsg(c, VH_USER_GET_INFLIGHT_FD, V1, &bad[i], sizeof(bad[i]), NULL, 0);
		CHECK_EQ(rrecv(c, &m, fds, &nfds, 1000), 0);
		CHECK_EQ(m.hdr.request, VH_USER_GET_INFLIGHT_FD);
		CHECK_EQ(m.hdr.size, 24);
		CHECK_EQ_M(m.payload.inflight.mmap_size, 0, "bad request #%zu", i);
		CHECK_EQ(nfds, 0);
		vh_close_fds(fds, nfds);
	}
	CHECK_FDS_NOW(c, 0);
	expect_alive(c);
}

/* -- class 19: SET_INFLIGHT_FD -------------------------------------------------------------------- */

static void c19_inflight_set(struct rawc *c)
{
	struct { struct vh_inflight inf; int kind; unsigned nfds; } cases[] = {
		{ { 4096, 0, H_NQ + 1, 256, 0 }, 0, 1 },  /* more queues than the device has */
		{ { 4096, 0, 1, 2048, 0 }, 0, 1 },        /* queue bigger than the device allows */
		{ { 0, 0, 1, 256, 0 }, 0, 1 },            /* no buffer */
		{ { 0x100000, 0, 1, 256, 0 }, 0, 1 },     /* larger than the file */
		{ { 4096, ~0ull - 10, 1, 256, 0 }, 0, 1 },/* offset wraps */
		{ { 4096, 0, 1, 256, 0 }, 0, 2 },         /* an extra fd */
		{ { 4096, 0, 1, 256, 0 }, 0, 0 },         /* no fd */
		{ { 4096, 0, 1, 256, 0 }, 1, 1 },         /* a pipe */
		{ { 4096, 0, 0, 256, 0 }, 0, 1 },         /* no queue */
	};
	int other = -1;
	int fds[2] = { t_memfd("inflight", 0x10000), pipe_read_end(&other) };
	unsigned calls = h_rec(&H).calls[BE_SET_INFLIGHT_FD];

	c->fds0 = t_count_fds() - 3;
	for (size_t i = 0; i < NELEM(cases); i++) {
		int send_fds[2] = { fds[cases[i].kind], fds[cases[i].kind] };

		rmsg(c, VH_USER_SET_INFLIGHT_FD, V1 | NEED, &cases[i].inf, 24, send_fds,
		     cases[i].nfds);
		if (!expect_u64(c, VH_USER_SET_INFLIGHT_FD, "NAK"))
			T_FAIL("bad SET_INFLIGHT_FD #%zu accepted", i);
	}
	CHECK_EQ(h_rec(&H).calls[BE_SET_INFLIGHT_FD], calls);
	vh_close_fds(fds, 2);
	close(other);
	CHECK_FDS_NOW(c, 0);
	expect_alive(c);
}

/* -- class 20: corrupt inflight contents ------------------------------------------------------------
 * The protocol server never reads the buffer (the device's recovery does, see server.h): a
 * well-formed SET_INFLIGHT_FD whose memory is garbage is handed over, and nothing else happens. */

static void c20_inflight_garbage(struct rawc *c)
{
	struct vh_inflight inf = { 0x10000, 0, 2, 256, 0 };
	int fd = t_memfd("garbage", 0x10000);
	static uint8_t junk[0x10000];
	struct be_rec rec;

	memset(junk, 0xff, sizeof(junk));
	if (pwrite(fd, junk, sizeof(junk), 0) != (ssize_t)sizeof(junk))
		T_FAIL("pwrite");
	rmsg(c, VH_USER_SET_INFLIGHT_FD, V1 | NEED, &inf, 24, &fd, 1);
	EXPECT_ACK(c, VH_USER_SET_INFLIGHT_FD);
	rec = h_rec(&H);
	CHECK_EQ(rec.last, BE_SET_INFLIGHT_FD);
	CHECK(fid_is(rec.fids[0], fd));
	close(fd);
	CHECK_FDS_NOW(c, 0);
	expect_alive(c);
}

/* -- class 21: GET/SET_CONFIG ------------------------------------------------------------------------ */

static void c21_config(struct rawc *c)
{
	struct { uint32_t offset, size, flags, hdr_size; } cases[] = {
		{ 0, 257, 0, 12 + 257 },          /* more than 256 */
		{ 0xfffffff0u, 32, 0, 12 + 32 },  /* offset + size wraps */
		{ 0x100, 16, 0, 12 + 16 },        /* virtio-pci's offset, not a vhost-user one */
		{ 250, 16, 0, 12 + 16 },          /* beyond the config space */
		{ 0, 16, 0, 12 + 15 },            /* size != hdr.size - 12 */
		{ 0, 16, 0, 12 + 17 },
		{ 0, 0, 0, 12 },                  /* nothing */
	};
	static uint8_t buf[12 + 300];
	static struct vh_msg m;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds;
	unsigned set_calls = h_rec(&H).calls[BE_SET_CONFIG];

	for (size_t i = 0; i < NELEM(cases); i++) {
		memset(buf, 0x5a, sizeof(buf));
		memcpy(buf, &cases[i].offset, 4);
		memcpy(buf + 4, &cases[i].size, 4);
		memcpy(buf + 8, &cases[i].flags, 4);
		rmsg(c, VH_USER_GET_CONFIG, V1, buf, cases[i].hdr_size, NULL, 0);
		CHECK_EQ(rrecv(c, &m, fds, &nfds, 1000), 0);
		CHECK_EQ_M(m.hdr.size, 0, "GET_CONFIG #%zu: the error reply is empty", i);
		CHECK_EQ(m.hdr.request, VH_USER_GET_CONFIG);
		vh_close_fds(fds, nfds);
		rmsg(c, VH_USER_SET_CONFIG, V1 | NEED, buf, cases[i].hdr_size, NULL, 0);
		if (!expect_u64(c, VH_USER_SET_CONFIG, "NAK"))
			T_FAIL("bad SET_CONFIG #%zu accepted", i);
	}
	/* flags other than 0 / 1 (migration) */
	{
		uint32_t hdr[3] = { 0, 4, 2 };

		memcpy(buf, hdr, 12);
		rmsg(c, VH_USER_SET_CONFIG, V1 | NEED, buf, 16, NULL, 0);
		EXPECT_NAK(c, VH_USER_SET_CONFIG);
	}
	CHECK_EQ(h_rec(&H).calls[BE_SET_CONFIG], set_calls);
	expect_alive(c);
}

/* -- class 22: IOTLB_MSG -------------------------------------------------------------------------------- */

static void c22_iotlb(struct rawc *c)
{
	struct vh_iotlb_msg good = { 0x1000, 0x1000, 0x7f0000001000ull, VH_ACCESS_RW,
				     VH_IOTLB_UPDATE, { 0 } };
	struct vh_iotlb_msg bad[10];
	unsigned k = 0, calls;

	memset(bad, 0, sizeof(bad));
	k++;                                                      /* all zero */
	bad[k] = good, bad[k++].size = 0;                         /* empty */
	bad[k] = good, bad[k].iova = ~0ull - 0x100, k++;          /* iova + size wraps */
	bad[k] = good, bad[k].uaddr = ~0ull - 0x100, k++;         /* uaddr + size wraps */
	bad[k] = good, bad[k++].type = 0;                         /* bad types */
	bad[k] = good, bad[k++].type = 7;
	bad[k] = good, bad[k++].type = VH_IOTLB_MISS;             /* travels the other way */
	bad[k] = good, bad[k++].perm = 0;                         /* bad permissions */
	bad[k] = good, bad[k++].perm = 4;
	bad[k] = good, bad[k].type = VH_IOTLB_INVALIDATE, bad[k++].size = 0;
	calls = h_rec(&H).calls[BE_IOTLB_MSG];
	for (unsigned i = 0; i < k; i++) {
		rmsg(c, VH_USER_IOTLB_MSG, V1 | NEED, &bad[i], sizeof(bad[i]), NULL, 0);
		if (!expect_u64(c, VH_USER_IOTLB_MSG, "NAK"))
			T_FAIL("bad IOTLB message %u accepted", i);
	}
	CHECK_EQ(h_rec(&H).calls[BE_IOTLB_MSG], calls);
	rmsg(c, VH_USER_IOTLB_MSG, V1 | NEED, &good, sizeof(good), NULL, 0);
	EXPECT_ACK(c, VH_USER_IOTLB_MSG);
	/* without ACCESS_PLATFORM acked, not even a good one */
	{
		uint64_t f = OFFERED & ~VH_BIT(VH_F_ACCESS_PLATFORM);

		rmsg(c, VH_USER_SET_FEATURES, V1 | NEED, &f, 8, NULL, 0);
		EXPECT_ACK(c, VH_USER_SET_FEATURES);
		rmsg(c, VH_USER_IOTLB_MSG, V1 | NEED, &good, sizeof(good), NULL, 0);
		EXPECT_NAK(c, VH_USER_IOTLB_MSG);
	}
	expect_alive(c);
}

/* -- class 23: SET_DEVICE_STATE_FD ------------------------------------------------------------------ */

static uint64_t state_reply(struct rawc *c)
{
	static struct vh_msg m;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 0;

	if (rrecv(c, &m, fds, &nfds, 1000)) {
		T_FAIL("no SET_DEVICE_STATE_FD reply");
		return 0;
	}
	CHECK_EQ(m.hdr.request, VH_USER_SET_DEVICE_STATE_FD);
	CHECK_EQ(m.hdr.size, 8);
	CHECK_EQ(nfds, 0);
	vh_close_fds(fds, nfds);
	return m.payload.u64;
}

static void c23_device_state(struct rawc *c)
{
	struct { struct vh_device_state_transfer t; unsigned nfds; } cases[] = {
		{ { 2, 0 }, 1 },          /* direction */
		{ { UINT32_MAX, 0 }, 1 },
		{ { 0, 1 }, 1 },          /* phase */
		{ { 0, 0 }, 0 },          /* no fd */
		{ { 1, 0 }, 2 },          /* two fds */
	};
	int fd = t_memfd("state", 0), two[2] = { fd, fd };
	uint64_t v;

	for (size_t i = 0; i < NELEM(cases); i++) {
		rmsg(c, VH_USER_SET_DEVICE_STATE_FD, V1, &cases[i].t, 8, two, cases[i].nfds);
		v = state_reply(c);
		if (!(v & 0xff) || !(v & VH_USER_VRING_NOFD_MASK))
			T_FAIL("bad SET_DEVICE_STATE_FD #%zu: reply 0x%llx", i, (unsigned long long)v);
	}
	/* a running ring: the device must be suspended first */
	start_ring(c, 0); /* counts fd (ours) into fds0 */
	{
		struct vh_device_state_transfer t = { VH_DEVICE_STATE_SAVE, 0 };

		rmsg(c, VH_USER_SET_DEVICE_STATE_FD, V1, &t, 8, &fd, 1);
	}
	v = state_reply(c);
	if (!(v & 0xff))
		T_FAIL("SET_DEVICE_STATE_FD with a running ring accepted");
	CHECK_EQ(h_rec(&H).calls[BE_SET_DEVICE_STATE_FD], 0);
	close(fd);
	CHECK_FDS_NOW(c, -1);
	/* CHECK_DEVICE_STATE reports the device's failure */
	H.beh.fail[BE_CHECK_DEVICE_STATE] = -EIO;
	rmsg(c, VH_USER_CHECK_DEVICE_STATE, V1, NULL, 0, NULL, 0);
	if (!expect_u64(c, VH_USER_CHECK_DEVICE_STATE, "CHECK_DEVICE_STATE"))
		T_FAIL("a failed transfer checked as good");
	H.beh.fail[BE_CHECK_DEVICE_STATE] = 0;
	expect_alive(c);
}

/* -- class 24: unsolicited and out-of-order replies --------------------------------------------------- */

static void c24_reply_on_main(struct rawc *c)
{
	uint64_t v = 0;

	rmsg(c, VH_USER_GET_FEATURES, V1 | VH_USER_FLAG_REPLY, &v, 8, NULL, 0);
	expect_close(c, "a reply sent to the back-end");
}

/* The back-end channel: a stray message waiting before the back-end's request is answered. */
static void c24_channel(struct rawc *c)
{
	int sv[2];
	struct vh_msg_hdr stray = { VH_USER_BACKEND_SHARED_OBJECT_ADD, V1 | VH_USER_FLAG_REPLY, 8 };
	uint64_t zero = 0;
	uint8_t buf[sizeof(stray) + 8];
	int r;

	vh_socketpair(sv);
	rmsg(c, VH_USER_SET_BACKEND_REQ_FD, V1 | NEED, NULL, 0, &sv[1], 1);
	close(sv[1]);
	EXPECT_ACK(c, VH_USER_SET_BACKEND_REQ_FD);
	CHECK_EQ(h_state(&H).has_channel, 1);
	memcpy(buf, &stray, sizeof(stray));
	memcpy(buf + sizeof(stray), &zero, 8);
	CHECK_EQ(write(sv[0], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	/* Any thread may send; the stray reply does not match CONFIG_CHANGE_MSG. */
	r = vh_backend_send_config_change(H.be);
	CHECK_EQ(r, -EPROTO);
	CHECK_EQ(vh_backend_has_channel(H.be), 0);
	CHECK_EQ(vh_backend_send_config_change(H.be), -ENOTCONN);
	close(sv[0]);
	expect_alive(c);

	/* a peer that answers with the right id but never as a reply (flags 0x1) */
	vh_socketpair(sv);
	rmsg(c, VH_USER_SET_BACKEND_REQ_FD, V1 | NEED, NULL, 0, &sv[1], 1);
	close(sv[1]);
	EXPECT_ACK(c, VH_USER_SET_BACKEND_REQ_FD);
	stray.request = VH_USER_BACKEND_CONFIG_CHANGE_MSG;
	stray.flags = V1;
	memcpy(buf, &stray, sizeof(stray));
	CHECK_EQ(write(sv[0], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	CHECK_EQ(vh_backend_send_config_change(H.be), -EPROTO);
	CHECK_EQ(vh_backend_has_channel(H.be), 0);
	close(sv[0]);
	/* a silent peer: the request times out and the channel goes */
	vh_socketpair(sv);
	rmsg(c, VH_USER_SET_BACKEND_REQ_FD, V1 | NEED, NULL, 0, &sv[1], 1);
	close(sv[1]);
	EXPECT_ACK(c, VH_USER_SET_BACKEND_REQ_FD);
	{
		int64_t t0 = t_now_ms();

		CHECK_EQ(vh_backend_send_config_change(H.be), -ETIMEDOUT);
		if (t_now_ms() - t0 > BE_TIMEOUT_MS * 4)
			T_FAIL("channel timeout took %lld ms", (long long)(t_now_ms() - t0));
	}
	CHECK_EQ(vh_backend_has_channel(H.be), 0);
	close(sv[0]);
	CHECK_FDS_NOW(c, 0);
	expect_alive(c);
}

/* SET_BACKEND_REQ_FD with something that is not a socket. */
static void c24_channel_not_socket(struct rawc *c)
{
	int fd = t_memfd("not-a-socket", 0);

	rmsg(c, VH_USER_SET_BACKEND_REQ_FD, V1 | NEED, NULL, 0, &fd, 1);
	EXPECT_NAK(c, VH_USER_SET_BACKEND_REQ_FD);
	close(fd);
	CHECK_FDS_NOW(c, 0);
	CHECK_EQ(vh_backend_has_channel(H.be), 0);
	expect_alive(c);
}

/* ---- Runner ------------------------------------------------------------------------------------ */

struct bad_case {
	const char *name;
	void (*fn)(struct rawc *c);
	int arg;
};

#define CASE(name, fn) { name, fn, 0 }
#define CASEA(name, fn, a) { name, fn, a }

static const struct bad_case cases[] = {
	CASEA("c01-eof-before-header", c01_eof, 0),
	CASEA("c01-eof-in-header", c01_eof, 1),
	CASEA("c01-eof-after-header", c01_eof, 2),
	CASEA("c01-eof-in-payload", c01_eof, 3),
	CASE("c01-eof-in-payload-with-fd", c01_eof_with_fd),
	CASE("c01-stall-in-header", c01_stall),
	CASE("c01-request-zero", c01_request_zero),
	CASEA("c02-size-4097", c02_oversize, 0),
	CASEA("c02-size-1MiB", c02_oversize, 1),
	CASEA("c02-size-max", c02_oversize, 2),
	CASE("c03-vring-addr-short", c03_short_vring_addr),
	CASE("c03-no-stale-bytes", c03_no_stale_bytes),
	CASE("c03-sizes", c03_sizes),
	CASE("c03-mem-table-size", c03_mem_table_size),
	CASE("c03-get-with-payload", c03_get_with_payload),
	CASEA("c04-version-0", c04_flags, 0),
	CASEA("c04-version-2", c04_flags, 1),
	CASEA("c04-version-3", c04_flags, 2),
	CASEA("c04-reply-bit", c04_flags, 3),
	CASEA("c04-flag-0x10", c04_flags, 4),
	CASEA("c04-flag-bit31", c04_flags, 5),
	CASEA("c04-flag-0x100", c04_flags, 6),
	CASE("c05-unknown-ids", c05_unknown_ids),
	CASE("c05-not-negotiated", c05_not_negotiated),
	CASE("c05-postcopy-with-mem-slots", c05_postcopy_with_mem_slots),
	CASE("c05-get-not-negotiated", c05_get_not_negotiated),
	CASEA("c06-9-fds", c06_too_many_fds, 0),
	CASEA("c06-64-fds", c06_too_many_fds, 1),
	CASE("c06-fd-on-fdless-request", c06_fd_on_fdless),
	CASE("c06-fd-after-first-byte", c06_fd_after_first_byte),
	CASE("c07-features-not-offered", c07_features),
	CASE("c07-change-while-running", c07_change_while_running),
	CASE("c08-nregions", c08_nregions),
	CASEA("c08-postcopy-empty-region", c08_postcopy_bad_table, 0),
	CASEA("c08-postcopy-empty-region-need-reply", c08_postcopy_bad_table, 1),
	CASEA("c08-postcopy-fd-too-short", c08_postcopy_bad_table, 2),
	CASEA("c08-postcopy-fd-too-short-need-reply", c08_postcopy_bad_table, 3),
	CASEA("c08-postcopy-device-refuses", c08_postcopy_bad_table, 4),
	CASEA("c08-postcopy-device-refuses-need-reply", c08_postcopy_bad_table, 5),
	CASEA("c08-postcopy-no-fd", c08_postcopy_bad_table, 6),
	CASEA("c08-postcopy-no-fd-need-reply", c08_postcopy_bad_table, 7),
	CASE("c09-regions", c09_regions),
	CASE("c10-region-fds", c10_region_fds),
	CASE("c11-mem-slots", c11_mem_slots),
	CASE("c12-remove-under-ring", c12_remove_under_ring),
	CASE("c13-queue-index", c13_queue_index),
	CASE("c13-get-vring-base", c13_get_vring_base),
	CASE("c14-vring-num", c14_vring_num),
	CASE("c15-vring-addr", c15_vring_addr),
	CASE("c16-vring-fds", c16_vring_fds),
	CASE("c17-log-base", c17_log_base),
	CASE("c18-inflight-get", c18_inflight_get),
	CASE("c19-inflight-set", c19_inflight_set),
	CASE("c20-inflight-garbage", c20_inflight_garbage),
	CASE("c21-config", c21_config),
	CASE("c22-iotlb", c22_iotlb),
	CASE("c23-device-state", c23_device_state),
	CASE("c24-reply-on-main", c24_reply_on_main),
	CASE("c24-channel", c24_channel),
	CASE("c24-channel-not-socket", c24_channel_not_socket),
};

static void run_case(const struct bad_case *bc)
{
	struct t_baseline base = t_baseline();
	struct rawc c;
	struct be_state s;
	unsigned errors0 = __atomic_load_n(&H.errors, __ATOMIC_ACQUIRE);

	memset(&c, 0, sizeof(c));
	c.arg = bc->arg;
	raw_open(&c);
	bc->fn(&c);
	vh_endpoint_close(&c.ep);
	/* the back-end notices the end of the connection (its own close, or our hang-up) */
	if (!h_wait_errors(&H, errors0 + 1, 3000))
		T_FAIL("the back-end did not notice the connection ending");
	s = h_state(&H);
	CHECK_EQ(s.connected, 0);
	CHECK_EQ(s.has_channel, 0);
	CHECK_EQ(s.nregions, 0);
	CHECK_BASELINE(base);
	memset(H.beh.fail, 0, sizeof(H.beh.fail));
}

/* After every case: a full, normal session on the next connection. */
static void normal_session(void)
{
	struct vh_frontend *fe = NULL;
	struct vh_frontend_config cfg = { .timeout_ms = 2000 };
	uint64_t f = 0, p = 0, q = 0;
	int mem = ram_fd();
	struct vh_mem_region r = region(0);
	unsigned errors0 = __atomic_load_n(&H.errors, __ATOMIC_ACQUIRE);

	CHECK_EQ(vh_frontend_connect(&fe, H.path, &cfg), 0);
	if (fe) {
		CHECK_EQ(vh_frontend_negotiate(fe, VH_FRONTEND_PROTOCOL_FEATURES & ~PF(XEN_MMAP), &f,
					       &p), 0);
		CHECK_EQ(f, OFFERED);
		CHECK_EQ(vh_frontend_set_features(fe, f), 0);
		CHECK_EQ(vh_frontend_set_owner(fe), 0);
		CHECK_EQ(vh_frontend_get_queue_num(fe, &q), 0);
		CHECK_EQ(q, H_NQ);
		CHECK_EQ(vh_frontend_set_mem_table(fe, &r, &mem, 1), 0);
		CHECK_EQ(vh_frontend_set_vring_num(fe, 0, 256), 0);
		CHECK_EQ(h_state(&H).nregions, 1);
		vh_frontend_free(fe);
		h_wait_errors(&H, errors0 + 1, 3000);
	}
	close(mem);
}

static const char *filter;

static void test_cases(void)
{
	for (size_t i = 0; i < NELEM(cases); i++) {
		int before = t_failures;

		if (filter && !strstr(cases[i].name, filter))
			continue;
		t_current = cases[i].name;
		run_case(&cases[i]);
		normal_session();
		printf("# %s %s\n", t_failures == before ? "pass" : "FAIL", cases[i].name);
	}
	t_current = "test_cases";
}

/* Which classes the table covers: every one from 1 to 24. */
static void test_class_coverage(void)
{
	int seen[25] = { 0 };

	for (size_t i = 0; i < NELEM(cases); i++) {
		int cls = atoi(cases[i].name + 1);

		if (cls >= 1 && cls <= 24)
			seen[cls] = 1;
	}
	for (int cls = 1; cls <= 24; cls++)
		if (!seen[cls])
			T_FAIL("class %d has no case", cls);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_class_coverage),
		T_TEST(test_cases),
	};
	struct vh_backend_config cfg;
	int ret;

	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && argv[1][0] == 'c') {
		filter = argv[1];
		argc = 1;
	}
	h_default_config(&cfg);
	cfg.timeout_ms = BE_TIMEOUT_MS;
	if (h_init(&H, &cfg))
		return 1;
	t_sock_path(H.path, sizeof(H.path), "bad");
	if (vh_backend_listen(H.be, H.path)) {
		fprintf(stderr, "listen failed\n");
		return 1;
	}
	h_start_thread(&H);
	normal_session(); /* warms up the thread, the allocator and the listener */
	ret = t_run(tests, NELEM(tests), argc, argv);
	h_fini(&H);
	return ret;
}
