/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer targets, their corpus generator and the replay driver: the input
 * formats, fd makers, and the per-input leak check.
 *
 * Record stream (back-end dispatch, front-end channel requests):
 *   repeated { u8 fdspec; u16 len (little-endian); len bytes }
 *   fdspec bits 0-3: number of fds sent with the record's first byte (0-15; 9+ overflows what a
 *   message may carry), bits 4-5: what they are (0 memfd 64 KiB read-write, 1 eventfd, 2 pipe
 *   read end, 3 connected socket). Each record is one sendmsg(), so messages can be split
 *   across records and fds can arrive after a message's first byte.
 */
#ifndef LIBVHOST_FUZZ_COMMON_H
#define LIBVHOST_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "testutil.h"

#define FZ_FD_MEMFD 0u
#define FZ_FD_EVENTFD 1u
#define FZ_FD_PIPE 2u
#define FZ_FD_SOCKET 3u
#define FZ_MEMFD_SIZE 0x10000u
#define FZ_MAX_RECORD_FDS 15u

static inline uint8_t fz_fdspec(unsigned nfds, unsigned kind)
{
	return (uint8_t)((nfds & 15u) | ((kind & 3u) << 4));
}

/* Creates one fd of the given kind (the caller closes it after sending). */
static inline int fz_make_fd(unsigned kind)
{
	int p[2];

	switch (kind & 3u) {
	case FZ_FD_MEMFD:
		return t_memfd("fuzz", FZ_MEMFD_SIZE);
	case FZ_FD_EVENTFD:
		return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	case FZ_FD_PIPE:
		if (pipe2(p, O_CLOEXEC))
			return -1;
		close(p[1]);
		return p[0];
	default:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p))
			return -1;
		close(p[1]);
		return p[0];
	}
}

/* Sends len bytes with the fds of fdspec attached, without blocking. Returns what sendmsg did. */
static inline ssize_t fz_send_record(int sock, const uint8_t *buf, size_t len, uint8_t fdspec)
{
	struct iovec iov = { (void *)buf, len };
	unsigned n = fdspec & 15u;
	int fds[FZ_MAX_RECORD_FDS];
	ssize_t r;

	if (!len)
		return 0;
	for (unsigned i = 0; i < n; i++)
		fds[i] = fz_make_fd(fdspec >> 4);
	r = t_sendmsg_fds(sock, &iov, 1, fds, n, MSG_DONTWAIT);
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}

/* Record iterator. */
struct fz_reader {
	const uint8_t *p;
	size_t left;
};

static inline int fz_next(struct fz_reader *rd, uint8_t *fdspec, const uint8_t **buf, size_t *len)
{
	size_t n;

	if (rd->left < 3)
		return 0;
	*fdspec = rd->p[0];
	n = (size_t)rd->p[1] | ((size_t)rd->p[2] << 8);
	rd->p += 3;
	rd->left -= 3;
	if (n > rd->left)
		n = rd->left;
	*buf = rd->p;
	*len = n;
	rd->p += n;
	rd->left -= n;
	return 1;
}

/* Reads and discards everything waiting on sock, closing any fds that came with it. */
static inline void fz_drain(int sock)
{
	for (;;) {
		char buf[8192];
		char control[CMSG_SPACE(sizeof(int) * 64)];
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { 0 };
		struct cmsghdr *cm;
		ssize_t r;

		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = control;
		mh.msg_controllen = sizeof(control);
		r = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (r <= 0)
			return;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
				size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				int fd;

				for (size_t i = 0; i < k; i++) {
					memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
					close(fd);
				}
			}
		}
	}
}

/* The open fds, to say what leaked. */
static inline void fz_list_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[300], target[256];
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = 0;
		fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
	}
	if (d)
		closedir(d);
}

/* Fd and mapping counts must return to what they were after the first input: a leak in any
 * path is a crash the fuzzer reports with its input. */
static inline void fz_check_leaks(const char *target)
{
	static int have;
	static struct t_baseline base;
	struct t_baseline now = t_baseline();

	if (!have) {
		base = now;
		have = 1;
		return;
	}
	if (now.fds != base.fds || now.maps != base.maps) {
		fprintf(stderr, "%s: leak: %d fds (baseline %d), %d mappings (baseline %d)\n", target,
			now.fds, base.fds, now.maps, base.maps);
		fz_list_fds();
		abort();
	}
}

#endif
