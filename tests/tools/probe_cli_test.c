/* SPDX-License-Identifier: MIT */
/*
 * Command-line tests of vhost-user-probe: usage errors, sockets that are missing, stale or not
 * sockets at all, and scripted peers (a correct one whose answers must come out decoded, and
 * ones that send garbage, wrong flags, wrong sizes, hang up or never answer).
 *
 *   usage: probe_cli_test PROBE CASE
 *
 * The scripted peer is written here with raw reads and writes (not with the library), so the
 * test does not share a bug with the code under test. Every case runs the probe as a child
 * with a deadline, and removes its temporary directory whatever happens.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *probe_path;
static char tmpdir[64];
static char sock_path[128];
static char out_path[128];
static char err_path[128];
static char out_buf[16384];
static char err_buf[16384];
static int failures;

#define CHECK(cond, ...)                                                                    \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
			fprintf(stderr, __VA_ARGS__);                                       \
			fprintf(stderr, "\n");                                              \
			failures++;                                                         \
		}                                                                           \
	} while (0)

static void cleanup(void)
{
	if (!tmpdir[0])
		return;
	unlink(sock_path);
	unlink(out_path);
	unlink(err_path);
	char p[160];
	snprintf(p, sizeof(p), "%s/file", tmpdir);
	unlink(p);
	rmdir(tmpdir);
	tmpdir[0] = 0;
}

static void read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	buf[0] = 0;
	if (fd < 0)
		return;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	close(fd);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs the probe with args (NULL-terminated), waits at most 20 s. Returns its exit status, or
 * -1 if it was killed by a signal (or had to be). Output lands in out_buf / err_buf. */
static int run_probe(double *elapsed, ...)
{
	const char *argv[48];
	char wrap[512];
	int argc = 0;
	va_list ap;

	/* VH_PROBE_WRAP="valgrind -q ..." runs the probe itself under a checker (scripts/test.sh
	 * does, so the library's error paths on hostile peers are checked for leaks too). */
	const char *w = getenv("VH_PROBE_WRAP");
	if (w && *w) {
		snprintf(wrap, sizeof(wrap), "%s", w);
		for (char *save = NULL, *tok = strtok_r(wrap, " ", &save); tok && argc < 30;
		     tok = strtok_r(NULL, " ", &save))
			argv[argc++] = tok;
	}
	argv[argc++] = probe_path;
	va_start(ap, elapsed);
	for (const char *a; argc < 47 && (a = va_arg(ap, const char *));)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;

	double t0 = now();
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int n = open("/dev/null", O_RDONLY);
		if (o < 0 || e < 0 || n < 0)
			_exit(126);
		dup2(n, 0);
		dup2(o, 1);
		dup2(e, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (now() - t0 > 20) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "probe did not finish within 20 s\n");
			break;
		}
		usleep(10000);
	}
	if (elapsed)
		*elapsed = now() - t0;
	read_file(out_path, out_buf, sizeof(out_buf));
	read_file(err_path, err_buf, sizeof(err_buf));
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -1;
}

static void show(void)
{
	fprintf(stderr, "--- stdout:\n%s--- stderr:\n%s---\n", out_buf, err_buf);
}

/* ---- Scripted peer ------------------------------------------------------------------------ */

enum peer_mode {
	PEER_GOOD,        /* a correct blk-like back-end */
	PEER_NO_PROTOCOL, /* no PROTOCOL_FEATURES bit: only GET_FEATURES is legal */
	PEER_GARBAGE,     /* answers with random bytes */
	PEER_BAD_FLAGS,   /* reply without the REPLY flag */
	PEER_BAD_SIZE,    /* GET_FEATURES reply of 4 bytes */
	PEER_WRONG_ID,    /* reply names another request */
	PEER_HANGUP,      /* closes right after accept */
	PEER_SILENT,      /* reads, never answers */
	PEER_HUGE,        /* header announcing a 4 GiB payload */
	PEER_NO_CONFIG,   /* refuses GET_CONFIG with an empty reply, as libvhost-user does */
};

struct hdr {
	uint32_t request, flags, size;
};

struct peer {
	enum peer_mode mode;
	int listen_fd;
	pthread_t thread;
	/* what the peer saw */
	uint32_t seen[32];
	unsigned nseen;
	uint32_t seen_flags[32];
	uint64_t acked_protocol;
	uint32_t config_offset, config_size;
	int bad_request;          /* a request the peer did not expect */
};

#define OFFER_FEATURES 0x175007e46ull
/* qemu-storage-daemon's set plus INBAND_NOTIFICATIONS (14) and GPA_ADDRESSES (21), which the
 * probe must not accept. */
