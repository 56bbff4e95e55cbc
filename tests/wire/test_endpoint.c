/* SPDX-License-Identifier: MIT */
/*
 * The endpoint over a socketpair: framing, fd passing (identity by inode), every receive error
 * with its fds closed, timeouts, partial reads and writes.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <libvhost/endpoint.h>
#include "testutil.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct pair {
	struct vh_endpoint ep; /* the endpoint under test */
	int peer;              /* raw other end */
};

static void pair_open(struct pair *p, int timeout_ms)
{
	int sv[2];

	if (vh_socketpair(sv)) {
		T_FAIL("socketpair: %s", strerror(errno));
		sv[0] = sv[1] = -1;
	}
	vh_endpoint_init(&p->ep, sv[0], "test");
	p->ep.timeout_ms = timeout_ms;
	p->peer = sv[1];
}

static void pair_close(struct pair *p)
{
	vh_endpoint_close(&p->ep);
	if (p->peer >= 0)
		close(p->peer);
	p->peer = -1;
}

/* Raw sendmsg of len bytes with nfds fds (SCM_RIGHTS), no retries. */
static ssize_t raw_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	struct iovec iov = { (void *)buf, len };

	return t_sendmsg_fds(sock, &iov, 1, fds, nfds, 0);
}

/* Raw recv of one whole message from the peer side (header then payload). */
static int raw_recv_msg(int sock, struct vh_msg *m, int *fds, unsigned *nfds)
{
	char control[CMSG_SPACE(sizeof(int) * 16)];
	struct iovec iov = { &m->hdr, sizeof(m->hdr) };
	struct msghdr mh = { 0 };
	struct cmsghdr *cm;
	ssize_t n;

	*nfds = 0;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = control;
	mh.msg_controllen = sizeof(control);
	n = recvmsg(sock, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC);
	if (n != (ssize_t)sizeof(m->hdr))
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		unsigned k = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		memcpy(fds + *nfds, CMSG_DATA(cm), k * sizeof(int));
		*nfds += k;
	}
	if (m->hdr.size > VH_USER_MAX_PAYLOAD)
		return -1;
	if (m->hdr.size && recv(sock, &m->payload, m->hdr.size, MSG_WAITALL) != (ssize_t)m->hdr.size)
		return -1;
	return 0;
}

