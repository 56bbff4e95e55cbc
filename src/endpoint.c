/* SPDX-License-Identifier: MIT */
/*
 * Framing for every vhost-user channel. A message is a 12-byte header plus `size` payload bytes;
 * fds ride with the first byte (SCM_RIGHTS). Errors that leave the stream out of step are sticky.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libvhost/endpoint.h>
#include "internal.h"

#define DEFAULT_TIMEOUT_MS 5000

void vh_endpoint_init(struct vh_endpoint *ep, int fd, const char *name)
{
	memset(ep, 0, sizeof(*ep));
	ep->fd = fd;
	ep->timeout_ms = DEFAULT_TIMEOUT_MS;
	ep->name = name ? name : "endpoint";
}

void vh_endpoint_close(struct vh_endpoint *ep)
{
	if (ep->fd >= 0)
		vhp_close(ep->fd);
	ep->fd = -1;
	if (!ep->error)
		ep->error = -ENOTCONN;
}

int vh_endpoint_fd(const struct vh_endpoint *ep)
{
	return ep->fd;
}

void vh_close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			vhp_close(fds[i]);
		fds[i] = -1;
	}
}

static int fail(struct vh_endpoint *ep, int err)
{
	if (!ep->error)
		ep->error = err;
	vhp_dbg(&ep->log, "%s: stream error %d", ep->name, err);
	return err;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is readable/writable or the deadline (-1 = none) passes. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int timeout = -1;
		int r;

		if (deadline >= 0) {
			int64_t left = deadline - now_ms();

			/* A deadline already reached still polls once: wait_ms 0 means "only if
			 * data is already there", not "never". */
			timeout = left <= 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
		}
		r = poll(&pfd, 1, timeout);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int vh_endpoint_send(struct vh_endpoint *ep, const struct vh_msg_hdr *hdr, const void *payload,
		     const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VH_USER_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov[2];
	size_t total, sent = 0;
	int64_t deadline;

	if (ep->error)
		return ep->error;
	if (ep->fd < 0)
		return -ENOTCONN;
	if (hdr->size > VH_USER_MAX_PAYLOAD || nfds > VH_USER_MAX_FDS || (hdr->size && !payload))
		return -EINVAL;
	total = sizeof(*hdr) + hdr->size;
	deadline = ep->timeout_ms >= 0 ? now_ms() + ep->timeout_ms : -1;

	while (sent < total) {
		struct msghdr mh = { 0 };
		unsigned niov = 0;
		ssize_t n;

		/* Gather what is left of the header and payload. */
		if (sent < sizeof(*hdr)) {
			iov[niov].iov_base = (char *)hdr + sent;
			iov[niov].iov_len = sizeof(*hdr) - sent;
			niov++;
			if (hdr->size) {
				iov[niov].iov_base = (void *)payload;
				iov[niov].iov_len = hdr->size;
				niov++;
			}
		} else {
			iov[niov].iov_base = (char *)payload + (sent - sizeof(*hdr));
			iov[niov].iov_len = total - sent;
			niov++;
		}
		mh.msg_iov = iov;
		mh.msg_iovlen = niov;
		/* fds travel only with the first byte of the message. */
		if (sent == 0 && nfds) {
			struct cmsghdr *cm;

			memset(&control, 0, sizeof(control));
			mh.msg_control = control.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
		}
		n = sendmsg(ep->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(ep->fd, POLLOUT, deadline);

			if (r)
				return fail(ep, r);
			continue;
		}
		if (n < 0 && (errno == EBADF || errno == EINVAL) && sent == 0)
			return -errno; /* e.g. a bad fd to pass: nothing was sent */
		return fail(ep, n < 0 ? (errno == EPIPE ? -ECONNRESET : -errno) : -ECONNRESET);
	}
	return 0;
}

/*
 * Reads exactly len bytes into buf. Ancillary fds are accepted only while `fds_ok` (the first
 * recvmsg of a message); they are appended to fds (count in nfds).
 */
static int read_exact(struct vh_endpoint *ep, void *buf, size_t len, int *fds, unsigned *nfds,
		      int *first, int64_t deadline)
{
	size_t got = 0;

	while (got < len) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * VH_USER_MAX_FDS)];
			struct cmsghdr align;
		} control;
		struct iovec iov = { (char *)buf + got, len - got };
		struct msghdr mh = { 0 };
		struct cmsghdr *cm;
		int bad = 0;
		ssize_t n;

		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		n = recvmsg(ep->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				int r = wait_fd(ep->fd, POLLIN, deadline);

				if (r)
					return r;
				continue;
			}
			return errno == EPIPE ? -ECONNRESET : -errno;
		}
		/* Collect every fd first so that each has an owner, then judge. */
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			size_t k, count;
			int *data;

			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
				bad = 1;
				continue;
			}
			count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			data = (int *)CMSG_DATA(cm);
			for (k = 0; k < count; k++) {
				int fd;

				memcpy(&fd, data + k, sizeof(fd));
				if (*nfds < VH_USER_MAX_FDS && *first)
					fds[(*nfds)++] = fd;
				else {
					vhp_close(fd);
					bad = 1;
				}
			}
		}
		if (mh.msg_flags & MSG_CTRUNC)
			bad = 1;
		if (bad)
			return -EBADMSG;
		if (n == 0)
			return -ECONNRESET;
		*first = 0;
		got += (size_t)n;
	}
	return 0;
}

int vh_endpoint_recv(struct vh_endpoint *ep, struct vh_msg *msg, int *fds, unsigned *nfds,
		     int wait_ms)
{
	int64_t deadline;
	int first = 1;
	int r;

	*nfds = 0;
	if (ep->error)
		return ep->error;
	if (ep->fd < 0)
		return -ENOTCONN;

	/* Wait for the first byte without consuming anything: a timeout here is harmless. Once a
	 * message has started, a peer that stalls half-way is bounded by timeout_ms. */
	r = wait_fd(ep->fd, POLLIN, wait_ms >= 0 ? now_ms() + wait_ms : -1);
	if (r == -ETIMEDOUT)
		return -EAGAIN;
	if (r)
		return fail(ep, r);
	deadline = ep->timeout_ms >= 0 ? now_ms() + ep->timeout_ms : -1;

	r = read_exact(ep, &msg->hdr, sizeof(msg->hdr), fds, nfds, &first, deadline);
	if (r)
		goto out_err;
	if (msg->hdr.size > VH_USER_MAX_PAYLOAD) {
		r = -EMSGSIZE;
		goto out_err;
	}
	if (msg->hdr.size) {
		if (ep->timeout_ms >= 0)
			deadline = now_ms() + ep->timeout_ms;
		r = read_exact(ep, &msg->payload, msg->hdr.size, fds, nfds, &first, deadline);
		if (r)
			goto out_err;
	}
	return 0;

out_err:
	vh_close_fds(fds, *nfds);
	*nfds = 0;
	return fail(ep, r);
}
