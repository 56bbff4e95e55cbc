/* SPDX-License-Identifier: MIT */
/*
 * Helpers for driver tests against real peers (qemu-storage-daemon, DPDK testpmd): a private
 * temporary directory, starting a peer program in the background (killed with us if we die),
 * waiting for its socket, stopping it with a bounded wait, and finding a program on PATH
 * (a missing peer is a failure, never a skip).
 */
#ifndef LIBVHOST_DRIVER_PEER_H
#define LIBVHOST_DRIVER_PEER_H

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <libvhost/libvhost.h>
#include "testutil.h"

struct peer {
	pid_t pid;
	char log[256];
};

static char p_dir[64];

static void p_rmdir(void)
{
	char cmd[128];

	if (!p_dir[0] || getenv("LIBVHOST_KEEP_TMP"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "note: could not remove %s\n", p_dir);
}

/* mkdtemp under /tmp, removed at exit. */
static inline const char *p_tmpdir(void)
{
	snprintf(p_dir, sizeof(p_dir), "/tmp/vhdrv-XXXXXX");
	if (!mkdtemp(p_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(p_rmdir);
	return p_dir;
}

/* Full path of prog on PATH; exits with a failure if it is not installed. */
static inline const char *p_need(const char *prog)
{
	static char path[8][512];
	static int slot;
	const char *env = getenv("PATH");
	char *copy, *dir, *save = NULL;

	copy = strdup(env ? env : "/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *out = path[slot % 8];

		snprintf(out, sizeof(path[0]), "%s/%s", dir, prog);
		if (access(out, X_OK) == 0) {
			free(copy);
			slot++;
			return out;
		}
	}
	free(copy);
	fprintf(stderr, "FAIL: %s is not installed (run scripts/deps.sh); a missing peer is a "
			"failure, not a skip\n", prog);
	exit(1);
}

/*
 * Starts argv[0] with stdout/stderr into log and stdin from stdin_path (or /dev/null). The
 * child gets SIGKILL if this process dies. cpu >= 0 pins it to that CPU.
 */
static inline int p_spawn(struct peer *p, char *const argv[], const char *log,
			  const char *stdin_path, int cpu)
{
	pid_t pid;

	snprintf(p->log, sizeof(p->log), "%s", log);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int in, out;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		if (cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
		out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || out < 0)
			_exit(126);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	p->pid = pid;
	return 0;
}

static inline int p_alive(const struct peer *p)
{
	return p->pid > 0 && waitpid(p->pid, NULL, WNOHANG) == 0;
}

/* Waits until path is a socket accepting connections (timeout_ms), failing if the peer died. */
static inline int p_wait_socket(const struct peer *p, const char *path, int timeout_ms)
{
	int64_t end = t_now_ms() + timeout_ms;

	while (t_now_ms() < end) {
		struct stat st;

		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (!p_alive(p))
			return -ECHILD;
		t_sleep_ms(20);
	}
	return -ETIMEDOUT;
}

/* Waits up to timeout_ms for a line containing `what` in the peer's log. */
static inline int p_wait_log(const struct peer *p, const char *what, int timeout_ms)
{
	int64_t end = t_now_ms() + timeout_ms;
	char line[1024];

	while (t_now_ms() < end) {
		FILE *f = fopen(p->log, "re");

		if (f) {
			while (fgets(line, sizeof(line), f)) {
				if (strstr(line, what)) {
					fclose(f);
					return 0;
				}
			}
			fclose(f);
		}
		t_sleep_ms(50);
	}
	return -ETIMEDOUT;
}

static inline void p_dump_log(const struct peer *p, int max_lines)
{
	char line[1024];
	FILE *f = fopen(p->log, "re");
	int n = 0;

	if (!f)
		return;
	fprintf(stderr, "---- %s\n", p->log);
	while (fgets(line, sizeof(line), f) && n++ < max_lines)
		fputs(line, stderr);
	fclose(f);
}

/* SIGTERM, up to 5 s, then SIGKILL; always reaps. Returns the exit status or -1. */
static inline int p_stop(struct peer *p)
{
	int st = -1;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		pid_t r = waitpid(p->pid, &st, WNOHANG);

		if (r == p->pid || r < 0) {
			p->pid = 0;
			return st;
		}
		t_sleep_ms(50);
	}
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	p->pid = 0;
	return st;
}

/* Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced. */
static inline uint64_t p_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static inline void p_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *b = buf;
	uint64_t s = seed | 1;

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(p_rand(&s) >> 24);
}

static inline void p_log_stderr(void *opaque, enum vh_log_level level, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "  [libvhost %d] %s\n", (int)level, msg);
}

#endif