#define OFFER_PROTOCOL (0x8f2bull | (1ull << 14) | (1ull << 21))
#define EXPECT_ACKED   0x8f2bull

static int wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static int read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		if (!wait_readable(fd, 10000))
			return -1;
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = send(fd, (const char *)buf + done, n - done, MSG_NOSIGNAL);
		if (r <= 0)
			return;
		done += (size_t)r;
	}
}

static void reply(int fd, uint32_t req, uint32_t flags, const void *payload, uint32_t size)
{
	char buf[512];
	struct hdr h = { req, flags, size };

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), payload, size);
	write_full(fd, buf, sizeof(h) + size);
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void serve(struct peer *p, int fd)
{
	for (;;) {
		struct hdr h;
		uint8_t payload[512];

		if (read_full(fd, &h, sizeof(h)))
			return;
		if (h.size > sizeof(payload) || read_full(fd, payload, h.size)) {
			p->bad_request = 1;
			return;
		}
		if (p->nseen < 32) {
			p->seen_flags[p->nseen] = h.flags;
			p->seen[p->nseen++] = h.request;
		}
		switch (p->mode) {
		case PEER_SILENT:
			continue;
		case PEER_GARBAGE: {
			uint8_t junk[64];
			for (unsigned i = 0; i < sizeof(junk); i++)
				junk[i] = (uint8_t)(0xa5 ^ (i * 37));
			write_full(fd, junk, sizeof(junk));
			continue;
		}
		case PEER_HUGE: {
			struct hdr r = { h.request, 0x5, 0xffffffffu };
			write_full(fd, &r, sizeof(r));
			continue;
		}
		default:
			break;
		}

		uint64_t v = 0;
		switch (h.request) {
		case 1: /* GET_FEATURES */
			v = p->mode == PEER_NO_PROTOCOL ? (1ull << 32) : OFFER_FEATURES;
			if (p->mode == PEER_BAD_FLAGS)
				reply(fd, 1, 0x1, &v, 8);
			else if (p->mode == PEER_BAD_SIZE)
				reply(fd, 1, 0x5, &v, 4);
			else if (p->mode == PEER_WRONG_ID)
				reply(fd, 15, 0x5, &v, 8);
			else
				reply(fd, 1, 0x5, &v, 8);
			break;
		case 15: /* GET_PROTOCOL_FEATURES */
			v = OFFER_PROTOCOL;
			reply(fd, 15, 0x5, &v, 8);
			break;
		case 16: /* SET_PROTOCOL_FEATURES: no reply */
			if (h.size == 8)
				memcpy(&p->acked_protocol, payload, 8);
			else
				p->bad_request = 1;
			break;
		case 17: /* GET_QUEUE_NUM */
			v = 4;
			reply(fd, 17, 0x5, &v, 8);
			break;
		case 36: /* GET_MAX_MEM_SLOTS */
			v = 32;
			reply(fd, 36, 0x5, &v, 8);
			break;
		case 24: { /* GET_CONFIG */
			uint8_t cfg[12 + 256];
			uint32_t off, size;
			if (h.size < 12) {
				p->bad_request = 1;
				return;
			}
			memcpy(&off, payload, 4);
			memcpy(&size, payload + 4, 4);
			p->config_offset = off;
			p->config_size = size;
			if (size > 256 || h.size != 12 + size) {
				p->bad_request = 1;
				return;
			}
			if (p->mode == PEER_NO_CONFIG) {
				reply(fd, 24, 0x5, cfg, 0);
				break;
			}
			memset(cfg, 0, sizeof(cfg));
			memcpy(cfg, payload, 12);
			uint8_t *c = cfg + 12;
			put_le(c + 0, 0x123456, 8);  /* capacity */
			put_le(c + 8, 65536, 4);     /* size_max */
			put_le(c + 12, 126, 4);      /* seg_max */
			put_le(c + 20, 4096, 4);     /* blk_size */
			put_le(c + 34, 4, 2);        /* num_queues */
			reply(fd, 24, 0x5, cfg, 12 + size);
			break;
		}
		default:
			p->bad_request = 1;
			return;
		}
	}
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;

	if (!wait_readable(p->listen_fd, 15000))
		return NULL;
	int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (p->mode != PEER_HANGUP)
		serve(p, fd);
	close(fd);
	return NULL;
}

