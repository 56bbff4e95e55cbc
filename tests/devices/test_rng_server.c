/* SPDX-License-Identifier: MIT */
/*
 * tools/vhost-user-rng through the driver side over a real vhost-user connection: buffers of
 * 1 byte to beyond the per-request cap, split over several writable pieces, with readable
 * pieces the device must ignore; the used length, the bytes (not zero, not repeated), the
 * untouched bytes beyond the cap, reconnects, and the statistics at exit.
 *   usage: test_rng_server VHOST_USER_RNG [TEST-NAME-FILTER]
 */
#include "peer.h"

#define AREA (1u << 20)
#define CAP (64u * 1024)

static const char *prog;
static char dir[64];

struct cli {
	struct vh_device *dev;
	struct vh_driver *drv;
	uint8_t *area;
	uint64_t gpa;
};

static int cli_open(struct cli *c, const char *sock)
{
	struct vh_frontend_config fc = { .timeout_ms = 5000 };
	struct vh_driver_config dc = { .features = VH_DRIVER_RING_FEATURES, .timeout_ms = 5000 };
	struct vh_driver_queues q = { .num_queues = 1, .queue_size = 64, .mem_size = AREA + 4096 };
	void *host = NULL;

	memset(c, 0, sizeof(*c));
	CHECK_EQ(vh_frontend_device_open(&c->dev, sock, &fc, VH_DRIVER_USER_PROTOCOL_FEATURES), 0);
	if (!c->dev)
		return -1;
	CHECK_EQ(vh_driver_new(&c->drv, c->dev, &dc), 0);
	if (!c->drv)
		return -1;
	CHECK_EQ(vh_driver_start(c->drv, &q), 0);
	CHECK_EQ(vh_driver_alloc(c->drv, AREA, 4096, &host, &c->gpa), 0);
	c->area = host;
	return host ? 0 : -1;
}

static void cli_close(struct cli *c)
{
	if (c->drv)
		CHECK_EQ(vh_driver_error(c->drv), 0);
	vh_driver_free(c->drv);
	vh_device_close(c->dev);
}

/* One request: nout readable pieces of 16 bytes, then `len` writable bytes cut into nin
 * pieces; returns the used length. */
static uint32_t fetch(struct cli *c, unsigned nout, uint32_t len, unsigned nin)
{
	struct vh_vq_seg segs[16];
	struct vh_vq_driver_req rq = { .segs = segs, .out_num = (uint16_t)nout,
				       .in_num = (uint16_t)nin, .token = 5 };
	struct vh_vq_driver_used u = { 0 };
	uint32_t off = 0;
	int r = 0;

	for (unsigned i = 0; i < nout; i++) {
		memset(c->area + 16 * i, 0x5a, 16);
		segs[i] = (struct vh_vq_seg){ c->gpa + 16 * i, 16 };
	}
	memset(c->area + 4096, 0, len + 64);
	for (unsigned i = 0; i < nin; i++) {
		uint32_t l = i + 1 < nin ? len / nin : len - off;

		segs[nout + i] = (struct vh_vq_seg){ c->gpa + 4096 + off, l };
		off += l;
	}
	CHECK_EQ(vh_driver_submit(c->drv, 0, &rq, 1), 1);
	for (int tries = 0; tries < 100; tries++) {
		r = vh_driver_get_used(c->drv, 0, &u, 1);
		if (r != 0 || vh_driver_wait(c->drv, 0, 5000) < 0)
			break;
	}
	CHECK_EQ(r, 1);
	for (unsigned i = 0; i < nout * 16; i++)
		CHECK_EQ(c->area[i], 0x5a);  /* readable pieces are not written */
	return u.len;
}

/* Entropy looks like entropy: few zero bytes, no repeated 16-byte block. */
static void check_random(const uint8_t *p, size_t len)
{
	size_t zeros = 0;

	for (size_t i = 0; i < len; i++)
		zeros += p[i] == 0;
	CHECK(zeros <= len / 64 + 4);
	for (size_t i = 16; i + 16 <= len && i < 4096; i += 16)
		CHECK(memcmp(p, p + i, 16) != 0);
}

static void t_requests(void)
{
	struct peer p = { 0 };
	char sock[128], log[128], sockopt[160];
	struct cli c;
	static const uint32_t sizes[] = { 1, 64, 4096, 65536, 200000 };
	int st;

	snprintf(sock, sizeof(sock), "%s/rng.sock", dir);
	snprintf(log, sizeof(log), "%s/rng.log", dir);
	snprintf(sockopt, sizeof(sockopt), "--socket-path=%s", sock);
	{
		char *argv[] = { (char *)prog, sockopt, NULL };

		if (p_spawn(&p, argv, log, NULL, -1) < 0 || p_wait_socket(&p, sock, 10000) < 0) {
			p_dump_log(&p, 40);
			T_FAIL("%s did not start", prog);
			p_stop(&p);
			return;
		}
	}
	for (int round = 0; round < 2; round++) {
		if (cli_open(&c, sock) == 0) {
			for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
				uint32_t want = sizes[i] < CAP ? sizes[i] : CAP;
				uint32_t got = fetch(&c, i % 3, sizes[i], 1 + i % 4);

				CHECK_EQ_M(got, want, "%u bytes", sizes[i]);
				if (got > 16)
					check_random(c.area + 4096, got);
				/* nothing beyond what the used length says */
				for (uint32_t k = want; k < sizes[i] && k < want + 4096; k++)
					if (c.area[4096 + k]) {
						T_FAIL("byte %u beyond the used length written", k);
						break;
					}
			}
		}
		cli_close(&c);
	}
	st = p_stop(&p);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(p_wait_log(&p, "rng: requests=10 bytes=", 100), 0);
	CHECK_EQ(p_wait_log(&p, " errors=0", 10), 0);
}

int main(int argc, char **argv)
{
	static const struct t_test tests[] = {
		{ "requests", t_requests },
	};

	if (argc < 2 || access(argv[1], X_OK)) {
		fprintf(stderr, "usage: test_rng_server VHOST_USER_RNG [FILTER]\n");
		return 2;
	}
	prog = argv[1];
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "%s", p_tmpdir());
	return t_run(tests, sizeof(tests) / sizeof(tests[0]), argc - 1, argv + 1);
}
