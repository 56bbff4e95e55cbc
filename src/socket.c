/* SPDX-License-Identifier: MIT */
/* Unix socket set-up for servers, clients, inherited and activated listeners. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libvhost/endpoint.h>
#include "internal.h"

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	size_t len;

	if (!path)
		return -EINVAL;
	len = strlen(path);
	if (len == 0 || len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

/* How long one attempt waits for room in a full listen backlog when the caller gave no delay. */
#define CONNECT_WAIT_MS 1000u

/*
 * One connection attempt. A listener whose backlog is full and who never accepts would keep a
 * blocking Unix connect() waiting for ever: the socket's send timeout bounds that wait (the
 * attempt then fails with EAGAIN) and is cleared again on the connected socket.
 */
static int try_connect(const struct sockaddr_un *sa, unsigned wait_ms)
{
	struct timeval tv = { wait_ms / 1000, (long)(wait_ms % 1000) * 1000 };
	const struct timeval none = { 0, 0 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		goto fail;
	for (;;) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
			if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none)))
				goto fail;
			return fd;
		}
		if (errno != EINTR)
			break;
	}
fail:
	err = errno == EWOULDBLOCK ? -EAGAIN : -errno;
	vhp_close(fd);
	return err;
}

int vh_socket_listen(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, r;

	r = fill_addr(&sa, path);
	if (r)
		return r;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		/* A socket file: replace it only if nobody answers there (left by a crash). A
		 * listener too busy to take us (EAGAIN) is there all the same. */
		r = try_connect(&sa, CONNECT_WAIT_MS);
		if (r >= 0 || r == -EAGAIN) {
			vhp_close(r);
			return -EADDRINUSE;
		}
		if (r != -ECONNREFUSED)
			return r;
		if (unlink(path) && errno != ENOENT)
			return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16)) {
		r = -errno;
		vhp_close(fd);
		return r;
	}
	return fd;
}

int vh_socket_accept(int listen_fd)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0)
			return fd;
		if (errno != EINTR && errno != ECONNABORTED)
			return -errno;
	}
}

int vh_socket_connect(const char *path, unsigned attempts, unsigned delay_ms)
{
	struct sockaddr_un sa;
	int r;

	r = fill_addr(&sa, path);
	if (r)
		return r;
	if (attempts == 0)
		attempts = 1;
	for (unsigned i = 0; i < attempts; i++) {
		r = try_connect(&sa, delay_ms ? delay_ms : CONNECT_WAIT_MS);
		if (r >= 0)
			return r;
		if (r != -ECONNREFUSED && r != -ENOENT && r != -EAGAIN)
			return r;
		if (i + 1 < attempts && delay_ms) {
			struct timespec ts = { delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L };

			while (nanosleep(&ts, &ts) && errno == EINTR)
				;
		}
	}
	return r;
}

int vh_socket_is_listening(int fd)
{
	int val = 0;
	socklen_t len = sizeof(val);
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);

	if (fd < 0)
		return -EBADF;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len))
		return -errno;
	if (!val)
		return -EINVAL;
	if (getsockname(fd, (struct sockaddr *)&ss, &slen))
		return -errno;
	if (ss.ss_family != AF_UNIX)
		return -EAFNOSUPPORT;
	len = sizeof(val);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &len))
		return -errno;
	return val == SOCK_STREAM ? 0 : -ESOCKTNOSUPPORT;
}

int vh_socket_activation_fd(void)
{
	const char *pid = getenv("LISTEN_PID");
	const char *nfds = getenv("LISTEN_FDS");
	char *end;
	long v;

	if (!pid || !nfds)
		return -ENOENT;
	v = strtol(pid, &end, 10);
	if (*end || v != (long)getpid())
		return -ENOENT;
	v = strtol(nfds, &end, 10);
	if (*end || v < 1)
		return -ENOENT;
	/* SD_LISTEN_FDS_START is 3 by convention. */
	if (vh_socket_is_listening(3))
		return -ENOENT;
	if (fcntl(3, F_SETFD, FD_CLOEXEC))
		return -errno;
	return 3;
}

int vh_socketpair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	return 0;
}