static int listen_at(const char *path, int do_listen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	size_t len = strlen(path);

	if (fd < 0)
		return -1;
	if (len >= sizeof(a.sun_path)) {
		close(fd);
		return -1;
	}
	memcpy(a.sun_path, path, len + 1);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (do_listen && listen(fd, 4) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void peer_start(struct peer *p, enum peer_mode mode)
{
	memset(p, 0, sizeof(*p));
	p->mode = mode;
	p->listen_fd = listen_at(sock_path, 1);
	if (p->listen_fd < 0) {
		perror("listen");
		exit(1);
	}
	if (pthread_create(&p->thread, NULL, peer_main, p)) {
		fprintf(stderr, "pthread_create failed\n");
		exit(1);
	}
}

static void peer_stop(struct peer *p)
{
	/* The probe has exited, so the peer sees EOF (or its accept times out). */
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
	unlink(sock_path);
}

/* ---- Cases -------------------------------------------------------------------------------- */

static int has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

static void case_usage(void)
{
	int rc;

	rc = run_probe(NULL, (char *)NULL);
	CHECK(rc == 2 && has(err_buf, "missing SOCKET"), "no argument: rc %d", rc);
	rc = run_probe(NULL, "--type", "scsi", sock_path, (char *)NULL);
	CHECK(rc == 2 && has(err_buf, "unknown device type"), "bad type: rc %d", rc);
	rc = run_probe(NULL, "--config-size", "257", sock_path, (char *)NULL);
	CHECK(rc == 2 && has(err_buf, "config size"), "config size 257: rc %d", rc);
	rc = run_probe(NULL, "--config-size", "-1", sock_path, (char *)NULL);
	CHECK(rc == 2, "config size -1: rc %d", rc);
	rc = run_probe(NULL, "--timeout", "0", sock_path, (char *)NULL);
	CHECK(rc == 2 && has(err_buf, "timeout"), "timeout 0: rc %d", rc);
	rc = run_probe(NULL, "--timeout", "abc", sock_path, (char *)NULL);
	CHECK(rc == 2, "timeout abc: rc %d", rc);
	rc = run_probe(NULL, "--protocol", "zz", sock_path, (char *)NULL);
	CHECK(rc == 2, "protocol zz: rc %d", rc);
	rc = run_probe(NULL, "--bogus", sock_path, (char *)NULL);
	CHECK(rc == 2, "unknown option: rc %d", rc);
	rc = run_probe(NULL, sock_path, sock_path, (char *)NULL);
	CHECK(rc == 2 && has(err_buf, "unexpected argument"), "two sockets: rc %d", rc);
	rc = run_probe(NULL, "--help", (char *)NULL);
	CHECK(rc == 0 && has(out_buf, "Usage: vhost-user-probe") && has(out_buf, "--json") &&
	      !err_buf[0], "--help: rc %d", rc);
}

static void case_missing(void)
{
	int rc = run_probe(NULL, sock_path, (char *)NULL);

	CHECK(rc == 1, "rc %d", rc);
	CHECK(has(err_buf, sock_path) && has(err_buf, "no such socket"), "message");
	CHECK(!out_buf[0], "nothing on stdout");
}

static void case_stale(void)
{
	/* A socket file nobody listens on: what a crashed back-end leaves behind. */
	int fd = listen_at(sock_path, 0);

	CHECK(fd >= 0, "bind");
	close(fd);
	int rc = run_probe(NULL, sock_path, (char *)NULL);
	CHECK(rc == 1, "rc %d", rc);
	CHECK(has(err_buf, "connection refused"), "message");
	CHECK(!out_buf[0], "nothing on stdout");
}

static void case_not_socket(void)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/file", tmpdir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0, "create file");
	if (fd >= 0)
		close(fd);
	int rc = run_probe(NULL, p, (char *)NULL);
	CHECK(rc == 1 && has(err_buf, "not a Unix socket"), "rc %d", rc);
}

static void expect_protocol_error(enum peer_mode mode, const char *what)
{
	struct peer p;

	peer_start(&p, mode);
	int rc = run_probe(NULL, "--timeout", "3", sock_path, (char *)NULL);
	peer_stop(&p);
	CHECK(rc == 3, "%s: rc %d", what, rc);
	CHECK(has(err_buf, "violated the vhost-user protocol") ||
	      has(err_buf, "closed the connection"), "%s: message", what);
	CHECK(!out_buf[0], "%s: nothing on stdout", what);
	CHECK(p.nseen >= 1 && p.seen[0] == 1, "%s: GET_FEATURES first", what);
}

static void case_garbage(void)
{
	expect_protocol_error(PEER_GARBAGE, "garbage");
}

static void case_bad_flags(void)
{
	expect_protocol_error(PEER_BAD_FLAGS, "reply without REPLY flag");
	CHECK(has(err_buf, "violated"), "reported as a violation");
}

static void case_bad_size(void)
{
	expect_protocol_error(PEER_BAD_SIZE, "short reply");
}

static void case_wrong_id(void)
{
	expect_protocol_error(PEER_WRONG_ID, "reply to another request");
}

static void case_huge(void)
{
	expect_protocol_error(PEER_HUGE, "4 GiB payload");
}

static void case_hangup(void)
{
	struct peer p;

	peer_start(&p, PEER_HANGUP);
	int rc = run_probe(NULL, "--timeout", "3", sock_path, (char *)NULL);
	peer_stop(&p);
	CHECK(rc == 3 && has(err_buf, "closed the connection"), "rc %d", rc);
}

static void case_silent(void)
{
	struct peer p;
	double t;

	peer_start(&p, PEER_SILENT);
	int rc = run_probe(&t, "--timeout", "0.5", sock_path, (char *)NULL);
	peer_stop(&p);
	CHECK(rc == 4 && has(err_buf, "did not answer in time"), "rc %d", rc);
	CHECK(t >= 0.4 && t < 5, "gave up after %.2f s", t);
}

static void case_good_json(void)
{
	struct peer p;

	peer_start(&p, PEER_GOOD);
	int rc = run_probe(NULL, "--json", sock_path, (char *)NULL);
	peer_stop(&p);
	CHECK(rc == 0, "rc %d", rc);
	CHECK(!p.bad_request, "peer saw only expected requests");
	/* QEMU's device-init order. */
	static const uint32_t order[] = { 1, 15, 16, 17, 36, 24 };
	CHECK(p.nseen == 6, "%u requests", p.nseen);
	for (unsigned i = 0; i < 6 && i < p.nseen; i++)
		CHECK(p.seen[i] == order[i], "request %u is %u, expected %u", i, p.seen[i],
		      order[i]);
	for (unsigned i = 0; i < p.nseen; i++)
		CHECK(p.seen_flags[i] == 0x1, "request %u flags 0x%x", i, p.seen_flags[i]);
	CHECK(p.acked_protocol == EXPECT_ACKED, "accepted 0x%" PRIx64, p.acked_protocol);
	CHECK(p.config_offset == 0 && p.config_size == 60, "GET_CONFIG %u@%u", p.config_size,
	      p.config_offset);

	CHECK(has(out_buf, "\"features\": 6257933894,"), "features value");
	CHECK(has(out_buf, "\"features_hex\": \"0x175007e46\""), "features hex");
	CHECK(has(out_buf, "\"type\": \"blk\",\n  \"type_guessed\": true"), "type guessed blk");
	CHECK(has(out_buf, "\"feature_names\": [\"SIZE_MAX\", \"SEG_MAX\", \"BLK_SIZE\", "
			   "\"FLUSH\", \"TOPOLOGY\", \"CONFIG_WCE\", \"MQ\", \"DISCARD\", "
			   "\"WRITE_ZEROES\", \"NOTIFY_ON_EMPTY\", \"LOG_ALL\", "
			   "\"RING_INDIRECT_DESC\", \"RING_EVENT_IDX\", \"PROTOCOL_FEATURES\", "
			   "\"VERSION_1\"]"), "feature names");
	CHECK(has(out_buf, "\"protocol_feature_names\": [\"MQ\", \"LOG_SHMFD\", \"REPLY_ACK\", "
			   "\"BACKEND_REQ\", \"PAGEFAULT\", \"CONFIG\", \"BACKEND_SEND_FD\", "
			   "\"HOST_NOTIFIER\", \"INBAND_NOTIFICATIONS\", \"CONFIGURE_MEM_SLOTS\", "
			   "\"GPA_ADDRESSES\"]"), "protocol names");
	CHECK(has(out_buf, "\"protocol_features_accepted_hex\": \"0x8f2b\""), "accepted");
	CHECK(has(out_buf, "\"queue_num\": 4,"), "queue num");
	CHECK(has(out_buf, "\"max_mem_slots\": 32,"), "mem slots");
	CHECK(has(out_buf, "\"config_size\": 60,"), "config size");
	CHECK(has(out_buf, "\"config\": \"5634120000000000000001007e000000"), "config hex");
	CHECK(has(out_buf, "\"capacity\": 1193046,"), "capacity");
	CHECK(has(out_buf, "\"seg_max\": 126,"), "seg_max");
	CHECK(has(out_buf, "\"blk_size\": 4096,"), "blk_size");
	CHECK(has(out_buf, "\"num_queues\": 4,"), "num_queues");
	CHECK(has(out_buf, "\"write_zeroes_may_unmap\": 0\n  }\n}\n"), "last field, closed");
}

static void case_good_text(void)
{
	struct peer p;

	peer_start(&p, PEER_GOOD);
	int rc = run_probe(NULL, "--type", "blk", "--config-size", "24", sock_path, (char *)NULL);
	peer_stop(&p);
	CHECK(rc == 0, "rc %d", rc);
	CHECK(p.config_size == 24, "asked for %u bytes", p.config_size);
	CHECK(has(out_buf, "device type:        blk\n"), "type given");
	CHECK(has(out_buf, "features:           0x175007e46\n"), "features");
	CHECK(has(out_buf, "   2  SEG_MAX\n"), "SEG_MAX line");
	CHECK(has(out_buf, "  32  VERSION_1\n"), "VERSION_1 line");
	CHECK(has(out_buf, "  15  CONFIGURE_MEM_SLOTS\n"), "CONFIGURE_MEM_SLOTS line");
	CHECK(has(out_buf, "0x8f2b accepted"), "accepted");
	CHECK(has(out_buf, "queues:             4\n"), "queues");
	CHECK(has(out_buf, "max memory slots:   32\n"), "slots");
	CHECK(has(out_buf, "config space:       24 bytes\n"), "config size");
	CHECK(has(out_buf, "  capacity: 1193046 sectors (610839552 bytes)\n"), "capacity");
	CHECK(has(out_buf, "  blk_size: 4096\n"), "blk_size");
	CHECK(!has(out_buf, "num_queues"), "fields beyond 24 bytes not decoded");
}

static void case_no_protocol(void)
{
	struct peer p;

	peer_start(&p, PEER_NO_PROTOCOL);
	int rc = run_probe(NULL, "--json", sock_path, (char *)NULL);
	peer_stop(&p);
	CHECK(rc == 0, "rc %d", rc);
	CHECK(p.nseen == 1 && p.seen[0] == 1, "only GET_FEATURES sent (%u requests)", p.nseen);
	CHECK(has(out_buf, "\"feature_names\": [\"VERSION_1\"]"), "names");
	CHECK(has(out_buf, "\"protocol_features_offered\": 0,"), "no protocol features");
	CHECK(has(out_buf, "\"queue_num\": null,"), "no queue num");
	CHECK(has(out_buf, "\"config\": null"), "no config");
}

static void case_config_refused(void)
{
	struct peer p;

	peer_start(&p, PEER_NO_CONFIG);
	int rc = run_probe(NULL, "--json", "--config-size", "96", sock_path, (char *)NULL);
	peer_stop(&p);
	CHECK(rc == 0, "a refusal is reported, not fatal: rc %d", rc);
	CHECK(p.nseen == 6 && p.seen[5] == 24 && p.config_size == 96, "GET_CONFIG of 96 sent");
	CHECK(has(err_buf, "refused GET_CONFIG of 96 bytes"), "warning");
	CHECK(has(out_buf, "\"config_refused\": true,\n  \"config_size\": 0,\n  \"config\": null\n}"),
	      "JSON");
	CHECK(has(out_buf, "\"queue_num\": 4,"), "the rest is still there");

	peer_start(&p, PEER_NO_CONFIG);
	rc = run_probe(NULL, sock_path, (char *)NULL);
	peer_stop(&p);
	CHECK(rc == 0 && has(out_buf, "config space:       refused by the back-end (GET_CONFIG of "
				     "60 bytes)\n"), "text: rc %d", rc);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "usage", case_usage },
	{ "missing", case_missing },
	{ "stale", case_stale },
	{ "not-socket", case_not_socket },
	{ "garbage", case_garbage },
	{ "bad-flags", case_bad_flags },
	{ "bad-size", case_bad_size },
	{ "wrong-id", case_wrong_id },
	{ "huge", case_huge },
	{ "hangup", case_hangup },
	{ "silent", case_silent },
	{ "good-json", case_good_json },
	{ "good-text", case_good_text },
	{ "no-protocol", case_no_protocol },
	{ "config-refused", case_config_refused },
};

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s PROBE CASE\n", argv[0]);
		return 2;
	}
	probe_path = argv[1];
	signal(SIGPIPE, SIG_IGN);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vhprobe-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/sock", tmpdir);
	snprintf(out_path, sizeof(out_path), "%s/out", tmpdir);
	snprintf(err_path, sizeof(err_path), "%s/err", tmpdir);
	atexit(cleanup);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(cases[i].name, argv[2]))
			continue;
		cases[i].fn();
		if (failures)
			show();
		printf("%s: %s\n", cases[i].name, failures ? "FAIL" : "ok");
		return failures ? 1 : 0;
	}
	fprintf(stderr, "unknown case %s\n", argv[2]);
	return 2;
}