static void fill_pattern(void *buf, size_t len, unsigned seed)
{
	uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* ---- send / recv round trips ------------------------------------------------------------------ */

/* 0..8 fds, in both directions through the endpoint, identity checked by inode. */
static void test_send_recv_fds(void)
{
	struct t_baseline base = t_baseline();

	for (unsigned n = 0; n <= VH_USER_MAX_FDS; n++) {
		struct vh_endpoint a, b;
		int sv[2], sent[VH_USER_MAX_FDS], got[VH_USER_MAX_FDS];
		static struct vh_msg in, out;
		unsigned ngot = 99;

		CHECK_EQ(vh_socketpair(sv), 0);
		vh_endpoint_init(&a, sv[0], "a");
		vh_endpoint_init(&b, sv[1], "b");
		for (unsigned i = 0; i < n; i++)
			sent[i] = t_memfd("ep", 4096 * (i + 1));
		memset(&out, 0, sizeof(out));
		out.hdr.request = VH_USER_SET_MEM_TABLE;
		out.hdr.flags = VH_USER_VERSION | VH_USER_FLAG_NEED_REPLY;
		out.hdr.size = 8 + 32 * n;
		fill_pattern(&out.payload, out.hdr.size, n);
		CHECK_EQ_M(vh_endpoint_send(&a, &out.hdr, &out.payload, sent, n), 0, "send %u fds", n);
		memset(&in, 0xee, sizeof(in));
		CHECK_EQ_M(vh_endpoint_recv(&b, &in, got, &ngot, 1000), 0, "recv %u fds", n);
		CHECK_EQ_M(ngot, n, "fd count");
		CHECK(!memcmp(&in.hdr, &out.hdr, sizeof(in.hdr)));
		CHECK(!memcmp(&in.payload, &out.payload, out.hdr.size));
		for (unsigned i = 0; i < n && i < ngot; i++) {
			CHECK(got[i] != sent[i]);
			if (!t_same_file(got[i], sent[i]))
				T_FAIL("%u fds: fd %u is not the file sent", n, i);
			if (!t_is_cloexec(got[i]))
				T_FAIL("%u fds: fd %u received without close-on-exec", n, i);
		}
		/* and back, b -> a, with the received fds */
		out.hdr.flags = VH_USER_VERSION | VH_USER_FLAG_REPLY;
		CHECK_EQ(vh_endpoint_send(&b, &out.hdr, &out.payload, got, ngot), 0);
		{
			int back[VH_USER_MAX_FDS];
			unsigned nback = 0;

			CHECK_EQ(vh_endpoint_recv(&a, &in, back, &nback, 1000), 0);
			CHECK_EQ(nback, n);
			for (unsigned i = 0; i < n && i < nback; i++)
				CHECK(t_same_file(back[i], sent[i]));
			vh_close_fds(back, nback);
			for (unsigned i = 0; i < nback; i++)
				CHECK_EQ(back[i], -1);
		}
		vh_close_fds(got, ngot);
		vh_close_fds(sent, n);
		vh_endpoint_close(&a);
		vh_endpoint_close(&b);
		CHECK_EQ(vh_endpoint_fd(&a), -1);
		vh_endpoint_close(&a); /* twice is fine */
	}
	CHECK_BASELINE(base);
}

/* Several messages back to back in one stream keep their boundaries, with the largest payload. */
static void test_back_to_back(void)
{
	struct t_baseline base = t_baseline();
	static struct vh_msg out, in;
	struct pair p;
	int fd = t_memfd("b2b", 0), got[VH_USER_MAX_FDS];
	unsigned ngot;
	struct vh_endpoint peer;

	pair_open(&p, 1000);
	vh_endpoint_init(&peer, p.peer, "peer");
	p.peer = -1;
	for (unsigned i = 0; i < 3; i++) {
		out.hdr.request = 1 + i;
		out.hdr.flags = VH_USER_VERSION;
		out.hdr.size = i == 1 ? VH_USER_MAX_PAYLOAD : 8 * i;
		fill_pattern(&out.payload, out.hdr.size, i);
		CHECK_EQ(vh_endpoint_send(&peer, &out.hdr, &out.payload, &fd, i == 2), 0);
	}
	for (unsigned i = 0; i < 3; i++) {
		out.hdr.request = 1 + i;
		out.hdr.size = i == 1 ? VH_USER_MAX_PAYLOAD : 8 * i;
		fill_pattern(&out.payload, out.hdr.size, i);
		CHECK_EQ(vh_endpoint_recv(&p.ep, &in, got, &ngot, 1000), 0);
		CHECK_EQ(in.hdr.request, 1 + i);
		CHECK_EQ(in.hdr.size, out.hdr.size);
		CHECK(!memcmp(&in.payload, &out.payload, out.hdr.size));
		CHECK_EQ(ngot, i == 2);
		if (ngot)
			CHECK(t_same_file(got[0], fd));
		vh_close_fds(got, ngot);
	}
	vh_endpoint_close(&peer);
	close(fd);
	pair_close(&p);
	CHECK_BASELINE(base);
}

/* wait_ms bounds only the wait for the first byte: -EAGAIN, not sticky. */
static void test_recv_nothing(void)
{
	struct t_baseline base = t_baseline();
	static struct vh_msg m;
	struct pair p;
	int fds[VH_USER_MAX_FDS];
	unsigned nfds = 5;
	int64_t t0;
	struct vh_msg_hdr h = { VH_USER_GET_FEATURES, VH_USER_VERSION, 0 };

	pair_open(&p, 1000);
	CHECK_EQ(vh_endpoint_recv(&p.ep, &m, fds, &nfds, 0), -EAGAIN);
	CHECK_EQ(nfds, 0);
	t0 = t_now_ms();
	CHECK_EQ(vh_endpoint_recv(&p.ep, &m, fds, &nfds, 50), -EAGAIN);
	CHECK(t_now_ms() - t0 >= 45);
	CHECK_EQ(p.ep.error, 0);
	CHECK_EQ(raw_send(p.peer, &h, sizeof(h), NULL, 0), (ssize_t)sizeof(h));
	CHECK_EQ(vh_endpoint_recv(&p.ep, &m, fds, &nfds, 0), 0);
	CHECK_EQ(m.hdr.request, VH_USER_GET_FEATURES);
	pair_close(&p);
	CHECK_BASELINE(base);
}

/* ---- receive errors ------------------------------------------------------------------------------ */

/* More than 8 fds with one message: MSG_CTRUNC, -EBADMSG, and every fd closed (the ones the
 * kernel installed and the ones it dropped). */
static void test_too_many_fds(void)
{
	static const unsigned counts[] = { 9, 10, 16, 64 };

	for (size_t c = 0; c < NELEM(counts); c++) {
		struct t_baseline base = t_baseline();
		struct vh_msg_hdr h = { VH_USER_SET_MEM_TABLE, VH_USER_VERSION, 0 };
		static struct vh_msg m;
		int fds[64], got[VH_USER_MAX_FDS];
		unsigned ngot = 7, n = counts[c];
		struct pair p;

		pair_open(&p, 1000);
		for (unsigned i = 0; i < n; i++)
			fds[i] = t_memfd("many", 0);
		CHECK_EQ(raw_send(p.peer, &h, sizeof(h), fds, n), (ssize_t)sizeof(h));
		vh_close_fds(fds, n);
		CHECK_EQ_M(vh_endpoint_recv(&p.ep, &m, got, &ngot, 1000), -EBADMSG, "%u fds", n);
		CHECK_EQ(ngot, 0);
		/* sticky */
		CHECK_EQ(vh_endpoint_recv(&p.ep, &m, got, &ngot, 0), -EBADMSG);
		CHECK_EQ(p.ep.error, -EBADMSG);
		pair_close(&p);
		CHECK_BASELINE(base);
	}
}

/* fds on a recvmsg after the first one of the message (here: riding with the payload). */
static void test_fds_on_later_chunk(void)
{
	struct t_baseline base;
	struct vh_msg_hdr h = { VH_USER_SET_VRING_KICK, VH_USER_VERSION, 8 };
	uint64_t payload = 0;
	static struct vh_msg m;
	int fd = t_memfd("late", 0), first = t_memfd("first", 0), got[VH_USER_MAX_FDS];
	unsigned ngot = 3;
	struct pair p;

	base = t_baseline();
	/* header alone (12 bytes, exactly what the first read asks for), then the payload with fds */
	pair_open(&p, 1000);
	CHECK_EQ(raw_send(p.peer, &h, sizeof(h), NULL, 0), (ssize_t)sizeof(h));
	CHECK_EQ(raw_send(p.peer, &payload, 8, &fd, 1), 8);
	CHECK_EQ(vh_endpoint_recv(&p.ep, &m, got, &ngot, 1000), -EBADMSG);
	CHECK_EQ(ngot, 0);
	pair_close(&p);
	CHECK_BASELINE(base);

	/* fds with the first byte and more with the payload: both sets closed */
	pair_open(&p, 1000);
	CHECK_EQ(raw_send(p.peer, &h, sizeof(h), &first, 1), (ssize_t)sizeof(h));
	CHECK_EQ(raw_send(p.peer, &payload, 8, &fd, 1), 8);
	CHECK_EQ(vh_endpoint_recv(&p.ep, &m, got, &ngot, 1000), -EBADMSG);
	CHECK_EQ(ngot, 0);
	pair_close(&p);
	CHECK_BASELINE(base);
	close(fd);
	close(first);
}

/* EOF inside the header, after the header, and inside the payload: -ECONNRESET, fds closed. */
static void test_eof(void)
{
	static const struct { unsigned hdr_bytes, payload_bytes, with_fd; } cases[] = {
		{ 0, 0, 0 }, { 1, 0, 0 }, { 6, 0, 1 }, { 11, 0, 1 }, { 12, 0, 1 }, { 12, 4, 1 },
		{ 12, 39, 1 },
	};

	for (size_t c = 0; c < NELEM(cases); c++) {
		struct t_baseline base = t_baseline();
		struct vh_msg_hdr h = { VH_USER_SET_VRING_ADDR, VH_USER_VERSION, 40 };
		uint8_t buf[12 + 40] = { 0 };
		static struct vh_msg m;
		int fd = t_memfd("eof", 0), got[VH_USER_MAX_FDS];
		unsigned ngot = 3, len = cases[c].hdr_bytes + cases[c].payload_bytes;
		struct pair p;

		memcpy(buf, &h, sizeof(h));
		pair_open(&p, 1000);
		if (len)
			CHECK_EQ(raw_send(p.peer, buf, len, &fd, cases[c].with_fd), (ssize_t)len);
		close(p.peer);
		p.peer = -1;
		close(fd);
		CHECK_EQ_M(vh_endpoint_recv(&p.ep, &m, got, &ngot, 1000), -ECONNRESET,
			   "EOF after %u header + %u payload bytes", cases[c].hdr_bytes,
			   cases[c].payload_bytes);
		CHECK_EQ(ngot, 0);
		CHECK_EQ(vh_endpoint_recv(&p.ep, &m, got, &ngot, 0), -ECONNRESET);
		pair_close(&p);
		CHECK_BASELINE(base);
	}
}

/* size above the cap: -EMSGSIZE without reading on, the header's fds closed. */
static void test_oversize(void)
{
	static const uint32_t sizes[] = { VH_USER_MAX_PAYLOAD + 1, 65536, UINT32_MAX };

	for (size_t c = 0; c < NELEM(sizes); c++) {
		struct t_baseline base = t_baseline();
		struct vh_msg_hdr h = { VH_USER_SET_CONFIG, VH_USER_VERSION, sizes[c] };
		static struct vh_msg m;
		int fds[2] = { t_memfd("big", 0), t_memfd("big2", 0) }, got[VH_USER_MAX_FDS];
		unsigned ngot = 3;
		struct pair p;

		pair_open(&p, 1000);
		CHECK_EQ(raw_send(p.peer, &h, sizeof(h), fds, 2), (ssize_t)sizeof(h));
		vh_close_fds(fds, 2);
		CHECK_EQ_M(vh_endpoint_recv(&p.ep, &m, got, &ngot, 1000), -EMSGSIZE, "size %u",
			   sizes[c]);
		CHECK_EQ(ngot, 0);
		CHECK_EQ(vh_endpoint_recv(&p.ep, &m, got, &ngot, 0), -EMSGSIZE);
		pair_close(&p);
		CHECK_BASELINE(base);
	}
}

/* A peer that stalls half-way: -ETIMEDOUT after about timeout_ms, fds closed. */
static void test_stall(void)
{
	static const unsigned stop_after[] = { 1, 11, 12, 20 };

	for (size_t c = 0; c < NELEM(stop_after); c++) {
		struct t_baseline base = t_baseline();
		struct vh_msg_hdr h = { VH_USER_SET_VRING_ADDR, VH_USER_VERSION, 40 };
		uint8_t buf[12 + 40] = { 0 };
		static struct vh_msg m;
		int fd = t_memfd("stall", 0), got[VH_USER_MAX_FDS];
		unsigned ngot = 3;
		struct pair p;
		int64_t t0, dt;

		memcpy(buf, &h, sizeof(h));
		pair_open(&p, 100);
		CHECK_EQ(raw_send(p.peer, buf, stop_after[c], &fd, 1), (ssize_t)stop_after[c]);
		close(fd);
		t0 = t_now_ms();
		CHECK_EQ_M(vh_endpoint_recv(&p.ep, &m, got, &ngot, 1000), -ETIMEDOUT,
			   "stall after %u bytes", stop_after[c]);
		dt = t_now_ms() - t0;
		if (dt < 90 || dt > 1000)
			T_FAIL("stall after %u bytes: timed out after %lld ms (timeout 100)",
			       stop_after[c], (long long)dt);
		CHECK_EQ(ngot, 0);
		CHECK_EQ(vh_endpoint_recv(&p.ep, &m, got, &ngot, 0), -ETIMEDOUT);
		pair_close(&p);
		CHECK_BASELINE(base);
	}
}

/* ---- partial reads and writes ------------------------------------------------------------------ */

struct trickle {
	int sock;
	const uint8_t *buf;
	size_t len;
	int fd;           /* attached to the first byte */
	unsigned delay_us;
	int result;
};

static void *trickle_writer(void *arg)
{
	struct trickle *t = arg;

	t->result = 0;
	for (size_t i = 0; i < t->len; i++) {
		struct timespec ts = { 0, (long)t->delay_us * 1000 };

		if (raw_send(t->sock, t->buf + i, 1, &t->fd, i == 0 && t->fd >= 0) != 1) {
			t->result = -errno;
			break;
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* A writer sending one byte at a time, from a thread: the message is reassembled, its fd (sent
 * with the first byte) delivered. */
static void test_trickle_reassembly(void)
{
	static uint8_t buf[12 + 300];
	static struct vh_msg m;
	struct vh_msg_hdr h = { VH_USER_SET_CONFIG, VH_USER_VERSION, 300 };
	int fd = t_memfd("trickle", 0), got[VH_USER_MAX_FDS];
	unsigned ngot = 0;
	struct trickle t;
	pthread_t th;
	struct pair p;
	struct t_baseline base;

	/* Warm up the thread machinery so its first stack mapping is not counted. */
	pthread_create(&th, NULL, trickle_writer, &(struct trickle){ -1, buf, 0, -1, 0, 0 });
	pthread_join(th, NULL);
	base = t_baseline();

	memcpy(buf, &h, sizeof(h));
	fill_pattern(buf + 12, 300, 77);
	pair_open(&p, 2000);
	t = (struct trickle){ p.peer, buf, sizeof(buf), fd, 200, 0 };
	pthread_create(&th, NULL, trickle_writer, &t);
	CHECK_EQ(vh_endpoint_recv(&p.ep, &m, got, &ngot, 2000), 0);
	pthread_join(th, NULL);
	CHECK_EQ(t.result, 0);
	CHECK_EQ(m.hdr.request, VH_USER_SET_CONFIG);
	CHECK_EQ(m.hdr.size, 300);
	CHECK(!memcmp(&m.payload, buf + 12, 300));
	CHECK_EQ(ngot, 1);
	if (ngot == 1)
		CHECK(t_same_file(got[0], fd));
	vh_close_fds(got, ngot);
	pair_close(&p);
	CHECK_BASELINE(base);
	close(fd);
}

struct slow_reader {
	int sock;
	unsigned count;
	unsigned ok;
};

static void *slow_reader_fn(void *arg)
{
	struct slow_reader *r = arg;
	static struct vh_msg m;

	t_sleep_ms(50); /* let the writer fill the socket buffer first */
	for (unsigned i = 0; i < r->count; i++) {
		int fds[16];
		unsigned nfds;
		uint8_t want[VH_USER_MAX_PAYLOAD];

		if (raw_recv_msg(r->sock, &m, fds, &nfds))
			break;
		fill_pattern(want, m.hdr.size, i);
		if (m.hdr.request == i + 1 && m.hdr.size == VH_USER_MAX_PAYLOAD &&
		    !memcmp(&m.payload, want, m.hdr.size) && nfds == (i % 3 == 0))
			r->ok++;
		for (unsigned k = 0; k < nfds; k++)
			close(fds[k]);
	}
	return NULL;
}

/* vh_endpoint_send() with a small socket buffer and a slow reader: partial writes resume where
 * they stopped, fds are attached only once. */
static void test_partial_writes(void)
{
	static struct vh_msg out;
	struct slow_reader r;
	int fd = t_memfd("pw", 0), small = 1024;
	pthread_t th;
	struct pair p;

	pair_open(&p, 5000);
	setsockopt(p.ep.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(p.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	r = (struct slow_reader){ p.peer, 12, 0 };
	pthread_create(&th, NULL, slow_reader_fn, &r);
	for (unsigned i = 0; i < r.count; i++) {
		out.hdr.request = i + 1;
		out.hdr.flags = VH_USER_VERSION;
		out.hdr.size = VH_USER_MAX_PAYLOAD;
		fill_pattern(&out.payload, out.hdr.size, i);
		CHECK_EQ_M(vh_endpoint_send(&p.ep, &out.hdr, &out.payload, &fd, i % 3 == 0), 0,
			   "message %u", i);
	}
	pthread_join(th, NULL);
	CHECK_EQ(r.ok, r.count);
	close(fd);
	pair_close(&p);
}

/* A send that cannot finish (nobody reads) times out and is sticky. */
static void test_send_timeout(void)
{
	static struct vh_msg out;
	struct pair p;
	int small = 1024, r = 0;
	int64_t t0;

	pair_open(&p, 100);
	setsockopt(p.ep.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(p.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	out.hdr.request = 1;
	out.hdr.flags = VH_USER_VERSION;
	out.hdr.size = VH_USER_MAX_PAYLOAD;
	t0 = t_now_ms();
	for (unsigned i = 0; i < 1000 && r == 0; i++)
		r = vh_endpoint_send(&p.ep, &out.hdr, &out.payload, NULL, 0);
	CHECK_EQ(r, -ETIMEDOUT);
	CHECK(t_now_ms() - t0 < 2000);
	CHECK_EQ(vh_endpoint_send(&p.ep, &out.hdr, &out.payload, NULL, 0), -ETIMEDOUT);
	pair_close(&p);
}

/* ---- send errors ------------------------------------------------------------------------------------ */

static void test_send_errors(void)
{
	struct t_baseline base = t_baseline();
	static struct vh_msg out;
	int fds[9];
	struct pair p;

	for (unsigned i = 0; i < 9; i++)
		fds[i] = t_memfd("se", 0);
	pair_open(&p, 1000);
	out.hdr.request = 1;
	out.hdr.flags = VH_USER_VERSION;
	out.hdr.size = VH_USER_MAX_PAYLOAD + 1;
	CHECK_EQ(vh_endpoint_send(&p.ep, &out.hdr, &out.payload, NULL, 0), -EINVAL);
	out.hdr.size = 0;
	CHECK_EQ(vh_endpoint_send(&p.ep, &out.hdr, &out.payload, fds, 9), -EINVAL);
	out.hdr.size = 8;
	CHECK_EQ(vh_endpoint_send(&p.ep, &out.hdr, NULL, NULL, 0), -EINVAL);
	CHECK_EQ(p.ep.error, 0); /* local refusals are not sticky */
	{
		int bad = 1000000;

		out.hdr.size = 0;
		CHECK_EQ(vh_endpoint_send(&p.ep, &out.hdr, NULL, &bad, 1), -EBADF);
		CHECK_EQ(p.ep.error, 0);
	}
	CHECK_EQ(vh_endpoint_send(&p.ep, &out.hdr, NULL, fds, 8), 0);
	/* the peer goes away: no SIGPIPE, -ECONNRESET (or -EPIPE), sticky */
	close(p.peer);
	p.peer = -1;
	{
		int r = vh_endpoint_send(&p.ep, &out.hdr, NULL, NULL, 0);

		if (r != -ECONNRESET && r != -EPIPE)
			T_FAIL("send to a closed peer returned %d (%s)", r, t_errname(r));
		CHECK_EQ(vh_endpoint_send(&p.ep, &out.hdr, NULL, NULL, 0), r);
	}
	pair_close(&p);
	/* a closed endpoint */
	{
		static struct vh_msg m;
		unsigned n;

		CHECK(vh_endpoint_send(&p.ep, &out.hdr, NULL, NULL, 0) < 0);
		CHECK(vh_endpoint_recv(&p.ep, &m, fds, &n, 0) < 0);
	}
	vh_close_fds(fds, 9);
	CHECK_BASELINE(base);
}

static void test_close_fds(void)
{
	struct t_baseline base = t_baseline();
	int fds[4] = { t_memfd("c", 0), -1, t_memfd("c", 0), -5 };

	vh_close_fds(fds, 4);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(fds[i], -1);
	CHECK_EQ(fcntl(fds[0], F_GETFD), -1);
	CHECK_BASELINE(base);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_send_recv_fds),
		T_TEST(test_back_to_back),
		T_TEST(test_recv_nothing),
		T_TEST(test_too_many_fds),
		T_TEST(test_fds_on_later_chunk),
		T_TEST(test_eof),
		T_TEST(test_oversize),
		T_TEST(test_stall),
		T_TEST(test_trickle_reassembly),
		T_TEST(test_partial_writes),
		T_TEST(test_send_timeout),
		T_TEST(test_send_errors),
		T_TEST(test_close_fds),
	};

	signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test: the endpoint must avoid it */
	return t_run(tests, NELEM(tests), argc, argv);
}
