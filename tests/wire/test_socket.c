/* SPDX-License-Identifier: MIT */
/* Unix socket set-up: listen (stale, live, not a socket), accept, connect with retries,
 * vh_socket_is_listening(), socket activation. */
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <libvhost/endpoint.h>
#include "testutil.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int bind_unix(const char *path, int type, int do_listen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    (do_listen && listen(fd, 4))) {
		T_FAIL("bind %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void test_listen_accept_connect(void)
{
	struct t_baseline base = t_baseline();
	char path[108];
	int l, c, a;
	char byte = 'x';

	t_sock_path(path, sizeof(path), "lac");
	l = vh_socket_listen(path);
	CHECK(l >= 0);
	CHECK(t_is_cloexec(l));
	CHECK_EQ(vh_socket_is_listening(l), 0);
	c = vh_socket_connect(path, 1, 0);
	CHECK(c >= 0);
	CHECK(t_is_cloexec(c));
	a = vh_socket_accept(l);
	CHECK(a >= 0);
	CHECK(t_is_cloexec(a));
	CHECK_EQ(write(c, &byte, 1), 1);
	byte = 0;
	CHECK_EQ(read(a, &byte, 1), 1);
	CHECK_EQ(byte, 'x');
	CHECK_EQ(vh_socket_is_listening(a), -EINVAL);
	CHECK_EQ(vh_socket_is_listening(c), -EINVAL);
	close(a);
	close(c);
	close(l);
	unlink(path);
	CHECK_BASELINE(base);
}

/* A socket file nobody listens on (a crashed server's) is replaced. */
static void test_listen_stale(void)
{
	struct t_baseline base = t_baseline();
	char path[108];
	struct stat st;
	int s, l, c;

	t_sock_path(path, sizeof(path), "stale");
	s = bind_unix(path, SOCK_STREAM, 1);
	close(s); /* the file stays */
	CHECK_EQ(stat(path, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	l = vh_socket_listen(path);
	CHECK(l >= 0);
	c = vh_socket_connect(path, 1, 0);
	CHECK(c >= 0);
	close(c);
	close(l);
	/* and a bound but never listening one */
	unlink(path);
	s = bind_unix(path, SOCK_STREAM, 0);
	l = vh_socket_listen(path);
	CHECK(l >= 0);
	close(l);
	close(s);
	unlink(path);
	CHECK_BASELINE(base);
}

/* A live server at the path: -EADDRINUSE and the server keeps working. */
static void test_listen_live(void)
{
	struct t_baseline base = t_baseline();
	char path[108];
	int l, l2, c, a;

	t_sock_path(path, sizeof(path), "live");
	l = vh_socket_listen(path);
	CHECK(l >= 0);
	l2 = vh_socket_listen(path);
	CHECK_EQ(l2, -EADDRINUSE);
	/* the probe connection the second listen made is pending in the backlog; drain it */
	a = vh_socket_accept(l);
	if (a >= 0)
		close(a);
	c = vh_socket_connect(path, 1, 0);
	CHECK(c >= 0);
	a = vh_socket_accept(l);
	CHECK(a >= 0);
	close(a);
	close(c);
	close(l);
	unlink(path);
	CHECK_BASELINE(base);
}

/* Not a socket: never removed. */
static void test_listen_not_socket(void)
{
	struct t_baseline base = t_baseline();
	char path[108], dir[108];
	struct stat st;
	int fd;

	t_sock_path(path, sizeof(path), "file");
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "keep", 4), 4);
	close(fd);
	CHECK_EQ(vh_socket_listen(path), -EEXIST);
	CHECK_EQ(stat(path, &st), 0);
	CHECK(S_ISREG(st.st_mode) && st.st_size == 4);
	unlink(path);
	t_sock_path(dir, sizeof(dir), "dir");
	CHECK_EQ(mkdir(dir, 0700), 0);
	CHECK_EQ(vh_socket_listen(dir), -EEXIST);
	rmdir(dir);
	/* a symlink to a socket is not taken for the socket */
	{
		char target[108];
		int l;

		t_sock_path(target, sizeof(target), "target");
		l = vh_socket_listen(target);
		CHECK(l >= 0);
		CHECK_EQ(symlink(target, path), 0);
		CHECK_EQ(vh_socket_listen(path), -EEXIST);
		unlink(path);
		close(l);
		unlink(target);
	}
	CHECK_BASELINE(base);
}

static void test_bad_paths(void)
{
	char longp[200];

	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	CHECK_EQ(vh_socket_listen(longp), -ENAMETOOLONG);
	CHECK_EQ(vh_socket_connect(longp, 1, 0), -ENAMETOOLONG);
	CHECK_EQ(vh_socket_listen(""), -ENAMETOOLONG);
	CHECK(vh_socket_listen(NULL) < 0);
	CHECK(vh_socket_listen("/nonexistent-dir/x.sock") < 0);
}

struct late_server {
	char path[108];
	unsigned delay_ms;
	int listen_fd;
};

static void *late_listen(void *arg)
{
	struct late_server *s = arg;

	t_sleep_ms(s->delay_ms);
	s->listen_fd = vh_socket_listen(s->path);
	return NULL;
}

/* Connect retries while the server is not there yet (ENOENT, then ECONNREFUSED). */
static void test_connect_retry(void)
{
	struct late_server s;
	pthread_t th;
	int c, a;
	int64_t t0;

	t_sock_path(s.path, sizeof(s.path), "retry");
	/* nothing there, few attempts: fails with ENOENT, after about (attempts-1) * delay */
	t0 = t_now_ms();
	CHECK_EQ(vh_socket_connect(s.path, 3, 30), -ENOENT);
	CHECK(t_now_ms() - t0 >= 55);
	/* a stale socket file: ECONNREFUSED */
	close(bind_unix(s.path, SOCK_STREAM, 0));
	CHECK_EQ(vh_socket_connect(s.path, 2, 10), -ECONNREFUSED);
	unlink(s.path);

	s.delay_ms = 150;
	s.listen_fd = -1;
	pthread_create(&th, NULL, late_listen, &s);
	c = vh_socket_connect(s.path, 100, 20);
	pthread_join(th, NULL);
	CHECK(c >= 0);
	CHECK(s.listen_fd >= 0);
	if (s.listen_fd >= 0) {
		a = vh_socket_accept(s.listen_fd);
		CHECK(a >= 0);
		close(a);
		close(s.listen_fd);
	}
	close(c);
	unlink(s.path);
	/* attempts = 0 still tries once */
	CHECK_EQ(vh_socket_connect(s.path, 0, 0), -ENOENT);
}

struct connect_call {
	char path[108];
	unsigned attempts, delay_ms;
	int result;
	int64_t took_ms;
};

static void *connect_thread(void *arg)
{
	struct connect_call *cc = arg;
	int64_t t0 = t_now_ms();

	cc->result = vh_socket_connect(cc->path, cc->attempts, cc->delay_ms);
	cc->took_ms = t_now_ms() - t0;
	return NULL;
}

/* Runs vh_socket_connect() on a thread; fails the test (leaving the thread behind) if it has not
 * returned within limit_ms. Returns 0 when it returned. */
static int connect_within(struct connect_call *cc, unsigned limit_ms)
{
	struct timespec deadline;
	pthread_t th;

	cc->result = 1;
	pthread_create(&th, NULL, connect_thread, cc);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += limit_ms / 1000;
	deadline.tv_nsec += (long)(limit_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	if (pthread_timedjoin_np(th, NULL, &deadline)) {
		T_FAIL("vh_socket_connect(%s, %u, %u) still blocked after %u ms", cc->path,
		       cc->attempts, cc->delay_ms, limit_ms);
		pthread_detach(th);
		return -1;
	}
	return 0;
}

/*
 * A listener whose backlog is full and who never accepts (a hung or hostile server): connect()
 * on a blocking Unix socket would wait for room for ever. Every attempt is bounded (delay_ms,
 * or a second when 0), and vh_socket_listen() takes such a path as in use.
 */
static void test_connect_full_backlog(void)
{
	struct t_baseline base;
	struct connect_call cc = { .attempts = 1, .delay_ms = 0 };
	int l, first = -1, r;

	t_sock_path(cc.path, sizeof(cc.path), "full");
	l = bind_unix(cc.path, SOCK_STREAM, 0);
	CHECK_EQ(listen(l, 0), 0); /* one pending connection fills it */
	first = vh_socket_connect(cc.path, 1, 0);
	CHECK(first >= 0);
	base = t_baseline();
	if (connect_within(&cc, 5000) == 0) {
		CHECK_EQ(cc.result, -EAGAIN);
		CHECK(cc.took_ms >= 900 && cc.took_ms < 3000);
	}
	/* several attempts: each waits delay_ms, then sleeps delay_ms */
	cc.attempts = 3;
	cc.delay_ms = 100;
	if (connect_within(&cc, 5000) == 0) {
		CHECK_EQ(cc.result, -EAGAIN);
		CHECK(cc.took_ms >= 450 && cc.took_ms < 2000);
	}
	/* someone is there: the path is in use, not stale */
	r = vh_socket_listen(cc.path);
	CHECK_EQ(r, -EADDRINUSE);
	if (r >= 0)
		close(r);
	CHECK_BASELINE(base);
	/* once accepted, the next connection goes through, and its socket is a plain one again */
	close(accept4(l, NULL, NULL, SOCK_CLOEXEC));
	cc.attempts = 1;
	cc.delay_ms = 0;
	if (connect_within(&cc, 5000) == 0 && cc.result >= 0) {
		struct timeval tv = { 1, 1 };
		socklen_t len = sizeof(tv);

		CHECK_EQ(getsockopt(cc.result, SOL_SOCKET, SO_SNDTIMEO, &tv, &len), 0);
		CHECK(tv.tv_sec == 0 && tv.tv_usec == 0);
		close(cc.result);
	} else {
		T_FAIL("connect after accept: %d", cc.result);
	}
	close(first);
	close(l);
	unlink(cc.path);
}

static void test_is_listening(void)
{
	struct t_baseline base = t_baseline();
	char path[108];
	int fd, sv[2];

	CHECK_EQ(vh_socket_is_listening(-1), -EBADF);
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	CHECK_EQ(vh_socket_is_listening(fd), -ENOTSOCK);
	close(fd);
	CHECK_EQ(vh_socketpair(sv), 0);
	CHECK(t_is_cloexec(sv[0]) && t_is_cloexec(sv[1]));
	CHECK_EQ(vh_socket_is_listening(sv[0]), -EINVAL);
	close(sv[0]);
	close(sv[1]);
	/* a listening TCP socket is not a Unix one */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		struct sockaddr_in sin = { .sin_family = AF_INET };

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (!bind(fd, (struct sockaddr *)&sin, sizeof(sin)) && !listen(fd, 1))
			CHECK_EQ(vh_socket_is_listening(fd), -EAFNOSUPPORT);
		close(fd);
	}
	/* a listening Unix seqpacket socket is not a stream one */
	t_sock_path(path, sizeof(path), "seq");
	fd = bind_unix(path, SOCK_SEQPACKET, 1);
	CHECK_EQ(vh_socket_is_listening(fd), -ESOCKTNOSUPPORT);
	close(fd);
	unlink(path);
	t_sock_path(path, sizeof(path), "isl");
	fd = bind_unix(path, SOCK_STREAM, 1);
	CHECK_EQ(vh_socket_is_listening(fd), 0);
	close(fd);
	unlink(path);
	CHECK_BASELINE(base);
}

/* LISTEN_PID/LISTEN_FDS: fd 3 is taken only when it is a listening Unix socket for us. */
static void test_activation(void)
{
	char path[108], pid[32];
	int saved = fcntl(3, F_DUPFD_CLOEXEC, 10); /* whatever sits at 3 now */
	int l;

	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	CHECK_EQ(vh_socket_activation_fd(), -ENOENT);
	t_sock_path(path, sizeof(path), "act");
	l = bind_unix(path, SOCK_STREAM, 1);
	CHECK_EQ(dup2(l, 3), 3);
	if (l != 3)
		close(l);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "1", 1);
	CHECK_EQ(vh_socket_activation_fd(), 3);
	CHECK(t_is_cloexec(3));
	setenv("LISTEN_PID", "1", 1); /* for another process */
	CHECK_EQ(vh_socket_activation_fd(), -ENOENT);
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "0", 1);
	CHECK_EQ(vh_socket_activation_fd(), -ENOENT);
	setenv("LISTEN_FDS", "1x", 1);
	CHECK_EQ(vh_socket_activation_fd(), -ENOENT);
	/* fd 3 not listening */
	setenv("LISTEN_FDS", "1", 1);
	close(3);
	CHECK_EQ(vh_socket_activation_fd(), -ENOENT);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unlink(path);
	if (saved >= 0) {
		dup2(saved, 3);
		close(saved);
	}
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		T_TEST(test_listen_accept_connect),
		T_TEST(test_listen_stale),
		T_TEST(test_listen_live),
		T_TEST(test_listen_not_socket),
		T_TEST(test_bad_paths),
		T_TEST(test_connect_retry),
		T_TEST(test_connect_full_backlog),
		T_TEST(test_is_listening),
		T_TEST(test_activation),
	};

	return t_run(tests, NELEM(tests), argc, argv);
}
