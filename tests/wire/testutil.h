/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the wire, protocol and fuzz tests: checks that report and count
 * failures instead of aborting, resource counting (/proc/self/fd, /proc/self/maps), fd identity
 * and a tiny test runner. Header-only so each test program stays one file.
 */
#ifndef LIBVHOST_TESTUTIL_H
#define LIBVHOST_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int t_failures;
static const char *t_current = "";

#define T_FAIL(...)                                                                  \
	do {                                                                         \
		fprintf(stderr, "FAIL [%s] %s:%d: ", t_current, __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                                        \
		fputc('\n', stderr);                                                 \
		t_failures++;                                                        \
	} while (0)

#define CHECK(cond)                                      \
	do {                                             \
		if (!(cond))                             \
			T_FAIL("CHECK(%s)", #cond);      \
	} while (0)

/* Integer equality, printing both sides (and the errno name for negative values). */
#define CHECK_EQ(a, b)                                                                     \
	do {                                                                               \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);                    \
		if (t_a_ != t_b_)                                                          \
			T_FAIL("%s == %lld (%s), expected %s == %lld (%s)", #a, t_a_,      \
			       t_errname(t_a_), #b, t_b_, t_errname(t_b_));                \
	} while (0)

/* Like CHECK_EQ with a case label (for table-driven loops). */
#define CHECK_EQ_M(a, b, ...)                                                              \
	do {                                                                               \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);                    \
		if (t_a_ != t_b_) {                                                        \
			char t_m_[256];                                                    \
			snprintf(t_m_, sizeof(t_m_), __VA_ARGS__);                         \
			T_FAIL("%s: %s == %lld (%s), expected %lld (%s)", t_m_, #a, t_a_,  \
			       t_errname(t_a_), t_b_, t_errname(t_b_));                    \
		}                                                                          \
	} while (0)

static inline const char *t_errname(long long v)
{
	static __thread char buf[32];
	const char *n;

	if (v >= 0 || v < -4095)
		return "";
	n = strerrorname_np((int)-v);
	snprintf(buf, sizeof(buf), "-%s", n ? n : "?");
	return buf;
}

/* Open fds of this process, not counting the directory stream used to count them. */
static inline int t_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#ifndef T_ASAN
#define T_ASAN 0
#endif

/*
 * Number of mappings (/proc/self/maps lines). Under ASan or valgrind the allocator and the tool
 * itself grow private anonymous mappings at will, so there only file-backed and shared mappings
 * are counted: those are what a leaked guest-memory, log or inflight mapping looks like.
 */
static inline int t_count_maps(void)
{
	static int mode = -1; /* 1: count file-backed and shared mappings only */
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0;

	if (!f)
		return -1;
	if (mode < 0) {
		mode = T_ASAN;
		while (!mode && fgets(line, sizeof(line), f))
			if (strstr(line, "vgpreload"))
				mode = 1;
		rewind(f);
	}
	while (fgets(line, sizeof(line), f)) {
		char perms[8] = "";
		unsigned long inode = 0;
		int path = 0;

		if (!strchr(line, '\n'))
			continue; /* a path longer than the buffer: counted by its last piece */
		if (mode) {
			if (sscanf(line, "%*s %7s %*s %*s %lu %n", perms, &inode, &path) < 2)
				continue;
			if (perms[3] != 's' && inode == 0 && line[path] != '/')
				continue;
		}
		n++;
	}
	fclose(f);
	return n;
}

struct t_baseline {
	int fds;
	int maps;
};

static inline struct t_baseline t_baseline(void)
{
	struct t_baseline b = { t_count_fds(), t_count_maps() };

	return b;
}

/* Checks fd and mapping counts are back to b. Mappings settle asynchronously only when other
 * threads run, so the caller must have joined them. */
#define CHECK_BASELINE(b)                                                               \
	do {                                                                            \
		int t_f_ = t_count_fds(), t_m_ = t_count_maps();                        \
		if (t_f_ != (b).fds)                                                    \
			T_FAIL("fd count %d, baseline %d", t_f_, (b).fds);              \
		if (t_m_ != (b).maps)                                                   \
			T_FAIL("mapping count %d, baseline %d", t_m_, (b).maps);        \
	} while (0)

#define CHECK_FDS_BASELINE(b)                                                           \
	do {                                                                            \
		int t_f_ = t_count_fds();                                               \
		if (t_f_ != (b).fds)                                                    \
			T_FAIL("fd count %d, baseline %d", t_f_, (b).fds);              \
	} while (0)

/* 1 if a and b refer to the same open file (same inode on the same device). */
static inline int t_same_file(int a, int b)
{
	struct stat sa, sb;

	if (a < 0 || b < 0 || fstat(a, &sa) || fstat(b, &sb))
		return 0;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static inline int t_is_cloexec(int fd)
{
	int f = fcntl(fd, F_GETFD);

	return f >= 0 && (f & FD_CLOEXEC);
}

/* A memfd of size bytes: each has its own inode, so fd identity can be checked. */
static inline int t_memfd(const char *name, size_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd >= 0 && size && ftruncate(fd, (off_t)size)) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline int64_t t_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void t_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* One sendmsg() of iov with nfds (<= 64) fds as SCM_RIGHTS; no retries. */
static inline ssize_t t_sendmsg_fds(int sock, const struct iovec *iov, int niov, const int *fds,
				    unsigned nfds, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 64)];
		struct cmsghdr align;
	} control;
	struct msghdr mh = { 0 };

	if (nfds > 64) {
		errno = EINVAL;
		return -1;
	}
	mh.msg_iov = (struct iovec *)iov;
	mh.msg_iovlen = (size_t)niov;
	if (nfds) {
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
	return sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
}

/* A unique socket path under /tmp for this process. */
static inline void t_sock_path(char *buf, size_t len, const char *tag)
{
	static int seq;

	snprintf(buf, len, "/tmp/vh-test-%d-%s-%d.sock", (int)getpid(), tag, seq++);
	unlink(buf);
}

/* ---- Runner --------------------------------------------------------------------------------
 * Each program lists its tests; argv[1] (optional) selects the tests whose names contain it. */

struct t_test {
	const char *name;
	void (*fn)(void);
};

static inline int t_run(const struct t_test *tests, size_t n, int argc, char **argv)
{
	int ran = 0, failed_tests = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n; i++) {
		int before = t_failures;

		if (argc > 1 && !strstr(tests[i].name, argv[1]))
			continue;
		t_current = tests[i].name;
		tests[i].fn();
		ran++;
		if (t_failures != before) {
			failed_tests++;
			printf("not ok %d - %s\n", ran, tests[i].name);
		} else {
			printf("ok %d - %s\n", ran, tests[i].name);
		}
	}
	printf("1..%d\n", ran);
	printf("# %d tests, %d failed, %d failed checks\n", ran, failed_tests, t_failures);
	return failed_tests ? 1 : 0;
}

#define T_TEST(fn) { #fn, fn }

#endif
